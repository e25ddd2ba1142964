/* The mirror plugin (plugins/mirror) in a running gateway, with a shadow service played by this
 * test (a small libevent server on its own thread that records every request it gets, and can
 * be told never to answer):
 *   - sample 0.5 over 200 POSTs: the shadow gets exactly the requests whose id the documented
 *     rule selects, each with its body and X-Mirror; over-max and chunked bodies are skipped;
 *   - `to: { upstream: NAME }` with path prefix/replace and a custom mark header;
 *   - a shadow that hangs, and a shadow whose port is closed, add no latency: the p99 of 200
 *     mirrored requests against the p99 of 200 unmirrored ones, interleaved (numbers printed);
 *   - max_inflight: 2 with a hanging shadow drops the rest and counts it in GET /-/metrics;
 *   - lintel -t: this page's example, and an error message.
 * The gateway runs one worker, so copies and requests share one event loop: the strictest case
 * for "the copy never delays the request". */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "harness.h"

static char plugin_so[PATH_MAX]; /* the build's plugins/mirror.so */

/* ---- the shadow -------------------------------------------------------------------------- */

struct rec {
    char method[16], path[256], rid[96], mark[64], xff[96];
    size_t body_len;
    uint64_t body_fnv;
};

struct shadow_conn {
    struct shadow *s;
    struct bufferevent *bev;
    struct shadow_conn *prev, *next;
};

struct shadow {
    pthread_t thread;
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *stop_ev;
    int stop_fds[2];
    int port;
    int hang;              /* never answer (set before start) */
    const char *mark_name; /* the copy-marking header to record */
    struct shadow_conn *conns;
    pthread_mutex_t mu; /* guards recs and n */
    struct rec *recs;
    size_t n, cap;
};

/* Copies header name's value out of head (a request head, "\r\n"-separated) into out. */
static void head_value(const char *head, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    out[0] = '\0';
    for (const char *line = strstr(head, "\r\n"); line && line[2] != '\r';
         line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, name, nlen) == 0 && h[nlen] == ':') {
            const char *v = h + nlen + 1;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r");
            snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), v);
            return;
        }
    }
}

static void conn_free(struct shadow_conn *c)
{
    struct shadow *s = c->s;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    bufferevent_free(c->bev);
    free(c);
}

/* Reads every complete request (Content-Length bodies; the mirror sends no other kind),
 * records it and, unless hanging, answers 200. */
static void on_shadow_read(struct bufferevent *bev, void *arg)
{
    struct shadow_conn *c = arg;
    struct shadow *s = c->s;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
        if (end.pos < 0)
            return;
        size_t head_len = (size_t)end.pos + 4;
        char *head = malloc(head_len + 1);
        evbuffer_copyout(in, head, head_len);
        head[head_len] = '\0';
        char cl[32];
        head_value(head, "Content-Length", cl, sizeof(cl));
        size_t body_len = cl[0] ? (size_t)strtoull(cl, NULL, 10) : 0;
        if (evbuffer_get_length(in) < head_len + body_len) {
            free(head);
            return;
        }
        evbuffer_drain(in, head_len);
        unsigned char *body = malloc(body_len + 1);
        evbuffer_remove(in, body, body_len);
        struct rec r = {.body_len = body_len, .body_fnv = it_fnv1a(IT_FNV_INIT, body, body_len)};
        sscanf(head, "%15s %255s", r.method, r.path);
        head_value(head, "X-Request-Id", r.rid, sizeof(r.rid));
        head_value(head, s->mark_name, r.mark, sizeof(r.mark));
        head_value(head, "X-Forwarded-For", r.xff, sizeof(r.xff));
        free(head);
        free(body);
        pthread_mutex_lock(&s->mu);
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 256;
            s->recs = realloc(s->recs, s->cap * sizeof(*s->recs));
        }
        s->recs[s->n++] = r;
        pthread_mutex_unlock(&s->mu);
        if (!s->hang)
            evbuffer_add_printf(bufferevent_get_output(bev),
                                "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nshadow");
    }
}

static void on_shadow_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        conn_free(arg);
}

