/* Process-wide counters and cache without locks (see shared.h).
 *
 * Tables. Each table is a power-of-two array of fixed-size slots probed linearly from the hash of
 * the key's identity ("ns\0key", plus the counter's kind and window). Every slot has a state word,
 * gen << 3 | state, changed only with atomic read-modify-writes:
 *
 *   EMPTY    never used; ends every probe run (a slot never becomes EMPTY again, so no key
 *            lies beyond one)
 *   BUSY     claimed by an inserter that is writing the key and resetting the value
 *   PENDING  key written; the inserter is making sure the key has no other slot
 *   LIVE     in use by its key
 *   FREE     reusable (an inserter gave way to another slot of the same key)
 *
 * Claiming (EMPTY, FREE or a LIVE slot whose entry is expired -> BUSY) adds 1 to gen, so anyone
 * still holding the slot under its old gen notices: counters carry the low 16 bits of gen in the
 * value word they CAS, cache writers and readers check the state word after taking the value.
 * A LIVE slot is reclaimed only by whoever first kills its value (a counter's word -> DEAD with a
 * CAS from the expired value it saw; a cache value's sequence taken while it was expired), so an
 * update racing the reclaim either lands before it (and the reclaim fails) or fails and looks the
 * key up again.
 *
 * Keys are read without locks: hash, identity and key words are relaxed atomics written while
 * BUSY; a reader that finds a matching key checks that the slot's gen did not change meanwhile.
 *
 * One slot per key. An insert scans the whole run (up to the first EMPTY slot) before claiming
 * the first reusable slot in it, but two inserts of one key may still claim two slots (a slot
 * before the key's becomes reusable between their scans). So the claimer publishes PENDING, then
 * scans the run again: another LIVE slot of the key, or a PENDING one earlier in the run, wins and
 * the claimer frees its own slot; a PENDING one later in the run is waited for. Publishing and
 * scanning are sequentially consistent, so of two claimers at least one sees the other. Waits
 * only go towards later slots of the run, so they end. Lookups stop after PROBE_MAX slots
 * (inserts too), so a crowded table fails early instead of scanning everything.
 *
 * Reclaiming is lazy: an insert reuses the first FREE or expired slot of its run. A windowed
 * counter last touched in window T is expired from window T + 2 on (its value and previous value
 * would both read 0 by then, so freeing it changes nothing anyone can see); a cache value when its
 * ttl has passed. Counters without a window and cache values without a ttl are never freed.
 *
 * Counters. A windowed counter is one 128-bit word updated with a CAS loop: gen (16 bits), the
 * window index (48 bits), and the count (counter_add: 64 bits saturating at +/-(2^39 - 1);
 * counter_window: this window's and the previous window's counts, 32 bits each, saturating at
 * +/-(2^31 - 1)). Moving to a new window and adding are one atomic step, so no increment is lost
 * across a window change, and the previous window's final count moves with it. The index never
 * goes back: a thread whose clock read is a little older counts in the newer window. Counters
 * without a window use a separate plain 64-bit atomic add.
 *
 * Cache. Each slot's value is guarded by a sequence counter (a seqlock): a writer makes it odd,
 * stores length, expiry and value, and makes it even again; a reader copies and retries until it
 * saw the same even number before and after. Values are stored as relaxed 64-bit atomics so the
 * concurrent copy is well defined (and invisible to ThreadSanitizer). Writers of one key take
 * turns on the sequence (the wait lasts one value copy), which is what makes add's "only when
 * absent" exact. */
#include "shared.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <lintel/hash.h>

#include "clock.h"

#define KEY_BYTES (LINTEL_SHARED_NS_MAX + 1 + LINTEL_SHARED_KEY_MAX)
#define KEY_WORDS ((KEY_BYTES + 7) / 8)
#define PROBE_MAX 1024
#define VALUE_MAX_LIMIT (16u * 1024 * 1024)

#define ST_BITS 3
#define ST_MASK ((UINT64_C(1) << ST_BITS) - 1)
enum { ST_EMPTY = 0, ST_BUSY = 1, ST_PENDING = 2, ST_LIVE = 3, ST_FREE = 4 };

