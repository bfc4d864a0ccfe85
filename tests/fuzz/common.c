/*
 * The read path after a parse, shared by fuzz_snap, fuzz_native and
 * fuzz_wire: round trip through the snapshot format, diffs, trends,
 * suppressions, limits and all five renderers, with checks on what each
 * renderer writes. See fuzz.h.
 */
#include "fuzz.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "diff.h"
#include "error.h"
#include "report.h"
#include "snap.h"
#include "suppress.h"
#include "verdict.h"

void fuzz_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fuzz: invariant broken: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

uint64_t fuzz_bits(const uint8_t *data, size_t size)
{
	uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 0x100000001b3u;
	return h ^ size;
}

/* ------------------------------------------------------------ output checks */

/*
 * Length of the well-formed UTF-8 sequence at p (at most n bytes left), or
 * 0. Written here from RFC 3629 rather than taken from escape.c, so that
 * the check does not share the code it checks.
 */
static size_t utf8_len(const unsigned char *p, size_t n, uint32_t *cp)
{
	unsigned char c = p[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	size_t len;
	uint32_t v, min;
	if ((c & 0xe0) == 0xc0) {
		len = 2;
		v = c & 0x1f;
		min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3;
		v = c & 0x0f;
		min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4;
		v = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

/*
 * The code points above ASCII that the README ("Untrusted input") promises
 * never reach a report raw, in any format: C1 controls (the 8-bit CSI among
 * them), zero-width characters and marks (ZWSP, ZWNJ, ZWJ, LRM, RLM), the
 * line and paragraph separators, bidi embeddings, overrides and isolates,
 * and the zero-width no-break space. Listed here by hand, like utf8_len.
 */
static int promised_invisible(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x200b && cp <= 0x200f) || cp == 0x2028 ||
	       cp == 0x2029 || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
	       cp == 0xfeff;
}

enum out_kind { OUT_TEXT, OUT_TEXT_COLOR, OUT_MARKDOWN, OUT_JSON, OUT_HTML };

static const char *const out_names[] = { "text", "text (colour)", "markdown", "json", "html" };

static const char html_data_open[] = "<script type=\"application/json\" id=\"leakdiff-data\">";

/* Occurrences of needle in the len bytes at p, ignoring ASCII case. */
static size_t count_nocase(const char *p, size_t len, const char *needle)
{
	size_t n = strlen(needle), hits = 0;
	for (size_t i = 0; i + n <= len; i++)
		if (strncasecmp(p + i, needle, n) == 0)
			hits++;
	return hits;
}

/*
 * The HTML page: its markup around the data block is the same bytes for
 * every report (so no name from a snapshot reaches it), there are exactly
 * the three script elements the renderer writes, the data block holds no
 * '<' at all (so neither "</script" nor "<!--" can end or confuse it) and
 * parses as one JSON object with the flame graph's tree in it.
 */
static void check_html(const char *what, const char *buf, size_t len)
{
	static char *fixed_head, *fixed_tail;
	static size_t head_len, tail_len;
	const char *open = memmem(buf, len, html_data_open, strlen(html_data_open));
	if (!open)
		fuzz_fail("%s html report: no data block", what);
	const char *data = open + strlen(html_data_open);
	const char *close = memmem(data, len - (size_t)(data - buf), "</script>", 9);
	if (!close)
		fuzz_fail("%s html report: the data block is not closed", what);
	if (memchr(data, '<', (size_t)(close - data)))
		fuzz_fail("%s html report: a raw '<' in the data block at byte %td", what,
			  (const char *)memchr(data, '<', (size_t)(close - data)) - buf);
	size_t hl = (size_t)(data - buf), tl = len - (size_t)(close - buf);
	if (!fixed_head) {
		/* Counted once: later pages have the same markup around a block without '<'. */
		if (count_nocase(buf, len, "<script") != 3 || count_nocase(buf, len, "</script") != 3)
			fuzz_fail("%s html report: %zu script elements opened and %zu closed, not 3", what,
				  count_nocase(buf, len, "<script"), count_nocase(buf, len, "</script"));
		fixed_head = malloc(hl);
		fixed_tail = malloc(tl);
		if (!fixed_head || !fixed_tail)
			abort();
		memcpy(fixed_head, buf, hl);
		memcpy(fixed_tail, close, tl);
		head_len = hl;
		tail_len = tl;
	} else if (hl != head_len || tl != tail_len || memcmp(fixed_head, buf, hl) != 0 ||
		   memcmp(fixed_tail, close, tl) != 0) {
		fuzz_fail("%s html report: the markup around the data differs from report to report", what);
	}
	const char *end = NULL;
	cJSON *doc = cJSON_ParseWithLengthOpts(data, (size_t)(close - data), &end, 0);
	if (!doc)
		fuzz_fail("%s html report: the embedded data does not parse as JSON", what);
	if (end != close)
		fuzz_fail("%s html report: data after the embedded document", what);
	cJSON *flame = cJSON_GetObjectItemCaseSensitive(doc, "flame");
	if (!cJSON_IsObject(doc) || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(flame, "nodes")))
		fuzz_fail("%s html report: the embedded data has no flame graph", what);
	/* Parents come before their children, and the first node is the root. */
	int i = 0;
	const cJSON *row;
	cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(flame, "nodes"))
	{
		const cJSON *parent = cJSON_GetArrayItem(row, 0);
		if (!cJSON_IsNumber(parent) || (i == 0 ? parent->valuedouble != -1
						      : parent->valuedouble < 0 || parent->valuedouble >= i))
			fuzz_fail("%s html report: flame node %d has parent %g", what, i,
				  cJSON_IsNumber(parent) ? parent->valuedouble : -2.0);
		i++;
	}
	cJSON_Delete(doc);
}

