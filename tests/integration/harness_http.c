/* The integration-test harness, the HTTP side: byte buffers and hashes, a parser for raw
 * responses, a JSON lookup for the origin's and the gateway's answers, and libcurl requests. See
 * harness.h. */
#include "harness.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

/* ---- Bytes ------------------------------------------------------------------------------ */

void it_buf_add(struct it_buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            fprintf(stderr, "harness: out of memory\n");
            abort();
        }
        b->data = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void it_buf_free(struct it_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

uint64_t it_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

void it_fnv_hex(uint64_t h, char out[17])
{
    snprintf(out, 17, "%016" PRIx64, h);
}

void it_pattern(unsigned char *p, uint64_t off, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t x = off + i;
        p[i] = (unsigned char)(x * 31 + (x >> 10) * 7 + (x >> 20));
    }
}

uint64_t it_pattern_fnv(uint64_t n)
{
    unsigned char block[16384];
    uint64_t h = IT_FNV_INIT;
    for (uint64_t off = 0; off < n;) {
        size_t k = n - off < sizeof block ? (size_t)(n - off) : sizeof block;
        it_pattern(block, off, k);
        h = it_fnv1a(h, block, k);
        off += k;
    }
    return h;
}

/* ---- Responses -------------------------------------------------------------------------- */

static void add_header(struct it_response *r, const char *name, size_t nlen, const char *value,
                       size_t vlen)
{
    while (vlen && (value[0] == ' ' || value[0] == '\t'))
        value++, vlen--;
    while (vlen && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t' || value[vlen - 1] == '\r' ||
                    value[vlen - 1] == '\n'))
        vlen--;
    struct it_header *v = realloc(r->headers, (r->nheaders + 1) * sizeof *v);
    char *n = strndup(name, nlen), *s = strndup(value, vlen);
    if (!v || !n || !s) {
        fprintf(stderr, "harness: out of memory\n");
        abort();
    }
    r->headers = v;
    r->headers[r->nheaders++] = (struct it_header){n, s};
}

static void drop_headers(struct it_response *r)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    r->headers = NULL;
    r->nheaders = 0;
}

void it_response_free(struct it_response *r)
{
    drop_headers(r);
    it_buf_free(&r->body);
    memset(r, 0, sizeof *r);
}

const char *it_response_header(const struct it_response *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

size_t it_response_header_count(const struct it_response *r, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nheaders; i++)
        n += strcasecmp(r->headers[i].name, name) == 0;
    return n;
}

bool it_header_has_token(const char *value, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = value; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == n && strncasecmp(p, token, n) == 0)
            return true;
        p = e;
    }
    return false;
}

static void body_add(struct it_response *r, const char *p, size_t n)
{
    it_buf_add(&r->body, p, n);
    r->body_bytes += n;
    r->body_fnv = it_fnv1a(r->body_fnv, p, n);
}

/* Decodes a chunked body from p[0..len). Returns bytes used, 0 when incomplete, -1 if bad. */
static long parse_chunked(const char *p, size_t len, struct it_response *r)
{
    size_t off = 0;
    for (;;) {
        const char *eol = memmem(p + off, len - off, "\r\n", 2);
        if (!eol)
            return 0;
        char *end;
        unsigned long long size = strtoull(p + off, &end, 16);
        if (end == p + off || (*end != ';' && *end != '\r'))
            return -1;
        off = (size_t)(eol - p) + 2;
        if (size == 0)
            break;
        if (len - off < size + 2)
            return 0;
        if (memcmp(p + off + size, "\r\n", 2) != 0)
            return -1;
        body_add(r, p + off, (size_t)size);
        off += (size_t)size + 2;
    }
    for (;;) { /* trailers, up to the empty line */
        const char *eol = memmem(p + off, len - off, "\r\n", 2);
        if (!eol)
            return 0;
        size_t line = (size_t)(eol - (p + off));
        off += line + 2;
        if (line == 0)
            return (long)off;
    }
}

long it_response_parse(const char *buf, size_t len, bool head_request, bool at_eof,
                       struct it_response *r)
{
    memset(r, 0, sizeof *r);
    r->body_fnv = IT_FNV_INIT;
    it_buf_add(&r->body, "", 0);
    const char *hend = memmem(buf, len, "\r\n\r\n", 4);
    if (!hend) {
        it_response_free(r);
        return at_eof ? -1 : 0;
    }
    size_t hlen = (size_t)(hend - buf) + 4;
    int status = 0, minor = 0;
    if (sscanf(buf, "HTTP/1.%d %3d", &minor, &status) != 2 || status < 100 || status > 999)
        goto bad;
    r->status = status;
    r->minor = minor;
    for (const char *line = memmem(buf, hlen, "\r\n", 2) + 2; line < hend;) {
        const char *eol = memmem(line, (size_t)(hend + 2 - line), "\r\n", 2);
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon)
            goto bad;
        add_header(r, line, (size_t)(colon - line), colon + 1, (size_t)(eol - colon - 1));
        line = eol + 2;
    }
    if (status < 200 || status == 204 || status == 304 || head_request)
        return (long)hlen;

    const char *te = it_response_header(r, "Transfer-Encoding");
    const char *cl = it_response_header(r, "Content-Length");
    if (te && it_header_has_token(te, "chunked")) {
        r->chunked = true;
        long used = parse_chunked(buf + hlen, len - hlen, r);
        if (used <= 0) {
            it_response_free(r);
            return used < 0 || at_eof ? -1 : 0;
        }
        return (long)hlen + used;
    }
    if (cl && !te) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (*end || end == cl)
            goto bad;
        if (len - hlen < n) {
            it_response_free(r);
            return at_eof ? -1 : 0;
        }
        body_add(r, buf + hlen, (size_t)n);
        return (long)(hlen + n);
    }
    if (!at_eof) {
        it_response_free(r);
        return 0;
    }
    r->to_close = true;
    body_add(r, buf + hlen, len - hlen);
    return (long)len;
