/* sf/dsp.h -- element-wise kernels.
 *
 * Planar float32, `restrict` buffers, any length and alignment, written so
 * that the compiler vectorises them (`#pragma omp simd`) with results that are
 * bit-identical to the scalar loop (-ffp-contract=off, no fast-math).
 * _process-style functions never allocate, log or fail.
 */
#ifndef SF_DSP_H
#define SF_DSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* dst[i] += src[i] * gain */
void sf_dsp_mix(float *restrict dst, const float *restrict src, size_t n_frames, float gain);
/* dst[i] += src[i] */
void sf_dsp_add(float *restrict dst, const float *restrict src, size_t n_frames);
/* dst[i] = src[i] * gain */
void sf_dsp_scale(float *restrict dst, const float *restrict src, size_t n_frames, float gain);

/* Summing buses in double: dst[i] += (double)src[i]. The renderer adds its
 * tracks' float buffers into a double accumulator in session order and rounds
 * once at the end, so a stem of many tracks stays within a fraction of a
 * pcm24 LSB of the exact mix (a float accumulator does not). */
void sf_dsp_add_f64(double *restrict dst, const float *restrict src, size_t n_frames);
/* dst[i] = (float)src[i] (round to nearest). */
void sf_dsp_f64_to_f32(float *restrict dst, const double *restrict src, size_t n_frames);

/* Interleaves planar channels into dst (n_frames * n_channels floats). */
void sf_dsp_interleave(float *restrict dst, const float *const *src, int n_channels, size_t n_frames);
/* Splits interleaved src into planar dst[c]. */
void sf_dsp_deinterleave(float *const *dst, const float *restrict src, int n_channels, size_t n_frames);

/* Converts planar float to interleaved, left-justified int32 at `bits`
 * (16, 24 or 32): v = round(x * 2^(bits-1) [+ d]) clipped to the bits' range,
 * then shifted left by 32 - bits, as libsndfile's int interface wants.
 * With `dither`, d is TPDF noise of +-1 LSB peak from a counter-based
 * generator keyed by (stem_key, channel, absolute frame index), so the noise
 * of a sample never depends on how the stem was cut into segments.
 * `first_frame` is the absolute index of frame 0. Returns the number of
 * samples that clipped. */
size_t sf_dsp_quantize(int32_t *restrict dst, const float *const *src, int n_channels,
                       size_t n_frames, int bits, bool dither, uint64_t stem_key,
                       int64_t first_frame);

/* The dither value in LSB (-1, +1), triangular PDF, for one sample. */
double sf_dsp_tpdf(uint64_t stem_key, int channel, int64_t frame);

#endif
