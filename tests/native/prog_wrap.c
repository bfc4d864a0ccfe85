/*
 * Test program for the report's native rows: keeps N, 2N and 3N blocks of
 * 64 bytes through libwrap's wrap_store from three functions of its own.
 * It is linked stripped (no symbol table), so those three are known only
 * by their offset in the program: the report must still tell the three
 * rows apart.
 */
#include <stdlib.h>

void *wrap_store(size_t n);

static void *volatile sink[1 << 16];
static size_t kept;

/* Each keeps its blocks through one call site of its own (KEEP-ONE, ...). */
static __attribute__((noinline)) void keep_one(int n)
{
	for (int i = 0; i < n; i++)
		sink[kept++ % (1 << 16)] = wrap_store(64);
	__asm__ volatile("" ::: "memory"); /* no tail call: this frame stays on the stack */
}

static __attribute__((noinline)) void keep_two(int n)
{
	for (int i = 0; i < 2 * n; i++)
		sink[kept++ % (1 << 16)] = wrap_store(64);
	__asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) void keep_three(int n)
{
	for (int i = 0; i < 3 * n; i++)
		sink[kept++ % (1 << 16)] = wrap_store(64);
	__asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 10;
	keep_one(n);
	keep_two(n);
	keep_three(n);
	return 0;
}