bad:
    it_response_free(r);
    return -1;
}

/* ---- JSON lookup ------------------------------------------------------------------------ */

static const char *json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    return p;
}

/* p at '"'. Unescapes into out (when not NULL; *fits false when it does not fit). Returns the
 * position after the closing quote, or NULL when malformed. */
static const char *json_string(const char *p, char *out, size_t outlen, bool *fits)
{
    size_t n = 0;
    for (p++; *p != '"'; p++) {
        unsigned ch = (unsigned char)*p;
        if (!ch)
            return NULL;
        if (ch == '\\') {
            p++;
            switch (*p) {
            case 'n':
                ch = '\n';
                break;
            case 't':
                ch = '\t';
                break;
            case 'r':
                ch = '\r';
                break;
            case 'b':
                ch = '\b';
                break;
            case 'f':
                ch = '\f';
                break;
            case 'u': {
                char hex[5] = {0};
                for (int i = 0; i < 4; i++)
                    if (!(hex[i] = p[1 + i]))
                        return NULL;
                ch = (unsigned)strtoul(hex, NULL, 16);
                ch = ch < 0x80 ? ch : '?'; /* the tests only look at ASCII */
                p += 4;
                break;
            }
            case '\0':
                return NULL;
            default:
                ch = (unsigned char)*p;
                break;
            }
        }
        if (out) {
            if (n + 1 < outlen)
                out[n++] = (char)ch;
            else
                *fits = false;
        }
    }
    if (out && outlen)
        out[n] = '\0';
    return p + 1;
}

/* Returns the position after the value at p, or NULL when malformed. */
static const char *json_skip(const char *p)
{
    p = json_ws(p);
    if (*p == '"')
        return json_string(p, NULL, 0, NULL);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        do {
            if (*p == '"') {
                if (!(p = json_string(p, NULL, 0, NULL)))
                    return NULL;
                continue;
            }
            if (!*p)
                return NULL;
            depth += (*p == '{' || *p == '[') - (*p == '}' || *p == ']');
            p++;
        } while (depth > 0);
        return p;
    }
    const char *s = p;
    while (*p && !strchr(",}] \t\r\n", *p))
        p++;
    return p == s ? NULL : p;
}

int it_json_get(const char *json, const char *path, char *out, size_t outlen)
{
    const char *p = json_ws(json);
    while (*path) {
        size_t seglen = strcspn(path, ".");
        if (*p != '{')
            return -1;
        p = json_ws(p + 1);
        for (;;) {
            char key[256];
            bool fits = true;
            if (*p != '"' || !(p = json_string(p, key, sizeof key, &fits)))
                return -1;
            p = json_ws(p);
            if (*p != ':')
                return -1;
            p = json_ws(p + 1);
            if (fits && strlen(key) == seglen && strncmp(key, path, seglen) == 0)
                break;
            if (!(p = json_skip(p)))
                return -1;
            p = json_ws(p);
            if (*p != ',')
                return -1; /* '}' (not found) or malformed */
            p = json_ws(p + 1);
        }
        path += seglen;
        if (*path == '.')
            path++;
    }
    if (*p == '"') {
        bool fits = true;
        return json_string(p, out, outlen, &fits) && fits ? 0 : -1;
    }
    if (*p == '{' || *p == '[')
        return -1;
    const char *e = json_skip(p);
    if (!e || (size_t)(e - p) >= outlen)
        return -1;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
    return 0;
}

long long it_json_int(const char *json, const char *path)
{
    char buf[32], *end;
    if (it_json_get(json, path, buf, sizeof buf) < 0)
        return -1;
    long long v = strtoll(buf, &end, 10);
    return *end || end == buf ? -1 : v;
}

bool it_json_eq(const char *json, const char *path, const char *want)
{
    char got[4096];
    if (it_json_get(json, path, got, sizeof got) < 0) {
        fprintf(stderr, "harness: JSON has no %s (want \"%s\") in %.400s\n", path, want, json);
        return false;
    }
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "harness: JSON %s is \"%s\", want \"%s\"\n", path, got, want);
        return false;
    }
    return true;
}

/* ---- libcurl ---------------------------------------------------------------------------- */

