/* The auth plugin in a running gateway, over real sockets: key, basic and jwt (HS256, RS256 and
 * ES256 with keys made here at test time), refusals with their challenges, hide_credentials,
 * anonymous, several methods in order, and the external method against a second
 * lintel-test-origin playing the auth service (allow, refusal passed through, cache across
 * requests, 5xx and down services, degradation). Also: the example in docs/plugins/auth.md passes
 * `lintel -t`, and credential errors name the file and line. The plugin is build/plugins/auth.so,
 * copied alone into a temporary plugin directory. */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "harness.h"
#include "test_auth_keys.h"

#define HS_SECRET "it-hs256-secret-0123456789abcdef"

static char auth_so[PATH_MAX];

/* One gateway for the whole suite (its routes cover every case), an origin as the upstream and
 * another, named "alice", as the external auth service. */
static struct it_proc *origin, *service, *gw;
static int port, admin, dead_port;
static EVP_PKEY *rsa, *ec;

static const char config_fmt[] =
    "listen: [ { address: \"127.0.0.1:%d\" } ]\n"
    "admin: { address: \"127.0.0.1:%d\" }\n"
    "workers: 2\n"
    "plugin_paths: [\"%s\"]\n"
    "consumers:\n"
    "  - name: alice\n"
    "    id: \"1001\"\n"
    "    credentials:\n"
    "      keys: [k-alice-1]\n"
    "      basic: { user: alice, password_sha256: \"%s\" }\n"
    "      jwt:\n"
    "        - { issuer: alice-app, algorithm: HS256, secret: \"env:AUTH_IT_HS_SECRET\" }\n"
    "        - { issuer: alice-rs, algorithm: RS256, public_key_file: \"%s\" }\n"
    "        - { issuer: alice-es, algorithm: ES256, public_key_file: \"%s\" }\n"
    "  - name: bob\n"
    "    credentials: { keys: [k-bob] }\n"
    "  - name: guest\n"
    "    id: \"0\"\n"
    "upstreams:\n"
    "  o: { targets: [ { address: \"127.0.0.1:%d\" } ] }\n"
    "routes:\n"
    "  - { name: key, match: { paths: [\"/key/\"] }, upstream: o, plugins: [ { name: auth,\n"
    "      instance: key, config: { methods: [key], hide_credentials: true } } ] }\n"
    "  - { name: basic, match: { paths: [\"/basic/\"] }, upstream: o, plugins: [ { name: auth,\n"
    "      instance: basic, config: { methods: [basic] } } ] }\n"
    "  - { name: jwt, match: { paths: [\"/jwt/\"] }, upstream: o, plugins: [ { name: auth,\n"
    "      instance: jwt, config: { methods: [jwt], jwt: { cookies: [session] } } } ] }\n"
    "  - { name: jwtl, match: { paths: [\"/jwtl/\"] }, upstream: o, plugins: [ { name: auth,\n"
    "      instance: jwtl, config: { methods: [jwt], jwt: { leeway: 1m } } } ] }\n"
    "  - { name: multi, match: { paths: [\"/multi/\"] }, upstream: o, plugins: [ { name: auth,\n"
    "      instance: multi, config: { methods: [basic, jwt, key], realm: api } } ] }\n"
    "  - { name: anon, match: { paths: [\"/anon/\"] }, upstream: o, plugins: [ { name: auth,\n"
    "      instance: anon, config: { methods: [key], anonymous: guest } } ] }\n"
    "  - { name: ea, match: { paths: [\"/ea/\"] }, upstream: o, plugins: [ { name: auth,\n"
    "      instance: ea, config: { methods: [external], hide_credentials: true, external: {\n"
    "        url: \"http://127.0.0.1:%d/check\", upstream_headers: [X-Origin],\n"
    "        consumer_header: X-Origin, cache_ttl: 1m } } } ] }\n"
    "  - { name: ed, match: { paths: [\"/ed/\"] }, upstream: o, plugins: [ { name: auth,\n"
    "      instance: ed, config: { methods: [external], external: {\n"
    "        url: \"http://127.0.0.1:%d/status/403\", denial_headers: [X-Origin] } } } ] }\n"
    "  - { name: e5, match: { paths: [\"/e5/\"] }, upstream: o, plugins: [ { name: auth,\n"
    "      instance: e5, config: { methods: [external], external: {\n"
    "        url: \"http://127.0.0.1:%d/status/500\" } } } ] }\n"
    "  - { name: ex, match: { paths: [\"/ex/\"] }, upstream: o, plugins: [ { name: auth,\n"
    "      instance: ex, config: { methods: [external], external: {\n"
    "        url: \"http://127.0.0.1:%d/\", timeout: 1s } } } ] }\n"
    "  - { name: eg, match: { paths: [\"/eg/\"] }, upstream: o, plugins: [ { name: auth,\n"
    "      instance: eg, config: { methods: [external], external: {\n"
    "        url: \"http://127.0.0.1:%d/\", timeout: 1s, allow_degradation: true } } } ] }\n"
    "  - { name: ek, match: { paths: [\"/ek/\"] }, upstream: o, plugins: [ { name: auth,\n"
    "      instance: ek, config: { methods: [external, key], external: {\n"
    "        url: \"http://127.0.0.1:%d/status/401\" } } } ] }\n";

