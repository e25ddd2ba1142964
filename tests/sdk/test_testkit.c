/* Tests sdk/testkit (plugin.c, config.c, request.c, response.c, run.c): the host functions keep
 * plugin.h's semantics and lintel's, and misuse is caught. Pausing, timers, outbound HTTP and
 * shared state are in test_testkit_async.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "probe.h"

/* ---- loading ------------------------------------------------------------------------------ */

static void test_abi_checks(void)
{
    char err[256];
    struct lintel_plugin d = probe;

    d.abi_major = LINTEL_ABI_MAJOR + 1;
    CU_ASSERT_PTR_NULL(lk_plugin_from_descriptor(&d, err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(err, "wrong ABI major 2 (host 1)");
    d = probe;
    d.abi_minor = LINTEL_ABI_MINOR + 1;
    CU_ASSERT_PTR_NULL(lk_plugin_from_descriptor(&d, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "newer"));
    d = probe;
    d.struct_size = 8;
    CU_ASSERT_PTR_NULL(lk_plugin_from_descriptor(&d, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "struct_size"));
    d = probe; /* a descriptor from before reopen was added to 1.0 */
    d.struct_size = (uint32_t)offsetof(struct lintel_plugin, reopen);
    CU_ASSERT_PTR_NULL(lk_plugin_from_descriptor(&d, err, sizeof(err)));
    d = probe;
    d.name = "Bad Name";
    CU_ASSERT_PTR_NULL(lk_plugin_from_descriptor(&d, err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(err, "bad plugin name");
    const char *versions[] = {"1.0", "1.0.0-", "01.0.0", "1..0", "", "1.0.0+a..b", NULL};
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        d = probe;
        d.version = versions[i];
        CU_ASSERT_PTR_NULL(lk_plugin_from_descriptor(&d, err, sizeof(err)));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "bad version"));
    }
    d = probe;
    d.version = "2.10.0-rc.1+build.5"; /* semver's pre-release and build parts are accepted */
    struct lk_plugin *p = lk_plugin_from_descriptor(&d, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL(p);
    lk_plugin_free(p);
}

static void test_load_errors(void)
{
    char err[256];
    CU_ASSERT_PTR_NULL(lk_plugin_load("/nonexistent/x.so", err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/x.so: dlopen: "));
    /* Any shared object without the descriptor: the C library is always there. */
    CU_ASSERT_PTR_NULL(lk_plugin_load("libc.so.6", err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(err, "libc.so.6: no symbol lintel_plugin_v1");
}

static void test_instance_lifecycle(void)
{
    destroyed = worker_inits = worker_finis = 0;
    struct lk_instance *in = instance(NULL);
    CU_ASSERT_EQUAL(worker_inits, 1);
    CU_ASSERT_EQUAL(worker_finis, 0);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(worker_finis, 1);
    CU_ASSERT_EQUAL(destroyed, 1);
}

/* ---- configuration ------------------------------------------------------------------------ */

static int read_everything(const lintel_cfg *c, lintel_cfg_error *err)
{
    int64_t i;
    int b;
    uint64_t ms, bytes;
    CU_ASSERT_EQUAL(host->cfg_type(c), LINTEL_CFG_MAP);
    CU_ASSERT_EQUAL(host->cfg_len(c), 6);
    CU_ASSERT_STRING_EQUAL(host->cfg_key_at(c, 1), "n");
    CU_ASSERT_PTR_NULL(host->cfg_key_at(c, 6));
    CU_ASSERT_EQUAL(host->cfg_int(host->cfg_get(c, "n"), &i), 0);
    CU_ASSERT_EQUAL(i, -42);
    CU_ASSERT_EQUAL(host->cfg_int(host->cfg_get(c, "s"), &i), -1);
    CU_ASSERT_EQUAL(host->cfg_bool(host->cfg_get(c, "b"), &b), 0);
    CU_ASSERT_EQUAL(b, 1);
    CU_ASSERT_EQUAL(host->cfg_bool(host->cfg_get(c, "s"), &b), -1);
    CU_ASSERT_EQUAL(host->cfg_duration_ms(host->cfg_get(c, "d"), &ms), 0);
    CU_ASSERT_EQUAL(ms, 250);
    CU_ASSERT_EQUAL(host->cfg_size(host->cfg_get(c, "z"), &bytes), 0);
    CU_ASSERT_EQUAL(bytes, 64 * 1024);
    CU_ASSERT_EQUAL(host->cfg_size(NULL, &bytes), -1);
    const lintel_cfg *list = host->cfg_get(c, "list");
    CU_ASSERT_EQUAL(host->cfg_type(list), LINTEL_CFG_LIST);
    CU_ASSERT_EQUAL(host->cfg_len(list), 2);
    CU_ASSERT_PTR_NULL(host->cfg_at(list, 2));
    CU_ASSERT_PTR_NULL(host->cfg_str(list));
    CU_ASSERT_EQUAL(host->cfg_type(host->cfg_get(c, "missing")), LINTEL_CFG_NONE);
    const lintel_cfg *x = host->cfg_get(host->cfg_at(list, 1), "x");
    CU_ASSERT_STRING_EQUAL(host->cfg_str(x), "deep");
    host->cfg_error(err, x, "must be %s", "shallow");
    host->cfg_error(err, c, "a second error is a violation; the first is kept");
    return -1;
}

static void test_config_readers_and_error_path(void)
{
    char err[256];
    lk_log_clear();
    probe_on_create = read_everything;
    const char *yaml = "s: text\nn: -42\nb: true\nd: 250ms\nz: 64k\n"
                       "list:\n  - 1\n  - { x: deep }\n";
    CU_ASSERT_PTR_NULL(lk_instance_new(plugin, yaml, err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(err, "8:10: list[1].x: must be shallow");
    CU_ASSERT_EQUAL(lk_violations(), 1);
    lk_log_clear();
    probe_on_create = NULL;
}

static int fail_silently(const lintel_cfg *c, lintel_cfg_error *err)
{
    return -1;
}

static int error_but_succeed(const lintel_cfg *c, lintel_cfg_error *err)
{
    host->cfg_error(err, NULL, "bad");
    return 0;
}

static void test_create_failures(void)
{
    char err[256];
    lk_log_clear();
    destroyed = 0;
    probe_on_create = fail_silently;
    CU_ASSERT_PTR_NULL(lk_instance_new(plugin, "{}", err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(err, "create failed");
    CU_ASSERT_EQUAL(destroyed, 0);
    probe_on_create = error_but_succeed;
    CU_ASSERT_PTR_NULL(lk_instance_new(plugin, "a: 1", err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(err, "1:1: bad");
    CU_ASSERT_EQUAL(destroyed, 1);
    CU_ASSERT_EQUAL(lk_violations(), 1);
    CU_ASSERT_PTR_NULL(lk_instance_new(plugin, "a: [", err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "yaml: "));
    probe_on_create = NULL;
    lk_log_clear();
}

/* ---- the request -------------------------------------------------------------------------- */

static enum lintel_result rewrite_request(lintel_req *r)
{
    CU_ASSERT(str_is(host->req_method(r), "GET"));
    CU_ASSERT(str_is(host->req_path(r), "/a/b"));
    CU_ASSERT(str_is(host->req_query(r), "x=1&flag&y=two"));
    CU_ASSERT(str_is(host->req_arg(r, "y"), "two"));
    CU_ASSERT(str_is(host->req_arg(r, "flag"), ""));
    CU_ASSERT(str_is(host->req_arg(r, "z"), NULL));
    CU_ASSERT(str_is(host->req_cookie(r, "sid"), "abc"));
    CU_ASSERT(str_is(host->req_cookie(r, "theme"), "dark"));
    CU_ASSERT(str_is(host->req_cookie(r, "flag"), NULL)); /* a cookie needs its '=' */
    CU_ASSERT(str_is(host->req_cookie(r, "late"), "1"));  /* second Cookie header */
    CU_ASSERT(str_is(host->req_cookie(r, "none"), NULL));
    CU_ASSERT(str_is(host->req_header(r, "x-multi"), "1"));
    CU_ASSERT(str_is(host->req_client_addr(r), "10.0.0.7"));
    CU_ASSERT(str_is(host->req_route(r), "users"));
    CU_ASSERT(str_is(host->req_id(r), "rid-1"));
    CU_ASSERT(str_is(host->upstream_name(r), "primary"));

    CU_ASSERT_EQUAL(host->req_set_method(r, "POST", 4), 0);
    CU_ASSERT_EQUAL(host->req_set_method(r, "BAD METHOD", 10), -1);
    CU_ASSERT_EQUAL(host->req_set_path(r, "/new", 4), 0);
    CU_ASSERT_EQUAL(host->req_set_path(r, "relative", 8), -1);
    CU_ASSERT_EQUAL(host->req_set_path(r, "/a b", 4), -1);
    CU_ASSERT_EQUAL(host->req_set_query(r, "q=1", 3), 0);
    CU_ASSERT_EQUAL(host->req_header_set(r, "X-Multi", "only", 4), 0);
    CU_ASSERT_EQUAL(host->req_header_add(r, "X-Added", "v", 1), 0);
    CU_ASSERT_EQUAL(host->req_header_add(r, "Bad Name", "v", 1), -1);
    CU_ASSERT_EQUAL(host->req_header_set(r, "X-Evil", "a\r\nb", 4), -1);
    CU_ASSERT_EQUAL(host->req_header_remove(r, "Cookie"), 0);
    CU_ASSERT(str_is(host->req_id(r), "rid-1")); /* fixed when the request came in */

    struct lintel_str name, value;
    /* set removes every X-Multi and appends the new one, as lintel does */
    CU_ASSERT_EQUAL(host->req_header_at(r, 0, &name, &value), 0);
    CU_ASSERT(str_is(name, "X-Request-Id"));
    CU_ASSERT_EQUAL(host->req_header_at(r, 1, &name, &value), 0);
    CU_ASSERT(str_is(name, "X-Multi") && str_is(value, "only"));
    CU_ASSERT_EQUAL(host->req_header_at(r, 2, &name, &value), 0);
    CU_ASSERT(str_is(name, "X-Added"));
    CU_ASSERT_EQUAL(host->req_header_at(r, 3, &name, &value), -1);

    CU_ASSERT_EQUAL(host->consumer_set(r, "alice", "42"), 0);
    CU_ASSERT(str_is(host->consumer_id(r), "42"));
    CU_ASSERT_EQUAL(host->set_upstream(r, "canary"), 0);
    CU_ASSERT_EQUAL(host->set_upstream(r, "nowhere"), -1);
    CU_ASSERT_EQUAL(host->log_field(r, "k", "v1", 2), 0);
    CU_ASSERT_EQUAL(host->log_field(r, "k", "v2", 2), 0);
    struct lintel_str key;
    CU_ASSERT_EQUAL(host->log_field_at(r, 1, &key, &value), 0);
    CU_ASSERT(str_is(key, "k") && str_is(value, "v2"));
    CU_ASSERT_EQUAL(host->log_field_at(r, 2, &key, &value), -1);
    host->metric_add(probe_self, "rewrites", 2);
    host->log(probe_self, LINTEL_LOG_LEVEL_WARN, "rewrote %d", 1);
    return LINTEL_CONTINUE;
}

static void test_request_functions(void)
{
    struct lk_instance *in = instance(NULL);
    lk_log_clear();
    lk_declare_upstream("primary");
    lk_declare_upstream("canary");
    struct lk_req *r = lk_req_new("GET", "/a/b?x=1&flag&y=two");
    lk_req_set_header(r, "X-Multi", "1");
    lk_req_set_header(r, "Cookie", "sid=abc; flag; theme=dark");
    lk_req_set_header(r, "Cookie", "late=1");
    lk_req_set_header(r, "X-Multi", "2");
    lk_req_set_header(r, "X-Request-Id", "rid-1");
    lk_req_set_client(r, "10.0.0.7");
    lk_req_set_route(r, "users");
    lk_req_set_upstream(r, "primary");

    handler = rewrite_request;
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_CONTINUE);
    CU_ASSERT_STRING_EQUAL(lk_req_method(r), "POST");
    CU_ASSERT_STRING_EQUAL(lk_req_path(r), "/new");
    CU_ASSERT_STRING_EQUAL(lk_req_query(r), "q=1");
    CU_ASSERT_STRING_EQUAL(lk_req_header(r, "x-multi"), "only");
    CU_ASSERT_PTR_NULL(lk_req_header(r, "Cookie"));
    CU_ASSERT_STRING_EQUAL(lk_consumer_name(r), "alice");
    CU_ASSERT_STRING_EQUAL(lk_upstream(r), "canary");
    CU_ASSERT_STRING_EQUAL(lk_log_field(r, "k"), "v1");
    CU_ASSERT_EQUAL(lk_metric(in, "rewrites"), 2);
    CU_ASSERT_EQUAL(lk_metric(in, "other"), 0);
    CU_ASSERT_STRING_EQUAL(lk_log_lines(), "warn [probe/probe] rewrote 1\n");
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_req_free(r);
    lk_instance_free(in);
}

static enum lintel_result use_ctx(lintel_req *r)
{
    if (!host->ctx_get(r, probe_self)) {
        char *data = host->alloc(r, 4);
        memcpy(data, "ctx", 4);
        CU_ASSERT_EQUAL(host->ctx_set(r, probe_self, data, count_cleanup), 0);
    }
    return LINTEL_CONTINUE;
}

static void test_ctx_cleanup_once(void)
{
    struct lk_instance *in = instance(NULL);
    handler = use_ctx;
    cleanups = 0;
    struct lk_req *r = lk_req_new("GET", "/");
    lk_run(in, r, LINTEL_PHASE_ACCESS);
    lk_run(in, r, LINTEL_PHASE_LOG);
    CU_ASSERT_EQUAL(cleanups, 0);
    lk_req_free(r);
    CU_ASSERT_EQUAL(cleanups, 1);
    lk_instance_free(in);
}

/* ---- responding --------------------------------------------------------------------------- */

static enum lintel_result deny(lintel_req *r)
{
    CU_ASSERT_EQUAL(host->resp_status(r), 0);
    CU_ASSERT_EQUAL(host->resp_header_set(r, "X-Before", "1", 1), 0);
    CU_ASSERT_EQUAL(host->respond(r, 42, NULL, "", 0), -1);
    CU_ASSERT_EQUAL(host->respond(r, 403, NULL, "{\"error\":\"no\"}", 14), 0);
    CU_ASSERT_EQUAL(host->resp_header_add(r, "X-After", "2", 1), 0);
    return LINTEL_RESPOND;
}

static enum lintel_result replace_upstream(lintel_req *r)
{
    CU_ASSERT_EQUAL(host->resp_status(r), 502);
    CU_ASSERT(str_is(host->resp_header(r, "X-Upstream"), "yes"));
    CU_ASSERT_EQUAL(host->respond(r, 200, "text/html", "<p>cached</p>", 13), 0);
    return LINTEL_RESPOND;
}

static enum lintel_result log_only(lintel_req *r)
{
    CU_ASSERT_EQUAL(host->respond(r, 200, NULL, "x", 1), -1);
    CU_ASSERT_EQUAL(host->resp_set_status(r, 201), -1);
    CU_ASSERT_EQUAL(host->resp_header_set(r, "X-Late", "1", 1), -1);
    CU_ASSERT_EQUAL(host->set_upstream(r, "primary"), -1);
    return LINTEL_CONTINUE;
}

static void test_respond(void)
{
    struct lk_instance *in = instance(NULL);
    lk_log_clear();
    struct lk_req *r = lk_req_new("GET", "/");
    handler = deny;
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), 403);
    CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "Content-Type"), "application/json");
    CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "X-Before"), "1");
    CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "X-After"), "2");
    size_t len;
    CU_ASSERT_STRING_EQUAL(lk_resp_body(r, &len), "{\"error\":\"no\"}");
    CU_ASSERT_EQUAL(len, 14);
    lk_req_free(r);

    r = lk_req_new("GET", "/");
    lk_req_set_response(r, 502, "bad gateway");
    lk_req_set_response_header(r, "X-Upstream", "yes");
    handler = replace_upstream;
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), 200);
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "X-Upstream"));
    CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "Content-Type"), "text/html");
    handler = log_only;
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_LOG), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resp_status(r), 200);
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
}

