/* Tests abtest through the SDK test kit, loading the built .so as lintel would: each strategy
 * with uids chosen to hit it, the hash buckets pinned to values computed outside the plugin,
 * the three kinds of target, X-AB-Group, the on_error replay (statuses, upstream failures,
 * bodies, methods), then the configuration errors. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#include <lintel/testkit.h>

static struct lk_plugin *plugin;

/* The upstreams of the fake configuration: the route's, and a branch's. */
static int suite_init(void)
{
    char err[256];
    plugin = lk_plugin_load(ABTEST_SO, err, sizeof(err));
    if (!plugin)
        fprintf(stderr, "%s\n", err);
    lk_declare_upstream("main");
    lk_declare_upstream("v2");
    return plugin ? 0 : -1;
}

static int suite_clean(void)
{
    lk_plugin_free(plugin);
    return 0;
}

static struct lk_instance *instance(const char *yaml)
{
    char err[256];
    struct lk_instance *in = lk_instance_new(plugin, yaml, err, sizeof(err));
    if (!in)
        fprintf(stderr, "config %s: %s\n", yaml, err);
    return in;
}

/* Creates an instance that must fail and returns the error text. */
static const char *config_error(const char *yaml)
{
    static char err[256];
    struct lk_instance *in = lk_instance_new(plugin, yaml, err, sizeof(err));
    if (in) {
        lk_instance_free(in);
        return "(created)";
    }
    return err;
}

static int str_eq(const char *got, const char *want)
{
    if ((!got && !want) || (got && want && strcmp(got, want) == 0))
        return 1;
    fprintf(stderr, "got \"%s\", want \"%s\"\n", got ? got : "(none)", want ? want : "(none)");
    return 0;
}

/* The example (docs/plugins/abtest.md). */
#define EXAMPLE                                                                                    \
    "uid: { from: arg, name: uid }\n"                                                              \
    "rules:\n"                                                                                     \
    "  - { strategy: whitelist, uids: [\"42\", \"1001\"], group: white,\n"                         \
    "      to: { path: /ab/white } }\n"                                                            \
    "  - { strategy: tail_digit, digits: [1, 3, 5, 7, 9], to: { path: /ab1 } }\n"                  \
    "  - { strategy: tail_digit, digits: [0, 2, 4, 6, 8], to: { upstream: v2 } }\n"                \
    "  - { strategy: hash, buckets: \"0-19\", to: { path: /ab3 } }\n"                              \
    "on_error: [500, 502, 503, 504]\n"                                                             \
    "expose_group: true\n"

/* GET target on the route "main", through REWRITE, ACCESS and BALANCE. */
static struct lk_req *request(struct lk_instance *in, const char *method, const char *target,
                              enum lintel_result want)
{
    struct lk_req *r = lk_req_new(method, target);
    lk_req_set_upstream(r, "main");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), want);
    if (want == LINTEL_CONTINUE) {
        CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_CONTINUE);
        CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_BALANCE), LINTEL_CONTINUE);
    }
    return r;
}

/* ---- strategies --------------------------------------------------------------------------- */

