/*
 * Snapshot comparison: the orchestration of a diff, and its type and hint
 * tables. Each table of both snapshots is folded into keyed rows through a
 * hash index: the later snapshot first, so rows present in both borrow its
 * names and frames, then the earlier one. Keys compare by string content,
 * since the two snapshots have separate string tables; for tracebacks,
 * which a large diff has millions of, the keyer (keyer.h) first interns
 * every name into ids shared by both snapshots so that content compares as
 * integers. Graded matching is in match.c, the site sort in sort.c and
 * file name normalisation in paths.c.
 */
#include "diff.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "frames.h"
#include "hashmap.h"
#include "keyer.h"
#include "match.h"
#include "sort.h"

const char *ld_diff_state_name(enum ld_diff_state s)
{
	switch (s) {
	case LD_DIFF_NEW:
		return "new";
	case LD_DIFF_GONE:
		return "gone";
	default:
		return "kept";
	}
}

/* ---- rows ---- */

static void row_add(struct ld_diff_row *r, bool after, uint64_t count, uint64_t bytes)
{
	if (after) {
		r->count_after += count;
		r->bytes_after += bytes;
	} else {
		r->count_before += count;
		r->bytes_before += bytes;
	}
}

static enum ld_diff_state merge_state(enum ld_diff_state cur, bool fresh, bool after)
{
	if (fresh)
		return after ? LD_DIFF_NEW : LD_DIFF_GONE;
	/* An existing row met again from the earlier snapshot is in both. */
	return (!after && cur == LD_DIFF_NEW) ? LD_DIFF_KEPT : cur;
}

/* ---- sites ---- */

struct site_table {
	struct ld_diff_site *rows;
	size_t n, cap;
	struct ld_hashmap index;
};

/* The traceback of a site as the diff compares it: at most max_depth frames (0: all). */
static struct ld_diff_stack site_stack(const struct ld_snapshot *s, const uint32_t *frames, uint32_t depth,
				       uint32_t max_depth)
{
	return (struct ld_diff_stack){ s, frames, max_depth && depth > max_depth ? max_depth : depth };
}

/*
 * Adds a site (traceback st, whose ld_keyer_stack_hash() mixed with
 * extra_hash is h) to the row it equals, or to a new row.
 */
static int site_fold_hashed(struct site_table *t, const struct ld_keyer *k, bool after, struct ld_diff_stack st,
			    uint64_t h, uint64_t count, uint64_t bytes, const char *extra_key,
			    const char **row_keys, size_t *row)
{
	struct ld_hashmap_iter it = LD_HASHMAP_ITER(h);
	uint32_t i, found = LD_KEYER_NOID;
	/*
	 * Where "no source text" meets two texts, a traceback can equal two
	 * rows: it joins the older, whatever order the index holds them in.
	 */
	while (ld_hashmap_next(&t->index, &it, &i)) {
		if (i < found && (!row_keys || strcmp(row_keys[i], extra_key) == 0) &&
		    ld_keyer_stack_equal(k, &t->rows[i].stack, &st))
			found = i;
	}
	if (found != LD_KEYER_NOID) {
		row_add(&t->rows[found].row, after, count, bytes);
		t->rows[found].state = merge_state(t->rows[found].state, false, after);
		*row = found;
		return 0;
	}
	if (t->n >= UINT32_MAX - 1)
		return -E2BIG;
	if (LD_ARRAY_RESERVE(t->rows, t->cap, t->n + 1) < 0)
		return -ENOMEM;
	int r = ld_hashmap_insert(&t->index, h, (uint32_t)t->n);
	if (r < 0)
		return r;
	struct ld_diff_site *d = &t->rows[t->n];
	memset(d, 0, sizeof(*d));
	d->stack = st;
	d->match = k->rung;
	d->state = merge_state(LD_DIFF_KEPT, true, after);
	row_add(&d->row, after, count, bytes);
	*row = t->n++;
	return 0;
}

static int site_fold(struct site_table *t, const struct ld_keyer *k, const struct ld_snapshot *s, bool after,
		     const uint32_t *frames, uint32_t depth, uint32_t max_depth,
		     uint64_t count, uint64_t bytes, uint64_t extra_hash,
		     const char *extra_key, const char **row_keys, size_t *row)
{
	struct ld_diff_stack st = site_stack(s, frames, depth, max_depth);
	uint64_t h = ld_hash_mix(ld_keyer_stack_hash(k, &st), extra_hash);
	return site_fold_hashed(t, k, after, st, h, count, bytes, extra_key, row_keys, row);
}

