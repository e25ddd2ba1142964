/* The canary plugin through a running gateway (two workers) in front of two test origins, one
 * named "stable" (the route's upstream) and one named "canary" (X-Origin tells them apart): the
 * split over distinct users and its stickiness, also across a restart; the mark on the wire (set
 * for the canary, a client's forged one removed for stable); a reload from 20 to 40 % moving only
 * stable users; the override header and cookie; the canary origin stopped, taken out by active
 * health checks, and its users served by stable (503 on a route without upstream_fallback); the
 * metrics; and the YAML example of docs/plugins/canary.md against `lintel -t`. The plugin is a
 * copy of build/plugins/canary.so in a directory of the test's own. */
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

#define USERS 1000

static char plugin_so[PATH_MAX]; /* the build's plugins/canary.so */

static const char config_fmt[] =
    "listen: [ { address: \"127.0.0.1:%d\" } ]\n"
    "admin: { address: \"127.0.0.1:%d\" }\n"
    "workers: 2\n"
    "plugin_paths: [\"%s\"]\n"
    "plugins: []\n"
    "upstreams:\n"
    "  users: { targets: [ { address: \"127.0.0.1:%d\" } ] }\n"
    "  users-canary:\n"
    "    targets: [ { address: \"127.0.0.1:%d\" } ]\n"
    "    retries: 0\n"
    "    health:\n"
    "      active: { path: /healthz, interval: 100ms, timeout: 500ms, healthy: 1, unhealthy: 2 }\n"
    "routes:\n"
    "  - name: api\n"
    "    match: { paths: [\"/api\"] }\n"
    "    upstream: users\n"
    "    plugins:\n"
    "      - name: canary\n"
    "        instance: api-canary\n"
    "        config:\n"
    "          upstream: users-canary\n"
    "          percent: %d\n"
    "          key: { from: arg, name: uid }\n"
    "          override: { header: X-Canary-Force, cookie: canary }\n"
    "          upstream_fallback: true\n"
    "  - name: strict\n"
    "    match: { paths: [\"/strict\"] }\n"
    "    upstream: users\n"
    "    plugins:\n"
    "      - { name: canary, instance: strict-canary, config: { upstream: users-canary, "
    "percent: 100 } }\n";

struct env {
    struct it_proc *stable, *canary, *gw;
    int port, admin;
    const char *dir, *conf;
    struct it_http h;
};

/* Writes the configuration with the api route at percent. */
static int write_config(struct env *e, int percent)
{
    return it_write_file(e->conf, config_fmt, e->port, e->admin, e->dir, e->stable->port,
                         e->canary->port, percent);
}

/* Two origins, a plugin directory with a copy of canary.so, and a gateway at percent. */
static int start(struct env *e, int percent)
{
    memset(e, 0, sizeof(*e));
    e->stable = it_origin_start("stable");
    e->canary = it_origin_start("canary");
    e->dir = it_temp_path("canary-plugins");
    e->conf = it_temp_path("canary.yaml");
    if (!e->stable || !e->canary)
        return -1;
    mkdir(e->dir, 0700);
    char so[PATH_MAX];
    snprintf(so, sizeof(so), "%s/canary.so", e->dir);
    if (it_install_file(plugin_so, so) != 0)
        return -1;
    e->port = it_free_port();
    e->admin = it_free_port();
    if (write_config(e, percent) != 0)
        return -1;
    e->gw = it_lintel_start(e->conf, e->port);
    return e->gw && it_http_init(&e->h) == 0 ? 0 : -1;
}

static void stop(struct env *e)
{
    it_http_free(&e->h);
}

/* GET path with the extra headers (NULL-terminated, or NULL). */
static int get(struct env *e, const char *path, const char *const *headers, struct it_response *r)
{
    return it_http_get(&e->h, it_url(e->port, path), headers, r);
}

/* Which origin answered r: 1 canary, 0 stable, -1 neither (reported). Also checks the mark as
 * the origin saw it (the origin echoes the request headers): X-Canary: 1 on canary requests,
 * none on stable ones, whatever the client sent. */
static int side_of(const struct it_response *r)
{
    const char *o = it_response_header(r, "X-Origin");
    char mark[16] = "";
    int has_mark =
        r->body.data && it_json_get(r->body.data, "headers.x-canary", mark, sizeof(mark)) == 0;
    if (r->status == 200 && o && strcmp(o, "canary") == 0 && has_mark && strcmp(mark, "1") == 0)
        return 1;
    if (r->status == 200 && o && strcmp(o, "stable") == 0 && !has_mark)
        return 0;
    fprintf(stderr, "unexpected answer: status %d, X-Origin %s, x-canary \"%s\": %s\n", r->status,
            o ? o : "(none)", has_mark ? mark : "(none)", r->body.data ? r->body.data : "");
    return -1;
}

