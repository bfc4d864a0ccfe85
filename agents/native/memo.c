/*
 * Remembered stacks: a way past libunwind for an allocation made from the
 * same place, with the same stack, as an earlier one.
 *
 * libunwind's unw_backtrace() costs about 8 ns per frame, and most of an
 * exact recording's time went there, yet a loop that allocates calls
 * malloc again and again from the same return address with the stack
 * pointer at the same value. The unwinder's answer is a function of what
 * it reads: the code's call frame information (fixed while the code is
 * loaded), the registers it starts from and the stack words it loads on the
 * way. So the first time a (return address, stack pointer) pair comes back,
 * the stack is walked once more, step by step, noting every stack word the
 * walk depends on: each frame's return address slot and, for frames whose
 * canonical frame address comes from the frame register (rbp), where that
 * register's value came from. Later allocations with the same pair whose
 * words all still hold the same values have the same stack, and take the
 * site that was found for it without walking.
 *
 * Which register a frame's rule is based on is not something libunwind
 * tells: a frame is taken to be based on rbp when rbp points at most 256
 * bytes below its canonical frame address (a frame pointer always does;
 * 16 bytes below for the usual push rbp; mov rsp, rbp). Frames realigned
 * by GCC keep their frame address at rbp - 8, which is then checked too.
 * Anything else (a signal frame, a save slot outside the stack walked so
 * far, a walk that does not give exactly the frames unw_backtrace gave)
 * is never remembered. The walk starts from a context holding only the
 * program's rip, rsp and rbp, so a rule that needs another register gives
 * a different walk and is not remembered either.
 *
 * x86-64 only; elsewhere nothing is remembered and every stack is walked.
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <string.h>
#include <ucontext.h>

#include "agent.h"

/*
 * Stacks remembered per thread: 16 sets of 4, a set picked by the pair.
 * One pair often has several stacks: a C++ function that calls operator new
 * from three places calls malloc with the same return address and stack
 * pointer three times, and only the words above tell the stacks apart.
 */
#define MEMO_SETS 16
#define MEMO_WAYS 4
#define MEMO_CHECKS 20
/* rbp at most this far below a frame's address: the frame is based on it. */
#define RBP_REACH 256

struct memo {
	uintptr_t ra, sp; /* the key; ra 0: empty */
	uintptr_t rbp;    /* rbp the caller must have, when need_rbp */
	uint64_t hash;
	uint32_t site, depth;
	uint32_t nchecks;
	bool need_rbp;
	/* In the order of the walk: each address lies in a frame already
	 * shown to be the same, so reading it cannot fault. */
	uintptr_t addr[MEMO_CHECKS], value[MEMO_CHECKS];
};

struct ld_memo_table {
	struct memo set[MEMO_SETS][MEMO_WAYS];
	/* The last pairs that missed in each set: learnt when they come
	 * back, so that a stack seen once costs no walk. */
	uintptr_t seen_ra[MEMO_SETS][MEMO_WAYS], seen_sp[MEMO_SETS][MEMO_WAYS];
	uint8_t victim[MEMO_SETS], seen_next[MEMO_SETS]; /* ways to replace next */
	/* Learning costs a slow walk (a few microseconds): it stops paying
	 * for itself if stacks rarely come back, so it is rationed. */
	uint64_t hits, learnt;
	/* Scratch for the walk, here rather than on a possibly small stack. */
	unw_context_t uc;
	unw_cursor_t cursor;
};

struct ld_memo_table *ld_memo_create(void)
{
#if defined(__x86_64__)
	return ld_pages(sizeof(struct ld_memo_table));
#else
	return NULL;
#endif
}

void ld_memo_clear(struct ld_memo_table *m)
{
	if (!m)
		return;
	memset(m->set, 0, sizeof(m->set));
	memset(m->seen_ra, 0, sizeof(m->seen_ra));
	memset(m->seen_sp, 0, sizeof(m->seen_sp));
	memset(m->victim, 0, sizeof(m->victim));
	memset(m->seen_next, 0, sizeof(m->seen_next));
	m->hits = m->learnt = 0;
}

static inline unsigned set_of(uintptr_t ra, uintptr_t sp)
{
	return (unsigned)(((ra ^ (sp << 9)) * UINT64_C(0x9e3779b97f4a7c15)) >> 60);
}

static inline uintptr_t load_word(uintptr_t addr)
{
	return *(const volatile uintptr_t *)addr;
}

bool ld_memo_find(struct ld_memo_table *m, uintptr_t ra, uintptr_t sp, uintptr_t rbp,
		  struct ld_memo_hit *out)
{
	const struct memo *set = m->set[set_of(ra, sp)];
	for (unsigned w = 0; w < MEMO_WAYS; w++) {
		const struct memo *e = &set[w];
		if (e->ra != ra || e->sp != sp || (e->need_rbp && e->rbp != rbp))
			continue;
		uint32_t i = 0;
		while (i < e->nchecks && load_word(e->addr[i]) == e->value[i])
			i++;
		if (i < e->nchecks)
			continue;
		m->hits++;
		out->site = e->site;
		out->depth = e->depth;
		out->hash = e->hash;
		return true;
	}
	return false;
}

#if defined(__x86_64__)
static bool add_check(struct memo *e, uintptr_t addr, uintptr_t value)
{
	if (e->nchecks == MEMO_CHECKS)
		return false;
	e->addr[e->nchecks] = addr;
	e->value[e->nchecks] = value;
	e->nchecks++;
	return true;
}

