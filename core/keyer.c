/*
 * The frame keyer (see keyer.h): names of several snapshots interned into
 * shared ids, frames keyed by those ids, the exact-rung classes and the
 * frames' ranks in traceback order, and the traceback hashing, equality and
 * ordering built on them. Built once per comparison so that matching a
 * million tracebacks compares integers, not strings.
 */
#include "keyer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "sort.h"

#define NOID LD_KEYER_NOID

static int ids_intern(struct ld_keyer_ids *t, const char *s, size_t len, uint64_t h, uint32_t *id)
{
	struct ld_hashmap_iter it = LD_HASHMAP_ITER(h);
	uint32_t i;
	while (ld_hashmap_next(&t->index, &it, &i)) {
		if (t->v[i].len == len && memcmp(t->v[i].s, s, len) == 0) {
			*id = i;
			return 0;
		}
	}
	if (t->n >= UINT32_MAX - 1)
		return -E2BIG;
	if (LD_ARRAY_RESERVE(t->v, t->cap, t->n + 1) < 0)
		return -ENOMEM;
	int r = ld_hashmap_insert(&t->index, h, (uint32_t)t->n);
	if (r < 0)
		return r;
	t->v[t->n] = (struct ld_keyer_str){ s, len };
	*id = (uint32_t)t->n++;
	return 0;
}

int ld_keyer_intern(struct ld_keyer *k, const char *s, size_t len, uint32_t *id)
{
	return ids_intern(&k->ids, s, len, ld_hash_bytes(s, len), id);
}

/*
 * What keying one snapshot needs per string and nothing after: the
 * normalised file names (the copies among them belong to the side) and the
 * ids already found, so that each string is interned once.
 */
struct names {
	const char **file;  /* the normalised file name, once computed */
	uint64_t *hash;     /* hash of that name */
	uint32_t *raw_id;   /* id of the string itself, or NOID */
	uint32_t *norm_id;  /* id of its normalised file name, or NOID */
};

static int names_init(struct names *nm, const struct ld_snapshot *s)
{
	size_t n = s->strings.n ? s->strings.n : 1;
	nm->file = calloc(n, sizeof(*nm->file));
	nm->hash = calloc(n, sizeof(*nm->hash));
	nm->raw_id = malloc(n * sizeof(*nm->raw_id));
	nm->norm_id = malloc(n * sizeof(*nm->norm_id));
	if (!nm->file || !nm->hash || !nm->raw_id || !nm->norm_id)
		return -ENOMEM;
	memset(nm->raw_id, 0xff, n * sizeof(*nm->raw_id));
	memset(nm->norm_id, 0xff, n * sizeof(*nm->norm_id));
	return 0;
}

static void names_finish(struct names *nm)
{
	free(nm->file);
	free(nm->hash);
	free(nm->raw_id);
	free(nm->norm_id);
}

static int side_init(struct ld_keyer_side *sd, const struct ld_snapshot *s, unsigned what)
{
	memset(sd, 0, sizeof(*sd));
	sd->s = s;
	size_t n = s->strings.n ? s->strings.n : 1, nf = s->nframes ? s->nframes : 1;
	sd->owned = calloc(n, sizeof(*sd->owned));
	sd->key = malloc(nf * sizeof(*sd->key));
	if (what & LD_KEYER_CLASSES)
		sd->cls = malloc(nf * sizeof(*sd->cls));
	if (what & LD_KEYER_RANKS)
		sd->rank = malloc(nf * sizeof(*sd->rank));
	if (!sd->owned || !sd->key || (!sd->cls && (what & LD_KEYER_CLASSES)) ||
	    (!sd->rank && (what & LD_KEYER_RANKS)))
		return -ENOMEM;
	return 0;
}

static void side_finish(struct ld_keyer_side *sd)
{
	for (size_t i = 0; i < sd->nowned; i++)
		free(sd->owned[i]);
	free(sd->owned);
	free(sd->key);
	free(sd->cls);
	free(sd->rank);
}

/* Fills the normalised names of every file a snapshot's frames use. */
static int norm_fill(struct ld_keyer_side *sd, struct names *nm, const struct ld_diff_opts *opts)
{
	char buf[4096];
	const struct ld_snapshot *s = sd->s;
	for (size_t i = 0; i < s->nframes; i++) {
		uint32_t fi = s->frames[i].file;
		if (fi >= s->strings.n || nm->file[fi])
			continue;
		const char *raw = ld_snapshot_str(s, fi);
		const char *p = ld_diff_normal_path(s, opts, raw, buf, sizeof(buf));
		if (p == buf) {
			char *copy = strdup(buf);
			if (!copy)
				return -ENOMEM;
			sd->owned[sd->nowned++] = copy;
			p = copy;
		}
		nm->file[fi] = p;
		nm->hash[fi] = ld_hash_bytes(p, strlen(p));
	}
	return 0;
}

