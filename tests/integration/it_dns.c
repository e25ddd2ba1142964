/* Discovery through the real gateway and a test DNS server (harness_dns.h): a name with two
 * addresses sends traffic to both origins (127.0.0.1 and 127.0.0.2, same port); a new answer
 * moves the traffic after the resolve interval; a failing server keeps the last addresses
 * serving; a name that does not resolve at start gets a 503 naming it and serves once it does;
 * a hosts-file entry resolves without the server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_dns.h"

static const char config[] = IT_CONFIG_HEAD
    "resolver: { nameservers: [\"127.0.0.1:%d\"], hosts: %s, timeout: 300ms, attempts: 1 }\n"
    "upstreams:\n"
    "  users: { targets: [ { address: \"users.test:%d\" } ], resolve_interval: 200ms,\n"
    "           retries: 0 }\n"
    "  late: { targets: [ { address: \"late.test:%d\" } ], resolve_interval: 200ms }\n"
    "  hosted: { targets: [ { address: \"hosted.test:%d\" } ] }\n"
    "routes:\n"
    "  - { name: users, match: { paths: [\"/users\"] }, upstream: users }\n"
    "  - { name: late, match: { paths: [\"/late\"] }, upstream: late }\n"
    "  - { name: hosted, match: { paths: [\"/hosted\"] }, upstream: hosted }\n";

struct setup {
    struct it_dns *dns;
    struct it_proc *a, *b, *gw;
    struct it_http h;
};

/* Origins "a" on 127.0.0.1:P and "b" on 127.0.0.2:P, the DNS server, and the gateway. */
static int start(struct setup *s)
{
    memset(s, 0, sizeof(*s));
    int dns_port = it_free_port(), port = it_free_port(), origin = it_free_port();
    struct it_origin_opts oa = {.addr = "127.0.0.1", .port = origin};
    struct it_origin_opts ob = {.addr = "127.0.0.2", .port = origin};
    s->a = it_origin_start_opts("a", &oa);
    s->b = it_origin_start_opts("b", &ob);
    s->dns = it_dns_start(dns_port);
    if (!s->a || !s->b || !s->dns || it_http_init(&s->h) < 0)
        return -1;
    it_dns_set(s->dns, "users.test", "127.0.0.1,127.0.0.2");
    const char *hosts = it_temp_path("dns-hosts");
    const char *conf = it_temp_path("dns.yaml");
    if (it_write_file(hosts, "127.0.0.2 hosted.test\n") < 0 ||
        it_write_file(conf, config, port, dns_port, hosts, origin, origin, origin) < 0)
        return -1;
    s->gw = it_lintel_start(conf, port);
    return s->gw ? 0 : -1;
}

static void stop(struct setup *s)
{
    it_http_free(&s->h);
    it_dns_stop(s->dns);
}

/* How many times needle occurs in p's log. */
static int log_count(const struct it_proc *p, const char *needle)
{
    FILE *f = fopen(p->log_path, "r");
    char line[4096];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}

/* GETs path n times; counts answers from origin a and b (and anything else in *other). */
static void spread(struct setup *s, const char *path, int n, int *a, int *b, int *other)
{
    *a = *b = *other = 0;
    for (int i = 0; i < n; i++) {
        struct it_response r;
        if (it_http_get(&s->h, it_url(s->gw->port, path), NULL, &r) < 0) {
            (*other)++;
            continue;
        }
        const char *o = r.status == 200 ? it_response_header(&r, "X-Origin") : NULL;
        if (o && strcmp(o, "a") == 0)
            (*a)++;
        else if (o && strcmp(o, "b") == 0)
            (*b)++;
        else
            (*other)++;
        it_response_free(&r);
    }
}

/* Polls until n requests in a row all reach the expected origins (a and/or b); true if so
 * within timeout_ms. */
