/*
 * Growth of caller-held arrays. Shared by the model and the diff so that
 * every table grows (and fails) the same way.
 */
#ifndef LD_CORE_ARRAY_H
#define LD_CORE_ARRAY_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/*
 * Makes room for at least need elements of size elem in *ptr, whose
 * capacity is *cap, doubling so that appends are amortised O(1). Returns 0
 * or -ENOMEM, leaving *ptr and *cap untouched on failure.
 */
static inline int ld_array_reserve(void **ptr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 16;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -ENOMEM;
		ncap *= 2;
	}
	if (ncap > SIZE_MAX / elem)
		return -ENOMEM;
	void *p = realloc(*ptr, ncap * elem);
	if (!p)
		return -ENOMEM;
	*ptr = p;
	*cap = ncap;
	return 0;
}

#define LD_ARRAY_RESERVE(arr, capv, need) \
	ld_array_reserve((void **)&(arr), &(capv), (need), sizeof(*(arr)))

#endif
