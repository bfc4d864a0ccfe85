/*
 * The rule that pairs a leak hint with its usual fix (see fixes.h). It
 * knows the type names the Python agent records: built-in types by their
 * bare names ("list", "function", "traceback"), others as module.QualName.
 */
#include <string.h>

#include "fixes.h"

/* Containers that hold their items strongly, as the agent names them. */
static const char *const containers[] = {
	"list", "dict", "set", "tuple", "frozenset", "collections.deque",
	"collections.OrderedDict", "collections.defaultdict", "collections.Counter",
};

/* What a callback is once it has been stored: a closure holds its cells. */
static const char *const callables[] = { "function", "method", "cell", "functools.partial" };

/* asyncio's task in C, and its pure Python fallback. */
static const char *const tasks[] = { "_asyncio.Task", "asyncio.Task", "asyncio.tasks.Task",
				     "asyncio.tasks._PyTask" };

static bool one_of(const char *s, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, set[i]) == 0)
			return true;
	return false;
}

#define ONE_OF(s, set) one_of((s), (set), sizeof(set) / sizeof((set)[0]))

/*
 * Whether name is owner + "." + one more component: an attribute of owner
 * rather than something deeper in it.
 */
static bool attribute_of(const char *name, const char *owner)
{
	size_t n = strlen(owner);
	return n && strncmp(name, owner, n) == 0 && name[n] == '.' && name[n + 1] &&
	       !strchr(name + n + 1, '.');
}

/* The diff's type called the part of name before its last dot, or NULL. */
static const struct ld_diff_type *owner_type(const struct ld_diff *d, const char *name)
{
	const char *dot = strrchr(name, '.');
	if (!dot || dot == name)
		return NULL;
	size_t n = (size_t)(dot - name);
	for (size_t i = 0; i < d->ntypes; i++)
		if (strncmp(d->types[i].name, name, n) == 0 && !d->types[i].name[n])
			return &d->types[i];
	return NULL;
}

/*
 * The cause a retention path shows, root first as stored: an exception's
 * traceback (its frames keep their locals), a callable stored in a
 * container, a task held by a set, or a class attribute that collects
 * instances of its own class through a container.
 */
static enum ld_fix path_fix(const struct ld_snapshot *s, const uint32_t *path, uint32_t len)
{
	if (len < 2)
		return LD_FIX_NONE;
	bool contained = false;
	enum ld_fix found = LD_FIX_NONE;
	for (uint32_t i = 1; i < len; i++) {
		const char *t = ld_snapshot_str(s, path[i]);
		if (strcmp(t, "traceback") == 0)
			return LD_FIX_EXCEPTIONS;
		if (ONE_OF(t, tasks) && strcmp(ld_snapshot_str(s, path[i - 1]), "set") == 0)
			found = found == LD_FIX_NONE ? LD_FIX_TASKS : found;
		if (contained && ONE_OF(t, callables))
			found = found == LD_FIX_NONE ? LD_FIX_CALLBACKS : found;
		if (ONE_OF(t, containers))
			contained = true;
	}
	if (found != LD_FIX_NONE)
		return found;
	/* Class.attr -> container -> ... -> Class: a registry of instances. */
	if (len >= 3 && ONE_OF(ld_snapshot_str(s, path[1]), containers) &&
	    attribute_of(ld_snapshot_str(s, path[0]), ld_snapshot_str(s, path[len - 1])))
		return LD_FIX_REGISTRY;
	return LD_FIX_NONE;
}

