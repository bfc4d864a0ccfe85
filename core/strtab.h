/*
 * Interned strings: each distinct string is stored once and named by a
 * 32-bit index, so that snapshots refer to file, function and type names by
 * number and two frames compare by index within one snapshot. The table
 * owns the bytes; pointers it hands out stay valid until ld_strtab_finish().
 */
#ifndef LD_CORE_STRTAB_H
#define LD_CORE_STRTAB_H

#include <stddef.h>
#include <stdint.h>

#include "hashmap.h"

#define LD_NOSTR UINT32_MAX

struct ld_strtab {
	char **strs;
	uint32_t *lens;
	uint64_t *hashes;
	size_t n, cap;
	struct ld_hashmap index;
	struct ld_strtab_chunk *chunks; /* arena holding the bytes */
};

/* Sets up an empty table in caller memory; allocates nothing yet. */
void ld_strtab_init(struct ld_strtab *t);

/* Frees everything the table holds; t may be NULL. */
void ld_strtab_finish(struct ld_strtab *t);

/*
 * Stores a copy of the len bytes at s (which need not be NUL-terminated and
 * must not contain NUL) unless an equal string is already there, and sets
 * *idx to its index. Returns 0, -ENOMEM, or -E2BIG past 2^32-2 strings;
 * on error the table is unchanged.
 */
int ld_strtab_intern(struct ld_strtab *t, const char *s, size_t len, uint32_t *idx);

/*
 * Appends a copy of s as a new entry even if an equal one exists, keeping
 * indices in step with a table being read from a file. Same errors as
 * ld_strtab_intern().
 */
int ld_strtab_append(struct ld_strtab *t, const char *s, size_t len, uint32_t *idx);

/* The string at idx, or "" for LD_NOSTR or an index out of range. */
const char *ld_strtab_get(const struct ld_strtab *t, uint32_t idx);

/* The hash of the string at idx (for matching across tables); that of "" when out of range. */
uint64_t ld_strtab_hash(const struct ld_strtab *t, uint32_t idx);

#endif
