/*
 * Trends over several snapshots (see ld_diff_trend in diff.h). Rows of the
 * consecutive diffs are identified by content: a type by its name, a site
 * by its frames (normalised file, line and function), a type's site by
 * both. One keyer (keyer.h) over every snapshot gives each name an id
 * shared by all of them, so a row's key is a short run of integers and
 * a million rows cost no string building. Only rows that moved in some
 * interval get a key, with its growth count, mask and byte change per
 * step; the steps array becomes the diff's when the trend succeeds.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "diff.h"
#include "hashmap.h"
#include "keyer.h"

/* First words of a key; name ids stay below both (see struct ld_keyer_ids). */
#define KEY_SITE UINT32_MAX
#define KEY_TYPE (UINT32_MAX - 1)

struct key {
	size_t at;      /* in pool */
	uint32_t len;   /* words */
	uint32_t count; /* intervals the row grew in */
	uint64_t mask;  /* which of the first 64 */
	uint32_t last;  /* 1 + the interval last counted in count, so a key counts once per interval */
};

struct counter {
	struct ld_keyer keyer;
	uint32_t *pool;
	size_t npool, pool_cap;
	struct key *keys;
	size_t n, cap;
	/* nsteps byte changes per key, keys[i]'s at steps[i * nsteps]; handed to the diff */
	int64_t *steps;
	size_t steps_cap;
	uint32_t nsteps;
	struct ld_hashmap index;
	uint32_t *scratch;
	size_t scratch_cap;
	uint32_t interval; /* the one being counted */
};

static void counter_finish(struct counter *c)
{
	free(c->pool);
	free(c->keys);
	free(c->steps);
	free(c->scratch);
	ld_hashmap_finish(&c->index);
	ld_keyer_finish(&c->keyer);
}

/* Builds in c->scratch the key of a stack under `first`; its length goes to *len. */
static int stack_key(struct counter *c, uint32_t first, const struct ld_diff_stack *st, uint32_t *len)
{
	size_t need = 1 + (size_t)st->depth * 3;
	if (LD_ARRAY_RESERVE(c->scratch, c->scratch_cap, need) < 0)
		return -ENOMEM;
	const struct ld_keyer_side *sd = ld_keyer_side(&c->keyer, st->snap);
	uint32_t *k = c->scratch;
	k[0] = first;
	for (uint32_t i = 0; i < st->depth; i++) {
		const struct ld_fkey *f = &sd->key[st->frames[i]];
		k[1 + 3 * i] = f->file;
		k[2 + 3 * i] = (uint32_t)f->line;
		k[3 + 3 * i] = f->function;
	}
	*len = (uint32_t)need;
	return 0;
}

/* The row of the key in c->scratch[0..len): added when insert, else NULL when absent. */
static int slot(struct counter *c, uint32_t len, bool insert, struct key **out)
{
	uint64_t h = ld_hash_bytes(c->scratch, len * sizeof(*c->scratch));
	struct ld_hashmap_iter it = LD_HASHMAP_ITER(h);
	uint32_t i;
	*out = NULL;
	while (ld_hashmap_next(&c->index, &it, &i)) {
		if (c->keys[i].len == len && memcmp(c->pool + c->keys[i].at, c->scratch, len * sizeof(*c->pool)) == 0) {
			*out = &c->keys[i];
			return 0;
		}
	}
	if (!insert)
		return 0;
	if (c->n >= UINT32_MAX)
		return -E2BIG;
	size_t nsteps = (c->n + 1) * c->nsteps;
	if (LD_ARRAY_RESERVE(c->pool, c->pool_cap, c->npool + len) < 0 ||
	    LD_ARRAY_RESERVE(c->keys, c->cap, c->n + 1) < 0 || LD_ARRAY_RESERVE(c->steps, c->steps_cap, nsteps) < 0 ||
	    ld_hashmap_insert(&c->index, h, (uint32_t)c->n) < 0)
		return -ENOMEM;
	memcpy(c->pool + c->npool, c->scratch, len * sizeof(*c->pool));
	if (c->nsteps)
		memset(c->steps + c->n * c->nsteps, 0, c->nsteps * sizeof(*c->steps));
	c->keys[c->n] = (struct key){ .at = c->npool, .len = len };
	c->npool += len;
	*out = &c->keys[c->n++];
	return 0;
}

