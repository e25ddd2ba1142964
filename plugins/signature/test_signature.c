/* Tests the signature plugin through the SDK test kit, loading the built .so as lintel would.
 *
 * The test plays the client: it builds each canonical string by hand, exactly as
 * docs/plugins/signature.md tells a client author to, and signs it with OpenSSL. So a passing test
 * means the page and the plugin agree. Dates are real (the plugin reads the wall clock). */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <lintel/testkit.h>

static struct lk_plugin *plugin;
static char carol_file[64];

static const char consumers[] =
    "[ { name: alice, id: '1', credentials: { hmac: [ { key_id: alice-1, secret: alice-secret },\n"
    "                                                 { key_id: alice-2, secret: other } ] } },\n"
    "  { name: bob, credentials: { keys: [k], hmac: [ { key_id: bob-1, secret: 'env:SIG_TEST_BOB' "
    "} ] } },\n"
    "  { name: carol, id: '3', credentials: { hmac: [ { key_id: carol-1, secret: 'file:%s' } ] } "
    "},\n"
    "  { name: dave } ]";

static int set_consumers(void)
{
    char yaml[sizeof(consumers) + 64], err[256];
    snprintf(yaml, sizeof(yaml), consumers, carol_file);
    if (lk_set_consumers(yaml, err, sizeof(err)) != 0) {
        fprintf(stderr, "consumers: %s\n", err);
        return -1;
    }
    return 0;
}

static int suite_init(void)
{
    setenv("SIG_TEST_BOB", "bob-secret", 1);
    snprintf(carol_file, sizeof(carol_file), "/tmp/sig-test-carol-XXXXXX");
    int fd = mkstemp(carol_file);
    if (fd < 0 || write(fd, "carol-secret\n", 13) != 13 || close(fd) != 0)
        return -1;
    plugin = lk_plugin_load_or_report(SIGNATURE_SO);
    return plugin && set_consumers() == 0 ? 0 : -1;
}

static int suite_clean(void)
{
    unlink(carol_file);
    lk_set_consumers(NULL, NULL, 0);
    lk_plugin_free(plugin);
    return 0;
}

/* ---- the client, following docs/plugins/signature.md ---------------------------------------- */

static void hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

