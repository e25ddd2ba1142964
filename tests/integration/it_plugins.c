/* Plugin host through a running gateway: phase order and priority, two instances of one
 * plugin, global plugins and disable_plugins, RESPOND and ERROR, PAUSE/resume, body buffering,
 * hot swap of plugin versions under load, plugin version canaries, and reloads that must be
 * refused while the old configuration keeps serving. The plugin is tests/host-plugins/probe.c. */
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static char probe_v1[PATH_MAX], probe_v2[PATH_MAX];


/* A fresh plugin directory holding the given probe build as tp-probe.so. */
static const char *plugin_dir(const char *name, const char *probe)
{
    const char *dir = it_temp_path(name);
    mkdir(dir, 0700);
    char dst[PATH_MAX];
    snprintf(dst, sizeof(dst), "%s/tp-probe.so", dir);
    return probe && it_install_file(probe, dst) != 0 ? NULL : dir;
}

#define HEAD                                                                                       \
    "listen: [ { address: \"127.0.0.1:%d\" } ]\n"                                                  \
    "admin: { address: \"127.0.0.1:%d\" }\n"                                                       \
    "workers: 2\n"                                                                                 \
    "plugin_paths: [\"%s\"]\n"                                                                     \
    "upstreams:\n"                                                                                 \
    "  o: { targets: [ { address: \"127.0.0.1:%d\" } ] }\n"

static const char chain_routes[] =
    "plugins:\n"
    "  - { name: tp-probe, instance: g, config: { tag: G } }\n"
    "routes:\n"
    "  - name: chain\n"
    "    match: { paths: [\"/chain\"] }\n"
    "    upstream: o\n"
    "    plugins:\n"
    "      - { name: tp-probe, instance: a, config: { tag: A } }\n"
    "      - { name: tp-probe, instance: b, priority: 500, config: { tag: B, pause_ms: 20 } }\n"
    "  - name: deny\n"
    "    match: { paths: [\"/deny\"] }\n"
    "    upstream: o\n"
    "    plugins: [ { name: tp-probe, instance: d, config: { tag: D, respond: { phase: access, "
    "status: 403, body: denied } } } ]\n"
    "  - name: boom\n"
    "    match: { paths: [\"/boom\"] }\n"
    "    upstream: o\n"
    "    disable_plugins: [g]\n"
    "    plugins: [ { name: tp-probe, instance: e, config: { tag: E, error_in: access } } ]\n"
    "  - name: body\n"
    "    match: { paths: [\"/body\"] }\n"
    "    upstream: o\n"
    "    plugins: [ { name: tp-probe, instance: rb, config: { tag: R, read_body: 1k } } ]\n";

struct env {
    struct it_proc *origin, *gw;
    int port, admin;
    const char *conf, *dir;
};

static int start(struct env *e, const char *dir, const char *routes)
{
    e->origin = it_origin_start("o");
    if (!e->origin)
        return -1;
    e->port = it_free_port();
    e->admin = it_free_port();
    e->dir = dir;
    e->conf = it_temp_path("plugins.yaml");
    if (it_write_file(e->conf, HEAD "%s", e->port, e->admin, dir, e->origin->port, routes) != 0)
        return -1;
    e->gw = it_lintel_start(e->conf, e->port);
    return e->gw ? 0 : -1;
}

static long origin_requests(struct it_http *h, const struct env *e)
{
    struct it_response r;
    if (it_http_get(h, it_url(e->origin->port, "/stats"), NULL, &r) != 0)
        return -1;
    long n = (long)it_json_int(r.body.data, "requests");
    it_response_free(&r);
    return n;
}

