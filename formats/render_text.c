/*
 * The text report: aligned columns, human sizes, the allocating line as
 * "file:line in function", colour only when asked for. Names are escaped
 * for the terminal before they are measured or printed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "escape.h"
#include "report.h"
#include "report_common.h"
#include "units.h"

#define BOLD "\033[1m"
#define DIM "\033[2m"
#define RED "\033[31m"
#define GREEN "\033[32m"
#define RESET "\033[0m"

struct out {
	struct ld_buf b;
	const struct ld_report_opts *o;
};

static void style(struct out *w, const char *code)
{
	if (w->o->color)
		ld_buf_puts(&w->b, code);
}

static void text(struct out *w, const char *s)
{
	ld_escape_append(&w->b, s, LD_ESCAPE_TEXT);
}

/* A right-aligned signed delta, red for growth and green for shrinkage. */
static void delta_cell(struct out *w, const char *s, int64_t v, int width)
{
	style(w, v > 0 ? RED : v < 0 ? GREEN : "");
	ld_buf_printf(&w->b, "%*s", width, s);
	if (v)
		style(w, RESET);
}


/*
 * The site's headline and, indented below it, what makes it readable;
 * differ >= 0 is the frame that tells it from rows that print alike.
 */
static void stack_text(struct out *w, const struct ld_diff_stack *st, int indent, int differ)
{
	if (!st->depth) {
		ld_buf_puts(&w->b, "(no traceback)\n");
		return;
	}
	ld_report_frame(&w->b, st, 0, LD_ESCAPE_TEXT);
	ld_buf_putc(&w->b, '\n');
	if (w->o->verbose) {
		for (uint32_t i = 1; i < st->depth; i++) {
			ld_buf_printf(&w->b, "%*s", indent + 2, "");
			style(w, DIM);
			ld_report_frame(&w->b, st, i, LD_ESCAPE_TEXT);
			style(w, RESET);
			ld_buf_putc(&w->b, '\n');
		}
		return;
	}
	int caller = ld_report_caller(st);
	if (caller > 0) {
		ld_buf_printf(&w->b, "%*s", indent + 2, "");
		style(w, DIM);
		ld_buf_puts(&w->b, "called from ");
		ld_report_frame(&w->b, st, (uint32_t)caller, LD_ESCAPE_TEXT);
		style(w, RESET);
		ld_buf_putc(&w->b, '\n');
	}
	if (differ > 0 && (uint32_t)differ < st->depth) {
		ld_buf_printf(&w->b, "%*s", indent + 2, "");
		style(w, DIM);
		ld_buf_puts(&w->b, "by way of ");
		ld_report_frame(&w->b, st, (uint32_t)differ, LD_ESCAPE_TEXT);
		style(w, RESET);
		ld_buf_putc(&w->b, '\n');
	}
}

/* new, gone, or "moved" for a site graded matching paired across an edit. */
static const char *state_tag(enum ld_diff_state s, enum ld_match m, enum ld_match_mode mode)
{
	if (s == LD_DIFF_KEPT)
		return m == LD_MATCH_EXACT || mode != LD_MATCH_GRADED ? "" : "moved";
	return s == LD_DIFF_NEW ? "new" : "gone";
}

static void meta_line(struct out *w, const char *which, const char *path, const struct ld_snapshot *s)
{
	const struct ld_meta *m = &s->meta;
	ld_buf_printf(&w->b, "%-7s", which);
	text(w, path);
	if (m->ncommand) {
		ld_buf_puts(&w->b, "  ");
		for (size_t i = 0; i < m->ncommand; i++) {
			if (i)
				ld_buf_putc(&w->b, ' ');
			text(w, m->command[i]);
		}
	}
	ld_buf_puts(&w->b, "  (");
	bool sep = false;
	if (m->pid >= 0) {
		ld_buf_printf(&w->b, "pid %lld", (long long)m->pid);
		sep = true;
	}
	if (m->label && *m->label && !(m->trigger && strcmp(m->label, m->trigger) == 0)) {
		ld_buf_printf(&w->b, "%slabel ", sep ? ", " : "");
		text(w, m->label);
		sep = true;
	}
	if (m->trigger && *m->trigger) {
		ld_buf_puts(&w->b, sep ? ", " : "");
		text(w, m->trigger);
		sep = true;
	}
	if (m->time) {
		ld_buf_puts(&w->b, sep ? ", " : "");
		text(w, m->time);
		sep = true;
	}
	if (m->sample > 0) {
		char sz[32];
		ld_size_format(sz, sizeof(sz), m->sample, false);
		ld_buf_printf(&w->b, "%ssampled every %s: estimates", sep ? ", " : "", sz);
	}
	ld_buf_puts(&w->b, ")\n");
}

