/* The circuit breaker of one instance, shared by all its workers without a lock.
 *
 * The state and the time it was entered live in one atomic word, (since_ms << 2) | state, so
 * every transition is one compare-and-swap and a reader never pairs a state with another
 * state's time. Transitions:
 *
 *   CLOSED    --`failures` consecutive triggers-->              OPEN (since = now)
 *   OPEN      --first request after `cooldown` wins the CAS-->  HALF_OPEN (that request probes)
 *   HALF_OPEN --the probe succeeds-->                           CLOSED
 *   HALF_OPEN --the probe fails-->                              OPEN (since = now)
 *   HALF_OPEN --the probe's client goes away-->                 OPEN, due at once (since = 0)
 *
 * Only the request that won the OPEN -> HALF_OPEN swap moves the breaker out of HALF_OPEN, so
 * exactly one probe is out at a time. "Consecutive" is counted across workers: any success
 * resets the count, so interleaved successes keep the breaker closed. */
#include "fallback.h"

static uint64_t word_of(uint64_t since_ms, enum fb_breaker_state s)
{
    return (since_ms << 2) | (uint64_t)s;
}

static enum fb_breaker_state state_of(uint64_t w)
{
    return (enum fb_breaker_state)(w & 3u);
}

static uint64_t since_of(uint64_t w)
{
    return w >> 2;
}

/* Moves from the word seen to a new one; only the winner of a race reports the change. */
static bool move(struct fb_breaker *b, const struct lintel_host_api *h, const lintel_instance *self,
                 uint64_t seen, uint64_t next)
{
    if (!atomic_compare_exchange_strong_explicit(&b->word, &seen, next, memory_order_acq_rel,
                                                 memory_order_acquire))
        return false;
    h->metric_set(self, "breaker_state", (int64_t)state_of(next));
    if (state_of(next) == FB_OPEN && state_of(seen) != FB_OPEN)
        h->metric_add(self, "breaker_open", 1);
    return true;
}

enum fb_admit fb_breaker_admit(struct fb_breaker *b, const struct lintel_host_api *h,
                               const lintel_instance *self)
{
    uint64_t w = atomic_load_explicit(&b->word, memory_order_acquire);
    switch (state_of(w)) {
    case FB_CLOSED:
        return FB_PASS;
    case FB_OPEN: {
        uint64_t now = h->now_ms();
        if (now < since_of(w) + b->cooldown_ms)
            return FB_SKIP;
        return move(b, h, self, w, word_of(now, FB_HALF_OPEN)) ? FB_PROBE : FB_SKIP;
    }
    default:
        return FB_SKIP; /* half-open: the probe is out */
    }
}

void fb_breaker_result(struct fb_breaker *b, const struct lintel_host_api *h,
                       const lintel_instance *self, bool failed, bool probe)
{
    uint64_t w = atomic_load_explicit(&b->word, memory_order_acquire);
    if (!failed) {
        atomic_store_explicit(&b->consecutive, 0, memory_order_relaxed);
        if (probe && state_of(w) == FB_HALF_OPEN)
            move(b, h, self, w, word_of(h->now_ms(), FB_CLOSED));
        return;
    }
    uint32_t n = atomic_fetch_add_explicit(&b->consecutive, 1, memory_order_relaxed) + 1;
    if (probe && state_of(w) == FB_HALF_OPEN) {
        move(b, h, self, w, word_of(h->now_ms(), FB_OPEN));
    } else if (!probe && state_of(w) == FB_CLOSED && n >= b->failures) {
        /* A failure of a request sent before the breaker opened changes nothing: only CLOSED
         * opens, so late failures never push the cooldown further. */
        if (move(b, h, self, w, word_of(h->now_ms(), FB_OPEN)))
            atomic_store_explicit(&b->consecutive, 0, memory_order_relaxed);
    }
}

void fb_breaker_probe_lost(struct fb_breaker *b, const struct lintel_host_api *h,
                           const lintel_instance *self)
{
    uint64_t w = atomic_load_explicit(&b->word, memory_order_acquire);
    if (state_of(w) == FB_HALF_OPEN)
        move(b, h, self, w, word_of(0, FB_OPEN));
}

uint64_t fb_breaker_retry_ms(struct fb_breaker *b, uint64_t now_ms)
{
    uint64_t w = atomic_load_explicit(&b->word, memory_order_acquire);
    if (state_of(w) == FB_OPEN && now_ms < since_of(w) + b->cooldown_ms)
        return since_of(w) + b->cooldown_ms - now_ms;
    return 0;
}
