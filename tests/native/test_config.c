/*
 * Unit tests for agents/native/config.c, the native agent's settings: the
 * defaults, the KEY=VALUE string form, and the environment form with the
 * messages it queues and the variables it removes. config.c is compiled
 * into this test on its own, without the rest of the agent.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

static const char *const vars[] = {
	"LEAKDIFF_FD", "LEAKDIFF_PIPE", "LEAKDIFF_DEPTH", "LEAKDIFF_SIGNAL",
	"LEAKDIFF_SAMPLE", "LEAKDIFF_FOLLOW_EXEC",
};

static void clear_env(void)
{
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
}

Test(config, defaults)
{
	struct ld_config c;
	ld_config_init(&c);
	cr_assert_eq(c.pipe.fd, -1);
	cr_assert_eq(c.depth, 16);
	cr_assert_eq(c.depth, LD_AGENT_DEFAULT_DEPTH);
	cr_assert_eq(c.sample, 0);
	cr_assert_eq(c.signum, SIGUSR2);
	cr_assert_not(c.follow_exec);
	cr_assert_eq(c.nproblems, 0);
}

Test(config, string_sets_everything)
{
	struct ld_config c;
	ld_config_init(&c);
	cr_assert(ld_config_parse(&c, "fd=5,pipe=2049:123456,depth=8,sample=4096,signal=12,follow_exec=1"));
	cr_assert_eq(c.pipe.fd, 5);
	cr_assert_eq(c.pipe.dev, 2049);
	cr_assert_eq(c.pipe.ino, 123456);
	cr_assert(c.pipe.shared);
	cr_assert_eq(c.depth, 8);
	cr_assert_eq(c.sample, 4096);
	cr_assert_eq(c.signum, 12);
	cr_assert(c.follow_exec);
	cr_assert_eq(c.nproblems, 0, "%s", c.problems[0]);
}

Test(config, string_needs_fd_and_pipe)
{
	struct ld_config c;
	ld_config_init(&c);
	cr_assert_not(ld_config_parse(&c, "depth=4,fd=5"));
	cr_assert_eq(c.pipe.fd, -1);
	cr_assert_eq(c.depth, 4);
	ld_config_init(&c);
	cr_assert_not(ld_config_parse(&c, "fd=5,pipe=12"));
	cr_assert_not(ld_config_parse(&c, "fd=x,pipe=1:2"));
	cr_assert_not(ld_config_parse(&c, ""));
	cr_assert_not(ld_config_parse(&c, NULL));
	cr_assert_eq(c.pipe.fd, -1);
	cr_assert_eq(c.nproblems, 0);
}

Test(config, string_bad_values_keep_defaults)
{
	struct ld_config c;
	ld_config_init(&c);
	cr_assert(ld_config_parse(&c, "depth=0,bogus=1,sample=-1,,signal=9,fd=3,nokey,pipe=1:2"));
	cr_assert_eq(c.depth, 16);
	cr_assert_eq(c.sample, 0);
	cr_assert_eq(c.signum, 0);
	cr_assert_eq(c.nproblems, 4); /* the fifth, for "nokey", is dropped */
	cr_assert_str_eq(c.problems[0], "depth is not a positive whole number; using 16 frames");
	cr_assert_str_eq(c.problems[1], "bogus is not a setting of the agent; it is ignored");
	cr_assert_str_eq(c.problems[2], "sample is not a number of bytes up to 1 TiB; every allocation is recorded");
	cr_assert_str_eq(c.problems[3],
			 "signal is not a signal number that can be caught; snapshots on signal are off");
}

Test(config, string_empty_value_is_the_default_and_depth_is_capped)
{
	struct ld_config c;
	ld_config_init(&c);
	ld_config_parse(&c, "depth=,signal=,depth=5000");
	cr_assert_eq(c.depth, LD_AGENT_MAX_DEPTH);
	cr_assert_eq(c.signum, SIGUSR2);
	cr_assert_eq(c.nproblems, 0);
}

Test(config, environment_is_read_and_removed)
{
	clear_env();
	setenv("LEAKDIFF_FD", "7", 1);
	setenv("LEAKDIFF_PIPE", "3:99", 1);
	setenv("LEAKDIFF_DEPTH", "many", 1);
	setenv("LEAKDIFF_SAMPLE", "512", 1);
	struct ld_config c;
	ld_config_init(&c);
	cr_assert(ld_config_from_env(&c));
	cr_assert_eq(c.pipe.fd, 7);
	cr_assert_eq(c.pipe.dev, 3);
	cr_assert_eq(c.pipe.ino, 99);
	cr_assert_not(c.pipe.shared);
	cr_assert_eq(c.depth, 16);
	cr_assert_eq(c.sample, 512);
	cr_assert_eq(c.signum, SIGUSR2);
	cr_assert_eq(c.nproblems, 1);
	cr_assert_str_eq(c.problems[0], "LEAKDIFF_DEPTH is not a positive whole number; using 16 frames");
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		cr_assert_null(getenv(vars[i]), "%s is still set", vars[i]);
}

