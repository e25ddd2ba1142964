/* The abtest plugin through a running gateway with two origins ("o", the route's upstream, and
 * "v2", a branch's) and an upstream nobody listens on: each strategy hit by chosen uids (the
 * origins echo the request they got), hash buckets equal to an FNV-1a computed here and the same
 * after a restart, redirects, on_error replays (a branch path answering 503, a branch upstream
 * that is down or stopped, bodies, methods), an unknown upstream, the metrics, and the
 * documentation's example (valid for `lintel -t`, and answering as the page shows). The plugin
 * is build/plugins/abtest.so. */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static char plugin_dir[PATH_MAX];

static const char config[] =
    "listen: [ { address: \"127.0.0.1:%d\" } ]\n"
    "admin: { address: \"127.0.0.1:%d\" }\n"
    "workers: 2\n"
    "plugin_paths: [\"%s\"]\n"
    "upstreams:\n"
    "  o: { targets: [ { address: \"127.0.0.1:%d\" } ] }\n"
    "  v2: { targets: [ { address: \"127.0.0.1:%d\" } ], retries: 0 }\n"
    "  dead: { targets: [ { address: \"127.0.0.1:%d\" } ], retries: 0 }\n"
    "routes:\n"
    "  - name: search\n"
    "    match: { paths: [\"/search\"] }\n"
    "    upstream: o\n"
    "    plugins:\n"
    "      - name: abtest\n"
    "        instance: ab\n"
    "        config:\n"
    "          uid: { from: arg, name: uid }\n"
    "          rules:\n"
    "            - { strategy: whitelist, uids: [\"42\", \"1001\"], to: { path: /ab/white }, "
    "group: white }\n"
    "            - { strategy: tail_digit, digits: [1, 3, 5, 7, 9], to: { path: /ab1 } }\n"
    "            - { strategy: tail_digit, digits: [0, 2, 4, 6, 8], to: { upstream: v2 } }\n"
    "            - { strategy: hash, buckets: \"0-19\", to: { path: \"/ab3?model=b\" } }\n"
    "          on_error: [500, 502, 503, 504]\n"
    "          expose_group: true\n"
    "  - name: fail\n"
    "    match: { paths: [\"/fail\"] }\n"
    "    upstream: o\n"
    "    plugins:\n"
    "      - name: abtest\n"
    "        instance: fail\n"
    "        config:\n"
    "          uid: { from: header, name: X-User }\n"
    "          rules:\n"
    "            - { strategy: whitelist, uids: [s503], to: { path: /status/503 } }\n"
    "            - { strategy: whitelist, uids: [s404], to: { path: /status/404 } }\n"
    "            - { strategy: whitelist, uids: [down], to: { upstream: dead } }\n"
    "            - { strategy: whitelist, uids: [r302], to: { redirect: "
    "\"https://beta.example.com/x\" } }\n"
    "            - { strategy: whitelist, uids: [r307], group: beta, to: { redirect: /beta, "
    "status: 307 } }\n"
    "          on_error: [503]\n"
    "          max_replay_body: 1k\n"
    "          expose_group: true\n"
    "  - name: noreplay\n"
    "    match: { paths: [\"/noreplay\"] }\n"
    "    upstream: o\n"
    "    plugins:\n"
    "      - { name: abtest, instance: nr, config: { uid: { from: cookie, name: sid }, rules: [\n"
    "          { strategy: whitelist, uids: [s503], to: { path: /status/503 } } ] } }\n"
    "  - name: strip\n"
    "    match: { paths: [\"/strip\"] }\n"
    "    upstream: o\n"
    "    strip_prefix: true\n"
    "    plugins:\n"
    "      - { name: abtest, instance: st, config: { uid: { from: header, name: X-User },\n"
    "          on_error: [503], rules: [ { strategy: whitelist, uids: [s503],\n"
    "          to: { path: /status/503 } } ] } }\n"
    "%s";

/* Appended to config by test_unknown_upstream_refused: a rule naming an upstream that is not
 * declared. */