static enum lintel_result respond_without_response(lintel_req *r)
{
    return LINTEL_RESPOND;
}

static enum lintel_result fail(lintel_req *r)
{
    return LINTEL_ERROR;
}

static enum lintel_result unknown_result(lintel_req *r)
{
    return (enum lintel_result)77;
}

static void test_errors_become_500(void)
{
    struct lk_instance *in = instance(NULL);
    lk_log_clear();
    struct lk_req *r = lk_req_new("GET", "/");
    lk_req_set_header(r, "X-Request-Id", "rid-9");
    handler = fail;
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_ERROR);
    CU_ASSERT_EQUAL(lk_resp_status(r), 500);
    CU_ASSERT_PTR_NOT_NULL(strstr(lk_log_lines(), "error [probe/probe] access handler failed"));
    CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "Content-Type"), "application/json");
    CU_ASSERT_STRING_EQUAL(lk_resp_body(r, NULL), "{\"status\":500,\"error\":\"plugin probe/probe "
                                                  "failed\",\"request_id\":\"rid-9\"}\n");
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_req_free(r);

    r = lk_req_new("GET", "/");
    handler = respond_without_response;
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_ERROR);
    CU_ASSERT_EQUAL(lk_violations(), 1);
    handler = unknown_result; /* docs/abi.md: counts as ERROR */
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_BALANCE), LINTEL_ERROR);
    CU_ASSERT_EQUAL(lk_violations(), 2);
    lk_req_free(r);
    lk_log_clear();
    lk_instance_free(in);
}