static void http_date(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static const char *fresh_nonce(void)
{
    static char buf[8][48];
    static unsigned n;
    char *b = buf[n % 8];
    snprintf(b, 48, "nonce-%ld-%u", (long)getpid(), ++n);
    return b;
}

/* A request of the hmac scheme; unset fields take the defaults in brackets. */
struct client {
    const char *method;         /* signed [GET] */
    const char *sent_method;    /* sent instead (tampering) [method] */
    const char *target;         /* as sent [/v1/orders?b=2&a=1] */
    const char *path, *query;   /* what the client signs [/v1/orders] [a=1&b=2] */
    const char *alg;            /* [HMAC-SHA256] */
    const char *key_id;         /* [alice-1] */
    const char *secret;         /* [alice-secret] */
    const char *headers[6];     /* extra "Name", "value" pairs sent */
    const char *signed_headers; /* the Authorization parameter, or none */
    const char *header_lines;   /* the canonical lines for them ["" ] */
    const char *body;           /* sent, or none */
    int chunked;                /* framed with Transfer-Encoding: chunked, not Content-Length */
    int body_later;             /* the body arrives after the plugin asks for it */
    int sign_body;              /* the route validates bodies: sign the body's SHA-256 */
    long date_offset;           /* seconds from now */
    const char *nonce;          /* [fresh]; "" sends none */
    int plain_date;             /* Date instead of X-Date */
};

static char signature_hex[129]; /* of the last request built */

static struct lk_req *hmac_request(const struct client *c)
{
    const char *method = c->method ? c->method : "GET";
    const char *target = c->target ? c->target : "/v1/orders?b=2&a=1";
    const char *alg = c->alg ? c->alg : "HMAC-SHA256";
    const char *nonce = c->nonce ? c->nonce : fresh_nonce();
    const char *secret = c->secret ? c->secret : "alice-secret";
    char date[32], body_hash[65] = "";
    http_date(time(NULL) + c->date_offset, date);
    if (c->sign_body) {
        unsigned char md[32];
        const char *b = c->body ? c->body : "";
        EVP_Digest(b, strlen(b), md, NULL, EVP_sha256(), NULL);
        hex(md, 32, body_hash);
    }
    char canonical[2048];
    snprintf(canonical, sizeof(canonical), "%s\n%s\n%s\n%s\n%s\n%s%s\n", method,
             c->path ? c->path : "/v1/orders", c->query ? c->query : "a=1&b=2", date, nonce,
             c->header_lines ? c->header_lines : "", body_hash);
    const EVP_MD *md = strcmp(alg, "HMAC-SHA1") == 0     ? EVP_sha1()
                       : strcmp(alg, "HMAC-SHA512") == 0 ? EVP_sha512()
                                                         : EVP_sha256();
    unsigned char mac[64];
    unsigned n;
    HMAC(md, secret, (int)strlen(secret), (const unsigned char *)canonical, strlen(canonical), mac,
         &n);
    hex(mac, n, signature_hex);

    struct lk_req *r = lk_req_new(c->sent_method ? c->sent_method : method, target);
    for (int i = 0; i < 6 && c->headers[i]; i += 2)
        lk_req_set_header(r, c->headers[i], c->headers[i + 1]);
    lk_req_set_header(r, c->plain_date ? "Date" : "X-Date", date);
    if (*nonce)
        lk_req_set_header(r, "X-Nonce", nonce);
    char auth[512];
    snprintf(auth, sizeof(auth), "%s key_id=%s,%s%s%ssignature=%s", alg,
             c->key_id ? c->key_id : "alice-1", c->signed_headers ? "signed_headers=" : "",
             c->signed_headers ? c->signed_headers : "", c->signed_headers ? "," : "",
             signature_hex);
    lk_req_set_header(r, "Authorization", auth);
    if (c->body) {
        /* the kit does not frame bodies: send the header a client would */
        char len[24];
        snprintf(len, sizeof(len), "%zu", strlen(c->body));
        lk_req_set_header(r, c->chunked ? "Transfer-Encoding" : "Content-Length",
                          c->chunked ? "chunked" : len);
        lk_req_set_body(r, c->body, strlen(c->body), !c->body_later);
    }
    return r;
}

/* A request of the params scheme: query holds every parameter but sign, already sorted; the
 * test appends sign to the end of the target (the order sent does not matter). */
static struct lk_req *params_request(const char *sorted, const char *secret, const EVP_MD *md)
{
    char s[1024], target[1200];
    unsigned char d[32];
    unsigned n;
    snprintf(s, sizeof(s), "%s&secret=%s", sorted, secret);
    EVP_Digest(s, strlen(s), d, &n, md, NULL);
    hex(d, n, signature_hex);
    snprintf(target, sizeof(target), "/v1/items?sign=%s&%s", signature_hex, sorted);
    return lk_req_new("GET", target);
}

/* The request went on (CONTINUE) as consumer, with nothing answered. */
static void expect_accepted(struct lk_instance *in, struct lk_req *r, const char *consumer)
{
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_CONTINUE);
    CU_ASSERT_EQUAL(lk_resp_status(r), 0);
    const char *name = lk_consumer_name(r);
    CU_ASSERT(name && strcmp(name, consumer) == 0);
    if (lk_resp_status(r))
        fprintf(stderr, "refused: %s\n", lk_resp_body(r, NULL));
}

/* Answered with status and {"error": error, ...}; the body never holds the signature. */
static void expect_refused(struct lk_instance *in, struct lk_req *r, int status, const char *error)
{
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), status);
    const char *body = lk_resp_body(r, NULL);
    char want[96];
    snprintf(want, sizeof(want), "{\"status\":%d,\"error\":\"%s\"", status, error);
    CU_ASSERT(strncmp(body, want, strlen(want)) == 0);
    if (strncmp(body, want, strlen(want)) != 0)
        fprintf(stderr, "want %s, got %s\n", want, body);
    CU_ASSERT_PTR_NULL(strstr(body, signature_hex));
    CU_ASSERT_PTR_NULL(lk_consumer_name(r));
    const char *type = lk_resp_header(r, "Content-Type");
    CU_ASSERT(type && strncmp(type, "application/json", 16) == 0);
}

