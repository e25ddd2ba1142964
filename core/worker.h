/* Workers: one event-loop thread each, with its own listening sockets (SO_REUSEPORT), its own
 * upstream connection pools and its own view of the current configuration snapshot.
 *
 * The only cross-thread traffic is the main thread handing a worker a new snapshot or a stop
 * order (an atomic slot plus an eventfd wake-up); nothing on the request path takes a lock. */
#ifndef LINTEL_WORKER_H
#define LINTEL_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balance.h"
#include "snapshot.h"

struct event_base;
struct event;
struct evconnlistener;
struct lintel_client;
struct lintel_pool;
struct lintel_metrics_shard;
struct lintel_httpc;
struct lintel_task;
struct lintel_fastio;
struct lintel_ipcounts;
struct lintel_refusal;
struct lintel_plugin_users;

/* What an accept callback needs: its worker and which `listen` entry it serves. */
struct lintel_listener {
    struct lintel_worker *w;
    size_t index;
};

/* A worker's view of one snapshot: the snapshot plus the worker-local state derived from it
 * (balancers). Counted without atomics: only its worker touches it. */
struct lintel_wsnap {
    struct lintel_snapshot *snap;
    unsigned refs; /* the worker's "current" reference + one per request */
    unsigned worker;
    struct lintel_worker *owner;
    uint64_t retired_ms; /* monotonic ms when a newer snapshot replaced it; 0 while current */
    struct lintel_balancer **balancers; /* one per upstream, same index */
    struct lintel_plugin_users *users;  /* the worker's views sharing this one's plugin set */
    struct lintel_wsnap *users_next;    /* in users->views */
};

#define LINTEL_WORKER_ARENAS 64
#define LINTEL_REQUEST_ARENA 8192 /* first block of a request's arena */

struct lintel_worker {
    unsigned id;
    pthread_t thread;
    struct event_base *base;
    int wake_fd; /* eventfd: the main thread writes to wake the loop */
    struct event *wake_ev;
    _Atomic(struct lintel_snapshot *) pending; /* handed over by the main thread */
    atomic_bool stop;                          /* drain and exit */
    bool draining;
    struct event *drain_timer;
    struct event *sweep_timer; /* ends requests stuck on a retired snapshot (every second) */

    int *listen_fds;
    size_t nlisten;
    struct evconnlistener **listeners;
    struct lintel_listener *listener_args; /* (worker, listen index) per listener */

    struct lintel_wsnap *current;
    struct lintel_plugin_users *plugin_users; /* per plugin set in use (worker.c) */
    struct lintel_client *clients; /* every open client connection (doubly linked) */
    size_t nclients;
    /* Connection caps (client.c): open connections per client address, and connections
     * refused past a cap that are still being told so (bounded; see docs/security.md). */
    struct lintel_ipcounts *ipcounts;
    struct lintel_refusal *refusals;
    unsigned nrefusals;
    uint64_t refusal_logged_ms; /* refusals are logged at most once a second */
    struct lintel_pool *pools; /* upstream keepalive pools, by target address */
    struct lintel_fastio *fastio; /* plain sockets' direct writes and reads (fastio.h) */

    struct lintel_metrics_shard *metrics; /* written by this worker only */
    struct lintel_httpc *httpc;           /* plugins' outbound HTTP (libcurl multi) */
    struct lintel_task *tasks;            /* plugins' worker timers and calls */
    uint64_t request_seq; /* for request ids */
    /* Request arenas kept for reuse (lintel_worker_arena / lintel_worker_arena_done): a request
     * costs no malloc for its arena while fewer than this many are in flight at once. */
    struct lintel_arena *arenas[LINTEL_WORKER_ARENAS];
    unsigned narenas;
    uint64_t id_seed;
};

/* A request arena (first block LINTEL_REQUEST_ARENA bytes): a recycled one when the worker has
 * one. NULL when out of memory. */
struct lintel_arena *lintel_worker_arena(struct lintel_worker *w);
/* The request is over: runs a's cleanups, and keeps it for reuse or frees it. */
void lintel_worker_arena_done(struct lintel_worker *w, struct lintel_arena *a);

/* Creates the listening sockets for worker w (SO_REUSEPORT, so every worker has its own). Called
 * by the main thread before any worker starts, so that a bad address is a startup error.
 * Returns 0, or -1 with err set. */
int lintel_worker_listen(struct lintel_worker *w, const struct lintel_config *cfg, char *err,
                         size_t errlen);

/* Starts the worker's thread on snapshot s (a reference is taken). Returns 0, or -1 with err. */
int lintel_worker_start(struct lintel_worker *w, struct lintel_snapshot *s, char *err,
                        size_t errlen);

/* Hands a new snapshot to the worker (a reference is taken); it is picked up by the worker's
 * loop. Thread: main. */
void lintel_worker_publish(struct lintel_worker *w, struct lintel_snapshot *s);

/* Asks the worker to stop accepting and finish in-flight requests (bounded by the drain timeout
 * of its current configuration). Thread: main. */
void lintel_worker_stop(struct lintel_worker *w);

/* Waits for the worker's thread to end and frees what it owned. Thread: main. */
void lintel_worker_join(struct lintel_worker *w);

/* Worker-thread side, for client and upstream code. */
void lintel_wsnap_ref(struct lintel_wsnap *ws);
void lintel_wsnap_unref(struct lintel_wsnap *ws);

/* Called when a client connection closes, so a draining worker can finish. */
void lintel_worker_client_closed(struct lintel_worker *w);

#endif
