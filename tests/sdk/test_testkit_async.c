/* Tests sdk/testkit's asynchronous side (clock.c, http.c, shared.c, and PAUSE in run.c): virtual
 * time, resume, outbound HTTP, worker timers, shared counters and cache. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "probe.h"

/* ---- pausing ------------------------------------------------------------------------------ */

static lintel_req *paused;
static int fired;

static void resume_continue(void *arg)
{
    fired++;
    host->resume(arg, LINTEL_CONTINUE);
}

static void resume_respond(void *arg)
{
    fired++;
    host->respond(arg, 429, NULL, "slow down", 9);
    host->resume(arg, LINTEL_RESPOND);
}

static enum lintel_result pause_100ms(lintel_req *r)
{
    paused = r;
    CU_ASSERT_EQUAL(host->req_timer(r, 100, resume_continue, r), 0);
    return LINTEL_PAUSE;
}

static enum lintel_result pause_then_respond(lintel_req *r)
{
    CU_ASSERT_EQUAL(host->req_timer(r, 50, resume_respond, r), 0);
    CU_ASSERT_EQUAL(host->ctx_set(r, probe_self, "ctx", count_cleanup), 0);
    return LINTEL_PAUSE;
}

static enum lintel_result resume_inside(lintel_req *r)
{
    host->resume(r, LINTEL_CONTINUE);
    return LINTEL_PAUSE;
}

static void test_pause_and_resume(void)
{
    struct lk_instance *in = instance(NULL);
    lk_log_clear();
    fired = 0;
    struct lk_req *r = lk_req_new("GET", "/");
    handler = pause_100ms;
    enum lintel_result res;
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_PAUSE);
    CU_ASSERT_EQUAL(lk_resumed(r, &res), 0);
    CU_ASSERT_EQUAL(lk_advance(99), 0);
    CU_ASSERT_EQUAL(lk_resumed(r, &res), 0);
    CU_ASSERT_EQUAL(lk_advance(1), 1);
    CU_ASSERT_EQUAL(lk_resumed(r, &res), 1);
    CU_ASSERT_EQUAL(res, LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    host->resume(paused, LINTEL_CONTINUE); /* a second resume for one PAUSE */
    CU_ASSERT_EQUAL(lk_violations(), 1);
    lk_req_free(r);

    r = lk_req_new("GET", "/");
    handler = pause_then_respond;
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_PAUSE);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_BALANCE), LINTEL_ERROR); /* still paused */
    CU_ASSERT_EQUAL(lk_violations(), 2);
    CU_ASSERT_EQUAL(lk_advance(60), 1);
    CU_ASSERT_EQUAL(lk_resumed(r, &res), 1);
    CU_ASSERT_EQUAL(res, LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), 429);
    lk_req_free(r);

    r = lk_req_new("GET", "/");
    handler = resume_inside; /* resume() before returning PAUSE: the chain goes on at once */
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resumed(r, &res), 1);
    CU_ASSERT_EQUAL(res, LINTEL_CONTINUE);
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_violations(), 2);
    lk_log_clear();
    lk_instance_free(in);
}

static void test_request_ends_while_paused(void)
{
    struct lk_instance *in = instance(NULL);
    fired = cleanups = 0;
    struct lk_req *r = lk_req_new("GET", "/");
    handler = pause_then_respond;
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_PAUSE);
    lk_req_free(r); /* the client went away */
    CU_ASSERT_EQUAL(cleanups, 1);
    CU_ASSERT_EQUAL(lk_advance(1000), 0);
    CU_ASSERT_EQUAL(fired, 0);
    lk_instance_free(in);
}

static void chain_second(void *arg)
{
    fired = fired * 10 + 2;
}

static void chain_first(void *arg)
{
    fired = fired * 10 + 1;
    host->req_timer(arg, 10, chain_second, arg);
}

static void chain_third(void *arg)
{
    fired = fired * 10 + 3;
}

