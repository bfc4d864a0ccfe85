/*
 * fuzz_snap: the .snap reader. The input is tried twice: as a file (gunzip,
 * then parse) and as the uncompressed JSON an agent sends. Whatever parses
 * goes down the whole read path (common.c).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "snap.h"

/* Far below the 1 GiB default, so that a small gzip bomb stays cheap. */
#define FUZZ_MAX_JSON (UINT64_C(4) << 20)

static void parse_and_exercise(const char *json, size_t len, uint64_t bits)
{
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
