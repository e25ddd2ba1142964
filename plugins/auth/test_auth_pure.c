/* Tests the auth plugin's pure parts, compiled into the test and called directly: base64,
 * constant-time comparison, digest tables, salted passwords and Basic parsing (auth_crypto.c),
 * JSON scanning (auth_json.c), JWT verification (auth_jwt.c). The whole plugin, through the SDK
 * test kit, is tested by test_auth.c. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth-internal.h"
#include "test_auth_keys.h"

#define S(lit) ((struct lintel_str){lit, sizeof(lit) - 1})

static long b64(const char *in, int url, char *out)
{
    long n = auth_base64_decode(in, strlen(in), url, (unsigned char *)out, 64);
    if (n >= 0)
        out[n] = '\0';
    return n;
}

static void test_base64(void)
{
    char out[65];
    CU_ASSERT_EQUAL(b64("YWxpY2U6czNjcmV0", 0, out), 12);
    CU_ASSERT_STRING_EQUAL(out, "alice:s3cret");
    CU_ASSERT_EQUAL(b64("YQ==", 0, out), 1);
    CU_ASSERT_STRING_EQUAL(out, "a");
    CU_ASSERT_EQUAL(b64("YWI=", 0, out), 2);
    CU_ASSERT_EQUAL(b64("YWI", 0, out), 2); /* padding may be left out */
    CU_ASSERT_EQUAL(b64("", 0, out), 0);
    CU_ASSERT_EQUAL(b64("Y===", 0, out), -1);
    CU_ASSERT_EQUAL(b64("YQ=a", 0, out), -1); /* padding in the middle */
    CU_ASSERT_EQUAL(b64("YR==", 0, out), -1); /* non-zero spare bits: non-canonical */
    CU_ASSERT_EQUAL(b64("Y", 0, out), -1);
    CU_ASSERT_EQUAL(b64("a-_w", 0, out), -1); /* url alphabet in standard base64 */
    CU_ASSERT_EQUAL(b64("a-_w", 1, out), 3);
    CU_ASSERT_EQUAL(b64("a+/w", 1, out), -1);
    CU_ASSERT_EQUAL(b64("YQ==", 1, out), -1); /* JWT parts have no padding */
    unsigned char small[2];
    CU_ASSERT_EQUAL(auth_base64_decode("YWJj", 4, 0, small, sizeof(small)), -1);
}

static void test_equal(void)
{
    CU_ASSERT_TRUE(auth_equal("abc", 3, "abc", 3));
    CU_ASSERT_FALSE(auth_equal("abc", 3, "abd", 3));
    CU_ASSERT_FALSE(auth_equal("abc", 3, "abcd", 4));
    CU_ASSERT_TRUE(auth_equal("", 0, "", 0));
}

static void test_table(void)
{
    struct auth_table t = {0};
    uint32_t v = 0;
    CU_ASSERT_EQUAL(auth_table_get(&t, NULL, "x", 1, &v), -1); /* empty */
    char key[16];
    for (uint32_t i = 0; i < 100; i++) { /* grows past its first 16 slots */
        int n = snprintf(key, sizeof(key), "key-%u", i);
        CU_ASSERT_EQUAL(auth_table_put(&t, NULL, key, (size_t)n, i, NULL), 0);
    }
    CU_ASSERT_EQUAL(auth_table_put(&t, NULL, "key-42", 6, 7, &v), 1);
    CU_ASSERT_EQUAL(v, 42);
    for (uint32_t i = 0; i < 100; i++) {
        int n = snprintf(key, sizeof(key), "key-%u", i);
        CU_ASSERT(auth_table_get(&t, NULL, key, (size_t)n, &v) == 0 && v == i);
    }
    CU_ASSERT_EQUAL(auth_table_get(&t, NULL, "key-100", 7, &v), -1);
    CU_ASSERT_EQUAL(auth_table_get(&t, NULL, "key-4", 4, &v), -1); /* a prefix is another key */
    auth_table_free(&t);
}

