/*
 * Test program (a): every record is allocated in a static function, and
 * every tenth one stays in a global list for good. Run with N records it
 * leaves exactly N / 10 blocks at the marked line. With --wait it then
 * waits for a line on standard input before exiting, so that a test can
 * ask for a snapshot by signal meanwhile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct record {
	struct record *next;
	int id;
	char name[20];
};

struct record *kept;

static struct record *new_record(int id)
{
	struct record *r = malloc(sizeof(*r)); /* RECORD-SITE */
	if (!r)
		abort();
	r->id = id;
	snprintf(r->name, sizeof(r->name), "record-%d", id);
	return r;
}

static void keep_every_tenth(int id)
{
	struct record *r = new_record(id);
	if (id % 10 == 0) {
		r->next = kept;
		kept = r;
	} else {
		free(r);
	}
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1000;
	for (int i = 0; i < n; i++)
		keep_every_tenth(i);
	if (argc > 2 && strcmp(argv[2], "--wait") == 0) {
		printf("ready\n");
		fflush(stdout);
		char line[16];
		if (!fgets(line, sizeof(line), stdin))
			return 3;
	}
	return 0;
}
