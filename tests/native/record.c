/*
 * native-record: a stand-in for `leakdiff record` while the recorder does
 * not drive the native agent yet. It runs a command with the preloaded
 * agent and a pipe, reads the stream with formats/wire.c, turns each
 * snapshot into a leakdiff snapshot with formats/native.c and writes it as
 * plain JSON. The tests in test_agent.py read what it prints, one line per
 * event:
 *
 *   hello pid=N runtime=R agent=A
 *   snapshot seq=N trigger=T label=L path=P sites=N blocks=N bytes=N
 *   invalid seq=N reason
 *   dropped seq=N reason
 *   log LEVEL message
 *   exit status=N
 *
 * Usage: native-record --preload LIB --out PREFIX [--raw FILE] [--depth N]
 *                      [--signal N] -- COMMAND [ARG...]
 * Exits with the command's status (128+N when signal N killed it), 125 on
 * its own errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "native.h"
#include "snap.h"
#include "wire.h"

struct run {
	const char *out;
	int raw_fd;
	struct ld_symbolizer *sym;
	int failures;
};

static int on_event(void *ctx, const struct ld_wire_event *ev)
{
	struct run *run = ctx;
	switch (ev->kind) {
	case LD_WIRE_HELLO:
		printf("hello pid=%lld runtime=%s agent=%s\n", (long long)ev->pid, ev->runtime, ev->agent);
		break;
	case LD_WIRE_LOG:
		printf("log %s %s\n", ev->level, ev->message);
		break;
	case LD_WIRE_DROPPED:
		printf("dropped seq=%lld %s\n", (long long)ev->seq, ev->reason);
		break;
	case LD_WIRE_SNAPSHOT: {
		struct ld_error err = { { 0 } };
		struct ld_snapshot *s = NULL;
		if (ld_native_parse_with(&run->sym, ev->data, ev->len, &s, &err) < 0) {
			printf("invalid seq=%lld %s\n", (long long)ev->seq, err.msg);
			run->failures++;
			break;
		}
		char path[4096];
		snprintf(path, sizeof(path), "%s.%lld.json", run->out, (long long)ev->seq);
		char *json = NULL;
		size_t len = 0;
		FILE *f = NULL;
		if (ld_snap_serialize(s, &json, &len) < 0 || !(f = fopen(path, "w")) ||
		    fwrite(json, 1, len, f) != len) {
			printf("invalid seq=%lld cannot write %s\n", (long long)ev->seq, path);
			run->failures++;
		} else {
			printf("snapshot seq=%lld trigger=%s label=%s path=%s sites=%zu blocks=%llu bytes=%llu\n",
			       (long long)ev->seq, ev->trigger, ev->label, path, s->nsites,
			       (unsigned long long)s->totals.heap_blocks, (unsigned long long)s->totals.heap_bytes);
		}
		if (f && fclose(f) != 0)
			run->failures++;
		free(json);
		ld_snapshot_destroy(s);
		break;
	}
	}
	fflush(stdout);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: native-record --preload LIB --out PREFIX [--raw FILE] [--depth N] "
			"[--signal N] -- COMMAND [ARG...]\n");
	return 125;
}

int main(int argc, char **argv)
{
	const char *preload = NULL, *raw = NULL, *depth = "32", *sig = NULL;
	struct run run = { .raw_fd = -1 };
	int i = 1;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (i + 1 >= argc)
			return usage();
		if (strcmp(argv[i], "--preload") == 0)
			preload = argv[++i];
		else if (strcmp(argv[i], "--out") == 0)
			run.out = argv[++i];
		else if (strcmp(argv[i], "--raw") == 0)
			raw = argv[++i];
		else if (strcmp(argv[i], "--depth") == 0)
			depth = argv[++i];
		else if (strcmp(argv[i], "--signal") == 0)
			sig = argv[++i];
		else
			return usage();
	}
	if (!preload || !run.out || i >= argc)
		return usage();
	if (raw && (run.raw_fd = open(raw, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		perror(raw);
		return 125;
	}

	int pfd[2];
	struct stat st;
	if (pipe2(pfd, O_CLOEXEC) < 0 || fstat(pfd[1], &st) < 0) {
		perror("pipe");
		return 125;
	}
	char fd_s[16], pipe_s[64];
	snprintf(fd_s, sizeof(fd_s), "%d", pfd[1]);
	snprintf(pipe_s, sizeof(pipe_s), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	pid_t child = fork();
	if (child < 0) {
		perror("fork");
		return 125;
	}
	if (child == 0) {
		fcntl(pfd[1], F_SETFD, 0);
		setenv("LD_PRELOAD", preload, 1);
		setenv("LEAKDIFF_FD", fd_s, 1);
		setenv("LEAKDIFF_PIPE", pipe_s, 1);
		setenv("LEAKDIFF_DEPTH", depth, 1);
		/* Not a LEAKDIFF_ variable, so the agent leaves it for the program:
		 * test programs use it to check that the pipe does not leak. */
		setenv("NATIVE_RECORD_FD", fd_s, 1);
		if (sig)
			setenv("LEAKDIFF_SIGNAL", sig, 1);
		execvp(argv[i], argv + i);
		perror(argv[i]);
		_exit(127);
	}
	close(pfd[1]);

	struct ld_wire *w = ld_wire_create(on_event, &run, 0);
	if (!w)
		return 125;
	char buf[65536];
	bool broken = false;
	for (;;) {
		ssize_t n = read(pfd[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (run.raw_fd >= 0 && write(run.raw_fd, buf, (size_t)n) != n)
			run.failures++;
		struct ld_error err = { { 0 } };
		if (!broken && ld_wire_feed(w, buf, (size_t)n, &err) == -EPROTO) {
			printf("broken %s\n", err.msg);
			fflush(stdout);
			broken = true;
		}
	}
	ld_wire_finish(w);
	ld_wire_destroy(w);
	ld_symbolizer_destroy(run.sym);
	int status = 0;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	int code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
	printf("exit status=%d\n", code);
	if (run.raw_fd >= 0)
		close(run.raw_fd);
	return run.failures || broken ? 125 : code;
}
