/* Checks shared by the JSON readers; see jsoncheck.h. */
#include "jsoncheck.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

int ld_json_check_nesting(const char *p, size_t len, bool *open, struct ld_error *err)
{
	int depth = 0;
	bool in_str = false;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '[' || c == '{') {
			if (++depth > LD_JSON_MAX_NESTING)
				return ld_error_set(err, EINVAL, "JSON nested deeper than %d levels at byte %zu",
						    LD_JSON_MAX_NESTING, i);
		} else if (c == ']' || c == '}') {
			depth--;
		}
	}
	if (open)
		*open = in_str || depth > 0;
	return 0;
}

int ld_json_reject(struct ld_error *err, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}
