/*
 * Snapshot comparison. Each table of both snapshots is folded into keyed
 * rows through a hash index: the later snapshot first, so rows present in
 * both borrow its names and frames, then the earlier one. Keys compare by
 * string content, since the two snapshots have separate string tables;
 * for tracebacks, which a large diff has millions of, every name is first
 * interned into ids shared by both snapshots so that content compares as
 * integers (see struct keyer).
 */
#include "diff.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "hashmap.h"

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

const char *ld_diff_match_name(enum ld_match m)
{
	switch (m) {
	case LD_MATCH_OFFSET:
		return "offset";
	case LD_MATCH_FILE:
		return "file";
	case LD_MATCH_FUNCTION:
		return "function";
	default:
		return "exact";
	}
}

/* ---- frames as integer keys ---- */

#define NOID UINT32_MAX

/*
 * Every name the comparison looks at, from both snapshots, interned by
 * content: two ids are equal exactly when the strings are. Built once per
 * diff so that matching a million tracebacks compares integers, not
 * strings (the two snapshots have separate string tables).
 */
struct idstr {
	const char *s;
	size_t len;
};

struct ids {
	struct idstr *v;
	size_t n, cap;
	struct ld_hashmap index;
};

static int ids_intern(struct ids *t, const char *s, size_t len, uint64_t h, uint32_t *id)
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
	t->v[t->n] = (struct idstr){ s, len };
	*id = (uint32_t)t->n++;
	return 0;
}

/* What matching needs of one frame, names as ids. */
struct fkey {
	uint32_t function, file; /* file: the normalised name */
	uint32_t text;           /* NOID when the frame has no source text */
	int32_t line, function_line;
	bool text_set;           /* has a source text that is not empty */
};

/* One snapshot's frames, prepared for matching. */
struct side {
	const struct ld_snapshot *s;
	const char **file;  /* per string: the normalised file name, once computed */
	uint64_t *hash;     /* per string: hash of that name */
	char **owned;
	size_t nowned;
	uint32_t *raw_id;   /* per string: id of the string itself, or NOID */
	uint32_t *norm_id;  /* per string: id of its normalised file name, or NOID */
	struct fkey *key;   /* per frame */
	uint32_t *cls;      /* per frame: exact-rung class (struct classes) */
	uint32_t *rank;     /* per frame: place in the order of (raw file, line, function) */
};

/*
 * Frames of both snapshots grouped by function, normalised file and line:
 * the exact rung matches two frames when they are in the same class and
 * their source texts, where both have one, agree. A class whose frames all
 * carry the same text (or none) needs no text test; only a mixed one does,
 * since "no text" matches any text and so is not an equivalence.
 */
struct classes {
	uint32_t *function, *file, *text;
	int32_t *line;
	bool *mixed;
	size_t n, cap;
	struct ld_hashmap index;
};

struct keyer {
	struct side side[2]; /* after, before */
	struct ids ids;
	struct classes cls;
	const struct ld_diff_opts *opts;
	int rung;            /* the enum ld_match keys compare at */
};

static int side_init(struct side *sd, const struct ld_snapshot *s)
{
	memset(sd, 0, sizeof(*sd));
	sd->s = s;
	size_t n = s->strings.n ? s->strings.n : 1, nf = s->nframes ? s->nframes : 1;
	sd->file = calloc(n, sizeof(*sd->file));
	sd->hash = calloc(n, sizeof(*sd->hash));
	sd->owned = calloc(n, sizeof(*sd->owned));
	sd->raw_id = malloc(n * sizeof(*sd->raw_id));
	sd->norm_id = malloc(n * sizeof(*sd->norm_id));
	sd->key = malloc(nf * sizeof(*sd->key));
	sd->cls = malloc(nf * sizeof(*sd->cls));
	sd->rank = malloc(nf * sizeof(*sd->rank));
	if (!sd->file || !sd->hash || !sd->owned || !sd->raw_id || !sd->norm_id || !sd->key || !sd->cls ||
	    !sd->rank)
		return -ENOMEM;
	memset(sd->raw_id, 0xff, n * sizeof(*sd->raw_id));
	memset(sd->norm_id, 0xff, n * sizeof(*sd->norm_id));
	return 0;
}

