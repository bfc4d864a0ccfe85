/*
 * From the native agent's raw document to a snapshot; see native.h. The
 * document is read whole with cJSON after a nesting pre-scan, every member
 * is checked before it is used, then each stack's return addresses are
 * symbolised and the resulting frames and sites are interned so that equal
 * frames share an index and equal stacks share a site.
 */
#include "native.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frames.h"
#include "hashmap.h"
#include "jsoncheck.h"
#include "strtab.h"

/* Directories whose code the report treats as libraries, not the program. */
static char *const system_dirs[] = { "/usr/include", "/usr/lib", "/lib", "/usr/lib64", "/lib64" };

struct builder {
	struct ld_snapshot *s;
	struct ld_error *err;
	struct ld_hashmap frame_index; /* frame hash -> frame index */
	struct ld_hashmap site_index;  /* stack hash -> site index */
	struct ld_strtab roots;        /* compilation directories seen */
	uint32_t *stack;               /* the stack being built, LD_DEPTH_MAX long */
	uint32_t depth;
	/* Mixed documents (ld_native_merge): the Python stacks sites name. */
	const struct ld_native_python *python;
	struct ld_native_merged *merged;
};

static int oom(struct ld_error *err)
{
	return ld_error_set(err, ENOMEM, "out of memory");
}

/* ------------------------------------------------------------ checked reads */

/* A whole number in [0, max]; max is at most 2^64 - 2048 (exact as a double). */
static int get_uint(const cJSON *v, const char *what, double max, uint64_t *out, struct ld_error *err)
{
	if (!cJSON_IsNumber(v))
		return ld_json_reject(err, "%s: expected a number", what);
	double d = v->valuedouble;
	if (!isfinite(d) || d != floor(d))
		return ld_json_reject(err, "%s: not a whole number", what);
	if (d < 0)
		return ld_json_reject(err, "%s: negative value %.0f", what, d);
	if (d > max)
		return ld_json_reject(err, "%s: %.0f is too large", what, d);
	*out = (uint64_t)d;
	return 0;
}

#define MAX_COUNT ((double)LD_COUNT_MAX)
/* Largest double below 2^64, so that the conversion to uint64_t is defined. */
#define MAX_ADDR 18446744073709549568.0

static const cJSON *member(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return v && !cJSON_IsNull(v) ? v : NULL;
}

static int read_modules(const cJSON *root, struct ld_module **out, size_t *nout, struct ld_error *err)
{
	const cJSON *a = member(root, "modules"), *m;
	*out = NULL;
	*nout = 0;
	if (!a)
		return 0;
	if (!cJSON_IsArray(a))
		return ld_json_reject(err, "modules: expected an array");
	int n = cJSON_GetArraySize(a);
	if (n > LD_NATIVE_MAX_MODULES)
		return ld_json_reject(err, "modules: %d modules is more than %d", n, LD_NATIVE_MAX_MODULES);
	struct ld_module *mods = calloc(n ? (size_t)n : 1, sizeof(*mods));
	if (!mods)
		return oom(err);
	size_t i = 0;
	int r = 0;
	char what[64];
	cJSON_ArrayForEach(m, a) {
		struct ld_module *d = &mods[i];
		if (!cJSON_IsObject(m)) {
			r = ld_json_reject(err, "modules[%zu]: expected an object", i);
			break;
		}
		const cJSON *path = member(m, "path"), *id = member(m, "build_id");
		if (!cJSON_IsString(path)) {
			r = ld_json_reject(err, "modules[%zu].path: expected a string", i);
			break;
		}
		if (id && !cJSON_IsString(id)) {
			r = ld_json_reject(err, "modules[%zu].build_id: expected a string", i);
			break;
		}
		d->path = path->valuestring;
		d->build_id = id ? id->valuestring : NULL;
		static const char *const keys[] = { "start", "end", "offset", "bias" };
		uint64_t *fields[] = { &d->start, &d->end, &d->offset, &d->bias };
		for (size_t k = 0; k < 4 && r == 0; k++) {
			const cJSON *v = member(m, keys[k]);
			snprintf(what, sizeof(what), "modules[%zu].%s", i, keys[k]);
			if (!v && k == 2)
				continue; /* offset is informational */
			if (!v)
				r = ld_json_reject(err, "%s: missing", what);
			else
				r = get_uint(v, what, MAX_ADDR, fields[k], err);
		}
		if (r < 0)
			break;
		if (d->start >= d->end) {
			r = ld_json_reject(err, "modules[%zu]: start is not below end", i);
			break;
		}
		i++;
	}
	if (r < 0) {
		free(mods);
		return r;
	}
	*out = mods;
	*nout = i;
	return 0;
}

