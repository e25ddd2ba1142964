/* The integration-test harness: processes, files, ports, raw sockets, a response parser, a JSON
 * lookup and libcurl requests. See harness.h. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <CUnit/Basic.h>
#include <curl/curl.h>

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

/* ---- Small utilities -------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

void it_buf_add(struct it_buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            fprintf(stderr, "harness: out of memory\n");
            abort();
        }
        b->data = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void it_buf_free(struct it_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

uint64_t it_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

void it_fnv_hex(uint64_t h, char out[17])
{
    snprintf(out, 17, "%016" PRIx64, h);
}

void it_pattern(unsigned char *p, uint64_t off, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t x = off + i;
        p[i] = (unsigned char)(x * 31 + (x >> 10) * 7 + (x >> 20));
    }
}

uint64_t it_pattern_fnv(uint64_t n)
{
    unsigned char block[16384];
    uint64_t h = IT_FNV_INIT;
    for (uint64_t off = 0; off < n;) {
        size_t k = n - off < sizeof block ? (size_t)(n - off) : sizeof block;
        it_pattern(block, off, k);
        h = it_fnv1a(h, block, k);
        off += k;
    }
    return h;
}

/* ---- Processes -------------------------------------------------------------------------- */

static void on_watchdog(int sig)
{
    static const char msg[] = "\nharness: watchdog expired, killing everything\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
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
    int64_t deadline = now_ms() + timeout_ms;
    while (!p->reaped) {
        pid_t r = waitpid(p->pid, &p->status, WNOHANG);
        if (r == p->pid) {
            p->reaped = true;
            break;
        }
        if (r < 0 && errno != EINTR)
            return -1;
        if (now_ms() >= deadline)
            return -1;
        sleep_ms(5);
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
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        struct it_buf b = {0};
        read_file_from(p->log_path, since, &b);
        bool found = b.data && strstr(b.data, needle);
        it_buf_free(&b);
        if (found)
            return true;
        if (now_ms() >= deadline)
            return false;
        sleep_ms(20);
    }
}

void it_proc_print_log(struct it_proc *p)
{
    off_t size = it_proc_log_size(p);
    if (size <= p->printed)
        return;
    off_t from = p->printed;
    if (size - from > LOG_TAIL)
        from = size - LOG_TAIL;
    struct it_buf b = {0};
    read_file_from(p->log_path, from, &b);
    fprintf(stderr, "\n----- %s (pid %d) log %s%s -----\n%s----- end of %s log -----\n", p->name,
            (int)p->pid, p->log_path, from > p->printed ? ", last 64 KB" : "",
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

struct it_proc *it_origin_start(const char *name)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return NULL;
    char *argv[] = {LINTEL_ORIGIN_BIN, "--port", "0", "--name", (char *)name, NULL};
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
    int64_t deadline = now_ms() + 5000;
    while (len < sizeof line - 1 && !memchr(line, '\n', len)) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int left = (int)(deadline - now_ms());
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
        it_proc_print_log(p);
        return NULL;
    }
    return p;
}

struct it_proc *it_lintel_start(const char *config_path, int port)
{
    char *argv[] = {LINTEL_BIN, "-c", (char *)config_path, NULL};
    struct it_proc *p = spawn("lintel", argv, -1);
    if (!p)
        return NULL;
    p->port = port;
    int64_t deadline = now_ms() + 10000;
    while (now_ms() < deadline) {
        if (it_proc_wait(p, 0) >= 0) {
            fprintf(stderr, "harness: lintel exited with %d before listening on %d\n",
                    exit_code(p->status), port);
            it_proc_print_log(p);
            return NULL;
        }
        if (it_wait_port(port, 0))
            return p;
        sleep_ms(10);
    }
    fprintf(stderr, "harness: lintel does not accept connections on port %d\n", port);
    it_proc_kill(p);
    it_proc_print_log(p);
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
    int64_t deadline = now_ms() + timeout_ms;
    while (open_fds > 0) {
        int left = (int)(deadline - now_ms());
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
    int rc = it_proc_wait(&p, (int)(deadline - now_ms() > 0 ? deadline - now_ms() : 0));
    if (rc < 0) {
        it_proc_kill(&p);
        fprintf(stderr, "harness: %s ran past %d ms\n", argv[0], timeout_ms);
        return -1;
    }
    return rc;
}

/* ---- Running ---------------------------------------------------------------------------- */

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(tmpdir);
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
}

static void print_live_logs(void)
{
    for (int i = 0; i < nprocs; i++)
        it_proc_print_log(&procs[i]);
}

