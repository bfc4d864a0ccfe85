/*
 * Test program: stacks that the agent's remembered stacks (memo.c) must
 * tell apart. One function calls malloc; it is reached through callers
 * whose frames are laid out alike, so that malloc sees the same return
 * address and stack pointer whichever of them called, and only the words
 * further up the stack differ. Others reach it through a frame realigned
 * for a 64-byte aligned local and through a frame that grows with alloca.
 * The paths are interleaved and every block is kept, so each path's count
 * is known:
 *
 *   prog_stacks N   ->  red 3N/8, blue 2N/8, aligned N/8, alloca N/8,
 *                       deep N/8 (of 32-byte blocks; N a multiple of 8)
 *
 * It is built twice by meson, as is and with frame pointers at -O2.
 */
#include <alloca.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

static void **kept;
static size_t nkept;

static __attribute__((noinline)) void *leaf(size_t n)
{
	void *p = malloc(n); /* LEAF-SITE */
	if (!p)
		abort();
	memset(p, 0, n);
	return p;
}

static __attribute__((noinline)) void *mid(size_t n)
{
	void *p = leaf(n);
	KEEP(p);
	return p;
}

/* Two callers alike in every byte of their frames. */
static __attribute__((noinline)) void *via_red(size_t n)
{
	void *p = mid(n);
	KEEP(p);
	return p;
}

static __attribute__((noinline)) void *via_blue(size_t n)
{
	void *p = mid(n);
	KEEP(p);
	return p;
}

/* The compiler realigns this frame for the local. */
static __attribute__((noinline)) void *via_aligned(size_t n)
{
	_Alignas(64) char buf[64];
	memset(buf, (int)n, sizeof(buf));
	KEEP(buf);
	void *p = mid(n);
	KEEP(p);
	KEEP(buf);
	return p;
}

/* A frame of varying size: its frame address comes from rbp. */
static __attribute__((noinline)) void *via_alloca(size_t n, size_t pad)
{
	char *b = alloca(pad);
	memset(b, 1, pad);
	KEEP(b);
	void *p = mid(n);
	KEEP(p);
	return p;
}

/* The same path as red, one frame deeper for every level of depth. */
static __attribute__((noinline)) void *via_deep(size_t n, int depth)
{
	void *p = depth ? via_deep(n, depth - 1) : via_red(n);
	KEEP(p);
	return p;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 8000;
	if (n <= 0 || n % 8 != 0)
		return 2;
	kept = calloc((size_t)n, sizeof(*kept));
	if (!kept)
		return 3;
	for (long i = 0; i < n; i++) {
		void *p;
		switch (i % 8) {
		case 0:
		case 2:
		case 3:
			p = via_red(32);
			break;
		case 1:
		case 4:
			p = via_blue(32);
			break;
		case 5:
			p = via_aligned(32);
			break;
		case 6:
			p = via_alloca(32, 16 * (size_t)(1 + (i / 8) % 4));
			break;
		default:
			p = via_deep(32, (int)((i / 8) % 3));
			break;
		}
		kept[nkept++] = p;
	}
	printf("kept %zu\n", nkept);
	return 0;
}