static int suite_init(void)
{
    const char *dir = it_plugin_dir("auth-plugins", auth_so);
    const char *rsa_pem = it_temp_path("alice-rs.pem"), *ec_pem = it_temp_path("alice-es.pem");
    const char *conf = it_temp_path("auth.yaml");
    rsa = authtest_rsa_key();
    ec = authtest_ec_key();
    if (!dir || authtest_write_public_pem(rsa, rsa_pem) < 0 ||
        authtest_write_public_pem(ec, ec_pem) < 0)
        return -1;
    setenv("AUTH_IT_HS_SECRET", HS_SECRET, 1); /* lintel inherits it */
    origin = it_origin_start("upstream");
    service = it_origin_start("alice");
    if (!origin || !service)
        return -1;
    port = it_free_port();
    admin = it_free_port();
    dead_port = it_free_port(); /* nobody listens: the service is down */
    char *pw = authtest_password_sha256("NaCl", "alice-pw");
    int rc = it_write_file(conf, config_fmt, port, admin, dir, pw, rsa_pem, ec_pem, origin->port,
                           service->port, service->port, service->port, dead_port, dead_port,
                           service->port);
    free(pw);
    if (rc < 0)
        return -1;
    gw = it_lintel_start(conf, port);
    return gw ? 0 : -1;
}

static int suite_clean(void)
{
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    return it_suite_cleanup();
}

/* GET path with extra headers (NULL-terminated list or NULL); fills r. */
static void get(const char *path, const char *const *headers, struct it_response *r)
{
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    CU_ASSERT_FATAL(it_http_get(&h, it_url(port, path), headers, r) == 0);
    it_http_free(&h);
}

/* The upstream saw the request as consumer (NULL: none) with id (NULL: none). */
static void assert_upstream_consumer(const struct it_response *r, const char *consumer,
                                     const char *id)
{
    char v[128];
    CU_ASSERT_EQUAL(r->status, 200);
    CU_ASSERT_PTR_NOT_NULL(it_response_header(r, "X-Origin"));
    if (consumer) {
        CU_ASSERT(it_json_eq(r->body.data, "headers.x-consumer-username", consumer));
    } else {
        CU_ASSERT(it_json_get(r->body.data, "headers.x-consumer-username", v, sizeof(v)) < 0);
    }
    if (id) {
        CU_ASSERT(it_json_eq(r->body.data, "headers.x-consumer-id", id));
    } else {
        CU_ASSERT(it_json_get(r->body.data, "headers.x-consumer-id", v, sizeof(v)) < 0);
    }
}

/* lintel's own refusal: 401, JSON reason, the challenge(s). */
static void assert_refused(const struct it_response *r, const char *reason, const char *challenge)
{
    CU_ASSERT_EQUAL(r->status, 401);
    CU_ASSERT(it_json_eq(r->body.data, "error", reason));
    CU_ASSERT_EQUAL(it_json_int(r->body.data, "status"), 401);
    const char *ct = it_response_header(r, "Content-Type");
    CU_ASSERT(ct && strcmp(ct, "application/json") == 0);
    const char *c = it_response_header(r, "WWW-Authenticate");
    CU_ASSERT(c && strcmp(c, challenge) == 0);
    if (!c || strcmp(c, challenge) != 0)
        fprintf(stderr, "WWW-Authenticate: %s (want %s)\n", c ? c : "(none)", challenge);
}

