/*
 * Reading and writing .snap files (leakdiff-snapshot(5)). Reading is
 * gunzip with a size cap (gunzip.c), then one of two readers. The tree
 * reader is a nesting pre-scan (jsoncheck.c), cJSON, then a walk that
 * checks every number and index before it enters the model; it is the
 * reference. The scanner (snapscan.c) reads the tables of a well-formed
 * file several times faster and hands anything unusual back to the tree
 * reader. Writing builds the JSON text directly (a cJSON tree of a large
 * snapshot would cost many times its size), compresses it in memory and
 * replaces the file atomically.
 */
#include "snap.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "buf.h"
#include "frames.h"
#include "gunzip.h"
#include "jsoncheck.h"
#include "snapscan.h"

/* ---------------------------------------------------------------- reading */

struct reader {
	struct ld_snapshot *s;
	struct ld_error *err;
};

/* A count: an integer from 0 to 2^53. */
static int get_count(struct reader *rd, const cJSON *v, const char *what, uint64_t *out)
{
	if (!cJSON_IsNumber(v))
		return ld_json_reject(rd->err, "%s: expected a number", what);
	double d = v->valuedouble;
	if (d < 0)
		return ld_json_reject(rd->err, "%s: negative count %.0f", what, d);
	if (d != floor(d) || !isfinite(d))
		return ld_json_reject(rd->err, "%s: not a whole number", what);
	if (d > (double)LD_COUNT_MAX)
		return ld_json_reject(rd->err, "%s: count %.0f is absurdly large", what, d);
	*out = (uint64_t)d;
	return 0;
}

/* An integer in [lo, hi]. */
static int get_int(struct reader *rd, const cJSON *v, const char *what, int64_t lo, int64_t hi, int64_t *out)
{
	if (!cJSON_IsNumber(v))
		return ld_json_reject(rd->err, "%s: expected a number", what);
	double d = v->valuedouble;
	if (d != floor(d) || !isfinite(d) || d < (double)lo || d > (double)hi)
		return ld_json_reject(rd->err, "%s: %g is not a whole number from %lld to %lld", what, d,
				      (long long)lo, (long long)hi);
	*out = (int64_t)d;
	return 0;
}

/* An index into a table of n entries; -1 allowed (as LD_NOSTR) when optional. */
static int get_index(struct reader *rd, const cJSON *v, const char *what, size_t n,
		     const char *table, int optional, uint32_t *out)
{
	if (!cJSON_IsNumber(v))
		return ld_json_reject(rd->err, "%s: expected an index", what);
	double d = v->valuedouble;
	if (optional && d == -1) {
		*out = LD_NOSTR;
		return 0;
	}
	if (d != floor(d) || d < 0 || d >= (double)n)
		return ld_json_reject(rd->err, "%s: index %g out of range (%zu %s)", what, d, n, table);
	*out = (uint32_t)d;
	return 0;
}

/*
 * The hot loops check each value here first and build a message (with
 * snprintf and the get_* functions) only for a value that fails: most of a
 * large file is counts and indices, and formatting a context for each was a
 * fifth of the load time.
 */
static inline bool fast_count(const cJSON *v, uint64_t *out)
{
	if (!cJSON_IsNumber(v))
		return false;
	double d = v->valuedouble;
	if (!(d >= 0 && d <= (double)LD_COUNT_MAX) || d != floor(d))
		return false;
	*out = (uint64_t)d;
	return true;
}

static inline bool fast_index(const cJSON *v, size_t n, uint32_t *out)
{
	if (!cJSON_IsNumber(v))
		return false;
	double d = v->valuedouble;
	if (!(d >= 0 && d < (double)n) || d != floor(d))
		return false;
	*out = (uint32_t)d;
	return true;
}

static int get_array(struct reader *rd, const cJSON *root, const char *name, const cJSON **out)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, name);
	*out = NULL;
	if (!a || cJSON_IsNull(a))
		return 0;
	if (!cJSON_IsArray(a))
		return ld_json_reject(rd->err, "%s: expected an array", name);
	*out = a;
	return 0;
}

static int oom(struct reader *rd)
{
	ld_error_set(rd->err, ENOMEM, "out of memory");
	return -ENOMEM;
}

static int read_strings(struct reader *rd, const cJSON *root)
{
	const cJSON *a, *v;
	int r = get_array(rd, root, "strings", &a);
	if (r < 0 || !a)
		return r;
	size_t i = 0;
	cJSON_ArrayForEach(v, a) {
		if (!cJSON_IsString(v))
			return ld_json_reject(rd->err, "strings[%zu]: expected a string", i);
		uint32_t idx;
		r = ld_strtab_append(&rd->s->strings, v->valuestring, strlen(v->valuestring), &idx);
		if (r == -E2BIG)
			return ld_json_reject(rd->err, "strings: too many strings");
		if (r < 0)
			return oom(rd);
		i++;
	}
	return 0;
}

