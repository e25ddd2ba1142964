/* logging: one record from a request's facts, as a JSON object or through a compiled template.
 * Pure functions of (config, facts, clock): the unit tests call them directly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logging-internal.h"

/* Spelling of the fixed variables, indexed by enum lg_var; JSON keys use the same names. */
static const char *const var_names[LG_VAR_NAMED] = {
    [LG_VAR_TIME] = "time",
    [LG_VAR_TIME_LOCAL] = "time_local",
    [LG_VAR_MSEC] = "msec",
    [LG_VAR_REQUEST_ID] = "request_id",
    [LG_VAR_REMOTE_ADDR] = "remote_addr",
    [LG_VAR_METHOD] = "method",
    [LG_VAR_HOST] = "host",
    [LG_VAR_PATH] = "path",
    [LG_VAR_QUERY] = "query",
    [LG_VAR_REQUEST_URI] = "request_uri",
    [LG_VAR_REQUEST] = "request",
    [LG_VAR_PROTOCOL] = "protocol",
    [LG_VAR_STATUS] = "status",
    [LG_VAR_BYTES_RECEIVED] = "bytes_received",
    [LG_VAR_BYTES_SENT] = "bytes_sent",
    [LG_VAR_REQUEST_TIME] = "request_time",
    [LG_VAR_UPSTREAM] = "upstream",
    [LG_VAR_UPSTREAM_ADDR] = "upstream_addr",
    [LG_VAR_UPSTREAM_CONNECT_TIME] = "upstream_connect_time",
    [LG_VAR_UPSTREAM_RESPONSE_TIME] = "upstream_response_time",
    [LG_VAR_ROUTE] = "route",
    [LG_VAR_CONSUMER] = "consumer",
    [LG_VAR_FIELDS] = "fields",
};

/* nginx's names for the same facts, so that an nginx log_format mostly carries over. */
static const struct {
    const char *name;
    enum lg_var var;
} aliases[] = {
    {"request_method", LG_VAR_METHOD},
    {"uri", LG_VAR_PATH},
    {"args", LG_VAR_QUERY},
    {"server_protocol", LG_VAR_PROTOCOL},
    {"body_bytes_sent", LG_VAR_BYTES_SENT},
};

/* ---- compiling a template (create) --------------------------------------------------------- */

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Resolves name[0..n) into op (its argument copied to *pool). 0, or -1 when unknown. */
static int resolve(const char *name, size_t n, struct lg_op *op, char **pool)
{
    for (int v = 0; v < LG_VAR_NAMED; v++)
        if (strlen(var_names[v]) == n && memcmp(var_names[v], name, n) == 0) {
            op->var = (enum lg_var)v;
            return 0;
        }
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        if (strlen(aliases[i].name) == n && memcmp(aliases[i].name, name, n) == 0) {
            op->var = aliases[i].var;
            return 0;
        }
    size_t skip;
    if (n > 6 && memcmp(name, "field_", 6) == 0) {
        op->var = LG_VAR_FIELD;
        skip = 6;
    } else if (n > 5 && memcmp(name, "http_", 5) == 0) {
        op->var = LG_VAR_HTTP;
        skip = 5;
    } else
        return -1;
    op->text = *pool;
    op->len = n - skip;
    for (size_t i = skip; i < n; i++) /* $http_user_agent: header User-Agent */
        *(*pool)++ = op->var == LG_VAR_HTTP && name[i] == '_' ? '-' : name[i];
    *(*pool)++ = '\0';
    return 0;
}

