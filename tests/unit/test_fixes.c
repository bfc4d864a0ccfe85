/* Unit tests for core/fixes.c: which fix each leak hint gets. */
#include <criterion/criterion.h>
#include <string.h>

#include "diff.h"
#include "fixes.h"
#include "snapshot.h"

static struct ld_snapshot *before, *after;
static struct ld_diff *diff;

static void setup(void)
{
	before = ld_snapshot_create();
	after = ld_snapshot_create();
	cr_assert_not_null(before);
	cr_assert_not_null(after);
	diff = NULL;
}

static void teardown(void)
{
	ld_diff_destroy(diff);
	ld_snapshot_destroy(before);
	ld_snapshot_destroy(after);
}

TestSuite(fixes, .init = setup, .fini = teardown);

static uint32_t str(struct ld_snapshot *s, const char *v)
{
	uint32_t idx;
	cr_assert_eq(ld_strtab_intern(&s->strings, v, strlen(v), &idx), 0);
	return idx;
}

static void type(struct ld_snapshot *s, const char *name, uint64_t count)
{
	cr_assert_eq(ld_snapshot_add_type(s, str(s, name), count, count * 64), 0);
}

static void hint(struct ld_snapshot *s, enum ld_hint_kind kind, const char *name, const char *tname,
		 uint64_t value, int64_t maxsize)
{
	struct ld_hint h = { .kind = kind, .name = name ? str(s, name) : LD_NOSTR,
			     .type = tname ? str(s, tname) : LD_NOSTR, .value = value, .maxsize = maxsize };
	cr_assert_eq(ld_snapshot_add_hint(s, &h, NULL, 0), 0);
}

/* A path hint for the last element of path, which is given root first. */
#define PATH(s, ...)                                                                        \
	do {                                                                                \
		const char *const p_[] = { __VA_ARGS__ };                                   \
		uint32_t n_ = (uint32_t)(sizeof(p_) / sizeof(p_[0])), idx_[16];             \
		for (uint32_t i_ = 0; i_ < n_; i_++)                                        \
			idx_[i_] = str((s), p_[i_]);                                        \
		struct ld_hint h_ = { .kind = LD_HINT_PATH, .name = LD_NOSTR,               \
				      .type = str((s), p_[n_ - 1]), .maxsize = -1 };        \
		cr_assert_eq(ld_snapshot_add_hint((s), &h_, idx_, n_), 0);                   \
	} while (0)

static void run(void)
{
	cr_assert_eq(ld_diff_create(before, after, NULL, &diff), 0);
}

/* leakdiff show: the one snapshot compared with an empty one. */
static void run_show(void)
{
	cr_assert_eq(ld_diff_create(before, after, NULL, &diff), 0);
	cr_assert_eq(before->nhints, 0, "show compares with an empty snapshot");
}

static const struct ld_diff_hint *find(enum ld_hint_kind kind, const char *key)
{
	for (size_t i = 0; i < diff->nhints; i++) {
		const struct ld_diff_hint *h = &diff->hints[i];
		const char *k = kind == LD_HINT_PATH || kind == LD_HINT_GARBAGE ? h->type : h->name;
		if (h->kind == kind && (!key || strcmp(k, key) == 0))
			return h;
	}
	cr_assert_fail("no %s hint %s", ld_hint_kind_name(kind), key ? key : "");
	return NULL;
}

static enum ld_fix fix_of(enum ld_hint_kind kind, const char *key)
{
	return ld_hint_fix_kind(diff, find(kind, key), false);
}

Test(fixes, module_container_that_grew_is_bounded_evicted_or_cleared)
{
	hint(before, LD_HINT_CONTAINER, "app.cache.store", "dict", 10, -1);
	hint(after, LD_HINT_CONTAINER, "app.cache.store", "dict", 1000, -1);
	hint(before, LD_HINT_CONTAINER, "app.config.settings", "dict", 12, -1);
	hint(after, LD_HINT_CONTAINER, "app.config.settings", "dict", 12, -1);
	hint(before, LD_HINT_CONTAINER, "app.pending", "list", 50, -1);
	hint(after, LD_HINT_CONTAINER, "app.pending", "list", 5, -1);
	run();
	cr_assert_eq(fix_of(LD_HINT_CONTAINER, "app.cache.store"), LD_FIX_CONTAINER);
	/* Unchanged or shrinking: nothing to fix. */
	cr_assert_eq(fix_of(LD_HINT_CONTAINER, "app.config.settings"), LD_FIX_NONE);
	cr_assert_eq(fix_of(LD_HINT_CONTAINER, "app.pending"), LD_FIX_NONE);
	cr_assert_null(ld_hint_fix(diff, find(LD_HINT_CONTAINER, "app.pending"), false));
	cr_assert_str_eq(ld_hint_fix(diff, find(LD_HINT_CONTAINER, "app.cache.store"), false),
			 ld_fix_text(LD_FIX_CONTAINER));
}

