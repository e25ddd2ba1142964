/* Tests cors through the SDK test kit, loading the built .so as lintel would: one test per
 * header rule (docs/plugins/cors.md), then the configuration errors. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#include <lintel/testkit.h>

#define APP "https://app.example.com"

static struct lk_plugin *plugin;

static int suite_init(void)
{
    plugin = lk_plugin_load_or_report(CORS_SO);
    return plugin ? 0 : -1;
}

static int suite_clean(void)
{
    lk_plugin_free(plugin);
    return 0;
}

/* A browser's preflight for a PUT with the given request headers (NULL: none). */
static struct lk_req *preflight(const char *origin, const char *headers)
{
    struct lk_req *r = lk_req_new("OPTIONS", "/items/1");
    lk_req_set_header(r, "Origin", origin);
    lk_req_set_header(r, "Access-Control-Request-Method", "PUT");
    if (headers)
        lk_req_set_header(r, "Access-Control-Request-Headers", headers);
    return r;
}

/* A request with the given Origin (NULL: none) and the upstream's 200 answer. */
static struct lk_req *actual(const char *method, const char *origin)
{
    struct lk_req *r = lk_req_new(method, "/items/1");
    if (origin)
        lk_req_set_header(r, "Origin", origin);
    lk_req_set_response(r, 200, "{}");
    return r;
}

/* Whether the response carries no Access-Control-* header at all. */
static int no_cors_headers(const struct lk_req *r)
{
    static const char *const names[] = {
        "Access-Control-Allow-Origin",  "Access-Control-Allow-Credentials",
        "Access-Control-Allow-Methods", "Access-Control-Allow-Headers",
        "Access-Control-Max-Age",       "Access-Control-Expose-Headers"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (lk_resp_header(r, names[i])) {
            fprintf(stderr, "unexpected %s: %s\n", names[i], lk_resp_header(r, names[i]));
            return 0;
        }
    return 1;
}

/* ---- preflights --------------------------------------------------------------------------- */

static void test_preflight_answered_with_204(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, "{ origins: [\"" APP "\"] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = preflight(APP, "content-type,x-trace");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), 204);
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Origin"), APP));
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Methods"),
                        "GET, HEAD, PUT, PATCH, POST, DELETE"));
    /* headers unset: what the browser asked for is echoed, and the answer varies on it */
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Headers"), "content-type,x-trace"));
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Vary"), "Origin"));
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "Access-Control-Allow-Credentials"));
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "Access-Control-Max-Age"));
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "Access-Control-Expose-Headers"));
    size_t len;
    lk_resp_body(r, &len);
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_EQUAL(lk_metric(in, "preflight_allowed"), 1);
    /* The response phase that follows leaves the preflight answer alone. */
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resp_status(r), 204);
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Headers"), "content-type,x-trace"));
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_req_free(r);
    lk_instance_free(in);
}

/* An echoed answer varies on Access-Control-Request-Headers. With "*" that is its only Vary; with
 * listed origins Origin comes first and this one on a second line, which the kit cannot show
 * (lk_resp_header gives the first line): it_plugin_cors reads every line. */
static void test_preflight_echo_varies_on_request_headers(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, "{ origins: [\"*\"] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = preflight("https://any.example", "x-a");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_RESPOND);
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Origin"), "*"));
    /* "*" without credentials does not depend on the origin: only the echo varies */
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Vary"), "Access-Control-Request-Headers"));
    lk_req_free(r);
    lk_instance_free(in);
}

static void test_preflight_configured_lists_and_max_age(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, "origins: [\"" APP "\"]\n"
                                                           "methods: [GET, PUT]\n"
                                                           "headers: [Content-Type, X-Trace]\n"
                                                           "expose_headers: [X-Request-Id]\n"
                                                           "max_age: 10m\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = preflight(APP, "x-other");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), 204);
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Methods"), "GET, PUT"));
    CU_ASSERT(
        lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Headers"), "Content-Type, X-Trace"));
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Max-Age"), "600"));
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Vary"), "Origin"));
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "Access-Control-Expose-Headers")); /* actual only */
    lk_req_free(r);
    lk_instance_free(in);
}

static void test_preflight_empty_lists_send_nothing(void)
{
    struct lk_instance *in =
        lk_instance_or_report(plugin, "{ origins: [\"" APP "\"], methods: [], headers: [] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = preflight(APP, "x-a");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_RESPOND);
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Origin"), APP));
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "Access-Control-Allow-Methods"));
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "Access-Control-Allow-Headers"));
    lk_req_free(r);
    lk_instance_free(in);
}

