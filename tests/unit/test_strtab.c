/* Unit tests for core/strtab.c and core/hashmap.c. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"
#include "strtab.h"

static struct ld_strtab tab;

static void tab_init(void)
{
	ld_strtab_init(&tab);
}

static void tab_fini(void)
{
	ld_strtab_finish(&tab);
}

TestSuite(strtab, .init = tab_init, .fini = tab_fini);

static uint32_t intern(const char *s)
{
	uint32_t idx = 0xdeadbeef;
	int r = ld_strtab_intern(&tab, s, strlen(s), &idx);
	cr_assert_eq(r, 0, "intern(\"%s\") returned %d", s, r);
	cr_assert_neq(idx, 0xdeadbeef);
	return idx;
}

Test(strtab, empty_table)
{
	cr_assert_eq(tab.n, 0);
	cr_assert_str_eq(ld_strtab_get(&tab, 0), "");
	cr_assert_str_eq(ld_strtab_get(&tab, LD_NOSTR), "");
}

Test(strtab, equal_strings_share_an_index)
{
	uint32_t a = intern("app.py");
	uint32_t b = intern("login");
	uint32_t c = intern("app.py");
	char copy[] = "login";
	uint32_t d = intern(copy);
	cr_assert_eq(a, c);
	cr_assert_eq(b, d);
	cr_assert_neq(a, b);
	cr_assert_eq(tab.n, 2);
	cr_assert_str_eq(ld_strtab_get(&tab, a), "app.py");
	cr_assert_str_eq(ld_strtab_get(&tab, b), "login");
}

Test(strtab, indices_count_from_zero_in_insertion_order)
{
	cr_assert_eq(intern("zero"), 0);
	cr_assert_eq(intern("one"), 1);
	cr_assert_eq(intern("zero"), 0);
	cr_assert_eq(intern("two"), 2);
}

Test(strtab, length_is_respected_and_copy_is_terminated)
{
	uint32_t a, b, c;
	const char *s = "abcdef";
	cr_assert_eq(ld_strtab_intern(&tab, s, 3, &a), 0);
	cr_assert_eq(ld_strtab_intern(&tab, s, 6, &b), 0);
	cr_assert_eq(ld_strtab_intern(&tab, "abc", 3, &c), 0);
	cr_assert_neq(a, b);
	cr_assert_eq(a, c);
	cr_assert_str_eq(ld_strtab_get(&tab, a), "abc");
	cr_assert_str_eq(ld_strtab_get(&tab, b), "abcdef");
}

Test(strtab, empty_string_is_a_string)
{
	uint32_t e = intern("");
	uint32_t x = intern("x");
	cr_assert_neq(e, x);
	cr_assert_eq(intern(""), e);
	cr_assert_str_eq(ld_strtab_get(&tab, e), "");
}

Test(strtab, prefixes_and_case_are_distinct)
{
	uint32_t v[] = { intern("a"), intern("ab"), intern("abc"), intern("A"), intern("b") };
	for (size_t i = 0; i < 5; i++)
		for (size_t j = i + 1; j < 5; j++)
			cr_assert_neq(v[i], v[j], "entries %zu and %zu collide", i, j);
}

Test(strtab, hundred_thousand_strings)
{
	enum { N = 100000 };
	char s[32];
	uint32_t *idx = malloc(N * sizeof(*idx));
	cr_assert_not_null(idx);
	for (uint32_t i = 0; i < N; i++) {
		int len = snprintf(s, sizeof(s), "module%u.Class%u", i, i * 7919u);
		cr_assert_eq(ld_strtab_intern(&tab, s, (size_t)len, &idx[i]), 0);
		cr_assert_eq(idx[i], i, "string %u got index %u", i, idx[i]);
	}
	cr_assert_eq(tab.n, N);
	/* Every one is found again, under the same index, with its own bytes. */
	for (uint32_t i = 0; i < N; i += 1) {
		int len = snprintf(s, sizeof(s), "module%u.Class%u", i, i * 7919u);
		uint32_t again;
		cr_assert_eq(ld_strtab_intern(&tab, s, (size_t)len, &again), 0);
		cr_assert_eq(again, idx[i]);
		cr_assert_str_eq(ld_strtab_get(&tab, idx[i]), s);
	}
	cr_assert_eq(tab.n, N, "re-interning added entries");
	free(idx);
}

