#include "worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "clock.h"
#include "fastio.h"
#include "httpc.h"
#include "log.h"
#include "metrics.h"
#include "plugin_tasks.h"
#include "proxy-internal.h"

int lintel_worker_listen(struct lintel_worker *w, const struct lintel_config *cfg, char *err,
                         size_t errlen)
{
    w->listen_fds = calloc(cfg->nlisten, sizeof(int));
    if (!w->listen_fds) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < cfg->nlisten; i++) {
        const struct lintel_sockaddr *a = &cfg->listen[i];
        int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
            bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, 4096) < 0) {
            snprintf(err, errlen, "listen %s: %s", a->text, strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        w->listen_fds[w->nlisten++] = fd;
    }
    return 0;
}

void lintel_wsnap_ref(struct lintel_wsnap *ws)
{
    ws->refs++;
}

/* The views of one worker that share a plugin set: a snapshot and those retargeted from it
 * (new addresses for host names, same plugin instances). Instances get worker_init when the
 * first view appears and worker_fini when the last goes, not once per view. */
struct lintel_plugin_users {
    struct lintel_plugin_users *next;
    const struct lintel_plugins *plugins;
    struct lintel_wsnap *views; /* linked by users_next */
};

/* worker_init / worker_fini of every instance of the snapshot, on this worker. */
static void instances_worker(struct lintel_wsnap *ws, unsigned worker, bool init)
{
    const struct lintel_plugins *p = ws->snap->plugins;
    for (unsigned i = 0; p && i < p->ninstances; i++) {
        const struct lintel_instance *inst = p->instances[i];
        if (init && inst->desc->worker_init &&
            inst->desc->worker_init(inst->instance, worker) != 0)
            lintel_error("[%s] worker_init failed on worker %u", inst->ns, worker);
        else if (!init) {
            lintel_tasks_cancel(lintel_worker_self(), inst); /* before worker_fini frees state */
            if (inst->desc->worker_fini)
                inst->desc->worker_fini(inst->instance, worker);
        }
    }
}

/* Adds ws to its plugin set's views; true when it is the first (worker_init is due). */
static int users_join(struct lintel_worker *w, struct lintel_wsnap *ws, bool *first)
{
    struct lintel_plugin_users *u = w->plugin_users;
    while (u && u->plugins != ws->snap->plugins)
        u = u->next;
    *first = !u;
    if (!u) {
        if (!(u = calloc(1, sizeof(*u))))
            return -1;
        u->plugins = ws->snap->plugins;
        u->next = w->plugin_users;
        w->plugin_users = u;
    }
    ws->users = u;
    ws->users_next = u->views;
    u->views = ws;
    return 0;
}

/* Removes ws from its plugin set's views; true when it was the last (worker_fini is due). */
static bool users_leave(struct lintel_worker *w, struct lintel_wsnap *ws)
{
    struct lintel_plugin_users *u = ws->users;
    for (struct lintel_wsnap **pp = &u->views; *pp; pp = &(*pp)->users_next)
        if (*pp == ws) {
            *pp = ws->users_next;
            break;
        }
    if (u->views)
        return false;
    for (struct lintel_plugin_users **pp = &w->plugin_users; *pp; pp = &(*pp)->next)
        if (*pp == u) {
            *pp = u->next;
            break;
        }
    free(u);
    return true;
}

void lintel_wsnap_unref(struct lintel_wsnap *ws)
{
    if (--ws->refs)
        return;
    if (users_leave(ws->owner, ws))
        instances_worker(ws, ws->worker, false);
    size_t n = ws->snap->cfg->nupstreams;
    for (size_t i = 0; i < n; i++)
        lintel_balancer_free(ws->balancers[i]);
    free(ws->balancers);
    lintel_snapshot_unref(ws->snap);
    free(ws);
}

/* Builds the worker's view of s (on the worker's thread: plugins' worker_init runs here); the
 * view takes over the caller's snapshot reference. */
static struct lintel_wsnap *wsnap_new(struct lintel_snapshot *s, struct lintel_worker *w)
{
    struct lintel_wsnap *ws = calloc(1, sizeof(*ws));
    size_t n = s->cfg->nupstreams;
    if (!ws)
        goto fail;
    ws->balancers = calloc(n ? n : 1, sizeof(*ws->balancers));
    if (!ws->balancers)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        ws->balancers[i] = lintel_balancer_new(&s->cfg->upstreams[i]);
        if (!ws->balancers[i])
            goto fail;
    }
    ws->snap = s;
    ws->refs = 1;
    ws->worker = w->id;
    ws->owner = w;
    bool first;
    if (users_join(w, ws, &first) < 0)
        goto fail;
    if (first)
        instances_worker(ws, w->id, true);
    return ws;
