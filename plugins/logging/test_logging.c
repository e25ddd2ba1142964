/* Tests the built logging.so through the SDK test kit: configuration errors, the record of a
 * request with every field the kit can set (consumer and access-record fields come from a
 * helper plugin linked in here, as auth or abtest would add them), the file sink with its writer
 * thread and reopen, the http sink's batches, retries and drops on virtual time, sampling. */
#include <CUnit/Basic.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lintel/testkit.h>

static struct lk_plugin *plugin, *helper;
static char dir[64];

/* ---- a helper plugin: what other plugins add to a request ----------------------------------- */

static const struct lintel_host_api *helper_host;

static int helper_create(const struct lintel_host_api *host, lintel_instance *self,
                         const lintel_cfg *config, lintel_cfg_error *err, void **instance)
{
    helper_host = host;
    *instance = NULL;
    return 0;
}

/* ACCESS: authenticates "alice", reads the body (bytes_received) and adds two fields. */
static enum lintel_result helper_access(lintel_req *r, void *instance)
{
    if (helper_host->req_body_buffer(r, 1024) != 1)
        return LINTEL_ERROR;
    helper_host->consumer_set(r, "alice", "42");
    helper_host->log_field(r, "ab.group", "B", 1);
    helper_host->log_field(r, "canary", "v\"2", 3);
    return LINTEL_CONTINUE;
}

static const struct lintel_plugin helper_desc = {
    LINTEL_PLUGIN_INIT,      .name = "helper",        .version = "1.0.0",
    .create = helper_create, .access = helper_access,
};

/* ---- helpers ------------------------------------------------------------------------------- */

static int suite_init(void)
{
    char err[256];
    plugin = lk_plugin_load_or_report(LOGGING_SO);
    helper = lk_plugin_from_descriptor(&helper_desc, err, sizeof(err));
    snprintf(dir, sizeof(dir), "/tmp/test-logging-XXXXXX");
    return plugin && helper && mkdtemp(dir) ? 0 : -1;
}

static int suite_clean(void)
{
    /* The files of the tests: remove the directory once they are gone. */
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            char p[512];
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    rmdir(dir);
    lk_plugin_free(helper);
    lk_plugin_free(plugin);
    return 0;
}

static const char *path_of(const char *name)
{
    static char p[8][512];
    static int i;
    i = (i + 1) % 8;
    snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
    return p[i];
}

/* The content of path (NUL-terminated; empty when missing), in a static buffer. */
static const char *slurp(const char *path)
{
    static char buf[1 << 20];
    size_t n = 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
    return buf;
}

static size_t lines(const char *s)
{
    size_t n = 0;
    for (; (s = strchr(s, '\n')); s++)
        n++;
    return n;
}

/* Waits (real time, up to 5 s) until path holds at least n lines. */
static int wait_lines(const char *path, size_t n)
{
    for (int i = 0; i < 500; i++) {
        if (lines(slurp(path)) >= n)
            return 0;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* Runs LOG for a plain GET with id (X-Request-Id). */
static void log_request(struct lk_instance *in, const char *target, const char *id)
{
    struct lk_req *r = lk_req_new("GET", target);
    if (id)
        lk_req_set_header(r, "X-Request-Id", id);
    lk_req_set_response(r, 200, "ok");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_LOG), LINTEL_CONTINUE);
    lk_req_free(r);
}

/* ---- configuration ------------------------------------------------------------------------- */

