/*
 * _census: the heavy loops of the Python agent's snapshot, in C.
 *
 * run() is the object census of _objects.Census done without a Python object
 * per visited object: the tracked objects (the list gc.get_objects() gave)
 * are filed by type in a table keyed by type pointer, then the objects the
 * collector does not track (str, int, untracked tuples, code objects...)
 * that tracked ones refer to are found with tp_traverse, level by level,
 * exactly as _objects.Census finds them with gc.get_referents(): in batches of
 * BATCH, singly referenced ones first, then the others in order of first
 * sight, code objects' parts last. The order matters: the agent samples the
 * instances of a type with a stride, and both paths must sample the same
 * ones.
 *
 * An untracked object with a reference count of one has one referrer, so it
 * can be reached once only; the others are de-duplicated by address in a
 * hash set. The census keeps one strong reference to every object it
 * counts, in a C array per type, until release(): sizes, type x site
 * lookups and hints need them after run() has returned, while other threads
 * of the program may run. Nothing here allocates Python objects per visited
 * object, and all tables come from the C library's malloc, which tracemalloc
 * does not see.
 *
 * group_traces() sums the raw tracemalloc traces by traceback identity
 * (_tracemalloc._get_traces() hands out one tuple per distinct traceback),
 * frame_rows() numbers the frames of the sites' tracebacks, and quiet()
 * keeps the agent's own allocations out of tracemalloc while it builds a
 * snapshot.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <pythread.h>

#include <pthread.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 4096

/* Kinds of facts(): what is summed over a type's instances. */
enum { FACT_VAR = 1, FACT_LIST = 2, FACT_STR = 3, FACT_INT = 4 };

/* -- growable arrays and a set of addresses ---------------------------- */

struct vec {
	PyObject **items;
	size_t n, cap;
};

static int vec_push(struct vec *v, PyObject *o)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 64;
		PyObject **items = realloc(v->items, cap * sizeof(*items));
		if (!items)
			return -1;
		v->items = items;
		v->cap = cap;
	}
	v->items[v->n++] = o;
	return 0;
}

static void vec_finish(struct vec *v)
{
	free(v->items);
	v->items = NULL;
	v->n = v->cap = 0;
}

static size_t hash_ptr(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x;
}

struct ptrset {
	const void **slots;
	size_t mask, used;
};

/* Adds p; 1 when it was new, 0 when already there, -1 without memory. */
static int ptrset_add(struct ptrset *s, const void *p)
{
	if (2 * (s->used + 1) > s->mask + 1 || !s->slots) {
		size_t size = s->slots ? 2 * (s->mask + 1) : 1024;
		const void **slots = calloc(size, sizeof(*slots));
		if (!slots)
			return -1;
		for (size_t i = 0; s->slots && i <= s->mask; i++) {
			if (!s->slots[i])
				continue;
			size_t j = hash_ptr(s->slots[i]) & (size - 1);
			while (slots[j])
				j = (j + 1) & (size - 1);
			slots[j] = s->slots[i];
		}
		free(s->slots);
		s->slots = slots;
		s->mask = size - 1;
	}
	size_t i = hash_ptr(p) & s->mask;
	while (s->slots[i]) {
		if (s->slots[i] == p)
			return 0;
		i = (i + 1) & s->mask;
	}
	s->slots[i] = p;
	s->used++;
	return 1;
}

static int ptrset_has(const struct ptrset *s, const void *p)
{
	if (!s->slots)
		return 0;
	for (size_t i = hash_ptr(p) & s->mask; s->slots[i]; i = (i + 1) & s->mask)
		if (s->slots[i] == p)
			return 1;
	return 0;
}

static void ptrset_finish(struct ptrset *s)
{
	free(s->slots);
	s->slots = NULL;
	s->mask = s->used = 0;
}

/* -- the census object ------------------------------------------------- */

struct tentry {
	PyTypeObject *type; /* strong reference */
	struct vec objs;    /* strong references, in the order found */
	size_t tracked;     /* how many of objs were tracked ones */
	int excluded;       /* the agent's type, or its hash fails */
	int checked;        /* hash of a metaclass instance tried */
};

typedef struct {
	PyObject_HEAD
	struct tentry *entries;
	size_t n, cap;
	size_t *index; /* open addressing: entry number + 1, or 0 */
	size_t imask;
	PyTypeObject *last; /* the type of the last lookup, and its entry */
	size_t last_ix;
	Py_ssize_t skipped;
} CensusObject;

/* State of one run(), kept on the C stack. */
struct walk {
	CensusObject *c;
	struct ptrset seen;   /* untracked objects with several referrers */
	struct ptrset frames; /* frames among the tracked objects */
	struct vec multis;    /* found in the current batch, several: str, int... */
	struct vec others;    /* the same, of other types */
	struct vec next;      /* found in this level, to look into in the next */
	struct vec codes;     /* code objects of the current level */
	Py_ssize_t single;    /* reference count meaning "one referrer" */
	int nomem;
};

/* Drops everything; the census is empty before the first reference goes
 * (a finalizer run by a Py_DECREF must find nothing half-released). */
static void census_clear(CensusObject *c)
{
	struct tentry *entries = c->entries;
	size_t n = c->n;
	free(c->index);
	c->entries = NULL;
	c->index = NULL;
	c->n = c->cap = 0;
	c->imask = 0;
	c->last = NULL;
	for (size_t i = 0; i < n; i++) {
		struct tentry *e = &entries[i];
		for (size_t k = 0; k < e->objs.n; k++)
			Py_DECREF(e->objs.items[k]);
		vec_finish(&e->objs);
		Py_CLEAR(e->type);
	}
	free(entries);
}

