/*
 * The tree of a differential flame graph, private to formats/: every site
 * of a diff (suppressed ones left out) laid along its traceback from the
 * outermost frame in, so that each node holds the bytes and blocks of all
 * the sites below it, before and after. Frames are merged as a flame graph
 * merges them, by function (and short file name), whichever snapshot they
 * come from and whichever line of the function they are at (a node keeps
 * the line it was first seen at, and says when others were merged in); a
 * run of the interpreter's own C frames (ld_frame_in_python_runtime()) is one
 * node. The HTML report draws it.
 */
#ifndef LD_FORMATS_FLAME_H
#define LD_FORMATS_FLAME_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diff.h"
#include "hashmap.h"

#define LD_FLAME_NONE UINT32_MAX

struct ld_flame_node {
	const struct ld_snapshot *snap; /* where the frame's strings live; NULL for the root */
	uint32_t frame;                 /* index into snap->frames */
	uint32_t folded;                /* interpreter frames this node stands for; 0 for a plain frame */
	uint32_t parent, child, next;   /* first child and next sibling, or LD_FLAME_NONE */
	uint32_t last;                  /* last child, for appending in order */
	uint64_t before, after, count_before, count_after;
	uint64_t growth;                /* sum of the byte growth of the sites below that grew */
	uint32_t sites;                 /* sites below */
	int loosest;                    /* loosest enum ld_match of a kept site below; -1 when none */
	bool lines;                     /* frames at more than one line were merged here */
};

struct ld_flame {
	struct ld_flame_node *v; /* v[0] is the root */
	size_t n, cap;
	struct ld_hashmap index; /* (parent, frame key) -> node */
};

/*
 * Builds the tree of d's sites into f (caller memory, which need not be
 * set up). For a show report, d is the diff of an empty snapshot against
 * the one shown, so "growth" is the live size. Returns 0, -ENOMEM or
 * -E2BIG (past 2^32 nodes); on failure as on success the caller frees f
 * with ld_flame_finish(). f borrows d's snapshots.
 */
int ld_flame_build(struct ld_flame *f, const struct ld_diff *d);

/* Frees what f holds; safe after a failed build and on a zeroed f. */
void ld_flame_finish(struct ld_flame *f);

/*
 * The tree as JSON for the report's script: an object with "columns" (the
 * names of the fields of a node) and "nodes", an array of arrays, parents
 * before their children, each starting with its parent's index (-1 for
 * the root): parent, name, file, line (0 when unknown), text (the source
 * line, or null), kind, folded, before, after, count_before, count_after,
 * growth, sites, match (the loosest grade, or null) and lines (true when
 * frames at other lines were merged in). The children of a node that would be drawn narrower than
 * min_share of the whole in both widths the page offers (the later size
 * and the growth) are summed into one node named "(N smaller)" per
 * parent, and their subtrees left out, so that a huge diff stays a file a
 * browser opens. Names are valid UTF-8 (not yet escaped for HTML). Returns
 * a new cJSON tree the caller deletes, or NULL when memory ran out.
 */
cJSON *ld_flame_json(const struct ld_flame *f, double min_share);

#endif
