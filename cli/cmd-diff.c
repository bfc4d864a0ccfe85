/*
 * leakdiff diff: what grew between two snapshots (or along several), with
 * growth limits and suppressions for CI.
 */
#include <argp.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "compat.h"
#include "diff.h"
#include "report_args.h"
#include "snap.h"
#include "suppress.h"
#include "units.h"
#include "verdict.h"

#define MAX_SNAPSHOTS 256
#define MAX_STRIP 64

enum {
	OPT_DEPTH = 0x200,
	OPT_MATCH,
	OPT_STRIP,
	OPT_SUPPRESS,
	OPT_MAX_TOTAL,
	OPT_MAX_SITE,
	OPT_MAX_TYPE,
};

struct args {
	struct ld_report_args report;
	const char *paths[MAX_SNAPSHOTS];
	int npaths;
	struct ld_diff_opts diff;
	const char *strip[MAX_STRIP];
	const char *suppress[MAX_STRIP];
	size_t nsuppress;
	struct ld_limits limits;
};

static const struct argp_option options[] = {
	{ "max-total-growth", OPT_MAX_TOTAL, "SIZE|PERCENT", 0, "Fail (exit 1) when the total grows by more "
	  "than SIZE (e.g. 5MiB) or PERCENT of the earlier total (e.g. 3%)", 0 },
	{ "max-site-growth", OPT_MAX_SITE, "SIZE", 0, "Fail when any allocation site grows by more than SIZE", 0 },
	{ "max-type-growth", OPT_MAX_TYPE, "COUNT", 0, "Fail when any type gains more than COUNT objects", 0 },
	{ "suppress", OPT_SUPPRESS, "FILE", 0, "Leave out growth matching the patterns in FILE (one per line, "
	  "matching a type, function or file; LeakSanitizer leak: lines accepted); repeatable", 0 },
	{ "match", OPT_MATCH, "HOW", 0, "How sites are matched across versions: graded (default: exact, then "
	  "the same line text or offset in the function, then the same function and file, then the same "
	  "function), exact, or function", 0 },
	{ "strip-prefix", OPT_STRIP, "PATH", 0, "Remove PATH from the front of file names before matching "
	  "(on top of the roots the snapshots record); repeatable", 0 },
	{ "depth", OPT_DEPTH, "N", 0, "Compare tracebacks on their innermost N frames only, adding up "
	  "sites that then look the same (1 groups by allocating line; default: all frames)", 0 },
	{ 0 }
};

static error_t parse(int key, char *arg, struct argp_state *state)
{
	struct args *a = state->input;
	uint64_t v;
	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = &a->report;
		return 0;
	case OPT_DEPTH:
		if (ld_uint_parse(arg, LD_DEPTH_MAX, &v) < 0)
			argp_error(state, "--depth takes a whole number from 0 to %d, not '%s'", LD_DEPTH_MAX, arg);
		a->diff.depth = (uint32_t)v;
		return 0;
	case OPT_MATCH:
		if (strcmp(arg, "graded") == 0)
			a->diff.match = LD_MATCH_GRADED;
		else if (strcmp(arg, "exact") == 0)
			a->diff.match = LD_MATCH_ONLY_EXACT;
		else if (strcmp(arg, "function") == 0)
			a->diff.match = LD_MATCH_BY_FUNCTION;
		else
			argp_error(state, "--match takes graded, exact or function, not '%s'", arg);
		return 0;
	case OPT_STRIP:
		if (a->diff.nstrip == MAX_STRIP)
			argp_error(state, "at most %d --strip-prefix options", MAX_STRIP);
		if (!*arg)
			argp_error(state, "--strip-prefix needs a path");
		a->strip[a->diff.nstrip++] = arg;
		return 0;
	case OPT_SUPPRESS:
		if (a->nsuppress == MAX_STRIP)
			argp_error(state, "at most %d --suppress files", MAX_STRIP);
		a->suppress[a->nsuppress++] = arg;
		return 0;
	case OPT_MAX_TOTAL:
		if (ld_limits_parse_total(&a->limits, arg) < 0)
			argp_error(state, "--max-total-growth takes a size such as 5MiB or a percentage such as "
				   "3%%, not '%s'", arg);
		return 0;
	case OPT_MAX_SITE:
		if (ld_size_parse(arg, &a->limits.site_bytes) < 0)
			argp_error(state, "--max-site-growth takes a size such as 512KiB, not '%s'", arg);
		a->limits.site = true;
		return 0;
	case OPT_MAX_TYPE:
		if (ld_uint_parse(arg, UINT64_C(1) << 53, &a->limits.type_count) < 0)
			argp_error(state, "--max-type-growth takes a whole number of objects, not '%s'", arg);
		a->limits.type = true;
		return 0;
	case ARGP_KEY_ARG:
		if (a->npaths == MAX_SNAPSHOTS)
			argp_error(state, "too many snapshots (at most %d)", MAX_SNAPSHOTS);
		a->paths[a->npaths++] = arg;
		return 0;
	case ARGP_KEY_END:
		if (a->npaths < 2)
			argp_error(state, "give two snapshots (BEFORE and AFTER), or more for a trend");
		return 0;
	default:
		return ARGP_ERR_UNKNOWN;
	}
}

