/* Unit tests for core/diff.c on snapshots built in memory. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "diff.h"
#include "helpers.h"
#include "report_common.h"
#include "snapshot.h"
#include "suppress.h"
#include "verdict.h"

static struct ld_snapshot *before, *after;
static struct ld_diff *diff;

static void setup(void)
{
	before = ld_snapshot_create();
	after = ld_snapshot_create();
	cr_assert_not_null(before);
	cr_assert_not_null(after);
	diff = NULL;
}

static void teardown(void)
{
	th_fail_after(-1);
	ld_diff_destroy(diff);
	ld_snapshot_destroy(before);
	ld_snapshot_destroy(after);
}

TestSuite(diff, .init = setup, .fini = teardown);

/* ---- building snapshots ---- */

static uint32_t str(struct ld_snapshot *s, const char *v)
{
	uint32_t idx;
	cr_assert_eq(ld_strtab_intern(&s->strings, v, strlen(v), &idx), 0);
	return idx;
}

static uint32_t frame_text(struct ld_snapshot *s, const char *file, const char *func, int line,
			   const char *text)
{
	struct ld_frame f = { .file = str(s, file), .function = str(s, func), .line = line,
			      .function_line = -1, .text = text ? str(s, text) : LD_NOSTR };
	uint32_t idx;
	cr_assert_eq(ld_snapshot_add_frame(s, &f, &idx), 0);
	return idx;
}

/* A frame with the first line of its function (-1: unknown) and its text. */
static uint32_t frame_full(struct ld_snapshot *s, const char *file, const char *func, int line, int fline,
			   const char *text)
{
	struct ld_frame f = { .file = str(s, file), .function = str(s, func), .line = line,
			      .function_line = fline, .text = text ? str(s, text) : LD_NOSTR };
	uint32_t idx;
	cr_assert_eq(ld_snapshot_add_frame(s, &f, &idx), 0);
	return idx;
}

static uint32_t frame(struct ld_snapshot *s, const char *file, const char *func, int line)
{
	return frame_text(s, file, func, line, NULL);
}

#define SITE(s, count, bytes, ...)                                                              \
	do {                                                                                    \
		const uint32_t fr_[] = { __VA_ARGS__ };                                         \
		cr_assert_eq(ld_snapshot_add_site((s), (count), (bytes), fr_,                   \
						  (uint32_t)(sizeof(fr_) / sizeof(fr_[0]))), 0); \
	} while (0)

#define TYPE_SITE(s, type, count, bytes, ...)                                                  \
	do {                                                                                   \
		const uint32_t fr_[] = { __VA_ARGS__ };                                        \
		cr_assert_eq(ld_snapshot_add_type_site((s), (type), (count), (bytes), fr_,     \
						       (uint32_t)(sizeof(fr_) / sizeof(fr_[0]))), \
			     0);                                                               \
	} while (0)

static uint32_t type(struct ld_snapshot *s, const char *name, uint64_t count, uint64_t bytes)
{
	cr_assert_eq(ld_snapshot_add_type(s, str(s, name), count, bytes), 0);
	return (uint32_t)(s->ntypes - 1);
}

static void hint(struct ld_snapshot *s, enum ld_hint_kind kind, const char *name, const char *tname,
		 uint64_t value, int64_t maxsize, const char *const *path, uint32_t path_len)
{
	struct ld_hint h = { .kind = kind, .name = name ? str(s, name) : LD_NOSTR,
			     .type = tname ? str(s, tname) : LD_NOSTR, .value = value, .maxsize = maxsize };
	uint32_t p[16];
	cr_assert_leq(path_len, 16);
	for (uint32_t i = 0; i < path_len; i++)
		p[i] = str(s, path[i]);
	cr_assert_eq(ld_snapshot_add_hint(s, &h, p, path_len), 0);
}

static void run(const struct ld_diff_opts *opts)
{
	int r = ld_diff_create(before, after, opts, &diff);
	cr_assert_eq(r, 0, "ld_diff_create returned %d", r);
	cr_assert_not_null(diff);
	cr_assert_eq(diff->before, before);
	cr_assert_eq(diff->after, after);
}

/* ---- checking rows ---- */

static void check_row(const struct ld_diff_row *r, uint64_t cb, uint64_t ca, uint64_t bb, uint64_t ba,
		      const char *what)
{
	cr_assert_eq(r->count_before, cb, "%s: count_before %llu, want %llu", what,
		     (unsigned long long)r->count_before, (unsigned long long)cb);
	cr_assert_eq(r->count_after, ca, "%s: count_after %llu, want %llu", what,
		     (unsigned long long)r->count_after, (unsigned long long)ca);
	cr_assert_eq(r->bytes_before, bb, "%s: bytes_before %llu, want %llu", what,
		     (unsigned long long)r->bytes_before, (unsigned long long)bb);
	cr_assert_eq(r->bytes_after, ba, "%s: bytes_after %llu, want %llu", what,
		     (unsigned long long)r->bytes_after, (unsigned long long)ba);
}

static const struct ld_diff_type *find_type(const char *name)
{
	for (size_t i = 0; i < diff->ntypes; i++)
		if (strcmp(diff->types[i].name, name) == 0)
			return &diff->types[i];
	cr_assert_fail("type %s not in the diff", name);
	return NULL;
}

/* Asserts a traceback's frames one by one, as "file:line:function" strings. */
static void check_stack(const struct ld_diff_stack *st, uint32_t depth, ...)
{
	cr_assert_eq(st->depth, depth, "depth %u, want %u", st->depth, depth);
	va_list ap;
	va_start(ap, depth);
	for (uint32_t i = 0; i < depth; i++) {
		const char *want = va_arg(ap, const char *);
		const struct ld_frame *f = ld_diff_frame(st, i);
		char got[256];
		snprintf(got, sizeof(got), "%s:%d:%s", ld_snapshot_str(st->snap, f->file), f->line,
			 ld_snapshot_str(st->snap, f->function));
		cr_assert_str_eq(got, want, "frame %u", i);
	}
	va_end(ap);
}

/* ---------------------------------------------------------------- tests */

Test(diff, two_empty_snapshots)
{
	run(NULL);
	cr_assert_eq(diff->ntypes, 0);
	cr_assert_eq(diff->nsites, 0);
	cr_assert_eq(diff->ntype_sites, 0);
	cr_assert_eq(diff->nhints, 0);
	check_row(&diff->heap, 0, 0, 0, 0, "heap");
	check_row(&diff->objects, 0, 0, 0, 0, "objects");
	cr_assert_not(ld_diff_row_changed(&diff->heap));
}

Test(diff, totals_rows_come_from_totals)
{
	before->totals = (struct ld_totals){ .heap_bytes = 1000, .heap_blocks = 10, .objects = 50,
					     .object_bytes = 5000 };
	after->totals = (struct ld_totals){ .heap_bytes = 700, .heap_blocks = 30, .objects = 60,
					    .object_bytes = 9000 };
	/* A table that disagrees with the totals does not change them. */
	type(after, "dict", 1, 1);
	run(NULL);
	check_row(&diff->heap, 10, 30, 1000, 700, "heap");
	check_row(&diff->objects, 50, 60, 5000, 9000, "objects");
	cr_assert_eq(ld_diff_bytes_delta(&diff->heap), -300);
	cr_assert_eq(ld_diff_count_delta(&diff->heap), 20);
	cr_assert_eq(ld_diff_bytes_delta(&diff->objects), 4000);
}

Test(diff, type_states_and_deltas)
{
	type(before, "A", 10, 100);
	type(before, "B", 5, 50);
	type(after, "A", 12, 150);
	type(after, "C", 1, 10);
	run(NULL);
	cr_assert_eq(diff->ntypes, 3);
	cr_assert_str_eq(diff->types[0].name, "A");
	cr_assert_eq(diff->types[0].state, LD_DIFF_KEPT);
	check_row(&diff->types[0].row, 10, 12, 100, 150, "A");
	cr_assert_eq(ld_diff_bytes_delta(&diff->types[0].row), 50);
	cr_assert_eq(ld_diff_count_delta(&diff->types[0].row), 2);
	cr_assert_str_eq(diff->types[1].name, "C");
	cr_assert_eq(diff->types[1].state, LD_DIFF_NEW);
	check_row(&diff->types[1].row, 0, 1, 0, 10, "C");
	cr_assert_str_eq(diff->types[2].name, "B");
	cr_assert_eq(diff->types[2].state, LD_DIFF_GONE);
	check_row(&diff->types[2].row, 5, 0, 50, 0, "B");
	cr_assert_eq(ld_diff_bytes_delta(&diff->types[2].row), -50);
	cr_assert_eq(ld_diff_count_delta(&diff->types[2].row), -5);
}

Test(diff, unchanged_type_is_kept_with_zero_delta)
{
	type(before, "same", 3, 30);
	type(after, "same", 3, 30);
	run(NULL);
	cr_assert_eq(diff->ntypes, 1);
	cr_assert_eq(diff->types[0].state, LD_DIFF_KEPT);
	cr_assert_not(ld_diff_row_changed(&diff->types[0].row));
}

Test(diff, types_sorted_by_bytes_then_count_then_name)
{
	/* Inserted out of order on purpose. */
	type(before, "v", 1, 50);
	type(before, "w", 1, 100);
	type(before, "u", 4, 40);
	type(after, "x", 1, 100);  /* +100 bytes, +1 */
	type(after, "z", 5, 100);  /* +100 bytes, +5 */
	type(after, "u", 4, 40);   /* 0 */
	type(after, "w", 1, 300);  /* +200 bytes, +0 */
	type(after, "y", 5, 100);  /* +100 bytes, +5 */
	run(NULL);
	const char *want[] = { "w", "y", "z", "x", "u", "v" };
	cr_assert_eq(diff->ntypes, 6);
	for (size_t i = 0; i < 6; i++)
		cr_assert_str_eq(diff->types[i].name, want[i], "row %zu", i);
}

Test(diff, order_does_not_depend_on_table_order)
{
	static const char *const names[] = { "m", "c", "k", "a", "q", "b", "e" };
	for (size_t i = 0; i < 7; i++)
		type(after, names[i], 1, 64);
	run(NULL);
	struct ld_snapshot *rev = ld_snapshot_create();
	cr_assert_not_null(rev);
	for (size_t i = 7; i-- > 0;)
		type(rev, names[i], 1, 64);
	struct ld_diff *d2;
	cr_assert_eq(ld_diff_create(before, rev, NULL, &d2), 0);
	const char *want[] = { "a", "b", "c", "e", "k", "m", "q" };
	cr_assert_eq(diff->ntypes, 7);
	cr_assert_eq(d2->ntypes, 7);
	for (size_t i = 0; i < 7; i++) {
		cr_assert_str_eq(diff->types[i].name, want[i]);
		cr_assert_str_eq(d2->types[i].name, want[i]);
	}
	ld_diff_destroy(d2);
	ld_snapshot_destroy(rev);
}

Test(diff, types_matched_by_name_across_string_tables)
{
	str(before, "padding");
	str(before, "more padding");
	type(before, "dict", 2, 200);
	type(before, "app.Session", 1, 56);
	type(after, "app.Session", 3, 168);
	type(after, "dict", 2, 232);
	/* Indices of the names differ between the two tables. */
	cr_assert_neq(before->types[1].name, after->types[0].name);
	run(NULL);
	cr_assert_eq(diff->ntypes, 2);
	const struct ld_diff_type *s = find_type("app.Session"), *d = find_type("dict");
	cr_assert_eq(s->state, LD_DIFF_KEPT);
	check_row(&s->row, 1, 3, 56, 168, "app.Session");
	cr_assert_eq(d->state, LD_DIFF_KEPT);
	check_row(&d->row, 2, 2, 200, 232, "dict");
}

