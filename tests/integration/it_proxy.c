/* Proxying through the real gateway to the real origin: forwarded headers, request ids,
 * hop-by-hop headers, keepalive and pipelining, body framing both ways, bodiless answers,
 * 100-continue, and the JSON errors for what cannot be proxied. Each test starts its own origin
 * and gateway so that counts (connections at the origin) start from zero. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct it_proc *origin, *gw;

/* Routes: /sleep/ to an upstream with a 500 ms read timeout, /dead to a port nobody listens
 * on, /get-only for GET and HEAD only, the origin's other endpoints to the origin; anything else
 * has no route. */
static const char config_fmt[] = IT_CONFIG_HEAD
    "upstreams:\n"
    "  origin:\n"
    "    targets:\n"
    "      - address: \"127.0.0.1:%d\"\n"
    "    keepalive: 16\n"
    "  slow:\n"
    "    targets:\n"
    "      - address: \"127.0.0.1:%d\"\n"
    "    retries: 0\n"
    "    timeouts: { read: 500ms }\n"
    "  dead:\n"
    "    targets:\n"
    "      - address: \"127.0.0.1:%d\"\n"
    "    timeouts: { connect: 1s }\n"
    "routes:\n"
    "  - name: slow\n"
    "    match: { paths: [\"/sleep/\"] }\n"
    "    upstream: slow\n"
    "  - name: dead\n"
    "    match: { paths: [\"/dead\"] }\n"
    "    upstream: dead\n"
    "  - name: get-only\n"
    "    match: { paths: [\"/get-only\"], methods: [GET, HEAD] }\n"
    "    upstream: origin\n"
    "  - name: origin\n"
    "    match:\n"
    "      paths: [\"/echo\", \"/hop\", \"/stats\", \"/status/\", \"/bytes/\", \"/chunked/\",\n"
    "              \"/close/\", \"/bad/\", \"/reset\"]\n"
    "    upstream: origin\n";

/* Starts origin "A" and a gateway in front of it; the calling test stops (fatal assertion)
 * when either does not come up. */
static void start(void)
{
    origin = it_origin_start("A");
    CU_ASSERT_PTR_NOT_NULL_FATAL(origin);
    int port = it_free_port(), dead = it_free_port();
    const char *conf = it_temp_path("proxy.yaml");
    CU_ASSERT_FATAL(port > 0 && dead > 0 && conf);
    CU_ASSERT_FATAL(it_write_file(conf, config_fmt, port, origin->port, origin->port, dead) == 0);
    gw = it_lintel_start(conf, port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gw);
}

static const char *url(const char *path)
{
    return it_url(gw->port, path);
}

static bool has_no_json_key(const char *json, const char *path)
{
    char v[256];
    if (it_json_get(json, path, v, sizeof v) == 0) {
        fprintf(stderr, "it_proxy: %s should be absent, is \"%s\"\n", path, v);
        return false;
    }
    return true;
}

/* The gateway's error answer: status, a JSON body {"status":N,"error":"...","request_id":"..."}
 * served as application/json; error must contain needle when given. */
static void check_error(const struct it_response *r, int status, const char *needle)
{
    char error[512], rid[256];
    const char *ctype = it_response_header(r, "Content-Type");
    CU_ASSERT_EQUAL(r->status, status);
    CU_ASSERT(ctype && strncmp(ctype, "application/json", 16) == 0);
    CU_ASSERT_EQUAL(it_json_int(r->body.data, "status"), status);
    CU_ASSERT(it_json_get(r->body.data, "error", error, sizeof error) == 0 && error[0]);
    CU_ASSERT(it_json_get(r->body.data, "request_id", rid, sizeof rid) == 0 && rid[0]);
    if (needle && !strstr(error, needle)) {
        fprintf(stderr, "it_proxy: error \"%s\" does not mention \"%s\"\n", error, needle);
        CU_FAIL("error message");
    }
    if (r->status != status)
        fprintf(stderr, "it_proxy: got %d, want %d: %s\n", r->status, status, r->body.data);
}