static enum lintel_result noop(lintel_req *r)
{
    return LINTEL_CONTINUE;
}

static enum lintel_result set_before_response(lintel_req *r)
{
    CU_ASSERT_EQUAL(host->resp_set_status(r, 201), -1); /* no response yet */
    CU_ASSERT_EQUAL(host->resp_header_set(r, "X-Rate", "10", 2), 0);
    CU_ASSERT_EQUAL(host->resp_header_remove(r, "Server"), 0);
    CU_ASSERT(str_is(host->resp_header(r, "X-Rate"), "10"));
    return LINTEL_CONTINUE;
}

static void test_pending_headers_meet_the_response(void)
{
    struct lk_instance *in = instance(NULL);
    struct lk_req *r = lk_req_new("GET", "/");
    handler = set_before_response;
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_CONTINUE);
    lk_req_set_response(r, 200, "hi");
    lk_req_set_response_header(r, "Server", "origin");
    lk_req_set_response_header(r, "X-Rate", "from upstream");
    lk_req_set_response_header(r, "Vary", "Accept");
    handler = noop;
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "X-Rate"), "10");
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "Server"));
    CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "Vary"), "Accept");
    lk_req_free(r);
    lk_instance_free(in);
}

/* ---- bodies ------------------------------------------------------------------------------- */

