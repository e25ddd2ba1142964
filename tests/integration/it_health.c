/* Upstream health checks through the real gateway: a target killed under traffic is taken out by
 * its probes (only requests already on their way to it may fail) and comes back when restarted
 * on the same port; a target answering 503 is taken out by passive checks for its cooldown and
 * tried again after; when every target is down the gateway answers 503 with its JSON error. The
 * admin API and the metrics show the states. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "harness.h"

/* Like IT_CONFIG_HEAD, with the admin API on a port of its own and two workers (health states
 * are shared by all workers). */
#define CONFIG_HEAD                                                                                \
    "listen:\n"                                                                                    \
    "  - address: \"127.0.0.1:%d\"\n"                                                              \
    "admin: { address: \"127.0.0.1:%d\" }\n"                                                       \
    "workers: 2\n"                                                                                 \
    "plugin_paths: []\n"                                                                           \
    "plugins: []\n"

/* ---- an origin on a chosen port (the harness picks ports itself) ---------------------------- */

/* Starts lintel-test-origin on port and waits (5 s) for its "ready" line; its stderr goes to
 * log. The child dies with this process. Returns its pid, or -1. */
static pid_t origin_on_port(const char *name, int port, const char *log)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    char *argv[] = {LINTEL_ORIGIN_BIN, "--port", portstr, "--name", (char *)name, NULL};
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int err = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (getppid() != parent || err < 0 || dup2(fds[1], 1) < 0 || dup2(err, 2) < 0)
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    char line[64] = "";
    size_t len = 0;
    int64_t deadline = it_now_ms() + 5000;
    while (pid > 0 && len < sizeof line - 1 && !memchr(line, '\n', len)) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int left = (int)(deadline - it_now_ms());
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            break;
        ssize_t n = read(fds[0], line + len, sizeof line - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        line[len] = '\0';
    }
    close(fds[0]);
    int got;
    if (pid > 0 && (sscanf(line, "ready %d", &got) != 1 || got != port)) {
        fprintf(stderr, "it_health: origin on port %d did not start (\"%s\")\n", port, line);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

static void reap(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

/* ---- a target that answers every request with 503 ------------------------------------------- */

struct busy_server {
    int fd, port;
    pthread_t thread;
    atomic_bool stop;
    atomic_int requests;
};

static void *busy_run(void *arg)
{
    struct busy_server *s = arg;
    static const char answer[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                                 "Content-Length: 5\r\nConnection: close\r\n\r\nbusy\n";
    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        struct it_buf in = {0};
        char buf[4096];
        int64_t deadline = it_now_ms() + 2000;
        while ((!in.data || !strstr(in.data, "\r\n\r\n")) && it_now_ms() < deadline) {
            struct pollfd cp = {.fd = c, .events = POLLIN};
            if (poll(&cp, 1, 100) <= 0)
                continue;
            ssize_t n = read(c, buf, sizeof buf);
            if (n <= 0)
                break;
            it_buf_add(&in, buf, (size_t)n);
        }
        if (in.data && strstr(in.data, "\r\n\r\n")) {
            atomic_fetch_add(&s->requests, 1);
            if (write(c, answer, sizeof answer - 1) < 0)
                fprintf(stderr, "it_health: busy server: %s\n", strerror(errno));
            shutdown(c, SHUT_WR);
            /* Read what is left so that the close does not reset the answer away. */
            struct pollfd cp = {.fd = c, .events = POLLIN};
            while (poll(&cp, 1, 200) > 0 && read(c, buf, sizeof buf) > 0)
                ;
        }
        it_buf_free(&in);
        close(c);
    }
    return NULL;
}

static int busy_start(struct busy_server *s)
{
    memset(s, 0, sizeof *s);
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        listen(s->fd, 64) < 0 || getsockname(s->fd, (struct sockaddr *)&sin, &len) < 0)
        return -1;
    s->port = ntohs(sin.sin_port);
    return pthread_create(&s->thread, NULL, busy_run, s) == 0 ? 0 : -1;
}

static void busy_stop(struct busy_server *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    close(s->fd);
}

/* ---- helpers -------------------------------------------------------------------------------- */

static char *admin_get(int admin_port, const char *path)
{
    struct it_http h;
    struct it_response r;
    char *body = NULL;
    if (it_http_init(&h) == 0 && it_http_get(&h, it_url(admin_port, path), NULL, &r) == 0) {
        if (r.status == 200 && r.body.data)
            body = strdup(r.body.data);
        it_response_free(&r);
    }
    it_http_free(&h);
    return body;
}

/* Whether the admin API shows target "127.0.0.1:port" of upstream with health `state` (and, when
 * given, a reason containing reason). Prints the answer when not. */
static bool admin_shows(int admin_port, const char *upstream, int port, const char *state,
                        const char *reason)
{
    char *body = admin_get(admin_port, "/-/upstreams");
    char want[128], metric[160];
    snprintf(want, sizeof want, "\"address\":\"127.0.0.1:%d\",\"weight\":1,\"health\":\"%s\"", port,
             state);
    const char *at = body ? strstr(body, want) : NULL;
    bool ok = at && strstr(at, "\"since\":\"") && (!reason || strstr(at, reason));
    if (!ok)
        fprintf(stderr, "it_health: /-/upstreams lacks %s (%s): %s\n", want, reason ? reason : "-",
                body ? body : "(no answer)");
    free(body);
    body = admin_get(admin_port, "/-/metrics");
    snprintf(metric, sizeof metric,
             "\nlintel_upstream_target_up{upstream=\"%s\",target=\"127.0.0.1:%d\"} %d\n", upstream,
             port, strcmp(state, "up") == 0);
    if (!body || !strstr(body, metric)) {
        fprintf(stderr, "it_health: /-/metrics lacks %s", metric + 1);
        ok = false;
    }
    free(body);
    return ok;
}

static bool is_gateway_error(const struct it_response *r, int status, const char *error)
{
    const char *ctype = it_response_header(r, "Content-Type");
    char got[256] = "";
    bool ok = r->status == status && ctype && strncmp(ctype, "application/json", 16) == 0 &&
              it_json_int(r->body.data, "status") == status &&
              it_json_get(r->body.data, "error", got, sizeof got) == 0 && strcmp(got, error) == 0;
    if (!ok)
        fprintf(stderr, "it_health: want the gateway's %d \"%s\", got %d: %s\n", status, error,
                r->status, r->body.data ? r->body.data : "");
    return ok;
}

/* ---- active checks: a target killed and restarted under traffic ---------------------------- */

#define MAX_RESULTS 200000

struct result {
    int64_t start, end;
    int status;
    char origin; /* 'A', 'B', or 0 */
};

struct client_loop {
    char url[128];
    pthread_t thread;
    atomic_bool stop;
    atomic_int n;
    struct result *results;
};

static void *client_run(void *arg)
{
    struct client_loop *l = arg;
    struct it_http h;
    if (it_http_init(&h) < 0)
        return NULL;
    while (!atomic_load(&l->stop) && atomic_load(&l->n) < MAX_RESULTS) {
        struct result *res = &l->results[atomic_load(&l->n)];
        struct it_response r;
        struct it_http_req q = {.url = l->url, .timeout_ms = 5000};
        res->start = it_now_ms();
        if (it_http_do(&h, &q, &r) == 0) {
            const char *o = it_response_header(&r, "X-Origin");
            res->status = r.status;
            res->origin = o ? o[0] : 0;
            it_response_free(&r);
        } else {
            res->status = -1;
            /* A broken keepalive connection to the gateway is not what is measured here. */
            it_http_free(&h);
            if (it_http_init(&h) < 0)
                break;
        }
        res->end = it_now_ms();
        atomic_fetch_add(&l->n, 1);
    }
    it_http_free(&h);
    return NULL;
}

static const char flip_fmt[] =
    CONFIG_HEAD "upstreams:\n"
                "  users:\n"
                "    targets:\n"
                "      - address: \"127.0.0.1:%d\"\n"
                "      - address: \"127.0.0.1:%d\"\n"
                "    retries: 0\n"
                "    health:\n"
                "      active: { path: /status/204, interval: 100ms, timeout: 300ms, healthy: 2,"
                " unhealthy: 2, statuses: [204] }\n"
                "routes:\n"
                "  - name: all\n"
                "    upstream: users\n";

static void test_active_flip_under_traffic(void)
{
    struct it_proc *a = it_origin_start("A"), *b = it_origin_start("B");
    CU_ASSERT_FATAL(a && b);
    int port = it_free_port(), admin = it_free_port();
    const char *conf = it_temp_path("flip.yaml"), *log = it_temp_path("origin-A2.log");
    CU_ASSERT_FATAL(port > 0 && admin > 0 && conf && log);
    CU_ASSERT_FATAL(it_write_file(conf, flip_fmt, port, admin, a->port, b->port) == 0);
    struct it_proc *gw = it_lintel_start(conf, port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gw);
    CU_ASSERT_TRUE(admin_shows(admin, "users", a->port, "up", "initial state"));

    static struct client_loop l; /* static: a fatal assertion must not leave it on the stack */
    memset(&l, 0, sizeof l);
    l.results = calloc(MAX_RESULTS, sizeof *l.results);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l.results);
    snprintf(l.url, sizeof l.url, "http://127.0.0.1:%d/echo", port);
    CU_ASSERT_FATAL(pthread_create(&l.thread, NULL, client_run, &l) == 0);
    it_sleep_ms(500);

    char down_line[128], up_line[128];
    snprintf(down_line, sizeof down_line, "upstream users: target 127.0.0.1:%d is down (2 failed",
             a->port);
    snprintf(up_line, sizeof up_line, "upstream users: target 127.0.0.1:%d is up (2 successful",
             a->port);
    off_t mark = it_proc_log_size(gw);
    int64_t t_kill = it_now_ms();
    it_proc_kill(a);
    bool went_down = it_proc_log_wait(gw, mark, down_line, 5000);
    int64_t t_down = it_now_ms();
    bool admin_down = admin_shows(admin, "users", a->port, "down", "connection refused");

    /* A reload keeps the state: the dead target does not come back as new (and up). */
    off_t mark_reload = it_proc_log_size(gw);
    CU_ASSERT(it_proc_signal(gw, SIGHUP) == 0);
    bool reloaded = it_proc_log_wait(gw, mark_reload, "configuration 2 loaded", 5000);
    it_sleep_ms(700);

    off_t mark_up = it_proc_log_size(gw);
    pid_t a2 = origin_on_port("A", a->port, log);
    bool came_up = a2 > 0 && it_proc_log_wait(gw, mark_up, up_line, 5000);
    int64_t t_up = it_now_ms();
    it_sleep_ms(500);
    atomic_store(&l.stop, true);
    pthread_join(l.thread, NULL);
    bool admin_up = admin_shows(admin, "users", a->port, "up", "2 successful probes");
    reap(a2);

    int n = atomic_load(&l.n), failed_in_window = 0, failed_after = 0;
    int from_a_after_up = 0, from_b = 0;
    for (int i = 0; i < n; i++) {
        const struct result *r = &l.results[i];
        bool ok = r->status == 200;
        if (r->start > t_down && !ok) {
            failed_after++;
            fprintf(stderr, "it_health: request at +%lld ms after the down line: status %d\n",
                    (long long)(r->start - t_down), r->status);
        } else if (r->start >= t_kill && !ok) {
            failed_in_window++;
        }
        if (r->start > t_up && r->origin == 'A')
            from_a_after_up++;
        if (r->origin == 'B')
            from_b++;
    }
    fprintf(stderr,
            "it_health: %d requests; killed at 0, down line at +%lld ms, up line at +%lld ms; "
            "%d failed before the down line, %d after; %d from A after it came back\n",
            n, (long long)(t_down - t_kill), (long long)(t_up - t_kill), failed_in_window,
            failed_after, from_a_after_up);
    CU_ASSERT_TRUE(went_down);
    CU_ASSERT_TRUE(admin_down);
    CU_ASSERT_TRUE(reloaded);
    CU_ASSERT_TRUE(came_up);
    CU_ASSERT_TRUE(admin_up);
    CU_ASSERT(n > 100 && from_b > 0);
    CU_ASSERT_EQUAL(failed_after, 0);
    CU_ASSERT(from_a_after_up > 0);
    free(l.results);
}

