/*
 * The recorder: pipe events in, .snap files out (see recorder.h). The one
 * implementation of numbering, stamping, saving and the cut-snapshot rules,
 * whatever channel the events come through.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "escape.h"
#include "mixed.h"
#include "native.h"
#include "recorder.h"
#include "snap.h"
#include "units.h"

struct ld_recorder {
	struct ld_recorder_config cfg;
	struct ld_recorder_status st;
	struct ld_wire *wire;
	pid_t target;     /* 0 until set: see ld_recorder_set_target() */
	bool native;      /* the last agent said hello as the native runtime */
	struct ld_symbolizer *sym; /* native: reused across snapshots */
	long long top;    /* highest file number written so far */
	long long base;   /* added to a lone agent's numbers: see LD_WIRE_HELLO */
	bool broken;      /* the stream was corrupt; the rest is ignored */
	bool tee_failed;  /* the copy of the stream could not be written */
	const char *stamp; /* see ld_recorder_stamp_next() */
	bool stamp_final;
	double attached;  /* unix time of an attached agent's hello; negative when none */
	bool told_stripped; /* mixed: said the evaluation loop was never found */
};

struct ld_recorder *ld_recorder_create(const struct ld_recorder_config *cfg)
{
	struct ld_recorder *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->cfg = *cfg;
	r->attached = -1;
	r->wire = ld_wire_create(ld_recorder_event, r, 0);
	if (!r->wire) {
		free(r);
		return NULL;
	}
	return r;
}

void ld_recorder_destroy(struct ld_recorder *r)
{
	if (!r)
		return;
	ld_symbolizer_destroy(r->sym);
	ld_wire_destroy(r->wire);
	free(r);
}

void ld_recorder_set_target(struct ld_recorder *r, pid_t pid)
{
	r->target = pid;
}

void ld_recorder_stamp_next(struct ld_recorder *r, const char *trigger, bool final)
{
	r->stamp = trigger;
	r->stamp_final = final;
}

void ld_recorder_requested(struct ld_recorder *r)
{
	r->st.requested = true;
}

const struct ld_recorder_status *ld_recorder_status(const struct ld_recorder *r)
{
	return &r->st;
}

static char *numbered_path(const char *output, long long seq)
{
	size_t len = strlen(output);
	size_t cap = len + 32;
	char *p = malloc(cap);
	if (!p)
		return NULL;
	if (len > 5 && strcmp(output + len - 5, ".snap") == 0)
		snprintf(p, cap, "%.*s.%lld.snap", (int)(len - 5), output, seq);
	else
		snprintf(p, cap, "%s.%lld", output, seq);
	return p;
}

/*
 * Where peak snapshots go: FILE with ".peak" before its ".snap" (or after
 * it). Each one replaces the last, so the file holds the highest.
 */
static char *peak_path(const char *output)
{
	size_t len = strlen(output);
	size_t cap = len + 8;
	char *p = malloc(cap);
	if (!p)
		return NULL;
	if (len > 5 && strcmp(output + len - 5, ".snap") == 0)
		snprintf(p, cap, "%.*s.peak.snap", (int)(len - 5), output);
	else
		snprintf(p, cap, "%s.peak", output);
	return p;
}

/* The "leakdiff: wrote ..." line for a snapshot saved at path. */
static void announce(const struct ld_recorder *r, const struct ld_wire_event *ev,
		     const struct ld_snapshot *s, const char *trigger, const char *path)
{
	char objs[48], bytes[32];
	if (r->native) {
		ld_count_format(objs, sizeof(objs) - 8, (int64_t)s->totals.heap_blocks, false);
		strcat(objs, " blocks");
	} else {
		ld_count_format(objs, sizeof(objs) - 8, (int64_t)s->totals.objects, false);
		strcat(objs, " objects");
	}
	ld_size_format(bytes, sizeof(bytes), (int64_t)s->totals.heap_bytes, false);
	bool named = *ev->label && strcmp(ev->label, trigger) != 0;
	char *label = named ? ld_escape_dup(ev->label, LD_ESCAPE_TEXT) : NULL;
	char *safe = ld_escape_dup(path, LD_ESCAPE_TEXT);
	fprintf(stderr, "leakdiff: wrote %s (snapshot %lld, %s%s%s%s, %s, %s traced)\n",
		safe ? safe : path, (long long)ev->seq, trigger, label ? " \"" : "",
		label ? label : "", label ? "\"" : "", objs, bytes);
	free(label);
	free(safe);
}

static void out_of_memory(struct ld_recorder *r, struct ld_snapshot *s)
{
	ld_snapshot_destroy(s);
	ld_cli_error(NULL, "out of memory");
	r->st.failed_writes++;
}

