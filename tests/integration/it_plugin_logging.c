/* The logging plugin (plugins/logging) in a running gateway: one valid JSON record per request
 * in the file with the right fields; a template; sample 0; per-route instances; logrotate's
 * mv + SIGUSR1; an HTTP collector (a small server in this test) getting every record in batches;
 * a collector that is down or never answers leaving request latency alone, with the dropped
 * records counted in /-/metrics. */
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "harness.h"

static char logging_so[PATH_MAX];
static const char *plugin_dir; /* a directory holding only logging.so */

/* ---- small helpers ------------------------------------------------------------------------- */

/* The content of path (empty when missing). Free with it_buf_free. */
static struct it_buf slurp(const char *path)
{
    struct it_buf b = {0};
    it_buf_add(&b, "", 0);
    FILE *f = fopen(path, "rb");
    char buf[65536];
    size_t n;
    while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        it_buf_add(&b, buf, n);
    if (f)
        fclose(f);
    return b;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; (s = strchr(s, '\n')); s++)
        n++;
    return n;
}

/* Waits up to timeout_ms until path holds at least n lines; returns how many it holds. */
static size_t wait_lines(const char *path, size_t n, int timeout_ms)
{
    int64_t end = it_now_ms() + timeout_ms;
    size_t have;
    for (;;) {
        struct it_buf b = slurp(path);
        have = count_lines(b.data);
        it_buf_free(&b);
        if (have >= n || it_now_ms() >= end)
            return have;
        it_sleep_ms(20);
    }
}

/* ---- a strict JSON check (one value, nothing after it) -------------------------------------- */

static const char *json_value(const char *p);

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    return p;
}

static const char *json_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    for (; *p != '"'; p++) {
        if ((unsigned char)*p < 0x20)
            return NULL; /* also the end of the text */
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
                        return NULL;
                p += 4;
            } else if (!*p || !strchr("\"\\/bfnrt", *p))
                return NULL;
        }
    }
    return p + 1;
}

static const char *json_number(const char *p)
{
    const char *start = p;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return NULL;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return NULL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return p > start ? p : NULL;
}

static const char *json_container(const char *p, char close, int object)
{
    p = json_ws(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (object) {
            p = json_string(json_ws(p));
            if (!p || *(p = json_ws(p)) != ':')
                return NULL;
            p++;
        }
        p = json_value(p);
        if (!p)
            return NULL;
        p = json_ws(p);
        if (*p == close)
            return p + 1;
        if (*p != ',')
            return NULL;
        p++;
    }
}

static const char *json_value(const char *p)
{
    p = json_ws(p);
    switch (*p) {
    case '{':
        return json_container(p, '}', 1);
    case '[':
        return json_container(p, ']', 0);
    case '"':
        return json_string(p);
    case 't':
        return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f':
        return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n':
        return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default:
        return json_number(p);
    }
}

/* One JSON object and nothing else on the line [p, end). */
static bool json_line_ok(const char *p, const char *end)
{
    char *line = strndup(p, (size_t)(end - p));
    const char *e = line && *line == '{' ? json_value(line) : NULL;
    bool ok = e && *json_ws(e) == '\0';
    if (!ok)
        fprintf(stderr, "not one JSON object: %s\n", line ? line : "(oom)");
    free(line);
    return ok;
}

/* ---- the gateway --------------------------------------------------------------------------- */

#define HEAD                                                                                       \
    "listen: [ { address: \"127.0.0.1:%d\" } ]\n"                                                  \
    "admin: { address: \"127.0.0.1:%d\" }\n"                                                       \
    "workers: 2\n"                                                                                 \
    "plugin_paths: [\"%s\"]\n"                                                                     \
    "upstreams:\n"                                                                                 \
    "  o: { targets: [ { address: \"127.0.0.1:%d\" } ] }\n"

struct env {
    struct it_proc *origin, *gw;
    int port, admin;
    const char *conf;
};

/* Starts an origin and a gateway whose configuration is HEAD followed by rest (a printf format
 * taking the arguments after it). */
