/* Unit tests for formats/snap.c: the .snap reader and writer. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frames.h"
#include "helpers.h"
#include "snap.h"
#include "snapshot.h"

static char *dir;

static void setup(void)
{
	dir = th_tmpdir_create();
	cr_assert_not_null(dir, "cannot create a scratch directory");
}

static void teardown(void)
{
	th_fail_after(-1);
	th_tmpdir_remove(dir);
	free(dir);
	dir = NULL;
}

TestSuite(snap_roundtrip, .init = setup, .fini = teardown);
TestSuite(snap_save, .init = setup, .fini = teardown);
TestSuite(snap_reject, .init = setup, .fini = teardown);
TestSuite(snap_accept, .init = setup, .fini = teardown);

#define HDR "{\"format\":\"leakdiff-snapshot\",\"version\":1"

/* A path in the scratch directory, in a caller buffer. */
static const char *path_in(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", dir, name);
	return buf;
}

/* ---------------------------------------------------------------- building */

static uint32_t str(struct ld_snapshot *s, const char *v)
{
	uint32_t idx;
	cr_assert_eq(ld_strtab_intern(&s->strings, v, strlen(v), &idx), 0);
	return idx;
}

static void add_hint(struct ld_snapshot *s, enum ld_hint_kind kind, const char *name, const char *type,
		     uint64_t value, int64_t maxsize, uint64_t hits, uint64_t misses,
		     const char *const *path, uint32_t plen)
{
	struct ld_hint h = { .kind = kind, .name = name ? str(s, name) : LD_NOSTR,
			     .type = type ? str(s, type) : LD_NOSTR, .value = value, .maxsize = maxsize,
			     .hits = hits, .misses = misses };
	uint32_t p[8];
	for (uint32_t i = 0; i < plen; i++)
		p[i] = str(s, path[i]);
	cr_assert_eq(ld_snapshot_add_hint(s, &h, p, plen), 0);
}

/* A snapshot that uses every part of the model. */
static struct ld_snapshot *build_full(void)
{
	struct ld_snapshot *s = ld_snapshot_create();
	cr_assert_not_null(s);
	struct ld_meta *m = &s->meta;
	cr_assert_eq(ld_meta_set(&m->runtime, "python"), 0);
	cr_assert_eq(ld_meta_set(&m->agent, "leakdiff-python 0.1.0"), 0);
	cr_assert_eq(ld_meta_set(&m->executable, "/usr/bin/python3"), 0);
	cr_assert_eq(ld_meta_set(&m->label, "warm \"up\"\n"), 0);
	cr_assert_eq(ld_meta_set(&m->trigger, "api"), 0);
	cr_assert_eq(ld_meta_set(&m->time, "2026-11-28T12:00:02.000Z"), 0);
	cr_assert_eq(ld_meta_set(&m->host, "ci"), 0);
	cr_assert_eq(ld_meta_set(&m->python, "3.11.2"), 0);
	cr_assert_eq(ld_meta_set(&m->tracer, "hooks"), 0);
	char *cmd[] = { "python3", "app/server.py", "--requests", "3000" };
	char *roots[] = { "/srv/app", "/usr/lib/python3.11" };
	char *stdlib[] = { "/usr/lib/python3.11" };
	cr_assert_eq(ld_meta_set_list(&m->command, &m->ncommand, cmd, 4), 0);
	cr_assert_eq(ld_meta_set_list(&m->roots, &m->nroots, roots, 2), 0);
	cr_assert_eq(ld_meta_set_list(&m->stdlib, &m->nstdlib, stdlib, 1), 0);
	m->pid = 4242;
	m->seq = 3;
	m->depth = 16;
	m->tracing = 1;
	m->elapsed_ms = 12.5;
	m->attached = 1765000000.25;

	uint32_t file = str(s, "app/session.py"), login = str(s, "login"), mod = str(s, "<module>");
	uint32_t text = str(s, "s = Session(user)");
	uint32_t odd_file = str(s, "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac.py");
	uint32_t odd_func = str(s, "tab\there \"q\" back\\slash \x01\x1f");
	uint32_t tsess = str(s, "app.session.Session"), tdict = str(s, "dict"), tempty = str(s, "");

	struct ld_frame f0 = { .file = file, .function = login, .text = text, .line = 42, .function_line = 40 };
	struct ld_frame f1 = { .file = file, .function = mod, .text = LD_NOSTR, .line = 120, .function_line = -1 };
	struct ld_frame f2 = { .file = odd_file, .function = odd_func, .text = LD_NOSTR, .line = 0,
			       .function_line = 0 };
	uint32_t i0, i1, i2;
	cr_assert_eq(ld_snapshot_add_frame(s, &f0, &i0), 0);
	cr_assert_eq(ld_snapshot_add_frame(s, &f1, &i1), 0);
	cr_assert_eq(ld_snapshot_add_frame(s, &f2, &i2), 0);

	cr_assert_eq(ld_snapshot_add_type(s, tsess, 3000, 168000), 0);
	cr_assert_eq(ld_snapshot_add_type(s, tdict, 14010, 1457040), 0);
	cr_assert_eq(ld_snapshot_add_type(s, tempty, 0, 0), 0);

	const uint32_t st_a[] = { i0, i1 }, st_b[] = { i2, i1, i0 };
	cr_assert_eq(ld_snapshot_add_site(s, 3000, 168000, st_a, 2), 0);
	cr_assert_eq(ld_snapshot_add_site(s, 10, 720, st_b, 3), 0);
	cr_assert_eq(ld_snapshot_add_site(s, 1, 16, NULL, 0), 0);
	cr_assert_eq(ld_snapshot_add_site(s, LD_COUNT_MAX, LD_COUNT_MAX, st_b, 1), 0);
	cr_assert_eq(ld_snapshot_add_type_site(s, 0, 3000, 168000, st_a, 2), 0);
	cr_assert_eq(ld_snapshot_add_type_site(s, 1, 5, 1200, st_b + 2, 1), 0);

	static const char *const path[] = { "app.registry", "[0]", ".session" };
	add_hint(s, LD_HINT_CONTAINER, "app.registry", "list", 1000, -1, 0, 0, NULL, 0);
	add_hint(s, LD_HINT_LRU_CACHE, "app.cached", NULL, 100, 128, 5, 7, NULL, 0);
	add_hint(s, LD_HINT_LRU_CACHE, "app.memo", NULL, 0, -1, 0, 3, NULL, 0);
	add_hint(s, LD_HINT_GARBAGE, NULL, "app.Node", 3, -1, 0, 0, NULL, 0);
	add_hint(s, LD_HINT_CYCLES, NULL, NULL, 17, -1, 0, 0, NULL, 0);
	add_hint(s, LD_HINT_PATH, NULL, "app.session.Session", 0, -1, 0, 0, path, 3);

	s->totals = (struct ld_totals){ .heap_bytes = 1203600, .heap_blocks = 16043, .objects = 32023,
					.object_bytes = 2525808, .malloc_bytes = 5490432, .has_malloc = true };
	s->gc.present = true;
	s->gc.enabled = 0;
	s->gc.collected = 200;
	s->gc.uncollectable = 1;
	s->gc.garbage = 2;
	s->gc.ngenerations = 3;
	s->gc.generations[0].collections = 10;
	s->gc.generations[1].collections = 2;
	s->gc.generations[1].collected = 5;
	s->gc.generations[2].collections = 1;
	s->gc.generations[2].collected = 7;
	s->gc.generations[2].uncollectable = 1;
	return s;
}

/* ---------------------------------------------------------------- comparing */

static void same_str(const char *a, const char *b, const char *what)
{
	if (!a || !b)
		cr_assert(a == b, "%s: \"%s\" vs \"%s\"", what, a ? a : "(null)", b ? b : "(null)");
	else
		cr_assert_str_eq(a, b, "%s", what);
}

static void same_list(char *const *a, size_t na, char *const *b, size_t nb, const char *what)
{
	cr_assert_eq(na, nb, "%s: %zu vs %zu entries", what, na, nb);
	cr_assert_eq(a == NULL, b == NULL, "%s: present in only one", what);
	for (size_t i = 0; i < na; i++)
		cr_assert_str_eq(a[i], b[i], "%s[%zu]", what, i);
}

/* Hint strings are interned by the reader: compare them by content. */
static void same_ref(const struct ld_snapshot *a, uint32_t ia, const struct ld_snapshot *b, uint32_t ib,
		     const char *what, size_t i)
{
	cr_assert_eq(ia == LD_NOSTR, ib == LD_NOSTR, "%s of hint %zu present in only one", what, i);
	cr_assert_str_eq(ld_snapshot_str(a, ia), ld_snapshot_str(b, ib), "%s of hint %zu", what, i);
}

static void same_stack(const struct ld_snapshot *a, uint32_t sa, uint32_t da, const struct ld_snapshot *b,
		       uint32_t sb, uint32_t db, const char *what, size_t i)
{
	cr_assert_eq(da, db, "%s[%zu]: depth %u vs %u", what, i, da, db);
	for (uint32_t k = 0; k < da; k++)
		cr_assert_eq(ld_snapshot_stack(a, sa)[k], ld_snapshot_stack(b, sb)[k], "%s[%zu] frame %u", what,
			     i, k);
}