Test(config, environment_kept_when_following_exec)
{
	clear_env();
	setenv("LEAKDIFF_FD", "7", 1);
	setenv("LEAKDIFF_PIPE", "3:99", 1);
	setenv("LEAKDIFF_DEPTH", "20", 1);
	setenv("LEAKDIFF_FOLLOW_EXEC", "1", 1);
	struct ld_config c;
	ld_config_init(&c);
	cr_assert(ld_config_from_env(&c));
	cr_assert(c.follow_exec);
	cr_assert(c.pipe.shared);
	cr_assert_eq(c.depth, 20);
	cr_assert_str_eq(getenv("LEAKDIFF_DEPTH"), "20");
	cr_assert_str_eq(getenv("LEAKDIFF_FD"), "7");
	clear_env();
}

Test(config, no_peak_and_no_request_channel_by_default)
{
	struct ld_config c;
	ld_config_init(&c);
	cr_assert_not(c.peak);
	cr_assert_eq(c.request.fd, -1);
	cr_assert(ld_config_parse(&c, "fd=5,pipe=1:2,peak=1"));
	cr_assert(c.peak);
	cr_assert_eq(c.nproblems, 0, "%s", c.problems[0]);
}

Test(config, peak_and_request_channel_from_the_environment)
{
	static const char *const more[] = { "LEAKDIFF_PEAK", "LEAKDIFF_REQUEST_FD", "LEAKDIFF_REQUEST_PIPE" };
	clear_env();
	setenv("LEAKDIFF_FD", "7", 1);
	setenv("LEAKDIFF_PIPE", "3:99", 1);
	setenv("LEAKDIFF_PEAK", "1", 1);
	setenv("LEAKDIFF_REQUEST_FD", "9", 1);
	setenv("LEAKDIFF_REQUEST_PIPE", "3:100", 1);
	struct ld_config c;
	ld_config_init(&c);
	cr_assert(ld_config_from_env(&c));
	cr_assert(c.peak);
	cr_assert_eq(c.request.fd, 9);
	cr_assert_eq(c.request.dev, 3);
	cr_assert_eq(c.request.ino, 100);
	cr_assert_eq(c.pipe.fd, 7);
	cr_assert_eq(c.nproblems, 0, "%s", c.problems[0]);
	for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
		cr_assert_null(getenv(more[i]), "%s is still set", more[i]);
	/* A channel without its identity is no channel. */
	setenv("LEAKDIFF_REQUEST_FD", "9", 1);
	ld_config_init(&c);
	ld_config_from_env(&c);
	cr_assert_eq(c.request.fd, -1);
	cr_assert_not(c.peak);
}

/* Attaching: the FIFO paths are stored as given, and need not fit the old
 * 128-byte item limit; a relative path is refused. */
Test(config, attach_paths)
{
	struct ld_config c;
	ld_config_init(&c);
	cr_assert_str_empty(c.attach_out);
	cr_assert_str_empty(c.attach_in);
	cr_assert_not(c.attached);
	char longdir[300];
	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[0] = '/';
	longdir[sizeof(longdir) - 1] = '\0';
	char s[1024];
	snprintf(s, sizeof(s), "out=%s/events,in=/tmp/x/requests,depth=4", longdir);
	cr_assert_not(ld_config_parse(&c, s)); /* no fd and pipe: not a pipe of the environment kind */
	cr_assert_eq(strlen(c.attach_out), strlen(longdir) + strlen("/events"));
	cr_assert_str_eq(c.attach_in, "/tmp/x/requests");
	cr_assert_eq(c.depth, 4);
	cr_assert_eq(c.nproblems, 0, "%s", c.problems[0]);
	ld_config_init(&c);
	ld_config_parse(&c, "out=events,in=/a");
	cr_assert_str_empty(c.attach_out);
	cr_assert_str_eq(c.attach_in, "/a");
	cr_assert_eq(c.nproblems, 1);
	cr_assert_str_eq(c.problems[0], "out is not an absolute path; it is ignored");
}
