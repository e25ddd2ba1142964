/* Tests fallback through the SDK test kit, loading the built .so as lintel would: triggers,
 * capture (chunked bodies, limits, headers kept and dropped), the store's bounds and ages on
 * the virtual clock, the static answer, the circuit breaker, then the configuration errors. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lintel/testkit.h>

static struct lk_plugin *plugin;

static int suite_init(void)
{
    char err[256];
    plugin = lk_plugin_load(FALLBACK_SO, err, sizeof(err));
    if (!plugin)
        fprintf(stderr, "%s\n", err);
    return plugin ? 0 : -1;
}

static int suite_clean(void)
{
    lk_plugin_free(plugin);
    return 0;
}

static struct lk_instance *instance(const char *yaml)
{
    char err[256];
    struct lk_instance *in = lk_instance_new(plugin, yaml, err, sizeof(err));
    if (!in)
        fprintf(stderr, "config %s: %s\n", yaml ? yaml : "(none)", err);
    return in;
}

/* Creates an instance that must fail and returns the error text. */
static const char *config_error(const char *yaml)
{
    static char err[512];
    struct lk_instance *in = lk_instance_new(plugin, yaml, err, sizeof(err));
    if (in) {
        lk_instance_free(in);
        return "(created)";
    }
    return err;
}

static int str_eq(const char *got, const char *want)
{
    if (got && strcmp(got, want) == 0)
        return 1;
    fprintf(stderr, "got \"%s\", want \"%s\"\n", got ? got : "(none)", want);
    return 0;
}

static int contains(const char *got, const char *want)
{
    if (got && strstr(got, want))
        return 1;
    fprintf(stderr, "got \"%s\", want it to contain \"%s\"\n", got ? got : "(none)", want);
    return 0;
}

/* One request through the phases lintel runs around the upstream: BALANCE, then (if the
 * request went upstream) the response the test gave in *setup, RESPONSE_HEADERS and
 * RESPONSE_BODY in chunks of 3 bytes. Returns BALANCE's result (RESPOND: answered without the
 * upstream, setup not called). */
typedef void (*setup_fn)(struct lk_req *r, const void *arg);

static enum lintel_result through(struct lk_instance *in, struct lk_req *r, setup_fn setup,
                                  const void *arg)
{
    enum lintel_result b = lk_run(in, r, LINTEL_PHASE_BALANCE);
    if (b == LINTEL_RESPOND) {
        CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
        return b;
    }
    CU_ASSERT_EQUAL(b, LINTEL_CONTINUE);
    setup(r, arg);
    lk_req_set_chunk_size(r, 3);
    /* RESPOND: the plugin replaced the response (with a fallback), whose body lintel writes at
     * once: no RESPONSE_BODY. */
    enum lintel_result h = lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS);
    CU_ASSERT_EQUAL(h, lk_resp_header(r, "X-Fallback") ? LINTEL_RESPOND : LINTEL_CONTINUE);
    if (h == LINTEL_CONTINUE)
        CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_BODY), LINTEL_CONTINUE);
    return b;
}

/* The upstream's 200 with body arg and a few headers of each kind. */
static void ok_response(struct lk_req *r, const void *arg)
{
    lk_req_set_response(r, 200, arg);
    lk_req_set_response_header(r, "Content-Type", "application/json");
    lk_req_set_response_header(r, "X-Version", "7");
    lk_req_set_response_header(r, "Link", "</a>; rel=a");
    lk_req_set_response_header(r, "Link", "</b>; rel=b");
    lk_req_set_response_header(r, "Set-Cookie", "sid=secret");
    lk_req_set_response_header(r, "Connection", "X-Hop");
    lk_req_set_response_header(r, "X-Hop", "1");
    lk_req_set_response_header(r, "Keep-Alive", "timeout=5");
}

static void failure(struct lk_req *r, const void *arg)
{
    lk_req_set_upstream_failure(r, *(const enum lintel_upstream_failure *)arg);
}

static void status_response(struct lk_req *r, const void *arg)
{
    lk_req_set_response(r, *(const int *)arg, "upstream says no");
}

