/*
 * Calling functions in a running process (see inject.h).
 *
 * Why not gdb: gdb 13 (Debian 12's) cannot write a thread's registers back
 * on CPUs whose extended state is larger than it expects (AMX): its
 * PTRACE_SETREGSET is refused with EFAULT, the inferior call fails half way
 * and the target resumes with broken registers. Doing the few steps here
 * also means that one thread stops instead of all of them, that nothing is
 * allocated in the target behind our back, and that the thread is chosen
 * for being idle: blocked in a system call that is never made with a C
 * library lock held, so that the called function cannot deadlock on a
 * lock the thread itself holds (malloc's, the loader's).
 *
 * The call: the thread is stopped with PTRACE_INTERRUPT while it waits in
 * its system call; its general registers and its whole XSAVE area are
 * saved; the function is entered with the arguments in registers and the
 * stack pointer below the red zone. It returns either to address 0, where
 * it faults and stops again with SIGSEGV, which is swallowed (the first
 * call, mmap of a page, and the last, its munmap), or to the trampoline
 * in that page (ld_inject_trampoline()), whose system call stops it. Put
 * back at a SIGSEGV stop, the saved registers (orig_rax included) make
 * the kernel restart the interrupted system call, as after any stop; put
 * back at the trampoline's system call, they make the thread enter its
 * own system call again. Either way it goes on waiting where it was. A
 * recorder killed mid-call leaves the trampoline to do the same.
 */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "inject.h"

#if defined(__x86_64__) && defined(__linux__)
#include <sys/ptrace.h>
#include <sys/user.h>
#define LD_INJECT_SUPPORTED 1
#else
#define LD_INJECT_SUPPORTED 0
#endif

/* ------------------------------------------------------------ symbols */

/* Reads n bytes at off; 0 or -1. */
static int read_at(int fd, void *buf, size_t n, off_t off)
{
	char *p = buf;
	while (n) {
		ssize_t r = pread(fd, p, n, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
		off += r;
	}
	return 0;
}

/*
 * The value of the exported symbol sym in the ELF file fd, relative to the
 * file's first PT_LOAD, with the default version preferred over hidden
 * ones; 0 when not found. *first_load gets that PT_LOAD's page address.
 */
static uint64_t elf_symbol(int fd, const char *sym, uint64_t *first_load, bool *exec)
{
	Elf64_Ehdr eh;
	if (read_at(fd, &eh, sizeof(eh), 0) < 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(Elf64_Shdr) ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_shnum == 0 || eh.e_shnum > 4096 || eh.e_phnum > 256)
		return 0;
	*exec = eh.e_type == ET_EXEC;
	*first_load = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (read_at(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) < 0)
			return 0;
		if (ph.p_type == PT_LOAD) {
			*first_load = ph.p_vaddr & ~(uint64_t)0xfff;
			break;
		}
	}
	Elf64_Shdr *sh = calloc(eh.e_shnum, sizeof(*sh));
	if (!sh || read_at(fd, sh, eh.e_shnum * sizeof(*sh), (off_t)eh.e_shoff) < 0) {
		free(sh);
		return 0;
	}
	uint64_t found = 0, hidden = 0;
	Elf64_Sym *syms = NULL;
	char *names = NULL;
	uint16_t *versym = NULL;
	for (unsigned i = 0; i < eh.e_shnum; i++) {
		if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= eh.e_shnum || sh[i].sh_size > (64u << 20))
			continue;
		const Elf64_Shdr *ss = &sh[sh[i].sh_link];
		size_t n = sh[i].sh_size / sizeof(Elf64_Sym);
		if (ss->sh_size > (64u << 20))
			break;
		syms = malloc(sh[i].sh_size + 1);
		names = malloc(ss->sh_size + 1);
		if (!syms || !names || read_at(fd, syms, sh[i].sh_size, (off_t)sh[i].sh_offset) < 0 ||
		    read_at(fd, names, ss->sh_size, (off_t)ss->sh_offset) < 0)
			break;
		names[ss->sh_size] = '\0';
		for (unsigned k = 0; k < eh.e_shnum; k++)
			if (sh[k].sh_type == SHT_GNU_versym && sh[k].sh_size == n * sizeof(uint16_t)) {
				versym = malloc(sh[k].sh_size);
				if (versym && read_at(fd, versym, sh[k].sh_size, (off_t)sh[k].sh_offset) < 0) {
					free(versym);
					versym = NULL;
				}
				break;
			}
		for (size_t j = 1; j < n && !found; j++) {
			const Elf64_Sym *s = &syms[j];
			int type = ELF64_ST_TYPE(s->st_info), bind = ELF64_ST_BIND(s->st_info);
			if (s->st_shndx == SHN_UNDEF || s->st_name >= ss->sh_size || !s->st_value ||
			    (type != STT_FUNC && type != STT_OBJECT) || (bind != STB_GLOBAL && bind != STB_WEAK) ||
			    strcmp(names + s->st_name, sym) != 0)
				continue;
			if (versym && (versym[j] & 0x8000))
				hidden = hidden ? hidden : s->st_value;
			else
				found = s->st_value;
		}
		break;
	}
	free(versym);
	free(syms);
	free(names);
	free(sh);
	return found ? found : hidden;
}

