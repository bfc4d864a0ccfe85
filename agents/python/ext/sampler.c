/*
 * _sampler: the allocation sites of a Python program, taken on the PEP 445
 * allocator hooks: every block (the agent's default exact mode) or a Poisson
 * sample of them (`leakdiff record --sample`); see _hooks.py.
 *
 * start() wraps the allocators of the MEM and OBJ domains. Both are only
 * called with the GIL held, so the GIL is the lock of everything here. RAW is
 * left alone: it runs without the GIL, and the interpreter keeps little of
 * the program's data there.
 *
 * Picking: the gaps between picked bytes are exponential with mean MEAN, so
 * a block of n bytes is picked with probability p = 1 - exp(-n / MEAN)
 * whatever came before it (the countdown to the next pick is memoryless).
 * A block that is not picked costs one compare and one subtraction. In
 * exact mode (a mean of 0) every block is picked, whatever its size, and
 * stands for itself. A picked one costs a walk of at most DEPTH Python
 * frames, done on the interpreter's own frame records so that nothing is
 * allocated (creating frame objects there could even start a collection
 * inside malloc), the interning of that stack, and an entry in the live
 * table, keyed by address, so that its free or realloc is seen. Stacks
 * keep (code object, instruction offset) pairs with a reference to each
 * code object; line numbers are worked out only when a snapshot asks for
 * them.
 *
 * sites() sums the live picked blocks by stack: each stands for 1/p blocks
 * and n/p bytes, so the sums are unbiased estimates of what is live. It
 * also forgets the stacks no live picked block uses, releasing their code
 * objects.
 *
 * The tables live in memory from the C library's malloc, which does not go
 * through the hooks. Frame walking needs the interpreter's internal frame
 * layout, known here for CPython 3.9 to 3.13 with the GIL; on anything else
 * the module refuses to load and the agent uses tracemalloc. Not covered:
 * the RAW domain, which runs without the GIL; subinterpreters with a GIL of
 * their own (3.12+), which leave the tables alone (see ours()); and memory
 * that extensions report to tracemalloc themselves (PyTraceMalloc_Track,
 * as NumPy does for array data).
 */
#include <patchlevel.h>
#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030E0000
#define Py_BUILD_CORE_MODULE 1
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mix64.h"
#include "mixed.h"

#if defined(Py_GIL_DISABLED) || PY_VERSION_HEX < 0x03090000 || PY_VERSION_HEX >= 0x030E0000
#define LD_SUPPORTED 0
#else
#define LD_SUPPORTED 1
#endif

#if LD_SUPPORTED && PY_VERSION_HEX >= 0x030B0000
#include <internal/pycore_frame.h>
#elif LD_SUPPORTED
#include <frameobject.h>
#endif
#if LD_SUPPORTED && PY_VERSION_HEX >= 0x030C0000
#include <internal/pycore_interp.h> /* the interpreter's own_gil; see ours() */
#endif

#if LD_SUPPORTED
#define MAX_DEPTH 1024

struct frame_ref {
	PyCodeObject *code; /* one reference held per stack */
	int offset;         /* in bytes, as PyCode_Addr2Line wants it */
};

struct stack {
	uint64_t hash;
	uint64_t live; /* slots of the live table that name this stack */
	uint64_t bytes; /* their sizes (exact mode's live bytes at this stack) */
	/* live and bytes when mark() was last called; see sampler_changes() */
	uint64_t mark_live, mark_bytes;
	uint32_t depth;
	uint32_t pinned; /* a native block names it (mixed mode): kept for good */
	struct frame_ref frames[];
};

/*
 * A stack no live block uses still holds its code objects. Code compiled
 * at run time (eval, exec, a class made per call) would pile up, so once
 * more than DEAD_MAX stacks, and more than half of all, are unused, they
 * are forgotten at the interpreter's next pending-call check: not in the
 * hook, where releasing a code object could run Python code.
 */
#define DEAD_MAX 4096

/*
 * 16 bytes: in exact mode there is one per live block of the program. A
 * size of HUGE or more is kept in S.huge instead, as in the native agent.
 */
#define HUGE UINT32_MAX

struct slot {
	uintptr_t ptr; /* 0: empty */
	uint32_t size; /* HUGE: see S.huge */
	uint32_t stack;
};

struct huge_block {
	uintptr_t ptr;
	size_t size;
};

struct domain {
	PyMemAllocatorEx orig;
};

static struct {
	int installed;
	int on;           /* 0 after stop(): the hooks only pass calls on */
	int exact;        /* every block is picked, with a weight of 1 */
	int depth;
	double mean;
	PyThreadState *quiet; /* this thread's blocks are not recorded; see quiet() */
	PyInterpreterState *interp; /* the one that started us; see ours() */
	int64_t left;     /* bytes to go before the next pick */
	uint64_t rng;
	/* live picked blocks: open addressing, linear probing, backward-shift deletion */
	struct slot *slots;
	size_t mask, live;
	uint64_t bytes;   /* sizes of the live picked blocks: the live heap in exact mode */
	/* picked blocks of 4 GiB and more: rare, so a plain array */
	struct huge_block *huge;
	size_t nhuge, cap_huge;
	/* interned stacks: ids index `stacks` (NULL once forgotten); `index` maps hashes to ids (0 empty) */
	struct stack **stacks;
	uint32_t nstacks, cap_stacks, kept;
	uint32_t used;          /* kept stacks with live blocks */
	int cleanup_pending;    /* forget_dead() is queued with Py_AddPendingCall */
	uint32_t *index;
	size_t index_mask;
	uint64_t picked;  /* blocks ever picked */
	uint64_t dropped; /* picks not recorded for want of memory */
	struct domain mem, obj;
} S;

static struct frame_ref scratch[MAX_DEPTH];

/*
 * Mixed mode only (hybrid_on, see the end of this file): the stack table
 * is also read by threads that released the GIL, under this spin lock,
 * which the GIL's holder takes whenever it changes the table.
 */
static atomic_flag table_lock = ATOMIC_FLAG_INIT;
static int hybrid_on;

static inline void table_enter(void)
{
	if (!hybrid_on)
		return;
	while (atomic_flag_test_and_set_explicit(&table_lock, memory_order_acquire))
		sched_yield();
}

static inline void table_leave(void)
{
	if (hybrid_on)
		atomic_flag_clear_explicit(&table_lock, memory_order_release);
}

/*
 * Stacks interned by threads without the GIL (see unlocked_site()): they
 * hold no references to their code objects yet, which only the GIL's
 * holder may take. Settled by settle_pending() at the next hook call.
 */