static void test_phase_order(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e, plugin_dir("p-order", probe_v1), chain_routes) == 0);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    struct it_response r;
    CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/chain"), NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    /* Priority 500 (B) first, then the global G before the route's A (both 100); B paused in
     * ACCESS and a timer resumed it before G ran. */
    CU_ASSERT(it_json_eq(r.body.data, "headers.x-trace",
                         "B:rewrite,G:rewrite,A:rewrite,B:access,B:resumed,G:access,A:access,"
                         "B:balance,G:balance,A:balance"));
    const char *resp = it_response_header(&r, "X-Trace-Resp");
    CU_ASSERT(resp &&
              strcmp(resp, "B:response_headers,G:response_headers,A:response_headers") == 0);
    it_response_free(&r);

    /* No route: the global plugin still sees the 404. */
    CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/nothing"), NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 404);
    resp = it_response_header(&r, "X-Trace-Resp");
    CU_ASSERT(resp && strcmp(resp, "G:response_headers") == 0);
    it_response_free(&r);
    it_http_free(&h);
}

static void test_respond_and_error(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e, plugin_dir("p-respond", probe_v1), chain_routes) == 0);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    long before = origin_requests(&h, &e);
    struct it_response r;
    CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/deny"), NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 403);
    CU_ASSERT_STRING_EQUAL(r.body.data, "denied");
    const char *resp = it_response_header(&r, "X-Trace-Resp");
    CU_ASSERT(resp && strcmp(resp, "G:response_headers,D:response_headers") == 0);
    it_response_free(&r);

    /* ERROR: 500 naming the plugin and instance, for this request only; disable_plugins [g]
     * keeps the global instance out of this route. */
    CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/boom"), NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 500);
    CU_ASSERT(it_json_eq(r.body.data, "error", "plugin tp-probe/e failed"));
    resp = it_response_header(&r, "X-Trace-Resp");
    CU_ASSERT(resp && strcmp(resp, "E:response_headers") == 0);
    it_response_free(&r);
    /* Neither reached the upstream (the /stats call itself is the only new request). */
    CU_ASSERT_EQUAL(origin_requests(&h, &e), before + 1);

    CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/chain"), NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    it_response_free(&r);
    it_http_free(&h);
}

static void test_body_buffering(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e, plugin_dir("p-body", probe_v1), chain_routes) == 0);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    struct it_response r;
    struct it_http_req q = {.url = it_url(e.port, "/body"), .gen_len = 700, .chunked = true};
    CU_ASSERT_FATAL(it_http_do(&h, &q, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_json_eq(r.body.data, "headers.x-probe-body-len", "700"));
    CU_ASSERT(it_json_eq(r.body.data, "headers.content-length", "700")); /* re-framed */
    CU_ASSERT_EQUAL(it_json_int(r.body.data, "body_bytes"), 700);
    char fnv[17];
    it_fnv_hex(it_pattern_fnv(700), fnv);
    CU_ASSERT(it_json_eq(r.body.data, "body_fnv", fnv));
    it_response_free(&r);

    /* No body at all: buffering completes at once with an empty body. */
    CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/body"), NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_json_eq(r.body.data, "headers.x-probe-body-len", "0"));
    it_response_free(&r);

    q.gen_len = 5000; /* over the plugin's 1k cap */
    CU_ASSERT_FATAL(it_http_do(&h, &q, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 413);
    it_response_free(&r);
    it_http_free(&h);
}

static void test_replace_in_response_headers(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e, plugin_dir("p-replace", probe_v1),
                          "routes:\n"
                          "  - name: chain\n"
                          "    match: { paths: [\"/chain\"] }\n"
                          "    upstream: o\n"
                          "    plugins:\n"
                          "      - { name: tp-probe, instance: f, priority: 500, config: { tag: F, "
                          "respond: { phase: response_headers, status: 503, body: replaced } } }\n"
                          "      - { name: tp-probe, instance: c, priority: 100, config: { tag: C } }\n") ==
                    0);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    struct it_response r;
    CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/chain"), NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT_STRING_EQUAL(r.body.data, "replaced");
    /* F's header survived its own respond(), and C still ran on the new response. */
    const char *t = it_response_header(&r, "X-Trace-Resp");
    CU_ASSERT(t && strcmp(t, "F:response_headers,C:response_headers") == 0);
    CU_ASSERT_PTR_NULL(it_response_header(&r, "X-Origin")); /* the upstream's headers are gone */
    it_response_free(&r);
    it_http_free(&h);
}

