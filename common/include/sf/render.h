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

#include <stdatomic.h>
#include <stdint.h>

/* Renders target t over timeline frames [start, start + n_frames) into
 * out[c][0..n_frames), c < sf_session_target_channels(s, t).
 *
 * The graph: each track's clips (fades, crossfades, clip gain, channel pick)
 * and polarity give its pre-fader signal; the fader (gain_db or its
 * automation) gives the post-fader signal; both are panned (pan or its
 * automation, or `route`) into the layout of the bus they feed: the output
 * bus, and each send's bus at the send's level (pre- or post-fader tap).
 * Buses run in session->bus_order: the sum of what feeds them (in a fixed
 * order: tracks in session order, then buses in bus_order), their fader, then
 * into their output bus and sends. Layout changes between a source and the
 * bus it feeds follow sf_render_layout_gains.
 *  - STEM: only the stem's (unmuted) tracks sound (solo in place); every bus
 *    still processes; the master bus's sum is the stem (master effects only
 *    with output.master_apply), converted to the stem's channels.
 *  - MIX: the sum, in stem order, of every stem at the mix's gain; then the
 *    master effects when the mix says master: apply.
 *  - MULTITRACK: the track's clips only (clip gain, fades, crossfades,
 *    channel pick): no polarity, fader, pan, sends or effects.
 *  - FULL_MIX: every unmuted track sounding, the master effects only with
 *    output.master_apply (as the stems have them): the null-test reference.
 */
sf_rc sf_render(const sf_session_t *s, sf_target_t t, int64_t start, int64_t n_frames, int64_t preroll,
                float *const *out, sf_err_t *err);

/* sf_render that also publishes how far it has got: *progress (relaxed
 * stores, readable from any thread) grows window by window, counting the
 * frames rendered including pre-roll and latency, so a node can tell its
 * coordinator that a long job is moving. Same bytes as sf_render. */
sf_rc sf_render_progress(const sf_session_t *s, sf_target_t t, int64_t start, int64_t n_frames, int64_t preroll,
                         float *const *out, atomic_int_least64_t *progress, sf_err_t *err);

/* Gains from a signal of n_in channels to a bus of n_out channels, both in
 * the layouts of sf_layout_labels: gains[in][out].
 *  - equal layouts: identity;
 *  - mono to stereo or wider: -3 dB into L and R (centre, constant power);
 *  - stereo to mono: (L + R) at -3 dB; stereo to 5.1/7.1: L to L, R to R;
 *  - 5.1/7.1 to stereo (ITU-R BS.775): L' = L + C/sqrt2 + surrounds/sqrt2
 *    (Ls; or Lss and Lsr), R' likewise, LFE dropped; to mono: (L' + R')/sqrt2;
 *  - 5.1 to 7.1: Ls to Lss, Rs to Rss; 7.1 to 5.1: Ls = (Lss + Lsr)/sqrt2. */
void sf_render_layout_gains(int n_in, int n_out, double gains[SF_MAX_CHANNELS][SF_MAX_CHANNELS]);

/* The value of automation `a` at timeline frame `frame`, exactly as the
 * renderer uses it: before the first point the first value, from the last
 * point on the last value; at a point's frame that point's value (of
 * several points at one frame, the last: a step); between two points
 * v0 + (v1 - v0) * ((frame - f0) * (1 / (f1 - f0))) in double. A -INFINITY end of a
 * ramp counts as `floor_db` (the session's tail_threshold_db) while
 * interpolating, so a fade to -inf is linear in dB down to the floor and
 * exact silence only at the -inf point itself; between two -inf points the
 * value is -INFINITY. NaN when `a` has no points. */
double sf_render_automation_at(const sf_automation_t *a, int64_t frame, double floor_db);

/* Frames a render of target t must start before a segment so that every
 * effect with memory on the way (track and bus inserts, the master's when
 * they run) has warmed up to within session->tail_threshold_db of the
 * continuous render: the longest sum of insert tails on any path from a
 * sounding track to the target's output -- for a stem whose gain comes from
 * shared dynamics, the full graph's paths count too. 0 when no insert has a
 * tail or when sf_render would refuse the target (it then says why); -1 when
 * out of memory. */
int64_t sf_render_preroll(const sf_session_t *s, sf_target_t t);

/* Pre-roll per track (DESIGN.md: pre-roll is per graph node): prerolls[k]
 * for every session track k is how many frames before a segment track k's
 * clips start sounding in a render of target t -- the tails of its own
 * chain plus the longest sum of tails from where it feeds (its output bus,
 * its sends) to the target's output. sf_render starts each track at
 * start - min(preroll, prerolls[k]); sf_render_preroll is the largest. -1
 * for tracks that do not sound in the target. SF_E_INPUT/SF_E_NOMEM as
 * sf_render would refuse the target. */
sf_rc sf_render_track_prerolls(const sf_session_t *s, sf_target_t t, int64_t *prerolls, sf_err_t *err);

/* Frames by which the target's output would lag the timeline without
 * compensation: the largest sum of insert latencies (look-ahead) on any path
 * (shared dynamics: of the full graph too); 0 or -1 as sf_render_preroll.
 * sf_render compensates it, so outputs stay aligned with the timeline. */
int64_t sf_render_latency(const sf_session_t *s, sf_target_t t);

/* Renders stem `stem_index` over timeline frames [start, start + n_frames)
 * into out[c][0..n_frames), c < stems[stem_index].n_channels, caller-allocated.
 * `preroll` frames before `start` (more, up to the next multiple of
 * SF_FX_BLOCK_GRID before it) are rendered to warm up effects with memory
 * and discarded (each track from its own pre-roll, sf_render_track_prerolls).
 * Uses up to omp_get_max_threads() threads of the caller.
 * Errors: SF_E_IO with the source path when a source cannot be read,
 * SF_E_NOMEM. On error `out` holds unspecified values. */
sf_rc sf_render_stem(const sf_session_t *s, size_t stem_index, int64_t start, int64_t n_frames, int64_t preroll,
                     float *const *out, sf_err_t *err);

/* The gains a track applies to each output channel, pan law included:
 * gains[in][out] for in < track->n_channels, out < n_out_channels.
 * Mono source to stereo: constant power, L = cos(t), R = sin(t),
 * t = (pan + 1) * pi / 4 (-3 dB each at centre). Stereo source to stereo:
 * balance -- the side panned towards stays at unity, the other is scaled by
 * cos(|pan| * pi / 2). To mono: mono passes, stereo folds down at -3 dB.
 * To 5.1 / 7.1 the pan law feeds L and R. A mono track's `route` replaces the
 * pan law: unity into each routed channel (n_out_channels is then the layout
 * of the bus it outputs to). Track gain and polarity are included; clip gain
 * is not. Exposed for tests. */
void sf_render_track_gains(const sf_track_t *track, int n_out_channels, double gains[2][SF_MAX_CHANNELS]);

#endif
