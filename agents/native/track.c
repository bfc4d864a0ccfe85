/*
 * The native agent's tracking core: for each new block a stack of return
 * addresses (libunwind's unw_backtrace(), or memo.c's copy when the same
 * stack was walked before) and an entry in heap.c's tables, with
 * LEAKDIFF_SAMPLE only a Poisson sample of the bytes; the per-thread state
 * of the hot path; the live-byte count behind peak snapshots; snapshots (at
 * exit, from the program, at the heap's peak, on the recorder's request
 * channel and on the snapshot signal, whose handler only pokes an eventfd:
 * all but the first two are taken by a helper thread of the agent); fork
 * handling; and mixed mode (mixed.c), in which a Python agent's callback
 * adds each block's Python stack id to its stack, takes the place of the
 * pipe and asks for the sites itself.
 *
 * It does not know how it is reached or configured: the entry points
 * (preload.c's interposed malloc family) call the inline helpers of
 * agent.h, and whoever starts it passes a struct ld_config (config.c).
 * A thread-local flag keeps the agent from tracking itself: anything
 * allocated while it is set (by libunwind, the loader, the agent's helper
 * thread) goes straight to glibc, and a later free of such a block is
 * simply not found. Until ld_track_start() has sent the hello frame, and
 * for good after the pipe fails, the program is forked or the at-exit
 * snapshot is sent, nothing is tracked.
 *
 * An agent attached to a running process (attach.c, conf.attached) can be
 * detached and attached again: the helper thread then also watches the
 * recorder's FIFOs and ends the attachment when they close, and
 * ld_track_start() starts over with empty tables.
 */
#define UNW_LOCAL_ONLY
#include <errno.h>
#include <fcntl.h>
#include <libunwind.h>
#include <limits.h>
#include <link.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "config.h"
#include "mixed.h"

atomic_int ld_track_state = LD_TRACK_UNINIT;
__thread int ld_track_busy LD_IE;
__thread int64_t ld_track_sample_left LD_IE;
uint64_t ld_track_sample;
bool ld_track_mixed;
_Atomic(uint32_t (*)(void)) ld_track_mixed_site;

/* Set while this thread takes a snapshot (a nested request is dropped). */
static __thread bool in_snapshot LD_IE;
/* Sampling: this thread's random state (0 until the first draw). */
static __thread uint64_t sample_rng LD_IE;

/* Frames the agent itself adds on top of the program's: unw_backtrace and
 * the hooks. Captured beyond the depth and cut off again. */
#define OWN_FRAMES 16
/* Frames kept by a thread that has no block of its own (below). */
#define FALLBACK_DEPTH 32

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
	uint32_t gen; /* track_gen when the cache was last valid */
	uint32_t records; /* blocks recorded, up to MEMO_AFTER */
	struct cache_entry cache[CACHE_SIZE];
	/* One more for mixed mode's Python stack id, put after the frames. */
	uintptr_t frames[LD_AGENT_MAX_DEPTH + OWN_FRAMES + 1];
};

/* This thread's block; THREAD_GONE once its key destructor ran. */
static __thread struct thread_state *mine LD_IE;
#define THREAD_GONE ((struct thread_state *)(uintptr_t)1)
static struct thread_state *free_states;
static atomic_int free_states_lock;
static pthread_key_t exit_key;
static bool exit_key_ok;
/* Counts attachments: a thread's cache of an earlier one holds totals that
 * are not this one's. 0 for a preloaded agent. */
static uint32_t track_gen;

/* The settings as ld_track_open() was given them (the sampling mean is in
 * ld_track_sample), with the live pipe and the problems to log once hello
 * is out. */
static struct ld_config conf = { .pipe = { .fd = -1 } };

static struct {
	bool signal_on;    /* our handler is installed */
	bool peak_on;      /* live bytes are counted for peak snapshots */
	bool requests_on;  /* the helper reads the recorder's request channel */
	bool handler_warned; /* the program replaced our signal handler: said once */
	int wake_fd;       /* eventfd the signal handler pokes, or -1 */
	int peak_fd;       /* eventfd a free() at a new peak pokes, or -1 */
	uintptr_t self_lo, self_hi; /* this library in memory */
	char executable[PATH_MAX];
	char host[256];
} cfg = { .wake_fd = -1, .peak_fd = -1 };

/* ------------------------------------------------------------ tracking */

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------ peak */

