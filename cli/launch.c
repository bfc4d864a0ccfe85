/*
 * Starting a program under an agent (see launch.h): the agent table with
 * each agent's detection and injection, command lookup, spawning, and the
 * signals and process group the program gets.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "launch.h"

/* ------------------------------------------------------------ finding things */

char *ld_launch_resolve(const char *cmd)
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

static bool dir_has(const char *dir, const char *rel)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	return access(p, R_OK) == 0;
}

/* Whether this binary runs from its build tree, next to the agents it built. */
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

static int setenv_num(const char *name, long long v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%lld", v);
	return setenv(name, buf, 1);
}

/* Sets var to "first:OLD", or to first alone when var is unset or empty. */
static int prepend(const char *var, const char *first)
{
	const char *old = getenv(var);
	bool keep = old && *old;
	size_t len = strlen(first) + (keep ? strlen(old) : 0) + 2;
	char *v = malloc(len);
	if (!v)
		return -1;
	snprintf(v, len, "%s%s%s", first, keep ? ":" : "", keep ? old : "");
	int r = setenv(var, v, 1);
	free(v);
	return r;
}

/* ------------------------------------------------------------ the Python agent */

bool ld_launch_python_name(const char *name)
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
	if (ld_launch_python_name(path))
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
		if (ld_launch_python_name(tok))
			return true;
	return false;
}

static bool python_detect(const char *path, char *const *argv, int argc)
{
	if (is_python(path))
		return true;
	/* "env [VAR=x] python3 app.py": decide by the program env runs. */
	const char *base = strrchr(path, '/');
	if (strcmp(base ? base + 1 : path, "env") != 0)
		return false;
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-' || strchr(argv[i], '='))
			continue;
		char *inner = ld_launch_resolve(argv[i]);
		bool python = inner && is_python(inner);
		free(inner);
		return python;
	}
	return false;
}

/*
 * The interpreter options that keep the agent out: -I and -E make Python
 * ignore PYTHONPATH, where the agent's sitecustomize is, and -S skips the
 * site module that imports it. Loading the agent some other way would mean
 * rewriting the command line, which the program sees (sys.argv, sys.flags,
 * sys.orig_argv), so the command is refused before it runs instead, with
 * the way out. Only the interpreter's own options count: they end at the
 * script, -c CMD, -m MOD or "-".
 */
static const char *python_refuse_flags(char *const *argv, int argc, int i)
{
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-' || !a[1] || strcmp(a, "--") == 0)
			return NULL;
		if (a[1] == '-') {
			/* The only long option that takes a separate value. */
			if (strcmp(a, "--check-hash-based-pycs") == 0)
				i++;
			continue;
		}
		for (const char *f = a + 1; *f; f++) {
			if (*f == 'c' || *f == 'm')
				return NULL; /* the rest is the program's */
			if (*f == 'W' || *f == 'X') {
				if (!f[1])
					i++; /* the value is the next word */
				break;
			}
			if (*f == 'I')
				return "Python's -I (isolated mode) ignores PYTHONPATH, through which leakdiff "
				       "loads its agent, so nothing would be recorded; the command was not run "
				       "(record it without -I: -s -P keep the rest of the isolation)";
			if (*f == 'E')
				return "Python's -E ignores PYTHONPATH, through which leakdiff loads its agent, "
				       "so nothing would be recorded; the command was not run (record it without -E)";
			if (*f == 'S')
				return "Python's -S skips the site module, which starts leakdiff's agent, so "
				       "nothing would be recorded; the command was not run (record it without -S)";
		}
	}
	return NULL;
}

static const char *python_refuse(const char *path, char *const *argv, int argc)
{
	if (ld_launch_python_name(path))
		return python_refuse_flags(argv, argc, 1);
	/* "env [-x] [VAR=x] python3 -I ...": the options after the interpreter. */
	const char *base = strrchr(path, '/');
	if (strcmp(base ? base + 1 : path, "env") != 0)
		return NULL;
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-' || strchr(argv[i], '='))
			continue;
		return ld_launch_python_name(argv[i]) ? python_refuse_flags(argv, argc, i + 1) : NULL;
	}
	return NULL;
}

static int python_locate(char *out, size_t n)
{
	agent_location(out, n, LD_SOURCE_DIR, "agents/python", "python");
	return dir_has(out, "leakdiff/_agent.py") && dir_has(out, "boot/sitecustomize.py") ? 0 : -1;
}

