/* Fuzz target: upstream response heads and bodies (core/http1.c, core/http1_chunked.c), as
 * core/upstream.c reads them.
 *
 * Invariants: an accepted response satisfies the parser's promises (1xx/204/304 carry no body,
 * token names, clean values), the framing for a HEAD request is always "none", the differential
 * round trip (status, header list, framing survive being written back and parsed again), and a
 * chunked body decodes to the same bytes however the input is split. */
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lintel_head_limits lim = {4096, 32};
    const char *buf = (const char *)data;
    size_t skip = 0;
    char err[256];
    ssize_t n = lintel_head_find_end(buf, size, &lim, &skip, err, sizeof(err));
    if (n <= 0 || skip) /* upstream.c refuses leading empty lines from an upstream */
        return 0;
    struct lintel_arena *arena = lintel_arena_new(4096);
    FUZZ_CHECK(arena != NULL, "out of memory");
    struct lintel_head h;
    int rc = lintel_head_parse(&h, false, buf, (size_t)n, &lim, arena, err, sizeof(err));
    if (rc) {
        FUZZ_CHECK(rc == 502 || rc == 500, "response refused with %d (%s)", rc, err);
        lintel_arena_free(arena);
        return 0;
    }
    fuzz_head_check_accepted(&h);
    fuzz_head_round_trip(&h);
    FUZZ_CHECK(lintel_response_body_kind(&h, HTTP_HEAD) == LINTEL_BODY_NONE, "HEAD with a body");
    FUZZ_CHECK(lintel_response_body_kind(&h, HTTP_GET) == h.body, "GET framing differs");

    if (h.body == LINTEL_BODY_CHUNKED) {
        const unsigned char *body = data + n;
        size_t blen = size - (size_t)n;
        uint64_t seed = blen ? body[blen - 1] * 0x100000001b3ull + blen : 1;
        struct evbuffer *whole = evbuffer_new(), *split = evbuffer_new();
        FUZZ_CHECK(whole && split, "out of memory");
        size_t used1, used2;
        int r1 = fuzz_chunked_decode(body, blen, 0, whole, &used1);
        int r2 = fuzz_chunked_decode(body, blen, seed, split, &used2);
        FUZZ_CHECK(r1 == r2, "split changed the result: %d / %d", r1, r2);
        FUZZ_CHECK(fuzz_evbuf_eq(whole, split), "split changed the decoded body");
        if (r1 == 1)
            FUZZ_CHECK(used1 == used2, "split changed where the body ends: %zu / %zu", used1,
                       used2);
        evbuffer_free(whole);
        evbuffer_free(split);
    }
    lintel_arena_free(arena);
    return 0;
}
