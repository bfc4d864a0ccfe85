/* Helpers shared by the renderers; see report_common.h. */
#include "report_common.h"

#include <string.h>

#include "units.h"

const char *ld_report_short_path(const struct ld_snapshot *s, const char *file)
{
	size_t best = 0;
	for (size_t i = 0; i < s->meta.nroots; i++) {
		size_t n = ld_path_root_len(file, s->meta.roots[i]);
		if (n > best)
			best = n;
	}
	for (size_t i = 0; i < s->meta.nstdlib; i++) {
		size_t n = ld_path_root_len(file, s->meta.stdlib[i]);
		if (n > best)
			best = n;
	}
	return file[best] ? file + best : file;
}

bool ld_report_library_frame(const struct ld_snapshot *s, const struct ld_frame *f)
{
	const char *file = ld_snapshot_str(s, f->file);
	if (strncmp(file, "<frozen ", 8) == 0)
		return true;
	for (size_t i = 0; i < s->meta.nstdlib; i++) {
		if (ld_path_root_len(file, s->meta.stdlib[i])) {
			/* Third-party packages live below the stdlib in some layouts. */
			return !strstr(file, "/site-packages/") && !strstr(file, "/dist-packages/");
		}
	}
	return false;
}

int ld_report_caller(const struct ld_diff_stack *st)
{
	if (!st->depth || !ld_report_library_frame(st->snap, ld_diff_frame(st, 0)))
		return -1;
	for (uint32_t i = 1; i < st->depth; i++)
		if (!ld_report_library_frame(st->snap, ld_diff_frame(st, i)))
			return (int)i;
	return -1;
}

size_t ld_report_count_sites(const struct ld_diff_site *rows, size_t n, const struct ld_report_opts *o,
			     size_t top, size_t *selected)
{
	size_t sel = 0;
	for (size_t i = 0; i < n; i++)
		if (ld_diff_site_shown(&rows[i], o->min_bytes))
			sel++;
	if (selected)
		*selected = sel;
	return top && sel > top ? top : sel;
}

size_t ld_report_count_types(const struct ld_diff_type *rows, size_t n, const struct ld_report_opts *o,
			     size_t *selected)
{
	size_t sel = 0;
	for (size_t i = 0; i < n; i++)
		if (ld_diff_type_shown(&rows[i], o->min_bytes))
			sel++;
	if (selected)
		*selected = sel;
	return o->top && sel > o->top ? o->top : sel;
}

bool ld_report_hint_shown(const struct ld_diff_hint *h)
{
	switch (h->kind) {
	case LD_HINT_PATH:
		/*
		 * Only a grown type's path explains growth: one of a type that
		 * held still or shrank (a singleton, a constant, a count that
		 * wobbles by one between runs) is a false lead.
		 */
		return h->state != LD_DIFF_GONE && h->type_count_delta > 0;
	case LD_HINT_GARBAGE:
		return h->after > 0 || h->before != h->after;
	case LD_HINT_CYCLES:
		return h->before != h->after;
	default:
		return h->after > h->before;
	}
}

const char *ld_report_limit_option(enum ld_limit_kind k)
{
	return k == LD_LIMIT_TOTAL ? "--max-total-growth" : k == LD_LIMIT_SITE ? "--max-site-growth"
									     : "--max-type-growth";
}

void ld_report_frame(struct ld_buf *b, const struct ld_diff_stack *st, uint32_t i, enum ld_escape_mode mode)
{
	if (i >= st->depth) {
		ld_buf_puts(b, "(no traceback)");
		return;
	}
	const struct ld_frame *f = ld_diff_frame(st, i);
	ld_escape_append(b, ld_report_short_path(st->snap, ld_snapshot_str(st->snap, f->file)), mode);
	ld_buf_printf(b, ":%d", f->line);
	const char *fn = ld_snapshot_str(st->snap, f->function);
	if (*fn) {
		ld_buf_puts(b, " in ");
		ld_escape_append(b, fn, mode);
	}
}

void ld_report_limit_text(struct ld_buf *b, const struct ld_limit_hit *h, const struct ld_limits *lim,
			  const struct ld_verdict *v, enum ld_escape_mode mode)
{
	char a[32], c[32];
	switch (h->kind) {
	case LD_LIMIT_TOTAL:
		ld_size_format(a, sizeof(a), h->value, true);
		ld_buf_printf(b, "total %s growth %s", v->heap ? "heap" : "object", a);
		if (h->percent >= 0)
			ld_buf_printf(b, " (%+.1f%%)", h->percent);
		if (lim->total_is_percent) {
			ld_buf_printf(b, " exceeds --max-total-growth=%g%%", lim->total_percent);
		} else {
			ld_size_format(c, sizeof(c), (int64_t)lim->total_bytes, false);
			ld_buf_printf(b, " exceeds --max-total-growth=%s", c);
		}
		break;
	case LD_LIMIT_SITE:
		ld_size_format(a, sizeof(a), h->value, true);
		ld_size_format(c, sizeof(c), (int64_t)lim->site_bytes, false);
		ld_buf_puts(b, "site ");
		ld_report_frame(b, &h->site->stack, 0, mode);
		ld_buf_printf(b, " grew %s, over --max-site-growth=%s", a, c);
		break;
	case LD_LIMIT_TYPE:
		ld_count_format(a, sizeof(a), h->value, true);
		ld_count_format(c, sizeof(c), (int64_t)lim->type_count, false);
		ld_buf_puts(b, "type ");
		ld_escape_append(b, h->type->name, mode);
		ld_buf_printf(b, " grew by %s objects, over --max-type-growth=%s", a, c);
		break;
	}
}
