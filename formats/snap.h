/*
 * The .snap file: a snapshot as gzip-compressed JSON, described in
 * leakdiff-snapshot(5). The reader treats every file as hostile: each
 * rejection leaves a one-line reason in the caller's struct ld_error.
 */
#ifndef LD_FORMATS_SNAP_H
#define LD_FORMATS_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "error.h"
/* ld_gunzip() and ld_json_check_nesting(), which callers reach through here. */
#include "gunzip.h"
#include "jsoncheck.h"
#include "snapshot.h"

#define LD_SNAP_FORMAT "leakdiff-snapshot"
#define LD_SNAP_VERSION 1
/* Decompressed size past which a file is refused (a gzip bomb guard). */
#define LD_SNAP_MAX_BYTES_DEFAULT LD_GUNZIP_MAX_DEFAULT
/* JSON nesting past which a document is refused (both readers agree). */
#define LD_SNAP_MAX_NESTING LD_JSON_MAX_NESTING

struct ld_snap_limits {
	uint64_t max_bytes; /* 0 means LD_SNAP_MAX_BYTES_DEFAULT */
};

/*
 * Reads and checks the .snap file at path. On success stores a new snapshot
 * in *out (the caller destroys it) and returns 0. On failure stores nothing,
 * returns a negative errno (-ENOENT, -EISDIR, -EINVAL for bad contents,
 * -EFBIG past the size limit, -ENOMEM) and explains in err. lim may be NULL.
 */
int ld_snap_load(const char *path, const struct ld_snap_limits *lim,
		 struct ld_snapshot **out, struct ld_error *err);

/*
 * Parses len bytes of uncompressed snapshot JSON (a file's contents after
 * gunzip, or the data frames of one pipe snapshot). Same contract as
 * ld_snap_load() with -EINVAL for anything it does not accept.
 */
int ld_snap_parse(const char *json, size_t len, struct ld_snapshot **out, struct ld_error *err);

/*
 * The two readers behind ld_snap_parse(). The scanner reads a well-formed
 * file fast and leaves anything unusual to the tree reader (cJSON), which
 * defines what is accepted and every message; the default tries the first,
 * then the second. Both give the same snapshot for any file the scanner
 * takes (the fuzz_snap target checks this).
 *
 * The scanner alone never calls cJSON's parser, whose error position is a
 * global: it is the one to use from several threads at once, and returns
 * -EAGAIN (with a placeholder message) for a file it leaves to the tree
 * reader, which the caller then runs from a single thread.
 */
enum ld_snap_reader {
	LD_SNAP_READ_ANY,  /* scanner, then tree reader */
	LD_SNAP_READ_SCAN, /* scanner only: -EAGAIN when it declines */
	LD_SNAP_READ_TREE, /* tree reader only */
};

/* ld_snap_parse() with the reader chosen; same contract, plus -EAGAIN above. */
int ld_snap_parse_with(enum ld_snap_reader how, const char *json, size_t len,
		       struct ld_snapshot **out, struct ld_error *err);

/* ld_snap_load() with the reader chosen; same contract, plus -EAGAIN above. */
int ld_snap_load_with(enum ld_snap_reader how, const char *path, const struct ld_snap_limits *lim,
		      struct ld_snapshot **out, struct ld_error *err);

/*
 * Serialises s as snapshot JSON into a new buffer the caller frees. Returns
 * 0 or -ENOMEM.
 */
int ld_snap_serialize(const struct ld_snapshot *s, char **json, size_t *len);

/*
 * Writes s to path as a .snap file, atomically: the data goes to a temporary
 * file in the same directory, is flushed to disk and renamed over path, so
 * a crash or a full disk leaves either the old file or the whole new one,
 * never a part. Returns 0 or a negative errno with a reason in err; no
 * temporary file is left behind on failure.
 */
int ld_snap_save(const char *path, const struct ld_snapshot *s, struct ld_error *err);

/*
 * Checks, before anything is worth saving, that ld_snap_save() could write
 * path: creates and removes a temporary file beside it, the way the save
 * does, and refuses a directory. Changes nothing on disk. Returns 0 or a
 * negative errno with a reason in err.
 */
int ld_snap_check_writable(const char *path, struct ld_error *err);

/* Appends the metadata m as a JSON object, as the snapshot format has it. */
void ld_snap_put_meta(struct ld_buf *b, const struct ld_meta *m);

#endif
