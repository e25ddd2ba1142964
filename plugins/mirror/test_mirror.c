/* Tests mirror through the SDK test kit, loading the built .so as lintel would: what a copy looks
 * like (URL, headers, body), which requests are copied (methods, sample, body rules, the
 * in-flight cap), what is counted, then the configuration errors. The kit records every
 * worker_http_call; its answers come on the virtual clock (lk_advance). */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <lintel/testkit.h>

static struct lk_plugin *plugin;

static int suite_init(void)
{
    char err[256];
    plugin = lk_plugin_load(MIRROR_SO, err, sizeof(err));
    if (!plugin)
        fprintf(stderr, "%s\n", err);
    return plugin ? 0 : -1;
}

static int suite_clean(void)
{
    lk_plugin_free(plugin);
    return 0;
}

static void test_setup(void)
{
    lk_http_reset();
    lk_log_clear();
}

static struct lk_instance *instance(const char *yaml)
{
    char err[256];
    struct lk_instance *in = lk_instance_new(plugin, yaml, err, sizeof(err));
    if (!in)
        fprintf(stderr, "config %s: %s\n", yaml, err);
    return in;
}

/* Creates an instance that must fail and returns the error text. */
static const char *config_error(const char *yaml)
{
    static char err[256];
    struct lk_instance *in = lk_instance_new(plugin, yaml, err, sizeof(err));
    if (in) {
        lk_instance_free(in);
        return "(created)";
    }
    return err;
}

/* The value of header name in a recorded call ("Name: value"), "" for curl's "Name;" form, or
 * NULL when the call has no such line. */
static const char *call_header(const struct lk_http_call *c, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; c->headers[i]; i++) {
        const char *h = c->headers[i];
        if (strncasecmp(h, name, n) != 0)
            continue;
        if (h[n] == ';' && !h[n + 1])
            return "";
        if (h[n] == ':')
            return h[n + 1] == ' ' ? h + n + 2 : h + n + 1;
    }
    return NULL;
}

/* The URL of recorded call i, or "(none)". */
static const char *url_at(size_t i)
{
    const struct lk_http_call *c = lk_http_call_at(i);
    return c ? c->url : "(none)";
}

/* call_header for string comparisons: "(absent)" instead of NULL. */
static const char *hdr(const struct lk_http_call *c, const char *name)
{
    const char *v = call_header(c, name);
    return v ? v : "(absent)";
}

static size_t call_count(void)
{
    size_t n = 0;
    while (lk_http_call_at(n))
        n++;
    return n;
}

/* Runs BALANCE and LOG on a new request and frees it; returns BALANCE's result. */
static enum lintel_result run_one(struct lk_instance *in, const char *method, const char *target,
                                  const char *request_id)
{
    struct lk_req *r = lk_req_new(method, target);
    if (request_id)
        lk_req_set_header(r, "X-Request-Id", request_id);
    enum lintel_result res = lk_run(in, r, LINTEL_PHASE_BALANCE);
    lk_run(in, r, LINTEL_PHASE_LOG);
    lk_req_free(r);
    return res;
}

/* The plugin's sampling rule, written again from docs/plugins/mirror.md. */
static int doc_sampled(const char *id, double sample)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *p = id; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h % 1000000 < (uint64_t)(sample * 1000000 + 0.5);
}

/* ---- the copy ------------------------------------------------------------------------------ */

