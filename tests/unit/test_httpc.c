/* Tests for core/httpc.c: a libevent evhttp server and the client share one event_base and one
 * thread, as a worker's plugins and a local service would. Covers headers both ways, bodies,
 * statuses, the timeout, refused connections, cancelling (also from inside a callback), 100
 * calls at once, the body cap, refused requests and the caller's struct_size. */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "httpc.h"

static struct event_base *base;
static struct evhttp *server;
static struct lintel_httpc *client;
static int port;
static int delayed_pending; /* server replies still waiting on a timer */

/* ---- the test server ---------------------------------------------------------------------- */

static const char *query_param(struct evhttp_request *req, const char *name, char *out,
                               size_t outlen)
{
    const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    struct evkeyvalq params;
    const char *v = NULL;
    if (q && evhttp_parse_query_str(q, &params) == 0) {
        const char *found = evhttp_find_header(&params, name);
        if (found) {
            snprintf(out, outlen, "%s", found);
            v = out;
        }
        evhttp_clear_headers(&params);
    }
    return v;
}

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    default:
        return "OTHER";
    }
}

struct delayed {
    struct evhttp_request *req;
    struct event *ev;
};

/* The reply is always sent, even when the client has gone: evhttp keeps a request whose
 * connection failed until it is answered, and frees it then. */
static void on_delay_done(evutil_socket_t fd, short what, void *arg)
{
    struct delayed *d = arg;
    struct evbuffer *out = evbuffer_new();
    evbuffer_add_printf(out, "late");
    evhttp_send_reply(d->req, 200, "OK", out);
    evbuffer_free(out);
    event_free(d->ev);
    free(d);
    delayed_pending--;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evkeyvalq *outh = evhttp_request_get_output_headers(req);
    char param[64];
    struct evbuffer *out = evbuffer_new();
    int status = 200;

    if (path && strcmp(path, "/hello") == 0) {
        evhttp_add_header(outh, "X-Test", "yes");
        evhttp_add_header(outh, "X-Multi", "first");
        evhttp_add_header(outh, "X-Multi", "second");
        const char *echo = evhttp_find_header(in, "X-Req");
        if (echo)
            evhttp_add_header(outh, "X-Echo", echo);
        evbuffer_add_printf(out, "hello");
    } else if (path && strcmp(path, "/echo") == 0) {
        evhttp_add_header(outh, "X-Method", method_name(evhttp_request_get_command(req)));
        const char *ct = evhttp_find_header(in, "Content-Type");
        evhttp_add_header(outh, "X-Content-Type", ct ? ct : "-");
        evhttp_add_header(outh, "X-Expect", evhttp_find_header(in, "Expect") ? "yes" : "no");
        evbuffer_add_buffer(out, evhttp_request_get_input_buffer(req));
    } else if (path && strncmp(path, "/uri/", 5) == 0) {
        evbuffer_add_printf(out, "%s", evhttp_request_get_uri(req)); /* as it came */
    } else if (path && strcmp(path, "/n") == 0) {
        evbuffer_add_printf(out, "%s", query_param(req, "i", param, sizeof(param)) ? param : "?");
    } else if (path && strcmp(path, "/delay") == 0) {
        long ms = query_param(req, "ms", param, sizeof(param)) ? atol(param) : 100;
        struct delayed *d = calloc(1, sizeof(*d));
        d->req = req;
        d->ev = evtimer_new(base, on_delay_done, d);
        struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
        evtimer_add(d->ev, &tv);
        delayed_pending++;
        evbuffer_free(out);
        return;
    } else if (path && strcmp(path, "/big") == 0) {
        size_t n = query_param(req, "n", param, sizeof(param)) ? strtoul(param, NULL, 10) : 0;
        bool chunked = query_param(req, "chunked", param, sizeof(param)) != NULL;
        char *data = malloc(n ? n : 1);
        memset(data, 'x', n);
        if (chunked) {
            evhttp_send_reply_start(req, 200, "OK");
            for (size_t off = 0; off < n; off += 65536) {
                evbuffer_add(out, data + off, n - off < 65536 ? n - off : 65536);
                evhttp_send_reply_chunk(req, out);
            }
            evhttp_send_reply_end(req);
            free(data);
            evbuffer_free(out);
            return;
        }
        evbuffer_add(out, data, n);
        free(data);
    } else {
        status = 404;
        evbuffer_add_printf(out, "nope");
    }
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Not Found", out);
    evbuffer_free(out);
}

