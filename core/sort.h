/*
 * The diff's sorts, internal to core/: frames into traceback order (for the
 * keyer's ranks) and site rows into report order. Every comparison that
 * needs the keyer gets it as an argument; nothing is kept between calls, so
 * any number of threads may sort at once.
 */
#ifndef LD_CORE_SORT_H
#define LD_CORE_SORT_H

#include <stddef.h>
#include <stdint.h>

#include "diff.h"

struct ld_keyer;

/* A frame in the order tracebacks sort by: raw file name, line, function name. */
struct ld_frame_order {
	uint32_t file, function; /* ranks of the names in strcmp order */
	int32_t line;
	uint32_t side, frame;    /* where the frame is: keyer side and frame index */
};

/* qsort() comparison of two struct ld_frame_order by file, line and function. */
int ld_frame_order_cmp(const void *a, const void *b);

/*
 * Sorts n frames by ld_frame_order_cmp(), stably, with a radix sort
 * (hundreds of thousands of frames: several times faster than qsort()).
 * Returns 0, or -ENOMEM with fo untouched.
 */
int ld_sort_frames(struct ld_frame_order *fo, size_t n);

/*
 * The order of every table's rows: byte growth, largest first, then count
 * growth. Returns <0, 0 or >0; 0 leaves the tie to the table's own key.
 */
int ld_growth_compare(const struct ld_diff_row *a, const struct ld_diff_row *b);

/*
 * The order of site rows in a report: byte growth, largest first, then
 * count growth, then traceback order under the keyer k (which needs
 * LD_KEYER_RANKS). Returns <0, 0 or >0.
 */
int ld_site_compare(const struct ld_diff_site *x, const struct ld_diff_site *y, const struct ld_keyer *k);

/*
 * Sorts n site rows, stably, by ld_site_compare() under k, and returns
 * them: in rows, or in a new array that replaces rows (which is then
 * freed). The caller owns the result either way. Never fails: short of
 * memory for its faster path, it sorts the rows in place with qsort_r().
 */
struct ld_diff_site *ld_sort_sites(const struct ld_keyer *k, struct ld_diff_site *rows, size_t n);

#endif
