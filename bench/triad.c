/* bench/triad.c -- stemfarm-triad: the memory bandwidth one and two threads
 * get, STREAM's triad a[i] = b[i] + s c[i], for bench/suite.sh.
 *
 *   stemfarm-triad [MEGABYTES_PER_ARRAY]      (default 128)
 *
 * Prints `triad threads=T gb_per_s=G` for 1 thread and for every thread
 * count OpenMP offers up to 2 (the bounce is run on two cores). Counted as
 * STREAM counts it: 24 bytes per element (two reads, one write; the write
 * allocate is not counted). Best of 5 passes, after a first pass that faults
 * the pages in. The arrays must be far above the last-level cache, or this
 * measures the cache.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    long mb = argc > 1 ? atol(argv[1]) : 128;
    if (mb < 1) {
        fputs("usage: stemfarm-triad [MEGABYTES_PER_ARRAY]\n", stderr);
        return 2;
    }
    size_t n = (size_t)mb * 1024 * 1024 / sizeof(double);
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    if (!a || !b || !c) {
        fputs("stemfarm-triad: error: out of memory\n", stderr);
        return 1;
    }
    int most = omp_get_max_threads() < 2 ? omp_get_max_threads() : 2;
    for (int threads = 1; threads <= most; threads++) {
        omp_set_num_threads(threads);
        /* first touch by the threads that use the pages */
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            a[i] = 0;
            b[i] = 1;
            c[i] = 2;
        }
        double best = 1e30, s = 3;
        for (int pass = 0; pass < 5; pass++) {
            double t0 = now_s();
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < n; i++)
                a[i] = b[i] + s * c[i];
            double t = now_s() - t0;
            best = t < best ? t : best;
        }
        if (a[n / 2] != 7) { /* keeps the loop, and checks it */
            fputs("stemfarm-triad: error: wrong result\n", stderr);
            return 1;
        }
        printf("triad threads=%d gb_per_s=%.2f\n", threads, 24.0 * (double)n / best / 1e9);
    }
    free(a);
    free(b);
    free(c);
    return 0;
}
