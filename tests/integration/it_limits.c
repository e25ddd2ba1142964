/* Limits and abuse (docs/security.md): slow heads and slow bodies closed on their timeouts, the
 * connection caps per worker (503) and per client address (429), the admin API's bearer token,
 * and the bounds that keep a client from making the gateway hold memory: pipelined requests the
 * client does not read the answers to, endless head lines, chunk extensions and trailers.
 * One gateway serves the timeout and bound tests; each cap and admin test starts its own. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

static struct it_proc *origin, *gw;

/* /api goes to the origin; everything else is the gateway's own 404. */
static const char upstream_fmt[] = "upstreams:\n"
                                   "  origin:\n"
                                   "    targets:\n"
                                   "      - address: \"127.0.0.1:%d\"\n"
                                   "routes:\n"
                                   "  - name: api\n"
                                   "    match: { paths: [\"/api\"] }\n"
                                   "    upstream: origin\n";

static int suite_init(void)
{
    int port = it_free_port();
    const char *conf = it_temp_path("limits.yaml");
    char fmt[2048];
    snprintf(fmt, sizeof fmt, "%s%s%s", IT_CONFIG_HEAD,
             "limits: { header_bytes: 8k, headers: 50 }\n"
             "timeouts: { client_header: 1s, client_body: 1s }\n",
             upstream_fmt);
    if (!(origin = it_origin_start("A")) || port < 0 || !conf ||
        it_write_file(conf, fmt, port, origin->port) < 0 || !(gw = it_lintel_start(conf, port)))
        return -1;
    return 0;
}

/* ---- raw sockets from a chosen source address ------------------------------------------- */

/* A blocking connection to 127.0.0.1:port from src (e.g. "127.0.0.2"; NULL: any). -1 on error. */
static int connect_from(const char *src, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    if (src) {
        inet_pton(AF_INET, src, &a.sin_addr);
        if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
            close(fd);
            return -1;
        }
    }
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads into out until EOF (returns 1), a reset (2), or timeout_ms without data (0). */
static int read_until_close(int fd, int timeout_ms, struct it_buf *out)
{
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) <= 0)
            return 0;
        char buf[65536];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0)
            return 1;
        if (n < 0)
            return errno == EINTR ? read_until_close(fd, timeout_ms, out) : 2;
        it_buf_add(out, buf, (size_t)n);
    }
}

/* One request on fd, one response back (connection kept). Returns the status, or -1. */
static int request_on(int fd, const char *path)
{
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n)
        return -1;
    struct it_buf in = {0};
    struct it_response r;
    int status = -1;
    for (int64_t deadline = it_now_ms() + 10000; it_now_ms() < deadline;) {
        long used = in.len ? it_response_parse(in.data, in.len, false, false, &r) : 0;
        if (used > 0) {
            status = r.status;
            it_response_free(&r);
            break;
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (used < 0 || poll(&p, 1, 1000) < 0)
            break;
        if (!p.revents)
            continue;
        char buf[8192];
        ssize_t got = read(fd, buf, sizeof buf);
        if (got <= 0)
            break;
        it_buf_add(&in, buf, (size_t)got);
    }
    it_buf_free(&in);
    return status;
}

/* A connection from src that the gateway served a request on (200). Retries for up to 5 s while
 * it refuses: the connection the harness made to see the port ready may not be closed on the
 * gateway's side yet, and it counts against the caps until it is. Returns the fd, or -1. */
static int open_served(const char *src, int port)
{
    for (int64_t until = it_now_ms() + 5000; it_now_ms() < until; it_sleep_ms(50)) {
        int fd = connect_from(src, port);
        if (fd < 0)
            return -1;
        int status = request_on(fd, "/api/held");
        if (status == 200)
            return fd;
        close(fd);
        if (status != 429 && status != 503 && status != -1)
            return -1;
    }
    return -1;
}

/* Number of open file descriptors of pid. */
static int fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The response in buf must have status want, Connection: close and the JSON error body. */
static void check_refusal(const struct it_buf *buf, int want, const char *error)
{
    struct it_response r;
    CU_ASSERT_FATAL(buf->len > 0 && it_response_parse(buf->data, buf->len, false, true, &r) > 0);
    CU_ASSERT_EQUAL(r.status, want);
    const char *conn = it_response_header(&r, "Connection");
    CU_ASSERT(conn && it_header_has_token(conn, "close"));
    CU_ASSERT_STRING_EQUAL(it_response_header(&r, "Content-Type") ?: "", "application/json");
    char status[8];
    snprintf(status, sizeof status, "%d", want);
    CU_ASSERT(it_json_eq(r.body.data, "status", status));
    CU_ASSERT(it_json_eq(r.body.data, "error", error));
    char rid[64];
    CU_ASSERT(it_json_get(r.body.data, "request_id", rid, sizeof rid) == 0 && rid[0]);
    it_response_free(&r);
}