static void test_preflight_with_credentials(void)
{
    struct lk_instance *in =
        lk_instance_or_report(plugin, "{ origins: [\"" APP "\"], credentials: true }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = preflight(APP, NULL);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_RESPOND);
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Origin"), APP));
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Credentials"), "true"));
    /* nothing asked, nothing echoed */
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "Access-Control-Allow-Headers"));
    lk_req_free(r);
    lk_instance_free(in);
}

static void test_preflight_denied_origin_gets_403(void)
{
    struct lk_instance *in =
        lk_instance_or_report(plugin, "{ origins: [\"" APP "\"], credentials: true }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = preflight("https://evil.example", "x-a");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), 403);
    CU_ASSERT(no_cors_headers(r));
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Vary"), "Origin"));
    CU_ASSERT(lk_str_eq(lk_resp_body(r, NULL),
                        "{\"status\":403,\"error\":\"origin not allowed by CORS\"}\n"));
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT(no_cors_headers(r));
    CU_ASSERT_EQUAL(lk_metric(in, "preflight_denied"), 1);
    lk_req_free(r);
    lk_instance_free(in);
}

static void test_preflight_bad_request_headers_not_echoed(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, "{ origins: [\"" APP "\"] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = preflight(APP, "x-a, bad header");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), 204);
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "Access-Control-Allow-Headers"));
    lk_req_free(r);
    lk_instance_free(in);
}

/* OPTIONS without Access-Control-Request-Method (or without Origin) is an ordinary request. */
static void test_plain_options_is_not_a_preflight(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, "{ origins: [\"" APP "\"] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = actual("OPTIONS", APP);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Origin"), APP));
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "Access-Control-Allow-Methods"));
    lk_req_free(r);

    r = lk_req_new("OPTIONS", "/");
    lk_req_set_header(r, "Access-Control-Request-Method", "PUT");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_CONTINUE);
    lk_req_free(r);
    lk_instance_free(in);
}

static void test_preflight_continue_decorates_upstream_answer(void)
{
    struct lk_instance *in = lk_instance_or_report(
        plugin, "{ origins: [\"" APP "\"], preflight_continue: true, max_age: 60 }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = preflight(APP, "x-a");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resp_status(r), 0); /* on its way upstream */
    lk_req_set_response(r, 200, "from upstream");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resp_status(r), 200);
    CU_ASSERT(lk_str_eq(lk_resp_body(r, NULL), "from upstream"));
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Origin"), APP));
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Methods"),
                        "GET, HEAD, PUT, PATCH, POST, DELETE"));
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Headers"), "x-a"));
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Max-Age"), "60"));
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Vary"), "Origin"));
    lk_req_free(r);

    /* ... and a denied origin's preflight goes upstream too, answered without CORS headers */
    r = preflight("https://evil.example", "x-a");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_CONTINUE);
    lk_req_set_response(r, 200, "from upstream");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT(no_cors_headers(r));
    lk_req_free(r);
    lk_instance_free(in);
}

/* ---- actual requests ---------------------------------------------------------------------- */

static void test_allowed_origin_echoed_with_vary(void)
{
    struct lk_instance *in = lk_instance_or_report(
        plugin, "{ origins: [\"https://other.example\", \"" APP "\"], expose_headers: "
                "[X-Request-Id, X-Trace] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = actual("GET", APP);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resp_status(r), 200);
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Origin"), APP));
    CU_ASSERT(
        lk_str_eq(lk_resp_header(r, "Access-Control-Expose-Headers"), "X-Request-Id, X-Trace"));
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Vary"), "Origin"));
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "Access-Control-Allow-Credentials"));
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "Access-Control-Allow-Methods")); /* preflight only */
    lk_req_free(r);
    lk_instance_free(in);
}

static void test_credentials_echo_origin_never_star(void)
{
    struct lk_instance *in =
        lk_instance_or_report(plugin, "{ origins: [\"*\"], credentials: true }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = actual("POST", "https://whoever.example:8443");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Origin"),
                        "https://whoever.example:8443"));
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Credentials"), "true"));
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Vary"), "Origin"));
    lk_req_free(r);

    r = actual("GET", NULL); /* no Origin: nothing to echo */
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT(no_cors_headers(r));
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Vary"), "Origin"));
    lk_req_free(r);
    lk_instance_free(in);
}

