/*
 * The native agent across exec: when the traced process itself runs
 * another program (a shell wrapper's `exec "$@"`, env, nice, a pyenv
 * shim), that program keeps the pid the recorder waits for, so it is the
 * one to record. The agent removed its variables and its LD_PRELOAD entry
 * from the environment at start, so that the programs the target runs in
 * its children are not traced; here the exec family puts them back into
 * the environment the new program gets, and leaves the pipe open across
 * that one exec. Children (fork, vfork, posix_spawn) run their programs
 * untraced and without the pipe, as before: the agent is off in a forked
 * child, a vfork() child has another pid, and posix_spawn() calls glibc's
 * internal execve, which is not interposed.
 *
 * With LEAKDIFF_FOLLOW_EXEC=1 the environment was never cleaned and the
 * pipe is not close-on-exec, so these functions only forward.
 *
 * No malloc: the new environment is built in pages of its own, unmapped
 * again when the exec fails.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define LD_EXPORT __attribute__((visibility("default")))

extern char **environ;

static const char *const carried[] = {
	"LEAKDIFF_FD", "LEAKDIFF_PIPE", "LEAKDIFF_DEPTH", "LEAKDIFF_SIGNAL", "LEAKDIFF_SAMPLE",
};
#define NCARRIED (sizeof(carried) / sizeof(carried[0]))

/* "NAME=value" of each variable the agent started with; "" when unset. */
static char saved[NCARRIED][128];
/* This library's path as the loader knows it; "" when exec is not followed. */
static char self_path[PATH_MAX];

/* The program that exec'd into this one blocked the snapshot signal for us. */
static bool signal_held;

static int (*real_execvpe)(const char *, char *const[], char *const[]);
static int (*real_fexecve)(int, char *const[], char *const[]);

void ld_exec_remember(void)
{
	real_execvpe = (int (*)(const char *, char *const[], char *const[]))(uintptr_t)dlsym(RTLD_NEXT, "execvpe");
	real_fexecve = (int (*)(int, char *const[], char *const[]))(uintptr_t)dlsym(RTLD_NEXT, "fexecve");
	signal_held = getenv("LEAKDIFF_SIGNAL_HELD") != NULL;
	unsetenv("LEAKDIFF_SIGNAL_HELD");
	const char *follow = getenv("LEAKDIFF_FOLLOW_EXEC");
	if (follow && strcmp(follow, "1") == 0)
		return; /* the environment stays as it is: nothing to put back */
	for (size_t i = 0; i < NCARRIED; i++) {
		const char *v = getenv(carried[i]);
		size_t nl = strlen(carried[i]);
		if (!v || nl + 1 + strlen(v) >= sizeof(saved[i]))
			continue;
		memcpy(saved[i], carried[i], nl);
		saved[i][nl] = '=';
		strcpy(saved[i] + nl + 1, v);
	}
	Dl_info di;
	if (dladdr((void *)(uintptr_t)ld_exec_remember, &di) && di.dli_fname &&
	    strlen(di.dli_fname) < sizeof(self_path))
		strcpy(self_path, di.dli_fname);
}

void ld_exec_release_signal(int signum, bool handled)
{
	if (!signal_held)
		return;
	signal_held = false;
	if (signum <= 0)
		return;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, signum);
	if (!handled) {
		/* A request sent while nobody could take it: drop it rather
		 * than let the default action end the program. */
		struct timespec zero = { 0, 0 };
		while (sigtimedwait(&set, NULL, &zero) == signum)
			;
	}
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/* Whether name=value in an environment entry is "name=". */
static bool names(const char *entry, const char *name)
{
	size_t n = strlen(name);
	return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

/* Whether an environment entry is one the agent sets itself (others, such
 * as the program's own LEAKDIFF_ settings, are passed on untouched). */
static bool is_ours(const char *entry)
{
	if (names(entry, "LD_PRELOAD") || names(entry, "LEAKDIFF_SIGNAL_HELD"))
		return true;
	for (size_t i = 0; i < NCARRIED; i++)
		if (names(entry, carried[i]))
			return true;
	return false;
}

/*
 * The environment for the program this process becomes, in pages of its
 * own (*len set for munmap): envp without the agent's entries, then the
 * saved variables and LD_PRELOAD with this library first. NULL when out
 * of memory.
 */
static char **build_env(char *const envp[], bool held, size_t *len)
{
	size_t n = 0, extra = 0;
	const char *preload = NULL;
	for (size_t i = 0; envp && envp[i]; i++) {
		n++;
		if (strncmp(envp[i], "LD_PRELOAD=", 11) == 0)
			preload = envp[i] + 11;
	}
	size_t plen = preload ? strlen(preload) : 0;
	size_t slen = strlen(self_path);
	size_t ptrs = (n + NCARRIED + 3) * sizeof(char *);
	extra = 11 + slen + 1 + plen + 1;
	*len = ptrs + extra;
	char **out = ld_pages(*len);
	if (!out)
		return NULL;
	char *s = (char *)out + ptrs;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!is_ours(envp[i]))
			out[k++] = envp[i];
	for (size_t i = 0; i < NCARRIED; i++)
		if (saved[i][0])
			out[k++] = saved[i];
	if (held)
		out[k++] = "LEAKDIFF_SIGNAL_HELD=1";
	memcpy(s, "LD_PRELOAD=", 11);
	memcpy(s + 11, self_path, slen);
	size_t at = 11 + slen;
	if (plen) {
		s[at++] = ':';
		memcpy(s + at, preload, plen);
		at += plen;
	}
	s[at] = '\0';
	out[k++] = s;
	out[k] = NULL;
	return out;
}