/* Counter value words. */
typedef unsigned __int128 u128;
#define GEN_MASK UINT64_C(0xffff)
#define INDEX_DEAD ((UINT64_C(1) << 48) - 1) /* the slot is being reclaimed */
#define ADD_MAX ((INT64_C(1) << 39) - 1)
#define PAIR_MAX INT32_MAX

#define LEN_NONE UINT32_MAX /* a cache slot whose first write has not finished */

/* What a key is: kinds of counters are apart even under the same name. */
enum kind { KIND_TOTAL = 1, KIND_WINDOW = 2, KIND_PAIR = 3, KIND_CACHE = 4 };

/* The head of every slot; everything but state is written while the slot is BUSY. */
struct slot_key {
    _Atomic uint64_t state;
    _Atomic uint64_t hash;
    _Atomic uint64_t ident;     /* len << 8 | kind */
    _Atomic uint64_t window_ms; /* counters' window (identity too) */
    _Atomic uint64_t words[KEY_WORDS];
};

struct counter_slot {
    struct slot_key key;
    _Atomic u128 word;     /* windowed counters: see word_make */
    _Atomic int64_t total; /* counters without a window */
};

struct cache_slot {
    struct slot_key key;
    _Atomic uint64_t seq;     /* odd while a writer holds the value */
    _Atomic uint32_t len;     /* LEN_NONE: no value yet */
    _Atomic uint64_t expires; /* monotonic ms; 0: never */
    _Atomic uint64_t words[]; /* the value, 8 bytes per word */
};

struct table {
    void *mem;            /* the allocation; slots is its first 64-byte boundary */
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

/* A key as stored: "ns\0key" zero-padded to words, its identity and its hash. */
struct lookup {
    uint64_t words[KEY_WORDS];
    uint64_t ident;
    uint64_t window_ms;
    uint64_t hash;
    size_t nwords;
};

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

static uint64_t st_of(uint64_t state)
{
    return state & ST_MASK;
}

static uint64_t gen_of(uint64_t state)
{
    return state >> ST_BITS;
}

static uint64_t st_make(uint64_t gen, uint64_t st)
{
    return gen << ST_BITS | st;
}

/* FNV-1a over the key, the identity folded in, then a 64-bit finalizer so that the low bits (the
 * slot index) mix well. */
static uint64_t hash_key(const char *p, size_t n, uint64_t ident, uint64_t window_ms)
{
    uint64_t h = lintel_fnv1a64(LINTEL_FNV1A64_OFFSET, p, n);
    return lintel_mix64(h ^ ident * UINT64_C(0x9e3779b97f4a7c15) ^ window_ms);
}

static int lookup_make(struct lookup *k, const char *ns, const char *key, enum kind kind,
                       uint64_t window_ms)
{
    if (!ns || !key)
        return -1;
    size_t ns_len = strnlen(ns, LINTEL_SHARED_NS_MAX + 1);
    size_t key_len = strnlen(key, LINTEL_SHARED_KEY_MAX + 1);
    if (ns_len > LINTEL_SHARED_NS_MAX || key_len > LINTEL_SHARED_KEY_MAX)
        return -1;
    char *bytes = (char *)k->words;
    size_t len = ns_len + 1 + key_len;
    k->nwords = (len + 7) / 8;
    k->words[k->nwords - 1] = 0; /* the padding compares too */
    memcpy(bytes, ns, ns_len);
    bytes[ns_len] = '\0';
    memcpy(bytes + ns_len + 1, key, key_len);
    k->ident = (uint64_t)len << 8 | (uint64_t)kind;
    k->window_ms = window_ms;
    k->hash = hash_key(bytes, len, k->ident, window_ms);
    return 0;
}

static struct slot_key *slot_at(const struct table *t, uint64_t hash, size_t i)
{
    return (struct slot_key *)(t->slots + ((hash + i) & t->mask) * t->stride);
}

/* Reads sk's state into *state and says whether the slot holds k (PENDING or LIVE, checked
 * against a concurrent reclaim). */
static bool slot_peek(struct slot_key *sk, const struct lookup *k, uint64_t *state)
{
    for (;;) {
        uint64_t s = atomic_load(&sk->state);
        *state = s;
        if ((st_of(s) != ST_PENDING && st_of(s) != ST_LIVE) ||
            atomic_load_explicit(&sk->hash, memory_order_relaxed) != k->hash)
            return false;
        bool same = atomic_load_explicit(&sk->ident, memory_order_relaxed) == k->ident &&
                    atomic_load_explicit(&sk->window_ms, memory_order_relaxed) == k->window_ms;
        for (size_t i = 0; same && i < k->nwords; i++)
            same = atomic_load_explicit(&sk->words[i], memory_order_relaxed) == k->words[i];
        /* What was read above is ordered before the second look at the state. */
        atomic_thread_fence(memory_order_acquire);
        uint64_t again = atomic_load_explicit(&sk->state, memory_order_relaxed);
        if (gen_of(again) == gen_of(s)) {
            *state = again; /* PENDING may have become LIVE: same key */
            return same;
        }
    }
}

/* ---- counter words ------------------------------------------------------------------------ */

static u128 word_make(uint64_t gen, uint64_t index, uint64_t hi)
{
    return (u128)hi << 64 | (u128)(index << 16 | (gen & GEN_MASK));
}

static uint64_t word_gen(u128 w)
{
    return (uint64_t)w & GEN_MASK;
}

static uint64_t word_index(u128 w)
{
    return (uint64_t)w >> 16;
}

static uint64_t word_hi(u128 w)
{
    return (uint64_t)(w >> 64);
}

/* A windowed counter nobody has touched in this window or the one before. */
static bool counter_expired(struct counter_slot *cs, uint64_t state, uint64_t now, u128 *seen)
{
    uint64_t kind = atomic_load_explicit(&cs->key.ident, memory_order_relaxed) & 0xff;
    uint64_t window_ms = atomic_load_explicit(&cs->key.window_ms, memory_order_relaxed);
    u128 w = atomic_load_explicit(&cs->word, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&cs->key.state, memory_order_relaxed) != state)
        return false;
    if (kind == KIND_TOTAL || window_ms == 0 || word_gen(w) != (gen_of(state) & GEN_MASK) ||
        word_index(w) == INDEX_DEAD)
        return false;
    *seen = w;
    return word_index(w) + 2 <= now / window_ms;
}