/* The id of string idx of a snapshot; "" for one out of range, as ld_snapshot_str() gives. */
static int raw_id(struct ld_keyer *k, const struct ld_keyer_side *sd, struct names *nm, uint32_t idx,
		  uint32_t *id)
{
	const struct ld_strtab *t = &sd->s->strings;
	if (idx >= t->n)
		return ids_intern(&k->ids, "", 0, ld_hash_bytes("", 0), id);
	if (nm->raw_id[idx] == NOID) {
		int r = ids_intern(&k->ids, t->strs[idx], t->lens[idx], t->hashes[idx], &nm->raw_id[idx]);
		if (r < 0)
			return r;
	}
	*id = nm->raw_id[idx];
	return 0;
}

/* The id of a file's normalised name (see norm_fill()). */
static int norm_id(struct ld_keyer *k, const struct ld_keyer_side *sd, struct names *nm, uint32_t idx,
		   uint32_t *id)
{
	if (idx >= sd->s->strings.n || !nm->file[idx])
		return ids_intern(&k->ids, "", 0, ld_hash_bytes("", 0), id);
	if (nm->norm_id[idx] == NOID) {
		int r = ids_intern(&k->ids, nm->file[idx], strlen(nm->file[idx]), nm->hash[idx],
				   &nm->norm_id[idx]);
		if (r < 0)
			return r;
	}
	*id = nm->norm_id[idx];
	return 0;
}

static int class_of(struct ld_keyer_classes *c, const struct ld_fkey *key, uint32_t *out)
{
	uint64_t h = ld_hash_mix(ld_hash_mix(key->function, key->file), (uint64_t)(uint32_t)key->line);
	struct ld_hashmap_iter it = LD_HASHMAP_ITER(h);
	uint32_t i;
	while (ld_hashmap_next(&c->index, &it, &i)) {
		if (c->function[i] == key->function && c->file[i] == key->file && c->line[i] == key->line) {
			if (c->text[i] != key->text)
				c->mixed[i] = true;
			*out = i;
			return 0;
		}
	}
	if (c->n >= UINT32_MAX - 1)
		return -E2BIG;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 1024;
		uint32_t *f = realloc(c->function, cap * sizeof(*f));
		if (f)
			c->function = f;
		uint32_t *fi = realloc(c->file, cap * sizeof(*fi));
		if (fi)
			c->file = fi;
		uint32_t *t = realloc(c->text, cap * sizeof(*t));
		if (t)
			c->text = t;
		int32_t *l = realloc(c->line, cap * sizeof(*l));
		if (l)
			c->line = l;
		bool *m = realloc(c->mixed, cap * sizeof(*m));
		if (m)
			c->mixed = m;
		if (!f || !fi || !t || !l || !m)
			return -ENOMEM;
		c->cap = cap;
	}
	int r = ld_hashmap_insert(&c->index, h, (uint32_t)c->n);
	if (r < 0)
		return r;
	c->function[c->n] = key->function;
	c->file[c->n] = key->file;
	c->text[c->n] = key->text;
	c->line[c->n] = key->line;
	c->mixed[c->n] = false;
	*out = (uint32_t)c->n++;
	return 0;
}

static void classes_finish(struct ld_keyer_classes *c)
{
	free(c->function);
	free(c->file);
	free(c->text);
	free(c->line);
	free(c->mixed);
	ld_hashmap_finish(&c->index);
}

/*
 * Keys (and classes, when the side has room for them) of every frame of one
 * snapshot; raw_file gets the id of each frame's file name as it is, or is
 * NULL when nobody needs it.
 */
static int key_fill(struct ld_keyer *k, struct ld_keyer_side *sd, struct names *nm, uint32_t *raw_file)
{
	const struct ld_snapshot *s = sd->s;
	for (size_t i = 0; i < s->nframes; i++) {
		const struct ld_frame *f = &s->frames[i];
		struct ld_fkey *key = &sd->key[i];
		int r;
		if ((r = raw_id(k, sd, nm, f->function, &key->function)) < 0 ||
		    (r = norm_id(k, sd, nm, f->file, &key->file)) < 0 ||
		    (raw_file && (r = raw_id(k, sd, nm, f->file, &raw_file[i])) < 0))
			return r;
		key->text = NOID;
		key->text_set = false;
		if (f->text != LD_NOSTR) {
			if ((r = raw_id(k, sd, nm, f->text, &key->text)) < 0)
				return r;
			key->text_set = *ld_snapshot_str(s, f->text) != '\0';
		}
		key->line = f->line;
		key->function_line = f->function_line;
		if (sd->cls && (r = class_of(&k->cls, key, &sd->cls[i])) < 0)
			return r;
	}
	return 0;
}