/* ---- ABI 1.1: resend, upstream_failure, upstream_healthy, metric_set, upstream:// URLs ----- */

static const char abi11_routes[] =
    "  dead: { targets: [ { address: \"127.0.0.1:%d\" } ] }\n"
    "routes:\n"
    "  - name: r503\n"
    "    match: { paths: [\"/status/503\"] }\n"
    "    upstream: o\n"
    "    plugins: [ { name: tp-probe, instance: rs, config: { tag: S, healthy_of: o, resend: { on: "
    "503, path: /again } } } ]\n"
    "  - name: rbody\n"
    "    match: { paths: [\"/status/502\"] }\n"
    "    upstream: o\n"
    "    plugins: [ { name: tp-probe, instance: rb, config: { tag: B, read_body: 4k, resend: { "
    "on: 502, path: /again } } } ]\n"
    "  - name: dead\n"
    "    match: { paths: [\"/dead\"] }\n"
    "    upstream: dead\n"
    "    plugins: [ { name: tp-probe, instance: rd, config: { tag: D, resend: { on: 599, upstream: "
    "o } } } ]\n"
    "  - name: deadonly\n"
    "    match: { paths: [\"/deadonly\"] }\n"
    "    upstream: dead\n"
    "    plugins: [ { name: tp-probe, instance: dd, config: { tag: X, healthy_of: nope } } ]\n"
    "  - name: call\n"
    "    match: { paths: [\"/call\"] }\n"
    "    upstream: o\n"
    "    plugins: [ { name: tp-probe, instance: uc, config: { tag: U, http: "
    "\"upstream://o/status/204\" } } ]\n";

