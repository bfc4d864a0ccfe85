/*
 * Growth limits for CI: whether a diff stays within --max-total-growth,
 * --max-site-growth and --max-type-growth, and by how much it does not.
 * Suppressed rows (suppress.h) count against no limit.
 */
#ifndef LD_CORE_VERDICT_H
#define LD_CORE_VERDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diff.h"

struct ld_limits {
	bool total;          /* --max-total-growth given */
	bool total_is_percent;
	uint64_t total_bytes;
	double total_percent;
	bool site;           /* --max-site-growth given */
	uint64_t site_bytes;
	bool type;           /* --max-type-growth given */
	uint64_t type_count;
};

enum ld_limit_kind {
	LD_LIMIT_TOTAL,
	LD_LIMIT_SITE,
	LD_LIMIT_TYPE,
};

struct ld_limit_hit {
	enum ld_limit_kind kind;
	const struct ld_diff_site *site; /* LD_LIMIT_SITE */
	const struct ld_diff_type *type; /* LD_LIMIT_TYPE */
	int64_t value;  /* bytes (total, site) or objects (type) */
	double percent; /* total growth in percent of before; negative when before was 0 */
};

struct ld_verdict {
	bool checked;       /* some limit was given */
	bool heap;          /* the total is traced heap (else the object census) */
	int64_t total_delta; /* the total growth measured, suppressed sites left out */
	struct ld_limit_hit *hits;
	size_t nhits;
};

/*
 * Checks d against lim (which may have no limits, then nothing fails) and
 * fills v, which the caller releases with ld_verdict_finish(). Sites and
 * types are checked in report order, so the largest offenders come first.
 * Returns 0 or -ENOMEM (v is then empty).
 */
int ld_verdict_check(const struct ld_diff *d, const struct ld_limits *lim, struct ld_verdict *v);

/* Frees what ld_verdict_check() stored; v may be NULL. */
void ld_verdict_finish(struct ld_verdict *v);

/* Whether the diff passed: no limit was exceeded. */
static inline bool ld_verdict_passed(const struct ld_verdict *v)
{
	return !v || v->nhits == 0;
}

/*
 * Parses a --max-total-growth argument: a size ("5MiB") or a percentage
 * ("3%", "2.5%"). Returns 0 or -EINVAL.
 */
int ld_limits_parse_total(struct ld_limits *lim, const char *arg);

#endif
