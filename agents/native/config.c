/*
 * The native agent's settings (struct ld_config): read from the environment
 * when the agent is preloaded, or from one string when it is given its
 * settings some other way (attaching to a running process).
 *
 * The environment variables are those of leakdiff-protocol(7). Unless
 * LEAKDIFF_FOLLOW_EXEC=1, reading them also removes them and this library's
 * LD_PRELOAD entry, so that programs the target runs are not traced.
 *
 * The string form is a comma-separated list of KEY=VALUE items with no
 * spaces (a key given twice takes its last value), e.g.
 *
 *     fd=5,pipe=2049:123456,depth=16,sample=4096,signal=12,peak=1,follow_exec=0
 *
 * with the keys fd (descriptor of the recorder's pipe), pipe (its DEV:INO),
 * depth, sample, signal, peak and follow_exec, whose values are checked
 * exactly as those of LEAKDIFF_FD, LEAKDIFF_PIPE, LEAKDIFF_DEPTH,
 * LEAKDIFF_SAMPLE, LEAKDIFF_SIGNAL, LEAKDIFF_PEAK and LEAKDIFF_FOLLOW_EXEC
 * are; an empty value means the
 * default. An unknown key or an item without '=' is reported as a problem
 * and skipped.
 *
 * Attaching to a running process (attach.c) adds two keys, out (the path of
 * the FIFO the stream goes to) and in (the path of the FIFO requests come
 * from); they are only stored here, attach.c opens and checks them. Paths
 * cannot hold ',' (the recorder picks them so; see leakdiff-protocol(7)).
 *
 * Bad values never stop the agent: the default is kept and a message is
 * queued in the config for a log frame. Nothing here allocates except what
 * glibc's setenv() and unsetenv() do.
 */
#include <dlfcn.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent.h"

void ld_cat_num(char *buf, size_t cap, long v)
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

void ld_cat_str(char *buf, size_t cap, const char *s)
{
	size_t len = strlen(buf), n = strlen(s);
	if (n > cap - 1 - len)
		n = cap - 1 - len;
	memcpy(buf + len, s, n);
	buf[len + n] = '\0';
}

void ld_config_problem(struct ld_config *c, const char *msg)
{
	if (c->nproblems < (int)(sizeof(c->problems) / sizeof(c->problems[0]))) {
		size_t n = strnlen(msg, sizeof(c->problems[0]) - 1);
		memcpy(c->problems[c->nproblems], msg, n);
		c->problems[c->nproblems][n] = '\0';
		c->nproblems++;
	}
}

/* A problem message made of the setting's name and the rest. */
static void problem_about(struct ld_config *c, const char *name, const char *rest)
{
	char msg[256] = "";
	ld_cat_str(msg, sizeof(msg), name);
	ld_cat_str(msg, sizeof(msg), rest);
	ld_config_problem(c, msg);
}

void ld_config_init(struct ld_config *c)
{
	memset(c, 0, sizeof(*c));
	c->pipe.fd = -1;
	c->request.fd = -1;
	c->depth = LD_AGENT_DEFAULT_DEPTH;
	c->signum = SIGUSR2;
}

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

/*
 * The pipe named by a descriptor and its "DEV:INO": true and *out set when
 * both are valid, false (and *out left alone) otherwise.
 */
static bool parse_pipe(struct ld_pipe *out, const char *s_fd, const char *s_pipe)
{
	uint64_t fd = 0, dev = 0, ino = 0;
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
	if (!have_pipe)
		return false;
	out->fd = (int)fd;
	out->dev = (dev_t)dev;
	out->ino = (ino_t)ino;
	return true;
}

/* The recorder's pipe: true and c->pipe set when valid. */
static bool set_pipe(struct ld_config *c, const char *s_fd, const char *s_pipe)
{
	return parse_pipe(&c->pipe, s_fd, s_pipe);
}

/* The value settings: s NULL or empty keeps the default. */
static void set_depth(struct ld_config *c, const char *name, const char *s)
{
	uint64_t v;
	if (!s || !*s)
		return;
	if (parse_u64(s, &v) && v >= 1) {
		c->depth = v > LD_AGENT_MAX_DEPTH ? LD_AGENT_MAX_DEPTH : (uint32_t)v;
	} else {
		char rest[96] = " is not a positive whole number; using ";
		ld_cat_num(rest, sizeof(rest), LD_AGENT_DEFAULT_DEPTH);
		ld_cat_str(rest, sizeof(rest), " frames");
		problem_about(c, name, rest);
	}
}

static void set_signal(struct ld_config *c, const char *name, const char *s)
{
	uint64_t v;
	if (!s || !*s)
		return;
	if (parse_u64(s, &v) && v >= 1 && v < (uint64_t)NSIG && v != SIGKILL && v != SIGSTOP) {
		c->signum = (int)v;
	} else {
		c->signum = 0;
		problem_about(c, name, " is not a signal number that can be caught; snapshots on signal are off");
	}
}

static void set_sample(struct ld_config *c, const char *name, const char *s)
{
	uint64_t v;
	if (!s || !*s)
		return;
	if (parse_u64(s, &v) && v <= (UINT64_C(1) << 40))
		c->sample = v;
	else
		problem_about(c, name, " is not a number of bytes up to 1 TiB; every allocation is recorded");
}

