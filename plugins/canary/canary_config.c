/* canary configuration: reads and checks the YAML once, in create (main thread), into the values
 * the BALANCE handler uses as they are (docs/plugins/canary.md lists the keys). */
#include <string.h>
#include <strings.h>

#include <lintel/config.h>
#include <lintel/text.h>
#include <lintel/hash.h>

#include "canary-internal.h"

/* A ramp longer than a year is a mistake, and the bound keeps elapsed * steps in 64 bits. */
#define MAX_RAMP_MS (365ull * 24 * 3600 * 1000)
#define DEFAULT_MARK_HEADER "X-Canary"
#define DEFAULT_MARK_VALUE "1"

static const char *const top_keys[] = {"upstream", "percent",           "ramp", "key", "seed",
                                       "override", "upstream_fallback", "mark", NULL};
static const char *const ramp_keys[] = {"from", "to", "start", "duration", "steps", NULL};
static const char *const key_keys[] = {"from", "name", NULL};
static const char *const override_keys[] = {"header", "cookie", NULL};
static const char *const mark_keys[] = {"header", "value", NULL};

/* What every reader needs: the host and where errors go. */
struct reader {
    const struct lintel_host_api *h;
    lintel_cfg_error *err;
};

static int fail(const struct reader *rd, const lintel_cfg *node, const char *msg)
{
    rd->h->cfg_error(rd->err, node, "%s", msg);
    return -1;
}

/* The text of node when it is a non-empty token; NULL after reporting "must be <what>". */
static const char *read_token(const struct reader *rd, const lintel_cfg *node, const char *what)
{
    const char *s = rd->h->cfg_str(node);
    int ok = s && *s;
    for (const char *p = s; ok && *p; p++)
        ok = lintel_is_tchar((unsigned char)*p);
    if (!ok) {
        rd->h->cfg_error(rd->err, node, "must be %s", what);
        return NULL;
    }
    return s;
}

/* A percentage "0".."100" with at most two decimals ("12.5", "0.25"), in basis points. */
static int parse_percent(const char *s, uint32_t *bp)
{
    uint32_t whole = 0, frac = 0;
    const char *p = s;
    if (!s || !(*p >= '0' && *p <= '9'))
        return -1;
    while (*p >= '0' && *p <= '9') {
        whole = whole * 10 + (uint32_t)(*p++ - '0');
        if (whole > 100)
            return -1;
    }
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return -1;
        frac = (uint32_t)(*p++ - '0') * 10;
        if (*p >= '0' && *p <= '9')
            frac += (uint32_t)(*p++ - '0');
    }
    if (*p != '\0' || whole * 100 + frac > CANARY_BUCKETS)
        return -1;
    *bp = whole * 100 + frac;
    return 0;
}

static int read_percent(const struct reader *rd, const lintel_cfg *node, uint32_t *bp)
{
    if (parse_percent(rd->h->cfg_str(node), bp) < 0)
        return fail(rd, node, "must be a percentage from 0 to 100 (at most two decimals)");
    return 0;
}

/* ---- RFC 3339 -------------------------------------------------------------------------------- */

static int is_leap(unsigned y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Leap years in 1..y-1 (proleptic Gregorian). */
static uint64_t leaps_before(unsigned y)
{
    y--;
    return y / 4 - y / 100 + y / 400;
}

/* Reads exactly n digits at *p into *v and moves *p past them; -1 when they are not there. */
static int digits(const char **p, unsigned n, unsigned *v)
{
    *v = 0;
    for (unsigned i = 0; i < n; i++) {
        char ch = (*p)[i];
        if (ch < '0' || ch > '9')
            return -1;
        *v = *v * 10 + (unsigned)(ch - '0');
    }
    *p += n;
    return 0;
}

/* Reads n digits and then the separator sep (unless sep is 0). */
static int field(const char **p, unsigned n, char sep, unsigned *v)
{
    if (digits(p, n, v) < 0)
        return -1;
    if (sep) {
        if (**p != sep)
            return -1;
        (*p)++;
    }
    return 0;
}

int canary_parse_time(const char *s, uint64_t *unix_ms, const char **why)
{
    static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    static const unsigned before_month[12] = {0,   31,  59,  90,  120, 151,
                                              181, 212, 243, 273, 304, 334};
    unsigned year, mon, day, hour, min, sec, ms = 0, oh = 0, om = 0;
    const char *p = s;
    *why = "expected YYYY-MM-DDTHH:MM:SS and Z or an offset";
    if (!s || field(&p, 4, '-', &year) < 0 || field(&p, 2, '-', &mon) < 0 ||
        field(&p, 2, 0, &day) < 0)
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    p++;
    if (field(&p, 2, ':', &hour) < 0 || field(&p, 2, ':', &min) < 0 || field(&p, 2, 0, &sec) < 0)
        return -1;
    if (*p == '.') {
        unsigned n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 3)
                ms = ms * 10 + (unsigned)(*p - '0');
        if (n == 0)
            return -1;
        for (; n < 3; n++)
            ms *= 10;
    }
    int sign = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '+' ? 1 : -1;
        if (field(&p, 2, ':', &oh) < 0 || field(&p, 2, 0, &om) < 0)
            return -1;
    } else {
        *why = "needs Z or an offset (+hh:mm, -hh:mm)";
        return -1;
    }
    if (*p != '\0')
        return -1;

    *why = "no such date or time";
    if (year < 1970 || mon < 1 || mon > 12 || day < 1 || hour > 23 || min > 59 || sec > 60 ||
        oh > 23 || om > 59)
        return -1;
    if (day > mdays[mon - 1] + (mon == 2 && is_leap(year)))
        return -1;
    uint64_t days = (uint64_t)(year - 1970) * 365 + leaps_before(year) - leaps_before(1970) +
                    before_month[mon - 1] + (mon > 2 && is_leap(year)) + day - 1;
    /* Second 60 (a leap second) is the same instant as second 0 of the next minute in Unix time. */
    int64_t t = (int64_t)(((days * 24 + hour) * 60 + min) * 60 + sec) * 1000 + ms;
    t -= sign * (int64_t)(oh * 60 + om) * 60 * 1000; /* local time minus its offset is UTC */
    if (t < 0) {
        *why = "before 1970";
        return -1;
    }
    *unix_ms = (uint64_t)t;
    return 0;
}

