/* cfg_error over core/ynode.c's tree (a lintel_cfg is a struct lintel_ynode); the readers are the
 * gateway's own, in core/plugin_read.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testkit-internal.h"

static const struct lintel_ynode *node_of(const lintel_cfg *c)
{
    return (const struct lintel_ynode *)c;
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