/* GET target answered 200 with body, through the instance (a capture). */
static void capture(struct lk_instance *in, const char *target, const char *body)
{
    struct lk_req *r = lk_req_new("GET", target);
    through(in, r, ok_response, body);
    CU_ASSERT_EQUAL(lk_resp_status(r), 200);
    lk_req_free(r);
}

static const enum lintel_upstream_failure CONNECT = LINTEL_UPSTREAM_CONNECT;

/* GET target while the upstream refuses connections; the caller checks and frees r. */
static struct lk_req *failing(struct lk_instance *in, const char *target)
{
    struct lk_req *r = lk_req_new("GET", target);
    through(in, r, failure, &CONNECT);
    return r;
}

/* ---- last good ------------------------------------------------------------------------------ */

static void test_last_good_served_on_connect_error(void)
{
    struct lk_instance *in = instance(NULL); /* every default */
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    capture(in, "/items", "{\"items\":[1,2,3]}");

    lk_advance(4500);
    struct lk_req *r = failing(in, "/items");
    CU_ASSERT_EQUAL(lk_resp_status(r), 200);
    size_t len;
    CU_ASSERT(str_eq(lk_resp_body(r, &len), "{\"items\":[1,2,3]}"));
    CU_ASSERT_EQUAL(len, 17);
    CU_ASSERT(str_eq(lk_resp_header(r, "X-Fallback"), "last-good"));
    CU_ASSERT(str_eq(lk_resp_header(r, "Age"), "4"));
    CU_ASSERT(str_eq(lk_resp_header(r, "Content-Type"), "application/json"));
    CU_ASSERT(str_eq(lk_resp_header(r, "X-Version"), "7"));
    CU_ASSERT(str_eq(lk_resp_header(r, "Link"), "</a>; rel=a"));
    /* hop-by-hop (also the one Connection named) and Set-Cookie are not replayed */
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "Set-Cookie"));
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "X-Hop"));
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "Connection"));
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "Keep-Alive"));
    CU_ASSERT_EQUAL(lk_metric(in, "served_last_good"), 1);
    lk_req_free(r);

    /* Another path has no last good response, and there is no static one: unchanged. */
    r = failing(in, "/other");
    CU_ASSERT_EQUAL(lk_resp_status(r), 502);
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "X-Fallback"));
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_metric(in, "served_last_good"), 1);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
}

static void test_every_failure_kind_triggers(void)
{
    struct lk_instance *in = instance("{ static: { status: 200, body: fb } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    static const enum lintel_upstream_failure kinds[] = {
        LINTEL_UPSTREAM_CONNECT, LINTEL_UPSTREAM_TIMEOUT, LINTEL_UPSTREAM_NO_HEALTHY,
        LINTEL_UPSTREAM_ERROR};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        struct lk_req *r = lk_req_new("GET", "/x");
        through(in, r, failure, &kinds[i]);
        CU_ASSERT_EQUAL(lk_resp_status(r), 200);
        CU_ASSERT(str_eq(lk_resp_body(r, NULL), "fb"));
        CU_ASSERT(str_eq(lk_resp_header(r, "X-Fallback"), "static"));
        lk_req_free(r);
    }
    CU_ASSERT_EQUAL(lk_metric(in, "served_static"), 4);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
}

static void test_listed_statuses_trigger(void)
{
    struct lk_instance *in = instance("{ static: { body: fb } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    static const struct {
        int status;
        int want;
    } cases[] = {{500, 200}, {502, 200}, {503, 200}, {504, 200},
                 {404, 404}, {501, 501}, {429, 429}, {200, 200}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lk_req *r = lk_req_new("GET", "/x");
        through(in, r, status_response, &cases[i].status);
        CU_ASSERT_EQUAL(lk_resp_status(r), cases[i].want);
        if (cases[i].status != 200 && cases[i].want == cases[i].status)
            CU_ASSERT(str_eq(lk_resp_body(r, NULL), "upstream says no"));
        lk_req_free(r);
    }
    lk_instance_free(in);

    in = instance("{ statuses: [429, 500], static: { body: fb } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    int s429 = 429, s503 = 503;
    struct lk_req *r = lk_req_new("GET", "/x");
    through(in, r, status_response, &s429);
    CU_ASSERT(str_eq(lk_resp_header(r, "X-Fallback"), "static"));
    lk_req_free(r);
    r = lk_req_new("GET", "/x");
    through(in, r, status_response, &s503);
    CU_ASSERT_EQUAL(lk_resp_status(r), 503); /* not listed any more */
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "X-Fallback"));
    lk_req_free(r);
    lk_instance_free(in);
}