#define PENDING_MAX 64
static uint32_t pending[PENDING_MAX];
static atomic_uint npending;
static void settle_pending(void);

static inline void settle_if_pending(void)
{
	if (hybrid_on && atomic_load_explicit(&npending, memory_order_relaxed))
		settle_pending();
}

/* ------------------------------------------------------------ picking */

/*
 * The next gap, rounded up: a block of n bytes is then picked exactly when
 * the exponential gap is at most n, so p is 1 - exp(-n / mean) on the dot.
 */
static int64_t next_gap(void)
{
	uint64_t x = S.rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	S.rng = x;
	double u = ((double)(x >> 11) + 0.5) * 0x1.0p-53; /* (0, 1) */
	double gap = ceil(-log(u) * S.mean);
	return gap < 1 ? 1 : gap > 0x1.0p62 ? INT64_C(1) << 62 : (int64_t)gap;
}

static inline int pick(size_t size)
{
	if (S.exact)
		return 1;
	if ((uint64_t)size < (uint64_t)S.left) {
		S.left -= (int64_t)size;
		return 0;
	}
	S.left = next_gap();
	return 1;
}

/* ------------------------------------------------------------ stacks */

/* Fills buf with the innermost frames of thread ts, at most depth; allocates nothing. */
static uint32_t walk_into(PyThreadState *ts, struct frame_ref *buf, uint32_t depth)
{
	uint32_t n = 0;
	if (!ts)
		return 0;
#if PY_VERSION_HEX >= 0x030D0000
	for (_PyInterpreterFrame *f = ts->current_frame; f && n < depth; f = f->previous) {
		if (_PyFrame_IsIncomplete(f) || !PyCode_Check(f->f_executable))
			continue;
		buf[n].code = _PyFrame_GetCode(f);
		buf[n].offset = _PyInterpreterFrame_LASTI(f) * (int)sizeof(_Py_CODEUNIT);
		n++;
	}
#elif PY_VERSION_HEX >= 0x030B0000
	for (_PyInterpreterFrame *f = ts->cframe ? ts->cframe->current_frame : NULL; f && n < depth;
	     f = f->previous) {
#if PY_VERSION_HEX >= 0x030C0000
		if (f->owner == FRAME_OWNED_BY_CSTACK)
			continue;
#endif
		if (_PyFrame_IsIncomplete(f))
			continue;
		buf[n].code = f->f_code;
		buf[n].offset = _PyInterpreterFrame_LASTI(f) * (int)sizeof(_Py_CODEUNIT);
		n++;
	}
#else
	for (PyFrameObject *f = ts->frame; f && n < depth; f = f->f_back) {
		buf[n].code = f->f_code;
#if PY_VERSION_HEX >= 0x030A0000
		buf[n].offset = f->f_lasti * (int)sizeof(_Py_CODEUNIT);
#else
		buf[n].offset = f->f_lasti;
#endif
		n++;
	}
#endif
	return n;
}

static uint64_t hash_of(const struct frame_ref *buf, uint32_t n)
{
	uint64_t h = UINT64_C(0x9e3779b97f4a7c15) ^ n;
	for (uint32_t i = 0; i < n; i++)
		h = ld_mix64(h ^ (uint64_t)(uintptr_t)buf[i].code ^ ((uint64_t)(uint32_t)buf[i].offset << 48)) + i;
	return h ? h : 1;
}

static uint32_t walk(PyThreadState *ts)
{
	return walk_into(ts, scratch, (uint32_t)S.depth);
}

static uint64_t stack_hash(uint32_t n)
{
	return hash_of(scratch, n);
}

static int index_grow(void)
{
	size_t ncap = S.index ? (S.index_mask + 1) * 2 : 1024;
	uint32_t *ix = calloc(ncap, sizeof(*ix));
	if (!ix)
		return -1;
	for (size_t i = 0; S.index && i <= S.index_mask; i++) {
		uint32_t id = S.index[i];
		if (!id)
			continue;
		size_t j = (size_t)S.stacks[id]->hash & (ncap - 1);
		while (ix[j])
			j = (j + 1) & (ncap - 1);
		ix[j] = id;
	}
	free(S.index);
	S.index = ix;
	S.index_mask = ncap - 1;
	return 0;
}

/* The id of the stack in buf[0..n) with hash h, or 0; call under table_enter(). */
static uint32_t lookup(const struct frame_ref *buf, uint32_t n, uint64_t h)
{
	if (!S.index)
		return 0;
	for (size_t j = (size_t)h & S.index_mask; S.index[j]; j = (j + 1) & S.index_mask) {
		struct stack *s = S.stacks[S.index[j]];
		if (s->hash == h && s->depth == n && !memcmp(s->frames, buf, n * sizeof(*buf)))
			return S.index[j];
	}
	return 0;
}

static uint32_t intern_locked(uint32_t n);

/* The id of the stack in scratch[0..n), interned on first sight; 0 on failure. */
static uint32_t intern(uint32_t n)
{
	table_enter();
	uint32_t id = intern_locked(n);
	table_leave();
	return id;
}

static uint32_t intern_with(const struct frame_ref *buf, uint32_t n, uint64_t h, int refs);

static uint32_t intern_locked(uint32_t n)
{
	return intern_with(scratch, n, stack_hash(n), 1);
}

/*
 * Interns buf[0..n), taking references to its code objects when refs
 * (with the GIL); without, only while the tables have room.
 */
static uint32_t intern_with(const struct frame_ref *buf, uint32_t n, uint64_t h, int refs)
{
	uint32_t found = lookup(buf, n, h);
	if (found)
		return found;
	if (!S.index || (size_t)(S.kept + 1) * 2 > S.index_mask + 1) {
		/* Without the GIL the arrays must stay where they are: the GIL's
		 * holder reads them without the table's lock (stack_ref()). */
		if (!refs || index_grow() < 0)
			return 0;
	}
	if (S.nstacks + 1 >= S.cap_stacks) {
		if (!refs)
			return 0;
		uint32_t ncap = S.cap_stacks ? S.cap_stacks * 2 : 256;
		struct stack **v = realloc(S.stacks, ncap * sizeof(*v));
		if (!v)
			return 0;
		S.stacks = v;
		S.cap_stacks = ncap;
	}
	struct stack *s = malloc(sizeof(*s) + n * sizeof(*buf));
	if (!s)
		return 0;
	s->hash = h;
	s->live = 0;
	s->bytes = 0;
	s->mark_live = 0;
	s->mark_bytes = 0;
	s->pinned = 0;
	s->depth = n;
	memcpy(s->frames, buf, n * sizeof(*buf));
	for (uint32_t i = 0; refs && i < n; i++)
		Py_INCREF((PyObject *)s->frames[i].code);
	/* The slot before the count: readers without the lock go up to the count. */
	uint32_t id = S.nstacks + 1;
	S.stacks[id] = s;
	atomic_thread_fence(memory_order_release);
	S.nstacks = id;
	S.kept++;
	size_t j = (size_t)h & S.index_mask;
	while (S.index[j])
		j = (j + 1) & S.index_mask;
	S.index[j] = id;
	return id;
}

