/*
 * Trends over several snapshots (see ld_diff_trend in diff.h). Rows of the
 * consecutive diffs are identified by content: a type by its name, a site
 * by its frames (normalised file, line and function), a type's site by
 * both. Names are interned into ids shared by every snapshot, once per
 * string of each snapshot, so a row's key is a short run of integers and
 * a million rows cost no string building.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "diff.h"
#include "hashmap.h"
#include "strtab.h"

/* First words of a key; name ids stay below both (see ld_strtab_intern). */
#define KEY_SITE UINT32_MAX
#define KEY_TYPE (UINT32_MAX - 1)

/* One snapshot's strings as name ids, filled on first use (0: not yet, else id + 1). */
struct snap_ids {
	const struct ld_snapshot *s;
	uint32_t *file; /* id of the normalised file name */
	uint32_t *name; /* id of the string as it is */
};

struct key {
	size_t at;      /* in pool */
	uint32_t len;   /* words */
	uint32_t count; /* intervals the row grew in */
};

struct counter {
	const struct ld_diff_opts *opts;
	struct ld_strtab names;
	struct snap_ids *snaps;
	size_t nsnaps, snaps_cap;
	uint32_t *pool;
	size_t npool, pool_cap;
	struct key *keys;
	size_t n, cap;
	struct ld_hashmap index;
	uint32_t *scratch;
	size_t scratch_cap;
};

static void counter_finish(struct counter *c)
{
	for (size_t i = 0; i < c->nsnaps; i++) {
		free(c->snaps[i].file);
		free(c->snaps[i].name);
	}
	free(c->snaps);
	free(c->pool);
	free(c->keys);
	free(c->scratch);
	ld_hashmap_finish(&c->index);
	ld_strtab_finish(&c->names);
}

static struct snap_ids *ids_of(struct counter *c, const struct ld_snapshot *s)
{
	for (size_t i = 0; i < c->nsnaps; i++)
		if (c->snaps[i].s == s)
			return &c->snaps[i];
	if (LD_ARRAY_RESERVE(c->snaps, c->snaps_cap, c->nsnaps + 1) < 0)
		return NULL;
	size_t n = s->strings.n + 1;
	struct snap_ids *si = &c->snaps[c->nsnaps];
	si->s = s;
	si->file = calloc(n, sizeof(*si->file));
	si->name = calloc(n, sizeof(*si->name));
	if (!si->file || !si->name) {
		free(si->file);
		free(si->name);
		return NULL;
	}
	c->nsnaps++;
	return si;
}

static int intern(struct counter *c, const char *s, uint32_t *id)
{
	return ld_strtab_intern(&c->names, s, strlen(s), id);
}

/* Name id of string idx of a snapshot; strings out of range share one slot, as they read as "". */
static int name_id(struct counter *c, struct snap_ids *si, uint32_t idx, bool file, uint32_t *id)
{
	size_t slot = idx < si->s->strings.n ? idx : si->s->strings.n;
	uint32_t *memo = file ? &si->file[slot] : &si->name[slot];
	if (!*memo) {
		const char *raw = ld_snapshot_str(si->s, idx);
		char buf[4096];
		uint32_t v;
		int r = intern(c, file ? ld_diff_normal_path(si->s, c->opts, raw, buf, sizeof(buf)) : raw, &v);
		if (r < 0)
			return r;
		*memo = v + 1;
	}
	*id = *memo - 1;
	return 0;
}

/* Builds in c->scratch the key of a stack under `first`; its length goes to *len. */
static int stack_key(struct counter *c, uint32_t first, const struct ld_diff_stack *st, uint32_t *len)
{
	size_t need = 1 + (size_t)st->depth * 3;
	if (LD_ARRAY_RESERVE(c->scratch, c->scratch_cap, need) < 0)
		return -ENOMEM;
	struct snap_ids *si = ids_of(c, st->snap);
	if (!si)
		return -ENOMEM;
	uint32_t *k = c->scratch;
	k[0] = first;
	for (uint32_t i = 0; i < st->depth; i++) {
		const struct ld_frame *f = ld_diff_frame(st, i);
		int r = name_id(c, si, f->file, true, &k[1 + 3 * i]);
		if (r == 0)
			r = name_id(c, si, f->function, false, &k[3 + 3 * i]);
		if (r < 0)
			return r;
		k[2 + 3 * i] = (uint32_t)f->line;
	}
	*len = (uint32_t)need;
	return 0;
}

