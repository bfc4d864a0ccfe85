/* Unit tests for formats/wire.c: the pipe protocol parser. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "buf.h"
#include "helpers.h"
#include "wire.h"

/* ---------------------------------------------------------------- events */

/* An owned copy of one event. */
struct event {
	enum ld_wire_event_kind kind;
	int64_t seq, pid;
	char *runtime, *agent, *label, *trigger, *level, *message, *reason;
	char *data;
	size_t len;
};

struct log {
	struct event *ev;
	size_t n, cap;
	int fail_on;   /* kind whose callback returns fail_with; -1: none */
	int fail_with;
};

static char *dup_str(const char *s)
{
	cr_assert_not_null(s, "event string is NULL");
	return th_memdup(s, strlen(s));
}

static int record(void *ctx, const struct ld_wire_event *ev)
{
	struct log *lg = ctx;
	th_fail_hold(1); /* the test's own copies must not run out of memory */
	if (lg->n == lg->cap) {
		lg->cap = lg->cap ? lg->cap * 2 : 8;
		lg->ev = realloc(lg->ev, lg->cap * sizeof(*lg->ev));
		cr_assert_not_null(lg->ev);
	}
	struct event *e = &lg->ev[lg->n++];
	e->kind = ev->kind;
	e->seq = ev->seq;
	e->pid = ev->pid;
	e->runtime = dup_str(ev->runtime);
	e->agent = dup_str(ev->agent);
	e->label = dup_str(ev->label);
	e->trigger = dup_str(ev->trigger);
	e->level = dup_str(ev->level);
	e->message = dup_str(ev->message);
	e->reason = dup_str(ev->reason);
	e->data = NULL;
	e->len = 0;
	if (ev->kind == LD_WIRE_SNAPSHOT) {
		cr_assert_not_null(ev->data);
		cr_assert_eq(ev->data[ev->len], '\0', "snapshot data not NUL-terminated");
		e->data = th_memdup(ev->data, ev->len);
		e->len = ev->len;
	}
	th_fail_hold(0);
	return (int)ev->kind == lg->fail_on ? lg->fail_with : 0;
}

static void log_free(struct log *lg)
{
	for (size_t i = 0; i < lg->n; i++) {
		struct event *e = &lg->ev[i];
		free(e->runtime);
		free(e->agent);
		free(e->label);
		free(e->trigger);
		free(e->level);
		free(e->message);
		free(e->reason);
		free(e->data);
	}
	free(lg->ev);
	memset(lg, 0, sizeof(*lg));
	lg->fail_on = -1;
}

static void same_events(const struct log *a, const struct log *b, const char *what)
{
	cr_assert_eq(a->n, b->n, "%s: %zu vs %zu events", what, a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		const struct event *x = &a->ev[i], *y = &b->ev[i];
		cr_assert_eq(x->kind, y->kind, "%s: event %zu kind", what, i);
		cr_assert_eq(x->seq, y->seq, "%s: event %zu seq", what, i);
		cr_assert_eq(x->pid, y->pid, "%s: event %zu pid", what, i);
		cr_assert_str_eq(x->runtime, y->runtime);
		cr_assert_str_eq(x->agent, y->agent);
		cr_assert_str_eq(x->label, y->label);
		cr_assert_str_eq(x->trigger, y->trigger);
		cr_assert_str_eq(x->level, y->level);
		cr_assert_str_eq(x->message, y->message);
		cr_assert_str_eq(x->reason, y->reason);
		cr_assert_eq(x->len, y->len, "%s: event %zu length", what, i);
		if (x->len)
			cr_assert_eq(memcmp(x->data, y->data, x->len), 0, "%s: event %zu data", what, i);
	}
}

/* ---------------------------------------------------------------- streams */

static void frame(struct ld_buf *b, const char *tag, const void *payload, size_t len)
{
	ld_buf_printf(b, "%s %zu\n", tag, len);
	ld_buf_add(b, payload, len);
	ld_buf_putc(b, '\n');
}

static void frame_str(struct ld_buf *b, const char *tag, const char *payload)
{
	frame(b, tag, payload, strlen(payload));
}

