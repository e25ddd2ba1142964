/* lintel-test-origin: the HTTP/1.1 origin server the integration tests proxy to.
 *
 *   lintel-test-origin --port N [--name NAME] [--addr 127.0.0.1] [--tls CERT KEY] [--verbose]
 *
 * --tls: speak HTTPS with that certificate chain and key (PEM files), for upstream TLS tests.
 * Prints "ready PORT" on stdout once listening (PORT is the bound port, useful with --port 0).
 * Keepalive and pipelining are supported: requests on one connection are answered in order, one
 * at a time. The origin is deliberately strict about what the gateway sends it (bare CR or LF,
 * obs-fold, Content-Length with Transfer-Encoding, a Transfer-Encoding other than "chunked",
 * duplicate Content-Length, missing Host on HTTP/1.1): such a request gets a 400 whose JSON body
 * says why, and the problem is logged on stderr, so that a test sees the gateway's mistake.
 *
 * Endpoints (matched on the path, the query is ignored):
 *   /stats          {"connections":<accepted so far>,"requests":<so far>} (both include this one)
 *   /status/NNN     status NNN (200..599), a small text body (none for 204 and 304)
 *   /bytes/N        N pattern bytes with Content-Length
 *   /chunked/N      N pattern bytes, Transfer-Encoding: chunked (read-to-close for HTTP/1.0)
 *   /close/N        N pattern bytes, neither Content-Length nor chunked, then close
 *   /sleep/MS       the default answer after MS milliseconds
 *   /stall/MS       stop reading the request body for MS milliseconds after the head, then read
 *                   it and give the default answer (to test the gateway's upload backpressure)
 *   /hop            the default answer plus hop-by-hop response headers (Connection: X-Hop-Secret,
 *                   X-Hop-Secret, Keep-Alive, Proxy-Connection) a proxy must remove
 *   /bad/cl-te      a raw response with both Content-Length and Transfer-Encoding, then close
 *   /bad/dup-cl     a raw response with two differing Content-Length, then close
 *   /bad/garbage    "HELLO\r\n\r\n", then close
 *   /reset          close the connection (with RST) without answering
 *   anything else   200, the default answer: {"origin":NAME,"method":..,"target":..,"conn":S,
 *                   "body_bytes":N,"body_fnv":"<16 hex digits>","headers":{name:value,...}}
 *                   (header names lowercased, repeated headers joined with ", ")
 * Every generated answer carries X-Origin: NAME and X-Origin-Conn: S (the connection serial,
 * from 1), and with --tls X-Origin-Sni: the server name the client sent (when it sent one).
 * Pattern bodies also carry X-Body-Fnv: the FNV-1a 64 of the N bytes, so a client can
 * check what it received without knowing the pattern. Request bodies (Content-Length or chunked)
 * are counted and hashed as they stream in, never held whole; "Expect: 100-continue" gets an
 * interim 100 before the body is read. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#define MAX_HEAD (1024 * 1024) /* the gateway enforces the real limits; this only bounds memory */
#define MAX_CHUNK_LINE 4096
#define MAX_TRAILERS (16 * 1024)
#define STREAM_BLOCK (64 * 1024)
#define STREAM_HIGH (512 * 1024) /* refill the output up to this */
#define STREAM_LOW (128 * 1024)  /* ... whenever it drains below this */
#define LINGER_MS 2000

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

struct origin {
    struct event_base *base;
    const char *name;
    bool verbose;
    SSL_CTX *tls; /* --tls, else NULL */
    uint64_t connections, requests;
};

/* HEAD: reading a head; BODY: reading its body; RESPOND: answering (input not read); CLOSING:
 * flushing the last answer; LINGER: write side shut, reading and dropping until the peer closes
 * (a close() with unread input would send RST and could destroy the answer in flight). */
enum conn_state { ST_HEAD, ST_BODY, ST_RESPOND, ST_CLOSING, ST_LINGER };
enum body_kind { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };
enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };
enum stream_kind { STREAM_NONE, STREAM_LENGTH, STREAM_CHUNKED, STREAM_CLOSE };

struct header {
    char *name; /* lowercased */
    char *value;
};

