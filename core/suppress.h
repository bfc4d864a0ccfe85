/*
 * Suppressions: patterns for growth that is known and accepted, so that it
 * neither shows in a report nor fails a limit. The file format is one
 * pattern per line, "#" comments, and the "leak:" lines of a
 * LeakSanitizer suppression file taken as they are (lines for other
 * sanitizers, such as "race:", are skipped).
 */
#ifndef LD_CORE_SUPPRESS_H
#define LD_CORE_SUPPRESS_H

#include <stdbool.h>
#include <stddef.h>

#include "diff.h"
#include "error.h"

enum ld_suppress_kind {
	LD_SUPPRESS_ANY,      /* "leak:" or no prefix: type, function or file */
	LD_SUPPRESS_TYPE,     /* "type:" */
	LD_SUPPRESS_FUNCTION, /* "function:" */
	LD_SUPPRESS_FILE,     /* "file:" */
};

struct ld_suppressions {
	char **patterns;
	enum ld_suppress_kind *kinds;
	size_t n, cap, kinds_cap;
};

/* Sets up an empty list in caller memory. */
void ld_suppressions_init(struct ld_suppressions *s);

/* Frees the patterns; s may be NULL. */
void ld_suppressions_finish(struct ld_suppressions *s);

/*
 * Adds the patterns in len bytes of text. Returns 0, -ENOMEM, or -EINVAL
 * with "line N: ..." in err for a line it cannot use (an empty pattern, a
 * NUL byte, a line longer than 4096 bytes).
 */
int ld_suppressions_parse(struct ld_suppressions *s, const char *text, size_t len, struct ld_error *err);

/*
 * Whether name, a thing of kind what (LD_SUPPRESS_TYPE, _FUNCTION or _FILE),
 * matches a pattern of that kind or of any kind. A pattern matches anywhere in the name
 * unless it starts with "^" or ends with "$"; "*" matches any run of
 * characters and "?" any one, as LeakSanitizer reads them.
 */
bool ld_suppressions_match(const struct ld_suppressions *s, enum ld_suppress_kind what, const char *name);

/*
 * Marks the rows of d that a pattern matches: a type by its name, a site
 * when any of its frames matches by function or file (as recorded or as
 * normalised with opts). Returns how many rows were marked.
 */
size_t ld_diff_suppress(struct ld_diff *d, const struct ld_suppressions *s, const struct ld_diff_opts *opts);

#endif
