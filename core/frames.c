/* The rules for frames and types; see frames.h. */
#include "frames.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "diff.h"

static const char *const kind_names[] = {
	[LD_FRAME_UNKNOWN] = "",
	[LD_FRAME_PYTHON] = "python",
	[LD_FRAME_NATIVE] = "native",
	[LD_FRAME_INLINED] = "inlined",
	[LD_FRAME_OTHER] = "other",
};

const char *ld_frame_kind_name(enum ld_frame_kind k)
{
	return (unsigned)k < sizeof(kind_names) / sizeof(kind_names[0]) ? kind_names[k] : "other";
}

enum ld_frame_kind ld_frame_kind_parse(const char *name)
{
	for (int k = LD_FRAME_PYTHON; k < LD_FRAME_OTHER; k++)
		if (strcmp(name, kind_names[k]) == 0)
			return (enum ld_frame_kind)k;
	return LD_FRAME_OTHER;
}

int ld_frame_set_kind(struct ld_snapshot *s, struct ld_frame *f, enum ld_frame_kind k)
{
	if (k == LD_FRAME_UNKNOWN || k == LD_FRAME_OTHER)
		return -EINVAL;
	const char *name = kind_names[k];
	uint32_t idx;
	int r = ld_strtab_intern(&s->strings, name, strlen(name), &idx);
	if (r < 0)
		return r;
	f->kind = k;
	f->kind_name = idx;
	return 0;
}

enum ld_frame_kind ld_frame_effective_kind(const struct ld_snapshot *s, const struct ld_frame *f)
{
	if (f->kind != LD_FRAME_UNKNOWN)
		return f->kind;
	const char *rt = s->meta.runtime;
	if (rt && strcmp(rt, "python") == 0)
		return LD_FRAME_PYTHON;
	if (rt && strcmp(rt, "native") == 0)
		return LD_FRAME_NATIVE;
	return LD_FRAME_UNKNOWN;
}

bool ld_frame_is_native(const struct ld_snapshot *s, const struct ld_frame *f)
{
	enum ld_frame_kind k = ld_frame_effective_kind(s, f);
	return k == LD_FRAME_NATIVE || k == LD_FRAME_INLINED;
}

bool ld_frame_is_library(const struct ld_snapshot *s, const struct ld_frame *f)
{
	const char *file = ld_snapshot_str(s, f->file);
	if (strncmp(file, "<frozen ", 8) == 0)
		return true;
	for (size_t i = 0; i < s->meta.nstdlib; i++) {
		if (ld_path_root_len(file, s->meta.stdlib[i])) {
			/* Third-party packages live below the stdlib in some layouts. */
			return !strstr(file, "/site-packages/") && !strstr(file, "/dist-packages/");
		}
	}
	return false;
}

/* Whether the first n bytes of name contain word, ignoring case. */
static bool contains_nocase(const char *name, size_t n, const char *word)
{
	size_t w = strlen(word);
	for (size_t i = 0; i + w <= n; i++) {
		size_t j = 0;
		while (j < w && tolower((unsigned char)name[i + j]) == word[j])
			j++;
		if (j == w)
			return true;
	}
	return false;
}

/* Whether p, to the end of the string, is "0x" and at least one hex digit. */
static bool hex_offset(const char *p)
{
	if (p[0] != '0' || p[1] != 'x' || !p[2])
		return false;
	for (p += 2; *p; p++)
		if (!isxdigit((unsigned char)*p))
			return false;
	return true;
}

bool ld_frame_is_unresolved(const struct ld_snapshot *s, const struct ld_frame *f)
{
	if (!ld_frame_is_native(s, f))
		return false;
	const char *fn = ld_snapshot_str(s, f->function);
	const char *plus = strrchr(fn, '+');
	return hex_offset(fn) || (plus && plus > fn && hex_offset(plus + 1));
}

