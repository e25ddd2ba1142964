/* The ratelimit plugin (plugins/ratelimit) in a running gateway: fixed and sliding windows that
 * hold exactly across two workers, the rate-limit headers on proxied and refused responses,
 * hide_headers, a key by header falling back to the client IP, counts kept across a reload,
 * `lintel -t` messages, and policy redis: one limit shared by two gateways through a real
 * redis-server started here, and requests that keep flowing when that Redis is killed (then
 * reconnection once it is back).
 *
 * Windows are real time. A test that must fit in one window waits until just after a window
 * starts (on the monotonic clock for the host's shared counters, on the wall clock for Redis)
 * and, should its burst still straddle a boundary on a slow machine, tries again with a new key
 * (at most three times). Nothing is asserted about durations. */
#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static char plugin_so[PATH_MAX]; /* the build's plugins/ratelimit.so */
static char auth_so[PATH_MAX];   /* and auth.so, which sets the consumer */

/* ---- files and gateways ---------------------------------------------------------------------- */

/* A plugin directory of its own holding a copy of ratelimit.so (so that other plugins being
 * built next to it cannot affect these tests, and the reload test can replace the file). */
static const char *plugin_dir(const char *name)
{
    return it_plugin_dir(name, plugin_so);
}

#define HEAD_CONSUMERS                                                                             \
    "consumers:\n"                                                                                 \
    "  - { name: alice, id: \"1\", credentials: { keys: [k-alice] } }\n"                           \
    "  - { name: bob, id: \"2\", credentials: { keys: [k-bob] } }\n"                               \
    "  - { name: guest, id: \"0\" }\n"

#define HEAD                                                                                       \
    "listen: [ { address: \"127.0.0.1:%d\" } ]\n"                                                  \
    "admin: { enabled: false }\n"                                                                  \
    "workers: 2\n"                                                                                 \
    "plugin_paths: [\"%s\"]\n"                                                                     \
    "upstreams:\n"                                                                                 \
    "  o: { targets: [ { address: \"127.0.0.1:%d\" } ] }\n"                                        \
    "routes:\n"

struct gw {
    struct it_proc *proc;
    int port;
    const char *conf;
};

/* Starts a gateway (two workers) whose routes are given as YAML (a list's items). */
static int gw_start(struct gw *g, const char *name, const char *dir, int origin_port,
                    const char *routes)
{
    char file[96];
    snprintf(file, sizeof(file), "%s.yaml", name);
    g->port = it_free_port();
    g->conf = it_temp_path(file);
    if (!g->conf || it_write_file(g->conf, HEAD "%s", g->port, dir, origin_port, routes) != 0)
        return -1;
    g->proc = it_lintel_start(g->conf, g->port);
    return g->proc ? 0 : -1;
}

/* ---- windows --------------------------------------------------------------------------------- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until a window of period ms on clock after window `after` has just begun (5..100 ms
 * in) and returns its index. The host's shared counters count windows on the monotonic clock
 * (it_now_ms), Redis on the wall clock. */
static int64_t window_start(int64_t (*clock)(void), int64_t period, int64_t after)
{
    for (int i = 0; i < 1000; i++) {
        int64_t now = clock(), into = now % period;
        if (into >= 5 && into < 100 && now / period > after)
            return now / period;
        it_sleep_ms(into < 5 ? 2 : (int)(period - into + 5));
    }
    return -1;
}

/* ---- load ------------------------------------------------------------------------------------ */

struct burst {
    pthread_t t;
    int port;
    const char *path;
    const char *client; /* X-Client header value, or NULL */
    int n;
    atomic_int *go;
    int ok, limited, other;
};

