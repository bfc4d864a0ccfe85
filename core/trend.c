/*
 * Trends over several snapshots (see ld_diff_trend in diff.h). Rows of the
 * consecutive diffs are identified by a text key built from the normalised
 * frames, so rows from different snapshots and diffs compare by content.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "diff.h"
#include "hashmap.h"

struct counter {
	char **keys;
	uint32_t *counts;
	size_t n, cap, counts_cap;
	struct ld_hashmap index;
};

static char *stack_key(const struct ld_diff_stack *st, const char *prefix, const struct ld_diff_opts *opts)
{
	size_t cap = strlen(prefix) + 2, len = 0;
	char buf[4096];
	for (uint32_t i = 0; i < st->depth; i++) {
		const struct ld_frame *f = ld_diff_frame(st, i);
		cap += strlen(ld_diff_normal_path(st->snap, opts, ld_snapshot_str(st->snap, f->file), buf, sizeof(buf)));
		cap += strlen(ld_snapshot_str(st->snap, f->function)) + 16;
	}
	char *k = malloc(cap);
	if (!k)
		return NULL;
	len = (size_t)snprintf(k, cap, "%s\x1e", prefix);
	for (uint32_t i = 0; i < st->depth && len < cap; i++) {
		const struct ld_frame *f = ld_diff_frame(st, i);
		const char *file = ld_diff_normal_path(st->snap, opts, ld_snapshot_str(st->snap, f->file), buf, sizeof(buf));
		len += (size_t)snprintf(k + len, cap - len, "%s\x1f%d\x1f%s\x1e", file, f->line,
					ld_snapshot_str(st->snap, f->function));
	}
	return k;
}

static uint32_t *slot(struct counter *c, char *key, bool insert)
{
	uint64_t h = ld_hash_bytes(key, strlen(key));
	struct ld_hashmap_iter it = LD_HASHMAP_ITER(h);
	uint32_t i;
	while (ld_hashmap_next(&c->index, &it, &i)) {
		if (strcmp(c->keys[i], key) == 0) {
			free(key);
			return &c->counts[i];
		}
	}
	if (!insert || LD_ARRAY_RESERVE(c->keys, c->cap, c->n + 1) < 0 ||
	    LD_ARRAY_RESERVE(c->counts, c->counts_cap, c->n + 1) < 0 ||
	    ld_hashmap_insert(&c->index, h, (uint32_t)c->n) < 0) {
		free(key);
		return NULL;
	}
	c->keys[c->n] = key;
	c->counts[c->n] = 0;
	return &c->counts[c->n++];
}

static bool grew(const struct ld_diff_row *r)
{
	return ld_diff_bytes_delta(r) > 0 || ld_diff_count_delta(r) > 0;
}

/* Counts one interval's growing rows; returns 0 or -ENOMEM. */
static int count_interval(struct counter *c, const struct ld_diff *di, const struct ld_diff_opts *opts)
{
	for (size_t i = 0; i < di->nsites; i++) {
		if (!grew(&di->sites[i].row))
			continue;
		char *k = stack_key(&di->sites[i].stack, "s", opts);
		uint32_t *p = k ? slot(c, k, true) : NULL;
		if (!p)
			return -ENOMEM;
		(*p)++;
	}
	for (size_t i = 0; i < di->ntypes; i++) {
		const struct ld_diff_type *t = &di->types[i];
		if (grew(&t->row)) {
			size_t len = strlen(t->name) + 3;
			char *k = malloc(len);
			if (k)
				snprintf(k, len, "t\x1e%s", t->name);
			uint32_t *p = k ? slot(c, k, true) : NULL;
			if (!p)
				return -ENOMEM;
			(*p)++;
		}
		for (size_t j = 0; j < t->nsites; j++) {
			if (!grew(&t->sites[j].row))
				continue;
			char *k = stack_key(&t->sites[j].stack, t->name, opts);
			uint32_t *p = k ? slot(c, k, true) : NULL;
			if (!p)
				return -ENOMEM;
			(*p)++;
		}
	}
	return 0;
}

static uint32_t lookup(struct counter *c, char *key)
{
	if (!key)
		return 0;
	uint32_t *p = slot(c, key, false);
	return p ? *p : 0;
}

int ld_diff_trend(struct ld_diff *d, const struct ld_snapshot *const *snaps, size_t n,
		  const struct ld_diff_opts *opts)
{
	struct counter c = { 0 };
	ld_hashmap_init(&c.index);
	int r = 0;
	for (size_t i = 0; i + 1 < n && r == 0; i++) {
		struct ld_diff *di = NULL;
		r = ld_diff_create(snaps[i], snaps[i + 1], opts, &di);
		if (r == 0)
			r = count_interval(&c, di, opts);
		ld_diff_destroy(di);
	}
	/* Count into scratch arrays first so a failure leaves d as it was. */
	size_t nts = d->ntype_sites;
	uint32_t *site_n = calloc(d->nsites + 1, sizeof(*site_n));
	uint32_t *type_n = calloc(d->ntypes + 1, sizeof(*type_n));
	uint32_t *ts_n = calloc(nts + 1, sizeof(*ts_n));
	if (r == 0 && (!site_n || !type_n || !ts_n))
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < d->nsites; i++) {
		char *k = stack_key(&d->sites[i].stack, "s", opts);
		if (!k)
			r = -ENOMEM;
		else
			site_n[i] = lookup(&c, k);
	}
	for (size_t i = 0; r == 0 && i < d->ntypes; i++) {
		struct ld_diff_type *t = &d->types[i];
		size_t len = strlen(t->name) + 3;
		char *k = malloc(len);
		if (!k) {
			r = -ENOMEM;
			break;
		}
		snprintf(k, len, "t\x1e%s", t->name);
		type_n[i] = lookup(&c, k);
		for (size_t j = 0; r == 0 && j < t->nsites; j++) {
			char *sk = stack_key(&t->sites[j].stack, t->name, opts);
			if (!sk)
				r = -ENOMEM;
			else
				ts_n[&t->sites[j] - d->type_sites] = lookup(&c, sk);
		}
	}
	if (r == 0) {
		for (size_t i = 0; i < d->nsites; i++)
			d->sites[i].grew_in = site_n[i];
		for (size_t i = 0; i < d->ntypes; i++)
			d->types[i].grew_in = type_n[i];
		for (size_t i = 0; i < nts; i++)
			d->type_sites[i].grew_in = ts_n[i];
		d->intervals = n > 1 ? (uint32_t)(n - 1) : 1;
	}
	free(site_n);
	free(type_n);
	free(ts_n);
	for (size_t i = 0; i < c.n; i++)
		free(c.keys[i]);
	free(c.keys);
	free(c.counts);
	ld_hashmap_finish(&c.index);
	return r;
}
