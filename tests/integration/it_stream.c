/* Streaming with bounded memory: 200 MB uploads (chunked and with Content-Length) and downloads
 * (Content-Length and chunked) through the gateway arrive intact, and the gateway's peak RSS
 * (VmHWM, reset before each test) stays within a fixed margin of its RSS before the test. Two tests
 * make one side slow on purpose (a client that stops reading, an origin that stops reading), so
 * that only backpressure keeps the gateway from buffering the whole body. The test itself never
 * holds a body either. */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "harness.h"

#define BIG (200ULL * 1024 * 1024)
#define MARGIN_KB (64L * 1024) /* bound on what one transfer may add to the gateway's RSS */

static struct it_proc *origin, *gw;
static long idle_rss_kb; /* after start-up and warm-up */
static long base_rss_kb; /* before the current test */
static uint64_t big_fnv; /* FNV of the first BIG it_pattern bytes */

static const char config_fmt[] = IT_CONFIG_HEAD "limits: { body_bytes: 256m }\n"
                                                "upstreams:\n"
                                                "  origin:\n"
                                                "    targets:\n"
                                                "      - address: \"127.0.0.1:%d\"\n"
                                                "routes:\n"
                                                "  - name: all\n"
                                                "    match: { paths: [\"/\"] }\n"
                                                "    upstream: origin\n";

static int suite_init(void)
{
    int port = it_free_port();
    const char *conf = it_temp_path("stream.yaml");
    if (!(origin = it_origin_start("A")) || port < 0 || !conf ||
        it_write_file(conf, config_fmt, port, origin->port) < 0 ||
        !(gw = it_lintel_start(conf, port)))
        return -1;
    /* Idle means: started and warmed up by a few small requests. */
    struct it_http h;
    if (it_http_init(&h) < 0)
        return -1;
    for (int i = 0; i < 5; i++) {
        struct it_response r;
        if (it_http_get(&h, it_url(gw->port, "/echo/warm"), NULL, &r) < 0)
            break;
        it_response_free(&r);
    }
    it_http_free(&h);
    idle_rss_kb = it_proc_mem_kb(gw->pid, "VmRSS");
    big_fnv = it_pattern_fnv(BIG);
    fprintf(stderr, "it_stream: gateway idle RSS %ld kB\n", idle_rss_kb);
    return idle_rss_kb > 0 ? 0 : -1;
}

/* Each test measures its own peak: from the gateway's RSS now (where the kernel lets the peak be
 * reset; otherwise the peak since start-up counts, against the idle RSS). */
static void setup(void)
{
    it_test_setup();
    base_rss_kb = idle_rss_kb;
    if (it_proc_reset_peak(gw->pid) == 0)
        base_rss_kb = it_proc_mem_kb(gw->pid, "VmRSS");
}

static void check_peak_memory(const char *what)
{
    long hwm = it_proc_mem_kb(gw->pid, "VmHWM");
    fprintf(stderr, "it_stream: %s: gateway peak RSS %ld kB (before: %ld kB)\n", what, hwm,
            base_rss_kb);
    CU_ASSERT(hwm > 0 && base_rss_kb > 0 && hwm < base_rss_kb + MARGIN_KB);
}