static const char typo_route[] =
    "  - name: typo\n"
    "    match: { paths: [\"/typo\"] }\n"
    "    upstream: o\n"
    "    plugins:\n"
    "      - { name: abtest, instance: typo, config: { uid: { from: arg, name: uid }, rules: [\n"
    "          { strategy: tail_digit, digits: [1], to: { upstream: v3 } } ] } }\n";

struct env {
    struct it_proc *o, *v2, *gw;
    int port, admin, dead;
    struct it_http h;
};

/* Starts (or, with the origins already up, restarts) the gateway on new ports. */
static int start_gateway(struct env *e)
{
    e->port = it_free_port();
    e->admin = it_free_port();
    const char *conf = it_temp_path("abtest.yaml");
    if (it_write_file(conf, config, e->port, e->admin, plugin_dir, e->o->port, e->v2->port, e->dead,
                      "") != 0)
        return -1;
    e->gw = it_lintel_start(conf, e->port);
    return e->gw ? 0 : -1;
}

static int start(struct env *e)
{
    memset(e, 0, sizeof(*e));
    e->o = it_origin_start("o");
    e->v2 = it_origin_start("v2");
    e->dead = it_free_port();
    if (!e->o || !e->v2 || start_gateway(e) != 0)
        return -1;
    return it_http_init(&e->h);
}

static void stop(struct env *e)
{
    it_http_free(&e->h);
}

static int call(struct env *e, const char *method, const char *path, const char *const *headers,
                const char *body, size_t body_len, struct it_response *r)
{
    struct it_http_req q = {.method = method,
                            .url = it_url(e->port, path),
                            .headers = headers,
                            .body = body,
                            .body_len = body_len};
    return it_http_do(&e->h, &q, r);
}

/* Whether the JSON the origin echoed has key equal to want (NULL: key absent). */
static bool echoed(const struct it_response *r, const char *key, const char *want)
{
    char got[512];
    int rc = it_json_get(r->body.data, key, got, sizeof(got));
    if (!want) {
        if (rc != 0)
            return true;
        fprintf(stderr, "%s: got \"%s\", want none\n", key, got);
        return false;
    }
    return it_json_eq(r->body.data, key, want);
}

/* Whether the response header name is want (NULL: absent). */
static bool header_is(const struct it_response *r, const char *name, const char *want)
{
    const char *got = it_response_header(r, name);
    if ((!got && !want) || (got && want && strcmp(got, want) == 0))
        return true;
    fprintf(stderr, "%s: got \"%s\", want \"%s\"\n", name, got ? got : "(none)",
            want ? want : "(none)");
    return false;
}

/* lintel_plugin_events_total{plugin="abtest",instance,name}: 0 when absent, -1 on error. */
static long long metric(struct env *e, const char *instance, const char *name)
{
    return it_plugin_metric(e->admin, "abtest", instance, name);
}

/* ---- strategies --------------------------------------------------------------------------- */

