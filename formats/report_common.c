/* Helpers shared by the renderers; see report_common.h. */
#include "report_common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frames.h"
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

/*
 * Native stacks: past the allocator and the functions that only wrap it,
 * the first frame with a name (a named library function says more than an
 * offset in a stripped program); an unnamed one only when no frame has a
 * name.
 */
static int native_caller(const struct ld_diff_stack *st)
{
	const struct ld_snapshot *s = st->snap;
	const struct ld_frame *f0 = ld_diff_frame(st, 0);
	if (!ld_frame_is_library(s, f0) && !ld_frame_is_allocator(s, f0))
		return -1;
	int unnamed = -1;
	for (uint32_t i = 1; i < st->depth; i++) {
		const struct ld_frame *f = ld_diff_frame(st, i);
		if (ld_frame_is_allocator(s, f))
			continue;
		if (!ld_frame_is_unresolved(s, f))
			return (int)i;
		if (unnamed < 0)
			unnamed = (int)i;
	}
	return unnamed;
}

/*
 * A native block of a mixed recording: the Python line that led to it (the
 * first of the program's own, else the first), past the interpreter's
 * frames; -1 when the stack has no Python frame.
 */
static int python_caller(const struct ld_diff_stack *st)
{
	int first = -1;
	for (uint32_t i = 1; i < st->depth; i++) {
		const struct ld_frame *f = ld_diff_frame(st, i);
		if (ld_frame_effective_kind(st->snap, f) != LD_FRAME_PYTHON)
			continue;
		if (!ld_frame_is_library(st->snap, f))
			return (int)i;
		if (first < 0)
			first = (int)i;
	}
	return first;
}

int ld_report_caller(const struct ld_diff_stack *st)
{
	if (!st->depth)
		return -1;
	if (ld_frame_is_native(st->snap, ld_diff_frame(st, 0))) {
		int py = python_caller(st);
		return py > 0 ? py : native_caller(st);
	}
	if (!ld_frame_is_library(st->snap, ld_diff_frame(st, 0)))
		return -1;
	for (uint32_t i = 1; i < st->depth; i++)
		if (!ld_frame_is_library(st->snap, ld_diff_frame(st, i)))
			return (int)i;
	return -1;
}

bool ld_report_native_row(const struct ld_diff *d, struct ld_diff_row *out)
{
	if (!d->after || !d->after->totals.has_native)
		return false;
	const struct ld_totals *b = d->before && d->before->totals.has_native ? &d->before->totals : NULL;
	*out = (struct ld_diff_row){
		.bytes_before = b ? b->native_bytes : 0,
		.bytes_after = d->after->totals.native_bytes,
		.count_before = b ? b->native_blocks : 0,
		.count_after = d->after->totals.native_blocks,
	};
	return true;
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

bool ld_report_no_line(const struct ld_snapshot *s, const struct ld_frame *f)
{
	return f->line <= 0 && ld_frame_is_native(s, f);
}

void ld_report_frame(struct ld_buf *b, const struct ld_diff_stack *st, uint32_t i, enum ld_escape_mode mode)
{
	if (i >= st->depth) {
		ld_buf_puts(b, "(no traceback)");
		return;
	}
	const struct ld_snapshot *s = st->snap;
	const struct ld_frame *f = ld_diff_frame(st, i);
	const char *file = ld_snapshot_str(s, f->file), *fn = ld_snapshot_str(s, f->function);
	if (!ld_frame_is_native(s, f)) {
		ld_escape_append(b, ld_report_short_path(s, file), mode);
		ld_buf_printf(b, ":%d", f->line);
		if (*fn) {
			ld_buf_puts(b, " in ");
			ld_escape_append(b, fn, mode);
		}
		return;
	}
	/* The module and offset name the frame already; its file is the module again. */
	if (ld_frame_is_unresolved(s, f)) {
		ld_escape_append(b, fn, mode);
		return;
	}
	/* The name without its symbol version ("@@GLIBC_2.34"). */
	size_t n = ld_frame_function_len(s, f);
	char *name = n ? strndup(fn, n) : NULL;
	const char *shown = name ? name : fn;
	if (ld_report_no_line(s, f) && n) {
		/* No line: the file is only the module the code is in, so the
		 * function leads and the module's base name follows it, alike for
		 * the program and its libraries. */
		const char *base = strrchr(file, '/');
		ld_escape_append(b, shown, mode);
		if (*file) {
			ld_buf_puts(b, " (");
			ld_escape_append(b, base && base[1] ? base + 1 : file, mode);
			ld_buf_puts(b, ")");
		}
	} else {
		ld_escape_append(b, ld_report_short_path(s, file), mode);
		if (!ld_report_no_line(s, f))
			ld_buf_printf(b, ":%d", f->line);
		if (n) {
			ld_buf_puts(b, " in ");
			ld_escape_append(b, shown, mode);
		}
	}
	free(name);
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
		ld_buf_printf(b, " grew by %s %s, over --max-type-growth=%s", a, ld_report_noun(h->value, "object", "objects"), c);
		break;
	}
}

