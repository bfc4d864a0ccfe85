/*
 * leakdiff record: run a command with an agent inside it and store the
 * snapshots the agent streams through a pipe (leakdiff-protocol(7)) as .snap
 * files. The recorder forwards signals to the command, asks for snapshots on
 * a timer, and exits with the command's status.
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
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "escape.h"
#include "native.h"
#include "snap.h"
#include "units.h"
#include "wire.h"

enum runtime { RT_AUTO, RT_PYTHON, RT_NATIVE };

enum { OPT_RUNTIME = 0x300, OPT_DEPTH, OPT_EVERY, OPT_SIGNAL, OPT_SAMPLE, OPT_TRACEMALLOC };

struct args {
	const char *output;
	enum runtime runtime;
	unsigned depth;
	uint64_t every_ms;
	int signal;
	uint64_t sample; /* mean bytes between samples; 0 = exact */
	bool tracemalloc; /* Python: record with tracemalloc, not the allocator hooks */
	bool quiet;
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
	{ "quiet", 'q', 0, 0, "Do not print the name of each snapshot written", 0 },
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
			a->runtime = RT_AUTO;
		else if (strcmp(arg, "python") == 0)
			a->runtime = RT_PYTHON;
		else if (strcmp(arg, "native") == 0)
			a->runtime = RT_NATIVE;
		else
			argp_error(state, "--runtime takes auto, python or native, not '%s'", arg);
		return 0;
	case OPT_DEPTH:
		if (ld_uint_parse(arg, LD_DEPTH_MAX, &v) < 0 || v == 0)
			argp_error(state, "--depth takes a whole number from 1 to %d, not '%s'", LD_DEPTH_MAX, arg);
		a->depth = (unsigned)v;
		return 0;
	case OPT_EVERY:
		if (ld_duration_parse(arg, &a->every_ms) < 0)
			argp_error(state, "--every takes a duration such as 500ms, 10s or 5m, not '%s'", arg);
		return 0;
	case OPT_SIGNAL:
		if ((a->signal = parse_signal(arg)) < 0)
			argp_error(state, "--signal takes USR1, USR2 or RTMIN+N, not '%s'", arg);
		return 0;
	case OPT_SAMPLE:
		if (ld_size_parse(arg, &a->sample) < 0 || a->sample == 0 || a->sample > (UINT64_C(1) << 40))
			argp_error(state, "--sample takes a size from 1 byte to 1TiB such as 512KiB, not '%s'", arg);
		return 0;
	case OPT_TRACEMALLOC:
		a->tracemalloc = true;
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
		if (!a->cmd)
			argp_error(state, "give a command to run, after --");
		if (a->tracemalloc && a->sample)
			argp_error(state, "--tracemalloc records every allocation; it cannot be used with --sample");
		if (a->tracemalloc && a->runtime == RT_NATIVE)
			argp_error(state, "--tracemalloc is for Python programs; it cannot be used with --runtime=native");
		return 0;
	default:
		return ARGP_ERR_UNKNOWN;
	}
}

static const struct argp argp = {
	.options = options,
	.parser = parse,
	.args_doc = "[--] COMMAND [ARG...]",
	.doc = "Run COMMAND with the leakdiff agent inside it and store its heap snapshots. A "
	       "snapshot is taken when the program exits, when it receives the snapshot signal "
	       "(kill -USR2 PID), every --every, and when the program calls "
	       "leakdiff.snapshot(label). Each file written is named on standard error.\v"
	LD_EXIT_HELP_RECORD,
};

/* ------------------------------------------------------------ recording */

struct recorder {
	const struct args *a;
	pid_t child, agent_pid;
	bool connected, got_exit;
	bool native;      /* the agent said hello as the native runtime */
	struct ld_symbolizer *sym; /* native: reused across snapshots */
	bool requested;   /* a timed snapshot was asked for and has not arrived */
	bool exit_failed; /* the at-exit snapshot came but could not be written */
	bool own_group;   /* the command runs in a process group of its own */
	int hellos;       /* agents that said hello: more than one with LEAKDIFF_FOLLOW_EXEC */
	long long top;    /* highest file number written so far */
	bool pipe_closed; /* every write end was closed while the command ran */
	int written, failed_writes;
	const char *exit_path;
};

