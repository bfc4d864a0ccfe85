/*
 * leakdiff record --pid (see attach.h): the checks that make a failure a
 * one-line message before anything is done to the target, the private
 * FIFO directory of the attach contract, loading the agent (inject.c) and
 * the loop that asks for snapshots until detach.
 *
 * Loading, per runtime:
 * - Python: the agent must start where the interpreter can run Python
 *   code, never inside malloc or a collection. The borrowed thread is one
 *   blocked in an idle system call, holding no lock (never one blocked in
 *   futex, which may be waiting inside malloc or for the GIL itself:
 *   inject.c says why); it takes the GIL (PyGILState_Ensure, as a thread
 *   coming back from a blocking call would), runs a two-line bootstrap with PyRun_SimpleString that starts
 *   a new thread, gives the GIL back and returns to its wait. The new
 *   thread execs boot/leakdiff_attach.py by its absolute path, which loads
 *   the agent. A pending call (Py_AddPendingCall) would wait for the main
 *   thread's next bytecode, which a main thread blocked in accept() or
 *   read() never reaches; here any idle thread does. The bootstrap's text
 *   goes in a page the target maps for us with its own mmap (one system
 *   call, no lock, nothing taken from its heap), unmapped before we let
 *   go: PyRun_SimpleString has compiled it by then.
 * - native: dlopen of libleakdiff.so and ld_attach_start(settings), both
 *   returning before we let go; the settings go in a page mapped the same
 *   way and unmapped after.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attach.h"
#include "buf.h"
#include "cli.h"
#include "escape.h"
#include "inject.h"
#include "launch.h"
#include "recorder.h"

/* How long the Python main thread may take to reach its next bytecode. */
#define HELLO_PYTHON_MS 10000
#define HELLO_NATIVE_MS 5000
/* The Python loader's bootstrap, below the agent's directory. */
#define BOOT_FILE "/boot/leakdiff_attach.py"
/* How long a call in the target may take, unless o->call_ms says. */
#define CALL_MS_DEFAULT 10000
static int call_limit = CALL_MS_DEFAULT;
#define CALL_MS call_limit
/* How long the last snapshot may take before the recorder lets go anyway. */
#define DETACH_WAIT_MS 120000
/* As in cmd-record.c: an --every request unanswered this long is asked again. */
#define STALE_REQUEST_MS 5000

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ the target */

struct target {
	pid_t pid;
	char state;     /* from /proc/PID/status: R, S, Z, ... */
	pid_t tracer;
	uid_t uid;      /* effective */
	gid_t gid;
	gid_t groups[64]; /* supplementary, as many as fit */
	size_t ngroups;
	char exe[PATH_MAX];
	char **cmd;     /* its command line, for the snapshots' meta */
	size_t ncmd;
};

static void target_free(struct target *t)
{
	for (size_t i = 0; i < t->ncmd; i++)
		free(t->cmd[i]);
	free(t->cmd);
}

/* Reads /proc/PID/status and the rest; -ESRCH when there is no such process. */
static int target_read(pid_t pid, struct target *t)
{
	memset(t, 0, sizeof(*t));
	t->pid = pid;
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -ESRCH;
	unsigned long ruid, euid, rgid, egid;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "State:", 6) == 0)
			sscanf(line + 6, " %c", &t->state);
		else if (strncmp(line, "TracerPid:", 10) == 0)
			t->tracer = (pid_t)atoi(line + 10);
		else if (sscanf(line, "Uid: %lu %lu", &ruid, &euid) == 2)
			t->uid = (uid_t)euid;
		else if (sscanf(line, "Gid: %lu %lu", &rgid, &egid) == 2)
			t->gid = (gid_t)egid;
		else if (strncmp(line, "Groups:", 7) == 0) {
			char *p = line + 7, *end;
			for (unsigned long g; t->ngroups < sizeof(t->groups) / sizeof(t->groups[0]); p = end) {
				g = strtoul(p, &end, 10);
				if (end == p)
					break;
				t->groups[t->ngroups++] = (gid_t)g;
			}
		}
	}
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(path, t->exe, sizeof(t->exe) - 1);
	t->exe[n > 0 ? n : 0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		char buf[8192];
		ssize_t len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len > 0) {
			buf[len] = '\0';
			for (ssize_t i = 0; i < len; i += (ssize_t)strlen(buf + i) + 1) {
				char **v = realloc(t->cmd, (t->ncmd + 1) * sizeof(*v));
				if (!v)
					break;
				t->cmd = v;
				if (!(t->cmd[t->ncmd] = strdup(buf + i)))
					break;
				t->ncmd++;
			}
		}
	}
	return 0;
}

static bool have_cap(const char *field, int cap)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return false;
	char line[256];
	unsigned long long v = 0;
	size_t n = strlen(field);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			v = strtoull(line + n + 1, NULL, 16);
	fclose(f);
	return (v >> cap) & 1;
}

