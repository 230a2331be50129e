/* alloc.c -- allocation wrapper with failure injection (see sf/alloc.h). */
#include "sf/alloc.h"

#include <stdatomic.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static atomic_long s_fail_after; /* 0: never fail */
static atomic_long s_count;

void sf_alloc_fail_after(long n)
{
    atomic_store(&s_count, 0);
    atomic_store(&s_fail_after, n);
}

long sf_alloc_count(void) { return atomic_load(&s_count); }

static int s_should_fail(void)
{
    long n = atomic_fetch_add(&s_count, 1) + 1;
    long limit = atomic_load(&s_fail_after);
    return limit > 0 && n >= limit;
}

void *sf_malloc(size_t n_bytes)
{
    if (s_should_fail())
        return NULL;
    return malloc(n_bytes ? n_bytes : 1);
}

void *sf_calloc(size_t n_items, size_t item_size)
{
    if (s_should_fail())
        return NULL;
    return calloc(n_items ? n_items : 1, item_size ? item_size : 1);
}

void *sf_realloc(void *p, size_t n_bytes)
{
    if (s_should_fail())
        return NULL;
    return realloc(p, n_bytes ? n_bytes : 1);
}

char *sf_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *copy = sf_malloc(len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

char *sf_strdup(const char *s) { return sf_strndup(s, strlen(s)); }

void *sf_aligned_alloc(size_t n_bytes)
{
    if (s_should_fail())
        return NULL;
    size_t rounded = (n_bytes + 63) & ~(size_t)63;
    return aligned_alloc(64, rounded ? rounded : 64);
}

void sf_free(void *p) { free(p); }

/* A job's render buffers are tens of megabytes, allocated when it starts and
 * freed when it ends. glibc serves blocks that large with mmap and trims its
 * heap above 128 KiB free, so every job faulted its buffers in again, page by
 * page: 470,000 page faults and about 2 s of the 15 s of CPU of a 96-track,
 * 2-minute bounce. Blocks up to 32 MiB (glibc's largest setting; a render
 * buffer is a window of 65536 frames, a segment's frames a few MiB) now come
 * from the heap, and up to 1 GiB of free heap is kept; the peak memory is what the largest job needs,
 * as before, but it is paid once. */
void sf_alloc_keep_freed_memory(void)
{
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}
