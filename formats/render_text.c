/*
 * The text report: aligned columns, human sizes, the allocating line as
 * "file:line in function", colour only when asked for. Names are escaped
 * for the terminal before they are measured or printed.
 *
 * Given a width (the terminal's), the report fits in it: a table whose
 * rows do not fit is laid out again with each name on a line of its own
 * below its numbers, the header's parts go on lines of their own, and
 * whatever is still too wide is wrapped at spaces, a word longer than a
 * line being cut around a "…" that marks it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "escape.h"
#include "fixes.h"
#include "report.h"
#include "frames.h"
#include "report_common.h"
#include "blind.h"
#include "tidy.h"
#include "units.h"

#define BOLD "\033[1m"
#define DIM "\033[2m"
#define RED "\033[31m"
#define GREEN "\033[32m"
#define RESET "\033[0m"

#define NAME_COL_DIFF 61
#define NAME_COL_SHOW 29
#define NAME_COL_NARROW 6 /* a name below its row's numbers */

struct out {
	struct ld_buf b;
	const struct ld_report_opts *o;
	bool narrow; /* names below their row's numbers, not beside them */
};

/* Columns that bytes of the report take on a terminal: code points, less
 * the colour sequences (ESC [ ... m), which take none. */
static size_t visible_width(const char *s, size_t n)
{
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\033') {
			while (i < n && s[i] != 'm')
				i++;
			continue;
		}
		w += ((unsigned char)s[i] & 0xc0) != 0x80;
	}
	return w;
}

/* The widest line of b, in columns. */
static size_t widest_line(const struct ld_buf *b)
{
	size_t widest = 0;
	for (size_t at = 0; at < b->len;) {
		const char *nl = memchr(b->data + at, '\n', b->len - at);
		size_t end = nl ? (size_t)(nl - b->data) : b->len;
		size_t w = visible_width(b->data + at, end - at);
		if (w > widest)
			widest = w;
		at = end + 1;
	}
	return widest;
}

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
			if (ld_frame_is_interpreter(st->snap, ld_diff_frame(st, i)))
				ld_buf_puts(&w->b, " [interpreter]");
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

/*
 * Appends open, then the parts (joined by ", ") and close, and a newline;
 * when that is wider than the report may be, breaks the line after a ", "
 * and goes on at column indent, so that no part is split.
 */
static void put_parts(struct out *w, const char *open, const char *parts, const char *close, size_t indent)
{
	size_t width = w->o->width, col = visible_width(open, strlen(open)), start = col;
	ld_buf_puts(&w->b, open);
	const char *q = parts;
	while (*q) {
		const char *next = strstr(q, ", ");
		size_t len = next ? (size_t)(next - q) : strlen(q);
		size_t pw = visible_width(q, len) + (next ? 1 : strlen(close));
		if (col > start && width && col + 1 + pw > width) {
			ld_buf_printf(&w->b, "\n%*s", (int)indent, "");
			col = start = indent;
		} else if (col > start) {
			ld_buf_putc(&w->b, ' ');
			col++;
		}
		ld_buf_add(&w->b, q, len);
		ld_buf_puts(&w->b, next ? "," : close);
		col += pw;
		q = next ? next + 2 : q + len;
	}
	if (!*parts)
		ld_buf_puts(&w->b, close);
	ld_buf_putc(&w->b, '\n');
}

/* Appends ", " between the parts of a header's parenthesis. */
static void meta_part(struct ld_buf *parts, size_t *n)
{
	if ((*n)++)
		ld_buf_puts(parts, ", ");
}

/*
 * "before PATH  COMMAND  (pid, label, trigger, time)" on one line, or, when
 * that is wider than the report may be, the path, the command and the
 * parenthesis each on a line of their own, the parenthesis broken between
 * its parts.
 */