/* ------------------------------------------------------------ environment */

static const char *const own_vars[] = {
	"LEAKDIFF_FD", "LEAKDIFF_PIPE", "LEAKDIFF_DEPTH", "LEAKDIFF_SIGNAL",
	"LEAKDIFF_SAMPLE", "LEAKDIFF_FOLLOW_EXEC", "LEAKDIFF_PEAK",
	"LEAKDIFF_REQUEST_FD", "LEAKDIFF_REQUEST_PIPE",
};

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
		setenv("LD_PRELOAD", kept, 1); /* the caller is busy: glibc's allocation is not tracked */
	else
		unsetenv("LD_PRELOAD");
}

bool ld_config_from_env(struct ld_config *c)
{
	const char *follow = getenv("LEAKDIFF_FOLLOW_EXEC");
	c->follow_exec = follow && strcmp(follow, "1") == 0;
	bool have_pipe = set_pipe(c, getenv("LEAKDIFF_FD"), getenv("LEAKDIFF_PIPE"));
	set_depth(c, "LEAKDIFF_DEPTH", getenv("LEAKDIFF_DEPTH"));
	set_signal(c, "LEAKDIFF_SIGNAL", getenv("LEAKDIFF_SIGNAL"));
	set_sample(c, "LEAKDIFF_SAMPLE", getenv("LEAKDIFF_SAMPLE"));
	parse_pipe(&c->request, getenv("LEAKDIFF_REQUEST_FD"), getenv("LEAKDIFF_REQUEST_PIPE"));
	const char *peak = getenv("LEAKDIFF_PEAK");
	c->peak = peak && strcmp(peak, "1") == 0;
	if (!c->follow_exec) {
		for (size_t i = 0; i < sizeof(own_vars) / sizeof(own_vars[0]); i++)
			unsetenv(own_vars[i]);
		scrub_preload();
	}
	c->pipe.shared = c->follow_exec;
	return have_pipe;
}

bool ld_config_mixed_from_env(struct ld_config *c)
{
	const char *mixed = getenv("LEAKDIFF_NATIVE_MIXED");
	if (!mixed || strcmp(mixed, "1") != 0)
		return false;
	set_depth(c, "LEAKDIFF_DEPTH", getenv("LEAKDIFF_DEPTH"));
	set_sample(c, "LEAKDIFF_SAMPLE", getenv("LEAKDIFF_SAMPLE"));
	/*
	 * The environment stays as it is: the command may be a wrapper (a
	 * pyenv shim is a shell script) that runs the interpreter with exec,
	 * and the agent must come with it. The Python agent removes both
	 * variables once it has attached (_hooks.py).
	 */
	return true;
}

/* ------------------------------------------------------------ string */

/* A FIFO path of the attach keys: absolute, or the setting is dropped. */
static void set_path(char out[PATH_MAX], const char *name, const char *s, struct ld_config *c)
{
	if (s[0] != '/' || strlen(s) >= PATH_MAX) {
		out[0] = '\0';
		problem_about(c, name, " is not an absolute path; it is ignored");
		return;
	}
	strcpy(out, s);
}

bool ld_config_parse(struct ld_config *c, const char *s)
{
	/* Values are kept until the end: fd and pipe only make sense together. */
	char fd[32] = "", pipe[64] = "";
	bool have_fd = false, have_pipe = false;
	while (s && *s) {
		size_t len = strcspn(s, ",");
		/* Room for a path of out= or in=. */
		char item[PATH_MAX + 16];
		if (len >= sizeof(item)) {
			ld_config_problem(c, "a setting is too long; it is ignored");
		} else if (len) {
			memcpy(item, s, len);
			item[len] = '\0';
			char *eq = strchr(item, '=');
			if (!eq) {
				problem_about(c, item, " is not KEY=VALUE; it is ignored");
			} else {
				*eq = '\0';
				const char *key = item, *val = eq + 1;
				if (strcmp(key, "fd") == 0 && strlen(val) < sizeof(fd)) {
					strcpy(fd, val);
					have_fd = true;
				} else if (strcmp(key, "pipe") == 0 && strlen(val) < sizeof(pipe)) {
					strcpy(pipe, val);
					have_pipe = true;
				} else if (strcmp(key, "depth") == 0) {
					set_depth(c, key, val);
				} else if (strcmp(key, "sample") == 0) {
					set_sample(c, key, val);
				} else if (strcmp(key, "signal") == 0) {
					set_signal(c, key, val);
				} else if (strcmp(key, "peak") == 0) {
					c->peak = strcmp(val, "1") == 0;
				} else if (strcmp(key, "follow_exec") == 0) {
					c->follow_exec = strcmp(val, "1") == 0;
				} else if (strcmp(key, "out") == 0) {
					set_path(c->attach_out, key, val, c);
				} else if (strcmp(key, "in") == 0) {
					set_path(c->attach_in, key, val, c);
				} else if (strcmp(key, "fd") != 0 && strcmp(key, "pipe") != 0) {
					problem_about(c, key, " is not a setting of the agent; it is ignored");
				}
			}
		}
		s += len;
		if (*s)
			s++;
	}
	c->pipe.shared = c->follow_exec;
	return have_fd && have_pipe && set_pipe(c, fd, pipe);
}
