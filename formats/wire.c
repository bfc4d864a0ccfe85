/*
 * Frame parser for the pipe protocol; see wire.h. A small state machine:
 * header line, payload, trailing newline. Data payloads are appended to the
 * open snapshot's buffer as they arrive so a large snapshot is never copied
 * twice; control payloads (hello, begin, end, log) are collected whole and
 * decoded with cJSON.
 */
#include "wire.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "buf.h"

enum state { HEADER, PAYLOAD, TRAILER, BROKEN };

enum tag { TAG_HELLO, TAG_BEGIN, TAG_DATA, TAG_END, TAG_LOG, TAG_OTHER };

struct ld_wire {
	ld_wire_cb cb;
	void *ctx;
	uint64_t max_snapshot;
	enum state state;
	char header[LD_WIRE_MAX_HEADER + 1];
	size_t header_len;
	enum tag tag;
	size_t remaining;     /* payload bytes still to come */
	struct ld_buf control;
	bool connected;
	/* the open snapshot */
	bool open;
	int64_t seq;
	char *label, *trigger;
	struct ld_buf doc;
	uLong crc;
	bool overflow;
};

struct ld_wire *ld_wire_create(ld_wire_cb cb, void *ctx, uint64_t max_snapshot)
{
	struct ld_wire *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->cb = cb;
	w->ctx = ctx;
	w->max_snapshot = max_snapshot ? max_snapshot : (UINT64_C(1) << 30);
	ld_buf_init(&w->control);
	ld_buf_init(&w->doc);
	return w;
}

static void close_snapshot(struct ld_wire *w)
{
	w->open = false;
	free(w->label);
	free(w->trigger);
	w->label = w->trigger = NULL;
	ld_buf_finish(&w->doc);
	w->overflow = false;
}

void ld_wire_destroy(struct ld_wire *w)
{
	if (!w)
		return;
	close_snapshot(w);
	ld_buf_finish(&w->control);
	free(w);
}

int ld_wire_connected(const struct ld_wire *w)
{
	return w->connected;
}

static int emit(struct ld_wire *w, struct ld_wire_event *ev)
{
	if (!ev->runtime) ev->runtime = "";
	if (!ev->agent) ev->agent = "";
	if (!ev->label) ev->label = "";
	if (!ev->trigger) ev->trigger = "";
	if (!ev->level) ev->level = "";
	if (!ev->message) ev->message = "";
	if (!ev->reason) ev->reason = "";
	return w->cb(w->ctx, ev);
}

static int drop(struct ld_wire *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int drop(struct ld_wire *w, const char *fmt, ...)
{
	char reason[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	struct ld_wire_event ev = { .kind = LD_WIRE_DROPPED, .seq = w->seq, .pid = -1, .reason = reason };
	close_snapshot(w);
	return emit(w, &ev);
}

/* Marks the stream corrupt; drops the open snapshot first. */
static int broken(struct ld_wire *w, struct ld_error *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int broken(struct ld_wire *w, struct ld_error *err, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	if (w->open)
		drop(w, "the stream became corrupt while it was being sent");
	w->state = BROKEN;
	return -EPROTO;
}

static const char *json_str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t json_int(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 ||
	    v->valuedouble != floor(v->valuedouble))
		return -1;
	return (int64_t)v->valuedouble;
}

static int on_hello(struct ld_wire *w, const cJSON *o, struct ld_error *err)
{
	const char *proto = json_str(o, "protocol");
	if (!proto || strcmp(proto, LD_WIRE_PROTOCOL) != 0)
		return broken(w, err, "agent stream does not speak %s", LD_WIRE_PROTOCOL);
	int64_t v = json_int(o, "version");
	if (v != LD_WIRE_VERSION)
		return broken(w, err, "agent speaks protocol version %lld; this recorder speaks %d",
			      (long long)v, LD_WIRE_VERSION);
	w->connected = true;
	struct ld_wire_event ev = { .kind = LD_WIRE_HELLO, .seq = -1, .pid = json_int(o, "pid"),
				    .runtime = json_str(o, "runtime"), .agent = json_str(o, "agent"),
				    .requests = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "requests")),
				    .attached = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "attached")) };
	return emit(w, &ev);
}

