/* The signature plugin in a running gateway (2 workers) in front of the test origin.
 *
 * This test is a client written from docs/plugins/signature.md: it builds every canonical string
 * itself and signs it with OpenSSL. Covered: the hmac scheme with each algorithm and with secrets
 * from a literal, env: and file:; mismatches (wrong secret, tampered path, query, header, body);
 * expired and future dates; a nonce replayed on another connection and after a reload, raced on
 * several connections at once with the refusals seen on another worker than the acceptance; missing
 * signatures; validate_body with Content-Length and chunked uploads, and 413 over max_body; the
 * params scheme with md5 and sha256; and the page's example configuration under `lintel -t`. */
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "harness.h"

static char so_path[PATH_MAX];

static const char config_fmt[] =
    "listen: [ { address: \"127.0.0.1:%d\" } ]\n"
    "admin: { enabled: false }\n"
    "workers: 2\n"
    "plugin_paths: [\"%s\"]\n"
    "consumers:\n"
    "  - { name: alice, id: \"1\", credentials: { hmac: [ { key_id: alice-1, secret: alice-secret "
    "} ] } }\n"
    "  - { name: bob, id: \"2\", credentials: { hmac: [ { key_id: bob-1, secret: "
    "\"env:IT_SIG_BOB\" } ] } }\n"
    "  - { name: carol, credentials: { hmac: [ { key_id: carol-1, secret: \"file:%s\" } ] } }\n"
    "upstreams:\n"
    "  o: { targets: [ { address: \"127.0.0.1:%d\" } ] }\n"
    "routes:\n"
    "  - name: hmac\n"
    "    match: { paths: [\"/h/\"] }\n"
    "    upstream: o\n"
    "    plugins:\n"
    "      - name: signature\n"
    "        instance: sig-h\n"
    "        config:\n"
    "          algorithms: [hmac-sha1, hmac-sha256, hmac-sha512]\n"
    "          validate_body: true\n"
    "          max_body: 4k\n"
    "          required_headers: [host]\n"
    "  - name: params-md5\n"
    "    match: { paths: [\"/p5/\"] }\n"
    "    upstream: o\n"
    "    plugins: [ { name: signature, instance: sig-p5, config: { schemes: [params], "
    "params_digest: md5 } } ]\n"
    "  - name: params\n"
    "    match: { paths: [\"/p/\"] }\n"
    "    upstream: o\n"
    "    plugins: [ { name: signature, instance: sig-p, config: { schemes: [params] } } ]\n";

struct env {
    struct it_proc *origin, *gw;
    int port;
};

/* A private plugin directory holding only signature.so (a copy of the build's). */
static const char *plugin_dir(void)
{
    return it_plugin_dir("sig-plugins", so_path);
}

static void start(struct env *e)
{
    e->origin = it_origin_start("o");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e->origin);
    const char *dir = plugin_dir(), *secret = it_temp_path("carol.secret");
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    CU_ASSERT_FATAL(it_write_file(secret, "carol-secret\n") == 0);
    e->port = it_free_port();
    const char *conf = it_temp_path("signature.yaml");
    CU_ASSERT_FATAL(it_write_file(conf, config_fmt, e->port, dir, secret, e->origin->port) == 0);
    e->gw = it_lintel_start(conf, e->port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e->gw);
}

/* ---- the client, following docs/plugins/signature.md ---------------------------------------- */

static void hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    EVP_Digest(p, n, md, NULL, EVP_sha256(), NULL);
    hex(md, 32, out);
}

static const char *fresh_nonce(void)
{
    static char buf[8][48];
    static unsigned n;
    char *b = buf[n % 8];
    snprintf(b, 48, "it-%ld-%u-%ld", (long)getpid(), ++n, (long)time(NULL));
    return b;
}

/* A request of the hmac scheme to route /h/ (validate_body, host required); unset fields take
 * the defaults in brackets. */
struct hmac_spec {
    const char *method;        /* [GET, or POST with a body] */
    const char *target;        /* sent [/h/orders?b=2&a=1] */
    const char *path, *query;  /* signed [/h/orders] [a=1&b=2] */
    const char *alg;           /* [HMAC-SHA256] */
    const char *key_id;        /* [alice-1] */
    const char *secret;        /* [alice-secret] */
    const char *tenant;        /* X-Tenant sent and signed after host, or none */
    const char *signed_tenant; /* the X-Tenant value signed [tenant] */
    const void *body;          /* sent */
    size_t body_len;
    const void *signed_body; /* signed instead of body (tampering) */
    size_t signed_body_len;
    bool chunked;
    long date_offset;  /* seconds from now */
    const char *nonce; /* [fresh] */
};