static int body_calls;
static char seen[64];

static enum lintel_result want_body(lintel_req *r)
{
    body_calls++;
    int rc = host->req_body_buffer(r, 8);
    if (rc == 0)
        return LINTEL_PAUSE;
    if (rc < 0)
        return LINTEL_ERROR;
    struct lintel_str b = host->req_body(r);
    CU_ASSERT_PTR_NOT_NULL(b.ptr);
    snprintf(seen, sizeof(seen), "%.*s", (int)b.len, b.ptr);
    return LINTEL_CONTINUE;
}

/* Runs want_body in ACCESS on a request with body; returns lk_run's result. */
static enum lintel_result run_with_body(struct lk_instance *in, const char *body, int arrived,
                                        int *status)
{
    struct lk_req *r = lk_req_new("POST", "/upload");
    if (body)
        lk_req_set_body(r, body, strlen(body), arrived);
    body_calls = 0;
    seen[0] = '\0';
    handler = want_body;
    enum lintel_result res = lk_run(in, r, LINTEL_PHASE_ACCESS);
    *status = lk_resp_status(r);
    lk_req_free(r);
    return res;
}

static void test_request_body(void)
{
    struct lk_instance *in = instance(NULL);
    int status;
    lk_log_clear();
    CU_ASSERT_EQUAL(run_with_body(in, "12345", 1, &status), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(body_calls, 1);
    CU_ASSERT_STRING_EQUAL(seen, "12345");
    CU_ASSERT_EQUAL(run_with_body(in, "12345", 0, &status), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(body_calls, 2); /* PAUSE, then called again with the body in */
    CU_ASSERT_STRING_EQUAL(seen, "12345");
    CU_ASSERT_EQUAL(run_with_body(in, NULL, 0, &status), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(body_calls, 1);
    CU_ASSERT_STRING_EQUAL(seen, "");
    CU_ASSERT_EQUAL(run_with_body(in, "123456789", 1, &status), LINTEL_RESPOND);
    CU_ASSERT_EQUAL(status, 413);
    CU_ASSERT_EQUAL(run_with_body(in, "123456789", 0, &status), LINTEL_RESPOND);
    CU_ASSERT_EQUAL(status, 413);
    CU_ASSERT_EQUAL(body_calls, 1);
    CU_ASSERT_EQUAL(lk_violations(), 0);

    struct lk_req *r = lk_req_new("POST", "/");
    lk_req_set_body(r, "x", 1, 1);
    handler = want_body;
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_ERROR); /* too late */
    lk_req_free(r);
    lk_log_clear();
    lk_instance_free(in);
}

static char relayed[64];
static int chunk_calls, last_at;

static enum lintel_result see_chunk(lintel_req *r)
{
    struct lintel_str c = host->resp_body_chunk(r);
    chunk_calls++;
    strncat(relayed, c.ptr ? c.ptr : "", c.len);
    if (host->resp_body_last(r))
        last_at = chunk_calls;
    return LINTEL_CONTINUE;
}

static void test_response_body_chunks(void)
{
    struct lk_instance *in = instance(NULL);
    struct lk_req *r = lk_req_new("GET", "/");
    lk_req_set_response(r, 200, "abcdefgh");
    lk_req_set_chunk_size(r, 3);
    handler = see_chunk;
    relayed[0] = '\0';
    chunk_calls = last_at = 0;
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_BODY), LINTEL_CONTINUE);
    CU_ASSERT_STRING_EQUAL(relayed, "abcdefgh");
    CU_ASSERT_EQUAL(chunk_calls, 4); /* abc def gh, then the empty last call */
    CU_ASSERT_EQUAL(last_at, 4);
    lk_req_free(r);

    r = lk_req_new("GET", "/");
    handler = deny; /* a plugin's own response is written at once: no body phase */
    lk_run(in, r, LINTEL_PHASE_ACCESS);
    handler = see_chunk;
    chunk_calls = 0;
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_BODY), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(chunk_calls, 0);
    lk_req_free(r);
    lk_instance_free(in);
}