/* A 503 that another plugin answered before the upstream (BALANCE never ran) is not the
 * upstream failing: an authentication refusal must never turn into cached data. */
static void test_plugin_answers_are_not_triggers(void)
{
    struct lk_instance *in = instance("{ static: { body: fb } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = lk_req_new("GET", "/x");
    lk_req_set_response(r, 503, "busy");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resp_status(r), 503);
    CU_ASSERT(str_eq(lk_resp_body(r, NULL), "busy"));
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_metric(in, "served_static"), 0);
    lk_instance_free(in);
}

static void test_key_args_headers_and_method(void)
{
    struct lk_instance *in =
        instance("{ last_good: { key: { args: [page], headers: [Accept-Language] } } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    capture(in, "/list?page=2&ts=1", "page two");
    struct lk_req *r = lk_req_new("GET", "/list?page=2&ts=1");
    lk_req_set_header(r, "Accept-Language", "fr");
    through(in, r, ok_response, "page two, french");
    lk_req_free(r);

    /* Other arguments are not part of the key. */
    r = failing(in, "/list?ts=9&page=2");
    CU_ASSERT(str_eq(lk_resp_body(r, NULL), "page two"));
    lk_req_free(r);
    r = lk_req_new("GET", "/list?page=2");
    lk_req_set_header(r, "Accept-Language", "fr");
    through(in, r, failure, &CONNECT);
    CU_ASSERT(str_eq(lk_resp_body(r, NULL), "page two, french"));
    lk_req_free(r);
    /* An empty page is not an absent one. */
    r = failing(in, "/list?page=");
    CU_ASSERT_EQUAL(lk_resp_status(r), 502);
    lk_req_free(r);
    r = failing(in, "/list?page=3");
    CU_ASSERT_EQUAL(lk_resp_status(r), 502);
    lk_req_free(r);
    /* Only GET is captured by default, and the method is part of the key. */
    r = lk_req_new("POST", "/list?page=2");
    through(in, r, ok_response, "posted");
    lk_req_free(r);
    r = lk_req_new("POST", "/list?page=2");
    through(in, r, failure, &CONNECT);
    CU_ASSERT_EQUAL(lk_resp_status(r), 502);
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
}

static void test_consumer_in_key(void)
{
    struct lk_instance *in = instance("{ last_good: { methods: [GET, POST], key: { consumer: "
                                      "true } } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    capture(in, "/me", "anonymous view");
    struct lk_req *r = failing(in, "/me");
    CU_ASSERT(str_eq(lk_resp_body(r, NULL), "anonymous view"));
    lk_req_free(r);
    r = lk_req_new("POST", "/me");
    through(in, r, ok_response, "posted");
    lk_req_free(r);
    r = lk_req_new("POST", "/me");
    through(in, r, failure, &CONNECT);
    CU_ASSERT(str_eq(lk_resp_body(r, NULL), "posted"));
    lk_req_free(r);
    lk_instance_free(in);
}

static void test_max_age_and_refresh(void)
{
    struct lk_instance *in = instance("{ last_good: { max_age: 1m, refresh: 10s } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    capture(in, "/v", "one");
    lk_advance(5000);
    capture(in, "/v", "two"); /* within refresh: the stored copy stays */
    struct lk_req *r = failing(in, "/v");
    CU_ASSERT(str_eq(lk_resp_body(r, NULL), "one"));
    CU_ASSERT(str_eq(lk_resp_header(r, "Age"), "5"));
    lk_req_free(r);
    lk_advance(5000);
    capture(in, "/v", "three"); /* 10 s after: stored again */
    r = failing(in, "/v");
    CU_ASSERT(str_eq(lk_resp_body(r, NULL), "three"));
    CU_ASSERT(str_eq(lk_resp_header(r, "Age"), "0"));
    lk_req_free(r);
    lk_advance(60000);
    r = failing(in, "/v"); /* exactly max_age old: still served */
    CU_ASSERT(str_eq(lk_resp_body(r, NULL), "three"));
    CU_ASSERT(str_eq(lk_resp_header(r, "Age"), "60"));
    lk_req_free(r);
    lk_advance(1);
    r = failing(in, "/v");
    CU_ASSERT_EQUAL(lk_resp_status(r), 502);
    lk_req_free(r);
    lk_instance_free(in);
}

static void with_length(struct lk_req *r, const void *arg)
{
    const char *const *v = arg; /* body, Content-Length */
    lk_req_set_response(r, 200, v[0]);
    lk_req_set_response_header(r, "Content-Length", v[1]);
}

static void no_store(struct lk_req *r, const void *arg)
{
    lk_req_set_response(r, 200, arg);
    lk_req_set_response_header(r, "Cache-Control", "max-age=0, No-Store");
}

static void test_what_is_not_captured(void)
{
    struct lk_instance *in = instance("{ last_good: { max_body: 8 } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    /* Longer than max_body, streamed (no length) and announced. */
    capture(in, "/long", "123456789");
    const char *announced[] = {"123456789", "9"};
    struct lk_req *r = lk_req_new("GET", "/announced");
    through(in, r, with_length, announced);
    lk_req_free(r);
    /* Shorter than its Content-Length: cut off. */
    const char *cut[] = {"1234", "6"};
    r = lk_req_new("GET", "/cut");
    through(in, r, with_length, cut);
    lk_req_free(r);
    r = lk_req_new("GET", "/private");
    through(in, r, no_store, "mine");
    lk_req_free(r);
    /* A non-200 success is not captured either. */
    int s201 = 201;
    r = lk_req_new("GET", "/created");
    through(in, r, status_response, &s201);
    lk_req_free(r);
    static const char *const paths[] = {"/long", "/announced", "/cut", "/private", "/created"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        r = failing(in, paths[i]);
        CU_ASSERT_EQUAL(lk_resp_status(r), 502);
        lk_req_free(r);
    }
    /* Exactly max_body, with its length: kept. */
    const char *fits[] = {"12345678", "8"};
    r = lk_req_new("GET", "/fits");
    through(in, r, with_length, fits);
    lk_req_free(r);
    r = failing(in, "/fits");
    CU_ASSERT(str_eq(lk_resp_body(r, NULL), "12345678"));
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
}

static void test_empty_body_is_captured(void)
{
    struct lk_instance *in = instance(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    capture(in, "/empty", NULL);
    struct lk_req *r = failing(in, "/empty");
    CU_ASSERT_EQUAL(lk_resp_status(r), 200);
    CU_ASSERT(str_eq(lk_resp_header(r, "X-Fallback"), "last-good"));
    size_t len = 1;
    lk_resp_body(r, &len);
    CU_ASSERT_EQUAL(len, 0);
    lk_req_free(r);
    lk_instance_free(in);
}

static int served(struct lk_instance *in, const char *path)
{
    struct lk_req *r = failing(in, path);
    int ok = lk_resp_status(r) == 200;
    lk_req_free(r);
    return ok;
}

static void test_max_entries_evicts_least_recently_used(void)
{
    struct lk_instance *in = instance("{ last_good: { max_entries: 2 } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    capture(in, "/a", "a");
    capture(in, "/b", "b");
    CU_ASSERT(served(in, "/a")); /* /a is now the most recently used */
    capture(in, "/c", "c");      /* evicts /b */
    CU_ASSERT(served(in, "/a"));
    CU_ASSERT(!served(in, "/b"));
    CU_ASSERT(served(in, "/c"));
    lk_instance_free(in);
}

static void test_max_bytes_evicts(void)
{
    /* Each entry costs its body plus about 350 bytes of key, headers and bookkeeping. */
    struct lk_instance *in = instance("{ last_good: { max_bytes: 3k, max_body: 1k } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    char body[1001];
    memset(body, 'x', 1000);
    body[1000] = '\0';
    capture(in, "/a", body);
    capture(in, "/b", body);
    CU_ASSERT(served(in, "/a"));
    CU_ASSERT(served(in, "/b"));
    capture(in, "/c", body); /* 3 x 1350 > 3k: the least recently used (/a) goes */
    CU_ASSERT(!served(in, "/a"));
    CU_ASSERT(served(in, "/b"));
    CU_ASSERT(served(in, "/c"));
    lk_instance_free(in);
}

static void test_last_good_off(void)
{
    struct lk_instance *in = instance("{ last_good: false, static: { status: 503, headers: { "
                                      "Retry-After: 30 }, body: later } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    capture(in, "/a", "a");
    struct lk_req *r = failing(in, "/a");
    CU_ASSERT_EQUAL(lk_resp_status(r), 503);
    CU_ASSERT(str_eq(lk_resp_body(r, NULL), "later"));
    CU_ASSERT(str_eq(lk_resp_header(r, "Retry-After"), "30"));
    CU_ASSERT(str_eq(lk_resp_header(r, "X-Fallback"), "static"));
    lk_req_free(r);
    lk_instance_free(in);
}

/* ---- static --------------------------------------------------------------------------------- */

static void test_static_only_when_no_last_good(void)
{
    struct lk_instance *in = instance("static:\n"
                                      "  status: 200\n"
                                      "  headers: { Content-Type: application/json, X-Stale: "
                                      "\"yes\" }\n"
                                      "  body: '{\"items\":[]}'\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = failing(in, "/items");
    CU_ASSERT_EQUAL(lk_resp_status(r), 200);
    CU_ASSERT(str_eq(lk_resp_body(r, NULL), "{\"items\":[]}"));
    CU_ASSERT(str_eq(lk_resp_header(r, "Content-Type"), "application/json"));
    CU_ASSERT(str_eq(lk_resp_header(r, "X-Stale"), "yes"));
    CU_ASSERT(str_eq(lk_resp_header(r, "X-Fallback"), "static"));
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "Age"));
    lk_req_free(r);
    capture(in, "/items", "{\"items\":[4]}");
    r = failing(in, "/items");
    CU_ASSERT(str_eq(lk_resp_body(r, NULL), "{\"items\":[4]}"));
    CU_ASSERT(str_eq(lk_resp_header(r, "X-Fallback"), "last-good"));
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "X-Stale"));
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_metric(in, "served_static"), 1);
    CU_ASSERT_EQUAL(lk_metric(in, "served_last_good"), 1);
    lk_instance_free(in);
}

static void test_static_body_file(void)
{
    char path[] = "/tmp/fallback-body-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    static const char text[] = "<h1>down for maintenance</h1>\n";
    CU_ASSERT_FATAL(write(fd, text, sizeof(text) - 1) == (ssize_t)(sizeof(text) - 1));
    close(fd);
    char yaml[256];
    snprintf(yaml, sizeof(yaml),
             "{ static: { status: 503, headers: { Content-Type: text/html }, body_file: %s } }",
             path);
    struct lk_instance *in = instance(yaml);
    unlink(path); /* read at create: the file may go */
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = failing(in, "/");
    CU_ASSERT_EQUAL(lk_resp_status(r), 503);
    CU_ASSERT(str_eq(lk_resp_body(r, NULL), text));
    CU_ASSERT(str_eq(lk_resp_header(r, "Content-Type"), "text/html"));
    lk_req_free(r);
    lk_instance_free(in);

    CU_ASSERT(contains(config_error(yaml), "static.body_file: cannot read"));
    CU_ASSERT(contains(config_error(yaml), path));
}

/* ---- the breaker ---------------------------------------------------------------------------- */

static const int S503 = 503;

/* A request while the upstream answers 503; returns BALANCE's result. */
static enum lintel_result failing_503(struct lk_instance *in, struct lk_req **out)
{
    struct lk_req *r = lk_req_new("GET", "/b");
    enum lintel_result b = through(in, r, status_response, &S503);
    if (out)
        *out = r;
    else
        lk_req_free(r);
    return b;
}

static void test_breaker_opens_and_half_opens(void)
{
    struct lk_instance *in = instance("{ static: { body: fb }, breaker: { failures: 3, cooldown: "
                                      "10s } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    CU_ASSERT_EQUAL(lk_gauge(in, "breaker_state"), 0);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(failing_503(in, NULL), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_gauge(in, "breaker_state"), 1);
    CU_ASSERT_EQUAL(lk_metric(in, "breaker_open"), 1);

    /* Open: answered in BALANCE with the fallback, the upstream is skipped. */
    struct lk_req *r;
    CU_ASSERT_EQUAL(failing_503(in, &r), LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), 200);
    CU_ASSERT(str_eq(lk_resp_header(r, "X-Fallback"), "static"));
    lk_req_free(r);
    lk_advance(9999);
    CU_ASSERT_EQUAL(failing_503(in, NULL), LINTEL_RESPOND);

    /* After the cooldown exactly one probe goes through; others are answered meanwhile. */
    lk_advance(1);
    struct lk_req *probe = lk_req_new("GET", "/b");
    CU_ASSERT_EQUAL(lk_run(in, probe, LINTEL_PHASE_BALANCE), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_gauge(in, "breaker_state"), 2);
    CU_ASSERT_EQUAL(failing_503(in, NULL), LINTEL_RESPOND);
    /* The probe fails: open again for a whole cooldown. */
    lk_req_set_response(probe, 503, "still down");
    CU_ASSERT_EQUAL(lk_run(in, probe, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_RESPOND);
    CU_ASSERT(str_eq(lk_resp_header(probe, "X-Fallback"), "static"));
    lk_req_free(probe);
    CU_ASSERT_EQUAL(lk_gauge(in, "breaker_state"), 1);
    CU_ASSERT_EQUAL(lk_metric(in, "breaker_open"), 2);
    lk_advance(5000);
    CU_ASSERT_EQUAL(failing_503(in, NULL), LINTEL_RESPOND);

    /* The next probe succeeds: closed, requests go upstream again. */
    lk_advance(5000);
    capture(in, "/b", "back");
    CU_ASSERT_EQUAL(lk_gauge(in, "breaker_state"), 0);
    r = lk_req_new("GET", "/b");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_BALANCE), LINTEL_CONTINUE);
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
}

static void test_breaker_serves_last_good_or_503(void)
{
    struct lk_instance *in = instance("{ breaker: { failures: 1, cooldown: 4s } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    capture(in, "/kept", "kept");
    CU_ASSERT_EQUAL(failing_503(in, NULL), LINTEL_CONTINUE); /* opens */
    struct lk_req *r = lk_req_new("GET", "/kept");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_BALANCE), LINTEL_RESPOND);
    CU_ASSERT(str_eq(lk_resp_body(r, NULL), "kept"));
    CU_ASSERT(str_eq(lk_resp_header(r, "X-Fallback"), "last-good"));
    /* the answer passes RESPONSE_HEADERS untouched */
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT(str_eq(lk_resp_body(r, NULL), "kept"));
    lk_req_free(r);
    lk_advance(1500);
    r = lk_req_new("GET", "/none");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_BALANCE), LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), 503);
    CU_ASSERT(str_eq(lk_resp_header(r, "Retry-After"), "3"));
    CU_ASSERT(contains(lk_resp_body(r, NULL), "circuit open"));
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resp_status(r), 503);
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_metric(in, "breaker_rejected"), 1);
    CU_ASSERT_EQUAL(lk_metric(in, "served_last_good"), 1);
    lk_instance_free(in);
}