/* The side user u lands on; the request forges X-Canary: 1 (stable must not see it). */
static int user_side(struct env *e, int u, const char *extra)
{
    char path[64];
    snprintf(path, sizeof(path), "/api/items?uid=u%d", u);
    const char *headers[] = {"X-Canary: 1", extra, NULL};
    struct it_response r;
    if (get(e, path, headers, &r) != 0)
        return -1;
    int s = side_of(&r);
    it_response_free(&r);
    return s;
}

/* Fills sides[0..USERS) with each user's side; returns how many are on the canary, or -1. */
static int all_sides(struct env *e, int *sides)
{
    int n = 0;
    for (int u = 0; u < USERS; u++) {
        if ((sides[u] = user_side(e, u, NULL)) < 0)
            return -1;
        n += sides[u];
    }
    return n;
}

/* A metric's value from the admin API (the whole line up to the value is `series`), or -1. */
static long long metric(struct env *e, const char *series)
{
    struct it_response r;
    long long v = -1;
    if (it_http_get(&e->h, it_url(e->admin, "/-/metrics"), NULL, &r) != 0)
        return -1;
    char want[256];
    snprintf(want, sizeof(want), "\n%s ", series);
    const char *at = r.body.data ? strstr(r.body.data, want) : NULL;
    if (at)
        v = strtoll(at + strlen(want), NULL, 10);
    it_response_free(&r);
    return v;
}

#define EVENTS(instance, name)                                                                     \
    "lintel_plugin_events_total{plugin=\"canary\",instance=\"" instance "\",name=\"" name "\"}"
#define GAUGE(instance, name)                                                                      \
    "lintel_plugin_gauge{plugin=\"canary\",instance=\"" instance "\",name=\"" name "\"}"

/* ---- tests ------------------------------------------------------------------------------------
 */

static void test_split_sticky_and_marked(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e, 20) == 0);
    static int sides[USERS];
    int canaries = all_sides(&e, sides);
    CU_ASSERT_FATAL(canaries >= 0);
    /* 20 % of 1000 distinct users; the unit test checks 1 % over 10 000. */
    if (canaries < 160 || canaries > 240)
        fprintf(stderr, "%d of %d users on the canary, want about 200\n", canaries, USERS);
    CU_ASSERT(canaries >= 160 && canaries <= 240);

    int moved = 0;
    for (int round = 0; round < 2; round++)
        for (int u = 0; u < USERS; u++)
            moved += user_side(&e, u, NULL) != sides[u];
    CU_ASSERT_EQUAL(moved, 0);
    /* Counted when routed: the scrape right after the last answer has every request. */
    CU_ASSERT_EQUAL(metric(&e, EVENTS("api-canary", "canary")), 3 * canaries);
    CU_ASSERT_EQUAL(metric(&e, EVENTS("api-canary", "stable")), 3 * (USERS - canaries));
    CU_ASSERT_EQUAL(metric(&e, GAUGE("api-canary", "percent")), 20);
    CU_ASSERT_EQUAL(metric(&e, GAUGE("api-canary", "percent_bp")), 2000);

    /* A new gateway process puts every user where the old one did. */
    it_http_free(&e.h); /* close the keepalive connections: the gateway would wait for them */
    CU_ASSERT_FATAL(it_proc_signal(e.gw, SIGTERM) == 0);
    CU_ASSERT_FATAL(it_proc_wait(e.gw, 15000) == 0);
    e.gw = it_lintel_start(e.conf, e.port);
    CU_ASSERT_FATAL(e.gw != NULL && it_http_init(&e.h) == 0);
    for (int u = 0; u < USERS; u += 3)
        moved += user_side(&e, u, NULL) != sides[u];
    CU_ASSERT_EQUAL(moved, 0);
    stop(&e);
}

static void test_reload_20_to_40_moves_only_stable_users(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e, 20) == 0);
    static int before[USERS], after[USERS];
    int n20 = all_sides(&e, before);
    CU_ASSERT_FATAL(n20 >= 0);

    CU_ASSERT_FATAL(write_config(&e, 40) == 0);
    off_t mark = it_proc_log_size(e.gw);
    CU_ASSERT_FATAL(it_proc_signal(e.gw, SIGHUP) == 0);
    CU_ASSERT_FATAL(it_proc_log_wait(e.gw, mark, "configuration 2 loaded", 10000));
    int n40 = all_sides(&e, after);
    CU_ASSERT_FATAL(n40 >= 0);
    int back = 0;
    for (int u = 0; u < USERS; u++)
        back += before[u] && !after[u];
    CU_ASSERT_EQUAL(back, 0);
    if (n40 - n20 < 150 || n40 - n20 > 250)
        fprintf(stderr, "%d -> %d users on the canary, want about 200 more\n", n20, n40);
    CU_ASSERT(n40 - n20 >= 150 && n40 - n20 <= 250);
    CU_ASSERT_EQUAL(metric(&e, GAUGE("api-canary", "percent")), 40);
    stop(&e);
}

