/* Allocation failure injection through the linker's --wrap; see helpers.h. */
#include <stddef.h>

#include "helpers.h"

#ifndef TH_HAVE_WRAP

void th_fail_after(long n)
{
	(void)n;
}

long th_fail_off(void)
{
	return 0;
}

void th_fail_hold(int on)
{
	(void)on;
}

void th_largest_reset(void)
{
}

size_t th_largest(void)
{
	return 0;
}

#else

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);

static long budget = -1; /* allocations left before failing; -1: never fail */
static long count;
static int held;
static size_t largest;

void th_fail_after(long n)
{
	budget = n;
	count = 0;
}

long th_fail_off(void)
{
	budget = -1;
	return count;
}

void th_fail_hold(int on)
{
	held = on;
}

void th_largest_reset(void)
{
	largest = 0;
}

size_t th_largest(void)
{
	return largest;
}

static void note_size(size_t n)
{
	if (n > largest)
		largest = n;
}

/* True when this allocation is to fail. */
static int fail_now(void)
{
	if (held)
		return 0;
	count++;
	if (budget < 0)
		return 0;
	if (budget == 0)
		return 1;
	budget--;
	return 0;
}

void *__wrap_malloc(size_t n)
{
	note_size(n);
	return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	note_size(size && n > SIZE_MAX / size ? SIZE_MAX : n * size);
	return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	note_size(n);
	return fail_now() ? NULL : __real_realloc(p, n);
}

#endif