/* ------------------------------------------------------------ live table */

static inline size_t slot_of(uintptr_t p, size_t mask)
{
	return (size_t)(((uint64_t)p >> 4) * UINT64_C(0x9e3779b97f4a7c15) >> 20) & mask;
}

static int live_resize(size_t ncap)
{
	struct slot *v = calloc(ncap, sizeof(*v));
	if (!v)
		return -1;
	for (size_t i = 0; S.slots && i <= S.mask; i++) {
		if (!S.slots[i].ptr)
			continue;
		size_t j = slot_of(S.slots[i].ptr, ncap - 1);
		while (v[j].ptr)
			j = (j + 1) & (ncap - 1);
		v[j] = S.slots[i];
	}
	free(S.slots);
	S.slots = v;
	S.mask = ncap - 1;
	return 0;
}

static int forget_later(void *unused);

static inline void stack_ref(uint32_t id, size_t size)
{
	S.stacks[id]->bytes += size;
	if (S.stacks[id]->live++ == 0)
		S.used++;
}

static inline void stack_unref(uint32_t id, size_t size)
{
	S.stacks[id]->bytes -= size;
	if (--S.stacks[id]->live != 0)
		return;
	S.used--;
	uint32_t dead = S.kept - S.used;
	if (dead > DEAD_MAX && dead * 2 > S.kept && !S.cleanup_pending &&
	    Py_AddPendingCall(forget_later, NULL) == 0)
		S.cleanup_pending = 1;
}

/* Takes ptr out of the huge blocks; its size, or 0 when it is not there. */
static size_t huge_take(uintptr_t ptr)
{
	for (size_t i = 0; i < S.nhuge; i++) {
		if (S.huge[i].ptr == ptr) {
			size_t size = S.huge[i].size;
			S.huge[i] = S.huge[--S.nhuge];
			return size;
		}
	}
	return 0;
}

static int huge_put(uintptr_t ptr, size_t size)
{
	if (S.nhuge == S.cap_huge) {
		size_t ncap = S.cap_huge ? S.cap_huge * 2 : 16;
		struct huge_block *v = realloc(S.huge, ncap * sizeof(*v));
		if (!v)
			return -1;
		S.huge = v;
		S.cap_huge = ncap;
	}
	S.huge[S.nhuge].ptr = ptr;
	S.huge[S.nhuge].size = size;
	S.nhuge++;
	return 0;
}

/* The size of the block in a slot. */
static size_t size_of(const struct slot *sl)
{
	if (sl->size != HUGE)
		return sl->size;
	for (size_t i = 0; i < S.nhuge; i++)
		if (S.huge[i].ptr == sl->ptr)
			return S.huge[i].size;
	return HUGE;
}

/*
 * Tables double at 3/4 full and halve below 1/8, so a picked block costs
 * 21 to 43 bytes of table while the heap grows.
 */
static void live_put(void *ptr, size_t size, uint32_t stack)
{
	if (!S.slots || (S.live + 1) * 4 > (S.mask + 1) * 3) {
		if (live_resize(S.slots ? (S.mask + 1) * 2 : 256) < 0) {
			S.dropped++;
			return;
		}
	}
	size_t j = slot_of((uintptr_t)ptr, S.mask);
	while (S.slots[j].ptr && S.slots[j].ptr != (uintptr_t)ptr)
		j = (j + 1) & S.mask;
	if (!S.slots[j].ptr) {
		S.live++;
	} else { /* a free the hooks did not see */
		size_t old = S.slots[j].size == HUGE ? huge_take((uintptr_t)ptr) : S.slots[j].size;
		S.bytes -= old;
		stack_unref(S.slots[j].stack, old);
	}
	if (size >= HUGE && huge_put((uintptr_t)ptr, size) < 0) {
		S.dropped++;
		size = 0; /* still a block; its size is lost */
	}
	stack_ref(stack, size);
	S.bytes += size;
	S.slots[j].ptr = (uintptr_t)ptr;
	S.slots[j].size = size >= HUGE ? HUGE : (uint32_t)size;
	S.slots[j].stack = stack;
}

static const struct slot *live_find(uintptr_t ptr)
{
	if (!S.live || !ptr)
		return NULL;
	for (size_t i = slot_of(ptr, S.mask); S.slots[i].ptr; i = (i + 1) & S.mask)
		if (S.slots[i].ptr == ptr)
			return &S.slots[i];
	return NULL;
}

/* Forgets ptr if it was picked: the check every free pays while blocks are live. */
static inline void live_drop(void *ptr)
{
	if (!S.live || !ptr)
		return;
	size_t mask = S.mask, i = slot_of((uintptr_t)ptr, mask);
	while (S.slots[i].ptr != (uintptr_t)ptr) {
		if (!S.slots[i].ptr)
			return;
		i = (i + 1) & mask;
	}
	size_t size = S.slots[i].size == HUGE ? huge_take((uintptr_t)ptr) : S.slots[i].size;
	S.bytes -= size;
	stack_unref(S.slots[i].stack, size);
	/* Backward-shift deletion: pull later entries of the run into the hole. */
	size_t hole = i;
	for (size_t j = (i + 1) & mask; S.slots[j].ptr; j = (j + 1) & mask) {
		size_t home = slot_of(S.slots[j].ptr, mask);
		if (((j - home) & mask) >= ((j - hole) & mask)) {
			S.slots[hole] = S.slots[j];
			hole = j;
		}
	}
	S.slots[hole].ptr = 0;
	S.live--;
	/* A table left sparse by a burst of picks would make every free miss the cache. */
	if (S.mask >= 1023 && S.live * 8 < S.mask + 1)
		(void)live_resize((S.mask + 1) / 2);
}

/* ------------------------------------------------------------ hooks */