fail:
    if (ws && ws->balancers)
        for (size_t i = 0; i < n; i++)
            lintel_balancer_free(ws->balancers[i]);
    if (ws)
        free(ws->balancers);
    free(ws);
    return NULL;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    struct lintel_listener *li = arg;
    lintel_client_accept(li->w, li->index, fd, sa, salen);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    /* EMFILE and friends: keep the listener; the loop retries on the next readiness. */
    lintel_warn("accept: %s", strerror(errno));
}

static void close_listeners(struct lintel_worker *w)
{
    if (!w->listeners)
        return;
    for (size_t i = 0; i < w->nlisten; i++)
        if (w->listeners[i])
            evconnlistener_free(w->listeners[i]); /* closes the fd (LEV_OPT_CLOSE_ON_FREE) */
    free(w->listeners);
    w->listeners = NULL;
    w->nlisten = 0;
}

static void maybe_finish_drain(struct lintel_worker *w)
{
    if (w->draining && w->nclients == 0)
        event_base_loopexit(w->base, NULL);
}

void lintel_worker_client_closed(struct lintel_worker *w)
{
    maybe_finish_drain(w);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct lintel_worker *w = arg;
    lintel_warn("drain timeout: closing %zu connection(s) still open", w->nclients);
    lintel_clients_close_all(w);
    event_base_loopexit(w->base, NULL);
}

static void begin_drain(struct lintel_worker *w)
{
    if (w->draining)
        return;
    w->draining = true;
    close_listeners(w);
    lintel_clients_drain(w);
    uint64_t ms = w->current->snap->cfg->timeouts.drain_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    w->drain_timer = evtimer_new(w->base, on_drain_timeout, w);
    if (w->drain_timer)
        evtimer_add(w->drain_timer, &tv);
    maybe_finish_drain(w);
}

/* A reload lets requests in flight finish on their snapshot, but not forever: past the drain
 * timeout they are ended (503 if nothing was sent yet), so old plugin images can be unloaded. */
static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct lintel_worker *w = arg;
    uint64_t now = lintel_mono_ms();
    lintel_clients_expire(w, now, w->current->snap->cfg->timeouts.drain_ms);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct lintel_worker *w = arg;
    uint64_t v;
    ssize_t r = read(w->wake_fd, &v, sizeof(v));
    (void)r;
    struct lintel_snapshot *s = atomic_exchange(&w->pending, NULL);
    if (s) {
        struct lintel_wsnap *ws = wsnap_new(s, w);
        if (ws) {
            struct lintel_wsnap *old = w->current;
            /* A retarget (same plugin set) lets requests on the old view finish whenever
             * they do; a reload retires every view of the old set. */
            if (old->users != ws->users)
                for (struct lintel_wsnap *view = old->users->views; view; view = view->users_next)
                    if (!view->retired_ms)
                        view->retired_ms = lintel_mono_ms();
            w->current = ws;
            lintel_wsnap_unref(old);
            lintel_debug("now on configuration %u", s->generation);
        } else {
            lintel_error("out of memory taking configuration %u; keeping the previous one",
                         s->generation);
            lintel_snapshot_unref(s);
        }
    }
    if (atomic_load(&w->stop))
        begin_drain(w);
}

static void *worker_main(void *arg)
{
    struct lintel_worker *w = arg;
    char name[16];
    snprintf(name, sizeof(name), "w%u", w->id);
    lintel_log_set_thread(name);
    lintel_worker_self_set(w);
    /* Plugin counters go to this worker's shard. The metrics outlive the binding: main joins
     * every worker before lintel_metrics_free, and a reload keeps the same metrics. */
    lintel_metrics_shard_bind(w->metrics);
    w->httpc = lintel_httpc_new(w->base);
    if (!w->httpc)
        lintel_warn("worker %u: no outbound HTTP client: plugins' HTTP calls will fail", w->id);
    w->current = wsnap_new(atomic_exchange(&w->pending, NULL), w);
    if (!w->current) {
        lintel_error("out of memory starting worker %u", w->id);
        return NULL;
    }
    event_base_dispatch(w->base);
    /* Loop over: either drained or forced. Free what is left. */
    lintel_clients_close_all(w);
    lintel_pools_free(w);
    close_listeners(w);
    if (w->current) { /* worker_fini of the last view, here on the worker's thread */
        lintel_wsnap_unref(w->current);
        w->current = NULL;
    }
    lintel_tasks_cancel(w, NULL);
    lintel_httpc_free(w->httpc);
    w->httpc = NULL;
    return NULL;
}