static void test_key(void)
{
    struct it_response r;
    /* the client's own consumer headers are dropped; the key is hidden from the upstream */
    const char *good[] = {"apikey: k-alice-1", "X-Consumer-Id: 999", "X-Consumer-Username: root",
                          NULL};
    get("/key/a", good, &r);
    assert_upstream_consumer(&r, "alice", "1001");
    char v[64];
    CU_ASSERT(it_json_get(r.body.data, "headers.apikey", v, sizeof(v)) < 0);
    it_response_free(&r);

    get("/key/a?x=1&apikey=k-bob", NULL, &r);
    assert_upstream_consumer(&r, "bob", NULL);
    CU_ASSERT(it_json_eq(r.body.data, "target", "/key/a?x=1"));
    it_response_free(&r);

    const char *bad[] = {"apikey: k-alice-2", NULL};
    get("/key/a", bad, &r);
    assert_refused(&r, "invalid api key", "Key realm=\"lintel\"");
    it_response_free(&r);
    get("/key/a", NULL, &r);
    assert_refused(&r, "missing credentials", "Key realm=\"lintel\"");
    it_response_free(&r);
}

static void test_basic(void)
{
    struct it_response r;
    const char *good[] = {"Authorization: Basic YWxpY2U6YWxpY2UtcHc=", NULL}; /* alice:alice-pw */
    get("/basic/a", good, &r);
    assert_upstream_consumer(&r, "alice", "1001");
    CU_ASSERT(it_json_eq(r.body.data, "headers.authorization", "Basic YWxpY2U6YWxpY2UtcHc="));
    it_response_free(&r);
    const char *bad[] = {"Authorization: Basic YWxpY2U6d3Jvbmc=", NULL}; /* alice:wrong */
    get("/basic/a", bad, &r);
    assert_refused(&r, "invalid username or password", "Basic realm=\"lintel\", charset=\"UTF-8\"");
    it_response_free(&r);
}

/* GET path with the token as "Authorization: Bearer" (frees token). */
static void get_bearer(const char *path, char *token, struct it_response *r)
{
    char h[4096];
    snprintf(h, sizeof(h), "Authorization: Bearer %s", token);
    free(token);
    const char *headers[] = {h, NULL};
    get(path, headers, r);
}

