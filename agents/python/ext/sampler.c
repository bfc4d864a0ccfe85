/*
 * _sampler: sampled allocation tracking on the PEP 445 hooks (placeholder module; the
 * agent falls back to its exact tracemalloc mode while it defines nothing).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static struct PyModuleDef census_module = {
	PyModuleDef_HEAD_INIT, "_sampler", NULL, -1, NULL,
};

PyMODINIT_FUNC PyInit__sampler(void);
PyMODINIT_FUNC PyInit__sampler(void)
{
	return PyModule_Create(&census_module);
}