/*
 * Peak snapshots (LEAKDIFF_PEAK). Each thread adds the bytes it records and
 * forgets into a count of its own and hands the sum to the shared total
 * only when it has moved by PEAK_BATCH, or when it would carry the total
 * past the next step: the hot path touches thread-local memory only. A
 * hand-over that reaches the step sets ld_track_peak_passed; the next
 * free() sees it (one relaxed load of a line that is written only at a
 * step) and calls ld_track_peak_fall(), which holds that thread while the
 * helper thread takes the snapshot. The heap is then exactly at its
 * high-water mark for a program whose other threads are not allocating;
 * otherwise it is off by what they do meanwhile.
 */
#define PEAK_BATCH (64 << 10)
/* The next step is 5% above the last peak, and at least this far. */
#define PEAK_MIN_STEP (64 << 10)
/* How long a free() waits for the peak snapshot before going on. */
#define PEAK_WAIT_NS (INT64_C(10) * 1000000000)

atomic_bool ld_track_peak_passed;
static _Atomic int64_t peak_live;                /* handed-over live bytes */
static _Atomic int64_t peak_next = PEAK_MIN_STEP; /* the step to pass */
static _Atomic uint32_t peak_done;               /* futex: peak snapshots taken */
static __thread int64_t peak_pend LD_IE;         /* this thread's bytes not handed over */
static __thread int64_t peak_room LD_IE;         /* hand over once peak_pend passes this */

static void peak_flush(void)
{
	int64_t v = atomic_fetch_add_explicit(&peak_live, peak_pend, memory_order_relaxed) + peak_pend;
	peak_pend = 0;
	int64_t next = atomic_load_explicit(&peak_next, memory_order_relaxed);
	if (v >= next) {
		if (!atomic_load_explicit(&ld_track_peak_passed, memory_order_relaxed))
			atomic_store_explicit(&ld_track_peak_passed, true, memory_order_relaxed);
		peak_room = PEAK_BATCH;
	} else {
		peak_room = next - v < PEAK_BATCH ? next - v : PEAK_BATCH;
	}
}

static inline void peak_add(size_t size)
{
	peak_pend += (int64_t)size;
	if (peak_pend >= peak_room)
		peak_flush();
}

static inline void peak_sub(size_t size)
{
	peak_pend -= (int64_t)size;
	if (peak_pend < -PEAK_BATCH)
		peak_flush();
}

static void futex_wake_all(_Atomic uint32_t *word)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

