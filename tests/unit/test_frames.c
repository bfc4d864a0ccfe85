/* Unit tests for core/frames.c: frame kinds and the rules for library code, allocator wrappers and user types. */
#include <criterion/criterion.h>
#include <string.h>

#include "frames.h"
#include "snapshot.h"

static struct ld_snapshot *snap(const char *runtime)
{
	struct ld_snapshot *s = ld_snapshot_create();
	cr_assert_not_null(s);
	if (runtime)
		cr_assert_eq(ld_meta_set(&s->meta.runtime, runtime), 0);
	return s;
}

static struct ld_frame frame(struct ld_snapshot *s, const char *file, const char *function)
{
	struct ld_frame f = { .line = 1, .function_line = -1, .text = LD_NOSTR };
	cr_assert_eq(ld_strtab_intern(&s->strings, file, strlen(file), &f.file), 0);
	cr_assert_eq(ld_strtab_intern(&s->strings, function, strlen(function), &f.function), 0);
	return f;
}

Test(frame_kinds, names_and_parsing)
{
	cr_assert_str_eq(ld_frame_kind_name(LD_FRAME_PYTHON), "python");
	cr_assert_str_eq(ld_frame_kind_name(LD_FRAME_NATIVE), "native");
	cr_assert_str_eq(ld_frame_kind_name(LD_FRAME_INLINED), "inlined");
	cr_assert_eq(ld_frame_kind_parse("python"), LD_FRAME_PYTHON);
	cr_assert_eq(ld_frame_kind_parse("native"), LD_FRAME_NATIVE);
	cr_assert_eq(ld_frame_kind_parse("inlined"), LD_FRAME_INLINED);
	cr_assert_eq(ld_frame_kind_parse("interpreter"), LD_FRAME_OTHER);
	cr_assert_eq(ld_frame_kind_parse(""), LD_FRAME_OTHER);
	cr_assert_eq(ld_frame_kind_parse("other"), LD_FRAME_OTHER);
}

Test(frame_kinds, effective_kind_falls_back_to_the_runtime)
{
	static const char *const runtimes[] = { "python", "native", "ruby", NULL };
	static const enum ld_frame_kind want[] = { LD_FRAME_PYTHON, LD_FRAME_NATIVE, LD_FRAME_UNKNOWN,
						   LD_FRAME_UNKNOWN };
	for (int i = 0; i < 4; i++) {
		struct ld_snapshot *s = snap(runtimes[i]);
		struct ld_frame f = frame(s, "a.c", "f");
		cr_assert_eq(ld_frame_effective_kind(s, &f), want[i]);
		cr_assert_eq(ld_frame_set_kind(s, &f, LD_FRAME_INLINED), 0);
		cr_assert_eq(ld_frame_effective_kind(s, &f), LD_FRAME_INLINED, "the frame's own kind wins");
		ld_snapshot_destroy(s);
	}
}

Test(frame_rules, library_frames)
{
	struct ld_snapshot *s = snap("python");
	char *stdlib[] = { "/usr/lib/python3.11" };
	cr_assert_eq(ld_meta_set_list(&s->meta.stdlib, &s->meta.nstdlib, stdlib, 1), 0);
	struct ld_frame a = frame(s, "/usr/lib/python3.11/json/decoder.py", "decode");
	struct ld_frame b = frame(s, "<frozen importlib._bootstrap>", "_load");
	struct ld_frame c = frame(s, "/usr/lib/python3.11/site-packages/req/api.py", "get");
	struct ld_frame d = frame(s, "/srv/app/server.py", "handle");
	struct ld_frame e = frame(s, "/usr/lib/python3.110/x.py", "f");
	cr_assert(ld_frame_is_library(s, &a));
	cr_assert(ld_frame_is_library(s, &b));
	cr_assert_not(ld_frame_is_library(s, &c), "third-party packages are not the standard library");
	cr_assert_not(ld_frame_is_library(s, &d));
	cr_assert_not(ld_frame_is_library(s, &e), "a directory prefix, not a string prefix");
	ld_snapshot_destroy(s);
}

