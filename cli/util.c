/* Message printing and other helpers shared by the subcommands. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"
#include "escape.h"

void ld_cli_error(const char *subject, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Subjects are file and command names, which may hold anything. */
	char *safe = subject ? ld_escape_dup(subject, LD_ESCAPE_TEXT) : NULL;
	char *safe_msg = ld_escape_dup(msg, LD_ESCAPE_TEXT);
	fflush(stdout);
	if (subject)
		fprintf(stderr, "leakdiff: %s: %s\n", safe ? safe : "?", safe_msg ? safe_msg : msg);
	else
		fprintf(stderr, "leakdiff: %s\n", safe_msg ? safe_msg : msg);
	free(safe);
	free(safe_msg);
}

int ld_cli_color(const char *when, bool *out)
{
	if (!when || strcmp(when, "auto") == 0) {
		const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
		*out = isatty(STDOUT_FILENO) && !(nc && *nc) && !(term && strcmp(term, "dumb") == 0);
	} else if (strcmp(when, "always") == 0) {
		*out = true;
	} else if (strcmp(when, "never") == 0) {
		*out = false;
	} else {
		return -1;
	}
	return 0;
}

int ld_cli_check_stdout(int err)
{
	static bool reported;
	errno = 0;
	if (fflush(stdout) != 0 && !err)
		err = errno ? errno : EIO;
	if (ferror(stdout) && !err)
		err = EIO; /* failed before, and the errno of then is gone */
	if (!err)
		return 0;
	if (!reported) {
		reported = true;
		ld_cli_error("standard output", "%s", strerror(err));
	}
	return -1;
}

size_t ld_cli_columns(void)
{
	struct winsize ws;
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	const char *env = getenv("COLUMNS");
	if (env && *env) {
		char *end;
		errno = 0;
		unsigned long v = strtoul(env, &end, 10);
		if (!*end && !errno && v > 0 && v <= 100000 && *env != '-')
			return (size_t)v;
	}
	return 80;
}

bool ld_cli_request_snapshot(int qfd, const char *trigger)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "snapshot %s\n", trigger);
	if (n < 0 || (size_t)n >= sizeof(line))
		return false;
	ssize_t w;
	do
		w = write(qfd, line, (size_t)n);
	while (w < 0 && errno == EINTR);
	return w == n;
}
