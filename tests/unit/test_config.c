/* Tests for core/config.c (with config_upstream.c, config_route.c) and the YAML tree and value
 * parsers of core/ynode.c it stands on. Error cases check the whole message: file, line, column,
 * key path and phrase. */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ynode.h"

/* Lines 1-6 of most cases: a valid listen and upstream "u". A case continues at line 7, either
 * with more keys of upstream u (indented 4) or with top-level keys. */
#define HEAD                                                                                       \
    "listen:\n"                                                                                    \
    "  - address: 127.0.0.1:8080\n"                                                                \
    "upstreams:\n"                                                                                 \
    "  u:\n"                                                                                       \
    "    targets:\n"                                                                               \
    "      - address: 127.0.0.1:9001\n"

/* HEAD plus lines 7-9: route 0 ("r" to upstream u). A case continues at line 10 with more keys
 * of the route (indented 4); after ROUTE_MATCH, at line 11 inside its match map (indented 6). */
#define ROUTE                                                                                      \
    HEAD "routes:\n"                                                                               \
         "  - name: r\n"                                                                           \
         "    upstream: u\n"

#define ROUTE_MATCH ROUTE "    match:\n"

struct err_case {
    const char *yaml;
    const char *want;
};

/* The repository root, from this file's path (absolute under CMake, relative when compiled by
 * hand from the root). */
static const char *source_path(const char *rel)
{
    static char buf[4096];
    const char *self = __FILE__, *tail = "tests/unit/test_config.c";
    size_t n = strlen(self), t = strlen(tail);
    if (n < t || strcmp(self + n - t, tail) != 0)
        return rel;
    snprintf(buf, sizeof(buf), "%.*s%s", (int)(n - t), self, rel);
    return buf;
}

