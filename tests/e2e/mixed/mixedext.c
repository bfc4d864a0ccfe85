/*
 * mixedext: a C extension that leaks through a static C function, for
 * `leakdiff record --native` (tests/e2e/test_mixed.py). Built by the test
 * with -g for the interpreter under test. stash(text) keeps a malloc'ed
 * copy of text forever, made by keep_copy(); stash_released(text) does the
 * same with the GIL released around the copy, as NumPy does for big
 * arrays.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdlib.h>
#include <string.h>

static char **kept;
static size_t nkept, capkept;
static PyThread_type_lock kept_lock;

/* Never inlined: the test looks for this function's own frame. */
static __attribute__((noinline)) char *keep_copy(const char *text, size_t len)
{
	char *copy = malloc(len + 1); /* leak: copy */
	if (copy)
		memcpy(copy, text, len + 1);
	return copy;
}

static int remember(char *copy)
{
	PyThread_acquire_lock(kept_lock, WAIT_LOCK);
	int ok = 1;
	if (nkept == capkept) {
		size_t cap = capkept ? 2 * capkept : 64;
		char **v = realloc(kept, cap * sizeof(*v));
		if (v) {
			kept = v;
			capkept = cap;
		} else {
			ok = 0;
		}
	}
	if (ok)
		kept[nkept++] = copy;
	PyThread_release_lock(kept_lock);
	return ok;
}

static PyObject *stash_text(PyObject *arg, int release)
{
	Py_ssize_t len;
	const char *text = PyUnicode_AsUTF8AndSize(arg, &len);
	if (!text)
		return NULL;
	char *copy;
	if (release) {
		Py_BEGIN_ALLOW_THREADS
		copy = keep_copy(text, (size_t)len);
		Py_END_ALLOW_THREADS
	} else {
		copy = keep_copy(text, (size_t)len);
	}
	if (!copy || !remember(copy))
		return PyErr_NoMemory();
	Py_RETURN_NONE;
}

static PyObject *stash(PyObject *self, PyObject *arg)
{
	(void)self;
	return stash_text(arg, 0);
}

static PyObject *stash_released(PyObject *self, PyObject *arg)
{
	(void)self;
	return stash_text(arg, 1);
}

static PyMethodDef methods[] = {
	{ "stash", stash, METH_O, "stash(text): keep a malloc'ed copy of text, forever." },
	{ "stash_released", stash_released, METH_O,
	  "stash_released(text): the same, with the GIL released around the copy." },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef module = {
	PyModuleDef_HEAD_INIT, "mixedext", "Leaks malloc'ed copies of strings.", -1, methods,
};

PyMODINIT_FUNC PyInit_mixedext(void);
PyMODINIT_FUNC PyInit_mixedext(void)
{
	kept_lock = PyThread_allocate_lock();
	if (!kept_lock)
		return PyErr_NoMemory();
	return PyModule_Create(&module);
}
