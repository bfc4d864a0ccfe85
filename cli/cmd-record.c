/*
 * leakdiff record: the options, and the event loop that joins the two
 * halves. launch.c starts the command with an agent and a pipe; recorder.c
 * turns what comes through the pipe into .snap files. The loop here reads
 * the pipe, forwards signals to the command, asks for snapshots on a timer,
 * and picks the exit status from the command's own and the recorder's.
 */
#include <argp.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attach.h"
#include "cli.h"
#include "config.h"
#include "launch.h"
#include "recorder.h"
#include "snap.h"
#include "units.h"

enum { OPT_RUNTIME = 0x300, OPT_DEPTH, OPT_EVERY, OPT_SIGNAL, OPT_SAMPLE, OPT_TRACEMALLOC, OPT_TEE, OPT_PEAK, OPT_PID, OPT_DURATION, OPT_CALL_MS, OPT_NATIVE };

struct args {
	const char *output;
	const struct ld_agent *agent; /* NULL: chosen by the command */
	struct ld_launch_opts launch; /* depth, signal, sample, tracemalloc */
	uint64_t every_ms;
	pid_t pid;            /* --pid: attach instead of running a command */
	uint64_t duration_ms; /* --duration, with --pid */
	int call_ms;          /* hidden --attach-call-ms, with --pid */
	bool quiet;
	bool native;      /* --native: the Python agent and the native one */
	const char *tee;  /* hidden --tee-stream: a copy of the raw pipe stream */
	char **cmd;
	int ncmd;
};

static const struct argp_option options[] = {
	{ "output", 'o', "FILE", 0, "Write the at-exit snapshot to FILE (default leakdiff.snap); "
	  "earlier snapshots go to FILE with .N before the .snap, N the snapshot's number", 0 },
	{ "runtime", OPT_RUNTIME, "RUNTIME", 0, "auto (default), python or native: auto records Python "
	  "interpreters and scripts run by one with the Python agent, anything else with the native "
	  "(LD_PRELOAD) agent; native on a Python command tracks the interpreter's malloc", 0 },
	{ "depth", OPT_DEPTH, "N", 0, "Record up to N frames per allocation traceback (default 16)", 0 },
	{ "every", OPT_EVERY, "DURATION", 0, "Also take a snapshot every DURATION (e.g. 500ms, 10s, 5m)", 0 },
	{ "signal", OPT_SIGNAL, "SIGNAL", 0, "Signal that asks the target for a snapshot (default USR2)", 0 },
	{ "sample", OPT_SAMPLE, "BYTES", 0, "Sample allocations, on average one per BYTES "
	  "allocated (e.g. 512KiB), and estimate counts and bytes, for low overhead on busy programs "
	  "(default: exact tracking)", 0 },
	{ "tracemalloc", OPT_TRACEMALLOC, 0, 0, "Python: record every allocation with tracemalloc instead "
	  "of the agent's allocator hooks; much slower, but also sees the raw domain and "
	  "memory that extensions report to tracemalloc (NumPy arrays)", 0 },
	{ "native", OPT_NATIVE, 0, 0, "Python: also track the malloc family (C extensions, ctypes, "
	  "NumPy data), each native block under its C frames and the Python line that led to it, "
	  "in the same snapshot as Python's allocations", 0 },
	{ "peak", OPT_PEAK, 0, 0, "Also keep a snapshot of the heap at its high-water mark, in FILE "
	  "with .peak before the .snap (taken again each time live bytes pass the last peak by 5%, "
	  "at least 64 KiB; the last one is kept)", 0 },
	{ "pid", OPT_PID, "PID", 0, "Attach to the running process PID instead of running a command: "
	  "a snapshot right away, the last one (in FILE) at detach", 0 },
	{ "duration", OPT_DURATION, "DURATION", 0, "With --pid: detach after DURATION (e.g. 60s, 5m); "
	  "by default at SIGINT or SIGTERM, or when the process exits", 0 },
	{ "quiet", 'q', 0, 0, "Do not print the name of each snapshot written", 0 },
	/*
	 * For tests and debugging, left out of --help: writes every byte read
	 * from the agent's pipe to FILE as well, so that the frames themselves
	 * (hello, begin, data, end) and a native agent's raw document can be
	 * checked (tests/native/test_agent.py, tests/fuzz/make_corpus.py).
	 */
	{ "tee-stream", OPT_TEE, "FILE", OPTION_HIDDEN, "Also copy the raw pipe stream to FILE", 0 },
	/* For tests: how long one call into an attached process may take. */
	{ "attach-call-ms", OPT_CALL_MS, "MS", OPTION_HIDDEN, "With --pid: limit of one call into the process", 0 },
	{ 0 }
};