void ld_track_peak_fall(void)
{
	/* One thread per step: the others go on freeing. */
	if (!atomic_exchange_explicit(&ld_track_peak_passed, false, memory_order_relaxed) || cfg.peak_fd < 0)
		return;
	int saved_busy = ld_track_busy;
	ld_track_busy = 1;
	int e = errno;
	/* This thread's bytes in, and the next step set from the peak before
	 * the helper runs, so that hand-overs (ours included) do not ask
	 * again for the same peak. */
	int64_t v = atomic_fetch_add_explicit(&peak_live, peak_pend, memory_order_relaxed) + peak_pend;
	peak_pend = 0;
	int64_t step = v / 20 > PEAK_MIN_STEP ? v / 20 : PEAK_MIN_STEP;
	atomic_store_explicit(&peak_next, v + step, memory_order_relaxed);
	peak_room = 0; /* recomputed at the next hand-over */
	uint32_t gen = atomic_load_explicit(&peak_done, memory_order_acquire);
	uint64_t one = 1;
	if (write(cfg.peak_fd, &one, sizeof(one)) == (ssize_t)sizeof(one)) {
		int64_t deadline = mono_ns() + PEAK_WAIT_NS;
		while (atomic_load_explicit(&peak_done, memory_order_acquire) == gen &&
		       atomic_load_explicit(&ld_track_state, memory_order_relaxed) == LD_TRACK_ACTIVE) {
			int64_t left = deadline - mono_ns();
			if (left <= 0)
				break;
			/* In slices, so that an agent turned off meanwhile is noticed. */
			struct timespec ts = { 0, left < 50000000 ? (long)left : 50000000 };
			syscall(SYS_futex, (uint32_t *)&peak_done, FUTEX_WAIT_PRIVATE, gen, &ts, NULL, 0);
		}
	}
	errno = e;
	ld_track_busy = saved_busy;
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
	int saved = ld_track_busy;
	ld_track_busy = 1;
	flush_cache(t);
	memset(t->cache, 0, sizeof(t->cache));
	ld_memo_clear(t->memo); /* its addresses are of this thread's stack */
	mine = THREAD_GONE;
	ld_lock(&free_states_lock);
	t->next_free = free_states;
	free_states = t;
	ld_unlock(&free_states_lock);
	ld_track_busy = saved;
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
	return depth > conf.depth ? conf.depth : depth;
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
							       uintptr_t rbp, uint32_t pyid)
{
	struct thread_state *t = thread_state();
	if (!t) {
		/* No block for this thread (out of memory, or it is ending): a
		 * shorter stack on the C stack, no cache. */
		uintptr_t local[FALLBACK_DEPTH + OWN_FRAMES + 1];
		const uintptr_t *stack;
		uint32_t max = conf.depth < FALLBACK_DEPTH ? conf.depth : FALLBACK_DEPTH;
		int n = unw_backtrace((void **)local, (int)(max + OWN_FRAMES));
		uint32_t depth = program_frames(local, n, &stack);
		depth = depth > max ? max : depth;
		if (ld_track_mixed)
			((uintptr_t *)stack)[depth++] = pyid;
		uint32_t site = ld_heap_site(stack, depth, ld_heap_hash(stack, depth));
		if (!site || !ld_heap_add((uintptr_t)p, size, site))
			return false;
		ld_heap_add_total(site, 1, size);
		return true;
	}
	if (__builtin_expect(t->gen != track_gen, 0)) {
		memset(t->cache, 0, sizeof(t->cache));
		t->gen = track_gen;
	}
	/* In mixed mode the same native stack may run under any Python stack,
	 * which the memo cannot tell apart: it is not used there. */
	if (!t->memo && !ld_track_mixed && ++t->records == MEMO_AFTER)
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
		int n = unw_backtrace((void **)t->frames, (int)(conf.depth + OWN_FRAMES));
		uint32_t depth = program_frames(t->frames, n, &stack);
		if (ld_track_mixed)
			((uintptr_t *)stack)[depth++] = pyid;
		uint64_t h = ld_heap_hash(stack, depth);
		c = cached_site(t, stack, depth, h, 0);
		if (c && ra)
			ld_memo_learn(t->memo, ra, sp, rbp, stack, depth, conf.depth, h, c->site);
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
 * exponential with mean ld_track_sample, so a block of n bytes is recorded
 * with probability 1 - exp(-n / ld_track_sample) whatever came before it,
 * and the snapshot can weigh each recorded block by the inverse (heap.c).
 * Blocks not recorded cost one subtraction (ld_track_sample_this() in
 * agent.h): no stack, no table.
 */
static int64_t next_gap(void)
{
	uint64_t x = sample_rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	sample_rng = x;
	double u = (double)((x >> 11) + 1) * 0x1.0p-53; /* (0, 1] */
	double gap = -log(u) * (double)ld_track_sample;
	return gap < 1 ? 1 : gap > 0x1.0p62 ? INT64_C(1) << 62 : (int64_t)gap;
}

/* A thread's first draw (ld_track_sample_left starts at 0), and every pick. */
__attribute__((noinline)) bool ld_track_sample_draw(size_t size)
{
	if (!sample_rng) {
		uint64_t seed = (uint64_t)(uintptr_t)&sample_rng ^ (uint64_t)mono_ns() * UINT64_C(0x9e3779b97f4a7c15);
		sample_rng = seed ? seed : 1;
		ld_track_sample_left = next_gap();
		if (size < (uint64_t)ld_track_sample_left) {
			ld_track_sample_left -= (int64_t)size;
			return false;
		}
	}
	ld_track_sample_left = next_gap();
	return true;
}

/* See agent.h. Out of line, so that the hooks' fast path (a block not
 * sampled) saves no registers for it. */
__attribute__((noinline, used)) void *ld_record_new(void *p, size_t size, const uintptr_t *ret_slot, uintptr_t rbp)
{
	ld_track_busy = 1;
	int e = errno;
	uint32_t pyid = 0;
	if (ld_track_mixed) {
		/* Before the Python agent is in, the interpreter is starting up:
		 * its blocks are no more the program's than those the hooks miss. */
		uint32_t (*fn)(void) = atomic_load_explicit(&ld_track_mixed_site, memory_order_acquire);
		pyid = fn ? fn() : LD_MIXED_SKIP;
	}
	if (pyid == LD_MIXED_SKIP)
		; /* Python's allocator asked: the hooks have it */
	else if (!record_block(p, size, ret_slot, rbp, pyid))
		ld_heap_count_untracked();
	else if (cfg.peak_on)
		peak_add(size);
	errno = e;
	ld_track_busy = 0;
	return p;
}

#if defined(__x86_64__)
/*
 * ld_record_new(p, size, the stack pointer, rbp) as they are on entry: a
 * hook that jumps here has put back the program's registers, and the
 * stack pointer is at the program's return address.
 */
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
#endif

/* See agent.h; out of line for the same reason as ld_record_new. */
__attribute__((noinline)) bool ld_track_remove(void *ptr, uint32_t *site, size_t *size)
{
	ld_track_busy = 1;
	int e = errno;
	size_t sz = 0;
	bool had = ld_heap_remove((uintptr_t)ptr, site, &sz);
	if (had && size)
		*size = sz;
	if (had && cfg.peak_on)
		peak_sub(sz);
	errno = e;
	ld_track_busy = 0;
	return had;
}

void ld_track_restore(void *ptr, size_t size, uint32_t site)
{
	ld_track_busy = 1;
	int e = errno;
	if (!ld_heap_add((uintptr_t)ptr, size, site))
		ld_heap_count_untracked();
	else if (cfg.peak_on)
		peak_add(size);
	errno = e;
	ld_track_busy = 0;
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
	return ld_pipe_frame(&conf.pipe, tag, j->buf, j->len) == 0;
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

static void on_signal(int sig);

/*
 * A program that installs its own handler for the snapshot signal after
 * the agent did takes the signal away from it silently: says so, once,
 * when a snapshot shows it (called with snap_lock held).
 */
static void warn_if_handler_replaced(void)
{
	struct sigaction cur;
	if (!cfg.signal_on || cfg.handler_warned || sigaction(conf.signum, NULL, &cur) < 0 ||
	    cur.sa_handler == on_signal)
		return;
	cfg.handler_warned = true;
	char msg[320] = "the program installed its own handler for signal ";
	ld_cat_num(msg, sizeof(msg), conf.signum);
	ld_cat_str(msg, sizeof(msg), ", so that signal sent to the program itself no longer takes a "
		   "snapshot (sent to leakdiff record, and --every, still do); choose a signal the "
		   "program leaves alone with --signal");
	send_log("warning", msg);
}

void ld_track_stop(void)
{
	atomic_store_explicit(&ld_track_state, LD_TRACK_OFF, memory_order_relaxed);
}

/*
 * Takes one snapshot and streams it: begin, data..., end. Serialised by
 * snap_lock; a write failure turns the agent off for good.
 */
void ld_track_snapshot(const char *label, const char *trigger, bool final)
{
	/* In mixed mode the Python agent takes the snapshots (mixed.c). */
	if (in_snapshot || ld_track_mixed ||
	    atomic_load_explicit(&ld_track_state, memory_order_relaxed) != LD_TRACK_ACTIVE)
		return;
	in_snapshot = true;
	int saved_busy = ld_track_busy;
	ld_track_busy = 1;
	int e = errno;
	/* write() is a cancellation point: a thread cancelled in the middle
	 * would leave snap_lock held and a frame half sent. */
	int cancel_state;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
	pthread_mutex_lock(&snap_lock);
	if (atomic_load_explicit(&ld_track_state, memory_order_relaxed) != LD_TRACK_ACTIVE || snap_final)
		goto out;
	if (final)
		snap_final = true;
	warn_if_handler_replaced();
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

	ld_pipe_hold(&conf.pipe);
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
		struct ld_json d = { .buf = data_buf, .cap = LD_AGENT_DATA_CHUNK, .pipe = &conf.pipe };
		struct ld_doc_info info = {
			.pid = getpid(),
			.seq = seq,
			.label = lab,
			.trigger = trigger,
			.executable = cfg.executable[0] ? cfg.executable : NULL,
			.host = cfg.host,
			.agent = LD_AGENT_NAME " " LD_VERSION,
			.depth = conf.depth,
			.untracked = ld_heap_untracked(),
			.sample = ld_track_sample,
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
	ld_pipe_release(&conf.pipe);
	if (!ok)
		ld_track_stop();
out:
	pthread_mutex_unlock(&snap_lock);
	pthread_setcancelstate(cancel_state, NULL);
	errno = e;
	ld_track_busy = saved_busy;
	in_snapshot = false;
}

/* ------------------------------------------------------------ signal */

static void on_signal(int sig)
{
	(void)sig;
	if (atomic_load_explicit(&ld_track_state, memory_order_relaxed) != LD_TRACK_ACTIVE || cfg.wake_fd < 0)
		return;
	int e = errno;
	uint64_t one = 1;
	ssize_t r = write(cfg.wake_fd, &one, sizeof(one));
	(void)r;
	errno = e;
}

/* Reads an eventfd; true when it was poked. */
static bool poked(int fd)
{
	uint64_t n;
	return read(fd, &n, sizeof(n)) == (ssize_t)sizeof(n);
}

/*
 * Reads what the recorder wrote on the request channel (leakdiff-protocol(7):
 * lines "snapshot TRIGGER") and takes the snapshots asked for. Returns
 * false once the channel is done with: the recorder closed it, or the
 * descriptor is no longer the channel (the program closed or reused it, and
 * what it reads there now is not ours to take).
 */
static char req_line[64];
static size_t req_len;

static bool serve_requests(void)
{
	char *line = req_line;
	size_t len = req_len;
	char buf[256];
	if (!ld_pipe_owned(&conf.request))
		return false;
	ssize_t n = read(conf.request.fd, buf, sizeof(buf));
	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return false;
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] != '\n') {
			if (len < sizeof(req_line) - 1)
				line[len++] = buf[i];
			continue;
		}
		line[len] = '\0';
		len = 0;
		/* Other requests and triggers are for later agents: skipped. */
		if (strcmp(line, "snapshot interval") == 0)
			ld_track_snapshot("", "interval", false);
		else if (strcmp(line, "snapshot signal") == 0)
			ld_track_snapshot("", "signal", false);
	}
	req_len = len;
	return true;
}

