/* Load balancers over an upstream's targets: smooth weighted round robin, least connections
 * (weighted), and consistent hashing (a ring with virtual nodes proportional to weight).
 *
 * A balancer belongs to one worker and one configuration snapshot: it takes no lock and must be
 * used by one thread only. */
#ifndef LINTEL_BALANCE_H
#define LINTEL_BALANCE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct lintel_balancer;

/* Creates the balancer for up (which must outlive it). Returns NULL when out of memory. */
struct lintel_balancer *lintel_balancer_new(const struct lintel_upstream_conf *up);

/* Frees a balancer. NULL is ignored. */
void lintel_balancer_free(struct lintel_balancer *b);

/* Picks a target index in [0, ntargets), or -1 when every target is skipped.
 * key/key_len: the hash key (HASH only; NULL makes a HASH balancer fall back to round robin).
 * skip: NULL, or ntargets flags; a nonzero flag excludes that target (already tried by this
 * request, or down). A HASH balancer whose target is skipped walks the ring to the next target.
 * Every successful pick must be matched by one lintel_balancer_release. */
int lintel_balancer_pick(struct lintel_balancer *b, const char *key, size_t key_len,
                         const unsigned char *skip);

/* Ends the use of a target returned by pick (least_conn counts active requests). */
void lintel_balancer_release(struct lintel_balancer *b, int target);

/* 64-bit hash used by the consistent-hash ring (exposed for tests and for plugins' stickiness). */
uint64_t lintel_hash64(const void *data, size_t len);

#endif
