/* Bounded gzip decompression; see gunzip.h. */
#include "gunzip.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int ld_gunzip(const void *data, size_t len, uint64_t max, char **out, size_t *outlen,
	      struct ld_error *err)
{
	const unsigned char *in = data;
	if (len == 0)
		return ld_error_set(err, EINVAL, "empty file");
	if (len < 2 || in[0] != 0x1f || in[1] != 0x8b)
		return ld_error_set(err, EINVAL, "not a gzip file");
	if (!max)
		max = LD_GUNZIP_MAX_DEFAULT;

	z_stream z;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 15 + 16) != Z_OK)
		return ld_error_set(err, ENOMEM, "cannot start gzip decoder");
	size_t cap = len * 4 < (1 << 16) ? (1 << 16) : len * 4, used = 0;
	if (cap > max + 1)
		cap = (size_t)max + 1;
	char *buf = malloc(cap + 1);
	if (!buf) {
		inflateEnd(&z);
		return ld_error_set(err, ENOMEM, "out of memory");
	}
	z.next_in = (unsigned char *)in;
	z.avail_in = len > UINT32_MAX ? UINT32_MAX : (uInt)len;
	size_t fed = z.avail_in;
	int r = 0;
	for (;;) {
		if (used == cap) {
			if (used > max) {
				r = ld_error_set(err, EFBIG, "decompresses to more than %llu bytes "
						 "(raise LEAKDIFF_MAX_SNAPSHOT)", (unsigned long long)max);
				break;
			}
			size_t ncap = cap * 2 > max + 1 ? (size_t)max + 1 : cap * 2;
			char *nb = realloc(buf, ncap + 1);
			if (!nb) {
				r = ld_error_set(err, ENOMEM, "out of memory");
				break;
			}
			buf = nb;
			cap = ncap;
		}
		z.next_out = (unsigned char *)buf + used;
		z.avail_out = (uInt)(cap - used > UINT32_MAX ? UINT32_MAX : cap - used);
		size_t before = z.avail_out;
		int zr = inflate(&z, Z_NO_FLUSH);
		used += before - z.avail_out;
		if (z.avail_in == 0 && fed < len) {
			size_t more = len - fed > UINT32_MAX ? UINT32_MAX : len - fed;
			z.next_in = (unsigned char *)in + fed;
			z.avail_in = (uInt)more;
			fed += more;
		}
		if (used > max) {
			r = ld_error_set(err, EFBIG, "decompresses to more than %llu bytes "
					 "(raise LEAKDIFF_MAX_SNAPSHOT)", (unsigned long long)max);
			break;
		}
		if (zr == Z_STREAM_END) {
			if (z.avail_in == 0)
				break;
			/* Concatenated gzip members are one stream (gzip(1) agrees). */
			if (z.avail_in >= 2 && z.next_in[0] == 0x1f && z.next_in[1] == 0x8b) {
				inflateReset(&z);
				continue;
			}
			r = ld_error_set(err, EINVAL, "trailing garbage after gzip stream");
			break;
		}
		if (zr == Z_BUF_ERROR && z.avail_in == 0 && used < cap) {
			r = ld_error_set(err, EINVAL, "truncated gzip stream");
			break;
		}
		if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT) {
			r = ld_error_set(err, EINVAL, "corrupt gzip stream (%s)", z.msg ? z.msg : "bad data");
			break;
		}
		if (zr == Z_MEM_ERROR) {
			r = ld_error_set(err, ENOMEM, "out of memory");
			break;
		}
	}
	inflateEnd(&z);
	if (r < 0) {
		free(buf);
		return r;
	}
	buf[used] = '\0';
	*out = buf;
	*outlen = used;
	return 0;
}
