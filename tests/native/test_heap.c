/*
 * Unit tests for agents/native/heap.c, the native agent's live table,
 * compiled into this test on its own: exact sums by site, blocks taken out
 * again, and the sampled estimates, which weigh each block of n bytes by
 * the inverse of the probability 1 - exp(-n / mean) that it was recorded.
 * The table stores addresses as numbers and never reads through them, so
 * made-up addresses do. Criterion runs each test in a process of its own:
 * every test starts with empty tables.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "agent.h"

static uint32_t site(uintptr_t a, uintptr_t b)
{
	const uintptr_t stack[] = { a, b };
	uint32_t id = ld_heap_site(stack, 2, ld_heap_hash(stack, 2));
	cr_assert_neq(id, 0);
	return id;
}

static struct ld_site_live *collect(double mean, uint32_t *n)
{
	*n = ld_heap_nsites();
	struct ld_site_live *acc = calloc((size_t)*n + 1, sizeof(*acc));
	cr_assert_not_null(acc);
	ld_heap_collect(acc, *n, mean);
	return acc;
}

/* The estimate one recorded block of size bytes stands for. */
static double weight(size_t size, double mean)
{
	return 1.0 / (1.0 - exp(-(double)size / mean));
}

static void assert_close(double got, double want, const char *what)
{
	cr_assert(fabs(got - want) <= 1e-9 * want, "%s: %.6f, want %.6f", what, got, want);
}

Test(heap, exact_sums_by_site)
{
	cr_assert_eq(ld_heap_init(), 0);
	uint32_t a = site(0x401000, 0x402000), b = site(0x401000, 0x403000);
	cr_assert_neq(a, b);
	cr_assert_eq(site(0x401000, 0x402000), a, "the same stack is the same site");
	for (uintptr_t i = 0; i < 5000; i++)
		cr_assert(ld_heap_add(0x7f0000000000 + 16 * i, 32, i % 5 ? a : b));
	uint32_t n;
	struct ld_site_live *acc = collect(0, &n);
	cr_assert_eq(n, 2);
	cr_assert_eq(acc[a].count, 4000);
	cr_assert_eq(acc[a].bytes, 4000 * 32);
	cr_assert_eq(acc[b].count, 1000);
	cr_assert_eq(acc[b].bytes, 1000 * 32);
	cr_assert_eq(acc[a].est_count, 0.0, "no estimates without sampling");
	free(acc);
}

Test(heap, removed_blocks_leave_the_sums)
{
	cr_assert_eq(ld_heap_init(), 0);
	uint32_t a = site(0x401000, 0x402000);
	for (uintptr_t i = 0; i < 3000; i++)
		cr_assert(ld_heap_add(0x7f0000000000 + 16 * i, 8 + i % 7, a));
	uint64_t bytes = 0;
	for (uintptr_t i = 0; i < 3000; i++) {
		uint32_t s = 0;
		size_t z = 0;
		if (i % 3 == 0) {
			cr_assert(ld_heap_remove(0x7f0000000000 + 16 * i, &s, &z), "block %zu", (size_t)i);
			cr_assert_eq(s, a);
			cr_assert_eq(z, 8 + i % 7);
		} else {
			bytes += 8 + i % 7;
		}
	}
	cr_assert_not(ld_heap_remove(0x7f0000000000, NULL, NULL), "a block removed twice");
	uint32_t n;
	struct ld_site_live *acc = collect(0, &n);
	cr_assert_eq(acc[a].count, 2000);
	cr_assert_eq(acc[a].bytes, bytes);
	free(acc);
}

Test(heap, sampled_estimates_weigh_blocks_by_their_inverse_probability)
{
	cr_assert_eq(ld_heap_init(), 0);
	const double mean = 64;
	uint32_t a = site(0x401000, 0x402000), b = site(0x401000, 0x403000);
	double want_count = 0, want_bytes = 0;
	for (uintptr_t i = 0; i < 1000; i++)
		cr_assert(ld_heap_add(0x7f0000000000 + 16 * i, 32, a));
	for (uintptr_t i = 0; i < 500; i++) {
		size_t size = 1 + i * 7;
		cr_assert(ld_heap_add(0x7f1000000000 + 4096 * i, size, b));
		want_count += weight(size, mean);
		want_bytes += weight(size, mean) * (double)size;
	}
	uint32_t n;
	struct ld_site_live *acc = collect(mean, &n);
	cr_assert_eq(acc[a].count, 1000, "the blocks seen stay exact");
	assert_close(acc[a].est_count, 1000 * weight(32, mean), "site a, blocks");
	assert_close(acc[a].est_bytes, 1000 * 32 * weight(32, mean), "site a, bytes");
	assert_close(acc[b].est_count, want_count, "site b, blocks");
	assert_close(acc[b].est_bytes, want_bytes, "site b, bytes");
	free(acc);
}
