/* Escaping of untrusted names for terminals, Markdown and JSON; see escape.h. */
#include "escape.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

static uint32_t decode(const unsigned char *s, size_t n)
{
	static const unsigned char lead_mask[] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
	uint32_t cp = s[0] & lead_mask[n];
	for (size_t i = 1; i < n; i++)
		cp = (cp << 6) | (s[i] & 0x3f);
	return cp;
}

/* Code points that reorder or hide text on a terminal. */
static int is_invisible_control(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) ||     /* C1 controls, CSI among them */
	       (cp >= 0x200b && cp <= 0x200f) || /* zero width, LRM, RLM */
	       (cp >= 0x2028 && cp <= 0x202e) || /* separators, bidi embeddings */
	       (cp >= 0x2066 && cp <= 0x2069) || /* bidi isolates */
	       cp == 0xfeff;
}

/* Both JSON escapers: the invisible controls always, and for HTML also <, > and &. */
static void json_escape(struct ld_buf *b, const char *json, bool html)
{
	const unsigned char *p = (const unsigned char *)json, *run = p;
	while (*p) {
		size_t n = *p < 0x80 ? 1 : ld_utf8_seq_len(p);
		if (n == 0) {
			p++; /* not UTF-8: left for the reader to reject, as before */
			continue;
		}
		uint32_t cp = n > 1 ? decode(p, n) : *p;
		if ((n > 1 && is_invisible_control(cp)) || (html && (cp == '<' || cp == '>' || cp == '&'))) {
			ld_buf_printf(b, "%.*s\\u%04x", (int)(p - run), (const char *)run, (unsigned)cp);
			run = p + n;
		}
		p += n;
	}
	ld_buf_puts(b, (const char *)run);
}

void ld_escape_json_text(struct ld_buf *b, const char *json)
{
	json_escape(b, json, false);
}

void ld_escape_json_html(struct ld_buf *b, const char *json)
{
	json_escape(b, json, true);
}

static int markdown_special(unsigned char c)
{
	return strchr("|`*_[]<>#~\\!", c) != NULL;
}

void ld_escape_append(struct ld_buf *b, const char *s, enum ld_escape_mode mode)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	while (*p) {
		size_t n = ld_utf8_seq_len(p);
		if (n == 0) {
			if (mode == LD_ESCAPE_UTF8) {
				ld_buf_puts(b, "\xef\xbf\xbd");
			} else {
				char esc[5] = { '\\', 'x', hex[*p >> 4], hex[*p & 15], 0 };
				ld_buf_puts(b, esc);
			}
			p++;
			continue;
		}
		if (mode == LD_ESCAPE_UTF8) {
			ld_buf_add(b, p, n);
			p += n;
			continue;
		}
		uint32_t cp = decode(p, n);
		if (cp < 0x20 || cp == 0x7f) {
			const char *named = cp == '\n' ? "\\n" : cp == '\t' ? "\\t" : cp == '\r' ? "\\r" : NULL;
			if (named) {
				ld_buf_puts(b, named);
			} else {
				char esc[5] = { '\\', 'x', hex[cp >> 4], hex[cp & 15], 0 };
				ld_buf_puts(b, esc);
			}
		} else if (is_invisible_control(cp)) {
			ld_buf_printf(b, "\\u{%04x}", (unsigned)cp);
		} else if (cp == '\\') {
			ld_buf_puts(b, "\\\\");
		} else if (mode == LD_ESCAPE_MARKDOWN && n == 1 && markdown_special(*p)) {
			ld_buf_putc(b, '\\');
			ld_buf_putc(b, (char)*p);
		} else {
			ld_buf_add(b, p, n);
		}
		p += n;
	}
}

char *ld_escape_dup(const char *s, enum ld_escape_mode mode)
{
	struct ld_buf b;
	ld_buf_init(&b);
	ld_escape_append(&b, s, mode);
	if (b.oom) {
		ld_buf_finish(&b);
		return NULL;
	}
	return ld_buf_detach(&b, NULL);
}

size_t ld_text_width(const char *s)
{
	size_t w = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p & 0xc0) != 0x80)
			w++;
	return w;
}