#define HELLO "{\"protocol\":\"leakdiff-pipe\",\"version\":1,\"runtime\":\"python\"," \
	      "\"agent\":\"leakdiff-python 0.1.0\",\"pid\":4242}"

/* The document of the test snapshot, with a multibyte character to split. */
static const char DOC[] = "{\"format\":\"leakdiff-snapshot\",\"version\":1,"
			  "\"meta\":{\"label\":\"\xe6\x97\xa5\xe6\x9c\xac\"},"
			  "\"strings\":[\"app.py\",\"login\"],\"frames\":[[0,42,1,40,-1]],"
			  "\"sites\":[[3,300,[0]]]}";

static void begin(struct ld_buf *b, int seq, const char *label, const char *trigger)
{
	char p[256];
	snprintf(p, sizeof(p), "{\"seq\":%d,\"label\":\"%s\",\"trigger\":\"%s\"}", seq, label, trigger);
	frame_str(b, "begin", p);
}

static void end(struct ld_buf *b, long long seq, long long bytes, unsigned long crc)
{
	char p[256];
	snprintf(p, sizeof(p), "{\"seq\":%lld,\"bytes\":%lld,\"crc32\":%lu}", seq, bytes, crc);
	frame_str(b, "end", p);
}

static unsigned long crc_of(const void *data, size_t len)
{
	return crc32(crc32(0L, Z_NULL, 0), data, (uInt)len);
}

/* A whole snapshot: begin, the document in data frames cut at cuts[], end. */
static void snapshot(struct ld_buf *b, int seq, const char *label, const char *trigger, const char *doc,
		     size_t len, const size_t *cuts, size_t ncuts)
{
	begin(b, seq, label, trigger);
	size_t at = 0;
	for (size_t i = 0; i <= ncuts; i++) {
		size_t to = i < ncuts ? cuts[i] : len;
		frame(b, "data", doc + at, to - at);
		at = to;
	}
	end(b, seq, (long long)len, crc_of(doc, len));
}

/* The reference stream: hello, then one snapshot in four data frames. */
static void good_stream(struct ld_buf *b)
{
	ld_buf_init(b);
	frame_str(b, "hello", HELLO);
	const char *mb = strstr(DOC, "\xe6\x97\xa5");
	/* Cut inside the UTF-8 sequence, and make one data frame empty. */
	size_t cuts[] = { 7, (size_t)(mb - DOC) + 1, (size_t)(mb - DOC) + 1 };
	snapshot(b, 1, "warm", "api", DOC, sizeof(DOC) - 1, cuts, 3);
}

/* ---------------------------------------------------------------- driving */

static struct log events;
static struct ld_wire *wire;
static struct ld_buf stream;

static void setup(void)
{
	memset(&events, 0, sizeof(events));
	events.fail_on = -1;
	ld_buf_init(&stream);
	wire = ld_wire_create(record, &events, 0);
	cr_assert_not_null(wire);
}

static void teardown(void)
{
	th_fail_after(-1);
	ld_wire_destroy(wire);
	log_free(&events);
	ld_buf_finish(&stream);
}

TestSuite(wire, .init = setup, .fini = teardown);

/* Feeds all of b in one call and returns what the parser said. */
static int feed_all(struct ld_wire *w, const struct ld_buf *b, struct ld_error *err)
{
	ld_error_clear(err);
	return ld_wire_feed(w, b->data, b->len, err);
}

static int feed_str(const char *s, struct ld_error *err)
{
	ld_error_clear(err);
	return ld_wire_feed(wire, s, strlen(s), err);
}

static size_t count_kind(const struct log *lg, enum ld_wire_event_kind k)
{
	size_t n = 0;
	for (size_t i = 0; i < lg->n; i++)
		n += lg->ev[i].kind == k;
	return n;
}

static const struct event *last(const struct log *lg)
{
	cr_assert_gt(lg->n, 0, "no events");
	return &lg->ev[lg->n - 1];
}

/* Opens a stream with a hello and checks it was taken. */
static void say_hello(void)
{
	struct ld_error err;
	struct ld_buf b;
	ld_buf_init(&b);
	frame_str(&b, "hello", HELLO);
	cr_assert_eq(feed_all(wire, &b, &err), 0, "%s", err.msg);
	ld_buf_finish(&b);
	cr_assert(ld_wire_connected(wire));
}