int ld_report_write(FILE *out, struct ld_buf *b)
{
	int r = 0;
	if (b->oom) {
		r = -ENOMEM;
	} else if (b->len) {
		errno = 0;
		if (fwrite(b->data, 1, b->len, out) != b->len)
			r = errno ? -errno : -EIO;
	}
	ld_buf_finish(b);
	return r;
}

const char *ld_report_noun(int64_t n, const char *one, const char *many)
{
	return n == 1 || n == -1 ? one : many;
}

/* Byte length of the first cols code points of s (all of s if shorter). */
static size_t prefix_bytes(const char *s, size_t cols)
{
	size_t i = 0;
	for (size_t c = 0; s[i] && c < cols; c++) {
		i++;
		while (((unsigned char)s[i] & 0xc0) == 0x80)
			i++;
	}
	return i;
}

void ld_report_cut(struct ld_buf *b, const char *s, size_t cols)
{
	size_t w = ld_text_width(s);
	if (cols < 2)
		cols = 2;
	if (w <= cols) {
		ld_buf_puts(b, s);
		return;
	}
	size_t keep = cols - 1, head = keep / 3, tail = keep - head;
	ld_buf_add(b, s, prefix_bytes(s, head));
	ld_buf_puts(b, "…");
	ld_buf_puts(b, s + prefix_bytes(s, w - tail));
}

/* Characters that a shell word may hold unquoted. */
static bool shell_plain(const char *s)
{
	if (!*s)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("@%+=:,./-_", *p)))
			return false;
	return true;
}

/* One word of a command line as the shell would take it back; see above. */
static void shell_word(struct ld_buf *b, const char *arg)
{
	if (shell_plain(arg)) {
		ld_buf_puts(b, arg);
		return;
	}
	size_t backslashes = 0;
	for (const char *p = arg; *p; p++)
		backslashes += *p == '\\';
	char *esc = ld_escape_dup(arg, LD_ESCAPE_TEXT);
	if (!esc) {
		b->oom = true;
		return;
	}
	/* Escaping only doubled the backslashes: nothing a terminal would act
	 * on, so single quotes, in which a backslash is itself, show it as is. */
	if (strlen(esc) == strlen(arg) + backslashes) {
		ld_buf_putc(b, '\'');
		for (const char *p = arg; *p; p++) {
			if (*p == '\'')
				ld_buf_puts(b, "'\\''");
			else
				ld_buf_putc(b, *p);
		}
		ld_buf_putc(b, '\'');
	} else {
		ld_buf_puts(b, "$'");
		for (const char *p = esc; *p; p++) {
			if (*p == '\'')
				ld_buf_puts(b, "\\'");
			else
				ld_buf_putc(b, *p);
		}
		ld_buf_putc(b, '\'');
	}
	free(esc);
}

/* " … (+N arguments)" for n words left out. */
static void more_mark(char *buf, size_t size, size_t n)
{
	char c[32];
	ld_count_format(c, sizeof(c), (int64_t)n, false);
	snprintf(buf, size, " (+%s %s)", c, ld_report_noun((int64_t)n, "argument", "arguments"));
}

void ld_report_command(struct ld_buf *b, char *const *argv, size_t n, size_t max_cols)
{
	if (max_cols < 24)
		max_cols = 24;
	struct ld_buf line;
	ld_buf_init(&line);
	size_t width = 0, shown = 0;
	char mark[64];
	for (; shown < n; shown++) {
		struct ld_buf word;
		ld_buf_init(&word);
		shell_word(&word, argv[shown]);
		if (word.oom) {
			ld_buf_finish(&word);
			b->oom = true;
			break;
		}
		size_t ww = ld_text_width(word.len ? word.data : "") + (shown > 0);
		/* Room for the mark unless this is the last word. */
		size_t need = width + ww;
		if (shown + 1 < n) {
			more_mark(mark, sizeof(mark), n - shown - 1);
			need += 2 + ld_text_width(mark); /* " …" and the mark */
		}
		bool fits = need <= max_cols;
		if (!fits && shown + 1 == n && width + ww <= max_cols)
			fits = true;
		if (!fits) {
			if (shown == 0) {
				/* Even the program's name is too long: cut it. */
				more_mark(mark, sizeof(mark), n - 1);
				size_t room = max_cols - (n > 1 ? ld_text_width(mark) : 0);
				size_t keep = prefix_bytes(word.data, room - 1);
				ld_buf_add(&line, word.data, keep);
				ld_buf_puts(&line, "…");
				if (n > 1)
					ld_buf_puts(&line, mark);
				ld_buf_finish(&word);
				shown = n;
				break;
			}
			ld_buf_finish(&word);
			break;
		}
		if (shown > 0)
			ld_buf_putc(&line, ' ');
		ld_buf_add(&line, word.data, word.len);
		width += ww;
		ld_buf_finish(&word);
	}
	if (shown < n) {
		more_mark(mark, sizeof(mark), n - shown);
		ld_buf_puts(&line, " …");
		ld_buf_puts(&line, mark);
	}
	if (line.oom)
		b->oom = true;
	else if (line.len)
		ld_buf_add(b, line.data, line.len);
	ld_buf_finish(&line);
}