static void test_first_match_wins(void)
{
    struct lk_instance *in = instance(EXAMPLE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    /* 1001 ends with an odd digit too: the whitelist comes first. */
    static const struct {
        const char *target, *path, *upstream, *group;
    } cases[] = {
        {"/s?uid=42", "/ab/white", "main", "white"},
        {"/s?uid=1001", "/ab/white", "main", "white"},
        {"/s?uid=7", "/ab1", "main", "1"},
        {"/s?x=1&uid=10423", "/ab1", "main", "1"},
        {"/s?uid=8", "/s", "v2", "2"},
        {"/s?uid=420", "/s", "v2", "2"},
        {"/s?uid=trent", "/ab3", "main", "3"},   /* bucket 0 */
        {"/s?uid=user42a", "/ab3", "main", "3"}, /* bucket 19: the range includes its end */
        {"/s?uid=alice", "/s", "main", NULL},    /* bucket 83: no rule */
        {"/s?uid=", "/s", "main", NULL},         /* empty: no uid */
        {"/s?user=42", "/s", "main", NULL},      /* no uid */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lk_req *r = request(in, "GET", cases[i].target, LINTEL_CONTINUE);
        lk_req_set_response(r, 200, "{}");
        CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
        if (!str_eq(lk_req_path(r), cases[i].path) || !str_eq(lk_upstream(r), cases[i].upstream) ||
            !str_eq(lk_req_header(r, "X-AB-Group"), cases[i].group) ||
            !str_eq(lk_resp_header(r, "X-AB-Group"), cases[i].group))
            CU_FAIL(cases[i].target);
        lk_req_free(r);
    }
    CU_ASSERT_EQUAL(lk_metric(in, "group:white"), 2);
    CU_ASSERT_EQUAL(lk_metric(in, "group:1"), 2);
    CU_ASSERT_EQUAL(lk_metric(in, "group:2"), 2);
    CU_ASSERT_EQUAL(lk_metric(in, "group:3"), 2);
    CU_ASSERT_EQUAL(lk_metric(in, "no_match"), 1);
    CU_ASSERT_EQUAL(lk_metric(in, "no_uid"), 2);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
}

/* FNV-1a 64 of salt + uid, modulo 100, computed independently (Python) when the plugin was
 * written: these must never change, or users would move between groups on an upgrade. */
static const struct {
    const char *uid;
    unsigned bucket, salted; /* without salt, with salt "exp-2026" */
} pinned[] = {
    {"alice", 83, 91}, {"bob", 92, 60},     {"carol", 62, 6},    {"dave", 67, 7},
    {"x", 71, 7},      {"12345", 4, 4},     {"user42a", 19, 79}, {"trent", 0, 16},
    {"eve", 41, 41},   {"mallory", 45, 49}, {"u-1000", 62, 98},  {"zed", 52, 96},
};

/* The path a hash rule with buckets (YAML text) sends uid to, with the given salt (NULL: none). */
static const char *hash_route(const char *salt, const char *buckets, const char *uid, char *out,
                              size_t outlen)
{
    char yaml[512], target[64], salt_key[64] = "";
    if (salt)
        snprintf(salt_key, sizeof(salt_key), "salt: \"%s\", ", salt);
    snprintf(yaml, sizeof(yaml),
             "{ uid: { from: arg, name: uid }, %srules: [ { strategy: hash, buckets: %s, "
             "to: { path: /hit } } ] }",
             salt_key, buckets);
    snprintf(target, sizeof(target), "/h?uid=%s", uid);
    snprintf(out, outlen, "(no instance)");
    struct lk_instance *in = instance(yaml);
    if (!in)
        return out;
    struct lk_req *r = request(in, "GET", target, LINTEL_CONTINUE);
    snprintf(out, outlen, "%s", lk_req_path(r));
    lk_req_free(r);
    lk_instance_free(in);
    return out;
}

/* Whether uid lands in bucket b and no other: a rule for b alone takes it, a rule for every
 * other bucket does not. */
static int in_bucket(const char *salt, const char *uid, unsigned b)
{
    char only[32], others[64] = "[", path[64];
    snprintf(only, sizeof(only), "\"%u\"", b);
    if (b > 0)
        snprintf(others + 1, sizeof(others) - 1, "\"0-%u\"%s", b - 1, b < 99 ? ", " : "");
    if (b < 99)
        snprintf(others + strlen(others), sizeof(others) - strlen(others), "\"%u-99\"", b + 1);
    strcat(others, "]");
    int ok = strcmp(hash_route(salt, only, uid, path, sizeof(path)), "/hit") == 0 &&
             strcmp(hash_route(salt, others, uid, path, sizeof(path)), "/h") == 0;
    if (!ok)
        fprintf(stderr, "uid %s (salt %s) is not alone in bucket %u\n", uid, salt ? salt : "-", b);
    return ok;
}

static void test_hash_buckets_are_pinned(void)
{
    for (size_t i = 0; i < sizeof(pinned) / sizeof(pinned[0]); i++) {
        CU_ASSERT(in_bucket(NULL, pinned[i].uid, pinned[i].bucket));
        CU_ASSERT(in_bucket("exp-2026", pinned[i].uid, pinned[i].salted));
    }
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static void test_bucket_lists_and_single_buckets(void)
{
    struct lk_instance *in =
        instance("{ uid: { from: arg, name: u }, rules: [ { strategy: hash, buckets: "
                 "[\"0-9\", \"60-62\", \"92\"], to: { path: /a } } ] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    static const struct {
        const char *uid;
        int hit;
    } cases[] = {{"12345", 1}, {"carol", 1}, {"u-1000", 1}, {"bob", 1},
                 {"alice", 0}, {"dave", 0},  {"eve", 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char target[64];
        snprintf(target, sizeof(target), "/p?u=%s", cases[i].uid);
        struct lk_req *r = request(in, "GET", target, LINTEL_CONTINUE);
        if (!str_eq(lk_req_path(r), cases[i].hit ? "/a" : "/p"))
            CU_FAIL(cases[i].uid);
        lk_req_free(r);
    }
    lk_instance_free(in);
}

static void test_uid_from_header_and_cookie(void)
{
    const char *rules = "rules: [ { strategy: whitelist, uids: [u7], to: { path: /w } } ] }";
    char yaml[256];
    snprintf(yaml, sizeof(yaml), "{ uid: { from: header, name: X-User }, %s", rules);
    struct lk_instance *in = instance(yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = lk_req_new("GET", "/p?uid=u7");
    lk_req_set_header(r, "x-user", "u7");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_CONTINUE);
    CU_ASSERT(str_eq(lk_req_path(r), "/w"));
    lk_req_free(r);
    r = lk_req_new("GET", "/p?uid=u7"); /* the arg is not the header */
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_CONTINUE);
    CU_ASSERT(str_eq(lk_req_path(r), "/p"));
    lk_req_free(r);
    lk_instance_free(in);

    snprintf(yaml, sizeof(yaml), "{ uid: { from: cookie, name: sid }, %s", rules);
    in = instance(yaml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    r = lk_req_new("GET", "/p");
    lk_req_set_header(r, "Cookie", "a=1; sid=u7; b=2");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_CONTINUE);
    CU_ASSERT(str_eq(lk_req_path(r), "/w"));
    lk_req_free(r);
    r = lk_req_new("GET", "/p");
    lk_req_set_header(r, "Cookie", "sid=u77");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_CONTINUE);
    CU_ASSERT(str_eq(lk_req_path(r), "/p"));
    lk_req_free(r);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

/* ---- targets ------------------------------------------------------------------------------ */

static void test_path_target_with_query(void)
{
    struct lk_instance *in =
        instance("{ uid: { from: arg, name: uid }, rules: [ { strategy: tail_digit, digits: [3], "
                 "to: { path: \"/v/b?variant=b&k=1\", upstream: v2 } } ] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = request(in, "GET", "/p/q?uid=13&variant=a", LINTEL_CONTINUE);
    CU_ASSERT(str_eq(lk_req_path(r), "/v/b"));
    CU_ASSERT(str_eq(lk_req_query(r), "variant=b&k=1&uid=13&variant=a"));
    CU_ASSERT(str_eq(lk_upstream(r), "v2"));
    /* expose_group is off: no header either way */
    lk_req_set_response(r, 200, NULL);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT_PTR_NULL(lk_req_header(r, "X-AB-Group"));
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "X-AB-Group"));
    lk_req_free(r);
    lk_instance_free(in);
}

static void test_redirect(void)
{
    struct lk_instance *in = instance(
        "{ uid: { from: arg, name: uid }, expose_group: true, rules: [\n"
        "  { strategy: whitelist, uids: [a], to: { redirect: \"https://beta.example.com/\" } },\n"
        "  { strategy: whitelist, uids: [b], group: beta, to: { redirect: /beta, status: 307 } } "
        "] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = request(in, "GET", "/p?uid=a", LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), 302);
    CU_ASSERT(str_eq(lk_resp_header(r, "Location"), "https://beta.example.com/"));
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT(str_eq(lk_resp_header(r, "X-AB-Group"), "0"));
    lk_req_free(r);
    r = request(in, "POST", "/p?uid=b", LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), 307);
    CU_ASSERT(str_eq(lk_resp_header(r, "Location"), "/beta"));
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT(str_eq(lk_resp_header(r, "X-AB-Group"), "beta"));
    CU_ASSERT_EQUAL(lk_resent(r), 0);
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_metric(in, "group:beta"), 1);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
}

