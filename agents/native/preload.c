/*
 * The native agent's entry points: the malloc family it interposes, its
 * start (a constructor) and stop (a destructor), fork handling, the
 * snapshot signal and the leakdiff_snapshot() call.
 *
 * The hooks call glibc's allocator through the __libc_* names it exports, so
 * there is no dlsym() bootstrap and no allocation of our own on the way.
 * For each block they record a stack of return addresses (libunwind's
 * unw_backtrace(), or memo.c's copy when the same stack was walked before)
 * and put the block into heap.c's tables; with
 * LEAKDIFF_SAMPLE only a Poisson sample of the bytes is recorded. A
 * thread-local flag keeps the agent from tracking itself: anything
 * allocated while it is set (by libunwind, the loader, the agent's helper
 * thread) goes straight to glibc, and a later free of such a block is
 * simply not found.
 *
 * Snapshots are taken at exit (a destructor), by leakdiff_snapshot() in the
 * calling thread, and on the snapshot signal, whose handler only pokes an
 * eventfd that a helper thread of the agent waits on.
 *
 * The environment (see leakdiff-protocol(7)) is read once by the
 * constructor, which also removes it and this library from LD_PRELOAD so
 * that programs the target runs are not traced. Until the constructor has
 * sent the hello frame, and for good after the pipe fails, the program is
 * forked or the at-exit snapshot is sent, the hooks only forward.
 */
#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libunwind.h>
#include <limits.h>
#include <link.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "config.h"
#include "leakdiff.h"

#define LD_EXPORT __attribute__((visibility("default")))

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);
extern void *__libc_memalign(size_t align, size_t size);
extern void *__libc_valloc(size_t size);
extern void *__libc_pvalloc(size_t size);

enum { ST_UNINIT, ST_ACTIVE, ST_OFF };

static atomic_int state = ST_UNINIT;

/* Set while this thread runs agent code: allocations then are not tracked. */
static __thread int busy LD_IE;
/* Set while this thread takes a snapshot (a nested request is dropped). */
static __thread bool in_snapshot LD_IE;
/* Sampling: bytes this thread allocates before the next recorded block,
 * and its random state (0 until the first draw). */
static __thread int64_t sample_left LD_IE;
static __thread uint64_t sample_rng LD_IE;

/* Frames the agent itself adds on top of the program's: unw_backtrace and
 * the hooks. Captured beyond the depth and cut off again. */
#define OWN_FRAMES 16

/*
 * Recently seen stacks of a thread, by hash: most allocations come from a
 * few hot stacks, and this spares them the shared site index. Each entry
 * also gathers the site's running totals, which go to the site record in
 * batches so that the hot path touches no shared cache line.
 */
#define CACHE_SIZE 128
#define TOTAL_BATCH 256
/* A thread gets its remembered stacks (memo.c, 27 KiB) once it has
 * allocated this many blocks: threads that hardly allocate never pay. */
#define MEMO_AFTER 256
struct cache_entry {
	uint64_t hash; /* 0: empty */
	uint32_t depth, site;
	uint32_t pending;
	uint64_t pending_bytes;
};

/*
 * What each thread needs on the hot path, about 12 KiB. It lives in pages
 * of its own rather than in TLS, because glibc carves static TLS out of
 * every thread's stack and a program that starts threads with small stacks
 * would otherwise fail to create them. Blocks of ended threads are reused.
 */
struct thread_state {
	struct thread_state *next_free;
	struct ld_memo_table *memo; /* NULL: none (yet) */
	uint32_t records; /* blocks recorded, up to MEMO_AFTER */
	struct cache_entry cache[CACHE_SIZE];
	uintptr_t frames[LD_AGENT_MAX_DEPTH + OWN_FRAMES];
};

/* This thread's block; THREAD_GONE once its key destructor ran. */
static __thread struct thread_state *mine LD_IE;
#define THREAD_GONE ((struct thread_state *)(uintptr_t)1)
static struct thread_state *free_states;
static atomic_int free_states_lock;
static pthread_key_t exit_key;
static bool exit_key_ok;

