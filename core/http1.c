/* HTTP/1.x heads: where they end, what they say, and the header list helpers.
 *
 * A head is parsed twice on purpose. lintel's own scanner reads the raw bytes strictly (line
 * ends, token names, control characters, request line) and fills struct lintel_head; http-parser
 * then runs over the same bytes as a second opinion and must agree on the version, method, target,
 * status and number of header lines. A message two parsers read differently is a smuggling vector,
 * so any disagreement is an error rather than a choice. The body is never given to http-parser:
 * it is paused when the head is complete. */
#include "http1.h"

#include <http_parser.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Character classes (RFC 9110 / RFC 9112). */
#define C_TCHAR 0x1  /* token: header names, methods, Connection options */
#define C_FIELD 0x2  /* header value, reason phrase: VCHAR, obs-text, SP, HTAB */
#define C_TARGET 0x4 /* request-target: visible ASCII only */
#define C_HOST 0x8   /* Host value: reg-name, IP-literal and port characters */

/* Each entry is the OR of its byte's classes: 15 all four, 14 all but token, 7 token, field and
 * target but not Host, 6 field and target, 2 field only (SP, HTAB, obs-text), 0 none (CTL). */
static const unsigned char cclass[256] = {
    /* 00 */ 0,  0,  0,  0,  0,  0,  0,  0,  0,  2,  0,  0,  0,  0,  0,  0,
    /* 10 */ 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    /* 20 */ 2,  15, 6,  7,  15, 15, 15, 15, 14, 14, 15, 15, 14, 15, 15, 6,
    /* 30 */ 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 14, 14, 6,  14, 6,  6,
    /* 40 */ 6,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    /* 50 */ 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 14, 6,  14, 7,  15,
    /* 60 */ 7,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    /* 70 */ 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  7,  6,  15, 0,
    /* 80 */ 2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
    /* 90 */ 2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
    /* a0 */ 2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
    /* b0 */ 2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
    /* c0 */ 2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
    /* d0 */ 2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
    /* e0 */ 2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
    /* f0 */ 2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,
};

#define IS(cls, ch) (cclass[(unsigned char)(ch)] & (cls))

/* Spare header slots in the parsed list, so that the headers the proxy adds (Via,
 * X-Forwarded-For, X-Request-Id...) usually fit without growing the array. */
#define SPARE_HEADERS 8

bool lintel_http1_is_tchar(unsigned char c)
{
    return IS(C_TCHAR, c);
}

bool lintel_http1_is_field_char(unsigned char c)
{
    return IS(C_FIELD, c);
}

/* True when s[0..n) holds only field characters (no CTL but HTAB, no DEL). Values are most of a
 * head's bytes, so eight are checked at a time: a word passes when no byte is below 0x20 or
 * equal to 0x7f; a word that fails (an HTAB, or a real CTL) is rechecked byte by byte. */
static bool field_chars_ok(const char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        uint64_t below20 = (x - ones * 0x20) & ~x & highs;
        uint64_t y = x ^ (ones * 0x7f);
        uint64_t is7f = (y - ones) & ~y & highs;
        if (!(below20 | is7f))
            continue;
        for (size_t j = i; j < i + 8; j++)
            if (!IS(C_FIELD, s[j]))
                return false;
    }
    for (; i < n; i++)
        if (!IS(C_FIELD, s[i]))
            return false;
    return true;
}

bool lintel_http1_token_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!IS(C_TCHAR, s[i]))
            return false;
    return true;
}

bool lintel_http1_field_ok(const char *s, size_t n)
{
    return field_chars_ok(s, n);
}

/* Number of LF bytes in s[0..n), eight at a time: a byte of y is zero exactly where s has an LF,
 * and the expression below sets the high bit of exactly those bytes (no carries between them). */
static size_t count_lf(const char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, lows = ones * 0x7f, lfs = ones * '\n';
    size_t count = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        uint64_t y = x ^ lfs;
        uint64_t zero = ~(((y & lows) + lows) | y | lows);
        count += (size_t)(((zero >> 7) * ones) >> 56); /* sums the 0/1 bytes */
    }
    for (; i < n; i++)
        count += s[i] == '\n';
    return count;
}

