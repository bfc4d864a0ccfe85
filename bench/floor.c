/*
 * The floor for reading snapshots: gunzip each file given and parse it with
 * cJSON, keeping every parsed tree alive until all are read (as a diff must
 * hold both snapshots), then free them.  Nothing else: no checking, no
 * model.  bench/run compares `leakdiff diff` against this.
 *
 * With -z, only gunzip: each file is decompressed into memory and freed,
 * nothing is parsed.  That is the part of reading a snapshot no JSON
 * reader can avoid, so it stays a meaningful floor once the reader is
 * faster than cJSON.
 *
 *   floor [-v] FILE.snap...   prints "<files> <sites>" on stderr with -v
 *   floor -z FILE.snap...     gunzip only
 *
 * Build: cc -O2 -o floor floor.c $(pkg-config --cflags --libs libcjson zlib)
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static char *gunzip_file(const char *path, size_t *outlen)
{
	gzFile f = gzopen(path, "rb");
	if (!f) {
		perror(path);
		return NULL;
	}
	gzbuffer(f, 1 << 17);
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap + 1);
	for (;;) {
		if (!buf)
			break;
		if (cap - len < (1 << 16)) {
			cap *= 2;
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
		}
		int n = gzread(f, buf + len, (unsigned)(cap - len));
		if (n < 0) {
			int e;
			fprintf(stderr, "%s: %s\n", path, gzerror(f, &e));
			free(buf);
			buf = NULL;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	gzclose(f);
	if (buf) {
		buf[len] = '\0';
		*outlen = len;
	}
	return buf;
}

int main(int argc, char **argv)
{
	int verbose = 0, first = 1, gunzip_only = 0;
	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		verbose = 1;
		first = 2;
	} else if (argc > 1 && strcmp(argv[1], "-z") == 0) {
		gunzip_only = 1;
		first = 2;
	}
	if (first >= argc) {
		fprintf(stderr, "usage: floor [-v | -z] FILE.snap...\n");
		return 2;
	}
	if (gunzip_only) {
		for (int i = first; i < argc; i++) {
			size_t len = 0;
			char *text = gunzip_file(argv[i], &len);
			if (!text)
				return 1;
			free(text);
		}
		return 0;
	}
	int n = argc - first;
	cJSON **docs = calloc((size_t)n, sizeof(*docs));
	long sites = 0;
	for (int i = 0; i < n; i++) {
		size_t len = 0;
		char *text = gunzip_file(argv[first + i], &len);
		if (!text)
			return 1;
		docs[i] = cJSON_ParseWithLength(text, len);
		free(text);
		if (!docs[i]) {
			fprintf(stderr, "%s: JSON parse error\n", argv[first + i]);
			return 1;
		}
		sites += cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(docs[i], "sites"));
	}
	if (verbose)
		fprintf(stderr, "%d files, %ld sites\n", n, sites);
	for (int i = 0; i < n; i++)
		cJSON_Delete(docs[i]);
	free(docs);
	return 0;
}