static struct {
	struct ld_pipe pipe;
	uint32_t depth;
	uint64_t sample;   /* mean bytes between samples; 0: record everything */
	int signum;        /* 0: none */
	bool follow_exec;
	bool signal_on;    /* our handler is installed */
	int wake_fd;       /* eventfd the signal handler pokes, or -1 */
	uintptr_t self_lo, self_hi; /* this library in memory */
	char executable[PATH_MAX];
	char host[256];
	char problems[4][256]; /* messages for log frames once hello is out */
	int nproblems;
} cfg = { .pipe = { .fd = -1 }, .wake_fd = -1 };

static void *(*real_aligned_alloc)(size_t, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);

/* ------------------------------------------------------------ tracking */

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline bool tracking(void)
{
	return atomic_load_explicit(&state, memory_order_relaxed) == ST_ACTIVE && !busy;
}

static inline bool ours(uintptr_t ip)
{
	return ip >= cfg.self_lo && ip < cfg.self_hi;
}

static void flush_entry(struct cache_entry *c)
{
	if (c->pending) {
		ld_heap_add_total(c->site, c->pending, c->pending_bytes);
		c->pending = 0;
		c->pending_bytes = 0;
	}
}

static void flush_cache(struct thread_state *t)
{
	for (unsigned i = 0; t && t != THREAD_GONE && i < CACHE_SIZE; i++)
		flush_entry(&t->cache[i]);
}

/*
 * Key destructor: a thread that ends hands in the totals it gathered and
 * its block; allocations it makes after this go the slow way.
 */
static void thread_exit(void *arg)
{
	struct thread_state *t = arg;
	int saved = busy;
	busy = 1;
	flush_cache(t);
	memset(t->cache, 0, sizeof(t->cache));
	ld_memo_clear(t->memo); /* its addresses are of this thread's stack */
	mine = THREAD_GONE;
	ld_lock(&free_states_lock);
	t->next_free = free_states;
	free_states = t;
	ld_unlock(&free_states_lock);
	busy = saved;
}

/* This thread's block, set up on first use; NULL when it has none. */
static struct thread_state *thread_state(void)
{
	struct thread_state *t = mine;
	if (t)
		return t == THREAD_GONE ? NULL : t;
	ld_lock(&free_states_lock);
	if ((t = free_states))
		free_states = t->next_free;
	ld_unlock(&free_states_lock);
	if (!t && !(t = ld_pages(sizeof(*t))))
		return NULL;
	mine = t;
	if (exit_key_ok)
		pthread_setspecific(exit_key, t);
	return t;
}

/* Drops the leading frames of libunwind and of this library. */
static uint32_t program_frames(const uintptr_t *frames, int n, const uintptr_t **stack)
{
	int i = 0;
	while (i < n && !ours(frames[i]))
		i++;
	if (i == n)
		i = 0;
	while (i < n && ours(frames[i]))
		i++;
	*stack = frames + i;
	uint32_t depth = (uint32_t)(n - i);
	return depth > cfg.depth ? cfg.depth : depth;
}

/* The site cache entry for a stack; NULL when out of memory. */
static struct cache_entry *cached_site(struct thread_state *t, const uintptr_t *stack, uint32_t depth,
				       uint64_t h, uint32_t known_site)
{
	struct cache_entry *c = &t->cache[h & (CACHE_SIZE - 1)];
	if (c->hash != h || c->depth != depth) {
		flush_entry(c);
		c->hash = 0;
		uint32_t site = known_site ? known_site : ld_heap_site(stack, depth, h);
		if (!site)
			return NULL;
		c->hash = h;
		c->depth = depth;
		c->site = site;
	}
	return c;
}

/*
 * Finds the site of the allocation being made and records the block there.
 * Every address on the stack is a return address into a caller. ret_slot
 * is where the program's return address lies and rbp its frame register,
 * when the hook was left by a tail call (NULL otherwise).
 */
