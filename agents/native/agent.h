/*
 * Internals shared by the files of the native agent (libleakdiff-preload.so),
 * the library that LD_PRELOAD puts into a C or C++ program. preload.c holds
 * the allocation hooks and the agent's life cycle, heap.c the live-allocation
 * and site tables, memo.c the stacks remembered per thread, pipe.c the framed
 * writes to the recorder's pipe, doc.c the JSON documents it sends.
 *
 * Everything here may run inside malloc: nothing allocates through malloc,
 * touches stdio or takes a lock that a malloc hook could already hold. All
 * memory of the agent comes from mmap and is never given back, so state read
 * by a late free() or a destructor is always valid.
 */
#ifndef LD_AGENT_H
#define LD_AGENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LD_AGENT_NAME "leakdiff-native"
/* Frames recorded per allocation unless LEAKDIFF_DEPTH says otherwise. */
#define LD_AGENT_DEFAULT_DEPTH 32
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
 * samples, see preload.c) each block of n bytes was recorded with
 * probability 1 - exp(-n / sample_mean) and also adds 1/p blocks and n/p
 * bytes to the estimates.
 */
void ld_heap_collect(struct ld_site_live *acc, uint32_t n, double sample_mean) LD_HIDDEN;

/* Allocations that went untracked because the agent ran out of memory. */
uint64_t ld_heap_untracked(void) LD_HIDDEN;
void ld_heap_count_untracked(void) LD_HIDDEN;

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
};

/*
 * Streams the native raw snapshot document (see doc.c) into j: metadata,
 * module map, every site with live blocks and the totals. Returns 0, or -1
 * when a write failed.
 */
int ld_doc_write(struct ld_json *j, const struct ld_doc_info *info) LD_HIDDEN;

/* UTC time as ISO 8601 with milliseconds ("2024-05-01T12:00:00.000Z"). */
void ld_doc_time(char out[32]) LD_HIDDEN;

#endif
