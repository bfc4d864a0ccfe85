/*
 * _census: the Python agent's type census in C (placeholder module; the
 * agent falls back to its pure-Python census while it defines nothing).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static struct PyModuleDef census_module = {
	PyModuleDef_HEAD_INIT, "_census", NULL, -1, NULL,
};

PyMODINIT_FUNC PyInit__census(void);
PyMODINIT_FUNC PyInit__census(void)
{
	return PyModule_Create(&census_module);
}