static int diff_sites(struct ld_diff *d, struct ld_keyer *k, uint32_t max_depth)
{
	struct site_table t = { 0 };
	ld_hashmap_init(&t.index);
	int r = 0;
	const struct ld_snapshot *snaps[2] = { d->after, d->before };
	/*
	 * A large diff spends its time waiting for memory: each site probes
	 * a big index at a random place, then reads the row it finds and
	 * that row's traceback. The loop works on sites some way ahead in
	 * stages so that each of those reads is under way before it is
	 * needed: hash and fetch the slot, then fetch the row in it, then
	 * the row's frames, then fold.
	 */
	/*
	 * Every site of the later snapshot may be a row of its own. Only a
	 * saving: without the memory, the index grows as it goes.
	 */
	(void)ld_hashmap_reserve(&t.index, d->after->nsites);
	enum { AHEAD = 16, ROW_AT = 8, FRAMES_AT = 4 };
	struct {
		uint64_t hash;
		uint32_t row;
	} ahead[AHEAD];
	for (int j = 0; j < 2 && r == 0; j++) {
		const struct ld_snapshot *s = snaps[j];
		for (size_t i = 0; i < s->nsites + AHEAD && r == 0; i++) {
			if (i >= AHEAD) {
				size_t at = i - AHEAD, row;
				const struct ld_site *site = &s->sites[at];
				struct ld_diff_stack st = site_stack(s, ld_snapshot_stack(s, site->stack), site->depth,
								     max_depth);
				r = site_fold_hashed(&t, k, j == 0, st, ahead[at % AHEAD].hash, site->count,
						     site->bytes, NULL, NULL, &row);
			}
#if defined(__GNUC__)
			if (i >= FRAMES_AT && i - FRAMES_AT < s->nsites) {
				uint32_t row = ahead[(i - FRAMES_AT) % AHEAD].row;
				if (row < t.n)
					__builtin_prefetch(t.rows[row].stack.frames);
			}
			if (i >= ROW_AT && i - ROW_AT < s->nsites) {
				uint32_t row = ld_hashmap_peek(&t.index, ahead[(i - ROW_AT) % AHEAD].hash);
				ahead[(i - ROW_AT) % AHEAD].row = row;
				if (row < t.n)
					__builtin_prefetch(&t.rows[row]);
			}
#endif
			if (i < s->nsites) {
				const struct ld_site *site = &s->sites[i];
				struct ld_diff_stack st = site_stack(s, ld_snapshot_stack(s, site->stack), site->depth,
								     max_depth);
				uint64_t h = ld_hash_mix(ld_keyer_stack_hash(k, &st), 0);
				ld_hashmap_prefetch(&t.index, h);
				ahead[i % AHEAD].hash = h;
				ahead[i % AHEAD].row = UINT32_MAX;
			}
		}
	}
	ld_hashmap_finish(&t.index);
	if (r == 0 && k->opts && k->opts->match == LD_MATCH_GRADED)
		r = ld_match_graded(k, t.rows, &t.n, NULL);
	if (r < 0) {
		free(t.rows);
		return r;
	}
	d->sites = ld_sort_sites(k, t.rows, t.n);
	d->nsites = t.n;
	return 0;
}

/* ---- types ---- */

struct type_table {
	struct ld_diff_type *rows;
	size_t n, cap;
	struct ld_hashmap index;
};

static int type_find(const struct type_table *t, const char *name, uint64_t h, size_t *row)
{
	struct ld_hashmap_iter it = LD_HASHMAP_ITER(h);
	uint32_t i;
	while (ld_hashmap_next(&t->index, &it, &i)) {
		if (strcmp(t->rows[i].name, name) == 0) {
			*row = i;
			return 0;
		}
	}
	return -ENOENT;
}

static int type_fold(struct type_table *t, const struct ld_snapshot *s, bool after, const struct ld_type *ty)
{
	const char *name = ld_snapshot_str(s, ty->name);
	uint64_t h = ld_strtab_hash(&s->strings, ty->name);
	size_t row;
	const char *origin = ty->origin != LD_NOSTR ? ld_snapshot_str(s, ty->origin) : NULL;
	if (type_find(t, name, h, &row) == 0) {
		row_add(&t->rows[row].row, after, ty->count, ty->bytes);
		if (!t->rows[row].origin)
			t->rows[row].origin = origin;
		t->rows[row].state = merge_state(t->rows[row].state, false, after);
		return 0;
	}
	if (t->n >= UINT32_MAX - 1)
		return -E2BIG;
	if (LD_ARRAY_RESERVE(t->rows, t->cap, t->n + 1) < 0)
		return -ENOMEM;
	int r = ld_hashmap_insert(&t->index, h, (uint32_t)t->n);
	if (r < 0)
		return r;
	struct ld_diff_type *d = &t->rows[t->n++];
	memset(d, 0, sizeof(*d));
	d->name = name;
	d->origin = origin;
	d->state = merge_state(LD_DIFF_KEPT, true, after);
	row_add(&d->row, after, ty->count, ty->bytes);
	return 0;
}

