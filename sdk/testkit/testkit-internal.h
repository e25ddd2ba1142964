/* Shared by the test kit's files: the fake request, the instance, header lists, timers, and the
 * host functions each file contributes to the lintel_host_api table (plugin.c). Not installed.
 *
 * Where plugin.h leaves a behaviour open, the kit does what lintel's host does (core/host_api.c,
 * core/phases.c), so that a plugin passing its tests here behaves the same in the gateway. */
#ifndef LINTEL_TESTKIT_INTERNAL_H
#define LINTEL_TESTKIT_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lintel/testkit.h>

#include "arena.h"
#include "plugin_read.h"
#include "ynode.h"

/* The plugin's view of an instance and a request; each points back at the kit's object. */
struct lintel_instance {
    struct lk_instance *kit;
};

struct lintel_req {
    struct lk_req *kit;
};

/* Where create reports a config error: the first report wins. */
struct lintel_cfg_error {
    struct lk_instance *in;
    char msg[512];
    bool set;
};

struct lk_plugin {
    struct lintel_plugin desc; /* the plugin's descriptor up to its struct_size, rest zeroed */
    void *dl;                  /* NULL for lk_plugin_from_descriptor */
};

struct lk_metric {
    struct lk_metric *next;
    char *name;
    uint64_t value;
};

struct lk_instance {
    struct lintel_instance handle;
    struct lk_plugin *plugin;
    const char *name;                     /* the instance name: the plugin's name */
    char ns[160];                         /* "plugin/instance": key of its shared state */
    struct lintel_arena *arena;           /* the config tree */
    const struct lintel_ynode *config;    /* NULL when none was given */
    const struct lintel_ynode *consumers; /* lk_set_consumers' list when created, or NULL */
    void *data;                           /* what create returned */
    struct lk_metric *metrics;
    struct lk_metric *gauges; /* metric_set: value holds the int64_t bits */
    bool in_create;
};

/* A header, or in a pending list a "remove every `name`" marker (deleted). Removing marks
 * entries deleted instead of unlinking them, as the host does. Nodes live in the request's
 * arena. */
struct lk_header {
    struct lk_header *next;
    char *name;
    char *value;
    size_t value_len;
    bool deleted;
};

struct lk_headers {
    struct lk_header *head;
};

struct lk_ctx {
    struct lk_ctx *next;
    const lintel_instance *owner;
    void *data;
    lintel_cleanup_fn cleanup;
};

struct lk_req {
    struct lintel_req handle;
    struct lintel_arena *arena;
    uint64_t start_ms; /* virtual clock at lk_req_new */
    char *target;      /* as the client sent it */
    char *method;
    char *path;
    char *query; /* NULL: none */
    struct lk_headers headers;
    char *client;
    char *route;
    char *upstream;
    char *chosen_target; /* set_target's choice, or NULL */
    char *request_id; /* the client's X-Request-Id, else generated */
    char *consumer_name, *consumer_id;
    struct lk_ctx *ctxs;
    struct lk_headers fields; /* the access record */

    /* The request body (lk_req_set_body) and its buffering (req_body_buffer). */
    const char *body_in;
    size_t body_in_len;
    bool body_arrived; /* whole body already read when a plugin asks */
    bool body_buffered;
    bool rerun; /* the handler asked for the body: PAUSE means "call me again with it" */
    size_t body_cap;
    int deferred_status; /* an answer that waits until the handler returns (413) */

    /* The response: the upstream's (lk_req_set_response) or the plugins' own (respond). */
    int status; /* 0: no response yet */
    bool own;   /* made by respond (or by the host for an error) */
    char *own_type;
    char *body;
    size_t body_len;
    struct lk_headers resp_headers;
    struct lk_headers pending; /* resp_header_* before a response exists */
    size_t chunk_size;         /* RESPONSE_BODY: bytes per call, 0 = the whole body at once */
    struct lintel_str chunk;
    bool chunk_last;

    enum lintel_phase phase;     /* of the last lk_run */
    struct lk_instance *running; /* whose handler ran last (for log lines) */
    bool in_handler;
    bool paused;
    bool resume_pending; /* resume() came from inside the handler */
    enum lintel_result resume_result;
    bool resumed;
    enum lintel_result resumed_with;

    /* ABI 1.1 */
    enum lintel_upstream_failure failure; /* the response is a gateway-made failure */
    unsigned resent;                      /* resend() calls */
    bool resending;                       /* resend() was called by the running handler */
};

/* ---- plugin.c ---- */
/* The host table handed to create and kept by plugins. */
extern const struct lintel_host_api lk_host;

