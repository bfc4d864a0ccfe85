/*
 * The JSON report (format "leakdiff-diff" or "leakdiff-show", version 1),
 * documented in leakdiff-diff(1). Built as a cJSON tree and printed
 * indented; strings are made valid UTF-8 first and cJSON escapes controls.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "fixes.h"
#include "frames.h"
#include "report.h"
#include "report_common.h"
#include "snap.h"
#include "blind.h"
#include "tidy.h"

struct jctx {
	const struct ld_report_opts *o;
	bool oom;
	uint32_t intervals;
};

static cJSON *check(struct jctx *j, cJSON *v)
{
	if (!v)
		j->oom = true;
	return v;
}

static void add(struct jctx *j, cJSON *obj, const char *key, cJSON *v)
{
	if (!v || !obj) {
		j->oom = true;
		cJSON_Delete(v);
		return;
	}
	if (cJSON_IsArray(obj))
		cJSON_AddItemToArray(obj, v);
	else
		cJSON_AddItemToObject(obj, key, v);
}

static void add_str(struct jctx *j, cJSON *obj, const char *key, const char *s)
{
	char *safe = ld_escape_dup(s, LD_ESCAPE_UTF8);
	if (!safe) {
		j->oom = true;
		return;
	}
	add(j, obj, key, cJSON_CreateString(safe));
	free(safe);
}

static void add_num(struct jctx *j, cJSON *obj, const char *key, double v)
{
	add(j, obj, key, cJSON_CreateNumber(v));
}

static void add_row(struct jctx *j, cJSON *obj, const struct ld_diff_row *r, const char *bytes, const char *count)
{
	char k[32];
	snprintf(k, sizeof(k), "%s_before", bytes);
	add_num(j, obj, k, (double)r->bytes_before);
	snprintf(k, sizeof(k), "%s_after", bytes);
	add_num(j, obj, k, (double)r->bytes_after);
	snprintf(k, sizeof(k), "%s_delta", bytes);
	add_num(j, obj, k, (double)ld_diff_bytes_delta(r));
	snprintf(k, sizeof(k), "%s_before", count);
	add_num(j, obj, k, (double)r->count_before);
	snprintf(k, sizeof(k), "%s_after", count);
	add_num(j, obj, k, (double)r->count_after);
	snprintf(k, sizeof(k), "%s_delta", count);
	add_num(j, obj, k, (double)ld_diff_count_delta(r));
}

/*
 * Trends: in which steps a row grew, one boolean per step, and by how many
 * bytes it changed in each (up to 64 steps, as the diff keeps).
 */
static void add_steps(struct jctx *j, cJSON *obj, uint32_t grew_in, uint64_t mask, const int64_t *steps)
{
	add_num(j, obj, "grew_in", grew_in);
	if (j->intervals > 64)
		return;
	cJSON *a = check(j, cJSON_CreateArray());
	for (uint32_t i = 0; a && i < j->intervals; i++)
		add(j, a, NULL, cJSON_CreateBool((mask >> i) & 1));
	add(j, obj, "grew", a);
	if (!steps)
		return;
	a = check(j, cJSON_CreateArray());
	for (uint32_t i = 0; a && i < j->intervals; i++)
		add(j, a, NULL, cJSON_CreateNumber((double)steps[i]));
	add(j, obj, "steps", a);
}

