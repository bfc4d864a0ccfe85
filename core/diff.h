/*
 * Comparison of two snapshots: growth by type, by allocation site, by type
 * and site, and of the leak hints. A diff borrows both snapshots, which must
 * outlive it, and owns only its own rows. Rows are sorted by byte growth,
 * largest first, with ties broken by count growth and then by name or
 * traceback so that output is stable from run to run.
 */
#ifndef LD_CORE_DIFF_H
#define LD_CORE_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot.h"

enum ld_diff_state {
	LD_DIFF_KEPT, /* present in both snapshots */
	LD_DIFF_NEW,  /* only in the later one */
	LD_DIFF_GONE, /* only in the earlier one */
};

struct ld_diff_row {
	uint64_t bytes_before, bytes_after, count_before, count_after;
};

static inline int64_t ld_diff_bytes_delta(const struct ld_diff_row *r)
{
	return (int64_t)r->bytes_after - (int64_t)r->bytes_before;
}

static inline int64_t ld_diff_count_delta(const struct ld_diff_row *r)
{
	return (int64_t)r->count_after - (int64_t)r->count_before;
}

/* A traceback borrowed from one of the two snapshots, innermost frame first. */
struct ld_diff_stack {
	const struct ld_snapshot *snap;
	const uint32_t *frames;
	uint32_t depth;
};

/*
 * How a site in the later snapshot was paired with one in the earlier: the
 * rungs of graded matching, from strictest to loosest. File names are
 * compared after normalisation (see struct ld_diff_opts) on every rung.
 */
enum ld_match {
	LD_MATCH_EXACT,    /* same file, line and function in every frame */
	LD_MATCH_OFFSET,   /* same function and the same source text of the line, or
			      the same distance from the function's first line */
	LD_MATCH_FILE,     /* same function and file */
	LD_MATCH_FUNCTION, /* same function */
};

struct ld_diff_site {
	struct ld_diff_row row;
	enum ld_diff_state state;
	enum ld_match match; /* meaningful for LD_DIFF_KEPT rows */
	bool suppressed;     /* matched a suppression (see suppress.h) */
	uint32_t grew_in;    /* trends: intervals in which this row grew */
	uint64_t grew_mask;  /* trends: bit i set when it grew in interval i (the first 64) */
	/*
	 * Trends: the row's byte change in each of the first d->nsteps
	 * intervals (signed). Points into d->steps, which the diff owns; NULL
	 * outside a trend.
	 */
	const int64_t *steps;
	struct ld_diff_stack stack;
};

struct ld_diff_type {
	const char *name;
	const char *origin; /* where the type comes from, as a snapshot said; NULL when neither did */
	struct ld_diff_row row;
	enum ld_diff_state state;
	bool suppressed;
	uint32_t grew_in;
	uint64_t grew_mask;
	const int64_t *steps; /* as in struct ld_diff_site */
	struct ld_diff_site *sites; /* where its instances were allocated */
	size_t nsites;
};

struct ld_diff_hint {
	enum ld_hint_kind kind;
	const char *name;       /* container or cache name; "" when none */
	const char *type;       /* container type, or the type for garbage and path */
	enum ld_diff_state state;
	uint64_t before, after; /* length, currsize, count or objects collected */
	int64_t maxsize;        /* lru_cache: -1 when unbounded */
	const struct ld_snapshot *path_snap; /* path hints: where the path lives */
	const uint32_t *path;
	uint32_t path_len;
	int64_t type_count_delta; /* path hints: how the type's object count changed */
};

struct ld_diff {
	const struct ld_snapshot *before, *after;
	struct ld_diff_row heap;    /* traced allocations */
	struct ld_diff_row objects; /* object census */
	struct ld_diff_type *types;
	size_t ntypes;
	struct ld_diff_site *sites;
	size_t nsites;
	struct ld_diff_site *type_sites; /* storage behind types[].sites */
	size_t ntype_sites;
	struct ld_diff_hint *hints;
	size_t nhints;
	uint32_t intervals; /* trends: consecutive pairs compared; 1 for a plain diff */
	/*
	 * Trends: entries in each row's steps, min(intervals, 64); 0 outside a
	 * trend. The rows' steps point into steps, which the diff owns and
	 * ld_diff_destroy() frees; rows with the same key share an array.
	 */
	uint32_t nsteps;
	int64_t *steps;
};

enum ld_match_mode {
	LD_MATCH_GRADED,      /* exact, then offset, then file, then function */
	LD_MATCH_ONLY_EXACT,  /* exact only: any moved line is a gone/new pair */
	LD_MATCH_BY_FUNCTION, /* sites are keyed by their functions alone */
};

