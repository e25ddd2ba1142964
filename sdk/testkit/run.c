/* Running one instance's handler on a request as lintel's chain does (core/phases.c): results,
 * PAUSE and resume, the body-buffering rerun, response body chunks. */
#include <stdio.h>
#include <string.h>

#include "testkit-internal.h"

static const char *phase_name(enum lintel_phase phase)
{
    static const char *const names[] = {"rewrite",          "access",        "balance",
                                        "response_headers", "response_body", "log"};
    return (unsigned)phase < sizeof(names) / sizeof(names[0]) ? names[phase] : "unknown";
}

static lintel_handler_fn handler_for(const struct lintel_plugin *d, enum lintel_phase phase)
{
    switch (phase) {
    case LINTEL_PHASE_REWRITE:
        return d->rewrite;
    case LINTEL_PHASE_ACCESS:
        return d->access;
    case LINTEL_PHASE_BALANCE:
        return d->balance;
    case LINTEL_PHASE_RESPONSE_HEADERS:
        return d->response_headers;
    case LINTEL_PHASE_RESPONSE_BODY:
        return d->response_body;
    case LINTEL_PHASE_LOG:
        return d->log;
    }
    return NULL;
}

/* The request's answer is an error of the gateway's own making (a failed plugin, 413). */
static void fail(struct lk_req *r, int status, const char *error)
{
    lk_resp_fail(r, status, error);
    if (r->phase <= LINTEL_PHASE_BALANCE)
        lk_resp_apply_pending(r); /* the response head goes out now */
}

static void plugin_failed(struct lk_req *r)
{
    char msg[200];
    snprintf(msg, sizeof(msg), "plugin %s/%s failed", r->running->plugin->desc.name,
             r->running->name);
    lk_log_as(r->running, LINTEL_LOG_LEVEL_ERROR, "%s handler failed: 500", phase_name(r->phase));
    fail(r, 500, msg);
}

/* Applies a result the chain goes on with (RESPOND, ERROR, unknown) and returns it. */
static enum lintel_result settle(struct lk_req *r, enum lintel_result res)
{
    switch (res) {
    case LINTEL_CONTINUE:
        return res;
    case LINTEL_RESPOND:
        if (r->own) {
            if (r->phase <= LINTEL_PHASE_BALANCE)
                lk_resp_apply_pending(r);
            return res;
        }
        lk_violation("%s: %s returned RESPOND without setting a response", r->running->name,
                     phase_name(r->phase));
        break;
    case LINTEL_ERROR:
        break;
    case LINTEL_PAUSE:
        lk_violation("%s: PAUSE as the final result of %s", r->running->name, phase_name(r->phase));
        break;
    default: /* docs/abi.md: an unknown result counts as LINTEL_ERROR */
        lk_violation("%s: %s returned unknown result %d", r->running->name, phase_name(r->phase),
                     (int)res);
        break;
    }
    plugin_failed(r);
    return LINTEL_ERROR;
}

/* The body the handler asked for arrives while it is paused: 413 over its cap, else it runs
 * again. Returns 1 to run the handler again, 0 when the request ended. */
static int body_arrives(struct lk_req *r)
{
    r->rerun = false;
    if (r->body_in_len > r->body_cap) {
        fail(r, 413, "request body too large");
        return 0;
    }
    r->body_buffered = true;
    return 1;
}

/* REWRITE, ACCESS, BALANCE and RESPONSE_HEADERS: one handler, as run_chain runs each. */
static enum lintel_result run_request_phase(struct lk_req *r, lintel_handler_fn fn, void *data)
{
    for (;;) {
        r->in_handler = true;
        enum lintel_result res = fn(&r->handle, data);
        r->in_handler = false;
        if (r->resending) { /* resend(): the request goes upstream again, whatever res says */
            r->resending = false;
            if (res != LINTEL_CONTINUE)
                lk_violation("%s: resend() called but RESPONSE_HEADERS returned %d, not CONTINUE",
                             r->running->name, (int)res);
            return LINTEL_CONTINUE;
        }
        if (r->deferred_status) { /* 413 found inside req_body_buffer: that answer wins */
            int status = r->deferred_status;
            r->deferred_status = 0;
            fail(r, status, "request body too large");
            return LINTEL_RESPOND;
        }
        if (res != LINTEL_PAUSE) {
            if (r->rerun) {
                lk_violation("%s: req_body_buffer returned 0 but %s returned %d, not PAUSE",
                             r->running->name, phase_name(r->phase), (int)res);
                r->rerun = false;
            }
            if (r->resume_pending) {
                lk_violation("%s: resume() called but %s returned %d, not PAUSE", r->running->name,
                             phase_name(r->phase), (int)res);
                r->resume_pending = false;
            }
            return settle(r, res);
        }
        if (r->resume_pending) { /* resume() came before the handler returned */
            r->resume_pending = false;
            r->resumed = true;
            r->resumed_with = settle(r, r->resume_result);
            return r->resumed_with;
        }
        if (r->phase > LINTEL_PHASE_BALANCE) {
            lk_log_as(r->running, LINTEL_LOG_LEVEL_ERROR,
                      "paused in a response phase, which is not supported");
            return settle(r, LINTEL_ERROR);
        }
        if (r->rerun) { /* waiting for the body: it comes in now */
            if (!body_arrives(r))
                return LINTEL_RESPOND;
            continue;
        }
        r->paused = true;
        return LINTEL_PAUSE;
    }
}

