/*
 * Shared pieces of the fuzz targets. Each target defines
 * LLVMFuzzerTestOneInput(); it is linked either with libFuzzer (clang,
 * -fsanitize=fuzzer) or with replay.c, a plain main() that runs the seed
 * corpus and the regression inputs so that every CI lane checks them.
 *
 * A target aborts (through fuzz_fail) when an invariant of the library is
 * broken even though nothing crashed: a snapshot that does not survive its
 * own serialisation, a report that is not valid JSON, a terminal report
 * with a raw control character in it. libFuzzer counts that as a crash.
 */
#ifndef LD_FUZZ_H
#define LD_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Prints "fuzz: invariant broken: ..." on stderr and aborts. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * Runs the whole read path after a successful parse of s: serialise, parse
 * again (must succeed and serialise to the same bytes), diff against an
 * empty snapshot and against itself, a trend over three, suppressions and
 * limits, and every renderer, checking what each one writes. bits varies
 * the report options; s is not modified.
 */
void fuzz_exercise_snapshot(const struct ld_snapshot *s, uint64_t bits);

/* A cheap hash of the input, to pick options deterministically. */
uint64_t fuzz_bits(const uint8_t *data, size_t size);

#endif