static void assert_same_snapshot(const struct ld_snapshot *a, const struct ld_snapshot *b)
{
	const struct ld_meta *ma = &a->meta, *mb = &b->meta;
	same_str(ma->runtime, mb->runtime, "runtime");
	same_str(ma->agent, mb->agent, "agent");
	same_str(ma->executable, mb->executable, "executable");
	same_str(ma->label, mb->label, "label");
	same_str(ma->trigger, mb->trigger, "trigger");
	same_str(ma->time, mb->time, "time");
	same_str(ma->host, mb->host, "host");
	same_str(ma->python, mb->python, "python");
	same_str(ma->tracer, mb->tracer, "tracer");
	same_list(ma->command, ma->ncommand, mb->command, mb->ncommand, "command");
	same_list(ma->roots, ma->nroots, mb->roots, mb->nroots, "roots");
	same_list(ma->stdlib, ma->nstdlib, mb->stdlib, mb->nstdlib, "stdlib");
	cr_assert_eq(ma->pid, mb->pid);
	cr_assert_eq(ma->seq, mb->seq);
	cr_assert_eq(ma->depth, mb->depth);
	cr_assert_eq(ma->tracing, mb->tracing);
	cr_assert_float_eq(ma->elapsed_ms, mb->elapsed_ms, 1e-9);
	cr_assert_float_eq(ma->attached, mb->attached, 1e-3);

	cr_assert_eq(a->strings.n, b->strings.n, "%zu vs %zu strings", a->strings.n, b->strings.n);
	for (uint32_t i = 0; i < a->strings.n; i++)
		cr_assert_str_eq(ld_snapshot_str(a, i), ld_snapshot_str(b, i), "strings[%u]", i);

	cr_assert_eq(a->nframes, b->nframes);
	for (size_t i = 0; i < a->nframes; i++) {
		const struct ld_frame *fa = &a->frames[i], *fb = &b->frames[i];
		cr_assert_eq(fa->file, fb->file, "frames[%zu].file", i);
		cr_assert_eq(fa->function, fb->function, "frames[%zu].function", i);
		cr_assert_eq(fa->text, fb->text, "frames[%zu].text", i);
		cr_assert_eq(fa->line, fb->line, "frames[%zu].line", i);
		cr_assert_eq(fa->function_line, fb->function_line, "frames[%zu].function_line", i);
		cr_assert_eq(fa->kind, fb->kind, "frames[%zu].kind", i);
		if (fa->kind != LD_FRAME_UNKNOWN)
			cr_assert_eq(fa->kind_name, fb->kind_name, "frames[%zu].kind_name", i);
	}

	cr_assert_eq(a->ntypes, b->ntypes);
	for (size_t i = 0; i < a->ntypes; i++) {
		cr_assert_eq(a->types[i].name, b->types[i].name, "types[%zu].name", i);
		cr_assert_eq(a->types[i].count, b->types[i].count, "types[%zu].count", i);
		cr_assert_eq(a->types[i].bytes, b->types[i].bytes, "types[%zu].bytes", i);
		cr_assert_eq(a->types[i].origin, b->types[i].origin, "types[%zu].origin", i);
	}

	cr_assert_eq(a->nsites, b->nsites);
	for (size_t i = 0; i < a->nsites; i++) {
		cr_assert_eq(a->sites[i].count, b->sites[i].count, "sites[%zu].count", i);
		cr_assert_eq(a->sites[i].bytes, b->sites[i].bytes, "sites[%zu].bytes", i);
		same_stack(a, a->sites[i].stack, a->sites[i].depth, b, b->sites[i].stack, b->sites[i].depth,
			   "sites", i);
	}

	cr_assert_eq(a->ntype_sites, b->ntype_sites);
	for (size_t i = 0; i < a->ntype_sites; i++) {
		const struct ld_type_site *x = &a->type_sites[i], *y = &b->type_sites[i];
		cr_assert_eq(x->type, y->type, "type_sites[%zu].type", i);
		cr_assert_eq(x->count, y->count, "type_sites[%zu].count", i);
		cr_assert_eq(x->bytes, y->bytes, "type_sites[%zu].bytes", i);
		same_stack(a, x->stack, x->depth, b, y->stack, y->depth, "type_sites", i);
	}

	cr_assert_eq(a->nhints, b->nhints);
	for (size_t i = 0; i < a->nhints; i++) {
		const struct ld_hint *x = &a->hints[i], *y = &b->hints[i];
		cr_assert_eq(x->kind, y->kind, "hints[%zu].kind", i);
		same_ref(a, x->name, b, y->name, "name", i);
		same_ref(a, x->type, b, y->type, "type", i);
		cr_assert_eq(x->value, y->value, "hints[%zu].value", i);
		cr_assert_eq(x->maxsize, y->maxsize, "hints[%zu].maxsize", i);
		cr_assert_eq(x->hits, y->hits, "hints[%zu].hits", i);
		cr_assert_eq(x->misses, y->misses, "hints[%zu].misses", i);
		cr_assert_eq(x->path_len, y->path_len, "hints[%zu].path_len", i);
		for (uint32_t k = 0; k < x->path_len; k++)
			cr_assert_str_eq(ld_snapshot_str(a, a->pool[x->path + k]),
					 ld_snapshot_str(b, b->pool[y->path + k]), "hints[%zu].path[%u]", i, k);
	}

	cr_assert_eq(a->totals.heap_bytes, b->totals.heap_bytes);
	cr_assert_eq(a->totals.heap_blocks, b->totals.heap_blocks);
	cr_assert_eq(a->totals.objects, b->totals.objects);
	cr_assert_eq(a->totals.object_bytes, b->totals.object_bytes);
	cr_assert_eq(a->totals.has_malloc, b->totals.has_malloc);
	cr_assert_eq(a->totals.malloc_bytes, b->totals.malloc_bytes);

	cr_assert_eq(a->gc.present, b->gc.present);
	cr_assert_eq(a->gc.enabled, b->gc.enabled);
	cr_assert_eq(a->gc.collected, b->gc.collected);
	cr_assert_eq(a->gc.uncollectable, b->gc.uncollectable);
	cr_assert_eq(a->gc.garbage, b->gc.garbage);
	cr_assert_eq(a->gc.ngenerations, b->gc.ngenerations);
	for (size_t i = 0; i < a->gc.ngenerations; i++) {
		cr_assert_eq(a->gc.generations[i].collections, b->gc.generations[i].collections);
		cr_assert_eq(a->gc.generations[i].collected, b->gc.generations[i].collected);
		cr_assert_eq(a->gc.generations[i].uncollectable, b->gc.generations[i].uncollectable);
	}
}

/* ---------------------------------------------------------------- loading */

static struct ld_snapshot sentinel;

static int load_bytes(const void *data, size_t len, uint64_t max, struct ld_snapshot **out,
		      struct ld_error *err)
{
	char p[4096];
	path_in(p, sizeof(p), "input.snap");
	cr_assert_eq(th_write_file(p, data, len), 0);
	struct ld_snap_limits lim = { .max_bytes = max };
	ld_error_clear(err);
	return ld_snap_load(p, max ? &lim : NULL, out, err);
}

static int load_json(const char *json, struct ld_snapshot **out, struct ld_error *err)
{
	size_t gzlen;
	unsigned char *gz = th_gzip(json, strlen(json), &gzlen);
	int r = load_bytes(gz, gzlen, 0, out, err);
	free(gz);
	return r;
}

/* Checks a rejection; frees what an unexpected success returned first. */
static void check_rejected(int r, struct ld_snapshot *s, const struct ld_error *err, int code, const char *msg)
{
	if (s != &sentinel)
		ld_snapshot_destroy(s);
	cr_assert_eq(s, &sentinel, "*out written (returned %d)", r);
	cr_assert_eq(r, code, "returned %d (%s), want %d", r, err->msg, code);
	cr_assert_not_null(strstr(err->msg, msg), "message \"%s\" lacks \"%s\"", err->msg, msg);
}

static void expect_bytes_rejected(const void *data, size_t len, uint64_t max, int code, const char *msg)
{
	struct ld_snapshot *s = &sentinel;
	struct ld_error err;
	int r = load_bytes(data, len, max, &s, &err);
	check_rejected(r, s, &err, code, msg);
}

static void expect_json_rejected(const char *json, const char *msg)
{
	size_t gzlen;
	unsigned char *gz = th_gzip(json, strlen(json), &gzlen);
	struct ld_snapshot *s = &sentinel;
	struct ld_error err;
	int r = load_bytes(gz, gzlen, 0, &s, &err);
	free(gz);
	check_rejected(r, s, &err, -EINVAL, msg);

	/* ld_snap_parse() on the bare JSON says the same. */
	s = &sentinel;
	ld_error_clear(&err);
	r = ld_snap_parse(json, strlen(json), &s, &err);
	check_rejected(r, s, &err, -EINVAL, msg);
}