/* ---- the hmac scheme ------------------------------------------------------------------------ */

static void test_each_algorithm(void)
{
    struct lk_instance *in =
        lk_instance_or_report(plugin, "{ algorithms: [hmac-sha1, hmac-sha256, hmac-sha512] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    static const char *const algs[] = {"HMAC-SHA1", "HMAC-SHA256", "HMAC-SHA512"};
    for (int i = 0; i < 3; i++) {
        struct lk_req *r = hmac_request(&(struct client){.alg = algs[i]});
        expect_accepted(in, r, "alice");
        const char *key = lk_log_field(r, "signature_key_id");
        CU_ASSERT(key && strcmp(key, "alice-1") == 0);
        CU_ASSERT_STRING_EQUAL(lk_req_header(r, "X-Consumer-Username"), "alice");
        CU_ASSERT_STRING_EQUAL(lk_req_header(r, "X-Consumer-Id"), "1");
        lk_req_free(r);
    }
    CU_ASSERT_EQUAL(lk_metric(in, "accepted"), 3);
    lk_instance_free(in);

    /* the default allows HMAC-SHA256 and HMAC-SHA512 only */
    in = lk_instance_or_report(plugin, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = hmac_request(&(struct client){.alg = "HMAC-SHA1"});
    expect_refused(in, r, 401, "missing signature");
    CU_ASSERT_PTR_NOT_NULL(strstr(lk_resp_body(r, NULL), "\"detail\":\"algorithm not allowed\""));
    CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "WWW-Authenticate"), "HMAC-SHA256, HMAC-SHA512");
    lk_req_free(r);
    r = hmac_request(&(struct client){.alg = "HMAC-SHA512"});
    expect_accepted(in, r, "alice");
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
}

static void test_secrets_from_env_and_file(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    /* bob has no id: a client's own X-Consumer-Id does not get through */
    struct lk_req *r = hmac_request(
        &(struct client){.key_id = "bob-1",
                         .secret = "bob-secret",
                         .headers = {"X-Consumer-Id", "1", "X-Consumer-Username", "alice"}});
    expect_accepted(in, r, "bob");
    CU_ASSERT_STRING_EQUAL(lk_req_header(r, "X-Consumer-Username"), "bob");
    CU_ASSERT_PTR_NULL(lk_req_header(r, "X-Consumer-Id"));
    lk_req_free(r);
    /* file: one trailing newline is not part of the secret */
    r = hmac_request(&(struct client){.key_id = "carol-1", .secret = "carol-secret"});
    expect_accepted(in, r, "carol");
    lk_req_free(r);
    /* a consumer's second key */
    r = hmac_request(&(struct client){.key_id = "alice-2", .secret = "other"});
    expect_accepted(in, r, "alice");
    lk_req_free(r);
    lk_instance_free(in);
}

static void test_mismatch(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    /* wrong secret; the body must not reveal what the right signature was */
    struct lk_req *good = hmac_request(&(struct client){.nonce = "n-mismatch"});
    char right[129];
    strcpy(right, signature_hex);
    lk_req_free(good);
    struct lk_req *r =
        hmac_request(&(struct client){.secret = "not-alice-secret", .nonce = "n-mismatch"});
    expect_refused(in, r, 401, "mismatch");
    CU_ASSERT_PTR_NULL(strstr(lk_resp_body(r, NULL), right));
    CU_ASSERT_PTR_NULL(strstr(lk_log_lines(), right));
    const char *err = lk_log_field(r, "signature_error");
    CU_ASSERT(err && strcmp(err, "mismatch") == 0);
    lk_req_free(r);

    /* signed one thing, sent another */
    static const struct client tampered[] = {
        {.target = "/v1/orderz?b=2&a=1"},     /* path */
        {.target = "/v1/orders?b=3&a=1"},     /* query value */
        {.target = "/v1/orders?b=2&a=1&c=3"}, /* an extra parameter */
        {.target = "/v1/orders?a=1"},         /* a parameter less */
        {.method = "DELETE", .sent_method = "GET"},
        {.headers = {"X-Tenant", "b"},
         .signed_headers = "x-tenant",
         .header_lines = "x-tenant:a\n"},
        {.query = "b=2&a=1"}, /* the client forgot to sort */
    };
    for (size_t i = 0; i < sizeof(tampered) / sizeof(tampered[0]); i++) {
        r = hmac_request(&tampered[i]);
        expect_refused(in, r, 401, "mismatch");
        lk_req_free(r);
    }
    CU_ASSERT_EQUAL(lk_metric(in, "mismatch"), 8);
    lk_instance_free(in);
}