/*
 * The snapshot signal must be one a program does not rely on by default:
 * USR1, USR2 or a real-time signal. Anything else (INT, TERM, SEGV, ...)
 * would change what the program does when it arrives.
 */
static int parse_signal(const char *s)
{
	uint64_t v;
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	if (strcasecmp(s, "USR1") == 0)
		return SIGUSR1;
	if (strcasecmp(s, "USR2") == 0)
		return SIGUSR2;
	if (strncasecmp(s, "RTMIN+", 6) == 0 && ld_uint_parse(s + 6, 64, &v) == 0 && SIGRTMIN + (int)v <= SIGRTMAX)
		return SIGRTMIN + (int)v;
	if (ld_uint_parse(s, 64, &v) == 0 &&
	    (v == SIGUSR1 || v == SIGUSR2 || ((int)v >= SIGRTMIN && (int)v <= SIGRTMAX)))
		return (int)v;
	return -1;
}

static error_t parse(int key, char *arg, struct argp_state *state)
{
	struct args *a = state->input;
	uint64_t v;
	switch (key) {
	case 'o':
		if (!*arg)
			argp_error(state, "--output needs a file name");
		a->output = arg;
		return 0;
	case OPT_RUNTIME:
		if (strcmp(arg, "auto") == 0)
			a->agent = NULL;
		else if (!(a->agent = ld_launch_agent_named(arg)) || a->agent->option)
			argp_error(state, "--runtime takes auto, python or native, not '%s'", arg);
		return 0;
	case OPT_DEPTH:
		if (ld_uint_parse(arg, LD_DEPTH_MAX, &v) < 0 || v == 0)
			argp_error(state, "--depth takes a whole number from 1 to %d, not '%s'", LD_DEPTH_MAX, arg);
		a->launch.depth = (unsigned)v;
		return 0;
	case OPT_EVERY:
		if (ld_duration_parse(arg, &a->every_ms) < 0)
			argp_error(state, "--every takes a duration such as 500ms, 10s or 5m, not '%s'", arg);
		return 0;
	case OPT_SIGNAL:
		if ((a->launch.signal = parse_signal(arg)) < 0)
			argp_error(state, "--signal takes USR1, USR2 or RTMIN+N, not '%s'", arg);
		return 0;
	case OPT_SAMPLE:
		if (ld_size_parse(arg, &a->launch.sample) < 0 || a->launch.sample == 0 ||
		    a->launch.sample > (UINT64_C(1) << 40))
			argp_error(state, "--sample takes a size from 1 byte to 1TiB such as 512KiB, not '%s'", arg);
		return 0;
	case OPT_PID:
		if (ld_uint_parse(arg, INT_MAX, &v) < 0 || v == 0)
			argp_error(state, "--pid takes a process id, not '%s'", arg);
		a->pid = (pid_t)v;
		return 0;
	case OPT_DURATION:
		if (ld_duration_parse(arg, &a->duration_ms) < 0 || a->duration_ms == 0)
			argp_error(state, "--duration takes a duration such as 500ms, 10s or 5m, not '%s'", arg);
		return 0;
	case OPT_CALL_MS:
		if (ld_uint_parse(arg, 600000, &v) < 0 || v == 0)
			argp_error(state, "--attach-call-ms takes milliseconds from 1 to 600000, not '%s'", arg);
		a->call_ms = (int)v;
		return 0;
	case OPT_TRACEMALLOC:
		a->launch.tracemalloc = true;
		return 0;
	case OPT_PEAK:
		a->launch.peak = true;
		return 0;
	case OPT_NATIVE:
		a->native = true;
		return 0;
	case OPT_TEE:
		if (!*arg)
			argp_error(state, "--tee-stream needs a file name");
		a->tee = arg;
		return 0;
	case 'q':
		a->quiet = true;
		return 0;
	case ARGP_KEY_ARG:
		a->cmd = &state->argv[state->next - 1];
		a->ncmd = state->argc - state->next + 1;
		state->next = state->argc;
		return 0;
	case ARGP_KEY_END:
		if (a->pid && a->cmd)
			argp_error(state, "--pid attaches to a running process; it takes no command");
		if (a->duration_ms && !a->pid)
			argp_error(state, "--duration is for --pid; a command is recorded until it exits");
		if (!a->cmd && !a->pid)
			argp_error(state, "give a command to run, after --, or a process to attach to with --pid");
		if (a->launch.tracemalloc && a->launch.sample)
			argp_error(state, "--tracemalloc records every allocation; it cannot be used with --sample");
		if (a->launch.peak && a->launch.sample)
			argp_error(state, "--peak follows the exact live bytes; it cannot be used with --sample");
		if (a->native && a->pid)
			argp_error(state, "--native cannot be used with --pid: an attached Python process "
				   "gets the Python agent only");
		if (a->native && a->launch.tracemalloc)
			argp_error(state, "--native records Python's allocations on the allocator hooks; it "
				   "cannot be used with --tracemalloc");
		if (a->native && a->agent && strcmp(a->agent->name, "python") != 0)
			argp_error(state, "--native is for Python programs; it cannot be used with --runtime=%s "
				   "(which already tracks every malloc)", a->agent->name);
		if (a->launch.tracemalloc && a->agent && !a->agent->tracemalloc)
			argp_error(state, "--tracemalloc is for Python programs; it cannot be used with --runtime=%s",
				   a->agent->name);
		return 0;
	default:
		return ARGP_ERR_UNKNOWN;
	}
}

