/*
 * got.h: rewriting the GOT entries of the loaded modules (got.c), for the
 * agent attached to a running process (attach.c).
 */
#ifndef LD_GOT_H
#define LD_GOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent.h"

/* One function to redirect: calls to name go to hook; real is the
 * function the process resolves name to (an entry holding anything else,
 * but a lazy PLT stub, is left alone). */
struct ld_got_hook {
	const char *name;
	uintptr_t hook, real;
};

/*
 * Starts redirecting: remembers the n hooks (the array is the caller's and
 * must stay valid for good) and rewrites the entries of every module loaded
 * now. Returns 0, -ENOMEM when the table of rewritten entries cannot be
 * mapped, or -ENOSYS on an architecture whose relocations it does not know
 * (nothing is rewritten then). Call with ld_track_busy set.
 */
int ld_got_begin(const struct ld_got_hook *hooks, size_t n) LD_HIDDEN;

/* Rewrites the entries of modules loaded since (entries already ours are
 * skipped); does nothing after ld_got_restore(). */
void ld_got_patch(void) LD_HIDDEN;

/*
 * Puts back every entry rewritten since ld_got_begin() that still holds
 * its hook, in the modules still loaded; from then on ld_got_patch() does
 * nothing until the next ld_got_begin(). Safe to call twice.
 */
void ld_got_restore(void) LD_HIDDEN;

/* How many objects the loader has loaded so far (dlpi_adds): a change
 * means there may be modules to patch. */
unsigned long long ld_got_loads(void) LD_HIDDEN;

/* Entries rewritten now, and entries left alone since ld_got_begin(). */
void ld_got_counts(size_t *patched, size_t *left) LD_HIDDEN;

#endif
