/*
 * leakdiff.h: ask leakdiff for a heap snapshot from inside a C or C++
 * program. Under `leakdiff record` the native agent (libleakdiff-preload.so)
 * is preloaded into the program and defines leakdiff_snapshot(); anywhere
 * else the symbol is absent, and because it is declared weak its address is
 * then NULL instead of a link or load error. The program does not link
 * against anything.
 *
 *     #include "leakdiff.h"
 *     ...
 *     leakdiff_snapshot_if_traced("after-warmup");
 *
 * or, spelled out, `if (leakdiff_snapshot) leakdiff_snapshot("after-warmup");`.
 * Calling leakdiff_snapshot() directly without the check crashes a program
 * that runs without the agent.
 *
 * The weak reference is resolved when the program is loaded as long as the
 * calling code is position independent: PIE executables (the default of
 * GCC and Clang on current Linux distributions) and shared libraries. In
 * code compiled with -fno-pie and linked -no-pie the linker settles the
 * address to NULL for good, and the snapshot is never taken.
 */
#ifndef LEAKDIFF_H
#define LEAKDIFF_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Takes a snapshot now, in the calling thread, and sends it to the recorder
 * with trigger "api" and the given label (NULL means ""; the label is
 * copied). Returns when the snapshot has been written. It takes a lock and
 * walks the agent's tables, so it must not be called from a signal handler.
 * Does nothing once the recorder's pipe is gone, in a fork()ed child, or
 * after the at-exit snapshot.
 */
void leakdiff_snapshot(const char *label) __attribute__((weak));

/* leakdiff_snapshot(label) when the agent is loaded; nothing otherwise. */
static inline void leakdiff_snapshot_if_traced(const char *label)
{
	if (leakdiff_snapshot)
		leakdiff_snapshot(label);
}

#ifdef __cplusplus
}
#endif

#endif
