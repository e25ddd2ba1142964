/* logging: one access record per request, written after the response (LOG phase).
 *
 *     plugins: [{ name: logging, config: { sink: { type: file, path: /var/log/lintel.log } } }]
 *
 * The LOG handler gathers the request's facts, renders the record (JSON line or template) into
 * its worker's preallocated buffer and hands it to the sink without blocking and without
 * allocating: file and stdout through a per-worker ring drained by the instance's writer thread
 * (writer.c), http through a per-worker batch buffer POSTed from the worker (http_sink.c). A
 * full queue drops the record and counts it (metric "dropped"). docs/plugins/logging.md is the
 * user's reference. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lintel/hash.h>

#include "logging-internal.h"

/* ---- metrics ------------------------------------------------------------------------------- */

static void report(const struct lg_instance *in, uint64_t written, uint64_t dropped,
                   uint64_t errors)
{
    if (written)
        in->host->metric_add(in->self, "written", written);
    if (dropped)
        in->host->metric_add(in->self, "dropped", dropped);
    if (errors)
        in->host->metric_add(in->self, "sink_errors", errors);
}

/* Reports what worker w and the writer thread counted since the last time (worker thread).
 * Drops are counted in plain per-worker counters on the request path and reported here, so a
 * sink that is down costs no shared cache line per request. */
static void publish_metrics(struct lg_instance *in, struct lg_worker *w)
{
    uint64_t written = 0, dropped = w->dropped, errors = 0;
    w->dropped = 0;
    if (w->http)
        lg_http_take_counts(w->http, &written, &dropped, &errors);
    if (in->writer)
        lg_writer_take_counts(in->writer, &written, &dropped, &errors);
    report(in, written, dropped, errors);
}

/* ---- instance (main thread) ---------------------------------------------------------------- */

static void instance_free(struct lg_instance *in)
{
    for (unsigned i = 0; i < LG_MAX_WORKERS; i++) {
        struct lg_worker *w = atomic_load(&in->workers[i]);
        if (!w)
            continue;
        lg_ring_free(&w->ring);
        free(w->scratch);
        free(w);
    }
    lg_config_free(&in->cfg);
    free(in);
}

static int create(const struct lintel_host_api *host, lintel_instance *self,
                  const lintel_cfg *config, lintel_cfg_error *err, void **instance)
{
    struct lg_instance *in = calloc(1, sizeof(*in));
    if (!in) {
        host->cfg_error(err, config, "out of memory");
        return -1;
    }
    in->host = host;
    in->self = self;
    if (lg_config_parse(host, self, config, err, &in->cfg) < 0) {
        free(in);
        return -1;
    }
    if (in->cfg.sink == LG_SINK_HTTP && (!host->worker_http_call || !host->worker_timer)) {
        host->cfg_error(err, host->cfg_get(config, "sink"),
                        "this lintel cannot make outbound HTTP calls from plugins");
        instance_free(in);
        return -1;
    }
    if (in->cfg.sink != LG_SINK_HTTP) {
        /* Opened now, so that a bad path fails the configuration (also lintel -t). */
        char why[512];
        in->writer = lg_writer_start(in, why, sizeof(why));
        if (!in->writer) {
            const lintel_cfg *sink = host->cfg_get(config, "sink");
            const lintel_cfg *path = sink ? host->cfg_get(sink, "path") : NULL;
            host->cfg_error(err, path ? path : config, "%s", why);
            instance_free(in);
            return -1;
        }
    }
    *instance = in;
    return 0;
}

/* Every worker has finished (worker_fini) by now; the writer writes what they left queued. */
static void destroy(void *instance)
{
    struct lg_instance *in = instance;
    uint64_t written = 0, dropped = 0, errors = 0;
    lg_writer_stop(in->writer, &written, &dropped, &errors);
    in->writer = NULL;
    report(in, written, dropped, errors);
    instance_free(in);
}

/* SIGUSR1 (main thread): the writer thread reopens the file once it has written what is
 * queued, so records before the signal land in the file logrotate moved. */
static void reopen(void *instance)
{
    struct lg_instance *in = instance;
    if (in->writer)
        lg_writer_reopen(in->writer);
}

/* ---- workers ------------------------------------------------------------------------------- */

static void on_tick(void *arg)
{
    struct lg_worker *w = arg;
    if (w->http)
        lg_http_tick(w->http);
    publish_metrics(w->in, w);
}

static struct lg_worker *worker_new(struct lg_instance *in, unsigned worker)
{
    struct lg_worker *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->in = in;
    w->scratch = malloc(in->cfg.max_record);
    if (!w->scratch ||
        (in->cfg.sink != LG_SINK_HTTP && lg_ring_init(&w->ring, in->cfg.queue_size) < 0)) {
        free(w->scratch);
        free(w);
        return NULL;
    }
    lg_clock_init(&w->clock);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    w->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)worker << 48) ^
             (uint64_t)(uintptr_t)w;
    w->rng |= 1;
    return w;
}