struct ld_diff_opts {
	/* Compare tracebacks on their innermost depth frames only; 0 = all. */
	uint32_t depth;
	enum ld_match_mode match;
	/*
	 * Directory prefixes removed from file names before comparing, on top
	 * of the roots each snapshot records (import paths, compilation
	 * directories), so that checkouts in different places compare equal.
	 */
	const char *const *strip;
	size_t nstrip;
};

/*
 * Compares before with after. On success stores a new diff in *out, which
 * the caller frees with ld_diff_destroy(), and returns 0. Returns -ENOMEM
 * (or -E2BIG past 2^32 rows) and stores nothing on failure. opts may be NULL.
 */
int ld_diff_create(const struct ld_snapshot *before, const struct ld_snapshot *after,
		   const struct ld_diff_opts *opts, struct ld_diff **out);

/*
 * Turns d, the diff of snaps[0] against snaps[n-1], into a trend over all n
 * snapshots: every row's grew_in becomes the number of the n-1 consecutive
 * pairs in which it grew, and bit i of its grew_mask is set when it grew
 * in pair i (for the first 64 pairs), so that steady growth (a leak) stands apart from
 * a row that went up and down (noise). Every row's steps then holds its
 * byte change in each of the first d->nsteps pairs (0 where it did not
 * change or was absent on both sides), so a report can draw how much it
 * moved; the arrays belong to d (any from an earlier trend are freed). The
 * snapshots must outlive d. Returns 0, -ENOMEM or -E2BIG (as
 * ld_diff_create()); on failure d is unchanged.
 */
int ld_diff_trend(struct ld_diff *d, const struct ld_snapshot *const *snaps, size_t n,
		  const struct ld_diff_opts *opts);

/* Frees the diff but not the snapshots; d may be NULL. */
void ld_diff_destroy(struct ld_diff *d);

/* True when a row changed at all, in bytes or in count. */
static inline bool ld_diff_row_changed(const struct ld_diff_row *r)
{
	return r->bytes_before != r->bytes_after || r->count_before != r->count_after;
}

/*
 * True when a row belongs in a report: it changed, and its byte change is at
 * least min_bytes either way (the noise floor of --min-bytes).
 */
static inline bool ld_diff_row_selected(const struct ld_diff_row *r, uint64_t min_bytes)
{
	if (!ld_diff_row_changed(r))
		return false;
	int64_t d = ld_diff_bytes_delta(r);
	return (uint64_t)(d < 0 ? -d : d) >= min_bytes;
}

/* Whether a site or type row is reported: selected and not suppressed. */
static inline bool ld_diff_site_shown(const struct ld_diff_site *s, uint64_t min_bytes)
{
	return !s->suppressed && ld_diff_row_selected(&s->row, min_bytes);
}

static inline bool ld_diff_type_shown(const struct ld_diff_type *t, uint64_t min_bytes)
{
	return !t->suppressed && ld_diff_row_selected(&t->row, min_bytes);
}

/* The frame at position i of a diff traceback. */
static inline const struct ld_frame *ld_diff_frame(const struct ld_diff_stack *st, uint32_t i)
{
	return &st->snap->frames[st->frames[i]];
}

/*
 * The type most likely to be the leak: the first (largest byte growth) type
 * whose count grew and that is one of the program's own (ld_type_is_user()
 * in frames.h), not a built-in container or scalar that grows along with
 * whatever leaks.
 * NULL when no such type grew by at least min_bytes.
 */
const struct ld_diff_type *ld_diff_suspect(const struct ld_diff *d, uint64_t min_bytes);

/* Name of a match rung for reports: "exact", "offset", "file", "function". */
const char *ld_diff_match_name(enum ld_match m);

/*
 * Length of root plus its slash when root is a directory prefix of file
 * ("/srv/app" of "/srv/app/x.py" gives 9), else 0.
 */
size_t ld_path_root_len(const char *file, const char *root);

/*
 * The name of a frame's file as the diff compares it: without the longest
 * root of s (or of opts->strip) that prefixes it, and without the version
 * suffix of a shared library ("libfoo.so.1.2" becomes "libfoo.so"). Returns
 * a pointer into file, or into buf (of size n) when the name was rewritten.
 */
const char *ld_diff_normal_path(const struct ld_snapshot *s, const struct ld_diff_opts *opts,
				const char *file, char *buf, size_t n);

/* Name of a state for reports: "kept", "new", "gone". */
const char *ld_diff_state_name(enum ld_diff_state s);


#endif
