/* HTTP/1.x message heads and body framing, strict.
 *
 * http-parser 2.9 parses the request line / status line and headers; lintel adds the checks that
 * http-parser lets through (see lintel_head_parse). Bodies are framed by lintel itself: a
 * Content-Length counter or the strict chunked decoder below. Nothing here does I/O. */
#ifndef LINTEL_HTTP1_H
#define LINTEL_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "arena.h"

#define LINTEL_HDR_DELETED 0x1u /* removed (by the core or a plugin); skipped when serialising */
#define LINTEL_HDR_HOP 0x2u     /* hop-by-hop: never forwarded */
#define LINTEL_HDR_SET 0x4u     /* set by a plugin (kept when a plugin replaces the response) */

struct lintel_header {
    const char *name; /* NUL-terminated, as received */
    const char *value; /* NUL-terminated, leading/trailing OWS removed */
    uint32_t name_len, value_len;
    uint32_t flags;
};

struct lintel_headers {
    struct lintel_header *v;
    size_t n, cap;
};

enum lintel_body_kind {
    LINTEL_BODY_NONE,    /* no body */
    LINTEL_BODY_LENGTH,  /* Content-Length bytes */
    LINTEL_BODY_CHUNKED, /* Transfer-Encoding: chunked */
    LINTEL_BODY_CLOSE,   /* responses only: until the connection closes */
};

struct lintel_head {
    bool is_request;
    /* request */
    int method; /* enum http_method */
    const char *method_str;
    const char *target; /* request-target, NUL-terminated */
    size_t target_len;
    const char *path; /* target's path, NUL-terminated copy ("/" when the target has none) */
    size_t path_len;
    const char *query; /* after '?', NUL-terminated copy, or NULL */
    size_t query_len;
    const char *host; /* Host header value (requests), or NULL */
    size_t host_len;
    /* response */
    int status;
    const char *reason;
    /* both */
    unsigned short http_major, http_minor;
    struct lintel_headers headers;
    enum lintel_body_kind body; /* responses: as sent, before the request method is known */
    uint64_t content_length;    /* LENGTH only */
    bool keepalive;        /* version default adjusted by Connection: close / keep-alive */
    bool expect_continue;  /* requests: Expect: 100-continue */
    bool upgrade;          /* Connection: upgrade with an Upgrade header */
};

struct lintel_head_limits {
    size_t header_bytes; /* longest head, request line and final CRLF included */
    unsigned headers;    /* most header lines */
};

/* Scans buf[0..len) for the end of a head (the empty line). Leading empty lines (CRLF) before a
 * request line are allowed and counted in *skip. Returns:
 *   >0  the head length (from after *skip, final CRLFCRLF included),
 *    0  more bytes are needed (len within limits),
 *   -1  bad line ends: a bare LF or a bare CR (400), err set;
 *   -2  no end within lim->header_bytes (431), err set.
 * The skipped empty lines count against lim->header_bytes too. It rescans from the start on each
 * call, so it may simply be called again as bytes arrive. */
ssize_t lintel_head_find_end(const char *buf, size_t len, const struct lintel_head_limits *lim,
                             size_t *skip, char *err, size_t errlen);

/* Parses a complete head (as delimited by lintel_head_find_end) into h; strings are copied into
 * arena. Returns 0, or an HTTP status for the error with err set to a short phrase:
 *   requests: 400 (malformed; Content-Length with Transfer-Encoding; duplicate or malformed
 *   Content-Length; a Transfer-Encoding other than a single final "chunked"; obsolete line
 *   folding; control characters (NUL included) in a header name or value; missing or duplicate
 *   Host on HTTP/1.1; bad request-target), 431 (more than lim->headers header lines),
 *   505 (a version other than 1.0 / 1.1);
 *   responses: 502 for any of the same problems.
 * Hop-by-hop headers (Connection and every token it lists, Keep-Alive, TE, Trailer, Upgrade,
 * Proxy-Connection, Proxy-Authorization) are flagged LINTEL_HDR_HOP; Host, Content-Length and
 * Transfer-Encoding never are, even when Connection lists them.
 * Request-targets: origin-form; absolute-form (http/https: path and query come from it, host is
 * its authority, and a Host header naming another host is a 400); "*" for OPTIONS only (path is
 * "*"). CONNECT is refused with 400. An unknown method (not in http-parser's table) is a 400.
 * Responses: body is LINTEL_BODY_NONE for 1xx, 204 and 304 whatever the headers say.
 * 500 when the arena is out of memory. On any failure *h is partly filled and must not be used;
 * what was allocated stays in the arena until it is freed. */
int lintel_head_parse(struct lintel_head *h, bool is_request, const char *buf, size_t len,
                      const struct lintel_head_limits *lim, struct lintel_arena *arena, char *err,
                      size_t errlen);

/* The body framing of a response to a request with request_method (HEAD, 1xx, 204, 304: none). */
enum lintel_body_kind lintel_response_body_kind(const struct lintel_head *resp, int request_method);

/* First header called name (case-insensitive, deleted ones skipped), or NULL. */
struct lintel_header *lintel_headers_get(const struct lintel_headers *hs, const char *name,
                                         size_t name_len);

/* Appends a header (strings are borrowed: they must live as long as hs, e.g. in the same arena).
 * Returns 0, or -1 when out of memory. */
int lintel_headers_add(struct lintel_headers *hs, struct lintel_arena *arena, const char *name,
                       size_t name_len, const char *value, size_t value_len);

/* RFC 9110 character classes, for code that checks names and values it did not parse itself (a
 * header set by a plugin must not carry a CR or LF). Any thread. */
/* True for a token character (tchar): header names, methods. */
bool lintel_http1_is_tchar(unsigned char c);
/* True for a byte allowed in a header value: VCHAR, obs-text, SP, HTAB. */
bool lintel_http1_is_field_char(unsigned char c);
/* The same over a whole string, in one call (header names and values plugins set): true when
 * s[0..n) is a token (n > 0), or holds only field characters. */
bool lintel_http1_token_ok(const char *s, size_t n);
bool lintel_http1_field_ok(const char *s, size_t n);

/* Strict chunked-body decoder. Rejects: chunk sizes that are not 1..16 hex digits, overflow,
 * chunk extensions that are not `;token[=token|quoted-string]` or longer than 4096 bytes in all,
 * bare CR or LF, missing CRLF after chunk data, malformed trailer lines, trailers longer than
 * 16k. Trailers are validated and dropped. */
struct lintel_chunked {
    int state;
    uint64_t remaining; /* data bytes left in the current chunk */
    size_t line_len;    /* bytes in the current size/extension/trailer line */
    size_t trailer_bytes;
    unsigned digits;
};

void lintel_chunked_init(struct lintel_chunked *c);

/* Decodes from in[0..len). On return 0 or 1: the first *skip bytes of in are framing (to drop),
 * and the next *data bytes are body data (to pass on); *skip + *data > 0 whenever len > 0.
 * Returns 1 when the whole body (last chunk and trailers) ends at *skip + *data, 0 when more
 * input is expected, -1 on malformed framing with err set. Call again with the rest of the input.
 * One call returns at most one run of data; framing after it is left for the next call. Chunk
 * sizes above INT64_MAX are an overflow. Once it has returned 1 it returns 1 again and consumes
 * nothing (what follows belongs to the next message). On -1, *skip and *data are 0.
 */
int lintel_chunked_step(struct lintel_chunked *c, const char *in, size_t len, size_t *skip,
                        size_t *data, char *err, size_t errlen);

#endif