static void upload(const char *path, bool chunked)
{
    struct it_http h;
    struct it_response r;
    struct it_http_req q = {
        .url = it_url(gw->port, path), .gen_len = BIG, .chunked = chunked, .timeout_ms = 180000};
    char want[17];
    it_fnv_hex(big_fnv, want);
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    CU_ASSERT_FATAL(it_http_do(&h, &q, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(it_json_int(r.body.data, "body_bytes"), (long long)BIG);
    CU_ASSERT(it_json_eq(r.body.data, "body_fnv", want));
    it_response_free(&r);
    it_http_free(&h);
    check_peak_memory(path);
}

static void test_upload_chunked_200mb(void)
{
    upload("/echo/up-chunked", true);
}

static void test_upload_content_length_200mb(void)
{
    upload("/echo/up-length", false);
}

static void test_upload_to_stalled_origin_200mb(void)
{
    /* The origin reads nothing of the body for 3 s: meanwhile the gateway must stop reading the
     * client rather than buffer what it sends. */
    upload("/stall/3000", true);
}

static void download(const char *path, bool chunked)
{
    struct it_http h;
    struct it_response r;
    struct it_http_req q = {.url = it_url(gw->port, path), .discard = true, .timeout_ms = 180000};
    char got[17];
    CU_ASSERT_FATAL(it_http_init(&h) == 0);
    CU_ASSERT_FATAL(it_http_do(&h, &q, &r) == 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.chunked, chunked);
    CU_ASSERT_EQUAL(r.body_bytes, BIG);
    it_fnv_hex(r.body_fnv, got);
    const char *want = it_response_header(&r, "X-Body-Fnv");
    CU_ASSERT(want && strcmp(want, got) == 0);
    it_response_free(&r);
    it_http_free(&h);
    check_peak_memory(path);
}

static void test_download_content_length_200mb(void)
{
    download("/bytes/209715200", false);
}

static void test_download_chunked_200mb(void)
{
    download("/chunked/209715200", true);
}

/* Reads from fd into a 64 KB buffer, hashing; stops after limit bytes of body or at EOF.
 * Returns false on a timeout (30 s without data) or an error. */
static bool drain(int fd, uint64_t limit, uint64_t *got, uint64_t *fnv)
{
    static char buf[65536];
    while (*got < limit) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 30000) <= 0)
            return false;
        size_t want = limit - *got < sizeof buf ? (size_t)(limit - *got) : sizeof buf;
        ssize_t n = recv(fd, buf, want, 0);
        if (n <= 0)
            return n == 0;
        *fnv = it_fnv1a(*fnv, buf, (size_t)n);
        *got += (uint64_t)n;
    }
    return true;
}

static void test_download_to_stalled_client_200mb(void)
{
    static const char req[] =
        "GET /bytes/209715200 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    struct it_conn c;
    struct it_response head;
    uint64_t got = 0, fnv = IT_FNV_INIT;
    char hex[17];
    CU_ASSERT_FATAL(it_conn_open(&c, gw->port) == 0);
    CU_ASSERT_FATAL(it_conn_send(&c, req, sizeof req - 1) == 0);
    /* The head alone (read as if for HEAD); body bytes read with it stay in c.in. */
    CU_ASSERT_FATAL(it_conn_read_response(&c, true, 10000, &head) == 0);
    CU_ASSERT_EQUAL(head.status, 200);
    got = c.in.len;
    fnv = it_fnv1a(fnv, c.in.data, c.in.len);

    /* Take 1 MB, then stop reading for 3 s while the origin could send everything. */
    CU_ASSERT_FATAL(drain(c.fd, 1 << 20, &got, &fnv));
    struct timespec pause = {.tv_sec = 3};
    nanosleep(&pause, NULL);
    check_peak_memory("stalled client");

    CU_ASSERT(drain(c.fd, BIG, &got, &fnv));
    CU_ASSERT_EQUAL(got, BIG);
    it_fnv_hex(fnv, hex);
    const char *want = it_response_header(&head, "X-Body-Fnv");
    CU_ASSERT(want && strcmp(want, hex) == 0);
    it_response_free(&head);
    it_conn_close(&c);
    check_peak_memory("stalled client, after");
}

static CU_TestInfo tests[] = {
    {"200 MB chunked upload, bounded memory", test_upload_chunked_200mb},
    {"200 MB Content-Length upload, bounded memory", test_upload_content_length_200mb},
    {"200 MB upload to an origin that stalls, bounded memory", test_upload_to_stalled_origin_200mb},
    {"200 MB Content-Length download, bounded memory", test_download_content_length_200mb},
    {"200 MB chunked download, bounded memory", test_download_chunked_200mb},
    {"200 MB download to a client that stalls, bounded memory",
     test_download_to_stalled_client_200mb},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"stream", suite_init, it_suite_cleanup, setup, it_test_teardown, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return it_main(suites, 280);
}