static void test_abi_1_1(void)
{
    struct env e;
    int dead = it_free_port(); /* nothing listens there: connect refused */
    char routes[sizeof(abi11_routes) + 16];
    snprintf(routes, sizeof(routes), abi11_routes, dead);
    CU_ASSERT_FATAL(start(&e, plugin_dir("p-abi11", probe_v1), routes) == 0);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    struct it_response r;

    /* A 503 from the upstream is dropped and the request goes again to another path. */
    long before = origin_requests(&h, &e);
    CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/status/503"), NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_json_eq(r.body.data, "target", "/again"));
    const char *v = it_response_header(&r, "X-Probe-Resent");
    CU_ASSERT(v && strcmp(v, "1") == 0);
    v = it_response_header(&r, "X-Probe-Healthy");
    CU_ASSERT(v && strcmp(v, "1") == 0);
    v = it_response_header(&r, "X-Probe-Instance");
    CU_ASSERT(v && strcmp(v, "rs") == 0);
    v = it_response_header(&r, "X-Probe-Now");
    CU_ASSERT(v && llabs(atoll(v) - (long long)time(NULL) * 1000) < 60000);
    v = it_response_header(&r, "X-Probe-Headers"); /* the origin's own headers, at least */
    CU_ASSERT(v && atoi(v) >= 3);
    CU_ASSERT_PTR_NULL(it_response_header(&r, "X-Probe-Failure"));
    it_response_free(&r);
    CU_ASSERT_EQUAL(origin_requests(&h, &e), before + 3); /* 503, /again, and this /stats */

    /* A body the plugin buffered goes again whole; one it did not buffer cannot. */
    struct it_http_req q = {.url = it_url(e.port, "/status/502"), .gen_len = 700};
    CU_ASSERT_FATAL(it_http_do(&h, &q, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_json_eq(r.body.data, "target", "/again"));
    CU_ASSERT_EQUAL(it_json_int(r.body.data, "body_bytes"), 700);
    char fnv[17];
    it_fnv_hex(it_pattern_fnv(700), fnv);
    CU_ASSERT(it_json_eq(r.body.data, "body_fnv", fnv));
    it_response_free(&r);
    q.url = it_url(e.port, "/status/503");
    CU_ASSERT_FATAL(it_http_do(&h, &q, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 503);
    v = it_response_header(&r, "X-Probe-Resent");
    CU_ASSERT(v && strcmp(v, "refused") == 0);
    it_response_free(&r);

    /* A dead upstream: the gateway's 502 says why (CONNECT), and a resend to another upstream
     * serves the request. */
    CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/deadonly"), NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 502);
    v = it_response_header(&r, "X-Probe-Failure");
    CU_ASSERT(v && atoi(v) == 1); /* LINTEL_UPSTREAM_CONNECT */
    v = it_response_header(&r, "X-Probe-Healthy");
    CU_ASSERT(v && strcmp(v, "-1") == 0); /* no such upstream */
    it_response_free(&r);
    CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/dead"), NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_json_eq(r.body.data, "origin", "o"));
    CU_ASSERT(it_json_eq(r.body.data, "target", "/dead"));
    v = it_response_header(&r, "X-Probe-Resent");
    CU_ASSERT(v && strcmp(v, "1") == 0);
    it_response_free(&r);

    /* upstream://o/... reaches a target of upstream o. */
    CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/call"), NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_json_eq(r.body.data, "headers.x-probe-http", "204"));
    it_response_free(&r);

    /* metric_set shows as a gauge. */
    CU_ASSERT_FATAL(it_http_get(&h, it_url(e.admin, "/-/metrics"), NULL, &r) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body.data, "lintel_plugin_gauge{plugin=\"tp-probe\","
                                               "instance=\"uc\",name=\"last_status\"} 200"));
    it_response_free(&r);
    it_http_free(&h);
}

/* ---- hot swap under load ------------------------------------------------------------------ */

struct loop {
    int port;
    atomic_bool stop;
    atomic_long ok;
    long failed, v1, v2;
};

static void *client_loop(void *arg)
{
    struct loop *l = arg;
    struct it_http h;
    if (it_http_init(&h) != 0)
        return NULL;
    for (int i = 0; i < 100000 && !atomic_load(&l->stop); i++) {
        struct it_response r;
        char url[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/chain", l->port);
        struct it_http_req q = {.url = url, .timeout_ms = 5000};
        if (it_http_do(&h, &q, &r) != 0) {
            l->failed++;
            continue;
        }
        const char *v = it_response_header(&r, "X-Probe-Version");
        if (r.status != 200 || !v)
            l->failed++;
        else {
            l->ok++;
            l->v1 += strcmp(v, "1.0.0") == 0;
            l->v2 += strcmp(v, "2.0.0") == 0;
        }
        it_response_free(&r);
    }
    it_http_free(&h);
    return NULL;
}

static int admin_call(const struct env *e, const char *method, const char *path,
                      struct it_response *r)
{
    struct it_http h;
    if (it_http_init(&h) != 0)
        return -1;
    struct it_http_req q = {.method = method, .url = it_url(e->admin, path)};
    int rc = it_http_do(&h, &q, r);
    it_http_free(&h);
    return rc;
}

static const char *serving_version(const struct env *e)
{
    static char v[32];
    struct it_http h;
    struct it_response r;
    v[0] = '\0';
    if (it_http_init(&h) == 0 && it_http_get(&h, it_url(e->port, "/chain"), NULL, &r) == 0) {
        const char *x = it_response_header(&r, "X-Probe-Version");
        snprintf(v, sizeof(v), "%s", x ? x : "");
        it_response_free(&r);
    }
    it_http_free(&h);
    return v;
}

static void test_hot_swap_under_load(void)
{
    struct env e;
    const char *dir = plugin_dir("p-swap", probe_v1);
    CU_ASSERT_FATAL(dir && start(&e, dir, chain_routes) == 0);
    char so[PATH_MAX];
    snprintf(so, sizeof(so), "%s/tp-probe.so", dir);

    struct loop l = {.port = e.port};
    pthread_t t;
    CU_ASSERT_FATAL(pthread_create(&t, NULL, client_loop, &l) == 0);
    for (int i = 0; i < 10; i++) {
        const char *want = i % 2 == 0 ? "2.0.0" : "1.0.0";
        CU_ASSERT_FATAL(it_install_file(i % 2 == 0 ? probe_v2 : probe_v1, so) == 0);
        struct it_response r;
        CU_ASSERT_FATAL(admin_call(&e, "POST", "/-/reload", &r) == 0);
        CU_ASSERT_EQUAL(r.status, 200);
        it_response_free(&r);
        CU_ASSERT_STRING_EQUAL(serving_version(&e), want);
        /* Traffic runs through every swap: wait for 5 answers on this version (not a fixed
         * sleep, so a slow machine still gets its share). */
        long ok0 = atomic_load(&l.ok);
        int64_t until = it_now_ms() + 10000;
        while (atomic_load(&l.ok) < ok0 + 5 && it_now_ms() < until)
            it_sleep_ms(10);
        CU_ASSERT(atomic_load(&l.ok) >= ok0 + 5);
    }
    atomic_store(&l.stop, true);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(l.failed, 0);
    CU_ASSERT(atomic_load(&l.ok) >= 50);
    CU_ASSERT(l.v1 > 0 && l.v2 > 0);
    printf("\n    hot swap: %ld requests, %ld failed, %ld on 1.0.0, %ld on 2.0.0\n",
           atomic_load(&l.ok), l.failed, l.v1, l.v2);

    /* Old images are unloaded once no configuration and no request uses them (the reaper runs
     * every second). */
    usleep(2500 * 1000);
    struct it_response r;
    CU_ASSERT_FATAL(admin_call(&e, "GET", "/-/plugins", &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    size_t active = 0, draining = 0, unloaded = 0;
    for (const char *p = r.body.data; (p = strstr(p, "\"state\":\"")); p += 9) {
        active += strncmp(p + 9, "active", 6) == 0;
        draining += strncmp(p + 9, "draining", 8) == 0;
        unloaded += strncmp(p + 9, "unloaded", 8) == 0;
    }
    /* Identical content is the same image, so how many loads happened depends on when the
     * reaper ran; what must hold: one image serves, none is stuck, old ones were unloaded. */
    CU_ASSERT_EQUAL(active, 1);
    CU_ASSERT_EQUAL(draining, 0);
    CU_ASSERT(unloaded >= 1);
    it_response_free(&r);
}

static void test_version_canary(void)
{
    const char *dir = it_temp_path("p-canary");
    mkdir(dir, 0700);
    char dst[PATH_MAX];
    snprintf(dst, sizeof(dst), "%s/probe-1.so", dir);
    CU_ASSERT_FATAL(it_install_file(probe_v1, dst) == 0);
    snprintf(dst, sizeof(dst), "%s/probe-2.so", dir);
    CU_ASSERT_FATAL(it_install_file(probe_v2, dst) == 0);
    struct env e;
    CU_ASSERT_FATAL(start(&e, dir,
                          "routes:\n"
                          "  - name: chain\n"
                          "    match: { paths: [\"/chain\"] }\n"
                          "    upstream: o\n"
                          "    plugins:\n"
                          "      - name: tp-probe\n"
                          "        versions: { \"1.0.0\": 90, \"2.0.0\": 10 }\n"
                          "        sticky_on: { header: X-User }\n"
                          "        config: { tag: C }\n") == 0);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    long v2 = 0, n = 10000, unstable = 0;
    for (long i = 0; i < n; i++) {
        char user[64];
        snprintf(user, sizeof(user), "X-User: user-%ld", i % 2000);
        const char *hdrs[] = {user, NULL};
        struct it_response r;
        if (it_http_get(&h, it_url(e.port, "/chain"), hdrs, &r) != 0)
            break;
        const char *v = it_response_header(&r, "X-Probe-Version");
        bool is2 = v && strcmp(v, "2.0.0") == 0;
        v2 += is2;
        /* Sticky: the same user always gets the version its first request got. */
        static bool was2[2000];
        if (i < 2000) {
            was2[i] = is2;
        } else if (was2[i % 2000] != is2) {
            unstable++;
        }
        it_response_free(&r);
    }
    double share = (double)v2 / (double)n;
    printf("\n    canary: %.1f%% of %ld requests on 2.0.0, %ld unstable\n", share * 100, n,
           unstable);
    CU_ASSERT(share > 0.07 && share < 0.13);
    CU_ASSERT_EQUAL(unstable, 0);
    it_http_free(&h);
}

/* ---- outbound HTTP and shared counters ------------------------------------------------------ */

static void test_http_call_and_counter(void)
{
    const char *dir = plugin_dir("p-http", probe_v1);
    struct it_proc *side = it_origin_start("side");
    CU_ASSERT_FATAL(dir && side);
    char routes[1024];
    snprintf(routes, sizeof(routes),
             "routes:\n"
             "  - name: chain\n"
             "    match: { paths: [\"/chain\"] }\n"
             "    upstream: o\n"
             "    plugins:\n"
             "      - { name: tp-probe, instance: h, config: { tag: H, count: true, http: "
             "\"http://127.0.0.1:%d/status/204\" } }\n"
             "  - name: dead\n"
             "    match: { paths: [\"/dead\"] }\n"
             "    upstream: o\n"
             "    plugins: [ { name: tp-probe, instance: x, config: { tag: X, http: "
             "\"http://127.0.0.1:%d/\" } } ]\n",
             side->port, it_free_port());
    struct env e;
    CU_ASSERT_FATAL(start(&e, dir, routes) == 0);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    /* Two workers, one counter: every request gets the next number, whichever worker runs it. */
    bool in_order = true;
    for (int i = 1; i <= 40; i++) {
        struct it_http hh; /* a new connection each time, so both workers take part */
        struct it_response r;
        CU_ASSERT_FATAL(it_http_init(&hh) == 0);
        CU_ASSERT_FATAL(it_http_get(&hh, it_url(e.port, "/chain"), NULL, &r) == 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT(it_json_eq(r.body.data, "headers.x-probe-http", "204"));
        const char *c = it_response_header(&r, "X-Probe-Count");
        in_order = in_order && c && atoi(c) == i;
        it_response_free(&r);
        it_http_free(&hh);
    }
    CU_ASSERT(in_order);

    /* The counter lives in the host, keyed by plugin + instance: a version swap keeps it. */
    char so[PATH_MAX];
    snprintf(so, sizeof(so), "%s/tp-probe.so", dir);
    CU_ASSERT_FATAL(it_install_file(probe_v2, so) == 0);
    struct it_response r;
    CU_ASSERT_FATAL(admin_call(&e, "POST", "/-/reload", &r) == 0);
    it_response_free(&r);
    CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/chain"), NULL, &r) == 0);
    CU_ASSERT_STRING_EQUAL(it_response_header(&r, "X-Probe-Version"), "2.0.0");
    CU_ASSERT_STRING_EQUAL(it_response_header(&r, "X-Probe-Count"), "41");
    it_response_free(&r);

    /* A call to a closed port completes with an error, not a hang. */
    CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/dead"), NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    char v[128];
    CU_ASSERT(it_json_get(r.body.data, "headers.x-probe-http", v, sizeof(v)) == 0 &&
              strncmp(v, "error:", 6) == 0);
    it_response_free(&r);
    it_http_free(&h);
}

static void test_set_target(void)
{
    struct it_proc *b = it_origin_start("B");
    CU_ASSERT_FATAL(b != NULL);
    struct env e;
    e.origin = it_origin_start("o");
    CU_ASSERT_FATAL(e.origin != NULL);
    e.port = it_free_port();
    e.admin = it_free_port();
    e.dir = plugin_dir("p-target", probe_v1);
    e.conf = it_temp_path("target.yaml");
    CU_ASSERT_FATAL(it_write_file(e.conf,
                                  "listen: [ { address: \"127.0.0.1:%d\" } ]\n"
                                  "admin: { address: \"127.0.0.1:%d\" }\n"
                                  "workers: 2\n"
                                  "plugin_paths: [\"%s\"]\n"
                                  "upstreams:\n"
                                  "  two: { targets: [ { address: \"127.0.0.1:%d\" }, "
                                  "{ address: \"127.0.0.1:%d\" } ] }\n"
                                  "routes:\n"
                                  "  - name: pinned\n"
                                  "    match: { paths: [\"/chain\"] }\n"
                                  "    upstream: two\n"
                                  "    plugins: [ { name: tp-probe, config: { tag: T, target: "
                                  "\"127.0.0.1:%d\" } } ]\n",
                                  e.port, e.admin, e.dir, e.origin->port, b->port, b->port) == 0);
    CU_ASSERT_FATAL(it_lintel_start(e.conf, e.port) != NULL);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    int on_b = 0;
    for (int i = 0; i < 20; i++) {
        struct it_response r;
        CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/chain"), NULL, &r) == 0);
        on_b += it_json_eq(r.body.data, "origin", "B");
        it_response_free(&r);
    }
    CU_ASSERT_EQUAL(on_b, 20); /* round robin alone would send half to o */
    it_http_free(&h);
}

static void test_drain_timeout_after_reload(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e, plugin_dir("p-drain", probe_v1),
                          "timeouts: { drain: 1s }\n"
                          "routes:\n"
                          "  - name: slow\n"
                          "    match: { paths: [\"/slow\"] }\n"
                          "    upstream: o\n"
                          "    plugins: [ { name: tp-probe, config: { tag: S, pause_ms: 8000 } } ]\n") ==
                    0);
    struct it_conn c;
    CU_ASSERT_FATAL(it_conn_open(&c, e.port) == 0);
    CU_ASSERT_FATAL(it_conn_send_str(&c, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    usleep(200 * 1000); /* the request is paused in the plugin now */
    struct it_response r;
    CU_ASSERT_FATAL(admin_call(&e, "POST", "/-/reload", &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    it_response_free(&r);
    /* Ended by the drain timeout (1 s after the reload, checked every second), not by the
     * plugin's 8 s pause. */
    CU_ASSERT_FATAL(it_conn_read_response(&c, false, 5000, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT(it_json_eq(r.body.data, "error", "request outlived the reload drain timeout"));
    it_response_free(&r);
    it_conn_close(&c);
    CU_ASSERT_FATAL(admin_call(&e, "GET", "/-/metrics", &r) == 0);
    CU_ASSERT(strstr(r.body.data, "lintel_plugin_events_total{plugin=\"lintel\",instance=\"reload\","
                                  "name=\"drain_expired\"} 1") != NULL);
    it_response_free(&r);
}

/* ---- refused reloads ----------------------------------------------------------------------- */

static void test_bad_reloads_keep_serving(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e, plugin_dir("p-bad", probe_v1), chain_routes) == 0);
    struct it_response r;
    const char *cases[][2] = {
        {"routes: [\n", "yaml"},
        {"routes:\n  - name: x\n    upstream: o\n    plugins: [ { name: nope } ]\n",
         "no plugin \\\"nope\\\""},
        {"routes:\n  - name: x\n    upstream: o\n    plugins: [ { name: tp-probe, config: { x: 1 } "
         "} ]\n",
         "routes[0].plugins[0].config: plugin tp-probe 1.0.0: tag is required"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CU_ASSERT_FATAL(it_write_file(e.conf, HEAD "%s", e.port, e.admin, e.dir, e.origin->port,
                                      cases[i][0]) == 0);
        CU_ASSERT_FATAL(admin_call(&e, "POST", "/-/reload", &r) == 0);
        CU_ASSERT_EQUAL(r.status, 400);
        if (!strstr(r.body.data, cases[i][1]))
            fprintf(stderr, "reload answer %s lacks %s\n", r.body.data, cases[i][1]);
        CU_ASSERT(strstr(r.body.data, cases[i][1]) != NULL);
        it_response_free(&r);
        CU_ASSERT_STRING_EQUAL(serving_version(&e), "1.0.0"); /* the old config still serves */
    }

    /* A plugin file refused by the ABI checks: the reload names the file and the reason. */
    char bad_dir[PATH_MAX], bin[PATH_MAX];
    snprintf(bin, sizeof(bin), "%s", LINTEL_BIN);
    snprintf(bad_dir, sizeof(bad_dir), "%s/tests/plugins/wrong-major", dirname(bin));
    CU_ASSERT_FATAL(it_write_file(e.conf,
                                  "listen: [ { address: \"127.0.0.1:%d\" } ]\n"
                                  "admin: { address: \"127.0.0.1:%d\" }\n"
                                  "workers: 2\n"
                                  "plugin_paths: [\"%s\", \"%s\"]\n"
                                  "upstreams:\n"
                                  "  o: { targets: [ { address: \"127.0.0.1:%d\" } ] }\n"
                                  "%s",
                                  e.port, e.admin, e.dir, bad_dir, e.origin->port, chain_routes) == 0);
    CU_ASSERT_FATAL(admin_call(&e, "POST", "/-/reload", &r) == 0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT(strstr(r.body.data, "wrong ABI major 2 (host 1)") != NULL);
    CU_ASSERT(strstr(r.body.data, "wrong-major/") != NULL);
    it_response_free(&r);
    CU_ASSERT_STRING_EQUAL(serving_version(&e), "1.0.0");
    {
        char *targv[] = {LINTEL_BIN, "-t", "-c", (char *)e.conf, NULL};
        struct it_buf terr = {0};
        CU_ASSERT_EQUAL(it_run(targv, 10000, NULL, &terr), 1);
        CU_ASSERT(terr.data && strstr(terr.data, "wrong ABI major 2 (host 1)"));
        it_buf_free(&terr);
    }
    CU_ASSERT_FATAL(it_write_file(e.conf, HEAD "%s", e.port, e.admin, e.dir, e.origin->port,
                                  "routes:\n  - name: x\n    upstream: o\n    plugins: [ { name: "
                                  "tp-probe, config: { x: 1 } } ]\n") == 0);

    /* lintel -t reports the plugin's own message with file, line, column and key path. */
    char *argv[] = {LINTEL_BIN, "-t", "-c", (char *)e.conf, NULL};
    struct it_buf out = {0}, err = {0};
    CU_ASSERT_EQUAL(it_run(argv, 10000, &out, &err), 1);
    char want[PATH_MAX + 128];
    snprintf(want, sizeof(want), "%s:10:", e.conf); /* the config map's line */
    CU_ASSERT(err.data && strstr(err.data, want));
    CU_ASSERT(err.data && strstr(err.data, "routes[0].plugins[0].config: plugin tp-probe 1.0.0: "
                                           "tag is required"));
    it_buf_free(&out);
    it_buf_free(&err);
}

static CU_TestInfo tests[] = {
    {"phase order, priority, global plugins, pause/resume", test_phase_order},
    {"RESPOND skips the upstream; ERROR is a 500 for that request", test_respond_and_error},
    {"a plugin buffers the request body (cap, 413)", test_body_buffering},
    {"a response replaced in RESPONSE_HEADERS keeps plugin headers, later plugins run",
     test_replace_in_response_headers},
    {"v1 -> v2 -> v1 swapped 10 times under load, no failed request", test_hot_swap_under_load},
    {"plugin version canary is weighted and sticky", test_version_canary},
    {"outbound HTTP from a handler; a shared counter across workers and versions",
     test_http_call_and_counter},
    {"refused reloads keep the old configuration serving", test_bad_reloads_keep_serving},
    {"a request outliving the reload drain timeout gets a 503", test_drain_timeout_after_reload},
    {"set_target pins the request to one target of its upstream", test_set_target},
    {"ABI 1.1: resend, upstream_failure, upstream_healthy, gauges, upstream:// calls",
     test_abi_1_1},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"plugins", NULL, it_suite_cleanup, it_test_setup, it_test_teardown, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    char bin[PATH_MAX];
    snprintf(bin, sizeof(bin), "%s", LINTEL_BIN);
    const char *dir = dirname(bin);
    snprintf(probe_v1, sizeof(probe_v1), "%s/tests/host-plugins/v1.0.0/tp-probe.so", dir);
    snprintf(probe_v2, sizeof(probe_v2), "%s/tests/host-plugins/v2.0.0/tp-probe.so", dir);
    return it_main(suites, 240);
}