static struct ld_snapshot *expect_json_loads(const char *json)
{
	struct ld_snapshot *s = NULL;
	struct ld_error err;
	int r = load_json(json, &s, &err);
	cr_assert_eq(r, 0, "rejected: %s", err.msg);
	cr_assert_not_null(s);
	return s;
}

/* The gzip-compressed serialisation of the full snapshot. */
static unsigned char *full_gz(size_t *len)
{
	struct ld_snapshot *s = build_full();
	char *json;
	size_t jlen;
	cr_assert_eq(ld_snap_serialize(s, &json, &jlen), 0);
	ld_snapshot_destroy(s);
	unsigned char *gz = th_gzip(json, jlen, len);
	free(json);
	return gz;
}

/* ================================================================ round trip */

Test(snap_roundtrip, save_then_load_gives_the_same_snapshot)
{
	struct ld_snapshot *s = build_full();
	char p[4096];
	struct ld_error err;
	ld_error_clear(&err);
	int r = ld_snap_save(path_in(p, sizeof(p), "full.snap"), s, &err);
	cr_assert_eq(r, 0, "save failed: %s", err.msg);
	struct ld_snapshot *back = NULL;
	r = ld_snap_load(p, NULL, &back, &err);
	cr_assert_eq(r, 0, "load failed: %s", err.msg);
	assert_same_snapshot(s, back);

	/* Spot checks, so that a bug shared by writer and comparison shows. */
	cr_assert_str_eq(back->meta.label, "warm \"up\"\n");
	cr_assert_eq(back->meta.tracing, 1);
	cr_assert_eq(back->meta.pid, 4242);
	cr_assert_str_eq(ld_snapshot_str(back, back->frames[2].function), "tab\there \"q\" back\\slash \x01\x1f");
	cr_assert_str_eq(ld_snapshot_str(back, back->frames[0].text), "s = Session(user)");
	cr_assert_eq(back->frames[1].text, LD_NOSTR);
	cr_assert_eq(back->frames[1].function_line, -1);
	cr_assert_eq(back->sites[2].depth, 0);
	cr_assert_eq(back->sites[3].count, LD_COUNT_MAX);
	cr_assert_eq(back->hints[1].maxsize, 128);
	cr_assert_eq(back->hints[2].maxsize, -1);
	cr_assert_eq(back->hints[1].hits, 5);
	cr_assert_eq(back->gc.enabled, 0);
	cr_assert_eq(back->gc.generations[2].uncollectable, 1);
	cr_assert(back->totals.has_malloc);
	cr_assert_eq(back->totals.malloc_bytes, 5490432);

	/* Saved again, the file is byte for byte the same. */
	char p2[4096];
	cr_assert_eq(ld_snap_save(path_in(p2, sizeof(p2), "again.snap"), back, &err), 0);
	size_t l1, l2;
	char *d1 = th_read_file(p, &l1), *d2 = th_read_file(p2, &l2);
	cr_assert_not_null(d1);
	cr_assert_not_null(d2);
	cr_assert_eq(l1, l2);
	cr_assert_eq(memcmp(d1, d2, l1), 0);
	free(d1);
	free(d2);
	ld_snapshot_destroy(back);
	ld_snapshot_destroy(s);
}

Test(snap_roundtrip, unknown_metadata_stays_unknown)
{
	struct ld_snapshot *s = ld_snapshot_create();
	cr_assert_not_null(s);
	char p[4096];
	struct ld_error err;
	cr_assert_eq(ld_snap_save(path_in(p, sizeof(p), "empty.snap"), s, &err), 0, "%s", err.msg);
	struct ld_snapshot *back = NULL;
	cr_assert_eq(ld_snap_load(p, NULL, &back, &err), 0, "%s", err.msg);
	assert_same_snapshot(s, back);
	cr_assert_null(back->meta.runtime);
	cr_assert_null(back->meta.command);
	cr_assert_eq(back->meta.pid, -1);
	cr_assert_eq(back->meta.seq, -1);
	cr_assert_eq(back->meta.depth, -1);
	cr_assert_eq(back->meta.tracing, -1);
	cr_assert_lt(back->meta.elapsed_ms, 0);
	cr_assert_lt(back->meta.attached, 0);
	cr_assert_not(back->gc.present);
	cr_assert_eq(back->gc.enabled, -1);
	ld_snapshot_destroy(back);
	ld_snapshot_destroy(s);
}

Test(snap_roundtrip, serialised_json_is_valid_and_versioned)
{
	struct ld_snapshot *s = build_full();
	char *json;
	size_t len;
	cr_assert_eq(ld_snap_serialize(s, &json, &len), 0);
	cr_assert_eq(strlen(json), len);
	cJSON *root = cJSON_ParseWithLength(json, len);
	cr_assert_not_null(root, "serialised snapshot is not JSON");
	cr_assert_str_eq(cJSON_GetObjectItem(root, "format")->valuestring, "leakdiff-snapshot");
	cr_assert_eq(cJSON_GetObjectItem(root, "version")->valuedouble, 1);
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(root, "strings")), (int)s->strings.n);
	cJSON_Delete(root);

	struct ld_snapshot *back = NULL;
	struct ld_error err;
	cr_assert_eq(ld_snap_parse(json, len, &back, &err), 0, "%s", err.msg);
	assert_same_snapshot(s, back);
	ld_snapshot_destroy(back);
	ld_snapshot_destroy(s);
	free(json);
}

Test(snap_roundtrip, invalid_utf8_in_names_is_written_as_valid_json)
{
	struct ld_snapshot *s = ld_snapshot_create();
	cr_assert_not_null(s);
	str(s, "bad\xff" "byte");
	cr_assert_eq(ld_meta_set(&s->meta.label, "\xc0\x80"), 0);
	char p[4096];
	struct ld_error err;
	cr_assert_eq(ld_snap_save(path_in(p, sizeof(p), "u.snap"), s, &err), 0, "%s", err.msg);
	struct ld_snapshot *back = NULL;
	cr_assert_eq(ld_snap_load(p, NULL, &back, &err), 0, "%s", err.msg);
	cr_assert_str_eq(ld_snapshot_str(back, 0), "bad\xef\xbf\xbd" "byte");
	cr_assert_str_eq(back->meta.label, "\xef\xbf\xbd\xef\xbf\xbd");
	ld_snapshot_destroy(back);
	ld_snapshot_destroy(s);
}

/* ================================================================ saving */

Test(snap_save, leaves_only_the_file)
{
	struct ld_snapshot *s = build_full();
	char p[4096];
	struct ld_error err;
	cr_assert_eq(ld_snap_save(path_in(p, sizeof(p), "a.snap"), s, &err), 0, "%s", err.msg);
	cr_assert_eq(th_count_entries(dir), 1, "a temporary file was left behind");
	size_t len;
	unsigned char *data = (unsigned char *)th_read_file(p, &len);
	cr_assert_not_null(data);
	cr_assert_gt(len, 18);
	cr_assert(data[0] == 0x1f && data[1] == 0x8b, "not gzip");
	free(data);
	ld_snapshot_destroy(s);
}

Test(snap_save, replaces_an_existing_file_by_rename)
{
	char p[4096], link_path[4096];
	path_in(p, sizeof(p), "a.snap");
	path_in(link_path, sizeof(link_path), "old-link");
	cr_assert_eq(th_write_file(p, "old contents", 12), 0);
	cr_assert_eq(link(p, link_path), 0);
	struct stat before;
	cr_assert_eq(stat(p, &before), 0);

	struct ld_snapshot *s = build_full();
	struct ld_error err;
	cr_assert_eq(ld_snap_save(p, s, &err), 0, "%s", err.msg);
	cr_assert_eq(th_count_entries(dir), 2);

	/* The old inode is untouched: the new data went to a new file that
	 * was renamed over the name, never written in place. */
	size_t len;
	char *old = th_read_file(link_path, &len);
	cr_assert_not_null(old);
	cr_assert_eq(len, 12);
	cr_assert_str_eq(old, "old contents");
	free(old);
	struct stat after;
	cr_assert_eq(stat(p, &after), 0);
	cr_assert_neq(after.st_ino, before.st_ino);

	struct ld_snapshot *back = NULL;
	cr_assert_eq(ld_snap_load(p, NULL, &back, &err), 0, "%s", err.msg);
	assert_same_snapshot(s, back);
	ld_snapshot_destroy(back);
	ld_snapshot_destroy(s);
}

Test(snap_save, into_a_missing_directory_fails_cleanly)
{
	char p[4096];
	path_in(p, sizeof(p), "missing/a.snap");
	struct ld_snapshot *s = build_full();
	struct ld_error err;
	ld_error_clear(&err);
	int r = ld_snap_save(p, s, &err);
	cr_assert_eq(r, -ENOENT, "returned %d", r);
	cr_assert_not_null(strstr(err.msg, "cannot create file"), "message: %s", err.msg);
	cr_assert_not_null(strstr(err.msg, strerror(ENOENT)), "message: %s", err.msg);
	cr_assert_eq(th_count_entries(dir), 0, "something was created");
	ld_snapshot_destroy(s);
}