static int read_frames(struct reader *rd, const cJSON *root)
{
	const cJSON *a, *f;
	int r = get_array(rd, root, "frames", &a);
	if (r < 0 || !a)
		return r;
	size_t i = 0, nstr = rd->s->strings.n;
	char what[64];
	cJSON_ArrayForEach(f, a) {
		int n = cJSON_IsArray(f) ? cJSON_GetArraySize(f) : 0;
		if (n < 3)
			return ld_json_reject(rd->err, "frames[%zu]: expected [file, line, function, ...]", i);
		struct ld_frame fr = { .text = LD_NOSTR, .function_line = -1, .kind_name = LD_NOSTR };
		int64_t line, fline = -1;
		snprintf(what, sizeof(what), "frames[%zu][0]", i);
		if ((r = get_index(rd, cJSON_GetArrayItem(f, 0), what, nstr, "strings", 0, &fr.file)) < 0)
			return r;
		snprintf(what, sizeof(what), "frames[%zu][1]", i);
		if ((r = get_int(rd, cJSON_GetArrayItem(f, 1), what, 0, INT32_MAX, &line)) < 0)
			return r;
		snprintf(what, sizeof(what), "frames[%zu][2]", i);
		if ((r = get_index(rd, cJSON_GetArrayItem(f, 2), what, nstr, "strings", 0, &fr.function)) < 0)
			return r;
		if (n > 3) {
			snprintf(what, sizeof(what), "frames[%zu][3]", i);
			if ((r = get_int(rd, cJSON_GetArrayItem(f, 3), what, -1, INT32_MAX, &fline)) < 0)
				return r;
		}
		if (n > 4) {
			snprintf(what, sizeof(what), "frames[%zu][4]", i);
			if ((r = get_index(rd, cJSON_GetArrayItem(f, 4), what, nstr, "strings", 1, &fr.text)) < 0)
				return r;
		}
		/* A sixth element that is not a number is not a kind: skipped, as before kinds. */
		if (n > 5 && cJSON_IsNumber(cJSON_GetArrayItem(f, 5))) {
			snprintf(what, sizeof(what), "frames[%zu][5]", i);
			if ((r = get_index(rd, cJSON_GetArrayItem(f, 5), what, nstr, "strings", 1, &fr.kind_name)) < 0)
				return r;
			if (fr.kind_name != LD_NOSTR)
				fr.kind = ld_frame_kind_parse(ld_snapshot_str(rd->s, fr.kind_name));
		}
		fr.line = (int32_t)line;
		fr.function_line = (int32_t)fline;
		uint32_t idx;
		if (ld_snapshot_add_frame(rd->s, &fr, &idx) < 0)
			return oom(rd);
		i++;
	}
	return 0;
}

/* Reads a traceback (an array of frame indices), TABLE[row][col], into buf. */
static int read_stack(struct reader *rd, const cJSON *st, const char *table, size_t row, int col,
		      uint32_t *buf, uint32_t *depth)
{
	char what[96];
	if (!cJSON_IsArray(st))
		return ld_json_reject(rd->err, "%s[%zu][%d]: expected an array of frame indices", table, row,
				      col);
	int n = cJSON_GetArraySize(st);
	if (n > LD_DEPTH_MAX)
		return ld_json_reject(rd->err, "%s[%zu][%d]: traceback of %d frames is longer than %d", table,
				      row, col, n, LD_DEPTH_MAX);
	const cJSON *v;
	uint32_t i = 0;
	cJSON_ArrayForEach(v, st) {
		if (!fast_index(v, rd->s->nframes, &buf[i])) {
			snprintf(what, sizeof(what), "%s[%zu][%d][%u]", table, row, col, i);
			return get_index(rd, v, what, rd->s->nframes, "frames", 0, &buf[i]);
		}
		i++;
	}
	*depth = i;
	return 0;
}

static int read_sites(struct reader *rd, const cJSON *root, uint32_t *stack)
{
	const cJSON *a, *e;
	int r = get_array(rd, root, "sites", &a);
	if (r < 0 || !a)
		return r;
	size_t i = 0;
	char what[64];
	cJSON_ArrayForEach(e, a) {
		if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) < 3)
			return ld_json_reject(rd->err, "sites[%zu]: expected [count, bytes, [frames]]", i);
		uint64_t count, bytes;
		uint32_t depth;
		const cJSON *c = e->child, *b = c->next, *st = b->next;
		if (!fast_count(c, &count)) {
			snprintf(what, sizeof(what), "sites[%zu][0]", i);
			return get_count(rd, c, what, &count);
		}
		if (!fast_count(b, &bytes)) {
			snprintf(what, sizeof(what), "sites[%zu][1]", i);
			return get_count(rd, b, what, &bytes);
		}
		if ((r = read_stack(rd, st, "sites", i, 2, stack, &depth)) < 0)
			return r;
		if (ld_snapshot_add_site(rd->s, count, bytes, stack, depth) < 0)
			return oom(rd);
		i++;
	}
	return 0;
}

static int read_types(struct reader *rd, const cJSON *root)
{
	const cJSON *a, *e;
	int r = get_array(rd, root, "types", &a);
	if (r < 0 || !a)
		return r;
	size_t i = 0;
	char what[64];
	cJSON_ArrayForEach(e, a) {
		if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) < 3)
			return ld_json_reject(rd->err, "types[%zu]: expected [name, count, bytes]", i);
		uint32_t name;
		uint64_t count, bytes;
		snprintf(what, sizeof(what), "types[%zu][0]", i);
		if ((r = get_index(rd, cJSON_GetArrayItem(e, 0), what, rd->s->strings.n, "strings", 0, &name)) < 0)
			return r;
		snprintf(what, sizeof(what), "types[%zu][1]", i);
		if ((r = get_count(rd, cJSON_GetArrayItem(e, 1), what, &count)) < 0)
			return r;
		snprintf(what, sizeof(what), "types[%zu][2]", i);
		if ((r = get_count(rd, cJSON_GetArrayItem(e, 2), what, &bytes)) < 0)
			return r;
		uint32_t origin = LD_NOSTR;
		/* A fourth element that is not a number is not an origin: skipped, as before origins. */
		const cJSON *o = cJSON_GetArrayItem(e, 3);
		if (o && cJSON_IsNumber(o)) {
			snprintf(what, sizeof(what), "types[%zu][3]", i);
			if ((r = get_index(rd, o, what, rd->s->strings.n, "strings", 1, &origin)) < 0)
				return r;
		}
		if (ld_snapshot_add_type(rd->s, name, count, bytes) < 0)
			return oom(rd);
		rd->s->types[rd->s->ntypes - 1].origin = origin;
		i++;
	}
	return 0;
}