/* Calls fn for each file mapping with offset 0 (a module's first mapping); stops when it returns true. */
static bool each_module(pid_t pid, bool (*fn)(void *ctx, uint64_t start, unsigned long ino, const char *path),
			void *ctx)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	char line[4096 + 256];
	bool hit = false;
	while (!hit && fgets(line, sizeof(line), f)) {
		unsigned long long start, end, off;
		unsigned long ino;
		int name_at = 0;
		if (sscanf(line, "%llx-%llx %*s %llx %*s %lu %n", &start, &end, &off, &ino, &name_at) < 4 ||
		    !name_at || line[name_at] != '/' || off != 0)
			continue;
		line[strcspn(line, "\n")] = '\0';
		hit = fn(ctx, start, ino, line + name_at);
	}
	fclose(f);
	return hit;
}

struct lookup {
	pid_t pid;
	const char *module, *sym;
	uint64_t addr;
};

static bool lookup_one(void *ctx, uint64_t start, unsigned long ino, const char *path)
{
	struct lookup *l = ctx;
	if (l->module && !strstr(path, l->module))
		return false;
	/* Through the process's own root, which differs inside a container. */
	char full[4096 + 64];
	snprintf(full, sizeof(full), "/proc/%d/root%s", (int)l->pid, path);
	int fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct stat st;
	uint64_t first = 0, value = 0;
	bool exec = false;
	if (fstat(fd, &st) == 0 && st.st_ino == ino)
		value = elf_symbol(fd, l->sym, &first, &exec);
	close(fd);
	if (!value)
		return false;
	l->addr = exec ? value : start - first + value;
	return true;
}

uint64_t ld_inject_symbol(pid_t pid, const char *module, const char *sym)
{
	struct lookup l = { .pid = pid, .module = module, .sym = sym };
	return each_module(pid, lookup_one, &l) ? l.addr : 0;
}

static bool has_part(void *ctx, uint64_t start, unsigned long ino, const char *path)
{
	(void)start;
	(void)ino;
	return strstr(path, ctx) != NULL;
}

bool ld_inject_maps_has(pid_t pid, const char *part)
{
	return each_module(pid, has_part, (void *)part);
}

/* ------------------------------------------------------------ calls */

#if LD_INJECT_SUPPORTED

#define XSTATE_MAX (64u << 10)

struct ld_inject {
	pid_t pid, tid;
	struct user_regs_struct saved;
	unsigned char *xstate; /* the XSAVE area, or the FXSAVE one when !xsave */
	size_t xstate_len;
	bool xsave;
	bool stopped; /* the thread is in a ptrace stop, ours to resume */
	bool gone;
	uint64_t tramp; /* where calls return: ld_inject_trampoline(); 0: address 0 */
	bool at_marker; /* stopped at the trampoline's system call, on entry */
};