struct request {
    char *head; /* the whole head, NUL-terminated; method/target/headers point into it */
    char *method, *target, *path;
    int minor; /* HTTP/1.minor */
    struct header *hv;
    size_t nh;
    bool keepalive, expect_continue, is_head;
    enum body_kind body;
    uint64_t remaining; /* LENGTH: bytes left; CHUNKED: bytes left in the current chunk */
    enum chunk_state chunk;
    size_t trailer_bytes;
    uint64_t body_bytes, fnv;
};

struct conn {
    struct origin *o;
    struct bufferevent *bev;
    uint64_t serial;
    enum conn_state st;
    struct request req;
    struct event *timer; /* /sleep, /stall */
    bool stalled;        /* /stall: not reading the body until the timer fires */
    enum stream_kind stream;
    uint64_t out_off, out_len; /* pattern bytes sent so far / to send */
    bool close_after;
};

static void conn_advance(struct conn *c);

static uint64_t fnv_update(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* Pattern bytes: printable, and not periodic over short spans so that a reordered or repeated
 * block changes the hash. */
static void pattern_fill(unsigned char *p, uint64_t off, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i++) {
        uint64_t x = off + i;
        p[i] = (unsigned char)alphabet[(x + (x >> 8) * 7 + (x >> 16) * 13 + (x >> 24) * 31) & 63];
    }
}

static uint64_t pattern_fnv(uint64_t n)
{
    unsigned char buf[STREAM_BLOCK];
    uint64_t h = FNV_OFFSET;
    for (uint64_t off = 0; off < n;) {
        size_t k = n - off < sizeof buf ? (size_t)(n - off) : sizeof buf;
        pattern_fill(buf, off, k);
        h = fnv_update(h, buf, k);
        off += k;
    }
    return h;
}

static void request_reset(struct request *r)
{
    free(r->head);
    free(r->hv);
    memset(r, 0, sizeof *r);
}

static void conn_free(struct conn *c)
{
    if (c->timer)
        event_free(c->timer);
    request_reset(&c->req);
    bufferevent_free(c->bev);
    free(c);
}

static const char *reason_phrase(int status)
{
    static const struct {
        int status;
        const char *reason;
    } reasons[] = {
        {200, "OK"},
        {201, "Created"},
        {204, "No Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {304, "Not Modified"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {429, "Too Many Requests"},
        {500, "Internal Server Error"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };
    for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return "Status";
}

static void json_string(struct evbuffer *b, const char *s)
{
    evbuffer_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            evbuffer_add_printf(b, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            evbuffer_add_printf(b, "\\u%04x", ch);
        else
            evbuffer_add(b, s, 1);
    }
    evbuffer_add(b, "\"", 1);
}

/* Writes the status line and the headers every generated answer carries. The caller adds its own
 * headers and the empty line. */
static void write_status(struct conn *c, int status)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nX-Origin: %s\r\nX-Origin-Conn: %" PRIu64 "\r\n",
                        status, reason_phrase(status), c->o->name, c->serial);
    SSL *ssl = c->o->tls ? bufferevent_openssl_get_ssl(c->bev) : NULL;
    const char *sni = ssl ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
    if (sni)
        evbuffer_add_printf(out, "X-Origin-Sni: %s\r\n", sni);
    if (c->close_after)
        evbuffer_add_printf(out, "Connection: close\r\n");
}

/* Sends a complete answer with a Content-Length body (dropped for HEAD and bodiless statuses). */
static void respond(struct conn *c, int status, const char *ctype, const char *extra,
                    struct evbuffer *body)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    bool bodiless = status == 204 || status == 304;
    write_status(c, status);
    if (extra)
        evbuffer_add(out, extra, strlen(extra));
    if (!bodiless)
        evbuffer_add_printf(out, "Content-Type: %s\r\nContent-Length: %zu\r\n", ctype,
                            body ? evbuffer_get_length(body) : 0);
    evbuffer_add(out, "\r\n", 2);
    if (body && !bodiless && !c->req.is_head)
        evbuffer_add_buffer(out, body);
}

/* A request the origin refuses: logged, answered with 400 and the connection closed. */
static void reject(struct conn *c, const char *why)
{
    fprintf(stderr, "origin %s: conn %" PRIu64 ": bad request: %s\n", c->o->name, c->serial, why);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "{\"origin_error\":");
    json_string(b, why);
    evbuffer_add_printf(b, "}");
    c->close_after = true;
    c->req.is_head = false;
    respond(c, 400, "application/json", NULL, b);
    evbuffer_free(b);
    c->st = ST_RESPOND;
}