bool ld_frame_is_interpreter(const struct ld_snapshot *s, const struct ld_frame *f)
{
	if (!ld_frame_is_native(s, f))
		return false;
	const char *fn = ld_snapshot_str(s, f->function);
	size_t n = ld_frame_function_len(s, f);
	static const char *const prefixes[] = { "_Py", "PyEval", "PyObject_Call", "PyObject_Vectorcall",
						"PyVectorcall" };
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(fn, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	if (contains_nocase(fn, n, "vectorcall"))
		return true;
	static const char *const helpers[] = { "cfunction_call", "slot_tp_call", "call_function",
					       "function_code_fastcall" };
	for (size_t i = 0; i < sizeof(helpers) / sizeof(helpers[0]); i++)
		if (n == strlen(helpers[i]) && strncmp(fn, helpers[i], n) == 0)
			return true;
	return false;
}

size_t ld_frame_function_len(const struct ld_snapshot *s, const struct ld_frame *f)
{
	const char *fn = ld_snapshot_str(s, f->function);
	if (!ld_frame_is_native(s, f))
		return strlen(fn);
	return strcspn(fn, "@");
}

bool ld_frame_is_allocator(const struct ld_snapshot *s, const struct ld_frame *f)
{
	if (!ld_frame_is_native(s, f))
		return false;
	const char *fn = ld_snapshot_str(s, f->function);
	size_t n = ld_frame_function_len(s, f);
	if (n == 0 || ld_frame_is_unresolved(s, f))
		return false;
	if (contains_nocase(fn, n, "alloc") || contains_nocase(fn, n, "memalign") ||
	    contains_nocase(fn, n, "strdup") || contains_nocase(fn, n, "strndup"))
		return true;
	/* Only the global operators: a class's own operator new is its code. */
	return (n == 12 && strncmp(fn, "operator new", 12) == 0) ||
	       (n == 14 && strncmp(fn, "operator new[]", 14) == 0);
}

/*
 * Top-level modules CPython builds in or ships as extension modules whose
 * types carry their name: a type of theirs is never the program's. Modules
 * written in Python (collections, json) are not here: without an origin a
 * snapshot cannot tell their types from the program's by name.
 */
static const char *const runtime_modules[] = {
	"_abc", "_asyncio", "_bisect", "_blake2", "_bz2", "_codecs", "_collections", "_contextvars",
	"_csv", "_ctypes", "_datetime", "_decimal", "_elementtree", "_functools", "_hashlib", "_heapq",
	"_imp", "_io", "_json", "_locale", "_lsprof", "_lzma", "_md5", "_multibytecodec",
	"_multiprocessing", "_opcode", "_operator", "_pickle", "_posixsubprocess", "_queue", "_random",
	"_sha1", "_sha2", "_sha256", "_sha3", "_sha512", "_signal", "_socket", "_sqlite3", "_sre", "_ssl",
	"_stat", "_string", "_struct", "_symtable", "_thread", "_tokenize", "_tracemalloc", "_typing",
	"_warnings", "_weakref", "_zoneinfo", "array", "atexit", "binascii", "builtins", "cmath",
	"errno", "faulthandler", "fcntl", "gc", "grp", "itertools", "marshal", "math", "mmap", "posix",
	"pwd", "pyexpat", "resource", "select", "sys", "termios", "time", "unicodedata", "zlib",
};

static bool runtime_module(const char *name, size_t n)
{
	for (size_t i = 0; i < sizeof(runtime_modules) / sizeof(runtime_modules[0]); i++)
		if (strlen(runtime_modules[i]) == n && strncmp(name, runtime_modules[i], n) == 0)
			return true;
	return false;
}

bool ld_type_is_user(const char *name, const char *origin)
{
	if (origin)
		return strcmp(origin, "user") == 0;
	const char *dot = strchr(name, '.');
	return dot && !runtime_module(name, (size_t)(dot - name));
}

bool ld_frame_in_python_runtime(const struct ld_snapshot *s, const struct ld_frame *f)
{
	if (!ld_frame_is_native(s, f))
		return false;
	if (ld_frame_is_interpreter(s, f))
		return true;
	const char *fn = ld_snapshot_str(s, f->function);
	if (strncmp(fn, "_Py", 3) == 0 || (strncmp(fn, "Py", 2) == 0 && fn[2] >= 'A' && fn[2] <= 'Z'))
		return true;
	const char *file = ld_snapshot_str(s, f->file);
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	return strncmp(base, "libpython", 9) == 0 || strncmp(base, "python3", 7) == 0;
}
