/*
 * Unit tests for formats/mixed.c: the documents of `leakdiff record
 * --native`, a native raw document and the frames of its Python stacks in
 * front of a Python snapshot, joined into one snapshot; and the rejection
 * of documents that do not hold together.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "mixed.h"
#include "snap.h"
#include "snapshot.h"

/* Addresses in no module: the frames are named by the bare address, and
 * no evaluation loop is found, so a joined site is its Python stack alone. */
#define NATIVE                                                                                   \
	"{\"native\":{\"format\":\"leakdiff-native-raw\",\"version\":1,\"modules\":[],"             \
	"\"sites\":[[3,300,[4096,8192],3,300,7],[2,20,[12288],2,20,0]]},"
#define PYTHON                                                                                   \
	"\"format\":\"leakdiff-snapshot\",\"version\":1,\"meta\":{\"runtime\":\"python\"},"         \
	"\"strings\":[\"app.py\",\"ingest\",\"<module>\",\"python\"],"                               \
	"\"frames\":[[0,10,1,-1,-1,3],[0,20,2,-1,-1,3]],"                                            \
	"\"totals\":{\"heap_bytes\":100,\"heap_blocks\":1,\"objects\":0,\"object_bytes\":0},"       \
	"\"sites\":[[1,100,[0]]]}"

static int parse(const char *json, struct ld_snapshot **out, struct ld_native_merged *m, struct ld_error *err)
{
	struct ld_symbolizer *sym = NULL;
	int r = ld_mixed_parse_with(&sym, json, strlen(json), out, m, err);
	ld_symbolizer_destroy(sym);
	return r;
}

Test(mixed, recognised_by_its_first_member)
{
	const char *doc = NATIVE "\"python_stacks\":[]," PYTHON;
	cr_assert(ld_mixed_is_mixed(doc, strlen(doc)));
	cr_assert_not(ld_mixed_is_mixed(PYTHON, strlen(PYTHON)));
	cr_assert_not(ld_mixed_is_mixed("{\"format\":1}", 12));
}

Test(mixed, native_sites_join_their_python_stacks)
{
	const char *doc = NATIVE "\"python_stacks\":[[7,[0,1]]]," PYTHON;
	struct ld_snapshot *s = NULL;
	struct ld_native_merged m = { 0 };
	struct ld_error err;
	cr_assert_eq(parse(doc, &s, &m, &err), 0, "%s", err.msg);
	cr_assert_eq(m.blocks, 5);
	cr_assert_eq(m.bytes, 320);
	cr_assert_eq(m.python_only, 1, "no evaluation loop among the native frames");
	cr_assert_eq(m.native_only, 1, "the site of stack 0");
	cr_assert_eq(m.spliced, 0);
	cr_assert_eq(s->nsites, 3);
	/* The Python site, then the joined one (its Python stack), then the native one. */
	const struct ld_site *joined = &s->sites[1];
	cr_assert_eq(joined->count, 3);
	cr_assert_eq(joined->bytes, 300);
	cr_assert_eq(joined->depth, 2);
	const uint32_t *st = ld_snapshot_stack(s, joined->stack);
	cr_assert_eq(st[0], 0);
	cr_assert_eq(st[1], 1);
	const struct ld_site *native = &s->sites[2];
	cr_assert_eq(native->count, 2);
	cr_assert_eq(native->depth, 1);
	const struct ld_frame *f = &s->frames[ld_snapshot_stack(s, native->stack)[0]];
	cr_assert_str_eq(ld_snapshot_str(s, f->function), "0x2fff");
	cr_assert_eq(f->kind, LD_FRAME_NATIVE);
	cr_assert_eq(s->totals.heap_bytes, 420);
	cr_assert_eq(s->totals.heap_blocks, 6);
	cr_assert(s->totals.has_native);
	cr_assert_eq(s->totals.native_bytes, 320);
	cr_assert_eq(s->totals.native_blocks, 5);
	cr_assert_str_eq(s->meta.runtime, "python");

	/* The split survives a round trip through the file format. */
	char *out;
	size_t len;
	cr_assert_eq(ld_snap_serialize(s, &out, &len), 0);
	cr_assert_not_null(strstr(out, "\"native_bytes\":320,\"native_blocks\":5"), "%s", out);
	struct ld_snapshot *back = NULL;
	cr_assert_eq(ld_snap_parse(out, len, &back, &err), 0, "%s", err.msg);
	cr_assert(back->totals.has_native);
	cr_assert_eq(back->totals.native_bytes, 320);
	cr_assert_eq(back->totals.native_blocks, 5);
	ld_snapshot_destroy(back);
	free(out);
	ld_snapshot_destroy(s);
}

Test(mixed, a_stack_id_nobody_named_keeps_the_native_frames)
{
	const char *doc = NATIVE "\"python_stacks\":[[8,[0]]]," PYTHON;
	struct ld_snapshot *s = NULL;
	struct ld_native_merged m = { 0 };
	struct ld_error err;
	cr_assert_eq(parse(doc, &s, &m, &err), 0, "%s", err.msg);
	cr_assert_eq(m.native_only, 2);
	cr_assert_eq(s->sites[1].depth, 2, "both addresses, no Python frame");
	ld_snapshot_destroy(s);
}

Test(mixed, documents_that_do_not_hold_together_are_refused)
{
	static const char *const bad[] = {
		/* a frame number past the Python document's frames */
		NATIVE "\"python_stacks\":[[7,[0,2]]]," PYTHON,
		/* no python_stacks */
		NATIVE PYTHON,
		/* a stack id that is no number */
		NATIVE "\"python_stacks\":[[\"7\",[0]]]," PYTHON,
		/* nothing after python_stacks */
		NATIVE "\"python_stacks\":[]}",
		/* cut inside the native part */
		"{\"native\":{\"format\":\"leakdiff-native-raw\",\"version\":1,\"sites\":[[1,",
		/* the native part is not a raw document */
		"{\"native\":{\"format\":\"x\",\"version\":1},\"python_stacks\":[]," PYTHON,
		/* a site's Python stack id that is not a whole number */
		"{\"native\":{\"format\":\"leakdiff-native-raw\",\"version\":1,\"sites\":[[1,1,[4096],1,1,-3]]},"
		"\"python_stacks\":[[7,[0]]]," PYTHON,
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ld_snapshot *s = NULL;
		struct ld_native_merged m = { 0 };
		struct ld_error err;
		cr_assert_eq(parse(bad[i], &s, &m, &err), -EINVAL, "document %zu was taken", i);
		cr_assert_null(s);
		cr_assert(err.msg[0], "document %zu: no reason given", i);
	}
}