/*
 * On PYTHONPATH: boot/ for the sitecustomize module that starts the agent
 * (it chains to one already there), and the directory of the leakdiff
 * package. The optional C accelerators may be missing; the agent copes.
 */
static int python_inject(const char *agent, const struct ld_launch_opts *o)
{
	size_t len = 2 * strlen(agent) + 8;
	char *dirs = malloc(len);
	if (!dirs)
		return -1;
	snprintf(dirs, len, "%s/boot:%s", agent, agent);
	int r = prepend("PYTHONPATH", dirs);
	free(dirs);
	char ext[PATH_MAX];
	agent_location(ext, sizeof(ext), LD_BUILD_DIR, "agents/python/ext", "python/ext");
	r |= setenv("LEAKDIFF_EXT_DIR", ext, 1);
	if (o->tracemalloc)
		r |= setenv("LEAKDIFF_TRACER", "tracemalloc", 1);
	return r ? -1 : 0;
}

/* ------------------------------------------------------------ the native agent */

static bool native_detect(const char *path, char *const *argv, int argc)
{
	(void)path;
	(void)argv;
	(void)argc;
	return true;
}

static int native_locate(char *out, size_t n)
{
	agent_location(out, n, LD_BUILD_DIR, "agents/native/libleakdiff-preload.so",
		       "libleakdiff-preload.so");
	return access(out, R_OK) == 0 ? 0 : -1;
}

static int native_inject(const char *agent, const struct ld_launch_opts *o)
{
	(void)o;
	int r = prepend("LD_PRELOAD", agent);
	/* Python under the native agent: make small objects visible to malloc. */
	r |= setenv("PYTHONMALLOC", "malloc", 0);
	/* Symbolisation reads local files only; never fetch debug info. */
	unsetenv("DEBUGINFOD_URLS");
	return r ? -1 : 0;
}

/* ------------------------------------------------------------ both (--native) */

/*
 * `leakdiff record --native` of a Python program: the Python agent as
 * usual, which owns the pipe and takes the snapshots, and the native agent
 * preloaded beside it in mixed mode, which tracks the malloc family and
 * hands its sites to the Python agent (agents/native/mixed.c). Python
 * keeps its own allocator: the hooks record its blocks, and the native
 * agent leaves those alone.
 */
static bool mixed_detect(const char *path, char *const *argv, int argc)
{
	(void)path;
	(void)argv;
	(void)argc;
	return false; /* only ever asked for */
}

static int mixed_locate(char *out, size_t n)
{
	char lib[PATH_MAX];
	int r = python_locate(out, n);
	if (r == 0 && native_locate(lib, sizeof(lib)) < 0) {
		snprintf(out, n, "%s", lib);
		return -1;
	}
	return r;
}

static int mixed_inject(const char *agent, const struct ld_launch_opts *o)
{
	char lib[PATH_MAX];
	if (python_inject(agent, o) < 0 || native_locate(lib, sizeof(lib)) < 0)
		return -1;
	int r = prepend("LD_PRELOAD", lib);
	r |= setenv("LEAKDIFF_NATIVE_MIXED", "1", 1) | setenv("LEAKDIFF_NATIVE", "1", 1);
	unsetenv("DEBUGINFOD_URLS");
	return r ? -1 : 0;
}

/* ------------------------------------------------------------ the table */

/*
 * The mixed agent starts from the Python one (mixed_inject), so it fails
 * to start, and ends without its at-exit snapshot, for the same reasons.
 */
static const char python_never_started[] =
	"the leakdiff agent never started in the target (did a script's #! "
	"line or a wrapper add -I, -S or -E?); nothing was recorded";
static const char python_no_exit[] =
	"exited without an at-exit snapshot (a crash, or an exec into another program?)";