static void test_jwt(void)
{
    struct it_response r;
    get_bearer("/jwt/a", authtest_token("HS256", HS_SECRET, NULL, "alice-app", 60, 0), &r);
    assert_upstream_consumer(&r, "alice", "1001");
    it_response_free(&r);
    get_bearer("/jwt/a", authtest_token("RS256", NULL, rsa, "alice-rs", 60, -1), &r);
    assert_upstream_consumer(&r, "alice", "1001");
    it_response_free(&r);
    get_bearer("/jwt/a", authtest_token("ES256", NULL, ec, "alice-es", 60, 0), &r);
    assert_upstream_consumer(&r, "alice", "1001");
    it_response_free(&r);

    /* from the configured cookie */
    char *t = authtest_token("ES256", NULL, ec, "alice-es", 0, 0), cookie[2048];
    snprintf(cookie, sizeof(cookie), "Cookie: a=1; session=%s", t);
    free(t);
    const char *hc[] = {cookie, NULL};
    get("/jwt/a", hc, &r);
    assert_upstream_consumer(&r, "alice", "1001");
    it_response_free(&r);

    static const char invalid[] = "Bearer realm=\"lintel\", error=\"invalid_token\"";
    get_bearer("/jwt/a", authtest_token("HS256", HS_SECRET, NULL, "alice-app", -10, 0), &r);
    assert_refused(&r, "token expired", invalid);
    it_response_free(&r);
    get_bearer("/jwt/a", authtest_token("HS256", HS_SECRET, NULL, "alice-app", 0, 600), &r);
    assert_refused(&r, "token not yet valid", invalid);
    it_response_free(&r);
    get_bearer("/jwt/a", authtest_token("HS256", "guessed", NULL, "alice-app", 60, 0), &r);
    assert_refused(&r, "invalid signature", invalid);
    it_response_free(&r);
    get_bearer("/jwt/a", authtest_token("HS256", HS_SECRET, NULL, "eve-app", 60, 0), &r);
    assert_refused(&r, "unknown issuer", invalid);
    it_response_free(&r);
    EVP_PKEY *other = authtest_ec_key();
    get_bearer("/jwt/a", authtest_token("ES256", NULL, other, "alice-es", 60, 0), &r);
    assert_refused(&r, "invalid signature", invalid);
    it_response_free(&r);
    EVP_PKEY_free(other);
    /* alg confusion: HS256 keyed with the RS256 consumer's public key, which is public */
    char *pem = authtest_public_pem(rsa);
    get_bearer("/jwt/a", authtest_token("HS256", pem, NULL, "alice-rs", 60, 0), &r);
    assert_refused(&r, "algorithm mismatch", invalid);
    it_response_free(&r);
    free(pem);
    get_bearer("/jwt/a",
               authtest_jwt("none", NULL, NULL, "{\"alg\":\"none\"}", "{\"iss\":\"alice-app\"}"),
               &r);
    assert_refused(&r, "unsupported algorithm", invalid);
    it_response_free(&r);

    /* leeway: a minute either way */
    get_bearer("/jwtl/a", authtest_token("HS256", HS_SECRET, NULL, "alice-app", -30, 0), &r);
    assert_upstream_consumer(&r, "alice", "1001");
    it_response_free(&r);
    get_bearer("/jwtl/a", authtest_token("HS256", HS_SECRET, NULL, "alice-app", 0, 30), &r);
    assert_upstream_consumer(&r, "alice", "1001");
    it_response_free(&r);
    get_bearer("/jwtl/a", authtest_token("HS256", HS_SECRET, NULL, "alice-app", -90, 0), &r);
    assert_refused(&r, "token expired", invalid);
    it_response_free(&r);
}

static void test_anonymous_and_order(void)
{
    struct it_response r;
    const char *forged[] = {"X-Consumer-Username: alice", NULL};
    get("/anon/a", forged, &r);
    assert_upstream_consumer(&r, "guest", "0");
    CU_ASSERT(it_json_eq(r.body.data, "headers.x-anonymous-consumer", "true"));
    it_response_free(&r);

    /* basic refuses, jwt has nothing, the key is accepted */
    const char *h1[] = {"Authorization: Basic Ym9iOmJvYg==", "apikey: k-bob", NULL};
    get("/multi/a", h1, &r);
    assert_upstream_consumer(&r, "bob", NULL);
    it_response_free(&r);
    /* a token beats the key after it */
    char *t = authtest_token("RS256", NULL, rsa, "alice-rs", 60, 0), auth[2048];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", t);
    free(t);
    const char *h2[] = {auth, "apikey: k-bob", NULL};
    get("/multi/a", h2, &r);
    assert_upstream_consumer(&r, "alice", "1001");
    it_response_free(&r);
    /* nothing works: the first refusal's reason, one challenge per method in order */
    const char *h3[] = {"Authorization: Basic Ym9iOmJvYg==", "apikey: nope", NULL};
    get("/multi/a", h3, &r);
    assert_refused(&r, "invalid username or password", "Basic realm=\"api\", charset=\"UTF-8\"");
    CU_ASSERT_EQUAL(it_response_header_count(&r, "WWW-Authenticate"), 3);
    size_t seen = 0;
    static const char *const want[] = {"Basic realm=\"api\", charset=\"UTF-8\"",
                                       "Bearer realm=\"api\"", "Key realm=\"api\""};
    for (size_t i = 0; i < r.nheaders; i++)
        if (strcasecmp(r.headers[i].name, "WWW-Authenticate") == 0 && seen < 3)
            CU_ASSERT_STRING_EQUAL(r.headers[i].value, want[seen++]);
    it_response_free(&r);
}