/*
 * A report must be valid UTF-8 without NUL. Text and Markdown must also hold
 * no control character but the newline (colour output: and SGR sequences
 * "ESC [ digits m"): escape.h promises that every name is escaped on its
 * way to a terminal. No format may hold a promised_invisible code point
 * raw (JSON writes them as \uNNNN). JSON must hold no raw C0 control but
 * the whitespace between tokens and parse as one document.
 */
static void check_output(const char *what, enum out_kind kind, const char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)buf;
	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = utf8_len(p + i, len - i, &cp);
		if (!n)
			fuzz_fail("%s %s report: invalid UTF-8 at byte %zu (0x%02x)", what, out_names[kind], i, p[i]);
		if (cp == 0)
			fuzz_fail("%s %s report: NUL byte at %zu", what, out_names[kind], i);
		if (kind == OUT_HTML) {
			if (cp < 0x20 && cp != '\n')
				fuzz_fail("%s html report: raw control U+%04X at byte %zu", what, (unsigned)cp, i);
		} else if (kind != OUT_JSON) {
			if (cp == 0x1b && kind == OUT_TEXT_COLOR && i + 1 < len && p[i + 1] == '[') {
				size_t j = i + 2;
				while (j < len && p[j] >= '0' && p[j] <= '9')
					j++;
				if (j < len && p[j] == 'm' && j > i + 2) {
					i = j + 1;
					continue;
				}
			}
			if ((cp < 0x20 && cp != '\n') || cp == 0x7f)
				fuzz_fail("%s %s report: unescaped control U+%04X at byte %zu", what,
					  out_names[kind], (unsigned)cp, i);
		} else if (cp < 0x20 && cp != '\n' && cp != '\t' && cp != '\r') {
			fuzz_fail("%s json report: raw control U+%04X at byte %zu", what, (unsigned)cp, i);
		}
		if (promised_invisible(cp))
			fuzz_fail("%s %s report: unescaped invisible or bidi character U+%04X at byte %zu", what,
				  out_names[kind], (unsigned)cp, i);
		i += n;
	}
	if (kind == OUT_HTML)
		check_html(what, buf, len);
	if (kind == OUT_JSON) {
		const char *end = NULL;
		cJSON *doc = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
		if (!doc)
			fuzz_fail("%s json report does not parse (at byte %td of %zu)", what,
				  cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - buf : (ptrdiff_t)-1, len);
		for (const char *q = end; q && q < buf + len; q++)
			if (*q != '\n' && *q != ' ')
				fuzz_fail("%s json report: data after the document at byte %td", what, q - buf);
		if (!cJSON_IsObject(doc))
			fuzz_fail("%s json report is not an object", what);
		cJSON_Delete(doc);
	}
}

