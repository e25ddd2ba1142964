#include "ynode.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Far deeper than any configuration needs; bounds the recursion on hostile input. */
#define MAX_DEPTH 64

struct parse {
    yaml_parser_t parser;
    struct lintel_arena *arena;
    const char *text; /* to turn a reader error's byte offset into a line and column */
    struct lintel_ypath path;
    int depth;
    char *err;
    size_t errlen;
};

/* A child of a collection being read; the list becomes the node's arrays at the collection's end,
 * when the number of children is known. */
struct link {
    struct lintel_ynode *key; /* MAP only */
    struct lintel_ynode *value;
    struct link *next;
};

static int position(size_t zero_based)
{
    return zero_based < INT_MAX ? (int)zero_based + 1 : INT_MAX;
}

/* Writes "LINE:COL: path: message" (no path at the top of the document). */
__attribute__((format(printf, 3, 4))) static void fail(struct parse *p, const yaml_mark_t *at,
                                                       const char *fmt, ...)
{
    int n = snprintf(p->err, p->errlen, "%d:%d: %s%s", position(at->line), position(at->column),
                     p->path.buf, p->path.len ? ": " : "");
    if (n < 0 || (size_t)n >= p->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static void fail_syntax(struct parse *p)
{
    const yaml_parser_t *yp = &p->parser;
    size_t line = yp->problem_mark.line, col = yp->problem_mark.column;

    if (yp->error == YAML_MEMORY_ERROR) {
        snprintf(p->err, p->errlen, "%d:%d: out of memory", position(line), position(col));
        return;
    }
    if (yp->error == YAML_READER_ERROR) {
        /* The reader reports a byte offset (bad UTF-8, control characters), not a mark. */
        line = col = 0;
        for (size_t i = 0; i < yp->problem_offset && p->text[i]; i++) {
            if (p->text[i] == '\n') {
                line++;
                col = 0;
            } else if (((unsigned char)p->text[i] & 0xC0) != 0x80) {
                col++; /* columns count characters, as libyaml's marks do */
            }
        }
    }
    snprintf(p->err, p->errlen, "%d:%d: yaml: %s", position(line), position(col),
             yp->problem ? yp->problem : "syntax error");
}

static int next_event(struct parse *p, yaml_event_t *ev)
{
    if (yaml_parser_parse(&p->parser, ev))
        return 0;
    fail_syntax(p);
    return -1;
}

static struct lintel_ynode *node_new(struct parse *p, enum lintel_ynode_type type,
                                     const yaml_mark_t *at)
{
    struct lintel_ynode *n = lintel_arena_calloc(p->arena, sizeof(*n));
    if (!n) {
        fail(p, at, "out of memory");
        return NULL;
    }
    n->type = type;
    n->line = position(at->line);
    n->col = position(at->column);
    return n;
}

static struct lintel_ynode *scalar_new(struct parse *p, const yaml_event_t *ev)
{
    const char *value = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;

    /* A NUL inside a key or value would silently cut it short for every C reader below. */
    if (memchr(value, '\0', len)) {
        fail(p, &ev->start_mark, "strings must not contain NUL characters");
        return NULL;
    }
    struct lintel_ynode *n = node_new(p, LINTEL_YNODE_SCALAR, &ev->start_mark);
    if (!n)
        return NULL;
    n->scalar = lintel_arena_strndup(p->arena, value, len);
    if (!n->scalar) {
        fail(p, &ev->start_mark, "out of memory");
        return NULL;
    }
    n->len = len;
    /* Quoted and block (| >) scalars were written as strings on purpose. */
    n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
    return n;
}

/* Moves the children list into n's arrays. */
static int collect(struct parse *p, struct lintel_ynode *n, struct link *head, size_t count,
                   const yaml_mark_t *at)
{
    n->len = count;
    if (count == 0)
        return 0;
    if (count > SIZE_MAX / sizeof(*n->items)) {
        fail(p, at, "out of memory");
        return -1;
    }
    n->items = lintel_arena_alloc(p->arena, count * sizeof(*n->items));
    if (n->type == LINTEL_YNODE_MAP)
        n->keys = lintel_arena_alloc(p->arena, count * sizeof(*n->keys));
    if (!n->items || (n->type == LINTEL_YNODE_MAP && !n->keys)) {
        fail(p, at, "out of memory");
        return -1;
    }
    size_t i = 0;
    for (struct link *l = head; l; l = l->next, i++) {
        n->items[i] = l->value;
        if (n->keys)
            n->keys[i] = l->key;
    }
    return 0;
}

static int check_duplicate_keys(struct parse *p, const struct lintel_ynode *map)
{
    if (map->len < 2)
        return 0;
    const char **names = malloc(map->len * sizeof(*names));
    if (!names) {
        snprintf(p->err, p->errlen, "%d:%d: out of memory", map->line, map->col);
        return -1;
    }
    for (size_t i = 0; i < map->len; i++)
        names[i] = map->keys[i]->scalar;
    size_t dup;
    int rc = lintel_find_duplicate(names, map->len, &dup);
    free(names);
    if (rc == 0)
        return 0;
    if (rc < 0) {
        snprintf(p->err, p->errlen, "%d:%d: out of memory", map->line, map->col);
        return -1;
    }
    const struct lintel_ynode *key = map->keys[dup];
    yaml_mark_t at = {.line = (size_t)key->line - 1, .column = (size_t)key->col - 1};
    lintel_ypath_push_key(&p->path, key->scalar);
    fail(p, &at, "duplicate key");
    return -1;
}

static struct lintel_ynode *parse_node(struct parse *p, yaml_event_t *ev);

/* Reads the items of a SEQ or MAP up to its end event. */
static int parse_children(struct parse *p, struct lintel_ynode *n, const yaml_mark_t *at)
{
    yaml_event_type_t end =
        n->type == LINTEL_YNODE_MAP ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
    struct link *head = NULL, **tail = &head;
    size_t count = 0;

    for (;;) {
        yaml_event_t ev;
        if (next_event(p, &ev) < 0)
            return -1;
        if (ev.type == end) {
            yaml_event_delete(&ev);
            break;
        }
        struct link *l = lintel_arena_calloc(p->arena, sizeof(*l));
        if (!l) {
            fail(p, &ev.start_mark, "out of memory");
            yaml_event_delete(&ev);
            return -1;
        }
        size_t mark;
        if (n->type == LINTEL_YNODE_MAP) {
            yaml_mark_t key_at = ev.start_mark;
            l->key = parse_node(p, &ev);
            if (!l->key)
                return -1;
            if (l->key->type != LINTEL_YNODE_SCALAR) {
                fail(p, &key_at, "map keys must be strings");
                return -1;
            }
            mark = lintel_ypath_push_key(&p->path, l->key->scalar);
            if (next_event(p, &ev) < 0)
                return -1;
        } else {
            mark = lintel_ypath_push_index(&p->path, count);
        }
        l->value = parse_node(p, &ev);
        if (!l->value)
            return -1;
        lintel_ypath_restore(&p->path, mark);
        *tail = l;
        tail = &l->next;
        count++;
    }
    if (collect(p, n, head, count, at) < 0)
        return -1;
    return n->type == LINTEL_YNODE_MAP ? check_duplicate_keys(p, n) : 0;
}

/* Builds the node that starts with ev and everything under it. Always deletes ev. Returns NULL
 * with p->err set on failure. */
static struct lintel_ynode *parse_node(struct parse *p, yaml_event_t *ev)
{
    struct lintel_ynode *n = NULL;
    const yaml_char_t *anchor = NULL;

    if (ev->type == YAML_SCALAR_EVENT)
        anchor = ev->data.scalar.anchor;
    else if (ev->type == YAML_SEQUENCE_START_EVENT)
        anchor = ev->data.sequence_start.anchor;
    else if (ev->type == YAML_MAPPING_START_EVENT)
        anchor = ev->data.mapping_start.anchor;

    /* Aliases would let one node appear in many places (and "billion laughs" expansions); a
     * configuration is clearer written out. */
    if (ev->type == YAML_ALIAS_EVENT) {
        fail(p, &ev->start_mark, "aliases are not allowed");
    } else if (anchor) {
        fail(p, &ev->start_mark, "anchors are not allowed");
    } else if (ev->type == YAML_SCALAR_EVENT) {
        n = scalar_new(p, ev);
    } else if (ev->type != YAML_SEQUENCE_START_EVENT && ev->type != YAML_MAPPING_START_EVENT) {
        fail(p, &ev->start_mark, "yaml: unexpected event");
    } else if (p->depth >= MAX_DEPTH) {
        fail(p, &ev->start_mark, "nesting is deeper than %d levels", MAX_DEPTH);
    } else {
        enum lintel_ynode_type type =
            ev->type == YAML_MAPPING_START_EVENT ? LINTEL_YNODE_MAP : LINTEL_YNODE_SEQ;
        n = node_new(p, type, &ev->start_mark);
        p->depth++;
        if (n && parse_children(p, n, &ev->start_mark) < 0)
            n = NULL;
        p->depth--;
    }
    yaml_event_delete(ev);
    return n;
}

static struct lintel_ynode *empty_map(struct parse *p, const yaml_mark_t *at)
{
    return node_new(p, LINTEL_YNODE_MAP, at);
}

static struct lintel_ynode *parse_stream(struct parse *p)
{
    yaml_event_t ev;
    struct lintel_ynode *root;

    if (next_event(p, &ev) < 0) /* STREAM-START */
        return NULL;
    yaml_event_delete(&ev);
    if (next_event(p, &ev) < 0)
        return NULL;
    if (ev.type == YAML_STREAM_END_EVENT) { /* nothing but comments and blank lines */
        yaml_mark_t start = {0};
        yaml_event_delete(&ev);
        return empty_map(p, &start);
    }
    yaml_event_delete(&ev); /* DOCUMENT-START */
    if (next_event(p, &ev) < 0)
        return NULL;
    root = parse_node(p, &ev);
    if (!root)
        return NULL;
    if (next_event(p, &ev) < 0) /* DOCUMENT-END */
        return NULL;
    yaml_event_delete(&ev);
    if (next_event(p, &ev) < 0)
        return NULL;
    if (ev.type != YAML_STREAM_END_EVENT) {
        fail(p, &ev.start_mark, "only one YAML document is allowed");
        yaml_event_delete(&ev);
        return NULL;
    }
    yaml_event_delete(&ev);
    /* "---" alone is a document holding one empty plain scalar: treat it as empty too. */
    if (root->type == LINTEL_YNODE_SCALAR && !root->quoted && root->len == 0) {
        yaml_mark_t at = {.line = (size_t)root->line - 1, .column = (size_t)root->col - 1};
        root = empty_map(p, &at);
    }
    return root;
}

struct lintel_ynode *lintel_ynode_parse(struct lintel_arena *arena, const char *text, size_t len,
                                        char *err, size_t errlen)
{
    struct parse p = {.arena = arena, .text = text, .err = err, .errlen = errlen};

    if (!yaml_parser_initialize(&p.parser)) {
        snprintf(err, errlen, "1:1: out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&p.parser, (const unsigned char *)text, len);
    struct lintel_ynode *root = parse_stream(&p);
    yaml_parser_delete(&p.parser);
    return root;
}

const struct lintel_ynode *lintel_ynode_get(const struct lintel_ynode *map, const char *key)
{
    if (!map || map->type != LINTEL_YNODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->len; i++)
        if (strcmp(map->keys[i]->scalar, key) == 0)
            return map->items[i];
    return NULL;
}

size_t lintel_ypath_push_key(struct lintel_ypath *p, const char *key)
{
    size_t old = p->len;
    int n = snprintf(p->buf + p->len, sizeof(p->buf) - p->len, "%s%s", p->len ? "." : "", key);
    if (n > 0)
        p->len += (size_t)n < sizeof(p->buf) - p->len ? (size_t)n : sizeof(p->buf) - 1 - p->len;
    return old;
}

size_t lintel_ypath_push_index(struct lintel_ypath *p, size_t i)
{
    size_t old = p->len;
    int n = snprintf(p->buf + p->len, sizeof(p->buf) - p->len, "[%zu]", i);
    if (n > 0)
        p->len += (size_t)n < sizeof(p->buf) - p->len ? (size_t)n : sizeof(p->buf) - 1 - p->len;
    return old;
}

void lintel_ypath_restore(struct lintel_ypath *p, size_t len)
{
    if (len < sizeof(p->buf)) {
        p->len = len;
        p->buf[len] = '\0';
    }
}

struct named {
    const char *s;
    size_t index;
};

static int named_cmp(const void *a, const void *b)
{
    const struct named *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

int lintel_find_duplicate(const char *const *strs, size_t n, size_t *dup)
{
    if (n < 2)
        return 0;
    if (n > SIZE_MAX / sizeof(struct named))
        return -1;
    struct named *v = malloc(n * sizeof(*v));
    if (!v)
        return -1;
    for (size_t i = 0; i < n; i++)
        v[i] = (struct named){strs[i], i};
    qsort(v, n, sizeof(*v), named_cmp);

    /* Sorted by (string, index), each later copy follows an earlier one; report the copy that
     * comes first in the input so errors point at the first problem in the file. */
    int found = 0;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(v[i - 1].s, v[i].s) == 0 && (!found || v[i].index < *dup)) {
            *dup = v[i].index;
            found = 1;
        }
    }
    free(v);
    return found;
}

/* Reads decimal digits; *end points past them. Signs, spaces and empty text are refused. */
static int parse_digits(const char *s, uint64_t *v, const char **end)
{
    if (*s < '0' || *s > '9')
        return -1;
    uint64_t x = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *v = x;
    *end = s;
    return 0;
}

int lintel_parse_duration_ms(const char *text, uint64_t *ms)
{
    uint64_t v, mul;
    const char *unit;

    if (parse_digits(text, &v, &unit) < 0)
        return -1;
    if (strcmp(unit, "") == 0 || strcmp(unit, "s") == 0)
        mul = 1000;
    else if (strcmp(unit, "ms") == 0)
        mul = 1;
    else if (strcmp(unit, "m") == 0)
        mul = 60 * 1000;
    else if (strcmp(unit, "h") == 0)
        mul = 60 * 60 * 1000;
    else
        return -1;
    if (v > UINT64_MAX / mul)
        return -1;
    *ms = v * mul;
    return 0;
}

int lintel_parse_size(const char *text, uint64_t *bytes)
{
    uint64_t v;
    const char *unit;
    unsigned shift;

    if (parse_digits(text, &v, &unit) < 0)
        return -1;
    if (unit[0] != '\0' && unit[1] != '\0')
        return -1;
    switch (unit[0]) {
    case '\0':
        shift = 0;
        break;
    case 'k':
    case 'K':
        shift = 10;
        break;
    case 'm':
    case 'M':
        shift = 20;
        break;
    case 'g':
    case 'G':
        shift = 30;
        break;
    default:
        return -1;
    }
    if (v > UINT64_MAX >> shift)
        return -1;
    *bytes = v << shift;
    return 0;
}
