/* Pure text work for the signature plugin: splitting and sorting query parameters, parsing the
 * Authorization header, dates, nonces and hex. No host calls and no allocation, so the unit tests
 * run these directly; docs/plugins/signature.md states each rule these functions implement. */
#include <stdlib.h>
#include <string.h>

#include "signature-internal.h"

/* ---- algorithms ------------------------------------------------------------------------------ */

static const struct {
    const char *name;
    size_t size;
} algs[SIG_ALG_COUNT] = {
    [SIG_HMAC_SHA1] = {"HMAC-SHA1", 20},
    [SIG_HMAC_SHA256] = {"HMAC-SHA256", 32},
    [SIG_HMAC_SHA512] = {"HMAC-SHA512", 64},
};

const char *sig_alg_name(enum sig_alg alg)
{
    return algs[alg].name;
}

size_t sig_alg_size(enum sig_alg alg)
{
    return algs[alg].size;
}

size_t sig_digest_size(enum sig_digest d)
{
    return d == SIG_MD5 ? 16 : 32;
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

bool sig_ieq(const char *a, size_t alen, const char *b)
{
    size_t i = 0;
    for (; i < alen && b[i]; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return i == alen && !b[i];
}

int sig_alg_parse(const char *s, size_t len)
{
    for (int a = 0; a < SIG_ALG_COUNT; a++)
        if (sig_ieq(s, len, algs[a].name))
            return a;
    return -1;
}

/* ---- query parameters ---------------------------------------------------------------------- */

size_t sig_query_max(const char *q, size_t len)
{
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        n += q[i] == '&';
    return n;
}

size_t sig_query_split(const char *q, size_t len, struct sig_param *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        const char *piece = q + i;
        const char *amp = memchr(piece, '&', len - i);
        size_t plen = amp ? (size_t)(amp - piece) : len - i;
        i += plen + 1;
        if (plen == 0)
            continue; /* "a=1&&b=2", a leading or trailing '&' */
        const char *eq = memchr(piece, '=', plen);
        size_t nlen = eq ? (size_t)(eq - piece) : plen;
        out[n++] = (struct sig_param){
            .name = piece,
            .name_len = nlen,
            .value = eq ? eq + 1 : "",
            .value_len = eq ? plen - nlen - 1 : 0,
        };
    }
    return n;
}

/* memcmp order, a shorter string first when it is a prefix of the other. */
static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int param_cmp(const void *pa, const void *pb)
{
    const struct sig_param *a = pa, *b = pb;
    int c = bytes_cmp(a->name, a->name_len, b->name, b->name_len);
    return c ? c : bytes_cmp(a->value, a->value_len, b->value, b->value_len);
}

void sig_params_sort(struct sig_param *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof(*v), param_cmp);
}

size_t sig_params_join(const struct sig_param *v, size_t n, const char *skip, char *dst)
{
    size_t skip_len = skip ? strlen(skip) : 0, len = 0;
    for (size_t i = 0; i < n; i++) {
        if (skip && v[i].name_len == skip_len && memcmp(v[i].name, skip, skip_len) == 0)
            continue;
        size_t need = (len ? 1 : 0) + v[i].name_len + 1 + v[i].value_len;
        if (dst) {
            char *p = dst + len;
            if (len)
                *p++ = '&';
            memcpy(p, v[i].name, v[i].name_len);
            p += v[i].name_len;
            *p++ = '=';
            memcpy(p, v[i].value, v[i].value_len);
        }
        len += need;
    }
    return len;
}

/* ---- the Authorization header ---------------------------------------------------------------- */

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool ctl(char c)
{
    return (unsigned char)c < 0x20 || c == 0x7f;
}

bool sig_auth_is_hmac(const char *v, size_t len)
{
    return len >= 5 && sig_ieq(v, 5, "HMAC-");
}