/*
 * Frame k's rbp is part of what its frame address depends on: checks where
 * that value comes from. A value still in the register is the caller's
 * (libunwind reads it from the context uc); one restored from a save slot
 * must lie in the frames walked so far, from sp0 up to the frame's own
 * stack pointer.
 */
static bool check_rbp(struct memo *e, const unw_save_loc_t *loc, const unw_context_t *uc, uintptr_t rbpk,
		      uintptr_t rbp0, uintptr_t sp0, uintptr_t spk)
{
	uintptr_t at = loc->type == UNW_SLT_MEMORY ? (uintptr_t)loc->u.addr : 0;
	if (at && (at < (uintptr_t)uc || at >= (uintptr_t)(uc + 1)))
		return at >= sp0 && at + sizeof(uintptr_t) <= spk && add_check(e, at, rbpk);
	if (rbpk != rbp0)
		return false; /* neither in memory nor the caller's: unknown */
	e->need_rbp = true;
	e->rbp = rbp0;
	return true;
}

/* The walk itself; false leaves e unusable (ra 0). */
static bool walk(struct ld_memo_table *m, struct memo *e, uintptr_t ra, uintptr_t sp, uintptr_t rbp,
		 const uintptr_t *stack, uint32_t depth, uint32_t max_depth)
{
	unw_context_t *uc = &m->uc;
	unw_cursor_t *c = &m->cursor;
	if (unw_getcontext(uc) != 0)
		return false;
	uc->uc_mcontext.gregs[REG_RIP] = (greg_t)ra;
	uc->uc_mcontext.gregs[REG_RSP] = (greg_t)sp;
	uc->uc_mcontext.gregs[REG_RBP] = (greg_t)rbp;
	if (unw_init_local(c, uc) < 0)
		return false;
	for (uint32_t k = 0;; k++) {
		unw_word_t ip, spk, rbpk, cfa;
		unw_save_loc_t rbp_loc, ip_loc;
		if (unw_get_reg(c, UNW_REG_IP, &ip) < 0 || unw_get_reg(c, UNW_X86_64_RSP, &spk) < 0 ||
		    unw_get_reg(c, UNW_X86_64_RBP, &rbpk) < 0 || unw_get_save_loc(c, UNW_X86_64_RBP, &rbp_loc) < 0)
			return false;
		if (ip != stack[k] || unw_is_signal_frame(c) > 0)
			return false;
		if (k + 1 == depth && depth == max_depth)
			return true; /* the frames beyond were cut off anyway */
		int r = unw_step(c);
		if (r < 0)
			return false;
		if (r == 0) {
			/* The walk ends here; the stack did too, and whatever
			 * ended it (the frame's rules, or a frame-pointer guess
			 * for code without them) must be the same next time. */
			return k + 1 == depth && check_rbp(e, &rbp_loc, uc, rbpk, rbp, sp, spk);
		}
		if (k + 1 == depth)
			return false; /* unw_backtrace stopped here, this walk did not */
		if (unw_get_reg(c, UNW_X86_64_RSP, &cfa) < 0 || unw_get_save_loc(c, UNW_REG_IP, &ip_loc) < 0 ||
		    ip_loc.type != UNW_SLT_MEMORY)
			return false;
		if (rbpk < cfa && cfa - rbpk <= RBP_REACH) {
			if (!check_rbp(e, &rbp_loc, uc, rbpk, rbp, sp, spk))
				return false;
			if (cfa - rbpk > 16 && rbpk - 8 >= spk && !add_check(e, rbpk - 8, load_word(rbpk - 8)))
				return false;
		}
		uintptr_t slot = (uintptr_t)ip_loc.u.addr;
		if (slot < spk || slot + sizeof(uintptr_t) > cfa || !add_check(e, slot, load_word(slot)))
			return false;
	}
}
#endif

void ld_memo_learn(struct ld_memo_table *m, uintptr_t ra, uintptr_t sp, uintptr_t rbp,
		   const uintptr_t *stack, uint32_t depth, uint32_t max_depth, uint64_t hash, uint32_t site)
{
#if defined(__x86_64__)
	unsigned i = set_of(ra, sp), w = 0;
	while (w < MEMO_WAYS && (m->seen_ra[i][w] != ra || m->seen_sp[i][w] != sp))
		w++;
	if (w == MEMO_WAYS) {
		w = m->seen_next[i];
		m->seen_next[i] = (uint8_t)((w + 1) % MEMO_WAYS);
		m->seen_ra[i][w] = ra;
		m->seen_sp[i][w] = sp;
		return;
	}
	/* A few walks for free, then one per 16 hits. */
	if (m->learnt >= 8 && m->learnt * 16 > m->hits)
		return;
	m->learnt++;
	struct memo *e = &m->set[i][m->victim[i]];
	m->victim[i] = (uint8_t)((m->victim[i] + 1) % MEMO_WAYS);
	memset(e, 0, offsetof(struct memo, addr));
	if (!depth || stack[0] != ra || !walk(m, e, ra, sp, rbp, stack, depth, max_depth)) {
		e->ra = 0;
		return;
	}
	e->sp = sp;
	e->hash = hash;
	e->site = site;
	e->depth = depth;
	e->ra = ra;
#else
	(void)m, (void)ra, (void)sp, (void)rbp, (void)stack, (void)depth, (void)max_depth, (void)hash, (void)site;
#endif
}
