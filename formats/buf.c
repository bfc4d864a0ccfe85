/* Growable byte buffer; see buf.h. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

void ld_buf_init(struct ld_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void ld_buf_finish(struct ld_buf *b)
{
	if (!b)
		return;
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static bool reserve(struct ld_buf *b, size_t extra)
{
	if (b->oom)
		return false;
	if (extra > SIZE_MAX - b->len - 1) {
		b->oom = true;
		return false;
	}
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	char *p = realloc(b->data, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void ld_buf_add(struct ld_buf *b, const void *data, size_t len)
{
	if (!reserve(b, len))
		return;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void ld_buf_puts(struct ld_buf *b, const char *s)
{
	ld_buf_add(b, s, strlen(s));
}

void ld_buf_putc(struct ld_buf *b, char c)
{
	ld_buf_add(b, &c, 1);
}

void ld_buf_printf(struct ld_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void ld_buf_json_str(struct ld_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	ld_buf_putc(b, '"');
	while (*p) {
		/* Copy the longest run that needs no escaping in one go. */
		const unsigned char *run = p;
		while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
			p++;
		if (p > run)
			ld_buf_add(b, run, (size_t)(p - run));
		if (!*p)
			break;
		if (*p >= 0x80) {
			size_t n = ld_utf8_seq_len(p);
			if (n) {
				ld_buf_add(b, p, n);
				p += n;
			} else {
				ld_buf_puts(b, "\xef\xbf\xbd"); /* U+FFFD */
				p++;
			}
			continue;
		}
		char esc[7] = { '\\', 0 };
		switch (*p) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\t': esc[1] = 't'; break;
		case '\r': esc[1] = 'r'; break;
		default:
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 15];
			break;
		}
		ld_buf_puts(b, esc);
		p++;
	}
	ld_buf_putc(b, '"');
}

char *ld_buf_detach(struct ld_buf *b, size_t *len)
{
	char *p = b->data;
	if (len)
		*len = b->len;
	if (!p && !b->oom)
		p = calloc(1, 1);
	ld_buf_init(b);
	return p;
}