static void test_client_group_header_is_not_trusted(void)
{
    struct lk_instance *in = instance(EXAMPLE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = lk_req_new("GET", "/s?uid=alice");
    lk_req_set_header(r, "X-AB-Group", "white");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_CONTINUE);
    CU_ASSERT_PTR_NULL(lk_req_header(r, "X-AB-Group"));
    lk_req_free(r);
    r = lk_req_new("GET", "/s?uid=7");
    lk_req_set_header(r, "X-AB-Group", "white");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_CONTINUE);
    CU_ASSERT(str_eq(lk_req_header(r, "X-AB-Group"), "1"));
    lk_req_free(r);
    lk_instance_free(in);
}

static void test_unknown_upstream_is_500_logged_once(void)
{
    struct lk_instance *in =
        instance("{ uid: { from: arg, name: uid }, on_error: [500], rules: [ { strategy: "
                 "tail_digit, digits: [1], to: { upstream: nope } } ] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    lk_log_clear();
    for (int i = 0; i < 3; i++) {
        struct lk_req *r = lk_req_new("GET", "/p?uid=1");
        lk_req_set_upstream(r, "main");
        CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_ERROR);
        CU_ASSERT_EQUAL(lk_resp_status(r), 500);
        /* The 500 is the plugin's, made before BALANCE: not the branch's to replay. */
        CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
        CU_ASSERT_EQUAL(lk_resent(r), 0);
        CU_ASSERT_EQUAL(lk_resp_status(r), 500);
        lk_req_free(r);
    }
    const char *log = lk_log_lines(), *hit = strstr(log, "upstream \"nope\" is not in the "
                                                         "configuration");
    CU_ASSERT_PTR_NOT_NULL(hit);
    CU_ASSERT(hit && !strstr(hit + 1, "upstream \"nope\""));
    CU_ASSERT_EQUAL(lk_metric(in, "upstream_unknown"), 3);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_log_clear();
    lk_instance_free(in);
}