Test(diff, duplicate_types_in_one_snapshot_add_up)
{
	type(after, "dict", 1, 10);
	type(after, "dict", 2, 20);
	type(before, "dict", 4, 40);
	type(before, "dict", 8, 80);
	run(NULL);
	cr_assert_eq(diff->ntypes, 1);
	check_row(&diff->types[0].row, 12, 3, 120, 30, "dict");
	cr_assert_eq(diff->types[0].state, LD_DIFF_KEPT);
}

Test(diff, sites_matched_by_frame_content)
{
	/* before: strings and frames in one order ... */
	str(before, "unused");
	uint32_t b_db = frame_text(before, "db.py", "query", 10, "cursor.execute(q)");
	uint32_t b_app = frame(before, "app.py", "login", 42);
	SITE(before, 3, 300, b_app, b_db);
	/* ... after: in another, with an unrelated frame first. Source text
	 * known on one side only does not stop an exact match. */
	frame(after, "other.py", "f", 1);
	uint32_t a_app = frame_text(after, "app.py", "login", 42, "s = Session()");
	uint32_t a_db = frame(after, "db.py", "query", 10);
	SITE(after, 5, 500, a_app, a_db);
	cr_assert_neq(b_db, a_db, "the test needs different frame indices");
	run(NULL);
	cr_assert_eq(diff->nsites, 1);
	const struct ld_diff_site *r = &diff->sites[0];
	cr_assert_eq(r->state, LD_DIFF_KEPT);
	check_row(&r->row, 3, 5, 300, 500, "site");
	check_stack(&r->stack, 2, "app.py:42:login", "db.py:10:query");
}

Test(diff, exact_matching_keeps_sites_differing_in_any_frame_field_apart)
{
	uint32_t b0 = frame(before, "app.py", "login", 42);
	uint32_t b1 = frame(before, "db.py", "query", 10);
	SITE(before, 1, 100, b0, b1);
	uint32_t line = frame(after, "app.py", "login", 43);
	uint32_t func = frame(after, "app.py", "logout", 42);
	uint32_t file = frame(after, "api.py", "login", 42);
	uint32_t same = frame(after, "app.py", "login", 42);
	uint32_t db = frame(after, "db.py", "query", 10);
	uint32_t db2 = frame(after, "db.py", "query", 11);
	SITE(after, 1, 1, line, db);
	SITE(after, 1, 2, func, db);
	SITE(after, 1, 4, file, db);
	SITE(after, 1, 8, same, db2); /* differs in an outer frame */
	SITE(after, 1, 16, same);     /* a prefix of the before traceback */
	struct ld_diff_opts opts = { .match = LD_MATCH_ONLY_EXACT };
	run(&opts);
	cr_assert_eq(diff->nsites, 6);
	size_t gone = 0, fresh = 0;
	for (size_t i = 0; i < diff->nsites; i++) {
		if (diff->sites[i].state == LD_DIFF_GONE) {
			gone++;
			check_row(&diff->sites[i].row, 1, 0, 100, 0, "gone site");
			check_stack(&diff->sites[i].stack, 2, "app.py:42:login", "db.py:10:query");
		} else {
			cr_assert_eq(diff->sites[i].state, LD_DIFF_NEW);
			fresh++;
		}
	}
	cr_assert_eq(gone, 1);
	cr_assert_eq(fresh, 5);
	/* Sorted by growth: 16, 8, 4, 2, 1, then the gone one. */
	const uint64_t want[] = { 16, 8, 4, 2, 1 };
	for (size_t i = 0; i < 5; i++)
		cr_assert_eq(diff->sites[i].row.bytes_after, want[i], "row %zu", i);
	cr_assert_eq(diff->sites[5].state, LD_DIFF_GONE);
}

Test(diff, duplicate_sites_in_one_snapshot_add_up)
{
	uint32_t a0 = frame(after, "app.py", "login", 42);
	uint32_t a1 = frame(after, "srv.py", "handle", 7);
	uint32_t a0_dup = frame(after, "app.py", "login", 42); /* a second, equal frame */
	SITE(after, 1, 10, a0, a1);
	SITE(after, 2, 20, a0_dup, a1);
	SITE(after, 4, 40, a0, a1);
	uint32_t b0 = frame(before, "app.py", "login", 42);
	uint32_t b1 = frame(before, "srv.py", "handle", 7);
	SITE(before, 1, 1, b0, b1);
	SITE(before, 1, 1, b0, b1);
	run(NULL);
	cr_assert_eq(diff->nsites, 1);
	cr_assert_eq(diff->sites[0].state, LD_DIFF_KEPT);
	check_row(&diff->sites[0].row, 2, 7, 2, 70, "merged site");
}

Test(diff, duplicate_sites_only_in_one_snapshot_keep_their_state)
{
	uint32_t a0 = frame(after, "a.py", "f", 1);
	SITE(after, 1, 10, a0);
	SITE(after, 1, 10, a0);
	uint32_t b0 = frame(before, "b.py", "g", 2);
	SITE(before, 1, 5, b0);
	SITE(before, 1, 5, b0);
	run(NULL);
	cr_assert_eq(diff->nsites, 2);
	cr_assert_eq(diff->sites[0].state, LD_DIFF_NEW);
	check_row(&diff->sites[0].row, 0, 2, 0, 20, "new");
	cr_assert_eq(diff->sites[1].state, LD_DIFF_GONE);
	check_row(&diff->sites[1].row, 2, 0, 10, 0, "gone");
}

Test(diff, empty_tracebacks_match_each_other)
{
	cr_assert_eq(ld_snapshot_add_site(before, 1, 10, NULL, 0), 0);
	cr_assert_eq(ld_snapshot_add_site(after, 2, 30, NULL, 0), 0);
	uint32_t f = frame(after, "a.py", "f", 1);
	SITE(after, 1, 1, f);
	run(NULL);
	cr_assert_eq(diff->nsites, 2);
	cr_assert_eq(diff->sites[0].state, LD_DIFF_KEPT);
	cr_assert_eq(diff->sites[0].stack.depth, 0);
	check_row(&diff->sites[0].row, 1, 2, 10, 30, "empty traceback");
	cr_assert_eq(diff->sites[1].state, LD_DIFF_NEW);
}

Test(diff, sites_sorted_by_bytes_then_count_then_traceback)
{
	uint32_t b_py = frame(after, "b.py", "f", 1);
	uint32_t a2 = frame(after, "a.py", "f", 2);
	uint32_t a1g = frame(after, "a.py", "g", 1);
	uint32_t a1 = frame(after, "a.py", "f", 1);
	uint32_t z = frame(after, "z.py", "main", 1);
	SITE(after, 1, 10, b_py);
	SITE(after, 1, 10, a2);
	SITE(after, 1, 10, a1g);
	SITE(after, 1, 10, a1, z);
	SITE(after, 1, 10, a1);
	SITE(after, 2, 10, z);  /* same bytes, more blocks */
	SITE(after, 1, 20, b_py, z); /* more bytes */
	run(NULL);
	cr_assert_eq(diff->nsites, 7);
	check_stack(&diff->sites[0].stack, 2, "b.py:1:f", "z.py:1:main");
	check_stack(&diff->sites[1].stack, 1, "z.py:1:main");
	check_stack(&diff->sites[2].stack, 1, "a.py:1:f");
	check_stack(&diff->sites[3].stack, 2, "a.py:1:f", "z.py:1:main");
	check_stack(&diff->sites[4].stack, 1, "a.py:1:g");
	check_stack(&diff->sites[5].stack, 1, "a.py:2:f");
	check_stack(&diff->sites[6].stack, 1, "b.py:1:f");
}

Test(diff, depth_one_merges_sites_sharing_the_innermost_frame)
{
	uint32_t a = frame(after, "alloc.py", "make", 5);
	uint32_t b = frame(after, "x.py", "x", 1);
	uint32_t c = frame(after, "y.py", "y", 2);
	uint32_t d = frame(after, "other.py", "o", 9);
	SITE(after, 1, 100, a, b);
	SITE(after, 2, 200, a, c);
	SITE(after, 4, 400, d, b);
	uint32_t ba = frame(before, "alloc.py", "make", 5);
	uint32_t be = frame(before, "z.py", "z", 3);
	SITE(before, 1, 50, ba, be);

	struct ld_diff_opts opts = { .depth = 1 };
	run(&opts);
	cr_assert_eq(diff->nsites, 2);
	cr_assert_eq(diff->sites[0].state, LD_DIFF_NEW);
	check_row(&diff->sites[0].row, 0, 4, 0, 400, "other.py");
	check_stack(&diff->sites[0].stack, 1, "other.py:9:o");
	cr_assert_eq(diff->sites[1].state, LD_DIFF_KEPT);
	check_row(&diff->sites[1].row, 1, 3, 50, 300, "alloc.py");
	check_stack(&diff->sites[1].stack, 1, "alloc.py:5:make");

	/* Without a depth every traceback stands alone. */
	struct ld_diff *full;
	cr_assert_eq(ld_diff_create(before, after, NULL, &full), 0);
	cr_assert_eq(full->nsites, 4);
	ld_diff_destroy(full);
	/* A depth beyond every traceback changes nothing. */
	opts.depth = 64;
	cr_assert_eq(ld_diff_create(before, after, &opts, &full), 0);
	cr_assert_eq(full->nsites, 4);
	ld_diff_destroy(full);
}

Test(diff, depth_two_keeps_the_two_innermost_frames)
{
	uint32_t a = frame(after, "a.py", "a", 1);
	uint32_t b = frame(after, "b.py", "b", 2);
	uint32_t c = frame(after, "c.py", "c", 3);
	uint32_t d = frame(after, "d.py", "d", 4);
	SITE(after, 1, 10, a, b, c);
	SITE(after, 1, 10, a, b, d);
	SITE(after, 1, 10, a, c, d);
	struct ld_diff_opts opts = { .depth = 2 };
	run(&opts);
	cr_assert_eq(diff->nsites, 2);
	check_row(&diff->sites[0].row, 0, 2, 0, 20, "a<b");
	check_stack(&diff->sites[0].stack, 2, "a.py:1:a", "b.py:2:b");
	check_stack(&diff->sites[1].stack, 2, "a.py:1:a", "c.py:3:c");
}

