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
	return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	return fail_now() ? NULL : __real_realloc(p, n);
}

#endif
