/*
 * The rule behind the report's "native memory grew more than the traced
 * heap explains" line; see blind.h for what it compares and why.
 */
#include "blind.h"

#include <stddef.h>

const char *const ld_blind_advice[] = {
	"No allocation site holds it (a C extension's malloc, ctypes, NumPy data?);",
	"record with --native to see where it was allocated and from which Python line.",
};
const size_t ld_blind_advice_lines = sizeof(ld_blind_advice) / sizeof(ld_blind_advice[0]);

/* after - before of two counts of at most 2^53, which cannot overflow. */
static int64_t delta(uint64_t before, uint64_t after)
{
	return (int64_t)after - (int64_t)before;
}

bool ld_blind_check(const struct ld_snapshot *before, const struct ld_snapshot *after,
		    struct ld_blind *out)
{
	if (!before || !after || !before->totals.has_malloc || !after->totals.has_malloc)
		return false;
	struct ld_blind b = {
		.malloc_delta = delta(before->totals.malloc_bytes, after->totals.malloc_bytes),
		.heap_delta = delta(before->totals.heap_bytes, after->totals.heap_bytes),
	};
	int64_t traced = b.heap_delta > 0 ? b.heap_delta : 0;
	int64_t left = b.malloc_delta - traced;
	b.unexplained = left > 0 ? (uint64_t)left : 0;
	if (out)
		*out = b;
	return b.unexplained >= LD_BLIND_MIN_BYTES && b.unexplained >= (uint64_t)traced;
}