/*
 * The waits a thread may be borrowed from. The called code (mmap, dlopen
 * and ld_attach_start, or PyGILState_Ensure and PyRun_SimpleString) runs
 * on top of whatever the thread was doing, as a signal handler would, so
 * that thread must hold no lock the called code may take: glibc's locks
 * are mostly not recursive, and a recursive one (a FILE's, the loader's)
 * would let the called code into a structure left half changed.
 *
 * These calls block in the kernel without any such lock: the C library
 * makes them for the program and takes none of its locks around them, and
 * a program that waits in them holding a lock of its own holds one the
 * agent never needs. The exceptions are read() inside stdio (the FILE is
 * locked: the loaders use no C stdio) and read() by dlopen (only of
 * regular files, whose reads the kernel does not interrupt, so that
 * interrupted_in_syscall() turns such a thread down).
 *
 * futex is never on the list, whatever the thread waits for: a thread
 * blocked in futex is very often inside the C library or the interpreter
 * with a lock taken. It may wait for malloc's arena lock while holding
 * another arena's or the arena list's; wait for the GIL inside take_gil(),
 * registered as a waiter of the GIL's condition variable, which the
 * loader's own PyGILState_Ensure would then wait on again from the same
 * thread; wait for the loader's lock in a lazy binding or a TLS
 * allocation. From outside nothing tells which, so none is borrowed: a
 * process whose threads all wait in futex fails to attach (-EBUSY)
 * instead of risking a deadlock. Restarting calls come first.
 */
static const long idle_calls[] = {
	35 /* nanosleep */, 230 /* clock_nanosleep */, 7 /* poll */, 271 /* ppoll */, 23 /* select */,
	270 /* pselect6 */, 0 /* read */, 61 /* wait4 */, 247 /* waitid */, 43 /* accept */,
	288 /* accept4 */, 45 /* recvfrom */, 47 /* recvmsg */, 299 /* recvmmsg */, 34 /* pause */,
	130 /* rt_sigsuspend */, 232 /* epoll_wait */, 281 /* epoll_pwait */, 441 /* epoll_pwait2 */,
	128 /* rt_sigtimedwait */,
};

/* How suitable a thread waiting in system call nr is: lower is better, -1 not at all. */
static int rank(long nr)
{
	for (size_t i = 0; i < sizeof(idle_calls) / sizeof(idle_calls[0]); i++)
		if (idle_calls[i] == nr)
			return (int)i;
	return -1;
}

static long task_syscall(pid_t pid, pid_t tid)
{
	char path[96], buf[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == EACCES || errno == EPERM ? -2 : -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int e = errno;
	close(fd);
	if (n <= 0)
		return n < 0 && (e == EACCES || e == EPERM) ? -2 : -1;
	buf[n] = '\0';
	char *end;
	long nr = strtol(buf, &end, 10);
	return end == buf ? -1 : nr; /* "running" parses as nothing */
}

/* The best thread to borrow now, or 0. */
static pid_t pick_thread(pid_t pid, int *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d) {
		*err = errno == ENOENT ? -ESRCH : -errno;
		return 0;
	}
	pid_t best = 0;
	int best_rank = 1 << 20;
	bool refused = false;
	struct dirent *e;
	while ((e = readdir(d))) {
		pid_t tid = (pid_t)atoi(e->d_name);
		if (tid <= 0)
			continue;
		long nr = task_syscall(pid, tid);
		/* The kernel shows a thread's system call only to who may trace it. */
		refused |= nr == -2;
		int r = rank(nr);
		/* Among equals, the main thread: its stack is the biggest. */
		if (r >= 0 && (r < best_rank || (r == best_rank && tid == pid))) {
			best = tid;
			best_rank = r;
		}
	}
	closedir(d);
	if (!best && refused)
		*err = -EPERM;
	return best;
}

static int wait_stop(pid_t tid, int *status)
{
	for (;;) {
		pid_t w = waitpid(tid, status, __WALL);
		if (w == tid)
			return 0;
		if (w < 0 && errno == EINTR)
			continue;
		return -errno;
	}
}

static bool interrupted_in_syscall(const struct user_regs_struct *r)
{
	long rax = (long)r->rax;
	bool restartable = rax == -4 /* EINTR */ || rax == -512 || rax == -513 || rax == -514 || rax == -516;
	return restartable && rank((long)r->orig_rax) >= 0;
}

