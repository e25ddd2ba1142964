/* Strict request framing at the gateway: each malformed or over-limit request, sent over a raw
 * socket, gets its error status and then the connection is closed; afterwards the gateway still
 * serves a normal request. One gateway and one origin serve the whole suite. */
#include <stdio.h>
#include <string.h>

#include "harness.h"

static struct it_proc *origin, *gw;

static const char config_fmt[] =
    IT_CONFIG_HEAD "limits: { header_bytes: 32k, headers: 100, body_bytes: 1m }\n"
                   "timeouts: { client_header: 1s }\n"
                   "upstreams:\n"
                   "  origin:\n"
                   "    targets:\n"
                   "      - address: \"127.0.0.1:%d\"\n"
                   "routes:\n"
                   "  - name: all\n"
                   "    match: { paths: [\"/\"] }\n"
                   "    upstream: origin\n";

static int suite_init(void)
{
    int port = it_free_port();
    const char *conf = it_temp_path("framing.yaml");
    if (!(origin = it_origin_start("A")) || port < 0 || !conf ||
        it_write_file(conf, config_fmt, port, origin->port) < 0 ||
        !(gw = it_lintel_start(conf, port)))
        return -1;
    return 0;
}

static void serves_a_normal_request(void)
{
    static const char req[] = "GET /normal HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    struct it_buf out = {0};
    struct it_response r;
    CU_ASSERT_EQUAL(it_raw_exchange(gw->port, req, sizeof req - 1, 10000, &out), IT_READ_EOF);
    CU_ASSERT_FATAL(it_response_parse(out.data, out.len, false, true, &r) > 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_json_eq(r.body.data, "target", "/normal"));
    it_response_free(&r);
    it_buf_free(&out);
}

/* Sends req[0..len) on a new connection; the answer must start with "HTTP/1.1 " status and the
 * gateway must then close the connection. */
static void rejected(const char *req, size_t len, int status)
{
    struct it_buf out = {0};
    char want[32];
    snprintf(want, sizeof want, "HTTP/1.1 %d", status);
    enum it_read_end end = it_raw_exchange(gw->port, req, len, 10000, &out);
    bool answered = out.data && strncmp(out.data, want, strlen(want)) == 0;
    if (!answered)
        fprintf(stderr, "it_framing: want \"%s\", got \"%.200s\" for:\n%.300s\n", want,
                out.data ? out.data : "", req);
    CU_ASSERT(answered);
    /* Closed by the gateway (a reset counts: the answer was read before it). */
    CU_ASSERT(end == IT_READ_EOF || end == IT_READ_RESET);
    if (end == IT_READ_TIMEOUT)
        fprintf(stderr, "it_framing: connection still open after the %d\n", status);
    it_buf_free(&out);
}

#define REJECTED(lit, status) rejected(lit, sizeof(lit) - 1, status)

static void test_content_length_with_transfer_encoding(void)
{
    REJECTED("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
             "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
             400);
    serves_a_normal_request();
}

static void test_duplicate_content_length(void)
{
    REJECTED("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
             "hello!",
             400);
    REJECTED("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"
             "hello",
             400);
    serves_a_normal_request();
}

