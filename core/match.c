/*
 * Graded matching of sites across two versions of the code (see match.h),
 * and the names of its rungs. Each rung hashes the rows still "gone" under
 * the keyer's looser key, then lets the "new" rows look themselves up.
 */
#include "match.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"
#include "keyer.h"

const char *ld_diff_match_name(enum ld_match m)
{
	switch (m) {
	case LD_MATCH_OFFSET:
		return "offset";
	case LD_MATCH_FILE:
		return "file";
	case LD_MATCH_FUNCTION:
		return "function";
	default:
		return "exact";
	}
}

/* Sort key for ld_match_graded(): larger new rows choose first, ties in row order. */
struct by_size {
	uint64_t bytes;
	size_t index;
};

static int by_size_cmp(const void *a, const void *b)
{
	const struct by_size *x = a, *y = b;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

int ld_match_graded(struct ld_keyer *k, struct ld_diff_site *rows, size_t *n, const char **keys)
{
	size_t count = *n, nnew = 0, ngone = 0;
	for (size_t i = 0; i < count; i++) {
		nnew += rows[i].state == LD_DIFF_NEW;
		ngone += rows[i].state == LD_DIFF_GONE;
	}
	if (!nnew || !ngone)
		return 0; /* nothing to pair (always so for `leakdiff show`) */
	bool *dead = calloc(count, sizeof(*dead));
	struct by_size *sorted = malloc(nnew * sizeof(*sorted));
	size_t *order = malloc(nnew * sizeof(*order));
	if (!dead || !order || !sorted) {
		free(dead);
		free(order);
		free(sorted);
		return -ENOMEM;
	}
	for (size_t i = 0, j = 0; i < count; i++)
		if (rows[i].state == LD_DIFF_NEW)
			sorted[j++] = (struct by_size){ rows[i].row.bytes_after, i };
	qsort(sorted, nnew, sizeof(*sorted), by_size_cmp);
	for (size_t i = 0; i < nnew; i++)
		order[i] = sorted[i].index;
	free(sorted);
	int r = 0;
	for (int rung = LD_MATCH_OFFSET; rung <= LD_MATCH_FUNCTION && r == 0 && nnew; rung++) {
		k->rung = rung;
		struct ld_hashmap gone;
		ld_hashmap_init(&gone);
		for (size_t i = 0; i < count && r == 0; i++) {
			if (rows[i].state == LD_DIFF_GONE && !dead[i]) {
				uint64_t h = ld_keyer_stack_hash(k, &rows[i].stack);
				if (keys)
					h = ld_hash_mix(h, ld_hash_bytes(keys[i], strlen(keys[i])));
				r = ld_hashmap_insert(&gone, h, (uint32_t)i);
			}
		}
		for (size_t o = 0; o < nnew && r == 0 && gone.len; o++) {
			struct ld_diff_site *nw = &rows[order[o]];
			if (nw->state != LD_DIFF_NEW)
				continue;
			uint64_t h = ld_keyer_stack_hash(k, &nw->stack);
			if (keys)
				h = ld_hash_mix(h, ld_hash_bytes(keys[order[o]], strlen(keys[order[o]])));
			struct ld_hashmap_iter it = LD_HASHMAP_ITER(h);
			uint32_t g, found = LD_KEYER_NOID;
			/* The earliest gone row that fits, whatever order the index holds them in. */
			while (ld_hashmap_next(&gone, &it, &g)) {
				if (g < found && !dead[g] && (!keys || strcmp(keys[g], keys[order[o]]) == 0) &&
				    ld_keyer_stack_equal(k, &nw->stack, &rows[g].stack))
					found = g;
			}
			if (found != LD_KEYER_NOID) {
				g = found;
				nw->row.bytes_before += rows[g].row.bytes_before;
				nw->row.count_before += rows[g].row.count_before;
				nw->state = LD_DIFF_KEPT;
				nw->match = (enum ld_match)rung;
				dead[g] = true;
			}
		}
		ld_hashmap_finish(&gone);
	}
	k->rung = LD_MATCH_EXACT;
	size_t w = 0;
	for (size_t i = 0; i < count; i++) {
		if (dead[i])
			continue;
		rows[w] = rows[i];
		if (keys)
			keys[w] = keys[i];
		w++;
	}
	*n = w;
	free(dead);
	free(order);
	return r;
}
