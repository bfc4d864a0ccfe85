/*
 * A heap that rises and falls, for the peak snapshot of `leakdiff record
 * --peak` (test_triggers_native.py): N blocks of 1000 bytes allocated with
 * no free in between, all freed, then M blocks, which stay until exit. The
 * high-water mark is the N blocks, and the first free() after it is where
 * the agent takes the peak snapshot, so that snapshot holds exactly N
 * blocks of peak_block's site; the at-exit one holds M.
 *
 * Usage: prog_peak N M (N and M at most 100000).
 */
#include <stdio.h>
#include <stdlib.h>

#define MAX_BLOCKS 100000

static void *blocks[MAX_BLOCKS];

__attribute__((noinline)) static void *peak_block(void)
{
	void *p = malloc(1000); /* PEAK-SITE */
	if (!p)
		abort();
	return p;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	int n = atoi(argv[1]), m = atoi(argv[2]);
	if (n < 0 || m < 0 || n > MAX_BLOCKS || m > MAX_BLOCKS)
		return 2;
	for (int i = 0; i < n; i++)
		blocks[i] = peak_block();
	for (int i = 0; i < n; i++)
		free(blocks[i]);
	for (int i = 0; i < m; i++)
		blocks[i] = peak_block();
	printf("kept %d\n", m);
	return 0;
}
