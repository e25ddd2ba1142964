/* Tests for core/router.c: precedence, hosts, methods, headers, prefix lengths, a large table,
 * and a randomized comparison against a plain linear matcher written from the rules. */
#include <CUnit/Basic.h>
#include <http_parser.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "router.h"

/* A route written compactly: space-separated hosts, paths ("=exact", "~regex", "prefix") and
 * "name:value" headers; NULL for none. */
struct spec {
    const char *name;
    const char *hosts;
    const char *paths;
    uint64_t methods;
    const char *headers;
};

struct table {
    struct lintel_arena *arena;
    struct lintel_route_conf *routes;
    size_t n;
    struct lintel_router *router;
};

static void on_regex_free(void *re)
{
    regfree(re);
}

/* Splits s on spaces into arena strings; returns the count. */
static size_t split(struct lintel_arena *a, const char *s, const char ***out)
{
    size_t n = 0;
    *out = NULL;
    if (!s)
        return 0;
    for (const char *p = s; *p;) {
        while (*p == ' ')
            p++;
        if (*p)
            n++;
        while (*p && *p != ' ')
            p++;
    }
    const char **v = lintel_arena_alloc(a, (n ? n : 1) * sizeof(*v));
    size_t i = 0;
    for (const char *p = s; *p;) {
        while (*p == ' ')
            p++;
        const char *b = p;
        while (*p && *p != ' ')
            p++;
        if (p > b)
            v[i++] = lintel_arena_strndup(a, b, (size_t)(p - b));
    }
    *out = v;
    return n;
}

static void route_fill(struct lintel_arena *a, struct lintel_route_conf *r, size_t index,
                       const struct spec *s)
{
    memset(r, 0, sizeof(*r));
    r->index = index;
    r->name = s->name;
    r->methods = s->methods;
    r->nhosts = split(a, s->hosts, &r->hosts);
    const char **paths;
    r->npaths = split(a, s->paths, &paths);
    r->paths = lintel_arena_calloc(a, (r->npaths ? r->npaths : 1) * sizeof(*r->paths));
    for (size_t i = 0; i < r->npaths; i++) {
        struct lintel_path_conf *p = &r->paths[i];
        const char *t = paths[i];
        if (t[0] == '=' || t[0] == '~') {
            p->kind = t[0] == '=' ? LINTEL_PATH_EXACT : LINTEL_PATH_REGEX;
            t++;
        } else {
            p->kind = LINTEL_PATH_PREFIX;
        }
        p->text = t;
        if (p->kind == LINTEL_PATH_REGEX) {
            p->re = lintel_arena_alloc(a, sizeof(*p->re));
            CU_ASSERT_FATAL(regcomp(p->re, t, REG_EXTENDED | REG_NOSUB) == 0);
            CU_ASSERT_FATAL(lintel_arena_cleanup_add(a, on_regex_free, p->re) == 0);
        }
    }
    const char **hdrs;
    r->nheaders = split(a, s->headers, &hdrs);
    r->headers = lintel_arena_calloc(a, (r->nheaders ? r->nheaders : 1) * sizeof(*r->headers));
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *colon = strchr(hdrs[i], ':');
        r->headers[i].name = lintel_arena_strndup(a, hdrs[i], (size_t)(colon - hdrs[i]));
        r->headers[i].value = colon + 1;
    }
}

static void table_build(struct table *t, const struct spec *specs, size_t n)
{
    char err[128];
    t->arena = lintel_arena_new(4096);
    CU_ASSERT_FATAL(t->arena != NULL);
    t->routes = lintel_arena_calloc(t->arena, (n ? n : 1) * sizeof(*t->routes));
    t->n = n;
    for (size_t i = 0; i < n; i++)
        route_fill(t->arena, &t->routes[i], i, &specs[i]);
    t->router = lintel_router_new(t->routes, n, err, sizeof(err));
    CU_ASSERT_FATAL(t->router != NULL);
}

static void table_free(struct table *t)
{
    lintel_router_free(t->router);
    lintel_arena_free(t->arena);
}

/* Request headers as "name:value" pairs separated by spaces. */
static const char *on_header(void *ctx, const char *name, size_t *len)
{
    const char *p = ctx;
    size_t nl = strlen(name);
    while (p && *p) {
        while (*p == ' ')
            p++;
        const char *colon = strchr(p, ':');
        const char *end = strchr(p, ' ');
        if (!end)
            end = p + strlen(p);
        if (colon && colon < end && (size_t)(colon - p) == nl && strncasecmp(p, name, nl) == 0) {
            *len = (size_t)(end - colon - 1);
            return colon + 1;
        }
        p = end;
    }
    return NULL;
}