/* ---- passive checks and every target down --------------------------------------------------- */

static const char passive_fmt[] =
    CONFIG_HEAD "upstreams:\n"
                "  mixed:\n"
                "    targets:\n"
                "      - address: \"127.0.0.1:%d\"\n"
                "      - address: \"127.0.0.1:%d\"\n"
                "    retries: 0\n"
                "    health:\n"
                "      passive: { failures: 2, statuses: [503], cooldown: 2s }\n"
                "  solo:\n"
                "    targets: [ { address: \"127.0.0.1:%d\" } ]\n"
                "    health: { passive: { failures: 1, statuses: [503], cooldown: 1h } }\n"
                "  dead:\n"
                "    targets: [ { address: \"127.0.0.1:%d\" } ]\n"
                "    health: { active: { interval: 100ms, unhealthy: 1 } }\n"
                "routes:\n"
                "  - name: solo\n"
                "    match: { paths: [/solo] }\n"
                "    upstream: solo\n"
                "  - name: dead\n"
                "    match: { paths: [/dead] }\n"
                "    upstream: dead\n"
                "  - name: mixed\n"
                "    upstream: mixed\n";

struct gateway {
    struct it_proc *origin, *gw;
    struct busy_server busy;
    int admin, dead;
};

static void start_passive(struct gateway *g)
{
    g->origin = it_origin_start("A");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g->origin);
    CU_ASSERT_FATAL(busy_start(&g->busy) == 0);
    int port = it_free_port();
    g->admin = it_free_port();
    g->dead = it_free_port();
    const char *conf = it_temp_path("passive.yaml");
    CU_ASSERT_FATAL(port > 0 && g->admin > 0 && g->dead > 0 && conf);
    CU_ASSERT_FATAL(it_write_file(conf, passive_fmt, port, g->admin, g->origin->port, g->busy.port,
                                  g->busy.port, g->dead) == 0);
    g->gw = it_lintel_start(conf, port);
    if (!g->gw)
        busy_stop(&g->busy);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g->gw);
}