static char *numbered_path(const char *output, long long seq)
{
	size_t len = strlen(output);
	size_t cap = len + 32;
	char *p = malloc(cap);
	if (!p)
		return NULL;
	if (len > 5 && strcmp(output + len - 5, ".snap") == 0)
		snprintf(p, cap, "%.*s.%lld.snap", (int)(len - 5), output, seq);
	else
		snprintf(p, cap, "%s.%lld", output, seq);
	return p;
}

static int on_snapshot(struct recorder *rec, const struct ld_wire_event *ev)
{
	struct ld_error err = { { 0 } };
	struct ld_snapshot *s = NULL;
	int pr = rec->native || ld_native_is_raw(ev->data, ev->len)
		 ? ld_native_parse_with(&rec->sym, ev->data, ev->len, &s, &err)
		 : ld_snap_parse(ev->data, ev->len, &s, &err);
	if (pr < 0) {
		ld_cli_error(NULL, "snapshot %lld from the agent is invalid and was dropped: %s",
			     (long long)ev->seq, err.msg);
		return 0;
	}
	/* The agent does not know how it was started; the recorder does. */
	if (ld_meta_set_list(&s->meta.command, &s->meta.ncommand, rec->a->cmd, (size_t)rec->a->ncmd) < 0) {
		ld_snapshot_destroy(s);
		ld_cli_error(NULL, "out of memory");
		rec->failed_writes++;
		return 0;
	}
	/* The agent only sees a signal; the recorder knows it sent it on a timer. */
	if (rec->requested && s->meta.trigger && strcmp(s->meta.trigger, "signal") == 0 &&
	    ld_meta_set(&s->meta.trigger, "interval") < 0) {
		ld_snapshot_destroy(s);
		ld_cli_error(NULL, "out of memory");
		rec->failed_writes++;
		return 0;
	}
	const char *trigger = s->meta.trigger ? s->meta.trigger : ev->trigger;
	bool at_exit = strcmp(ev->trigger, "exit") == 0;
	/*
	 * One agent numbers its snapshots from 1, and FILE.N.snap takes that
	 * number. Once several agents share the pipe (LEAKDIFF_FOLLOW_EXEC),
	 * each counting from 1, files are numbered on from the highest so far
	 * instead, and only the command's own process (exec keeps its pid)
	 * writes its at-exit snapshot to FILE: nothing overwrites anything.
	 */
	long long number = (long long)ev->seq;
	if (rec->hellos > 1) {
		number = rec->top + 1;
		if (at_exit && s->meta.pid != (int64_t)rec->child)
			at_exit = false;
	}
	char *numbered = at_exit ? NULL : numbered_path(rec->a->output, number);
	const char *path = at_exit ? rec->a->output : numbered;
	if (!path) {
		ld_snapshot_destroy(s);
		ld_cli_error(NULL, "out of memory");
		rec->failed_writes++;
		return 0;
	}
	if (ld_snap_save(path, s, &err) < 0) {
		ld_cli_error(path, "%s", err.msg);
		rec->failed_writes++;
		if (at_exit)
			rec->exit_failed = true;
	} else {
		rec->written++;
		if (at_exit)
			rec->got_exit = true;
		else if (number > rec->top)
			rec->top = number;
		if (!rec->a->quiet) {
			char objs[48], bytes[32];
			if (rec->native) {
				ld_count_format(objs, sizeof(objs) - 8, (int64_t)s->totals.heap_blocks, false);
				strcat(objs, " blocks");
			} else {
				ld_count_format(objs, sizeof(objs) - 8, (int64_t)s->totals.objects, false);
				strcat(objs, " objects");
			}
			ld_size_format(bytes, sizeof(bytes), (int64_t)s->totals.heap_bytes, false);
			bool named = *ev->label && strcmp(ev->label, trigger) != 0;
			char *label = named ? ld_escape_dup(ev->label, LD_ESCAPE_TEXT) : NULL;
			char *safe = ld_escape_dup(path, LD_ESCAPE_TEXT);
			fprintf(stderr, "leakdiff: wrote %s (snapshot %lld, %s%s%s%s, %s, %s traced)\n",
				safe ? safe : path, (long long)ev->seq, trigger, label ? " \"" : "",
				label ? label : "", label ? "\"" : "", objs, bytes);
			free(label);
			free(safe);
		}
	}
	free(numbered);
	ld_snapshot_destroy(s);
	return 0;
}