static void test_copy_to_upstream_defaults(void)
{
    struct lk_instance *in = instance("{ to: { upstream: shadow } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = lk_req_new("GET", "/api/users?id=7&x=%20y");
    lk_req_set_header(r, "Host", "api.example.com");
    lk_req_set_header(r, "X-Request-Id", "rid-1");
    lk_req_set_header(r, "Accept", "application/json");
    lk_req_set_client(r, "10.1.2.3");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_BALANCE), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resp_status(r), 0);  /* the request goes on untouched */
    CU_ASSERT_PTR_NULL(lk_http_call_at(0)); /* built, not sent: it leaves in LOG */
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_LOG), LINTEL_CONTINUE);
    CU_ASSERT_STRING_EQUAL(lk_req_path(r), "/api/users");
    const struct lk_http_call *c = lk_http_call_at(0);
    if (!c) { /* plugin.h (ABI 1.1): worker_http_call accepts upstream://NAME/path?query */
        fprintf(stderr, "\n  no call recorded: %s", lk_log_lines());
        CU_FAIL("the host refused worker_http_call(upstream://shadow/...)");
        lk_req_free(r);
        lk_instance_free(in);
        return;
    }
    CU_ASSERT_PTR_NULL(lk_http_call_at(1));
    CU_ASSERT_STRING_EQUAL(c->method, "GET");
    CU_ASSERT_STRING_EQUAL(c->url, "upstream://shadow/api/users?id=7&x=%20y");
    CU_ASSERT_EQUAL(c->timeout_ms, 1000);
    CU_ASSERT_EQUAL(c->body_len, 0);
    CU_ASSERT_STRING_EQUAL(hdr(c, "X-Mirror"), "1");
    CU_ASSERT_STRING_EQUAL(hdr(c, "Accept"), "application/json");
    CU_ASSERT_STRING_EQUAL(hdr(c, "X-Request-Id"), "rid-1");
    CU_ASSERT_STRING_EQUAL(hdr(c, "X-Forwarded-For"), "10.1.2.3");
    CU_ASSERT_STRING_EQUAL(hdr(c, "X-Forwarded-Host"), "api.example.com");
    CU_ASSERT_PTR_NULL(call_header(c, "Host"));
    CU_ASSERT_PTR_NULL(call_header(c, "Content-Type"));
    CU_ASSERT_EQUAL(lk_metric(in, "sent"), 1);
    /* The answer is dropped; only a failed one counts. */
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_advance(10), 1); /* no answer set: the kit fails the call */
    CU_ASSERT_EQUAL(lk_metric(in, "failed"), 1);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
}

