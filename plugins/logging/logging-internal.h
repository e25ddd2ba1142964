/* logging: what the plugin's files share. Nothing here is exported from logging.so (hidden
 * visibility); the one exported symbol is the descriptor in logging.c.
 *
 *   config.c      the `config:` map -> struct lg_config (create, main thread)
 *   escape.c      byte-level output: JSON / default escaping, numbers, times
 *   format.c      one record: the JSON object, or a compiled template
 *   ring.c        per-worker single-producer single-consumer byte queue
 *   writer.c      file and stdout sinks: the writer thread
 *   http_sink.c   http sink: batches POSTed from each worker
 *   logging.c     the descriptor, instance lifecycle, the LOG handler */
#ifndef LINTEL_LOGGING_INTERNAL_H
#define LINTEL_LOGGING_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <lintel/plugin.h>

/* Workers an instance can serve: plugin.h gives no worker count at create time, so per-worker
 * state hangs off a fixed table indexed by the worker index. */
#define LG_MAX_WORKERS 1024

/* ---- configuration (config.c) ------------------------------------------------------------- */

enum lg_format { LG_FORMAT_JSON, LG_FORMAT_TEMPLATE };
enum lg_escape { LG_ESCAPE_DEFAULT, LG_ESCAPE_JSON };
enum lg_sink_type { LG_SINK_STDOUT, LG_SINK_FILE, LG_SINK_HTTP };
enum lg_sample_by { LG_SAMPLE_REQUEST_ID, LG_SAMPLE_RANDOM };

/* Template variables; lg_var_names (format.c) spells them. */
enum lg_var {
    LG_VAR_TIME,
    LG_VAR_TIME_LOCAL,
    LG_VAR_MSEC,
    LG_VAR_REQUEST_ID,
    LG_VAR_REMOTE_ADDR,
    LG_VAR_METHOD,
    LG_VAR_HOST,
    LG_VAR_PATH,
    LG_VAR_QUERY,
    LG_VAR_REQUEST_URI,
    LG_VAR_REQUEST,
    LG_VAR_PROTOCOL,
    LG_VAR_STATUS,
    LG_VAR_BYTES_RECEIVED,
    LG_VAR_BYTES_SENT,
    LG_VAR_REQUEST_TIME,
    LG_VAR_UPSTREAM,
    LG_VAR_UPSTREAM_ADDR,
    LG_VAR_UPSTREAM_CONNECT_TIME,
    LG_VAR_UPSTREAM_RESPONSE_TIME,
    LG_VAR_ROUTE,
    LG_VAR_CONSUMER,
    LG_VAR_FIELDS,
    LG_VAR_NAMED,                /* the last fixed one; below take a name argument */
    LG_VAR_FIELD = LG_VAR_NAMED, /* $field_NAME: an access-record field */
    LG_VAR_HTTP,                 /* $http_NAME: a request header */
    LG_VAR_LITERAL,              /* not a variable: text copied as is */
};

/* One step of a compiled template: literal text, or a variable (with its name argument for
 * $field_ / $http_). text points into lg_template.pool. */
struct lg_op {
    enum lg_var var;
    const char *text;
    size_t len;
};

struct lg_template {
    struct lg_op *ops; /* malloc'd */
    size_t nops;
    char *pool; /* malloc'd: literal text and name arguments */
};

struct lg_config {
    enum lg_format format;
    struct lg_template tmpl;
    enum lg_escape escape;
    const char **req_headers; /* request header names for the JSON "headers" object (malloc'd
                                 array; the strings live in the config tree) */
    char **req_header_keys;   /* the same, lowercased (malloc'd) */
    size_t nreq_headers;

    double sample;             /* 0..1 */
    uint64_t sample_threshold; /* a record is kept when hash < threshold (sample < 1) */
    enum lg_sample_by sample_by;
    size_t max_record;

    enum lg_sink_type sink;
    const char *path; /* file; from the config tree */
    size_t queue_size;
    uint64_t flush_ms;
    /* http */
    const char *url;
    char **http_headers; /* "Name: value" lines, NULL-terminated (malloc'd, secrets resolved) */
    size_t batch_size;
    uint64_t timeout_ms;
    unsigned retries;
    uint64_t retry_backoff_ms;
};