static int save_state(struct ld_inject *in)
{
	if (ptrace(PTRACE_GETREGS, in->tid, NULL, &in->saved) < 0)
		return -errno;
	in->xstate = calloc(1, XSTATE_MAX);
	if (!in->xstate)
		return -ENOMEM;
	struct iovec iov = { in->xstate, XSTATE_MAX };
	if (ptrace(PTRACE_GETREGSET, in->tid, (void *)NT_X86_XSTATE, &iov) == 0) {
		in->xsave = true;
		in->xstate_len = iov.iov_len;
		return 0;
	}
	if (ptrace(PTRACE_GETFPREGS, in->tid, NULL, in->xstate) < 0)
		return -errno;
	in->xstate_len = sizeof(struct user_fpregs_struct);
	return 0;
}

int ld_inject_begin(pid_t pid, struct ld_inject **out)
{
	*out = NULL;
	int err = -EBUSY;
	for (int attempt = 0; attempt < 20; attempt++) {
		if (attempt)
			nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 }, NULL);
		pid_t tid = pick_thread(pid, &err);
		if (!tid) {
			if (err == -ESRCH || err == -EPERM)
				return err;
			continue;
		}
		if (ptrace(PTRACE_SEIZE, tid, NULL, (void *)(long)PTRACE_O_TRACESYSGOOD) < 0) {
			err = -errno;
			if (err == -EPERM || err == -ESRCH)
				return err;
			continue;
		}
		int st;
		if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0 || wait_stop(tid, &st) < 0 ||
		    !WIFSTOPPED(st)) {
			ptrace(PTRACE_DETACH, tid, NULL, NULL);
			continue;
		}
		/* A signal that came first is given back with the detach. */
		int sig = (st >> 16) == PTRACE_EVENT_STOP ? 0 : WSTOPSIG(st);
		struct ld_inject *in = calloc(1, sizeof(*in));
		if (!in) {
			ptrace(PTRACE_DETACH, tid, NULL, (void *)(long)sig);
			return -ENOMEM;
		}
		in->pid = pid;
		in->tid = tid;
		in->stopped = true;
		int r = sig ? -EAGAIN : save_state(in);
		if (r == 0 && !interrupted_in_syscall(&in->saved))
			r = -EAGAIN; /* it left its wait meanwhile */
		if (r == 0) {
			*out = in;
			return 0;
		}
		ptrace(PTRACE_DETACH, tid, NULL, (void *)(long)sig);
		free(in->xstate);
		free(in);
		if (r != -EAGAIN)
			return r;
		err = -EBUSY;
	}
	return err;
}

int ld_inject_write(struct ld_inject *in, uint64_t addr, const void *data, size_t len)
{
	struct iovec local = { (void *)data, len }, remote = { (void *)(uintptr_t)addr, len };
	ssize_t n = process_vm_writev(in->pid, &local, 1, &remote, 1, 0);
	if (n == (ssize_t)len)
		return 0;
	/* process_vm_writev honours page protections; ptrace pokes do not need to. */
	for (size_t i = 0; i < len; i += sizeof(long)) {
		long word = 0;
		size_t k = len - i < sizeof(long) ? len - i : sizeof(long);
		if (k < sizeof(long)) {
			errno = 0;
			word = ptrace(PTRACE_PEEKDATA, in->tid, (void *)(uintptr_t)(addr + i), NULL);
			if (errno)
				return -errno;
		}
		memcpy(&word, (const char *)data + i, k);
		if (ptrace(PTRACE_POKEDATA, in->tid, (void *)(uintptr_t)(addr + i), (void *)word) < 0)
			return -errno;
	}
	return 0;
}