static enum lintel_result set_chain(lintel_req *r)
{
    host->req_timer(r, 30, chain_third, r);
    host->req_timer(r, 10, chain_first, r);
    return LINTEL_CONTINUE;
}

static void test_timers_fire_in_due_order(void)
{
    struct lk_instance *in = instance(NULL);
    fired = 0;
    struct lk_req *r = lk_req_new("GET", "/");
    handler = set_chain;
    lk_run(in, r, LINTEL_PHASE_ACCESS);
    CU_ASSERT_EQUAL(lk_advance(25), 2); /* first at 10, second at 10+10 */
    CU_ASSERT_EQUAL(fired, 12);
    CU_ASSERT_EQUAL(lk_advance(5), 1);
    CU_ASSERT_EQUAL(fired, 123);
    lk_req_free(r);
    lk_instance_free(in);
}

/* ---- outbound HTTP ------------------------------------------------------------------------ */

static int answers;
static int answer_status;
static char answer_text[128];

static void on_answer(void *arg, const struct lintel_http_response *resp)
{
    answers++;
    answer_status = resp->status;
    if (resp->status)
        snprintf(answer_text, sizeof(answer_text), "%.*s/%s", (int)resp->body.len, resp->body.ptr,
                 resp->header(resp, "x-user").ptr);
    else
        snprintf(answer_text, sizeof(answer_text), "%s", resp->error);
    if (arg)
        host->resume(arg, LINTEL_CONTINUE);
}

static const char *call_url = "http://auth.internal/check";
static uint64_t call_timeout;

static enum lintel_result call_out(lintel_req *r)
{
    const char *headers[] = {"Authorization: Bearer t", NULL};
    struct lintel_http_request spec = {.struct_size = sizeof(spec),
                                       .method = "POST",
                                       .url = call_url,
                                       .headers = headers,
                                       .body = "{}",
                                       .body_len = 2,
                                       .timeout_ms = call_timeout};
    CU_ASSERT_EQUAL(host->http_call(r, &spec, on_answer, r), 0);
    spec.url = "ftp://x/";
    CU_ASSERT_EQUAL(host->http_call(r, &spec, on_answer, r), -1);
    return LINTEL_PAUSE;
}

/* Starts call_out on a new request; the caller frees it. */
static struct lk_req *start_call(struct lk_instance *in)
{
    struct lk_req *r = lk_req_new("GET", "/");
    answers = 0;
    handler = call_out;
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_PAUSE);
    return r;
}

static void test_http_call(void)
{
    struct lk_instance *in = instance(NULL);
    lk_http_reset();
    lk_http_respond(call_url, 200, "ok", 30);
    lk_http_respond_header(call_url, "X-User", "alice");
    call_timeout = 0;
    struct lk_req *r = start_call(in);
    CU_ASSERT_EQUAL(lk_advance(29), 0);
    CU_ASSERT_EQUAL(lk_advance(1), 1);
    CU_ASSERT_EQUAL(answer_status, 200);
    CU_ASSERT_STRING_EQUAL(answer_text, "ok/alice");
    CU_ASSERT_EQUAL(lk_resumed(r, NULL), 1);
    const struct lk_http_call *c = lk_http_call_at(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(c->method, "POST");
    CU_ASSERT_STRING_EQUAL(c->headers[0], "Authorization: Bearer t");
    CU_ASSERT_PTR_NULL(c->headers[1]);
    CU_ASSERT_STRING_EQUAL(c->body, "{}");
    CU_ASSERT_EQUAL(c->timeout_ms, 5000);
    CU_ASSERT_PTR_NULL(lk_http_call_at(1)); /* the ftp:// one was refused */
    lk_req_free(r);

    call_timeout = 10; /* slower than its timeout */
    r = start_call(in);
    CU_ASSERT_EQUAL(lk_advance(10), 1);
    CU_ASSERT_EQUAL(answer_status, 0);
    CU_ASSERT_STRING_EQUAL(answer_text, "timeout");
    lk_req_free(r);

    r = start_call(in); /* the request ends first: the callback never runs */
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_advance(100), 0);
    CU_ASSERT_EQUAL(answers, 0);

    lk_http_reset();
    call_timeout = 0;
    r = start_call(in);
    CU_ASSERT_EQUAL(lk_advance(0), 1);
    CU_ASSERT_STRING_EQUAL(answer_text, "testkit: no answer for http://auth.internal/check");
    lk_req_free(r);
    lk_http_reset();
    lk_instance_free(in);
}

