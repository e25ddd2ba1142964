/* Tests ratelimit's policy redis (ratelimit_redis.c) through the SDK test kit: the test plays
 * the Redis server on a loopback socket, reading the commands the plugin's hiredis connection
 * sends and writing the replies, while lk_poll runs the plugin's watches as a worker loop would.
 * Covered: the handshake (AUTH, SELECT, SCRIPT LOAD), the EVALSHA a request sends and the
 * decision from its reply, a request that ends while waiting, timeouts, a lost connection and
 * reconnection, a flushed script, fault_tolerant off. The script itself runs against a real
 * Redis in tests/integration/it_plugin_ratelimit.c. */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lintel/testkit.h>

#define SHA "0123456789abcdef0123456789abcdef01234567"

static struct lk_plugin *plugin;

/* ---- a fake Redis ---------------------------------------------------------------------------- */

struct fake {
    int lfd, fd, port;
    char buf[65536];
    size_t len;
};

static int fake_listen(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    f->fd = -1;
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(f->lfd, 8) != 0 || getsockname(f->lfd, (struct sockaddr *)&a, &alen) != 0)
        return -1;
    f->port = ntohs(a.sin_port);
    return 0;
}

static void fake_drop(struct fake *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
    f->len = 0;
}

static void fake_close(struct fake *f)
{
    fake_drop(f);
    if (f->lfd >= 0)
        close(f->lfd);
    f->lfd = -1;
}

/* Accepts the plugin's (next) connection, running its watches meanwhile. */
static int fake_accept(struct fake *f)
{
    fake_drop(f);
    for (int i = 0; i < 200; i++) {
        lk_poll(10);
        f->fd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK);
        if (f->fd >= 0)
            return 0;
    }
    fprintf(stderr, "fake redis: no connection\n");
    return -1;
}

/* Parses one RESP array of bulk strings from the front of buf; 0 when incomplete. */
static size_t parse_command(const char *p, size_t len, char **argv, int *argc)
{
    const char *end = p + len, *s = p;
    if (s >= end || *s != '*')
        return 0;
    int n = atoi(s + 1);
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    if (!nl)
        return 0;
    s = nl + 1;
    for (int i = 0; i < n; i++) {
        if (s >= end || *s != '$' || !(nl = memchr(s, '\n', (size_t)(end - s))))
            return 0;
        size_t blen = (size_t)atol(s + 1);
        s = nl + 1;
        if ((size_t)(end - s) < blen + 2)
            return 0;
        if (i < 32) {
            argv[i] = strndup(s, blen);
            *argc = i + 1;
        }
        s += blen + 2;
    }
    return (size_t)(s - p);
}

/* Waits for the next command (the plugin's watches run meanwhile). Returns its argc (argv
 * strings to free with free_args), or 0 when none came. */
static int fake_command(struct fake *f, char **argv)
{
    for (int i = 0; i < 300; i++) {
        int argc = 0;
        size_t used = parse_command(f->buf, f->len, argv, &argc);
        if (used) {
            memmove(f->buf, f->buf + used, f->len - used);
            f->len -= used;
            return argc;
        }
        for (int j = 0; j < argc; j++)
            free(argv[j]);
        lk_poll(10);
        ssize_t n = read(f->fd, f->buf + f->len, sizeof(f->buf) - f->len);
        if (n > 0)
            f->len += (size_t)n;
    }
    fprintf(stderr, "fake redis: no command\n");
    return 0;
}

static void free_args(char **argv, int argc)
{
    for (int i = 0; i < argc; i++)
        free(argv[i]);
}

/* Reads one command and checks its first two words (the second may be NULL). */
static int expect(struct fake *f, const char *w0, const char *w1)
{
    char *argv[32];
    int argc = fake_command(f, argv);
    int ok = argc >= 1 && strcasecmp(argv[0], w0) == 0 &&
             (!w1 || (argc >= 2 && strcasecmp(argv[1], w1) == 0));
    if (!ok)
        fprintf(stderr, "fake redis: wanted %s %s, got %s %s\n", w0, w1 ? w1 : "",
                argc ? argv[0] : "(nothing)", argc > 1 ? argv[1] : "");
    free_args(argv, argc);
    return ok;
}