/* Key of a type row: its name. */
static int type_key(struct counter *c, const char *name, uint32_t *len)
{
	if (LD_ARRAY_RESERVE(c->scratch, c->scratch_cap, 2) < 0)
		return -ENOMEM;
	c->scratch[0] = KEY_TYPE;
	*len = 2;
	return ld_keyer_intern(&c->keyer, name, strlen(name), &c->scratch[1]);
}

/* No key: the row never changed in an interval (see struct counter's steps). */
#define NO_KEY UINT32_MAX

/*
 * Counts the current interval for the changed row r (insert), or stores in
 * *at the index of the row's key, NO_KEY when absent.
 */
static int visit(struct counter *c, uint32_t len, const struct ld_diff_row *r, uint32_t *at)
{
	struct key *k;
	int e = slot(c, len, r != NULL, &k);
	if (e < 0)
		return e;
	if (!r) {
		*at = k ? (uint32_t)(k - c->keys) : NO_KEY;
		return 0;
	}
	if (c->interval < c->nsteps)
		c->steps[(size_t)(k - c->keys) * c->nsteps + c->interval] += ld_diff_bytes_delta(r);
	/* Two rows of one interval can share a key (see diff.c's folding); count the key once. */
	if ((ld_diff_bytes_delta(r) > 0 || ld_diff_count_delta(r) > 0) && k->last != c->interval + 1) {
		k->last = c->interval + 1;
		k->count++;
		if (c->interval < 64)
			k->mask |= UINT64_C(1) << c->interval;
	}
	return 0;
}

static int visit_stack(struct counter *c, uint32_t first, const struct ld_diff_stack *st,
		       const struct ld_diff_row *r, uint32_t *at)
{
	uint32_t len;
	int e = stack_key(c, first, st, &len);
	return e < 0 ? e : visit(c, len, r, at);
}

/*
 * Only rows that grew or whose bytes moved get a key: in a long-running
 * program most rows stay put between two snapshots, and those need neither
 * a count nor a step.
 */
static bool moved(const struct ld_diff_row *r)
{
	return ld_diff_bytes_delta(r) != 0 || ld_diff_count_delta(r) > 0;
}

/* Counts one interval's growing rows and their steps; returns 0 or a negative errno. */
static int count_interval(struct counter *c, const struct ld_diff *di)
{
	int r = 0;
	for (size_t i = 0; r == 0 && i < di->nsites; i++)
		if (moved(&di->sites[i].row))
			r = visit_stack(c, KEY_SITE, &di->sites[i].stack, &di->sites[i].row, NULL);
	for (size_t i = 0; r == 0 && i < di->ntypes; i++) {
		const struct ld_diff_type *t = &di->types[i];
		uint32_t len, tid;
		if ((r = type_key(c, t->name, &len)) < 0)
			break;
		tid = c->scratch[1];
		if (moved(&t->row))
			r = visit(c, len, &t->row, NULL);
		for (size_t j = 0; r == 0 && j < t->nsites; j++)
			if (moved(&t->sites[j].row))
				r = visit_stack(c, tid, &t->sites[j].stack, &t->sites[j].row, NULL);
	}
	return r;
}

/* Sets a row's trend from its key (NO_KEY: it never grew nor moved). */
static void apply(const struct counter *c, uint32_t at, const int64_t *steps, uint32_t *grew_in,
		  uint64_t *grew_mask, const int64_t **row_steps)
{
	const struct key *k = at == NO_KEY ? NULL : &c->keys[at];
	*grew_in = k ? k->count : 0;
	*grew_mask = k ? k->mask : 0;
	/* The block past the last key's stays zero for rows without one. */
	*row_steps = steps ? steps + (size_t)(k ? at : c->n) * c->nsteps : NULL;
}