/* The counter of the key in c->scratch[0..len): added when insert, else NULL when absent. */
static int slot(struct counter *c, uint32_t len, bool insert, uint32_t **out)
{
	uint64_t h = ld_hash_bytes(c->scratch, len * sizeof(*c->scratch));
	struct ld_hashmap_iter it = LD_HASHMAP_ITER(h);
	uint32_t i;
	*out = NULL;
	while (ld_hashmap_next(&c->index, &it, &i)) {
		if (c->keys[i].len == len && memcmp(c->pool + c->keys[i].at, c->scratch, len * sizeof(*c->pool)) == 0) {
			*out = &c->keys[i].count;
			return 0;
		}
	}
	if (!insert)
		return 0;
	if (c->n >= UINT32_MAX)
		return -E2BIG;
	if (LD_ARRAY_RESERVE(c->pool, c->pool_cap, c->npool + len) < 0 ||
	    LD_ARRAY_RESERVE(c->keys, c->cap, c->n + 1) < 0 || ld_hashmap_insert(&c->index, h, (uint32_t)c->n) < 0)
		return -ENOMEM;
	memcpy(c->pool + c->npool, c->scratch, len * sizeof(*c->pool));
	c->keys[c->n] = (struct key){ .at = c->npool, .len = len, .count = 0 };
	c->npool += len;
	*out = &c->keys[c->n++].count;
	return 0;
}

/* Key of a type row: its name. */
static int type_key(struct counter *c, const char *name, uint32_t *len)
{
	if (LD_ARRAY_RESERVE(c->scratch, c->scratch_cap, 2) < 0)
		return -ENOMEM;
	c->scratch[0] = KEY_TYPE;
	*len = 2;
	return intern(c, name, &c->scratch[1]);
}

/* Adds one to the row's counter (insert), or reads it into *n. */
static int visit(struct counter *c, uint32_t len, bool insert, uint32_t *n)
{
	uint32_t *p;
	int r = slot(c, len, insert, &p);
	if (r < 0)
		return r;
	if (insert)
		(*p)++;
	else
		*n = p ? *p : 0;
	return 0;
}

static int visit_stack(struct counter *c, uint32_t first, const struct ld_diff_stack *st, bool insert,
		       uint32_t *n)
{
	uint32_t len;
	int r = stack_key(c, first, st, &len);
	return r < 0 ? r : visit(c, len, insert, n);
}

static bool grew(const struct ld_diff_row *r)
{
	return ld_diff_bytes_delta(r) > 0 || ld_diff_count_delta(r) > 0;
}

/* Counts one interval's growing rows; returns 0 or a negative errno. */
static int count_interval(struct counter *c, const struct ld_diff *di)
{
	int r = 0;
	for (size_t i = 0; r == 0 && i < di->nsites; i++)
		if (grew(&di->sites[i].row))
			r = visit_stack(c, KEY_SITE, &di->sites[i].stack, true, NULL);
	for (size_t i = 0; r == 0 && i < di->ntypes; i++) {
		const struct ld_diff_type *t = &di->types[i];
		uint32_t len, tid;
		if ((r = type_key(c, t->name, &len)) < 0)
			break;
		tid = c->scratch[1];
		if (grew(&t->row))
			r = visit(c, len, true, NULL);
		for (size_t j = 0; r == 0 && j < t->nsites; j++)
			if (grew(&t->sites[j].row))
				r = visit_stack(c, tid, &t->sites[j].stack, true, NULL);
	}
	return r;
}

int ld_diff_trend(struct ld_diff *d, const struct ld_snapshot *const *snaps, size_t n,
		  const struct ld_diff_opts *opts)
{
	struct counter c = { .opts = opts };
	ld_hashmap_init(&c.index);
	ld_strtab_init(&c.names);
	int r = 0;
	for (size_t i = 0; i + 1 < n && r == 0; i++) {
		struct ld_diff *di = NULL;
		r = ld_diff_create(snaps[i], snaps[i + 1], opts, &di);
		if (r == 0)
			r = count_interval(&c, di);
		ld_diff_destroy(di);
	}
	/* Count into scratch arrays first so a failure leaves d as it was. */
	size_t nts = d->ntype_sites;
	uint32_t *site_n = calloc(d->nsites + 1, sizeof(*site_n));
	uint32_t *type_n = calloc(d->ntypes + 1, sizeof(*type_n));
	uint32_t *ts_n = calloc(nts + 1, sizeof(*ts_n));
	if (r == 0 && (!site_n || !type_n || !ts_n))
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < d->nsites; i++)
		r = visit_stack(&c, KEY_SITE, &d->sites[i].stack, false, &site_n[i]);
	for (size_t i = 0; r == 0 && i < d->ntypes; i++) {
		struct ld_diff_type *t = &d->types[i];
		uint32_t len;
		if ((r = type_key(&c, t->name, &len)) < 0 || (r = visit(&c, len, false, &type_n[i])) < 0)
			break;
		uint32_t tid = c.scratch[1];
		for (size_t j = 0; r == 0 && j < t->nsites; j++)
			r = visit_stack(&c, tid, &t->sites[j].stack, false, &ts_n[&t->sites[j] - d->type_sites]);
	}
	if (r == 0) {
		for (size_t i = 0; i < d->nsites; i++)
			d->sites[i].grew_in = site_n[i];
		for (size_t i = 0; i < d->ntypes; i++)
			d->types[i].grew_in = type_n[i];
		for (size_t i = 0; i < nts; i++)
			d->type_sites[i].grew_in = ts_n[i];
		d->intervals = n > 1 ? (uint32_t)(n - 1) : 1;
	}
	free(site_n);
	free(type_n);
	free(ts_n);
	counter_finish(&c);
	return r;
}
