/*
 * The differential flame graph's tree; see flame.h. Built in one pass over
 * the diff's sites, each walked from its outermost frame in, with a hash
 * index from (parent, frame) to node so that a diff of 100k sites costs a
 * lookup per frame rather than a scan of siblings.
 */
#include "flame.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "frames.h"
#include "report_common.h"

/* What the page shows for a run of interpreter frames. */
static const char interpreter_name[] = "(Python interpreter)";

static const char *frame_function(const struct ld_flame_node *n, size_t *len)
{
	const struct ld_frame *f = &n->snap->frames[n->frame];
	*len = ld_frame_function_len(n->snap, f);
	return ld_snapshot_str(n->snap, f->function);
}

static const char *frame_file(const struct ld_flame_node *n)
{
	const struct ld_frame *f = &n->snap->frames[n->frame];
	return ld_report_short_path(n->snap, ld_snapshot_str(n->snap, f->file));
}

/*
 * What is known of each frame of the diff's two snapshots, worked out the
 * first time a site passes through it: a diff of 100k sites 16 deep
 * walks 1.6M frames, but only the frames of the snapshots' tables (a tenth
 * of that or less) are ever hashed or matched against the interpreter.
 */
struct frame_memo {
	const struct ld_snapshot *s;
	uint64_t *hash;    /* function and short file name; 0 when not worked out yet */
	uint8_t *interp;   /* 0 not worked out, 1 a frame of the program's, 2 the interpreter's */
};

struct builder {
	struct ld_flame *f;
	struct frame_memo memo[2];
};

static uint64_t compute_hash(const struct ld_snapshot *s, uint32_t frame)
{
	struct ld_flame_node n = { .snap = s, .frame = frame };
	size_t len;
	const char *fn = frame_function(&n, &len);
	const char *file = frame_file(&n);
	uint64_t h = ld_hash_mix(ld_hash_bytes(fn, len), ld_hash_bytes(file, strlen(file)));
	return h | 1;
}

static struct frame_memo *memo_of(struct builder *b, const struct ld_snapshot *s)
{
	for (int i = 0; i < 2; i++)
		if (b->memo[i].s == s && b->memo[i].hash)
			return &b->memo[i];
	return NULL;
}

static uint64_t frame_hash(struct builder *b, const struct ld_snapshot *s, uint32_t frame)
{
	struct frame_memo *m = memo_of(b, s);
	if (!m)
		return compute_hash(s, frame);
	if (!m->hash[frame])
		m->hash[frame] = compute_hash(s, frame);
	return m->hash[frame];
}

static bool is_interpreter(struct builder *b, const struct ld_snapshot *s, uint32_t frame)
{
	struct frame_memo *m = memo_of(b, s);
	if (!m)
		return ld_frame_in_python_runtime(s, &s->frames[frame]);
	if (!m->interp[frame])
		m->interp[frame] = ld_frame_in_python_runtime(s, &s->frames[frame]) ? 2 : 1;
	return m->interp[frame] == 2;
}

/* The hash of a child of parent: the frame as a flame graph names it, or the folded run. */
static uint64_t key_hash(struct builder *b, uint32_t parent, const struct ld_flame_node *probe)
{
	uint64_t h = ld_hash_mix(0x666c616d65ULL, parent);
	return ld_hash_mix(h, probe->folded ? 1 : frame_hash(b, probe->snap, probe->frame));
}

static bool same_key(const struct ld_flame_node *a, const struct ld_flame_node *b)
{
	if (a->parent != b->parent || !a->folded != !b->folded)
		return false;
	if (a->folded || (a->snap == b->snap && a->frame == b->frame))
		return true;
	size_t la, lb;
	const char *fa = frame_function(a, &la), *fb = frame_function(b, &lb);
	return la == lb && memcmp(fa, fb, la) == 0 && strcmp(frame_file(a), frame_file(b)) == 0;
}

static int push(struct ld_flame *f, const struct ld_flame_node *n, uint32_t *idx)
{
	if (f->n >= UINT32_MAX - 1)
		return -E2BIG;
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 256;
		struct ld_flame_node *v = realloc(f->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		f->v = v;
		f->cap = cap;
	}
	f->v[f->n] = *n;
	*idx = (uint32_t)f->n++;
	return 0;
}

/* The child of parent that probe names, made when there is none yet. */
static int child_of(struct builder *b, uint32_t parent, struct ld_flame_node *probe, uint32_t *out)
{
	struct ld_flame *f = b->f;
	probe->parent = parent;
	uint64_t h = key_hash(b, parent, probe);
	struct ld_hashmap_iter it = LD_HASHMAP_ITER(h);
	uint32_t v;
	while (ld_hashmap_next(&f->index, &it, &v)) {
		if (same_key(&f->v[v], probe)) {
			*out = v;
			return 0;
		}
	}
	probe->child = probe->next = probe->last = LD_FLAME_NONE;
	probe->loosest = -1;
	uint32_t idx;
	int rc = push(f, probe, &idx);
	if (rc)
		return rc;
	rc = ld_hashmap_insert(&f->index, h, idx);
	if (rc) {
		f->n--;
		return rc;
	}
	/* Appended, so that siblings keep the order of the sites (largest growth first). */
	struct ld_flame_node *p = &f->v[parent];
	if (p->child == LD_FLAME_NONE)
		p->child = idx;
	else
		f->v[p->last].next = idx;
	p->last = idx;
	*out = idx;
	return 0;
}