static void census_dealloc(PyObject *self)
{
	census_clear((CensusObject *)self);
	Py_TYPE(self)->tp_free(self);
}

static struct tentry *find_entry(CensusObject *c, PyTypeObject *t)
{
	if (!c->index)
		return NULL;
	if (t == c->last)
		return &c->entries[c->last_ix];
	size_t i = hash_ptr(t) & c->imask;
	while (c->index[i]) {
		struct tentry *e = &c->entries[c->index[i] - 1];
		if (e->type == t) {
			c->last = t;
			c->last_ix = c->index[i] - 1;
			return e;
		}
		i = (i + 1) & c->imask;
	}
	return NULL;
}

/* The entry of t, made when missing; NULL without memory. */
static struct tentry *get_entry(CensusObject *c, PyTypeObject *t, int *made)
{
	struct tentry *e = find_entry(c, t);
	*made = 0;
	if (e)
		return e;
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 256;
		struct tentry *entries = realloc(c->entries, cap * sizeof(*entries));
		if (!entries)
			return NULL;
		c->entries = entries;
		c->cap = cap;
	}
	if (!c->index || 2 * (c->n + 1) > c->imask + 1) {
		size_t size = c->index ? 2 * (c->imask + 1) : 1024;
		size_t *index = calloc(size, sizeof(*index));
		if (!index)
			return NULL;
		for (size_t k = 0; k < c->n; k++) {
			size_t j = hash_ptr(c->entries[k].type) & (size - 1);
			while (index[j])
				j = (j + 1) & (size - 1);
			index[j] = k + 1;
		}
		free(c->index);
		c->index = index;
		c->imask = size - 1;
	}
	e = &c->entries[c->n];
	memset(e, 0, sizeof(*e));
	Py_INCREF(t);
	e->type = t;
	size_t j = hash_ptr(t) & c->imask;
	while (c->index[j])
		j = (j + 1) & c->imask;
	c->index[j] = ++c->n;
	*made = 1;
	return e;
}

/* What gc.is_tracked() says, without a call per object where the layout
 * is known: on CPython 3.8 to 3.13 (with the GIL) the collector's two-word
 * header sits right before the object, and its first word is zero when the
 * object is not tracked. */
#if !defined(Py_GIL_DISABLED) && PY_VERSION_HEX >= 0x03080000 && PY_VERSION_HEX < 0x030E0000
struct gc_header {
	uintptr_t next, prev;
};
#define GC_NEXT(o) (((const struct gc_header *)(const void *)(o))[-1].next)
#endif

static int is_tracked(PyObject *o)
{
	PyTypeObject *t = Py_TYPE(o);
	if (!PyType_IS_GC(t) || (t->tp_is_gc && !t->tp_is_gc(o)))
		return 0;
#ifdef GC_NEXT
	return GC_NEXT(o) != 0;
#elif PY_VERSION_HEX >= 0x03090000
	return PyObject_GC_IsTracked(o);
#else
	return _PyObject_GC_IS_TRACKED(o);
#endif
}

/* str, bytes, int, float, bool, complex and None: nothing to look into. */
static int is_atom(PyObject *o)
{
	PyTypeObject *t = Py_TYPE(o);
	return t == &PyUnicode_Type || t == &PyBytes_Type || t == &PyLong_Type ||
	       t == &PyFloat_Type || t == &PyBool_Type || t == &PyComplex_Type ||
	       o == Py_None;
}

/* Files one untracked object under its type (not if the type is left
 * out), and keeps it for the next level unless it is an atom. */
static int file_one(struct walk *w, PyObject *o)
{
	int made;
	struct tentry *e = get_entry(w->c, Py_TYPE(o), &made);
	if (!e)
		return -1;
	if (!e->excluded) {
		if (vec_push(&e->objs, o) < 0)
			return -1;
		Py_INCREF(o);
	}
	if (!is_atom(o) && vec_push(&w->next, o) < 0)
		return -1;
	return 0;
}

/* Called by tp_traverse: nothing in here may run Python code. An object
 * with one referrer is filed at once; the others when the batch ends, as
 * _objects.Census orders them. */
static int visit(PyObject *o, void *arg)
{
	struct walk *w = arg;
	if (!o || is_tracked(o))
		return 0;
	if (Py_REFCNT(o) == w->single) {
		if (file_one(w, o) < 0)
			goto nomem;
		return 0;
	}
	switch (ptrset_add(&w->seen, o)) {
	case 1:
		if (vec_push(is_atom(o) ? &w->multis : &w->others, o) < 0)
			goto nomem;
		return 0;
	case 0:
		return 0;
	default:
		goto nomem;
	}
nomem:
	w->nomem = 1;
	return -1;
}

static void visit_referents(struct walk *w, PyObject *o)
{
	if (!PyObject_IS_GC(o))
		return;
	traverseproc traverse = Py_TYPE(o)->tp_traverse;
	if (traverse)
		traverse(o, visit, w);
}

/* Files the batch's objects with several referrers: after the singly
 * referenced ones, the atoms, then the rest (the order of _objects.Census). */
