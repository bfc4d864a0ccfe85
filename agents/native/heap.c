/*
 * The agent's two tables, both in memory from mmap that is never returned.
 *
 * The live table maps each tracked block's address to its site and size:
 * 1024 shards in 4 groups, the group picked by the block's 64 MiB window of
 * addresses (shard_of). Each shard is an open-addressing table with linear
 * probing and backward-shift deletion (no tombstones, so heavy churn does
 * not degrade it), guarded by its own spin lock. A slot is 16 bytes.
 * Tables grow by half at 3/4 full and halve below 3/16, so a live block
 * costs 21 to 32 bytes while the heap grows (at most 85 just before a
 * shrink); doubling would have cost up to 43. Capacities are multiples of
 * SHARD_MIN slots, not powers of two, so a hash is mapped to a slot by a
 * multiply and a shift.
 * Sizes of 4 GiB and more do not fit a slot and live in a small side table.
 *
 * The site table maps a stack (the return addresses of one allocation) to a
 * site record. Records sit in fixed chunks found through a directory, so a
 * record never moves and can be read by id without a lock; the index from
 * stack hash to id is split into 64 locked stripes. Sites are never
 * deleted, so ids stay valid forever.
 *
 * Live counts per site are not kept on the way: a snapshot sums the live
 * table by site instead (ld_heap_collect). Per-site counters updated by
 * every malloc and free would cost an atomic read-modify-write on a shared
 * cache line each time, measured at a third of the agent's overhead; the
 * scan costs a few milliseconds per million live blocks, once per snapshot.
 * The running totals (blocks and bytes ever allocated at a site) arrive in
 * batches from each thread's cache (track.c).
 */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>

#include "agent.h"
#include "mix64.h"

/* ------------------------------------------------------------ helpers */

void ld_lock_wait(atomic_int *l)
{
	unsigned spins = 0;
	do {
		while (atomic_load_explicit(l, memory_order_relaxed)) {
			if (++spins > 64) {
				sched_yield();
			} else {
#if defined(__x86_64__) || defined(__i386__)
				__builtin_ia32_pause();
#elif defined(__aarch64__)
				__asm__ __volatile__("yield");
#endif
			}
		}
	} while (atomic_exchange_explicit(l, 1, memory_order_acquire));
}