static int worker_init(void *instance, unsigned worker)
{
    struct lg_instance *in = instance;
    if (worker >= LG_MAX_WORKERS) {
        in->host->log(in->self, LINTEL_LOG_LEVEL_ERROR, "worker %u: at most %u workers", worker,
                      LG_MAX_WORKERS);
        return -1;
    }
    struct lg_worker *w = atomic_load_explicit(&in->workers[worker], memory_order_relaxed);
    if (!w) {
        if (!(w = worker_new(in, worker)))
            return -1;
        /* The writer thread finds the ring through this pointer: publish it filled in. */
        atomic_store_explicit(&in->workers[worker], w, memory_order_release);
        unsigned n = atomic_load(&in->nworkers);
        while (n < worker + 1 && !atomic_compare_exchange_weak(&in->nworkers, &n, worker + 1))
            ;
    }
    if (in->cfg.sink == LG_SINK_HTTP && !w->http && !(w->http = lg_http_worker_new(in)))
        return -1;
    w->timer = in->host->worker_timer(in->self, in->cfg.flush_ms, 1, on_tick, w);
    if (!w->timer) {
        lg_http_worker_free(w->http, &w->dropped);
        w->http = NULL;
        return -1;
    }
    return 0;
}

/* The host has stopped this worker's timer and cancelled its calls. The ring stays: the writer
 * thread still writes what it holds. */
static void worker_fini(void *instance, unsigned worker)
{
    struct lg_instance *in = instance;
    struct lg_worker *w = worker < LG_MAX_WORKERS ? atomic_load(&in->workers[worker]) : NULL;
    if (!w)
        return;
    w->timer = NULL;
    if (w->http) {
        lg_http_worker_free(w->http, &w->dropped); /* unsent records are lost: counted */
        w->http = NULL;
    }
    publish_metrics(in, w);
}

/* ---- requests (worker threads) ------------------------------------------------------------- */

struct req_ref {
    const struct lintel_host_api *host;
    lintel_req *r;
};

static int field_at(void *ctx, size_t i, struct lintel_str *key, struct lintel_str *value)
{
    struct req_ref *ref = ctx;
    return ref->host->log_field_at(ref->r, i, key, value);
}

static struct lintel_str header(void *ctx, const char *name)
{
    struct req_ref *ref = ctx;
    return ref->host->req_header(ref->r, name);
}

/* FNV-1a of the id, then a 64-bit finaliser: ids that differ in one character land far apart. */
static uint64_t id_hash(struct lintel_str id)
{
    return lintel_mix64(lintel_fnv1a64(LINTEL_FNV1A64_OFFSET, id.ptr, id.len));
}

static uint64_t next_random(struct lg_worker *w)
{
    /* xorshift64*: per worker, no shared state */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 0x2545f4914f6cdd1dULL;
}

static int sampled(const struct lg_config *c, struct lg_worker *w, struct lintel_str id)
{
    if (c->sample <= 0)
        return 0;
    uint64_t h = c->sample_by == LG_SAMPLE_REQUEST_ID && id.len ? id_hash(id) : next_random(w);
    return h < c->sample_threshold;
}

static enum lintel_result on_log(lintel_req *r, void *instance)
{
    struct lg_instance *in = instance;
    const struct lintel_host_api *h = in->host;
    const struct lg_config *c = &in->cfg;
    unsigned wi = h->req_worker(r);
    struct lg_worker *w =
        wi < LG_MAX_WORKERS ? atomic_load_explicit(&in->workers[wi], memory_order_relaxed) : NULL;
    if (!w) { /* worker_init failed on this worker (logged then) */
        h->metric_add(in->self, "dropped", 1);
        return LINTEL_CONTINUE;
    }
    struct lintel_str id = h->req_id(r);
    if (c->sample < 1 && !sampled(c, w, id))
        return LINTEL_CONTINUE;

    struct req_ref ref = {h, r};
    struct lg_facts f = {
        .info = {.struct_size = sizeof(f.info)},
        .request_id = id,
        .remote_addr = h->req_client_addr(r),
        .method = h->req_method(r),
        .route = h->req_route(r),
        .consumer = h->consumer_name(r),
        .ctx = &ref,
        .field_at = field_at,
        .header = header,
    };
    if (h->req_info(r, &f.info) < 0)
        f.info = (struct lintel_req_info){0};
    lg_facts_split_target(&f);

    size_t n = lg_render(c, &f, &w->clock, w->scratch, c->max_record);
    if (!n) {
        w->dropped++;
        return LINTEL_CONTINUE;
    }
    if (c->sink == LG_SINK_HTTP) {
        if (!w->http || lg_http_push(w->http, w->scratch, n) < 0)
            w->dropped++;
        return LINTEL_CONTINUE;
    }
    long queued = lg_ring_push(&w->ring, w->scratch, n);
    if (queued < 0)
        w->dropped++;
    else if ((size_t)queued > w->ring.cap / 4)
        lg_writer_kick(in->writer);
    return LINTEL_CONTINUE;
}

LINTEL_PLUGIN_EXPORT const struct lintel_plugin lintel_plugin_v1 = {
    LINTEL_PLUGIN_INIT,
    .name = "logging",
    .version = "1.0.1",
    /* Last in LOG by default, so that fields other LOG handlers add are in the record. */
    .priority = -1000,
    .create = create,
    .destroy = destroy,
    .worker_init = worker_init,
    .worker_fini = worker_fini,
    .log = on_log,
    .reopen = reopen,
};