static int on_event(void *ctx, const struct ld_wire_event *ev)
{
	struct recorder *rec = ctx;
	int r;
	switch (ev->kind) {
	case LD_WIRE_HELLO:
		rec->connected = true;
		rec->hellos++;
		rec->native = strcmp(ev->runtime, "native") == 0;
		if (ev->pid > 0)
			rec->agent_pid = (pid_t)ev->pid;
		return 0;
	case LD_WIRE_SNAPSHOT:
		r = on_snapshot(rec, ev);
		/* Only a signal snapshot answers the timer's request, not an API one. */
		if (strcmp(ev->trigger, "signal") == 0)
			rec->requested = false;
		return r;
	case LD_WIRE_LOG:
		ld_cli_error("agent", "%s", ev->message);
		return 0;
	case LD_WIRE_DROPPED:
		ld_cli_error(NULL, "snapshot %lld was dropped: %s", (long long)ev->seq, ev->reason);
		rec->requested = false;
		return 0;
	}
	return 0;
}

/* ------------------------------------------------------------ the command */

/* Finds COMMAND the way execvp would; returns a new string or NULL (errno set). */
static char *resolve(const char *cmd)
{
	if (strchr(cmd, '/')) {
		struct stat st;
		if (stat(cmd, &st) < 0)
			return NULL;
		if (S_ISDIR(st.st_mode)) {
			errno = EISDIR;
			return NULL;
		}
		if (access(cmd, X_OK) < 0)
			return NULL;
		return strdup(cmd);
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	int saved = ENOENT;
	while (*path) {
		const char *colon = strchrnul(path, ':');
		size_t dlen = (size_t)(colon - path);
		char *full = malloc(dlen + strlen(cmd) + 3);
		if (!full)
			return NULL;
		sprintf(full, "%.*s/%s", (int)dlen, dlen ? path : ".", cmd);
		struct stat st;
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
			if (access(full, X_OK) == 0)
				return full;
			saved = EACCES;
		}
		free(full);
		path = *colon ? colon + 1 : colon;
	}
	errno = saved;
	return NULL;
}

static bool python_name(const char *name)
{
	const char *base = strrchr(name, '/');
	base = base ? base + 1 : name;
	if (strncmp(base, "python", 6) != 0)
		return false;
	/* python, python3, python3.11, python3.11d, python3-dbg */
	for (const char *p = base + 6; *p; p++)
		if (!strchr("0123456789.dm-bgu", *p))
			return false;
	return true;
}

/* Python interpreters, and scripts (console scripts) whose #! names one. */
static bool is_python(const char *path)
{
	if (python_name(path))
		return true;
	char line[256];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (n < 2 || line[0] != '#' || line[1] != '!')
		return false;
	line[n] = '\0';
	line[strcspn(line, "\n")] = '\0';
	/* "#!/usr/bin/python3 -u" or "#!/usr/bin/env python3" */
	for (char *tok = strtok(line + 2, " \t"); tok; tok = strtok(NULL, " \t"))
		if (python_name(tok))
			return true;
	return false;
}

static bool dir_has(const char *dir, const char *rel)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	return access(p, R_OK) == 0;
}