static int start(struct env *e, const char *rest, ...) __attribute__((format(printf, 2, 3)));
static int start(struct env *e, const char *rest, ...)
{
    e->origin = it_origin_start("o");
    if (!e->origin)
        return -1;
    e->port = it_free_port();
    e->admin = it_free_port();
    char tail[8192];
    va_list ap;
    va_start(ap, rest);
    vsnprintf(tail, sizeof(tail), rest, ap);
    va_end(ap);
    e->conf = it_temp_path("logging.yaml");
    if (it_write_file(e->conf, HEAD "%s", e->port, e->admin, plugin_dir, e->origin->port, tail) !=
        0)
        return -1;
    /* The configuration must also pass lintel -t (the docs' promise for every example). */
    if (it_lintel_check(e->conf, NULL) != 0)
        return -1;
    e->gw = it_lintel_start(e->conf, e->port);
    return e->gw ? 0 : -1;
}

static long long plugin_metric(const struct env *e, const char *instance, const char *name)
{
    return it_plugin_metric(e->admin, "logging", instance, name);
}

static long long wait_metric(const struct env *e, const char *instance, const char *name,
                             long long min, int timeout_ms)
{
    return it_plugin_metric_wait(e->admin, "logging", instance, name, min, timeout_ms);
}

/* ---- file sink: one JSON record per request ------------------------------------------------ */

static void test_file_json_records(void)
{
    const char *log = it_temp_path("access.log");
    struct env e;
    CU_ASSERT_FATAL(
        start(&e,
              "plugins:\n"
              "  - name: logging\n"
              "    instance: access\n"
              "    config: { sink: { type: file, path: \"%s\", flush_interval: 50ms } }\n"
              "routes:\n"
              "  - name: api\n"
              "    match: { paths: [\"/api\"] }\n"
              "    upstream: o\n",
              log) == 0);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    enum { N = 40 };
    char ids[N + 1][64];
    for (int i = 0; i <= N; i++) {
        char path[64];
        snprintf(path, sizeof(path), i == N ? "/nowhere/%d" : "/api/items/%d?i=%d&q=a%%22b", i, i);
        struct it_response r;
        struct it_http_req q = {.url = it_url(e.port, path)};
        if (i % 4 == 1) { /* every 4th a POST with a body */
            q.method = "POST";
            q.body = "0123456789";
            q.body_len = 10;
        }
        CU_ASSERT_FATAL(it_http_do(&h, &q, &r) == 0);
        CU_ASSERT_EQUAL(r.status, i == N ? 404 : 200);
        const char *id = it_response_header(&r, "X-Request-Id");
        snprintf(ids[i], sizeof(ids[i]), "%s", id ? id : "?");
        it_response_free(&r);
    }
    it_http_free(&h);
    CU_ASSERT_EQUAL_FATAL(wait_lines(log, N + 1, 5000), N + 1);

    struct it_buf b = slurp(log);
    int seen[N + 1] = {0};
    for (const char *p = b.data, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
        CU_ASSERT(json_line_ok(p, nl));
        char *line = strndup(p, (size_t)(nl - p)), v[256];
        CU_ASSERT_FATAL(it_json_get(line, "request_id", v, sizeof(v)) == 0);
        int i = 0;
        while (i <= N && strcmp(ids[i], v) != 0)
            i++;
        CU_ASSERT_FATAL(i <= N);
        seen[i]++;
        CU_ASSERT(it_json_eq(line, "consumer", "null")); /* no auth plugin on these routes */
        CU_ASSERT(it_json_eq(line, "remote_addr", "127.0.0.1"));
        CU_ASSERT(it_json_eq(line, "protocol", "HTTP/1.1"));
        CU_ASSERT(strstr(line, "\"fields\":{}") != NULL);
        CU_ASSERT(it_json_get(line, "time", v, sizeof(v)) == 0 && strlen(v) == 24 && v[10] == 'T' &&
                  v[23] == 'Z');
        if (i == N) { /* no route: only the global plugin ran */
            CU_ASSERT(it_json_eq(line, "status", "404"));
            CU_ASSERT(it_json_eq(line, "route", "null"));
            CU_ASSERT(it_json_eq(line, "upstream", "null"));
            CU_ASSERT(it_json_eq(line, "upstream_response_time", "null"));
        } else {
            char want[64];
            snprintf(want, sizeof(want), "/api/items/%d", i);
            CU_ASSERT(it_json_eq(line, "status", "200"));
            CU_ASSERT(it_json_eq(line, "method", i % 4 == 1 ? "POST" : "GET"));
            CU_ASSERT(it_json_eq(line, "path", want));
            snprintf(want, sizeof(want), "i=%d&q=a%%22b", i);
            CU_ASSERT(it_json_eq(line, "query", want));
            CU_ASSERT(it_json_eq(line, "route", "api"));
            CU_ASSERT(it_json_eq(line, "upstream", "o"));
            snprintf(want, sizeof(want), "127.0.0.1:%d", e.origin->port);
            CU_ASSERT(it_json_eq(line, "upstream_addr", want));
            CU_ASSERT(it_json_eq(line, "bytes_received", i % 4 == 1 ? "10" : "0"));
            CU_ASSERT(it_json_int(line, "bytes_sent") > 0);
            snprintf(want, sizeof(want), "127.0.0.1:%d", e.port);
            CU_ASSERT(it_json_eq(line, "host", want));
            CU_ASSERT(it_json_get(line, "request_time", v, sizeof(v)) == 0 && atof(v) < 5);
        }
        free(line);
    }
    for (int i = 0; i <= N; i++)
        CU_ASSERT_EQUAL(seen[i], 1); /* every request exactly once */
    it_buf_free(&b);
    CU_ASSERT(wait_metric(&e, "access", "written", N + 1, 3000) == N + 1);
    CU_ASSERT_EQUAL(plugin_metric(&e, "access", "dropped"), 0);
}

