/* String interning with a bump arena; see strtab.h. */
#include "strtab.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_SIZE (64 * 1024)

struct ld_strtab_chunk {
	struct ld_strtab_chunk *next;
	size_t used, size;
	char data[];
};

void ld_strtab_init(struct ld_strtab *t)
{
	memset(t, 0, sizeof(*t));
	ld_hashmap_init(&t->index);
}

void ld_strtab_finish(struct ld_strtab *t)
{
	if (!t)
		return;
	struct ld_strtab_chunk *c = t->chunks;
	while (c) {
		struct ld_strtab_chunk *next = c->next;
		free(c);
		c = next;
	}
	free(t->strs);
	free(t->lens);
	free(t->hashes);
	ld_hashmap_finish(&t->index);
	memset(t, 0, sizeof(*t));
}

static char *arena_copy(struct ld_strtab *t, const char *s, size_t len)
{
	struct ld_strtab_chunk *c = t->chunks;
	if (!c || c->size - c->used < len + 1) {
		/* Long strings get a chunk of their own so the arena wastes little. */
		size_t size = len + 1 > CHUNK_SIZE ? len + 1 : CHUNK_SIZE;
		c = malloc(sizeof(*c) + size);
		if (!c)
			return NULL;
		c->size = size;
		c->used = 0;
		c->next = t->chunks;
		t->chunks = c;
	}
	char *p = c->data + c->used;
	memcpy(p, s, len);
	p[len] = '\0';
	c->used += len + 1;
	return p;
}

static int reserve(struct ld_strtab *t)
{
	if (t->n < t->cap)
		return 0;
	if (t->n >= UINT32_MAX - 1)
		return -E2BIG;
	size_t cap = t->cap ? t->cap * 2 : 256;
	char **strs = realloc(t->strs, cap * sizeof(*strs));
	if (!strs)
		return -ENOMEM;
	t->strs = strs;
	uint32_t *lens = realloc(t->lens, cap * sizeof(*lens));
	if (!lens)
		return -ENOMEM;
	t->lens = lens;
	uint64_t *hashes = realloc(t->hashes, cap * sizeof(*hashes));
	if (!hashes)
		return -ENOMEM;
	t->hashes = hashes;
	t->cap = cap;
	return 0;
}

/*
 * Adds a string; indexed says whether the index learns it (a copy of a
 * string already indexed stays out, see ld_strtab_append()).
 */
static int add(struct ld_strtab *t, const char *s, size_t len, uint64_t h, bool indexed, uint32_t *idx)
{
	if (len > UINT32_MAX)
		return -E2BIG;
	int r = reserve(t);
	if (r < 0)
		return r;
	char *copy = arena_copy(t, s, len);
	if (!copy)
		return -ENOMEM;
	uint32_t i = (uint32_t)t->n;
	r = indexed ? ld_hashmap_insert(&t->index, h, i) : 0;
	if (r < 0)
		return r; /* the arena copy is simply unused */
	t->strs[i] = copy;
	t->lens[i] = (uint32_t)len;
	t->hashes[i] = h;
	t->n++;
	*idx = i;
	return 0;
}

/* The indexed string equal to the len bytes at s, if any. */
static bool find(const struct ld_strtab *t, const char *s, size_t len, uint64_t h, uint32_t *idx)
{
	struct ld_hashmap_iter it = LD_HASHMAP_ITER(h);
	uint32_t i;
	while (ld_hashmap_next(&t->index, &it, &i)) {
		if (t->lens[i] == len && memcmp(t->strs[i], s, len) == 0) {
			*idx = i;
			return true;
		}
	}
	return false;
}

int ld_strtab_intern(struct ld_strtab *t, const char *s, size_t len, uint32_t *idx)
{
	uint64_t h = ld_hash_bytes(s, len);
	if (find(t, s, len, h, idx))
		return 0;
	return add(t, s, len, h, true, idx);
}

int ld_strtab_append(struct ld_strtab *t, const char *s, size_t len, uint32_t *idx)
{
	/*
	 * Only the first of equal strings goes into the index: interning
	 * finds that one anyway, and a file repeating one string a hundred
	 * thousand times would otherwise make one probe run that long, and
	 * reading it quadratic.
	 */
	uint64_t h = ld_hash_bytes(s, len);
	uint32_t first;
	return add(t, s, len, h, !find(t, s, len, h, &first), idx);
}

const char *ld_strtab_get(const struct ld_strtab *t, uint32_t idx)
{
	if (idx >= t->n)
		return "";
	return t->strs[idx];
}

uint64_t ld_strtab_hash(const struct ld_strtab *t, uint32_t idx)
{
	if (idx >= t->n)
		return ld_hash_bytes("", 0);
	return t->hashes[idx];
}