static cJSON *frames_json(struct jctx *j, const struct ld_diff_stack *st)
{
	cJSON *a = check(j, cJSON_CreateArray());
	for (uint32_t i = 0; a && i < st->depth; i++) {
		const struct ld_frame *f = ld_diff_frame(st, i);
		cJSON *o = check(j, cJSON_CreateObject());
		add_str(j, o, "function", ld_snapshot_str(st->snap, f->function));
		add_str(j, o, "file", ld_snapshot_str(st->snap, f->file));
		if (!ld_report_no_line(st->snap, f)) /* absent when unknown, rather than 0 */
			add_num(j, o, "line", f->line);
		if (f->function_line >= 0)
			add_num(j, o, "function_line", f->function_line);
		if (f->text != LD_NOSTR)
			add_str(j, o, "text", ld_snapshot_str(st->snap, f->text));
		/* Only what the file said: reports of older snapshots stay as they were. */
		if (f->kind != LD_FRAME_UNKNOWN)
			add_str(j, o, "kind", ld_snapshot_str(st->snap, f->kind_name));
		if (ld_frame_is_unresolved(st->snap, f))
			add(j, o, "unresolved", check(j, cJSON_CreateTrue()));
		if (ld_frame_is_interpreter(st->snap, f))
			add(j, o, "interpreter", check(j, cJSON_CreateTrue()));
		add(j, a, NULL, o);
	}
	return a;
}

/* A site as JSON; show reports carry only the live figures. */
static cJSON *site_json(struct jctx *j, const struct ld_diff_site *s, bool show)
{
	cJSON *o = check(j, cJSON_CreateObject());
	add(j, o, "frames", frames_json(j, &s->stack));
	if (show) {
		add_num(j, o, "bytes", (double)s->row.bytes_after);
		add_num(j, o, "count", (double)s->row.count_after);
	} else {
		add_str(j, o, "state", ld_diff_state_name(s->state));
		if (s->state == LD_DIFF_KEPT)
			add_str(j, o, "match", ld_diff_match_name(s->match));
		add_row(j, o, &s->row, "bytes", "count");
		if (j->intervals > 1)
			add_steps(j, o, s->grew_in, s->grew_mask, s->steps);
	}
	int caller = ld_report_caller(&s->stack);
	if (caller > 0)
		add_num(j, o, "caller", caller);
	return o;
}

static cJSON *snapshot_ref(struct jctx *j, const char *path, const struct ld_snapshot *s)
{
	cJSON *o = check(j, cJSON_CreateObject());
	add_str(j, o, "path", path ? path : "");
	struct ld_buf b;
	ld_buf_init(&b);
	ld_snap_put_meta(&b, &s->meta);
	cJSON *meta = b.oom ? NULL : cJSON_ParseWithLength(b.data, b.len);
	ld_buf_finish(&b);
	add(j, o, "meta", meta);
	return o;
}

static cJSON *types_json(struct jctx *j, const struct ld_diff *d, bool show)
{
	cJSON *a = check(j, cJSON_CreateArray());
	size_t shown = ld_report_count_types(d->types, d->ntypes, j->o, NULL), n = 0;
	for (size_t i = 0; a && i < d->ntypes && n < shown; i++) {
		const struct ld_diff_type *t = &d->types[i];
		if (!ld_diff_type_shown(t, j->o->min_bytes))
			continue;
		n++;
		cJSON *o = check(j, cJSON_CreateObject());
		add_str(j, o, "name", t->name);
		if (show) {
			add_num(j, o, "bytes", (double)t->row.bytes_after);
			add_num(j, o, "count", (double)t->row.count_after);
		} else {
			add_str(j, o, "state", ld_diff_state_name(t->state));
			add_row(j, o, &t->row, "bytes", "count");
			if (d->intervals > 1)
				add_steps(j, o, t->grew_in, t->grew_mask, t->steps);
		}
		cJSON *sites = check(j, cJSON_CreateArray());
		size_t ns = 0;
		for (size_t k = 0; sites && k < t->nsites && ns < j->o->type_sites; k++) {
			const struct ld_diff_row *sr = &t->sites[k].row;
			if (t->sites[k].suppressed)
				continue;
			/* Under a type, the sites that explain its growth (as in text). */
			if (show ? !sr->count_after : ld_diff_count_delta(sr) <= 0 && ld_diff_bytes_delta(sr) <= 0)
				continue;
			ns++;
			add(j, sites, NULL, site_json(j, &t->sites[k], show));
		}
		add(j, o, "sites", sites);
		add(j, a, NULL, o);
	}
	return a;
}

