/*
 * Whether two snapshots belong in one diff. A diff of a Python snapshot
 * against a native one compares tables that have nothing in common, and a
 * diff of a later snapshot against an earlier one reports every change
 * with the wrong sign; both look like ordinary reports, so the command line
 * warns about them. This module only finds the problems; it prints nothing.
 */
#ifndef LD_CORE_COMPAT_H
#define LD_CORE_COMPAT_H

#include <stdbool.h>
#include <stdint.h>

#include "snapshot.h"

/* How a reversed pair was found out. */
enum ld_compat_order {
	LD_COMPAT_IN_ORDER,  /* nothing says the pair is reversed */
	LD_COMPAT_BY_TIME,   /* meta.time of after is earlier than that of before */
	LD_COMPAT_BY_SEQ,    /* one run (same pid and command), after's meta.seq is lower */
};

struct ld_compat {
	bool runtimes_differ;        /* meta.runtime is given in both and differs */
	enum ld_compat_order order;  /* LD_COMPAT_IN_ORDER unless after was taken first */
};

/*
 * Compares the metadata of before and after (which stay the caller's) and
 * fills *out with what is wrong with diffing them in that order. Missing
 * metadata counts as nothing wrong; a time that does not parse as an ISO
 * 8601 UTC or offset time is ignored. Never fails.
 */
void ld_compat_check(const struct ld_snapshot *before, const struct ld_snapshot *after, struct ld_compat *out);

/*
 * Parses an ISO 8601 date and time as snapshots write it
 * ("2026-11-28T12:00:01.000Z", or with an offset such as "+01:00") into
 * milliseconds since the epoch. Returns 0, or -EINVAL for anything else.
 */
int ld_compat_time_parse(const char *s, int64_t *ms);

#endif
