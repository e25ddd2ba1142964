/* Tests canary through the SDK test kit, loading the built .so as lintel would: the split over
 * 10k users, stickiness, raising the percentage, the time ramp on the kit's clock, overrides,
 * the health fallback, key sources, the mark, metrics and the configuration errors. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lintel/testkit.h>

#define CANARY "users-canary"
#define STABLE "users"
#define USERS 10000
/* 2026-12-01T10:00:00Z, the ramp start of the tests. */
#define T0 1796119200000ull
#define MIN_MS 60000ull

static struct lk_plugin *plugin;

/* ---- a second plugin that sets the consumer, as an auth plugin would ------------------------ */

static const struct lintel_host_api *setter_host;

static int setter_create(const struct lintel_host_api *host, lintel_instance *self,
                         const lintel_cfg *config, lintel_cfg_error *err, void **instance)
{
    setter_host = host;
    *instance = NULL;
    return 0;
}

/* ACCESS: the consumer named by the request's X-Test-Consumer header. */
static enum lintel_result setter_access(lintel_req *r, void *instance)
{
    struct lintel_str v = setter_host->req_header(r, "X-Test-Consumer");
    char name[64];
    if (!v.ptr || v.len >= sizeof(name))
        return LINTEL_CONTINUE;
    memcpy(name, v.ptr, v.len);
    name[v.len] = '\0';
    return setter_host->consumer_set(r, name, NULL) == 0 ? LINTEL_CONTINUE : LINTEL_ERROR;
}

/* clang-format off */
static const struct lintel_plugin setter_desc = {
    LINTEL_PLUGIN_INIT,
    .name = "setconsumer",
    .version = "1.0.0",
    .create = setter_create,
    .access = setter_access,
};
/* clang-format on */

/* ---- helpers -------------------------------------------------------------------------------- */

static int suite_init(void)
{
    plugin = lk_plugin_load_or_report(CANARY_SO);
    lk_declare_upstream(STABLE);
    lk_declare_upstream(CANARY);
    return plugin ? 0 : -1;
}

static int suite_clean(void)
{
    lk_plugin_free(plugin);
    return 0;
}

/* A request on a route whose upstream is STABLE. */
static struct lk_req *request(const char *target)
{
    struct lk_req *r = lk_req_new("GET", target);
    lk_req_set_upstream(r, STABLE);
    return r;
}

/* Runs BALANCE on r: 1 when it goes to the canary (marked with X-Canary: 1), 0 when it stays on
 * stable (without the mark), -1 when anything else happened (reported). */
static int side(struct lk_instance *in, struct lk_req *r)
{
    enum lintel_result res = lk_run(in, r, LINTEL_PHASE_BALANCE);
    const char *up = lk_upstream(r), *mark = lk_req_header(r, "X-Canary");
    const char *field = lk_log_field(r, "canary");
    if (res == LINTEL_CONTINUE && up && strcmp(up, CANARY) == 0 && mark && strcmp(mark, "1") == 0 &&
        field && strcmp(field, "canary") == 0)
        return 1;
    if (res == LINTEL_CONTINUE && up && strcmp(up, STABLE) == 0 && !mark && field &&
        strcmp(field, "stable") == 0)
        return 0;
    fprintf(stderr, "unexpected: result %d, upstream %s, X-Canary %s, canary field %s\n", res,
            up ? up : "(none)", mark ? mark : "(none)", field ? field : "(none)");
    return -1;
}

/* The side user uid gets (key: { from: arg, name: uid } in the instance's config). */
static int user_side(struct lk_instance *in, const char *uid)
{
    char target[128];
    snprintf(target, sizeof(target), "/api/items?uid=%s&x=1", uid);
    struct lk_req *r = request(target);
    int s = side(in, r);
    lk_req_free(r);
    return s;
}

static int user_n(struct lk_instance *in, int n)
{
    char uid[32];
    snprintf(uid, sizeof(uid), "%d", n);
    return user_side(in, uid);
}