static cJSON *sites_json(struct jctx *j, const struct ld_diff *d, bool show)
{
	cJSON *a = check(j, cJSON_CreateArray());
	size_t shown = ld_report_count_sites(d->sites, d->nsites, j->o, j->o->top, NULL), n = 0;
	for (size_t i = 0; a && i < d->nsites && n < shown; i++) {
		if (!ld_diff_site_shown(&d->sites[i], j->o->min_bytes))
			continue;
		n++;
		add(j, a, NULL, site_json(j, &d->sites[i], show));
	}
	return a;
}

static cJSON *hints_json(struct jctx *j, const struct ld_diff *d, bool show)
{
	cJSON *a = check(j, cJSON_CreateArray());
	for (size_t i = 0; a && i < d->nhints; i++) {
		const struct ld_diff_hint *h = &d->hints[i];
		if (show ? !h->after && h->kind != LD_HINT_PATH : !ld_report_hint_shown(h))
			continue;
		cJSON *o = check(j, cJSON_CreateObject());
		add_str(j, o, "kind", ld_hint_kind_name(h->kind));
		if (*h->name)
			add_str(j, o, "name", h->name);
		if (*h->type)
			add_str(j, o, "type", h->type);
		if (h->kind == LD_HINT_LRU_CACHE)
			add(j, o, "maxsize", h->maxsize < 0 ? cJSON_CreateNull() : cJSON_CreateNumber((double)h->maxsize));
		const char *fix = ld_hint_fix(d, h, show);
		if (fix)
			add_str(j, o, "fix", fix);
		if (h->kind == LD_HINT_PATH) {
			cJSON *p = check(j, cJSON_CreateArray());
			for (uint32_t k = 0; p && k < h->path_len; k++)
				add_str(j, p, NULL, ld_snapshot_str(h->path_snap, h->path[k]));
			add(j, o, "path", p);
		} else if (show) {
			add_num(j, o, "value", (double)h->after);
		} else {
			add_str(j, o, "state", ld_diff_state_name(h->state));
			add_num(j, o, "before", (double)h->before);
			add_num(j, o, "after", (double)h->after);
			add_num(j, o, "delta", (double)((int64_t)h->after - (int64_t)h->before));
		}
		add(j, a, NULL, o);
	}
	return a;
}

static int print(struct jctx *j, cJSON *root, FILE *out)
{
	if (j->oom) {
		cJSON_Delete(root);
		return -ENOMEM;
	}
	char *text = cJSON_Print(root);
	cJSON_Delete(root);
	if (!text)
		return -ENOMEM;
	struct ld_buf b;
	ld_buf_init(&b);
	ld_escape_json_text(&b, text);
	cJSON_free(text);
	ld_buf_putc(&b, '\n');
	return ld_report_write(out, &b);
}

static cJSON *verdict_json(struct jctx *j, const struct ld_diff *d)
{
	const struct ld_verdict *v = j->o->verdict;
	const struct ld_limits *lim = j->o->limits;
	cJSON *o = check(j, cJSON_CreateObject());
	bool checked = v && v->checked;
	add(j, o, "checked", cJSON_CreateBool(checked));
	add(j, o, "passed", cJSON_CreateBool(ld_verdict_passed(v)));
	if (v) {
		add_str(j, o, "measure", v->heap ? "heap" : "objects");
		add_num(j, o, "total_delta", (double)v->total_delta);
	}
	cJSON *limits = check(j, cJSON_CreateObject());
	if (lim && lim->total) {
		if (lim->total_is_percent)
			add_num(j, limits, "max_total_growth_percent", lim->total_percent);
		else
			add_num(j, limits, "max_total_growth", (double)lim->total_bytes);
	}
	if (lim && lim->site)
		add_num(j, limits, "max_site_growth", (double)lim->site_bytes);
	if (lim && lim->type)
		add_num(j, limits, "max_type_growth", (double)lim->type_count);
	add(j, o, "limits", limits);
	add_num(j, o, "suppressed", (double)j->o->suppressed);
	cJSON *hits = check(j, cJSON_CreateArray());
	for (size_t i = 0; v && i < v->nhits; i++) {
		const struct ld_limit_hit *h = &v->hits[i];
		cJSON *ho = check(j, cJSON_CreateObject());
		add_str(j, ho, "limit", ld_report_limit_option(h->kind));
		add_num(j, ho, "value", (double)h->value);
		if (h->kind == LD_LIMIT_TOTAL && h->percent >= 0)
			add_num(j, ho, "percent", h->percent);
		if (h->site)
			add(j, ho, "site", site_json(j, h->site, false));
		if (h->type)
			add_str(j, ho, "type", h->type->name);
		struct ld_buf b;
		ld_buf_init(&b);
		ld_report_limit_text(&b, h, lim, v, LD_ESCAPE_UTF8);
		add_str(j, ho, "message", b.data ? b.data : "");
		j->oom |= b.oom;
		ld_buf_finish(&b);
		add(j, hits, NULL, ho);
	}
	add(j, o, "exceeded", hits);
	(void)d;
	return o;
}