/* ---- running the loop --------------------------------------------------------------------- */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs the loop in 5 ms slices until *count reaches want or ms have passed. */
static void run_until(const int *count, int want, uint64_t ms)
{
    uint64_t deadline = mono_ms() + ms;
    while (*count < want && mono_ms() < deadline) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = 5000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
}

static void run_for(uint64_t ms)
{
    int never = 0;
    run_until(&never, 1, ms);
}

/* ---- results -------------------------------------------------------------------------------- */

struct result {
    int calls;
    int status;
    char error[256];
    char *body;
    size_t body_len;
    bool body_null;
    char test[32], multi[32], echo[32], method[16], ctype[64], expect[8], clen[16];
    bool absent_is_null;
};

static void copy_header(const struct lintel_http_response *resp, const char *name, char *out,
                        size_t outlen)
{
    struct lintel_str v = resp->header(resp, name);
    snprintf(out, outlen, "%.*s", v.ptr ? (int)v.len : 6, v.ptr ? v.ptr : "(none)");
}

static void on_result(void *arg, const struct lintel_http_response *resp)
{
    struct result *r = arg;
    r->calls++;
    r->status = resp->status;
    snprintf(r->error, sizeof(r->error), "%s", resp->error ? resp->error : "");
    free(r->body);
    r->body_null = resp->body.ptr == NULL;
    r->body = malloc(resp->body.len + 1);
    memcpy(r->body, resp->body.ptr ? resp->body.ptr : "", resp->body.len);
    r->body[resp->body.len] = '\0';
    r->body_len = resp->body.len;
    copy_header(resp, "x-test", r->test, sizeof(r->test));
    copy_header(resp, "X-MULTI", r->multi, sizeof(r->multi));
    copy_header(resp, "X-Echo", r->echo, sizeof(r->echo));
    copy_header(resp, "x-method", r->method, sizeof(r->method));
    copy_header(resp, "x-content-type", r->ctype, sizeof(r->ctype));
    copy_header(resp, "x-expect", r->expect, sizeof(r->expect));
    copy_header(resp, "content-length", r->clen, sizeof(r->clen));
    r->absent_is_null = resp->header(resp, "X-Absent").ptr == NULL;
}

static void result_clear(struct result *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static char *url(const char *path)
{
    static char buf[8][128];
    static int next;
    char *u = buf[next++ % 8];
    snprintf(u, sizeof(buf[0]), "http://127.0.0.1:%d%s", port, path);
    return u;
}

static struct lintel_httpc_call *get(const char *path, struct result *r)
{
    struct lintel_http_request req = {.struct_size = sizeof(req), .url = url(path)};
    return lintel_httpc_start(client, &req, on_result, r);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_get_headers(void)
{
    struct result r = {0};
    const char *headers[] = {"X-Req: abc", NULL};
    struct lintel_http_request req = {
        .struct_size = sizeof(req), .method = "GET", .url = url("/hello"), .headers = headers};
    CU_ASSERT_PTR_NOT_NULL_FATAL(lintel_httpc_start(client, &req, on_result, &r));
    CU_ASSERT_EQUAL(r.calls, 0); /* never from inside start */
    run_until(&r.calls, 1, 3000);
    CU_ASSERT_EQUAL(r.calls, 1);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.error, "");
    CU_ASSERT_STRING_EQUAL(r.body, "hello");
    CU_ASSERT_STRING_EQUAL(r.test, "yes");
    CU_ASSERT_STRING_EQUAL(r.multi, "first");
    CU_ASSERT_STRING_EQUAL(r.echo, "abc");
    CU_ASSERT_STRING_EQUAL(r.clen, "5");
    CU_ASSERT(r.absent_is_null);
    result_clear(&r);
}

/* The target goes out as given: "/../" and "/./" are not squashed (a mirrored request must reach
 * its shadow with the client's path, whatever the origin makes of it). */
static void test_path_as_is(void)
{
    struct result r = {0};
    CU_ASSERT_PTR_NOT_NULL_FATAL(get("/uri/a/../b/./c?x=/../y", &r));
    run_until(&r.calls, 1, 3000);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, "/uri/a/../b/./c?x=/../y");
    result_clear(&r);
}