/* Sends a reply and lets the plugin read it. */
static void reply(struct fake *f, const char *resp)
{
    if (write(f->fd, resp, strlen(resp)) != (ssize_t)strlen(resp))
        fprintf(stderr, "fake redis: short write\n");
    lk_poll(200);
}

/* The plugin connects and loads its script. */
static int handshake(struct fake *f)
{
    if (fake_accept(f) != 0 || !expect(f, "SCRIPT", "LOAD"))
        return -1;
    reply(f, "$40\r\n" SHA "\r\n");
    return 0;
}

/* ---- helpers --------------------------------------------------------------------------------- */

/* 5 per second and 100 per minute in Redis at port; redis_extra goes into the redis map,
 * extra into the config map (both start with ", "). */
static struct lk_instance *redis_instance(int port, const char *redis_extra, const char *extra)
{
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "{ second: 5, minute: 100, algorithm: fixed_window, policy: redis, redis: { host: "
             "127.0.0.1, port: %d, timeout: 200ms%s }%s }",
             port, redis_extra ? redis_extra : "", extra ? extra : "");
    return lk_instance_or_report(plugin, yaml);
}

static struct lk_req *new_request(const char *ip)
{
    struct lk_req *r = lk_req_new("GET", "/");
    lk_req_set_client(r, ip);
    lk_req_set_route(r, "api");
    return r;
}

/* Lets a request that goes on get its 200, so the headers from ACCESS show. */
static void upstream_answers(struct lk_instance *in, struct lk_req *r)
{
    lk_req_set_response(r, 200, "ok");
    lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS);
}

static int header_int(const struct lk_req *r, const char *name)
{
    const char *v = lk_resp_header(r, name);
    return v ? atoi(v) : -1;
}

static int suite_init(void)
{
    signal(SIGPIPE, SIG_IGN); /* lintel ignores it too: hiredis may write to a closed socket */
    plugin = lk_plugin_load_or_report(RATELIMIT_SO);
    return plugin ? 0 : -1;
}

static int suite_clean(void)
{
    lk_plugin_free(plugin);
    return 0;
}

static void setup(void)
{
    lk_shared_reset();
    lk_log_clear();
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_decides_from_reply(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_listen(&f) == 0);
    struct lk_instance *in = redis_instance(f.port, NULL, NULL);
    CU_ASSERT_FATAL(in && handshake(&f) == 0);

    struct lk_req *r = new_request("10.0.0.1");
    CU_ASSERT_EQUAL_FATAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_PAUSE);
    char *argv[32];
    int argc = fake_command(&f, argv);
    static const char *const want[] = {"EVALSHA",
                                       SHA,
                                       "2",
                                       "lintel:ratelimit:i8:10.0.0.1:fs",
                                       "lintel:ratelimit:i8:10.0.0.1:fm",
                                       "f",
                                       "5",
                                       "1000",
                                       "5",
                                       "100",
                                       "60000",
                                       "100"};
    CU_ASSERT_EQUAL(argc, 12);
    for (int i = 0; i < argc && i < 12; i++) {
        if (strcmp(argv[i], want[i]) != 0)
            fprintf(stderr, "\n  EVALSHA arg %d: %s, want %s\n", i, argv[i], want[i]);
        CU_ASSERT_STRING_EQUAL(argv[i], want[i]);
    }
    free_args(argv, argc);
    reply(&f, "*7\r\n:1\r\n:4\r\n:800\r\n:0\r\n:99\r\n:59000\r\n:0\r\n");
    enum lintel_result res;
    CU_ASSERT_FATAL(lk_resumed(r, &res));
    CU_ASSERT_EQUAL(res, LINTEL_CONTINUE);
    upstream_answers(in, r);
    CU_ASSERT_EQUAL(header_int(r, "X-RateLimit-Remaining-Second"), 4);
    CU_ASSERT_EQUAL(header_int(r, "X-RateLimit-Remaining-Minute"), 99);
    CU_ASSERT_EQUAL(header_int(r, "RateLimit-Limit"), 5);
    CU_ASSERT_EQUAL(header_int(r, "RateLimit-Remaining"), 4);
    CU_ASSERT_EQUAL(header_int(r, "RateLimit-Reset"), 1);
    CU_ASSERT_STRING_EQUAL(lk_log_field(r, "ratelimit_store"), "redis");
    lk_req_free(r);

    /* Redis says no: 429, Retry-After from the refusing limit. */
    r = new_request("10.0.0.1");
    CU_ASSERT_EQUAL_FATAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_PAUSE);
    CU_ASSERT(expect(&f, "EVALSHA", SHA));
    reply(&f, "*7\r\n:0\r\n:0\r\n:800\r\n:1800\r\n:98\r\n:59000\r\n:0\r\n");
    CU_ASSERT_FATAL(lk_resumed(r, &res));
    CU_ASSERT_EQUAL(res, LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), 429);
    CU_ASSERT_EQUAL(header_int(r, "Retry-After"), 2);
    CU_ASSERT_EQUAL(header_int(r, "X-RateLimit-Remaining-Second"), 0);
    CU_ASSERT_STRING_EQUAL(lk_log_field(r, "ratelimit"), "limited");
    lk_req_free(r);

    /* A reply that is not the script's: decided locally. */
    r = new_request("10.0.0.1");
    CU_ASSERT_EQUAL_FATAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_PAUSE);
    CU_ASSERT(expect(&f, "EVALSHA", SHA));
    reply(&f, "*1\r\n:1\r\n");
    CU_ASSERT_FATAL(lk_resumed(r, &res));
    CU_ASSERT_EQUAL(res, LINTEL_CONTINUE);
    CU_ASSERT_STRING_EQUAL(lk_log_field(r, "ratelimit_store"), "fallback");
    lk_req_free(r);

    CU_ASSERT_EQUAL(lk_metric(in, "redis"), 2);
    CU_ASSERT_EQUAL(lk_metric(in, "fallback"), 1);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
    fake_close(&f);
}

