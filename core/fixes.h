/*
 * Suggested fixes for leak hints: for each hint of a diff, the usual remedy
 * of the cause it points at, as one short line, or none when the snapshot
 * does not say enough to pick one. Every report format asks here, so the
 * text, Markdown and JSON reports always agree on the advice.
 */
#ifndef LD_CORE_FIXES_H
#define LD_CORE_FIXES_H

#include <stdbool.h>

#include "diff.h"

/* The causes a hint can be traced to, each with its own remedy. */
enum ld_fix {
	LD_FIX_NONE,       /* nothing to suggest */
	LD_FIX_CONTAINER,  /* a module-level or class-level container that fills up */
	LD_FIX_REGISTRY,   /* a class attribute collecting instances of its class */
	LD_FIX_LRU,        /* an unbounded lru_cache on a plain function */
	LD_FIX_LRU_METHOD, /* an unbounded lru_cache on a method: it holds self too */
	LD_FIX_CYCLES,     /* reference cycles, or uncollectable objects in gc.garbage */
	LD_FIX_EXCEPTIONS, /* exceptions kept with their tracebacks (and frames) */
	LD_FIX_CALLBACKS,  /* functions, closures or bound methods left subscribed */
	LD_FIX_TASKS,      /* asyncio tasks kept in a set after they finished */
};

/*
 * Which cause hint h of diff d points at. The hint must be one of
 * d->hints; only d and its snapshots are read, nothing is allocated.
 *
 * When show is true, d compares one snapshot with an empty one (leakdiff
 * show), so nothing is known about growth: only causes that are wrong at
 * any size get a fix (uncollectable garbage, unbounded caches, retention
 * paths of a recognised shape). Otherwise growth is required: a container,
 * cache or cycle count that did not grow has no fix.
 *
 * The cause is read from what the snapshot records: the hint's kind, the
 * container's name and type, the types along retention paths (a path
 * through a traceback is an exception's; through a function, cell or
 * method held in a container, a callback's; an asyncio task held by a set,
 * a task's), and the types of the diff (a container named Class.attr whose
 * Class grew is a registry of instances). A container that a retention path
 * starts from takes the path's more specific cause; a path of no known
 * shape takes the fix of the container or lru_cache hint at its root.
 */
enum ld_fix ld_hint_fix_kind(const struct ld_diff *d, const struct ld_diff_hint *h, bool show);

/*
 * The one-line suggestion for a cause, a static string in plain text
 * (renderers escape it as their format needs); NULL for LD_FIX_NONE.
 */
const char *ld_fix_text(enum ld_fix f);

/* ld_fix_text(ld_hint_fix_kind(d, h, show)): the suggestion, or NULL. */
const char *ld_hint_fix(const struct ld_diff *d, const struct ld_diff_hint *h, bool show);

#endif