static void test_signed_headers(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, "{ required_headers: [Host] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    /* names in any case, lowercased in the string; repeated headers joined with ',', trimmed */
    struct lk_req *r = hmac_request(&(struct client){
        .headers = {"Host", "api.example.com", "X-A", " 1 ", "x-a", "2"},
        .signed_headers = "Host;X-A;x-absent",
        .header_lines = "host:api.example.com\nx-a:1,2\nx-absent:\n",
    });
    expect_accepted(in, r, "alice");
    lk_req_free(r);

    r = hmac_request(&(struct client){.headers = {"Host", "api.example.com"}});
    expect_refused(in, r, 401, "missing signature");
    CU_ASSERT_PTR_NOT_NULL(
        strstr(lk_resp_body(r, NULL), "a required header is not in signed_headers"));
    lk_req_free(r);

    static const char *const bad[] = {"host;authorization", "host;host", "host;", "host x"};
    for (size_t i = 0; i < 4; i++) {
        r = hmac_request(&(struct client){
            .headers = {"Host", "h"}, .signed_headers = bad[i], .header_lines = "host:h\n"});
        expect_refused(in, r, 401, "missing signature");
        lk_req_free(r);
    }
    lk_instance_free(in);
}

static void test_dates(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, NULL); /* clock_skew: 300s */
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = hmac_request(&(struct client){.date_offset = -400});
    expect_refused(in, r, 401, "expired");
    lk_req_free(r);
    r = hmac_request(&(struct client){.date_offset = 400});
    expect_refused(in, r, 401, "expired");
    lk_req_free(r);
    r = hmac_request(&(struct client){.date_offset = -200});
    expect_accepted(in, r, "alice");
    lk_req_free(r);
    r = hmac_request(&(struct client){.date_offset = 200, .plain_date = 1});
    expect_accepted(in, r, "alice");
    lk_req_free(r);
    lk_instance_free(in);

    in = lk_instance_or_report(plugin, "{ clock_skew: 10s }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    r = hmac_request(&(struct client){.date_offset = -60});
    expect_refused(in, r, 401, "expired");
    lk_req_free(r);
    /* X-Date wins over Date */
    r = hmac_request(&(struct client){.headers = {"Date", "Thu, 01 Jan 1970 00:00:00 GMT"}});
    expect_accepted(in, r, "alice");
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_metric(in, "expired"), 1);
    lk_instance_free(in);
}

static void test_replay(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = hmac_request(&(struct client){.nonce = "n-replay"});
    expect_accepted(in, r, "alice");
    lk_req_free(r);
    /* the same nonce again, even in a freshly signed request */
    r = hmac_request(&(struct client){.nonce = "n-replay", .date_offset = 1});
    expect_refused(in, r, 401, "replayed");
    lk_req_free(r);
    /* nonces belong to a key: another key may use the same one */
    r = hmac_request(&(struct client){.nonce = "n-replay", .key_id = "alice-2", .secret = "other"});
    expect_accepted(in, r, "alice");
    lk_req_free(r);
    /* a second instance of the plugin (another route) shares what was seen */
    struct lk_instance *other = lk_instance_or_report(plugin, "{ algorithms: [hmac-sha256] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(other);
    r = hmac_request(&(struct client){.nonce = "n-replay"});
    expect_refused(other, r, 401, "replayed");
    lk_req_free(r);
    /* a mismatch does not burn the nonce */
    r = hmac_request(&(struct client){.nonce = "n-unburnt", .secret = "wrong"});
    expect_refused(in, r, 401, "mismatch");
    lk_req_free(r);
    r = hmac_request(&(struct client){.nonce = "n-unburnt"});
    expect_accepted(in, r, "alice");
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_metric(in, "replayed"), 1);
    CU_ASSERT_EQUAL(lk_metric(other, "replayed"), 1);
    lk_instance_free(other);
    lk_instance_free(in);

    /* replay_protection: false: no nonce needed, the same request passes twice */
    in = lk_instance_or_report(plugin, "{ replay_protection: false }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    for (int i = 0; i < 2; i++) {
        r = hmac_request(&(struct client){.nonce = ""});
        expect_accepted(in, r, "alice");
        lk_req_free(r);
    }
    lk_instance_free(in);
}

