/* Construction and destruction of the snapshot model; see snapshot.h. */
#include "snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"

const char *ld_hint_kind_name(enum ld_hint_kind k)
{
	switch (k) {
	case LD_HINT_CONTAINER:
		return "container";
	case LD_HINT_LRU_CACHE:
		return "lru_cache";
	case LD_HINT_GARBAGE:
		return "garbage";
	case LD_HINT_CYCLES:
		return "cycles";
	case LD_HINT_PATH:
		return "path";
	}
	return "unknown";
}

struct ld_snapshot *ld_snapshot_create(void)
{
	struct ld_snapshot *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	ld_strtab_init(&s->strings);
	s->meta.pid = s->meta.seq = s->meta.depth = s->meta.sample = -1;
	s->meta.tracing = -1;
	s->meta.elapsed_ms = -1;
	s->meta.attached = -1;
	s->gc.enabled = -1;
	return s;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void ld_snapshot_destroy(struct ld_snapshot *s)
{
	if (!s)
		return;
	struct ld_meta *m = &s->meta;
	free(m->runtime);
	free(m->agent);
	free(m->executable);
	free(m->label);
	free(m->trigger);
	free(m->time);
	free(m->host);
	free(m->python);
	free(m->tracer);
	free_list(m->command, m->ncommand);
	free_list(m->roots, m->nroots);
	free_list(m->stdlib, m->nstdlib);
	ld_strtab_finish(&s->strings);
	free(s->frames);
	free(s->pool);
	free(s->sites);
	free(s->types);
	free(s->type_sites);
	free(s->hints);
	free(s);
}

int ld_snapshot_add_frame(struct ld_snapshot *s, const struct ld_frame *f, uint32_t *idx)
{
	if (s->nframes >= UINT32_MAX - 1)
		return -E2BIG;
	if (LD_ARRAY_RESERVE(s->frames, s->frames_cap, s->nframes + 1) < 0)
		return -ENOMEM;
	*idx = (uint32_t)s->nframes;
	s->frames[s->nframes++] = *f;
	return 0;
}

/* Copies n indices into the pool and returns where they start. */
static int pool_add(struct ld_snapshot *s, const uint32_t *v, uint32_t n, uint32_t *at)
{
	if (s->npool + n > UINT32_MAX)
		return -E2BIG;
	if (LD_ARRAY_RESERVE(s->pool, s->pool_cap, s->npool + n) < 0)
		return -ENOMEM;
	if (n)
		memcpy(s->pool + s->npool, v, n * sizeof(*v));
	*at = (uint32_t)s->npool;
	s->npool += n;
	return 0;
}

int ld_snapshot_add_site(struct ld_snapshot *s, uint64_t count, uint64_t bytes,
			 const uint32_t *frames, uint32_t depth)
{
	if (LD_ARRAY_RESERVE(s->sites, s->sites_cap, s->nsites + 1) < 0)
		return -ENOMEM;
	uint32_t at;
	int r = pool_add(s, frames, depth, &at);
	if (r < 0)
		return r;
	s->sites[s->nsites++] = (struct ld_site){ .count = count, .bytes = bytes, .stack = at, .depth = depth };
	return 0;
}

int ld_snapshot_add_type(struct ld_snapshot *s, uint32_t name, uint64_t count, uint64_t bytes)
{
	if (LD_ARRAY_RESERVE(s->types, s->types_cap, s->ntypes + 1) < 0)
		return -ENOMEM;
	s->types[s->ntypes++] = (struct ld_type){ .name = name, .count = count, .bytes = bytes, .origin = LD_NOSTR };
	return 0;
}

int ld_snapshot_add_type_site(struct ld_snapshot *s, uint32_t type, uint64_t count,
			      uint64_t bytes, const uint32_t *frames, uint32_t depth)
{
	if (LD_ARRAY_RESERVE(s->type_sites, s->type_sites_cap, s->ntype_sites + 1) < 0)
		return -ENOMEM;
	uint32_t at;
	int r = pool_add(s, frames, depth, &at);
	if (r < 0)
		return r;
	s->type_sites[s->ntype_sites++] = (struct ld_type_site){
		.type = type, .count = count, .bytes = bytes, .stack = at, .depth = depth };
	return 0;
}

int ld_snapshot_add_hint(struct ld_snapshot *s, const struct ld_hint *h,
			 const uint32_t *path, uint32_t path_len)
{
	if (LD_ARRAY_RESERVE(s->hints, s->hints_cap, s->nhints + 1) < 0)
		return -ENOMEM;
	struct ld_hint copy = *h;
	int r = pool_add(s, path, path_len, &copy.path);
	if (r < 0)
		return r;
	copy.path_len = path_len;
	s->hints[s->nhints++] = copy;
	return 0;
}

int ld_meta_set(char **field, const char *value)
{
	char *copy = NULL;
	if (value && !(copy = strdup(value)))
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

int ld_meta_set_list(char ***list, size_t *nlist, char *const *v, size_t n)
{
	char **copy = calloc(n ? n : 1, sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!(copy[i] = strdup(v[i]))) {
			free_list(copy, i);
			return -ENOMEM;
		}
	}
	free_list(*list, *nlist);
	*list = copy;
	*nlist = n;
	return 0;
}