/* ---- on_error ----------------------------------------------------------------------------- */

static void test_failed_branch_path_replayed_on_original(void)
{
    struct lk_instance *in = instance(EXAMPLE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = request(in, "GET", "/s/x?uid=7&q=1", LINTEL_CONTINUE);
    CU_ASSERT(str_eq(lk_req_path(r), "/ab1"));
    lk_req_set_response(r, 503, "down");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resent(r), 1);
    CU_ASSERT(str_eq(lk_req_path(r), "/s/x"));
    CU_ASSERT(str_eq(lk_req_query(r), "uid=7&q=1"));
    CU_ASSERT(str_eq(lk_upstream(r), "main"));
    CU_ASSERT_PTR_NULL(lk_req_header(r, "X-AB-Group")); /* the original route is not the branch */
    /* The original route fails too: that answer stands (no second replay). */
    lk_req_set_response(r, 503, "also down");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resent(r), 1);
    CU_ASSERT_EQUAL(lk_resp_status(r), 503);
    CU_ASSERT(str_eq(lk_resp_header(r, "X-AB-Group"), "1"));
    lk_req_free(r);

    /* A status not in on_error is the branch's answer. */
    r = request(in, "GET", "/s?uid=7", LINTEL_CONTINUE);
    lk_req_set_response(r, 404, NULL);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resent(r), 0);
    CU_ASSERT_EQUAL(lk_resp_status(r), 404);
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_metric(in, "replayed"), 1);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
}