Test(diff, type_sites_grouped_under_their_type)
{
	/* before: types Session, dict */
	uint32_t bS = type(before, "app.Session", 15, 1500);
	uint32_t bD = type(before, "dict", 1, 100);
	uint32_t bfa = frame(before, "app.py", "login", 42);
	uint32_t bfb = frame(before, "cache.py", "put", 7);
	TYPE_SITE(before, bS, 10, 1000, bfa);
	TYPE_SITE(before, bD, 1, 100, bfa);
	TYPE_SITE(before, bS, 5, 500, bfb);
	/* after: the same and one more type, in another order */
	uint32_t aD = type(after, "dict", 1, 100);
	uint32_t aS = type(after, "app.Session", 31, 3100);
	uint32_t aL = type(after, "list", 2, 200);
	uint32_t afb = frame(after, "cache.py", "put", 7);
	uint32_t afa = frame(after, "app.py", "login", 42);
	uint32_t afc = frame(after, "new.py", "make", 3);
	TYPE_SITE(after, aS, 30, 3000, afa);
	TYPE_SITE(after, aS, 1, 100, afc);
	TYPE_SITE(after, aD, 1, 100, afa);
	TYPE_SITE(after, aL, 2, 200, afb);
	run(NULL);

	cr_assert_eq(diff->ntypes, 3);
	cr_assert_str_eq(diff->types[0].name, "app.Session");
	cr_assert_str_eq(diff->types[1].name, "list");
	cr_assert_str_eq(diff->types[2].name, "dict");
	cr_assert_eq(diff->ntype_sites, 5);

	const struct ld_diff_type *S = &diff->types[0];
	cr_assert_eq(S->nsites, 3);
	cr_assert_eq(S->sites[0].state, LD_DIFF_KEPT);
	check_row(&S->sites[0].row, 10, 30, 1000, 3000, "Session@app.py");
	check_stack(&S->sites[0].stack, 1, "app.py:42:login");
	cr_assert_eq(S->sites[1].state, LD_DIFF_NEW);
	check_row(&S->sites[1].row, 0, 1, 0, 100, "Session@new.py");
	check_stack(&S->sites[1].stack, 1, "new.py:3:make");
	cr_assert_eq(S->sites[2].state, LD_DIFF_GONE);
	check_row(&S->sites[2].row, 5, 0, 500, 0, "Session@cache.py");
	check_stack(&S->sites[2].stack, 1, "cache.py:7:put");

	const struct ld_diff_type *L = &diff->types[1];
	cr_assert_eq(L->state, LD_DIFF_NEW);
	cr_assert_eq(L->nsites, 1);
	cr_assert_eq(L->sites[0].state, LD_DIFF_NEW);
	check_row(&L->sites[0].row, 0, 2, 0, 200, "list@cache.py");

	/* The same traceback under another type is a row of its own. */
	const struct ld_diff_type *D = &diff->types[2];
	cr_assert_eq(D->nsites, 1);
	cr_assert_eq(D->sites[0].state, LD_DIFF_KEPT);
	check_row(&D->sites[0].row, 1, 1, 100, 100, "dict@app.py");
	check_stack(&D->sites[0].stack, 1, "app.py:42:login");

	/* Every group lies inside the shared storage, without overlap. */
	size_t total = 0;
	for (size_t i = 0; i < diff->ntypes; i++) {
		const struct ld_diff_type *t = &diff->types[i];
		total += t->nsites;
		if (!t->nsites)
			continue;
		cr_assert_geq(t->sites, diff->type_sites);
		cr_assert_leq(t->sites + t->nsites, diff->type_sites + diff->ntype_sites);
	}
	cr_assert_eq(total, diff->ntype_sites);
}

Test(diff, type_without_type_sites_has_none)
{
	type(before, "int", 10, 280);
	type(after, "int", 20, 560);
	run(NULL);
	cr_assert_eq(diff->ntypes, 1);
	cr_assert_eq(diff->types[0].nsites, 0);
	cr_assert_eq(diff->ntype_sites, 0);
}

Test(diff, type_sites_follow_depth)
{
	uint32_t T = type(after, "T", 3, 30);
	uint32_t a = frame(after, "a.py", "a", 1);
	uint32_t b = frame(after, "b.py", "b", 2);
	uint32_t c = frame(after, "c.py", "c", 3);
	TYPE_SITE(after, T, 1, 10, a, b);
	TYPE_SITE(after, T, 2, 20, a, c);
	struct ld_diff_opts opts = { .depth = 1 };
	run(&opts);
	cr_assert_eq(diff->types[0].nsites, 1);
	check_row(&diff->types[0].sites[0].row, 0, 3, 0, 30, "T@a");
}

Test(diff, hints_matched_by_kind_and_name)
{
	static const char *const bpath[] = { "app.registry", "[0]" };
	static const char *const apath[] = { "app.cache", "['k']", ".session" };
	hint(before, LD_HINT_CONTAINER, "app.registry", "list", 10, -1, NULL, 0);
	hint(before, LD_HINT_CONTAINER, "app.old", "dict", 4, -1, NULL, 0);
	hint(before, LD_HINT_GARBAGE, NULL, "app.Node", 2, -1, NULL, 0);
	hint(before, LD_HINT_CYCLES, NULL, NULL, 7, -1, NULL, 0);
	hint(before, LD_HINT_PATH, NULL, "app.Session", 0, -1, bpath, 2);

	hint(after, LD_HINT_LRU_CACHE, "app.registry", NULL, 5, -1, NULL, 0);
	hint(after, LD_HINT_PATH, NULL, "app.Session", 0, -1, apath, 3);
	hint(after, LD_HINT_CYCLES, NULL, NULL, 9, -1, NULL, 0);
	hint(after, LD_HINT_GARBAGE, NULL, "app.Node", 5, -1, NULL, 0);
	hint(after, LD_HINT_LRU_CACHE, "app.cached", NULL, 100, 128, NULL, 0);
	hint(after, LD_HINT_CONTAINER, "app.registry", "list", 1000, -1, NULL, 0);
	run(NULL);

	cr_assert_eq(diff->nhints, 7);
	const struct ld_diff_hint *h = diff->hints;
	/* Sorted by kind, then growth, then name. */
	cr_assert_eq(h[0].kind, LD_HINT_CONTAINER);
	cr_assert_str_eq(h[0].name, "app.registry");
	cr_assert_str_eq(h[0].type, "list");
	cr_assert_eq(h[0].state, LD_DIFF_KEPT);
	cr_assert_eq(h[0].before, 10);
	cr_assert_eq(h[0].after, 1000);

	cr_assert_eq(h[1].kind, LD_HINT_CONTAINER);
	cr_assert_str_eq(h[1].name, "app.old");
	cr_assert_eq(h[1].state, LD_DIFF_GONE);
	cr_assert_eq(h[1].before, 4);
	cr_assert_eq(h[1].after, 0);

	/* Same name as the container, another kind: not matched with it. */
	cr_assert_eq(h[2].kind, LD_HINT_LRU_CACHE);
	cr_assert_str_eq(h[2].name, "app.cached");
	cr_assert_eq(h[2].state, LD_DIFF_NEW);
	cr_assert_eq(h[2].before, 0);
	cr_assert_eq(h[2].after, 100);
	cr_assert_eq(h[2].maxsize, 128);
	cr_assert_eq(h[3].kind, LD_HINT_LRU_CACHE);
	cr_assert_str_eq(h[3].name, "app.registry");
	cr_assert_eq(h[3].state, LD_DIFF_NEW);
	cr_assert_eq(h[3].after, 5);
	cr_assert_eq(h[3].maxsize, -1);

	cr_assert_eq(h[4].kind, LD_HINT_GARBAGE);
	cr_assert_str_eq(h[4].type, "app.Node");
	cr_assert_str_eq(h[4].name, "");
	cr_assert_eq(h[4].state, LD_DIFF_KEPT);
	cr_assert_eq(h[4].before, 2);
	cr_assert_eq(h[4].after, 5);

	cr_assert_eq(h[5].kind, LD_HINT_CYCLES);
	cr_assert_eq(h[5].state, LD_DIFF_KEPT);
	cr_assert_eq(h[5].before, 7);
	cr_assert_eq(h[5].after, 9);

	/* Path hints match by type; the path shown is the later one. */
	cr_assert_eq(h[6].kind, LD_HINT_PATH);
	cr_assert_str_eq(h[6].type, "app.Session");
	cr_assert_eq(h[6].state, LD_DIFF_KEPT);
	cr_assert_eq(h[6].path_snap, after);
	cr_assert_eq(h[6].path_len, 3);
	for (uint32_t i = 0; i < 3; i++)
		cr_assert_str_eq(ld_snapshot_str(h[6].path_snap, h[6].path[i]), apath[i]);
}

Test(diff, gone_path_hint_keeps_its_own_path)
{
	static const char *const bpath[] = { "mod.x", "[3]" };
	hint(before, LD_HINT_PATH, NULL, "app.Leak", 0, -1, bpath, 2);
	run(NULL);
	cr_assert_eq(diff->nhints, 1);
	cr_assert_eq(diff->hints[0].state, LD_DIFF_GONE);
	cr_assert_eq(diff->hints[0].path_snap, before);
	cr_assert_eq(diff->hints[0].path_len, 2);
	cr_assert_str_eq(ld_snapshot_str(before, diff->hints[0].path[0]), "mod.x");
	cr_assert_str_eq(ld_snapshot_str(before, diff->hints[0].path[1]), "[3]");
}

Test(diff, against_an_empty_snapshot_everything_is_new)
{
	type(after, "dict", 3, 300);
	uint32_t f = frame(after, "a.py", "f", 1);
	SITE(after, 3, 300, f);
	TYPE_SITE(after, 0, 3, 300, f);
	hint(after, LD_HINT_CONTAINER, "a.reg", "list", 3, -1, NULL, 0);
	run(NULL);
	cr_assert_eq(diff->ntypes, 1);
	cr_assert_eq(diff->types[0].state, LD_DIFF_NEW);
	cr_assert_eq(diff->nsites, 1);
	cr_assert_eq(diff->sites[0].state, LD_DIFF_NEW);
	cr_assert_eq(diff->types[0].nsites, 1);
	cr_assert_eq(diff->types[0].sites[0].state, LD_DIFF_NEW);
	cr_assert_eq(diff->nhints, 1);
	cr_assert_eq(diff->hints[0].state, LD_DIFF_NEW);

	/* And the other way round, everything is gone. */
	struct ld_diff *rev;
	cr_assert_eq(ld_diff_create(after, before, NULL, &rev), 0);
	cr_assert_eq(rev->types[0].state, LD_DIFF_GONE);
	check_row(&rev->types[0].row, 3, 0, 300, 0, "reverse type");
	cr_assert_eq(rev->sites[0].state, LD_DIFF_GONE);
	cr_assert_eq(rev->types[0].sites[0].state, LD_DIFF_GONE);
	cr_assert_eq(rev->hints[0].state, LD_DIFF_GONE);
	cr_assert_eq(rev->hints[0].before, 3);
	ld_diff_destroy(rev);
}

Test(diff, same_snapshot_on_both_sides)
{
	type(after, "dict", 3, 300);
	uint32_t f = frame(after, "a.py", "f", 1);
	SITE(after, 3, 300, f);
	struct ld_diff *d;
	cr_assert_eq(ld_diff_create(after, after, NULL, &d), 0);
	cr_assert_eq(d->ntypes, 1);
	cr_assert_eq(d->types[0].state, LD_DIFF_KEPT);
	cr_assert_not(ld_diff_row_changed(&d->types[0].row));
	cr_assert_eq(d->nsites, 1);
	cr_assert_eq(d->sites[0].state, LD_DIFF_KEPT);
	ld_diff_destroy(d);
}

Test(diff, row_helpers_and_state_names)
{
	struct ld_diff_row same = { 100, 100, 3, 3 };
	struct ld_diff_row count_only = { 100, 100, 3, 4 };
	struct ld_diff_row shrink = { 1000, 10, 5, 1 };
	cr_assert_not(ld_diff_row_changed(&same));
	cr_assert(ld_diff_row_changed(&count_only));
	cr_assert_not(ld_diff_row_selected(&same, 0));
	cr_assert(ld_diff_row_selected(&count_only, 0));
	cr_assert_not(ld_diff_row_selected(&count_only, 1));
	cr_assert(ld_diff_row_selected(&shrink, 990), "a shrink counts by magnitude");
	cr_assert_not(ld_diff_row_selected(&shrink, 991));
	cr_assert_eq(ld_diff_bytes_delta(&shrink), -990);
	cr_assert_eq(ld_diff_count_delta(&shrink), -4);
	cr_assert_str_eq(ld_diff_state_name(LD_DIFF_KEPT), "kept");
	cr_assert_str_eq(ld_diff_state_name(LD_DIFF_NEW), "new");
	cr_assert_str_eq(ld_diff_state_name(LD_DIFF_GONE), "gone");
	ld_diff_destroy(NULL);
}