/* ------------------------------------------------------------ building */

static uint64_t frame_hash(const struct ld_frame *f)
{
	uint64_t h = ld_hash_mix(f->file, f->function);
	h = ld_hash_mix(h, (uint64_t)(uint32_t)f->line);
	h = ld_hash_mix(h, (uint64_t)f->kind);
	return ld_hash_mix(h, (uint64_t)(uint32_t)f->function_line);
}

/* The index of a frame equal to f, added to the snapshot on first sight. */
static int intern_frame(struct builder *b, const struct ld_frame *f, uint32_t *out)
{
	struct ld_snapshot *s = b->s;
	uint64_t h = frame_hash(f);
	struct ld_hashmap_iter it = LD_HASHMAP_ITER(h);
	uint32_t idx;
	while (ld_hashmap_next(&b->frame_index, &it, &idx)) {
		const struct ld_frame *g = &s->frames[idx];
		if (g->file == f->file && g->function == f->function && g->line == f->line &&
		    g->function_line == f->function_line && g->kind == f->kind) {
			*out = idx;
			return 0;
		}
	}
	if (ld_snapshot_add_frame(s, f, &idx) < 0 || ld_hashmap_insert(&b->frame_index, h, idx) < 0)
		return -ENOMEM;
	*out = idx;
	return 0;
}

static int on_symbol(void *ctx, const struct ld_symbol *sym)
{
	struct builder *b = ctx;
	struct ld_snapshot *s = b->s;
	if (b->depth >= LD_DEPTH_MAX)
		return 0; /* deeper than a snapshot may hold: cut */
	struct ld_frame f = { .text = LD_NOSTR, .line = sym->line, .function_line = sym->function_line };
	int r;
	if ((r = ld_strtab_intern(&s->strings, sym->file, strlen(sym->file), &f.file)) < 0 ||
	    (r = ld_strtab_intern(&s->strings, sym->function, strlen(sym->function), &f.function)) < 0 ||
	    (r = ld_frame_set_kind(s, &f, sym->inlined ? LD_FRAME_INLINED : LD_FRAME_NATIVE)) < 0)
		return -ENOMEM;
	if (sym->comp_dir && sym->comp_dir[0] == '/') {
		uint32_t ignored;
		if (ld_strtab_intern(&b->roots, sym->comp_dir, strlen(sym->comp_dir), &ignored) < 0)
			return -ENOMEM;
	}
	uint32_t idx;
	if (intern_frame(b, &f, &idx) < 0)
		return -ENOMEM;
	b->stack[b->depth++] = idx;
	return 0;
}

static uint64_t add_saturated(uint64_t a, uint64_t b)
{
	return a + b > LD_COUNT_MAX || a + b < a ? LD_COUNT_MAX : a + b;
}

