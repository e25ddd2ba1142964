/* Fuzz target: a client's byte stream (pipelined requests, Content-Length and chunked bodies)
 * through the request-side state machine of core/client.c: find the head's end, parse it, frame
 * the body (Content-Length counter or the strict chunked decoder of core/http1_chunked.c), then
 * the next request.
 *
 * Invariants: every decoder call keeps its contract (progress, never past the input, "done" is
 * sticky), a chunked body decodes to the same bytes and ends at the same offset however the
 * stream is split into reads, decoded data re-encoded as chunks (random sizes, extensions,
 * trailers) decodes back to itself, and every accepted head passes the round trip. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common.h"

/* Writes data as a chunked body with random chunk sizes, some chunk extensions and a trailer. */
static void chunk_encode(const unsigned char *p, size_t len, uint64_t *seed, struct evbuffer *out)
{
    size_t pos = 0;
    while (pos < len) {
        size_t n = 1 + (size_t)(fuzz_rand(seed) % 64);
        if (n > len - pos)
            n = len - pos;
        switch (fuzz_rand(seed) % 4) {
        case 0:
            evbuffer_add_printf(out, "%zX;name=\"q\\\"v\"\r\n", n);
            break;
        case 1:
            evbuffer_add_printf(out, "%zx ; a ; b=c\r\n", n);
            break;
        default:
            evbuffer_add_printf(out, "%zx\r\n", n);
            break;
        }
        evbuffer_add(out, p + pos, n);
        evbuffer_add(out, "\r\n", 2);
        pos += n;
    }
    static const char with_trailer[] = "0\r\nX-Trailer: t\r\n\r\n", last[] = "0\r\n\r\n";
    if (fuzz_rand(seed) & 1)
        evbuffer_add(out, with_trailer, sizeof(with_trailer) - 1);
    else
        evbuffer_add(out, last, sizeof(last) - 1);
}

static size_t chunked_body(const unsigned char *p, size_t len, uint64_t seed, bool *ok)
{
    struct evbuffer *whole = evbuffer_new(), *split = evbuffer_new();
    FUZZ_CHECK(whole && split, "out of memory");
    size_t used1, used2;
    int r1 = fuzz_chunked_decode(p, len, 0, whole, &used1);
    int r2 = fuzz_chunked_decode(p, len, seed, split, &used2);
    size_t dlen = evbuffer_get_length(whole);
    FUZZ_CHECK(r1 == r2, "split changed the result: %d / %d", r1, r2);
    FUZZ_CHECK(fuzz_evbuf_eq(whole, split), "split changed the decoded body");
    if (r1 == 1) {
        FUZZ_CHECK(used1 == used2, "split changed where the body ends: %zu / %zu", used1, used2);
        /* What came out, framed again, must come out the same. */
        struct evbuffer *enc = evbuffer_new(), *dec = evbuffer_new();
        FUZZ_CHECK(enc && dec, "out of memory");
        chunk_encode(evbuffer_pullup(whole, -1), dlen, &seed, enc);
        size_t elen = evbuffer_get_length(enc), used3;
        int r3 = fuzz_chunked_decode(evbuffer_pullup(enc, -1), elen, seed, dec, &used3);
        FUZZ_CHECK(r3 == 1 && used3 == elen, "re-encoded body: rc %d, used %zu of %zu", r3, used3,
                   elen);
        FUZZ_CHECK(fuzz_evbuf_eq(dec, whole), "re-encoded body decodes differently");
        evbuffer_free(enc);
        evbuffer_free(dec);
    }
    evbuffer_free(whole);
    evbuffer_free(split);
    *ok = r1 == 1;
    return used1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    /* The first two bytes seed the read splits; the rest is the stream. */
    uint64_t seed = ((uint64_t)data[0] << 8 | data[1]) + 1;
    const unsigned char *s = data + 2;
    size_t len = size - 2, pos = 0;
    struct lintel_head_limits lim = {2048, 24};
    char err[256];
    for (unsigned requests = 0; pos < len && requests < 64; requests++) {
        size_t skip;
        ssize_t n =
            lintel_head_find_end((const char *)s + pos, len - pos, &lim, &skip, err, sizeof(err));
        if (n <= 0)
            break; /* more bytes needed, or the connection is answered 400/431 and closed */
        struct lintel_arena *arena = lintel_arena_new(4096);
        FUZZ_CHECK(arena != NULL, "out of memory");
        struct lintel_head h;
        int rc = lintel_head_parse(&h, true, (const char *)s + pos + skip, (size_t)n, &lim, arena,
                                   err, sizeof(err));
        pos += skip + (size_t)n;
        if (rc) {
            lintel_arena_free(arena);
            break; /* answered with an error, then closed */
        }
        fuzz_head_check_accepted(&h);
        fuzz_head_round_trip(&h);
        bool ok = true;
        if (h.body == LINTEL_BODY_LENGTH) {
            if (h.content_length > len - pos)
                ok = false; /* waits for more bytes */
            else
                pos += (size_t)h.content_length;
        } else if (h.body == LINTEL_BODY_CHUNKED) {
            pos += chunked_body(s + pos, len - pos, seed, &ok);
        }
        lintel_arena_free(arena);
        if (!ok)
            break;
        FUZZ_CHECK(pos <= len, "read past the stream");
    }
    return 0;
}