static void account(struct ld_flame_node *n, const struct ld_diff_site *s)
{
	n->before += s->row.bytes_before;
	n->after += s->row.bytes_after;
	n->count_before += s->row.count_before;
	n->count_after += s->row.count_after;
	int64_t d = ld_diff_bytes_delta(&s->row);
	if (d > 0)
		n->growth += (uint64_t)d;
	n->sites++;
	if (s->state == LD_DIFF_KEPT && (int)s->match > n->loosest)
		n->loosest = (int)s->match;
}

static int build(struct builder *b, const struct ld_diff *d)
{
	struct ld_flame *f = b->f;
	struct ld_flame_node root = { .parent = LD_FLAME_NONE, .child = LD_FLAME_NONE, .next = LD_FLAME_NONE,
				      .last = LD_FLAME_NONE, .loosest = -1 };
	uint32_t r;
	int rc = push(f, &root, &r);
	if (rc)
		return rc;
	for (size_t i = 0; i < d->nsites; i++) {
		const struct ld_diff_site *s = &d->sites[i];
		if (s->suppressed)
			continue;
		const struct ld_diff_stack *st = &s->stack;
		uint32_t at = 0;
		account(&f->v[0], s);
		for (uint32_t k = st->depth; k-- > 0;) {
			const struct ld_frame *fr = ld_diff_frame(st, k);
			struct ld_flame_node probe = { .snap = st->snap, .frame = st->frames[k] };
			if (is_interpreter(b, st->snap, st->frames[k])) {
				uint32_t run = 1;
				while (k > 0 && is_interpreter(b, st->snap, st->frames[k - 1])) {
					k--;
					run++;
				}
				probe.folded = run;
			}
			rc = child_of(b, at, &probe, &at);
			if (rc)
				return rc;
			struct ld_flame_node *n = &f->v[at];
			if (probe.folded > n->folded)
				n->folded = probe.folded;
			else if (!probe.folded && n->snap->frames[n->frame].line != fr->line)
				n->lines = true;
			account(n, s);
		}
	}
	return 0;
}

int ld_flame_build(struct ld_flame *f, const struct ld_diff *d)
{
	memset(f, 0, sizeof(*f));
	ld_hashmap_init(&f->index);
	struct builder b = { .f = f };
	const struct ld_snapshot *snaps[2] = { d->before, d->after };
	int rc = 0;
	for (int i = 0; i < 2 && !rc; i++) {
		const struct ld_snapshot *s = snaps[i];
		if (!s || !s->nframes || (i == 1 && s == snaps[0]))
			continue;
		b.memo[i].s = s;
		b.memo[i].hash = calloc(s->nframes, sizeof(*b.memo[i].hash));
		b.memo[i].interp = calloc(s->nframes, 1);
		if (!b.memo[i].hash || !b.memo[i].interp)
			rc = -ENOMEM;
	}
	if (!rc)
		rc = build(&b, d);
	for (int i = 0; i < 2; i++) {
		free(b.memo[i].hash);
		free(b.memo[i].interp);
	}
	return rc;
}

void ld_flame_finish(struct ld_flame *f)
{
	free(f->v);
	ld_hashmap_finish(&f->index);
	memset(f, 0, sizeof(*f));
}

static const char *const columns[] = {
	"parent", "name", "file", "line", "text", "kind", "folded", "before", "after",
	"count_before", "count_after", "growth", "sites", "match", "lines",
};

struct emit {
	cJSON *nodes;
	bool oom;
};

static void add(struct emit *e, cJSON *arr, cJSON *v)
{
	if (!v) {
		e->oom = true;
		return;
	}
	cJSON_AddItemToArray(arr, v);
}

static void add_str(struct emit *e, cJSON *arr, const char *s, size_t len)
{
	char *tmp = malloc(len + 1);
	if (!tmp) {
		e->oom = true;
		return;
	}
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	char *safe = ld_escape_dup(tmp, LD_ESCAPE_UTF8);
	free(tmp);
	if (!safe) {
		e->oom = true;
		return;
	}
	add(e, arr, cJSON_CreateString(safe));
	free(safe);
}

static void add_num(struct emit *e, cJSON *arr, double v)
{
	add(e, arr, cJSON_CreateNumber(v));
}