/*
 * From 3.12 a subinterpreter may have a GIL of its own and call the hooks
 * while the main interpreter does. The tables are guarded by the GIL of
 * the interpreter that started the hooks, so threads running under
 * another GIL leave them alone, and their blocks are not recorded.
 * Subinterpreters that share the main GIL are recorded as before.
 */
static inline int ours(PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030C0000
	return !ts || ts->interp == S.interp || !ts->interp->ceval.own_gil;
#else
	(void)ts;
	return 1;
#endif
}

/* ours() for the calling thread; no lookup where there is nothing to tell. */
static inline int ours_here(void)
{
#if PY_VERSION_HEX >= 0x030C0000
	return ours(_PyThreadState_UncheckedGet());
#else
	return 1;
#endif
}

static void record(void *ptr, size_t size)
{
	PyThreadState *ts = _PyThreadState_UncheckedGet();
	if ((S.quiet && ts == S.quiet) || !ours(ts))
		return;
	S.picked++;
	uint32_t id = intern(walk(ts));
	if (!id) {
		S.dropped++;
		return;
	}
	live_put(ptr, size, id);
}

/*
 * Mixed mode (see the end of this file): non-zero while the thread holding
 * the GIL is inside Python's allocators, so that the malloc calls they
 * make underneath (blocks above 512 bytes, the hooks' own tables) are left
 * to the hooks instead of being counted a second time as native blocks.
 * The MEM and OBJ allocators run with the GIL held, so the GIL guards it
 * and no thread-local is needed (the first use of one in a loaded module
 * would itself call malloc). Touched only once the native agent is
 * attached, and only by threads of our GIL (see ours()).
 */
static int in_python_alloc;

static inline int enter_alloc(void)
{
	if (!hybrid_on || !ours_here())
		return 0;
	in_python_alloc++;
	return 1;
}

static inline void leave_alloc(int entered)
{
	if (entered)
		in_python_alloc--;
}

static void *hook_malloc(void *ctx, size_t size)
{
	struct domain *d = ctx;
	int entered = enter_alloc();
	if (entered)
		settle_if_pending();
	void *p = d->orig.malloc(d->orig.ctx, size);
	if (S.on && p && pick(size))
		record(p, size);
	leave_alloc(entered);
	return p;
}

static void *hook_calloc(void *ctx, size_t nelem, size_t elsize)
{
	struct domain *d = ctx;
	int entered = enter_alloc();
	if (entered)
		settle_if_pending();
	void *p = d->orig.calloc(d->orig.ctx, nelem, elsize);
	size_t size;
	if (S.on && p && !__builtin_mul_overflow(nelem, elsize, &size) && pick(size))
		record(p, size);
	leave_alloc(entered);
	return p;
}

/*
 * The resized block is a new block of its new size: picked afresh, so a
 * live block of n bytes was always picked with probability p(n).
 */
static void *hook_realloc(void *ctx, void *ptr, size_t size)
{
	struct domain *d = ctx;
	int entered = enter_alloc();
	if (entered)
		settle_if_pending();
	void *p = d->orig.realloc(d->orig.ctx, ptr, size);
	if (S.on && p && ours_here()) {
		live_drop(ptr);
		if (pick(size))
			record(p, size);
	}
	leave_alloc(entered);
	return p;
}

static void hook_free(void *ctx, void *ptr)
{
	struct domain *d = ctx;
	if (S.on && ours_here()) {
		settle_if_pending(); /* before a dying code object's memory goes */
		live_drop(ptr);
	}
	d->orig.free(d->orig.ctx, ptr);
}

static void install(PyMemAllocatorDomain which, struct domain *d)
{
	PyMemAllocatorEx hook = { d, hook_malloc, hook_calloc, hook_realloc, hook_free };
	PyMem_GetAllocator(which, &d->orig);
	PyMem_SetAllocator(which, &hook);
}

/* ------------------------------------------------------------ module */

static PyObject *sampler_start(PyObject *self, PyObject *args)
{
	(void)self;
	double mean;
	int depth;
	if (!PyArg_ParseTuple(args, "di:start", &mean, &depth))
		return NULL;
	if (!(mean >= 1 || mean == 0) || depth < 1 || depth > MAX_DEPTH) {
		PyErr_SetString(PyExc_ValueError,
				"start() wants a mean of 0 (exact) or at least 1 byte and a depth from 1 to 1024");
		return NULL;
	}
	if (S.installed) {
		PyErr_SetString(PyExc_RuntimeError, "the sampler is already installed");
		return NULL;
	}
	S.mean = mean;
	S.exact = mean == 0;
	S.interp = PyInterpreterState_Get();
	S.depth = depth;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	S.rng = ld_mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)&ts) | 1;
	S.left = S.exact ? 0 : next_gap();
	S.installed = 1;
	S.on = 1;
	install(PYMEM_DOMAIN_MEM, &S.mem);
	install(PYMEM_DOMAIN_OBJ, &S.obj);
	Py_RETURN_NONE;
}

/*
 * The hooks stay in place (another hook may have wrapped them since) but
 * only pass calls on from now.
 */
static PyObject *sampler_stop(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	S.on = 0;
	Py_RETURN_NONE;
}

/*
 * For an agent leaving a process it was attached to: the hooks come out
 * when they are still the outermost allocators (with the GIL held no
 * thread is inside them, and every block they saw was made by the
 * allocator they wrap, which frees it as well); otherwise they stay and
 * only pass calls on. Either way the tables and the code objects the
 * stacks hold are released. True when the hooks came out, and start()
 * may then be called again.
 */
static PyObject *sampler_detach(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	S.on = 0;
	int out = S.installed;
	PyMemAllocatorDomain which[2] = { PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ };
	struct domain *doms[2] = { &S.mem, &S.obj };
	for (int i = 0; i < 2 && S.installed; i++) {
		PyMemAllocatorEx cur;
		PyMem_GetAllocator(which[i], &cur);
		if (cur.ctx != doms[i] || cur.malloc != hook_malloc)
			out = 0;
	}
	if (out)
		for (int i = 0; i < 2; i++)
			PyMem_SetAllocator(which[i], &doms[i]->orig);
	size_t ncodes = 0, k = 0;
	for (uint32_t id = 1; id <= S.nstacks; id++)
		if (S.stacks && S.stacks[id])
			ncodes += S.stacks[id]->depth;
	PyCodeObject **codes = malloc((ncodes ? ncodes : 1) * sizeof(*codes));
	for (uint32_t id = 1; id <= S.nstacks; id++) {
		struct stack *st = S.stacks ? S.stacks[id] : NULL;
		if (!st)
			continue;
		for (uint32_t i = 0; i < st->depth; i++) {
			if (codes)
				codes[k++] = st->frames[i].code;
		}
		free(st);
	}
	free(S.stacks);
	free(S.index);
	free(S.slots);
	free(S.huge);
	struct domain mem = S.mem, obj = S.obj;
	int installed = S.installed && !out;
	memset(&S, 0, sizeof(S));
	/* Hooks left in place still need what they wrap. */
	S.mem = mem;
	S.obj = obj;
	S.installed = installed;
	/* Last: freeing a code object may run code that allocates. Without
	 * memory for the list they are leaked rather than freed blind. */
	for (size_t i = 0; i < k; i++)
		Py_DECREF((PyObject *)codes[i]);
	free(codes);
	return PyBool_FromLong(out);
}