/* Adds the stack in b->stack as a site, or to the site with the same frames. */
static int add_site(struct builder *b, uint64_t count, uint64_t bytes)
{
	struct ld_snapshot *s = b->s;
	uint64_t h = ld_hash_bytes(b->stack, (size_t)b->depth * sizeof(*b->stack));
	struct ld_hashmap_iter it = LD_HASHMAP_ITER(h);
	uint32_t idx;
	while (ld_hashmap_next(&b->site_index, &it, &idx)) {
		struct ld_site *site = &s->sites[idx];
		if (site->depth == b->depth &&
		    memcmp(ld_snapshot_stack(s, site->stack), b->stack, (size_t)b->depth * sizeof(*b->stack)) == 0) {
			site->count = add_saturated(site->count, count);
			site->bytes = add_saturated(site->bytes, bytes);
			return 0;
		}
	}
	if (s->nsites >= UINT32_MAX - 1)
		return -ENOMEM;
	idx = (uint32_t)s->nsites;
	if (ld_snapshot_add_site(s, count, bytes, b->stack, b->depth) < 0 ||
	    ld_hashmap_insert(&b->site_index, h, idx) < 0)
		return -ENOMEM;
	return 0;
}

/* Whether frame idx is the interpreter's evaluation loop. */
static bool eval_loop(const struct ld_snapshot *s, uint32_t idx)
{
	const struct ld_frame *f = &s->frames[idx];
	if (f->kind != LD_FRAME_NATIVE)
		return false;
	const char *fn = ld_snapshot_str(s, f->function);
	size_t n = strcspn(fn, "@");
	return n == 24 && strncmp(fn, "_PyEval_EvalFrameDefault", 24) == 0;
}

/* A site's sixth element when it is a plain whole number, else 0 (checked later). */
static uint64_t site_python_id(const cJSON *e)
{
	const cJSON *v = cJSON_GetArrayItem(e, 5);
	double d = cJSON_IsNumber(v) ? v->valuedouble : 0;
	return d >= 1 && d <= MAX_COUNT && d == floor(d) ? (uint64_t)d : 0;
}