static void expect_protocol_error(const char *bytes, size_t len, const char *msg)
{
	struct ld_error err;
	ld_error_clear(&err);
	int r = ld_wire_feed(wire, bytes, len, &err);
	cr_assert_eq(r, -EPROTO, "returned %d, want -EPROTO", r);
	cr_assert_not_null(strstr(err.msg, msg), "message \"%s\" lacks \"%s\"", err.msg, msg);
	/* Once corrupt, always corrupt. */
	struct ld_buf b;
	ld_buf_init(&b);
	frame_str(&b, "hello", HELLO);
	cr_assert_eq(feed_all(wire, &b, &err), -EPROTO);
	ld_buf_finish(&b);
	cr_assert_eq(ld_wire_finish(wire), 0);
	cr_assert_eq(count_kind(&events, LD_WIRE_SNAPSHOT), 0);
}

/* ================================================================ tests */

Test(wire, full_stream_gives_one_snapshot)
{
	struct ld_error err;
	good_stream(&stream);
	cr_assert_not(ld_wire_connected(wire));
	cr_assert_eq(feed_all(wire, &stream, &err), 0, "%s", err.msg);
	cr_assert_eq(ld_wire_finish(wire), 0);
	cr_assert_eq(events.n, 2);

	const struct event *h = &events.ev[0];
	cr_assert_eq(h->kind, LD_WIRE_HELLO);
	cr_assert_str_eq(h->runtime, "python");
	cr_assert_str_eq(h->agent, "leakdiff-python 0.1.0");
	cr_assert_eq(h->pid, 4242);
	cr_assert(ld_wire_connected(wire));

	const struct event *s = &events.ev[1];
	cr_assert_eq(s->kind, LD_WIRE_SNAPSHOT);
	cr_assert_eq(s->seq, 1);
	cr_assert_str_eq(s->label, "warm");
	cr_assert_str_eq(s->trigger, "api");
	cr_assert_eq(s->len, sizeof(DOC) - 1);
	cr_assert_eq(memcmp(s->data, DOC, s->len), 0);
	cr_assert_eq(count_kind(&events, LD_WIRE_SNAPSHOT), 1);
}

Test(wire, byte_at_a_time_gives_the_same_events)
{
	struct ld_error err;
	good_stream(&stream);
	cr_assert_eq(feed_all(wire, &stream, &err), 0, "%s", err.msg);
	cr_assert_eq(ld_wire_finish(wire), 0);

	struct log slow = { .fail_on = -1 };
	struct ld_wire *w = ld_wire_create(record, &slow, 0);
	cr_assert_not_null(w);
	for (size_t i = 0; i < stream.len; i++)
		cr_assert_eq(ld_wire_feed(w, stream.data + i, 1, &err), 0, "byte %zu: %s", i, err.msg);
	cr_assert_eq(ld_wire_finish(w), 0);
	same_events(&events, &slow, "byte at a time");
	ld_wire_destroy(w);
	log_free(&slow);
}

Test(wire, random_chunks_give_the_same_events)
{
	struct ld_error err;
	good_stream(&stream);
	/* A second snapshot and a log, so chunks straddle several frames. */
	frame_str(&stream, "log", "{\"level\":\"info\",\"message\":\"between\"}");
	snapshot(&stream, 2, "", "exit", DOC, sizeof(DOC) - 1, NULL, 0);
	cr_assert_eq(feed_all(wire, &stream, &err), 0, "%s", err.msg);
	cr_assert_eq(ld_wire_finish(wire), 0);
	cr_assert_eq(events.n, 4);

	uint64_t seed = 12345;
	for (int round = 0; round < 50; round++) {
		struct log got = { .fail_on = -1 };
		struct ld_wire *w = ld_wire_create(record, &got, 0);
		cr_assert_not_null(w);
		size_t at = 0;
		while (at < stream.len) {
			size_t n = 1 + (size_t)(th_rand(&seed) % 97);
			if (n > stream.len - at)
				n = stream.len - at;
			cr_assert_eq(ld_wire_feed(w, stream.data + at, n, &err), 0, "round %d: %s", round, err.msg);
			at += n;
		}
		cr_assert_eq(ld_wire_feed(w, "", 0, &err), 0);
		cr_assert_eq(ld_wire_finish(w), 0);
		same_events(&events, &got, "random chunks");
		ld_wire_destroy(w);
		log_free(&got);
	}
}