static void default_answer(struct conn *c, const char *extra)
{
    struct request *r = &c->req;
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "{\"origin\":");
    json_string(b, c->o->name);
    evbuffer_add_printf(b, ",\"method\":");
    json_string(b, r->method);
    evbuffer_add_printf(b, ",\"target\":");
    json_string(b, r->target);
    evbuffer_add_printf(b,
                        ",\"conn\":%" PRIu64 ",\"body_bytes\":%" PRIu64
                        ",\"body_fnv\":\"%016" PRIx64 "\",\"headers\":{",
                        c->serial, r->body_bytes, r->fnv);
    bool first = true;
    for (size_t i = 0; i < r->nh; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(r->hv[j].name, r->hv[i].name) == 0;
        if (seen)
            continue;
        evbuffer_add_printf(b, "%s", first ? "" : ",");
        first = false;
        json_string(b, r->hv[i].name);
        evbuffer_add(b, ":", 1);
        /* Repeated headers are joined: build the joined value, then escape it once. */
        struct evbuffer *v = evbuffer_new();
        for (size_t j = i; j < r->nh; j++)
            if (strcmp(r->hv[j].name, r->hv[i].name) == 0)
                evbuffer_add_printf(v, "%s%s", j == i ? "" : ", ", r->hv[j].value);
        evbuffer_add(v, "", 1);
        char *joined = (char *)evbuffer_pullup(v, -1);
        json_string(b, joined);
        evbuffer_free(v);
    }
    evbuffer_add_printf(b, "}}");
    respond(c, 200, "application/json", extra, b);
    evbuffer_free(b);
}

/* Appends output for a pattern stream until the buffer is full enough. Returns true when the
 * whole body has been queued. */
static bool stream_refill(struct conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    unsigned char block[STREAM_BLOCK];
    while (c->out_off < c->out_len && evbuffer_get_length(out) < STREAM_HIGH) {
        uint64_t left = c->out_len - c->out_off;
        size_t n = left < sizeof block ? (size_t)left : sizeof block;
        pattern_fill(block, c->out_off, n);
        if (c->stream == STREAM_CHUNKED)
            evbuffer_add_printf(out, "%zx\r\n", n);
        evbuffer_add(out, block, n);
        if (c->stream == STREAM_CHUNKED)
            evbuffer_add(out, "\r\n", 2);
        c->out_off += n;
    }
    if (c->out_off < c->out_len)
        return false;
    if (c->stream == STREAM_CHUNKED)
        evbuffer_add(out, "0\r\n\r\n", 5);
    c->stream = STREAM_NONE;
    return true;
}

static void on_linger_done(evutil_socket_t fd, short what, void *arg)
{
    conn_free(arg);
}

static void start_linger(struct conn *c)
{
    struct timeval tv = {.tv_sec = LINGER_MS / 1000, .tv_usec = (LINGER_MS % 1000) * 1000};
    c->st = ST_LINGER;
    shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    c->timer = evtimer_new(c->o->base, on_linger_done, c);
    evtimer_add(c->timer, &tv);
    bufferevent_enable(c->bev, EV_READ);
}

/* The current answer is fully queued. Returns true when the connection waits for the next
 * request; false when it is closing (after flushing) and must not be advanced. */
static bool finish(struct conn *c)
{
    request_reset(&c->req);
    if (c->close_after) {
        c->st = ST_CLOSING;
        bufferevent_disable(c->bev, EV_READ);
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        bufferevent_enable(c->bev, EV_WRITE);
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            start_linger(c);
        return false;
    }
    c->st = ST_HEAD;
    bufferevent_enable(c->bev, EV_READ);
    return true;
}

enum outcome { ANSWERED, LATER, FREED }; /* the answer is queued / will be / connection gone */

static enum outcome start_stream(struct conn *c, enum stream_kind kind, uint64_t n)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (kind == STREAM_CHUNKED && c->req.minor == 0)
        kind = STREAM_CLOSE;
    if (kind == STREAM_CLOSE)
        c->close_after = true;
    write_status(c, 200);
    evbuffer_add_printf(out,
                        "Content-Type: application/octet-stream\r\nX-Body-Fnv: %016" PRIx64 "\r\n",
                        pattern_fnv(n));
    if (kind == STREAM_LENGTH)
        evbuffer_add_printf(out, "Content-Length: %" PRIu64 "\r\n", n);
    else if (kind == STREAM_CHUNKED)
        evbuffer_add_printf(out, "Transfer-Encoding: chunked\r\n");
    evbuffer_add(out, "\r\n", 2);
    if (c->req.is_head)
        return ANSWERED;
    c->stream = kind;
    c->out_off = 0;
    c->out_len = n;
    if (stream_refill(c))
        return ANSWERED;
    bufferevent_setwatermark(c->bev, EV_WRITE, STREAM_LOW, 0);
    bufferevent_enable(c->bev, EV_WRITE);
    return LATER;
}

