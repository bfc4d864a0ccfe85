/* Helpers shared by the renderers; see report_common.h. */
#include "report_common.h"

#include <string.h>

static size_t prefix_len(const char *file, const char *root)
{
	size_t n = strlen(root);
	while (n > 1 && root[n - 1] == '/')
		n--;
	if (n == 0 || strncmp(file, root, n) != 0 || file[n] != '/')
		return 0;
	return n + 1;
}

const char *ld_report_short_path(const struct ld_snapshot *s, const char *file)
{
	size_t best = 0;
	for (size_t i = 0; i < s->meta.nroots; i++) {
		size_t n = prefix_len(file, s->meta.roots[i]);
		if (n > best)
			best = n;
	}
	for (size_t i = 0; i < s->meta.nstdlib; i++) {
		size_t n = prefix_len(file, s->meta.stdlib[i]);
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
		if (prefix_len(file, s->meta.stdlib[i])) {
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
		if (ld_diff_row_selected(&rows[i].row, o->min_bytes))
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
		if (ld_diff_row_selected(&rows[i].row, o->min_bytes))
			sel++;
	if (selected)
		*selected = sel;
	return o->top && sel > o->top ? o->top : sel;
}

bool ld_report_hint_shown(const struct ld_diff_hint *h)
{
	switch (h->kind) {
	case LD_HINT_PATH:
		return h->state != LD_DIFF_GONE;
	case LD_HINT_GARBAGE:
	case LD_HINT_CYCLES:
		return h->after > 0 || h->before != h->after;
	default:
		return h->after > h->before;
	}
}
