/*
 * What the subcommands share: the dispatch table entry, exit codes and the
 * one way messages are printed ("leakdiff: SUBJECT: message").
 */
#ifndef LD_CLI_CLI_H
#define LD_CLI_CLI_H

#include <argp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/*
 * Exit codes, the same table as in leakdiff(1) and --help. diff and show
 * use the low codes; record passes on the target's status and uses
 * timeout(1)'s codes for its own failures so the two cannot be confused.
 */
enum ld_exit {
	LD_EXIT_OK = 0,
	LD_EXIT_GREW = 1,        /* diff: a growth limit was exceeded */
	LD_EXIT_USAGE = 2,       /* diff, show: bad usage or unreadable snapshot */
	LD_EXIT_RECORDER = 125,  /* record: the recorder itself failed */
	LD_EXIT_CANNOT_RUN = 126,/* record: the command cannot be executed */
	LD_EXIT_NOT_FOUND = 127, /* record: the command was not found */
};

struct ld_cmd {
	const char *name;
	const char *summary;
	/* Runs the subcommand on its own argv (argv[0] is "leakdiff NAME"). */
	int (*run)(int argc, char **argv);
};

extern const struct ld_cmd ld_cmd_record;
extern const struct ld_cmd ld_cmd_diff;
extern const struct ld_cmd ld_cmd_show;

/* Prints "leakdiff: SUBJECT: message" (or without a subject when NULL). */
void ld_cli_error(const char *subject, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Flushes stdout and checks it for a write error, err (a positive errno,
 * 0 when none) being one a renderer already met. On failure prints
 * "leakdiff: standard output: REASON" the first time only, so a report cut
 * short by a full disk gets one message with its real cause, and returns
 * -1; otherwise 0.
 */
int ld_cli_check_stdout(int err);

/*
 * The width the text report is laid out for: the terminal's when stdout is
 * one, else COLUMNS when it is a positive number, else 80.
 */
size_t ld_cli_columns(void);

/* Whether to colour stdout for --color=WHEN ("auto", "always", "never"). */
int ld_cli_color(const char *when, bool *out);

/*
 * Writes one "snapshot TRIGGER\n" request (leakdiff-protocol(7)) to qfd,
 * the recorder's end of an agent's request channel, retrying when a signal
 * interrupts the write. True when the whole line went in; false on any
 * error, including a full channel (a non-blocking qfd whose agent has not
 * read the last requests yet). trigger is short ("signal", "interval").
 */
bool ld_cli_request_snapshot(int qfd, const char *trigger);

/* The exit codes as a block of --help text. */
#define LD_EXIT_HELP_DIFF \
	"Exit status:\n" \
	"  0    success\n" \
	"  1    a growth limit was exceeded\n" \
	"  2    usage error, or a snapshot that cannot be read\n"

#define LD_EXIT_HELP_SHOW \
	"Exit status:\n" \
	"  0    success\n" \
	"  2    usage error, or a snapshot that cannot be read\n"

#define LD_EXIT_HELP_RECORD \
	"Exit status: the command's own status, or 128+N when signal N killed it;\n" \
	"  125  the recorder failed (bad options, a snapshot that could not be written)\n" \
	"  126  the command was found but cannot be executed\n" \
	"  127  the command was not found\n"

#endif