/* Frame i of st as a report prints it, in a new string; NULL when out of memory. */
static char *frame_text(const struct ld_diff_stack *st, uint32_t i)
{
	struct ld_buf b;
	ld_buf_init(&b);
	ld_report_frame(&b, st, i, LD_ESCAPE_TEXT);
	size_t len;
	char *t = ld_buf_detach(&b, &len);
	ld_buf_finish(&b);
	return t;
}

/* The headline of a row: its first frame and the caller shown under it. */
static char *headline(const struct ld_diff_stack *st)
{
	struct ld_buf b;
	ld_buf_init(&b);
	ld_report_frame(&b, st, 0, LD_ESCAPE_TEXT);
	int caller = ld_report_caller(st);
	if (caller > 0) {
		ld_buf_putc(&b, '\n');
		ld_report_frame(&b, st, (uint32_t)caller, LD_ESCAPE_TEXT);
	}
	size_t len;
	char *t = ld_buf_detach(&b, &len);
	ld_buf_finish(&b);
	return t;
}

/* Index of the first frame of a that prints unlike b's; a->depth when none does. */
static uint32_t first_difference(const struct ld_diff_stack *a, const struct ld_diff_stack *b)
{
	uint32_t i = 0;
	for (; i < a->depth && i < b->depth; i++) {
		char *x = frame_text(a, i), *y = frame_text(b, i);
		bool same = x && y && strcmp(x, y) == 0;
		free(x);
		free(y);
		if (!same)
			break;
	}
	return i;
}

struct twin {
	size_t row;
	char *head;
};

static int twin_cmp(const void *a, const void *b)
{
	const struct twin *x = a, *y = b;
	int c = strcmp(x->head, y->head);
	return c ? c : (x->row > y->row) - (x->row < y->row);
}

/* Rows of one headline compared pairwise; a larger group is left as it is. */
#define TWINS_MAX 64

int ld_report_twins(const struct ld_diff_site *rows, size_t n, const struct ld_report_opts *o, size_t top,
		    int **out)
{
	*out = NULL;
	size_t shown = ld_report_count_sites(rows, n, o, top, NULL);
	int *differ = malloc((n ? n : 1) * sizeof(*differ));
	struct twin *tw = calloc(shown ? shown : 1, sizeof(*tw));
	if (!differ || !tw) {
		free(differ);
		free(tw);
		return -ENOMEM;
	}
	size_t k = 0;
	int r = 0;
	for (size_t i = 0; i < n; i++)
		differ[i] = -1;
	for (size_t i = 0, seen = 0; i < n && seen < shown; i++) {
		if (!ld_diff_site_shown(&rows[i], o->min_bytes))
			continue;
		seen++;
		/* Native rows only, for now: Python reports keep their layout. */
		if (!rows[i].stack.depth || !ld_frame_is_native(rows[i].stack.snap, ld_diff_frame(&rows[i].stack, 0)))
			continue;
		tw[k].row = i;
		if (!(tw[k].head = headline(&rows[i].stack))) {
			r = -ENOMEM;
			break;
		}
		k++;
	}
	if (r == 0)
		qsort(tw, k, sizeof(*tw), twin_cmp);
	for (size_t g = 0; r == 0 && g < k;) {
		size_t e = g + 1;
		while (e < k && strcmp(tw[e].head, tw[g].head) == 0)
			e++;
		if (e - g > 1 && e - g <= TWINS_MAX) {
			for (size_t a = g; a < e; a++) {
				const struct ld_diff_stack *sa = &rows[tw[a].row].stack;
				uint32_t at = 0;
				for (size_t b = g; b < e; b++) {
					if (b == a)
						continue;
					uint32_t d = first_difference(sa, &rows[tw[b].row].stack);
					if (d > at)
						at = d;
				}
				/* The caller line shows frame caller already. */
				if (at > 0 && at < sa->depth && (int)at != ld_report_caller(sa))
					differ[tw[a].row] = (int)at;
			}
		}
		g = e;
	}
	for (size_t i = 0; i < k; i++)
		free(tw[i].head);
	free(tw);
	if (r < 0) {
		free(differ);
		return r;
	}
	*out = differ;
	return 0;
}

void ld_report_attached(struct ld_buf *b, double attached)
{
	time_t t = (time_t)attached;
	struct tm tm;
	char when[32] = "?";
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	ld_buf_printf(b, "attached at %s, tracing since then", when);
}