int sig_auth_parse(const char *v, size_t len, struct sig_auth *out, const char **why)
{
    static const char *const names[] = {"key_id", "signed_headers", "signature"};
    *out = (struct sig_auth){0};
    size_t i = 0;
    while (i < len && !ows(v[i]) && v[i] != ',')
        i++;
    int alg = sig_alg_parse(v, i);
    if (alg < 0) {
        *why = "unsupported algorithm";
        return -1;
    }
    out->alg = (enum sig_alg)alg;
    *why = "malformed Authorization header";
    size_t scheme_end = i;
    while (i < len && ows(v[i]))
        i++;
    if (i == scheme_end || i == len)
        return -1;

    struct lintel_str *fields[] = {&out->key_id, &out->signed_headers, &out->signature};
    bool seen[3] = {false, false, false};
    for (;;) {
        size_t name_start = i;
        while (i < len && v[i] != '=' && v[i] != ',' && !ows(v[i]))
            i++;
        if (i == len || v[i] != '=')
            return -1;
        size_t name_len = i - name_start;
        i++;
        size_t val_start, val_len;
        if (i < len && v[i] == '"') {
            val_start = ++i;
            while (i < len && v[i] != '"' && !ctl(v[i]))
                i++;
            if (i == len || v[i] != '"')
                return -1;
            val_len = i - val_start;
            i++;
        } else {
            val_start = i;
            while (i < len && v[i] != ',' && !ows(v[i])) {
                if (v[i] == '"' || ctl(v[i]))
                    return -1;
                i++;
            }
            val_len = i - val_start;
        }
        int f = 0;
        while (f < 3 &&
               !(strlen(names[f]) == name_len && memcmp(names[f], v + name_start, name_len) == 0))
            f++;
        if (f == 3 || seen[f])
            return -1; /* unknown or repeated parameter */
        seen[f] = true;
        *fields[f] = (struct lintel_str){v + val_start, val_len};
        while (i < len && ows(v[i]))
            i++;
        if (i == len)
            break;
        if (v[i] != ',')
            return -1;
        i++;
        while (i < len && ows(v[i]))
            i++;
    }
    if (!seen[0] || !seen[2] || out->key_id.len == 0 || out->signature.len == 0)
        return -1;
    return 0;
}

int sig_list_next(struct lintel_str *list, struct lintel_str *name)
{
    if (list->len == 0)
        return 0;
    const char *semi = memchr(list->ptr, ';', list->len);
    size_t n = semi ? (size_t)(semi - list->ptr) : list->len;
    *name = (struct lintel_str){list->ptr, n};
    if (!lintel_is_token(name->ptr, n))
        return -1;
    if (semi && n + 1 == list->len)
        return -1; /* a trailing ';' */
    list->ptr += semi ? n + 1 : n;
    list->len -= semi ? n + 1 : n;
    return 1;
}

/* ---- dates, numbers, nonces ------------------------------------------------------------------ */

static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int sig_http_date(const char *s, size_t len, int64_t *out)
{
    static const char days[] = "MonTueWedThuFriSatSun";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    /* "Sun, 06 Nov 1994 08:49:37 GMT": 29 bytes, every separator in its place */
    if (len != 29 || memcmp(s + 3, ", ", 2) != 0 || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
        return -1;
    int wd = 0, mon = 0;
    while (wd < 7 && memcmp(days + 3 * wd, s, 3) != 0)
        wd++;
    while (mon < 12 && memcmp(months + 3 * mon, s + 8, 3) != 0)
        mon++;
    int day = digits(s + 5, 2), year = digits(s + 12, 4);
    int hh = digits(s + 17, 2), mm = digits(s + 20, 2), ss = digits(s + 23, 2);
    if (wd == 7 || mon == 12 || day < 1 || year < 1970 || hh < 0 || hh > 23 || mm < 0 || mm > 59 ||
        ss < 0 || ss > 60)
        return -1;
    if (day > mdays[mon] + (mon == 1 && leap(year)))
        return -1;
    /* Days since 1970-01-01: whole years, their leap days (477 of them fell before 1970), then
     * the months and days of this year. */
    int64_t y = year - 1;
    int64_t d = 365 * (int64_t)(year - 1970) + (y / 4 - y / 100 + y / 400) - 477 + before[mon] +
                (mon > 1 && leap(year)) + (day - 1);
    *out = d * 86400 + hh * 3600 + mm * 60 + ss;
    return 0;
}

int sig_decimal(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 12)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

bool sig_nonce_ok(const char *s, size_t len)
{
    if (len == 0 || len > 128)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* ---- hex ------------------------------------------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)lower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int sig_hex_decode(const char *hex, size_t len, unsigned char *out, size_t n)
{
    if (len != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

void sig_hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
}