static enum ld_fix container_fix(const struct ld_diff *d, const struct ld_diff_hint *h)
{
	/* A path from this container says more about what it keeps. */
	enum ld_fix registry = LD_FIX_NONE;
	for (size_t i = 0; i < d->nhints; i++) {
		const struct ld_diff_hint *p = &d->hints[i];
		if (p->kind != LD_HINT_PATH || p->state == LD_DIFF_GONE || !p->path_len ||
		    strcmp(ld_snapshot_str(p->path_snap, p->path[0]), h->name) != 0)
			continue;
		enum ld_fix f = path_fix(p->path_snap, p->path, p->path_len);
		if (f == LD_FIX_REGISTRY)
			registry = f;
		else if (f != LD_FIX_NONE)
			return f;
	}
	if (registry != LD_FIX_NONE)
		return registry;
	/* Without a path: Class.attr growing along with Class's instances. */
	const struct ld_diff_type *t = owner_type(d, h->name);
	if (t && ld_diff_count_delta(&t->row) > 0)
		return LD_FIX_REGISTRY;
	return LD_FIX_CONTAINER;
}

/*
 * A path of no known shape that starts at a container or an lru_cache of
 * the program's hints: the fix of that hint, so that the path's line says
 * what to do about its root. Roots without such a hint (sys.modules, a
 * thread's frame) get none.
 */
static enum ld_fix root_fix(const struct ld_diff *d, const struct ld_diff_hint *h, bool show)
{
	if (!h->path_len)
		return LD_FIX_NONE;
	const char *root = ld_snapshot_str(h->path_snap, h->path[0]);
	for (size_t i = 0; i < d->nhints; i++) {
		const struct ld_diff_hint *r = &d->hints[i];
		if ((r->kind == LD_HINT_CONTAINER || r->kind == LD_HINT_LRU_CACHE) && strcmp(r->name, root) == 0)
			return ld_hint_fix_kind(d, r, show);
	}
	return LD_FIX_NONE;
}

enum ld_fix ld_hint_fix_kind(const struct ld_diff *d, const struct ld_diff_hint *h, bool show)
{
	bool grew = !show && h->after > h->before;
	switch (h->kind) {
	case LD_HINT_CONTAINER:
		return grew ? container_fix(d, h) : LD_FIX_NONE;
	case LD_HINT_LRU_CACHE:
		/* A bounded cache stops growing by itself. */
		if (h->maxsize >= 0 || !(grew || (show && h->after)))
			return LD_FIX_NONE;
		/* module.Class.method: the cache's keys hold each instance. */
		return owner_type(d, h->name) ? LD_FIX_LRU_METHOD : LD_FIX_LRU;
	case LD_HINT_GARBAGE:
		/* Uncollectable at any count: they never go away. */
		return h->after ? LD_FIX_CYCLES : LD_FIX_NONE;
	case LD_HINT_CYCLES:
		return grew ? LD_FIX_CYCLES : LD_FIX_NONE;
	case LD_HINT_PATH:
		if (h->state == LD_DIFF_GONE)
			return LD_FIX_NONE;
		enum ld_fix f = path_fix(h->path_snap, h->path, h->path_len);
		return f != LD_FIX_NONE ? f : root_fix(d, h, show);
	}
	return LD_FIX_NONE;
}

const char *ld_fix_text(enum ld_fix f)
{
	switch (f) {
	case LD_FIX_NONE:
		break;
	case LD_FIX_CONTAINER:
		return "bound it, evict old entries, or clear it when done";
	case LD_FIX_REGISTRY:
		return "hold the instances weakly: weakref.WeakSet or weakref.WeakValueDictionary";
	case LD_FIX_LRU:
		return "give it a maxsize";
	case LD_FIX_LRU_METHOD:
		return "give it a maxsize, or cache on something that does not hold self";
	case LD_FIX_CYCLES:
		return "break the cycle with weakref, or release in close() or a context manager";
	case LD_FIX_EXCEPTIONS:
		return "keep str(e) rather than the exception, or e.with_traceback(None)";
	case LD_FIX_CALLBACKS:
		return "unsubscribe when done, or subscribe a weakref.WeakMethod";
	case LD_FIX_TASKS:
		return "drop tasks when they finish: task.add_done_callback(the_set.discard)";
	}
	return NULL;
}

const char *ld_hint_fix(const struct ld_diff *d, const struct ld_diff_hint *h, bool show)
{
	return ld_fix_text(ld_hint_fix_kind(d, h, show));
}