/* ------------------------------------------------------------ attached */

/* How often the helper of an attached agent wakes to run the tick. */
#define ATTACH_TICK_MS 100

void (*ld_track_attach_tick)(void);
void (*ld_track_attach_end)(void);
/* A futex word: 1 while the helper of an attachment runs. */
static _Atomic uint32_t attach_helper;

/*
 * Lets go of an attachment's FIFOs (the snapshot stream and the request
 * channel) and marks both dead, so that nothing writes to or reads from
 * their numbers again, which the program may reuse. Only close(): it runs
 * in a fork child too. The caller holds snap_lock, or is the only thread.
 */
static void close_fifos(void)
{
	if (conf.pipe.fd >= 0)
		close(conf.pipe.fd);
	if (conf.request.fd >= 0)
		close(conf.request.fd);
	conf.pipe.fd = conf.request.fd = -1;
	conf.pipe.dead = conf.request.dead = true;
}

/*
 * The end of an attachment, on its helper thread: the hooks go quiet, the
 * GOT entries are put back (attach.c), no snapshot is in flight any more,
 * the FIFOs are closed and the tables emptied. The eventfds stay for the
 * next attachment, since a late free() may still poke them.
 */
static void attach_finish(void)
{
	ld_track_stop();
	if (ld_track_attach_end)
		ld_track_attach_end();
	pthread_mutex_lock(&snap_lock);
	close_fifos();
	pthread_mutex_unlock(&snap_lock);
	ld_heap_forget();
	atomic_store_explicit(&attach_helper, 0, memory_order_release);
	futex_wake_all(&attach_helper);
}

