/*
 * A plugin that prog_attach.c dlopen()s after the agent attached: its calls
 * to calloc (through the PLT, bound lazily) and malloc (through a GOT entry
 * bound at load, since its address is taken) go through entries the agent
 * must rewrite when it is loaded, unless it went into another namespace.
 */
#include <stdlib.h>

#define EXPORT __attribute__((visibility("default")))

static void *volatile kept[10000];
static size_t nkept;

EXPORT void plugin_leak(size_t n, size_t size);
EXPORT void *(*plugin_malloc(void))(size_t);

EXPORT void plugin_leak(size_t n, size_t size)
{
	for (size_t i = 0; i < n && nkept < 10000; i++)
		kept[nkept++] = calloc(1, size);
}

/* What the plugin's GOT says malloc is now. */
EXPORT void *(*plugin_malloc(void))(size_t)
{
	void *(*volatile f)(size_t) = malloc;
	return f;
}
