/*
 * The Markdown report: a short summary for a CI job page or a pull request
 * comment. The verdict first, then totals and the top rows as tables; every
 * name is escaped so a file or type name cannot break the table or inject
 * markup.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "buf.h"
#include "escape.h"
#include "fixes.h"
#include "report.h"
#include "report_common.h"
#include "blind.h"
#include "tidy.h"
#include "units.h"

static void md(struct ld_buf *b, const char *s)
{
	ld_escape_append(b, s, LD_ESCAPE_MARKDOWN);
}

static void md_path(struct ld_buf *b, const char *path)
{
	/* Escaped as for a terminal (controls, bidi overrides), then made safe
	 * for a code span, where only backticks and table pipes matter. */
	char *safe = ld_escape_dup(path ? path : "", LD_ESCAPE_TEXT);
	ld_buf_putc(b, '`');
	for (const char *p = safe ? safe : "?"; *p; p++)
		ld_buf_putc(b, *p == '`' || *p == '|' ? '?' : *p);
	ld_buf_putc(b, '`');
	free(safe);
}

static void total_row(struct ld_buf *b, const char *name, const struct ld_diff_row *r, bool bytes)
{
	char x[32], y[32], z[32];
	if (bytes) {
		ld_size_format(x, sizeof(x), (int64_t)r->bytes_before, false);
		ld_size_format(y, sizeof(y), (int64_t)r->bytes_after, false);
		ld_size_format(z, sizeof(z), ld_diff_bytes_delta(r), true);
	} else {
		ld_count_format(x, sizeof(x), (int64_t)r->count_before, false);
		ld_count_format(y, sizeof(y), (int64_t)r->count_after, false);
		ld_count_format(z, sizeof(z), ld_diff_count_delta(r), true);
	}
	ld_buf_printf(b, "| %s | %s | %s | **%s** |\n", name, x, y, z);
}

static void row_numbers(struct ld_buf *b, const struct ld_diff_row *r)
{
	char x[32], y[32], z[32], w[32];
	ld_size_format(x, sizeof(x), ld_diff_bytes_delta(r), true);
	ld_count_format(y, sizeof(y), ld_diff_count_delta(r), true);
	ld_count_format(z, sizeof(z), (int64_t)r->count_before, false);
	ld_count_format(w, sizeof(w), (int64_t)r->count_after, false);
	ld_buf_printf(b, "| %s | %s | %s → %s | ", x, y, z, w);
}

/*
 * The leak hints as a list, one item per hint with its suggested fix as a
 * sub-item: the same hints as the text report's, in the same order.
 */
static void hints(struct ld_buf *b, const struct ld_diff *d)
{
	size_t n = 0;
	for (size_t i = 0; i < d->nhints; i++)
		n += ld_report_hint_shown(&d->hints[i]);
	if (!n)
		return;
	ld_buf_puts(b, "<details open><summary>Leak hints</summary>\n\n");
	for (size_t i = 0; i < d->nhints; i++) {
		const struct ld_diff_hint *h = &d->hints[i];
		if (!ld_report_hint_shown(h))
			continue;
		char x[32], y[32], z[32];
		ld_count_format(x, sizeof(x), (int64_t)h->before, false);
		ld_count_format(y, sizeof(y), (int64_t)h->after, false);
		ld_count_format(z, sizeof(z), (int64_t)h->after - (int64_t)h->before, true);
		const char *entries = ld_report_noun((int64_t)h->after, "entry", "entries");
		const char *objects = ld_report_noun((int64_t)h->after, "object", "objects");
		ld_buf_puts(b, "- **");
		md(b, ld_hint_kind_name(h->kind));
		ld_buf_puts(b, "** ");
		switch (h->kind) {
		case LD_HINT_CONTAINER:
			md(b, h->name);
			ld_buf_puts(b, ": ");
			md(b, h->type);
			ld_buf_printf(b, " %s → %s %s (%s)", x, y, entries, z);
			break;
		case LD_HINT_LRU_CACHE:
			md(b, h->name);
			if (h->maxsize < 0)
				ld_buf_puts(b, ": unbounded lru\\_cache (maxsize=None)");
			else
				ld_buf_printf(b, ": lru\\_cache(maxsize=%lld)", (long long)h->maxsize);
			ld_buf_printf(b, " %s → %s %s (%s)", x, y, entries, z);
			break;
		case LD_HINT_GARBAGE:
			md(b, h->type);
			ld_buf_printf(b, ": %s → %s uncollectable %s in gc.garbage", x, y, objects);
			break;
		case LD_HINT_CYCLES:
			ld_buf_printf(b, "%s → %s %s in reference cycles freed by the snapshot's collection",
				      x, y, objects);
			break;
		case LD_HINT_PATH:
			/* Stored root first; read instance first, as "what holds it". */
			for (uint32_t k = h->path_len; k-- > 0;) {
				md(b, ld_snapshot_str(h->path_snap, h->path[k]));
				if (k)
					ld_buf_puts(b, " ← ");
			}
			break;
		}
		ld_buf_putc(b, '\n');
		const char *fix = ld_hint_fix(d, h, false);
		if (fix) {
			ld_buf_puts(b, "  - fix: ");
			md(b, fix);
			ld_buf_putc(b, '\n');
		}
	}
	ld_buf_puts(b, "\n</details>\n\n");
}

