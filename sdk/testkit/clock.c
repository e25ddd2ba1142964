/* The virtual clock and every timer on it: req_timer, worker_timer, and the answers of outbound
 * calls (http.c). Nothing here sleeps; timers fire only from lk_advance, which also runs ready
 * fd watches (watch.c) between them, as an event loop would. */
#include <stdlib.h>

#include "testkit-internal.h"

/* The plugin's opaque lintel_timer is the kit's timer. */
struct lintel_timer {
    struct lintel_timer *next;
    struct lk_req *req;     /* owner: cancelled when the request ends, or */
    struct lk_instance *in; /* owner: stopped before the instance's worker_fini */
    uint64_t due;
    uint64_t period; /* 0: once */
    uint64_t seq;    /* creation order, to fire timers due at the same time in that order */
    void (*fire)(void *arg);
    void (*drop)(void *arg);
    void *arg;
    bool worker; /* made by worker_timer: the plugin holds a handle to it */
    bool armed;  /* a fired one-shot worker timer stays allocated, disarmed, so that a late
                  * timer_stop is caught instead of touching freed memory */
};

static struct {
    uint64_t now;
    uint64_t seq;
    struct lintel_timer *timers; /* unordered; a test has a handful */
} clock_;

uint64_t lk_now(void)
{
    return clock_.now;
}

/* now_ms: the wall clock is the virtual clock plus an offset (lk_clock_set_unix). */
static uint64_t unix_base = 1767225600000ull; /* 2026-01-01T00:00:00Z */

uint64_t lk_now_ms_fn(void)
{
    return unix_base + clock_.now;
}

void lk_clock_set_unix(uint64_t unix_ms)
{
    unix_base = unix_ms - clock_.now;
}

lintel_timer *lk_timer_add(struct lk_req *req, struct lk_instance *in, uint64_t ms, uint64_t period,
                           void (*fire)(void *), void (*drop)(void *), void *arg)
{
    struct lintel_timer *t = malloc(sizeof(*t));
    if (!t)
        return NULL;
    uint64_t due = ms > UINT64_MAX - clock_.now ? UINT64_MAX : clock_.now + ms;
    *t = (struct lintel_timer){.next = clock_.timers,
                               .req = req,
                               .in = in,
                               .due = due,
                               .period = period,
                               .seq = clock_.seq++,
                               .fire = fire,
                               .drop = drop,
                               .arg = arg,
                               .armed = true};
    clock_.timers = t;
    return t;
}

/* Unlinks and frees every timer match() selects, dropping the armed ones' arguments. */
static void remove_where(bool (*match)(const struct lintel_timer *, const void *),
                         const void *owner)
{
    struct lintel_timer **p = &clock_.timers;
    while (*p) {
        struct lintel_timer *t = *p;
        if (!match(t, owner)) {
            p = &t->next;
            continue;
        }
        *p = t->next;
        if (t->armed && t->drop)
            t->drop(t->arg);
        free(t);
    }
}

static bool owned_by_req(const struct lintel_timer *t, const void *req)
{
    return t->req == req;
}

static bool owned_by_instance(const struct lintel_timer *t, const void *in)
{
    return t->in == in;
}

void lk_timers_cancel_req(struct lk_req *r)
{
    remove_where(owned_by_req, r);
}

void lk_timers_disarm_instance(struct lk_instance *in)
{
    for (struct lintel_timer *t = clock_.timers; t; t = t->next) {
        if (t->in == in && t->armed) {
            t->armed = false;
            if (t->drop)
                t->drop(t->arg);
        }
    }
}

void lk_timers_free_instance(struct lk_instance *in)
{
    remove_where(owned_by_instance, in);
}

/* The earliest armed timer due at or before until, or NULL. */
static struct lintel_timer *next_due(uint64_t until)
{
    struct lintel_timer *best = NULL;
    for (struct lintel_timer *t = clock_.timers; t; t = t->next)
        if (t->armed && t->due <= until &&
            (!best || t->due < best->due || (t->due == best->due && t->seq < best->seq)))
            best = t;
    return best;
}

static void unlink_timer(struct lintel_timer *t)
{
    struct lintel_timer **p = &clock_.timers;
    while (*p != t)
        p = &(*p)->next;
    *p = t->next;
}

unsigned lk_advance(uint64_t ms)
{
    uint64_t until = ms > UINT64_MAX - clock_.now ? UINT64_MAX : clock_.now + ms;
    unsigned fired = lk_watches_dispatch();
    struct lintel_timer *t;
    while ((t = next_due(until))) {
        /* The clock reads the due time while the callback runs, so timers it starts count from
         * there, as on a real event loop. */
        clock_.now = t->due;
        void (*fire)(void *) = t->fire;
        void *arg = t->arg;
        /* Nothing touches t after fire: the callback may stop it or end its owner. */
        if (t->period) {
            t->due += t->period;
        } else if (t->worker) {
            t->armed = false; /* lintel frees it now; the kit keeps it to catch a late stop */
        } else {
            unlink_timer(t);
            free(t);
        }
        fire(arg);
        fired += 1 + lk_watches_dispatch();
    }
    clock_.now = until;
    return fired;
}

int lk_req_timer_fn(lintel_req *r, uint64_t ms, lintel_timer_fn fn, void *arg)
{
    if (!fn)
        return -1;
    return lk_timer_add(r->kit, NULL, ms, 0, fn, NULL, arg) ? 0 : -1;
}

lintel_timer *lk_worker_timer_fn(const lintel_instance *self, uint64_t ms, int repeat,
                                 lintel_timer_fn fn, void *arg)
{
    if (!self || !fn || (repeat && ms == 0))
        return NULL;
    lintel_timer *t = lk_timer_add(NULL, self->kit, ms, repeat ? ms : 0, fn, NULL, arg);
    if (t)
        t->worker = true;
    return t;
}

void lk_timer_stop_fn(lintel_timer *t)
{
    for (struct lintel_timer *x = clock_.timers; x; x = x->next) {
        if (x == t && x->worker) {
            if (!x->armed)
                lk_violation("timer_stop on a one-shot timer that fired, or after its instance's "
                             "timers were stopped: lintel has freed it");
            unlink_timer(x);
            free(x);
            return;
        }
    }
    lk_violation("timer_stop on a timer that is not a live worker timer (stopped twice?)");
}