static void test_password(void)
{
    char *text = authtest_password_sha256("pepper", "s3cret");
    struct auth_password p;
    CU_ASSERT_EQUAL_FATAL(auth_password_parse(text, strlen(text), &p), 0);
    CU_ASSERT_TRUE(auth_password_check(&p, NULL, "s3cret", 6));
    CU_ASSERT_FALSE(auth_password_check(&p, NULL, "s3cre", 5));
    CU_ASSERT_FALSE(auth_password_check(&p, NULL, "S3cret", 6));
    auth_password_free(&p);
    /* A '$' in the salt is the salt's: the hash is after the last one. */
    free(text);
    text = authtest_password_sha256("a$b", "pw");
    CU_ASSERT_EQUAL_FATAL(auth_password_parse(text, strlen(text), &p), 0);
    CU_ASSERT_TRUE(auth_password_check(&p, NULL, "pw", 2));
    auth_password_free(&p);
    free(text);

    const char *bad[] = {
        "nosalt", "$0000000000000000000000000000000000000000000000000000000000000000", "s$00",
        "s$000000000000000000000000000000000000000000000000000000000000000g",
        "s$00000000000000000000000000000000000000000000000000000000000000000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        CU_ASSERT_EQUAL(auth_password_parse(bad[i], strlen(bad[i]), &p), -1);
}

static void test_basic_parse(void)
{
    unsigned char buf[64];
    struct lintel_str u, p;
    const char *v = "Basic YWxpY2U6czNjcjp0"; /* alice:s3cr:t */
    CU_ASSERT_EQUAL(auth_basic_parse(v, strlen(v), buf, sizeof(buf), &u, &p), 1);
    CU_ASSERT(u.len == 5 && memcmp(u.ptr, "alice", 5) == 0);
    CU_ASSERT(p.len == 6 && memcmp(p.ptr, "s3cr:t", 6) == 0); /* the first ':' splits */
    v = "basic   YWxpY2U6 ";                                  /* alice: (empty password) */
    CU_ASSERT_EQUAL(auth_basic_parse(v, strlen(v), buf, sizeof(buf), &u, &p), 1);
    CU_ASSERT_EQUAL(p.len, 0);
    v = "Bearer abc";
    CU_ASSERT_EQUAL(auth_basic_parse(v, strlen(v), buf, sizeof(buf), &u, &p), 0);
    v = "Basic YWxpY2U"; /* alice: no colon */
    CU_ASSERT_EQUAL(auth_basic_parse(v, strlen(v), buf, sizeof(buf), &u, &p), -1);
    v = "Basic OnB3"; /* ":pw": no user */
    CU_ASSERT_EQUAL(auth_basic_parse(v, strlen(v), buf, sizeof(buf), &u, &p), -1);
    v = "Basic !!!";
    CU_ASSERT_EQUAL(auth_basic_parse(v, strlen(v), buf, sizeof(buf), &u, &p), -1);
}

static int members(const char *json, struct lintel_str out[3])
{
    static const char *const names[] = {"iss", "exp", "nbf"};
    return auth_json_members(json, strlen(json), names, 3, out);
}

static void test_json_members(void)
{
    struct lintel_str m[3];
    CU_ASSERT_EQUAL(members(" { \"iss\" : \"a\\\"b\", \"x\":{\"iss\":[1,2,{\"y\":null}]},"
                            "\"exp\":1.5e9 } ",
                            m),
                    0);
    CU_ASSERT(m[0].len == 6 && memcmp(m[0].ptr, "\"a\\\"b\"", 6) == 0);
    CU_ASSERT(m[1].len == 5 && memcmp(m[1].ptr, "1.5e9", 5) == 0);
    CU_ASSERT_PTR_NULL(m[2].ptr); /* nested "iss" is not top-level */
    CU_ASSERT_EQUAL(members("{}", m), 0);
    CU_ASSERT_PTR_NULL(m[0].ptr);
    const char *bad[] = {
        "",
        "[]",
        "{",
        "{\"iss\":\"a\",\"iss\":\"b\"}", /* duplicate wanted name */
        "{\"i\\u0073s\":\"a\"}",         /* escaped name */
        "{\"iss\":\"a\"} x",
        "{\"iss\":01}",
        "{\"iss\":tru}",
        "{\"iss\":\"a\",}",
        "{\"iss\":\"a\nb\"}", /* raw control character */
        "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        CU_ASSERT_EQUAL(members(bad[i], m), -1);
        if (members(bad[i], m) != -1)
            fprintf(stderr, "accepted: %s\n", bad[i]);
    }
    /* a duplicate name that is not wanted is the reader's business, not ours */
    CU_ASSERT_EQUAL(members("{\"x\":1,\"x\":2}", m), 0);
}

static void test_json_values(void)
{
    char out[32];
    long n = auth_json_string(S("\"a\\u00e9\\ud83d\\ude00\\n\\/\""), out, sizeof(out));
    CU_ASSERT_EQUAL(n, 9);
    CU_ASSERT(n == 9 && memcmp(out, "a\xc3\xa9\xf0\x9f\x98\x80\n/", 9) == 0);
    CU_ASSERT_EQUAL(auth_json_string(S("\"abcdef\""), out, 3), -1);
    CU_ASSERT_EQUAL(auth_json_string(S("12"), out, sizeof(out)), -1);
    int64_t s;
    CU_ASSERT(auth_json_seconds(S("1700000000"), &s) == 0 && s == 1700000000);
    CU_ASSERT(auth_json_seconds(S("1.7e9"), &s) == 0 && s == 1700000000);
    CU_ASSERT(auth_json_seconds(S("10.9"), &s) == 0 && s == 10);
    CU_ASSERT(auth_json_seconds(S("-1.5"), &s) == 0 && s == -2);
    CU_ASSERT_EQUAL(auth_json_seconds(S("\"10\""), &s), -1);
    CU_ASSERT_EQUAL(auth_json_seconds(S("1e300"), &s), -1);
}

/* ---- JWT ---------------------------------------------------------------------------------- */

static struct auth_jwt_key keys[4];
static EVP_PKEY *rsa, *ec, *other_rsa;

static const struct auth_jwt_key *lookup(void *arg, const char *iss, size_t len)
{
    (void)arg;
    static const char *const issuers[] = {"hs", "rs", "es", "hs512"};
    for (int i = 0; i < 4; i++)
        if (strlen(issuers[i]) == len && memcmp(issuers[i], iss, len) == 0)
            return &keys[i];
    return NULL;
}

static int jwt_init(void)
{
    rsa = authtest_rsa_key();
    ec = authtest_ec_key();
    other_rsa = authtest_rsa_key();
    const char *why = NULL;
    char *rsa_pem = authtest_public_pem(rsa), *ec_pem = authtest_public_pem(ec);
    keys[0] = (struct auth_jwt_key){.alg = AUTH_HS256, .consumer = 0};
    keys[1] = (struct auth_jwt_key){.alg = AUTH_RS256, .consumer = 1};
    keys[1].pkey = auth_jwt_load_key(rsa_pem, strlen(rsa_pem), AUTH_RS256, &why);
    keys[2] = (struct auth_jwt_key){.alg = AUTH_ES256, .consumer = 2};
    keys[2].pkey = auth_jwt_load_key(ec_pem, strlen(ec_pem), AUTH_ES256, &why);
    keys[3] = (struct auth_jwt_key){.alg = AUTH_HS512, .consumer = 3};
    free(rsa_pem);
    free(ec_pem);
    int rc = keys[1].pkey && keys[2].pkey ? 0 : -1;
    rc |= auth_jwt_key_prepare(&keys[0], NULL, "hs-secret", 9, &why);
    rc |= auth_jwt_key_prepare(&keys[1], NULL, NULL, 0, &why);
    rc |= auth_jwt_key_prepare(&keys[2], NULL, NULL, 0, &why);
    rc |= auth_jwt_key_prepare(&keys[3], NULL, "k512", 4, &why);
    return rc;
}

static int jwt_clean(void)
{
    for (int i = 0; i < 4; i++)
        auth_jwt_key_free(&keys[i]);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(other_rsa);
    return 0;
}

/* Verifies token (freed) with leeway; returns the reason or "ok:N" (N the consumer). */
static const char *verify(char *token, int64_t leeway)
{
    static char ok[16];
    size_t len = strlen(token), cap = auth_jwt_scratch_size(len);
    unsigned char *scratch = malloc(cap);
    const struct auth_jwt_key *k = NULL;
    const char *why =
        auth_jwt_verify(token, len, (int64_t)time(NULL), leeway, lookup, NULL, scratch, cap, &k);
    free(scratch);
    free(token);
    if (why)
        return why;
    snprintf(ok, sizeof(ok), "ok:%u", k->consumer);
    return ok;
}

static void test_jwt_algorithms(void)
{
    CU_ASSERT_STRING_EQUAL(verify(authtest_token("HS256", "hs-secret", NULL, "hs", 60, 0), 0),
                           "ok:0");
    CU_ASSERT_STRING_EQUAL(verify(authtest_token("RS256", NULL, rsa, "rs", 60, -5), 0), "ok:1");
    CU_ASSERT_STRING_EQUAL(verify(authtest_token("ES256", NULL, ec, "es", 0, 0), 0), "ok:2");
    CU_ASSERT_STRING_EQUAL(verify(authtest_token("HS512", "k512", NULL, "hs512", 0, 0), 0), "ok:3");
    /* Many ES256 signatures: r and s with and without a high bit or leading zeros. */
    int good = 0;
    for (int i = 0; i < 64; i++)
        good += strcmp(verify(authtest_token("ES256", NULL, ec, "es", 100 + i, 0), 0), "ok:2") == 0;
    CU_ASSERT_EQUAL(good, 64);
}

static void test_jwt_refusals(void)
{
    CU_ASSERT_STRING_EQUAL(verify(authtest_token("HS256", "wrong", NULL, "hs", 0, 0), 0),
                           "invalid signature");
    CU_ASSERT_STRING_EQUAL(verify(authtest_token("RS256", NULL, other_rsa, "rs", 0, 0), 0),
                           "invalid signature");
    CU_ASSERT_STRING_EQUAL(verify(authtest_token("HS256", "hs-secret", NULL, "nobody", 0, 0), 0),
                           "unknown issuer");
    CU_ASSERT_STRING_EQUAL(
        verify(authtest_jwt("HS256", "hs-secret", NULL, "{\"alg\":\"HS256\"}", "{\"sub\":\"x\"}"),
               0),
        "missing issuer");
    /* alg confusion: an HS256 token whose "secret" is the RSA public key, against the RS256 key */
    char *pem = authtest_public_pem(rsa);
    CU_ASSERT_STRING_EQUAL(verify(authtest_token("HS256", pem, NULL, "rs", 0, 0), 0),
                           "algorithm mismatch");
    free(pem);
    CU_ASSERT_STRING_EQUAL(verify(authtest_token("RS256", NULL, rsa, "hs", 0, 0), 0),
                           "algorithm mismatch");
    CU_ASSERT_STRING_EQUAL(
        verify(authtest_jwt("none", NULL, NULL, "{\"alg\":\"none\"}", "{\"iss\":\"hs\"}"), 0),
        "unsupported algorithm");
    CU_ASSERT_STRING_EQUAL(
        verify(authtest_jwt("HS256", "hs-secret", NULL, "{\"alg\":\"HS256\",\"crit\":[\"b64\"]}",
                            "{\"iss\":\"hs\"}"),
               0),
        "unsupported critical header");
    /* RS256 with an ES256 key's signature length, ES256 with a truncated signature */
    char *t = authtest_token("ES256", NULL, ec, "es", 0, 0);
    t[strlen(t) - 4] = '\0';
    CU_ASSERT_STRING_EQUAL(verify(t, 0), "invalid signature");
    const char *malformed[] = {"", "a.b", "a.b.c.d", "....", "eyJhbGciOiJIUzI1NiJ9..", "!.!.!"};
    for (size_t i = 0; i < sizeof(malformed) / sizeof(*malformed); i++) {
        const char *why = verify(strdup(malformed[i]), 0);
        CU_ASSERT(strcmp(why, "malformed token") == 0 || strcmp(why, "unsupported algorithm") == 0);
    }
    /* a payload that is not JSON, correctly signed */
    CU_ASSERT_STRING_EQUAL(
        verify(authtest_jwt("HS256", "hs-secret", NULL, "{\"alg\":\"HS256\"}", "iss=hs"), 0),
        "malformed token");
}

static void test_jwt_times(void)
{
    CU_ASSERT_STRING_EQUAL(verify(authtest_token("HS256", "hs-secret", NULL, "hs", -1, 0), 0),
                           "token expired");
    CU_ASSERT_STRING_EQUAL(verify(authtest_token("HS256", "hs-secret", NULL, "hs", -30, 0), 60),
                           "ok:0"); /* expired 30 s ago, 60 s of leeway */
    CU_ASSERT_STRING_EQUAL(verify(authtest_token("HS256", "hs-secret", NULL, "hs", -90, 0), 60),
                           "token expired");
    CU_ASSERT_STRING_EQUAL(verify(authtest_token("HS256", "hs-secret", NULL, "hs", 0, 120), 0),
                           "token not yet valid");
    CU_ASSERT_STRING_EQUAL(verify(authtest_token("HS256", "hs-secret", NULL, "hs", 0, 30), 60),
                           "ok:0");
    CU_ASSERT_STRING_EQUAL(verify(authtest_jwt("HS256", "hs-secret", NULL, "{\"alg\":\"HS256\"}",
                                               "{\"iss\":\"hs\",\"exp\":\"tomorrow\"}"),
                                  0),
                           "malformed token");
}

static void test_jwt_load_key(void)
{
    const char *why = NULL;
    char *pem = authtest_public_pem(ec);
    CU_ASSERT_PTR_NULL(auth_jwt_load_key(pem, strlen(pem), AUTH_RS256, &why));
    CU_ASSERT_STRING_EQUAL(why, "RS256 needs an RSA public key");
    free(pem);
    pem = authtest_public_pem(rsa);
    CU_ASSERT_PTR_NULL(auth_jwt_load_key(pem, strlen(pem), AUTH_ES256, &why));
    CU_ASSERT_STRING_EQUAL(why, "ES256 needs an EC P-256 public key");
    free(pem);
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    pem = authtest_public_pem(small);
    CU_ASSERT_PTR_NULL(auth_jwt_load_key(pem, strlen(pem), AUTH_RS256, &why));
    CU_ASSERT_STRING_EQUAL(why, "RSA key must have at least 2048 bits");
    free(pem);
    EVP_PKEY_free(small);
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    pem = authtest_public_pem(p384);
    CU_ASSERT_PTR_NULL(auth_jwt_load_key(pem, strlen(pem), AUTH_ES256, &why));
    free(pem);
    EVP_PKEY_free(p384);
    CU_ASSERT_PTR_NULL(auth_jwt_load_key("hello", 5, AUTH_RS256, &why));
    CU_ASSERT_STRING_EQUAL(why, "not a PEM public key");
}

static CU_TestInfo pure_tests[] = {
    {"base64 and base64url decoding, canonical only", test_base64},
    {"constant-time equality", test_equal},
    {"digest tables: put, duplicate, grow, get", test_table},
    {"salted sha256 passwords", test_password},
    {"Basic credentials parsing", test_basic_parse},
    {"JSON top-level members, strictness", test_json_members},
    {"JSON strings and NumericDates", test_json_values},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo jwt_tests[] = {
    {"HS256, HS512, RS256, ES256 tokens verify", test_jwt_algorithms},
    {"bad signature, issuer, alg confusion, none, crit, malformed", test_jwt_refusals},
    {"exp and nbf with leeway", test_jwt_times},
    {"public keys must fit their algorithm", test_jwt_load_key},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo auth_pure_suites[] = {
    {"auth pure", NULL, NULL, NULL, NULL, pure_tests},
    {"auth jwt", jwt_init, jwt_clean, NULL, NULL, jwt_tests},
    CU_SUITE_INFO_NULL,
};