void *ld_pages(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static atomic_uint_fast64_t untracked;

uint64_t ld_heap_untracked(void)
{
	return atomic_load_explicit(&untracked, memory_order_relaxed);
}

void ld_heap_count_untracked(void)
{
	atomic_fetch_add_explicit(&untracked, 1, memory_order_relaxed);
}

/* ------------------------------------------------------------ sites */

#define SITE_CHUNK_BITS 12
#define SITE_CHUNK (1u << SITE_CHUNK_BITS)
#define SITE_CHUNKS 4096 /* 16 M sites */
#define SITE_STRIPES 64

struct site {
	uint64_t hash;
	_Atomic(const uintptr_t *) stack; /* set last: a site is complete once it is */
	uint32_t depth;
	atomic_uint_fast64_t total_count, total_bytes;
};

struct stripe {
	atomic_int lock;
	uint32_t count;
	uint32_t mask; /* capacity - 1; 0 before the first site */
	uint32_t *ids; /* 0 marks an empty slot */
} __attribute__((aligned(64)));

static _Atomic(struct site *) site_chunks[SITE_CHUNKS];
static atomic_uint next_site = 1;
static struct stripe stripes[SITE_STRIPES];
static atomic_int chunk_lock;

/* Bump allocator for stacks. */
static struct {
	atomic_int lock;
	char *cur, *end;
} arena;

#define ARENA_CHUNK (1u << 20)

static void *arena_alloc(size_t n)
{
	n = (n + 15) & ~(size_t)15;
	ld_lock(&arena.lock);
	if (!arena.cur || (size_t)(arena.end - arena.cur) < n) {
		size_t len = n > ARENA_CHUNK ? n : ARENA_CHUNK;
		char *p = ld_pages(len);
		if (!p) {
			ld_unlock(&arena.lock);
			return NULL;
		}
		arena.cur = p;
		arena.end = p + len;
	}
	void *r = arena.cur;
	arena.cur += n;
	ld_unlock(&arena.lock);
	return r;
}

static struct site *site_get(uint32_t id)
{
	struct site *chunk = atomic_load_explicit(&site_chunks[id >> SITE_CHUNK_BITS], memory_order_acquire);
	return chunk ? &chunk[id & (SITE_CHUNK - 1)] : NULL;
}

uint64_t ld_heap_hash(const uintptr_t *stack, uint32_t depth)
{
	uint64_t h = UINT64_C(0x9e3779b97f4a7c15) ^ depth;
	for (uint32_t i = 0; i < depth; i++)
		h = ld_mix64(h ^ stack[i]) + i;
	return h ? h : 1;
}

/* Doubles a stripe's index; called with its lock held. */
static bool stripe_grow(struct stripe *st)
{
	uint32_t ncap = st->mask ? (st->mask + 1) * 2 : 1024;
	uint32_t *ids = ld_pages((size_t)ncap * sizeof(*ids));
	if (!ids)
		return false;
	for (uint32_t i = 0; st->mask && i <= st->mask; i++) {
		uint32_t id = st->ids[i];
		if (!id)
			continue;
		uint32_t j = (uint32_t)site_get(id)->hash & (ncap - 1);
		while (ids[j])
			j = (j + 1) & (ncap - 1);
		ids[j] = id;
	}
	if (st->ids)
		munmap(st->ids, ((size_t)st->mask + 1) * sizeof(*ids));
	st->ids = ids;
	st->mask = ncap - 1;
	return true;
}

/* A new record for stack; 0 when out of memory. */
static uint32_t site_create(const uintptr_t *stack, uint32_t depth, uint64_t hash)
{
	uintptr_t *copy = arena_alloc((size_t)depth * sizeof(*copy) + 1);
	if (!copy)
		return 0;
	uint32_t id = atomic_fetch_add_explicit(&next_site, 1, memory_order_relaxed);
	if ((id >> SITE_CHUNK_BITS) >= SITE_CHUNKS)
		return 0;
	struct site *s = site_get(id);
	if (!s) {
		ld_lock(&chunk_lock);
		s = site_get(id);
		if (!s) {
			struct site *chunk = ld_pages(SITE_CHUNK * sizeof(struct site));
			if (chunk)
				atomic_store_explicit(&site_chunks[id >> SITE_CHUNK_BITS], chunk, memory_order_release);
			s = site_get(id);
		}
		ld_unlock(&chunk_lock);
		if (!s)
			return 0; /* the id stays unused; the snapshot skips it */
	}
	if (depth)
		memcpy(copy, stack, (size_t)depth * sizeof(*copy));
	s->hash = hash;
	s->depth = depth;
	atomic_store_explicit(&s->stack, copy, memory_order_release);
	return id;
}

uint32_t ld_heap_site(const uintptr_t *stack, uint32_t depth, uint64_t hash)
{
	struct stripe *st = &stripes[hash >> 58];
	ld_lock(&st->lock);
	uint32_t id = 0;
	if (st->mask) {
		for (uint32_t i = (uint32_t)hash & st->mask;; i = (i + 1) & st->mask) {
			uint32_t cand = st->ids[i];
			if (!cand)
				break;
			struct site *s = site_get(cand);
			if (s->hash == hash && s->depth == depth &&
			    memcmp(atomic_load_explicit(&s->stack, memory_order_relaxed), stack,
				   (size_t)depth * sizeof(*stack)) == 0) {
				id = cand;
				break;
			}
		}
	}
	if (!id && ((st->count + 1) * 4 <= (st->mask + 1) * 3 || stripe_grow(st))) {
		id = site_create(stack, depth, hash);
		if (id) {
			uint32_t i = (uint32_t)hash & st->mask;
			while (st->ids[i])
				i = (i + 1) & st->mask;
			st->ids[i] = id;
			st->count++;
		}
	}
	ld_unlock(&st->lock);
	return id;
}

void ld_heap_add_total(uint32_t id, uint64_t count, uint64_t bytes)
{
	struct site *st = site_get(id);
	if (!st)
		return;
	atomic_fetch_add_explicit(&st->total_count, count, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->total_bytes, bytes, memory_order_relaxed);
}

uint32_t ld_heap_nsites(void)
{
	uint32_t n = atomic_load_explicit(&next_site, memory_order_relaxed);
	uint32_t max = SITE_CHUNKS * SITE_CHUNK - 1;
	return n - 1 > max ? max : n - 1;
}

bool ld_heap_site_info(uint32_t id, struct ld_site_info *out)
{
	struct site *s = site_get(id);
	if (!s)
		return false;
	const uintptr_t *stack = atomic_load_explicit(&s->stack, memory_order_acquire);
	if (!stack)
		return false;
	out->stack = stack;
	out->depth = s->depth;
	out->total_count = atomic_load_explicit(&s->total_count, memory_order_relaxed);
	out->total_bytes = atomic_load_explicit(&s->total_bytes, memory_order_relaxed);
	return true;
}

/* ------------------------------------------------------------ live blocks */

#define SHARD_BITS 10
#define SHARDS (1u << SHARD_BITS)
#define SHARD_MIN 256 /* slots: one page; every capacity is a multiple */
#define HUGE_SIZE UINT32_MAX /* slot size meaning "see the huge table" */

struct slot {
	uintptr_t ptr; /* 0: empty */
	uint32_t site;
	uint32_t size;
};

struct shard {
	atomic_int lock;
	uint32_t count;
	size_t cap; /* slots; 0 before the first block */
	struct slot *slots;
} __attribute__((aligned(64)));

static struct shard shards[SHARDS];

/* Blocks of 4 GiB and more: rare, so a plain array under one lock. */
static struct {
	atomic_int lock;
	size_t n, cap;
	struct {
		uintptr_t ptr;
		size_t size;
	} *v;
} huge;

static bool huge_add(uintptr_t ptr, size_t size)
{
	ld_lock(&huge.lock);
	if (huge.n == huge.cap) {
		size_t ncap = huge.cap ? huge.cap * 2 : 256;
		void *nv = ld_pages(ncap * sizeof(*huge.v));
		if (!nv) {
			ld_unlock(&huge.lock);
			return false;
		}
		if (huge.v) {
			memcpy(nv, huge.v, huge.n * sizeof(*huge.v));
			munmap(huge.v, huge.cap * sizeof(*huge.v));
		}
		huge.v = nv;
		huge.cap = ncap;
	}
	huge.v[huge.n].ptr = ptr;
	huge.v[huge.n].size = size;
	huge.n++;
	ld_unlock(&huge.lock);
	return true;
}

static size_t huge_take(uintptr_t ptr)
{
	size_t size = HUGE_SIZE;
	ld_lock(&huge.lock);
	for (size_t i = 0; i < huge.n; i++) {
		if (huge.v[i].ptr == ptr) {
			size = huge.v[i].size;
			huge.v[i] = huge.v[--huge.n];
			break;
		}
	}
	ld_unlock(&huge.lock);
	return size;
}

/*
 * Fibonacci hashing: one multiply, where a 64-bit mixer takes two and three
 * shifts, and a delete rehashes every entry it shifts back. Its high bits
 * are well mixed for addresses, and those are all the table uses: the top
 * 8 pick the shard within a group, the 32 below them the home slot.
 */
static inline uint64_t ptr_hash(uintptr_t ptr)
{
	return (uint64_t)ptr * UINT64_C(0x9e3779b97f4a7c15);
}

/*
 * A block's shard: its 64 MiB window of addresses picks one of 4 groups of
 * 256 shards (windows 4 apart share a group), and the hash one shard of
 * those. glibc gives each thread an arena of its own, carved from 64
 * MiB-aligned heaps, so threads that allocate and free their own blocks
 * (the common case) mostly lock shards no other thread touches. With the
 * shards picked by hash alone, two threads took every lock's cache line
 * from each other's core: bench/churn.c with two threads spent 22% of its
 * time in the lock, and this took its CPU time from 2.5 s to 1.7 s.
 * Smaller groups cost a single thread more (one thread of churn: 1.14 s
 * with groups of 16, 0.84 s with 256): its blocks then sit in fewer,
 * fuller tables.
 */
#define GROUP_BITS 2
static inline struct shard *shard_of(uintptr_t ptr, uint64_t h)
{
	unsigned g = (unsigned)(ptr >> 26) & ((1u << GROUP_BITS) - 1);
	return &shards[(g << (SHARD_BITS - GROUP_BITS)) | (unsigned)(h >> (64 - SHARD_BITS + GROUP_BITS))];
}

/*
 * With sampling, nearly every free is of a block that was never recorded,
 * and taking its shard's lock just to find nothing cost more than all the
 * rest of the sampled path. The filter counts, per bucket of addresses, the
 * blocks in the table: a free whose bucket reads 0 cannot be in it and
 * skips the lock (ld_heap_may_hold, in agent.h, on the caller's side). A
 * bucket is incremented before its block goes into the table and
 * decremented after it leaves, so a recorded block's bucket is never 0
 * while the block is in the table, and the thread freeing a block got it
 * from the one that allocated it through the program's own
 * synchronisation, which orders the increment before the load. Off (NULL)
 * in exact mode, where every free finds its block anyway. A megabyte of
 * counters made each free a cache miss; 64 KiB stay in cache.
 */
_Atomic uint16_t *ld_heap_filter;

bool ld_heap_use_filter(void)
{
	if (ld_heap_filter)
		return true; /* from an earlier attach; ld_heap_forget() cleared it */
	ld_heap_filter = ld_pages(sizeof(*ld_heap_filter) << LD_HEAP_FILTER_BITS);
	return ld_heap_filter != NULL;
}

/*
 * The home slot of hash h in a table of cap slots: the 32 bits below those
 * that picked the shard, scaled to [0, cap).
 */
static inline size_t home_of(uint64_t h, size_t cap)
{
	return (size_t)((((h >> (32 - SHARD_BITS + GROUP_BITS)) & UINT32_MAX) * (uint64_t)cap) >> 32);
}

static inline size_t next_slot(size_t i, size_t cap)
{
	return i + 1 == cap ? 0 : i + 1;
}

/* Rebuilds a shard's table with ncap slots; called with its lock held. */
static bool shard_resize(struct shard *sh, size_t ncap)
{
	struct slot *slots = ld_pages(ncap * sizeof(*slots));
	if (!slots)
		return false;
	for (size_t i = 0; i < sh->cap; i++) {
		if (!sh->slots[i].ptr)
			continue;
		size_t j = home_of(ptr_hash(sh->slots[i].ptr), ncap);
		while (slots[j].ptr)
			j = next_slot(j, ncap);
		slots[j] = sh->slots[i];
	}
	if (sh->slots)
		munmap(sh->slots, sh->cap * sizeof(*slots));
	sh->slots = slots;
	sh->cap = ncap;
	return true;
}

/*
 * Walks ptr's probe run (lock held): true with *at its slot, or false with
 * *at the empty slot that ends the run (left alone in a table not yet
 * allocated).
 */
static bool shard_probe(const struct shard *sh, uintptr_t ptr, uint64_t h, size_t *at)
{
	if (!sh->cap)
		return false;
	for (size_t i = home_of(h, sh->cap);; i = next_slot(i, sh->cap)) {
		if (sh->slots[i].ptr == ptr || !sh->slots[i].ptr) {
			*at = i;
			return sh->slots[i].ptr != 0;
		}
	}
}

/*
 * Capacities one step up and down, in whole pages of slots. Growing by at
 * most half keeps a table at least half full after it grew from 3/4.
 */
static size_t grown(size_t cap)
{
	size_t half_more = (cap + cap / 2) / SHARD_MIN * SHARD_MIN;
	return half_more > cap + SHARD_MIN ? half_more : cap + SHARD_MIN;
}

static size_t shrunk(size_t cap)
{
	size_t half = cap / 2 / SHARD_MIN * SHARD_MIN;
	return half < SHARD_MIN ? SHARD_MIN : half;
}

/* Empties slot i, shifting back later members of its probe run; lock held. */
static void shard_delete(struct shard *sh, size_t i)
{
	size_t cap = sh->cap;
	for (size_t j = next_slot(i, cap); sh->slots[j].ptr; j = next_slot(j, cap)) {
		size_t home = home_of(ptr_hash(sh->slots[j].ptr), cap);
		/* The entry at j may move to i unless its home lies cyclically in (i, j]. */
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!stays) {
			sh->slots[i] = sh->slots[j];
			i = j;
		}
	}
	sh->slots[i].ptr = 0;
	sh->count--;
	if (cap > SHARD_MIN && (size_t)sh->count * 16 < cap * 3)
		shard_resize(sh, shrunk(cap)); /* a failure just keeps the big table */
}

