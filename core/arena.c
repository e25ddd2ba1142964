#include "arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct block {
    struct block *next;
    size_t size;
    size_t used;
    alignas(max_align_t) unsigned char data[];
};

struct cleanup {
    struct cleanup *next;
    void (*fn)(void *);
    void *arg;
};

struct lintel_arena {
    struct block *head;
    struct block *first; /* the block made with the arena: the one a reset keeps */
    struct cleanup *cleanups;
    size_t total;
    size_t next_size;
};

#define ALIGN(n) (((n) + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1))

static struct block *block_new(size_t size)
{
    struct block *b = malloc(sizeof(*b) + size);
    if (!b)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

struct lintel_arena *lintel_arena_new(size_t first_block)
{
    struct lintel_arena *a = malloc(sizeof(*a));
    if (!a)
        return NULL;
    if (first_block < 256)
        first_block = 256;
    a->head = block_new(first_block);
    if (!a->head) {
        free(a);
        return NULL;
    }
    a->first = a->head;
    a->cleanups = NULL;
    a->total = 0;
    a->next_size = first_block * 2;
    return a;
}

static void run_cleanups(struct lintel_arena *a)
{
    struct cleanup *c = a->cleanups;
    a->cleanups = NULL;
    while (c) {
        c->fn(c->arg);
        c = c->next;
    }
}

void lintel_arena_reset(struct lintel_arena *a)
{
    run_cleanups(a);
    struct block *b = a->head;
    while (b) {
        struct block *next = b->next;
        if (b != a->first)
            free(b);
        b = next;
    }
    a->head = a->first;
    a->head->next = NULL;
    a->head->used = 0;
    a->cleanups = NULL; /* one registered by a cleanup lived in the memory just reset */
    a->total = 0;
    a->next_size = a->first->size * 2;
}

void lintel_arena_free(struct lintel_arena *a)
{
    if (!a)
        return;
    run_cleanups(a);
    struct block *b = a->head;
    while (b) {
        struct block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}

void *lintel_arena_alloc(struct lintel_arena *a, size_t n)
{
    n = ALIGN(n ? n : 1);
    struct block *b = a->head;
    if (b->size - b->used < n) {
        /* Large requests get a block of their own behind the head so the head's free space
         * keeps serving small ones. */
        size_t size = n > a->next_size / 2 ? n : a->next_size;
        struct block *nb = block_new(size);
        if (!nb)
            return NULL;
        if (size == n) {
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            a->head = nb;
            if (a->next_size < (1u << 20))
                a->next_size *= 2;
        }
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    a->total += n;
    return p;
}

void *lintel_arena_calloc(struct lintel_arena *a, size_t n)
{
    void *p = lintel_arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

char *lintel_arena_strndup(struct lintel_arena *a, const char *s, size_t n)
{
    char *p = lintel_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

int lintel_arena_cleanup_add(struct lintel_arena *a, void (*fn)(void *), void *arg)
{
    struct cleanup *c = lintel_arena_alloc(a, sizeof(*c));
    if (!c)
        return -1;
    c->fn = fn;
    c->arg = arg;
    c->next = a->cleanups;
    a->cleanups = c;
    return 0;
}

size_t lintel_arena_used(const struct lintel_arena *a)
{
    return a->total;
}
