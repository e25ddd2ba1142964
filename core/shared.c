/* Process-wide counters and cache without locks (see shared.h).
 *
 * Tables. Each table is a power-of-two array of fixed-size slots probed linearly from the hash of
 * "ns\0key". A slot's state goes EMPTY -> CLAIMED -> READY and never back: an inserter claims an
 * EMPTY slot with a CAS, writes the key, then publishes READY (release). A thread that meets a
 * CLAIMED slot waits for READY before comparing keys, because the slot may be getting its own
 * key. Two threads inserting the same key therefore cannot both succeed: they probe the same
 * sequence, every slot before the first EMPTY one holds a different key for good, and only one
 * CAS on that EMPTY slot wins; the loser waits, sees its key, and uses the winner's slot.
 * Keys are never removed, so probe runs never break and a key never moves; the price is that an
 * expired entry keeps its slot for the same key only, and a table that has seen as many keys as
 * it has slots refuses new ones. Lookups stop after PROBE_MAX slots (inserts too, consistently),
 * so a crowded table fails early instead of scanning everything. The wait on CLAIMED lasts as
 * long as copying one key; it yields the CPU if the inserter was preempted.
 *
 * Counters. A windowed counter is one 64-bit word: a 24-bit window tag (the window index modulo
 * 2^24) over a 40-bit signed count, updated with a CAS loop, so "restart at 0 when the window
 * changed" and "add" are one atomic step and no increment is lost across a window change. The
 * tag wraps: a key left untouched for exactly a multiple of 2^24 windows (4.6 hours of 1 ms
 * windows, 194 days of 1 s windows) and touched again in the matching window continues its old
 * count. Counters without a window use a separate plain 64-bit atomic add.
 *
 * Cache. Each slot's value is guarded by a sequence counter (a seqlock): a writer makes it odd,
 * stores length, expiry and value, and makes it even again; a reader copies and retries until it
 * saw the same even number before and after. Values are stored as relaxed 64-bit atomics so the
 * concurrent copy is well defined (and invisible to ThreadSanitizer). Writers never wait: a set
 * that finds another set of the same key in progress (or finishing under its feet) leaves the
 * value to it, which is the same as having happened just before it. */
#include "shared.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_BYTES (LINTEL_SHARED_NS_MAX + 1 + LINTEL_SHARED_KEY_MAX)
#define PROBE_MAX 1024
#define VALUE_MAX_LIMIT (16u * 1024 * 1024)

#define TAG_BITS 24
#define COUNT_BITS 40
#define TAG_MASK ((UINT64_C(1) << TAG_BITS) - 1)
#define COUNT_MASK ((UINT64_C(1) << COUNT_BITS) - 1)
#define COUNT_MAX ((INT64_C(1) << (COUNT_BITS - 1)) - 1)

#define LEN_NONE UINT32_MAX /* a cache slot whose first set has not finished */

enum { SLOT_EMPTY = 0, SLOT_CLAIMED = 1, SLOT_READY = 2 };

/* The head of every slot; hash, len and bytes are written once, before READY is published. */
struct slot_key {
    _Atomic uint32_t state;
    uint16_t len;
    uint64_t hash;
    char bytes[KEY_BYTES];
};

struct counter_slot {
    struct slot_key key;
    _Atomic uint64_t window; /* tag << COUNT_BITS | count (two's complement, COUNT_BITS) */
    _Atomic int64_t total;   /* counters without a window */
};

struct cache_slot {
    struct slot_key key;
    _Atomic uint32_t seq;     /* odd while a set is writing */
    _Atomic uint32_t len;     /* LEN_NONE: no value yet */
    _Atomic uint64_t expires; /* monotonic ms; 0: never */
    _Atomic uint64_t words[]; /* the value, 8 bytes per word */
};

struct table {
    unsigned char *slots;
    size_t stride;
    size_t mask;
    size_t probe_max; /* 0: the table is disabled */
    bool cache;       /* slots are struct cache_slot */
};

struct lintel_shared {
    struct table counters;
    struct table cache;
    size_t value_max;
};