static void test_override_header_and_cookie(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e, 20) == 0);
    int on_canary = -1, on_stable = -1;
    for (int u = 0; u < USERS && (on_canary < 0 || on_stable < 0); u++) {
        int s = user_side(&e, u, NULL);
        CU_ASSERT_FATAL(s >= 0);
        *(s ? &on_canary : &on_stable) = u;
    }
    CU_ASSERT_FATAL(on_canary >= 0 && on_stable >= 0);
    CU_ASSERT_EQUAL(user_side(&e, on_stable, "X-Canary-Force: canary"), 1);
    CU_ASSERT_EQUAL(user_side(&e, on_stable, "X-Canary-Force: 1"), 1);
    CU_ASSERT_EQUAL(user_side(&e, on_stable, "Cookie: theme=dark; canary=canary"), 1);
    CU_ASSERT_EQUAL(user_side(&e, on_canary, "X-Canary-Force: stable"), 0);
    CU_ASSERT_EQUAL(user_side(&e, on_canary, "X-Canary-Force: 0"), 0);
    CU_ASSERT_EQUAL(user_side(&e, on_canary, "Cookie: canary=stable"), 0);
    CU_ASSERT_EQUAL(user_side(&e, on_canary, "X-Canary-Force: whatever"), 1); /* ignored */
    CU_ASSERT_EQUAL(metric(&e, EVENTS("api-canary", "forced")), 6);
    stop(&e);
}

static void test_canary_down_stable_serves(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e, 20) == 0);
    int on_canary = -1;
    for (int u = 0; u < USERS && on_canary < 0; u++)
        if (user_side(&e, u, NULL) == 1)
            on_canary = u;
    CU_ASSERT_FATAL(on_canary >= 0);
    struct it_response r;
    CU_ASSERT_FATAL(get(&e, "/strict", NULL, &r) == 0);
    CU_ASSERT_EQUAL(side_of(&r), 1);
    it_response_free(&r);

    /* Stop the canary origin; two failed probes 100 ms apart take its only target down. */
    char up[160];
    snprintf(up, sizeof(up),
             "lintel_upstream_target_up{upstream=\"users-canary\",target=\"127.0.0.1:%d\"}",
             e.canary->port);
    CU_ASSERT_EQUAL(metric(&e, up), 1);
    it_proc_kill(e.canary);
    int64_t deadline = it_now_ms() + 5000;
    while (metric(&e, up) != 0 && it_now_ms() < deadline)
        it_sleep_ms(50);
    CU_ASSERT_FATAL(metric(&e, up) == 0);

    /* Canary users, forced ones too, are served by stable; without upstream_fallback lintel
     * answers 503 itself. */
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(user_side(&e, on_canary, NULL), 0);
    CU_ASSERT_EQUAL(user_side(&e, on_canary, "X-Canary-Force: canary"), 0);
    CU_ASSERT_FATAL(get(&e, "/strict", NULL, &r) == 0);
    char error[64] = "";
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT(it_json_get(r.body.data, "error", error, sizeof(error)) == 0 &&
              strcmp(error, "no healthy upstream target") == 0);
    it_response_free(&r);
    CU_ASSERT_EQUAL(metric(&e, EVENTS("api-canary", "fallback")), 6);
    CU_ASSERT_EQUAL(metric(&e, EVENTS("strict-canary", "fallback")), -1); /* never counted */
    stop(&e);
}

/* The first ```yaml block of docs/plugins/canary.md, with plugin_paths pointed at this build's
 * plugin, is a configuration `lintel -t` accepts. */
static void test_documented_config_is_valid(void)
{
    const char *dir = it_plugin_dir("canary-doc-plugins", plugin_so);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    struct it_buf yaml = {0};
    CU_ASSERT_FATAL(it_doc_yaml("docs/plugins/canary.md", 0, dir, NULL, NULL, 0, &yaml) == 0);
    CU_ASSERT(strstr(yaml.data, "ramp:") != NULL);
    const char *conf = it_temp_path("canary-doc.yaml");
    CU_ASSERT_FATAL(it_write_file(conf, "%s", yaml.data) == 0);
    it_buf_free(&yaml);
    CU_ASSERT_EQUAL(it_lintel_check(conf, NULL), 0);
}

static CU_TestInfo tests[] = {
    {"20 % of distinct users, sticky (also across a restart), marked",
     test_split_sticky_and_marked},
    {"a reload from 20 to 40 % moves only stable users",
     test_reload_20_to_40_moves_only_stable_users},
    {"the override header and cookie force either side", test_override_header_and_cookie},
    {"canary origin down: health checks take it out, stable serves its users",
     test_canary_down_stable_serves},
    {"the documented configuration passes lintel -t", test_documented_config_is_valid},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"canary", NULL, it_suite_cleanup, it_test_setup, it_test_teardown, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    it_build_path(plugin_so, sizeof(plugin_so), "plugins/canary.so");
    return it_main(suites, 240);
}
