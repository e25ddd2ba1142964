/* Fuzz target: route matching (core/router.c) against a plain reference implementation of the
 * precedence documented in core/router.h:
 *   routes naming the request's host exactly, then wildcard hosts (longest suffix first), then
 *   host-less routes; within a host: exact path > longest prefix > regex in file order; among
 *   routes sharing a path, the first in file order whose headers and method match; 405 when some
 *   route matched everything but the method.
 * The input describes up to 12 routes (hosts, paths, methods, header conditions drawn from small
 * alphabets so that they collide) and then requests; the router's answer, route and prefix
 * length must equal the reference's for every request. */
#include <regex.h>
#include <stddef.h>
#include <stdint.h>
#include <strings.h>

#include "fuzz_common.h"
#include "router.h"

#define MAX_ROUTES 12
#define MAX_PATHS 3

static const char *const host_pool[] = {"a.com",     "b.a.com", "x.b.a.com", "*.a.com",
                                        "*.b.a.com", "c.org",   "*.org"};
static const char *const regex_pool[] = {"^/a[0-9]*$", "b", "^/$", "a.*c", "^/(a|b)/?"};
#define NREGEX (sizeof(regex_pool) / sizeof(*regex_pool))

/* The pool compiled once (the reference only runs them; the router compiles its own copies). */
static regex_t *regex_compiled(unsigned i)
{
    static regex_t re[NREGEX];
    static bool done[NREGEX];
    if (!done[i]) {
        FUZZ_CHECK(regcomp(&re[i], regex_pool[i], REG_EXTENDED | REG_NOSUB) == 0, "regex");
        done[i] = true;
    }
    return &re[i];
}

static const struct lintel_header_match header_pool[] = {{"x-v", "1"}, {"x-v", "2"}, {"x-w", ""}};

/* A tiny byte reader over the input; returns 0 once the input is used up. */
struct rd {
    const uint8_t *p;
    size_t n;
};

static unsigned next(struct rd *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

/* A short string over an alphabet where prefixes collide often. */
static size_t gen_path(struct rd *r, char *out, size_t cap)
{
    static const char alpha[] = "/abc";
    size_t len = next(r) % 7;
    size_t i = 0;
    out[i++] = '/';
    for (size_t k = 0; k < len && i + 1 < cap; k++)
        out[i++] = alpha[next(r) % 4];
    out[i] = '\0';
    return i;
}

struct world {
    struct lintel_route_conf routes[MAX_ROUTES];
    struct lintel_path_conf paths[MAX_ROUTES][MAX_PATHS];
    char path_text[MAX_ROUTES][MAX_PATHS][16];
    const char *hosts[MAX_ROUTES][2];
    struct lintel_header_match headers[MAX_ROUTES][1];
    struct lintel_upstream_conf upstream;
    size_t n;
};

struct request {
    char host[16];
    size_t host_len;
    bool has_host;
    char path[16];
    size_t path_len;
    int method;
    const char *xv, *xw; /* header values, or NULL */
};

static const char *req_header(void *ctx, const char *name, size_t *len)
{
    const struct request *q = ctx;
    const char *v = !strcasecmp(name, "x-v") ? q->xv : !strcasecmp(name, "x-w") ? q->xw : NULL;
    if (v)
        *len = strlen(v);
    return v;
}

/* ---- the reference: every route, every path, no index ---- */

enum verdict { NO, WRONG_METHOD, YES };

static enum verdict ref_check(const struct lintel_route_conf *r, const struct request *q)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        size_t len = 0;
        const char *v = req_header((void *)q, r->headers[i].name, &len);
        if (!v || strcmp(v, r->headers[i].value) != 0)
            return NO;
    }
    if (r->methods && (q->method < 0 || q->method > 63 || !(r->methods >> q->method & 1)))
        return WRONG_METHOD;
    return YES;
}

/* Does route r belong to the host group named by key ("" = host-less, ".x" = wildcard suffix)? */
static bool in_group(const struct lintel_route_conf *r, const char *key)
{
    if (!key[0])
        return r->nhosts == 0;
    for (size_t h = 0; h < r->nhosts; h++) {
        const char *rh = r->hosts[h];
        if (key[0] == '.' ? (rh[0] == '*' && strcmp(rh + 1, key) == 0) : strcmp(rh, key) == 0)
            return true;
    }
    return false;
}

/* One group: exact, then prefixes longest first, then regexes; file order within each. */
static const struct lintel_route_conf *ref_group(const struct world *w, const char *key,
                                                 const struct request *q, bool *wrong, size_t *plen)
{
    static const struct lintel_path_conf root = {LINTEL_PATH_PREFIX, "/", NULL};
    for (size_t r = 0; r < w->n; r++) {
        const struct lintel_route_conf *rt = &w->routes[r];
        if (!in_group(rt, key))
            continue;
        for (size_t p = 0; p < rt->npaths; p++)
            if (rt->paths[p].kind == LINTEL_PATH_EXACT && !strcmp(rt->paths[p].text, q->path)) {
                enum verdict v = ref_check(rt, q);
                if (v == YES) {
                    *plen = 0;
                    return rt;
                }
                *wrong |= v == WRONG_METHOD;
                break;
            }
    }
    for (size_t len = q->path_len + 1; len-- > 0;) {
        for (size_t r = 0; r < w->n; r++) {
            const struct lintel_route_conf *rt = &w->routes[r];
            if (!in_group(rt, key))
                continue;
            size_t np = rt->npaths ? rt->npaths : 1;
            for (size_t p = 0; p < np; p++) {
                const struct lintel_path_conf *pc = rt->npaths ? &rt->paths[p] : &root;
                if (pc->kind != LINTEL_PATH_PREFIX || strlen(pc->text) != len ||
                    strncmp(pc->text, q->path, len) != 0)
                    continue;
                enum verdict v = ref_check(rt, q);
                if (v == YES) {
                    *plen = len;
                    return rt;
                }
                *wrong |= v == WRONG_METHOD;
                break;
            }
        }
    }
    for (size_t r = 0; r < w->n; r++) {
        const struct lintel_route_conf *rt = &w->routes[r];
        if (!in_group(rt, key))
            continue;
        for (size_t p = 0; p < rt->npaths; p++) {
            if (rt->paths[p].kind != LINTEL_PATH_REGEX ||
                regexec(rt->paths[p].re, q->path, 0, NULL, 0) != 0)
                continue;
            enum verdict v = ref_check(rt, q);
            if (v == YES) {
                *plen = 0;
                return rt;
            }
            *wrong |= v == WRONG_METHOD;
        }
    }
    return NULL;
}

