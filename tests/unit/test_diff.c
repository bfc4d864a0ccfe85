/* Unit tests for core/diff.c on snapshots built in memory. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "diff.h"
#include "helpers.h"
#include "snapshot.h"

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
	/* ... after: in another, with an unrelated frame first and other text. */
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

Test(diff, sites_differing_in_any_frame_field_are_distinct)
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
	run(NULL);
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
		th_fail_after(-1);
		if (r == 0) {
			cr_assert_neq(d, &sentinel);
			cr_assert_eq(d->ntypes, 41);
			ld_diff_destroy(d);
			break;
		}
		cr_assert_eq(r, -ENOMEM, "allocation %ld failing gave %d", n, r);
		cr_assert_eq(d, &sentinel, "*out written on failure");
	}
	cr_assert_gt(n, 3, "the diff should need several allocations");
	cr_assert_lt(n, 10000);
}