Test(snap_save, over_a_directory_fails_without_a_temporary_file)
{
	char p[4096];
	path_in(p, sizeof(p), "sub");
	cr_assert_eq(mkdir(p, 0755), 0);
	struct ld_snapshot *s = build_full();
	struct ld_error err;
	ld_error_clear(&err);
	int r = ld_snap_save(p, s, &err);
	cr_assert_lt(r, 0);
	cr_assert_neq(err.msg[0], '\0', "no message");
	cr_assert_eq(th_count_entries(dir), 1, "a temporary file was left behind");
	cr_assert_eq(th_count_entries(p), 0);
	ld_snapshot_destroy(s);
}

Test(snap_save, file_mode_follows_the_umask)
{
	mode_t old = umask(027);
	char p[4096];
	struct ld_snapshot *s = ld_snapshot_create();
	struct ld_error err;
	int r = ld_snap_save(path_in(p, sizeof(p), "m.snap"), s, &err);
	umask(old);
	cr_assert_eq(r, 0, "%s", err.msg);
	struct stat st;
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0640, "mode %o", (unsigned)(st.st_mode & 0777));
	ld_snapshot_destroy(s);
}

Test(snap_save, out_of_memory_leaves_no_file)
{
	TH_REQUIRE_WRAP();
	struct ld_snapshot *s = build_full();
	char p[4096];
	path_in(p, sizeof(p), "oom.snap");
	long n;
	for (n = 0; n < 1000; n++) {
		struct ld_error err;
		ld_error_clear(&err);
		th_fail_after(n);
		int r = ld_snap_save(p, s, &err);
		bool failed = th_fail_off() > n;
		if (r == 0) {
			cr_assert_not(failed, "succeeded although allocation %ld failed", n);
			break;
		}
		cr_assert_eq(r, -ENOMEM, "allocation %ld failing gave %d (%s)", n, r, err.msg);
		cr_assert_neq(err.msg[0], '\0');
		cr_assert_eq(th_count_entries(dir), 0, "allocation %ld failing left a file", n);
	}
	cr_assert_lt(n, 1000);
	cr_assert_eq(th_count_entries(dir), 1);
	ld_snapshot_destroy(s);
}

/* ================================================================ rejections */

Test(snap_reject, nonexistent_file)
{
	char p[4096];
	struct ld_snapshot *s = &sentinel;
	struct ld_error err;
	ld_error_clear(&err);
	int r = ld_snap_load(path_in(p, sizeof(p), "nope.snap"), NULL, &s, &err);
	cr_assert_eq(r, -ENOENT);
	cr_assert_str_eq(err.msg, strerror(ENOENT));
	cr_assert_eq(s, &sentinel);
}

Test(snap_reject, directory)
{
	struct ld_snapshot *s = &sentinel;
	struct ld_error err;
	ld_error_clear(&err);
	int r = ld_snap_load(dir, NULL, &s, &err);
	cr_assert_eq(r, -EISDIR);
	cr_assert_str_eq(err.msg, "is a directory");
	cr_assert_eq(s, &sentinel);
}

Test(snap_reject, empty_file)
{
	expect_bytes_rejected("", 0, 0, -EINVAL, "empty file");
}

Test(snap_reject, not_gzip)
{
	const char *json = HDR "}";
	expect_bytes_rejected(json, strlen(json), 0, -EINVAL, "not a gzip file");
	expect_bytes_rejected("\x1f", 1, 0, -EINVAL, "not a gzip file");
	expect_bytes_rejected("PK\x03\x04", 4, 0, -EINVAL, "not a gzip file");
}

Test(snap_reject, truncated_gzip)
{
	size_t len;
	unsigned char *gz = full_gz(&len);
	expect_bytes_rejected(gz, len / 2, 0, -EINVAL, "truncated gzip stream");
	expect_bytes_rejected(gz, len - 1, 0, -EINVAL, "truncated gzip stream");
	expect_bytes_rejected(gz, 10, 0, -EINVAL, "truncated gzip stream");
	free(gz);
}

Test(snap_reject, every_prefix_of_a_valid_file)
{
	size_t len;
	unsigned char *gz = full_gz(&len);
	char p[4096];
	path_in(p, sizeof(p), "prefix.snap");
	for (size_t cut = 1; cut < len; cut++) {
		cr_assert_eq(th_write_file(p, gz, cut), 0);
		struct ld_snapshot *s = &sentinel;
		struct ld_error err;
		int r = ld_snap_load(p, NULL, &s, &err);
		cr_assert_eq(r, -EINVAL, "a prefix of %zu of %zu bytes gave %d", cut, len, r);
		cr_assert_eq(s, &sentinel);
	}
	free(gz);
}

Test(snap_reject, corrupt_gzip)
{
	size_t len;
	unsigned char *gz = full_gz(&len);
	unsigned char *bad = th_memdup(gz, len);
	for (size_t i = len / 2 - 8; i < len / 2 + 8; i++)
		bad[i] ^= 0xa5;
	expect_bytes_rejected(bad, len, 0, -EINVAL, "corrupt gzip stream");
	free(bad);

	/* A wrong CRC-32 in the trailer. */
	bad = th_memdup(gz, len);
	bad[len - 8] ^= 1;
	expect_bytes_rejected(bad, len, 0, -EINVAL, "corrupt gzip stream");
	free(bad);

	/* A wrong length in the trailer. */
	bad = th_memdup(gz, len);
	bad[len - 4] ^= 1;
	expect_bytes_rejected(bad, len, 0, -EINVAL, "corrupt gzip stream");
	free(bad);
	free(gz);
}

Test(snap_reject, trailing_garbage)
{
	size_t len;
	unsigned char *gz = full_gz(&len);
	unsigned char *more = malloc(len + 7);
	cr_assert_not_null(more);
	memcpy(more, gz, len);
	memcpy(more + len, "garbage", 7);
	expect_bytes_rejected(more, len + 7, 0, -EINVAL, "trailing garbage after gzip stream");
	more[len] = 0;
	expect_bytes_rejected(more, len + 1, 0, -EINVAL, "trailing garbage after gzip stream");
	free(more);
	free(gz);
}

Test(snap_reject, gzip_bomb_over_the_limit)
{
	size_t n = 4u << 20, gzlen;
	char *zeros = calloc(1, n);
	cr_assert_not_null(zeros);
	unsigned char *gz = th_gzip(zeros, n, &gzlen);
	cr_assert_lt(gzlen, 65536, "test data should compress well");
	expect_bytes_rejected(gz, gzlen, 65536, -EFBIG, "decompresses to more than 65536 bytes");
	free(gz);
	free(zeros);
}

Test(snap_reject, gzip_bomb_buffer_never_outgrows_the_limit)
{
	/*
	 * The cap bounds memory too: the buffer doubles up to the limit (and
	 * the byte past it that proves the stream too long), never beyond, so
	 * a bomb costs at most the limit before it is rejected.
	 */
	TH_REQUIRE_WRAP();
	size_t n = 8u << 20, gzlen, max = 1u << 20;
	char *zeros = calloc(1, n);
	cr_assert_not_null(zeros);
	unsigned char *gz = th_gzip(zeros, n, &gzlen);
	cr_assert_lt(gzlen * 4, max / 2, "the buffer must grow a few times to reach the limit");
	th_largest_reset();
	expect_bytes_rejected(gz, gzlen, max, -EFBIG, "decompresses to more than 1048576 bytes");
	cr_assert_leq(th_largest(), max + 2, "a request of %zu bytes with a limit of %zu", th_largest(), max);
	cr_assert_geq(th_largest(), max / 2, "the wrappers saw the buffer grow (largest %zu)", th_largest());
	free(gz);
	free(zeros);
}

Test(snap_reject, size_limit_is_exact)
{
	/* A document of exactly L bytes passes a limit of L and fails L - 1. */
	char json[512];
	int l = snprintf(json, sizeof(json), "%s,\"strings\":[\"a\"]}%200s", HDR, "");
	cr_assert_gt(l, 200);
	size_t gzlen;
	unsigned char *gz = th_gzip(json, (size_t)l, &gzlen);
	struct ld_snapshot *s = NULL;
	struct ld_error err;
	cr_assert_eq(load_bytes(gz, gzlen, (uint64_t)l, &s, &err), 0, "%s", err.msg);
	cr_assert_eq(s->strings.n, 1);
	ld_snapshot_destroy(s);
	expect_bytes_rejected(gz, gzlen, (uint64_t)l - 1, -EFBIG, "decompresses to more than");
	free(gz);
}

Test(snap_reject, invalid_json_names_the_byte)
{
	/* The parser stops at the second string, where a comma should be. */
	const char *json = HDR ",\"strings\":[\"a\" \"b\"]}";
	size_t at = (size_t)(strstr(json, "\"b\"") - json);
	char want[64];
	snprintf(want, sizeof(want), "invalid JSON at byte %zu", at);
	expect_json_rejected(json, want);
	expect_json_rejected("{\"format\": tru}", "invalid JSON at byte 11");
}

Test(snap_reject, json_ending_early)
{
	expect_json_rejected(HDR ",\"strings\":[", "invalid JSON: document ends early");
	expect_json_rejected("", "invalid JSON");
}

