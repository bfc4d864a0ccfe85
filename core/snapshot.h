/*
 * The in-memory model of one heap snapshot: metadata, an interned string
 * table, frames, and the type, site and type-by-site tables, gc figures and
 * leak hints. formats/snap.c reads and writes it; core/diff.c compares two.
 * A snapshot owns everything it points to.
 */
#ifndef LD_CORE_SNAPSHOT_H
#define LD_CORE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strtab.h"

/* Largest count or byte total a snapshot may hold: JSON numbers stay exact. */
#define LD_COUNT_MAX (UINT64_C(1) << 53)
/* Longest traceback kept per site. */
#define LD_DEPTH_MAX 1024

/*
 * What a frame is, as its KIND element in the file says (see
 * leakdiff-snapshot(5)). LD_FRAME_UNKNOWN is a frame whose file said
 * nothing (every file written before kinds existed): core/frames.h gives
 * its effective kind. LD_FRAME_OTHER is a name this version does not know,
 * kept so that it is written back unchanged.
 */
enum ld_frame_kind {
	LD_FRAME_UNKNOWN = 0,
	LD_FRAME_PYTHON,
	LD_FRAME_NATIVE,
	LD_FRAME_INLINED,
	LD_FRAME_OTHER,
};

struct ld_frame {
	uint32_t file;     /* string index */
	uint32_t function; /* string index */
	uint32_t text;     /* source text of the line, or LD_NOSTR */
	int32_t line;      /* 0 when unknown */
	int32_t function_line; /* first line of the function, -1 when unknown */
	enum ld_frame_kind kind; /* as the file said; LD_FRAME_UNKNOWN when it did not */
	uint32_t kind_name;      /* string index of the kind's name; unused when unknown */
};

/* A traceback: depth frame indices at stack in the snapshot's pool. */
struct ld_site {
	uint64_t count, bytes;
	uint32_t stack, depth;
};

struct ld_type {
	uint32_t name;
	uint64_t count, bytes;
	/*
	 * String index of where the type comes from as the file said ("user",
	 * "stdlib", "builtin", "extension", or a name a later version adds);
	 * LD_NOSTR when it did not say.
	 */
	uint32_t origin;
};

struct ld_type_site {
	uint32_t type; /* index into types */
	uint64_t count, bytes;
	uint32_t stack, depth;
};

enum ld_hint_kind {
	LD_HINT_CONTAINER, /* name, type, value = length */
	LD_HINT_LRU_CACHE, /* name, value = currsize, maxsize, hits, misses */
	LD_HINT_GARBAGE,   /* type, value = count */
	LD_HINT_CYCLES,    /* value = objects collected */
	LD_HINT_PATH,      /* type, path */
};

struct ld_hint {
	enum ld_hint_kind kind;
	uint32_t name; /* string index or LD_NOSTR */
	uint32_t type; /* string index or LD_NOSTR */
	uint64_t value;
	int64_t maxsize; /* -1: unbounded */
	uint64_t hits, misses;
	uint32_t path, path_len; /* string indices in the pool, root first */
};

struct ld_meta {
	char *runtime, *agent, *executable, *label, *trigger, *time, *host, *python;
	char *tracer; /* Python: "hooks" or "tracemalloc"; NULL when not said */
	char **command;
	size_t ncommand;
	char **roots;
	size_t nroots;
	char **stdlib;
	size_t nstdlib;
	int64_t pid, seq, depth; /* -1 when unknown */
	int64_t sample;          /* native sampling: mean bytes per sample; -1 exact */
	int tracing;             /* -1 unknown, 0, 1 */
	double elapsed_ms;       /* negative when unknown */
	double attached;         /* unix time the agent was attached to a running process; negative when it was not */
};

struct ld_totals {
	uint64_t heap_bytes, heap_blocks, objects, object_bytes;
	/*
	 * What the process had from the C library's malloc when the Python
	 * agent took the snapshot, less the agent's own tables; meaningful
	 * only when has_malloc (older files and native snapshots have none).
	 */
	uint64_t malloc_bytes;
	bool has_malloc;
	/*
	 * Mixed recordings (`leakdiff record --native` of Python): the part of
	 * heap_bytes and heap_blocks that the malloc family gave out directly
	 * (the rest is Python's allocators); meaningful only when has_native.
	 */
	uint64_t native_bytes, native_blocks;
	bool has_native;
};

#define LD_GC_GENERATIONS 8

struct ld_gc {
	bool present;
	int enabled; /* -1 unknown */
	uint64_t collected, uncollectable, garbage;
	size_t ngenerations;
	struct {
		uint64_t collections, collected, uncollectable;
	} generations[LD_GC_GENERATIONS];
};

struct ld_snapshot {
	struct ld_meta meta;
	struct ld_strtab strings;
	struct ld_frame *frames;
	size_t nframes, frames_cap;
	uint32_t *pool; /* frame indices of stacks; string indices of paths */
	size_t npool, pool_cap;
	struct ld_site *sites;
	size_t nsites, sites_cap;
	struct ld_type *types;
	size_t ntypes, types_cap;
	struct ld_type_site *type_sites;
	size_t ntype_sites, type_sites_cap;
	struct ld_hint *hints;
	size_t nhints, hints_cap;
	struct ld_totals totals;
	struct ld_gc gc;
};

/* Name of a hint kind as the snapshot format spells it ("container", ...). */
const char *ld_hint_kind_name(enum ld_hint_kind k);

/* Allocates an empty snapshot (unknown metadata), or returns NULL. */
struct ld_snapshot *ld_snapshot_create(void);

/* Frees s and all it owns; s may be NULL. */
void ld_snapshot_destroy(struct ld_snapshot *s);

/*
 * The add functions append one row, copying what they are given. Indices
 * are not checked here (the reader checks them before calling). Each returns
 * 0 or -ENOMEM, leaving the table as it was on failure.
 */
int ld_snapshot_add_frame(struct ld_snapshot *s, const struct ld_frame *f, uint32_t *idx);
int ld_snapshot_add_site(struct ld_snapshot *s, uint64_t count, uint64_t bytes,
			 const uint32_t *frames, uint32_t depth);
/* ld_snapshot_add_type() adds a type of unknown origin; the caller may set it after. */
int ld_snapshot_add_type(struct ld_snapshot *s, uint32_t name, uint64_t count, uint64_t bytes);
int ld_snapshot_add_type_site(struct ld_snapshot *s, uint32_t type, uint64_t count,
			      uint64_t bytes, const uint32_t *frames, uint32_t depth);
int ld_snapshot_add_hint(struct ld_snapshot *s, const struct ld_hint *h,
			 const uint32_t *path, uint32_t path_len);

/* The frame indices of a site or type site's traceback. */
static inline const uint32_t *ld_snapshot_stack(const struct ld_snapshot *s, uint32_t stack)
{
	/* A snapshot whose stacks are all empty has no pool at all. */
	return s->pool ? s->pool + stack : NULL;
}

/* Shorthand for the string table. */
static inline const char *ld_snapshot_str(const struct ld_snapshot *s, uint32_t idx)
{
	return ld_strtab_get(&s->strings, idx);
}

/*
 * Replaces *field with a copy of value (NULL clears it). Returns 0 or
 * -ENOMEM, in which case *field is unchanged.
 */
int ld_meta_set(char **field, const char *value);

/*
 * Replaces a string list (command, roots, stdlib) with copies of the n
 * strings in v. Returns 0 or -ENOMEM, leaving the old list on failure.
 */
int ld_meta_set_list(char ***list, size_t *nlist, char *const *v, size_t n);

#endif
