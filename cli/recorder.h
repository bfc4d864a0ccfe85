/*
 * The recorder: events of the pipe protocol (leakdiff-protocol(7)) in,
 * .snap files out. It numbers the files (run.1.snap, run.2.snap, ... and
 * run.snap for the at-exit snapshot), turns native raw documents into
 * snapshots by symbolising them, stamps each snapshot with the command
 * line and the trigger the recorder knows better than the agent, writes it
 * atomically, and drops snapshots that were cut off. It does not know how
 * the program was started or how the bytes reach it: `leakdiff record`
 * feeds it the pipe of a command it spawned, and the tests and a later
 * attach mode can feed it from any channel.
 *
 * It lives in cli/ because it reports on stderr, as "leakdiff: ..." lines.
 */
#ifndef LD_CLI_RECORDER_H
#define LD_CLI_RECORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "wire.h"

struct ld_recorder_config {
	/* The at-exit snapshot's file; earlier ones get their number inserted. */
	const char *output;
	/* Stamped into every snapshot's meta.command. */
	char *const *command;
	size_t ncommand;
	/* Do not name each file written on stderr. */
	bool quiet;
	/* >= 0: every byte fed is also written to this descriptor (for tests). */
	int tee_fd;
};

/* What the caller may want to know about the stream so far. */
struct ld_recorder_status {
	bool connected;   /* an agent said hello */
	int hellos;       /* agents that said hello, one per process (its execs count once):
			   more than one with LEAKDIFF_FOLLOW_EXEC */
	pid_t agent_pid;  /* the last agent's pid, 0 when it did not say */
	bool requests;    /* the last agent reads requests on the request channel */
	bool got_exit;    /* the at-exit snapshot was written */
	bool exit_failed; /* the at-exit snapshot came but could not be written */
	bool requested;   /* a timed snapshot was asked for and has not arrived */
	bool final_written, final_failed; /* see ld_recorder_stamp_next() */
	int written, failed_writes;
};

struct ld_recorder;

/*
 * Creates a recorder for cfg. The strings cfg points to are borrowed and
 * must outlive the recorder; the descriptor stays the caller's. Returns
 * NULL when memory runs out.
 */
struct ld_recorder *ld_recorder_create(const struct ld_recorder_config *cfg);

/* Frees the recorder, its parser and its symbolizer; r may be NULL. */
void ld_recorder_destroy(struct ld_recorder *r);

/*
 * Names the process whose at-exit snapshot goes to the output file when
 * several agents share the stream; the others' are numbered. Until it is
 * set, or with a single agent, any at-exit snapshot goes there.
 */
void ld_recorder_set_target(struct ld_recorder *r, pid_t pid);

/*
 * Tells the recorder that the caller asked for a snapshot on a timer, so
 * that the next signal snapshot (from an agent that was asked with the
 * signal, not on the request channel) is stamped with the trigger
 * "interval".
 */
void ld_recorder_requested(struct ld_recorder *r);

/*
 * For attach mode: the next snapshot that answers a request (trigger
 * "signal" or "interval") gets trigger (borrowed; "attach", "detach") as
 * its meta.trigger and, when final, is written to the output file as the
 * last snapshot of the run, which sets final_written (or final_failed).
 */
void ld_recorder_stamp_next(struct ld_recorder *r, const char *trigger, bool final);

/*
 * Handles one event of the stream, a callback for ld_wire_create() (ctx is
 * the recorder). Problems (an invalid snapshot, a file that cannot be
 * written) are reported on stderr and counted in the status; it always
 * returns 0 so that the stream goes on.
 */
int ld_recorder_event(void *ctx, const struct ld_wire_event *ev);

/*
 * Parses len more bytes of the stream with the recorder's own parser and
 * handles the events in it. A corrupt stream is reported once and the
 * rest of it ignored; a failed copy to the tee descriptor is reported
 * once and counted as a failed write.
 */
void ld_recorder_feed(struct ld_recorder *r, const void *data, size_t len);

/*
 * Tells the recorder the stream ended: a snapshot still open is reported
 * as dropped. Feeding after this starts no new stream.
 */
void ld_recorder_finish(struct ld_recorder *r);

/* The status so far; valid until the recorder is destroyed. */
const struct ld_recorder_status *ld_recorder_status(const struct ld_recorder *r);

#endif