static PyObject *sampler_is_on(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	return PyBool_FromLong(S.on);
}

/* What a picked block of size bytes stands for: 1/p blocks. */
static double weight(size_t size)
{
	if (S.exact)
		return 1.0;
	return -1.0 / expm1(-(double)size / S.mean);
}

struct acc {
	double count, bytes;
	uint64_t seen;
};

/* A tuple ((filename, line), ...) for stack id, innermost frame first. */
static PyObject *frames_of(uint32_t id)
{
	struct stack *s = S.stacks[id];
	PyObject *t = PyTuple_New(s->depth);
	if (!t)
		return NULL;
	for (uint32_t i = 0; i < s->depth; i++) {
		PyCodeObject *code = s->frames[i].code;
		int line = PyCode_Addr2Line(code, s->frames[i].offset);
		PyObject *f = Py_BuildValue("(Oi)", code->co_filename, line < 0 ? 0 : line);
		if (!f) {
			Py_DECREF(t);
			return NULL;
		}
		PyTuple_SET_ITEM(t, i, f);
	}
	return t;
}

/*
 * A stack no live block uses can be forgotten, unless it had live blocks
 * at the last mark(): changes() owes the caller their departure.
 */
static inline int forgettable(const struct stack *st)
{
	return st && !st->live && !st->pinned && !st->mark_live && !st->mark_bytes;
}

/*
 * Forgets the stacks that no live block uses any more, and drops their
 * references to code objects, so that code compiled on the fly is not kept
 * alive beyond the next snapshot (or the next cleanup, see DEAD_MAX). On
 * failure everything is kept.
 */
static void forget_dead(void)
{
	if (S.used == S.kept)
		return; /* every stack has live blocks: nothing to rebuild */
	size_t ncodes = 0, k = 0;
	uint32_t n = S.nstacks;
	for (uint32_t id = 1; id <= n; id++)
		if (forgettable(S.stacks[id]))
			ncodes += S.stacks[id]->depth;
	PyCodeObject **codes = malloc((ncodes ? ncodes : 1) * sizeof(*codes));
	uint32_t *ix = S.index ? calloc(S.index_mask + 1, sizeof(*ix)) : NULL;
	if (!codes || !ix) {
		free(codes);
		free(ix);
		return;
	}
	table_enter(); /* threads without the GIL may be reading the table */
	for (uint32_t id = 1; id <= n; id++) {
		struct stack *st = S.stacks[id];
		if (!forgettable(st) || k + st->depth > ncodes)
			continue;
		for (uint32_t i = 0; i < st->depth; i++)
			codes[k++] = st->frames[i].code;
		free(st);
		S.stacks[id] = NULL;
		S.kept--;
	}
	for (uint32_t id = 1; id <= n; id++) {
		if (!S.stacks[id])
			continue;
		size_t j = (size_t)S.stacks[id]->hash & S.index_mask;
		while (ix[j])
			j = (j + 1) & S.index_mask;
		ix[j] = id;
	}
	free(S.index);
	S.index = ix;
	table_leave();
	/* Last: freeing a code object may run code that allocates. */
	for (size_t i = 0; i < k; i++)
		Py_DECREF((PyObject *)codes[i]);
	free(codes);
}

/* The pending call queued by stack_unref(); runs with the GIL, outside any hook. */
static int forget_later(void *unused)
{
	(void)unused;
	S.cleanup_pending = 0;
	forget_dead();
	return 0;
}

/*
 * [(frames, est_count, est_bytes, picked)] for every stack with live picked
 * blocks. The live table is summed into memory of our own first, so that
 * the Python objects built afterwards (which go through the hooks) cannot
 * change it under the walk.
 */
static PyObject *sampler_sites(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	settle_if_pending();
	uint32_t n = S.nstacks;
	struct acc *acc = calloc((size_t)n + 1, sizeof(*acc));
	if (!acc)
		return PyErr_NoMemory();
	for (size_t i = 0; S.slots && i <= S.mask; i++) {
		const struct slot *sl = &S.slots[i];
		if (!sl->ptr || sl->stack > n)
			continue;
		acc[sl->stack].seen++;
		size_t size = size_of(sl);
		if (!size && !S.exact) /* never picked by chance; see pick() */
			continue;
		double w = weight(size);
		acc[sl->stack].count += w;
		acc[sl->stack].bytes += w * (double)size;
	}
	forget_dead();
	PyObject *out = PyList_New(0);
	for (uint32_t id = 1; out && id <= n; id++) {
		/* A stack can only be gone if code run by a release freed its last block. */
		if (!acc[id].seen || !S.stacks[id])
			continue;
		PyObject *frames = frames_of(id);
		PyObject *row = frames ? Py_BuildValue("(NddK)", frames, acc[id].count, acc[id].bytes,
						       (unsigned long long)acc[id].seen)
				       : NULL;
		if (!row || PyList_Append(out, row) < 0)
			Py_CLEAR(out);
		Py_XDECREF(row);
	}
	free(acc);
	return out;
}

/*
 * Where an object's memory block starts: the collector's header and, from
 * 3.11, the managed dict (and weak reference) pointers come before it.
 */
static uintptr_t block_of(PyObject *o)
{
	uintptr_t pre = PyObject_IS_GC(o) ? 2 * sizeof(void *) : 0;
#if PY_VERSION_HEX >= 0x030C0000
	if (PyType_HasFeature(Py_TYPE(o), Py_TPFLAGS_MANAGED_DICT | Py_TPFLAGS_MANAGED_WEAKREF))
		pre += 2 * sizeof(PyObject *);
#elif PY_VERSION_HEX >= 0x030B0000
	if (PyType_HasFeature(Py_TYPE(o), Py_TPFLAGS_MANAGED_DICT))
		pre += 2 * sizeof(PyObject *);
#endif
	return (uintptr_t)o - pre;
}

