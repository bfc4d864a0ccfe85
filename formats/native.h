/*
 * The native agent's raw snapshot document ("leakdiff-native-raw", defined
 * in agents/native/doc.c): return addresses and a module map instead of
 * file names and lines. The recorder turns it into an ordinary snapshot by
 * symbolising every address with core/symbolize.c while the program's files
 * are still on disk. The document comes from inside the traced process,
 * which may be corrupting its own memory, so it is checked like a file from
 * a stranger.
 */
#ifndef LD_FORMATS_NATIVE_H
#define LD_FORMATS_NATIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "snapshot.h"
#include "symbolize.h"

#define LD_NATIVE_FORMAT "leakdiff-native-raw"
#define LD_NATIVE_VERSION 1
/* Most modules a raw document may list. */
#define LD_NATIVE_MAX_MODULES 65536

/*
 * Parses len bytes of a raw document, symbolises its addresses and builds a
 * snapshot: frames [file, line, function, function_line, -1] with inlined
 * calls expanded (innermost first), sites whose stacks come out as the same
 * frames merged, totals as the sums over the sites, and meta with runtime
 * "native", the DWARF compilation directories as roots and the system
 * library directories as stdlib. On success stores the snapshot in *out
 * (the caller destroys it) and returns 0; otherwise stores nothing and
 * returns -EINVAL (a document it does not accept) or -ENOMEM, with the
 * reason in err.
 */
int ld_native_parse(const char *json, size_t len, struct ld_snapshot **out, struct ld_error *err);

/*
 * Same as ld_native_parse() but reuses the symbolizer in *sym across
 * snapshots of one process (pass a pointer to NULL the first time; destroy
 * *sym with ld_symbolizer_destroy() at the end). When the document's
 * modules conflict with the ones *sym knows (a library was replaced), *sym
 * is replaced by a fresh symbolizer. *sym is kept on every return.
 */
int ld_native_parse_with(struct ld_symbolizer **sym, const char *json, size_t len,
			 struct ld_snapshot **out, struct ld_error *err);

/* A Python stack of a mixed document: its id and its frames (indices into
 * the snapshot's frames), innermost first. */
struct ld_native_python_stack {
	uint64_t id;
	const uint32_t *frames;
	uint32_t depth;
};

/* The Python stacks of a mixed document, sorted by id. */
struct ld_native_python {
	const struct ld_native_python_stack *stacks;
	size_t n;
};

/* What ld_native_merge() added. */
struct ld_native_merged {
	uint64_t blocks, bytes; /* the native blocks, now also in the heap totals */
	uint64_t spliced;       /* sites with native frames, the evaluation loop and Python frames */
	uint64_t python_only;   /* sites whose native frames never reached the evaluation loop */
	uint64_t native_only;   /* sites without a Python stack (no GIL, or before the agent) */
};

/*
 * Mixed mode (formats/mixed.c): symbolises the raw document in json (len
 * bytes), whose sites carry a Python stack id as their sixth element, and
 * adds its sites to s, a snapshot of the Python agent: native frames up
 * to the interpreter's evaluation loop, then the frames python names for
 * that id (see splice_python() in native.c). The native blocks are added
 * to s's heap totals and counted in *merged (zeroed by the caller); the
 * compilation directories and system library directories are added to
 * s's roots and stdlib. *sym as for ld_native_parse_with(). Returns 0,
 * -EINVAL or -ENOMEM with the reason in err; s may hold some of the sites
 * then, and the caller drops it.
 */
int ld_native_merge(struct ld_symbolizer **sym, const char *json, size_t len, struct ld_snapshot *s,
		    const struct ld_native_python *python, struct ld_native_merged *merged, struct ld_error *err);

/* True when the JSON text looks like a raw document (it names the format). */
bool ld_native_is_raw(const char *json, size_t len);

#endif