static int end_batch(struct walk *w)
{
	struct vec *parts[] = {&w->multis, &w->others};
	for (size_t p = 0; p < sizeof(parts) / sizeof(parts[0]); p++) {
		for (size_t i = 0; i < parts[p]->n; i++)
			if (file_one(w, parts[p]->items[i]) < 0)
				return -1;
		parts[p]->n = 0;
	}
	return 0;
}

/* Looks into one batch of a level; code objects are kept for later. */
static int walk_batch(struct walk *w, PyObject **objs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		PyObject *o = objs[i];
		if (Py_TYPE(o) == &PyCode_Type && vec_push(&w->codes, o) < 0)
			return -1;
		visit_referents(w, o);
		if (w->nomem)
			return -1;
	}
	return end_batch(w);
}

/* The parts of code objects (they have no tp_traverse), read as the
 * attributes named in attrs. */
static int walk_codes(struct walk *w, PyObject *attrs)
{
	Py_ssize_t nattrs = PyTuple_GET_SIZE(attrs);
	Py_ssize_t saved = w->single;
	/* The attribute read holds one more reference while it is visited. */
	w->single = saved + 1;
	for (size_t start = 0; start < w->codes.n; start += BATCH) {
		size_t end = start + BATCH < w->codes.n ? start + BATCH : w->codes.n;
		for (size_t i = start; i < end; i++) {
			for (Py_ssize_t k = 0; k < nattrs; k++) {
				PyObject *part = PyObject_GetAttr(w->codes.items[i],
								  PyTuple_GET_ITEM(attrs, k));
				if (!part) {
					PyErr_Clear();
					continue;
				}
				visit(part, w);
				Py_DECREF(part);
				if (w->nomem)
					goto fail;
			}
		}
		if (end_batch(w) < 0)
			goto fail;
	}
	w->single = saved;
	w->codes.n = 0;
	return 0;
fail:
	w->single = saved;
	return -1;
}

/* Whether a tracked object is left out: its type is the agent's (asked of
 * is_agent_type once per type), its type cannot be hashed (as in the
 * pure-Python census), or it is a frame of the agent's code. */
static int left_out(CensusObject *c, struct tentry *e, int made, PyObject *o,
		    PyObject *is_agent_type, PyObject *agent_files)
{
	if (made) {
		PyObject *r = PyObject_CallFunctionObjArgs(is_agent_type, (PyObject *)e->type, NULL);
		if (!r) {
			PyErr_Clear();
		} else {
			int yes = PyObject_IsTrue(r);
			Py_DECREF(r);
			if (yes < 0)
				PyErr_Clear();
			else if (yes)
				e->excluded = 1;
		}
		if (!e->excluded && Py_TYPE(e->type) != &PyType_Type) {
			e->checked = 1;
			if (PyObject_Hash((PyObject *)e->type) == -1) {
				PyErr_Clear();
				e->excluded = 2;
			}
		}
	}
	if (e->excluded == 2)
		c->skipped++;
	if (e->excluded)
		return 1;
	if (Py_TYPE(o) == &PyFrame_Type) {
#if PY_VERSION_HEX >= 0x03090000
		PyCodeObject *code = PyFrame_GetCode((PyFrameObject *)o);
#else
		PyCodeObject *code = ((PyFrameObject *)o)->f_code;
		Py_XINCREF(code);
#endif
		int mine = 0;
		if (code) {
			mine = PySet_Contains(agent_files, code->co_filename);
			if (mine < 0) {
				PyErr_Clear();
				mine = 0;
			}
			Py_DECREF(code);
		}
		return mine;
	}
	return 0;
}

/* Types first met among untracked objects whose metaclass may refuse to
 * hash: checked after the walk, when Python code may run again. */
static void check_late_types(CensusObject *c)
{
	for (size_t i = 0; i < c->n; i++) {
		struct tentry *e = &c->entries[i];
		if (e->checked || e->excluded || Py_TYPE(e->type) == &PyType_Type)
			continue;
		e->checked = 1;
		if (PyObject_Hash((PyObject *)e->type) != -1)
			continue;
		PyErr_Clear();
		e->excluded = 2;
		c->skipped += (Py_ssize_t)e->objs.n;
		for (size_t k = 0; k < e->objs.n; k++)
			Py_DECREF(e->objs.items[k]);
		e->objs.n = 0;
	}
}

static PyTypeObject CensusType;

static void walk_finish(struct walk *w)
{
	ptrset_finish(&w->seen);
	ptrset_finish(&w->frames);
	vec_finish(&w->multis);
	vec_finish(&w->others);
	vec_finish(&w->next);
	vec_finish(&w->codes);
}

