/* Unit tests for core/compat.c: which pairs of snapshots do not belong in one diff. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include "compat.h"

static void check_time(const char *s, int64_t want)
{
	int64_t ms = -1;
	int r = ld_compat_time_parse(s, &ms);
	cr_assert_eq(r, 0, "ld_compat_time_parse(\"%s\") returned %d", s, r);
	cr_assert_eq(ms, want, "ld_compat_time_parse(\"%s\") = %lld, want %lld", s, (long long)ms, (long long)want);
}

Test(compat, time_parse)
{
	check_time("1970-01-01T00:00:00Z", 0);
	check_time("1970-01-01T00:00:01.5Z", 1500);
	check_time("2026-11-28T12:00:01.000Z", INT64_C(1795867201000));
	check_time("2026-11-28T13:00:01.000+01:00", INT64_C(1795867201000));
	check_time("2026-11-28T11:30:01-0030", INT64_C(1795867201000));
	check_time("2024-02-29T00:00:00.123456Z", INT64_C(1709164800123));
	const char *bad[] = { "", "2026-11-28", "2026-11-28T12:00:01", "2026-13-01T00:00:00Z",
			      "2026-11-28T12:00:01.Z", "2026-11-28T12:00:01Zjunk", "yesterday" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t ms = 7;
		cr_assert_eq(ld_compat_time_parse(bad[i], &ms), -EINVAL, "\"%s\" parsed", bad[i]);
	}
	int64_t ms;
	cr_assert_eq(ld_compat_time_parse(NULL, &ms), -EINVAL);
}

static struct ld_snapshot *snap(const char *runtime, const char *time, int64_t pid, int64_t seq, const char *arg)
{
	struct ld_snapshot *s = ld_snapshot_create();
	cr_assert_not_null(s);
	if (runtime)
		cr_assert_eq(ld_meta_set(&s->meta.runtime, runtime), 0);
	if (time)
		cr_assert_eq(ld_meta_set(&s->meta.time, time), 0);
	char *cmd[] = { "python3", (char *)arg };
	cr_assert_eq(ld_meta_set_list(&s->meta.command, &s->meta.ncommand, cmd, 2), 0);
	s->meta.pid = pid;
	s->meta.seq = seq;
	return s;
}

static struct ld_compat check(struct ld_snapshot *a, struct ld_snapshot *b)
{
	struct ld_compat c;
	ld_compat_check(a, b, &c);
	ld_snapshot_destroy(a);
	ld_snapshot_destroy(b);
	return c;
}

Test(compat, runtimes)
{
	struct ld_compat c = check(snap("python", NULL, 1, 1, "a.py"), snap("native", NULL, 2, 1, "a.py"));
	cr_assert(c.runtimes_differ);
	c = check(snap("python", NULL, 1, 1, "a.py"), snap("python", NULL, 2, 1, "a.py"));
	cr_assert(!c.runtimes_differ);
	c = check(snap(NULL, NULL, 1, 1, "a.py"), snap("native", NULL, 2, 1, "a.py"));
	cr_assert(!c.runtimes_differ, "an unknown runtime is not a different one");
}

Test(compat, order_by_time)
{
	struct ld_compat c = check(snap("python", "2026-11-28T12:00:02Z", 1, 1, "a.py"),
				   snap("python", "2026-11-28T12:00:01Z", 2, 1, "a.py"));
	cr_assert_eq(c.order, LD_COMPAT_BY_TIME);
	c = check(snap("python", "2026-11-28T12:00:01Z", 1, 1, "a.py"),
		  snap("python", "2026-11-28T12:00:02Z", 2, 1, "a.py"));
	cr_assert_eq(c.order, LD_COMPAT_IN_ORDER);
	/* Later by the clock wins over a lower snapshot number. */
	c = check(snap("python", "2026-11-28T12:00:01Z", 1, 2, "a.py"),
		  snap("python", "2026-11-28T12:00:02Z", 1, 1, "a.py"));
	cr_assert_eq(c.order, LD_COMPAT_IN_ORDER);
	/* An unreadable time is left out, not taken as reversed. */
	c = check(snap("python", "2026-11-28T12:00:02Z", 1, 1, "a.py"), snap("python", "soon", 2, 1, "a.py"));
	cr_assert_eq(c.order, LD_COMPAT_IN_ORDER);
}

Test(compat, order_by_seq)
{
	struct ld_compat c = check(snap("python", NULL, 7, 3, "a.py"), snap("python", NULL, 7, 2, "a.py"));
	cr_assert_eq(c.order, LD_COMPAT_BY_SEQ);
	c = check(snap("python", "2026-11-28T12:00:01Z", 7, 3, "a.py"),
		  snap("python", "2026-11-28T12:00:01Z", 7, 2, "a.py"));
	cr_assert_eq(c.order, LD_COMPAT_BY_SEQ, "the same time leaves it to the numbers");
	c = check(snap("python", NULL, 7, 2, "a.py"), snap("python", NULL, 7, 3, "a.py"));
	cr_assert_eq(c.order, LD_COMPAT_IN_ORDER);
	c = check(snap("python", NULL, 7, 3, "a.py"), snap("python", NULL, 8, 2, "a.py"));
	cr_assert_eq(c.order, LD_COMPAT_IN_ORDER, "another process");
	c = check(snap("python", NULL, 7, 3, "a.py"), snap("python", NULL, 7, 2, "b.py"));
	cr_assert_eq(c.order, LD_COMPAT_IN_ORDER, "another command, the pid reused");
	c = check(snap("python", NULL, 7, 3, "a.py"), snap("python", NULL, 7, -1, "a.py"));
	cr_assert_eq(c.order, LD_COMPAT_IN_ORDER, "an unknown number");
}
