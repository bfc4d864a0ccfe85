/*
 * The fast .snap reader (see snapscan.h). A big snapshot is mostly small
 * integers in nested arrays; a generic parser spends most of its time
 * building a node per integer and converting each with strtod. This one
 * reads the integers in place and appends rows as it goes.
 *
 * It is only ever a shortcut: the tree reader in snap.c stays the
 * definition of what a .snap file means and of every error message. So the
 * scanner accepts a strict subset of JSON whose reading by cJSON it can
 * reproduce exactly (integers in canonical form, the four usual white-space
 * characters, strings without raw control characters), applies the tree
 * reader's range checks, and declines with -EAGAIN the moment anything
 * else shows up, leaving the decision to the tree reader.
 */
#include "snapscan.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frames.h"
#include "snap.h"

#define DECLINE (-EAGAIN)

struct scan {
	const char *p, *end;
	struct ld_snapshot *s;
	uint32_t stack[LD_DEPTH_MAX];
	char *tmp; /* unescaped string bytes */
	size_t tmp_cap;
};

static inline void skip_ws(struct scan *sc)
{
	const char *p = sc->p, *end = sc->end;
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	sc->p = p;
}

/* Consumes c (after optional white space) or fails. */
static inline bool eat(struct scan *sc, char c)
{
	skip_ws(sc);
	if (sc->p < sc->end && *sc->p == c) {
		sc->p++;
		return true;
	}
	return false;
}

/*
 * After an array element: true with *more set when a ',' or ']' follows,
 * false for anything else.
 */
static inline bool next_elem(struct scan *sc, bool *more)
{
	skip_ws(sc);
	if (sc->p < sc->end) {
		char c = *sc->p++;
		if (c == ',') {
			*more = true;
			return true;
		}
		if (c == ']') {
			*more = false;
			return true;
		}
	}
	return false;
}

/*
 * An unsigned integer in canonical JSON form of at most 16 digits, so that
 * it is exact and at most 2^53 + a little; the callers' range checks do the
 * rest. Whatever follows the digits is left to the caller, which accepts
 * only white space, ',' or ']' there: "1.5" or "1e3" then decline.
 */
static inline bool read_uint(struct scan *sc, uint64_t *out)
{
	skip_ws(sc);
	const char *p = sc->p, *end = sc->end;
	if (p == end || (unsigned char)(*p - '0') > 9)
		return false;
	uint64_t v = (uint64_t)(*p++ - '0');
	if (v == 0) {
		/* cJSON would read "01" as 1; leave such spellings to it. */
		if (p < end && (unsigned char)(*p - '0') <= 9)
			return false;
	} else {
		const char *stop = end - p > 15 ? p + 15 : end;
		while (p < stop && (unsigned char)(*p - '0') <= 9)
			v = v * 10 + (uint64_t)(*p++ - '0');
		if (p < end && (unsigned char)(*p - '0') <= 9)
			return false;
	}
	sc->p = p;
	*out = v;
	return true;
}

/* A count as the tree reader takes it: 0 to 2^53. */
static inline bool read_count(struct scan *sc, uint64_t *out)
{
	return read_uint(sc, out) && *out <= LD_COUNT_MAX;
}