Test(snap_reject, json_with_extra_data)
{
	const char *json = HDR "} {}";
	char want[64];
	snprintf(want, sizeof(want), "invalid JSON: extra data at byte %zu", strlen(HDR "} "));
	expect_json_rejected(json, want);
}

Test(snap_reject, json_not_an_object)
{
	expect_json_rejected("[1, 2, 3]", "not a leakdiff snapshot (the JSON is not an object)");
	expect_json_rejected("\"leakdiff-snapshot\"", "not a leakdiff snapshot (the JSON is not an object)");
}

Test(snap_reject, wrong_format)
{
	expect_json_rejected("{\"format\":\"chrome-heap\",\"version\":1}",
			     "not a leakdiff snapshot (format is not \"leakdiff-snapshot\")");
	expect_json_rejected("{\"version\":1}", "not a leakdiff snapshot (format is not");
	expect_json_rejected("{\"format\":1,\"version\":1}", "not a leakdiff snapshot (format is not");
}

Test(snap_reject, missing_version)
{
	expect_json_rejected("{\"format\":\"leakdiff-snapshot\"}", "snapshot has no version");
	expect_json_rejected("{\"format\":\"leakdiff-snapshot\",\"version\":\"1\"}", "snapshot has no version");
}

Test(snap_reject, unknown_version)
{
	expect_json_rejected("{\"format\":\"leakdiff-snapshot\",\"version\":2}",
			     "unsupported snapshot version 2");
	expect_json_rejected("{\"format\":\"leakdiff-snapshot\",\"version\":0}",
			     "unsupported snapshot version 0");
	expect_json_rejected("{\"format\":\"leakdiff-snapshot\",\"version\":1.5}",
			     "unsupported snapshot version 1.5");
}

Test(snap_reject, negative_count)
{
	expect_json_rejected(HDR ",\"strings\":[\"t\"],\"types\":[[0,-5,10]]}",
			     "types[0][1]: negative count -5");
	expect_json_rejected(HDR ",\"totals\":{\"heap_bytes\":-1}}", "totals.heap_bytes: negative count -1");
}

Test(snap_reject, non_integer_count)
{
	expect_json_rejected(HDR ",\"sites\":[[1.5,10,[]]]}", "sites[0][0]: not a whole number");
	expect_json_rejected(HDR ",\"sites\":[[\"1\",10,[]]]}", "sites[0][0]: expected a number");
	expect_json_rejected(HDR ",\"gc\":{\"collected\":0.25}}", "gc.collected: not a whole number");
}

Test(snap_reject, absurd_count)
{
	expect_json_rejected(HDR ",\"sites\":[[1,1e16,[]]]}",
			     "sites[0][1]: count 10000000000000000 is absurdly large");
	expect_json_rejected(HDR ",\"sites\":[[18014398509481984,1,[]]]}", "is absurdly large");
}

Test(snap_reject, string_index_out_of_range)
{
	expect_json_rejected(HDR ",\"strings\":[\"a\",\"b\",\"c\"],\"types\":[[3,1,1]]}",
			     "types[0][0]: index 3 out of range (3 strings)");
	expect_json_rejected(HDR ",\"strings\":[\"f\"],\"frames\":[[0,1,1]]}",
			     "frames[0][2]: index 1 out of range (1 strings)");
	expect_json_rejected(HDR ",\"strings\":[\"f\"],\"frames\":[[-1,1,0]]}",
			     "frames[0][0]: index -1 out of range (1 strings)");
	expect_json_rejected(HDR ",\"strings\":[\"f\"],\"frames\":[[0,1,0,-1,5]]}",
			     "frames[0][4]: index 5 out of range (1 strings)");
}

Test(snap_reject, frame_index_out_of_range_in_a_site)
{
	expect_json_rejected(HDR ",\"strings\":[\"f\",\"g\"],\"frames\":[[0,1,1],[1,2,0]],"
				 "\"sites\":[[1,8,[0,2]]]}",
			     "sites[0][2][1]: index 2 out of range (2 frames)");
	expect_json_rejected(HDR ",\"sites\":[[1,8,[0]]]}", "sites[0][2][0]: index 0 out of range (0 frames)");
}

Test(snap_reject, type_index_out_of_range_in_type_sites)
{
	expect_json_rejected(HDR ",\"strings\":[\"T\"],\"types\":[[0,1,8]],\"type_sites\":[[1,1,8,[]]]}",
			     "type_sites[0][0]: index 1 out of range (1 types)");
}

/* A document with one site whose traceback has n frames, all frame 0. */
static char *deep_site(int n)
{
	struct { char *p; size_t len, cap; } b = { NULL, 0, 0 };
	b.cap = 256 + (size_t)n * 2;
	b.p = malloc(b.cap);
	cr_assert_not_null(b.p);
	b.len = (size_t)snprintf(b.p, b.cap, "%s,\"strings\":[\"f\"],\"frames\":[[0,1,0]],\"sites\":[[1,8,[", HDR);
	for (int i = 0; i < n; i++)
		b.len += (size_t)snprintf(b.p + b.len, b.cap - b.len, "%s0", i ? "," : "");
	snprintf(b.p + b.len, b.cap - b.len, "]]]}");
	return b.p;
}

Test(snap_reject, traceback_longer_than_1024)
{
	char *json = deep_site(1025);
	expect_json_rejected(json, "sites[0][2]: traceback of 1025 frames is longer than 1024");
	free(json);
}

Test(snap_accept, traceback_of_exactly_1024)
{
	char *json = deep_site(1024);
	struct ld_snapshot *s = expect_json_loads(json);
	cr_assert_eq(s->nsites, 1);
	cr_assert_eq(s->sites[0].depth, 1024);
	ld_snapshot_destroy(s);
	free(json);
}

/* HDR, then "x": n nested arrays, so the deepest is at level n + 1. */
static char *nested(int n)
{
	size_t cap = 64 + (size_t)n * 2;
	char *p = malloc(cap);
	cr_assert_not_null(p);
	size_t len = (size_t)snprintf(p, cap, "%s,\"x\":", HDR);
	for (int i = 0; i < n; i++)
		p[len++] = '[';
	for (int i = 0; i < n; i++)
		p[len++] = ']';
	p[len++] = '}';
	p[len] = '\0';
	return p;
}

Test(snap_reject, nesting_deeper_than_64)
{
	char *json = nested(64);
	char want[80];
	snprintf(want, sizeof(want), "JSON nested deeper than 64 levels at byte %zu", strlen(HDR ",\"x\":") + 63);
	expect_json_rejected(json, want);
	free(json);
	json = nested(100000);
	expect_json_rejected(json, "JSON nested deeper than 64 levels");
	free(json);
}

Test(snap_accept, nesting_of_exactly_64)
{
	char *json = nested(63);
	struct ld_snapshot *s = expect_json_loads(json);
	ld_snapshot_destroy(s);
	free(json);
}

Test(snap_accept, brackets_inside_strings_do_not_nest)
{
	char json[1024];
	char brackets[201];
	memset(brackets, '[', 200);
	brackets[200] = '\0';
	snprintf(json, sizeof(json), "%s,\"strings\":[\"%s\", \"\\\"%s\\\\\"]}", HDR, brackets, brackets);
	struct ld_snapshot *s = expect_json_loads(json);
	cr_assert_eq(s->strings.n, 2);
	cr_assert_eq(strlen(ld_snapshot_str(s, 0)), 200);
	cr_assert_eq(strlen(ld_snapshot_str(s, 1)), 202);
	ld_snapshot_destroy(s);
}

Test(snap_reject, wrong_member_types)
{
	expect_json_rejected(HDR ",\"strings\":{}}", "strings: expected an array");
	expect_json_rejected(HDR ",\"strings\":[1]}", "strings[0]: expected a string");
	expect_json_rejected(HDR ",\"frames\":[[0,1]]}", "frames[0]: expected [file, line, function, ...]");
	expect_json_rejected(HDR ",\"strings\":[\"f\"],\"frames\":[[0,-3,0]]}", "frames[0][1]");
	expect_json_rejected(HDR ",\"sites\":[[1,2]]}", "sites[0]: expected [count, bytes, [frames]]");
	expect_json_rejected(HDR ",\"sites\":[[1,2,3]]}", "sites[0][2]: expected an array of frame indices");
	expect_json_rejected(HDR ",\"meta\":[]}", "meta: expected an object");
	expect_json_rejected(HDR ",\"meta\":{\"label\":5}}", "meta.label: expected a string");
	expect_json_rejected(HDR ",\"meta\":{\"command\":[\"a\",1]}}", "meta.command[1]: expected a string");
	expect_json_rejected(HDR ",\"meta\":{\"pid\":-1}}", "meta.pid");
	expect_json_rejected(HDR ",\"hints\":[{\"name\":\"x\"}]}", "hints[0].kind: expected a string");
	expect_json_rejected(HDR ",\"hints\":[{\"kind\":\"container\",\"length\":-1}]}",
			     "hints[0].length: negative count -1");
	expect_json_rejected(HDR ",\"hints\":[{\"kind\":\"path\",\"path\":\"a.b\"}]}",
			     "hints[0].path: expected an array of at most 64 strings");
	expect_json_rejected(HDR ",\"hints\":[{\"kind\":\"path\",\"path\":[\"a\",2]}]}",
			     "hints[0].path[1]: expected a string");
	expect_json_rejected(HDR ",\"gc\":{\"generations\":[{},{},{},{},{},{},{},{},{}]}}",
			     "gc.generations: expected an array of at most 8 objects");
}

