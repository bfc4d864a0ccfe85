/*
 * Test program (c): four threads churn malloc, realloc and free while one
 * function keeps a block every 100 iterations; halfway through, the main
 * thread forks a child that allocates and exits, and forks another that
 * execs this program again in --child mode. The exec'd child checks that
 * it is not traced (no LD_PRELOAD of the agent, no LEAKDIFF_* variables,
 * the pipe closed) and exits 7; the parent checks the statuses. Halfway it
 * also asks for a snapshot through leakdiff.h. A last thread runs on the
 * smallest stack POSIX allows, which the agent must not make too small.
 * At the end the main thread frees every other kept block: blocks that
 * came from the workers' arenas, freed by another thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "leakdiff.h"

#define THREADS 4

static int iterations = 20000;
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static void **kept;
static size_t nkept;
static pthread_barrier_t halfway;

static __attribute__((noinline)) void retain(size_t size)
{
	void *p = malloc(size); /* RETAIN-SITE */
	if (!p)
		abort();
	memset(p, 1, size);
	pthread_mutex_lock(&kept_lock);
	kept[nkept++] = p;
	pthread_mutex_unlock(&kept_lock);
}

static void *churn(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	void *slots[64] = { 0 };
	for (int i = 0; i < iterations; i++) {
		if (i == iterations / 2)
			pthread_barrier_wait(&halfway);
		unsigned k = (seed = seed * 1103515245u + 12345u) >> 16;
		void **s = &slots[k % 64];
		switch (k % 3) {
		case 0:
			free(*s);
			*s = malloc(k % 512 + 1);
			break;
		case 1: {
			void *p = realloc(*s, k % 2048 + 1);
			if (p)
				*s = p;
			break;
		}
		default:
			free(*s);
			*s = calloc(1, k % 100 + 1);
			break;
		}
		if (i % 100 == 0)
			retain(24);
	}
	for (int i = 0; i < 64; i++)
		free(slots[i]);
	return NULL;
}

static void *small_stack(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100; i++)
		free(malloc((size_t)i + 1));
	return NULL;
}

static int child_mode(const char *fd)
{
	const char *pre = getenv("LD_PRELOAD");
	if (pre && strstr(pre, "leakdiff"))
		return 10;
	if (getenv("LEAKDIFF_FD") || getenv("LEAKDIFF_PIPE"))
		return 11;
	if (fcntl(atoi(fd), F_GETFD) >= 0)
		return 12; /* the agent's pipe leaked into the exec'd program */
	return 7;
}

/*
 * The agent's pipe, found the way a program could stumble on it: the one
 * descriptor past stdio that is a pipe marked close-on-exec (the recorder
 * passes no other, and the agent sets the flag). -1 when there is none,
 * as when the program runs without a recorder.
 */
static int agent_pipe(void)
{
	for (int fd = 3; fd < 1024; fd++) {
		struct stat st;
		int flags = fcntl(fd, F_GETFD);
		if (flags >= 0 && (flags & FD_CLOEXEC) && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode))
			return fd;
	}
	return -1;
}

static int fork_children(const char *self)
{
	pid_t a = fork();
	if (a == 0) {
		/* A forked child that allocates and exits normally: its agent
		 * must stay silent, or the stream would break. */
		for (int i = 0; i < 1000; i++)
			free(malloc(64));
		void *leak = malloc(1000);
		(void)leak;
		exit(5);
	}
	pid_t b = fork();
	if (b == 0) {
		char fd[16];
		snprintf(fd, sizeof(fd), "%d", agent_pipe());
		execl(self, self, "--child", fd, (char *)NULL);
		_exit(99);
	}
	int sa = 0, sb = 0;
	if (a < 0 || b < 0 || waitpid(a, &sa, 0) != a || waitpid(b, &sb, 0) != b)
		return 20;
	if (!WIFEXITED(sa) || WEXITSTATUS(sa) != 5)
		return 21;
	if (!WIFEXITED(sb) || WEXITSTATUS(sb) != 7)
		return 22 + (WIFEXITED(sb) ? WEXITSTATUS(sb) : 50);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "--child") == 0)
		return child_mode(argv[2]);
	if (argc > 1)
		iterations = atoi(argv[1]);
	kept = calloc((size_t)THREADS * (size_t)(iterations / 100 + 1), sizeof(*kept));
	pthread_barrier_init(&halfway, NULL, THREADS + 1);
	pthread_t t[THREADS];
	for (uintptr_t i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, churn, (void *)(i + 1));
	pthread_barrier_wait(&halfway);
	int r = fork_children("/proc/self/exe");
	leakdiff_snapshot_if_traced("halfway");
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	pthread_attr_t attr;
	pthread_t small;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN);
	if (pthread_create(&small, &attr, small_stack, NULL) != 0)
		return 30;
	pthread_join(small, NULL);
	size_t freed = 0;
	for (size_t i = 0; i < nkept; i += 2, freed++)
		free(kept[i]);
	printf("kept %zu\n", nkept - freed);
	return r;
}