/* Sets err and returns status, so that every failure is one line. */
static int fail(char *err, size_t errlen, int status, const char *msg)
{
    if (errlen)
        snprintf(err, errlen, "%s", msg);
    return status;
}

ssize_t lintel_head_find_end(const char *buf, size_t len, const struct lintel_head_limits *lim,
                             size_t *skip, char *err, size_t errlen)
{
    /* Leading empty lines count against the limit too: they are bytes a client made us hold. */
    size_t n = len < lim->header_bytes ? len : lim->header_bytes;
    size_t i = 0;

    while (i + 1 < n && buf[i] == '\r' && buf[i + 1] == '\n')
        i += 2;
    *skip = i;

    /* Line by line: the next CR must be followed by LF, and no LF may come before it. Two
     * memchr passes over each line are still far cheaper than a byte loop. */
    size_t line = i;
    for (;;) {
        const char *cr = memchr(buf + line, '\r', n - line);
        size_t end = cr ? (size_t)(cr - buf) : n;
        if (memchr(buf + line, '\n', end - line))
            return fail(err, errlen, -1, "bare LF in head");
        if (!cr || end + 1 >= n)
            break;
        if (buf[end + 1] != '\n')
            return fail(err, errlen, -1, "bare CR in head");
        if (end == line) /* the empty line; the first line is never empty after the skip */
            return (ssize_t)(end + 2 - i);
        line = end + 2;
    }
    if (len >= lim->header_bytes)
        return fail(err, errlen, -2, "head too large");
    return 0;
}

/* Parses "HTTP/d.d". Returns 0, 400 (not a version) or 505 (a version other than 1.0/1.1). */
static int parse_version(const char *s, size_t n, struct lintel_head *h)
{
    if (n != 8 || memcmp(s, "HTTP/", 5) != 0 || s[5] < '0' || s[5] > '9' || s[6] != '.' ||
        s[7] < '0' || s[7] > '9')
        return 400;
    h->http_major = (unsigned short)(s[5] - '0');
    h->http_minor = (unsigned short)(s[7] - '0');
    if (h->http_major != 1 || h->http_minor > 1)
        return 505;
    return 0;
}

/* Splits the target into path and query, writing NUL-terminated copies at *out (which has room
 * for target_len + 3 bytes). A '#fragment' is dropped. */
static void split_target(struct lintel_head *h, const char *p, size_t n, char *out)
{
    const char *end = p + n;
    const char *hash = memchr(p, '#', n);
    if (hash)
        end = hash;
    const char *q = memchr(p, '?', (size_t)(end - p));
    const char *pend = q ? q : end;

    if (pend == p) { /* absolute-form with no path: "http://host" or "http://host?x" */
        memcpy(out, "/", 2);
        h->path_len = 1;
    } else {
        h->path_len = (size_t)(pend - p);
        memcpy(out, p, h->path_len);
        out[h->path_len] = '\0';
    }
    h->path = out;
    if (q) {
        char *qs = out + h->path_len + 1;
        h->query_len = (size_t)(end - q - 1);
        memcpy(qs, q + 1, h->query_len);
        qs[h->query_len] = '\0';
        h->query = qs;
    }
}

/* Request-target forms lintel serves: origin-form, absolute-form (http or https; the authority
 * then becomes h->host) and "*" for OPTIONS. CONNECT (authority-form) is refused with 400: a
 * gateway does not open tunnels, and 405 would oblige an Allow header no route can answer. */
