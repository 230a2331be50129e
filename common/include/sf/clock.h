/* sf/clock.h -- the monotonic clock: durations, timeouts and deadlines.
 * Never wall-clock time (that can jump); sf/log.h stamps lines with that. */
#ifndef SF_CLOCK_H
#define SF_CLOCK_H

#include <stdint.h>

int64_t sf_clock_ns(void);
int64_t sf_clock_ms(void);
double sf_clock_s(void);

#endif