Test(strtab, long_strings_survive)
{
	size_t n = 200000; /* longer than an arena chunk */
	char *big = malloc(n + 1);
	cr_assert_not_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	big[n] = '\0';
	uint32_t small1 = intern("before");
	uint32_t b = intern(big);
	uint32_t small2 = intern("after");
	cr_assert_eq(intern(big), b);
	cr_assert_eq(strlen(ld_strtab_get(&tab, b)), n);
	cr_assert_str_eq(ld_strtab_get(&tab, b), big);
	cr_assert_str_eq(ld_strtab_get(&tab, small1), "before");
	cr_assert_str_eq(ld_strtab_get(&tab, small2), "after");
	free(big);
}

Test(strtab, pointers_stay_valid_while_the_table_grows)
{
	uint32_t first = intern("the first string");
	const char *p = ld_strtab_get(&tab, first);
	char s[32];
	for (int i = 0; i < 20000; i++) {
		snprintf(s, sizeof(s), "filler %d", i);
		intern(s);
	}
	cr_assert_eq(ld_strtab_get(&tab, first), p);
	cr_assert_str_eq(p, "the first string");
}

Test(strtab, append_keeps_duplicates)
{
	uint32_t a, b, c;
	cr_assert_eq(ld_strtab_append(&tab, "dup", 3, &a), 0);
	cr_assert_eq(ld_strtab_append(&tab, "dup", 3, &b), 0);
	cr_assert_eq(ld_strtab_append(&tab, "other", 5, &c), 0);
	cr_assert_eq(a, 0);
	cr_assert_eq(b, 1);
	cr_assert_eq(c, 2);
	cr_assert_eq(tab.n, 3);
	cr_assert_str_eq(ld_strtab_get(&tab, a), "dup");
	cr_assert_str_eq(ld_strtab_get(&tab, b), "dup");
	/* Interning finds one of the existing copies rather than adding a third. */
	uint32_t d = intern("dup");
	cr_assert(d == a || d == b, "intern returned %u", d);
	cr_assert_eq(tab.n, 3);
	cr_assert_eq(ld_strtab_hash(&tab, a), ld_strtab_hash(&tab, b));
}

Test(strtab, get_out_of_range_is_empty)
{
	intern("x");
	intern("y");
	cr_assert_str_eq(ld_strtab_get(&tab, 2), "");
	cr_assert_str_eq(ld_strtab_get(&tab, 1000000), "");
	cr_assert_str_eq(ld_strtab_get(&tab, LD_NOSTR), "");
	cr_assert_str_eq(ld_strtab_get(&tab, 1), "y");
}

Test(strtab, hash_follows_content)
{
	uint32_t a = intern("app.Session");
	uint32_t b = intern("dict");
	cr_assert_eq(ld_strtab_hash(&tab, a), ld_hash_bytes("app.Session", 11));
	cr_assert_eq(ld_strtab_hash(&tab, b), ld_hash_bytes("dict", 4));
	cr_assert_neq(ld_strtab_hash(&tab, a), ld_strtab_hash(&tab, b));

	/* The same string in another table hashes the same, whatever its index. */
	struct ld_strtab other;
	ld_strtab_init(&other);
	uint32_t x, y;
	cr_assert_eq(ld_strtab_intern(&other, "zzz", 3, &x), 0);
	cr_assert_eq(ld_strtab_intern(&other, "app.Session", 11, &y), 0);
	cr_assert_neq(y, a);
	cr_assert_eq(ld_strtab_hash(&other, y), ld_strtab_hash(&tab, a));
	ld_strtab_finish(&other);
}

