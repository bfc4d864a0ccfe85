/*
 * Internals shared by the files of the native agent (libleakdiff-preload.so),
 * the library that LD_PRELOAD puts into a C or C++ program. preload.c holds
 * the interposed allocation functions and the constructor and destructor
 * that start and stop the agent, config.c its settings, track.c the
 * tracking core (stacks, sampling, snapshots, fork), heap.c the
 * live-allocation and site tables, memo.c the stacks remembered per thread,
 * pipe.c the framed writes to the recorder's pipe, doc.c the JSON documents
 * it sends, mixed.c what it exports to the Python agent for `leakdiff
 * record --native` (and its dlsym()).
 *
 * Everything here may run inside malloc: nothing allocates through malloc,
 * touches stdio or takes a lock that a malloc hook could already hold. All
 * memory of the agent comes from mmap and is never given back, so state read
 * by a late free() or a destructor is always valid.
 */
#ifndef LD_AGENT_H
#define LD_AGENT_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LD_AGENT_NAME "leakdiff-native"
/* Frames recorded per allocation unless LEAKDIFF_DEPTH says otherwise; the
 * same as `leakdiff record --depth`'s default. */
#define LD_AGENT_DEFAULT_DEPTH 16
/* The most frames per allocation (the snapshot format's limit). */
#define LD_AGENT_MAX_DEPTH 1024
/* Largest payload of one data frame; the protocol allows 16 MiB. */
#define LD_AGENT_DATA_CHUNK (1u << 20)
/* Largest payload of hello, begin, end and log frames. */
#define LD_AGENT_CONTROL_MAX (64u << 10)

#define LD_HIDDEN __attribute__((visibility("hidden")))
#define LD_IE __attribute__((tls_model("initial-exec")))

/* ------------------------------------------------------------ locks */

/*
 * A spin lock that yields after a while. Critical sections are a few hash
 * probes, so spinning beats a futex; yielding keeps an oversubscribed
 * machine from burning the holder's time slice.
 */
void ld_lock_wait(atomic_int *l) LD_HIDDEN;

/* Inline, because every tracked malloc and free takes a lock once; the
 * wait is out of line. */
static inline void ld_lock(atomic_int *l)
{
	if (__builtin_expect(atomic_exchange_explicit(l, 1, memory_order_acquire), 0))
		ld_lock_wait(l);
}

static inline void ld_unlock(atomic_int *l)
{
	atomic_store_explicit(l, 0, memory_order_release);
}

/* Anonymous read-write pages, or NULL (errno may change). */
void *ld_pages(size_t len) LD_HIDDEN;

/* ------------------------------------------------------------ heap.c */

/* One site as the snapshot writer sees it. */
struct ld_site_info {
	const uintptr_t *stack; /* return addresses, innermost first */
	uint32_t depth;
	uint64_t total_count, total_bytes; /* ever allocated, as flushed so far */
};

/* Live blocks of one site, summed by ld_heap_collect(). */
struct ld_site_live {
	uint64_t count, bytes;      /* blocks in the table */
	double est_count, est_bytes; /* with sampling: what they stand for */
};

/*
 * Sets up the tables. Returns 0 or -ENOMEM; nothing is tracked after a
 * failure. Called once, before any other ld_heap function.
 */
int ld_heap_init(void) LD_HIDDEN;

/*
 * Sampled mode: keeps a count of recorded blocks per bucket of addresses so
 * that freeing a block that was never recorded skips the table's locks.
 * Call once after ld_heap_init() and before tracking starts. Returns false
 * when its 64 KiB cannot be mapped (the agent then works without it).
 */
bool ld_heap_use_filter(void) LD_HIDDEN;

/* The sampled mode's filter: NULL in exact mode; see heap.c. */
#define LD_HEAP_FILTER_BITS 15
extern _Atomic uint16_t *ld_heap_filter LD_HIDDEN;

/*
 * False when ptr cannot be in the live table, so that a free of a block
 * that was never recorded (nearly all of them when sampling) costs a load
 * and no call. 64 KiB of counters keep it in cache; they are bucketed by
 * the address itself (blocks are 16-byte aligned, so neighbours land in
 * neighbouring buckets), which needs no multiply.
 */