static void test_missing(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = lk_req_new("GET", "/v1/orders");
    expect_refused(in, r, 401, "missing signature");
    CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "WWW-Authenticate"), "HMAC-SHA256, HMAC-SHA512");
    lk_req_free(r);

    r = lk_req_new("GET", "/v1/orders");
    lk_req_set_header(r, "Authorization", "Bearer abc");
    expect_refused(in, r, 401, "missing signature");
    lk_req_free(r);

    r = hmac_request(&(struct client){.nonce = ""});
    expect_refused(in, r, 401, "missing signature");
    CU_ASSERT_PTR_NOT_NULL(strstr(lk_resp_body(r, NULL), "X-Nonce header required"));
    lk_req_free(r);

    static const char *const auths[] = {
        "HMAC-SHA256 key_id=alice-1",                /* no signature */
        "HMAC-SHA256 key_id=alice-1,signature=abcd", /* too short for SHA-256 */
        "HMAC-MD5 key_id=alice-1,signature=abcd",    /* unknown algorithm */
    };
    for (size_t i = 0; i < 3; i++) {
        r = lk_req_new("GET", "/v1/orders");
        char date[32];
        http_date(time(NULL), date);
        lk_req_set_header(r, "X-Date", date);
        lk_req_set_header(r, "X-Nonce", fresh_nonce());
        lk_req_set_header(r, "Authorization", auths[i]);
        expect_refused(in, r, 401, "missing signature");
        lk_req_free(r);
    }

    /* no date, or a date in another format */
    r = hmac_request(&(struct client){0});
    lk_req_free(r);
    char auth[256];
    snprintf(auth, sizeof(auth), "HMAC-SHA256 key_id=alice-1,signature=%s", signature_hex);
    r = lk_req_new("GET", "/v1/orders?b=2&a=1");
    lk_req_set_header(r, "X-Nonce", fresh_nonce());
    lk_req_set_header(r, "Authorization", auth);
    expect_refused(in, r, 401, "missing signature");
    CU_ASSERT_PTR_NOT_NULL(strstr(lk_resp_body(r, NULL), "X-Date or Date header required"));
    lk_req_free(r);
    r = lk_req_new("GET", "/v1/orders?b=2&a=1");
    lk_req_set_header(r, "X-Date", "1741082400");
    lk_req_set_header(r, "X-Nonce", fresh_nonce());
    lk_req_set_header(r, "Authorization", auth);
    expect_refused(in, r, 401, "missing signature");
    lk_req_free(r);

    r = hmac_request(&(struct client){.key_id = "mallory-1"});
    expect_refused(in, r, 401, "unknown key");
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_metric(in, "unknown_key"), 1);
    CU_ASSERT_EQUAL(lk_metric(in, "missing_signature"), 8);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
}

/* ---- bodies --------------------------------------------------------------------------------- */