Test(diff, out_of_memory_fails_cleanly)
{
	TH_REQUIRE_WRAP();
	/* A diff with every table and shared tracebacks in type sites. */
	uint32_t bS = type(before, "S", 1, 10);
	uint32_t bf = frame(before, "a.py", "f", 1);
	SITE(before, 1, 10, bf);
	TYPE_SITE(before, bS, 1, 10, bf);
	hint(before, LD_HINT_CONTAINER, "r", "list", 1, -1, NULL, 0);
	for (int i = 0; i < 40; i++) {
		char name[16];
		snprintf(name, sizeof(name), "T%d", i);
		uint32_t t = type(after, name, 1, (uint64_t)i);
		uint32_t f = frame(after, "a.py", "f", i % 5 + 1);
		SITE(after, 1, (uint64_t)i, f);
		TYPE_SITE(after, t, 1, (uint64_t)i, f);
		TYPE_SITE(after, t, 1, 1, 0); /* one traceback shared by all types */
	}
	hint(after, LD_HINT_CONTAINER, "r", "list", 2, -1, NULL, 0);

	static struct ld_diff sentinel;
	long n;
	for (n = 0; n < 10000; n++) {
		struct ld_diff *d = &sentinel; /* must stay untouched on failure */
		th_fail_after(n);
		int r = ld_diff_create(before, after, NULL, &d);
		bool failed = th_fail_off() > n;
		if (r == 0) {
			cr_assert_neq(d, &sentinel);
			cr_assert_eq(d->ntypes, 41);
			ld_diff_destroy(d);
			cr_assert_not(failed, "succeeded although allocation %ld failed", n);
			break;
		}
		cr_assert_eq(r, -ENOMEM, "allocation %ld failing gave %d", n, r);
		cr_assert_eq(d, &sentinel, "*out written on failure");
	}
	cr_assert_gt(n, 3, "the diff should need several allocations");
	cr_assert_lt(n, 10000);
}

/* ================================================================ graded matching */

/* The one site row whose innermost frame is at file:line, or a failure. */
static const struct ld_diff_site *site_at(const char *file, int line)
{
	for (size_t i = 0; i < diff->nsites; i++) {
		const struct ld_diff_stack *st = &diff->sites[i].stack;
		if (st->depth && ld_diff_frame(st, 0)->line == line &&
		    strcmp(ld_snapshot_str(st->snap, ld_diff_frame(st, 0)->file), file) == 0)
			return &diff->sites[i];
	}
	cr_assert_fail("no site at %s:%d", file, line);
	return NULL;
}

Test(diff, exact_pairs_report_the_exact_rung)
{
	SITE(before, 1, 10, frame(before, "a.py", "f", 3));
	SITE(after, 2, 20, frame(after, "a.py", "f", 3));
	run(NULL);
	cr_assert_eq(diff->nsites, 1);
	cr_assert_eq(diff->sites[0].state, LD_DIFF_KEPT);
	cr_assert_eq(diff->sites[0].match, LD_MATCH_EXACT);
}

Test(diff, same_line_number_with_other_source_text_is_not_exact)
{
	/* Lines moved under line 42: its number stayed, its code did not. */
	SITE(before, 1, 100, frame_full(before, "app.py", "login", 42, -1, "cache.clear()"));
	SITE(after, 1, 150, frame_full(after, "app.py", "login", 42, -1, "s = Session(user)"));
	struct ld_diff_opts opts = { .match = LD_MATCH_ONLY_EXACT };
	run(&opts);
	cr_assert_eq(diff->nsites, 2);
	cr_assert_eq(diff->sites[0].state, LD_DIFF_NEW);
	cr_assert_eq(diff->sites[1].state, LD_DIFF_GONE);
	/* Graded matching still pairs them, but only as the same function and file. */
	struct ld_diff *g;
	cr_assert_eq(ld_diff_create(before, after, NULL, &g), 0);
	cr_assert_eq(g->nsites, 1);
	cr_assert_eq(g->sites[0].state, LD_DIFF_KEPT);
	cr_assert_eq(g->sites[0].match, LD_MATCH_FILE);
	ld_diff_destroy(g);
}

Test(diff, graded_line_moved_with_its_function_is_offset)
{
	/* Ten lines were added above the function: same distance from its start. */
	uint32_t b = frame_full(before, "app.py", "login", 42, 40, NULL);
	uint32_t bo = frame(before, "srv.py", "handle", 7);
	SITE(before, 3, 300, b, bo);
	uint32_t a = frame_full(after, "app.py", "login", 52, 50, NULL);
	uint32_t ao = frame(after, "srv.py", "handle", 7);
	SITE(after, 5, 500, a, ao);
	run(NULL);
	cr_assert_eq(diff->nsites, 1);
	const struct ld_diff_site *r = &diff->sites[0];
	cr_assert_eq(r->state, LD_DIFF_KEPT);
	cr_assert_eq(r->match, LD_MATCH_OFFSET);
	check_row(&r->row, 3, 5, 300, 500, "moved");
	/* The row shows where the code is now. */
	check_stack(&r->stack, 2, "app.py:52:login", "srv.py:7:handle");
}

Test(diff, graded_same_source_text_is_offset)
{
	SITE(before, 1, 100, frame_full(before, "app.py", "login", 42, -1, "s = Session(user)"));
	SITE(after, 1, 150, frame_full(after, "app.py", "login", 61, -1, "s = Session(user)"));
	run(NULL);
	cr_assert_eq(diff->nsites, 1);
	cr_assert_eq(diff->sites[0].state, LD_DIFF_KEPT);
	cr_assert_eq(diff->sites[0].match, LD_MATCH_OFFSET);
	check_row(&diff->sites[0].row, 1, 1, 100, 150, "same text");
}

Test(diff, graded_same_function_and_file_is_file)
{
	SITE(before, 1, 100, frame(before, "app.py", "login", 42));
	SITE(after, 1, 150, frame(after, "app.py", "login", 47));
	run(NULL);
	cr_assert_eq(diff->nsites, 1);
	cr_assert_eq(diff->sites[0].state, LD_DIFF_KEPT);
	cr_assert_eq(diff->sites[0].match, LD_MATCH_FILE);
}

Test(diff, graded_function_moved_to_another_file_is_function)
{
	SITE(before, 1, 100, frame(before, "app/views.py", "login", 42));
	SITE(after, 1, 150, frame(after, "app/auth.py", "login", 9));
	run(NULL);
	cr_assert_eq(diff->nsites, 1);
	cr_assert_eq(diff->sites[0].state, LD_DIFF_KEPT);
	cr_assert_eq(diff->sites[0].match, LD_MATCH_FUNCTION);
	check_stack(&diff->sites[0].stack, 1, "app/auth.py:9:login");
}

Test(diff, graded_never_pairs_different_functions)
{
	SITE(before, 1, 100, frame(before, "app.py", "login", 42));
	SITE(after, 1, 150, frame(after, "app.py", "logout", 42));
	run(NULL);
	cr_assert_eq(diff->nsites, 2);
	cr_assert_eq(diff->sites[0].state, LD_DIFF_NEW);
	cr_assert_eq(diff->sites[1].state, LD_DIFF_GONE);
}

Test(diff, graded_never_pairs_tracebacks_of_different_depth)
{
	uint32_t b = frame(before, "app.py", "login", 42);
	SITE(before, 1, 100, b, frame(before, "srv.py", "handle", 1));
	SITE(after, 1, 150, frame(after, "app.py", "login", 43));
	run(NULL);
	cr_assert_eq(diff->nsites, 2);
}

Test(diff, graded_prefers_the_strictest_rung)
{
	/* One new site; one gone site matches it by offset, another only by file. */
	SITE(before, 1, 1000, frame_full(before, "app.py", "login", 45, 40, NULL));
	SITE(before, 1, 10, frame_full(before, "app.py", "login", 42, 40, NULL));
	SITE(after, 1, 50, frame_full(after, "app.py", "login", 52, 50, NULL));
	run(NULL);
	cr_assert_eq(diff->nsites, 2);
	const struct ld_diff_site *kept = site_at("app.py", 52);
	cr_assert_eq(kept->state, LD_DIFF_KEPT);
	cr_assert_eq(kept->match, LD_MATCH_OFFSET);
	check_row(&kept->row, 1, 1, 10, 50, "offset pair");
	const struct ld_diff_site *gone = site_at("app.py", 45);
	cr_assert_eq(gone->state, LD_DIFF_GONE);
}

Test(diff, graded_larger_new_sites_choose_first)
{
	SITE(before, 1, 70, frame(before, "app.py", "login", 42));
	/* Both new sites match the gone one by file; the larger gets it. */
	SITE(after, 1, 10, frame(after, "app.py", "login", 44));
	SITE(after, 1, 100, frame(after, "app.py", "login", 43));
	run(NULL);
	cr_assert_eq(diff->nsites, 2);
	const struct ld_diff_site *big = site_at("app.py", 43), *small = site_at("app.py", 44);
	cr_assert_eq(big->state, LD_DIFF_KEPT);
	check_row(&big->row, 1, 1, 70, 100, "larger");
	cr_assert_eq(small->state, LD_DIFF_NEW);
	check_row(&small->row, 0, 1, 0, 10, "smaller");
}

Test(diff, only_exact_leaves_a_moved_line_as_gone_and_new)
{
	SITE(before, 1, 100, frame_full(before, "app.py", "login", 42, 40, NULL));
	SITE(after, 1, 150, frame_full(after, "app.py", "login", 52, 50, NULL));
	struct ld_diff_opts opts = { .match = LD_MATCH_ONLY_EXACT };
	run(&opts);
	cr_assert_eq(diff->nsites, 2);
	cr_assert_eq(site_at("app.py", 52)->state, LD_DIFF_NEW);
	cr_assert_eq(site_at("app.py", 42)->state, LD_DIFF_GONE);
}

Test(diff, by_function_keys_sites_by_their_functions)
{
	SITE(after, 1, 10, frame(after, "a.py", "make", 1));
	SITE(after, 2, 20, frame(after, "b.py", "make", 2)); /* same function name */
	SITE(after, 4, 40, frame(after, "a.py", "other", 1));
	SITE(before, 8, 80, frame(before, "c.py", "make", 3));
	struct ld_diff_opts opts = { .match = LD_MATCH_BY_FUNCTION };
	run(&opts);
	cr_assert_eq(diff->nsites, 2);
	cr_assert_eq(diff->sites[0].state, LD_DIFF_NEW);
	check_row(&diff->sites[0].row, 0, 4, 0, 40, "other");
	cr_assert_eq(diff->sites[1].state, LD_DIFF_KEPT);
	cr_assert_eq(diff->sites[1].match, LD_MATCH_FUNCTION);
	check_row(&diff->sites[1].row, 8, 3, 80, 30, "make");
}

Test(diff, checkouts_in_different_places_match_exactly)
{
	char *broots[] = { "/home/dev/proj" };
	char *aroots[] = { "/srv/app/", "/usr/lib/python3.11" };
	cr_assert_eq(ld_meta_set_list(&before->meta.roots, &before->meta.nroots, broots, 1), 0);
	cr_assert_eq(ld_meta_set_list(&after->meta.roots, &after->meta.nroots, aroots, 2), 0);
	SITE(before, 1, 100, frame(before, "/home/dev/proj/app/x.py", "f", 3));
	SITE(after, 1, 200, frame(after, "/srv/app/app/x.py", "f", 3));
	run(NULL);
	cr_assert_eq(diff->nsites, 1);
	cr_assert_eq(diff->sites[0].state, LD_DIFF_KEPT);
	cr_assert_eq(diff->sites[0].match, LD_MATCH_EXACT);
}