static enum lintel_match_result ref_match(const struct world *w, const struct request *q,
                                          const struct lintel_route_conf **out, size_t *plen)
{
    bool wrong = false;
    const struct lintel_route_conf *rt = NULL;
    if (q->has_host) {
        rt = ref_group(w, q->host, q, &wrong, plen);
        for (size_t i = 0; !rt && i < q->host_len; i++)
            if (q->host[i] == '.')
                rt = ref_group(w, q->host + i, q, &wrong, plen);
    }
    if (!rt)
        rt = ref_group(w, "", q, &wrong, plen);
    if (!rt)
        return wrong ? LINTEL_MATCH_METHOD_NOT_ALLOWED : LINTEL_MATCH_NOT_FOUND;
    *out = rt;
    return LINTEL_MATCH_FOUND;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rd r = {data, size};
    static struct world w;
    memset(&w, 0, sizeof(w));
    w.upstream.name = "u";
    w.n = 1 + next(&r) % MAX_ROUTES;
    for (size_t i = 0; i < w.n; i++) {
        struct lintel_route_conf *rt = &w.routes[i];
        rt->index = i;
        rt->name = "r";
        rt->upstream = &w.upstream;
        unsigned flags = next(&r);
        rt->nhosts = flags % 3;
        for (size_t h = 0; h < rt->nhosts; h++)
            w.hosts[i][h] = host_pool[next(&r) % (sizeof(host_pool) / sizeof(*host_pool))];
        rt->hosts = w.hosts[i];
        rt->npaths = (flags >> 2) % (MAX_PATHS + 1);
        for (size_t p = 0; p < rt->npaths; p++) {
            struct lintel_path_conf *pc = &w.paths[i][p];
            unsigned k = next(&r) % 3;
            pc->kind = k == 0 ? LINTEL_PATH_PREFIX : k == 1 ? LINTEL_PATH_EXACT : LINTEL_PATH_REGEX;
            if (pc->kind == LINTEL_PATH_REGEX) {
                unsigned x = next(&r) % NREGEX;
                pc->text = regex_pool[x];
                pc->re = regex_compiled(x);
            } else {
                gen_path(&r, w.path_text[i][p], sizeof(w.path_text[i][p]));
                pc->text = w.path_text[i][p];
            }
        }
        rt->paths = w.paths[i];
        if (flags & 0x20) {
            w.headers[i][0] = header_pool[next(&r) % 3];
            rt->headers = w.headers[i];
            rt->nheaders = 1;
        }
        if (flags & 0x40)
            rt->methods = (1ull << (next(&r) % 8)) | (1ull << (next(&r) % 8));
    }

    char err[256];
    struct lintel_router *router = lintel_router_new(w.routes, w.n, err, sizeof(err));
    FUZZ_CHECK(router != NULL, "router: %s", err);
    static const char *const req_hosts[] = {"a.com", "b.a.com", "x.b.a.com", "y.x.b.a.com",
                                            "c.org", "org",     "q.c.org",   "z.com"};
    static const char *const values[] = {"1", "2", ""};
    for (int k = 0; k < 16 && r.n; k++) {
        struct request q = {0};
        unsigned f = next(&r);
        q.has_host = f & 1;
        if (q.has_host) {
            snprintf(q.host, sizeof(q.host), "%s", req_hosts[(f >> 1) % 8]);
            q.host_len = strlen(q.host);
        }
        q.path_len = gen_path(&r, q.path, sizeof(q.path));
        q.method = (int)(next(&r) % 10) - 1; /* -1 (unknown) and a few real methods */
        unsigned hv = next(&r);
        q.xv = hv & 4 ? values[hv % 3] : NULL;
        q.xw = hv & 8 ? values[(hv >> 4) % 3] : NULL;

        struct lintel_match_req m = {
            q.has_host ? q.host : NULL, q.host_len, q.path, q.path_len, q.method, req_header, &q};
        const struct lintel_route_conf *got = NULL, *want = NULL;
        size_t got_len = 99, want_len = 99;
        enum lintel_match_result a = lintel_router_match(router, &m, &got, &got_len);
        enum lintel_match_result b = ref_match(&w, &q, &want, &want_len);
        FUZZ_CHECK(a == b, "host %s path %s method %d: router %d, reference %d",
                   q.has_host ? q.host : "-", q.path, q.method, a, b);
        if (a == LINTEL_MATCH_FOUND)
            FUZZ_CHECK(got == want && got_len == want_len,
                       "host %s path %s: router route %zu/%zu, reference %zu/%zu",
                       q.has_host ? q.host : "-", q.path, got->index, got_len, want->index,
                       want_len);
    }
    lintel_router_free(router);
    return 0;
}