bool ld_track_attach_running(void)
{
	return atomic_load_explicit(&attach_helper, memory_order_acquire) != 0;
}

int ld_track_detach(void)
{
	if (!ld_track_attach_running())
		return -ENOENT;
	ld_track_stop();
	uint64_t one = 1;
	if (cfg.wake_fd >= 0 && write(cfg.wake_fd, &one, sizeof(one)) < 0) {
		/* The tick notices within ATTACH_TICK_MS anyway. */
	}
	while (atomic_load_explicit(&attach_helper, memory_order_acquire)) {
		struct timespec ts = { 0, 50000000 };
		syscall(SYS_futex, (uint32_t *)&attach_helper, FUTEX_WAIT_PRIVATE, 1, &ts, NULL, 0);
	}
	return 0;
}

/*
 * Takes the snapshots that must not be taken where they are asked for:
 * those of the signal (outside the handler), those of the peak (outside
 * free()) and those the recorder asks for on its request channel.
 */
static void *helper_main(void *arg)
{
	(void)arg;
	ld_track_busy = 1; /* everything this thread does is the agent's */
	/* Attached, the stream's FIFO is watched too: it reports an error
	 * once the recorder's end is closed (the recorder was killed). */
	struct pollfd fds[4] = {
		{ .fd = cfg.wake_fd, .events = POLLIN },
		{ .fd = cfg.peak_fd, .events = POLLIN },
		{ .fd = cfg.requests_on ? conf.request.fd : -1, .events = POLLIN },
		{ .fd = conf.attached ? conf.pipe.fd : -1, .events = 0 },
	};
	while (atomic_load_explicit(&ld_track_state, memory_order_relaxed) != LD_TRACK_OFF) {
		if (poll(fds, 4, conf.attached ? ATTACH_TICK_MS : -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[2].revents && !serve_requests()) {
			fds[2].fd = -1; /* poll skips it from now on */
			if (conf.attached)
				break; /* the recorder closed the channel: detach */
		}
		if (fds[3].revents & (POLLERR | POLLHUP | POLLNVAL))
			break;
		if ((fds[1].revents & POLLIN) && poked(cfg.peak_fd)) {
			ld_track_snapshot("peak", "peak", false);
			atomic_fetch_add_explicit(&peak_done, 1, memory_order_release);
			futex_wake_all(&peak_done);
		}
		/* Attached, the eventfd only wakes the helper for ld_track_detach(). */
		if ((fds[0].revents & POLLIN) && poked(cfg.wake_fd) && !conf.attached)
			ld_track_snapshot("", "signal", false);
		if (conf.attached && ld_track_attach_tick)
			ld_track_attach_tick();
	}
	if (conf.attached)
		attach_finish();
	return NULL;
}

/*
 * Whether the snapshot signal can be ours: not when the program already
 * handles or ignores it. Queues a problem when not.
 */
static bool signal_usable(void)
{
	if (!conf.signum)
		return false;
	struct sigaction old;
	if (sigaction(conf.signum, NULL, &old) < 0) {
		ld_config_problem(&conf, "the snapshot signal is not a valid signal; snapshots on signal are off");
		return false;
	}
	if (old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO)) {
		char msg[160] = "signal ";
		ld_cat_num(msg, sizeof(msg), conf.signum);
		ld_cat_str(msg, sizeof(msg), " already has a handler in this program; snapshots on signal are off");
		ld_config_problem(&conf, msg);
		return false;
	}
	return true;
}

