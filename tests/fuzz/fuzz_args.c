/*
 * fuzz_args: what users type, parsed by core/units.c, core/verdict.c and
 * core/suppress.c. The input is split at NUL bytes: the first part is the
 * argument for the size, duration, number and limit parsers and also the
 * text of a suppression file; the other parts are names to match.
 *
 * Oracles: a parse that succeeds consumed a string of the documented form
 * and gave the value a plain reading gives; a suppression line holding a
 * name matches that name; the formatters always NUL-terminate.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "suppress.h"
#include "units.h"
#include "verdict.h"

#define TWO53 (UINT64_C(1) << 53)

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* "12", "1.5", ".5", "3." : digits with at most one dot, at least one digit. */
static const char *skip_number(const char *s)
{
	int digits = 0;
	while (*s >= '0' && *s <= '9') {
		s++;
		digits++;
	}
	if (*s == '.') {
		s++;
		while (*s >= '0' && *s <= '9') {
			s++;
			digits++;
		}
	}
	return digits ? s : NULL;
}

static void check_size(const char *s)
{
	uint64_t v = 0;
	int r = ld_size_parse(s, &v);
	if (r != 0 && r != -EINVAL && r != -ERANGE)
		fuzz_fail("ld_size_parse(\"%s\") returned %d", s, r);
	if (r < 0)
		return;
	const char *u = skip_number(s);
	if (!u)
		fuzz_fail("ld_size_parse accepted \"%s\", which does not start with a number", s);
	while (*u == ' ')
		u++;
	static const char *const units[] = { "", "b", "k", "kb", "kib", "m", "mb", "mib",
					     "g", "gb", "gib", "t", "tb", "tib" };
	bool known = false;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		known |= strcasecmp(u, units[i]) == 0;
	if (!known)
		fuzz_fail("ld_size_parse accepted \"%s\" with unit \"%s\"", s, u);
	if (v > (UINT64_C(1) << 63))
		fuzz_fail("ld_size_parse(\"%s\") gave %llu, above 2^63", s, (unsigned long long)v);
	if (all_digits(s)) {
		errno = 0;
		unsigned long long want = strtoull(s, NULL, 10);
		if (errno == 0 && want < TWO53 && v != want)
			fuzz_fail("ld_size_parse(\"%s\") gave %llu", s, (unsigned long long)v);
	}
}

static void check_duration(const char *s)
{
	uint64_t ms = 0;
	int r = ld_duration_parse(s, &ms);
	if (r != 0 && r != -EINVAL && r != -ERANGE)
		fuzz_fail("ld_duration_parse(\"%s\") returned %d", s, r);
	if (r < 0)
		return;
	const char *u = skip_number(s);
	if (!u || !(strcmp(u, "") == 0 || strcmp(u, "s") == 0 || strcmp(u, "ms") == 0 ||
		    strcmp(u, "m") == 0 || strcmp(u, "min") == 0 || strcmp(u, "h") == 0))
		fuzz_fail("ld_duration_parse accepted \"%s\"", s);
	if (ms < 1 || ms > UINT64_C(1000000000000000))
		fuzz_fail("ld_duration_parse(\"%s\") gave %llu ms", s, (unsigned long long)ms);
	if (all_digits(s) && strlen(s) < 10 && ms != strtoull(s, NULL, 10) * 1000)
		fuzz_fail("ld_duration_parse(\"%s\") gave %llu ms", s, (unsigned long long)ms);
}

static void check_uint(const char *s, uint64_t max)
{
	uint64_t v = 0;
	int r = ld_uint_parse(s, max, &v);
	if (!all_digits(s)) {
		/* Digits that overflow before the junk may be either error. */
		if (r != -EINVAL && r != -ERANGE)
			fuzz_fail("ld_uint_parse(\"%s\") returned %d, not -EINVAL", s, r);
		return;
	}
	errno = 0;
	unsigned long long want = strtoull(s, NULL, 10);
	int expect = errno == ERANGE || want > max ? -ERANGE : 0;
	if (r != expect || (r == 0 && v != want))
		fuzz_fail("ld_uint_parse(\"%s\", %llu) returned %d (%llu)", s, (unsigned long long)max, r,
			  (unsigned long long)v);
}

static void check_limit(const char *s)
{
	struct ld_limits lim;
	memset(&lim, 0xa5, sizeof(lim));
	lim.total = false;
	int r = ld_limits_parse_total(&lim, s);
	if (r != 0 && r != -EINVAL)
		fuzz_fail("ld_limits_parse_total(\"%s\") returned %d", s, r);
	if (r < 0)
		return;
	if (!lim.total)
		fuzz_fail("ld_limits_parse_total(\"%s\") succeeded without setting a limit", s);
	if (lim.total_is_percent && (!isfinite(lim.total_percent) || lim.total_percent < 0 ||
				     lim.total_percent > 1e9))
		fuzz_fail("ld_limits_parse_total(\"%s\") gave %g%%", s, lim.total_percent);
	if (!lim.total_is_percent && lim.total_bytes > (UINT64_C(1) << 63))
		fuzz_fail("ld_limits_parse_total(\"%s\") gave %llu bytes", s, (unsigned long long)lim.total_bytes);
}

