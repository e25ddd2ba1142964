/* Tests the auth plugin through the SDK test kit, loading the built .so as lintel would: config
 * errors, each method allowing and refusing, hide_credentials, anonymous, several methods in
 * order, and the external method against the kit's fake outbound HTTP (allow, refusal passed
 * through, cache, service down, degradation). Keys are made at test time (test_auth_keys.c).
 * The pure parts are tested directly by test_auth_pure.c (its suites run from main here). */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lintel/testkit.h>

#include "test_auth_keys.h"

extern CU_SuiteInfo auth_pure_suites[];

static struct lk_plugin *plugin;
static EVP_PKEY *rsa, *ec;
static char dir[] = "/tmp/lintel-auth-test-XXXXXX";
static char rsa_path[128], ec_path[128];

#define ALICE_HS "alice-hs-secret-0123456789abcdef"

/* The consumers most tests use: alice (every kind of credential), bob (a key from the
 * environment), guest (none: the anonymous one). */
static int set_consumers(void)
{
    char err[512], consumers[2048];
    char *pw = authtest_password_sha256("NaCl", "alice-pw");
    snprintf(consumers, sizeof(consumers),
             "- name: alice\n"
             "  id: \"1001\"\n"
             "  credentials:\n"
             "    keys: [k-alice-1, \"k alice/2\"]\n"
             "    basic: { user: alice, password_sha256: \"%s\" }\n"
             "    jwt:\n"
             "      - { issuer: alice-app, algorithm: HS256, secret: " ALICE_HS " }\n"
             "      - { issuer: alice-rs, algorithm: RS256, public_key_file: \"%s\" }\n"
             "      - { issuer: alice-es, algorithm: ES256, public_key: \"file:%s\" }\n"
             "    hmac: [ { key_id: app-1001, secret: other-plugins-business } ]\n"
             "- name: bob\n"
             "  credentials: { keys: [\"env:AUTH_TEST_BOB_KEY\"] }\n"
             "- name: guest\n"
             "  id: \"0\"\n",
             pw, rsa_path, ec_path);
    free(pw);
    if (lk_set_consumers(consumers, err, sizeof(err)) < 0) {
        fprintf(stderr, "consumers: %s\n", err);
        return -1;
    }
    return 0;
}

static int suite_init(void)
{
    if (!mkdtemp(dir))
        return -1;
    rsa = authtest_rsa_key();
    ec = authtest_ec_key();
    snprintf(rsa_path, sizeof(rsa_path), "%s/alice.pem", dir);
    snprintf(ec_path, sizeof(ec_path), "%s/alice-ec.pem", dir);
    if (authtest_write_public_pem(rsa, rsa_path) < 0 || authtest_write_public_pem(ec, ec_path) < 0)
        return -1;
    setenv("AUTH_TEST_BOB_KEY", "k-bob", 1);
    if (set_consumers() < 0)
        return -1;
    plugin = lk_plugin_load_or_report(AUTH_SO);
    return plugin ? 0 : -1;
}

static int suite_clean(void)
{
    lk_plugin_free(plugin);
    lk_set_consumers(NULL, NULL, 0);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    unlink(rsa_path);
    unlink(ec_path);
    rmdir(dir);
    return 0;
}

static void test_setup(void)
{
    lk_log_clear();
    lk_http_reset();
    lk_shared_reset();
}

/* A GET of target with up to three "Name: value" headers (NULL-terminated). */
static struct lk_req *request(const char *target, const char *h1, const char *h2, const char *h3)
{
    struct lk_req *r = lk_req_new("GET", target);
    const char *hs[] = {h1, h2, h3};
    for (int i = 0; i < 3 && hs[i]; i++) {
        char name[64];
        const char *colon = strchr(hs[i], ':');
        snprintf(name, sizeof(name), "%.*s", (int)(colon - hs[i]), hs[i]);
        lk_req_set_header(r, name, colon + 2);
    }
    return r;
}

/* Runs ACCESS and checks a 401 with reason as the JSON error. */
static void assert_401(struct lk_instance *in, struct lk_req *r, const char *reason)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"status\":401,\"error\":\"%s\"}", reason);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), 401);
    CU_ASSERT_STRING_EQUAL(lk_resp_body(r, NULL), body);
    CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "Content-Type"), "application/json");
    CU_ASSERT_PTR_NULL(lk_consumer_name(r));
    CU_ASSERT_STRING_EQUAL(lk_log_field(r, "auth_error"), reason);
}

/* Runs ACCESS and checks that consumer got in (its id as X-Consumer-Id, or none). */
static void assert_allowed(struct lk_instance *in, struct lk_req *r, const char *consumer,
                           const char *id)
{
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resp_status(r), 0);
    if (!lk_consumer_name(r)) {
        CU_FAIL("no consumer");
        fprintf(stderr, "\nrefused: %s\n", lk_resp_body(r, NULL));
        return;
    }
    CU_ASSERT_STRING_EQUAL(lk_consumer_name(r), consumer);
    CU_ASSERT_STRING_EQUAL(lk_req_header(r, "X-Consumer-Username"), consumer);
    if (id) {
        CU_ASSERT_STRING_EQUAL(lk_req_header(r, "X-Consumer-Id"), id);
    } else {
        CU_ASSERT_PTR_NULL(lk_req_header(r, "X-Consumer-Id"));
    }
}

