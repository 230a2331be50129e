/* stitch.h -- segments in, one NAME.partial per delivered file out.
 *
 * Results arrive in any order; each target's files are written front to
 * back, so a segment that arrives early is held (copied) until every segment
 * before it has been written. With `end: auto` the frames past the last
 * clip (plan->trim_from) are held until every target is in: the files end
 * where the last of them falls below the session's tail threshold
 * (DESIGN.md), all at one length. Quantisation and dither happen here, keyed by
 * the absolute timeline frame, so the bytes never depend on arrival order or
 * on where segments were cut. FLAC cannot seek while writing, which is why
 * segments are appended in order rather than written at random offsets.
 *
 * A target is written as one interleaved file, or (output.interleave: false)
 * as one mono file per channel. The null-test reference is never written:
 * its segments are compared, segment by segment, with the sum of the stems
 * exactly as written (after quantisation), and only the peak residual kept.
 */
#ifndef STITCH_H
#define STITCH_H

#include "plan.h"

#include <stdbool.h>

typedef struct stitch stitch_t;

/* Creates out_dir/NAME.partial for every delivered file (out_dir must exist).
 * SF_E_IO naming the file when one cannot be created. */
sf_rc stitch_open(const plan_t *plan, const char *out_dir, stitch_t **out, sf_err_t *err);

/* Takes the frames of plan job `job_index`: planar, channel after channel,
 * n_channels * n_frames floats as planned. Copies what it must keep.
 * SF_E_IO on a write failure; SF_E_INTERNAL if the job was accepted before. */
sf_rc stitch_accept(stitch_t *st, size_t job_index, const float *planar, sf_err_t *err);

/* True once every job of the plan has been taken. */
bool stitch_complete(const stitch_t *st);

/* Once every job is in: writes the held tails up to the common length
 * (plan->trim_from), then finishes, fsyncs and closes every file. */
sf_rc stitch_close(stitch_t *st, sf_err_t *err);

/* Files of a target: 1, or its channel count when not interleaved; 0 for
 * the reference. */
int stitch_n_files(const stitch_t *st, uint32_t target_index);
const char *stitch_partial_path(const stitch_t *st, uint32_t target_index, int file);
const char *stitch_final_path(const stitch_t *st, uint32_t target_index, int file);
/* xxh3 of the PCM written (as sf_media_hash_pcm reads it back). Valid after close. */
uint64_t stitch_pcm_hash(const stitch_t *st, uint32_t target_index, int file);
int64_t stitch_frames_written(const stitch_t *st, uint32_t target_index);
/* Frames of every delivered file: the region, or with `end: auto` where the
 * last delivered sample at or above the tail threshold is. Valid after close. */
int64_t stitch_length(const stitch_t *st);
/* The container of a target's files: the session's format, or RF64 where a
 * WAV would pass 4 GiB. */
sf_format_t stitch_format(const stitch_t *st, uint32_t target_index);
/* Samples of a file written at full scale (integer formats: the largest or
 * smallest value, where clipping puts a sample). */
uint64_t stitch_full_scale(const stitch_t *st, uint32_t target_index, int file);

typedef struct {
    bool applicable;      /* false: a stem's channels differ from the master's, or no stems */
    double residual_peak; /* max |sum of written stems - reference|, linear */
    double floor_peak;    /* what quantisation alone can leave: stems x (0.5 LSB, 1.5 with dither) */
} stitch_null_t;

/* The null test so far (complete once stitch_complete). */
stitch_null_t stitch_null_result(const stitch_t *st);

/* Frees everything; with remove_partials, deletes the .partial files too
 * (an aborted render leaves no finished-looking file behind). */
void stitch_destroy(stitch_t **self_p, bool remove_partials);

#endif
