/* Checks that two snapshots make a sensible diff; see compat.h. */
#include "compat.h"

#include <errno.h>
#include <string.h>

/* Reads exactly n digits at *p, moving past them. */
static bool digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];
		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool expect(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

/* Days from 1970-01-01 to the given civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int ld_compat_time_parse(const char *s, int64_t *ms)
{
	int y, mo, d, h, mi, sec;
	const char *p = s;
	if (!s || !digits(&p, 4, &y) || !expect(&p, '-') || !digits(&p, 2, &mo) || !expect(&p, '-') ||
	    !digits(&p, 2, &d) || !(expect(&p, 'T') || expect(&p, 't') || expect(&p, ' ')) ||
	    !digits(&p, 2, &h) || !expect(&p, ':') || !digits(&p, 2, &mi) || !expect(&p, ':') ||
	    !digits(&p, 2, &sec))
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	int64_t frac = 0;
	if (*p == '.') {
		p++;
		int n = 0;
		for (; *p >= '0' && *p <= '9'; p++, n++)
			if (n < 3)
				frac = frac * 10 + (*p - '0');
		if (n == 0)
			return -EINVAL;
		for (; n < 3; n++)
			frac *= 10;
	}
	int64_t offset = 0; /* minutes east of UTC */
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om;
		if (!digits(&p, 2, &oh))
			return -EINVAL;
		(void)expect(&p, ':'); /* "+0100" as well as "+01:00" */
		if (!digits(&p, 2, &om) || oh > 23 || om > 59)
			return -EINVAL;
		offset = sign * (oh * 60 + om);
	} else {
		return -EINVAL; /* a local time without a zone compares with nothing */
	}
	if (*p)
		return -EINVAL;
	int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset * 60;
	*ms = secs * 1000 + frac;
	return 0;
}

static bool same_command(const struct ld_meta *a, const struct ld_meta *b)
{
	if (a->ncommand != b->ncommand || a->ncommand == 0)
		return false;
	for (size_t i = 0; i < a->ncommand; i++)
		if (strcmp(a->command[i], b->command[i]) != 0)
			return false;
	return true;
}

void ld_compat_check(const struct ld_snapshot *before, const struct ld_snapshot *after, struct ld_compat *out)
{
	const struct ld_meta *a = &before->meta, *b = &after->meta;
	memset(out, 0, sizeof(*out));
	out->runtimes_differ = a->runtime && b->runtime && *a->runtime && *b->runtime &&
			       strcmp(a->runtime, b->runtime) != 0;
	int64_t ta, tb;
	if (ld_compat_time_parse(a->time, &ta) == 0 && ld_compat_time_parse(b->time, &tb) == 0) {
		if (tb < ta) {
			out->order = LD_COMPAT_BY_TIME;
			return;
		}
		if (tb > ta)
			return; /* the clocks said which came first; numbers cannot overrule them */
	}
	/* Snapshot numbers count within one run only: the same process, the
	 * same command, on the same host when both say which. */
	bool hosts_agree = !a->host || !b->host || strcmp(a->host, b->host) == 0;
	if (a->pid >= 0 && a->pid == b->pid && hosts_agree && same_command(a, b) && a->seq >= 0 && b->seq >= 0 &&
	    b->seq < a->seq)
		out->order = LD_COMPAT_BY_SEQ;
}
