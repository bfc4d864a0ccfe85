/*
 * fuzz_wire: the pipe protocol parser. The first byte of the input gives
 * the number n (1..16) of chunk-size bytes that follow; the rest is the
 * stream, fed in chunks whose sizes cycle through those n bytes (0 stands
 * for 256). Byte n+1's low bits choose an event at which the callback
 * fails, as a recorder callback may.
 *
 * Oracle: with a callback that never fails, the events (and whether and
 * why the stream broke) must be the same however the stream is cut into
 * reads. Every snapshot event must carry a NUL-terminated document; one
 * that parses (as a snapshot or a native raw document) goes down the read
 * path like the recorder's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz.h"
#include "native.h"
#include "snap.h"
#include "wire.h"

struct run {
	struct ld_buf log;   /* one line per event, to compare runs */
	int fail_at;         /* event number whose callback fails; -1 never */
	int events;
	bool exercise;       /* parse snapshot documents (once per input) */
	uint64_t bits;
};

static void log_str(struct ld_buf *b, const char *name, const char *s)
{
	if (!s)
		fuzz_fail("wire event field %s is NULL", name);
	ld_buf_printf(b, " %s=%zu:", name, strlen(s));
	ld_buf_puts(b, s);
}

static void exercise_document(const struct ld_wire_event *ev, uint64_t bits)
{
	struct ld_snapshot *s = NULL;
	struct ld_error err = { { 0 } };
	int r = ld_native_is_raw(ev->data, ev->len) ? ld_native_parse(ev->data, ev->len, &s, &err)
						    : ld_snap_parse(ev->data, ev->len, &s, &err);
	if (r == 0) {
		fuzz_exercise_snapshot(s, bits);
		ld_snapshot_destroy(s);
	}
}

static int on_event(void *ctx, const struct ld_wire_event *ev)
{
	struct run *run = ctx;
	struct ld_buf *b = &run->log;
	ld_buf_printf(b, "%d seq=%lld pid=%lld", (int)ev->kind, (long long)ev->seq, (long long)ev->pid);
	log_str(b, "runtime", ev->runtime);
	log_str(b, "agent", ev->agent);
	log_str(b, "label", ev->label);
	log_str(b, "trigger", ev->trigger);
	log_str(b, "level", ev->level);
	log_str(b, "message", ev->message);
	log_str(b, "reason", ev->reason);
	if (ev->kind == LD_WIRE_SNAPSHOT) {
		if (!ev->data)
			fuzz_fail("snapshot event without data");
		if (ev->data[ev->len] != '\0')
			fuzz_fail("snapshot document of %zu bytes is not NUL-terminated", ev->len);
		ld_buf_printf(b, " len=%zu:", ev->len);
		ld_buf_add(b, ev->data, ev->len);
		if (run->exercise)
			exercise_document(ev, run->bits);
	} else if (ev->data) {
		ld_buf_puts(b, " data!");
	}
	ld_buf_putc(b, '\n');
	return run->events++ == run->fail_at ? -1 : 0;
}

/* Feeds the stream in chunks; returns the log, which the caller frees. */
static char *feed(const uint8_t *stream, size_t len, const uint8_t *sizes, size_t nsizes,
		  int fail_at, bool exercise, uint64_t bits, size_t *loglen)
{
	struct run run = { .fail_at = fail_at, .exercise = exercise, .bits = bits };
	ld_buf_init(&run.log);
	/* A small snapshot limit, so that the overflow path is reachable. */
	struct ld_wire *w = ld_wire_create(on_event, &run, bits & 1 ? 4096 : 0);
	if (!w) {
		ld_buf_finish(&run.log);
		return NULL;
	}
	size_t off = 0, k = 0;
	bool connected_seen = false;
	while (off < len) {
		size_t n = nsizes ? (sizes[k++ % nsizes] ? sizes[(k - 1) % nsizes] : 256) : len;
		if (n > len - off)
			n = len - off;
		struct ld_error err = { { 0 } };
		int r = ld_wire_feed(w, stream + off, n, &err);
		off += n;
		if (ld_wire_connected(w))
			connected_seen = true;
		else if (connected_seen)
			fuzz_fail("ld_wire_connected went back to false");
		if (r == -EPROTO) {
			if (!err.msg[0])
				fuzz_fail("ld_wire_feed returned -EPROTO without a reason");
			ld_buf_printf(&run.log, "broken %s\n", err.msg);
			/* Every later call must keep saying so. */
			if (ld_wire_feed(w, "hello 0\n\n", 9, &err) != -EPROTO)
				fuzz_fail("ld_wire_feed accepted data after the stream broke");
			break;
		}
		if (r < 0 && r != -1)
			fuzz_fail("ld_wire_feed returned %d", r);
		if (r == -1) {
			ld_buf_puts(&run.log, "callback failed\n");
			/* A recorder may carry on reading; that must stay memory safe. */
			if (bits & 2)
				break;
		}
	}
	int r = ld_wire_finish(w);
	if (r < 0 && r != -1)
		fuzz_fail("ld_wire_finish returned %d", r);
	ld_wire_destroy(w);
	if (run.log.oom) {
		ld_buf_finish(&run.log);
		return NULL;
	}
	return ld_buf_detach(&run.log, loglen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint64_t bits = fuzz_bits(data, size);
	size_t nsizes = (size_t)(data[0] % 16) + 1;
	if (size < 1 + nsizes + 1)
		return 0;
	const uint8_t *sizes = data + 1;
	uint8_t control = data[1 + nsizes];
	const uint8_t *stream = data + 2 + nsizes;
	size_t len = size - 2 - nsizes;

	/* The stream in one piece, then cut up: the same events. */
	size_t l1 = 0, l2 = 0;
	char *whole = feed(stream, len, NULL, 0, -1, true, bits, &l1);
	char *cut = feed(stream, len, sizes, nsizes, -1, false, bits, &l2);
	if (whole && cut && (l1 != l2 || memcmp(whole, cut, l1) != 0)) {
		size_t i = 0;
		while (i < l1 && i < l2 && whole[i] == cut[i])
			i++;
		fprintf(stderr, "whole:\n%.*s\ncut:\n%.*s\n", (int)(l1 < 2000 ? l1 : 2000), whole,
			(int)(l2 < 2000 ? l2 : 2000), cut);
		fuzz_fail("events differ when the stream is read in pieces (from byte %zu of the log)", i);
	}
	free(whole);
	free(cut);

	/* A callback that fails part-way. */
	if (control & 0x80) {
		char *failed = feed(stream, len, sizes, nsizes, control & 7, false, bits, &l1);
		free(failed);
	}
	return 0;
}