Test(wire, two_snapshots_in_order)
{
	struct ld_error err;
	frame_str(&stream, "hello", HELLO);
	snapshot(&stream, 1, "a", "signal", "{}", 2, NULL, 0);
	snapshot(&stream, 2, "b", "interval", DOC, sizeof(DOC) - 1, NULL, 0);
	cr_assert_eq(feed_all(wire, &stream, &err), 0, "%s", err.msg);
	cr_assert_eq(events.n, 3);
	cr_assert_eq(events.ev[1].seq, 1);
	cr_assert_str_eq(events.ev[1].label, "a");
	cr_assert_str_eq(events.ev[1].trigger, "signal");
	cr_assert_eq(events.ev[1].len, 2);
	cr_assert_str_eq(events.ev[1].data, "{}");
	cr_assert_eq(events.ev[2].seq, 2);
	cr_assert_str_eq(events.ev[2].label, "b");
	cr_assert_eq(events.ev[2].len, sizeof(DOC) - 1);
}

Test(wire, eof_mid_snapshot_drops_it)
{
	struct ld_error err;
	frame_str(&stream, "hello", HELLO);
	begin(&stream, 7, "late", "exit");
	frame(&stream, "data", DOC, 20);
	cr_assert_eq(feed_all(wire, &stream, &err), 0, "%s", err.msg);
	cr_assert_eq(events.n, 1);
	cr_assert_eq(ld_wire_finish(wire), 0);
	cr_assert_eq(events.n, 2);
	const struct event *d = last(&events);
	cr_assert_eq(d->kind, LD_WIRE_DROPPED);
	cr_assert_eq(d->seq, 7);
	cr_assert_not_null(strstr(d->reason, "cut off"), "reason: %s", d->reason);
	cr_assert_not_null(strstr(d->reason, "20 bytes"), "reason: %s", d->reason);
	cr_assert_eq(count_kind(&events, LD_WIRE_SNAPSHOT), 0);
	/* Finishing again reports nothing new. */
	cr_assert_eq(ld_wire_finish(wire), 0);
	cr_assert_eq(events.n, 2);
}

Test(wire, eof_inside_a_frame_drops_the_snapshot)
{
	struct ld_error err;
	good_stream(&stream);
	/* Cut the stream inside the end frame's payload. */
	size_t cut = stream.len - 10;
	cr_assert_eq(ld_wire_feed(wire, stream.data, cut, &err), 0, "%s", err.msg);
	cr_assert_eq(ld_wire_finish(wire), 0);
	cr_assert_eq(events.n, 2);
	cr_assert_eq(events.ev[1].kind, LD_WIRE_DROPPED);
	cr_assert_eq(events.ev[1].seq, 1);
	cr_assert_not_null(strstr(events.ev[1].reason, "cut off"));
}

Test(wire, checksum_mismatch_drops)
{
	struct ld_error err;
	frame_str(&stream, "hello", HELLO);
	begin(&stream, 1, "", "api");
	frame(&stream, "data", DOC, sizeof(DOC) - 1);
	end(&stream, 1, sizeof(DOC) - 1, crc_of(DOC, sizeof(DOC) - 1) ^ 1);
	cr_assert_eq(feed_all(wire, &stream, &err), 0, "%s", err.msg);
	cr_assert_eq(events.n, 2);
	cr_assert_eq(last(&events)->kind, LD_WIRE_DROPPED);
	cr_assert_eq(last(&events)->seq, 1);
	cr_assert_str_eq(last(&events)->reason, "checksum mismatch");
}