static size_t last_prefix_len;

/* Returns the matched route's name, "404" or "405". */
static const char *match(const struct table *t, const char *host, int method, const char *path,
                         const char *headers)
{
    struct lintel_match_req q = {host,      host ? strlen(host) : 0, path, strlen(path), method,
                                 on_header, (void *)headers};
    const struct lintel_route_conf *route = NULL;
    last_prefix_len = (size_t)-1;
    switch (lintel_router_match(t->router, &q, &route, &last_prefix_len)) {
    case LINTEL_MATCH_FOUND:
        return route->name;
    case LINTEL_MATCH_METHOD_NOT_ALLOWED:
        return "405";
    default:
        return "404";
    }
}

#define M(m) (1ull << (m))
#define GET HTTP_GET
#define POST HTTP_POST

static void test_path_precedence(void)
{
    static const struct spec s[] = {
        {"regex", NULL, "~^/api/.*$", 0, NULL}, {"short", NULL, "/api", 0, NULL},
        {"long", NULL, "/api/users", 0, NULL},  {"exact", NULL, "=/api/users/me", 0, NULL},
        {"root", NULL, "/", 0, NULL},
    };
    struct table t;
    table_build(&t, s, 5);
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/api/users/me", NULL), "exact");
    CU_ASSERT_EQUAL(last_prefix_len, 0);
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/api/users/me2", NULL), "long");
    CU_ASSERT_EQUAL(last_prefix_len, 10);
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/api/users", NULL), "long");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/api/usersx", NULL), "long");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/api/user", NULL), "short");
    CU_ASSERT_EQUAL(last_prefix_len, 4);
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/apix", NULL), "short");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/ap", NULL), "root");
    CU_ASSERT_EQUAL(last_prefix_len, 1);
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "", NULL), "404");
    table_free(&t);
}

static void test_regex_file_order(void)
{
    static const struct spec s[] = {
        {"first", NULL, "~^/v[0-9]+/items$ =/nothing", 0, NULL},
        {"second", NULL, "~^/v1/", 0, NULL},
        {"third", NULL, "~items", 0, NULL},
        {"pfx", NULL, "/v1/z", 0, NULL},
    };
    struct table t;
    table_build(&t, s, 4);
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/v1/items", NULL), "first");
    CU_ASSERT_EQUAL(last_prefix_len, 0);
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/v1/items/3", NULL), "second");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/v2/items/3", NULL), "third");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/v1/zz", NULL), "pfx");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/v2/x", NULL), "404");
    table_free(&t);
}

static void test_same_path_file_order(void)
{
    static const struct spec s[] = {
        {"post", NULL, "/a", M(POST), NULL},
        {"any1", NULL, "/a", 0, NULL},
        {"any2", NULL, "/a", 0, NULL},
    };
    struct table t;
    table_build(&t, s, 3);
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, POST, "/a", NULL), "post");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/a", NULL), "any1");
    table_free(&t);
}

static void test_hosts(void)
{
    static const struct spec s[] = {
        {"wild", "*.example.org", "/", 0, NULL},       {"deep", "*.b.example.org", "/", 0, NULL},
        {"exact", "a.b.example.org", "/x", 0, NULL},   {"any", NULL, "/", 0, NULL},
        {"multi", "one.test two.test", "/m", 0, NULL},
    };
    struct table t;
    table_build(&t, s, 5);
    CU_ASSERT_STRING_EQUAL(match(&t, "a.example.org", GET, "/", NULL), "wild");
    CU_ASSERT_STRING_EQUAL(match(&t, "x.y.example.org", GET, "/", NULL), "wild");
    CU_ASSERT_STRING_EQUAL(match(&t, "example.org", GET, "/", NULL), "any");
    CU_ASSERT_STRING_EQUAL(match(&t, "xexample.org", GET, "/", NULL), "any");
    CU_ASSERT_STRING_EQUAL(match(&t, "c.b.example.org", GET, "/", NULL), "deep");
    CU_ASSERT_STRING_EQUAL(match(&t, "b.example.org", GET, "/", NULL), "wild");
    CU_ASSERT_STRING_EQUAL(match(&t, "a.b.example.org", GET, "/x", NULL), "exact");
    /* The exact host's group has nothing for /y: its wildcards, then host-less routes, follow. */
    CU_ASSERT_STRING_EQUAL(match(&t, "a.b.example.org", GET, "/y", NULL), "deep");
    CU_ASSERT_STRING_EQUAL(match(&t, "two.test", GET, "/m", NULL), "multi");
    CU_ASSERT_STRING_EQUAL(match(&t, "one.test", GET, "/m/1", NULL), "multi");
    CU_ASSERT_STRING_EQUAL(match(&t, "one.test", GET, "/n", NULL), "any");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/m", NULL), "any");
    CU_ASSERT_STRING_EQUAL(match(&t, "other", GET, "/", NULL), "any");
    table_free(&t);
}