/* ---- configuration ------------------------------------------------------------------------ */

static void test_config_errors(void)
{
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, NULL), "1:1: required (methods)");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "[key]"), "1:1: must be a map");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ hide_credentials: true }"),
                           "1:1: methods: required");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ methods: [] }"),
                           "1:12: methods: must not be empty");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ methods: key }"),
                           "1:12: methods: must be a list");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ methods: [key, oauth] }"),
                           "1:18: methods[1]: must be key, basic, jwt or external");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ methods: [key, key] }"),
                           "1:18: methods[1]: listed twice");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ methods: [key], hide_credential: true }"),
                           "1:36: hide_credential: unknown key");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ methods: [key], jwt: { leeway: 5s } }"),
                           "1:24: jwt: options for a method not in methods");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ methods: [key], key: { header: [a] } }"),
                           "1:34: key.header: unknown key");
    CU_ASSERT_STRING_EQUAL(
        lk_config_error(plugin, "{ methods: [key], key: { headers: [\"a b\"] } }"),
        "1:36: key.headers[0]: must be a header name");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ methods: [key], key: { query: [\"a=b\"] } }"),
                           "1:34: key.query[0]: must be a query or cookie name");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ methods: [jwt], jwt: { leeway: soon } }"),
                           "1:34: jwt.leeway: must be a duration");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ methods: [key], anonymous: nobody }"),
                           "1:30: anonymous: not a declared consumer");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ methods: [basic], realm: 'a\"b' }"),
                           "1:28: realm: must not contain quotes, backslashes or control "
                           "characters");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ methods: [key], hide_credentials: maybe }"),
                           "1:37: hide_credentials: must be true or false");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ methods: [external] }"),
                           "1:1: external: required (url)");
    CU_ASSERT_STRING_EQUAL(
        lk_config_error(plugin, "{ methods: [external], external: { timeout: 1s } }"),
        "1:34: external: url: required");
    CU_ASSERT_STRING_EQUAL(
        lk_config_error(plugin, "{ methods: [external], external: { url: ftp://x } }"),
        "1:41: external.url: must be an http:// or https:// URL");
    CU_ASSERT_STRING_EQUAL(
        lk_config_error(plugin,
                        "{ methods: [external], external: { url: 'http://a', timeout: 0s } }"),
        "1:62: external.timeout: must be positive");
    CU_ASSERT_STRING_EQUAL(
        lk_config_error(plugin,
                        "{ methods: [external], external: { url: 'http://a', method: 'G T' } }"),
        "1:61: external.method: must be an HTTP method");
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

