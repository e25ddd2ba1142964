/* The fake request's response: the upstream's (set by the test) or the plugins' own (respond),
 * and the headers plugins set before either exists. Mirrors core/host_api.c: respond starts a
 * new response (its headers empty); headers set before any response are applied to it when it
 * goes out. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "testkit-internal.h"

static struct lk_req *kit(lintel_req *r)
{
    return r->kit;
}

/* From RESPONSE_BODY on, the head has gone to the client; in LOG the response is sent. */
static bool head_open(const struct lk_req *k)
{
    return k->phase <= LINTEL_PHASE_RESPONSE_HEADERS;
}

static bool status_ok(int status)
{
    return status >= 100 && status <= 999;
}

/* The list resp_header_* work on: the response's, or the pending one before it exists. */
static struct lk_headers *resp_headers(struct lk_req *k)
{
    return k->status ? &k->resp_headers : &k->pending;
}

/* A new response: status and a copy of body, no headers. */
/* No response yet: what lk_resend_fn leaves, and where start_response begins. */
static void clear_response(struct lk_req *k)
{
    k->status = 0;
    k->body = NULL;
    k->body_len = 0;
    k->own = false;
    k->own_type = NULL;
    k->resp_headers.head = NULL;
    k->failure = LINTEL_UPSTREAM_OK;
}

static int start_response(struct lk_req *k, int status, const char *body, size_t len, bool own,
                          const char *type)
{
    char *copy = lk_strdup(k->arena, body, len);
    char *type_copy = type ? lk_strdup(k->arena, type, strlen(type)) : NULL;
    if (!copy || (type && !type_copy))
        return -1;
    clear_response(k);
    k->status = status;
    k->body = copy;
    k->body_len = len;
    k->own = own;
    k->own_type = type_copy;
    return 0;
}

/* ---- test side ---------------------------------------------------------------------------- */

void lk_req_set_response(struct lk_req *r, int status, const char *body)
{
    if (start_response(r, status, body, body ? strlen(body) : 0, false, NULL) < 0)
        lk_must(NULL);
}

void lk_req_set_response_header(struct lk_req *r, const char *name, const char *value)
{
    if (lk_headers_add(r->arena, &r->resp_headers, name, value, strlen(value), false) < 0)
        lk_must(NULL);
}

void lk_req_set_chunk_size(struct lk_req *r, size_t n)
{
    r->chunk_size = n;
}

int lk_resp_status(const struct lk_req *r)
{
    return r->status;
}

const char *lk_resp_header(const struct lk_req *r, const char *name)
{
    const struct lk_header *h = lk_headers_find(&r->resp_headers, name);
    if (h)
        return h->value;
    /* lintel writes the type respond gave unless a plugin set a Content-Type header. */
    if (r->own && r->body_len && strcasecmp(name, "Content-Type") == 0)
        return r->own_type;
    return NULL;
}

const char *lk_resp_body(const struct lk_req *r, size_t *len)
{
    if (len)
        *len = r->body_len;
    return r->body ? r->body : "";
}

void lk_resp_apply_pending(struct lk_req *r)
{
    if (!r->status)
        return;
    for (const struct lk_header *x = r->pending.head; x; x = x->next) {
        if (x->deleted)
            lk_headers_remove(&r->resp_headers, x->name);
        else if (lk_headers_add(r->arena, &r->resp_headers, x->name, x->value, x->value_len,
                                false) < 0)
            lk_must(NULL);
    }
    r->pending.head = NULL;
}

/* The parts of a JSON string that need escaping in what the kit puts there. */
static void json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
}

void lk_resp_fail(struct lk_req *r, int status, const char *error)
{
    char esc[512], rid[160], body[768];
    json_escape(esc, sizeof(esc), error);
    json_escape(rid, sizeof(rid), r->request_id);
    int n = snprintf(body, sizeof(body), "{\"status\":%d,\"error\":\"%s\",\"request_id\":\"%s\"}\n",
                     status, esc, rid);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(body) ? (size_t)n : sizeof(body) - 1;
    if (start_response(r, status, body, len, true, "application/json") < 0)
        lk_must(NULL);
}

/* ---- host side ---------------------------------------------------------------------------- */

int lk_respond_fn(lintel_req *r, int status, const char *content_type, const void *body, size_t len)
{
    struct lk_req *k = kit(r);
    if (!head_open(k) || !status_ok(status) || (!body && len))
        return -1;
    if (!content_type)
        content_type = len && *(const char *)body == '{' ? "application/json" : "text/plain";
    return start_response(k, status, body, len, true, content_type);
}