static void test_breaker_needs_consecutive_failures(void)
{
    struct lk_instance *in = instance("{ breaker: { failures: 3 } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    for (int round = 0; round < 3; round++) {
        CU_ASSERT_EQUAL(failing_503(in, NULL), LINTEL_CONTINUE);
        CU_ASSERT_EQUAL(failing_503(in, NULL), LINTEL_CONTINUE);
        capture(in, "/ok", "ok"); /* a success resets the count */
    }
    CU_ASSERT_EQUAL(lk_gauge(in, "breaker_state"), 0);
    CU_ASSERT_EQUAL(lk_metric(in, "breaker_open"), 0);
    /* connect errors count as well */
    for (int i = 0; i < 3; i++) {
        struct lk_req *r = failing(in, "/x");
        lk_req_free(r);
    }
    CU_ASSERT_EQUAL(lk_gauge(in, "breaker_state"), 1);
    lk_instance_free(in);
}

/* A probe whose client goes away reports nothing: the next request probes at once. */
static void test_breaker_lost_probe(void)
{
    struct lk_instance *in = instance("{ breaker: { failures: 1, cooldown: 1s } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    CU_ASSERT_EQUAL(failing_503(in, NULL), LINTEL_CONTINUE);
    lk_advance(1000);
    struct lk_req *probe = lk_req_new("GET", "/b");
    CU_ASSERT_EQUAL(lk_run(in, probe, LINTEL_PHASE_BALANCE), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(failing_503(in, NULL), LINTEL_RESPOND);
    lk_req_free(probe); /* ends without a response */
    CU_ASSERT_EQUAL(lk_gauge(in, "breaker_state"), 1);
    probe = lk_req_new("GET", "/b");
    CU_ASSERT_EQUAL(lk_run(in, probe, LINTEL_PHASE_BALANCE), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_gauge(in, "breaker_state"), 2);
    lk_req_free(probe);
    lk_instance_free(in);
}

/* ---- configuration -------------------------------------------------------------------------- */

static void test_config_errors(void)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"[1]", "must be a map"},
        {"{ nope: 1 }", "nope: unknown key"},
        {"{ statuses: 503 }", "statuses: must be a list of statuses"},
        {"{ statuses: [200] }", "statuses[0]: must be a status from 400 to 599"},
        {"{ last_good: maybe }", "last_good: must be true, false or a map"},
        {"{ last_good: { max_body: 2m, max_bytes: 1m } }", "max_body: must not exceed max_bytes"},
        {"{ last_good: { max_entries: 0 } }", "max_entries: must be a count from 1"},
        {"{ last_good: { max_age: 0s } }", "max_age: must be a positive duration"},
        {"{ last_good: { refresh: soon } }", "refresh: must be a duration"},
        {"{ last_good: { key: { args: [a b] } } }", "key.args[0]: must be a query argument name"},
        {"{ last_good: { key: { cookies: [a] } } }", "key.cookies: unknown key"},
        {"{ last_good: { methods: [] } }", "methods: must not be empty"},
        {"{ static: { body: a, body_file: /etc/hostname } }",
         "body_file: body and body_file exclude each other"},
        {"{ static: { status: 99 } }", "static.status: must be a status from 200 to 599"},
        {"{ static: { headers: { Content-Length: '3' } } }", "set by lintel from the body"},
        {"{ static: { headers: [a] } }", "static.headers: must be a map"},
        {"{ breaker: { failures: 0 } }", "breaker.failures: must be a count from 1"},
        {"{ breaker: { cooldown: 0s } }", "breaker.cooldown: must be a positive duration"},
        {"{ breaker: { open: 1 } }", "breaker.open: unknown key"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = config_error(cases[i].yaml);
        if (!strstr(got, cases[i].want))
            fprintf(stderr, "config %s\n", cases[i].yaml);
        CU_ASSERT(contains(got, cases[i].want));
    }
    lk_log_clear();
}