static void *burst_run(void *arg)
{
    struct burst *b = arg;
    struct it_http h;
    if (it_http_init(&h) != 0)
        return NULL;
    char url[128], hdr[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", b->port, b->path);
    snprintf(hdr, sizeof(hdr), "X-Client: %s", b->client ? b->client : "");
    const char *hdrs[] = {hdr, NULL};
    while (!atomic_load(b->go))
        usleep(200);
    for (int i = 0; i < b->n; i++) {
        struct it_response r;
        struct it_http_req q = {
            .url = url, .headers = b->client ? hdrs : NULL, .timeout_ms = 10000};
        if (it_http_do(&h, &q, &r) != 0) {
            b->other++;
            continue;
        }
        b->ok += r.status == 200;
        b->limited += r.status == 429;
        b->other += r.status != 200 && r.status != 429;
        it_response_free(&r);
    }
    it_http_free(&h);
    return NULL;
}

struct totals {
    int ok, limited, other;
};

/* Sends n requests on each of the given ports, nthreads connections per port, all at once.
 * Keepalive connections spread over the gateway's workers (SO_REUSEPORT). */
static struct totals send_burst(const int *ports, int nports, int nthreads, int n, const char *path,
                                const char *client)
{
    struct burst b[16];
    atomic_int go = 0;
    int total = nports * nthreads;
    for (int i = 0; i < total; i++) {
        b[i] = (struct burst){
            .port = ports[i % nports], .path = path, .client = client, .n = n, .go = &go};
        pthread_create(&b[i].t, NULL, burst_run, &b[i]);
    }
    atomic_store(&go, 1);
    struct totals t = {0};
    for (int i = 0; i < total; i++) {
        pthread_join(b[i].t, NULL);
        t.ok += b[i].ok;
        t.limited += b[i].limited;
        t.other += b[i].other;
    }
    return t;
}

/* One GET with an optional "Name: value" header line. */
static int get(int port, const char *path, const char *header, struct it_response *r)
{
    struct it_http h;
    if (it_http_init(&h) != 0)
        return -1;
    const char *hdrs[] = {header, NULL};
    int rc = it_http_get(&h, it_url(port, path), header ? hdrs : NULL, r);
    it_http_free(&h);
    return rc;
}

static int status_of(int port, const char *path, const char *header)
{
    struct it_response r;
    if (get(port, path, header, &r) != 0)
        return -1;
    int s = r.status;
    it_response_free(&r);
    return s;
}

static long header_long(const struct it_response *r, const char *name)
{
    const char *v = it_response_header(r, name);
    return v ? atol(v) : -1;
}

/* ---- a redis-server of our own --------------------------------------------------------------- */

struct redis {
    pid_t pid;
    int port;
    char log[PATH_MAX];
};

static struct redis redis_proc = {.pid = -1};

/* Sends an inline command and returns the reply's text (up to the first complete line, and a
 * bulk string's body), or -1. */
static int redis_query(int port, const char *cmd, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char line[256];
    int n = snprintf(line, sizeof(line), "%s\r\n", cmd);
    size_t len = 0;
    int rc = -1;
    if (write(fd, line, (size_t)n) == n) {
        for (int i = 0; i < 100 && len + 1 < cap; i++) {
            ssize_t got = read(fd, out + len, cap - 1 - len);
            if (got <= 0)
                break;
            len += (size_t)got;
            out[len] = '\0';
            char *nl = strstr(out, "\r\n");
            if (nl &&
                (out[0] != '$' || (size_t)(nl + 2 - out) + (size_t)atol(out + 1) + 2 <= len)) {
                rc = 0;
                break;
            }
        }
    }
    close(fd);
    return rc;
}

/* A number in INFO's text ("connected_clients:5"), or -1. */
static long redis_info(int port, const char *field)
{
    char buf[16384];
    if (redis_query(port, "INFO clients", buf, sizeof(buf)) != 0)
        return -1;
    const char *p = strstr(buf, field);
    return p ? atol(p + strlen(field) + 1) : -1;
}

static long redis_dbsize(int port)
{
    char buf[64];
    return redis_query(port, "DBSIZE", buf, sizeof(buf)) == 0 && buf[0] == ':' ? atol(buf + 1) : -1;
}

/* Starts `redis-server --port PORT --save '' --appendonly no` (dying with this process) and
 * waits (5 s) until it answers. */
static int redis_start(struct redis *rs, int port)
{
    rs->port = port;
    snprintf(rs->log, sizeof(rs->log), "%s", it_temp_path("redis.log"));
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execlp("redis-server", "redis-server", "--port", portstr, "--bind", "127.0.0.1", "--save",
               "", "--appendonly", "no", "--logfile", rs->log, (char *)NULL);
        _exit(127);
    }
    rs->pid = pid;
    for (int i = 0; i < 500; i++) {
        char buf[64];
        if (redis_query(port, "PING", buf, sizeof(buf)) == 0 && strncmp(buf, "+PONG", 5) == 0)
            return 0;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            rs->pid = -1;
            fprintf(stderr, "redis-server exited (see %s)\n", rs->log);
            return -1;
        }
        it_sleep_ms(10);
    }
    return -1;
}

