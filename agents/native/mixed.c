/*
 * Mixed mode: the native agent beside the Python agent, for `leakdiff
 * record --native` of a Python program (see agents/common/mixed.h for the
 * handshake). The launcher sets LEAKDIFF_NATIVE_MIXED=1; the agent then
 * tracks the malloc family as usual but opens no pipe and takes no
 * snapshot of its own. The Python agent's hooks extension registers a
 * callback that names the Python stack of each native block (or says the
 * block is one of Python's allocators', which the hooks record), and asks
 * for the native sites when it takes a snapshot, so that the recorder gets
 * one document with both.
 *
 * These two functions are the only symbols the agent exports besides the
 * malloc family and leakdiff_snapshot().
 */
#include <stdatomic.h>

#include "agent.h"
#include "mixed.h"

#define LD_EXPORT __attribute__((visibility("default")))

/* Declared here, not in a header of the agent: only dlsym() reaches them. */
LD_EXPORT int leakdiff_mixed_register(unsigned interface, leakdiff_mixed_site_fn fn);
LD_EXPORT int leakdiff_mixed_document(leakdiff_mixed_sink_fn sink, void *ctx);

/*
 * Installs the Python agent's callback. The pointer is read once per
 * recorded block, so swapping it needs no lock; a callback removed while
 * another thread is inside it finishes that call (the extension is never
 * unloaded, so its code stays valid).
 */
int leakdiff_mixed_register(unsigned interface, leakdiff_mixed_site_fn fn)
{
	if (interface != LD_MIXED_INTERFACE || !ld_track_mixed)
		return -1;
	atomic_store_explicit(&ld_track_mixed_site, fn, memory_order_release);
	return 0;
}

/* The sink gets the document in pieces of up to 1 MiB; see ld_track_mixed_document(). */
int leakdiff_mixed_document(leakdiff_mixed_sink_fn sink, void *ctx)
{
	if (!sink)
		return -1;
	return ld_track_mixed_document(sink, ctx);
}

/* ------------------------------------------------------------ dlsym */

/*
 * ctypes (and cffi in ABI mode) find malloc with dlsym() on libc's handle,
 * which answers with libc's own function, not the one this library puts
 * in front of it: `libc.malloc(1000)` from Python would bypass the agent.
 * In mixed mode dlsym() is interposed so that a lookup of the malloc
 * family that lands on libc's function gets ours instead. Everything else
 * goes to glibc's dlsym through a tail jump that leaves the caller's
 * return address in place, because dlsym(RTLD_NEXT, ...) is relative to
 * the code that calls it.
 */
#if defined(__x86_64__)
#include <dlfcn.h>
#include <string.h>

#include "agent.h"

static void *(*real_dlsym)(void *, const char *);

static const char *const family[] = {
	"malloc", "calloc", "realloc", "free", "reallocarray", "memalign",
	"aligned_alloc", "posix_memalign", "valloc", "pvalloc",
};

static int family_index(const char *name)
{
	for (size_t i = 0; i < sizeof(family) / sizeof(family[0]); i++)
		if (strcmp(name, family[i]) == 0)
			return (int)i;
	return -1;
}

/* A malloc family lookup: libc's function becomes this library's. */
static void *mixed_dlsym(void *handle, const char *name)
{
	void *p = real_dlsym(handle, name);
	int i = p ? family_index(name) : -1;
	if (i < 0)
		return p;
	/* Called from here, RTLD_NEXT means whatever follows this library: libc. */
	void *libc = real_dlsym(RTLD_NEXT, name);
	void *ours = real_dlsym(RTLD_DEFAULT, name);
	return p == libc && ours ? ours : p;
}

void *ld_dlsym_route(const char *name) LD_HIDDEN;

/* Where the trampoline below jumps: glibc's dlsym, or mixed_dlsym(). */
__attribute__((used)) void *ld_dlsym_route(const char *name)
{
	if (!real_dlsym) {
		void *f = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
		if (!f)
			f = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
		/* Through an integer: ISO C has no object-to-function pointer cast. */
		real_dlsym = (void *(*)(void *, const char *))(uintptr_t)f;
	}
	if (ld_track_mixed && !ld_track_busy && name && family_index(name) >= 0)
		return (void *)(uintptr_t)mixed_dlsym;
	return (void *)(uintptr_t)real_dlsym;
}

__asm__(".text\n"
	".globl dlsym\n"
	".type dlsym, @function\n"
	".p2align 4\n"
	"dlsym:\n"
	".cfi_startproc\n"
	"\tpushq %rdi\n"
	".cfi_adjust_cfa_offset 8\n"
	"\tpushq %rsi\n"
	".cfi_adjust_cfa_offset 8\n"
	"\tsubq $8, %rsp\n"
	".cfi_adjust_cfa_offset 8\n"
	"\tmovq %rsi, %rdi\n"
	"\tcall ld_dlsym_route\n"
	"\taddq $8, %rsp\n"
	".cfi_adjust_cfa_offset -8\n"
	"\tpopq %rsi\n"
	".cfi_adjust_cfa_offset -8\n"
	"\tpopq %rdi\n"
	".cfi_adjust_cfa_offset -8\n"
	"\tjmp *%rax\n"
	".cfi_endproc\n"
	".size dlsym, .-dlsym\n");
#endif