Test(frame_rules, allocator_wrappers)
{
	struct ld_snapshot *s = snap("native");
	static const char *const wrappers[] = {
		"malloc", "calloc", "realloc", "__libc_malloc", "xmalloc", "jv_mem_alloc", "Perl_safesysmalloc",
		"sqlite3Malloc", "g_malloc0", "PyMem_RawMalloc", "posix_memalign", "aligned_alloc", "strdup",
		"xstrndup", "operator new", "operator new[]", "malloc@@GLIBC_2.2.5", "reallocarray",
	};
	static const char *const others[] = {
		"main", "new_record", "shop::Cache::remember", "Foo::operator new", "operator newline", "",
		"libfoo.so+0x1a2b", "make_node", "free",
	};
	for (size_t i = 0; i < sizeof(wrappers) / sizeof(wrappers[0]); i++) {
		struct ld_frame f = frame(s, "x.c", wrappers[i]);
		cr_assert(ld_frame_is_allocator(s, &f), "%s is an allocator wrapper", wrappers[i]);
	}
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		struct ld_frame f = frame(s, "x.c", others[i]);
		cr_assert_not(ld_frame_is_allocator(s, &f), "%s is not an allocator wrapper", others[i]);
	}
	/* A Python function is the program's code whatever its name. */
	struct ld_frame p = frame(s, "app.py", "allocate_buffers");
	cr_assert_eq(ld_frame_set_kind(s, &p, LD_FRAME_PYTHON), 0);
	cr_assert_not(ld_frame_is_allocator(s, &p));
	ld_snapshot_destroy(s);
}

Test(type_rules, without_an_origin_dotted_names_outside_the_runtime_are_user_types)
{
	cr_assert(ld_type_is_user("app.session.Session", NULL));
	cr_assert(ld_type_is_user("__main__.Leaky", NULL));
	cr_assert(ld_type_is_user("_app.Thing", NULL), "only CPython's own modules are left out");
	cr_assert(ld_type_is_user("threading.Thread", NULL), "modules in Python cannot be told by name");
	cr_assert_not(ld_type_is_user("dict", NULL));
	cr_assert_not(ld_type_is_user("list", NULL));
	cr_assert_not(ld_type_is_user("", NULL));
	cr_assert_not(ld_type_is_user("_thread.lock", NULL));
	cr_assert_not(ld_type_is_user("_thread.RLock", NULL));
	cr_assert_not(ld_type_is_user("_io.TextIOWrapper", NULL));
	cr_assert_not(ld_type_is_user("builtins.weird", NULL));
	cr_assert_not(ld_type_is_user("itertools.count", NULL));
	cr_assert(ld_type_is_user("_threadx.lock", NULL), "a module name is compared whole");
}

Test(type_rules, the_origin_decides_when_there_is_one)
{
	cr_assert(ld_type_is_user("app.Session", "user"));
	cr_assert(ld_type_is_user("Session", "user"), "a user type need not be dotted");
	cr_assert_not(ld_type_is_user("app.Session", "stdlib"));
	cr_assert_not(ld_type_is_user("collections.OrderedDict", "stdlib"));
	cr_assert_not(ld_type_is_user("_thread.lock", "builtin"));
	cr_assert_not(ld_type_is_user("numpy.ndarray", "extension"));
	cr_assert_not(ld_type_is_user("app.Session", "from-the-future"));
}