/* Appends one row; n == NULL with sums makes the "(N smaller)" row. */
static int emit_row(struct emit *e, int parent, const struct ld_flame_node *n, size_t smaller,
		    const struct ld_flame_node *sums)
{
	cJSON *row = cJSON_CreateArray();
	if (!row) {
		e->oom = true;
		return -1;
	}
	add_num(e, row, parent);
	const struct ld_flame_node *v = n ? n : sums;
	if (!n || !n->snap) {
		char name[48];
		if (n)
			snprintf(name, sizeof(name), "all");
		else
			snprintf(name, sizeof(name), "(%zu smaller)", smaller);
		add_str(e, row, name, strlen(name));
		add_str(e, row, "", 0);
		add_num(e, row, 0);
		add(e, row, cJSON_CreateNull());
		add_str(e, row, "", 0);
		add_num(e, row, 0);
	} else if (n->folded) {
		add_str(e, row, interpreter_name, strlen(interpreter_name));
		add_str(e, row, "", 0);
		add_num(e, row, 0);
		add(e, row, cJSON_CreateNull());
		add_str(e, row, "native", 6);
		add_num(e, row, n->folded);
	} else {
		const struct ld_frame *fr = &n->snap->frames[n->frame];
		size_t len;
		const char *fn = frame_function(n, &len);
		add_str(e, row, fn, len);
		const char *file = frame_file(n);
		add_str(e, row, file, strlen(file));
		add_num(e, row, ld_report_no_line(n->snap, fr) ? 0 : fr->line);
		if (fr->text != LD_NOSTR) {
			const char *t = ld_snapshot_str(n->snap, fr->text);
			add_str(e, row, t, strlen(t));
		} else {
			add(e, row, cJSON_CreateNull());
		}
		const char *kind = ld_frame_kind_name(ld_frame_effective_kind(n->snap, fr));
		add_str(e, row, kind, strlen(kind));
		add_num(e, row, 0);
	}
	add_num(e, row, (double)v->before);
	add_num(e, row, (double)v->after);
	add_num(e, row, (double)v->count_before);
	add_num(e, row, (double)v->count_after);
	add_num(e, row, (double)v->growth);
	add_num(e, row, v->sites);
	if (v->loosest >= 0)
		add_str(e, row, ld_diff_match_name((enum ld_match)v->loosest),
			strlen(ld_diff_match_name((enum ld_match)v->loosest)));
	else
		add(e, row, cJSON_CreateNull());
	add(e, row, cJSON_CreateBool(n && n->lines));
	int idx = cJSON_GetArraySize(e->nodes);
	cJSON_AddItemToArray(e->nodes, row);
	return idx;
}

static uint64_t weight(const struct ld_flame_node *n)
{
	return n->after > n->growth ? n->after : n->growth;
}

cJSON *ld_flame_json(const struct ld_flame *f, double min_share)
{
	struct emit e = { 0 };
	cJSON *o = cJSON_CreateObject();
	cJSON *cols = cJSON_CreateArray();
	e.nodes = cJSON_CreateArray();
	if (!o || !cols || !e.nodes) {
		cJSON_Delete(o);
		cJSON_Delete(cols);
		cJSON_Delete(e.nodes);
		return NULL;
	}
	cJSON_AddItemToObject(o, "columns", cols);
	cJSON_AddItemToObject(o, "nodes", e.nodes);
	for (size_t i = 0; i < sizeof(columns) / sizeof(columns[0]); i++)
		add(&e, cols, cJSON_CreateString(columns[i]));
	if (!f->n)
		return o;
	double limit = min_share * (double)weight(&f->v[0]);
	/* Depth-first with a stack of its own: tracebacks in a hostile file may be very deep. */
	struct pending {
		uint32_t node;
		int parent;
	} *stack = malloc(f->n * sizeof(*stack));
	if (!stack) {
		cJSON_Delete(o);
		return NULL;
	}
	size_t top = 0;
	stack[top++] = (struct pending){ 0, -1 };
	while (top && !e.oom) {
		struct pending p = stack[--top];
		const struct ld_flame_node *n = &f->v[p.node];
		int me = emit_row(&e, p.parent, n, 0, NULL);
		if (me < 0)
			break;
		struct ld_flame_node sums = { .loosest = -1 };
		size_t smaller = 0, first = top;
		for (uint32_t c = n->child; c != LD_FLAME_NONE; c = f->v[c].next) {
			const struct ld_flame_node *k = &f->v[c];
			if (!weight(k) || (double)weight(k) < limit) {
				smaller++;
				sums.before += k->before;
				sums.after += k->after;
				sums.count_before += k->count_before;
				sums.count_after += k->count_after;
				sums.growth += k->growth;
				sums.sites += k->sites;
				if (k->loosest > sums.loosest)
					sums.loosest = k->loosest;
			} else {
				stack[top++] = (struct pending){ c, me };
			}
		}
		/* Popped last-in first: reverse so that children come out in order. */
		for (size_t a = first, b = top; a + 1 < b; a++, b--) {
			struct pending t = stack[a];
			stack[a] = stack[b - 1];
			stack[b - 1] = t;
		}
		if (smaller)
			emit_row(&e, me, NULL, smaller, &sums);
	}
	free(stack);
	if (e.oom) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}