static int parse_target(struct lintel_head *h, char *t, size_t n, char *out, char *err,
                        size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        if (!IS(C_TARGET, t[i]))
            return fail(err, errlen, 400, "bad request-target");
    if (strcmp(h->method_str, "CONNECT") == 0)
        return fail(err, errlen, 400, "CONNECT not supported");
    if (t[0] == '/') {
        split_target(h, t, n, out);
        return 0;
    }
    if (n == 1 && t[0] == '*') {
        if (strcmp(h->method_str, "OPTIONS") != 0)
            return fail(err, errlen, 400, "bad request-target");
        memcpy(out, "*", 2);
        h->path = out;
        h->path_len = 1;
        return 0;
    }
    size_t s;
    if (n > 7 && strncasecmp(t, "http://", 7) == 0)
        s = 7;
    else if (n > 8 && strncasecmp(t, "https://", 8) == 0)
        s = 8;
    else
        return fail(err, errlen, 400, "bad request-target");
    size_t a = s;
    while (a < n && t[a] != '/' && t[a] != '?' && t[a] != '#')
        a++;
    if (a == s)
        return fail(err, errlen, 400, "bad request-target");
    for (size_t i = s; i < a; i++) /* userinfo ("user@host") is deprecated and a spoofing aid */
        if (!IS(C_HOST, t[i]))
            return fail(err, errlen, 400, "bad request-target");
    /* out has room for the authority, path and query: n + 3 bytes minus the scheme */
    h->host_len = a - s;
    memcpy(out, t + s, h->host_len);
    out[h->host_len] = '\0';
    h->host = out;
    split_target(h, t + a, n - a, out + h->host_len + 1);
    return 0;
}

static int parse_request_line(struct lintel_head *h, char *line, size_t n, char *out, char *err,
                              size_t errlen)
{
    char *sp1 = memchr(line, ' ', n);
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line + n - sp1 - 1)) : NULL;
    if (!sp2)
        return fail(err, errlen, 400, "malformed request line");
    size_t mlen = (size_t)(sp1 - line), tlen = (size_t)(sp2 - sp1 - 1);
    size_t vlen = (size_t)(line + n - sp2 - 1);
    if (!mlen || !tlen || !vlen)
        return fail(err, errlen, 400, "empty part in request line");

    int rc = parse_version(sp2 + 1, vlen, h);
    if (rc)
        return fail(err, errlen, rc, rc == 505 ? "HTTP version not supported" : "bad HTTP version");

    for (size_t i = 0; i < mlen; i++)
        if (!IS(C_TCHAR, line[i]))
            return fail(err, errlen, 400, "bad method");
    *sp1 = '\0';
    *sp2 = '\0';
    h->method_str = line; /* h->method comes from http-parser: check_with_http_parser */
    h->target = sp1 + 1;
    h->target_len = tlen;
    return parse_target(h, sp1 + 1, tlen, out, err, errlen);
}

/* "HTTP/d.d SP 3DIGIT [SP reason]": the SP before an empty reason is tolerated (many servers
 * omit it and it cannot change framing). The caller has checked the line for control bytes. */
static int parse_status_line(struct lintel_head *h, char *line, size_t n, char *err, size_t errlen)
{
    if (n < 12 || line[8] != ' ' || parse_version(line, 8, h) != 0)
        return fail(err, errlen, 502, "bad upstream status line");
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (line[i] < '0' || line[i] > '9')
            return fail(err, errlen, 502, "bad upstream status line");
        st = st * 10 + (line[i] - '0');
    }
    if (st < 100 || (n > 12 && line[12] != ' '))
        return fail(err, errlen, 502, "bad upstream status line");
    h->status = st;
    h->reason = n > 12 ? line + 13 : line + n;
    return 0;
}

/* Validates every header line of lines[0..end) (end: the final empty line) and appends each to
 * h->headers, NUL-terminating name and value in place. */
