/*
 * The pipe protocol between an agent and the recorder (leakdiff-protocol(7)):
 * an incremental parser that is fed whatever read() returned and calls back
 * once per hello, completed snapshot, log message or dropped snapshot.
 * Everything in the stream is untrusted: lengths are bounded, checksums
 * checked, and a snapshot counts only when its end frame agrees.
 */
#ifndef LD_FORMATS_WIRE_H
#define LD_FORMATS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define LD_WIRE_PROTOCOL "leakdiff-pipe"
#define LD_WIRE_VERSION 1
#define LD_WIRE_MAX_HEADER 32
#define LD_WIRE_MAX_FRAME (16u << 20)
#define LD_WIRE_MAX_CONTROL (64u << 10)

enum ld_wire_event_kind {
	LD_WIRE_HELLO,    /* runtime, agent, pid */
	LD_WIRE_SNAPSHOT, /* seq, label, trigger, data/len: the JSON document */
	LD_WIRE_LOG,      /* level, message */
	LD_WIRE_DROPPED,  /* seq, reason: a snapshot that will never complete */
};

struct ld_wire_event {
	enum ld_wire_event_kind kind;
	int64_t seq, pid;                 /* -1 when not given */
	const char *runtime, *agent;      /* hello; never NULL */
	bool requests;                    /* hello: the agent reads the request channel */
	bool attached;                    /* hello: the agent was loaded into a running process */
	const char *label, *trigger;      /* snapshot; never NULL */
	const char *level, *message;      /* log; never NULL */
	const char *reason;               /* dropped; never NULL */
	const char *data;                 /* snapshot document, NUL-terminated */
	size_t len;
};

/*
 * Receives each event. Strings and data are valid only during the call.
 * Returning a negative value stops ld_wire_feed(), which returns it.
 */
typedef int (*ld_wire_cb)(void *ctx, const struct ld_wire_event *ev);

struct ld_wire;

/*
 * Creates a parser calling cb with ctx. max_snapshot bounds one snapshot's
 * document (0 picks 1 GiB). Returns NULL when memory runs out.
 */
struct ld_wire *ld_wire_create(ld_wire_cb cb, void *ctx, uint64_t max_snapshot);

/* Frees the parser; w may be NULL. */
void ld_wire_destroy(struct ld_wire *w);

/*
 * Parses len more bytes of the stream. Returns 0, a callback's negative
 * value, or -EPROTO when the stream is corrupt (bad header, missing hello,
 * unknown version, oversized frame): then err says why, any open snapshot
 * has been reported as dropped, and every later call returns -EPROTO.
 */
int ld_wire_feed(struct ld_wire *w, const void *data, size_t len, struct ld_error *err);

/*
 * Tells the parser the stream ended. A snapshot still open, or a frame cut
 * short, is reported as dropped. Returns 0 or a callback's negative value.
 */
int ld_wire_finish(struct ld_wire *w);

/* True once a valid hello frame has been seen. */
int ld_wire_connected(const struct ld_wire *w);

#endif
