/* Configuration snapshots: an immutable configuration with everything derived from it (routers,
 * plugin instances and chains, TLS contexts, health view), reference counted and published
 * atomically.
 *
 * Each request holds (through its worker's view) the snapshot it started on, so a reload never
 * changes a request in flight. The last reference frees the snapshot.
 *
 * A loaded configuration gives a first snapshot; when the resolver finds new addresses for host
 * names, lintel_snapshot_retarget makes another one from it that differs only in its targets:
 * it shares the plugin instances and TLS contexts (the "core", reference counted apart) instead
 * of creating them again. */
#ifndef LINTEL_SNAPSHOT_H
#define LINTEL_SNAPSHOT_H

#include <stdatomic.h>

#include <openssl/ssl.h>

#include "config.h"
#include "config_targets.h"
#include "router.h"

struct lintel_tls;
struct lintel_health_view;
struct lintel_snapshot_core;

struct lintel_snapshot {
    atomic_uint refs;
    unsigned generation; /* 1 for the first configuration, +1 per successful reload (not per
                            retarget) */
    struct lintel_config *cfg; /* with the host names' addresses as targets (config_targets.h) */
    struct lintel_router **routers; /* one per worker (see router.h: no shared regex_t) */
    unsigned nrouters;
    struct lintel_plugins *plugins; /* instances and chains; NULL-free even without plugins */
    struct lintel_tls **tls;        /* per listen entry: NULL for plain HTTP */
    SSL_CTX **upstream_tls;         /* per upstream: the client context of an https upstream,
                                       NULL for http */
    struct lintel_health_view *health; /* set by lintel_health_update before publishing; NULL:
                                          every target is up */
    struct lintel_snapshot_core *core; /* plugins, tls, upstream_tls and the loaded
                                          configuration: shared with retargeted snapshots */
};

/* Builds a snapshot from cfg (as loaded) for nworkers workers, taking ownership of cfg (also on
 * failure); host-name targets get their addresses from lookup (NULL: none yet). Returns a
 * snapshot with one reference, or NULL with err set. Thread: main. */
struct lintel_snapshot *lintel_snapshot_new_resolved(struct lintel_config *cfg,
                                                     unsigned generation, unsigned nworkers,
                                                     lintel_names_lookup_fn lookup, void *ctx,
                                                     char *err, size_t errlen);

/* lintel_snapshot_new_resolved without a resolver. */
struct lintel_snapshot *lintel_snapshot_new(struct lintel_config *cfg, unsigned generation,
                                            unsigned nworkers, char *err, size_t errlen);

/* A snapshot like s whose targets come from lookup now: 1 and *out (one reference) when they
 * differ from s's, 0 when they are the same, -1 with err set when out of memory. The new
 * snapshot has no health view yet. Thread: main. */
int lintel_snapshot_retarget(struct lintel_snapshot *s, lintel_names_lookup_fn lookup, void *ctx,
                             struct lintel_snapshot **out, char *err, size_t errlen);

/* Takes a reference. Thread: any. */
void lintel_snapshot_ref(struct lintel_snapshot *s);

/* Drops a reference; the last one frees the snapshot and its configuration. NULL is ignored.
 * Thread: any. */
void lintel_snapshot_unref(struct lintel_snapshot *s);

#endif