/* RESPONSE_BODY: the handler sees each chunk, then an empty last one; failures are logged and
 * the response goes on. */
static enum lintel_result run_body_phase(struct lk_req *r, lintel_handler_fn fn, void *data)
{
    if (r->own)
        return LINTEL_CONTINUE; /* lintel writes its own responses at once, past this phase */
    enum lintel_result out = LINTEL_CONTINUE;
    size_t step = r->chunk_size ? r->chunk_size : r->body_len;
    size_t off = 0;
    for (;;) {
        bool last = off >= r->body_len;
        size_t n = last ? 0 : (r->body_len - off < step ? r->body_len - off : step);
        r->chunk = (struct lintel_str){last ? NULL : r->body + off, n};
        r->chunk_last = last;
        r->in_handler = true;
        enum lintel_result res = fn(&r->handle, data);
        r->in_handler = false;
        if (res == LINTEL_PAUSE || res == LINTEL_ERROR || (res == LINTEL_RESPOND && !r->own)) {
            lk_log_as(r->running, LINTEL_LOG_LEVEL_ERROR,
                      "failed on a response body chunk (result %d): ignored", (int)res);
            out = LINTEL_ERROR;
        }
        if (last)
            break;
        off += n;
    }
    r->chunk = (struct lintel_str){NULL, 0};
    return out;
}

enum lintel_result lk_run(struct lk_instance *in, struct lk_req *r, enum lintel_phase phase)
{
    if (r->paused) {
        lk_violation("lk_run(%s) on a request paused in %s and not resumed", phase_name(phase),
                     phase_name(r->phase));
        return LINTEL_ERROR;
    }
    lintel_handler_fn fn = handler_for(&in->plugin->desc, phase);
    r->phase = phase;
    r->running = in;
    r->resumed = false;
    if (phase >= LINTEL_PHASE_RESPONSE_HEADERS) {
        if (r->status == 0)
            lk_req_set_response(r, 200, NULL);
        lk_resp_apply_pending(r);
    }
    if (!fn)
        return LINTEL_CONTINUE;

    switch (phase) {
    case LINTEL_PHASE_RESPONSE_BODY:
        return run_body_phase(r, fn, in->data);
    case LINTEL_PHASE_LOG: {
        r->in_handler = true;
        enum lintel_result res = fn(&r->handle, in->data); /* the response is gone: unused */
        r->in_handler = false;
        if (res == LINTEL_PAUSE)
            lk_violation("%s: PAUSE in log: the request ends right after", in->name);
        return res;
    }
    default:
        return run_request_phase(r, fn, in->data);
    }
}

void lk_resume_fn(lintel_req *r, enum lintel_result result)
{
    struct lk_req *k = r->kit;
    if (k->in_handler) {
        if (k->resume_pending)
            lk_violation("resume() called twice for one PAUSE");
        k->resume_pending = true;
        k->resume_result = result;
        return;
    }
    if (!k->paused) {
        lk_violation("resume() on a request that is not paused%s",
                     k->resumed ? " (called twice for one PAUSE?)" : "");
        return;
    }
    k->paused = false;
    k->resumed = true;
    if (k->rerun && !k->body_buffered)
        lk_violation("resume() while waiting for the request body");
    k->resumed_with = settle(k, result);
}

int lk_resumed(const struct lk_req *r, enum lintel_result *out)
{
    if (!r->resumed)
        return 0;
    if (out)
        *out = r->resumed_with;
    return 1;
}