static inline _Atomic uint16_t *ld_heap_filter_bucket(uintptr_t ptr)
{
	return &ld_heap_filter[((ptr >> 4) ^ (ptr >> (4 + LD_HEAP_FILTER_BITS))) &
			       ((1u << LD_HEAP_FILTER_BITS) - 1)];
}

static inline bool ld_heap_may_hold(uintptr_t ptr)
{
	return !ld_heap_filter || atomic_load_explicit(ld_heap_filter_bucket(ptr), memory_order_relaxed);
}

/* Hash of a stack as ld_heap_site() wants it (never 0). */
uint64_t ld_heap_hash(const uintptr_t *stack, uint32_t depth) LD_HIDDEN;

/*
 * The site id of a stack of depth return addresses (innermost first) with
 * the given hash, creating the site on first sight; the stack is copied.
 * Returns 0 when the agent is out of memory (the allocation then goes
 * untracked).
 */
uint32_t ld_heap_site(const uintptr_t *stack, uint32_t depth, uint64_t hash) LD_HIDDEN;

/* Adds to a site's running totals of blocks and bytes ever allocated. */
void ld_heap_add_total(uint32_t site, uint64_t count, uint64_t bytes) LD_HIDDEN;

/*
 * Records the live block ptr of size bytes allocated at site (non-zero);
 * an entry left at the same address by a free the agent missed is
 * replaced. Returns false when out of memory (the block is untracked).
 */
bool ld_heap_add(uintptr_t ptr, size_t size, uint32_t site) LD_HIDDEN;

/*
 * Forgets the live block ptr. Returns false when it was not tracked;
 * otherwise its site and size go to *site and *size (either may be NULL).
 * Callers skip it when ld_heap_may_hold(ptr) is false.
 */
bool ld_heap_remove(uintptr_t ptr, uint32_t *site, size_t *size) LD_HIDDEN;

/* Number of site ids handed out; ids run from 1 to this. */
uint32_t ld_heap_nsites(void) LD_HIDDEN;

/* Reads site id; false when it is not (yet) complete. */
bool ld_heap_site_info(uint32_t id, struct ld_site_info *out) LD_HIDDEN;

/*
 * Sums the live blocks by site into acc[1..n] (acc holds n + 1 entries and
 * is cleared first; sites above n are skipped). Shards are read one at a
 * time under their locks, so blocks allocated or freed meanwhile by other
 * threads may or may not be counted. With sample_mean > 0 (bytes between
 * samples, see track.c) each block of n bytes was recorded with
 * probability 1 - exp(-n / sample_mean) and also adds 1/p blocks and n/p
 * bytes to the estimates.
 */
void ld_heap_collect(struct ld_site_live *acc, uint32_t n, double sample_mean) LD_HIDDEN;

/* Allocations that went untracked because the agent ran out of memory. */
uint64_t ld_heap_untracked(void) LD_HIDDEN;
void ld_heap_count_untracked(void) LD_HIDDEN;

/*
 * Forgets every live block, gives the live table's pages back and sets the
 * sites' running totals to 0 (the sites themselves stay, so ids that
 * threads still hold remain valid). For detaching and attaching again:
 * call with tracking off. Safe while other threads still run hooks.
 */
void ld_heap_forget(void) LD_HIDDEN;

/*
 * Around fork(): takes every table lock so that no other thread holds one
 * while the process is copied, and releases them in parent and child.
 */
void ld_heap_lock_all(void) LD_HIDDEN;
void ld_heap_unlock_all(void) LD_HIDDEN;

/* ------------------------------------------------------------ memo.c */

/* A thread's remembered stacks (see memo.c); only that thread uses it. */
struct ld_memo_table;

/* A table from mmap, or NULL (out of memory, or not x86-64: nothing is
 * remembered then). It is never freed; a thread that ends hands it on. */
struct ld_memo_table *ld_memo_create(void) LD_HIDDEN;

/* Forgets everything, for a table passed to another thread. NULL is fine. */
void ld_memo_clear(struct ld_memo_table *m) LD_HIDDEN;

struct ld_memo_hit {
	uint32_t site, depth;
	uint64_t hash; /* ld_heap_hash() of the site's stack */
};