static void test_get_forwarded_headers(void)
{
    start();
    struct it_http h;
    struct it_response r;
    const char *hdrs[] = {"Host: api.example.test", NULL};
    char rid[256], via[256];
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    CU_ASSERT_FATAL(it_http_get(&h, url("/echo/a?b=1"), hdrs, &r) == 0);
    const char *body = r.body.data;
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_json_eq(body, "origin", "A"));
    CU_ASSERT(it_json_eq(body, "method", "GET"));
    CU_ASSERT(it_json_eq(body, "target", "/echo/a?b=1"));
    CU_ASSERT(it_json_eq(body, "headers.x-forwarded-for", "127.0.0.1"));
    CU_ASSERT(it_json_eq(body, "headers.x-forwarded-proto", "http"));
    CU_ASSERT(it_json_eq(body, "headers.x-forwarded-host", "api.example.test"));
    CU_ASSERT(it_json_get(body, "headers.via", via, sizeof via) == 0 && strstr(via, "lintel"));
    CU_ASSERT(it_json_get(body, "headers.x-request-id", rid, sizeof rid) == 0 && rid[0]);
    /* The client sees the origin's answer, with the same request id and a Via of its own. */
    const char *crid = it_response_header(&r, "X-Request-Id");
    const char *cvia = it_response_header(&r, "Via");
    CU_ASSERT(crid && strcmp(crid, rid) == 0);
    CU_ASSERT(cvia && strstr(cvia, "lintel"));
    CU_ASSERT(it_response_header(&r, "X-Origin") &&
              strcmp(it_response_header(&r, "X-Origin"), "A") == 0);
    it_response_free(&r);
    it_http_free(&h);
}

static void test_client_request_id_kept(void)
{
    start();
    struct it_http h;
    struct it_response r;
    const char *hdrs[] = {"X-Request-Id: it-fixed-0001", NULL};
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    CU_ASSERT_FATAL(it_http_get(&h, url("/echo/rid"), hdrs, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_json_eq(r.body.data, "headers.x-request-id", "it-fixed-0001"));
    const char *crid = it_response_header(&r, "X-Request-Id");
    CU_ASSERT(crid && strcmp(crid, "it-fixed-0001") == 0);
    CU_ASSERT_EQUAL(it_response_header_count(&r, "X-Request-Id"), 1);
    it_response_free(&r);
    it_http_free(&h);
}

static void test_hop_by_hop_request_headers_removed(void)
{
    start();
    static const char req[] = "GET /echo/hop HTTP/1.1\r\n"
                              "Host: x\r\n"
                              "Connection: close, X-Secret\r\n"
                              "X-Secret: 1\r\n"
                              "Keep-Alive: timeout=5\r\n"
                              "TE: trailers\r\n"
                              "Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"
                              "Proxy-Connection: keep-alive\r\n"
                              "X-Kept: yes\r\n"
                              "\r\n";
    struct it_buf out = {0};
    struct it_response r;
    char conn[256];
    CU_ASSERT_EQUAL(it_raw_exchange(gw->port, req, sizeof req - 1, 10000, &out), IT_READ_EOF);
    CU_ASSERT_FATAL(it_response_parse(out.data, out.len, false, true, &r) > 0);
    const char *body = r.body.data;
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_json_eq(body, "headers.x-kept", "yes"));
    CU_ASSERT(has_no_json_key(body, "headers.x-secret"));
    CU_ASSERT(has_no_json_key(body, "headers.keep-alive"));
    CU_ASSERT(has_no_json_key(body, "headers.te"));
    CU_ASSERT(has_no_json_key(body, "headers.proxy-authorization"));
    CU_ASSERT(has_no_json_key(body, "headers.proxy-connection"));
    if (it_json_get(body, "headers.connection", conn, sizeof conn) == 0)
        CU_ASSERT(!it_header_has_token(conn, "x-secret"));
    it_response_free(&r);
    it_buf_free(&out);
}