int lg_template_compile(const char *text, struct lg_template *out, char *why, size_t whylen)
{
    size_t len = strlen(text);
    *out = (struct lg_template){0};
    /* At most one op per byte; the pool holds every literal and argument, each NUL-terminated. */
    out->ops = calloc(len + 1, sizeof(*out->ops));
    out->pool = malloc(2 * len + 2);
    if (!out->ops || !out->pool) {
        snprintf(why, whylen, "out of memory");
        goto fail;
    }
    char *pool = out->pool;
    struct lg_op *lit = NULL; /* the literal being extended */
    for (const char *p = text; *p;) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            snprintf(why, whylen, "must not contain control characters");
            goto fail;
        }
        if (*p != '$' || p[1] == '$') {
            if (!lit) {
                lit = &out->ops[out->nops++];
                *lit = (struct lg_op){.var = LG_VAR_LITERAL, .text = pool};
            }
            *pool++ = *p;
            lit->len++;
            p += *p == '$' ? 2 : 1;
            continue;
        }
        if (lit) {
            *pool++ = '\0';
            lit = NULL;
        }
        const char *name = p + 1, *end;
        if (*name == '{') {
            name++;
            end = strchr(name, '}');
            if (!end) {
                snprintf(why, whylen, "unclosed ${");
                goto fail;
            }
            p = end + 1;
        } else {
            end = name;
            while (is_name_char(*end))
                end++;
            p = end;
        }
        if (end == name) {
            snprintf(why, whylen, "a $ must start a variable name (write $$ for a dollar sign)");
            goto fail;
        }
        struct lg_op *op = &out->ops[out->nops++];
        *op = (struct lg_op){0};
        if (resolve(name, (size_t)(end - name), op, &pool) < 0) {
            snprintf(why, whylen, "unknown variable $%.*s", (int)(end - name), name);
            goto fail;
        }
    }
    if (lit)
        *pool = '\0';
    return 0;
fail:
    lg_template_free(out);
    return -1;
}

void lg_template_free(struct lg_template *t)
{
    free(t->ops);
    free(t->pool);
    *t = (struct lg_template){0};
}

/* ---- facts --------------------------------------------------------------------------------- */

void lg_facts_split_target(struct lg_facts *f)
{
    struct lintel_str t = f->info.target;
    const char *q = t.ptr ? memchr(t.ptr, '?', t.len) : NULL;
    f->path = (struct lintel_str){t.ptr, q ? (size_t)(q - t.ptr) : t.len};
    f->query = q ? (struct lintel_str){q + 1, t.len - (size_t)(q + 1 - t.ptr)}
                 : (struct lintel_str){NULL, 0};
}

/* An empty string counts as absent (no query, no consumer, ...). */
static struct lintel_str opt(struct lintel_str s)
{
    return s.len ? s : (struct lintel_str){NULL, 0};
}

static int used_upstream(const struct lg_facts *f)
{
    return f->info.upstream.len || f->info.upstream_addr.len;
}

static struct lintel_str protocol(const struct lg_facts *f)
{
    return f->info.http_minor == 0 ? (struct lintel_str){"HTTP/1.0", 8}
                                   : (struct lintel_str){"HTTP/1.1", 8};
}

/* ---- JSON ---------------------------------------------------------------------------------- */

/* ,"name": */
#define JSON_KEY(o, name) LG_LIT(o, ",\"" name "\":")

static void json_seconds_or_null(struct lg_out *o, int present, uint64_t us)
{
    if (present)
        lg_put_seconds(o, us);
    else
        LG_LIT(o, "null");
}