static void side_finish(struct side *sd)
{
	for (size_t i = 0; i < sd->nowned; i++)
		free(sd->owned[i]);
	free(sd->owned);
	free(sd->file);
	free(sd->hash);
	free(sd->raw_id);
	free(sd->norm_id);
	free(sd->key);
	free(sd->cls);
	free(sd->rank);
}

static const struct side *side_of(const struct keyer *k, const struct ld_snapshot *s)
{
	return s == k->side[0].s ? &k->side[0] : &k->side[1];
}

/* Fills the normalised names of every file a snapshot's frames use. */
static int norm_fill(struct side *sd, const struct ld_diff_opts *opts)
{
	char buf[4096];
	const struct ld_snapshot *s = sd->s;
	for (size_t i = 0; i < s->nframes; i++) {
		uint32_t fi = s->frames[i].file;
		if (fi >= s->strings.n || sd->file[fi])
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
		sd->file[fi] = p;
		sd->hash[fi] = ld_hash_bytes(p, strlen(p));
	}
	return 0;
}

/* The id of string idx of a snapshot; "" for one out of range, as ld_snapshot_str() gives. */
static int raw_id(struct keyer *k, struct side *sd, uint32_t idx, uint32_t *id)
{
	const struct ld_strtab *t = &sd->s->strings;
	if (idx >= t->n)
		return ids_intern(&k->ids, "", 0, ld_hash_bytes("", 0), id);
	if (sd->raw_id[idx] == NOID) {
		int r = ids_intern(&k->ids, t->strs[idx], t->lens[idx], t->hashes[idx], &sd->raw_id[idx]);
		if (r < 0)
			return r;
	}
	*id = sd->raw_id[idx];
	return 0;
}

/* The id of a file's normalised name (see norm_fill()). */
static int norm_id(struct keyer *k, struct side *sd, uint32_t idx, uint32_t *id)
{
	if (idx >= sd->s->strings.n || !sd->file[idx])
		return ids_intern(&k->ids, "", 0, ld_hash_bytes("", 0), id);
	if (sd->norm_id[idx] == NOID) {
		int r = ids_intern(&k->ids, sd->file[idx], strlen(sd->file[idx]), sd->hash[idx],
				   &sd->norm_id[idx]);
		if (r < 0)
			return r;
	}
	*id = sd->norm_id[idx];
	return 0;
}

static int class_of(struct classes *c, const struct fkey *key, uint32_t *out)
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

static void classes_finish(struct classes *c)
{
	free(c->function);
	free(c->file);
	free(c->text);
	free(c->line);
	free(c->mixed);
	ld_hashmap_finish(&c->index);
}

/* Keys and classes of every frame of one snapshot. */
static int key_fill(struct keyer *k, struct side *sd, uint32_t *raw_file)
{
	const struct ld_snapshot *s = sd->s;
	for (size_t i = 0; i < s->nframes; i++) {
		const struct ld_frame *f = &s->frames[i];
		struct fkey *key = &sd->key[i];
		int r;
		if ((r = raw_id(k, sd, f->function, &key->function)) < 0 ||
		    (r = norm_id(k, sd, f->file, &key->file)) < 0 ||
		    (r = raw_id(k, sd, f->file, &raw_file[i])) < 0)
			return r;
		key->text = NOID;
		key->text_set = false;
		if (f->text != LD_NOSTR) {
			if ((r = raw_id(k, sd, f->text, &key->text)) < 0)
				return r;
			key->text_set = *ld_snapshot_str(s, f->text) != '\0';
		}
		key->line = f->line;
		key->function_line = f->function_line;
		if ((r = class_of(&k->cls, key, &sd->cls[i])) < 0)
			return r;
	}
	return 0;
}

static int idstr_cmp(const void *a, const void *b)
{
	const struct idstr *x = *(const struct idstr *const *)a, *y = *(const struct idstr *const *)b;
	/* Names hold no NUL, so this is strcmp's order. */
	int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* A frame in the order tracebacks sort by: raw file name, line, function name. */
struct frame_order {
	uint32_t file, function; /* ranks of the names in strcmp order */
	int32_t line;
	uint32_t side, frame;
};

static int frame_order_cmp(const void *a, const void *b)
{
	const struct frame_order *x = a, *y = b;
	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->function != y->function)
		return x->function < y->function ? -1 : 1;
	return 0;
}