/*
 * The site of an allocation whose caller returns to ra with the stack
 * pointer at sp and the frame register at rbp, if that stack was learnt
 * and is still the same: true and *out filled in, or false.
 */
bool ld_memo_find(struct ld_memo_table *m, uintptr_t ra, uintptr_t sp, uintptr_t rbp,
		  struct ld_memo_hit *out) LD_HIDDEN;

/*
 * Tells the table that this allocation's stack, as unw_backtrace found it
 * (stack[0] == ra, cut at max_depth), is site. When a pair misses again
 * while still among the last few misses of its set, the stack is walked
 * again to learn what it depends on; anything the walk cannot vouch for is
 * simply not remembered.
 */
void ld_memo_learn(struct ld_memo_table *m, uintptr_t ra, uintptr_t sp, uintptr_t rbp,
		   const uintptr_t *stack, uint32_t depth, uint32_t max_depth, uint64_t hash,
		   uint32_t site) LD_HIDDEN;

/* ------------------------------------------------------------ pipe.c */

struct ld_pipe {
	int fd;
	dev_t dev;
	ino_t ino;
	bool dead;       /* a check or a write failed: never write again */
	bool shared;     /* other processes may write too (LEAKDIFF_FOLLOW_EXEC) */
};

/* True while fd still is the pipe named by dev:ino; marks it dead if not. */
bool ld_pipe_owned(struct ld_pipe *p) LD_HIDDEN;

/*
 * Writes one frame (TAG SP LENGTH LF PAYLOAD LF) completely, retrying short
 * writes and EINTR, with SIGPIPE held off so that a recorder that went away
 * cannot kill the program. Returns 0, or -1 after which the pipe is dead.
 */
int ld_pipe_frame(struct ld_pipe *p, const char *tag, const void *payload, size_t len) LD_HIDDEN;

/* Serialises whole groups of frames between processes sharing the pipe. */
void ld_pipe_hold(struct ld_pipe *p) LD_HIDDEN;
void ld_pipe_release(struct ld_pipe *p) LD_HIDDEN;

/* CRC-32 as zlib computes it: crc starts at 0 and is fed piece by piece. */
uint32_t ld_crc32(uint32_t crc, const void *data, size_t len) LD_HIDDEN;

/* ------------------------------------------------------------ doc.c */

/*
 * A JSON writer over a fixed buffer. With a pipe it is a data stream: a full
 * buffer goes out as a data frame and the CRC and byte count run on; without
 * one, text past the buffer sets overflow.
 */
struct ld_json {
	char *buf;
	size_t len, cap;
	struct ld_pipe *pipe; /* NULL for a control payload */
	/* Instead of a pipe: where full buffers go (mixed mode, see mixed.c). */
	int (*sink)(void *ctx, const char *data, size_t len);
	void *sink_ctx;
	uint32_t crc;
	uint64_t sent;
	bool overflow, failed;
};

void ld_json_raw(struct ld_json *j, const char *s, size_t n) LD_HIDDEN;
void ld_json_lit(struct ld_json *j, const char *s) LD_HIDDEN;
void ld_json_u64(struct ld_json *j, uint64_t v) LD_HIDDEN;
void ld_json_i64(struct ld_json *j, int64_t v) LD_HIDDEN;
/* s as a JSON string: escaped, invalid UTF-8 replaced by U+FFFD. */
void ld_json_str(struct ld_json *j, const char *s) LD_HIDDEN;
/* Sends what is buffered as a data frame; 0 or -1. */
int ld_json_flush(struct ld_json *j) LD_HIDDEN;

/* What the snapshot document says about the process and the agent. */
struct ld_doc_info {
	int64_t pid, seq;
	const char *label, *trigger, *executable, *host, *agent;
	uint32_t depth;
	uint64_t sample; /* mean bytes between samples; 0: every allocation */
	uint64_t untracked;
	int64_t started_ns; /* CLOCK_MONOTONIC when the snapshot began */
	bool mixed; /* each stack's last element is a Python stack id (mixed.c) */
};

/*
 * Streams the native raw snapshot document (see doc.c) into j: metadata,
 * module map, every site with live blocks and the totals. Returns 0, or -1
 * when a write failed.
 */
int ld_doc_write(struct ld_json *j, const struct ld_doc_info *info) LD_HIDDEN;