static int parse_header_lines(struct lintel_head *h, char *p, char *end, int bad, char *err,
                              size_t errlen)
{
    struct lintel_headers *hs = &h->headers;
    while (p < end) {
        char *lf = memchr(p, '\n', (size_t)(end + 2 - p));
        if (!lf || lf == p || lf[-1] != '\r')
            return fail(err, errlen, bad, "bare LF in head");
        char *cr = lf - 1;
        if (cr == p)
            return fail(err, errlen, bad, "bytes after the end of the head");
        if (*p == ' ' || *p == '\t')
            return fail(err, errlen, bad, "obsolete line folding");

        char *c = p;
        while (IS(C_TCHAR, *c))
            c++;
        if (*c != ':') {
            if (c == cr)
                return fail(err, errlen, bad, "bad header name");
            if (*c == ' ' || *c == '\t')
                return fail(err, errlen, bad, "whitespace before colon");
            if (!IS(C_FIELD, *c))
                return fail(err, errlen, bad, "control character in header name");
            return fail(err, errlen, bad, "bad header name");
        }
        if (c == p)
            return fail(err, errlen, bad, "empty header name");
        /* Every value byte, the first one included: http-parser skips leading whitespace
         * without looking at what it skips. */
        if (!field_chars_ok(c + 1, (size_t)(cr - c - 1)))
            return fail(err, errlen, bad, "control character in header value");

        char *v = c + 1, *ve = cr;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if (hs->n == hs->cap) /* cannot happen: the array was sized from the line count */
            return fail(err, errlen, bad, "bad head");
        struct lintel_header *hd = &hs->v[hs->n++];
        *c = '\0';
        *ve = '\0';
        hd->name = p;
        hd->name_len = (uint32_t)(c - p);
        hd->value = v;
        hd->value_len = (uint32_t)(ve - v);
        hd->flags = 0;
        p = lf + 1;
    }
    return 0;
}

/* Header names lintel interprets. */
enum hname {
    H_OTHER,
    H_HOST,
    H_CONTENT_LENGTH,
    H_TRANSFER_ENCODING,
    H_CONNECTION,
    H_UPGRADE,
    H_EXPECT,
    H_HOP, /* hop-by-hop with no further meaning here */
};

static bool name_is(const struct lintel_header *hd, const char *name, size_t len)
{
    return hd->name_len == len && strncasecmp(hd->name, name, len) == 0;
}

#define NAME_IS(hd, lit) name_is((hd), lit, sizeof(lit) - 1)

/* Switching on the length first keeps the common case (an unrelated name) to one compare. */
static enum hname classify(const struct lintel_header *hd)
{
    switch (hd->name_len) {
    case 2:
        return NAME_IS(hd, "TE") ? H_HOP : H_OTHER;
    case 4:
        return NAME_IS(hd, "Host") ? H_HOST : H_OTHER;
    case 6:
        return NAME_IS(hd, "Expect") ? H_EXPECT : H_OTHER;
    case 7:
        if (NAME_IS(hd, "Upgrade"))
            return H_UPGRADE;
        return NAME_IS(hd, "Trailer") ? H_HOP : H_OTHER;
    case 10:
        if (NAME_IS(hd, "Connection"))
            return H_CONNECTION;
        return NAME_IS(hd, "Keep-Alive") ? H_HOP : H_OTHER;
    case 14:
        return NAME_IS(hd, "Content-Length") ? H_CONTENT_LENGTH : H_OTHER;
    case 16:
        return NAME_IS(hd, "Proxy-Connection") ? H_HOP : H_OTHER;
    case 17:
        return NAME_IS(hd, "Transfer-Encoding") ? H_TRANSFER_ENCODING : H_OTHER;
    case 19:
        return NAME_IS(hd, "Proxy-Authorization") ? H_HOP : H_OTHER;
    default:
        return H_OTHER;
    }
}