static void on_sleep_done(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    event_free(c->timer);
    c->timer = NULL;
    default_answer(c, NULL);
    if (finish(c))
        conn_advance(c);
}

static enum outcome bad_response(struct conn *c, const char *raw)
{
    evbuffer_add(bufferevent_get_output(c->bev), raw, strlen(raw));
    c->close_after = true;
    return ANSWERED;
}

/* Parses the unsigned decimal after prefix in path; -1 when path does not match. */
static int64_t path_number(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(path, prefix, n) != 0 || path[n] < '0' || path[n] > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(path + n, &end, 10);
    if (errno || *end || v > INT64_MAX)
        return -1;
    return (int64_t)v;
}

static enum outcome dispatch(struct conn *c)
{
    struct request *r = &c->req;
    const char *p = r->path;
    int64_t n;
    c->st = ST_RESPOND;
    c->close_after = !r->keepalive;
    bufferevent_disable(c->bev, EV_READ); /* one answer at a time: pipelined requests wait */
    if (c->o->verbose)
        fprintf(stderr, "origin %s: conn %" PRIu64 ": %s %s (body %" PRIu64 ")\n", c->o->name,
                c->serial, r->method, r->target, r->body_bytes);

    if (strcmp(p, "/stats") == 0) {
        struct evbuffer *b = evbuffer_new();
        evbuffer_add_printf(b, "{\"connections\":%" PRIu64 ",\"requests\":%" PRIu64 "}",
                            c->o->connections, c->o->requests);
        respond(c, 200, "application/json", NULL, b);
        evbuffer_free(b);
    } else if ((n = path_number(p, "/status/")) >= 0) {
        if (n < 200 || n > 599) {
            reject(c, "status out of range 200..599");
        } else {
            struct evbuffer *b = evbuffer_new();
            evbuffer_add_printf(b, "status %d\n", (int)n);
            respond(c, (int)n, "text/plain", NULL, b);
            evbuffer_free(b);
        }
    } else if ((n = path_number(p, "/bytes/")) >= 0) {
        return start_stream(c, STREAM_LENGTH, (uint64_t)n);
    } else if ((n = path_number(p, "/chunked/")) >= 0) {
        return start_stream(c, STREAM_CHUNKED, (uint64_t)n);
    } else if ((n = path_number(p, "/close/")) >= 0) {
        return start_stream(c, STREAM_CLOSE, (uint64_t)n);
    } else if ((n = path_number(p, "/sleep/")) >= 0) {
        struct timeval tv = {.tv_sec = n / 1000, .tv_usec = (n % 1000) * 1000};
        c->timer = evtimer_new(c->o->base, on_sleep_done, c);
        evtimer_add(c->timer, &tv);
        return LATER;
    } else if (strcmp(p, "/hop") == 0) {
        default_answer(c, "Connection: X-Hop-Secret\r\nX-Hop-Secret: 1\r\n"
                          "Keep-Alive: timeout=30\r\nProxy-Connection: keep-alive\r\n");
    } else if (strcmp(p, "/bad/cl-te") == 0) {
        return bad_response(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    } else if (strcmp(p, "/bad/dup-cl") == 0) {
        return bad_response(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n"
                               "\r\nhello!");
    } else if (strcmp(p, "/bad/garbage") == 0) {
        return bad_response(c, "HELLO\r\n\r\n");
    } else if (strcmp(p, "/reset") == 0) {
        /* Linger 0: close() sends RST instead of FIN. */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(bufferevent_getfd(c->bev), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        if (c->o->verbose)
            fprintf(stderr, "origin %s: conn %" PRIu64 ": reset\n", c->o->name, c->serial);
        conn_free(c);
        return FREED;
    } else {
        default_answer(c, NULL);
    }
    return ANSWERED;
}

static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool has_token(const char *list, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == n && strncasecmp(p, token, n) == 0)
            return true;
        p = e;
    }
    return false;
}

