/*
 * Sorting for the diff (see sort.h): a radix sort of frames for the keyer's
 * ranks, and the site-row sort, which is the bulk of a large diff's
 * ordering work: rows are sorted as small keys (merge sort for rows that
 * changed, radix sort then merge sort for the unchanged majority) and then
 * permuted into place. The keyer travels as an explicit argument.
 */
#include "sort.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keyer.h"

int ld_frame_order_cmp(const void *a, const void *b)
{
	const struct ld_frame_order *x = a, *y = b;
	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->function != y->function)
		return x->function < y->function ? -1 : 1;
	return 0;
}

/* Digit d (16 bits, least significant first) of a frame's sort key. */
static uint32_t frame_digit(const struct ld_frame_order *f, int d)
{
	uint32_t v = d < 2 ? f->function : d < 4 ? (uint32_t)f->line ^ 0x80000000u : f->file;
	return (v >> (d % 2 * 16)) & 0xffff;
}

int ld_sort_frames(struct ld_frame_order *fo, size_t n)
{
	struct ld_frame_order *tmp = malloc(n * sizeof(*tmp));
	size_t *count = malloc(((size_t)1 << 16) * sizeof(*count));
	if (!tmp || !count) {
		free(tmp);
		free(count);
		return -ENOMEM;
	}
	for (int d = 0; d < 6; d++) {
		memset(count, 0, ((size_t)1 << 16) * sizeof(*count));
		for (size_t i = 0; i < n; i++)
			count[frame_digit(&fo[i], d)]++;
		if (count[frame_digit(&fo[0], d)] == n)
			continue;
		size_t sum = 0;
		for (size_t i = 0; i < ((size_t)1 << 16); i++) {
			size_t c = count[i];
			count[i] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[count[frame_digit(&fo[i], d)]++] = fo[i];
		memcpy(fo, tmp, n * sizeof(*fo));
	}
	free(tmp);
	free(count);
	return 0;
}

int ld_growth_compare(const struct ld_diff_row *a, const struct ld_diff_row *b)
{
	int64_t da = ld_diff_bytes_delta(a), db = ld_diff_bytes_delta(b);
	if (da != db)
		return da > db ? -1 : 1;
	da = ld_diff_count_delta(a);
	db = ld_diff_count_delta(b);
	if (da != db)
		return da > db ? -1 : 1;
	return 0;
}

int ld_site_compare(const struct ld_diff_site *x, const struct ld_diff_site *y, const struct ld_keyer *k)
{
	int c = ld_growth_compare(&x->row, &y->row);
	return c ? c : ld_keyer_stack_compare(k, &x->stack, &y->stack);
}

/* ld_site_compare() for qsort_r(), the keyer as its argument. */
static int site_cmp(const void *a, const void *b, void *keyer)
{
	return ld_site_compare(a, b, keyer);
}

/*
 * What sorting a site row looks at first, packed small: the rows of a large
 * diff are mostly unchanged, so most comparisons get past the growth and
 * are settled by the innermost frames.
 */
#define KEY_FRAMES 2

struct site_key {
	int64_t bytes, count; /* growth */
	uint32_t rank[KEY_FRAMES]; /* of the innermost frames, as far as the traceback goes */
	uint32_t depth, row;
};

/* What comparing two keys needs when their first frames tie: the rows' tracebacks. */
struct key_ctx {
	const struct ld_keyer *keyer;
	const struct ld_diff_site *rows;
};

static int site_key_cmp(const struct site_key *x, const struct site_key *y, const struct key_ctx *c)
{
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	uint32_t n = x->depth < y->depth ? x->depth : y->depth;
	for (uint32_t i = 0; i < n && i < KEY_FRAMES; i++)
		if (x->rank[i] != y->rank[i])
			return x->rank[i] < y->rank[i] ? -1 : 1;
	if (n <= KEY_FRAMES)
		return x->depth < y->depth ? -1 : x->depth > y->depth;
	return ld_keyer_stack_compare_from(c->keyer, &c->rows[x->row].stack, &c->rows[y->row].stack, KEY_FRAMES);
}

/* Stable merge sort of n keys by site_key_cmp(); tmp has room for n / 2 + 1. */
static void merge_keys(struct site_key *v, size_t n, struct site_key *tmp, const struct key_ctx *c)
{
	if (n < 2)
		return;
	size_t h = n / 2;
	merge_keys(v, h, tmp, c);
	merge_keys(v + h, n - h, tmp, c);
	if (site_key_cmp(&v[h - 1], &v[h], c) <= 0)
		return;
	memcpy(tmp, v, h * sizeof(*v));
	size_t i = 0, j = h, o = 0;
	/* The right half wins only when strictly smaller: equal keys keep their order. */
	while (i < h && j < n)
		v[o++] = site_key_cmp(&v[j], &tmp[i], c) < 0 ? v[j++] : tmp[i++];
	while (i < h)
		v[o++] = tmp[i++];
}

/* A row that did not change, sorted by its first two frames' ranks (0: no frame). */
struct flat {
	uint64_t key;
	uint32_t at;
};

/* Stable LSD radix sort of n items by key, 16 bits a pass; tmp holds n, count 2^16. */
static void radix_flat(struct flat *v, size_t n, struct flat *tmp, size_t *count)
{
	for (int shift = 0; shift < 64; shift += 16) {
		memset(count, 0, ((size_t)1 << 16) * sizeof(*count));
		for (size_t i = 0; i < n; i++)
			count[(v[i].key >> shift) & 0xffff]++;
		if (count[(v[0].key >> shift) & 0xffff] == n)
			continue; /* every key has this digit: nothing moves */
		size_t sum = 0;
		for (size_t d = 0; d < (1 << 16); d++) {
			size_t c = count[d];
			count[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[count[(v[i].key >> shift) & 0xffff]++] = v[i];
		memcpy(v, tmp, n * sizeof(*v));
	}
}

/*
 * Puts keys in the order a stable sort by site_key_cmp() gives (which is
 * what qsort() gave, glibc's being a stable merge sort): rows that grew or
 * shrank by a stable merge sort, and the unchanged ones, most of a large
 * diff, which all sort between the two, by a radix sort on their innermost
 * two frames, then by merge sort within each run those do not settle.
 * Returns 0 or -ENOMEM (keys untouched).
 */
static int order_keys(struct site_key *keys, size_t n, const struct key_ctx *c)
{
	size_t nflat = 0;
	for (size_t i = 0; i < n; i++)
		nflat += keys[i].bytes == 0 && keys[i].count == 0;
	size_t nmoved = n - nflat;
	struct site_key *out = malloc(n * sizeof(*out));
	struct site_key *tmp = malloc((n / 2 + 1) * sizeof(*tmp));
	struct flat *flat = malloc((nflat ? nflat : 1) * sizeof(*flat));
	struct flat *ftmp = malloc((nflat ? nflat : 1) * sizeof(*ftmp));
	size_t *count = malloc(((size_t)1 << 16) * sizeof(*count));
	if (!out || !tmp || !flat || !ftmp || !count) {
		free(out);
		free(tmp);
		free(flat);
		free(ftmp);
		free(count);
		return -ENOMEM;
	}
	/* The moved rows first, at the front of out, in their own order. */
	size_t m = 0, f = 0;
	for (size_t i = 0; i < n; i++) {
		const struct site_key *x = &keys[i];
		if (x->bytes || x->count) {
			out[m++] = *x;
		} else {
			uint64_t r0 = x->depth > 0 ? (uint64_t)x->rank[0] + 1 : 0;
			uint64_t r1 = x->depth > 1 ? (uint64_t)x->rank[1] + 1 : 0;
			flat[f++] = (struct flat){ r0 << 32 | r1, (uint32_t)i };
		}
	}
	merge_keys(out, nmoved, tmp, c);
	size_t grew = 0; /* moved rows that sort before the unchanged ones */
	while (grew < nmoved && (out[grew].bytes > 0 || (out[grew].bytes == 0 && out[grew].count > 0)))
		grew++;
	memmove(out + grew + nflat, out + grew, (nmoved - grew) * sizeof(*out));
	if (nflat)
		radix_flat(flat, nflat, ftmp, count);
	struct site_key *mid = out + grew;
	for (size_t i = 0; i < nflat; i++)
		mid[i] = keys[flat[i].at];
	/* Equal first frames: the rest of the tracebacks decide. */
	for (size_t i = 0; i < nflat;) {
		size_t j = i + 1;
		while (j < nflat && flat[j].key == flat[i].key)
			j++;
		if (j - i > 1)
			merge_keys(mid + i, j - i, tmp, c);
		i = j;
	}
	memcpy(keys, out, n * sizeof(*keys));
	free(out);
	free(tmp);
	free(flat);
	free(ftmp);
	free(count);
	return 0;
}

/*
 * Works on an array of small keys rather than the rows themselves, then
 * moves each row once to its place.
 */
struct ld_diff_site *ld_sort_sites(const struct ld_keyer *k, struct ld_diff_site *rows, size_t n)
{
	if (n < 2)
		return rows;
	struct site_key *keys = malloc(n * sizeof(*keys));
	if (!keys) {
		qsort_r(rows, n, sizeof(*rows), site_cmp, (void *)k);
		return rows;
	}
	for (size_t i = 0; i < n; i++) {
		const struct ld_diff_site *r = &rows[i];
		keys[i] = (struct site_key){ .bytes = ld_diff_bytes_delta(&r->row),
					     .count = ld_diff_count_delta(&r->row),
					     .depth = r->stack.depth, .row = (uint32_t)i };
		const uint32_t *rank = ld_keyer_side(k, r->stack.snap)->rank;
		for (uint32_t j = 0; j < r->stack.depth && j < KEY_FRAMES; j++)
			keys[i].rank[j] = rank[r->stack.frames[j]];
	}
	const struct key_ctx ctx = { k, rows };
	if (order_keys(keys, n, &ctx) < 0) {
		free(keys);
		qsort_r(rows, n, sizeof(*rows), site_cmp, (void *)k);
		return rows;
	}
	/*
	 * Row keys[j].row belongs at j. Gathered into a new array, the reads
	 * are independent and overlap; without memory for it, each cycle of
	 * the permutation is followed in place, placed rows marked with their
	 * own index.
	 */
	struct ld_diff_site *sorted = malloc(n * sizeof(*sorted));
	if (sorted) {
		for (size_t j = 0; j < n; j++) {
#if defined(__GNUC__)
			if (j + 8 < n)
				__builtin_prefetch(&rows[keys[j + 8].row]);
#endif
			sorted[j] = rows[keys[j].row];
		}
		free(keys);
		free(rows);
		return sorted;
	}
	for (size_t i = 0; i < n; i++) {
		if (keys[i].row == i)
			continue;
		struct ld_diff_site tmp = rows[i];
		size_t j = i;
		while (keys[j].row != i) {
			size_t from = keys[j].row;
			rows[j] = rows[from];
			keys[j].row = (uint32_t)j;
			j = from;
		}
		rows[j] = tmp;
		keys[j].row = (uint32_t)j;
	}
	free(keys);
	return rows;
}