/* The untracked objects reachable from the tracked ones and the roots. */
static int walk_untracked(struct walk *w, PyObject *roots, PyObject *code_attrs)
{
	CensusObject *c = w->c;
	PyObject *batch[BATCH];
	size_t nb = 0;
	struct vec level = {0};
	int rc = -1;

	/* Level 0: the tracked objects type by type, then the roots. */
	size_t ntypes = c->n;
	for (size_t i = 0; i < ntypes; i++) {
		struct tentry *e = &c->entries[i];
		size_t tracked = e->tracked;
		for (size_t k = 0; k < tracked; k++) {
			batch[nb++] = c->entries[i].objs.items[k];
			if (nb == BATCH) {
				if (walk_batch(w, batch, nb) < 0)
					goto out;
				nb = 0;
			}
		}
	}
	for (Py_ssize_t k = 0; k < PyList_GET_SIZE(roots); k++) {
		/* A frame that is also a tracked object was looked into. */
		if (ptrset_has(&w->frames, PyList_GET_ITEM(roots, k)))
			continue;
		batch[nb++] = PyList_GET_ITEM(roots, k);
		if (nb == BATCH) {
			if (walk_batch(w, batch, nb) < 0)
				goto out;
			nb = 0;
		}
	}
	if (nb && walk_batch(w, batch, nb) < 0)
		goto out;
	for (;;) {
		if (walk_codes(w, code_attrs) < 0)
			goto out;
		/* The next level is what this one found. */
		struct vec swap = level;
		level = w->next;
		w->next = swap;
		w->next.n = 0;
		if (!level.n)
			break;
		/* Held by their referrers, which nothing changes meanwhile. */
		for (size_t start = 0; start < level.n; start += BATCH) {
			size_t n = level.n - start < BATCH ? level.n - start : BATCH;
			if (walk_batch(w, level.items + start, n) < 0)
				goto out;
		}
	}
	rc = 0;
out:
	vec_finish(&level);
	return rc;
}

PyDoc_STRVAR(run_doc,
"run(objects, roots, agent_files, is_agent_type, code_attrs) -> Census\n\n"
"The census of the tracked objects in the list objects (the list itself\n"
"left out) and of the untracked objects reachable from them and from the\n"
"frames in roots. is_agent_type(t) is asked once per type; frames of code\n"
"in the set agent_files are left out; code_attrs names the attributes of\n"
"code objects that hold their parts.");

static PyObject *census_run(PyObject *module, PyObject *args)
{
	PyObject *objs, *roots, *agent_files, *is_agent_type, *code_attrs;
	(void)module;
	if (!PyArg_ParseTuple(args, "O!O!OOO!:run", &PyList_Type, &objs, &PyList_Type, &roots,
			      &agent_files, &is_agent_type, &PyTuple_Type, &code_attrs))
		return NULL;
	if (!PyAnySet_Check(agent_files)) {
		PyErr_SetString(PyExc_TypeError, "agent_files must be a set");
		return NULL;
	}
	CensusObject *c = PyObject_New(CensusObject, &CensusType);
	if (!c)
		return NULL;
	c->entries = NULL;
	c->index = NULL;
	c->n = c->cap = 0;
	c->imask = 0;
	c->last = NULL;
	c->last_ix = 0;
	c->skipped = 0;

	/* The callbacks below may let other threads run: hold the list. */
	Py_INCREF(objs);
	struct walk w = {0};
	w.c = c;
	w.single = 1;
	for (Py_ssize_t i = 0; i < PyList_GET_SIZE(objs); i++) {
		PyObject *o = PyList_GET_ITEM(objs, i);
		if (o == objs)
			continue;
		int made;
		struct tentry *e = get_entry(c, Py_TYPE(o), &made);
		if (!e)
			goto nomem;
		if (left_out(c, e, made, o, is_agent_type, agent_files))
			continue;
		if (vec_push(&e->objs, o) < 0)
			goto nomem;
		Py_INCREF(o);
		if (Py_TYPE(o) == &PyFrame_Type && ptrset_add(&w.frames, o) < 0)
			goto nomem;
	}
	for (size_t i = 0; i < c->n; i++)
		c->entries[i].tracked = c->entries[i].objs.n;
	Py_DECREF(objs);
	objs = NULL;
	if (walk_untracked(&w, roots, code_attrs) < 0)
		goto nomem;
	walk_finish(&w);
	check_late_types(c);
	return (PyObject *)c;
nomem:
	Py_XDECREF(objs);
	walk_finish(&w);
	Py_DECREF(c);
	return PyErr_NoMemory();
}

/* -- reading a census --------------------------------------------------- */

static struct tentry *entry_of(CensusObject *c, PyObject *t)
{
	if (!PyType_Check(t)) {
		PyErr_SetString(PyExc_TypeError, "a type is needed");
		return NULL;
	}
	struct tentry *e = find_entry(c, (PyTypeObject *)t);
	if (!e || e->excluded) {
		PyErr_SetObject(PyExc_KeyError, t);
		return NULL;
	}
	return e;
}

PyDoc_STRVAR(types_doc, "types() -> [(type, count)], in the order first met");

static PyObject *census_types(PyObject *self, PyObject *unused)
{
	CensusObject *c = (CensusObject *)self;
	(void)unused;
	PyObject *out = PyList_New(0);
	if (!out)
		return NULL;
	for (size_t i = 0; i < c->n; i++) {
		struct tentry *e = &c->entries[i];
		if (e->excluded || !e->objs.n)
			continue;
		PyObject *row = Py_BuildValue("(On)", (PyObject *)e->type, (Py_ssize_t)e->objs.n);
		if (!row || PyList_Append(out, row) < 0) {
			Py_XDECREF(row);
			Py_DECREF(out);
			return NULL;
		}
		Py_DECREF(row);
	}
	return out;
}

PyDoc_STRVAR(sample_doc,
"sample(type, limit) -> list\n\n"
"The instances of type, or when there are more than limit (> 0), every\n"
"k-th one from the first, k = ceil(count / limit).");