static void test_post_echo(void)
{
    struct result r = {0};
    static const char body[] = "ping\0pong"; /* binary-safe: 9 bytes with a NUL */
    const char *headers[] = {"Content-Type: application/octet-stream", NULL};
    struct lintel_http_request req = {.struct_size = sizeof(req),
                                      .method = "POST",
                                      .url = url("/echo"),
                                      .headers = headers,
                                      .body = body,
                                      .body_len = 9};
    CU_ASSERT_PTR_NOT_NULL_FATAL(lintel_httpc_start(client, &req, on_result, &r));
    run_until(&r.calls, 1, 3000);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.body_len, 9);
    CU_ASSERT(r.body && memcmp(r.body, body, 9) == 0);
    CU_ASSERT_STRING_EQUAL(r.method, "POST");
    CU_ASSERT_STRING_EQUAL(r.ctype, "application/octet-stream");
    CU_ASSERT_STRING_EQUAL(r.expect, "no");
    result_clear(&r);

    /* A larger PUT body: no Expect: 100-continue round trip either. */
    size_t big_len = 200000;
    char *big = malloc(big_len);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)('a' + i % 26);
    req.method = "PUT";
    req.body = big;
    req.body_len = big_len;
    CU_ASSERT_PTR_NOT_NULL_FATAL(lintel_httpc_start(client, &req, on_result, &r));
    free(big); /* copied by start */
    run_until(&r.calls, 1, 3000);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.method, "PUT");
    CU_ASSERT_STRING_EQUAL(r.expect, "no");
    CU_ASSERT_EQUAL(r.body_len, big_len);
    CU_ASSERT(r.body_len == big_len && r.body[0] == 'a' &&
              r.body[big_len - 1] == (char)('a' + (big_len - 1) % 26));
    result_clear(&r);

    /* DELETE without a body. */
    req = (struct lintel_http_request){
        .struct_size = sizeof(req), .method = "DELETE", .url = url("/echo")};
    CU_ASSERT_PTR_NOT_NULL_FATAL(lintel_httpc_start(client, &req, on_result, &r));
    run_until(&r.calls, 1, 3000);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.method, "DELETE");
    CU_ASSERT_EQUAL(r.body_len, 0);
    CU_ASSERT_FALSE(r.body_null);
    result_clear(&r);
}

static void test_status_passed_through(void)
{
    struct result r = {0};
    CU_ASSERT_PTR_NOT_NULL_FATAL(get("/no/such/thing", &r));
    run_until(&r.calls, 1, 3000);
    CU_ASSERT_EQUAL(r.calls, 1);
    CU_ASSERT_EQUAL(r.status, 404);
    CU_ASSERT_STRING_EQUAL(r.error, "");
    CU_ASSERT_STRING_EQUAL(r.body, "nope");
    result_clear(&r);

    /* HEAD: the head only, though it announces a length. */
    struct lintel_http_request req = {
        .struct_size = sizeof(req), .method = "HEAD", .url = url("/hello")};
    CU_ASSERT_PTR_NOT_NULL_FATAL(lintel_httpc_start(client, &req, on_result, &r));
    run_until(&r.calls, 1, 3000);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.body_len, 0);
    CU_ASSERT_STRING_EQUAL(r.test, "yes");
    result_clear(&r);
}

