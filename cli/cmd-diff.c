/* leakdiff diff: what grew between two snapshots. */
#include <argp.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "diff.h"
#include "report_args.h"
#include "units.h"

enum { OPT_DEPTH = 0x200 };

struct args {
	struct ld_report_args report;
	const char *paths[2];
	int npaths;
	uint32_t depth;
};

static const struct argp_option options[] = {
	{ "depth", OPT_DEPTH, "N", 0, "Compare tracebacks on their innermost N frames only, adding up "
	  "sites that then look the same (1 groups by allocating line; default: all frames)", 0 },
	{ 0 }
};

static error_t parse(int key, char *arg, struct argp_state *state)
{
	struct args *a = state->input;
	uint64_t v;
	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = &a->report;
		return 0;
	case OPT_DEPTH:
		if (ld_uint_parse(arg, LD_DEPTH_MAX, &v) < 0)
			argp_error(state, "--depth takes a whole number from 0 to %d, not '%s'", LD_DEPTH_MAX, arg);
		a->depth = (uint32_t)v;
		return 0;
	case ARGP_KEY_ARG:
		if (a->npaths == 2)
			argp_error(state, "too many snapshots: give BEFORE and AFTER");
		a->paths[a->npaths++] = arg;
		return 0;
	case ARGP_KEY_END:
		if (a->npaths < 2)
			argp_error(state, "give two snapshots: BEFORE and AFTER");
		return 0;
	default:
		return ARGP_ERR_UNKNOWN;
	}
}

static const struct argp_child children[] = { { &ld_report_argp, 0, "Report options:", 1 }, { 0 } };

static const struct argp argp = {
	.options = options,
	.parser = parse,
	.args_doc = "BEFORE.snap AFTER.snap",
	.doc = "Report what grew between two heap snapshots: totals, growth by type, growth by "
	       "allocation site, and leak hints (growing containers and caches, uncollectable "
	       "objects, why instances stay alive). Rows are sorted by byte growth.\v" LD_EXIT_HELP_DIFF
	       "\nEnvironment: LEAKDIFF_MAX_SNAPSHOT (largest decompressed snapshot accepted, default "
	       "1GiB), NO_COLOR.",
	.children = children,
};

static int run(int argc, char **argv)
{
	struct args a = { 0 };
	ld_report_args_init(&a.report);
	argp_err_exit_status = LD_EXIT_USAGE;
	if (argp_parse(&argp, argc, argv, 0, NULL, &a) != 0)
		return LD_EXIT_USAGE;
	if (ld_report_args_finish(&a.report) < 0)
		return LD_EXIT_USAGE;

	struct ld_snapshot *before = NULL, *after = NULL;
	struct ld_diff *d = NULL;
	int status = LD_EXIT_USAGE;
	if (ld_cli_load(a.paths[0], &before) < 0 || ld_cli_load(a.paths[1], &after) < 0)
		goto out;
	struct ld_diff_opts dopts = { .depth = a.depth };
	int r = ld_diff_create(before, after, &dopts, &d);
	if (r < 0) {
		ld_cli_error(NULL, "cannot compare snapshots: %s", strerror(-r));
		goto out;
	}
	a.report.opts.before_path = a.paths[0];
	a.report.opts.after_path = a.paths[1];
	a.report.opts.depth = a.depth;
	r = a.report.format == LD_FORMAT_JSON ? ld_report_diff_json(stdout, d, &a.report.opts)
					      : ld_report_diff_text(stdout, d, &a.report.opts);
	if (r < 0) {
		ld_cli_error(NULL, "cannot write the report: %s", strerror(-r));
		goto out;
	}
	status = LD_EXIT_OK;
out:
	ld_diff_destroy(d);
	ld_snapshot_destroy(before);
	ld_snapshot_destroy(after);
	return status;
}

const struct ld_cmd ld_cmd_diff = {
	.name = "diff",
	.summary = "report growth by type and allocation site between two snapshots",
	.run = run,
};
