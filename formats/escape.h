/*
 * The one place where names from snapshots (file, function and type names,
 * labels, command lines) are made safe to show. Snapshots come from other
 * machines and other people's programs, so a name may carry terminal escape
 * sequences, bidirectional overrides or bytes that are not UTF-8.
 */
#ifndef LD_FORMATS_ESCAPE_H
#define LD_FORMATS_ESCAPE_H

#include <stddef.h>

#include "buf.h"
/* ld_utf8_seq_len(), which users of this header reach through here. */
#include "utf8.h"

enum ld_escape_mode {
	/* For terminals and plain text: controls, DEL, C1 controls, bidi
	 * overrides and invalid UTF-8 become \xNN or \u{NNNN}, and a backslash
	 * becomes \\ so that an escape can never be forged. */
	LD_ESCAPE_TEXT,
	/* For JSON (whose own escaping handles controls): only bytes that are
	 * not valid UTF-8 are replaced, by U+FFFD. */
	LD_ESCAPE_UTF8,
	/* For Markdown tables: as TEXT, and the characters that Markdown or a
	 * table would interpret are backslash-escaped. */
	LD_ESCAPE_MARKDOWN,
};

/* Appends the escaped form of s (NULL is taken as "") to b. */
void ld_escape_append(struct ld_buf *b, const char *s, enum ld_escape_mode mode);

/*
 * Appends the JSON text json to b with the invisible controls of the TEXT
 * mode that JSON allows raw (C1 controls such as the 8-bit CSI, bidi
 * overrides and isolates, zero-width characters, line separators) written
 * as \uNNNN escapes instead, so that a report printed on a terminal cannot
 * drive it. json must be the output of a JSON printer, where such code
 * points occur only inside strings; the result decodes to the same values.
 */
void ld_escape_json_text(struct ld_buf *b, const char *json);

/*
 * As ld_escape_json_text(), and <, > and & written as \u003c, \u003e and
 * \u0026 too, for JSON embedded in an HTML <script> element: the text can
 * then never close the element ("</script>"), open a comment ("<!--") or
 * be read as a character reference, whatever the names in it, and still
 * decodes to the same values. U+2028 and U+2029 are among the escaped
 * controls, so the text is also valid JavaScript.
 */
void ld_escape_json_html(struct ld_buf *b, const char *json);

/*
 * Returns a newly allocated escaped copy of s that the caller frees, or NULL
 * when memory runs out.
 */
char *ld_escape_dup(const char *s, enum ld_escape_mode mode);

/* Number of terminal columns an escaped string takes (code points). */
size_t ld_text_width(const char *s);

#endif
