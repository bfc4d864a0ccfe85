/*
 * The handshake between the two agents of a mixed recording (`leakdiff
 * record --native` of a Python program): the native agent
 * (libleakdiff-preload.so) tracks the malloc family, the Python agent's
 * hooks extension (_sampler) tracks Python's allocators and owns the pipe.
 * The extension finds these two functions with dlsym() when both are
 * loaded; nothing links against them.
 *
 * A native block's site is its native stack plus the id of the Python
 * stack that was running in its thread, which the extension hands out
 * through the callback it registers. The extension later asks for the
 * native sites as a raw document (agents/native/doc.c) and sends it inside
 * its own snapshot, so that one snapshot holds both halves.
 */
#ifndef LD_AGENTS_MIXED_H
#define LD_AGENTS_MIXED_H

#include <stddef.h>
#include <stdint.h>

/* Bumped on both sides together when either signature changes. */
#define LD_MIXED_INTERFACE 1

/* What the callback returns for a block Python's own allocators asked for:
 * the hooks record it, so the native agent must not count it again. */
#define LD_MIXED_SKIP UINT32_MAX

/*
 * Called by the native agent for every block it is about to record, in
 * the allocating thread, inside the agent (its own allocations are not
 * tracked meanwhile). Returns the interned Python stack of the calling
 * thread when it holds the GIL, 0 when it has none, or LD_MIXED_SKIP.
 * It must not take locks that an allocation could be holding.
 */
typedef uint32_t (*leakdiff_mixed_site_fn)(void);

/* Receives the raw document in pieces; returns 0, or -1 to give up. */
typedef int (*leakdiff_mixed_sink_fn)(void *ctx, const char *data, size_t len);

/*
 * Exported by the native agent. register: installs fn (NULL removes it)
 * when the agent runs in mixed mode and speaks interface; returns 0, or -1
 * when it does not (then nothing is installed). document: writes the
 * native sites as a "leakdiff-native-raw" document whose sites carry the
 * Python stack id as their sixth element; returns 0, or -1 when the agent
 * is not tracking or the sink gave up.
 */
typedef int (*leakdiff_mixed_register_fn)(unsigned interface, leakdiff_mixed_site_fn fn);
typedef int (*leakdiff_mixed_document_fn)(leakdiff_mixed_sink_fn sink, void *ctx);

#endif
