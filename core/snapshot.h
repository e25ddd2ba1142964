/* Configuration snapshots: an immutable configuration with everything derived from it (the
 * router; plugin chains later), reference counted and published atomically.
 *
 * Each request holds (through its worker's view) the snapshot it started on, so a reload never
 * changes a request in flight. The last reference frees the snapshot. */
#ifndef LINTEL_SNAPSHOT_H
#define LINTEL_SNAPSHOT_H

#include <stdatomic.h>

#include "config.h"
#include "router.h"

struct lintel_tls;
struct lintel_health_view;

struct lintel_snapshot {
    atomic_uint refs;
    unsigned generation; /* 1 for the first configuration, +1 per successful reload */
    struct lintel_config *cfg;
    struct lintel_router **routers; /* one per worker (see router.h: no shared regex_t) */
    unsigned nrouters;
    struct lintel_plugins *plugins; /* instances and chains; NULL-free even without plugins */
    struct lintel_tls **tls;        /* per listen entry: NULL for plain HTTP */
    struct lintel_health_view *health; /* set by lintel_health_update before publishing; NULL:
                                          every target is up */
};

/* Builds a snapshot from cfg for nworkers workers, taking ownership of cfg (also on failure).
 * Returns a snapshot with one reference, or NULL with err set. */
struct lintel_snapshot *lintel_snapshot_new(struct lintel_config *cfg, unsigned generation,
                                            unsigned nworkers, char *err, size_t errlen);

/* Takes a reference. Thread: any. */
void lintel_snapshot_ref(struct lintel_snapshot *s);

/* Drops a reference; the last one frees the snapshot and its configuration. NULL is ignored.
 * Thread: any. */
void lintel_snapshot_unref(struct lintel_snapshot *s);

#endif