static enum lintel_result read_info(lintel_req *r)
{
    struct lintel_req_info info = {.struct_size = sizeof(info)};
    CU_ASSERT_EQUAL(host->req_info(r, &info), 0);
    CU_ASSERT_EQUAL(info.struct_size, sizeof(info));
    CU_ASSERT_EQUAL(info.status, 404);
    CU_ASSERT_EQUAL(info.duration_us, 20000);
    CU_ASSERT_EQUAL(info.bytes_out, 4);
    CU_ASSERT(str_is(info.host, "api.example.com"));
    CU_ASSERT(str_is(info.target, "/a?b=1"));
    CU_ASSERT(str_is(info.upstream, "users"));
    CU_ASSERT_EQUAL(host->req_worker(r), 0);

    /* An older plugin's smaller struct gets only what it has room for. */
    struct lintel_req_info small = {.struct_size = offsetof(struct lintel_req_info, bytes_in)};
    small.bytes_in = 77;
    CU_ASSERT_EQUAL(host->req_info(r, &small), 0);
    CU_ASSERT_EQUAL(small.struct_size, offsetof(struct lintel_req_info, bytes_in));
    CU_ASSERT_EQUAL(small.status, 404);
    CU_ASSERT_EQUAL(small.bytes_in, 77);
    return LINTEL_CONTINUE;
}

