/* auth: the key, basic and jwt methods at request time (workers), and removing a credential
 * before the request goes upstream (hide_credentials). Scratch memory comes from the request
 * (host->alloc); lookups go through the tables auth_config.c built. */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth-internal.h"

/* Records why a credential was refused; the first refusal is the one the client hears of. */
static enum auth_outcome refused(struct auth_attempt *at, const char *reason)
{
    if (!at->reason)
        at->reason = reason;
    return AUTH_REFUSED;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s[0..len) into out (len bytes suffice); '+' stays '+'. The decoded length, or
 * -1 on a bad escape. */
static long percent_decode(const char *s, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        if (i + 2 >= len)
            return -1;
        int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
        if (hi < 0 || lo < 0)
            return -1;
        out[o++] = (char)(hi << 4 | lo);
        i += 2;
    }
    return (long)o;
}

/* ---- hide_credentials ----------------------------------------------------------------------- */

int auth_remove_arg(struct auth_attempt *at, const char *name)
{
    const struct lintel_host_api *h = at->a->host;
    struct lintel_str q = h->req_query(at->r);
    size_t nlen = strlen(name), o = 0;
    if (!q.ptr)
        return 0;
    char *out = h->alloc(at->r, q.len + 1);
    if (!out)
        return -1;
    for (const char *p = q.ptr, *end = q.ptr + q.len; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        size_t klen = (size_t)((eq ? eq : e) - p);
        if (!(klen == nlen && memcmp(p, name, nlen) == 0) && e > p) {
            if (o)
                out[o++] = '&';
            memcpy(out + o, p, (size_t)(e - p));
            o += (size_t)(e - p);
        }
        p = amp ? amp + 1 : end;
    }
    return h->req_set_query(at->r, out, o);
}