static void test_copy_to_url_with_prefix_and_replace(void)
{
    struct lk_instance *in =
        instance("{ to: { url: 'http://shadow.internal:8080/base/' },"
                 "  path: { prefix: /shadow/, replace: { from: /api, to: /v2 } } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    static const struct {
        const char *target, *url;
    } cases[] = {
        {"/api/users?q=1", "http://shadow.internal:8080/base/shadow/v2/users?q=1"},
        {"/api", "http://shadow.internal:8080/base/shadow/v2"},
        {"/apiary", "http://shadow.internal:8080/base/shadow/apiary"}, /* not the /api segment */
        {"/other/x", "http://shadow.internal:8080/base/shadow/other/x"},
        {"/", "http://shadow.internal:8080/base/shadow/"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_one(in, "GET", cases[i].target, NULL);
        const struct lk_http_call *c = lk_http_call_at(i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        if (strcmp(c->url, cases[i].url) != 0)
            fprintf(stderr, "\n  %s -> %s, wanted %s\n", cases[i].target, c->url, cases[i].url);
        CU_ASSERT_STRING_EQUAL(c->url, cases[i].url);
    }
    lk_instance_free(in);

    /* Replacing with "/" strips the segment; a path replaced away entirely becomes "/". */
    in = instance("{ to: { url: 'http://s' }, path: { replace: { from: /api/, to: / } } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    lk_http_reset();
    run_one(in, "GET", "/api/users", NULL);
    run_one(in, "GET", "/api", NULL);
    CU_ASSERT_STRING_EQUAL(url_at(0), "http://s/users");
    CU_ASSERT_STRING_EQUAL(url_at(1), "http://s/");
    lk_instance_free(in);
}

static void test_headers_hop_by_hop_and_custom_mirror_header(void)
{
    struct lk_instance *in =
        instance("{ to: { url: 'http://shadow' }, header: { name: X-Shadow, value: 'copy v2' } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = lk_req_new("GET", "/");
    lk_req_set_header(r, "Host", "h");
    lk_req_set_header(r, "Connection", "keep-alive, X-Secret");
    lk_req_set_header(r, "X-Secret", "s");
    lk_req_set_header(r, "Keep-Alive", "timeout=5");
    lk_req_set_header(r, "TE", "trailers");
    lk_req_set_header(r, "Upgrade", "h2c");
    lk_req_set_header(r, "Proxy-Authorization", "Basic x");
    lk_req_set_header(r, "X-Shadow", "forged");
    lk_req_set_header(r, "X-Forwarded-For", "192.0.2.1");
    lk_req_set_header(r, "X-Empty", "");
    lk_req_set_header(r, "Authorization", "Bearer t");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_BALANCE), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_LOG), LINTEL_CONTINUE);
    const struct lk_http_call *c = lk_http_call_at(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    static const char *const gone[] = {
        "Connection", "X-Secret", "Keep-Alive", "TE", "Upgrade", "Proxy-Authorization", "X-Mirror"};
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
        if (call_header(c, gone[i]))
            fprintf(stderr, "\n  %s was copied\n", gone[i]);
        CU_ASSERT_PTR_NULL(call_header(c, gone[i]));
    }
    CU_ASSERT_STRING_EQUAL(hdr(c, "X-Shadow"), "copy v2"); /* ours, not the client's */
    size_t shadow_lines = 0, xff_lines = 0;
    for (size_t i = 0; c->headers[i]; i++) {
        shadow_lines += strncasecmp(c->headers[i], "X-Shadow:", 9) == 0;
        xff_lines += strncasecmp(c->headers[i], "X-Forwarded-For:", 16) == 0;
    }
    CU_ASSERT_EQUAL(shadow_lines, 1);
    CU_ASSERT_EQUAL(xff_lines, 2); /* the client's list, then the client's address */
    CU_ASSERT_STRING_EQUAL(hdr(c, "X-Empty"), "");
    CU_ASSERT_STRING_EQUAL(hdr(c, "Authorization"), "Bearer t");
    lk_req_free(r);
    lk_instance_free(in);
}

/* ---- which requests are copied ------------------------------------------------------------ */

static void test_methods(void)
{
    struct lk_instance *in = instance("{ to: { url: 'http://s' }, methods: [GET, DELETE] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    run_one(in, "GET", "/a", NULL);
    run_one(in, "POST", "/b", NULL);
    run_one(in, "get", "/c", NULL); /* methods are case-sensitive */
    run_one(in, "DELETE", "/d", NULL);
    /* LOG alone (a request answered before BALANCE, by ACCESS for instance) sends nothing. */
    struct lk_req *r = lk_req_new("GET", "/e");
    lk_run(in, r, LINTEL_PHASE_LOG);
    lk_req_free(r);
    CU_ASSERT_EQUAL(call_count(), 2);
    CU_ASSERT_STRING_EQUAL(url_at(0), "http://s/a");
    CU_ASSERT_STRING_EQUAL(url_at(1), "http://s/d");
    lk_instance_free(in);
}

static void test_sample_is_deterministic_per_request_id(void)
{
    struct lk_instance *in =
        instance("{ to: { url: 'http://s' }, sample: 0.1, max_inflight: 10000 }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    size_t want = 0;
    char id[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(id, sizeof(id), "req-%d", i);
        want += (size_t)doc_sampled(id, 0.1);
        run_one(in, "GET", "/", id);
    }
    CU_ASSERT_EQUAL(call_count(), want);
    fprintf(stderr, "\n  sample 0.1: %zu of 2000 copied\n", want);
    CU_ASSERT(want >= 150 && want <= 250); /* 200 expected; the hash spreads sequential ids */
    /* The same id again: the same decision. */
    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof(id), "req-%d", i);
        size_t before = call_count();
        run_one(in, "GET", "/", id);
        CU_ASSERT_EQUAL(call_count() - before, (size_t)doc_sampled(id, 0.1));
    }
    lk_instance_free(in);

    in = instance("{ to: { url: 'http://s' }, sample: 0 }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    lk_http_reset();
    for (int i = 0; i < 100; i++)
        run_one(in, "GET", "/", NULL);
    CU_ASSERT_EQUAL(call_count(), 0);
    lk_instance_free(in);
}

static const char payload[] = "{\"name\":\"mirror\",\"n\":12345}";

/* A POST whose body (Content-Length) is already in, or comes later. */
static struct lk_req *post(int arrived)
{
    struct lk_req *r = lk_req_new("POST", "/items");
    char cl[16];
    snprintf(cl, sizeof(cl), "%zu", sizeof(payload) - 1);
    lk_req_set_header(r, "Content-Length", cl);
    lk_req_set_header(r, "Content-Type", "application/json");
    lk_req_set_body(r, payload, sizeof(payload) - 1, arrived);
    return r;
}

static void test_body_copied_within_max(void)
{
    struct lk_instance *in = instance("{ to: { url: 'http://s' }, body: { max: 1k } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    for (int arrived = 0; arrived <= 1; arrived++) {
        lk_http_reset();
        struct lk_req *r = post(arrived);
        /* Not yet in: the plugin pauses for it, the kit runs it again (as lintel does). */
        CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_BALANCE), LINTEL_CONTINUE);
        CU_ASSERT_EQUAL(lk_resp_status(r), 0);
        CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_LOG), LINTEL_CONTINUE);
        const struct lk_http_call *c = lk_http_call_at(0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_PTR_NULL(lk_http_call_at(1));
        CU_ASSERT_STRING_EQUAL(c->method, "POST");
        CU_ASSERT_EQUAL(c->body_len, sizeof(payload) - 1);
        CU_ASSERT(c->body && memcmp(c->body, payload, sizeof(payload) - 1) == 0);
        CU_ASSERT_STRING_EQUAL(hdr(c, "Content-Type"), "application/json");
        CU_ASSERT_PTR_NULL(call_header(c, "Content-Length"));
        lk_req_free(r);
    }
    /* A body without a Content-Type is sent without one (no form type added). */
    lk_http_reset();
    struct lk_req *r = lk_req_new("PUT", "/items/1");
    lk_req_set_header(r, "Content-Length", "3");
    lk_req_set_body(r, "abc", 3, 1);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_BALANCE), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_LOG), LINTEL_CONTINUE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lk_http_call_at(0));
    CU_ASSERT_STRING_EQUAL(hdr(lk_http_call_at(0), "Content-Type"), "");
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_metric(in, "sent"), 3);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
}

