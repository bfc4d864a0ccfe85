/*
 * A malloc-heavy loop for measuring the agent's overhead: N (default 10
 * million) malloc/free pairs of varied sizes from two call sites, one block
 * in 10,000 kept. Not a test; tests/native/meson.build has
 * the hyperfine command that compares it with and without the agent.
 */
#include <stdio.h>
#include <stdlib.h>

void *kept[1000];

static __attribute__((noinline)) void *small_block(size_t n)
{
	return malloc(n);
}

static __attribute__((noinline)) void *odd_block(size_t n)
{
	return malloc(n);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10000000;
	for (long i = 0; i < n; i++) {
		void *p = i & 1 ? odd_block((size_t)(i % 256) + 1) : small_block((size_t)(i % 64) + 8);
		if (i % 10000 == 0)
			kept[i / 10000 % 1000] = p;
		else
			free(p);
	}
	printf("%p\n", kept[0]);
	return 0;
}