/* A text report laid out for width columns has no line wider (in code points). */
static void check_width(const char *what, const char *buf, size_t len, size_t width)
{
	size_t col = 0, line = 1;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\n') {
			col = 0;
			line++;
		} else if (((unsigned char)buf[i] & 0xc0) != 0x80 && ++col > width) {
			fuzz_fail("%s text report: line %zu is wider than %zu columns", what, line, width);
		}
	}
}

typedef int (*render_fn)(FILE *, const struct ld_diff *, const struct ld_report_opts *);

static void render(const char *what, render_fn fn, enum out_kind kind, const struct ld_diff *d,
		   struct ld_report_opts o)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return;
	o.color = kind == OUT_TEXT_COLOR;
	int r = fn(f, d, &o);
	if (fclose(f) != 0) {
		free(buf);
		return;
	}
	if (r == 0)
		check_output(what, kind, buf, len);
	if (r == 0 && kind == OUT_TEXT && o.width)
		check_width(what, buf, len, o.width < 20 ? 20 : o.width);
	free(buf);
}

/* ------------------------------------------------------------ the read path */

static void round_trip(const struct ld_snapshot *s, struct ld_snapshot **copy)
{
	char *j1 = NULL, *j2 = NULL;
	size_t l1 = 0, l2 = 0;
	struct ld_error err = { { 0 } };
	*copy = NULL;
	if (ld_snap_serialize(s, &j1, &l1) < 0)
		return;
	if (strlen(j1) != l1)
		fuzz_fail("serialised snapshot has a NUL inside (%zu of %zu bytes)", strlen(j1), l1);
	int r = ld_snap_parse(j1, l1, copy, &err);
	if (r == -ENOMEM) {
		free(j1);
		return;
	}
	if (r < 0)
		fuzz_fail("a serialised snapshot does not parse back: %s", err.msg);
	if (ld_snap_serialize(*copy, &j2, &l2) == 0 && (l1 != l2 || memcmp(j1, j2, l1) != 0)) {
		size_t i = 0;
		while (i < l1 && i < l2 && j1[i] == j2[i])
			i++;
		fuzz_fail("serialise(parse(serialise(s))) differs from serialise(s) at byte %zu "
			  "(%zu vs %zu bytes): ...%.40s... vs ...%.40s...", i, l1, l2,
			  j1 + (i > 20 ? i - 20 : 0), j2 + (i > 20 ? i - 20 : 0));
	}
	free(j1);
	free(j2);
}

/*
 * The file names a report prints come from the user, who may have globbed
 * a directory of snapshots from elsewhere: they are escaped like names in
 * snapshots. The fuzzer controls them through meta.executable.
 * LEAKDIFF_FUZZ_PLAIN_PATHS=1 turns that off while a known bug in path
 * escaping is open, so that a campaign can look for others.
 */
static const char *report_path(const struct ld_snapshot *s, const char *plain)
{
	static int plain_only = -1;
	if (plain_only < 0) {
		const char *e = getenv("LEAKDIFF_FUZZ_PLAIN_PATHS");
		plain_only = e && *e && strcmp(e, "0") != 0;
	}
	return !plain_only && s->meta.executable ? s->meta.executable : plain;
}

static void reports(const char *what, const struct ld_diff *d, uint64_t bits, const struct ld_diff_opts *dopts,
		    const struct ld_limits *lim, const struct ld_verdict *v, size_t suppressed, size_t nsnapshots,
		    const char *after_path)
{
	struct ld_report_opts o = {
		.before_path = "before.snap",
		.after_path = after_path,
		.top = bits & 1 ? 0 : (bits >> 1) % 6,
		.min_bytes = bits & 8 ? 0 : (bits >> 4) % 4096,
		.by = (enum ld_report_by)((bits >> 16) % 3),
		.verbose = (bits >> 18) & 1,
		.type_sites = (bits >> 19) % 4,
		.depth = dopts->depth,
		.match = dopts->match,
		.limits = lim,
		.verdict = v,
		.suppressed = suppressed,
		.nsnapshots = nsnapshots,
		.width = (bits >> 22) & 1 ? 0 : (bits >> 23) % 160,
	};
	render(what, ld_report_diff_text, OUT_TEXT, d, o);
	render(what, ld_report_diff_text, OUT_TEXT_COLOR, d, o);
	render(what, ld_report_diff_markdown, OUT_MARKDOWN, d, o);
	render(what, ld_report_diff_json, OUT_JSON, d, o);
	render(what, ld_report_diff_html, OUT_HTML, d, o);
}