/* ---- claiming slots ------------------------------------------------------------------------- */

/* Takes a LIVE slot whose entry has expired: state becomes BUSY with the next gen. For a cache
 * slot *seq is set to the odd sequence now held (released by slot_init). */
static bool reclaim(const struct table *t, struct slot_key *sk, uint64_t state, uint64_t now,
                    uint64_t *seq)
{
    uint64_t busy = st_make(gen_of(state) + 1, ST_BUSY);
    if (!t->cache) {
        struct counter_slot *cs = (struct counter_slot *)sk;
        u128 w;
        if (!counter_expired(cs, state, now, &w))
            return false;
        u128 dead = word_make(gen_of(state), INDEX_DEAD, 0);
        if (!atomic_compare_exchange_strong(&cs->word, &w, dead))
            return false; /* touched meanwhile: alive */
        /* Only the killer of the word moves the state on from LIVE. */
        atomic_store(&sk->state, busy);
        return true;
    }
    struct cache_slot *cs = (struct cache_slot *)sk;
    uint64_t s = atomic_load_explicit(&cs->seq, memory_order_acquire);
    if (s & 1)
        return false;
    uint32_t len = atomic_load_explicit(&cs->len, memory_order_relaxed);
    uint64_t expires = atomic_load_explicit(&cs->expires, memory_order_relaxed);
    if (len == LEN_NONE || expires == 0 || now < expires)
        return false;
    /* Success means no writer came between the reads above and here. */
    if (!atomic_compare_exchange_strong_explicit(&cs->seq, &s, s + 1, memory_order_acq_rel,
                                                 memory_order_relaxed))
        return false;
    if (!atomic_compare_exchange_strong(&sk->state, &state, busy)) {
        atomic_store_explicit(&cs->seq, s + 2, memory_order_release);
        return false; /* another generation already */
    }
    *seq = s + 1;
    return true;
}

