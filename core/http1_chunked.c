/* Strict chunked transfer-coding decoder (RFC 9112 7.1).
 *
 * A byte-at-a-time state machine over the framing, so that it gives the same answer however the
 * input is split; chunk data is handed back in runs without being looked at. Anything the
 * grammar does not allow is an error rather than a guess, because a framing two hops read
 * differently is how requests get smuggled. */
#include "http1.h"

#include <stdio.h>

#define MAX_SIZE_DIGITS 16
#define MAX_EXT_BYTES 4096
#define MAX_TRAILER_BYTES (16 * 1024)
/* Sizes above this would not fit in an off_t (or a signed byte count) downstream. */
#define MAX_CHUNK_SIZE ((uint64_t)INT64_MAX)

enum {
    S_SIZE,        /* chunk-size digits */
    S_EXT_WS,      /* BWS after the size or a value: only more BWS or ';' may follow */
    S_EXT_SEMI,    /* after ';': BWS, then an extension name */
    S_EXT_NAME,    /* in an extension name */
    S_EXT_NAME_WS, /* BWS after a name: '=' or ';' must follow */
    S_EXT_EQ,      /* after '=': BWS, then a token or a quoted-string */
    S_EXT_TOKEN,   /* in a token value */
    S_EXT_QUOTED,  /* in a quoted-string value */
    S_EXT_ESCAPE,  /* after a backslash in a quoted-string */
    S_EXT_CLOSED,  /* after the closing quote */
    S_SIZE_LF,     /* the CR of the size line was seen */
    S_DATA,        /* chunk data */
    S_DATA_CR,     /* the CRLF after chunk data */
    S_DATA_LF,
    S_TRAILER, /* start of a trailer line, or of the final empty line */
    S_TRAILER_NAME,
    S_TRAILER_VALUE,
    S_TRAILER_LF,
    S_FINAL_LF, /* the CR of the final empty line was seen */
    S_DONE,
};

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* qdtext: a field character other than DQUOTE and backslash. */
static bool is_qdtext(unsigned char c)
{
    return c != '"' && c != '\\' && lintel_http1_is_field_char(c);
}

void lintel_chunked_init(struct lintel_chunked *c)
{
    c->state = S_SIZE;
    c->remaining = 0;
    c->line_len = 0;
    c->trailer_bytes = 0;
    c->digits = 0;
}

static int fail(char *err, size_t errlen, const char *msg)
{
    if (errlen)
        snprintf(err, errlen, "%s", msg);
    return -1;
}