/* An index below n; "-1" too (as LD_NOSTR) when optional. */
static inline bool read_index(struct scan *sc, size_t n, bool optional, uint32_t *out)
{
	uint64_t v;
	skip_ws(sc);
	if (optional && sc->end - sc->p >= 2 && sc->p[0] == '-' && sc->p[1] == '1' &&
	    (sc->end - sc->p == 2 || (unsigned char)(sc->p[2] - '0') > 9)) {
		sc->p += 2;
		*out = LD_NOSTR;
		return true;
	}
	if (!read_uint(sc, &v) || v >= n)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* A line number: 0 to INT32_MAX, or -1 as well when minus_one. */
static inline bool read_line(struct scan *sc, bool minus_one, int32_t *out)
{
	uint32_t v;
	if (!read_index(sc, (size_t)INT32_MAX + 1, minus_one, &v))
		return false;
	*out = v == LD_NOSTR ? -1 : (int32_t)v;
	return true;
}

static int hex4(const char *p)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9' ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Unescapes the string body [p, q) (q at its closing quote) into sc->tmp.
 * Escapes that cJSON rejects or would turn into a NUL (which ends the C
 * string the tree reader sees) decline.
 */
static int unescape(struct scan *sc, const char *p, const char *q, const char **out, size_t *len)
{
	/* Escapes never lengthen: "\uXXXX" is 6 bytes for at most 3 of UTF-8. */
	size_t need = (size_t)(q - p);
	if (need > sc->tmp_cap) {
		char *t = realloc(sc->tmp, need);
		if (!t)
			return -ENOMEM;
		sc->tmp = t;
		sc->tmp_cap = need;
	}
	char *o = sc->tmp;
	while (p < q) {
		if (*p != '\\') {
			*o++ = *p++;
			continue;
		}
		char c = p[1]; /* p + 1 < q: the scan that found q saw a whole escape */
		p += 2;
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u': {
			int hi = q - p >= 4 ? hex4(p) : -1;
			if (hi <= 0 || (hi >= 0xdc00 && hi <= 0xdfff))
				return DECLINE;
			p += 4;
			uint32_t cp = (uint32_t)hi;
			if (hi >= 0xd800 && hi <= 0xdbff) {
				int lo = q - p >= 6 && p[0] == '\\' && p[1] == 'u' ? hex4(p + 2) : -1;
				if (lo < 0xdc00 || lo > 0xdfff)
					return DECLINE;
				p += 6;
				cp = 0x10000 + ((((uint32_t)hi & 0x3ff) << 10) | ((uint32_t)lo & 0x3ff));
			}
			o += put_utf8(o, cp);
			break;
		}
		default:
			return DECLINE;
		}
	}
	*out = sc->tmp;
	*len = (size_t)(o - sc->tmp);
	return 0;
}

/*
 * A string value: its bytes in place when it has no escapes, else
 * unescaped into sc->tmp. Raw control characters decline: cJSON keeps
 * them, but the writer never produces them and a NUL would end the string
 * early for the tree reader.
 */
static int read_string(struct scan *sc, const char **out, size_t *len)
{
	if (!eat(sc, '"'))
		return DECLINE;
	const char *p = sc->p, *end = sc->end, *start = p;
	bool escaped = false;
	for (;;) {
		if (p == end)
			return DECLINE;
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			break;
		if (c < 0x20)
			return DECLINE;
		if (c == '\\') {
			if (end - p < 2)
				return DECLINE;
			escaped = true;
			p += 2;
			continue;
		}
		p++;
	}
	sc->p = p + 1;
	if (!escaped) {
		*out = start;
		*len = (size_t)(p - start);
		return 0;
	}
	return unescape(sc, start, p, out, len);
}

/* "[" then, unless the array is empty, *more = true. */
static bool open_array(struct scan *sc, bool *more)
{
	if (!eat(sc, '['))
		return false;
	skip_ws(sc);
	*more = !(sc->p < sc->end && *sc->p == ']');
	if (!*more)
		sc->p++;
	return true;
}

static int scan_strings(struct scan *sc)
{
	bool more;
	if (!open_array(sc, &more))
		return DECLINE;
	while (more) {
		const char *str;
		size_t len;
		uint32_t idx;
		int r = read_string(sc, &str, &len);
		if (r < 0)
			return r;
		r = ld_strtab_append(&sc->s->strings, str, len, &idx);
		if (r < 0)
			return r == -ENOMEM ? r : DECLINE;
		if (!next_elem(sc, &more))
			return DECLINE;
	}
	return 0;
}

static int scan_frames(struct scan *sc)
{
	size_t nstr = sc->s->strings.n;
	bool more, more_fields;
	if (!open_array(sc, &more))
		return DECLINE;
	while (more) {
		struct ld_frame f = { .text = LD_NOSTR, .function_line = -1, .kind_name = LD_NOSTR };
		if (!eat(sc, '[') || !read_index(sc, nstr, false, &f.file) || !eat(sc, ',') ||
		    !read_line(sc, false, &f.line) || !eat(sc, ',') ||
		    !read_index(sc, nstr, false, &f.function) || !next_elem(sc, &more_fields))
			return DECLINE;
		if (more_fields && (!read_line(sc, true, &f.function_line) || !next_elem(sc, &more_fields)))
			return DECLINE;
		if (more_fields && (!read_index(sc, nstr, true, &f.text) || !next_elem(sc, &more_fields)))
			return DECLINE;
		/* A seventh field would be ignored by the tree reader; not worth copying that. */
		if (more_fields && (!read_index(sc, nstr, true, &f.kind_name) || !eat(sc, ']')))
			return DECLINE;
		if (f.kind_name != LD_NOSTR)
			f.kind = ld_frame_kind_parse(ld_strtab_get(&sc->s->strings, f.kind_name));
		uint32_t idx;
		int r = ld_snapshot_add_frame(sc->s, &f, &idx);
		if (r < 0)
			return r == -ENOMEM ? r : DECLINE;
		if (!next_elem(sc, &more))
			return DECLINE;
	}
	return 0;
}

