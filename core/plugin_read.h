/* What a plugin reads through the host table that needs neither a request nor libevent: its
 * configuration (cfg_*, over core/ynode.c's tree) and the parsing behind req_arg and req_cookie.
 * The gateway (core/host_api.c) and the SDK test kit both use these, so a plugin reads its config
 * and its requests the same way in its unit tests as in lintel. */
#ifndef LINTEL_PLUGIN_READ_H
#define LINTEL_PLUGIN_READ_H

#include <stddef.h>

#include <lintel/plugin.h>

/* The host API cfg_* entries; a lintel_cfg is a const struct lintel_ynode. */
enum lintel_cfg_type lintel_cfg_type(const lintel_cfg *node);
const lintel_cfg *lintel_cfg_get(const lintel_cfg *map, const char *key);
size_t lintel_cfg_len(const lintel_cfg *node);
const lintel_cfg *lintel_cfg_at(const lintel_cfg *node, size_t i);
const char *lintel_cfg_key_at(const lintel_cfg *map, size_t i);
const char *lintel_cfg_str(const lintel_cfg *node);
/* Decimal only, an optional '-': no '+', spaces, hex or octal; -1 on overflow. */
int lintel_cfg_int(const lintel_cfg *node, int64_t *out);
int lintel_cfg_bool(const lintel_cfg *node, int *out);
int lintel_cfg_duration_ms(const lintel_cfg *node, uint64_t *out);
int lintel_cfg_size(const lintel_cfg *node, uint64_t *out);

/* The value of query argument name in query[0..len) ("a=1&flag&b=2": "flag" has the empty
 * value), first match, as sent (not decoded); {NULL,0} when absent. */
struct lintel_str lintel_query_arg(const char *query, size_t len, const char *name);

/* The value of cookie name in one Cookie header value ("a=1; b=2"), first match; a cookie needs
 * its '='; the value runs to the next ';' as sent. {NULL,0} when absent. */
struct lintel_str lintel_cookie_in(const char *value, size_t len, const char *name);

#endif
