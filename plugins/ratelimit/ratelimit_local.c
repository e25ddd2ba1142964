/* ratelimit: the three algorithms on the host's shared counters and cache (policy local, and
 * the fallback of policy redis). Every worker of the gateway sees the same counters, and they are
 * keyed by plugin and instance name, so a version swap keeps them.
 *
 * What the host offers: counter_add, an atomic add in a fixed window aligned on the host's clock
 * (the window restarts at 0 when it has passed, in the same atomic step); counter_window, the
 * same that also reports the previous window's final value; and a small cache whose set and get
 * are each atomic but cannot be combined into a compare-and-swap. So:
 *
 * fixed_window   one counter per key and limit. A request adds 1 and passes if the new value is
 *                at most the limit; a refused request takes its 1 back. Exact: never more than
 *                `limit` requests per window across all workers. (Near the limit, a request may
 *                be refused while refused ones are taking back their 1: at most one per worker.)
 * sliding_window one counter_window per key and limit, add-then-check as above: a request adds 1
 *                and passes if value + previous x (period - elapsed) / period is at most the
 *                limit, the previous window's share rounded up; a refused request takes its 1
 *                back. Every admitted request saw its own count in the estimate, so the estimate
 *                never passes the limit, across all workers; the previous window's count is the
 *                host's, so it is exact too. (A refused request's 1 is counted until it is taken
 *                back, which may refuse a concurrent request: never admit one too many.)
 * token_bucket   a bucket of `burst` requests refilled at limit/period, kept as a level at the
 *                start of short refill steps ("ticks", period/limit clamped to 10ms..1s): a
 *                windowed counter counts the requests of the current tick exactly, and the level
 *                at the tick's start is carried in the cache ("carry": every admitted request
 *                leaves one, the next tick reads the last one left; when several workers admit
 *                requests in the same instant the cache may keep a slightly older one). A request
 *                passes if the
 *                tick's count fits in that level plus what has flowed in since the tick started.
 *                The long-run rate is exact; a burst may exceed `burst` by up to one tick's refill
 *                (one request, or limit x 10ms / period when that is more), and by the carry's
 *                staleness (about one request per worker).
 *
 * Undo: a refused request takes its 1 back from the window it was counted in. When the window
 * ended in between (the host's windows are aligned on its clock), the 1 would land in the next
 * window and give it one request too many. counter_window says so (the undo's elapsed time is
 * below the add's), and the 1 is added back there: the ended window keeps it, which only errs on
 * the safe side. counter_add does not, so fixed_window and token_bucket keep a refused request's
 * 1 when it was counted in the window's last ms.
 *
 * Time: windows and ticks come from the host (the ms left in the window); token_bucket's carry
 * is stamped with the end of its tick on a clock read through req_info (start + duration), so
 * the code runs the same on lintel's clock and on the test kit's virtual one. Two stamps name the
 * same tick when they are less than half a tick apart.
 *
 * Failures of the store (a full counter table) let the request through: the limiter never fails
 * a request because of itself. A full cache only loses carries: token_bucket keys without a carry
 * are limited with fixed windows. */
#include <string.h>

#include "ratelimit.h"

typedef __int128 wide; /* products of counts and periods in ms overflow 64 bits */

/* What the cache keeps per key and limit between ticks (token_bucket). */
struct carry {
    int64_t end_us; /* end of the tick the values belong to (req_info's clock) */
    int64_t count;  /* requests counted in that tick when it was written */
    int64_t value;  /* the level at the tick's start, in requests x period_ms */
};

/* One limit's work between deciding and committing or undoing. */
struct probe {
    char alg;            /* key[-3]: 'f', 's', 't', or 'F' (token_bucket's fixed-window fallback) */
    bool counted;        /* counter_add or counter_window took our 1 */
    uint64_t window_ms;  /* of that counter */
    uint64_t reset_ms;   /* left in it when we added */
    uint64_t elapsed_ms; /* sliding_window: since its start when we added */
    bool write;          /* commit leaves carry in the cache */
    struct carry carry;
    uint64_t ttl_ms;
};

static void warn_once(struct ratelimit *rl, atomic_bool *flag, const char *msg)
{
    if (!atomic_exchange(flag, true))
        rl->host->log(rl->self, LINTEL_LOG_LEVEL_WARN, "%s", msg);
}

static int64_t now_us(const struct lintel_host_api *h, lintel_req *r)
{
    struct lintel_req_info info = {.struct_size = sizeof(info)};
    if (h->req_info(r, &info) != 0)
        return 0;
    return (int64_t)(info.start_unix_us + info.duration_us);
}

/* key[-3..-1] = "<alg><period>|": one shared-state key per algorithm, limit and request key. */
static const char *key_for(char *key, char alg, char code)
{
    key[-3] = alg;
    key[-2] = code;
    key[-1] = '|';
    return key - 3;
}

