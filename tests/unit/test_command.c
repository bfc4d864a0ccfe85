/* Unit tests for the command line and cut names of the reports (formats/report_common.c). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "report_common.h"

static char *command(char *const *argv, size_t n, size_t max_cols)
{
	struct ld_buf b;
	ld_buf_init(&b);
	ld_report_command(&b, argv, n, max_cols);
	cr_assert(!b.oom);
	char *s = ld_buf_detach(&b, NULL);
	return s ? s : strdup("");
}

static void check_command(char *const *argv, size_t n, size_t max_cols, const char *want)
{
	char *got = command(argv, n, max_cols);
	cr_assert_str_eq(got, want);
	cr_assert_leq(ld_text_width(got), max_cols < 24 ? 24 : max_cols, "\"%s\" is wider than %zu", got, max_cols);
	free(got);
}

Test(command, quoting)
{
	char *plain[] = { "python3", "app/server.py", "--requests=1,000", "a@b:c%d+e" };
	check_command(plain, 4, 200, "python3 app/server.py --requests=1,000 a@b:c%d+e");
	char *spaces[] = { "sh", "-c", "echo hi; ls", "", "it's" };
	check_command(spaces, 5, 200, "sh -c 'echo hi; ls' '' 'it'\\''s'");
	char *backslash[] = { "printf", "a\\nb" };
	check_command(backslash, 2, 200, "printf 'a\\nb'");
	char *controls[] = { "printf", "a\nb", "\x1b[2J", "it's\tx", "\xff" };
	check_command(controls, 5, 200, "printf $'a\\nb' $'\\x1b[2J' $'it\\'s\\tx' $'\\xff'");
	char *bidi[] = { "x", "abc\xe2\x80\xae" "def" };
	check_command(bidi, 2, 200, "x $'abc\\u{202e}def'");
}

Test(command, shortened)
{
	char *argv[] = { "prog", "aaaa", "bbbb", "cccc", "dddd", "eeee", "ffff", "gggg" };
	check_command(argv, 8, 200, "prog aaaa bbbb cccc dddd eeee ffff gggg");
	/* 24 columns: the words that fit with the mark after them. */
	check_command(argv, 8, 24, "prog … (+7 arguments)");
	check_command(argv, 8, 30, "prog aaaa … (+6 arguments)");
	/* The last word needs no room for a mark. */
	check_command(argv, 2, 24, "prog aaaa");
	char *one[] = { "prog", "x" };
	check_command(one, 2, 9, "prog x");
	char *longname[] = { "/opt/very/long/path/to/a/program/binary", "--flag" };
	check_command(longname, 2, 30, "/opt/very/long/… (+1 argument)");
	char *alone[] = { "/opt/very/long/path/to/a/program/binary" };
	check_command(alone, 1, 24, "/opt/very/long/path/to/…");
}

static void check_cut(const char *s, size_t cols, const char *want)
{
	struct ld_buf b;
	ld_buf_init(&b);
	ld_report_cut(&b, s, cols);
	char *got = ld_buf_detach(&b, NULL);
	cr_assert_str_eq(got ? got : "", want);
	free(got);
}

Test(command, cut)
{
	check_cut("short", 10, "short");
	check_cut("exactly10!", 10, "exactly10!");
	check_cut("abcdefghijklmnopqrstuvwxyz", 10, "abc…uvwxyz");
	check_cut("ééééééééééééé", 7, "éé…éééé");
}