/* ---- sections -------------------------------------------------------------------------------- */

static int read_ramp(const struct reader *rd, struct canary *c, const lintel_cfg *ramp)
{
    const struct lintel_host_api *h = rd->h;
    const lintel_cfg *node;
    if (lintel_cfg_require_map(rd->h, ramp, ramp_keys, rd->err) < 0)
        return -1;
    static const char *const required[] = {"from", "to", "start", "duration"};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        if (!h->cfg_get(ramp, required[i])) {
            h->cfg_error(rd->err, ramp, "%s: required", required[i]);
            return -1;
        }
    if (read_percent(rd, h->cfg_get(ramp, "from"), &c->from_bp) < 0 ||
        read_percent(rd, h->cfg_get(ramp, "to"), &c->to_bp) < 0)
        return -1;

    node = h->cfg_get(ramp, "start");
    const char *why;
    if (canary_parse_time(h->cfg_str(node), &c->start_ms, &why) < 0) {
        h->cfg_error(rd->err, node, "must be an RFC 3339 time like 2026-12-01T10:00:00Z: %s", why);
        return -1;
    }
    node = h->cfg_get(ramp, "duration");
    if (h->cfg_duration_ms(node, &c->duration_ms) < 0 || c->duration_ms == 0 ||
        c->duration_ms > MAX_RAMP_MS)
        return fail(rd, node, "must be a duration from 1ms to 8760h");

    if ((node = h->cfg_get(ramp, "steps"))) {
        int64_t n;
        if (h->cfg_int(node, &n) < 0 || n < 1 || n > CANARY_BUCKETS)
            return fail(rd, node, "must be an integer from 1 to 10000");
        if ((uint64_t)n > c->duration_ms)
            return fail(rd, node, "must not exceed the duration in milliseconds");
        c->steps = (uint32_t)n;
    }
    c->ramp = 1;
    return 0;
}

static int read_key(const struct reader *rd, struct canary *c, const lintel_cfg *key)
{
    static const struct {
        const char *name;
        enum canary_key_from from;
    } sources[] = {{"ip", CANARY_KEY_IP},
                   {"consumer", CANARY_KEY_CONSUMER},
                   {"arg", CANARY_KEY_ARG},
                   {"header", CANARY_KEY_HEADER},
                   {"cookie", CANARY_KEY_COOKIE}};
    const struct lintel_host_api *h = rd->h;
    if (lintel_cfg_require_map(rd->h, key, key_keys, rd->err) < 0)
        return -1;
    const lintel_cfg *from = h->cfg_get(key, "from"), *name = h->cfg_get(key, "name");
    if (!from)
        return fail(rd, key, "from: required");
    const char *s = h->cfg_str(from);
    size_t i = 0;
    while (i < sizeof(sources) / sizeof(sources[0]) && !(s && strcmp(s, sources[i].name) == 0))
        i++;
    if (i == sizeof(sources) / sizeof(sources[0]))
        return fail(rd, from, "must be ip, consumer, arg, header or cookie");
    c->key_from = sources[i].from;
    if (c->key_from == CANARY_KEY_IP || c->key_from == CANARY_KEY_CONSUMER) {
        if (name)
            return fail(rd, name, "only with from: arg, header or cookie");
        return 0;
    }
    if (!name) {
        h->cfg_error(rd->err, key, "name: required with from: %s", s);
        return -1;
    }
    c->key_name =
        read_token(rd, name, c->key_from == CANARY_KEY_HEADER ? "a header name" : "a name");
    return c->key_name ? 0 : -1;
}