Test(snap_reject, out_of_memory_while_parsing)
{
	TH_REQUIRE_WRAP();
	struct ld_snapshot *full = build_full();
	char *json;
	size_t len;
	cr_assert_eq(ld_snap_serialize(full, &json, &len), 0);
	long n;
	for (n = 0; n < 5000; n++) {
		struct ld_snapshot *s = &sentinel;
		struct ld_error err;
		ld_error_clear(&err);
		th_fail_after(n);
		int r = ld_snap_parse(json, len, &s, &err);
		bool failed = th_fail_off() > n;
		if (r == 0) {
			assert_same_snapshot(full, s);
			ld_snapshot_destroy(s);
			cr_assert_not(failed, "succeeded although allocation %ld failed", n);
			break;
		}
		cr_assert_eq(r, -ENOMEM, "allocation %ld failing gave %d (%s)", n, r, err.msg);
		cr_assert_str_eq(err.msg, "out of memory");
		cr_assert_eq(s, &sentinel);
	}
	cr_assert_lt(n, 5000);
	free(json);
	ld_snapshot_destroy(full);
}

/* ================================================================ acceptance */

Test(snap_accept, concatenated_gzip_members)
{
	struct ld_snapshot *full = build_full();
	char *json;
	size_t len;
	cr_assert_eq(ld_snap_serialize(full, &json, &len), 0);
	size_t cut = len / 3, l1, l2;
	unsigned char *g1 = th_gzip(json, cut, &l1);
	unsigned char *g2 = th_gzip(json + cut, len - cut, &l2);
	unsigned char *both = malloc(l1 + l2);
	cr_assert_not_null(both);
	memcpy(both, g1, l1);
	memcpy(both + l1, g2, l2);
	struct ld_snapshot *s = NULL;
	struct ld_error err;
	cr_assert_eq(load_bytes(both, l1 + l2, 0, &s, &err), 0, "%s", err.msg);
	assert_same_snapshot(full, s);
	ld_snapshot_destroy(s);
	free(both);
	free(g1);
	free(g2);
	free(json);
	ld_snapshot_destroy(full);
}

Test(snap_accept, minimal_document)
{
	struct ld_snapshot *s = expect_json_loads(HDR "}");
	cr_assert_eq(s->strings.n, 0);
	cr_assert_eq(s->nframes, 0);
	cr_assert_eq(s->ntypes, 0);
	cr_assert_eq(s->nsites, 0);
	cr_assert_eq(s->ntype_sites, 0);
	cr_assert_eq(s->nhints, 0);
	cr_assert_eq(s->meta.pid, -1);
	cr_assert_null(s->meta.label);
	cr_assert_not(s->gc.present);
	cr_assert_eq(s->totals.heap_bytes, 0);
	ld_snapshot_destroy(s);
}

Test(snap_accept, unknown_members_and_trailing_elements_skipped)
{
	const char *json = "{\"future\":{\"deep\":[1,{\"x\":null}]},"
			   "\"format\":\"leakdiff-snapshot\",\"version\":1,"
			   "\"meta\":{\"runtime\":\"native\",\"colour\":\"blue\",\"tracing\":false},"
			   "\"strings\":[\"f\",\"g\",\"T\"],"
			   "\"frames\":[[0,7,1,5,-1,\"extra\",[1]]],"
			   "\"types\":[[2,3,96,\"extra\"]],"
			   "\"sites\":[[3,96,[0],{\"extra\":1}]],"
			   "\"type_sites\":[[0,3,96,[0],99]],"
			   "\"hints\":[{\"kind\":\"from-the-future\",\"weird\":[[[]]]},"
			   "{\"kind\":\"container\",\"name\":\"m.reg\",\"type\":\"list\",\"length\":3,\"new\":1},"
			   "{\"kind\":\"telepathy\"}],"
			   "\"gc\":{\"enabled\":true,\"generations\":[{\"collections\":1,\"shiny\":2}],\"more\":3},"
			   "\"totals\":{\"heap_bytes\":96,\"heap_blocks\":3,\"objects\":3,\"object_bytes\":96,\"x\":1}}";
	struct ld_snapshot *s = expect_json_loads(json);
	cr_assert_str_eq(s->meta.runtime, "native");
	cr_assert_eq(s->meta.tracing, 0);
	cr_assert_eq(s->nframes, 1);
	cr_assert_eq(s->frames[0].line, 7);
	cr_assert_eq(s->frames[0].function_line, 5);
	cr_assert_eq(s->frames[0].text, LD_NOSTR);
	cr_assert_eq(s->ntypes, 1);
	cr_assert_eq(s->types[0].bytes, 96);
	cr_assert_eq(s->nsites, 1);
	cr_assert_eq(s->ntype_sites, 1);
	cr_assert_eq(s->nhints, 1, "unknown hint kinds must be skipped, got %zu hints", s->nhints);
	cr_assert_eq(s->hints[0].kind, LD_HINT_CONTAINER);
	cr_assert_str_eq(ld_snapshot_str(s, s->hints[0].name), "m.reg");
	cr_assert_str_eq(ld_snapshot_str(s, s->hints[0].type), "list");
	cr_assert_eq(s->hints[0].value, 3);
	cr_assert(s->gc.present);
	cr_assert_eq(s->gc.enabled, 1);
	cr_assert_eq(s->gc.ngenerations, 1);
	cr_assert_eq(s->gc.generations[0].collections, 1);
	ld_snapshot_destroy(s);
}

Test(snap_accept, null_members_are_absent)
{
	struct ld_snapshot *s = expect_json_loads(HDR ",\"meta\":{\"label\":null,\"pid\":null},\"strings\":null,"
						  "\"frames\":null,\"types\":null,\"sites\":null,"
						  "\"type_sites\":null,\"hints\":null,\"gc\":null,\"totals\":null}");
	cr_assert_null(s->meta.label);
	cr_assert_eq(s->meta.pid, -1);
	cr_assert_eq(s->strings.n, 0);
	cr_assert_not(s->gc.present);
	ld_snapshot_destroy(s);
}

Test(snap_accept, missing_totals_derived_from_tables)
{
	struct ld_snapshot *s = expect_json_loads(
		HDR ",\"strings\":[\"f\",\"A\",\"B\"],\"frames\":[[0,1,0]],"
		    "\"types\":[[1,10,560],[2,5,200]],"
		    "\"sites\":[[7,700,[0]],[3,48,[]]]}");
	cr_assert_eq(s->totals.heap_bytes, 748);
	cr_assert_eq(s->totals.heap_blocks, 10);
	cr_assert_eq(s->totals.objects, 15);
	cr_assert_eq(s->totals.object_bytes, 760);
	ld_snapshot_destroy(s);

	/* Totals that are given are taken as they are, tables or not. */
	s = expect_json_loads(HDR ",\"strings\":[\"A\"],\"types\":[[0,10,560]],"
				  "\"totals\":{\"heap_bytes\":1,\"objects\":2}}");
	cr_assert_eq(s->totals.heap_bytes, 1);
	cr_assert_eq(s->totals.heap_blocks, 0);
	cr_assert_eq(s->totals.objects, 2);
	cr_assert_eq(s->totals.object_bytes, 0);
	ld_snapshot_destroy(s);
}

Test(snap_accept, largest_count_is_two_to_the_53)
{
	struct ld_snapshot *s = expect_json_loads(HDR ",\"sites\":[[9007199254740992,9007199254740992,[]]]}");
	cr_assert_eq(s->sites[0].count, LD_COUNT_MAX);
	cr_assert_eq(s->sites[0].bytes, LD_COUNT_MAX);
	ld_snapshot_destroy(s);
}

Test(snap_accept, the_example_from_the_manual)
{
	struct ld_snapshot *s = expect_json_loads(
		"{\"format\":\"leakdiff-snapshot\",\"version\":1,\n"
		" \"meta\":{\"runtime\":\"python\",\"pid\":4242,\"seq\":1,\"label\":\"\",\"trigger\":\"exit\"},\n"
		" \"strings\":[\"app.py\",\"login\",\"<module>\",\"app.Session\"],\n"
		" \"frames\":[[0,42,1,40,-1],[0,60,2,-1,-1]],\n"
		" \"totals\":{\"heap_bytes\":112000,\"heap_blocks\":2000,\n"
		"           \"objects\":1000,\"object_bytes\":56000},\n"
		" \"types\":[[3,1000,56000]],\n"
		" \"sites\":[[2000,112000,[0,1]]],\n"
		" \"type_sites\":[[0,1000,56000,[0,1]]],\n"
		" \"hints\":[{\"kind\":\"container\",\"name\":\"app.registry\",\"type\":\"list\",\n"
		"           \"length\":1000}]}\n");
	cr_assert_str_eq(s->meta.runtime, "python");
	cr_assert_eq(s->meta.pid, 4242);
	cr_assert_eq(s->meta.seq, 1);
	cr_assert_str_eq(s->meta.label, "");
	cr_assert_str_eq(s->meta.trigger, "exit");
	cr_assert_eq(s->nframes, 2);
	cr_assert_str_eq(ld_snapshot_str(s, s->frames[0].function), "login");
	cr_assert_eq(s->frames[0].line, 42);
	cr_assert_eq(s->frames[0].function_line, 40);
	cr_assert_eq(s->frames[1].function_line, -1);
	cr_assert_str_eq(ld_snapshot_str(s, s->types[0].name), "app.Session");
	cr_assert_eq(s->sites[0].depth, 2);
	cr_assert_eq(ld_snapshot_stack(s, s->sites[0].stack)[1], 1);
	cr_assert_eq(s->type_sites[0].type, 0);
	cr_assert_eq(s->totals.heap_bytes, 112000);
	cr_assert_eq(s->nhints, 1);
	cr_assert_eq(s->hints[0].value, 1000);
	ld_snapshot_destroy(s);
}

