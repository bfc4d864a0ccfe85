/* Unit tests for core/units.c: parsing and formatting sizes, counts, durations. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "units.h"

#define KiB UINT64_C(1024)
#define MiB (KiB * 1024)
#define GiB (MiB * 1024)
#define TiB (GiB * 1024)

static void check_size(const char *s, uint64_t want)
{
	uint64_t v = 12345;
	int r = ld_size_parse(s, &v);
	cr_assert_eq(r, 0, "ld_size_parse(\"%s\") returned %d", s, r);
	cr_assert_eq(v, want, "ld_size_parse(\"%s\") = %llu, want %llu", s, (unsigned long long)v,
		     (unsigned long long)want);
}

static void check_size_err(const char *s, int want)
{
	uint64_t v = 777;
	int r = ld_size_parse(s, &v);
	cr_assert_eq(r, want, "ld_size_parse(\"%s\") returned %d, want %d", s, r, want);
	cr_assert_eq(v, 777, "ld_size_parse(\"%s\") changed *out on failure", s);
}

Test(size_parse, plain_numbers)
{
	check_size("0", 0);
	check_size("1", 1);
	check_size("4096", 4096);
	check_size("4096B", 4096);
	check_size("4096 b", 4096);
}

Test(size_parse, binary_units_with_and_without_i)
{
	check_size("64KiB", 64 * KiB);
	check_size("64k", 64 * KiB);
	check_size("64K", 64 * KiB);
	check_size("64kb", 64 * KiB);
	check_size("1.5MiB", 3 * MiB / 2);
	check_size("1.5m", 3 * MiB / 2);
	check_size("2G", 2 * GiB);
	check_size("2gib", 2 * GiB);
	check_size("1TiB", TiB);
	check_size("1T", TiB);
	check_size("10 MB", 10 * MiB);
	check_size("0.5K", 512);
	check_size(".5K", 512);
}

Test(size_parse, largest_accepted_value)
{
	/* 2^23 TiB is 2^63, which no longer fits: one TiB less does. */
	check_size("8388607T", (UINT64_C(1) << 63) - TiB);
	check_size_err("8388608T", -ERANGE);
}

Test(size_parse, rejects_garbage)
{
	check_size_err("", -EINVAL);
	check_size_err("-1", -EINVAL);
	check_size_err("+1", -EINVAL);
	check_size_err("abc", -EINVAL);
	check_size_err("1XB", -EINVAL);
	check_size_err("1.2.3", -EINVAL);
	check_size_err(".", -EINVAL);
	check_size_err("KiB", -EINVAL);
	check_size_err(" 1", -EINVAL);
	check_size_err("1 KiB x", -EINVAL);
	check_size_err("1e3", -EINVAL);
	uint64_t v = 5;
	cr_assert_eq(ld_size_parse(NULL, &v), -EINVAL);
	cr_assert_eq(v, 5);
}

Test(size_parse, overflow_is_erange)
{
	check_size_err("99999999999T", -ERANGE);
	check_size_err("99999999999999999999", -ERANGE);
	check_size_err("9223372036854775808", -ERANGE);
}

static void check_duration(const char *s, uint64_t want)
{
	uint64_t ms = 999999;
	int r = ld_duration_parse(s, &ms);
	cr_assert_eq(r, 0, "ld_duration_parse(\"%s\") returned %d", s, r);
	cr_assert_eq(ms, want, "ld_duration_parse(\"%s\") = %llu ms, want %llu", s,
		     (unsigned long long)ms, (unsigned long long)want);
}

static void check_duration_err(const char *s, int want)
{
	uint64_t ms = 31337;
	int r = ld_duration_parse(s, &ms);
	cr_assert_eq(r, want, "ld_duration_parse(\"%s\") returned %d, want %d", s, r, want);
	cr_assert_eq(ms, 31337, "ld_duration_parse(\"%s\") changed *ms on failure", s);
}

Test(duration_parse, units)
{
	check_duration("10s", 10000);
	check_duration("500ms", 500);
	check_duration("5m", 300000);
	check_duration("5min", 300000);
	check_duration("1h", 3600000);
	check_duration("2", 2000);
	check_duration("1.5s", 1500);
	check_duration("1ms", 1);
}