static const struct argp_child children[] = { { &ld_report_argp, 0, "Report options:", 1 }, { 0 } };

static const struct argp argp = {
	.options = options,
	.parser = parse,
	.args_doc = "BEFORE.snap AFTER.snap [MORE.snap...]",
	.doc = "Report what grew between two heap snapshots: totals, growth by type, growth by "
	       "allocation site, and leak hints (growing containers and caches, uncollectable "
	       "objects, why instances stay alive). Rows are sorted by byte growth. Given more than "
	       "two snapshots, compares the first with the last and counts, for every row, in how "
	       "many of the intervals between consecutive snapshots it grew.\v" LD_EXIT_HELP_DIFF
	       "\nEnvironment: LEAKDIFF_MAX_SNAPSHOT (largest decompressed snapshot accepted, default "
	       "1GiB), NO_COLOR, COLUMNS (the report's width when not on a terminal).",
	.children = children,
};

/* Reads a suppression file, printing "leakdiff: FILE: reason" on failure. */
static int load_suppressions(const char *path, struct ld_suppressions *sup)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		ld_cli_error(path, "%s", strerror(errno));
		return -1;
	}
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	char chunk[8192];
	size_t n;
	while (mem && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, mem);
	int rerr = ferror(f);
	fclose(f);
	if (!mem || fclose(mem) != 0 || rerr) {
		ld_cli_error(path, "cannot read the file");
		free(text);
		return -1;
	}
	struct ld_error err = { { 0 } };
	int r = ld_suppressions_parse(sup, text, len, &err);
	free(text);
	if (r < 0) {
		ld_cli_error(path, "%s", err.msg);
		return -1;
	}
	return 0;
}

/*
 * Warns, one line each, about consecutive snapshots that do not belong in
 * one diff: different runtimes, or a later file taken before an earlier
 * one. The report is still written and the exit status is unchanged: the
 * user may mean it, but should not read a reversed diff by accident.
 */
static void warn_mismatches(const char *const *paths, struct ld_snapshot *const *snaps, int n)
{
	for (int i = 0; i + 1 < n; i++) {
		const struct ld_meta *a = &snaps[i]->meta, *b = &snaps[i + 1]->meta;
		struct ld_compat c;
		ld_compat_check(snaps[i], snaps[i + 1], &c);
		if (c.runtimes_differ)
			ld_cli_error(NULL, "warning: %s is a %s snapshot and %s a %s one; their sites and types "
				     "do not compare", paths[i], a->runtime, paths[i + 1], b->runtime);
		if (c.order == LD_COMPAT_BY_TIME)
			ld_cli_error(NULL, "warning: %s was taken before %s (%s against %s); the diff is reversed",
				     paths[i + 1], paths[i], b->time, a->time);
		else if (c.order == LD_COMPAT_BY_SEQ)
			ld_cli_error(NULL, "warning: %s was taken before %s (snapshot %lld against %lld of pid "
				     "%lld); the diff is reversed", paths[i + 1], paths[i], (long long)b->seq,
				     (long long)a->seq, (long long)a->pid);
	}
}

/* Snapshots read side by side: each worker takes the next file not yet taken. */
struct loader {
	const char *const *paths;
	struct ld_snapshot **snaps;
	int *rc;
	struct ld_error *errs;
	struct ld_snap_limits lim;
	int n;
	atomic_int next;
};

static void *load_worker(void *arg)
{
	struct loader *l = arg;
	for (int i; (i = atomic_fetch_add(&l->next, 1)) < l->n;)
		l->rc[i] = ld_snap_load_with(LD_SNAP_READ_SCAN, l->paths[i], &l->lim, &l->snaps[i], &l->errs[i]);
	return NULL;
}

/*
 * Loads the n snapshots into snaps, printing "leakdiff: FILE: reason" for
 * the first (in command-line order) that cannot be read, as loading them
 * one after the other would. Big files are most of a diff's time, so
 * regular files are read by a few threads at once with the scanner alone
 * (it shares nothing between threads); a file it leaves to the cJSON tree
 * reader, whose error position is global, is read again here, alone.
 * Anything but regular files (a pipe named twice would be read by two
 * threads) goes the plain way. Returns 0 or -1.
 */
