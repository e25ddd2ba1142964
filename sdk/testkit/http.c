/* Outbound HTTP without a network: calls are recorded and answered from what the test set with
 * lk_http_respond, after a delay on the virtual clock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "testkit-internal.h"

#define DEFAULT_TIMEOUT_MS 5000 /* plugin.h: timeout_ms 0 = 5000 */

struct kv {
    struct kv *next;
    char *name;
    char *value;
};

struct answer {
    struct answer *next;
    char *url; /* NULL: the default answer */
    int status;
    char *body;
    uint64_t delay_ms;
    struct kv *headers; /* newest first; header() looks for the first added */
};

/* One answer on its way to a plugin's callback. */
struct delivery {
    struct lintel_http_response resp; /* first: header() finds the delivery from it */
    lintel_http_fn cb;
    void *arg;
    struct kv *headers;
    char *body;
    size_t body_len;
    char error[256];
};

static struct {
    struct answer *answers;
    struct lk_http_call **calls;
    size_t ncalls, cap;
} http;

static void kv_free(struct kv *h)
{
    while (h) {
        struct kv *next = h->next;
        free(h->name);
        free(h->value);
        free(h);
        h = next;
    }
}

static struct kv *kv_copy(const struct kv *h)
{
    struct kv *out = NULL, **tail = &out;
    for (; h; h = h->next) {
        struct kv *c = lk_must(calloc(1, sizeof(*c)));
        c->name = lk_must(strdup(h->name));
        c->value = lk_must(strdup(h->value));
        *tail = c;
        tail = &c->next;
    }
    return out;
}

static struct answer *answer_for(const char *url)
{
    for (struct answer *a = http.answers; a; a = a->next)
        if ((!a->url && !url) || (a->url && url && strcmp(a->url, url) == 0))
            return a;
    return NULL;
}

static void answer_free(struct answer *a)
{
    kv_free(a->headers);
    free(a->url);
    free(a->body);
    free(a);
}

void lk_http_respond(const char *url, int status, const char *body, uint64_t delay_ms)
{
    struct answer **p = &http.answers;
    while (*p && !((!(*p)->url && !url) || ((*p)->url && url && strcmp((*p)->url, url) == 0)))
        p = &(*p)->next;
    struct answer *a = lk_must(calloc(1, sizeof(*a)));
    a->url = url ? lk_must(strdup(url)) : NULL;
    a->status = status;
    a->body = lk_must(strdup(body ? body : ""));
    a->delay_ms = delay_ms;
    if (*p) { /* replace in place */
        a->next = (*p)->next;
        answer_free(*p);
    }
    *p = a;
}

void lk_http_respond_header(const char *url, const char *name, const char *value)
{
    struct answer *a = answer_for(url);
    if (!a) {
        lk_http_respond(url, 200, NULL, 0);
        a = answer_for(url);
    }
    struct kv *h = lk_must(calloc(1, sizeof(*h)));
    h->name = lk_must(strdup(name));
    h->value = lk_must(strdup(value));
    struct kv **tail = &a->headers;
    while (*tail)
        tail = &(*tail)->next;
    *tail = h;
}

static void call_free(struct lk_http_call *c)
{
    for (size_t i = 0; c->headers[i]; i++)
        free((char *)c->headers[i]);
    free((void *)c->headers);
    free((char *)c->method);
    free((char *)c->url);
    free((char *)c->body);
    free(c);
}

const struct lk_http_call *lk_http_call_at(size_t i)
{
    return i < http.ncalls ? http.calls[i] : NULL;
}

void lk_http_reset(void)
{
    while (http.answers) {
        struct answer *next = http.answers->next;
        answer_free(http.answers);
        http.answers = next;
    }
    for (size_t i = 0; i < http.ncalls; i++)
        call_free(http.calls[i]);
    free(http.calls);
    http.calls = NULL;
    http.ncalls = http.cap = 0;
}

