/* Running a request through its plugin chain: REWRITE, ACCESS, BALANCE before the upstream,
 * RESPONSE_HEADERS and RESPONSE_BODY on the way back, LOG at the end; PAUSE and resume. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "balance.h"
#include "log.h"
#include "proxy-internal.h"

enum outcome { OUT_DONE, OUT_PAUSED, OUT_RESPOND, OUT_ERROR, OUT_DEFERRED, OUT_RESEND };

static const struct lintel_chain *route_chain(struct lintel_request *req)
{
    const struct lintel_plugins *p = req->ws->snap->plugins;
    if (!p)
        return NULL;
    return req->route ? &p->routes[req->route->index] : &p->global;
}

/* The sticky key that picks a plugin version for this request. */
static struct lintel_str sticky_key(struct lintel_request *req, const struct lintel_chain_slot *s)
{
    const struct lintel_host_api *h = lintel_host_api_get();
    struct lintel_str k = {req->id_value, strlen(req->id_value)};
    struct lintel_str v = {0};
    switch (s->sticky) {
    case STICKY_HEADER:
        v = h->req_header((lintel_req *)req, s->sticky_name);
        break;
    case STICKY_COOKIE:
        v = h->req_cookie((lintel_req *)req, s->sticky_name);
        break;
    case STICKY_ARG:
        v = h->req_arg((lintel_req *)req, s->sticky_name);
        break;
    case STICKY_IP:
        v = h->req_client_addr((lintel_req *)req);
        break;
    case STICKY_REQUEST_ID:
        break;
    }
    return v.ptr ? v : k;
}

int lintel_phases_init(struct lintel_request *req)
{
    const struct lintel_chain *ch = route_chain(req);
    if (!ch || ch->nslots == 0)
        return 0;
    req->chosen = lintel_arena_alloc(req->arena, ch->nslots * sizeof(*req->chosen));
    if (!req->chosen)
        return -1;
    for (unsigned i = 0; i < ch->nslots; i++) {
        const struct lintel_chain_slot *s = &ch->slots[i];
        unsigned pick = 0;
        if (s->nalts > 1) {
            struct lintel_str k = sticky_key(req, s);
            unsigned point = (unsigned)(lintel_hash64(k.ptr, k.len) % s->weights[s->nalts - 1]);
            while (pick + 1 < s->nalts && point >= s->weights[pick])
                pick++;
        }
        req->chosen[i] = s->alts[pick];
        lintel_image_inflight_add(req->chosen[i]->img, req->client->worker->id,
                                  lintel_host_workers(), 1);
    }
    req->chain = ch;
    return 0;
}

/* Runs the current phase's handlers from req->slot on. */
static enum outcome run_chain(struct lintel_request *req)
{
    const struct lintel_chain *ch = req->chain;
    bool replaced = false;
    if (!ch || !(ch->phases & (1u << req->phase)))
        return OUT_DONE;
    for (; req->slot < ch->nslots; req->slot++) {
        struct lintel_instance *inst = req->chosen[req->slot];
        lintel_handler_fn h = lintel_instance_handler(inst, (enum lintel_phase)req->phase);
        if (!h)
            continue;
        req->in_handler = true;
        enum lintel_result res = h((lintel_req *)req, inst->instance);
        req->in_handler = false;
        if (req->resending) { /* resend(): the request goes upstream again, whatever res says */
            req->resending = false;
            if (res != LINTEL_CONTINUE)
                lintel_warn("plugin %s/%s called resend() but returned %d, not CONTINUE",
                            inst->plugin, inst->name, (int)res);
            return OUT_RESEND;
        }
        if (req->deferred_status)
            return OUT_DEFERRED; /* e.g. 413 from req_body_buffer: that answer wins */
        if ((unsigned)res > LINTEL_ERROR) {
            lintel_error("plugin %s/%s returned unknown result %d", inst->plugin, inst->name,
                         (int)res);
            res = LINTEL_ERROR; /* docs/abi.md: unknown results are errors */
        }
        if (res == LINTEL_PAUSE) {
            if (req->resume_pending) { /* resume() came before the handler returned */
                req->resume_pending = false;
                res = (enum lintel_result)req->resume_result;
            } else if (req->phase <= LINTEL_PHASE_BALANCE) {
                req->paused = true;
                return OUT_PAUSED;
            } else {
                lintel_error("plugin %s/%s paused in a response phase, which is not supported",
                             inst->plugin, inst->name);
                res = LINTEL_ERROR;
            }
        }
        if (res == LINTEL_RESPOND) {
            /* In RESPONSE_HEADERS a replaced response still passes the handlers after this one
             * (cors headers on a fallback answer); elsewhere RESPOND ends the chain. */
            if (req->own && req->phase == LINTEL_PHASE_RESPONSE_HEADERS) {
                replaced = true;
                continue;
            }
            if (req->own)
                return OUT_RESPOND;
            lintel_error("plugin %s/%s returned RESPOND without setting a response", inst->plugin,
                         inst->name);
            res = LINTEL_ERROR;
        }
        if (res == LINTEL_ERROR) {
            req->failed = inst;
            return OUT_ERROR;
        }
    }
    return replaced ? OUT_RESPOND : OUT_DONE;
}

