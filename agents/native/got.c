/*
 * GOT rewriting for the attached agent (attach.c): a library that is
 * dlopen'ed into a running process does not interpose anything, so the
 * calls of every loaded module to the malloc family are redirected by
 * writing the agent's hooks into the module's GOT entries for them, and
 * put back by writing the old values again.
 *
 * A module's entries are found from its dynamic section, as
 * dl_iterate_phdr(3) reports it: the PLT relocations (DT_JMPREL) and the
 * others (DT_RELA or DT_REL) of the kinds that fill a GOT entry with a
 * function's address (JUMP_SLOT for calls through the PLT, GLOB_DAT for
 * calls made with -fno-plt and for taken addresses), matched by the name
 * of their symbol. The agent itself, the dynamic loader and the vDSO are
 * left alone. glibc's dl_iterate_phdr reports the modules of its caller's
 * namespace only, so modules that dlmopen(3) put into another namespace,
 * with a C library and an allocator of their own, are never seen (sending
 * their calls to this namespace's malloc would mix two heaps).
 *
 * An entry is rewritten only when it holds the function the process
 * resolves the name to, or, for a PLT entry not yet bound (lazy binding)
 * in a module without a definition of its own, the module's PLT stub; an
 * entry bound, or bindable, to some other definition (a module with an
 * allocator of its own) is not ours to change. Entries in the RELRO part of a module are read-only after
 * loading: their page is made writable for the write and read-only again,
 * as the loader left it.
 *
 * Every rewritten entry is remembered (address, old value, hook) in pages
 * of our own, so that restoring needs no allocation. Restoring goes
 * through the modules still loaded, newest entry first, and writes the old
 * value back only where the entry still holds our hook: an entry of a
 * module unloaded since is never touched, and one rewritten again by a
 * later load at the same address is put back to that load's value.
 *
 * Writes are single aligned stores, so a thread calling through an entry
 * at that moment reads either the old function or the hook; both work.
 * Patching and restoring are serialised by a mutex and run outside the
 * hooks (never from malloc).
 */
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agent.h"
#include "got.h"

#if defined(__x86_64__)
#define GOT_JUMP_SLOT R_X86_64_JUMP_SLOT
#define GOT_GLOB_DAT R_X86_64_GLOB_DAT
#elif defined(__aarch64__)
#define GOT_JUMP_SLOT R_AARCH64_JUMP_SLOT
#define GOT_GLOB_DAT R_AARCH64_GLOB_DAT
#elif defined(__i386__)
#define GOT_JUMP_SLOT R_386_JMP_SLOT
#define GOT_GLOB_DAT R_386_GLOB_DAT
#endif

#if __ELF_NATIVE_CLASS == 64
#define R_TYPE_OF(i) ELF64_R_TYPE(i)
#define R_SYM_OF(i) ELF64_R_SYM(i)
#else
#define R_TYPE_OF(i) ELF32_R_TYPE(i)
#define R_SYM_OF(i) ELF32_R_SYM(i)
#endif

/* Entries remembered at most; far more than the malloc family of any
 * process's modules. */
#define MAX_ENTRIES (1u << 16)

struct entry {
	uintptr_t *slot;
	uintptr_t old, hook;
};

static pthread_mutex_t got_lock = PTHREAD_MUTEX_INITIALIZER;
static const struct ld_got_hook *hooks;
static size_t nhooks;
static bool enabled;          /* patching allowed: between begin and restore */
static struct entry *entries; /* from mmap, never returned */
static size_t nentries;
static size_t skipped;        /* entries left alone: bound to another definition, or no room */
static uintptr_t self_addr;   /* an address inside this library */

/* A loaded module as the patcher needs it. */
struct module {
	uintptr_t base, lo, hi;     /* load bias; span of its PT_LOAD segments */
	uintptr_t relro_lo, relro_hi; /* the pages the loader made read-only */
	const ElfW(Dyn) *dyn;
};

static bool module_of(const struct dl_phdr_info *info, struct module *m)
{
	memset(m, 0, sizeof(*m));
	m->base = info->dlpi_addr;
	m->lo = UINTPTR_MAX;
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t s = m->base + ph->p_vaddr;
		if (ph->p_type == PT_LOAD) {
			if (s < m->lo)
				m->lo = s;
			if (s + ph->p_memsz > m->hi)
				m->hi = s + ph->p_memsz;
		} else if (ph->p_type == PT_DYNAMIC) {
			m->dyn = (const ElfW(Dyn) *)s;
		} else if (ph->p_type == PT_GNU_RELRO) {
			/* The loader protects whole pages only, rounding both ends down. */
			m->relro_lo = s & ~(page - 1);
			m->relro_hi = (s + ph->p_memsz) & ~(page - 1);
		}
	}
	return m->dyn && m->lo < m->hi;
}