/*
 * Takes ptr out of its shard; returns whether it was there, with its site
 * and size. The huge table's lock nests inside a shard's, never the other
 * way round.
 */
static bool live_take(uintptr_t ptr, uint32_t *site, size_t *size)
{
	uint64_t h = ptr_hash(ptr);
	struct shard *sh = shard_of(ptr, h);
	size_t i;
	ld_lock(&sh->lock);
	if (!shard_probe(sh, ptr, h, &i)) {
		ld_unlock(&sh->lock);
		return false;
	}
	*site = sh->slots[i].site;
	uint32_t sz = sh->slots[i].size;
	shard_delete(sh, i);
	*size = sz == HUGE_SIZE ? huge_take(ptr) : sz;
	if (ld_heap_filter)
		atomic_fetch_sub_explicit(ld_heap_filter_bucket(ptr), 1, memory_order_relaxed);
	ld_unlock(&sh->lock);
	return true;
}

/*
 * Stores ptr. An entry already there for the address (a free that bypassed
 * the hooks) is overwritten. Returns false when out of memory (nothing
 * stored).
 */
bool ld_heap_add(uintptr_t ptr, size_t size, uint32_t site)
{
	uint32_t slot_size = size >= HUGE_SIZE ? HUGE_SIZE : (uint32_t)size;
	uint64_t h = ptr_hash(ptr);
	struct shard *sh = shard_of(ptr, h);
	ld_lock(&sh->lock);
	/* Room first, so that one walk along the probe run finds either the
	 * address or the free slot where it goes. */
	size_t cap = sh->cap;
	bool room = (sh->count + 1) * 4 <= cap * 3 || shard_resize(sh, grown(cap)) ||
		    (cap && (sh->count + 1) * 16 <= cap * 15);
	size_t i = 0;
	if (shard_probe(sh, ptr, h, &i)) {
		if (sh->slots[i].size == HUGE_SIZE)
			huge_take(ptr);
		if (slot_size == HUGE_SIZE && !huge_add(ptr, size)) {
			shard_delete(sh, i);
			ld_unlock(&sh->lock);
			return false;
		}
		sh->slots[i].site = site;
		sh->slots[i].size = slot_size;
		ld_unlock(&sh->lock);
		return true;
	}
	if (!room) {
		ld_unlock(&sh->lock);
		return false;
	}
	if (slot_size == HUGE_SIZE && !huge_add(ptr, size)) {
		ld_unlock(&sh->lock);
		return false;
	}
	/* Saturating would break the count; 65,535 blocks in one bucket means
	 * the filter is no use anyway: leave such a block out. */
	if (ld_heap_filter && atomic_fetch_add_explicit(ld_heap_filter_bucket(ptr), 1, memory_order_relaxed) == UINT16_MAX) {
		atomic_fetch_sub_explicit(ld_heap_filter_bucket(ptr), 1, memory_order_relaxed);
		if (slot_size == HUGE_SIZE)
			huge_take(ptr);
		ld_unlock(&sh->lock);
		return false;
	}
	sh->slots[i].ptr = ptr;
	sh->slots[i].site = site;
	sh->slots[i].size = slot_size;
	sh->count++;
	ld_unlock(&sh->lock);
	return true;
}