Test(wire, wrong_byte_count_drops)
{
	struct ld_error err;
	frame_str(&stream, "hello", HELLO);
	begin(&stream, 1, "", "api");
	frame(&stream, "data", DOC, 10);
	end(&stream, 1, 11, crc_of(DOC, 10));
	cr_assert_eq(feed_all(wire, &stream, &err), 0, "%s", err.msg);
	cr_assert_eq(events.n, 2);
	cr_assert_eq(last(&events)->kind, LD_WIRE_DROPPED);
	cr_assert_str_eq(last(&events)->reason, "received 10 bytes but the agent sent 11");
}

Test(wire, end_for_another_seq_drops)
{
	struct ld_error err;
	frame_str(&stream, "hello", HELLO);
	begin(&stream, 1, "", "api");
	frame(&stream, "data", DOC, 10);
	end(&stream, 2, 10, crc_of(DOC, 10));
	cr_assert_eq(feed_all(wire, &stream, &err), 0, "%s", err.msg);
	cr_assert_eq(last(&events)->kind, LD_WIRE_DROPPED);
	cr_assert_eq(last(&events)->seq, 1);
	cr_assert_str_eq(last(&events)->reason, "end frame names snapshot 2");
}

Test(wire, begin_while_open_drops_the_first)
{
	struct ld_error err;
	frame_str(&stream, "hello", HELLO);
	begin(&stream, 1, "first", "api");
	frame(&stream, "data", "{\"partial\":", 11);
	snapshot(&stream, 2, "second", "api", DOC, sizeof(DOC) - 1, NULL, 0);
	cr_assert_eq(feed_all(wire, &stream, &err), 0, "%s", err.msg);
	cr_assert_eq(events.n, 3);
	cr_assert_eq(events.ev[1].kind, LD_WIRE_DROPPED);
	cr_assert_eq(events.ev[1].seq, 1);
	cr_assert_str_eq(events.ev[1].reason, "a new snapshot began before it ended");
	cr_assert_eq(events.ev[2].kind, LD_WIRE_SNAPSHOT);
	cr_assert_eq(events.ev[2].seq, 2);
	cr_assert_str_eq(events.ev[2].label, "second");
	/* Nothing of the first document leaks into the second. */
	cr_assert_eq(events.ev[2].len, sizeof(DOC) - 1);
	cr_assert_eq(memcmp(events.ev[2].data, DOC, sizeof(DOC) - 1), 0);
}

Test(wire, unknown_tags_are_skipped)
{
	struct ld_error err;
	frame_str(&stream, "hello", HELLO);
	frame_str(&stream, "future", "{\"whatever\":1}");
	begin(&stream, 1, "x", "api");
	frame_str(&stream, "zzz", "not json at all\n\n");
	frame(&stream, "data", DOC, sizeof(DOC) - 1);
	frame(&stream, "progress", "", 0);
	end(&stream, 1, sizeof(DOC) - 1, crc_of(DOC, sizeof(DOC) - 1));
	/* A long unknown frame: the control-frame limit does not apply. */
	size_t big = (64u << 10) + 100;
	char *payload = malloc(big);
	cr_assert_not_null(payload);
	memset(payload, 'q', big);
	frame(&stream, "abcdefghijklmno", payload, big); /* 15 letters, the longest tag */
	free(payload);
	cr_assert_eq(feed_all(wire, &stream, &err), 0, "%s", err.msg);
	cr_assert_eq(ld_wire_finish(wire), 0);
	cr_assert_eq(events.n, 2);
	cr_assert_eq(events.ev[1].kind, LD_WIRE_SNAPSHOT);
	cr_assert_eq(events.ev[1].len, sizeof(DOC) - 1);
	cr_assert_eq(memcmp(events.ev[1].data, DOC, sizeof(DOC) - 1), 0);
}

Test(wire, log_frame)
{
	struct ld_error err;
	frame_str(&stream, "hello", HELLO);
	frame_str(&stream, "log", "{\"level\":\"warning\",\"message\":\"disk \\u001b[31m full\"}");
	cr_assert_eq(feed_all(wire, &stream, &err), 0, "%s", err.msg);
	cr_assert_eq(events.n, 2);
	const struct event *l = last(&events);
	cr_assert_eq(l->kind, LD_WIRE_LOG);
	cr_assert_str_eq(l->level, "warning");
	cr_assert_str_eq(l->message, "disk \x1b[31m full");
}