/*
 * Starts the helper thread with the eventfds it waits on: for the signal
 * when want_signal, for the peak when want_peak (it also reads the request
 * channel when cfg.requests_on). Returns false (with a problem queued) when
 * it cannot; then none of them works.
 */
static bool start_helper(bool want_signal, bool want_peak)
{
	/* An eventfd of an earlier attachment is kept (see attach_finish()). */
	if (want_signal && cfg.wake_fd < 0 && (cfg.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		goto fail;
	if (want_peak && cfg.peak_fd < 0 && (cfg.peak_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		goto fail;
	/* The helper must never receive the program's signals. */
	sigset_t all, prev;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &prev);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 << 10);
	pthread_t tid;
	if (conf.attached)
		atomic_store_explicit(&attach_helper, 1, memory_order_release);
	int r = pthread_create(&tid, &attr, helper_main, NULL);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &prev, NULL);
	if (r != 0) {
		atomic_store_explicit(&attach_helper, 0, memory_order_release);
		goto fail;
	}
	pthread_setname_np(tid, "leakdiff");
	return true;
fail:
	if (cfg.wake_fd >= 0)
		close(cfg.wake_fd);
	if (cfg.peak_fd >= 0)
		close(cfg.peak_fd);
	cfg.wake_fd = cfg.peak_fd = -1;
	cfg.requests_on = false;
	ld_config_problem(&conf, "cannot start the agent's helper thread; snapshots on signal, at the "
			  "peak and on the recorder's requests are off");
	return false;
}

/* Installs the handler that wakes the helper; whether it is in place. */
static bool install_signal(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(conf.signum, &sa, NULL) < 0) {
		ld_config_problem(&conf, "cannot install the snapshot signal handler; snapshots on signal are off");
		return false;
	}
	return true;
}

/* ------------------------------------------------------------ fork */

static bool fork_touched, fork_locked;
static int fork_busy;

static void fork_prepare(void)
{
	fork_touched = fork_locked = false;
	if (atomic_load_explicit(&ld_track_state, memory_order_relaxed) != LD_TRACK_ACTIVE)
		return;
	fork_touched = true;
	fork_busy = ld_track_busy;
	ld_track_busy = 1; /* whatever fork() allocates in this thread is not tracked */
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
		ld_track_busy = fork_busy;
}

static void fork_child(void)
{
	/* The stream is the parent's: the child never writes to it, and its
	 * hooks only forward from now on. */
	ld_track_stop();
	/* Attached, the child also lets go of the FIFOs, so that the recorder
	 * sees them close when the parent detaches or ends; it has no helper. */
	if (conf.attached) {
		close_fifos();
		atomic_store_explicit(&attach_helper, 0, memory_order_relaxed);
	}
	if (fork_locked)
		ld_heap_unlock_all();
	if (fork_touched)
		ld_track_busy = fork_busy;
}

/* ------------------------------------------------------------ start and stop */

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
	ld_json_u64(&j, conf.depth);
	if (ld_track_sample) {
		ld_json_lit(&j, ",\"sample\":");
		ld_json_u64(&j, ld_track_sample);
	}
	if (cfg.peak_on)
		ld_json_lit(&j, ",\"peak\":true");
	if (cfg.requests_on)
		ld_json_lit(&j, ",\"requests\":true");
	if (conf.attached)
		ld_json_lit(&j, ",\"attached\":true");
	ld_json_lit(&j, cfg.signal_on ? ",\"signal\":true}" : ",\"signal\":false}");
	if (!send_control("hello", &j))
		ld_track_stop();
}