static void test_malformed_content_length(void)
{
    REJECTED("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400);
    REJECTED("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400);
    REJECTED("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", 400);
    REJECTED("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n", 400);
    REJECTED("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello", 400);
    REJECTED("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400);
    serves_a_normal_request();
}

static void test_transfer_encoding_gzip(void)
{
    REJECTED("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400);
    serves_a_normal_request();
}

static void test_transfer_encoding_gzip_chunked(void)
{
    REJECTED("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
             "0\r\n\r\n",
             400);
    serves_a_normal_request();
}

static void test_obs_fold(void)
{
    REJECTED("GET /x HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n", 400);
    REJECTED("GET /x HTTP/1.1\r\nHost: x\r\nX-A: one\r\n\ttwo\r\n\r\n", 400);
    serves_a_normal_request();
}

static void test_bare_lf(void)
{
    REJECTED("GET /x HTTP/1.1\r\nHost: x\r\nX-A: b\n\r\n", 400);
    serves_a_normal_request();
}

static void test_bare_cr(void)
{
    REJECTED("GET /x HTTP/1.1\r\nHost: x\r\nX-A: b\rc\r\n\r\n", 400);
    serves_a_normal_request();
}

static void test_nul_in_header_name(void)
{
    REJECTED("GET /x HTTP/1.1\r\nHost: x\r\nX-\0A: b\r\n\r\n", 400);
    serves_a_normal_request();
}

static void test_nul_in_header_value(void)
{
    REJECTED("GET /x HTTP/1.1\r\nHost: x\r\nX-A: b\0c\r\n\r\n", 400);
    serves_a_normal_request();
}

static void test_control_char_first_in_value(void)
{
    REJECTED("GET /x HTTP/1.1\r\nHost: x\r\nX-A: \001b\r\n\r\n", 400);
    serves_a_normal_request();
}

static void test_space_before_colon(void)
{
    REJECTED("GET /x HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n", 400);
    serves_a_normal_request();
}

static void test_missing_host_http11(void)
{
    REJECTED("GET /x HTTP/1.1\r\nX-A: b\r\n\r\n", 400);
    serves_a_normal_request();
}

static void test_duplicate_host(void)
{
    REJECTED("GET /x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", 400);
    serves_a_normal_request();
}

static void test_malformed_chunk_size(void)
{
    REJECTED("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "zz\r\nhello\r\n0\r\n\r\n",
             400);
    REJECTED("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "\r\nhello\r\n0\r\n\r\n",
             400);
    REJECTED("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "10000000000000005\r\nhello\r\n0\r\n\r\n",
             400);
    serves_a_normal_request();
}

static void test_bad_chunk_extension(void)
{
    REJECTED("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5;=x\r\nhello\r\n0\r\n\r\n",
             400);
    REJECTED("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5;a@b=c\r\nhello\r\n0\r\n\r\n",
             400);
    serves_a_normal_request();
}

static void test_http2_version_505(void)
{
    REJECTED("GET /x HTTP/2.0\r\nHost: x\r\n\r\n", 505);
    serves_a_normal_request();
}

static void test_header_too_large_431(void)
{
    struct it_buf req = {0};
    static const char head[] = "GET /x HTTP/1.1\r\nHost: x\r\nX-Big: ";
    it_buf_add(&req, head, sizeof head - 1);
    for (int i = 0; i < 40 * 1024; i++)
        it_buf_add(&req, "a", 1);
    it_buf_add(&req, "\r\n\r\n", 4);
    rejected(req.data, req.len, 431);
    it_buf_free(&req);
    serves_a_normal_request();
}

static void test_too_many_headers_431(void)
{
    struct it_buf req = {0};
    static const char head[] = "GET /x HTTP/1.1\r\nHost: x\r\n";
    it_buf_add(&req, head, sizeof head - 1);
    for (int i = 0; i < 150; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "X-H%d: %d\r\n", i, i);
        it_buf_add(&req, line, (size_t)n);
    }
    it_buf_add(&req, "\r\n", 2);
    rejected(req.data, req.len, 431);
    it_buf_free(&req);
    serves_a_normal_request();
}

static void test_body_over_limit_413(void)
{
    /* 2 MiB announced, limits.body_bytes is 1m: refused from the head alone. */
    REJECTED("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n", 413);
    serves_a_normal_request();
}

static void test_slow_head_408(void)
{
    /* Half a head, then silence past timeouts.client_header (1s). */
    REJECTED("GET /x HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n", 408);
    serves_a_normal_request();
}

static CU_TestInfo tests[] = {
    {"Content-Length with Transfer-Encoding: 400", test_content_length_with_transfer_encoding},
    {"duplicate Content-Length: 400", test_duplicate_content_length},
    {"malformed Content-Length: 400", test_malformed_content_length},
    {"Transfer-Encoding: gzip: 400", test_transfer_encoding_gzip},
    {"Transfer-Encoding: gzip, chunked: 400", test_transfer_encoding_gzip_chunked},
    {"obs-fold: 400", test_obs_fold},
    {"bare LF line end: 400", test_bare_lf},
    {"bare CR: 400", test_bare_cr},
    {"NUL in a header name: 400", test_nul_in_header_name},
    {"NUL in a header value: 400", test_nul_in_header_value},
    {"control character first in a value: 400", test_control_char_first_in_value},
    {"space before the colon: 400", test_space_before_colon},
    {"HTTP/1.1 without Host: 400", test_missing_host_http11},
    {"duplicate Host: 400", test_duplicate_host},
    {"malformed chunk size: 400", test_malformed_chunk_size},
    {"bad chunk extension: 400", test_bad_chunk_extension},
    {"HTTP/2.0 request line: 505", test_http2_version_505},
    {"40 KB header over header_bytes 32k: 431", test_header_too_large_431},
    {"150 headers over headers 100: 431", test_too_many_headers_431},
    {"Content-Length over body_bytes: 413", test_body_over_limit_413},
    {"half a head past client_header: 408", test_slow_head_408},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"framing", suite_init, it_suite_cleanup, it_test_setup, it_test_teardown, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return it_main(suites, 240);
}
