/*
 * malloc churn with a slow leak, for the native profiler columns.
 *
 *   churn [-t THREADS] [-n OPS_PER_THREAD]
 *
 * Each thread keeps a window of 4096 live blocks of 16..2064 bytes and
 * replaces a random one per operation (free + malloc, touching the new
 * block), so the heap stays small while the allocator works hard.  One
 * operation in 1024 also allocates a 64-byte block that is never freed
 * (kept reachable from a per-thread list, so it is a leak by growth, not
 * a lost pointer).  Prints a checksum so the work cannot be optimised away.
 *
 * Build: cc -O2 -pthread -o churn churn.c
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW 4096

struct leak {
	struct leak *next;
	char pad[56];
};

/* One cache line each: the threads write their sum on every operation.
 * When two jobs shared a line, the two-thread run spent up to a quarter of
 * its CPU time passing that line between the cores, more or less from one
 * run to the next, instead of measuring the allocator. */
struct job {
	_Alignas(64) long ops;
	unsigned seed;
	uint64_t sum;
	struct leak *leaked;
	long nleaked;
};

static inline uint32_t next_rand(uint32_t *s)
{
	/* xorshift32 */
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

static __attribute__((noinline)) void *make_block(size_t n, uint32_t tag)
{
	unsigned char *p = malloc(n);
	if (!p)
		abort();
	memset(p, (int)(tag & 0xff), n < 64 ? n : 64);
	p[n - 1] = (unsigned char)tag;
	return p;
}

static __attribute__((noinline)) void remember(struct job *j)
{
	struct leak *l = malloc(sizeof(*l));
	if (!l)
		abort();
	l->next = j->leaked;
	j->leaked = l;
	j->nleaked++;
}

static void *worker(void *arg)
{
	struct job *j = arg;
	uint32_t s = j->seed | 1;
	void **slot = calloc(WINDOW, sizeof(*slot));
	size_t *len = calloc(WINDOW, sizeof(*len));
	if (!slot || !len)
		abort();
	for (long i = 0; i < j->ops; i++) {
		uint32_t r = next_rand(&s);
		unsigned k = r % WINDOW;
		if (slot[k]) {
			j->sum += ((unsigned char *)slot[k])[len[k] - 1];
			free(slot[k]);
		}
		len[k] = 16 + (r >> 16) % 2048;
		slot[k] = make_block(len[k], r);
		if ((r & 1023) == 7)
			remember(j);
	}
	for (unsigned k = 0; k < WINDOW; k++)
		free(slot[k]);
	free(slot);
	free(len);
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = 1;
	long ops = 2000000;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			ops = atol(argv[++i]);
		else {
			fprintf(stderr, "usage: churn [-t THREADS] [-n OPS_PER_THREAD]\n");
			return 2;
		}
	}
	if (threads < 1 || threads > 64 || ops < 1)
		return 2;
	pthread_t tid[64];
	struct job jobs[64];
	for (int t = 0; t < threads; t++) {
		jobs[t] = (struct job){ .ops = ops, .seed = 2463534242u + 977u * (unsigned)t };
		if (pthread_create(&tid[t], NULL, worker, &jobs[t]) != 0)
			return 1;
	}
	uint64_t sum = 0;
	long leaked = 0;
	for (int t = 0; t < threads; t++) {
		pthread_join(tid[t], NULL);
		sum += jobs[t].sum;
		leaked += jobs[t].nleaked;
	}
	printf("churn: %d threads x %ld ops, %ld blocks kept, checksum %llu\n", threads, ops, leaked,
	       (unsigned long long)sum);
	return 0;
}