static void redis_kill(struct redis *rs)
{
    if (rs->pid > 0) {
        kill(rs->pid, SIGKILL);
        waitpid(rs->pid, NULL, 0);
    }
    rs->pid = -1;
}

/* Waits (10 s) until Redis has at least n clients (ours included). */
static bool redis_clients(int port, long n)
{
    for (int i = 0; i < 500; i++) {
        if (redis_info(port, "connected_clients") >= n)
            return true;
        it_sleep_ms(20);
    }
    return false;
}

static void teardown(void)
{
    redis_kill(&redis_proc);
    it_test_teardown();
}

/* ---- tests ----------------------------------------------------------------------------------- */

/* 150 requests for one fresh key on 15 connections to a gateway of two workers, within one
 * window of a 100/s limit: exactly 100 pass, and only those reach the upstream. */
static void exact_across_workers(const char *algorithm)
{
    struct it_proc *origin = it_origin_start("o");
    char name[64], routes[512];
    snprintf(name, sizeof(name), "rl-exact-%s", algorithm);
    const char *dir = plugin_dir(name);
    CU_ASSERT_FATAL(origin && dir);
    snprintf(routes, sizeof(routes),
             "  - name: api\n"
             "    upstream: o\n"
             "    plugins:\n"
             "      - name: ratelimit\n"
             "        config: { second: 100, algorithm: %s, key: { header: X-Client } }\n",
             algorithm);
    struct gw g;
    CU_ASSERT_FATAL(gw_start(&g, name + 3, dir, origin->port, routes) == 0);
    struct totals t = {0};
    int attempt;
    for (attempt = 0; attempt < 3; attempt++) {
        /* A key never used before: no previous window weighs on a sliding window. */
        char client[32];
        snprintf(client, sizeof(client), "exact-%d", attempt);
        long before = it_origin_requests(origin->port);
        int64_t w = window_start(it_now_ms, 1000, -1);
        t = send_burst(&g.port, 1, 15, 10, "/", client); /* 150 over 15 connections */
        if (it_now_ms() / 1000 != w) {
            printf("\n    burst crossed a window boundary (%d/%d/%d), again\n", t.ok, t.limited,
                   t.other);
            continue;
        }
        /* The refused requests never reached the upstream. */
        CU_ASSERT_EQUAL(it_origin_requests(origin->port), before + 100 + 1);
        break;
    }
    CU_ASSERT(attempt < 3);
    printf("\n    %s 100/s, 150 requests on 15 connections: %d passed, %d refused\n", algorithm,
           t.ok, t.limited);
    CU_ASSERT_EQUAL(t.ok, 100);
    CU_ASSERT_EQUAL(t.limited, 50);
    CU_ASSERT_EQUAL(t.other, 0);
}

static void test_fixed_window_exact_across_workers(void)
{
    exact_across_workers("fixed_window");
}

static void test_sliding_window_exact_across_workers(void)
{
    exact_across_workers("sliding_window");
}

