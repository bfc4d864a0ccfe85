/*
 * Test program for the agent's live table on one thread: many blocks, freed
 * in a pseudo-random order (so deletions land all over the tables' probe
 * runs and shift entries back across each other), freed addresses handed
 * out again, tables growing and shrinking. Every free that the table fails
 * to find leaves a block counted that is not live; every entry a deletion
 * loses the same. Between phases it asks for a snapshot, so the test can
 * compare exact counts and bytes per site with the numbers this program
 * prints, one line per snapshot:
 *
 *   LABEL FIRST-COUNT FIRST-BYTES REFILL-COUNT REFILL-BYTES
 *
 * Usage: prog_table [BLOCKS] (default 200,000).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "leakdiff.h"

struct block {
	void *p;
	size_t size;
};

static uint64_t rng = 0x243f6a8885a308d3u;

/* xorshift64: the same order every run. */
static uint64_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void shuffle(size_t *order, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)(next_random() % i), t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
}

static __attribute__((noinline)) void *first_block(size_t size)
{
	return malloc(size); /* FIRST-SITE */
}

static __attribute__((noinline)) void *refill_block(size_t size)
{
	return malloc(size); /* REFILL-SITE */
}

struct tally {
	size_t count, bytes;
};

static void phase(const char *label, const struct block *first, size_t nfirst, const struct block *refill,
		  size_t nrefill)
{
	struct tally a = { 0, 0 }, b = { 0, 0 };
	for (size_t i = 0; i < nfirst; i++)
		if (first[i].p) {
			a.count++;
			a.bytes += first[i].size;
		}
	for (size_t i = 0; i < nrefill; i++)
		if (refill[i].p) {
			b.count++;
			b.bytes += refill[i].size;
		}
	leakdiff_snapshot_if_traced(label);
	printf("%s %zu %zu %zu %zu\n", label, a.count, a.bytes, b.count, b.bytes);
}

/* Frees the first `upto` of order's blocks that are still live. */
static void free_some(struct block *blocks, const size_t *order, size_t upto)
{
	for (size_t k = 0; k < upto; k++) {
		struct block *b = &blocks[order[k]];
		free(b->p);
		b->p = NULL;
	}
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
	size_t nrefill = n / 4;
	/* The bookkeeping comes from calloc before any counted block, at a
	 * line of its own. */
	struct block *first = calloc(n, sizeof(*first)), *refill = calloc(nrefill, sizeof(*refill));
	size_t *order = calloc(n, sizeof(*order));
	if (!first || !refill || !order)
		return 1;

	/* Small sizes, so that glibc packs the blocks densely and their
	 * addresses crowd the same shards. */
	for (size_t i = 0; i < n; i++) {
		first[i].size = 8 + (size_t)(next_random() % 5) * 8;
		first[i].p = first_block(first[i].size);
		if (!first[i].p)
			return 1;
		order[i] = i;
	}
	phase("all", first, n, refill, 0);

	/* Half of them, in random order. */
	shuffle(order, n);
	free_some(first, order, n / 2);
	phase("half", first, n, refill, 0);

	/* New blocks land on freed addresses while more go. */
	for (size_t i = 0; i < nrefill; i++) {
		refill[i].size = 8 + (size_t)(next_random() % 5) * 8;
		refill[i].p = refill_block(refill[i].size);
		if (!refill[i].p)
			return 1;
	}
	free_some(first, order + n / 2, n / 4);
	phase("refill", first, n, refill, nrefill);

	/* Nearly everything, again in random order: the tables shrink. */
	free_some(first, order + n / 2 + n / 4, n - n / 2 - n / 4 - 7);
	size_t *rorder = calloc(nrefill, sizeof(*rorder));
	if (!rorder)
		return 1;
	for (size_t i = 0; i < nrefill; i++)
		rorder[i] = i;
	shuffle(rorder, nrefill);
	free_some(refill, rorder, nrefill - 3);
	free(rorder);
	phase("few", first, n, refill, nrefill);

	/* What is left stays for the at-exit snapshot. */
	fflush(stdout);
	return 0;
}