static void test_config_defaults(void)
{
    /* No config: JSON lines to stdout. */
    struct lk_instance *in = lk_instance_or_report(plugin, NULL);
    CU_ASSERT_PTR_NOT_NULL(in);
    lk_instance_free(in);
    in = lk_instance_or_report(plugin, "{ sink: stdout, sample: 0 }");
    CU_ASSERT_PTR_NOT_NULL(in);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static void test_config_errors(void)
{
    static const char *const cases[][2] = {
        {"[1]", "1:1: must be a map"},
        {"{ formt: json }", "1:10: formt: unknown key"},
        {"{ format: xml }", "1:11: format: must be json or template"},
        {"{ format: template }", "1:1: template: required with format: template"},
        {"{ format: json, template: '$status' }", "1:27: template: only with format: template"},
        {"{ template: '$stat' }", "1:13: template: unknown variable $stat"},
        {"{ template: [a] }", "1:13: template: must be a string"},
        {"{ escape: json }", "1:11: escape: only with format: template"},
        {"{ template: '$status', escape: html }", "1:32: escape: must be default or json"},
        {"{ request_headers: User-Agent }",
         "1:20: request_headers: must be a list of header names"},
        {"{ request_headers: ['User Agent'] }", "1:21: request_headers[0]: must be a header name"},
        {"{ sample: 1.5 }", "1:11: sample: must be a number from 0 to 1"},
        {"{ sample: half }", "1:11: sample: must be a number from 0 to 1"},
        {"{ sample_by: ip }", "1:14: sample_by: must be request_id or random"},
        {"{ max_record: 10 }", "1:15: max_record: must be a size from 1k to 1m"},
        {"{ sink: syslog }", "1:9: sink: must be stdout, file or http"},
        {"{ sink: file }", "1:9: sink: needs a map: { type: file, path: ... }"},
        {"{ sink: [file] }", "1:9: sink: must be stdout or a map with a type"},
        {"{ sink: { path: /tmp/x } }", "1:9: sink: type: required"},
        {"{ sink: { type: file } }", "1:9: sink: path: required"},
        {"{ sink: { type: file, path: /tmp/x, url: 'http://a' } }", "1:42: sink.url: unknown key"},
        {"{ sink: { type: stdout, batch_size: 5 } }", "1:37: sink.batch_size: unknown key"},
        {"{ sink: { type: file, path: /nonexistent-dir/x.log } }",
         "1:29: sink.path: cannot open /nonexistent-dir/x.log: No such file or directory"},
        {"{ sink: { type: http } }", "1:9: sink: url: required"},
        {"{ sink: { type: http, url: 'ftp://x' } }",
         "1:28: sink.url: must be an http:// or https:// URL"},
        {"{ sink: { type: http, url: 'http://x', batch_size: 0 } }",
         "1:52: sink.batch_size: must be an integer from 1 to 100000"},
        {"{ sink: { type: http, url: 'http://x', retries: -1 } }",
         "1:49: sink.retries: must be an integer from 0 to 100"},
        {"{ sink: { type: http, url: 'http://x', timeout: 0s } }",
         "1:49: sink.timeout: must be a duration from 1ms to 10m"},
        {"{ sink: { type: http, url: 'http://x', retry_backoff: 2m } }",
         "1:55: sink.retry_backoff: must be a duration from 1ms to 60s"},
        {"{ sink: { type: http, url: 'http://x', flush_interval: soon } }",
         "1:56: sink.flush_interval: must be a duration from 1ms to 60s"},
        {"{ sink: { type: http, url: 'http://x', queue_size: 1k } }",
         "1:52: sink.queue_size: must be a size from max_record (16384) to 1g"},
        {"{ sink: { type: http, url: 'http://x', headers: [a] } }",
         "1:49: sink.headers: must be a map of header names to values"},
        {"{ sink: { type: http, url: 'http://x', headers: { 'A B': c } } }",
         "1:58: sink.headers.A B: must be keyed by a header name"},
        {"{ sink: { type: http, url: 'http://x', headers: { A: 'env:LOGGING_TEST_UNSET' } } }",
         "1:54: sink.headers.A: cannot be read (a string, env:NAME or file:PATH)"},
        {"{ max_record: 64k, sink: { type: stdout, queue_size: 32k } }",
         "1:54: sink.queue_size: must be a size from max_record (65536) to 1g"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = lk_config_error(plugin, cases[i][0]);
        if (strcmp(got, cases[i][1]) != 0)
            fprintf(stderr, "\n%s\n  got:  %s\n  want: %s\n", cases[i][0], got, cases[i][1]);
        CU_ASSERT_STRING_EQUAL(got, cases[i][1]);
    }
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

/* ---- the record ---------------------------------------------------------------------------- */

static void test_json_record_every_field(void)
{
    const char *path = path_of("every-field.log");
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "{ request_headers: [User-Agent], sink: { type: file, path: %s, flush_interval: "
             "10ms } }",
             path);
    struct lk_instance *in = lk_instance_or_report(plugin, yaml);
    char err[256];
    struct lk_instance *auth = lk_instance_new(helper, NULL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    CU_ASSERT_PTR_NOT_NULL_FATAL(auth);

    struct lk_req *r = lk_req_new("POST", "/users/42?x=1");
    lk_req_set_header(r, "Host", "api.example.com");
    lk_req_set_header(r, "X-Request-Id", "req-1");
    lk_req_set_header(r, "User-Agent", "unit/1");
    lk_req_set_client(r, "198.51.100.7");
    lk_req_set_route(r, "users-api");
    lk_req_set_upstream(r, "users");
    lk_req_set_body(r, "hello", 5, 1);
    CU_ASSERT_EQUAL(lk_run(auth, r, LINTEL_PHASE_ACCESS), LINTEL_CONTINUE);
    lk_req_set_response(r, 201, "created");
    lk_advance(25);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_LOG), LINTEL_CONTINUE);
    lk_req_free(r);
    CU_ASSERT_EQUAL_FATAL(wait_lines(path, 1), 0);

    const char *rec = slurp(path);
    CU_ASSERT_EQUAL(lines(rec), 1);
    CU_ASSERT_NSTRING_EQUAL(rec, "{\"time\":\"2023-11-14T22:", 23); /* the kit's clock */
    const char *rest = strstr(rec, "Z\",\"request_id\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rest);
    CU_ASSERT_STRING_EQUAL(
        rest + 3,
        "\"request_id\":\"req-1\",\"remote_addr\":\"198.51.100.7\",\"method\":\"POST\","
        "\"host\":\"api.example.com\",\"path\":\"/users/42\",\"query\":\"x=1\","
        "\"protocol\":\"HTTP/1.1\",\"status\":201,\"bytes_received\":5,\"bytes_sent\":7,"
        "\"request_time\":0.025000,\"upstream\":\"users\",\"upstream_addr\":null,"
        "\"upstream_connect_time\":0.000000,\"upstream_response_time\":0.000000,"
        "\"route\":\"users-api\",\"consumer\":\"alice\",\"headers\":{\"user-agent\":\"unit/1\"},"
        "\"fields\":{\"ab.group\":\"B\",\"canary\":\"v\\\"2\"}}\n");

    /* The writer's count reaches the metrics on the worker's next tick. */
    lk_advance(10);
    CU_ASSERT_EQUAL(lk_metric(in, "written"), 1);
    CU_ASSERT_EQUAL(lk_metric(in, "dropped"), 0);
    lk_instance_free(auth);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static void test_template_record(void)
{
    const char *path = path_of("template.log");
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "{ template: '$remote_addr \"$request\" $status $request_time $consumer "
             "${field_ab.group}', sink: { type: file, path: %s } }",
             path);
    struct lk_instance *in = lk_instance_or_report(plugin, yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = lk_req_new("GET", "/a b?q=\"x\"");
    lk_req_set_client(r, "192.0.2.9");
    lk_req_set_response(r, 404, NULL);
    lk_advance(3);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_LOG), LINTEL_CONTINUE);
    lk_req_free(r);
    lk_instance_free(in); /* the writer writes what is queued before it stops */
    CU_ASSERT_STRING_EQUAL(slurp(path),
                           "192.0.2.9 \"GET /a b?q=\\x22x\\x22 HTTP/1.1\" 404 0.003000 - -\n");
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static void test_sample_zero_writes_nothing(void)
{
    const char *path = path_of("sample0.log");
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "{ sample: 0, sink: { type: file, path: %s } }", path);
    struct lk_instance *in = lk_instance_or_report(plugin, yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    for (int i = 0; i < 100; i++)
        log_request(in, "/", NULL);
    lk_instance_free(in);
    CU_ASSERT_STRING_EQUAL(slurp(path), "");
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

/* sample_by: request_id keeps the same ids in every instance (and every gateway). */
static void test_sample_by_request_id(void)
{
    const char *p1 = path_of("sample-a.log"), *p2 = path_of("sample-b.log");
    char y1[512], y2[512];
    snprintf(y1, sizeof(y1), "{ sample: 0.25, sink: { type: file, path: %s } }", p1);
    snprintf(y2, sizeof(y2), "{ sample: 0.25, sink: { type: file, path: %s } }", p2);
    struct lk_instance *a = lk_instance_or_report(plugin, y1),
                       *b = lk_instance_or_report(plugin, y2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (int i = 0; i < 2000; i++) {
        char id[40];
        snprintf(id, sizeof(id), "%032x", i * 7919);
        log_request(a, "/", id);
        log_request(b, "/", id);
    }
    lk_instance_free(a);
    lk_instance_free(b);
    static char first[1 << 20];
    snprintf(first, sizeof(first), "%s", slurp(p1));
    size_t n = lines(first);
    CU_ASSERT(n > 400 && n < 600); /* 500 expected */
    CU_ASSERT_STRING_EQUAL(slurp(p2), first);
}

static void test_sample_random(void)
{
    const char *path = path_of("sample-random.log");
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "{ sample: 0.5, sample_by: random, sink: { type: file, path: %s } }", path);
    struct lk_instance *in = lk_instance_or_report(plugin, yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    for (int i = 0; i < 2000; i++)
        log_request(in, "/", "same-id"); /* the id plays no part */
    lk_instance_free(in);
    size_t n = lines(slurp(path));
    CU_ASSERT(n > 850 && n < 1150);
}

static void test_oversize_record(void)
{
    const char *path = path_of("oversize.log");
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "{ max_record: 1k, sink: { type: file, path: %s } }", path);
    struct lk_instance *in = lk_instance_or_report(plugin, yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    static char target[4000];
    memset(target, 'a', sizeof(target) - 1);
    target[0] = '/';
    log_request(in, target, NULL);
    lk_instance_free(in);
    const char *rec = slurp(path);
    CU_ASSERT_EQUAL(lines(rec), 1);
    CU_ASSERT(strlen(rec) <= 1024);
    CU_ASSERT(strstr(rec, ",\"truncated\":true}\n") != NULL);
}

/* ---- file sink: reopen --------------------------------------------------------------------- */

static void test_reopen(void)
{
    const char *path = path_of("rotate.log"), *moved = path_of("rotate.log.1");
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "{ sink: { type: file, path: %s, flush_interval: 10ms } }", path);
    struct lk_instance *in = lk_instance_or_report(plugin, yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    log_request(in, "/before", NULL);
    CU_ASSERT_EQUAL_FATAL(wait_lines(path, 1), 0);
    CU_ASSERT_EQUAL_FATAL(rename(path, moved), 0);
    lk_instance_reopen(in);
    CU_ASSERT_EQUAL(wait_lines(path, 0), 0);
    for (int i = 0; i < 500 && access(path, F_OK) != 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    CU_ASSERT_EQUAL(access(path, F_OK), 0); /* reopened: created anew */
    log_request(in, "/after", NULL);
    CU_ASSERT_EQUAL(wait_lines(path, 1), 0);
    lk_instance_free(in);
    CU_ASSERT(strstr(slurp(moved), "\"path\":\"/before\"") != NULL);
    CU_ASSERT_EQUAL(lines(slurp(moved)), 1);
    CU_ASSERT(strstr(slurp(path), "\"path\":\"/after\"") != NULL);
    CU_ASSERT_EQUAL(lines(slurp(path)), 1);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

/* ---- http sink (virtual time) -------------------------------------------------------------- */

#define URL "http://collector.test/ingest"

static void test_http_batches(void)
{
    lk_http_reset();
    lk_http_respond(URL, 204, NULL, 5);
    setenv("LOGGING_TEST_TOKEN", "Bearer s3cret", 1);
    struct lk_instance *in = lk_instance_or_report(
        plugin,
        "{ sink: { type: http, url: '" URL "', batch_size: 3, flush_interval: 100ms, timeout: 2s, "
        "headers: { Authorization: 'env:LOGGING_TEST_TOKEN', X-Source: gw1 } } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    for (int i = 0; i < 7; i++) {
        char path[16];
        snprintf(path, sizeof(path), "/r%d", i);
        log_request(in, path, NULL);
    }
    /* The third record started a call at once; the rest wait for it. */
    CU_ASSERT_PTR_NOT_NULL(lk_http_call_at(0));
    CU_ASSERT_PTR_NULL(lk_http_call_at(1));
    lk_advance(5); /* first answer: the next full batch goes at once */
    CU_ASSERT_PTR_NOT_NULL(lk_http_call_at(1));
    CU_ASSERT_PTR_NULL(lk_http_call_at(2));
    lk_advance(100); /* the tick sends the last, partial batch */
    lk_advance(5);
    CU_ASSERT_PTR_NOT_NULL(lk_http_call_at(2));
    CU_ASSERT_PTR_NULL(lk_http_call_at(3));

    size_t seen = 0;
    for (size_t i = 0; i < 3; i++) {
        const struct lk_http_call *c = lk_http_call_at(i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_STRING_EQUAL(c->method, "POST");
        CU_ASSERT_STRING_EQUAL(c->url, URL);
        CU_ASSERT_EQUAL(c->timeout_ms, 2000);
        CU_ASSERT_STRING_EQUAL(c->headers[0], "Authorization: Bearer s3cret");
        CU_ASSERT_STRING_EQUAL(c->headers[1], "X-Source: gw1");
        CU_ASSERT_STRING_EQUAL(c->headers[2], "Content-Type: application/x-ndjson");
        CU_ASSERT_PTR_NULL(c->headers[3]);
        char body[8192];
        snprintf(body, sizeof(body), "%.*s", (int)c->body_len, c->body);
        CU_ASSERT_EQUAL(lines(body), i < 2 ? 3 : 1);
        for (const char *p = body; (p = strstr(p, "\"path\":\"/r")); p++) {
            CU_ASSERT_EQUAL(p[10] - '0', (int)seen); /* every record once, in order */
            seen++;
        }
    }
    CU_ASSERT_EQUAL(seen, 7);
    lk_advance(100); /* counts reach the metrics on the worker's tick */
    CU_ASSERT_EQUAL(lk_metric(in, "written"), 7);
    CU_ASSERT_EQUAL(lk_metric(in, "dropped"), 0);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static void test_http_retry_then_drop(void)
{
    lk_http_reset();
    lk_http_respond(URL, 503, "busy", 1);
    struct lk_instance *in =
        lk_instance_or_report(plugin, "{ sink: { type: http, url: '" URL "', batch_size: 2, "
                                      "flush_interval: 1s, retries: 2, retry_backoff: 100ms "
                                      "} }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    log_request(in, "/a", NULL);
    log_request(in, "/b", NULL);
    CU_ASSERT_PTR_NOT_NULL(lk_http_call_at(0));
    lk_advance(1); /* 503 */
    lk_advance(99);
    CU_ASSERT_PTR_NULL(lk_http_call_at(1)); /* backoff: 100 ms */
    lk_advance(1);
    CU_ASSERT_PTR_NOT_NULL(lk_http_call_at(1));
    lk_advance(1); /* 503 again: now 200 ms */
    lk_advance(199);
    CU_ASSERT_PTR_NULL(lk_http_call_at(2));
    lk_advance(1);
    CU_ASSERT_PTR_NOT_NULL(lk_http_call_at(2));
    CU_ASSERT_EQUAL(lk_http_call_at(2)->body_len, lk_http_call_at(0)->body_len); /* same batch */
    lk_advance(1); /* third failure: given up */
    lk_advance(1000);
    CU_ASSERT_PTR_NULL(lk_http_call_at(3));
    CU_ASSERT_EQUAL(lk_metric(in, "dropped"), 2);
    CU_ASSERT_EQUAL(lk_metric(in, "sink_errors"), 3);
    CU_ASSERT_EQUAL(lk_metric(in, "written"), 0);
    CU_ASSERT(strstr(lk_log_lines(), "dropped 2 records: POST " URL " failed 3 times") != NULL);

    /* The collector is back: the next records go through. */
    lk_http_respond(URL, 200, NULL, 1);
    log_request(in, "/c", NULL);
    log_request(in, "/d", NULL);
    lk_advance(1);
    CU_ASSERT_EQUAL(lk_metric(in, "written"), 0); /* counted on the next tick */
    lk_advance(1000);
    CU_ASSERT_EQUAL(lk_metric(in, "written"), 2);
    lk_instance_free(in);
    lk_log_clear();
}

/* A collector that never answers: calls time out, records pile up to queue_size and the rest
 * are dropped at once, counted; the LOG handler never waits. */
static void test_http_hang_drops(void)
{
    lk_http_reset();
    lk_http_respond(URL, 200, NULL, 3600 * 1000);
    struct lk_instance *in =
        lk_instance_or_report(plugin, "{ max_record: 1k, sink: { type: http, url: '" URL
                                      "', batch_size: 10, queue_size: 4k, "
                                      "timeout: 500ms, retries: 0, flush_interval: 100ms } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    for (int i = 0; i < 200; i++)
        log_request(in, "/x", NULL);
    CU_ASSERT_PTR_NOT_NULL(lk_http_call_at(0));
    CU_ASSERT_PTR_NULL(lk_http_call_at(1)); /* one call at a time */
    lk_advance(100);
    uint64_t dropped = lk_metric(in, "dropped");
    CU_ASSERT(dropped > 150 && dropped < 200);
    lk_advance(400); /* timeout: that batch is given up (retries: 0), the next one goes */
    lk_advance(100);
    CU_ASSERT_EQUAL(lk_metric(in, "dropped"), dropped + 10);
    CU_ASSERT_PTR_NOT_NULL(lk_http_call_at(1));
    CU_ASSERT_EQUAL(lk_metric(in, "sink_errors"), 1);
    lk_instance_free(in);
    lk_log_clear();
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static void test_http_template_content_type(void)
{
    lk_http_reset();
    lk_http_respond(URL, 200, NULL, 1);
    struct lk_instance *in =
        lk_instance_or_report(plugin, "{ template: '$status $path', sink: { type: http, url: '" URL
                                      "', batch_size: 1 } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    log_request(in, "/t", NULL);
    const struct lk_http_call *c = lk_http_call_at(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(c->headers[0], "Content-Type: text/plain; charset=utf-8");
    CU_ASSERT_EQUAL(c->body_len, 7);
    CU_ASSERT_NSTRING_EQUAL(c->body, "200 /t\n", 7);
    lk_advance(1);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static CU_TestInfo config_tests[] = {
    {"defaults: JSON to stdout", test_config_defaults},
    {"config errors point at the offending node", test_config_errors},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo record_tests[] = {
    {"JSON record with every field, fields and consumer from another plugin",
     test_json_record_every_field},
    {"template record", test_template_record},
    {"sample: 0 writes nothing", test_sample_zero_writes_nothing},
    {"sample_by: request_id is deterministic", test_sample_by_request_id},
    {"sample_by: random", test_sample_random},
    {"a record over max_record is cut, not lost", test_oversize_record},
    {"reopen writes on at the original path", test_reopen},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo http_tests[] = {
    {"batches by size and interval, headers, every record once", test_http_batches},
    {"retries with doubling backoff, then drops the batch", test_http_retry_then_drop},
    {"a hanging collector: bounded queue, counted drops", test_http_hang_drops},
    {"template records go as text/plain", test_http_template_content_type},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"logging config", suite_init, suite_clean, NULL, NULL, config_tests},
    {"logging records and file sink", suite_init, suite_clean, NULL, NULL, record_tests},
    {"logging http sink", suite_init, suite_clean, NULL, NULL, http_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return lk_test_run(suites);
}