static inline __attribute__((always_inline)) bool record_block(void *p, size_t size, const uintptr_t *ret_slot,
							       uintptr_t rbp)
{
	struct thread_state *t = thread_state();
	if (!t) {
		/* No block for this thread (out of memory, or it is ending): a
		 * shorter stack on the C stack, no cache. */
		uintptr_t local[LD_AGENT_DEFAULT_DEPTH + OWN_FRAMES];
		const uintptr_t *stack;
		uint32_t max = cfg.depth < LD_AGENT_DEFAULT_DEPTH ? cfg.depth : LD_AGENT_DEFAULT_DEPTH;
		int n = unw_backtrace((void **)local, (int)(max + OWN_FRAMES));
		uint32_t depth = program_frames(local, n, &stack);
		depth = depth > max ? max : depth;
		uint32_t site = ld_heap_site(stack, depth, ld_heap_hash(stack, depth));
		if (!site || !ld_heap_add((uintptr_t)p, size, site))
			return false;
		ld_heap_add_total(site, 1, size);
		return true;
	}
	if (!t->memo && ++t->records == MEMO_AFTER)
		t->memo = ld_memo_create();
	/* A return address into this library means the hook called rather
	 * than jumped here: the program's frame is further up. */
	uintptr_t ra = 0, sp = 0;
	if (ret_slot && t->memo && !ours(*ret_slot)) {
		ra = *ret_slot;
		sp = (uintptr_t)ret_slot + sizeof(*ret_slot);
	}
	struct cache_entry *c;
	struct ld_memo_hit hit;
	if (ra && ld_memo_find(t->memo, ra, sp, rbp, &hit)) {
		c = cached_site(t, NULL, hit.depth, hit.hash, hit.site);
	} else {
		const uintptr_t *stack;
		int n = unw_backtrace((void **)t->frames, (int)(cfg.depth + OWN_FRAMES));
		uint32_t depth = program_frames(t->frames, n, &stack);
		uint64_t h = ld_heap_hash(stack, depth);
		c = cached_site(t, stack, depth, h, 0);
		if (c && ra)
			ld_memo_learn(t->memo, ra, sp, rbp, stack, depth, cfg.depth, h, c->site);
	}
	if (!c || !ld_heap_add((uintptr_t)p, size, c->site))
		return false;
	c->pending++;
	c->pending_bytes += size;
	if (c->pending >= TOTAL_BATCH)
		flush_entry(c);
	return true;
}

/*
 * Sampling by bytes, a Poisson process: the gaps between sampled bytes are
 * exponential with mean cfg.sample, so a block of n bytes is recorded with
 * probability 1 - exp(-n / cfg.sample) whatever came before it, and the
 * snapshot can weigh each recorded block by the inverse (heap.c). Blocks
 * not recorded cost one subtraction: no stack, no table.
 */
static int64_t next_gap(void)
{
	uint64_t x = sample_rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	sample_rng = x;
	double u = (double)((x >> 11) + 1) * 0x1.0p-53; /* (0, 1] */
	double gap = -log(u) * (double)cfg.sample;
	return gap < 1 ? 1 : gap > 0x1.0p62 ? INT64_C(1) << 62 : (int64_t)gap;
}

/* A thread's first draw (sample_left starts at 0), and every pick. */
static __attribute__((noinline)) bool sample_draw(size_t size)
{
	if (!sample_rng) {
		uint64_t seed = (uint64_t)(uintptr_t)&sample_rng ^ (uint64_t)mono_ns() * UINT64_C(0x9e3779b97f4a7c15);
		sample_rng = seed ? seed : 1;
		sample_left = next_gap();
		if (size < (uint64_t)sample_left) {
			sample_left -= (int64_t)size;
			return false;
		}
	}
	sample_left = next_gap();
	return true;
}

static inline bool sample_this(size_t size)
{
	if (size < (uint64_t)sample_left) {
		sample_left -= (int64_t)size;
		return false;
	}
	return sample_draw(size);
}

/*
 * Records a new block and returns it; keeps errno as the allocator left it.
 * Called outside the agent (busy clear): the flag is set only around the
 * agent's own work, because glibc's allocator does not call back into
 * malloc. Out of line, so that the hooks' fast path (a block not sampled)
 * saves no registers for it, and reached by a tail call through
 * ld_record_entry, so that the hook's frame is gone: libunwind pays about
 * 8 ns for every frame it steps through, and memo.c can see the program's
 * own return address, stack pointer and frame register.
 */
void *ld_record_new(void *p, size_t size, const uintptr_t *ret_slot, uintptr_t rbp) LD_HIDDEN;
__attribute__((noinline, used)) void *ld_record_new(void *p, size_t size, const uintptr_t *ret_slot, uintptr_t rbp)
{
	busy = 1;
	int e = errno;
	if (!record_block(p, size, ret_slot, rbp))
		ld_heap_count_untracked();
	errno = e;
	busy = 0;
	return p;
}

#if defined(__x86_64__)
/*
 * ld_record_new(p, size, the stack pointer, rbp) as they are on entry: a
 * hook that jumps here has put back the program's registers, and the
 * stack pointer is at the program's return address.
 */