/* Requests the auth service has answered so far, not counting these /stats calls. */
static long service_requests(void)
{
    static long stats_calls;
    struct it_http h;
    struct it_response r;
    long n = -1;
    stats_calls++;
    if (it_http_init(&h) == 0 && it_http_get(&h, it_url(service->port, "/stats"), NULL, &r) == 0) {
        n = (long)it_json_int(r.body.data, "requests") - stats_calls;
        it_response_free(&r);
    }
    it_http_free(&h);
    return n;
}

static void test_external_allow_and_cache(void)
{
    struct it_response r;
    long before = service_requests();
    /* the service ("alice") answers 200 with X-Origin: alice: copied upstream, and naming the
     * consumer; the client's X-Origin claim is dropped; the credential is hidden */
    const char *h[] = {"Authorization: Bearer opaque-1", "X-Origin: forged", NULL};
    get("/ea/a", h, &r);
    assert_upstream_consumer(&r, "alice", "1001");
    CU_ASSERT(it_json_eq(r.body.data, "headers.x-origin", "alice"));
    char v[64];
    CU_ASSERT(it_json_get(r.body.data, "headers.authorization", v, sizeof(v)) < 0);
    it_response_free(&r);
    CU_ASSERT_EQUAL(service_requests(), before + 1);
    /* cached: five more requests (on either worker), no more calls */
    for (int i = 0; i < 5; i++) {
        get("/ea/b", h, &r);
        assert_upstream_consumer(&r, "alice", "1001");
        CU_ASSERT(it_json_eq(r.body.data, "headers.x-origin", "alice"));
        it_response_free(&r);
    }
    CU_ASSERT_EQUAL(service_requests(), before + 1);
    /* another credential is another question */
    const char *h2[] = {"Authorization: Bearer opaque-2", NULL};
    get("/ea/a", h2, &r);
    assert_upstream_consumer(&r, "alice", "1001");
    it_response_free(&r);
    CU_ASSERT_EQUAL(service_requests(), before + 2);
}

static void test_external_refusals(void)
{
    struct it_response r;
    const char *h[] = {"Authorization: Bearer opaque-1", NULL};
    /* the service's own refusal, as it sent it (status, body, Content-Type, chosen header) */
    get("/ed/a", h, &r);
    CU_ASSERT_EQUAL(r.status, 403);
    CU_ASSERT_STRING_EQUAL(r.body.data, "status 403\n");
    const char *ct = it_response_header(&r, "Content-Type"),
               *o = it_response_header(&r, "X-Origin");
    CU_ASSERT(ct && strcmp(ct, "text/plain") == 0);
    CU_ASSERT(o && strcmp(o, "alice") == 0);
    CU_ASSERT_PTR_NULL(it_response_header(&r, "X-Origin-Conn")); /* not a chosen header */
    it_response_free(&r);

    /* a 5xx, and nobody listening: 503, fail closed */
    const char *paths[] = {"/e5/a", "/ex/a"};
    for (int i = 0; i < 2; i++) {
        int64_t t0 = it_now_ms();
        get(paths[i], h, &r);
        CU_ASSERT_EQUAL(r.status, 503);
        CU_ASSERT(it_json_eq(r.body.data, "error", "authentication service unavailable"));
        CU_ASSERT(it_now_ms() - t0 < 1500); /* within the 1 s timeout (refused at once) */
        it_response_free(&r);
    }
    /* with allow_degradation the request goes on, without a consumer */
    const char *forged[] = {"Authorization: Bearer opaque-1", "X-Consumer-Username: alice", NULL};
    get("/eg/a", forged, &r);
    assert_upstream_consumer(&r, NULL, NULL);
    it_response_free(&r);

    /* external refuses (401), the key after it accepts; without a key the refusal passes */
    const char *hk[] = {"Authorization: Bearer opaque-1", "apikey: k-bob", NULL};
    get("/ek/a", hk, &r);
    assert_upstream_consumer(&r, "bob", NULL);
    it_response_free(&r);
    get("/ek/a", h, &r);
    CU_ASSERT_EQUAL(r.status, 401);
    CU_ASSERT_STRING_EQUAL(r.body.data, "status 401\n");
    it_response_free(&r);
}