static int64_t ceil_div(wide a, int64_t b)
{
    return a <= 0 ? 0 : (int64_t)((a + b - 1) / b);
}

/* The carry for this key, or 0 when there is none (or of another layout). */
static int carry_get(const struct ratelimit *rl, const char *k, struct carry *c)
{
    return rl->host->cache_get(rl->self, k, c, sizeof(*c)) == (long)sizeof(*c);
}

/* ---- the algorithms -------------------------------------------------------------------------- */

static void fixed_window(const struct rl_limit *l, int64_t v, uint64_t reset, struct rl_outcome *o)
{
    o->allowed = v <= l->limit;
    o->remaining = o->allowed ? l->limit - v : 0;
    o->reset_ms = reset;
    o->retry_ms = reset;
}

/* v: the current window's count with this request; prev: the previous window's. The request
 * passes if v + prev * (p - elapsed) / p <= limit, compared exactly: as v and the limit are whole,
 * that is the previous window's share rounded up. */
static void sliding_window(const struct rl_limit *l, int64_t v, int64_t prev, uint64_t reset,
                           struct rl_outcome *o)
{
    int64_t p = (int64_t)l->period_ms, n = l->limit;
    int64_t elapsed = p - (int64_t)reset;
    int64_t share = ceil_div((wide)prev * (p - elapsed), p);
    o->allowed = v + share <= n;
    o->remaining = o->allowed ? n - v - share : 0;
    o->reset_ms = reset;
    o->retry_ms = 0;
    if (o->allowed)
        return;
    int64_t cur = v - 1; /* without this request */
    if (cur >= n) {
        /* Full on its own: in the next window, once this one (prev' = cur) weighs at most
         * n - 1: cur * (p - e) / p <= n - 1 from e = p - (n-1)*p/cur on. */
        o->retry_ms = reset + (uint64_t)(p - (int64_t)((wide)(n - 1) * p / cur));
    } else {
        /* The previous window's share must drop to the room left for one more:
         * prev * (p - e) / p <= n - cur - 1 from e = p - (n-cur-1)*p/prev on. */
        int64_t e = p - (int64_t)((wide)(n - cur - 1) * p / prev);
        o->retry_ms = e > elapsed ? (uint64_t)(e - elapsed) : 1;
    }
}

/* level: at the tick's start (requests x period); v: the tick's count with this request. */
static void token_bucket(const struct rl_limit *l, int64_t v, wide level, uint64_t reset,
                         struct rl_outcome *o)
{
    int64_t p = (int64_t)l->period_ms, n = l->limit;
    wide full = (wide)l->burst * p;
    wide budget = level + (wide)n * (int64_t)(l->tick_ms - reset); /* + inflow since the start */
    wide left = budget - (wide)v * p;
    o->allowed = left >= 0;
    if (o->allowed) {
        wide rem = left / p;
        o->remaining = rem > l->burst ? l->burst : (int64_t)rem;
        o->reset_ms = (uint64_t)ceil_div(full - (left > full ? full : left), n);
        o->retry_ms = 0;
    } else {
        wide avail = left + p; /* what the bucket holds for this request: less than one */
        o->remaining = 0;
        o->reset_ms = (uint64_t)ceil_div(full - avail, n);
        int64_t wait = ceil_div(p - avail, n);
        o->retry_ms = wait > 0 ? (uint64_t)wait : 1;
    }
}

/* ---- probing one limit ----------------------------------------------------------------------- */

/* Adds our 1 to the limit's counter; -1 when the host's table is full. */
static int count(struct ratelimit *rl, char *key, const struct rl_limit *l, struct probe *p,
                 uint64_t window_ms, int64_t *v)
{
    p->window_ms = window_ms;
    if (rl->host->counter_add(rl->self, key_for(key, p->alg, l->code), 1, window_ms, v,
                              &p->reset_ms) != 0)
        return -1;
    p->counted = true;
    return 0;
}

static int probe_fixed(struct ratelimit *rl, char *key, const struct rl_limit *l, struct probe *p,
                       struct rl_outcome *o)
{
    int64_t v;
    if (count(rl, key, l, p, l->period_ms, &v) < 0)
        return -1;
    fixed_window(l, v, p->reset_ms, o);
    return 0;
}

static int probe_sliding(struct ratelimit *rl, char *key, const struct rl_limit *l, struct probe *p,
                         struct rl_outcome *o)
{
    struct lintel_counter_window w = {.struct_size = sizeof(w)};
    if (rl->host->counter_window(rl->self, key_for(key, p->alg, l->code), 1, l->period_ms, &w) != 0)
        return -1;
    p->counted = true;
    p->window_ms = l->period_ms;
    p->reset_ms = w.reset_ms;
    p->elapsed_ms = w.elapsed_ms;
    sliding_window(l, w.value, w.previous < 0 ? 0 : w.previous, w.reset_ms, o);
    return 0;
}

