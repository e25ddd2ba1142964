/* The cors plugin through a running gateway, header by header on the wire: preflights answered
 * by the gateway (before an ACCESS plugin that would answer 401), credentials, regex origins on
 * two workers, denied origins, "*", preflight_continue, and CORS headers on answers made by
 * lintel (404, 502) or by another plugin (401). Also checks that the YAML example of
 * docs/plugins/cors.md passes `lintel -t`. The plugin is build/plugins/cors.so; tp-probe
 * (tests/host-plugins) stands in for an authentication plugin. */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "harness.h"

#define APP "http://app.test"

static char plugin_dir[PATH_MAX], probe_dir[PATH_MAX];

/* Two workers, so that regex origins are matched on more than one (each compiles its copy). */
#define CONFIG_HEAD                                                                                \
    "listen: [ { address: \"127.0.0.1:%d\" } ]\n"                                                  \
    "admin: { enabled: false }\n"                                                                  \
    "workers: 2\n"                                                                                 \
    "plugin_paths: [\"%s\", \"%s\"]\n"

static const char config[] = CONFIG_HEAD
    "plugins:\n"
    "  - { name: cors, instance: gcors, config: { origins: [\"" APP "\"], credentials: true } }\n"
    "upstreams:\n"
    "  o: { targets: [ { address: \"127.0.0.1:%d\" } ] }\n"
    "  dead: { targets: [ { address: \"127.0.0.1:%d\" } ], retries: 0 }\n"
    "routes:\n"
    "  - name: api\n"
    "    match: { paths: [\"/api\"] }\n"
    "    upstream: o\n"
    "  - name: strict\n"
    "    match: { paths: [\"/strict\"] }\n"
    "    upstream: o\n"
    "    disable_plugins: [gcors]\n"
    "    plugins:\n"
    "      - name: cors\n"
    "        config:\n"
    "          origins: [\"~^https://[a-z0-9-]+\\\\.example\\\\.com$\", \"" APP "\"]\n"
    "          methods: [GET, PUT]\n"
    "          headers: [Content-Type, X-Trace]\n"
    "          expose_headers: [X-Origin]\n"
    "          max_age: 10m\n"
    "  - name: star\n"
    "    match: { paths: [\"/star\"] }\n"
    "    upstream: o\n"
    "    disable_plugins: [gcors]\n"
    "    plugins: [ { name: cors, config: { origins: [\"*\"] } } ]\n"
    "  - name: cont\n"
    "    match: { paths: [\"/cont\"] }\n"
    "    upstream: o\n"
    "    disable_plugins: [gcors]\n"
    "    plugins:\n"
    "      - { name: cors, config: { origins: [\"" APP "\"], preflight_continue: true, "
    "max_age: 60 } }\n"
    "  - name: auth\n"
    "    match: { paths: [\"/auth\"] }\n"
    "    upstream: o\n"
    "    plugins:\n"
    "      - { name: tp-probe, config: { tag: P, respond: { phase: access, status: 401, "
    "body: unauthorized } } }\n"
    "  - name: down\n"
    "    match: { paths: [\"/down\"] }\n"
    "    upstream: dead\n";

struct env {
    struct it_proc *origin, *gw;
    int port;
    struct it_http h;
};

static int start(struct env *e)
{
    e->origin = it_origin_start("o");
    if (!e->origin)
        return -1;
    e->port = it_free_port();
    const char *conf = it_temp_path("cors.yaml");
    if (it_write_file(conf, config, e->port, plugin_dir, probe_dir, e->origin->port,
                      it_free_port()) != 0)
        return -1;
    e->gw = it_lintel_start(conf, e->port);
    return e->gw && it_http_init(&e->h) == 0 ? 0 : -1;
}

/* method path with the given request headers (NULL-terminated). */
static int call(struct env *e, const char *method, const char *path, const char *const *headers,
                struct it_response *r)
{
    struct it_http_req q = {.method = method, .url = it_url(e->port, path), .headers = headers};
    return it_http_do(&e->h, &q, r);
}

static bool header_is(const struct it_response *r, const char *name, const char *want)
{
    const char *got = it_response_header(r, name);
    if (got && strcmp(got, want) == 0 && it_response_header_count(r, name) == 1)
        return true;
    fprintf(stderr, "%s: got \"%s\" (%zu), want \"%s\"\n", name, got ? got : "(none)",
            it_response_header_count(r, name), want);
    return false;
}