/* ---- run.c ---- */
void lk_resume_fn(lintel_req *r, enum lintel_result result);

/* ---- log.c ---- */
void lk_log_append(const char *who, enum lintel_log_level level, const char *fmt, va_list ap);
/* Logs "error [testkit] ..." and counts a violation. */
void lk_violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Logs under "plugin/instance". */
void lk_log_as(const struct lk_instance *in, enum lintel_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void lk_host_log(const lintel_instance *self, enum lintel_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void lk_host_metric_add(const lintel_instance *self, const char *name, uint64_t delta);
void lk_metrics_free(struct lk_metric *m);
void lk_host_metric_set(const lintel_instance *self, const char *name, int64_t value);

/* ---- config.c ---- */
void lk_cfg_error(lintel_cfg_error *err, const lintel_cfg *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- headers.c ---- */
/* RFC 9110 tokens (header names, methods); field values (no CTL but HTAB, no DEL). */
bool lk_token_ok(const char *s, size_t len);
bool lk_header_name_ok(const char *name);
bool lk_header_value_ok(const char *value, size_t len);
/* First live header called name (case-insensitive), or NULL. */
const struct lk_header *lk_headers_find(const struct lk_headers *h, const char *name);
/* Appends name: value (copied); deleted makes it a removal marker. 0, or -1 out of memory. */
int lk_headers_add(struct lintel_arena *a, struct lk_headers *h, const char *name,
                   const char *value, size_t len, bool deleted);
/* Marks every header called name deleted. */
void lk_headers_remove(struct lk_headers *h, const char *name);
/* Live header i, as name and value; 0, or -1 past the end. */
int lk_headers_at(const struct lk_headers *h, size_t i, struct lintel_str *name,
                  struct lintel_str *value);
/* A copy of s[0..len) with a NUL (s may be NULL when len is 0); NULL when out of memory. */
char *lk_strdup(struct lintel_arena *a, const char *s, size_t len);
/* Aborts when p is NULL: the kit's own allocations failing means the test cannot go on. */
void *lk_must(void *p);

/* ---- request.c ---- */
struct lintel_str lk_req_method_fn(lintel_req *r);
int lk_req_set_method_fn(lintel_req *r, const char *m, size_t len);
struct lintel_str lk_req_path_fn(lintel_req *r);
int lk_req_set_path_fn(lintel_req *r, const char *p, size_t len);
struct lintel_str lk_req_query_fn(lintel_req *r);
int lk_req_set_query_fn(lintel_req *r, const char *q, size_t len);
struct lintel_str lk_req_arg_fn(lintel_req *r, const char *name);
struct lintel_str lk_req_cookie_fn(lintel_req *r, const char *name);
struct lintel_str lk_req_header_fn(lintel_req *r, const char *name);
int lk_req_header_at_fn(lintel_req *r, size_t i, struct lintel_str *name, struct lintel_str *value);
int lk_req_header_set_fn(lintel_req *r, const char *name, const char *value, size_t len);
int lk_req_header_add_fn(lintel_req *r, const char *name, const char *value, size_t len);
int lk_req_header_remove_fn(lintel_req *r, const char *name);
struct lintel_str lk_req_client_addr_fn(lintel_req *r);
struct lintel_str lk_req_route_fn(lintel_req *r);
struct lintel_str lk_req_id_fn(lintel_req *r);
int lk_consumer_set_fn(lintel_req *r, const char *name, const char *id);
struct lintel_str lk_consumer_name_fn(lintel_req *r);
struct lintel_str lk_consumer_id_fn(lintel_req *r);
void *lk_ctx_get_fn(lintel_req *r, const lintel_instance *self);
int lk_ctx_set_fn(lintel_req *r, const lintel_instance *self, void *data,
                  lintel_cleanup_fn cleanup);
void *lk_alloc_fn(lintel_req *r, size_t n);
int lk_set_upstream_fn(lintel_req *r, const char *name);
int lk_set_target_fn(lintel_req *r, const char *address);
struct lintel_str lk_upstream_name_fn(lintel_req *r);
int lk_log_field_fn(lintel_req *r, const char *key, const char *value, size_t len);
int lk_log_field_at_fn(lintel_req *r, size_t i, struct lintel_str *key, struct lintel_str *value);
int lk_req_info_fn(lintel_req *r, struct lintel_req_info *out);
unsigned lk_req_worker_fn(lintel_req *r);
int lk_req_body_buffer_fn(lintel_req *r, size_t cap);
int lk_upstream_healthy_fn(lintel_req *r, const char *name);
struct lintel_str lk_req_body_fn(lintel_req *r);

/* ---- response.c ---- */
int lk_respond_fn(lintel_req *r, int status, const char *content_type, const void *body,
                  size_t len);
int lk_resp_status_fn(lintel_req *r);
int lk_resp_set_status_fn(lintel_req *r, int status);
struct lintel_str lk_resp_header_fn(lintel_req *r, const char *name);
int lk_resp_header_set_fn(lintel_req *r, const char *name, const char *value, size_t len);
int lk_resp_header_add_fn(lintel_req *r, const char *name, const char *value, size_t len);
int lk_resp_header_remove_fn(lintel_req *r, const char *name);
struct lintel_str lk_resp_body_chunk_fn(lintel_req *r);
int lk_resp_body_last_fn(lintel_req *r);
int lk_resp_header_at_fn(lintel_req *r, size_t i, struct lintel_str *name, struct lintel_str *value);
int lk_upstream_failure_fn(lintel_req *r);
int lk_resend_fn(lintel_req *r);
/* Applies the headers set before the response existed onto it (the host does so when the
 * response head is about to go out). */
void lk_resp_apply_pending(struct lk_req *r);
/* The host's own error answer: status with {"status":..,"error":..,"request_id":..}. */
void lk_resp_fail(struct lk_req *r, int status, const char *error);

/* ---- clock.c ---- */
/* The virtual clock, in ms since the process started testing. */
uint64_t lk_now(void);
/* Calls fire(arg) after ms (then every period ms when period is not 0), owned by req (cancelled
 * when it ends) or by in (stopped before its worker_fini). drop(arg), if not NULL, runs instead
 * of fire when the timer is cancelled. Returns NULL when out of memory. */
lintel_timer *lk_timer_add(struct lk_req *req, struct lk_instance *in, uint64_t ms, uint64_t period,
                           void (*fire)(void *), void (*drop)(void *), void *arg);
void lk_timers_cancel_req(struct lk_req *r);
/* Disarms in's timers (before worker_fini), then frees them (after). */
void lk_timers_disarm_instance(struct lk_instance *in);
void lk_timers_free_instance(struct lk_instance *in);
int lk_req_timer_fn(lintel_req *r, uint64_t ms, lintel_timer_fn fn, void *arg);
lintel_timer *lk_worker_timer_fn(const lintel_instance *self, uint64_t ms, int repeat,
                                 lintel_timer_fn fn, void *arg);
void lk_timer_stop_fn(lintel_timer *t);
uint64_t lk_now_ms_fn(void);

/* ---- http.c ---- */
int lk_http_call_fn(lintel_req *r, const struct lintel_http_request *spec, lintel_http_fn cb,
                    void *arg);
int lk_worker_http_call_fn(const lintel_instance *self, const struct lintel_http_request *spec,
                           lintel_http_fn cb, void *arg);

/* ---- consumers.c ---- */
/* Parses the consumers lk_set_consumers gave into in's arena (in->consumers). 0, or -1 with err
 * set. */
int lk_consumers_load(struct lk_instance *in, char *err, size_t errlen);
size_t lk_consumer_count_fn(const lintel_instance *self);
int lk_consumer_at_fn(const lintel_instance *self, size_t i, struct lintel_consumer *out);
long lk_secret_fn(const lintel_instance *self, const lintel_cfg *node, char *buf, size_t cap);

/* ---- watch.c ---- */
lintel_watch *lk_worker_watch_fn(const lintel_instance *self, int fd, int events,
                                 lintel_watch_fn fn, void *arg);
int lk_watch_set_fn(lintel_watch *w, int events);
void lk_watch_stop_fn(lintel_watch *w);
/* Stops in's watches (before worker_fini), then frees them (after). */
void lk_watches_disarm_instance(struct lk_instance *in);
void lk_watches_free_instance(struct lk_instance *in);
/* Runs the callbacks of ready watches, without waiting, until none is ready. Returns how many
 * ran. */
unsigned lk_watches_dispatch(void);

/* ---- shared.c ---- */
int lk_counter_add_fn(const lintel_instance *self, const char *key, int64_t delta,
                      uint64_t window_ms, int64_t *value, uint64_t *reset_ms);
int lk_cache_set_fn(const lintel_instance *self, const char *key, const void *value, size_t len,
                    uint64_t ttl_ms);
long lk_cache_get_fn(const lintel_instance *self, const char *key, void *buf, size_t cap);
int lk_counter_window_fn(const lintel_instance *self, const char *key, int64_t delta,
                         uint64_t window_ms, struct lintel_counter_window *out);
int lk_cache_add_fn(const lintel_instance *self, const char *key, const void *value, size_t len,
                    uint64_t ttl_ms);

#endif