static void meta_line(struct out *w, const char *which, const char *path, const struct ld_snapshot *s)
{
	const struct ld_meta *m = &s->meta;
	size_t width = w->o->width, limit = 200;
	if (width && width > 7 && width - 7 < limit)
		limit = width - 7;
	struct ld_buf cmd, parts;
	ld_buf_init(&cmd);
	ld_buf_init(&parts);
	if (m->ncommand)
		ld_report_command(&cmd, m->command, m->ncommand, limit);
	size_t n = 0;
	if (m->pid >= 0) {
		meta_part(&parts, &n);
		ld_buf_printf(&parts, "pid %lld", (long long)m->pid);
	}
	if (m->label && *m->label && !(m->trigger && strcmp(m->label, m->trigger) == 0)) {
		meta_part(&parts, &n);
		ld_buf_puts(&parts, "label ");
		ld_escape_append(&parts, m->label, LD_ESCAPE_TEXT);
	}
	if (m->trigger && *m->trigger) {
		meta_part(&parts, &n);
		ld_escape_append(&parts, m->trigger, LD_ESCAPE_TEXT);
	}
	if (m->time) {
		meta_part(&parts, &n);
		ld_escape_append(&parts, m->time, LD_ESCAPE_TEXT);
	}
	if (m->attached >= 0) {
		meta_part(&parts, &n);
		ld_report_attached(&parts, m->attached);
	}
	if (m->sample > 0) {
		char sz[32];
		ld_size_format(sz, sizeof(sz), m->sample, false);
		meta_part(&parts, &n);
		ld_buf_printf(&parts, "sampled every %s: estimates", sz);
	}
	char *safe_path = ld_escape_dup(path, LD_ESCAPE_TEXT);
	const char *p = safe_path ? safe_path : "?";
	const char *c = cmd.len ? cmd.data : "", *q = parts.len ? parts.data : "";
	size_t one_line = 7 + ld_text_width(p) + (cmd.len ? 2 + ld_text_width(c) : 0) + 3 + ld_text_width(q) + 1;
	if (!width || one_line <= width) {
		ld_buf_printf(&w->b, "%-7s%s", which, p);
		if (cmd.len)
			ld_buf_printf(&w->b, "  %s", c);
		ld_buf_printf(&w->b, "  (%s)\n", q);
	} else {
		ld_buf_printf(&w->b, "%-7s", which);
		ld_report_cut(&w->b, p, width > 7 ? width - 7 : 2);
		ld_buf_putc(&w->b, '\n');
		if (cmd.len)
			ld_buf_printf(&w->b, "       %s\n", c);
		put_parts(w, "       (", q, ")", 8);
	}
	if (cmd.oom || parts.oom || !safe_path)
		w->b.oom = true;
	free(safe_path);
	ld_buf_finish(&cmd);
	ld_buf_finish(&parts);
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
	struct ld_diff_row native;
	if (heap && ld_report_native_row(d, &native)) {
		/* --native: how much of the heap the malloc family gave out directly. */
		totals_row(w, "native bytes", &native, true, show);
		totals_row(w, "native blocks", &native, false, show);
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
		ld_buf_printf(&w->b, w->narrow ? "  %11s %11s" : "  %11s %11s  ", a, b);
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
	if (w->narrow)
		ld_buf_printf(&w->b, " %11s -> %s%s%s", c, e, *tag ? "  " : "", tag);
	else
		ld_buf_printf(&w->b, " %11s -> %-11s %-5s  ", c, e, tag);
}

/* The header of a table; narrow, the name column's title is on a line of its own. */
static void table_header(struct out *w, const char *count, const char *name, bool show)
{
	style(w, DIM);
	if (show && w->narrow)
		ld_buf_printf(&w->b, "  %11s %11s\n%*s%s\n", "bytes", count, NAME_COL_NARROW, "", name);
	else if (show)
		ld_buf_printf(&w->b, "  %11s %11s  %s\n", "bytes", count, name);
	else if (w->narrow)
		ld_buf_printf(&w->b, "  %11s %10s %11s    %s\n%*s%s\n", "bytes", count, "before", "after",
			      NAME_COL_NARROW, "", name);
	else
		ld_buf_printf(&w->b, "  %11s %10s %11s    %-11s %-5s  %s\n", "bytes", count, "before", "after", "",
			      name);
	style(w, RESET);
}

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
	ld_buf_printf(&w->b, " %s (%s)", ld_report_noun(ld_diff_count_delta(&t->row), "object", "objects"), b);
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
	table_header(w, "count", "type", show);
	size_t n = 0;
	int col = w->narrow ? NAME_COL_NARROW + 2 : show ? NAME_COL_SHOW : NAME_COL_DIFF;
	for (size_t i = 0; i < d->ntypes && n < shown; i++) {
		const struct ld_diff_type *t = &d->types[i];
		if (!ld_diff_type_shown(t, w->o->min_bytes))
			continue;
		n++;
		row_cells(w, &t->row, state_tag(t->state, LD_MATCH_EXACT, w->o->match), show);
		if (w->narrow)
			ld_buf_printf(&w->b, "\n%*s", NAME_COL_NARROW, "");
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
	table_header(w, "blocks", "allocated at", show);
	size_t n = 0;
	int col = w->narrow ? NAME_COL_NARROW : show ? NAME_COL_SHOW : NAME_COL_DIFF;
	int *twins = NULL;
	if (!w->o->verbose && ld_report_twins(d->sites, d->nsites, w->o, w->o->top, &twins) < 0)
		twins = NULL; /* out of memory: rows alike just stay alike */
	for (size_t i = 0; i < d->nsites && n < shown; i++) {
		const struct ld_diff_site *s = &d->sites[i];
		if (!ld_diff_site_shown(s, w->o->min_bytes))
			continue;
		n++;
		row_cells(w, &s->row, state_tag(s->state, s->match, w->o->match), show);
		if (w->narrow) {
			if (d->intervals > 1)
				ld_buf_printf(&w->b, "  [grew in %u of %u]", s->grew_in, d->intervals);
			ld_buf_printf(&w->b, "\n%*s", col, "");
		} else if (d->intervals > 1) {
			ld_buf_printf(&w->b, "[grew in %u of %u]  ", s->grew_in, d->intervals);
		}
		stack_text(w, &s->stack, col, twins ? twins[i] : -1);
	}
	free(twins);
}

typedef void table_fn(struct out *w, const struct ld_diff *d, bool show);

/*
 * Appends a table laid out side by side when every line fits in the
 * report's width, and otherwise again with the names below the numbers.
 */
static void fitted_table(struct out *w, table_fn *fn, const struct ld_diff *d, bool show)
{
	struct out t = { .o = w->o };
	ld_buf_init(&t.b);
	fn(&t, d, show);
	if (w->o->width && widest_line(&t.b) > w->o->width) {
		ld_buf_finish(&t.b);
		ld_buf_init(&t.b);
		t.narrow = true;
		fn(&t, d, show);
	}
	if (t.b.oom)
		w->b.oom = true;
	else
		ld_buf_add(&w->b, t.b.data, t.b.len);
	ld_buf_finish(&t.b);
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
		/* The noun agrees with the count next to it, the later one. */
		const char *entries = ld_report_noun((int64_t)h->after, "entry", "entries");
		const char *objects = ld_report_noun((int64_t)h->after, "object", "objects");
		ld_buf_printf(&w->b, "  %-10s ", ld_hint_kind_name(h->kind));
		switch (h->kind) {
		case LD_HINT_CONTAINER:
			text(w, h->name);
			ld_buf_puts(&w->b, ": ");
			text(w, h->type);
			if (show)
				ld_buf_printf(&w->b, " of %s %s\n", b, entries);
			else
				ld_buf_printf(&w->b, " %s -> %s %s (%s)\n", a, b, entries, c);
			break;
		case LD_HINT_LRU_CACHE:
			text(w, h->name);
			if (h->maxsize < 0)
				ld_buf_puts(&w->b, ": unbounded lru_cache (maxsize=None)");
			else
				ld_buf_printf(&w->b, ": lru_cache(maxsize=%lld)", (long long)h->maxsize);
			if (show)
				ld_buf_printf(&w->b, " holding %s %s\n", b, entries);
			else
				ld_buf_printf(&w->b, " %s -> %s %s (%s)\n", a, b, entries, c);
			break;
		case LD_HINT_GARBAGE:
			text(w, h->type);
			if (show)
				ld_buf_printf(&w->b, ": %s uncollectable %s in gc.garbage\n", b, objects);
			else
				ld_buf_printf(&w->b, ": %s -> %s uncollectable %s in gc.garbage\n", a, b, objects);
			break;
		case LD_HINT_CYCLES:
			if (show)
				ld_buf_printf(&w->b, "%s %s in reference cycles freed by the snapshot's collection\n",
					      b, objects);
			else
				ld_buf_printf(&w->b, "%s -> %s %s in reference cycles freed by the snapshot's "
					      "collection\n", a, b, objects);
			break;
		case LD_HINT_PATH:
			path_text(w, h);
			ld_buf_putc(&w->b, '\n');
			break;
		}
		/* Under the hint's text, where the kind column leaves room. */
		const char *fix = ld_hint_fix(d, h, show);
		if (fix) {
			ld_buf_printf(&w->b, "  %-10s fix: ", "");
			text(w, fix);
			ld_buf_putc(&w->b, '\n');
		}
	}
}