int ld_track_open(const struct ld_config *c)
{
	int saved_busy = ld_track_busy;
	ld_track_busy = 1;
	int e = errno;
	int r = -1;
	conf = *c;
	ld_track_sample = conf.sample;
	if (!ld_pipe_owned(&conf.pipe))
		goto out;
	if (!conf.follow_exec && fcntl(conf.pipe.fd, F_SETFD, FD_CLOEXEC) < 0)
		goto out;
	/*
	 * The request channel, unless several processes share the stream: a
	 * request must reach the agent the recorder means, so those are
	 * asked with the signal. A channel that is not what it should be is
	 * left alone.
	 */
	if (conf.request.fd >= 0 &&
	    (conf.follow_exec || !ld_pipe_owned(&conf.request) || fcntl(conf.request.fd, F_SETFD, FD_CLOEXEC) < 0))
		conf.request.fd = -1;
	dl_iterate_phdr(find_self, (void *)(uintptr_t)ld_track_open);
	r = 0;
out:
	if (r < 0)
		ld_track_stop();
	errno = e;
	ld_track_busy = saved_busy;
	return r;
}

/* The process the agent started in: a vfork() child shares the agent's
 * memory without the fork handlers having run, and is told apart by pid. */
static pid_t track_pid;

/*
 * An attachment after an earlier one starts from nothing: no live block,
 * no totals, sequence numbers from 1, no peak, a new request line.
 */
static void restart(void)
{
	/* Not off: the new helper thread would take that for its end. */
	atomic_store_explicit(&ld_track_state, LD_TRACK_UNINIT, memory_order_relaxed);
	track_gen++;
	ld_heap_forget();
	snap_seq = 0;
	snap_final = false;
	req_len = 0;
	atomic_store_explicit(&peak_live, 0, memory_order_relaxed);
	atomic_store_explicit(&peak_next, PEAK_MIN_STEP, memory_order_relaxed);
	atomic_store_explicit(&ld_track_peak_passed, false, memory_order_relaxed);
	cfg.signal_on = cfg.peak_on = cfg.requests_on = cfg.handler_warned = false;
	/* A late free() of the last attachment may have poked them. */
	if (cfg.wake_fd >= 0)
		poked(cfg.wake_fd);
	if (cfg.peak_fd >= 0)
		poked(cfg.peak_fd);
}

int ld_track_start(void)
{
	int saved_busy = ld_track_busy;
	ld_track_busy = 1;
	int e = errno;
	track_pid = getpid();
	ssize_t len = readlink("/proc/self/exe", cfg.executable, sizeof(cfg.executable) - 1);
	cfg.executable[len > 0 ? len : 0] = '\0';
	if (gethostname(cfg.host, sizeof(cfg.host) - 1) < 0)
		cfg.host[0] = '\0';
	/* Once per process: an attached agent may start again after detaching. */
	static bool once;
	if (!once) {
		exit_key_ok = pthread_key_create(&exit_key, thread_exit) == 0;
		if (ld_heap_init() < 0 || pthread_atfork(fork_prepare, fork_parent, fork_child) != 0) {
			ld_track_stop();
			goto out;
		}
		once = true;
	}
	if (conf.attached)
		restart();
	if (ld_track_sample)
		ld_heap_use_filter(); /* before LD_TRACK_ACTIVE: no block is in the table yet */
	bool want_signal = signal_usable(), want_peak = conf.peak;
	if (want_peak && ld_track_sample) {
		ld_config_problem(&conf, "peak snapshots need every allocation tracked; they are off with sampling");
		want_peak = false;
	}
	cfg.requests_on = conf.request.fd >= 0;
	/* Attached, the helper must run: it is what detaches. Its eventfd
	 * (the signal's otherwise) wakes it for ld_track_detach(). */
	bool helper = (want_signal || want_peak || cfg.requests_on || conf.attached) &&
		      start_helper(want_signal || conf.attached, want_peak);
	if (helper) {
		cfg.signal_on = want_signal && install_signal();
		cfg.peak_on = want_peak; /* before tracking starts: the count must see every block */
	} else if (conf.attached) {
		ld_track_stop();
		goto out;
	}
	ld_exec_release_signal(conf.signum, cfg.signal_on);
	ld_pipe_hold(&conf.pipe);
	send_hello();
	for (int i = 0; i < conf.nproblems && !conf.pipe.dead; i++)
		send_log("warning", conf.problems[i]);
	ld_pipe_release(&conf.pipe);
	if (!conf.pipe.dead)
		atomic_store_explicit(&ld_track_state, LD_TRACK_ACTIVE, memory_order_release);
	else
		ld_track_stop();
out:
	errno = e;
	ld_track_busy = saved_busy;
	return atomic_load_explicit(&ld_track_state, memory_order_relaxed) == LD_TRACK_ACTIVE ? 0 : -1;
}