int auth_remove_cookie(struct auth_attempt *at, const char *name)
{
    const struct lintel_host_api *h = at->a->host;
    struct lintel_str hn, hv;
    size_t total = 0, nlen = strlen(name), o = 0;
    for (size_t i = 0; h->req_header_at(at->r, i, &hn, &hv) == 0; i++)
        if (hn.len == 6 && strncasecmp(hn.ptr, "Cookie", 6) == 0)
            total += hv.len + 2;
    char *out = h->alloc(at->r, total + 1);
    if (!out)
        return -1;
    for (size_t i = 0; h->req_header_at(at->r, i, &hn, &hv) == 0; i++) {
        if (hn.len != 6 || strncasecmp(hn.ptr, "Cookie", 6) != 0)
            continue;
        for (const char *p = hv.ptr, *end = hv.ptr + hv.len; p < end;) {
            while (p < end && (*p == ' ' || *p == '\t'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *e = semi ? semi : end;
            const char *eq = memchr(p, '=', (size_t)(e - p));
            size_t klen = (size_t)((eq ? eq : e) - p);
            if (e > p && !(klen == nlen && memcmp(p, name, nlen) == 0)) {
                if (o) {
                    memcpy(out + o, "; ", 2);
                    o += 2;
                }
                memcpy(out + o, p, (size_t)(e - p));
                o += (size_t)(e - p);
            }
            p = semi ? semi + 1 : end;
        }
    }
    /* set replaces every Cookie header with the one joined value */
    return o ? h->req_header_set(at->r, "Cookie", out, o) : h->req_header_remove(at->r, "Cookie");
}

/* ---- key ---------------------------------------------------------------------------------- */

enum auth_outcome auth_key_run(struct auth_attempt *at)
{
    const struct auth *a = at->a;
    const struct lintel_host_api *h = a->host;
    struct lintel_str v = {NULL, 0};
    const char *header = NULL, *arg = NULL;
    for (size_t i = 0; i < a->key_headers.n && !v.ptr; i++)
        if ((v = h->req_header(at->r, a->key_headers.v[i])).ptr)
            header = a->key_headers.v[i];
    for (size_t i = 0; i < a->key_query.n && !v.ptr; i++)
        if ((v = h->req_arg(at->r, a->key_query.v[i])).ptr)
            arg = a->key_query.v[i];
    if (!v.ptr)
        return AUTH_ABSENT;
    if (arg) {
        char *decoded = h->alloc(at->r, v.len + 1);
        long n = decoded ? percent_decode(v.ptr, v.len, decoded) : -1;
        if (!decoded)
            return AUTH_FAILED;
        if (n < 0)
            return refused(at, "invalid api key");
        v = (struct lintel_str){decoded, (size_t)n};
    }
    uint32_t consumer;
    if (v.len == 0 ||
        auth_table_get_ctx(&a->keys, a->sha256, auth_md_ctx(a, at->r), v.ptr, v.len, &consumer) < 0)
        return refused(at, "invalid api key");
    if (a->hide_credentials &&
        (header ? h->req_header_remove(at->r, header) : auth_remove_arg(at, arg)) < 0)
        return AUTH_FAILED;
    at->consumer = consumer;
    return AUTH_ALLOWED;
}

/* ---- basic -------------------------------------------------------------------------------- */

enum auth_outcome auth_basic_run(struct auth_attempt *at)
{
    const struct auth *a = at->a;
    const struct lintel_host_api *h = a->host;
    struct lintel_str v = h->req_header(at->r, "Authorization"), user, password;
    if (!v.ptr)
        return AUTH_ABSENT;
    unsigned char *buf = h->alloc(at->r, v.len + 1);
    if (!buf)
        return AUTH_FAILED;
    int rc = auth_basic_parse(v.ptr, v.len, buf, v.len, &user, &password);
    if (rc == 0)
        return AUTH_ABSENT; /* another scheme: someone else's credential */
    if (rc < 0)
        return refused(at, "malformed basic credentials");
    uint32_t i;
    if (auth_table_get_ctx(&a->users, a->sha256, auth_md_ctx(a, at->r), user.ptr, user.len, &i) <
        0) {
        /* Spend the time a known user costs, so that timing does not list the users. */
        if (a->nbasic)
            auth_password_check(&a->basic[0].password, a->sha256, password.ptr, password.len);
        return refused(at, "invalid username or password");
    }
    if (!auth_password_check(&a->basic[i].password, a->sha256, password.ptr, password.len))
        return refused(at, "invalid username or password");
    if (a->hide_credentials && h->req_header_remove(at->r, "Authorization") < 0)
        return AUTH_FAILED;
    at->consumer = a->basic[i].consumer;
    return AUTH_ALLOWED;
}

/* ---- jwt ---------------------------------------------------------------------------------- */

static const struct auth_jwt_key *issuer_key(void *arg, const char *iss, size_t len)
{
    const struct auth *a = arg;
    uint32_t i;
    return auth_table_get(&a->issuers, a->sha256, iss, len, &i) == 0 ? &a->jwt[i] : NULL;
}

/* The token in a header value: "Bearer TOKEN", or a bare TOKEN; {NULL,0} for another scheme. */
static struct lintel_str bearer_token(struct lintel_str v)
{
    if (!v.ptr)
        return v;
    const char *p = v.ptr, *end = v.ptr + v.len;
    while (p < end && *p == ' ')
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (end - p > 7 && strncasecmp(p, "Bearer ", 7) == 0)
        for (p += 7; p < end && *p == ' ';)
            p++;
    else if (memchr(p, ' ', (size_t)(end - p)))
        return (struct lintel_str){NULL, 0};
    return (struct lintel_str){p, (size_t)(end - p)};
}

enum auth_outcome auth_jwt_run(struct auth_attempt *at)
{
    const struct auth *a = at->a;
    const struct lintel_host_api *h = a->host;
    struct lintel_str t = {NULL, 0};
    const char *header = NULL, *arg = NULL, *cookie = NULL;
    for (size_t i = 0; i < a->jwt_headers.n && !t.ptr; i++)
        if ((t = bearer_token(h->req_header(at->r, a->jwt_headers.v[i]))).ptr)
            header = a->jwt_headers.v[i];
    for (size_t i = 0; i < a->jwt_query.n && !t.ptr; i++)
        if ((t = h->req_arg(at->r, a->jwt_query.v[i])).ptr)
            arg = a->jwt_query.v[i];
    for (size_t i = 0; i < a->jwt_cookies.n && !t.ptr; i++)
        if ((t = h->req_cookie(at->r, a->jwt_cookies.v[i])).ptr)
            cookie = a->jwt_cookies.v[i];
    if (!t.ptr)
        return AUTH_ABSENT;
    at->bearer_refused = 1; /* a token was presented: a refusal says error="invalid_token" */
    if (t.len == 0 || t.len > AUTH_TOKEN_MAX)
        return refused(at, "malformed token");
    size_t cap = auth_jwt_scratch_size(t.len);
    unsigned char *scratch = h->alloc(at->r, cap);
    if (!scratch)
        return AUTH_FAILED;
    const struct auth_jwt_key *key = NULL;
    const char *why = auth_jwt_verify(t.ptr, t.len, (int64_t)time(NULL), a->jwt_leeway, issuer_key,
                                      (void *)a, scratch, cap, &key);
    if (why)
        return refused(at, why);
    if (a->hide_credentials && (header ? h->req_header_remove(at->r, header)
                                : arg  ? auth_remove_arg(at, arg)
                                       : auth_remove_cookie(at, cookie)) < 0)
        return AUTH_FAILED;
    at->consumer = key->consumer;
    return AUTH_ALLOWED;
}