/*
 * A traceback: an array of at most LD_DEPTH_MAX frame indices. Most of a
 * large file is these, written as the writer writes them ("[12,7,0]"), so
 * that spelling is read by a tight loop here and anything else (white
 * space, a zero, a bad character) by the general functions.
 */
static bool scan_stack(struct scan *sc, uint32_t *depth)
{
	size_t nframes = sc->s->nframes;
	bool more;
	uint32_t n = 0;
	if (!open_array(sc, &more))
		return false;
	while (more) {
		if (n == LD_DEPTH_MAX)
			return false;
		const char *p = sc->p, *end = sc->end;
		if (end - p > 11 && (unsigned char)(*p - '1') <= 8) {
			/* At most 10 digits, so no overflow; a longer number is out of range anyway. */
			uint64_t v = (uint64_t)(*p++ - '0');
			for (int d = 1; d < 10 && (unsigned char)(*p - '0') <= 9; d++)
				v = v * 10 + (uint64_t)(*p++ - '0');
			if ((unsigned char)(*p - '0') > 9 && v < nframes && (*p == ',' || *p == ']')) {
				sc->stack[n++] = (uint32_t)v;
				more = *p++ == ',';
				sc->p = p;
				continue;
			}
		}
		if (!read_index(sc, nframes, false, &sc->stack[n]) || !next_elem(sc, &more))
			return false;
		n++;
	}
	*depth = n;
	return true;
}

static int scan_types(struct scan *sc)
{
	size_t nstr = sc->s->strings.n;
	bool more;
	if (!open_array(sc, &more))
		return DECLINE;
	while (more) {
		uint32_t name, origin = LD_NOSTR;
		uint64_t count, bytes;
		bool more_fields;
		if (!eat(sc, '[') || !read_index(sc, nstr, false, &name) || !eat(sc, ',') ||
		    !read_count(sc, &count) || !eat(sc, ',') || !read_count(sc, &bytes) ||
		    !next_elem(sc, &more_fields))
			return DECLINE;
		/* A fifth field would be ignored by the tree reader; not worth copying that. */
		if (more_fields && (!read_index(sc, nstr, true, &origin) || !eat(sc, ']')))
			return DECLINE;
		if (ld_snapshot_add_type(sc->s, name, count, bytes) < 0)
			return -ENOMEM;
		sc->s->types[sc->s->ntypes - 1].origin = origin;
		if (!next_elem(sc, &more))
			return DECLINE;
	}
	return 0;
}

static int scan_sites(struct scan *sc)
{
	bool more;
	if (!open_array(sc, &more))
		return DECLINE;
	while (more) {
		uint64_t count, bytes;
		uint32_t depth;
		if (!eat(sc, '[') || !read_count(sc, &count) || !eat(sc, ',') || !read_count(sc, &bytes) ||
		    !eat(sc, ',') || !scan_stack(sc, &depth) || !eat(sc, ']'))
			return DECLINE;
		int r = ld_snapshot_add_site(sc->s, count, bytes, sc->stack, depth);
		if (r < 0)
			return r == -ENOMEM ? r : DECLINE;
		if (!next_elem(sc, &more))
			return DECLINE;
	}
	return 0;
}

static int scan_type_sites(struct scan *sc)
{
	size_t ntypes = sc->s->ntypes;
	bool more;
	if (!open_array(sc, &more))
		return DECLINE;
	while (more) {
		uint32_t type, depth;
		uint64_t count, bytes;
		if (!eat(sc, '[') || !read_index(sc, ntypes, false, &type) || !eat(sc, ',') ||
		    !read_count(sc, &count) || !eat(sc, ',') || !read_count(sc, &bytes) || !eat(sc, ',') ||
		    !scan_stack(sc, &depth) || !eat(sc, ']'))
			return DECLINE;
		int r = ld_snapshot_add_type_site(sc->s, type, count, bytes, sc->stack, depth);
		if (r < 0)
			return r == -ENOMEM ? r : DECLINE;
		if (!next_elem(sc, &more))
			return DECLINE;
	}
	return 0;
}