static const struct ld_native_python_stack *python_stack(const struct ld_native_python *py, uint64_t id)
{
	size_t lo = 0, hi = py->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (py->stacks[mid].id == id)
			return &py->stacks[mid];
		if (py->stacks[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * Mixed documents: the native frames of the site in b->stack up to the
 * innermost evaluation loop, then the Python stack the site's sixth
 * element names, innermost first. The Python frames past that loop's are
 * the ones it (and the loops outside it) ran, so the whole Python stack
 * follows it. The interpreter's call machinery between the last frame of
 * other code and the loop is left out, and the loop's frame loses its
 * line: which way the interpreter made the call changes as it specialises
 * its code (a generic call first, a specialised one after a few runs), and
 * one line of Python calling one C function must stay one site. Without
 * the loop among the native frames (a stripped interpreter, or a stack
 * deeper than --depth) the Python stack alone.
 */
static int splice_python(struct builder *b, const cJSON *e, size_t i)
{
	const cJSON *v = cJSON_GetArrayItem(e, 5);
	uint64_t id = 0;
	char what[48];
	snprintf(what, sizeof(what), "sites[%zu][5]", i);
	if (v) {
		int r = get_uint(v, what, MAX_COUNT, &id, b->err);
		if (r < 0)
			return r;
	}
	const struct ld_native_python_stack *ps = id ? python_stack(b->python, id) : NULL;
	if (!ps) {
		if (b->merged)
			b->merged->native_only++;
		return 0;
	}
	uint32_t cut = b->depth;
	for (uint32_t k = 0; k < b->depth; k++) {
		if (eval_loop(b->s, b->stack[k])) {
			cut = k + 1;
			break;
		}
	}
	if (cut == b->depth && (b->depth == 0 || !eval_loop(b->s, b->stack[b->depth - 1]))) {
		b->depth = 0;
		if (b->merged)
			b->merged->python_only++;
	} else {
		uint32_t keep = cut - 1;
		const struct ld_frame *lf = &b->s->frames[b->stack[cut - 1]];
		while (keep > 0) {
			const struct ld_frame *f = &b->s->frames[b->stack[keep - 1]];
			/* Without debug information the interpreter's static
			 * helpers are only offsets in its own file. */
			bool own = lf->line == 0 && f->line == 0 && f->file == lf->file;
			if (!own && !ld_frame_is_interpreter(b->s, f))
				break;
			keep--;
		}
		/* Inlined frames of other code stay: only the loop's own go. */
		struct ld_frame loop = b->s->frames[b->stack[cut - 1]];
		loop.line = 0;
		uint32_t idx;
		if (intern_frame(b, &loop, &idx) < 0)
			return oom(b->err);
		if (keep == 0 && cut > 1)
			keep = 1; /* the allocating frame itself always stays */
		b->stack[keep] = idx;
		b->depth = keep + 1;
		if (b->merged)
			b->merged->spliced++;
	}
	for (uint32_t k = 0; k < ps->depth && b->depth < LD_DEPTH_MAX; k++)
		b->stack[b->depth++] = ps->frames[k];
	return 0;
}

static int read_sites(struct builder *b, const cJSON *root, struct ld_symbolizer *sym)
{
	const cJSON *a = member(root, "sites"), *e;
	if (!a)
		return 0;
	if (!cJSON_IsArray(a))
		return ld_json_reject(b->err, "sites: expected an array");
	size_t i = 0;
	char what[96];
	cJSON_ArrayForEach(e, a) {
		if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) < 3)
			return ld_json_reject(b->err, "sites[%zu]: expected [count, bytes, [addresses], ...]", i);
		uint64_t count, bytes;
		int r;
		snprintf(what, sizeof(what), "sites[%zu][0]", i);
		if ((r = get_uint(cJSON_GetArrayItem(e, 0), what, MAX_COUNT, &count, b->err)) < 0)
			return r;
		snprintf(what, sizeof(what), "sites[%zu][1]", i);
		if ((r = get_uint(cJSON_GetArrayItem(e, 1), what, MAX_COUNT, &bytes, b->err)) < 0)
			return r;
		const cJSON *st = cJSON_GetArrayItem(e, 2), *v;
		if (!cJSON_IsArray(st))
			return ld_json_reject(b->err, "sites[%zu][2]: expected an array of addresses", i);
		int n = cJSON_GetArraySize(st);
		if (n > LD_DEPTH_MAX)
			return ld_json_reject(b->err, "sites[%zu][2]: traceback of %d frames is longer than %d", i,
					      n, LD_DEPTH_MAX);
		/* Check every address before symbolising any. */
		size_t k = 0;
		cJSON_ArrayForEach(v, st) {
			uint64_t addr;
			snprintf(what, sizeof(what), "sites[%zu][2][%zu]", i, k++);
			if ((r = get_uint(v, what, MAX_ADDR, &addr, b->err)) < 0)
				return r;
		}
		b->depth = 0;
		/* Mixed: frames past the evaluation loop are replaced by Python's. */
		bool joined = b->python && python_stack(b->python, site_python_id(e));
		cJSON_ArrayForEach(v, st) {
			uint64_t addr = (uint64_t)v->valuedouble;
			/* Every address is a return address: describe the call before it. */
			r = ld_symbolizer_lookup(sym, addr ? addr - 1 : 0, on_symbol, b);
			if (r < 0)
				return oom(b->err);
			if (joined && b->depth && eval_loop(b->s, b->stack[b->depth - 1]))
				break;
		}
		if (b->python && (r = splice_python(b, e, i)) < 0)
			return r;
		if (count == 0 && bytes == 0) {
			i++;
			continue;
		}
		if (add_site(b, count, bytes) < 0)
			return oom(b->err);
		if (b->merged) {
			b->merged->blocks = add_saturated(b->merged->blocks, count);
			b->merged->bytes = add_saturated(b->merged->bytes, bytes);
		}
		i++;
	}
	return 0;
}

static int meta_str(const cJSON *meta, const char *name, char **field, struct ld_error *err)
{
	const cJSON *v = member(meta, name);
	if (!v)
		return 0;
	if (!cJSON_IsString(v))
		return ld_json_reject(err, "meta.%s: expected a string", name);
	return ld_meta_set(field, v->valuestring) < 0 ? oom(err) : 0;
}

static int meta_int(const cJSON *meta, const char *name, int64_t *field, struct ld_error *err)
{
	const cJSON *v = member(meta, name);
	if (!v)
		return 0;
	char what[48];
	uint64_t u;
	snprintf(what, sizeof(what), "meta.%s", name);
	int r = get_uint(v, what, MAX_COUNT, &u, err);
	if (r == 0)
		*field = (int64_t)u;
	return r;
}

static int read_meta(struct builder *b, const cJSON *root)
{
	const cJSON *meta = member(root, "meta");
	struct ld_meta *m = &b->s->meta;
	struct ld_error *err = b->err;
	if (ld_meta_set(&m->runtime, "native") < 0)
		return oom(err);
	m->tracing = 1;
	if (!meta)
		return 0;
	if (!cJSON_IsObject(meta))
		return ld_json_reject(err, "meta: expected an object");
	int r;
	if ((r = meta_str(meta, "agent", &m->agent, err)) < 0 ||
	    (r = meta_str(meta, "executable", &m->executable, err)) < 0 ||
	    (r = meta_str(meta, "label", &m->label, err)) < 0 ||
	    (r = meta_str(meta, "trigger", &m->trigger, err)) < 0 ||
	    (r = meta_str(meta, "time", &m->time, err)) < 0 ||
	    (r = meta_str(meta, "host", &m->host, err)) < 0 ||
	    (r = meta_int(meta, "pid", &m->pid, err)) < 0 ||
	    (r = meta_int(meta, "seq", &m->seq, err)) < 0 ||
	    (r = meta_int(meta, "depth", &m->depth, err)) < 0 ||
	    (r = meta_int(meta, "sample", &m->sample, err)) < 0)
		return r;
	const cJSON *v = member(meta, "elapsed_ms");
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && isfinite(v->valuedouble))
		m->elapsed_ms = v->valuedouble;
	return 0;
}