/* 1*DIGIT only (no sign, no list, no spaces), at most INT64_MAX so that it fits an off_t. */
static bool parse_content_length(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (!n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > ((uint64_t)INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

struct conn_opts {
    bool close, keepalive, upgrade;
};

/* Reads one Connection value: its options, and flags every header it names as hop-by-hop.
 * Host and the framing headers are never flagged that way: naming them in Connection is how a
 * client would strip the routing or length information the upstream relies on, and the proxy
 * re-frames bodies itself. */
static int apply_connection(struct lintel_headers *hs, const char *v, struct conn_opts *o)
{
    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        const char *t = v;
        while (IS(C_TCHAR, *v))
            v++;
        size_t tl = (size_t)(v - t);
        while (*v == ' ' || *v == '\t')
            v++;
        if (*v && *v != ',')
            return -1;
        if (!tl)
            continue;
        if (tl == 5 && strncasecmp(t, "close", 5) == 0)
            o->close = true;
        else if (tl == 10 && strncasecmp(t, "keep-alive", 10) == 0)
            o->keepalive = true;
        else if (tl == 7 && strncasecmp(t, "upgrade", 7) == 0)
            o->upgrade = true;
        for (size_t j = 0; j < hs->n; j++) {
            struct lintel_header *hd = &hs->v[j];
            if (!name_is(hd, t, tl))
                continue;
            enum hname k = classify(hd);
            if (k != H_HOST && k != H_CONTENT_LENGTH && k != H_TRANSFER_ENCODING)
                hd->flags |= LINTEL_HDR_HOP;
        }
    }
    return 0;
}

/* Host: reg-name / IP-literal characters and a port; empty is allowed (RFC 9112 3.2). In
 * absolute-form the target's authority is the host, and a Host header that names another one
 * is refused so that routing and the upstream cannot disagree. */
static int check_host(struct lintel_head *h, const struct lintel_header *host, unsigned nhost,
                      char *err, size_t errlen)
{
    if (nhost > 1)
        return fail(err, errlen, 400, "duplicate Host");
    if (!nhost && h->http_minor == 1)
        return fail(err, errlen, 400, "missing Host");
    if (host) {
        for (uint32_t i = 0; i < host->value_len; i++)
            if (!IS(C_HOST, host->value[i]))
                return fail(err, errlen, 400, "bad Host");
    }
    if (h->host) { /* absolute-form: parse_target set it to the authority */
        if (host &&
            (host->value_len != h->host_len || strncasecmp(host->value, h->host, h->host_len) != 0))
            return fail(err, errlen, 400, "Host does not match request-target");
    } else if (host) {
        h->host = host->value;
        h->host_len = host->value_len;
    }
    return 0;
}

/* The checks that need the whole header list: framing, Host, Connection, hop-by-hop. */
static int check_headers(struct lintel_head *h, int bad, char *err, size_t errlen)
{
    struct lintel_headers *hs = &h->headers;
    const struct lintel_header *host = NULL, *cl = NULL, *te = NULL;
    unsigned nhost = 0, ncl = 0, nte = 0;
    bool has_upgrade = false, has_connection = false;

    for (size_t i = 0; i < hs->n; i++) {
        struct lintel_header *hd = &hs->v[i];
        switch (classify(hd)) {
        case H_HOST:
            host = host ? host : hd;
            nhost++;
            break;
        case H_CONTENT_LENGTH:
            cl = hd;
            ncl++;
            break;
        case H_TRANSFER_ENCODING:
            te = hd;
            nte++;
            break;
        case H_CONNECTION:
            has_connection = true;
            hd->flags |= LINTEL_HDR_HOP;
            break;
        case H_UPGRADE:
            has_upgrade = true;
            hd->flags |= LINTEL_HDR_HOP;
            break;
        case H_EXPECT:
            /* RFC 9110 10.1.1: ignored in HTTP/1.0 requests */
            if (h->is_request && h->http_minor == 1 && strcasecmp(hd->value, "100-continue") == 0)
                h->expect_continue = true;
            break;
        case H_HOP:
            hd->flags |= LINTEL_HDR_HOP;
            break;
        case H_OTHER:
            break;
        }
    }

    if (ncl > 1)
        return fail(err, errlen, bad, "duplicate Content-Length");
    if (cl && !parse_content_length(cl->value, cl->value_len, &h->content_length))
        return fail(err, errlen, bad, "malformed Content-Length");
    if (nte > 1)
        return fail(err, errlen, bad, "duplicate Transfer-Encoding");
    /* Only a lone "chunked" is accepted: any other coding makes the length depend on how each
     * hop understands it, which is what request smuggling exploits. */
    if (te && strcasecmp(te->value, "chunked") != 0)
        return fail(err, errlen, bad, "unsupported Transfer-Encoding");
    if (te && cl)
        return fail(err, errlen, bad, "Content-Length with Transfer-Encoding");
    if (te && h->http_minor == 0) /* RFC 9112 6.1: framing of such a message is faulty */
        return fail(err, errlen, bad, "Transfer-Encoding in HTTP/1.0");

    struct conn_opts co = {false, false, false};
    if (has_connection) {
        for (size_t i = 0; i < hs->n; i++)
            if (NAME_IS(&hs->v[i], "Connection") && apply_connection(hs, hs->v[i].value, &co) < 0)
                return fail(err, errlen, bad, "bad Connection");
    }
    h->keepalive = co.close ? false : (h->http_minor == 1 || co.keepalive);
    h->upgrade = co.upgrade && has_upgrade;

    if (h->is_request) {
        int rc = check_host(h, host, nhost, err, errlen);
        if (rc)
            return rc;
        h->body = te ? LINTEL_BODY_CHUNKED : cl ? LINTEL_BODY_LENGTH : LINTEL_BODY_NONE;
    } else if ((h->status >= 100 && h->status < 200) || h->status == 204 || h->status == 304) {
        h->body = LINTEL_BODY_NONE;
    } else {
        h->body = te ? LINTEL_BODY_CHUNKED : cl ? LINTEL_BODY_LENGTH : LINTEL_BODY_CLOSE;
    }
    return 0;
}

/* What http-parser saw, for the comparison. */
struct second_opinion {
    const char *url;
    size_t url_len;
    size_t fields;
};

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct second_opinion *so = p->data;
    if (!so->url)
        so->url = at;
    so->url_len += n;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct second_opinion *so = p->data;
    so->fields++;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    http_parser_pause(p, 1); /* never let it read (and frame) the body */
    return 0;
}

static const http_parser_settings second_opinion_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_headers_complete = on_headers_complete,
};

