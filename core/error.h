/*
 * Error detail for library calls. Library functions return 0 or a negative
 * errno; when they fail they may also leave a one-line, lower-case message
 * without a trailing full stop in a caller-owned struct ld_error, which the
 * command line prefixes with the program and file name.
 */
#ifndef LD_CORE_ERROR_H
#define LD_CORE_ERROR_H

#include <stddef.h>

struct ld_error {
	char msg[512];
};

/*
 * Formats a message into err (which may be NULL, then nothing is stored) and
 * returns -code, so callers can write `return ld_error_set(err, EINVAL, ...)`.
 * code is a positive errno value.
 */
int ld_error_set(struct ld_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Empties err so that a later check can tell whether a message was left. */
void ld_error_clear(struct ld_error *err);

#endif
