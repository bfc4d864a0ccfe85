/*
 * Test program: every function the agent interposes must behave exactly as
 * glibc's (results, errno, edge cases), and each leaves one block of a
 * distinct size so the test can find them all in the snapshot. A block of
 * more than 4 GiB is allocated and freed, and another kept for good, when
 * the machine lets us map it (virtual memory only; not under
 * MALLOC_PERTURB_, which meson sets and which would fill every byte).
 * Exits 0 when every check holds, or with the number of the first failed
 * check.
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *kept[16];

#define CHECK(n, cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "check %d failed: %s\n", n, #cond); \
			return n; \
		} \
	} while (0)

/* Sizes the compiler must not see, or it rejects the overflowing calls. */
volatile size_t half_max = SIZE_MAX / 2, nearly_max = SIZE_MAX - 4096;

int main(int argc, char **argv)
{
	void *p;
	/* malloc keeps errno on success. */
	errno = 1234;
	kept[0] = malloc(1001);
	CHECK(1, kept[0] && errno == 1234);
	/* calloc: zeroed, overflow refused with ENOMEM. */
	kept[1] = calloc(1, 1002);
	CHECK(2, kept[1] && ((char *)kept[1])[1001] == 0);
	errno = 0;
	CHECK(3, calloc(half_max, 4) == NULL && errno == ENOMEM);
	/* realloc: NULL acts as malloc, growing keeps the contents, 0 frees. */
	p = realloc(NULL, 10);
	CHECK(4, p != NULL);
	memcpy(p, "abcdefghi", 10);
	p = realloc(p, 1003);
	CHECK(5, p && strcmp(p, "abcdefghi") == 0);
	kept[2] = p;
	p = malloc(77);
	errno = 0;
	CHECK(6, realloc(p, 0) == NULL && errno == 0); /* glibc frees and returns NULL */
	errno = 0;
	p = malloc(16);
	CHECK(7, realloc(p, nearly_max) == NULL && errno == ENOMEM);
	free(p); /* the failed realloc left p alive */
	/* reallocarray: overflow gives ENOMEM and leaves the block alone. */
	p = reallocarray(NULL, 4, 251);
	CHECK(8, p != NULL);
	errno = 0;
	CHECK(9, reallocarray(p, half_max, 3) == NULL && errno == ENOMEM);
	kept[3] = p; /* 1004 bytes */
	/* posix_memalign: EINVAL for bad alignments, no errno change. */
	errno = 4321;
	CHECK(10, posix_memalign(&p, 3, 10) == EINVAL && errno == 4321);
	CHECK(11, posix_memalign(&p, 0, 10) == EINVAL);
	CHECK(12, posix_memalign(&kept[4], 64, 1005) == 0 && ((uintptr_t)kept[4] & 63) == 0);
	/* aligned_alloc, memalign, valloc, pvalloc. */
	kept[5] = aligned_alloc(128, 1006);
	CHECK(13, kept[5] && ((uintptr_t)kept[5] & 127) == 0);
	kept[6] = memalign(256, 1007);
	CHECK(14, kept[6] && ((uintptr_t)kept[6] & 255) == 0);
	long page = sysconf(_SC_PAGESIZE);
	kept[7] = valloc(1008);
	CHECK(15, kept[7] && ((uintptr_t)kept[7] & (uintptr_t)(page - 1)) == 0);
	kept[8] = pvalloc(1009);
	CHECK(16, kept[8] && ((uintptr_t)kept[8] & (uintptr_t)(page - 1)) == 0);
	/* free(NULL) is a no-op that keeps errno. */
	errno = 99;
	free(NULL);
	CHECK(17, errno == 99);
	/* strdup goes through malloc. */
	kept[9] = strdup("0123456789");
	CHECK(18, kept[9] != NULL);
	/* Blocks above 4 GiB: one freed, one kept when the kernel allows it. */
	size_t big = ((size_t)5 << 30) + 11;
	const char *perturb = getenv("MALLOC_PERTURB_");
	p = perturb && strcmp(perturb, "0") != 0 ? NULL : malloc(big);
	if (p) {
		free(p);
		kept[10] = malloc(big);
	}
	/* Churn that leaves nothing behind. */
	for (int i = 0; i < 10000; i++) {
		void *a = malloc((size_t)i % 300 + 1), *b = calloc(2, (size_t)i % 100 + 1);
		a = realloc(a, (size_t)i % 700 + 1);
		free(b);
		free(a);
	}
	if (argc > 1)
		printf("%d\n", kept[10] != NULL);
	return 0;
}