void *ld_record_entry(void *p, size_t size) LD_HIDDEN;
__asm__(".text\n"
	".globl ld_record_entry\n"
	".hidden ld_record_entry\n"
	".type ld_record_entry, @function\n"
	".p2align 4\n"
	"ld_record_entry:\n"
	".cfi_startproc\n"
	"\tmovq %rsp, %rdx\n"
	"\tmovq %rbp, %rcx\n"
	"\tjmp ld_record_new\n"
	".cfi_endproc\n"
	".size ld_record_entry, .-ld_record_entry\n");
#else
static inline void *ld_record_entry(void *p, size_t size)
{
	return ld_record_new(p, size, NULL, 0);
}
#endif

/* p, recorded if it is to be: every block in exact mode. */
static inline void *track(void *p, size_t size)
{
	if (cfg.sample && !sample_this(size))
		return p;
	return ld_record_entry(p, size);
}

static __attribute__((noinline)) bool remove_block(void *ptr, uint32_t *site, size_t *size)
{
	busy = 1;
	int e = errno;
	bool had = ld_heap_remove((uintptr_t)ptr, site, size);
	errno = e;
	busy = 0;
	return had;
}

/* Takes ptr out of the table before glibc gets it back; busy clear. */
static inline bool untrack(void *ptr, uint32_t *site, size_t *size)
{
	if (!ptr || !ld_heap_may_hold((uintptr_t)ptr))
		return false;
	return remove_block(ptr, site, size);
}

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
	if (p && tracking())
		return track(p, size);
	return p;
}

LD_EXPORT void *calloc(size_t n, size_t size)
{
	void *p = __libc_calloc(n, size);
	if (p && tracking())
		return track(p, n * size); /* cannot overflow: the block exists */
	return p;
}

LD_EXPORT void free(void *ptr)
{
	/* Out of the table before the block is free: once glibc has it back,
	 * another thread may be handed the same address. */
	if (tracking())
		untrack(ptr, NULL, NULL);
	__libc_free(ptr);
}