static void test_star_without_credentials(void)
{
    struct lk_instance *in =
        lk_instance_or_report(plugin, "{ origins: [\"*\"], expose_headers: [X-Trace] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    const char *origins[] = {APP, NULL};
    for (size_t i = 0; i < 2; i++) { /* the same answer with and without Origin: no Vary */
        struct lk_req *r = actual("GET", origins[i]);
        CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
        CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Origin"), "*"));
        CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Expose-Headers"), "X-Trace"));
        CU_ASSERT_PTR_NULL(lk_resp_header(r, "Access-Control-Allow-Credentials"));
        CU_ASSERT_PTR_NULL(lk_resp_header(r, "Vary"));
        lk_req_free(r);
    }
    lk_instance_free(in);
}

static void test_denied_origin_gets_no_cors_headers(void)
{
    struct lk_instance *in = lk_instance_or_report(
        plugin, "{ origins: [\"" APP "\"], credentials: true, expose_headers: [X-Trace] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = actual("GET", "https://evil.example");
    /* the upstream's own CORS headers go too: the gateway's policy is the one that counts */
    lk_req_set_response_header(r, "Access-Control-Allow-Origin", "*");
    lk_req_set_response_header(r, "Access-Control-Allow-Credentials", "true");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_CONTINUE); /* still proceeds */
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resp_status(r), 200);
    CU_ASSERT(lk_str_eq(lk_resp_body(r, NULL), "{}"));
    CU_ASSERT(no_cors_headers(r));
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Vary"), "Origin"));
    CU_ASSERT_EQUAL(lk_metric(in, "origin_denied"), 1);
    lk_req_free(r);

    /* the exact match is byte for byte: a different port, scheme or case is another origin */
    const char *near[] = {APP ":8443", "http://app.example.com", "https://APP.example.com", APP "/",
                          "null"};
    for (size_t i = 0; i < sizeof(near) / sizeof(near[0]); i++) {
        r = actual("GET", near[i]);
        CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
        CU_ASSERT(no_cors_headers(r));
        lk_req_free(r);
    }
    lk_instance_free(in);
}

static void test_no_origin_gets_vary_only(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, "{ origins: [\"" APP "\"] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = actual("GET", NULL);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT(no_cors_headers(r));
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Vary"), "Origin"));
    CU_ASSERT_EQUAL(lk_metric(in, "origin_denied"), 0);
    lk_req_free(r);
    lk_instance_free(in);
}

/* The upstream's own CORS headers, however many lines and whatever the case of their names:
 * for an allowed origin Allow-Origin is replaced and what the configuration does not send
 * (credentials, expose_headers) is removed, the rest left alone; for a denied origin or none,
 * all of them go. */
static void test_upstream_cors_headers(void)
{
    static const char *const sent[][2] = {
        {"access-control-allow-origin", "*"},
        {"Access-Control-Allow-Origin", "https://other.example"},
        {"ACCESS-CONTROL-ALLOW-CREDENTIALS", "true"},
        {"Access-Control-Allow-Credentials", "true"},
        {"Access-Control-Expose-Headers", "X-Secret"},
        {"access-control-expose-headers", "X-Other"},
        {"Access-Control-Allow-Methods", "DELETE"},
        {"Access-Control-Allow-Headers", "X-Any"},
        {"access-control-max-age", "86400"},
    };
    struct lk_instance *in = lk_instance_or_report(plugin, "{ origins: [\"" APP "\"] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    const char *origins[] = {APP, NULL, "https://evil.example"};
    for (size_t i = 0; i < sizeof(origins) / sizeof(origins[0]); i++) {
        struct lk_req *r = actual("GET", origins[i]);
        for (size_t k = 0; k < sizeof(sent) / sizeof(sent[0]); k++)
            lk_req_set_response_header(r, sent[k][0], sent[k][1]);
        CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
        if (i == 0) { /* APP */
            CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Origin"), APP));
            CU_ASSERT_PTR_NULL(lk_resp_header(r, "Access-Control-Allow-Credentials"));
            CU_ASSERT_PTR_NULL(lk_resp_header(r, "Access-Control-Expose-Headers"));
            CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Methods"), "DELETE"));
            CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Headers"), "X-Any"));
            CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Max-Age"), "86400"));
        } else {
            CU_ASSERT(no_cors_headers(r));
        }
        CU_ASSERT(lk_str_eq(lk_resp_header(r, "Vary"), "Origin"));
        lk_req_free(r);
    }
    lk_instance_free(in);
}

static void test_regex_origins_are_anchored(void)
{
    struct lk_instance *in =
        lk_instance_or_report(plugin, "{ origins: [\"~https://[a-z0-9-]+\\\\.example\\\\.com\", "
                                      "\"~^http://localhost:[0-9]+$\"] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    const char *allowed[] = {"https://a.example.com", "https://b-2.example.com",
                             "http://localhost:3000"};
    const char *denied[] = {"https://example.com",
                            "https://a.example.com.evil.net",
                            "https://evil.net/?https://a.example.com",
                            "http://a.example.com",
                            "xhttps://a.example.com",
                            "http://localhost:3000x",
                            "https://a.example.com:443"};
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        struct lk_req *r = actual("GET", allowed[i]);
        CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
        CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Origin"), allowed[i]));
        lk_req_free(r);
    }
    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
        struct lk_req *r = actual("GET", denied[i]);
        CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
        if (!no_cors_headers(r))
            fprintf(stderr, "  for Origin %s\n", denied[i]);
        CU_ASSERT(no_cors_headers(r));
        lk_req_free(r);
    }
    /* an origin longer than the matcher's stack buffer (request memory instead) */
    char longer[400];
    snprintf(longer, sizeof(longer), "https://%0300d.example.com", 0);
    struct lk_req *lr = actual("GET", longer);
    CU_ASSERT_EQUAL(lk_run(in, lr, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT(lk_str_eq(lk_resp_header(lr, "Access-Control-Allow-Origin"), longer));
    lk_req_free(lr);
    /* a regex also answers preflights */
    struct lk_req *r = preflight("https://a.example.com", NULL);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), 204);
    CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Origin"), "https://a.example.com"));
    lk_req_free(r);
    lk_instance_free(in);
}

