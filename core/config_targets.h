/* The targets of an upstream: one per IP address written in the file, and one per address each
 * host name resolves to. A configuration as loaded has only the IP ones; every snapshot gets a
 * configuration of its own with the names' current addresses (lintel_config_resolve), sharing
 * everything else with the loaded one. */
#ifndef LINTEL_CONFIG_TARGETS_H
#define LINTEL_CONFIG_TARGETS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "arena.h"
#include "config.h"

/* What the resolver knows about a host name: its addresses (port 0), sorted and without
 * duplicates, and why it has none or why the last attempt failed. */
struct lintel_name_addrs {
    const struct sockaddr_storage *addrs;
    size_t naddrs;
    const char *error; /* NULL when the last attempt succeeded */
};

/* Looks up host; returns false when nothing is known about it yet. */
typedef bool (*lintel_names_lookup_fn)(void *ctx, const char *host, struct lintel_name_addrs *out);

/* Sets up->targets, ntargets and unresolved from up->decl, in the order written (a name's
 * addresses where the name stands), with their Host, SNI and pool key. lookup NULL: names have
 * no address. Allocates from arena. Returns 0, or -1 when out of memory. Thread: main. */
int lintel_targets_build(struct lintel_arena *arena, struct lintel_upstream_conf *up,
                         lintel_names_lookup_fn lookup, void *ctx);

/* A configuration for a snapshot: base (as loaded, not freed before the result) with every
 * upstream's targets built from lookup, and routes pointing at those upstreams. Returns base
 * itself when it has no host names, else a new configuration (free it with lintel_config_free:
 * that frees only what it added), or NULL when out of memory. Thread: main. */
struct lintel_config *lintel_config_resolve(const struct lintel_config *base,
                                            lintel_names_lookup_fn lookup, void *ctx);

/* Whether x and y (one upstream in two resolutions of a loaded configuration) have the same
 * targets and the same explanation for names without an address. */
bool lintel_upstream_same_targets(const struct lintel_upstream_conf *x,
                                  const struct lintel_upstream_conf *y);

/* Whether a and b (two resolutions of one loaded configuration) have the same targets. */
bool lintel_config_same_targets(const struct lintel_config *a, const struct lintel_config *b);

#endif