/* ---- templates, per-route instances, sampling ---------------------------------------------- */

static void test_template_per_route_and_sample_zero(void)
{
    const char *tlog = it_temp_path("template.log"), *zlog = it_temp_path("sample0.log");
    struct env e;
    CU_ASSERT_FATAL(
        start(
            &e,
            "routes:\n"
            "  - name: t\n"
            "    match: { paths: [\"/t\"] }\n"
            "    upstream: o\n"
            "    plugins:\n"
            "      - name: logging\n"
            "        config:\n"
            "          template: '$remote_addr \"$request\" $status $request_time $route'\n"
            "          sink: { type: file, path: \"%s\", flush_interval: 50ms }\n"
            "  - name: z\n"
            "    match: { paths: [\"/z\"] }\n"
            "    upstream: o\n"
            "    plugins:\n"
            "      - { name: logging, config: { sample: 0, sink: { type: file, path: \"%s\" } } }\n"
            "  - name: quiet\n"
            "    match: { paths: [\"/\"] }\n"
            "    upstream: o\n",
            tlog, zlog) == 0);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    const char *paths[] = {"/t/1", "/z/1", "/q/1", "/t/2?x=1", "/z/2", "/q/2"};
    for (size_t i = 0; i < 6; i++) {
        struct it_response r;
        CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, paths[i]), NULL, &r) == 0);
        CU_ASSERT_EQUAL(r.status, 200);
        it_response_free(&r);
    }
    it_http_free(&h);
    CU_ASSERT_EQUAL(wait_lines(tlog, 2, 5000), 2);
    it_sleep_ms(300); /* several flush intervals: nothing else comes */
    struct it_buf b = slurp(tlog);
    const char *want[] = {"127.0.0.1 \"GET /t/1 HTTP/1.1\" 200 0.", "127.0.0.1 \"GET /t/2?x=1 "
                                                                    "HTTP/1.1\" 200 0."};
    const char *p = b.data;
    for (int i = 0; i < 2; i++) {
        CU_ASSERT(strncmp(p, want[i], strlen(want[i])) == 0);
        const char *nl = strchr(p, '\n');
        CU_ASSERT_FATAL(nl != NULL);
        CU_ASSERT(nl - p > 3 && strncmp(nl - 2, " t", 2) == 0);
        p = nl + 1;
    }
    CU_ASSERT_EQUAL(count_lines(b.data), 2);
    it_buf_free(&b);
    /* sample: 0 writes nothing at all (its file exists: it is opened at start). */
    b = slurp(zlog);
    CU_ASSERT_EQUAL(b.len, 0);
    CU_ASSERT(access(zlog, F_OK) == 0);
    it_buf_free(&b);
}

/* ---- logrotate: mv, then SIGUSR1 ----------------------------------------------------------- */