static void test_hop_by_hop_response_headers_removed(void)
{
    start();
    struct it_http h;
    struct it_response r;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    CU_ASSERT_FATAL(it_http_get(&h, url("/hop"), NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_json_eq(r.body.data, "origin", "A"));
    CU_ASSERT_PTR_NULL(it_response_header(&r, "X-Hop-Secret"));
    CU_ASSERT_PTR_NULL(it_response_header(&r, "Keep-Alive"));
    CU_ASSERT_PTR_NULL(it_response_header(&r, "Proxy-Connection"));
    const char *conn = it_response_header(&r, "Connection");
    CU_ASSERT(!conn || !it_header_has_token(conn, "X-Hop-Secret"));
    it_response_free(&r);
    it_http_free(&h);
}

/* Connections the origin accepted so far (the query itself included: it uses its own). */
static long long origin_connections(void)
{
    static const char req[] = "GET /stats HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n";
    struct it_buf out = {0};
    struct it_response r;
    long long n = -1;
    if (it_raw_exchange(origin->port, req, sizeof req - 1, 5000, &out) == IT_READ_EOF &&
        it_response_parse(out.data, out.len, false, true, &r) > 0) {
        n = it_json_int(r.body.data, "connections");
        it_response_free(&r);
    }
    it_buf_free(&out);
    return n;
}

static void test_keepalive_reuse_both_sides(void)
{
    start();
    struct it_http h;
    long long before = origin_connections();
    long connects = 0;
    int ok = 0;
    char first_conn[32] = "";
    bool same_conn = true;
    CU_ASSERT_FATAL(before > 0);
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    for (int i = 0; i < 50; i++) {
        struct it_response r;
        char path[64];
        snprintf(path, sizeof path, "/echo/ka/%d", i);
        if (it_http_get(&h, url(path), NULL, &r) < 0)
            continue;
        ok += r.status == 200;
        connects += r.connects;
        const char *c = it_response_header(&r, "X-Origin-Conn");
        if (i == 0 && c)
            snprintf(first_conn, sizeof first_conn, "%s", c);
        same_conn = same_conn && c && strcmp(c, first_conn) == 0;
        it_response_free(&r);
    }
    it_http_free(&h);
    CU_ASSERT_EQUAL(ok, 50);
    CU_ASSERT_EQUAL(connects, 1); /* one client connection for all 50 */
    CU_ASSERT(same_conn);         /* one upstream connection for all 50 */
    /* The gateway opened exactly one connection; the second /stats query is the other. */
    CU_ASSERT_EQUAL(origin_connections() - before, 2);
}

static void test_pipelined_requests_answered_in_order(void)
{
    start();
    static const char reqs[] = "GET /sleep/200 HTTP/1.1\r\nHost: x\r\n\r\n"
                               "GET /bytes/1000 HTTP/1.1\r\nHost: x\r\n\r\n"
                               "GET /echo/third HTTP/1.1\r\nHost: x\r\n\r\n";
    struct it_conn c;
    struct it_response r;
    char fnv[17];
    CU_ASSERT_FATAL(it_conn_open(&c, gw->port) == 0);
    CU_ASSERT_FATAL(it_conn_send(&c, reqs, sizeof reqs - 1) == 0);

    CU_ASSERT_FATAL(it_conn_read_response(&c, false, 10000, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_json_eq(r.body.data, "target", "/sleep/200"));
    it_response_free(&r);

    CU_ASSERT_FATAL(it_conn_read_response(&c, false, 10000, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.body_bytes, 1000);
    it_fnv_hex(r.body_fnv, fnv);
    CU_ASSERT(it_response_header(&r, "X-Body-Fnv") &&
              strcmp(it_response_header(&r, "X-Body-Fnv"), fnv) == 0);
    it_response_free(&r);

    CU_ASSERT_FATAL(it_conn_read_response(&c, false, 10000, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_json_eq(r.body.data, "target", "/echo/third"));
    it_response_free(&r);
    it_conn_close(&c);
}

/* More pipelined requests than the gateway reads ahead (header_bytes 32k + 64 KiB): reading
 * stops at that watermark and resumes as requests are answered (core/fastio.c keeps the mark),
 * so every request must still get its answer, in order. A thread sends while this one reads. */
#define PIPELINED 6000

struct pipeline_send {
    int fd;
    const char *data;
    size_t len;
    int rc;
};

static void *pipeline_sender(void *arg)
{
    struct pipeline_send *ps = arg;
    struct it_conn c = {.fd = ps->fd};
    ps->rc = it_conn_send(&c, ps->data, ps->len);
    return NULL;
}

static void test_pipelining_past_read_watermark(void)
{
    start();
    static const char one[] = "GET /echo/p HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t n1 = sizeof one - 1, len = n1 * PIPELINED;
    char *data = malloc(len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    for (size_t i = 0; i < PIPELINED; i++)
        memcpy(data + i * n1, one, n1);
    CU_ASSERT_FATAL(len > (32 + 64) * 1024);
    struct it_conn c;
    CU_ASSERT_FATAL(it_conn_open(&c, gw->port) == 0);
    struct pipeline_send ps = {.fd = c.fd, .data = data, .len = len, .rc = -1};
    pthread_t t;
    CU_ASSERT_FATAL(pthread_create(&t, NULL, pipeline_sender, &ps) == 0);
    int answered = 0;
    struct it_response r;
    while (answered < PIPELINED && it_conn_read_response(&c, false, 10000, &r) == 0) {
        if (r.status == 200 && it_json_eq(r.body.data, "target", "/echo/p"))
            answered++;
        it_response_free(&r);
    }
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(ps.rc, 0);
    CU_ASSERT_EQUAL(answered, PIPELINED);
    it_conn_close(&c);
    free(data);
}

static void test_chunked_request_body(void)
{
    start();
    struct it_conn c;
    struct it_response r;
    char want[17];
    it_fnv_hex(it_fnv1a(IT_FNV_INIT, "hello world", 11), want);
    CU_ASSERT_FATAL(it_conn_open(&c, gw->port) == 0);
    /* Sent in pieces, so that the gateway sees the body arrive in parts. */
    CU_ASSERT(it_conn_send_str(&c, "POST /echo/chunked HTTP/1.1\r\nHost: x\r\n"
                                   "Transfer-Encoding: chunked\r\n\r\n") == 0);
    CU_ASSERT(it_conn_send_str(&c, "5\r\nhello\r\n") == 0);
    CU_ASSERT(it_conn_send_str(&c, "6;note=1\r\n world\r\n") == 0);
    CU_ASSERT(it_conn_send_str(&c, "0\r\n\r\n") == 0);
    CU_ASSERT_FATAL(it_conn_read_response(&c, false, 10000, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(it_json_int(r.body.data, "body_bytes"), 11);
    CU_ASSERT(it_json_eq(r.body.data, "body_fnv", want));
    it_response_free(&r);
    it_conn_close(&c);
}

/* The decoded body has n bytes and hashes to the origin's X-Body-Fnv. */
static void check_pattern_body(const struct it_response *r, uint64_t n)
{
    char fnv[17];
    const char *want = it_response_header(r, "X-Body-Fnv");
    it_fnv_hex(r->body_fnv, fnv);
    CU_ASSERT_EQUAL(r->body_bytes, n);
    CU_ASSERT(want && strcmp(want, fnv) == 0);
}

static void test_chunked_response_intact(void)
{
    start();
    struct it_http h;
    struct it_response r;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    CU_ASSERT_FATAL(it_http_get(&h, url("/chunked/100000"), NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    check_pattern_body(&r, 100000);
    it_response_free(&r);
    it_http_free(&h);
}

static void test_read_to_close_rechunked_for_http11(void)
{
    start();
    struct it_conn c;
    struct it_response r;
    CU_ASSERT_FATAL(it_conn_open(&c, gw->port) == 0);
    CU_ASSERT(it_conn_send_str(&c, "GET /close/50000 HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    /* Complete without the connection closing: the gateway framed it with chunks. */
    CU_ASSERT_FATAL(it_conn_read_response(&c, false, 10000, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(r.chunked);
    CU_ASSERT(!r.to_close);
    check_pattern_body(&r, 50000);
    it_response_free(&r);
    /* And the client connection stays usable. */
    CU_ASSERT(it_conn_send_str(&c, "GET /echo/after HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CU_ASSERT_FATAL(it_conn_read_response(&c, false, 10000, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_json_eq(r.body.data, "target", "/echo/after"));
    it_response_free(&r);
    it_conn_close(&c);
}

static void test_read_to_close_for_http10(void)
{
    start();
    static const char req[] = "GET /close/50000 HTTP/1.0\r\nHost: x\r\n\r\n";
    struct it_buf out = {0};
    struct it_response r;
    CU_ASSERT_EQUAL(it_raw_exchange(gw->port, req, sizeof req - 1, 10000, &out), IT_READ_EOF);
    CU_ASSERT_FATAL(it_response_parse(out.data, out.len, false, true, &r) > 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(!r.chunked); /* an HTTP/1.0 client does not know chunked */
    CU_ASSERT_PTR_NULL(it_response_header(&r, "Transfer-Encoding"));
    check_pattern_body(&r, 50000);
    it_response_free(&r);
    it_buf_free(&out);
}

/* Sends path (with method) on c, reads the answer and checks that it has status and no body:
 * the next answer on c parses only if no body bytes were sent. */
static void bodiless(struct it_conn *c, const char *method, const char *path, int status)
{
    char req[256];
    struct it_response r;
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\n\r\n", method, path);
    CU_ASSERT_FATAL(it_conn_send_str(c, req) == 0);
    CU_ASSERT_FATAL(it_conn_read_response(c, strcmp(method, "HEAD") == 0, 10000, &r) == 0);
    CU_ASSERT_EQUAL(r.status, status);
    it_response_free(&r);
}

static void after_bodiless(struct it_conn *c)
{
    struct it_response r;
    CU_ASSERT(it_conn_send_str(c, "GET /echo/after HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CU_ASSERT_FATAL(it_conn_read_response(c, false, 10000, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_json_eq(r.body.data, "target", "/echo/after"));
    it_response_free(&r);
    CU_ASSERT_EQUAL(c->in.len, 0); /* nothing stray after it */
}

static void test_head_gets_no_body(void)
{
    start();
    struct it_conn c;
    CU_ASSERT_FATAL(it_conn_open(&c, gw->port) == 0);
    bodiless(&c, "HEAD", "/bytes/1000", 200);
    bodiless(&c, "HEAD", "/echo/head", 200);
    bodiless(&c, "HEAD", "/chunked/1000", 200);
    after_bodiless(&c);
    it_conn_close(&c);
}

static void test_204_and_304_get_no_body(void)
{
    start();
    struct it_conn c;
    CU_ASSERT_FATAL(it_conn_open(&c, gw->port) == 0);
    bodiless(&c, "GET", "/status/204", 204);
    bodiless(&c, "GET", "/status/304", 304);
    after_bodiless(&c);
    it_conn_close(&c);
}

static void test_expect_100_continue(void)
{
    start();
    struct it_conn c;
    struct it_response r;
    char want[17];
    it_fnv_hex(it_fnv1a(IT_FNV_INIT, "hello", 5), want);
    CU_ASSERT_FATAL(it_conn_open(&c, gw->port) == 0);
    CU_ASSERT(it_conn_send_str(&c, "POST /echo/expect HTTP/1.1\r\nHost: x\r\n"
                                   "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n") == 0);
    /* The body is sent only after the interim answer, as a client that waits would. */
    CU_ASSERT_FATAL(it_conn_read_response(&c, false, 10000, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 100);
    CU_ASSERT_EQUAL(r.minor, 1);
    it_response_free(&r);
    CU_ASSERT(it_conn_send_str(&c, "hello") == 0);
    CU_ASSERT_FATAL(it_conn_read_response(&c, false, 10000, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(it_json_int(r.body.data, "body_bytes"), 5);
    CU_ASSERT(it_json_eq(r.body.data, "body_fnv", want));
    it_response_free(&r);
    it_conn_close(&c);
}

static void test_no_route_404(void)
{
    start();
    struct it_http h;
    struct it_response r;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    CU_ASSERT_FATAL(it_http_get(&h, url("/nothing-here"), NULL, &r) == 0);
    check_error(&r, 404, NULL);
    it_response_free(&r);
    it_http_free(&h);
}

static void test_wrong_method_405(void)
{
    start();
    struct it_http h;
    struct it_response r;
    struct it_http_req q = {.url = url("/get-only"), .body = "x", .body_len = 1};
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    CU_ASSERT_FATAL(it_http_do(&h, &q, &r) == 0);
    check_error(&r, 405, NULL);
    it_response_free(&r);
    /* The same path with an allowed method is proxied. */
    CU_ASSERT_FATAL(it_http_get(&h, url("/get-only"), NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    it_response_free(&r);
    it_http_free(&h);
}

static void test_upstream_refused_502(void)
{
    start();
    struct it_http h;
    struct it_response r;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    CU_ASSERT_FATAL(it_http_get(&h, url("/dead"), NULL, &r) == 0);
    check_error(&r, 502, "connect");
    it_response_free(&r);
    it_http_free(&h);
}

static void test_upstream_read_timeout_504(void)
{
    start();
    struct it_http h;
    struct it_response r;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    CU_ASSERT_FATAL(it_http_get(&h, url("/sleep/3000"), NULL, &r) == 0);
    check_error(&r, 504, NULL);
    it_response_free(&r);
    it_http_free(&h);
}

static void test_bad_upstream_answers_502(void)
{
    static const char *const paths[] = {"/bad/cl-te", "/bad/dup-cl", "/bad/garbage", "/reset"};
    start();
    struct it_http h;
    struct it_response r;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        CU_ASSERT_FATAL(it_http_get(&h, url(paths[i]), NULL, &r) == 0);
        if (r.status != 502)
            fprintf(stderr, "it_proxy: %s gave %d\n", paths[i], r.status);
        check_error(&r, 502, NULL);
        /* Nothing of the broken answer reaches the client. */
        CU_ASSERT_PTR_NULL(strstr(r.body.data, "hello"));
        CU_ASSERT_PTR_NULL(strstr(r.body.data, "HELLO"));
        it_response_free(&r);
    }
    CU_ASSERT_FATAL(it_http_get(&h, url("/echo/after"), NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    it_response_free(&r);
    it_http_free(&h);
}

static CU_TestInfo tests[] = {
    {"GET is proxied with X-Forwarded-*, Via, X-Request-Id", test_get_forwarded_headers},
    {"a client X-Request-Id is kept", test_client_request_id_kept},
    {"hop-by-hop request headers are removed", test_hop_by_hop_request_headers_removed},
    {"hop-by-hop response headers are removed", test_hop_by_hop_response_headers_removed},
    {"50 requests: one client and one upstream connection", test_keepalive_reuse_both_sides},
    {"pipelined requests are answered in order", test_pipelined_requests_answered_in_order},
    {"6000 pipelined requests, past the read watermark, all answered",
     test_pipelining_past_read_watermark},
    {"a chunked request body reaches the origin", test_chunked_request_body},
    {"a chunked response reaches the client intact", test_chunked_response_intact},
    {"read-to-close is re-chunked for HTTP/1.1", test_read_to_close_rechunked_for_http11},
    {"read-to-close stays read-to-close for HTTP/1.0", test_read_to_close_for_http10},
    {"HEAD gets no body", test_head_gets_no_body},
    {"204 and 304 get no body", test_204_and_304_get_no_body},
    {"Expect: 100-continue gets 100 then the answer", test_expect_100_continue},
    {"no route: 404 JSON", test_no_route_404},
    {"path matches, method does not: 405 JSON", test_wrong_method_405},
    {"upstream refuses the connection: 502 JSON", test_upstream_refused_502},
    {"upstream read timeout: 504 JSON", test_upstream_read_timeout_504},
    {"malformed or reset upstream answers: 502 JSON", test_bad_upstream_answers_502},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"proxy", NULL, it_suite_cleanup, it_test_setup, it_test_teardown, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return it_main(suites, 240);
}