static void test_body(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, "{ validate_body: true, max_body: 64 }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    static const char body[] = "{\"item\":\"book\",\"qty\":1}";
    /* the body comes after the plugin asked for it: PAUSE, then the handler runs again */
    struct lk_req *r = hmac_request(
        &(struct client){.method = "POST", .body = body, .body_later = 1, .sign_body = 1});
    expect_accepted(in, r, "alice");
    lk_req_free(r);
    r = hmac_request(&(struct client){.method = "POST", .body = body, .sign_body = 1});
    expect_accepted(in, r, "alice");
    lk_req_free(r);
    r = hmac_request(&(struct client){
        .method = "POST", .body = body, .body_later = 1, .chunked = 1, .sign_body = 1});
    expect_accepted(in, r, "alice");
    lk_req_free(r);
    /* no body: the SHA-256 of nothing */
    r = hmac_request(&(struct client){.sign_body = 1});
    expect_accepted(in, r, "alice");
    lk_req_free(r);

    /* the body signed is not the body sent */
    struct client c = {.method = "POST", .body = body, .body_later = 1, .sign_body = 1};
    r = hmac_request(&c);
    lk_req_set_body(r, "{\"item\":\"book\",\"qty\":9}", 23, 0);
    expect_refused(in, r, 401, "mismatch");
    lk_req_free(r);
    /* a client that does not sign the body on such a route */
    r = hmac_request(&(struct client){.method = "POST", .body = body});
    expect_refused(in, r, 401, "mismatch");
    lk_req_free(r);

    /* over max_body: 413, whether the body is in already or not */
    static const char big[] =
        "0123456789012345678901234567890123456789012345678901234567890123456789";
    for (int later = 0; later < 2; later++) {
        r = hmac_request(
            &(struct client){.method = "POST", .body = big, .body_later = later, .sign_body = 1});
        CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_RESPOND);
        CU_ASSERT_EQUAL(lk_resp_status(r), 413);
        lk_req_free(r);
    }
    /* a request without a signature is refused before its body is read */
    r = lk_req_new("POST", "/v1/orders");
    lk_req_set_header(r, "Content-Length", "70");
    lk_req_set_body(r, big, strlen(big), 0);
    expect_refused(in, r, 401, "missing signature");
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
}

/* ---- the params scheme ---------------------------------------------------------------------- */