/* GETs path n times; counts the origin's answers and the busy target's 503s. */
static void get_n(struct gateway *g, const char *path, int n, int *ok, int *busy)
{
    struct it_http h;
    *ok = *busy = 0;
    if (it_http_init(&h) < 0)
        return;
    for (int i = 0; i < n; i++) {
        struct it_response r;
        if (it_http_get(&h, it_url(g->gw->port, path), NULL, &r) < 0)
            continue;
        if (r.status == 200 && it_response_header(&r, "X-Origin"))
            (*ok)++;
        else if (r.status == 503 && r.body.data && strcmp(r.body.data, "busy\n") == 0)
            (*busy)++;
        else
            fprintf(stderr, "it_health: unexpected %d: %s\n", r.status, r.body.data);
        it_response_free(&r);
    }
    it_http_free(&h);
}

static void test_passive_503_target(void)
{
    static struct gateway g;
    start_passive(&g);
    int ok, busy;
    char down_line[160], up_line[128];
    snprintf(down_line, sizeof down_line,
             "upstream mixed: target 127.0.0.1:%d is down for 2s (2 failed requests in a row, "
             "last: status 503)",
             g.busy.port);
    snprintf(up_line, sizeof up_line, "upstream mixed: target 127.0.0.1:%d is up (cooldown over)",
             g.busy.port);

    /* Two 503s in a row take the busy target out; then only the origin answers. */
    off_t mark = it_proc_log_size(g.gw);
    get_n(&g, "/echo", 12, &ok, &busy);
    CU_ASSERT_EQUAL(busy, 2);
    CU_ASSERT_EQUAL(ok, 10);
    CU_ASSERT_EQUAL(atomic_load(&g.busy.requests), 2);
    CU_ASSERT_TRUE(it_proc_log_wait(g.gw, mark, down_line, 2000));
    CU_ASSERT_TRUE(admin_shows(g.admin, "mixed", g.busy.port, "down",
                               "2 failed requests in a row, last: status 503"));
    CU_ASSERT_TRUE(admin_shows(g.admin, "mixed", g.origin->port, "up", NULL));

    /* After the cooldown it is tried again: one more 503 takes it out at once. */
    CU_ASSERT_TRUE(it_proc_log_wait(g.gw, mark, up_line, 4000));
    get_n(&g, "/echo", 8, &ok, &busy);
    CU_ASSERT_EQUAL(busy, 1);
    CU_ASSERT_EQUAL(ok, 7);
    CU_ASSERT_EQUAL(atomic_load(&g.busy.requests), 3);
    busy_stop(&g.busy);
}

