/* Shared by the configuration loader's files (config.c, config_upstream.c, config_route.c):
 * the walk's state and the readers that turn YAML nodes into typed values or an error.
 *
 * Every reader returns 0, or -1 with the error written as "FILE:LINE:COL: key.path: message".
 * Readers taking (map, key) leave *out untouched when the key is absent and not required, so
 * callers set defaults first. On error the walk stops, so the path is only restored on success. */
#ifndef LINTEL_CONFIG_INTERNAL_H
#define LINTEL_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ynode.h"

struct lintel_config_ctx {
    struct lintel_config *cfg;
    struct lintel_arena *arena; /* cfg->arena */
    const char *name;           /* file name for messages */
    struct lintel_ypath path;   /* key path of the node being read */
    char *err;
    size_t errlen;
};

/* Writes "NAME:LINE:COL: path: message" about node at (the path is the current one). Returns -1
 * so that callers can `return lintel_config_fail(...)`. */
__attribute__((format(printf, 3, 4))) int lintel_config_fail(struct lintel_config_ctx *c,
                                                             const struct lintel_ynode *at,
                                                             const char *fmt, ...);

/* Checks that n is a MAP whose keys are all in allowed (NULL-terminated). An unknown key is
 * reported at the key, with the key itself ending the path. */
int lintel_config_map(struct lintel_config_ctx *c, const struct lintel_ynode *n,
                      const char *const *allowed);

/* Finds key in map and checks that its value has the given type. When found, sets *out, pushes
 * key onto the path and sets *mark for lintel_ypath_restore. When absent: an error if required,
 * else *out = NULL and the path is unchanged. */
int lintel_config_child(struct lintel_config_ctx *c, const struct lintel_ynode *map,
                        const char *key, enum lintel_ynode_type type, bool required,
                        const struct lintel_ynode **out, size_t *mark);

/* A non-empty string. *out points into the YAML tree (owned by the configuration's arena). */
int lintel_config_string(struct lintel_config_ctx *c, const struct lintel_ynode *map,
                         const char *key, bool required, const char **out);

/* An integer in [min, max]. */
int lintel_config_uint(struct lintel_config_ctx *c, const struct lintel_ynode *map, const char *key,
                       unsigned min, unsigned max, unsigned *out);

/* true or false. */
int lintel_config_bool(struct lintel_config_ctx *c, const struct lintel_ynode *map, const char *key,
                       bool *out);

/* A duration in milliseconds; 0 is refused unless zero_ok. */
int lintel_config_duration(struct lintel_config_ctx *c, const struct lintel_ynode *map,
                           const char *key, bool zero_ok, uint64_t *ms);

/* A size in [min, max]; msg is the whole complaint ("must be a size from 1k to 1m"). */
int lintel_config_size(struct lintel_config_ctx *c, const struct lintel_ynode *map, const char *key,
                       uint64_t min, uint64_t max, const char *msg, uint64_t *bytes);

/* "host:port", resolved now. */
int lintel_config_address(struct lintel_config_ctx *c, const struct lintel_ynode *map,
                          const char *key, bool required, struct lintel_sockaddr *out);

/* A plugin list (global or per route): a list of maps, each with a string `name`. The rest of
 * each entry is the plugin host's to check. n must be a SEQ. */
int lintel_config_plugin_list(struct lintel_config_ctx *c, const struct lintel_ynode *n);

/* Reads a listen entry's `tls` map (n must be a MAP). */
int lintel_config_tls(struct lintel_config_ctx *c, const struct lintel_ynode *n,
                      struct lintel_tls_conf **out);

/* Reads the top-level `resolver` section (defaults when absent). Before the upstreams: their
 * resolve_interval defaults to its interval. */
int lintel_config_resolver(struct lintel_config_ctx *c, const struct lintel_ynode *root);

/* Reads the `upstreams` map into cfg->upstreams. n must be a MAP. */
int lintel_config_upstreams(struct lintel_config_ctx *c, const struct lintel_ynode *n);

/* Reads the `routes` list into cfg->routes; upstreams must be read already. n must be a SEQ. */
int lintel_config_routes(struct lintel_config_ctx *c, const struct lintel_ynode *n);

#endif