Test(fixes, class_attribute_growing_with_its_class_is_a_registry)
{
	/* No path: the class's own instances grew along with Class.attr. */
	type(before, "app.session.Session", 1000);
	type(after, "app.session.Session", 3000);
	hint(before, LD_HINT_CONTAINER, "app.session.Session.registry", "list", 1000, -1);
	hint(after, LD_HINT_CONTAINER, "app.session.Session.registry", "list", 3000, -1);
	/* A class attribute whose class did not grow is a plain container. */
	type(before, "app.pool.Pool", 1);
	type(after, "app.pool.Pool", 1);
	hint(before, LD_HINT_CONTAINER, "app.pool.Pool.free", "list", 1, -1);
	hint(after, LD_HINT_CONTAINER, "app.pool.Pool.free", "list", 9, -1);
	run();
	cr_assert_eq(fix_of(LD_HINT_CONTAINER, "app.session.Session.registry"), LD_FIX_REGISTRY);
	cr_assert_eq(fix_of(LD_HINT_CONTAINER, "app.pool.Pool.free"), LD_FIX_CONTAINER);
	cr_assert(strstr(ld_fix_text(LD_FIX_REGISTRY), "weakref.WeakSet"));
}

Test(fixes, registry_path_gives_the_path_and_its_container_the_weak_fix)
{
	hint(before, LD_HINT_CONTAINER, "app.session.Session.registry", "list", 1000, -1);
	hint(after, LD_HINT_CONTAINER, "app.session.Session.registry", "list", 3000, -1);
	PATH(after, "app.session.Session.registry", "list", "app.session.Session");
	run();
	cr_assert_eq(fix_of(LD_HINT_PATH, "app.session.Session"), LD_FIX_REGISTRY);
	cr_assert_eq(fix_of(LD_HINT_CONTAINER, "app.session.Session.registry"), LD_FIX_REGISTRY);
}

Test(fixes, paths_without_a_known_shape_get_none)
{
	/* A singleton held by a module global: one instance, nothing to fix. */
	PATH(after, "_distutils_hack.DISTUTILS_FINDER", "_distutils_hack.DistutilsMetaFinder");
	PATH(after, "app.bus", "app.EventBus");
	/* A class attribute holding an instance of another class. */
	PATH(after, "app.Server.items", "list", "app.Item");
	/* A closure held by a module global, not stored in a container. */
	PATH(after, "app.handler", "function", "cell", "app.Report");
	/* A task held by a list: the set.discard idiom does not apply. */
	PATH(after, "app.jobs", "list", "_asyncio.Task");
	run();
	cr_assert_eq(fix_of(LD_HINT_PATH, "_distutils_hack.DistutilsMetaFinder"), LD_FIX_NONE);
	cr_assert_eq(fix_of(LD_HINT_PATH, "app.EventBus"), LD_FIX_NONE);
	cr_assert_eq(fix_of(LD_HINT_PATH, "app.Item"), LD_FIX_NONE);
	cr_assert_eq(fix_of(LD_HINT_PATH, "app.Report"), LD_FIX_NONE);
	cr_assert_eq(fix_of(LD_HINT_PATH, "_asyncio.Task"), LD_FIX_NONE);
}

Test(fixes, exceptions_kept_with_tracebacks)
{
	hint(before, LD_HINT_CONTAINER, "__main__.errors", "list", 10, -1);
	hint(after, LD_HINT_CONTAINER, "__main__.errors", "list", 2010, -1);
	PATH(after, "__main__.errors", "list", "ValueError", "traceback", "frame", "bytearray");
	run();
	cr_assert_eq(fix_of(LD_HINT_PATH, "bytearray"), LD_FIX_EXCEPTIONS);
	/* The list's fix is the path's: bounding it would not be the point. */
	cr_assert_eq(fix_of(LD_HINT_CONTAINER, "__main__.errors"), LD_FIX_EXCEPTIONS);
	cr_assert(strstr(ld_fix_text(LD_FIX_EXCEPTIONS), "with_traceback(None)"));
}

