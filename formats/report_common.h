/* Helpers shared by the text and JSON renderers; private to formats/. */
#ifndef LD_FORMATS_REPORT_COMMON_H
#define LD_FORMATS_REPORT_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "diff.h"
#include "escape.h"
#include "report.h"

/*
 * file without the longest import root of s that prefixes it ("app/x.py"
 * rather than "/srv/checkout/app/x.py"); file itself when none does.
 */
const char *ld_report_short_path(const struct ld_snapshot *s, const char *file);

/*
 * The frame a "called from" line shows, or -1 for none. Python: when the
 * innermost frame of st is library code (ld_frame_is_library() in
 * frames.h), the first frame that is not (the caller's line people want to
 * see). Native: when it is library code or an allocator wrapper
 * (ld_frame_is_allocator()), the first frame past the wrappers that has a
 * name, else the first past them at all.
 */
int ld_report_caller(const struct ld_diff_stack *st);

/*
 * The native part of the heap totals (`leakdiff record --native`), before
 * and after, into *out: true when the after snapshot has one (a before
 * snapshot without one counts 0), false and *out untouched otherwise.
 */
bool ld_report_native_row(const struct ld_diff *d, struct ld_diff_row *out);

/*
 * Rows that print alike: among the native rows of a site table that a
 * report shows (as ld_report_count_sites() selects them), those with the same
 * first frame and "called from" line as another. On success *out is an
 * array of n ints, which the caller frees: for such a row, the index of
 * the frame just past the longest beginning its traceback shares (in
 * print) with another row alike, to show under it; -1 for other rows, and
 * where that frame is already shown or the traceback ends first. Returns 0 or -ENOMEM (*out NULL).
 */
int ld_report_twins(const struct ld_diff_site *rows, size_t n, const struct ld_report_opts *o, size_t top,
		    int **out);

/* Number of rows a table shows: selected ones, cut at o->top. */
size_t ld_report_count_sites(const struct ld_diff_site *rows, size_t n, const struct ld_report_opts *o,
			     size_t top, size_t *selected);
size_t ld_report_count_types(const struct ld_diff_type *rows, size_t n, const struct ld_report_opts *o,
			     size_t *selected);

/* Whether a hint is worth reporting: it grew, it is garbage, or it is the path
 * of a type whose object count grew. */
bool ld_report_hint_shown(const struct ld_diff_hint *h);

/*
 * Appends one sentence for an exceeded limit, names escaped for mode:
 * "total heap growth +6.20 MiB exceeds --max-total-growth=5.00 MiB".
 */
void ld_report_limit_text(struct ld_buf *b, const struct ld_limit_hit *h, const struct ld_limits *lim,
			  const struct ld_verdict *v, enum ld_escape_mode mode);

/*
 * True when f is a native frame whose line is unknown (0): its file is then
 * only the library or program the code is in. Python frames keep line 0.
 */
bool ld_report_no_line(const struct ld_snapshot *s, const struct ld_frame *f);

/*
 * Appends "file:line in function" for frame i of st, escaped for mode; a
 * frame without a line (see ld_report_no_line) as "function (module)",
 * the base name of its file.
 */
void ld_report_frame(struct ld_buf *b, const struct ld_diff_stack *st, uint32_t i, enum ld_escape_mode mode);

/*
 * Writes the report built in b to out and frees b's bytes. Returns 0,
 * -ENOMEM when b ran out of memory, or the negative errno of the failed
 * write (-EIO when the stream did not say), so that the caller can name
 * the real cause, such as a full disk.
 */
int ld_report_write(FILE *out, struct ld_buf *b);

/*
 * one when n is 1 or -1, many otherwise, for a noun after a count: "1
 * entry", "+1 object", "3 entries".
 */
const char *ld_report_noun(int64_t n, const char *one, const char *many);

/*
 * Appends s, which must already be escaped (valid UTF-8 without controls),
 * cut to at most cols columns: when it is longer, its start and its end
 * are kept around a "…" that marks the cut, so a file name keeps its last
 * part. cols below 2 is taken as 2.
 */
void ld_report_cut(struct ld_buf *b, const char *s, size_t cols);

/*
 * Appends the command line argv[0..n) as a shell would take it back:
 * words that need it in POSIX single quotes, and words with characters a
 * terminal must not see in bash's $'...' with escape.c's escapes (\n,
 * \x1b, \\), so nothing is run together and no escape is forged. When it
 * would be wider than max_cols columns, the words that fit are kept and
 * the rest replaced by " … (+N arguments)"; a first word that alone does
 * not fit is cut with "…". The result is never wider than max_cols (at
 * least 24).
 */
void ld_report_command(struct ld_buf *b, char *const *argv, size_t n, size_t max_cols);

/*
 * For a snapshot whose agent was attached to a running process (meta
 * attached, unix time, >= 0): appends "attached at 2026-01-02T03:04:05Z,
 * tracing since then". Allocation sites cover only what was allocated
 * after that moment, which the reader must know.
 */
void ld_report_attached(struct ld_buf *b, double attached);

/*
 * The JSON report of d (a show report when show is true) as a cJSON tree,
 * the same document ld_report_diff_json() and ld_report_show_json() print,
 * for a renderer that embeds it (the HTML page). On success stores the
 * tree in *out, which the caller frees with cJSON_Delete(), and returns 0;
 * returns -ENOMEM and stores NULL when memory ran out.
 */
struct cJSON;
int ld_report_json_tree(const struct ld_diff *d, const struct ld_report_opts *o, bool show, struct cJSON **out);

/* The limit a hit broke, as its option is spelled ("--max-site-growth"). */
const char *ld_report_limit_option(enum ld_limit_kind k);

#endif