static void test_failed_branch_upstream_replayed_on_original(void)
{
    struct lk_instance *in = instance(EXAMPLE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    static const enum lintel_upstream_failure failures[] = {
        LINTEL_UPSTREAM_CONNECT, LINTEL_UPSTREAM_TIMEOUT, LINTEL_UPSTREAM_NO_HEALTHY,
        LINTEL_UPSTREAM_ERROR};
    for (size_t i = 0; i < 4; i++) {
        struct lk_req *r = request(in, "HEAD", "/s?uid=8", LINTEL_CONTINUE);
        CU_ASSERT(str_eq(lk_upstream(r), "v2"));
        lk_req_set_upstream_failure(r, failures[i]);
        CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
        CU_ASSERT_EQUAL(lk_resent(r), 1);
        CU_ASSERT(str_eq(lk_upstream(r), "main"));
        CU_ASSERT(str_eq(lk_req_path(r), "/s"));
        lk_req_set_response(r, 200, NULL);
        CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
        CU_ASSERT_EQUAL(lk_resp_status(r), 200);
        CU_ASSERT(str_eq(lk_resp_header(r, "X-AB-Group"), "2"));
        lk_req_free(r);
    }
    CU_ASSERT_EQUAL(lk_metric(in, "replayed"), 4);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
}

/* An upstream failure is replayed even with on_error: [] (no status listed). */
static void test_empty_on_error_still_replays_failures(void)
{
    struct lk_instance *in =
        instance("{ uid: { from: arg, name: uid }, on_error: [], rules: [ { strategy: "
                 "tail_digit, digits: [1], to: { path: /b } } ] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = request(in, "GET", "/a?uid=1", LINTEL_CONTINUE);
    lk_req_set_response(r, 500, NULL);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resent(r), 0);
    lk_req_free(r);
    r = request(in, "GET", "/a?uid=1", LINTEL_CONTINUE);
    lk_req_set_upstream_failure(r, LINTEL_UPSTREAM_CONNECT);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resent(r), 1);
    CU_ASSERT(str_eq(lk_req_path(r), "/a"));
    lk_req_free(r);
    lk_instance_free(in);
}

/* Without on_error nothing is replayed. */
static void test_no_on_error_no_replay(void)
{
    struct lk_instance *in = instance("{ uid: { from: arg, name: uid }, rules: [ { strategy: "
                                      "tail_digit, digits: [1], to: { path: /b } } ] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = request(in, "GET", "/a?uid=1", LINTEL_CONTINUE);
    lk_req_set_upstream_failure(r, LINTEL_UPSTREAM_CONNECT);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resent(r), 0);
    CU_ASSERT_EQUAL(lk_resp_status(r), 502);
    lk_req_free(r);
    lk_instance_free(in);
}

static void test_non_idempotent_not_replayed(void)
{
    struct lk_instance *in = instance(EXAMPLE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    static const char *const methods[] = {"POST", "PATCH"};
    for (size_t i = 0; i < 2; i++) {
        struct lk_req *r = request(in, methods[i], "/s?uid=7", LINTEL_CONTINUE);
        lk_req_set_response(r, 503, NULL);
        CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
        CU_ASSERT_EQUAL(lk_resent(r), 0);
        CU_ASSERT_EQUAL(lk_resp_status(r), 503);
        CU_ASSERT(str_eq(lk_resp_header(r, "X-AB-Group"), "1"));
        lk_req_free(r);
    }
    CU_ASSERT_EQUAL(lk_metric(in, "replay_skipped"), 2);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
}

/* A response made by a plugin before BALANCE (an ACCESS plugin's 503) is never replayed: the
 * replay would skip that plugin. */
static void test_response_before_balance_not_replayed(void)
{
    struct lk_instance *in = instance(EXAMPLE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = lk_req_new("GET", "/s?uid=7");
    lk_req_set_upstream(r, "main");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_CONTINUE);
    lk_req_set_response(r, 503, NULL);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resent(r), 0);
    lk_req_free(r);
    lk_instance_free(in);
}

static const char body[] = "{\"put\":true}";

