/* abtest configuration: reads and checks the YAML once, in create (main thread), into rules the
 * handlers match without parsing anything (docs/plugins/abtest.md lists the keys). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lintel/config.h>
#include <lintel/text.h>

#include "abtest-internal.h"

static const char *const top_keys[] = {
    "uid", "rules", "on_error", "expose_group", "max_replay_body", "salt", NULL};
static const char *const uid_keys[] = {"from", "name", NULL};
static const char *const rule_keys[] = {"strategy", "uids",  "digits", "buckets",
                                        "to",       "group", NULL};
static const char *const to_keys[] = {"path", "upstream", "redirect", "status", NULL};

/* The key of each strategy's own list, which the other strategies refuse. */
static const char *const strategy_names[] = {"whitelist", "tail_digit", "hash"};
static const char *const strategy_keys[] = {"uids", "digits", "buckets"};

int abtest_str_cmp(const void *a, const void *b)
{
    const struct abtest_str *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp(x->s, y->s, x->len);
}

/* The required map at key of parent; NULL after reporting that it is absent or not a map. */
static const lintel_cfg *get_map(struct abtest *t, const lintel_cfg *parent, const char *key,
                                 lintel_cfg_error *err)
{
    const struct lintel_host_api *h = t->host;
    const lintel_cfg *node = h->cfg_get(parent, key);
    if (!node) {
        h->cfg_error(err, parent, "%s: required", key);
        return NULL;
    }
    if (h->cfg_type(node) != LINTEL_CFG_MAP) {
        h->cfg_error(err, node, "must be a map");
        return NULL;
    }
    return node;
}

/* A non-empty string without control characters; NULL after reporting. */
static const char *get_text(struct abtest *t, const lintel_cfg *node, lintel_cfg_error *err)
{
    const char *s = t->host->cfg_str(node);
    if (!s || !*s) {
        t->host->cfg_error(err, node, "must be a non-empty string");
        return NULL;
    }
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            t->host->cfg_error(err, node, "must not contain control characters");
            return NULL;
        }
    return s;
}

/* A non-empty list; -1 after reporting. */
static int require_list(struct abtest *t, const lintel_cfg *node, lintel_cfg_error *err)
{
    if (t->host->cfg_type(node) != LINTEL_CFG_LIST) {
        t->host->cfg_error(err, node, "must be a list");
        return -1;
    }
    if (t->host->cfg_len(node) == 0) {
        t->host->cfg_error(err, node, "must not be empty");
        return -1;
    }
    return 0;
}

static int read_uid(struct abtest *t, const lintel_cfg *config, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = t->host;
    const lintel_cfg *uid = get_map(t, config, "uid", err);
    if (!uid || lintel_cfg_check_keys(t->host, uid, uid_keys, err) < 0)
        return -1;
    const lintel_cfg *from = h->cfg_get(uid, "from");
    const char *f = from ? h->cfg_str(from) : NULL;
    if (!from) {
        h->cfg_error(err, uid, "from: required");
        return -1;
    }
    if (f && strcmp(f, "arg") == 0) {
        t->uid_from = ABTEST_UID_ARG;
    } else if (f && strcmp(f, "header") == 0) {
        t->uid_from = ABTEST_UID_HEADER;
    } else if (f && strcmp(f, "cookie") == 0) {
        t->uid_from = ABTEST_UID_COOKIE;
    } else {
        h->cfg_error(err, from, "must be arg, header or cookie");
        return -1;
    }
    const lintel_cfg *name = h->cfg_get(uid, "name");
    if (!name) {
        h->cfg_error(err, uid, "name: required");
        return -1;
    }
    if (!(t->uid_name = get_text(t, name, err)))
        return -1;
    for (const char *p = t->uid_name; t->uid_from == ABTEST_UID_HEADER && *p; p++)
        if (!lintel_is_tchar((unsigned char)*p)) {
            h->cfg_error(err, name, "must be a header name");
            return -1;
        }
    return 0;
}