Test(diff, strip_option_removes_build_directories)
{
	SITE(before, 1, 100, frame(before, "/build/a/src/x.c", "f", 3));
	SITE(after, 1, 200, frame(after, "/build/b/src/x.c", "f", 3));
	static const char *const strip[] = { "/build/a", "/build/b" };
	struct ld_diff_opts opts = { .match = LD_MATCH_ONLY_EXACT, .strip = strip, .nstrip = 2 };
	run(&opts);
	cr_assert_eq(diff->nsites, 1);
	cr_assert_eq(diff->sites[0].state, LD_DIFF_KEPT);

	/* Without it the paths differ, and exact matching keeps them apart. */
	struct ld_diff *d2;
	opts.nstrip = 0;
	cr_assert_eq(ld_diff_create(before, after, &opts, &d2), 0);
	cr_assert_eq(d2->nsites, 2);
	ld_diff_destroy(d2);
}

Test(diff, shared_library_versions_do_not_split_sites)
{
	SITE(before, 1, 100, frame(before, "/usr/lib/libfoo.so.1.2", "foo_alloc", 0));
	SITE(after, 1, 200, frame(after, "/usr/lib/libfoo.so.1.3", "foo_alloc", 0));
	struct ld_diff_opts opts = { .match = LD_MATCH_ONLY_EXACT };
	run(&opts);
	cr_assert_eq(diff->nsites, 1);
	cr_assert_eq(diff->sites[0].state, LD_DIFF_KEPT);
}

Test(diff, type_sites_are_graded_within_their_type)
{
	uint32_t bT = type(before, "app.Session", 1, 100);
	uint32_t bU = type(before, "app.User", 1, 100);
	uint32_t bf = frame_full(before, "app.py", "login", 42, 40, NULL);
	TYPE_SITE(before, bT, 1, 100, bf);
	TYPE_SITE(before, bU, 1, 100, bf);
	uint32_t aT = type(after, "app.Session", 2, 200);
	uint32_t af = frame_full(after, "app.py", "login", 52, 50, NULL);
	TYPE_SITE(after, aT, 2, 200, af);
	run(NULL);
	const struct ld_diff_type *S = find_type("app.Session"), *U = find_type("app.User");
	cr_assert_eq(S->nsites, 1);
	cr_assert_eq(S->sites[0].state, LD_DIFF_KEPT);
	cr_assert_eq(S->sites[0].match, LD_MATCH_OFFSET);
	check_row(&S->sites[0].row, 1, 2, 100, 200, "Session moved");
	/* The User site at the same old line is not taken by Session's. */
	cr_assert_eq(U->nsites, 1);
	cr_assert_eq(U->sites[0].state, LD_DIFF_GONE);
	cr_assert_eq(diff->ntype_sites, 2);
}

Test(diff, match_names)
{
	cr_assert_str_eq(ld_diff_match_name(LD_MATCH_EXACT), "exact");
	cr_assert_str_eq(ld_diff_match_name(LD_MATCH_OFFSET), "offset");
	cr_assert_str_eq(ld_diff_match_name(LD_MATCH_FILE), "file");
	cr_assert_str_eq(ld_diff_match_name(LD_MATCH_FUNCTION), "function");
}

/* Time of the fastest of three diffs of before and after with opts. */
static double time_diff(const struct ld_diff_opts *opts)
{
	double best = 1e9;
	for (int i = 0; i < 3; i++) {
		struct timespec a, b;
		ld_diff_destroy(diff);
		diff = NULL;
		clock_gettime(CLOCK_MONOTONIC, &a);
		int r = ld_diff_create(before, after, opts, &diff);
		clock_gettime(CLOCK_MONOTONIC, &b);
		cr_assert_eq(r, 0);
		double t = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
		best = t < best ? t : best;
	}
	return best;
}

Test(diff, graded_matching_scales_like_exact_matching, .timeout = 60)
{
	/*
	 * `leakdiff show` diffs an empty snapshot against a real one, so every
	 * site is new. Graded matching has nothing to pair then and should
	 * cost about what exact matching does, not time growing with the
	 * square of the number of sites.
	 */
	enum { N = 60000 };
	uint32_t file = str(after, "app.py"), fn = str(after, "handler");
	uint64_t seed = 7;
	for (int i = 0; i < N; i++) {
		struct ld_frame f = { .file = file, .function = fn, .line = i + 1, .function_line = -1,
				      .text = LD_NOSTR };
		uint32_t idx;
		cr_assert_eq(ld_snapshot_add_frame(after, &f, &idx), 0);
		cr_assert_eq(ld_snapshot_add_site(after, 1, 1 + th_rand(&seed) % 100000, &idx, 1), 0);
	}
	struct ld_diff_opts exact = { .match = LD_MATCH_ONLY_EXACT };
	double te = time_diff(&exact), tg = time_diff(NULL);
	cr_assert_lt(tg, 20 * te + 0.05, "graded diff of %d new sites took %.3f s, exact %.3f s", N, tg, te);
}

/* ================================================================ paths */

Test(diff, normal_path_strips_the_longest_root)
{
	char *roots[] = { "/srv", "/srv/app", "/srv/app/vendor/" };
	cr_assert_eq(ld_meta_set_list(&after->meta.roots, &after->meta.nroots, roots, 3), 0);
	char *stdlib[] = { "/usr/lib/python3.11" };
	cr_assert_eq(ld_meta_set_list(&after->meta.stdlib, &after->meta.nstdlib, stdlib, 1), 0);
	char buf[64];
	cr_assert_str_eq(ld_diff_normal_path(after, NULL, "/srv/app/x.py", buf, sizeof(buf)), "x.py");
	cr_assert_str_eq(ld_diff_normal_path(after, NULL, "/srv/app/vendor/lib/y.py", buf, sizeof(buf)),
			 "lib/y.py");
	cr_assert_str_eq(ld_diff_normal_path(after, NULL, "/srv/other/z.py", buf, sizeof(buf)), "other/z.py");
	cr_assert_str_eq(ld_diff_normal_path(after, NULL, "/usr/lib/python3.11/json/decoder.py", buf,
					     sizeof(buf)), "json/decoder.py");
	/* A root must end at a path separator. */
	cr_assert_str_eq(ld_diff_normal_path(after, NULL, "/srv/appx/y.py", buf, sizeof(buf)), "appx/y.py");
	cr_assert_str_eq(ld_diff_normal_path(after, NULL, "/opt/q.py", buf, sizeof(buf)), "/opt/q.py");
	cr_assert_str_eq(ld_diff_normal_path(after, NULL, "relative.py", buf, sizeof(buf)), "relative.py");
}

Test(diff, normal_path_strip_option)
{
	static const char *const strip[] = { "/build/x86_64" };
	struct ld_diff_opts opts = { .strip = strip, .nstrip = 1 };
	char buf[64];
	cr_assert_str_eq(ld_diff_normal_path(after, &opts, "/build/x86_64/src/a.c", buf, sizeof(buf)), "src/a.c");
	cr_assert_str_eq(ld_diff_normal_path(after, NULL, "/build/x86_64/src/a.c", buf, sizeof(buf)),
			 "/build/x86_64/src/a.c");
}

Test(diff, normal_path_drops_shared_library_versions)
{
	char buf[64];
	cr_assert_str_eq(ld_diff_normal_path(after, NULL, "/usr/lib/libssl.so.3", buf, sizeof(buf)),
			 "/usr/lib/libssl.so");
	cr_assert_str_eq(ld_diff_normal_path(after, NULL, "libfoo.so.1.2.3", buf, sizeof(buf)), "libfoo.so");
	cr_assert_str_eq(ld_diff_normal_path(after, NULL, "libfoo.so", buf, sizeof(buf)), "libfoo.so");
	cr_assert_str_eq(ld_diff_normal_path(after, NULL, "libfoo.so.1a", buf, sizeof(buf)), "libfoo.so.1a");
	cr_assert_str_eq(ld_diff_normal_path(after, NULL, "/x/libfoo.so.1/bar.py", buf, sizeof(buf)),
			 "/x/libfoo.so.1/bar.py");
	/* When the short name does not fit, the name is left as it is. */
	char small[4];
	cr_assert_str_eq(ld_diff_normal_path(after, NULL, "libfoo.so.1", small, sizeof(small)), "libfoo.so.1");
}

/* ================================================================ suspect */

Test(diff, suspect_is_the_largest_module_type_whose_count_grew)
{
	type(before, "dict", 10, 1000);
	type(after, "dict", 20, 5000);          /* built-in: never the suspect */
	type(before, "app.Cache", 1, 100);
	type(after, "app.Cache", 1, 900);       /* grew in bytes, not in count */
	type(before, "app.Session", 10, 560);
	type(after, "app.Session", 20, 1120);
	type(after, "app.Small", 1, 8);
	run(NULL);
	const struct ld_diff_type *t = ld_diff_suspect(diff, 0);
	cr_assert_not_null(t);
	cr_assert_str_eq(t->name, "app.Session");
	cr_assert_null(ld_diff_suspect(diff, 561), "below the noise floor");
	cr_assert_not_null(ld_diff_suspect(diff, 560));
}

/* A type row with an origin, as the Python agent writes them. */
static void type_from(struct ld_snapshot *s, const char *name, const char *origin, uint64_t count, uint64_t bytes)
{
	uint32_t t = type(s, name, count, bytes);
	s->types[t].origin = str(s, origin);
}

Test(diff, suspect_is_a_user_type_by_origin)
{
	/* _thread.lock grew most, but it is the interpreter's, whatever its dots say. */
	type_from(before, "_thread.lock", "builtin", 10, 720);
	type_from(after, "_thread.lock", "builtin", 5010, 360720);
	type_from(before, "collections.OrderedDict", "stdlib", 1, 100);
	type_from(after, "collections.OrderedDict", "stdlib", 900, 90000);
	type_from(before, "app.Job", "user", 10, 560);
	type_from(after, "app.Job", "user", 20, 1120);
	run(NULL);
	const struct ld_diff_type *t = ld_diff_suspect(diff, 0);
	cr_assert_not_null(t);
	cr_assert_str_eq(t->name, "app.Job");
	cr_assert_str_eq(t->origin, "user");
}

Test(diff, suspect_by_name_leaves_out_the_runtimes_modules)
{
	/* Snapshots from before origins: the name decides. */
	type(before, "_thread.lock", 10, 720);
	type(after, "_thread.lock", 5010, 360720);
	type(before, "_io.BytesIO", 1, 100);
	type(after, "_io.BytesIO", 900, 90000);
	type(before, "app.Job", 10, 560);
	type(after, "app.Job", 20, 1120);
	run(NULL);
	const struct ld_diff_type *t = ld_diff_suspect(diff, 0);
	cr_assert_not_null(t);
	cr_assert_str_eq(t->name, "app.Job");
	cr_assert_null(t->origin);
}

Test(diff, the_later_snapshots_origin_counts)
{
	/* An old snapshot against a new one: the new one says where the type is from. */
	type(before, "_private.Lock", 10, 720);
	type_from(after, "_private.Lock", "extension", 5010, 360720);
	run(NULL);
	cr_assert_null(ld_diff_suspect(diff, 0));
	cr_assert_str_eq(diff->types[0].origin, "extension");
}

Test(diff, no_suspect_when_nothing_grew)
{
	type(before, "app.Session", 10, 560);
	type(after, "app.Session", 5, 280);
	run(NULL);
	cr_assert_null(ld_diff_suspect(diff, 0));
}

/* ================================================================ trends */

static struct ld_snapshot *series[4];

