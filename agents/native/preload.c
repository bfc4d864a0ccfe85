/*
 * The native agent's entry points when LD_PRELOAD puts it into a program:
 * the malloc family it interposes, leakdiff_snapshot(), and the constructor
 * and destructor that start the agent from the environment and take the
 * at-exit snapshot. The tracking itself is track.c's, the settings
 * config.c's.
 *
 * The hooks call glibc's allocator through the __libc_* names it exports, so
 * there is no dlsym() bootstrap and no allocation of our own on the way.
 * Their fast path is inline (agent.h); a block to record leaves the hook by
 * a tail call to ld_record_entry, so that no frame of ours is left on the
 * stack the agent walks.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent.h"
#include "leakdiff.h"

#define LD_EXPORT __attribute__((visibility("default")))

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);
extern void *__libc_memalign(size_t align, size_t size);
extern void *__libc_valloc(size_t size);
extern void *__libc_pvalloc(size_t size);

/* glibc's own, found by the constructor; NULL before. */
static void *(*real_aligned_alloc)(size_t, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void (*real_exit)(int);

/* ------------------------------------------------------------ hooks */

/*
 * The interposed allocator. Each function returns exactly what glibc's
 * returns, leaves errno as glibc leaves it (the agent's own work saves and
 * restores it) and hands the caller a block it owns as usual; a block the
 * agent fails to record (it ran out of memory) is simply not counted. When
 * the agent is off, or this thread is already inside it, the call goes
 * straight to glibc. realloc() counts the new block at the stack that
 * resized it; realloc(p, 0) frees p, as glibc does.
 */

LD_EXPORT void *malloc(size_t size)
{
	void *p = __libc_malloc(size);
	if (p && ld_track_on())
		return ld_track_new(p, size);
	return p;
}

LD_EXPORT void *calloc(size_t n, size_t size)
{
	void *p = __libc_calloc(n, size);
	if (p && ld_track_on())
		return ld_track_new(p, n * size); /* cannot overflow: the block exists */
	return p;
}

LD_EXPORT void free(void *ptr)
{
	/* Out of the table before the block is free: once glibc has it back,
	 * another thread may be handed the same address. */
	if (ld_track_on()) {
		/* The first free after a new high-water mark: the heap is at its peak. */
		if (ptr && atomic_load_explicit(&ld_track_peak_passed, memory_order_relaxed))
			ld_track_peak_fall();
		ld_track_forget(ptr, NULL, NULL);
	}
	__libc_free(ptr);
}

static void *do_realloc(void *old, size_t size)
{
	if (!ld_track_on())
		return __libc_realloc(old, size);
	uint32_t site = 0;
	size_t old_size = 0;
	bool had = ld_track_forget(old, &site, &old_size);
	void *p = __libc_realloc(old, size);
	if (p) {
		/* The new block belongs to the stack that resized it. */
		return ld_track_new(p, size);
	} else if (had && size != 0) {
		/* Failed: the old block is intact (with size 0 glibc freed it). */
		ld_track_restore(old, old_size, site);
	}
	return p;
}

LD_EXPORT void *realloc(void *ptr, size_t size)
{
	return do_realloc(ptr, size);
}

LD_EXPORT void *reallocarray(void *ptr, size_t n, size_t size)
{
	size_t bytes;
	if (__builtin_mul_overflow(n, size, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	return do_realloc(ptr, bytes);
}

LD_EXPORT void *memalign(size_t align, size_t size)
{
	void *p = __libc_memalign(align, size);
	if (p && ld_track_on())
		return ld_track_new(p, size);
	return p;
}

static void *call_aligned_alloc(size_t align, size_t size)
{
	/* glibc's own checks differ between versions; use its function when
	 * the constructor found it, memalign (what older glibc aliases it to)
	 * before that. */
	void *(*f)(size_t, size_t) = real_aligned_alloc;
	return f ? f(align, size) : __libc_memalign(align, size);
}

LD_EXPORT void *aligned_alloc(size_t align, size_t size)
{
	void *p = call_aligned_alloc(align, size);
	if (p && ld_track_on())
		return ld_track_new(p, size);
	return p;
}

/* glibc's posix_memalign, for the time before the constructor. */
static int fallback_posix_memalign(void **out, size_t align, size_t size)
{
	if (align % sizeof(void *) != 0 || align == 0 || (align & (align - 1)) != 0)
		return EINVAL;
	void *p = __libc_memalign(align, size);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

static int call_posix_memalign(void **out, size_t align, size_t size)
{
	int (*f)(void **, size_t, size_t) = real_posix_memalign;
	return f ? f(out, align, size) : fallback_posix_memalign(out, align, size);
}

LD_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
	int r = call_posix_memalign(out, align, size);
	if (r == 0 && ld_track_on())
		ld_track_new(*out, size);
	return r;
}

LD_EXPORT void *valloc(size_t size)
{
	void *p = __libc_valloc(size);
	if (p && ld_track_on())
		return ld_track_new(p, size);
	return p;
}

LD_EXPORT void *pvalloc(size_t size)
{
	void *p = __libc_pvalloc(size);
	if (p && ld_track_on())
		return ld_track_new(p, size);
	return p;
}

/* ------------------------------------------------------------ life cycle */

/* See leakdiff.h. The snapshot is written from the calling thread. */
LD_EXPORT void leakdiff_snapshot(const char *label)
{
	ld_track_snapshot(label ? label : "", "api", false);
}

/*
 * Reads the environment (see leakdiff-protocol(7)), which also removes it
 * and this library from LD_PRELOAD so that programs the target runs are not
 * traced, and starts tracking. On any failure the agent stays off and the
 * hooks only forward.
 */
__attribute__((constructor)) static void agent_start(void)
{
	static struct ld_config conf;
	ld_track_busy = 1;
	int e = errno;
	ld_exec_remember(); /* before the variables are removed */
	ld_config_init(&conf);
	/* Beside the Python agent, which owns the pipe: see mixed.c. */
	bool mixed = ld_config_mixed_from_env(&conf);
	if (!mixed && !ld_config_from_env(&conf)) {
		ld_track_stop();
		goto out;
	}
	if (!mixed && ld_track_open(&conf) < 0)
		goto out;
	/* Through an integer: ISO C has no object-to-function pointer cast. */
	real_aligned_alloc = (void *(*)(size_t, size_t))(uintptr_t)dlsym(RTLD_NEXT, "aligned_alloc");
	real_posix_memalign = (int (*)(void **, size_t, size_t))(uintptr_t)dlsym(RTLD_NEXT, "posix_memalign");
	real_exit = (void (*)(int))(uintptr_t)dlsym(RTLD_NEXT, "_exit");
	if (mixed)
		ld_track_start_mixed(&conf);
	else
		ld_track_start();
out:
	ld_exec_release_signal(conf.signum, false); /* the agent did not start: nothing takes it */
	errno = e;
	ld_track_busy = 0;
}

/*
 * The at-exit snapshot. A destructor of this library runs in _dl_fini,
 * after every atexit() handler, the C++ static destructors of the program
 * and the destructors of the executable (all registered or initialised
 * after this library), so what is left is what the program never freed.
 */
__attribute__((destructor)) static void agent_stop(void)
{
	ld_track_exit();
}

/*
 * _exit() and _Exit() end the process without running destructors, and
 * programs end that way after success too: dash always does, and so does
 * Python's os._exit(). Take the at-exit snapshot first (see
 * ld_track_exit_direct() for when it is skipped), then end the process as
 * glibc would; before the constructor found glibc's _exit, by the system
 * call itself.
 */
static __attribute__((noreturn)) void end_process(int status)
{
	ld_track_exit_direct();
	if (real_exit)
		real_exit(status);
	for (;;)
		syscall(SYS_exit_group, status);
}

LD_EXPORT void _exit(int status)
{
	end_process(status);
}

LD_EXPORT void _Exit(int status)
{
	end_process(status);
}