/* UTC time as ISO 8601 with milliseconds ("2024-05-01T12:00:00.000Z"). */
void ld_doc_time(char out[32]) LD_HIDDEN;

/* ------------------------------------------------------------ config.c */


/* The agent's settings. */
struct ld_config {
	struct ld_pipe pipe; /* fd -1: no valid pipe given */
	struct ld_pipe request; /* the recorder's request channel; fd -1: none */
	uint32_t depth;      /* frames per allocation, 1 to LD_AGENT_MAX_DEPTH */
	uint64_t sample;     /* mean bytes between samples; 0: every allocation */
	int signum;          /* the snapshot signal; 0: none */
	bool peak;           /* keep taking "peak" snapshots at new high-water marks */
	bool follow_exec;    /* the pipe is shared with programs the target runs */
	char problems[4][256]; /* messages for log frames once hello is out */
	int nproblems;
	/* Attaching (attach.c): the FIFOs' paths as the settings string gave
	 * them ("" when not given), and whether the agent was attached to a
	 * running process rather than preloaded. */
	char attach_out[PATH_MAX], attach_in[PATH_MAX];
	bool attached;
};

/* Fills in the defaults: no pipe, no request channel,
 * LD_AGENT_DEFAULT_DEPTH frames, every allocation, SIGUSR2, no peak
 * snapshots. */
void ld_config_init(struct ld_config *c) LD_HIDDEN;

/*
 * Reads the LEAKDIFF_* variables of leakdiff-protocol(7) into c (set up by
 * ld_config_init()). Unless LEAKDIFF_FOLLOW_EXEC=1, then removes them and
 * this library's entry of LD_PRELOAD, through setenv(), so call it with
 * ld_track_busy set. A bad value keeps its default and adds a problem.
 * Returns true when LEAKDIFF_FD and LEAKDIFF_PIPE name a pipe.
 */
bool ld_config_from_env(struct ld_config *c) LD_HIDDEN;

/*
 * Mixed mode (`leakdiff record --native` of a Python program): true when
 * LEAKDIFF_NATIVE_MIXED=1. Then reads LEAKDIFF_DEPTH and LEAKDIFF_SAMPLE
 * into c. Nothing is removed from the environment: a wrapper may exec the
 * interpreter, and the Python agent cleans up (_hooks.py). Call with
 * ld_track_busy set.
 */
bool ld_config_mixed_from_env(struct ld_config *c) LD_HIDDEN;

/*
 * Reads settings from s, "KEY=VALUE,..." (syntax in config.c), into c (set
 * up by ld_config_init()); the environment is neither read nor changed.
 * Bad values and unknown keys add problems. Returns true when fd and pipe
 * name a pipe.
 */
bool ld_config_parse(struct ld_config *c, const char *s) LD_HIDDEN;

/* Queues msg (copied, cut at 255 bytes) for a log frame; the fifth and
 * later are dropped. */
void ld_config_problem(struct ld_config *c, const char *msg) LD_HIDDEN;

/* Append s, or decimal v, to the string in buf of cap bytes, cutting it at
 * cap - 1 bytes. */
void ld_cat_str(char *buf, size_t cap, const char *s) LD_HIDDEN;
void ld_cat_num(char *buf, size_t cap, long v) LD_HIDDEN;

/* ------------------------------------------------------------ track.c */

enum { LD_TRACK_UNINIT, LD_TRACK_ACTIVE, LD_TRACK_OFF };

/* Whether the agent tracks: LD_TRACK_ACTIVE from ld_track_start() until
 * the pipe fails, the process forks (in the child) or the at-exit
 * snapshot went out. */
extern atomic_int ld_track_state LD_HIDDEN;
/* Set while this thread runs agent code: allocations then are not tracked. */
extern __thread int ld_track_busy LD_IE LD_HIDDEN;
/* Sampling: bytes this thread allocates before the next recorded block. */
extern __thread int64_t ld_track_sample_left LD_IE LD_HIDDEN;
/* Mean bytes between samples; 0: every block is recorded. */
extern uint64_t ld_track_sample LD_HIDDEN;

