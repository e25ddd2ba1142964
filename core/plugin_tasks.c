#include "plugin_tasks.h"

#include <stdlib.h>

#include <event2/event.h>

#include "httpc.h"
#include "worker.h"

struct lintel_task {
    struct lintel_task *prev, *next; /* w->tasks */
    struct lintel_worker *w;
    const lintel_instance *owner;
    struct event *ev;                /* timer */
    struct lintel_httpc_call *call;  /* http */
    int repeat;
    int fd; /* watch */
    union {
        lintel_timer_fn timer;
        lintel_http_fn http;
        lintel_watch_fn watch;
    } fn;
    void *arg;
};

static _Thread_local struct lintel_worker *self;

struct lintel_worker *lintel_worker_self(void)
{
    return self;
}

void lintel_worker_self_set(struct lintel_worker *w)
{
    self = w;
}

static struct lintel_task *task_new(struct lintel_worker *w, const lintel_instance *owner)
{
    struct lintel_task *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->w = w;
    t->owner = owner;
    t->next = w->tasks;
    if (w->tasks)
        w->tasks->prev = t;
    w->tasks = t;
    return t;
}

static void task_free(struct lintel_task *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        t->w->tasks = t->next;
    if (t->next)
        t->next->prev = t->prev;
    if (t->ev)
        event_free(t->ev);
    if (t->call)
        lintel_httpc_cancel(t->call);
    free(t);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct lintel_task *t = arg;
    lintel_timer_fn fn = t->fn.timer;
    void *targ = t->arg;
    if (!t->repeat)
        task_free(t); /* one-shot: gone before fn runs, so fn may start a new one */
    fn(targ);
}

lintel_timer *lintel_task_timer(struct lintel_worker *w, const lintel_instance *owner, uint64_t ms,
                                int repeat, lintel_timer_fn fn, void *arg)
{
    if (!w || !fn)
        return NULL;
    struct lintel_task *t = task_new(w, owner);
    if (!t)
        return NULL;
    t->repeat = repeat;
    t->fn.timer = fn;
    t->arg = arg;
    t->ev = event_new(w->base, -1, repeat ? EV_PERSIST : 0, on_timer, t);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    if (!t->ev || event_add(t->ev, &tv) < 0) {
        task_free(t);
        return NULL;
    }
    return (lintel_timer *)t;
}

void lintel_task_timer_stop(lintel_timer *timer)
{
    if (timer)
        task_free((struct lintel_task *)timer);
}

static void on_http_done(void *arg, const struct lintel_http_response *resp)
{
    struct lintel_task *t = arg;
    lintel_http_fn fn = t->fn.http;
    void *targ = t->arg;
    t->call = NULL; /* finished: nothing to cancel */
    task_free(t);
    fn(targ, resp);
}

int lintel_task_http(struct lintel_worker *w, const lintel_instance *owner,
                     const struct lintel_http_request *spec, lintel_http_fn cb, void *arg)
{
    if (!w || !w->httpc || !cb)
        return -1;
    struct lintel_task *t = task_new(w, owner);
    if (!t)
        return -1;
    t->fn.http = cb;
    t->arg = arg;
    t->call = lintel_httpc_start(w->httpc, spec, on_http_done, t);
    if (!t->call) {
        task_free(t);
        return -1;
    }
    return 0;
}

static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    struct lintel_task *t = arg;
    int ev = ((what & EV_READ) ? LINTEL_WATCH_READ : 0) | ((what & EV_WRITE) ? LINTEL_WATCH_WRITE : 0);
    t->fn.watch((int)fd, ev, t->arg);
}

int lintel_task_watch_set(lintel_watch *watch, int events)
{
    struct lintel_task *t = (struct lintel_task *)watch;
    if (!t)
        return -1;
    if (t->ev) {
        event_free(t->ev);
        t->ev = NULL;
    }
    short what = (short)(((events & LINTEL_WATCH_READ) ? EV_READ : 0) |
                         ((events & LINTEL_WATCH_WRITE) ? EV_WRITE : 0));
    if (!what)
        return 0;
    t->ev = event_new(t->w->base, t->fd, (short)(what | EV_PERSIST), on_watch, t);
    return t->ev && event_add(t->ev, NULL) == 0 ? 0 : -1;
}

lintel_watch *lintel_task_watch(struct lintel_worker *w, const lintel_instance *owner, int fd,
                               int events, lintel_watch_fn fn, void *arg)
{
    if (!w || !fn || fd < 0)
        return NULL;
    struct lintel_task *t = task_new(w, owner);
    if (!t)
        return NULL;
    t->fd = fd;
    t->fn.watch = fn;
    t->arg = arg;
    if (lintel_task_watch_set((lintel_watch *)t, events) < 0) {
        task_free(t);
        return NULL;
    }
    return (lintel_watch *)t;
}

void lintel_task_watch_stop(lintel_watch *watch)
{
    if (watch)
        task_free((struct lintel_task *)watch);
}

void lintel_tasks_cancel(struct lintel_worker *w, const lintel_instance *owner)
{
    struct lintel_task *t = w->tasks, *next;
    for (; t; t = next) {
        next = t->next;
        if (!owner || t->owner == owner)
            task_free(t);
    }
}