/* Whether the module is one the patcher must leave alone. */
static bool left_alone(const struct dl_phdr_info *info, const struct module *m)
{
	uintptr_t vdso = (uintptr_t)getauxval(AT_SYSINFO_EHDR), ldso = (uintptr_t)getauxval(AT_BASE);
	if (self_addr >= m->lo && self_addr < m->hi)
		return true;
	if ((vdso && vdso >= m->lo && vdso < m->hi) || (ldso && ldso >= m->lo && ldso < m->hi))
		return true;
	/* The loader run as a program (ld.so ./prog) has no AT_BASE. */
	const char *name = info->dlpi_name ? info->dlpi_name : "";
	const char *base = strrchr(name, '/');
	base = base ? base + 1 : name;
	return strncmp(base, "ld-linux", 8) == 0 || strncmp(base, "ld64.so", 7) == 0;
}

/* A pointer of the dynamic section: absolute already, unless the loader
 * left the section as it is in the file (then relative to the bias). */
static uintptr_t dyn_ptr(const struct module *m, uintptr_t v)
{
	return v && v < m->base ? v + m->base : v;
}

static bool in_relro(const struct module *m, const uintptr_t *slot)
{
	return (uintptr_t)slot >= m->relro_lo && (uintptr_t)slot < m->relro_hi;
}

/* Stores v in slot, through a writable window when the slot is in RELRO;
 * false when the page cannot be made writable (nothing written). */
static bool store(const struct module *m, uintptr_t *slot, uintptr_t v)
{
	if (!in_relro(m, slot)) {
		__atomic_store_n(slot, v, __ATOMIC_RELEASE);
		return true;
	}
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	void *at = (void *)((uintptr_t)slot & ~(page - 1));
	if (mprotect(at, page, PROT_READ | PROT_WRITE) < 0)
		return false;
	__atomic_store_n(slot, v, __ATOMIC_RELEASE);
	mprotect(at, page, PROT_READ);
	return true;
}

static const struct ld_got_hook *hook_named(const char *name)
{
	for (size_t i = 0; i < nhooks; i++)
		if (name[0] == hooks[i].name[0] && strcmp(name, hooks[i].name) == 0)
			return &hooks[i];
	return NULL;
}

/* The symbol and string tables a relocation needs. */
struct tables {
	const ElfW(Sym) *sym;
	const char *str;
	size_t strsz;
};

/* Looks at one relocation of the module and rewrites its entry if it is one of ours. */
static void consider(const struct module *m, const struct tables *t, uintptr_t offset, uintptr_t info)
{
#ifdef GOT_JUMP_SLOT
	unsigned type = (unsigned)R_TYPE_OF(info);
	if (type != GOT_JUMP_SLOT && type != GOT_GLOB_DAT)
		return;
	const ElfW(Sym) *sym = &t->sym[R_SYM_OF(info)];
	if (!sym->st_name || (t->strsz && sym->st_name >= t->strsz))
		return;
	const struct ld_got_hook *h = hook_named(t->str + sym->st_name);
	if (!h)
		return;
	uintptr_t *slot = (uintptr_t *)(m->base + offset);
	if ((uintptr_t)slot < m->lo || (uintptr_t)slot + sizeof(*slot) > m->hi)
		return;
	uintptr_t v = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (v == h->hook)
		return; /* patched already */
	/* A PLT entry not bound yet points at the module's own stub; the
	 * loader would bind it to the process's definition, as we do, unless
	 * the module has a definition of its own that it may bind to instead
	 * (RTLD_DEEPBIND): then it is left alone, bound or not. */
	bool own = sym->st_shndx != SHN_UNDEF && m->base + sym->st_value != h->real;
	bool lazy = type == GOT_JUMP_SLOT && !own && v >= m->lo && v < m->hi;
	if ((v != h->real && !lazy) || nentries == MAX_ENTRIES) {
		skipped++;
		return;
	}
	entries[nentries] = (struct entry){ .slot = slot, .old = v, .hook = h->hook };
	if (store(m, slot, h->hook))
		nentries++;
	else
		skipped++;
#else
	(void)m, (void)t, (void)offset, (void)info;
#endif
}

static void patch_relocs(const struct module *m, const struct tables *t, uintptr_t at, size_t size, bool rela)
{
	if (!at || !size)
		return;
	if (rela) {
		for (const ElfW(Rela) *r = (const ElfW(Rela) *)at; (uintptr_t)(r + 1) <= at + size; r++)
			consider(m, t, r->r_offset, r->r_info);
	} else {
		for (const ElfW(Rel) *r = (const ElfW(Rel) *)at; (uintptr_t)(r + 1) <= at + size; r++)
			consider(m, t, r->r_offset, r->r_info);
	}
}