/* Checks the agent's totals, then replaces them by the sums over the sites. */
static int read_totals(struct builder *b, const cJSON *root)
{
	const cJSON *t = member(root, "totals");
	if (t) {
		if (!cJSON_IsObject(t))
			return ld_json_reject(b->err, "totals: expected an object");
		static const char *const keys[] = { "heap_bytes", "heap_blocks" };
		for (size_t k = 0; k < 2; k++) {
			const cJSON *v = member(t, keys[k]);
			char what[48];
			uint64_t ignored;
			snprintf(what, sizeof(what), "totals.%s", keys[k]);
			int r = v ? get_uint(v, what, MAX_COUNT, &ignored, b->err) : 0;
			if (r < 0)
				return r;
		}
	}
	struct ld_totals *tt = &b->s->totals;
	for (size_t i = 0; i < b->s->nsites; i++) {
		tt->heap_bytes = add_saturated(tt->heap_bytes, b->s->sites[i].bytes);
		tt->heap_blocks = add_saturated(tt->heap_blocks, b->s->sites[i].count);
	}
	return 0;
}

static int finish_meta(struct builder *b)
{
	struct ld_meta *m = &b->s->meta;
	size_t n = b->roots.n;
	char **roots = calloc(n ? n : 1, sizeof(*roots));
	if (!roots)
		return oom(b->err);
	for (size_t i = 0; i < n; i++)
		roots[i] = (char *)ld_strtab_get(&b->roots, (uint32_t)i);
	int r = ld_meta_set_list(&m->roots, &m->nroots, roots, n);
	free(roots);
	if (r < 0 || ld_meta_set_list(&m->stdlib, &m->nstdlib, system_dirs,
				      sizeof(system_dirs) / sizeof(system_dirs[0])) < 0)
		return oom(b->err);
	return 0;
}

/* ------------------------------------------------------------ entry points */

