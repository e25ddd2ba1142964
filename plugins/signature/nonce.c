/* The replay store: which (key_id, nonce) pairs were accepted recently, shared by every worker.
 *
 * Why not the host's cache_add (ABI 1.1), which frees expired entries and has exactly one
 * winner: capacity. A nonce lives up to 2 x clock_skew (+1 s), so 200 signed requests a second
 * with the default 300 s skew keep about 120000 nonces alive. This table holds them in 16 bytes
 * each (262144 by default, sized by nonce_capacity); the host's cache has 4096 slots of about
 * 4.5 KiB, shared by every plugin of the process, which would last about 3 signed requests a
 * second. Entries here expire exactly when the request's timestamp leaves the clock-skew
 * window.
 *
 * Layout. One store per loaded image (all instances of this plugin version share it, so a reload
 * that re-creates the instances keeps what was seen), made of segments: power-of-two arrays of
 * slots, each slot two 64-bit atomics, `exp` (0 = never used, 1 = being written, else the unix
 * second the entry dies) and `fp` (a keyed 64-bit fingerprint of key_id + nonce). A store asked
 * for more room grows by one more segment; segments are only freed with the store.
 *
 * Check. A fingerprint's home is slot fp & mask in each segment; it may sit in the PROBE slots
 * from there, before the first never-used slot (which ends the run: slots never become unused
 * again). check scans every run: a live slot with the same fp means SEEN; otherwise the first
 * claimable slot (never used, or expired) is taken with a CAS on `exp` (-> 1), then fp and the
 * expiry are published (release). A thread meeting a slot being written waits for it; a thread
 * whose CAS fails starts over and then finds the winner's entry. So two requests with the same
 * nonce on two workers get one FIRST and one SEEN.
 *
 * The one exception: two requests with the same nonce checked at the same instant while a slot
 * in their run crosses its expiry second can see that slot differently (live for one, expired for
 * the other), take two different slots and both pass. Both must arrive within microseconds of
 * each other and of that second's edge; a replay sent after the original has been checked is
 * always refused. No lock is taken; the wait on a slot being written lasts two stores. */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include <openssl/rand.h>

#include "signature-internal.h"

#define PROBE 64
#define EXP_EMPTY 0
#define EXP_BUSY 1

struct slot {
    _Atomic uint64_t exp;
    _Atomic uint64_t fp;
};

struct segment {
    struct segment *_Atomic next;
    size_t mask;
    struct slot slots[];
};

struct sig_nonce_store {
    struct segment *_Atomic first;
    size_t capacity; /* slots in all segments; written under store_lock only */
    unsigned refs;   /* under store_lock */
    unsigned char salt[16];
};

static pthread_mutex_t store_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sig_nonce_store *store; /* this image's, while referenced */

static struct segment *segment_new(size_t slots)
{
    size_t n = 1024;
    while (n < slots)
        n *= 2;
    struct segment *s = calloc(1, sizeof(*s) + n * sizeof(struct slot)); /* all EXP_EMPTY */
    if (s)
        s->mask = n - 1;
    return s;
}

static void store_free(struct sig_nonce_store *s)
{
    struct segment *g = atomic_load(&s->first);
    while (g) {
        struct segment *next = atomic_load(&g->next);
        free(g);
        g = next;
    }
    free(s);
}

struct sig_nonce_store *sig_nonce_acquire(size_t capacity)
{
    pthread_mutex_lock(&store_lock);
    struct sig_nonce_store *s = store;
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s || RAND_bytes(s->salt, sizeof(s->salt)) != 1) {
            free(s);
            s = NULL;
            goto done;
        }
    }
    if (s->capacity < capacity) {
        /* Workers may be scanning: the new segment is complete before it is linked (release). */
        struct segment *g = segment_new(capacity - s->capacity);
        if (!g) {
            if (s != store)
                store_free(s);
            s = NULL;
            goto done;
        }
        s->capacity += g->mask + 1;
        struct segment *_Atomic *link = &s->first;
        struct segment *cur;
        while ((cur = atomic_load_explicit(link, memory_order_relaxed)))
            link = &cur->next;
        atomic_store_explicit(link, g, memory_order_release);
    }
    s->refs++;
    store = s;
done:
    pthread_mutex_unlock(&store_lock);
    return s;
}

void sig_nonce_release(struct sig_nonce_store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&store_lock);
    if (--s->refs == 0) {
        store = NULL;
        store_free(s);
    }
    pthread_mutex_unlock(&store_lock);
}

const unsigned char *sig_nonce_salt(const struct sig_nonce_store *s)
{
    return s->salt;
}

/* The slot's expiry once nobody is writing it. */
static uint64_t settled_exp(struct slot *sl)
{
    uint64_t e = atomic_load_explicit(&sl->exp, memory_order_acquire);
    for (unsigned spins = 0; e == EXP_BUSY; spins++) {
        if (spins % 64 == 63)
            sched_yield(); /* the writer was preempted between its two stores */
        e = atomic_load_explicit(&sl->exp, memory_order_acquire);
    }
    return e;
}

enum sig_nonce_result sig_nonce_check(struct sig_nonce_store *s, uint64_t fp, uint64_t expires,
                                      uint64_t now)
{
    for (;;) {
        struct slot *claim = NULL;
        uint64_t claim_exp = 0;
        for (struct segment *g = atomic_load_explicit(&s->first, memory_order_acquire); g;
             g = atomic_load_explicit(&g->next, memory_order_acquire)) {
            size_t probe = g->mask + 1 < PROBE ? g->mask + 1 : PROBE;
            for (size_t i = 0; i < probe; i++) {
                struct slot *sl = &g->slots[(fp + i) & g->mask];
                uint64_t e = settled_exp(sl);
                if (e == EXP_EMPTY) {
                    if (!claim) {
                        claim = sl;
                        claim_exp = e;
                    }
                    break; /* the end of this segment's run */
                }
                if (e > now) {
                    if (atomic_load_explicit(&sl->fp, memory_order_relaxed) == fp)
                        return SIG_NONCE_SEEN;
                } else if (!claim) {
                    claim = sl;
                    claim_exp = e;
                }
            }
        }
        if (!claim)
            return SIG_NONCE_FULL;
        if (!atomic_compare_exchange_strong_explicit(&claim->exp, &claim_exp, EXP_BUSY,
                                                     memory_order_acquire, memory_order_relaxed))
            continue; /* someone took it first: look again, their entry may be ours */
        atomic_store_explicit(&claim->fp, fp, memory_order_relaxed);
        atomic_store_explicit(&claim->exp, expires, memory_order_release);
        return SIG_NONCE_FIRST;
    }
}