static void fail_plugin(struct lintel_request *req)
{
    char msg[200];
    snprintf(msg, sizeof(msg), "plugin %s/%s failed", req->failed->plugin, req->failed->name);
    lintel_error("%s %s: %s (request %s)", req->head.method_str, req->head.path, msg,
                 req->id_value);
    req->own = false;
    lintel_request_fail(req, 500, msg);
}

/* Drives the request phases from where the request stands. */
static void drive(struct lintel_request *req)
{
    while (req->phase <= LINTEL_PHASE_BALANCE) {
        switch (run_chain(req)) {
        case OUT_PAUSED:
            return;
        case OUT_RESPOND:
            lintel_request_send_own(req);
            return;
        case OUT_ERROR:
            fail_plugin(req);
            return;
        case OUT_DEFERRED: {
            int status = req->deferred_status;
            req->deferred_status = 0;
            lintel_request_fail(req, status, req->deferred_error);
            return;
        }
        case OUT_RESEND: /* resend() only works in RESPONSE_HEADERS */
        case OUT_DONE:
            break;
        }
        req->phase++;
        req->slot = 0;
    }
    lintel_request_proceed(req);
}

void lintel_phases_run(struct lintel_request *req)
{
    req->phase = LINTEL_PHASE_REWRITE;
    req->slot = 0;
    drive(req);
}

/* host API: resume */
void lintel_phases_resume(struct lintel_request *req, enum lintel_result res)
{
    if (req->in_handler) {
        req->resume_pending = true;
        req->resume_result = res;
        return;
    }
    if (!req->paused) {
        lintel_warn("resume() on request %s that is not paused: ignored", req->id_value);
        return;
    }
    req->paused = false;
    if (res == LINTEL_PAUSE)
        res = LINTEL_ERROR;
    if (res == LINTEL_RESPOND && !req->own)
        res = LINTEL_ERROR;
    if (res == LINTEL_ERROR) {
        req->failed = req->chosen[req->slot];
        fail_plugin(req);
        return;
    }
    if (res == LINTEL_RESPOND) {
        lintel_request_send_own(req);
        return;
    }
    req->slot++;
    drive(req);
}

void lintel_phases_body_buffered(struct lintel_request *req)
{
    if (!req->paused || !req->rerun)
        return;
    req->paused = false;
    req->rerun = false;
    drive(req); /* same slot: the handler that asked runs again and finds the body */
}

int lintel_phases_response_headers(struct lintel_request *req)
{
    lintel_host_apply_pending(req); /* headers set before the response existed */
    if (req->resp_phase_done || req->in_resp_phase || !req->chain ||
        !(req->chain->phases & (1u << LINTEL_PHASE_RESPONSE_HEADERS)))
        return 0;
    req->in_resp_phase = true;
    req->resp_phase_done = true; /* once per request, whoever made the response */
    req->phase = LINTEL_PHASE_RESPONSE_HEADERS;
    req->slot = 0;
    enum outcome o = run_chain(req);
    req->in_resp_phase = false;
    if (o == OUT_RESEND) {
        req->resp_phase_done = false; /* the next response runs the handlers again */
        return 2;
    }
    return o == OUT_RESPOND ? 1 : (o == OUT_ERROR || o == OUT_DEFERRED) ? -1 : 0;
}

void lintel_phases_response_body(struct lintel_request *req, const char *data, size_t len,
                                 bool last)
{
    if (!req->chain || !(req->chain->phases & (1u << LINTEL_PHASE_RESPONSE_BODY)))
        return;
    req->chunk.ptr = data;
    req->chunk.len = len;
    req->chunk_last = last;
    req->phase = LINTEL_PHASE_RESPONSE_BODY;
    req->slot = 0;
    req->in_resp_phase = true;
    if (run_chain(req) == OUT_ERROR)
        lintel_error("plugin %s/%s failed on a response body chunk (request %s): ignored",
                     req->failed->plugin, req->failed->name, req->id_value);
    req->in_resp_phase = false;
    req->chunk.ptr = NULL;
    req->chunk.len = 0;
}

void lintel_phases_end(struct lintel_request *req)
{
    const struct lintel_chain *ch = req->chain;
    if (!ch)
        return;
    if (ch->phases & (1u << LINTEL_PHASE_LOG)) {
        req->phase = LINTEL_PHASE_LOG;
        req->in_resp_phase = true;
        for (req->slot = 0; req->slot < ch->nslots; req->slot++) {
            struct lintel_instance *inst = req->chosen[req->slot];
            lintel_handler_fn h = lintel_instance_handler(inst, LINTEL_PHASE_LOG);
            if (h)
                h((lintel_req *)req, inst->instance); /* the response is gone: result unused */
        }
    }
    for (unsigned i = 0; i < ch->nslots; i++)
        lintel_image_inflight_add(req->chosen[i]->img, req->client->worker->id,
                                  lintel_host_workers(), -1);
    const struct lintel_plugins *p = req->ws->snap->plugins;
    for (unsigned i = 0; req->ctx && i < p->ninstances; i++)
        if (req->ctx[i].cleanup) {
            void (*fn)(void *) = req->ctx[i].cleanup;
            req->ctx[i].cleanup = NULL;
            fn(req->ctx[i].data);
        }
}