bool ld_native_is_raw(const char *json, size_t len)
{
	static const char needle[] = "\"" LD_NATIVE_FORMAT "\"";
	size_t n = len < 256 ? len : 256, k = sizeof(needle) - 1;
	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(json + i, needle, k) == 0)
			return true;
	return false;
}

/* Parses and checks the top level; *root is the document on success. */
static int open_document(const char *json, size_t len, cJSON **root, struct ld_error *err)
{
	int r = ld_json_check_nesting(json, len, NULL, err);
	if (r < 0)
		return r;
	const char *end = NULL;
	cJSON *doc = cJSON_ParseWithLengthOpts(json, len, &end, 0);
	if (!doc) {
		const char *at = cJSON_GetErrorPtr();
		size_t off = at && at >= json && at <= json + len ? (size_t)(at - json) : len;
		if (off >= len)
			return ld_json_reject(err, "invalid JSON: document ends early (%zu bytes)", len);
		return ld_json_reject(err, "invalid JSON at byte %zu", off);
	}
	for (const char *p = end; p && p < json + len; p++) {
		if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
			cJSON_Delete(doc);
			return ld_json_reject(err, "invalid JSON: extra data at byte %zu", (size_t)(p - json));
		}
	}
	const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(doc, "format");
	const cJSON *ver = cJSON_GetObjectItemCaseSensitive(doc, "version");
	if (!cJSON_IsObject(doc) || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, LD_NATIVE_FORMAT) != 0) {
		cJSON_Delete(doc);
		return ld_json_reject(err, "not a native raw snapshot (format is not \"%s\")",
				      LD_NATIVE_FORMAT);
	}
	if (!cJSON_IsNumber(ver) || ver->valuedouble != LD_NATIVE_VERSION) {
		double v = cJSON_IsNumber(ver) ? ver->valuedouble : -1;
		cJSON_Delete(doc);
		if (v < 0)
			return ld_json_reject(err, "native raw snapshot has no version");
		return ld_json_reject(err, "unsupported native raw snapshot version %g "
				      "(this leakdiff reads version %d)", v, LD_NATIVE_VERSION);
	}
	*root = doc;
	return 0;
}

/*
 * Opens a native raw document and brings *sym up to date with its module
 * list: the modules are added to the symbolizer the earlier documents of
 * the run built, or, when there is none or a library was swapped since
 * (-EEXIST: its cached answers may be stale), to a new one. On success
 * *root holds the document, which the caller deletes; on error *root is
 * left NULL and *sym is whatever symbolizer is still valid (possibly NULL).
 */
static int open_symbolized(struct ld_symbolizer **sym, const char *json, size_t len, cJSON **root,
			   struct ld_error *err)
{
	int r = open_document(json, len, root, err);
	if (r < 0)
		return r;
	struct ld_module *mods = NULL;
	size_t nmods = 0;
	if ((r = read_modules(*root, &mods, &nmods, err)) < 0)
		goto out;
	if (*sym) {
		r = ld_symbolizer_add(*sym, mods, nmods, err);
		if (r == -EEXIST) {
			ld_symbolizer_destroy(*sym);
			*sym = NULL;
		} else if (r < 0) {
			goto out;
		}
	}
	if (!*sym)
		r = ld_symbolizer_create(mods, nmods, sym, err);
out:
	/* The symbolizer copied what it keeps. */
	free(mods);
	if (r < 0) {
		cJSON_Delete(*root);
		*root = NULL;
	}
	return r;
}