void fuzz_exercise_snapshot(const struct ld_snapshot *s, uint64_t bits)
{
	struct ld_snapshot *copy = NULL, *empty = ld_snapshot_create();
	struct ld_diff *d = NULL;
	if (!empty)
		return;
	round_trip(s, &copy);

	/* leakdiff show */
	if (ld_diff_create(empty, s, NULL, &d) == 0) {
		struct ld_report_opts o = { .after_path = report_path(s, "show.snap"), .top = bits & 2 ? 0 : 10,
					    .type_sites = 3, .verbose = bits & 4,
					    .width = bits & 32 ? 0 : 20 + (bits >> 6) % 140 };
		render("show", ld_report_show_text, OUT_TEXT, d, o);
		render("show", ld_report_show_text, OUT_TEXT_COLOR, d, o);
		render("show", ld_report_show_json, OUT_JSON, d, o);
		render("show", ld_report_show_html, OUT_HTML, d, o);
		ld_diff_destroy(d);
		d = NULL;
	}

	/*
	 * leakdiff diff: s against its own round trip (equal content, other
	 * indices), then before/after the other way round, with options,
	 * suppressions matching some of the names, limits, and a trend.
	 */
	const struct ld_snapshot *other = copy ? copy : empty;
	static const char *const strip[] = { "/", "/usr/lib/python3.11/", "leakyapp" };
	struct ld_diff_opts dopts = {
		.depth = (uint32_t)((bits >> 30) % 3),
		.match = (enum ld_match_mode)((bits >> 32) % 3),
		.strip = strip,
		.nstrip = (bits >> 34) % 4,
	};
	bool reverse = (bits >> 36) & 1;
	const struct ld_snapshot *before = reverse ? s : empty, *after = reverse ? empty : s;
	if ((bits >> 37) & 1)
		before = other;
	if (ld_diff_create(before, after, &dopts, &d) == 0) {
		const struct ld_snapshot *trend[3] = { before, other, after };
		if ((bits >> 38) & 1)
			ld_diff_trend(d, trend, 3, &dopts);
		struct ld_suppressions sup;
		struct ld_error err;
		ld_suppressions_init(&sup);
		/* A name from the snapshot itself, so that some rows match. */
		char text[512];
		const char *name = s->strings.n ? ld_snapshot_str(s, (uint32_t)((bits >> 40) % s->strings.n)) : "x";
		snprintf(text, sizeof(text), "# fuzz\n%s%.200s\nleak:*.py\nrace:ignored\n",
			 (bits >> 48) & 1 ? "type:" : "function:", name);
		size_t suppressed = 0;
		if (strchr(name, '\n') == NULL && ld_suppressions_parse(&sup, text, strlen(text), &err) == 0)
			suppressed = ld_diff_suppress(d, &sup, &dopts);
		struct ld_limits lim = { 0 };
		ld_limits_parse_total(&lim, (bits >> 49) & 1 ? "1%" : "4KiB");
		lim.site = (bits >> 50) & 1;
		lim.site_bytes = (bits >> 51) % 2048;
		lim.type = true;
		lim.type_count = (bits >> 55) % 5;
		struct ld_verdict v;
		if (ld_verdict_check(d, &lim, &v) == 0) {
			reports("diff", d, bits, &dopts, &lim, &v, suppressed, (bits >> 38) & 1 ? 3 : 2,
				report_path(s, "after.snap"));
			ld_verdict_finish(&v);
		}
		const struct ld_diff_type *t = ld_diff_suspect(d, 0);
		if (t && !t->name)
			fuzz_fail("suspect type without a name");
		ld_suppressions_finish(&sup);
		ld_diff_destroy(d);
	}
	ld_snapshot_destroy(copy);
	ld_snapshot_destroy(empty);
}