Test(wire, data_and_end_outside_a_snapshot_are_ignored)
{
	struct ld_error err;
	frame_str(&stream, "hello", HELLO);
	frame(&stream, "data", DOC, 10);
	end(&stream, 1, 10, crc_of(DOC, 10));
	snapshot(&stream, 3, "", "api", "{}", 2, NULL, 0);
	cr_assert_eq(feed_all(wire, &stream, &err), 0, "%s", err.msg);
	cr_assert_eq(events.n, 2);
	cr_assert_eq(events.ev[1].kind, LD_WIRE_SNAPSHOT);
	cr_assert_eq(events.ev[1].len, 2);
}

Test(wire, empty_snapshot_document)
{
	struct ld_error err;
	frame_str(&stream, "hello", HELLO);
	begin(&stream, 1, "", "api");
	end(&stream, 1, 0, crc_of("", 0));
	cr_assert_eq(feed_all(wire, &stream, &err), 0, "%s", err.msg);
	cr_assert_eq(events.n, 2);
	cr_assert_eq(events.ev[1].kind, LD_WIRE_SNAPSHOT);
	cr_assert_eq(events.ev[1].len, 0);
}

Test(wire, no_hello_first)
{
	struct ld_buf b;
	ld_buf_init(&b);
	begin(&b, 1, "", "api");
	expect_protocol_error(b.data, b.len, "agent stream does not start with a hello frame");
	ld_buf_finish(&b);
	cr_assert_not(ld_wire_connected(wire));
	cr_assert_eq(events.n, 0);
}

Test(wire, unknown_tag_before_hello)
{
	const char *s = "future 2\n{}\n";
	expect_protocol_error(s, strlen(s), "does not start with a hello frame");
}

Test(wire, hello_of_another_version)
{
	struct ld_buf b;
	ld_buf_init(&b);
	frame_str(&b, "hello", "{\"protocol\":\"leakdiff-pipe\",\"version\":2,\"pid\":1}");
	expect_protocol_error(b.data, b.len, "agent speaks protocol version 2; this recorder speaks 1");
	ld_buf_finish(&b);
	cr_assert_not(ld_wire_connected(wire));
	cr_assert_eq(events.n, 0);
}

Test(wire, hello_of_another_protocol)
{
	struct ld_buf b;
	ld_buf_init(&b);
	frame_str(&b, "hello", "{\"protocol\":\"other\",\"version\":1}");
	expect_protocol_error(b.data, b.len, "agent stream does not speak leakdiff-pipe");
	ld_buf_finish(&b);
}

Test(wire, malformed_hello)
{
	struct ld_buf b;
	ld_buf_init(&b);
	frame_str(&b, "hello", "not json");
	expect_protocol_error(b.data, b.len, "agent sent a malformed hello frame");
	ld_buf_finish(&b);
}

Test(wire, header_without_space)
{
	expect_protocol_error("hello\n", 6, "bad frame header");
}

Test(wire, header_with_empty_tag)
{
	expect_protocol_error(" 5\nhello\n", 9, "bad frame header");
}

Test(wire, header_with_uppercase_tag)
{
	expect_protocol_error("HELLO 2\n{}\n", 11, "bad frame tag");
}

Test(wire, header_with_digits_in_tag)
{
	expect_protocol_error("hello2 2\n{}\n", 12, "bad frame tag");
}

Test(wire, tag_longer_than_15_letters)
{
	say_hello();
	expect_protocol_error("abcdefghijklmnop 0\n\n", 20, "bad frame header");
}

Test(wire, length_with_leading_zero)
{
	expect_protocol_error("hello 02\n{}\n", 12, "bad frame length");
}

Test(wire, length_not_a_number)
{
	say_hello();
	expect_protocol_error("data 1x\n", 8, "bad frame length");
}

Test(wire, length_with_sign)
{
	say_hello();
	expect_protocol_error("data +1\n", 8, "bad frame length");
}

Test(wire, length_missing)
{
	say_hello();
	expect_protocol_error("data \n", 6, "bad frame length");
}