/* The counters show up in GET /-/metrics. */
static void test_metrics(void)
{
    struct it_http h;
    struct it_response r;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    CU_ASSERT_FATAL(it_http_get(&h, it_url(admin, "/-/metrics"), NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    static const char *const lines[] = {
        "lintel_plugin_events_total{plugin=\"auth\",instance=\"key\",name=\"allow_key\"} 2",
        "lintel_plugin_events_total{plugin=\"auth\",instance=\"key\",name=\"deny\"} 2",
        "lintel_plugin_events_total{plugin=\"auth\",instance=\"ea\",name=\"external_cache_hit\"} 5",
        "lintel_plugin_events_total{plugin=\"auth\",instance=\"ea\",name=\"external_call\"} 2",
        "lintel_plugin_events_total{plugin=\"auth\",instance=\"ex\",name=\"external_unavailable\"} "
        "1",
        "lintel_plugin_events_total{plugin=\"auth\",instance=\"eg\",name=\"allow_degraded\"} 1",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(*lines); i++) {
        CU_ASSERT_PTR_NOT_NULL(strstr(r.body.data, lines[i]));
        if (!strstr(r.body.data, lines[i]))
            fprintf(stderr, "missing: %s\n", lines[i]);
    }
    it_response_free(&r);
    it_http_free(&h);
}

/* ---- configuration checks (lintel -t) ----------------------------------------------------- */

/* The first ```yaml block of docs/plugins/auth.md, with plugin_paths pointed at the plugin, is a
 * complete configuration that `lintel -t` accepts. */
static void test_doc_example(void)
{
    CU_ASSERT_EQUAL(it_doc_check("docs/plugins/auth.md", it_temp_path("auth-plugins")), 0);
}

/* A credential the plugin cannot use stops the configuration, naming file, line and reason. */
static void test_credential_error(void)
{
    const char *conf = it_temp_path("bad-credential.yaml");
    CU_ASSERT_FATAL(
        it_write_file(conf,
                      IT_CONFIG_HEAD
                      "consumers:\n"
                      "  - name: alice\n"
                      "    credentials:\n"
                      "      jwt: [ { issuer: a, algorithm: RS256, "
                      "public_key_file: /nonexistent/alice.pem } ]\n"
                      "upstreams: { o: { targets: [ { address: \"127.0.0.1:1\" } ] } }\n"
                      "routes:\n"
                      "  - name: r\n"
                      "    upstream: o\n"
                      "    plugins: [ { name: auth, config: { methods: [jwt] } } ]\n",
                      it_free_port()) == 0);
    /* IT_CONFIG_HEAD has no plugin path: add ours */
    struct it_buf text = {0};
    FILE *f = fopen(conf, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "plugin_paths:", 13) == 0)
            snprintf(line, sizeof(line), "plugin_paths: [\"%s\"]\n", it_temp_path("auth-plugins"));
        it_buf_add(&text, line, strlen(line));
    }
    fclose(f);
    CU_ASSERT_FATAL(it_write_file(conf, "%s", text.data) == 0);
    it_buf_free(&text);
    CU_ASSERT(it_lintel_refuses(conf,
                                "%s:10:62: consumers[0].credentials.jwt[0].public_key_file: plugin "
                                "auth 1.0.1: cannot read: No such file or directory",
                                conf));
}

static CU_TestInfo tests[] = {
    {"key: header and query, hidden, forged consumer headers dropped", test_key},
    {"basic: allow and refuse", test_basic},
    {"jwt: HS256, RS256, ES256, cookie; exp, nbf, leeway, signature, issuer, alg confusion",
     test_jwt},
    {"anonymous; several methods in order, one challenge each", test_anonymous_and_order},
    {"external: allow, upstream headers, consumer, cache across requests",
     test_external_allow_and_cache},
    {"external: refusal passed through, 5xx and down are 503, degradation, then key",
     test_external_refusals},
    {"counters in /-/metrics", test_metrics},
    {"the docs example passes lintel -t", test_doc_example},
    {"a bad credential stops the configuration with its line", test_credential_error},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"plugin auth", suite_init, suite_clean, it_test_setup, it_test_teardown, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    it_build_path(auth_so, sizeof(auth_so), "plugins/auth.so");
    return it_main(suites, 240);
}
