/*
 * fuzz_snap: the .snap reader. The input is tried twice: as a file (gunzip,
 * then parse) and as the uncompressed JSON an agent sends. Whatever parses
 * goes down the whole read path (common.c). Each text is also given to the
 * two readers separately: whatever the scanner takes, the tree reader must
 * take too and read into the same snapshot, down to the layout of its
 * tables.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "snap.h"

/* Far below the 1 GiB default, so that a small gzip bomb stays cheap. */
#define FUZZ_MAX_JSON (UINT64_C(4) << 20)

/* Aborts unless a and b hold the same model, table layout included. */
static void same_model(const struct ld_snapshot *a, const struct ld_snapshot *b)
{
	char *ja, *jb;
	size_t la, lb;
	if (ld_snap_serialize(a, &ja, &la) < 0 || ld_snap_serialize(b, &jb, &lb) < 0)
		fuzz_fail("cannot serialise for the reader comparison");
	if (la != lb || memcmp(ja, jb, la) != 0)
		fuzz_fail("scanner and tree reader read different snapshots");
	free(ja);
	free(jb);
	if (a->strings.n != b->strings.n || a->npool != b->npool || a->nsites != b->nsites ||
	    a->ntype_sites != b->ntype_sites || a->nhints != b->nhints)
		fuzz_fail("scanner and tree reader built tables of different sizes");
	for (size_t i = 0; i < a->strings.n; i++)
		if (a->strings.lens[i] != b->strings.lens[i] ||
		    memcmp(a->strings.strs[i], b->strings.strs[i], a->strings.lens[i]) != 0)
			fuzz_fail("strings[%zu] differs between the readers", i);
	if (a->npool && memcmp(a->pool, b->pool, a->npool * sizeof(*a->pool)) != 0)
		fuzz_fail("the readers laid out tracebacks differently");
	for (size_t i = 0; i < a->nsites; i++)
		if (a->sites[i].stack != b->sites[i].stack)
			fuzz_fail("sites[%zu] points elsewhere in the two readers", i);
	for (size_t i = 0; i < a->ntype_sites; i++)
		if (a->type_sites[i].stack != b->type_sites[i].stack)
			fuzz_fail("type_sites[%zu] points elsewhere in the two readers", i);
	for (size_t i = 0; i < a->nhints; i++)
		if (a->hints[i].path != b->hints[i].path || a->hints[i].name != b->hints[i].name ||
		    a->hints[i].type != b->hints[i].type)
			fuzz_fail("hints[%zu] differs between the readers", i);
}

/* The scanner takes only what the tree reader takes, and reads it the same. */
static void readers_agree(const char *json, size_t len)
{
	struct ld_snapshot *fast = NULL, *tree = NULL;
	struct ld_error ef = { { 0 } }, et = { { 0 } };
	int rf = ld_snap_parse_with(LD_SNAP_READ_SCAN, json, len, &fast, &ef);
	if (rf == -EAGAIN || rf == -ENOMEM)
		return;
	if (rf < 0)
		fuzz_fail("the scanner failed with %d (%s) instead of declining", rf, ef.msg);
	int rt = ld_snap_parse_with(LD_SNAP_READ_TREE, json, len, &tree, &et);
	if (rt < 0)
		fuzz_fail("the scanner took a text the tree reader rejects (%s)", et.msg);
	same_model(fast, tree);
	ld_snapshot_destroy(fast);
	ld_snapshot_destroy(tree);
}

static void parse_and_exercise(const char *json, size_t len, uint64_t bits)
{
	readers_agree(json, len);
	struct ld_snapshot *s = NULL;
	struct ld_error err = { { 0 } };
	int r = ld_snap_parse(json, len, &s, &err);
	if (r < 0) {
		if (s)
			fuzz_fail("ld_snap_parse failed (%d) but stored a snapshot", r);
		if (!err.msg[0])
			fuzz_fail("ld_snap_parse failed (%d) without a reason", r);
		return;
	}
	if (!s)
		fuzz_fail("ld_snap_parse succeeded without a snapshot");
	fuzz_exercise_snapshot(s, bits);
	ld_snapshot_destroy(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t bits = fuzz_bits(data, size);
	char *json = NULL;
	size_t len = 0;
	struct ld_error err = { { 0 } };
	int r = ld_gunzip(data, size, FUZZ_MAX_JSON, &json, &len, &err);
	if (r == 0) {
		if (len > FUZZ_MAX_JSON)
			fuzz_fail("ld_gunzip returned %zu bytes, above its limit", len);
		if (json[len] != '\0')
			fuzz_fail("ld_gunzip output is not NUL-terminated");
		parse_and_exercise(json, len, bits);
		free(json);
	} else if (!err.msg[0]) {
		fuzz_fail("ld_gunzip failed (%d) without a reason", r);
	}
	/*
	 * The raw bytes, exactly size long and not NUL-terminated: the parser
	 * takes a length and must not read past it.
	 */
	parse_and_exercise((const char *)data, size, bits);
	return 0;
}