static void series_fini(void)
{
	teardown();
	for (int i = 0; i < 4; i++) {
		ld_snapshot_destroy(series[i]);
		series[i] = NULL;
	}
}

TestSuite(trend, .init = setup, .fini = series_fini);

/* Three snapshots: A and C grow every time, B goes up then down, site X
 * grows twice and site Y once. */
static void trend_snapshots(struct ld_snapshot *s[3])
{
	static const uint64_t a[] = { 1, 2, 3 }, b[] = { 1, 5, 1 }, x[] = { 10, 20, 30 }, y[] = { 5, 5, 9 };
	for (int i = 0; i < 3; i++) {
		s[i] = ld_snapshot_create();
		cr_assert_not_null(s[i]);
		type(s[i], "app.A", a[i], a[i] * 10);
		type(s[i], "app.B", b[i], b[i] * 10);
		type(s[i], "app.C", a[i], 100); /* more objects, same bytes: still growth */
		uint32_t fx = frame(s[i], "x.py", "grow", 1), fy = frame(s[i], "y.py", "once", 2);
		SITE(s[i], x[i], x[i] * 8, fx);
		SITE(s[i], y[i], y[i] * 8, fy);
		TYPE_SITE(s[i], 0, a[i], a[i] * 10, fx);
	}
}

Test(trend, counts_the_intervals_each_row_grew_in)
{
	struct ld_snapshot **s = series;
	trend_snapshots(s);
	cr_assert_eq(ld_diff_create(s[0], s[2], NULL, &diff), 0);
	struct ld_diff *d = diff;
	cr_assert_eq(d->intervals, 1);
	cr_assert_eq(ld_diff_trend(d, (const struct ld_snapshot *const *)s, 3, NULL), 0);
	cr_assert_eq(d->intervals, 2);
	for (size_t i = 0; i < d->ntypes; i++) {
		const struct ld_diff_type *t = &d->types[i];
		if (strcmp(t->name, "app.A") == 0) {
			cr_assert_eq(t->grew_in, 2);
			cr_assert_eq(t->nsites, 1);
			cr_assert_eq(t->sites[0].grew_in, 2);
		} else if (strcmp(t->name, "app.C") == 0) {
			cr_assert_eq(t->grew_in, 2);
		} else {
			cr_assert_str_eq(t->name, "app.B");
			cr_assert_eq(t->grew_in, 1);
		}
	}
	for (size_t i = 0; i < d->nsites; i++) {
		const struct ld_frame *f = ld_diff_frame(&d->sites[i].stack, 0);
		const char *fn = ld_snapshot_str(d->sites[i].stack.snap, f->function);
		cr_assert_eq(d->sites[i].grew_in, strcmp(fn, "grow") == 0 ? 2 : 1, "site %s", fn);
	}
}

Test(trend, marks_which_intervals_each_row_grew_in)
{
	struct ld_snapshot **s = series;
	trend_snapshots(s);
	cr_assert_eq(ld_diff_create(s[0], s[2], NULL, &diff), 0);
	struct ld_diff *d = diff;
	cr_assert_eq(ld_diff_trend(d, (const struct ld_snapshot *const *)s, 3, NULL), 0);
	for (size_t i = 0; i < d->ntypes; i++) {
		const struct ld_diff_type *t = &d->types[i];
		/* A: 1, 2, 3 grows in both steps; B: 1, 5, 1 only in the first. */
		uint64_t want = strcmp(t->name, "app.B") == 0 ? 1 : 3;
		cr_assert_eq(t->grew_mask, want, "%s: mask %llx", t->name, (unsigned long long)t->grew_mask);
		for (size_t k = 0; k < t->nsites; k++)
			cr_assert_eq(t->sites[k].grew_mask, 3);
	}
	for (size_t i = 0; i < d->nsites; i++) {
		const struct ld_frame *f = ld_diff_frame(&d->sites[i].stack, 0);
		const char *fn = ld_snapshot_str(d->sites[i].stack.snap, f->function);
		/* grow: 10, 20, 30 in both; once: 5, 5, 9 only in the second. */
		cr_assert_eq(d->sites[i].grew_mask, strcmp(fn, "grow") == 0 ? 3u : 2u, "site %s", fn);
	}
}

/*
 * Four snapshots, three steps, with byte sizes chosen so that every step of
 * every row is known: rows that grow, shrink, stay, go up and down, and a
 * site that appears in the third snapshot.
 */
static void step_snapshots(struct ld_snapshot *s[4])
{
	static const uint64_t a[] = { 10, 30, 60, 100 }, b[] = { 100, 70, 40, 40 }, k[] = { 50, 50, 50, 50 },
			      x[] = { 8, 16, 16, 40 }, y[] = { 80, 40, 64, 8 }, w[] = { 0, 0, 16, 32 };
	for (int i = 0; i < 4; i++) {
		s[i] = ld_snapshot_create();
		cr_assert_not_null(s[i]);
		type(s[i], "app.A", a[i] / 10, a[i]);
		type(s[i], "app.B", b[i] / 10, b[i]);
		type(s[i], "app.K", 5, k[i]);
		uint32_t fx = frame(s[i], "x.py", "grow", 1), fy = frame(s[i], "y.py", "wobble", 2);
		SITE(s[i], x[i] / 8, x[i], fx);
		SITE(s[i], y[i] / 8, y[i], fy);
		if (w[i])
			SITE(s[i], w[i] / 8, w[i], frame(s[i], "w.py", "late", 3));
		TYPE_SITE(s[i], 0, a[i] / 10, a[i], fx);
		TYPE_SITE(s[i], 1, b[i] / 10, b[i], fy);
	}
}

static void assert_steps(const char *what, const int64_t *got, uint32_t n, const int64_t *want)
{
	cr_assert_not_null(got, "%s: no steps", what);
	for (uint32_t i = 0; i < n; i++)
		cr_assert_eq(got[i], want[i], "%s step %u: %lld, want %lld", what, i, (long long)got[i],
			     (long long)want[i]);
}

Test(trend, keeps_each_rows_byte_change_per_step)
{
	struct ld_snapshot **s = series;
	step_snapshots(s);
	cr_assert_eq(ld_diff_create(s[0], s[3], NULL, &diff), 0);
	struct ld_diff *d = diff;
	cr_assert_eq(d->nsteps, 0);
	cr_assert_null(d->steps);
	cr_assert_null(d->types[0].steps);
	cr_assert_eq(ld_diff_trend(d, (const struct ld_snapshot *const *)s, 4, NULL), 0);
	cr_assert_eq(d->intervals, 3);
	cr_assert_eq(d->nsteps, 3);
	static const int64_t grow[] = { 20, 30, 40 }, shrink[] = { -30, -30, 0 }, stay[] = { 0, 0, 0 },
			     site_x[] = { 8, 0, 24 }, site_y[] = { -40, 24, -56 }, site_w[] = { 0, 16, 16 };
	cr_assert_eq(d->ntypes, 3);
	for (size_t i = 0; i < d->ntypes; i++) {
		const struct ld_diff_type *t = &d->types[i];
		bool a = strcmp(t->name, "app.A") == 0, b = strcmp(t->name, "app.B") == 0;
		assert_steps(t->name, t->steps, d->nsteps, a ? grow : b ? shrink : stay);
		cr_assert_eq(t->grew_in, a ? 3 : 0, "%s grew in %u", t->name, t->grew_in);
		cr_assert_eq(t->grew_mask, a ? 7u : 0u);
		cr_assert_eq(t->nsites, a || b ? 1 : 0);
		for (size_t j = 0; j < t->nsites; j++)
			assert_steps(t->name, t->sites[j].steps, d->nsteps, a ? grow : shrink);
	}
	cr_assert_eq(d->nsites, 3);
	for (size_t i = 0; i < d->nsites; i++) {
		const struct ld_diff_site *st = &d->sites[i];
		const char *fn = ld_snapshot_str(st->stack.snap, ld_diff_frame(&st->stack, 0)->function);
		bool x = strcmp(fn, "grow") == 0, y = strcmp(fn, "wobble") == 0;
		assert_steps(fn, st->steps, d->nsteps, x ? site_x : y ? site_y : site_w);
		/* x grew in steps 0 and 2, y in step 1, w (new) in steps 1 and 2 */
		cr_assert_eq(st->grew_mask, x ? 5u : y ? 2u : 6u, "%s mask %llx", fn,
			     (unsigned long long)st->grew_mask);
		cr_assert_eq(st->grew_in, x || !y ? 2 : 1);
	}
	/* A second trend replaces the steps (freed with the diff). */
	cr_assert_eq(ld_diff_trend(d, (const struct ld_snapshot *const *)s + 1, 3, NULL), 0);
	cr_assert_eq(d->nsteps, 2);
}

Test(trend, out_of_memory_is_all_or_nothing)
{
	TH_REQUIRE_WRAP();
	struct ld_snapshot **s = series;
	trend_snapshots(s);
	long n;
	for (n = 0; n < 5000; n++) {
		ld_diff_destroy(diff);
		diff = NULL;
		cr_assert_eq(ld_diff_create(s[0], s[2], NULL, &diff), 0);
		struct ld_diff *d = diff;
		th_fail_after(n);
		int r = ld_diff_trend(d, (const struct ld_snapshot *const *)s, 3, NULL);
		bool failed = th_fail_off() > n;
		cr_assert(r == 0 || r == -ENOMEM, "returned %d", r);
		if (r < 0) {
			/* "on failure d is unchanged" */
			cr_assert_eq(d->intervals, 1);
			cr_assert_null(d->steps);
			for (size_t i = 0; i < d->ntypes; i++)
				cr_assert_eq(d->types[i].grew_in, 0);
			for (size_t i = 0; i < d->nsites; i++)
				cr_assert_eq(d->sites[i].grew_in, 0);
		} else {
			/* success means every count is right, whatever ran short */
			cr_assert_eq(d->intervals, 2);
			for (size_t i = 0; i < d->ntypes; i++)
				cr_assert_eq(d->types[i].grew_in, strcmp(d->types[i].name, "app.B") == 0 ? 1 : 2,
					     "allocation %ld failing: %s grew_in %u", n, d->types[i].name,
					     d->types[i].grew_in);
			for (size_t i = 0; i < d->nsites; i++)
				cr_assert_gt(d->sites[i].grew_in, 0, "allocation %ld failing lost a site's count", n);
		}
		if (r == 0 && !failed)
			break; /* nothing failed any more */
	}
	cr_assert_lt(n, 5000);
}

/* ================================================================ suppressions */

static struct ld_suppressions supp;

static void supp_init(void)
{
	setup();
	ld_suppressions_init(&supp);
}

static void supp_fini(void)
{
	ld_suppressions_finish(&supp);
	teardown();
}

TestSuite(suppress, .init = supp_init, .fini = supp_fini);

static void parse_ok(const char *text)
{
	struct ld_error err;
	ld_error_clear(&err);
	int r = ld_suppressions_parse(&supp, text, strlen(text), &err);
	cr_assert_eq(r, 0, "parse failed: %s", err.msg);
}

#define ANY LD_SUPPRESS_ANY
#define TYPE LD_SUPPRESS_TYPE
#define FUNC LD_SUPPRESS_FUNCTION
#define FILE_ LD_SUPPRESS_FILE

