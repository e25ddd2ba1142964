/* lintel plugin ABI — the only header a plugin includes.
 *
 * A plugin is a shared object that exports exactly one symbol, `lintel_plugin_v1`, a const
 * `struct lintel_plugin`. The host hands the plugin its services as a table of function pointers,
 * `struct lintel_host_api`; plugins never link against host symbols (build them with
 * -fvisibility=hidden and LINTEL_PLUGIN_EXPORT on the descriptor).
 *
 * Compatibility (docs/abi.md):
 *   - abi_major must equal the host's; the plugin's abi_minor must be <= the host's.
 *   - Structs only grow at the end. Each side reads the other's struct only up to the other's
 *     struct_size: a field past it is treated as absent (NULL / 0).
 *   - Enums only gain values; a handler must treat unknown values as it would the default.
 *   - A NULL function pointer means "not used" (plugin side) or "not provided" (host side).
 *
 * Ownership: a pointer the host passes or returns is borrowed — valid until the handler (or
 * callback) returns — unless its doc says otherwise. Every function that stores what the plugin
 * passes says "copied". Strings are not NUL-terminated unless stated: use the length.
 *
 * Threads: create/destroy run on the main thread; worker_init/worker_fini, handlers, timer and
 * HTTP callbacks run on a worker thread. Functions taking a lintel_req must be called on the
 * request's worker only. Shared counters and the cache may be used from any thread.
 */
#ifndef LINTEL_PLUGIN_H
#define LINTEL_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include <lintel/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LINTEL_PLUGIN_EXPORT __attribute__((visibility("default")))
#define LINTEL_PLUGIN_SYMBOL "lintel_plugin_v1"

/* ---- basic types -------------------------------------------------------------------------- */

/* A borrowed byte string; ptr is NULL when absent. */
struct lintel_str {
    const char *ptr;
    size_t len;
};

typedef struct lintel_req lintel_req;           /* one request (worker-local) */
typedef struct lintel_instance lintel_instance; /* the host's handle for a plugin instance */
typedef struct lintel_cfg lintel_cfg;           /* a YAML node of the instance's config */
typedef struct lintel_cfg_error lintel_cfg_error; /* where create reports a config error */
typedef struct lintel_timer lintel_timer;       /* a worker timer */
typedef struct lintel_watch lintel_watch;       /* a watched file descriptor */

#define LINTEL_WATCH_READ 0x1
#define LINTEL_WATCH_WRITE 0x2

enum lintel_phase {
    LINTEL_PHASE_REWRITE = 0,
    LINTEL_PHASE_ACCESS = 1,
    LINTEL_PHASE_BALANCE = 2,
    LINTEL_PHASE_RESPONSE_HEADERS = 3,
    LINTEL_PHASE_RESPONSE_BODY = 4,
    LINTEL_PHASE_LOG = 5,
};

enum lintel_result {
    LINTEL_CONTINUE = 0, /* go on with the next handler */
    LINTEL_RESPOND = 1,  /* a response has been set (respond): stop the chain, skip the upstream */
    LINTEL_PAUSE = 2,    /* the plugin calls resume() later, on the same worker */
    LINTEL_ERROR = 3,    /* 500 for this request, logged with the plugin and instance name */
};

enum lintel_log_level {
    LINTEL_LOG_LEVEL_DEBUG = 0,
    LINTEL_LOG_LEVEL_INFO = 1,
    LINTEL_LOG_LEVEL_WARN = 2,
    LINTEL_LOG_LEVEL_ERROR = 3,
};

enum lintel_cfg_type {
    LINTEL_CFG_NONE = 0, /* absent (a NULL node) */
    LINTEL_CFG_SCALAR = 1,
    LINTEL_CFG_LIST = 2,
    LINTEL_CFG_MAP = 3,
};

typedef enum lintel_result (*lintel_handler_fn)(lintel_req *r, void *instance);
typedef void (*lintel_cleanup_fn)(void *data);
typedef void (*lintel_timer_fn)(void *arg);
/* events: LINTEL_WATCH_READ and/or LINTEL_WATCH_WRITE, what is ready now. */
typedef void (*lintel_watch_fn)(int fd, int events, void *arg);

/* ---- outbound HTTP ----------------------------------------------------------------------- */

