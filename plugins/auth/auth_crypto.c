/* auth: hashing, constant-time comparison, base64, digest tables and salted passwords. Pure code
 * (no host calls), unit-tested directly by test_auth_pure.c. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth-internal.h"

int auth_sha256(const EVP_MD *md, const void *a, size_t alen, const void *b, size_t blen,
                unsigned char out[AUTH_DIGEST_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, md ? md : EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, a, alen) == 1 &&
             (blen == 0 || EVP_DigestUpdate(ctx, b, blen) == 1) &&
             EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == AUTH_DIGEST_LEN;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* auth_sha256 with a caller's context, reset by the init. */
static int sha256_with(EVP_MD_CTX *ctx, const EVP_MD *md, const void *a, size_t alen,
                       unsigned char out[AUTH_DIGEST_LEN])
{
    unsigned int n = 0;
    return EVP_DigestInit_ex(ctx, md ? md : EVP_sha256(), NULL) == 1 &&
                   EVP_DigestUpdate(ctx, a, alen) == 1 && EVP_DigestFinal_ex(ctx, out, &n) == 1 &&
                   n == AUTH_DIGEST_LEN
               ? 0
               : -1;
}

int auth_sha256_list(const EVP_MD *md, const void *prefix, size_t plen, const char *const *list,
                     size_t n, unsigned char out[AUTH_DIGEST_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, md ? md : EVP_sha256(), NULL) == 1 &&
             (plen == 0 || EVP_DigestUpdate(ctx, prefix, plen) == 1);
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(ctx, list[i], strlen(list[i]) + 1) == 1;
    ok = ok && EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == AUTH_DIGEST_LEN;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

int auth_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    /* A length mismatch returns at once: lengths (of a MAC, of a hash) are public. */
    return alen == blen && CRYPTO_memcmp(a, b, alen) == 0;
}

/* ---- base64 ------------------------------------------------------------------------------- */

static int b64_value(unsigned char c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

long auth_base64_decode(const char *in, size_t len, int url, unsigned char *out, size_t cap)
{
    if (!url && len % 4 == 0 && len >= 2) { /* padding: only at the end, only where it fits */
        if (in[len - 1] == '=')
            len -= in[len - 2] == '=' ? 2 : 1;
    }
    size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (len % 4 == 1 || need > cap)
        return -1;
    uint32_t acc = 0;
    size_t o = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i], url);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* The spare bits of the last character must be zero: one encoding per byte string. */
    return acc != 0 ? -1 : (long)o;
}

/* ---- digest tables ------------------------------------------------------------------------ */

struct auth_slot {
    unsigned char digest[AUTH_DIGEST_LEN];
    uint32_t value;
    uint8_t used;
};

static size_t slot_index(const unsigned char *d, size_t mask)
{
    uint64_t h;
    memcpy(&h, d, sizeof(h)); /* a SHA-256 is as good a hash as any */
    return (size_t)h & mask;
}

/* The slot holding d, or the empty slot where it would go. t->slots must not be NULL. */
static struct auth_slot *slot_find(const struct auth_table *t, const unsigned char *d)
{
    for (size_t i = slot_index(d, t->mask);; i = (i + 1) & t->mask) {
        struct auth_slot *s = &t->slots[i];
        if (!s->used || CRYPTO_memcmp(s->digest, d, AUTH_DIGEST_LEN) == 0)
            return s;
    }
}

static int table_grow(struct auth_table *t)
{
    size_t n = t->slots ? (t->mask + 1) * 2 : 16;
    struct auth_table bigger = {.slots = calloc(n, sizeof(struct auth_slot)), .mask = n - 1};
    if (!bigger.slots)
        return -1;
    for (size_t i = 0; t->slots && i <= t->mask; i++)
        if (t->slots[i].used)
            *slot_find(&bigger, t->slots[i].digest) = t->slots[i];
    bigger.used = t->used;
    free(t->slots);
    *t = bigger;
    return 0;
}