/*
 * Where the agents live: LEAKDIFF_AGENT_DIR, the source and build trees
 * when this binary runs from its build tree, or the installed copy.
 */
static bool from_build_tree(void)
{
	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len <= 0)
		return false;
	exe[len] = '\0';
	return strncmp(exe, LD_BUILD_DIR "/", strlen(LD_BUILD_DIR) + 1) == 0;
}

/*
 * Where an agent file lives: REL under LEAKDIFF_AGENT_DIR, TREE_REL under
 * TREE_ROOT (the source or build tree) when this binary runs from its
 * build tree, or REL in the installed agent directory.
 */
static void agent_location(char *out, size_t n, const char *tree_root, const char *tree_rel,
			   const char *rel)
{
	const char *env = getenv("LEAKDIFF_AGENT_DIR");
	if (env && *env)
		snprintf(out, n, "%s/%s", env, rel);
	else if (from_build_tree())
		snprintf(out, n, "%s/%s", tree_root, tree_rel);
	else
		snprintf(out, n, "%s/%s", LD_AGENT_DIR, rel);
}

static int python_agent_dir(char *out, size_t n)
{
	agent_location(out, n, LD_SOURCE_DIR, "agents/python", "python");
	return dir_has(out, "leakdiff/_agent.py") && dir_has(out, "boot/sitecustomize.py") ? 0 : -1;
}

/* The Python agent's optional C accelerators; a missing directory is fine. */
static void python_ext_dir(char *out, size_t n)
{
	agent_location(out, n, LD_BUILD_DIR, "agents/python/ext", "python/ext");
}

static int native_agent_path(char *out, size_t n)
{
	agent_location(out, n, LD_BUILD_DIR, "agents/native/libleakdiff-preload.so",
		       "libleakdiff-preload.so");
	return access(out, R_OK) == 0 ? 0 : -1;
}

static int setenv_num(const char *name, long long v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%lld", v);
	return setenv(name, buf, 1);
}

/*
 * Environment for the target: where to write, and the agent, on PYTHONPATH
 * for Python or in LD_PRELOAD for native programs.
 */
