/* Suppression patterns; see suppress.h. */
#include "suppress.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"

void ld_suppressions_init(struct ld_suppressions *s)
{
	memset(s, 0, sizeof(*s));
}

void ld_suppressions_finish(struct ld_suppressions *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->patterns[i]);
	free(s->patterns);
	free(s->kinds);
	memset(s, 0, sizeof(*s));
}

/* Kinds of LSan-style "kind:pattern" lines that name what leakdiff matches; -1 for others. */
static int our_kind(const char *kind, size_t n)
{
	static const struct {
		const char *name;
		enum ld_suppress_kind kind;
	} kinds[] = { { "leak", LD_SUPPRESS_ANY }, { "type", LD_SUPPRESS_TYPE },
		      { "function", LD_SUPPRESS_FUNCTION }, { "file", LD_SUPPRESS_FILE } };
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strlen(kinds[i].name) == n && strncmp(kind, kinds[i].name, n) == 0)
			return (int)kinds[i].kind;
	return -1;
}

/*
 * Turns a pattern into an fnmatch() glob: implicit "*" at each end unless
 * anchored, and brackets escaped because LSan patterns have no classes.
 */
static char *to_glob(const char *p, size_t n)
{
	bool head = n && p[0] == '^', tail = n && p[n - 1] == '$';
	if (head) {
		p++;
		n--;
	}
	if (tail && n)
		n--;
	char *g = malloc(2 * n + 3), *o = g;
	if (!g)
		return NULL;
	if (!head)
		*o++ = '*';
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '[' || p[i] == ']' || p[i] == '\\')
			*o++ = '\\';
		*o++ = p[i];
	}
	if (!tail)
		*o++ = '*';
	*o = '\0';
	return g;
}

int ld_suppressions_parse(struct ld_suppressions *s, const char *text, size_t len, struct ld_error *err)
{
	size_t lineno = 0;
	const char *end = text + len;
	while (text < end) {
		const char *nl = memchr(text, '\n', (size_t)(end - text));
		const char *stop = nl ? nl : end;
		lineno++;
		if (memchr(text, '\0', (size_t)(stop - text)))
			return ld_error_set(err, EINVAL, "line %zu: contains a NUL byte", lineno);
		if (stop - text > 4096)
			return ld_error_set(err, EINVAL, "line %zu: longer than 4096 bytes", lineno);
		/* trim white space and a CR */
		const char *a = text, *b = stop;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
			b--;
		text = nl ? nl + 1 : end;
		if (a == b || *a == '#')
			continue;
		const char *colon = memchr(a, ':', (size_t)(b - a));
		int kind = LD_SUPPRESS_ANY;
		if (colon) {
			bool word = colon > a;
			for (const char *p = a; p < colon; p++)
				word = word && ((*p >= 'a' && *p <= 'z') || *p == '_');
			if (word) {
				if ((kind = our_kind(a, (size_t)(colon - a))) < 0)
					continue; /* another sanitizer's line */
				a = colon + 1;
			}
		}
		/* An anchor alone would match everything: almost surely a mistake. */
		const char *pa = a, *pb = b;
		if (pa < pb && *pa == '^')
			pa++;
		if (pb > pa && pb[-1] == '$')
			pb--;
		if (pa == pb)
			return ld_error_set(err, EINVAL, "line %zu: empty pattern", lineno);
		if (LD_ARRAY_RESERVE(s->patterns, s->cap, s->n + 1) < 0 ||
		    LD_ARRAY_RESERVE(s->kinds, s->kinds_cap, s->n + 1) < 0)
			return ld_error_set(err, ENOMEM, "out of memory");
		char *g = to_glob(a, (size_t)(b - a));
		if (!g)
			return ld_error_set(err, ENOMEM, "out of memory");
		s->kinds[s->n] = (enum ld_suppress_kind)kind;
		s->patterns[s->n++] = g;
	}
	return 0;
}

bool ld_suppressions_match(const struct ld_suppressions *s, enum ld_suppress_kind what, const char *name)
{
	for (size_t i = 0; s && i < s->n; i++)
		if ((s->kinds[i] == LD_SUPPRESS_ANY || s->kinds[i] == what) && fnmatch(s->patterns[i], name, 0) == 0)
			return true;
	return false;
}

static bool stack_matches(const struct ld_suppressions *s, const struct ld_diff_stack *st,
			  const struct ld_diff_opts *opts)
{
	char buf[4096];
	for (uint32_t i = 0; i < st->depth; i++) {
		const struct ld_frame *f = ld_diff_frame(st, i);
		const char *file = ld_snapshot_str(st->snap, f->file);
		if (ld_suppressions_match(s, LD_SUPPRESS_FUNCTION, ld_snapshot_str(st->snap, f->function)) ||
		    ld_suppressions_match(s, LD_SUPPRESS_FILE, file) ||
		    ld_suppressions_match(s, LD_SUPPRESS_FILE, ld_diff_normal_path(st->snap, opts, file, buf, sizeof(buf))))
			return true;
	}
	return false;
}

size_t ld_diff_suppress(struct ld_diff *d, const struct ld_suppressions *s, const struct ld_diff_opts *opts)
{
	size_t n = 0;
	if (!s || !s->n)
		return 0;
	for (size_t i = 0; i < d->nsites; i++)
		if ((d->sites[i].suppressed = stack_matches(s, &d->sites[i].stack, opts)))
			n++;
	for (size_t i = 0; i < d->ntypes; i++) {
		struct ld_diff_type *t = &d->types[i];
		if ((t->suppressed = ld_suppressions_match(s, LD_SUPPRESS_TYPE, t->name)))
			n++;
		for (size_t j = 0; j < t->nsites; j++)
			t->sites[j].suppressed = t->suppressed || stack_matches(s, &t->sites[j].stack, opts);
	}
	return n;
}
