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

struct ld_diff_site {
	struct ld_diff_row row;
	enum ld_diff_state state;
	struct ld_diff_stack stack;
};

struct ld_diff_type {
	const char *name;
	struct ld_diff_row row;
	enum ld_diff_state state;
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
};

struct ld_diff_opts {
	/* Compare tracebacks on their innermost depth frames only; 0 = all. */
	uint32_t depth;
};

/*
 * Compares before with after. On success stores a new diff in *out, which
 * the caller frees with ld_diff_destroy(), and returns 0. Returns -ENOMEM
 * (or -E2BIG past 2^32 rows) and stores nothing on failure. opts may be NULL.
 */
int ld_diff_create(const struct ld_snapshot *before, const struct ld_snapshot *after,
		   const struct ld_diff_opts *opts, struct ld_diff **out);

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

/* The frame at position i of a diff traceback. */
static inline const struct ld_frame *ld_diff_frame(const struct ld_diff_stack *st, uint32_t i)
{
	return &st->snap->frames[st->frames[i]];
}

/*
 * The type most likely to be the leak: the first (largest byte growth) type
 * whose count grew and whose name is module-qualified, that is, not a
 * built-in container or scalar that grows along with whatever leaks.
 * NULL when no such type grew by at least min_bytes.
 */
const struct ld_diff_type *ld_diff_suspect(const struct ld_diff *d, uint64_t min_bytes);

/* Name of a state for reports: "kept", "new", "gone". */
const char *ld_diff_state_name(enum ld_diff_state s);


#endif
