/*
 * Bounded gzip decompression for untrusted input: .snap files and anything
 * else that arrives compressed from another machine. The output size is
 * capped so that a small "gzip bomb" cannot exhaust memory.
 */
#ifndef LD_FORMATS_GUNZIP_H
#define LD_FORMATS_GUNZIP_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* The cap used when the caller passes 0: 1 GiB of decompressed data. */
#define LD_GUNZIP_MAX_DEFAULT (UINT64_C(1) << 30)

/*
 * Decompresses a gzip stream of len bytes (concatenated members count as
 * one stream) into a new NUL-terminated buffer of at most max bytes, 0
 * meaning LD_GUNZIP_MAX_DEFAULT. On success *out belongs to the caller, who
 * frees it, and *outlen excludes the NUL. On failure nothing is allocated
 * and the return is -EINVAL (empty, not gzip, corrupt, truncated or
 * followed by garbage), -EFBIG (past max) or -ENOMEM, with a reason in err.
 */
int ld_gunzip(const void *data, size_t len, uint64_t max, char **out, size_t *outlen,
	      struct ld_error *err);

#endif
