/*
 * fuzz_native: the native agent's raw document (formats/native.c) and the
 * symbolisation of whatever addresses and module map it holds. Modules may
 * name real files (the seeds name libc and /proc/self/exe), so libdwfl
 * reads real ELF and DWARF at addresses the fuzzer chooses.
 *
 * Oracles: a parsed document gives a snapshot that goes down the read path
 * (common.c); parsing the same document again with the symbolizer kept
 * from the first parse (as the recorder does for the next snapshot of a
 * process) gives the same snapshot, byte for byte once serialised.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "native.h"
#include "snap.h"

static char *serialize(const struct ld_snapshot *s, size_t *len)
{
	char *json = NULL;
	return ld_snap_serialize(s, &json, len) == 0 ? json : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *json = (const char *)data;
	struct ld_symbolizer *sym = NULL;
	struct ld_snapshot *s = NULL, *again = NULL;
	struct ld_error err = { { 0 } };
	(void)ld_native_is_raw(json, size);
	int r = ld_native_parse_with(&sym, json, size, &s, &err);
	if (r < 0) {
		if (s)
			fuzz_fail("ld_native_parse failed (%d) but stored a snapshot", r);
		if (!err.msg[0])
			fuzz_fail("ld_native_parse failed (%d) without a reason", r);
		ld_symbolizer_destroy(sym);
		return 0;
	}
	if (!sym)
		fuzz_fail("ld_native_parse_with succeeded without a symbolizer");
	uint64_t bits = fuzz_bits(data, size);
	fuzz_exercise_snapshot(s, bits);

	/* The next snapshot of the same process: the cached symbolizer. */
	struct ld_error err2 = { { 0 } };
	if (ld_native_parse_with(&sym, json, size, &again, &err2) < 0)
		fuzz_fail("a raw document parsed once fails the second time: %s", err2.msg);
	size_t l1 = 0, l2 = 0;
	char *a = serialize(s, &l1), *b = serialize(again, &l2);
	if (a && b && (l1 != l2 || memcmp(a, b, l1) != 0)) {
		size_t i = 0;
		while (i < l1 && i < l2 && a[i] == b[i])
			i++;
		fuzz_fail("the same raw document gives another snapshot with the symbolizer reused "
			  "(from byte %zu: ...%.60s... vs ...%.60s...)", i, a + i, b + i);
	}
	free(a);
	free(b);
	ld_snapshot_destroy(s);
	ld_snapshot_destroy(again);
	ld_symbolizer_destroy(sym);
	return 0;
}