/*
 * The big members in the order the tree reader reads them (and the writer
 * and the Python agent write them): each table's indices are checked
 * against the tables before it, so a document in another order declines.
 */
static const struct {
	const char *name;
	int (*scan)(struct scan *sc);
} tables[] = {
	{ "strings", scan_strings },
	{ "frames", scan_frames },
	{ "types", scan_types },
	{ "sites", scan_sites },
	{ "type_sites", scan_type_sites },
};

/* Copies len bytes into a new NUL-terminated buffer, or NULL. */
static char *dup_cstr(const char *p, size_t len)
{
	char *c = malloc(len + 1);
	if (c) {
		memcpy(c, p, len);
		c[len] = '\0';
	}
	return c;
}

/* Exact powers of ten as doubles: 10^22 is the last one a double holds exactly. */
static const double pow10_exact[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/*
 * A JSON number, strictly by the JSON grammar, with the value strtod (and
 * so cJSON) gives it. Only numbers whose correctly rounded value one
 * multiplication or division yields are taken: at most 2^53 in the digits
 * and a power of ten up to 10^22 (both exact as doubles, so IEEE arithmetic
 * rounds the exact result once, as strtod does). Others decline; so does a
 * number longer than the 63 characters cJSON copies before converting.
 */
static bool read_number(struct scan *sc, double *out)
{
	const char *p = sc->p, *end = sc->end, *start = p;
	bool neg = false;
	uint64_t m = 0;
	int digits = 0, scale = 0;
	if (p < end && *p == '-') {
		neg = true;
		p++;
	}
	if (p == end || (unsigned char)(*p - '0') > 9)
		return false;
	if (*p == '0') {
		p++;
	} else {
		while (p < end && (unsigned char)(*p - '0') <= 9) {
			if (++digits > 16)
				return false;
			m = m * 10 + (uint64_t)(*p++ - '0');
		}
	}
	if (p < end && *p == '.') {
		p++;
		if (p == end || (unsigned char)(*p - '0') > 9)
			return false;
		while (p < end && (unsigned char)(*p - '0') <= 9) {
			if (m == 0 && *p == '0') {
				scale--; /* leading zeros of the fraction carry no digits */
				p++;
				continue;
			}
			if (++digits > 16)
				return false;
			m = m * 10 + (uint64_t)(*p++ - '0');
			scale--;
		}
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		bool eneg = false;
		if (p < end && (*p == '+' || *p == '-'))
			eneg = *p++ == '-';
		if (p == end || (unsigned char)(*p - '0') > 9)
			return false;
		int e = 0;
		while (p < end && (unsigned char)(*p - '0') <= 9) {
			if (e > 1000)
				return false;
			e = e * 10 + (*p++ - '0');
		}
		scale += eneg ? -e : e;
	}
	if (p - start > 63 || m > (UINT64_C(1) << 53))
		return false;
	double v = (double)m;
	if (m != 0) {
		if (scale < -22 || scale > 22)
			return false;
		v = scale < 0 ? v / pow10_exact[-scale] : v * pow10_exact[scale];
	}
	sc->p = p;
	*out = neg ? -v : v;
	return true;
}

/*
 * Any value outside the big tables (meta, totals, gc, hints, members of
 * later versions), built as the cJSON nodes the tree reader would have
 * made of it, within the tree reader's nesting limit (depth counts the
 * containers around the value, the document object included). Built by
 * hand rather than by cJSON_Parse so that loading never touches cJSON's
 * global error state and can run in several threads at once.
 */
static int read_value(struct scan *sc, int depth, cJSON **out)
{
	skip_ws(sc);
	if (sc->p == sc->end)
		return DECLINE;
	char c = *sc->p;
	const char *end = sc->end;
	if (c == '{' || c == '[') {
		if (depth + 1 > LD_SNAP_MAX_NESTING)
			return DECLINE;
		sc->p++;
		cJSON *v = c == '{' ? cJSON_CreateObject() : cJSON_CreateArray();
		if (!v)
			return -ENOMEM;
		char close = c == '{' ? '}' : ']';
		skip_ws(sc);
		bool more = !(sc->p < end && *sc->p == close);
		if (!more)
			sc->p++;
		while (more) {
			char *key = NULL;
			cJSON *item = NULL;
			int r = 0;
			if (c == '{') {
				const char *k;
				size_t klen;
				r = read_string(sc, &k, &klen);
				if (r == 0 && !(key = dup_cstr(k, klen)))
					r = -ENOMEM;
				if (r == 0 && !eat(sc, ':'))
					r = DECLINE;
			}
			if (r == 0)
				r = read_value(sc, depth + 1, &item);
			if (r == 0 && !(key ? cJSON_AddItemToObject(v, key, item) : cJSON_AddItemToArray(v, item))) {
				cJSON_Delete(item);
				r = -ENOMEM;
			}
			free(key);
			if (r == 0) {
				skip_ws(sc);
				if (sc->p < end && *sc->p == ',')
					sc->p++;
				else if (sc->p < end && *sc->p == close)
					sc->p++, more = false;
				else
					r = DECLINE;
			}
			if (r < 0) {
				cJSON_Delete(v);
				return r;
			}
		}
		*out = v;
		return 0;
	}
	if (c == '"') {
		const char *str;
		size_t len;
		int r = read_string(sc, &str, &len);
		if (r < 0)
			return r;
		char *copy = dup_cstr(str, len);
		cJSON *v = copy ? cJSON_CreateString(copy) : NULL;
		free(copy);
		*out = v;
		return v ? 0 : -ENOMEM;
	}
	static const char *const words[] = { "true", "false", "null" };
	for (int i = 0; i < 3; i++) {
		size_t n = strlen(words[i]);
		if ((size_t)(end - sc->p) >= n && memcmp(sc->p, words[i], n) == 0) {
			sc->p += n;
			*out = i == 0 ? cJSON_CreateTrue() : i == 1 ? cJSON_CreateFalse() : cJSON_CreateNull();
			return *out ? 0 : -ENOMEM;
		}
	}
	double d;
	if (!read_number(sc, &d))
		return DECLINE;
	*out = cJSON_CreateNumber(d);
	return *out ? 0 : -ENOMEM;
}

static int scan_document(struct scan *sc, cJSON *rest)
{
	if (!eat(sc, '{'))
		return DECLINE;
	skip_ws(sc);
	bool more = !(sc->p < sc->end && *sc->p == '}');
	if (!more)
		sc->p++;
	int next_table = 0; /* tables before this one are read or skipped */
	unsigned seen = 0;
	while (more) {
		const char *key;
		size_t keylen;
		/*
		 * The tree reader compares unescaped names; read_string()
		 * unescapes the same way and declines a NUL, so a plain
		 * comparison agrees with it.
		 */
		int r = read_string(sc, &key, &keylen);
		if (r < 0)
			return r;
		if (!eat(sc, ':'))
			return DECLINE;
		int t = -1;
		for (int i = 0; i < (int)(sizeof(tables) / sizeof(tables[0])); i++) {
			if (strlen(tables[i].name) == keylen && memcmp(tables[i].name, key, keylen) == 0) {
				t = i;
				break;
			}
		}
		if (t >= 0) {
			/*
			 * The tree reader reads the first of duplicate names; a
			 * table out of order would be checked against tables
			 * not read yet.
			 */
			if (t < next_table || (seen & (1u << t)))
				return DECLINE;
			seen |= 1u << t;
			next_table = t + 1;
			r = tables[t].scan(sc);
		} else {
			cJSON *v = NULL;
			char *name = dup_cstr(key, keylen);
			r = name ? read_value(sc, 1, &v) : -ENOMEM;
			if (r == 0 && !cJSON_AddItemToObject(rest, name, v)) {
				cJSON_Delete(v);
				r = -ENOMEM;
			}
			free(name);
		}
		if (r < 0)
			return r;
		skip_ws(sc);
		if (sc->p == sc->end)
			return DECLINE;
		char c = *sc->p++;
		if (c == '}')
			more = false;
		else if (c != ',')
			return DECLINE;
	}
	/* Only white space may follow, as the tree reader requires. */
	skip_ws(sc);
	return sc->p == sc->end ? 0 : DECLINE;
}

int ld_snapscan_parse(const char *json, size_t len, struct ld_snapshot *s, cJSON **rest)
{
	*rest = NULL;
	struct scan *sc = malloc(sizeof(*sc));
	cJSON *obj = cJSON_CreateObject();
	if (!sc || !obj) {
		free(sc);
		cJSON_Delete(obj);
		return -ENOMEM;
	}
	sc->p = json;
	sc->end = json + len;
	sc->s = s;
	sc->tmp = NULL;
	sc->tmp_cap = 0;
	int r = scan_document(sc, obj);
	free(sc->tmp);
	free(sc);
	if (r < 0) {
		cJSON_Delete(obj);
		return r;
	}
	*rest = obj;
	return 0;
}