/* ---- worker timers and calls -------------------------------------------------------------- */

static int ticks, once;
static lintel_timer *single;

static void tick(void *arg)
{
    ticks++;
}

static void one(void *arg)
{
    once++;
}

static enum lintel_result start_worker_work(lintel_req *r)
{
    CU_ASSERT_PTR_NOT_NULL(host->worker_timer(probe_self, 100, 1, tick, NULL));
    single = host->worker_timer(probe_self, 50, 0, one, NULL);
    struct lintel_http_request spec = {.struct_size = sizeof(spec), .url = "http://logs/ship"};
    CU_ASSERT_EQUAL(host->worker_http_call(probe_self, &spec, on_answer, NULL), 0);
    return LINTEL_CONTINUE;
}

static void test_worker_timers_and_calls(void)
{
    struct lk_instance *in = instance(NULL);
    lk_log_clear();
    lk_http_reset();
    lk_http_respond("http://logs/ship", 204, NULL, 1000);
    ticks = once = answers = 0;
    struct lk_req *r = lk_req_new("GET", "/");
    handler = start_worker_work;
    lk_run(in, r, LINTEL_PHASE_LOG);
    lk_req_free(r); /* worker timers and calls outlive the request */
    CU_ASSERT_EQUAL(lk_advance(250), 3);
    CU_ASSERT_EQUAL(ticks, 2);
    CU_ASSERT_EQUAL(once, 1);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    host->timer_stop(single); /* a one-shot timer's handle dies when it fires */
    CU_ASSERT_EQUAL(lk_violations(), 1);
    host->timer_stop(single);
    CU_ASSERT_EQUAL(lk_violations(), 2);
    lk_instance_free(in); /* stops the repeating timer and the call */
    CU_ASSERT_EQUAL(lk_advance(5000), 0);
    CU_ASSERT_EQUAL(answers, 0);
    lk_log_clear();
    lk_http_reset();
}

/* ---- shared state and facts --------------------------------------------------------------- */

static void test_counters_and_cache(void)
{
    lk_shared_reset();
    struct lk_instance *in = instance(NULL);
    int64_t v;
    uint64_t reset;
    CU_ASSERT_EQUAL(host->counter_add(probe_self, "k", 2, 1000, &v, &reset), 0);
    CU_ASSERT_EQUAL(v, 2);
    CU_ASSERT(reset >= 1 && reset <= 1000);
    CU_ASSERT_EQUAL(host->counter_add(probe_self, "k", 1, 1000, &v, NULL), 0);
    CU_ASSERT_EQUAL(v, 3);
    lk_advance(reset); /* the next window */
    CU_ASSERT_EQUAL(host->counter_add(probe_self, "k", 1, 1000, &v, &reset), 0);
    CU_ASSERT_EQUAL(v, 1);
    CU_ASSERT_EQUAL(reset, 1000);

    char buf[8];
    CU_ASSERT_EQUAL(host->cache_set(probe_self, "c", "value", 5, 100), 0);
    CU_ASSERT_EQUAL(host->cache_get(probe_self, "c", buf, 3), 5); /* cut to cap */
    CU_ASSERT_EQUAL(memcmp(buf, "val", 3), 0);
    lk_instance_free(in);

    in = instance(NULL); /* a new instance (a new version) of the same name keeps the state */
    CU_ASSERT_EQUAL(host->counter_add(probe_self, "k", 0, 1000, &v, NULL), 0);
    CU_ASSERT_EQUAL(v, 1);
    CU_ASSERT_EQUAL(host->cache_get(probe_self, "c", NULL, 0), 5);
    lk_advance(100);
    CU_ASSERT_EQUAL(host->cache_get(probe_self, "c", buf, sizeof(buf)), -1); /* expired */
    lk_shared_reset();
    CU_ASSERT_EQUAL(host->counter_add(probe_self, "k", 0, 0, &v, &reset), 0);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT_EQUAL(reset, 0);
    lk_instance_free(in);
}

