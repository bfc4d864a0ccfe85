/*
 * Starting a program under an agent: finding the command as execvp would,
 * the table of agents (how each is recognised from the command, where its
 * files are, how it is injected through the environment), spawning with
 * the agent's pipe inherited, and the signal dispositions and process group
 * the program gets. What happens to the pipe's bytes afterwards is the
 * recorder's business (recorder.h).
 */
#ifndef LD_CLI_LAUNCH_H
#define LD_CLI_LAUNCH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What the user asked of the agent, whichever agent it is. */
struct ld_launch_opts {
	unsigned depth;   /* frames per traceback */
	int signal;       /* the snapshot signal */
	uint64_t sample;  /* mean bytes between samples; 0 = exact */
	bool tracemalloc; /* Python: record with tracemalloc, not the allocator hooks */
	bool peak;        /* keep a snapshot of the heap at its high-water mark */
};

/*
 * One way of putting an agent into a program. `leakdiff record` tries the
 * rows' detect in order and takes the first that accepts the command;
 * --runtime=NAME picks a row by name.
 */
struct ld_agent {
	const char *name;  /* the --runtime word */
	const char *title; /* how messages name it: "cannot find the TITLE agent" */
	bool tracemalloc;  /* --tracemalloc means something to it */
	/* The option that asks for it ("--native"); NULL for a --runtime word. */
	const char *option;
	/*
	 * Whether the command (its resolved path, and its argv of argc words)
	 * is one this agent records when nothing was asked for.
	 */
	bool (*detect)(const char *path, char *const *argv, int argc);
	/*
	 * Writes where the agent's files are to out (n bytes); returns 0 when
	 * they are there and -1 when not (out still names the place).
	 */
	int (*locate)(char *out, size_t n);
	/*
	 * Sets this process's environment so that a program started from it
	 * loads the agent found at `agent`, with o's settings. Returns 0 or -1
	 * with errno set.
	 */
	int (*inject)(const char *agent, const struct ld_launch_opts *o);
	/*
	 * Why the agent could never start in this command (a message), so that
	 * it is refused before it runs; NULL when it may. NULL for agents that
	 * fit any command.
	 */
	const char *(*refuse)(const char *path, char *const *argv, int argc);
	/* Why nothing was recorded when no agent ever said hello. */
	const char *never_started;
	/* Why there is no at-exit snapshot when the program ended without one. */
	const char *no_exit;
};

/* The agents, in the order auto detection tries them; the last accepts anything. */
extern const struct ld_agent ld_launch_agents[];
extern const size_t ld_launch_nagents;

/* The row called name, or NULL. */
const struct ld_agent *ld_launch_agent_named(const char *name);

/* The first row whose detect accepts the command (never NULL). */
const struct ld_agent *ld_launch_agent_detect(const char *path, char *const *argv, int argc);

/*
 * Whether name (a path or a bare file name; only its last component counts)
 * names a Python interpreter: "python" followed by nothing but a version and
 * build suffixes (python3, python3.11, python3.11d, python3-dbg). Looks at
 * the name only, never at the file.
 */
bool ld_launch_python_name(const char *name);

/*
 * Finds cmd the way execvp would. Returns a new string the caller frees, or
 * NULL with errno set (ENOENT when it is nowhere, EACCES, EISDIR, ...).
 */
char *ld_launch_resolve(const char *cmd);

/*
 * Prepares this process's environment for the program: the agent's own
 * variables through ag->inject, then where to write (the pipe's write end
 * wfd, and its identity so the agent can check it is still the pipe) and
 * o's settings. Returns 0, or -1 with errno set.
 */
int ld_launch_prepare_env(const struct ld_agent *ag, const char *agent, const struct ld_launch_opts *o,
			  int wfd);

/*
 * Names rfd, the read end of the request channel, and its identity in this
 * process's environment for the agent (LEAKDIFF_REQUEST_FD and
 * LEAKDIFF_REQUEST_PIPE). Returns 0, or -1 with errno set.
 */
int ld_launch_request_env(int rfd);

/* Adds the signals the recorder passes on to the program to set. */
void ld_launch_forwarded(sigset_t *set);

/*
 * Ignores SIGPIPE and SIGXFSZ in this process, so that writing into a
 * closed stderr pipe or past RLIMIT_FSIZE fails with a message instead of
 * killing the recorder, and remembers the dispositions found for the
 * program, which gets them back in ld_launch_spawn().
 */
void ld_launch_ignore_write_signals(void);

/*
 * Whether the program should run in a process group of its own: when this
 * process has no controlling terminal (see launch.c for why).
 */
bool ld_launch_own_group(void);

/*
 * Starts path with argv, the descriptor wfd inherited (every other one of
 * ours is close-on-exec), the signal mask oldmask and, with own_group, in
 * a new process group that dies with us. On success stores the pid and
 * returns 0; returns the negative errno when the program could not be
 * executed (the child is reaped by then).
 */
int ld_launch_spawn(const char *path, char *const *argv, int wfd, const sigset_t *oldmask, bool own_group,
		    pid_t *pid);

/*
 * For a program whose end of the pipe closed before it was reaped: whether
 * it closed the pipe while still running, rather than by exiting.
 */
bool ld_launch_closed_while_running(pid_t pid);

#endif
