/* The fallback plugin (plugins/fallback) in a running gateway: an origin that serves and then
 * dies (its process killed), whose last good answer is then served byte for byte with
 * X-Fallback and Age, decorated by cors which runs after fallback; the static answer for what
 * was never captured; the original failure when no fallback applies; and the circuit breaker
 * against an origin answering 503 on two workers: while open the origin sees no request (its
 * /stats count), after the cooldown exactly one probe goes through (a slow one, while other
 * requests keep being answered without the origin), a failing probe reopens, a good one closes.
 * Also checks that the YAML example of docs/plugins/fallback.md passes `lintel -t`. */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define APP "http://app.test"

static char plugin_dir[PATH_MAX];

static const char config[] =
    "listen: [ { address: \"127.0.0.1:%d\" } ]\n"
    "admin: { address: \"127.0.0.1:%d\" }\n"
    "workers: %d\n"
    "plugin_paths: [\"%s\"]\n"
    "upstreams:\n"
    "  o:\n"
    "    targets: [ { address: \"127.0.0.1:%d\" } ]\n"
    "    retries: 0\n"
    "    timeouts: { connect: 1s, read: 1s }\n"
    "routes:\n"
    "  - name: lg\n"
    "    match: { paths: [\"/lg\"] }\n"
    "    upstream: o\n"
    "    strip_prefix: true\n"
    "    plugins:\n"
    "      - { name: cors, config: { origins: [\"" APP "\"] } }\n"
    "      - name: fallback\n"
    "        instance: lg\n"
    "        config:\n"
    "          last_good: { key: { args: [id] } }\n"
    "          static:\n"
    "            headers: { Content-Type: application/json, X-Static: \"1\" }\n"
    "            body: '{\"items\":[]}'\n"
    "  - name: plain\n"
    "    match: { paths: [\"/plain\"] }\n"
    "    upstream: o\n"
    "    strip_prefix: true\n"
    "    plugins: [ { name: fallback, instance: plain } ]\n"
    "  - name: br\n"
    "    match: { paths: [\"/br\"] }\n"
    "    upstream: o\n"
    "    strip_prefix: true\n"
    "    plugins:\n"
    "      - name: fallback\n"
    "        instance: br\n"
    "        config:\n"
    "          last_good: false\n"
    "          static: { status: 200, body: from-fallback }\n"
    "          breaker: { failures: 3, cooldown: 1s }\n";

struct env {
    struct it_proc *origin, *gw;
    int port, admin;
    struct it_http h;
};

static int start(struct env *e, int workers)
{
    e->origin = it_origin_start("o");
    if (!e->origin)
        return -1;
    e->port = it_free_port();
    e->admin = it_free_port();
    const char *conf = it_temp_path(workers == 1 ? "fallback-1.yaml" : "fallback-2.yaml");
    if (it_write_file(conf, config, e->port, e->admin, workers, plugin_dir, e->origin->port) != 0)
        return -1;
    e->gw = it_lintel_start(conf, e->port);
    return e->gw && it_http_init(&e->h) == 0 ? 0 : -1;
}

static long origin_requests(struct env *e)
{
    struct it_response r;
    if (it_http_get(&e->h, it_url(e->origin->port, "/stats"), NULL, &r) != 0)
        return -1;
    long n = (long)it_json_int(r.body.data, "requests");
    it_response_free(&r);
    return n;
}

/* GET path on a keepalive connection (the same worker each time). */
static int get(struct env *e, const char *path, const char *const *headers, struct it_response *r)
{
    return it_http_get(&e->h, it_url(e->port, path), headers, r);
}

/* GET path on a new connection (spread over the workers by the kernel). */
static int get_fresh(struct env *e, const char *path, struct it_response *r)
{
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
                     path);
    struct it_buf out = {0};
    int rc = it_raw_exchange(e->port, req, (size_t)n, 5000, &out) == IT_READ_EOF &&
                     it_response_parse(out.data, out.len, false, true, r) > 0
                 ? 0
                 : -1;
    it_buf_free(&out);
    return rc;
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

/* Whether GET /-/metrics has the line (a whole line). */
static bool metric_is(struct env *e, const char *line)
{
    struct it_response r;
    if (it_http_get(&e->h, it_url(e->admin, "/-/metrics"), NULL, &r) != 0)
        return false;
    char want[256];
    snprintf(want, sizeof(want), "\n%s\n", line);
    bool ok = r.status == 200 && r.body.data && strstr(r.body.data, want);
    if (!ok)
        fprintf(stderr, "/-/metrics lacks \"%s\"\n", line);
    it_response_free(&r);
    return ok;
}