static void test_body_over_max_or_chunked_skipped(void)
{
    struct lk_instance *in = instance("{ to: { url: 'http://s' }, body: { max: 10 } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    /* Over max: the copy is skipped and the request goes on, never a 413. */
    struct lk_req *r = post(0);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_BALANCE), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resp_status(r), 0);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_LOG), LINTEL_CONTINUE);
    lk_req_free(r);
    /* Chunked: its length is unknown, so it is not read either. */
    r = lk_req_new("POST", "/items");
    lk_req_set_header(r, "Transfer-Encoding", "chunked");
    lk_req_set_body(r, "0123", 4, 0);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_BALANCE), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resp_status(r), 0);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_LOG), LINTEL_CONTINUE);
    lk_req_free(r);
    CU_ASSERT_EQUAL(call_count(), 0);
    CU_ASSERT_EQUAL(lk_metric(in, "skipped_body"), 2);
    CU_ASSERT_EQUAL(lk_metric(in, "sent"), 0);
    /* Content-Length: 0 and no body at all are copied. */
    r = lk_req_new("POST", "/empty");
    lk_req_set_header(r, "Content-Length", "0");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_BALANCE), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_LOG), LINTEL_CONTINUE);
    lk_req_free(r);
    CU_ASSERT_EQUAL(call_count(), 1);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
}

