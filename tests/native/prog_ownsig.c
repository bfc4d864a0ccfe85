/*
 * A program with its own SIGUSR2 handler (log rotation, say), for the
 * recorder's request channel (test_triggers_native.py): it counts how often
 * the handler ran, says ready once it is in place, keeps a block every 10 ms until the file named by its
 * argument exists (the test names a snapshot file that --every is to
 * write), at most 60 seconds, and prints the count. Under `leakdiff
 * record --every` the recorder asks the agent on its channel, so the
 * handler must never run.
 *
 * Usage: prog_ownsig FILE
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t ran;
static void *kept[6000];

static void on_usr2(int sig)
{
	(void)sig;
	ran++;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr2;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR2, &sa, NULL) < 0)
		return 3;
	printf("ready\n");
	fflush(stdout);
	struct timespec nap = { 0, 10 * 1000 * 1000 };
	for (int i = 0; i < 6000 && access(argv[1], F_OK) != 0; i++) {
		kept[i] = malloc(64); /* KEPT-SITE */
		nanosleep(&nap, NULL);
	}
	printf("handler ran %d\n", (int)ran);
	return 0;
}
