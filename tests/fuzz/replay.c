/*
 * Runs a fuzz target's LLVMFuzzerTestOneInput() over files, without
 * libFuzzer: each argument is a file or a directory whose files (sorted by
 * name, dot files skipped) are run one by one. With any compiler and
 * sanitizer, this is how the seed corpus and the regression inputs become
 * an ordinary test: the target aborts on a broken invariant, a sanitizer
 * reports the rest. Prints one TAP line per input.
 *
 * Usage: replay-TARGET FILE|DIR...
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

struct list {
	char **paths;
	size_t n, cap;
};

static int add(struct list *l, const char *path)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		char **p = realloc(l->paths, cap * sizeof(*p));
		if (!p)
			return -1;
		l->paths = p;
		l->cap = cap;
	}
	if (!(l->paths[l->n] = strdup(path)))
		return -1;
	l->n++;
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int collect(struct list *l, const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return add(l, path);
	DIR *d = opendir(path);
	if (!d) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t first = l->n;
	struct dirent *e;
	int r = 0;
	while (r == 0 && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *p = malloc(strlen(path) + strlen(e->d_name) + 2);
		if (!p) {
			r = -1;
			break;
		}
		sprintf(p, "%s/%s", path, e->d_name);
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode))
			r = add(l, p);
		free(p);
	}
	closedir(d);
	qsort(l->paths + first, l->n - first, sizeof(*l->paths), cmp);
	return r;
}

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t cap = 65536, len = 0;
	unsigned char *buf = malloc(cap);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			unsigned char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	int bad = ferror(f);
	fclose(f);
	if (!buf || bad) {
		free(buf);
		return -1;
	}
	/* An exact-size copy, so that reading past the input is caught. */
	unsigned char *exact = malloc(len ? len : 1);
	if (!exact) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

int main(int argc, char **argv)
{
	struct list l = { 0 };
	int status = 0;
	for (int i = 1; i < argc; i++)
		if (collect(&l, argv[i]) < 0)
			status = 1;
	printf("1..%zu\n", l.n);
	for (size_t i = 0; i < l.n; i++) {
		/* Print first: if the input crashes, the log names it. */
		fprintf(stderr, "replay: %s\n", l.paths[i]);
		int r = run_file(l.paths[i]);
		printf("%s %zu - %s\n", r == 0 ? "ok" : "not ok", i + 1, l.paths[i]);
		fflush(stdout);
		if (r < 0)
			status = 1;
		free(l.paths[i]);
	}
	free(l.paths);
	return status;
}
