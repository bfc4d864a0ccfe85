/*
 * A tidy command-line tool, in the manner of jq: it reads N records from
 * its input (or makes them up), builds an index of them, prints a summary
 * and frees everything before it exits. Its at-exit snapshots are empty,
 * whatever N is; only a snapshot taken while it runs (with a second
 * argument, through leakdiff.h once the index is built) shows the index.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leakdiff.h"

struct record {
	struct record *next;
	char *key;
	long value;
};

static struct record *parse(long n)
{
	struct record *head = NULL;
	for (long i = 0; i < n; i++) {
		struct record *r = malloc(sizeof(*r)); /* INDEX-SITE */
		char key[32];
		snprintf(key, sizeof(key), "key-%ld", i);
		r->key = strdup(key);
		r->value = i * 7 % 13;
		r->next = head;
		head = r;
	}
	return head;
}

static void release(struct record *r)
{
	while (r) {
		struct record *next = r->next;
		free(r->key);
		free(r);
		r = next;
	}
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000;
	struct record *index = parse(n);
	if (argc > 2)
		leakdiff_snapshot_if_traced(argv[2]);
	long sum = 0;
	for (struct record *r = index; r; r = r->next)
		sum += r->value;
	printf("{\"records\":%ld,\"sum\":%ld}\n", n, sum);
	release(index);
	return 0;
}
