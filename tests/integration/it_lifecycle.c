/* The gateway process from outside: the command line (-V, -t), reload on SIGHUP while traffic
 * flows, a refused reload, and graceful stop on SIGTERM. */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

/* Route /r to upstream %s ("a" or "b"), anything else to a. */
static const char config_fmt[] = IT_CONFIG_HEAD "upstreams:\n"
                                                "  a:\n"
                                                "    targets:\n"
                                                "      - address: \"127.0.0.1:%d\"\n"
                                                "  b:\n"
                                                "    targets:\n"
                                                "      - address: \"127.0.0.1:%d\"\n"
                                                "routes:\n"
                                                "  - name: r\n"
                                                "    match: { paths: [\"/r\"] }\n"
                                                "    upstream: %s\n"
                                                "  - name: rest\n"
                                                "    match: { paths: [\"/\"] }\n"
                                                "    upstream: a\n";

/* ---- Command line ----------------------------------------------------------------------- */

static void test_version(void)
{
    char *argv[] = {LINTEL_BIN, "-V", NULL};
    struct it_buf out = {0};
    CU_ASSERT_EQUAL(it_run(argv, 10000, &out, NULL), 0);
    CU_ASSERT(out.data && strstr(out.data, "lintel") && strstr(out.data, "abi"));
    it_buf_free(&out);
}

static void test_check_valid_file(void)
{
    const char *conf = it_temp_path("valid.yaml");
    CU_ASSERT_FATAL(conf && it_write_file(conf, config_fmt, 1, 1, 2, "a") == 0);
    char *argv[] = {LINTEL_BIN, "-t", "-c", (char *)conf, NULL};
    struct it_buf err = {0};
    int rc = it_run(argv, 10000, NULL, &err);
    if (rc != 0)
        fprintf(stderr, "it_lifecycle: lintel -t said: %s\n", err.data ? err.data : "");
    CU_ASSERT_EQUAL(rc, 0);
    it_buf_free(&err);
}

/* Writes text to a new file, runs `lintel -t -c FILE` on it and checks exit status 1 and an error
 * line "FILE:LINE:COL: path: " where LINE:COL is where the text has marker (+ offset columns). */
static void check_invalid(const char *name, const char *text, const char *marker, int offset,
                          const char *path)
{
    const char *conf = it_temp_path(name);
    CU_ASSERT_FATAL(conf && it_write_file(conf, "%s", text) == 0);
    const char *at = strstr(text, marker);
    CU_ASSERT_FATAL(at != NULL);
    int line = 1;
    const char *bol = text;
    for (const char *p = text; p < at; p++)
        if (*p == '\n') {
            line++;
            bol = p + 1;
        }
    char want[1024];
    snprintf(want, sizeof want, "%s:%d:%d: %s: ", conf, line, (int)(at - bol) + 1 + offset, path);

    char *argv[] = {LINTEL_BIN, "-t", "-c", (char *)conf, NULL};
    struct it_buf err = {0};
    CU_ASSERT_EQUAL(it_run(argv, 10000, NULL, &err), 1);
    bool named = err.data && strstr(err.data, want);
    if (!named)
        fprintf(stderr, "it_lifecycle: want an error starting \"%s\", stderr was: %s\n", want,
                err.data ? err.data : "");
    CU_ASSERT(named);
    it_buf_free(&err);
}

static void test_check_invalid_file(void)
{
    char text[2048];
    /* A value out of range, deep in the tree: reported at the value. */
    snprintf(text, sizeof text,
             IT_CONFIG_HEAD "upstreams:\n"
                            "  origin:\n"
                            "    targets:\n"
                            "      - address: \"127.0.0.1:1\"\n"
                            "        weight: 0\n"
                            "routes:\n"
                            "  - name: r\n"
                            "    upstream: origin\n",
             2);
    check_invalid("bad-weight.yaml", text, "weight: 0", 8, "upstreams.origin.targets[0].weight");
    /* An unknown key: reported at the key. */
    snprintf(text, sizeof text,
             IT_CONFIG_HEAD "bogus: 1\n"
                            "upstreams:\n"
                            "  origin:\n"
                            "    targets:\n"
                            "      - address: \"127.0.0.1:1\"\n"
                            "routes:\n"
                            "  - name: r\n"
                            "    upstream: origin\n",
             2);
    check_invalid("unknown-key.yaml", text, "bogus", 0, "bogus");
}

/* ---- Reload ----------------------------------------------------------------------------- */