static void test_timeout(void)
{
    struct result r = {0};
    struct lintel_http_request req = {
        .struct_size = sizeof(req), .url = url("/delay?ms=600"), .timeout_ms = 100};
    uint64_t t0 = mono_ms();
    CU_ASSERT_PTR_NOT_NULL_FATAL(lintel_httpc_start(client, &req, on_result, &r));
    run_until(&r.calls, 1, 3000);
    uint64_t took = mono_ms() - t0;
    CU_ASSERT_EQUAL(r.calls, 1);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT(strlen(r.error) > 0);
    CU_ASSERT(strstr(r.error, "timed out") != NULL);
    CU_ASSERT(r.body_null);
    CU_ASSERT(took >= 90 && took < 500);
    result_clear(&r);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_connection_refused(void)
{
    struct result r = {0};
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", free_port());
    struct lintel_http_request req = {.struct_size = sizeof(req), .url = u};
    CU_ASSERT_PTR_NOT_NULL_FATAL(lintel_httpc_start(client, &req, on_result, &r));
    CU_ASSERT_EQUAL(r.calls, 0);
    run_until(&r.calls, 1, 3000);
    CU_ASSERT_EQUAL(r.calls, 1);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT(strlen(r.error) > 0);
    result_clear(&r);
}

/* A's callback cancels B, and cancelling itself there does nothing. */
struct canceller {
    struct result r;
    struct lintel_httpc_call *victim;
    struct lintel_httpc_call *self;
};

static void on_cancel_other(void *arg, const struct lintel_http_response *resp)
{
    struct canceller *c = arg;
    lintel_httpc_cancel(c->victim);
    lintel_httpc_cancel(c->self);
    on_result(&c->r, resp);
}

static void test_cancel(void)
{
    /* Cancelled at once, and cancelled while in flight. */
    struct result now = {0}, later = {0};
    struct lintel_httpc_call *a = get("/delay?ms=50", &now);
    struct lintel_httpc_call *b = get("/delay?ms=100", &later);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    lintel_httpc_cancel(a);
    run_for(30);
    lintel_httpc_cancel(b);
    run_for(250);
    CU_ASSERT_EQUAL(now.calls, 0);
    CU_ASSERT_EQUAL(later.calls, 0);

    /* Cancelled from inside another call's callback. */
    struct canceller c = {0};
    struct result victim = {0};
    c.victim = get("/delay?ms=150", &victim);
    struct lintel_http_request req = {.struct_size = sizeof(req), .url = url("/hello")};
    c.self = lintel_httpc_start(client, &req, on_cancel_other, &c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.victim);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.self);
    run_until(&c.r.calls, 1, 3000);
    CU_ASSERT_EQUAL(c.r.status, 200);
    run_for(300);
    CU_ASSERT_EQUAL(c.r.calls, 1);
    CU_ASSERT_EQUAL(victim.calls, 0);
    result_clear(&c.r);
    lintel_httpc_cancel(NULL);
}

/* Two calls that finish together (often in the same loop turn, their "done" messages queued in
 * curl at once): whichever is delivered first cancels the other, so exactly one callback runs. */
struct pair {
    struct result r[2];
    struct lintel_httpc_call *call[2];
};

static void on_pair(struct pair *p, int me, const struct lintel_http_response *resp)
{
    p->call[me] = NULL; /* over once this returns */
    lintel_httpc_cancel(p->call[!me]);
    p->call[!me] = NULL;
    on_result(&p->r[me], resp);
}

static void on_pair_0(void *arg, const struct lintel_http_response *resp)
{
    on_pair(arg, 0, resp);
}

static void on_pair_1(void *arg, const struct lintel_http_response *resp)
{
    on_pair(arg, 1, resp);
}

static void test_cancel_finished_sibling(void)
{
    for (int round = 0; round < 20; round++) {
        struct pair p = {0};
        /* Odd rounds: both time out at the same moment, so curl's timer pass finishes both and
         * the second "done" message is already queued when the first callback cancels it. */
        struct lintel_http_request req = {.struct_size = sizeof(req), .url = url("/hello")};
        if (round % 2) {
            req.url = url("/delay?ms=200");
            req.timeout_ms = 30;
        }
        p.call[0] = lintel_httpc_start(client, &req, on_pair_0, &p);
        p.call[1] = lintel_httpc_start(client, &req, on_pair_1, &p);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p.call[0]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p.call[1]);
        int done = 0;
        for (uint64_t deadline = mono_ms() + 3000; done == 0 && mono_ms() < deadline;) {
            run_for(5);
            done = p.r[0].calls + p.r[1].calls;
        }
        run_for(20);
        CU_ASSERT_EQUAL(p.r[0].calls + p.r[1].calls, 1);
        result_clear(&p.r[0]);
        result_clear(&p.r[1]);
    }
}

/* A callback that starts the next call. */
struct chain {
    struct result r;
    int left;
};

static void on_chain(void *arg, const struct lintel_http_response *resp)
{
    struct chain *ch = arg;
    on_result(&ch->r, resp);
    if (--ch->left > 0) {
        struct lintel_http_request req = {.struct_size = sizeof(req), .url = url("/hello")};
        CU_ASSERT_PTR_NOT_NULL(lintel_httpc_start(client, &req, on_chain, ch));
    }
}