int lk_resp_status_fn(lintel_req *r)
{
    return kit(r)->status;
}

int lk_resp_set_status_fn(lintel_req *r, int status)
{
    struct lk_req *k = kit(r);
    if (!k->status || !head_open(k) || !status_ok(status))
        return -1;
    k->status = status;
    return 0;
}

struct lintel_str lk_resp_header_fn(lintel_req *r, const char *name)
{
    const struct lk_header *h = name ? lk_headers_find(resp_headers(kit(r)), name) : NULL;
    return h ? (struct lintel_str){h->value, h->value_len} : (struct lintel_str){NULL, 0};
}

int lk_resp_header_set_fn(lintel_req *r, const char *name, const char *value, size_t len)
{
    struct lk_req *k = kit(r);
    if (!head_open(k) || !lk_header_name_ok(name) || !lk_header_value_ok(value, len))
        return -1;
    struct lk_headers *h = resp_headers(k);
    lk_headers_remove(h, name);
    /* Pending: a removal marker makes the later apply replace the response's header. */
    if (!k->status && lk_headers_add(k->arena, h, name, NULL, 0, true) < 0)
        return -1;
    return lk_headers_add(k->arena, h, name, value, len, false);
}

int lk_resp_header_add_fn(lintel_req *r, const char *name, const char *value, size_t len)
{
    struct lk_req *k = kit(r);
    if (!head_open(k) || !lk_header_name_ok(name) || !lk_header_value_ok(value, len))
        return -1;
    return lk_headers_add(k->arena, resp_headers(k), name, value, len, false);
}

int lk_resp_header_remove_fn(lintel_req *r, const char *name)
{
    struct lk_req *k = kit(r);
    if (!head_open(k) || !lk_header_name_ok(name))
        return -1;
    struct lk_headers *h = resp_headers(k);
    lk_headers_remove(h, name);
    if (!k->status && lk_headers_add(k->arena, h, name, NULL, 0, true) < 0)
        return -1;
    return 0;
}

struct lintel_str lk_resp_body_chunk_fn(lintel_req *r)
{
    return kit(r)->chunk;
}

int lk_resp_body_last_fn(lintel_req *r)
{
    return kit(r)->chunk_last;
}

/* ---- ABI 1.1: gateway-made failures, every response header, resend ------------------------- */

void lk_req_set_upstream_failure(struct lk_req *r, enum lintel_upstream_failure failure)
{
    /* The statuses and messages lintel's upstream side answers with (core/upstream.c). */
    switch (failure) {
    case LINTEL_UPSTREAM_OK:
        lk_req_set_response(r, 200, NULL);
        return;
    case LINTEL_UPSTREAM_CONNECT:
        lk_resp_fail(r, 502, "upstream connect refused");
        break;
    case LINTEL_UPSTREAM_TIMEOUT:
        lk_resp_fail(r, 504, "upstream read timeout");
        break;
    case LINTEL_UPSTREAM_NO_HEALTHY:
        lk_resp_fail(r, 503, "no healthy upstream target");
        break;
    default:
        lk_resp_fail(r, 502, "upstream connection reset");
        break;
    }
    r->failure = failure;
}

unsigned lk_resent(const struct lk_req *r)
{
    return r->resent;
}

int lk_resp_header_at_fn(lintel_req *r, size_t i, struct lintel_str *name, struct lintel_str *value)
{
    struct lk_req *k = kit(r);
    if (!k->status)
        return -1;
    return lk_headers_at(&k->resp_headers, i, name, value);
}

int lk_upstream_failure_fn(lintel_req *r)
{
    return (int)kit(r)->failure;
}

int lk_resend_fn(lintel_req *r)
{
    struct lk_req *k = kit(r);
    if (k->phase != LINTEL_PHASE_RESPONSE_HEADERS || !k->in_handler || k->resending) {
        lk_violation("resend() outside a RESPONSE_HEADERS handler, or twice in one call");
        return -1;
    }
    /* lintel keeps no copy of a body it streamed to the upstream: only an empty or buffered
     * body can be sent again. */
    if ((k->body_in_len && !k->body_buffered) || k->resent >= 2)
        return -1;
    k->resent++;
    k->resending = true;
    clear_response(k);
    return 0;
}
