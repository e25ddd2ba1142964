/* Upstream health: which targets are up, from active probes and from what requests see (passive
 * checks). See docs/health.md.
 *
 * Every target of an upstream with a `health` section has one state, shared by all workers and
 * kept across reloads while its upstream name and address stay the same. Workers read it with
 * relaxed atomic loads (no lock on the request path) and report what they see with atomic
 * updates; probes run on the main thread's event loop. A target is down while its probes say so
 * (`unhealthy` failed probes in a row, until `healthy` good ones) or for `cooldown` after
 * `failures` failed requests in a row. Every change of up/down is logged once. */
#ifndef LINTEL_HEALTH_H
#define LINTEL_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct event_base;
struct evbuffer;
struct lintel_snapshot;

/* The checker: the process-wide table of target states and the probes. Main thread only. */
struct lintel_health;

/* One configuration's targets mapped to their states; a snapshot owns one (snapshot->health). */
struct lintel_health_view;

/* Creates the checker; probes will run on base (the main thread's loop), which must outlive it.
 * Returns NULL when out of memory. Thread: main. */
struct lintel_health *lintel_health_new(struct event_base *base);

/* Makes s's configuration the one probes follow and gives s its view (s->health): targets whose
 * upstream name and address were in the previous configuration keep their state, new ones start
 * up. Call it before s is published to the workers. Holds a reference to s until the next update
 * or lintel_health_free. Returns 0, or -1 with err set ("out of memory"): then nothing changed.
 * Thread: main. */
int lintel_health_update(struct lintel_health *h, struct lintel_snapshot *s, char *err,
                         size_t errlen);

/* lintel_health_update without a snapshot: returns the view of cfg (free it with
 * lintel_health_view_free), or NULL with err set. cfg must stay alive until the next bind or
 * update, or lintel_health_free. Thread: main. */
struct lintel_health_view *lintel_health_bind(struct lintel_health *h,
                                              const struct lintel_config *cfg, char *err,
                                              size_t errlen);

/* Stops every probe and frees the checker; states still held by views live until those are
 * freed. Call it before base is freed. NULL is ignored. Thread: main. */
void lintel_health_free(struct lintel_health *h);

/* Frees a view (a snapshot's last reference does). NULL is ignored. Thread: any. */
void lintel_health_view_free(struct lintel_health_view *v);

/* What one exchange with a target showed, for passive checks and probe results. */
enum lintel_health_cause {
    LINTEL_HEALTH_OK,            /* a response head came (its status decides, see observe) */
    LINTEL_HEALTH_STATUS,        /* a response with a status counted as a failure */
    LINTEL_HEALTH_REFUSED,       /* connection refused */
    LINTEL_HEALTH_CONNECT_ERROR, /* another connect failure */
    LINTEL_HEALTH_TIMEOUT,       /* connect, send, read or probe timeout */
    LINTEL_HEALTH_RESET,         /* closed or reset before a whole response head */
    LINTEL_HEALTH_INVALID,       /* a response head lintel refuses */
    LINTEL_HEALTH_TLS,           /* https: the TLS handshake failed (a connect error) */
};

/* Sets skip[i] for every target of up that is down now (skip has up->ntargets flags), so that
 * the balancer passes them over. Returns the number of down targets (those already skipped
 * included). v NULL or an upstream without health checks: 0. Thread: any (workers). */
size_t lintel_health_skip_down(const struct lintel_health_view *v,
                               const struct lintel_upstream_conf *up, unsigned char *skip);

/* Passive checks: reports one exchange with target `target` of up. cause OK with a status listed
 * in the upstream's passive statuses counts as a failure, any other OK as a success (which
 * clears the count of failures in a row); every other cause is a failure. Does nothing without
 * passive checks. Thread: any (workers). */
void lintel_health_observe(const struct lintel_health_view *v,
                           const struct lintel_upstream_conf *up, int target,
                           enum lintel_health_cause cause, int status);

/* A target's health as the admin API shows it. */
struct lintel_health_status {
    bool checked; /* false: the upstream has no health checks; the target is always up */
    bool up;
    int64_t since;    /* unix seconds of the last change (or of the state's creation) */
    char reason[128]; /* "3 failed probes, last: connection refused", "cooldown over", ... */
    uint64_t changes; /* up/down changes since the state was created */
};

/* Fills out for target i of up (v may be NULL). Thread: any. */
void lintel_health_status_get(const struct lintel_health_view *v,
                              const struct lintel_upstream_conf *up, size_t i,
                              struct lintel_health_status *out);

/* Appends lintel_upstream_target_up and lintel_upstream_target_health_changes_total for every
 * target of s's configuration. Returns 0, or -1 when out of memory. Thread: main. */
int lintel_health_render_metrics(const struct lintel_snapshot *s, struct evbuffer *out);

/* Whether status is in the set (a lintel_health_*_conf statuses bitmap). */
static inline bool lintel_health_status_in(const uint64_t *set, int status)
{
    return status >= 0 && status < 64 * LINTEL_STATUS_WORDS &&
           (set[status / 64] >> (status % 64)) & 1;
}

#endif