/* Writes k into a slot we hold BUSY under gen and resets its value. */
static void slot_init(const struct table *t, struct slot_key *sk, const struct lookup *k,
                      uint64_t gen, uint64_t seq, uint64_t now)
{
    /* Readers that see any store below also see the BUSY state before them. */
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&sk->hash, k->hash, memory_order_relaxed);
    atomic_store_explicit(&sk->ident, k->ident, memory_order_relaxed);
    atomic_store_explicit(&sk->window_ms, k->window_ms, memory_order_relaxed);
    for (size_t i = 0; i < k->nwords; i++)
        atomic_store_explicit(&sk->words[i], k->words[i], memory_order_relaxed);
    if (!t->cache) {
        struct counter_slot *cs = (struct counter_slot *)sk;
        /* Touched now: not reclaimable before its first update. */
        uint64_t index = k->window_ms ? now / k->window_ms : 0;
        atomic_store_explicit(&cs->word, word_make(gen, index, 0), memory_order_relaxed);
        atomic_store_explicit(&cs->total, 0, memory_order_relaxed);
        return;
    }
    struct cache_slot *cs = (struct cache_slot *)sk;
    atomic_store_explicit(&cs->len, LEN_NONE, memory_order_relaxed);
    atomic_store_explicit(&cs->expires, 0, memory_order_relaxed);
    if (seq & 1) /* reclaimed: release the sequence taken from the old value */
        atomic_store_explicit(&cs->seq, seq + 1, memory_order_release);
}

/* Waits until sk's state is no longer s. */
static void wait_change(struct slot_key *sk, uint64_t s)
{
    unsigned spins = 0;
    while (atomic_load(&sk->state) == s)
        backoff(&spins);
}

/* Claimed slot `mine` (offset i in k's run) is PENDING under gen: true when it is the key's only
 * slot, false when another slot of the key wins (mine is then FREE). */
static bool dedup(const struct table *t, const struct lookup *k, size_t i, uint64_t gen)
{
    for (size_t j = 0; j < t->probe_max; j++) {
        if (j == i)
            continue;
        struct slot_key *sk = slot_at(t, k->hash, j);
        uint64_t s;
        if (!slot_peek(sk, k, &s)) {
            if (st_of(s) == ST_EMPTY)
                break;
            continue;
        }
        if (st_of(s) == ST_PENDING && j > i) {
            wait_change(sk, s); /* it gives way to us or goes LIVE; look again */
            j--;
            continue;
        }
        atomic_store(&slot_at(t, k->hash, i)->state, st_make(gen, ST_FREE));
        return false;
    }
    return true;
}

/* Claims the first reusable slot (FREE, or LIVE with an expired entry) among the first `end` of
 * k's run: BUSY under a new gen. *i is its offset; *seq as for reclaim. NULL when there is none. */
static struct slot_key *claim_reusable(const struct table *t, const struct lookup *k, size_t end,
                                       uint64_t now, size_t *i, uint64_t *seq)
{
    for (*i = 0; *i < end; ++*i) {
        struct slot_key *sk = slot_at(t, k->hash, *i);
        uint64_t s = atomic_load(&sk->state);
        if (st_of(s) == ST_FREE &&
            atomic_compare_exchange_strong(&sk->state, &s, st_make(gen_of(s) + 1, ST_BUSY)))
            return sk;
        if (st_of(s) == ST_LIVE && reclaim(t, sk, s, now, seq))
            return sk;
    }
    return NULL;
}

/* Finds the LIVE slot of k and its state. With insert, adds k when absent (reusing a FREE or
 * expired slot of its run if there is one). NULL when absent (lookup) or when no slot is left
 * within PROBE_MAX (insert). */