static const char *by_name(enum ld_report_by by)
{
	return by == LD_REPORT_TYPES ? "type" : by == LD_REPORT_SITES ? "site" : "all";
}

static cJSON *options_json(struct jctx *j)
{
	cJSON *o = check(j, cJSON_CreateObject());
	add_num(j, o, "top", (double)j->o->top);
	add_num(j, o, "min_bytes", (double)j->o->min_bytes);
	add_num(j, o, "depth", j->o->depth);
	add_str(j, o, "by", by_name(j->o->by));
	add_str(j, o, "match", j->o->match == LD_MATCH_ONLY_EXACT ? "exact"
			       : j->o->match == LD_MATCH_BY_FUNCTION ? "function" : "graded");
	return o;
}

static cJSON *diff_tree(struct jctx *jp, const struct ld_diff *d, const struct ld_report_opts *o)
{
	struct jctx j = *jp;
	cJSON *root = check(&j, cJSON_CreateObject());
	add_str(&j, root, "format", "leakdiff-diff");
	add_num(&j, root, "version", 1);
	add_num(&j, root, "snapshots", (double)(o->nsnapshots ? o->nsnapshots : 2));
	add_num(&j, root, "intervals", d->intervals);
	add(&j, root, "before", snapshot_ref(&j, o->before_path, d->before));
	add(&j, root, "after", snapshot_ref(&j, o->after_path, d->after));
	add(&j, root, "options", options_json(&j));
	add(&j, root, "verdict", verdict_json(&j, d));
	cJSON *total = check(&j, cJSON_CreateObject());
	add_row(&j, total, &d->heap, "bytes", "count");
	add(&j, root, "total", total);
	cJSON *objects = check(&j, cJSON_CreateObject());
	add_row(&j, objects, &d->objects, "bytes", "count");
	add(&j, root, "objects", objects);
	struct ld_diff_row native_row;
	if (ld_report_native_row(d, &native_row)) {
		cJSON *native = check(&j, cJSON_CreateObject());
		add_row(&j, native, &native_row, "bytes", "count");
		add(&j, root, "native", native);
	}
	size_t ntypes, nsites;
	ld_report_count_types(d->types, d->ntypes, o, &ntypes);
	ld_report_count_sites(d->sites, d->nsites, o, o->top, &nsites);
	const struct ld_diff_type *sus = ld_diff_suspect(d, o->min_bytes);
	if (sus) {
		cJSON *so = check(&j, cJSON_CreateObject());
		add_str(&j, so, "type", sus->name);
		add_num(&j, so, "bytes_delta", (double)ld_diff_bytes_delta(&sus->row));
		add_num(&j, so, "count_delta", (double)ld_diff_count_delta(&sus->row));
		for (size_t k = 0; k < sus->nsites; k++) {
			if (ld_diff_count_delta(&sus->sites[k].row) > 0 && !sus->sites[k].suppressed) {
				add(&j, so, "site", site_json(&j, &sus->sites[k], false));
				break;
			}
		}
		add(&j, root, "suspect", so);
	} else {
		add(&j, root, "suspect", cJSON_CreateNull());
	}
	add_num(&j, root, "types_changed", (double)ntypes);
	add_num(&j, root, "sites_changed", (double)nsites);
	add(&j, root, "types", o->by == LD_REPORT_SITES ? cJSON_CreateArray() : types_json(&j, d, false));
	add(&j, root, "sites", o->by == LD_REPORT_TYPES ? cJSON_CreateArray() : sites_json(&j, d, false));
	add(&j, root, "hints", hints_json(&j, d, false));
	add(&j, root, "freed_at_exit", cJSON_CreateBool(ld_diff_freed_at_exit(d)));
	struct ld_blind blind;
	if (ld_blind_check(d->before, d->after, &blind)) {
		cJSON *bo = check(&j, cJSON_CreateObject());
		add_num(&j, bo, "bytes", (double)blind.unexplained);
		add_num(&j, bo, "malloc_delta", (double)blind.malloc_delta);
		add_num(&j, bo, "heap_delta", (double)blind.heap_delta);
		add_str(&j, bo, "record_with", "--native");
		add(&j, root, "native_unexplained", bo);
	}
	jp->oom = j.oom;
	return root;
}

