/*
 * An open-addressing index from 64-bit hashes to 32-bit row numbers. It does
 * not know what the rows are: callers hash their keys, walk the candidates
 * that share a hash and compare keys themselves. Used for string interning,
 * and for matching types and sites between snapshots.
 */
#ifndef LD_CORE_HASHMAP_H
#define LD_CORE_HASHMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A hash and its row side by side, so that a probe touches one cache line. */
struct ld_hashmap_slot {
	uint64_t hash;
	uint32_t val; /* UINT32_MAX marks an empty slot */
};

struct ld_hashmap {
	struct ld_hashmap_slot *slots;
	size_t cap; /* a power of two, or 0 */
	size_t len;
};

/* Cursor for ld_hashmap_next(); start it with LD_HASHMAP_ITER(hash). */
struct ld_hashmap_iter {
	uint64_t hash;
	size_t pos;
	bool started;
};
#define LD_HASHMAP_ITER(h) ((struct ld_hashmap_iter){ .hash = (h) })

/* Sets up an empty map in caller memory; never fails (no allocation yet). */
void ld_hashmap_init(struct ld_hashmap *m);

/* Frees the map's arrays; m may be NULL. The map is empty afterwards. */
void ld_hashmap_finish(struct ld_hashmap *m);

/*
 * Adds hash -> val (val must not be UINT32_MAX). Duplicates are allowed;
 * the caller decides whether a key already exists. Returns 0 or -ENOMEM,
 * in which case the map is unchanged.
 */
int ld_hashmap_insert(struct ld_hashmap *m, uint64_t hash, uint32_t val);

/*
 * Makes room for n rows in all, so that inserting them rebuilds nothing (a
 * large index rebuilt as it grows pays for every row again, at random
 * places in memory). Returns 0 or -ENOMEM, leaving the map as it was.
 */
int ld_hashmap_reserve(struct ld_hashmap *m, size_t n);

/*
 * Stores in *val the next row whose hash equals it->hash and returns true,
 * or returns false when there are no more.
 */
bool ld_hashmap_next(const struct ld_hashmap *m, struct ld_hashmap_iter *it, uint32_t *val);

/*
 * Asks the processor to start fetching the slot where a lookup of hash
 * would begin: a caller that knows its next keys ahead of time can hide
 * the cache miss of a large map. Only a hint; never fails.
 */
static inline void ld_hashmap_prefetch(const struct ld_hashmap *m, uint64_t hash)
{
#if defined(__GNUC__)
	if (m->cap)
		__builtin_prefetch(&m->slots[(size_t)hash & (m->cap - 1)]);
#else
	(void)m;
	(void)hash;
#endif
}

/*
 * The row in the slot where a lookup of hash begins, if that slot holds
 * hash, else UINT32_MAX: a cheap guess at a lookup's first candidate, for
 * prefetching what the caller will compare it with.
 */
static inline uint32_t ld_hashmap_peek(const struct ld_hashmap *m, uint64_t hash)
{
	if (!m->cap)
		return UINT32_MAX;
	const struct ld_hashmap_slot *s = &m->slots[(size_t)hash & (m->cap - 1)];
	/* An empty slot's hash was never written: look at it only in a full one. */
	return s->val != UINT32_MAX && s->hash == hash ? s->val : UINT32_MAX;
}

/* Hashes len bytes, and mixes values into a running hash. */
uint64_t ld_hash_bytes(const void *data, size_t len);
uint64_t ld_hash_mix(uint64_t h, uint64_t v);

#endif