static void test_start_from_callback(void)
{
    struct chain ch = {.left = 5};
    struct lintel_http_request req = {.struct_size = sizeof(req), .url = url("/hello")};
    CU_ASSERT_PTR_NOT_NULL_FATAL(lintel_httpc_start(client, &req, on_chain, &ch));
    run_until(&ch.r.calls, 5, 5000);
    CU_ASSERT_EQUAL(ch.r.calls, 5);
    CU_ASSERT_EQUAL(ch.r.status, 200);
    result_clear(&ch.r);
}

#define CONCURRENT 100

struct numbered {
    int i;
    int *done;
    int *good;
};

static void on_numbered(void *arg, const struct lintel_http_response *resp)
{
    struct numbered *n = arg;
    char want[16];
    snprintf(want, sizeof(want), "%d", n->i);
    (*n->done)++;
    if (resp->status == 200 && resp->body.len == strlen(want) &&
        memcmp(resp->body.ptr, want, resp->body.len) == 0)
        (*n->good)++;
}

static void test_concurrent(void)
{
    int done = 0, good = 0;
    struct numbered n[CONCURRENT];
    for (int i = 0; i < CONCURRENT; i++) {
        char path[32];
        snprintf(path, sizeof(path), "/n?i=%d", i);
        n[i] = (struct numbered){.i = i, .done = &done, .good = &good};
        struct lintel_http_request req = {.struct_size = sizeof(req), .url = url(path)};
        CU_ASSERT_PTR_NOT_NULL(lintel_httpc_start(client, &req, on_numbered, &n[i]));
    }
    run_until(&done, CONCURRENT, 10000);
    CU_ASSERT_EQUAL(done, CONCURRENT);
    CU_ASSERT_EQUAL(good, CONCURRENT);
}

static void test_body_cap(void)
{
    struct result r = {0};
    char path[64];
    snprintf(path, sizeof(path), "/big?n=%d", LINTEL_HTTPC_BODY_MAX);
    CU_ASSERT_PTR_NOT_NULL_FATAL(get(path, &r));
    run_until(&r.calls, 1, 5000);
    CU_ASSERT_EQUAL(r.status, 200); /* exactly the cap is fine */
    CU_ASSERT_EQUAL(r.body_len, LINTEL_HTTPC_BODY_MAX);
    result_clear(&r);

    /* With a Content-Length, and chunked (the size is only known while reading). */
    snprintf(path, sizeof(path), "/big?n=%d", 2 * LINTEL_HTTPC_BODY_MAX);
    CU_ASSERT_PTR_NOT_NULL_FATAL(get(path, &r));
    run_until(&r.calls, 1, 5000);
    CU_ASSERT_EQUAL(r.calls, 1);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_STRING_EQUAL(r.error, "response too large");
    result_clear(&r);

    snprintf(path, sizeof(path), "/big?n=%d&chunked=1", LINTEL_HTTPC_BODY_MAX + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(get(path, &r));
    run_until(&r.calls, 1, 5000);
    CU_ASSERT_EQUAL(r.calls, 1);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_STRING_EQUAL(r.error, "response too large");
    result_clear(&r);
}

static void test_refused_requests(void)
{
    struct result r = {0};
    struct lintel_http_request req = {.struct_size = sizeof(req), .url = "ftp://127.0.0.1/x"};
    CU_ASSERT_PTR_NULL(lintel_httpc_start(client, &req, on_result, &r));
    req.url = NULL;
    CU_ASSERT_PTR_NULL(lintel_httpc_start(client, &req, on_result, &r));
    req.url = url("/hello");
    req.method = "GE T";
    CU_ASSERT_PTR_NULL(lintel_httpc_start(client, &req, on_result, &r));
    req.method = "GET";
    const char *bad_headers[] = {"X-A: 1\r\nX-Injected: 1", NULL};
    req.headers = bad_headers;
    CU_ASSERT_PTR_NULL(lintel_httpc_start(client, &req, on_result, &r));
    req.headers = NULL;
    req.body_len = 3; /* with no body pointer */
    CU_ASSERT_PTR_NULL(lintel_httpc_start(client, &req, on_result, &r));
    req.body_len = 0;
    req.struct_size = 8; /* too short to hold a url */
    CU_ASSERT_PTR_NULL(lintel_httpc_start(client, &req, on_result, &r));
    CU_ASSERT_PTR_NULL(lintel_httpc_start(client, NULL, on_result, &r));
    run_for(20);
    CU_ASSERT_EQUAL(r.calls, 0);
}

/* A caller built against an older, shorter struct: fields past its struct_size are not read. */
static void test_struct_size(void)
{
    struct result r = {0};
    struct lintel_http_request req = {
        .method = "POST", .url = url("/echo"), .body = "ignored", .body_len = 7, .timeout_ms = 1};
    req.struct_size = (uint32_t)offsetof(struct lintel_http_request, body);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lintel_httpc_start(client, &req, on_result, &r));
    run_until(&r.calls, 1, 3000);
    CU_ASSERT_EQUAL(r.status, 200); /* timeout_ms = 1 was not read either */
    CU_ASSERT_STRING_EQUAL(r.method, "POST");
    CU_ASSERT_EQUAL(r.body_len, 0);
    result_clear(&r);
}

