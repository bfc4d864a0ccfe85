/*
 * A multi-threaded service for test_attach.py, started without leakdiff,
 * that attaches the native agent to itself the way the recorder's debugger
 * does: dlopen(libleakdiff.so) and ld_attach_start(). Usage:
 *
 *     prog_attach LIBLEAKDIFF [--allow-ptrace]
 *
 * Two threads churn (malloc and free of 48-byte blocks, nothing kept), one
 * waits in select(); the main thread reads commands on stdin, one per line,
 * and answers each with one line on stdout:
 *
 *     pre N SIZE       keeps N blocks of SIZE (before attaching)   -> ok
 *     attach SETTINGS  dlopen + ld_attach_start(SETTINGS)          -> attach RC
 *     stop             ld_attach_stop()                            -> stop RC
 *     leak N SIZE      keeps N new blocks of SIZE                  -> ok
 *     free_pre         frees the kept "pre" blocks                 -> ok
 *     free_kept        frees the blocks of "leak"                  -> ok
 *     realloc_pre N SIZE  reallocs the first N "pre" blocks to SIZE -> ok
 *     plugin PATH N SIZE  dlopen(PATH), its plugin_leak(N, SIZE)   -> ok
 *     dlmopen PATH N SIZE the same in a new namespace              -> ok
 *     deepbind PATH N SIZE  dlopen(PATH, RTLD_LAZY | RTLD_DEEPBIND), N and SIZE unused -> ok
 *     pleak N SIZE     the last plugin's plugin_leak(N, SIZE)       -> ok
 *     got              which object malloc's GOT entries lead to:
 *                      "got MAIN PLUGIN" with each "agent" or "libc";
 *                      also keeps what malloc and free lead to now
 *     kleak N SIZE     "leak" through the malloc kept by "got"     -> ok
 *     kfree_kept       "free_kept" through the free kept by "got"  -> ok
 *     fork             a child that allocates and exits 0          -> fork STATUS
 *     exit             exit(0)
 *
 * SIGTERM ends it with status 0. With --allow-ptrace any process of the
 * user may ptrace it (Yama), for the test that attaches with gdb.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_KEPT 100000

static void *volatile pre[MAX_KEPT];
static size_t npre;
static void *volatile kept[MAX_KEPT];
static size_t nkept;
static void *plugin;
static volatile sig_atomic_t stopping;

/* Read through the GOT each time: the entries the agent rewrites. Kept
 * until the next "got", like the value a thread loaded from the GOT just
 * before the agent put it back. */
static void *(*volatile malloc_seen)(size_t);
static void (*volatile free_seen)(void *);

static void on_term(int sig)
{
	(void)sig;
	_exit(0);
}

static void *churn(void *arg)
{
	(void)arg;
	while (!stopping) {
		void *v[8];
		for (int i = 0; i < 8; i++)
			v[i] = malloc(48);
		for (int i = 0; i < 8; i++)
			free(v[i]);
		usleep(200);
	}
	return NULL;
}

static void *waiter(void *arg)
{
	(void)arg;
	for (;;) {
		struct timeval tv = { 1, 0 };
		select(0, NULL, NULL, NULL, &tv);
	}
	return NULL;
}

/* "agent" when f is in libleakdiff.so, else "libc" (or the object's path). */
static const char *owner(void *f)
{
	Dl_info di;
	if (!f || !dladdr(f, &di) || !di.dli_fname)
		return "unknown";
	if (strstr(di.dli_fname, "libleakdiff.so"))
		return "agent";
	if (strstr(di.dli_fname, "libc.so"))
		return "libc";
	return di.dli_fname;
}

static __attribute__((noinline)) void leak(size_t n, size_t size)
{
	for (size_t i = 0; i < n && nkept < MAX_KEPT; i++)
		kept[nkept++] = malloc(size);
}