static void test_params(void)
{
    struct lk_instance *md5 =
        lk_instance_or_report(plugin, "{ schemes: [params], params_digest: md5 }");
    struct lk_instance *sha = lk_instance_or_report(plugin, "{ schemes: [params] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(md5);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sha);
    char sorted[256];
    long now = (long)time(NULL);

    snprintf(sorted, sizeof(sorted), "app_key=alice-1&nonce=p1&page=2&timestamp=%ld", now);
    struct lk_req *r = params_request(sorted, "alice-secret", EVP_md5());
    expect_accepted(md5, r, "alice");
    lk_req_free(r);
    r = params_request(sorted, "alice-secret", EVP_md5()); /* the same nonce */
    expect_refused(md5, r, 401, "replayed");
    lk_req_free(r);
    /* the sha256 route wants a 64-digit sign */
    snprintf(sorted, sizeof(sorted), "app_key=alice-1&nonce=p2&page=2&timestamp=%ld", now);
    r = params_request(sorted, "alice-secret", EVP_md5());
    expect_refused(sha, r, 401, "missing signature");
    lk_req_free(r);
    r = params_request(sorted, "alice-secret", EVP_sha256());
    expect_accepted(sha, r, "alice");
    lk_req_free(r);

    snprintf(sorted, sizeof(sorted), "app_key=alice-1&nonce=p3&page=2&timestamp=%ld", now);
    r = params_request(sorted, "wrong", EVP_sha256());
    expect_refused(sha, r, 401, "mismatch");
    lk_req_free(r);
    /* signed, then a parameter changed */
    r = params_request(sorted, "alice-secret", EVP_sha256());
    lk_req_free(r);
    char tampered[512];
    snprintf(tampered, sizeof(tampered),
             "/v1/items?sign=%s&app_key=alice-1&nonce=p3&page=3&timestamp=%ld", signature_hex, now);
    r = lk_req_new("GET", tampered);
    expect_refused(sha, r, 401, "mismatch");
    lk_req_free(r);

    snprintf(sorted, sizeof(sorted), "app_key=alice-1&nonce=p4&timestamp=%ld", now - 3600);
    r = params_request(sorted, "alice-secret", EVP_sha256());
    expect_refused(sha, r, 401, "expired");
    lk_req_free(r);
    snprintf(sorted, sizeof(sorted), "app_key=nobody&nonce=p5&timestamp=%ld", now);
    r = params_request(sorted, "alice-secret", EVP_sha256());
    expect_refused(sha, r, 401, "unknown key");
    lk_req_free(r);
    snprintf(sorted, sizeof(sorted), "app_key=alice-1&nonce=p6");
    r = params_request(sorted, "alice-secret", EVP_sha256());
    expect_refused(sha, r, 401, "missing signature");
    lk_req_free(r);
    snprintf(sorted, sizeof(sorted), "app_key=alice-1&timestamp=%ld", now);
    r = params_request(sorted, "alice-secret", EVP_sha256()); /* no nonce */
    expect_refused(sha, r, 401, "missing signature");
    lk_req_free(r);
    snprintf(sorted, sizeof(sorted), "app_key=alice-1&nonce=p7&timestamp=%ld&timestamp=%ld", now,
             now);
    r = params_request(sorted, "alice-secret", EVP_sha256());
    expect_refused(sha, r, 401, "missing signature");
    lk_req_free(r);
    r = lk_req_new("GET", "/v1/items?page=1");
    expect_refused(sha, r, 401, "missing signature");
    CU_ASSERT_PTR_NULL(lk_resp_header(r, "WWW-Authenticate")); /* no hmac: nothing to offer */
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(sha);
    lk_instance_free(md5);
}

static void test_both_schemes(void)
{
    struct lk_instance *in = lk_instance_or_report(plugin, "{ schemes: [hmac, params] }");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    struct lk_req *r = hmac_request(&(struct client){0});
    expect_accepted(in, r, "alice");
    lk_req_free(r);
    char sorted[256];
    snprintf(sorted, sizeof(sorted), "app_key=bob-1&nonce=b1&timestamp=%ld", (long)time(NULL));
    r = params_request(sorted, "bob-secret", EVP_sha256());
    expect_accepted(in, r, "bob");
    lk_req_free(r);
    r = lk_req_new("GET", "/");
    expect_refused(in, r, 401, "missing signature");
    CU_ASSERT_PTR_NOT_NULL(strstr(lk_resp_body(r, NULL), "header or sign parameter required"));
    lk_req_free(r);
    lk_instance_free(in);
}

/* ---- configuration -------------------------------------------------------------------------- */

static void test_config_errors(void)
{
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "[hmac]"), "1:1: must be a map");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ shemes: [hmac] }"),
                           "1:11: shemes: unknown key");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ schemes: [] }"),
                           "1:12: schemes: must be a non-empty list");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ schemes: [hmax] }"),
                           "1:13: schemes[0]: must be hmac or params");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ schemes: [hmac, hmac] }"),
                           "1:19: schemes[1]: is listed twice");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ algorithms: [hmac-md5] }"),
                           "1:16: algorithms[0]: must be hmac-sha1, hmac-sha256 or hmac-sha512");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ params_digest: sha1 }"),
                           "1:18: params_digest: must be md5 or sha256");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ clock_skew: 0s }"),
                           "1:15: clock_skew: must be a duration from 1s to 24h");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ clock_skew: 25h }"),
                           "1:15: clock_skew: must be a duration from 1s to 24h");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ validate_body: yes please }"),
                           "1:18: validate_body: must be true or false");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ max_body: 0 }"),
                           "1:13: max_body: must be a size from 1 to 1g");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ required_headers: [\"x y\"] }"),
                           "1:22: required_headers[0]: must be a header name");
    CU_ASSERT_STRING_EQUAL(
        lk_config_error(plugin, "{ required_headers: [Authorization] }"),
        "1:22: required_headers[0]: cannot be signed (it carries the signature)");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ nonce_capacity: 10 }"),
                           "1:19: nonce_capacity: must be an integer from 1024 to 67108864");
    CU_ASSERT_STRING_EQUAL(lk_config_error(plugin, "{ replay_protection: maybe }"),
                           "1:22: replay_protection: must be true or false");
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

