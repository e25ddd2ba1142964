/* The integration-test harness, the process side: child processes and their logs, running the
 * suites, temporary files, ports and raw sockets. HTTP messages (parsing, JSON, libcurl) are in
 * harness_http.c. See harness.h. */
#include "harness.h"

#include <dirent.h>
#include <ftw.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <CUnit/Basic.h>
#include <curl/curl.h> /* global init and cleanup only */

#ifndef LINTEL_BIN
#error "LINTEL_BIN (path of the lintel binary) must be defined by the build"
#endif
#ifndef LINTEL_ORIGIN_BIN
#error "LINTEL_ORIGIN_BIN (path of lintel-test-origin) must be defined by the build"
#endif

#define MAX_PROCS 256
#define MAX_PATHS 256
#define LOG_TAIL (64 * 1024) /* print at most this much of one log */

static struct it_proc procs[MAX_PROCS];
static volatile sig_atomic_t nprocs; /* read by the watchdog handler */
static char tmpdir[256];
static char *temp_paths[MAX_PATHS];
static size_t ntemp_paths;
static int used_ports[1024];
static size_t nused_ports;
static bool in_test, any_failure;
static unsigned failures_at_setup;
static int procs_at_setup;

/* ---- Small utilities -------------------------------------------------------------------- */

int64_t it_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void it_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- Raw sockets ------------------------------------------------------------------------ */

const char *it_url(int port, const char *path)
{
    static char bufs[8][512];
    static unsigned next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "http://127.0.0.1:%d%s", port, path);
    return b;
}

static int connect_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

bool it_port_refuses(int port)
{
    int fd = connect_loopback(port);
    if (fd >= 0) {
        close(fd);
        return false;
    }
    return errno == ECONNREFUSED;
}

static bool port_accepts(int port, int timeout_ms)
{
    int64_t deadline = it_now_ms() + timeout_ms;
    for (;;) {
        int fd = connect_loopback(port);
        if (fd >= 0) {
            close(fd);
            return true;
        }
        if (it_now_ms() >= deadline)
            return false;
        it_sleep_ms(10);
    }
}

static int send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Waits up to timeout_ms for fd to be readable and reads once into out. Returns >0 bytes read,
 * 0 on EOF, -1 on timeout, -2 on reset or another error. */
static ssize_t read_some(int fd, int timeout_ms, struct it_buf *out)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r;
    while ((r = poll(&pfd, 1, timeout_ms < 0 ? 0 : timeout_ms)) < 0 && errno == EINTR)
        ;
    if (r == 0)
        return -1;
    char buf[65536];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        return -2;
    it_buf_add(out, buf, (size_t)n);
    return n;
}

static enum it_read_end read_until_close(int fd, int timeout_ms, struct it_buf *out)
{
    for (;;) {
        ssize_t n = read_some(fd, timeout_ms, out);
        if (n == 0)
            return IT_READ_EOF;
        if (n == -1)
            return IT_READ_TIMEOUT;
        if (n == -2)
            return errno == ECONNRESET ? IT_READ_RESET : IT_READ_ERROR;
    }
}

enum it_read_end it_raw_exchange(int port, const void *req, size_t len, int timeout_ms,
                                 struct it_buf *out)
{
    int fd = connect_loopback(port);
    if (fd < 0)
        return IT_READ_ERROR;
    enum it_read_end end = IT_READ_ERROR;
    if (send_all(fd, req, len) == 0)
        end = read_until_close(fd, timeout_ms, out);
    close(fd);
    return end;
}

int it_conn_open(struct it_conn *c, int port)
{
    memset(c, 0, sizeof *c);
    c->fd = connect_loopback(port);
    return c->fd < 0 ? -1 : 0;
}

int it_conn_send(struct it_conn *c, const void *p, size_t len)
{
    return send_all(c->fd, p, len);
}

int it_conn_send_str(struct it_conn *c, const char *s)
{
    return send_all(c->fd, s, strlen(s));
}