/* ---- slow clients ------------------------------------------------------------------------ */

/* Slowloris: a head trickled a byte every 200 ms never completes; client_header (1 s) counts from
 * its first byte, so new bytes do not keep the connection open: 408, then close. */
static void test_slowloris_head_trickle(void)
{
    int fd = connect_from(NULL, gw->port);
    CU_ASSERT_FATAL(fd >= 0);
    int64_t start = it_now_ms();
    static const char part[] = "GET /api/slow HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    CU_ASSERT(write(fd, part, sizeof part - 1) == (ssize_t)sizeof part - 1);
    struct it_buf out = {0};
    int end = 0;
    while (it_now_ms() - start < 5000) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 200) > 0) {
            end = read_until_close(fd, 3000, &out);
            break;
        }
        if (write(fd, "a", 1) != 1)
            break;
    }
    int64_t took = it_now_ms() - start;
    CU_ASSERT(end == 1 || end == 2);
    CU_ASSERT(out.data && strncmp(out.data, "HTTP/1.1 408", 12) == 0);
    CU_ASSERT(took >= 900 && took < 3000);
    if (took >= 3000)
        fprintf(stderr, "it_limits: trickled head closed after %lld ms\n", (long long)took);
    it_buf_free(&out);
    close(fd);
}

/* A body that stops: client_body (1 s) without a byte ends it with 408 and a close. */
static void slow_body(const char *req)
{
    int fd = connect_from(NULL, gw->port);
    CU_ASSERT_FATAL(fd >= 0);
    int64_t start = it_now_ms();
    CU_ASSERT(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
    struct it_buf out = {0};
    int end = read_until_close(fd, 5000, &out);
    int64_t took = it_now_ms() - start;
    CU_ASSERT(end == 1 || end == 2);
    bool is408 = out.data && strncmp(out.data, "HTTP/1.1 408", 12) == 0;
    if (!is408)
        fprintf(stderr, "it_limits: slow body answered: %.200s\n", out.data ? out.data : "");
    CU_ASSERT(is408);
    CU_ASSERT(out.data && strstr(out.data, "client body timeout"));
    CU_ASSERT(took >= 900 && took < 4000);
    it_buf_free(&out);
    close(fd);
}

static void test_slow_body_content_length(void)
{
    slow_body("POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789");
}

static void test_slow_body_chunked(void)
{
    slow_body("POST /api/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              "a\r\n01234");
}

/* ---- unbounded input --------------------------------------------------------------------- */

/* Sends up to max bytes of pattern (repeated) without reading, until the gateway stops taking
 * them for 1 s. Returns the bytes sent. */
static size_t send_until_stalled(int fd, const char *pattern, size_t plen, size_t max)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    size_t sent = 0;
    char buf[65536];
    size_t fill = 0;
    while (fill + plen <= sizeof buf) {
        memcpy(buf + fill, pattern, plen);
        fill += plen;
    }
    while (sent < max) {
        size_t off = sent % plen; /* keep whole requests aligned to the pattern */
        ssize_t n = write(fd, buf + off, fill - off);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            break;
        struct pollfd p = {fd, POLLOUT, 0};
        if (poll(&p, 1, 1000) == 0 || (p.revents & (POLLERR | POLLHUP)))
            break; /* nothing taken for a second, or the gateway closed */
    }
    fcntl(fd, F_SETFL, fl);
    return sent;
}

/* Pipelined requests whose answers the client never reads: the gateway stops reading (its input
 * is bounded by header_bytes + 64 KiB, its output by 256 KiB), so the client's writes stall at
 * what the kernel buffers hold, the gateway's memory stays flat, and once the client reads, every
 * request is answered, in order. */
static void test_pipelined_queue_bounded(void)
{
    char pad[1001];
    memset(pad, 'p', 1000);
    pad[1000] = '\0';
    char req[1200];
    int rlen =
        snprintf(req, sizeof req, "GET /nothing HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n", pad);
    int fd = connect_from(NULL, gw->port);
    CU_ASSERT_FATAL(fd >= 0);
    long rss0 = it_proc_mem_kb(gw->pid, "VmRSS");
    size_t max = 128u << 20;
    size_t sent = send_until_stalled(fd, req, (size_t)rlen, max);
    long rss1 = it_proc_mem_kb(gw->pid, "VmRSS");
    fprintf(stderr,
            "it_limits: pipelined %zu bytes (%zu requests) before the gateway stopped "
            "reading; RSS %ld -> %ld kB\n",
            sent, sent / (size_t)rlen, rss0, rss1);
    CU_ASSERT(sent < max); /* it stalled: kernel buffers filled, the gateway stopped reading */
    CU_ASSERT(rss1 - rss0 < 16 * 1024);
    /* Finish the last partial request, then read every answer. */
    size_t rest = (size_t)rlen - sent % (size_t)rlen;
    size_t nreq = (sent + rest) / (size_t)rlen;
    struct it_buf in = {0};
    size_t answered = 0, parsed = 0;
    bool all404 = true, wrote_rest = rest == (size_t)rlen;
    int64_t deadline = it_now_ms() + 60000;
    while (answered < nreq && it_now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN | (wrote_rest ? 0 : POLLOUT), 0};
        if (poll(&p, 1, 5000) <= 0)
            break;
        if ((p.revents & POLLOUT) && !wrote_rest) {
            ssize_t n = write(fd, req + (size_t)rlen - rest, rest);
            if (n > 0)
                rest -= (size_t)n;
            wrote_rest = rest == 0;
        }
        if (p.revents & POLLIN) {
            char buf[65536];
            ssize_t n = read(fd, buf, sizeof buf);
            if (n <= 0)
                break;
            it_buf_add(&in, buf, (size_t)n);
            struct it_response r;
            long used;
            while ((used = it_response_parse(in.data + parsed, in.len - parsed, false, false, &r)) >
                   0) {
                all404 = all404 && r.status == 404;
                answered++;
                parsed += (size_t)used;
                it_response_free(&r);
            }
            if (parsed > (1u << 20)) { /* keep the buffer small */
                memmove(in.data, in.data + parsed, in.len - parsed);
                in.len -= parsed;
                parsed = 0;
            }
        }
    }
    CU_ASSERT_EQUAL(answered, nreq);
    CU_ASSERT(all404);
    it_buf_free(&in);
    close(fd);
}