static int probe_bucket(struct ratelimit *rl, lintel_req *r, char *key, const struct rl_limit *l,
                        struct probe *p, struct rl_outcome *o)
{
    struct carry c;
    bool have = carry_get(rl, key_for(key, 't', l->code), &c);
    if (!have && atomic_load_explicit(&rl->cache_full, memory_order_relaxed)) {
        p->alg = 'F'; /* no room for a carry: fixed windows of the period */
        return probe_fixed(rl, key, l, p, o);
    }
    int64_t t = now_us(rl->host, r), v;
    if (count(rl, key, l, p, l->tick_ms, &v) < 0)
        return -1;
    int64_t end = t + (int64_t)p->reset_ms * 1000, tick_us = (int64_t)l->tick_ms * 1000;
    wide full = (wide)l->burst * (int64_t)l->period_ms, level = full;
    bool same = false;
    if (have) {
        int64_t d = end - c.end_us;
        int64_t ticks = (d + (d < 0 ? -tick_us : tick_us) / 2) / tick_us;
        if (ticks <= 0) {
            /* This tick's level (or, for a request overtaken by the next tick, that one's). */
            level = c.value;
            same = ticks < 0 || c.count >= v;
        } else {
            wide left = (wide)c.value - (wide)c.count * (int64_t)l->period_ms;
            wide in = (wide)ticks * l->limit * (int64_t)l->tick_ms;
            level = left + in > full ? full : left + in;
        }
    }
    token_bucket(l, v, level, p->reset_ms, o);
    p->write = !same;
    p->carry = (struct carry){.end_us = end, .count = v, .value = (int64_t)level};
    /* Gone once the bucket would be full again anyway. */
    p->ttl_ms = (uint64_t)ceil_div(full, l->limit) + 2 * l->tick_ms;
    return 0;
}

/* ---- deciding -------------------------------------------------------------------------------- */

/* Takes a refused request's 1 back from its sliding window (see "Undo" above). */
static void undo_window(struct ratelimit *rl, char *key, const struct rl_limit *l,
                        const struct probe *p)
{
    const char *k = key_for(key, p->alg, l->code);
    struct lintel_counter_window w = {.struct_size = sizeof(w)};
    /* Landed in a newer window: give that one its 1 back. */
    if (rl->host->counter_window(rl->self, k, -1, p->window_ms, &w) == 0 &&
        w.elapsed_ms < p->elapsed_ms)
        rl->host->counter_window(rl->self, k, 1, p->window_ms, &w);
}

void rl_local_decide(struct ratelimit *rl, lintel_req *r, char *key, struct rl_decision *d)
{
    static const char algs[] = {
        [RL_SLIDING_WINDOW] = 's', [RL_FIXED_WINDOW] = 'f', [RL_TOKEN_BUCKET] = 't'};
    struct probe probes[RL_MAX_LIMITS];
    d->allowed = true;
    for (unsigned i = 0; i < rl->nlimits; i++) {
        const struct rl_limit *l = &rl->limits[i];
        struct probe *p = &probes[i];
        struct rl_outcome *o = &d->o[i];
        *p = (struct probe){.alg = algs[rl->algorithm]};
        int rc = rl->algorithm == RL_FIXED_WINDOW     ? probe_fixed(rl, key, l, p, o)
                 : rl->algorithm == RL_SLIDING_WINDOW ? probe_sliding(rl, key, l, p, o)
                                                      : probe_bucket(rl, r, key, l, p, o);
        if (rc < 0) {
            warn_once(rl, &rl->warned_store_full,
                      "the host's shared counters are full: requests with new keys are not "
                      "limited");
            rl_count(rl, RL_M_STORE_ERRORS);
            *o = (struct rl_outcome){
                .allowed = true, .remaining = l->limit - 1, .reset_ms = l->period_ms};
        }
        d->allowed = d->allowed && o->allowed;
    }

    for (unsigned i = 0; i < rl->nlimits; i++) {
        const struct rl_limit *l = &rl->limits[i];
        struct probe *p = &probes[i];
        if (!d->allowed) {
            if (p->counted && p->alg == 's')
                undo_window(rl, key, l, p);
            else if (p->counted && p->reset_ms >= 2) /* see "Undo" above */
                rl->host->counter_add(rl->self, key_for(key, p->alg, l->code), -1, p->window_ms,
                                      NULL, NULL);
        } else if (p->write && rl->host->cache_set(rl->self, key_for(key, p->alg, l->code),
                                                   &p->carry, sizeof(p->carry), p->ttl_ms) != 0) {
            if (!atomic_exchange(&rl->cache_full, true))
                rl->host->log(rl->self, LINTEL_LOG_LEVEL_WARN,
                              "the host's shared cache is full: new keys are counted in fixed "
                              "windows");
            rl_count(rl, RL_M_STORE_ERRORS);
        }
    }
}
