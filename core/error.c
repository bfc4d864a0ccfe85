/* Filling struct ld_error; see error.h. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

int ld_error_set(struct ld_error *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -code;
}

void ld_error_clear(struct ld_error *err)
{
	if (err)
		err->msg[0] = '\0';
}