static void test_each_strategy(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e) == 0);
    static const struct {
        const char *path, *origin, *target, *group;
    } cases[] = {
        {"/search/x?uid=42", "o", "/ab/white?uid=42", "white"},
        {"/search/x?uid=1001", "o", "/ab/white?uid=1001", "white"}, /* odd, but whitelisted */
        {"/search/x?uid=7&q=a", "o", "/ab1?uid=7&q=a", "1"},
        {"/search/x?q=a&uid=10423", "o", "/ab1?q=a&uid=10423", "1"},
        {"/search/x?uid=8", "v2", "/search/x?uid=8", "2"},
        {"/search/x?uid=1000", "v2", "/search/x?uid=1000", "2"},
        /* FNV-1a 64 mod 100: trent 0, user42a 19 (both in "0-19"), alice 83 (no rule) */
        {"/search/x?uid=trent", "o", "/ab3?model=b&uid=trent", "3"},
        {"/search/x?uid=user42a&q=z", "o", "/ab3?model=b&uid=user42a&q=z", "3"},
        {"/search/x?uid=alice", "o", "/search/x?uid=alice", NULL},
        {"/search/x?q=1", "o", "/search/x?q=1", NULL},
    };
    const char *spoof[] = {"X-AB-Group: white", NULL}; /* never passed on as it came */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct it_response r;
        CU_ASSERT_FATAL(call(&e, "GET", cases[i].path, spoof, NULL, 0, &r) == 0);
        bool ok = r.status == 200 && echoed(&r, "origin", cases[i].origin) &&
                  echoed(&r, "target", cases[i].target) &&
                  echoed(&r, "headers.x-ab-group", cases[i].group) &&
                  header_is(&r, "X-AB-Group", cases[i].group);
        if (!ok)
            fprintf(stderr, "%s: status %d, body %s\n", cases[i].path, r.status, r.body.data);
        CU_ASSERT(ok);
        it_response_free(&r);
    }
    CU_ASSERT_EQUAL(metric(&e, "ab", "group:white"), 2);
    CU_ASSERT_EQUAL(metric(&e, "ab", "group:1"), 2);
    CU_ASSERT_EQUAL(metric(&e, "ab", "group:2"), 2);
    CU_ASSERT_EQUAL(metric(&e, "ab", "group:3"), 2);
    CU_ASSERT_EQUAL(metric(&e, "ab", "no_match"), 1);
    CU_ASSERT_EQUAL(metric(&e, "ab", "no_uid"), 1);
    stop(&e);
}

/* The hash rule takes a uid exactly when FNV-1a 64 of it (computed here, with the harness's
 * FNV) mod 100 is in 0..19; a restarted gateway puts every uid in the same group. */
static void test_hash_buckets_stable_across_restarts(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e) == 0);
    enum { N = 200 };
    static bool first[N];
    int in_group = 0;
    for (int round = 0; round < 2; round++) {
        int mismatches = 0;
        for (int i = 0; i < N; i++) {
            char uid[32], path[64];
            snprintf(uid, sizeof(uid), "user-%d-x", i * 7919); /* ends with a letter */
            snprintf(path, sizeof(path), "/search/h?uid=%s", uid);
            bool want = it_fnv1a(IT_FNV_INIT, uid, strlen(uid)) % 100 < 20;
            struct it_response r;
            CU_ASSERT_FATAL(call(&e, "GET", path, NULL, NULL, 0, &r) == 0);
            char target[128] = "";
            it_json_get(r.body.data, "target", target, sizeof(target));
            bool got = strncmp(target, "/ab3?", 5) == 0;
            const char *g = it_response_header(&r, "X-AB-Group");
            if (got != want || (got ? !g || strcmp(g, "3") != 0 : g != NULL) ||
                (round == 1 && got != first[i])) {
                if (mismatches++ < 5)
                    fprintf(stderr, "round %d uid %s: target %s, want hash group %d\n", round, uid,
                            target, want);
            }
            if (round == 0) {
                first[i] = got;
                in_group += got;
            }
            it_response_free(&r);
        }
        CU_ASSERT_EQUAL(mismatches, 0);
        if (round == 0) { /* a new gateway process, same configuration */
            it_proc_kill(e.gw);
            CU_ASSERT_FATAL(start_gateway(&e) == 0);
        }
    }
    /* About 20 % of the uids: the split is real, not all or nothing. */
    CU_ASSERT(in_group > N / 10 && in_group < N * 3 / 10);
    stop(&e);
}

