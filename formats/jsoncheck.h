/*
 * Checks shared by the readers of untrusted JSON (the .snap tree reader and
 * the native agent's raw document): a nesting pre-scan, run before cJSON
 * sees the text because cJSON recurses once per level, and the one way the
 * readers report a document they refuse.
 */
#ifndef LD_FORMATS_JSONCHECK_H
#define LD_FORMATS_JSONCHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* JSON nesting past which a document is refused. */
#define LD_JSON_MAX_NESTING 64

/*
 * Scans len bytes of JSON text p without parsing it. Returns -EINVAL with
 * a reason in err when containers nest deeper than LD_JSON_MAX_NESTING,
 * else 0. *open (when not NULL) is set to whether the text ends inside a
 * string or a container, which cJSON reports poorly. Nothing is allocated.
 */
int ld_json_check_nesting(const char *p, size_t len, bool *open, struct ld_error *err);

/*
 * Rejects a document: writes the formatted reason into err (which may be
 * NULL) and returns -EINVAL, so that a reader can say
 * `return ld_json_reject(err, "sites[%zu]: ...", i);`.
 */
int ld_json_reject(struct ld_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