void it_test_teardown(void)
{
    if (CU_get_number_of_failures() > failures_at_setup) {
        any_failure = true;
        print_live_logs();
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
        print_live_logs();
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

/* ---- Raw sockets ------------------------------------------------------------------------ */

int it_connect(int port)
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
    int fd = it_connect(port);
    if (fd >= 0) {
        close(fd);
        return false;
    }
    return errno == ECONNREFUSED;
}

bool it_wait_port(int port, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int fd = it_connect(port);
        if (fd >= 0) {
            close(fd);
            return true;
        }
        if (now_ms() >= deadline)
            return false;
        sleep_ms(10);
    }
}

int it_send_all(int fd, const void *buf, size_t len)
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

enum it_read_end it_read_until_close(int fd, int timeout_ms, struct it_buf *out)
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
    int fd = it_connect(port);
    if (fd < 0)
        return IT_READ_ERROR;
    enum it_read_end end = IT_READ_ERROR;
    if (it_send_all(fd, req, len) == 0)
        end = it_read_until_close(fd, timeout_ms, out);
    close(fd);
    return end;
}

int it_conn_open(struct it_conn *c, int port)
{
    memset(c, 0, sizeof *c);
    c->fd = it_connect(port);
    return c->fd < 0 ? -1 : 0;
}

int it_conn_send(struct it_conn *c, const void *p, size_t len)
{
    return it_send_all(c->fd, p, len);
}

int it_conn_send_str(struct it_conn *c, const char *s)
{
    return it_send_all(c->fd, s, strlen(s));
}

int it_conn_read_response(struct it_conn *c, bool head_request, int timeout_ms,
                          struct it_response *r)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        long used = c->in.len ? it_response_parse(c->in.data, c->in.len, head_request, c->eof, r)
                              : 0;
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
        ssize_t n = read_some(c->fd, (int)(deadline - now_ms()), &c->in);
        if (n == -1)
            return -1;
        if (n == 0 || n == -2)
            c->eof = true;
    }
}

bool it_conn_wait_closed(struct it_conn *c, int timeout_ms)
{
    if (c->in.len)
        return false;
    if (c->eof)
        return true;
    ssize_t n = read_some(c->fd, timeout_ms, &c->in);
    if (n == 0 || (n == -2 && errno == ECONNRESET))
        c->eof = true;
    return c->eof && c->in.len == 0;
}

void it_conn_close(struct it_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    it_buf_free(&c->in);
}

/* ---- Responses -------------------------------------------------------------------------- */

static void add_header(struct it_response *r, const char *name, size_t nlen, const char *value,
                       size_t vlen)
{
    while (vlen && (value[0] == ' ' || value[0] == '\t'))
        value++, vlen--;
    while (vlen && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t' ||
                    value[vlen - 1] == '\r' || value[vlen - 1] == '\n'))
        vlen--;
    struct it_header *v = realloc(r->headers, (r->nheaders + 1) * sizeof *v);
    char *n = strndup(name, nlen), *s = strndup(value, vlen);
    if (!v || !n || !s) {
        fprintf(stderr, "harness: out of memory\n");
        abort();
    }
    r->headers = v;
    r->headers[r->nheaders++] = (struct it_header){n, s};
}

static void drop_headers(struct it_response *r)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    r->headers = NULL;
    r->nheaders = 0;
}

void it_response_free(struct it_response *r)
{
    drop_headers(r);
    it_buf_free(&r->body);
    memset(r, 0, sizeof *r);
}

const char *it_response_header(const struct it_response *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

size_t it_response_header_count(const struct it_response *r, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nheaders; i++)
        n += strcasecmp(r->headers[i].name, name) == 0;
    return n;
}

bool it_header_has_token(const char *value, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = value; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == n && strncasecmp(p, token, n) == 0)
            return true;
        p = e;
    }
    return false;
}

static void body_add(struct it_response *r, const char *p, size_t n)
{
    it_buf_add(&r->body, p, n);
    r->body_bytes += n;
    r->body_fnv = it_fnv1a(r->body_fnv, p, n);
}

/* Decodes a chunked body from p[0..len). Returns bytes used, 0 when incomplete, -1 if bad. */
static long parse_chunked(const char *p, size_t len, struct it_response *r)
{
    size_t off = 0;
    for (;;) {
        const char *eol = memmem(p + off, len - off, "\r\n", 2);
        if (!eol)
            return 0;
        char *end;
        unsigned long long size = strtoull(p + off, &end, 16);
        if (end == p + off || (*end != ';' && *end != '\r'))
            return -1;
        off = (size_t)(eol - p) + 2;
        if (size == 0)
            break;
        if (len - off < size + 2)
            return 0;
        if (memcmp(p + off + size, "\r\n", 2) != 0)
            return -1;
        body_add(r, p + off, (size_t)size);
        off += (size_t)size + 2;
    }
    for (;;) { /* trailers, up to the empty line */
        const char *eol = memmem(p + off, len - off, "\r\n", 2);
        if (!eol)
            return 0;
        size_t line = (size_t)(eol - (p + off));
        off += line + 2;
        if (line == 0)
            return (long)off;
    }
}