static int type_cmp(const void *a, const void *b)
{
	const struct ld_diff_type *x = a, *y = b;
	int c = ld_growth_compare(&x->row, &y->row);
	return c ? c : strcmp(x->name, y->name);
}

/* A type site row tagged with the type row it belongs to, for grouping. */
struct tagged_site {
	size_t type_row;
	struct ld_diff_site site;
};

/* qsort_r() comparison of tagged sites: by type row, then as sites under the keyer. */
static int tagged_cmp(const void *a, const void *b, void *keyer)
{
	const struct tagged_site *x = a, *y = b;
	if (x->type_row != y->type_row)
		return x->type_row < y->type_row ? -1 : 1;
	return ld_site_compare(&x->site, &y->site, keyer);
}

static int diff_type_sites(struct ld_diff *d, struct ld_keyer *kr, struct type_table *types, uint32_t max_depth)
{
	struct site_table t = { 0 };
	const char **keys = NULL;
	size_t keys_cap = 0;
	ld_hashmap_init(&t.index);
	int r = 0;
	const struct ld_snapshot *snaps[2] = { d->after, d->before };
	for (int k = 0; k < 2 && r == 0; k++) {
		const struct ld_snapshot *s = snaps[k];
		for (size_t i = 0; i < s->ntype_sites && r == 0; i++) {
			const struct ld_type_site *ts = &s->type_sites[i];
			const char *name = ld_snapshot_str(s, s->types[ts->type].name);
			uint64_t h = ld_strtab_hash(&s->strings, s->types[ts->type].name);
			if ((r = LD_ARRAY_RESERVE(keys, keys_cap, t.n + 1)) < 0)
				break;
			size_t row;
			r = site_fold(&t, kr, s, k == 0, ld_snapshot_stack(s, ts->stack), ts->depth, max_depth,
				      ts->count, ts->bytes, h, name, keys, &row);
			if (r == 0)
				keys[row] = name;
		}
	}
	ld_hashmap_finish(&t.index);
	if (r == 0 && kr->opts && kr->opts->match == LD_MATCH_GRADED)
		r = ld_match_graded(kr, t.rows, &t.n, keys);

	struct tagged_site *tagged = NULL;
	if (r == 0 && t.n) {
		tagged = malloc(t.n * sizeof(*tagged));
		if (!tagged)
			r = -ENOMEM;
	}
	for (size_t i = 0; r == 0 && i < t.n; i++) {
		size_t row = 0;
		/* Every type site names a type of its own snapshot, so this finds it. */
		type_find(types, keys[i], ld_hash_bytes(keys[i], strlen(keys[i])), &row);
		tagged[i] = (struct tagged_site){ row, t.rows[i] };
	}
	free(keys);
	free(t.rows);
	if (r < 0) {
		free(tagged);
		return r;
	}
	if (!t.n)
		return 0;
	qsort_r(tagged, t.n, sizeof(*tagged), tagged_cmp, kr);
	d->type_sites = malloc(t.n * sizeof(*d->type_sites));
	if (!d->type_sites) {
		free(tagged);
		return -ENOMEM;
	}
	for (size_t i = 0; i < t.n; i++) {
		d->type_sites[i] = tagged[i].site;
		struct ld_diff_type *ty = &types->rows[tagged[i].type_row];
		if (!ty->nsites)
			ty->sites = &d->type_sites[i];
		ty->nsites++;
	}
	d->ntype_sites = t.n;
	free(tagged);
	return 0;
}

static int diff_types(struct ld_diff *d, struct ld_keyer *k, uint32_t max_depth)
{
	struct type_table t = { 0 };
	ld_hashmap_init(&t.index);
	int r = 0;
	const struct ld_snapshot *snaps[2] = { d->after, d->before };
	for (int j = 0; j < 2 && r == 0; j++)
		for (size_t i = 0; i < snaps[j]->ntypes && r == 0; i++)
			r = type_fold(&t, snaps[j], j == 0, &snaps[j]->types[i]);
	if (r == 0)
		r = diff_type_sites(d, k, &t, max_depth);
	ld_hashmap_finish(&t.index);
	if (r < 0) {
		free(t.rows);
		return r;
	}
	/* Sorting moves the type rows, not the site rows they point into. */
	if (t.n)
		qsort(t.rows, t.n, sizeof(*t.rows), type_cmp);
	d->types = t.rows;
	d->ntypes = t.n;
	return 0;
}

/* ---- hints ---- */

static const char *hint_key(const struct ld_snapshot *s, const struct ld_hint *h)
{
	return ld_snapshot_str(s, h->kind == LD_HINT_GARBAGE || h->kind == LD_HINT_PATH ? h->type : h->name);
}