Test(fixes, callbacks_never_unsubscribed)
{
	PATH(after, "__main__.bus", "__main__.EventBus", "list", "function", "cell", "__main__.Report");
	PATH(after, "app.signals", "dict", "list", "method", "app.Widget");
	run();
	cr_assert_eq(fix_of(LD_HINT_PATH, "__main__.Report"), LD_FIX_CALLBACKS);
	cr_assert_eq(fix_of(LD_HINT_PATH, "app.Widget"), LD_FIX_CALLBACKS);
	cr_assert(strstr(ld_fix_text(LD_FIX_CALLBACKS), "WeakMethod"));
}

Test(fixes, finished_tasks_kept_in_a_set)
{
	hint(before, LD_HINT_CONTAINER, "__main__.background", "set", 0, -1);
	hint(after, LD_HINT_CONTAINER, "__main__.background", "set", 500, -1);
	PATH(after, "__main__.background", "set", "_asyncio.Task");
	PATH(after, "app.Worker.running", "set", "asyncio.tasks._PyTask", "function", "cell", "app.Job");
	run();
	cr_assert_eq(fix_of(LD_HINT_PATH, "_asyncio.Task"), LD_FIX_TASKS);
	/* Held by a task's coroutine: the task is what to let go of. */
	cr_assert_eq(fix_of(LD_HINT_PATH, "app.Job"), LD_FIX_TASKS);
	cr_assert_eq(fix_of(LD_HINT_CONTAINER, "__main__.background"), LD_FIX_TASKS);
	cr_assert(strstr(ld_fix_text(LD_FIX_TASKS), "add_done_callback"));
}

Test(fixes, unbounded_lru_cache_on_a_function_or_a_method)
{
	type(after, "app.prices.Catalog", 1);
	hint(before, LD_HINT_LRU_CACHE, "app.prices.quote", NULL, 100, -1);
	hint(after, LD_HINT_LRU_CACHE, "app.prices.quote", NULL, 300, -1);
	hint(before, LD_HINT_LRU_CACHE, "app.prices.Catalog.lookup", NULL, 1, -1);
	hint(after, LD_HINT_LRU_CACHE, "app.prices.Catalog.lookup", NULL, 9, -1);
	hint(before, LD_HINT_LRU_CACHE, "app.prices.bounded", NULL, 1, 128);
	hint(after, LD_HINT_LRU_CACHE, "app.prices.bounded", NULL, 128, 128);
	hint(before, LD_HINT_LRU_CACHE, "app.prices.idle", NULL, 7, -1);
	hint(after, LD_HINT_LRU_CACHE, "app.prices.idle", NULL, 7, -1);
	run();
	cr_assert_eq(fix_of(LD_HINT_LRU_CACHE, "app.prices.quote"), LD_FIX_LRU);
	cr_assert_eq(fix_of(LD_HINT_LRU_CACHE, "app.prices.Catalog.lookup"), LD_FIX_LRU_METHOD);
	cr_assert_eq(fix_of(LD_HINT_LRU_CACHE, "app.prices.bounded"), LD_FIX_NONE);
	cr_assert_eq(fix_of(LD_HINT_LRU_CACHE, "app.prices.idle"), LD_FIX_NONE);
	cr_assert(strstr(ld_fix_text(LD_FIX_LRU_METHOD), "self"));
	cr_assert_null(strstr(ld_fix_text(LD_FIX_LRU), "self"));
}

Test(fixes, garbage_and_growing_cycles)
{
	hint(before, LD_HINT_GARBAGE, NULL, "app.Node", 0, -1);
	hint(after, LD_HINT_GARBAGE, NULL, "app.Node", 4, -1);
	hint(before, LD_HINT_GARBAGE, NULL, "app.Gone", 3, -1);
	hint(before, LD_HINT_CYCLES, NULL, NULL, 10, -1);
	hint(after, LD_HINT_CYCLES, NULL, NULL, 200, -1);
	run();
	cr_assert_eq(fix_of(LD_HINT_GARBAGE, "app.Node"), LD_FIX_CYCLES);
	cr_assert_eq(fix_of(LD_HINT_GARBAGE, "app.Gone"), LD_FIX_NONE);
	cr_assert_eq(fix_of(LD_HINT_CYCLES, NULL), LD_FIX_CYCLES);
}

