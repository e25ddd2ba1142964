/* Helpers for the integration tests: real `lintel` and `lintel-test-origin` processes on free
 * loopback ports, spoken to over raw sockets or libcurl.
 *
 * Every process started through this harness is registered. Processes started inside a test
 * (between it_test_setup and it_test_teardown) are killed when the test ends; processes started
 * in a suite's init are killed by it_suite_cleanup. Whatever is left is killed at exit, and a
 * watchdog alarm kills everything and exits if a test hangs. When a test fails, the stderr logs of
 * the processes (the part not printed yet) are printed, so CI output shows what the gateway said.
 *
 * Single-threaded except where noted: the it_http_* and it_conn_* functions, it_json_get and
 * it_response_* may be used from any thread (each handle by one thread at a time). */
#ifndef LINTEL_IT_HARNESS_H
#define LINTEL_IT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <CUnit/CUnit.h>

/* ---- Running ---------------------------------------------------------------------------- */

/* Initialises curl, the temporary directory and the exit cleanup, arms a watchdog of
 * watchdog_seconds, registers suites (a CU_SuiteInfo table) and runs them verbosely. Returns the
 * process exit code: 0 when every test passed and every suite initialised, 1 otherwise. */
int it_main(CU_SuiteInfo *suites, unsigned watchdog_seconds);

/* Per-test set-up and tear-down for CU_SuiteInfo (pSetUpFunc / pTearDownFunc). Tear-down prints
 * the logs of the harness's live processes if the test had a failed assertion, then kills the
 * processes the test started. */
void it_test_setup(void);
void it_test_teardown(void);

/* For CU_SuiteInfo pCleanupFunc: kills every process still running. Returns 0. */
int it_suite_cleanup(void);

/* Monotonic milliseconds, and a sleep that resumes after signals. Any thread. */
int64_t it_now_ms(void);
void it_sleep_ms(int ms);

/* ---- Bytes ------------------------------------------------------------------------------ */

/* A growable byte buffer, always NUL-terminated after len (data may also hold NULs). */
struct it_buf {
    char *data;
    size_t len, cap;
};

void it_buf_add(struct it_buf *b, const void *p, size_t n); /* aborts when out of memory */
void it_buf_free(struct it_buf *b);

#define IT_FNV_INIT 0xcbf29ce484222325ULL

/* FNV-1a 64 of p[0..n) continuing from h (start with IT_FNV_INIT), as the origin computes it. */
uint64_t it_fnv1a(uint64_t h, const void *p, size_t n);

/* Formats h like the origin's "body_fnv" and X-Body-Fnv (16 lowercase hex digits). */
void it_fnv_hex(uint64_t h, char out[17]);

/* Deterministic test data: byte at offset off + i of an endless stream. */
void it_pattern(unsigned char *p, uint64_t off, size_t n);

/* FNV-1a 64 of the first n bytes of the it_pattern stream. */
uint64_t it_pattern_fnv(uint64_t n);

/* ---- Processes -------------------------------------------------------------------------- */

struct it_proc {
    pid_t pid;
    char name[64];
    char log_path[512]; /* the process's stderr (and stdout, for lintel) */
    int port;           /* lintel: its listening port; origin: the port it reported */
    bool reaped;
    int status;        /* wait status, once reaped */
    off_t printed;     /* how much of the log was already printed */
    bool exit_printed; /* the exit code was printed with the log */
    bool test_scoped;  /* started inside a test: killed by it_test_teardown */
};

/* Starts `lintel-test-origin --port 0 --name NAME` and waits (5 s) for its "ready PORT" line.
 * Returns the process (owned by the harness, valid until the program exits), or NULL on failure
 * (reported on stderr). */
struct it_proc *it_origin_start(const char *name);

/* Where and how it_origin_start_opts runs the origin. */
struct it_origin_opts {
    const char *addr;       /* IPv4 address to listen on; NULL: 127.0.0.1 */
    int port;               /* 0: any free port */
    const char *cert, *key; /* PEM files: the origin speaks HTTPS; NULL: plain HTTP */
};