static void *do_realloc(void *old, size_t size)
{
	if (!tracking())
		return __libc_realloc(old, size);
	uint32_t site = 0;
	size_t old_size = 0;
	bool had = untrack(old, &site, &old_size);
	void *p = __libc_realloc(old, size);
	if (p) {
		/* The new block belongs to the stack that resized it. */
		return track(p, size);
	} else if (had && size != 0) {
		/* Failed: the old block is intact (with size 0 glibc freed it). */
		busy = 1;
		int e = errno;
		if (!ld_heap_add((uintptr_t)old, old_size, site))
			ld_heap_count_untracked();
		errno = e;
		busy = 0;
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
	if (p && tracking())
		return track(p, size);
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
	if (p && tracking())
		return track(p, size);
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
	if (r == 0 && tracking())
		track(*out, size);
	return r;
}

LD_EXPORT void *valloc(size_t size)
{
	void *p = __libc_valloc(size);
	if (p && tracking())
		return track(p, size);
	return p;
}

LD_EXPORT void *pvalloc(size_t size)
{
	void *p = __libc_pvalloc(size);
	if (p && tracking())
		return track(p, size);
	return p;
}

/* ------------------------------------------------------------ snapshots */

static pthread_mutex_t snap_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t snap_seq;
static bool snap_final; /* the at-exit snapshot went out: no more */
static char control[LD_AGENT_CONTROL_MAX];
static char *data_buf;

/* Sends a control frame built in `control`; false (pipe dead) on failure. */
static bool send_control(const char *tag, struct ld_json *j)
{
	if (j->overflow)
		return true; /* cannot happen with our payloads; skip rather than corrupt */
	return ld_pipe_frame(&cfg.pipe, tag, j->buf, j->len) == 0;
}

static void json_begin(struct ld_json *j)
{
	*j = (struct ld_json){ .buf = control, .cap = sizeof(control) };
}

/* A log frame; called with snap_lock held or before any thread exists. */
static void send_log(const char *level, const char *message)
{
	struct ld_json j;
	json_begin(&j);
	ld_json_lit(&j, "{\"level\":");
	ld_json_str(&j, level);
	ld_json_lit(&j, ",\"message\":");
	ld_json_str(&j, message);
	ld_json_lit(&j, "}");
	send_control("log", &j);
}

static void stop_for_good(void)
{
	atomic_store_explicit(&state, ST_OFF, memory_order_relaxed);
}

/*
 * Takes one snapshot and streams it: begin, data..., end. Serialised by
 * snap_lock; a write failure turns the agent off for good.
 */
static void take_snapshot(const char *label, const char *trigger, bool final)
{
	if (in_snapshot || atomic_load_explicit(&state, memory_order_relaxed) != ST_ACTIVE)
		return;
	in_snapshot = true;
	int saved_busy = busy;
	busy = 1;
	int e = errno;
	/* write() is a cancellation point: a thread cancelled in the middle
	 * would leave snap_lock held and a frame half sent. */
	int cancel_state;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
	pthread_mutex_lock(&snap_lock);
	if (atomic_load_explicit(&state, memory_order_relaxed) != ST_ACTIVE || snap_final)
		goto out;
	if (final)
		snap_final = true;
	flush_cache(mine); /* this thread's totals, at least, are complete */
	if (!data_buf && !(data_buf = ld_pages(LD_AGENT_DATA_CHUNK))) {
		send_log("warning", "out of memory: snapshot skipped");
		goto out;
	}
	int64_t started = mono_ns();
	int64_t seq = ++snap_seq;
	/* The label is copied and cut, so a huge one cannot overflow a frame. */
	char lab[1024];
	size_t ll = label ? strnlen(label, sizeof(lab) - 1) : 0;
	if (ll)
		memcpy(lab, label, ll);
	lab[ll] = '\0';

	ld_pipe_hold(&cfg.pipe);
	struct ld_json j;
	json_begin(&j);
	ld_json_lit(&j, "{\"seq\":");
	ld_json_i64(&j, seq);
	ld_json_lit(&j, ",\"label\":");
	ld_json_str(&j, lab);
	ld_json_lit(&j, ",\"trigger\":");
	ld_json_str(&j, trigger);
	ld_json_lit(&j, "}");
	bool ok = send_control("begin", &j);
	if (ok) {
		struct ld_json d = { .buf = data_buf, .cap = LD_AGENT_DATA_CHUNK, .pipe = &cfg.pipe };
		struct ld_doc_info info = {
			.pid = getpid(),
			.seq = seq,
			.label = lab,
			.trigger = trigger,
			.executable = cfg.executable[0] ? cfg.executable : NULL,
			.host = cfg.host,
			.agent = LD_AGENT_NAME " " LD_VERSION,
			.depth = cfg.depth,
			.untracked = ld_heap_untracked(),
			.sample = cfg.sample,
			.started_ns = started,
		};
		ok = ld_doc_write(&d, &info) == 0;
		if (ok) {
			json_begin(&j);
			ld_json_lit(&j, "{\"seq\":");
			ld_json_i64(&j, seq);
			ld_json_lit(&j, ",\"bytes\":");
			ld_json_u64(&j, d.sent);
			ld_json_lit(&j, ",\"crc32\":");
			ld_json_u64(&j, d.crc);
			ld_json_lit(&j, "}");
			ok = send_control("end", &j);
		}
	}
	ld_pipe_release(&cfg.pipe);
	if (!ok)
		stop_for_good();
out:
	pthread_mutex_unlock(&snap_lock);
	pthread_setcancelstate(cancel_state, NULL);
	errno = e;
	busy = saved_busy;
	in_snapshot = false;
}

/* See leakdiff.h. The snapshot is written from the calling thread. */
LD_EXPORT void leakdiff_snapshot(const char *label)
{
	take_snapshot(label ? label : "", "api", false);
}

/* ------------------------------------------------------------ signal */

static void on_signal(int sig)
{
	(void)sig;
	if (atomic_load_explicit(&state, memory_order_relaxed) != ST_ACTIVE || cfg.wake_fd < 0)
		return;
	int e = errno;
	uint64_t one = 1;
	ssize_t r = write(cfg.wake_fd, &one, sizeof(one));
	(void)r;
	errno = e;
}

/* Takes the snapshots the signal asks for, outside the signal handler. */
static void *helper_main(void *arg)
{
	(void)arg;
	busy = 1; /* everything this thread does is the agent's */
	for (;;) {
		uint64_t n;
		ssize_t r = read(cfg.wake_fd, &n, sizeof(n));
		if (r < 0 && errno == EINTR)
			continue;
		if (r != (ssize_t)sizeof(n) || atomic_load_explicit(&state, memory_order_relaxed) == ST_OFF)
			break;
		take_snapshot("", "signal", false);
	}
	return NULL;
}

static void problem(const char *msg)
{
	if (cfg.nproblems < (int)(sizeof(cfg.problems) / sizeof(cfg.problems[0]))) {
		size_t n = strnlen(msg, sizeof(cfg.problems[0]) - 1);
		memcpy(cfg.problems[cfg.nproblems], msg, n);
		cfg.problems[cfg.nproblems][n] = '\0';
		cfg.nproblems++;
	}
}

/* Appends decimal v to a message buffer. */
static void cat_num(char *buf, size_t cap, long v)
{
	char tmp[24];
	size_t n = 0;
	unsigned long u = v < 0 ? (unsigned long)0 - (unsigned long)v : (unsigned long)v;
	do
		tmp[n++] = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		tmp[n++] = '-';
	size_t len = strlen(buf);
	while (n && len + 1 < cap)
		buf[len++] = tmp[--n];
	buf[len] = '\0';
}

static void cat_str(char *buf, size_t cap, const char *s)
{
	size_t len = strlen(buf), n = strlen(s);
	if (n > cap - 1 - len)
		n = cap - 1 - len;
	memcpy(buf + len, s, n);
	buf[len + n] = '\0';
}

/*
 * Starts the helper thread and installs the handler, unless the program
 * already handles or ignores the signal. Returns whether signal snapshots
 * work.
 */
static bool start_signal(void)
{
	if (!cfg.signum)
		return false;
	struct sigaction old;
	if (sigaction(cfg.signum, NULL, &old) < 0) {
		problem("the snapshot signal is not a valid signal; snapshots on signal are off");
		return false;
	}
	if (old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO)) {
		char msg[160] = "signal ";
		cat_num(msg, sizeof(msg), cfg.signum);
		cat_str(msg, sizeof(msg), " already has a handler in this program; snapshots on signal are off");
		problem(msg);
		return false;
	}
	cfg.wake_fd = eventfd(0, EFD_CLOEXEC);
	if (cfg.wake_fd < 0) {
		problem("cannot create an eventfd; snapshots on signal are off");
		return false;
	}
	/* The helper must never receive the program's signals. */
	sigset_t all, prev;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &prev);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 << 10);
	pthread_t tid;
	int r = pthread_create(&tid, &attr, helper_main, NULL);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &prev, NULL);
	if (r != 0) {
		close(cfg.wake_fd);
		cfg.wake_fd = -1;
		problem("cannot start the helper thread; snapshots on signal are off");
		return false;
	}
	pthread_setname_np(tid, "leakdiff");
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(cfg.signum, &sa, NULL) < 0) {
		problem("cannot install the snapshot signal handler; snapshots on signal are off");
		return false; /* the helper just waits forever */
	}
	return true;
}