Test(wire, header_too_long)
{
	char h[64];
	memset(h, 'a', sizeof(h));
	expect_protocol_error(h, sizeof(h), "frame header too long");
}

Test(wire, header_line_limit_is_32_bytes_with_the_newline)
{
	/* 31 bytes and a newline: judged on its contents (a bad length)... */
	say_hello();
	char h[40];
	memcpy(h, "data ", 5);
	memset(h + 5, '9', 26);
	h[31] = '\n';
	expect_protocol_error(h, 32, "bad frame length");
}

Test(wire, header_line_of_33_bytes_is_too_long)
{
	/* ... 32 bytes and a newline: too long before it is even read. */
	say_hello();
	char h[40];
	memcpy(h, "data ", 5);
	memset(h + 5, '9', 27);
	h[32] = '\n';
	expect_protocol_error(h, 33, "frame header too long");
}

Test(wire, header_too_long_across_calls)
{
	struct ld_error err;
	cr_assert_eq(feed_str("aaaaaaaaaaaaaaaa", &err), 0);
	expect_protocol_error("aaaaaaaaaaaaaaaa", 16, "frame header too long");
}

Test(wire, frame_over_16_mib)
{
	say_hello();
	expect_protocol_error("data 16777217\n", 14, "agent sent a frame of 16777217 bytes (the limit is 16777216)");
}

Test(wire, frame_length_with_many_digits)
{
	say_hello();
	expect_protocol_error("data 99999999999999999999\n", 26, "bad frame length");
}

Test(wire, frame_of_exactly_16_mib_is_allowed)
{
	say_hello();
	struct ld_error err;
	cr_assert_eq(feed_str("skipme 16777216\n", &err), 0, "%s", err.msg);
	size_t n = 16u << 20;
	char *zeros = calloc(1, n);
	cr_assert_not_null(zeros);
	cr_assert_eq(ld_wire_feed(wire, zeros, n, &err), 0, "%s", err.msg);
	free(zeros);
	cr_assert_eq(feed_str("\n", &err), 0, "%s", err.msg);
	cr_assert_eq(feed_str("log 2\n{}\n", &err), 0, "%s", err.msg);
	cr_assert_eq(last(&events)->kind, LD_WIRE_LOG);
}

Test(wire, control_frame_over_64_kib)
{
	say_hello();
	expect_protocol_error("begin 65537\n", 12, "agent sent a begin frame of 65537 bytes");
}

Test(wire, missing_newline_after_payload)
{
	expect_protocol_error("hello 2\n{}X", 11, "frame not followed by a newline");
}

Test(wire, corruption_drops_the_open_snapshot)
{
	struct ld_error err;
	say_hello();
	struct ld_buf b;
	ld_buf_init(&b);
	begin(&b, 5, "", "api");
	frame(&b, "data", DOC, 10);
	cr_assert_eq(feed_all(wire, &b, &err), 0, "%s", err.msg);
	ld_buf_finish(&b);
	expect_protocol_error("DATA 1\nx\n", 9, "bad frame tag");
	cr_assert_eq(events.n, 2);
	cr_assert_eq(events.ev[1].kind, LD_WIRE_DROPPED);
	cr_assert_eq(events.ev[1].seq, 5);
	cr_assert_str_eq(events.ev[1].reason, "the stream became corrupt while it was being sent");
}

Test(wire, header_with_a_nul_byte)
{
	/* "data 5\0junk" is not "data 5": the header is TAG SP LENGTH LF. */
	say_hello();
	expect_protocol_error("data 5\0junk\nhello\n", 18, "bad frame");
}