int ld_inject_read_string(struct ld_inject *in, uint64_t addr, char *buf, size_t len)
{
	struct iovec local = { buf, len - 1 }, remote = { (void *)(uintptr_t)addr, len - 1 };
	ssize_t n = process_vm_readv(in->pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static size_t put(unsigned char *code, size_t at, const void *bytes, size_t n)
{
	memcpy(code + at, bytes, n);
	return at + n;
}

/* movabs REG, imm64: the REX prefix and opcode byte for REG, then the value. */
static size_t put_mov(unsigned char *code, size_t at, unsigned char rex, unsigned char op, uint64_t v)
{
	code[at++] = rex;
	code[at++] = op;
	return put(code, at, &v, 8);
}

#define MARKER_END 10 /* mov rdi, rax; mov eax, 39; syscall */

int ld_inject_trampoline(struct ld_inject *in, uint64_t addr)
{
	if (!addr) {
		in->tramp = 0;
		return 0;
	}
	const struct user_regs_struct *r = &in->saved;
	unsigned char code[256];
	size_t n = 0;
	/* The marker: the return value kept in rdi, then getpid, seen as a system-call stop. */
	n = put(code, n, "\x48\x89\xc7\xb8\x27\x00\x00\x00\x0f\x05", MARKER_END);
	/* Nobody stopped us there: the recorder is gone. Back to the interrupted call. */
	n = put_mov(code, n, 0x48, 0xbf, r->rdi);
	n = put_mov(code, n, 0x48, 0xbe, r->rsi);
	n = put_mov(code, n, 0x48, 0xba, r->rdx);
	n = put_mov(code, n, 0x49, 0xba, r->r10);
	n = put_mov(code, n, 0x49, 0xb8, r->r8);
	n = put_mov(code, n, 0x49, 0xb9, r->r9);
	n = put_mov(code, n, 0x48, 0xbb, r->rbx);
	n = put_mov(code, n, 0x48, 0xbd, r->rbp);
	n = put_mov(code, n, 0x49, 0xbc, r->r12);
	n = put_mov(code, n, 0x49, 0xbd, r->r13);
	n = put_mov(code, n, 0x49, 0xbe, r->r14);
	n = put_mov(code, n, 0x49, 0xbf, r->r15);
	n = put_mov(code, n, 0x48, 0xb8, r->orig_rax);
	n = put_mov(code, n, 0x48, 0xbc, r->rsp);
	/* jmp [rip+0] to the system call instruction, which runs it again */
	uint64_t again = r->rip - 2;
	n = put(code, n, "\xff\x25\x00\x00\x00\x00", 6);
	n = put(code, n, &again, 8);
	int e = ld_inject_write(in, addr, code, n);
	if (e == 0)
		in->tramp = addr;
	return e;
}

int ld_inject_call(struct ld_inject *in, uint64_t fn, const uint64_t *args, int nargs, int timeout_ms,
		   uint64_t *ret)
{
	if (in->gone)
		return -ESRCH;
	if (!in->stopped || nargs > 6)
		return -EINVAL;
	struct user_regs_struct r = in->saved;
	/* Below the interrupted code's red zone, 16-byte aligned at the call. */
	uint64_t sp = ((in->saved.rsp - 512) & ~(uint64_t)15) - 8;
	uint64_t back = in->tramp;
	int e = ld_inject_write(in, sp, &back, sizeof(back));
	if (e < 0)
		return e;
	unsigned long long *slots[6] = { &r.rdi, &r.rsi, &r.rdx, &r.rcx, &r.r8, &r.r9 };
	for (int i = 0; i < nargs; i++)
		*slots[i] = args[i];
	r.rsp = sp;
	r.rip = fn;
	r.rax = 0;
	/* No system call to restart on the way (nor, at the marker, to make). */
	r.orig_rax = (unsigned long long)-1;
	r.eflags &= ~(1ull << 10);         /* the ABI's clear direction flag */
	if (ptrace(PTRACE_SETREGS, in->tid, NULL, &r) < 0)
		return -errno;
	int sig = 0;
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	/* With a trampoline, its marker is a system call: stop at each one. */
	int resume = in->tramp ? PTRACE_SYSCALL : PTRACE_CONT;
	in->at_marker = false;
	for (;;) {
		if (ptrace(resume, in->tid, NULL, (void *)(long)sig) < 0) {
			in->gone = errno == ESRCH;
			return -errno;
		}
		in->stopped = false;
		sig = 0;
		int st;
		pid_t w;
		while ((w = waitpid(in->tid, &st, __WALL | WNOHANG)) == 0) {
			if (now_ms() >= deadline) {
				ptrace(PTRACE_INTERRUPT, in->tid, NULL, NULL);
				if (wait_stop(in->tid, &st) == 0 && WIFSTOPPED(st))
					in->stopped = true;
				else
					in->gone = true;
				if (in->tramp && in->stopped) {
					/*
					 * Abandoning the call half way could leave a lock
					 * taken: let it run to its end instead, as if the
					 * recorder had died; the trampoline takes the
					 * thread back to its wait.
					 */
					int pass = (st >> 16) == PTRACE_EVENT_STOP ? 0 : WSTOPSIG(st);
					if (pass == (SIGTRAP | 0x80))
						pass = 0; /* a system-call stop, no signal */
					ptrace(PTRACE_DETACH, in->tid, NULL, (void *)(long)pass);
					in->gone = true;
				}
				return -ETIMEDOUT;
			}
			nanosleep(&(struct timespec){ 0, 200 * 1000 }, NULL);
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 || WIFEXITED(st) || WIFSIGNALED(st)) {
			in->gone = true;
			return -ESRCH;
		}
		in->stopped = true;
		if ((st >> 16) == PTRACE_EVENT_STOP)
			continue; /* a group stop or our own interrupt: carry on */
		sig = WSTOPSIG(st);
		if (sig == (SIGTRAP | 0x80)) {
			struct user_regs_struct now;
			sig = 0;
			if (ptrace(PTRACE_GETREGS, in->tid, NULL, &now) == 0 && in->tramp &&
			    now.rip == in->tramp + MARKER_END && now.orig_rax == 39 && (long)now.rax == -ENOSYS) {
				*ret = now.rdi;
				in->at_marker = true;
				return 0;
			}
			continue; /* a system call of the function's own */
		}
		if (sig == SIGSEGV && !in->tramp) {
			struct user_regs_struct now;
			siginfo_t si;
			if (ptrace(PTRACE_GETREGS, in->tid, NULL, &now) == 0 && now.rip == 0 &&
			    ptrace(PTRACE_GETSIGINFO, in->tid, NULL, &si) == 0 && si.si_addr == NULL) {
				*ret = now.rax;
				return 0;
			}
		}
		/* Any other signal reaches the program as it would without us. */
	}
}

int ld_inject_end(struct ld_inject *in)
{
	if (!in)
		return 0;
	int r = 0;
	/*
	 * At the marker the thread is on its way into getpid: with the saved
	 * registers it makes its own interrupted system call again instead,
	 * and returns where it would have. Elsewhere (a stop in a signal's
	 * delivery) the kernel restarts that call as after any stop.
	 */
	if (!in->gone && in->stopped) {
		if (ptrace(PTRACE_SETREGS, in->tid, NULL, &in->saved) < 0)
			r = -errno;
		struct iovec iov = { in->xstate, in->xstate_len };
		if (in->xsave ? ptrace(PTRACE_SETREGSET, in->tid, (void *)NT_X86_XSTATE, &iov) < 0
			      : ptrace(PTRACE_SETFPREGS, in->tid, NULL, in->xstate) < 0)
			r = r ? r : -errno;
		ptrace(PTRACE_DETACH, in->tid, NULL, NULL);
	} else if (!in->gone) {
		ptrace(PTRACE_DETACH, in->tid, NULL, NULL);
	}
	free(in->xstate);
	free(in);
	return r;
}

#else

int ld_inject_begin(pid_t pid, struct ld_inject **out)
{
	(void)pid;
	*out = NULL;
	return -ENOSYS;
}

int ld_inject_call(struct ld_inject *in, uint64_t fn, const uint64_t *args, int nargs, int timeout_ms,
		   uint64_t *ret)
{
	(void)in, (void)fn, (void)args, (void)nargs, (void)timeout_ms, (void)ret;
	return -ENOSYS;
}

int ld_inject_write(struct ld_inject *in, uint64_t addr, const void *data, size_t len)
{
	(void)in, (void)addr, (void)data, (void)len;
	return -ENOSYS;
}

int ld_inject_trampoline(struct ld_inject *in, uint64_t addr)
{
	(void)in, (void)addr;
	return -ENOSYS;
}

int ld_inject_read_string(struct ld_inject *in, uint64_t addr, char *buf, size_t len)
{
	(void)in, (void)addr, (void)buf, (void)len;
	return -ENOSYS;
}

int ld_inject_end(struct ld_inject *in)
{
	(void)in;
	return 0;
}

#endif