/* ------------------------------------------------------------ fork */

static bool fork_touched, fork_locked;
static int fork_busy;

static void fork_prepare(void)
{
	fork_touched = fork_locked = false;
	if (atomic_load_explicit(&state, memory_order_relaxed) != ST_ACTIVE)
		return;
	fork_touched = true;
	fork_busy = busy;
	busy = 1; /* whatever fork() allocates in this thread is not tracked */
	if (fork_busy)
		return; /* fork() from a handler that interrupted a hook: it may hold a lock */
	ld_heap_lock_all();
	fork_locked = true;
}

static void fork_parent(void)
{
	if (fork_locked)
		ld_heap_unlock_all();
	if (fork_touched)
		busy = fork_busy;
}

static void fork_child(void)
{
	/* The stream is the parent's: the child never writes to it, and its
	 * hooks only forward from now on. */
	stop_for_good();
	if (fork_locked)
		ld_heap_unlock_all();
	if (fork_touched)
		busy = fork_busy;
}

/* ------------------------------------------------------------ start */

static const char *const own_vars[] = {
	"LEAKDIFF_FD", "LEAKDIFF_PIPE", "LEAKDIFF_DEPTH", "LEAKDIFF_SIGNAL",
	"LEAKDIFF_SAMPLE", "LEAKDIFF_FOLLOW_EXEC",
};

/* Parses a whole decimal number; false when s is not one. */
static bool parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!s || !*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return true;
}

