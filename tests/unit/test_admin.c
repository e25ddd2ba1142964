/* Tests for core/admin.c: the admin API on a free loopback port with a real configuration
 * snapshot and fake gateway operations. The event loop runs in the test thread; each request is
 * made by a second thread with blocking libcurl. Bodies are compared whole, so field names,
 * order and JSON escaping are all checked. */
#include <CUnit/Basic.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "arena.h"
#include "health.h"
#include "metrics.h"
#include "plugin_host.h"
#include "plugin_loader.h"
#include "snapshot.h"

#define BASE_YAML                                                                                  \
    "listen:\n"                                                                                    \
    "  - address: 127.0.0.1:8080\n"                                                                \
    "upstreams:\n"                                                                                 \
    "  api:\n"                                                                                     \
    "    targets:\n"                                                                               \
    "      - address: 127.0.0.1:9001\n"                                                            \
    "        weight: 3\n"                                                                          \
    "      - address: 127.0.0.1:9002\n"                                                            \
    "    balance: hash\n"                                                                          \
    "    hash: { on: header, name: X-User }\n"                                                     \
    "    keepalive: 8\n"                                                                           \
    "    retries: 2\n"                                                                             \
    "    timeouts: { connect: 250ms, read: 2s }\n"                                                 \
    "  web:\n"                                                                                     \
    "    targets:\n"                                                                               \
    "      - address: 127.0.0.1:9003\n"

static const char CONFIG_YAML[] =
    BASE_YAML "routes:\n"
              "  - name: 'users \"v1\"'\n"
              "    match:\n"
              "      hosts: [api.example.org, \"*.example.com\"]\n"
              "      paths: [/users, \"=/health\", \"~^/u/[0-9]+$\"]\n"
              "      methods: [POST, GET]\n"
              "      headers: { X-Tag: 'a\\b' }\n"
              "    upstream: api\n"
              "    strip_prefix: true\n"
              "  - name: w\xc3\xa9\x62\n"
              "    upstream: web\n";

static const char ROUTES_JSON[] =
    "[{\"name\":\"users \\\"v1\\\"\",\"hosts\":[\"api.example.org\",\"*.example.com\"],"
    "\"paths\":[\"/users\",\"=/health\",\"~^/u/[0-9]+$\"],\"methods\":[\"GET\",\"POST\"],"
    "\"headers\":{\"X-Tag\":\"a\\\\b\"},\"upstream\":\"api\",\"strip_prefix\":true,"
    "\"plugins\":[]},"
    "{\"name\":\"w\xc3\xa9\x62\",\"hosts\":[],\"paths\":[],\"methods\":[],\"headers\":{},"
    "\"upstream\":\"web\",\"strip_prefix\":false,\"plugins\":[]}]\n";

static const char UPSTREAMS_JSON[] =
    "{\"api\":{\"balance\":\"hash\",\"hash\":{\"on\":\"header\",\"name\":\"X-User\"},"
    "\"keepalive\":8,\"retries\":2,\"timeouts\":{\"connect_ms\":250,\"send_ms\":60000,"
    "\"read_ms\":2000,\"idle_ms\":60000},\"targets\":[{\"address\":\"127.0.0.1:9001\","
    "\"weight\":3,\"health\":\"up\"},{\"address\":\"127.0.0.1:9002\",\"weight\":1,"
    "\"health\":\"up\"}]},"
    "\"web\":{\"balance\":\"round_robin\",\"keepalive\":32,\"retries\":1,\"timeouts\":"
    "{\"connect_ms\":5000,\"send_ms\":60000,\"read_ms\":60000,\"idle_ms\":60000},"
    "\"targets\":[{\"address\":\"127.0.0.1:9003\",\"weight\":1,\"health\":\"up\"}]}}\n";

/* The second configuration POST /-/reload loads. */
static const char RELOADED_YAML[] = BASE_YAML "routes:\n"
                                              "  - name: only\n"
                                              "    upstream: web\n";

/* Refused: line 19, column 15 is the value of upstream. */
static const char BAD_YAML[] = BASE_YAML "routes:\n"
                                         "  - name: x\n"
                                         "    upstream: nope\n";

/* ---- the gateway the admin API looks at ---- */

