/* cors configuration: reads and checks the YAML once, in create (main thread), into the values
 * the handlers send as they are (docs/plugins/cors.md lists the keys). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lintel/config.h>

#include "cors-internal.h"

#define REGEX_FLAGS (REG_EXTENDED | REG_NOSUB)

/* Sent when `methods` is not given: the methods web applications call APIs with. */
static const char default_methods[] = "GET, HEAD, PUT, PATCH, POST, DELETE";

static const char *const known_keys[] = {"origins",
                                         "methods",
                                         "headers",
                                         "expose_headers",
                                         "credentials",
                                         "max_age",
                                         "preflight_continue",
                                         NULL};

static int is_lower_or_digit(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* An origin as a browser serialises it in the Origin header: "null", or scheme "://" host
 * [":" port], lowercase, without path, query or trailing slash. Browsers compare it byte for
 * byte, so anything else could never match. */
static int is_origin(const char *s)
{
    if (strcmp(s, "null") == 0)
        return 1;
    const char *p = s;
    if (!(*p >= 'a' && *p <= 'z'))
        return 0;
    while (is_lower_or_digit((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
        p++;
    if (strncmp(p, "://", 3) != 0)
        return 0;
    p += 3;
    const char *host = p;
    if (*p == '[') { /* IPv6 literal */
        for (p++; is_lower_or_digit((unsigned char)*p) || *p == ':' || *p == '.'; p++)
            ;
        if (*p != ']' || p == host + 1)
            return 0;
        p++;
    } else {
        while (is_lower_or_digit((unsigned char)*p) || *p == '-' || *p == '.')
            p++;
        if (p == host)
            return 0;
    }
    if (*p == ':') {
        const char *digits = ++p;
        unsigned long port = 0;
        while (*p >= '0' && *p <= '9' && p - digits < 5)
            port = port * 10 + (unsigned long)(*p++ - '0');
        if (p == digits || port == 0 || port > 65535)
            return 0;
    }
    return *p == '\0';
}

/* 0 when node is a list; -1 after reporting that it is not. */
static int require_list(struct cors *c, const lintel_cfg *node, lintel_cfg_error *err)
{
    if (c->host->cfg_type(node) == LINTEL_CFG_LIST)
        return 0;
    c->host->cfg_error(err, node, "must be a list of strings");
    return -1;
}

/* A list item's text, or NULL after reporting that it is not a scalar. */
static const char *item_string(struct cors *c, const lintel_cfg *item, lintel_cfg_error *err)
{
    const char *s = c->host->cfg_str(item);
    if (!s)
        c->host->cfg_error(err, item, "must be a string");
    return s;
}

/* Compiles "~re" as "^(re)$" once to check it; workers compile their own copies. */
static int add_pattern(struct cors *c, const lintel_cfg *item, const char *re,
                       lintel_cfg_error *err)
{
    const struct lintel_host_api *h = c->host;
    if (!*re) {
        h->cfg_error(err, item, "empty regex");
        return -1;
    }
    size_t n = strlen(re) + 5;
    char *anchored = malloc(n);
    if (!anchored) {
        h->cfg_error(err, item, "out of memory");
        return -1;
    }
    snprintf(anchored, n, "^(%s)$", re);
    regex_t check;
    int rc = regcomp(&check, anchored, REGEX_FLAGS);
    if (rc != 0) {
        char why[128];
        regerror(rc, &check, why, sizeof(why));
        h->cfg_error(err, item, "regex does not compile: %s", why);
        free(anchored);
        return -1;
    }
    regfree(&check);
    c->patterns[c->npatterns++] = anchored;
    return 0;
}

static int read_origins(struct cors *c, const lintel_cfg *config, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = c->host;
    const lintel_cfg *list = h->cfg_get(config, "origins");
    if (!list) {
        h->cfg_error(err, config, "origins: required");
        return -1;
    }
    if (require_list(c, list, err) < 0)
        return -1;
    size_t n = h->cfg_len(list);
    if (n == 0) {
        h->cfg_error(err, list, "must not be empty");
        return -1;
    }
    c->exact = calloc(n, sizeof(*c->exact));
    c->patterns = calloc(n, sizeof(*c->patterns));
    if (!c->exact || !c->patterns) {
        h->cfg_error(err, list, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const lintel_cfg *item = h->cfg_at(list, i);
        const char *s = item_string(c, item, err);
        if (!s)
            return -1;
        if (strcmp(s, "*") == 0) {
            if (n > 1) {
                h->cfg_error(err, item, "\"*\" must be the only origin");
                return -1;
            }
            c->any_origin = 1;
        } else if (s[0] == '~') {
            if (add_pattern(c, item, s + 1, err) < 0)
                return -1;
        } else if (is_origin(s)) {
            c->exact[c->nexact++] = (struct cors_exact){s, strlen(s)};
        } else {
            h->cfg_error(err, item,
                         "must be \"*\", \"~regex\" or an origin: scheme://host[:port], "
                         "lowercase, no path");
            return -1;
        }
    }
    return 0;
}

/* A list of tokens (methods or header names) joined with ", " into *out (NULL for an empty
 * list). "*" is a wildcard to browsers only without credentials; with them it is a literal name
 * no request uses, so it is refused. */
static int read_tokens(struct cors *c, const lintel_cfg *list, const char *what, char **out,
                       size_t *out_len, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = c->host;
    if (require_list(c, list, err) < 0)
        return -1;
    size_t n = h->cfg_len(list), total = 0;
    for (size_t i = 0; i < n; i++) {
        const lintel_cfg *item = h->cfg_at(list, i);
        const char *s = item_string(c, item, err);
        if (!s)
            return -1;
        if (!lintel_is_token(s, strlen(s))) {
            h->cfg_error(err, item, "must be %s", what);
            return -1;
        }
        if (c->credentials && strcmp(s, "*") == 0) {
            h->cfg_error(err, item, "\"*\" is not a wildcard with credentials: list the names");
            return -1;
        }
        total += strlen(s) + 2;
    }
    *out = NULL;
    *out_len = 0;
    if (n == 0)
        return 0;
    char *joined = malloc(total + 1);
    if (!joined) {
        h->cfg_error(err, list, "out of memory");
        return -1;
    }
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = h->cfg_str(h->cfg_at(list, i));
        len += (size_t)sprintf(joined + len, "%s%s", i ? ", " : "", s);
    }
    *out = joined;
    *out_len = len;
    return 0;
}

static int read_bool(struct cors *c, const lintel_cfg *config, const char *key, int *out,
                     lintel_cfg_error *err)
{
    const lintel_cfg *node = c->host->cfg_get(config, key);
    *out = 0;
    if (node && c->host->cfg_bool(node, out) < 0) {
        c->host->cfg_error(err, node, "must be true or false");
        return -1;
    }
    return 0;
}

static int read_max_age(struct cors *c, const lintel_cfg *config, lintel_cfg_error *err)
{
    const lintel_cfg *node = c->host->cfg_get(config, "max_age");
    uint64_t ms;
    if (!node)
        return 0;
    if (c->host->cfg_duration_ms(node, &ms) < 0) {
        c->host->cfg_error(err, node, "must be a duration");
        return -1;
    }
    if (ms % 1000) {
        c->host->cfg_error(err, node, "must be whole seconds");
        return -1;
    }
    c->max_age_len = (size_t)snprintf(c->max_age, sizeof(c->max_age), "%" PRIu64, ms / 1000);
    return 0;
}

int cors_config_parse(struct cors *c, const lintel_cfg *config, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = c->host;
    const lintel_cfg *node;
    if (lintel_cfg_require_config(h, config, known_keys, err) < 0)
        return -1;
    /* credentials first: it decides what "*" means in the other keys. */
    if (read_bool(c, config, "credentials", &c->credentials, err) < 0 ||
        read_bool(c, config, "preflight_continue", &c->preflight_continue, err) < 0 ||
        read_origins(c, config, err) < 0 || read_max_age(c, config, err) < 0)
        goto fail;

    if ((node = h->cfg_get(config, "methods"))) {
        if (read_tokens(c, node, "a method", &c->methods, &c->methods_len, err) < 0)
            goto fail;
    } else {
        c->methods = strdup(default_methods);
        if (!c->methods) {
            h->cfg_error(err, config, "out of memory");
            goto fail;
        }
        c->methods_len = strlen(c->methods);
    }
    if ((node = h->cfg_get(config, "headers"))) {
        if (read_tokens(c, node, "a header name", &c->headers, &c->headers_len, err) < 0)
            goto fail;
    } else {
        c->echo_headers = 1;
    }
    if ((node = h->cfg_get(config, "expose_headers")) &&
        read_tokens(c, node, "a header name", &c->expose, &c->expose_len, err) < 0)
        goto fail;

    c->vary_origin = !(c->any_origin && !c->credentials);
    return 0;
fail:
    cors_config_free(c);
    return -1;
}

void cors_config_free(struct cors *c)
{
    for (size_t i = 0; i < c->npatterns; i++)
        free(c->patterns[i]);
    free(c->patterns);
    free(c->exact);
    free(c->methods);
    free(c->headers);
    free(c->expose);
    c->patterns = NULL;
    c->exact = NULL;
    c->methods = c->headers = c->expose = NULL;
    c->npatterns = c->nexact = 0;
}