/* Reads and checks config (NULL: every default). Returns 0, or -1 after host->cfg_error. */
int lg_config_parse(const struct lintel_host_api *host, const lintel_instance *self,
                    const lintel_cfg *config, lintel_cfg_error *err, struct lg_config *out);
void lg_config_free(struct lg_config *c);

/* Compiles a template ("$var", "${var}", "$$"). Returns 0, or -1 with a short phrase in why. */
int lg_template_compile(const char *text, struct lg_template *out, char *why, size_t whylen);
void lg_template_free(struct lg_template *t);

/* ---- output buffers and escaping (escape.c) ------------------------------------------------ */

/* A bounded output: appends past end set overflow and write nothing more. */
struct lg_out {
    char *p, *end;
    int overflow;
    size_t value_cap; /* escaped strings are cut to this many input bytes (SIZE_MAX: none) */
    int truncated;    /* a value was cut */
};

/* Bytes left in o; 0 once it has overflowed. */
static inline size_t lg_room(const struct lg_out *o)
{
    return (size_t)(o->end - o->p);
}

/* An append did not fit: end moves to p, so that every later append of one byte or more fails
 * on the room check alone (appends test no flag). */
static inline void lg_overflow(struct lg_out *o)
{
    o->overflow = 1;
    o->end = o->p;
}

/* Inline: most appends are a few constant bytes, which the compiler turns into plain stores. */
static inline void lg_put(struct lg_out *o, const char *s, size_t n)
{
    if (__builtin_expect(lg_room(o) < n, 0)) {
        lg_overflow(o);
        return;
    }
    __builtin_memcpy(o->p, s, n);
    o->p += n;
}
/* A string literal. */
#define LG_LIT(o, lit) lg_put((o), (lit), sizeof(lit) - 1)

void lg_put_u64(struct lg_out *o, uint64_t v);
/* Seconds with microseconds: 1234567 -> "1.234567". */
void lg_put_seconds(struct lg_out *o, uint64_t us);
/* s[0..n) escaped for inside a JSON string: UTF-8 kept, invalid bytes as \ufffd, control
 * characters, '"' and '\\' escaped. */
void lg_put_json_str(struct lg_out *o, const char *s, size_t n);
/* A JSON string value with quotes, or null when s is NULL. */
void lg_put_json_value(struct lg_out *o, struct lintel_str s);
/* nginx-style: '"', '\\', bytes < 0x20 and >= 0x7f as \xHH. */
void lg_put_default_str(struct lg_out *o, const char *s, size_t n);

/* Times of one second, cached per worker: the date text changes once a second. */
struct lg_clock {
    uint64_t sec; /* UINT64_MAX: nothing cached */
    char iso[20]; /* 2023-11-14T22:13:20 */
    char clf[27]; /* 14/Nov/2023:22:13:20 +0000 */
};
void lg_clock_init(struct lg_clock *c);
void lg_put_time_iso(struct lg_out *o, struct lg_clock *c, uint64_t unix_us);
void lg_put_time_clf(struct lg_out *o, struct lg_clock *c, uint64_t unix_us);
void lg_put_msec(struct lg_out *o, uint64_t unix_us);

/* ---- one record (format.c) ----------------------------------------------------------------- */

/* Everything a record says about a request, gathered once by the LOG handler (or made up by a
 * unit test). Strings are borrowed for the rendering. */
struct lg_facts {
    struct lintel_req_info info;
    struct lintel_str request_id, remote_addr, method, route, consumer;
    struct lintel_str path, query; /* split from info.target */
    /* Lazy lookups: access-record field i (0, -1 past the end), request header by name. */
    void *ctx;
    int (*field_at)(void *ctx, size_t i, struct lintel_str *key, struct lintel_str *value);
    struct lintel_str (*header)(void *ctx, const char *name);
};

/* Splits info.target into path and query. */
void lg_facts_split_target(struct lg_facts *f);

/* Renders one record, newline-terminated, into buf[0..cap). Returns its length, or 0 when it
 * does not fit even with every value cut short. */
