/* Upstream TLS (scheme: https) through the real gateway, against an HTTPS test origin whose
 * certificate is signed by a CA made here with the openssl command (no key is committed):
 * verified with the right CA (by IP address, by host name, by a configured sni), refused with a
 * 502 naming the cause and a log line with the wrong CA or name, accepted unverified with
 * verify: false (warned at load), SNI sent, kept connections reused, probes over TLS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static const char *dir;

static int run_openssl(char **argv)
{
    return it_run(argv, 20000, NULL, NULL) == 0 ? 0 : -1;
}

/* A CA NAME.pem / NAME.key. */
static int make_ca(const char *name)
{
    char key[600], pem[600], subj[128];
    snprintf(key, sizeof(key), "%s/%s.key", dir, name);
    snprintf(pem, sizeof(pem), "%s/%s.pem", dir, name);
    snprintf(subj, sizeof(subj), "/CN=%s", name);
    char *argv[] = {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", subj,
                    "-addext", "basicConstraints=critical,CA:TRUE", "-keyout", key, "-out", pem,
                    NULL};
    return run_openssl(argv);
}

/* origin.pem / origin.key: for origin.test and 127.0.0.1, signed by ca. */
static int make_server_cert(void)
{
    char key[600], csr[600], pem[600], ca[600], cakey[600], ext[600], serial[600];
    snprintf(key, sizeof(key), "%s/origin.key", dir);
    snprintf(csr, sizeof(csr), "%s/origin.csr", dir);
    snprintf(pem, sizeof(pem), "%s/origin.pem", dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    snprintf(cakey, sizeof(cakey), "%s/ca.key", dir);
    snprintf(ext, sizeof(ext), "%s/origin.ext", dir);
    snprintf(serial, sizeof(serial), "%s/ca.srl", dir);
    if (it_write_file(ext, "subjectAltName=DNS:origin.test,IP:127.0.0.1\n") < 0)
        return -1;
    char *req[] = {"/usr/bin/openssl", "req", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=origin.test", "-keyout",
                   key, "-out", csr, NULL};
    char *sign[] = {"/usr/bin/openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey,
                    "-CAcreateserial", "-CAserial", serial, "-days", "2", "-extfile", ext,
                    "-out", pem, NULL};
    return run_openssl(req) || run_openssl(sign) ? -1 : 0;
}

static const char config[] =
    IT_CONFIG_HEAD
    "resolver: { nameservers: [\"127.0.0.1:9\"], hosts: %s/hosts, timeout: 200ms, attempts: 1 }\n"
    "upstreams:\n"
    "  byip:\n"
    "    scheme: https\n"
    "    tls: { ca_file: %s/ca.pem }\n"
    "    targets: [ { address: \"127.0.0.1:%d\" } ]\n"
    "    health: { active: { path: /, interval: 100ms, unhealthy: 1 } }\n"
    "  byname: { scheme: https, tls: { ca_file: %s/ca.pem }, targets: [ { address: \"origin.test:%d\" } ] }\n"
    "  sni: { scheme: https, tls: { ca_file: %s/ca.pem, sni: origin.test }, targets: [ { address: \"127.0.0.1:%d\" } ] }\n"
    "  wrongca: { scheme: https, tls: { ca_file: %s/other.pem }, targets: [ { address: \"127.0.0.1:%d\" } ] }\n"
    "  wrongname: { scheme: https, tls: { ca_file: %s/ca.pem, sni: other.test }, targets: [ { address: \"127.0.0.1:%d\" } ] }\n"
    "  noverify: { scheme: https, tls: { verify: false }, targets: [ { address: \"127.0.0.1:%d\" } ] }\n"
    "routes:\n"
    "  - { name: byip, match: { paths: [\"/byip\"] }, upstream: byip, strip_prefix: true }\n"
    "  - { name: byname, match: { paths: [\"/byname\"] }, upstream: byname, strip_prefix: true }\n"
    "  - { name: sni, match: { paths: [\"/sni\"] }, upstream: sni, strip_prefix: true }\n"
    "  - { name: wrongca, match: { paths: [\"/wrongca\"] }, upstream: wrongca, strip_prefix: true }\n"
    "  - { name: wrongname, match: { paths: [\"/wrongname\"] }, upstream: wrongname, strip_prefix: true }\n"
    "  - { name: noverify, match: { paths: [\"/noverify\"] }, upstream: noverify, strip_prefix: true }\n";

struct setup {
    struct it_proc *origin, *gw;
    struct it_http h;
};

static int start(struct setup *s)
{
    char cert[600], key[600];
    snprintf(cert, sizeof(cert), "%s/origin.pem", dir);
    snprintf(key, sizeof(key), "%s/origin.key", dir);
    struct it_origin_opts o = {.cert = cert, .key = key};
    memset(s, 0, sizeof(*s));
    s->origin = it_origin_start_opts("tls", &o);
    if (!s->origin || it_http_init(&s->h) < 0)
        return -1;
    int p = s->origin->port, port = it_free_port();
    const char *conf = it_temp_path("upstream-tls.yaml");
    if (it_write_file(conf, config, port, dir, dir, p, dir, p, dir, p, dir, p, dir, p, p) < 0)
        return -1;
    s->gw = it_lintel_start(conf, port);
    return s->gw ? 0 : -1;
}

/* GET path; returns the status (-1 on a transport error) and keeps the response in r. */
static int get(struct setup *s, const char *path, struct it_response *r)
{
    return it_http_get(&s->h, it_url(s->gw->port, path), NULL, r) == 0 ? r->status : -1;
}

static void test_verified_by_ip_name_and_sni(void)
{
    struct setup s;
    CU_ASSERT_FATAL(start(&s) == 0);
    struct it_response r;
    CU_ASSERT_EQUAL(get(&s, "/byip/x", &r), 200);
    CU_ASSERT_STRING_EQUAL(it_response_header(&r, "X-Origin") ?: "", "tls");
    CU_ASSERT_PTR_NULL(it_response_header(&r, "X-Origin-Sni")); /* no SNI for an IP address */
    it_response_free(&r);
    CU_ASSERT_EQUAL(get(&s, "/byname/x", &r), 200);
    CU_ASSERT_STRING_EQUAL(it_response_header(&r, "X-Origin-Sni") ?: "", "origin.test");
    it_response_free(&r);
    CU_ASSERT_EQUAL(get(&s, "/sni/x", &r), 200);
    CU_ASSERT_STRING_EQUAL(it_response_header(&r, "X-Origin-Sni") ?: "", "origin.test");
    it_response_free(&r);

    /* Probes speak TLS too: with unhealthy: 1 every 100 ms, a plain-text probe would have
     * taken the target down by now. */
    it_sleep_ms(500);
    CU_ASSERT_EQUAL(get(&s, "/byip/x", &r), 200);
    it_response_free(&r);
    CU_ASSERT_FALSE(it_proc_log_wait(s.gw, 0, "is down", 0));
    it_http_free(&s.h);
}

static void test_refused_with_502_and_log(void)
{
    struct setup s;
    CU_ASSERT_FATAL(start(&s) == 0);
    struct it_response r;
    CU_ASSERT_EQUAL(get(&s, "/wrongca/x", &r), 502);
    CU_ASSERT(r.body.data &&
              strstr(r.body.data, "upstream TLS handshake failed: certificate verify failed"));
    it_response_free(&r);
    CU_ASSERT(it_proc_log_wait(s.gw, 0,
                               "upstream wrongca: TLS handshake with 127.0.0.1", 2000));
    CU_ASSERT(it_proc_log_wait(s.gw, 0, "certificate verify failed", 0));

    CU_ASSERT_EQUAL(get(&s, "/wrongname/x", &r), 502);
    CU_ASSERT(r.body.data && strstr(r.body.data, "certificate verify failed"));
    it_response_free(&r);

    /* verify: false is explicit, warned about at load, and then works with any certificate. */
    CU_ASSERT(it_proc_log_wait(s.gw, 0, "upstream noverify: TLS certificate verification is off",
                               0));
    CU_ASSERT_EQUAL(get(&s, "/noverify/x", &r), 200);
    it_response_free(&r);
    it_http_free(&s.h);
}

static void test_keepalive_reuse(void)
{
    struct setup s;
    CU_ASSERT_FATAL(start(&s) == 0);
    struct it_response r;
    CU_ASSERT_EQUAL_FATAL(get(&s, "/sni/stats", &r), 200);
    long long first = it_json_int(r.body.data, "connections");
    it_response_free(&r);
    long long last = -1;
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL_FATAL(get(&s, "/sni/stats", &r), 200);
        last = it_json_int(r.body.data, "connections");
        it_response_free(&r);
    }
    /* Probes of byip open their own connections: count only what sni's requests would add. */
    CU_ASSERT(first > 0);
    CU_ASSERT(last - first <= 2);
    CU_ASSERT_EQUAL(get(&s, "/sni/x", &r), 200);
    const char *conn_first = it_response_header(&r, "X-Origin-Conn");
    char c1[32];
    snprintf(c1, sizeof(c1), "%s", conn_first ? conn_first : "?");
    it_response_free(&r);
    CU_ASSERT_EQUAL(get(&s, "/sni/x", &r), 200);
    CU_ASSERT_STRING_EQUAL(it_response_header(&r, "X-Origin-Conn") ?: "", c1); /* same one */
    it_response_free(&r);
    it_http_free(&s.h);
}

static int suite_init(void)
{
    dir = it_temp_path("upstream-certs");
    char *argv[] = {"/bin/mkdir", "-p", (char *)dir, NULL};
    char hosts[600];
    snprintf(hosts, sizeof(hosts), "%s/hosts", dir);
    if (it_run(argv, 5000, NULL, NULL) != 0 || it_write_file(hosts, "127.0.0.1 origin.test\n") < 0)
        return -1;
    return make_ca("ca") || make_ca("other") || make_server_cert();
}

static CU_TestInfo tests[] = {
    {"verified by IP, by host name and by sni; SNI sent; probes over TLS",
     test_verified_by_ip_name_and_sni},
    {"wrong CA or name: 502 naming the cause and a log line; verify: false",
     test_refused_with_502_and_log},
    {"kept TLS connections are reused", test_keepalive_reuse},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"upstream_tls", suite_init, it_suite_cleanup, it_test_setup, it_test_teardown, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return it_main(suites, 120);
}
