/*
 * leakyext: a C extension that leaks outside Python's allocators, for the
 * default mode's blind-spot warning (tests/e2e/test_blind.py). stash()
 * keeps a malloc'ed copy of every string it is given and never frees it,
 * so the hooks see nothing of it while the process's malloc total grows.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdlib.h>
#include <string.h>

static char **kept;
static size_t nkept, capkept;

static PyObject *stash(PyObject *self, PyObject *arg)
{
	(void)self;
	Py_ssize_t len;
	const char *text = PyUnicode_AsUTF8AndSize(arg, &len);
	if (!text)
		return NULL;
	if (nkept == capkept) {
		size_t cap = capkept ? 2 * capkept : 64;
		char **v = realloc(kept, cap * sizeof(*v));
		if (!v)
			return PyErr_NoMemory();
		kept = v;
		capkept = cap;
	}
	char *copy = malloc((size_t)len + 1);
	if (!copy)
		return PyErr_NoMemory();
	memcpy(copy, text, (size_t)len + 1);
	kept[nkept++] = copy;
	Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
	{ "stash", stash, METH_O, "stash(text): keep a malloc'ed copy of text, forever." },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef module = {
	PyModuleDef_HEAD_INIT, "leakyext", "Leaks malloc'ed copies of strings.", -1, methods,
};

PyMODINIT_FUNC PyInit_leakyext(void);
PyMODINIT_FUNC PyInit_leakyext(void)
{
	return PyModule_Create(&module);
}
