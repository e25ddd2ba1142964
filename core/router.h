/* Route matching.
 *
 * Precedence: routes naming the request's host (exact host, then the longest matching wildcard)
 * before host-less routes; within a host group: exact path > longest prefix > regex in file order.
 * Among routes sharing the same path, the first in file order whose methods and headers match
 * wins. Exact and prefix lookups cost O(path length), not O(number of routes). A router is
 * immutable after lintel_router_new. It compiles its own copy of every regex, because glibc's
 * regexec takes a lock inside the regex_t it runs: give each worker its own router and the
 * request path takes no lock. */
#ifndef LINTEL_ROUTER_H
#define LINTEL_ROUTER_H

#include <stddef.h>

#include "config.h"

struct lintel_router;

/* What the router needs to know about a request. */
struct lintel_match_req {
    const char *host; /* lowercase, without port; may be NULL (no Host) */
    size_t host_len;
    const char *path; /* NUL-terminated, without query */
    size_t path_len;
    int method; /* enum http_method */
    /* Returns the value of the first header called name (case-insensitive) or NULL. */
    const char *(*header)(void *ctx, const char *name, size_t *value_len);
    void *header_ctx;
};

enum lintel_match_result {
    LINTEL_MATCH_FOUND,
    LINTEL_MATCH_NOT_FOUND,          /* 404 */
    LINTEL_MATCH_METHOD_NOT_ALLOWED, /* 405: a route matched host, path and headers, not method */
};

/* Builds a router over routes[0..n); routes must outlive it. Returns NULL with err set when out of
 * memory. */
struct lintel_router *lintel_router_new(const struct lintel_route_conf *routes, size_t n, char *err,
                                        size_t errlen);

/* Frees a router. NULL is ignored. */
void lintel_router_free(struct lintel_router *r);

/* Finds the route for q. On FOUND sets *route and *prefix_len (the length of the matched prefix
 * for a prefix match, 0 for exact and regex matches; used by strip_prefix). Thread: any. */
enum lintel_match_result lintel_router_match(const struct lintel_router *r,
                                             const struct lintel_match_req *q,
                                             const struct lintel_route_conf **route,
                                             size_t *prefix_len);

#endif