static PyObject *census_sample(PyObject *self, PyObject *args)
{
	PyObject *t;
	Py_ssize_t limit;
	if (!PyArg_ParseTuple(args, "On:sample", &t, &limit))
		return NULL;
	struct tentry *e = entry_of((CensusObject *)self, t);
	if (!e)
		return NULL;
	size_t n = e->objs.n, stride = 1;
	if (limit > 0 && (size_t)limit < n)
		stride = (n + (size_t)limit - 1) / (size_t)limit;
	PyObject *out = PyList_New((Py_ssize_t)((n + stride - 1) / stride));
	if (!out)
		return NULL;
	for (size_t i = 0, k = 0; i < n; i += stride, k++) {
		PyObject *o = e->objs.items[i];
		Py_INCREF(o);
		PyList_SET_ITEM(out, (Py_ssize_t)k, o);
	}
	return out;
}

PyDoc_STRVAR(samples_doc, "samples(type) -> (first, middle, last) instances");

static PyObject *census_samples(PyObject *self, PyObject *t)
{
	struct tentry *e = entry_of((CensusObject *)self, t);
	if (!e)
		return NULL;
	size_t n = e->objs.n;
	if (!n)
		return PyTuple_New(0);
	return PyTuple_Pack(3, e->objs.items[0], e->objs.items[n / 2], e->objs.items[n - 1]);
}

/* A compact ASCII str whose size is header + length + 1, or -1. */
static Py_ssize_t plain_ascii_len(PyObject *o)
{
	if (Py_TYPE(o) != &PyUnicode_Type)
		return -1;
#if PY_VERSION_HEX < 0x030C0000
	if (!PyUnicode_IS_READY(o) || ((PyASCIIObject *)o)->wstr)
		return -1;
#endif
	if (!PyUnicode_IS_COMPACT_ASCII(o))
		return -1;
	return PyUnicode_GET_LENGTH(o);
}

/* Digits of an exact int, as int.__sizeof__ counts them (0 for zero). */
static Py_ssize_t int_digits(PyObject *o)
{
	size_t bits = (size_t)_PyLong_NumBits(o);
	if (bits == (size_t)-1) {
		PyErr_Clear();
		return -1;
	}
	return (Py_ssize_t)((bits + PyLong_SHIFT - 1) / PyLong_SHIFT);
}

/* The raw measure of one object for kind; -1 when it has none. */
static Py_ssize_t measure_of(PyObject *o, int kind)
{
	switch (kind) {
	case FACT_VAR:
		return Py_TYPE(o)->tp_itemsize > 0 ? Py_SIZE(o) : -1;
	case FACT_LIST:
		return PyList_Check(o) ? ((PyListObject *)o)->allocated : -1;
	case FACT_STR:
		return plain_ascii_len(o);
	case FACT_INT:
		return PyLong_CheckExact(o) ? int_digits(o) : -1;
	default:
		return -1;
	}
}

PyDoc_STRVAR(measure_doc,
"measure(obj, kind) -> int\n\n"
"What facts() sums for one object: 1 ob_size, 2 a list's allocated slots,\n"
"3 the length of a compact ASCII str, 4 an int's digits; -1 for none.");

static PyObject *census_measure(PyObject *module, PyObject *args)
{
	PyObject *o;
	int kind;
	(void)module;
	if (!PyArg_ParseTuple(args, "Oi:measure", &o, &kind))
		return NULL;
	return PyLong_FromSsize_t(measure_of(o, kind));
}

PyDoc_STRVAR(facts_doc,
"facts(type, kind) -> sum, (count, sum, rest) or {digits: count}\n\n"
"Kinds 1 and 2: the sum of measure() over the instances (None if one has\n"
"none). Kind 3: the compact ASCII instances' count and total length, and\n"
"a list of the other instances. Kind 4: instances by number of digits\n"
"(None if one is not an exact int).");

static PyObject *census_facts(PyObject *self, PyObject *args)
{
	PyObject *t;
	int kind;
	if (!PyArg_ParseTuple(args, "Oi:facts", &t, &kind))
		return NULL;
	struct tentry *e = entry_of((CensusObject *)self, t);
	if (!e)
		return NULL;
	if (kind == FACT_VAR || kind == FACT_LIST) {
		long long sum = 0;
		for (size_t i = 0; i < e->objs.n; i++) {
			Py_ssize_t m = measure_of(e->objs.items[i], kind);
			if (m < 0)
				Py_RETURN_NONE;
			sum += m;
		}
		return PyLong_FromLongLong(sum);
	}
	if (kind == FACT_STR) {
		long long count = 0, sum = 0;
		PyObject *rest = PyList_New(0);
		if (!rest)
			return NULL;
		for (size_t i = 0; i < e->objs.n; i++) {
			PyObject *o = e->objs.items[i];
			Py_ssize_t m = plain_ascii_len(o);
			if (m >= 0) {
				count++;
				sum += m;
			} else if (PyList_Append(rest, o) < 0) {
				Py_DECREF(rest);
				return NULL;
			}
		}
		return Py_BuildValue("(LLN)", count, sum, rest);
	}
	if (kind == FACT_INT) {
		/* Few distinct digit counts: a small table, then a dict. */
		enum { SMALL = 64 };
		long long small[SMALL] = {0};
		PyObject *out = PyDict_New();
		if (!out)
			return NULL;
		for (size_t i = 0; i < e->objs.n; i++) {
			Py_ssize_t d = measure_of(e->objs.items[i], FACT_INT);
			if (d < 0) {
				Py_DECREF(out);
				Py_RETURN_NONE;
			}
			if (d < SMALL) {
				small[d]++;
				continue;
			}
			PyObject *key = PyLong_FromSsize_t(d);
			PyObject *prev = key ? PyDict_GetItemWithError(out, key) : NULL;
			long long was = prev ? PyLong_AsLongLong(prev) : 0;
			PyObject *now = (key && !PyErr_Occurred()) ? PyLong_FromLongLong(was + 1) : NULL;
			if (!now || PyDict_SetItem(out, key, now) < 0) {
				Py_XDECREF(key);
				Py_XDECREF(now);
				Py_DECREF(out);
				return NULL;
			}
			Py_DECREF(key);
			Py_DECREF(now);
		}
		for (int d = 0; d < SMALL; d++) {
			if (!small[d])
				continue;
			PyObject *key = PyLong_FromLong(d);
			PyObject *val = PyLong_FromLongLong(small[d]);
			if (!key || !val || PyDict_SetItem(out, key, val) < 0) {
				Py_XDECREF(key);
				Py_XDECREF(val);
				Py_DECREF(out);
				return NULL;
			}
			Py_DECREF(key);
			Py_DECREF(val);
		}
		return out;
	}
	PyErr_SetString(PyExc_ValueError, "unknown kind");
	return NULL;
}