static void heading(struct out *w, const char *title, size_t shown, size_t selected, const char *what)
{
	ld_buf_putc(&w->b, '\n');
	style(w, BOLD);
	ld_buf_puts(&w->b, title);
	style(w, RESET);
	if (selected > shown)
		ld_buf_printf(&w->b, " (top %zu of %zu %s)", shown, selected, what);
	else if (selected == 0)
		ld_buf_printf(&w->b, ": no %s", what);
	ld_buf_putc(&w->b, '\n');
}

static void totals_row(struct out *w, const char *name, const struct ld_diff_row *r, bool bytes, bool show)
{
	char a[32], b[32], c[32];
	uint64_t before = bytes ? r->bytes_before : r->count_before;
	uint64_t after = bytes ? r->bytes_after : r->count_after;
	int64_t delta = (int64_t)after - (int64_t)before;
	if (bytes) {
		ld_size_format(a, sizeof(a), (int64_t)before, false);
		ld_size_format(b, sizeof(b), (int64_t)after, false);
		ld_size_format(c, sizeof(c), delta, true);
	} else {
		ld_count_format(a, sizeof(a), (int64_t)before, false);
		ld_count_format(b, sizeof(b), (int64_t)after, false);
		ld_count_format(c, sizeof(c), delta, true);
	}
	if (show) {
		ld_buf_printf(&w->b, "  %-14s %12s\n", name, b);
		return;
	}
	ld_buf_printf(&w->b, "  %-14s %12s %12s ", name, a, b);
	delta_cell(w, c, delta, 12);
	ld_buf_putc(&w->b, '\n');
}

static void totals(struct out *w, const struct ld_diff *d, bool show)
{
	ld_buf_putc(&w->b, '\n');
	style(w, BOLD);
	if (show)
		ld_buf_printf(&w->b, "%-16s %12s\n", "Totals", "live");
	else
		ld_buf_printf(&w->b, "%-16s %12s %12s %12s\n", "Totals", "before", "after", "delta");
	style(w, RESET);
	bool heap = d->heap.count_before || d->heap.count_after || d->heap.bytes_before || d->heap.bytes_after;
	bool objs = d->objects.count_before || d->objects.count_after;
	if (heap) {
		totals_row(w, "heap bytes", &d->heap, true, show);
		totals_row(w, "heap blocks", &d->heap, false, show);
	}
	if (objs) {
		totals_row(w, "objects", &d->objects, false, show);
		totals_row(w, "object bytes", &d->objects, true, show);
	}
	if (!heap && !objs)
		ld_buf_puts(&w->b, "  (empty snapshots)\n");
}

/* One row's number columns: bytes and count deltas, then count before -> after. */
static void row_cells(struct out *w, const struct ld_diff_row *r, const char *tag, bool show)
{
	char a[32], b[32], c[32], e[32];
	if (show) {
		ld_size_format(a, sizeof(a), (int64_t)r->bytes_after, false);
		ld_count_format(b, sizeof(b), (int64_t)r->count_after, false);
		ld_buf_printf(&w->b, "  %11s %11s  ", a, b);
		return;
	}
	int64_t db = ld_diff_bytes_delta(r), dc = ld_diff_count_delta(r);
	ld_size_format(a, sizeof(a), db, true);
	ld_count_format(b, sizeof(b), dc, true);
	ld_count_format(c, sizeof(c), (int64_t)r->count_before, false);
	ld_count_format(e, sizeof(e), (int64_t)r->count_after, false);
	ld_buf_puts(&w->b, "  ");
	delta_cell(w, a, db, 11);
	ld_buf_putc(&w->b, ' ');
	delta_cell(w, b, dc, 10);
	ld_buf_printf(&w->b, " %11s -> %-11s %-5s  ", c, e, tag);
}

