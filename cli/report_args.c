/* The report options of diff and show; see report_args.h. */
#include "report_args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "snap.h"
#include "units.h"

enum { OPT_MIN_BYTES = 0x100, OPT_COLOR, OPT_TYPE_SITES };

/*
 * diff and show share the parser but not every word of the help: show has
 * no Markdown report, and its rows are sizes rather than changes.
 */
#define COMMON_OPTIONS \
	{ "top", 'n', "N", 0, "Show the N largest rows of each table (default 10; 0 shows all)", 1 }, \
	{ "by", 'b', "WHAT", 0, "Tables to show: type, site or all (default)", 1 }, \
	{ "verbose", 'v', 0, 0, "Show whole tracebacks, not just the allocating line", 1 }, \
	{ "color", OPT_COLOR, "WHEN", 0, "Colour the text report: auto (the default; on a terminal " \
	  "unless NO_COLOR is set), always, or never", 1 }, \
	{ "type-sites", OPT_TYPE_SITES, "N", 0, "Allocation sites listed under each type (default 3)", 1 }

static const struct argp_option diff_options[] = {
	{ "format", 'f', "FORMAT", 0, "Format: text (default), json, markdown or html", 1 },
	{ "min-bytes", OPT_MIN_BYTES, "SIZE", 0, "Leave out rows whose byte change is under SIZE (e.g. 4KiB)", 1 },
	COMMON_OPTIONS,
	{ 0 }
};

static const struct argp_option show_options[] = {
	{ "format", 'f', "FORMAT", 0, "Format: text (default), json or html", 1 },
	{ "min-bytes", OPT_MIN_BYTES, "SIZE", 0, "Leave out rows of less than SIZE (e.g. 4KiB)", 1 },
	COMMON_OPTIONS,
	{ 0 }
};

void ld_report_args_init(struct ld_report_args *a)
{
	memset(a, 0, sizeof(*a));
	a->format = &ld_report_formats[0];
	a->opts.top = 10;
	a->opts.type_sites = 3;
	a->color = "auto";
}

static error_t parse(int key, char *arg, struct argp_state *state)
{
	struct ld_report_args *a = state->input;
	const struct ld_report_format *format;
	char names[256];
	uint64_t v;
	switch (key) {
	case 'f':
		format = ld_report_format_find(arg, a->show);
		if (format) {
			a->format = format;
		} else {
			ld_report_format_names(a->show, names, sizeof(names));
			argp_error(state, "unknown format '%s' (use %s)", arg, names);
		}
		return 0;
	case 'n':
		if (ld_uint_parse(arg, 1u << 30, &v) < 0)
			argp_error(state, "--top takes a whole number, not '%s'", arg);
		a->opts.top = (size_t)v;
		return 0;
	case OPT_MIN_BYTES:
		if (ld_size_parse(arg, &a->opts.min_bytes) < 0)
			argp_error(state, "--min-bytes takes a size such as 4096, 64KiB or 1.5MiB, not '%s'", arg);
		return 0;
	case 'b':
		if (strcmp(arg, "type") == 0 || strcmp(arg, "types") == 0)
			a->opts.by = LD_REPORT_TYPES;
		else if (strcmp(arg, "site") == 0 || strcmp(arg, "sites") == 0)
			a->opts.by = LD_REPORT_SITES;
		else if (strcmp(arg, "all") == 0)
			a->opts.by = LD_REPORT_ALL;
		else
			argp_error(state, "--by takes type, site or all, not '%s'", arg);
		return 0;
	case 'v':
		a->opts.verbose = true;
		return 0;
	case OPT_COLOR:
		a->color = arg;
		if (strcmp(arg, "auto") && strcmp(arg, "always") && strcmp(arg, "never"))
			argp_error(state, "--color takes auto, always or never, not '%s'", arg);
		return 0;
	case OPT_TYPE_SITES:
		if (ld_uint_parse(arg, 1000, &v) < 0)
			argp_error(state, "--type-sites takes a whole number up to 1000, not '%s'", arg);
		a->opts.type_sites = (size_t)v;
		return 0;
	default:
		return ARGP_ERR_UNKNOWN;
	}
}

const struct argp ld_report_argp = { .options = diff_options, .parser = parse };
const struct argp ld_report_show_argp = { .options = show_options, .parser = parse };

int ld_report_args_finish(struct ld_report_args *a)
{
	if (ld_cli_color(a->color, &a->opts.color) < 0)
		return -1;
	if (!a->format->color)
		a->opts.color = false;
	a->opts.width = ld_cli_columns();
	return 0;
}

int ld_cli_load(const char *path, struct ld_snapshot **out)
{
	struct ld_snap_limits lim = { 0 };
	const char *env = getenv("LEAKDIFF_MAX_SNAPSHOT");
	if (env && *env && ld_size_parse(env, &lim.max_bytes) < 0) {
		ld_cli_error(NULL, "LEAKDIFF_MAX_SNAPSHOT: '%s' is not a size", env);
		return -1;
	}
	struct ld_error err = { { 0 } };
	int r = ld_snap_load(path, &lim, out, &err);
	if (r < 0) {
		ld_cli_error(path, "%s", err.msg[0] ? err.msg : strerror(-r));
		return -1;
	}
	return 0;
}
