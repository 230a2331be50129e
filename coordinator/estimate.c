/* estimate.c -- wall time from a calibration render (see estimate.h). */
#include "estimate.h"

#include "sf/clock.h"
#include "sf/alloc.h"
#include "sf/render.h"

#include <stdio.h>
#include <time.h>

#define S_MAX_PASSES 8

sf_rc estimate_plan(const plan_t *p, estimate_t *out, sf_err_t *err)
{
    const sf_session_t *s = p->session;
    int64_t region = sf_session_n_frames(s);
    int64_t slice = 2 * (int64_t)s->sample_rate;
    if (slice > region)
        slice = region;
    int64_t start = s->start + (region - slice) / 2;
    float *pcm = sf_aligned_alloc((size_t)(slice > 0 ? slice : 1) * SF_MAX_CHANNELS * sizeof(float));
    if (!pcm)
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    float *planes[SF_MAX_CHANNELS];
    for (int c = 0; c < SF_MAX_CHANNELS; c++)
        planes[c] = pcm + (size_t)c * (size_t)slice;
    /* The first pass wakes the threads and fills the caches, and is not
     * counted; then passes until a quarter second has been measured, so a
     * light session is not estimated from noise. */
    double rendered = 0, took = 0;
    int measured = 0;
    sf_rc rc = SF_OK;
    for (int pass = 0; pass < 1 + S_MAX_PASSES && rc == SF_OK && slice > 0 && (pass < 2 || took < 0.25); pass++) {
        double t0 = sf_clock_s(), frames = 0;
        for (uint32_t t = 0; t < p->n_targets && rc == SF_OK; t++) {
            rc = sf_render(s, p->targets[t].target, start, slice, p->targets[t].preroll_frames, planes, err);
            frames += (double)(slice + (int64_t)p->targets[t].track_preroll_mean);
        }
        if (pass > 0) {
            took += sf_clock_s() - t0;
            rendered += frames;
            measured++;
        }
    }
    sf_free(pcm);
    if (rc)
        return rc;
    out->slice_s = (double)slice * measured / s->sample_rate;
    out->calibration_s = took;
    out->frames_per_s = took > 0 ? rendered / took : 0;
    out->machine_s = out->frames_per_s > 0 ? (double)p->rendered_frames / out->frames_per_s : 0;
    return SF_OK;
}

void estimate_format(double seconds, char *buf, size_t n)
{
    if (seconds < 60) {
        snprintf(buf, n, "%.1f s", seconds);
        return;
    }
    long t = (long)(seconds + 0.5);
    snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}