Test(strtab, hash_out_of_range_matches_the_empty_string)
{
	/* get() turns a bad index into "", so the hash must agree with it or a
	 * lookup keyed on (hash, content) would miss equal strings. */
	intern("x");
	cr_assert_eq(ld_strtab_hash(&tab, LD_NOSTR), ld_hash_bytes("", 0));
	cr_assert_eq(ld_strtab_hash(&tab, 99), ld_hash_bytes("", 0));
}

Test(strtab, finish_empties_and_allows_reuse)
{
	intern("a");
	ld_strtab_finish(&tab);
	cr_assert_eq(tab.n, 0);
	cr_assert_str_eq(ld_strtab_get(&tab, 0), "");
	ld_strtab_init(&tab);
	cr_assert_eq(intern("b"), 0);
	ld_strtab_finish(NULL); /* allowed */
}

/* ---------------------------------------------------------------- hashmap */

static struct ld_hashmap map;

static void map_init(void)
{
	ld_hashmap_init(&map);
}

static void map_fini(void)
{
	ld_hashmap_finish(&map);
}

TestSuite(hashmap, .init = map_init, .fini = map_fini);

/* Collects the values stored under hash into a bitmap over 0..n-1. */
static size_t collect(uint64_t hash, unsigned char *seen, size_t n)
{
	struct ld_hashmap_iter it = LD_HASHMAP_ITER(hash);
	uint32_t v;
	size_t found = 0;
	while (ld_hashmap_next(&map, &it, &v)) {
		cr_assert_lt(v, n, "value %u out of range", v);
		cr_assert_eq(seen[v], 0, "value %u returned twice", v);
		seen[v] = 1;
		found++;
	}
	return found;
}

Test(hashmap, reserve_keeps_rows_and_stops_rebuilds)
{
	for (uint32_t i = 0; i < 100; i++)
		cr_assert_eq(ld_hashmap_insert(&map, ld_hash_mix(0, i), i), 0);
	cr_assert_eq(ld_hashmap_reserve(&map, 10000), 0);
	size_t cap = map.cap;
	cr_assert_geq(cap, 2 * 10000);
	for (uint32_t i = 100; i < 10000; i++)
		cr_assert_eq(ld_hashmap_insert(&map, ld_hash_mix(0, i), i), 0);
	cr_assert_eq(map.cap, cap, "the map was rebuilt after reserving");
	cr_assert_eq(ld_hashmap_reserve(&map, 50), 0, "reserving less changes nothing");
	cr_assert_eq(map.cap, cap);
	for (uint32_t i = 0; i < 10000; i++) {
		unsigned char seen[10000] = { 0 };
		cr_assert_eq(collect(ld_hash_mix(0, i), seen, 10000), 1, "row %u", i);
		cr_assert(seen[i]);
	}
}

Test(hashmap, empty_map_finds_nothing)
{
	struct ld_hashmap_iter it = LD_HASHMAP_ITER(42);
	uint32_t v = 7;
	cr_assert_not(ld_hashmap_next(&map, &it, &v));
	cr_assert_eq(v, 7);
}

Test(hashmap, finds_what_was_inserted)
{
	cr_assert_eq(ld_hashmap_insert(&map, 1000, 1), 0);
	cr_assert_eq(ld_hashmap_insert(&map, 2000, 2), 0);
	cr_assert_eq(map.len, 2);
	struct ld_hashmap_iter it = LD_HASHMAP_ITER(2000);
	uint32_t v;
	cr_assert(ld_hashmap_next(&map, &it, &v));
	cr_assert_eq(v, 2);
	cr_assert_not(ld_hashmap_next(&map, &it, &v));
	it = LD_HASHMAP_ITER(3000);
	cr_assert_not(ld_hashmap_next(&map, &it, &v));
}

