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

/* Over n samples, from the running values *lo, *hi, *peak: the least and
 * the largest sample and the largest magnitude. NaN samples are passed over. */
void sf_dsp_min_max_peak(const float *x, size_t n, float *lo, float *hi, float *peak);

/* Flush-to-zero and denormals-are-zero for the calling thread (x86 MXCSR;
 * elsewhere nothing). Every thread that renders sets them for the span of
 * its work and restores what it had after: a denormal costs a hundred times
 * a normal operation, and the same setting on every thread of every node
 * keeps renders bit-identical. Returns the state sf_dsp_fp_restore puts back. */
unsigned sf_dsp_denormals_off(void);
void sf_dsp_fp_restore(unsigned state);

/* n_samples little-endian PCM samples of `bytes` bytes (2, 3 or 4 signed
 * integers, or 4 with is_float: IEEE float) to float at full scale 1.0 --
 * the exact values libsndfile's sf_read_float gives (integers of 24 bits or
 * fewer are exact floats; a 32-bit one is rounded once, to nearest).
 * 24-bit samples go 8 at a time through AVX2 byte shuffles where the CPU
 * has them; the result is the same on any CPU. */
void sf_dsp_pcm_to_float(float *restrict dst, const unsigned char *restrict raw, int bytes, bool is_float,
                         size_t n_samples);

/* Converts planar float to interleaved, left-justified int32 at `bits`
 * (16, 24 or 32): v = round(x * 2^(bits-1) [+ d]) clipped to the bits' range,
 * then shifted left by 32 - bits, as libsndfile's int interface wants.
 * With `dither`, d is TPDF noise of +-1 LSB peak from a counter-based
 * generator keyed by (stem_key, channel, absolute frame index), so the noise
 * of a sample never depends on how the stem was cut into segments.
 * `first_frame` is the absolute index of frame 0. Returns the number of
 * samples that clipped; with full_scale (one counter per channel), adds the
 * samples written at either rail -- the largest or the smallest value the
 * format holds, where a clipped sample ends up. */
size_t sf_dsp_quantize(int32_t *restrict dst, const float *const *src, int n_channels, size_t n_frames, int bits,
                       bool dither, uint64_t stem_key, int64_t first_frame, uint64_t *full_scale);

/* The dither value in LSB (-1, +1), triangular PDF, for one sample. */
double sf_dsp_tpdf(uint64_t stem_key, int channel, int64_t frame);

/* ---- gains, summing and envelopes (the renderer's inner loops) ---------- */

/* dst[i] += (double)(src[i] * gain): a float product, added into a double
 * accumulator (one rounding for the gain, one for the product). */
void sf_dsp_mix_f64(double *restrict dst, const float *restrict src, size_t n_frames, float gain);
/* dst[i] += (double)(src[i] * gain[i]) -- the same with a gain per sample. */
void sf_dsp_mix_f64_gains(double *restrict dst, const float *restrict src, const float *restrict gain, size_t n_frames);
/* dst[i] = src[i] * gain[i] */
void sf_dsp_mul(float *restrict dst, const float *restrict src, const float *restrict gain, size_t n_frames);
/* dst[i] = (float)(a[i] * b): gains computed in double, rounded once to float. */
void sf_dsp_gains_f32(float *restrict dst, const double *restrict a, double b, size_t n_frames);
/* dst[i] = (float)(a[i] * b[i]) */
void sf_dsp_gains2_f32(float *restrict dst, const double *restrict a, const double *restrict b, size_t n_frames);
/* dst[i] = a[i] * b[i] (double) */
void sf_dsp_mul_f64(double *restrict dst, const double *restrict a, const double *restrict b, size_t n_frames);
/* dst[i] = a[i] * b (double) */
void sf_dsp_scale_f64(double *restrict dst, const double *restrict a, double b, size_t n_frames);

/* 10^(db / 20): the linear gain of a level in dB; exactly 0 for -inf (and
 * for anything below about -6150 dB), exactly 1 for 0 dB. Computed by a
 * polynomial in plain double arithmetic rather than libm's pow, so the value
 * is the same on every machine and ISA (libm picks FMA or non-FMA variants at
 * run time) and the array form vectorises. Within 4.5e-16 + |db| 2.6e-17
 * relative of pow (6e-15 at -300 dB; a float gain's rounding is 6e-8). */
double sf_dsp_db_to_gain(double db);
/* dst[i] = sf_dsp_db_to_gain(db[i]), bit-identical to the scalar form;
 * dst may equal db. */
void sf_dsp_db_to_gain_n(double *dst, const double *db, size_t n);

/* sin(x * pi / 2) for x in [0, 1] (clamped): the equal-power curve and the
 * pan law. Exactly 0 at 0 and 1 at 1; sf_dsp_sin_half_pi(1 - x) is the
 * matching cosine, from the same polynomial argument (so the pan law's two
 * sides are equal at the centre and s^2 + c^2 = 1 within 4.5e-16).
 * Polynomial, portable like sf_dsp_db_to_gain; within 2.3e-16 (1 ulp)
 * absolute of libm's sin. */
double sf_dsp_sin_half_pi(double x);
/* dst[i] = sf_dsp_sin_half_pi(x[i]), bit-identical to the scalar form; dst may equal x. */
void sf_dsp_sin_half_pi_n(double *dst, const double *x, size_t n);

/* *s = sin(x * pi / 2), *c = cos(x * pi / 2) for x in [0, 1] (clamped), from
 * one polynomial argument at the cost of one sf_dsp_sin_half_pi: the
 * constant-power pan law. *s is sf_dsp_sin_half_pi(x) to the bit; at x = 1/2
 * *c == *s exactly (the centre is the same number on both sides). */
void sf_dsp_sincos_half_pi(double x, double *s, double *c);
/* The same over arrays, bit-identical to the scalar form; s may equal x. */
void sf_dsp_sincos_half_pi_n(double *s, double *restrict c, const double *x, size_t n);

#endif
