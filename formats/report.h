/*
 * Report renderers: a diff or a single snapshot as text for people, JSON
 * for scripts, an HTML page with a flame graph, or (for a diff) a Markdown
 * summary for CI. Renderers only
 * format; the diff decides what changed. Every name taken from a snapshot
 * goes through escape.h on its way out. The command line reaches them
 * through ld_report_formats, one row per --format value.
 */
#ifndef LD_FORMATS_REPORT_H
#define LD_FORMATS_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "diff.h"
#include "verdict.h"

enum ld_report_by {
	LD_REPORT_ALL,
	LD_REPORT_TYPES,
	LD_REPORT_SITES,
};

struct ld_report_opts {
	const char *before_path, *after_path; /* as the user named them */
	size_t top;          /* rows per table; 0 = all */
	uint64_t min_bytes;  /* noise floor on byte change */
	enum ld_report_by by;
	bool verbose;        /* whole tracebacks instead of the top frame */
	bool color;          /* ANSI colour (text only) */
	size_t width;        /* text: the columns to fit in (the terminal's); 0 = no limit */
	size_t type_sites;   /* allocation sites listed under each type */
	uint32_t depth;      /* the --depth the diff used, echoed in JSON */
	enum ld_match_mode match;
	const struct ld_limits *limits;   /* NULL: none given */
	const struct ld_verdict *verdict; /* NULL: not checked */
	size_t suppressed;   /* rows left out by suppressions */
	size_t nsnapshots;   /* > 2 for a trend over several snapshots */
};

/*
 * Writes the diff d to out. Returns 0, -ENOMEM, or -EIO when out reports a
 * write error (the caller names the stream). Output may be partial on error.
 */
int ld_report_diff_text(FILE *out, const struct ld_diff *d, const struct ld_report_opts *o);
int ld_report_diff_json(FILE *out, const struct ld_diff *d, const struct ld_report_opts *o);

/* The diff as a Markdown summary for a CI job or a pull request comment. */
int ld_report_diff_markdown(FILE *out, const struct ld_diff *d, const struct ld_report_opts *o);

/*
 * Writes one snapshot's summary. d must be the diff of an empty snapshot
 * against it, which sorts its tables by size; o->after_path names the file.
 * Same returns as above.
 */
int ld_report_show_text(FILE *out, const struct ld_diff *d, const struct ld_report_opts *o);
int ld_report_show_json(FILE *out, const struct ld_diff *d, const struct ld_report_opts *o);

/*
 * The diff, or one snapshot's summary, as one self-contained HTML page: the
 * JSON report's document and a differential flame graph drawn by scripts
 * bundled into leakdiff, with nothing fetched when the page is viewed.
 * Same returns as above.
 */
int ld_report_diff_html(FILE *out, const struct ld_diff *d, const struct ld_report_opts *o);
int ld_report_show_html(FILE *out, const struct ld_diff *d, const struct ld_report_opts *o);

/* The signature shared by every renderer above. */
typedef int ld_report_fn(FILE *out, const struct ld_diff *d, const struct ld_report_opts *o);

/* One output format: what --format calls it and what renders it. */
struct ld_report_format {
	const char *name;   /* as --format spells it */
	ld_report_fn *diff; /* the report of leakdiff diff */
	ld_report_fn *show; /* the report of leakdiff show; NULL when the format has none */
	bool color;         /* whether --color applies to it */
};

/*
 * Every format, the default (text) first, in the order messages list them,
 * ended by a row whose name is NULL. The table is static and read-only.
 */
extern const struct ld_report_format ld_report_formats[];

/*
 * Returns the row called name that has a show renderer when show is true
 * (any row otherwise), or NULL when there is none. The row is static.
 */
const struct ld_report_format *ld_report_format_find(const char *name, bool show);

/*
 * Writes the names of the formats (those with a show renderer when show is
 * true) into buf as a message lists them: "text or json", "text, json or
 * markdown". The list is cut short, still NUL-terminated, when size is too
 * small.
 */
void ld_report_format_names(bool show, char *buf, size_t size);

#endif
