/*
 * The native agent attached to a running process: libleakdiff.so, which
 * `leakdiff record --pid` loads into the target with a debugger-driven
 * dlopen() and starts with ld_attach_start() (leakdiff-protocol(7),
 * ATTACHING). It shares the tracking core (track.c) and the wire stream
 * with the preloaded agent; what differs is how calls reach it and how it
 * leaves:
 *
 *  - A dlopen'ed library interposes nothing, so the malloc family of every
 *    loaded module is redirected to the hooks below by rewriting GOT
 *    entries (got.c), again after each dlopen() (which is redirected too)
 *    and, for modules loaded some other way (the C library's own loads of
 *    NSS modules, dlopen() by a bare name, see dlopen_direct()), at the
 *    helper thread's next tick.
 *  - The hooks call the functions the process itself resolves the names to
 *    (dlsym(RTLD_DEFAULT)), never glibc's internals, so a process with
 *    another allocator keeps it.
 *  - Frees of blocks allocated before attaching are not in the table and
 *    pass straight through; realloc() of such a block counts the result as
 *    a new block of the stack that resized it, as realloc() of any block
 *    does (it was allocated after attaching, at that stack).
 *  - Detaching (the recorder closed the request FIFO, the stream FIFO
 *    broke, or ld_attach_stop()) turns the hooks into plain calls, puts
 *    every GOT entry back, ends the helper thread, closes the FIFOs and
 *    forgets the table. The library stays loaded (it is linked nodelete and
 *    never dlclose'd): a thread that read a GOT entry just before it was
 *    put back still runs a hook, which then forwards. It can attach again.
 *
 * C++ operator new and delete are not hooked: libstdc++'s versions call
 * malloc and free through its own GOT, which is rewritten, so the blocks
 * are counted once, at the same stacks as under LD_PRELOAD.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "got.h"

#define LD_EXPORT __attribute__((visibility("default")))

/* The library's only exports, found by the recorder's debugger (and by
 * tests with dlsym()); declared here since no program links against them. */
LD_EXPORT int ld_attach_start(const char *settings);
LD_EXPORT int ld_attach_stop(void);

/* The process's own functions, found when attaching; never cleared, since
 * a hook may run after detaching. */