static int find_self(struct dl_phdr_info *info, size_t size, void *ctx)
{
	(void)size;
	uintptr_t addr = (uintptr_t)ctx;
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uintptr_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
		if (s < lo)
			lo = s;
		if (e > hi)
			hi = e;
	}
	if (addr >= lo && addr < hi) {
		cfg.self_lo = lo;
		cfg.self_hi = hi;
		return 1;
	}
	return 0;
}

/* Whether the LD_PRELOAD entry names this library. */
static bool names_self(const char *entry, size_t len, const char *self, const struct stat *self_st)
{
	char path[PATH_MAX];
	if (len == 0 || len >= sizeof(path))
		return false;
	memcpy(path, entry, len);
	path[len] = '\0';
	struct stat st;
	if (self_st && stat(path, &st) == 0)
		return st.st_dev == self_st->st_dev && st.st_ino == self_st->st_ino;
	/* A bare name the loader found on its search path: compare base names. */
	const char *a = strrchr(path, '/'), *b = strrchr(self, '/');
	return strcmp(a ? a + 1 : path, b ? b + 1 : self) == 0;
}

/* Drops this library from LD_PRELOAD so that exec'd programs are not traced. */
static void scrub_preload(void)
{
	const char *v = getenv("LD_PRELOAD");
	Dl_info di;
	if (!v || !dladdr((void *)(uintptr_t)scrub_preload, &di) || !di.dli_fname)
		return;
	struct stat self_st;
	bool have_st = stat(di.dli_fname, &self_st) == 0;
	static char kept[8192];
	size_t n = 0;
	bool dropped = false;
	for (const char *p = v; *p;) {
		size_t len = strcspn(p, " :");
		if (len && names_self(p, len, di.dli_fname, have_st ? &self_st : NULL)) {
			dropped = true;
		} else if (len) {
			if (n + len + 2 > sizeof(kept))
				return; /* too long to rewrite: leave it */
			if (n)
				kept[n++] = ':';
			memcpy(kept + n, p, len);
			n += len;
		}
		p += len;
		if (*p)
			p++;
	}
	kept[n] = '\0';
	if (!dropped)
		return;
	if (n)
		setenv("LD_PRELOAD", kept, 1); /* busy is set: glibc's allocation is not ours */
	else
		unsetenv("LD_PRELOAD");
}

/* Reads the settings; false when there is no valid pipe to write to. */
static bool configure(void)
{
	const char *follow = getenv("LEAKDIFF_FOLLOW_EXEC");
	cfg.follow_exec = follow && strcmp(follow, "1") == 0;
	uint64_t fd = 0, dev = 0, ino = 0, v;
	const char *s_fd = getenv("LEAKDIFF_FD"), *s_pipe = getenv("LEAKDIFF_PIPE");
	bool have_pipe = parse_u64(s_fd, &fd) && fd <= INT_MAX && s_pipe;
	if (have_pipe) {
		char buf[64];
		size_t len = strnlen(s_pipe, sizeof(buf));
		const char *colon = memchr(s_pipe, ':', len);
		have_pipe = len < sizeof(buf) && colon;
		if (have_pipe) {
			memcpy(buf, s_pipe, len);
			buf[len] = '\0';
			buf[colon - s_pipe] = '\0';
			have_pipe = parse_u64(buf, &dev) && parse_u64(buf + (colon - s_pipe) + 1, &ino);
		}
	}
	cfg.depth = LD_AGENT_DEFAULT_DEPTH;
	const char *s_depth = getenv("LEAKDIFF_DEPTH");
	if (s_depth && *s_depth) {
		if (parse_u64(s_depth, &v) && v >= 1)
			cfg.depth = v > LD_AGENT_MAX_DEPTH ? LD_AGENT_MAX_DEPTH : (uint32_t)v;
		else
			problem("LEAKDIFF_DEPTH is not a positive whole number; using 32 frames");
	}
	cfg.signum = SIGUSR2;
	const char *s_sig = getenv("LEAKDIFF_SIGNAL");
	if (s_sig && *s_sig) {
		if (parse_u64(s_sig, &v) && v >= 1 && v < (uint64_t)NSIG && v != SIGKILL && v != SIGSTOP)
			cfg.signum = (int)v;
		else {
			cfg.signum = 0;
			problem("LEAKDIFF_SIGNAL is not a signal number that can be caught; snapshots on signal are off");
		}
	}
	const char *s_sample = getenv("LEAKDIFF_SAMPLE");
	if (s_sample && *s_sample) {
		if (parse_u64(s_sample, &v) && v <= (UINT64_C(1) << 40))
			cfg.sample = v;
		else
			problem("LEAKDIFF_SAMPLE is not a number of bytes up to 1 TiB; every allocation is recorded");
	}

	if (!cfg.follow_exec) {
		for (size_t i = 0; i < sizeof(own_vars) / sizeof(own_vars[0]); i++)
			unsetenv(own_vars[i]);
		scrub_preload();
	}
	if (!have_pipe)
		return false;
	cfg.pipe.fd = (int)fd;
	cfg.pipe.dev = (dev_t)dev;
	cfg.pipe.ino = (ino_t)ino;
	cfg.pipe.shared = cfg.follow_exec;
	return true;
}