static int ptrace_scope(void)
{
	FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
	int v = -1;
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static const char *user_name(uid_t uid, char *buf, size_t n)
{
	struct passwd *pw = getpwuid(uid);
	if (pw)
		snprintf(buf, n, "%s (uid %lu)", pw->pw_name, (unsigned long)uid);
	else
		snprintf(buf, n, "uid %lu", (unsigned long)uid);
	return buf;
}

/*
 * Why we may not trace t, as a message, or NULL when nothing says so
 * before trying. After a refused PTRACE_SEIZE (refused true) there is
 * always an answer.
 */
static const char *why_no_permission(const struct target *t, bool refused, char *msg, size_t n)
{
	const int cap_sys_ptrace = 19;
	bool cap = have_cap("CapEff", cap_sys_ptrace);
	int scope = ptrace_scope();
	char who[128], me[128];
	if (scope == 3)
		snprintf(msg, n, "no permission to trace %d: kernel.yama.ptrace_scope is 3, which forbids "
			 "tracing any process until the next boot", (int)t->pid);
	else if (!cap && t->uid != geteuid())
		snprintf(msg, n, "no permission to trace %d: it belongs to %s and leakdiff runs as %s without "
			 "CAP_SYS_PTRACE; run leakdiff as that user or as root", (int)t->pid,
			 user_name(t->uid, who, sizeof(who)), user_name(geteuid(), me, sizeof(me)));
	else if (!cap && scope == 2)
		snprintf(msg, n, "no permission to trace %d: kernel.yama.ptrace_scope is 2, which lets only "
			 "root (CAP_SYS_PTRACE) trace; run leakdiff as root", (int)t->pid);
	else if (!cap && scope == 1)
		snprintf(msg, n, "no permission to trace %d: kernel.yama.ptrace_scope is 1, which lets a "
			 "process trace only its own children; run leakdiff as root, give it CAP_SYS_PTRACE "
			 "(setcap cap_sys_ptrace+ep), or allow it with 'sysctl kernel.yama.ptrace_scope=0'",
			 (int)t->pid);
	else if (!refused)
		return NULL;
	else if (!have_cap("CapBnd", cap_sys_ptrace))
		snprintf(msg, n, "no permission to trace %d: this container has no CAP_SYS_PTRACE "
			 "(start it with --cap-add=SYS_PTRACE)", (int)t->pid);
	else
		snprintf(msg, n, "no permission to trace %d: the kernel refused (a setuid or non-dumpable "
			 "process, or a security module such as SELinux or AppArmor)", (int)t->pid);
	return msg;
}

/* Whether the process's executable has no program interpreter (is static). */
static bool is_static(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	unsigned char eh[64];
	bool interp = false, elf = read(fd, eh, sizeof(eh)) == (ssize_t)sizeof(eh) && memcmp(eh, "\177ELF", 4) == 0 &&
				  eh[4] == 2;
	if (elf) {
		uint64_t phoff;
		uint16_t phentsize, phnum;
		memcpy(&phoff, eh + 32, 8);
		memcpy(&phentsize, eh + 54, 2);
		memcpy(&phnum, eh + 56, 2);
		for (unsigned i = 0; i < phnum && phentsize >= 4; i++) {
			uint32_t type;
			if (pread(fd, &type, 4, (off_t)(phoff + (uint64_t)i * phentsize)) == 4 && type == 3 /* PT_INTERP */)
				interp = true;
		}
	}
	close(fd);
	return elf && !interp;
}

/* ------------------------------------------------------------ the FIFO directory */

struct fifos {
	char dir[PATH_MAX], events[PATH_MAX + 16], requests[PATH_MAX + 16];
	bool made_dir, made_events, made_requests;
};

static void fifos_remove(struct fifos *f)
{
	if (f->made_events)
		unlink(f->events);
	if (f->made_requests)
		unlink(f->requests);
	if (f->made_dir)
		rmdir(f->dir);
	f->made_dir = f->made_events = f->made_requests = false;
}

/* The contract's directory and FIFOs, owned by the target's user; 0 or -errno. */
static int fifos_make(struct fifos *f, const struct target *t)
{
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp || tmp[0] != '/' || strpbrk(tmp, ",=") || strlen(tmp) > PATH_MAX - 64)
		tmp = "/tmp";
	snprintf(f->dir, sizeof(f->dir), "%s/leakdiff-attach.XXXXXX", tmp);
	if (!mkdtemp(f->dir)) {
		if (strcmp(tmp, "/tmp") == 0)
			return -errno;
		snprintf(f->dir, sizeof(f->dir), "/tmp/leakdiff-attach.XXXXXX");
		if (!mkdtemp(f->dir))
			return -errno;
	}
	f->made_dir = true;
	snprintf(f->events, sizeof(f->events), "%s/events", f->dir);
	snprintf(f->requests, sizeof(f->requests), "%s/requests", f->dir);
	if (mkfifo(f->events, 0600) < 0)
		return -errno;
	f->made_events = true;
	if (mkfifo(f->requests, 0600) < 0)
		return -errno;
	f->made_requests = true;
	/* The target opens them as itself; only it and we may. */
	if (geteuid() != t->uid || getegid() != t->gid)
		if (chown(f->events, t->uid, t->gid) < 0 || chown(f->requests, t->uid, t->gid) < 0 ||
		    chown(f->dir, t->uid, t->gid) < 0)
			return -errno;
	if (chmod(f->dir, 0700) < 0)
		return -errno;
	return 0;
}

/* ------------------------------------------------------------ loading */

/* Appends s as a Python string literal. */
static void py_literal(struct ld_buf *b, const char *s)
{
	ld_buf_putc(b, '\'');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\\' || *p == '\'')
			ld_buf_printf(b, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			ld_buf_printf(b, "\\x%02x", *p);
		else
			ld_buf_putc(b, (char)*p);
	}
	ld_buf_putc(b, '\'');
}

