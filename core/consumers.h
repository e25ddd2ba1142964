/* Consumers and secrets as plugins see them (host API consumer_at and secret). Pure functions
 * over the YAML tree, shared by the gateway and the SDK test kit so both behave the same. */
#ifndef LINTEL_CONSUMERS_H
#define LINTEL_CONSUMERS_H

#include <stddef.h>

#include <lintel/plugin.h>

#include "ynode.h"

/* Fills out (up to out->struct_size) with consumer i of list, a consumers list whose entries
 * have a name (the core checks that at load). 0, or -1 past the end or on bad arguments. */
int lintel_consumer_read(const struct lintel_ynode *list, size_t i, struct lintel_consumer *out);

/* Resolves a secret: "env:NAME", "file:PATH" (at most 64 KiB; one trailing newline dropped) or
 * the literal text. Copies at most cap bytes to buf and returns the full length, or -1 (absent
 * variable, unreadable or oversized file). */
long lintel_secret_resolve(const char *spec, char *buf, size_t cap);

#endif