/* What one exec needs and undoes when it fails. */
struct handover {
	int fd;       /* the pipe, or -1 when the exec is passed through */
	char **env;   /* the environment to use */
	size_t len;   /* bytes of env's pages, 0 when env is the caller's */
	int held;     /* the snapshot signal this call blocked, or 0 */
};

/*
 * Decides whether this exec carries the agent: only in the traced process
 * itself (not a child, not a vfork() child) while the agent is on. Then
 * the pipe stops being close-on-exec and env is a new environment.
 */
static void hand_over(struct handover *h, char *const envp[])
{
	h->fd = -1;
	h->env = (char **)(uintptr_t)envp;
	h->len = 0;
	h->held = 0;
	if (!self_path[0] || !saved[0][0])
		return;
	int saved_busy = ld_track_busy;
	ld_track_busy = 1;
	int e = errno;
	int signum = 0;
	int fd = ld_track_exec_fd(&signum);
	/*
	 * The exec resets the snapshot signal to its default action, which
	 * ends the program, until the new agent installs its handler. Held
	 * blocked across the exec (the mask is kept), a request that comes in
	 * between waits for that handler (ld_exec_release_signal()).
	 */
	sigset_t set, old;
	sigemptyset(&set);
	if (fd >= 0 && signum) {
		sigaddset(&set, signum);
		if (pthread_sigmask(SIG_BLOCK, &set, &old) == 0 && !sigismember(&old, signum))
			h->held = signum;
	}
	char **env = fd >= 0 ? build_env(envp, h->held != 0, &h->len) : NULL;
	if (env && fcntl(fd, F_SETFD, 0) == 0) {
		h->fd = fd;
		h->env = env;
	} else {
		if (env)
			munmap(env, h->len);
		h->len = 0;
		if (h->held)
			pthread_sigmask(SIG_UNBLOCK, &set, NULL);
		h->held = 0;
	}
	errno = e;
	ld_track_busy = saved_busy;
}

/* After a failed exec: the pipe is close-on-exec again, the pages freed. */
static int take_back(struct handover *h, int r)
{
	int e = errno;
	if (h->fd >= 0)
		fcntl(h->fd, F_SETFD, FD_CLOEXEC);
	if (h->len)
		munmap(h->env, h->len);
	if (h->held) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, h->held);
		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	}
	errno = e;
	return r;
}

static int do_execve(const char *path, char *const argv[], char *const envp[])
{
	struct handover h;
	hand_over(&h, envp);
	return take_back(&h, (int)syscall(SYS_execve, path, argv, h.env));
}

static int do_execvpe(const char *file, char *const argv[], char *const envp[])
{
	if (!real_execvpe) {
		errno = ENOSYS;
		return -1;
	}
	struct handover h;
	hand_over(&h, envp);
	return take_back(&h, real_execvpe(file, argv, h.env));
}

/*
 * The exec family. Each runs the program as glibc's does and returns only
 * when the exec failed, with glibc's result and errno; in the traced
 * process the new program also gets the agent and the pipe (see above).
 */

LD_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	return do_execve(path, argv, envp);
}

LD_EXPORT int execv(const char *path, char *const argv[])
{
	return do_execve(path, argv, environ);
}

LD_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	return do_execvpe(file, argv, envp);
}

LD_EXPORT int execvp(const char *file, char *const argv[])
{
	return do_execvpe(file, argv, environ);
}

LD_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	if (!real_fexecve) {
		errno = ENOSYS;
		return -1;
	}
	struct handover h;
	hand_over(&h, envp);
	return take_back(&h, real_fexecve(fd, argv, h.env));
}

/*
 * The execl family, as glibc does it: the list is counted, then copied
 * into an array on the stack. MAX_LIST_ARGS bounds that array (64 KiB
 * of stack); a longer list fails with E2BIG rather than overflow a small
 * thread stack.
 */
#define MAX_LIST_ARGS 8192

static size_t count_list(const char *arg, va_list ap)
{
	size_t n = 0;
	for (const char *a = arg; a && n <= MAX_LIST_ARGS; a = va_arg(ap, const char *))
		n++;
	return n;
}

/* Through a pointer, so that execle() can read on to its envp after it. */
static void copy_list(const char **argv, size_t n, const char *arg, va_list *ap)
{
	argv[0] = arg;
	for (size_t i = 1; i < n; i++)
		argv[i] = va_arg(*ap, const char *);
	argv[n] = NULL;
	if (n)
		(void)va_arg(*ap, const char *); /* the list's NULL */
}

LD_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	size_t n = count_list(arg, ap);
	va_end(ap);
	if (n > MAX_LIST_ARGS) {
		errno = E2BIG;
		return -1;
	}
	const char *argv[n + 1];
	va_start(ap, arg);
	copy_list(argv, n, arg, &ap);
	va_end(ap);
	return do_execve(path, (char *const *)(uintptr_t)argv, environ);
}

LD_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	size_t n = count_list(arg, ap);
	va_end(ap);
	if (n > MAX_LIST_ARGS) {
		errno = E2BIG;
		return -1;
	}
	const char *argv[n + 1];
	va_start(ap, arg);
	copy_list(argv, n, arg, &ap);
	va_end(ap);
	return do_execvpe(file, (char *const *)(uintptr_t)argv, environ);
}

LD_EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	size_t n = count_list(arg, ap);
	va_end(ap);
	if (n > MAX_LIST_ARGS) {
		errno = E2BIG;
		return -1;
	}
	const char *argv[n + 1];
	va_start(ap, arg);
	copy_list(argv, n, arg, &ap);
	char *const *envp = va_arg(ap, char *const *);
	va_end(ap);
	return do_execve(path, (char *const *)(uintptr_t)argv, envp);
}