PyDoc_STRVAR(skipped_doc, "skipped() -> objects left out because their type cannot be hashed");

static PyObject *census_skipped(PyObject *self, PyObject *unused)
{
	(void)unused;
	return PyLong_FromSsize_t(((CensusObject *)self)->skipped);
}

PyDoc_STRVAR(release_doc, "release(): drop every reference the census holds");

static PyObject *census_release(PyObject *self, PyObject *unused)
{
	(void)unused;
	census_clear((CensusObject *)self);
	Py_RETURN_NONE;
}

static PyMethodDef census_methods[] = {
	{"types", census_types, METH_NOARGS, types_doc},
	{"sample", census_sample, METH_VARARGS, sample_doc},
	{"samples", census_samples, METH_O, samples_doc},
	{"facts", census_facts, METH_VARARGS, facts_doc},
	{"skipped", census_skipped, METH_NOARGS, skipped_doc},
	{"release", census_release, METH_NOARGS, release_doc},
	{NULL, NULL, 0, NULL},
};

/* Not a GC type: the census never sees itself. */
static PyTypeObject CensusType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "leakdiff._census.Census",
	.tp_basicsize = sizeof(CensusObject),
	.tp_dealloc = census_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "One census; see run().",
	.tp_methods = census_methods,
};

/* -- traces -------------------------------------------------------------- */

struct tbsum {
	PyObject *tb; /* borrowed from the traces list */
	long long count, size;
};

PyDoc_STRVAR(group_traces_doc,
"group_traces(traces) -> [(traceback, count, bytes)]\n\n"
"Sums the (domain, size, traceback) tuples of _tracemalloc._get_traces()\n"
"by traceback identity, in the order first met.");

static PyObject *group_traces(PyObject *module, PyObject *traces)
{
	(void)module;
	if (!PyList_Check(traces)) {
		PyErr_SetString(PyExc_TypeError, "a list is needed");
		return NULL;
	}
	struct tbsum *sums = NULL;
	size_t n = 0, cap = 0, mask = 0;
	size_t *index = NULL;
	PyObject *out = NULL;
	Py_ssize_t total = PyList_GET_SIZE(traces);
	for (Py_ssize_t i = 0; i < total; i++) {
		PyObject *tr = PyList_GET_ITEM(traces, i);
		if (!PyTuple_Check(tr) || PyTuple_GET_SIZE(tr) < 3) {
			PyErr_SetString(PyExc_ValueError, "unexpected trace");
			goto out;
		}
		PyObject *tb = PyTuple_GET_ITEM(tr, 2);
		long long size = PyLong_AsLongLong(PyTuple_GET_ITEM(tr, 1));
		if (size == -1 && PyErr_Occurred())
			goto out;
		if (!index || 2 * (n + 1) > mask + 1) {
			size_t sz = index ? 2 * (mask + 1) : 4096;
			size_t *ix = calloc(sz, sizeof(*ix));
			if (!ix) {
				PyErr_NoMemory();
				goto out;
			}
			for (size_t k = 0; k < n; k++) {
				size_t j = hash_ptr(sums[k].tb) & (sz - 1);
				while (ix[j])
					j = (j + 1) & (sz - 1);
				ix[j] = k + 1;
			}
			free(index);
			index = ix;
			mask = sz - 1;
		}
		size_t j = hash_ptr(tb) & mask;
		while (index[j] && sums[index[j] - 1].tb != tb)
			j = (j + 1) & mask;
		if (!index[j]) {
			if (n == cap) {
				size_t c2 = cap ? 2 * cap : 1024;
				struct tbsum *s2 = realloc(sums, c2 * sizeof(*s2));
				if (!s2) {
					PyErr_NoMemory();
					goto out;
				}
				sums = s2;
				cap = c2;
			}
			sums[n].tb = tb;
			sums[n].count = 0;
			sums[n].size = 0;
			index[j] = ++n;
		}
		sums[index[j] - 1].count++;
		sums[index[j] - 1].size += size;
	}
	out = PyList_New((Py_ssize_t)n);
	if (!out)
		goto out;
	for (size_t k = 0; k < n; k++) {
		PyObject *row = Py_BuildValue("(OLL)", sums[k].tb, sums[k].count, sums[k].size);
		if (!row) {
			Py_CLEAR(out);
			goto out;
		}
		PyList_SET_ITEM(out, (Py_ssize_t)k, row);
	}
out:
	free(sums);
	free(index);
	return out;
}

