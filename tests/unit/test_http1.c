/* Tests core/http1.c and core/http1_chunked.c: head delimiting, strict head parsing (one test per
 * rejected class), response framing, header list helpers and the chunked decoder. */
#include <CUnit/Basic.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "http1.h"

static struct lintel_arena *arena;
static char err[128];
static const struct lintel_head_limits lim = {8192, 20};

static int suite_init(void)
{
    arena = lintel_arena_new(4096);
    return arena ? 0 : -1;
}

static int suite_clean(void)
{
    lintel_arena_free(arena);
    return 0;
}

static int parse(struct lintel_head *h, bool is_request, const char *s)
{
    err[0] = '\0';
    return lintel_head_parse(h, is_request, s, strlen(s), &lim, arena, err, sizeof(err));
}

static int req(struct lintel_head *h, const char *s)
{
    return parse(h, true, s);
}

static int resp(struct lintel_head *h, const char *s)
{
    return parse(h, false, s);
}

/* Parses a request that must be refused with status; err must name the cause. */
static void expect_reject(const char *s, int status, const char *why)
{
    struct lintel_head h;
    int rc = req(&h, s);
    CU_ASSERT_EQUAL(rc, status);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, why));
    if (rc != status || !strstr(err, why))
        fprintf(stderr, "\n  input %s\n  got %d '%s', want %d '%s'\n", s, rc, err, status, why);
}

static const char *value(const struct lintel_head *h, const char *name)
{
    struct lintel_header *hd = lintel_headers_get(&h->headers, name, strlen(name));
    return hd ? hd->value : NULL;
}

static ssize_t find_end(const char *s, size_t *skip)
{
    err[0] = '\0';
    return lintel_head_find_end(s, strlen(s), &lim, skip, err, sizeof(err));
}

/* ---- lintel_head_find_end ---- */

static void test_find_end_complete_and_partial(void)
{
    const char *s = "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
    size_t skip = 99;
    CU_ASSERT_EQUAL(find_end(s, &skip), (ssize_t)(strlen(s) - 4));
    CU_ASSERT_EQUAL(skip, 0);
    /* every prefix short of the end asks for more bytes */
    for (size_t n = 0; n < strlen(s) - 4; n++)
        CU_ASSERT_EQUAL(lintel_head_find_end(s, n, &lim, &skip, err, sizeof(err)), 0);
}

static void test_find_end_leading_crlf_skip(void)
{
    size_t skip = 0;
    const char *s = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    CU_ASSERT_EQUAL(find_end(s, &skip), (ssize_t)(strlen(s) - 4));
    CU_ASSERT_EQUAL(skip, 4);
    struct lintel_head h;
    CU_ASSERT_EQUAL(req(&h, s + skip), 0);
    CU_ASSERT_EQUAL(find_end("\r\n\r", &skip), 0);
    CU_ASSERT_EQUAL(skip, 2);
}

static void test_find_end_bare_lf(void)
{
    size_t skip;
    CU_ASSERT_EQUAL(find_end("GET / HTTP/1.1\nHost: a\r\n\r\n", &skip), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "bare LF"));
    CU_ASSERT_EQUAL(find_end("GET / HTTP/1.1\r\nHost: a\n\n", &skip), -1);
    CU_ASSERT_EQUAL(find_end("\nGET / HTTP/1.1\r\n\r\n", &skip), -1);
    CU_ASSERT_EQUAL(find_end("\r\n\nGET / HTTP/1.1\r\n\r\n", &skip), -1);
}

static void test_find_end_bare_cr(void)
{
    size_t skip;
    CU_ASSERT_EQUAL(find_end("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", &skip), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "bare CR"));
    CU_ASSERT_EQUAL(find_end("GET / HTTP/1.1\r\r\n\r\n", &skip), -1);
}

static void test_find_end_too_long_431(void)
{
    char buf[9000];
    size_t skip;
    int n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nX: ");
    memset(buf + n, 'a', sizeof(buf) - (size_t)n - 5);
    memcpy(buf + sizeof(buf) - 5, "\r\n\r\n", 5);
    CU_ASSERT_EQUAL(find_end(buf, &skip), -2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "too large"));
    /* also when the bytes so far have no end yet but already fill the limit */
    CU_ASSERT_EQUAL(lintel_head_find_end(buf, 8192, &lim, &skip, err, sizeof(err)), -2);
    CU_ASSERT_EQUAL(lintel_head_find_end(buf, 8191, &lim, &skip, err, sizeof(err)), 0);
    /* a head of exactly the limit fits */
    char exact[8192 + 1];
    n = snprintf(exact, sizeof(exact), "GET / HTTP/1.1\r\nX: ");
    memset(exact + n, 'a', 8192 - (size_t)n - 4);
    memcpy(exact + 8192 - 4, "\r\n\r\n", 5);
    CU_ASSERT_EQUAL(find_end(exact, &skip), 8192);
}

/* ---- request rejections, one class per test ---- */

static void test_reject_cl_with_te(void)
{
    expect_reject("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: "
                  "chunked\r\n\r\n",
                  400, "Content-Length with Transfer-Encoding");
    expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: "
                  "5\r\n\r\n",
                  400, "Content-Length with Transfer-Encoding");
}

