/*
 * Blind spots of the default Python mode: memory that grew outside every
 * traced allocation site. The Python agent's hooks see Python's MEM and OBJ
 * allocators only; a C extension's own malloc, ctypes and NumPy array data
 * are invisible to them. Each Python snapshot also records what the process
 * had from malloc (totals.malloc_bytes), and this rule compares that
 * growth with the traced heap's growth so that a report can say how much no
 * site explains.
 */
#ifndef LD_CORE_BLIND_H
#define LD_CORE_BLIND_H

#include <stdbool.h>
#include <stdint.h>

#include "snapshot.h"

/*
 * Below this much unexplained growth nothing is said: allocator
 * bookkeeping, interpreter caches and thread stacks move the malloc total
 * by a few hundred KiB between runs of the same pure-Python program.
 */
#define LD_BLIND_MIN_BYTES (UINT64_C(1) << 20)

struct ld_blind {
	int64_t malloc_delta; /* growth of the malloc total, after minus before */
	int64_t heap_delta;   /* growth of the traced heap */
	uint64_t unexplained; /* malloc growth that the traced heap does not account for */
};

/*
 * Whether the malloc total grew clearly more than the traced heap between
 * before and after. Both snapshots must carry totals.malloc_bytes, or the
 * answer is false. unexplained = malloc growth - max(traced growth, 0): a
 * Python block lives in malloc memory (large ones) or in pymalloc's own
 * mapped arenas (small ones, not in the malloc total), so traced growth
 * explains at most its own size of malloc growth, and a shrinking traced
 * heap explains none. The line is reported when unexplained is at least
 * LD_BLIND_MIN_BYTES and at least the traced growth itself (the malloc
 * total grew by twice what was traced, or more). Fills *out (may be NULL)
 * whenever both snapshots carry the total, shown or not; never fails.
 */
/*
 * What the reports say after the figure, as lines of plain text of at most
 * 78 columns in static storage: where such memory comes from and which
 * recording shows its allocation sites. --native tracks the malloc family
 * beside the Python agent, so a native block's site also names the Python
 * line that led to it (these snapshots are always Python ones).
 */
extern const char *const ld_blind_advice[];
extern const size_t ld_blind_advice_lines;

bool ld_blind_check(const struct ld_snapshot *before, const struct ld_snapshot *after,
		    struct ld_blind *out);

#endif
