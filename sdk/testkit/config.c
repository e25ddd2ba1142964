/* The host's config readers over core/ynode.c's tree: a lintel_cfg is a struct lintel_ynode. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testkit-internal.h"

static const struct lintel_ynode *node_of(const lintel_cfg *c)
{
    return (const struct lintel_ynode *)c;
}

static const lintel_cfg *cfg_of(const struct lintel_ynode *n)
{
    return (const lintel_cfg *)n;
}

enum lintel_cfg_type lk_cfg_type(const lintel_cfg *node)
{
    const struct lintel_ynode *n = node_of(node);
    if (!n)
        return LINTEL_CFG_NONE;
    switch (n->type) {
    case LINTEL_YNODE_SCALAR:
        return LINTEL_CFG_SCALAR;
    case LINTEL_YNODE_SEQ:
        return LINTEL_CFG_LIST;
    case LINTEL_YNODE_MAP:
        return LINTEL_CFG_MAP;
    }
    return LINTEL_CFG_NONE;
}

const lintel_cfg *lk_cfg_get(const lintel_cfg *map, const char *key)
{
    return key ? cfg_of(lintel_ynode_get(node_of(map), key)) : NULL;
}

size_t lk_cfg_len(const lintel_cfg *node)
{
    const struct lintel_ynode *n = node_of(node);
    return n && n->type != LINTEL_YNODE_SCALAR ? n->len : 0;
}

const lintel_cfg *lk_cfg_at(const lintel_cfg *node, size_t i)
{
    const struct lintel_ynode *n = node_of(node);
    if (!n || n->type == LINTEL_YNODE_SCALAR || i >= n->len)
        return NULL;
    return cfg_of(n->items[i]);
}

const char *lk_cfg_key_at(const lintel_cfg *map, size_t i)
{
    const struct lintel_ynode *n = node_of(map);
    if (!n || n->type != LINTEL_YNODE_MAP || i >= n->len)
        return NULL;
    return n->keys[i]->scalar;
}

const char *lk_cfg_str(const lintel_cfg *node)
{
    const struct lintel_ynode *n = node_of(node);
    return n && n->type == LINTEL_YNODE_SCALAR ? n->scalar : NULL;
}

int lk_cfg_int(const lintel_cfg *node, int64_t *out)
{
    const char *s = lk_cfg_str(node);
    /* Decimal only, optional '-': no '+', spaces, hex or octal surprises. */
    if (!s || !((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9')))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = (int64_t)v;
    return 0;
}

int lk_cfg_bool(const lintel_cfg *node, int *out)
{
    const char *s = lk_cfg_str(node);
    if (!s)
        return -1;
    if (strcmp(s, "true") == 0)
        *out = 1;
    else if (strcmp(s, "false") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

int lk_cfg_duration_ms(const lintel_cfg *node, uint64_t *out)
{
    const char *s = lk_cfg_str(node);
    return s ? lintel_parse_duration_ms(s, out) : -1;
}

int lk_cfg_size(const lintel_cfg *node, uint64_t *out)
{
    const char *s = lk_cfg_str(node);
    return s ? lintel_parse_size(s, out) : -1;
}

/* Builds in path the key path from root down to target; 1 when found. */
static int find_path(const struct lintel_ynode *root, const struct lintel_ynode *target,
                     struct lintel_ypath *path)
{
    if (root == target)
        return 1;
    if (root->type == LINTEL_YNODE_SCALAR)
        return 0;
    for (size_t i = 0; i < root->len; i++) {
        size_t mark = root->type == LINTEL_YNODE_MAP
                          ? lintel_ypath_push_key(path, root->keys[i]->scalar)
                          : lintel_ypath_push_index(path, i);
        if (find_path(root->items[i], target, path))
            return 1;
        lintel_ypath_restore(path, mark);
    }
    return 0;
}

void lk_cfg_error(lintel_cfg_error *err, const lintel_cfg *node, const char *fmt, ...)
{
    if (!err || !err->in || !err->in->in_create) {
        lk_violation("cfg_error called outside create");
        return;
    }
    if (err->set) {
        /* create should return -1 after its first error; which one lintel shows is not set */
        lk_violation("%s: cfg_error called again after \"%s\"", err->in->name, err->msg);
        return;
    }
    struct lk_instance *in = err->in;
    const struct lintel_ynode *n = node ? node_of(node) : in->config;
    struct lintel_ypath path = {0};
    int line = 1, col = 1;
    /* A node of the instance's config; or of a consumer's credentials, named from the top. */
    if (n && !(in->config && find_path(in->config, n, &path))) {
        path = (struct lintel_ypath){0};
        lintel_ypath_push_key(&path, "consumers");
        if (!in->consumers || !find_path(in->consumers, n, &path)) {
            lk_violation("%s: cfg_error at a node that is not in its config", in->name);
            n = in->config;
            path = (struct lintel_ypath){0};
        }
    }
    if (n) {
        line = n->line;
        col = n->col;
    }
    int k = snprintf(err->msg, sizeof(err->msg), "%d:%d: %s%s", line, col, path.buf,
                     path.len ? ": " : "");
    if (k >= 0 && (size_t)k < sizeof(err->msg)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg + k, sizeof(err->msg) - (size_t)k, fmt, ap);
        va_end(ap);
    }
    err->set = true;
}
