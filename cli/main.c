/*
 * leakdiff's entry point: a small argp parser for the global options that
 * hands everything after the subcommand name to that subcommand's own argp
 * parser, then checks that stdout was written in full.
 */
#include <argp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"

const char *argp_program_version = "leakdiff " LD_VERSION;
const char *argp_program_bug_address = NULL;

static const struct ld_cmd *const commands[] = {
	&ld_cmd_record,
	&ld_cmd_diff,
	&ld_cmd_show,
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

struct global {
	int cmd_index; /* argv index of the subcommand name, 0 when none */
};

static error_t parse_global(int key, char *arg, struct argp_state *state)
{
	struct global *g = state->input;
	switch (key) {
	case ARGP_KEY_ARG:
		g->cmd_index = state->next - 1;
		state->next = state->argc; /* the rest belongs to the subcommand */
		return 0;
	case ARGP_KEY_NO_ARGS:
		argp_usage(state);
		return 0;
	default:
		return ARGP_ERR_UNKNOWN;
	}
}

static char *help_filter(int key, const char *text, void *input)
{
	if (key != ARGP_KEY_HELP_POST_DOC)
		return (char *)text;
	size_t size = 1024;
	char *buf = malloc(size);
	if (!buf)
		return (char *)text;
	size_t o = (size_t)snprintf(buf, size, "Commands:\n");
	for (size_t i = 0; i < NCOMMANDS && o < size; i++)
		o += (size_t)snprintf(buf + o, size - o, "  %-8s %s\n", commands[i]->name, commands[i]->summary);
	if (o < size)
		snprintf(buf + o, size - o, "\nRun 'leakdiff COMMAND --help' for a command's options and exit "
			 "status.\nSee leakdiff(1).");
	return buf;
}

static const struct argp global_argp = {
	.options = NULL,
	.parser = parse_global,
	.args_doc = "COMMAND [ARG...]",
	.doc = "Find memory leaks in Python and native (C, C++) programs by comparing heap "
	       "snapshots, by allocation site and, for Python, by type.\v",
	.help_filter = help_filter,
};

int main(int argc, char **argv)
{
	struct global g = { 0 };
	argp_err_exit_status = LD_EXIT_USAGE;
	argp_parse(&global_argp, argc, argv, ARGP_IN_ORDER, NULL, &g);
	if (!g.cmd_index)
		return LD_EXIT_USAGE;

	const char *name = argv[g.cmd_index];
	const struct ld_cmd *cmd = NULL;
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i]->name, name) == 0)
			cmd = commands[i];
	if (!cmd) {
		ld_cli_error(NULL, "'%s' is not a command; see 'leakdiff --help'", name);
		return LD_EXIT_USAGE;
	}

	/* The subcommand sees "leakdiff NAME" as its program name in messages. */
	char progname[64];
	snprintf(progname, sizeof(progname), "leakdiff %s", cmd->name);
	char **sub = &argv[g.cmd_index];
	sub[0] = progname;
	int status = cmd->run(argc - g.cmd_index, sub);

	/* A report cut short by a full disk must not look like success. */
	if (ld_cli_check_stdout(0) < 0) {
		if (status == LD_EXIT_OK || status == LD_EXIT_GREW)
			status = cmd == &ld_cmd_record ? LD_EXIT_RECORDER : LD_EXIT_USAGE;
	}
	return status;
}