static void test_req_info(void)
{
    struct lk_instance *in = instance(NULL);
    struct lk_req *r = lk_req_new("GET", "/a?b=1");
    lk_req_set_header(r, "Host", "api.example.com");
    lk_req_set_upstream(r, "users");
    lk_req_set_response(r, 404, "gone");
    lk_advance(20);
    handler = read_info;
    lk_run(in, r, LINTEL_PHASE_LOG);
    lk_req_free(r);
    lk_instance_free(in);
}

/* ---- consumers, secrets, reopen ----------------------------------------------------------- */

static int read_consumers(const lintel_cfg *config, lintel_cfg_error *err)
{
    CU_ASSERT_EQUAL(host->consumer_count(probe_self), 2);
    struct lintel_consumer c = {.struct_size = sizeof(c)};
    CU_ASSERT_EQUAL(host->consumer_at(probe_self, 1, &c), 0);
    CU_ASSERT_STRING_EQUAL(c.name, "bob");
    CU_ASSERT_PTR_NULL(c.id);
    const lintel_cfg *keys = host->cfg_get(c.credentials, "keys");
    CU_ASSERT_EQUAL(host->cfg_len(keys), 1);
    CU_ASSERT_EQUAL(host->consumer_at(probe_self, 2, &c), -1);
    host->cfg_error(err, host->cfg_at(keys, 0), "too short");
    return -1;
}