static __attribute__((noinline)) void keep_pre(size_t n, size_t size)
{
	for (size_t i = 0; i < n && npre < MAX_KEPT; i++)
		pre[npre++] = malloc(size);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: prog_attach LIBLEAKDIFF [--allow-ptrace]\n");
		return 2;
	}
	if (argc > 2 && strcmp(argv[2], "--allow-ptrace") == 0)
		prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	signal(SIGTERM, on_term);
	setvbuf(stdout, NULL, _IOLBF, 0);
	pthread_t t[3];
	pthread_create(&t[0], NULL, churn, NULL);
	pthread_create(&t[1], NULL, churn, NULL);
	pthread_create(&t[2], NULL, waiter, NULL);
	static char line[8192];
	printf("ready %d\n", (int)getpid());
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		char arg[4096];
		size_t n, size;
		if (sscanf(line, "pre %zu %zu", &n, &size) == 2) {
			keep_pre(n, size);
			puts("ok");
		} else if (sscanf(line, "attach %4095s", arg) == 1) {
			void *lib = dlopen(argv[1], RTLD_NOW);
			int (*start)(const char *) = NULL;
			if (lib)
				*(void **)&start = dlsym(lib, "ld_attach_start");
			printf("attach %d\n", start ? start(arg) : -1000);
		} else if (strcmp(line, "stop") == 0) {
			void *lib = dlopen(argv[1], RTLD_NOW | RTLD_NOLOAD);
			int (*stop)(void) = NULL;
			if (lib)
				*(void **)&stop = dlsym(lib, "ld_attach_stop");
			printf("stop %d\n", stop ? stop() : -1000);
		} else if (sscanf(line, "leak %zu %zu", &n, &size) == 2) {
			leak(n, size);
			puts("ok");
		} else if (sscanf(line, "kleak %zu %zu", &n, &size) == 2 && malloc_seen) {
			for (size_t i = 0; i < n && nkept < MAX_KEPT; i++)
				kept[nkept++] = malloc_seen(size);
			puts("ok");
		} else if (strcmp(line, "kfree_kept") == 0 && free_seen) {
			while (nkept)
				free_seen(kept[--nkept]);
			puts("ok");
		} else if (strcmp(line, "free_kept") == 0) {
			while (nkept)
				free(kept[--nkept]);
			puts("ok");
		} else if (strcmp(line, "free_pre") == 0) {
			while (npre)
				free(pre[--npre]);
			puts("ok");
		} else if (sscanf(line, "realloc_pre %zu %zu", &n, &size) == 2) {
			for (size_t i = 0; i < n && i < npre; i++)
				pre[i] = realloc(pre[i], size);
			puts("ok");
		} else if (sscanf(line, "plugin %4095s %zu %zu", arg, &n, &size) == 3) {
			plugin = dlopen(arg, RTLD_NOW);
			void (*f)(size_t, size_t) = NULL;
			if (plugin)
				*(void **)&f = dlsym(plugin, "plugin_leak");
			if (f)
				f(n, size);
			puts(f ? "ok" : "no plugin");
		} else if (sscanf(line, "dlmopen %4095s %zu %zu", arg, &n, &size) == 3) {
			plugin = dlmopen(LM_ID_NEWLM, arg, RTLD_NOW);
			void (*f)(size_t, size_t) = NULL;
			if (plugin)
				*(void **)&f = dlsym(plugin, "plugin_leak");
			if (f)
				f(n, size);
			puts(f ? "ok" : "no plugin");
		} else if (sscanf(line, "deepbind %4095s %zu %zu", arg, &n, &size) == 3) {
			plugin = dlopen(arg, RTLD_LAZY | RTLD_DEEPBIND);
			puts(plugin ? "ok" : "no plugin");
		} else if (sscanf(line, "pleak %zu %zu", &n, &size) == 2) {
			void (*f)(size_t, size_t) = NULL;
			if (plugin)
				*(void **)&f = dlsym(plugin, "plugin_leak");
			if (f)
				f(n, size);
			puts(f ? "ok" : "no plugin");
		} else if (strcmp(line, "got") == 0) {
			malloc_seen = malloc;
			free_seen = free;
			void *(*(*pm)(void))(size_t) = NULL;
			if (plugin)
				*(void **)&pm = dlsym(plugin, "plugin_malloc");
			printf("got %s %s\n", owner((void *)(uintptr_t)malloc_seen),
			       pm ? owner((void *)(uintptr_t)pm()) : "none");
		} else if (strcmp(line, "fork") == 0) {
			pid_t pid = fork();
			if (pid == 0) {
				for (int i = 0; i < 100; i++)
					free(malloc(100));
				leak(10, 777);
				_exit(0);
			}
			int status = -1;
			waitpid(pid, &status, 0);
			printf("fork %d\n", status);
		} else if (strcmp(line, "exit") == 0) {
			break;
		} else {
			printf("unknown %s\n", line);
		}
	}
	stopping = 1;
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	return 0;
}