static struct slot_key *slot_find(const struct table *t, const struct lookup *k, bool insert,
                                  uint64_t now, uint64_t *state)
{
    for (;;) {
        struct slot_key *empty = NULL;
        size_t end = t->probe_max;
        bool again = false;
        for (size_t i = 0; i < end; i++) {
            struct slot_key *sk = slot_at(t, k->hash, i);
            uint64_t s;
            if (slot_peek(sk, k, &s)) {
                if (st_of(s) == ST_LIVE) {
                    *state = s;
                    return sk;
                }
                if (insert) { /* PENDING: another thread is inserting the key */
                    wait_change(sk, s);
                    again = true;
                    break;
                }
            } else if (st_of(s) == ST_EMPTY) {
                empty = sk;
                end = i;
            }
        }
        if (again)
            continue;
        if (!insert)
            return NULL;

        /* Absent: claim the first reusable slot, else the first EMPTY one. */
        uint64_t seq = 0;
        size_t i;
        struct slot_key *mine = claim_reusable(t, k, end, now, &i, &seq);
        if (!mine) {
            uint64_t s = st_make(0, ST_EMPTY);
            if (!empty)
                return NULL; /* full within the probe limit */
            if (!atomic_compare_exchange_strong(&empty->state, &s, st_make(1, ST_BUSY)))
                continue; /* taken meanwhile, maybe by the key */
            mine = empty;
            i = end;
        }
        uint64_t gen = gen_of(atomic_load_explicit(&mine->state, memory_order_relaxed));
        slot_init(t, mine, k, gen, seq, now);
        atomic_store(&mine->state, st_make(gen, ST_PENDING));
        if (!dedup(t, k, i, gen))
            continue; /* another slot of the key won: use it */
        *state = st_make(gen, ST_LIVE);
        atomic_store(&mine->state, *state);
        return mine;
    }
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
    /* Zeroed memory is every slot EMPTY, gen 0. calloc of a block this large maps fresh zero
     * pages and does not write them, so a slot's page becomes resident only once a slot on it
     * is used (65536 counters and 4096 cache slots would be about 47 MB if touched up front).
     * Slots start on a 64-byte boundary (their stride keeps it; 128-bit words need 16). */
    if (n * stride > SIZE_MAX - 63)
        return -1;
    t->mem = calloc(1, n * stride + 63);
    if (!t->mem)
        return -1;
    t->slots = (unsigned char *)(((uintptr_t)t->mem + 63) & ~(uintptr_t)63);
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
    /* Strides are multiples of 64 so that every slot keeps the array's alignment. */
    size_t counter_stride = (sizeof(struct counter_slot) + 63) / 64 * 64;
    size_t cache_stride = (sizeof(struct cache_slot) + words * 8 + 63) / 64 * 64;
    if (table_init(&s->counters, counter_slots, counter_stride, false) != 0 ||
        table_init(&s->cache, cache_slots, cache_stride, true) != 0) {
        lintel_shared_free(s);
        return NULL;
    }
    return s;
}

void lintel_shared_free(struct lintel_shared *s)
{
    if (!s)
        return;
    free(s->counters.mem);
    free(s->cache.mem);
    free(s);
}

/* ---- counters ------------------------------------------------------------------------------- */

static int64_t saturate(int64_t cur, int64_t delta, int64_t max)
{
    int64_t v;
    if (__builtin_add_overflow(cur, delta, &v) || v > max || v < -max)
        v = delta > 0 ? max : -max;
    return v;
}

/* Sign-extends the low `bits` bits of x (gcc: modular conversion, arithmetic shift). */
static int64_t sign_extend(uint64_t x, unsigned bits)
{
    return (int64_t)(x << (64 - bits)) >> (64 - bits);
}

/* A windowed counter's update, and what it reports. */
struct window_update {
    int64_t value, previous;
    uint64_t elapsed_ms, reset_ms;
};