#define NAME_COL_DIFF 61
#define NAME_COL_SHOW 29

/* What CI needs first: did the diff stay within the limits it was given? */
static void verdict_text(struct out *w)
{
	const struct ld_verdict *v = w->o->verdict;
	if (!v || !v->checked)
		return;
	ld_buf_putc(&w->b, '\n');
	style(w, BOLD);
	if (ld_verdict_passed(v)) {
		style(w, GREEN);
		ld_buf_puts(&w->b, "Limits: all met");
		style(w, RESET);
		ld_buf_putc(&w->b, '\n');
		return;
	}
	style(w, RED);
	ld_buf_printf(&w->b, "Limits: %zu exceeded", v->nhits);
	style(w, RESET);
	ld_buf_putc(&w->b, '\n');
	for (size_t i = 0; i < v->nhits; i++) {
		ld_buf_puts(&w->b, "  ");
		ld_report_limit_text(&w->b, &v->hits[i], w->o->limits, v, LD_ESCAPE_TEXT);
		ld_buf_putc(&w->b, '\n');
	}
}

/* One line that names the likely leak before the tables explain it. */
static void suspect_line(struct out *w, const struct ld_diff *d)
{
	const struct ld_diff_type *t = ld_diff_suspect(d, w->o->min_bytes);
	char c[32], b[32];
	if (!t)
		return;
	ld_count_format(c, sizeof(c), ld_diff_count_delta(&t->row), true);
	ld_size_format(b, sizeof(b), ld_diff_bytes_delta(&t->row), true);
	ld_buf_putc(&w->b, '\n');
	style(w, BOLD);
	ld_buf_puts(&w->b, "Likely leak: ");
	style(w, RESET);
	ld_buf_printf(&w->b, "%s ", c);
	style(w, BOLD);
	text(w, t->name);
	style(w, RESET);
	ld_buf_printf(&w->b, " objects (%s)", b);
	for (size_t j = 0; j < t->nsites; j++) {
		if (ld_diff_count_delta(&t->sites[j].row) > 0 && !t->sites[j].suppressed) {
			ld_buf_puts(&w->b, ", allocated at\n  ");
			stack_text(w, &t->sites[j].stack, 2, -1);
			return;
		}
	}
	ld_buf_putc(&w->b, '\n');
}

static void types_table(struct out *w, const struct ld_diff *d, bool show)
{
	size_t selected, shown = ld_report_count_types(d->types, d->ntypes, w->o, &selected);
	heading(w, show ? "Live objects by type" : "Growth by type", shown, selected, "types");
	if (!selected)
		return;
	style(w, DIM);
	if (show)
		ld_buf_printf(&w->b, "  %11s %11s  %s\n", "bytes", "count", "type");
	else
		ld_buf_printf(&w->b, "  %11s %10s %11s    %-11s %-5s  %s\n", "bytes", "count", "before", "after", "", "type");
	style(w, RESET);
	size_t n = 0;
	int col = show ? NAME_COL_SHOW : NAME_COL_DIFF;
	for (size_t i = 0; i < d->ntypes && n < shown; i++) {
		const struct ld_diff_type *t = &d->types[i];
		if (!ld_diff_type_shown(t, w->o->min_bytes))
			continue;
		n++;
		row_cells(w, &t->row, state_tag(t->state, LD_MATCH_EXACT, w->o->match), show);
		style(w, BOLD);
		text(w, t->name);
		style(w, RESET);
		if (d->intervals > 1)
			ld_buf_printf(&w->b, "  [grew in %u of %u]", t->grew_in, d->intervals);
		ld_buf_putc(&w->b, '\n');
		size_t ns = 0;
		for (size_t j = 0; j < t->nsites && ns < w->o->type_sites; j++) {
			const struct ld_diff_site *s = &t->sites[j];
			if (s->suppressed)
				continue;
			if (show ? !s->row.count_after
				 : ld_diff_count_delta(&s->row) <= 0 && ld_diff_bytes_delta(&s->row) <= 0)
				continue;
			ns++;
			char c[32];
			if (show)
				ld_count_format(c, sizeof(c), (int64_t)s->row.count_after, false);
			else if (ld_diff_count_delta(&s->row))
				ld_count_format(c, sizeof(c), ld_diff_count_delta(&s->row), true);
			else
				ld_size_format(c, sizeof(c), ld_diff_bytes_delta(&s->row), true);
			ld_buf_printf(&w->b, "%*s%s at ", col, "", c);
			stack_text(w, &s->stack, col, -1);
		}
	}
}

