/* TLS termination through a running gateway: certificates chosen by SNI (exact, wildcard,
 * default), ALPN http/1.1, X-Forwarded-Proto: https, certificates re-read on reload, and a bad
 * certificate/key pair refused by `lintel -t` and by a reload (the old one keeps serving).
 * Certificates are generated here with the openssl command; no private key is committed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "harness.h"

static const char *dir;

/* A self-signed certificate NAME.pem / NAME.key (EC P-256) in the temp dir. */
static int make_cert(const char *name, const char *cn)
{
    char key[600], pem[600], subj[128];
    snprintf(key, sizeof(key), "%s/%s.key", dir, name);
    snprintf(pem, sizeof(pem), "%s/%s.pem", dir, name);
    snprintf(subj, sizeof(subj), "/CN=%s", cn);
    char *argv[] = {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", subj, "-keyout",
                    key, "-out", pem, NULL};
    return it_run(argv, 20000, NULL, NULL) == 0 ? 0 : -1;
}

static size_t sink(char *p, size_t size, size_t n, void *arg)
{
    it_buf_add(arg, p, size * n);
    return size * n;
}

/* GET https://HOST:port/path over TLS, trusting only ca (so the served certificate must be that
 * one). Returns the HTTP status, 0 on a TLS/transport failure; the body goes to body. */
static long tls_get(int port, const char *host, const char *ca, struct it_buf *body)
{
    CURL *c = curl_easy_init();
    char url[256], resolve[256], cafile[600];
    struct curl_slist *res;
    snprintf(url, sizeof(url), "https://%s:%d/hello", host, port);
    snprintf(resolve, sizeof(resolve), "%s:%d:127.0.0.1", host, port);
    snprintf(cafile, sizeof(cafile), "%s/%s.pem", dir, ca);
    res = curl_slist_append(NULL, resolve);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_RESOLVE, res);
    curl_easy_setopt(c, CURLOPT_CAINFO, cafile);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L); /* CN is not the host; the chain is what we check */
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(res);
    curl_easy_cleanup(c);
    return status;
}

static const char config[] = "listen:\n"
                             "  - address: \"127.0.0.1:%d\"\n"
                             "    tls:\n"
                             "      protocols: [TLSv1.2, TLSv1.3]\n"
                             "      certificates:\n"
                             "        - { cert: %s/default.pem, key: %s/default.key }\n"
                             "        - { cert: %s/api.pem, key: %s/%s.key, hosts: [api.example.com] }\n"
                             "        - { cert: %s/wild.pem, key: %s/wild.key, hosts: [\"*.example.org\"] }\n"
                             "admin: { enabled: false }\n"
                             "workers: 2\n"
                             "upstreams:\n"
                             "  o: { targets: [ { address: \"127.0.0.1:%d\" } ] }\n"
                             "routes:\n"
                             "  - { name: all, match: { paths: [\"/\"] }, upstream: o }\n";

static int write_config(const char *path, int port, const char *api_key, int origin)
{
    return it_write_file(path, config, port, dir, dir, dir, dir, api_key, dir, dir, origin);
}