Test(hashmap, iteration_finds_all_duplicates_of_one_hash)
{
	enum { N = 300 };
	const uint64_t h = 0x123456789abcdef0ULL;
	/* Interleave the duplicates with other hashes, including ones that land
	 * on the same slots (equal low bits), and grow the map several times. */
	for (uint32_t i = 0; i < N; i++) {
		cr_assert_eq(ld_hashmap_insert(&map, h, i), 0);
		cr_assert_eq(ld_hashmap_insert(&map, h + ((uint64_t)(i + 1) << 32), N + i), 0);
		cr_assert_eq(ld_hashmap_insert(&map, h ^ (i + 1), 2 * N + i), 0);
	}
	cr_assert_eq(map.len, 3 * N);
	unsigned char seen[3 * N] = { 0 };
	cr_assert_eq(collect(h, seen, 3 * N), N);
	for (uint32_t i = 0; i < N; i++)
		cr_assert_eq(seen[i], 1, "duplicate %u not returned", i);

	/* A hash sharing h's slot but not its value finds only its own row. */
	memset(seen, 0, sizeof(seen));
	cr_assert_eq(collect(h + ((uint64_t)7 << 32), seen, 3 * N), 1);
	cr_assert_eq(seen[N + 6], 1);
}

Test(hashmap, many_distinct_hashes_survive_growth)
{
	enum { N = 50000 };
	for (uint32_t i = 0; i < N; i++)
		cr_assert_eq(ld_hashmap_insert(&map, ld_hash_mix(0, i), i), 0);
	cr_assert_eq(map.len, N);
	cr_assert_geq(map.cap, 2 * (size_t)N, "load factor above 1/2");
	cr_assert_eq(map.cap & (map.cap - 1), 0, "capacity %zu is not a power of two", map.cap);
	for (uint32_t i = 0; i < N; i++) {
		struct ld_hashmap_iter it = LD_HASHMAP_ITER(ld_hash_mix(0, i));
		uint32_t v, hits = 0, last = 0;
		while (ld_hashmap_next(&map, &it, &v)) {
			hits++;
			last = v;
		}
		cr_assert_eq(hits, 1, "hash of %u found %u times", i, hits);
		cr_assert_eq(last, i);
	}
}

Test(hashmap, zero_hash_is_an_ordinary_key)
{
	cr_assert_eq(ld_hashmap_insert(&map, 0, 5), 0);
	cr_assert_eq(ld_hashmap_insert(&map, 64, 6), 0); /* same slot in a 64-slot table */
	unsigned char seen[8] = { 0 };
	cr_assert_eq(collect(0, seen, 8), 1);
	cr_assert(seen[5]);
}

Test(hashmap, finish_empties)
{
	cr_assert_eq(ld_hashmap_insert(&map, 1, 1), 0);
	ld_hashmap_finish(&map);
	cr_assert_eq(map.len, 0);
	cr_assert_eq(map.cap, 0);
	struct ld_hashmap_iter it = LD_HASHMAP_ITER(1);
	uint32_t v;
	cr_assert_not(ld_hashmap_next(&map, &it, &v));
	ld_hashmap_finish(NULL);
}

Test(hash, bytes_and_mix)
{
	cr_assert_eq(ld_hash_bytes("abc", 3), ld_hash_bytes("abc", 3));
	cr_assert_neq(ld_hash_bytes("abc", 3), ld_hash_bytes("abd", 3));
	cr_assert_neq(ld_hash_bytes("abc", 3), ld_hash_bytes("abc", 2));
	cr_assert_neq(ld_hash_bytes("", 0), ld_hash_bytes("\0", 1));
	cr_assert_neq(ld_hash_mix(1, 2), ld_hash_mix(2, 1), "mix should depend on order");
	cr_assert_neq(ld_hash_mix(0, 0), ld_hash_mix(0, 1));
}

Test(strtab, many_copies_of_one_string_append_fast)
{
	/*
	 * A reader appends every string of a file, copies included: each copy
	 * must not lengthen the index's probe runs, or this takes minutes.
	 */
	for (uint32_t i = 0; i < 200000; i++) {
		uint32_t idx;
		cr_assert_eq(ld_strtab_append(&tab, "return result", 13, &idx), 0);
		cr_assert_eq(idx, i);
	}
	cr_assert_eq(intern("return result"), 0, "interning finds the first copy");
	cr_assert_eq(intern("other"), 200000);
	cr_assert_str_eq(ld_strtab_get(&tab, 199999), "return result");
}