long it_response_parse(const char *buf, size_t len, bool head_request, bool at_eof,
                       struct it_response *r)
{
    memset(r, 0, sizeof *r);
    r->body_fnv = IT_FNV_INIT;
    it_buf_add(&r->body, "", 0);
    const char *hend = memmem(buf, len, "\r\n\r\n", 4);
    if (!hend) {
        it_response_free(r);
        return at_eof ? -1 : 0;
    }
    size_t hlen = (size_t)(hend - buf) + 4;
    int status = 0, minor = 0;
    if (sscanf(buf, "HTTP/1.%d %3d", &minor, &status) != 2 || status < 100 || status > 999)
        goto bad;
    r->status = status;
    r->minor = minor;
    for (const char *line = memmem(buf, hlen, "\r\n", 2) + 2; line < hend;) {
        const char *eol = memmem(line, (size_t)(hend + 2 - line), "\r\n", 2);
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon)
            goto bad;
        add_header(r, line, (size_t)(colon - line), colon + 1, (size_t)(eol - colon - 1));
        line = eol + 2;
    }
    if (status < 200 || status == 204 || status == 304 || head_request)
        return (long)hlen;

    const char *te = it_response_header(r, "Transfer-Encoding");
    const char *cl = it_response_header(r, "Content-Length");
    if (te && it_header_has_token(te, "chunked")) {
        r->chunked = true;
        long used = parse_chunked(buf + hlen, len - hlen, r);
        if (used <= 0) {
            it_response_free(r);
            return used < 0 || at_eof ? -1 : 0;
        }
        return (long)hlen + used;
    }
    if (cl && !te) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (*end || end == cl)
            goto bad;
        if (len - hlen < n) {
            it_response_free(r);
            return at_eof ? -1 : 0;
        }
        body_add(r, buf + hlen, (size_t)n);
        return (long)(hlen + n);
    }
    if (!at_eof) {
        it_response_free(r);
        return 0;
    }
    r->to_close = true;
    body_add(r, buf + hlen, len - hlen);
    return (long)len;
bad:
    it_response_free(r);
    return -1;
}

/* ---- JSON lookup ------------------------------------------------------------------------ */

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    return p;
}

/* p at '"'. Unescapes into out (when not NULL; *fits false when it does not fit). Returns the
 * position after the closing quote, or NULL when malformed. */
static const char *json_string(const char *p, char *out, size_t outlen, bool *fits)
{
    size_t n = 0;
    for (p++; *p != '"'; p++) {
        unsigned ch = (unsigned char)*p;
        if (!ch)
            return NULL;
        if (ch == '\\') {
            p++;
            switch (*p) {
            case 'n': ch = '\n'; break;
            case 't': ch = '\t'; break;
            case 'r': ch = '\r'; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'u': {
                char hex[5] = {0};
                for (int i = 0; i < 4; i++)
                    if (!(hex[i] = p[1 + i]))
                        return NULL;
                ch = (unsigned)strtoul(hex, NULL, 16);
                ch = ch < 0x80 ? ch : '?'; /* the tests only look at ASCII */
                p += 4;
                break;
            }
            case '\0': return NULL;
            default: ch = (unsigned char)*p; break;
            }
        }
        if (out) {
            if (n + 1 < outlen)
                out[n++] = (char)ch;
            else
                *fits = false;
        }
    }
    if (out && outlen)
        out[n] = '\0';
    return p + 1;
}

/* Returns the position after the value at p, or NULL when malformed. */
static const char *json_skip(const char *p)
{
    p = json_ws(p);
    if (*p == '"')
        return json_string(p, NULL, 0, NULL);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        do {
            if (*p == '"') {
                if (!(p = json_string(p, NULL, 0, NULL)))
                    return NULL;
                continue;
            }
            if (!*p)
                return NULL;
            depth += (*p == '{' || *p == '[') - (*p == '}' || *p == ']');
            p++;
        } while (depth > 0);
        return p;
    }
    const char *s = p;
    while (*p && !strchr(",}] \t\r\n", *p))
        p++;
    return p == s ? NULL : p;
}

