/* Growth limits; see verdict.h. */
#include "verdict.h"

#include <errno.h>
#include <string.h>

#include "array.h"
#include "units.h"

int ld_limits_parse_total(struct ld_limits *lim, const char *arg)
{
	size_t n = strlen(arg);
	if (n > 0 && arg[n - 1] == '%') {
		double v;
		if (ld_percent_parse(arg, &v) < 0)
			return -EINVAL;
		lim->total = true;
		lim->total_is_percent = true;
		lim->total_percent = v;
		return 0;
	}
	uint64_t bytes;
	if (ld_size_parse(arg, &bytes) < 0)
		return -EINVAL;
	lim->total = true;
	lim->total_is_percent = false;
	lim->total_bytes = bytes;
	return 0;
}

static int add_hit(struct ld_verdict *v, size_t *cap, struct ld_limit_hit hit)
{
	if (LD_ARRAY_RESERVE(v->hits, *cap, v->nhits + 1) < 0)
		return -ENOMEM;
	v->hits[v->nhits++] = hit;
	return 0;
}

int ld_verdict_check(const struct ld_diff *d, const struct ld_limits *lim, struct ld_verdict *v)
{
	memset(v, 0, sizeof(*v));
	size_t cap = 0;
	v->checked = lim && (lim->total || lim->site || lim->type);
	/* The heap is what grows; the census stands in when nothing was traced. */
	v->heap = d->heap.bytes_before || d->heap.bytes_after;
	const struct ld_diff_row *tot = v->heap ? &d->heap : &d->objects;
	int64_t delta = ld_diff_bytes_delta(tot);
	if (v->heap)
		for (size_t i = 0; i < d->nsites; i++)
			if (d->sites[i].suppressed)
				delta -= ld_diff_bytes_delta(&d->sites[i].row);
	v->total_delta = delta;
	if (!v->checked)
		return 0;

	if (lim->total) {
		double pct = tot->bytes_before ? 100.0 * (double)delta / (double)tot->bytes_before : -1;
		bool over = lim->total_is_percent ? (delta > 0 && (pct < 0 || pct > lim->total_percent))
						  : delta > 0 && (uint64_t)delta > lim->total_bytes;
		if (over && add_hit(v, &cap, (struct ld_limit_hit){ .kind = LD_LIMIT_TOTAL, .value = delta,
								  .percent = pct }) < 0)
			goto oom;
	}
	if (lim->site) {
		for (size_t i = 0; i < d->nsites; i++) {
			const struct ld_diff_site *s = &d->sites[i];
			int64_t g = ld_diff_bytes_delta(&s->row);
			if (!s->suppressed && g > 0 && (uint64_t)g > lim->site_bytes &&
			    add_hit(v, &cap, (struct ld_limit_hit){ .kind = LD_LIMIT_SITE, .site = s, .value = g }) < 0)
				goto oom;
		}
	}
	if (lim->type) {
		for (size_t i = 0; i < d->ntypes; i++) {
			const struct ld_diff_type *t = &d->types[i];
			int64_t g = ld_diff_count_delta(&t->row);
			if (!t->suppressed && g > 0 && (uint64_t)g > lim->type_count &&
			    add_hit(v, &cap, (struct ld_limit_hit){ .kind = LD_LIMIT_TYPE, .type = t, .value = g }) < 0)
				goto oom;
		}
	}
	return 0;
oom:
	ld_verdict_finish(v);
	return -ENOMEM;
}

void ld_verdict_finish(struct ld_verdict *v)
{
	if (!v)
		return;
	free(v->hits);
	v->hits = NULL;
	v->nhits = 0;
}