static void test_all_targets_down(void)
{
    static struct gateway g;
    start_passive(&g);
    struct it_http h;
    struct it_response r;
    CU_ASSERT_FATAL(it_http_init(&h) == 0);

    /* Passive: the only target's first 503 takes it out; the next request gets the gateway's. */
    CU_ASSERT_FATAL(it_http_get(&h, it_url(g.gw->port, "/solo"), NULL, &r) == 0);
    CU_ASSERT(r.status == 503 && r.body.data && strcmp(r.body.data, "busy\n") == 0);
    it_response_free(&r);
    CU_ASSERT_FATAL(it_http_get(&h, it_url(g.gw->port, "/solo"), NULL, &r) == 0);
    CU_ASSERT_TRUE(is_gateway_error(&r, 503, "no healthy upstream target"));
    it_response_free(&r);
    CU_ASSERT_EQUAL(atomic_load(&g.busy.requests), 1);

    /* Active: the probes take the dead target out; requests get the 503, not a 502. */
    char down_line[128];
    snprintf(down_line, sizeof down_line, "upstream dead: target 127.0.0.1:%d is down", g.dead);
    CU_ASSERT_TRUE(it_proc_log_wait(g.gw, 0, down_line, 3000));
    CU_ASSERT_FATAL(it_http_get(&h, it_url(g.gw->port, "/dead"), NULL, &r) == 0);
    CU_ASSERT_TRUE(is_gateway_error(&r, 503, "no healthy upstream target"));
    it_response_free(&r);
    CU_ASSERT_TRUE(admin_shows(g.admin, "dead", g.dead, "down", "1 failed probe, last: "));
    it_http_free(&h);
    busy_stop(&g.busy);
}

static CU_TestInfo tests[] = {
    {"active: a target killed under traffic goes down, comes back", test_active_flip_under_traffic},
    {"passive: a target answering 503 is out for its cooldown", test_passive_503_target},
    {"every target down: 503 with the JSON error", test_all_targets_down},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"health", NULL, it_suite_cleanup, it_test_setup, it_test_teardown, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return it_main(suites, 240);
}