static int read_type_sites(struct reader *rd, const cJSON *root, uint32_t *stack)
{
	const cJSON *a, *e;
	int r = get_array(rd, root, "type_sites", &a);
	if (r < 0 || !a)
		return r;
	size_t i = 0;
	char what[64];
	cJSON_ArrayForEach(e, a) {
		if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) < 4)
			return ld_json_reject(rd->err, "type_sites[%zu]: expected [type, count, bytes, [frames]]", i);
		uint32_t type, depth;
		uint64_t count, bytes;
		snprintf(what, sizeof(what), "type_sites[%zu][0]", i);
		if ((r = get_index(rd, cJSON_GetArrayItem(e, 0), what, rd->s->ntypes, "types", 0, &type)) < 0)
			return r;
		snprintf(what, sizeof(what), "type_sites[%zu][1]", i);
		if ((r = get_count(rd, cJSON_GetArrayItem(e, 1), what, &count)) < 0)
			return r;
		snprintf(what, sizeof(what), "type_sites[%zu][2]", i);
		if ((r = get_count(rd, cJSON_GetArrayItem(e, 2), what, &bytes)) < 0)
			return r;
		if ((r = read_stack(rd, cJSON_GetArrayItem(e, 3), "type_sites", i, 3, stack, &depth)) < 0)
			return r;
		if (ld_snapshot_add_type_site(rd->s, type, count, bytes, stack, depth) < 0)
			return oom(rd);
		i++;
	}
	return 0;
}

/* An optional count member of an object; absent or null leaves *out alone. */
static int opt_count(struct reader *rd, const cJSON *obj, const char *ctx, const char *name, uint64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	if (!v || cJSON_IsNull(v))
		return 0;
	char what[96];
	snprintf(what, sizeof(what), "%s.%s", ctx, name);
	return get_count(rd, v, what, out);
}

/* Interns an optional string member; absent gives LD_NOSTR. */
static int opt_strref(struct reader *rd, const cJSON *obj, const char *ctx, const char *name, uint32_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	*out = LD_NOSTR;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return ld_json_reject(rd->err, "%s.%s: expected a string", ctx, name);
	if (ld_strtab_intern(&rd->s->strings, v->valuestring, strlen(v->valuestring), out) < 0)
		return oom(rd);
	return 0;
}

static int read_hints(struct reader *rd, const cJSON *root)
{
	const cJSON *a, *e;
	int r = get_array(rd, root, "hints", &a);
	if (r < 0 || !a)
		return r;
	size_t i = 0;
	char ctx[48];
	cJSON_ArrayForEach(e, a) {
		snprintf(ctx, sizeof(ctx), "hints[%zu]", i++);
		if (!cJSON_IsObject(e))
			return ld_json_reject(rd->err, "%s: expected an object", ctx);
		const cJSON *kind = cJSON_GetObjectItemCaseSensitive(e, "kind");
		if (!cJSON_IsString(kind))
			return ld_json_reject(rd->err, "%s.kind: expected a string", ctx);
		struct ld_hint h = { .name = LD_NOSTR, .type = LD_NOSTR, .maxsize = -1 };
		const char *k = kind->valuestring;
		const char *value_key;
		if (strcmp(k, "container") == 0) {
			h.kind = LD_HINT_CONTAINER;
			value_key = "length";
		} else if (strcmp(k, "lru_cache") == 0) {
			h.kind = LD_HINT_LRU_CACHE;
			value_key = "currsize";
		} else if (strcmp(k, "garbage") == 0) {
			h.kind = LD_HINT_GARBAGE;
			value_key = "count";
		} else if (strcmp(k, "cycles") == 0) {
			h.kind = LD_HINT_CYCLES;
			value_key = "collected";
		} else if (strcmp(k, "path") == 0) {
			h.kind = LD_HINT_PATH;
			value_key = NULL;
		} else {
			continue; /* a kind from a later version: skipped, as documented */
		}
		if ((r = opt_strref(rd, e, ctx, "name", &h.name)) < 0 ||
		    (r = opt_strref(rd, e, ctx, "type", &h.type)) < 0)
			return r;
		if (value_key && (r = opt_count(rd, e, ctx, value_key, &h.value)) < 0)
			return r;
		if ((r = opt_count(rd, e, ctx, "hits", &h.hits)) < 0 ||
		    (r = opt_count(rd, e, ctx, "misses", &h.misses)) < 0)
			return r;
		uint64_t maxsize;
		const cJSON *ms = cJSON_GetObjectItemCaseSensitive(e, "maxsize");
		if (ms && !cJSON_IsNull(ms)) {
			if ((r = opt_count(rd, e, ctx, "maxsize", &maxsize)) < 0)
				return r;
			h.maxsize = (int64_t)maxsize;
		}
		uint32_t path[64];
		uint32_t plen = 0;
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "path");
		if (p && !cJSON_IsNull(p)) {
			if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) > 64)
				return ld_json_reject(rd->err, "%s.path: expected an array of at most 64 strings", ctx);
			const cJSON *v;
			cJSON_ArrayForEach(v, p) {
				if (!cJSON_IsString(v))
					return ld_json_reject(rd->err, "%s.path[%u]: expected a string", ctx, plen);
				if (ld_strtab_intern(&rd->s->strings, v->valuestring, strlen(v->valuestring), &path[plen]) < 0)
					return oom(rd);
				plen++;
			}
		}
		if (ld_snapshot_add_hint(rd->s, &h, path, plen) < 0)
			return oom(rd);
	}
	return 0;
}

static int meta_str(struct reader *rd, const cJSON *meta, const char *name, char **field)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, name);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return ld_json_reject(rd->err, "meta.%s: expected a string", name);
	return ld_meta_set(field, v->valuestring) < 0 ? oom(rd) : 0;
}