/* Splits the head (NUL-terminated, ending in CRLFCRLF) in place. Returns NULL or why not. */
static const char *parse_head(struct request *r)
{
    char *s = r->head;
    for (char *p = s; *p; p++) {
        if (*p == '\r' && p[1] != '\n')
            return "bare CR";
        if (*p == '\n' && (p == s || p[-1] != '\r'))
            return "bare LF";
    }
    char *eol = strstr(s, "\r\n");
    *eol = '\0';
    char *sp1 = strchr(s, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strchr(sp2 + 1, ' '))
        return "malformed request line";
    *sp1 = *sp2 = '\0';
    r->method = s;
    r->target = sp1 + 1;
    if (strcmp(sp2 + 1, "HTTP/1.1") == 0)
        r->minor = 1;
    else if (strcmp(sp2 + 1, "HTTP/1.0") == 0)
        r->minor = 0;
    else
        return "version is not HTTP/1.0 or HTTP/1.1";
    if (!*r->method || !*r->target)
        return "malformed request line";
    for (const char *m = r->method; *m; m++)
        if (!is_tchar((unsigned char)*m))
            return "malformed method";
    r->is_head = strcmp(r->method, "HEAD") == 0;

    size_t cap = 0;
    const char *cl = NULL, *te = NULL, *conn = NULL;
    int hosts = 0;
    for (char *line = eol + 2; *line; line = eol + 2) {
        eol = strstr(line, "\r\n");
        *eol = '\0';
        if (*line == '\0')
            break;
        if (*line == ' ' || *line == '\t')
            return "obs-fold";
        char *colon = strchr(line, ':');
        if (!colon || colon == line)
            return "header line without a name";
        for (char *p = line; p < colon; p++) {
            if (!is_tchar((unsigned char)*p))
                return "bad character in header name";
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        }
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        char *e = v + strlen(v);
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            *--e = '\0';
        for (char *p = v; *p; p++)
            if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
                return "control character in header value";
        if (r->nh == cap) {
            cap = cap ? cap * 2 : 32;
            struct header *nv = realloc(r->hv, cap * sizeof *nv);
            if (!nv)
                return "out of memory";
            r->hv = nv;
        }
        r->hv[r->nh++] = (struct header){line, v};
        if (strcmp(line, "content-length") == 0) {
            if (cl)
                return "duplicate Content-Length";
            cl = v;
        } else if (strcmp(line, "transfer-encoding") == 0) {
            if (te)
                return "duplicate Transfer-Encoding";
            te = v;
        } else if (strcmp(line, "connection") == 0) {
            conn = v; /* a proxy sends at most one; the last one wins here */
        } else if (strcmp(line, "host") == 0) {
            hosts++;
        } else if (strcmp(line, "expect") == 0) {
            r->expect_continue = strcasecmp(v, "100-continue") == 0;
        }
    }
    if (r->minor == 1 && hosts != 1)
        return hosts ? "duplicate Host" : "missing Host";
    if (cl && te)
        return "Content-Length with Transfer-Encoding";
    if (te) {
        if (strcasecmp(te, "chunked") != 0)
            return "Transfer-Encoding other than chunked";
        r->body = BODY_CHUNKED;
        r->chunk = CH_SIZE;
    } else if (cl) {
        char *end;
        if (*cl < '0' || *cl > '9' || strlen(cl) > 18)
            return "malformed Content-Length";
        r->remaining = strtoull(cl, &end, 10);
        if (*end)
            return "malformed Content-Length";
        r->body = r->remaining ? BODY_LENGTH : BODY_NONE;
    }
    r->keepalive = r->minor == 1 ? !(conn && has_token(conn, "close"))
                                 : (conn && has_token(conn, "keep-alive"));
    size_t plen = strcspn(r->target, "?");
    r->path = strndup(r->target, plen);
    return r->path ? NULL : "out of memory";
}

