/* logging: byte-level output for records. Every append is bounded by the record buffer; the LOG
 * handler runs these on every request, so the common case (a printable ASCII value with room
 * for it) is copied 8 bytes at a time straight into the record, checked a word at a time, and
 * numbers are written in place. Bytes that need escaping take the table-driven path. */
#include <string.h>
#include <time.h>

#include "logging-internal.h"

/* "00" .. "99": two digits per step. */
static const char pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* v (< 1000) as three digits at d. */
static inline void digits3(char *d, uint32_t v)
{
    d[0] = (char)('0' + v / 100);
    memcpy(d + 1, pairs + 2 * (v % 100), 2);
}

/* v (< 1000000) as six digits at d. */
static inline void digits6(char *d, uint32_t v)
{
    memcpy(d, pairs + 2 * (v / 10000), 2);
    memcpy(d + 2, pairs + 2 * (v / 100 % 100), 2);
    memcpy(d + 4, pairs + 2 * (v % 100), 2);
}

/* Decimal digits of v. */
static size_t u64_digits(uint64_t v)
{
    size_t n = 1;
    for (; v >= 100; v /= 100)
        n += 2;
    return n + (v >= 10);
}

/* Up to three digits (statuses, small byte counts) in one constant-size append; longer numbers
 * are written in place, right to left, two digits per step. */