static void record(const struct lintel_http_request *s, uint64_t timeout_ms)
{
    struct lk_http_call *c = lk_must(calloc(1, sizeof(*c)));
    size_t n = 0;
    while (s->headers && s->headers[n])
        n++;
    const char **headers = lk_must(calloc(n + 1, sizeof(*headers)));
    for (size_t i = 0; i < n; i++)
        headers[i] = lk_must(strdup(s->headers[i]));
    c->headers = headers;
    c->method = lk_must(strdup(s->method ? s->method : "GET"));
    c->url = lk_must(strdup(s->url));
    char *body = lk_must(malloc(s->body_len + 1));
    if (s->body_len)
        memcpy(body, s->body, s->body_len);
    body[s->body_len] = '\0';
    c->body = body;
    c->body_len = s->body_len;
    c->timeout_ms = timeout_ms;
    if (http.ncalls == http.cap) {
        http.cap = http.cap ? http.cap * 2 : 8;
        http.calls = lk_must(realloc(http.calls, http.cap * sizeof(*http.calls)));
    }
    http.calls[http.ncalls++] = c;
}

static struct lintel_str delivered_header(const struct lintel_http_response *resp, const char *name)
{
    const struct delivery *d = (const struct delivery *)resp;
    for (const struct kv *h = d->headers; h && name; h = h->next)
        if (strcasecmp(h->name, name) == 0)
            return (struct lintel_str){h->value, strlen(h->value)};
    return (struct lintel_str){NULL, 0};
}

static void delivery_free(void *arg)
{
    struct delivery *d = arg;
    kv_free(d->headers);
    free(d->body);
    free(d);
}

static void deliver(void *arg)
{
    struct delivery *d = arg;
    d->resp.error = d->resp.status ? NULL : d->error;
    d->resp.body = (struct lintel_str){d->body, d->body_len};
    d->cb(d->arg, &d->resp);
    delivery_free(d);
}

/* Records the call and schedules its answer, owned by req or in. */
/* upstream://NAME/...: as lintel, refused when NAME is no upstream (lk_declare_upstream) or has
 * no healthy target (lk_set_upstream_healthy). The call is recorded and answered by its URL as
 * written. */
static bool upstream_url_ok(const char *url)
{
    static const char scheme[] = "upstream://";
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0)
        return false;
    const char *name = url + sizeof(scheme) - 1;
    char buf[256];
    size_t n = strcspn(name, "/?");
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, name, n);
    buf[n] = '\0';
    return lk_upstream_healthy_fn(NULL, buf) > 0;
}

static int start(struct lk_req *req, struct lk_instance *in, const struct lintel_http_request *spec,
                 lintel_http_fn cb, void *arg)
{
    /* Fields past the plugin's struct_size are absent. */
    struct lintel_http_request s = {0};
    if (!spec || !cb ||
        spec->struct_size < offsetof(struct lintel_http_request, url) + sizeof(spec->url))
        return -1;
    memcpy(&s, spec, spec->struct_size < sizeof(s) ? spec->struct_size : sizeof(s));
    if (!s.url || (strncmp(s.url, "http://", 7) != 0 && strncmp(s.url, "https://", 8) != 0 &&
                   !upstream_url_ok(s.url)) ||
        (!s.body && s.body_len))
        return -1;
    uint64_t timeout = s.timeout_ms ? s.timeout_ms : DEFAULT_TIMEOUT_MS;
    record(&s, timeout);

    struct delivery *d = lk_must(calloc(1, sizeof(*d)));
    d->resp.struct_size = sizeof(d->resp);
    d->resp.header = delivered_header;
    d->cb = cb;
    d->arg = arg;
    const struct answer *a = answer_for(s.url);
    if (!a)
        a = answer_for(NULL);
    uint64_t delay = 0;
    if (!a) {
        snprintf(d->error, sizeof(d->error), "testkit: no answer for %s", s.url);
    } else if (a->delay_ms > timeout) {
        delay = timeout;
        snprintf(d->error, sizeof(d->error), "timeout");
    } else {
        delay = a->delay_ms;
        d->resp.status = a->status;
        snprintf(d->error, sizeof(d->error), "connection refused");
        if (a->status) {
            d->headers = kv_copy(a->headers);
            d->body = lk_must(strdup(a->body));
            d->body_len = strlen(a->body);
        }
    }
    if (!lk_timer_add(req, in, delay, 0, deliver, delivery_free, d)) {
        delivery_free(d);
        return -1;
    }
    return 0;
}

int lk_http_call_fn(lintel_req *r, const struct lintel_http_request *spec, lintel_http_fn cb,
                    void *arg)
{
    return start(r->kit, NULL, spec, cb, arg);
}

int lk_worker_http_call_fn(const lintel_instance *self, const struct lintel_http_request *spec,
                           lintel_http_fn cb, void *arg)
{
    return self ? start(NULL, self->kit, spec, cb, arg) : -1;
}