Test(duration_parse, rejects_zero_and_garbage)
{
	check_duration_err("0", -EINVAL);
	check_duration_err("0s", -EINVAL);
	check_duration_err("0.4ms", -EINVAL);
	check_duration_err("10x", -EINVAL);
	check_duration_err("", -EINVAL);
	check_duration_err("-5s", -EINVAL);
	check_duration_err("s", -EINVAL);
	check_duration_err("10S", -EINVAL);
	uint64_t ms = 1;
	cr_assert_eq(ld_duration_parse(NULL, &ms), -EINVAL);
}

Test(duration_parse, absurdly_long_is_erange)
{
	check_duration_err("1000000000000h", -ERANGE);
}

Test(uint_parse, accepts_decimal_up_to_max)
{
	uint64_t v = 1;
	cr_assert_eq(ld_uint_parse("0", 10, &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(ld_uint_parse("10", 10, &v), 0);
	cr_assert_eq(v, 10);
	cr_assert_eq(ld_uint_parse("007", 10, &v), 0);
	cr_assert_eq(v, 7);
	cr_assert_eq(ld_uint_parse("18446744073709551615", UINT64_MAX, &v), 0);
	cr_assert_eq(v, UINT64_MAX);
}

Test(uint_parse, rejects)
{
	uint64_t v = 42;
	cr_assert_eq(ld_uint_parse("11", 10, &v), -ERANGE);
	cr_assert_eq(ld_uint_parse("18446744073709551616", UINT64_MAX, &v), -ERANGE);
	cr_assert_eq(ld_uint_parse("99999999999999999999999", UINT64_MAX, &v), -ERANGE);
	cr_assert_eq(ld_uint_parse("", 10, &v), -EINVAL);
	cr_assert_eq(ld_uint_parse("-1", 10, &v), -EINVAL);
	cr_assert_eq(ld_uint_parse("+1", 10, &v), -EINVAL);
	cr_assert_eq(ld_uint_parse(" 1", 10, &v), -EINVAL);
	cr_assert_eq(ld_uint_parse("1 ", 10, &v), -EINVAL);
	cr_assert_eq(ld_uint_parse("1.0", 10, &v), -EINVAL);
	cr_assert_eq(ld_uint_parse("0x10", 100, &v), -EINVAL);
	cr_assert_eq(ld_uint_parse(NULL, 10, &v), -EINVAL);
	cr_assert_eq(v, 42, "*out changed on failure");
}

static void check_size_fmt(int64_t bytes, bool sign, const char *want)
{
	char buf[32];
	memset(buf, 'X', sizeof(buf));
	char *r = ld_size_format(buf, sizeof(buf), bytes, sign);
	cr_assert_eq(r, buf);
	cr_assert_str_eq(buf, want, "ld_size_format(%lld, %d) = \"%s\", want \"%s\"", (long long)bytes,
			 sign, buf, want);
}

Test(size_format, bytes)
{
	check_size_fmt(0, false, "0 B");
	check_size_fmt(0, true, "0 B");
	check_size_fmt(1, false, "1 B");
	check_size_fmt(512, false, "512 B");
	check_size_fmt(1023, false, "1023 B");
}

Test(size_format, three_significant_digits)
{
	check_size_fmt(1024, false, "1.00 KiB");
	check_size_fmt(1536, false, "1.50 KiB");
	check_size_fmt(10234, false, "9.99 KiB");   /* 9.994 KiB */
	check_size_fmt(10235, false, "10.0 KiB");   /* 9.995 KiB rounds to 10.0 */
	check_size_fmt(102348, false, "99.9 KiB");  /* 99.949 KiB */
	check_size_fmt(102349, false, "100 KiB");   /* 99.950 KiB */
	check_size_fmt(500 * 1024, false, "500 KiB");
	check_size_fmt(1023385, false, "999 KiB");  /* 999.399 KiB */
	check_size_fmt((int64_t)(23.4 * 1048576), false, "23.4 MiB");
	check_size_fmt((int64_t)GiB, false, "1.00 GiB");
	check_size_fmt((int64_t)(5 * TiB), false, "5.00 TiB");
}

Test(size_format, never_four_digits_before_the_unit)
{
	/* 999.5 KiB would print as "1000 KiB": it moves up to MiB instead. */
	check_size_fmt(1023488, false, "0.98 MiB");
	check_size_fmt(1048575, false, "1.00 MiB");
	check_size_fmt(1048576, false, "1.00 MiB");
	for (int64_t b = 1024; b < 64 * 1048576; b = b * 9 / 8 + 7) {
		char buf[32];
		ld_size_format(buf, sizeof(buf), b, false);
		const char *sp = strchr(buf, ' ');
		cr_assert_not_null(sp, "no unit in \"%s\"", buf);
		cr_assert_leq(sp - buf, 4, "\"%s\" for %lld bytes is too wide", buf, (long long)b);
	}
}

Test(size_format, sign)
{
	check_size_fmt(1536, true, "+1.50 KiB");
	check_size_fmt(-1536, true, "-1.50 KiB");
	check_size_fmt(-1536, false, "-1.50 KiB");
	check_size_fmt(-1, false, "-1 B");
	check_size_fmt(100, true, "+100 B");
}

Test(size_format, extremes)
{
	check_size_fmt(INT64_MAX, false, "8.00 EiB");
	check_size_fmt(INT64_MIN, false, "-8.00 EiB");
}

Test(size_format, truncates_to_buffer)
{
	char buf[4];
	ld_size_format(buf, sizeof(buf), 1536, false);
	cr_assert_str_eq(buf, "1.5");
}

static void check_count_fmt(int64_t count, bool sign, const char *want)
{
	char buf[40];
	memset(buf, 'X', sizeof(buf));
	char *r = ld_count_format(buf, sizeof(buf), count, sign);
	cr_assert_eq(r, buf);
	cr_assert_str_eq(buf, want, "ld_count_format(%lld, %d) = \"%s\", want \"%s\"", (long long)count,
			 sign, buf, want);
}

Test(count_format, separators)
{
	check_count_fmt(0, false, "0");
	check_count_fmt(7, false, "7");
	check_count_fmt(999, false, "999");
	check_count_fmt(1000, false, "1,000");
	check_count_fmt(10010, false, "10,010");
	check_count_fmt(123456, false, "123,456");
	check_count_fmt(1234567, false, "1,234,567");
	check_count_fmt(-1234567, false, "-1,234,567");
	check_count_fmt(-999, false, "-999");
}

Test(count_format, sign)
{
	check_count_fmt(10010, true, "+10,010");
	check_count_fmt(0, true, "0");
	check_count_fmt(-5, true, "-5");
}

Test(count_format, extremes)
{
	check_count_fmt(INT64_MAX, true, "+9,223,372,036,854,775,807");
	check_count_fmt(INT64_MIN, false, "-9,223,372,036,854,775,808");
}

Test(count_format, truncates_to_buffer)
{
	char buf[4];
	ld_count_format(buf, sizeof(buf), 123456, false);
	cr_assert_str_eq(buf, "123");
}

Test(percent_parse, decimal_percentages_only)
{
	double v = -1;
	cr_assert_eq(ld_percent_parse("5%", &v), 0);
	cr_assert_float_eq(v, 5.0, 1e-12);
	cr_assert_eq(ld_percent_parse("0.25%", &v), 0);
	cr_assert_float_eq(v, 0.25, 1e-12);
	cr_assert_eq(ld_percent_parse("1000000000%", &v), 0);
	/* What strtod would have taken: hex, exponents, signs, spaces, inf. */
	static const char *bad[] = { "%", "0x10%", "1e1%", "+5%", "-5%", " 5%", "\t5%", "5 %",
				     "inf%", "nan%", "5%%", "5", "", "5%x" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 777;
		cr_assert_eq(ld_percent_parse(bad[i], &v), -EINVAL, "accepted \"%s\"", bad[i]);
		cr_assert_float_eq(v, 777, 1e-12, "changed *out for \"%s\"", bad[i]);
	}
	cr_assert_eq(ld_percent_parse("1000000001%", &v), -ERANGE);
}