/* Digit d (16 bits, least significant first) of a frame's sort key. */
static uint32_t frame_digit(const struct frame_order *f, int d)
{
	uint32_t v = d < 2 ? f->function : d < 4 ? (uint32_t)f->line ^ 0x80000000u : f->file;
	return (v >> (d % 2 * 16)) & 0xffff;
}

/*
 * Sorts frames by frame_order_cmp() with a radix sort, 16 bits a pass
 * (hundreds of thousands of frames: several times faster than qsort()).
 * Returns 0, or -ENOMEM with fo untouched.
 */
static int sort_frames(struct frame_order *fo, size_t n)
{
	struct frame_order *tmp = malloc(n * sizeof(*tmp));
	size_t *count = malloc(((size_t)1 << 16) * sizeof(*count));
	if (!tmp || !count) {
		free(tmp);
		free(count);
		return -ENOMEM;
	}
	for (int d = 0; d < 6; d++) {
		memset(count, 0, ((size_t)1 << 16) * sizeof(*count));
		for (size_t i = 0; i < n; i++)
			count[frame_digit(&fo[i], d)]++;
		if (count[frame_digit(&fo[0], d)] == n)
			continue;
		size_t sum = 0;
		for (size_t i = 0; i < ((size_t)1 << 16); i++) {
			size_t c = count[i];
			count[i] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[count[frame_digit(&fo[i], d)]++] = fo[i];
		memcpy(fo, tmp, n * sizeof(*fo));
	}
	free(tmp);
	free(count);
	return 0;
}

/*
 * Ranks every frame of both snapshots by raw file name, line and function
 * name (names in strcmp order), equal frames alike, so that sorting
 * tracebacks compares one integer per frame.
 */
static int rank_fill(struct keyer *k, uint32_t *const raw_file[2])
{
	size_t n = k->ids.n ? k->ids.n : 1, nf = k->side[0].s->nframes + k->side[1].s->nframes;
	uint32_t *rank = malloc(n * sizeof(*rank));
	const struct idstr **used = malloc(n * sizeof(*used));
	struct frame_order *fo = malloc((nf ? nf : 1) * sizeof(*fo));
	if (!rank || !used || !fo) {
		free(rank);
		free(used);
		free(fo);
		return -ENOMEM;
	}
	memset(rank, 0xff, n * sizeof(*rank));
	size_t m = 0;
	for (int j = 0; j < 2; j++) {
		const struct side *sd = &k->side[j];
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
		qsort(used, m, sizeof(*used), idstr_cmp);
	for (size_t i = 0; i < m; i++)
		rank[used[i] - k->ids.v] = (uint32_t)i;
	size_t w = 0;
	for (uint32_t j = 0; j < 2; j++) {
		const struct side *sd = &k->side[j];
		for (size_t i = 0; i < sd->s->nframes; i++)
			fo[w++] = (struct frame_order){ rank[raw_file[j][i]], rank[sd->key[i].function],
							sd->s->frames[i].line, j, (uint32_t)i };
	}
	if (nf && sort_frames(fo, nf) < 0)
		qsort(fo, nf, sizeof(*fo), frame_order_cmp);
	uint32_t r = 0;
	for (size_t i = 0; i < nf; i++) {
		if (i && frame_order_cmp(&fo[i - 1], &fo[i]) != 0)
			r++;
		k->side[fo[i].side].rank[fo[i].frame] = r;
	}
	free(rank);
	free(used);
	free(fo);
	return 0;
}

static int keyer_init(struct keyer *k, const struct ld_snapshot *after, const struct ld_snapshot *before,
		      const struct ld_diff_opts *opts)
{
	memset(k, 0, sizeof(*k));
	k->opts = opts;
	k->rung = opts->match == LD_MATCH_BY_FUNCTION ? LD_MATCH_FUNCTION : LD_MATCH_EXACT;
	ld_hashmap_init(&k->ids.index);
	ld_hashmap_init(&k->cls.index);
	uint32_t *raw_file[2] = { NULL, NULL };
	int r = side_init(&k->side[0], after);
	if (r == 0)
		r = side_init(&k->side[1], before);
	for (int j = 0; j < 2 && r == 0; j++) {
		const struct ld_snapshot *s = k->side[j].s;
		raw_file[j] = malloc((s->nframes ? s->nframes : 1) * sizeof(*raw_file[j]));
		if (!raw_file[j])
			r = -ENOMEM;
		if (r == 0)
			r = norm_fill(&k->side[j], opts);
		if (r == 0)
			r = key_fill(k, &k->side[j], raw_file[j]);
	}
	if (r == 0)
		r = rank_fill(k, raw_file);
	free(raw_file[0]);
	free(raw_file[1]);
	return r;
}

static void keyer_finish(struct keyer *k)
{
	side_finish(&k->side[0]);
	side_finish(&k->side[1]);
	free(k->ids.v);
	ld_hashmap_finish(&k->ids.index);
	classes_finish(&k->cls);
}

/* ---- tracebacks as keys ---- */

/*
 * The hash of a frame at the keyer's rung: of its class at the exact rung,
 * of its function and file at the offset and file rungs (the offset rung
 * leaves the finer test, text or offset, to frame_equal()), of its
 * function at the last. Frames equal at a rung hash alike.
 */
static uint64_t frame_hash(const struct keyer *k, const struct side *sd, uint32_t fi)
{
	if (k->rung == LD_MATCH_EXACT)
		return sd->cls[fi];
	const struct fkey *f = &sd->key[fi];
	if (k->rung == LD_MATCH_FUNCTION)
		return f->function;
	return (uint64_t)f->function << 32 | f->file;
}

static bool same_line(const struct fkey *fa, const struct fkey *fb)
{
	if (fa->text != NOID && fb->text != NOID && fa->text_set)
		return fa->text == fb->text;
	if (fa->function_line >= 0 && fb->function_line >= 0)
		return fa->line - fa->function_line == fb->line - fb->function_line;
	return fa->line == fb->line;
}

static bool frame_equal(const struct keyer *k, const struct side *a, uint32_t ai, const struct side *b, uint32_t bi)
{
	const struct fkey *fa = &a->key[ai], *fb = &b->key[bi];
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

static uint64_t stack_hash(const struct keyer *k, const struct ld_diff_stack *st)
{
	const struct side *sd = side_of(k, st->snap);
	uint64_t h = st->depth;
	for (uint32_t i = 0; i < st->depth; i++)
		h = ld_hash_mix(h, frame_hash(k, sd, st->frames[i]));
	return h;
}

static bool stack_equal(const struct keyer *k, const struct ld_diff_stack *x, const struct ld_diff_stack *y)
{
	if (x->depth != y->depth)
		return false;
	const struct side *a = side_of(k, x->snap), *b = side_of(k, y->snap);
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

/*
 * Orders tracebacks by file, line and function (names in strcmp order),
 * innermost frame first, from frame `from` on: the frames' ranks say it.
 */
static int stack_compare_from(const struct keyer *k, const struct ld_diff_stack *x, const struct ld_diff_stack *y,
			      uint32_t from)
{
	const struct side *a = side_of(k, x->snap), *b = side_of(k, y->snap);
	uint32_t n = x->depth < y->depth ? x->depth : y->depth;
	for (uint32_t i = from; i < n; i++) {
		uint32_t ra = a->rank[x->frames[i]], rb = b->rank[y->frames[i]];
		if (ra != rb)
			return ra < rb ? -1 : 1;
	}
	return x->depth < y->depth ? -1 : x->depth > y->depth;
}

static int stack_compare(const struct keyer *k, const struct ld_diff_stack *x, const struct ld_diff_stack *y)
{
	return stack_compare_from(k, x, y, 0);
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

/* The sort key of every table: growth first, then a stable tie-break. */
static int growth_compare(const struct ld_diff_row *a, const struct ld_diff_row *b)
{
	int64_t da = ld_diff_bytes_delta(a), db = ld_diff_bytes_delta(b);
	if (da != db)
		return da > db ? -1 : 1;
	da = ld_diff_count_delta(a);
	db = ld_diff_count_delta(b);
	if (da != db)
		return da > db ? -1 : 1;
	return 0;
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
 * Adds a site (traceback st, whose stack_hash() mixed with extra_hash is h)
 * to the row it equals, or to a new row.
 */
static int site_fold_hashed(struct site_table *t, const struct keyer *k, bool after, struct ld_diff_stack st,
			    uint64_t h, uint64_t count, uint64_t bytes, const char *extra_key,
			    const char **row_keys, size_t *row)
{
	struct ld_hashmap_iter it = LD_HASHMAP_ITER(h);
	uint32_t i, found = NOID;
	/*
	 * Where "no source text" meets two texts, a traceback can equal two
	 * rows: it joins the older, whatever order the index holds them in.
	 */
	while (ld_hashmap_next(&t->index, &it, &i)) {
		if (i < found && (!row_keys || strcmp(row_keys[i], extra_key) == 0) &&
		    stack_equal(k, &t->rows[i].stack, &st))
			found = i;
	}
	if (found != NOID) {
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

static int site_fold(struct site_table *t, const struct keyer *k, const struct ld_snapshot *s, bool after,
		     const uint32_t *frames, uint32_t depth, uint32_t max_depth,
		     uint64_t count, uint64_t bytes, uint64_t extra_hash,
		     const char *extra_key, const char **row_keys, size_t *row)
{
	struct ld_diff_stack st = site_stack(s, frames, depth, max_depth);
	uint64_t h = ld_hash_mix(stack_hash(k, &st), extra_hash);
	return site_fold_hashed(t, k, after, st, h, count, bytes, extra_key, row_keys, row);
}

/*
 * qsort() passes no context, and the tracebacks' ranks live in the keyer:
 * the sorting thread leaves it here first.
 */
static _Thread_local const struct keyer *sort_keyer;

static int site_cmp(const void *a, const void *b)
{
	const struct ld_diff_site *x = a, *y = b;
	int c = growth_compare(&x->row, &y->row);
	return c ? c : stack_compare(sort_keyer, &x->stack, &y->stack);
}

/*
 * What sorting a site row looks at first, packed small: the rows of a large
 * diff are mostly unchanged, so most comparisons get past the growth and
 * are settled by the innermost frames.
 */
#define KEY_FRAMES 2

struct site_key {
	int64_t bytes, count; /* growth */
	uint32_t rank[KEY_FRAMES]; /* of the innermost frames, as far as the traceback goes */
	uint32_t depth, row;
};

static _Thread_local const struct ld_diff_site *sort_rows;

static int site_key_cmp(const void *a, const void *b)
{
	const struct site_key *x = a, *y = b;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	uint32_t n = x->depth < y->depth ? x->depth : y->depth;
	for (uint32_t i = 0; i < n && i < KEY_FRAMES; i++)
		if (x->rank[i] != y->rank[i])
			return x->rank[i] < y->rank[i] ? -1 : 1;
	if (n <= KEY_FRAMES)
		return x->depth < y->depth ? -1 : x->depth > y->depth;
	return stack_compare_from(sort_keyer, &sort_rows[x->row].stack, &sort_rows[y->row].stack, KEY_FRAMES);
}

/* Stable merge sort of n keys by site_key_cmp(); tmp has room for n / 2 + 1. */
static void merge_keys(struct site_key *v, size_t n, struct site_key *tmp)
{
	if (n < 2)
		return;
	size_t h = n / 2;
	merge_keys(v, h, tmp);
	merge_keys(v + h, n - h, tmp);
	if (site_key_cmp(&v[h - 1], &v[h]) <= 0)
		return;
	memcpy(tmp, v, h * sizeof(*v));
	size_t i = 0, j = h, o = 0;
	/* The right half wins only when strictly smaller: equal keys keep their order. */
	while (i < h && j < n)
		v[o++] = site_key_cmp(&v[j], &tmp[i]) < 0 ? v[j++] : tmp[i++];
	while (i < h)
		v[o++] = tmp[i++];
}

/* A row that did not change, sorted by its first two frames' ranks (0: no frame). */
struct flat {
	uint64_t key;
	uint32_t at;
};

/* Stable LSD radix sort of n items by key, 16 bits a pass; tmp holds n, count 2^16. */
static void radix_flat(struct flat *v, size_t n, struct flat *tmp, size_t *count)
{
	for (int shift = 0; shift < 64; shift += 16) {
		memset(count, 0, ((size_t)1 << 16) * sizeof(*count));
		for (size_t i = 0; i < n; i++)
			count[(v[i].key >> shift) & 0xffff]++;
		if (count[(v[0].key >> shift) & 0xffff] == n)
			continue; /* every key has this digit: nothing moves */
		size_t sum = 0;
		for (size_t d = 0; d < (1 << 16); d++) {
			size_t c = count[d];
			count[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[count[(v[i].key >> shift) & 0xffff]++] = v[i];
		memcpy(v, tmp, n * sizeof(*v));
	}
}

/*
 * Puts keys in the order a stable sort by site_key_cmp() gives (which is
 * what qsort() gave, glibc's being a stable merge sort): rows that grew or
 * shrank by a stable merge sort, and the unchanged ones, most of a large
 * diff, which all sort between the two, by a radix sort on their innermost
 * two frames, then by merge sort within each run those do not settle.
 * Returns 0 or -ENOMEM (keys untouched).
 */
static int order_keys(struct site_key *keys, size_t n)
{
	size_t nflat = 0;
	for (size_t i = 0; i < n; i++)
		nflat += keys[i].bytes == 0 && keys[i].count == 0;
	size_t nmoved = n - nflat;
	struct site_key *out = malloc(n * sizeof(*out));
	struct site_key *tmp = malloc((n / 2 + 1) * sizeof(*tmp));
	struct flat *flat = malloc((nflat ? nflat : 1) * sizeof(*flat));
	struct flat *ftmp = malloc((nflat ? nflat : 1) * sizeof(*ftmp));
	size_t *count = malloc(((size_t)1 << 16) * sizeof(*count));
	if (!out || !tmp || !flat || !ftmp || !count) {
		free(out);
		free(tmp);
		free(flat);
		free(ftmp);
		free(count);
		return -ENOMEM;
	}
	/* The moved rows first, at the front of out, in their own order. */
	size_t m = 0, f = 0;
	for (size_t i = 0; i < n; i++) {
		const struct site_key *x = &keys[i];
		if (x->bytes || x->count) {
			out[m++] = *x;
		} else {
			uint64_t r0 = x->depth > 0 ? (uint64_t)x->rank[0] + 1 : 0;
			uint64_t r1 = x->depth > 1 ? (uint64_t)x->rank[1] + 1 : 0;
			flat[f++] = (struct flat){ r0 << 32 | r1, (uint32_t)i };
		}
	}
	merge_keys(out, nmoved, tmp);
	size_t grew = 0; /* moved rows that sort before the unchanged ones */
	while (grew < nmoved && (out[grew].bytes > 0 || (out[grew].bytes == 0 && out[grew].count > 0)))
		grew++;
	memmove(out + grew + nflat, out + grew, (nmoved - grew) * sizeof(*out));
	if (nflat)
		radix_flat(flat, nflat, ftmp, count);
	struct site_key *mid = out + grew;
	for (size_t i = 0; i < nflat; i++)
		mid[i] = keys[flat[i].at];
	/* Equal first frames: the rest of the tracebacks decide. */
	for (size_t i = 0; i < nflat;) {
		size_t j = i + 1;
		while (j < nflat && flat[j].key == flat[i].key)
			j++;
		if (j - i > 1)
			merge_keys(mid + i, j - i, tmp);
		i = j;
	}
	memcpy(keys, out, n * sizeof(*keys));
	free(out);
	free(tmp);
	free(flat);
	free(ftmp);
	free(count);
	return 0;
}

/*
 * Sorts site rows into the order qsort() with site_cmp() gives, working on
 * an array of small keys rather than the rows themselves, and returns them,
 * in rows or in a new array that replaces it. Without memory for the keys,
 * the rows are sorted directly.
 */
static struct ld_diff_site *sort_sites(const struct keyer *k, struct ld_diff_site *rows, size_t n)
{
	sort_keyer = k;
	if (n < 2)
		return rows;
	struct site_key *keys = malloc(n * sizeof(*keys));
	if (!keys) {
		qsort(rows, n, sizeof(*rows), site_cmp);
		return rows;
	}
	for (size_t i = 0; i < n; i++) {
		const struct ld_diff_site *r = &rows[i];
		keys[i] = (struct site_key){ .bytes = ld_diff_bytes_delta(&r->row),
					     .count = ld_diff_count_delta(&r->row),
					     .depth = r->stack.depth, .row = (uint32_t)i };
		const uint32_t *rank = side_of(k, r->stack.snap)->rank;
		for (uint32_t j = 0; j < r->stack.depth && j < KEY_FRAMES; j++)
			keys[i].rank[j] = rank[r->stack.frames[j]];
	}
	sort_rows = rows;
	if (order_keys(keys, n) < 0) {
		free(keys);
		qsort(rows, n, sizeof(*rows), site_cmp);
		return rows;
	}
	sort_rows = NULL;
	/*
	 * Row keys[j].row belongs at j. Gathered into a new array, the reads
	 * are independent and overlap; without memory for it, each cycle of
	 * the permutation is followed in place, placed rows marked with their
	 * own index.
	 */
	struct ld_diff_site *sorted = malloc(n * sizeof(*sorted));
	if (sorted) {
		for (size_t j = 0; j < n; j++) {
#if defined(__GNUC__)
			if (j + 8 < n)
				__builtin_prefetch(&rows[keys[j + 8].row]);
#endif
			sorted[j] = rows[keys[j].row];
		}
		free(keys);
		free(rows);
		return sorted;
	}
	for (size_t i = 0; i < n; i++) {
		if (keys[i].row == i)
			continue;
		struct ld_diff_site tmp = rows[i];
		size_t j = i;
		while (keys[j].row != i) {
			size_t from = keys[j].row;
			rows[j] = rows[from];
			keys[j].row = (uint32_t)j;
			j = from;
		}
		rows[j] = tmp;
		keys[j].row = (uint32_t)j;
	}
	free(keys);
	return rows;
}

/*
 * Pairs sites that exact matching left as "new" and "gone", rung by rung:
 * a line that moved, then a line that changed, then a function that moved
 * to another file. Larger new sites choose first. Rows absorbed into their
 * partner are removed; keys (type names of type sites, or NULL) move with
 * their rows.
 */
/* Sort key for graded_pass: larger new rows choose first, ties in row order. */
struct by_size {
	uint64_t bytes;
	size_t index;
};

static int by_size_cmp(const void *a, const void *b)
{
	const struct by_size *x = a, *y = b;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static int graded_pass(struct keyer *k, struct ld_diff_site *rows, size_t *n, const char **keys)
{
	size_t count = *n, nnew = 0, ngone = 0;
	for (size_t i = 0; i < count; i++) {
		nnew += rows[i].state == LD_DIFF_NEW;
		ngone += rows[i].state == LD_DIFF_GONE;
	}
	if (!nnew || !ngone)
		return 0; /* nothing to pair (always so for `leakdiff show`) */
	bool *dead = calloc(count, sizeof(*dead));
	struct by_size *sorted = malloc(nnew * sizeof(*sorted));
	size_t *order = malloc(nnew * sizeof(*order));
	if (!dead || !order || !sorted) {
		free(dead);
		free(order);
		free(sorted);
		return -ENOMEM;
	}
	for (size_t i = 0, j = 0; i < count; i++)
		if (rows[i].state == LD_DIFF_NEW)
			sorted[j++] = (struct by_size){ rows[i].row.bytes_after, i };
	qsort(sorted, nnew, sizeof(*sorted), by_size_cmp);
	for (size_t i = 0; i < nnew; i++)
		order[i] = sorted[i].index;
	free(sorted);
	int r = 0;
	for (int rung = LD_MATCH_OFFSET; rung <= LD_MATCH_FUNCTION && r == 0 && nnew; rung++) {
		k->rung = rung;
		struct ld_hashmap gone;
		ld_hashmap_init(&gone);
		for (size_t i = 0; i < count && r == 0; i++) {
			if (rows[i].state == LD_DIFF_GONE && !dead[i]) {
				uint64_t h = stack_hash(k, &rows[i].stack);
				if (keys)
					h = ld_hash_mix(h, ld_hash_bytes(keys[i], strlen(keys[i])));
				r = ld_hashmap_insert(&gone, h, (uint32_t)i);
			}
		}
		for (size_t o = 0; o < nnew && r == 0 && gone.len; o++) {
			struct ld_diff_site *nw = &rows[order[o]];
			if (nw->state != LD_DIFF_NEW)
				continue;
			uint64_t h = stack_hash(k, &nw->stack);
			if (keys)
				h = ld_hash_mix(h, ld_hash_bytes(keys[order[o]], strlen(keys[order[o]])));
			struct ld_hashmap_iter it = LD_HASHMAP_ITER(h);
			uint32_t g, found = NOID;
			/* The earliest gone row that fits, whatever order the index holds them in. */
			while (ld_hashmap_next(&gone, &it, &g)) {
				if (g < found && !dead[g] && (!keys || strcmp(keys[g], keys[order[o]]) == 0) &&
				    stack_equal(k, &nw->stack, &rows[g].stack))
					found = g;
			}
			if (found != NOID) {
				g = found;
				nw->row.bytes_before += rows[g].row.bytes_before;
				nw->row.count_before += rows[g].row.count_before;
				nw->state = LD_DIFF_KEPT;
				nw->match = (enum ld_match)rung;
				dead[g] = true;
			}
		}
		ld_hashmap_finish(&gone);
	}
	k->rung = LD_MATCH_EXACT;
	size_t w = 0;
	for (size_t i = 0; i < count; i++) {
		if (dead[i])
			continue;
		rows[w] = rows[i];
		if (keys)
			keys[w] = keys[i];
		w++;
	}
	*n = w;
	free(dead);
	free(order);
	return r;
}

static int diff_sites(struct ld_diff *d, struct keyer *k, uint32_t max_depth)
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
				uint64_t h = ld_hash_mix(stack_hash(k, &st), 0);
				ld_hashmap_prefetch(&t.index, h);
				ahead[i % AHEAD].hash = h;
				ahead[i % AHEAD].row = UINT32_MAX;
			}
		}
	}
	ld_hashmap_finish(&t.index);
	if (r == 0 && k->opts && k->opts->match == LD_MATCH_GRADED)
		r = graded_pass(k, t.rows, &t.n, NULL);
	if (r < 0) {
		free(t.rows);
		return r;
	}
	d->sites = sort_sites(k, t.rows, t.n);
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
	if (type_find(t, name, h, &row) == 0) {
		row_add(&t->rows[row].row, after, ty->count, ty->bytes);
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
	d->state = merge_state(LD_DIFF_KEPT, true, after);
	row_add(&d->row, after, ty->count, ty->bytes);
	return 0;
}

static int type_cmp(const void *a, const void *b)
{
	const struct ld_diff_type *x = a, *y = b;
	int c = growth_compare(&x->row, &y->row);
	return c ? c : strcmp(x->name, y->name);
}

/* A type site row tagged with the type row it belongs to, for grouping. */
struct tagged_site {
	size_t type_row;
	struct ld_diff_site site;
};

static int tagged_cmp(const void *a, const void *b)
{
	const struct tagged_site *x = a, *y = b;
	if (x->type_row != y->type_row)
		return x->type_row < y->type_row ? -1 : 1;
	return site_cmp(&x->site, &y->site);
}

static int diff_type_sites(struct ld_diff *d, struct keyer *kr, struct type_table *types, uint32_t max_depth)
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
		r = graded_pass(kr, t.rows, &t.n, keys);

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
	sort_keyer = kr;
	qsort(tagged, t.n, sizeof(*tagged), tagged_cmp);
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

static int diff_types(struct ld_diff *d, struct keyer *k, uint32_t max_depth)
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
	qsort(rows, n, sizeof(*rows), hint_cmp);
	d->hints = rows;
	d->nhints = n;
	return 0;
}

const struct ld_diff_type *ld_diff_suspect(const struct ld_diff *d, uint64_t min_bytes)
{
	for (size_t i = 0; i < d->ntypes; i++) {
		const struct ld_diff_type *t = &d->types[i];
		if (ld_diff_count_delta(&t->row) > 0 && strchr(t->name, '.') &&
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
	struct keyer k;
	int r = keyer_init(&k, after, before, opts);
	if (r == 0)
		r = diff_sites(d, &k, opts->depth);
	if (r == 0)
		r = diff_types(d, &k, opts->depth);
	if (r == 0)
		r = diff_hints(d);
	keyer_finish(&k);
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
	free(d);
}