int lintel_worker_start(struct lintel_worker *w, struct lintel_snapshot *s, char *err,
                        size_t errlen)
{
    struct event_config *ec = event_config_new();
    if (!ec)
        goto oom;
    /* One thread owns this base: skip libevent's internal locking. */
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    /* fastio arms and disarms EV_WRITE within one loop pass: batched, that costs no epoll_ctl.
     * (The flag is unsafe with dup()ed fds; lintel has none.) */
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (!w->base)
        goto oom;
    if (getrandom(&w->id_seed, sizeof(w->id_seed), 0) != sizeof(w->id_seed))
        w->id_seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    w->fastio = lintel_fastio_new(w->base);
    if (!w->fastio)
        goto oom;
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        return -1;
    }
    w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, on_wake, w);
    if (!w->wake_ev || event_add(w->wake_ev, NULL) < 0)
        goto oom;
    struct timeval second = {1, 0};
    w->sweep_timer = event_new(w->base, -1, EV_PERSIST, on_sweep, w);
    if (!w->sweep_timer || event_add(w->sweep_timer, &second) < 0)
        goto oom;
    w->listeners = calloc(w->nlisten ? w->nlisten : 1, sizeof(*w->listeners));
    w->listener_args = calloc(w->nlisten ? w->nlisten : 1, sizeof(*w->listener_args));
    if (!w->listeners || !w->listener_args)
        goto oom;
    for (size_t i = 0; i < w->nlisten; i++) {
        w->listener_args[i].w = w;
        w->listener_args[i].index = i;
        w->listeners[i] = evconnlistener_new(w->base, on_accept, &w->listener_args[i],
                                             LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1,
                                             w->listen_fds[i]);
        if (!w->listeners[i])
            goto oom;
        evconnlistener_set_error_cb(w->listeners[i], on_accept_error);
    }
    lintel_snapshot_ref(s);
    atomic_store(&w->pending, s); /* the thread builds its view of it first thing */
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc) {
        snprintf(err, errlen, "cannot start worker thread: %s", strerror(rc));
        return -1;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory starting worker %u", w->id);
    return -1;
}

static void wake(struct lintel_worker *w)
{
    uint64_t one = 1;
    ssize_t r = write(w->wake_fd, &one, sizeof(one));
    (void)r; /* a full eventfd counter still wakes the loop */
}

void lintel_worker_publish(struct lintel_worker *w, struct lintel_snapshot *s)
{
    lintel_snapshot_ref(s);
    struct lintel_snapshot *old = atomic_exchange(&w->pending, s);
    /* Not yet picked up: the worker skips straight to the newest one. */
    lintel_snapshot_unref(old);
    wake(w);
}

void lintel_worker_stop(struct lintel_worker *w)
{
    atomic_store(&w->stop, true);
    wake(w);
}

#if defined(__SANITIZE_ADDRESS__)
#define LINTEL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LINTEL_ASAN 1
#endif
#endif
#ifndef LINTEL_ASAN
#define LINTEL_ASAN 0
#endif

struct lintel_arena *lintel_worker_arena(struct lintel_worker *w)
{
    if (w->narenas)
        return w->arenas[--w->narenas];
    return lintel_arena_new(LINTEL_REQUEST_ARENA);
}

void lintel_worker_arena_done(struct lintel_worker *w, struct lintel_arena *a)
{
    /* Under ASan every request gets fresh memory, so that a pointer kept past the end of a
     * request is reported instead of reading the next request's data. */
    if (LINTEL_ASAN || w->narenas == LINTEL_WORKER_ARENAS) {
        lintel_arena_free(a);
        return;
    }
    lintel_arena_reset(a);
    w->arenas[w->narenas++] = a;
}

void lintel_worker_join(struct lintel_worker *w)
{
    pthread_join(w->thread, NULL);
    while (w->narenas)
        lintel_arena_free(w->arenas[--w->narenas]);
    lintel_snapshot_unref(atomic_exchange(&w->pending, NULL));
    if (w->current)
        lintel_wsnap_unref(w->current);
    if (w->drain_timer)
        event_free(w->drain_timer);
    if (w->sweep_timer)
        event_free(w->sweep_timer);
    event_free(w->wake_ev);
    close(w->wake_fd);
    lintel_fastio_free(w->fastio);
    event_base_free(w->base);
    free(w->listen_fds);
    free(w->listener_args);
}
