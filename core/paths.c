/*
 * File names as the diff compares them: snapshot roots and --strip-prefix
 * directories removed, shared library version suffixes dropped, so that two
 * checkouts, or two releases of a library, name the same code alike. The
 * functions are declared in diff.h, being part of its API (the reports use
 * ld_path_root_len() to tell standard library frames from the user's).
 */
#include <string.h>

#include "diff.h"

size_t ld_path_root_len(const char *file, const char *root)
{
	size_t n = strlen(root);
	while (n > 1 && root[n - 1] == '/')
		n--;
	if (n == 0 || strncmp(file, root, n) != 0 || file[n] != '/')
		return 0;
	return n + 1;
}

const char *ld_diff_normal_path(const struct ld_snapshot *s, const struct ld_diff_opts *opts,
				const char *file, char *buf, size_t n)
{
	size_t best = 0;
	for (size_t i = 0; i < s->meta.nroots; i++) {
		size_t l = ld_path_root_len(file, s->meta.roots[i]);
		best = l > best ? l : best;
	}
	for (size_t i = 0; i < s->meta.nstdlib; i++) {
		size_t l = ld_path_root_len(file, s->meta.stdlib[i]);
		best = l > best ? l : best;
	}
	for (size_t i = 0; opts && i < opts->nstrip; i++) {
		size_t l = ld_path_root_len(file, opts->strip[i]);
		best = l > best ? l : best;
	}
	if (file[best])
		file += best;
	/* "libfoo.so.1.2.3" -> "libfoo.so": a new release must not look like new code. */
	const char *so = strstr(file, ".so.");
	if (so && so[4]) {
		const char *p = so + 3;
		while (*p == '.' && p[1] >= '0' && p[1] <= '9') {
			p++;
			while (*p >= '0' && *p <= '9')
				p++;
		}
		if (!*p && (size_t)(so + 3 - file) < n) {
			memcpy(buf, file, (size_t)(so + 3 - file));
			buf[so + 3 - file] = '\0';
			return buf;
		}
	}
	return file;
}