Test(suppress, file_format)
{
	parse_ok("# known growth\n"
		 "\n"
		 "   \t\n"
		 "leak:app.cache\n"
		 "race:not_ours\n"
		 "type:^app.Session$\r\n"
		 "  trailing_blanks  \n"
		 "C:\\\\dir");
	cr_assert_eq(supp.n, 4, "%zu patterns", supp.n);
	cr_assert(ld_suppressions_match(&supp, FUNC, "app.cache.remember"));
	cr_assert(ld_suppressions_match(&supp, TYPE, "app.Session"));
	cr_assert_not(ld_suppressions_match(&supp, TYPE, "app.SessionStore"));
	cr_assert(ld_suppressions_match(&supp, FILE_, "x_trailing_blanks_y"));
	cr_assert_not(ld_suppressions_match(&supp, FUNC, "not_ours"));
	cr_assert(ld_suppressions_match(&supp, FILE_, "C:\\\\dir"));
}

Test(suppress, kinds_narrow_what_a_pattern_matches)
{
	parse_ok("type:Cache\nfunction:remember\nfile:vendor/\nleak:everywhere\nplain\n");
	cr_assert_eq(supp.n, 5);
	cr_assert(ld_suppressions_match(&supp, TYPE, "app.Cache"));
	cr_assert_not(ld_suppressions_match(&supp, FUNC, "Cache"));
	cr_assert_not(ld_suppressions_match(&supp, FILE_, "Cache.py"));
	cr_assert(ld_suppressions_match(&supp, FUNC, "remember"));
	cr_assert_not(ld_suppressions_match(&supp, TYPE, "remember"));
	cr_assert_not(ld_suppressions_match(&supp, FILE_, "remember.py"));
	cr_assert(ld_suppressions_match(&supp, FILE_, "lib/vendor/x.py"));
	cr_assert_not(ld_suppressions_match(&supp, FUNC, "vendor/"));
	/* "leak:" and no prefix match every kind. */
	cr_assert(ld_suppressions_match(&supp, TYPE, "everywhere"));
	cr_assert(ld_suppressions_match(&supp, FUNC, "everywhere"));
	cr_assert(ld_suppressions_match(&supp, FILE_, "everywhere"));
	cr_assert(ld_suppressions_match(&supp, TYPE, "plain"));
	cr_assert(ld_suppressions_match(&supp, FILE_, "plain"));
}

Test(suppress, pattern_syntax)
{
	parse_ok("^lib*.so\nmid?le\n[brackets]\nend$\n");
	cr_assert(ld_suppressions_match(&supp, FILE_, "libfoo.so.1"));
	cr_assert_not(ld_suppressions_match(&supp, FILE_, "/usr/libfoo.so"));
	cr_assert(ld_suppressions_match(&supp, FUNC, "a_middle_b"));
	cr_assert(ld_suppressions_match(&supp, FUNC, "mid-le"));
	cr_assert_not(ld_suppressions_match(&supp, FUNC, "midle"));
	cr_assert(ld_suppressions_match(&supp, TYPE, "x[brackets]y"), "brackets are literal");
	cr_assert_not(ld_suppressions_match(&supp, TYPE, "b"));
	cr_assert(ld_suppressions_match(&supp, FUNC, "the end"));
	cr_assert_not(ld_suppressions_match(&supp, FUNC, "end of it"));
	cr_assert_not(ld_suppressions_match(NULL, FUNC, "anything"));
}

Test(suppress, brackets_never_open_a_class)
{
	/*
	 * Every [ and ] is escaped, not only the ] that would close a class:
	 * glibc's fnmatch() takes an unclosed [ literally, except before "[.",
	 * where it starts a collating symbol and nothing matches.
	 */
	parse_ok("f[[.\nop[[=x\n");
	cr_assert(ld_suppressions_match(&supp, FUNC, "f[[.x"), "\"f[[.\" is literal");
	cr_assert(ld_suppressions_match(&supp, FUNC, "a_op[[=x"), "\"op[[=x\" is literal");
	cr_assert_not(ld_suppressions_match(&supp, FUNC, "f[x"));
}

Test(suppress, bad_lines)
{
	struct ld_error err;
	ld_error_clear(&err);
	const char *t = "ok\nleak:\n";
	cr_assert_eq(ld_suppressions_parse(&supp, t, strlen(t), &err), -EINVAL);
	cr_assert_str_eq(err.msg, "line 2: empty pattern");
	/* An anchor alone would match everything. */
	const char *anchors[] = { "^", "$", "^$", "type:^$" };
	for (size_t i = 0; i < 4; i++) {
		ld_error_clear(&err);
		cr_assert_eq(ld_suppressions_parse(&supp, anchors[i], strlen(anchors[i]), &err), -EINVAL,
			     "\"%s\" accepted", anchors[i]);
		cr_assert_str_eq(err.msg, "line 1: empty pattern");
	}
	const char nul[] = "a\nb\0c\n";
	cr_assert_eq(ld_suppressions_parse(&supp, nul, sizeof(nul) - 1, &err), -EINVAL);
	cr_assert_str_eq(err.msg, "line 2: contains a NUL byte");
	char *longline = malloc(5000);
	cr_assert_not_null(longline);
	memset(longline, 'x', 5000);
	int r = ld_suppressions_parse(&supp, longline, 5000, &err);
	free(longline);
	cr_assert_eq(r, -EINVAL);
	cr_assert_str_eq(err.msg, "line 1: longer than 4096 bytes");
}

Test(suppress, marks_rows_of_a_diff)
{
	struct ld_snapshot *a = after;
	char *roots[] = { "/srv/app" };
	cr_assert_eq(ld_meta_set_list(&a->meta.roots, &a->meta.nroots, roots, 1), 0);
	uint32_t t0 = type(a, "app.cache.Entry", 5, 500);
	type(a, "app.Session", 5, 500);
	type(a, "render", 5, 500); /* a type named like a suppressed function */
	uint32_t f_cache = frame(a, "/srv/app/app/cache.py", "remember", 3);
	uint32_t f_main = frame(a, "/srv/app/main.py", "main", 1);
	uint32_t f_view = frame(a, "/srv/app/views.py", "render", 9);
	SITE(a, 1, 100, f_cache, f_main); /* suppressed by its function */
	SITE(a, 1, 200, f_view, f_main);  /* suppressed by its normalised file */
	SITE(a, 1, 300, f_main);          /* not suppressed */
	TYPE_SITE(a, t0, 5, 500, f_main); /* under a suppressed type */
	parse_ok("function:remember\nfile:^views.py$\ntype:app.cache.*\nfunction:render\n");
	run(NULL);
	size_t n = ld_diff_suppress(diff, &supp, NULL);
	cr_assert_eq(n, 3, "%zu rows marked", n);
	for (size_t i = 0; i < diff->nsites; i++) {
		const struct ld_diff_site *st = &diff->sites[i];
		bool want = st->row.bytes_after != 300;
		cr_assert_eq(st->suppressed, want, "site of %llu bytes", (unsigned long long)st->row.bytes_after);
		cr_assert_eq(ld_diff_site_shown(st, 0), !want);
	}
	for (size_t i = 0; i < diff->ntypes; i++) {
		const struct ld_diff_type *t = &diff->types[i];
		bool want = strcmp(t->name, "app.cache.Entry") == 0;
		cr_assert_eq(t->suppressed, want, "type %s", t->name);
		cr_assert_eq(ld_diff_type_shown(t, 0), !want);
		for (size_t j = 0; j < t->nsites; j++)
			cr_assert_eq(t->sites[j].suppressed, want);
	}
	/* A suppressed type is never the suspect. */
	const struct ld_diff_type *sus = ld_diff_suspect(diff, 0);
	cr_assert_not_null(sus);
	cr_assert_str_eq(sus->name, "app.Session");
	/* No patterns: nothing marked. */
	struct ld_suppressions none;
	ld_suppressions_init(&none);
	cr_assert_eq(ld_diff_suppress(diff, &none, NULL), 0);
}

/* ================================================================ verdicts */

Test(diff, limits_parse_total)
{
	struct ld_limits lim = { 0 };
	cr_assert_eq(ld_limits_parse_total(&lim, "5MiB"), 0);
	cr_assert(lim.total);
	cr_assert_not(lim.total_is_percent);
	cr_assert_eq(lim.total_bytes, 5 << 20);
	cr_assert_eq(ld_limits_parse_total(&lim, "2.5%"), 0);
	cr_assert(lim.total_is_percent);
	cr_assert_float_eq(lim.total_percent, 2.5, 1e-12);
	struct ld_limits bad = { 0 };
	cr_assert_eq(ld_limits_parse_total(&bad, "%"), -EINVAL);
	cr_assert_eq(ld_limits_parse_total(&bad, "-3%"), -EINVAL);
	cr_assert_eq(ld_limits_parse_total(&bad, "x%"), -EINVAL);
	cr_assert_eq(ld_limits_parse_total(&bad, "3%%"), -EINVAL);
	cr_assert_eq(ld_limits_parse_total(&bad, "lots"), -EINVAL);
	cr_assert_not(bad.total, "a rejected argument set a limit");
}

Test(diff, verdict_checks_each_limit)
{
	before->totals.heap_bytes = 1000;
	after->totals.heap_bytes = 1600;
	uint32_t fa = frame(after, "a.py", "f", 1), fb = frame(after, "b.py", "g", 2);
	SITE(after, 1, 500, fa);
	SITE(after, 1, 100, fb);
	type(before, "app.T", 1, 10);
	type(after, "app.T", 12, 120);
	run(NULL);

	struct ld_verdict v;
	cr_assert_eq(ld_verdict_check(diff, NULL, &v), 0);
	cr_assert_not(v.checked);
	cr_assert(ld_verdict_passed(&v));
	cr_assert(v.heap);
	cr_assert_eq(v.total_delta, 600);
	ld_verdict_finish(&v);

	struct ld_limits lim = { .total = true, .total_bytes = 600 };
	cr_assert_eq(ld_verdict_check(diff, &lim, &v), 0);
	cr_assert(ld_verdict_passed(&v), "600 bytes is within a 600 byte limit");
	ld_verdict_finish(&v);
	lim.total_bytes = 599;
	cr_assert_eq(ld_verdict_check(diff, &lim, &v), 0);
	cr_assert_eq(v.nhits, 1);
	cr_assert_eq(v.hits[0].kind, LD_LIMIT_TOTAL);
	cr_assert_eq(v.hits[0].value, 600);
	cr_assert_float_eq(v.hits[0].percent, 60.0, 1e-9);
	ld_verdict_finish(&v);

	struct ld_limits pct = { .total = true, .total_is_percent = true, .total_percent = 60 };
	cr_assert_eq(ld_verdict_check(diff, &pct, &v), 0);
	cr_assert(ld_verdict_passed(&v));
	ld_verdict_finish(&v);
	pct.total_percent = 59.9;
	cr_assert_eq(ld_verdict_check(diff, &pct, &v), 0);
	cr_assert_not(ld_verdict_passed(&v));
	ld_verdict_finish(&v);

	struct ld_limits site = { .site = true, .site_bytes = 100 };
	cr_assert_eq(ld_verdict_check(diff, &site, &v), 0);
	cr_assert_eq(v.nhits, 1, "only the 500 byte site is over 100");
	cr_assert_eq(v.hits[0].kind, LD_LIMIT_SITE);
	cr_assert_eq(v.hits[0].value, 500);
	cr_assert_eq(v.hits[0].site->row.bytes_after, 500);
	ld_verdict_finish(&v);

	struct ld_limits ty = { .type = true, .type_count = 10 };
	cr_assert_eq(ld_verdict_check(diff, &ty, &v), 0);
	cr_assert_eq(v.nhits, 1);
	cr_assert_eq(v.hits[0].kind, LD_LIMIT_TYPE);
	cr_assert_eq(v.hits[0].value, 11);
	cr_assert_str_eq(v.hits[0].type->name, "app.T");
	ld_verdict_finish(&v);
	ty.type_count = 11;
	cr_assert_eq(ld_verdict_check(diff, &ty, &v), 0);
	cr_assert(ld_verdict_passed(&v));
	ld_verdict_finish(&v);
}

