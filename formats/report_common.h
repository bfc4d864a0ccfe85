/* Helpers shared by the text and JSON renderers; private to formats/. */
#ifndef LD_FORMATS_REPORT_COMMON_H
#define LD_FORMATS_REPORT_COMMON_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "diff.h"
#include "escape.h"
#include "report.h"

/*
 * file without the longest import root of s that prefixes it ("app/x.py"
 * rather than "/srv/checkout/app/x.py"); file itself when none does.
 */
const char *ld_report_short_path(const struct ld_snapshot *s, const char *file);

/* True when a frame is in the runtime's standard library or bootstrap. */
bool ld_report_library_frame(const struct ld_snapshot *s, const struct ld_frame *f);

/*
 * When the innermost frame of st is library code, the index of the first
 * frame that is not (the caller's line people want to see); otherwise -1.
 */
int ld_report_caller(const struct ld_diff_stack *st);

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

/* Appends "file:line in function" for frame i of st, escaped for mode. */
void ld_report_frame(struct ld_buf *b, const struct ld_diff_stack *st, uint32_t i, enum ld_escape_mode mode);

/* The limit a hit broke, as its option is spelled ("--max-site-growth"). */
const char *ld_report_limit_option(enum ld_limit_kind k);

#endif