/* A head line that never ends: 431 once header_bytes (8k) is reached, then close; the gateway
 * does not keep reading it. */
static void test_endless_head_line(void)
{
    int fd = connect_from(NULL, gw->port);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(write(fd, "GET /", 5) == 5);
    static const char xs[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    size_t sent = send_until_stalled(fd, xs, sizeof xs - 1, 64u << 20);
    CU_ASSERT(sent < 64u << 20);
    struct it_buf out = {0};
    read_until_close(fd, 5000, &out);
    CU_ASSERT(out.data && strncmp(out.data, "HTTP/1.1 431", 12) == 0);
    it_buf_free(&out);
    close(fd);
}

/* Sends a chunked request whose framing carries fill_len bytes of filler at the given place,
 * expects 400 naming the cause and a close. */
static void chunked_abuse(const char *before, char fill, size_t fill_len, const char *after,
                          const char *cause)
{
    struct it_buf req = {0};
    static const char head[] =
        "POST /api/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    it_buf_add(&req, head, sizeof head - 1);
    it_buf_add(&req, before, strlen(before));
    char *f = malloc(fill_len);
    CU_ASSERT_FATAL(f != NULL);
    memset(f, fill, fill_len);
    it_buf_add(&req, f, fill_len);
    free(f);
    it_buf_add(&req, after, strlen(after));
    struct it_buf out = {0};
    enum it_read_end end = it_raw_exchange(gw->port, req.data, req.len, 10000, &out);
    CU_ASSERT(end == IT_READ_EOF || end == IT_READ_RESET);
    bool ok = out.data && strncmp(out.data, "HTTP/1.1 400", 12) == 0 && strstr(out.data, cause);
    if (!ok)
        fprintf(stderr, "it_limits: want 400 \"%s\", got: %.300s\n", cause,
                out.data ? out.data : "");
    CU_ASSERT(ok);
    it_buf_free(&out);
    it_buf_free(&req);
}

static void test_chunk_extension_bounded(void)
{
    chunked_abuse("5;name=", 'v', 5000, "\r\nhello\r\n0\r\n\r\n", "chunk extension too long");
}

static void test_trailers_bounded(void)
{
    chunked_abuse("5\r\nhello\r\n0\r\nX-Big: ", 't', 20000, "\r\n\r\n", "trailers too long");
}

/* ---- connection caps --------------------------------------------------------------------- */

/* Starts a gateway with the given limits line (own config file per test). */
static struct it_proc *start_with(const char *name, const char *limits)
{
    int port = it_free_port();
    const char *conf = it_temp_path(name);
    char fmt[2048];
    snprintf(fmt, sizeof fmt, "%s%s\n%s", IT_CONFIG_HEAD, limits, upstream_fmt);
    if (port < 0 || !conf || it_write_file(conf, fmt, port, origin->port) < 0)
        return NULL;
    return it_lintel_start(conf, port);
}

/* Past connections_per_worker a new connection gets 503 with Connection: close and the JSON
 * error, and is closed; once a connection ends, new ones are served again. */
static void test_connections_per_worker(void)
{
    struct it_proc *g = start_with("cap-worker.yaml", "limits: { connections_per_worker: 4 }");
    CU_ASSERT_FATAL(g != NULL);
    int held[4];
    for (int i = 0; i < 4; i++)
        CU_ASSERT_FATAL((held[i] = open_served(NULL, g->port)) >= 0);
    int extra = connect_from(NULL, g->port);
    CU_ASSERT_FATAL(extra >= 0);
    static const char req[] = "GET /api/extra HTTP/1.1\r\nHost: x\r\n\r\n";
    CU_ASSERT(write(extra, req, sizeof req - 1) == (ssize_t)sizeof req - 1);
    struct it_buf out = {0};
    int end = read_until_close(extra, 5000, &out);
    CU_ASSERT(end == 1); /* an orderly close, the answer intact */
    check_refusal(&out, 503, "too many connections");
    it_buf_free(&out);
    close(extra);
    /* The held connections still work; after one closes, a new one is served. */
    CU_ASSERT_EQUAL(request_on(held[0], "/api/again"), 200);
    close(held[0]);
    int status = -1;
    for (int64_t until = it_now_ms() + 5000; status != 200 && it_now_ms() < until;) {
        int fd = connect_from(NULL, g->port);
        status = fd >= 0 ? request_on(fd, "/api/after") : -1;
        if (fd >= 0)
            close(fd);
        if (status != 200)
            it_sleep_ms(50);
    }
    CU_ASSERT_EQUAL(status, 200);
    for (int i = 1; i < 4; i++)
        close(held[i]);
}

/* connections_per_ip: the third connection from 127.0.0.1 gets 429; 127.0.0.2 is not affected. */
static void test_connections_per_ip(void)
{
    struct it_proc *g = start_with("cap-ip.yaml", "limits: { connections_per_ip: 2 }");
    CU_ASSERT_FATAL(g != NULL);
    int a = open_served("127.0.0.1", g->port), b = open_served("127.0.0.1", g->port);
    CU_ASSERT_FATAL(a >= 0 && b >= 0);
    int c = connect_from("127.0.0.1", g->port);
    CU_ASSERT_FATAL(c >= 0);
    struct it_buf out = {0};
    static const char req[] = "GET /api/c HTTP/1.1\r\nHost: x\r\n\r\n";
    CU_ASSERT(write(c, req, sizeof req - 1) == (ssize_t)sizeof req - 1);
    CU_ASSERT(read_until_close(c, 5000, &out) == 1);
    check_refusal(&out, 429, "too many connections from this address");
    it_buf_free(&out);
    close(c);
    int other = connect_from("127.0.0.2", g->port);
    CU_ASSERT_FATAL(other >= 0);
    CU_ASSERT_EQUAL(request_on(other, "/api/other"), 200);
    close(other);
    close(a);
    close(b);
}

/* A flood of connections past the cap: each is refused, the refusals being told hold at most a
 * bounded number of descriptors for about a second, and the gateway keeps serving. */
static void test_refusal_flood_bounded(void)
{
    struct it_proc *g = start_with("cap-flood.yaml", "limits: { connections_per_worker: 2 }");
    CU_ASSERT_FATAL(g != NULL);
    int held[2] = {open_served(NULL, g->port), open_served(NULL, g->port)};
    CU_ASSERT_FATAL(held[0] >= 0 && held[1] >= 0);
    int base = fd_count(g->pid);
    enum { FLOOD = 300 };
    int fds[FLOOD];
    int opened = 0;
    for (int i = 0; i < FLOOD; i++)
        if ((fds[opened] = connect_from(NULL, g->port)) >= 0)
            opened++;
    CU_ASSERT(opened > 250);
    /* The highest count over half a second: the gateway accepts the flood as it comes. */
    int during = base;
    for (int64_t until = it_now_ms() + 500; it_now_ms() < until; it_sleep_ms(20)) {
        int n = fd_count(g->pid);
        if (n > during)
            during = n;
    }
    fprintf(stderr, "it_limits: gateway fds: %d held, %d during a flood of %d\n", base, during,
            opened);
    CU_ASSERT(during - base <= 64 + 8); /* MAX_REFUSALS lingering at most (+ slack) */
    CU_ASSERT_EQUAL(request_on(held[0], "/api/still"), 200);
    for (int i = 0; i < opened; i++)
        close(fds[i]);
    int after = -1;
    for (int64_t until = it_now_ms() + 5000; it_now_ms() < until; it_sleep_ms(100))
        if ((after = fd_count(g->pid)) <= base)
            break;
    CU_ASSERT(after <= base);
    close(held[0]);
    close(held[1]);
}

/* ---- admin API --------------------------------------------------------------------------- */

static struct it_proc *start_admin(const char *name, const char *admin, int *admin_port)
{
    int port = it_free_port();
    *admin_port = it_free_port();
    const char *conf = it_temp_path(name);
    char fmt[2048];
    snprintf(fmt, sizeof fmt,
             "listen:\n  - address: \"127.0.0.1:%%d\"\nworkers: 1\nadmin: { address: "
             "\"%s:%d\"%s }\n%s",
             strstr(admin, "any") ? "0.0.0.0" : "127.0.0.1", *admin_port,
             strstr(admin, "token") ? ", token: \"env:IT_LIMITS_ADMIN_TOKEN\"" : "", upstream_fmt);
    if (port < 0 || *admin_port < 0 || !conf || it_write_file(conf, fmt, port, origin->port) < 0)
        return NULL;
    return it_lintel_start(conf, port);
}

static int admin_status(struct it_http *h, int port, const char *path, const char *auth,
                        struct it_response *r)
{
    const char *hdrs[] = {auth, NULL};
    return it_http_get(h, it_url(port, path), auth ? hdrs : NULL, r);
}

/* admin.token: every admin request needs "Authorization: Bearer <token>"; 401 otherwise. */
static void test_admin_token(void)
{
    setenv("IT_LIMITS_ADMIN_TOKEN", "s3cret-token-0123456789", 1);
    int aport;
    struct it_proc *g = start_admin("admin-token.yaml", "token", &aport);
    CU_ASSERT_FATAL(g != NULL);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    struct it_response r;
    static const char *const bad[] = {NULL, "Authorization: Bearer wrong",
                                      "Authorization: Bearer s3cret-token-012345678X",
                                      "Authorization: Bearer s3cret-token-0123456789-and-more",
                                      "Authorization: Basic czNjcmV0LXRva2VuLTAxMjM0NTY3ODk="};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CU_ASSERT_FATAL(admin_status(&h, aport, "/-/status", bad[i], &r) == 0);
        CU_ASSERT_EQUAL(r.status, 401);
        CU_ASSERT_PTR_NOT_NULL(it_response_header(&r, "WWW-Authenticate"));
        CU_ASSERT(it_json_eq(r.body.data, "status", "error"));
        it_response_free(&r);
    }
    CU_ASSERT_FATAL(admin_status(&h, aport, "/-/status",
                                 "Authorization: Bearer s3cret-token-0123456789", &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_json_int(r.body.data, "generation") == 1);
    it_response_free(&r);
    /* Unknown paths are refused the same way without the token: nothing to probe. */
    CU_ASSERT_FATAL(admin_status(&h, aport, "/-/nothing", NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 401);
    it_response_free(&r);
    it_http_free(&h);
}

/* A token naming an unset variable is a configuration error, not an open admin API. */
static void test_admin_token_unset_variable(void)
{
    unsetenv("IT_LIMITS_ADMIN_TOKEN");
    const char *conf = it_temp_path("admin-unset.yaml");
    CU_ASSERT_FATAL(conf && it_write_file(conf, "listen: [ { address: \"127.0.0.1:1\" } ]\n"
                                                "admin: { token: \"env:IT_LIMITS_ADMIN_TOKEN\" }\n"
                                                "upstreams: { u: { targets: [ { address: "
                                                "\"127.0.0.1:2\" } ] } }\n"
                                                "routes: [ { name: r, upstream: u } ]\n") == 0);
    char *argv[] = {LINTEL_BIN, "-t", "-c", (char *)conf, NULL};
    struct it_buf err = {0};
    CU_ASSERT_EQUAL(it_run(argv, 10000, NULL, &err), 1);
    CU_ASSERT(err.data && strstr(err.data, ":2:17: admin.token: cannot read the token"));
    if (!err.data || !strstr(err.data, "admin.token"))
        fprintf(stderr, "it_limits: lintel -t said: %s\n", err.data ? err.data : "");
    it_buf_free(&err);
}

/* lintel -t on a file with line 2 replaced by `line`: exit 1 and an error containing want. */
static void refused_config(const char *name, const char *line, const char *want)
{
    const char *conf = it_temp_path(name);
    CU_ASSERT_FATAL(conf && it_write_file(conf,
                                          "listen: [ { address: \"127.0.0.1:1\" } ]\n%s\n"
                                          "upstreams: { u: { targets: [ { address: "
                                          "\"127.0.0.1:2\" } ] } }\n"
                                          "routes: [ { name: r, upstream: u } ]\n",
                                          line) == 0);
    char *argv[] = {LINTEL_BIN, "-t", "-c", (char *)conf, NULL};
    struct it_buf err = {0};
    CU_ASSERT_EQUAL(it_run(argv, 10000, NULL, &err), 1);
    bool named = err.data && strstr(err.data, want);
    if (!named)
        fprintf(stderr, "it_limits: want \"%s\", lintel -t said: %s\n", want,
                err.data ? err.data : "");
    CU_ASSERT(named);
    it_buf_free(&err);
}

/* The new keys are checked like every other: position, key path, the allowed range. */
static void test_limit_keys_checked(void)
{
    refused_config("cap0.yaml", "limits: { connections_per_worker: 0 }",
                   ":2:35: limits.connections_per_worker: must be an integer from 1 to 1000000");
    refused_config("capip.yaml", "limits: { connections_per_ip: -1 }",
                   ":2:31: limits.connections_per_ip: must be an integer from 0 to 1000000");
    refused_config("short-token.yaml", "admin: { token: short }",
                   ":2:17: admin.token: must be at least 16 characters");
    refused_config("space-token.yaml", "admin: { token: \"has a space in the token\" }",
                   ":2:17: admin.token: must be visible ASCII without spaces");
}

/* Bound beyond loopback without a token: it works (the operator asked) but says so in the log. */
static void test_admin_beyond_loopback_warns(void)
{
    int aport;
    struct it_proc *g = start_admin("admin-any.yaml", "any", &aport);
    CU_ASSERT_FATAL(g != NULL);
    CU_ASSERT(it_proc_log_wait(g, 0, "reachable beyond this host and has no token", 5000));
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    struct it_response r;
    CU_ASSERT_FATAL(admin_status(&h, aport, "/-/status", NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    it_response_free(&r);
    it_http_free(&h);
}

static CU_TestInfo tests[] = {
    {"slowloris: a trickled head is closed at client_header", test_slowloris_head_trickle},
    {"slow Content-Length body: 408 at client_body", test_slow_body_content_length},
    {"slow chunked body: 408 at client_body", test_slow_body_chunked},
    {"unread pipelined requests: bounded, all answered", test_pipelined_queue_bounded},
    {"endless head line: 431, not read on", test_endless_head_line},
    {"5000-byte chunk extension: 400", test_chunk_extension_bounded},
    {"20 KB of trailers: 400", test_trailers_bounded},
    {"connections_per_worker: 503 + close, then served again", test_connections_per_worker},
    {"connections_per_ip: 429 for one address, not another", test_connections_per_ip},
    {"refusal flood: descriptors bounded, still serving", test_refusal_flood_bounded},
    {"admin.token: 401 without the bearer token", test_admin_token},
    {"admin.token from an unset variable: config error", test_admin_token_unset_variable},
    {"admin beyond loopback without a token: warned", test_admin_beyond_loopback_warns},
    {"limits and admin.token values are checked", test_limit_keys_checked},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"limits", suite_init, it_suite_cleanup, it_test_setup, it_test_teardown, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return it_main(suites, 240);
}