/*
 * [(index, stack, weight)] for the objects of the list whose memory block
 * was picked; weight is the number of blocks it stands for.
 */
static PyObject *sampler_picked(PyObject *self, PyObject *objs)
{
	(void)self;
	if (!PyList_Check(objs)) {
		PyErr_SetString(PyExc_TypeError, "picked() wants a list");
		return NULL;
	}
	PyObject *out = PyList_New(0);
	for (Py_ssize_t i = 0; out && i < PyList_GET_SIZE(objs); i++) {
		const struct slot *sl = live_find(block_of(PyList_GET_ITEM(objs, i)));
		if (!sl)
			continue;
		/* Read the slot before building objects: that may move the table. */
		unsigned int stack = sl->stack;
		double w = weight(size_of(sl));
		PyObject *row = Py_BuildValue("(nId)", i, stack, w);
		if (!row || PyList_Append(out, row) < 0)
			Py_CLEAR(out);
		Py_XDECREF(row);
	}
	return out;
}

/*
 * tally(objects, sizes): [(stack, count, bytes, picked)] for the objects of
 * the list whose memory block was picked, summed by stack. sizes is the one
 * size of all the objects or a list of their sizes in the same order. Each
 * picked object stands for 1/p objects of its size (itself in exact mode).
 * Nothing is allocated through the hooks until the sums are done, so the
 * table cannot move under the lookups.
 */
static PyObject *sampler_tally(PyObject *self, PyObject *args)
{
	(void)self;
	PyObject *objs, *sizes;
	if (!PyArg_ParseTuple(args, "O!O:tally", &PyList_Type, &objs, &sizes))
		return NULL;
	Py_ssize_t n = PyList_GET_SIZE(objs);
	Py_ssize_t one = -1;
	if (PyLong_Check(sizes)) {
		one = PyLong_AsSsize_t(sizes);
		if (one < 0) {
			if (!PyErr_Occurred())
				PyErr_SetString(PyExc_ValueError, "tally() wants sizes of at least 0");
			return NULL;
		}
	} else if (!PyList_Check(sizes) || PyList_GET_SIZE(sizes) != n) {
		PyErr_SetString(PyExc_TypeError, "tally() wants one size or a list of as many sizes as objects");
		return NULL;
	}
	uint32_t nst = S.nstacks;
	struct acc *acc = calloc((size_t)nst + 1, sizeof(*acc));
	uint32_t *touched = malloc(((size_t)(n < (Py_ssize_t)nst ? n : (Py_ssize_t)nst) + 1) * sizeof(*touched));
	uint32_t ntouched = 0;
	if (!acc || !touched) {
		free(acc);
		free(touched);
		return PyErr_NoMemory();
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		const struct slot *sl = live_find(block_of(PyList_GET_ITEM(objs, i)));
		if (!sl || !sl->stack || sl->stack > nst)
			continue;
		Py_ssize_t size = one;
		if (size < 0) {
			size = PyLong_AsSsize_t(PyList_GET_ITEM(sizes, i));
			if (size < 0) {
				if (!PyErr_Occurred())
					PyErr_SetString(PyExc_ValueError, "tally() wants sizes of at least 0");
				free(acc);
				free(touched);
				return NULL;
			}
		}
		struct acc *a = &acc[sl->stack];
		if (!a->seen++)
			touched[ntouched++] = sl->stack;
		double w = weight(size_of(sl));
		a->count += w;
		a->bytes += w * (double)size;
	}
	PyObject *out = PyList_New(ntouched);
	for (uint32_t k = 0; out && k < ntouched; k++) {
		const struct acc *a = &acc[touched[k]];
		PyObject *row = Py_BuildValue("(IddK)", (unsigned int)touched[k], a->count, a->bytes,
					      (unsigned long long)a->seen);
		if (!row)
			Py_CLEAR(out);
		else
			PyList_SET_ITEM(out, k, row);
	}
	free(acc);
	free(touched);
	return out;
}

/*
 * mark() and changes(): what the live blocks did between two points of the
 * program, at a cost in proportion to the stacks, not to the blocks. The
 * pytest plugin uses them between the runs of a test to tell, without a
 * census, that no allocation site can have grown (see its _Screen). A stack's
 * count and bytes only change when a block recorded there is allocated or
 * freed, so a stack whose numbers are what they were at the mark had, in
 * sum, nothing added; a site (the stacks of one line sequence) can only
 * have grown if one of its stacks did. Exact mode only: under sampling the
 * numbers are a sample and changes() refuses.
 */
static PyObject *sampler_mark(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	for (uint32_t id = 1; id <= S.nstacks; id++) {
		struct stack *st = S.stacks[id];
		if (st) {
			st->mark_live = st->live;
			st->mark_bytes = st->bytes;
		}
	}
	Py_RETURN_NONE;
}

struct change {
	uint32_t id;
	int64_t count, bytes;
};

/*
 * [(stack, count change, bytes change)] of the stacks whose live blocks
 * differ from the last mark(). The differences are read into memory of our
 * own before any Python object is made, since making them goes through the
 * hooks.
 */
static PyObject *sampler_changes(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	if (!S.exact) {
		PyErr_SetString(PyExc_RuntimeError, "changes() needs exact mode (a mean of 0)");
		return NULL;
	}
	uint32_t n = S.nstacks, k = 0;
	struct change *v = malloc(((size_t)n + 1) * sizeof(*v));
	if (!v)
		return PyErr_NoMemory();
	for (uint32_t id = 1; id <= n; id++) {
		const struct stack *st = S.stacks[id];
		if (!st || (st->live == st->mark_live && st->bytes == st->mark_bytes))
			continue;
		v[k].id = id;
		v[k].count = (int64_t)(st->live - st->mark_live);
		v[k].bytes = (int64_t)(st->bytes - st->mark_bytes);
		k++;
	}
	PyObject *out = PyList_New(k);
	for (uint32_t i = 0; out && i < k; i++) {
		PyObject *row = Py_BuildValue("(ILL)", (unsigned int)v[i].id, (long long)v[i].count,
					      (long long)v[i].bytes);
		if (!row)
			Py_CLEAR(out);
		else
			PyList_SET_ITEM(out, i, row);
	}
	free(v);
	return out;
}

