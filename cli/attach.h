/*
 * leakdiff record --pid: attaching to a process that is already running,
 * taking its snapshots through a private pair of FIFOs, and leaving it as
 * it was. The runtime is told from the process (a Python interpreter, or a
 * program that embeds libpython, gets the Python agent; anything else the
 * native one), the agent is loaded with inject.c, and the bytes that come
 * back go through the same recorder as `leakdiff record -- CMD`.
 */
#ifndef LD_CLI_ATTACH_H
#define LD_CLI_ATTACH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "launch.h"

struct ld_attach_opts {
	pid_t pid;
	const char *output;       /* the last snapshot's file; earlier ones numbered */
	const struct ld_agent *agent; /* NULL: told from the process */
	struct ld_launch_opts launch; /* depth, sample, peak, tracemalloc; signal: see below */
	uint64_t every_ms;        /* 0: no interval snapshots */
	uint64_t duration_ms;     /* 0: until a signal or the target's exit */
	bool quiet;
	const char *tee;          /* a copy of the raw stream, for tests */
	/*
	 * How long one call into the process may take (dlopen of the native
	 * agent, or the Python loader waiting for the GIL); 0: 10 s. After
	 * that the call is left to finish on its own and attaching fails.
	 */
	int call_ms;
};

/*
 * Attaches to o->pid, records until detach and detaches; returns the exit
 * status of `leakdiff record` (0 after a clean detach, 125 when attaching
 * failed or a snapshot could not be written), having printed a one-line
 * message for every failure. kill -SIGNAL (o->launch.signal) on this
 * process asks for one more snapshot; SIGINT, SIGTERM, SIGHUP and SIGQUIT
 * detach. The target is never signalled and never left traced.
 */
int ld_attach_record(const struct ld_attach_opts *o);

#endif