/* A client doing GET /r back to back on one keepalive handle, noting which origin answered. */
struct client_loop {
    pthread_t thread;
    char url[128];
    atomic_bool stop;
    atomic_int done, failed, from_b, a_after_b;
    char first_failure[256];
};

static void *client_run(void *arg)
{
    struct client_loop *l = arg;
    struct it_http h;
    if (it_http_init(&h) < 0) {
        atomic_fetch_add(&l->failed, 1);
        return NULL;
    }
    int64_t deadline = it_now_ms() + 30000;
    /* Bounded on its own too: 20000 requests or 30 s, whatever the main thread does. */
    while (!atomic_load(&l->stop) && atomic_load(&l->done) < 20000 && it_now_ms() < deadline) {
        struct it_response r;
        if (it_http_get(&h, l->url, NULL, &r) < 0) {
            if (atomic_fetch_add(&l->failed, 1) == 0)
                snprintf(l->first_failure, sizeof l->first_failure, "transport error");
        } else {
            const char *o = it_response_header(&r, "X-Origin");
            if (r.status != 200 || !o) {
                if (atomic_fetch_add(&l->failed, 1) == 0)
                    snprintf(l->first_failure, sizeof l->first_failure, "status %d: %.200s",
                             r.status, r.body.data);
            } else if (strcmp(o, "B") == 0) {
                atomic_fetch_add(&l->from_b, 1);
            } else if (atomic_load(&l->from_b) > 0) {
                atomic_fetch_add(&l->a_after_b, 1);
            }
            it_response_free(&r);
        }
        atomic_fetch_add(&l->done, 1);
    }
    it_http_free(&h);
    return NULL;
}

/* Waits up to timeout_ms for *v to reach at least n. */
static bool wait_count(atomic_int *v, int n, int timeout_ms)
{
    int64_t deadline = it_now_ms() + timeout_ms;
    while (atomic_load(v) < n && it_now_ms() < deadline)
        it_sleep_ms(5);
    return atomic_load(v) >= n;
}

static void test_reload_under_traffic(void)
{
    struct it_proc *a = it_origin_start("A"), *b = it_origin_start("B");
    CU_ASSERT_FATAL(a && b);
    int port = it_free_port();
    const char *conf = it_temp_path("reload.yaml");
    CU_ASSERT_FATAL(it_write_file(conf, config_fmt, port, a->port, b->port, "a") == 0);
    struct it_proc *gw = it_lintel_start(conf, port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gw);

    static struct client_loop l; /* static: a fatal assertion must not leave it on the stack */
    memset(&l, 0, sizeof l);
    snprintf(l.url, sizeof l.url, "http://127.0.0.1:%d/r/loop", port);
    CU_ASSERT_FATAL(pthread_create(&l.thread, NULL, client_run, &l) == 0);

    bool warmed = wait_count(&l.done, 300, 10000);
    bool written = it_write_file(conf, config_fmt, port, a->port, b->port, "b") == 0;
    bool signalled = it_proc_signal(gw, SIGHUP) == 0;
    bool switched = wait_count(&l.from_b, 1, 10000);
    int done_at_switch = atomic_load(&l.done);
    bool kept_going = wait_count(&l.done, done_at_switch + 500, 10000);
    atomic_store(&l.stop, true);
    pthread_join(l.thread, NULL);

    fprintf(stderr, "it_lifecycle: %d requests, %d failed, %d from B, %d from A after B\n",
            atomic_load(&l.done), atomic_load(&l.failed), atomic_load(&l.from_b),
            atomic_load(&l.a_after_b));
    if (atomic_load(&l.failed))
        fprintf(stderr, "it_lifecycle: first failure: %s\n", l.first_failure);
    CU_ASSERT(warmed && written && signalled);
    CU_ASSERT(switched);
    CU_ASSERT(kept_going);
    CU_ASSERT_EQUAL(atomic_load(&l.failed), 0);
    CU_ASSERT_EQUAL(atomic_load(&l.a_after_b), 0);
}