static void test_redirects(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e) == 0);
    long before = it_origin_requests(e.o->port);
    struct it_response r;
    const char *u302[] = {"X-User: r302", NULL};
    CU_ASSERT_FATAL(call(&e, "GET", "/fail/a?b=1", u302, NULL, 0, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 302);
    CU_ASSERT(header_is(&r, "Location", "https://beta.example.com/x"));
    CU_ASSERT(header_is(&r, "X-AB-Group", "3"));
    it_response_free(&r);
    const char *u307[] = {"X-User: r307", NULL};
    CU_ASSERT_FATAL(call(&e, "POST", "/fail/a", u307, "{}", 2, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 307);
    CU_ASSERT(header_is(&r, "Location", "/beta"));
    CU_ASSERT(header_is(&r, "X-AB-Group", "beta"));
    it_response_free(&r);
    /* The gateway answered both: the origin saw none (only the /stats calls). */
    CU_ASSERT_EQUAL(it_origin_requests(e.o->port), before + 1);
    stop(&e);
}

/* ---- on_error ----------------------------------------------------------------------------- */

static void test_failed_branch_replayed_on_original_path(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e) == 0);
    struct it_response r;
    const char *s503[] = {"X-User: s503", NULL};
    long before = it_origin_requests(e.o->port);
    /* The branch /status/503 answers 503: the request is replayed on /fail/x?k=v. */
    CU_ASSERT_FATAL(call(&e, "GET", "/fail/x?k=v", s503, NULL, 0, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(echoed(&r, "origin", "o"));
    CU_ASSERT(echoed(&r, "target", "/fail/x?k=v"));
    CU_ASSERT(echoed(&r, "headers.x-ab-group", NULL));
    CU_ASSERT(header_is(&r, "X-AB-Group", "0"));
    it_response_free(&r);
    CU_ASSERT_EQUAL(it_origin_requests(e.o->port), before + 3); /* branch, replay, /stats */

    /* A PUT body within max_replay_body goes again, whole. */
    static char body[600];
    it_pattern((unsigned char *)body, 0, sizeof(body));
    char fnv[17];
    it_fnv_hex(it_pattern_fnv(sizeof(body)), fnv);
    CU_ASSERT_FATAL(call(&e, "PUT", "/fail/put", s503, body, sizeof(body), &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(echoed(&r, "target", "/fail/put"));
    CU_ASSERT(echoed(&r, "body_bytes", "600"));
    CU_ASSERT(echoed(&r, "body_fnv", fnv));
    it_response_free(&r);

    /* Over max_replay_body (1k): streamed as usual, neither refused nor replayed. */
    static char big[4096];
    it_pattern((unsigned char *)big, 0, sizeof(big));
    CU_ASSERT_FATAL(call(&e, "PUT", "/fail/put", s503, big, sizeof(big), &r) == 0);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT(header_is(&r, "X-AB-Group", "0"));
    it_response_free(&r);

    /* POST is not idempotent: the branch's 503 stands. */
    CU_ASSERT_FATAL(call(&e, "POST", "/fail/post", s503, "{}", 2, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 503);
    it_response_free(&r);

    /* A status not in on_error is the branch's answer. */
    const char *s404[] = {"X-User: s404", NULL};
    CU_ASSERT_FATAL(call(&e, "GET", "/fail/x", s404, NULL, 0, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 404);
    CU_ASSERT(header_is(&r, "X-AB-Group", "1"));
    it_response_free(&r);

    /* Replayed on a strip_prefix route: the original path, stripped as without the plugin. */
    CU_ASSERT_FATAL(call(&e, "GET", "/strip/x?k=v", s503, NULL, 0, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(echoed(&r, "target", "/x?k=v"));
    it_response_free(&r);

    /* A route without on_error: no replay. */
    const char *cookie[] = {"Cookie: a=b; sid=s503", NULL};
    CU_ASSERT_FATAL(call(&e, "GET", "/noreplay/x", cookie, NULL, 0, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT(header_is(&r, "X-AB-Group", NULL));
    it_response_free(&r);

    CU_ASSERT_EQUAL(metric(&e, "fail", "replayed"), 2);
    CU_ASSERT_EQUAL(metric(&e, "fail", "replay_skipped"), 2);
    CU_ASSERT_EQUAL(metric(&e, "nr", "group:0"), 1);
    stop(&e);
}

static void test_branch_upstream_down_replayed_on_original(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e) == 0);
    struct it_response r;
    /* The branch's upstream refuses connections. */
    const char *down[] = {"X-User: down", NULL};
    CU_ASSERT_FATAL(call(&e, "GET", "/fail/d?x=1", down, NULL, 0, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(echoed(&r, "origin", "o"));
    CU_ASSERT(echoed(&r, "target", "/fail/d?x=1"));
    CU_ASSERT(header_is(&r, "X-AB-Group", "2"));
    it_response_free(&r);

    /* v2 serves even uids until it stops; then the original route does. */
    CU_ASSERT_FATAL(call(&e, "GET", "/search/y?uid=12", NULL, NULL, 0, &r) == 0);
    CU_ASSERT(echoed(&r, "origin", "v2"));
    it_response_free(&r);
    it_proc_kill(e.v2);
    CU_ASSERT(it_port_refuses(e.v2->port));
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_FATAL(call(&e, "GET", "/search/y?uid=12", NULL, NULL, 0, &r) == 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT(echoed(&r, "origin", "o"));
        CU_ASSERT(echoed(&r, "target", "/search/y?uid=12"));
        CU_ASSERT(echoed(&r, "headers.x-ab-group", NULL));
        CU_ASSERT(header_is(&r, "X-AB-Group", "2"));
        it_response_free(&r);
    }
    CU_ASSERT_EQUAL(metric(&e, "fail", "replayed"), 1);
    CU_ASSERT_EQUAL(metric(&e, "ab", "replayed"), 3);
    stop(&e);
}

/* A rule naming an upstream the configuration lacks is refused when the file is loaded: the
 * reload answers 400 naming the place and the name, and the running configuration serves on. */
static void test_unknown_upstream_refused(void)
{
    struct env e;
    CU_ASSERT_FATAL(start(&e) == 0);
    const char *conf = it_temp_path("abtest.yaml");
    CU_ASSERT_FATAL(it_write_file(conf, config, e.port, e.admin, plugin_dir, e.o->port, e.v2->port,
                                  e.dead, typo_route) == 0);
    struct it_response r;
    struct it_http_req q = {.method = "POST", .url = it_url(e.admin, "/-/reload")};
    CU_ASSERT_FATAL(it_http_do(&e.h, &q, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 400);
    const char *want = "routes[4].plugins[0].config.rules[0].to.upstream: plugin abtest 1.0.0: "
                       "no upstream named \\\"v3\\\" in this configuration";
    if (!r.body.data || !strstr(r.body.data, want))
        fprintf(stderr, "\n  reload said: %s\n  wanted: %s\n", r.body.data ? r.body.data : "",
                want);
    CU_ASSERT(r.body.data && strstr(r.body.data, want));
    it_response_free(&r);
    /* The old configuration serves: /typo is no route, the others answer. */
    CU_ASSERT_FATAL(call(&e, "GET", "/typo/x?uid=1", NULL, NULL, 0, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 404);
    it_response_free(&r);
    CU_ASSERT_FATAL(call(&e, "GET", "/noreplay", NULL, NULL, 0, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    it_response_free(&r);
    CU_ASSERT(it_lintel_refuses(conf, "no upstream named \"v3\""));
    stop(&e);
}

/* ---- the documentation -------------------------------------------------------------------- */

/* The first ```yaml block of docs/plugins/abtest.md, with plugin_paths pointed at this build, is
 * a configuration `lintel -t` accepts; a bad bucket range is refused with its position. */
static void test_documented_config_is_valid(void)
{
    CU_ASSERT_EQUAL(it_doc_check("docs/plugins/abtest.md", plugin_dir), 0);

    const char *bad = it_check_config("abtest-bad.yaml", plugin_dir,
                                      "  - name: abtest\n"
                                      "    config:\n"
                                      "      uid: { from: arg, name: uid }\n"
                                      "      rules:\n"
                                      "        - { strategy: hash, buckets: \"0-100\", "
                                      "to: { path: /b } }\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(bad);
    CU_ASSERT(it_lintel_refuses(
        bad,
        "%s:9:38: plugins[0].config.rules[0].buckets: plugin abtest 1.0.0: must be a bucket "
        "range \"LO-HI\" within 0-99",
        bad));
}

/* The page's example answers as the page shows (origins named o9001 and o9002 there). */
static void test_documented_example_answers(void)
{
    struct it_proc *a = it_origin_start("o9001"), *b = it_origin_start("o9002");
    CU_ASSERT_FATAL(a && b);
    int ports[3] = {it_free_port(), a->port, b->port};
    /* The page's addresses (8080, 9001, 9002) become the ports of this test. */
    static const char *const addrs[] = {"127.0.0.1:8080", "127.0.0.1:9001", "127.0.0.1:9002"};
    struct it_buf yaml = {0};
    CU_ASSERT_FATAL(it_doc_yaml("docs/plugins/abtest.md", 0, plugin_dir, addrs, ports, 3, &yaml) ==
                    0);
    const char *conf = it_temp_path("abtest-doc-run.yaml");
    CU_ASSERT_FATAL(it_write_file(conf, "%s", yaml.data) == 0);
    it_buf_free(&yaml);
    CU_ASSERT_FATAL(it_lintel_start(conf, ports[0]) != NULL);
    struct env e = {.port = ports[0]};
    CU_ASSERT_FATAL(it_http_init(&e.h) == 0);
    static const struct {
        const char *path, *origin, *target, *group;
    } cases[] = {
        {"/search?uid=42&q=cats", "o9001", "/ab/white?uid=42&q=cats", "staff"},
        {"/search?uid=1007&q=cats", "o9001", "/ab1?uid=1007&q=cats", "1"},
        {"/search?uid=1008&q=cats", "o9002", "/search?uid=1008&q=cats", "2"},
        {"/search?uid=trent&q=cats", "o9001", "/ab3?model=b&uid=trent&q=cats", "3"},
        {"/search?uid=alice&q=cats", "o9001", "/search?uid=alice&q=cats", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct it_response r;
        CU_ASSERT_FATAL(call(&e, "GET", cases[i].path, NULL, NULL, 0, &r) == 0);
        CU_ASSERT(echoed(&r, "origin", cases[i].origin));
        CU_ASSERT(echoed(&r, "target", cases[i].target));
        CU_ASSERT(echoed(&r, "headers.x-ab-group", cases[i].group));
        it_response_free(&r);
    }
    struct it_response r;
    CU_ASSERT_FATAL(call(&e, "GET", "/search?uid=beta", NULL, NULL, 0, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 307);
    CU_ASSERT(header_is(&r, "Location", "https://beta.example.com/search"));
    CU_ASSERT(header_is(&r, "X-AB-Group", "4"));
    it_response_free(&r);
    /* With 9002 stopped, uid=1008 is answered by the original route. */
    it_proc_kill(b);
    CU_ASSERT_FATAL(call(&e, "GET", "/search?uid=1008&q=cats", NULL, NULL, 0, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(echoed(&r, "origin", "o9001"));
    CU_ASSERT(echoed(&r, "target", "/search?uid=1008&q=cats"));
    it_response_free(&r);
    stop(&e);
}

static CU_TestInfo tests[] = {
    {"each strategy sends its uids to its branch", test_each_strategy},
    {"hash buckets match FNV-1a mod 100 and survive a restart",
     test_hash_buckets_stable_across_restarts},
    {"redirects 302 and 307 are answered by the gateway", test_redirects},
    {"on_error: a failed branch path is replayed on the original path",
     test_failed_branch_replayed_on_original_path},
    {"on_error: a branch upstream that is down is replayed on the original",
     test_branch_upstream_down_replayed_on_original},
    {"an unknown upstream is refused at load; the running configuration serves on",
     test_unknown_upstream_refused},
    {"the documented configuration passes lintel -t", test_documented_config_is_valid},
    {"the documented example answers as shown", test_documented_example_answers},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"abtest", NULL, it_suite_cleanup, it_test_setup, it_test_teardown, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    it_build_path(plugin_dir, sizeof(plugin_dir), "plugins");
    return it_main(suites, 240);
}