static int meta_list(struct reader *rd, const cJSON *meta, const char *name, char ***list, size_t *n)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(meta, name), *v;
	if (!a || cJSON_IsNull(a))
		return 0;
	if (!cJSON_IsArray(a))
		return ld_json_reject(rd->err, "meta.%s: expected an array of strings", name);
	size_t count = (size_t)cJSON_GetArraySize(a), i = 0;
	char **tmp = calloc(count ? count : 1, sizeof(*tmp));
	if (!tmp)
		return oom(rd);
	cJSON_ArrayForEach(v, a) {
		if (!cJSON_IsString(v)) {
			free(tmp);
			return ld_json_reject(rd->err, "meta.%s[%zu]: expected a string", name, i);
		}
		tmp[i++] = v->valuestring;
	}
	int r = ld_meta_set_list(list, n, tmp, count);
	free(tmp);
	return r < 0 ? oom(rd) : 0;
}

static int meta_int(struct reader *rd, const cJSON *meta, const char *name, int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, name);
	if (!v || cJSON_IsNull(v))
		return 0;
	char what[48];
	snprintf(what, sizeof(what), "meta.%s", name);
	return get_int(rd, v, what, 0, (int64_t)LD_COUNT_MAX, out);
}

static int read_meta(struct reader *rd, const cJSON *root)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "meta");
	if (!meta || cJSON_IsNull(meta))
		return 0;
	if (!cJSON_IsObject(meta))
		return ld_json_reject(rd->err, "meta: expected an object");
	struct ld_meta *m = &rd->s->meta;
	int r;
	if ((r = meta_str(rd, meta, "runtime", &m->runtime)) < 0 ||
	    (r = meta_str(rd, meta, "agent", &m->agent)) < 0 ||
	    (r = meta_str(rd, meta, "executable", &m->executable)) < 0 ||
	    (r = meta_str(rd, meta, "label", &m->label)) < 0 ||
	    (r = meta_str(rd, meta, "trigger", &m->trigger)) < 0 ||
	    (r = meta_str(rd, meta, "time", &m->time)) < 0 ||
	    (r = meta_str(rd, meta, "host", &m->host)) < 0 ||
	    (r = meta_str(rd, meta, "python", &m->python)) < 0 ||
	    (r = meta_str(rd, meta, "tracer", &m->tracer)) < 0 ||
	    (r = meta_list(rd, meta, "command", &m->command, &m->ncommand)) < 0 ||
	    (r = meta_list(rd, meta, "roots", &m->roots, &m->nroots)) < 0 ||
	    (r = meta_list(rd, meta, "stdlib", &m->stdlib, &m->nstdlib)) < 0 ||
	    (r = meta_int(rd, meta, "pid", &m->pid)) < 0 ||
	    (r = meta_int(rd, meta, "seq", &m->seq)) < 0 ||
	    (r = meta_int(rd, meta, "depth", &m->depth)) < 0 ||
	    (r = meta_int(rd, meta, "sample", &m->sample)) < 0)
		return r;
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, "tracing");
	if (cJSON_IsBool(v))
		m->tracing = cJSON_IsTrue(v);
	v = cJSON_GetObjectItemCaseSensitive(meta, "elapsed_ms");
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && isfinite(v->valuedouble))
		m->elapsed_ms = v->valuedouble;
	v = cJSON_GetObjectItemCaseSensitive(meta, "attached");
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && isfinite(v->valuedouble))
		m->attached = v->valuedouble;
	return 0;
}

/* a + b for two counts of at most LD_COUNT_MAX, saturating there. */
static uint64_t add_count(uint64_t a, uint64_t b)
{
	return a + b > LD_COUNT_MAX ? LD_COUNT_MAX : a + b;
}

static int read_totals(struct reader *rd, const cJSON *root)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "totals");
	struct ld_totals *tt = &rd->s->totals;
	if (!t || cJSON_IsNull(t)) {
		/*
		 * Older or hand-written files: derive what the tables say,
		 * stopping at the largest count a file may hold, which the
		 * writer can put back exactly (and which cannot wrap).
		 */
		for (size_t i = 0; i < rd->s->nsites; i++) {
			tt->heap_bytes = add_count(tt->heap_bytes, rd->s->sites[i].bytes);
			tt->heap_blocks = add_count(tt->heap_blocks, rd->s->sites[i].count);
		}
		for (size_t i = 0; i < rd->s->ntypes; i++) {
			tt->object_bytes = add_count(tt->object_bytes, rd->s->types[i].bytes);
			tt->objects = add_count(tt->objects, rd->s->types[i].count);
		}
		return 0;
	}
	if (!cJSON_IsObject(t))
		return ld_json_reject(rd->err, "totals: expected an object");
	int r;
	if ((r = opt_count(rd, t, "totals", "heap_bytes", &tt->heap_bytes)) < 0 ||
	    (r = opt_count(rd, t, "totals", "heap_blocks", &tt->heap_blocks)) < 0 ||
	    (r = opt_count(rd, t, "totals", "objects", &tt->objects)) < 0 ||
	    (r = opt_count(rd, t, "totals", "object_bytes", &tt->object_bytes)) < 0)
		return r;
	const cJSON *mb = cJSON_GetObjectItemCaseSensitive(t, "malloc_bytes");
	if (mb && !cJSON_IsNull(mb)) {
		if ((r = get_count(rd, mb, "totals.malloc_bytes", &tt->malloc_bytes)) < 0)
			return r;
		tt->has_malloc = true;
	}
	const cJSON *nb = cJSON_GetObjectItemCaseSensitive(t, "native_bytes");
	const cJSON *nn = cJSON_GetObjectItemCaseSensitive(t, "native_blocks");
	if (nb && !cJSON_IsNull(nb) && nn && !cJSON_IsNull(nn)) {
		if ((r = get_count(rd, nb, "totals.native_bytes", &tt->native_bytes)) < 0 ||
		    (r = get_count(rd, nn, "totals.native_blocks", &tt->native_blocks)) < 0)
			return r;
		tt->has_native = true;
	}
	return 0;
}

