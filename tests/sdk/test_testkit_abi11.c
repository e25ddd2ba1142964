/* The test kit's ABI 1.1 entries: now_ms, instance_name, resp_header_at, upstream_failure,
 * resend, upstream_healthy, metric_set, counter_window, cache_add. */
#include <string.h>

#include "probe.h"

/* ---- resend and gateway-made failures ----------------------------------------------------- */

static int resend_rc;

static enum lintel_result resend_on_503(lintel_req *r)
{
    if (host->resp_status(r) != 503 && host->upstream_failure(r) == LINTEL_UPSTREAM_OK)
        return LINTEL_CONTINUE;
    CU_ASSERT_EQUAL(host->req_set_path(r, "/retry", 6), 0);
    resend_rc = host->resend(r);
    if (resend_rc == 0)
        CU_ASSERT_EQUAL(host->set_upstream(r, "backup"), 0); /* allowed again during resend */
    return LINTEL_CONTINUE;
}

static void test_resend(void)
{
    struct lk_instance *in = instance(NULL);
    lk_declare_upstream("main");
    lk_declare_upstream("backup");
    handler = resend_on_503;
    struct lk_req *r = lk_req_new("GET", "/x");
    lk_req_set_upstream(r, "main");
    lk_req_set_response(r, 503, "down");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(resend_rc, 0);
    CU_ASSERT_EQUAL(lk_resent(r), 1);
    CU_ASSERT_EQUAL(lk_resp_status(r), 0); /* the 503 is gone */
    CU_ASSERT_STRING_EQUAL(lk_req_path(r), "/retry");
    CU_ASSERT_STRING_EQUAL(lk_upstream(r), "backup");

    /* The new attempt's answer passes; a third failure cannot go again (two resends at most). */
    lk_req_set_upstream_failure(r, LINTEL_UPSTREAM_TIMEOUT);
    CU_ASSERT_EQUAL(lk_resp_status(r), 504);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resent(r), 2);
    lk_req_set_response(r, 503, NULL);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(resend_rc, -1);
    CU_ASSERT_EQUAL(lk_resp_status(r), 503);
    lk_req_free(r);

    /* A body that was streamed, not buffered, cannot be sent again. */
    r = lk_req_new("POST", "/x");
    lk_req_set_body(r, "abc", 3, 1);
    lk_req_set_response(r, 503, NULL);
    lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS);
    CU_ASSERT_EQUAL(resend_rc, -1);
    CU_ASSERT_EQUAL(lk_resent(r), 0);
    lk_req_free(r);

    /* Outside RESPONSE_HEADERS resend is an ABI misuse. */
    lk_log_clear();
    r = lk_req_new("GET", "/x");
    lk_req_set_response(r, 503, NULL);
    lk_run(in, r, LINTEL_PHASE_ACCESS);
    CU_ASSERT_EQUAL(resend_rc, -1);
    CU_ASSERT_EQUAL(lk_violations(), 1);
    lk_log_clear();
    lk_req_free(r);
    lk_instance_free(in);
}

static enum lintel_result read_failure(lintel_req *r)
{
    CU_ASSERT_EQUAL(host->upstream_failure(r), LINTEL_UPSTREAM_NO_HEALTHY);
    CU_ASSERT_EQUAL(host->resp_status(r), 503);
    CU_ASSERT_EQUAL(host->respond(r, 200, "text/plain", "cached", 6), 0);
    CU_ASSERT_EQUAL(host->upstream_failure(r), LINTEL_UPSTREAM_OK); /* now a plugin's answer */
    return LINTEL_RESPOND;
}

static void test_upstream_failure(void)
{
    struct lk_instance *in = instance(NULL);
    handler = read_failure;
    struct lk_req *r = lk_req_new("GET", "/x");
    lk_req_set_upstream_failure(r, LINTEL_UPSTREAM_NO_HEALTHY);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), 200);
    CU_ASSERT_STRING_EQUAL(lk_resp_body(r, NULL), "cached");
    lk_req_free(r);
    lk_instance_free(in);
}

/* ---- response headers, health, clock, gauges, names --------------------------------------- */

