/*
 * Unit tests for core/blind.c, the rule that says when native memory grew
 * more than the traced heap explains, and for totals.malloc_bytes as the
 * .snap readers take it.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "blind.h"
#include "error.h"
#include "snap.h"
#include "snapshot.h"

#define MIB (UINT64_C(1) << 20)

static struct ld_snapshot *before, *after;

static void setup(void)
{
	before = ld_snapshot_create();
	after = ld_snapshot_create();
	cr_assert_not_null(before);
	cr_assert_not_null(after);
}

static void teardown(void)
{
	ld_snapshot_destroy(before);
	ld_snapshot_destroy(after);
}

TestSuite(blind, .init = setup, .fini = teardown);

static void totals(struct ld_snapshot *s, uint64_t heap, uint64_t malloc_bytes)
{
	s->totals.heap_bytes = heap;
	s->totals.malloc_bytes = malloc_bytes;
	s->totals.has_malloc = true;
}

Test(blind, native_growth_with_a_flat_heap_is_reported)
{
	/* The C extension of tests/e2e/test_blind.py: 2,000 more 1 KiB copies. */
	totals(before, 4110, 3385952);
	totals(after, 4195, 5490432);
	struct ld_blind b;
	cr_assert(ld_blind_check(before, after, &b));
	cr_assert_eq(b.malloc_delta, 2104480);
	cr_assert_eq(b.heap_delta, 85);
	cr_assert_eq(b.unexplained, 2104480 - 85);
}

Test(blind, below_one_mib_is_noise)
{
	totals(before, 0, 10 * MIB);
	totals(after, 0, 11 * MIB - 1);
	struct ld_blind b;
	cr_assert_not(ld_blind_check(before, after, &b));
	cr_assert_eq(b.unexplained, MIB - 1);
	totals(after, 0, 11 * MIB);
	cr_assert(ld_blind_check(before, after, NULL));
}

Test(blind, growth_the_traced_heap_explains_is_not_reported)
{
	/* Large Python blocks come from malloc: both totals grow alike. */
	totals(before, 2 * MIB, 4 * MIB);
	totals(after, 12 * MIB, 14 * MIB + 512 * 1024);
	cr_assert_not(ld_blind_check(before, after, NULL));
	/* Unexplained growth smaller than the traced growth stays quiet too. */
	totals(after, 12 * MIB, 4 * MIB + 10 * MIB + 9 * MIB);
	cr_assert_not(ld_blind_check(before, after, NULL));
	/* As large as the traced growth (malloc grew twice as much): said. */
	totals(after, 12 * MIB, 4 * MIB + 20 * MIB);
	cr_assert(ld_blind_check(before, after, NULL));
}

Test(blind, a_shrinking_heap_explains_nothing)
{
	/* Small objects freed from pymalloc's arenas leave malloc's total alone. */
	totals(before, 20 * MIB, 8 * MIB);
	totals(after, 2 * MIB, 8 * MIB);
	struct ld_blind b;
	cr_assert_not(ld_blind_check(before, after, &b));
	cr_assert_eq(b.unexplained, 0);
	totals(after, 2 * MIB, 10 * MIB);
	cr_assert(ld_blind_check(before, after, &b));
	cr_assert_eq(b.unexplained, 2 * MIB);
	cr_assert_eq(b.heap_delta, -(int64_t)(18 * MIB));
}

Test(blind, shrinking_malloc_total_is_never_reported)
{
	totals(before, 0, 50 * MIB);
	totals(after, 0, 10 * MIB);
	struct ld_blind b;
	cr_assert_not(ld_blind_check(before, after, &b));
	cr_assert_eq(b.unexplained, 0);
	cr_assert_eq(b.malloc_delta, -(int64_t)(40 * MIB));
}

Test(blind, snapshots_without_the_total_say_nothing)
{
	/* Older files and native snapshots carry no malloc total. */
	before->totals.malloc_bytes = 0;
	totals(after, 0, 100 * MIB);
	struct ld_blind b = { .unexplained = 7 };
	cr_assert_not(ld_blind_check(before, after, &b));
	cr_assert_eq(b.unexplained, 7, "out is left alone when the rule cannot apply");
	cr_assert_not(ld_blind_check(after, before, NULL));
	cr_assert_not(ld_blind_check(NULL, after, NULL));
}

Test(blind, advice_fits_in_78_columns)
{
	cr_assert_gt(ld_blind_advice_lines, 0);
	for (size_t i = 0; i < ld_blind_advice_lines; i++)
		cr_assert_leq(strlen(ld_blind_advice[i]), 78, "line %zu", i);
}

#define HDR "{\"format\":\"leakdiff-snapshot\",\"version\":1"

/* Both readers take the text, and read it alike. */
static void read_both(const char *json, struct ld_snapshot **tree, struct ld_snapshot **scan)
{
	struct ld_error err;
	ld_error_clear(&err);
	cr_assert_eq(ld_snap_parse_with(LD_SNAP_READ_TREE, json, strlen(json), tree, &err), 0, "%s", err.msg);
	cr_assert_eq(ld_snap_parse_with(LD_SNAP_READ_SCAN, json, strlen(json), scan, &err), 0, "%s", err.msg);
}

Test(blind_snap, malloc_bytes_is_read_by_both_readers_and_written_back)
{
	struct ld_snapshot *t = NULL, *s = NULL;
	read_both(HDR ",\"totals\":{\"heap_bytes\":96,\"heap_blocks\":3,\"objects\":0,"
		      "\"object_bytes\":0,\"malloc_bytes\":5490432}}", &t, &s);
	cr_assert(t->totals.has_malloc);
	cr_assert(s->totals.has_malloc);
	cr_assert_eq(t->totals.malloc_bytes, 5490432);
	cr_assert_eq(s->totals.malloc_bytes, 5490432);
	char *json;
	size_t len;
	cr_assert_eq(ld_snap_serialize(t, &json, &len), 0);
	cr_assert_not_null(strstr(json, "\"malloc_bytes\":5490432}"));
	free(json);
	ld_snapshot_destroy(t);
	ld_snapshot_destroy(s);
}

Test(blind_snap, absent_or_null_malloc_bytes_is_unknown_and_not_written)
{
	const char *texts[] = {
		HDR ",\"totals\":{\"heap_bytes\":96,\"heap_blocks\":3}}",
		HDR ",\"totals\":{\"heap_bytes\":96,\"malloc_bytes\":null}}",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct ld_snapshot *t = NULL, *s = NULL;
		read_both(texts[i], &t, &s);
		cr_assert_not(t->totals.has_malloc);
		cr_assert_not(s->totals.has_malloc);
		char *json;
		size_t len;
		cr_assert_eq(ld_snap_serialize(t, &json, &len), 0);
		cr_assert_null(strstr(json, "malloc_bytes"));
		free(json);
		ld_snapshot_destroy(t);
		ld_snapshot_destroy(s);
	}
}

Test(blind_snap, negative_malloc_bytes_is_rejected)
{
	struct ld_snapshot *s = NULL;
	struct ld_error err;
	ld_error_clear(&err);
	const char *json = HDR ",\"totals\":{\"heap_bytes\":1,\"malloc_bytes\":-1}}";
	cr_assert_lt(ld_snap_parse(json, strlen(json), &s, &err), 0);
	cr_assert_null(s);
	cr_assert_not_null(strstr(err.msg, "totals.malloc_bytes"), "%s", err.msg);
}