struct fixture {
    struct event_base *base;
    struct event *tick;
    struct lintel_arena *arena;
    struct lintel_sockaddr addr;
    int port;
    struct lintel_snapshot *current;
    unsigned reloads_ok, reloads_failed;
    const char *next_yaml; /* what reload loads */
    const char *fail_with; /* when set, reload fails with this text without loading */
    struct lintel_metrics *metrics;
    struct lintel_registry *registry;
    struct lintel_admin *admin;
};

static struct fixture fx;

static struct lintel_snapshot *snapshot_of(const char *yaml, unsigned generation, char *err,
                                           size_t errlen)
{
    struct lintel_config *cfg;
    if (lintel_config_load_string("admin.yaml", yaml, strlen(yaml), &cfg, err, errlen) < 0)
        return NULL;
    return lintel_snapshot_new(cfg, generation, 1, err, errlen);
}

static struct lintel_snapshot *fake_current(void *ctx)
{
    struct fixture *f = ctx;
    lintel_snapshot_ref(f->current);
    return f->current;
}

static int fake_reload(void *ctx, char *err, size_t errlen)
{
    struct fixture *f = ctx;
    struct lintel_snapshot *s = NULL;
    if (f->fail_with)
        snprintf(err, errlen, "%s", f->fail_with);
    else
        s = snapshot_of(f->next_yaml, f->current->generation + 1, err, errlen);
    if (!s) {
        f->reloads_failed++;
        return -1;
    }
    lintel_snapshot_unref(f->current);
    f->current = s;
    f->reloads_ok++;
    return 0;
}

static unsigned fake_reloads_ok(void *ctx)
{
    return ((struct fixture *)ctx)->reloads_ok;
}

static unsigned fake_reloads_failed(void *ctx)
{
    return ((struct fixture *)ctx)->reloads_failed;
}

/* A loopback port nobody listens on right now. */
static int free_port(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(sin.sin_port);
}

static void on_tick(evutil_socket_t fd, short what, void *arg) {}

/* Loads yaml as generation 1 and starts the admin API on a free port. */
static int fixture_start(struct fixture *f, const char *yaml, struct lintel_registry *registry)
{
    char err[512], text[64];
    static struct lintel_host_services svc;

    *f = (struct fixture){.registry = registry, .port = free_port()};
    svc = (struct lintel_host_services){.registry = registry};
    lintel_host_services_set(&svc);
    f->base = event_base_new();
    f->arena = lintel_arena_new(1024);
    f->metrics = lintel_metrics_new(2);
    if (f->port < 0 || !f->base || !f->arena || !f->metrics)
        return -1;
    /* Wakes the loop often, so that it notices a request thread has finished. */
    struct timeval tv = {0, 5000};
    f->tick = event_new(f->base, -1, EV_PERSIST, on_tick, NULL);
    if (!f->tick || event_add(f->tick, &tv) < 0)
        return -1;
    snprintf(text, sizeof(text), "127.0.0.1:%d", f->port);
    if (lintel_sockaddr_parse(f->arena, text, &f->addr, err, sizeof(err)) < 0)
        return -1;
    f->current = snapshot_of(yaml, 1, err, sizeof(err));
    if (!f->current) {
        fprintf(stderr, "\n  fixture: %s\n", err);
        return -1;
    }
    struct lintel_admin_ops ops = {
        .ctx = f,
        .current = fake_current,
        .reload = fake_reload,
        .nworkers = 2,
        .start_time = (long)time(NULL) - 42,
        .reloads_ok = fake_reloads_ok,
        .reloads_failed = fake_reloads_failed,
        .registry = registry,
        .metrics = f->metrics,
    };
    f->admin = lintel_admin_start(f->base, &f->addr, &ops, err, sizeof(err));
    if (!f->admin)
        fprintf(stderr, "\n  fixture: %s\n", err);
    return f->admin ? 0 : -1;
}

static void fixture_stop(struct fixture *f)
{
    lintel_admin_free(f->admin);
    lintel_snapshot_unref(f->current);
    lintel_metrics_free(f->metrics);
    if (f->tick)
        event_free(f->tick);
    if (f->base)
        event_base_free(f->base);
    lintel_arena_free(f->arena);
    lintel_host_services_set(NULL);
    *f = (struct fixture){0};
}

/* ---- making requests ---- */