static void test_headers(void)
{
    struct it_proc *origin = it_origin_start("o");
    const char *dir = plugin_dir("rl-headers");
    CU_ASSERT_FATAL(origin && dir);
    struct gw g;
    CU_ASSERT_FATAL(gw_start(&g, "headers", dir, origin->port,
                             "  - name: api\n"
                             "    upstream: o\n"
                             "    plugins:\n"
                             "      - name: ratelimit\n"
                             "        config: { second: 3, day: 5, algorithm: fixed_window }\n") ==
                    0);
    /* Not in the last seconds of a (monotonic) day, so that the day's count holds. */
    while (it_now_ms() % 86400000 > 86400000 - 10000)
        it_sleep_ms(500);
    int64_t w = window_start(it_now_ms, 1000, -1);
    for (int i = 0; i < 3; i++) {
        struct it_response r;
        /* The headers ride on whatever the upstream answers, a 404 included. */
        CU_ASSERT_FATAL(get(g.port, i == 1 ? "/status/404" : "/", NULL, &r) == 0);
        CU_ASSERT_EQUAL(r.status, i == 1 ? 404 : 200);
        CU_ASSERT_EQUAL(header_long(&r, "X-RateLimit-Limit-Second"), 3);
        CU_ASSERT_EQUAL(header_long(&r, "X-RateLimit-Remaining-Second"), 2 - i);
        CU_ASSERT_EQUAL(header_long(&r, "X-RateLimit-Limit-Day"), 5);
        CU_ASSERT_EQUAL(header_long(&r, "X-RateLimit-Remaining-Day"), 4 - i);
        CU_ASSERT_EQUAL(header_long(&r, "RateLimit-Limit"), 3);
        CU_ASSERT_EQUAL(header_long(&r, "RateLimit-Remaining"), 2 - i);
        CU_ASSERT_EQUAL(header_long(&r, "RateLimit-Reset"), 1);
        CU_ASSERT_EQUAL(it_response_header_count(&r, "RateLimit-Remaining"), 1);
        CU_ASSERT_PTR_NULL(it_response_header(&r, "Retry-After"));
        it_response_free(&r);
    }
    struct it_response r;
    CU_ASSERT_FATAL(get(g.port, "/", NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 429);
    CU_ASSERT_EQUAL(header_long(&r, "Retry-After"), 1);
    CU_ASSERT_EQUAL(header_long(&r, "X-RateLimit-Remaining-Second"), 0);
    CU_ASSERT_EQUAL(header_long(&r, "X-RateLimit-Remaining-Day"), 1); /* refusals do not count */
    CU_ASSERT_EQUAL(header_long(&r, "RateLimit-Remaining"), 0);
    CU_ASSERT(it_json_eq(r.body.data, "error", "rate limit exceeded"));
    const char *ct = it_response_header(&r, "Content-Type");
    CU_ASSERT(ct && strncmp(ct, "application/json", 16) == 0);
    it_response_free(&r);

    /* The next second: the day has 2 left, then the day refuses, for much longer. */
    window_start(it_now_ms, 1000, w);
    CU_ASSERT_EQUAL(status_of(g.port, "/", NULL), 200);
    CU_ASSERT_FATAL(get(g.port, "/", NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(header_long(&r, "RateLimit-Limit"), 5); /* now the day is the tightest */
    CU_ASSERT_EQUAL(header_long(&r, "RateLimit-Remaining"), 0);
    it_response_free(&r);
    CU_ASSERT_FATAL(get(g.port, "/", NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 429);
    CU_ASSERT(header_long(&r, "Retry-After") > 1);
    CU_ASSERT_EQUAL(header_long(&r, "X-RateLimit-Remaining-Day"), 0);
    it_response_free(&r);
}

static void test_hide_headers(void)
{
    struct it_proc *origin = it_origin_start("o");
    const char *dir = plugin_dir("rl-hide");
    CU_ASSERT_FATAL(origin && dir);
    struct gw g;
    CU_ASSERT_FATAL(gw_start(&g, "hide", dir, origin->port,
                             "  - name: api\n"
                             "    upstream: o\n"
                             "    plugins:\n"
                             "      - name: ratelimit\n"
                             "        config: { day: 1, hide_headers: true, status: 503 }\n") == 0);
    while (it_now_ms() % 86400000 > 86400000 - 10000)
        it_sleep_ms(500);
    static const char *const names[] = {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
                                        "X-RateLimit-Limit-Minute", "X-RateLimit-Remaining-Minute"};
    for (int i = 0; i < 2; i++) {
        struct it_response r;
        CU_ASSERT_FATAL(get(g.port, "/", NULL, &r) == 0);
        CU_ASSERT_EQUAL(r.status, i == 0 ? 200 : 503);
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
            CU_ASSERT_PTR_NULL(it_response_header(&r, names[k]));
        if (i == 1) /* a refusal still says when to come back */
            CU_ASSERT(header_long(&r, "Retry-After") > 1);
        it_response_free(&r);
    }
}

static void test_key_header_falls_back_to_ip(void)
{
    struct it_proc *origin = it_origin_start("o");
    const char *dir = plugin_dir("rl-key");
    CU_ASSERT_FATAL(origin && dir);
    struct gw g;
    CU_ASSERT_FATAL(gw_start(&g, "key", dir, origin->port,
                             "  - name: api\n"
                             "    upstream: o\n"
                             "    plugins:\n"
                             "      - name: ratelimit\n"
                             "        config: { hour: 2, key: { header: X-Api-Key } }\n") == 0);
    /* Within one hour window (not near its end). */
    while (it_now_ms() % 3600000 > 3600000 - 10000)
        it_sleep_ms(500);
    CU_ASSERT_EQUAL(status_of(g.port, "/", "X-Api-Key: alpha"), 200);
    CU_ASSERT_EQUAL(status_of(g.port, "/", "X-Api-Key: alpha"), 200);
    CU_ASSERT_EQUAL(status_of(g.port, "/", "X-Api-Key: alpha"), 429);
    CU_ASSERT_EQUAL(status_of(g.port, "/", "X-Api-Key: beta"), 200);
    /* Without the header: the client IP (127.0.0.1), counted on its own. */
    CU_ASSERT_EQUAL(status_of(g.port, "/", NULL), 200);
    CU_ASSERT_EQUAL(status_of(g.port, "/", "X-Other: 1"), 200);
    CU_ASSERT_EQUAL(status_of(g.port, "/", NULL), 429);
    /* A header that happens to equal the IP is a different key. */
    CU_ASSERT_EQUAL(status_of(g.port, "/", "X-Api-Key: 127.0.0.1"), 200);
    CU_ASSERT_EQUAL(status_of(g.port, "/", "X-Api-Key: beta"), 200);
    CU_ASSERT_EQUAL(status_of(g.port, "/", "X-Api-Key: beta"), 429);
}

/* With the auth plugin in front (priority 1000 > 900): one count per consumer, wherever the
 * requests come from; anonymous requests count as auth's anonymous consumer. */
static void test_key_consumer_with_auth(void)
{
    struct it_proc *origin = it_origin_start("o");
    const char *dir = plugin_dir("rl-consumer");
    CU_ASSERT_FATAL(origin && dir);
    char dst[PATH_MAX];
    snprintf(dst, sizeof(dst), "%s/auth.so", dir);
    CU_ASSERT_FATAL(it_install_file(auth_so, dst) == 0);
    struct gw g;
    g.port = it_free_port();
    g.conf = it_temp_path("consumer.yaml");
    CU_ASSERT_FATAL(
        it_write_file(g.conf,
                      HEAD_CONSUMERS HEAD
                      "  - name: api\n"
                      "    upstream: o\n"
                      "    plugins:\n"
                      "      - { name: auth, config: { methods: [key], anonymous: guest "
                      "} }\n"
                      "      - { name: ratelimit, config: { hour: 2, key: consumer } }\n",
                      g.port, dir, origin->port) == 0);
    g.proc = it_lintel_start(g.conf, g.port);
    CU_ASSERT_FATAL(g.proc != NULL);
    while (it_now_ms() % 3600000 > 3600000 - 10000)
        it_sleep_ms(500);
    CU_ASSERT_EQUAL(status_of(g.port, "/", "apikey: k-alice"), 200);
    CU_ASSERT_EQUAL(status_of(g.port, "/", "apikey: k-alice"), 200);
    CU_ASSERT_EQUAL(status_of(g.port, "/", "apikey: k-alice"), 429);
    CU_ASSERT_EQUAL(status_of(g.port, "/", "apikey: k-bob"), 200);
    CU_ASSERT_EQUAL(status_of(g.port, "/", NULL), 200); /* guest */
    CU_ASSERT_EQUAL(status_of(g.port, "/", NULL), 200);
    CU_ASSERT_EQUAL(status_of(g.port, "/", NULL), 429);
    CU_ASSERT_EQUAL(status_of(g.port, "/", "apikey: k-bob"), 200);
    CU_ASSERT_EQUAL(status_of(g.port, "/", "apikey: k-bob"), 429);
}

static void test_reload_keeps_counts(void)
{
    struct it_proc *origin = it_origin_start("o");
    const char *dir = plugin_dir("rl-reload");
    CU_ASSERT_FATAL(origin && dir);
    struct gw g;
    /* Default algorithm (sliding_window: counters and carries) and token_bucket. */
    CU_ASSERT_FATAL(gw_start(&g, "reload", dir, origin->port,
                             "  - name: sliding\n"
                             "    match: { paths: [\"/s\"] }\n"
                             "    upstream: o\n"
                             "    plugins:\n"
                             "      - { name: ratelimit, instance: rs, config: { day: 4 } }\n"
                             "  - name: bucket\n"
                             "    match: { paths: [\"/t\"] }\n"
                             "    upstream: o\n"
                             "    plugins:\n"
                             "      - { name: ratelimit, instance: rt, config: { day: 4, "
                             "algorithm: token_bucket } }\n") == 0);
    while (it_now_ms() % 86400000 > 86400000 - 10000)
        it_sleep_ms(500);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(status_of(g.port, "/s", NULL), 200);
        CU_ASSERT_EQUAL(status_of(g.port, "/t", NULL), 200);
    }
    /* Deploy the plugin again (a new file renamed over the old one) and reload with SIGHUP:
     * new instances, same plugin and instance names, same counts. */
    char so[PATH_MAX];
    snprintf(so, sizeof(so), "%s/ratelimit.so", dir);
    CU_ASSERT_FATAL(it_install_file(plugin_so, so) == 0);
    off_t mark = it_proc_log_size(g.proc);
    CU_ASSERT_FATAL(it_proc_signal(g.proc, SIGHUP) == 0);
    CU_ASSERT_FATAL(it_proc_log_wait(g.proc, mark, "configuration 2 loaded", 10000));
    struct it_response r;
    CU_ASSERT_FATAL(get(g.port, "/s", NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(header_long(&r, "X-RateLimit-Remaining-Day"), 0);
    it_response_free(&r);
    CU_ASSERT_EQUAL(status_of(g.port, "/s", NULL), 429);
    CU_ASSERT_EQUAL(status_of(g.port, "/t", NULL), 200);
    CU_ASSERT_EQUAL(status_of(g.port, "/t", NULL), 429);
}

static void test_config_check(void)
{
    struct it_proc *origin = it_origin_start("o");
    const char *dir = plugin_dir("rl-check");
    CU_ASSERT_FATAL(origin && dir);
    const char *conf = it_temp_path("check.yaml");
    static const char routes[] = "  - name: api\n"
                                 "    upstream: o\n"
                                 "    plugins:\n"
                                 "      - name: ratelimit\n"
                                 "        config: { second: %s, key: [consumer, ip] }\n";
    char text[512];
    snprintf(text, sizeof(text), routes, "10");
    CU_ASSERT_FATAL(it_write_file(conf, HEAD "%s", it_free_port(), dir, origin->port, text) == 0);
    CU_ASSERT_EQUAL(it_lintel_check(conf, NULL), 0);

    snprintf(text, sizeof(text), routes, "0");
    CU_ASSERT_FATAL(it_write_file(conf, HEAD "%s", it_free_port(), dir, origin->port, text) == 0);
    CU_ASSERT(it_lintel_refuses(conf,
                                "%s:12:27: routes[0].plugins[0].config.second: plugin ratelimit "
                                "1.1.1: must be an integer from 1 to 1000000000",
                                conf));
}

/* The page's complete example (its first ```yaml block that starts with "listen:") passes
 * lintel -t once its plugin path points at this test's copy of the plugin. */
static void test_docs_example(void)
{
    CU_ASSERT_EQUAL(it_doc_check("docs/plugins/ratelimit.md", plugin_dir("rl-docs")), 0);
}

/* ---- policy redis ---------------------------------------------------------------------------- */

static const char redis_routes[] = "  - name: api\n"
                                   "    upstream: o\n"
                                   "    plugins:\n"
                                   "      - name: ratelimit\n"
                                   "        config:\n"
                                   "          second: 50\n"
                                   "          algorithm: fixed_window\n"
                                   "          key: { header: X-Client }\n"
                                   "          policy: redis\n"
                                   "          redis: { host: 127.0.0.1, port: %d, timeout: 2s }\n";

static void test_redis_shared_by_two_gateways(void)
{
    struct it_proc *origin = it_origin_start("o");
    const char *dir = plugin_dir("rl-redis");
    CU_ASSERT_FATAL(origin && dir);
    CU_ASSERT_FATAL(redis_start(&redis_proc, it_free_port()) == 0);
    char routes[1024];
    snprintf(routes, sizeof(routes), redis_routes, redis_proc.port);
    struct gw a, b;
    CU_ASSERT_FATAL(gw_start(&a, "redis-a", dir, origin->port, routes) == 0);
    CU_ASSERT_FATAL(gw_start(&b, "redis-b", dir, origin->port, routes) == 0);
    /* Every worker of both gateways connected (2 x 2, and our INFO connection). */
    CU_ASSERT_FATAL(redis_clients(redis_proc.port, 5));
    it_sleep_ms(200); /* their SCRIPT LOAD answered */

    int ports[2] = {a.port, b.port};
    struct totals t = {0};
    int attempt;
    for (attempt = 0; attempt < 3; attempt++) {
        char client[32];
        snprintf(client, sizeof(client), "shared-%d", attempt);
        long before = it_origin_requests(origin->port);
        int64_t w = window_start(wall_ms, 1000, -1);  /* Redis counts on its own (wall) clock */
        t = send_burst(ports, 2, 4, 10, "/", client); /* 80: 40 through each gateway */
        if (wall_ms() / 1000 != w) {
            printf("\n    burst crossed a window boundary (%d/%d/%d), again\n", t.ok, t.limited,
                   t.other);
            continue;
        }
        CU_ASSERT_EQUAL(it_origin_requests(origin->port), before + 50 + 1);
        break;
    }
    CU_ASSERT(attempt < 3);
    printf("\n    redis 50/s shared by 2 gateways, 80 requests: %d passed, %d refused\n", t.ok,
           t.limited);
    CU_ASSERT_EQUAL(t.ok, 50);
    CU_ASSERT_EQUAL(t.limited, 30);
    CU_ASSERT_EQUAL(t.other, 0);
    CU_ASSERT(redis_dbsize(redis_proc.port) >= 1);
    /* Nothing fell back to local limiting. */
    CU_ASSERT_FALSE(it_proc_log_wait(a.proc, 0, "redis 127.0.0.1", 0));
    CU_ASSERT_FALSE(it_proc_log_wait(b.proc, 0, "redis 127.0.0.1", 0));
}

static void test_redis_killed_fault_tolerant(void)
{
    struct it_proc *origin = it_origin_start("o");
    const char *dir = plugin_dir("rl-redis-kill");
    CU_ASSERT_FATAL(origin && dir);
    int port = it_free_port();
    CU_ASSERT_FATAL(redis_start(&redis_proc, port) == 0);
    char routes[1024];
    snprintf(routes, sizeof(routes), redis_routes, port);
    struct gw g;
    CU_ASSERT_FATAL(gw_start(&g, "redis-kill", dir, origin->port, routes) == 0);
    CU_ASSERT_FATAL(redis_clients(port, 3));
    it_sleep_ms(200);
    CU_ASSERT_EQUAL(status_of(g.port, "/", "X-Client: before"), 200);
    CU_ASSERT(redis_dbsize(port) >= 1);

    /* Redis dies: requests keep flowing, limited locally; the gateway says so once. */
    off_t mark = it_proc_log_size(g.proc);
    redis_kill(&redis_proc);
    struct totals t = send_burst(&g.port, 1, 2, 10, "/", "during");
    printf("\n    redis killed: %d passed, %d refused, %d other\n", t.ok, t.limited, t.other);
    CU_ASSERT_EQUAL(t.ok, 20);
    CU_ASSERT_EQUAL(t.other, 0);
    CU_ASSERT(it_proc_log_wait(g.proc, mark, "limiting requests locally", 5000));
    /* Still limited, locally: 50 per second per gateway. */
    int64_t w = window_start(it_now_ms, 1000, -1);
    t = send_burst(&g.port, 1, 3, 30, "/", "local");
    if (it_now_ms() / 1000 == w) {
        CU_ASSERT_EQUAL(t.ok, 50);
        CU_ASSERT_EQUAL(t.limited, 40);
    }

    /* Redis is back: the workers reconnect in the background and use it again. */
    CU_ASSERT_FATAL(redis_start(&redis_proc, port) == 0);
    CU_ASSERT_FATAL(redis_clients(port, 3));
    it_sleep_ms(200);
    CU_ASSERT_EQUAL(redis_dbsize(port), 0);
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(status_of(g.port, "/", "X-Client: after"), 200);
    CU_ASSERT(redis_dbsize(port) >= 1);
    CU_ASSERT(it_proc_log_wait(g.proc, mark, "answers again", 5000));

    /* A reload replaces the instances: the old ones close their connections on their workers,
     * the new ones connect; then a clean stop (a sanitizer build checks for leaks there). */
    mark = it_proc_log_size(g.proc);
    CU_ASSERT_FATAL(it_proc_signal(g.proc, SIGHUP) == 0);
    CU_ASSERT_FATAL(it_proc_log_wait(g.proc, mark, "configuration 2 loaded", 10000));
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(status_of(g.port, "/", "X-Client: reloaded"), 200);
    CU_ASSERT_FATAL(it_proc_signal(g.proc, SIGTERM) == 0);
    CU_ASSERT_EQUAL(it_proc_wait(g.proc, 20000), 0);
}

static CU_TestInfo tests[] = {
    {"fixed window 100/s across 2 workers: exactly 100 of 150 pass",
     test_fixed_window_exact_across_workers},
    {"sliding window 100/s across 2 workers: exactly 100 of 150 pass",
     test_sliding_window_exact_across_workers},
    {"rate-limit headers on proxied responses and on the 429", test_headers},
    {"hide_headers: no rate-limit headers, Retry-After on the refusal", test_hide_headers},
    {"key by header, falling back to the client IP", test_key_header_falls_back_to_ip},
    {"key by consumer, set by the auth plugin", test_key_consumer_with_auth},
    {"a reload (plugin file deployed again, SIGHUP) keeps the counts", test_reload_keeps_counts},
    {"lintel -t accepts the config and reports the plugin's errors", test_config_check},
    {"docs/plugins/ratelimit.md's example passes lintel -t", test_docs_example},
    {"policy redis: one limit across two gateways", test_redis_shared_by_two_gateways},
    {"policy redis: Redis killed, requests flow; Redis back, used again; reload and stop",
     test_redis_killed_fault_tolerant},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"ratelimit", NULL, it_suite_cleanup, it_test_setup, teardown, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    it_build_path(plugin_so, sizeof(plugin_so), "plugins/ratelimit.so");
    it_build_path(auth_so, sizeof(auth_so), "plugins/auth.so");
    return it_main(suites, 240);
}
