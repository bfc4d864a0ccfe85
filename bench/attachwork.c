/*
 * The workload of bench/run's attach section: malloc churn in one thread,
 * run plainly, under `leakdiff record` (LD_PRELOAD), or with the native
 * agent attached to the running process (libleakdiff.so, as `leakdiff
 * record --pid` loads it), and the time the agent takes to detach.
 *
 *   attachwork [-n OPS] [-k KEEP] [-a LIBLEAKDIFF SETTINGS]
 *
 * Keeps a window of 4096 live blocks of 16..2064 bytes and replaces a
 * random one per operation (free + malloc), then allocates KEEP blocks of
 * 24 bytes that stay live. With -a it attaches before the churn and
 * detaches (ld_attach_stop) after the KEEP blocks, so detaching has a
 * table of KEEP + 4096 blocks to forget. Prints one line:
 *
 *   work_s W cpu_s C attach_ms A detach_ms D sum S
 *
 * (the churn's wall and CPU time; A and D are -1 without -a).
 *
 * Build: cc -O2 -g -o attachwork attachwork.c -ldl
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WINDOW 4096

static double now(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline uint32_t next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

int main(int argc, char **argv)
{
	long ops = 1000000, keep = 0;
	const char *lib = NULL, *settings = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "n:k:a:")) != -1) {
		if (opt == 'n')
			ops = atol(optarg);
		else if (opt == 'k')
			keep = atol(optarg);
		else if (opt == 'a' && optind < argc)
			lib = optarg, settings = argv[optind++];
		else {
			fprintf(stderr, "usage: attachwork [-n OPS] [-k KEEP] [-a LIBLEAKDIFF SETTINGS]\n");
			return 2;
		}
	}
	int (*start)(const char *) = NULL, (*stop)(void) = NULL;
	double attach_ms = -1, detach_ms = -1;
	if (lib) {
		void *h = dlopen(lib, RTLD_NOW);
		if (h) {
			*(void **)&start = dlsym(h, "ld_attach_start");
			*(void **)&stop = dlsym(h, "ld_attach_stop");
		}
		if (!start || !stop) {
			fprintf(stderr, "attachwork: cannot load %s: %s\n", lib, dlerror());
			return 1;
		}
		double t = now(CLOCK_MONOTONIC);
		int r = start(settings);
		attach_ms = (now(CLOCK_MONOTONIC) - t) * 1e3;
		if (r != 0) {
			fprintf(stderr, "attachwork: ld_attach_start: %d\n", r);
			return 1;
		}
	}
	static void *win[WINDOW];
	uint32_t seed = 12345;
	uint64_t sum = 0;
	for (int i = 0; i < WINDOW; i++)
		win[i] = malloc(16 + next_rand(&seed) % 2049);
	double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
	for (long i = 0; i < ops; i++) {
		uint32_t r = next_rand(&seed);
		uint32_t k = r % WINDOW;
		free(win[k]);
		size_t size = 16 + (r >> 12) % 2049;
		char *p = malloc(size);
		p[0] = (char)i;
		sum += (uintptr_t)p[0];
		win[k] = p;
	}
	double work = now(CLOCK_MONOTONIC) - w0, cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
	void **kept = keep ? calloc((size_t)keep, sizeof(*kept)) : NULL;
	for (long i = 0; i < keep && kept; i++)
		kept[i] = malloc(24);
	if (stop) {
		double t = now(CLOCK_MONOTONIC);
		int r = stop();
		detach_ms = (now(CLOCK_MONOTONIC) - t) * 1e3;
		if (r != 0) {
			fprintf(stderr, "attachwork: ld_attach_stop: %d\n", r);
			return 1;
		}
	}
	/* Frees after detaching: blocks the agent recorded, now forgotten. */
	for (long i = 0; i < keep && kept; i++)
		free(kept[i]);
	free(kept);
	for (int i = 0; i < WINDOW; i++)
		free(win[i]);
	printf("work_s %.4f cpu_s %.4f attach_ms %.2f detach_ms %.2f sum %llu\n", work, cpu, attach_ms, detach_ms,
	       (unsigned long long)sum);
	return 0;
}