Test(diff, verdict_leaves_out_suppressed_rows)
{
	before->totals.heap_bytes = 1000;
	after->totals.heap_bytes = 1600;
	SITE(after, 1, 500, frame(after, "cache.py", "remember", 1));
	SITE(after, 1, 100, frame(after, "b.py", "g", 2));
	run(NULL);
	struct ld_suppressions s;
	ld_suppressions_init(&s);
	struct ld_error err;
	cr_assert_eq(ld_suppressions_parse(&s, "function:remember", 17, &err), 0);
	cr_assert_eq(ld_diff_suppress(diff, &s, NULL), 1);
	ld_suppressions_finish(&s);
	struct ld_limits lim = { .total = true, .total_bytes = 100, .site = true, .site_bytes = 0 };
	struct ld_verdict v;
	cr_assert_eq(ld_verdict_check(diff, &lim, &v), 0);
	cr_assert_eq(v.total_delta, 100);
	cr_assert_eq(v.nhits, 1);
	cr_assert_eq(v.hits[0].kind, LD_LIMIT_SITE);
	cr_assert_eq(v.hits[0].value, 100);
	ld_verdict_finish(&v);
}

Test(diff, verdict_uses_the_census_without_a_traced_heap)
{
	before->totals.object_bytes = 0;
	after->totals.object_bytes = 50;
	run(NULL);
	struct ld_limits pct = { .total = true, .total_is_percent = true, .total_percent = 1000 };
	struct ld_verdict v;
	cr_assert_eq(ld_verdict_check(diff, &pct, &v), 0);
	cr_assert_not(v.heap);
	cr_assert_eq(v.total_delta, 50);
	cr_assert_eq(v.nhits, 1, "any growth from nothing is over a percentage");
	cr_assert_lt(v.hits[0].percent, 0);
	ld_verdict_finish(&v);
}

Test(diff, untexted_frame_joins_the_older_of_two_texted_rows)
{
	/*
	 * "No source text" matches any text, so a frame without one equals
	 * two rows that differ only in their texts: it joins the one made
	 * first, whatever order a hash index keeps them in.
	 */
	uint32_t a1 = frame_text(after, "m.py", "f", 3, "x = 1");
	uint32_t a2 = frame_text(after, "m.py", "f", 3, "x = 2");
	SITE(after, 1, 10, a1);
	SITE(after, 2, 20, a2);
	uint32_t b = frame(before, "m.py", "f", 3);
	SITE(before, 5, 50, b);
	cr_assert_eq(ld_diff_create(before, after, NULL, &diff), 0);
	cr_assert_eq(diff->nsites, 2);
	for (size_t i = 0; i < diff->nsites; i++) {
		const struct ld_diff_site *s = &diff->sites[i];
		bool first = s->row.bytes_after == 10;
		cr_assert_eq(s->row.bytes_before, first ? 50u : 0u, "row with %llu bytes after",
			     (unsigned long long)s->row.bytes_after);
		cr_assert_eq(s->state, first ? LD_DIFF_KEPT : LD_DIFF_NEW);
	}
}

Test(diff, rows_sort_by_growth_then_file_line_function_at_every_depth)
{
	/*
	 * Equal growth falls back to the tracebacks, compared frame by frame
	 * by file name, line and function name in strcmp order, the shorter
	 * first when one is a prefix of the other. Names come from two string
	 * tables, and several rows share their innermost frames.
	 */
	uint32_t x = frame(after, "b.py", "g", 1), y = frame(after, "b.py", "f", 1);
	uint32_t z = frame(after, "a.py", "h", 9), w = frame(after, "b.py", "g", 0);
	SITE(after, 1, 8, x, y, z);
	SITE(after, 1, 8, x, y);
	SITE(after, 1, 8, x, y, w);
	SITE(after, 1, 8, x, z);
	SITE(after, 1, 8, w);
	uint32_t bz = frame(before, "a.py", "h", 9), bx = frame(before, "b.py", "g", 1);
	SITE(before, 1, 8, bz);
	SITE(before, 1, 8, bx, bz, bz);
	cr_assert_eq(ld_diff_create(before, after, NULL, &diff), 0);
	cr_assert_eq(diff->nsites, 7);
	/* Growth +8 (new rows) first, in traceback order; then the two gone rows. */
	static const char *const want[] = {
		"b.py:0", "b.py:1 a.py:9", "b.py:1 b.py:1", "b.py:1 b.py:1 a.py:9", "b.py:1 b.py:1 b.py:0",
		"a.py:9", "b.py:1 a.py:9 a.py:9",
	};
	for (size_t i = 0; i < 7; i++) {
		char got[128] = "";
		const struct ld_diff_stack *st = &diff->sites[i].stack;
		for (uint32_t j = 0; j < st->depth; j++) {
			const struct ld_frame *f = ld_diff_frame(st, j);
			char part[32];
			snprintf(part, sizeof(part), "%s%s:%d", j ? " " : "", ld_snapshot_str(st->snap, f->file), f->line);
			strcat(got, part);
		}
		cr_assert_str_eq(got, want[i], "row %zu", i);
	}
}

Test(diff, rows_grown_in_count_only_sort_before_unchanged_ones)
{
	/*
	 * Growth is bytes first, then count: a row with the same bytes and
	 * more blocks grew, and comes before every unchanged row, whatever its
	 * traceback; one with fewer blocks comes after them.
	 */
	uint32_t ba = frame(before, "a.py", "f", 1), bb = frame(before, "b.py", "g", 2);
	uint32_t bc = frame(before, "c.py", "h", 3), bd = frame(before, "0.py", "e", 4);
	SITE(before, 2, 16, ba);
	SITE(before, 1, 16, bb);
	SITE(before, 2, 16, bc);
	SITE(before, 1, 8, bd);
	uint32_t aa = frame(after, "a.py", "f", 1), ab = frame(after, "b.py", "g", 2);
	uint32_t ac = frame(after, "c.py", "h", 3), ad = frame(after, "0.py", "e", 4);
	SITE(after, 2, 16, aa); /* unchanged */
	SITE(after, 2, 16, ab); /* +1 block, +0 bytes */
	SITE(after, 1, 16, ac); /* -1 block, +0 bytes */
	SITE(after, 1, 8, ad);  /* unchanged, and first by name */
	cr_assert_eq(ld_diff_create(before, after, NULL, &diff), 0);
	cr_assert_eq(diff->nsites, 4);
	static const char *const want[] = { "b.py", "0.py", "a.py", "c.py" };
	for (size_t i = 0; i < 4; i++) {
		const struct ld_frame *f = ld_diff_frame(&diff->sites[i].stack, 0);
		cr_assert_str_eq(ld_snapshot_str(diff->sites[i].stack.snap, f->file), want[i], "row %zu", i);
	}
}

/* The order rows must come in: growth, then tracebacks by file, line, function. */
static int expected_order(const struct ld_diff_site *x, const struct ld_diff_site *y)
{
	int64_t a = ld_diff_bytes_delta(&x->row), b = ld_diff_bytes_delta(&y->row);
	if (a != b)
		return a > b ? -1 : 1;
	a = ld_diff_count_delta(&x->row);
	b = ld_diff_count_delta(&y->row);
	if (a != b)
		return a > b ? -1 : 1;
	for (uint32_t i = 0; i < x->stack.depth && i < y->stack.depth; i++) {
		const struct ld_frame *f = ld_diff_frame(&x->stack, i), *g = ld_diff_frame(&y->stack, i);
		int c = strcmp(ld_snapshot_str(x->stack.snap, f->file), ld_snapshot_str(y->stack.snap, g->file));
		if (c)
			return c;
		if (f->line != g->line)
			return f->line < g->line ? -1 : 1;
		c = strcmp(ld_snapshot_str(x->stack.snap, f->function), ld_snapshot_str(y->stack.snap, g->function));
		if (c)
			return c;
	}
	return (x->stack.depth > y->stack.depth) - (x->stack.depth < y->stack.depth);
}

Test(diff, random_tracebacks_come_out_sorted)
{
	/*
	 * Few names and lines, so that many rows share their first frames and
	 * most did not change: the paths the sort takes for a large diff.
	 */
	static const char *const files[] = { "a.py", "b.py", "ab.py" };
	static const char *const funcs[] = { "f", "g", "F" };
	uint64_t seed = 42;
	struct ld_snapshot *snaps[2] = { before, after };
	uint32_t fr[2][27];
	for (int s = 0; s < 2; s++)
		for (int i = 0; i < 27; i++)
			fr[s][i] = frame(snaps[s], files[i % 3], funcs[i / 9], 1 + (i / 3) % 3);
	for (int n = 0; n < 3000; n++) {
		uint32_t depth = (uint32_t)(th_rand(&seed) % 5), st[2][4];
		for (uint32_t j = 0; j < depth; j++) {
			uint32_t v = (uint32_t)(th_rand(&seed) % 27);
			st[0][j] = fr[0][v];
			st[1][j] = fr[1][v];
		}
		uint64_t count = 1 + th_rand(&seed) % 3, roll = th_rand(&seed) % 10;
		if (roll != 0)
			cr_assert_eq(ld_snapshot_add_site(before, count, count * 8, st[0], depth), 0);
		if (roll != 1)
			cr_assert_eq(ld_snapshot_add_site(after, count + (roll == 2), (count + (roll == 2)) * 8,
							  st[1], depth), 0);
	}
	cr_assert_eq(ld_diff_create(before, after, NULL, &diff), 0);
	cr_assert_gt(diff->nsites, 100);
	for (size_t i = 1; i < diff->nsites; i++)
		cr_assert_leq(expected_order(&diff->sites[i - 1], &diff->sites[i]), 0, "rows %zu and %zu", i - 1, i);
}

Test(diff, path_hint_carries_its_type_count_change)
{
	static const char *const p[] = { "mod.bus", "mod.Report" };
	static const char *const q[] = { "mod.bus", "mod.Bus" };
	static const char *const r[] = { "mod.x", "mod.Gone" };
	static const char *const f[] = { "mod.y", "mod.Fewer" };
	type(before, "mod.Report", 10, 100);
	type(after, "mod.Report", 30, 300);
	type(before, "mod.Bus", 1, 50);
	type(after, "mod.Bus", 1, 50);
	hint(after, LD_HINT_PATH, NULL, "mod.Report", 0, -1, p, 2);
	hint(after, LD_HINT_PATH, NULL, "mod.Bus", 0, -1, q, 2);
	hint(after, LD_HINT_PATH, NULL, "mod.Gone", 0, -1, r, 2);
	type(before, "mod.Fewer", 5, 50);
	type(after, "mod.Fewer", 4, 40);
	hint(after, LD_HINT_PATH, NULL, "mod.Fewer", 0, -1, f, 2);
	run(NULL);
	cr_assert_eq(diff->nhints, 4);
	for (size_t i = 0; i < diff->nhints; i++) {
		const struct ld_diff_hint *h = &diff->hints[i];
		/* Only the grown type's path is reported. */
		if (strcmp(h->type, "mod.Report") == 0) {
			cr_assert_eq(h->type_count_delta, 20);
			cr_assert(ld_report_hint_shown(h));
		} else if (strcmp(h->type, "mod.Fewer") == 0) {
			cr_assert_eq(h->type_count_delta, -1);
			cr_assert_not(ld_report_hint_shown(h));
		} else {
			cr_assert_eq(h->type_count_delta, 0, "%s", h->type);
			cr_assert_not(ld_report_hint_shown(h), "%s", h->type);
		}
	}
}