/* it_origin_start with options (o NULL: the defaults). */
struct it_proc *it_origin_start_opts(const char *name, const struct it_origin_opts *o);

/* Starts `lintel -c CONFIG_PATH` and waits (10 s) until port accepts connections and the process
 * handles SIGHUP and SIGTERM (so that a signal sent next is not fatal). Returns NULL, after
 * printing its log, if it exits or is not ready in time. */
struct it_proc *it_lintel_start(const char *config_path, int port);

/* Sends sig to p (ignored once p is reaped). Returns 0 or -1. */
int it_proc_signal(struct it_proc *p, int sig);

/* Waits up to timeout_ms for p to exit. Returns its exit code (128 + signal number when killed
 * by a signal), or -1 when still running at the deadline. */
int it_proc_wait(struct it_proc *p, int timeout_ms);

/* SIGKILL and reap (nothing when already reaped). */
void it_proc_kill(struct it_proc *p);

/* Current size of p's log in bytes (a mark for it_proc_log_wait). */
off_t it_proc_log_size(const struct it_proc *p);

/* Waits up to timeout_ms until the log, from byte offset since on, contains needle. Returns
 * true when it does. */
bool it_proc_log_wait(const struct it_proc *p, off_t since, const char *needle, int timeout_ms);

/* A field of /proc/PID/status in kB ("VmRSS", "VmHWM"); -1 on error. */
long it_proc_mem_kb(pid_t pid, const char *field);

/* Resets pid's peak RSS (VmHWM) to its current RSS, so that a test measures its own peak.
 * Returns 0, or -1 when the kernel refuses. */
int it_proc_reset_peak(pid_t pid);

/* Runs argv (argv[0] a path) to completion with stdin from /dev/null, capturing stdout and
 * stderr into out and err (either may be NULL). Returns the exit code as it_proc_wait does, or
 * -1 on a spawn failure or when it runs past timeout_ms (it is then killed). */
int it_run(char *const argv[], int timeout_ms, struct it_buf *out, struct it_buf *err);

/* ---- Files and ports -------------------------------------------------------------------- */

/* A loopback TCP port nobody listens on, chosen below the kernel's ephemeral range (so that
 * outgoing connections cannot take it) and not handed out before by this process. */
int it_free_port(void);

/* A new path in the harness's temporary directory (removed at exit when every test passed):
 * "DIR/NAME". Returns a pointer valid until the program exits. */
const char *it_temp_path(const char *name);

/* Writes the formatted text to path atomically (a temporary file renamed over it), so a reader
 * never sees half a file. Returns 0, or -1 with a message on stderr. */