static int read_gc(struct reader *rd, const cJSON *root)
{
	const cJSON *g = cJSON_GetObjectItemCaseSensitive(root, "gc");
	if (!g || cJSON_IsNull(g))
		return 0;
	if (!cJSON_IsObject(g))
		return ld_json_reject(rd->err, "gc: expected an object");
	struct ld_gc *gc = &rd->s->gc;
	gc->present = true;
	const cJSON *en = cJSON_GetObjectItemCaseSensitive(g, "enabled");
	if (cJSON_IsBool(en))
		gc->enabled = cJSON_IsTrue(en);
	int r;
	if ((r = opt_count(rd, g, "gc", "collected", &gc->collected)) < 0 ||
	    (r = opt_count(rd, g, "gc", "uncollectable", &gc->uncollectable)) < 0 ||
	    (r = opt_count(rd, g, "gc", "garbage", &gc->garbage)) < 0)
		return r;
	const cJSON *gens = cJSON_GetObjectItemCaseSensitive(g, "generations"), *e;
	if (gens && !cJSON_IsNull(gens)) {
		if (!cJSON_IsArray(gens) || cJSON_GetArraySize(gens) > LD_GC_GENERATIONS)
			return ld_json_reject(rd->err, "gc.generations: expected an array of at most %d objects",
					      LD_GC_GENERATIONS);
		cJSON_ArrayForEach(e, gens) {
			char ctx[32];
			snprintf(ctx, sizeof(ctx), "gc.generations[%zu]", gc->ngenerations);
			if (!cJSON_IsObject(e))
				return ld_json_reject(rd->err, "%s: expected an object", ctx);
			if ((r = opt_count(rd, e, ctx, "collections", &gc->generations[gc->ngenerations].collections)) < 0 ||
			    (r = opt_count(rd, e, ctx, "collected", &gc->generations[gc->ngenerations].collected)) < 0 ||
			    (r = opt_count(rd, e, ctx, "uncollectable", &gc->generations[gc->ngenerations].uncollectable)) < 0)
				return r;
			gc->ngenerations++;
		}
	}
	return 0;
}

/* The format and version members, checked before anything else is read. */
static int check_header(struct reader *rd, const cJSON *root)
{
	const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
	const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
	if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, LD_SNAP_FORMAT) != 0)
		return ld_json_reject(rd->err, "not a leakdiff snapshot (format is not \"%s\")", LD_SNAP_FORMAT);
	if (!cJSON_IsNumber(ver))
		return ld_json_reject(rd->err, "snapshot has no version");
	if (ver->valuedouble != LD_SNAP_VERSION)
		return ld_json_reject(rd->err, "unsupported snapshot version %g (this leakdiff reads version %d)",
				      ver->valuedouble, LD_SNAP_VERSION);
	return 0;
}

/*
 * The tree reader: cJSON builds the whole document, then each table is
 * walked and checked. It defines what a .snap file means and every message
 * for one that is wrong; the scanner below only ever agrees with it.
 */
static int parse_tree(const char *json, size_t len, struct ld_snapshot **out, struct ld_error *err)
{
	struct reader rd = { .err = err };
	bool open = false;
	int r = ld_json_check_nesting(json, len, &open, err);
	if (r < 0)
		return r;
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
	if (!root) {
		const char *at = cJSON_GetErrorPtr();
		size_t off = at && at >= json && at <= json + len ? (size_t)(at - json) : len;
		if (off >= len || open)
			return ld_json_reject(rd.err, "invalid JSON: document ends early (%zu bytes)", len);
		return ld_json_reject(rd.err, "invalid JSON at byte %zu", off);
	}
	/* Only white space may follow the document. */
	for (const char *p = end; p && p < json + len; p++) {
		if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
			cJSON_Delete(root);
			return ld_json_reject(rd.err, "invalid JSON: extra data at byte %zu", (size_t)(p - json));
		}
	}
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return ld_json_reject(rd.err, "not a leakdiff snapshot (the JSON is not an object)");
	}
	if ((r = check_header(&rd, root)) < 0) {
		cJSON_Delete(root);
		return r;
	}

	rd.s = ld_snapshot_create();
	uint32_t *stack = malloc(LD_DEPTH_MAX * sizeof(*stack));
	if (!rd.s || !stack) {
		r = oom(&rd);
	} else if ((r = read_meta(&rd, root)) < 0 || (r = read_strings(&rd, root)) < 0 ||
		   (r = read_frames(&rd, root)) < 0 || (r = read_types(&rd, root)) < 0 ||
		   (r = read_sites(&rd, root, stack)) < 0 || (r = read_type_sites(&rd, root, stack)) < 0 ||
		   (r = read_hints(&rd, root)) < 0 || (r = read_totals(&rd, root)) < 0 ||
		   (r = read_gc(&rd, root)) < 0) {
		/* r and the message are set */
	}
	free(stack);
	cJSON_Delete(root);
	if (r < 0) {
		ld_snapshot_destroy(rd.s);
		return r;
	}
	*out = rd.s;
	return 0;
}

/*
 * The scanner (snapscan.c) reads the tables; the members it hands back go
 * through the tree reader's own functions, in the tree reader's order
 * (meta touches nothing the tables do). Anything either declines or
 * rejects is -EAGAIN with a placeholder in err: the caller asks the tree reader,
 * which then finds the same problem and words it. Running out of memory
 * is final.
 */