Test(wire, snapshot_over_max_snapshot_drops)
{
	struct log lg = { .fail_on = -1 };
	struct ld_wire *w = ld_wire_create(record, &lg, 100);
	cr_assert_not_null(w);
	struct ld_error err;
	frame_str(&stream, "hello", HELLO);
	char doc[101];
	memset(doc, ' ', sizeof(doc));
	doc[0] = '{';
	/* One byte over the limit is too much. */
	begin(&stream, 1, "", "api");
	frame(&stream, "data", doc, 60);
	frame(&stream, "data", doc + 60, 41);
	end(&stream, 1, 101, crc_of(doc, 101));
	/* Exactly at the limit is fine. */
	size_t cut = 50;
	snapshot(&stream, 2, "", "api", doc, 100, &cut, 1);
	cr_assert_eq(feed_all(w, &stream, &err), 0, "%s", err.msg);
	cr_assert_eq(ld_wire_finish(w), 0);
	cr_assert_eq(lg.n, 3);
	cr_assert_eq(lg.ev[1].kind, LD_WIRE_DROPPED);
	cr_assert_eq(lg.ev[1].seq, 1);
	cr_assert_not_null(strstr(lg.ev[1].reason, "larger than 100 bytes"), "reason: %s", lg.ev[1].reason);
	cr_assert_eq(lg.ev[2].kind, LD_WIRE_SNAPSHOT);
	cr_assert_eq(lg.ev[2].seq, 2);
	cr_assert_eq(lg.ev[2].len, 100);
	ld_wire_destroy(w);
	log_free(&lg);
}

Test(wire, empty_stream)
{
	cr_assert_eq(ld_wire_finish(wire), 0);
	cr_assert_eq(events.n, 0);
	cr_assert_not(ld_wire_connected(wire));
	struct ld_error err;
	cr_assert_eq(ld_wire_feed(wire, "", 0, &err), 0);
	cr_assert_eq(ld_wire_finish(wire), 0);
	cr_assert_eq(events.n, 0);
}

Test(wire, finish_after_a_complete_stream_adds_nothing)
{
	struct ld_error err;
	good_stream(&stream);
	cr_assert_eq(feed_all(wire, &stream, &err), 0, "%s", err.msg);
	size_t n = events.n;
	cr_assert_eq(ld_wire_finish(wire), 0);
	cr_assert_eq(events.n, n);
}

Test(wire, callback_error_stops_feed)
{
	struct ld_error err;
	good_stream(&stream);
	events.fail_on = LD_WIRE_SNAPSHOT;
	events.fail_with = -ECANCELED;
	cr_assert_eq(feed_all(wire, &stream, &err), -ECANCELED);
	cr_assert_eq(count_kind(&events, LD_WIRE_SNAPSHOT), 1);
}

Test(wire, destroy_with_an_open_snapshot)
{
	struct ld_error err;
	frame_str(&stream, "hello", HELLO);
	begin(&stream, 1, "x", "api");
	frame(&stream, "data", DOC, 30);
	cr_assert_eq(feed_all(wire, &stream, &err), 0, "%s", err.msg);
	ld_wire_destroy(wire); /* must free the partial document (valgrind checks) */
	wire = NULL;
	ld_wire_destroy(NULL);
	cr_assert_eq(events.n, 1);
}

Test(wire, out_of_memory_in_a_snapshot)
{
	TH_REQUIRE_WRAP();
	good_stream(&stream);
	/* Each allocation in turn fails: the parser must never report a
	 * snapshot with wrong contents, and must not crash or leak. */
	long n;
	for (n = 0; n < 2000; n++) {
		struct log lg = { .fail_on = -1 };
		th_fail_after(n);
		struct ld_wire *w = ld_wire_create(record, &lg, 0);
		struct ld_error err;
		int r = w ? ld_wire_feed(w, stream.data, stream.len, &err) : -ENOMEM;
		if (w)
			ld_wire_finish(w);
		bool failed = th_fail_off() > n;
		bool done = false;
		for (size_t i = 0; i < lg.n; i++) {
			if (lg.ev[i].kind == LD_WIRE_SNAPSHOT) {
				cr_assert_eq(lg.ev[i].len, sizeof(DOC) - 1);
				cr_assert_eq(memcmp(lg.ev[i].data, DOC, sizeof(DOC) - 1), 0);
				done = true;
			}
		}
		cr_assert(r == 0 || r == -ENOMEM || r == -EPROTO, "feed returned %d", r);
		ld_wire_destroy(w);
		log_free(&lg);
		if (!failed) {
			cr_assert(done && r == 0, "no allocation failed, yet no snapshot (%d)", r);
			break;
		}
	}
	cr_assert_lt(n, 2000);
}
