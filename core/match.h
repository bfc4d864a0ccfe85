/*
 * Graded matching, internal to core/: after exact matching has folded the
 * sites of two snapshots into rows, pairs the rows left "new" with rows
 * left "gone" that are the same code moved or edited, rung by rung (see
 * enum ld_match in diff.h).
 */
#ifndef LD_CORE_MATCH_H
#define LD_CORE_MATCH_H

#include <stddef.h>

#include "diff.h"

struct ld_keyer;

/*
 * Pairs the n site rows in rows that exact matching left as "new" and
 * "gone": a line that moved, then a line that changed, then a function that
 * moved to another file. Larger new rows choose first, each taking the
 * earliest gone row that fits. A paired new row becomes "kept", takes its
 * partner's "before" figures and the rung it matched at; the partner is
 * removed and *n shrinks. keys, when not NULL, holds a type name per row
 * (type sites): rows pair only under the same name, and keys move with
 * their rows.
 *
 * k must be the keyer of both snapshots with LD_KEYER_CLASSES; its rung
 * changes during the pass and is LD_MATCH_EXACT afterwards. Returns 0 or
 * -ENOMEM; after a failure the rows may be partly paired, so the caller
 * discards them. Allocates nothing that outlives the call.
 */
int ld_match_graded(struct ld_keyer *k, struct ld_diff_site *rows, size_t *n, const char **keys);

#endif