static int parse_scan(const char *json, size_t len, struct ld_snapshot **out, struct ld_error *err)
{
	struct ld_snapshot *s = ld_snapshot_create();
	if (!s)
		return ld_error_set(err, ENOMEM, "out of memory");
	cJSON *rest = NULL;
	int r = ld_snapscan_parse(json, len, s, &rest);
	if (r == 0) {
		struct ld_error scratch;
		struct reader rd = { .s = s, .err = &scratch };
		if ((r = check_header(&rd, rest)) < 0 || (r = read_meta(&rd, rest)) < 0 ||
		    (r = read_hints(&rd, rest)) < 0 || (r = read_totals(&rd, rest)) < 0 ||
		    (r = read_gc(&rd, rest)) < 0)
			r = r == -ENOMEM ? -ENOMEM : -EAGAIN;
	}
	cJSON_Delete(rest);
	if (r < 0) {
		ld_snapshot_destroy(s);
		if (r == -ENOMEM)
			return ld_error_set(err, ENOMEM, "out of memory");
		return ld_error_set(err, EAGAIN, "left to the full reader");
	}
	*out = s;
	return 0;
}

int ld_snap_parse_with(enum ld_snap_reader how, const char *json, size_t len,
		       struct ld_snapshot **out, struct ld_error *err)
{
	if (how == LD_SNAP_READ_TREE)
		return parse_tree(json, len, out, err);
	int r = parse_scan(json, len, out, err);
	if (r != -EAGAIN || how == LD_SNAP_READ_SCAN)
		return r;
	return parse_tree(json, len, out, err);
}

int ld_snap_parse(const char *json, size_t len, struct ld_snapshot **out, struct ld_error *err)
{
	return ld_snap_parse_with(LD_SNAP_READ_ANY, json, len, out, err);
}