int it_conn_read_response(struct it_conn *c, bool head_request, int timeout_ms,
                          struct it_response *r)
{
    int64_t deadline = it_now_ms() + timeout_ms;
    for (;;) {
        long used =
            c->in.len ? it_response_parse(c->in.data, c->in.len, head_request, c->eof, r) : 0;
        if (used < 0)
            return -1;
        if (used > 0) {
            memmove(c->in.data, c->in.data + used, c->in.len - (size_t)used);
            c->in.len -= (size_t)used;
            c->in.data[c->in.len] = '\0';
            return 0;
        }
        if (c->eof)
            return -1;
        ssize_t n = read_some(c->fd, (int)(deadline - it_now_ms()), &c->in);
        if (n == -1)
            return -1;
        if (n == 0 || n == -2)
            c->eof = true;
    }
}

void it_conn_close(struct it_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    it_buf_free(&c->in);
}

/* ---- Processes -------------------------------------------------------------------------- */

static void on_watchdog(int sig)
{
    /* Only async-signal-safe calls here; the logs stay in tmpdir for whoever looks. */
    static const char msg[] = "\nharness: watchdog expired, killing everything; logs are in ";
    struct iovec iov[] = {
        {(void *)msg, sizeof msg - 1}, {tmpdir, strlen(tmpdir)}, {(void *)"\n", 1}};
    if (writev(2, iov, 3) < 0) {
        /* nothing more to do */
    }
    for (int i = 0; i < nprocs; i++)
        if (!procs[i].reaped && procs[i].pid > 0)
            kill(procs[i].pid, SIGKILL);
    _exit(124);
}

static int exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

/* Forks argv with stdin from /dev/null, stdout to out_fd (or the log when -1) and stderr to the
 * log. The child dies with the harness (PDEATHSIG) and keeps none of the harness's other fds. */
static struct it_proc *spawn(const char *name, char *const argv[], int out_fd)
{
    if (nprocs >= MAX_PROCS) {
        fprintf(stderr, "harness: too many processes\n");
        return NULL;
    }
    struct it_proc *p = &procs[nprocs];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(p->log_path, sizeof p->log_path, "%s/%s-%d.log", tmpdir, name, (int)nprocs);
    int log = open(p->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log < 0 || null < 0) {
        fprintf(stderr, "harness: %s: %s\n", p->log_path, strerror(errno));
        if (log >= 0)
            close(log);
        if (null >= 0)
            close(null);
        return NULL;
    }
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        if (dup2(null, 0) < 0 || dup2(out_fd >= 0 ? out_fd : log, 1) < 0 || dup2(log, 2) < 0)
            _exit(127);
        close_range(3, ~0U, 0);
        execv(argv[0], argv);
        dprintf(2, "harness: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(log);
    close(null);
    if (pid < 0) {
        fprintf(stderr, "harness: fork: %s\n", strerror(errno));
        return NULL;
    }
    p->pid = pid;
    p->test_scoped = in_test;
    nprocs++;
    return p;
}

int it_proc_signal(struct it_proc *p, int sig)
{
    if (!p || p->reaped)
        return -1;
    return kill(p->pid, sig);
}

int it_proc_wait(struct it_proc *p, int timeout_ms)
{
    int64_t deadline = it_now_ms() + timeout_ms;
    while (!p->reaped) {
        pid_t r = waitpid(p->pid, &p->status, WNOHANG);
        if (r == p->pid) {
            p->reaped = true;
            break;
        }
        if (r < 0 && errno != EINTR)
            return -1;
        if (it_now_ms() >= deadline)
            return -1;
        it_sleep_ms(5);
    }
    return exit_code(p->status);
}

void it_proc_kill(struct it_proc *p)
{
    if (!p || p->reaped)
        return;
    kill(p->pid, SIGKILL);
    while (waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR)
        ;
    p->reaped = true;
}

off_t it_proc_log_size(const struct it_proc *p)
{
    struct stat st;
    return stat(p->log_path, &st) == 0 ? st.st_size : 0;
}

static void read_file_from(const char *path, off_t from, struct it_buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    if (lseek(fd, from, SEEK_SET) == from) {
        char buf[8192];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0)
            it_buf_add(out, buf, (size_t)n);
    }
    close(fd);
}