static const struct argp argp = {
	.options = options,
	.parser = parse,
	.args_doc = "[--] COMMAND [ARG...]\n--pid PID",
	.doc = "Run COMMAND with the leakdiff agent inside it and store its heap snapshots. A "
	       "snapshot is taken when the program exits, when it receives the snapshot signal "
	       "(kill -USR2 PID), every --every, with --peak at the heap's high-water mark, and when "
	       "the program calls leakdiff.snapshot(label). Each file written is named on standard "
	       "error. With --pid PID, attach to a process that is already running instead: a "
	       "snapshot at attach, the last one at detach (after --duration, at SIGINT or SIGTERM, "
	       "or when the process exits), and the process goes on as before.\v"
	LD_EXIT_HELP_RECORD,
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}


/* What the loop shares: the command, the pipe and the recorder. */
struct session {
	const struct args *a;
	struct ld_recorder *rec;
	pid_t child;
	bool own_group;   /* the command runs in a process group of its own */
	int rfd, sfd;     /* the pipe's read end; the signalfd */
	int qfd;          /* the request channel's write end */
	int wstatus;
	bool pipe_closed; /* every write end was closed while the command ran */
	uint64_t heard_ms; /* when the last request went out or the last bytes came in */
};

/*
 * How long an --every request may go unanswered, with nothing at all coming
 * from the agent, before it is asked again. A request can be lost without a
 * trace: a signal that reached a process as it ran another program with
 * exec, or one the new agent had to drop; waiting for its answer forever
 * would end the interval snapshots for good. A snapshot that is merely slow
 * to start costs at most one extra snapshot.
 */
#define STALE_REQUEST_MS 5000

