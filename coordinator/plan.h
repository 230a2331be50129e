/* plan.h -- cutting every stem into segments: the jobs of a render.
 *
 * Segment k of a stem covers output frames [k*L, (k+1)*L) of the render
 * region (the last one may be shorter). A job is one (stem, segment). Jobs
 * are numbered stem-major (id = stem * n_segments + segment) and dispatched
 * segment-major (every stem's segment 0 first), so the stitcher can write
 * each stem front to back with little buffering.
 */
#ifndef PLAN_H
#define PLAN_H

#include "sf/error.h"
#include "sf/session.h"

#include <stdint.h>
#include <stdio.h>

typedef struct {
    uint32_t stem_index;
    uint32_t segment_index;
    int64_t start_frame;    /* absolute timeline frame */
    int64_t n_frames;
    int64_t preroll_frames; /* rendered before start_frame and discarded */
} plan_job_t;

typedef struct {
    const sf_session_t *session; /* borrowed; outlives the plan */
    int64_t segment_frames;
    uint32_t n_segments;
    plan_job_t *jobs;            /* n_jobs = n_stems * n_segments, stem-major */
    size_t n_jobs;
    int64_t output_frames;       /* frames delivered, all stems */
    int64_t rendered_frames;     /* frames rendered including pre-roll, all stems */
} plan_t;

/* The planner's default segment length for a session: 10 s, shortened so
 * that a result message stays under the wire limit. */
int64_t plan_default_segment(const sf_session_t *s);

/* Plans every stem of `s` with segments of `segment_frames` (0: the
 * session's `segment`, else the default). SF_E_INPUT when the segment is not
 * positive or a segment's result would exceed the wire's message limit. */
sf_rc plan_make(const sf_session_t *s, int64_t segment_frames, plan_t **out, sf_err_t *err);
void plan_destroy(plan_t **self_p);

/* Index into jobs of (stem, segment). */
size_t plan_job_index(const plan_t *p, uint32_t stem_index, uint32_t segment_index);

/* The order jobs are dispatched in: the i-th job to send. */
size_t plan_dispatch_order(const plan_t *p, size_t i);

/* Human table / one JSON document describing every job and the work. */
void plan_print_text(const plan_t *p, FILE *out);
sf_rc plan_print_json(const plan_t *p, FILE *out, sf_err_t *err);

#endif
