/* plan.h -- cutting every target into segments: the jobs of a render.
 *
 * The targets of a render are its deliverables -- every stem, every mix,
 * every track when multitracks are on -- and one that is never delivered:
 * the full mix with the master bypassed, which the null test compares the
 * sum of the written stems against. Segment k of a target covers output
 * frames [k*L, (k+1)*L) of the render region (the last one may be shorter).
 * A job is one (target, segment). Jobs are numbered target-major
 * (target * n_segments + segment) and dispatched segment-major (every
 * target's segment 0 first), so the stitcher can write each file front to
 * back with little buffering and finish null tests segment by segment.
 */
#ifndef PLAN_H
#define PLAN_H

#include "sf/error.h"
#include "sf/session.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    sf_target_t target;
    int n_channels;
    bool deliver;              /* false: the null-test reference, rendered but not delivered */
    int64_t preroll_frames;    /* sf_render_preroll: what every segment renders first and drops */
    int64_t *track_prerolls;   /* per session track (sf_render_track_prerolls), -1: not sounding */
    int64_t track_preroll_min; /* over the sounding tracks; 0 when none */
    double track_preroll_mean; /* the pre-roll a track's work costs on average */
} plan_target_t;

typedef struct {
    uint32_t target_index; /* into plan->targets */
    uint32_t segment_index;
    int64_t start_frame; /* absolute timeline frame */
    int64_t n_frames;
    int64_t preroll_frames; /* rendered before start_frame and discarded */
} plan_job_t;

typedef struct {
    const sf_session_t *session; /* borrowed; outlives the plan */
    int64_t segment_frames;
    uint32_t n_segments;
    plan_target_t *targets; /* stems, mixes, multitracks, then the reference */
    uint32_t n_targets;
    plan_job_t *jobs; /* n_jobs = n_targets * n_segments, target-major */
    size_t n_jobs;
    int64_t trim_from;       /* frames from the region's start: `end: auto` lets the delivered files
                                end anywhere from here to the region's end (where every one has
                                fallen below the tail threshold); the region's length otherwise */
    int64_t output_frames;   /* frames delivered, all stems (before trimming) */
    int64_t rendered_frames; /* frames rendered including pre-roll (a track's mean), all targets */
    int64_t preroll_frames;  /* of those, pre-roll: the work segmenting adds */
} plan_t;

/* The planner's default segment length for a region of `region` frames
 * whose longest pre-roll is `preroll` frames: 10 s; or, when ten pre-rolls
 * are longer, the region cut into as many equal segments (in whole seconds)
 * as leave each at least ten pre-rolls long, so the pre-roll costs at most a
 * tenth more work, every segment's included; at most 120 s, and shortened
 * so that a result message stays under the wire limit. */
int64_t plan_default_segment(const sf_session_t *s, int64_t region, int64_t preroll);

/* Plans every target of `s` with segments of `segment_frames` (0: the
 * session's `segment`, else the default). SF_E_INPUT when the segment is not
 * positive or a segment's result would exceed the wire's message limit. */
sf_rc plan_make(const sf_session_t *s, int64_t segment_frames, plan_t **out, sf_err_t *err);
void plan_destroy(plan_t **self_p);

/* Index into jobs of (target, segment). */
size_t plan_job_index(const plan_t *p, uint32_t target_index, uint32_t segment_index);

/* Index of the null-test reference in targets, or -1 when there is none. */
int plan_reference_target(const plan_t *p);

/* "stem 'Drums'", "mix 'Instrumental'", "multitrack 'Kick In'", "reference 'Full Mix'". */
void plan_target_label(const plan_t *p, uint32_t target_index, char *buf, size_t n_bytes);

/* The order jobs are dispatched in: the i-th job to send. */
size_t plan_dispatch_order(const plan_t *p, size_t i);

typedef struct estimate estimate_t; /* estimate.h */

/* Human table / one JSON document describing every job and the work, and
 * the estimate on this machine when est is not NULL. */
void plan_print_text(const plan_t *p, const estimate_t *est, FILE *out);
sf_rc plan_print_json(const plan_t *p, const estimate_t *est, FILE *out, sf_err_t *err);

#endif