int it_http_init(struct it_http *h)
{
    h->easy = curl_easy_init();
    return h->easy ? 0 : -1;
}

void it_http_free(struct it_http *h)
{
    if (h->easy)
        curl_easy_cleanup(h->easy);
    h->easy = NULL;
}

struct transfer {
    const struct it_http_req *q;
    struct it_response *r;
    uint64_t sent;
};

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    struct it_response *r = t->r;
    size_t len = size * n;
    int minor, status;
    if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
        drop_headers(r);
        if (sscanf(p, "HTTP/1.%d %3d", &minor, &status) == 2) {
            r->minor = minor;
            r->status = status;
        }
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (colon)
        add_header(r, p, (size_t)(colon - p), colon + 1, len - (size_t)(colon - p) - 1);
    return len;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * n;
    if (t->q->discard) {
        t->r->body_bytes += len;
        t->r->body_fnv = it_fnv1a(t->r->body_fnv, p, len);
    } else {
        body_add(t->r, p, len);
    }
    return len;
}

static size_t on_upload(char *p, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    uint64_t total = t->q->gen_len ? t->q->gen_len : t->q->body_len;
    uint64_t left = total - t->sent;
    size_t k = left < size * n ? (size_t)left : size * n;
    if (t->q->gen_len)
        it_pattern((unsigned char *)p, t->sent, k);
    else
        memcpy(p, (const char *)t->q->body + t->sent, k);
    t->sent += k;
    return k;
}

int it_http_do(struct it_http *h, const struct it_http_req *q, struct it_response *r)
{
    CURL *e = h->easy;
    struct transfer t = {.q = q, .r = r};
    struct curl_slist *hdrs = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    bool has_body = q->body || q->gen_len;
    bool has_expect = false;

    memset(r, 0, sizeof *r);
    r->body_fnv = IT_FNV_INIT;
    it_buf_add(&r->body, "", 0);
    curl_easy_reset(e); /* options only: the connection cache stays */
    for (const char *const *hp = q->headers; hp && *hp; hp++) {
        hdrs = curl_slist_append(hdrs, *hp);
        has_expect |= strncasecmp(*hp, "Expect:", 7) == 0;
    }
    if (!has_expect) /* curl would add "Expect: 100-continue" to big bodies on its own */
        hdrs = curl_slist_append(hdrs, "Expect:");
    if (q->chunked)
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
    curl_easy_setopt(e, CURLOPT_URL, q->url);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, q->timeout_ms ? q->timeout_ms : 30000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
    if (has_body) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_upload);
        curl_easy_setopt(e, CURLOPT_READDATA, &t);
        curl_off_t size = q->chunked ? -1 : (curl_off_t)(q->gen_len ? q->gen_len : q->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, size);
    }
    if (q->method && strcmp(q->method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (q->method)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, q->method);

    CURLcode rc = curl_easy_perform(e);
    curl_slist_free_all(hdrs);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    if (rc != CURLE_OK) {
        fprintf(stderr, "harness: %s %s: %s (%s)\n", q->method ? q->method : "", q->url,
                curl_easy_strerror(rc), errbuf);
        it_response_free(r);
        return -1;
    }
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &r->connects);
    const char *te = it_response_header(r, "Transfer-Encoding");
    r->chunked = te && it_header_has_token(te, "chunked");
    return 0;
}

int it_http_get(struct it_http *h, const char *url, const char *const *headers,
                struct it_response *r)
{
    struct it_http_req q = {.url = url, .headers = headers};
    return it_http_do(h, &q, r);
}

long it_origin_requests(int port)
{
    struct it_http h;
    struct it_response r;
    long n = -1;
    if (it_http_init(&h) == 0 && it_http_get(&h, it_url(port, "/stats"), NULL, &r) == 0) {
        n = (long)it_json_int(r.body.data, "requests");
        it_response_free(&r);
    }
    it_http_free(&h);
    return n;
}

long long it_plugin_metric(int admin, const char *plugin, const char *instance, const char *name)
{
    struct it_http h;
    struct it_response r;
    long long v = -1;
    if (it_http_init(&h) != 0)
        return -1;
    if (it_http_get(&h, it_url(admin, "/-/metrics"), NULL, &r) == 0) {
        char key[256];
        snprintf(key, sizeof(key),
                 "lintel_plugin_events_total{plugin=\"%s\",instance=\"%s\",name=\"%s\"} ", plugin,
                 instance, name);
        const char *p = r.status == 200 ? strstr(r.body.data, key) : NULL;
        v = p ? strtoll(p + strlen(key), NULL, 10) : r.status == 200 ? 0 : -1;
        it_response_free(&r);
    }
    it_http_free(&h);
    return v;
}

long long it_plugin_metric_wait(int admin, const char *plugin, const char *instance,
                                const char *name, long long want, int timeout_ms)
{
    int64_t end = it_now_ms() + timeout_ms;
    long long v;
    while ((v = it_plugin_metric(admin, plugin, instance, name)) < want && it_now_ms() < end)
        it_sleep_ms(10);
    return v;
}
