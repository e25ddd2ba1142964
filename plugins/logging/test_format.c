/* Tests escape.c and format.c directly (linked from source): escaping, numbers and times, template
 * compilation, and whole records in both formats with every field. */
#include <CUnit/Basic.h>
#include <lintel/testkit.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "logging-internal.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static char outbuf[65536];

static struct lg_out out_new(size_t cap)
{
    return (struct lg_out){.p = outbuf, .end = outbuf + cap, .value_cap = SIZE_MAX};
}

static const char *out_str(struct lg_out *o)
{
    *o->p = '\0';
    return outbuf;
}

static const char *json_str(const char *s, size_t n)
{
    struct lg_out o = out_new(sizeof(outbuf) - 1);
    lg_put_json_str(&o, s, n);
    return out_str(&o);
}

static const char *default_str(const char *s, size_t n)
{
    struct lg_out o = out_new(sizeof(outbuf) - 1);
    lg_put_default_str(&o, s, n);
    return out_str(&o);
}

#define S(lit)                                                                                     \
    (struct lintel_str)                                                                            \
    {                                                                                              \
        lit, sizeof(lit) - 1                                                                       \
    }

/* Fake access-record fields and request headers behind lg_facts' lookups. */
struct fake {
    const char *fields[8][2];
    const char *headers[8][2];
};

static int fake_field_at(void *ctx, size_t i, struct lintel_str *k, struct lintel_str *v)
{
    struct fake *f = ctx;
    if (i >= 8 || !f->fields[i][0])
        return -1;
    *k = (struct lintel_str){f->fields[i][0], strlen(f->fields[i][0])};
    *v = (struct lintel_str){f->fields[i][1], strlen(f->fields[i][1])};
    return 0;
}

static struct lintel_str fake_header(void *ctx, const char *name)
{
    struct fake *f = ctx;
    for (size_t i = 0; i < 8 && f->headers[i][0]; i++)
        if (strcasecmp(f->headers[i][0], name) == 0)
            return (struct lintel_str){f->headers[i][1], strlen(f->headers[i][1])};
    return (struct lintel_str){NULL, 0};
}

static struct fake fake = {
    .fields = {{"ab.group", "B"}, {"canary", "v2"}, {"ratelimit", "12/100"}},
    .headers = {{"User-Agent", "curl/8 \"x\""}, {"Referer", "http://a/"}},
};

/* A request with every fact set. */
static struct lg_facts full_facts(void)
{
    struct lg_facts f = {
        .info =
            {
                .struct_size = sizeof(struct lintel_req_info),
                .status = 201,
                .start_unix_us = 1700000000123456ull, /* 2023-11-14T22:13:20.123456Z */
                .duration_us = 1234567,
                .bytes_in = 17,
                .bytes_out = 4096,
                .host = S("api.example.com"),
                .target = S("/users/42?x=1&y=2"),
                .http_minor = 1,
                .upstream = S("users"),
                .upstream_addr = S("10.0.0.7:8080"),
                .upstream_connect_us = 250,
                .upstream_response_us = 1000001,
            },
        .request_id = S("0123abcd"),
        .remote_addr = S("192.0.2.1"),
        .method = S("POST"),
        .route = S("users-api"),
        .consumer = S("alice"),
        .ctx = &fake,
        .field_at = fake_field_at,
        .header = fake_header,
    };
    lg_facts_split_target(&f);
    return f;
}

/* A request that reached nothing: no route, upstream, consumer, query, Host or fields. */
static struct lg_facts bare_facts(void)
{
    struct lg_facts f = {
        .info = {.struct_size = sizeof(struct lintel_req_info),
                 .status = 404,
                 .start_unix_us = 1700000000000000ull,
                 .duration_us = 42,
                 .target = S("/nothing"),
                 .http_minor = 0},
        .request_id = S("id-1"),
        .remote_addr = S("::1"),
        .method = S("GET"),
    };
    lg_facts_split_target(&f);
    return f;
}

static struct lg_config json_config(void)
{
    return (struct lg_config){.format = LG_FORMAT_JSON, .max_record = 16384};
}

static char record[65536];

static const char *render(const struct lg_config *c, const struct lg_facts *f, size_t cap)
{
    struct lg_clock clk;
    lg_clock_init(&clk);
    size_t n = lg_render(c, f, &clk, record, cap);
    record[n] = '\0';
    return n ? record : NULL;
}

/* Renders f with a template (escape as given); NULL when the template does not compile. */
static const char *render_tmpl(const char *text, enum lg_escape esc, const struct lg_facts *f)
{
    struct lg_config c = {.format = LG_FORMAT_TEMPLATE, .escape = esc, .max_record = 16384};
    char why[128];
    if (lg_template_compile(text, &c.tmpl, why, sizeof(why)) < 0) {
        fprintf(stderr, "compile %s: %s\n", text, why);
        return NULL;
    }
    const char *s = render(&c, f, sizeof(record) - 1);
    lg_template_free(&c.tmpl);
    return s;
}