Test(fixes, shrinking_cycles_and_gone_paths_get_none)
{
	hint(before, LD_HINT_CYCLES, NULL, NULL, 200, -1);
	hint(after, LD_HINT_CYCLES, NULL, NULL, 10, -1);
	PATH(before, "app.session.Session.registry", "list", "app.session.Session");
	run();
	cr_assert_eq(fix_of(LD_HINT_CYCLES, NULL), LD_FIX_NONE);
	cr_assert_eq(fix_of(LD_HINT_PATH, "app.session.Session"), LD_FIX_NONE);
}

Test(fixes, show_gives_only_fixes_that_hold_at_any_size)
{
	type(after, "app.session.Session", 3000);
	hint(after, LD_HINT_CONTAINER, "app.session.Session.registry", "list", 3000, -1);
	hint(after, LD_HINT_CONTAINER, "app.cache.store", "dict", 10, -1);
	hint(after, LD_HINT_LRU_CACHE, "app.prices.quote", NULL, 300, -1);
	hint(after, LD_HINT_GARBAGE, NULL, "app.Node", 4, -1);
	hint(after, LD_HINT_CYCLES, NULL, NULL, 200, -1);
	PATH(after, "app.session.Session.registry", "list", "app.session.Session");
	run_show();
	const struct ld_diff_hint *h = find(LD_HINT_CONTAINER, "app.session.Session.registry");
	cr_assert_eq(ld_hint_fix_kind(diff, h, true), LD_FIX_NONE);
	cr_assert_eq(ld_hint_fix_kind(diff, find(LD_HINT_CONTAINER, "app.cache.store"), true), LD_FIX_NONE);
	cr_assert_eq(ld_hint_fix_kind(diff, find(LD_HINT_CYCLES, NULL), true), LD_FIX_NONE);
	cr_assert_eq(ld_hint_fix_kind(diff, find(LD_HINT_LRU_CACHE, "app.prices.quote"), true), LD_FIX_LRU);
	cr_assert_eq(ld_hint_fix_kind(diff, find(LD_HINT_GARBAGE, "app.Node"), true), LD_FIX_CYCLES);
	cr_assert_eq(ld_hint_fix_kind(diff, find(LD_HINT_PATH, "app.session.Session"), true), LD_FIX_REGISTRY);
}

Test(fixes, every_cause_has_one_short_line)
{
	cr_assert_null(ld_fix_text(LD_FIX_NONE));
	for (int f = LD_FIX_CONTAINER; f <= LD_FIX_TASKS; f++) {
		const char *t = ld_fix_text((enum ld_fix)f);
		cr_assert_not_null(t, "cause %d", f);
		cr_assert_null(strchr(t, '\n'), "%s", t);
		cr_assert_leq(strlen(t), 80, "%s", t);
	}
}

Test(fixes, plain_path_takes_the_fix_of_the_hint_at_its_root)
{
	hint(before, LD_HINT_CONTAINER, "app.cache.CACHE", "dict", 10, -1);
	hint(after, LD_HINT_CONTAINER, "app.cache.CACHE", "dict", 30, -1);
	PATH(after, "app.cache.CACHE", "dict", "app.cache.Page");
	hint(before, LD_HINT_LRU_CACHE, "app.pricing.quote", NULL, 10, -1);
	hint(after, LD_HINT_LRU_CACHE, "app.pricing.quote", NULL, 30, -1);
	PATH(after, "app.pricing.quote", "functools._lru_cache_wrapper", "app.pricing.Quote");
	/* Its root did not grow: the path alone says nothing to fix. */
	hint(before, LD_HINT_CONTAINER, "app.config.settings", "dict", 12, -1);
	hint(after, LD_HINT_CONTAINER, "app.config.settings", "dict", 12, -1);
	PATH(after, "app.config.settings", "dict", "app.config.Option");
	/* A root that is no hint of ours. */
	PATH(after, "sys.modules", "dict", "module", "dict", "app.plugins.Plugin");
	run();
	cr_assert_eq(fix_of(LD_HINT_PATH, "app.cache.Page"), LD_FIX_CONTAINER);
	cr_assert_eq(fix_of(LD_HINT_PATH, "app.pricing.Quote"), LD_FIX_LRU);
	cr_assert_eq(fix_of(LD_HINT_PATH, "app.config.Option"), LD_FIX_NONE);
	cr_assert_eq(fix_of(LD_HINT_PATH, "app.plugins.Plugin"), LD_FIX_NONE);
}
