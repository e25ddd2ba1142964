/* Tests canonical.c: the text rules of docs/plugins/signature.md (query pairs, the Authorization
 * header, header lists, dates, nonces, hex), and the page's worked examples, recomputed here with
 * OpenSSL so that the numbers a client author copies are right. */
#include <CUnit/Basic.h>
#include <lintel/testkit.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "signature-internal.h"

/* The canonical query of q (sorted, joined), skipping skip; in a static buffer. */
static const char *canonical_query(const char *q, const char *skip)
{
    static char out[512];
    struct sig_param v[32];
    CU_ASSERT_FATAL(sig_query_max(q, strlen(q)) <= 32);
    size_t n = sig_query_split(q, strlen(q), v);
    sig_params_sort(v, n);
    size_t len = sig_params_join(v, n, skip, NULL);
    CU_ASSERT_FATAL(len < sizeof(out));
    CU_ASSERT_EQUAL(sig_params_join(v, n, skip, out), len);
    out[len] = '\0';
    return out;
}

static void test_query(void)
{
    CU_ASSERT_STRING_EQUAL(canonical_query("", NULL), "");
    CU_ASSERT_STRING_EQUAL(canonical_query("b=2&a=1", NULL), "a=1&b=2");
    /* repeated names sort by value; empty pieces go; a piece without '=' has an empty value */
    CU_ASSERT_STRING_EQUAL(canonical_query("&b=2&a=1&&a=0&c&", NULL), "a=0&a=1&b=2&c=");
    /* names compare as bytes, a prefix first: "a" < "a-" < "ab" */
    CU_ASSERT_STRING_EQUAL(canonical_query("ab=1&a-=3&a=2", NULL), "a=2&a-=3&ab=1");
    /* name before value: "a=z" sorts before "a-=a" although '=' > '-' */
    CU_ASSERT_STRING_EQUAL(canonical_query("a-=a&a=z", NULL), "a=z&a-=a");
    /* raw bytes, never decoded: "%20" (0x25) before "+" (0x2b); '=' after the first stays */
    CU_ASSERT_STRING_EQUAL(canonical_query("x=+&x=%20&y=b=c", NULL), "x=%20&x=+&y=b=c");
    CU_ASSERT_STRING_EQUAL(canonical_query("=v&n=", NULL), "=v&n=");
    CU_ASSERT_STRING_EQUAL(canonical_query("sign=ab&b=1&sign=cd&a=2", "sign"), "a=2&b=1");
    CU_ASSERT_STRING_EQUAL(canonical_query("signature=1&sign=2", "sign"), "signature=1");
    CU_ASSERT_EQUAL(sig_query_max("a&b&&c", 6), 4);
}

static void test_authorization(void)
{
    struct sig_auth a;
    const char *why = NULL;
    const char *v = "HMAC-SHA256 key_id=shop-1,signed_headers=host;content-type,signature=ab12";
    CU_ASSERT_EQUAL_FATAL(sig_auth_parse(v, strlen(v), &a, &why), 0);
    CU_ASSERT_EQUAL(a.alg, SIG_HMAC_SHA256);
    CU_ASSERT(a.key_id.len == 6 && memcmp(a.key_id.ptr, "shop-1", 6) == 0);
    CU_ASSERT(a.signed_headers.len == 17 &&
              memcmp(a.signed_headers.ptr, "host;content-type", 17) == 0);
    CU_ASSERT(a.signature.len == 4 && memcmp(a.signature.ptr, "ab12", 4) == 0);

    /* quoted values, spaces around commas, any order, the scheme in any case */
    v = "hmac-sha512  signature=\"ff\" , key_id=\"k\",signed_headers=\"\"";
    CU_ASSERT_EQUAL_FATAL(sig_auth_parse(v, strlen(v), &a, &why), 0);
    CU_ASSERT_EQUAL(a.alg, SIG_HMAC_SHA512);
    CU_ASSERT(a.key_id.len == 1 && a.key_id.ptr[0] == 'k');
    CU_ASSERT_EQUAL(a.signed_headers.len, 0);
    v = "HMAC-SHA1 key_id=k,signature=00";
    CU_ASSERT_EQUAL_FATAL(sig_auth_parse(v, strlen(v), &a, &why), 0);
    CU_ASSERT_EQUAL(a.alg, SIG_HMAC_SHA1);
    CU_ASSERT_PTR_NULL(a.signed_headers.ptr);

    static const char *const bad[] = {
        "HMAC-SHA256",                                /* no parameters */
        "HMAC-SHA256 ",                               /* no parameters */
        "HMAC-SHA256 key_id=k",                       /* no signature */
        "HMAC-SHA256 signature=ab",                   /* no key_id */
        "HMAC-SHA256 key_id=,signature=ab",           /* empty key_id */
        "HMAC-SHA256 key_id=k,signature=ab,",         /* trailing comma */
        "HMAC-SHA256 key_id=k,key_id=j,signature=ab", /* repeated */
        "HMAC-SHA256 key_id=k,signature=ab,realm=x",  /* unknown parameter */
        "HMAC-SHA256 key_id=k signature=ab",          /* no comma */
        "HMAC-SHA256 key_id=\"k,signature=ab",        /* unterminated quote */
        "HMAC-SHA256 key_id=k\"x,signature=ab",       /* quote inside a token */
        "HMAC-SHA256 key_id k,signature=ab",          /* no '=' */
        "HMAC-SHA256,key_id=k,signature=ab",          /* no space after the scheme */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        CU_ASSERT_EQUAL(sig_auth_parse(bad[i], strlen(bad[i]), &a, &why), -1);
        CU_ASSERT(why && strcmp(why, "malformed Authorization header") == 0);
    }
    v = "HMAC-MD5 key_id=k,signature=ab";
    CU_ASSERT_EQUAL(sig_auth_parse(v, strlen(v), &a, &why), -1);
    CU_ASSERT_STRING_EQUAL(why, "unsupported algorithm");

    CU_ASSERT(sig_auth_is_hmac("hmac-whatever", 13));
    CU_ASSERT(!sig_auth_is_hmac("Bearer abc", 10));
    CU_ASSERT(!sig_auth_is_hmac("HMAC", 4));
}

