/*
 * The frame keyer: internal to core/, not part of diff.h's API and free to
 * change with the diff (a report that needs frames keyed across snapshots,
 * such as a differential flame graph, may include it). It interns every
 * name the comparison looks at, across a set of snapshots with separate
 * string tables, so that two frames, or two tracebacks, compare as
 * integers: equal ids mean equal strings. The diff (diff.c), graded
 * matching (match.c), the sorts (sort.c) and trends (trend.c) all work on
 * its keys; a flame graph can build its tree of frames from them too,
 * since a frame's function and normalised file ids name the same code in
 * every snapshot of the set.
 *
 * A keyer borrows its snapshots and its options, which must outlive it.
 */
#ifndef LD_CORE_KEYER_H
#define LD_CORE_KEYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diff.h"
#include "hashmap.h"

/* No id: a frame without source text, a string not interned yet. */
#define LD_KEYER_NOID UINT32_MAX

/* An interned name, borrowed from a snapshot or from the keyer's own copies. */
struct ld_keyer_str {
	const char *s;
	size_t len;
};

/* Every interned name of a keyer; ids index v and stay below UINT32_MAX - 1. */
struct ld_keyer_ids {
	struct ld_keyer_str *v;
	size_t n, cap;
	struct ld_hashmap index;
};

/* What comparing needs of one frame, names as ids. */
struct ld_fkey {
	uint32_t function, file; /* file: the normalised name (ld_diff_normal_path()) */
	uint32_t text;           /* LD_KEYER_NOID when the frame has no source text */
	int32_t line, function_line;
	bool text_set;           /* has a source text that is not empty */
};

/* One snapshot's frames, keyed. */
struct ld_keyer_side {
	const struct ld_snapshot *s;
	char **owned;        /* normalised file names the keyer had to rewrite, which ids borrow */
	size_t nowned;
	struct ld_fkey *key; /* per frame */
	uint32_t *cls;       /* per frame: exact-rung class (LD_KEYER_CLASSES), else NULL */
	uint32_t *rank;      /* per frame: place in the order of (raw file, line, function)
				(LD_KEYER_RANKS), else NULL */
};

/*
 * Frames of every side grouped by function, normalised file and line: the
 * exact rung matches two frames when they are in the same class and their
 * source texts, where both have one, agree. A class whose frames all carry
 * the same text (or none) needs no text test; only a mixed one does, since
 * "no text" matches any text and so is not an equivalence.
 */
struct ld_keyer_classes {
	uint32_t *function, *file, *text;
	int32_t *line;
	bool *mixed;
	size_t n, cap;
	struct ld_hashmap index;
};

/* What ld_keyer_init() prepares besides the frames' keys. */
enum {
	LD_KEYER_CLASSES = 1 << 0, /* exact-rung classes, for stack hashing and equality */
	LD_KEYER_RANKS = 1 << 1,   /* frame ranks, for ld_keyer_stack_compare() */
};

struct ld_keyer {
	struct ld_keyer_side *sides; /* one per distinct snapshot, in the order given */
	size_t nsides;
	struct ld_keyer_ids ids;
	struct ld_keyer_classes cls;
	const struct ld_diff_opts *opts;
	/*
	 * The enum ld_match that stack hashing and equality compare at. The
	 * caller may change it between uses (graded matching climbs the
	 * rungs); every rung but LD_MATCH_FUNCTION needs LD_KEYER_CLASSES.
	 */
	int rung;
};

/*
 * Keys every frame of the n snapshots (a snapshot given twice is keyed
 * once) under opts, which must not be NULL, and prepares what `what` asks
 * for (LD_KEYER_* flags). The rung starts at LD_MATCH_FUNCTION when
 * opts->match is LD_MATCH_BY_FUNCTION, else at LD_MATCH_EXACT. Returns 0,
 * -ENOMEM or -E2BIG (past 2^32 names or classes); on failure as on success
 * the caller releases k with ld_keyer_finish().
 */
int ld_keyer_init(struct ld_keyer *k, const struct ld_snapshot *const *snaps, size_t n,
		  const struct ld_diff_opts *opts, unsigned what);

/* Frees what the keyer holds (not the snapshots); safe after a failed init. */
void ld_keyer_finish(struct ld_keyer *k);

/*
 * Interns a string the keyer does not own, which must outlive it (a type
 * name borrowed from a snapshot, say): equal content gives the id of any
 * frame name with the same content. Returns 0, -ENOMEM or -E2BIG.
 */
int ld_keyer_intern(struct ld_keyer *k, const char *s, size_t len, uint32_t *id);

/* The side of snapshot s, which must be one of the keyer's. */
static inline const struct ld_keyer_side *ld_keyer_side(const struct ld_keyer *k, const struct ld_snapshot *s)
{
	const struct ld_keyer_side *sd = k->sides, *last = k->sides + k->nsides - 1;
	while (sd != last && sd->s != s)
		sd++;
	return sd;
}

/* The key of frame i of a traceback. */
static inline const struct ld_fkey *ld_keyer_frame(const struct ld_keyer *k, const struct ld_diff_stack *st,
						   uint32_t i)
{
	return &ld_keyer_side(k, st->snap)->key[st->frames[i]];
}

/* Hash of a traceback at the keyer's rung: tracebacks equal at a rung hash alike. */
uint64_t ld_keyer_stack_hash(const struct ld_keyer *k, const struct ld_diff_stack *st);

/* Whether two tracebacks are the same at the keyer's rung. */
bool ld_keyer_stack_equal(const struct ld_keyer *k, const struct ld_diff_stack *x, const struct ld_diff_stack *y);

/*
 * Orders tracebacks by file, line and function (names in strcmp order),
 * innermost frame first, from frame `from` on; needs LD_KEYER_RANKS.
 * Returns <0, 0 or >0 as strcmp() does.
 */
int ld_keyer_stack_compare_from(const struct ld_keyer *k, const struct ld_diff_stack *x,
				const struct ld_diff_stack *y, uint32_t from);

static inline int ld_keyer_stack_compare(const struct ld_keyer *k, const struct ld_diff_stack *x,
					 const struct ld_diff_stack *y)
{
	return ld_keyer_stack_compare_from(k, x, y, 0);
}

#endif
