/*
 * The snapshot document of a mixed recording (`leakdiff record --native` of
 * a Python program): the Python agent's document with two members in
 * front, put there by the agent (agents/python/leakdiff/_hooks.py):
 *
 *   {"native": RAW, "python_stacks": [[ID, [FRAME, ...]], ...], ...}
 *
 * RAW is the native agent's raw document (formats/native.h), each site
 * with the id of a Python stack as its sixth element; python_stacks gives
 * each id's frames as indices into the Python document's frames; the rest
 * is an ordinary snapshot document. The recorder turns it into one
 * snapshot holding both halves.
 */
#ifndef LD_FORMATS_MIXED_H
#define LD_FORMATS_MIXED_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "native.h"
#include "snapshot.h"
#include "symbolize.h"

/* True when the document starts as a mixed one does. */
bool ld_mixed_is_mixed(const char *json, size_t len);

/*
 * Parses a mixed document of len bytes: the Python part as ld_snap_parse()
 * would, then the native sites symbolised (reusing *sym as
 * ld_native_parse_with() does) and joined to their Python stacks by
 * ld_native_merge(), which also fills in *merged. On success stores the
 * snapshot in *out (the caller destroys it) and returns 0; otherwise
 * stores nothing and returns -EINVAL or -ENOMEM with the reason in err.
 */
int ld_mixed_parse_with(struct ld_symbolizer **sym, const char *json, size_t len, struct ld_snapshot **out,
			struct ld_native_merged *merged, struct ld_error *err);

#endif
