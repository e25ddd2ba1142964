/* The admin API: JSON over HTTP on the main thread's event loop (loopback by default).
 *   GET /-/status  GET /-/routes  GET /-/plugins  GET /-/upstreams  GET /-/metrics
 *   POST /-/reload (200 with the new generation, or 400/500 with the error text) */
#ifndef LINTEL_ADMIN_H
#define LINTEL_ADMIN_H

#include <stddef.h>

#include "config.h"
#include "metrics.h"
#include "plugin_loader.h"
#include "snapshot.h"

struct event_base;
struct lintel_admin;

/* What the admin API reads and does; callbacks run on the main thread. */
struct lintel_admin_ops {
    void *ctx;
    /* The current snapshot, with a reference taken (the admin unrefs it). */
    struct lintel_snapshot *(*current)(void *ctx);
    /* Reloads the configuration file: 0, or -1 with err set. */
    int (*reload)(void *ctx, char *err, size_t errlen);
    unsigned nworkers;
    long start_time; /* time(NULL) at start */
    unsigned (*reloads_ok)(void *ctx);
    unsigned (*reloads_failed)(void *ctx);
    struct lintel_registry *registry; /* may be NULL */
    struct lintel_metrics *metrics;
};

/* Listens on addr and serves on base (the main thread's loop). ops is copied; what it points to
 * (ctx, registry, metrics) must outlive the admin, and metrics must not be NULL. Returns NULL
 * with err set ("admin 127.0.0.1:9901: Address already in use"). Thread: main. */
struct lintel_admin *lintel_admin_start(struct event_base *base, const struct lintel_sockaddr *addr,
                                        const struct lintel_admin_ops *ops, char *err,
                                        size_t errlen);

/* Stops listening, closes open admin connections and frees. NULL is ignored. Thread: main. */
void lintel_admin_free(struct lintel_admin *a);

#endif