static int patch_module(struct dl_phdr_info *info, size_t size, void *ctx)
{
	(void)size, (void)ctx;
	struct module m;
	if (!module_of(info, &m) || left_alone(info, &m))
		return 0;
	struct tables t = { 0 };
	uintptr_t jmprel = 0, rela = 0, rel = 0;
	size_t pltrelsz = 0, relasz = 0, relsz = 0;
	bool plt_rela = true;
	for (const ElfW(Dyn) *d = m.dyn; d->d_tag != DT_NULL; d++) {
		switch (d->d_tag) {
		case DT_SYMTAB: t.sym = (const ElfW(Sym) *)dyn_ptr(&m, d->d_un.d_ptr); break;
		case DT_STRTAB: t.str = (const char *)dyn_ptr(&m, d->d_un.d_ptr); break;
		case DT_STRSZ: t.strsz = d->d_un.d_val; break;
		case DT_JMPREL: jmprel = dyn_ptr(&m, d->d_un.d_ptr); break;
		case DT_PLTRELSZ: pltrelsz = d->d_un.d_val; break;
		case DT_PLTREL: plt_rela = d->d_un.d_val == DT_RELA; break;
		case DT_RELA: rela = dyn_ptr(&m, d->d_un.d_ptr); break;
		case DT_RELASZ: relasz = d->d_un.d_val; break;
		case DT_REL: rel = dyn_ptr(&m, d->d_un.d_ptr); break;
		case DT_RELSZ: relsz = d->d_un.d_val; break;
		default: break;
		}
	}
	if (!t.sym || !t.str)
		return 0;
	patch_relocs(&m, &t, jmprel, pltrelsz, plt_rela);
	patch_relocs(&m, &t, rela, relasz, true);
	patch_relocs(&m, &t, rel, relsz, false);
	return 0;
}

static int restore_module(struct dl_phdr_info *info, size_t size, void *ctx)
{
	(void)size, (void)ctx;
	struct module m;
	if (!module_of(info, &m) || left_alone(info, &m))
		return 0;
	for (size_t i = nentries; i-- > 0;) {
		struct entry *e = &entries[i];
		if ((uintptr_t)e->slot < m.lo || (uintptr_t)e->slot >= m.hi)
			continue;
		if (__atomic_load_n(e->slot, __ATOMIC_ACQUIRE) == e->hook)
			store(&m, e->slot, e->old);
	}
	return 0;
}

static int count_loads(struct dl_phdr_info *info, size_t size, void *ctx)
{
	if (size >= offsetof(struct dl_phdr_info, dlpi_adds) + sizeof(info->dlpi_adds))
		*(unsigned long long *)ctx = info->dlpi_adds;
	return 1; /* every module reports the same counters */
}

unsigned long long ld_got_loads(void)
{
	unsigned long long adds = 0;
	dl_iterate_phdr(count_loads, &adds);
	return adds;
}

int ld_got_begin(const struct ld_got_hook *h, size_t n)
{
#ifndef GOT_JUMP_SLOT
	(void)h, (void)n;
	return -ENOSYS;
#else
	pthread_mutex_lock(&got_lock);
	int r = 0;
	if (!entries && !(entries = ld_pages(MAX_ENTRIES * sizeof(*entries)))) {
		r = -ENOMEM;
		goto out;
	}
	self_addr = (uintptr_t)ld_got_begin;
	hooks = h;
	nhooks = n;
	/* Entries still rewritten (a fork()ed child of an attached process
	 * attaching in turn) stay remembered, to be put back too. */
	if (!enabled)
		nentries = 0;
	skipped = 0;
	enabled = true;
	dl_iterate_phdr(patch_module, NULL);
out:
	pthread_mutex_unlock(&got_lock);
	return r;
#endif
}

void ld_got_patch(void)
{
	pthread_mutex_lock(&got_lock);
	if (enabled)
		dl_iterate_phdr(patch_module, NULL);
	pthread_mutex_unlock(&got_lock);
}

void ld_got_restore(void)
{
	pthread_mutex_lock(&got_lock);
	if (enabled) {
		enabled = false;
		dl_iterate_phdr(restore_module, NULL);
		nentries = 0;
	}
	pthread_mutex_unlock(&got_lock);
}

void ld_got_counts(size_t *patched, size_t *left)
{
	pthread_mutex_lock(&got_lock);
	*patched = nentries;
	*left = skipped;
	pthread_mutex_unlock(&got_lock);
}