/*
 * Asks the agent for a snapshot with the given trigger ("signal" or
 * "interval"): on the request channel when the agent said it reads it, so
 * that the program's own handler of the signal never runs, otherwise with
 * the snapshot signal. False when it cannot be asked (a full channel: the
 * agent has not read the last requests yet).
 */
static bool ask(const struct session *s, const char *trigger)
{
	const struct ld_recorder_status *st = ld_recorder_status(s->rec);
	if (!st->requests || s->qfd < 0)
		return kill(st->agent_pid > 0 ? st->agent_pid : s->child, s->a->launch.signal) == 0;
	return ld_cli_request_snapshot(s->qfd, trigger);
}

/* Handles the signals that arrived; returns true once the command was reaped. */
static bool on_signals(struct session *s, bool exited)
{
	const struct ld_recorder_status *st = ld_recorder_status(s->rec);
	struct signalfd_siginfo si;
	while (read(s->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			continue;
		if ((int)si.ssi_signo == s->a->launch.signal) {
			if (!exited && st->connected && !st->got_exit)
				ask(s, "signal");
			continue;
		}
		/* Keyboard signals already reached the whole shared group. */
		if (!s->own_group && si.ssi_code == SI_KERNEL &&
		    (si.ssi_signo == SIGINT || si.ssi_signo == SIGQUIT))
			continue;
		if (!exited)
			kill(s->child, (int)si.ssi_signo);
	}
	return !exited && waitpid(s->child, &s->wstatus, WNOHANG) == s->child;
}

/*
 * Reads the pipe until end of file, or until nothing is left once the
 * command is gone, handing every byte to the recorder. Returns true at the
 * end of the stream.
 */
static bool drain(struct session *s, bool exited)
{
	char buf[65536];
	for (;;) {
		ssize_t len = read(s->rfd, buf, sizeof(buf));
		if (len < 0 && errno == EINTR)
			continue;
		if (len <= 0)
			/* EOF, or (once the target is gone) nothing left to drain. */
			return len == 0 || (exited && errno == EAGAIN);
		ld_recorder_feed(s->rec, buf, (size_t)len);
		s->heard_ms = now_ms();
	}
}

/* Runs until the pipe ends and the command has been reaped. */
static void loop(struct session *s)
{
	const struct args *a = s->a;
	const struct ld_recorder_status *st = ld_recorder_status(s->rec);
	bool exited = false, eof = false;
	uint64_t next_tick = a->every_ms ? now_ms() + a->every_ms : 0;
	while (!eof) {
		struct pollfd fds[2] = { { .fd = s->rfd, .events = POLLIN }, { .fd = s->sfd, .events = POLLIN } };
		int timeout = -1;
		if (next_tick && !exited) {
			uint64_t now = now_ms();
			timeout = next_tick > now ? (int)(next_tick - now) : 0;
		}
		if (exited)
			timeout = 0; /* drain what the target left, then stop */
		int n = poll(fds, 2, timeout);
		if (n < 0 && errno != EINTR) {
			ld_cli_error(NULL, "poll: %s", strerror(errno));
			break;
		}
		if (fds[1].revents & POLLIN && on_signals(s, exited))
			exited = true;
		if (fds[0].revents & (POLLIN | POLLHUP) || exited)
			eof = drain(s, exited);
		if (!exited && eof) {
			/* The pipe closed before the target ended; wait for it. */
			s->pipe_closed = ld_launch_closed_while_running(s->child);
			while (waitpid(s->child, &s->wstatus, 0) < 0 && errno == EINTR)
				;
			exited = true;
		}
		/*
		 * The interval runs from the end of one snapshot to the next
		 * request, so a heap that takes longer to walk than --every still
		 * leaves the program time to run between snapshots.
		 */
		if (st->got_exit)
			next_tick = 0; /* the program is shutting down: ask no more */
		uint64_t stale = a->every_ms * 10 > STALE_REQUEST_MS ? a->every_ms * 10 : STALE_REQUEST_MS;
		if (next_tick && !exited && st->requested && now_ms() - s->heard_ms < stale)
			next_tick = now_ms() + a->every_ms;
		else if (next_tick && !exited && (st->requested || now_ms() >= next_tick)) {
			if (st->connected && ask(s, "interval"))
				ld_recorder_requested(s->rec);
			s->heard_ms = now_ms();
			next_tick = now_ms() + a->every_ms;
		}
	}
	if (!exited)
		while (waitpid(s->child, &s->wstatus, 0) < 0 && errno == EINTR)
			;
	ld_recorder_finish(s->rec);
}

/* The exit status, from the command's and what the recorder got. */
static int final_status(const struct session *s, const struct ld_agent *agent)
{
	const struct ld_recorder_status *st = ld_recorder_status(s->rec);
	const char *name = s->a->cmd[0];
	int status;
	if (WIFSIGNALED(s->wstatus)) {
		int sig = WTERMSIG(s->wstatus);
		status = 128 + sig;
		if (!st->got_exit)
			ld_cli_error(name, "killed by signal %d (%s); no at-exit snapshot", sig, strsignal(sig));
	} else {
		status = WEXITSTATUS(s->wstatus);
		const char *why = NULL;
		if (!st->connected)
			why = agent->never_started;
		else if (!st->got_exit && !st->exit_failed && s->pipe_closed)
			why = "exited without an at-exit snapshot: the agent's pipe was "
			      "closed while the program ran (it closed descriptors it did not open, "
			      "as daemons do, or ran another program with exec); earlier snapshots "
			      "are kept";
		else if (!st->got_exit && !st->exit_failed)
			why = agent->no_exit;
		if (why) {
			ld_cli_error(name, "%s", why);
			if (status == 0)
				status = LD_EXIT_RECORDER;
		}
	}
	if (st->failed_writes)
		status = LD_EXIT_RECORDER;
	return status;
}

/* Sets up the pipe, the signals and the recorder, starts the command and records it. */
static int record(const struct args *a, const char *path, const struct ld_agent *agent,
		  const char *agent_path)
{
	int status = LD_EXIT_RECORDER;
	int pfd[2] = { -1, -1 }, qfd[2] = { -1, -1 }, tee = -1;
	struct session s = { .a = a, .rfd = -1, .sfd = -1, .qfd = -1 };
	sigset_t mask, oldmask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	ld_launch_forwarded(&mask);
	/* kill -USR2 on the recorder asks for a snapshot too: pass it to the agent. */
	sigaddset(&mask, a->launch.signal);
	ld_launch_ignore_write_signals();
	if (sigprocmask(SIG_BLOCK, &mask, &oldmask) < 0 ||
	    (s.sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
	    pipe2(pfd, O_CLOEXEC) < 0 || ld_launch_prepare_env(agent, agent_path, &a->launch, pfd[1]) < 0 ||
	    pipe2(qfd, O_CLOEXEC) < 0 || ld_launch_request_env(qfd[0]) < 0) {
		ld_cli_error(NULL, "cannot set up recording: %s", strerror(errno));
		goto out;
	}
	if (a->tee && (tee = open(a->tee, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		ld_cli_error(a->tee, "%s", strerror(errno));
		goto out;
	}
	struct ld_recorder_config cfg = {
		.output = a->output,
		.command = a->cmd,
		.ncommand = (size_t)a->ncmd,
		.quiet = a->quiet,
		.tee_fd = tee,
	};
	s.rec = ld_recorder_create(&cfg);
	if (!s.rec) {
		ld_cli_error(NULL, "out of memory");
		goto out;
	}
	s.own_group = ld_launch_own_group();
	/* The request channel's read end is the program's too; the recorder
	 * runs nothing else, so it is inheritable just while spawning. */
	fcntl(qfd[0], F_SETFD, 0);
	int r = ld_launch_spawn(path, a->cmd, pfd[1], &oldmask, s.own_group, &s.child);
	close(qfd[0]);
	qfd[0] = -1;
	if (r < 0) {
		ld_cli_error(a->cmd[0], "%s", strerror(-r));
		status = r == -ENOENT ? LD_EXIT_NOT_FOUND : LD_EXIT_CANNOT_RUN;
		goto out;
	}
	ld_recorder_set_target(s.rec, s.child);
	close(pfd[1]);
	pfd[1] = -1;
	s.rfd = pfd[0];
	fcntl(s.rfd, F_SETFL, O_NONBLOCK);
	/* A request the agent has no room for is not waited for. */
	s.qfd = qfd[1];
	fcntl(s.qfd, F_SETFL, O_NONBLOCK);
	loop(&s);
	status = final_status(&s, agent);
out:
	ld_recorder_destroy(s.rec);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	if (s.sfd >= 0)
		close(s.sfd);
	for (int i = 0; i < 2; i++)
		if (qfd[i] >= 0)
			close(qfd[i]);
	if (tee >= 0 && close(tee) < 0 && status != LD_EXIT_RECORDER) {
		ld_cli_error(a->tee, "%s", strerror(errno));
		status = LD_EXIT_RECORDER;
	}
	return status;
}

static int run(int argc, char **argv)
{
	struct args a = { .output = "leakdiff.snap", .launch = { .depth = 16, .signal = SIGUSR2 } };
	argp_err_exit_status = LD_EXIT_RECORDER;
	if (argp_parse(&argp, argc, argv, ARGP_IN_ORDER, NULL, &a) != 0)
		return LD_EXIT_RECORDER;
	/* A typo in -o must not cost a whole run: check it before the program starts. */
	struct ld_error err;
	if (ld_snap_check_writable(a.output, &err) < 0) {
		ld_cli_error(a.output, "cannot write the snapshot there: %s; nothing was run", err.msg);
		return LD_EXIT_RECORDER;
	}
	if (a.pid) {
		struct ld_attach_opts at = {
			.pid = a.pid, .output = a.output, .agent = a.agent, .launch = a.launch,
			.every_ms = a.every_ms, .duration_ms = a.duration_ms, .quiet = a.quiet, .tee = a.tee,
			.call_ms = a.call_ms,
		};
		return ld_attach_record(&at);
	}

	char *path = ld_launch_resolve(a.cmd[0]);
	if (!path) {
		if (errno != ENOENT && errno != ENOTDIR) {
			ld_cli_error(a.cmd[0], "cannot execute: %s", strerror(errno));
			return LD_EXIT_CANNOT_RUN;
		}
		ld_cli_error(a.cmd[0], "command not found");
		return LD_EXIT_NOT_FOUND;
	}
	const struct ld_agent *agent = a.agent ? a.agent : ld_launch_agent_detect(path, a.cmd, a.ncmd);
	if (a.native) {
		if (strcmp(agent->name, "python") != 0) {
			ld_cli_error(a.cmd[0], "--native is for Python programs, and this command does not "
				     "look like one (use --runtime=python --native for a wrapper that starts "
				     "Python, or leave out --native: native programs have every malloc tracked); "
				     "nothing was run");
			free(path);
			return LD_EXIT_RECORDER;
		}
		agent = ld_launch_agent_named("mixed");
	}
	const char *refused = agent->refuse ? agent->refuse(path, a.cmd, a.ncmd) : NULL;
	if (refused) {
		ld_cli_error(a.cmd[0], "%s", refused);
		free(path);
		return LD_EXIT_RECORDER;
	}
	char agent_path[PATH_MAX];
	int status;
	if (agent->locate(agent_path, sizeof(agent_path)) < 0) {
		ld_cli_error(NULL, "cannot find the %s agent at %s (set LEAKDIFF_AGENT_DIR)", agent->title,
			     agent_path);
		status = LD_EXIT_RECORDER;
	} else {
		status = record(&a, path, agent, agent_path);
	}
	free(path);
	return status;
}

const struct ld_cmd ld_cmd_record = {
	.name = "record",
	.summary = "run a command with the agent and store its heap snapshots",
	.run = run,
};