static const char *compile_error(const char *text)
{
    static char why[128];
    struct lg_template t;
    if (lg_template_compile(text, &t, why, sizeof(why)) == 0) {
        lg_template_free(&t);
        return "(compiled)";
    }
    return why;
}

/* ---- escaping ------------------------------------------------------------------------------ */

static void test_json_escape_ascii(void)
{
    CU_ASSERT_STRING_EQUAL(json_str("", 0), "");
    CU_ASSERT_STRING_EQUAL(json_str("/a/b?c=d", 8), "/a/b?c=d");
    CU_ASSERT_STRING_EQUAL(json_str("say \"hi\"\\", 9), "say \\\"hi\\\"\\\\");
    CU_ASSERT_STRING_EQUAL(json_str("a\nb\rc\td\be\ff", 11), "a\\nb\\rc\\td\\be\\ff");
    CU_ASSERT_STRING_EQUAL(json_str("\x01\x1f\x7f", 3), "\\u0001\\u001f\\u007f");
    CU_ASSERT_STRING_EQUAL(json_str("a\0b", 3), "a\\u0000b");
    CU_ASSERT_STRING_EQUAL(json_str("</script>'", 10), "</script>'");
}

static void test_json_escape_utf8(void)
{
    /* Valid sequences of 2, 3 and 4 bytes pass through. */
    CU_ASSERT_STRING_EQUAL(json_str("caf\xc3\xa9", 5), "caf\xc3\xa9");
    CU_ASSERT_STRING_EQUAL(json_str("\xe2\x82\xac 5", 5), "\xe2\x82\xac 5");
    CU_ASSERT_STRING_EQUAL(json_str("\xf0\x9f\x98\x80", 4), "\xf0\x9f\x98\x80");
    CU_ASSERT_STRING_EQUAL(json_str("\xed\x9f\xbf", 3), "\xed\x9f\xbf");         /* U+D7FF */
    CU_ASSERT_STRING_EQUAL(json_str("\xf4\x8f\xbf\xbf", 4), "\xf4\x8f\xbf\xbf"); /* U+10FFFF */
    /* Invalid bytes become U+FFFD, one per byte that starts no valid sequence. */
    CU_ASSERT_STRING_EQUAL(json_str("\x80", 1), "\\ufffd");            /* continuation */
    CU_ASSERT_STRING_EQUAL(json_str("\xc0\xaf", 2), "\\ufffd\\ufffd"); /* overlong '/' */
    CU_ASSERT_STRING_EQUAL(json_str("\xe0\x80\xaf", 3), "\\ufffd\\ufffd\\ufffd");
    CU_ASSERT_STRING_EQUAL(json_str("\xed\xa0\x80", 3), "\\ufffd\\ufffd\\ufffd"); /* surrogate */
    CU_ASSERT_STRING_EQUAL(json_str("\xf4\x90\x80\x80", 4),
                           "\\ufffd\\ufffd\\ufffd\\ufffd"); /* > U+10FFFF */
    CU_ASSERT_STRING_EQUAL(json_str("\xf5", 1), "\\ufffd");
    CU_ASSERT_STRING_EQUAL(json_str("\xff", 1), "\\ufffd");
    CU_ASSERT_STRING_EQUAL(json_str("a\xe2\x82", 3), "a\\ufffd\\ufffd"); /* cut short */
    CU_ASSERT_STRING_EQUAL(json_str("\xc3\xa9\xc3", 3), "\xc3\xa9\\ufffd");
}

static void test_default_escape(void)
{
    CU_ASSERT_STRING_EQUAL(default_str("GET /a?b=c", 10), "GET /a?b=c");
    CU_ASSERT_STRING_EQUAL(default_str("\"\\", 2), "\\x22\\x5c");
    CU_ASSERT_STRING_EQUAL(default_str("a\nb\x1b", 4), "a\\x0ab\\x1b");
    CU_ASSERT_STRING_EQUAL(default_str("caf\xc3\xa9\x7f", 6), "caf\\xc3\\xa9\\x7f");
}

/* What one byte becomes on its own in a JSON string and in the default escape (a byte >= 0x80
 * alone is never valid UTF-8). */
