/*
 * Test program for the error paths of the agent's hooks: calls that fail
 * or do nothing must leave the live blocks exactly as they were, and return
 * and set errno as glibc does. Each kind of block comes from its own line
 * (the markers in comments), so test_agent_errors.py can count them in the
 * snapshots:
 *
 *   KEEP-SITE      100 blocks of 40 bytes; a realloc to a huge size fails
 *                  on each (ENOMEM), so all 100 stay live; a snapshot
 *                  "after-failures" is taken, then 50 are freed.
 *   ARRAY-SITE     20 blocks of 48 bytes; reallocarray overflows on each.
 *   ALIGN-SITE     10 blocks of 56 bytes; each is left in the out pointer of
 *                  a posix_memalign call that fails (EINVAL, ENOMEM), which
 *                  must neither record nor move it.
 *   ZERO-SITE      30 blocks, each then freed by realloc(p, 0): none live.
 *   BADALIGN-SITE  aligned_alloc and posix_memalign calls with bad
 *                  arguments: nothing live at these lines.
 *
 * Every return value and errno that glibc defines the same way in all
 * versions is checked here (exit status: the number of the failed check);
 * the others (aligned_alloc with an alignment that is not a power of two,
 * errno after a posix_memalign that fails) are printed, one line per call,
 * so the test can compare a run under the agent with a plain one.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leakdiff.h"

#define CHECK(n, cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "check %d failed: %s\n", n, #cond); \
			exit(n); \
		} \
	} while (0)

/* Sizes the compiler must not see, or it rejects the failing calls. */
volatile size_t huge = SIZE_MAX - 4096, half_max = SIZE_MAX / 2, three = 3, zero = 0;

static void *keep[100], *array[20], *aligned[10];

static __attribute__((noinline)) void *keep_block(void)
{
	return malloc(40); /* KEEP-SITE */
}

static __attribute__((noinline)) void *array_block(void)
{
	return malloc(48); /* ARRAY-SITE */
}

static __attribute__((noinline)) void *align_block(void)
{
	return malloc(56); /* ALIGN-SITE */
}

static __attribute__((noinline)) void *zero_block(void)
{
	return malloc(64); /* ZERO-SITE */
}

/* Prints what a call glibc versions disagree on gave: the test compares. */
static void report(const char *what, void *p, int err)
{
	printf("%s -> %s errno=%d\n", what, p ? "block" : "NULL", p ? 0 : err);
}

int main(void)
{
	/* realloc to a size glibc refuses: NULL, ENOMEM, the block intact. */
	for (int i = 0; i < 100; i++) {
		keep[i] = keep_block();
		CHECK(1, keep[i] != NULL);
		memset(keep[i], i, 40);
		errno = 0;
		CHECK(2, realloc(keep[i], huge) == NULL && errno == ENOMEM);
		CHECK(3, ((unsigned char *)keep[i])[39] == i);
	}

	/* reallocarray whose product overflows: NULL, ENOMEM, block intact. */
	for (int i = 0; i < 20; i++) {
		array[i] = array_block();
		CHECK(4, array[i] != NULL);
		errno = 0;
		CHECK(5, reallocarray(array[i], half_max, 3) == NULL && errno == ENOMEM);
		errno = 0;
		CHECK(6, reallocarray(array[i], 3, half_max) == NULL && errno == ENOMEM);
	}

	/*
	 * posix_memalign with a bad alignment returns EINVAL without touching
	 * errno, a size it cannot serve ENOMEM; neither touches the out
	 * pointer, which here holds a live block from ALIGN-SITE.
	 */
	for (int i = 0; i < 10; i++) {
		void *p = align_block();
		CHECK(7, p != NULL);
		aligned[i] = p;
		errno = 4321;
		CHECK(8, posix_memalign(&p, three, 10) == EINVAL && p == aligned[i] && errno == 4321);
		CHECK(9, posix_memalign(&p, zero, 10) == EINVAL && p == aligned[i] && errno == 4321);
		CHECK(10, posix_memalign(&p, sizeof(void *) * 3, 10) == EINVAL && p == aligned[i]);
		CHECK(11, posix_memalign(&p, 64, huge) == ENOMEM && p == aligned[i]); /* BADALIGN-SITE */
		if (i == 0) /* glibc 2.36 leaves ENOMEM in errno too */
			report("posix_memalign(64, huge)", NULL, errno);
	}

	/* aligned_alloc: a size it cannot serve is ENOMEM everywhere; a bad
	 * alignment is EINVAL in newer glibc and served in older ones. */
	errno = 0;
	void *p = aligned_alloc(64, huge); /* BADALIGN-SITE */
	CHECK(12, p == NULL && errno == ENOMEM);
	errno = 0;
	p = aligned_alloc(three, 16); /* BADALIGN-SITE */
	report("aligned_alloc(3, 16)", p, errno);
	free(p);
	errno = 0;
	p = aligned_alloc(zero, 16); /* BADALIGN-SITE */
	report("aligned_alloc(0, 16)", p, errno);
	free(p);
	errno = 0;
	p = aligned_alloc((size_t)1 << 63, 16); /* BADALIGN-SITE */
	report("aligned_alloc(2^63, 16)", p, errno);
	free(p);

	/* realloc(p, 0) frees p and returns NULL without touching errno. */
	for (int i = 0; i < 30; i++) {
		p = zero_block();
		CHECK(13, p != NULL);
		errno = 77;
		CHECK(14, realloc(p, zero) == NULL && errno == 77);
	}

	/* free(NULL) does nothing, errno included. */
	for (int i = 0; i < 1000; i++) {
		errno = 99;
		free(NULL);
		CHECK(15, errno == 99);
	}

	leakdiff_snapshot_if_traced("after-failures");

	/* The blocks that survived the failures can still be freed. */
	for (int i = 0; i < 100; i += 2)
		free(keep[i]);
	fflush(stdout);
	return 0;
}