/* -- frame numbers of tracebacks ------------------------------------------- */

PyDoc_STRVAR(frame_rows_doc,
"frame_rows(tracebacks, index, add, limit) -> [[int]]\n\n"
"For each traceback (a tuple of frames), the numbers of its first limit\n"
"frames: index[frame], or add(frame) for a frame not in the dict index.");

static PyObject *frame_rows(PyObject *module, PyObject *args)
{
	PyObject *tbs, *index, *add;
	Py_ssize_t limit;
	(void)module;
	if (!PyArg_ParseTuple(args, "O!O!On:frame_rows", &PyList_Type, &tbs, &PyDict_Type, &index,
			      &add, &limit))
		return NULL;
	Py_ssize_t n = PyList_GET_SIZE(tbs);
	PyObject *out = PyList_New(n);
	if (!out)
		return NULL;
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *tb = PyList_GET_ITEM(tbs, i);
		if (!PyTuple_Check(tb)) {
			PyErr_SetString(PyExc_TypeError, "a traceback must be a tuple");
			goto fail;
		}
		Py_ssize_t k = PyTuple_GET_SIZE(tb) < limit ? PyTuple_GET_SIZE(tb) : limit;
		PyObject *row = PyList_New(k);
		if (!row)
			goto fail;
		PyList_SET_ITEM(out, i, row);
		for (Py_ssize_t j = 0; j < k; j++) {
			PyObject *frame = PyTuple_GET_ITEM(tb, j);
			PyObject *ix = PyDict_GetItemWithError(index, frame);
			if (ix) {
				Py_INCREF(ix);
			} else if (PyErr_Occurred()) {
				goto fail;
			} else {
				ix = PyObject_CallFunctionObjArgs(add, frame, NULL);
				if (!ix)
					goto fail;
			}
			PyList_SET_ITEM(row, j, ix);
		}
	}
	return out;
fail:
	Py_DECREF(out);
	return NULL;
}

/* -- the agent's own allocations, untraced --------------------------------
 *
 * While a snapshot is built, tracemalloc traces every allocation the agent
 * makes: each one pays for a walk of the agent's stack and is dropped from
 * the snapshot anyway. quiet(True) puts hooks above tracemalloc's for the
 * MEM and OBJ domains that send malloc and calloc from the calling thread
 * straight to the allocator tracemalloc wraps; everything else, other
 * threads' allocations included, goes through tracemalloc as before.
 * realloc and free always do: tracemalloc forgets a freed block it never
 * traced, and traces a reallocated one afresh, so its table never holds a
 * block that is gone.
 *
 * The allocator tracemalloc wraps is found through the context of its
 * hooks, which is its copy of the allocator it replaced. That is checked,
 * not assumed: arm(False) records the allocators just before the agent
 * starts tracemalloc, arm(True) just after, and quiet mode is only offered
 * when the new hooks' context holds exactly what was recorded before.
 */

enum { NDOM = 2 };
static const PyMemAllocatorDomain quiet_domains[NDOM] = {PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ};
static PyMemAllocatorEx below[NDOM];   /* before tracemalloc started */
static PyMemAllocatorEx tracer[NDOM];  /* tracemalloc's hooks */
static PyMemAllocatorEx hooks[NDOM];   /* ours */
static int dom_ix[NDOM] = {0, 1};
static int armed;
static volatile int quiet_on;
static unsigned long quiet_ident;

static int quiet_here(void)
{
	return quiet_on && PyThread_get_thread_ident() == quiet_ident;
}

static void *q_malloc(void *ctx, size_t size)
{
	int d = *(int *)ctx;
	if (quiet_here()) {
		PyMemAllocatorEx *in = tracer[d].ctx;
		return in->malloc(in->ctx, size);
	}
	return tracer[d].malloc(tracer[d].ctx, size);
}

static void *q_calloc(void *ctx, size_t nelem, size_t elsize)
{
	int d = *(int *)ctx;
	if (quiet_here()) {
		PyMemAllocatorEx *in = tracer[d].ctx;
		return in->calloc(in->ctx, nelem, elsize);
	}
	return tracer[d].calloc(tracer[d].ctx, nelem, elsize);
}

static void *q_realloc(void *ctx, void *ptr, size_t size)
{
	int d = *(int *)ctx;
	return tracer[d].realloc(tracer[d].ctx, ptr, size);
}

static void q_free(void *ctx, void *ptr)
{
	int d = *(int *)ctx;
	tracer[d].free(tracer[d].ctx, ptr);
}

static int same_allocator(const PyMemAllocatorEx *a, const PyMemAllocatorEx *b)
{
	return a->ctx == b->ctx && a->malloc == b->malloc && a->calloc == b->calloc &&
	       a->realloc == b->realloc && a->free == b->free;
}

PyDoc_STRVAR(arm_doc,
"arm(started) -> bool\n\n"
"Call with False right before the agent starts tracemalloc, with True right\n"
"after; True when quiet mode can be used from then on.");