/* What goes on the wire: url and header lines, computed once so that several connections can
 * send the very same request. */
struct prepared {
    char url[512];
    char date[64], nonce[200], auth[400], tenant[128];
    const char *headers[5];
    char signature[129];
    const struct hmac_spec *spec;
};

static void prepare(int port, const struct hmac_spec *s, struct prepared *p)
{
    char date[32], host[32], body_hash[65], canonical[2048], tenant_line[128] = "";
    time_t t = time(NULL) + s->date_offset;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(host, sizeof(host), "127.0.0.1:%d", port);
    const char *nonce = s->nonce ? s->nonce : fresh_nonce();
    if (s->signed_body)
        sha256_hex(s->signed_body, s->signed_body_len, body_hash);
    else
        sha256_hex(s->body ? s->body : "", s->body ? s->body_len : 0, body_hash);
    if (s->tenant)
        snprintf(tenant_line, sizeof(tenant_line), "x-tenant:%s\n",
                 s->signed_tenant ? s->signed_tenant : s->tenant);
    const char *method = s->method ? s->method : s->body ? "POST" : "GET";
    snprintf(canonical, sizeof(canonical), "%s\n%s\n%s\n%s\n%s\nhost:%s\n%s%s\n", method,
             s->path ? s->path : "/h/orders", s->query ? s->query : "a=1&b=2", date, nonce, host,
             tenant_line, body_hash);

    const char *alg = s->alg ? s->alg : "HMAC-SHA256";
    const char *secret = s->secret ? s->secret : "alice-secret";
    const EVP_MD *md = strcmp(alg, "HMAC-SHA1") == 0     ? EVP_sha1()
                       : strcmp(alg, "HMAC-SHA512") == 0 ? EVP_sha512()
                                                         : EVP_sha256();
    unsigned char mac[64];
    unsigned n;
    HMAC(md, secret, (int)strlen(secret), (const unsigned char *)canonical, strlen(canonical), mac,
         &n);
    hex(mac, n, p->signature);

    snprintf(p->url, sizeof(p->url), "%s",
             it_url(port, s->target ? s->target : "/h/orders?b=2&a=1"));
    snprintf(p->date, sizeof(p->date), "X-Date: %s", date);
    snprintf(p->nonce, sizeof(p->nonce), "X-Nonce: %s", nonce);
    snprintf(p->auth, sizeof(p->auth),
             "Authorization: %s key_id=%s,signed_headers=host%s,signature=%s", alg,
             s->key_id ? s->key_id : "alice-1", s->tenant ? ";x-tenant" : "", p->signature);
    size_t h = 0;
    p->headers[h++] = p->date;
    p->headers[h++] = p->nonce;
    p->headers[h++] = p->auth;
    if (s->tenant) {
        snprintf(p->tenant, sizeof(p->tenant), "X-Tenant: %s", s->tenant);
        p->headers[h++] = p->tenant;
    }
    p->headers[h] = NULL;
    p->spec = s;
}

static int send_prepared(struct it_http *h, const struct prepared *p, struct it_response *r)
{
    const struct hmac_spec *s = p->spec;
    struct it_http_req q = {
        .method = s->method,
        .url = p->url,
        .headers = p->headers,
        .body = s->body,
        .body_len = s->body_len,
        .chunked = s->chunked,
        .timeout_ms = 10000,
    };
    return it_http_do(h, &q, r);
}

static int send_hmac(struct it_http *h, const struct env *e, const struct hmac_spec *s,
                     struct it_response *r, char signature[129])
{
    struct prepared p;
    prepare(e->port, s, &p);
    if (signature)
        memcpy(signature, p.signature, 129);
    return send_prepared(h, &p, r);
}

/* A 401 (or other status) whose JSON names error and does not hold the signature sent or the
 * one expected. */