bool it_proc_log_wait(const struct it_proc *p, off_t since, const char *needle, int timeout_ms)
{
    int64_t deadline = it_now_ms() + timeout_ms;
    for (;;) {
        struct it_buf b = {0};
        read_file_from(p->log_path, since, &b);
        bool found = b.data && strstr(b.data, needle);
        it_buf_free(&b);
        if (found)
            return true;
        if (it_now_ms() >= deadline)
            return false;
        it_sleep_ms(20);
    }
}

static void print_log(struct it_proc *p)
{
    off_t size = it_proc_log_size(p);
    if (size <= p->printed && (!p->reaped || p->exit_printed))
        return;
    p->exit_printed = p->reaped;
    off_t from = p->printed;
    if (size - from > LOG_TAIL)
        from = size - LOG_TAIL;
    struct it_buf b = {0};
    read_file_from(p->log_path, from, &b);
    char state[32] = "running";
    if (p->reaped)
        snprintf(state, sizeof state, "exit code %d", exit_code(p->status));
    fprintf(stderr, "\n----- %s (pid %d, %s) log %s%s -----\n%s----- end of %s log -----\n",
            p->name, (int)p->pid, state, p->log_path, from > p->printed ? ", last 64 KB" : "",
            b.data ? b.data : "", p->name);
    it_buf_free(&b);
    p->printed = size;
}

long it_proc_mem_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    long kb = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

int it_proc_reset_peak(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/clear_refs", (int)pid);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = write(fd, "5", 1) == 1 ? 0 : -1; /* 5: reset the peak RSS (proc(5)) */
    close(fd);
    return rc;
}

struct it_proc *it_origin_start(const char *name)
{
    return it_origin_start_opts(name, NULL);
}

struct it_proc *it_origin_start_opts(const char *name, const struct it_origin_opts *o)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", o ? o->port : 0);
    char *argv[12] = {LINTEL_ORIGIN_BIN, "--port", portstr, "--name", (char *)name, "--verbose"};
    int argc = 6;
    if (o && o->addr) {
        argv[argc++] = "--addr";
        argv[argc++] = (char *)o->addr;
    }
    if (o && o->cert) {
        argv[argc++] = "--tls";
        argv[argc++] = (char *)o->cert;
        argv[argc++] = (char *)o->key;
    }
    argv[argc] = NULL;
    char pname[64];
    snprintf(pname, sizeof pname, "origin-%s", name);
    struct it_proc *p = spawn(pname, argv, fds[1]);
    close(fds[1]);
    if (!p) {
        close(fds[0]);
        return NULL;
    }
    /* Wait for "ready PORT\n". */
    char line[64];
    size_t len = 0;
    int64_t deadline = it_now_ms() + 5000;
    while (len < sizeof line - 1 && !memchr(line, '\n', len)) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int left = (int)(deadline - it_now_ms());
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            break;
        ssize_t n = read(fds[0], line + len, sizeof line - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fds[0]);
    line[len] = '\0';
    if (sscanf(line, "ready %d", &p->port) != 1 || p->port <= 0) {
        fprintf(stderr, "harness: origin %s did not become ready (stdout: \"%s\")\n", name, line);
        it_proc_kill(p);
        print_log(p);
        return NULL;
    }
    return p;
}

/* Whether pid has handlers installed for SIGHUP and SIGTERM (SigCgt in /proc/PID/status). */
static bool catches_hup_and_term(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    unsigned long long mask = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "SigCgt: %llx", &mask) == 1)
            break;
    fclose(f);
    unsigned long long want = (1ULL << (SIGHUP - 1)) | (1ULL << (SIGTERM - 1));
    return (mask & want) == want;
}