/* How many of users 0..USERS-1 go to the canary; -1 when one of them failed. */
static int canary_users(struct lk_instance *in)
{
    int n = 0;
    for (int u = 0; u < USERS; u++) {
        int s = user_n(in, u);
        if (s < 0)
            return -1;
        n += s;
    }
    return n;
}

/* Whether got is within 1 % of the USERS users of want_bp basis points. */
static int near(int got, int want_bp)
{
    int ok = got >= want_bp - USERS / 100 && got <= want_bp + USERS / 100;
    if (!ok)
        fprintf(stderr, "%d of %d users on the canary, want %d +- %d\n", got, USERS, want_bp,
                USERS / 100);
    return ok;
}

/* Sets the wall clock so that the instance's once-a-second timer fires at unix_ms, and fires it
 * (every advance in these tests is a multiple of a second, so the timer stays on the second). */
static void clock_at(uint64_t unix_ms)
{
    lk_clock_set_unix(unix_ms - 1000);
    lk_advance(1000);
}

/* ---- the split and stickiness ------------------------------------------------------------- */

static void test_split_within_one_percent(void)
{
    static const struct {
        const char *percent;
        int bp;
    } cases[] = {{"10", 1000}, {"25", 2500}, {"12.5", 1250}, {"50", 5000},
                 {"0.5", 50},  {"0", 0},     {"100", 10000}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[160];
        snprintf(yaml, sizeof(yaml),
                 "{ upstream: " CANARY ", percent: %s, key: { from: arg, name: uid } }",
                 cases[i].percent);
        struct lk_instance *in = lk_instance_or_report(plugin, yaml);
        CU_ASSERT_FATAL(in != NULL);
        int n = canary_users(in);
        if (cases[i].bp == 0 || cases[i].bp == 10000) {
            CU_ASSERT_EQUAL(n, cases[i].bp); /* blue-green: all or nothing, exactly */
        } else {
            CU_ASSERT(near(n, cases[i].bp));
        }
        lk_instance_free(in);
    }
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static void test_sticky_across_requests_and_instances(void)
{
    const char *yaml = "{ upstream: " CANARY ", percent: 10, key: { from: arg, name: uid } }";
    struct lk_instance *in = lk_instance_or_report(plugin, yaml);
    CU_ASSERT_FATAL(in != NULL);
    int first[500], canaries = 0;
    for (int u = 0; u < 500; u++) {
        first[u] = user_n(in, u);
        CU_ASSERT_FATAL(first[u] >= 0);
        canaries += first[u];
        int same = 1;
        for (int i = 0; i < 99; i++)
            same &= user_n(in, u) == first[u];
        CU_ASSERT(same);
    }
    CU_ASSERT(canaries > 0 && canaries < 500);
    lk_instance_free(in);

    /* A new instance (a restart, a reload) puts every user where the old one did. */
    in = lk_instance_or_report(plugin, yaml);
    CU_ASSERT_FATAL(in != NULL);
    int same = 1;
    for (int u = 0; u < 500; u++)
        same &= user_n(in, u) == first[u];
    CU_ASSERT(same);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static void test_raising_moves_only_stable_users(void)
{
    struct lk_instance *ten = lk_instance_or_report(
        plugin, "{ upstream: " CANARY ", percent: 10, key: { from: arg, name: uid } }");
    struct lk_instance *thirty = lk_instance_or_report(
        plugin, "{ upstream: " CANARY ", percent: 30, key: { from: arg, name: uid } }");
    CU_ASSERT_FATAL(ten && thirty);
    int before = 0, after = 0, went_back = 0;
    for (int u = 0; u < USERS; u++) {
        int a = user_n(ten, u), b = user_n(thirty, u);
        CU_ASSERT_FATAL(a >= 0 && b >= 0);
        before += a;
        after += b;
        went_back += a && !b;
    }
    CU_ASSERT_EQUAL(went_back, 0);
    CU_ASSERT(near(before, 1000));
    CU_ASSERT(near(after, 3000));
    CU_ASSERT(near(after - before, 2000)); /* the users moved: stable ones only */
    lk_instance_free(ten);
    lk_instance_free(thirty);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

/* ---- the ramp ---------------------------------------------------------------------------------
 */

static void test_ramp_steps_on_the_clock(void)
{
    struct lk_instance *in = lk_instance_or_report(
        plugin, "{ upstream: " CANARY ", key: { from: arg, name: uid }, ramp: { from: 1, to: "
                "100, start: \"2026-12-01T10:00:00Z\", duration: 2h, steps: 20 } }");
    CU_ASSERT_FATAL(in != NULL);
    /* Every 6 minutes the share rises by 99 / 20 = 4.95 %: 1, 5.95, 10.9, ... 95.05, 100. */
    static const struct {
        int64_t at_ms; /* from T0 */
        int bp;
    } points[] = {
        {-3600000, 100},          {-1000, 100},          {0, 100},
        {6 * MIN_MS - 1000, 100}, {6 * MIN_MS, 595},     {12 * MIN_MS, 1090},
        {60 * MIN_MS, 5050},      {114 * MIN_MS, 9505},  {120 * MIN_MS - 1000, 9505},
        {120 * MIN_MS, 10000},    {300 * MIN_MS, 10000},
    };
    for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
        clock_at(T0 + (uint64_t)points[i].at_ms);
        CU_ASSERT_EQUAL(lk_gauge(in, "percent_bp"), points[i].bp);
        CU_ASSERT_EQUAL(lk_gauge(in, "percent"), points[i].bp / 100);
    }

    /* The requests follow the clock (read on each request, not from the gauge): the split at a
     * few points, and across all 21 levels no user ever goes back to stable. */
    clock_at(T0 - 1000);
    CU_ASSERT(near(canary_users(in), 100));
    clock_at(T0 + 60 * MIN_MS);
    CU_ASSERT(near(canary_users(in), 5050));
    static int was[2000];
    int back = 0, prev_total = -1, rising = 1;
    for (int k = 0; k <= 20; k++) {
        clock_at(T0 + (uint64_t)k * 6 * MIN_MS);
        int total = 0;
        for (int u = 0; u < 2000; u++) {
            int s = user_n(in, u);
            CU_ASSERT_FATAL(s >= 0);
            back += k > 0 && was[u] && !s;
            was[u] = s;
            total += s;
        }
        rising &= total >= prev_total;
        prev_total = total;
    }
    CU_ASSERT_EQUAL(back, 0);
    CU_ASSERT(rising);
    CU_ASSERT_EQUAL(prev_total, 2000); /* 100 % at the end */
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

/* Offsets name the same instant as T0; a ramp without steps rises every millisecond. */
static void test_ramp_offsets_and_smooth(void)
{
    static const char *const starts[] = {"2026-12-01T12:00:00+02:00",
                                         "2026-12-01T05:30:00.000-04:30", "2026-12-01t10:00:00z",
                                         "2026-12-01 10:00:00.999999+00:00"};
    for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
        char yaml[256];
        snprintf(yaml, sizeof(yaml),
                 "{ upstream: " CANARY ", ramp: { from: 0, to: 100, start: \"%s\", duration: "
                 "100m } }",
                 starts[i]);
        struct lk_instance *in = lk_instance_or_report(plugin, yaml);
        CU_ASSERT_FATAL(in != NULL);
        uint64_t t0 = T0 + (i == 3 ? 999 : 0);
        clock_at(t0 - 1000);
        CU_ASSERT_EQUAL(lk_gauge(in, "percent_bp"), 0);
        clock_at(t0);
        CU_ASSERT_EQUAL(lk_gauge(in, "percent_bp"), 0);
        clock_at(t0 + 1000); /* 1 s of 6000 s: 10000 / 6000 bp */
        CU_ASSERT_EQUAL(lk_gauge(in, "percent_bp"), 1);
        clock_at(t0 + 25 * MIN_MS);
        CU_ASSERT_EQUAL(lk_gauge(in, "percent_bp"), 2500);
        clock_at(t0 + 50 * MIN_MS);
        CU_ASSERT_EQUAL(lk_gauge(in, "percent_bp"), 5000);
        clock_at(t0 + 100 * MIN_MS);
        CU_ASSERT_EQUAL(lk_gauge(in, "percent_bp"), 10000);
        lk_instance_free(in);
    }

    /* A ramp down (a planned wind-down): from 50 to 10 in 4 steps over 40 minutes. */
    struct lk_instance *in =
        lk_instance_or_report(plugin, "{ upstream: " CANARY ", ramp: { from: 50, to: 10, start: "
                                      "\"2026-12-01T10:00:00Z\", duration: 40m, steps: 4 } }");
    CU_ASSERT_FATAL(in != NULL);
    static const int levels[] = {5000, 4000, 3000, 2000, 1000};
    for (int k = 0; k <= 4; k++) {
        clock_at(T0 + (uint64_t)k * 10 * MIN_MS);
        CU_ASSERT_EQUAL(lk_gauge(in, "percent_bp"), levels[k]);
    }
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static void test_fixed_percent_gauge(void)
{
    struct lk_instance *in =
        lk_instance_or_report(plugin, "{ upstream: " CANARY ", percent: 12.5 }");
    CU_ASSERT_FATAL(in != NULL);
    CU_ASSERT_EQUAL(lk_gauge(in, "percent"), 12); /* set by worker_init, before any request */
    CU_ASSERT_EQUAL(lk_gauge(in, "percent_bp"), 1250);
    /* and again every second, without traffic: after a reload, the configuration being replaced
     * may still set the gauges of the same instance name while it drains */
    CU_ASSERT_EQUAL(lk_advance(1000), 1);
    CU_ASSERT_EQUAL(lk_advance(3000), 3);
    CU_ASSERT_EQUAL(lk_gauge(in, "percent_bp"), 1250);
    lk_instance_free(in);
}

/* ---- overrides, fallback ----------------------------------------------------------------------
 */

/* The side of a request with the override header and/or cookie (NULL: not sent). */
static int forced(struct lk_instance *in, const char *header, const char *cookie)
{
    struct lk_req *r = request("/api?uid=7");
    if (header)
        lk_req_set_header(r, "X-Canary-Force", header);
    if (cookie) {
        char c[64];
        snprintf(c, sizeof(c), "a=b; canary=%s", cookie);
        lk_req_set_header(r, "Cookie", c);
    }
    int s = side(in, r);
    lk_req_free(r);
    return s;
}

static void test_override_both_ways(void)
{
    const char *ov = ", key: { from: arg, name: uid }, "
                     "override: { header: X-Canary-Force, cookie: canary } }";
    char yaml[256];
    snprintf(yaml, sizeof(yaml), "{ upstream: " CANARY ", percent: 0%s", ov);
    struct lk_instance *none = lk_instance_or_report(plugin, yaml);
    snprintf(yaml, sizeof(yaml), "{ upstream: " CANARY ", percent: 100%s", ov);
    struct lk_instance *all = lk_instance_or_report(plugin, yaml);
    CU_ASSERT_FATAL(none && all);

    CU_ASSERT_EQUAL(forced(none, NULL, NULL), 0);
    CU_ASSERT_EQUAL(forced(none, "canary", NULL), 1);
    CU_ASSERT_EQUAL(forced(none, "1", NULL), 1);
    CU_ASSERT_EQUAL(forced(none, "Canary", NULL), 1);
    CU_ASSERT_EQUAL(forced(none, NULL, "canary"), 1);
    CU_ASSERT_EQUAL(forced(none, NULL, "1"), 1);
    CU_ASSERT_EQUAL(forced(none, "yes-please", NULL), 0); /* not a known value: the usual choice */

    CU_ASSERT_EQUAL(forced(all, NULL, NULL), 1);
    CU_ASSERT_EQUAL(forced(all, "stable", NULL), 0);
    CU_ASSERT_EQUAL(forced(all, "0", NULL), 0);
    CU_ASSERT_EQUAL(forced(all, NULL, "stable"), 0);
    CU_ASSERT_EQUAL(forced(all, NULL, "0"), 0);
    CU_ASSERT_EQUAL(forced(all, "stable", "canary"), 0); /* the header decides first */
    CU_ASSERT_EQUAL(forced(all, "junk", "stable"), 0);   /* ... unless it says nothing known */

    /* Counted as they happen: no flush to wait for. */
    CU_ASSERT_EQUAL(lk_metric(none, "forced"), 5);
    CU_ASSERT_EQUAL(lk_metric(none, "canary"), 5);
    CU_ASSERT_EQUAL(lk_metric(none, "stable"), 2);
    CU_ASSERT_EQUAL(lk_metric(all, "forced"), 6);
    CU_ASSERT_EQUAL(lk_metric(all, "stable"), 6);
    CU_ASSERT_EQUAL(lk_metric(all, "canary"), 1);
    lk_instance_free(none);
    lk_instance_free(all);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static void test_fallback_when_canary_unhealthy(void)
{
    struct lk_instance *fb =
        lk_instance_or_report(plugin, "{ upstream: " CANARY ", percent: 100, upstream_fallback: "
                                      "true, override: { header: X-Canary-Force } }");
    struct lk_instance *plain =
        lk_instance_or_report(plugin, "{ upstream: " CANARY ", percent: 100 }");
    CU_ASSERT_FATAL(fb && plain);

    CU_ASSERT_EQUAL(user_side(fb, "a"), 1);
    lk_set_upstream_healthy(CANARY, 0);
    CU_ASSERT_EQUAL(user_side(fb, "a"), 0);
    CU_ASSERT_EQUAL(forced(fb, "canary", NULL), 0); /* forced users are served too */
    CU_ASSERT_EQUAL(user_side(plain, "a"), 1);      /* without upstream_fallback: the canary */
    lk_set_upstream_healthy(CANARY, 2);
    CU_ASSERT_EQUAL(user_side(fb, "a"), 1);

    CU_ASSERT_EQUAL(lk_metric(fb, "fallback"), 2);
    CU_ASSERT_EQUAL(lk_metric(fb, "canary"), 2);
    CU_ASSERT_EQUAL(lk_metric(fb, "stable"), 2);
    CU_ASSERT_EQUAL(lk_metric(plain, "fallback"), 0);
    lk_set_upstream_healthy(CANARY, 1);
    lk_instance_free(fb);
    lk_instance_free(plain);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

/* ---- keys -------------------------------------------------------------------------------------
 */

/* Users 0..n-1 sent with the key in a header, a cookie, or as the consumer go where the same
 * users sent as ?uid= go (the bucket depends on the key's value only). */
static void test_key_sources(void)
{
    struct lk_instance *by_arg = lk_instance_or_report(
        plugin, "{ upstream: " CANARY ", percent: 50, key: { from: arg, name: uid } }");
    struct lk_instance *by_header = lk_instance_or_report(
        plugin, "{ upstream: " CANARY ", percent: 50, key: { from: header, name: X-User } }");
    struct lk_instance *by_cookie = lk_instance_or_report(
        plugin, "{ upstream: " CANARY ", percent: 50, key: { from: cookie, name: sid } }");
    struct lk_instance *by_consumer = lk_instance_or_report(
        plugin, "{ upstream: " CANARY ", percent: 50, key: { from: consumer } }");
    struct lk_instance *by_ip =
        lk_instance_or_report(plugin, "{ upstream: " CANARY ", percent: 50 }");
    char err[256];
    struct lk_plugin *setter = lk_plugin_from_descriptor(&setter_desc, err, sizeof(err));
    struct lk_instance *set_consumer =
        setter ? lk_instance_new(setter, NULL, err, sizeof(err)) : NULL;
    CU_ASSERT_FATAL(by_arg && by_header && by_cookie && by_consumer && by_ip && set_consumer);

    int agree = 1, canaries = 0;
    for (int u = 0; u < 300; u++) {
        char key[32], cookie[48];
        snprintf(key, sizeof(key), "10.0.%d.%d", u / 250, u % 250);
        snprintf(cookie, sizeof(cookie), "sid=%s", key);
        int want = user_side(by_arg, key);
        canaries += want == 1;

        struct lk_req *r = request("/");
        lk_req_set_header(r, "X-User", key);
        agree &= side(by_header, r) == want;
        lk_req_free(r);

        r = request("/");
        lk_req_set_header(r, "Cookie", cookie);
        agree &= side(by_cookie, r) == want;
        lk_req_free(r);

        r = request("/");
        lk_req_set_header(r, "X-Test-Consumer", key);
        CU_ASSERT_EQUAL(lk_run(set_consumer, r, LINTEL_PHASE_ACCESS), LINTEL_CONTINUE);
        agree &= side(by_consumer, r) == want;
        lk_req_free(r);

        r = request("/");
        lk_req_set_client(r, key);
        agree &= side(by_ip, r) == want;
        lk_req_free(r);

        /* No key (no uid, an empty one, no consumer): the client address is the key. */
        r = request("/api");
        lk_req_set_client(r, key);
        agree &= side(by_arg, r) == want;
        lk_req_free(r);
        r = request("/api?uid=");
        lk_req_set_client(r, key);
        agree &= side(by_arg, r) == want;
        lk_req_free(r);
        r = request("/");
        lk_req_set_client(r, key);
        CU_ASSERT_EQUAL(lk_run(set_consumer, r, LINTEL_PHASE_ACCESS), LINTEL_CONTINUE);
        agree &= side(by_consumer, r) == want;
        lk_req_free(r);
    }
    CU_ASSERT(agree);
    CU_ASSERT(canaries > 100 && canaries < 200);
    CU_ASSERT_EQUAL(lk_metric(by_arg, "no_key"), 600);
    CU_ASSERT_EQUAL(lk_metric(by_consumer, "no_key"), 300);
    CU_ASSERT_EQUAL(lk_metric(by_ip, "no_key"), 0);

    lk_instance_free(by_arg);
    lk_instance_free(by_header);
    lk_instance_free(by_cookie);
    lk_instance_free(by_consumer);
    lk_instance_free(by_ip);
    lk_instance_free(set_consumer);
    lk_plugin_free(setter);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

/* A seed picks another set of users for the same percentage. */
static void test_seed(void)
{
    struct lk_instance *plain = lk_instance_or_report(
        plugin, "{ upstream: " CANARY ", percent: 20, key: { from: arg, name: uid } }");
    struct lk_instance *seeded = lk_instance_or_report(
        plugin,
        "{ upstream: " CANARY ", percent: 20, key: { from: arg, name: uid }, seed: checkout-v2 }");
    CU_ASSERT_FATAL(plain && seeded);
    int a = 0, b = 0, both = 0;
    for (int u = 0; u < USERS; u++) {
        int x = user_n(plain, u), y = user_n(seeded, u);
        CU_ASSERT_FATAL(x >= 0 && y >= 0);
        a += x;
        b += y;
        both += x && y;
    }
    CU_ASSERT(near(a, 2000));
    CU_ASSERT(near(b, 2000));
    CU_ASSERT(near(both, 400)); /* independent choices: 20 % of 20 % */
    lk_instance_free(plain);
    lk_instance_free(seeded);
}

/* ---- the mark, errors -------------------------------------------------------------------------
 */

static void test_mark(void)
{
    struct lk_instance *deflt =
        lk_instance_or_report(plugin, "{ upstream: " CANARY ", percent: 0 }");
    struct lk_instance *custom =
        lk_instance_or_report(plugin, "{ upstream: " CANARY ", percent: 100, mark: { header: "
                                      "X-Release, value: \"canary v2\" } }");
    struct lk_instance *off =
        lk_instance_or_report(plugin, "{ upstream: " CANARY ", percent: 100, mark: false }");
    CU_ASSERT_FATAL(deflt && custom && off);

    /* A client cannot pass as canary traffic to stable. */
    struct lk_req *r = request("/");
    lk_req_set_header(r, "X-Canary", "1");
    CU_ASSERT_EQUAL(side(deflt, r), 0);
    lk_req_free(r);

    r = request("/");
    lk_req_set_header(r, "X-Release", "forged");
    CU_ASSERT_EQUAL(lk_run(custom, r, LINTEL_PHASE_BALANCE), LINTEL_CONTINUE);
    CU_ASSERT_STRING_EQUAL(lk_upstream(r), CANARY);
    CU_ASSERT_STRING_EQUAL(lk_req_header(r, "X-Release"), "canary v2");
    CU_ASSERT_PTR_NULL(lk_req_header(r, "X-Canary"));
    lk_req_free(r);

    r = request("/");
    lk_req_set_header(r, "X-Canary", "client's own");
    CU_ASSERT_EQUAL(lk_run(off, r, LINTEL_PHASE_BALANCE), LINTEL_CONTINUE);
    CU_ASSERT_STRING_EQUAL(lk_upstream(r), CANARY);
    CU_ASSERT_STRING_EQUAL(lk_req_header(r, "X-Canary"), "client's own"); /* left alone */
    lk_req_free(r);

    lk_instance_free(deflt);
    lk_instance_free(custom);
    lk_instance_free(off);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

/* An upstream the configuration does not have: stable serves, logged once. */
static void test_config_errors(void)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {NULL, "1:1: required"},
        {"[1]", "1:1: must be a map"},
        {"{ percent: 10 }", "1:1: upstream: required"},
        {"{ upstream: [a], percent: 10 }", "1:13: upstream: must be an upstream name"},
        {"{ upstream: nowhere, percent: 10 }",
         "1:13: upstream: no upstream named \"nowhere\" in this configuration"},
        {"{ upstream: c }", "1:1: percent or ramp: required"},
        {"{ upstream: c, percent: 10, ramp: { from: 1 } }",
         "1:35: ramp: give percent or ramp, not both"},
        {"{ upstream: c, percent: 101 }",
         "1:25: percent: must be a percentage from 0 to 100 (at most two decimals)"},
        {"{ upstream: c, percent: 1.234 }",
         "1:25: percent: must be a percentage from 0 to 100 (at most two decimals)"},
        {"{ upstream: c, percent: -1 }",
         "1:25: percent: must be a percentage from 0 to 100 (at most two decimals)"},
        {"{ upstream: c, percent: 10, weight: 3 }", "1:37: weight: unknown key"},
        {"{ upstream: c, ramp: 5 }", "1:22: ramp: must be a map"},
        {"{ upstream: c, ramp: { from: 1, to: 2, duration: 1h } }", "1:22: ramp: start: required"},
        {"{ upstream: c, ramp: { from: 1, to: 2, start: \"2026-13-01T00:00:00Z\", duration: 1h } }",
         "1:47: ramp.start: must be an RFC 3339 time like 2026-12-01T10:00:00Z: no such date or "
         "time"},
        {"{ upstream: c, ramp: { from: 1, to: 2, start: \"2026-02-29T00:00:00Z\", duration: 1h } }",
         "1:47: ramp.start: must be an RFC 3339 time like 2026-12-01T10:00:00Z: no such date or "
         "time"},
        {"{ upstream: c, ramp: { from: 1, to: 2, start: \"2026-12-01T10:00:00\", duration: 1h } }",
         "1:47: ramp.start: must be an RFC 3339 time like 2026-12-01T10:00:00Z: needs Z or an "
         "offset (+hh:mm, -hh:mm)"},
        {"{ upstream: c, ramp: { from: 1, to: 2, start: \"2026-12-01\", duration: 1h } }",
         "1:47: ramp.start: must be an RFC 3339 time like 2026-12-01T10:00:00Z: expected "
         "YYYY-MM-DDTHH:MM:SS and Z or an offset"},
        {"{ upstream: c, ramp: { from: 1, to: 2, start: \"2026-12-01T24:00:00Z\", duration: 1h } }",
         "1:47: ramp.start: must be an RFC 3339 time like 2026-12-01T10:00:00Z: no such date or "
         "time"},
        {"{ upstream: c, ramp: { from: 1, to: 2, start: \"1970-01-01T00:30:00+01:00\", duration: "
         "1h } }",
         "1:47: ramp.start: must be an RFC 3339 time like 2026-12-01T10:00:00Z: before 1970"},
        {"{ upstream: c, ramp: { from: 1, to: 2, start: \"2026-12-01T10:00:00Z\", duration: 0 } }",
         "1:81: ramp.duration: must be a duration from 1ms to 8760h"},
        {"{ upstream: c, ramp: { from: 1, to: 2, start: \"2026-12-01T10:00:00Z\", duration: 1h, "
         "steps: 0 } }",
         "1:92: ramp.steps: must be an integer from 1 to 10000"},
        {"{ upstream: c, ramp: { from: 1, to: 2, start: \"2026-12-01T10:00:00Z\", duration: 5ms, "
         "steps: 6 } }",
         "1:93: ramp.steps: must not exceed the duration in milliseconds"},
        {"{ upstream: c, ramp: { from: 1, to: 200, start: \"2026-12-01T10:00:00Z\", duration: 1h } "
         "}",
         "1:37: ramp.to: must be a percentage from 0 to 100 (at most two decimals)"},
        {"{ upstream: c, percent: 1, key: { from: body } }",
         "1:41: key.from: must be ip, consumer, arg, header or cookie"},
        {"{ upstream: c, percent: 1, key: { from: arg } }",
         "1:33: key: name: required with from: arg"},
        {"{ upstream: c, percent: 1, key: { from: ip, name: x } }",
         "1:51: key.name: only with from: arg, header or cookie"},
        {"{ upstream: c, percent: 1, key: { from: header, name: \"a b\" } }",
         "1:55: key.name: must be a header name"},
        {"{ upstream: c, percent: 1, seed: \"\" }", "1:34: seed: must be a non-empty string"},
        {"{ upstream: c, percent: 1, override: {} }", "1:38: override: header or cookie: required"},
        {"{ upstream: c, percent: 1, override: { header: \"X:Y\" } }",
         "1:48: override.header: must be a header name"},
        {"{ upstream: c, percent: 1, upstream_fallback: maybe }",
         "1:47: upstream_fallback: must be true or false"},
        {"{ upstream: c, percent: 1, mark: sometimes }",
         "1:34: mark: must be true, false or { header, value }"},
        {"{ upstream: c, percent: 1, mark: { value: \" 1\" } }",
         "1:43: mark.value: must be a header value (visible characters)"},
        {"{ upstream: c, percent: 1, mark: { name: X } }", "1:42: mark.name: unknown key"},
    };
    lk_declare_upstream("c"); /* "nowhere" stays undeclared */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = lk_config_error(plugin, cases[i].yaml);
        if (strcmp(got, cases[i].want) != 0)
            fprintf(stderr, "\n%s\n  got:  %s\n  want: %s\n",
                    cases[i].yaml ? cases[i].yaml : "(none)", got, cases[i].want);
        CU_ASSERT_STRING_EQUAL(got, cases[i].want);
    }
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static CU_TestInfo canary_tests[] = {
    {"over 10k users the split is within 1 % of the percentage", test_split_within_one_percent},
    {"each user sticky across 100 requests and a new instance",
     test_sticky_across_requests_and_instances},
    {"raising 10 -> 30 % moves only stable users", test_raising_moves_only_stable_users},
    {"ramp: steps on the faked clock, no user goes back", test_ramp_steps_on_the_clock},
    {"ramp: UTC offsets, smooth, downwards", test_ramp_offsets_and_smooth},
    {"fixed percent: the gauges from the start, then every second", test_fixed_percent_gauge},
    {"override header and cookie, both ways", test_override_both_ways},
    {"upstream_fallback: no healthy canary target -> stable", test_fallback_when_canary_unhealthy},
    {"key from arg, header, cookie, consumer, ip; missing -> ip", test_key_sources},
    {"seed: another set of users", test_seed},
    {"mark: set on canary, removed on stable, custom, off", test_mark},
    {"configuration errors", test_config_errors},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"canary", suite_init, suite_clean, NULL, NULL, canary_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return lk_test_run(suites);
}
