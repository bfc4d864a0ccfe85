/*
 * Mixed documents (see mixed.h): split into the native part, the Python
 * stacks and the Python snapshot, then joined into one snapshot.
 */
#include "mixed.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jsoncheck.h"
#include "snap.h"

static const char head[] = "{\"native\":";
static const char stacks_key[] = ",\"python_stacks\":";

bool ld_mixed_is_mixed(const char *json, size_t len)
{
	return len > sizeof(head) - 1 && memcmp(json, head, sizeof(head) - 1) == 0;
}

/* The end of the JSON value starting at p (within end), or NULL. */
static const char *value_end(const char *p, const char *end, cJSON **value)
{
	const char *stop = NULL;
	cJSON *v = cJSON_ParseWithLengthOpts(p, (size_t)(end - p), &stop, 0);
	if (!v)
		return NULL;
	*value = v;
	return stop;
}

static int by_id(const void *a, const void *b)
{
	const struct ld_native_python_stack *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Reads [[ID, [FRAME, ...]], ...] against s's frames. */
static int read_stacks(const cJSON *a, const struct ld_snapshot *s, struct ld_native_python_stack **out,
		       uint32_t **pool, size_t *n, struct ld_error *err)
{
	if (!cJSON_IsArray(a))
		return ld_json_reject(err, "python_stacks: expected an array");
	size_t rows = (size_t)cJSON_GetArraySize(a), total = 0;
	const cJSON *e, *f;
	cJSON_ArrayForEach(e, a) {
		const cJSON *fr = cJSON_GetArrayItem(e, 1);
		if (!cJSON_IsArray(e) || !cJSON_IsNumber(cJSON_GetArrayItem(e, 0)) || !cJSON_IsArray(fr))
			return ld_json_reject(err, "python_stacks: expected [id, [frames]] rows");
		total += (size_t)cJSON_GetArraySize(fr);
	}
	struct ld_native_python_stack *st = calloc(rows ? rows : 1, sizeof(*st));
	uint32_t *frames = calloc(total ? total : 1, sizeof(*frames));
	if (!st || !frames) {
		free(st);
		free(frames);
		return ld_error_set(err, ENOMEM, "out of memory");
	}
	size_t i = 0, k = 0;
	cJSON_ArrayForEach(e, a) {
		double id = cJSON_GetArrayItem(e, 0)->valuedouble;
		if (!isfinite(id) || id < 1 || id > 4294967295.0 || id != floor(id)) {
			free(st);
			free(frames);
			return ld_json_reject(err, "python_stacks[%zu]: the id is not a stack number", i);
		}
		st[i].id = (uint64_t)id;
		st[i].frames = frames + k;
		cJSON_ArrayForEach(f, cJSON_GetArrayItem(e, 1)) {
			double x = cJSON_IsNumber(f) ? f->valuedouble : -1;
			if (!(x >= 0 && x < (double)s->nframes && x == floor(x))) {
				free(st);
				free(frames);
				return ld_json_reject(err, "python_stacks[%zu]: a frame is not a frame number", i);
			}
			if (st[i].depth < LD_DEPTH_MAX)
				frames[k + st[i].depth++] = (uint32_t)x;
		}
		k += st[i].depth;
		i++;
	}
	qsort(st, rows, sizeof(*st), by_id);
	*out = st;
	*pool = frames;
	*n = rows;
	return 0;
}

int ld_mixed_parse_with(struct ld_symbolizer **sym, const char *json, size_t len, struct ld_snapshot **out,
			struct ld_native_merged *merged, struct ld_error *err)
{
	const char *end = json + len;
	if (!ld_mixed_is_mixed(json, len))
		return ld_json_reject(err, "not a mixed snapshot document");
	int r = ld_json_check_nesting(json, len, NULL, err);
	if (r < 0)
		return r;
	const char *raw = json + sizeof(head) - 1;
	cJSON *native = NULL, *stacks = NULL;
	const char *raw_end = value_end(raw, end, &native);
	if (!raw_end)
		return ld_json_reject(err, "mixed document: the native part is not valid JSON");
	cJSON_Delete(native); /* parsed again, checked, by ld_native_merge() */
	size_t klen = sizeof(stacks_key) - 1;
	if ((size_t)(end - raw_end) < klen || memcmp(raw_end, stacks_key, klen) != 0)
		return ld_json_reject(err, "mixed document: python_stacks does not follow the native part");
	const char *st_end = value_end(raw_end + klen, end, &stacks);
	if (!st_end)
		return ld_json_reject(err, "mixed document: python_stacks is not valid JSON");
	if (st_end >= end || *st_end != ',') {
		cJSON_Delete(stacks);
		return ld_json_reject(err, "mixed document: no Python snapshot after python_stacks");
	}
	/* The Python document is "{" and what follows the comma. */
	size_t plen = (size_t)(end - st_end);
	char *py = malloc(plen + 1);
	if (!py) {
		cJSON_Delete(stacks);
		return ld_error_set(err, ENOMEM, "out of memory");
	}
	py[0] = '{';
	memcpy(py + 1, st_end + 1, plen - 1);
	py[plen] = '\0';
	struct ld_snapshot *s = NULL;
	r = ld_snap_parse(py, plen, &s, err);
	free(py);
	struct ld_native_python_stack *list = NULL;
	uint32_t *pool = NULL;
	size_t n = 0;
	if (r == 0)
		r = read_stacks(stacks, s, &list, &pool, &n, err);
	cJSON_Delete(stacks);
	if (r == 0) {
		struct ld_native_python python = { list, n };
		r = ld_native_merge(sym, raw, (size_t)(raw_end - raw), s, &python, merged, err);
	}
	free(list);
	free(pool);
	if (r < 0) {
		ld_snapshot_destroy(s);
		return r;
	}
	*out = s;
	return 0;
}