Test(snap_accept, gunzip_directly)
{
	const char *text = "hello, gzip";
	size_t gzlen, outlen = 0;
	unsigned char *gz = th_gzip(text, strlen(text), &gzlen);
	char *out = NULL;
	struct ld_error err;
	cr_assert_eq(ld_gunzip(gz, gzlen, 0, &out, &outlen, &err), 0, "%s", err.msg);
	cr_assert_eq(outlen, strlen(text));
	cr_assert_str_eq(out, text);
	free(out);
	free(gz);
}

/* ================================================================ the two readers */

TestSuite(snap_scan, .init = setup, .fini = teardown);

/*
 * Reads text with the scanner alone, the tree reader alone and the default,
 * and checks that they agree: the default gives the tree reader's result
 * and message, and whatever the scanner takes the tree reader reads the
 * same. Returns what the scanner did (0, or -EAGAIN when it declined).
 */
static int readers(const char *text)
{
	size_t len = strlen(text);
	struct ld_snapshot *any = NULL, *tree = NULL, *scan = NULL;
	struct ld_error ea, et, es;
	ld_error_clear(&ea);
	ld_error_clear(&et);
	ld_error_clear(&es);
	int ra = ld_snap_parse_with(LD_SNAP_READ_ANY, text, len, &any, &ea);
	int rt = ld_snap_parse_with(LD_SNAP_READ_TREE, text, len, &tree, &et);
	int rs = ld_snap_parse_with(LD_SNAP_READ_SCAN, text, len, &scan, &es);
	cr_assert_eq(ra, rt, "%s\ndefault reader %d (%s), tree reader %d (%s)", text, ra, ea.msg, rt, et.msg);
	if (rt < 0)
		cr_assert_str_eq(ea.msg, et.msg, "%s", text);
	else
		assert_same_snapshot(any, tree);
	if (rs == 0) {
		cr_assert_eq(rt, 0, "the scanner took what the tree reader rejects: %s\n%s", et.msg, text);
		assert_same_snapshot(scan, tree);
	} else {
		cr_assert_eq(rs, -EAGAIN, "scanner %d (%s) on %s", rs, es.msg, text);
		cr_assert_null(scan);
	}
	ld_snapshot_destroy(any);
	ld_snapshot_destroy(tree);
	ld_snapshot_destroy(scan);
	return rs;
}

#define TABLES ",\"strings\":[\"a.py\",\"f\"],\"frames\":[[0,1,1],[0,2,1,-1,-1],[0,3,1,1,1]]"

Test(snap_scan, takes_what_the_writer_writes)
{
	struct ld_snapshot *full = build_full();
	char *json;
	size_t len;
	cr_assert_eq(ld_snap_serialize(full, &json, &len), 0);
	char *text = th_memdup(json, len + 1);
	cr_assert_eq(readers(text), 0);
	free(text);
	free(json);
	ld_snapshot_destroy(full);
}