/* The keys are literals: each is one constant-size copy. */
static void render_json(const struct lg_config *c, const struct lg_facts *f, struct lg_clock *clk,
                        struct lg_out *o)
{
    const struct lintel_req_info *in = &f->info;
    LG_LIT(o, "{\"time\":\"");
    lg_put_time_iso(o, clk, in->start_unix_us);
    LG_LIT(o, "\",\"request_id\":");
    lg_put_json_value(o, opt(f->request_id));
    JSON_KEY(o, "remote_addr");
    lg_put_json_value(o, opt(f->remote_addr));
    JSON_KEY(o, "method");
    lg_put_json_value(o, opt(f->method));
    JSON_KEY(o, "host");
    lg_put_json_value(o, opt(in->host));
    JSON_KEY(o, "path");
    lg_put_json_value(o, opt(f->path));
    JSON_KEY(o, "query");
    lg_put_json_value(o, opt(f->query));
    if (in->http_minor == 0)
        LG_LIT(o, ",\"protocol\":\"HTTP/1.0\",\"status\":");
    else
        LG_LIT(o, ",\"protocol\":\"HTTP/1.1\",\"status\":");
    lg_put_u64(o, in->status > 0 ? (uint64_t)in->status : 0);
    JSON_KEY(o, "bytes_received");
    lg_put_u64(o, in->bytes_in);
    JSON_KEY(o, "bytes_sent");
    lg_put_u64(o, in->bytes_out);
    JSON_KEY(o, "request_time");
    lg_put_seconds(o, in->duration_us);
    JSON_KEY(o, "upstream");
    lg_put_json_value(o, opt(in->upstream));
    JSON_KEY(o, "upstream_addr");
    lg_put_json_value(o, opt(in->upstream_addr));
    JSON_KEY(o, "upstream_connect_time");
    json_seconds_or_null(o, used_upstream(f), in->upstream_connect_us);
    JSON_KEY(o, "upstream_response_time");
    json_seconds_or_null(o, used_upstream(f), in->upstream_response_us);
    JSON_KEY(o, "route");
    lg_put_json_value(o, opt(f->route));
    JSON_KEY(o, "consumer");
    lg_put_json_value(o, opt(f->consumer));
    if (c->nreq_headers) {
        LG_LIT(o, ",\"headers\":{");
        for (size_t i = 0; i < c->nreq_headers; i++) {
            if (i)
                LG_LIT(o, ",");
            lg_put_json_value(
                o, (struct lintel_str){c->req_header_keys[i], strlen(c->req_header_keys[i])});
            LG_LIT(o, ":");
            lg_put_json_value(o, f->header ? f->header(f->ctx, c->req_headers[i])
                                           : (struct lintel_str){NULL, 0});
        }
        LG_LIT(o, "}");
    }
    LG_LIT(o, ",\"fields\":{");
    struct lintel_str k, v;
    for (size_t i = 0; f->field_at && f->field_at(f->ctx, i, &k, &v) == 0; i++) {
        if (i)
            LG_LIT(o, ",");
        lg_put_json_value(o, k.ptr ? k : (struct lintel_str){"", 0});
        LG_LIT(o, ":");
        lg_put_json_value(o, v.ptr ? v : (struct lintel_str){"", 0});
    }
    if (o->truncated)
        LG_LIT(o, "},\"truncated\":true}\n");
    else
        LG_LIT(o, "}}\n");
}

/* ---- templates ----------------------------------------------------------------------------- */

static void tmpl_str(const struct lg_config *c, struct lg_out *o, struct lintel_str s)
{
    if (!s.len) {
        if (c->escape == LG_ESCAPE_DEFAULT)
            LG_LIT(o, "-");
    } else if (c->escape == LG_ESCAPE_JSON)
        lg_put_json_str(o, s.ptr, s.len);
    else
        lg_put_default_str(o, s.ptr, s.len);
}

static void tmpl_seconds(const struct lg_config *c, struct lg_out *o, int present, uint64_t us)
{
    if (present)
        lg_put_seconds(o, us);
    else
        tmpl_str(c, o, (struct lintel_str){NULL, 0});
}

static struct lintel_str field(const struct lg_facts *f, const char *key, size_t klen)
{
    struct lintel_str k, v;
    for (size_t i = 0; f->field_at && f->field_at(f->ctx, i, &k, &v) == 0; i++)
        if (k.len == klen && memcmp(k.ptr, key, klen) == 0)
            return v;
    return (struct lintel_str){NULL, 0};
}

/* $fields: "key=value key=value". */
static void tmpl_fields(const struct lg_config *c, const struct lg_facts *f, struct lg_out *o)
{
    struct lintel_str k, v;
    size_t i = 0;
    for (; f->field_at && f->field_at(f->ctx, i, &k, &v) == 0; i++) {
        if (i)
            LG_LIT(o, " ");
        tmpl_str(c, o, k);
        LG_LIT(o, "=");
        if (v.len)
            tmpl_str(c, o, v);
    }
    if (!i)
        tmpl_str(c, o, (struct lintel_str){NULL, 0});
}