/* The agent's settings string (agents/native/config.c's form, plus out= and in=). */
static void settings(struct ld_buf *b, const struct ld_attach_opts *o, const struct fifos *f, bool python,
		     const char *ext_dir)
{
	ld_buf_printf(b, "out=%s,in=%s,depth=%u", f->events, f->requests, o->launch.depth);
	if (o->launch.sample)
		ld_buf_printf(b, ",sample=%llu", (unsigned long long)o->launch.sample);
	if (o->launch.peak)
		ld_buf_puts(b, ",peak=1");
	if (python && o->launch.tracemalloc)
		ld_buf_puts(b, ",tracer=tracemalloc");
	if (python && ext_dir && *ext_dir && !strpbrk(ext_dir, ",="))
		ld_buf_printf(b, ",ext=%s", ext_dir);
}

/* Messages of a failed load go here; returns -1. */
__attribute__((format(printf, 3, 4))) static int load_failed(char *msg, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, n, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *inject_error(int e, char *buf, size_t n)
{
	if (e == -EBUSY)
		return "no thread of it was waiting in a system call where the agent can safely be loaded "
		       "(all computing, or all waiting on locks?); try again";
	if (e == -ENOSYS)
		return "attaching is implemented for x86-64 Linux only";
	snprintf(buf, n, "%s", strerror(-e));
	return buf;
}

/* The mapped page: inject.c's trampoline, the Python stub, then the text. */
#define STUB_AT 256
#define TEXT_AT 512

/*
 * Maps a page in the target (its own mmap, called in the borrowed thread),
 * puts inject.c's trampoline at its start, so that a recorder killed
 * during the calls that follow leaves the thread going, and writes text at
 * TEXT_AT. The page is read-only and executable for the target: ptrace
 * writes it anyway. 0 with the page's address, or -1 with msg.
 */
static int map_text(struct ld_inject *in, pid_t pid, const char *text, size_t len, uint64_t *page, size_t *maplen,
		    bool *exec_page, char *msg, size_t n)
{
	uint64_t mmap_fn = ld_inject_symbol(pid, "libc.so", "mmap");
	if (!mmap_fn)
		return load_failed(msg, n, "cannot find mmap in the target's C library");
	*maplen = (TEXT_AT + len + 4096) & ~(size_t)4095;
	uint64_t args[6] = { 0, *maplen, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0 };
	uint64_t got = 0;
	int e = ld_inject_call(in, mmap_fn, args, 6, CALL_MS, &got);
	bool exec = e == 0 && got < (uint64_t)-4096;
	if (e == 0 && !exec) {
		/* No executable anonymous memory here (a hardened system): no trampoline. */
		args[2] = PROT_READ | PROT_WRITE;
		e = ld_inject_call(in, mmap_fn, args, 6, CALL_MS, &got);
	}
	if (e < 0 || got >= (uint64_t)-4096)
		return load_failed(msg, n, "mmap in the target failed: %s", e < 0 ? strerror(-e) : "no memory");
	*page = got;
	*exec_page = exec;
	if ((exec && (e = ld_inject_trampoline(in, got)) < 0) ||
	    (e = ld_inject_write(in, got + TEXT_AT, text, len + 1)) < 0)
		return load_failed(msg, n, "cannot write into the target: %s", strerror(-e));
	return 0;
}

/* Unmaps the page, returning to address 0 since the trampoline goes with it. */
static void unmap_text(struct ld_inject *in, pid_t pid, uint64_t page, size_t maplen)
{
	uint64_t munmap_fn = ld_inject_symbol(pid, "libc.so", "munmap");
	uint64_t args[2] = { page, maplen }, got;
	ld_inject_trampoline(in, 0);
	if (page && munmap_fn)
		ld_inject_call(in, munmap_fn, args, 2, CALL_MS, &got);
}

static size_t put64(unsigned char *code, size_t at, const char *op, uint64_t v)
{
	memcpy(code + at, op, 2);
	memcpy(code + at + 2, &v, 8);
	return at + 10;
}

/*
 * The Python bootstrap's three calls as one function in the page:
 * state = PyGILState_Ensure(); r = PyRun_SimpleString(text);
 * PyGILState_Release(state); return r. As one call, a recorder killed
 * while the thread waits for the GIL cannot leave the GIL taken and never
 * given back: the stub runs to its end and the trampoline takes the
 * thread back to its wait.
 */
static int write_stub(struct ld_inject *in, uint64_t at, uint64_t ensure, uint64_t run, uint64_t release,
		      uint64_t text)
{
	unsigned char c[128];
	size_t n = 0;
	memcpy(c + n, "\x53\x41\x54\x48\x83\xec\x08", 7); /* push rbx; push r12; sub rsp, 8 */
	n += 7;
	n = put64(c, n, "\x48\xb8", ensure);                 /* mov rax, PyGILState_Ensure */
	memcpy(c + n, "\xff\xd0\x89\xc3", 4);              /* call rax; mov ebx, eax */
	n += 4;
	n = put64(c, n, "\x48\xbf", text);                   /* mov rdi, text */
	n = put64(c, n, "\x48\xb8", run);                    /* mov rax, PyRun_SimpleString */
	memcpy(c + n, "\xff\xd0\x41\x89\xc4\x89\xdf", 7);  /* call rax; mov r12d, eax; mov edi, ebx */
	n += 7;
	n = put64(c, n, "\x48\xb8", release);                /* mov rax, PyGILState_Release */
	/* call rax; mov eax, r12d; add rsp, 8; pop r12; pop rbx; ret */
	memcpy(c + n, "\xff\xd0\x44\x89\xe0\x48\x83\xc4\x08\x41\x5c\x5b\xc3", 13);
	n += 13;
	return ld_inject_write(in, at, c, n);
}

static int load_python(const struct ld_attach_opts *o, const struct fifos *f, const char *agent_dir,
		       const char *ext_dir, char *msg, size_t n)
{
	pid_t pid = o->pid;
	uint64_t inited = ld_inject_symbol(pid, NULL, "Py_IsInitialized");
	uint64_t ensure = ld_inject_symbol(pid, NULL, "PyGILState_Ensure");
	uint64_t release = ld_inject_symbol(pid, NULL, "PyGILState_Release");
	uint64_t run = ld_inject_symbol(pid, NULL, "PyRun_SimpleString");
	uint64_t finalizing = ld_inject_symbol(pid, NULL, "Py_IsFinalizing");
	if (!finalizing)
		finalizing = ld_inject_symbol(pid, NULL, "_Py_IsFinalizing");
	if (!inited || !ensure || !release || !run)
		return load_failed(msg, n, "the target does not export the Python C API (a static build of Python?)");
	char boot[PATH_MAX + 64];
	snprintf(boot, sizeof(boot), "%s" BOOT_FILE, agent_dir);
	struct ld_buf b, s;
	ld_buf_init(&b);
	ld_buf_init(&s);
	settings(&s, o, f, true, ext_dir);
	/*
	 * Runs in __main__'s namespace, so it binds no name there, and only
	 * starts a thread: the agent loads in that thread of its own, at
	 * bytecode boundaries like any Python code, while the borrowed thread
	 * is already given back. A Ctrl-C that lands meanwhile is passed on;
	 * nothing else reaches the program (PyRun_SimpleString would print it,
	 * or exit on SystemExit).
	 */
	ld_buf_puts(&b, "try:\n    __import__('_thread').start_new_thread(exec,(compile(open(");
	py_literal(&b, boot);
	ld_buf_puts(&b, ",'rb').read(),");
	py_literal(&b, boot);
	ld_buf_puts(&b, ",'exec'),{'__name__':'__leakdiff_attach__','__file__':");
	py_literal(&b, boot);
	ld_buf_puts(&b, ",'SETTINGS':");
	py_literal(&b, s.data ? s.data : "");
	ld_buf_puts(&b, "}))\nexcept KeyboardInterrupt:\n    __import__('_thread').interrupt_main()\n"
			"except BaseException:\n    pass\n");
	ld_buf_finish(&s);
	if (b.oom) {
		ld_buf_finish(&b);
		return load_failed(msg, n, "out of memory");
	}
	struct ld_inject *in;
	int e = ld_inject_begin(pid, &in);
	if (e < 0) {
		char buf[256];
		ld_buf_finish(&b);
		return load_failed(msg, n, "cannot stop a thread of the target: %s", inject_error(e, buf, sizeof(buf)));
	}
	uint64_t page = 0, got = 0, state = 0;
	size_t maplen = 0;
	bool exec_page = false;
	int r = map_text(in, pid, b.data, b.len, &page, &maplen, &exec_page, msg, n);
	if (r == 0 && ((e = ld_inject_call(in, inited, NULL, 0, CALL_MS, &got)) < 0 || (int)got == 0))
		r = load_failed(msg, n, "the interpreter is not running: %s", e < 0 ? strerror(-e) : "not initialised");
	if (r == 0 && finalizing && ((e = ld_inject_call(in, finalizing, NULL, 0, CALL_MS, &got)) < 0 || (int)got))
		r = load_failed(msg, n, "the interpreter is shutting down");
	/*
	 * The thread was waiting in a system call, holding no lock of the C
	 * library; it takes the GIL as any thread coming back from a blocking
	 * call does (it already holds it when it slept holding it).
	 */
	if (r == 0 && exec_page) {
		if ((e = write_stub(in, page + STUB_AT, ensure, run, release, page + TEXT_AT)) < 0 ||
		    (e = ld_inject_call(in, page + STUB_AT, NULL, 0, CALL_MS, &got)) < 0)
			r = e == -ETIMEDOUT
				? load_failed(msg, n, "the loader did not get the GIL within %d ms (a thread of the "
					      "target holds it in a long C call); it was left to finish on its own, "
					      "and the agent it starts will find no recorder and stay out", CALL_MS)
				: load_failed(msg, n, "running the bootstrap in the target failed: %s", strerror(-e));
	} else if (r == 0) {
		/* No executable page for the stub: the same three calls one by one. */
		if ((e = ld_inject_call(in, ensure, NULL, 0, CALL_MS, &state)) < 0)
			r = load_failed(msg, n, "cannot take the GIL in the target: %s", strerror(-e));
		uint64_t args[1] = { page + TEXT_AT };
		if (r == 0 && (e = ld_inject_call(in, run, args, 1, CALL_MS, &got)) == 0) {
			uint64_t rel[1] = { (uint64_t)(int)state }, ignored;
			e = ld_inject_call(in, release, rel, 1, CALL_MS, &ignored);
		}
		if (r == 0 && e < 0)
			r = load_failed(msg, n, "running the bootstrap in the target failed: %s", strerror(-e));
	}
	if (r == 0 && (int)got != 0)
		r = load_failed(msg, n, "the interpreter could not run the bootstrap");
	unmap_text(in, pid, page, maplen);
	ld_buf_finish(&b);
	if ((e = ld_inject_end(in)) < 0 && r == 0)
		r = load_failed(msg, n, "cannot give the target's thread back its registers: %s", strerror(-e));
	return r;
}

static int load_native(const struct ld_attach_opts *o, const struct fifos *f, const char *lib, char *msg,
		       size_t n)
{
	pid_t pid = o->pid;
	uint64_t dlopen_fn = ld_inject_symbol(pid, "libc.so", "dlopen");
	if (!dlopen_fn)
		dlopen_fn = ld_inject_symbol(pid, "libdl.so", "dlopen");
	uint64_t dlerror_fn = ld_inject_symbol(pid, "libc.so", "dlerror");
	if (!dlopen_fn)
		return load_failed(msg, n, "%s: the target has no dynamic loader to load the agent with", "dlopen");
	struct ld_buf b;
	ld_buf_init(&b);
	ld_buf_puts(&b, lib);
	size_t settings_at = b.len + 1;
	ld_buf_putc(&b, '\0');
	settings(&b, o, f, false, NULL);
	if (b.oom) {
		ld_buf_finish(&b);
		return load_failed(msg, n, "%s", "out of memory");
	}
	struct ld_inject *in;
	int e = ld_inject_begin(pid, &in);
	if (e < 0) {
		char buf[128];
		ld_buf_finish(&b);
		return load_failed(msg, n, "cannot stop a thread of the target: %s", inject_error(e, buf, sizeof(buf)));
	}
	uint64_t page = 0, got = 0, addr;
	size_t maplen = 0;
	bool exec_page;
	int r = map_text(in, pid, b.data, b.len, &page, &maplen, &exec_page, msg, n);
	addr = page + TEXT_AT;
	if (r == 0) {
		uint64_t args[2] = { addr, 2 /* RTLD_NOW */ };
		e = ld_inject_call(in, dlopen_fn, args, 2, CALL_MS, &got);
		if (e < 0)
			r = load_failed(msg, n, "dlopen in the target failed: %s", strerror(-e));
		else if (!got) {
			char why[512] = "unknown error";
			uint64_t s = 0;
			if (dlerror_fn && ld_inject_call(in, dlerror_fn, NULL, 0, CALL_MS, &s) == 0 && s)
				ld_inject_read_string(in, s, why, sizeof(why));
			r = load_failed(msg, n, "the target could not load the native agent: %s", why);
		}
	}
	if (r == 0) {
		uint64_t start = ld_inject_symbol(pid, "libleakdiff.so", "ld_attach_start");
		if (!start)
			r = load_failed(msg, n, "%s has no ld_attach_start: this build's native agent cannot attach",
					lib);
		else {
			uint64_t args[1] = { addr + settings_at };
			e = ld_inject_call(in, start, args, 1, CALL_MS, &got);
			if (e < 0)
				r = load_failed(msg, n, "ld_attach_start in the target failed: %s", strerror(-e));
			else if ((int)got == -EBUSY)
				r = load_failed(msg, n, "%s", "the target already has a leakdiff agent attached");
			else if ((int)got < 0)
				r = load_failed(msg, n, "the native agent could not start: %s", strerror(-(int)got));
		}
	}
	unmap_text(in, pid, page, maplen);
	ld_buf_finish(&b);
	if ((e = ld_inject_end(in)) < 0 && r == 0)
		r = load_failed(msg, n, "cannot give the target's thread back its registers: %s", strerror(-e));
	return r;
}

/* ------------------------------------------------------------ the session */

struct session {
	const struct ld_attach_opts *o;
	struct ld_recorder *rec;
	int efd, qfd, sfd, pidfd;
	bool eof, target_gone;
	uint64_t heard_ms;
};

/* Asks the agent for a snapshot on the request channel (attach always has one). */
static bool ask(struct session *s, const char *trigger)
{
	return ld_cli_request_snapshot(s->qfd, trigger);
}

static void drain(struct session *s)
{
	char buf[65536];
	for (;;) {
		ssize_t len = read(s->efd, buf, sizeof(buf));
		if (len < 0 && errno == EINTR)
			continue;
		if (len == 0)
			s->eof = true;
		if (len <= 0)
			return;
		ld_recorder_feed(s->rec, buf, (size_t)len);
		s->heard_ms = now_ms();
	}
}

enum wake { WAKE_NONE, WAKE_STOP, WAKE_MORE };

/*
 * Waits up to timeout_ms (-1: no limit) for bytes, a signal or the
 * target's exit. Returns WAKE_STOP for a signal that means detach,
 * WAKE_MORE for the snapshot signal.
 */
static enum wake wait_once(struct session *s, int timeout_ms)
{
	struct pollfd fds[3] = { { .fd = s->eof ? -1 : s->efd, .events = POLLIN },
				 { .fd = s->sfd, .events = POLLIN },
				 { .fd = s->pidfd, .events = POLLIN } };
	if (poll(fds, 3, timeout_ms) < 0)
		return WAKE_NONE;
	if (fds[0].revents)
		drain(s);
	if (fds[2].revents & POLLIN) {
		s->target_gone = true;
		drain(s); /* what it wrote before it went */
	}
	enum wake w = WAKE_NONE;
	struct signalfd_siginfo si;
	while (read(s->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if ((int)si.ssi_signo == s->o->launch.signal)
			w = w == WAKE_STOP ? w : WAKE_MORE;
		else
			w = WAKE_STOP;
	}
	return w;
}

static bool target_alive(const struct session *s)
{
	if (s->target_gone)
		return false;
	if (s->pidfd >= 0)
		return true;
	return kill(s->o->pid, 0) == 0 || errno == EPERM;
}

/* Runs from the hello to detach: the first snapshot, the timers and signals, the last snapshot. */
static void loop(struct session *s)
{
	const struct ld_attach_opts *o = s->o;
	const struct ld_recorder_status *st = ld_recorder_status(s->rec);
	/* The first snapshot, right away: the state of the heap at attach. */
	ld_recorder_stamp_next(s->rec, "attach", false);
	/* Marked as awaited, so that a detach before it arrives waits for it. */
	if (ask(s, "signal"))
		ld_recorder_requested(s->rec);
	s->heard_ms = now_ms();
	uint64_t start = now_ms();
	uint64_t end = o->duration_ms ? start + o->duration_ms : 0;
	uint64_t next_tick = o->every_ms ? start + o->every_ms : 0;
	for (;;) {
		if (s->eof || !target_alive(s))
			return;
		uint64_t now = now_ms();
		if (end && now >= end)
			break;
		uint64_t wake = end;
		if (next_tick && (!wake || next_tick < wake))
			wake = next_tick;
		int timeout = wake ? (int)(wake > now ? wake - now : 0) : -1;
		if (s->pidfd < 0 && (timeout < 0 || timeout > 200))
			timeout = 200; /* no pidfd: look at the target now and then */
		enum wake w = wait_once(s, timeout);
		if (w == WAKE_STOP)
			break;
		if (w == WAKE_MORE && !s->eof && ask(s, "signal"))
			ld_recorder_requested(s->rec);
		now = now_ms();
		uint64_t stale = o->every_ms * 10 > STALE_REQUEST_MS ? o->every_ms * 10 : STALE_REQUEST_MS;
		if (next_tick && st->requested && now - s->heard_ms < stale)
			next_tick = now + o->every_ms;
		else if (next_tick && now >= next_tick) {
			if (ask(s, "interval"))
				ld_recorder_requested(s->rec);
			s->heard_ms = now;
			next_tick = now + o->every_ms;
		}
	}
	/* Detach: one last snapshot, stamped as such, in the output file. */
	uint64_t deadline = now_ms() + DETACH_WAIT_MS;
	while (st->requested && !s->eof && target_alive(s) && now_ms() < deadline)
		if (wait_once(s, 100) == WAKE_STOP)
			deadline = 0; /* a second signal: let go now */
	if (s->eof || !target_alive(s) || now_ms() >= deadline)
		return;
	ld_recorder_stamp_next(s->rec, "detach", true);
	ask(s, "signal");
	while (!st->final_written && !st->final_failed && !s->eof && target_alive(s) && now_ms() < deadline)
		if (wait_once(s, 100) == WAKE_STOP)
			break;
}

/* ------------------------------------------------------------ the whole */

static int locate(const struct ld_agent *agent, char *path, size_t n, char *ext_dir, size_t en)
{
	if (agent->locate(path, n) < 0) {
		ld_cli_error(NULL, "cannot find the %s agent at %s (set LEAKDIFF_AGENT_DIR)", agent->title, path);
		return -1;
	}
	*ext_dir = '\0';
	if (agent->tracemalloc) {
		/* The Python agent's inject() names its extensions' directory in our
		 * environment, as it would for a program we started; we start none. */
		struct ld_launch_opts none = { 0 };
		if (agent->inject(path, &none) == 0 && getenv("LEAKDIFF_EXT_DIR"))
			snprintf(ext_dir, en, "%s", getenv("LEAKDIFF_EXT_DIR"));
		return 0;
	}
	/* The attachable native agent sits beside the preloaded one. */
	char *slash = strrchr(path, '/');
	if (slash)
		snprintf(slash + 1, n - (size_t)(slash + 1 - path), "libleakdiff.so");
	if (access(path, R_OK) < 0) {
		ld_cli_error(NULL, "cannot find the attachable native agent at %s (set LEAKDIFF_AGENT_DIR)", path);
		return -1;
	}
	return 0;
}

/* One path the loader in the target must reach, and how it uses it. */
struct reach {
	const char *path;
	enum { REACH_READ, REACH_DIR, REACH_LOOKUP } how;
};

/*
 * Whether the target's user can reach our files as the loader will, from
 * inside the target's root (another one in a container): a child takes
 * the target's user and groups and opens each path (or, for the FIFOs,
 * looks it up: opening one would connect to it) below /proc/PID/root.
 * Without this a Python loader that cannot read its bootstrap fails in a
 * thread of the target where nobody sees it, and the recorder can only
 * time out. Returns the index of the first path that cannot be reached,
 * with its errno in *err, or -1 when all can, or when it cannot be told
 * (the target's root is not ours to look through, fork failed): then the
 * load itself will say.
 */
static int unreachable(const struct target *t, const struct reach *paths, size_t n, int *err)
{
	char root[64];
	snprintf(root, sizeof(root), "/proc/%d/root", (int)t->pid);
	int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return -1;
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		close(rfd);
		return -1;
	}
	pid_t c = fork();
	if (c == 0) {
		int res[2] = { -1, 0 };
		bool as_target = geteuid() != t->uid || getegid() != t->gid;
		if (as_target && (setgroups(t->ngroups, t->groups) < 0 || setresgid(t->gid, t->gid, t->gid) < 0 ||
				  setresuid(t->uid, t->uid, t->uid) < 0))
			_exit(1); /* cannot tell */
		for (size_t i = 0; i < n && res[0] < 0; i++) {
			const char *rel = paths[i].path + strspn(paths[i].path, "/");
			struct stat st;
			int fd = -1, r;
			if (paths[i].how == REACH_LOOKUP)
				r = fstatat(rfd, rel, &st, 0);
			else
				r = fd = openat(rfd, rel, O_RDONLY | O_CLOEXEC |
						(paths[i].how == REACH_DIR ? O_DIRECTORY : 0));
			if (r < 0) {
				res[0] = (int)i;
				res[1] = errno;
			}
			if (fd >= 0)
				close(fd);
		}
		_exit(write(pfd[1], res, sizeof(res)) == (ssize_t)sizeof(res) ? 0 : 1);
	}
	close(rfd);
	close(pfd[1]);
	int res[2] = { -1, 0 }, status;
	bool told = c > 0 && read(pfd[0], res, sizeof(res)) == (ssize_t)sizeof(res);
	close(pfd[0]);
	if (c > 0)
		while (waitpid(c, &status, 0) < 0 && errno == EINTR)
			;
	if (!told || res[0] < 0 || (size_t)res[0] >= n)
		return -1;
	*err = res[1];
	return res[0];
}

/* The checks that need nothing of the target but a look; 0 or -1 after a message. */
static int check_target(const struct target *t)
{
	char msg[512];
	if (t->state == 'Z' || t->state == 'X') {
		ld_cli_error(NULL, "process %d is a zombie (it has exited and waits for its parent); "
			     "there is nothing to attach to", (int)t->pid);
		return -1;
	}
	if (t->tracer) {
		char comm[64] = "?", path[64];
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)t->tracer);
		FILE *f = fopen(path, "re");
		if (f) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		ld_cli_error(NULL, "process %d is already traced by process %d (%s): a debugger or another "
			     "leakdiff; detach that one first", (int)t->pid, (int)t->tracer, comm);
		return -1;
	}
	if (t->pid == getpid()) {
		ld_cli_error(NULL, "leakdiff cannot attach to itself");
		return -1;
	}
	if (why_no_permission(t, false, msg, sizeof(msg))) {
		ld_cli_error(NULL, "%s", msg);
		return -1;
	}
	if (is_static(t->pid)) {
		ld_cli_error(NULL, "process %d (%s) is statically linked: no agent can be loaded into it",
			     (int)t->pid, t->exe);
		return -1;
	}
	return 0;
}