static void test_request_gone_while_waiting(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_listen(&f) == 0);
    struct lk_instance *in = redis_instance(f.port, NULL, NULL);
    CU_ASSERT_FATAL(in && handshake(&f) == 0);

    struct lk_req *r = new_request("10.0.0.1");
    CU_ASSERT_EQUAL_FATAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_PAUSE);
    CU_ASSERT(expect(&f, "EVALSHA", SHA));
    lk_req_free(r); /* the client went away */
    reply(&f, "*7\r\n:1\r\n:4\r\n:800\r\n:0\r\n:99\r\n:59000\r\n:0\r\n");
    lk_advance(1000); /* the request's timeout would have been due: it is gone with it */
    CU_ASSERT_EQUAL(lk_violations(), 0);

    /* The connection goes on serving. */
    r = new_request("10.0.0.1");
    CU_ASSERT_EQUAL_FATAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_PAUSE);
    CU_ASSERT(expect(&f, "EVALSHA", SHA));
    reply(&f, "*7\r\n:1\r\n:3\r\n:800\r\n:0\r\n:98\r\n:59000\r\n:0\r\n");
    enum lintel_result res;
    CU_ASSERT(lk_resumed(r, &res) && res == LINTEL_CONTINUE);
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
    fake_close(&f);
}

static void test_timeout_falls_back(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_listen(&f) == 0);
    struct lk_instance *in = redis_instance(f.port, NULL, NULL);
    CU_ASSERT_FATAL(in && handshake(&f) == 0);

    struct lk_req *r = new_request("10.0.0.1");
    CU_ASSERT_EQUAL_FATAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_PAUSE);
    CU_ASSERT(expect(&f, "EVALSHA", SHA));
    lk_advance(199);
    CU_ASSERT_FALSE(lk_resumed(r, NULL));
    lk_advance(1); /* redis.timeout */
    enum lintel_result res;
    CU_ASSERT_FATAL(lk_resumed(r, &res));
    CU_ASSERT_EQUAL(res, LINTEL_CONTINUE);
    CU_ASSERT_STRING_EQUAL(lk_log_field(r, "ratelimit_store"), "fallback");
    upstream_answers(in, r);
    CU_ASSERT_EQUAL(header_int(r, "X-RateLimit-Remaining-Second"), 4); /* the local count */
    lk_req_free(r);
    CU_ASSERT(strstr(lk_log_lines(), "is slow (timeout)") != NULL);

    /* For a second Redis is left alone: decided at once, no PAUSE. The late reply changes
     * nothing. */
    r = new_request("10.0.0.1");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_CONTINUE);
    lk_req_free(r);
    reply(&f, "*7\r\n:1\r\n:4\r\n:800\r\n:0\r\n:99\r\n:59000\r\n:0\r\n");
    lk_advance(1000);
    r = new_request("10.0.0.1");
    CU_ASSERT_EQUAL_FATAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_PAUSE);
    CU_ASSERT(expect(&f, "EVALSHA", SHA));
    reply(&f, "*7\r\n:1\r\n:4\r\n:800\r\n:0\r\n:99\r\n:59000\r\n:0\r\n");
    CU_ASSERT(lk_resumed(r, &res) && res == LINTEL_CONTINUE);
    CU_ASSERT_STRING_EQUAL(lk_log_field(r, "ratelimit_store"), "redis");
    lk_req_free(r);
    CU_ASSERT(strstr(lk_log_lines(), "answers again") != NULL);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
    fake_close(&f);
}