int it_write_file(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The start of a gateway configuration: listen on 127.0.0.1:port, one worker, no admin API, no
 * plugins. Append upstreams, routes and any limits/timeouts sections after it. */
#define IT_CONFIG_HEAD                                                                             \
    "listen:\n"                                                                                    \
    "  - address: \"127.0.0.1:%d\"\n"                                                              \
    "admin: { enabled: false }\n"                                                                  \
    "workers: 1\n"                                                                                 \
    "plugin_paths: []\n"                                                                           \
    "plugins: []\n"

/* Copies src over dst the way a deploy does: a new file (dst.new) renamed into place, so a reader
 * (a plugin scan) sees the old file or the new one, never half of one. Returns 0 or -1. */
int it_install_file(const char *src, const char *dst);

/* ---- Configurations and lintel -t ------------------------------------------------------ */

/* The text of the block-th (0: the first) ```yaml block of LINTEL_SOURCE_DIR/doc_rel_path (e.g.
 * "docs/plugins/cors.md"), appended to out. With plugin_dir, the block must have a line starting
 * "plugin_paths: [build/plugins]" (the pages run from the source tree) and gets
 * plugin_paths: ["PLUGIN_DIR"] instead. Each of the n addresses addr_from[i] as the page writes
 * them ("127.0.0.1:9001") becomes 127.0.0.1:port_to[i]. Returns 0, or -1 with a message on stderr
 * (no such page or block, no plugin_paths line). */
int it_doc_yaml(const char *doc_rel_path, int block, const char *plugin_dir,
                const char *const *addr_from, const int *port_to, size_t n, struct it_buf *out);

/* Checks a page's example: writes the first ```yaml block of doc_rel_path (it_doc_yaml with
 * plugin_dir, no address changed) to the temporary file "doc-PAGE.yaml" and runs it_lintel_check
 * on it. Returns lintel -t's exit code, or -1 (with a message on stderr) when plugin_dir is NULL,
 * there is no such block or it could not run. */
int it_doc_check(const char *doc_rel_path, const char *plugin_dir);

/* A directory NAME in the temporary directory holding only a copy of the plugin so_path (under
 * its own file name), so that plugin_paths: [DIR] loads no other .so. Returns the directory (valid
 * until the program exits), or NULL with a message on stderr. */
const char *it_plugin_dir(const char *name, const char *so_path);

/* out gets "BUILD/rel": BUILD is the build directory, where LINTEL_BIN is ("plugins/cors.so",
 * "tests/host-plugins/v1.0.0"). */
void it_build_path(char *out, size_t len, const char *rel);

/* Writes the temporary file name: a configuration for `lintel -t` (listen 127.0.0.1:1, no admin
 * API, no upstreams or routes) whose global plugins come from plugin_dir, with plugins (the
 * entries of plugins:, "  - { name: ... }\n" lines) from line 5 on. Returns its path (valid until
 * the program exits), or NULL with a message on stderr. */
const char *it_check_config(const char *name, const char *plugin_dir, const char *plugins);

/* Runs `lintel -t -c conf` (10 s at most) and returns its exit code (-1 when it could not run or
 * ran too long). Its stderr is appended to err; with err NULL, what it printed is shown on stderr
 * when the exit code is not 0. */
int it_lintel_check(const char *conf, struct it_buf *err);

/* Whether `lintel -t -c conf` refuses conf: exit code 1 and the formatted text (often
 * "CONF:LINE:COL: key.path: message") somewhere in its stderr. Otherwise prints what it said and
 * what was wanted, and returns false. */
bool it_lintel_refuses(const char *conf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- Responses -------------------------------------------------------------------------- */

struct it_header {
    char *name;
    char *value;
};

struct it_response {
    int status;
    int minor; /* HTTP/1.minor of the status line */
    struct it_header *headers;
    size_t nheaders;
    struct it_buf body;  /* decoded body (empty when discarded) */
    uint64_t body_bytes; /* decoded body length, also when discarded */
    uint64_t body_fnv;   /* FNV-1a 64 of the decoded body */
    bool chunked;        /* the body came with Transfer-Encoding: chunked */
    bool to_close;       /* the body was delimited by the connection closing */
    long connects;       /* curl: new connections this transfer opened */
};

/* Parses one response from buf[0..len). head_request: the response has no body. at_eof: buf holds
 * everything the peer will send, so a response without framing ends at len. Returns the number
 * of bytes the response took (> 0) and fills r (free it with it_response_free), 0 when more bytes
 * are needed, -1 when malformed. A 1xx is returned as a response of its own. */
long it_response_parse(const char *buf, size_t len, bool head_request, bool at_eof,
                       struct it_response *r);

/* Value of the first header called name (case-insensitive), or NULL. Valid while r is. */
const char *it_response_header(const struct it_response *r, const char *name);

/* Number of headers called name. */
size_t it_response_header_count(const struct it_response *r, const char *name);

/* Whether the header's comma-separated value list contains token (case-insensitive). */
bool it_header_has_token(const char *value, const char *token);

void it_response_free(struct it_response *r);

/* Looks up path in a JSON object: "key" or "key.sub" (one level per dot, objects only).
 * Copies a string value (unescaped) or the text of a number/true/false/null into out. Returns 0,
 * or -1 when absent, not a scalar, too long, or the JSON is malformed. */
int it_json_get(const char *json, const char *path, char *out, size_t outlen);

/* it_json_get as an integer; -1 when absent or not an integer. */
long long it_json_int(const char *json, const char *path);

/* Whether the value at path equals want; a mismatch is described on stderr. */
bool it_json_eq(const char *json, const char *path, const char *want);

/* ---- Raw sockets ------------------------------------------------------------------------ */

/* "http://127.0.0.1:PORT" + path, in one of 8 rotating static buffers (so a few can be used in
 * one expression). Main thread only. */
const char *it_url(int port, const char *path);

/* True when a connection to port is refused now (ECONNREFUSED). */
bool it_port_refuses(int port);

enum it_read_end { IT_READ_ERROR = -1, IT_READ_TIMEOUT = 0, IT_READ_EOF = 1, IT_READ_RESET = 2 };

/* Connects, sends req[0..len), then reads into out until the peer closes (EOF, or RESET: a
 * reset after the answer) or timeout_ms passes with nothing new (TIMEOUT). ERROR when the
 * connection or the send fails. */
enum it_read_end it_raw_exchange(int port, const void *req, size_t len, int timeout_ms,
                                 struct it_buf *out);

/* A keepalive raw connection: bytes read past one response are kept for the next. */
struct it_conn {
    int fd;
    struct it_buf in;
    bool eof;
};

int it_conn_open(struct it_conn *c, int port); /* 0, or -1 */
int it_conn_send(struct it_conn *c, const void *p, size_t len);
int it_conn_send_str(struct it_conn *c, const char *s);

/* Reads one response (waiting up to timeout_ms in all). Returns 0 and fills r (free it with
 * it_response_free), or -1 on timeout, close before a whole response, or a malformed one. */
int it_conn_read_response(struct it_conn *c, bool head_request, int timeout_ms,
                          struct it_response *r);

void it_conn_close(struct it_conn *c);

/* ---- libcurl ---------------------------------------------------------------------------- */

/* One easy handle: successive requests reuse its connection (keepalive). */
struct it_http {
    void *easy; /* CURL * */
};

int it_http_init(struct it_http *h); /* 0, or -1 */
void it_http_free(struct it_http *h);

struct it_http_req {
    const char *method; /* NULL: GET, or POST when there is a body */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
    const void *body;           /* a body in memory (body_len bytes), or NULL */
    size_t body_len;
    uint64_t gen_len; /* > 0: a body of gen_len it_pattern bytes, generated as sent */
    bool chunked;     /* send the body with Transfer-Encoding: chunked */
    bool discard;     /* do not keep the response body, only count and hash it */
    long timeout_ms;  /* 0: 30 s */
};

/* Performs the request. Returns 0 with r filled (any status; free it with it_response_free), or
 * -1 on a transport error (described on stderr). */
int it_http_do(struct it_http *h, const struct it_http_req *q, struct it_response *r);

/* GET url with optional extra headers (NULL-terminated, or NULL). */
int it_http_get(struct it_http *h, const char *url, const char *const *headers,
                struct it_response *r);

/* The "requests" count of the test origin on port (its /stats, asked on a connection of its own:
 * this call counts too), or -1 when it cannot be read. Main thread only (it_url). */
long it_origin_requests(int port);

/* lintel_plugin_events_total{plugin=PLUGIN,instance=INSTANCE,name=NAME} from GET /-/metrics on
 * the admin port: 0 when absent, -1 when the admin API does not answer 200. Main thread only. */
long long it_plugin_metric(int admin, const char *plugin, const char *instance, const char *name);

/* Polls it_plugin_metric until it is at least want or timeout_ms passed; its last value. */
long long it_plugin_metric_wait(int admin, const char *plugin, const char *instance,
                                const char *name, long long want, int timeout_ms);

#endif
