/*
 * A growable byte buffer for building JSON, reports and frames in memory.
 * Appends never fail visibly: the first allocation failure sets oom and
 * later appends do nothing, so callers check once at the end.
 */
#ifndef LD_FORMATS_BUF_H
#define LD_FORMATS_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ld_buf {
	char *data; /* NUL-terminated when len > 0 */
	size_t len, cap;
	bool oom;
};

/* Sets up an empty buffer in caller memory. */
void ld_buf_init(struct ld_buf *b);

/* Frees the bytes; b may be NULL. */
void ld_buf_finish(struct ld_buf *b);

void ld_buf_add(struct ld_buf *b, const void *data, size_t len);
void ld_buf_puts(struct ld_buf *b, const char *s);
void ld_buf_putc(struct ld_buf *b, char c);
void ld_buf_printf(struct ld_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends s as a JSON string literal, quotes included, always valid UTF-8. */
void ld_buf_json_str(struct ld_buf *b, const char *s);

/* Takes the bytes out; the caller frees them and the buffer is empty. */
char *ld_buf_detach(struct ld_buf *b, size_t *len);

#endif