static void on_shadow_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                             int len, void *arg)
{
    struct shadow *s = arg;
    struct shadow_conn *c = calloc(1, sizeof(*c));
    c->s = s;
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(c->bev, on_shadow_read, NULL, on_shadow_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
}

static void on_shadow_stop(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(arg);
}

static void *shadow_run(void *arg)
{
    struct shadow *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

/* Starts a shadow on a free loopback port. Returns 0 or -1. */
static int shadow_start(struct shadow *s, int hang, const char *mark_name)
{
    memset(s, 0, sizeof(*s));
    s->hang = hang;
    s->mark_name = mark_name;
    pthread_mutex_init(&s->mu, NULL);
    s->base = event_base_new();
    if (!s->base || pipe(s->stop_fds) != 0)
        return -1;
    s->port = it_free_port();
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)s->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    s->listener = evconnlistener_new_bind(s->base, on_shadow_accept, s,
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 1024,
                                          (struct sockaddr *)&a, sizeof(a));
    s->stop_ev = event_new(s->base, s->stop_fds[0], EV_READ, on_shadow_stop, s->base);
    if (!s->listener || !s->stop_ev || event_add(s->stop_ev, NULL) != 0)
        return -1;
    return pthread_create(&s->thread, NULL, shadow_run, s) == 0 ? 0 : -1;
}

static void shadow_stop(struct shadow *s)
{
    if (!s->base)
        return;
    if (write(s->stop_fds[1], "x", 1) == 1)
        pthread_join(s->thread, NULL);
    while (s->conns)
        conn_free(s->conns);
    evconnlistener_free(s->listener);
    event_free(s->stop_ev);
    event_base_free(s->base);
    close(s->stop_fds[0]);
    close(s->stop_fds[1]);
    free(s->recs);
    pthread_mutex_destroy(&s->mu);
    memset(s, 0, sizeof(*s));
}

static size_t shadow_count(struct shadow *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Waits (up to timeout_ms) until the shadow has recorded at least n requests. */
static bool shadow_wait(struct shadow *s, size_t n, int timeout_ms)
{
    int64_t end = it_now_ms() + timeout_ms;
    while (shadow_count(s) < n) {
        if (it_now_ms() > end)
            return false;
        it_sleep_ms(5);
    }
    return true;
}

/* ---- gateways ---------------------------------------------------------------------------- */

#define HEAD                                                                                       \
    "listen: [ { address: \"127.0.0.1:%d\" } ]\n"                                                  \
    "admin: { address: \"127.0.0.1:%d\" }\n"                                                       \
    "workers: 1\n"                                                                                 \
    "plugin_paths: [\"%s\"]\n"

struct gw {
    struct it_proc *proc, *origin;
    int port, admin;
};

/* A plugin directory of this test's own holding a copy of mirror.so. */
static const char *plugin_dir(void)
{
    static const char *dir;
    return dir ? dir : (dir = it_plugin_dir("plugins", plugin_so));
}

/* Starts an origin "o" and a gateway whose config is HEAD, then `rest` formatted with the
 * origin's port as its first argument (and a, b after it). */
static int gw_start(struct gw *g, const char *name, const char *rest, int a, int b)
{
    g->origin = it_origin_start("o");
    const char *dir = plugin_dir();
    if (!g->origin || !dir)
        return -1;
    g->port = it_free_port();
    g->admin = it_free_port();
    char file[64], text[8192];
    snprintf(file, sizeof(file), "%s.yaml", name);
    const char *conf = it_temp_path(file);
    int n = snprintf(text, sizeof(text), HEAD, g->port, g->admin, dir);
    snprintf(text + n, sizeof(text) - (size_t)n, rest, g->origin->port, a, b);
    if (it_write_file(conf, "%s", text) != 0)
        return -1;
    g->proc = it_lintel_start(conf, g->port);
    return g->proc ? 0 : -1;
}

static long long metric(const struct gw *g, const char *instance, const char *name)
{
    return it_plugin_metric(g->admin, "mirror", instance, name);
}

static long long metric_wait(const struct gw *g, const char *instance, const char *name,
                             long long want, int timeout_ms)
{
    return it_plugin_metric_wait(g->admin, "mirror", instance, name, want, timeout_ms);
}

/* The sampling rule of docs/plugins/mirror.md, written again here. */
static bool doc_sampled(const char *id, double sample)
{
    uint64_t h = it_fnv1a(IT_FNV_INIT, id, strlen(id));
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h % 1000000 < (uint64_t)(sample * 1000000 + 0.5);
}

/* Sends one request on h; returns its status (-1 on a transport error). */
static int send_req(struct it_http *h, const char *method, const char *url, const char *rid,
                    const void *body, size_t body_len, bool chunked)
{
    char hdr[128];
    snprintf(hdr, sizeof(hdr), "X-Request-Id: %s", rid);
    const char *hdrs[] = {hdr, "Content-Type: application/octet-stream", NULL};
    struct it_http_req q = {.method = method,
                            .url = url,
                            .headers = hdrs,
                            .body = body,
                            .body_len = body_len,
                            .chunked = chunked,
                            .discard = true,
                            .timeout_ms = 10000};
    struct it_response r;
    if (it_http_do(h, &q, &r) != 0)
        return -1;
    int status = r.status;
    it_response_free(&r);
    return status;
}

/* ---- tests ------------------------------------------------------------------------------- */

#define NREQ 200

static void test_sampled_share_with_bodies(void)
{
    struct shadow sh;
    struct gw g;
    CU_ASSERT_FATAL(shadow_start(&sh, 0, "X-Mirror") == 0);
    static const char routes[] = "upstreams:\n"
                                 "  o: { targets: [ { address: \"127.0.0.1:%d\" } ] }\n"
                                 "routes:\n"
                                 "  - name: m\n"
                                 "    upstream: o\n"
                                 "    plugins:\n"
                                 "      - name: mirror\n"
                                 "        config: { to: { url: \"http://127.0.0.1:%d\" }, sample: "
                                 "0.5, body: { max: 4k } }\n";
    CU_ASSERT_FATAL(gw_start(&g, "sampled", routes, sh.port, 0) == 0);

    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    static unsigned char body[5000];
    it_pattern(body, 0, sizeof(body));
    bool want[NREQ];
    size_t nwant = 0;
    char rid[64], path[64];
    for (int i = 0; i < NREQ; i++) {
        snprintf(rid, sizeof(rid), "it-mirror-%d", i);
        snprintf(path, sizeof(path), "/items/%d?n=%d", i, i);
        want[i] = doc_sampled(rid, 0.5);
        nwant += want[i];
        size_t len = (size_t)(i * 37) % 4000 + 1;
        CU_ASSERT_EQUAL(send_req(&h, "POST", it_url(g.port, path), rid, body, len, false), 200);
    }
    /* Sampled ids whose body cannot be copied: over max, and chunked. Both still reach the
     * origin untouched. */
    int big = 0, chunked = 0;
    for (int k = 0; !big || !chunked; k++) {
        snprintf(rid, sizeof(rid), "it-mirror-skip-%d", k);
        if (!doc_sampled(rid, 0.5))
            continue;
        if (!big) {
            big = 1;
            CU_ASSERT_EQUAL(send_req(&h, "POST", it_url(g.port, "/big"), rid, body, 5000, false),
                            200);
        } else {
            chunked = 1;
            CU_ASSERT_EQUAL(send_req(&h, "POST", it_url(g.port, "/chunked"), rid, body, 100, true),
                            200);
        }
    }
    it_http_free(&h);

    fprintf(stderr, "\n  sample 0.5: %zu of %d request ids are sampled\n", nwant, NREQ);
    CU_ASSERT(nwant >= 70 && nwant <= 130);
    CU_ASSERT(shadow_wait(&sh, nwant, 5000));
    CU_ASSERT_EQUAL(metric(&g, "mirror", "sent"), (long long)nwant); /* no copy more */
    CU_ASSERT_EQUAL(metric(&g, "mirror", "skipped_body"), 2);
    CU_ASSERT_EQUAL(metric(&g, "mirror", "failed"), 0);
    CU_ASSERT_EQUAL(shadow_count(&sh), nwant);

    /* Each copy is one sampled request, with its body, path, method and the mark. */
    bool seen[NREQ] = {false};
    pthread_mutex_lock(&sh.mu);
    for (size_t k = 0; k < sh.n; k++) {
        const struct rec *r = &sh.recs[k];
        int i = -1;
        if (sscanf(r->rid, "it-mirror-%d", &i) != 1 || i < 0 || i >= NREQ || !want[i] || seen[i]) {
            fprintf(stderr, "  unexpected copy: %s %s (id %s)\n", r->method, r->path, r->rid);
            CU_FAIL("a copy that should not exist");
            continue;
        }
        seen[i] = true;
        size_t len = (size_t)(i * 37) % 4000 + 1;
        snprintf(path, sizeof(path), "/items/%d?n=%d", i, i);
        CU_ASSERT_STRING_EQUAL(r->method, "POST");
        CU_ASSERT_STRING_EQUAL(r->path, path);
        CU_ASSERT_STRING_EQUAL(r->mark, "1");
        CU_ASSERT_STRING_EQUAL(r->xff, "127.0.0.1");
        CU_ASSERT_EQUAL(r->body_len, len);
        CU_ASSERT_EQUAL(r->body_fnv, it_pattern_fnv(len));
    }
    pthread_mutex_unlock(&sh.mu);
    shadow_stop(&sh);
}

static void test_upstream_target(void)
{
    struct shadow sh;
    struct gw g;
    CU_ASSERT_FATAL(shadow_start(&sh, 0, "X-Shadow") == 0);
    static const char routes[] =
        "upstreams:\n"
        "  o: { targets: [ { address: \"127.0.0.1:%d\" } ] }\n"
        "  shadow: { targets: [ { address: \"127.0.0.1:%d\" } ] }\n"
        "routes:\n"
        "  - name: u\n"
        "    upstream: o\n"
        "    plugins:\n"
        "      - name: mirror\n"
        "        config:\n"
        "          to: { upstream: shadow }\n"
        "          path: { prefix: /copy, replace: { from: /api, to: /v2 } }\n"
        "          header: { name: X-Shadow, value: test }\n";
    CU_ASSERT_FATAL(gw_start(&g, "upstream", routes, sh.port, 0) == 0);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    CU_ASSERT_EQUAL(send_req(&h, "GET", it_url(g.port, "/api/users?id=1"), "u-1", NULL, 0, false),
                    200);
    CU_ASSERT_EQUAL(send_req(&h, "PUT", it_url(g.port, "/other"), "u-2", "abc", 3, false), 200);
    it_http_free(&h);
    CU_ASSERT(shadow_wait(&sh, 2, 5000));
    CU_ASSERT_EQUAL(metric(&g, "mirror", "sent"), 2);
    pthread_mutex_lock(&sh.mu);
    for (size_t k = 0; k < sh.n; k++) {
        const struct rec *r = &sh.recs[k];
        bool first = strcmp(r->rid, "u-1") == 0;
        CU_ASSERT_STRING_EQUAL(r->path, first ? "/copy/v2/users?id=1" : "/copy/other");
        CU_ASSERT_STRING_EQUAL(r->method, first ? "GET" : "PUT");
        CU_ASSERT_STRING_EQUAL(r->mark, "test");
        CU_ASSERT_EQUAL(r->body_len, first ? 0 : 3);
    }
    pthread_mutex_unlock(&sh.mu);
    shadow_stop(&sh);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Microseconds of one keepalive GET. */
static int64_t timed_get(struct it_http *h, const char *url, const char *rid, int *status)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    *status = send_req(h, "GET", url, rid, NULL, 0, false);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
}

static void test_hanging_or_down_shadow_adds_no_latency(void)
{
    struct shadow sh;
    struct gw g[3];
    CU_ASSERT_FATAL(shadow_start(&sh, 1, "X-Mirror") == 0); /* reads copies, never answers */
    int closed = it_free_port();                            /* nobody listens there */
    /* Three gateways of one worker each, so that whatever a copy costs its worker shows on
     * that gateway's requests only: none, copies to the hanging shadow, copies to the closed
     * port. */
    static const char head[] = "upstreams:\n"
                               "  o: { targets: [ { address: \"127.0.0.1:%d\" } ] }\n"
                               "routes:\n"
                               "  - name: r\n"
                               "    upstream: o\n";
    static const char mirror[] = "    plugins:\n"
                                 "      - name: mirror\n"
                                 "        instance: %s\n"
                                 "        config: { to: { url: \"http://127.0.0.1:%%d\" }, "
                                 "timeout: 20s, max_inflight: 1000 }\n";
    char routes[3][1024];
    snprintf(routes[0], sizeof(routes[0]), "%s", head);
    snprintf(routes[1], sizeof(routes[1]), "%s", head);
    snprintf(routes[1] + strlen(head), sizeof(routes[1]) - strlen(head), mirror, "hang");
    snprintf(routes[2], sizeof(routes[2]), "%s", head);
    snprintf(routes[2] + strlen(head), sizeof(routes[2]) - strlen(head), mirror, "down");
    CU_ASSERT_FATAL(gw_start(&g[0], "plain", routes[0], 0, 0) == 0);
    CU_ASSERT_FATAL(gw_start(&g[1], "hang", routes[1], sh.port, 0) == 0);
    CU_ASSERT_FATAL(gw_start(&g[2], "down", routes[2], closed, 0) == 0);

    /* A p99 is at the mercy of whatever else the machine runs: a round that misses the bound
     * is measured again (three rounds at most). A mirror that made requests wait on its shadow
     * would miss it every time, by its 20 s timeout or a connect. */
    long long rounds = 0;
    bool ok = false;
    char rid[64];
    int bad = 0;
    for (int round = 0; round < 3 && !ok; round++, rounds++) {
        static const char *const names[] = {"plain", "hang", "down"};
        static int64_t us[3][NREQ];
        struct it_http h[3];
        char url[3][128];
        for (int k = 0; k < 3; k++) {
            CU_ASSERT_FATAL(it_http_init(&h[k]) == 0);
            snprintf(url[k], sizeof(url[k]), "http://127.0.0.1:%d/%s", g[k].port, names[k]);
            int st;
            snprintf(rid, sizeof(rid), "warm-%d-%d", round, k);
            timed_get(&h[k], url[k], rid, &st); /* connect first: only requests are measured */
            bad += st != 200;
        }
        for (int i = 0; i < NREQ; i++) {
            for (int k = 0; k < 3; k++) { /* interleaved: load and noise hit the three alike */
                int st;
                snprintf(rid, sizeof(rid), "lat-%s-%d-%d", names[k], round, i);
                us[k][i] = timed_get(&h[k], url[k], rid, &st);
                bad += st != 200;
            }
        }
        int64_t p50[3], p99[3];
        for (int k = 0; k < 3; k++) {
            it_http_free(&h[k]);
            qsort(us[k], NREQ, sizeof(us[k][0]), cmp_i64);
            p50[k] = us[k][NREQ / 2];
            p99[k] = us[k][(NREQ * 99 + 99) / 100 - 1];
        }
        fprintf(stderr,
                "\n  round %d: %d GETs per gateway (one worker each), microseconds:\n"
                "    no mirror:            p50 %6lld  p99 %6lld  max %6lld\n"
                "    mirror, hanging:      p50 %6lld  p99 %6lld  max %6lld\n"
                "    mirror, closed port:  p50 %6lld  p99 %6lld  max %6lld\n",
                round + 1, NREQ, (long long)p50[0], (long long)p99[0], (long long)us[0][NREQ - 1],
                (long long)p50[1], (long long)p99[1], (long long)us[1][NREQ - 1], (long long)p50[2],
                (long long)p99[2], (long long)us[2][NREQ - 1]);
        ok = p99[1] < p99[0] + 20000 && p99[2] < p99[0] + 20000;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(ok);
    /* The copies were made and really are hanging, or really failed. */
    long long copies = rounds * (NREQ + 1);
    CU_ASSERT(shadow_wait(&sh, (size_t)copies, 5000));
    long long hang_sent = metric(&g[1], "hang", "sent");
    long long hang_failed = metric(&g[1], "hang", "failed");
    long long down_failed = metric_wait(&g[2], "down", "failed", copies, 5000);
    fprintf(stderr, "  hanging: sent %lld, failed %lld, the shadow got %zu; closed: failed %lld\n",
            hang_sent, hang_failed, shadow_count(&sh), down_failed);
    CU_ASSERT_EQUAL(hang_sent, copies);
    CU_ASSERT_EQUAL(hang_failed, 0); /* all still hanging (20 s timeout) */
    CU_ASSERT_EQUAL(down_failed, copies);
    shadow_stop(&sh);
}

static void test_cap_drops_counted(void)
{
    struct shadow sh;
    struct gw g;
    CU_ASSERT_FATAL(shadow_start(&sh, 1, "X-Mirror") == 0);
    static const char routes[] =
        "upstreams:\n"
        "  o: { targets: [ { address: \"127.0.0.1:%d\" } ] }\n"
        "routes:\n"
        "  - name: cap\n"
        "    upstream: o\n"
        "    plugins:\n"
        "      - name: mirror\n"
        "        instance: capped\n"
        "        config: { to: { url: \"http://127.0.0.1:%d\" }, max_inflight: 2, timeout: 2s }\n";
    CU_ASSERT_FATAL(gw_start(&g, "cap", routes, sh.port, 0) == 0);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    char rid[32];
    int64_t t0 = it_now_ms();
    for (int i = 0; i < 20; i++) {
        snprintf(rid, sizeof(rid), "cap-%d", i);
        CU_ASSERT_EQUAL(send_req(&h, "GET", it_url(g.port, "/x"), rid, NULL, 0, false), 200);
    }
    int64_t burst_ms = it_now_ms() - t0;
    CU_ASSERT(shadow_wait(&sh, 2, 5000));
    long long sent = metric(&g, "capped", "sent"), dropped = metric(&g, "capped", "dropped");
    fprintf(stderr, "\n  max_inflight 2, 20 requests in %lld ms: sent %lld, dropped %lld\n",
            (long long)burst_ms, sent, dropped);
    if (burst_ms < 1500) { /* the two copies cannot have timed out yet */
        CU_ASSERT_EQUAL(sent, 2);
        CU_ASSERT_EQUAL(dropped, 18);
    }
    CU_ASSERT(dropped > 0);
    /* The hanging copies time out (2 s): room again. */
    CU_ASSERT_EQUAL(metric_wait(&g, "capped", "failed", sent, 5000), sent);
    CU_ASSERT_EQUAL(send_req(&h, "GET", it_url(g.port, "/y"), "cap-after", NULL, 0, false), 200);
    CU_ASSERT_EQUAL(metric(&g, "capped", "sent"), sent + 1);
    CU_ASSERT_EQUAL(metric(&g, "capped", "dropped"), dropped);
    it_http_free(&h);
    /* A clean stop with a copy still hanging (a sanitizer build checks for leaks there). */
    CU_ASSERT_FATAL(it_proc_signal(g.proc, SIGTERM) == 0);
    CU_ASSERT_EQUAL(it_proc_wait(g.proc, 20000), 0);
    shadow_stop(&sh);
}

/* The page's complete example (its first ```yaml block that starts with "listen:") passes
 * lintel -t once its plugin path points at this test's copy of the plugin. */
static void test_docs_example(void)
{
    CU_ASSERT_EQUAL(it_doc_check("docs/plugins/mirror.md", plugin_dir()), 0);
}

static void test_config_error(void)
{
    const char *dir = plugin_dir();
    const char *conf = it_temp_path("bad.yaml");
    /* A bad value, and an upstream the configuration lacks: each named with its place. */
    static const struct {
        const char *to, *sample, *want;
    } cases[] = {
        {"shadow", "2",
         "13:19: routes[0].plugins[0].config.sample: plugin mirror 1.0.0: must be a number from "
         "0 to 1"},
        {"shadw", "0.5",
         "12:27: routes[0].plugins[0].config.to.upstream: plugin mirror 1.0.0: no upstream named "
         "\"shadw\" in this configuration"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CU_ASSERT_FATAL(dir &&
                        it_write_file(conf,
                                      "listen: [ { address: \"127.0.0.1:%d\" } ]\n"
                                      "plugin_paths: [\"%s\"]\n"
                                      "upstreams:\n"
                                      "  o: { targets: [ { address: \"127.0.0.1:9\" } ] }\n"
                                      "  shadow: { targets: [ { address: \"127.0.0.1:9\" } ] }\n"
                                      "routes:\n"
                                      "  - name: r\n"
                                      "    upstream: o\n"
                                      "    plugins:\n"
                                      "      - name: mirror\n"
                                      "        config:\n"
                                      "          to: { upstream: %s }\n"
                                      "          sample: %s\n",
                                      it_free_port(), dir, cases[i].to, cases[i].sample) == 0);
        CU_ASSERT(it_lintel_refuses(conf, "%s:%s", conf, cases[i].want));
    }
}

static CU_TestInfo tests[] = {
    {"sample 0.5: the shadow gets exactly the sampled requests, with bodies and X-Mirror",
     test_sampled_share_with_bodies},
    {"to: upstream, path prefix and replace, custom mark header", test_upstream_target},
    {"a hanging or closed shadow adds no latency (p99 compared)",
     test_hanging_or_down_shadow_adds_no_latency},
    {"max_inflight 2 with a hanging shadow: drops counted in /-/metrics", test_cap_drops_counted},
    {"docs/plugins/mirror.md's example passes lintel -t", test_docs_example},
    {"lintel -t names the bad key", test_config_error},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"mirror", NULL, it_suite_cleanup, it_test_setup, it_test_teardown, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    it_build_path(plugin_so, sizeof(plugin_so), "plugins/mirror.so");
    return it_main(suites, 240);
}
