/* estimate.h -- how long a plan takes on the farm at hand, from a short
 * calibration render on this machine.
 *
 * A slice of up to two seconds from the middle of the region is rendered
 * for every target, each with its pre-roll (a first pass to warm up, then
 * until a quarter second is measured), with the threads OpenMP gives a
 * render here; the frames rendered per second of wall time, applied to the
 * plan's rendered frames (pre-roll and the null-test reference included),
 * give the time on this machine. A farm of n nodes like this one takes
 * that time divided by n; nodes of other speeds are not known here, so a
 * farm estimate assumes this machine's speed per node. The slice is real
 * work: sessions whose cost varies along the timeline are estimated from
 * their middle.
 */
#ifndef ESTIMATE_H
#define ESTIMATE_H

#include "plan.h"

struct estimate {
    double slice_s;       /* audio rendered per target by the calibration */
    double calibration_s; /* its wall time */
    double frames_per_s;  /* rendered frames per wall second on this machine */
    double machine_s;     /* the whole plan on this machine */
};

/* Calibrates on p's session and fills *out. SF_E_* from the render (a
 * source that cannot be read), SF_E_NOMEM. */
sf_rc estimate_plan(const plan_t *p, estimate_t *out, sf_err_t *err);

/* "1:02:03" or "45.2 s" for a duration. */
void estimate_format(double seconds, char *buf, size_t n);

#endif