/*
 * quiet(on): while on, the blocks the calling thread allocates are not
 * recorded (the agent's worker building a snapshot); their frees cost
 * what any free costs. One thread at a time; quiet(False) ends it.
 */
static PyObject *sampler_quiet(PyObject *self, PyObject *arg)
{
	(void)self;
	int on = PyObject_IsTrue(arg);
	if (on < 0)
		return NULL;
	S.quiet = on ? _PyThreadState_UncheckedGet() : NULL;
	return PyBool_FromLong(S.quiet != NULL);
}

/* A forked child does not have the quiet thread; a new one may get its state. */
static void quiet_after_fork(void)
{
	S.quiet = NULL;
	/*
	 * Mixed mode ends in a child (the native agent stops there); a thread
	 * that held the table's lock at the fork does not exist here, so the
	 * lock must not wait for it.
	 */
	hybrid_on = 0;
	atomic_flag_clear(&table_lock);
}

/* frames(stack): the ((filename, line), ...) of a stack id from picked(). */
static PyObject *sampler_frames(PyObject *self, PyObject *arg)
{
	(void)self;
	unsigned long id = PyLong_AsUnsignedLong(arg);
	if (id == (unsigned long)-1 && PyErr_Occurred())
		return NULL;
	if (id < 1 || id > S.nstacks || !S.stacks[id]) {
		PyErr_SetString(PyExc_ValueError, "no such stack");
		return NULL;
	}
	return frames_of((uint32_t)id);
}

static PyObject *sampler_stats(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	/*
	 * The malloc'ed tables that grow with the live blocks (the stacks
	 * themselves grow with the program's code, not its data): the agent
	 * takes them out of the process's malloc total, which they would
	 * otherwise inflate by doublings (see _snapshot._malloc_bytes).
	 */
	unsigned long long tables = (unsigned long long)(S.slots ? S.mask + 1 : 0) * sizeof(struct slot) +
				    (unsigned long long)(S.index ? S.index_mask + 1 : 0) * sizeof(uint32_t) +
				    (unsigned long long)S.cap_stacks * sizeof(struct stack *) +
				    (unsigned long long)S.cap_huge * sizeof(struct huge_block);
	return Py_BuildValue("{sdsisisKsKsKsKsKsK}", "mean", S.mean, "exact", S.exact, "depth", S.depth,
			     "live", (unsigned long long)S.live, "bytes", (unsigned long long)S.bytes, "stacks", (unsigned long long)S.kept,
			     "picked", (unsigned long long)S.picked, "dropped", (unsigned long long)S.dropped,
			     "table_bytes", tables);
}

/* For the agent's peak snapshots, polled from its own thread. */
static PyObject *sampler_live_bytes(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	return PyLong_FromUnsignedLongLong(S.bytes);
}

/* ------------------------------------------------------------ mixed mode */

/*
 * `leakdiff record --native`: the native agent (libleakdiff-preload.so) is
 * in the process too, and asks hybrid_site() for the Python stack of each
 * native block (agents/common/mixed.h). The answer is a stack id of the
 * same table the hooks use, pinned so that it outlives every cleanup: the
 * native agent keeps the number, and a later snapshot names its frames.
 */
static leakdiff_mixed_register_fn mixed_register;
static leakdiff_mixed_document_fn mixed_document;

/*
 * A thread that released the GIL around a malloc (NumPy does for big
 * zeroed arrays): its own frames cannot change meanwhile, so they are
 * walked and the stack is looked up, or interned, under the table's lock;
 * references to its code objects wait for the GIL (settle_pending()). 0
 * when the table is out of room for such stacks until then.
 */
#define UNLOCKED_DEPTH 128
static uint32_t unlocked_site(PyThreadState *mine)
{
	/* Zeroed: stacks are compared with memcmp, padding included. */
	struct frame_ref buf[UNLOCKED_DEPTH] = { { 0 } };
	uint32_t depth = (uint32_t)S.depth < UNLOCKED_DEPTH ? (uint32_t)S.depth : UNLOCKED_DEPTH;
	uint32_t n = walk_into(mine, buf, depth);
	if (!n)
		return 0;
	uint64_t h = hash_of(buf, n);
	table_enter();
	uint32_t id = lookup(buf, n, h);
	unsigned k = atomic_load_explicit(&npending, memory_order_relaxed);
	if (!id && k < PENDING_MAX && (id = intern_with(buf, n, h, 0)) != 0) {
		pending[k] = id;
		atomic_store_explicit(&npending, k + 1, memory_order_release);
	}
	if (id)
		S.stacks[id]->pinned = 1;
	table_leave();
	return id;
}

/*
 * With the GIL: takes the references the stacks interned without it lack.
 * Their threads were inside those frames when they interned them and
 * cannot have left them without the GIL, so the code objects were alive
 * then; one that has died since is being deallocated right now (a free
 * inside its deallocation is what called us, and its count is 0): such a
 * stack is emptied, never to match or be named again.
 */
static void settle_pending(void)
{
	table_enter();
	unsigned n = atomic_load_explicit(&npending, memory_order_acquire);
	for (unsigned k = 0; k < n; k++) {
		struct stack *st = S.stacks[pending[k]];
		int alive = 1;
		for (uint32_t i = 0; i < st->depth; i++)
			alive &= Py_REFCNT((PyObject *)st->frames[i].code) > 0;
		if (!alive) {
			st->depth = 0;
			continue;
		}
		for (uint32_t i = 0; i < st->depth; i++)
			Py_INCREF((PyObject *)st->frames[i].code);
	}
	atomic_store_explicit(&npending, 0, memory_order_release);
	table_leave();
}

/*
 * Runs inside the native agent, in the allocating thread, on every native
 * block it records; allocates only when a stack is new (glibc's malloc,
 * which the native agent does not track meanwhile). Without the GIL the
 * tables are not ours to touch: such blocks get no Python stack.
 */
static uint32_t hybrid_site(void)
{
	if (!S.on)
		return 0;
	PyThreadState *mine = PyGILState_GetThisThreadState();
	if (!mine || !ours(mine))
		return 0; /* a thread Python does not know, or another GIL's */
	/* Before 3.12 this is the GIL's holder, whichever thread it is. */
	if (_PyThreadState_UncheckedGet() != mine)
		return unlocked_site(mine);
	if (in_python_alloc)
		return LD_MIXED_SKIP;
	if (S.quiet && mine == S.quiet)
		return LD_MIXED_SKIP; /* the agent's own snapshot work */
	uint32_t n = walk(mine);
	if (!n)
		return 0;
	table_enter();
	uint32_t id = intern_locked(n);
	if (id)
		S.stacks[id]->pinned = 1;
	table_leave();
	return id;
}

