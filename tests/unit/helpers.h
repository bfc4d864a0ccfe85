/*
 * Small helpers shared by the unit test binaries: a scratch directory per
 * test, whole-file reads and writes, gzip compression with zlib so that
 * tests can hand-craft .snap files, and allocation failure injection.
 */
#ifndef LD_TEST_HELPERS_H
#define LD_TEST_HELPERS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Creates a fresh directory under $TMPDIR (or /tmp) and returns its path,
 * which the caller frees; NULL on failure.
 */
char *th_tmpdir_create(void);

/* Removes dir, its files and its empty subdirectories; NULL is ignored. */
void th_tmpdir_remove(const char *dir);

/* dir + "/" + name in a new buffer (never NULL: aborts on ENOMEM). */
char *th_join(const char *dir, const char *name);

/* Number of entries in dir other than "." and "..", or -1. */
int th_count_entries(const char *dir);

/* Writes len bytes to path, replacing it. Returns 0 or -errno. */
int th_write_file(const char *path, const void *data, size_t len);

/* Reads a whole file into a new NUL-terminated buffer, or NULL. */
char *th_read_file(const char *path, size_t *len);

/* Gzip-compresses len bytes into a new buffer (never NULL). */
unsigned char *th_gzip(const void *data, size_t len, size_t *outlen);

/* A copy of len bytes (never NULL). */
void *th_memdup(const void *data, size_t len);

/* A small deterministic pseudo-random generator (xorshift64*). */
uint64_t th_rand(uint64_t *state);

/*
 * Allocation failure injection. The test binaries are linked with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc, so every allocation made
 * by the test code and by the static libraries under test (not by shared
 * libraries such as cJSON, zlib or libc's own strdup) goes through a
 * counter. th_fail_after(n) lets n more allocations succeed and fails every
 * one after that; th_fail_after(-1) turns failures off. th_fail_off() turns
 * them off too and returns how many allocations were attempted since they
 * were armed: more than n means at least one failed.
 */
void th_fail_after(long n);
long th_fail_off(void);
/* While on, allocations neither fail nor count (for test bookkeeping). */
void th_fail_hold(int on);
/*
 * The largest single request (malloc, calloc's product, realloc) seen
 * through the wrappers since the last th_largest_reset(); 0 without --wrap.
 */
void th_largest_reset(void);
size_t th_largest(void);
#ifdef TH_HAVE_WRAP
#define TH_REQUIRE_WRAP() ((void)0)
#else
#define TH_REQUIRE_WRAP() cr_skip_test("the linker has no --wrap: no allocation failure injection")
#endif

#endif
