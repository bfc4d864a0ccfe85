/*
 * A plugin with an allocator of its own, which prog_attach.c loads with
 * RTLD_DEEPBIND after the agent attached, so that its calls to malloc and
 * free bind to its own definitions. The agent must leave those entries
 * alone: a block from the process's malloc reaching this free(), or the
 * other way round, aborts.
 */
#include <stddef.h>
#include <stdlib.h>

#define EXPORT __attribute__((visibility("default")))

static _Alignas(16) char arena[1 << 20];
static size_t used;

EXPORT void *malloc(size_t n);
EXPORT void free(void *p);
EXPORT void plugin_leak(size_t n, size_t size);

static int mine(const void *p)
{
	return (const char *)p >= arena && (const char *)p < arena + sizeof(arena);
}

EXPORT void *malloc(size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (n > sizeof(arena) - used)
		return NULL;
	void *p = arena + used;
	used += n;
	return p;
}

EXPORT void free(void *p)
{
	if (p && !mine(p))
		abort();
}

static void *volatile kept[1024];

EXPORT void plugin_leak(size_t n, size_t size)
{
	for (size_t i = 0; i < n && i < 1024; i++) {
		void *p = malloc(size);
		if (!mine(p))
			abort();
		kept[i] = p;
	}
	for (size_t i = 0; i < n && i < 1024; i++)
		free(kept[i]);
}
