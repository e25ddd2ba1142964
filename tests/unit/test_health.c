/* Tests for core/health.c and core/health_probe.c (with the `health` section of
 * config_upstream.c): the configuration, the state machine (probe thresholds, passive counting,
 * cooldowns), states kept across reloads, and real probes against a small server on the test's
 * own event loop. Time is passed in where the code allows it, so nothing here sleeps for a
 * cooldown. */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "health-internal.h"

#define HEAD                                                                                       \
    "listen:\n"                                                                                    \
    "  - address: 127.0.0.1:8080\n"                                                                \
    "routes: []\n"                                                                                 \
    "upstreams:\n"                                                                                 \
    "  users:\n"                                                                                   \
    "    targets:\n"                                                                               \
    "      - address: 127.0.0.1:9001\n"                                                            \
    "      - address: 127.0.0.1:9002\n"                                                            \
    "        weight: 5\n"

static struct lintel_config *load(const char *yaml)
{
    struct lintel_config *cfg = NULL;
    char err[512] = "";
    if (lintel_config_load_string("t.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err)) != 0)
        fprintf(stderr, "\n  unexpected error: %s\n", err);
    return cfg;
}

static void expect_error(const char *yaml, const char *want)
{
    struct lintel_config *cfg = NULL;
    char err[512] = "";
    CU_ASSERT_EQUAL(lintel_config_load_string("t.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err)),
                    -1);
    CU_ASSERT_STRING_EQUAL(err, want);
    if (strcmp(err, want) != 0)
        fprintf(stderr, "\n  got:  %s\n  want: %s\n", err, want);
    lintel_config_free(cfg);
}

static bool in(const uint64_t *set, int status)
{
    return lintel_health_status_in(set, status);
}

/* ---- configuration ------------------------------------------------------------------------ */

static void test_config_spec_example(void)
{
    struct lintel_config *cfg = load(
        HEAD "    health:\n"
             "      active:  { path: /healthz, interval: 2s, timeout: 1s, healthy: 2, unhealthy: 3,"
             " statuses: [200, 204] }\n"
             "      passive: { failures: 3, statuses: [502, 503, 504], cooldown: 10s }\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    const struct lintel_health_active_conf *a = cfg->upstreams[0].health.active;
    const struct lintel_health_passive_conf *p = cfg->upstreams[0].health.passive;
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL(a->path, "/healthz");
    CU_ASSERT_EQUAL(a->interval_ms, 2000);
    CU_ASSERT_EQUAL(a->timeout_ms, 1000);
    CU_ASSERT_EQUAL(a->healthy, 2);
    CU_ASSERT_EQUAL(a->unhealthy, 3);
    CU_ASSERT(in(a->statuses, 200) && in(a->statuses, 204) && !in(a->statuses, 201) &&
              !in(a->statuses, 302));
    CU_ASSERT_EQUAL(p->failures, 3);
    CU_ASSERT_EQUAL(p->cooldown_ms, 10000);
    CU_ASSERT(in(p->statuses, 502) && in(p->statuses, 503) && in(p->statuses, 504) &&
              !in(p->statuses, 500));
    lintel_config_free(cfg);
}

static void test_config_defaults(void)
{
    struct lintel_config *cfg = load(HEAD "    health: { active: {}, passive: {} }\n"
                                          "  plain:\n"
                                          "    targets: [ { address: 127.0.0.1:9003 } ]\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    const struct lintel_health_active_conf *a = cfg->upstreams[0].health.active;
    const struct lintel_health_passive_conf *p = cfg->upstreams[0].health.passive;
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL(a->path, "/");
    CU_ASSERT_EQUAL(a->interval_ms, 5000);
    CU_ASSERT_EQUAL(a->timeout_ms, 1000);
    CU_ASSERT_EQUAL(a->healthy, 2);
    CU_ASSERT_EQUAL(a->unhealthy, 3);
    CU_ASSERT(in(a->statuses, 200) && in(a->statuses, 399) && !in(a->statuses, 199) &&
              !in(a->statuses, 400));
    CU_ASSERT_EQUAL(p->failures, 3);
    CU_ASSERT_EQUAL(p->cooldown_ms, 10000);
    CU_ASSERT(in(p->statuses, 502) && in(p->statuses, 504) && !in(p->statuses, 501) &&
              !in(p->statuses, 505));
    /* No health section: neither. An empty one: neither either. */
    CU_ASSERT_PTR_NULL(cfg->upstreams[1].health.active);
    CU_ASSERT_PTR_NULL(cfg->upstreams[1].health.passive);
    lintel_config_free(cfg);

    cfg = load(HEAD "    health: { passive: { statuses: [] } }\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_PTR_NULL(cfg->upstreams[0].health.active);
    CU_ASSERT_FALSE(in(cfg->upstreams[0].health.passive->statuses, 503));
    lintel_config_free(cfg);
}

static void test_config_errors(void)
{
    /* Line 10 is the health line; its values start at column 13 ("    health: {"). */
    expect_error(HEAD "    health: { active: { interval: 0s } }\n",
                 "t.yaml:10:35: upstreams.users.health.active.interval: must be a positive "
                 "duration");
    expect_error(HEAD "    health: { active: { timeout: soon } }\n",
                 "t.yaml:10:34: upstreams.users.health.active.timeout: must be a positive "
                 "duration");
    expect_error(HEAD "    health: { active: { healthy: 0 } }\n",
                 "t.yaml:10:34: upstreams.users.health.active.healthy: must be an integer from 1 "
                 "to 100");
    expect_error(HEAD "    health: { active: { statuses: [] } }\n",
                 "t.yaml:10:35: upstreams.users.health.active.statuses: must not be empty");
    expect_error(HEAD "    health: { active: { statuses: [200, 600] } }\n",
                 "t.yaml:10:41: upstreams.users.health.active.statuses[1]: must be an HTTP status "
                 "from 100 to 599");
    expect_error(HEAD "    health: { active: { statuses: [\"+20\"] } }\n",
                 "t.yaml:10:36: upstreams.users.health.active.statuses[0]: must be an HTTP status "
                 "from 100 to 599");
    expect_error(HEAD "    health: { active: { path: healthz } }\n",
                 "t.yaml:10:31: upstreams.users.health.active.path: must start with / and hold "
                 "no spaces or control characters");
    expect_error(HEAD "    health: { active: { path: \"/a b\" } }\n",
                 "t.yaml:10:31: upstreams.users.health.active.path: must start with / and hold "
                 "no spaces or control characters");
    expect_error(HEAD "    health: { passive: { failures: 0 } }\n",
                 "t.yaml:10:36: upstreams.users.health.passive.failures: must be an integer from "
                 "1 to 1000");
    expect_error(HEAD "    health: { passive: { cooldown: 0 } }\n",
                 "t.yaml:10:36: upstreams.users.health.passive.cooldown: must be a positive "
                 "duration");
    expect_error(HEAD "    health: { passive: { statuses: 503 } }\n",
                 "t.yaml:10:36: upstreams.users.health.passive.statuses: must be a list");
    expect_error(HEAD "    health: { active: {}, passiv: {} }\n",
                 "t.yaml:10:27: upstreams.users.health.passiv: unknown key");
    expect_error(HEAD "    health: { active: { intervall: 1s } }\n",
                 "t.yaml:10:25: upstreams.users.health.active.intervall: unknown key");
    expect_error(HEAD "    health: []\n", "t.yaml:10:13: upstreams.users.health: must be a map");
}

/* The repository root, from this file's path (absolute under CMake). */
static const char *source_path(const char *rel)
{
    static char buf[4096];
    const char *self = __FILE__, *tail = "tests/unit/test_health.c";
    size_t n = strlen(self), t = strlen(tail);
    if (n < t || strcmp(self + n - t, tail) != 0)
        return rel;
    snprintf(buf, sizeof(buf), "%.*s%s", (int)(n - t), self, rel);
    return buf;
}

/* docs/health.md's example (its first yaml block) loads, with the checks it shows. */
static void test_docs_example(void)
{
    static char page[65536];
    FILE *file = fopen(source_path("docs/health.md"), "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    size_t n = fread(page, 1, sizeof(page) - 1, file);
    fclose(file);
    page[n] = '\0';
    char *start = strstr(page, "```yaml\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(start);
    start += 8;
    char *end = strstr(start, "\n```");
    CU_ASSERT_PTR_NOT_NULL_FATAL(end);
    end[1] = '\0';
    struct lintel_config *cfg = load(start);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    CU_ASSERT_PTR_NOT_NULL(cfg->upstreams[0].health.active);
    CU_ASSERT_PTR_NOT_NULL(cfg->upstreams[0].health.passive);
    lintel_config_free(cfg);
}

/* ---- the state machine ---------------------------------------------------------------------- */

/* A checker on its own loop with one configuration bound; the loop is never run unless a test
 * runs it, so no probe goes out. */
struct fix {
    struct event_base *base;
    struct lintel_health *h;
    struct lintel_config *cfg;
    struct lintel_health_view *v;
};

static void fix_start(struct fix *f, const char *yaml)
{
    char err[256];
    memset(f, 0, sizeof(*f));
    f->base = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->base);
    f->h = lintel_health_new(f->base);
    f->cfg = load(yaml);
    CU_ASSERT_FATAL(f->h && f->cfg);
    f->v = lintel_health_bind(f->h, f->cfg, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->v);
}

/* Binds a new configuration the way a reload does; the previous view stays alive until freed
 * (a snapshot with requests in flight) unless drop_old. */
static struct lintel_health_view *fix_reload(struct fix *f, const char *yaml, bool drop_old,
                                             struct lintel_config **old_cfg)
{
    char err[256];
    struct lintel_config *cfg = load(yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    if (drop_old) {
        lintel_health_view_free(f->v);
        f->v = NULL;
    }
    struct lintel_health_view *old = f->v;
    f->v = lintel_health_bind(f->h, cfg, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->v);
    *old_cfg = f->cfg;
    f->cfg = cfg;
    return old;
}

static void fix_stop(struct fix *f)
{
    lintel_health_view_free(f->v);
    lintel_health_free(f->h);
    lintel_config_free(f->cfg);
    event_base_free(f->base);
}

static struct lintel_target_health *entry(struct fix *f, size_t up, size_t t)
{
    return lintel_health_entry(f->v, &f->cfg->upstreams[up], t);
}

/* skip flags of upstream 0 as the request path sets them; returns how many are down. */
static size_t down_count(struct fix *f, unsigned char *skip)
{
    memset(skip, 0, f->cfg->upstreams[0].ntargets);
    return lintel_health_skip_down(f->v, &f->cfg->upstreams[0], skip);
}

static const char ACTIVE_YAML[] =
    HEAD "    health: { active: { interval: 1h, healthy: 2, unhealthy: 3 } }\n";

static void test_active_thresholds(void)
{
    struct fix f;
    unsigned char skip[2];
    fix_start(&f, ACTIVE_YAML);
    struct lintel_target_health *e = entry(&f, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    uint64_t now = lintel_health_now_ms();
    CU_ASSERT_EQUAL(down_count(&f, skip), 0);

    /* Two failures, a success, two failures: never three in a row. */
    lintel_health_probe_result(e, false, LINTEL_HEALTH_REFUSED, 0, now);
    lintel_health_probe_result(e, false, LINTEL_HEALTH_REFUSED, 0, now);
    lintel_health_probe_result(e, true, LINTEL_HEALTH_OK, 200, now);
    lintel_health_probe_result(e, false, LINTEL_HEALTH_STATUS, 500, now);
    lintel_health_probe_result(e, false, LINTEL_HEALTH_TIMEOUT, 0, now);
    CU_ASSERT_EQUAL(down_count(&f, skip), 0);
    lintel_health_probe_result(e, false, LINTEL_HEALTH_REFUSED, 0, now);
    CU_ASSERT_EQUAL(down_count(&f, skip), 1);
    CU_ASSERT(skip[0] == 1 && skip[1] == 0);

    struct lintel_health_status st;
    lintel_health_status_get(f.v, &f.cfg->upstreams[0], 0, &st);
    CU_ASSERT_TRUE(st.checked);
    CU_ASSERT_FALSE(st.up);
    CU_ASSERT_STRING_EQUAL(st.reason, "3 failed probes, last: connection refused");
    CU_ASSERT_EQUAL(st.changes, 1);
    CU_ASSERT(st.since > 1600000000);

    /* More failures change nothing; then one good probe is not enough, two are. */
    lintel_health_probe_result(e, false, LINTEL_HEALTH_REFUSED, 0, now);
    lintel_health_probe_result(e, true, LINTEL_HEALTH_OK, 204, now);
    CU_ASSERT_EQUAL(down_count(&f, skip), 1);
    lintel_health_probe_result(e, true, LINTEL_HEALTH_OK, 204, now);
    CU_ASSERT_EQUAL(down_count(&f, skip), 0);
    lintel_health_status_get(f.v, &f.cfg->upstreams[0], 0, &st);
    CU_ASSERT_TRUE(st.up);
    CU_ASSERT_STRING_EQUAL(st.reason, "2 successful probes");
    CU_ASSERT_EQUAL(st.changes, 2);
    fix_stop(&f);
}

static const char PASSIVE_YAML[] =
    HEAD "    health: { passive: { failures: 3, statuses: [503], cooldown: 10s } }\n";

static void test_passive_counting_and_cooldown(void)
{
    struct fix f;
    fix_start(&f, PASSIVE_YAML);
    const struct lintel_health_passive_conf *p = f.cfg->upstreams[0].health.passive;
    struct lintel_target_health *e = entry(&f, 0, 1);
    uint64_t now = lintel_health_now_ms();

    /* A success clears the count; a status not listed is a success. */
    lintel_health_passive_at(e, p, LINTEL_HEALTH_REFUSED, 0, now);
    lintel_health_passive_at(e, p, LINTEL_HEALTH_OK, 503, now);
    lintel_health_passive_at(e, p, LINTEL_HEALTH_OK, 500, now);
    lintel_health_passive_at(e, p, LINTEL_HEALTH_TIMEOUT, 0, now);
    lintel_health_passive_at(e, p, LINTEL_HEALTH_RESET, 0, now);
    CU_ASSERT_FALSE(lintel_health_down_at(e, now));
    lintel_health_passive_at(e, p, LINTEL_HEALTH_OK, 503, now);
    CU_ASSERT_TRUE(lintel_health_down_at(e, now));
    CU_ASSERT_TRUE(lintel_health_down_at(e, now + 9999));
    struct lintel_health_status st;
    lintel_health_status_get(f.v, &f.cfg->upstreams[0], 1, &st);
    CU_ASSERT_FALSE(st.up);
    CU_ASSERT_STRING_EQUAL(st.reason, "3 failed requests in a row, last: status 503");

    /* Requests that were in flight fail too: they neither extend the cooldown nor log again. */
    lintel_health_passive_at(e, p, LINTEL_HEALTH_RESET, 0, now + 5000);
    CU_ASSERT_FALSE(lintel_health_down_at(e, now + 10000));
    CU_ASSERT_EQUAL(atomic_load(&e->changes), 2); /* down, then up when the cooldown ended */
    lintel_health_status_get(f.v, &f.cfg->upstreams[0], 1, &st);
    CU_ASSERT_STRING_EQUAL(st.reason, "cooldown over");

    /* Tried again: one more failure puts it back down at once... */
    lintel_health_passive_at(e, p, LINTEL_HEALTH_REFUSED, 0, now + 10001);
    CU_ASSERT_TRUE(lintel_health_down_at(e, now + 10002));
    CU_ASSERT_FALSE(lintel_health_down_at(e, now + 20001));
    /* ...one success clears the count, and it takes `failures` again. */
    lintel_health_passive_at(e, p, LINTEL_HEALTH_OK, 200, now + 20002);
    lintel_health_passive_at(e, p, LINTEL_HEALTH_REFUSED, 0, now + 20003);
    lintel_health_passive_at(e, p, LINTEL_HEALTH_REFUSED, 0, now + 20004);
    CU_ASSERT_FALSE(lintel_health_down_at(e, now + 20005));
    CU_ASSERT_EQUAL(atomic_load(&e->changes), 4);
    /* The other target was never touched. */
    CU_ASSERT_FALSE(lintel_health_down_at(entry(&f, 0, 0), now));
    fix_stop(&f);
}

/* The request path's entry points, with the real clock. */
static void test_observe_and_skip(void)
{
    struct fix f;
    unsigned char skip[2];
    fix_start(&f, PASSIVE_YAML);
    const struct lintel_upstream_conf *u = &f.cfg->upstreams[0];
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(down_count(&f, skip), 0);
        lintel_health_observe(f.v, u, 0, LINTEL_HEALTH_OK, 503);
    }
    CU_ASSERT_EQUAL(down_count(&f, skip), 1);
    CU_ASSERT(skip[0] == 1 && skip[1] == 0);
    /* Both down: the request path counts both (and would answer 503). */
    for (int i = 0; i < 3; i++)
        lintel_health_observe(f.v, u, 1, LINTEL_HEALTH_REFUSED, 0);
    CU_ASSERT_EQUAL(down_count(&f, skip), 2);
    /* Out of range and no-view calls are ignored. */
    lintel_health_observe(f.v, u, -1, LINTEL_HEALTH_REFUSED, 0);
    lintel_health_observe(NULL, u, 0, LINTEL_HEALTH_REFUSED, 0);
    CU_ASSERT_EQUAL(lintel_health_skip_down(NULL, u, skip), 0);
    fix_stop(&f);
}

static void test_no_health_section(void)
{
    struct fix f;
    unsigned char skip[2];
    fix_start(&f, HEAD);
    const struct lintel_upstream_conf *u = &f.cfg->upstreams[0];
    CU_ASSERT_PTR_NULL(entry(&f, 0, 0));
    lintel_health_observe(f.v, u, 0, LINTEL_HEALTH_REFUSED, 0);
    CU_ASSERT_EQUAL(down_count(&f, skip), 0);
    struct lintel_health_status st;
    lintel_health_status_get(f.v, u, 0, &st);
    CU_ASSERT_FALSE(st.checked);
    CU_ASSERT_TRUE(st.up);
    fix_stop(&f);
}

/* ---- reloads -------------------------------------------------------------------------------- */

static void mark_active_down(struct lintel_target_health *e)
{
    for (int i = 0; i < 3; i++)
        lintel_health_probe_result(e, false, LINTEL_HEALTH_REFUSED, 0, lintel_health_now_ms());
}

static void test_reload_keeps_state(void)
{
    struct fix f;
    struct lintel_config *old_cfg;
    fix_start(&f, ACTIVE_YAML);
    struct lintel_target_health *a = entry(&f, 0, 0), *b = entry(&f, 0, 1);
    mark_active_down(a);
    mark_active_down(b);
    CU_ASSERT_EQUAL(atomic_load(&a->changes), 1);

    /* 9001 stays (another weight, another position), 9002 goes, 9004 comes; a new upstream. The
     * old view is still held (requests in flight on the old snapshot). */
    struct lintel_health_view *old =
        fix_reload(&f,
                   "listen:\n  - address: 127.0.0.1:8080\nroutes: []\nupstreams:\n"
                   "  extra:\n    targets: [ { address: 127.0.0.1:9001 } ]\n"
                   "    health: { passive: {} }\n"
                   "  users:\n    targets:\n      - address: 127.0.0.1:9004\n"
                   "      - { address: 127.0.0.1:9001, weight: 3 }\n"
                   "    health: { active: { interval: 1h, healthy: 1 } }\n",
                   false, &old_cfg);
    CU_ASSERT_PTR_EQUAL(entry(&f, 1, 1), a);
    CU_ASSERT_TRUE(lintel_health_down_at(a, lintel_health_now_ms()));
    CU_ASSERT_FALSE(lintel_health_down_at(entry(&f, 1, 0), lintel_health_now_ms()));
    /* Same address in another upstream: another state. */
    CU_ASSERT_PTR_NOT_EQUAL(entry(&f, 0, 0), a);
    CU_ASSERT_FALSE(lintel_health_down_at(entry(&f, 0, 0), lintel_health_now_ms()));
    /* The new thresholds apply to the kept state: healthy is 1 now. */
    CU_ASSERT_PTR_EQUAL(a->active, f.cfg->upstreams[1].health.active);
    lintel_health_probe_result(a, true, LINTEL_HEALTH_OK, 200, lintel_health_now_ms());
    CU_ASSERT_FALSE(lintel_health_down_at(a, lintel_health_now_ms()));
    /* The dropped target is still there for the old view, without probes. */
    CU_ASSERT_TRUE(lintel_health_down_at(b, lintel_health_now_ms()));
    CU_ASSERT_PTR_NULL(b->probe);
    lintel_health_view_free(old);
    lintel_config_free(old_cfg);

    /* Once nothing holds 9002, a configuration naming it again starts it afresh. */
    fix_reload(&f, ACTIVE_YAML, true, &old_cfg);
    lintel_config_free(old_cfg);
    CU_ASSERT_PTR_EQUAL(entry(&f, 0, 0), a);
    CU_ASSERT_FALSE(lintel_health_down_at(entry(&f, 0, 1), lintel_health_now_ms()));
    CU_ASSERT_EQUAL(atomic_load(&entry(&f, 0, 1)->changes), 0);
    fix_stop(&f);
}

/* A reload that removes the checks holding a target down brings it up. */
static void test_reload_removes_checks(void)
{
    struct fix f;
    struct lintel_config *old_cfg;
    fix_start(&f, HEAD "    health:\n"
                       "      active: { interval: 1h, unhealthy: 3 }\n"
                       "      passive: { failures: 1 }\n");
    struct lintel_target_health *a = entry(&f, 0, 0), *b = entry(&f, 0, 1);
    mark_active_down(a);
    lintel_health_observe(f.v, &f.cfg->upstreams[0], 1, LINTEL_HEALTH_TIMEOUT, 0);
    CU_ASSERT_TRUE(lintel_health_down_at(b, lintel_health_now_ms()));

    fix_reload(&f, PASSIVE_YAML, true, &old_cfg);
    lintel_config_free(old_cfg);
    CU_ASSERT_FALSE(lintel_health_down_at(a, lintel_health_now_ms()));
    CU_ASSERT_PTR_NULL(a->probe);
    CU_ASSERT_TRUE(lintel_health_down_at(b, lintel_health_now_ms())); /* passive still on */

    fix_reload(&f, HEAD "    health: { active: { interval: 1h } }\n", true, &old_cfg);
    lintel_config_free(old_cfg);
    CU_ASSERT_FALSE(lintel_health_down_at(b, lintel_health_now_ms()));
    struct lintel_health_status st;
    lintel_health_status_get(f.v, &f.cfg->upstreams[0], 1, &st);
    CU_ASSERT_STRING_EQUAL(st.reason, "passive checks removed");
    fix_stop(&f);
}

/* ---- probes on a real socket ------------------------------------------------------------- */

/* A server on the test's loop: answers every request with `status` and closes. */
struct server {
    struct evconnlistener *l;
    int port;
    int status;
    unsigned requests;
    char last_head[512];
};

static void on_server_read(struct bufferevent *bev, void *arg)
{
    struct server *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0)
        return;
    size_t n =
        (size_t)end.pos < sizeof(s->last_head) - 1 ? (size_t)end.pos : sizeof(s->last_head) - 1;
    evbuffer_remove(in, s->last_head, n);
    s->last_head[n] = '\0';
    s->requests++;
    evbuffer_add_printf(bufferevent_get_output(bev),
                        "HTTP/1.1 %d X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        s->status);
    bufferevent_disable(bev, EV_READ);
}

static void on_server_write(struct bufferevent *bev, void *arg)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 &&
        !(bufferevent_get_enabled(bev) & EV_READ))
        bufferevent_free(bev);
}

static void on_server_event(struct bufferevent *bev, short what, void *arg)
{
    bufferevent_free(bev);
}

static void on_server_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                             int len, void *arg)
{
    struct bufferevent *bev =
        bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, on_server_read, on_server_write, on_server_event, arg);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void server_start(struct server *s, struct event_base *base, int status)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    memset(s, 0, sizeof(*s));
    s->status = status;
    s->l = evconnlistener_new_bind(base, on_server_accept, s,
                                   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                   (struct sockaddr *)&sin, sizeof(sin));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->l);
    struct sockaddr_in bound;
    socklen_t blen = sizeof(bound);
    getsockname(evconnlistener_get_fd(s->l), (struct sockaddr *)&bound, &blen);
    s->port = ntohs(bound.sin_port);
}

/* Runs the loop until e is (down) or ms pass. Returns whether it got there. */
static bool run_until(struct event_base *base, struct lintel_target_health *e, bool down, int ms)
{
    uint64_t deadline = lintel_health_now_ms() + (uint64_t)ms;
    while (lintel_health_now_ms() < deadline) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
        if (lintel_health_down_at(e, lintel_health_now_ms()) == down)
            return true;
    }
    return false;
}

static void test_probes(void)
{
    struct fix f;
    struct server srv;
    char yaml[1024];
    struct event_base *base = event_base_new();
    server_start(&srv, base, 200);
    /* Target 0: the server; target 1: a port nobody listens on (the server's, once closed). */
    struct server gone;
    server_start(&gone, base, 200);
    int dead = gone.port;
    evconnlistener_free(gone.l);
    /* Target 2: a socket that listens but never accepts: connections complete, nothing answers. */
    int silent = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t slen = sizeof(sin);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(silent >= 0 && bind(silent, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
                    listen(silent, 16) == 0 &&
                    getsockname(silent, (struct sockaddr *)&sin, &slen) == 0);
    snprintf(yaml, sizeof(yaml),
             "listen:\n  - address: 127.0.0.1:8080\nroutes: []\nupstreams:\n  users:\n"
             "    targets: [ { address: \"127.0.0.1:%d\" }, { address: \"127.0.0.1:%d\" },"
             " { address: \"127.0.0.1:%d\" } ]\n"
             "    health: { active: { path: /healthz?deep=1, interval: 30ms, timeout: 200ms,"
             " healthy: 2, unhealthy: 2, statuses: [200] } }\n",
             srv.port, dead, ntohs(sin.sin_port));
    /* fix_start with the server's loop. */
    char err[256];
    memset(&f, 0, sizeof(f));
    f.base = base;
    f.h = lintel_health_new(base);
    f.cfg = load(yaml);
    CU_ASSERT_FATAL(f.h && f.cfg);
    f.v = lintel_health_bind(f.h, f.cfg, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(f.v);
    struct lintel_target_health *up = entry(&f, 0, 0), *down = entry(&f, 0, 1);

    CU_ASSERT_TRUE(run_until(base, down, true, 3000));
    struct lintel_health_status st;
    lintel_health_status_get(f.v, &f.cfg->upstreams[0], 1, &st);
    CU_ASSERT_STRING_EQUAL(st.reason, "2 failed probes, last: connection refused");
    CU_ASSERT_FALSE(lintel_health_down_at(up, lintel_health_now_ms()));
    CU_ASSERT(srv.requests >= 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(srv.last_head, "GET /healthz?deep=1 HTTP/1.1\r\n"));
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%d\r\n", srv.port);
    CU_ASSERT_PTR_NOT_NULL(strstr(srv.last_head, host));
    CU_ASSERT_PTR_NOT_NULL(strstr(srv.last_head, "\r\nConnection: close"));

    /* A status not listed is a failed probe; back to 200, the target comes back. */
    srv.status = 503;
    CU_ASSERT_TRUE(run_until(base, up, true, 3000));
    lintel_health_status_get(f.v, &f.cfg->upstreams[0], 0, &st);
    CU_ASSERT_STRING_EQUAL(st.reason, "2 failed probes, last: status 503");
    srv.status = 200;
    CU_ASSERT_TRUE(run_until(base, up, false, 3000));

    /* The listener that never answers: timeouts. */
    struct lintel_target_health *mute = entry(&f, 0, 2);
    CU_ASSERT_TRUE(run_until(base, mute, true, 3000));
    lintel_health_status_get(f.v, &f.cfg->upstreams[0], 2, &st);
    CU_ASSERT_STRING_EQUAL(st.reason, "2 failed probes, last: timed out");

    close(silent);
    lintel_health_view_free(f.v);
    lintel_health_free(f.h);
    lintel_config_free(f.cfg);
    evconnlistener_free(srv.l);
    event_base_free(base);
}

static CU_TestInfo config_tests[] = {
    {"the issue's example", test_config_spec_example},
    {"defaults", test_config_defaults},
    {"errors name file, line, column and key path", test_config_errors},
    {"docs/health.md example loads", test_docs_example},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo state_tests[] = {
    {"probe thresholds: unhealthy down, healthy up", test_active_thresholds},
    {"passive: counting, success resets, cooldown, retry", test_passive_counting_and_cooldown},
    {"observe and skip_down on the request path", test_observe_and_skip},
    {"no health section: always up", test_no_health_section},
    {"reload keeps states of unchanged targets", test_reload_keeps_state},
    {"reload removing checks brings targets up", test_reload_removes_checks},
    {"probes over real sockets", test_probes},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"health config", NULL, NULL, NULL, NULL, config_tests},
    {"health", NULL, NULL, NULL, NULL, state_tests},
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
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