struct lintel_http_request {
    uint32_t struct_size; /* sizeof(struct lintel_http_request) of the plugin */
    const char *method;   /* NUL-terminated; NULL = GET */
    /* NUL-terminated: http://, https://, or (ABI 1.1) upstream://NAME/path?query, which the
     * host sends to a target of upstream NAME of the current configuration that is not marked
     * down (round robin), over http. */
    const char *url;
    const char *const *headers; /* "Name: value" strings, NULL-terminated array; may be NULL */
    const void *body;
    size_t body_len;
    uint64_t timeout_ms; /* 0 = 5000 */
};

struct lintel_http_response {
    uint32_t struct_size; /* the host's */
    int status;           /* 0 when the request failed (see error) */
    const char *error;    /* NUL-terminated reason when status == 0, else NULL */
    struct lintel_str body;
    /* First value of header name (case-insensitive), or {NULL,0}. */
    struct lintel_str (*header)(const struct lintel_http_response *resp, const char *name);
};

/* Called once with the outcome; resp and everything in it is borrowed for the call. */
typedef void (*lintel_http_fn)(void *arg, const struct lintel_http_response *resp);

/* ---- facts about a request, for LOG handlers ----------------------------------------------- */

struct lintel_req_info {
    uint32_t struct_size;     /* set by the caller to sizeof(struct lintel_req_info) */
    int status;               /* status sent to the client (0: none, the client went away) */
    uint64_t start_unix_us;   /* when the request head was complete */
    uint64_t duration_us;     /* until the response was queued */
    uint64_t bytes_in;        /* request body bytes read */
    uint64_t bytes_out;       /* response body bytes sent */
    struct lintel_str host;   /* Host header */
    struct lintel_str target; /* request-target as received */
    int http_minor;           /* 0 or 1 (HTTP/1.x) */
    struct lintel_str upstream;      /* upstream name, {NULL,0} when none was used */
    struct lintel_str upstream_addr; /* target "ip:port" used last */
    uint64_t upstream_connect_us;    /* 0 for a pooled connection */
    uint64_t upstream_response_us;   /* from sending the head to the response head */
};

/* Why the gateway made the current response itself instead of relaying the upstream's
 * (upstream_failure, ABI 1.1). Values only get added; treat unknown ones as LINTEL_UPSTREAM_ERROR. */
enum lintel_upstream_failure {
    LINTEL_UPSTREAM_OK = 0,          /* the response is the upstream's, or a plugin's */
    LINTEL_UPSTREAM_CONNECT = 1,     /* connect refused or failed (every retry) */
    LINTEL_UPSTREAM_TIMEOUT = 2,     /* connect, send or read timeout */
    LINTEL_UPSTREAM_NO_HEALTHY = 3,  /* every target is marked down (503) */
    LINTEL_UPSTREAM_ERROR = 4,       /* reset, early close, invalid response, no target */
};

/* A shared counter in a fixed window and the window before it (counter_window, ABI 1.1). */
struct lintel_counter_window {
    uint32_t struct_size; /* set by the caller */
    int64_t value;        /* the counter in the current window, after the delta */
    int64_t previous;     /* its final value in the window just before (0: none or not adjacent) */
    uint64_t elapsed_ms;  /* ms since the current window began */
    uint64_t reset_ms;    /* ms until it ends */
};

/* A consumer declared in the configuration (see consumer_at). */
struct lintel_consumer {
    uint32_t struct_size; /* set by the caller */
    const char *name;
    const char *id;
    const lintel_cfg *credentials; /* e.g. { keys: [...], basic: {...}, jwt: [...], hmac: [...] } */
};

/* ---- what the host offers ---------------------------------------------------------------- */

struct lintel_host_api {
    uint32_t struct_size;
    uint16_t abi_major, abi_minor;