static int read_override(const struct reader *rd, struct canary *c, const lintel_cfg *ov)
{
    const lintel_cfg *node;
    if (lintel_cfg_require_map(rd->h, ov, override_keys, rd->err) < 0)
        return -1;
    if ((node = rd->h->cfg_get(ov, "header")) &&
        !(c->override_header = read_token(rd, node, "a header name")))
        return -1;
    if ((node = rd->h->cfg_get(ov, "cookie")) &&
        !(c->override_cookie = read_token(rd, node, "a cookie name")))
        return -1;
    if (!c->override_header && !c->override_cookie)
        return fail(rd, ov, "header or cookie: required");
    return 0;
}

/* A header value lintel sends as it is: visible ASCII, with spaces and tabs inside only. */
static int is_header_value(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t')
        return 0;
    for (; *s; s++)
        if (!((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f) && *s != '\t')
            return 0;
    return 1;
}

/* `mark`: false (no mark), true (the defaults) or { header, value }. */
static int read_mark(const struct reader *rd, struct canary *c, const lintel_cfg *mark)
{
    const struct lintel_host_api *h = rd->h;
    const lintel_cfg *node;
    c->mark_header = DEFAULT_MARK_HEADER;
    c->mark_value = DEFAULT_MARK_VALUE;
    if (!mark)
        goto done;
    if (h->cfg_type(mark) == LINTEL_CFG_SCALAR) {
        int on;
        if (h->cfg_bool(mark, &on) < 0)
            return fail(rd, mark, "must be true, false or { header, value }");
        if (!on)
            c->mark_header = c->mark_value = NULL;
        goto done;
    }
    if (lintel_cfg_require_map(rd->h, mark, mark_keys, rd->err) < 0)
        return -1;
    if ((node = h->cfg_get(mark, "header")) &&
        !(c->mark_header = read_token(rd, node, "a header name")))
        return -1;
    if ((node = h->cfg_get(mark, "value"))) {
        c->mark_value = h->cfg_str(node);
        if (!c->mark_value || !is_header_value(c->mark_value))
            return fail(rd, node, "must be a header value (visible characters)");
    }
done:
    c->mark_value_len = c->mark_value ? strlen(c->mark_value) : 0;
    return 0;
}

int canary_config_parse(struct canary *c, const lintel_cfg *config, lintel_cfg_error *err)
{
    const struct reader rd = {c->host, err};
    const struct lintel_host_api *h = c->host;
    const lintel_cfg *node, *ramp;
    if (lintel_cfg_require_config(h, config, top_keys, err) < 0)
        return -1;

    if (!(node = h->cfg_get(config, "upstream")))
        return fail(&rd, config, "upstream: required");
    if (!(c->upstream = h->cfg_str(node)) || !*c->upstream)
        return fail(&rd, node, "must be an upstream name");
    if (!h->upstream_exists(c->self, c->upstream)) {
        h->cfg_error(err, node, "no upstream named \"%s\" in this configuration", c->upstream);
        return -1;
    }

    node = h->cfg_get(config, "percent");
    ramp = h->cfg_get(config, "ramp");
    if (node && ramp)
        return fail(&rd, ramp, "give percent or ramp, not both");
    if (!node && !ramp)
        return fail(&rd, config, "percent or ramp: required");
    if (node ? read_percent(&rd, node, &c->percent_bp) < 0 : read_ramp(&rd, c, ramp) < 0)
        return -1;

    c->key_from = CANARY_KEY_IP;
    if ((node = h->cfg_get(config, "key")) && read_key(&rd, c, node) < 0)
        return -1;

    c->hash_seed = LINTEL_FNV1A64_OFFSET;
    if ((node = h->cfg_get(config, "seed"))) {
        const char *seed = h->cfg_str(node);
        if (!seed || !*seed)
            return fail(&rd, node, "must be a non-empty string");
        c->hash_seed = lintel_fnv1a64(lintel_fnv1a64(c->hash_seed, seed, strlen(seed)), ":", 1);
    }

    if ((node = h->cfg_get(config, "override")) && read_override(&rd, c, node) < 0)
        return -1;
    if ((node = h->cfg_get(config, "upstream_fallback")) &&
        h->cfg_bool(node, &c->upstream_fallback) < 0)
        return fail(&rd, node, "must be true or false");
    return read_mark(&rd, c, h->cfg_get(config, "mark"));
}
