/*
 * Whether a diff compares two snapshots of a program that cleans up after
 * itself: both taken at exit, with next to nothing live. Such a program
 * (jq, most command-line tools) frees everything before it exits, so
 * recording it twice and diffing shows nothing; the reports then say so
 * and point to the snapshots that would show its heap while it runs.
 */
#ifndef LD_CORE_TIDY_H
#define LD_CORE_TIDY_H

#include <stdbool.h>
#include <stddef.h>

#include "diff.h"

/*
 * Live heap bytes an at-exit snapshot may still hold and count as empty:
 * the C library keeps a few buffers (stdio's, the locale's) to the end, and
 * a tidy program may keep a little of its own.
 */
#define LD_TIDY_MAX_BYTES (64 * 1024)

/*
 * True when both snapshots of d were taken at exit (trigger "exit"), have
 * no objects counted and hold at most LD_TIDY_MAX_BYTES of live heap each.
 * d is only read.
 */
bool ld_diff_freed_at_exit(const struct ld_diff *d);

/*
 * The advice the reports print when ld_diff_freed_at_exit() holds: n lines
 * of plain text, none over 78 columns, in static storage. The caller
 * renders each line as its format needs.
 */
extern const char *const ld_tidy_note[];
extern const size_t ld_tidy_note_lines;

#endif
