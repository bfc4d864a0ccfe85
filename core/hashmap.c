/* Open-addressing hash index with linear probing; see hashmap.h. */
#include "hashmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define EMPTY UINT32_MAX

void ld_hashmap_init(struct ld_hashmap *m)
{
	memset(m, 0, sizeof(*m));
}

void ld_hashmap_finish(struct ld_hashmap *m)
{
	if (!m)
		return;
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

static void place(struct ld_hashmap_slot *slots, size_t cap, uint64_t hash, uint32_t val)
{
	size_t pos = (size_t)hash & (cap - 1);
	while (slots[pos].val != EMPTY)
		pos = (pos + 1) & (cap - 1);
	slots[pos].hash = hash;
	slots[pos].val = val;
}

/* Rebuilds the map with cap slots (a power of two above twice its rows). */
static int resize(struct ld_hashmap *m, size_t cap)
{
	if (cap > SIZE_MAX / sizeof(struct ld_hashmap_slot))
		return -ENOMEM;
	struct ld_hashmap_slot *slots = malloc(cap * sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		slots[i].val = EMPTY;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].val != EMPTY)
			place(slots, cap, m->slots[i].hash, m->slots[i].val);
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return 0;
}

static int grow(struct ld_hashmap *m)
{
	return resize(m, m->cap ? m->cap * 2 : 64);
}

int ld_hashmap_reserve(struct ld_hashmap *m, size_t n)
{
	size_t cap = m->cap ? m->cap : 64;
	while (cap / 2 < n + 1) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	return cap == m->cap ? 0 : resize(m, cap);
}

int ld_hashmap_insert(struct ld_hashmap *m, uint64_t hash, uint32_t val)
{
	/* Keep the load factor under 1/2 so probe runs stay short. */
	if ((m->len + 1) * 2 > m->cap) {
		int r = grow(m);
		if (r < 0)
			return r;
	}
	place(m->slots, m->cap, hash, val);
	m->len++;
	return 0;
}

bool ld_hashmap_next(const struct ld_hashmap *m, struct ld_hashmap_iter *it, uint32_t *val)
{
	if (!m->cap)
		return false;
	size_t pos = it->started ? (it->pos + 1) & (m->cap - 1) : (size_t)it->hash & (m->cap - 1);
	it->started = true;
	for (; m->slots[pos].val != EMPTY; pos = (pos + 1) & (m->cap - 1)) {
		if (m->slots[pos].hash == it->hash) {
			it->pos = pos;
			*val = m->slots[pos].val;
			return true;
		}
	}
	it->pos = pos;
	return false;
}

uint64_t ld_hash_mix(uint64_t h, uint64_t v)
{
	/* splitmix64 finaliser over the combined value */
	uint64_t z = h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t ld_hash_bytes(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a offset basis */
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return ld_hash_mix(h, len);
}