/* A (ns, key) pair as stored: "ns\0key" and its hash. */
struct lookup {
    char bytes[KEY_BYTES];
    uint16_t len;
    uint64_t hash;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Gives way to whoever holds what we wait for: a CPU hint, then the scheduler now and then. */
static void backoff(unsigned *spins)
{
    if (++*spins % 64 == 0) {
        sched_yield();
        return;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* FNV-1a, then a 64-bit finalizer so that the low bits (the slot index) mix well. */
static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= UINT64_C(1099511628211);
    }
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

static int lookup_make(struct lookup *k, const char *ns, const char *key)
{
    if (!ns || !key)
        return -1;
    size_t ns_len = strnlen(ns, LINTEL_SHARED_NS_MAX + 1);
    size_t key_len = strnlen(key, LINTEL_SHARED_KEY_MAX + 1);
    if (ns_len > LINTEL_SHARED_NS_MAX || key_len > LINTEL_SHARED_KEY_MAX)
        return -1;
    memcpy(k->bytes, ns, ns_len);
    k->bytes[ns_len] = '\0';
    memcpy(k->bytes + ns_len + 1, key, key_len);
    k->len = (uint16_t)(ns_len + 1 + key_len);
    k->hash = hash_bytes(k->bytes, k->len);
    return 0;
}

/* Finds the slot of k, claiming an EMPTY one for it when insert is set. Returns NULL when the
 * key is absent (lookup) or no slot is left within PROBE_MAX (insert). */
static void *slot_find(const struct table *t, const struct lookup *k, bool insert)
{
    for (size_t i = 0; i < t->probe_max; i++) {
        unsigned char *p = t->slots + ((k->hash + i) & t->mask) * t->stride;
        struct slot_key *sk = (struct slot_key *)p;
        uint32_t state = atomic_load_explicit(&sk->state, memory_order_acquire);
        if (state == SLOT_EMPTY) {
            if (!insert)
                return NULL;
            if (atomic_compare_exchange_strong_explicit(
                    &sk->state, &state, SLOT_CLAIMED, memory_order_acquire, memory_order_acquire)) {
                sk->hash = k->hash;
                sk->len = k->len;
                memcpy(sk->bytes, k->bytes, k->len);
                if (t->cache) {
                    struct cache_slot *cs = (struct cache_slot *)p;
                    atomic_store_explicit(&cs->len, LEN_NONE, memory_order_relaxed);
                }
                atomic_store_explicit(&sk->state, SLOT_READY, memory_order_release);
                return p;
            }
            /* Lost the race: state now holds what the winner wrote. */
        }
        unsigned spins = 0;
        while (state == SLOT_CLAIMED) {
            backoff(&spins);
            state = atomic_load_explicit(&sk->state, memory_order_acquire);
        }
        if (sk->hash == k->hash && sk->len == k->len && memcmp(sk->bytes, k->bytes, k->len) == 0)
            return p;
    }
    return NULL;
}

/* ---- setup ---------------------------------------------------------------------------------- */

static int table_init(struct table *t, size_t nslots, size_t stride, bool cache)
{
    memset(t, 0, sizeof(*t));
    t->cache = cache;
    if (nslots == 0)
        return 0;
    size_t n = 1;
    while (n < nslots) {
        if (n > SIZE_MAX / 2)
            return -1;
        n *= 2;
    }
    if (n > SIZE_MAX / stride)
        return -1;
    t->slots = calloc(n, stride); /* zero: every slot EMPTY */
    if (!t->slots)
        return -1;
    t->stride = stride;
    t->mask = n - 1;
    t->probe_max = n < PROBE_MAX ? n : PROBE_MAX;
    return 0;
}

struct lintel_shared *lintel_shared_new(size_t counter_slots, size_t cache_slots,
                                        size_t cache_value_max)
{
    if (cache_value_max > VALUE_MAX_LIMIT)
        return NULL;
    struct lintel_shared *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->value_max = cache_value_max;
    size_t words = (cache_value_max + 7) / 8;
    if (table_init(&s->counters, counter_slots, sizeof(struct counter_slot), false) != 0 ||
        table_init(&s->cache, cache_slots, sizeof(struct cache_slot) + words * 8, true) != 0) {
        lintel_shared_free(s);
        return NULL;
    }
    return s;
}

void lintel_shared_free(struct lintel_shared *s)
{
    if (!s)
        return;
    free(s->counters.slots);
    free(s->cache.slots);
    free(s);
}

/* ---- counters ------------------------------------------------------------------------------- */

static int64_t word_count(uint64_t word)
{
    /* Sign-extends the low COUNT_BITS bits (gcc: modular conversion, arithmetic shift). */
    return (int64_t)(word << TAG_BITS) >> TAG_BITS;
}

int lintel_shared_counter_add(struct lintel_shared *s, const char *ns, const char *key,
                              int64_t delta, uint64_t window_ms, int64_t *value, uint64_t *reset_ms)
{
    struct lookup k;
    if (!s || lookup_make(&k, ns, key) != 0)
        return -1;
    struct counter_slot *cs = slot_find(&s->counters, &k, true);
    if (!cs)
        return -1;

    int64_t v;
    uint64_t reset = 0;
    if (window_ms == 0) {
        int64_t old = atomic_fetch_add_explicit(&cs->total, delta, memory_order_relaxed);
        v = (int64_t)((uint64_t)old + (uint64_t)delta); /* the add wrapped the same way */
    } else {
        uint64_t now = now_ms();
        uint64_t tag = (now / window_ms) & TAG_MASK;
        uint64_t old = atomic_load_explicit(&cs->window, memory_order_relaxed);
        uint64_t word;
        do {
            int64_t cur = (old >> COUNT_BITS) == tag ? word_count(old) : 0;
            if (__builtin_add_overflow(cur, delta, &v) || v > COUNT_MAX || v < -COUNT_MAX)
                v = delta > 0 ? COUNT_MAX : -COUNT_MAX;
            word = tag << COUNT_BITS | ((uint64_t)v & COUNT_MASK);
        } while (!atomic_compare_exchange_weak_explicit(
            &cs->window, &old, word, memory_order_relaxed, memory_order_relaxed));
        reset = window_ms - now % window_ms;
    }
    if (value)
        *value = v;
    if (reset_ms)
        *reset_ms = reset;
    return 0;
}

/* ---- cache ---------------------------------------------------------------------------------- */

int lintel_shared_cache_set(struct lintel_shared *s, const char *ns, const char *key,
                            const void *value, size_t len, uint64_t ttl_ms)
{
    struct lookup k;
    if (!s || len > s->value_max || (len > 0 && !value) || lookup_make(&k, ns, key) != 0)
        return -1;
    struct cache_slot *cs = slot_find(&s->cache, &k, true);
    if (!cs)
        return -1;

    uint32_t seq = atomic_load_explicit(&cs->seq, memory_order_relaxed);
    if ((seq & 1) || !atomic_compare_exchange_strong_explicit(
                         &cs->seq, &seq, seq + 1, memory_order_relaxed, memory_order_relaxed))
        return 0; /* another set overlaps this one and overwrites it */
    /* The odd sequence is visible before any of the stores below. */
    atomic_thread_fence(memory_order_release);

    uint64_t now = now_ms();
    uint64_t expires = 0;
    if (ttl_ms)
        expires = ttl_ms > UINT64_MAX - now ? UINT64_MAX : now + ttl_ms;
    atomic_store_explicit(&cs->len, (uint32_t)len, memory_order_relaxed);
    atomic_store_explicit(&cs->expires, expires, memory_order_relaxed);
    const unsigned char *src = value;
    for (size_t off = 0, i = 0; off < len; off += 8, i++) {
        uint64_t w = 0;
        memcpy(&w, src + off, len - off < 8 ? len - off : 8);
        atomic_store_explicit(&cs->words[i], w, memory_order_relaxed);
    }
    atomic_store_explicit(&cs->seq, seq + 2, memory_order_release);
    return 0;
}

ssize_t lintel_shared_cache_get(struct lintel_shared *s, const char *ns, const char *key, void *buf,
                                size_t cap)
{
    struct lookup k;
    if (!s || (cap > 0 && !buf) || lookup_make(&k, ns, key) != 0)
        return -1;
    struct cache_slot *cs = slot_find(&s->cache, &k, false);
    if (!cs)
        return -1;

    uint64_t now = now_ms();
    unsigned char *dst = buf;
    for (unsigned spins = 0;; backoff(&spins)) {
        uint32_t seq = atomic_load_explicit(&cs->seq, memory_order_acquire);
        if (seq & 1)
            continue;
        uint32_t len = atomic_load_explicit(&cs->len, memory_order_relaxed);
        uint64_t expires = atomic_load_explicit(&cs->expires, memory_order_relaxed);
        bool present = len != LEN_NONE && len <= s->value_max && (!expires || now < expires);
        if (present) {
            size_t n = len < cap ? len : cap;
            for (size_t off = 0, i = 0; off < n; off += 8, i++) {
                uint64_t w = atomic_load_explicit(&cs->words[i], memory_order_relaxed);
                memcpy(dst + off, &w, n - off < 8 ? n - off : 8);
            }
        }
        /* Everything read above is ordered before the second look at the sequence. */
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&cs->seq, memory_order_relaxed) == seq)
            return present ? (ssize_t)len : -1;
    }
}
