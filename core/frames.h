/*
 * What a frame or a type is: the one place that decides whether a frame is
 * the program's code or a library's, which kind of code it is (Python,
 * native, inlined), whether it belongs to an allocator wrapper, and whether
 * a type is one of the program's own. The diff and every renderer ask
 * here, so that a report never calls the same frame user code in one table
 * and library code in another.
 */
#ifndef LD_CORE_FRAMES_H
#define LD_CORE_FRAMES_H

#include <stdbool.h>

#include "snapshot.h"

/*
 * The name of a kind as the snapshot format spells it ("python", "native",
 * "inlined"); "" for LD_FRAME_UNKNOWN and "other" for LD_FRAME_OTHER (whose
 * real name is in the frame's kind_name).
 */
const char *ld_frame_kind_name(enum ld_frame_kind k);

/* The kind a name in a file stands for: LD_FRAME_OTHER for names not known here. */
enum ld_frame_kind ld_frame_kind_parse(const char *name);

/*
 * Sets f's kind to k (not LD_FRAME_UNKNOWN or LD_FRAME_OTHER), interning
 * its name into s's string table for kind_name. Returns 0, or -ENOMEM
 * (or -E2BIG from the string table) leaving f unchanged.
 */
int ld_frame_set_kind(struct ld_snapshot *s, struct ld_frame *f, enum ld_frame_kind k);

/*
 * What f is in s: its own kind when the file said one, else what the
 * snapshot's runtime implies (LD_FRAME_PYTHON for "python", LD_FRAME_NATIVE
 * for "native"), else LD_FRAME_UNKNOWN.
 */
enum ld_frame_kind ld_frame_effective_kind(const struct ld_snapshot *s, const struct ld_frame *f);

/* True when f is machine code: its effective kind is native or inlined. */
bool ld_frame_is_native(const struct ld_snapshot *s, const struct ld_frame *f);

/*
 * True when f is library code rather than the program's: Python's frozen
 * bootstrap, or a file below one of s's standard library directories
 * (meta.stdlib; for native snapshots the system library directories) other
 * than third-party packages installed there (site-packages,
 * dist-packages).
 */
bool ld_frame_is_library(const struct ld_snapshot *s, const struct ld_frame *f);

/*
 * True when f is the allocator or a function that only wraps it, so that a
 * report should look past it for the code that wanted the memory: its
 * function name (without a symbol version such as "@@GLIBC_2.2.5"), in any
 * case, contains "alloc" (malloc, calloc, realloc, xmalloc, jv_mem_alloc,
 * Perl_safesysmalloc, sqlite3Malloc, PyMem_Malloc, ...) or "memalign", is
 * C++'s "operator new" or "operator new[]", or is a strdup family function.
 * Only native frames (ld_frame_is_native()) that have a name can be: a
 * Python function allocating is the program's.
 */
bool ld_frame_is_allocator(const struct ld_snapshot *s, const struct ld_frame *f);

/*
 * True when f is the Python interpreter's own machine code on the way from
 * Python code to native code, in the stacks of a mixed recording
 * (`leakdiff record --native`): a native frame of the evaluation loop or
 * of the call machinery around it, by its function's name: _Py* and
 * PyEval* (the loop, _PyObject_MakeTpCall, _PyFunction_Vectorcall),
 * PyObject_Call*, PyObject_Vectorcall* and PyVectorcall*, names holding
 * "vectorcall" (cfunction_vectorcall_O, method_vectorcall_NOARGS) and the
 * call helpers cfunction_call, slot_tp_call, call_function and
 * function_code_fastcall. Reports leave such frames out of short stacks;
 * an extension's own functions never match (their names are the
 * extension's).
 */
bool ld_frame_is_interpreter(const struct ld_snapshot *s, const struct ld_frame *f);

/*
 * True when f is a native frame the recorder could not name: its
 * function is a module and an offset ("libfoo.so+0x1a2b", from a stripped
 * file) or a bare address ("0x7f3a1c2d4e5f", outside every module).
 */
bool ld_frame_is_unresolved(const struct ld_snapshot *s, const struct ld_frame *f);

/*
 * Length of f's function name as a report shows it: without the symbol
 * version a native symbol may carry ("malloc@@GLIBC_2.2.5" is "malloc").
 */
size_t ld_frame_function_len(const struct ld_snapshot *s, const struct ld_frame *f);

/*
 * True when f is a native frame of the Python interpreter itself, which a
 * native recording of a Python program has dozens of between any two
 * Python-level calls: what ld_frame_is_interpreter() names, any function of
 * CPython's C API or internals (a name starting "_Py", or "Py" and a
 * capital letter), or any frame in a file whose base name starts
 * "libpython" or "python3". Broader than ld_frame_is_interpreter(): the
 * flame graph folds a run of them into one frame, where nothing is lost,
 * while the text and JSON reports mark only the call machinery. Python
 * frames never are.
 */
bool ld_frame_in_python_runtime(const struct ld_snapshot *s, const struct ld_frame *f);

/*
 * True when a type is one of the program's own types rather than a
 * built-in container or scalar, or a type of the runtime's library, that
 * grows along with whatever leaks. origin is where the snapshot says the
 * type comes from (struct ld_type), or NULL: then the type is the
 * program's when origin is "user". Snapshots from before origins say
 * nothing, and then the name decides: it must be module-qualified
 * ("app.Session", not "dict") and its module must not be one that CPython
 * implements in C ("_thread.lock", "_io.TextIOWrapper", "builtins.x").
 */
bool ld_type_is_user(const char *name, const char *origin);

#endif
