/*
 * Sizes, counts and durations as people write and read them: parsing the
 * arguments of --min-bytes or --every, and formatting numbers for reports.
 */
#ifndef LD_CORE_UNITS_H
#define LD_CORE_UNITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Parses a byte size: a non-negative number (decimals allowed) with an
 * optional unit B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB. Units are binary
 * (KiB = 1024) whether or not the "i" is written, as in sizes people pass to
 * ulimit or du. Returns 0 and sets *out, or -EINVAL (not a size) or -ERANGE
 * (above 2^63).
 */
int ld_size_parse(const char *s, uint64_t *out);

/*
 * Parses a percentage: digits with an optional decimal fraction and a
 * final '%' (such as 5% or 0.5%), nothing else: no sign, exponent, hex or
 * spaces. Returns 0 and sets *out to the number before the '%', -EINVAL
 * when s is not written that way, or -ERANGE above 1e9 percent.
 */
int ld_percent_parse(const char *s, double *out);

/*
 * Parses a duration: a positive number with unit ms, s, m or h (s when none
 * is given). Returns 0 and sets *ms, or -EINVAL / -ERANGE.
 */
int ld_duration_parse(const char *s, uint64_t *ms);

/*
 * Parses a whole number from 0 to max written in decimal. Returns 0 and sets
 * *out, or -EINVAL / -ERANGE.
 */
int ld_uint_parse(const char *s, uint64_t max, uint64_t *out);

/*
 * Formats bytes as "512 B", "1.5 KiB", "23.4 MiB", with a leading "+" for
 * positive values when sign is true. Always NUL-terminates buf; returns buf.
 */
char *ld_size_format(char *buf, size_t n, int64_t bytes, bool sign);

/* Formats a count with thousands separators ("10,010"), signed like above. */
char *ld_count_format(char *buf, size_t n, int64_t count, bool sign);

#endif