static void test_reject_duplicate_cl(void)
{
    expect_reject("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
                  400, "duplicate Content-Length");
    expect_reject("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n",
                  400, "duplicate Content-Length");
}

static void test_reject_malformed_cl(void)
{
    const char *bad[] = {"",
                         "-1",
                         "+1",
                         "1a",
                         "0x10",
                         "1 2",
                         "1,1",
                         "5, 5",
                         "9223372036854775808",
                         "18446744073709551616",
                         "99999999999999999999999"};
    char buf[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %s\r\n\r\n",
                 bad[i]);
        expect_reject(buf, 400, "Content-Length");
    }
    struct lintel_head h;
    CU_ASSERT_EQUAL(
        req(&h, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n"), 0);
    CU_ASSERT_EQUAL(h.content_length, INT64_MAX);
}

static void test_reject_te_gzip(void)
{
    expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400,
                  "Transfer-Encoding");
    expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400,
                  "Transfer-Encoding");
    expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 400,
                  "Transfer-Encoding");
}

static void test_reject_te_chunked_twice(void)
{
    expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400,
                  "Transfer-Encoding");
    expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
                  "chunked\r\n\r\n",
                  400, "duplicate Transfer-Encoding");
}

static void test_reject_te_not_final(void)
{
    expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400,
                  "Transfer-Encoding");
    expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n", 400,
                  "Transfer-Encoding");
    /* chunked in an HTTP/1.0 message: its framing cannot be trusted (RFC 9112 6.1) */
    expect_reject("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0");
}