/*
 * Appends one word of a line too wide, cut to cols columns. Its colour
 * sequences are kept, those before its text first and the rest after, so
 * that a style it opens or closes still is.
 */
static void cut_word(struct ld_buf *b, const char *word, size_t len, size_t cols)
{
	struct ld_buf plain, tail;
	ld_buf_init(&plain);
	ld_buf_init(&tail);
	for (size_t i = 0; i < len; i++) {
		if (word[i] == '\033') {
			size_t j = i;
			while (j < len && word[j] != 'm')
				j++;
			ld_buf_add(plain.len ? &tail : b, word + i, j < len ? j - i + 1 : j - i);
			i = j;
		} else {
			ld_buf_putc(&plain, word[i]);
		}
	}
	ld_report_cut(b, plain.len ? plain.data : "", cols);
	if (tail.len)
		ld_buf_add(b, tail.data, tail.len);
	if (plain.oom || tail.oom)
		b->oom = true;
	ld_buf_finish(&plain);
	ld_buf_finish(&tail);
}

/*
 * Appends the line s[0..len) (no newline) to b, broken at spaces so that
 * no line is wider than width; lines after the first are indented two
 * more than it. A word wider than a whole line is cut with a mark.
 */
static void wrap_line(struct ld_buf *b, const char *s, size_t len, size_t width)
{
	if (visible_width(s, len) <= width) {
		ld_buf_add(b, s, len);
		return;
	}
	size_t i = 0;
	while (i < len && s[i] == ' ')
		i++;
	size_t indent = i < width / 3 ? i : width / 3, hang = indent + 2 < width / 3 ? indent + 2 : width / 3;
	ld_buf_printf(b, "%*s", (int)indent, "");
	size_t col = indent;
	bool first = true;
	while (i < len) {
		size_t gap = i;
		while (i < len && s[i] == ' ')
			i++;
		size_t spaces = i - gap, start = i;
		while (i < len && s[i] != ' ')
			i++;
		if (start == i)
			break; /* trailing spaces */
		size_t ww = visible_width(s + start, i - start);
		/* A word that fits on no line is cut where it stands, unless
		 * too little of it would show there. */
		bool cut_here = ww > width - hang && col + spaces + 20 <= width;
		if (!first && !cut_here && col + spaces + ww > width) {
			ld_buf_printf(b, "\n%*s", (int)hang, "");
			col = hang;
			first = true;
		}
		if (!first) {
			ld_buf_add(b, s + gap, spaces);
			col += spaces;
		}
		if (col + ww > width) {
			cut_word(b, s + start, i - start, width - col);
			col = width;
		} else {
			ld_buf_add(b, s + start, i - start);
			col += ww;
		}
		first = false;
	}
}