size_t lg_render(const struct lg_config *c, const struct lg_facts *f, struct lg_clock *clk,
                 char *buf, size_t cap);

/* ---- per-worker SPSC byte queue (ring.c) --------------------------------------------------- */

/* One producer (the worker) and one consumer (the writer thread); whole records only. */
struct lg_ring {
    _Alignas(64) _Atomic uint64_t head; /* written by the producer */
    uint64_t tail_seen;                 /* producer's last view of tail */
    _Alignas(64) _Atomic uint64_t tail; /* written by the consumer */
    _Alignas(64) char *data;
    size_t cap; /* a power of two */
};

/* 0, or -1 when out of memory. cap is rounded up to a power of two. */
int lg_ring_init(struct lg_ring *r, size_t cap);
void lg_ring_free(struct lg_ring *r);
/* Producer: copies p[0..n) in whole, or nothing. Returns the bytes now queued, or -1 when full. */
long lg_ring_push(struct lg_ring *r, const char *p, size_t n);
/* Consumer: the queued bytes as at most two pieces; returns how many bytes. */
size_t lg_ring_peek(struct lg_ring *r, struct iovec iov[2]);
/* Consumer: frees n bytes from the front. */
void lg_ring_consume(struct lg_ring *r, size_t n);

/* ---- the instance (logging.c) -------------------------------------------------------------- */

struct lg_http_worker; /* http_sink.c */

/* What one worker owns. Counters are plain: only that worker writes them; they reach
 * metric_add from the worker's timer. */
struct lg_worker {
    struct lg_instance *in;
    struct lg_ring ring; /* file, stdout */
    struct lg_http_worker *http;
    char *scratch; /* max_record bytes: one record is rendered here */
    struct lg_clock clock;
    uint64_t rng;
    uint64_t dropped; /* not yet reported */
    lintel_timer *timer;
};

struct lg_writer; /* writer.c */

struct lg_instance {
    const struct lintel_host_api *host;
    const lintel_instance *self;
    struct lg_config cfg;
    struct lg_writer *writer;                            /* file, stdout */
    _Atomic(struct lg_worker *) workers[LG_MAX_WORKERS]; /* set by worker_init */
    _Atomic unsigned nworkers;                           /* highest index seen + 1 */
};

/* ---- file and stdout: the writer thread (writer.c) ----------------------------------------- */

/* Opens the sink's file (or stdout) and starts the thread. Returns NULL with why filled. */
struct lg_writer *lg_writer_start(struct lg_instance *in, char *why, size_t whylen);
/* Wakes the thread soon (a worker's queue is filling). Any thread; cheap when already woken. */
void lg_writer_kick(struct lg_writer *w);
/* Asks the thread to reopen the file after writing what is queued (SIGUSR1). Any thread. */
void lg_writer_reopen(struct lg_writer *w);
/* Counters since the last call (any thread). */
void lg_writer_take_counts(struct lg_writer *w, uint64_t *written, uint64_t *dropped,
                           uint64_t *errors);
/* Writes what is queued, stops and joins the thread, closes the file, frees w and adds the last
 * counts to the three counters. The workers must be gone. NULL is ignored. */
void lg_writer_stop(struct lg_writer *w, uint64_t *written, uint64_t *dropped, uint64_t *errors);

/* ---- http sink (http_sink.c) --------------------------------------------------------------- */

struct lg_http_worker *lg_http_worker_new(struct lg_instance *in);
/* Queues one record (worker thread); may start a batch. Returns 0, or -1 when the queue is full. */
int lg_http_push(struct lg_http_worker *h, const char *rec, size_t len);
/* The worker's timer: sends what has waited flush_interval. */
void lg_http_tick(struct lg_http_worker *h);
/* Counters since the last call. */
void lg_http_take_counts(struct lg_http_worker *h, uint64_t *written, uint64_t *dropped,
                         uint64_t *errors);
/* Forgets unsent records (counted as dropped in *dropped) and frees h. worker_fini: the host has
 * already cancelled the worker's calls and timers. */
void lg_http_worker_free(struct lg_http_worker *h, uint64_t *dropped);

#endif