static void test_reject_obs_fold(void)
{
    expect_reject("GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n", 400, "folding");
    expect_reject("GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n\ttwo\r\n\r\n", 400, "folding");
    expect_reject("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, "folding");
}

static void test_reject_bare_lf(void)
{
    expect_reject("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400, "bare LF");
    expect_reject("GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "bare LF");
}

static void test_reject_bare_cr(void)
{
    expect_reject("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400, "control character");
    expect_reject("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", 400, "control character");
}

static void test_reject_nul_in_name(void)
{
    static const char s[] = "GET / HTTP/1.1\r\nHost: a\r\nX\0Y: b\r\n\r\n";
    struct lintel_head h;
    CU_ASSERT_EQUAL(lintel_head_parse(&h, true, s, sizeof(s) - 1, &lim, arena, err, sizeof(err)),
                    400);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "control character in header name"));
}

static void test_reject_nul_in_value(void)
{
    static const char s[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
    struct lintel_head h;
    CU_ASSERT_EQUAL(lintel_head_parse(&h, true, s, sizeof(s) - 1, &lim, arena, err, sizeof(err)),
                    400);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "control character in header value"));
}

static void test_reject_ctl_first_value_byte(void)
{
    expect_reject("GET / HTTP/1.1\r\nHost: a\r\nX: \x01"
                  "abc\r\n\r\n",
                  400, "control character in header value");
    expect_reject("GET / HTTP/1.1\r\nHost: a\r\nX:\x0b"
                  "abc\r\n\r\n",
                  400, "control character in header value");
    expect_reject("GET / HTTP/1.1\r\nHost: a\r\nX: ab\x7f\r\n\r\n", 400,
                  "control character in header value");
    static const char nul[] = "GET / HTTP/1.1\r\nHost: a\r\nX: \0abc\r\n\r\n";
    struct lintel_head h;
    CU_ASSERT_EQUAL(
        lintel_head_parse(&h, true, nul, sizeof(nul) - 1, &lim, arena, err, sizeof(err)), 400);
}

static void test_reject_space_before_colon(void)
{
    expect_reject("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "whitespace before colon");
    expect_reject("GET / HTTP/1.1\r\nHost: a\r\nX-A\t: b\r\n\r\n", 400, "whitespace before colon");
    expect_reject("GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", 400, "bad header name");
    expect_reject("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400, "empty header name");
    expect_reject("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400, "bad header name");
}

static void test_reject_missing_host_11(void)
{
    expect_reject("GET / HTTP/1.1\r\nX: a\r\n\r\n", 400, "missing Host");
    struct lintel_head h;
    CU_ASSERT_EQUAL(req(&h, "GET / HTTP/1.0\r\n\r\n"), 0); /* HTTP/1.0 may omit it */
    CU_ASSERT_PTR_NULL(h.host);
}

static void test_reject_duplicate_host(void)
{
    expect_reject("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, "duplicate Host");
    expect_reject("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400, "duplicate Host");
    expect_reject("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "bad Host");
    expect_reject("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "bad Host");
}

static void test_reject_http2_505(void)
{
    expect_reject("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "not supported");
    expect_reject("PRI * HTTP/2.0\r\n\r\n", 505, "not supported");
    expect_reject("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, "not supported");
    expect_reject("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505, "not supported");
}

static void test_reject_http09_or_garbage(void)
{
    expect_reject("GET /\r\n\r\n", 400, "malformed request line");
    expect_reject("\x16\x03\x01\x02\x05\x01\x02\x01\xfc\x03\x03\r\n\r\n", 400, "control character");
    expect_reject("GET / http/1.1\r\nHost: a\r\n\r\n", 400, "bad HTTP version");
    expect_reject("GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400, "bad HTTP version");
    expect_reject("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "bad HTTP version");
    expect_reject("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "empty part");
    expect_reject("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request-target");
    expect_reject("G\tET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad method");
    expect_reject("FROB / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "unknown method");
    expect_reject("get / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "unknown method");
    expect_reject("GETX / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "unknown method");
    expect_reject("\r\n\r\n", 400, "malformed request line");
}

static void test_reject_bad_target(void)
{
    expect_reject("GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request-target");
    expect_reject("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request-target");
    expect_reject("GET ftp://a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request-target");
    expect_reject("GET http:///b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request-target");
    expect_reject("GET http://u@a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request-target");
    expect_reject("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request-target");
    expect_reject("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 400, "CONNECT");
    expect_reject("GET http://a/b HTTP/1.1\r\nHost: b\r\n\r\n", 400, "does not match");
}

static void test_reject_too_many_headers_431(void)
{
    char buf[2048];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 20; i++) /* 21 header lines with Host, limit 20 */
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: v\r\n", i);
    snprintf(buf + n, sizeof(buf) - n, "\r\n");
    expect_reject(buf, 431, "too many header lines");
    /* exactly at the limit is fine */
    char *second = strstr(buf, "X-19");
    memcpy(second, "\r\n", 3);
    struct lintel_head h;
    CU_ASSERT_EQUAL(req(&h, buf), 0);
    CU_ASSERT_EQUAL(h.headers.n, 20);
}

static void test_reject_bad_connection(void)
{
    expect_reject("GET / HTTP/1.1\r\nHost: a\r\nConnection: close x\r\n\r\n", 400,
                  "bad Connection");
    expect_reject("GET / HTTP/1.1\r\nHost: a\r\nConnection: \"close\"\r\n\r\n", 400,
                  "bad Connection");
}

/* ---- good requests ---- */

static void test_get_with_query(void)
{
    struct lintel_head h;
    CU_ASSERT_EQUAL_FATAL(req(&h, "GET /a/b?x=1&y=%20#frag HTTP/1.1\r\nHost: example.com:8080\r\n"
                                  "User-Agent:  curl/8 \t\r\nX-Empty:\r\n\r\n"),
                          0);
    CU_ASSERT(h.is_request);
    CU_ASSERT_EQUAL(h.method, HTTP_GET);
    CU_ASSERT_STRING_EQUAL(h.method_str, "GET");
    CU_ASSERT_STRING_EQUAL(h.target, "/a/b?x=1&y=%20#frag");
    CU_ASSERT_EQUAL(h.target_len, strlen(h.target));
    CU_ASSERT_STRING_EQUAL(h.path, "/a/b");
    CU_ASSERT_EQUAL(h.path_len, 4);
    CU_ASSERT_STRING_EQUAL(h.query, "x=1&y=%20");
    CU_ASSERT_EQUAL(h.query_len, 9);
    CU_ASSERT_EQUAL(h.host_len, 16);
    CU_ASSERT_STRING_EQUAL(h.host, "example.com:8080");
    CU_ASSERT_EQUAL(h.http_major, 1);
    CU_ASSERT_EQUAL(h.http_minor, 1);
    CU_ASSERT(h.keepalive);
    CU_ASSERT_EQUAL(h.body, LINTEL_BODY_NONE);
    CU_ASSERT_EQUAL(h.headers.n, 3);
    CU_ASSERT_STRING_EQUAL(value(&h, "user-agent"), "curl/8");
    CU_ASSERT_EQUAL(lintel_headers_get(&h.headers, "USER-AGENT", 10)->value_len, 6);
    CU_ASSERT_STRING_EQUAL(value(&h, "X-Empty"), "");
    CU_ASSERT_STRING_EQUAL(h.headers.v[0].name, "Host");
    CU_ASSERT_EQUAL(h.headers.v[0].flags, 0);

    CU_ASSERT_EQUAL(req(&h, "GET /p HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    CU_ASSERT_PTR_NULL(h.query);
    CU_ASSERT_EQUAL(req(&h, "GET /p? HTTP/1.1\r\nHost: \r\n\r\n"), 0); /* empty Host is allowed */
    CU_ASSERT_STRING_EQUAL(h.query, "");
    CU_ASSERT_EQUAL(h.host_len, 0);
    /* obs-text and HTAB inside a value are allowed */
    CU_ASSERT_EQUAL(req(&h, "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\tb\r\n\r\n"), 0);
    CU_ASSERT_STRING_EQUAL(value(&h, "X"), "caf\xc3\xa9\tb");
}

static void test_post_content_length(void)
{
    struct lintel_head h;
    CU_ASSERT_EQUAL_FATAL(
        req(&h,
            "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\nExpect: 100-Continue\r\n\r\n"),
        0);
    CU_ASSERT_EQUAL(h.method, HTTP_POST);
    CU_ASSERT_EQUAL(h.body, LINTEL_BODY_LENGTH);
    CU_ASSERT_EQUAL(h.content_length, 42);
    CU_ASSERT(h.expect_continue);
    CU_ASSERT_EQUAL(lintel_headers_get(&h.headers, "Content-Length", 14)->flags, 0);
    CU_ASSERT_EQUAL(req(&h, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), 0);
    CU_ASSERT_EQUAL(h.body, LINTEL_BODY_LENGTH);
    CU_ASSERT_EQUAL(h.content_length, 0);
    /* Expect is ignored in HTTP/1.0 (RFC 9110 10.1.1) */
    CU_ASSERT_EQUAL(req(&h, "POST / HTTP/1.0\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n"),
                    0);
    CU_ASSERT(!h.expect_continue);
}

static void test_chunked_request(void)
{
    struct lintel_head h;
    CU_ASSERT_EQUAL_FATAL(
        req(&h, "PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  ChUnKeD \r\n\r\n"), 0);
    CU_ASSERT_EQUAL(h.method, HTTP_PUT);
    CU_ASSERT_EQUAL(h.body, LINTEL_BODY_CHUNKED);
    CU_ASSERT_EQUAL(lintel_headers_get(&h.headers, "transfer-encoding", 17)->flags, 0);
}

static void test_keepalive_rules(void)
{
    struct lintel_head h;
    CU_ASSERT_EQUAL(req(&h, "GET / HTTP/1.0\r\n\r\n"), 0);
    CU_ASSERT(!h.keepalive);
    CU_ASSERT_EQUAL(h.http_minor, 0);
    CU_ASSERT_EQUAL(req(&h, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), 0);
    CU_ASSERT(h.keepalive);
    CU_ASSERT_EQUAL(req(&h, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    CU_ASSERT(h.keepalive);
    CU_ASSERT_EQUAL(req(&h, "GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE\r\n\r\n"), 0);
    CU_ASSERT(!h.keepalive);
    CU_ASSERT_EQUAL(req(&h, "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n"),
                    0);
    CU_ASSERT(!h.keepalive);
    CU_ASSERT_EQUAL(req(&h, "GET / HTTP/1.0\r\nConnection: x\r\nConnection: keep-alive\r\n\r\n"),
                    0);
    CU_ASSERT(h.keepalive);
}

static void test_absolute_form(void)
{
    struct lintel_head h;
    CU_ASSERT_EQUAL_FATAL(req(&h, "GET HTTP://Example.com:81/a/b?q=1 HTTP/1.1\r\n"
                                  "Host: example.COM:81\r\n\r\n"),
                          0);
    CU_ASSERT_STRING_EQUAL(h.target, "HTTP://Example.com:81/a/b?q=1");
    CU_ASSERT_STRING_EQUAL(h.path, "/a/b");
    CU_ASSERT_STRING_EQUAL(h.query, "q=1");
    CU_ASSERT_STRING_EQUAL(h.host, "Example.com:81");
    CU_ASSERT_EQUAL(h.host_len, 14);

    CU_ASSERT_EQUAL_FATAL(req(&h, "GET https://a.b?x HTTP/1.0\r\n\r\n"), 0);
    CU_ASSERT_STRING_EQUAL(h.path, "/");
    CU_ASSERT_EQUAL(h.path_len, 1);
    CU_ASSERT_STRING_EQUAL(h.query, "x");
    CU_ASSERT_STRING_EQUAL(h.host, "a.b");

    CU_ASSERT_EQUAL_FATAL(req(&h, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
    CU_ASSERT_STRING_EQUAL(h.path, "*");
    CU_ASSERT_EQUAL(h.method, HTTP_OPTIONS);
}

static void test_connection_listed_hop_headers(void)
{
    struct lintel_head h;
    CU_ASSERT_EQUAL_FATAL(req(&h, "GET / HTTP/1.1\r\nHost: a\r\nConnection: x-secret , ,Upgrade\r\n"
                                  "X-Secret: 1\r\nX-Other: 2\r\nKeep-Alive: 5\r\nTE: trailers\r\n"
                                  "Trailer: X\r\nUpgrade: websocket\r\nProxy-Connection: k\r\n"
                                  "Proxy-Authorization: Basic x\r\nconnection: Host, "
                                  "Content-Length, X-Late\r\nX-Late: 3\r\nContent-Length: 0\r\n"
                                  "\r\n"),
                          0);
    const char *hop[] = {"Connection", "X-Secret", "Keep-Alive",       "TE",
                         "Trailer",    "Upgrade",  "Proxy-Connection", "Proxy-Authorization",
                         "X-Late"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++) {
        struct lintel_header *hd = lintel_headers_get(&h.headers, hop[i], strlen(hop[i]));
        CU_ASSERT_PTR_NOT_NULL_FATAL(hd);
        CU_ASSERT(hd->flags & LINTEL_HDR_HOP);
    }
    const char *e2e[] = {"Host", "X-Other", "Content-Length"};
    for (size_t i = 0; i < sizeof(e2e) / sizeof(e2e[0]); i++)
        CU_ASSERT_EQUAL(lintel_headers_get(&h.headers, e2e[i], strlen(e2e[i]))->flags, 0);
    CU_ASSERT(h.upgrade);
    CU_ASSERT(h.keepalive);
    /* Connection: upgrade without an Upgrade header is no upgrade */
    CU_ASSERT_EQUAL(req(&h, "GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n"), 0);
    CU_ASSERT(!h.upgrade);
}

static void test_headers_get_add(void)
{
    struct lintel_head h;
    CU_ASSERT_EQUAL_FATAL(req(&h, "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\n\r\n"), 0);
    CU_ASSERT_STRING_EQUAL(value(&h, "X-A"), "1");
    h.headers.v[1].flags |= LINTEL_HDR_DELETED;
    CU_ASSERT_STRING_EQUAL(value(&h, "X-A"), "2");
    CU_ASSERT_PTR_NULL(value(&h, "X-B"));
    CU_ASSERT_PTR_NULL(lintel_headers_get(&h.headers, "X-A", 2)); /* length counts */

    /* past the spare slots the array grows, keeping what was there */
    char names[40][8];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof(names[i]), "N-%d", i);
        CU_ASSERT_EQUAL_FATAL(
            lintel_headers_add(&h.headers, arena, names[i], strlen(names[i]), "v", 1), 0);
    }
    CU_ASSERT_EQUAL(h.headers.n, 43);
    CU_ASSERT(h.headers.cap >= 43);
    CU_ASSERT_STRING_EQUAL(value(&h, "host"), "a");
    CU_ASSERT_STRING_EQUAL(value(&h, "n-39"), "v");
    CU_ASSERT_EQUAL(lintel_headers_get(&h.headers, "N-0", 3)->flags, 0);

    struct lintel_headers empty = {NULL, 0, 0};
    CU_ASSERT_PTR_NULL(lintel_headers_get(&empty, "A", 1));
    CU_ASSERT_EQUAL(lintel_headers_add(&empty, arena, "A", 1, "b", 1), 0);
    CU_ASSERT_STRING_EQUAL(lintel_headers_get(&empty, "a", 1)->value, "b");

    CU_ASSERT(lintel_http1_is_tchar('!'));
    CU_ASSERT(!lintel_http1_is_tchar(':'));
    CU_ASSERT(lintel_http1_is_field_char('\t'));
    CU_ASSERT(!lintel_http1_is_field_char('\n'));
}

/* ---- responses ---- */

static void test_response_no_body(void)
{
    struct lintel_head h;
    CU_ASSERT_EQUAL_FATAL(resp(&h, "HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n"), 0);
    CU_ASSERT(!h.is_request);
    CU_ASSERT_EQUAL(h.status, 204);
    CU_ASSERT_STRING_EQUAL(h.reason, "No Content");
    CU_ASSERT_EQUAL(lintel_response_body_kind(&h, HTTP_GET), LINTEL_BODY_NONE);
    CU_ASSERT(h.keepalive);

    CU_ASSERT_EQUAL_FATAL(resp(&h, "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"), 0);
    CU_ASSERT_EQUAL(lintel_response_body_kind(&h, HTTP_GET), LINTEL_BODY_NONE);

    CU_ASSERT_EQUAL_FATAL(resp(&h, "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"), 0);
    CU_ASSERT_EQUAL(h.body, LINTEL_BODY_LENGTH);
    CU_ASSERT_EQUAL(h.content_length, 99);
    CU_ASSERT_EQUAL(lintel_response_body_kind(&h, HTTP_HEAD), LINTEL_BODY_NONE);
    CU_ASSERT_EQUAL(lintel_response_body_kind(&h, HTTP_GET), LINTEL_BODY_LENGTH);
}

static void test_response_close_delimited(void)
{
    struct lintel_head h;
    CU_ASSERT_EQUAL_FATAL(resp(&h, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"), 0);
    CU_ASSERT_EQUAL(h.body, LINTEL_BODY_CLOSE);
    CU_ASSERT_EQUAL(lintel_response_body_kind(&h, HTTP_GET), LINTEL_BODY_CLOSE);
    CU_ASSERT(!h.keepalive);
    CU_ASSERT_EQUAL(h.http_minor, 0);
    /* no reason phrase, with or without the SP */
    CU_ASSERT_EQUAL_FATAL(resp(&h, "HTTP/1.1 200\r\n\r\n"), 0);
    CU_ASSERT_STRING_EQUAL(h.reason, "");
    CU_ASSERT_EQUAL(h.body, LINTEL_BODY_CLOSE);
    CU_ASSERT_EQUAL_FATAL(resp(&h, "HTTP/1.1 500 \r\n\r\n"), 0);
    CU_ASSERT_STRING_EQUAL(h.reason, "");
}

static void test_response_chunked(void)
{
    struct lintel_head h;
    CU_ASSERT_EQUAL_FATAL(resp(&h, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                   "Connection: close\r\n\r\n"),
                          0);
    CU_ASSERT_EQUAL(h.body, LINTEL_BODY_CHUNKED);
    CU_ASSERT(!h.keepalive);
    CU_ASSERT_EQUAL(lintel_response_body_kind(&h, HTTP_POST), LINTEL_BODY_CHUNKED);
    CU_ASSERT_PTR_NULL(h.path);
    CU_ASSERT_EQUAL(h.method, -1);
}

static void test_response_1xx(void)
{
    struct lintel_head h;
    CU_ASSERT_EQUAL_FATAL(resp(&h, "HTTP/1.1 100 Continue\r\n\r\n"), 0);
    CU_ASSERT_EQUAL(h.status, 100);
    CU_ASSERT_EQUAL(h.body, LINTEL_BODY_NONE);
    CU_ASSERT_EQUAL(lintel_response_body_kind(&h, HTTP_GET), LINTEL_BODY_NONE);
    CU_ASSERT_EQUAL_FATAL(resp(&h, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                                   "Upgrade: websocket\r\n\r\n"),
                          0);
    CU_ASSERT(h.upgrade);
    CU_ASSERT_EQUAL(h.body, LINTEL_BODY_NONE);
}

static void test_response_bad_framing_502(void)
{
    const char *bad[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX : a\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: \x01\r\n\r\n",
        "HTTP/1.1 200 OK\nX: a\r\n\r\n",
        "HTTP/2.0 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 099 OK\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1  200 OK\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "HTTP/1.1 200 O\x01K\r\n\r\n",
        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct lintel_head h;
        int rc = resp(&h, bad[i]);
        CU_ASSERT_EQUAL(rc, 502);
        if (rc != 502)
            fprintf(stderr, "\n  response %zu accepted (%d)\n", i, rc);
    }
    /* too many header lines in a response is a 502 too, not a 431 */
    char buf[1024];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 21; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: v\r\n", i);
    snprintf(buf + n, sizeof(buf) - n, "\r\n");
    struct lintel_head h;
    CU_ASSERT_EQUAL(resp(&h, buf), 502);
}

/* ---- chunked decoder ---- */

/* Feeds in[0..len) in pieces of at most piece bytes; collects the data into out. Returns the
 * decoder's last result; *used is how many input bytes it consumed. */
static int dechunk(const char *in, size_t len, size_t piece, char *out, size_t *outlen,
                   size_t *used)
{
    struct lintel_chunked c;
    lintel_chunked_init(&c);
    size_t pos = 0;
    *outlen = 0;
    err[0] = '\0';
    while (pos < len) {
        size_t n = len - pos < piece ? len - pos : piece;
        size_t skip, data;
        int rc = lintel_chunked_step(&c, in + pos, n, &skip, &data, err, sizeof(err));
        if (rc < 0) {
            *used = pos;
            return rc;
        }
        CU_ASSERT_FATAL(skip + data > 0 && skip + data <= n);
        memcpy(out + *outlen, in + pos + skip, data);
        *outlen += data;
        pos += skip + data;
        if (rc == 1) {
            *used = pos;
            return 1;
        }
    }
    *used = pos;
    return 0;
}

static const char chunked_body[] = "5;name=value ; q=\"a \\\"b\\\\\"\t;flag\r\nhello\r\n"
                                   "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                                   "000000000000000c\r\n, world!!!!!\r\n"
                                   "0;last\r\nX-Trailer: yes\r\nChecksum:\tab c\r\n\r\n"
                                   "NEXT";

static void test_chunked_valid_whole(void)
{
    char out[128];
    size_t outlen, used;
    size_t len = sizeof(chunked_body) - 1;
    CU_ASSERT_EQUAL(dechunk(chunked_body, len, len, out, &outlen, &used), 1);
    CU_ASSERT_EQUAL(used, len - 4); /* "NEXT" is the next message */
    CU_ASSERT_EQUAL(outlen, 5 + 26 + 12);
    CU_ASSERT_EQUAL(memcmp(out, "helloabcdefghijklmnopqrstuvwxyz, world!!!!!", outlen), 0);

    /* the smallest body */
    CU_ASSERT_EQUAL(dechunk("0\r\n\r\n", 5, 5, out, &outlen, &used), 1);
    CU_ASSERT_EQUAL(outlen, 0);
    CU_ASSERT_EQUAL(used, 5);
}

static void test_chunked_byte_by_byte_equals_whole(void)
{
    char whole[128], part[128];
    size_t wl, pl, wu, pu;
    size_t len = sizeof(chunked_body) - 1;
    CU_ASSERT_EQUAL(dechunk(chunked_body, len, len, whole, &wl, &wu), 1);
    for (size_t piece = 1; piece < len; piece++) {
        CU_ASSERT_EQUAL(dechunk(chunked_body, len, piece, part, &pl, &pu), 1);
        CU_ASSERT_EQUAL(pl, wl);
        CU_ASSERT_EQUAL(pu, wu);
        CU_ASSERT_EQUAL(memcmp(part, whole, wl), 0);
    }
    /* an incomplete body asks for more, at every cut */
    for (size_t cut = 0; cut < wu; cut++) {
        CU_ASSERT_EQUAL(dechunk(chunked_body, cut, 1, part, &pl, &pu), 0);
        CU_ASSERT_EQUAL(pu, cut);
    }
}

/* The body must be refused, fed whole and fed a byte at a time, with err naming why. */
static void expect_chunked_error(const char *body, const char *why)
{
    char out[8192];
    size_t outlen, used;
    size_t len = strlen(body);
    for (size_t piece = 1; piece <= len; piece += len - 1) {
        int rc = dechunk(body, len, piece, out, &outlen, &used);
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, why));
        if (rc != -1 || !strstr(err, why))
            fprintf(stderr, "\n  body '%s' piece %zu: rc %d '%s', want '%s'\n", body, piece, rc,
                    err, why);
        if (len == 1)
            break;
    }
}

static void test_chunked_bad_hex(void)
{
    expect_chunked_error("g\r\n", "bad chunk size");
    expect_chunked_error("\r\n", "bad chunk size");
    expect_chunked_error("-1\r\n", "bad chunk size");
    expect_chunked_error("0x5\r\nhello\r\n0\r\n\r\n", "bad chunk size");
    expect_chunked_error(" 5\r\nhello\r\n0\r\n\r\n", "bad chunk size");
    expect_chunked_error("5 \r\nhello\r\n0\r\n\r\n", "bad chunk extension");
}

static void test_chunked_too_many_digits(void)
{
    expect_chunked_error("00000000000000001\r\nx\r\n0\r\n\r\n", "too long");
    expect_chunked_error("8000000000000000\r\n", "overflow");
    expect_chunked_error("FFFFFFFFFFFFFFFF\r\n", "overflow");
    /* 16 digits that fit are fine */
    char out[8];
    size_t outlen, used;
    const char *ok = "0000000000000001\r\nx\r\n0\r\n\r\n";
    CU_ASSERT_EQUAL(dechunk(ok, strlen(ok), 1, out, &outlen, &used), 1);
    CU_ASSERT_EQUAL(outlen, 1);
}

static void test_chunked_bad_extension(void)
{
    expect_chunked_error("5;\r\nhello\r\n0\r\n\r\n", "bad chunk extension");
    expect_chunked_error("5;=v\r\nhello\r\n0\r\n\r\n", "bad chunk extension");
    expect_chunked_error("5;a=\r\nhello\r\n0\r\n\r\n", "bad chunk extension");
    expect_chunked_error("5;a b\r\nhello\r\n0\r\n\r\n", "bad chunk extension");
    expect_chunked_error("5;a=b c\r\nhello\r\n0\r\n\r\n", "bad chunk extension");
    expect_chunked_error("5;a=\"b\r\nhello\r\n0\r\n\r\n", "bad chunk extension");
    expect_chunked_error("5;a=\"b\"c\r\nhello\r\n0\r\n\r\n", "bad chunk extension");
    expect_chunked_error("5;a=b \r\nhello\r\n0\r\n\r\n", "bad chunk extension");
    expect_chunked_error("5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", "bad chunk extension");
    expect_chunked_error("5;a=(b)\r\nhello\r\n0\r\n\r\n", "bad chunk extension");
    expect_chunked_error("5,a\r\nhello\r\n0\r\n\r\n", "bad chunk size");
}

static void test_chunked_long_extension(void)
{
    char body[8192];
    size_t n = (size_t)snprintf(body, sizeof(body), "1;a=");
    memset(body + n, 'b', 4093); /* ";a=" + 4093 = 4096 extension bytes: the cap */
    n += 4093;
    snprintf(body + n, sizeof(body) - n, "\r\nx\r\n0\r\n\r\n");
    char out[8];
    size_t outlen, used;
    CU_ASSERT_EQUAL(dechunk(body, strlen(body), 7, out, &outlen, &used), 1);
    memcpy(body + n, "b\r\nx\r\n0\r\n\r\n", 12);
    expect_chunked_error(body, "chunk extension too long");
}

static void test_chunked_bare_lf(void)
{
    expect_chunked_error("5\nhello\r\n0\r\n\r\n", "bare LF");
    expect_chunked_error("5;a=b\nhello\r\n0\r\n\r\n", "bare LF");
    expect_chunked_error("5\r\nhello\n0\r\n\r\n", "bare LF");
    expect_chunked_error("0\r\n\n", "bare LF");
    expect_chunked_error("0\r\nX: y\n\r\n", "bare LF");
}

static void test_chunked_bare_cr(void)
{
    expect_chunked_error("5\rhello\r\n0\r\n\r\n", "bare CR");
    expect_chunked_error("0\r\nX: y\rZ\r\n\r\n", "bare CR");
    expect_chunked_error("0\r\n\rX", "bare CR");
}

static void test_chunked_missing_crlf_after_data(void)
{
    expect_chunked_error("5\r\nhelloX\r\n0\r\n\r\n", "missing CRLF after chunk data");
    expect_chunked_error("5\r\nhello\rX0\r\n\r\n", "missing CRLF after chunk data");
    expect_chunked_error("5\r\nhello0\r\n\r\n", "missing CRLF after chunk data");
}

static void test_chunked_bad_trailer(void)
{
    expect_chunked_error("0\r\nX : y\r\n\r\n", "bad trailer name");
    expect_chunked_error("0\r\nNoColon\r\n\r\n", "bad trailer name");
    expect_chunked_error("0\r\n:v\r\n\r\n", "bad trailer name");
    expect_chunked_error("0\r\nX: \x01\r\n\r\n", "control character in trailer");
    expect_chunked_error("0\r\nX: a\r\n b\r\n\r\n", "obsolete line folding");
    char body[20000];
    size_t n = (size_t)snprintf(body, sizeof(body), "0\r\n");
    while (n < 17000)
        n += (size_t)snprintf(body + n, sizeof(body) - n, "X-Pad: 0123456789abcdef\r\n");
    snprintf(body + n, sizeof(body) - n, "\r\n");
    expect_chunked_error(body, "trailers too long");
}

static void test_chunked_done_consumes_nothing_more(void)
{
    struct lintel_chunked c;
    lintel_chunked_init(&c);
    size_t skip, data;
    CU_ASSERT_EQUAL(lintel_chunked_step(&c, "0\r\n\r\nGET", 8, &skip, &data, err, sizeof(err)), 1);
    CU_ASSERT_EQUAL(skip, 5);
    CU_ASSERT_EQUAL(data, 0);
    CU_ASSERT_EQUAL(lintel_chunked_step(&c, "GET", 3, &skip, &data, err, sizeof(err)), 1);
    CU_ASSERT_EQUAL(skip + data, 0);
    /* one call hands back framing then data, and stops at the data's end */
    lintel_chunked_init(&c);
    CU_ASSERT_EQUAL(
        lintel_chunked_step(&c, "3\r\nabc\r\n0\r\n\r\n", 13, &skip, &data, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(skip, 3);
    CU_ASSERT_EQUAL(data, 3);
    CU_ASSERT_EQUAL(lintel_chunked_step(&c, "\r\n0\r\n\r\n", 7, &skip, &data, err, sizeof(err)), 1);
    CU_ASSERT_EQUAL(skip, 7);
}

static CU_TestInfo tests[] = {
    {"find_end complete and partial", test_find_end_complete_and_partial},
    {"find_end leading CRLF skip", test_find_end_leading_crlf_skip},
    {"find_end bare LF", test_find_end_bare_lf},
    {"find_end bare CR", test_find_end_bare_cr},
    {"find_end head too long -> 431", test_find_end_too_long_431},
    {"reject CL with TE", test_reject_cl_with_te},
    {"reject duplicate CL", test_reject_duplicate_cl},
    {"reject malformed CL", test_reject_malformed_cl},
    {"reject TE gzip", test_reject_te_gzip},
    {"reject TE chunked twice", test_reject_te_chunked_twice},
    {"reject TE not final", test_reject_te_not_final},
    {"reject obs-fold", test_reject_obs_fold},
    {"reject bare LF", test_reject_bare_lf},
    {"reject bare CR", test_reject_bare_cr},
    {"reject NUL in name", test_reject_nul_in_name},
    {"reject NUL in value", test_reject_nul_in_value},
    {"reject CTL as first value byte", test_reject_ctl_first_value_byte},
    {"reject space before colon", test_reject_space_before_colon},
    {"reject missing Host on 1.1", test_reject_missing_host_11},
    {"reject duplicate Host", test_reject_duplicate_host},
    {"reject HTTP/2.0 -> 505", test_reject_http2_505},
    {"reject HTTP/0.9 or garbage", test_reject_http09_or_garbage},
    {"reject bad request-target", test_reject_bad_target},
    {"reject too many headers -> 431", test_reject_too_many_headers_431},
    {"reject bad Connection", test_reject_bad_connection},
    {"GET with query", test_get_with_query},
    {"POST with Content-Length", test_post_content_length},
    {"chunked request", test_chunked_request},
    {"keepalive rules", test_keepalive_rules},
    {"absolute-form and asterisk", test_absolute_form},
    {"Connection-listed hop headers", test_connection_listed_hop_headers},
    {"headers get and add", test_headers_get_add},
    {"response 204/304/HEAD no body", test_response_no_body},
    {"response close-delimited", test_response_close_delimited},
    {"response chunked", test_response_chunked},
    {"response 1xx", test_response_1xx},
    {"response bad framing -> 502", test_response_bad_framing_502},
    {"chunked valid whole", test_chunked_valid_whole},
    {"chunked byte by byte equals whole", test_chunked_byte_by_byte_equals_whole},
    {"chunked bad hex", test_chunked_bad_hex},
    {"chunked too many digits", test_chunked_too_many_digits},
    {"chunked bad extension", test_chunked_bad_extension},
    {"chunked long extension", test_chunked_long_extension},
    {"chunked bare LF", test_chunked_bare_lf},
    {"chunked bare CR", test_chunked_bare_cr},
    {"chunked missing CRLF after data", test_chunked_missing_crlf_after_data},
    {"chunked bad trailer", test_chunked_bad_trailer},
    {"chunked done consumes nothing more", test_chunked_done_consumes_nothing_more},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"http1", suite_init, suite_clean, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    if (CU_register_suites(suites) != CUE_SUCCESS) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}