static void test_header_list(void)
{
    struct lintel_str list = {"host;Content-Type;x-a", 21}, name;
    CU_ASSERT_EQUAL(sig_list_next(&list, &name), 1);
    CU_ASSERT(name.len == 4 && memcmp(name.ptr, "host", 4) == 0);
    CU_ASSERT_EQUAL(sig_list_next(&list, &name), 1);
    CU_ASSERT(name.len == 12 && memcmp(name.ptr, "Content-Type", 12) == 0);
    CU_ASSERT_EQUAL(sig_list_next(&list, &name), 1);
    CU_ASSERT(name.len == 3 && memcmp(name.ptr, "x-a", 3) == 0);
    CU_ASSERT_EQUAL(sig_list_next(&list, &name), 0);

    static const char *const bad[] = {";", "a;;b", "a;", ";a", "a b", "a:b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct lintel_str l = {bad[i], strlen(bad[i])};
        int rc;
        while ((rc = sig_list_next(&l, &name)) == 1)
            ;
        CU_ASSERT_EQUAL(rc, -1);
    }
    CU_ASSERT(lintel_is_token("X-Date", 6));
    CU_ASSERT(!lintel_is_token("", 0));
    CU_ASSERT(sig_ieq("AuthoriZation", 13, "authorization"));
    CU_ASSERT(!sig_ieq("Authorization", 12, "authorization"));
}

/* unix seconds of an IMF-fixdate, or -1 */
static int64_t date(const char *s)
{
    int64_t t;
    return sig_http_date(s, strlen(s), &t) == 0 ? t : -1;
}