static void test_reopen_on_sigusr1(void)
{
    const char *log = it_temp_path("rotate.log"), *moved = it_temp_path("rotate.log.1");
    struct env e;
    CU_ASSERT_FATAL(start(&e,
                          "plugins:\n"
                          "  - { name: logging, config: { sink: { type: file, path: \"%s\", "
                          "flush_interval: 50ms } } }\n"
                          "routes:\n"
                          "  - { name: r, match: { paths: [\"/\"] }, upstream: o }\n",
                          log) == 0);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    struct it_response r;
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/before"), NULL, &r) == 0);
        it_response_free(&r);
    }
    CU_ASSERT_EQUAL_FATAL(wait_lines(log, 5, 5000), 5);
    CU_ASSERT_FATAL(rename(log, moved) == 0);
    off_t mark = it_proc_log_size(e.gw);
    CU_ASSERT_FATAL(it_proc_signal(e.gw, SIGUSR1) == 0);
    CU_ASSERT(it_proc_log_wait(e.gw, mark, "reopened their files", 5000));
    for (int i = 0; i < 100 && access(log, F_OK) != 0; i++) /* the writer thread reopens */
        it_sleep_ms(20);
    CU_ASSERT_FATAL(access(log, F_OK) == 0);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/after"), NULL, &r) == 0);
        it_response_free(&r);
    }
    it_http_free(&h);
    CU_ASSERT_EQUAL(wait_lines(log, 3, 5000), 3);
    struct it_buf old = slurp(moved), cur = slurp(log);
    CU_ASSERT_EQUAL(count_lines(old.data), 5);
    CU_ASSERT(strstr(old.data, "\"/after\"") == NULL);
    CU_ASSERT_EQUAL(count_lines(cur.data), 3);
    CU_ASSERT(strstr(cur.data, "\"/before\"") == NULL);
    it_buf_free(&old);
    it_buf_free(&cur);
}

/* ---- reload and stop ---------------------------------------------------------------------- */

/* A reload replaces the instance (the old one's writer writes what it holds, then stops); a
 * stop writes the rest. No record is lost on the way, and the process exits cleanly. */
static void test_reload_and_stop_lose_nothing(void)
{
    const char *log = it_temp_path("reload.log");
    struct env e;
    CU_ASSERT_FATAL(start(&e,
                          "plugins:\n"
                          "  - { name: logging, config: { sink: { type: file, path: \"%s\", "
                          "flush_interval: 60s } } }\n"
                          "routes:\n"
                          "  - { name: r, match: { paths: [\"/\"] }, upstream: o }\n",
                          log) == 0);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    struct it_response r;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 20; i++) {
            CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/r"), NULL, &r) == 0);
            it_response_free(&r);
        }
        if (round == 2)
            break;
        struct it_http_req q = {.method = "POST", .url = it_url(e.admin, "/-/reload")};
        CU_ASSERT_FATAL(it_http_do(&h, &q, &r) == 0);
        CU_ASSERT_EQUAL(r.status, 200);
        it_response_free(&r);
    }
    it_http_free(&h);
    /* flush_interval is 60 s: the first 40 are written because their instances went away. */
    CU_ASSERT_EQUAL(wait_lines(log, 40, 5000), 40);
    CU_ASSERT_FATAL(it_proc_signal(e.gw, SIGTERM) == 0);
    CU_ASSERT_EQUAL(it_proc_wait(e.gw, 10000), 0);
    CU_ASSERT_EQUAL(wait_lines(log, 60, 100), 60);
}

/* ---- an HTTP collector --------------------------------------------------------------------- */

/* A tiny HTTP/1.1 server on its own thread: keeps every POSTed body, answers 204. */
struct collector {
    int fd, port;
    pthread_t thread;
    _Atomic int stop;
    pthread_mutex_t lock;
    struct it_buf bodies; /* every body, concatenated */
    int posts;
    size_t max_records; /* in one POST */
    char content_type[128];
};

struct cconn {
    int fd;
    struct it_buf in;
};