static void test_host_fallthrough(void)
{
    static const struct spec s[] = {
        {"api-users", "api.test", "=/users", M(GET), NULL},
        {"free", NULL, "/users", 0, NULL},
        {"only-host", "solo.test", "/a", 0, NULL},
    };
    struct table t;
    table_build(&t, s, 3);
    CU_ASSERT_STRING_EQUAL(match(&t, "api.test", GET, "/users", NULL), "api-users");
    CU_ASSERT_STRING_EQUAL(match(&t, "api.test", POST, "/users", NULL), "free");
    CU_ASSERT_EQUAL(last_prefix_len, 6);
    CU_ASSERT_STRING_EQUAL(match(&t, "api.test", GET, "/users/1", NULL), "free");
    CU_ASSERT_STRING_EQUAL(match(&t, "solo.test", GET, "/b", NULL), "404");
    CU_ASSERT_STRING_EQUAL(match(&t, "other.test", GET, "/a", NULL), "404");
    table_free(&t);
}

static void test_methods(void)
{
    static const struct spec s[] = {
        {"get", NULL, "/items", M(GET) | M(HTTP_HEAD), NULL},
        {"post-deep", NULL, "/items/new", M(POST), NULL},
        {"rx", NULL, "~^/r/", M(HTTP_DELETE), NULL},
        {"host-put", "h.test", "=/h", M(HTTP_PUT), NULL},
    };
    struct table t;
    table_build(&t, s, 4);
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/items", NULL), "get");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, HTTP_HEAD, "/items/1", NULL), "get");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, POST, "/items", NULL), "405");
    /* The longest prefix refuses GET, the shorter one takes it. */
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/items/new", NULL), "get");
    CU_ASSERT_EQUAL(last_prefix_len, 6);
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, POST, "/items/new", NULL), "post-deep");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, HTTP_PUT, "/items/new", NULL), "405");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, HTTP_DELETE, "/r/1", NULL), "rx");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/r/1", NULL), "405");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/s/1", NULL), "404");
    CU_ASSERT_STRING_EQUAL(match(&t, "h.test", GET, "/h", NULL), "405");
    CU_ASSERT_STRING_EQUAL(match(&t, "h.test", HTTP_PUT, "/h", NULL), "host-put");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, -1, "/items", NULL), "405");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, 99, "/items", NULL), "405");
    table_free(&t);
}

static void test_headers(void)
{
    static const struct spec s[] = {
        {"v2", NULL, "/api", 0, "X-Version:2 x-tenant:acme"},
        {"v2-any", NULL, "/api", 0, "x-version:2"},
        {"post-v3", NULL, "/api", M(POST), "x-version:3"},
        {"plain", NULL, "/", 0, NULL},
    };
    struct table t;
    table_build(&t, s, 4);
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/api", "x-version:2 X-Tenant:acme"), "v2");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/api", "X-VERSION:2 x-tenant:other"), "v2-any");
    /* Values are exact: case and length matter. */
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/api", "x-version:20"), "plain");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/api", "x-tenant:acme"), "plain");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, POST, "/api", "x-version:3"), "post-v3");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/api", NULL), "plain");
    table_free(&t);

    /* No header callback at all: routes with header conditions cannot match. */
    struct table t2;
    table_build(&t2, s, 4);
    struct lintel_match_req q = {NULL, 0, "/api", 4, GET, NULL, NULL};
    const struct lintel_route_conf *route = NULL;
    size_t plen = 0;
    CU_ASSERT_EQUAL(lintel_router_match(t2.router, &q, &route, &plen), LINTEL_MATCH_FOUND);
    CU_ASSERT_STRING_EQUAL(route ? route->name : "(none)", "plain");
    table_free(&t2);
}

static void test_header_405(void)
{
    /* 405 needs host, path and headers to match; a header mismatch alone is a 404. */
    static const struct spec s[] = {{"r", NULL, "/a", M(POST), "x-k:v"}};
    struct table t;
    table_build(&t, s, 1);
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/a", "x-k:v"), "405");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/a", "x-k:w"), "404");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, POST, "/a", "x-k:v"), "r");
    table_free(&t);
}

