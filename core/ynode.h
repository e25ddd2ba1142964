/* A parsed YAML document as a tree of nodes with source positions.
 *
 * The configuration loader reads the whole file into this tree first, then checks it against the
 * schema; plugin configuration (issue 3) is handed to plugins as a subtree of it. Nodes live in
 * the configuration's arena and are immutable once loaded. */
#ifndef LINTEL_YNODE_H
#define LINTEL_YNODE_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"

enum lintel_ynode_type { LINTEL_YNODE_SCALAR, LINTEL_YNODE_SEQ, LINTEL_YNODE_MAP };

struct lintel_ynode {
    enum lintel_ynode_type type;
    int line, col;        /* 1-based position of the node in the file */
    const char *scalar;   /* SCALAR: NUL-terminated text */
    size_t len;           /* SCALAR: text length; SEQ/MAP: number of items */
    int quoted;           /* SCALAR: written with quotes (so "null" and "true" stay strings) */
    struct lintel_ynode **items; /* SEQ: items; MAP: values */
    struct lintel_ynode **keys;  /* MAP: keys (scalars), same order as in the file */
};

/* Parses text into a tree allocated from arena. Anchors/aliases are refused, duplicate map keys
 * are refused. Returns the root (an empty MAP for an empty document) or NULL with err set to
 * "LINE:COL: message". */
struct lintel_ynode *lintel_ynode_parse(struct lintel_arena *arena, const char *text, size_t len,
                                        char *err, size_t errlen);

/* Value of key in a MAP, or NULL when absent or when map is not a MAP. */
const struct lintel_ynode *lintel_ynode_get(const struct lintel_ynode *map, const char *key);

/* A key path under construction ("routes[0].match.paths[1]"), for error messages while walking a
 * tree. A path too long for buf is cut short; the message stays usable. Start from {0}. */
struct lintel_ypath {
    char buf[512];
    size_t len;
};

/* Appends ".key" ("key" when the path is empty). Returns the previous length, to hand back to
 * lintel_ypath_restore when the walk leaves that key. */
size_t lintel_ypath_push_key(struct lintel_ypath *p, const char *key);

/* Appends "[i]". Returns the previous length. */
size_t lintel_ypath_push_index(struct lintel_ypath *p, size_t i);

/* Cuts the path back to len (a value returned by a push). */
void lintel_ypath_restore(struct lintel_ypath *p, size_t len);

/* Finds the first string of strs[0..n), in array order, that equals an earlier one, in
 * O(n log n) (maps and route lists may hold thousands of names). Returns 1 and sets *dup to its
 * index, 0 when all differ, -1 when out of memory. */
int lintel_find_duplicate(const char *const *strs, size_t n, size_t *dup);

/* Parses "250ms", "2s", "1m", "1h", or a bare integer (seconds). Returns 0, or -1 when the text is
 * not a duration. */
int lintel_parse_duration_ms(const char *text, uint64_t *ms);

/* Parses "512", "64k", "8m", "1g" (powers of 1024). Returns 0, or -1. */
int lintel_parse_size(const char *text, uint64_t *bytes);

#endif