static int flush(struct out *w, FILE *out)
{
	size_t width = w->o->width;
	if (!width || w->b.oom || !w->b.len || widest_line(&w->b) <= width)
		return ld_report_write(out, &w->b);
	/* Too narrow a width would leave no room for a word: 20 at least. */
	if (width < 20)
		width = 20;
	struct ld_buf wrapped;
	ld_buf_init(&wrapped);
	for (size_t at = 0; at < w->b.len;) {
		const char *nl = memchr(w->b.data + at, '\n', w->b.len - at);
		size_t end = nl ? (size_t)(nl - w->b.data) : w->b.len;
		wrap_line(&wrapped, w->b.data + at, end - at, width);
		if (nl)
			ld_buf_putc(&wrapped, '\n');
		at = end + 1;
	}
	if (w->b.oom)
		wrapped.oom = true;
	ld_buf_finish(&w->b);
	return ld_report_write(out, &wrapped);
}

/* Empty at-exit snapshots of a program that tidies up: why, and what to do. */
static void tidy_note_text(struct out *w, const struct ld_diff *d)
{
	if (!ld_diff_freed_at_exit(d))
		return;
	ld_buf_putc(&w->b, '\n');
	for (size_t i = 0; i < ld_tidy_note_lines; i++)
		ld_buf_printf(&w->b, "%s\n", ld_tidy_note[i]);
}