Test(snap_scan, takes_ordinary_json_spellings)
{
	static const char *const texts[] = {
		HDR "}",
		"\n {\"format\" : \"leakdiff-snapshot\" ,\t\"version\"\r: 1 }\n",
		HDR TABLES ",\"sites\":[[1,2,[0,1,2]],[0,0,[]],[9007199254740992,5,[2]]]}",
		HDR TABLES ",\"types\":[[1,3,24]],\"type_sites\":[[0,1,8,[1,0]]]}",
		HDR ",\"strings\":[\"q\\\"\\\\\\/\\b\\f\\n\\r\\t\",\"\\u00e9\\u4e2d\\ud83d\\ude00\",\"\xc3\xa9 raw\"]}",
		HDR ",\"meta\":{\"elapsed_ms\":12.345,\"pid\":7,\"tracing\":false,\"command\":[\"a\",\"b\"],"
		    "\"x\":[1.5e3,-0.25,0E+0,null,true,{}]}}",
		HDR ",\"sit\\u0065s\":[],\"future\":{\"a\":[[[]]]},\"hints\":[{\"kind\":\"garbage\",\"type\":\"T\",\"count\":2}]}",
		"{\"version\":1.0,\"format\":\"leakdiff-snapshot\"}",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		cr_assert_eq(readers(texts[i]), 0, "text %zu declined", i);
}

Test(snap_scan, leaves_the_unusual_to_the_tree_reader)
{
	/* Each is read (or rejected) by the tree reader, exactly as before the scanner. */
	static const char *const texts[] = {
		HDR TABLES ",\"sites\":[[01,2,[0]]]}",                  /* cJSON reads 1 */
		HDR TABLES ",\"sites\":[[1.0,2,[0]]]}",
		HDR TABLES ",\"sites\":[[1e0,2,[0]]]}",
		HDR TABLES ",\"sites\":[[1,2,[-0]]]}",                  /* index 0 to cJSON */
		HDR TABLES ",\"sites\":[[9007199254740993,2,[0]]]}",    /* rounds to 2^53 */
		HDR TABLES ",\"sites\":[[1,2,[0],\"extra\"]]}",
		HDR ",\"strings\":[\"a.py\",\"f\"],\"frames\":[[0,1,1,-1,-1,\"extra\"]]}",
		HDR ",\"strings\":[\"a\\u0000b\"]}",                    /* a NUL ends the C string */
		HDR ",\"strings\":[\"a\x01" "b\"]}",                     /* raw control character */
		HDR ",\"strings\":[\"\\ud800\"]}",                       /* lone surrogate */
		HDR ",\"strings\":[\"\\uZZZZ\"]}",
		HDR ",\f\"strings\":[]}",                                /* white space to cJSON only */
		"\xef\xbb\xbf" HDR "}",                                  /* byte order mark */
		HDR ",\"sites\":[],\"strings\":[]}",                     /* tables out of order */
		HDR ",\"strings\":[],\"strings\":[\"x\"]}",              /* the first one counts */
		HDR ",\"sites\":null}",
		HDR ",\"strings\":[\"a\"],\"frames\":[[0,1,0]],\"sites\":[[1,2,[0,1]]]}", /* bad index */
		HDR ",\"sites\":[[-1,2,[]]]}",
		HDR "}x",
		HDR ",\"meta\":{\"x\":0.000000000000000000000000000000000000000000000000000000000000000001}}",
		HDR ",\"meta\":{\"x\":1e400}}",
		"{\"format\":\"leakdiff-snapshot\",\"version\":2}",
		"{\"format\":\"other\",\"version\":1}",
		HDR ",\"strings\":[\"a\"",
		"",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		cr_assert_eq(readers(texts[i]), -EAGAIN, "text %zu taken", i);
}

Test(snap_scan, nesting_limit_is_the_tree_readers)
{
	/* Containers inside meta, counted with the document object: 64 is the most. */
	for (int depth = 62; depth <= 66; depth++) {
		char text[512];
		int n = snprintf(text, sizeof(text), HDR ",\"meta\":{\"x\":");
		for (int i = 0; i < depth - 2; i++)
			text[n++] = '[';
		for (int i = 0; i < depth - 2; i++)
			text[n++] = ']';
		snprintf(text + n, sizeof(text) - (size_t)n, "}}");
		cr_assert_eq(readers(text), depth <= LD_SNAP_MAX_NESTING ? 0 : -EAGAIN, "depth %d", depth);
	}
}

Test(snap_scan, traceback_length_limit_is_the_tree_readers)
{
	for (int depth = LD_DEPTH_MAX - 1; depth <= LD_DEPTH_MAX + 1; depth++) {
		size_t cap = 256 + (size_t)depth * 2;
		char *text = malloc(cap);
		cr_assert_not_null(text);
		int n = snprintf(text, cap, HDR ",\"strings\":[\"a\"],\"frames\":[[0,1,0]],\"sites\":[[1,8,[");
		for (int i = 0; i < depth; i++)
			n += snprintf(text + n, cap - (size_t)n, i ? ",0" : "0");
		snprintf(text + n, cap - (size_t)n, "]]]}");
		cr_assert_eq(readers(text), depth <= LD_DEPTH_MAX ? 0 : -EAGAIN, "depth %d", depth);
		free(text);
	}
}

/* ---------------------------------------------------------------- frame kinds */

TestSuite(snap_kinds, .init = setup, .fini = teardown);

Test(snap_kinds, files_without_kinds_read_as_before)
{
	/* A document as written before kinds existed: every frame's kind is unknown. */
	static const char *const runtimes[] = { "python", "native", NULL };
	static const enum ld_frame_kind effective[] = { LD_FRAME_PYTHON, LD_FRAME_NATIVE, LD_FRAME_UNKNOWN };
	for (int i = 0; i < 3; i++) {
		char json[256];
		snprintf(json, sizeof(json), HDR "%s%s%s" TABLES "}", runtimes[i] ? ",\"meta\":{\"runtime\":\"" : "",
			 runtimes[i] ? runtimes[i] : "", runtimes[i] ? "\"}" : "");
		cr_assert_eq(readers(json), 0, "%s", json);
		struct ld_snapshot *s = expect_json_loads(json);
		cr_assert_eq(s->nframes, 3);
		for (size_t f = 0; f < s->nframes; f++) {
			cr_assert_eq(s->frames[f].kind, LD_FRAME_UNKNOWN, "%s: frames[%zu]", json, f);
			cr_assert_eq(ld_frame_effective_kind(s, &s->frames[f]), effective[i], "%s", json);
		}
		char *out;
		size_t len;
		cr_assert_eq(ld_snap_serialize(s, &out, &len), 0);
		cr_assert_not_null(strstr(out, "\"frames\":[[0,1,1,-1,-1],[0,2,1,-1,-1],[0,3,1,1,1]]"),
				   "the writer adds no kind the file did not have: %s", out);
		free(out);
		ld_snapshot_destroy(s);
	}
}

#define KINDS ",\"meta\":{\"runtime\":\"native\"},\"strings\":[\"a.c\",\"f\",\"native\",\"inlined\",\"python\",\"interpreter\"]"

Test(snap_kinds, both_readers_take_kinds)
{
	const char *json = HDR KINDS ",\"frames\":[[0,1,1,-1,-1,2],[0,2,1,-1,-1,3],[0,3,1,-1,-1,4],"
				 "[0,4,1,-1,-1,5],[0,5,1,-1,-1,-1],[0,6,1,-1,-1]],\"sites\":[[1,8,[1,0,5,4,3,2]]]}";
	cr_assert_eq(readers(json), 0, "the scanner declined kinds");
	struct ld_snapshot *s = expect_json_loads(json);
	static const enum ld_frame_kind want[] = { LD_FRAME_NATIVE, LD_FRAME_INLINED, LD_FRAME_PYTHON,
						   LD_FRAME_OTHER, LD_FRAME_UNKNOWN, LD_FRAME_UNKNOWN };
	cr_assert_eq(s->nframes, 6);
	for (size_t i = 0; i < 6; i++)
		cr_assert_eq(s->frames[i].kind, want[i], "frames[%zu].kind is %d", i, s->frames[i].kind);
	cr_assert_str_eq(ld_snapshot_str(s, s->frames[3].kind_name), "interpreter");
	/* An unknown kind is "other"; an absent one is what the runtime says. */
	cr_assert_eq(ld_frame_effective_kind(s, &s->frames[3]), LD_FRAME_OTHER);
	cr_assert_eq(ld_frame_effective_kind(s, &s->frames[4]), LD_FRAME_NATIVE);
	cr_assert_eq(ld_frame_effective_kind(s, &s->frames[2]), LD_FRAME_PYTHON);

	/* Written back: kinds the file had, unknown names included, and none where it had none. */
	char *out;
	size_t len;
	cr_assert_eq(ld_snap_serialize(s, &out, &len), 0);
	cr_assert_not_null(strstr(out, "\"frames\":[[0,1,1,-1,-1,2],[0,2,1,-1,-1,3],[0,3,1,-1,-1,4],"
				       "[0,4,1,-1,-1,5],[0,5,1,-1,-1],[0,6,1,-1,-1]]"), "%s", out);
	cr_assert_eq(readers(out), 0);
	struct ld_snapshot *back = NULL;
	struct ld_error err;
	cr_assert_eq(ld_snap_parse(out, len, &back, &err), 0, "%s", err.msg);
	assert_same_snapshot(s, back);
	ld_snapshot_destroy(back);
	free(out);
	ld_snapshot_destroy(s);
}

Test(snap_kinds, built_kinds_round_trip)
{
	struct ld_snapshot *s = build_full();
	struct ld_frame f = { .file = s->frames[0].file, .function = s->frames[0].function, .line = 7,
			      .function_line = -1, .text = LD_NOSTR };
	cr_assert_eq(ld_frame_set_kind(s, &f, LD_FRAME_INLINED), 0);
	cr_assert_eq(f.kind, LD_FRAME_INLINED);
	cr_assert_str_eq(ld_snapshot_str(s, f.kind_name), "inlined");
	cr_assert_eq(ld_frame_set_kind(s, &f, LD_FRAME_OTHER), -EINVAL, "an unnamed kind cannot be set");
	uint32_t idx;
	cr_assert_eq(ld_snapshot_add_frame(s, &f, &idx), 0);
	cr_assert_eq(ld_frame_set_kind(s, &s->frames[0], LD_FRAME_PYTHON), 0);
	char *json;
	size_t len;
	cr_assert_eq(ld_snap_serialize(s, &json, &len), 0);
	cr_assert_eq(readers(json), 0);
	struct ld_snapshot *back = NULL;
	struct ld_error err;
	cr_assert_eq(ld_snap_parse(json, len, &back, &err), 0, "%s", err.msg);
	assert_same_snapshot(s, back);
	cr_assert_eq(back->frames[0].kind, LD_FRAME_PYTHON);
	cr_assert_eq(back->frames[1].kind, LD_FRAME_UNKNOWN);
	cr_assert_eq(back->frames[idx].kind, LD_FRAME_INLINED);
	ld_snapshot_destroy(back);
	free(json);
	ld_snapshot_destroy(s);
}

Test(snap_kinds, a_kind_must_name_a_string)
{
	expect_json_rejected(HDR ",\"strings\":[\"f\"],\"frames\":[[0,1,0,-1,-1,1]]}",
			     "frames[0][5]: index 1 out of range (1 strings)");
	expect_json_rejected(HDR ",\"strings\":[\"f\"],\"frames\":[[0,1,0,-1,-1,0.5]]}",
			     "frames[0][5]: index 0.5 out of range (1 strings)");
	cr_assert_eq(readers(HDR ",\"strings\":[\"f\"],\"frames\":[[0,1,0,-1,-1,1]]}"), -EAGAIN);
}

/* ---------------------------------------------------------------- type origins */

Test(snap_kinds, type_origins_read_write_and_round_trip)
{
	const char *json = HDR ",\"strings\":[\"app.Job\",\"_thread.lock\",\"dict\",\"user\",\"builtin\",\"moon\"],"
			       "\"types\":[[0,2,112,3],[1,5,360,4],[2,1,64],[2,1,64,-1],[0,1,8,5]]}";
	cr_assert_eq(readers(json), 0, "the scanner declined origins");
	struct ld_snapshot *s = expect_json_loads(json);
	cr_assert_eq(s->ntypes, 5);
	cr_assert_str_eq(ld_snapshot_str(s, s->types[0].origin), "user");
	cr_assert_str_eq(ld_snapshot_str(s, s->types[1].origin), "builtin");
	cr_assert_eq(s->types[2].origin, LD_NOSTR);
	cr_assert_eq(s->types[3].origin, LD_NOSTR);
	cr_assert_str_eq(ld_snapshot_str(s, s->types[4].origin), "moon");
	char *out;
	size_t len;
	cr_assert_eq(ld_snap_serialize(s, &out, &len), 0);
	cr_assert_not_null(strstr(out, "\"types\":[[0,2,112,3],[1,5,360,4],[2,1,64],[2,1,64],[0,1,8,5]]"), "%s", out);
	cr_assert_eq(readers(out), 0);
	free(out);
	ld_snapshot_destroy(s);

	/* Files from before origins: three elements, no origin, written back the same. */
	s = expect_json_loads(HDR ",\"strings\":[\"a.T\"],\"types\":[[0,2,112]]}");
	cr_assert_eq(s->types[0].origin, LD_NOSTR);
	cr_assert_eq(ld_snap_serialize(s, &out, &len), 0);
	cr_assert_not_null(strstr(out, "\"types\":[[0,2,112]]"), "%s", out);
	free(out);
	ld_snapshot_destroy(s);
}

Test(snap_kinds, an_origin_must_name_a_string)
{
	expect_json_rejected(HDR ",\"strings\":[\"T\"],\"types\":[[0,1,1,1]]}",
			     "types[0][3]: index 1 out of range (1 strings)");
	cr_assert_eq(readers(HDR ",\"strings\":[\"T\"],\"types\":[[0,1,1,1]]}"), -EAGAIN);
	cr_assert_eq(readers(HDR ",\"strings\":[\"T\"],\"types\":[[0,1,1,\"user\"]]}"), -EAGAIN,
		     "the tree reader skips what is not an index");
}