static void render_var(const struct lg_config *c, const struct lg_op *op, const struct lg_facts *f,
                       struct lg_clock *clk, struct lg_out *o)
{
    const struct lintel_req_info *in = &f->info;
    switch (op->var) {
    case LG_VAR_LITERAL:
        lg_put(o, op->text, op->len);
        break;
    case LG_VAR_TIME:
        lg_put_time_iso(o, clk, in->start_unix_us);
        break;
    case LG_VAR_TIME_LOCAL:
        lg_put_time_clf(o, clk, in->start_unix_us);
        break;
    case LG_VAR_MSEC:
        lg_put_msec(o, in->start_unix_us);
        break;
    case LG_VAR_REQUEST_ID:
        tmpl_str(c, o, f->request_id);
        break;
    case LG_VAR_REMOTE_ADDR:
        tmpl_str(c, o, f->remote_addr);
        break;
    case LG_VAR_METHOD:
        tmpl_str(c, o, f->method);
        break;
    case LG_VAR_HOST:
        tmpl_str(c, o, in->host);
        break;
    case LG_VAR_PATH:
        tmpl_str(c, o, f->path);
        break;
    case LG_VAR_QUERY:
        tmpl_str(c, o, f->query);
        break;
    case LG_VAR_REQUEST_URI:
        tmpl_str(c, o, in->target);
        break;
    case LG_VAR_REQUEST:
        tmpl_str(c, o, f->method);
        LG_LIT(o, " ");
        tmpl_str(c, o, in->target);
        LG_LIT(o, " ");
        tmpl_str(c, o, protocol(f));
        break;
    case LG_VAR_PROTOCOL:
        tmpl_str(c, o, protocol(f));
        break;
    case LG_VAR_STATUS:
        lg_put_u64(o, in->status > 0 ? (uint64_t)in->status : 0);
        break;
    case LG_VAR_BYTES_RECEIVED:
        lg_put_u64(o, in->bytes_in);
        break;
    case LG_VAR_BYTES_SENT:
        lg_put_u64(o, in->bytes_out);
        break;
    case LG_VAR_REQUEST_TIME:
        lg_put_seconds(o, in->duration_us);
        break;
    case LG_VAR_UPSTREAM:
        tmpl_str(c, o, in->upstream);
        break;
    case LG_VAR_UPSTREAM_ADDR:
        tmpl_str(c, o, in->upstream_addr);
        break;
    case LG_VAR_UPSTREAM_CONNECT_TIME:
        tmpl_seconds(c, o, used_upstream(f), in->upstream_connect_us);
        break;
    case LG_VAR_UPSTREAM_RESPONSE_TIME:
        tmpl_seconds(c, o, used_upstream(f), in->upstream_response_us);
        break;
    case LG_VAR_ROUTE:
        tmpl_str(c, o, f->route);
        break;
    case LG_VAR_CONSUMER:
        tmpl_str(c, o, f->consumer);
        break;
    case LG_VAR_FIELDS:
        tmpl_fields(c, f, o);
        break;
    case LG_VAR_FIELD:
        tmpl_str(c, o, field(f, op->text, op->len));
        break;
    case LG_VAR_HTTP:
        tmpl_str(c, o, f->header ? f->header(f->ctx, op->text) : (struct lintel_str){NULL, 0});
        break;
    }
}

static void render_template(const struct lg_config *c, const struct lg_facts *f,
                            struct lg_clock *clk, struct lg_out *o)
{
    for (size_t i = 0; i < c->tmpl.nops; i++)
        render_var(c, &c->tmpl.ops[i], f, clk, o);
    LG_LIT(o, "\n");
}

/* ---- a record ------------------------------------------------------------------------------ */

/* Values are cut to this many bytes when a record does not fit whole. */
#define LG_SHORT_VALUE 256

size_t lg_render(const struct lg_config *c, const struct lg_facts *f, struct lg_clock *clk,
                 char *buf, size_t cap)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        struct lg_out o = {
            .p = buf, .end = buf + cap, .value_cap = attempt ? LG_SHORT_VALUE : SIZE_MAX};
        if (c->format == LG_FORMAT_JSON)
            render_json(c, f, clk, &o);
        else
            render_template(c, f, clk, &o);
        if (!o.overflow)
            return (size_t)(o.p - buf);
    }
    return 0;
}