/* Runs http-parser over the caller's unmodified bytes and compares. */
static int check_with_http_parser(struct lintel_head *h, const char *buf, size_t len,
                                  const char *copy, int bad, char *err, size_t errlen)
{
    struct second_opinion so = {NULL, 0, 0};
    http_parser p;
    http_parser_init(&p, h->is_request ? HTTP_REQUEST : HTTP_RESPONSE);
    p.data = &so;
    size_t parsed = http_parser_execute(&p, &second_opinion_settings, buf, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&p);
    if (e == HPE_HEADER_OVERFLOW) /* its compiled-in limit is 80k */
        return fail(err, errlen, h->is_request ? 431 : 502, "head too large for http-parser");
    if (e == HPE_INVALID_METHOD)
        return fail(err, errlen, 400, "unknown method");
    if (e != HPE_PAUSED && e != HPE_OK) {
        if (errlen)
            snprintf(err, errlen, "malformed head (http-parser: %s)", http_errno_name(e));
        return bad;
    }
    /* Paused (only on_headers_complete pauses) on the final LF: the head ends where ours does. */
    bool same = e == HPE_PAUSED && parsed + 1 == len && p.http_major == h->http_major &&
                p.http_minor == h->http_minor && so.fields == h->headers.n;
    if (h->is_request)
        same = same && strcmp(http_method_str((enum http_method)p.method), h->method_str) == 0 &&
               so.url == buf + (h->target - copy) && so.url_len == h->target_len;
    else
        same = same && (int)p.status_code == h->status;
    if (!same)
        return fail(err, errlen, bad, "ambiguous head");
    if (h->is_request)
        h->method = (int)p.method;
    return 0;
}