static void escaped_byte(int c, char *json, char *dflt, size_t cap)
{
    static const char ctl[] = "\n\r\t\b\f";
    const char *short_esc = c ? strchr(ctl, c) : NULL;
    if (c == '"' || c == '\\')
        snprintf(json, cap, "\\%c", c);
    else if (short_esc)
        snprintf(json, cap, "\\%c", "nrtbf"[short_esc - ctl]);
    else if (c < 0x20 || c == 0x7f)
        snprintf(json, cap, "\\u%04x", c);
    else if (c >= 0x80)
        snprintf(json, cap, "\\ufffd");
    else
        snprintf(json, cap, "%c", c);
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
        snprintf(dflt, cap, "\\x%02x", c);
    else
        snprintf(dflt, cap, "%c", c);
}

/* Printable bytes that need no escaping, all different from the padding escape.c fills short
 * words with, so that a padding byte copied by mistake shows. */
static const char plain[] = "The-quick_brown.fox/jumps~over:THE+lazy=dog!42";

static const char *json_value(const char *s, size_t n)
{
    struct lg_out o = out_new(sizeof(outbuf) - 1);
    lg_put_json_value(&o, (struct lintel_str){s, n});
    return out_str(&o);
}

/* Every byte value at every position of strings of 1 to 24 bytes (the word-at-a-time copy and
 * each of its tails: 1, 2-3, 4-7 bytes, whole words, words and a tail): the output matches a
 * byte-at-a-time reference, with and without the quotes of a value. */
static void test_every_byte_every_position(void)
{
    for (int c = 0; c < 256; c++) {
        char want_json[64], want_default[64];
        escaped_byte(c, want_json, want_default, sizeof(want_json));
        for (int len = 1; len <= 24; len++) {
            for (int pos = 0; pos < len; pos++) {
                char in[24], want[128];
                memcpy(in, plain, (size_t)len);
                in[pos] = (char)c;
                snprintf(want, sizeof(want), "%.*s%s%.*s", pos, plain, want_json, len - pos - 1,
                         plain + pos + 1);
                if (strcmp(json_str(in, (size_t)len), want) != 0) {
                    fprintf(stderr, "json byte %02x at %d of %d: %s\n", c, pos, len, outbuf);
                    CU_FAIL("json escaping");
                }
                char quoted[132];
                snprintf(quoted, sizeof(quoted), "\"%s\"", want);
                if (strcmp(json_value(in, (size_t)len), quoted) != 0) {
                    fprintf(stderr, "json value byte %02x at %d of %d: %s\n", c, pos, len, outbuf);
                    CU_FAIL("json value escaping");
                }
                snprintf(want, sizeof(want), "%.*s%s%.*s", pos, plain, want_default, len - pos - 1,
                         plain + pos + 1);
                if (strcmp(default_str(in, (size_t)len), want) != 0) {
                    fprintf(stderr, "default byte %02x at %d of %d: %s\n", c, pos, len, outbuf);
                    CU_FAIL("default escaping");
                }
            }
        }
    }
}

/* Valid UTF-8 sequences are kept wherever they fall across the 8-byte words; one cut short by
 * the end of the value is replaced. */
