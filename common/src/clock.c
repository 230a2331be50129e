/* clock.c -- the monotonic clock (see sf/clock.h). */
#include "sf/clock.h"

#include <time.h>

int64_t sf_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t sf_clock_ms(void) { return sf_clock_ns() / 1000000; }

double sf_clock_s(void) { return (double)sf_clock_ns() * 1e-9; }