static int on_begin(struct ld_wire *w, const cJSON *o)
{
	int r = 0;
	if (w->open)
		r = drop(w, "a new snapshot began before it ended");
	if (r < 0)
		return r;
	const char *label = json_str(o, "label"), *trigger = json_str(o, "trigger");
	w->open = true;
	w->seq = json_int(o, "seq");
	w->label = strdup(label ? label : "");
	w->trigger = strdup(trigger ? trigger : "");
	w->crc = crc32(0L, Z_NULL, 0);
	ld_buf_init(&w->doc);
	if (!w->label || !w->trigger)
		return drop(w, "out of memory");
	return 0;
}

static int on_end(struct ld_wire *w, const cJSON *o)
{
	if (!w->open)
		return 0; /* an end for a snapshot already dropped */
	int64_t seq = json_int(o, "seq"), bytes = json_int(o, "bytes"), crc = json_int(o, "crc32");
	if (w->overflow)
		return drop(w, "larger than %llu bytes (raise LEAKDIFF_MAX_SNAPSHOT)",
			    (unsigned long long)w->max_snapshot);
	if (w->doc.oom)
		return drop(w, "out of memory");
	if (seq != w->seq)
		return drop(w, "end frame names snapshot %lld", (long long)seq);
	if (bytes < 0 || (uint64_t)bytes != w->doc.len)
		return drop(w, "received %zu bytes but the agent sent %lld", w->doc.len, (long long)bytes);
	if (crc < 0 || (uLong)crc != w->crc)
		return drop(w, "checksum mismatch");
	struct ld_wire_event ev = { .kind = LD_WIRE_SNAPSHOT, .seq = w->seq, .pid = -1,
				    .label = w->label, .trigger = w->trigger,
				    .data = w->doc.data ? w->doc.data : "", .len = w->doc.len };
	int r = emit(w, &ev);
	close_snapshot(w);
	return r;
}

static int on_log(struct ld_wire *w, const cJSON *o)
{
	struct ld_wire_event ev = { .kind = LD_WIRE_LOG, .seq = -1, .pid = -1,
				    .level = json_str(o, "level"), .message = json_str(o, "message") };
	return emit(w, &ev);
}

static int dispatch_control(struct ld_wire *w, struct ld_error *err)
{
	cJSON *o = cJSON_ParseWithLength(w->control.data ? w->control.data : "", w->control.len);
	int r = 0;
	if (!cJSON_IsObject(o)) {
		if (w->tag == TAG_HELLO)
			r = broken(w, err, "agent sent a malformed hello frame");
		else if (w->tag == TAG_BEGIN || w->tag == TAG_END)
			r = w->open ? drop(w, "malformed %s frame", w->tag == TAG_BEGIN ? "begin" : "end") : 0;
		cJSON_Delete(o);
		return r;
	}
	switch (w->tag) {
	case TAG_HELLO: r = on_hello(w, o, err); break;
	case TAG_BEGIN: r = on_begin(w, o); break;
	case TAG_END: r = on_end(w, o); break;
	case TAG_LOG: r = on_log(w, o); break;
	default: break;
	}
	cJSON_Delete(o);
	return r;
}