/* One framing byte. Returns 0, or -1 with err set. */
static int step_byte(struct lintel_chunked *c, unsigned char ch, char *err, size_t errlen)
{
    if (c->state >= S_EXT_WS && c->state <= S_EXT_CLOSED && ch != '\r' &&
        ++c->line_len > MAX_EXT_BYTES)
        return fail(err, errlen, "chunk extension too long");
    if (c->state >= S_TRAILER && c->state <= S_FINAL_LF && ++c->trailer_bytes > MAX_TRAILER_BYTES)
        return fail(err, errlen, "trailers too long");
    if (ch == '\n' && c->state != S_SIZE_LF && c->state != S_DATA_LF && c->state != S_TRAILER_LF &&
        c->state != S_FINAL_LF)
        return fail(err, errlen, "bare LF in chunked framing");

    switch (c->state) {
    case S_SIZE: {
        int d = hexval(ch);
        if (d >= 0) {
            if (++c->digits > MAX_SIZE_DIGITS)
                return fail(err, errlen, "chunk size too long");
            c->remaining = c->remaining << 4 | (uint64_t)d;
            if (c->remaining > MAX_CHUNK_SIZE)
                return fail(err, errlen, "chunk size overflow");
            return 0;
        }
        if (!c->digits)
            return fail(err, errlen, "bad chunk size");
        if (ch == '\r') {
            c->state = S_SIZE_LF;
            return 0;
        }
        if (ch == ';' || is_ws(ch)) {
            c->state = ch == ';' ? S_EXT_SEMI : S_EXT_WS;
            c->line_len = 1;
            return 0;
        }
        return fail(err, errlen, "bad chunk size");
    }
    case S_EXT_WS:
        if (is_ws(ch))
            return 0;
        if (ch == ';') {
            c->state = S_EXT_SEMI;
            return 0;
        }
        break;
    case S_EXT_SEMI:
        if (is_ws(ch))
            return 0;
        if (lintel_http1_is_tchar(ch)) {
            c->state = S_EXT_NAME;
            return 0;
        }
        break;
    case S_EXT_NAME:
    case S_EXT_NAME_WS:
        if (c->state == S_EXT_NAME && lintel_http1_is_tchar(ch))
            return 0;
        if (is_ws(ch)) {
            c->state = S_EXT_NAME_WS;
            return 0;
        }
        if (ch == '=') {
            c->state = S_EXT_EQ;
            return 0;
        }
        if (ch == ';') {
            c->state = S_EXT_SEMI;
            return 0;
        }
        if (ch == '\r' && c->state == S_EXT_NAME) {
            c->state = S_SIZE_LF;
            return 0;
        }
        break;
    case S_EXT_EQ:
        if (is_ws(ch))
            return 0;
        if (ch == '"') {
            c->state = S_EXT_QUOTED;
            return 0;
        }
        if (lintel_http1_is_tchar(ch)) {
            c->state = S_EXT_TOKEN;
            return 0;
        }
        break;
    case S_EXT_TOKEN:
    case S_EXT_CLOSED:
        if (c->state == S_EXT_TOKEN && lintel_http1_is_tchar(ch))
            return 0;
        if (is_ws(ch)) {
            c->state = S_EXT_WS;
            return 0;
        }
        if (ch == ';') {
            c->state = S_EXT_SEMI;
            return 0;
        }
        if (ch == '\r') {
            c->state = S_SIZE_LF;
            return 0;
        }
        break;
    case S_EXT_QUOTED:
        if (ch == '"')
            c->state = S_EXT_CLOSED;
        else if (ch == '\\')
            c->state = S_EXT_ESCAPE;
        else if (!is_qdtext(ch))
            break;
        return 0;
    case S_EXT_ESCAPE:
        if (!lintel_http1_is_field_char(ch))
            break;
        c->state = S_EXT_QUOTED;
        return 0;
    case S_SIZE_LF:
        if (ch != '\n')
            return fail(err, errlen, "bare CR in chunked framing");
        c->state = c->remaining ? S_DATA : S_TRAILER;
        return 0;
    case S_DATA_CR:
        if (ch != '\r')
            return fail(err, errlen, "missing CRLF after chunk data");
        c->state = S_DATA_LF;
        return 0;
    case S_DATA_LF:
        if (ch != '\n')
            return fail(err, errlen, "missing CRLF after chunk data");
        lintel_chunked_init(c);
        return 0;
    case S_TRAILER:
        if (ch == '\r') {
            c->state = S_FINAL_LF;
            return 0;
        }
        if (is_ws(ch))
            return fail(err, errlen, "obsolete line folding in trailer");
        if (!lintel_http1_is_tchar(ch))
            return fail(err, errlen, "bad trailer name");
        c->state = S_TRAILER_NAME;
        return 0;
    case S_TRAILER_NAME:
        if (ch == ':')
            c->state = S_TRAILER_VALUE;
        else if (!lintel_http1_is_tchar(ch))
            return fail(err, errlen, "bad trailer name");
        return 0;
    case S_TRAILER_VALUE:
        if (ch == '\r')
            c->state = S_TRAILER_LF;
        else if (!lintel_http1_is_field_char(ch))
            return fail(err, errlen, "control character in trailer");
        return 0;
    case S_TRAILER_LF:
    case S_FINAL_LF:
        if (ch != '\n')
            return fail(err, errlen, "bare CR in chunked framing");
        c->state = c->state == S_FINAL_LF ? S_DONE : S_TRAILER;
        return 0;
    }
    /* every break above: a byte the extension grammar does not allow there */
    return fail(err, errlen, "bad chunk extension");
}

int lintel_chunked_step(struct lintel_chunked *c, const char *in, size_t len, size_t *skip,
                        size_t *data, char *err, size_t errlen)
{
    size_t pos = 0;
    *skip = 0;
    *data = 0;
    while (pos < len && c->state != S_DONE) {
        if (c->state == S_DATA) {
            /* Data is returned as soon as it starts, framing after it waits for the next call:
             * the caller's contract is "framing, then data" per call. */
            size_t take = len - pos;
            if (c->remaining < take)
                take = (size_t)c->remaining;
            c->remaining -= take;
            if (!c->remaining)
                c->state = S_DATA_CR;
            *skip = pos;
            *data = take;
            return 0;
        }
        if (step_byte(c, (unsigned char)in[pos], err, errlen) < 0)
            return -1;
        pos++;
    }
    *skip = pos;
    return c->state == S_DONE ? 1 : 0;
}