/* Hashes and drops up to max bytes of body from in; returns how many. */
static uint64_t consume_data(struct request *r, struct evbuffer *in, uint64_t max)
{
    size_t avail = evbuffer_get_length(in);
    size_t n = (uint64_t)avail < max ? avail : (size_t)max;
    struct evbuffer_iovec vec[32];
    size_t left = n;
    while (left > 0) {
        int nv = evbuffer_peek(in, (ev_ssize_t)left, NULL, vec, 32);
        size_t done = 0;
        for (int i = 0; i < nv && i < 32 && done < left; i++) {
            size_t k = vec[i].iov_len < left - done ? vec[i].iov_len : left - done;
            r->fnv = fnv_update(r->fnv, vec[i].iov_base, k);
            done += k;
        }
        evbuffer_drain(in, done);
        left -= done;
    }
    r->body_bytes += n;
    return n;
}

/* Reads as much body as is buffered. Returns 1 when the body is complete, 0 when more is needed,
 * or -1 with *why set on malformed chunked framing. */
static int read_body(struct request *r, struct evbuffer *in, const char **why)
{
    if (r->body == BODY_LENGTH) {
        r->remaining -= consume_data(r, in, r->remaining);
        return r->remaining == 0;
    }
    for (;;) {
        size_t len;
        char *line;
        switch (r->chunk) {
        case CH_SIZE:
            line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF_STRICT);
            if (!line) {
                if (evbuffer_get_length(in) > MAX_CHUNK_LINE) {
                    *why = "chunk size line too long";
                    return -1;
                }
                return 0;
            }
            {
                char *end;
                size_t digits = strspn(line, "0123456789abcdefABCDEF");
                r->remaining = strtoull(line, &end, 16);
                bool ok = digits >= 1 && digits <= 16 && (*end == '\0' || *end == ';');
                free(line);
                if (!ok) {
                    *why = "malformed chunk size";
                    return -1;
                }
            }
            r->chunk = r->remaining ? CH_DATA : CH_TRAILER;
            break;
        case CH_DATA:
            r->remaining -= consume_data(r, in, r->remaining);
            if (r->remaining)
                return 0;
            r->chunk = CH_DATA_END;
            break;
        case CH_DATA_END: {
            char crlf[2];
            if (evbuffer_get_length(in) < 2)
                return 0;
            evbuffer_remove(in, crlf, 2);
            if (crlf[0] != '\r' || crlf[1] != '\n') {
                *why = "chunk data not followed by CRLF";
                return -1;
            }
            r->chunk = CH_SIZE;
            break;
        }
        case CH_TRAILER:
            line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF_STRICT);
            if (!line) {
                if (r->trailer_bytes + evbuffer_get_length(in) > MAX_TRAILERS) {
                    *why = "trailers too long";
                    return -1;
                }
                return 0;
            }
            free(line);
            r->trailer_bytes += len + 2;
            if (len == 0)
                return 1;
            break;
        }
    }
}

static void on_stall_done(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    event_free(c->timer);
    c->timer = NULL;
    c->stalled = false;
    bufferevent_enable(c->bev, EV_READ);
    conn_advance(c);
}

/* Runs the connection's state machine as far as the buffered input allows: parses heads, reads
 * bodies and answers, request after request, until it must wait. May free c. */
