/*
 * Test library for the report's native rows (issue 17 item 5): an
 * allocator wrapper, as libraries have them (jv_mem_alloc, sqlite3Malloc),
 * and a named library function that every caller goes through, so that
 * rows from different callers in the program print alike unless the
 * report shows where they part. Built -g -O0 so that no call is inlined
 * or made a tail call.
 */
#include <stdlib.h>

void *wrap_mem_alloc(size_t n);
void *wrap_store(size_t n);

void *wrap_mem_alloc(size_t n)
{
	void *p = malloc(n); /* WRAP-SITE */
	if (!p)
		abort();
	return p;
}

void *wrap_store(size_t n)
{
	void *p = wrap_mem_alloc(n); /* STORE-SITE */
	return p;
}