static void send_hello(void)
{
	struct ld_json j;
	json_begin(&j);
	ld_json_lit(&j, "{\"protocol\":\"leakdiff-pipe\",\"version\":1,\"runtime\":\"native\",\"agent\":");
	ld_json_str(&j, LD_AGENT_NAME " " LD_VERSION);
	ld_json_lit(&j, ",\"pid\":");
	ld_json_i64(&j, getpid());
	if (cfg.executable[0]) {
		ld_json_lit(&j, ",\"executable\":");
		ld_json_str(&j, cfg.executable);
	}
	ld_json_lit(&j, ",\"depth\":");
	ld_json_u64(&j, cfg.depth);
	if (cfg.sample) {
		ld_json_lit(&j, ",\"sample\":");
		ld_json_u64(&j, cfg.sample);
	}
	ld_json_lit(&j, cfg.signal_on ? ",\"signal\":true}" : ",\"signal\":false}");
	if (!send_control("hello", &j))
		stop_for_good();
}

__attribute__((constructor)) static void agent_start(void)
{
	busy = 1;
	int e = errno;
	if (!configure() || !ld_pipe_owned(&cfg.pipe)) {
		stop_for_good();
		goto out;
	}
	if (!cfg.follow_exec && fcntl(cfg.pipe.fd, F_SETFD, FD_CLOEXEC) < 0) {
		stop_for_good();
		goto out;
	}
	dl_iterate_phdr(find_self, (void *)(uintptr_t)agent_start);
	/* Through an integer: ISO C has no object-to-function pointer cast. */
	real_aligned_alloc = (void *(*)(size_t, size_t))(uintptr_t)dlsym(RTLD_NEXT, "aligned_alloc");
	real_posix_memalign = (int (*)(void **, size_t, size_t))(uintptr_t)dlsym(RTLD_NEXT, "posix_memalign");
	ssize_t len = readlink("/proc/self/exe", cfg.executable, sizeof(cfg.executable) - 1);
	cfg.executable[len > 0 ? len : 0] = '\0';
	if (gethostname(cfg.host, sizeof(cfg.host) - 1) < 0)
		cfg.host[0] = '\0';
	exit_key_ok = pthread_key_create(&exit_key, thread_exit) == 0;
	if (ld_heap_init() < 0 || pthread_atfork(fork_prepare, fork_parent, fork_child) != 0) {
		stop_for_good();
		goto out;
	}
	if (cfg.sample)
		ld_heap_use_filter(); /* before ST_ACTIVE: no block is in the table yet */
	cfg.signal_on = start_signal();
	ld_pipe_hold(&cfg.pipe);
	send_hello();
	for (int i = 0; i < cfg.nproblems && !cfg.pipe.dead; i++)
		send_log("warning", cfg.problems[i]);
	ld_pipe_release(&cfg.pipe);
	if (!cfg.pipe.dead)
		atomic_store_explicit(&state, ST_ACTIVE, memory_order_release);
	else
		stop_for_good();
out:
	errno = e;
	busy = 0;
}

/*
 * The at-exit snapshot. A destructor of this library runs in _dl_fini,
 * after every atexit() handler, the C++ static destructors of the program
 * and the destructors of the executable (all registered or initialised
 * after this library), so what is left is what the program never freed.
 */
__attribute__((destructor)) static void agent_stop(void)
{
	if (atomic_load_explicit(&state, memory_order_relaxed) != ST_ACTIVE)
		return;
	take_snapshot("exit", "exit", true);
	stop_for_good();
}