static void on_snapshot(struct ld_recorder *r, const struct ld_wire_event *ev)
{
	struct ld_error err = { { 0 } };
	struct ld_snapshot *s = NULL;
	struct ld_native_merged merged = { 0 };
	int pr = !r->native && ld_mixed_is_mixed(ev->data, ev->len)
		 ? ld_mixed_parse_with(&r->sym, ev->data, ev->len, &s, &merged, &err)
		 : r->native || ld_native_is_raw(ev->data, ev->len)
		 ? ld_native_parse_with(&r->sym, ev->data, ev->len, &s, &err)
		 : ld_snap_parse(ev->data, ev->len, &s, &err);
	if (pr < 0) {
		ld_cli_error(NULL, "snapshot %lld from the agent is invalid and was dropped: %s",
			     (long long)ev->seq, err.msg);
		return;
	}
	if (merged.python_only && !merged.spliced && !r->told_stripped) {
		r->told_stripped = true;
		ld_cli_error(NULL, "warning: the interpreter's evaluation loop (_PyEval_EvalFrameDefault) is "
			     "on none of the native stacks (a stripped interpreter?): native blocks are shown "
			     "under their Python lines only");
	}
	/* The agent does not know how it was started; the recorder's caller does. */
	if (ld_meta_set_list(&s->meta.command, &s->meta.ncommand, r->cfg.command, r->cfg.ncommand) < 0) {
		out_of_memory(r, s);
		return;
	}
	/* An agent asked with the signal only sees a signal; the recorder knows
	 * it was sent on a timer. On the request channel the agent is told. */
	if (r->st.requested && !r->st.requests && s->meta.trigger && strcmp(s->meta.trigger, "signal") == 0 &&
	    ld_meta_set(&s->meta.trigger, "interval") < 0) {
		out_of_memory(r, s);
		return;
	}
	/* Attached: the agent sees requests; the recorder knows which is first and last. */
	bool stamped = r->stamp && (strcmp(ev->trigger, "signal") == 0 || strcmp(ev->trigger, "interval") == 0);
	bool final = stamped && r->stamp_final;
	if (stamped && ld_meta_set(&s->meta.trigger, r->stamp) < 0) {
		out_of_memory(r, s);
		return;
	}
	if (stamped)
		r->stamp = NULL;
	/* A native agent does not stamp its own documents; its hello said it attached. */
	if (s->meta.attached < 0 && r->attached >= 0)
		s->meta.attached = r->attached;
	const char *trigger = s->meta.trigger ? s->meta.trigger : ev->trigger;
	bool at_exit = strcmp(ev->trigger, "exit") == 0 || final;
	bool peak = strcmp(ev->trigger, "peak") == 0;
	/*
	 * One agent numbers its snapshots from 1, and FILE.N.snap takes that
	 * number. Once several agents share the pipe (LEAKDIFF_FOLLOW_EXEC),
	 * each counting from 1, files are numbered on from the highest so far
	 * instead, and only the target process (exec keeps its pid) writes its
	 * at-exit snapshot to FILE: nothing overwrites anything.
	 */
	long long number = (long long)ev->seq + r->base;
	if (r->st.hellos > 1) {
		number = r->top + 1;
		if (at_exit && r->target > 0 && s->meta.pid != (int64_t)r->target)
			at_exit = false;
	}
	char *numbered = at_exit ? NULL : peak ? peak_path(r->cfg.output) : numbered_path(r->cfg.output, number);
	const char *path = at_exit ? r->cfg.output : numbered;
	if (!path) {
		out_of_memory(r, s);
		return;
	}
	if (ld_snap_save(path, s, &err) < 0) {
		ld_cli_error(path, "%s", err.msg);
		r->st.failed_writes++;
		if (at_exit)
			r->st.exit_failed = true;
		if (final)
			r->st.final_failed = true;
	} else {
		if (final)
			r->st.final_written = true;
		r->st.written++;
		if (at_exit)
			r->st.got_exit = true;
		else if (!peak && number > r->top)
			r->top = number;
		if (!r->cfg.quiet)
			announce(r, ev, s, trigger, path);
	}
	free(numbered);
	ld_snapshot_destroy(s);
}

int ld_recorder_event(void *ctx, const struct ld_wire_event *ev)
{
	struct ld_recorder *r = ctx;
	switch (ev->kind) {
	case LD_WIRE_HELLO:
		r->st.connected = true;
		/*
		 * The pid of the last hello again: the traced process ran another
		 * program with exec and the agent came with it. That agent takes
		 * the first one's place and counts from 1 again, so its files are
		 * numbered on after those already written.
		 */
		if (r->st.hellos > 0 && ev->pid > 0 && (pid_t)ev->pid == r->st.agent_pid) {
			r->base = r->top;
			/* A request the program before the exec left unanswered
			 * would hold up the timer for good. */
			r->st.requested = false;
		} else
			r->st.hellos++;
		r->native = strcmp(ev->runtime, "native") == 0;
		if (ev->attached) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			r->attached = (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
		}
		r->st.requests = ev->requests;
		if (ev->pid > 0)
			r->st.agent_pid = (pid_t)ev->pid;
		return 0;
	case LD_WIRE_SNAPSHOT:
		on_snapshot(r, ev);
		/* Only a requested snapshot answers the timer's request, not an API one. */
		if (strcmp(ev->trigger, "signal") == 0 || strcmp(ev->trigger, "interval") == 0)
			r->st.requested = false;
		return 0;
	case LD_WIRE_LOG:
		ld_cli_error("agent", "%s", ev->message);
		return 0;
	case LD_WIRE_DROPPED:
		ld_cli_error(NULL, "snapshot %lld was dropped: %s", (long long)ev->seq, ev->reason);
		r->st.requested = false;
		return 0;
	}
	return 0;
}

/* Copies the stream to the tee descriptor; reports the first failure only. */
static void tee(struct ld_recorder *r, const char *data, size_t len)
{
	while (len && !r->tee_failed) {
		ssize_t n = write(r->cfg.tee_fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ld_cli_error(NULL, "cannot copy the stream: %s", n < 0 ? strerror(errno) : "short write");
			r->tee_failed = true;
			r->st.failed_writes++;
			return;
		}
		data += n;
		len -= (size_t)n;
	}
}

void ld_recorder_feed(struct ld_recorder *r, const void *data, size_t len)
{
	if (r->cfg.tee_fd >= 0)
		tee(r, data, len);
	if (r->broken)
		return;
	struct ld_error err = { { 0 } };
	if (ld_wire_feed(r->wire, data, len, &err) == -EPROTO) {
		ld_cli_error(NULL, "%s; no further snapshots will be read", err.msg);
		r->broken = true;
	}
}

void ld_recorder_finish(struct ld_recorder *r)
{
	ld_wire_finish(r->wire);
}