bool ld_heap_remove(uintptr_t ptr, uint32_t *site, size_t *size)
{
	uint32_t s;
	size_t z;
	if (!live_take(ptr, &s, &z))
		return false;
	if (site)
		*site = s;
	if (size)
		*size = z;
	return true;
}

void ld_heap_collect(struct ld_site_live *acc, uint32_t n, double sample_mean)
{
	memset(acc, 0, ((size_t)n + 1) * sizeof(*acc));
	for (unsigned k = 0; k < SHARDS; k++) {
		struct shard *sh = &shards[k];
		ld_lock(&sh->lock);
		for (size_t i = 0; i < sh->cap; i++) {
			const struct slot *sl = &sh->slots[i];
			if (!sl->ptr || sl->site > n)
				continue;
			size_t size = sl->size;
			if (size == HUGE_SIZE) {
				ld_lock(&huge.lock);
				for (size_t j = 0; j < huge.n; j++)
					if (huge.v[j].ptr == sl->ptr)
						size = huge.v[j].size;
				ld_unlock(&huge.lock);
			}
			acc[sl->site].count++;
			acc[sl->site].bytes += size;
			if (sample_mean > 0 && size > 0) {
				double w = -1.0 / expm1(-(double)size / sample_mean);
				acc[sl->site].est_count += w;
				acc[sl->site].est_bytes += w * (double)size;
			}
		}
		ld_unlock(&sh->lock);
	}
}