/* ---- fd watches --------------------------------------------------------------------------- */

static int watched_fd, reads, writable;
static lintel_watch *watch;

static void on_readable(int fd, int events, void *arg)
{
    char buf[64];
    CU_ASSERT_EQUAL(events, LINTEL_WATCH_READ);
    if (read(fd, buf, sizeof(buf)) > 0)
        reads++;
}

static void on_writable(int fd, int events, void *arg)
{
    writable++; /* never stops watching WRITE: the kit gives up after a while */
}

static enum lintel_result watch_socket(lintel_req *r)
{
    watch = host->worker_watch(probe_self, watched_fd, LINTEL_WATCH_READ, on_readable, NULL);
    CU_ASSERT_PTR_NOT_NULL(watch);
    return LINTEL_CONTINUE;
}

static void test_fd_watches(void)
{
    int sv[2];
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    struct lk_instance *in = instance(NULL);
    lk_log_clear();
    watched_fd = sv[0];
    reads = writable = 0;
    struct lk_req *r = lk_req_new("GET", "/");
    handler = watch_socket;
    lk_run(in, r, LINTEL_PHASE_ACCESS);
    lk_req_free(r);

    CU_ASSERT_EQUAL(lk_advance(0), 0); /* nothing to read yet */
    CU_ASSERT_EQUAL(write(sv[1], "+OK\r\n", 5), 5);
    CU_ASSERT_EQUAL(lk_advance(0), 1);
    CU_ASSERT_EQUAL(reads, 1);
    CU_ASSERT_EQUAL(host->watch_set(watch, 0), 0); /* paused: data waits */
    CU_ASSERT_EQUAL(write(sv[1], "x", 1), 1);
    CU_ASSERT_EQUAL(lk_poll(0), 0);
    CU_ASSERT_EQUAL(host->watch_set(watch, LINTEL_WATCH_READ), 0);
    CU_ASSERT_EQUAL(lk_poll(100), 1);
    CU_ASSERT_EQUAL(reads, 2);

    CU_ASSERT_EQUAL(host->watch_set(watch, LINTEL_WATCH_WRITE), 0);
    host->watch_stop(watch);
    lintel_watch *w = host->worker_watch(probe_self, sv[0], LINTEL_WATCH_WRITE, on_writable, NULL);
    CU_ASSERT_PTR_NOT_NULL(w);
    lk_advance(0);
    CU_ASSERT(writable > 100);
    CU_ASSERT_EQUAL(lk_violations(), 1);
    host->watch_stop(w);
    host->watch_stop(w);
    CU_ASSERT_EQUAL(lk_violations(), 2);

    CU_ASSERT_PTR_NOT_NULL(
        host->worker_watch(probe_self, sv[0], LINTEL_WATCH_READ, on_readable, NULL));
    lk_instance_free(in); /* stops it */
    CU_ASSERT_EQUAL(write(sv[1], "y", 1), 1);
    CU_ASSERT_EQUAL(lk_poll(0), 0);
    close(sv[0]);
    close(sv[1]);
    lk_log_clear();
}

static CU_TestInfo testkit_async_tests[] = {
    {"PAUSE, timers, resume", test_pause_and_resume},
    {"request ends while paused", test_request_ends_while_paused},
    {"timers fire in due order", test_timers_fire_in_due_order},
    {"outbound HTTP: answer, timeout, cancel, none", test_http_call},
    {"worker timers and calls", test_worker_timers_and_calls},
    {"shared counters and cache", test_counters_and_cache},
    {"fd watches", test_fd_watches},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"testkit-async", probe_suite_init, probe_suite_clean, NULL, NULL, testkit_async_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return probe_run(suites);
}