struct it_proc *it_lintel_start(const char *config_path, int port)
{
    char *argv[] = {LINTEL_BIN, "-c", (char *)config_path, NULL};
    struct it_proc *p = spawn("lintel", argv, -1);
    if (!p)
        return NULL;
    p->port = port;
    /* Ready means listening and handling its signals: a SIGHUP or SIGTERM sent earlier would
     * kill it with the default action. */
    int64_t deadline = it_now_ms() + 10000;
    while (it_now_ms() < deadline) {
        if (it_proc_wait(p, 0) >= 0) {
            fprintf(stderr, "harness: lintel exited with %d before listening on %d\n",
                    exit_code(p->status), port);
            print_log(p);
            return NULL;
        }
        if (port_accepts(port, 0) && catches_hup_and_term(p->pid))
            return p;
        it_sleep_ms(10);
    }
    fprintf(stderr,
            "harness: lintel does not accept connections on port %d (or does not handle "
            "SIGHUP and SIGTERM)\n",
            port);
    it_proc_kill(p);
    print_log(p);
    return NULL;
}

int it_run(char *const argv[], int timeout_ms, struct it_buf *out, struct it_buf *err)
{
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) < 0)
        return -1;
    if (pipe2(pe, O_CLOEXEC) < 0) {
        close(po[0]);
        close(po[1]);
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        if (null < 0 || dup2(null, 0) < 0 || dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
            _exit(127);
        close_range(3, ~0U, 0);
        execv(argv[0], argv);
        dprintf(2, "harness: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    if (pid < 0) {
        close(po[0]);
        close(pe[0]);
        return -1;
    }
    struct pollfd pfd[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    struct it_buf *dst[2] = {out, err};
    int open_fds = 2;
    int64_t deadline = it_now_ms() + timeout_ms;
    while (open_fds > 0) {
        int left = (int)(deadline - it_now_ms());
        if (left <= 0 || poll(pfd, 2, left) <= 0)
            break;
        for (int i = 0; i < 2; i++) {
            if (pfd[i].fd < 0 || !pfd[i].revents)
                continue;
            char buf[4096];
            ssize_t n = read(pfd[i].fd, buf, sizeof buf);
            if (n > 0 && dst[i]) {
                it_buf_add(dst[i], buf, (size_t)n);
            } else if (n <= 0) {
                close(pfd[i].fd);
                pfd[i].fd = -1;
                open_fds--;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (pfd[i].fd >= 0)
            close(pfd[i].fd);
    struct it_proc p = {.pid = pid};
    int rc = it_proc_wait(&p, (int)(deadline - it_now_ms() > 0 ? deadline - it_now_ms() : 0));
    if (rc < 0) {
        it_proc_kill(&p);
        fprintf(stderr, "harness: %s ran past %d ms\n", argv[0], timeout_ms);
        return -1;
    }
    return rc;
}

/* ---- Running ---------------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(path) == 0 ? 0 : 0; /* best effort: keep going */
}

/* Removes the temporary directory and everything below it (plugin directories, the gateways'
 * private plugin copies). */
static void remove_tmpdir(void)
{
    nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup_at_exit(void)
{
    alarm(0);
    for (int i = 0; i < nprocs; i++)
        it_proc_kill(&procs[i]);
    if (tmpdir[0]) {
        if (any_failure)
            fprintf(stderr, "harness: logs and configurations kept in %s\n", tmpdir);
        else
            remove_tmpdir();
    }
    for (size_t i = 0; i < ntemp_paths; i++)
        free(temp_paths[i]);
    curl_global_cleanup();
}

void it_test_setup(void)
{
    in_test = true;
    failures_at_setup = CU_get_number_of_failures();
    procs_at_setup = nprocs;
}

/* Logs of the processes still running and of those the current test started. */
static void print_logs(int started_from)
{
    for (int i = 0; i < nprocs; i++)
        if (!procs[i].reaped || i >= started_from)
            print_log(&procs[i]);
}

void it_test_teardown(void)
{
    if (CU_get_number_of_failures() > failures_at_setup) {
        any_failure = true;
        print_logs(procs_at_setup);
    }
    for (int i = 0; i < nprocs; i++)
        if (procs[i].test_scoped)
            it_proc_kill(&procs[i]);
    in_test = false;
}

int it_suite_cleanup(void)
{
    for (int i = 0; i < nprocs; i++)
        it_proc_kill(&procs[i]);
    return 0;
}

/* In a sanitizer build, ASan keeps freed memory in a quarantine (256 MB by default), which makes
 * a streaming gateway's peak RSS grow with the bytes it moved. A small quarantine keeps the
 * memory bound tests meaningful there; children inherit it. A quarantine the caller set wins. */
static void limit_asan_quarantine(void)
{
    const char *old = getenv("ASAN_OPTIONS");
    if (old && strstr(old, "quarantine_size_mb"))
        return;
    char opts[1024];
    snprintf(opts, sizeof opts, "%s%squarantine_size_mb=4:thread_local_quarantine_size_kb=256",
             old ? old : "", old && *old ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
}

int it_main(CU_SuiteInfo *suites, unsigned watchdog_seconds)
{
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_watchdog);
    alarm(watchdog_seconds);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 2;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/lintel-it-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", tmpdir, strerror(errno));
        return 2;
    }
    atexit(cleanup_at_exit);
    /* Gateways copy plugin images into LINTEL_RUN_DIR/lintel-PID; keep those inside the test's
     * own directory, so a gateway killed by a test leaves nothing behind in /tmp. */
    setenv("LINTEL_RUN_DIR", tmpdir, 1);
    limit_asan_quarantine();
    srand((unsigned)getpid() ^ (unsigned)time(NULL));

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    if (CU_register_suites(suites) != CUE_SUCCESS) {
        fprintf(stderr, "harness: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    bool ok = CU_get_number_of_failures() == 0 && CU_get_number_of_suites_failed() == 0;
    if (!ok) {
        any_failure = true;
        print_logs(nprocs);
    }
    CU_cleanup_registry();
    return ok ? 0 : 1;
}

/* ---- Files and ports -------------------------------------------------------------------- */

const char *it_temp_path(const char *name)
{
    if (ntemp_paths == MAX_PATHS)
        return NULL;
    size_t n = strlen(tmpdir) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p)
        return NULL;
    snprintf(p, n, "%s/%s", tmpdir, name);
    temp_paths[ntemp_paths++] = p;
    return p;
}

int it_write_file(const char *path, const char *fmt, ...)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "we");
    if (!f) {
        fprintf(stderr, "harness: %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(f, fmt, ap);
    va_end(ap);
    if (fclose(f) != 0 || n < 0 || rename(tmp, path) < 0) {
        fprintf(stderr, "harness: writing %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static bool port_bindable(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
    close(fd);
    return ok;
}

int it_free_port(void)
{
    int low = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
    if (f) {
        if (fscanf(f, "%d", &low) != 1)
            low = 32768;
        fclose(f);
    }
    int lo = low > 12000 ? low - 11000 : 10000, hi = low > 12000 ? low - 1 : 20000;
    for (int tries = 0; tries < 500; tries++) {
        int port = lo + rand() % (hi - lo + 1);
        bool used = false;
        for (size_t i = 0; i < nused_ports && !used; i++)
            used = used_ports[i] == port;
        if (used || !port_bindable(port))
            continue;
        if (nused_ports < sizeof used_ports / sizeof *used_ports)
            used_ports[nused_ports++] = port;
        return port;
    }
    fprintf(stderr, "harness: no free port found in %d..%d\n", lo, hi);
    return -1;
}

int it_install_file(const char *src, const char *dst)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.new", dst);
    FILE *in = fopen(src, "rb"), *out = fopen(tmp, "wb");
    int rc = -1;
    if (in && out) {
        char buf[65536];
        size_t n;
        rc = 0;
        while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
            if (fwrite(buf, 1, n, out) != n)
                rc = -1;
    }
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        rc = -1;
    return rc == 0 ? rename(tmp, dst) : -1;
}