static struct {
	void *(*malloc)(size_t);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	void (*free)(void *);
	int (*posix_memalign)(void **, size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	void *(*memalign)(size_t, size_t);
	void *(*valloc)(size_t);
	void *(*pvalloc)(size_t);
	void *(*reallocarray)(void *, size_t, size_t);
} real;

/* Also read by the dlopen hook's assembly. */
void *(*ld_attach_real_dlopen)(const char *, int) LD_HIDDEN;

/* ------------------------------------------------------------ hooks */

/*
 * Each hook returns what the process's function returns and keeps its
 * errno; while the agent is off (before attaching, after detaching, in a
 * fork()ed child) or the thread is inside it, the call just forwards.
 */

static void *hook_malloc(size_t size)
{
	void *p = real.malloc(size);
	if (p && ld_track_on())
		return ld_track_new(p, size);
	return p;
}

static void *hook_calloc(size_t n, size_t size)
{
	void *p = real.calloc(n, size);
	if (p && ld_track_on())
		return ld_track_new(p, n * size); /* cannot overflow: the block exists */
	return p;
}

static void hook_free(void *ptr)
{
	/* Out of the table before the block is free (see preload.c). */
	if (ld_track_on()) {
		if (ptr && atomic_load_explicit(&ld_track_peak_passed, memory_order_relaxed))
			ld_track_peak_fall();
		ld_track_forget(ptr, NULL, NULL);
	}
	real.free(ptr);
}

static void *hook_realloc(void *old, size_t size)
{
	if (!ld_track_on())
		return real.realloc(old, size);
	uint32_t site = 0;
	size_t old_size = 0;
	bool had = ld_track_forget(old, &site, &old_size);
	void *p = real.realloc(old, size);
	if (p)
		return ld_track_new(p, size);
	if (had && size != 0)
		ld_track_restore(old, old_size, site); /* failed: the old block is intact */
	return p;
}

static void *hook_reallocarray(void *old, size_t n, size_t size)
{
	size_t bytes;
	if (!ld_track_on() || __builtin_mul_overflow(n, size, &bytes))
		return real.reallocarray(old, n, size);
	uint32_t site = 0;
	size_t old_size = 0;
	bool had = ld_track_forget(old, &site, &old_size);
	void *p = real.reallocarray(old, n, size);
	if (p)
		return ld_track_new(p, bytes);
	if (had && bytes != 0)
		ld_track_restore(old, old_size, site);
	return p;
}

static int hook_posix_memalign(void **out, size_t align, size_t size)
{
	int r = real.posix_memalign(out, align, size);
	if (r == 0 && ld_track_on())
		ld_track_new(*out, size);
	return r;
}

static void *hook_aligned_alloc(size_t align, size_t size)
{
	void *p = real.aligned_alloc(align, size);
	if (p && ld_track_on())
		return ld_track_new(p, size);
	return p;
}

static void *hook_memalign(size_t align, size_t size)
{
	void *p = real.memalign(align, size);
	if (p && ld_track_on())
		return ld_track_new(p, size);
	return p;
}

static void *hook_valloc(size_t size)
{
	void *p = real.valloc(size);
	if (p && ld_track_on())
		return ld_track_new(p, size);
	return p;
}

static void *hook_pvalloc(size_t size)
{
	void *p = real.pvalloc(size);
	if (p && ld_track_on())
		return ld_track_new(p, size);
	return p;
}

/* ------------------------------------------------------------ dlopen */

/*
 * dlopen() finds a bare name through the RUNPATH of its caller, and a
 * caller in another namespace loads into that namespace: it knows its
 * caller by its return address. Calling it from a hook would make the
 * agent the caller. So the hook (assembly below) asks dlopen_direct()
 * first: for a name with a '/' and no '$' the caller does not matter, and
 * ld_attach_dlopen_patching() calls dlopen and rewrites the new modules'
 * entries before returning; any other call jumps straight to dlopen with
 * the program's return address, and the helper's next tick patches what
 * it loaded. Allocations made by a new module's constructors, which run
 * inside dlopen(), are not seen either way.
 */
bool ld_attach_dlopen_direct(const char *name) LD_HIDDEN;
void *ld_attach_dlopen_patching(const char *name, int flags) LD_HIDDEN;
void *ld_attach_dlopen_hook(const char *name, int flags) LD_HIDDEN;

bool ld_attach_dlopen_direct(const char *name)
{
	return name && strchr(name, '/') && !strchr(name, '$');
}

void *ld_attach_dlopen_patching(const char *name, int flags)
{
	void *h = ld_attach_real_dlopen(name, flags);
	if (h) {
		int saved_busy = ld_track_busy;
		ld_track_busy = 1;
		int e = errno;
		ld_got_patch();
		errno = e;
		ld_track_busy = saved_busy;
	}
	return h;
}

#if defined(__x86_64__)
__asm__(".text\n"
	".globl ld_attach_dlopen_hook\n"
	".hidden ld_attach_dlopen_hook\n"
	".type ld_attach_dlopen_hook, @function\n"
	".p2align 4\n"
	"ld_attach_dlopen_hook:\n"
	".cfi_startproc\n"
	"\tpushq %rdi\n"
	".cfi_adjust_cfa_offset 8\n"
	"\tpushq %rsi\n"
	".cfi_adjust_cfa_offset 8\n"
	"\tsubq $8, %rsp\n"
	".cfi_adjust_cfa_offset 8\n"
	"\tcall ld_attach_dlopen_direct\n"
	"\taddq $8, %rsp\n"
	".cfi_adjust_cfa_offset -8\n"
	"\tpopq %rsi\n"
	".cfi_adjust_cfa_offset -8\n"
	"\tpopq %rdi\n"
	".cfi_adjust_cfa_offset -8\n"
	"\ttestb %al, %al\n"
	"\tjnz ld_attach_dlopen_patching\n"
	"\tjmp *ld_attach_real_dlopen(%rip)\n"
	".cfi_endproc\n"
	".size ld_attach_dlopen_hook, .-ld_attach_dlopen_hook\n");
#define HOOK_DLOPEN 1
#else
/* Elsewhere dlopen() is left alone and the tick patches new modules. */
#define HOOK_DLOPEN 0
#endif

/* ------------------------------------------------------------ attaching */

static struct ld_got_hook hooks[11];
static size_t nhooks;
static unsigned long long loads_seen;
static pthread_mutex_t attach_lock = PTHREAD_MUTEX_INITIALIZER;

/* The address dlsym() finds for name, unless it is in this library. */
static uintptr_t process_function(const char *name)
{
	void *f = dlsym(RTLD_DEFAULT, name);
	Dl_info self, found;
	if (f && dladdr((void *)(uintptr_t)process_function, &self) && dladdr(f, &found) &&
	    self.dli_fbase == found.dli_fbase)
		return 0;
	return (uintptr_t)f;
}

#define HOOK(fn) add_hook(#fn, (uintptr_t)hook_##fn, (void **)&real.fn)

static void add_hook(const char *name, uintptr_t hook, void **real_slot)
{
	uintptr_t f = process_function(name);
	if (!f)
		return;
	/* Through an integer: ISO C has no object-to-function pointer cast. */
	memcpy(real_slot, &f, sizeof(f));
	hooks[nhooks++] = (struct ld_got_hook){ .name = name, .hook = hook, .real = f };
}

/* Fills real and hooks; -ENOENT when the process has no malloc and free
 * to call (a static program could not have loaded us anyway). */
static int find_functions(void)
{
	nhooks = 0;
	HOOK(malloc);
	HOOK(free);
	if (nhooks != 2)
		return -ENOENT;
	HOOK(calloc);
	HOOK(realloc);
	HOOK(posix_memalign);
	HOOK(aligned_alloc);
	HOOK(memalign);
	HOOK(valloc);
	HOOK(pvalloc);
	HOOK(reallocarray);
	if (HOOK_DLOPEN) {
		uintptr_t f = process_function("dlopen");
		if (f) {
			memcpy(&ld_attach_real_dlopen, &f, sizeof(f));
			hooks[nhooks++] = (struct ld_got_hook){
				.name = "dlopen", .hook = (uintptr_t)ld_attach_dlopen_hook, .real = f };
		}
	}
	return 0;
}

/* Whether the preloaded agent is in the process: two agents would record
 * each block twice. */
static int find_preloaded(struct dl_phdr_info *info, size_t size, void *ctx)
{
	(void)size, (void)ctx;
	const char *name = info->dlpi_name ? info->dlpi_name : "";
	const char *base = strrchr(name, '/');
	return strncmp(base ? base + 1 : name, "libleakdiff-preload", 19) == 0;
}

/*
 * Opens one of the recorder's FIFOs without blocking and checks, before a
 * byte goes through it, that it is a FIFO of this process's user that
 * nobody else may open (mode 0600). Returns 0 with *p set, or a negative
 * errno.
 */
static int open_fifo(const char *path, int mode, struct ld_pipe *p)
{
	int fd = open(path, mode | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return -errno;
	struct stat st;
	int r = 0;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISFIFO(st.st_mode))
		r = -EINVAL;
	else if (st.st_uid != geteuid() || (st.st_mode & 07777) != 0600)
		r = -EPERM;
	if (r < 0) {
		close(fd);
		return r;
	}
	*p = (struct ld_pipe){ .fd = fd, .dev = st.st_dev, .ino = st.st_ino };
	return 0;
}

/* The helper's tick: modules loaded since the last look get patched. */
static void tick(void)
{
	unsigned long long loads = ld_got_loads();
	if (loads != loads_seen) {
		loads_seen = loads;
		ld_got_patch();
	}
}

static void detached(void)
{
	ld_got_restore();
}

static int attach(const char *settings)
{
	if (ld_track_attach_running() ||
	    atomic_load_explicit(&ld_track_state, memory_order_relaxed) == LD_TRACK_ACTIVE)
		return -EBUSY;
	if (dl_iterate_phdr(find_preloaded, NULL))
		return -EEXIST;
	static struct ld_config c;
	ld_config_init(&c);
	ld_config_parse(&c, settings);
	if (!c.attach_out[0] || !c.attach_in[0])
		return -EINVAL;
	/* Requests come through in=; the program's signals are its own. */
	c.signum = 0;
	c.follow_exec = false;
	c.attached = true;
	int r = open_fifo(c.attach_out, O_WRONLY, &c.pipe);
	if (r < 0)
		return r;
	if ((r = open_fifo(c.attach_in, O_RDONLY, &c.request)) < 0) {
		close(c.pipe.fd);
		return r;
	}
	if ((r = find_functions()) < 0)
		goto fail;
	ld_track_attach_tick = tick;
	ld_track_attach_end = detached;
	loads_seen = ld_got_loads();
	/* Before tracking is on, the hooks only forward. */
	if ((r = ld_got_begin(hooks, nhooks)) < 0)
		goto fail;
	size_t patched, left;
	ld_got_counts(&patched, &left);
	if (left) {
		char msg[160] = "";
		ld_cat_num(msg, sizeof(msg), (long)left);
		ld_cat_str(msg, sizeof(msg), " GOT entries of the malloc family are bound to an allocator of "
			   "their module's own and are not traced");
		ld_config_problem(&c, msg);
	}
	if (ld_track_open(&c) < 0) {
		ld_got_restore();
		r = -EPIPE;
		goto fail;
	}
	if (ld_track_start() < 0) {
		/* A helper that started ends the attachment itself. */
		if (ld_track_detach() == -ENOENT) {
			ld_got_restore();
			close(c.pipe.fd);
			close(c.request.fd);
		}
		return -EPIPE;
	}
	return 0;
fail:
	close(c.pipe.fd);
	close(c.request.fd);
	return r;
}

/*
 * See leakdiff-protocol(7), ATTACHING. Returns 0 once tracking has started,
 * or a negative errno: -EBUSY while attached (or still detaching), -EEXIST
 * when the preloaded agent is in the process, -EINVAL without out= and in=
 * or when one is not a FIFO, -EPERM when a FIFO is not this user's with
 * mode 0600, -ENXIO when nobody reads the stream FIFO, -ENOSYS on an
 * architecture whose GOT it cannot rewrite, -EPIPE when the stream failed
 * at once, or what open() said. Nothing is left changed after a failure.
 * The settings string is only read.
 */
LD_EXPORT int ld_attach_start(const char *settings)
{
	int saved_busy = ld_track_busy;
	ld_track_busy = 1;
	int e = errno;
	pthread_mutex_lock(&attach_lock);
	int r = attach(settings ? settings : "");
	pthread_mutex_unlock(&attach_lock);
	errno = e;
	ld_track_busy = saved_busy;
	return r;
}

/*
 * Detaches now, as the end of the request FIFO would, and returns once the
 * GOT entries are back and the helper thread is gone: 0, or -ENOENT when
 * not attached. Not for the agent's own threads.
 */
LD_EXPORT int ld_attach_stop(void)
{
	int saved_busy = ld_track_busy;
	ld_track_busy = 1;
	int e = errno;
	pthread_mutex_lock(&attach_lock);
	int r = ld_track_detach();
	pthread_mutex_unlock(&attach_lock);
	errno = e;
	ld_track_busy = saved_busy;
	return r;
}

/*
 * A process that ends while attached sends its at-exit snapshot, as under
 * LD_PRELOAD; this library was loaded last, so its destructor runs before
 * those of the program's own libraries.
 */
__attribute__((destructor)) static void attach_exit(void)
{
	ld_track_exit();
}

/* track.c's hand-over of a blocked snapshot signal across exec: a process
 * the agent attached to was not started by a traced one. */
void ld_exec_release_signal(int signum, bool handled)
{
	(void)signum, (void)handled;
}
