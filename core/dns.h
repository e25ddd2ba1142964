/* Discovery: host-name targets resolved with libevent's evdns on the main thread's event loop
 * (never a blocking resolver call), at start and again every `resolve_interval`.
 *
 * The resolver keeps, per name, the last addresses it got. A failed attempt keeps them (the
 * targets go on serving) and is logged once per change of state (failing / resolving again);
 * a change of addresses is logged and reported to the owner, which then publishes a snapshot
 * with the new targets. /etc/hosts-style entries are consulted before any nameserver. */
#ifndef LINTEL_DNS_H
#define LINTEL_DNS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "config_targets.h"

struct event_base;
struct lintel_dns;

/* Creates the resolver on base (which must outlive it) with the settings of cfg->resolver:
 * nameservers (none: /etc/resolv.conf), hosts file, timeout and attempts. on_change(ctx) is
 * called on the main thread, once per loop iteration at most, after some name's addresses
 * changed or its error changed while it has none. Returns NULL with err set. Thread: main. */
struct lintel_dns *lintel_dns_new(struct event_base *base, const struct lintel_config *cfg,
                                  void (*on_change)(void *ctx), void *ctx, char *err,
                                  size_t errlen);

/* Resolves every host name of cfg's upstreams from now on, each at the shortest
 * resolve_interval of the upstreams naming it; new names are looked up at once (a hosts-file
 * entry answers before this returns). Names cfg does not use stay until lintel_dns_retain.
 * Returns 0, or -1 when out of memory. Thread: main. */
int lintel_dns_track(struct lintel_dns *d, const struct lintel_config *cfg);

/* Stops resolving names cfg does not use, and forgets them. Thread: main. */
void lintel_dns_retain(struct lintel_dns *d, const struct lintel_config *cfg);

/* Whether some tracked name has had no answer (nor a failure) yet. Thread: main. */
bool lintel_dns_pending(const struct lintel_dns *d);

/* A lintel_names_lookup_fn (ctx: the resolver): what is known about host now. The addresses
 * stay valid until the next return to the event loop. Thread: main. */
bool lintel_dns_lookup(void *ctx, const char *host, struct lintel_name_addrs *out);

/* Whether the settings in a and b differ (the resolver keeps its first ones until a restart). */
bool lintel_dns_settings_differ(const struct lintel_resolver_conf *a,
                                const struct lintel_resolver_conf *b);

/* Frees the resolver; lookups in flight are dropped without their callbacks. Call it before
 * base is freed. NULL is ignored. Thread: main. */
void lintel_dns_free(struct lintel_dns *d);

#endif
