/* stitch.h -- segments in, one NAME.partial per stem out.
 *
 * Results arrive in any order; each stem's file is written front to back, so
 * a segment that arrives early is held (copied) until every segment before
 * it has been written. Quantisation and dither happen here, keyed by the
 * absolute timeline frame, so the bytes never depend on arrival order or on
 * where segments were cut. FLAC cannot seek while writing, which is why
 * segments are appended in order rather than written at random offsets.
 */
#ifndef STITCH_H
#define STITCH_H

#include "plan.h"

#include <stdbool.h>

typedef struct stitch stitch_t;

/* Creates out_dir/NAME.partial for every stem (out_dir must exist).
 * SF_E_IO naming the file when one cannot be created. */
sf_rc stitch_open(const plan_t *plan, const char *out_dir, stitch_t **out, sf_err_t *err);

/* Takes the frames of plan job `job_index`: planar, channel after channel,
 * n_channels * n_frames floats as planned. Copies what it must keep.
 * SF_E_IO on a write failure; SF_E_INTERNAL if the job was accepted before. */
sf_rc stitch_accept(stitch_t *st, size_t job_index, const float *planar, sf_err_t *err);

/* True once every job of the plan has been written. */
bool stitch_complete(const stitch_t *st);

/* Finishes, fsyncs and closes every file. */
sf_rc stitch_close(stitch_t *st, sf_err_t *err);

const char *stitch_partial_path(const stitch_t *st, uint32_t stem_index);
const char *stitch_final_path(const stitch_t *st, uint32_t stem_index);
/* xxh3 of the PCM written (as sf_media_hash_pcm reads it back). Valid after close. */
uint64_t stitch_pcm_hash(const stitch_t *st, uint32_t stem_index);
int64_t stitch_frames_written(const stitch_t *st, uint32_t stem_index);
/* Samples that clipped at quantisation (integer formats). */
uint64_t stitch_clipped(const stitch_t *st, uint32_t stem_index);

/* Frees everything; with remove_partials, deletes the .partial files too
 * (an aborted render leaves no finished-looking file behind). */
void stitch_destroy(stitch_t **self_p, bool remove_partials);

#endif