int ld_diff_trend(struct ld_diff *d, const struct ld_snapshot *const *snaps, size_t n,
		  const struct ld_diff_opts *opts)
{
	static const struct ld_diff_opts defaults = { 0 };
	struct counter c = { 0 };
	c.nsteps = n > 1 ? (uint32_t)(n - 1 < 64 ? n - 1 : 64) : 0;
	ld_hashmap_init(&c.index);
	/* d's own rows borrow its two snapshots, normally snaps[0] and snaps[n - 1]. */
	const struct ld_snapshot **all = malloc((n + 2) * sizeof(*all));
	int r = all ? 0 : -ENOMEM;
	if (all) {
		all[0] = d->after;
		all[1] = d->before;
		memcpy(all + 2, snaps, n * sizeof(*all));
		r = ld_keyer_init(&c.keyer, all, n + 2, opts ? opts : &defaults, 0);
		free(all);
	}
	for (size_t i = 0; i + 1 < n && r == 0; i++) {
		struct ld_diff *di = NULL;
		r = ld_diff_create(snaps[i], snaps[i + 1], opts, &di);
		c.interval = (uint32_t)i;
		if (r == 0)
			r = count_interval(&c, di);
		ld_diff_destroy(di);
	}
	/* Look every row up into scratch arrays first so a failure leaves d as it was. */
	size_t nts = d->ntype_sites;
	uint32_t *site_k = malloc((d->nsites + 1) * sizeof(*site_k));
	uint32_t *type_k = malloc((d->ntypes + 1) * sizeof(*type_k));
	uint32_t *ts_k = malloc((nts + 1) * sizeof(*ts_k));
	if (r == 0 && (!site_k || !type_k || !ts_k))
		r = -ENOMEM;
	/* One zero block more, for the rows without a key. */
	if (r == 0 && c.nsteps && LD_ARRAY_RESERVE(c.steps, c.steps_cap, (c.n + 1) * c.nsteps) < 0)
		r = -ENOMEM;
	if (r == 0 && c.nsteps)
		memset(c.steps + c.n * c.nsteps, 0, c.nsteps * sizeof(*c.steps));
	for (size_t i = 0; r == 0 && i < d->nsites; i++)
		r = visit_stack(&c, KEY_SITE, &d->sites[i].stack, NULL, &site_k[i]);
	for (size_t i = 0; r == 0 && i < d->ntypes; i++) {
		struct ld_diff_type *t = &d->types[i];
		uint32_t len;
		if ((r = type_key(&c, t->name, &len)) < 0 || (r = visit(&c, len, NULL, &type_k[i])) < 0)
			break;
		uint32_t tid = c.scratch[1];
		for (size_t j = 0; r == 0 && j < t->nsites; j++) {
			size_t at = (size_t)(&t->sites[j] - d->type_sites);
			r = visit_stack(&c, tid, &t->sites[j].stack, NULL, &ts_k[at]);
		}
	}
	if (r == 0) {
		int64_t *steps = c.nsteps ? c.steps : NULL;
		for (size_t i = 0; i < d->nsites; i++)
			apply(&c, site_k[i], steps, &d->sites[i].grew_in, &d->sites[i].grew_mask, &d->sites[i].steps);
		for (size_t i = 0; i < d->ntypes; i++)
			apply(&c, type_k[i], steps, &d->types[i].grew_in, &d->types[i].grew_mask, &d->types[i].steps);
		for (size_t i = 0; i < nts; i++)
			apply(&c, ts_k[i], steps, &d->type_sites[i].grew_in, &d->type_sites[i].grew_mask,
			      &d->type_sites[i].steps);
		d->intervals = n > 1 ? (uint32_t)(n - 1) : 1;
		free(d->steps);
		d->steps = steps;
		d->nsteps = c.nsteps;
		if (steps)
			c.steps = NULL; /* now d's */
	}
	free(site_k);
	free(type_k);
	free(ts_k);
	counter_finish(&c);
	return r;
}
