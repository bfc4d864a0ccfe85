/*
 * Unit tests for core/tidy.c: when a diff of two snapshots counts as the
 * empty at-exit snapshots of a program that freed its memory.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "diff.h"
#include "snapshot.h"
#include "tidy.h"

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

TestSuite(tidy, .init = setup, .fini = teardown);

static void at(struct ld_snapshot *s, const char *trigger, uint64_t heap_bytes, uint64_t objects)
{
	cr_assert_eq(ld_meta_set(&s->meta.trigger, trigger), 0);
	s->totals.heap_bytes = heap_bytes;
	s->totals.heap_blocks = heap_bytes ? 1 : 0;
	s->totals.objects = objects;
}

static bool freed(void)
{
	struct ld_diff *d = NULL;
	cr_assert_eq(ld_diff_create(before, after, NULL, &d), 0);
	bool r = ld_diff_freed_at_exit(d);
	ld_diff_destroy(d);
	return r;
}

Test(tidy, empty_and_nearly_empty_exit_snapshots)
{
	at(before, "exit", 0, 0);
	at(after, "exit", 0, 0);
	cr_assert(freed());
	/* The C library's buffers, up to the limit itself. */
	at(before, "exit", 4096, 0);
	at(after, "exit", LD_TIDY_MAX_BYTES, 0);
	cr_assert(freed());
}

Test(tidy, one_byte_over_the_limit_is_not_empty)
{
	at(before, "exit", 0, 0);
	at(after, "exit", LD_TIDY_MAX_BYTES + 1, 0);
	cr_assert_not(freed());
	at(before, "exit", LD_TIDY_MAX_BYTES + 1, 0);
	at(after, "exit", 0, 0);
	cr_assert_not(freed());
}

Test(tidy, only_at_exit)
{
	at(before, "signal", 0, 0);
	at(after, "exit", 0, 0);
	cr_assert_not(freed());
	at(before, "exit", 0, 0);
	at(after, "api", 0, 0);
	cr_assert_not(freed());
	/* A snapshot that does not say how it was taken. */
	ld_snapshot_destroy(before);
	before = ld_snapshot_create();
	cr_assert_not_null(before);
	at(after, "exit", 0, 0);
	cr_assert_not(freed());
}

Test(tidy, an_object_census_is_not_empty)
{
	at(before, "exit", 0, 0);
	at(after, "exit", 0, 1);
	cr_assert_not(freed());
}

Test(tidy, note_fits_the_terminal)
{
	cr_assert_gt(ld_tidy_note_lines, 0);
	for (size_t i = 0; i < ld_tidy_note_lines; i++)
		cr_assert_leq(strlen(ld_tidy_note[i]), 78, "line %zu", i);
}