static void check_format(const uint8_t *data, size_t size)
{
	int64_t v = 0;
	memcpy(&v, data, size < sizeof(v) ? size : sizeof(v));
	char buf[64], small[5];
	for (int sign = 0; sign < 2; sign++) {
		memset(buf, 'x', sizeof(buf));
		ld_size_format(buf, sizeof(buf), v, sign);
		if (!memchr(buf, '\0', sizeof(buf)))
			fuzz_fail("ld_size_format(%lld) is not NUL-terminated", (long long)v);
		ld_size_format(small, sizeof(small), v, sign);
		if (!memchr(small, '\0', sizeof(small)))
			fuzz_fail("ld_size_format into 5 bytes is not NUL-terminated");
		memset(buf, 'x', sizeof(buf));
		ld_count_format(buf, sizeof(buf), v, sign);
		/* The digits, without the separators, are the number. */
		char digits[64];
		size_t n = 0;
		for (const char *p = buf; *p && n + 1 < sizeof(digits); p++)
			if (*p != ',')
				digits[n++] = *p;
		digits[n] = '\0';
		char want[64];
		if (v > 0 && sign)
			snprintf(want, sizeof(want), "+%lld", (long long)v);
		else
			snprintf(want, sizeof(want), "%lld", (long long)v);
		if (strcmp(digits, want) != 0)
			fuzz_fail("ld_count_format(%lld, %d) gave \"%s\"", (long long)v, sign, buf);
		ld_count_format(small, sizeof(small), v, sign);
		if (!memchr(small, '\0', sizeof(small)))
			fuzz_fail("ld_count_format into 5 bytes is not NUL-terminated");
	}
}

/* Whether "type:NAME" written on a line of its own stands for NAME itself. */
static bool literal_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 4000 || name[0] == '^' || name[n - 1] == '$')
		return false;
	char last = name[n - 1];
	if (last == ' ' || last == '\t' || last == '\r')
		return false;
	return strchr(name, '\n') == NULL;
}

static void check_suppressions(const char *text, size_t textlen, const uint8_t *data, size_t size,
			       char **names, size_t nnames)
{
	struct ld_suppressions s;
	struct ld_error err = { { 0 } };
	ld_suppressions_init(&s);
	int r = ld_suppressions_parse(&s, text, textlen, &err);
	if (r != 0 && r != -EINVAL && r != -ENOMEM)
		fuzz_fail("ld_suppressions_parse returned %d", r);
	if (r < 0 && !err.msg[0])
		fuzz_fail("ld_suppressions_parse failed without a reason");
	/* Patterns added before a bad line stay; matching them must be safe. */
	for (size_t i = 0; i < nnames; i++) {
		ld_suppressions_match(&s, LD_SUPPRESS_TYPE, names[i]);
		ld_suppressions_match(&s, LD_SUPPRESS_FUNCTION, names[i]);
		ld_suppressions_match(&s, LD_SUPPRESS_FILE, names[i]);
	}
	ld_suppressions_finish(&s);

	/* The whole input, NUL bytes included, must be refused when it has one. */
	ld_suppressions_init(&s);
	r = ld_suppressions_parse(&s, (const char *)data, size, &err);
	if (r == 0 && memchr(data, '\0', size))
		fuzz_fail("ld_suppressions_parse accepted a NUL byte");
	ld_suppressions_finish(&s);

	for (size_t i = 0; i < nnames; i++) {
		if (!literal_name(names[i]))
			continue;
		size_t len = strlen(names[i]);
		char *line = malloc(len + 16);
		if (!line)
			return;
		snprintf(line, len + 16, "type:^%s$\n", names[i]);
		ld_suppressions_init(&s);
		r = ld_suppressions_parse(&s, line, strlen(line), &err);
		if (r == 0 && !ld_suppressions_match(&s, LD_SUPPRESS_TYPE, names[i]))
			fuzz_fail("suppression \"%s\" does not match the name it holds", line);
		if (r == 0 && !strpbrk(names[i], "*?") && ld_suppressions_match(&s, LD_SUPPRESS_FUNCTION, names[i]))
			fuzz_fail("type suppression \"%s\" matches a function", line);
		ld_suppressions_finish(&s);
		free(line);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Split at NUL bytes into owned, NUL-terminated parts. */
	char *copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	char *names[16];
	size_t nnames = 0;
	for (char *p = copy + strlen(copy); p < copy + size && nnames < 16; p += strlen(p)) {
		p++;
		names[nnames++] = p;
	}
	const char *arg = copy;
	uint64_t max = fuzz_bits(data, size);

	check_size(arg);
	check_duration(arg);
	check_uint(arg, UINT64_MAX);
	check_uint(arg, max >> (max & 63));
	check_limit(arg);
	check_format(data, size);
	check_suppressions(arg, strlen(arg), data, size, names, nnames);
	free(copy);
	return 0;
}