static int hint_cmp(const void *a, const void *b)
{
	const struct ld_diff_hint *x = a, *y = b;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	int64_t dx = (int64_t)x->after - (int64_t)x->before, dy = (int64_t)y->after - (int64_t)y->before;
	if (dx != dy)
		return dx > dy ? -1 : 1;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->type, y->type);
}

/*
 * An agent records paths for more types than will have grown (a recording
 * knows nothing of the one it will be compared with), so each path hint
 * carries its type's count change for the report to choose by.  Types are
 * looked up by the name the agent wrote; a type in neither census is 0.
 */
static int64_t type_count_delta(const struct ld_diff *d, const char *name)
{
	for (size_t i = 0; i < d->ntypes; i++)
		if (strcmp(d->types[i].name, name) == 0)
			return ld_diff_count_delta(&d->types[i].row);
	return 0;
}

static int diff_hints(struct ld_diff *d)
{
	size_t cap = d->before->nhints + d->after->nhints;
	if (!cap)
		return 0;
	struct ld_diff_hint *rows = calloc(cap, sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	size_t n = 0;
	/* Hints are few (hundreds), so a linear search per hint is fine. */
	const struct ld_snapshot *snaps[2] = { d->after, d->before };
	for (int k = 0; k < 2; k++) {
		const struct ld_snapshot *s = snaps[k];
		for (size_t i = 0; i < s->nhints; i++) {
			const struct ld_hint *h = &s->hints[i];
			const char *key = hint_key(s, h);
			struct ld_diff_hint *row = NULL;
			for (size_t j = 0; j < n; j++) {
				const char *rk = rows[j].kind == LD_HINT_GARBAGE || rows[j].kind == LD_HINT_PATH
					? rows[j].type : rows[j].name;
				if (rows[j].kind == h->kind && strcmp(rk, key) == 0) {
					row = &rows[j];
					break;
				}
			}
			if (!row) {
				row = &rows[n++];
				row->kind = h->kind;
				row->name = ld_snapshot_str(s, h->name);
				row->type = ld_snapshot_str(s, h->type);
				row->maxsize = h->maxsize;
				row->state = k == 0 ? LD_DIFF_NEW : LD_DIFF_GONE;
				row->path_snap = s;
				row->path = ld_snapshot_stack(s, h->path);
				row->path_len = h->path_len;
			} else if (k == 1 && row->state == LD_DIFF_NEW) {
				row->state = LD_DIFF_KEPT;
			}
			if (k == 0)
				row->after += h->value;
			else
				row->before += h->value;
		}
	}
	for (size_t i = 0; i < n; i++)
		if (rows[i].kind == LD_HINT_PATH)
			rows[i].type_count_delta = type_count_delta(d, rows[i].type);
	qsort(rows, n, sizeof(*rows), hint_cmp);
	d->hints = rows;
	d->nhints = n;
	return 0;
}

const struct ld_diff_type *ld_diff_suspect(const struct ld_diff *d, uint64_t min_bytes)
{
	for (size_t i = 0; i < d->ntypes; i++) {
		const struct ld_diff_type *t = &d->types[i];
		if (ld_diff_count_delta(&t->row) > 0 && ld_type_is_user(t->name, t->origin) &&
		    ld_diff_type_shown(t, min_bytes))
			return t;
	}
	return NULL;
}

int ld_diff_create(const struct ld_snapshot *before, const struct ld_snapshot *after,
		   const struct ld_diff_opts *opts, struct ld_diff **out)
{
	struct ld_diff *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->before = before;
	d->after = after;
	d->intervals = 1;
	d->heap = (struct ld_diff_row){
		.bytes_before = before->totals.heap_bytes, .bytes_after = after->totals.heap_bytes,
		.count_before = before->totals.heap_blocks, .count_after = after->totals.heap_blocks };
	d->objects = (struct ld_diff_row){
		.bytes_before = before->totals.object_bytes, .bytes_after = after->totals.object_bytes,
		.count_before = before->totals.objects, .count_after = after->totals.objects };
	static const struct ld_diff_opts defaults = { 0 };
	if (!opts)
		opts = &defaults;
	struct ld_keyer k;
	const struct ld_snapshot *pair[2] = { after, before };
	int r = ld_keyer_init(&k, pair, 2, opts, LD_KEYER_CLASSES | LD_KEYER_RANKS);
	if (r == 0)
		r = diff_sites(d, &k, opts->depth);
	if (r == 0)
		r = diff_types(d, &k, opts->depth);
	if (r == 0)
		r = diff_hints(d);
	ld_keyer_finish(&k);
	if (r < 0) {
		ld_diff_destroy(d);
		return r;
	}
	*out = d;
	return 0;
}

void ld_diff_destroy(struct ld_diff *d)
{
	if (!d)
		return;
	free(d->types);
	free(d->sites);
	free(d->type_sites);
	free(d->hints);
	free(d->steps);
	free(d);
}