static CU_TestInfo tests[] = {
    {"last good served on a connect error, with X-Fallback and Age",
     test_last_good_served_on_connect_error},
    {"connect, timeout, no healthy target and errors trigger", test_every_failure_kind_triggers},
    {"listed statuses trigger, others pass", test_listed_statuses_trigger},
    {"answers of other plugins are not triggers", test_plugin_answers_are_not_triggers},
    {"key: method, path, chosen args and headers", test_key_args_headers_and_method},
    {"key: consumer, methods", test_consumer_in_key},
    {"max_age and refresh on the virtual clock", test_max_age_and_refresh},
    {"too long, cut short, no-store and non-200 are not captured", test_what_is_not_captured},
    {"an empty body is captured", test_empty_body_is_captured},
    {"max_entries evicts the least recently used", test_max_entries_evicts_least_recently_used},
    {"max_bytes evicts", test_max_bytes_evicts},
    {"last_good: false", test_last_good_off},
    {"static only when there is no last good", test_static_only_when_no_last_good},
    {"static body_file is read at create", test_static_body_file},
    {"breaker opens, half-opens with one probe, reopens, closes",
     test_breaker_opens_and_half_opens},
    {"open breaker: last good, else 503 with Retry-After", test_breaker_serves_last_good_or_503},
    {"breaker counts consecutive failures only", test_breaker_needs_consecutive_failures},
    {"a lost probe lets the next request probe", test_breaker_lost_probe},
    {"configuration errors", test_config_errors},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"fallback", suite_init, suite_clean, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return lk_test_run(suites);
}