/* ---- last good and static ----------------------------------------------------------------- */

static void test_origin_dies_last_good_served(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e, 1) == 0);
    struct it_response good, r;
    const char *origin_hdr[] = {"Origin: " APP, NULL};

    CU_ASSERT_FATAL(get(&e, "/lg/items?id=1&ts=1", NULL, &good) == 0);
    CU_ASSERT_EQUAL_FATAL(good.status, 200);
    CU_ASSERT(it_json_eq(good.body.data, "target", "/items?id=1&ts=1"));
    CU_ASSERT_PTR_NULL(it_response_header(&good, "X-Fallback"));

    it_proc_kill(e.origin);
    CU_ASSERT(it_port_refuses(e.origin->port));

    /* Same key (ts is not part of it): the last good answer, byte for byte, with its headers,
     * and the CORS headers cors adds after fallback replaced the 502. */
    CU_ASSERT_FATAL(get(&e, "/lg/items?ts=2&id=1", origin_hdr, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(header_is(&r, "X-Fallback", "last-good"));
    CU_ASSERT(header_is(&r, "Age", "0"));
    CU_ASSERT(r.body_bytes == good.body_bytes && r.body_fnv == good.body_fnv);
    CU_ASSERT(header_is(&r, "X-Origin", "o"));
    CU_ASSERT(header_is(&r, "Content-Type", it_response_header(&good, "Content-Type")));
    CU_ASSERT(header_is(&r, "Access-Control-Allow-Origin", APP));
    CU_ASSERT_PTR_NOT_NULL(it_response_header(&r, "X-Request-Id"));
    CU_ASSERT(strcmp(it_response_header(&r, "X-Request-Id"),
                     it_response_header(&good, "X-Request-Id")) != 0);
    it_response_free(&r);

    /* Age counts whole seconds since the capture. */
    it_sleep_ms(1100);
    CU_ASSERT_FATAL(get(&e, "/lg/items?id=1", NULL, &r) == 0);
    CU_ASSERT(header_is(&r, "X-Fallback", "last-good"));
    const char *age = it_response_header(&r, "Age");
    CU_ASSERT(age && atoi(age) >= 1);
    CU_ASSERT(r.body_fnv == good.body_fnv);
    it_response_free(&r);

    /* Never captured: the static answer. */
    CU_ASSERT_FATAL(get(&e, "/lg/items?id=2", origin_hdr, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(header_is(&r, "X-Fallback", "static"));
    CU_ASSERT(header_is(&r, "X-Static", "1"));
    CU_ASSERT(header_is(&r, "Content-Type", "application/json"));
    CU_ASSERT_STRING_EQUAL(r.body.data, "{\"items\":[]}");
    CU_ASSERT_PTR_NULL(it_response_header(&r, "Age"));
    CU_ASSERT(header_is(&r, "Access-Control-Allow-Origin", APP));
    it_response_free(&r);

    /* No fallback applies (nothing captured, no static): the gateway's 502 as it was. */
    CU_ASSERT_FATAL(get(&e, "/plain/items", NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 502);
    CU_ASSERT_PTR_NULL(it_response_header(&r, "X-Fallback"));
    it_response_free(&r);

    CU_ASSERT(metric_is(&e, "lintel_plugin_events_total{plugin=\"fallback\",instance=\"lg\","
                            "name=\"served_last_good\"} 2"));
    CU_ASSERT(metric_is(&e, "lintel_plugin_events_total{plugin=\"fallback\",instance=\"lg\","
                            "name=\"served_static\"} 1"));
    it_response_free(&good);
    it_http_free(&e.h);
}

/* ---- the breaker ---------------------------------------------------------------------------- */

/* GET path on a new connection; asserts the static fallback answered. */
static void expect_fallback(struct env *e, const char *path)
{
    struct it_response r;
    CU_ASSERT_FATAL(get_fresh(e, path, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(header_is(&r, "X-Fallback", "static"));
    CU_ASSERT_STRING_EQUAL(r.body.data, "from-fallback");
    it_response_free(&r);
}

/* Sends GET path on a new connection c, again every 50 ms while the breaker answers it itself
 * (X-Fallback), until one reaches the origin: the probe. Its answer is left on c, unless it came
 * already: then it is in *answer and *answered is set. Returns the time the probe was sent, or
 * -1 when none got through within 10 s. */
static int64_t send_probe(struct env *e, struct it_conn *c, const char *path,
                          struct it_response *answer, bool *answered)
{
    char req[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: gw\r\n\r\n", path);
    int64_t deadline = it_now_ms() + 10000;
    *answered = false;
    while (it_now_ms() < deadline) {
        long seen = origin_requests(e); /* every /stats call counts itself */
        if (seen < 0 || it_conn_open(c, e->port) != 0 || it_conn_send_str(c, req) != 0)
            return -1;
        int64_t sent = it_now_ms();
        /* Either the origin sees it, or the gateway answers it without the origin. */
        for (;;) {
            long now = origin_requests(e);
            if (now > seen + 1)
                return sent;
            seen = now;
            if (it_conn_read_response(c, false, 20, answer) == 0) {
                if (!it_response_header(answer, "X-Fallback")) {
                    *answered = true; /* the origin answered before /stats showed it */
                    return sent;
                }
                CU_ASSERT(header_is(answer, "X-Fallback", "static"));
                it_response_free(answer);
                break;
            }
            if (c->eof || it_now_ms() > deadline)
                break;
        }
        it_conn_close(c);
        it_sleep_ms(50);
    }
    return -1;
}

static void test_breaker_opens_and_half_opens(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e, 2) == 0);
    long n0 = origin_requests(&e);
    /* Three 503s from the origin (each replaced by the static answer) open the breaker. */
    for (int i = 0; i < 3; i++)
        expect_fallback(&e, "/br/status/503");
    int64_t opened = it_now_ms();
    CU_ASSERT_EQUAL(origin_requests(&e), n0 + 3 + 1); /* each /stats call counts itself */
    CU_ASSERT(metric_is(&e, "lintel_plugin_gauge{plugin=\"fallback\",instance=\"br\","
                            "name=\"breaker_state\"} 1"));
    CU_ASSERT(metric_is(&e, "lintel_plugin_events_total{plugin=\"fallback\",instance=\"br\","
                            "name=\"breaker_open\"} 1"));

    /* Open: on both workers the answer comes without the origin. */
    long n1 = origin_requests(&e);
    for (int i = 0; i < 12; i++)
        expect_fallback(&e, "/br/status/200");
    CU_ASSERT_EQUAL(origin_requests(&e), n1 + 1);

    /* After the cooldown one probe goes through; a slow one (read timeout, a failure), during
     * which every other request is still answered without the origin. */
    struct it_conn probe;
    struct it_response r;
    bool answered;
    int64_t sent = send_probe(&e, &probe, "/br/sleep/3000", &r, &answered);
    CU_ASSERT_FATAL(sent >= 0 && !answered);
    CU_ASSERT(sent - opened >= 1000);
    CU_ASSERT(metric_is(&e, "lintel_plugin_gauge{plugin=\"fallback\",instance=\"br\","
                            "name=\"breaker_state\"} 2"));
    long n2 = origin_requests(&e);
    for (int i = 0; i < 6; i++)
        expect_fallback(&e, "/br/status/200");
    CU_ASSERT_EQUAL(origin_requests(&e), n2 + 1);
    CU_ASSERT_FATAL(it_conn_read_response(&probe, false, 5000, &r) == 0);
    CU_ASSERT(header_is(&r, "X-Fallback", "static")); /* the 504 replaced */
    it_response_free(&r);
    it_conn_close(&probe);
    int64_t reopened = it_now_ms();
    CU_ASSERT(metric_is(&e, "lintel_plugin_gauge{plugin=\"fallback\",instance=\"br\","
                            "name=\"breaker_state\"} 1"));
    CU_ASSERT(metric_is(&e, "lintel_plugin_events_total{plugin=\"fallback\",instance=\"br\","
                            "name=\"breaker_open\"} 2"));
    long n3 = origin_requests(&e);
    expect_fallback(&e, "/br/status/200");
    CU_ASSERT_EQUAL(origin_requests(&e), n3 + 1);

    /* The next probe succeeds: closed, the origin answers again. */
    sent = send_probe(&e, &probe, "/br/status/200", &r, &answered);
    CU_ASSERT_FATAL(sent >= 0);
    CU_ASSERT(sent - reopened >= 900); /* reopened when the 504 came, before we read it */
    if (!answered)
        CU_ASSERT_FATAL(it_conn_read_response(&probe, false, 5000, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NULL(it_response_header(&r, "X-Fallback"));
    CU_ASSERT_STRING_EQUAL(r.body.data, "status 200\n");
    it_response_free(&r);
    it_conn_close(&probe);
    CU_ASSERT(metric_is(&e, "lintel_plugin_gauge{plugin=\"fallback\",instance=\"br\","
                            "name=\"breaker_state\"} 0"));
    long n4 = origin_requests(&e);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_FATAL(get_fresh(&e, "/br/status/200", &r) == 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_PTR_NULL(it_response_header(&r, "X-Fallback"));
        it_response_free(&r);
    }
    CU_ASSERT_EQUAL(origin_requests(&e), n4 + 4 + 1);
    it_http_free(&e.h);
}

/* ---- the documented configuration ----------------------------------------------------------- */

/* The first ```yaml block of docs/plugins/fallback.md, with plugin_paths pointed at this build,
 * is a configuration `lintel -t` accepts; a missing body_file is refused with its position. */
static void test_documented_config_is_valid(void)
{
    char doc_path[PATH_MAX];
    snprintf(doc_path, sizeof(doc_path), "%s/docs/plugins/fallback.md", LINTEL_SOURCE_DIR);
    FILE *f = fopen(doc_path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    struct it_buf yaml = {0};
    char line[PATH_MAX + 64];
    int state = 0; /* 0 before the block, 1 inside, 2 after */
    while (state < 2 && fgets(line, sizeof(line), f)) {
        if (state == 0 && strcmp(line, "```yaml\n") == 0) {
            state = 1;
        } else if (state == 1 && strcmp(line, "```\n") == 0) {
            state = 2;
        } else if (state == 1) {
            const char *from = "plugin_paths: [build/plugins]";
            if (strncmp(line, from, strlen(from)) == 0)
                snprintf(line, sizeof(line), "plugin_paths: [\"%s\"]\n", plugin_dir);
            it_buf_add(&yaml, line, strlen(line));
        }
    }
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(state, 2);
    const char *conf = it_temp_path("fallback-doc.yaml");
    CU_ASSERT_FATAL(it_write_file(conf, "%s", yaml.data) == 0);
    it_buf_free(&yaml);
    char *argv[] = {LINTEL_BIN, "-t", "-c", (char *)conf, NULL};
    struct it_buf out = {0}, err = {0};
    int rc = it_run(argv, 10000, &out, &err);
    if (rc != 0)
        fprintf(stderr, "lintel -t: %s%s\n", out.data ? out.data : "", err.data ? err.data : "");
    CU_ASSERT_EQUAL(rc, 0);
    it_buf_free(&out);
    it_buf_free(&err);

    const char *bad = it_temp_path("fallback-bad.yaml");
    CU_ASSERT_FATAL(it_write_file(bad,
                                  "listen: [ { address: \"127.0.0.1:1\" } ]\n"
                                  "admin: { enabled: false }\n"
                                  "plugin_paths: [\"%s\"]\n"
                                  "plugins:\n"
                                  "  - { name: fallback, config: { static: { body_file: "
                                  "/nonexistent/down.json } } }\n"
                                  "upstreams: {}\n"
                                  "routes: []\n",
                                  plugin_dir) == 0);
    char *argv_bad[] = {LINTEL_BIN, "-t", "-c", (char *)bad, NULL};
    CU_ASSERT_EQUAL(it_run(argv_bad, 10000, &out, &err), 1);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof(want),
             "%s:5:54: plugins[0].config.static.body_file: plugin fallback "
             "1.0.0: cannot read /nonexistent/down.json",
             bad);
    if (!err.data || !strstr(err.data, want))
        fprintf(stderr, "lintel -t said: %s\nwanted: %s\n", err.data ? err.data : "(nothing)",
                want);
    CU_ASSERT(err.data && strstr(err.data, want));
    it_buf_free(&out);
    it_buf_free(&err);
}

static CU_TestInfo tests[] = {
    {"origin dies: last good with X-Fallback and Age, static, or the 502",
     test_origin_dies_last_good_served},
    {"breaker: open skips the origin, one probe after cooldown, reopens, closes",
     test_breaker_opens_and_half_opens},
    {"the documented configuration passes lintel -t", test_documented_config_is_valid},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"fallback", NULL, it_suite_cleanup, it_test_setup, it_test_teardown, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    char bin[PATH_MAX];
    snprintf(bin, sizeof(bin), "%s", LINTEL_BIN);
    snprintf(plugin_dir, sizeof(plugin_dir), "%s/plugins", dirname(bin));
    return it_main(suites, 240);
}
