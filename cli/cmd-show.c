/* leakdiff show: one snapshot's summary. */
#include <argp.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "diff.h"
#include "report_args.h"

struct args {
	struct ld_report_args report;
	const char *path;
};

static error_t parse(int key, char *arg, struct argp_state *state)
{
	struct args *a = state->input;
	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = &a->report;
		return 0;
	case ARGP_KEY_ARG:
		if (a->path)
			argp_error(state, "give one snapshot");
		a->path = arg;
		return 0;
	case ARGP_KEY_END:
		if (!a->path)
			argp_error(state, "give a snapshot to show");
		return 0;
	default:
		return ARGP_ERR_UNKNOWN;
	}
}

static const struct argp_child children[] = { { &ld_report_show_argp, 0, "Report options:", 1 }, { 0 } };

static const struct argp argp = {
	.options = NULL,
	.parser = parse,
	.args_doc = "SNAPSHOT.snap",
	.doc = "Summarise one heap snapshot: where it came from, totals, the largest types and "
	       "allocation sites, and leak hints.\v" LD_EXIT_HELP_SHOW
	       "\nEnvironment: LEAKDIFF_MAX_SNAPSHOT (largest decompressed snapshot accepted, default "
	       "1GiB), NO_COLOR, COLUMNS (the report's width when not on a terminal).",
	.children = children,
};

static int run(int argc, char **argv)
{
	struct args a = { 0 };
	ld_report_args_init(&a.report);
	a.report.show = true;
	argp_err_exit_status = LD_EXIT_USAGE;
	if (argp_parse(&argp, argc, argv, 0, NULL, &a) != 0)
		return LD_EXIT_USAGE;
	if (ld_report_args_finish(&a.report) < 0)
		return LD_EXIT_USAGE;

	struct ld_snapshot *s = NULL, *empty = NULL;
	struct ld_diff *d = NULL;
	int status = LD_EXIT_USAGE;
	if (ld_cli_load(a.path, &s) < 0)
		goto out;
	/* Compared with nothing, every live row is "growth", sorted by size. */
	empty = ld_snapshot_create();
	int r = empty ? ld_diff_create(empty, s, NULL, &d) : -ENOMEM;
	if (r < 0) {
		ld_cli_error(NULL, "out of memory");
		goto out;
	}
	a.report.opts.after_path = a.path;
	/* --format took only rows with a show renderer. */
	r = a.report.format->show(stdout, d, &a.report.opts);
	if (r == -ENOMEM) {
		ld_cli_error(NULL, "out of memory");
		goto out;
	}
	if (ld_cli_check_stdout(r < 0 ? -r : 0) < 0)
		goto out;
	status = LD_EXIT_OK;
out:
	ld_diff_destroy(d);
	ld_snapshot_destroy(s);
	ld_snapshot_destroy(empty);
	return status;
}

const struct ld_cmd ld_cmd_show = {
	.name = "show",
	.summary = "summarise one snapshot: top types, top sites, metadata",
	.run = run,
};