static void test_invalid_reload_keeps_serving(void)
{
    struct it_proc *a = it_origin_start("A"), *b = it_origin_start("B");
    CU_ASSERT_FATAL(a && b);
    int port = it_free_port();
    const char *conf = it_temp_path("refused.yaml");
    CU_ASSERT_FATAL(it_write_file(conf, config_fmt, port, a->port, b->port, "a") == 0);
    struct it_proc *gw = it_lintel_start(conf, port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gw);

    /* Route /r to an upstream that does not exist: the whole file is refused. */
    off_t mark = it_proc_log_size(gw);
    CU_ASSERT_FATAL(it_write_file(conf, config_fmt, port, a->port, b->port, "nowhere") == 0);
    CU_ASSERT_FATAL(it_proc_signal(gw, SIGHUP) == 0);
    /* The error names the file (FILE:LINE:COL: ...). */
    CU_ASSERT(it_proc_log_wait(gw, mark, conf, 5000));
    CU_ASSERT(it_proc_wait(gw, 0) < 0); /* still running */

    struct it_http h;
    struct it_response r;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    CU_ASSERT_FATAL(it_http_get(&h, it_url(port, "/r/after-refused"), NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_response_header(&r, "X-Origin") &&
              strcmp(it_response_header(&r, "X-Origin"), "A") == 0);
    it_response_free(&r);

    /* A valid file afterwards is taken. */
    CU_ASSERT_FATAL(it_write_file(conf, config_fmt, port, a->port, b->port, "b") == 0);
    CU_ASSERT_FATAL(it_proc_signal(gw, SIGHUP) == 0);
    bool from_b = false;
    for (int64_t deadline = it_now_ms() + 5000; !from_b && it_now_ms() < deadline;
         it_sleep_ms(20)) {
        if (it_http_get(&h, it_url(port, "/r/after-valid"), NULL, &r) < 0)
            break;
        const char *o = it_response_header(&r, "X-Origin");
        from_b = r.status == 200 && o && strcmp(o, "B") == 0;
        it_response_free(&r);
    }
    CU_ASSERT(from_b);
    it_http_free(&h);
}

/* ---- Stop ------------------------------------------------------------------------------- */

static void test_graceful_stop(void)
{
    struct it_proc *a = it_origin_start("A");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    int port = it_free_port();
    const char *conf = it_temp_path("stop.yaml");
    CU_ASSERT_FATAL(it_write_file(conf, config_fmt, port, a->port, a->port, "a") == 0);
    struct it_proc *gw = it_lintel_start(conf, port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gw);

    struct it_conn c;
    struct it_response r;
    CU_ASSERT_FATAL(it_conn_open(&c, port) == 0);
    CU_ASSERT_FATAL(it_conn_send_str(&c, "GET /sleep/1500 HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    it_sleep_ms(200);
    CU_ASSERT_FATAL(it_proc_signal(gw, SIGTERM) == 0);

    /* New connections are refused while the slow request is still in flight. */
    bool refused = false, answered_first = false;
    for (int64_t deadline = it_now_ms() + 5000; !refused && it_now_ms() < deadline; it_sleep_ms(10))
        refused = it_port_refuses(port);
    struct pollfd pfd = {.fd = c.fd, .events = POLLIN};
    answered_first = poll(&pfd, 1, 0) > 0;
    CU_ASSERT(refused);
    CU_ASSERT(!answered_first);

    CU_ASSERT_FATAL(it_conn_read_response(&c, false, 10000, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_json_eq(r.body.data, "target", "/sleep/1500"));
    it_response_free(&r);
    it_conn_close(&c);
    CU_ASSERT_EQUAL(it_proc_wait(gw, 15000), 0);
}

static void test_stop_when_idle(void)
{
    struct it_proc *a = it_origin_start("A");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    int port = it_free_port();
    const char *conf = it_temp_path("idle.yaml");
    CU_ASSERT_FATAL(it_write_file(conf, config_fmt, port, a->port, a->port, "a") == 0);
    struct it_proc *gw = it_lintel_start(conf, port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gw);
    CU_ASSERT_FATAL(it_proc_signal(gw, SIGTERM) == 0);
    CU_ASSERT_EQUAL(it_proc_wait(gw, 5000), 0);
}

static CU_TestInfo tests[] = {
    {"lintel -V names lintel and the ABI", test_version},
    {"lintel -t accepts a valid file", test_check_valid_file},
    {"lintel -t refuses an invalid file with FILE:LINE:COL: path", test_check_invalid_file},
    {"SIGHUP switches routes under traffic without a failure", test_reload_under_traffic},
    {"an invalid file on SIGHUP keeps the old configuration", test_invalid_reload_keeps_serving},
    {"SIGTERM drains the request in flight, refuses new ones, exits 0", test_graceful_stop},
    {"SIGTERM on an idle gateway exits 0", test_stop_when_idle},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"lifecycle", NULL, it_suite_cleanup, it_test_setup, it_test_teardown, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return it_main(suites, 240);
}