const struct ld_agent ld_launch_agents[] = {
	{
		.name = "python",
		.title = "Python",
		.tracemalloc = true,
		.detect = python_detect,
		.locate = python_locate,
		.inject = python_inject,
		.refuse = python_refuse,
		.never_started = python_never_started,
		.no_exit = python_no_exit,
	},
	{
		.name = "mixed",
		.title = "Python and native",
		.option = "--native",
		.detect = mixed_detect,
		.locate = mixed_locate,
		.inject = mixed_inject,
		.refuse = python_refuse,
		.never_started = python_never_started,
		.no_exit = python_no_exit,
	},
	{
		.name = "native",
		.title = "native",
		.detect = native_detect,
		.locate = native_locate,
		.inject = native_inject,
		.never_started = "the leakdiff agent never started in the target "
				 "(statically linked, setuid and AddressSanitizer programs cannot take it); "
				 "nothing was recorded",
		.no_exit = "exited without an at-exit snapshot (a crash, an exec into another "
			   "program, or _exit from a signal handler that interrupted malloc?)",
	},
};
const size_t ld_launch_nagents = sizeof(ld_launch_agents) / sizeof(ld_launch_agents[0]);

const struct ld_agent *ld_launch_agent_named(const char *name)
{
	for (size_t i = 0; i < ld_launch_nagents; i++)
		if (strcmp(ld_launch_agents[i].name, name) == 0)
			return &ld_launch_agents[i];
	return NULL;
}

const struct ld_agent *ld_launch_agent_detect(const char *path, char *const *argv, int argc)
{
	for (size_t i = 0; i + 1 < ld_launch_nagents; i++)
		if (ld_launch_agents[i].detect(path, argv, argc))
			return &ld_launch_agents[i];
	return &ld_launch_agents[ld_launch_nagents - 1];
}

int ld_launch_prepare_env(const struct ld_agent *ag, const char *agent, const struct ld_launch_opts *o,
			  int wfd)
{
	struct stat st;
	if (fstat(wfd, &st) < 0)
		return -1;
	char pipe_id[64];
	snprintf(pipe_id, sizeof(pipe_id), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	if (ag->inject(agent, o) < 0)
		return -1;
	int r = 0;
	if (o->sample)
		r |= setenv_num("LEAKDIFF_SAMPLE", (long long)o->sample);
	if (o->peak)
		r |= setenv("LEAKDIFF_PEAK", "1", 1);
	r |= setenv_num("LEAKDIFF_FD", wfd) | setenv("LEAKDIFF_PIPE", pipe_id, 1) |
		setenv_num("LEAKDIFF_DEPTH", o->depth) | setenv_num("LEAKDIFF_SIGNAL", o->signal);
	return r ? -1 : 0;
}

int ld_launch_request_env(int rfd)
{
	struct stat st;
	if (fstat(rfd, &st) < 0)
		return -1;
	char pipe_id[64];
	snprintf(pipe_id, sizeof(pipe_id), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	return setenv_num("LEAKDIFF_REQUEST_FD", rfd) | setenv("LEAKDIFF_REQUEST_PIPE", pipe_id, 1) ? -1 : 0;
}

/* ------------------------------------------------------------ signals and spawning */

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

void ld_launch_forwarded(sigset_t *set)
{
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(set, forwarded[i]);
}

/* Dispositions the recorder found and changed; the target gets them back. */
static void (*saved_pipe)(int) = SIG_DFL;
static void (*saved_xfsz)(int) = SIG_DFL;

void ld_launch_ignore_write_signals(void)
{
	saved_pipe = signal(SIGPIPE, SIG_IGN);
	saved_xfsz = signal(SIGXFSZ, SIG_IGN);
}

/*
 * At a terminal the command stays in the recorder's process group, the
 * shell's job, so that the keyboard's signals and job control (Ctrl-Z, fg,
 * reading the tty) work on it as they would without leakdiff. Without one
 * (CI jobs, services, scripts run under setsid) nothing needs that group,
 * and giving the command one of its own is what makes "kill -TERM -PGID"
 * reach it exactly once: the kernel delivers it to the recorder only, which
 * forwards it; with a shared group the command would get the kernel's copy
 * and the recorder's, and the recorder cannot tell a group kill from a
 * direct one.
 */
bool ld_launch_own_group(void)
{
	int fd = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return true;
	close(fd);
	return false;
}

/*
 * Exec failures come back through a close-on-exec pipe so that "not found"
 * and "cannot execute" get their own exit codes.
 */
int ld_launch_spawn(const char *path, char *const *argv, int wfd, const sigset_t *oldmask, bool own_group,
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
 * An exiting process releases its descriptors before its parent can reap
 * it, so "not reaped yet" proves nothing; the kernel's PF_EXITING flag, in
 * field 9 of /proc/PID/stat, is set before the descriptors go.
 */
bool ld_launch_closed_while_running(pid_t pid)
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