/*
 * hybrid_attach(): finds the native agent and registers hybrid_site();
 * True when the native agent runs in mixed mode and took it.
 */
static PyObject *sampler_hybrid_attach(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	if (!S.installed) {
		PyErr_SetString(PyExc_RuntimeError, "start() the hooks first");
		return NULL;
	}
	/* Through an integer: ISO C has no object-to-function pointer cast. */
	mixed_register = (leakdiff_mixed_register_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "leakdiff_mixed_register");
	mixed_document = (leakdiff_mixed_document_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "leakdiff_mixed_document");
	if (!mixed_register || !mixed_document ||
	    mixed_register(LD_MIXED_INTERFACE, hybrid_site) < 0) {
		mixed_document = NULL;
		Py_RETURN_FALSE;
	}
	hybrid_on = 1;
	Py_RETURN_TRUE;
}

struct sink_buf {
	char *data;
	size_t len, cap;
};

/* Collects the native agent's document; runs inside the agent. */
static int sink_append(void *ctx, const char *data, size_t len)
{
	struct sink_buf *b = ctx;
	if (b->len + len > b->cap) {
		size_t ncap = b->cap ? b->cap : 1 << 16;
		while (ncap < b->len + len)
			ncap *= 2;
		char *v = realloc(b->data, ncap);
		if (!v)
			return -1;
		b->data = v;
		b->cap = ncap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

/*
 * native_document(): the native agent's raw document of its live sites
 * (bytes), each site's sixth element the id of a Python stack of this
 * table; None when no native agent is attached or it failed.
 */
static PyObject *sampler_native_document(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	if (!mixed_document)
		Py_RETURN_NONE;
	struct sink_buf b = { 0 };
	int r = mixed_document(sink_append, &b);
	PyObject *out = r == 0 ? PyBytes_FromStringAndSize(b.data, (Py_ssize_t)b.len) : NULL;
	free(b.data);
	if (r != 0)
		Py_RETURN_NONE;
	return out;
}

/* pinned(): [(stack, frames)] of the stacks native blocks have named. */
static PyObject *sampler_pinned(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	settle_if_pending();
	uint32_t n = S.nstacks;
	PyObject *out = PyList_New(0);
	for (uint32_t id = 1; out && id <= n; id++) {
		table_enter(); /* a thread without the GIL may be pinning it */
		int keep = S.stacks[id] && S.stacks[id]->pinned && S.stacks[id]->depth;
		table_leave();
		if (!keep)
			continue;
		PyObject *frames = frames_of(id);
		PyObject *row = frames ? Py_BuildValue("(IN)", (unsigned int)id, frames) : NULL;
		if (!row || PyList_Append(out, row) < 0)
			Py_CLEAR(out);
		Py_XDECREF(row);
	}
	return out;
}

static PyMethodDef sampler_methods[] = {
	{ "hybrid_attach", sampler_hybrid_attach, METH_NOARGS,
	  "hybrid_attach(): give the native agent (leakdiff record --native) the Python stack of each "
	  "native block; True when it is there and took it." },
	{ "native_document", sampler_native_document, METH_NOARGS,
	  "native_document(): the native agent's raw document of its live sites, or None." },
	{ "pinned", sampler_pinned, METH_NOARGS,
	  "pinned(): [(stack, frames)] of the Python stacks that native blocks name." },
	{ "start", sampler_start, METH_VARARGS,
	  "start(mean_bytes, depth): wrap the MEM and OBJ allocators and pick blocks, on average one "
	  "byte in mean_bytes (every block when mean_bytes is 0), keeping up to depth frames each." },
	{ "stop", sampler_stop, METH_NOARGS, "stop(): pick nothing more; the hooks only pass calls on." },
	{ "is_on", sampler_is_on, METH_NOARGS, "is_on(): True between start() and stop()." },
	{ "detach", sampler_detach, METH_NOARGS,
	  "detach(): stop, take the hooks out if they are still outermost (then True) and free the tables." },
	{ "sites", sampler_sites, METH_NOARGS,
	  "sites(): [(frames, est_count, est_bytes, picked)] of the live picked blocks by stack; "
	  "frames are (filename, line) pairs, innermost first." },
	{ "picked", sampler_picked, METH_O,
	  "picked(objects): [(index, stack, weight)] for the objects in the list whose memory block "
	  "was picked." },
	{ "tally", sampler_tally, METH_VARARGS,
	  "tally(objects, sizes): [(stack, count, bytes, picked)] of the picked objects of the list "
	  "by stack; sizes is one int or a list of the objects' sizes." },
	{ "quiet", sampler_quiet, METH_O,
	  "quiet(on): record nothing the calling thread allocates until quiet(False)." },
	{ "frames", sampler_frames, METH_O, "frames(stack): the (filename, line) pairs of a stack." },
	{ "mark", sampler_mark, METH_NOARGS,
	  "mark(): remember every stack's live blocks and bytes, for changes()." },
	{ "changes", sampler_changes, METH_NOARGS,
	  "changes(): [(stack, count change, bytes change)] of the stacks whose live blocks differ "
	  "from the last mark() (exact mode only)." },
	{ "stats", sampler_stats, METH_NOARGS, "stats(): counters of the sampler, for tests." },
	{ "live_bytes", sampler_live_bytes, METH_NOARGS,
	  "live_bytes(): the summed sizes of the live picked blocks (in exact mode, the live heap)." },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef sampler_module = {
	PyModuleDef_HEAD_INIT, "_sampler",
	"Sampled allocation sites on the PEP 445 allocator hooks (leakdiff record --sample).", -1,
	sampler_methods,
};
#endif /* LD_SUPPORTED */

PyMODINIT_FUNC PyInit__sampler(void);
PyMODINIT_FUNC PyInit__sampler(void)
{
#if !LD_SUPPORTED
	PyErr_SetString(PyExc_ImportError, "_sampler does not know the frames of this interpreter");
	return NULL;
#else
	if (pthread_atfork(NULL, NULL, quiet_after_fork) != 0)
		return PyErr_NoMemory();
	PyObject *m = PyModule_Create(&sampler_module);
	/* The interface the Python agent expects; see load_extension(). */
	if (m && PyModule_AddIntConstant(m, "INTERFACE", 2) < 0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
#endif
}
