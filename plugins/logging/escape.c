/* logging: byte-level output for records. Every append is bounded by the record buffer; the LOG
 * handler runs these on every request, so the common case (printable ASCII) is a table lookup
 * per byte and one memcpy per run. */
#include <string.h>
#include <time.h>

#include "logging-internal.h"

/* "00" .. "99": two digits per step. */
static const char pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

void lg_put_u64(struct lg_out *o, uint64_t v)
{
    char tmp[20];
    char *t = tmp + sizeof(tmp);
    while (v >= 100) {
        t -= 2;
        memcpy(t, pairs + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10) {
        t -= 2;
        memcpy(t, pairs + 2 * v, 2);
    } else
        *--t = (char)('0' + v);
    lg_put(o, t, (size_t)(tmp + sizeof(tmp) - t));
}

/* v (< 1000000) as six digits. */
static void put_6(struct lg_out *o, uint32_t v)
{
    char tmp[6];
    memcpy(tmp, pairs + 2 * (v / 10000), 2);
    memcpy(tmp + 2, pairs + 2 * (v / 100 % 100), 2);
    memcpy(tmp + 4, pairs + 2 * (v % 100), 2);
    lg_put(o, tmp, 6);
}

/* v (< 1000) as three digits. */
static void put_3(struct lg_out *o, uint32_t v)
{
    char tmp[3] = {(char)('0' + v / 100), pairs[2 * (v % 100)], pairs[2 * (v % 100) + 1]};
    lg_put(o, tmp, 3);
}

void lg_put_seconds(struct lg_out *o, uint64_t us)
{
    lg_put_u64(o, us / 1000000);
    LG_LIT(o, ".");
    put_6(o, (uint32_t)(us % 1000000));
}

/* ---- strings ------------------------------------------------------------------------------- */

/* 0: copied as is. 1: escaped. 2: the first byte of a (possibly invalid) UTF-8 sequence. */
enum { SAFE = 0, ESC = 1, HIGH = 2 };

static const unsigned char json_class[256] = {
    [0 ... 0x1f] = ESC, ['"'] = ESC, ['\\'] = ESC, [0x7f] = ESC, [0x80 ... 0xff] = HIGH,
};
static const unsigned char default_class[256] = {
    [0 ... 0x1f] = ESC,
    ['"'] = ESC,
    ['\\'] = ESC,
    [0x7f ... 0xff] = ESC,
};

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *p, const unsigned char *e)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* the range of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if ((size_t)(e - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

static const char hex[] = "0123456789abcdef";

/* Nonzero when one of the 8 bytes in x may need escaping: < 0x20, '"', '\\', 0x7f or >= 0x80.
 * Never zero when one does (a false alarm only sends those bytes through the table). */
static inline uint64_t word_special(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    uint64_t below_space = (x - ones * 0x20) & ~x; /* a byte < 0x20 (the classic haszero) */
    uint64_t quote = (q - ones) & ~q, backslash = (b - ones) & ~b;
    uint64_t del_or_high = (x + ones) | x; /* 0x7f + 1 sets the high bit; >= 0x80 has it */
    return (below_space | quote | backslash | del_or_high) & high;
}

/* The first byte from p on that is not SAFE in table (or e): 8 bytes at a time while it can. */
static inline const unsigned char *skip_safe(const unsigned char *p, const unsigned char *e,
                                             const unsigned char *table)
{
    uint64_t x;
    while (e - p >= 8) {
        memcpy(&x, p, 8);
        if (word_special(x))
            break;
        p += 8;
    }
    while (p < e && table[*p] == SAFE)
        p++;
    return p;
}

/* Cuts n to the output's value cap. */
static size_t capped(struct lg_out *o, size_t n)
{
    if (n > o->value_cap) {
        o->truncated = 1;
        return o->value_cap;
    }
    return n;
}

/* From the first byte that needs a look (p) to e: the rare path, out of line. */
__attribute__((noinline)) static void json_escape_from(struct lg_out *o, const unsigned char *p,
                                                       const unsigned char *e)
{
    while (p < e) {
        const unsigned char *run = p;
        p = skip_safe(p, e, json_class);
        if (p > run)
            lg_put(o, (const char *)run, (size_t)(p - run));
        if (p == e)
            break;
        unsigned char c = *p;
        if (json_class[c] == HIGH) {
            size_t len = utf8_len(p, e);
            if (len) {
                lg_put(o, (const char *)p, len);
                p += len;
            } else {
                LG_LIT(o, "\\ufffd");
                p++;
            }
            continue;
        }
        char esc[6] = {'\\', 0};
        size_t elen = 2;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        lg_put(o, esc, elen);
        p++;
    }
}

void lg_put_json_str(struct lg_out *o, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + capped(o, n);
    const unsigned char *q = skip_safe(p, e, json_class);
    lg_put(o, s, (size_t)(q - p));
    if (q < e)
        json_escape_from(o, q, e);
}

void lg_put_json_value(struct lg_out *o, struct lintel_str s)
{
    if (!s.ptr) {
        LG_LIT(o, "null");
        return;
    }
    LG_LIT(o, "\"");
    lg_put_json_str(o, s.ptr, s.len);
    LG_LIT(o, "\"");
}

__attribute__((noinline)) static void default_escape_from(struct lg_out *o, const unsigned char *p,
                                                          const unsigned char *e)
{
    while (p < e) {
        char esc[4] = {'\\', 'x', hex[*p >> 4], hex[*p & 15]};
        lg_put(o, esc, 4);
        const unsigned char *run = ++p;
        p = skip_safe(p, e, default_class);
        lg_put(o, (const char *)run, (size_t)(p - run));
    }
}

void lg_put_default_str(struct lg_out *o, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + capped(o, n);
    const unsigned char *q = skip_safe(p, e, default_class);
    lg_put(o, s, (size_t)(q - p));
    if (q < e)
        default_escape_from(o, q, e);
}

/* ---- times --------------------------------------------------------------------------------- */

void lg_clock_init(struct lg_clock *c)
{
    c->sec = UINT64_MAX;
}

/* v (0 <= v < 10^n) as n digits at p. */
static char *digits(char *p, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

static void clock_set(struct lg_clock *c, uint64_t sec)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        memset(&tm, 0, sizeof(tm));
    unsigned year = (unsigned)(tm.tm_year + 1900) % 10000, mon = (unsigned)tm.tm_mon % 12;
    char *p = c->iso; /* 2023-11-14T22:13:20 */
    p = digits(p, year, 4);
    *p++ = '-';
    p = digits(p, mon + 1, 2);
    *p++ = '-';
    p = digits(p, (unsigned)tm.tm_mday, 2);
    *p++ = 'T';
    p = digits(p, (unsigned)tm.tm_hour, 2);
    *p++ = ':';
    p = digits(p, (unsigned)tm.tm_min, 2);
    *p++ = ':';
    p = digits(p, (unsigned)tm.tm_sec, 2);
    *p = '\0';
    p = c->clf; /* 14/Nov/2023:22:13:20 +0000 */
    p = digits(p, (unsigned)tm.tm_mday, 2);
    *p++ = '/';
    memcpy(p, months + 3 * mon, 3);
    p += 3;
    *p++ = '/';
    p = digits(p, year, 4);
    *p++ = ':';
    memcpy(p, c->iso + 11, 8);
    memcpy(p + 8, " +0000", 7);
    c->sec = sec;
}

void lg_put_time_iso(struct lg_out *o, struct lg_clock *c, uint64_t unix_us)
{
    uint64_t sec = unix_us / 1000000;
    if (sec != c->sec)
        clock_set(c, sec);
    lg_put(o, c->iso, sizeof(c->iso) - 1);
    LG_LIT(o, ".");
    put_3(o, (uint32_t)(unix_us / 1000 % 1000));
    LG_LIT(o, "Z");
}

void lg_put_time_clf(struct lg_out *o, struct lg_clock *c, uint64_t unix_us)
{
    uint64_t sec = unix_us / 1000000;
    if (sec != c->sec)
        clock_set(c, sec);
    lg_put(o, c->clf, sizeof(c->clf) - 1);
}

void lg_put_msec(struct lg_out *o, uint64_t unix_us)
{
    lg_put_u64(o, unix_us / 1000000);
    LG_LIT(o, ".");
    put_3(o, (uint32_t)(unix_us / 1000 % 1000));
}