static int prepare_env(const struct args *a, bool native, const char *agent, int wfd)
{
	struct stat st;
	if (fstat(wfd, &st) < 0)
		return -1;
	char pipe_id[64];
	snprintf(pipe_id, sizeof(pipe_id), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	const char *var = native ? "LD_PRELOAD" : "PYTHONPATH";
	const char *old = getenv(var);
	size_t len = 2 * strlen(agent) + (old ? strlen(old) : 0) + 16;
	char *pp = malloc(len);
	if (!pp)
		return -1;
	if (native)
		snprintf(pp, len, "%s%s%s", agent, old && *old ? ":" : "", old && *old ? old : "");
	else
		snprintf(pp, len, "%s/boot:%s%s%s", agent, agent, old && *old ? ":" : "", old && *old ? old : "");
	int r = 0;
	if (native) {
		/* Python under the native agent: make small objects visible to malloc. */
		r |= setenv("PYTHONMALLOC", "malloc", 0);
		/* Symbolisation reads local files only; never fetch debug info. */
		unsetenv("DEBUGINFOD_URLS");
	} else {
		char ext[PATH_MAX];
		python_ext_dir(ext, sizeof(ext));
		r |= setenv("LEAKDIFF_EXT_DIR", ext, 1);
		if (a->tracemalloc)
			r |= setenv("LEAKDIFF_TRACER", "tracemalloc", 1);
	}
	if (a->sample)
		r |= setenv_num("LEAKDIFF_SAMPLE", (long long)a->sample);
	r |= setenv(var, pp, 1) | setenv_num("LEAKDIFF_FD", wfd) |
		setenv("LEAKDIFF_PIPE", pipe_id, 1) | setenv_num("LEAKDIFF_DEPTH", a->depth) |
		setenv_num("LEAKDIFF_SIGNAL", a->signal);
	free(pp);
	return r ? -1 : 0;
}

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

/* Dispositions the recorder found and changed; the target gets them back. */
static void (*saved_pipe)(int) = SIG_DFL;
static void (*saved_xfsz)(int) = SIG_DFL;

/*
 * Starts the command. Exec failures come back through a close-on-exec pipe
 * so that "not found" and "cannot execute" get their own exit codes.
 */
/*
 * Whether this process has a controlling terminal. At a terminal the
 * command stays in the recorder's process group, the shell's job, so that
 * the keyboard's signals and job control (Ctrl-Z, fg, reading the tty) work
 * on it as they would without leakdiff. Without one (CI jobs, services,
 * scripts run under setsid) nothing needs that group, and giving the
 * command one of its own is what makes "kill -TERM -PGID" reach it exactly
 * once: the kernel delivers it to the recorder only, which forwards it;
 * with a shared group the command would get the kernel's copy and the
 * recorder's, and the recorder cannot tell a group kill from a direct one.
 */
static bool has_controlling_tty(void)
{
	int fd = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static int spawn(const char *path, char **argv, int wfd, const sigset_t *oldmask, bool own_group,
		 pid_t *pid)
{
	pid_t parent = getpid();
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0)
		return -errno;
	pid_t p = fork();
	if (p < 0) {
		int e = errno;
		close(ep[0]);
		close(ep[1]);
		return -e;
	}
	if (p == 0) {
		if (own_group) {
			setpgid(0, 0);
			/*
			 * Out of the recorder's group, a kill -9 of that group would
			 * no longer reach the command: let the recorder's death do it,
			 * so a cancelled CI job leaves nothing running.
			 */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(LD_EXIT_RECORDER);
		}
		signal(SIGPIPE, saved_pipe == SIG_ERR ? SIG_DFL : saved_pipe);
		signal(SIGXFSZ, saved_xfsz == SIG_ERR ? SIG_DFL : saved_xfsz);
		sigprocmask(SIG_SETMASK, oldmask, NULL);
		/* The write end is the one descriptor the target inherits from us. */
		fcntl(wfd, F_SETFD, 0);
		execv(path, argv);
		int e = errno;
		ssize_t ignored = write(ep[1], &e, sizeof(e));
		(void)ignored;
		_exit(127);
	}
	if (own_group)
		setpgid(p, p); /* also here: whichever of the two runs first */
	close(ep[1]);
	int e = 0;
	ssize_t n;
	do
		n = read(ep[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(ep[0]);
	if (n == (ssize_t)sizeof(e)) {
		waitpid(p, NULL, 0);
		return -e;
	}
	*pid = p;
	return 0;
}

/*
 * Called when the agent's pipe reaches end of file before the command has
 * been reaped: did the command close the pipe while running (a daemon that
 * closes descriptors, an exec), or is it just exiting? An exiting process
 * releases its descriptors before its parent can reap it, so "not reaped
 * yet" proves nothing; the kernel's PF_EXITING flag, in field 9 of
 * /proc/PID/stat, is set before the descriptors go.
 */
static bool closed_while_running(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* The command name in parentheses may hold anything; skip past it. */
	char *p = strrchr(buf, ')');
	if (!p)
		return false;
	char state = 0;
	unsigned long flags = 0;
	if (sscanf(p + 1, " %c %*d %*d %*d %*d %*d %lu", &state, &flags) != 2)
		return false;
	const unsigned long pf_exiting = 0x4;
	return state != 'Z' && state != 'X' && !(flags & pf_exiting);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int run(int argc, char **argv)
{
	struct args a = { .output = "leakdiff.snap", .depth = 16, .signal = SIGUSR2 };
	argp_err_exit_status = LD_EXIT_RECORDER;
	if (argp_parse(&argp, argc, argv, ARGP_IN_ORDER, NULL, &a) != 0)
		return LD_EXIT_RECORDER;

	char *path = resolve(a.cmd[0]);
	if (!path) {
		if (errno != ENOENT && errno != ENOTDIR) {
			ld_cli_error(a.cmd[0], "cannot execute: %s", strerror(errno));
			return LD_EXIT_CANNOT_RUN;
		}
		ld_cli_error(a.cmd[0], "command not found");
		return LD_EXIT_NOT_FOUND;
	}
	bool python = is_python(path);
	/* "env [VAR=x] python3 app.py": decide by the program env runs. */
	const char *base = strrchr(path, '/');
	if (!python && strcmp(base ? base + 1 : path, "env") == 0) {
		for (int i = 1; i < a.ncmd; i++) {
			if (a.cmd[i][0] == '-' || strchr(a.cmd[i], '='))
				continue;
			char *inner = resolve(a.cmd[i]);
			python = inner && is_python(inner);
			free(inner);
			break;
		}
	}
	bool native = a.runtime == RT_NATIVE || (a.runtime == RT_AUTO && !python);
	char agent[PATH_MAX];
	if (native ? native_agent_path(agent, sizeof(agent)) < 0 : python_agent_dir(agent, sizeof(agent)) < 0) {
		ld_cli_error(NULL, "cannot find the %s agent at %s (set LEAKDIFF_AGENT_DIR)",
			     native ? "native" : "Python", agent);
		free(path);
		return LD_EXIT_RECORDER;
	}

	int status = LD_EXIT_RECORDER;
	int pfd[2] = { -1, -1 }, sfd = -1;
	struct ld_wire *wire = NULL;
	struct recorder rec = { .a = &a };
	sigset_t mask, oldmask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&mask, forwarded[i]);
	/* kill -USR2 on the recorder asks for a snapshot too: pass it to the agent. */
	sigaddset(&mask, a.signal);
	/*
	 * A recorder writing into a closed stderr pipe, or past RLIMIT_FSIZE,
	 * must fail with a message, not die. The target gets back the
	 * dispositions we were started with (see spawn()).
	 */
	saved_pipe = signal(SIGPIPE, SIG_IGN);
	saved_xfsz = signal(SIGXFSZ, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &mask, &oldmask) < 0 ||
	    (sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
	    pipe2(pfd, O_CLOEXEC) < 0 || prepare_env(&a, native, agent, pfd[1]) < 0) {
		ld_cli_error(NULL, "cannot set up recording: %s", strerror(errno));
		goto out;
	}
	wire = ld_wire_create(on_event, &rec, 0);
	if (!wire) {
		ld_cli_error(NULL, "out of memory");
		goto out;
	}
	rec.own_group = !has_controlling_tty();
	int r = spawn(path, a.cmd, pfd[1], &oldmask, rec.own_group, &rec.child);
	if (r < 0) {
		ld_cli_error(a.cmd[0], "%s", strerror(-r));
		status = r == -ENOENT ? LD_EXIT_NOT_FOUND : LD_EXIT_CANNOT_RUN;
		goto out;
	}
	close(pfd[1]);
	pfd[1] = -1;
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);

	int wstatus = 0;
	bool exited = false, eof = false, broken = false;
	uint64_t next_tick = a.every_ms ? now_ms() + a.every_ms : 0;
	char buf[65536];
	while (!eof) {
		struct pollfd fds[2] = { { .fd = pfd[0], .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
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
		if (fds[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				if (si.ssi_signo == SIGCHLD)
					continue;
				if ((int)si.ssi_signo == a.signal) {
					if (!exited && rec.connected && !rec.got_exit)
						kill(rec.agent_pid > 0 ? rec.agent_pid : rec.child, a.signal);
					continue;
				}
				/* Keyboard signals already reached the whole shared group. */
				if (!rec.own_group && si.ssi_code == SI_KERNEL &&
				    (si.ssi_signo == SIGINT || si.ssi_signo == SIGQUIT))
					continue;
				if (!exited)
					kill(rec.child, (int)si.ssi_signo);
			}
			if (!exited && waitpid(rec.child, &wstatus, WNOHANG) == rec.child)
				exited = true;
		}
		bool got_data = false;
		if (fds[0].revents & (POLLIN | POLLHUP) || exited) {
			for (;;) {
				ssize_t len = read(pfd[0], buf, sizeof(buf));
				if (len < 0 && errno == EINTR)
					continue;
				if (len <= 0) {
					/* EOF, or (once the target is gone) nothing left to drain. */
					if (len == 0 || (exited && errno == EAGAIN))
						eof = true;
					break;
				}
				got_data = true;
				if (broken)
					continue;
				struct ld_error err = { { 0 } };
				if (ld_wire_feed(wire, buf, (size_t)len, &err) == -EPROTO) {
					ld_cli_error(NULL, "%s; no further snapshots will be read", err.msg);
					broken = true;
				}
			}
		}
		(void)got_data;
		if (!exited && eof) {
			/* The pipe closed before the target ended; wait for it. */
			rec.pipe_closed = closed_while_running(rec.child);
			while (waitpid(rec.child, &wstatus, 0) < 0 && errno == EINTR)
				;
			exited = true;
		}
		/*
		 * The interval runs from the end of one snapshot to the next
		 * request, so a heap that takes longer to walk than --every still
		 * leaves the program time to run between snapshots.
		 */
		if (rec.got_exit)
			next_tick = 0; /* the program is shutting down: ask no more */
		if (next_tick && !exited && rec.requested)
			next_tick = now_ms() + a.every_ms;
		else if (next_tick && !exited && now_ms() >= next_tick) {
			if (rec.connected && kill(rec.agent_pid > 0 ? rec.agent_pid : rec.child, a.signal) == 0)
				rec.requested = true;
			next_tick = now_ms() + a.every_ms;
		}
	}
	if (!exited)
		while (waitpid(rec.child, &wstatus, 0) < 0 && errno == EINTR)
			;
	ld_wire_finish(wire);

	if (WIFSIGNALED(wstatus)) {
		int sig = WTERMSIG(wstatus);
		status = 128 + sig;
		if (!rec.got_exit)
			ld_cli_error(a.cmd[0], "killed by signal %d (%s); no at-exit snapshot", sig, strsignal(sig));
	} else {
		status = WEXITSTATUS(wstatus);
		if (!rec.connected) {
			ld_cli_error(a.cmd[0], native ? "the leakdiff agent never started in the target "
				     "(statically linked, setuid and AddressSanitizer programs cannot take it); "
				     "nothing was recorded"
				     : "the leakdiff agent never started in the target (was Python run with "
				     "-I, -S or -E?); nothing was recorded");
			if (status == 0)
				status = LD_EXIT_RECORDER;
		} else if (!rec.got_exit && !rec.exit_failed && rec.pipe_closed) {
			ld_cli_error(a.cmd[0], "exited without an at-exit snapshot: the agent's pipe was "
				     "closed while the program ran (it closed descriptors it did not open, "
				     "as daemons do, or ran another program with exec); earlier snapshots "
				     "are kept");
			if (status == 0)
				status = LD_EXIT_RECORDER;
		} else if (!rec.got_exit && !rec.exit_failed) {
			ld_cli_error(a.cmd[0], native ? "exited without an at-exit snapshot (_exit, a crash, or an "
				     "exec into another program?)" : "exited without an at-exit snapshot (os._exit or a crash?)");
			if (status == 0)
				status = LD_EXIT_RECORDER;
		}
	}
	if (rec.failed_writes)
		status = LD_EXIT_RECORDER;
out:
	ld_symbolizer_destroy(rec.sym);
	ld_wire_destroy(wire);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	if (sfd >= 0)
		close(sfd);
	free(path);
	return status;
}

const struct ld_cmd ld_cmd_record = {
	.name = "record",
	.summary = "run a command with the agent and store its heap snapshots",
	.run = run,
};