Test(frame_rules, unresolved_frames_and_symbol_versions)
{
	struct ld_snapshot *s = snap("native");
	static const char *const unresolved[] = { "jq+0x2fc9", "libjq.so.1+0x1a2b", "0x7f3a1c2d4e5f" };
	static const char *const named[] = { "jv_mem_alloc", "main", "operator+", "f+0x", "0x", "+0x12",
					     "ns::T::operator+", "x+0x12g" };
	for (size_t i = 0; i < sizeof(unresolved) / sizeof(unresolved[0]); i++) {
		struct ld_frame f = frame(s, "/usr/bin/jq", unresolved[i]);
		cr_assert(ld_frame_is_unresolved(s, &f), "%s", unresolved[i]);
		cr_assert_not(ld_frame_is_allocator(s, &f), "%s: no name, so no wrapper", unresolved[i]);
	}
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		struct ld_frame f = frame(s, "/usr/bin/jq", named[i]);
		cr_assert_not(ld_frame_is_unresolved(s, &f), "%s", named[i]);
	}
	struct ld_frame v = frame(s, "/lib/libc.so.6", "__libc_start_main@@GLIBC_2.34");
	cr_assert_eq(ld_frame_function_len(s, &v), strlen("__libc_start_main"));
	struct ld_frame m = frame(s, "/lib/libc.so.6", "malloc");
	cr_assert_eq(ld_frame_function_len(s, &m), 6);
	cr_assert(ld_frame_is_native(s, &m));
	ld_snapshot_destroy(s);

	/* Python frames are neither, whatever their names look like. */
	s = snap("python");
	struct ld_frame p = frame(s, "app.py", "0x10");
	cr_assert_not(ld_frame_is_native(s, &p));
	cr_assert_not(ld_frame_is_unresolved(s, &p));
	struct ld_frame q = frame(s, "app.py", "a@b");
	cr_assert_eq(ld_frame_function_len(s, &q), 3);
	ld_snapshot_destroy(s);
}

Test(frame_rules, call_machinery_frames)
{
	/* The narrower rule the text and JSON reports mark: only the way
	 * from Python code into C, never the C API an extension calls. */
	struct ld_snapshot *s = snap("native");
	static const char *const yes[] = { "_PyEval_EvalFrameDefault", "_PyObject_MakeTpCall", "PyObject_Call",
					   "PyObject_Vectorcall", "cfunction_vectorcall_O", "cfunction_call",
					   "slot_tp_call" };
	static const char *const no[] = { "PyList_Append", "PyMem_Malloc", "stash_copy", "main", "malloc" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		struct ld_frame f = frame(s, "/usr/bin/python3.11", yes[i]);
		cr_assert(ld_frame_is_interpreter(s, &f), "%s is call machinery", yes[i]);
		cr_assert(ld_frame_in_python_runtime(s, &f), "%s is in the runtime too", yes[i]);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		struct ld_frame f = frame(s, "leakyext.c", no[i]);
		cr_assert_not(ld_frame_is_interpreter(s, &f), "%s is not call machinery", no[i]);
	}
	ld_snapshot_destroy(s);
}

Test(frame_rules, interpreter_frames)
{
	struct ld_snapshot *s = snap("native");
	static const char *const yes[][2] = {
		{ "/usr/bin/python3.11", "main" },
		{ "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", "frame_dealloc" },
		{ "app.c", "_PyEval_EvalFrameDefault" },
		{ "app.c", "PyObject_Malloc" },
	};
	static const char *const no[][2] = {
		{ "app.c", "Pyramid" },
		{ "app.c", "py_helper" },
		{ "/usr/lib/x86_64-linux-gnu/libc.so.6", "malloc" },
		{ "/srv/python3-tools/run.c", "main" },
	};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		struct ld_frame f = frame(s, yes[i][0], yes[i][1]);
		cr_assert(ld_frame_in_python_runtime(s, &f), "%s in %s is the interpreter", yes[i][1], yes[i][0]);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		struct ld_frame f = frame(s, no[i][0], no[i][1]);
		cr_assert_not(ld_frame_in_python_runtime(s, &f), "%s in %s is not", no[i][1], no[i][0]);
	}
	ld_snapshot_destroy(s);
	struct ld_snapshot *p = snap("python");
	struct ld_frame f = frame(p, "/usr/bin/python3.11", "PyRun");
	cr_assert_not(ld_frame_in_python_runtime(p, &f), "a Python frame is never the interpreter's C code");
	ld_snapshot_destroy(p);
}
