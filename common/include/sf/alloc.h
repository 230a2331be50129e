/* sf/alloc.h -- the one allocation wrapper.
 *
 * Every heap allocation in stemfarm goes through these functions, so that
 * tests can make the N-th allocation fail and check that every error path
 * cleans up and reports SF_E_NOMEM instead of crashing.
 * Buffers from sf_aligned_alloc are 64-byte aligned (SIMD, cache lines) and
 * are released with sf_free like every other block.
 */
#ifndef SF_ALLOC_H
#define SF_ALLOC_H

#include <stddef.h>

void *sf_malloc(size_t n_bytes);
void *sf_calloc(size_t n_items, size_t item_size);
void *sf_realloc(void *p, size_t n_bytes);
char *sf_strdup(const char *s);
char *sf_strndup(const char *s, size_t n);
/* 64-byte aligned, size rounded up to a multiple of 64; NULL on failure. */
void *sf_aligned_alloc(size_t n_bytes);
void sf_free(void *p);

/* For the processes that render (stemfarm, stemfarm-node), once at start:
 * freed render buffers stay in the heap for the next job instead of going
 * back to the kernel (see alloc.c). */
void sf_alloc_keep_freed_memory(void);

/* Failure injection for tests: the n-th allocation from now (1-based) and
 * every one after it fail; 0 switches injection off. Not thread-safe. */
void sf_alloc_fail_after(long n);
/* Number of allocations made since the last sf_alloc_fail_after call. */
long sf_alloc_count(void);

#endif