static void test_consumers(void)
{
    char err[256];
    CU_ASSERT_EQUAL(lk_set_consumers("[{ name: alice, id: '1' },\n"
                                     " { name: bob, credentials: { keys: [k] } }]",
                                     err, sizeof(err)),
                    0);
    probe_on_create = read_consumers;
    CU_ASSERT_PTR_NULL(lk_instance_new(plugin, NULL, err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(err, "2:37: consumers[1].credentials.keys[0]: too short");
    probe_on_create = NULL;

    CU_ASSERT_EQUAL(lk_set_consumers("[{ name: a }, { name: a }]", err, sizeof(err)), -1);
    CU_ASSERT_STRING_EQUAL(err, "1:15: consumers[1]: duplicate consumer name \"a\"");
    CU_ASSERT_EQUAL(lk_set_consumers("[{ id: x }]", err, sizeof(err)), -1);
    CU_ASSERT_STRING_EQUAL(err, "1:2: consumers[0].name: required key is missing");
    CU_ASSERT_EQUAL(lk_set_consumers("[{ name: a, key: x }]", err, sizeof(err)), -1);
    CU_ASSERT_STRING_EQUAL(err, "1:13: consumers[0].key: unknown key");
    CU_ASSERT_EQUAL(lk_set_consumers("[{ name: a, credentials: [x] }]", err, sizeof(err)), -1);
    CU_ASSERT_STRING_EQUAL(err, "1:26: consumers[0].credentials: must be a map");
    CU_ASSERT_EQUAL(lk_set_consumers(NULL, err, sizeof(err)), 0);
    struct lk_instance *in = instance(NULL);
    CU_ASSERT_EQUAL(host->consumer_count(probe_self), 0);
    lk_instance_free(in);
}

static int read_secrets(const lintel_cfg *c, lintel_cfg_error *err)
{
    char buf[16];
    CU_ASSERT_EQUAL(host->secret(probe_self, host->cfg_get(c, "literal"), buf, sizeof(buf)), 5);
    CU_ASSERT_EQUAL(memcmp(buf, "plain", 5), 0);
    CU_ASSERT_EQUAL(host->secret(probe_self, host->cfg_get(c, "env"), buf, 3), 7); /* cut */
    CU_ASSERT_EQUAL(memcmp(buf, "fro", 3), 0);
    CU_ASSERT_EQUAL(host->secret(probe_self, host->cfg_get(c, "file"), buf, sizeof(buf)), 4);
    CU_ASSERT_EQUAL(memcmp(buf, "disk", 4), 0); /* the trailing newline dropped */
    CU_ASSERT_EQUAL(host->secret(probe_self, host->cfg_get(c, "unset"), buf, sizeof(buf)), -1);
    CU_ASSERT_EQUAL(host->secret(probe_self, host->cfg_get(c, "list"), buf, sizeof(buf)), -1);
    return 0;
}

static void test_secrets_and_reopen(void)
{
    char path[] = "/tmp/lintel-testkit-secret-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, "disk\n", 5), 5);
    close(fd);
    setenv("LINTEL_TESTKIT_SECRET", "fromenv", 1);
    unsetenv("LINTEL_TESTKIT_UNSET");
    char yaml[256];
    snprintf(yaml, sizeof(yaml),
             "{ literal: plain, env: 'env:LINTEL_TESTKIT_SECRET', file: 'file:%s',"
             " unset: 'env:LINTEL_TESTKIT_UNSET', list: [x] }",
             path);
    char err[256];
    probe_on_create = read_secrets;
    struct lk_instance *in = lk_instance_new(plugin, yaml, err, sizeof(err));
    probe_on_create = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    unlink(path);

    reopens = 0;
    lk_instance_reopen(in);
    CU_ASSERT_EQUAL(reopens, 1);
    lk_instance_free(in);
}

static CU_TestInfo testkit_tests[] = {
    {"ABI checks refuse bad descriptors", test_abi_checks},
    {"load errors name the file", test_load_errors},
    {"create, worker_init, worker_fini, destroy", test_instance_lifecycle},
    {"config readers; cfg_error key path and position", test_config_readers_and_error_path},
    {"create failures", test_create_failures},
    {"request functions", test_request_functions},
    {"ctx cleanup runs once, at the end", test_ctx_cleanup_once},
    {"respond and the response head", test_respond},
    {"ERROR, bad RESPOND, unknown result", test_errors_become_500},
    {"headers set before the response apply to it", test_pending_headers_meet_the_response},
    {"request body: at once, later, too large", test_request_body},
    {"response body chunks", test_response_body_chunks},
    {"req_info and req_worker", test_req_info},
    {"consumers", test_consumers},
    {"secrets, reopen", test_secrets_and_reopen},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"testkit", probe_suite_init, probe_suite_clean, NULL, NULL, testkit_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return probe_run(suites);
}
