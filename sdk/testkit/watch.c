/* File descriptors plugins watch (worker_watch): real fds, polled without blocking by
 * lk_advance (and with a wait by lk_poll), their callbacks run level-triggered as on lintel's
 * worker loop. */
#include <poll.h>
#include <stdlib.h>

#include "testkit-internal.h"

/* A watch that stays ready this many rounds in one dispatch is a plugin that never stops
 * (a WRITE watch with nothing to write, say); the kit gives up rather than spin. */
#define MAX_ROUNDS 1000

struct lintel_watch {
    struct lintel_watch *next;
    struct lk_instance *in;
    int fd;
    int events; /* LINTEL_WATCH_READ | LINTEL_WATCH_WRITE; 0: paused */
    lintel_watch_fn fn;
    void *arg;
    bool armed; /* false once its instance's watches were stopped (kept until worker_fini is
                 * over, to catch a late watch_stop) */
};

static struct lintel_watch *watches;

lintel_watch *lk_worker_watch_fn(const lintel_instance *self, int fd, int events,
                                 lintel_watch_fn fn, void *arg)
{
    if (!self || fd < 0 || !fn || (events & ~(LINTEL_WATCH_READ | LINTEL_WATCH_WRITE)))
        return NULL;
    struct lintel_watch *w = malloc(sizeof(*w));
    if (!w)
        return NULL;
    *w = (struct lintel_watch){.next = watches,
                               .in = self->kit,
                               .fd = fd,
                               .events = events,
                               .fn = fn,
                               .arg = arg,
                               .armed = true};
    watches = w;
    return w;
}

static struct lintel_watch **find(const lintel_watch *w)
{
    struct lintel_watch **p = &watches;
    while (*p && *p != w)
        p = &(*p)->next;
    return *p ? p : NULL;
}

int lk_watch_set_fn(lintel_watch *w, int events)
{
    if (!find(w) || !w->armed || (events & ~(LINTEL_WATCH_READ | LINTEL_WATCH_WRITE)))
        return -1;
    w->events = events;
    return 0;
}

void lk_watch_stop_fn(lintel_watch *w)
{
    struct lintel_watch **p = find(w);
    if (!p) {
        lk_violation("watch_stop on a watch that is not live (stopped twice?)");
        return;
    }
    if (!w->armed)
        lk_violation("watch_stop after the instance's watches were stopped: lintel has freed it");
    *p = w->next;
    free(w);
}

void lk_watches_disarm_instance(struct lk_instance *in)
{
    for (struct lintel_watch *w = watches; w; w = w->next)
        if (w->in == in)
            w->armed = false;
}

void lk_watches_free_instance(struct lk_instance *in)
{
    struct lintel_watch **p = &watches;
    while (*p) {
        struct lintel_watch *w = *p;
        if (w->in == in) {
            *p = w->next;
            free(w);
        } else {
            p = &w->next;
        }
    }
}

/* One poll over the armed watches; runs the callbacks of the ready ones. Returns how many ran. */
static unsigned poll_once(int timeout_ms)
{
    size_t n = 0;
    for (struct lintel_watch *w = watches; w; w = w->next)
        n += w->armed && w->events;
    if (n == 0)
        return 0;
    struct pollfd *fds = lk_must(calloc(n, sizeof(*fds)));
    struct lintel_watch **of = lk_must(calloc(n, sizeof(*of)));
    size_t i = 0;
    for (struct lintel_watch *w = watches; w; w = w->next) {
        if (!w->armed || !w->events)
            continue;
        fds[i].fd = w->fd;
        fds[i].events = (short)((w->events & LINTEL_WATCH_READ ? POLLIN : 0) |
                                (w->events & LINTEL_WATCH_WRITE ? POLLOUT : 0));
        of[i++] = w;
    }
    unsigned ran = 0;
    if (poll(fds, n, timeout_ms) > 0) {
        for (i = 0; i < n; i++) {
            /* An earlier callback may have stopped or changed this watch. */
            struct lintel_watch *w = of[i];
            if (!fds[i].revents || !find(w) || !w->armed)
                continue;
            int ready = 0;
            if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
                ready |= LINTEL_WATCH_READ;
            if (fds[i].revents & (POLLOUT | POLLERR))
                ready |= LINTEL_WATCH_WRITE;
            ready &= w->events;
            if (!ready)
                continue;
            w->fn(w->fd, ready, w->arg);
            ran++;
        }
    }
    free(fds);
    free(of);
    return ran;
}

unsigned lk_watches_dispatch(void)
{
    unsigned total = 0;
    for (int round = 0;; round++) {
        unsigned ran = poll_once(0);
        total += ran;
        if (ran == 0)
            return total;
        if (round == MAX_ROUNDS) {
            lk_violation("a watched fd is still ready after %d rounds: stop watching what you "
                         "do not wait for (WRITE with nothing to write?)",
                         MAX_ROUNDS);
            return total;
        }
    }
}

unsigned lk_poll(int timeout_ms)
{
    unsigned ran = poll_once(timeout_ms);
    return ran + (ran ? lk_watches_dispatch() : 0);
}
