/*
 * UTF-8 validation, the one rule shared by the JSON string writer (buf.c)
 * and the escaping of names for display (escape.c). It depends on nothing
 * else in formats/, so both can use it without depending on each other.
 */
#ifndef LD_FORMATS_UTF8_H
#define LD_FORMATS_UTF8_H

#include <stddef.h>

/*
 * Length in bytes of the valid UTF-8 sequence starting at s (1 to 4), or 0
 * when s does not start one. Overlong forms and surrogates are invalid.
 * Reads at most the sequence's own bytes, stopping at the first that does
 * not continue it, so a NUL-terminated s is never overrun.
 */
size_t ld_utf8_seq_len(const unsigned char *s);

#endif
