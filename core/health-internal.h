/* Shared by health.c (target states, views, the checker) and health_probe.c (active probes), and
 * by their unit tests: one target's state and the transitions that move it, with time passed in
 * so that tests need not sleep. */
#ifndef LINTEL_HEALTH_INTERNAL_H
#define LINTEL_HEALTH_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "health.h"

struct lintel_probe;

/* One target's health, shared by every worker and kept across reloads.
 *
 * `state` holds everything the request path reads, in one word so that a change is one CAS:
 * bit 63 set while probes say down; bits 0..47 the monotonic millisecond until which passive
 * checks keep the target down (0: not down). The first thread whose CAS changes up/down logs the
 * change and records it in `info`. */
struct lintel_target_health {
    _Atomic uint64_t state;
    _Atomic unsigned fails;   /* passive: failures in a row */
    _Atomic uint64_t info;    /* last change: time, kind and cause, packed (health.c) */
    _Atomic uint64_t changes; /* up/down changes */
    atomic_uint refs;         /* the table's (while listed) + one per view slot */
    const char *upstream;     /* copies, for log lines and the admin API */
    const char *address;
    struct sockaddr_storage ss;
    socklen_t sslen;

    /* Main thread only. */
    struct lintel_target_health *next; /* hash chain in the checker's table */
    uint64_t hash;
    unsigned gen; /* the checker's generation that last listed it (in the current config) */
    const struct lintel_health_active_conf *active; /* from the current config, or NULL */
    unsigned ok_run, fail_run;                      /* probes in a row */
    struct lintel_probe *probe;                     /* NULL without active checks */
    /* Set by lintel_health_update from the snapshot probes follow (borrowed from it), NULL
     * otherwise: the target as configured (its Host, SNI) and, for https, the TLS context. */
    const struct lintel_target_conf *target;
    struct ssl_ctx_st *tls;
};

#define LINTEL_HEALTH_ACTIVE_DOWN (1ull << 63)
#define LINTEL_HEALTH_UNTIL_MASK ((1ull << 48) - 1)

/* Monotonic milliseconds (never 0). */
uint64_t lintel_health_now_ms(void);

/* The state of target i of up in v, or NULL when the upstream has no health checks. */
struct lintel_target_health *lintel_health_entry(const struct lintel_health_view *v,
                                                 const struct lintel_upstream_conf *up, size_t i);

/* Whether e is down at now. A passive cooldown found over is cleared (and logged) here. */
bool lintel_health_down_at(struct lintel_target_health *e, uint64_t now);

/* Passive checks: one exchange's outcome (see lintel_health_observe) under configuration p. */
void lintel_health_passive_at(struct lintel_target_health *e,
                              const struct lintel_health_passive_conf *p,
                              enum lintel_health_cause cause, int status, uint64_t now);

/* Active checks: one probe's outcome (ok: a listed status came back), counted against e->active's
 * thresholds. Thread: main. */
void lintel_health_probe_result(struct lintel_target_health *e, bool ok,
                                enum lintel_health_cause cause, int status, uint64_t now);

/* health_probe.c. Thread: main. */

/* A probe for e on base, idle until configured. NULL when out of memory. */
struct lintel_probe *lintel_probe_new(struct event_base *base, struct lintel_target_health *e);

/* Probes every a->interval_ms (a must outlive the probe or the next configure); the first probe
 * of a new probe starts at once. A probe already running finishes under the old settings. */
void lintel_probe_configure(struct lintel_probe *p, const struct lintel_health_active_conf *a);

/* Cancels any running probe and frees p. NULL is ignored. */
void lintel_probe_free(struct lintel_probe *p);

#endif