static void sites_table(struct out *w, const struct ld_diff *d, bool show)
{
	size_t selected, shown = ld_report_count_sites(d->sites, d->nsites, w->o, w->o->top, &selected);
	heading(w, show ? "Live memory by allocation site" : "Growth by allocation site", shown, selected, "sites");
	if (!selected)
		return;
	style(w, DIM);
	if (show)
		ld_buf_printf(&w->b, "  %11s %11s  %s\n", "bytes", "blocks", "allocated at");
	else
		ld_buf_printf(&w->b, "  %11s %10s %11s    %-11s %-5s  %s\n", "bytes", "blocks", "before", "after", "", "allocated at");
	style(w, RESET);
	size_t n = 0;
	int col = show ? NAME_COL_SHOW : NAME_COL_DIFF;
	int *twins = NULL;
	if (!w->o->verbose && ld_report_twins(d->sites, d->nsites, w->o, w->o->top, &twins) < 0)
		twins = NULL; /* out of memory: rows alike just stay alike */
	for (size_t i = 0; i < d->nsites && n < shown; i++) {
		const struct ld_diff_site *s = &d->sites[i];
		if (!ld_diff_site_shown(s, w->o->min_bytes))
			continue;
		n++;
		row_cells(w, &s->row, state_tag(s->state, s->match, w->o->match), show);
		if (d->intervals > 1)
			ld_buf_printf(&w->b, "[grew in %u of %u]  ", s->grew_in, d->intervals);
		stack_text(w, &s->stack, col, twins ? twins[i] : -1);
	}
	free(twins);
}

static void path_text(struct out *w, const struct ld_diff_hint *h)
{
	/* Stored root first; read instance first, as "what holds it". */
	for (uint32_t i = h->path_len; i-- > 0;) {
		text(w, ld_snapshot_str(h->path_snap, h->path[i]));
		if (i)
			ld_buf_puts(&w->b, " <- ");
	}
}

static void hints(struct out *w, const struct ld_diff *d, bool show)
{
	size_t n = 0;
	for (size_t i = 0; i < d->nhints; i++)
		n += ld_report_hint_shown(&d->hints[i]) || (show && d->hints[i].after);
	ld_buf_putc(&w->b, '\n');
	style(w, BOLD);
	ld_buf_puts(&w->b, "Leak hints");
	style(w, RESET);
	if (!n) {
		ld_buf_puts(&w->b, ": none\n");
		return;
	}
	ld_buf_putc(&w->b, '\n');
	for (size_t i = 0; i < d->nhints; i++) {
		const struct ld_diff_hint *h = &d->hints[i];
		if (!(ld_report_hint_shown(h) || (show && h->after)))
			continue;
		char a[32], b[32], c[32];
		ld_count_format(a, sizeof(a), (int64_t)h->before, false);
		ld_count_format(b, sizeof(b), (int64_t)h->after, false);
		ld_count_format(c, sizeof(c), (int64_t)h->after - (int64_t)h->before, true);
		ld_buf_printf(&w->b, "  %-10s ", ld_hint_kind_name(h->kind));
		switch (h->kind) {
		case LD_HINT_CONTAINER:
			text(w, h->name);
			ld_buf_puts(&w->b, ": ");
			text(w, h->type);
			if (show)
				ld_buf_printf(&w->b, " of %s entries\n", b);
			else
				ld_buf_printf(&w->b, " %s -> %s entries (%s)\n", a, b, c);
			break;
		case LD_HINT_LRU_CACHE:
			text(w, h->name);
			if (h->maxsize < 0)
				ld_buf_puts(&w->b, ": unbounded lru_cache (maxsize=None)");
			else
				ld_buf_printf(&w->b, ": lru_cache(maxsize=%lld)", (long long)h->maxsize);
			if (show)
				ld_buf_printf(&w->b, " holding %s entries\n", b);
			else
				ld_buf_printf(&w->b, " %s -> %s entries (%s)\n", a, b, c);
			break;
		case LD_HINT_GARBAGE:
			text(w, h->type);
			if (show)
				ld_buf_printf(&w->b, ": %s uncollectable objects in gc.garbage\n", b);
			else
				ld_buf_printf(&w->b, ": %s -> %s uncollectable objects in gc.garbage\n", a, b);
			break;
		case LD_HINT_CYCLES:
			if (show)
				ld_buf_printf(&w->b, "%s objects in reference cycles freed by the snapshot's collection\n", b);
			else
				ld_buf_printf(&w->b, "%s -> %s objects in reference cycles freed by the snapshot's "
					      "collection\n", a, b);
			break;
		case LD_HINT_PATH:
			path_text(w, h);
			ld_buf_putc(&w->b, '\n');
			break;
		}
	}
}