int ld_report_diff_markdown(FILE *out, const struct ld_diff *d, const struct ld_report_opts *o)
{
	struct ld_buf b;
	ld_buf_init(&b);
	const struct ld_verdict *v = o->verdict;

	ld_buf_puts(&b, "### leakdiff: ");
	if (v && v->checked)
		ld_buf_puts(&b, ld_verdict_passed(v) ? "memory growth within limits\n\n"
						     : "memory growth over the limit\n\n");
	else
		ld_buf_puts(&b, "memory growth\n\n");
	ld_buf_puts(&b, "Comparing ");
	md_path(&b, o->before_path);
	ld_buf_puts(&b, " with ");
	md_path(&b, o->after_path);
	ld_buf_puts(&b, ".\n\n");
	/* Sites of an attached run start at the attach: say so, once. */
	double attached = d->after->meta.attached >= 0 ? d->after->meta.attached : d->before->meta.attached;
	if (attached >= 0) {
		ld_buf_puts(&b, "The agent was ");
		ld_report_attached(&b, attached);
		ld_buf_puts(&b, ": allocation sites cover only what was allocated after that.\n\n");
	}

	if (v && v->nhits) {
		ld_buf_printf(&b, "**%zu limit%s exceeded:**\n\n", v->nhits, v->nhits == 1 ? "" : "s");
		for (size_t i = 0; i < v->nhits; i++) {
			ld_buf_puts(&b, "- ");
			ld_report_limit_text(&b, &v->hits[i], o->limits, v, LD_ESCAPE_MARKDOWN);
			ld_buf_putc(&b, '\n');
		}
		ld_buf_putc(&b, '\n');
	}

	ld_buf_puts(&b, "| | before | after | change |\n|---|---:|---:|---:|\n");
	if (d->heap.bytes_before || d->heap.bytes_after) {
		total_row(&b, "heap bytes", &d->heap, true);
		total_row(&b, "heap blocks", &d->heap, false);
	}
	if (d->objects.count_before || d->objects.count_after) {
		total_row(&b, "objects", &d->objects, false);
		total_row(&b, "object bytes", &d->objects, true);
	}
	struct ld_diff_row native;
	if ((d->heap.bytes_before || d->heap.bytes_after) && ld_report_native_row(d, &native)) {
		total_row(&b, "native bytes", &native, true);
		total_row(&b, "native blocks", &native, false);
	}
	ld_buf_putc(&b, '\n');
	if (ld_diff_freed_at_exit(d)) {
		/* Fixed text of ours: nothing in it needs escaping. */
		for (size_t i = 0; i < ld_tidy_note_lines; i++)
			ld_buf_printf(&b, "> %s\n", ld_tidy_note[i]);
		ld_buf_putc(&b, '\n');
	}

	struct ld_blind blind;
	if (ld_blind_check(d->before, d->after, &blind)) {
		char size[32];
		ld_size_format(size, sizeof(size), (int64_t)blind.unexplained, false);
		/* Fixed text of ours and a size: nothing in it needs escaping. */
		ld_buf_printf(&b, "> Native memory grew by **%s** more than the traced heap explains.", size);
		for (size_t i = 0; i < ld_blind_advice_lines; i++)
			ld_buf_printf(&b, "\n> %s", ld_blind_advice[i]);
		ld_buf_puts(&b, "\n\n");
	}

	const struct ld_diff_type *sus = ld_diff_suspect(d, o->min_bytes);
	if (sus) {
		char c[32];
		ld_count_format(c, sizeof(c), ld_diff_count_delta(&sus->row), true);
		ld_buf_printf(&b, "Likely leak: **%s ", c);
		md(&b, sus->name);
		ld_buf_puts(&b, "** ");
		ld_buf_puts(&b, ld_report_noun(ld_diff_count_delta(&sus->row), "object", "objects"));
		for (size_t j = 0; j < sus->nsites; j++) {
			if (ld_diff_count_delta(&sus->sites[j].row) > 0 && !sus->sites[j].suppressed) {
				ld_buf_puts(&b, ", allocated at ");
				ld_report_frame(&b, &sus->sites[j].stack, 0, LD_ESCAPE_MARKDOWN);
				break;
			}
		}
		ld_buf_puts(&b, "\n\n");
	}

	size_t selected, shown;
	if (o->by != LD_REPORT_SITES) {
		shown = ld_report_count_types(d->types, d->ntypes, o, &selected);
		if (shown) {
			ld_buf_printf(&b, "<details open><summary>Growth by type (top %zu of %zu)</summary>\n\n",
				      shown, selected);
			ld_buf_puts(&b, "| bytes | count | before → after | type |\n|---:|---:|---:|---|\n");
			for (size_t i = 0, n = 0; i < d->ntypes && n < shown; i++) {
				if (!ld_diff_type_shown(&d->types[i], o->min_bytes))
					continue;
				n++;
				row_numbers(&b, &d->types[i].row);
				md(&b, d->types[i].name);
				if (d->intervals > 1)
					ld_buf_printf(&b, " (grew in %u of %u)", d->types[i].grew_in, d->intervals);
				ld_buf_puts(&b, " |\n");
			}
			ld_buf_puts(&b, "\n</details>\n\n");
		}
	}
	if (o->by != LD_REPORT_TYPES) {
		shown = ld_report_count_sites(d->sites, d->nsites, o, o->top, &selected);
		if (shown) {
			ld_buf_printf(&b, "<details open><summary>Growth by allocation site (top %zu of %zu)"
				      "</summary>\n\n", shown, selected);
			ld_buf_puts(&b, "| bytes | blocks | before → after | allocated at |\n|---:|---:|---:|---|\n");
			int *twins = NULL;
			if (ld_report_twins(d->sites, d->nsites, o, o->top, &twins) < 0)
				twins = NULL; /* out of memory: rows alike just stay alike */
			for (size_t i = 0, n = 0; i < d->nsites && n < shown; i++) {
				const struct ld_diff_site *s = &d->sites[i];
				if (!ld_diff_site_shown(s, o->min_bytes))
					continue;
				n++;
				row_numbers(&b, &s->row);
				ld_report_frame(&b, &s->stack, 0, LD_ESCAPE_MARKDOWN);
				int caller = ld_report_caller(&s->stack);
				if (caller > 0) {
					ld_buf_puts(&b, "<br>called from ");
					ld_report_frame(&b, &s->stack, (uint32_t)caller, LD_ESCAPE_MARKDOWN);
				}
				if (twins && twins[i] > 0) {
					ld_buf_puts(&b, "<br>by way of ");
					ld_report_frame(&b, &s->stack, (uint32_t)twins[i], LD_ESCAPE_MARKDOWN);
				}
				if (s->state != LD_DIFF_KEPT)
					ld_buf_printf(&b, " (%s)", ld_diff_state_name(s->state));
				else if (s->match != LD_MATCH_EXACT)
					ld_buf_printf(&b, " (matched by %s)", ld_diff_match_name(s->match));
				if (d->intervals > 1)
					ld_buf_printf(&b, " (grew in %u of %u)", s->grew_in, d->intervals);
				ld_buf_puts(&b, " |\n");
			}
			free(twins);
			ld_buf_puts(&b, "\n</details>\n\n");
		}
	}
	hints(&b, d);
	if (o->suppressed)
		ld_buf_printf(&b, "%zu row%s suppressed.\n", o->suppressed, o->suppressed == 1 ? "" : "s");

	return ld_report_write(out, &b);
}