/* Whether some Vary line of r lists token. */
static bool varies_on(const struct it_response *r, const char *token)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, "Vary") == 0 &&
            it_header_has_token(r->headers[i].value, token))
            return true;
    return false;
}

static bool no_cors_headers(const struct it_response *r)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strncasecmp(r->headers[i].name, "Access-Control-", 15) == 0) {
            fprintf(stderr, "unexpected %s: %s\n", r->headers[i].name, r->headers[i].value);
            return false;
        }
    return true;
}

static void test_preflight_answered_by_gateway(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e) == 0);
    long before = it_origin_requests(e.origin->port);
    struct it_response r;

    const char *strict[] = {"Origin: https://a.example.com", "Access-Control-Request-Method: PUT",
                            "Access-Control-Request-Headers: content-type,x-trace", NULL};
    CU_ASSERT_FATAL(call(&e, "OPTIONS", "/strict/items/1", strict, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 204);
    CU_ASSERT(header_is(&r, "Access-Control-Allow-Origin", "https://a.example.com"));
    CU_ASSERT(header_is(&r, "Access-Control-Allow-Methods", "GET, PUT"));
    CU_ASSERT(header_is(&r, "Access-Control-Allow-Headers", "Content-Type, X-Trace"));
    CU_ASSERT(header_is(&r, "Access-Control-Max-Age", "600"));
    CU_ASSERT(varies_on(&r, "Origin"));
    CU_ASSERT(!varies_on(&r, "Access-Control-Request-Headers")); /* a fixed list */
    CU_ASSERT_PTR_NULL(it_response_header(&r, "Access-Control-Allow-Credentials"));
    CU_ASSERT_PTR_NULL(it_response_header(&r, "Access-Control-Expose-Headers"));
    CU_ASSERT_PTR_NULL(it_response_header(&r, "Content-Length")); /* 204: no body, no length */
    CU_ASSERT_EQUAL(r.body_bytes, 0);
    it_response_free(&r);

    /* The global instance: credentials, default methods, requested headers echoed. */
    const char *api[] = {"Origin: " APP, "Access-Control-Request-Method: DELETE",
                         "Access-Control-Request-Headers: authorization,x-csrf", NULL};
    CU_ASSERT_FATAL(call(&e, "OPTIONS", "/api/x", api, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 204);
    CU_ASSERT(header_is(&r, "Access-Control-Allow-Origin", APP));
    CU_ASSERT(header_is(&r, "Access-Control-Allow-Credentials", "true"));
    CU_ASSERT(header_is(&r, "Access-Control-Allow-Methods", "GET, HEAD, PUT, PATCH, POST, DELETE"));
    CU_ASSERT(header_is(&r, "Access-Control-Allow-Headers", "authorization,x-csrf"));
    CU_ASSERT_PTR_NULL(it_response_header(&r, "Access-Control-Max-Age"));
    CU_ASSERT(varies_on(&r, "Origin"));
    CU_ASSERT(varies_on(&r, "Access-Control-Request-Headers"));
    it_response_free(&r);

    /* Before authentication: the route's ACCESS plugin would answer 401, the preflight is
     * answered 204 first (browsers never send credentials on a preflight). */
    CU_ASSERT_FATAL(call(&e, "OPTIONS", "/auth", api, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 204);
    CU_ASSERT(header_is(&r, "Access-Control-Allow-Origin", APP));
    it_response_free(&r);

    /* None of them reached the upstream (the /stats call itself is the only new request). */
    CU_ASSERT_EQUAL(it_origin_requests(e.origin->port), before + 1);
    it_http_free(&e.h);
}

static void test_actual_requests(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e) == 0);
    struct it_response r;

    const char *api[] = {"Origin: " APP, "Cookie: sid=1", NULL};
    CU_ASSERT_FATAL(call(&e, "POST", "/api/items", api, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_json_eq(r.body.data, "headers.origin", APP)); /* proxied as sent */
    CU_ASSERT(it_json_eq(r.body.data, "headers.cookie", "sid=1"));
    CU_ASSERT(header_is(&r, "Access-Control-Allow-Origin", APP));
    CU_ASSERT(header_is(&r, "Access-Control-Allow-Credentials", "true"));
    CU_ASSERT(varies_on(&r, "Origin"));
    CU_ASSERT_PTR_NULL(it_response_header(&r, "Access-Control-Allow-Methods")); /* preflight only */
    it_response_free(&r);

    const char *strict[] = {"Origin: " APP, NULL};
    CU_ASSERT_FATAL(call(&e, "GET", "/strict/items", strict, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(header_is(&r, "Access-Control-Allow-Origin", APP));
    CU_ASSERT(header_is(&r, "Access-Control-Expose-Headers", "X-Origin"));
    CU_ASSERT_PTR_NULL(it_response_header(&r, "Access-Control-Allow-Credentials"));
    it_response_free(&r);

    /* No Origin: not a CORS request, but the answer still varies on Origin. */
    CU_ASSERT_FATAL(call(&e, "GET", "/api/items", NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(no_cors_headers(&r));
    CU_ASSERT(varies_on(&r, "Origin"));
    it_response_free(&r);

    /* "*" without credentials: the same answer for everyone, so no Vary. */
    const char *star[] = {"Origin: https://anyone.example", NULL};
    CU_ASSERT_FATAL(call(&e, "GET", "/star", star, &r) == 0);
    CU_ASSERT(header_is(&r, "Access-Control-Allow-Origin", "*"));
    CU_ASSERT_PTR_NULL(it_response_header(&r, "Vary"));
    it_response_free(&r);
    CU_ASSERT_FATAL(call(&e, "GET", "/star", NULL, &r) == 0);
    CU_ASSERT(header_is(&r, "Access-Control-Allow-Origin", "*"));
    it_response_free(&r);
    it_http_free(&e.h);
}

static void test_regex_origins_on_every_worker(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e) == 0);
    static const struct {
        const char *origin;
        bool allowed;
    } cases[] = {
        {"https://a.example.com", true},           {"https://b-2.example.com", true},
        {"https://a.example.com.evil.net", false}, {"https://evilexample.com", false},
        {"http://a.example.com", false},           {"https://a.b.example.com", false},
    };
    /* A new connection per request: the kernel spreads them over both workers' listeners. */
    for (int round = 0; round < 8; round++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            char req[256];
            int n = snprintf(req, sizeof(req),
                             "GET /strict/r HTTP/1.1\r\nHost: gw\r\nOrigin: %s\r\n"
                             "Connection: close\r\n\r\n",
                             cases[i].origin);
            struct it_buf out = {0};
            CU_ASSERT(it_raw_exchange(e.port, req, (size_t)n, 5000, &out) == IT_READ_EOF);
            struct it_response r;
            CU_ASSERT_FATAL(it_response_parse(out.data, out.len, false, true, &r) > 0);
            CU_ASSERT_EQUAL(r.status, 200);
            const char *acao = it_response_header(&r, "Access-Control-Allow-Origin");
            if (cases[i].allowed) {
                CU_ASSERT(acao && strcmp(acao, cases[i].origin) == 0);
            } else {
                CU_ASSERT(no_cors_headers(&r));
            }
            CU_ASSERT(varies_on(&r, "Origin"));
            it_response_free(&r);
            it_buf_free(&out);
        }
    }
    it_http_free(&e.h);
}

static void test_denied_origin(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e) == 0);
    struct it_response r;
    long before = it_origin_requests(e.origin->port);

    /* A simple request still goes through; the browser is the one that withholds it. */
    const char *simple[] = {"Origin: http://evil.test", NULL};
    CU_ASSERT_FATAL(call(&e, "GET", "/api/items", simple, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_json_eq(r.body.data, "origin", "o"));
    CU_ASSERT(no_cors_headers(&r));
    CU_ASSERT(varies_on(&r, "Origin"));
    it_response_free(&r);

    /* A preflight is refused by the gateway, without CORS headers. */
    const char *pre[] = {"Origin: http://evil.test", "Access-Control-Request-Method: PUT", NULL};
    CU_ASSERT_FATAL(call(&e, "OPTIONS", "/api/items", pre, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 403);
    CU_ASSERT(it_json_eq(r.body.data, "error", "origin not allowed by CORS"));
    CU_ASSERT(no_cors_headers(&r));
    CU_ASSERT(varies_on(&r, "Origin"));
    it_response_free(&r);
    /* The same origin on another port is another origin. */
    const char *port[] = {"Origin: http://app.test:8080", "Access-Control-Request-Method: PUT",
                          NULL};
    CU_ASSERT_FATAL(call(&e, "OPTIONS", "/api/items", port, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 403);
    it_response_free(&r);

    /* The simple GET reached the origin, the preflights did not; +1 for /stats. */
    CU_ASSERT_EQUAL(it_origin_requests(e.origin->port), before + 2);
    it_http_free(&e.h);
}

static void test_preflight_continue(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e) == 0);
    struct it_response r;
    const char *pre[] = {"Origin: " APP, "Access-Control-Request-Method: PATCH",
                         "Access-Control-Request-Headers: x-a", NULL};
    CU_ASSERT_FATAL(call(&e, "OPTIONS", "/cont/x", pre, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200); /* the origin's own answer ... */
    CU_ASSERT(it_json_eq(r.body.data, "method", "OPTIONS"));
    CU_ASSERT(it_json_eq(r.body.data, "headers.access-control-request-method", "PATCH"));
    CU_ASSERT(header_is(&r, "X-Origin", "o"));
    /* ... with the preflight headers added */
    CU_ASSERT(header_is(&r, "Access-Control-Allow-Origin", APP));
    CU_ASSERT(header_is(&r, "Access-Control-Allow-Methods", "GET, HEAD, PUT, PATCH, POST, DELETE"));
    CU_ASSERT(header_is(&r, "Access-Control-Allow-Headers", "x-a"));
    CU_ASSERT(header_is(&r, "Access-Control-Max-Age", "60"));
    CU_ASSERT(varies_on(&r, "Origin"));
    CU_ASSERT(varies_on(&r, "Access-Control-Request-Headers"));
    it_response_free(&r);
    it_http_free(&e.h);
}

/* Answers made without the upstream (lintel's 404 and 502, another plugin's 401) carry the CORS
 * headers, so that the page can read the error instead of seeing a network failure. */
static void test_headers_on_gateway_and_plugin_errors(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e) == 0);
    struct it_response r;
    const char *hdr[] = {"Origin: " APP, NULL};
    static const struct {
        const char *path;
        int status;
    } cases[] = {{"/no-such-route", 404}, {"/down", 502}, {"/auth", 401}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CU_ASSERT_FATAL(call(&e, "GET", cases[i].path, hdr, &r) == 0);
        CU_ASSERT_EQUAL(r.status, cases[i].status);
        CU_ASSERT(header_is(&r, "Access-Control-Allow-Origin", APP));
        CU_ASSERT(header_is(&r, "Access-Control-Allow-Credentials", "true"));
        CU_ASSERT(varies_on(&r, "Origin"));
        it_response_free(&r);
    }
    /* ... and not for a denied origin */
    const char *evil[] = {"Origin: http://evil.test", NULL};
    CU_ASSERT_FATAL(call(&e, "GET", "/down", evil, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 502);
    CU_ASSERT(no_cors_headers(&r));
    it_response_free(&r);
    it_http_free(&e.h);
}

/* The first ```yaml block of docs/plugins/cors.md, with plugin_paths pointed at this build, is a
 * configuration `lintel -t` accepts; and a bad cors config is refused with its position. */
static void test_documented_config_is_valid(void)
{
    CU_ASSERT_EQUAL(it_doc_check("docs/plugins/cors.md", plugin_dir), 0);

    const char *bad =
        it_check_config("cors-bad.yaml", plugin_dir,
                        "  - { name: cors, config: { origins: [\"https://a.test/\"] } }\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(bad);
    CU_ASSERT(
        it_lintel_refuses(bad, "%s:5:39: plugins[0].config.origins[0]: plugin cors 1.0.1: ", bad));
}

static CU_TestInfo tests[] = {
    {"preflights are answered by the gateway, before ACCESS plugins",
     test_preflight_answered_by_gateway},
    {"actual requests: echo, credentials, expose, Vary, *", test_actual_requests},
    {"regex origins are anchored, on every worker", test_regex_origins_on_every_worker},
    {"a denied origin gets no CORS headers; its preflight a 403", test_denied_origin},
    {"preflight_continue passes the OPTIONS upstream and decorates the answer",
     test_preflight_continue},
    {"404, 502 and a plugin's 401 carry the headers", test_headers_on_gateway_and_plugin_errors},
    {"the documented configuration passes lintel -t", test_documented_config_is_valid},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"cors", NULL, it_suite_cleanup, it_test_setup, it_test_teardown, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    it_build_path(plugin_dir, sizeof(plugin_dir), "plugins");
    it_build_path(probe_dir, sizeof(probe_dir), "tests/host-plugins/v1.0.0");
    return it_main(suites, 240);
}