struct call {
    const char *method, *path;
    int port;
    long status;
    char *body;
    size_t len;
    char content_type[128], allow[64];
    atomic_bool done;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct call *c = arg;
    char *b = realloc(c->body, c->len + size * n + 1);
    if (!b)
        return 0;
    memcpy(b + c->len, data, size * n);
    c->len += size * n;
    b[c->len] = '\0';
    c->body = b;
    return size * n;
}

static void copy_header(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0)
        return;
    line += n;
    len -= n;
    while (len && (*line == ' '))
        line++, len--;
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    snprintf(out, cap, "%.*s", (int)len, line);
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct call *c = arg;
    copy_header(data, size * n, "Content-Type:", c->content_type, sizeof(c->content_type));
    copy_header(data, size * n, "Allow:", c->allow, sizeof(c->allow));
    return size * n;
}

static void *client_main(void *arg)
{
    struct call *c = arg;
    char url[256];
    CURL *h = curl_easy_init();
    if (h) {
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", c->port, c->path);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
        if (strcmp(c->method, "POST") == 0)
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        else if (strcmp(c->method, "HEAD") == 0)
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        else if (strcmp(c->method, "GET") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
        if (curl_easy_perform(h) == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
        curl_easy_cleanup(h);
    }
    atomic_store(&c->done, true);
    return NULL;
}

/* Makes one request to the fixture's admin API, running its event loop meanwhile. The caller
 * frees c->body. */
static void request(struct fixture *f, struct call *c, const char *method, const char *path)
{
    pthread_t th;
    *c = (struct call){.method = method, .path = path, .port = f->port};
    atomic_init(&c->done, false);
    if (pthread_create(&th, NULL, client_main, c) != 0) {
        CU_FAIL("pthread_create");
        return;
    }
    while (!atomic_load(&c->done))
        event_base_loop(f->base, EVLOOP_ONCE);
    pthread_join(th, NULL);
}

static bool contains(const char *body, const char *needle)
{
    return body && strstr(body, needle);
}

static void expect(const struct call *c, long status, const char *body)
{
    CU_ASSERT_EQUAL(c->status, status);
    if (!c->body || strcmp(c->body, body) != 0) {
        fprintf(stderr, "\n  %s %s\n  want: %s\n  got:  %s\n", c->method, c->path, body,
                c->body ? c->body : "(none)");
        CU_FAIL("wrong body");
    }
}

static void expect_json(const struct call *c, long status, const char *body)
{
    expect(c, status, body);
    CU_ASSERT_STRING_EQUAL(c->content_type, "application/json");
}

/* ---- tests on the main fixture ---- */

static int suite_init(void)
{
    return fixture_start(&fx, CONFIG_YAML, NULL);
}

static int suite_clean(void)
{
    fixture_stop(&fx);
    return 0;
}

static void test_status(void)
{
    struct call c;
    char want[256];
    request(&fx, &c, "GET", "/-/status");
    /* The request may cross a second boundary. */
    long uptime = 42;
    if (c.body && strstr(c.body, "\"uptime_s\":43,"))
        uptime = 43;
    snprintf(want, sizeof(want),
             "{\"version\":\"%s\",\"pid\":%ld,\"uptime_s\":%ld,\"workers\":2,\"generation\":1,"
             "\"reloads\":{\"ok\":0,\"failed\":0}}\n",
             LINTEL_VERSION, (long)getpid(), uptime);
    expect_json(&c, 200, want);
    free(c.body);

    request(&fx, &c, "GET", "/-/status?verbose=1"); /* a query string does not matter */
    CU_ASSERT_EQUAL(c.status, 200);
    free(c.body);
}

static void test_routes(void)
{
    struct call c;
    request(&fx, &c, "GET", "/-/routes");
    expect_json(&c, 200, ROUTES_JSON);
    free(c.body);
}

static void test_upstreams(void)
{
    struct call c;
    request(&fx, &c, "GET", "/-/upstreams");
    expect_json(&c, 200, UPSTREAMS_JSON);
    free(c.body);
}

/* With health checks: their settings per upstream, each target's state, and the metrics. */
static void test_upstreams_health(void)
{
    static const char yaml[] =
        "listen:\n"
        "  - address: 127.0.0.1:8080\n"
        "upstreams:\n"
        "  api:\n"
        "    targets: [ { address: 127.0.0.1:9001 }, { address: 127.0.0.1:9002 } ]\n"
        "    health:\n"
        "      active: { path: /healthz, interval: 1h, statuses: [200, 204] }\n"
        "      passive: { failures: 2, cooldown: 1h }\n"
        "routes: []\n";
    struct fixture f;
    struct call c;
    char err[256];
    CU_ASSERT_FATAL(fixture_start(&f, yaml, NULL) == 0);
    struct lintel_health *h = lintel_health_new(f.base);
    CU_ASSERT_FATAL(h && lintel_health_update(h, f.current, err, sizeof(err)) == 0);
    const struct lintel_upstream_conf *api = &f.current->cfg->upstreams[0];
    lintel_health_observe(f.current->health, api, 1, LINTEL_HEALTH_OK, 503);
    lintel_health_observe(f.current->health, api, 1, LINTEL_HEALTH_REFUSED, 0);

    request(&f, &c, "GET", "/-/upstreams");
    CU_ASSERT_EQUAL(c.status, 200);
    CU_ASSERT_TRUE(contains(
        c.body, "\"health\":{\"active\":{\"path\":\"/healthz\",\"interval_ms\":3600000,"
                "\"timeout_ms\":1000,\"healthy\":2,\"unhealthy\":3,\"statuses\":[200,204]},"
                "\"passive\":{\"failures\":2,\"cooldown_ms\":3600000,\"statuses\":[502,503,504]}},"
                "\"keepalive\":32,"));
    CU_ASSERT_TRUE(contains(c.body, "{\"address\":\"127.0.0.1:9001\",\"weight\":1,"
                                    "\"health\":\"up\",\"since\":\"20"));
    CU_ASSERT_TRUE(contains(c.body, "Z\",\"reason\":\"initial state\"}"));
    CU_ASSERT_TRUE(contains(c.body, "{\"address\":\"127.0.0.1:9002\",\"weight\":1,"
                                    "\"health\":\"down\",\"since\":\"20"));
    CU_ASSERT_TRUE(contains(c.body, "Z\",\"reason\":\"2 failed requests in a row, last: "
                                    "connection refused\"}]}}\n"));
    free(c.body);

    request(&f, &c, "GET", "/-/metrics");
    CU_ASSERT_EQUAL(c.status, 200);
    CU_ASSERT_TRUE(contains(c.body, "# TYPE lintel_upstream_target_up gauge\n"
                                    "lintel_upstream_target_up{upstream=\"api\","
                                    "target=\"127.0.0.1:9001\"} 1\n"
                                    "lintel_upstream_target_up{upstream=\"api\","
                                    "target=\"127.0.0.1:9002\"} 0\n"));
    CU_ASSERT_TRUE(contains(c.body, "\nlintel_upstream_target_health_changes_total{upstream="
                                    "\"api\",target=\"127.0.0.1:9002\"} 1\n"));
    free(c.body);
    lintel_health_free(h);
    fixture_stop(&f);
}

static void test_plugins_without_registry(void)
{
    struct call c;
    request(&fx, &c, "GET", "/-/plugins");
    expect_json(&c, 200, "[]\n");
    free(c.body);
}

static void test_metrics_endpoint(void)
{
    struct call c;
    lintel_metrics_request(lintel_metrics_shard(fx.metrics, 0), "users \"v1\"", 200, 1500);
    lintel_metrics_request(lintel_metrics_shard(fx.metrics, 1), "users \"v1\"", 200, 1500);
    request(&fx, &c, "GET", "/-/metrics");
    CU_ASSERT_EQUAL(c.status, 200);
    CU_ASSERT_STRING_EQUAL(c.content_type, "text/plain; version=0.0.4; charset=utf-8");
    CU_ASSERT_TRUE(contains(c.body, "# TYPE lintel_requests_total counter\n"));
    CU_ASSERT_TRUE(
        contains(c.body, "\nlintel_requests_total{route=\"users \\\"v1\\\"\",status=\"200\"} 2\n"));
    CU_ASSERT_TRUE(contains(c.body, "\nlintel_request_duration_seconds_bucket{le=\"0.005\"} 2\n"));
    free(c.body);
}

static void test_not_found_and_wrong_method(void)
{
    static const struct {
        const char *method, *path;
        long status;
        const char *allow;
    } cases[] = {
        {"GET", "/nope", 404, ""},
        {"GET", "/-/status/", 404, ""},
        {"GET", "/", 404, ""},
        {"POST", "/-/nope", 404, ""},
        {"POST", "/-/status", 405, "GET"},
        {"DELETE", "/-/routes", 405, "GET"},
        {"PUT", "/-/plugins", 405, "GET"},
        {"HEAD", "/-/upstreams", 405, "GET"},
        {"GET", "/-/reload", 405, "POST"},
        {"OPTIONS", "/-/reload", 405, "POST"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        struct call c;
        request(&fx, &c, cases[i].method, cases[i].path);
        if (strcmp(cases[i].method, "HEAD") == 0) {
            CU_ASSERT_EQUAL(c.status, 405); /* no body to a HEAD */
        } else {
            expect_json(&c, cases[i].status,
                        cases[i].status == 404
                            ? "{\"status\":\"error\",\"error\":\"not found\"}\n"
                            : "{\"status\":\"error\",\"error\":\"method not allowed\"}\n");
        }
        CU_ASSERT_STRING_EQUAL(c.allow, cases[i].allow);
        free(c.body);
    }
}

static void test_reload(void)
{
    struct call c;

    /* Refused by the configuration loader: the error names file, line, column and key path. */
    fx.next_yaml = BAD_YAML;
    request(&fx, &c, "POST", "/-/reload");
    expect_json(&c, 400,
                "{\"status\":\"error\",\"error\":\"admin.yaml:19:15: routes[0].upstream: "
                "unknown upstream \\\"nope\\\"\"}\n");
    free(c.body);

    /* Any text the reload reports comes back as valid JSON (invalid UTF-8 as U+FFFD). */
    fx.fail_with = "one\ntwo\t\"q\" \\ \x01 \xff caf\xc3\xa9";
    request(&fx, &c, "POST", "/-/reload");
    expect_json(&c, 400,
                "{\"status\":\"error\",\"error\":\"one\\ntwo\\t\\\"q\\\" \\\\ \\u0001 \\ufffd "
                "caf\xc3\xa9\"}\n");
    free(c.body);
    fx.fail_with = "";
    request(&fx, &c, "POST", "/-/reload");
    expect_json(&c, 400, "{\"status\":\"error\",\"error\":\"reload failed\"}\n");
    free(c.body);
    fx.fail_with = NULL;

    fx.next_yaml = RELOADED_YAML;
    request(&fx, &c, "POST", "/-/reload");
    expect_json(&c, 200, "{\"status\":\"ok\",\"generation\":2}\n");
    free(c.body);

    request(&fx, &c, "GET", "/-/routes");
    expect_json(&c, 200,
                "[{\"name\":\"only\",\"hosts\":[],\"paths\":[],\"methods\":[],\"headers\":{},"
                "\"upstream\":\"web\",\"strip_prefix\":false,\"plugins\":[]}]\n");
    free(c.body);
    request(&fx, &c, "GET", "/-/status");
    CU_ASSERT_TRUE(contains(c.body, ",\"generation\":2,\"reloads\":{\"ok\":1,"
                                    "\"failed\":3}}\n"));
    free(c.body);
}

static void test_bind_failure(void)
{
    char err[256] = "", want[256];
    struct lintel_admin_ops ops = {.ctx = &fx};
    struct lintel_admin *a = lintel_admin_start(fx.base, &fx.addr, &ops, err, sizeof(err));
    CU_ASSERT_PTR_NULL(a);
    lintel_admin_free(a);
    snprintf(want, sizeof(want), "admin 127.0.0.1:%d: Address already in use", fx.port);
    CU_ASSERT_STRING_EQUAL(err, want);
    lintel_admin_free(NULL);
}

/* ---- plugins, with the test plugin tp-probe 1.0.0 and 2.0.0 ---- */

/* Where tests/host-plugins builds: LINTEL_TEST_PLUGIN_DIR, else beside this executable. */
static const char *plugin_build_dir(void)
{
    static char dir[PATH_MAX];
    const char *env = getenv("LINTEL_TEST_PLUGIN_DIR");
    if (env)
        return env;
    ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
    if (n <= 0)
        return NULL;
    dir[n] = '\0';
    char *slash = strrchr(dir, '/');
    if (!slash)
        return NULL;
    snprintf(slash, sizeof(dir) - (size_t)(slash - dir), "/host-plugins");
    return dir;
}

struct image_list {
    const struct lintel_image *v[8];
    size_t n;
};

static void on_image(const struct lintel_image *img, void *arg)
{
    struct image_list *l = arg;
    if (l->n < 8)
        l->v[l->n++] = img;
}

/* The /-/plugins answer for the images in the registry now, all in state and listing routes. */
static void plugins_json(struct lintel_registry *reg, const char *state, const char *routes,
                         char *out, size_t cap)
{
    struct image_list l = {0};
    size_t len = 0;
    lintel_registry_foreach(reg, on_image, &l);
    len += (size_t)snprintf(out + len, cap - len, "[");
    for (size_t i = 0; i < l.n; i++)
        len += (size_t)snprintf(out + len, cap - len,
                                "%s{\"name\":\"tp-probe\",\"version\":\"%s\",\"hash\":\"%s\","
                                "\"state\":\"%s\",\"inflight\":0,\"path\":\"%s\",\"routes\":[%s]}",
                                i ? "," : "", l.v[i]->version, l.v[i]->hash, state,
                                l.v[i]->src_path, routes);
    snprintf(out + len, cap - len, "]\n");
}

static void test_plugins(void)
{
    const char *dir = plugin_build_dir();
    char yaml[2 * PATH_MAX + 1024], run_dir[] = "/tmp/lintel-test-admin-XXXXXX", err[512];
    char want[4096];
    struct fixture f;
    struct call c;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    snprintf(yaml, sizeof(yaml),
             BASE_YAML "plugin_paths: [\"%s/v1.0.0\", \"%s/v2.0.0\"]\n"
                       "plugins:\n"
                       "  - name: tp-probe\n"
                       "    version: \"1\"\n"
                       "    config: { tag: G }\n"
                       "routes:\n"
                       "  - name: a\n"
                       "    upstream: web\n"
                       "    plugins:\n"
                       "      - name: tp-probe\n"
                       "        config: { tag: A }\n"
                       "  - name: b\n"
                       "    upstream: web\n"
                       "    disable_plugins: [tp-probe]\n"
                       "  - name: c\n"
                       "    upstream: web\n",
             dir, dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(run_dir));
    struct lintel_registry *reg = lintel_registry_new(run_dir, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(reg);
    if (fixture_start(&f, yaml, reg) < 0) {
        fprintf(stderr,
                "\n  (build tests/host-plugins or set LINTEL_TEST_PLUGIN_DIR; looked in "
                "%s)\n",
                dir);
        CU_FAIL("fixture with plugins");
        fixture_stop(&f);
        lintel_registry_free(reg);
        return;
    }

    request(&f, &c, "GET", "/-/plugins");
    plugins_json(reg, "active", "\"a\",\"c\"", want, sizeof(want));
    expect_json(&c, 200, want);
    CU_ASSERT_TRUE(contains(c.body, "\"version\":\"1.0.0\""));
    CU_ASSERT_TRUE(contains(c.body, "\"version\":\"2.0.0\""));
    CU_ASSERT_TRUE(contains(c.body, "/v2.0.0/tp-probe.so\""));
    free(c.body);

    request(&f, &c, "GET", "/-/routes");
    CU_ASSERT_TRUE(contains(c.body, "{\"name\":\"a\",") &&
                   contains(c.body, "\"upstream\":\"web\",\"strip_prefix\":false,"
                                    "\"plugins\":[\"tp-probe\"]},{\"name\":\"b\""));
    free(c.body);

    request(&f, &c, "GET", "/-/metrics");
    CU_ASSERT_TRUE(contains(c.body, "\nlintel_plugin_inflight{plugin=\"tp-probe\","
                                    "version=\"2.0.0\",hash=\""));
    CU_ASSERT_TRUE(contains(c.body, "\",state=\"active\"} 1\n"));
    CU_ASSERT_TRUE(contains(c.body, "\",state=\"draining\"} 0\n"));
    free(c.body);

    /* A configuration without plugins: the images drain, then the reaper unloads them. */
    f.next_yaml = RELOADED_YAML;
    request(&f, &c, "POST", "/-/reload");
    expect_json(&c, 200, "{\"status\":\"ok\",\"generation\":2}\n");
    free(c.body);
    request(&f, &c, "GET", "/-/plugins");
    plugins_json(reg, "draining", "", want, sizeof(want));
    expect_json(&c, 200, want);
    free(c.body);
    CU_ASSERT_EQUAL(lintel_registry_reap(reg), 2);
    request(&f, &c, "GET", "/-/plugins");
    plugins_json(reg, "unloaded", "", want, sizeof(want));
    expect_json(&c, 200, want);
    free(c.body);

    fixture_stop(&f);
    lintel_registry_free(reg);
    rmdir(run_dir);
}

/* ---- docs/admin-api.md ---- */

/* The repository root, from this file's path (absolute under CMake, relative when compiled by
 * hand from the root). */
static const char *source_path(const char *rel)
{
    static char buf[4096];
    const char *self = __FILE__, *tail = "tests/unit/test_admin.c";
    size_t n = strlen(self), t = strlen(tail);
    if (n < t || strcmp(self + n - t, tail) != 0)
        return rel;
    snprintf(buf, sizeof(buf), "%.*s%s", (int)(n - t), self, rel);
    return buf;
}

/* A copy of the first block opened by fence after heading (after the start when NULL). */
static char *doc_block(const char *page, const char *heading, const char *fence)
{
    const char *p = heading ? strstr(page, heading) : page;
    if (p)
        p = strstr(p, fence);
    if (!p)
        return NULL;
    p += strlen(fence);
    const char *end = strstr(p, "\n```");
    return end ? strndup(p, (size_t)(end - p) + 1) : NULL;
}

/* Removes whitespace outside strings: the page indents JSON, the API does not. */
static void json_compact(char *s)
{
    char *out = s;
    bool in_str = false;
    for (; *s; s++) {
        if (in_str && *s == '\\' && s[1]) {
            *out++ = *s++;
        } else if (*s == '"') {
            in_str = !in_str;
        } else if (!in_str && strchr(" \n", *s)) {
            continue;
        }
        *out++ = *s;
    }
    *out = '\0';
}

/* The page's example configuration loads, and its /-/routes and /-/upstreams examples are what
 * the API answers for it. */
static void test_docs_example(void)
{
    static char page[65536];
    FILE *file = fopen(source_path("docs/admin-api.md"), "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    size_t n = fread(page, 1, sizeof(page) - 1, file);
    fclose(file);
    page[n] = '\0';

    char *yaml = doc_block(page, NULL, "```yaml\n");
    char *routes = doc_block(page, "### `GET /-/routes`", "```json\n");
    char *upstreams = doc_block(page, "### `GET /-/upstreams`", "```json\n");
    struct fixture f;
    CU_ASSERT_TRUE_FATAL(yaml && routes && upstreams);
    if (fixture_start(&f, yaml, NULL) == 0) {
        struct call c;
        CU_ASSERT_STRING_EQUAL(f.current->cfg->admin.text, "127.0.0.1:9901");
        json_compact(routes);
        json_compact(upstreams);
        request(&f, &c, "GET", "/-/routes");
        CU_ASSERT_TRUE(c.body && strncmp(c.body, routes, strlen(routes)) == 0 &&
                       strcmp(c.body + strlen(routes), "\n") == 0);
        free(c.body);
        request(&f, &c, "GET", "/-/upstreams");
        CU_ASSERT_TRUE(c.body && strncmp(c.body, upstreams, strlen(upstreams)) == 0 &&
                       strcmp(c.body + strlen(upstreams), "\n") == 0);
        free(c.body);
    } else {
        CU_FAIL("the example configuration does not load");
    }
    fixture_stop(&f);
    free(yaml);
    free(routes);
    free(upstreams);
}

static CU_TestInfo admin_tests[] = {
    {"GET /-/status", test_status},
    {"GET /-/routes", test_routes},
    {"GET /-/upstreams", test_upstreams},
    {"GET /-/upstreams and /-/metrics with health checks", test_upstreams_health},
    {"GET /-/plugins without a registry", test_plugins_without_registry},
    {"GET /-/metrics", test_metrics_endpoint},
    {"404 and 405", test_not_found_and_wrong_method},
    {"POST /-/reload", test_reload},
    {"bind failure names the address", test_bind_failure},
    {"docs/admin-api.md examples", test_docs_example},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo plugin_tests[] = {
    {"GET /-/plugins with images", test_plugins},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"admin", suite_init, suite_clean, NULL, NULL, admin_tests},
    {"admin plugins", NULL, NULL, NULL, NULL, plugin_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    if (CU_register_suites(suites) != CUE_SUCCESS) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    curl_global_cleanup();
    return failed ? 1 : 0;
}