/* One CAS attempt's outcome: the new word from the old one (false: the slot is no longer gen's). */
static bool window_next(u128 old, uint64_t gen, uint64_t now, uint64_t window_ms, bool pair,
                        int64_t delta, u128 *word, struct window_update *u)
{
    if (word_gen(old) != gen || word_index(old) == INDEX_DEAD)
        return false;
    uint64_t was = word_index(old), hi = word_hi(old);
    uint64_t index = now / window_ms > was ? now / window_ms : was;
    int64_t max = pair ? PAIR_MAX : ADD_MAX;
    int64_t was_cur = pair ? sign_extend(hi, 32) : (int64_t)hi;
    if (index == was) {
        u->value = saturate(was_cur, delta, max);
        u->previous = pair ? sign_extend(hi >> 32, 32) : 0;
    } else {
        u->value = saturate(0, delta, max);
        u->previous = index == was + 1 ? was_cur : 0;
    }
    uint64_t nhi = pair ? (uint64_t)(uint32_t)u->value | (uint64_t)(uint32_t)u->previous << 32
                        : (uint64_t)u->value;
    *word = word_make(gen, index, nhi);
    uint64_t start = index * window_ms;
    u->elapsed_ms = now > start ? now - start : 0;
    u->reset_ms = window_ms - u->elapsed_ms;
    return true;
}

/* Adds delta to k's windowed counter (KIND_WINDOW or KIND_PAIR). -1: the table is full. */
static int window_add(struct lintel_shared *s, const struct lookup *k, int64_t delta,
                      struct window_update *u)
{
    bool pair = (k->ident & 0xff) == KIND_PAIR;
    for (;;) {
        uint64_t now = lintel_mono_ms(), state;
        struct counter_slot *cs =
            (struct counter_slot *)slot_find(&s->counters, k, true, now, &state);
        if (!cs)
            return -1;
        uint64_t gen = gen_of(state) & GEN_MASK;
        u128 old = atomic_load_explicit(&cs->word, memory_order_relaxed), word;
        bool ours;
        while ((ours = window_next(old, gen, now, k->window_ms, pair, delta, &word, u)) &&
               !atomic_compare_exchange_weak_explicit(&cs->word, &old, word, memory_order_relaxed,
                                                      memory_order_relaxed))
            ;
        if (ours)
            return 0;
        /* Reclaimed since we found it: look the key up again. */
    }
}

int lintel_shared_counter_add(struct lintel_shared *s, const char *ns, const char *key,
                              int64_t delta, uint64_t window_ms, int64_t *value, uint64_t *reset_ms)
{
    struct lookup k;
    if (!s || lookup_make(&k, ns, key, window_ms ? KIND_WINDOW : KIND_TOTAL, window_ms) != 0)
        return -1;
    int64_t v;
    uint64_t reset = 0;
    if (window_ms == 0) {
        uint64_t state;
        struct counter_slot *cs =
            (struct counter_slot *)slot_find(&s->counters, &k, true, lintel_mono_ms(), &state);
        if (!cs)
            return -1;
        /* Counters without a window are never reclaimed: the slot stays this key's. */
        int64_t old = atomic_fetch_add_explicit(&cs->total, delta, memory_order_relaxed);
        v = (int64_t)((uint64_t)old + (uint64_t)delta); /* the add wrapped the same way */
    } else {
        struct window_update u;
        if (window_add(s, &k, delta, &u) != 0)
            return -1;
        v = u.value;
        reset = u.reset_ms;
    }
    if (value)
        *value = v;
    if (reset_ms)
        *reset_ms = reset;
    return 0;
}

int lintel_shared_counter_window(struct lintel_shared *s, const char *ns, const char *key,
                                 int64_t delta, uint64_t window_ms,
                                 struct lintel_shared_window *out)
{
    struct lookup k;
    if (!s || window_ms == 0 || lookup_make(&k, ns, key, KIND_PAIR, window_ms) != 0)
        return -1;
    struct window_update u;
    if (window_add(s, &k, delta, &u) != 0)
        return -1;
    if (out)
        *out = (struct lintel_shared_window){.value = u.value,
                                             .previous = u.previous,
                                             .elapsed_ms = u.elapsed_ms,
                                             .reset_ms = u.reset_ms};
    return 0;
}

/* ---- cache ---------------------------------------------------------------------------------- */