int auth_table_put(struct auth_table *t, const EVP_MD *md, const void *key, size_t len,
                   uint32_t value, uint32_t *existing)
{
    unsigned char d[AUTH_DIGEST_LEN];
    if (auth_sha256(md, key, len, NULL, 0, d) < 0)
        return -1;
    if ((!t->slots || (t->used + 1) * 2 > t->mask + 1) && table_grow(t) < 0)
        return -1; /* kept at most half full: probe runs stay short */
    struct auth_slot *s = slot_find(t, d);
    if (s->used) {
        if (existing)
            *existing = s->value;
        return 1;
    }
    memcpy(s->digest, d, sizeof(d));
    s->value = value;
    s->used = 1;
    t->used++;
    return 0;
}

int auth_table_get(const struct auth_table *t, const EVP_MD *md, const void *key, size_t len,
                   uint32_t *value)
{
    return auth_table_get_ctx(t, md, NULL, key, len, value);
}

int auth_table_get_ctx(const struct auth_table *t, const EVP_MD *md, EVP_MD_CTX *ctx,
                       const void *key, size_t len, uint32_t *value)
{
    unsigned char d[AUTH_DIGEST_LEN];
    if (!t->slots)
        return -1;
    if (ctx ? sha256_with(ctx, md, key, len, d) < 0 : auth_sha256(md, key, len, NULL, 0, d) < 0)
        return -1;
    const struct auth_slot *s = slot_find(t, d);
    if (!s->used)
        return -1;
    *value = s->value;
    return 0;
}

void auth_table_free(struct auth_table *t)
{
    free(t->slots);
    *t = (struct auth_table){0};
}

/* ---- salted passwords --------------------------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int auth_password_parse(const char *text, size_t len, struct auth_password *p)
{
    const char *dollar = memrchr(text, '$', len);
    if (!dollar || dollar == text || (size_t)(text + len - dollar - 1) != 2 * AUTH_DIGEST_LEN)
        return -1;
    for (size_t i = 0; i < AUTH_DIGEST_LEN; i++) {
        int hi = hex_value(dollar[1 + 2 * i]), lo = hex_value(dollar[2 + 2 * i]);
        if (hi < 0 || lo < 0)
            return -1;
        p->hash[i] = (unsigned char)(hi << 4 | lo);
    }
    p->salt_len = (size_t)(dollar - text);
    p->salt = malloc(p->salt_len);
    if (!p->salt)
        return -1;
    memcpy(p->salt, text, p->salt_len);
    return 0;
}

int auth_password_check(const struct auth_password *p, const EVP_MD *md, const char *password,
                        size_t len)
{
    unsigned char d[AUTH_DIGEST_LEN];
    if (auth_sha256(md, p->salt, p->salt_len, password, len, d) < 0)
        return 0;
    return CRYPTO_memcmp(d, p->hash, AUTH_DIGEST_LEN) == 0;
}

void auth_password_free(struct auth_password *p)
{
    if (p->salt)
        OPENSSL_cleanse(p->salt, p->salt_len);
    free(p->salt);
    p->salt = NULL;
}

int auth_basic_parse(const char *value, size_t len, unsigned char *out, size_t cap,
                     struct lintel_str *user, struct lintel_str *password)
{
    if (len < 6 || strncasecmp(value, "Basic ", 6) != 0)
        return 0;
    size_t i = 6;
    while (i < len && value[i] == ' ')
        i++;
    while (len > i && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    long n = auth_base64_decode(value + i, len - i, 0, out, cap);
    if (n <= 0)
        return -1;
    const unsigned char *colon = memchr(out, ':', (size_t)n);
    if (!colon || colon == out)
        return -1;
    *user = (struct lintel_str){(const char *)out, (size_t)(colon - out)};
    *password = (struct lintel_str){(const char *)colon + 1, (size_t)(out + n - colon - 1)};
    return 1;
}