/* Errors in the consumers' credentials point into `consumers:`. */
static void test_credential_errors(void)
{
    char err[512];
    static const struct {
        const char *consumers, *methods, *error;
    } cases[] = {
        {"[{ name: a, credentials: { keys: [k1] } }, { name: b, credentials: { keys: [k1] } }]",
         "[key]", "1:77: consumers[1].credentials.keys[0]: key already used by consumer a"},
        {"[{ name: a, credentials: { keys: k1 } }]", "[key]",
         "1:34: consumers[0].credentials.keys: must be a list"},
        {"[{ name: a, credentials: { keys: [\"\"] } }]", "[key]",
         "1:35: consumers[0].credentials.keys[0]: must not be empty"},
        {"[{ name: a, credentials: { keys: [\"env:AUTH_TEST_UNSET\"] } }]", "[key]",
         "1:35: consumers[0].credentials.keys[0]: cannot resolve secret (unset env: variable or "
         "unreadable file:)"},
        {"[{ name: a, credentials: { basic: { user: a, password_sha256: plain } } }]", "[basic]",
         "1:63: consumers[0].credentials.basic.password_sha256: must be \"salt$hex\" (hex of "
         "sha256(salt + password))"},
        {"[{ name: a, credentials: { basic: { user: a, password: x } } }]", "[basic]",
         "1:56: consumers[0].credentials.basic.password: unknown key"},
        {"[{ name: a, credentials: { basic: { user: \"a:b\", password_sha256: x } } }]", "[basic]",
         "1:43: consumers[0].credentials.basic.user: must not contain ':'"},
        {"[{ name: a, credentials: { jwt: [ { issuer: i } ] } }]", "[jwt]",
         "1:35: consumers[0].credentials.jwt[0]: secret: required"},
        {"[{ name: a, credentials: { jwt: [ { issuer: i, algorithm: PS256, secret: s } ] } }]",
         "[jwt]",
         "1:59: consumers[0].credentials.jwt[0].algorithm: must be HS256, HS384, HS512, "
         "RS256 or ES256"},
        {"[{ name: a, credentials: { jwt: [ { issuer: i, algorithm: RS256, secret: s } ] } }]",
         "[jwt]",
         "1:74: consumers[0].credentials.jwt[0].secret: RS256 and ES256 take a public "
         "key, not a secret"},
        {"[{ name: a, credentials: { jwt: [ { issuer: i, algorithm: RS256, public_key_file: "
         "/nonexistent.pem } ] } }]",
         "[jwt]",
         "1:83: consumers[0].credentials.jwt[0].public_key_file: cannot read: No such "
         "file or directory"},
        {"[{ name: a, credentials: { jwt: [ { issuer: i, secret: s }, { issuer: i, secret: t } "
         "] } }]",
         "[jwt]",
         "1:71: consumers[0].credentials.jwt[1].issuer: issuer already used by consumer a"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        CU_ASSERT_EQUAL_FATAL(lk_set_consumers(cases[i].consumers, err, sizeof(err)), 0);
        char cfg[64];
        snprintf(cfg, sizeof(cfg), "{ methods: %s }", cases[i].methods);
        const char *got = lk_config_error(plugin, cfg);
        CU_ASSERT_STRING_EQUAL(got, cases[i].error);
        if (strcmp(got, cases[i].error) != 0)
            fprintf(stderr, "\ncase %zu: %s\n", i, got);
    }
    /* A wrong key file for the algorithm */
    char consumers[512];
    snprintf(consumers, sizeof(consumers),
             "[{ name: a, credentials: { jwt: [ { issuer: i, algorithm: ES256, public_key_file: "
             "\"%s\" } ] } }]",
             rsa_path);
    CU_ASSERT_EQUAL_FATAL(lk_set_consumers(consumers, err, sizeof(err)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(lk_config_error(plugin, "{ methods: [jwt] }"),
                                  "public_key_file: ES256 needs an EC P-256 public key"));
    /* Credentials of methods not listed are not read (they may belong to another route). */
    CU_ASSERT_EQUAL_FATAL(lk_set_consumers(cases[0].consumers, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ methods: [jwt] }"), "(created)");
    CU_ASSERT_EQUAL(set_consumers(), 0);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

/* ---- key ---------------------------------------------------------------------------------- */

static void test_key(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, "{ methods: [key] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    /* The client's own consumer headers never reach the upstream. */
    struct lk_req *r = request("/x", "apikey: k-alice-1", "X-Consumer-Username: root",
                               "X-Anonymous-Consumer: true");
    assert_allowed(in, r, "alice", "1001");
    CU_ASSERT_PTR_NULL(lk_req_header(r, "X-Anonymous-Consumer"));
    CU_ASSERT_STRING_EQUAL(lk_req_header(r, "apikey"), "k-alice-1"); /* not hidden */
    CU_ASSERT_STRING_EQUAL(lk_log_field(r, "auth_method"), "key");
    lk_req_free(r);

    r = request("/x?a=1&apikey=k%20alice%2F2", NULL, NULL, NULL); /* percent-decoded */
    assert_allowed(in, r, "alice", "1001");
    CU_ASSERT_STRING_EQUAL(lk_req_query(r), "a=1&apikey=k%20alice%2F2");
    lk_req_free(r);

    r = request("/x", "apikey: k-bob", NULL, NULL); /* from env:, no id */
    assert_allowed(in, r, "bob", NULL);
    lk_req_free(r);

    /* Every line of a consumer header the client sends goes, whatever the case of its name: bob
     * has no id, so no X-Consumer-Id at all is left. */
    r = request("/x", "apikey: k-bob", "x-consumer-id: 7", "X-CONSUMER-ID: 8");
    lk_req_set_header(r, "x-consumer-username", "root");
    lk_req_set_header(r, "x-anonymous-consumer", "true");
    lk_req_set_header(r, "X-Anonymous-Consumer", "yes");
    assert_allowed(in, r, "bob", NULL);
    CU_ASSERT_PTR_NULL(lk_req_header(r, "X-Anonymous-Consumer"));
    lk_req_free(r);

    r = request("/x", "apikey: k-alice-", "X-Consumer-Id: 1001", NULL);
    assert_401(in, r, "invalid api key");
    CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "WWW-Authenticate"), "Key realm=\"lintel\"");
    lk_req_free(r);

    r = request("/x?apikey=", NULL, NULL, NULL);
    assert_401(in, r, "invalid api key");
    lk_req_free(r);

    r = request("/x?apikeys=k-alice-1", "Authorization: k-alice-1", NULL, NULL);
    assert_401(in, r, "missing credentials");
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_metric(in, "allow_key"), 4);
    CU_ASSERT_EQUAL(lk_metric(in, "deny"), 3);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static void test_key_names_and_hiding(void)
{
    struct lk_instance *in =
        lk_instance_or_report(plugin, "{ methods: [key], hide_credentials: true, realm: api,\n"
                                      "  key: { headers: [X-API-Key, X-Key], query: [key] } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = request("/x?key=k-bob", "X-Key: k-alice-1", NULL, NULL);
    assert_allowed(in, r, "alice", "1001"); /* headers before query arguments */
    CU_ASSERT_PTR_NULL(lk_req_header(r, "X-Key"));
    CU_ASSERT_STRING_EQUAL(lk_req_query(r), "key=k-bob");
    lk_req_free(r);

    r = request("/x?a=1&key=k-bob&b=2&key=again&keys=3", NULL, NULL, NULL);
    assert_allowed(in, r, "bob", NULL);
    CU_ASSERT_STRING_EQUAL(lk_req_query(r), "a=1&b=2&keys=3");
    lk_req_free(r);

    r = request("/x?key=k-bob", NULL, NULL, NULL);
    assert_allowed(in, r, "bob", NULL);
    CU_ASSERT_PTR_NULL(lk_req_query(r));
    lk_req_free(r);

    r = request("/x?apikey=k-bob", NULL, NULL, NULL); /* the default name is replaced */
    assert_401(in, r, "missing credentials");
    CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "WWW-Authenticate"), "Key realm=\"api\"");
    lk_req_free(r);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

/* ---- basic -------------------------------------------------------------------------------- */

static void test_basic(void)
{
    struct lk_instance *in =
        lk_instance_or_report(plugin, "{ methods: [basic], hide_credentials: true }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    /* alice:alice-pw */
    struct lk_req *r = request("/x", "Authorization: Basic YWxpY2U6YWxpY2UtcHc=", NULL, NULL);
    assert_allowed(in, r, "alice", "1001");
    CU_ASSERT_PTR_NULL(lk_req_header(r, "Authorization"));
    CU_ASSERT_STRING_EQUAL(lk_log_field(r, "auth_method"), "basic");
    lk_req_free(r);

    r = request("/x", "Authorization: Basic YWxpY2U6YWxpY2UtcHd4", NULL, NULL); /* alice-pwx */
    assert_401(in, r, "invalid username or password");
    CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "WWW-Authenticate"),
                           "Basic realm=\"lintel\", charset=\"UTF-8\"");
    CU_ASSERT_STRING_EQUAL(lk_req_header(r, "Authorization"), "Basic YWxpY2U6YWxpY2UtcHd4");
    lk_req_free(r);

    r = request("/x", "Authorization: Basic Ym9iOmFsaWNlLXB3", NULL, NULL); /* bob:alice-pw */
    assert_401(in, r, "invalid username or password");
    lk_req_free(r);

    r = request("/x", "Authorization: Basic %%%", NULL, NULL);
    assert_401(in, r, "malformed basic credentials");
    lk_req_free(r);

    r = request("/x", "Authorization: Bearer abc", NULL, NULL);
    assert_401(in, r, "missing credentials");
    lk_req_free(r);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

/* ---- jwt ---------------------------------------------------------------------------------- */

static struct lk_req *bearer(const char *target, char *token)
{
    char h[4096];
    snprintf(h, sizeof(h), "Authorization: Bearer %s", token);
    free(token);
    return request(target, h, NULL, NULL);
}

static void test_jwt(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, "{ methods: [jwt] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = bearer("/x", authtest_token("HS256", ALICE_HS, NULL, "alice-app", 60, 0));
    assert_allowed(in, r, "alice", "1001");
    CU_ASSERT_PTR_NOT_NULL(lk_req_header(r, "Authorization")); /* not hidden */
    CU_ASSERT_STRING_EQUAL(lk_log_field(r, "auth_method"), "jwt");
    lk_req_free(r);

    r = bearer("/x", authtest_token("RS256", NULL, rsa, "alice-rs", 60, -10));
    assert_allowed(in, r, "alice", "1001");
    lk_req_free(r);

    r = bearer("/x", authtest_token("ES256", NULL, ec, "alice-es", 0, 0));
    assert_allowed(in, r, "alice", "1001");
    lk_req_free(r);

    static const struct {
        const char *alg, *secret, *iss;
        long exp, nbf;
        const char *reason;
    } refusals[] = {
        {"HS256", ALICE_HS, "alice-app", -5, 0, "token expired"},
        {"HS256", ALICE_HS, "alice-app", 0, 300, "token not yet valid"},
        {"HS256", "not-the-secret", "alice-app", 60, 0, "invalid signature"},
        {"HS256", ALICE_HS, "mallory-app", 60, 0, "unknown issuer"},
        {"HS384", ALICE_HS, "alice-app", 60, 0, "algorithm mismatch"},
    };
    for (size_t i = 0; i < sizeof(refusals) / sizeof(*refusals); i++) {
        r = bearer("/x", authtest_token(refusals[i].alg, refusals[i].secret, NULL, refusals[i].iss,
                                        refusals[i].exp, refusals[i].nbf));
        assert_401(in, r, refusals[i].reason);
        CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "WWW-Authenticate"),
                               "Bearer realm=\"lintel\", error=\"invalid_token\"");
        lk_req_free(r);
    }
    /* alg confusion: HS256 "signed" with the RS256 key's public PEM as the HMAC secret */
    char *pem = authtest_public_pem(rsa);
    r = bearer("/x", authtest_token("HS256", pem, NULL, "alice-rs", 60, 0));
    assert_401(in, r, "algorithm mismatch");
    lk_req_free(r);
    free(pem);
    /* an RS256 token signed by another key */
    EVP_PKEY *other = authtest_rsa_key();
    r = bearer("/x", authtest_token("RS256", NULL, other, "alice-rs", 60, 0));
    assert_401(in, r, "invalid signature");
    lk_req_free(r);
    EVP_PKEY_free(other);

    r = request("/x", "Authorization: Basic YWxpY2U6YWxpY2UtcHc=", NULL, NULL);
    assert_401(in, r, "missing credentials"); /* not a token: no error="invalid_token" */
    CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "WWW-Authenticate"), "Bearer realm=\"lintel\"");
    lk_req_free(r);

    r = request("/x", "Authorization: Bearer not.a.jwt", NULL, NULL);
    assert_401(in, r, "malformed token");
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_metric(in, "allow_jwt"), 3);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static void test_jwt_leeway(void)
{
    struct lk_instance *in =
        lk_instance_or_report(plugin, "{ methods: [jwt], jwt: { leeway: 1m } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = bearer("/x", authtest_token("HS256", ALICE_HS, NULL, "alice-app", -30, 0));
    assert_allowed(in, r, "alice", "1001");
    lk_req_free(r);
    r = bearer("/x", authtest_token("HS256", ALICE_HS, NULL, "alice-app", 0, 30));
    assert_allowed(in, r, "alice", "1001");
    lk_req_free(r);
    r = bearer("/x", authtest_token("HS256", ALICE_HS, NULL, "alice-app", -90, 0));
    assert_401(in, r, "token expired");
    lk_req_free(r);
    r = bearer("/x", authtest_token("HS256", ALICE_HS, NULL, "alice-app", 0, 90));
    assert_401(in, r, "token not yet valid");
    lk_req_free(r);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static void test_jwt_sources_and_hiding(void)
{
    struct lk_instance *in = lk_instance_or_report(
        plugin, "{ methods: [jwt], hide_credentials: true,\n"
                "  jwt: { headers: [X-Token], query: [jwt], cookies: [tok] } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    char *t = authtest_token("HS256", ALICE_HS, NULL, "alice-app", 60, 0);
    char target[2048], h[2048];
    snprintf(h, sizeof(h), "X-Token: %s", t); /* a bare token in a custom header */
    struct lk_req *r = request("/x", h, NULL, NULL);
    assert_allowed(in, r, "alice", "1001");
    CU_ASSERT_PTR_NULL(lk_req_header(r, "X-Token"));
    lk_req_free(r);

    snprintf(target, sizeof(target), "/x?a=b&jwt=%s", t);
    r = request(target, NULL, NULL, NULL);
    assert_allowed(in, r, "alice", "1001");
    CU_ASSERT_STRING_EQUAL(lk_req_query(r), "a=b");
    lk_req_free(r);

    snprintf(h, sizeof(h), "Cookie: a=1; tok=%s; b=2", t);
    r = request("/x", h, "Cookie: c=3", NULL);
    assert_allowed(in, r, "alice", "1001");
    CU_ASSERT_STRING_EQUAL(lk_req_header(r, "Cookie"), "a=1; b=2; c=3");
    lk_req_free(r);

    snprintf(h, sizeof(h), "Cookie: tok=%s", t);
    r = request("/x", h, NULL, NULL);
    assert_allowed(in, r, "alice", "1001");
    CU_ASSERT_PTR_NULL(lk_req_header(r, "Cookie"));
    lk_req_free(r);

    snprintf(h, sizeof(h), "Authorization: Bearer %s", t); /* not a configured source */
    r = request("/x", h, NULL, NULL);
    assert_401(in, r, "missing credentials");
    lk_req_free(r);
    free(t);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

/* ---- anonymous and several methods -------------------------------------------------------- */

static void test_anonymous(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, "{ methods: [key], anonymous: guest }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = request("/x", "X-Consumer-Username: alice", NULL, NULL);
    assert_allowed(in, r, "guest", "0");
    CU_ASSERT_STRING_EQUAL(lk_req_header(r, "X-Anonymous-Consumer"), "true");
    CU_ASSERT_STRING_EQUAL(lk_log_field(r, "auth_method"), "anonymous");
    lk_req_free(r);
    r = request("/x", "apikey: wrong", NULL, NULL); /* a refused credential is anonymous too */
    assert_allowed(in, r, "guest", "0");
    lk_req_free(r);
    r = request("/x", "apikey: k-bob", NULL, NULL);
    assert_allowed(in, r, "bob", NULL);
    CU_ASSERT_PTR_NULL(lk_req_header(r, "X-Anonymous-Consumer"));
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_metric(in, "allow_anonymous"), 2);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static void test_several_methods(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, "{ methods: [basic, jwt, key] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    char *t = authtest_token("HS256", ALICE_HS, NULL, "alice-app", 60, 0);
    char h[2048];
    snprintf(h, sizeof(h), "Authorization: Bearer %s", t);
    /* basic sees a Bearer (not its own), jwt accepts: the key is never looked at */
    struct lk_req *r = request("/x", h, "apikey: k-bob", NULL);
    assert_allowed(in, r, "alice", "1001");
    CU_ASSERT_STRING_EQUAL(lk_log_field(r, "auth_method"), "jwt");
    lk_req_free(r);
    /* a refused Basic credential, then a good key: the key wins */
    r = request("/x", "Authorization: Basic Ym9iOmJvYg==", "apikey: k-bob", NULL);
    assert_allowed(in, r, "bob", NULL);
    lk_req_free(r);
    /* all fail: the first refusal is the reason; one challenge per method, in order */
    r = request("/x", "Authorization: Basic Ym9iOmJvYg==", "apikey: nope", NULL);
    assert_401(in, r, "invalid username or password");
    lk_req_free(r);
    snprintf(h, sizeof(h), "Authorization: Bearer %sx", t);
    r = request("/x", h, NULL, NULL);
    assert_401(in, r, "invalid signature");
    lk_req_free(r);
    free(t);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

/* ---- external ----------------------------------------------------------------------------- */

#define SVC "http://auth.test/check"

static const char ext_config[] = "methods: [external]\n"
                                 "external:\n"
                                 "  url: " SVC "\n"
                                 "  forward_headers: [Authorization, X-Session]\n"
                                 "  upstream_headers: [X-User, X-Scopes]\n"
                                 "  consumer_header: X-Auth-Consumer\n"
                                 "  cache_ttl: 30s\n";

static int has_line(const struct lk_http_call *c, const char *line)
{
    for (size_t i = 0; c && c->headers[i]; i++)
        if (strcmp(c->headers[i], line) == 0)
            return 1;
    return 0;
}

/* Runs ACCESS, which must pause on the call, then lets the answer come; returns the result the
 * request resumed with. */
static enum lintel_result run_paused(struct lk_instance *in, struct lk_req *r, uint64_t ms)
{
    enum lintel_result res = LINTEL_ERROR;
    CU_ASSERT_EQUAL_FATAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_PAUSE);
    lk_advance(ms);
    CU_ASSERT_TRUE(lk_resumed(r, &res));
    return res;
}

static void test_external_allow_and_cache(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, ext_config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    lk_http_respond(SVC, 204, NULL, 20);
    lk_http_respond_header(SVC, "X-User", "u-7");
    lk_http_respond_header(SVC, "X-Auth-Consumer", "alice");
    struct lk_req *r =
        request("/x?y=1", "Authorization: Bearer opaque-1", "X-User: forged", "Host: api.example");
    CU_ASSERT_EQUAL_FATAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_PAUSE);
    CU_ASSERT_PTR_NULL(lk_req_header(r, "X-User")); /* the client's claim is gone at once */
    lk_advance(20);
    enum lintel_result res;
    CU_ASSERT(lk_resumed(r, &res) && res == LINTEL_CONTINUE);
    CU_ASSERT_STRING_EQUAL(lk_consumer_name(r), "alice");
    CU_ASSERT_STRING_EQUAL(lk_req_header(r, "X-Consumer-Id"), "1001");
    CU_ASSERT_STRING_EQUAL(lk_req_header(r, "X-User"), "u-7");
    CU_ASSERT_PTR_NULL(lk_req_header(r, "X-Scopes"));
    CU_ASSERT_STRING_EQUAL(lk_req_header(r, "Authorization"), "Bearer opaque-1");
    CU_ASSERT_STRING_EQUAL(lk_log_field(r, "auth_method"), "external");
    const struct lk_http_call *c = lk_http_call_at(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(c->method, "GET");
    CU_ASSERT_STRING_EQUAL(c->url, SVC);
    CU_ASSERT_EQUAL(c->timeout_ms, 2000);
    CU_ASSERT_TRUE(has_line(c, "Authorization: Bearer opaque-1"));
    CU_ASSERT_TRUE(has_line(c, "X-Forwarded-Method: GET"));
    CU_ASSERT_TRUE(has_line(c, "X-Forwarded-Uri: /x?y=1"));
    CU_ASSERT_TRUE(has_line(c, "X-Forwarded-Host: api.example"));
    CU_ASSERT_TRUE(has_line(c, "X-Forwarded-For: 127.0.0.1"));
    CU_ASSERT_FALSE(has_line(c, "X-User: forged"));
    lk_req_free(r);

    /* The same credential again: allowed from the cache, without a call, with the same headers */
    r = request("/other", "Authorization: Bearer opaque-1", "X-User: forged", NULL);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_CONTINUE);
    CU_ASSERT_STRING_EQUAL(lk_consumer_name(r), "alice");
    CU_ASSERT_STRING_EQUAL(lk_req_header(r, "X-User"), "u-7");
    CU_ASSERT_PTR_NULL(lk_http_call_at(1));
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_metric(in, "external_cache_hit"), 1);

    /* Another credential is asked about; the service names a consumer nobody declared */
    lk_http_respond(SVC, 200, NULL, 20);
    lk_http_respond_header(SVC, "X-Auth-Consumer", "svc-user");
    r = request("/x", "Authorization: Bearer opaque-2", NULL, NULL);
    CU_ASSERT_EQUAL(run_paused(in, r, 20), LINTEL_CONTINUE);
    CU_ASSERT_STRING_EQUAL(lk_consumer_name(r), "svc-user");
    CU_ASSERT_PTR_NULL(lk_req_header(r, "X-Consumer-Id"));
    CU_ASSERT_PTR_NOT_NULL(lk_http_call_at(1));
    lk_req_free(r);

    /* Past the TTL the first credential is asked about again */
    lk_advance(31000);
    r = request("/x", "Authorization: Bearer opaque-1", NULL, NULL);
    CU_ASSERT_EQUAL(run_paused(in, r, 20), LINTEL_CONTINUE);
    CU_ASSERT_PTR_NOT_NULL(lk_http_call_at(2));
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_metric(in, "external_call"), 3);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static void test_external_denial_passes_through(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, ext_config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    lk_http_respond(SVC, 403, "{\"message\":\"scope missing\"}", 5);
    lk_http_respond_header(SVC, "Content-Type", "application/problem+json");
    lk_http_respond_header(SVC, "WWW-Authenticate", "Bearer realm=\"corp\", scope=\"x\"");
    lk_http_respond_header(SVC, "X-Internal", "do not leak");
    for (int i = 0; i < 2; i++) { /* a refusal is never cached */
        struct lk_req *r = request("/x", "Authorization: Bearer opaque-1", NULL, NULL);
        CU_ASSERT_EQUAL(run_paused(in, r, 5), LINTEL_RESPOND);
        CU_ASSERT_EQUAL(lk_resp_status(r), 403);
        CU_ASSERT_STRING_EQUAL(lk_resp_body(r, NULL), "{\"message\":\"scope missing\"}");
        CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "Content-Type"), "application/problem+json");
        CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "WWW-Authenticate"),
                               "Bearer realm=\"corp\", scope=\"x\"");
        CU_ASSERT_PTR_NULL(lk_resp_header(r, "X-Internal"));
        CU_ASSERT_PTR_NULL(lk_consumer_name(r));
        lk_req_free(r);
    }
    CU_ASSERT_PTR_NOT_NULL(lk_http_call_at(1));
    /* A redirect to a login page, too (Location is passed by default) */
    lk_http_respond(SVC, 302, NULL, 5);
    lk_http_respond_header(SVC, "Location", "https://login.example/?next=/x");
    struct lk_req *r = request("/x", NULL, NULL, NULL); /* no credential: asked all the same */
    CU_ASSERT_EQUAL(run_paused(in, r, 5), LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), 302);
    CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "Location"), "https://login.example/?next=/x");
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_metric(in, "deny"), 3);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static void test_external_down(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, ext_config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    static const struct {
        int status;
        uint64_t delay, wait;
    } downs[] = {{0, 0, 1}, {502, 1, 1}, {200, 5000, 2000}}; /* refused, 5xx, timeout */
    for (size_t i = 0; i < sizeof(downs) / sizeof(*downs); i++) {
        lk_http_respond(SVC, downs[i].status, "internal detail", downs[i].delay);
        struct lk_req *r = request("/x", "Authorization: Bearer opaque-1", NULL, NULL);
        CU_ASSERT_EQUAL(run_paused(in, r, downs[i].wait), LINTEL_RESPOND);
        CU_ASSERT_EQUAL(lk_resp_status(r), 503);
        CU_ASSERT_STRING_EQUAL(lk_resp_body(r, NULL),
                               "{\"status\":503,\"error\":\"authentication service unavailable\"}");
        lk_req_free(r);
    }
    CU_ASSERT_EQUAL(lk_metric(in, "external_unavailable"), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(lk_log_lines(), "warn [auth/auth] external auth " SVC));
    lk_instance_free(in);

    in = lk_instance_or_report(plugin, "{ methods: [external], external: { url: '" SVC
                                       "', allow_degradation: true } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    lk_http_respond(SVC, 0, NULL, 0);
    struct lk_req *r = request("/x", "Authorization: Bearer opaque-1", "X-Consumer-Id: 1", NULL);
    CU_ASSERT_EQUAL(run_paused(in, r, 1), LINTEL_CONTINUE);
    CU_ASSERT_PTR_NULL(lk_consumer_name(r));
    CU_ASSERT_PTR_NULL(lk_req_header(r, "X-Consumer-Id"));
    CU_ASSERT_STRING_EQUAL(lk_log_field(r, "auth_method"), "degraded");
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_metric(in, "allow_degraded"), 1);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static void test_external_with_other_methods(void)
{
    struct lk_instance *in =
        lk_instance_or_report(plugin, "{ methods: [external, key], hide_credentials: true,\n"
                                      "  external: { url: '" SVC "' } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    lk_http_respond(SVC, 401, "who are you", 5);
    /* the service refuses, the key that follows accepts */
    struct lk_req *r = request("/x", "Authorization: Bearer x", "apikey: k-alice-1", NULL);
    CU_ASSERT_EQUAL(run_paused(in, r, 5), LINTEL_CONTINUE);
    CU_ASSERT_STRING_EQUAL(lk_consumer_name(r), "alice");
    CU_ASSERT_PTR_NULL(lk_req_header(r, "apikey"));
    CU_ASSERT_STRING_EQUAL(lk_req_header(r, "Authorization"), "Bearer x"); /* not the credential */
    lk_req_free(r);
    /* both refuse: the service's answer is the one the client gets */
    r = request("/x", "Authorization: Bearer x", "apikey: nope", NULL);
    CU_ASSERT_EQUAL(run_paused(in, r, 5), LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), 401);
    CU_ASSERT_STRING_EQUAL(lk_resp_body(r, NULL), "who are you");
    lk_req_free(r);
    /* allowed by the service: the forwarded credential is hidden */
    lk_http_respond(SVC, 200, NULL, 5);
    r = request("/x", "Authorization: Bearer x", NULL, NULL);
    CU_ASSERT_EQUAL(run_paused(in, r, 5), LINTEL_CONTINUE);
    CU_ASSERT_PTR_NULL(lk_req_header(r, "Authorization"));
    CU_ASSERT_PTR_NULL(lk_consumer_name(r)); /* the service named nobody */
    lk_req_free(r);
    lk_instance_free(in);

    /* a good key first: no call at all; the service down and anonymous: still 503 */
    in = lk_instance_or_report(
        plugin, "{ methods: [key, external], anonymous: guest, external: { url: '" SVC "' } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    lk_http_reset();
    r = request("/x", "apikey: k-bob", NULL, NULL);
    assert_allowed(in, r, "bob", NULL);
    CU_ASSERT_PTR_NULL(lk_http_call_at(0));
    lk_req_free(r);
    lk_http_respond(SVC, 0, NULL, 0);
    r = request("/x", NULL, NULL, NULL);
    CU_ASSERT_EQUAL(run_paused(in, r, 1), LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), 503);
    lk_req_free(r);
    lk_http_respond(SVC, 403, "no", 0);
    r = request("/x", NULL, NULL, NULL);
    CU_ASSERT_EQUAL(run_paused(in, r, 1), LINTEL_CONTINUE); /* refused: anonymous */
    CU_ASSERT_STRING_EQUAL(lk_consumer_name(r), "guest");
    lk_req_free(r);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

/* Two routes may run instances with the same name (one cache namespace): a decision cached for
 * one service must never answer for another. */
static void test_external_cache_per_service(void)
{
    struct lk_instance *a = lk_instance_or_report(plugin, ext_config);
    struct lk_instance *b = lk_instance_or_report(
        plugin, "{ methods: [external], external: { url: 'http://other.test/', cache_ttl: 30s } }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    lk_http_respond(SVC, 200, NULL, 1);
    lk_http_respond("http://other.test/", 401, "no", 1);
    struct lk_req *r = request("/x", "Authorization: Bearer opaque-1", NULL, NULL);
    CU_ASSERT_EQUAL(run_paused(a, r, 1), LINTEL_CONTINUE);
    lk_req_free(r);
    r = request("/x", "Authorization: Bearer opaque-1", NULL, NULL);
    CU_ASSERT_EQUAL(run_paused(b, r, 1), LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), 401);
    lk_req_free(r);
    lk_instance_free(a);
    lk_instance_free(b);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

/* The client goes away while the call is out: the callback never runs, nothing leaks. */
static void test_external_client_gone(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, ext_config);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    lk_http_respond(SVC, 200, NULL, 50);
    struct lk_req *r = request("/x", "Authorization: Bearer opaque-1", NULL, NULL);
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_PAUSE);
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_advance(100), 0);
    lk_instance_free(in);
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static CU_TestInfo auth_tests[] = {
    {"config errors point at the offending node", test_config_errors},
    {"credential errors point into consumers", test_credential_errors},
    {"key: header, query, env: secret, refusals", test_key},
    {"key: configured names, hide_credentials", test_key_names_and_hiding},
    {"basic: allow, wrong password, unknown user, malformed, hide", test_basic},
    {"jwt: HS256, RS256, ES256; expired, nbf, signature, issuer, alg confusion", test_jwt},
    {"jwt: leeway", test_jwt_leeway},
    {"jwt: header, query and cookie sources, hide_credentials", test_jwt_sources_and_hiding},
    {"anonymous consumer", test_anonymous},
    {"several methods: first success wins, first refusal is the reason", test_several_methods},
    {"external: allow, upstream headers, consumer, cache and TTL", test_external_allow_and_cache},
    {"external: the service's refusal passes through", test_external_denial_passes_through},
    {"external: service down is 503, or degradation", test_external_down},
    {"external: with other methods, hide, anonymous", test_external_with_other_methods},
    {"external: cached decisions are per service", test_external_cache_per_service},
    {"external: client gone while the call is out", test_external_client_gone},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"auth", suite_init, suite_clean, test_setup, NULL, auth_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    /* The pure-function suites go in first; lk_test_run adds these and runs them all. */
    if (CU_initialize_registry() != CUE_SUCCESS ||
        CU_register_suites(auth_pure_suites) != CUE_SUCCESS)
        return 1;
    return lk_test_run(suites);
}