/* Takes cs's value for writing (its sequence made odd) while the slot is still in state.
 * Returns the even sequence it had, for cache_unlock; -1 when the slot no longer holds the key. */
static int64_t cache_lock(struct cache_slot *cs, uint64_t state)
{
    for (unsigned spins = 0;; backoff(&spins)) {
        uint64_t seq = atomic_load_explicit(&cs->seq, memory_order_relaxed);
        if (!(seq & 1) &&
            atomic_compare_exchange_weak_explicit(&cs->seq, &seq, seq + 1, memory_order_acquire,
                                                  memory_order_relaxed)) {
            if (atomic_load(&cs->key.state) == state) {
                /* The odd sequence is visible before any of the caller's stores. */
                atomic_thread_fence(memory_order_release);
                return (int64_t)(seq & INT64_MAX);
            }
            atomic_store_explicit(&cs->seq, seq + 2, memory_order_release);
            return -1;
        }
        if (atomic_load(&cs->key.state) != state)
            return -1;
    }
}

static void cache_unlock(struct cache_slot *cs, int64_t seq)
{
    atomic_store_explicit(&cs->seq, (uint64_t)seq + 2, memory_order_release);
}

static void cache_write(struct cache_slot *cs, const void *value, size_t len, uint64_t ttl_ms,
                        uint64_t now)
{
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
}

/* set (only_absent false) and add (true). */
static int cache_store(struct lintel_shared *s, const char *ns, const char *key, const void *value,
                       size_t len, uint64_t ttl_ms, bool only_absent)
{
    struct lookup k;
    if (!s || len > s->value_max || (len > 0 && !value) ||
        lookup_make(&k, ns, key, KIND_CACHE, 0) != 0)
        return -1;
    for (;;) {
        uint64_t state;
        struct cache_slot *cs =
            (struct cache_slot *)slot_find(&s->cache, &k, true, lintel_mono_ms(), &state);
        if (!cs)
            return -1;
        int64_t seq = cache_lock(cs, state);
        if (seq < 0)
            continue; /* reclaimed since we found it */
        uint64_t now = lintel_mono_ms();
        if (only_absent) {
            uint32_t was = atomic_load_explicit(&cs->len, memory_order_relaxed);
            uint64_t expires = atomic_load_explicit(&cs->expires, memory_order_relaxed);
            if (was != LEN_NONE && (!expires || now < expires)) {
                cache_unlock(cs, seq);
                return 0;
            }
        }
        cache_write(cs, value, len, ttl_ms, now);
        cache_unlock(cs, seq);
        return 1;
    }
}

int lintel_shared_cache_set(struct lintel_shared *s, const char *ns, const char *key,
                            const void *value, size_t len, uint64_t ttl_ms)
{
    return cache_store(s, ns, key, value, len, ttl_ms, false) < 0 ? -1 : 0;
}

int lintel_shared_cache_add(struct lintel_shared *s, const char *ns, const char *key,
                            const void *value, size_t len, uint64_t ttl_ms)
{
    return cache_store(s, ns, key, value, len, ttl_ms, true);
}

ssize_t lintel_shared_cache_get(struct lintel_shared *s, const char *ns, const char *key, void *buf,
                                size_t cap)
{
    struct lookup k;
    if (!s || (cap > 0 && !buf) || lookup_make(&k, ns, key, KIND_CACHE, 0) != 0)
        return -1;
    unsigned char *dst = buf;
    for (;;) {
        uint64_t now = lintel_mono_ms(), state;
        struct cache_slot *cs = (struct cache_slot *)slot_find(&s->cache, &k, false, now, &state);
        if (!cs)
            return -1;
        for (unsigned spins = 0;; backoff(&spins)) {
            uint64_t seq = atomic_load_explicit(&cs->seq, memory_order_acquire);
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
            if (atomic_load_explicit(&cs->seq, memory_order_relaxed) != seq)
                continue;
            if (atomic_load_explicit(&cs->key.state, memory_order_relaxed) != state)
                break; /* the slot went to another key: look again */
            return present ? (ssize_t)len : -1;
        }
    }
}