int ld_attach_record(const struct ld_attach_opts *o)
{
	struct target t;
	if (o->call_ms)
		call_limit = o->call_ms;
	if (target_read(o->pid, &t) < 0) {
		ld_cli_error(NULL, "no process %d", (int)o->pid);
		return LD_EXIT_RECORDER;
	}
	int status = LD_EXIT_RECORDER;
	struct fifos f = { 0 };
	struct session s = { .o = o, .efd = -1, .qfd = -1, .sfd = -1, .pidfd = -1 };
	int tee = -1;
	char agent_path[PATH_MAX], ext_dir[PATH_MAX], msg[1024];
	if (check_target(&t) < 0)
		goto out;
	bool python = ld_inject_maps_has(o->pid, "libpython") || ld_launch_python_name(t.exe);
	const struct ld_agent *agent = o->agent ? o->agent : ld_launch_agent_named(python ? "python" : "native");
	python = agent->tracemalloc;
	if (o->launch.tracemalloc && !python) {
		ld_cli_error(NULL, "--tracemalloc is for Python programs; process %d is recorded as native",
			     (int)o->pid);
		goto out;
	}
	if (locate(agent, agent_path, sizeof(agent_path), ext_dir, sizeof(ext_dir)) < 0)
		goto out;
	if (o->tee && (tee = open(o->tee, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		ld_cli_error(o->tee, "%s", strerror(errno));
		goto out;
	}

	/* Signals mean detach (or one more snapshot) from here on, never death. */
	sigset_t mask;
	sigemptyset(&mask);
	ld_launch_forwarded(&mask);
	sigaddset(&mask, o->launch.signal);
	ld_launch_ignore_write_signals();
	int e;
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 || (s.sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
	    (e = fifos_make(&f, &t)) < 0 ||
	    (s.efd = open(f.events, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0 ||
	    (s.qfd = open(f.requests, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) {
		ld_cli_error(NULL, "cannot set up the channel to the agent: %s", strerror(errno));
		goto out;
	}
#ifdef SYS_pidfd_open
	s.pidfd = (int)syscall(SYS_pidfd_open, o->pid, 0);
#endif
	struct ld_recorder_config cfg = {
		.output = o->output, .command = t.cmd, .ncommand = t.ncmd, .quiet = o->quiet, .tee_fd = tee,
	};
	if (!(s.rec = ld_recorder_create(&cfg))) {
		ld_cli_error(NULL, "out of memory");
		goto out;
	}
	ld_recorder_set_target(s.rec, o->pid);

	/* What the loader in the target will open, looked at first: a failure there would be silent. */
	char boot[PATH_MAX + 64], pkg[PATH_MAX + 64];
	snprintf(boot, sizeof(boot), "%s" BOOT_FILE, agent_path);
	snprintf(pkg, sizeof(pkg), "%s/leakdiff/__init__.py", agent_path);
	struct reach need[4];
	size_t nneed = 0;
	if (python) {
		need[nneed++] = (struct reach){ boot, REACH_READ };
		need[nneed++] = (struct reach){ pkg, REACH_READ };
		if (*ext_dir)
			need[nneed++] = (struct reach){ ext_dir, REACH_DIR };
	} else {
		need[nneed++] = (struct reach){ agent_path, REACH_READ };
	}
	need[nneed++] = (struct reach){ f.events, REACH_LOOKUP };
	int err = 0, bad = unreachable(&t, need, nneed, &err);
	if (bad >= 0) {
		char who[128];
		ld_cli_error(NULL, "cannot attach to %d: its user, %s, cannot reach %s (%s) from its root; the "
			     "target must read leakdiff's agent and look up its FIFOs (install leakdiff where that "
			     "user can read it, point TMPDIR at a directory it can search, or run leakdiff in the "
			     "target's container)", (int)o->pid, user_name(t.uid, who, sizeof(who)),
			     need[bad].path, strerror(err));
		goto out;
	}
	int r = python ? load_python(o, &f, agent_path, ext_dir, msg, sizeof(msg))
		       : load_native(o, &f, agent_path, msg, sizeof(msg));
	if (r < 0) {
		char perm[512];
		if (strstr(msg, strerror(EPERM)) && why_no_permission(&t, true, perm, sizeof(perm)))
			ld_cli_error(NULL, "%s", perm);
		else if (strstr(msg, strerror(ESRCH)))
			ld_cli_error(NULL, "process %d exited before the agent was loaded", (int)o->pid);
		else
			ld_cli_error(NULL, "cannot attach to %d: %s", (int)o->pid, msg);
		goto out;
	}
	const struct ld_recorder_status *st = ld_recorder_status(s.rec);
	uint64_t deadline = now_ms() + (python ? HELLO_PYTHON_MS : HELLO_NATIVE_MS);
	bool stop = false;
	while (!st->connected && !s.eof && target_alive(&s) && now_ms() < deadline && !stop)
		stop = wait_once(&s, 100) == WAKE_STOP;
	if (!st->connected) {
		if (!target_alive(&s))
			ld_cli_error(NULL, "process %d exited before the agent started", (int)o->pid);
		else if (stop)
			ld_cli_error(NULL, "interrupted before the agent started in %d", (int)o->pid);
		else if (python)
			ld_cli_error(NULL, "the agent did not start in %d within %d s: its main thread ran no Python "
				     "code meanwhile (blocked in a long C call or a wait without timeout?)",
				     (int)o->pid, HELLO_PYTHON_MS / 1000);
		else
			ld_cli_error(NULL, "the native agent in %d never said hello", (int)o->pid);
		/* Our FIFOs go away below: an agent starting later finds nothing to open. */
		goto out;
	}
	/* The agent holds both FIFOs open: the names are no longer needed. */
	fifos_remove(&f);
	if (!o->quiet) {
		/* The executable's name is the target's to choose: escaped like any name. */
		char *exe = ld_escape_dup(t.exe, LD_ESCAPE_TEXT);
		fprintf(stderr, "leakdiff: attached to %d (%s, %s agent)\n", (int)o->pid, exe ? exe : "?", agent->title);
		free(exe);
	}
	loop(&s);
	/* The agent's end closes as its process exits, a moment before the exit is seen. */
	if (s.eof && s.pidfd >= 0 && target_alive(&s))
		for (int i = 0; i < 20 && !s.target_gone; i++)
			wait_once(&s, 50);
	bool gone = !target_alive(&s), incomplete = false;
	/* Closing both ends is the agent's signal to detach. */
	close(s.qfd);
	s.qfd = -1;
	if (gone)
		drain(&s);
	close(s.efd);
	s.efd = -1;
	ld_recorder_finish(s.rec);
	if (gone)
		fprintf(stderr, "leakdiff: process %d exited while attached; the %d snapshot%s taken are kept\n",
			(int)o->pid, st->written, st->written == 1 ? "" : "s");
	else if (s.eof && !st->final_written)
		ld_cli_error(NULL, "the agent in %d stopped before detach; the %d snapshot%s taken are kept",
			     (int)o->pid, st->written, st->written == 1 ? "" : "s");
	else if (!st->final_written) {
		ld_cli_error(NULL, "detached from %d without its last snapshot (it did not come in time, or a "
			     "second signal cut the wait short); the %d snapshot%s taken are kept", (int)o->pid,
			     st->written, st->written == 1 ? "" : "s");
		incomplete = true;
	} else if (!o->quiet)
		fprintf(stderr, "leakdiff: detached from %d\n", (int)o->pid);
	status = st->failed_writes || incomplete ? LD_EXIT_RECORDER : LD_EXIT_OK;
out:
	fifos_remove(&f);
	ld_recorder_destroy(s.rec);
	if (s.efd >= 0)
		close(s.efd);
	if (s.qfd >= 0)
		close(s.qfd);
	if (s.sfd >= 0)
		close(s.sfd);
	if (s.pidfd >= 0)
		close(s.pidfd);
	if (tee >= 0)
		close(tee);
	target_free(&t);
	return status;
}