static void test_dates(void)
{
    CU_ASSERT_EQUAL(date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777); /* RFC 9110's example */
    CU_ASSERT_EQUAL(date("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
    CU_ASSERT_EQUAL(date("Tue, 04 Mar 2025 10:00:00 GMT"), 1741082400);
    CU_ASSERT_EQUAL(date("Thu, 29 Feb 2024 23:59:59 GMT"), 1709251199);
    CU_ASSERT_EQUAL(date("Wed, 01 Mar 2000 00:00:00 GMT"), 951868800); /* 2000 is a leap year */
    /* every day of 1970..2100 agrees with the C library */
    for (time_t t = 0; t < 4102444800; t += 86400 + 3599) {
        struct tm tm;
        char buf[64];
        gmtime_r(&t, &tm);
        strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        if (date(buf) != (int64_t)t) {
            CU_FAIL("date differs from gmtime");
            break;
        }
    }
    static const char *const bad[] = {
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT ",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Fri, 29 Feb 2023 00:00:00 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1969 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "1741082400",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(date(bad[i]), -1);
}

static void test_numbers_nonces_hex(void)
{
    int64_t v;
    CU_ASSERT(sig_decimal("1741082400", 10, &v) == 0 && v == 1741082400);
    CU_ASSERT_EQUAL(sig_decimal("", 0, &v), -1);
    CU_ASSERT_EQUAL(sig_decimal("-1", 2, &v), -1);
    CU_ASSERT_EQUAL(sig_decimal("17410824000000", 14, &v), -1);
    CU_ASSERT_EQUAL(sig_decimal("1.5", 3, &v), -1);

    CU_ASSERT(sig_nonce_ok("6f1d2c0a-9b7e-4f3a-8c21-5d4e3b2a1f00", 36));
    CU_ASSERT(sig_nonce_ok("!~", 2));
    CU_ASSERT(!sig_nonce_ok("", 0));
    CU_ASSERT(!sig_nonce_ok("a b", 3));
    char big[130];
    memset(big, 'n', sizeof(big));
    CU_ASSERT(sig_nonce_ok(big, 128));
    CU_ASSERT(!sig_nonce_ok(big, 129));

    unsigned char out[4];
    CU_ASSERT_EQUAL(sig_hex_decode("00fFa5", 6, out, 3), 0);
    CU_ASSERT(out[0] == 0 && out[1] == 0xff && out[2] == 0xa5);
    CU_ASSERT_EQUAL(sig_hex_decode("00ff", 4, out, 3), -1);     /* too short */
    CU_ASSERT_EQUAL(sig_hex_decode("00ffa5a5", 8, out, 3), -1); /* too long */
    CU_ASSERT_EQUAL(sig_hex_decode("0g", 2, out, 1), -1);
    char hex[7] = {0};
    sig_hex_encode((const unsigned char *)"\x00\xff\xa5", 3, hex);
    CU_ASSERT_STRING_EQUAL(hex, "00ffa5");
    CU_ASSERT_EQUAL(sig_alg_parse("hmac-SHA512", 11), SIG_HMAC_SHA512);
    CU_ASSERT_EQUAL(sig_alg_parse("HMAC-SHA256X", 12), -1);
}

static void hex_of(const unsigned char *md, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

/* docs/plugins/signature.md, "Worked example": the same inputs give the page's numbers. */
static void test_worked_examples(void)
{
    const char *secret = "demo-secret-123";
    const char *body = "{\"item\":\"book\",\"qty\":1}";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    EVP_Digest(body, strlen(body), md, &n, EVP_sha256(), NULL);
    hex_of(md, n, hex);
    CU_ASSERT_STRING_EQUAL(hex, "4aa4ec241bf2361f80ae066124ae25357a3e5c6a9be730efcbd80724bbe02021");

    char canonical[512];
    snprintf(canonical, sizeof(canonical),
             "POST\n/v1/orders\n%s\nTue, 04 Mar 2025 10:00:00 GMT\n"
             "6f1d2c0a-9b7e-4f3a-8c21-5d4e3b2a1f00\nhost:api.example.com\n"
             "content-type:application/json\n%s\n",
             canonical_query("currency=EUR&amount=1250", NULL), hex);
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)canonical,
         strlen(canonical), md, &n);
    hex_of(md, n, hex);
    CU_ASSERT_STRING_EQUAL(hex, "603216bd8ea50ec328a4bc58ffe75e2666072b5ec173e73f3cbf8f35d8094577");

    char params[512];
    snprintf(
        params, sizeof(params), "%s&secret=%s",
        canonical_query("app_key=shop-1&timestamp=1741082400&nonce=n-0001&page=2&sign=x", "sign"),
        secret);
    CU_ASSERT_STRING_EQUAL(
        params, "app_key=shop-1&nonce=n-0001&page=2&timestamp=1741082400&secret=demo-secret-123");
    EVP_Digest(params, strlen(params), md, &n, EVP_md5(), NULL);
    hex_of(md, n, hex);
    CU_ASSERT_STRING_EQUAL(hex, "61172e28c64c2f4baa86a7bd52e6ae70");
    EVP_Digest(params, strlen(params), md, &n, EVP_sha256(), NULL);
    hex_of(md, n, hex);
    CU_ASSERT_STRING_EQUAL(hex, "91403438f6f9cf77aa15d047fc7b7cf01ab66db143a45627685ec377ed35e3c4");
}

static CU_TestInfo canonical_tests[] = {
    {"query parameters are split, sorted and joined as documented", test_query},
    {"the Authorization header is parsed strictly", test_authorization},
    {"signed_headers lists header names separated by ';'", test_header_list},
    {"dates are IMF-fixdate only, converted exactly", test_dates},
    {"timestamps, nonces and hex", test_numbers_nonces_hex},
    {"the docs page's worked examples", test_worked_examples},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"signature canonical", NULL, NULL, NULL, NULL, canonical_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return lk_test_run(suites);
}