    /* -- logging -- */
    /* Logs "[plugin/instance] message". self may be NULL. Thread: any. */
    void (*log)(const lintel_instance *self, enum lintel_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* -- configuration (create only; nodes valid while the instance lives) -- */
    enum lintel_cfg_type (*cfg_type)(const lintel_cfg *node);
    /* MAP: the value at key, or NULL. */
    const lintel_cfg *(*cfg_get)(const lintel_cfg *map, const char *key);
    /* LIST / MAP: number of items. */
    size_t (*cfg_len)(const lintel_cfg *node);
    /* LIST: item i; MAP: value i (file order). NULL when out of range. */
    const lintel_cfg *(*cfg_at)(const lintel_cfg *node, size_t i);
    /* MAP: key i as a NUL-terminated string, or NULL. */
    const char *(*cfg_key_at)(const lintel_cfg *map, size_t i);
    /* SCALAR: NUL-terminated text, or NULL for other node types. */
    const char *(*cfg_str)(const lintel_cfg *node);
    /* Conversions: 0 on success, -1 when the node is absent or of the wrong form. */
    int (*cfg_int)(const lintel_cfg *node, int64_t *out);
    int (*cfg_bool)(const lintel_cfg *node, int *out);
    int (*cfg_duration_ms)(const lintel_cfg *node, uint64_t *out); /* "250ms", "2s", "1m" */
    int (*cfg_size)(const lintel_cfg *node, uint64_t *out);        /* "64k", "8m" */
    /* Reports a config error at node (NULL: the instance's config node itself); the host prints
     * "FILE:LINE:COL: key.path: message". create must then return -1. */
    void (*cfg_error)(lintel_cfg_error *err, const lintel_cfg *node, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* -- request (handlers; worker thread) -- */
    struct lintel_str (*req_method)(lintel_req *r);
    int (*req_set_method)(lintel_req *r, const char *m, size_t len); /* copied */
    struct lintel_str (*req_path)(lintel_req *r);                    /* without query */
    /* Copied; must start '/'. A route's strip_prefix no longer applies to a path a plugin set,
     * unless it is set back to the path the client sent. */
    int (*req_set_path)(lintel_req *r, const char *p, size_t len);
    struct lintel_str (*req_query)(lintel_req *r);                   /* without '?' */
    int (*req_set_query)(lintel_req *r, const char *q, size_t len);  /* copied; len 0 removes */
    /* Query argument / cookie value (raw, not percent-decoded), or {NULL,0}. */
    struct lintel_str (*req_arg)(lintel_req *r, const char *name);
    struct lintel_str (*req_cookie)(lintel_req *r, const char *name);
    /* Request headers: first value of name (case-insensitive), or {NULL,0}. */
    struct lintel_str (*req_header)(lintel_req *r, const char *name);
    /* Header i in arrival order (removed ones skipped); 0, or -1 past the end. */
    int (*req_header_at)(lintel_req *r, size_t i, struct lintel_str *name, struct lintel_str *value);
    /* set replaces every header called name; add appends; remove deletes all. 0 or -1 (bad
     * characters, out of memory). Copied. */
    int (*req_header_set)(lintel_req *r, const char *name, const char *value, size_t value_len);
    int (*req_header_add)(lintel_req *r, const char *name, const char *value, size_t value_len);
    int (*req_header_remove)(lintel_req *r, const char *name);
    struct lintel_str (*req_client_addr)(lintel_req *r); /* peer IP text */
    struct lintel_str (*req_route)(lintel_req *r);       /* route name */
    struct lintel_str (*req_id)(lintel_req *r);          /* X-Request-Id value */
    /* The authenticated consumer (auth sets, ratelimit and logging read). Copied. */
    int (*consumer_set)(lintel_req *r, const char *name, const char *id);
    struct lintel_str (*consumer_name)(lintel_req *r);
    struct lintel_str (*consumer_id)(lintel_req *r);

    /* Per-request context of this plugin instance; cleanup (may be NULL) runs exactly once when
     * the request ends, even when the client goes away while paused. */
    void *(*ctx_get)(lintel_req *r, const lintel_instance *self);
    int (*ctx_set)(lintel_req *r, const lintel_instance *self, void *data, lintel_cleanup_fn cleanup);
    /* Request-scoped memory, freed when the request ends. NULL when out of memory. */
    void *(*alloc)(lintel_req *r, size_t n);

    /* -- responding and the response -- */
    /* Sets the response to status with body (copied; content_type NULL = application/json when
     * the body starts with '{', else text/plain). Headers set with resp_header_* while no
     * response existed yet, and any set after respond, are kept. The handler then returns
     * LINTEL_RESPOND. In RESPONSE_HEADERS it replaces the response: the upstream's headers go,
     * headers plugins set with resp_header_* stay, and the RESPONSE_HEADERS handlers after this
     * one still run on the new response. -1 once the response head has been sent
     * (RESPONSE_BODY, LOG): so do resp_header_* then. */
    int (*respond)(lintel_req *r, int status, const char *content_type, const void *body,
                   size_t len);
    int (*resp_status)(lintel_req *r); /* 0 before a response exists */
    int (*resp_set_status)(lintel_req *r, int status);
    struct lintel_str (*resp_header)(lintel_req *r, const char *name);
    int (*resp_header_set)(lintel_req *r, const char *name, const char *value, size_t value_len);
    int (*resp_header_add)(lintel_req *r, const char *name, const char *value, size_t value_len);
    int (*resp_header_remove)(lintel_req *r, const char *name);

    /* -- upstream choice (REWRITE..BALANCE) -- */
    /* Sends the request to the named upstream of the current configuration. -1: no such one. */
    int (*set_upstream)(lintel_req *r, const char *name);
    struct lintel_str (*upstream_name)(lintel_req *r);

    /* -- pausing -- */
    /* Continues a request whose handler returned LINTEL_PAUSE, with that handler's result.
     * Must be called on the request's worker, at most once per PAUSE. */
    void (*resume)(lintel_req *r, enum lintel_result result);
    /* Calls fn(arg) after ms on the request's worker; cancelled (fn never called) if the request
     * ends first. 0 or -1. */
    int (*req_timer)(lintel_req *r, uint64_t ms, lintel_timer_fn fn, void *arg);

    /* -- access record -- */
    /* Adds key=value to the request's access record (logging plugins read them). Copied. */
    int (*log_field)(lintel_req *r, const char *key, const char *value, size_t value_len);
    /* Field i; 0, or -1 past the end. */
    int (*log_field_at)(lintel_req *r, size_t i, struct lintel_str *key, struct lintel_str *value);

    /* -- metrics -- */
    /* Adds delta to lintel_plugin_events_total{plugin,instance,name} in GET /-/metrics. On a
     * worker a plain store into that worker's own copy (no lock, no atomic read-modify-write):
     * call it per event, no need to batch. Thread: any. */
    void (*metric_add)(const lintel_instance *self, const char *name, uint64_t delta);

    /* -- facts for LOG handlers -- */
    /* Fills out (up to out->struct_size, which the caller sets). 0 or -1. */
    int (*req_info)(lintel_req *r, struct lintel_req_info *out);
    /* The index of the worker running the request (0..worker_count-1). */
    unsigned (*req_worker)(lintel_req *r);

    /* -- the request body -- */
    /* Asks for the whole request body, at most cap bytes (more: the host answers 413). Returns 1
     * when the body is buffered (read it with req_body), 0 when the handler must return
     * LINTEL_PAUSE: the host calls the same handler again once the body is in; -1 on error.
     * REWRITE, ACCESS and BALANCE only. The upstream then gets the body with a Content-Length. */
    int (*req_body_buffer)(lintel_req *r, size_t cap);
    struct lintel_str (*req_body)(lintel_req *r); /* {NULL,0} until buffered */

    /* -- the response body (RESPONSE_BODY handlers, read-only) -- */
    /* The chunk being relayed to the client (borrowed), and whether it is the last call. */
    struct lintel_str (*resp_body_chunk)(lintel_req *r);
    int (*resp_body_last)(lintel_req *r);

    /* -- outbound HTTP (libcurl multi on the worker's loop) -- */
    /* Starts a call tied to the request: cb runs once on the request's worker, or never when
     * the request ends first. Typically the handler returns PAUSE and cb calls resume. 0 / -1. */
    int (*http_call)(lintel_req *r, const struct lintel_http_request *spec, lintel_http_fn cb,
                     void *arg);
    /* A call not tied to a request (log shipping, key fetches), on the calling worker; cancelled
     * (cb never runs) when the instance's worker_fini comes. Worker thread only. 0 / -1. */
    int (*worker_http_call)(const lintel_instance *self, const struct lintel_http_request *spec,
                            lintel_http_fn cb, void *arg);
    /* A timer on the calling worker, every ms when repeat, else once; stopped automatically
     * before the instance's worker_fini. Worker thread only. NULL on failure. */
    lintel_timer *(*worker_timer)(const lintel_instance *self, uint64_t ms, int repeat,
                                  lintel_timer_fn fn, void *arg);
    void (*timer_stop)(lintel_timer *t);

    /* -- state shared by all workers, keyed by plugin name + instance name, so it survives a
     * version swap (thread: any) -- */
    /* Adds delta to counter key in the current fixed window of window_ms (0: no window); sets
     * the new value and the ms left in the window (either pointer may be NULL). 0 / -1 (full). */
    int (*counter_add)(const lintel_instance *self, const char *key, int64_t delta,
                       uint64_t window_ms, int64_t *value, uint64_t *reset_ms);
    /* A small cache: set copies the value; get copies into buf and returns the value's length,
     * or -1 when absent or expired. ttl_ms 0: no expiry. */
    int (*cache_set)(const lintel_instance *self, const char *key, const void *value, size_t len,
                     uint64_t ttl_ms);
    long (*cache_get)(const lintel_instance *self, const char *key, void *buf, size_t cap);

    /* -- consumers (top-level `consumers:`; create time, main thread) -- */
    /* Number of consumers declared in the configuration. */
    size_t (*consumer_count)(const lintel_instance *self);
    /* Consumer i: name, id (may be NULL) and its `credentials` map (may be NULL). The strings and
     * nodes live as long as the instance. 0, or -1 past the end. */
    int (*consumer_at)(const lintel_instance *self, size_t i, struct lintel_consumer *out);
    /* Resolves a secret given as a scalar node: "env:NAME" (environment), "file:PATH" (the
     * file's content, one trailing newline dropped), or the literal text. Copies at most cap
     * bytes into buf and returns the secret's length, or -1 (absent variable, unreadable file,
     * not a scalar). */
    long (*secret)(const lintel_instance *self, const lintel_cfg *node, char *buf, size_t cap);

    /* -- file descriptors on the worker's loop (client libraries: Redis, ...) -- */
    /* Watches fd (non-blocking, owned by the plugin) for the events in `events` on the calling
     * worker; fn runs each time one is ready (level-triggered) until watch_set(w, 0) or
     * watch_stop. Stopped automatically before the instance's worker_fini (the fd is not
     * closed). Worker thread only. NULL on failure. */
    lintel_watch *(*worker_watch)(const lintel_instance *self, int fd, int events,
                                  lintel_watch_fn fn, void *arg);
    /* Changes the events watched (0: none, the watch stays). 0 / -1. */
    int (*watch_set)(lintel_watch *w, int events);
    void (*watch_stop)(lintel_watch *w);

    /* Number of workers (fixed for the process's life): size per-worker arrays in create. */
    unsigned (*worker_count)(void);

    /* Sends the request to one target of its upstream (after set_upstream, if any), named by its
     * address as written in the configuration ("10.0.0.7:8080"). The balancer still counts it;
     * when that target is down or fails to connect, the usual choice and retries apply.
     * REWRITE..BALANCE. 0, or -1 when the upstream has no such target. */
    int (*set_target)(lintel_req *r, const char *address);

    /* ---- ABI 1.1 ---- */

    /* Wall-clock time in Unix milliseconds. Read time through this, not time(2), so that tests
     * can move it (the test kit's lk_clock_set_unix). Thread: any. */
    uint64_t (*now_ms)(void);
    /* The name of this instance (`instance:` in YAML, else the plugin's name). NUL-terminated,
     * valid as long as the instance. Thread: any. */
    const char *(*instance_name)(const lintel_instance *self);
    /* Response header i, in the order it will be sent (every value of a repeated header);
     * 0, or -1 past the end or before a response exists. */
    int (*resp_header_at)(lintel_req *r, size_t i, struct lintel_str *name,
                          struct lintel_str *value);
    /* Why the current response was made by the gateway: enum lintel_upstream_failure.
     * LINTEL_UPSTREAM_OK for an upstream's (or a plugin's) response. RESPONSE_HEADERS..LOG. */
    int (*upstream_failure)(lintel_req *r);
    /* RESPONSE_HEADERS only: drops the current response (nothing of it has reached the client)
     * and sends the request to an upstream again, as it stands when the handler returns. During
     * this handler call req_set_path / req_set_query / req_header_* / set_upstream / set_target
     * work again, to aim the new attempt. The handler then returns LINTEL_CONTINUE; the handlers
     * after it do not run on the dropped response. The new response goes through
     * RESPONSE_HEADERS from the first handler. Allowed when the request has no body or its body
     * was buffered (req_body_buffer), at most twice per request. 0, or -1 when not allowed. */
    int (*resend)(lintel_req *r);
    /* Targets of upstream `name` in the request's configuration that are not marked down by
     * health checks (every target when the upstream has no checks); -1: no such upstream. */
    int (*upstream_healthy)(lintel_req *r, const char *name);
    /* Sets gauge lintel_plugin_gauge{plugin,instance,name} in GET /-/metrics. Thread: any. */
    void (*metric_set)(const lintel_instance *self, const char *name, int64_t value);
    /* Adds delta to counter key in the current window of window_ms (> 0) and reports the
     * previous window's final value too (sliding windows: weight `previous` by the part of the
     * previous window still in view). Keys unused for two windows are freed. Fills out (up to
     * out->struct_size). 0 / -1 (full). Thread: any. */
    int (*counter_window)(const lintel_instance *self, const char *key, int64_t delta,
                          uint64_t window_ms, struct lintel_counter_window *out);
    /* Stores value under key only when the key is absent or expired: 1 stored, 0 it was
     * present (nothing changed), -1 on error (too long, full). Exactly one of several
     * concurrent adds of a key stores it (nonces, "first one wins"). Thread: any. */
    int (*cache_add)(const lintel_instance *self, const char *key, const void *value, size_t len,
                     uint64_t ttl_ms);

    /* ---- ABI 1.2 ---- */
    /* 1 when the configuration self was created from declares upstream `name`, else 0. For
     * create(), so that a name in the plugin's config is checked when the file is loaded (a
     * reload with an unknown name is refused and the running configuration kept), not at the
     * first request. Thread: any. */
    int (*upstream_exists)(const lintel_instance *self, const char *name);
};

/* ---- what the plugin exports --------------------------------------------------------------- */

struct lintel_plugin {
    uint32_t struct_size; /* sizeof(struct lintel_plugin) when built */
    uint16_t abi_major;   /* LINTEL_ABI_MAJOR when built */
    uint16_t abi_minor;   /* LINTEL_ABI_MINOR when built */
    const char *name;     /* [a-z0-9_-]+ */
    const char *version;  /* semver "MAJOR.MINOR.PATCH" */
    int32_t priority;     /* higher runs first within a phase; routes may override */
    uint32_t flags;       /* none defined yet: 0 */

    /* Creates an instance from its YAML config (config may be NULL when none was given).
     * Returns 0 with *instance set, or -1 after cfg_error. Thread: main. */
    int (*create)(const struct lintel_host_api *host, lintel_instance *self,
                  const lintel_cfg *config, lintel_cfg_error *err, void **instance);
    /* Frees an instance once no request uses it any more. Thread: main or a worker. */
    void (*destroy)(void *instance);
    /* Per-worker setup and teardown (worker index 0..n-1). Thread: that worker. */
    int (*worker_init)(void *instance, unsigned worker);
    void (*worker_fini)(void *instance, unsigned worker);

    /* Phase handlers; NULL: the phase is not used. */
    lintel_handler_fn rewrite;
    lintel_handler_fn access;
    lintel_handler_fn balance;
    lintel_handler_fn response_headers;
    lintel_handler_fn response_body;
    lintel_handler_fn log;

    /* The gateway got SIGUSR1 (log rotation): reopen files. Thread: main; workers keep running,
     * so hand the reopen to whatever thread owns the file. NULL: nothing to reopen. */
    void (*reopen)(void *instance);
};

/* Convenience for plugin authors: fills the ABI fields. */
#define LINTEL_PLUGIN_INIT                                                                       \
    .struct_size = sizeof(struct lintel_plugin), .abi_major = LINTEL_ABI_MAJOR,                   \
    .abi_minor = LINTEL_ABI_MINOR

#ifdef __cplusplus
}
#endif

#endif
