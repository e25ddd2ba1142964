/* logging: the http sink. Each worker keeps its records in one bounded buffer and POSTs them in
 * batches (newline-delimited records) with worker_http_call: when batch_size records are
 * waiting, and every flush_interval for fewer. One call at a time per worker; a failed batch
 * (transport error or a status other than 2xx) is retried after retry_backoff, doubling, and
 * dropped (counted) after `retries` retries. Records that find the buffer full are dropped
 * (counted) by the LOG handler: a slow or dead collector never delays a request.
 *
 * The buffer: [0, batch_len) is the batch on the wire or waiting for its retry; new records go
 * after `used`, never moving the batch, so its bytes stay valid for the call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logging-internal.h"

#define LG_MAX_BACKOFF_MS 60000

struct lg_http_worker {
    struct lg_instance *in;
    char *buf;
    size_t cap, used, nrec;
    size_t batch_len, batch_nrec; /* 0: no batch chosen */
    int inflight;
    lintel_timer *retry; /* a retry is scheduled */
    unsigned attempt;    /* failed attempts of the current batch */
    int failing;         /* logged: the sink is failing, until a batch gets through */
    uint64_t written, dropped, errors;
};

struct lg_http_worker *lg_http_worker_new(struct lg_instance *in)
{
    struct lg_http_worker *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->buf = malloc(in->cfg.queue_size);
    if (!h->buf) {
        free(h);
        return NULL;
    }
    h->in = in;
    h->cap = in->cfg.queue_size;
    return h;
}

/* Forgets the batch (sent, or given up). */
static void remove_batch(struct lg_http_worker *h)
{
    memmove(h->buf, h->buf + h->batch_len, h->used - h->batch_len);
    h->used -= h->batch_len;
    h->nrec -= h->batch_nrec;
    h->batch_len = h->batch_nrec = 0;
}

static void send_batch(struct lg_http_worker *h);

static void on_retry(void *arg)
{
    struct lg_http_worker *h = arg;
    h->retry = NULL;
    send_batch(h);
}

static void failed(struct lg_http_worker *h, const char *why)
{
    const struct lintel_host_api *host = h->in->host;
    const struct lg_config *c = &h->in->cfg;
    h->errors++;
    if (++h->attempt > c->retries) {
        host->log(h->in->self, LINTEL_LOG_LEVEL_WARN,
                  "dropped %zu records: POST %s failed %u times (last: %s)", h->batch_nrec, c->url,
                  h->attempt, why);
        h->dropped += h->batch_nrec;
        h->attempt = 0;
        remove_batch(h);
        if (h->nrec >= c->batch_size)
            send_batch(h);
        return;
    }
    if (!h->failing)
        host->log(h->in->self, LINTEL_LOG_LEVEL_WARN, "POST %s failed (%s): retrying", c->url, why);
    h->failing = 1;
    uint64_t ms = c->retry_backoff_ms;
    for (unsigned i = 1; i < h->attempt && ms < LG_MAX_BACKOFF_MS; i++)
        ms *= 2;
    h->retry = host->worker_timer(h->in->self, ms < LG_MAX_BACKOFF_MS ? ms : LG_MAX_BACKOFF_MS, 0,
                                  on_retry, h);
    if (!h->retry) { /* no timer: nothing would ever retry */
        h->dropped += h->batch_nrec;
        h->attempt = 0;
        remove_batch(h);
    }
}

static void on_done(void *arg, const struct lintel_http_response *resp)
{
    struct lg_http_worker *h = arg;
    h->inflight = 0;
    if (resp->status < 200 || resp->status > 299) {
        char why[128];
        if (resp->status)
            snprintf(why, sizeof(why), "status %d", resp->status);
        else
            snprintf(why, sizeof(why), "%s", resp->error ? resp->error : "no answer");
        failed(h, why);
        return;
    }
    h->written += h->batch_nrec;
    h->attempt = 0;
    h->failing = 0;
    remove_batch(h);
    if (h->nrec >= h->in->cfg.batch_size)
        send_batch(h);
}

/* Sends the current batch, choosing it (the first batch_size records) when there is none. */
static void send_batch(struct lg_http_worker *h)
{
    const struct lg_config *c = &h->in->cfg;
    if (!h->batch_len) {
        const char *p = h->buf, *end = h->buf + h->used;
        while (h->batch_nrec < c->batch_size && p < end) {
            p = memchr(p, '\n', (size_t)(end - p)) + 1; /* every record ends with '\n' */
            h->batch_nrec++;
        }
        h->batch_len = (size_t)(p - h->buf);
    }
    if (!h->batch_len)
        return;
    struct lintel_http_request spec = {
        .struct_size = sizeof(spec),
        .method = "POST",
        .url = c->url,
        .headers = (const char *const *)c->http_headers,
        .body = h->buf,
        .body_len = h->batch_len,
        .timeout_ms = c->timeout_ms,
    };
    h->inflight = 1;
    if (h->in->host->worker_http_call(h->in->self, &spec, on_done, h) < 0) {
        h->inflight = 0;
        failed(h, "cannot start the call");
    }
}

int lg_http_push(struct lg_http_worker *h, const char *rec, size_t len)
{
    if (h->cap - h->used < len)
        return -1;
    memcpy(h->buf + h->used, rec, len);
    h->used += len;
    h->nrec++;
    if (!h->inflight && !h->retry && h->nrec >= h->in->cfg.batch_size)
        send_batch(h);
    return 0;
}

void lg_http_tick(struct lg_http_worker *h)
{
    if (!h->inflight && !h->retry && h->nrec)
        send_batch(h);
}

void lg_http_take_counts(struct lg_http_worker *h, uint64_t *written, uint64_t *dropped,
                         uint64_t *errors)
{
    *written += h->written;
    *dropped += h->dropped;
    *errors += h->errors;
    h->written = h->dropped = h->errors = 0;
}

void lg_http_worker_free(struct lg_http_worker *h, uint64_t *dropped)
{
    if (!h)
        return;
    *dropped += h->nrec;
    free(h->buf);
    free(h);
}