/* Handles every whole request in c->in; returns -1 when the connection must close. */
static int collector_serve(struct collector *col, struct cconn *c)
{
    for (;;) {
        char *end = c->in.data ? strstr(c->in.data, "\r\n\r\n") : NULL;
        if (!end)
            return 0;
        size_t head = (size_t)(end + 4 - c->in.data), len = 0;
        char ct[128] = "";
        for (char *l = strstr(c->in.data, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n")) {
            if (strncasecmp(l + 2, "Content-Length:", 15) == 0)
                len = strtoul(l + 17, NULL, 10);
            if (strncasecmp(l + 2, "Content-Type: ", 14) == 0)
                snprintf(ct, sizeof(ct), "%.*s", (int)strcspn(l + 16, "\r"), l + 16);
            if (strncasecmp(l + 2, "Expect: 100-continue", 20) == 0 && c->in.len == head)
                (void)!write(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        }
        if (c->in.len < head + len)
            return 0;
        pthread_mutex_lock(&col->lock);
        it_buf_add(&col->bodies, c->in.data + head, len);
        col->posts++;
        size_t n = 0;
        for (size_t i = 0; i < len; i++)
            n += c->in.data[head + i] == '\n';
        if (n > col->max_records)
            col->max_records = n;
        snprintf(col->content_type, sizeof(col->content_type), "%s", ct);
        pthread_mutex_unlock(&col->lock);
        const char *ok = "HTTP/1.1 204 No Content\r\n\r\n";
        if (write(c->fd, ok, strlen(ok)) < 0)
            return -1;
        memmove(c->in.data, c->in.data + head + len, c->in.len - head - len);
        c->in.len -= head + len;
        c->in.data[c->in.len] = '\0';
    }
}

static void *collector_run(void *arg)
{
    struct collector *col = arg;
    struct cconn conns[16];
    size_t n = 0;
    while (!col->stop) {
        struct pollfd p[17] = {{.fd = col->fd, .events = POLLIN}};
        for (size_t i = 0; i < n; i++)
            p[i + 1] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
        if (poll(p, n + 1, 50) <= 0)
            continue;
        if ((p[0].revents & POLLIN) && n < 16) {
            int fd = accept(col->fd, NULL, NULL);
            if (fd >= 0)
                conns[n++] = (struct cconn){.fd = fd};
        }
        for (size_t i = 0; i < n; i++) {
            if (!(p[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[65536];
            ssize_t got = read(conns[i].fd, buf, sizeof(buf));
            if (got > 0)
                it_buf_add(&conns[i].in, buf, (size_t)got);
            if (got <= 0 || collector_serve(col, &conns[i]) < 0) {
                close(conns[i].fd);
                it_buf_free(&conns[i].in);
                conns[i] = conns[--n];
                p[i + 1] = p[n + 1];
                i--;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        close(conns[i].fd);
        it_buf_free(&conns[i].in);
    }
    return NULL;
}

static int collector_start(struct collector *col)
{
    memset(col, 0, sizeof(*col));
    pthread_mutex_init(&col->lock, NULL);
    col->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    if (col->fd < 0 || bind(col->fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(col->fd, 16) < 0 || getsockname(col->fd, (struct sockaddr *)&a, &alen) < 0)
        return -1;
    col->port = ntohs(a.sin_port);
    return pthread_create(&col->thread, NULL, collector_run, col) == 0 ? 0 : -1;
}

static void collector_stop(struct collector *col)
{
    col->stop = 1;
    pthread_join(col->thread, NULL);
    close(col->fd);
    it_buf_free(&col->bodies);
    pthread_mutex_destroy(&col->lock);
}

static size_t collector_records(struct collector *col)
{
    pthread_mutex_lock(&col->lock);
    size_t n = col->bodies.data ? count_lines(col->bodies.data) : 0;
    pthread_mutex_unlock(&col->lock);
    return n;
}

static void test_http_sink_batches(void)
{
    struct collector col;
    CU_ASSERT_FATAL(collector_start(&col) == 0);
    struct env e;
    CU_ASSERT_FATAL(start(&e,
                          "plugins:\n"
                          "  - name: logging\n"
                          "    instance: ship\n"
                          "    config:\n"
                          "      sink: { type: http, url: \"http://127.0.0.1:%d/ingest\", "
                          "batch_size: 10, flush_interval: 100ms }\n"
                          "routes:\n"
                          "  - { name: r, match: { paths: [\"/\"] }, upstream: o }\n",
                          col.port) == 0);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    enum { N = 75 };
    char ids[N][64];
    for (int i = 0; i < N; i++) {
        struct it_response r;
        CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/shipped"), NULL, &r) == 0);
        const char *id = it_response_header(&r, "X-Request-Id");
        snprintf(ids[i], sizeof(ids[i]), "\"request_id\":\"%s\"", id ? id : "?");
        it_response_free(&r);
    }
    it_http_free(&h);
    int64_t end = it_now_ms() + 5000;
    while (collector_records(&col) < N && it_now_ms() < end)
        it_sleep_ms(20);
    it_sleep_ms(300); /* nothing more comes */
    pthread_mutex_lock(&col.lock);
    const char *all = col.bodies.data ? col.bodies.data : "";
    CU_ASSERT_EQUAL(count_lines(all), N);
    for (int i = 0; i < N; i++)
        CU_ASSERT(strstr(all, ids[i]) != NULL);
    for (const char *p = all, *nl; (nl = strchr(p, '\n')); p = nl + 1)
        CU_ASSERT(json_line_ok(p, nl));
    CU_ASSERT(col.max_records <= 10);
    CU_ASSERT(col.posts >= N / 10);
    CU_ASSERT_STRING_EQUAL(col.content_type, "application/x-ndjson");
    pthread_mutex_unlock(&col.lock);
    CU_ASSERT(wait_metric(&e, "ship", "written", N, 3000) == N);
    CU_ASSERT_EQUAL(plugin_metric(&e, "ship", "dropped"), 0);
    it_proc_kill(e.gw); /* before the collector goes */
    collector_stop(&col);
}

/* Requests go on at full speed while the collector is unreachable (or never answers): records
 * beyond the per-worker queue are dropped and counted. */
static void sink_failing(const char *url_fmt, int use_origin)
{
    struct env e;
    int down = it_free_port(); /* nobody listens there */
    /* The hanging collector: an origin of its own whose /sleep/60000 never answers in time. */
    struct it_proc *sink = use_origin ? it_origin_start("sink") : NULL;
    if (use_origin)
        CU_ASSERT_FATAL(sink != NULL);
    char url[256];
    snprintf(url, sizeof(url), url_fmt, use_origin ? sink->port : down);
    CU_ASSERT_FATAL(start(&e,
                          "plugins:\n"
                          "  - name: logging\n"
                          "    instance: ship\n"
                          "    config:\n"
                          "      max_record: 4k\n"
                          "      sink: { type: http, url: \"%s\", batch_size: 5, queue_size: 8k, "
                          "flush_interval: 50ms, timeout: 30s, retries: 1, retry_backoff: 50ms }\n"
                          "routes:\n"
                          "  - { name: r, match: { paths: [\"/\"] }, upstream: o }\n",
                          url) == 0);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    int64_t slowest = 0, total = 0;
    enum { N = 300 };
    for (int i = 0; i < N; i++) {
        struct it_response r;
        int64_t t0 = it_now_ms();
        CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/work"), NULL, &r) == 0);
        int64_t dt = it_now_ms() - t0;
        CU_ASSERT_EQUAL(r.status, 200);
        it_response_free(&r);
        slowest = dt > slowest ? dt : slowest;
        total += dt;
    }
    it_http_free(&h);
    fprintf(stderr, "\n    %d requests with the sink failing: slowest %lld ms, mean %.2f ms\n", N,
            (long long)slowest, (double)total / N);
    CU_ASSERT(slowest < 1000);
    /* At most 8k of records fit per worker (2 workers): most of 300 records are dropped. */
    long long dropped = wait_metric(&e, "ship", "dropped", N / 2, 5000);
    CU_ASSERT(dropped >= N / 2);
    CU_ASSERT(dropped <= N);
    CU_ASSERT_EQUAL(plugin_metric(&e, "ship", "written"), 0);
    it_proc_kill(e.gw);
}

static void test_http_sink_down(void)
{
    sink_failing("http://127.0.0.1:%d/ingest", 0);
}

static void test_http_sink_hangs(void)
{
    sink_failing("http://127.0.0.1:%d/sleep/60000", 1);
}

static CU_TestInfo tests[] = {
    {"file: one valid JSON record per request, right fields", test_file_json_records},
    {"template, per-route instances, sample 0", test_template_per_route_and_sample_zero},
    {"mv + SIGUSR1: new records go to a new file at the path", test_reopen_on_sigusr1},
    {"reload and stop write every queued record", test_reload_and_stop_lose_nothing},
    {"http: every record reaches the collector in batches", test_http_sink_batches},
    {"http sink down: latency unchanged, drops counted", test_http_sink_down},
    {"http sink hangs: latency unchanged, drops counted", test_http_sink_hangs},
    CU_TEST_INFO_NULL,
};

static int suite_init(void)
{
    plugin_dir = it_plugin_dir("logging-plugins", logging_so);
    return plugin_dir ? 0 : -1;
}

static CU_SuiteInfo suites[] = {
    {"logging", suite_init, it_suite_cleanup, it_test_setup, it_test_teardown, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    it_build_path(logging_so, sizeof(logging_so), "plugins/logging.so");
    return it_main(suites, 240);
}