static void test_connection_lost_and_back(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_listen(&f) == 0);
    struct lk_instance *in = redis_instance(f.port, NULL, NULL);
    CU_ASSERT_FATAL(in && handshake(&f) == 0);

    struct lk_req *r = new_request("10.0.0.1");
    CU_ASSERT_EQUAL_FATAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_PAUSE);
    CU_ASSERT(expect(&f, "EVALSHA", SHA));
    fake_drop(&f); /* Redis dies with the call in flight: decided locally at once */
    lk_poll(500);
    enum lintel_result res;
    CU_ASSERT_FATAL(lk_resumed(r, &res));
    CU_ASSERT_EQUAL(res, LINTEL_CONTINUE);
    CU_ASSERT_STRING_EQUAL(lk_log_field(r, "ratelimit_store"), "fallback");
    lk_req_free(r);
    CU_ASSERT(strstr(lk_log_lines(), "closed the connection") != NULL);

    /* Meanwhile: local, no waiting; 5 per second still hold. */
    int ok = 0;
    for (int i = 0; i < 8; i++) {
        r = new_request("10.0.0.1");
        res = lk_run(in, r, LINTEL_PHASE_ACCESS);
        CU_ASSERT(res != LINTEL_PAUSE);
        ok += res == LINTEL_CONTINUE;
        lk_req_free(r);
    }
    CU_ASSERT_EQUAL(ok, 4); /* the first request of this second was counted locally too */

    /* A second later the worker reconnects. */
    lk_advance(1000);
    CU_ASSERT_FATAL(handshake(&f) == 0);
    r = new_request("10.0.0.1");
    CU_ASSERT_EQUAL_FATAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_PAUSE);
    CU_ASSERT(expect(&f, "EVALSHA", SHA));
    reply(&f, "*7\r\n:1\r\n:4\r\n:800\r\n:0\r\n:99\r\n:59000\r\n:0\r\n");
    CU_ASSERT(lk_resumed(r, &res) && res == LINTEL_CONTINUE);
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
    fake_close(&f);
}