static enum lintel_result read_the_rest(lintel_req *r)
{
    struct lintel_str name, value;
    CU_ASSERT_EQUAL(host->resp_header_at(r, 0, &name, &value), 0);
    CU_ASSERT(str_is(name, "Set-Cookie") && str_is(value, "a=1"));
    CU_ASSERT_EQUAL(host->resp_header_at(r, 1, &name, &value), 0);
    CU_ASSERT(str_is(name, "Set-Cookie") && str_is(value, "b=2")); /* every value */
    CU_ASSERT_EQUAL(host->resp_header_at(r, 2, &name, &value), 0);
    CU_ASSERT(str_is(name, "X-Plugin"));
    CU_ASSERT_EQUAL(host->resp_header_at(r, 3, &name, &value), -1);
    CU_ASSERT_EQUAL(host->upstream_healthy(r, "main"), 0);
    CU_ASSERT_EQUAL(host->upstream_healthy(r, "backup"), 1);
    CU_ASSERT_EQUAL(host->upstream_healthy(r, "nowhere"), -1);
    CU_ASSERT_STRING_EQUAL(host->instance_name(probe_self), "probe");
    host->metric_set(probe_self, "state", -2);
    host->metric_set(probe_self, "state", 7);
    return LINTEL_CONTINUE;
}

static enum lintel_result add_header(lintel_req *r)
{
    host->resp_header_add(r, "X-Plugin", "1", 1);
    return LINTEL_CONTINUE;
}

static void test_headers_health_gauges(void)
{
    struct lk_instance *in = instance(NULL);
    lk_set_upstream_healthy("main", 0);
    struct lk_req *r = lk_req_new("GET", "/x");
    lk_req_set_response(r, 200, NULL);
    lk_req_set_response_header(r, "Set-Cookie", "a=1");
    lk_req_set_response_header(r, "Set-Cookie", "b=2");
    handler = add_header;
    lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS);
    handler = read_the_rest;
    lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS);
    CU_ASSERT_EQUAL(lk_gauge(in, "state"), 7);
    CU_ASSERT_EQUAL(lk_gauge(in, "never"), 0);
    lk_req_free(r);
    lk_instance_free(in);
}

static void test_clock(void)
{
    struct lk_instance *in = instance(NULL);
    lk_clock_set_unix(1796119200000ull); /* 2026-12-01T10:00:00Z */
    CU_ASSERT_EQUAL(host->now_ms(), 1796119200000ull);
    lk_advance(1500);
    CU_ASSERT_EQUAL(host->now_ms(), 1796119201500ull);
    lk_instance_free(in);
}

/* ---- shared state ------------------------------------------------------------------------- */

static void test_counter_window_and_cache_add(void)
{
    struct lk_instance *in = instance(NULL);
    lk_shared_reset();
    lk_advance(1000 - host->now_ms() % 1000); /* to the start of a 1 s window */
    struct lintel_counter_window w = {.struct_size = sizeof(w)};
    CU_ASSERT_EQUAL(host->counter_window(probe_self, "k", 3, 1000, &w), 0);
    CU_ASSERT_EQUAL(w.value, 3);
    CU_ASSERT_EQUAL(w.previous, 0);
    lk_advance(1250);
    CU_ASSERT_EQUAL(host->counter_window(probe_self, "k", 1, 1000, &w), 0);
    CU_ASSERT_EQUAL(w.value, 1);
    CU_ASSERT_EQUAL(w.previous, 3);
    CU_ASSERT_EQUAL(w.elapsed_ms, 250);
    CU_ASSERT_EQUAL(w.reset_ms, 750);
    lk_advance(2000); /* a window with nothing in it: no previous */
    CU_ASSERT_EQUAL(host->counter_window(probe_self, "k", 0, 1000, &w), 0);
    CU_ASSERT_EQUAL(w.value, 0);
    CU_ASSERT_EQUAL(w.previous, 0);
    CU_ASSERT_EQUAL(host->counter_window(probe_self, "k", 1, 0, &w), -1); /* needs a window */

    CU_ASSERT_EQUAL(host->cache_add(probe_self, "nonce", "a", 1, 500), 1);
    CU_ASSERT_EQUAL(host->cache_add(probe_self, "nonce", "b", 1, 500), 0);
    char buf[4];
    CU_ASSERT_EQUAL(host->cache_get(probe_self, "nonce", buf, sizeof(buf)), 1);
    CU_ASSERT_EQUAL(buf[0], 'a'); /* the second add changed nothing */
    lk_advance(500);
    CU_ASSERT_EQUAL(host->cache_add(probe_self, "nonce", "c", 1, 500), 1); /* expired */
    lk_instance_free(in);
}

static CU_TestInfo tests[] = {
    {"resend re-aims and drops the response; limits", test_resend},
    {"upstream_failure until a plugin answers", test_upstream_failure},
    {"resp_header_at, upstream_healthy, instance_name, metric_set",
     test_headers_health_gauges},
    {"now_ms follows lk_clock_set_unix and lk_advance", test_clock},
    {"counter_window and cache_add", test_counter_window_and_cache_add},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"testkit ABI 1.1", probe_suite_init, probe_suite_clean, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return probe_run(suites);
}