static PyObject *arm(PyObject *module, PyObject *arg)
{
	(void)module;
	int after = PyObject_IsTrue(arg);
	if (after < 0)
		return NULL;
	if (!after) {
		armed = 0;
		for (int d = 0; d < NDOM; d++)
			PyMem_GetAllocator(quiet_domains[d], &below[d]);
		Py_RETURN_FALSE;
	}
	for (int d = 0; d < NDOM; d++) {
		PyMemAllocatorEx now;
		PyMem_GetAllocator(quiet_domains[d], &now);
		if (!now.ctx || same_allocator(&now, &below[d]) ||
		    !same_allocator((const PyMemAllocatorEx *)now.ctx, &below[d]))
			Py_RETURN_FALSE;
		tracer[d] = now;
		hooks[d].ctx = &dom_ix[d];
		hooks[d].malloc = q_malloc;
		hooks[d].calloc = q_calloc;
		hooks[d].realloc = q_realloc;
		hooks[d].free = q_free;
	}
	armed = 1;
	Py_RETURN_TRUE;
}

PyDoc_STRVAR(quiet_doc,
"quiet(on) -> bool\n\n"
"on: the calling thread's allocations skip tracemalloc until quiet(False);\n"
"False when that cannot be done (not armed, or tracemalloc's hooks are not\n"
"the ones on top). Off: removes the hooks if they are still on top.");

static PyObject *quiet(PyObject *module, PyObject *arg)
{
	(void)module;
	int on = PyObject_IsTrue(arg);
	if (on < 0)
		return NULL;
	if (!on) {
		for (int d = 0; d < NDOM; d++) {
			PyMemAllocatorEx now;
			PyMem_GetAllocator(quiet_domains[d], &now);
			if (same_allocator(&now, &hooks[d]))
				PyMem_SetAllocator(quiet_domains[d], &tracer[d]);
		}
		quiet_on = 0;
		Py_RETURN_FALSE;
	}
	if (!armed || quiet_on)
		Py_RETURN_FALSE;
	for (int d = 0; d < NDOM; d++) {
		PyMemAllocatorEx now;
		PyMem_GetAllocator(quiet_domains[d], &now);
		if (!same_allocator(&now, &tracer[d]))
			Py_RETURN_FALSE;
	}
	quiet_ident = PyThread_get_thread_ident();
	quiet_on = 1;
	for (int d = 0; d < NDOM; d++)
		PyMem_SetAllocator(quiet_domains[d], &hooks[d]);
	Py_RETURN_TRUE;
}

/* A forked child has no quiet thread (another one could get its id). */
static void quiet_after_fork(void)
{
	quiet_on = 0;
}

/*
 * malloc_bytes(): what the C library's malloc has handed out and not yet
 * had back, in bytes, or None where that cannot be asked cheaply. With
 * glibc 2.33 and later it is mallinfo2()'s in-use bytes of the heap arenas
 * (uordblks) plus the blocks it serves with mmap (hblkhd), summed over all
 * arenas. pymalloc's arenas are mapped by Python itself and are not in it;
 * Python's large blocks, extensions' and ctypes' mallocs are. Takes the
 * allocator's lock for a walk of the arenas' headers: microseconds.
 */
static PyObject *malloc_bytes(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
#if defined(__GLIBC__) && defined(__GLIBC_PREREQ)
#if __GLIBC_PREREQ(2, 33)
	struct mallinfo2 mi = mallinfo2();
	return PyLong_FromUnsignedLongLong((unsigned long long)mi.uordblks + (unsigned long long)mi.hblkhd);
#endif
#endif
	Py_RETURN_NONE;
}

PyDoc_STRVAR(malloc_bytes_doc,
	     "malloc_bytes(): bytes in use from the C library's malloc (mallinfo2 uordblks + "
	     "hblkhd), or None where it cannot tell.");

static PyMethodDef module_methods[] = {
	{"malloc_bytes", malloc_bytes, METH_NOARGS, malloc_bytes_doc},
	{"arm", arm, METH_O, arm_doc},
	{"quiet", quiet, METH_O, quiet_doc},
	{"frame_rows", frame_rows, METH_VARARGS, frame_rows_doc},
	{"run", census_run, METH_VARARGS, run_doc},
	{"measure", census_measure, METH_VARARGS, measure_doc},
	{"group_traces", group_traces, METH_O, group_traces_doc},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef census_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "_census",
	.m_doc = "The Python agent's census and trace grouping in C.",
	.m_size = -1,
	.m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__census(void);
PyMODINIT_FUNC PyInit__census(void)
{
	if (PyType_Ready(&CensusType) < 0)
		return NULL;
	if (pthread_atfork(NULL, NULL, quiet_after_fork) != 0)
		return PyErr_NoMemory();
	PyObject *m = PyModule_Create(&census_module);
	if (!m)
		return NULL;
	if (PyModule_AddIntConstant(m, "VAR", FACT_VAR) < 0 ||
	    PyModule_AddIntConstant(m, "LIST", FACT_LIST) < 0 ||
	    PyModule_AddIntConstant(m, "STR", FACT_STR) < 0 ||
	    PyModule_AddIntConstant(m, "INT", FACT_INT) < 0 ||
	    PyModule_AddIntConstant(m, "BATCH", BATCH) < 0 ||
	    /* The interface the Python agent expects; see load_extension(). */
	    PyModule_AddIntConstant(m, "INTERFACE", 1) < 0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