int lintel_head_parse(struct lintel_head *h, bool is_request, const char *buf, size_t len,
                      const struct lintel_head_limits *lim, struct lintel_arena *arena, char *err,
                      size_t errlen)
{
    int bad = is_request ? 400 : 502;
    int large = is_request ? 431 : 502;
    memset(h, 0, sizeof(*h));
    h->is_request = is_request;
    h->method = -1;

    if (len > lim->header_bytes)
        return fail(err, errlen, large, "head too large");
    if (len < 4 || memcmp(buf + len - 4, "\r\n\r\n", 4) != 0)
        return fail(err, errlen, bad, "incomplete head");

    /* Size the header array from the line count (bare LFs make it an over-estimate, and are
     * refused below), so that no header is ever copied twice. */
    size_t lines = count_lf(buf, len);
    const char *lf0 = memchr(buf, '\n', len);
    size_t line0 = (size_t)(lf0 - buf);
    if (lines - 2 > lim->headers)
        return fail(err, errlen, large, "too many header lines");

    /* One allocation: the header array, a copy of the head that names and values are cut out
     * of in place, and room for NUL-terminated copies of path and query. */
    size_t cap = lines - 2 + SPARE_HEADERS;
    size_t arr = cap * sizeof(struct lintel_header);
    char *mem = lintel_arena_alloc(arena, arr + len + 1 + line0 + 3);
    if (!mem)
        return fail(err, errlen, 500, "out of memory");
    h->headers.v = (struct lintel_header *)(void *)mem;
    h->headers.cap = cap;
    char *copy = mem + arr;
    char *pathq = copy + len + 1;
    memcpy(copy, buf, len);
    copy[len] = '\0';

    if (line0 == 0 || copy[line0 - 1] != '\r')
        return fail(err, errlen, bad, "bare LF in head");
    if (!field_chars_ok(copy, line0 - 1)) /* a bare CR or other CTL in the first line */
        return fail(err, errlen, bad,
                    is_request ? "control character in request line"
                               : "control character in status line");
    copy[line0 - 1] = '\0';
    int rc = is_request ? parse_request_line(h, copy, line0 - 1, pathq, err, errlen)
                        : parse_status_line(h, copy, line0 - 1, err, errlen);
    if (rc)
        return rc;
    rc = parse_header_lines(h, copy + line0 + 1, copy + len - 2, bad, err, errlen);
    if (rc)
        return rc;
    rc = check_headers(h, bad, err, errlen);
    if (rc)
        return rc;
    return check_with_http_parser(h, buf, len, copy, bad, err, errlen);
}

enum lintel_body_kind lintel_response_body_kind(const struct lintel_head *resp, int request_method)
{
    if (request_method == HTTP_HEAD || (resp->status >= 100 && resp->status < 200) ||
        resp->status == 204 || resp->status == 304)
        return LINTEL_BODY_NONE;
    return resp->body;
}

struct lintel_header *lintel_headers_get(const struct lintel_headers *hs, const char *name,
                                         size_t name_len)
{
    for (size_t i = 0; i < hs->n; i++) {
        struct lintel_header *hd = &hs->v[i];
        if (!(hd->flags & LINTEL_HDR_DELETED) && name_is(hd, name, name_len))
            return hd;
    }
    return NULL;
}

int lintel_headers_add(struct lintel_headers *hs, struct lintel_arena *arena, const char *name,
                       size_t name_len, const char *value, size_t value_len)
{
    if (name_len > UINT32_MAX || value_len > UINT32_MAX)
        return -1;
    if (hs->n == hs->cap) {
        /* The old array stays in the arena until the request ends; doubling keeps that waste
         * below the final size. */
        size_t cap = hs->cap ? hs->cap * 2 : 8;
        struct lintel_header *v = lintel_arena_alloc(arena, cap * sizeof(*v));
        if (!v)
            return -1;
        if (hs->n)
            memcpy(v, hs->v, hs->n * sizeof(*v));
        hs->v = v;
        hs->cap = cap;
    }
    struct lintel_header *hd = &hs->v[hs->n++];
    hd->name = name;
    hd->name_len = (uint32_t)name_len;
    hd->value = value;
    hd->value_len = (uint32_t)value_len;
    hd->flags = 0;
    return 0;
}
