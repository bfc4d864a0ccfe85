/*
 * The fast reader for the bulk of a .snap document: a single pass over the
 * JSON text that puts the big tables (strings, frames, types, sites,
 * type_sites) straight into the model, with no generic JSON tree in
 * between. It takes only documents it can read exactly as the tree reader
 * in snap.c would, and declines everything else, so that every rejection
 * (and its message) stays the tree reader's. snap.c is its only user.
 */
#ifndef LD_FORMATS_SNAPSCAN_H
#define LD_FORMATS_SNAPSCAN_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "snapshot.h"

/*
 * Reads the JSON text json (len bytes, not necessarily NUL-terminated) into
 * s, which must be empty. The five big tables are appended to s, checked as
 * the tree reader checks them; every other top-level member is built into
 * the cJSON nodes cJSON would have made of it (without calling cJSON's
 * parser, so that several threads can scan at once) and put, in document
 * order, in a new object stored in *rest, which the caller deletes and
 * reads the small members (format, meta, hints, ...) from.
 *
 * Returns 0; -EAGAIN when the document is anything the scanner does not
 * take: not valid, not in the writer's member order, numbers or strings
 * spelt in ways whose reading it does not reproduce exactly; or -ENOMEM.
 * On failure *rest is NULL and s holds a partial model that the caller
 * destroys. Never prints; keeps no state between calls.
 */
int ld_snapscan_parse(const char *json, size_t len, struct ld_snapshot *s, cJSON **rest);

#endif
