/* Fuzz target: request heads through lintel's framing checks (core/http1.c).
 *
 * Invariants beyond "no crash": lintel_head_find_end gives the same answer on every shorter
 * prefix of a delimited head (0: more bytes needed), an accepted head satisfies what the parser
 * promises (token names, no control bytes in values, no Content-Length with Transfer-Encoding,
 * a Host on HTTP/1.1...), and the differential round trip: an accepted request written back as
 * bytes parses again to the same method, target, header list and body framing. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Small limits, so that the fuzzer reaches the 431 paths too. */
    struct lintel_head_limits lim = {4096, 32};
    const char *buf = (const char *)data;
    size_t skip = 0;
    char err[256];
    ssize_t n = lintel_head_find_end(buf, size, &lim, &skip, err, sizeof(err));
    FUZZ_CHECK(n >= -2, "find_end returned %zd", n);
    if (n <= 0)
        return 0;
    FUZZ_CHECK(skip + (size_t)n <= size && skip + (size_t)n <= lim.header_bytes,
               "head end %zu+%zd past the input or the limit", skip, n);
    FUZZ_CHECK(memcmp(buf + skip + n - 4, "\r\n\r\n", 4) == 0, "head does not end in CRLFCRLF");
    /* Bytes arriving one by one: every shorter prefix needs more, the full head is found. */
    size_t probes[3] = {skip + (size_t)n - 1, (skip + (size_t)n) / 2, (size_t)data[0] % (skip + n)};
    for (int i = 0; i < 3; i++) {
        size_t s2;
        ssize_t m = lintel_head_find_end(buf, probes[i], &lim, &s2, err, sizeof(err));
        FUZZ_CHECK(m == 0, "prefix of %zu bytes gave %zd", probes[i], m);
    }
    size_t s3;
    FUZZ_CHECK(lintel_head_find_end(buf, skip + (size_t)n, &lim, &s3, err, sizeof(err)) == n &&
                   s3 == skip,
               "the head alone is delimited differently");

    struct lintel_arena *arena = lintel_arena_new(4096);
    FUZZ_CHECK(arena != NULL, "out of memory");
    struct lintel_head h;
    int rc = lintel_head_parse(&h, true, buf + skip, (size_t)n, &lim, arena, err, sizeof(err));
    if (rc == 0) {
        fuzz_head_check_accepted(&h);
        fuzz_head_round_trip(&h);
    } else {
        FUZZ_CHECK(rc == 400 || rc == 431 || rc == 505 || rc == 500, "request status %d", rc);
        FUZZ_CHECK(err[0] != '\0', "refusal %d without a reason", rc);
    }
    lintel_arena_free(arena);
    return 0;
}