/*
 * Takes the settings (copied; the pipe is the agent's from now on), checks
 * that the pipe is the one named, marks it close-on-exec unless it is
 * shared and finds this library in memory. Returns 0, or -1 after which
 * the agent is off for good. Nothing is tracked yet; call once, before
 * ld_track_start().
 */
int ld_track_open(const struct ld_config *c) LD_HIDDEN;

/*
 * Sets up the tables, fork handlers and the snapshot signal, sends hello
 * and the queued problems, and turns tracking on. Returns 0, or -1 when the
 * agent is off for good (out of memory, the pipe failed).
 */
int ld_track_start(void) LD_HIDDEN;

/*
 * Starts tracking in mixed mode (see mixed.c) with c's depth and sampling:
 * no pipe, no hello, no snapshot of its own; the Python agent asks for
 * the native sites. Returns 0, or -1 when the agent is off for good.
 */
int ld_track_start_mixed(const struct ld_config *c) LD_HIDDEN;

/* Mixed mode: the Python agent's callback, or NULL (see mixed.h). */
extern _Atomic(uint32_t (*)(void)) ld_track_mixed_site LD_HIDDEN;
/* True once ld_track_start_mixed() ran. */
extern bool ld_track_mixed LD_HIDDEN;

/*
 * Mixed mode: writes the raw document of the live native sites to sink,
 * each site's sixth element its Python stack id. Returns 0, or -1 when the
 * agent is not tracking, runs out of memory or the sink gave up.
 */
int ld_track_mixed_document(int (*sink)(void *ctx, const char *data, size_t len), void *ctx) LD_HIDDEN;

/* Turns the agent off for good: the hooks only forward from then on. */
void ld_track_stop(void) LD_HIDDEN;

/*
 * Takes one snapshot in the calling thread and streams it to the recorder.
 * label and trigger are copied. Does nothing while the agent is off or
 * this thread is already taking one; after final, no snapshot is taken
 * again. A write failure turns the agent off for good.
 */
void ld_track_snapshot(const char *label, const char *trigger, bool final) LD_HIDDEN;

/*
 * Peak snapshots: set when the live bytes passed the next step (5% above
 * the last peak, at least 64 KiB), cleared by ld_track_peak_fall().
 */
extern atomic_bool ld_track_peak_passed LD_HIDDEN;

/*
 * For free() while ld_track_peak_passed is set: the first fall after a new
 * high-water mark. Sets the next step and holds the calling thread (at
 * most 10 s) while the helper thread takes the "peak" snapshot, so that
 * the snapshot sees the heap at its peak. Keeps errno.
 */
void ld_track_peak_fall(void) LD_HIDDEN;

/* The at-exit snapshot, then the agent is off for good. */
void ld_track_exit(void) LD_HIDDEN;

/*
 * The at-exit snapshot of a process that ends through _exit() or _Exit(),
 * which skip the destructor: as ld_track_exit(), from any thread and from
 * a signal handler, since it needs no malloc or stdio. Skipped in a vfork()
 * child, which shares the parent's memory, and when the calling thread was
 * interrupted inside the agent, whose locks it may hold.
 */
void ld_track_exit_direct(void) LD_HIDDEN;

/*
 * The pipe's descriptor when the calling process may hand the agent on to
 * the program it execs: the agent is on, this is the process it started in
 * (not a vfork() child) and exec is not followed through the environment
 * already (LEAKDIFF_FOLLOW_EXEC); *signum is then the snapshot signal, 0
 * when snapshots on signal are off. -1 otherwise, *signum untouched.
 */
int ld_track_exec_fd(int *signum) LD_HIDDEN;

/*
 * Attaching (attach.c). While attached, the helper thread calls
 * ld_track_attach_tick every 100 ms (from the helper, with ld_track_busy
 * set) and, when the attachment ends (the recorder closed the request FIFO,
 * the stream FIFO broke, ld_track_detach() or the at-exit snapshot),
 * ld_track_attach_end once, with tracking already off, before it closes the
 * FIFOs, empties the tables and ends. Both NULL in the preloaded agent.
 */
extern void (*ld_track_attach_tick)(void) LD_HIDDEN;
extern void (*ld_track_attach_end)(void) LD_HIDDEN;

/* Whether the helper of an attachment still runs (attached, or detaching). */
bool ld_track_attach_running(void) LD_HIDDEN;

