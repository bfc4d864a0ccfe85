/* Report options shared by diff and show, as an argp child parser. */
#ifndef LD_CLI_REPORT_ARGS_H
#define LD_CLI_REPORT_ARGS_H

#include <argp.h>
#include <stdbool.h>

#include "report.h"
#include "snapshot.h"

struct ld_report_args {
	struct ld_report_opts opts;
	const struct ld_report_format *format; /* a row of ld_report_formats */
	const char *color;
	bool show; /* the subcommand is show: formats without a show report are refused */
};

/* Parses --format, --top, --min-bytes, --by, --verbose, --color, --type-sites
 * into the struct ld_report_args given as the child's input. The first has
 * diff's help text; the second show's, which leaves out what show lacks. */
extern const struct argp ld_report_argp;
extern const struct argp ld_report_show_argp;

/* Sets defaults; call before argp_parse. */
void ld_report_args_init(struct ld_report_args *a);

/* Resolves --color; prints and returns -1 on a bad value. */
int ld_report_args_finish(struct ld_report_args *a);

/*
 * Loads a snapshot for diff or show, honouring LEAKDIFF_MAX_SNAPSHOT. On
 * failure prints "leakdiff: PATH: reason" and returns -1.
 */
int ld_cli_load(const char *path, struct ld_snapshot **out);

#endif