int ld_report_diff_json(FILE *out, const struct ld_diff *d, const struct ld_report_opts *o)
{
	struct jctx j = { .o = o, .intervals = d->intervals };
	cJSON *root = diff_tree(&j, d, o);
	return print(&j, root, out);
}

static cJSON *show_tree(struct jctx *jp, const struct ld_diff *d, const struct ld_report_opts *o)
{
	struct jctx j = *jp;
	const struct ld_snapshot *s = d->after;
	cJSON *root = check(&j, cJSON_CreateObject());
	add_str(&j, root, "format", "leakdiff-show");
	add_num(&j, root, "version", 1);
	add(&j, root, "snapshot", snapshot_ref(&j, o->after_path, s));
	add(&j, root, "options", options_json(&j));
	cJSON *tot = check(&j, cJSON_CreateObject());
	add_num(&j, tot, "heap_bytes", (double)s->totals.heap_bytes);
	add_num(&j, tot, "heap_blocks", (double)s->totals.heap_blocks);
	add_num(&j, tot, "objects", (double)s->totals.objects);
	add_num(&j, tot, "object_bytes", (double)s->totals.object_bytes);
	if (s->totals.has_native) {
		add_num(&j, tot, "native_bytes", (double)s->totals.native_bytes);
		add_num(&j, tot, "native_blocks", (double)s->totals.native_blocks);
	}
	add(&j, root, "totals", tot);
	if (s->gc.present) {
		cJSON *gc = check(&j, cJSON_CreateObject());
		add_num(&j, gc, "collected", (double)s->gc.collected);
		add_num(&j, gc, "uncollectable", (double)s->gc.uncollectable);
		add_num(&j, gc, "garbage", (double)s->gc.garbage);
		add(&j, root, "gc", gc);
	}
	add(&j, root, "types", o->by == LD_REPORT_SITES ? cJSON_CreateArray() : types_json(&j, d, true));
	add(&j, root, "sites", o->by == LD_REPORT_TYPES ? cJSON_CreateArray() : sites_json(&j, d, true));
	add(&j, root, "hints", hints_json(&j, d, true));
	jp->oom = j.oom;
	return root;
}

int ld_report_show_json(FILE *out, const struct ld_diff *d, const struct ld_report_opts *o)
{
	struct jctx j = { .o = o };
	cJSON *root = show_tree(&j, d, o);
	return print(&j, root, out);
}

int ld_report_json_tree(const struct ld_diff *d, const struct ld_report_opts *o, bool show, cJSON **out)
{
	struct jctx j = { .o = o, .intervals = show ? 0 : d->intervals };
	cJSON *root = show ? show_tree(&j, d, o) : diff_tree(&j, d, o);
	if (j.oom || !root) {
		cJSON_Delete(root);
		*out = NULL;
		return -ENOMEM;
	}
	*out = root;
	return 0;
}