/* Freeing a client with calls in flight: no callback, no leak. */
static void test_free_with_calls(void)
{
    struct lintel_httpc *c = lintel_httpc_new(base);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    struct result r = {0};
    /* Freed before the loop ever ran: the calls have not even connected. */
    struct lintel_http_request req = {.struct_size = sizeof(req), .url = url("/delay?ms=50")};
    CU_ASSERT_PTR_NOT_NULL(lintel_httpc_start(c, &req, on_result, &r));
    req.url = url("/hello");
    CU_ASSERT_PTR_NOT_NULL(lintel_httpc_start(c, &req, on_result, &r));
    lintel_httpc_free(c);
    run_for(150);
    CU_ASSERT_EQUAL(r.calls, 0);
    result_clear(&r);

    /* And with the two delayed calls connected and waiting. */
    c = lintel_httpc_new(base);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    req.url = url("/delay?ms=80");
    CU_ASSERT_PTR_NOT_NULL(lintel_httpc_start(c, &req, on_result, &r));
    CU_ASSERT_PTR_NOT_NULL(lintel_httpc_start(c, &req, on_result, &r));
    run_for(20);
    lintel_httpc_free(c);
    run_for(150);
    CU_ASSERT_EQUAL(r.calls, 0);
    result_clear(&r);
    lintel_httpc_free(NULL);
}

/* ---- suite -------------------------------------------------------------------------------- */

static int suite_init(void)
{
    if (lintel_httpc_global_init() != 0 || lintel_httpc_global_init() != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN); /* evhttp writes to clients that gave up, as lintel's main does */
    struct event_config *cfg = event_config_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK); /* as on a worker */
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!base)
        return -1;
    server = evhttp_new(base);
    struct evhttp_bound_socket *bound =
        server ? evhttp_bind_socket_with_handle(server, "127.0.0.1", 0) : NULL;
    if (!bound)
        return -1;
    evhttp_set_allowed_methods(server, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                           EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(server, on_request, NULL);
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&sa, &len) != 0)
        return -1;
    port = ntohs(sa.sin_port);
    client = lintel_httpc_new(base);
    return client ? 0 : -1;
}

static int suite_cleanup(void)
{
    lintel_httpc_free(client);
    /* Let delayed replies go out so that evhttp frees their requests. */
    for (uint64_t deadline = mono_ms() + 3000; delayed_pending > 0 && mono_ms() < deadline;)
        run_for(10);
    run_for(20);
    if (server)
        evhttp_free(server);
    if (base)
        event_base_free(base);
    return delayed_pending == 0 ? 0 : -1;
}

static CU_TestInfo httpc_tests[] = {
    {"GET with headers, response header lookup", test_get_headers},
    {"POST/PUT/DELETE bodies echoed", test_post_echo},
    {"the path is sent as given (no dot-segment removal)", test_path_as_is},
    {"404 passed through, HEAD", test_status_passed_through},
    {"timeout: status 0 and an error", test_timeout},
    {"connection refused: status 0 and an error", test_connection_refused},
    {"cancel: callback never runs", test_cancel},
    {"cancel a finished sibling from a callback", test_cancel_finished_sibling},
    {"start from inside a callback", test_start_from_callback},
    {"100 concurrent calls", test_concurrent},
    {"body over 1 MiB is an error", test_body_cap},
    {"refused requests return NULL", test_refused_requests},
    {"fields past struct_size are not read", test_struct_size},
    {"free with calls in flight", test_free_with_calls},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"httpc", suite_init, suite_cleanup, NULL, NULL, httpc_tests},
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
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() +
                      CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