static void test_empty_and_no_paths(void)
{
    struct table t;
    table_build(&t, NULL, 0);
    CU_ASSERT_STRING_EQUAL(match(&t, "a.test", GET, "/", NULL), "404");
    table_free(&t);

    static const struct spec s[] = {{"all", "x.test", NULL, 0, NULL}};
    table_build(&t, s, 1);
    CU_ASSERT_STRING_EQUAL(match(&t, "x.test", GET, "/anything", NULL), "all");
    CU_ASSERT_EQUAL(last_prefix_len, 1);
    CU_ASSERT_STRING_EQUAL(match(&t, "y.test", GET, "/anything", NULL), "404");
    table_free(&t);
}

#define BIG 10000

/* 10k routes: per service a prefix, an exact health check and, for every tenth, its own host. */
static void test_large_table(void)
{
    struct spec *s = calloc(BIG, sizeof(*s));
    char(*names)[32] = calloc(BIG, sizeof(*names));
    char(*paths)[64] = calloc(BIG, sizeof(*paths));
    char(*hosts)[32] = calloc(BIG, sizeof(*hosts));
    CU_ASSERT_FATAL(s && names && paths && hosts);
    for (size_t i = 0; i < BIG; i++) {
        snprintf(names[i], sizeof(names[i]), "r%zu", i);
        snprintf(paths[i], sizeof(paths[i]), "/svc/%zu/ =/svc/%zu/health", i, i);
        s[i].name = names[i];
        s[i].paths = paths[i];
        if (i % 10 == 0) {
            snprintf(hosts[i], sizeof(hosts[i]), "h%zu.test", i);
            s[i].hosts = hosts[i];
        }
        s[i].methods = i % 7 == 0 ? M(POST) : 0;
    }
    struct table t;
    table_build(&t, s, BIG);
    char path[64], host[32];
    int bad = 0;
    for (size_t i = 0; i < BIG; i++) {
        int m = i % 7 == 0 ? POST : GET;
        const char *h = NULL;
        if (i % 10 == 0) {
            snprintf(host, sizeof(host), "h%zu.test", i);
            h = host;
        }
        snprintf(path, sizeof(path), "/svc/%zu/x/y", i);
        bad += strcmp(match(&t, h, m, path, NULL), names[i]) != 0 ||
               last_prefix_len != strlen(path) - 3;
        snprintf(path, sizeof(path), "/svc/%zu/health", i);
        bad += strcmp(match(&t, h, m, path, NULL), names[i]) != 0 || last_prefix_len != 0;
        if (i % 7 == 0)
            bad += strcmp(match(&t, h, GET, path, NULL), "405") != 0;
        if (h)
            bad += strcmp(match(&t, NULL, m, path, NULL), "404") != 0;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/svc/", NULL), "404");
    CU_ASSERT_STRING_EQUAL(match(&t, NULL, GET, "/svc/12", NULL), "404");
    table_free(&t);
    free(s);
    free(names);
    free(paths);
    free(hosts);
}

/* The rules written as plainly as possible: groups in order, and in each group exact, then
 * prefixes longest first, then regexes, each in file order. */
static const struct lintel_route_conf *naive_group(const struct table *t, const char *key,
                                                   const struct lintel_match_req *q, int *wrong,
                                                   size_t *plen)
{
    for (int pass = 0; pass < 3; pass++) {
        int kind = pass == 0   ? LINTEL_PATH_EXACT
                   : pass == 1 ? LINTEL_PATH_PREFIX
                               : LINTEL_PATH_REGEX;
        for (long len = pass == 1 ? (long)q->path_len : 0; len >= 0; len--) {
            for (size_t i = 0; i < t->n; i++) {
                const struct lintel_route_conf *r = &t->routes[i];
                int in = key ? 0 : r->nhosts == 0;
                for (size_t h = 0; key && h < r->nhosts; h++)
                    in |= strcmp(r->hosts[h], key) == 0;
                if (!in)
                    continue;
                int pm = 0;
                for (size_t p = 0; p < r->npaths || (p == 0 && r->npaths == 0); p++) {
                    const struct lintel_path_conf *pc = r->npaths ? &r->paths[p] : NULL;
                    int k = pc ? (int)pc->kind : LINTEL_PATH_PREFIX;
                    const char *txt = pc ? pc->text : "/";
                    if (k != kind)
                        continue;
                    if (k == LINTEL_PATH_EXACT)
                        pm |= strcmp(txt, q->path) == 0;
                    else if (k == LINTEL_PATH_PREFIX)
                        pm |= strlen(txt) == (size_t)len && strncmp(txt, q->path, len) == 0;
                    else
                        pm |= regexec(pc->re, q->path, 0, NULL, 0) == 0;
                }
                if (!pm)
                    continue;
                int hok = 1;
                for (size_t h = 0; h < r->nheaders; h++) {
                    size_t vl;
                    const char *v = q->header(q->header_ctx, r->headers[h].name, &vl);
                    hok &= v && vl == strlen(r->headers[h].value) &&
                           memcmp(v, r->headers[h].value, vl) == 0;
                }
                if (!hok)
                    continue;
                if (r->methods && !(r->methods & M(q->method))) {
                    *wrong = 1;
                    continue;
                }
                *plen = kind == LINTEL_PATH_PREFIX ? (size_t)len : 0;
                return r;
            }
        }
    }
    return NULL;
}

static void test_random_against_naive(void)
{
    static const char *hostpool[] = {"a.test", "*.test", "*.b.test", "x.b.test", "c.test"};
    static const char *pathpool[] = {"/",   "/a",   "/ab", "/a/b", "=/a", "=/a/b", "~^/a/[0-9]+$",
                                     "~b$", "/abc", "=/",  "/b",   "~^/"};
    static const char *reqhosts[] = {"a.test", "x.b.test", "y.b.test", "c.test",
                                     "q.test", "test",     "zzz",      NULL};
    static const char *reqpaths[] = {"/",  "/a",  "/ab",   "/abc", "/a/b", "/a/12",
                                     "/b", "/bb", "/abcd", "/x",   ""};
    static const char *hdrpool[] = {NULL, "x-a:1", "x-a:2"};
    srand(7);
    int bad = 0;
    for (int round = 0; round < 200; round++) {
        struct spec s[12];
        char hbuf[12][64], pbuf[12][64], names[12][24];
        size_t n = 1 + (size_t)rand() % 12;
        for (size_t i = 0; i < n; i++) {
            hbuf[i][0] = pbuf[i][0] = '\0';
            for (int k = rand() % 3; k > 0; k--)
                snprintf(hbuf[i] + strlen(hbuf[i]), 64 - strlen(hbuf[i]), "%s ",
                         hostpool[rand() % 5]);
            for (int k = rand() % 3; k > 0; k--)
                snprintf(pbuf[i] + strlen(pbuf[i]), 64 - strlen(pbuf[i]), "%s ",
                         pathpool[rand() % 12]);
            snprintf(names[i], sizeof(names[i]), "r%zu", i);
            s[i] = (struct spec){names[i], hbuf[i], pbuf[i],
                                 rand() % 3 ? 0 : M(rand() % 2 ? GET : POST), hdrpool[rand() % 3]};
        }
        struct table t;
        table_build(&t, s, n);
        for (int k = 0; k < 60; k++) {
            const char *host = reqhosts[rand() % 8];
            const char *path = reqpaths[rand() % 11];
            const char *hdr = hdrpool[rand() % 3];
            int method = rand() % 2 ? GET : POST;
            const char *got = match(&t, host, method, path, hdr);
            size_t got_plen = last_prefix_len;

            struct lintel_match_req q = {
                host, host ? strlen(host) : 0, path, strlen(path), method, on_header, (void *)hdr};
            int wrong = 0;
            size_t plen = 0;
            const struct lintel_route_conf *want = NULL;
            if (host) {
                want = naive_group(&t, host, &q, &wrong, &plen);
                for (const char *d = strchr(host, '.'); !want && d; d = strchr(d + 1, '.')) {
                    char wild[64];
                    snprintf(wild, sizeof(wild), "*%s", d);
                    want = naive_group(&t, wild, &q, &wrong, &plen);
                }
            }
            if (!want)
                want = naive_group(&t, NULL, &q, &wrong, &plen);
            const char *exp = want ? want->name : wrong ? "405" : "404";
            if (strcmp(got, exp) != 0 || (want && got_plen != plen)) {
                bad++;
                fprintf(stderr, "round %d: %s %s %s: got %s want %s\n", round, host ? host : "-",
                        path, hdr ? hdr : "-", got, exp);
            }
        }
        table_free(&t);
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static CU_TestInfo router_tests[] = {
    {"exact > longest prefix > regex", test_path_precedence},
    {"regexes in file order", test_regex_file_order},
    {"same path: file order", test_same_path_file_order},
    {"exact host, wildcards, host-less", test_hosts},
    {"host group falls through to host-less", test_host_fallthrough},
    {"methods: 405 vs 404", test_methods},
    {"headers", test_headers},
    {"405 needs headers to match", test_header_405},
    {"empty table, route without paths", test_empty_and_no_paths},
    {"10k routes", test_large_table},
    {"random tables against a linear matcher", test_random_against_naive},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"router", NULL, NULL, NULL, NULL, router_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    if (CU_register_suites(suites) != CUE_SUCCESS) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