/* Native growth that no traced site explains (blind.h): how much, and what to do. */
static void blind_text(struct out *w, const struct ld_diff *d)
{
	struct ld_blind b;
	if (!ld_blind_check(d->before, d->after, &b))
		return;
	char size[32];
	ld_size_format(size, sizeof(size), (int64_t)b.unexplained, false);
	ld_buf_printf(&w->b, "\nNative memory grew by %s more than the traced heap explains.\n", size);
	for (size_t i = 0; i < ld_blind_advice_lines; i++)
		ld_buf_printf(&w->b, "%s\n", ld_blind_advice[i]);
}

int ld_report_diff_text(FILE *out, const struct ld_diff *d, const struct ld_report_opts *o)
{
	struct out w = { .o = o };
	ld_buf_init(&w.b);
	meta_line(&w, "before", o->before_path ? o->before_path : "", d->before);
	meta_line(&w, "after", o->after_path ? o->after_path : "", d->after);
	totals(&w, d, false);
	tidy_note_text(&w, d);
	blind_text(&w, d);
	verdict_text(&w);
	suspect_line(&w, d);
	/* Native snapshots have no object census; say nothing rather than "no types". */
	if (o->by != LD_REPORT_SITES && (d->before->ntypes || d->after->ntypes))
		fitted_table(&w, types_table, d, false);
	if (o->by != LD_REPORT_TYPES)
		fitted_table(&w, sites_table, d, false);
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
		/* "python 3.11.2 on ci, tracebacks of up to 16 frames, recorded
		 * with ...", broken between its parts when narrow. */
		struct out p = { .o = o };
		ld_buf_init(&p.b);
		if (m->runtime) {
			text(&p, m->runtime);
			ld_buf_putc(&p.b, ' ');
		}
		if (m->python) {
			text(&p, m->python);
			ld_buf_putc(&p.b, ' ');
		}
		if (m->host) {
			ld_buf_puts(&p.b, "on ");
			text(&p, m->host);
		}
		if (m->depth >= 0)
			ld_buf_printf(&p.b, ", tracebacks of up to %lld frames", (long long)m->depth);
		if (m->tracer) {
			ld_buf_puts(&p.b, ", recorded with ");
			text(&p, strcmp(m->tracer, "hooks") == 0 ? "the allocator hooks" : m->tracer);
			if (d->after->totals.has_native)
				ld_buf_puts(&p.b, " and the native agent (--native)");
		}
		if (p.b.oom)
			w.b.oom = true;
		else
			put_parts(&w, "       ", p.b.len ? p.b.data : "", "", 7);
		ld_buf_finish(&p.b);
	}
	totals(&w, d, true);
	const struct ld_gc *gc = &d->after->gc;
	if (gc->present)
		ld_buf_printf(&w.b, "  %-14s %12llu collected at snapshot time, %llu in gc.garbage\n", "gc",
			      (unsigned long long)gc->collected, (unsigned long long)gc->garbage);
	if (o->by != LD_REPORT_SITES && d->after->ntypes)
		fitted_table(&w, types_table, d, true);
	if (o->by != LD_REPORT_TYPES)
		fitted_table(&w, sites_table, d, true);
	hints(&w, d, true);
	return flush(&w, out);
}