int ld_track_start_mixed(const struct ld_config *c)
{
	int saved_busy = ld_track_busy;
	ld_track_busy = 1;
	int e = errno;
	conf = *c;
	conf.pipe.fd = conf.request.fd = -1;
	ld_track_sample = conf.sample;
	ld_track_mixed = true;
	track_pid = getpid();
	dl_iterate_phdr(find_self, (void *)(uintptr_t)ld_track_open);
	ssize_t len = readlink("/proc/self/exe", cfg.executable, sizeof(cfg.executable) - 1);
	cfg.executable[len > 0 ? len : 0] = '\0';
	if (gethostname(cfg.host, sizeof(cfg.host) - 1) < 0)
		cfg.host[0] = '\0';
	exit_key_ok = pthread_key_create(&exit_key, thread_exit) == 0;
	if (ld_heap_init() < 0 || pthread_atfork(fork_prepare, fork_parent, fork_child) != 0) {
		ld_track_stop();
	} else {
		if (ld_track_sample)
			ld_heap_use_filter();
		atomic_store_explicit(&ld_track_state, LD_TRACK_ACTIVE, memory_order_release);
	}
	errno = e;
	ld_track_busy = saved_busy;
	return atomic_load_explicit(&ld_track_state, memory_order_relaxed) == LD_TRACK_ACTIVE ? 0 : -1;
}

int ld_track_mixed_document(int (*sink)(void *ctx, const char *data, size_t len), void *ctx)
{
	if (!ld_track_mixed || atomic_load_explicit(&ld_track_state, memory_order_relaxed) != LD_TRACK_ACTIVE ||
	    getpid() != track_pid)
		return -1;
	int saved_busy = ld_track_busy;
	ld_track_busy = 1;
	int e = errno;
	int r = -1;
	pthread_mutex_lock(&snap_lock);
	flush_cache(mine);
	if (data_buf || (data_buf = ld_pages(LD_AGENT_DATA_CHUNK))) {
		struct ld_json d = { .buf = data_buf, .cap = LD_AGENT_DATA_CHUNK, .sink = sink, .sink_ctx = ctx };
		struct ld_doc_info info = {
			.pid = getpid(),
			.seq = ++snap_seq,
			.label = "",
			.trigger = "mixed",
			.executable = cfg.executable[0] ? cfg.executable : NULL,
			.host = cfg.host,
			.agent = LD_AGENT_NAME " " LD_VERSION,
			.depth = conf.depth,
			.untracked = ld_heap_untracked(),
			.sample = ld_track_sample,
			.started_ns = mono_ns(),
			.mixed = true,
		};
		r = ld_doc_write(&d, &info);
	}
	pthread_mutex_unlock(&snap_lock);
	errno = e;
	ld_track_busy = saved_busy;
	return r;
}

int ld_track_exec_fd(int *signum)
{
	if (atomic_load_explicit(&ld_track_state, memory_order_relaxed) != LD_TRACK_ACTIVE ||
	    getpid() != track_pid || conf.follow_exec || !ld_pipe_owned(&conf.pipe))
		return -1;
	*signum = cfg.signal_on ? conf.signum : 0;
	return conf.pipe.fd;
}

void ld_track_exit(void)
{
	if (atomic_load_explicit(&ld_track_state, memory_order_relaxed) != LD_TRACK_ACTIVE)
		return;
	/* A heap at its highest when the program ends had no free to show it. */
	if (cfg.peak_on) {
		peak_flush();
		if (atomic_exchange_explicit(&ld_track_peak_passed, false, memory_order_relaxed))
			ld_track_snapshot("peak", "peak", false);
	}
	ld_track_snapshot("exit", "exit", true);
	ld_track_stop();
}

void ld_track_exit_direct(void)
{
	if (atomic_load_explicit(&ld_track_state, memory_order_relaxed) != LD_TRACK_ACTIVE)
		return;
	/* A vfork() child (posix_spawn's too): its snapshot would be the
	 * parent's heap, and stopping would stop the parent's agent. */
	if (getpid() != track_pid)
		return;
	/* This thread is inside the agent (a signal handler interrupted a
	 * hook or a snapshot): it may hold the locks a snapshot takes. */
	if (ld_track_busy || in_snapshot)
		return;
	ld_track_exit();
}
