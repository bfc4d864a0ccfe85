/*
 * Allocates N blocks of 24 bytes, keeps them all, and prints the process's
 * anonymous resident memory (RssAnon, in kB) on stdout. Run plainly and
 * under `leakdiff record`, the difference divided by N is what the native
 * agent costs per live block (bench/suite.py, native section).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	void **v = malloc((size_t)n * sizeof(*v));
	if (!v)
		return 1;
	for (long i = 0; i < n; i++)
		if (!(v[i] = malloc(24)))
			return 1;
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "RssAnon:", 8) == 0)
			printf("%ld\n", atol(line + 8));
	if (f)
		fclose(f);
	return 0;
}