static void test_auth_select_noscript(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_listen(&f) == 0);
    struct lk_instance *in =
        redis_instance(f.port, ", password: s3cret, database: 2, prefix: \"rl:\"", NULL);
    CU_ASSERT_FATAL(in != NULL);
    CU_ASSERT_FATAL(fake_accept(&f) == 0);
    char *argv[32];
    int argc = fake_command(&f, argv);
    CU_ASSERT(argc == 2 && strcmp(argv[0], "AUTH") == 0 && strcmp(argv[1], "s3cret") == 0);
    free_args(argv, argc);
    argc = fake_command(&f, argv);
    CU_ASSERT(argc == 2 && strcmp(argv[0], "SELECT") == 0 && strcmp(argv[1], "2") == 0);
    free_args(argv, argc);
    CU_ASSERT(expect(&f, "SCRIPT", "LOAD"));
    reply(&f, "+OK\r\n+OK\r\n$40\r\n" SHA "\r\n");

    /* The script was flushed: this request is decided locally, the script loaded again. */
    struct lk_req *r = new_request("10.0.0.9");
    CU_ASSERT_EQUAL_FATAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_PAUSE);
    argc = fake_command(&f, argv);
    CU_ASSERT(argc == 12 && strcmp(argv[3], "rl:i8:10.0.0.9:fs") == 0);
    free_args(argv, argc);
    reply(&f, "-NOSCRIPT No matching script. Please use EVAL.\r\n");
    enum lintel_result res;
    CU_ASSERT(lk_resumed(r, &res) && res == LINTEL_CONTINUE);
    CU_ASSERT_STRING_EQUAL(lk_log_field(r, "ratelimit_store"), "fallback");
    lk_req_free(r);
    CU_ASSERT(expect(&f, "SCRIPT", "LOAD"));
    reply(&f, "$40\r\n" SHA "\r\n");
    r = new_request("10.0.0.9");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_PAUSE);
    CU_ASSERT(expect(&f, "EVALSHA", SHA));
    reply(&f, "*7\r\n:1\r\n:4\r\n:800\r\n:0\r\n:99\r\n:59000\r\n:0\r\n");
    CU_ASSERT(lk_resumed(r, &res) && res == LINTEL_CONTINUE);
    lk_req_free(r);

    /* A refused AUTH is an error in the log and a disconnect (then local decisions). Redis
     * refuses what follows AUTH as well. */
    static const char refused[] = "-WRONGPASS invalid username-password pair\r\n"
                                  "-NOAUTH Authentication required.\r\n"
                                  "-NOAUTH Authentication required.\r\n";
    fake_drop(&f);
    lk_poll(200);
    lk_advance(1000);
    CU_ASSERT_FATAL(fake_accept(&f) == 0);
    CU_ASSERT(expect(&f, "AUTH", "s3cret"));
    CU_ASSERT(expect(&f, "SELECT", "2"));
    CU_ASSERT(expect(&f, "SCRIPT", "LOAD"));
    reply(&f, refused);
    CU_ASSERT(strstr(lk_log_lines(), "refuses the setup: WRONGPASS") != NULL);
    /* Every second it tries again, refused again: logged once. */
    lk_advance(1000);
    CU_ASSERT_FATAL(fake_accept(&f) == 0);
    CU_ASSERT(expect(&f, "AUTH", "s3cret"));
    CU_ASSERT(expect(&f, "SELECT", "2"));
    CU_ASSERT(expect(&f, "SCRIPT", "LOAD"));
    reply(&f, refused);
    const char *first = strstr(lk_log_lines(), "WRONGPASS");
    CU_ASSERT(first && !strstr(first + 1, "WRONGPASS"));
    r = new_request("10.0.0.9");
    CU_ASSERT_NOT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_PAUSE);
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
    fake_close(&f);
}

static void test_unreachable(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_listen(&f) == 0);
    int port = f.port;
    fake_close(&f); /* nothing listens there now */

    struct lk_instance *in = redis_instance(port, NULL, NULL);
    CU_ASSERT_FATAL(in != NULL);
    lk_poll(100);
    struct lk_req *r = new_request("10.0.0.1");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_CONTINUE);
    CU_ASSERT_STRING_EQUAL(lk_log_field(r, "ratelimit_store"), "fallback");
    lk_req_free(r);
    CU_ASSERT(strstr(lk_log_lines(), "is unreachable: limiting requests locally") != NULL);
    lk_advance(3000); /* reconnection attempts fail quietly (logged once) */
    lk_poll(100);
    const char *first = strstr(lk_log_lines(), "unreachable");
    CU_ASSERT(first && !strstr(first + 1, "unreachable"));
    lk_instance_free(in);

    /* fault_tolerant off: 503 instead. */
    in = redis_instance(port, NULL, ", fault_tolerant: false");
    CU_ASSERT_FATAL(in != NULL);
    lk_poll(100);
    r = new_request("10.0.0.1");
    CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_ACCESS), LINTEL_RESPOND);
    CU_ASSERT_EQUAL(lk_resp_status(r), 503);
    CU_ASSERT_STRING_EQUAL(lk_log_field(r, "ratelimit"), "unavailable");
    lk_req_free(r);
    CU_ASSERT_EQUAL(lk_violations(), 0);
    lk_instance_free(in);
}

static CU_TestInfo tests[] = {
    {"a request pauses for Redis and is decided by its reply", test_decides_from_reply},
    {"a reply after the request ended touches nothing", test_request_gone_while_waiting},
    {"a slow Redis: timeout, local decision, a second's rest", test_timeout_falls_back},
    {"a lost connection: local decisions, reconnection", test_connection_lost_and_back},
    {"AUTH and SELECT first; a flushed script is loaded again", test_auth_select_noscript},
    {"unreachable: local (logged once), or 503 without fault_tolerant", test_unreachable},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"ratelimit-redis", suite_init, suite_clean, setup, NULL, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return lk_test_run(suites);
}