static bool settles(struct setup *s, const char *path, bool want_a, bool want_b, int timeout_ms)
{
    int64_t deadline = it_now_ms() + timeout_ms;
    int a, b, other;
    do {
        spread(s, path, 12, &a, &b, &other);
        if (other == 0 && (a > 0) == want_a && (b > 0) == want_b)
            return true;
        it_sleep_ms(50);
    } while (it_now_ms() < deadline);
    fprintf(stderr, "it_dns: %s: a=%d b=%d other=%d\n", path, a, b, other);
    return false;
}

static void test_two_addresses_change_and_failure(void)
{
    struct setup s;
    CU_ASSERT_FATAL(start(&s) == 0);
    int a, b, other;
    spread(&s, "/users", 20, &a, &b, &other);
    CU_ASSERT(a > 0 && b > 0 && other == 0); /* both addresses are targets */

    /* A new answer: the traffic moves to the one address left. */
    off_t mark = it_proc_log_size(s.gw);
    it_dns_set(s.dns, "users.test", "127.0.0.2");
    CU_ASSERT(it_proc_log_wait(s.gw, mark, "users.test now resolves to 127.0.0.2", 5000));
    CU_ASSERT(settles(&s, "/users", false, true, 3000));

    /* The server fails: logged once, and the last address keeps serving. */
    mark = it_proc_log_size(s.gw);
    it_dns_mode(s.dns, IT_DNS_SERVFAIL);
    CU_ASSERT(it_proc_log_wait(s.gw, mark, "cannot resolve users.test", 5000));
    unsigned q = it_dns_queries(s.dns);
    while (it_dns_queries(s.dns) < q + 6)
        it_sleep_ms(50); /* several more failed intervals */
    spread(&s, "/users", 20, &a, &b, &other);
    CU_ASSERT(a == 0 && b == 20 && other == 0);

    /* The server is silent (timeouts): still serving. */
    it_dns_mode(s.dns, IT_DNS_SILENT);
    q = it_dns_queries(s.dns);
    while (it_dns_queries(s.dns) < q + 3)
        it_sleep_ms(50);
    spread(&s, "/users", 10, &a, &b, &other);
    CU_ASSERT(a == 0 && b == 10 && other == 0);

    /* Back, with both addresses: logged once, traffic on both again. */
    it_dns_set(s.dns, "users.test", "127.0.0.1,127.0.0.2");
    it_dns_mode(s.dns, IT_DNS_ANSWER);
    CU_ASSERT(it_proc_log_wait(s.gw, mark, "users.test resolves again", 5000));
    CU_ASSERT(settles(&s, "/users", true, true, 3000));
    /* The failure was logged once, not once per failed interval. */
    CU_ASSERT_EQUAL(log_count(s.gw, "cannot resolve users.test"), 1);
    stop(&s);
}

static void test_unresolved_at_start_and_hosts_file(void)
{
    struct setup s;
    CU_ASSERT_FATAL(start(&s) == 0);
    /* late.test is unknown: the gateway started anyway, and says why it cannot serve. */
    struct it_response r;
    CU_ASSERT_FATAL(it_http_get(&s.h, it_url(s.gw->port, "/late"), NULL, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 503);
    CU_ASSERT(r.body.data && strstr(r.body.data, "late.test: no such host"));
    it_response_free(&r);
    CU_ASSERT(it_proc_log_wait(s.gw, 0, "cannot resolve late.test (no such host)", 1000));

    /* It appears: served at the next interval. */
    off_t mark = it_proc_log_size(s.gw);
    it_dns_set(s.dns, "late.test", "127.0.0.1");
    CU_ASSERT(it_proc_log_wait(s.gw, mark, "late.test resolves", 5000));
    CU_ASSERT(settles(&s, "/late", true, false, 3000));

    /* hosted.test is only in the hosts file. */
    CU_ASSERT(settles(&s, "/hosted", false, true, 1000));
    stop(&s);
}

static CU_TestInfo tests[] = {
    {"a name's addresses are targets; changes move traffic; failures keep the last ones",
     test_two_addresses_change_and_failure},
    {"a name unresolved at start answers 503 naming it, then serves; hosts file entries",
     test_unresolved_at_start_and_hosts_file},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"dns", NULL, it_suite_cleanup, it_test_setup, it_test_teardown, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return it_main(suites, 120);
}
