/*
 * The decision that a diff's two snapshots are empty because the program
 * freed its memory before exiting (see tidy.h). It lives apart from
 * diff.c because it is about how the snapshots were taken, not about
 * what changed between them.
 */
#include <string.h>

#include "tidy.h"

/* An at-exit snapshot of a program that kept almost nothing. */
static bool empty_at_exit(const struct ld_snapshot *s)
{
	const char *trigger = s->meta.trigger;
	return trigger && strcmp(trigger, "exit") == 0 && s->totals.objects == 0 &&
	       s->totals.heap_bytes <= LD_TIDY_MAX_BYTES;
}

bool ld_diff_freed_at_exit(const struct ld_diff *d)
{
	return empty_at_exit(d->before) && empty_at_exit(d->after);
}

/* --peak is the trigger that catches the high point of a short run. */
const char *const ld_tidy_note[] = {
	"Both snapshots were taken at exit and are nearly empty (64 KiB or less",
	"live): the program freed its memory before exiting. To see its heap while",
	"it runs, take snapshots during the run: leakdiff record --every=DURATION or",
	"--peak, kill -USR2 PID, or leakdiff_snapshot(\"label\") in the program.",
};
const size_t ld_tidy_note_lines = sizeof(ld_tidy_note) / sizeof(ld_tidy_note[0]);
