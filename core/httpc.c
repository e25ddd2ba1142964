/* Asynchronous outbound HTTP on a worker's event loop (see httpc.h).
 *
 * libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to wake it up
 * (CURLMOPT_TIMERFUNCTION); both become libevent events on the worker's base, and each event
 * hands control back with curl_multi_socket_action. Finished transfers are then read one at a
 * time with curl_multi_info_read, and each is removed from the multi handle before its callback
 * runs: a callback may then cancel other calls (curl_multi_remove_handle also drops their queued
 * "done" messages) or start new ones, and we never call back from inside libcurl. */
#include "httpc.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A socket libcurl asked us to watch (attached to it with curl_multi_assign). */
struct httpc_sock {
    struct lintel_httpc *client;
    struct event *ev;
    struct httpc_sock *prev, *next;
};

struct lintel_httpc {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;             /* libcurl's single timeout */
    struct lintel_httpc_call *calls; /* in flight (doubly linked) */
    struct httpc_sock *socks;        /* watched sockets (doubly linked) */
};

/* A growing byte buffer with a hard cap. */
struct httpc_buf {
    char *data;
    size_t len, cap;
};

struct lintel_httpc_call {
    struct lintel_http_response resp; /* first: header() gets back to the call from it */
    struct lintel_httpc *client;
    struct lintel_httpc_call *prev, *next;
    CURL *easy;
    struct curl_slist *headers;
    lintel_http_fn cb;
    void *arg;
    struct httpc_buf body;
    struct httpc_buf head; /* the last response head: "name\0value\0" pairs */
    bool delivering;       /* removed from curl, its callback is running */
    const char *fail;      /* our reason for aborting the transfer, if we did */
    char errbuf[CURL_ERROR_SIZE];
};

/* ---- process-wide setup ------------------------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc = -1;

static void on_global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

int lintel_httpc_global_init(void)
{
    pthread_once(&global_once, on_global_init);
    return global_rc;
}

/* ---- buffers and response head ------------------------------------------------------------- */

/* Appends n bytes; -1 when that would pass max (the buffer is unchanged), -2 when out of
 * memory. */
static int buf_append(struct httpc_buf *b, const void *p, size_t n, size_t max)
{
    if (n > max - b->len)
        return -1;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        if (cap > max)
            cap = max;
        char *d = realloc(b->data, cap);
        if (!d)
            return -2;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static void call_abort_reason(struct lintel_httpc_call *call, int rc)
{
    call->fail = rc == -1 ? "response too large" : "out of memory";
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct lintel_httpc_call *call = arg;
    int rc = buf_append(&call->body, p, n, LINTEL_HTTPC_BODY_MAX);
    if (rc != 0) {
        call_abort_reason(call, rc);
        return 0; /* anything but n aborts the transfer */
    }
    return n;
}

static bool is_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Receives the response head one line at a time (size is always 1). */
static size_t on_head_line(char *line, size_t size, size_t n, void *arg)
{
    struct lintel_httpc_call *call = arg;
    if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        call->head.len = 0; /* a new head (after 1xx): only the last one counts */
        return n;
    }
    size_t len = n;
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    const char *colon = memchr(line, ':', len);
    /* The blank line, folded continuations and lines holding NUL are not kept. */
    if (!colon || colon == line || is_ows(line[0]) || memchr(line, '\0', len))
        return n;
    size_t name_len = (size_t)(colon - line);
    while (name_len > 0 && is_ows(line[name_len - 1]))
        name_len--;
    const char *value = colon + 1;
    const char *end = line + len;
    while (value < end && is_ows(*value))
        value++;
    while (end > value && is_ows(end[-1]))
        end--;
    size_t before = call->head.len;
    int rc = buf_append(&call->head, line, name_len, LINTEL_HTTPC_HEAD_MAX);
    if (rc == 0)
        rc = buf_append(&call->head, "", 1, LINTEL_HTTPC_HEAD_MAX);
    if (rc == 0)
        rc = buf_append(&call->head, value, (size_t)(end - value), LINTEL_HTTPC_HEAD_MAX);
    if (rc == 0)
        rc = buf_append(&call->head, "", 1, LINTEL_HTTPC_HEAD_MAX);
    if (rc != 0) {
        call->head.len = before;
        call_abort_reason(call, rc);
        return 0;
    }
    return n;
}

static struct lintel_str on_resp_header(const struct lintel_http_response *resp, const char *name)
{
    const struct lintel_httpc_call *call = (const struct lintel_httpc_call *)resp;
    const char *p = call->head.data;
    const char *end = p + call->head.len;
    while (p && p < end) {
        size_t name_len = strlen(p);
        const char *value = p + name_len + 1;
        size_t value_len = strlen(value);
        if (name && strcasecmp(p, name) == 0)
            return (struct lintel_str){value, value_len};
        p = value + value_len + 1;
    }
    return (struct lintel_str){NULL, 0};
}