static int flush(struct out *w, FILE *out)
{
	int r = 0;
	if (w->b.oom)
		r = -ENOMEM;
	else if (w->b.len && fwrite(w->b.data, 1, w->b.len, out) != w->b.len)
		r = -EIO;
	ld_buf_finish(&w->b);
	return r;
}

int ld_report_diff_text(FILE *out, const struct ld_diff *d, const struct ld_report_opts *o)
{
	struct out w = { .o = o };
	ld_buf_init(&w.b);
	meta_line(&w, "before", o->before_path ? o->before_path : "", d->before);
	meta_line(&w, "after", o->after_path ? o->after_path : "", d->after);
	totals(&w, d, false);
	verdict_text(&w);
	suspect_line(&w, d);
	/* Native snapshots have no object census; say nothing rather than "no types". */
	if (o->by != LD_REPORT_SITES && (d->before->ntypes || d->after->ntypes))
		types_table(&w, d, false);
	if (o->by != LD_REPORT_TYPES)
		sites_table(&w, d, false);
	hints(&w, d, false);
	if (o->suppressed)
		ld_buf_printf(&w.b, "\n%zu row%s left out by suppressions.\n", o->suppressed,
			      o->suppressed == 1 ? "" : "s");
	return flush(&w, out);
}

int ld_report_show_text(FILE *out, const struct ld_diff *d, const struct ld_report_opts *o)
{
	struct out w = { .o = o };
	ld_buf_init(&w.b);
	const struct ld_meta *m = &d->after->meta;
	meta_line(&w, "file", o->after_path ? o->after_path : "", d->after);
	if (m->runtime || m->python || m->host) {
		ld_buf_puts(&w.b, "       ");
		if (m->runtime) {
			text(&w, m->runtime);
			ld_buf_putc(&w.b, ' ');
		}
		if (m->python) {
			text(&w, m->python);
			ld_buf_putc(&w.b, ' ');
		}
		if (m->host) {
			ld_buf_puts(&w.b, "on ");
			text(&w, m->host);
		}
		if (m->depth >= 0)
			ld_buf_printf(&w.b, ", tracebacks of up to %lld frames", (long long)m->depth);
		if (m->tracer) {
			ld_buf_puts(&w.b, ", recorded with ");
			text(&w, strcmp(m->tracer, "hooks") == 0 ? "the allocator hooks" : m->tracer);
		}
		ld_buf_putc(&w.b, '\n');
	}
	totals(&w, d, true);
	const struct ld_gc *gc = &d->after->gc;
	if (gc->present)
		ld_buf_printf(&w.b, "  %-14s %12llu collected at snapshot time, %llu in gc.garbage\n", "gc",
			      (unsigned long long)gc->collected, (unsigned long long)gc->garbage);
	if (o->by != LD_REPORT_SITES && d->after->ntypes)
		types_table(&w, d, true);
	if (o->by != LD_REPORT_TYPES)
		sites_table(&w, d, true);
	hints(&w, d, true);
	return flush(&w, out);
}