/* The consumers' credentials, checked by create: errors point into consumers. */
static const char *consumers_error(const char *yaml)
{
    char err[256];
    if (lk_set_consumers(yaml, err, sizeof(err)) != 0)
        return "(consumers refused by the kit)";
    const char *e = lk_config_error(plugin, NULL);
    set_consumers();
    return e;
}

static void test_credential_errors(void)
{
    unsetenv("SIG_TEST_UNSET");
    CU_ASSERT_STRING_EQUAL(
        consumers_error("[ { name: a, credentials: { hmac: { key_id: k, secret: s } } } ]"),
        "1:35: consumers[0].credentials.hmac: must be a list");
    CU_ASSERT_STRING_EQUAL(consumers_error("[ { name: a, credentials: { hmac: [ k ] } } ]"),
                           "1:37: consumers[0].credentials.hmac[0]: must be a map");
    CU_ASSERT_STRING_EQUAL(
        consumers_error("[ { name: a, credentials: { hmac: [ { key_id: k } ] } } ]"),
        "1:37: consumers[0].credentials.hmac[0]: secret: required");
    CU_ASSERT_STRING_EQUAL(
        consumers_error(
            "[ { name: a, credentials: { hmac: [ { key_id: k, secret: s, alg: x } ] } } ]"),
        "1:66: consumers[0].credentials.hmac[0].alg: unknown key");
    CU_ASSERT_STRING_EQUAL(
        consumers_error(
            "[ { name: a, credentials: { hmac: [ { key_id: \"k y\", secret: s } ] } } ]"),
        "1:47: consumers[0].credentials.hmac[0].key_id: must be 1 to 128 characters of A-Z a-z 0-9 "
        ". _ ~ -");
    CU_ASSERT_STRING_EQUAL(consumers_error("[ { name: a, credentials: { hmac: [ { key_id: k, "
                                           "secret: 'env:SIG_TEST_UNSET' } ] } } ]"),
                           "1:58: consumers[0].credentials.hmac[0].secret: cannot be read (unset "
                           "variable or unreadable file)");
    CU_ASSERT_STRING_EQUAL(
        consumers_error("[ { name: a, credentials: { hmac: [ { key_id: k, secret: '' } ] } } ]"),
        "1:58: consumers[0].credentials.hmac[0].secret: must be 1 to 4096 bytes");
    CU_ASSERT_STRING_EQUAL(
        consumers_error("[ { name: a, credentials: { hmac: [ { key_id: k, secret: s } ] } },\n"
                        "  { name: b, credentials: { hmac: [ { key_id: k, secret: t } ] } } ]"),
        "2:47: consumers[1].credentials.hmac[0].key_id: is also a key_id of consumer a");
    /* no credentials at all: created, with a warning */
    lk_log_clear();
    CU_ASSERT_STRING_EQUAL(consumers_error("[ { name: a } ]"), "(created)");
    CU_ASSERT_PTR_NOT_NULL(strstr(lk_log_lines(), "no consumer has credentials.hmac"));
    CU_ASSERT_EQUAL(lk_violations(), 0);
}

static CU_TestInfo signature_tests[] = {
    {"hmac: each algorithm; only the allowed ones", test_each_algorithm},
    {"hmac: secrets from env: and file:", test_secrets_from_env_and_file},
    {"hmac: wrong secret or tampered request is a mismatch", test_mismatch},
    {"hmac: signed headers and required headers", test_signed_headers},
    {"hmac: dates outside the clock skew are expired", test_dates},
    {"hmac: a nonce is accepted once", test_replay},
    {"hmac: missing or malformed signatures, unknown keys", test_missing},
    {"hmac: validate_body, paused for the body, 413 over the cap", test_body},
    {"params: md5 and sha256, and every refusal", test_params},
    {"both schemes on one route", test_both_schemes},
    {"config errors point at the offending node", test_config_errors},
    {"credential errors point into consumers", test_credential_errors},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"signature", suite_init, suite_clean, NULL, NULL, signature_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return lk_test_run(suites);
}