static void conn_advance(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (c->st == ST_HEAD || c->st == ST_BODY) {
        struct request *r = &c->req;
        const char *why = NULL;
        if (c->st == ST_HEAD) {
            /* Empty lines before a request line are tolerated (RFC 9112 2.2). */
            while (evbuffer_get_length(in) >= 2) {
                char two[2];
                evbuffer_copyout(in, two, 2);
                if (two[0] != '\r' || two[1] != '\n')
                    break;
                evbuffer_drain(in, 2);
            }
            struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
            if (end.pos < 0) {
                if (evbuffer_get_length(in) > MAX_HEAD) {
                    reject(c, "head too long");
                    finish(c);
                }
                return;
            }
            size_t hlen = (size_t)end.pos + 4;
            r->fnv = FNV_OFFSET;
            r->head = malloc(hlen + 1);
            if (!r->head) {
                conn_free(c);
                return;
            }
            evbuffer_remove(in, r->head, hlen);
            r->head[hlen] = '\0';
            c->o->requests++;
            if (strlen(r->head) != hlen) {
                why = "NUL in head";
            } else {
                why = parse_head(r);
            }
            if (why) {
                reject(c, why);
                finish(c);
                return;
            }
            if (r->expect_continue && r->body != BODY_NONE)
                evbuffer_add_printf(bufferevent_get_output(c->bev),
                                    "HTTP/1.1 100 Continue\r\n\r\n");
            c->st = ST_BODY;
            int64_t stall = path_number(r->path, "/stall/");
            if (stall > 0 && r->body != BODY_NONE) {
                struct timeval tv = {.tv_sec = stall / 1000, .tv_usec = (stall % 1000) * 1000};
                c->timer = evtimer_new(c->o->base, on_stall_done, c);
                evtimer_add(c->timer, &tv);
                c->stalled = true;
                bufferevent_disable(c->bev, EV_READ);
            }
        }
        if (c->stalled)
            return;
        int rc = r->body == BODY_NONE ? 1 : read_body(r, in, &why);
        if (rc < 0) {
            reject(c, why);
            finish(c);
            return;
        }
        if (rc == 0)
            return;
        enum outcome done = dispatch(c);
        if (done != ANSWERED || !finish(c))
            return;
        /* Looping here (not recursing through finish) keeps a long pipeline off the stack. */
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    if (c->st == ST_LINGER)
        evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
    else
        conn_advance(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    if (c->st == ST_RESPOND && c->stream != STREAM_NONE) {
        if (stream_refill(c)) {
            bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
            if (finish(c))
                conn_advance(c);
        }
    } else if (c->st == ST_CLOSING && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        start_linger(c);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    if (what & BEV_EVENT_CONNECTED)
        return; /* --tls: the handshake is done */
    if (what & BEV_EVENT_ERROR && c->o->verbose)
        fprintf(stderr, "origin %s: conn %" PRIu64 ": %s\n", c->o->name, c->serial,
                evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    if ((what & BEV_EVENT_EOF) && c->st == ST_BODY)
        fprintf(stderr, "origin %s: conn %" PRIu64 ": closed in the middle of a request body\n",
                c->o->name, c->serial);
    conn_free(c);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    struct origin *o = arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    c->o = o;
    c->serial = ++o->connections;
    SSL *ssl = o->tls ? SSL_new(o->tls) : NULL;
    if (o->tls && !ssl)
        c->bev = NULL;
    else if (ssl)
        c->bev = bufferevent_openssl_socket_new(o->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE);
    else
        c->bev = bufferevent_socket_new(o->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev && ssl)
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    if (!c->bev) {
        evutil_closesocket(fd);
        free(c);
        return;
    }
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static int usage(void)
{
    fprintf(stderr, "usage: lintel-test-origin --port N [--name NAME] [--addr 127.0.0.1] "
                    "[--tls CERT KEY] [--verbose]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct origin o = {.name = "origin"};
    const char *addr = "127.0.0.1";
    long port = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            char *end;
            port = strtol(argv[++i], &end, 10);
            if (*end || port < 0 || port > 65535)
                return usage();
        } else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
            o.name = argv[++i];
        } else if (strcmp(argv[i], "--addr") == 0 && i + 1 < argc) {
            addr = argv[++i];
        } else if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
            o.tls = SSL_CTX_new(TLS_server_method());
            if (!o.tls || SSL_CTX_use_certificate_chain_file(o.tls, argv[i + 1]) != 1 ||
                SSL_CTX_use_PrivateKey_file(o.tls, argv[i + 2], SSL_FILETYPE_PEM) != 1) {
                fprintf(stderr, "lintel-test-origin: cannot load %s / %s\n", argv[i + 1],
                        argv[i + 2]);
                return 1;
            }
            i += 2;
        } else if (strcmp(argv[i], "--verbose") == 0) {
            o.verbose = true;
        } else {
            return usage();
        }
    }
    if (port < 0)
        return usage();
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
        fprintf(stderr, "lintel-test-origin: bad --addr %s\n", addr);
        return 2;
    }
    o.base = event_base_new();
    if (!o.base)
        return 1;
    struct evconnlistener *l =
        evconnlistener_new_bind(o.base, on_accept, &o, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                511, (struct sockaddr *)&sin, sizeof sin);
    if (!l) {
        fprintf(stderr, "lintel-test-origin: cannot listen on %s:%ld: %s\n", addr, port,
                strerror(errno));
        return 1;
    }
    struct sockaddr_in bound;
    socklen_t blen = sizeof bound;
    getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&bound, &blen);
    printf("ready %u\n", ntohs(bound.sin_port));
    fflush(stdout);
    event_base_dispatch(o.base);
    evconnlistener_free(l);
    event_base_free(o.base);
    SSL_CTX_free(o.tls);
    return 0;
}