int ld_native_parse_with(struct ld_symbolizer **sym, const char *json, size_t len,
			 struct ld_snapshot **out, struct ld_error *err)
{
	cJSON *root = NULL;
	int r = open_symbolized(sym, json, len, &root, err);
	if (r < 0)
		return r;
	struct builder b = { .err = err };
	ld_hashmap_init(&b.frame_index);
	ld_hashmap_init(&b.site_index);
	ld_strtab_init(&b.roots);
	b.s = ld_snapshot_create();
	b.stack = malloc(LD_DEPTH_MAX * sizeof(*b.stack));
	if (!b.s || !b.stack) {
		r = oom(err);
		goto out;
	}
	if ((r = read_meta(&b, root)) < 0 || (r = read_sites(&b, root, *sym)) < 0 ||
	    (r = read_totals(&b, root)) < 0 || (r = finish_meta(&b)) < 0)
		goto out;
	*out = b.s;
	b.s = NULL;
out:
	ld_snapshot_destroy(b.s);
	free(b.stack);
	ld_hashmap_finish(&b.frame_index);
	ld_hashmap_finish(&b.site_index);
	ld_strtab_finish(&b.roots);
	cJSON_Delete(root);
	return r;
}

/* Adds the directories of a native document (roots, system dirs) to s's lists. */
static int merge_dirs(struct builder *b)
{
	struct ld_meta *m = &b->s->meta;
	size_t n = m->nroots + b->roots.n, k = 0;
	size_t nsys = sizeof(system_dirs) / sizeof(system_dirs[0]);
	char **roots = calloc(n ? n : 1, sizeof(*roots));
	char **dirs = calloc(m->nstdlib + nsys, sizeof(*dirs));
	int r = -ENOMEM;
	if (roots && dirs) {
		for (size_t i = 0; i < m->nroots; i++)
			roots[k++] = m->roots[i];
		for (size_t i = 0; i < b->roots.n; i++)
			roots[k++] = (char *)ld_strtab_get(&b->roots, (uint32_t)i);
		size_t nd = 0;
		for (size_t i = 0; i < m->nstdlib; i++)
			dirs[nd++] = m->stdlib[i];
		for (size_t i = 0; i < nsys; i++)
			dirs[nd++] = system_dirs[i];
		/* Copied before the old lists (which some entries point into) go. */
		r = ld_meta_set_list(&m->roots, &m->nroots, roots, k) < 0 ||
		    ld_meta_set_list(&m->stdlib, &m->nstdlib, dirs, nd) < 0 ? -ENOMEM : 0;
	}
	free(roots);
	free(dirs);
	return r < 0 ? oom(b->err) : 0;
}

int ld_native_merge(struct ld_symbolizer **sym, const char *json, size_t len, struct ld_snapshot *s,
		    const struct ld_native_python *python, struct ld_native_merged *merged, struct ld_error *err)
{
	cJSON *root = NULL;
	int r = open_symbolized(sym, json, len, &root, err);
	if (r < 0)
		return r;
	struct builder b = { .err = err, .s = s, .python = python, .merged = merged };
	ld_hashmap_init(&b.frame_index);
	ld_hashmap_init(&b.site_index);
	ld_strtab_init(&b.roots);
	b.stack = malloc(LD_DEPTH_MAX * sizeof(*b.stack));
	if (!b.stack) {
		r = oom(err);
		goto out;
	}
	if ((r = read_sites(&b, root, *sym)) < 0 || (r = merge_dirs(&b)) < 0)
		goto out;
	s->totals.heap_bytes = add_saturated(s->totals.heap_bytes, merged->bytes);
	s->totals.heap_blocks = add_saturated(s->totals.heap_blocks, merged->blocks);
	s->totals.native_bytes = merged->bytes;
	s->totals.native_blocks = merged->blocks;
	s->totals.has_native = true;
out:
	free(b.stack);
	ld_hashmap_finish(&b.frame_index);
	ld_hashmap_finish(&b.site_index);
	ld_strtab_finish(&b.roots);
	cJSON_Delete(root);
	return r;
}

int ld_native_parse(const char *json, size_t len, struct ld_snapshot **out, struct ld_error *err)
{
	struct ld_symbolizer *sym = NULL;
	int r = ld_native_parse_with(&sym, json, len, out, err);
	ld_symbolizer_destroy(sym);
	return r;
}