void lg_put_u64(struct lg_out *o, uint64_t v)
{
    if (v < 10) {
        char c = (char)('0' + v);
        lg_put(o, &c, 1);
        return;
    }
    if (v < 100) {
        lg_put(o, pairs + 2 * v, 2);
        return;
    }
    if (v < 1000) {
        char tmp[3];
        digits3(tmp, (uint32_t)v);
        lg_put(o, tmp, 3);
        return;
    }
    size_t n = u64_digits(v);
    if (lg_room(o) < n) {
        lg_overflow(o);
        return;
    }
    char *t = o->p + n;
    o->p = t;
    while (v >= 100) {
        t -= 2;
        memcpy(t, pairs + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10)
        memcpy(t - 2, pairs + 2 * v, 2);
    else
        t[-1] = (char)('0' + v);
}

/* '.' and v (< 1000000) as six digits. */
static void put_frac6(struct lg_out *o, uint32_t v)
{
    char tmp[7] = {'.'};
    digits6(tmp + 1, v);
    lg_put(o, tmp, 7);
}

/* '.' and v (< 1000) as three digits. */
static void put_frac3(struct lg_out *o, uint32_t v)
{
    char tmp[4] = {'.'};
    digits3(tmp + 1, v);
    lg_put(o, tmp, 4);
}

void lg_put_seconds(struct lg_out *o, uint64_t us)
{
    uint64_t sec = us / 1000000;
    uint32_t frac = (uint32_t)(us - sec * 1000000);
    if (sec < 10) { /* most durations: "S.UUUUUU" in one append */
        char tmp[8] = {(char)('0' + sec), '.'};
        digits6(tmp + 2, frac);
        lg_put(o, tmp, 8);
        return;
    }
    lg_put_u64(o, sec);
    put_frac6(o, frac);
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

/* Nonzero exactly when one of the 8 bytes in x needs a look: < 0x20, '"', '\\', 0x7f or >= 0x80.
 * Per byte, with no borrow or carry coming in: b - 0x20 has its high bit set when b < 0x20 (or
 * b >= 0xa0); (b ^ c) - 1 when b == c (or b ^ c > 0x80); b + 1 when b >= 0x7f; b itself when
 * b >= 0x80. A borrow or carry only leaves a byte that needed a look, so it can set high bits
 * above that byte but never hide one: the word is flagged whenever a byte needs it, and only
 * then (test_format.c checks it against a byte-at-a-time reference). */
static inline uint64_t word_special(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t below_space = x - ones * 0x20;
    uint64_t quote = (x ^ (ones * '"')) - ones, backslash = (x ^ (ones * '\\')) - ones;
    uint64_t del_or_high = (x + ones) | x;
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

/* Bytes that never need escaping: what a short string is padded with to fill a word. */
#define FILLER 0x6161616161616161ULL /* "aaaaaaaa" */

/* Copies s[0..n) to d while no byte may need escaping (word_special), a word at a time, with
 * no per-byte work: the common value (printable ASCII) costs a few instructions per 8 bytes.
 * Returns how many bytes were copied: n, or the offset of the word that holds the first byte
 * needing a look (the caller goes on from there). Reads only s[0..n) and writes only d[0..n);
 * a tail shorter than a word is read and written as overlapping words, or padded with FILLER
 * for the check alone. */
__attribute__((always_inline)) static inline size_t copy_safe(char *d, const unsigned char *s,
                                                              size_t n)
{
    uint64_t x;
    size_t i = 0;
    if (n >= 8) {
        for (; n - i >= 8; i += 8) {
            memcpy(&x, s + i, 8);
            if (word_special(x))
                return i;
            memcpy(d + i, &x, 8);
        }
        if (i < n) { /* the last 8 bytes, some of them copied already (with the same values) */
            memcpy(&x, s + n - 8, 8);
            if (word_special(x))
                return i;
            memcpy(d + n - 8, &x, 8);
        }
        return n;
    }
    if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        if (word_special(a | (uint64_t)b << 32))
            return 0;
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else if (n >= 2) {
        uint16_t a, b;
        memcpy(&a, s, 2);
        memcpy(&b, s + n - 2, 2);
        if (word_special(a | (uint64_t)b << 16 | (FILLER << 32)))
            return 0;
        memcpy(d, &a, 2);
        memcpy(d + n - 2, &b, 2);
    } else if (n == 1) {
        if (word_special(s[0] | (FILLER << 8)))
            return 0;
        d[0] = (char)s[0];
    }
    return n;
}

/* From the first byte that may need a look (p) to e: the rare path, out of line. */
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

/* An escaper's rare path: from p, which may need a look, to e. */
typedef void escape_from_fn(struct lg_out *o, const unsigned char *p, const unsigned char *e);

/* s[0..n) escaped: copied at once while nothing needs escaping and it fits uncut, the rest (or
 * all of a value that may be cut or may not fit) through escape_from. */
static inline void put_escaped(struct lg_out *o, const char *s, size_t n,
                               escape_from_fn *escape_from)
{
    const unsigned char *p = (const unsigned char *)s;
    if (n <= o->value_cap && lg_room(o) >= n) {
        size_t k = copy_safe(o->p, p, n);
        o->p += k;
        if (k < n)
            escape_from(o, p + k, p + n);
        return;
    }
    escape_from(o, p, p + capped(o, n));
}

void lg_put_json_str(struct lg_out *o, const char *s, size_t n)
{
    put_escaped(o, s, n, json_escape_from);
}

/* The rest of a value lg_put_json_value began: from p (which may need a look) to e, then the
 * closing quote. */
__attribute__((noinline)) static void json_value_rest(struct lg_out *o, const unsigned char *p,
                                                      const unsigned char *e)
{
    json_escape_from(o, p, e);
    LG_LIT(o, "\"");
}

/* A value that may be cut (value cap) or may not fit. */
__attribute__((noinline)) static void json_value_bounded(struct lg_out *o, struct lintel_str s)
{
    LG_LIT(o, "\"");
    lg_put_json_str(o, s.ptr, s.len);
    LG_LIT(o, "\"");
}

/* The common case (a value that fits, nothing to escape) calls nothing, so that it needs no
 * saved registers; everything else is a tail call. */
void lg_put_json_value(struct lg_out *o, struct lintel_str s)
{
    if (!s.ptr) {
        LG_LIT(o, "null");
        return;
    }
    if (s.len > o->value_cap || lg_room(o) < s.len + 2) {
        json_value_bounded(o, s);
        return;
    }
    const unsigned char *p = (const unsigned char *)s.ptr;
    char *d = o->p;
    size_t k = copy_safe(d + 1, p, s.len);
    d[0] = '"';
    if (k == s.len) {
        d[k + 1] = '"';
        o->p = d + k + 2;
        return;
    }
    o->p = d + 1 + k;
    json_value_rest(o, p + k, p + s.len);
}

__attribute__((noinline)) static void default_escape_from(struct lg_out *o, const unsigned char *p,
                                                          const unsigned char *e)
{
    const unsigned char *q = skip_safe(p, e, default_class);
    lg_put(o, (const char *)p, (size_t)(q - p));
    for (p = q; p < e;) {
        char esc[4] = {'\\', 'x', hex[*p >> 4], hex[*p & 15]};
        lg_put(o, esc, 4);
        const unsigned char *run = ++p;
        p = skip_safe(p, e, default_class);
        lg_put(o, (const char *)run, (size_t)(p - run));
    }
}

void lg_put_default_str(struct lg_out *o, const char *s, size_t n)
{
    put_escaped(o, s, n, default_escape_from);
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
    put_frac3(o, (uint32_t)(unix_us / 1000 % 1000));
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
    put_frac3(o, (uint32_t)(unix_us / 1000 % 1000));
}