void ld_heap_forget(void)
{
	/* Each table is emptied under its lock, so a free() that read the
	 * agent's state just before it went off finds an empty table. */
	for (unsigned k = 0; k < SHARDS; k++) {
		struct shard *sh = &shards[k];
		ld_lock(&sh->lock);
		if (sh->slots)
			munmap(sh->slots, sh->cap * sizeof(*sh->slots));
		sh->slots = NULL;
		sh->cap = 0;
		sh->count = 0;
		ld_unlock(&sh->lock);
	}
	ld_lock(&huge.lock);
	huge.n = 0;
	ld_unlock(&huge.lock);
	if (ld_heap_filter)
		memset((void *)ld_heap_filter, 0, sizeof(*ld_heap_filter) << LD_HEAP_FILTER_BITS);
	/* Sites stay (threads still hold their ids), their totals start over. */
	uint32_t n = ld_heap_nsites();
	for (uint32_t id = 1; id <= n; id++) {
		struct site *s = site_get(id);
		if (!s)
			continue;
		atomic_store_explicit(&s->total_count, 0, memory_order_relaxed);
		atomic_store_explicit(&s->total_bytes, 0, memory_order_relaxed);
	}
	atomic_store_explicit(&untracked, 0, memory_order_relaxed);
}

int ld_heap_init(void)
{
	/* Everything is allocated on first use; nothing can fail yet. */
	return 0;
}

void ld_heap_lock_all(void)
{
	for (unsigned i = 0; i < SITE_STRIPES; i++)
		ld_lock(&stripes[i].lock);
	for (unsigned i = 0; i < SHARDS; i++)
		ld_lock(&shards[i].lock);
	ld_lock(&huge.lock);
	ld_lock(&chunk_lock);
	ld_lock(&arena.lock);
}

void ld_heap_unlock_all(void)
{
	ld_unlock(&arena.lock);
	ld_unlock(&chunk_lock);
	ld_unlock(&huge.lock);
	for (unsigned i = 0; i < SHARDS; i++)
		ld_unlock(&shards[i].lock);
	for (unsigned i = 0; i < SITE_STRIPES; i++)
		ld_unlock(&stripes[i].lock);
}
