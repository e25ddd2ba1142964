/* The `routes` section: what requests a route takes (hosts, paths, methods, headers) and the
 * upstream and plugins it sends them through. */
#include <ctype.h>
#include <http_parser.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config-internal.h"

#define COUNT_METHOD(num, name, string) +1
enum { METHOD_COUNT = 0 HTTP_METHOD_MAP(COUNT_METHOD) };
#undef COUNT_METHOD
_Static_assert(METHOD_COUNT <= 64, "route methods are a 64-bit mask");

static void free_regex(void *re)
{
    regfree(re);
}

/* A short phrase when host is not a host name lintel can match, else NULL. */
static const char *host_problem(const char *host)
{
    if (!*host)
        return "must not be empty";
    const char *p = host;
    if (strncmp(p, "*.", 2) == 0) {
        if (!p[2])
            return "wildcard needs a domain after \"*.\"";
        p += 2;
    }
    if (strchr(p, '*'))
        return "wildcard is only allowed as a leading \"*.\"";
    /* Requests are matched on the Host header without its port, so a port here never matches.
     * A bracketed IPv6 literal keeps its colons. */
    if (host[0] != '[' && strchr(host, ':'))
        return "must not include a port";
    for (; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-._[]:", *p))
            return "is not a host name";
    return NULL;
}

static int read_hosts(struct lintel_config_ctx *c, const struct lintel_ynode *match,
                      struct lintel_route_conf *r)
{
    const struct lintel_ynode *n;
    size_t mark;

    if (lintel_config_child(c, match, "hosts", LINTEL_YNODE_SEQ, false, &n, &mark) < 0)
        return -1;
    if (!n)
        return 0;
    if (n->len && !(r->hosts = lintel_arena_alloc(c->arena, n->len * sizeof(*r->hosts))))
        return lintel_config_fail(c, n, "out of memory");
    for (size_t i = 0; i < n->len; i++) {
        const struct lintel_ynode *h = n->items[i];
        size_t item = lintel_ypath_push_index(&c->path, i);
        if (h->type != LINTEL_YNODE_SCALAR)
            return lintel_config_fail(c, h, "must be a string");
        const char *why = host_problem(h->scalar);
        if (why)
            return lintel_config_fail(c, h, "%s", why);
        /* Host names compare case-insensitively; the router compares lowercase bytes. */
        char *lower = lintel_arena_strndup(c->arena, h->scalar, h->len);
        if (!lower)
            return lintel_config_fail(c, h, "out of memory");
        for (char *p = lower; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        r->hosts[i] = lower;
        lintel_ypath_restore(&c->path, item);
    }
    r->nhosts = n->len;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

static int read_path(struct lintel_config_ctx *c, const struct lintel_ynode *p,
                     struct lintel_path_conf *out)
{
    if (p->type != LINTEL_YNODE_SCALAR)
        return lintel_config_fail(c, p, "must be a string");
    const char *s = p->scalar;
    if (s[0] == '~') {
        out->kind = LINTEL_PATH_REGEX;
        out->text = s + 1;
        if (!*out->text)
            return lintel_config_fail(c, p, "regex must not be empty");
        out->re = lintel_arena_alloc(c->arena, sizeof(*out->re));
        if (!out->re)
            return lintel_config_fail(c, p, "out of memory");
        int rc = regcomp(out->re, out->text, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char why[256];
            regerror(rc, out->re, why, sizeof(why));
            return lintel_config_fail(c, p, "regex does not compile: %s", why);
        }
        if (lintel_arena_cleanup_add(c->arena, free_regex, out->re) < 0) {
            regfree(out->re);
            return lintel_config_fail(c, p, "out of memory");
        }
        return 0;
    }
    out->kind = s[0] == '=' ? LINTEL_PATH_EXACT : LINTEL_PATH_PREFIX;
    out->text = s[0] == '=' ? s + 1 : s;
    if (out->text[0] != '/')
        return lintel_config_fail(c, p, "must start with \"/\", \"=/\" or \"~\"");
    return 0;
}

static int read_paths(struct lintel_config_ctx *c, const struct lintel_ynode *match,
                      struct lintel_route_conf *r)
{
    const struct lintel_ynode *n;
    size_t mark;

    if (lintel_config_child(c, match, "paths", LINTEL_YNODE_SEQ, false, &n, &mark) < 0)
        return -1;
    if (!n)
        return 0;
    if (n->len && !(r->paths = lintel_arena_calloc(c->arena, n->len * sizeof(*r->paths))))
        return lintel_config_fail(c, n, "out of memory");
    for (size_t i = 0; i < n->len; i++) {
        size_t item = lintel_ypath_push_index(&c->path, i);
        if (read_path(c, n->items[i], &r->paths[i]) < 0)
            return -1;
        lintel_ypath_restore(&c->path, item);
    }
    r->npaths = n->len;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

static int read_methods(struct lintel_config_ctx *c, const struct lintel_ynode *match,
                        struct lintel_route_conf *r)
{
    const struct lintel_ynode *n;
    size_t mark;

    if (lintel_config_child(c, match, "methods", LINTEL_YNODE_SEQ, false, &n, &mark) < 0)
        return -1;
    if (!n)
        return 0;
    for (size_t i = 0; i < n->len; i++) {
        const struct lintel_ynode *m = n->items[i];
        size_t item = lintel_ypath_push_index(&c->path, i);
        if (m->type != LINTEL_YNODE_SCALAR)
            return lintel_config_fail(c, m, "must be a string");
        /* Methods are case-sensitive in HTTP; http-parser only knows the uppercase ones. */
        int k = 0;
        while (k < METHOD_COUNT && strcmp(http_method_str((enum http_method)k), m->scalar) != 0)
            k++;
        if (k == METHOD_COUNT)
            return lintel_config_fail(c, m, "unknown HTTP method \"%s\"", m->scalar);
        r->methods |= 1ull << k;
        lintel_ypath_restore(&c->path, item);
    }
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return false;
    return true;
}

static int read_headers(struct lintel_config_ctx *c, const struct lintel_ynode *match,
                        struct lintel_route_conf *r)
{
    const struct lintel_ynode *n;
    size_t mark;

    if (lintel_config_child(c, match, "headers", LINTEL_YNODE_MAP, false, &n, &mark) < 0)
        return -1;
    if (!n)
        return 0;
    if (n->len && !(r->headers = lintel_arena_alloc(c->arena, n->len * sizeof(*r->headers))))
        return lintel_config_fail(c, n, "out of memory");
    for (size_t i = 0; i < n->len; i++) {
        const struct lintel_ynode *k = n->keys[i], *v = n->items[i];
        size_t item = lintel_ypath_push_key(&c->path, k->scalar);
        if (!is_token(k->scalar))
            return lintel_config_fail(c, k, "is not a header name");
        /* The YAML loader refuses exact duplicates; header names also differ only in case. */
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(r->headers[j].name, k->scalar) == 0)
                return lintel_config_fail(c, k, "duplicate header name");
        if (v->type != LINTEL_YNODE_SCALAR)
            return lintel_config_fail(c, v, "must be a string");
        r->headers[i] = (struct lintel_header_match){k->scalar, v->scalar};
        lintel_ypath_restore(&c->path, item);
    }
    r->nheaders = n->len;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

static int read_match(struct lintel_config_ctx *c, const struct lintel_ynode *route,
                      struct lintel_route_conf *r)
{
    static const char *const keys[] = {"hosts", "paths", "methods", "headers", NULL};
    const struct lintel_ynode *n;
    size_t mark;

    if (lintel_config_child(c, route, "match", LINTEL_YNODE_MAP, false, &n, &mark) < 0)
        return -1;
    if (!n)
        return 0;
    if (lintel_config_map(c, n, keys) < 0 || read_hosts(c, n, r) < 0 || read_paths(c, n, r) < 0 ||
        read_methods(c, n, r) < 0 || read_headers(c, n, r) < 0)
        return -1;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

/* Upstream references are few per route; a linear scan keeps loading O(routes * upstreams),
 * a few million comparisons for the largest fleets. */
static int read_upstream_ref(struct lintel_config_ctx *c, const struct lintel_ynode *route,
                             struct lintel_route_conf *r)
{
    const char *name;
    if (lintel_config_string(c, route, "upstream", true, &name) < 0)
        return -1;
    for (size_t i = 0; i < c->cfg->nupstreams; i++) {
        if (strcmp(c->cfg->upstreams[i].name, name) == 0) {
            r->upstream = &c->cfg->upstreams[i];
            return 0;
        }
    }
    lintel_ypath_push_key(&c->path, "upstream");
    return lintel_config_fail(c, lintel_ynode_get(route, "upstream"), "unknown upstream \"%s\"",
                              name);
}

static int read_route_plugins(struct lintel_config_ctx *c, const struct lintel_ynode *route,
                              struct lintel_route_conf *r)
{
    const struct lintel_ynode *n;
    size_t mark;

    if (lintel_config_child(c, route, "plugins", LINTEL_YNODE_SEQ, false, &n, &mark) < 0)
        return -1;
    if (n) {
        if (lintel_config_plugin_list(c, n) < 0)
            return -1;
        r->plugins = n;
        lintel_ypath_restore(&c->path, mark);
    }
    if (lintel_config_child(c, route, "disable_plugins", LINTEL_YNODE_SEQ, false, &n, &mark) < 0)
        return -1;
    if (!n)
        return 0;
    for (size_t i = 0; i < n->len; i++) {
        const struct lintel_ynode *s = n->items[i];
        size_t item = lintel_ypath_push_index(&c->path, i);
        if (s->type != LINTEL_YNODE_SCALAR || s->len == 0)
            return lintel_config_fail(c, s, "must be a plugin name");
        lintel_ypath_restore(&c->path, item);
    }
    r->disable_plugins = n;
    lintel_ypath_restore(&c->path, mark);
    return 0;
}

static int read_route(struct lintel_config_ctx *c, const struct lintel_ynode *route,
                      struct lintel_route_conf *r)
{
    static const char *const keys[] = {"name",    "match",           "upstream", "strip_prefix",
                                       "plugins", "disable_plugins", NULL};

    r->node = route;
    if (lintel_config_map(c, route, keys) < 0 ||
        lintel_config_string(c, route, "name", true, &r->name) < 0 || read_match(c, route, r) < 0 ||
        read_upstream_ref(c, route, r) < 0 ||
        lintel_config_bool(c, route, "strip_prefix", &r->strip_prefix) < 0 ||
        read_route_plugins(c, route, r) < 0)
        return -1;
    return 0;
}

static int check_unique_names(struct lintel_config_ctx *c)
{
    struct lintel_config *cfg = c->cfg;
    const char **names = malloc(cfg->nroutes * sizeof(*names));
    size_t dup;

    if (!names)
        return lintel_config_fail(c, cfg->root, "out of memory");
    for (size_t i = 0; i < cfg->nroutes; i++)
        names[i] = cfg->routes[i].name;
    int rc = lintel_find_duplicate(names, cfg->nroutes, &dup);
    free(names);
    if (rc < 0)
        return lintel_config_fail(c, cfg->root, "out of memory");
    if (rc == 0)
        return 0;
    lintel_ypath_push_index(&c->path, dup);
    lintel_ypath_push_key(&c->path, "name");
    return lintel_config_fail(c, lintel_ynode_get(cfg->routes[dup].node, "name"),
                              "duplicate route name \"%s\"", cfg->routes[dup].name);
}

int lintel_config_routes(struct lintel_config_ctx *c, const struct lintel_ynode *n)
{
    struct lintel_config *cfg = c->cfg;

    if (n->len && !(cfg->routes = lintel_arena_calloc(c->arena, n->len * sizeof(*cfg->routes))))
        return lintel_config_fail(c, n, "out of memory");
    for (size_t i = 0; i < n->len; i++) {
        size_t mark = lintel_ypath_push_index(&c->path, i);
        cfg->routes[i].index = i;
        if (read_route(c, n->items[i], &cfg->routes[i]) < 0)
            return -1;
        lintel_ypath_restore(&c->path, mark);
    }
    cfg->nroutes = n->len;
    return n->len ? check_unique_names(c) : 0;
}