/* PUT with a body of the given Content-Length (NULL: chunked) through REWRITE..BALANCE. */
static struct lk_req *put(struct lk_instance *in, const char *content_length, int arrived)
{
    struct lk_req *r = lk_req_new("PUT", "/s?uid=7");
    lk_req_set_upstream(r, "main");
    if (content_length)
        lk_req_set_header(r, "Content-Length", content_length);
    else
        lk_req_set_header(r, "Transfer-Encoding", "chunked");
    lk_req_set_body(r, body, sizeof(body) - 1, arrived);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_REWRITE), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_BALANCE), LINTEL_CONTINUE);
    lk_req_set_response(r, 502, NULL);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
    return r;
}

static void test_bodies_kept_for_replay_up_to_the_cap(void)
{
    char len[16];
    snprintf(len, sizeof(len), "%zu", sizeof(body) - 1);
    struct lk_instance *in = instance(EXAMPLE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    for (int arrived = 0; arrived < 2; arrived++) { /* body already in, or read while paused */
        struct lk_req *r = put(in, len, arrived);
        CU_ASSERT_EQUAL(lk_resent(r), 1);
        CU_ASSERT(str_eq(lk_req_path(r), "/s"));
        lk_req_free(r);
    }
    struct lk_req *r = put(in, NULL, 1); /* chunked: length unknown, not kept */
    CU_ASSERT_EQUAL(lk_resent(r), 0);
    CU_ASSERT_EQUAL(lk_resp_status(r), 502);
    lk_req_free(r);
    lk_instance_free(in);

    /* Over max_replay_body: the request goes on (no 413), without replay. */
    in = instance(EXAMPLE "max_replay_body: 8\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    r = put(in, len, 1);
    CU_ASSERT_EQUAL(lk_resent(r), 0);
    CU_ASSERT_EQUAL(lk_resp_status(r), 502);
    CU_ASSERT_EQUAL(lk_metric(in, "replay_skipped"), 1);
    lk_req_free(r);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

/* ---- configuration errors ----------------------------------------------------------------- */

#define UID "uid: { from: arg, name: uid }, "
#define TO "to: { path: /b }"

static void test_config_errors(void)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"[]", "must be a map"},
        {"{ rules: [] }", "uid: required"},
        {"{ uid: { from: query, name: u }, rules: [] }", "uid.from: must be arg, header or cookie"},
        {"{ uid: { from: arg }, rules: [] }", "uid: name: required"},
        {"{ uid: { from: header, name: \"X User\" }, rules: [] }", "uid.name: must be a header"},
        {"{ uid: { from: arg, name: u, x: 1 }, rules: [] }", "uid.x: unknown key"},
        {"{ " UID "}", "rules: required"},
        {"{ " UID "rules: [] }", "rules: must not be empty"},
        {"{ " UID "rules: [ { to: { path: /b } } ] }", "rules[0]: strategy: required"},
        {"{ " UID "rules: [ { strategy: random, " TO " } ] }",
         "rules[0].strategy: must be whitelist, tail_digit or hash"},
        {"{ " UID "rules: [ { strategy: whitelist, " TO " } ] }",
         "rules[0]: uids: required with strategy whitelist"},
        {"{ " UID "rules: [ { strategy: whitelist, uids: [a], digits: [1], " TO " } ] }",
         "rules[0].digits: only for strategy tail_digit"},
        {"{ " UID "rules: [ { strategy: tail_digit, digits: [10], " TO " } ] }",
         "rules[0].digits[0]: must be a digit 0..9"},
        {"{ " UID "rules: [ { strategy: hash, buckets: \"0-100\", " TO " } ] }",
         "rules[0].buckets: must be a bucket range \"LO-HI\" within 0-99"},
        {"{ " UID "rules: [ { strategy: hash, buckets: \"20-10\", " TO " } ] }",
         "rules[0].buckets: range starts after it ends"},
        {"{ " UID "rules: [ { strategy: hash, buckets: [\"1-2\", x], " TO " } ] }",
         "rules[0].buckets[1]: must be a bucket range"},
        {"{ " UID "rules: [ { strategy: hash, buckets: \"1\" } ] }", "rules[0]: to: required"},
        {"{ " UID "rules: [ { strategy: hash, buckets: \"1\", to: {} } ] }",
         "rules[0].to: needs path, upstream or redirect"},
        {"{ " UID "rules: [ { strategy: hash, buckets: \"1\", to: { path: b } } ] }",
         "rules[0].to.path: must be a path starting with '/'"},
        {"{ " UID "rules: [ { strategy: hash, buckets: \"1\", to: { redirect: /x, path: /y } } ] "
         "}",
         "rules[0].to.path: not allowed with redirect"},
        {"{ " UID "rules: [ { strategy: hash, buckets: \"1\", to: { redirect: x.com } } ] }",
         "rules[0].to.redirect: must be an http:// or https:// URL or a path"},
        {"{ " UID "rules: [ { strategy: hash, buckets: \"1\", to: { redirect: /x, status: 301 } } "
         "] }",
         "rules[0].to.status: must be 302 or 307"},
        {"{ " UID "rules: [ { strategy: hash, buckets: \"1\", to: { path: /x, status: 302 } } ] }",
         "rules[0].to.status: only allowed with redirect"},
        {"{ " UID "rules: [ { strategy: hash, buckets: \"1\", to: { path: /x, host: y } } ] }",
         "rules[0].to.host: unknown key"},
        {"{ " UID "rules: [ { strategy: hash, buckets: \"1\", group: \"a b\", " TO " } ] }",
         "rules[0].group: must be a token"},
        {"{ " UID "on_error: [200], rules: [ { strategy: hash, buckets: \"1\", " TO " } ] }",
         "on_error[0]: must be a status 400..599"},
        {"{ " UID "on_error: 503, rules: [ { strategy: hash, buckets: \"1\", " TO " } ] }",
         "on_error: must be a list of statuses"},
        {"{ " UID "expose_group: maybe, rules: [ { strategy: hash, buckets: \"1\", " TO " } ] }",
         "expose_group: must be true or false"},
        {"{ " UID "max_replay_body: lots, rules: [ { strategy: hash, buckets: \"1\", " TO " } ] }",
         "max_replay_body: must be a size"},
        {"{ " UID "mode: x, rules: [ { strategy: hash, buckets: \"1\", " TO " } ] }",
         "mode: unknown key"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = config_error(cases[i].yaml);
        if (!strstr(got, cases[i].want)) {
            fprintf(stderr, "config %s\n  got \"%s\"\n  want \"%s\"\n", cases[i].yaml, got,
                    cases[i].want);
            CU_FAIL(cases[i].yaml);
        }
    }
    CU_ASSERT(strstr(config_error(NULL), "required") != NULL);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static CU_TestInfo tests[] = {
    {"first match wins: whitelist, tail_digit, hash, none", test_first_match_wins},
    {"hash buckets are pinned (with and without salt)", test_hash_buckets_are_pinned},
    {"bucket lists and single buckets", test_bucket_lists_and_single_buckets},
    {"uid from a header or a cookie", test_uid_from_header_and_cookie},
    {"path target with a query, and an upstream", test_path_target_with_query},
    {"redirect 302 and 307 with X-AB-Group", test_redirect},
    {"a client's X-AB-Group is not passed on", test_client_group_header_is_not_trusted},
    {"an unknown upstream is a 500, logged once", test_unknown_upstream_is_500_logged_once},
    {"on_error: a failed branch path is replayed on the original",
     test_failed_branch_path_replayed_on_original},
    {"on_error: a failed branch upstream is replayed on the original",
     test_failed_branch_upstream_replayed_on_original},
    {"on_error: []: upstream failures only", test_empty_on_error_still_replays_failures},
    {"no on_error: no replay", test_no_on_error_no_replay},
    {"POST and PATCH are not replayed", test_non_idempotent_not_replayed},
    {"a response made before BALANCE is not replayed", test_response_before_balance_not_replayed},
    {"bodies are kept for a replay up to max_replay_body",
     test_bodies_kept_for_replay_up_to_the_cap},
    {"configuration errors", test_config_errors},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"abtest", suite_init, suite_clean, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return lk_test_run(suites);
}
