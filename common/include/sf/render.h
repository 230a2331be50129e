/* sf/render.h -- the one renderer.
 *
 * render(session, target, [start, start + n_frames), preroll) -> planar float
 * frames. The node calls it for jobs; tests and the coordinator call it for
 * reference renders. Nothing else mixes audio.
 *
 * Determinism: the output of every sample depends only on the session and
 * the sample's timeline position -- not on the thread count, not on where a
 * segment was cut. Tracks are rendered in parallel (OpenMP) each into its own
 * buffer, and summed into the stem in session order; no float reduction runs
 * in an unspecified order.
 */
#ifndef SF_RENDER_H
#define SF_RENDER_H

#include "sf/error.h"
#include "sf/session.h"

#include <stdint.h>

/* Renders stem `stem_index` over timeline frames [start, start + n_frames)
 * into out[c][0..n_frames), c < stems[stem_index].n_channels, caller-allocated.
 * `preroll` frames before `start` are rendered to warm up effects with memory
 * and discarded. Uses up to omp_get_max_threads() threads of the caller.
 * Errors: SF_E_IO with the source path when a source cannot be read,
 * SF_E_NOMEM. On error `out` holds unspecified values. */
sf_rc sf_render_stem(const sf_session_t *s, size_t stem_index, int64_t start, int64_t n_frames,
                     int64_t preroll, float *const *out, sf_err_t *err);

/* The gains a track applies to each output channel, pan law included:
 * gains[in][out] for in < track->n_channels, out < n_out_channels.
 * Mono source to stereo: constant power, L = cos(t), R = sin(t),
 * t = (pan + 1) * pi / 4 (-3 dB each at centre). Stereo source to stereo:
 * balance -- the side panned towards stays at unity, the other is scaled by
 * cos(|pan| * pi / 2). To mono: mono passes, stereo folds down at -3 dB.
 * Track gain and polarity are included; clip gain is not. Exposed for tests. */
void sf_render_track_gains(const sf_track_t *track, int n_out_channels,
                           double gains[2][SF_MAX_CHANNELS]);

#endif