static void test_utf8_across_words(void)
{
    static const char *const seqs[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (size_t k = 0; k < 3; k++) {
        size_t slen = strlen(seqs[k]);
        for (size_t len = slen; len <= 24; len++) {
            for (size_t pos = 0; pos + slen <= len; pos++) {
                char in[24];
                memcpy(in, plain, len);
                memcpy(in + pos, seqs[k], slen);
                CU_ASSERT_EQUAL(strlen(json_str(in, len)), len);
                CU_ASSERT_EQUAL(memcmp(outbuf, in, len), 0);
            }
            /* all but the last byte of the sequence, at the end */
            char in[24], want[64];
            memcpy(in, plain, len);
            memcpy(in + len - (slen - 1), seqs[k], slen - 1);
            snprintf(want, sizeof(want), "%.*s", (int)(len - (slen - 1)), plain);
            for (size_t i = 0; i + 1 < slen; i++)
                strcat(want, "\\ufffd");
            CU_ASSERT_STRING_EQUAL(json_str(in, len), want);
        }
    }
}

/* A value that exactly fits is written whole; one byte less of room overflows without writing
 * past the end, whether the value needs escaping or not. */
static void test_value_exact_room(void)
{
    for (size_t len = 0; len <= 24; len++) {
        char in[24];
        memcpy(in, plain, len);
        for (int esc = 0; esc < 2; esc++) {
            if (esc && len)
                in[len / 2] = '"';
            size_t need = len + 2 + (esc && len); /* the quotes, and a backslash */
            for (size_t cap = need - 1; cap <= need; cap++) {
                memset(outbuf, 'X', need + 8);
                struct lg_out o = out_new(cap);
                lg_put_json_value(&o, (struct lintel_str){in, len});
                CU_ASSERT_EQUAL(o.overflow, cap < need);
                CU_ASSERT_EQUAL(outbuf[cap], 'X');
                if (cap == need)
                    CU_ASSERT_EQUAL(o.p, outbuf + need);
            }
        }
    }
}

static void test_value_cap_and_overflow(void)
{
    struct lg_out o = out_new(sizeof(outbuf) - 1);
    o.value_cap = 4;
    lg_put_json_str(&o, "abcdefgh", 8);
    CU_ASSERT_STRING_EQUAL(out_str(&o), "abcd");
    CU_ASSERT_EQUAL(o.truncated, 1);

    /* A bounded output never writes past its end and remembers that it overflowed. */
    memset(outbuf, 'X', 16);
    o = out_new(5);
    lg_put(&o, "abc", 3);
    lg_put_json_str(&o, "\"\"", 2); /* needs 4 */
    CU_ASSERT_EQUAL(o.overflow, 1);
    CU_ASSERT_EQUAL(outbuf[5], 'X');
    lg_put(&o, "d", 1); /* nothing more after an overflow */
    CU_ASSERT(o.p <= outbuf + 5);
}

/* ---- numbers and times --------------------------------------------------------------------- */

static void test_numbers(void)
{
    struct lg_out o = out_new(sizeof(outbuf) - 1);
    lg_put_u64(&o, 0);
    lg_put(&o, " ", 1);
    lg_put_u64(&o, 18446744073709551615ull);
    lg_put(&o, " ", 1);
    lg_put_seconds(&o, 0);
    lg_put(&o, " ", 1);
    lg_put_seconds(&o, 1234567);
    lg_put(&o, " ", 1);
    lg_put_seconds(&o, 999);
    CU_ASSERT_STRING_EQUAL(out_str(&o), "0 18446744073709551615 0.000000 1.234567 0.000999");
}

static void test_times(void)
{
    struct lg_clock clk;
    lg_clock_init(&clk);
    struct lg_out o = out_new(sizeof(outbuf) - 1);
    lg_put_time_iso(&o, &clk, 1700000000123456ull);
    lg_put(&o, " ", 1);
    lg_put_time_clf(&o, &clk, 1700000000123456ull);
    lg_put(&o, " ", 1);
    lg_put_msec(&o, 1700000000123456ull);
    CU_ASSERT_STRING_EQUAL(out_str(&o),
                           "2023-11-14T22:13:20.123Z 14/Nov/2023:22:13:20 +0000 1700000000.123");
    /* The cached second is replaced when the clock moves on (here across a year). */
    o = out_new(sizeof(outbuf) - 1);
    lg_put_time_iso(&o, &clk, 1704067199999000ull);
    lg_put(&o, " ", 1);
    lg_put_time_iso(&o, &clk, 1704067200000000ull);
    lg_put(&o, " ", 1);
    lg_put_time_clf(&o, &clk, 1704067200000000ull);
    CU_ASSERT_STRING_EQUAL(out_str(&o), "2023-12-31T23:59:59.999Z 2024-01-01T00:00:00.000Z "
                                        "01/Jan/2024:00:00:00 +0000");
    o = out_new(sizeof(outbuf) - 1);
    lg_put_msec(&o, 5000);
    CU_ASSERT_STRING_EQUAL(out_str(&o), "0.005");
}

/* ---- templates ----------------------------------------------------------------------------- */

static void test_template_compile(void)
{
    struct lg_template t;
    char why[128];
    CU_ASSERT_EQUAL_FATAL(lg_template_compile("a $status ${route}b $$5 $http_user_agent "
                                              "${field_ab.group}",
                                              &t, why, sizeof(why)),
                          0);
    CU_ASSERT_EQUAL_FATAL(t.nops, 8);
    CU_ASSERT_EQUAL(t.ops[0].var, LG_VAR_LITERAL);
    CU_ASSERT_EQUAL(t.ops[0].len, 2);
    CU_ASSERT_EQUAL(t.ops[1].var, LG_VAR_STATUS);
    CU_ASSERT_EQUAL(t.ops[2].var, LG_VAR_LITERAL);
    CU_ASSERT_EQUAL(t.ops[3].var, LG_VAR_ROUTE);
    CU_ASSERT_EQUAL(t.ops[4].var, LG_VAR_LITERAL);
    CU_ASSERT_NSTRING_EQUAL(t.ops[4].text, "b $5 ", t.ops[4].len);
    CU_ASSERT_EQUAL(t.ops[4].len, 5);
    CU_ASSERT_EQUAL(t.ops[5].var, LG_VAR_HTTP);
    CU_ASSERT_STRING_EQUAL(t.ops[5].text, "user-agent");
    CU_ASSERT_EQUAL(t.ops[7].var, LG_VAR_FIELD);
    CU_ASSERT_STRING_EQUAL(t.ops[7].text, "ab.group");
    lg_template_free(&t);
}

static void test_template_errors(void)
{
    CU_ASSERT_STRING_EQUAL(compile_error("$nope"), "unknown variable $nope");
    CU_ASSERT_STRING_EQUAL(compile_error("$status_code"), "unknown variable $status_code");
    CU_ASSERT_STRING_EQUAL(compile_error("${status"), "unclosed ${");
    CU_ASSERT_STRING_EQUAL(compile_error("cost $"),
                           "a $ must start a variable name (write $$ for a dollar sign)");
    CU_ASSERT_STRING_EQUAL(compile_error("${}"),
                           "a $ must start a variable name (write $$ for a dollar sign)");
    CU_ASSERT_STRING_EQUAL(compile_error("$field_"), "unknown variable $field_");
    CU_ASSERT_STRING_EQUAL(compile_error("a\nb"), "must not contain control characters");
    CU_ASSERT_STRING_EQUAL(compile_error(""), "(compiled)");
    CU_ASSERT_STRING_EQUAL(compile_error("$$"), "(compiled)");
}

static void test_template_issue_example(void)
{
    struct lg_facts f = full_facts();
    CU_ASSERT_STRING_EQUAL(
        render_tmpl("$remote_addr \"$request\" $status $request_time", LG_ESCAPE_DEFAULT, &f),
        "192.0.2.1 \"POST /users/42?x=1&y=2 HTTP/1.1\" 201 1.234567\n");
}

static void test_template_every_variable(void)
{
    struct lg_facts f = full_facts();
    CU_ASSERT_STRING_EQUAL(
        render_tmpl("$time|$time_local|$msec|$request_id|$remote_addr|$method|$host|$path|$query|"
                    "$request_uri|$request|$protocol|$status|$bytes_received|$bytes_sent|"
                    "$request_time|$upstream|$upstream_addr|$upstream_connect_time|"
                    "$upstream_response_time|$route|$consumer|$fields|$field_canary|"
                    "$http_user_agent|${http_referer}",
                    LG_ESCAPE_DEFAULT, &f),
        "2023-11-14T22:13:20.123Z|14/Nov/2023:22:13:20 +0000|1700000000.123|0123abcd|192.0.2.1|"
        "POST|api.example.com|/users/42|x=1&y=2|/users/42?x=1&y=2|POST /users/42?x=1&y=2 "
        "HTTP/1.1|HTTP/1.1|201|17|4096|1.234567|users|10.0.0.7:8080|0.000250|1.000001|users-api|"
        "alice|ab.group=B canary=v2 ratelimit=12/100|v2|curl/8 \\x22x\\x22|http://a/\n");
    /* nginx's names for the same facts. */
    CU_ASSERT_STRING_EQUAL(render_tmpl("$request_method $uri $args $server_protocol "
                                       "$body_bytes_sent",
                                       LG_ESCAPE_DEFAULT, &f),
                           "POST /users/42 x=1&y=2 HTTP/1.1 4096\n");
}

static void test_template_absent_values(void)
{
    struct lg_facts f = bare_facts();
    const char *all = "$host|$query|$upstream|$upstream_addr|$upstream_connect_time|"
                      "$upstream_response_time|$route|$consumer|$fields|$field_x|$http_x|"
                      "$protocol|$status";
    CU_ASSERT_STRING_EQUAL(render_tmpl(all, LG_ESCAPE_DEFAULT, &f),
                           "-|-|-|-|-|-|-|-|-|-|-|HTTP/1.0|404\n");
    CU_ASSERT_STRING_EQUAL(render_tmpl(all, LG_ESCAPE_JSON, &f), "|||||||||||HTTP/1.0|404\n");
}

static void test_template_escape_json(void)
{
    struct lg_facts f = full_facts();
    f.info.target = S("/a\"b\\c\n");
    lg_facts_split_target(&f);
    CU_ASSERT_STRING_EQUAL(
        render_tmpl("{\"path\":\"$path\",\"ua\":\"$http_user_agent\"}", LG_ESCAPE_JSON, &f),
        "{\"path\":\"/a\\\"b\\\\c\\n\",\"ua\":\"curl/8 \\\"x\\\"\"}\n");
    CU_ASSERT_STRING_EQUAL(render_tmpl("$path", LG_ESCAPE_DEFAULT, &f), "/a\\x22b\\x5cc\\x0a\n");
}

/* ---- JSON records -------------------------------------------------------------------------- */

static void test_json_every_field(void)
{
    struct lg_config c = json_config();
    const char *names[] = {"User-Agent", "X-Missing"};
    char k0[] = "user-agent", k1[] = "x-missing";
    char *keys[] = {k0, k1};
    c.req_headers = names;
    c.req_header_keys = keys;
    c.nreq_headers = 2;
    struct lg_facts f = full_facts();
    CU_ASSERT_STRING_EQUAL(
        render(&c, &f, sizeof(record) - 1),
        "{\"time\":\"2023-11-14T22:13:20.123Z\",\"request_id\":\"0123abcd\","
        "\"remote_addr\":\"192.0.2.1\",\"method\":\"POST\",\"host\":\"api.example.com\","
        "\"path\":\"/users/42\",\"query\":\"x=1&y=2\",\"protocol\":\"HTTP/1.1\",\"status\":201,"
        "\"bytes_received\":17,\"bytes_sent\":4096,\"request_time\":1.234567,"
        "\"upstream\":\"users\",\"upstream_addr\":\"10.0.0.7:8080\","
        "\"upstream_connect_time\":0.000250,\"upstream_response_time\":1.000001,"
        "\"route\":\"users-api\",\"consumer\":\"alice\","
        "\"headers\":{\"user-agent\":\"curl/8 \\\"x\\\"\",\"x-missing\":null},"
        "\"fields\":{\"ab.group\":\"B\",\"canary\":\"v2\",\"ratelimit\":\"12/100\"}}\n");
}

static void test_json_absent_values(void)
{
    struct lg_config c = json_config();
    struct lg_facts f = bare_facts();
    CU_ASSERT_STRING_EQUAL(
        render(&c, &f, sizeof(record) - 1),
        "{\"time\":\"2023-11-14T22:13:20.000Z\",\"request_id\":\"id-1\",\"remote_addr\":\"::1\","
        "\"method\":\"GET\",\"host\":null,\"path\":\"/nothing\",\"query\":null,"
        "\"protocol\":\"HTTP/1.0\",\"status\":404,\"bytes_received\":0,\"bytes_sent\":0,"
        "\"request_time\":0.000042,\"upstream\":null,\"upstream_addr\":null,"
        "\"upstream_connect_time\":null,\"upstream_response_time\":null,\"route\":null,"
        "\"consumer\":null,\"fields\":{}}\n");
    /* The client went away before any response: status 0; a bad request has no target. */
    f.info.status = 0;
    f.info.target = (struct lintel_str){NULL, 0};
    f.method = (struct lintel_str){"", 0};
    lg_facts_split_target(&f);
    const char *s = render(&c, &f, sizeof(record) - 1);
    CU_ASSERT(s && strstr(s, "\"method\":null,\"host\":null,\"path\":null,\"query\":null,"));
    CU_ASSERT(s && strstr(s, "\"status\":0,"));
}

static void test_json_hostile_values(void)
{
    struct lg_config c = json_config();
    struct lg_facts f = full_facts();
    struct fake hostile = {.fields = {{"k\"ey", "v\nal\xff"}}};
    f.ctx = &hostile;
    f.info.target = S("/p\"a\\th\x01?q=\xc3\xa9");
    lg_facts_split_target(&f);
    const char *s = render(&c, &f, sizeof(record) - 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT(strstr(s, "\"path\":\"/p\\\"a\\\\th\\u0001\",\"query\":\"q=\xc3\xa9\"") != NULL);
    CU_ASSERT(strstr(s, "\"fields\":{\"k\\\"ey\":\"v\\nal\\ufffd\"}}\n") != NULL);
    CU_ASSERT_EQUAL(strchr(s, '\n'), s + strlen(s) - 1); /* one line */
}

/* ---- pinned records: the renderer's fast paths must not change a byte --------------------- */

static struct fake bench_fields = {
    .fields = {{"auth_method", "key"},
               {"ratelimit", "allowed"},
               {"ratelimit_remaining", "999999999"}},
};

/* tools/bench's request through auth, ratelimit and cors (tools/bench.d/lintel-plugins.yaml). */
static struct lg_facts bench_facts(void)
{
    struct lg_facts f = {
        .info = {.struct_size = sizeof(struct lintel_req_info),
                 .status = 200,
                 .start_unix_us = 1700000000123456ull,
                 .duration_us = 30306,
                 .bytes_out = 20,
                 .host = S("127.0.0.1:18432"),
                 .target = S("/api/users/42"),
                 .http_minor = 1,
                 .upstream = S("origin"),
                 .upstream_addr = S("127.0.0.1:18431"),
                 .upstream_connect_us = 3179,
                 .upstream_response_us = 7239},
        .request_id = S("fa477f32293e81370000000000000001"),
        .remote_addr = S("127.0.0.1"),
        .method = S("GET"),
        .route = S("bench"),
        .consumer = S("bench"),
        .ctx = &bench_fields,
        .field_at = fake_field_at,
        .header = fake_header,
    };
    lg_facts_split_target(&f);
    return f;
}

static const char bench_record[] =
    "{\"time\":\"2023-11-14T22:13:20.123Z\",\"request_id\":\"fa477f32293e81370000000000000001\","
    "\"remote_addr\":\"127.0.0.1\",\"method\":\"GET\",\"host\":\"127.0.0.1:18432\","
    "\"path\":\"/api/users/42\",\"query\":null,\"protocol\":\"HTTP/1.1\","
    "\"status\":200,\"bytes_received\":0,\"bytes_sent\":20,\"request_time\":0.030306,"
    "\"upstream\":\"origin\",\"upstream_addr\":\"127.0.0.1:18431\","
    "\"upstream_connect_time\":0.003179,\"upstream_response_time\":0.007239,"
    "\"route\":\"bench\",\"consumer\":\"bench\","
    "\"fields\":{\"auth_method\":\"key\",\"ratelimit\":\"allowed\","
    "\"ratelimit_remaining\":\"999999999\"}}\n";

/* Values of every length class and with escapes where the word copy hands over to the escaper;
 * numbers of every size; times past 10 s. */
static struct fake odd_fields = {
    .fields = {{"", ""}, {"k", "\x7f"}, {"key\"with", "value\\with\ttab and \xc3\xa9t\xc3\xa9"}},
};

static struct lg_facts odd_facts(void)
{
    struct lg_facts f = {
        .info = {.struct_size = sizeof(struct lintel_req_info),
                 .status = 504,
                 .start_unix_us = 1704067199999999ull,
                 .duration_us = 12345678901ull,
                 .bytes_in = 1000,
                 .bytes_out = 18446744073709551615ull,
                 .host = S("h\"st.example:8080"),
                 .target = S("/caf\xc3\xa9/\xff\x01/x?q=\xe2\x82\xac&r=\"1\""),
                 .http_minor = 0,
                 .upstream = S("u"),
                 .upstream_addr = S("[2001:db8::1]:443"),
                 .upstream_connect_us = 99,
                 .upstream_response_us = 10000000},
        .request_id = S("client-supplied\\id"),
        .remote_addr = S("2001:db8::42"),
        .method = S("PROPFIND"),
        .route = S("ab"),
        .consumer = S("\xf0\x9f\x98\x80"),
        .ctx = &odd_fields,
        .field_at = fake_field_at,
        .header = fake_header,
    };
    lg_facts_split_target(&f);
    return f;
}

static const char odd_record[] =
    "{\"time\":\"2023-12-31T23:59:59.999Z\",\"request_id\":\"client-supplied\\\\id\","
    "\"remote_addr\":\"2001:db8::42\",\"method\":\"PROPFIND\",\"host\":\"h\\\"st.example:8080\","
    "\"path\":\"/caf\xc3\xa9/\\ufffd\\u0001/x\",\"query\":\"q=\xe2\x82\xac&r=\\\"1\\\"\","
    "\"protocol\":\"HTTP/1.0\",\"status\":504,\"bytes_received\":1000,"
    "\"bytes_sent\":18446744073709551615,\"request_time\":12345.678901,"
    "\"upstream\":\"u\",\"upstream_addr\":\"[2001:db8::1]:443\","
    "\"upstream_connect_time\":0.000099,\"upstream_response_time\":10.000000,"
    "\"route\":\"ab\",\"consumer\":\"\xf0\x9f\x98\x80\",\"fields\":{\"\":\"\","
    "\"k\":\"\\u007f\",\"key\\\"with\":\"value\\\\with\\ttab and \xc3\xa9t\xc3\xa9\"}}\n";

/* Renders f at every buffer size from lo to hi: the whole record (want) from its length on,
 * cut (want_cut, NULL: nothing) below it down to want_cut's length, nothing below that. */
static void check_caps(const struct lg_config *c, const struct lg_facts *f, const char *want,
                       const char *want_cut, size_t lo, size_t hi)
{
    size_t len = strlen(want), cut_len = want_cut ? strlen(want_cut) : len;
    for (size_t cap = lo; cap <= hi; cap++) {
        const char *s = render(c, f, cap);
        const char *expect = cap >= len ? want : cap >= cut_len ? want_cut : NULL;
        if (expect ? !s || strcmp(s, expect) != 0 : s != NULL) {
            fprintf(stderr, "cap %zu: %s\n", cap, s ? s : "(nothing)");
            CU_FAIL("record at this buffer size");
        }
    }
}

static void test_json_pinned_records(void)
{
    struct lg_config c = json_config();
    struct lg_facts f = bench_facts();
    CU_ASSERT_STRING_EQUAL(render(&c, &f, sizeof(record) - 1), bench_record);
    check_caps(&c, &f, bench_record, NULL, strlen(bench_record) - 80, strlen(bench_record) + 16);
    f = odd_facts();
    CU_ASSERT_STRING_EQUAL(render(&c, &f, sizeof(record) - 1), odd_record);
    check_caps(&c, &f, odd_record, NULL, strlen(odd_record) - 80, strlen(odd_record) + 16);
}

/* A record cut short: values over 256 bytes are cut (at an escape, too), and the record says
 * so; pinned whole, at every buffer size around both lengths. */
static void test_json_pinned_cut_record(void)
{
    struct lg_config c = json_config();
    struct lg_facts f = bench_facts();
    static char path[600], want[2048], want_cut[2048];
    for (size_t i = 0; i < sizeof(path); i++)
        path[i] = plain[i % (sizeof(plain) - 1)];
    path[0] = '/';
    path[255] = '"'; /* the 256th byte: cut just after its escape */
    f.info.target = (struct lintel_str){path, sizeof(path)};
    lg_facts_split_target(&f);
    const char *head = strstr(bench_record, ",\"path\":\"");
    const char *tail = strstr(bench_record, "\",\"query\"");
    CU_ASSERT_FATAL(head && tail);
    snprintf(want, sizeof(want), "%.*s,\"path\":\"%.255s\\\"%.*s%s", (int)(head - bench_record),
             bench_record, path, (int)sizeof(path) - 256, path + 256, tail);
    size_t tail_len = strlen(tail);
    snprintf(want_cut, sizeof(want_cut), "%.*s,\"path\":\"%.255s\\\"%.*s,\"truncated\":true}\n",
             (int)(head - bench_record), bench_record, path, (int)(tail_len - 2), tail);
    CU_ASSERT_STRING_EQUAL(render(&c, &f, sizeof(record) - 1), want);
    check_caps(&c, &f, want, want_cut, strlen(want_cut) - 16, strlen(want) + 16);
}

static void test_record_too_long(void)
{
    struct lg_config c = json_config();
    struct lg_facts f = full_facts();
    static char path[20000];
    memset(path, 'a', sizeof(path));
    path[0] = '/';
    f.info.target = (struct lintel_str){path, sizeof(path)};
    lg_facts_split_target(&f);
    /* Too long for 4k whole: every value is cut to 256 bytes and the record says so. */
    const char *s = render(&c, &f, 4096);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT(strlen(s) < 4096);
    CU_ASSERT(strstr(s, ",\"truncated\":true}\n") != NULL);
    char *p = strstr(s, "\"path\":\"/aaa");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(strchr(p + 8, '"') - (p + 8), 256);
    /* Not even that fits: nothing. */
    CU_ASSERT_PTR_NULL(render(&c, &f, 200));
    /* A record that fits whole is never marked. */
    f = full_facts();
    s = render(&c, &f, 4096);
    CU_ASSERT(s && !strstr(s, "truncated"));
}

static void test_split_target(void)
{
    struct lg_facts f = {.info = {.target = S("/a?")}};
    lg_facts_split_target(&f);
    CU_ASSERT_EQUAL(f.path.len, 2);
    CU_ASSERT_PTR_NOT_NULL(f.query.ptr);
    CU_ASSERT_EQUAL(f.query.len, 0);
    f.info.target = S("*");
    lg_facts_split_target(&f);
    CU_ASSERT_EQUAL(f.path.len, 1);
    CU_ASSERT_PTR_NULL(f.query.ptr);
}

static CU_TestInfo escape_tests[] = {
    {"JSON escaping of ASCII", test_json_escape_ascii},
    {"JSON escaping keeps valid UTF-8, replaces invalid bytes", test_json_escape_utf8},
    {"default (nginx) escaping", test_default_escape},
    {"every byte value at every position", test_every_byte_every_position},
    {"UTF-8 sequences across words", test_utf8_across_words},
    {"a value in exactly its room", test_value_exact_room},
    {"value cap and bounded output", test_value_cap_and_overflow},
    {"numbers and seconds", test_numbers},
    {"times, with the per-second cache", test_times},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo format_tests[] = {
    {"template compilation", test_template_compile},
    {"template errors", test_template_errors},
    {"the issue's template", test_template_issue_example},
    {"every template variable", test_template_every_variable},
    {"absent values in templates", test_template_absent_values},
    {"template escape: json", test_template_escape_json},
    {"JSON record with every field", test_json_every_field},
    {"JSON record with absent values", test_json_absent_values},
    {"JSON record with hostile values", test_json_hostile_values},
    {"a record too long for max_record", test_record_too_long},
    {"pinned JSON records, at every buffer size", test_json_pinned_records},
    {"a pinned record cut short", test_json_pinned_cut_record},
    {"path and query from the target", test_split_target},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"logging escape.c", NULL, NULL, NULL, NULL, escape_tests},
    {"logging format.c", NULL, NULL, NULL, NULL, format_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return lk_test_run(suites);
}