/*
 * Ends the attachment from any thread but the helper and waits until the
 * helper has finished it. Returns 0, or -ENOENT when nothing is attached.
 */
int ld_track_detach(void) LD_HIDDEN;

/* Tracking can be asked for: the agent is on and this thread outside it. */
static inline bool ld_track_on(void)
{
	return atomic_load_explicit(&ld_track_state, memory_order_relaxed) == LD_TRACK_ACTIVE &&
	       !ld_track_busy;
}

/* The sampled mode's draw, when a block reaches the next sampled byte or
 * the thread has not drawn yet: whether to record it. */
bool ld_track_sample_draw(size_t size) LD_HIDDEN;

/* Whether to record a block of size bytes in sampled mode. */
static inline bool ld_track_sample_this(size_t size)
{
	if (size < (uint64_t)ld_track_sample_left) {
		ld_track_sample_left -= (int64_t)size;
		return false;
	}
	return ld_track_sample_draw(size);
}

/*
 * Records the new block p of size bytes, allocated at the current stack,
 * and returns p; keeps errno as the allocator left it. Called outside the
 * agent (ld_track_busy clear): the flag is set only around the agent's own
 * work, because glibc's allocator does not call back into malloc. A block
 * the agent cannot record (out of memory) is counted as untracked. ret_slot
 * is where the program's return address lies and rbp its frame register,
 * when the hook was left by a tail call (NULL otherwise).
 */
void *ld_record_new(void *p, size_t size, const uintptr_t *ret_slot, uintptr_t rbp) LD_HIDDEN;

#if defined(__x86_64__)
/*
 * ld_record_new(p, size, ...) with the stack pointer and frame register as
 * they are on entry. Hooks reach it by a tail call, so that their frame is
 * gone: libunwind pays about 8 ns for every frame it steps through, and
 * memo.c can see the program's own return address, stack pointer and
 * frame register. Written in assembly in track.c.
 */
void *ld_record_entry(void *p, size_t size) LD_HIDDEN;
#else
static inline void *ld_record_entry(void *p, size_t size)
{
	return ld_record_new(p, size, NULL, 0);
}
#endif

/* p, recorded if it is to be (every block in exact mode); for the hooks,
 * with ld_track_on() true. */
static inline void *ld_track_new(void *p, size_t size)
{
	if (ld_track_sample && !ld_track_sample_this(size))
		return p;
	return ld_record_entry(p, size);
}

/*
 * Forgets the block ptr, if tracked: true and its site and size in *site
 * and *size (either may be NULL), or false. Keeps errno.
 */
bool ld_track_remove(void *ptr, uint32_t *site, size_t *size) LD_HIDDEN;

/* Takes ptr (NULL is fine) out of the table before glibc gets it back; for
 * the hooks, with ld_track_on() true. Returns what ld_track_remove() does. */
static inline bool ld_track_forget(void *ptr, uint32_t *site, size_t *size)
{
	if (!ptr || !ld_heap_may_hold((uintptr_t)ptr))
		return false;
	return ld_track_remove(ptr, site, size);
}

/* Puts back a block that ld_track_forget() took out, for a realloc() that
 * failed and left it intact; keeps errno. */
void ld_track_restore(void *ptr, size_t size, uint32_t site) LD_HIDDEN;

/* ------------------------------------------------------------ exec.c */

/*
 * Finds glibc's execvpe and fexecve and, unless LEAKDIFF_FOLLOW_EXEC=1,
 * copies the agent's variables and this library's path, so that the exec
 * family can hand them to the program the traced process becomes. Call
 * from the constructor with ld_track_busy set, before ld_config_from_env()
 * removes the variables. Nothing to free; on failure exec is not followed.
 */
void ld_exec_remember(void) LD_HIDDEN;

/*
 * When the program that exec'd into this one held the snapshot signal
 * blocked across the exec, unblocks it in the calling thread: a request
 * that came meanwhile then reaches the handler, or, when handled is false
 * (snapshots on signal are off), is dropped first. Does nothing otherwise.
 * Call once the handler is installed, from the constructor's thread.
 */
void ld_exec_release_signal(int signum, bool handled) LD_HIDDEN;

#endif