static int load_all(const char *const *paths, int n, struct ld_snapshot **snaps)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int nthreads = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (int)ncpu;
	if (nthreads > n)
		nthreads = n;
	for (int i = 0; i < n && nthreads > 1; i++) {
		struct stat st;
		if (stat(paths[i], &st) < 0 || !S_ISREG(st.st_mode))
			nthreads = 1;
	}
	struct loader l = { .paths = paths, .snaps = snaps, .n = n };
	const char *env = getenv("LEAKDIFF_MAX_SNAPSHOT");
	if (env && *env && ld_size_parse(env, &l.lim.max_bytes) < 0)
		nthreads = 1; /* ld_cli_load() below says what is wrong */
	l.rc = calloc((size_t)n, sizeof(*l.rc));
	l.errs = calloc((size_t)n, sizeof(*l.errs));
	bool scanned = false;
	if (nthreads > 1 && l.rc && l.errs) {
		pthread_t tids[8];
		int started = 0;
		atomic_init(&l.next, 0);
		for (; started < nthreads - 1; started++)
			if (pthread_create(&tids[started], NULL, load_worker, &l) != 0)
				break;
		load_worker(&l); /* this thread works too, alone if no thread started */
		for (int i = 0; i < started; i++)
			pthread_join(tids[i], NULL);
		scanned = true;
	}
	int status = 0;
	for (int i = 0; i < n && status == 0; i++) {
		if (scanned && l.rc[i] == 0)
			continue;
		if (scanned && l.rc[i] != -EAGAIN) {
			ld_cli_error(paths[i], "%s", l.errs[i].msg[0] ? l.errs[i].msg : strerror(-l.rc[i]));
			status = -1;
		} else if (ld_cli_load(paths[i], &snaps[i]) < 0) {
			status = -1;
		}
	}
	free(l.rc);
	free(l.errs);
	return status;
}

static int run(int argc, char **argv)
{
	struct args a = { 0 };
	ld_report_args_init(&a.report);
	argp_err_exit_status = LD_EXIT_USAGE;
	if (argp_parse(&argp, argc, argv, 0, NULL, &a) != 0)
		return LD_EXIT_USAGE;
	if (ld_report_args_finish(&a.report) < 0)
		return LD_EXIT_USAGE;
	a.diff.strip = a.strip;

	struct ld_snapshot *snaps[MAX_SNAPSHOTS] = { 0 };
	struct ld_suppressions sup;
	struct ld_verdict verdict = { 0 };
	struct ld_diff *d = NULL;
	int status = LD_EXIT_USAGE;
	ld_suppressions_init(&sup);
	for (size_t i = 0; i < a.nsuppress; i++)
		if (load_suppressions(a.suppress[i], &sup) < 0)
			goto out;
	if (load_all(a.paths, a.npaths, snaps) < 0)
		goto out;
	warn_mismatches(a.paths, snaps, a.npaths);
	int r = ld_diff_create(snaps[0], snaps[a.npaths - 1], &a.diff, &d);
	if (r == 0 && a.npaths > 2)
		r = ld_diff_trend(d, (const struct ld_snapshot *const *)snaps, (size_t)a.npaths, &a.diff);
	if (r < 0) {
		ld_cli_error(NULL, "cannot compare snapshots: %s", strerror(-r));
		goto out;
	}
	struct ld_report_opts *o = &a.report.opts;
	o->suppressed = ld_diff_suppress(d, &sup, &a.diff);
	if (ld_verdict_check(d, &a.limits, &verdict) < 0) {
		ld_cli_error(NULL, "out of memory");
		goto out;
	}
	o->before_path = a.paths[0];
	o->after_path = a.paths[a.npaths - 1];
	o->depth = a.diff.depth;
	o->match = a.diff.match;
	o->limits = &a.limits;
	o->verdict = &verdict;
	o->nsnapshots = (size_t)a.npaths;
	r = a.report.format->diff(stdout, d, o);
	if (r == -ENOMEM) {
		ld_cli_error(NULL, "out of memory");
		goto out;
	}
	if (ld_cli_check_stdout(r < 0 ? -r : 0) < 0)
		goto out;
	status = ld_verdict_passed(&verdict) ? LD_EXIT_OK : LD_EXIT_GREW;
out:
	ld_verdict_finish(&verdict);
	ld_suppressions_finish(&sup);
	ld_diff_destroy(d);
	for (int i = 0; i < a.npaths; i++)
		ld_snapshot_destroy(snaps[i]);
	return status;
}

const struct ld_cmd ld_cmd_diff = {
	.name = "diff",
	.summary = "report what grew between snapshots, by type and site; CI limits",
	.run = run,
};