static int str_cmp(const void *a, const void *b)
{
	const struct ld_keyer_str *x = *(const struct ld_keyer_str *const *)a;
	const struct ld_keyer_str *y = *(const struct ld_keyer_str *const *)b;
	/* Names hold no NUL, so this is strcmp's order. */
	int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/*
 * Ranks every frame of every side by raw file name, line and function
 * name (names in strcmp order), equal frames alike, so that sorting
 * tracebacks compares one integer per frame.
 */
static int rank_fill(struct ld_keyer *k, uint32_t *const *raw_file)
{
	size_t n = k->ids.n ? k->ids.n : 1, nf = 0;
	for (size_t j = 0; j < k->nsides; j++)
		nf += k->sides[j].s->nframes;
	uint32_t *rank = malloc(n * sizeof(*rank));
	const struct ld_keyer_str **used = malloc(n * sizeof(*used));
	struct ld_frame_order *fo = malloc((nf ? nf : 1) * sizeof(*fo));
	if (!rank || !used || !fo) {
		free(rank);
		free(used);
		free(fo);
		return -ENOMEM;
	}
	memset(rank, 0xff, n * sizeof(*rank));
	size_t m = 0;
	for (size_t j = 0; j < k->nsides; j++) {
		const struct ld_keyer_side *sd = &k->sides[j];
		for (size_t i = 0; i < sd->s->nframes; i++) {
			uint32_t ids[2] = { raw_file[j][i], sd->key[i].function };
			for (int t = 0; t < 2; t++) {
				if (rank[ids[t]] == NOID) {
					rank[ids[t]] = 0;
					used[m++] = &k->ids.v[ids[t]];
				}
			}
		}
	}
	if (m)
		qsort(used, m, sizeof(*used), str_cmp);
	for (size_t i = 0; i < m; i++)
		rank[used[i] - k->ids.v] = (uint32_t)i;
	size_t w = 0;
	for (size_t j = 0; j < k->nsides; j++) {
		const struct ld_keyer_side *sd = &k->sides[j];
		for (size_t i = 0; i < sd->s->nframes; i++)
			fo[w++] = (struct ld_frame_order){ rank[raw_file[j][i]], rank[sd->key[i].function],
							   sd->s->frames[i].line, (uint32_t)j, (uint32_t)i };
	}
	if (nf && ld_sort_frames(fo, nf) < 0)
		qsort(fo, nf, sizeof(*fo), ld_frame_order_cmp);
	uint32_t r = 0;
	for (size_t i = 0; i < nf; i++) {
		if (i && ld_frame_order_cmp(&fo[i - 1], &fo[i]) != 0)
			r++;
		k->sides[fo[i].side].rank[fo[i].frame] = r;
	}
	free(rank);
	free(used);
	free(fo);
	return 0;
}

int ld_keyer_init(struct ld_keyer *k, const struct ld_snapshot *const *snaps, size_t n,
		  const struct ld_diff_opts *opts, unsigned what)
{
	memset(k, 0, sizeof(*k));
	k->opts = opts;
	k->rung = opts->match == LD_MATCH_BY_FUNCTION ? LD_MATCH_FUNCTION : LD_MATCH_EXACT;
	ld_hashmap_init(&k->ids.index);
	ld_hashmap_init(&k->cls.index);
	k->sides = calloc(n ? n : 1, sizeof(*k->sides));
	uint32_t **raw_file = (what & LD_KEYER_RANKS) ? calloc(n ? n : 1, sizeof(*raw_file)) : NULL;
	int r = k->sides && (raw_file || !(what & LD_KEYER_RANKS)) ? 0 : -ENOMEM;
	for (size_t i = 0; i < n && r == 0; i++) {
		size_t j = 0;
		while (j < k->nsides && k->sides[j].s != snaps[i])
			j++;
		if (j < k->nsides)
			continue; /* the same snapshot again: its keys are made */
		struct ld_keyer_side *sd = &k->sides[k->nsides++];
		const struct ld_snapshot *s = snaps[i];
		struct names nm = { 0 };
		r = side_init(sd, s, what);
		if (r == 0)
			r = names_init(&nm, s);
		if (r == 0 && raw_file) {
			raw_file[j] = malloc((s->nframes ? s->nframes : 1) * sizeof(*raw_file[j]));
			if (!raw_file[j])
				r = -ENOMEM;
		}
		if (r == 0)
			r = norm_fill(sd, &nm, opts);
		if (r == 0)
			r = key_fill(k, sd, &nm, raw_file ? raw_file[j] : NULL);
		names_finish(&nm);
	}
	if (r == 0 && raw_file)
		r = rank_fill(k, raw_file);
	for (size_t j = 0; raw_file && j < k->nsides; j++)
		free(raw_file[j]);
	free(raw_file);
	return r;
}

void ld_keyer_finish(struct ld_keyer *k)
{
	for (size_t j = 0; k->sides && j < k->nsides; j++)
		side_finish(&k->sides[j]);
	free(k->sides);
	free(k->ids.v);
	ld_hashmap_finish(&k->ids.index);
	classes_finish(&k->cls);
}

/*
 * The hash of a frame at the keyer's rung: of its class at the exact rung,
 * of its function and file at the offset and file rungs (the offset rung
 * leaves the finer test, text or offset, to frame_equal()), of its
 * function at the last. Frames equal at a rung hash alike.
 */
static uint64_t frame_hash(const struct ld_keyer *k, const struct ld_keyer_side *sd, uint32_t fi)
{
	if (k->rung == LD_MATCH_EXACT)
		return sd->cls[fi];
	const struct ld_fkey *f = &sd->key[fi];
	if (k->rung == LD_MATCH_FUNCTION)
		return f->function;
	return (uint64_t)f->function << 32 | f->file;
}

static bool same_line(const struct ld_fkey *fa, const struct ld_fkey *fb)
{
	if (fa->text != NOID && fb->text != NOID && fa->text_set)
		return fa->text == fb->text;
	if (fa->function_line >= 0 && fb->function_line >= 0)
		return fa->line - fa->function_line == fb->line - fb->function_line;
	return fa->line == fb->line;
}

static bool frame_equal(const struct ld_keyer *k, const struct ld_keyer_side *a, uint32_t ai,
			const struct ld_keyer_side *b, uint32_t bi)
{
	const struct ld_fkey *fa = &a->key[ai], *fb = &b->key[bi];
	if (fa->function != fb->function)
		return false;
	if (k->rung == LD_MATCH_FUNCTION)
		return true;
	if (fa->file != fb->file)
		return false;
	if (k->rung == LD_MATCH_EXACT) {
		/* Same number, different code (lines moved under it): not the same line. */
		if (fa->text != NOID && fb->text != NOID && fa->text != fb->text)
			return false;
		return fa->line == fb->line;
	}
	if (k->rung == LD_MATCH_OFFSET)
		return same_line(fa, fb);
	return true;
}

uint64_t ld_keyer_stack_hash(const struct ld_keyer *k, const struct ld_diff_stack *st)
{
	const struct ld_keyer_side *sd = ld_keyer_side(k, st->snap);
	uint64_t h = st->depth;
	for (uint32_t i = 0; i < st->depth; i++)
		h = ld_hash_mix(h, frame_hash(k, sd, st->frames[i]));
	return h;
}

bool ld_keyer_stack_equal(const struct ld_keyer *k, const struct ld_diff_stack *x, const struct ld_diff_stack *y)
{
	if (x->depth != y->depth)
		return false;
	const struct ld_keyer_side *a = ld_keyer_side(k, x->snap), *b = ld_keyer_side(k, y->snap);
	if (k->rung == LD_MATCH_EXACT) {
		/* The common case, and the hot loop of a large diff: class ids first. */
		for (uint32_t i = 0; i < x->depth; i++) {
			uint32_t ca = a->cls[x->frames[i]];
			if (ca != b->cls[y->frames[i]])
				return false;
			if (k->cls.mixed[ca] && !frame_equal(k, a, x->frames[i], b, y->frames[i]))
				return false;
		}
		return true;
	}
	for (uint32_t i = 0; i < x->depth; i++)
		if (!frame_equal(k, a, x->frames[i], b, y->frames[i]))
			return false;
	return true;
}

int ld_keyer_stack_compare_from(const struct ld_keyer *k, const struct ld_diff_stack *x,
				const struct ld_diff_stack *y, uint32_t from)
{
	const struct ld_keyer_side *a = ld_keyer_side(k, x->snap), *b = ld_keyer_side(k, y->snap);
	uint32_t n = x->depth < y->depth ? x->depth : y->depth;
	for (uint32_t i = from; i < n; i++) {
		uint32_t ra = a->rank[x->frames[i]], rb = b->rank[y->frames[i]];
		if (ra != rb)
			return ra < rb ? -1 : 1;
	}
	return x->depth < y->depth ? -1 : x->depth > y->depth;
}