static int parse_header(struct ld_wire *w, struct ld_error *err)
{
	static const struct {
		const char *name;
		enum tag tag;
	} tags[] = { { "hello", TAG_HELLO }, { "begin", TAG_BEGIN }, { "data", TAG_DATA },
		     { "end", TAG_END }, { "log", TAG_LOG } };
	char *h = w->header;
	/* The header is text: a NUL would let "data 5\0junk" pass as "data 5". */
	if (memchr(h, '\0', w->header_len))
		return broken(w, err, "agent stream is corrupt (bad frame header: NUL byte)");
	h[w->header_len] = '\0';
	char *sp = strchr(h, ' ');
	if (!sp || sp == h || sp - h > 15)
		return broken(w, err, "agent stream is corrupt (bad frame header)");
	for (char *p = h; p < sp; p++)
		if (*p < 'a' || *p > 'z')
			return broken(w, err, "agent stream is corrupt (bad frame tag)");
	const char *num = sp + 1;
	if (!*num || (num[0] == '0' && num[1]) )
		return broken(w, err, "agent stream is corrupt (bad frame length)");
	uint64_t len = 0;
	for (const char *p = num; *p; p++) {
		if (*p < '0' || *p > '9' || len > LD_WIRE_MAX_FRAME)
			return broken(w, err, "agent stream is corrupt (bad frame length)");
		len = len * 10 + (uint64_t)(*p - '0');
	}
	if (len > LD_WIRE_MAX_FRAME)
		return broken(w, err, "agent sent a frame of %llu bytes (the limit is %u)",
			      (unsigned long long)len, LD_WIRE_MAX_FRAME);
	*sp = '\0';
	w->tag = TAG_OTHER;
	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
		if (strcmp(h, tags[i].name) == 0)
			w->tag = tags[i].tag;
	if (!w->connected && w->tag != TAG_HELLO)
		return broken(w, err, "agent stream does not start with a hello frame");
	if (w->tag != TAG_DATA && w->tag != TAG_OTHER && len > LD_WIRE_MAX_CONTROL)
		return broken(w, err, "agent sent a %s frame of %llu bytes", h, (unsigned long long)len);
	w->remaining = (size_t)len;
	w->header_len = 0;
	ld_buf_finish(&w->control);
	ld_buf_init(&w->control);
	return 0;
}

static void take_data(struct ld_wire *w, const unsigned char *p, size_t n)
{
	if (!w->open || w->overflow)
		return; /* data outside a snapshot, or past the limit: discarded */
	if (w->doc.len + n > w->max_snapshot) {
		w->overflow = true;
		ld_buf_finish(&w->doc);
		return;
	}
	ld_buf_add(&w->doc, p, n);
	w->crc = crc32(w->crc, p, (uInt)n);
}

int ld_wire_feed(struct ld_wire *w, const void *data, size_t len, struct ld_error *err)
{
	const unsigned char *p = data, *end = p + len;
	int r = 0;
	if (w->state == BROKEN)
		return ld_error_set(err, EPROTO, "agent stream is corrupt");
	while (p < end && r == 0) {
		switch (w->state) {
		case HEADER: {
			const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t take = nl ? (size_t)(nl - p) : (size_t)(end - p);
			if (w->header_len + take > LD_WIRE_MAX_HEADER - 1)
				return broken(w, err, "agent stream is corrupt (frame header too long)");
			memcpy(w->header + w->header_len, p, take);
			w->header_len += take;
			p += take;
			if (nl) {
				p++;
				r = parse_header(w, err);
				if (r == 0)
					w->state = w->remaining ? PAYLOAD : TRAILER;
			}
			break;
		}
		case PAYLOAD: {
			size_t take = w->remaining < (size_t)(end - p) ? w->remaining : (size_t)(end - p);
			if (w->tag == TAG_DATA)
				take_data(w, p, take);
			else if (w->tag != TAG_OTHER)
				ld_buf_add(&w->control, p, take);
			p += take;
			w->remaining -= take;
			if (!w->remaining)
				w->state = TRAILER;
			break;
		}
		case TRAILER:
			if (*p++ != '\n')
				return broken(w, err, "agent stream is corrupt (frame not followed by a newline)");
			w->state = HEADER;
			if (w->tag != TAG_DATA && w->tag != TAG_OTHER)
				r = dispatch_control(w, err);
			break;
		case BROKEN:
			return -EPROTO;
		}
	}
	return r;
}

int ld_wire_finish(struct ld_wire *w)
{
	if (w->state == BROKEN)
		return 0;
	if (w->open)
		return drop(w, "cut off after %zu bytes: the stream ended before the snapshot did", w->doc.len);
	return 0;
}