int it_json_get(const char *json, const char *path, char *out, size_t outlen)
{
    const char *p = json_ws(json);
    while (*path) {
        size_t seglen = strcspn(path, ".");
        if (*p != '{')
            return -1;
        p = json_ws(p + 1);
        for (;;) {
            char key[256];
            bool fits = true;
            if (*p != '"' || !(p = json_string(p, key, sizeof key, &fits)))
                return -1;
            p = json_ws(p);
            if (*p != ':')
                return -1;
            p = json_ws(p + 1);
            if (fits && strlen(key) == seglen && strncmp(key, path, seglen) == 0)
                break;
            if (!(p = json_skip(p)))
                return -1;
            p = json_ws(p);
            if (*p != ',')
                return -1; /* '}' (not found) or malformed */
            p = json_ws(p + 1);
        }
        path += seglen;
        if (*path == '.')
            path++;
    }
    if (*p == '"') {
        bool fits = true;
        return json_string(p, out, outlen, &fits) && fits ? 0 : -1;
    }
    if (*p == '{' || *p == '[')
        return -1;
    const char *e = json_skip(p);
    if (!e || (size_t)(e - p) >= outlen)
        return -1;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
    return 0;
}

long long it_json_int(const char *json, const char *path)
{
    char buf[32], *end;
    if (it_json_get(json, path, buf, sizeof buf) < 0)
        return -1;
    long long v = strtoll(buf, &end, 10);
    return *end || end == buf ? -1 : v;
}

/* ---- libcurl ---------------------------------------------------------------------------- */

int it_http_init(struct it_http *h)
{
    h->easy = curl_easy_init();
    return h->easy ? 0 : -1;
}

void it_http_free(struct it_http *h)
{
    if (h->easy)
        curl_easy_cleanup(h->easy);
    h->easy = NULL;
}

struct transfer {
    const struct it_http_req *q;
    struct it_response *r;
    uint64_t sent;
};

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    struct it_response *r = t->r;
    size_t len = size * n;
    int minor, status;
    if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
        if (r->status && r->status < 200)
            r->interim++;
        drop_headers(r);
        if (sscanf(p, "HTTP/1.%d %3d", &minor, &status) == 2) {
            r->minor = minor;
            r->status = status;
        }
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (colon)
        add_header(r, p, (size_t)(colon - p), colon + 1, len - (size_t)(colon - p) - 1);
    return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * n;
    if (t->q->discard) {
        t->r->body_bytes += len;
        t->r->body_fnv = it_fnv1a(t->r->body_fnv, p, len);
    } else {
        body_add(t->r, p, len);
    }
    return len;
}

static size_t on_upload(char *p, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    uint64_t total = t->q->gen_len ? t->q->gen_len : t->q->body_len;
    uint64_t left = total - t->sent;
    size_t k = left < size * n ? (size_t)left : size * n;
    if (t->q->gen_len)
        it_pattern((unsigned char *)p, t->sent, k);
    else
        memcpy(p, (const char *)t->q->body + t->sent, k);
    t->sent += k;
    return k;
}

int it_http_do(struct it_http *h, const struct it_http_req *q, struct it_response *r)
{
    CURL *e = h->easy;
    struct transfer t = {.q = q, .r = r};
    struct curl_slist *hdrs = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    bool has_body = q->body || q->gen_len;
    bool has_expect = false;

    memset(r, 0, sizeof *r);
    r->body_fnv = IT_FNV_INIT;
    it_buf_add(&r->body, "", 0);
    curl_easy_reset(e); /* options only: the connection cache stays */
    for (const char *const *hp = q->headers; hp && *hp; hp++) {
        hdrs = curl_slist_append(hdrs, *hp);
        has_expect |= strncasecmp(*hp, "Expect:", 7) == 0;
    }
    if (!has_expect) /* curl would add "Expect: 100-continue" to big bodies on its own */
        hdrs = curl_slist_append(hdrs, "Expect:");
    if (q->chunked)
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
    curl_easy_setopt(e, CURLOPT_URL, q->url);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, q->timeout_ms ? q->timeout_ms : 30000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
    if (has_body) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_upload);
        curl_easy_setopt(e, CURLOPT_READDATA, &t);
        curl_off_t size = q->chunked ? -1 : (curl_off_t)(q->gen_len ? q->gen_len : q->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, size);
    }
    if (q->method && strcmp(q->method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (q->method)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, q->method);

    CURLcode rc = curl_easy_perform(e);
    curl_slist_free_all(hdrs);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    if (rc != CURLE_OK) {
        fprintf(stderr, "harness: %s %s: %s (%s)\n", q->method ? q->method : "", q->url,
                curl_easy_strerror(rc), errbuf);
        it_response_free(r);
        return -1;
    }
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &r->connects);
    const char *te = it_response_header(r, "Transfer-Encoding");
    r->chunked = te && it_header_has_token(te, "chunked");
    return 0;
}

int it_http_get(struct it_http *h, const char *url, const char *const *headers,
                struct it_response *r)
{
    struct it_http_req q = {.url = url, .headers = headers};
    return it_http_do(h, &q, r);
}