/* ---- calls ---------------------------------------------------------------------------------- */

static void call_link(struct lintel_httpc *c, struct lintel_httpc_call *call)
{
    call->prev = NULL;
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
}

static void call_unlink(struct lintel_httpc_call *call)
{
    struct lintel_httpc *c = call->client;
    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
}

/* Frees a call that is not (or no longer) in the multi handle. */
static void call_free(struct lintel_httpc_call *call)
{
    if (call->easy)
        curl_easy_cleanup(call->easy);
    curl_slist_free_all(call->headers);
    free(call->body.data);
    free(call->head.data);
    free(call);
}

/* Takes a finished transfer out of curl and tells its owner. */
static void call_finish(struct lintel_httpc *c, CURL *easy, CURLcode result)
{
    char *priv = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    struct lintel_httpc_call *call = (struct lintel_httpc_call *)priv;
    curl_multi_remove_handle(c->multi, easy);
    call_unlink(call);
    call->delivering = true;

    struct lintel_http_response *resp = &call->resp;
    resp->struct_size = sizeof(*resp);
    resp->header = on_resp_header;
    long code = 0;
    if (result == CURLE_OK)
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    if (result == CURLE_OK && code > 0 && code <= INT_MAX) {
        resp->status = (int)code;
        resp->error = NULL;
        resp->body = (struct lintel_str){call->body.data ? call->body.data : "", call->body.len};
    } else {
        resp->status = 0;
        if (call->fail)
            resp->error = call->fail;
        else if (result == CURLE_FILESIZE_EXCEEDED)
            resp->error = "response too large";
        else if (result == CURLE_OK)
            resp->error = "no response status";
        else
            resp->error = call->errbuf[0] ? call->errbuf : curl_easy_strerror(result);
        resp->body = (struct lintel_str){NULL, 0};
        call->head.len = 0;
    }
    call->cb(call->arg, resp);
    call_free(call);
}

/* Delivers every transfer curl has finished. */
static void deliver_done(struct lintel_httpc *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE)
            call_finish(c, msg->easy_handle, msg->data.result);
    }
}

/* ---- libcurl <-> libevent ------------------------------------------------------------------ */

static void on_sock_event(evutil_socket_t fd, short what, void *arg)
{
    struct httpc_sock *s = arg;
    struct lintel_httpc *c = s->client; /* s may be freed by the action below */
    int flags =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    deliver_done(c);
}

static void on_timer_event(evutil_socket_t fd, short what, void *arg)
{
    struct lintel_httpc *c = arg;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    deliver_done(c);
}

static void sock_free(struct lintel_httpc *c, struct httpc_sock *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    event_free(s->ev);
    free(s);
}

/* libcurl: watch fd for what (or stop watching it). Returns 0, or -1 to fail the transfer. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
    struct lintel_httpc *c = arg;
    struct httpc_sock *s = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (s)
            sock_free(c, s);
        return 0;
    }
    short events = EV_PERSIST;
    if (what & CURL_POLL_IN)
        events |= EV_READ;
    if (what & CURL_POLL_OUT)
        events |= EV_WRITE;
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->client = c;
        s->ev = event_new(c->base, fd, events, on_sock_event, s);
        if (!s->ev || curl_multi_assign(c->multi, fd, s) != CURLM_OK) {
            if (s->ev)
                event_free(s->ev);
            free(s);
            return -1;
        }
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
    } else {
        event_del(s->ev);
        event_assign(s->ev, c->base, fd, events, on_sock_event, s);
    }
    return event_add(s->ev, NULL) == 0 ? 0 : -1;
}

/* libcurl: wake me up in timeout_ms (-1: never). */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *arg)
{
    struct lintel_httpc *c = arg;
    if (timeout_ms < 0)
        return event_del(c->timer) == 0 ? 0 : -1;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    return event_add(c->timer, &tv) == 0 ? 0 : -1;
}

/* ---- client --------------------------------------------------------------------------------- */

struct lintel_httpc *lintel_httpc_new(struct event_base *base)
{
    struct lintel_httpc *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->base = base;
    c->multi = curl_multi_init();
    c->timer = evtimer_new(base, on_timer_event, c);
    if (!c->multi || !c->timer)
        goto fail;
    if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK)
        goto fail;
    return c;
fail:
    if (c->multi)
        curl_multi_cleanup(c->multi);
    if (c->timer)
        event_free(c->timer);
    free(c);
    return NULL;
}

void lintel_httpc_free(struct lintel_httpc *c)
{
    if (!c)
        return;
    while (c->calls) {
        struct lintel_httpc_call *call = c->calls;
        call_unlink(call);
        curl_multi_remove_handle(c->multi, call->easy);
        call_free(call);
    }
    /* Closing the pooled connections may still call on_curl_socket / on_curl_timer. */
    curl_multi_cleanup(c->multi);
    while (c->socks)
        sock_free(c, c->socks);
    event_free(c->timer);
    free(c);
}