int ld_snap_load_with(enum ld_snap_reader how, const char *path, const struct ld_snap_limits *lim,
		      struct ld_snapshot **out, struct ld_error *err)
{
	uint64_t max = lim && lim->max_bytes ? lim->max_bytes : LD_SNAP_MAX_BYTES_DEFAULT;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return ld_error_set(err, e, "%s", strerror(e));
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return ld_error_set(err, e, "%s", strerror(e));
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		return ld_error_set(err, EISDIR, "is a directory");
	}
	/* Read everything, whatever st_size says (pipes and /dev/stdin have 0). */
	size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 65536, len = 0;
	char *data = malloc(cap);
	int r = 0;
	while (data) {
		if (len == cap) {
			if (len > max) {
				r = ld_error_set(err, EFBIG, "file is larger than %llu bytes (raise LEAKDIFF_MAX_SNAPSHOT)",
						 (unsigned long long)max);
				break;
			}
			char *nd = realloc(data, cap * 2);
			if (!nd)
				break;
			data = nd;
			cap *= 2;
		}
		ssize_t n = read(fd, data + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			r = ld_error_set(err, e, "read error: %s", strerror(e));
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (!data)
		return ld_error_set(err, ENOMEM, "out of memory");
	if (r < 0) {
		free(data);
		return r;
	}
	char *json;
	size_t jlen;
	r = ld_gunzip(data, len, max, &json, &jlen, err);
	free(data);
	if (r < 0)
		return r;
	r = ld_snap_parse_with(how, json, jlen, out, err);
	free(json);
	return r;
}

int ld_snap_load(const char *path, const struct ld_snap_limits *lim,
		 struct ld_snapshot **out, struct ld_error *err)
{
	return ld_snap_load_with(LD_SNAP_READ_ANY, path, lim, out, err);
}

/* ---------------------------------------------------------------- writing */

static void put_count(struct ld_buf *b, uint64_t v)
{
	ld_buf_printf(b, "%llu", (unsigned long long)v);
}

static void put_index(struct ld_buf *b, uint32_t v)
{
	if (v == LD_NOSTR)
		ld_buf_puts(b, "-1");
	else
		ld_buf_printf(b, "%u", v);
}

static void put_stack(struct ld_buf *b, const struct ld_snapshot *s, uint32_t stack, uint32_t depth)
{
	ld_buf_putc(b, '[');
	for (uint32_t i = 0; i < depth; i++) {
		if (i)
			ld_buf_putc(b, ',');
		ld_buf_printf(b, "%u", s->pool[stack + i]);
	}
	ld_buf_putc(b, ']');
}

static void put_meta_str(struct ld_buf *b, bool *first, const char *name, const char *v)
{
	if (!v)
		return;
	ld_buf_printf(b, "%s\"%s\":", *first ? "" : ",", name);
	ld_buf_json_str(b, v);
	*first = false;
}

static void put_meta_list(struct ld_buf *b, bool *first, const char *name, char *const *v, size_t n)
{
	if (!v)
		return;
	ld_buf_printf(b, "%s\"%s\":[", *first ? "" : ",", name);
	for (size_t i = 0; i < n; i++) {
		if (i)
			ld_buf_putc(b, ',');
		ld_buf_json_str(b, v[i]);
	}
	ld_buf_putc(b, ']');
	*first = false;
}

static void put_meta_int(struct ld_buf *b, bool *first, const char *name, int64_t v)
{
	if (v < 0)
		return;
	ld_buf_printf(b, "%s\"%s\":%lld", *first ? "" : ",", name, (long long)v);
	*first = false;
}

void ld_snap_put_meta(struct ld_buf *b, const struct ld_meta *m)
{
	bool first = true;
	ld_buf_putc(b, '{');
	put_meta_str(b, &first, "runtime", m->runtime);
	put_meta_str(b, &first, "agent", m->agent);
	put_meta_list(b, &first, "command", m->command, m->ncommand);
	put_meta_str(b, &first, "executable", m->executable);
	put_meta_int(b, &first, "pid", m->pid);
	put_meta_int(b, &first, "seq", m->seq);
	put_meta_str(b, &first, "label", m->label);
	put_meta_str(b, &first, "trigger", m->trigger);
	put_meta_str(b, &first, "time", m->time);
	put_meta_str(b, &first, "host", m->host);
	put_meta_str(b, &first, "python", m->python);
	put_meta_str(b, &first, "tracer", m->tracer);
	put_meta_int(b, &first, "depth", m->depth);
	put_meta_int(b, &first, "sample", m->sample);
	if (m->tracing >= 0) {
		ld_buf_printf(b, "%s\"tracing\":%s", first ? "" : ",", m->tracing ? "true" : "false");
		first = false;
	}
	if (m->elapsed_ms >= 0) {
		ld_buf_printf(b, "%s\"elapsed_ms\":%.3f", first ? "" : ",", m->elapsed_ms);
		first = false;
	}
	if (m->attached >= 0) {
		ld_buf_printf(b, "%s\"attached\":%.3f", first ? "" : ",", m->attached);
		first = false;
	}
	put_meta_list(b, &first, "roots", m->roots, m->nroots);
	put_meta_list(b, &first, "stdlib", m->stdlib, m->nstdlib);
	ld_buf_putc(b, '}');
}

static void put_hint(struct ld_buf *b, const struct ld_snapshot *s, const struct ld_hint *h)
{
	ld_buf_printf(b, "{\"kind\":\"%s\"", ld_hint_kind_name(h->kind));
	if (h->name != LD_NOSTR) {
		ld_buf_puts(b, ",\"name\":");
		ld_buf_json_str(b, ld_snapshot_str(s, h->name));
	}
	if (h->type != LD_NOSTR) {
		ld_buf_puts(b, ",\"type\":");
		ld_buf_json_str(b, ld_snapshot_str(s, h->type));
	}
	switch (h->kind) {
	case LD_HINT_CONTAINER:
		ld_buf_puts(b, ",\"length\":");
		put_count(b, h->value);
		break;
	case LD_HINT_LRU_CACHE:
		ld_buf_puts(b, ",\"maxsize\":");
		if (h->maxsize < 0)
			ld_buf_puts(b, "null");
		else
			put_count(b, (uint64_t)h->maxsize);
		ld_buf_printf(b, ",\"currsize\":%llu,\"hits\":%llu,\"misses\":%llu",
			      (unsigned long long)h->value, (unsigned long long)h->hits,
			      (unsigned long long)h->misses);
		break;
	case LD_HINT_GARBAGE:
		ld_buf_puts(b, ",\"count\":");
		put_count(b, h->value);
		break;
	case LD_HINT_CYCLES:
		ld_buf_puts(b, ",\"collected\":");
		put_count(b, h->value);
		break;
	case LD_HINT_PATH:
		ld_buf_puts(b, ",\"path\":[");
		for (uint32_t i = 0; i < h->path_len; i++) {
			if (i)
				ld_buf_putc(b, ',');
			ld_buf_json_str(b, ld_snapshot_str(s, s->pool[h->path + i]));
		}
		ld_buf_putc(b, ']');
		break;
	}
	ld_buf_putc(b, '}');
}

int ld_snap_serialize(const struct ld_snapshot *s, char **json, size_t *len)
{
	struct ld_buf b;
	ld_buf_init(&b);
	ld_buf_printf(&b, "{\"format\":\"%s\",\"version\":%d,", LD_SNAP_FORMAT, LD_SNAP_VERSION);
	ld_buf_puts(&b, "\"meta\":");
	ld_snap_put_meta(&b, &s->meta);

	ld_buf_puts(&b, ",\n\"strings\":[");
	for (size_t i = 0; i < s->strings.n; i++) {
		if (i)
			ld_buf_putc(&b, ',');
		ld_buf_json_str(&b, s->strings.strs[i]);
	}
	ld_buf_puts(&b, "],\n\"frames\":[");
	for (size_t i = 0; i < s->nframes; i++) {
		const struct ld_frame *f = &s->frames[i];
		ld_buf_printf(&b, "%s[%u,%d,%u,%d,", i ? "," : "", f->file, f->line, f->function, f->function_line);
		put_index(&b, f->text);
		if (f->kind != LD_FRAME_UNKNOWN)
			ld_buf_printf(&b, ",%u", f->kind_name);
		ld_buf_putc(&b, ']');
	}
	ld_buf_printf(&b, "],\n\"totals\":{\"heap_bytes\":%llu,\"heap_blocks\":%llu,\"objects\":%llu,\"object_bytes\":%llu",
		      (unsigned long long)s->totals.heap_bytes, (unsigned long long)s->totals.heap_blocks,
		      (unsigned long long)s->totals.objects, (unsigned long long)s->totals.object_bytes);
	if (s->totals.has_malloc)
		ld_buf_printf(&b, ",\"malloc_bytes\":%llu", (unsigned long long)s->totals.malloc_bytes);
	if (s->totals.has_native)
		ld_buf_printf(&b, ",\"native_bytes\":%llu,\"native_blocks\":%llu",
			      (unsigned long long)s->totals.native_bytes, (unsigned long long)s->totals.native_blocks);
	ld_buf_putc(&b, '}');
	ld_buf_puts(&b, ",\n\"types\":[");
	for (size_t i = 0; i < s->ntypes; i++) {
		ld_buf_printf(&b, "%s[%u,%llu,%llu", i ? "," : "", s->types[i].name,
			      (unsigned long long)s->types[i].count, (unsigned long long)s->types[i].bytes);
		if (s->types[i].origin != LD_NOSTR)
			ld_buf_printf(&b, ",%u", s->types[i].origin);
		ld_buf_putc(&b, ']');
	}
	ld_buf_puts(&b, "],\n\"sites\":[");
	for (size_t i = 0; i < s->nsites; i++) {
		const struct ld_site *st = &s->sites[i];
		ld_buf_printf(&b, "%s[%llu,%llu,", i ? "," : "", (unsigned long long)st->count,
			      (unsigned long long)st->bytes);
		put_stack(&b, s, st->stack, st->depth);
		ld_buf_putc(&b, ']');
	}
	ld_buf_puts(&b, "],\n\"type_sites\":[");
	for (size_t i = 0; i < s->ntype_sites; i++) {
		const struct ld_type_site *ts = &s->type_sites[i];
		ld_buf_printf(&b, "%s[%u,%llu,%llu,", i ? "," : "", ts->type, (unsigned long long)ts->count,
			      (unsigned long long)ts->bytes);
		put_stack(&b, s, ts->stack, ts->depth);
		ld_buf_putc(&b, ']');
	}
	ld_buf_puts(&b, "]");
	if (s->gc.present) {
		const struct ld_gc *g = &s->gc;
		ld_buf_puts(&b, ",\n\"gc\":{");
		if (g->enabled >= 0)
			ld_buf_printf(&b, "\"enabled\":%s,", g->enabled ? "true" : "false");
		ld_buf_printf(&b, "\"collected\":%llu,\"uncollectable\":%llu,\"garbage\":%llu,\"generations\":[",
			      (unsigned long long)g->collected, (unsigned long long)g->uncollectable,
			      (unsigned long long)g->garbage);
		for (size_t i = 0; i < g->ngenerations; i++)
			ld_buf_printf(&b, "%s{\"collections\":%llu,\"collected\":%llu,\"uncollectable\":%llu}",
				      i ? "," : "", (unsigned long long)g->generations[i].collections,
				      (unsigned long long)g->generations[i].collected,
				      (unsigned long long)g->generations[i].uncollectable);
		ld_buf_puts(&b, "]}");
	}
	ld_buf_puts(&b, ",\n\"hints\":[");
	for (size_t i = 0; i < s->nhints; i++) {
		if (i)
			ld_buf_putc(&b, ',');
		put_hint(&b, s, &s->hints[i]);
	}
	ld_buf_puts(&b, "]}\n");
	if (b.oom) {
		ld_buf_finish(&b);
		return -ENOMEM;
	}
	*json = ld_buf_detach(&b, len);
	return 0;
}

/* Compresses len bytes into a gzip stream in a new buffer. */
static int gzip_buffer(const char *data, size_t len, unsigned char **out, size_t *outlen)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	/* Level 6 is gzip's default: most of level 9's ratio at a third of the time. */
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	size_t cap = deflateBound(&z, len > UINT32_MAX ? UINT32_MAX : (uLong)len) + 64;
	if (len > UINT32_MAX)
		cap = len + len / 16 + 1024;
	unsigned char *buf = malloc(cap);
	if (!buf) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	size_t fed = 0;
	z.next_out = buf;
	z.avail_out = (uInt)(cap > UINT32_MAX ? UINT32_MAX : cap);
	int zr;
	do {
		if (z.avail_in == 0 && fed < len) {
			size_t chunk = len - fed > (1u << 30) ? (1u << 30) : len - fed;
			z.next_in = (unsigned char *)data + fed;
			z.avail_in = (uInt)chunk;
			fed += chunk;
		}
		if (z.avail_out == 0) {
			size_t used = (size_t)(z.next_out - buf);
			unsigned char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				deflateEnd(&z);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
			z.next_out = buf + used;
			z.avail_out = (uInt)(cap - used > UINT32_MAX ? UINT32_MAX : cap - used);
		}
		zr = deflate(&z, fed == len ? Z_FINISH : Z_NO_FLUSH);
	} while (zr == Z_OK || zr == Z_BUF_ERROR);
	size_t produced = (size_t)(z.next_out - buf);
	deflateEnd(&z);
	if (zr != Z_STREAM_END) {
		free(buf);
		return -EIO;
	}
	*out = buf;
	*outlen = produced;
	return 0;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The name of a temporary file beside path, for mkostemp(); NULL without memory. */
static char *temp_name(const char *path)
{
	size_t n = strlen(path) + 16;
	char *tmp = malloc(n);
	if (tmp)
		snprintf(tmp, n, "%s.tmp.XXXXXX", path);
	return tmp;
}

int ld_snap_check_writable(const char *path, struct ld_error *err)
{
	struct stat st;
	/* rename() cannot put a file over a directory, so say it now. */
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return ld_error_set(err, EISDIR, "%s", strerror(EISDIR));
	char *tmp = temp_name(path);
	if (!tmp)
		return ld_error_set(err, ENOMEM, "out of memory");
	int fd = mkostemp(tmp, O_CLOEXEC);
	int r = 0;
	if (fd < 0) {
		r = ld_error_set(err, errno, "%s", strerror(errno));
	} else {
		close(fd);
		unlink(tmp);
	}
	free(tmp);
	return r;
}

int ld_snap_save(const char *path, const struct ld_snapshot *s, struct ld_error *err)
{
	char *json;
	size_t jlen;
	if (ld_snap_serialize(s, &json, &jlen) < 0)
		return ld_error_set(err, ENOMEM, "out of memory");
	unsigned char *gz;
	size_t gzlen;
	int r = gzip_buffer(json, jlen, &gz, &gzlen);
	free(json);
	if (r < 0)
		return ld_error_set(err, -r, "cannot compress snapshot: %s", strerror(-r));

	/* The temporary file sits beside the target so rename() stays atomic. */
	char *tmp = temp_name(path);
	char *dircopy = strdup(path);
	if (!tmp || !dircopy) {
		free(gz);
		free(tmp);
		free(dircopy);
		return ld_error_set(err, ENOMEM, "out of memory");
	}
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = ld_error_set(err, errno, "cannot create file: %s", strerror(errno));
		goto out;
	}
	/* mkostemp gives 0600; a snapshot gets the mode any new file would. */
	mode_t mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);
	r = write_all(fd, gz, gzlen);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		r = ld_error_set(err, -r, "cannot write: %s", strerror(-r));
		goto out;
	}
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		r = ld_error_set(err, e, "cannot rename into place: %s", strerror(e));
		goto out;
	}
	/* Make the rename itself durable. */
	int dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	r = 0;
out:
	free(gz);
	free(tmp);
	free(dircopy);
	return r;
}