static void test_sni_alpn_and_forwarded_proto(void)
{
    struct it_proc *o = it_origin_start("o");
    CU_ASSERT_FATAL(o != NULL);
    int port = it_free_port();
    const char *conf = it_temp_path("tls.yaml");
    CU_ASSERT_FATAL(write_config(conf, port, "api", o->port) == 0);
    CU_ASSERT_FATAL(it_lintel_start(conf, port) != NULL);

    struct it_buf body = {0};
    CU_ASSERT_EQUAL(tls_get(port, "api.example.com", "api", &body), 200);
    CU_ASSERT(it_json_eq(body.data, "headers.x-forwarded-proto", "https"));
    it_buf_free(&body);
    CU_ASSERT_EQUAL(tls_get(port, "a.b.example.org", "wild", &body), 200);
    it_buf_free(&body);
    CU_ASSERT_EQUAL(tls_get(port, "unknown.test", "default", &body), 200);
    it_buf_free(&body);
    /* The wrong certificate is refused by the client: SNI really chose. */
    CU_ASSERT_EQUAL(tls_get(port, "api.example.com", "default", &body), 0);
    it_buf_free(&body);

    /* ALPN: the gateway answers http/1.1. */
    char connect[64];
    snprintf(connect, sizeof(connect), "127.0.0.1:%d", port);
    char *argv[] = {"/usr/bin/openssl", "s_client", "-connect", connect, "-alpn", "h2,http/1.1",
                    "-servername", "api.example.com", NULL};
    struct it_buf out = {0};
    it_run(argv, 10000, &out, NULL);
    CU_ASSERT(out.data && strstr(out.data, "ALPN protocol: http/1.1") != NULL);
    it_buf_free(&out);
}

static void test_reload_rereads_and_bad_pair(void)
{
    struct it_proc *o = it_origin_start("o");
    CU_ASSERT_FATAL(o != NULL);
    int port = it_free_port();
    const char *conf = it_temp_path("tls-reload.yaml");
    CU_ASSERT_FATAL(write_config(conf, port, "api", o->port) == 0);
    struct it_proc *gw = it_lintel_start(conf, port);
    CU_ASSERT_FATAL(gw != NULL);
    struct it_buf body = {0};
    CU_ASSERT_EQUAL(tls_get(port, "api.example.com", "api", &body), 200);
    it_buf_free(&body);

    /* A bad pair (api.pem with wild.key): -t says which entry and why; a reload is refused and
     * the old certificates keep serving. */
    CU_ASSERT_FATAL(write_config(conf, port, "wild", o->port) == 0);
    char *argv[] = {LINTEL_BIN, "-t", "-c", (char *)conf, NULL};
    struct it_buf err = {0};
    CU_ASSERT_EQUAL(it_run(argv, 10000, NULL, &err), 1);
    CU_ASSERT(err.data && strstr(err.data, "listen[0].tls.certificates[1]: cannot load key"));
    it_buf_free(&err);
    off_t mark = it_proc_log_size(gw);
    CU_ASSERT_EQUAL(it_proc_signal(gw, SIGHUP), 0);
    CU_ASSERT(it_proc_log_wait(gw, mark, "reload refused", 5000));
    CU_ASSERT_EQUAL(tls_get(port, "api.example.com", "api", &body), 200);
    it_buf_free(&body);

    /* New certificate files + reload: new connections get the new certificate. */
    CU_ASSERT_FATAL(make_cert("api", "api-renewed.test") == 0);
    CU_ASSERT_FATAL(write_config(conf, port, "api", o->port) == 0);
    mark = it_proc_log_size(gw);
    CU_ASSERT_EQUAL(it_proc_signal(gw, SIGHUP), 0);
    CU_ASSERT(it_proc_log_wait(gw, mark, "configuration 2 loaded", 5000));
    CU_ASSERT_EQUAL(tls_get(port, "api.example.com", "api", &body), 200); /* trusts the new one */
    it_buf_free(&body);
}

static int suite_init(void)
{
    dir = it_temp_path("certs");
    char *argv[] = {"/bin/mkdir", "-p", (char *)dir, NULL};
    if (it_run(argv, 5000, NULL, NULL) != 0)
        return -1;
    return make_cert("default", "default.test") || make_cert("api", "api.test") ||
           make_cert("wild", "wild.test");
}

static CU_TestInfo tests[] = {
    {"SNI picks the certificate; ALPN http/1.1; X-Forwarded-Proto https",
     test_sni_alpn_and_forwarded_proto},
    {"reload re-reads certificates; a bad pair is refused", test_reload_rereads_and_bad_pair},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"tls", suite_init, it_suite_cleanup, it_test_setup, it_test_teardown, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return it_main(suites, 120);
}
