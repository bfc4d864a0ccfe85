/* Parsing and formatting of sizes, counts and durations; see units.h. */
#include "units.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Reads a non-negative decimal number with an optional fraction. */
static int parse_number(const char **sp, double *out)
{
	const char *s = *sp;
	double v = 0;
	int digits = 0;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (*s++ - '0');
		digits++;
	}
	if (*s == '.') {
		double scale = 0.1;
		s++;
		while (*s >= '0' && *s <= '9') {
			v += (*s++ - '0') * scale;
			scale /= 10;
			digits++;
		}
	}
	if (!digits)
		return -EINVAL;
	*sp = s;
	*out = v;
	return 0;
}

int ld_size_parse(const char *s, uint64_t *out)
{
	static const struct {
		const char *name;
		double mult;
	} units[] = {
		{ "", 1 }, { "b", 1 },
		{ "k", 1024.0 }, { "kb", 1024.0 }, { "kib", 1024.0 },
		{ "m", 1048576.0 }, { "mb", 1048576.0 }, { "mib", 1048576.0 },
		{ "g", 1073741824.0 }, { "gb", 1073741824.0 }, { "gib", 1073741824.0 },
		{ "t", 1099511627776.0 }, { "tb", 1099511627776.0 }, { "tib", 1099511627776.0 },
	};
	double v;
	if (!s || parse_number(&s, &v) < 0)
		return -EINVAL;
	while (*s == ' ')
		s++;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(s, units[i].name) == 0) {
			double bytes = v * units[i].mult;
			if (bytes >= 9223372036854775808.0)
				return -ERANGE;
			*out = (uint64_t)llround(bytes);
			return 0;
		}
	}
	return -EINVAL;
}

int ld_percent_parse(const char *s, double *out)
{
	double v;
	if (!s || parse_number(&s, &v) < 0 || strcmp(s, "%") != 0)
		return -EINVAL;
	if (v > 1e9)
		return -ERANGE;
	*out = v;
	return 0;
}

int ld_duration_parse(const char *s, uint64_t *ms)
{
	double v;
	if (!s || parse_number(&s, &v) < 0)
		return -EINVAL;
	double mult;
	if (!*s || strcmp(s, "s") == 0)
		mult = 1000;
	else if (strcmp(s, "ms") == 0)
		mult = 1;
	else if (strcmp(s, "m") == 0 || strcmp(s, "min") == 0)
		mult = 60000;
	else if (strcmp(s, "h") == 0)
		mult = 3600000;
	else
		return -EINVAL;
	double t = v * mult;
	if (t < 1)
		return -EINVAL;
	if (t > 1e15)
		return -ERANGE;
	*ms = (uint64_t)llround(t);
	return 0;
}

int ld_uint_parse(const char *s, uint64_t max, uint64_t *out)
{
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	uint64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

char *ld_size_format(char *buf, size_t n, int64_t bytes, bool sign)
{
	static const char *const names[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	const char *prefix = bytes < 0 ? "-" : (sign && bytes > 0 ? "+" : "");
	/* Work on the magnitude; -INT64_MIN does not fit, so go through double. */
	double mag = bytes < 0 ? -(double)bytes : (double)bytes;
	if (mag < 1024) {
		snprintf(buf, n, "%s%.0f B", prefix, mag);
		return buf;
	}
	int u = -1;
	/* Move up a unit before rounding would print four digits ("1015 KiB"). */
	while (mag >= 999.5 && u < 5) {
		mag /= 1024;
		u++;
	}
	/* Three significant digits read best in a column. */
	if (mag < 9.995)
		snprintf(buf, n, "%s%.2f %s", prefix, mag, names[u]);
	else if (mag < 99.95)
		snprintf(buf, n, "%s%.1f %s", prefix, mag, names[u]);
	else
		snprintf(buf, n, "%s%.0f %s", prefix, mag, names[u]);
	return buf;
}

char *ld_count_format(char *buf, size_t n, int64_t count, bool sign)
{
	char digits[32];
	uint64_t mag = count < 0 ? (uint64_t)0 - (uint64_t)count : (uint64_t)count;
	snprintf(digits, sizeof(digits), "%llu", (unsigned long long)mag);
	char tmp[48];
	size_t len = strlen(digits), o = 0;
	if (count < 0)
		tmp[o++] = '-';
	else if (sign && count > 0)
		tmp[o++] = '+';
	for (size_t i = 0; i < len; i++) {
		if (i && (len - i) % 3 == 0)
			tmp[o++] = ',';
		tmp[o++] = digits[i];
	}
	tmp[o] = '\0';
	snprintf(buf, n, "%s", tmp);
	return buf;
}