static void check_refused(const struct it_response *r, int status, const char *error,
                          const char *signature)
{
    CU_ASSERT_EQUAL(r->status, status);
    CU_ASSERT(it_json_eq(r->body.data, "error", error));
    CU_ASSERT(it_json_int(r->body.data, "status") == status);
    if (signature)
        CU_ASSERT_PTR_NULL(strstr(r->body.data, signature));
    const char *ctype = it_response_header(r, "Content-Type");
    CU_ASSERT(ctype && strncmp(ctype, "application/json", 16) == 0);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_hmac_accepted(void)
{
    struct env e;
    start(&e);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    static const char *const algs[] = {"HMAC-SHA1", "HMAC-SHA256", "HMAC-SHA512"};
    for (int i = 0; i < 3; i++) {
        struct it_response r;
        CU_ASSERT_FATAL(send_hmac(&h, &e, &(struct hmac_spec){.alg = algs[i]}, &r, NULL) == 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT(it_json_eq(r.body.data, "target", "/h/orders?b=2&a=1"));
        CU_ASSERT(it_json_eq(r.body.data, "headers.x-consumer-username", "alice"));
        CU_ASSERT(it_json_eq(r.body.data, "headers.x-consumer-id", "1"));
        it_response_free(&r);
    }
    /* secrets from env: and file:, and a header signed besides host */
    struct it_response r;
    CU_ASSERT_FATAL(
        send_hmac(&h, &e,
                  &(struct hmac_spec){.key_id = "bob-1", .secret = "bob-secret", .tenant = "t-7"},
                  &r, NULL) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(it_json_eq(r.body.data, "headers.x-tenant", "t-7"));
    CU_ASSERT(it_json_eq(r.body.data, "headers.x-consumer-username", "bob"));
    CU_ASSERT(it_json_eq(r.body.data, "headers.x-consumer-id", "2"));
    it_response_free(&r);
    CU_ASSERT_FATAL(send_hmac(&h, &e,
                              &(struct hmac_spec){.key_id = "carol-1", .secret = "carol-secret"},
                              &r, NULL) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    it_response_free(&r);
    it_http_free(&h);
}

static void test_hmac_refused(void)
{
    struct env e;
    start(&e);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    long before = it_origin_requests(e.origin->port);
    static const char body[] = "{\"item\":\"book\",\"qty\":1}";
    static const struct {
        struct hmac_spec spec;
        const char *error;
    } cases[] = {
        {{.secret = "not-alice-secret"}, "mismatch"},
        {{.target = "/h/orderz?b=2&a=1"}, "mismatch"},           /* path */
        {{.target = "/h/orders?b=2&a=2"}, "mismatch"},           /* query */
        {{.tenant = "t-8", .signed_tenant = "t-7"}, "mismatch"}, /* header */
        {{.body = body, .body_len = sizeof(body) - 1, .signed_body = "{}", .signed_body_len = 2},
         "mismatch"},                                     /* body */
        {{.method = "DELETE", .body = NULL}, "mismatch"}, /* (method below) */
        {{.date_offset = -400}, "expired"},
        {{.date_offset = 400}, "expired"},
        {{.key_id = "mallory-1"}, "unknown key"},
        {{.alg = "HMAC-SHA384"}, "missing signature"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct prepared p;
        prepare(e.port, &cases[i].spec, &p);
        char right[129] = "";
        if (i == 0) { /* the signature alice's secret gives must not show either */
            struct prepared good;
            struct hmac_spec s = cases[i].spec;
            s.secret = NULL;
            s.nonce = strchr(p.nonce, ' ') + 1;
            prepare(e.port, &s, &good);
            memcpy(right, good.signature, sizeof(right));
        }
        struct hmac_spec sent = cases[i].spec;
        if (sent.method && strcmp(sent.method, "DELETE") == 0)
            sent.method = "GET"; /* signed as DELETE, sent as GET */
        p.spec = &sent;
        struct it_response r;
        CU_ASSERT_FATAL(send_prepared(&h, &p, &r) == 0);
        check_refused(&r, 401, cases[i].error, p.signature);
        if (right[0])
            CU_ASSERT_PTR_NULL(strstr(r.body.data, right));
        if (r.status != 401)
            fprintf(stderr, "case %zu: %d %s\n", i, r.status, r.body.data);
        it_response_free(&r);
    }

    /* no signature at all: 401 with a challenge */
    struct it_response r;
    CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/h/orders"), NULL, &r) == 0);
    check_refused(&r, 401, "missing signature", NULL);
    const char *challenge = it_response_header(&r, "WWW-Authenticate");
    CU_ASSERT(challenge && strcmp(challenge, "HMAC-SHA1, HMAC-SHA256, HMAC-SHA512") == 0);
    it_response_free(&r);
    /* none of them reached the upstream (the /stats call itself is the only new request) */
    CU_ASSERT_EQUAL(it_origin_requests(e.origin->port), before + 1);
    it_http_free(&h);
}

static void test_replay_other_connection(void)
{
    struct env e;
    start(&e);
    struct it_http a, b;
    CU_ASSERT_FATAL(it_http_init(&a) == 0 && it_http_init(&b) == 0);
    struct hmac_spec s = {.nonce = fresh_nonce()};
    struct prepared p;
    prepare(e.port, &s, &p);
    struct it_response r;
    CU_ASSERT_FATAL(send_prepared(&a, &p, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    it_response_free(&r);
    CU_ASSERT_FATAL(send_prepared(&b, &p, &r) == 0);
    check_refused(&r, 401, "replayed", p.signature);
    it_response_free(&r);
    CU_ASSERT_FATAL(send_prepared(&a, &p, &r) == 0);
    check_refused(&r, 401, "replayed", p.signature);
    it_response_free(&r);
    /* the same nonce in a newly signed request is refused too */
    s.date_offset = 1;
    CU_ASSERT_FATAL(send_hmac(&b, &e, &s, &r, NULL) == 0);
    check_refused(&r, 401, "replayed", NULL);
    it_response_free(&r);
    /* a reload makes new instances of the same plugin version: what was seen stays */
    off_t mark = it_proc_log_size(e.gw);
    CU_ASSERT_FATAL(it_proc_signal(e.gw, SIGHUP) == 0);
    CU_ASSERT_FATAL(it_proc_log_wait(e.gw, mark, "configuration 2 loaded", 5000));
    CU_ASSERT_FATAL(send_prepared(&b, &p, &r) == 0);
    check_refused(&r, 401, "replayed", p.signature);
    it_response_free(&r);
    it_http_free(&a);
    it_http_free(&b);
}

/* ---- one nonce raced on several connections ------------------------------------------------- */

#define RACERS 8

struct race {
    const struct prepared *p;
    pthread_barrier_t *barrier;
    int status;
    char error[64];
};

static void *racer(void *arg)
{
    struct race *rc = arg;
    struct it_http h;
    rc->status = -1;
    if (it_http_init(&h) != 0)
        return NULL;
    pthread_barrier_wait(rc->barrier);
    struct it_response r;
    if (send_prepared(&h, rc->p, &r) == 0) {
        rc->status = r.status;
        if (it_json_get(r.body.data, "error", rc->error, sizeof(rc->error)) != 0)
            rc->error[0] = '\0';
        it_response_free(&r);
    }
    it_http_free(&h);
    return NULL;
}

/* The worker ("w0", "w1") that logged a line ending in "nonce N" or "nonce N)" containing what,
 * appended to out (one character per line: the worker digit). */
static void workers_logging(const struct it_proc *gw, const char *nonce, const char *what,
                            char *out, size_t cap)
{
    FILE *f = fopen(gw->log_path, "r");
    char line[4096], end1[128], end2[128];
    snprintf(end1, sizeof(end1), "nonce %s\n", nonce);
    snprintf(end2, sizeof(end2), "nonce %s)\n", nonce);
    size_t n = strlen(out);
    while (f && fgets(line, sizeof(line), f)) {
        size_t len = strlen(line);
        bool ends = (len >= strlen(end1) && strcmp(line + len - strlen(end1), end1) == 0) ||
                    (len >= strlen(end2) && strcmp(line + len - strlen(end2), end2) == 0);
        const char *w = strstr(line, " [w");
        if (ends && w && strstr(line, what) && n + 1 < cap) {
            out[n++] = w[3];
            out[n] = '\0';
        }
    }
    if (f)
        fclose(f);
}

static void test_replay_raced_across_workers(void)
{
    struct env e;
    start(&e);
    /* The kernel spreads connections over the 2 workers' sockets; a round whose refusals all
     * land on the accepting worker proves nothing across workers, so rounds go on (at most 10)
     * until one shows a refusal logged by another worker than the acceptance. Every round must
     * have exactly one acceptance. */
    bool across = false;
    for (int round = 0; round < 10 && !across; round++) {
        struct hmac_spec s = {.nonce = fresh_nonce()};
        struct prepared p;
        prepare(e.port, &s, &p);
        pthread_barrier_t barrier;
        pthread_barrier_init(&barrier, NULL, RACERS);
        struct race rc[RACERS];
        pthread_t t[RACERS];
        for (int i = 0; i < RACERS; i++) {
            rc[i] = (struct race){.p = &p, .barrier = &barrier};
            pthread_create(&t[i], NULL, racer, &rc[i]);
        }
        int ok = 0, replayed = 0;
        for (int i = 0; i < RACERS; i++) {
            pthread_join(t[i], NULL);
            ok += rc[i].status == 200;
            replayed += rc[i].status == 401 && strcmp(rc[i].error, "replayed") == 0;
        }
        pthread_barrier_destroy(&barrier);
        CU_ASSERT_EQUAL(ok, 1);
        CU_ASSERT_EQUAL(replayed, RACERS - 1);

        char accepted[4] = "", refused[RACERS + 1] = "";
        workers_logging(e.gw, s.nonce, "] accepted ", accepted, sizeof(accepted));
        workers_logging(e.gw, s.nonce, ": replayed (", refused, sizeof(refused));
        CU_ASSERT_EQUAL(strlen(accepted), 1);
        CU_ASSERT_EQUAL(strlen(refused), RACERS - 1);
        across = accepted[0] && strspn(refused, accepted) != strlen(refused);
    }
    CU_ASSERT(across);
}

/* ---- bodies --------------------------------------------------------------------------------- */

static void test_validate_body(void)
{
    struct env e;
    start(&e);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    static unsigned char body[5000];
    it_pattern(body, 0, sizeof(body));
    char fnv[17];
    it_fnv_hex(it_pattern_fnv(3000), fnv);
    for (int chunked = 0; chunked < 2; chunked++) {
        /* within max_body (4k): verified, then passed on whole, with a Content-Length */
        struct it_response r;
        struct hmac_spec s = {.body = body, .body_len = 3000, .chunked = chunked};
        CU_ASSERT_FATAL(send_hmac(&h, &e, &s, &r, NULL) == 0);
        CU_ASSERT_EQUAL(r.status, 200);
        CU_ASSERT_EQUAL(it_json_int(r.body.data, "body_bytes"), 3000);
        CU_ASSERT(it_json_eq(r.body.data, "body_fnv", fnv));
        CU_ASSERT(it_json_eq(r.body.data, "headers.content-length", "3000"));
        it_response_free(&r);

        /* a byte changed after signing */
        static unsigned char changed[3000];
        memcpy(changed, body, sizeof(changed));
        changed[1234] ^= 1;
        s = (struct hmac_spec){.body = changed,
                               .body_len = 3000,
                               .chunked = chunked,
                               .method = "POST",
                               .signed_body = body,
                               .signed_body_len = 3000};
        CU_ASSERT_FATAL(send_hmac(&h, &e, &s, &r, NULL) == 0);
        check_refused(&r, 401, "mismatch", NULL);
        it_response_free(&r);

        /* over max_body: the gateway's 413, nothing reaches the upstream */
        long before = it_origin_requests(e.origin->port);
        struct it_http fresh; /* the 413 closes the connection */
        CU_ASSERT_FATAL(it_http_init(&fresh) == 0);
        s = (struct hmac_spec){.body = body, .body_len = 5000, .chunked = chunked};
        CU_ASSERT_FATAL(send_hmac(&fresh, &e, &s, &r, NULL) == 0);
        CU_ASSERT_EQUAL(r.status, 413);
        it_response_free(&r);
        it_http_free(&fresh);
        CU_ASSERT_EQUAL(it_origin_requests(e.origin->port), before + 1);
    }
    it_http_free(&h);
}

/* ---- the params scheme ---------------------------------------------------------------------- */

/* GET prefix?sign=..&<sorted> with sign = hex(md(sorted + "&secret=" + secret)). */
static int send_params(struct it_http *h, const struct env *e, const char *prefix,
                       const char *sorted, const char *secret, const EVP_MD *md,
                       struct it_response *r)
{
    char s[1024], target[1200], sign[65];
    unsigned char d[32];
    unsigned n;
    snprintf(s, sizeof(s), "%s&secret=%s", sorted, secret);
    EVP_Digest(s, strlen(s), d, &n, md, NULL);
    hex(d, n, sign);
    snprintf(target, sizeof(target), "%s?sign=%s&%s", prefix, sign, sorted);
    return it_http_get(h, it_url(e->port, target), NULL, r);
}

static void test_params(void)
{
    struct env e;
    start(&e);
    struct it_http h;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    long now = (long)time(NULL);
    char sorted[256];
    struct it_response r;

    snprintf(sorted, sizeof(sorted), "app_key=alice-1&nonce=%s&page=2&timestamp=%ld", fresh_nonce(),
             now);
    CU_ASSERT_FATAL(send_params(&h, &e, "/p5/items", sorted, "alice-secret", EVP_md5(), &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    it_response_free(&r);
    CU_ASSERT_FATAL(send_params(&h, &e, "/p5/items", sorted, "alice-secret", EVP_md5(), &r) == 0);
    check_refused(&r, 401, "replayed", NULL);
    it_response_free(&r);

    snprintf(sorted, sizeof(sorted), "app_key=bob-1&nonce=%s&timestamp=%ld", fresh_nonce(), now);
    CU_ASSERT_FATAL(send_params(&h, &e, "/p/items", sorted, "bob-secret", EVP_sha256(), &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    it_response_free(&r);

    static const struct {
        const char *prefix, *fmt, *secret, *error;
        long offset;
    } bad[] = {
        {"/p5/items", "app_key=alice-1&nonce=%s&page=2&timestamp=%ld", "wrong", "mismatch", 0},
        {"/p/items", "app_key=alice-1&nonce=%s&page=2&timestamp=%ld", "alice-secret", "expired",
         -3600},
        {"/p/items", "app_key=nobody&nonce=%s&page=2&timestamp=%ld", "alice-secret", "unknown key",
         0},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(sorted, sizeof(sorted), bad[i].fmt, fresh_nonce(), now + bad[i].offset);
        CU_ASSERT_FATAL(
            send_params(&h, &e, bad[i].prefix, sorted, bad[i].secret,
                        strncmp(bad[i].prefix, "/p5", 3) == 0 ? EVP_md5() : EVP_sha256(), &r) == 0);
        check_refused(&r, 401, bad[i].error, NULL);
        it_response_free(&r);
    }
    CU_ASSERT_FATAL(it_http_get(&h, it_url(e.port, "/p/items?page=2"), NULL, &r) == 0);
    check_refused(&r, 401, "missing signature", NULL);
    it_response_free(&r);
    it_http_free(&h);
}

/* ---- the docs page -------------------------------------------------------------------------- */

/* The first ```yaml block of docs/plugins/signature.md that starts with "listen:" (the complete
 * example) is a configuration lintel -t accepts, once its plugin path points at the build. */
static void test_docs_example_config(void)
{
    setenv("SHOP_SECRET", "demo-secret-123", 1); /* the example's env: secret */
    CU_ASSERT_EQUAL(it_doc_check("docs/plugins/signature.md", plugin_dir()), 0);
}

static CU_TestInfo tests[] = {
    {"hmac: each algorithm; literal, env: and file: secrets", test_hmac_accepted},
    {"hmac: mismatch, expired, unknown key, missing; nothing reaches the upstream",
     test_hmac_refused},
    {"hmac: a nonce replayed on another connection, and after a reload",
     test_replay_other_connection},
    {"hmac: one nonce raced on 8 connections: one accepted, across workers",
     test_replay_raced_across_workers},
    {"validate_body: Content-Length and chunked, tampered, 413 over max_body", test_validate_body},
    {"params: md5 and sha256, replay, mismatch, expired, unknown key, missing", test_params},
    {"the docs page's example configuration passes lintel -t", test_docs_example_config},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"signature", NULL, it_suite_cleanup, it_test_setup, it_test_teardown, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    it_build_path(so_path, sizeof(so_path), "plugins/signature.so");
    setenv("IT_SIG_BOB", "bob-secret", 1);
    setenv("LINTEL_LOG", "debug", 1); /* "accepted" lines name the worker */
    return it_main(suites, 240);
}