/* ---- starting and cancelling ---------------------------------------------------------------- */

/* Whether the caller's struct (of size size) holds all of field. */
#define REQ_HAS(size, field)                                                                       \
    ((size) >= offsetof(struct lintel_http_request, field) +                                       \
                   sizeof(((struct lintel_http_request *)0)->field))

/* Copies the fields the caller's struct has; the others stay 0 (absent). */
static void request_read(const struct lintel_http_request *in, struct lintel_http_request *out)
{
    size_t size = in->struct_size;
    memset(out, 0, sizeof(*out));
    out->struct_size = sizeof(*out);
    if (REQ_HAS(size, method))
        out->method = in->method;
    if (REQ_HAS(size, url))
        out->url = in->url;
    if (REQ_HAS(size, headers))
        out->headers = in->headers;
    if (REQ_HAS(size, body))
        out->body = in->body;
    if (REQ_HAS(size, body_len))
        out->body_len = in->body_len;
    if (REQ_HAS(size, timeout_ms))
        out->timeout_ms = in->timeout_ms;
}

/* An RFC 9110 token of reasonable length. */
static bool is_method(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = m[i];
        bool alnum =
            (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
        if (!alnum && !strchr("!#$%&'*+-.^_`|~", ch))
            return false;
    }
    return true;
}

/* Builds the request header list; -1 on a header holding CR or LF, or out of memory. */
static int headers_build(struct lintel_httpc_call *call, const char *const *headers)
{
    bool has_expect = false;
    for (size_t i = 0; headers && headers[i]; i++) {
        const char *h = headers[i];
        if (strpbrk(h, "\r\n"))
            return -1;
        if (strncasecmp(h, "expect:", 7) == 0)
            has_expect = true;
        struct curl_slist *l = curl_slist_append(call->headers, h);
        if (!l)
            return -1;
        call->headers = l;
    }
    if (!has_expect) {
        /* "Name:" with no value stops curl from sending its own: no 100-continue round trip. */
        struct curl_slist *l = curl_slist_append(call->headers, "Expect:");
        if (!l)
            return -1;
        call->headers = l;
    }
    return 0;
}

/* Sets method and body; returns nonzero when curl refused an option. */
static int method_set(CURL *easy, const char *method, const struct lintel_http_request *r)
{
    int bad = 0;
    if (strcmp(method, "HEAD") == 0) {
        bad |= curl_easy_setopt(easy, CURLOPT_NOBODY, 1L) != CURLE_OK;
    } else if (r->body_len > 0 || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
               strcmp(method, "PATCH") == 0) {
        bad |= curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len) !=
               CURLE_OK;
        bad |=
            curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, r->body_len ? r->body : "") != CURLE_OK;
        if (strcmp(method, "POST") != 0)
            bad |= curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK;
    } else if (strcmp(method, "GET") != 0) {
        bad |= curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK;
    }
    return bad;
}

struct lintel_httpc_call *lintel_httpc_start(struct lintel_httpc *c,
                                             const struct lintel_http_request *req,
                                             lintel_http_fn cb, void *arg)
{
    if (!c || !req || !cb)
        return NULL;
    struct lintel_http_request r;
    request_read(req, &r);
    const char *method = r.method ? r.method : "GET";
    if (!r.url || (strncasecmp(r.url, "http://", 7) != 0 && strncasecmp(r.url, "https://", 8) != 0))
        return NULL;
    if (!is_method(method) || (r.body_len > 0 && !r.body))
        return NULL;

    struct lintel_httpc_call *call = calloc(1, sizeof(*call));
    if (!call)
        return NULL;
    call->client = c;
    call->cb = cb;
    call->arg = arg;
    call->easy = curl_easy_init();
    if (!call->easy || headers_build(call, r.headers) != 0)
        goto fail;

    CURL *e = call->easy;
    uint64_t timeout = r.timeout_ms ? r.timeout_ms : LINTEL_HTTPC_TIMEOUT_MS;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, r.url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L) != CURLE_OK; /* no "/../" squashing */
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout > LONG_MAX ? LONG_MAX : (long)timeout) !=
           CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)call) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, call) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_head_line) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, call) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)LINTEL_HTTPC_BODY_MAX) !=
           CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->headers) != CURLE_OK;
    bad |= method_set(e, method, &r);
    /* Adding only arms curl's timer (on_curl_timer): the transfer, and so the callback, starts
     * from the loop, never from here. */
    if (bad || curl_multi_add_handle(c->multi, e) != CURLM_OK)
        goto fail;
    call_link(c, call);
    return call;
fail:
    call_free(call);
    return NULL;
}

void lintel_httpc_cancel(struct lintel_httpc_call *call)
{
    if (!call || call->delivering)
        return;
    call_unlink(call);
    curl_multi_remove_handle(call->client->multi, call->easy);
    call_free(call);
}