static int read_whitelist(struct abtest *t, struct abtest_rule *rule, const lintel_cfg *list,
                          lintel_cfg_error *err)
{
    const struct lintel_host_api *h = t->host;
    size_t n = h->cfg_len(list);
    if (!(rule->uids = calloc(n, sizeof(*rule->uids)))) {
        h->cfg_error(err, list, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const lintel_cfg *item = h->cfg_at(list, i);
        const char *s = get_text(t, item, err);
        if (!s)
            return -1;
        rule->uids[rule->nuids++] = (struct abtest_str){s, strlen(s)};
    }
    qsort(rule->uids, rule->nuids, sizeof(*rule->uids), abtest_str_cmp);
    return 0;
}

static int read_digits(struct abtest *t, struct abtest_rule *rule, const lintel_cfg *list,
                       lintel_cfg_error *err)
{
    const struct lintel_host_api *h = t->host;
    for (size_t i = 0; i < h->cfg_len(list); i++) {
        const lintel_cfg *item = h->cfg_at(list, i);
        int64_t d;
        if (h->cfg_int(item, &d) < 0 || d < 0 || d > 9) {
            h->cfg_error(err, item, "must be a digit 0..9");
            return -1;
        }
        rule->digits |= 1u << d;
    }
    return 0;
}

/* Parses a decimal bucket number 0..99 at *p, advancing it; -1 when there is none. */
static int bucket_number(const char **p)
{
    int v = -1;
    while (**p == ' ')
        (*p)++;
    for (int n = 0; **p >= '0' && **p <= '9'; (*p)++, n++) {
        if (n == 2)
            return -1;
        v = (v < 0 ? 0 : v * 10) + (**p - '0');
    }
    while (**p == ' ')
        (*p)++;
    return v;
}

/* One "lo-hi" (or "n") range into rule->buckets. */
static int read_range(struct abtest *t, struct abtest_rule *rule, const lintel_cfg *node,
                      lintel_cfg_error *err)
{
    const char *s = t->host->cfg_str(node), *p = s;
    int lo = s ? bucket_number(&p) : -1, hi = lo;
    if (lo >= 0 && *p == '-') {
        p++;
        hi = bucket_number(&p);
    }
    if (lo < 0 || hi < 0 || *p != '\0') {
        t->host->cfg_error(err, node, "must be a bucket range \"LO-HI\" within 0-99");
        return -1;
    }
    if (lo > hi) {
        t->host->cfg_error(err, node, "range starts after it ends");
        return -1;
    }
    for (int b = lo; b <= hi; b++)
        rule->buckets[b / 64] |= 1ull << (b % 64);
    return 0;
}

static int read_buckets(struct abtest *t, struct abtest_rule *rule, const lintel_cfg *node,
                        lintel_cfg_error *err)
{
    const struct lintel_host_api *h = t->host;
    if (h->cfg_type(node) == LINTEL_CFG_SCALAR)
        return read_range(t, rule, node, err);
    if (require_list(t, node, err) < 0)
        return -1;
    for (size_t i = 0; i < h->cfg_len(node); i++)
        if (read_range(t, rule, h->cfg_at(node, i), err) < 0)
            return -1;
    return 0;
}

/* A path as lintel's req_set_path takes it, with an optional "?query" after it. */
static int read_path(struct abtest *t, struct abtest_rule *rule, const lintel_cfg *node,
                     lintel_cfg_error *err)
{
    const char *s = get_text(t, node, err);
    if (!s)
        return -1;
    if (s[0] != '/' || strpbrk(s, " #")) {
        t->host->cfg_error(err, node, "must be a path starting with '/' (no spaces, no '#')");
        return -1;
    }
    const char *q = strchr(s, '?');
    rule->path = (struct abtest_str){s, q ? (size_t)(q - s) : strlen(s)};
    if (q && q[1])
        rule->query = (struct abtest_str){q + 1, strlen(q + 1)};
    return 0;
}

static int read_redirect(struct abtest *t, struct abtest_rule *rule, const lintel_cfg *to,
                         const lintel_cfg *node, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = t->host;
    const char *url = get_text(t, node, err);
    if (!url)
        return -1;
    if (strchr(url, ' ') ||
        !(strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0 || url[0] == '/')) {
        h->cfg_error(err, node, "must be an http:// or https:// URL or a path, without spaces");
        return -1;
    }
    rule->redirect = (struct abtest_str){url, strlen(url)};
    rule->redirect_status = 302;
    const lintel_cfg *status = h->cfg_get(to, "status");
    if (status) {
        int64_t v;
        if (h->cfg_int(status, &v) < 0 || (v != 302 && v != 307)) {
            h->cfg_error(err, status, "must be 302 or 307");
            return -1;
        }
        rule->redirect_status = (int)v;
    }
    return 0;
}

static int read_to(struct abtest *t, struct abtest_rule *rule, const lintel_cfg *map,
                   lintel_cfg_error *err)
{
    const struct lintel_host_api *h = t->host;
    const lintel_cfg *to = get_map(t, map, "to", err);
    if (!to || lintel_cfg_check_keys(t->host, to, to_keys, err) < 0)
        return -1;
    const lintel_cfg *path = h->cfg_get(to, "path"), *upstream = h->cfg_get(to, "upstream");
    const lintel_cfg *redirect = h->cfg_get(to, "redirect"), *status = h->cfg_get(to, "status");
    if (redirect) {
        if (path || upstream) {
            h->cfg_error(err, path ? path : upstream, "not allowed with redirect");
            return -1;
        }
        return read_redirect(t, rule, to, redirect, err);
    }
    if (status) {
        h->cfg_error(err, status, "only allowed with redirect");
        return -1;
    }
    if (!path && !upstream) {
        h->cfg_error(err, to, "needs path, upstream or redirect");
        return -1;
    }
    if (path && read_path(t, rule, path, err) < 0)
        return -1;
    if (upstream && !(rule->upstream = get_text(t, upstream, err)))
        return -1;
    if (upstream && !h->upstream_exists(t->self, rule->upstream)) {
        h->cfg_error(err, upstream, "no upstream named \"%s\" in this configuration",
                     rule->upstream);
        return -1;
    }
    return 0;
}

static int read_group(struct abtest *t, struct abtest_rule *rule, const lintel_cfg *map,
                      size_t index, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = t->host;
    const lintel_cfg *group = h->cfg_get(map, "group");
    if (group) {
        const char *g = get_text(t, group, err);
        if (!g)
            return -1;
        for (const char *p = g; *p; p++)
            if (!lintel_is_tchar((unsigned char)*p)) {
                h->cfg_error(err, group,
                             "must be a token (letters, digits, \"-._~\"...; no spaces)");
                return -1;
            }
        rule->group = (struct abtest_str){g, strlen(g)};
    } else {
        int n = snprintf(rule->index_text, sizeof(rule->index_text), "%zu", index);
        rule->group = (struct abtest_str){rule->index_text, (size_t)n};
    }
    size_t n = strlen("group:") + rule->group.len + 1;
    if (!(rule->metric = malloc(n))) {
        h->cfg_error(err, map, "out of memory");
        return -1;
    }
    snprintf(rule->metric, n, "group:%.*s", (int)rule->group.len, rule->group.s);
    return 0;
}

static int read_rule(struct abtest *t, struct abtest_rule *rule, const lintel_cfg *map,
                     size_t index, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = t->host;
    if (h->cfg_type(map) != LINTEL_CFG_MAP) {
        h->cfg_error(err, map, "must be a map");
        return -1;
    }
    if (lintel_cfg_check_keys(t->host, map, rule_keys, err) < 0)
        return -1;
    const lintel_cfg *strategy = h->cfg_get(map, "strategy");
    if (!strategy) {
        h->cfg_error(err, map, "strategy: required");
        return -1;
    }
    const char *s = h->cfg_str(strategy);
    size_t k = 0;
    while (k < 3 && !(s && strcmp(s, strategy_names[k]) == 0))
        k++;
    if (k == 3) {
        h->cfg_error(err, strategy, "must be whitelist, tail_digit or hash");
        return -1;
    }
    rule->strategy = (enum abtest_strategy)k;
    for (size_t other = 0; other < 3; other++) {
        const lintel_cfg *node = h->cfg_get(map, strategy_keys[other]);
        if (other != k && node) {
            h->cfg_error(err, node, "only for strategy %s", strategy_names[other]);
            return -1;
        }
    }
    const lintel_cfg *list = h->cfg_get(map, strategy_keys[k]);
    if (!list) {
        h->cfg_error(err, map, "%s: required with strategy %s", strategy_keys[k], s);
        return -1;
    }
    int rc;
    switch (rule->strategy) {
    case ABTEST_WHITELIST:
        rc = require_list(t, list, err) < 0 ? -1 : read_whitelist(t, rule, list, err);
        break;
    case ABTEST_TAIL_DIGIT:
        rc = require_list(t, list, err) < 0 ? -1 : read_digits(t, rule, list, err);
        break;
    default:
        rc = read_buckets(t, rule, list, err);
        break;
    }
    if (rc < 0 || read_to(t, rule, map, err) < 0 || read_group(t, rule, map, index, err) < 0)
        return -1;
    return 0;
}

static int read_rules(struct abtest *t, const lintel_cfg *config, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = t->host;
    const lintel_cfg *rules = h->cfg_get(config, "rules");
    if (!rules) {
        h->cfg_error(err, config, "rules: required");
        return -1;
    }
    if (require_list(t, rules, err) < 0)
        return -1;
    size_t n = h->cfg_len(rules);
    if (!(t->rules = calloc(n, sizeof(*t->rules)))) {
        h->cfg_error(err, rules, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        t->nrules++; /* counted before reading, so that abtest_config_free frees its parts */
        if (read_rule(t, &t->rules[i], h->cfg_at(rules, i), i, err) < 0)
            return -1;
    }
    return 0;
}

static int read_on_error(struct abtest *t, const lintel_cfg *config, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = t->host;
    const lintel_cfg *list = h->cfg_get(config, "on_error");
    if (!list)
        return 0;
    if (h->cfg_type(list) != LINTEL_CFG_LIST) {
        h->cfg_error(err, list, "must be a list of statuses");
        return -1;
    }
    for (size_t i = 0; i < h->cfg_len(list); i++) {
        const lintel_cfg *item = h->cfg_at(list, i);
        int64_t s;
        if (h->cfg_int(item, &s) < 0 || s < 400 || s > 599) {
            h->cfg_error(err, item, "must be a status 400..599");
            return -1;
        }
        t->on_error[s / 64] |= 1ull << (s % 64);
    }
    t->replay = 1; /* also with []: a branch whose upstream fails is replayed */
    return 0;
}

static int read_scalars(struct abtest *t, const lintel_cfg *config, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = t->host;
    const lintel_cfg *node;
    if ((node = h->cfg_get(config, "expose_group")) && h->cfg_bool(node, &t->expose_group) < 0) {
        h->cfg_error(err, node, "must be true or false");
        return -1;
    }
    t->max_replay_body = ABTEST_DEFAULT_MAX_REPLAY_BODY;
    if ((node = h->cfg_get(config, "max_replay_body")) &&
        h->cfg_size(node, &t->max_replay_body) < 0) {
        h->cfg_error(err, node, "must be a size (\"64k\", \"1m\", bytes)");
        return -1;
    }
    if ((node = h->cfg_get(config, "salt"))) {
        const char *s = get_text(t, node, err);
        if (!s)
            return -1;
        t->salt = (struct abtest_str){s, strlen(s)};
    }
    return 0;
}

int abtest_config_parse(struct abtest *t, const lintel_cfg *config, lintel_cfg_error *err)
{
    const struct lintel_host_api *h = t->host;
    if (lintel_cfg_require_config(h, config, top_keys, err) < 0 || read_uid(t, config, err) < 0 ||
        read_scalars(t, config, err) < 0 || read_on_error(t, config, err) < 0 ||
        read_rules(t, config, err) < 0)
        goto fail;
    return 0;
fail:
    abtest_config_free(t);
    return -1;
}

void abtest_config_free(struct abtest *t)
{
    for (size_t i = 0; i < t->nrules; i++) {
        free(t->rules[i].uids);
        free(t->rules[i].metric);
    }
    free(t->rules);
    t->rules = NULL;
    t->nrules = 0;
}