/* An answer made by another plugin or by lintel (401, 429, 502) gets the headers too, so that
 * the page can read why it failed. */
static void test_error_responses_get_headers(void)
{
    struct lk_instance *in =
        lk_instance_or_report(plugin, "{ origins: [\"" APP "\"], credentials: true }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    const int statuses[] = {401, 429, 502};
    for (size_t i = 0; i < 3; i++) {
        struct lk_req *r = lk_req_new("GET", "/");
        lk_req_set_header(r, "Origin", APP);
        lk_req_set_response(r, statuses[i], "{\"error\":\"x\"}");
        CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
        CU_ASSERT_EQUAL(lk_resp_status(r), statuses[i]);
        CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Origin"), APP));
        CU_ASSERT(lk_str_eq(lk_resp_header(r, "Access-Control-Allow-Credentials"), "true"));
        lk_req_free(r);
    }
    lk_instance_free(in);
}

static void test_vary_kept_and_not_repeated(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, "{ origins: [\"" APP "\"] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    const char *upstream[] = {"origin", "Accept-Encoding, Origin", "*", "Accept-Encoding"};
    for (size_t i = 0; i < 4; i++) {
        struct lk_req *r = actual("GET", APP);
        lk_req_set_response_header(r, "Vary", upstream[i]);
        CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
        /* the first line is the upstream's, untouched (Origin is added as a second line when
         * missing: see it_plugin_cors) */
        CU_ASSERT(lk_str_eq(lk_resp_header(r, "Vary"), upstream[i]));
        lk_req_free(r);
    }
    lk_instance_free(in);
}

/* ---- configuration ------------------------------------------------------------------------ */

static void test_config_accepts(void)
{
    const char *ok[] = {
        "{ origins: [\"*\"] }",
        "{ origins: [\"null\", \"http://127.0.0.1:8080\", \"http://[::1]:80\"] }",
        "{ origins: [\"~^https://.*\\\\.example\\\\.com$\"] }",
        "{ origins: [\"*\"], methods: [\"*\"], headers: [\"*\"], expose_headers: [\"*\"] }",
        "{ origins: [\"" APP "\"], credentials: false, preflight_continue: false, max_age: 0 }",
        "{ origins: [\"" APP "\"], max_age: 2h, methods: [GET], headers: [], "
        "expose_headers: [] }",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct lk_instance *in = lk_instance_or_report(plugin, ok[i]);
        CU_ASSERT_PTR_NOT_NULL(in);
        lk_instance_free(in);
    }
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static void test_config_errors(void)
{
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, NULL), "1:1: required");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "[a]"), "1:1: must be a map");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ methods: [GET] }"), "1:1: origins: required");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ origins: \"*\" }"),
                           "1:12: origins: must be a list of strings");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ origins: [] }"),
                           "1:12: origins: must not be empty");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ origins: [[a]] }"),
                           "1:13: origins[0]: must be a string");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ origins: [\"" APP "\", \"*\"] }"),
                           "1:40: origins[1]: \"*\" must be the only origin");
    const char *bad_origins[] = {"app.example.com",
                                 "https://app.example.com/",
                                 "https://App.example.com",
                                 "https://app.example.com:0",
                                 "https://app.example.com:99999",
                                 "https://",
                                 "https://[]",
                                 "https://a b"};
    for (size_t i = 0; i < sizeof(bad_origins) / sizeof(bad_origins[0]); i++) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "{ origins: [\"%s\"] }", bad_origins[i]);
        CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, yaml),
                               "1:13: origins[0]: must be \"*\", \"~regex\" or an origin: "
                               "scheme://host[:port], lowercase, no path");
    }
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ origins: [\"~\"] }"),
                           "1:13: origins[0]: empty regex");
    const char *e = lk_config_error(plugin, "{ origins: [\"~https://[a-\"] }");
    CU_ASSERT(strncmp(e, "1:13: origins[0]: regex does not compile: ", 42) == 0);
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ origins: [\"*\"], methods: [\"GET POST\"] }"),
                           "1:29: methods[0]: must be a method");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ origins: [\"*\"], methods: GET }"),
                           "1:28: methods: must be a list of strings");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ origins: [\"*\"], headers: [\"X:Y\"] }"),
                           "1:29: headers[0]: must be a header name");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ origins: [\"*\"], expose_headers: [\"\"] }"),
                           "1:36: expose_headers[0]: must be a header name");
    CU_ASSERT_STRING_EQUAL(
        lk_config_error(plugin, "{ origins: [\"*\"], credentials: true, headers: [\"*\"] }"),
        "1:48: headers[0]: \"*\" is not a wildcard with credentials: list the names");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ origins: [\"*\"], credentials: yes }"),
                           "1:32: credentials: must be true or false");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ origins: [\"*\"], preflight_continue: 1 }"),
                           "1:39: preflight_continue: must be true or false");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ origins: [\"*\"], max_age: soon }"),
                           "1:28: max_age: must be a duration");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ origins: [\"*\"], max_age: 1500ms }"),
                           "1:28: max_age: must be whole seconds");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ origins: [\"*\"], origin: [a] }"),
                           "1:27: origin: unknown key");
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static CU_TestInfo cors_tests[] = {
    {"preflight: 204 with origin, default methods, echoed headers, Vary",
     test_preflight_answered_with_204},
    {"preflight: echoed headers vary on Access-Control-Request-Headers",
     test_preflight_echo_varies_on_request_headers},
    {"preflight: configured methods, headers, max_age",
     test_preflight_configured_lists_and_max_age},
    {"preflight: empty lists send no header", test_preflight_empty_lists_send_nothing},
    {"preflight: credentials", test_preflight_with_credentials},
    {"preflight: denied origin gets 403 without CORS headers",
     test_preflight_denied_origin_gets_403},
    {"preflight: malformed Access-Control-Request-Headers is not echoed",
     test_preflight_bad_request_headers_not_echoed},
    {"OPTIONS without the preflight headers is an ordinary request",
     test_plain_options_is_not_a_preflight},
    {"preflight_continue: the upstream's answer gets the preflight headers",
     test_preflight_continue_decorates_upstream_answer},
    {"actual: allowed origin echoed, expose_headers, Vary: Origin",
     test_allowed_origin_echoed_with_vary},
    {"actual: credentials echo the origin, never *", test_credentials_echo_origin_never_star},
    {"actual: * without credentials, with or without Origin, no Vary",
     test_star_without_credentials},
    {"actual: denied origin gets no CORS headers, request proceeds",
     test_denied_origin_gets_no_cors_headers},
    {"actual: no Origin gets only Vary", test_no_origin_gets_vary_only},
    {"actual: the upstream's CORS headers replaced or removed", test_upstream_cors_headers},
    {"regex origins are anchored", test_regex_origins_are_anchored},
    {"401, 429, 502 answers get the headers", test_error_responses_get_headers},
    {"Vary from the upstream is kept", test_vary_kept_and_not_repeated},
    {"configurations accepted", test_config_accepts},
    {"config errors point at the offending node", test_config_errors},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"cors", suite_init, suite_clean, NULL, NULL, cors_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return lk_test_run(suites);
}