static void test_body_false_copies_without_reading(void)
{
    struct lk_instance *in = instance("{ to: { url: 'http://s' }, body: false }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = post(0);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_BALANCE), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_LOG), LINTEL_CONTINUE);
    const struct lk_http_call *c = lk_http_call_at(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->body_len, 0);
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_metric(in, "skipped_body"), 0);
    lk_instance_free(in);
}

static void test_inflight_cap_drops_and_frees(void)
{
    struct lk_instance *in = instance("{ to: { url: 'http://shadow:81' }, max_inflight: 2, "
                                      "timeout: 300ms }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    lk_http_respond("http://shadow:81/slow", 200, "ok", 200);   /* answers after 200 ms */
    lk_http_respond("http://shadow:81/hang", 200, "ok", 10000); /* never within the timeout */
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(run_one(in, "GET", "/slow", NULL), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(call_count(), 2);
    CU_ASSERT_EQUAL(lk_metric(in, "sent"), 2);
    CU_ASSERT_EQUAL(lk_metric(in, "dropped"), 3);
    lk_advance(200); /* both answered: room again */
    CU_ASSERT_EQUAL(lk_metric(in, "failed"), 0);
    run_one(in, "GET", "/hang", NULL);
    run_one(in, "GET", "/hang", NULL);
    run_one(in, "GET", "/hang", NULL);
    CU_ASSERT_EQUAL(lk_metric(in, "sent"), 4);
    CU_ASSERT_EQUAL(lk_metric(in, "dropped"), 4);
    CU_ASSERT(lk_http_call_at(2) && lk_http_call_at(2)->timeout_ms == 300);
    lk_advance(300); /* the copies' own timeout */
    CU_ASSERT_EQUAL(lk_metric(in, "failed"), 2);
    run_one(in, "GET", "/slow", NULL);
    CU_ASSERT_EQUAL(lk_metric(in, "sent"), 5);
    lk_advance(200);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
}

/* A copy in flight when the instance goes (reload) is cancelled by the host, never called. */
static void test_instance_freed_with_copies_in_flight(void)
{
    struct lk_instance *in = instance("{ to: { url: 'http://shadow:81' } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    lk_http_respond("http://shadow:81/x", 200, "ok", 500);
    run_one(in, "GET", "/x", NULL);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_advance(1000), 0);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

/* ---- configuration ------------------------------------------------------------------------ */

static void test_config_accepts(void)
{
    static const char *const ok[] = {
        "{ to: { upstream: shadow-v2.internal } }",
        "{ to: { url: 'https://shadow.example.com' }, sample: 1, methods: [GET, POST],"
        "  body: { max: 1m }, header: { name: X-Shadow }, timeout: 250ms, max_inflight: 1 }",
        "{ to: { url: 'http://[::1]:8080/x' }, path: { prefix: / }, body: true, sample: 0.001 }",
        "{ to: { upstream: s }, path: { replace: { from: /, to: /v1 } }, header: { value: yes } }",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct lk_instance *in = instance(ok[i]);
        CU_ASSERT_PTR_NOT_NULL(in);
        lk_instance_free(in);
    }
}

static void test_config_errors(void)
{
    static const struct {
        const char *yaml, *err;
    } cases[] = {
        {NULL, "1:1: required"},
        {"[1]", "1:1: must be a map"},
        {"{ }", "1:1: to: required"},
        {"{ to: { upstream: s }, colour: red }", "1:32: colour: unknown key"},
        {"{ to: s }", "1:7: to: must be a map"},
        {"{ to: { upstream: s, url: 'http://x' } }",
         "1:7: to: give exactly one of upstream or url"},
        {"{ to: { } }", "1:7: to: give exactly one of upstream or url"},
        {"{ to: { upstream: 'a/b' } }", "1:19: to.upstream: must be an upstream name"},
        {"{ to: { url: 'ftp://x' } }", "1:14: to.url: must be an http:// or https:// URL"},
        {"{ to: { url: 'http://x/?a=1' } }", "1:14: to.url: must be an http:// or https:// URL"},
        {"{ to: { url: 'http:///p' } }", "1:14: to.url: must be an http:// or https:// URL"},
        {"{ to: { upstream: s }, path: { prefix: shadow } }",
         "1:40: path.prefix: must be a path starting with '/'"},
        {"{ to: { upstream: s }, path: { replace: { from: /a } } }",
         "1:41: path.replace: to: required"},
        {"{ to: { upstream: s }, path: { replace: { from: /a, to: 'b' } } }",
         "1:57: path.replace.to: must be a path"},
        {"{ to: { upstream: s }, sample: 1.5 }", "1:32: sample: must be a number from 0 to 1"},
        {"{ to: { upstream: s }, sample: half }", "1:32: sample: must be a number from 0 to 1"},
        {"{ to: { upstream: s }, methods: [] }", "1:33: methods: must be a non-empty list"},
        {"{ to: { upstream: s }, methods: ['GE T'] }", "1:34: methods[0]: must be a method"},
        {"{ to: { upstream: s }, body: { max: 0 } }", "1:37: body.max: must be a size from 1"},
        {"{ to: { upstream: s }, body: { max: 17m } }", "1:37: body.max: must be a size from 1"},
        {"{ to: { upstream: s }, body: maybe }", "1:30: body: must be true, false or"},
        {"{ to: { upstream: s }, header: { name: 'X Y' } }", "1:40: header.name: must be a header"},
        {"{ to: { upstream: s }, header: { value: '' } }",
         "1:41: header.value: must be a non-empty"},
        {"{ to: { upstream: s }, timeout: 0 }", "1:33: timeout: must be a duration from 1ms"},
        {"{ to: { upstream: s }, timeout: 2m }", "1:33: timeout: must be a duration from 1ms"},
        {"{ to: { upstream: s }, max_inflight: 0 }", "1:38: max_inflight: must be an integer"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = config_error(cases[i].yaml);
        if (strncmp(got, cases[i].err, strlen(cases[i].err)) != 0)
            fprintf(stderr, "\n  %s\n    got:    %s\n    wanted: %s...\n",
                    cases[i].yaml ? cases[i].yaml : "(none)", got, cases[i].err);
        CU_ASSERT_EQUAL(strncmp(got, cases[i].err, strlen(cases[i].err)), 0);
    }
}

static CU_TestInfo mirror_tests[] = {
    {"copy to an upstream: URL, headers, timeout, counters", test_copy_to_upstream_defaults},
    {"copy to a URL with path prefix and replace", test_copy_to_url_with_prefix_and_replace},
    {"hop-by-hop headers dropped, mirror header configurable",
     test_headers_hop_by_hop_and_custom_mirror_header},
    {"methods", test_methods},
    {"sample: deterministic per request id", test_sample_is_deterministic_per_request_id},
    {"body within max is copied (in already, or after a pause)", test_body_copied_within_max},
    {"body over max or chunked: copy skipped, request unharmed",
     test_body_over_max_or_chunked_skipped},
    {"body: false copies without the body", test_body_false_copies_without_reading},
    {"max_inflight: past it copies are dropped; answers and timeouts free room",
     test_inflight_cap_drops_and_frees},
    {"copies in flight are cancelled with the instance", test_instance_freed_with_copies_in_flight},
    {"configurations accepted", test_config_accepts},
    {"config errors point at the offending node", test_config_errors},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"mirror", suite_init, suite_clean, test_setup, NULL, mirror_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return lk_test_run(suites);
}