static struct lintel_config *load_ok(const char *yaml)
{
    struct lintel_config *cfg = NULL;
    char err[512] = "";
    if (lintel_config_load_string("t.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err)) != 0)
        fprintf(stderr, "\n  unexpected error: %s\n", err);
    return cfg;
}

static void check_errors(const struct err_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct lintel_config *cfg = NULL;
        char err[512] = "";
        int rc = lintel_config_load_string("t.yaml", cases[i].yaml, strlen(cases[i].yaml), &cfg,
                                           err, sizeof(err));
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_PTR_NULL(cfg);
        if (rc == 0)
            lintel_config_free(cfg);
        if (strcmp(err, cases[i].want) != 0) {
            fprintf(stderr, "\n  case %zu\n  want: %s\n  got:  %s\n", i, cases[i].want, err);
            CU_FAIL("wrong error message");
        }
    }
}

#define CHECK_ERRORS(cases) check_errors(cases, sizeof(cases) / sizeof(*(cases)))

static unsigned port_of(const struct lintel_sockaddr *a)
{
    if (a->ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

static int is_ipv4(const struct lintel_sockaddr *a, const char *ip, unsigned port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
    char buf[INET_ADDRSTRLEN];
    return a->ss.ss_family == AF_INET && a->len == sizeof(*sin) &&
           inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)) && strcmp(buf, ip) == 0 &&
           port_of(a) == port;
}

static void test_full_file(void)
{
    struct lintel_config *cfg = NULL;
    char err[512] = "";
    const char *path = source_path("tests/data/config-full.yaml");
    int rc = lintel_config_load(path, &cfg, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);

    CU_ASSERT_STRING_EQUAL(cfg->path, path);
    CU_ASSERT_PTR_NOT_NULL(cfg->root);
    CU_ASSERT_EQUAL_FATAL(cfg->nlisten, 2);
    CU_ASSERT_STRING_EQUAL(cfg->listen[0].text, "127.0.0.1:8080");
    CU_ASSERT(is_ipv4(&cfg->listen[0], "127.0.0.1", 8080));
    CU_ASSERT_STRING_EQUAL(cfg->listen[1].text, "[::1]:8081");
    CU_ASSERT_EQUAL(cfg->listen[1].ss.ss_family, AF_INET6);
    CU_ASSERT_EQUAL(cfg->listen[1].len, sizeof(struct sockaddr_in6));
    CU_ASSERT_EQUAL(port_of(&cfg->listen[1]), 8081);
    CU_ASSERT(cfg->admin_enabled);
    CU_ASSERT(is_ipv4(&cfg->admin, "127.0.0.1", 9902));
    CU_ASSERT_EQUAL(cfg->workers, 4);

    CU_ASSERT_EQUAL(cfg->limits.header_bytes, 16 << 10);
    CU_ASSERT_EQUAL(cfg->limits.headers, 50);
    CU_ASSERT_EQUAL(cfg->limits.body_bytes, 1 << 20);
    CU_ASSERT_EQUAL(cfg->timeouts.client_header_ms, 5000);
    CU_ASSERT_EQUAL(cfg->timeouts.client_body_ms, 20000);
    CU_ASSERT_EQUAL(cfg->timeouts.keepalive_ms, 75000);
    CU_ASSERT_EQUAL(cfg->timeouts.drain_ms, 0);

    CU_ASSERT_EQUAL_FATAL(cfg->nplugin_paths, 2);
    CU_ASSERT_STRING_EQUAL(cfg->plugin_paths[0], "build/plugins");
    CU_ASSERT_STRING_EQUAL(cfg->plugin_paths[1], "/usr/lib/lintel/plugins");
    CU_ASSERT_FATAL(cfg->plugins && cfg->plugins->type == LINTEL_YNODE_SEQ);
    CU_ASSERT_EQUAL(cfg->plugins->len, 1);
    const struct lintel_ynode *pc = lintel_ynode_get(cfg->plugins->items[0], "config");
    CU_ASSERT_STRING_EQUAL(lintel_ynode_get(pc, "header")->scalar, "X-Request-Id");
    CU_ASSERT_EQUAL(pc->line, 14);
    CU_ASSERT_EQUAL(pc->col, 13);
    CU_ASSERT_FATAL(cfg->consumers && cfg->consumers->type == LINTEL_YNODE_SEQ);
    CU_ASSERT_EQUAL(cfg->consumers->len, 1);

    CU_ASSERT_EQUAL_FATAL(cfg->nupstreams, 2);
    const struct lintel_upstream_conf *u = &cfg->upstreams[0];
    CU_ASSERT_EQUAL(u->index, 0);
    CU_ASSERT_STRING_EQUAL(u->name, "users");
    CU_ASSERT_EQUAL_FATAL(u->ntargets, 2);
    CU_ASSERT(is_ipv4(&u->targets[0].addr, "127.0.0.1", 9001));
    CU_ASSERT_EQUAL(u->targets[0].weight, 10);
    CU_ASSERT(is_ipv4(&u->targets[1].addr, "127.0.0.1", 9002));
    CU_ASSERT_EQUAL(u->targets[1].weight, 1);
    CU_ASSERT_EQUAL(u->balance, LINTEL_BALANCE_HASH);
    CU_ASSERT_EQUAL(u->hash_on, LINTEL_HASH_HEADER);
    CU_ASSERT_STRING_EQUAL(u->hash_name, "uid");
    CU_ASSERT_EQUAL(u->keepalive, 0);
    CU_ASSERT_EQUAL(u->connect_ms, 250);
    CU_ASSERT_EQUAL(u->send_ms, 2000);
    CU_ASSERT_EQUAL(u->read_ms, 60000);
    CU_ASSERT_EQUAL(u->idle_ms, 3600000);
    CU_ASSERT_EQUAL(u->retries, 3);
    CU_ASSERT_EQUAL(u->node->line, 19);
    const struct lintel_upstream_conf *s = &cfg->upstreams[1];
    CU_ASSERT_EQUAL(s->index, 1);
    CU_ASSERT_STRING_EQUAL(s->name, "static");
    CU_ASSERT_EQUAL(s->balance, LINTEL_BALANCE_LEAST_CONN);
    /* A host name is kept for the resolver: no target until it has an address. */
    CU_ASSERT_EQUAL_FATAL(s->ndecl, 1);
    CU_ASSERT(s->decl[0].is_name);
    CU_ASSERT_STRING_EQUAL(s->decl[0].text, "localhost:9003");
    CU_ASSERT_STRING_EQUAL(s->decl[0].host, "localhost");
    CU_ASSERT_EQUAL(s->decl[0].port, 9003);
    CU_ASSERT_EQUAL(s->ntargets, 0);
    CU_ASSERT(cfg->has_names);

    CU_ASSERT_EQUAL_FATAL(cfg->nroutes, 2);
    const struct lintel_route_conf *r = &cfg->routes[0];
    CU_ASSERT_EQUAL(r->index, 0);
    CU_ASSERT_STRING_EQUAL(r->name, "users");
    CU_ASSERT_EQUAL_FATAL(r->nhosts, 2);
    CU_ASSERT_STRING_EQUAL(r->hosts[0], "api.example.com");
    CU_ASSERT_STRING_EQUAL(r->hosts[1], "*.example.org");
    CU_ASSERT_EQUAL_FATAL(r->npaths, 3);
    CU_ASSERT_EQUAL(r->paths[0].kind, LINTEL_PATH_PREFIX);
    CU_ASSERT_STRING_EQUAL(r->paths[0].text, "/users");
    CU_ASSERT_PTR_NULL(r->paths[0].re);
    CU_ASSERT_EQUAL(r->paths[1].kind, LINTEL_PATH_EXACT);
    CU_ASSERT_STRING_EQUAL(r->paths[1].text, "/exact");
    CU_ASSERT_EQUAL(r->paths[2].kind, LINTEL_PATH_REGEX);
    CU_ASSERT_STRING_EQUAL(r->paths[2].text, "^/v[0-9]+/items$");
    CU_ASSERT_FATAL(r->paths[2].re != NULL);
    CU_ASSERT_EQUAL(regexec(r->paths[2].re, "/v12/items", 0, NULL, 0), 0);
    CU_ASSERT_NOT_EQUAL(regexec(r->paths[2].re, "/v/items", 0, NULL, 0), 0);
    CU_ASSERT_EQUAL(r->methods, (1ull << HTTP_GET) | (1ull << HTTP_POST) | (1ull << HTTP_MSEARCH));
    CU_ASSERT_EQUAL_FATAL(r->nheaders, 1);
    CU_ASSERT_STRING_EQUAL(r->headers[0].name, "X-Env");
    CU_ASSERT_STRING_EQUAL(r->headers[0].value, "staging");
    CU_ASSERT_PTR_EQUAL(r->upstream, &cfg->upstreams[0]);
    CU_ASSERT(r->strip_prefix);
    CU_ASSERT_FATAL(r->plugins && r->plugins->len == 1);
    CU_ASSERT_STRING_EQUAL(lintel_ynode_get(r->plugins->items[0], "name")->scalar, "cors");
    CU_ASSERT_FATAL(r->disable_plugins && r->disable_plugins->len == 1);
    CU_ASSERT_STRING_EQUAL(r->disable_plugins->items[0]->scalar, "request-id");
    CU_ASSERT_EQUAL(r->node->line, 32);
    CU_ASSERT_EQUAL(r->node->col, 5);
    CU_ASSERT_PTR_EQUAL(cfg->routes[1].upstream, &cfg->upstreams[1]);
    CU_ASSERT_EQUAL(cfg->routes[1].index, 1);
    lintel_config_free(cfg);
}

static void test_defaults(void)
{
    struct lintel_config *cfg = load_ok(HEAD "routes:\n"
                                             "  - name: r\n"
                                             "    upstream: u\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_STRING_EQUAL(cfg->path, "t.yaml");
    CU_ASSERT(cfg->admin_enabled);
    CU_ASSERT(is_ipv4(&cfg->admin, "127.0.0.1", 9901));
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    CU_ASSERT_EQUAL(cfg->workers, cpus < 1 ? 1 : cpus > 1024 ? 1024 : (unsigned)cpus);
    CU_ASSERT_EQUAL(cfg->limits.header_bytes, 32 << 10);
    CU_ASSERT_EQUAL(cfg->limits.headers, 100);
    CU_ASSERT_EQUAL(cfg->limits.body_bytes, 8 << 20);
    CU_ASSERT_EQUAL(cfg->limits.connections_per_worker, 16384);
    CU_ASSERT_EQUAL(cfg->limits.connections_per_ip, 0);
    CU_ASSERT_PTR_NULL(cfg->admin_token);
    CU_ASSERT_EQUAL(cfg->timeouts.client_header_ms, 10000);
    CU_ASSERT_EQUAL(cfg->timeouts.client_body_ms, 30000);
    CU_ASSERT_EQUAL(cfg->timeouts.keepalive_ms, 60000);
    CU_ASSERT_EQUAL(cfg->timeouts.drain_ms, 10000);
    CU_ASSERT_EQUAL(cfg->nplugin_paths, 0);
    CU_ASSERT_PTR_NULL(cfg->plugins);
    CU_ASSERT_PTR_NULL(cfg->consumers);

    CU_ASSERT_EQUAL_FATAL(cfg->nupstreams, 1);
    const struct lintel_upstream_conf *u = &cfg->upstreams[0];
    CU_ASSERT_EQUAL(u->targets[0].weight, 1);
    CU_ASSERT_EQUAL(u->balance, LINTEL_BALANCE_ROUND_ROBIN);
    CU_ASSERT_PTR_NULL(u->hash_name);
    CU_ASSERT_EQUAL(u->keepalive, 32);
    CU_ASSERT_EQUAL(u->connect_ms, 5000);
    CU_ASSERT_EQUAL(u->send_ms, 60000);
    CU_ASSERT_EQUAL(u->read_ms, 60000);
    CU_ASSERT_EQUAL(u->idle_ms, 60000);
    CU_ASSERT_EQUAL(u->retries, 1);

    CU_ASSERT_EQUAL_FATAL(cfg->nroutes, 1);
    const struct lintel_route_conf *r = &cfg->routes[0];
    CU_ASSERT_EQUAL(r->nhosts, 0);
    CU_ASSERT_EQUAL(r->npaths, 0);
    CU_ASSERT_EQUAL(r->methods, 0);
    CU_ASSERT_EQUAL(r->nheaders, 0);
    CU_ASSERT_FALSE(r->strip_prefix);
    CU_ASSERT_PTR_NULL(r->plugins);
    CU_ASSERT_PTR_NULL(r->disable_plugins);
    lintel_config_free(cfg);
}

static void test_small_variants(void)
{
    /* No routes at all, admin off, workers auto, hash on ip without a name, zero retries. */
    struct lintel_config *cfg = load_ok("listen:\n"
                                        "  - address: :8080\n"
                                        "admin: { enabled: false }\n"
                                        "workers: auto\n"
                                        "upstreams:\n"
                                        "  u:\n"
                                        "    targets: [{ address: 127.0.0.1:9001 }]\n"
                                        "    balance: hash\n"
                                        "    hash: { on: ip }\n"
                                        "    retries: 0\n"
                                        "routes: []\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT(is_ipv4(&cfg->listen[0], "0.0.0.0", 8080));
    CU_ASSERT_FALSE(cfg->admin_enabled);
    CU_ASSERT(cfg->workers >= 1);
    CU_ASSERT_EQUAL(cfg->upstreams[0].hash_on, LINTEL_HASH_IP);
    CU_ASSERT_PTR_NULL(cfg->upstreams[0].hash_name);
    CU_ASSERT_EQUAL(cfg->upstreams[0].retries, 0);
    CU_ASSERT_EQUAL(cfg->nroutes, 0);
    lintel_config_free(cfg);

    cfg = load_ok("listen: [{ address: 127.0.0.1:1 }]\nupstreams: {}\nroutes: []\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_EQUAL(cfg->nupstreams, 0);
    lintel_config_free(cfg);
}

static void test_file_errors(void)
{
    struct lintel_config *cfg = NULL;
    char err[512], want[4200];
    const char *path = source_path("tests/data/config-bad.yaml");

    CU_ASSERT_EQUAL(lintel_config_load(path, &cfg, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:10:15: routes[0].upstream: unknown upstream \"orders\"", path);
    CU_ASSERT_STRING_EQUAL(err, want);

    path = source_path("tests/data/config-missing.yaml");
    CU_ASSERT_EQUAL(lintel_config_load(path, &cfg, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
    CU_ASSERT_STRING_EQUAL(err, want);
    CU_ASSERT_PTR_NULL(cfg);
}

/* The example in docs/configuration.md must load: the first ```yaml block of the page. */
static void test_docs_example(void)
{
    FILE *f = fopen(source_path("docs/configuration.md"), "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    static char page[65536];
    size_t n = fread(page, 1, sizeof(page) - 1, f);
    fclose(f);
    page[n] = '\0';
    char *start = strstr(page, "```yaml\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(start);
    start += strlen("```yaml\n");
    char *end = strstr(start, "```");
    CU_ASSERT_PTR_NOT_NULL_FATAL(end);
    *end = '\0';
    struct lintel_config *cfg = load_ok(start);
    CU_ASSERT_PTR_NOT_NULL(cfg);
    lintel_config_free(cfg);
}

static void test_unknown_keys(void)
{
    static const struct err_case cases[] = {
        {HEAD "routes: []\nlistn: 1\n", "t.yaml:8:1: listn: unknown key"},
        {HEAD "    retry: 2\nroutes: []\n", "t.yaml:7:5: upstreams.u.retry: unknown key"},
        {ROUTE_MATCH "      pathz: [/a]\n", "t.yaml:11:7: routes[0].match.pathz: unknown key"},
        {"listen:\n  - address: 127.0.0.1:8080\nupstreams:\n  u:\n    targets:\n"
         "      - adress: 127.0.0.1:9001\nroutes: []\n",
         "t.yaml:6:9: upstreams.u.targets[0].adress: unknown key"},
        {HEAD "routes: []\nlimits:\n  header_byte: 1k\n",
         "t.yaml:9:3: limits.header_byte: unknown key"},
        {HEAD "    timeouts: { conect: 1s }\nroutes: []\n",
         "t.yaml:7:17: upstreams.u.timeouts.conect: unknown key"},
        {ROUTE "    enable: [x]\n", "t.yaml:10:5: routes[0].enable: unknown key"},
        {HEAD "routes: []\nadmin: { port: 1 }\n", "t.yaml:8:10: admin.port: unknown key"},
        {"listen:\n  - address: 127.0.0.1:8080\n    backlog: 5\n",
         "t.yaml:3:5: listen[0].backlog: unknown key"},
        {"listen:\n  - address: 127.0.0.1:8080\n    tls: true\n",
         "t.yaml:3:10: listen[0].tls: must be a map"},
        {"listen:\n  - address: 127.0.0.1:8080\n    tls: { certificates: [ { cert: a.pem } ] }\n",
         "t.yaml:3:28: listen[0].tls.certificates[0].key: required key is missing"},
        {"listen:\n  - address: 127.0.0.1:8080\n    tls: { certificates: [ { cert: a, key: b } ], "
         "protocols: [SSLv3] }\n",
         "t.yaml:3:63: listen[0].tls.protocols[0]: must be TLSv1.2 or TLSv1.3"},
    };
    CHECK_ERRORS(cases);
}

static void test_bad_durations(void)
{
    static const struct err_case cases[] = {
        {HEAD "routes: []\ntimeouts:\n  client_header: 10x\n",
         "t.yaml:9:18: timeouts.client_header: must be a positive duration"},
        {HEAD "routes: []\ntimeouts:\n  keepalive: 0\n",
         "t.yaml:9:14: timeouts.keepalive: must be a positive duration"},
        {HEAD "routes: []\ntimeouts:\n  drain: -1\n",
         "t.yaml:9:10: timeouts.drain: must be a duration"},
        {HEAD "routes: []\ntimeouts:\n  client_body: 99999999999999999999s\n",
         "t.yaml:9:16: timeouts.client_body: must be a positive duration"},
        {HEAD "    timeouts: { connect: 1.5s }\nroutes: []\n",
         "t.yaml:7:26: upstreams.u.timeouts.connect: must be a positive duration"},
        {HEAD "routes: []\ntimeouts:\n  drain: [1s]\n",
         "t.yaml:9:10: timeouts.drain: must be a string"},
    };
    CHECK_ERRORS(cases);
}

static void test_bad_sizes_and_numbers(void)
{
    static const struct err_case cases[] = {
        {HEAD "routes: []\nlimits:\n  header_bytes: 512\n",
         "t.yaml:9:17: limits.header_bytes: must be a size from 1k to 64k"},
        {HEAD "routes: []\nlimits:\n  header_bytes: 65k\n",
         "t.yaml:9:17: limits.header_bytes: must be a size from 1k to 64k"},
        {HEAD "routes: []\nlimits:\n  body_bytes: 8mb\n",
         "t.yaml:9:15: limits.body_bytes: must be a size"},
        {HEAD "routes: []\nlimits:\n  body_bytes: 99999999999g\n",
         "t.yaml:9:15: limits.body_bytes: must be a size"},
        {HEAD "routes: []\nlimits:\n  headers: 0\n",
         "t.yaml:9:12: limits.headers: must be an integer from 1 to 10000"},
        {HEAD "routes: []\nworkers: 0\n",
         "t.yaml:8:10: workers: must be \"auto\" or an integer from 1 to 1024"},
        {HEAD "routes: []\nworkers: 1025\n",
         "t.yaml:8:10: workers: must be \"auto\" or an integer from 1 to 1024"},
        {"listen:\n  - address: 127.0.0.1:8080\nupstreams:\n  u:\n    targets:\n"
         "      - { address: 127.0.0.1:9001, weight: 1001 }\nroutes: []\n",
         "t.yaml:6:44: upstreams.u.targets[0].weight: must be an integer from 1 to 1000"},
        {"listen:\n  - address: 127.0.0.1:8080\nupstreams:\n  u:\n    targets:\n"
         "      - { address: 127.0.0.1:9001, weight: 0 }\nroutes: []\n",
         "t.yaml:6:44: upstreams.u.targets[0].weight: must be an integer from 1 to 1000"},
        {HEAD "    keepalive: -1\nroutes: []\n",
         "t.yaml:7:16: upstreams.u.keepalive: must be an integer from 0 to 65535"},
        {HEAD "    retries: x\nroutes: []\n",
         "t.yaml:7:14: upstreams.u.retries: must be an integer from 0 to 100"},
    };
    CHECK_ERRORS(cases);
}

static void test_bad_match(void)
{
    static char regex_case[256];
    regex_t re;
    char why[128];
    int rc = regcomp(&re, "^/v[0-9+/x$", REG_EXTENDED | REG_NOSUB);
    CU_ASSERT_NOT_EQUAL_FATAL(rc, 0);
    regerror(rc, &re, why, sizeof(why));
    snprintf(regex_case, sizeof(regex_case),
             "t.yaml:11:19: routes[0].match.paths[1]: regex does not compile: %s", why);

    const struct err_case cases[] = {
        {ROUTE_MATCH "      methods: [GET, get]\n",
         "t.yaml:11:22: routes[0].match.methods[1]: unknown HTTP method \"get\""},
        {ROUTE_MATCH "      paths: [/a, \"~^/v[0-9+/x$\"]\n", regex_case},
        {ROUTE_MATCH "      paths: [users]\n",
         "t.yaml:11:15: routes[0].match.paths[0]: must start with \"/\", \"=/\" or \"~\""},
        {ROUTE_MATCH "      paths: [\"=exact\"]\n",
         "t.yaml:11:15: routes[0].match.paths[0]: must start with \"/\", \"=/\" or \"~\""},
        {ROUTE_MATCH "      paths: [\"~\"]\n",
         "t.yaml:11:15: routes[0].match.paths[0]: regex must not be empty"},
        {ROUTE_MATCH "      hosts: [\"api.*.com\"]\n",
         "t.yaml:11:15: routes[0].match.hosts[0]: wildcard is only allowed as a leading \"*.\""},
        {ROUTE_MATCH "      hosts: [api.example.com:8080]\n",
         "t.yaml:11:15: routes[0].match.hosts[0]: must not include a port"},
        {ROUTE_MATCH "      hosts: [\"\"]\n",
         "t.yaml:11:15: routes[0].match.hosts[0]: must not be empty"},
        {ROUTE_MATCH "      headers: { \"X A\": b }\n",
         "t.yaml:11:18: routes[0].match.headers.X A: is not a header name"},
        {ROUTE_MATCH "      headers: { X-A: a, x-a: b }\n",
         "t.yaml:11:26: routes[0].match.headers.x-a: duplicate header name"},
        {ROUTE_MATCH "      headers: { X-A: { b: c } }\n",
         "t.yaml:11:23: routes[0].match.headers.X-A: must be a string"},
    };
    CHECK_ERRORS(cases);
}

static void test_bad_references(void)
{
    static const struct err_case cases[] = {
        {HEAD "routes:\n  - name: r\n    upstream: nope\n",
         "t.yaml:9:15: routes[0].upstream: unknown upstream \"nope\""},
        {HEAD "routes:\n  - name: a\n    upstream: u\n  - name: b\n    upstream: u\n"
              "  - name: a\n    upstream: u\n",
         "t.yaml:12:11: routes[2].name: duplicate route name \"a\""},
    };
    CHECK_ERRORS(cases);
}

static void test_missing_required(void)
{
    static const struct err_case cases[] = {
        {"", "t.yaml:1:1: listen: required key is missing"},
        {"# only a comment\n", "t.yaml:1:1: listen: required key is missing"},
        {"listen:\n  - address: 127.0.0.1:8080\nroutes: []\n",
         "t.yaml:1:1: upstreams: required key is missing"},
        {HEAD, "t.yaml:1:1: routes: required key is missing"},
        {HEAD "routes:\n  - name: r\n", "t.yaml:8:5: routes[0].upstream: required key is missing"},
        {HEAD "routes:\n  - upstream: u\n", "t.yaml:8:5: routes[0].name: required key is missing"},
        {"listen:\n  - { }\n", "t.yaml:2:5: listen[0].address: required key is missing"},
        {"listen: []\n", "t.yaml:1:9: listen: must not be empty"},
        {"listen:\n  - address: 127.0.0.1:8080\nupstreams:\n  u: {}\nroutes: []\n",
         "t.yaml:4:6: upstreams.u.targets: required key is missing"},
        {"listen:\n  - address: 127.0.0.1:8080\nupstreams:\n  u:\n    targets: []\nroutes: []\n",
         "t.yaml:5:14: upstreams.u.targets: must not be empty"},
        {HEAD "    balance: hash\nroutes: []\n",
         "t.yaml:5:5: upstreams.u.hash: required key is missing"},
        {HEAD "    balance: hash\n    hash: { on: header }\nroutes: []\n",
         "t.yaml:8:11: upstreams.u.hash.name: required key is missing"},
        {HEAD "routes: []\nplugins:\n  - config: {}\n",
         "t.yaml:9:5: plugins[0].name: required key is missing"},
    };
    CHECK_ERRORS(cases);
}

static void test_wrong_types(void)
{
    static const struct err_case cases[] = {
        {"- a\n", "t.yaml:1:1: must be a map"},
        {"listen: 127.0.0.1:80\n", "t.yaml:1:9: listen: must be a list"},
        {"listen:\n  - address: 127.0.0.1:8080\nupstreams: []\nroutes: []\n",
         "t.yaml:3:12: upstreams: must be a map"},
        {HEAD "routes: {}\n", "t.yaml:7:9: routes: must be a list"},
        {HEAD "routes: [x]\n", "t.yaml:7:10: routes[0]: must be a map"},
        {HEAD "routes: []\nlimits: 5\n", "t.yaml:8:9: limits: must be a map"},
        {HEAD "routes: []\nconsumers: {}\n", "t.yaml:8:12: consumers: must be a list"},
        {HEAD "routes: []\nplugins: [cors]\n", "t.yaml:8:11: plugins[0]: must be a map"},
        {HEAD "routes: []\nplugin_paths: [\"\"]\n",
         "t.yaml:8:16: plugin_paths[0]: must not be empty"},
        {ROUTE_MATCH "      hosts: api.example.com\n",
         "t.yaml:11:14: routes[0].match.hosts: must be a list"},
        {ROUTE "    strip_prefix: yes\n",
         "t.yaml:10:19: routes[0].strip_prefix: must be true or false"},
        {ROUTE "    disable_plugins: [[a]]\n",
         "t.yaml:10:23: routes[0].disable_plugins[0]: must be a plugin name"},
        {ROUTE "    plugins: [{ name: [x] }]\n",
         "t.yaml:10:23: routes[0].plugins[0].name: must be a string"},
        {HEAD "    balance: fancy\nroutes: []\n",
         "t.yaml:7:14: upstreams.u.balance: must be round_robin, least_conn or hash"},
        {HEAD "    hash: { on: ip }\nroutes: []\n",
         "t.yaml:7:11: upstreams.u.hash: only allowed with balance: hash"},
        {HEAD "    balance: hash\n    hash: { on: ip, name: x }\nroutes: []\n",
         "t.yaml:8:27: upstreams.u.hash.name: not allowed with on: ip"},
        {HEAD "    balance: hash\n    hash: { on: body }\nroutes: []\n",
         "t.yaml:8:17: upstreams.u.hash.on: must be header, arg, cookie or ip"},
    };
    CHECK_ERRORS(cases);
}

static void test_bad_addresses(void)
{
    static const struct err_case cases[] = {
        {"listen:\n  - address: 127.0.0.1\n", "t.yaml:2:14: listen[0].address: must be host:port"},
        {"listen:\n  - address: 127.0.0.1:0\n",
         "t.yaml:2:14: listen[0].address: port must be from 1 to 65535"},
        {"listen:\n  - address: 127.0.0.1:8080\nupstreams:\n  u:\n    targets:\n"
         "      - address: \"::1:80\"\nroutes: []\n",
         "t.yaml:6:18: upstreams.u.targets[0].address: IPv6 addresses must be in brackets: "
         "[::1]:80"},
        /* Not an IPv4 address, and not a name either: an empty label never resolves. */
        {"listen:\n  - address: 127.0.0.1:8080\nupstreams:\n  u:\n    targets:\n"
         "      - address: 1207..0.1:9000\nroutes: []\n",
         "t.yaml:6:18: upstreams.u.targets[0].address: must be host:port with a valid host name"},
        {"listen:\n  - address: 127.0.0.1:8080\nupstreams:\n  u:\n    targets:\n"
         "      - address: "
         "a.bcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklm.c:80\n"
         "routes: []\n",
         "t.yaml:6:18: upstreams.u.targets[0].address: must be host:port with a valid host name"},
        {HEAD "routes: []\nadmin:\n  address: nowhere\n",
         "t.yaml:9:12: admin.address: must be host:port"},
    };
    CHECK_ERRORS(cases);
}

static void test_yaml_errors(void)
{
    static const struct err_case cases[] = {
        {"listen:\n\t- a\n", "t.yaml:2:1: yaml: found character that cannot start any token"},
        {"a: b: c\n", "t.yaml:1:5: yaml: mapping values are not allowed in this context"},
        {"listen: [a\n", "t.yaml:2:1: yaml: did not find expected ',' or ']'"},
        {"listen: \xff\n", "t.yaml:1:9: yaml: invalid leading UTF-8 octet"},
        {"a: 1\nlisten: \xc3\xa9\xff\n", "t.yaml:2:10: yaml: invalid leading UTF-8 octet"},
        {"a: 1\n---\nb: 2\n", "t.yaml:2:1: only one YAML document is allowed"},
        {"listen: \"a\\0b\"\n", "t.yaml:1:9: listen: strings must not contain NUL characters"},
        {"? [a]\n: b\n", "t.yaml:1:3: map keys must be strings"},
        {"listen: &l\n  - address: 127.0.0.1:8080\n",
         "t.yaml:1:9: listen: anchors are not allowed"},
        {"listen: *l\n", "t.yaml:1:9: listen: aliases are not allowed"},
        {"listen:\n  - address: 127.0.0.1:8080\nupstreams:\n  u:\n    targets:\n"
         "      - &t { address: 127.0.0.1:9001 }\n",
         "t.yaml:6:9: upstreams.u.targets[0]: anchors are not allowed"},
        {"listen: []\nlisten: []\n", "t.yaml:2:1: listen: duplicate key"},
        {ROUTE_MATCH "      paths: [/a]\n      paths: [/b]\n",
         "t.yaml:12:7: routes[0].match.paths: duplicate key"},
    };
    CHECK_ERRORS(cases);

    /* Hostile nesting stops at a fixed depth instead of exhausting the stack. */
    char deep[200], err[512];
    struct lintel_config *cfg = NULL;
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    CU_ASSERT_EQUAL(lintel_config_load_string("t.yaml", deep, sizeof(deep), &cfg, err, sizeof(err)),
                    -1);
    CU_ASSERT_EQUAL(strncmp(err, "t.yaml:1:65: [0]", 16), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ": nesting is deeper than 64 levels"));
}

static void test_sockaddr_parse(void)
{
    struct lintel_arena *a = lintel_arena_new(1024);
    struct lintel_sockaddr s;
    char err[256];

    CU_ASSERT_EQUAL(lintel_sockaddr_parse(a, "1.2.3.4:80", &s, err, sizeof(err)), 0);
    CU_ASSERT(is_ipv4(&s, "1.2.3.4", 80));
    CU_ASSERT_STRING_EQUAL(s.text, "1.2.3.4:80");
    CU_ASSERT_EQUAL(lintel_sockaddr_parse(a, "[::1]:65535", &s, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(s.ss.ss_family, AF_INET6);
    CU_ASSERT_EQUAL(port_of(&s), 65535);
    CU_ASSERT_EQUAL(lintel_sockaddr_parse(a, ":8080", &s, err, sizeof(err)), 0);
    CU_ASSERT(is_ipv4(&s, "0.0.0.0", 8080));
    CU_ASSERT_EQUAL(lintel_sockaddr_parse(a, "localhost:80", &s, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(port_of(&s), 80);

    static const struct {
        const char *text, *why;
    } bad[] = {
        {"1.2.3.4", "must be host:port"},
        {"1.2.3.4:", "port must be from 1 to 65535"},
        {"1.2.3.4:65536", "port must be from 1 to 65535"},
        {"1.2.3.4:+80", "port must be from 1 to 65535"},
        {"1.2.3.4:80x", "port must be from 1 to 65535"},
        {"::1:80", "IPv6 addresses must be in brackets: [::1]:80"},
        {"[::1]80", "must be [IPv6 address]:port"},
        {"[]:80", "must be [IPv6 address]:port"},
        {"[::1:80", "must be [IPv6 address]:port"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        CU_ASSERT_EQUAL(lintel_sockaddr_parse(a, bad[i].text, &s, err, sizeof(err)), -1);
        if (strcmp(err, bad[i].why) != 0)
            fprintf(stderr, "\n  %s: want %s, got %s\n", bad[i].text, bad[i].why, err);
        CU_ASSERT_STRING_EQUAL(err, bad[i].why);
    }
    CU_ASSERT_EQUAL(lintel_sockaddr_parse(a, "[1.2.3.4]:80", &s, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(strncmp(err, "cannot resolve \"1.2.3.4\": ", 26), 0);
    lintel_arena_free(a);
}

static void test_parse_duration(void)
{
    static const struct {
        const char *text;
        uint64_t ms;
    } good[] = {
        {"250ms", 250},
        {"2s", 2000},
        {"1m", 60000},
        {"1h", 3600000},
        {"10", 10000},
        {"0", 0},
        {"0ms", 0},
        {"007s", 7000},
        {"18446744073709551615ms", UINT64_MAX},
        {"5124095576030h", 5124095576030ull * 3600000},
    };
    static const char *const bad[] = {"",
                                      "-1",
                                      "+1",
                                      "1.5s",
                                      "1 s",
                                      " 1s",
                                      "s",
                                      "ms",
                                      "1d",
                                      "1sec",
                                      "1S",
                                      "1s ",
                                      "18446744073709551616ms",
                                      "18446744073709552s",
                                      "5124095576031h"};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
        uint64_t ms = 12345;
        CU_ASSERT_EQUAL(lintel_parse_duration_ms(good[i].text, &ms), 0);
        CU_ASSERT_EQUAL(ms, good[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        uint64_t ms = 12345;
        CU_ASSERT_EQUAL(lintel_parse_duration_ms(bad[i], &ms), -1);
        CU_ASSERT_EQUAL(ms, 12345);
    }
}

static void test_parse_size(void)
{
    static const struct {
        const char *text;
        uint64_t bytes;
    } good[] = {
        {"512", 512},       {"0", 0},           {"64k", 64 << 10},
        {"64K", 64 << 10},  {"8m", 8 << 20},    {"8M", 8 << 20},
        {"1g", 1ull << 30}, {"1G", 1ull << 30}, {"17179869183g", 17179869183ull << 30},
    };
    static const char *const bad[] = {"",
                                      "-1",
                                      "+1",
                                      "1kb",
                                      "1t",
                                      "1.5k",
                                      "k",
                                      " 1k",
                                      "1k ",
                                      "17179869184g",
                                      "18446744073709551616"};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
        uint64_t b = 12345;
        CU_ASSERT_EQUAL(lintel_parse_size(good[i].text, &b), 0);
        CU_ASSERT_EQUAL(b, good[i].bytes);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        uint64_t b = 12345;
        CU_ASSERT_EQUAL(lintel_parse_size(bad[i], &b), -1);
        CU_ASSERT_EQUAL(b, 12345);
    }
}

static void test_ynode_tree(void)
{
    struct lintel_arena *a = lintel_arena_new(1024);
    char err[256];
    const char *text = "# c\n"
                       "a: 'x'\n"
                       "b:\n"
                       "  - 1\n"
                       "  - |\n"
                       "    text\n"
                       "c: {}\n";
    struct lintel_ynode *root = lintel_ynode_parse(a, text, strlen(text), err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT_EQUAL(root->type, LINTEL_YNODE_MAP);
    CU_ASSERT_EQUAL(root->len, 3);
    CU_ASSERT_EQUAL(root->line, 2);
    CU_ASSERT_EQUAL(root->col, 1);
    CU_ASSERT_STRING_EQUAL(root->keys[1]->scalar, "b");
    CU_ASSERT_EQUAL(root->keys[1]->line, 3);
    const struct lintel_ynode *x = lintel_ynode_get(root, "a");
    CU_ASSERT_FATAL(x && x->type == LINTEL_YNODE_SCALAR);
    CU_ASSERT_STRING_EQUAL(x->scalar, "x");
    CU_ASSERT_EQUAL(x->len, 1);
    CU_ASSERT(x->quoted);
    CU_ASSERT_EQUAL(x->line, 2);
    CU_ASSERT_EQUAL(x->col, 4);
    const struct lintel_ynode *b = lintel_ynode_get(root, "b");
    CU_ASSERT_FATAL(b && b->type == LINTEL_YNODE_SEQ && b->len == 2);
    CU_ASSERT_EQUAL(b->line, 4);
    CU_ASSERT_EQUAL(b->col, 3);
    CU_ASSERT_STRING_EQUAL(b->items[0]->scalar, "1");
    CU_ASSERT_FALSE(b->items[0]->quoted);
    CU_ASSERT_STRING_EQUAL(b->items[1]->scalar, "text\n");
    CU_ASSERT(b->items[1]->quoted);
    const struct lintel_ynode *c = lintel_ynode_get(root, "c");
    CU_ASSERT_FATAL(c && c->type == LINTEL_YNODE_MAP);
    CU_ASSERT_EQUAL(c->len, 0);
    CU_ASSERT_PTR_NULL(lintel_ynode_get(root, "d"));
    CU_ASSERT_PTR_NULL(lintel_ynode_get(b, "a"));
    CU_ASSERT_PTR_NULL(lintel_ynode_get(NULL, "a"));

    root = lintel_ynode_parse(a, "---\n", 4, err, sizeof(err));
    CU_ASSERT_FATAL(root && root->type == LINTEL_YNODE_MAP);
    CU_ASSERT_EQUAL(root->len, 0);
    root = lintel_ynode_parse(a, "", 0, err, sizeof(err));
    CU_ASSERT_FATAL(root && root->type == LINTEL_YNODE_MAP);
    CU_ASSERT_EQUAL(root->line, 1);
    CU_ASSERT_EQUAL(root->col, 1);

    CU_ASSERT_PTR_NULL(lintel_ynode_parse(a, "a:\n  b: 1\n  b: 2\n", 17, err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(err, "3:3: a.b: duplicate key");
    lintel_arena_free(a);
}

static void test_ypath_and_duplicates(void)
{
    struct lintel_ypath p = {0};
    size_t m0 = lintel_ypath_push_key(&p, "routes");
    size_t m1 = lintel_ypath_push_index(&p, 3);
    lintel_ypath_push_key(&p, "match");
    CU_ASSERT_STRING_EQUAL(p.buf, "routes[3].match");
    lintel_ypath_restore(&p, m1);
    CU_ASSERT_STRING_EQUAL(p.buf, "routes");
    lintel_ypath_restore(&p, m0);
    CU_ASSERT_STRING_EQUAL(p.buf, "");
    CU_ASSERT_EQUAL(p.len, 0);

    /* A path longer than the buffer is cut, never overrun. */
    char key[300];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    lintel_ypath_push_key(&p, key);
    size_t m = lintel_ypath_push_key(&p, key);
    CU_ASSERT_EQUAL(p.len, sizeof(p.buf) - 1);
    CU_ASSERT_EQUAL(strlen(p.buf), p.len);
    lintel_ypath_push_index(&p, 7);
    CU_ASSERT_EQUAL(p.len, sizeof(p.buf) - 1);
    lintel_ypath_restore(&p, m);
    CU_ASSERT_EQUAL(strlen(p.buf), sizeof(key) - 1);

    const char *none[] = {"a", "b", "c"};
    const char *two[] = {"b", "a", "c", "a", "b"};
    size_t dup = 99;
    CU_ASSERT_EQUAL(lintel_find_duplicate(none, 3, &dup), 0);
    CU_ASSERT_EQUAL(lintel_find_duplicate(none, 0, &dup), 0);
    CU_ASSERT_EQUAL(lintel_find_duplicate(two, 5, &dup), 1);
    CU_ASSERT_EQUAL(dup, 3);
}

static CU_TestInfo config_tests[] = {
    {"full configuration from a file", test_full_file},
    {"defaults", test_defaults},
    {"small variants", test_small_variants},
    {"file errors", test_file_errors},
    {"docs example loads", test_docs_example},
    {"unknown keys", test_unknown_keys},
    {"bad durations", test_bad_durations},
    {"bad sizes and numbers", test_bad_sizes_and_numbers},
    {"bad match", test_bad_match},
    {"bad references", test_bad_references},
    {"missing required keys", test_missing_required},
    {"wrong types and values", test_wrong_types},
    {"bad addresses", test_bad_addresses},
    {"yaml errors, anchors, duplicate keys", test_yaml_errors},
    {"sockaddr parse", test_sockaddr_parse},
    {"parse duration", test_parse_duration},
    {"parse size", test_parse_size},
    {"ynode tree", test_ynode_tree},
    {"ypath and duplicates", test_ypath_and_duplicates},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"config", NULL, NULL, NULL, NULL, config_tests},
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
    unsigned failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
