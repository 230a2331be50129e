/* dsp.c -- element-wise kernels and the output quantiser (see sf/dsp.h).
 *
 * Every loop here is written as the plain scalar loop with `#pragma omp simd`
 * in front: with -ffp-contract=off and no fast-math the vectorised code does
 * exactly the scalar IEEE operations, so results never depend on the ISA, the
 * alignment of the pointers or where a buffer was cut. Nothing here
 * allocates, logs or fails.
 *
 * Quantisation rounds to nearest, ties to even (the IEEE default, what lrint
 * does in the default rounding mode): an exact half LSB goes to the even
 * integer, so +-0.5 LSB -> 0, 1.5 LSB -> 2, 2.5 LSB -> 2. It is done with the
 * 1.5 * 2^52 trick on a double (exact for |y| <= 2^51, values are clamped far
 * inside that first) so that the loop vectorises without SSE4.1's roundpd.
 *
 * Dither: TPDF from a counter-based generator. The 64-bit word for sample
 * (key, channel, frame) is splitmix64's output for counter `frame` of the
 * stream seeded by mix(key, channel); its two 32-bit halves give
 * u1, u2 = (h + 0.5) / 2^32 in (0, 1), and d = u1 + u2 - 1 in (-1, 1) LSB,
 * computed exactly in double. No state, so any segment cut gives the same
 * noise for the same absolute frame.
 */
#include "sf/dsp.h"

#include <float.h>

/* The rounding trick and the bit-identical promise both need plain double
 * evaluation (no x87 excess precision). */
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "stemfarm DSP needs FLT_EVAL_METHOD == 0 (SSE2 or better, no x87 math)"
#endif

#define SF_GOLDEN 0x9E3779B97F4A7C15ull  /* splitmix64 increment */
#define SF_CHANNEL_GAMMA 0xD1B54A32D192ED03ull /* separates the channels' streams */
#define SF_ROUND_MAGIC 0x1.8p52         /* 1.5 * 2^52: adding it rounds to an integer */

void sf_dsp_mix(float *restrict dst, const float *restrict src, size_t n_frames, float gain)
{
#pragma omp simd
    for (size_t i = 0; i < n_frames; i++)
        dst[i] += src[i] * gain;
}

void sf_dsp_add(float *restrict dst, const float *restrict src, size_t n_frames)
{
#pragma omp simd
    for (size_t i = 0; i < n_frames; i++)
        dst[i] += src[i];
}

void sf_dsp_scale(float *restrict dst, const float *restrict src, size_t n_frames, float gain)
{
#pragma omp simd
    for (size_t i = 0; i < n_frames; i++)
        dst[i] = src[i] * gain;
}

void sf_dsp_add_f64(double *restrict dst, const float *restrict src, size_t n_frames)
{
#pragma omp simd
    for (size_t i = 0; i < n_frames; i++)
        dst[i] += (double)src[i];
}

void sf_dsp_f64_to_f32(float *restrict dst, const double *restrict src, size_t n_frames)
{
#pragma omp simd
    for (size_t i = 0; i < n_frames; i++)
        dst[i] = (float)src[i];
}

void sf_dsp_interleave(float *restrict dst, const float *const *src, int n_channels, size_t n_frames)
{
    if (n_channels == 1) {
        const float *restrict a = src[0];
#pragma omp simd
        for (size_t i = 0; i < n_frames; i++)
            dst[i] = a[i];
        return;
    }
    if (n_channels == 2) {
        const float *restrict l = src[0];
        const float *restrict r = src[1];
#pragma omp simd
        for (size_t i = 0; i < n_frames; i++) {
            dst[2 * i] = l[i];
            dst[2 * i + 1] = r[i];
        }
        return;
    }
    size_t nc = (size_t)n_channels;
    for (size_t c = 0; c < nc; c++) {
        const float *restrict a = src[c];
#pragma omp simd
        for (size_t i = 0; i < n_frames; i++)
            dst[i * nc + c] = a[i];
    }
}

void sf_dsp_deinterleave(float *const *dst, const float *restrict src, int n_channels, size_t n_frames)
{
    if (n_channels == 1) {
        float *restrict a = dst[0];
#pragma omp simd
        for (size_t i = 0; i < n_frames; i++)
            a[i] = src[i];
        return;
    }
    if (n_channels == 2) {
        float *restrict l = dst[0];
        float *restrict r = dst[1];
#pragma omp simd
        for (size_t i = 0; i < n_frames; i++) {
            l[i] = src[2 * i];
            r[i] = src[2 * i + 1];
        }
        return;
    }
    size_t nc = (size_t)n_channels;
    for (size_t c = 0; c < nc; c++) {
        float *restrict a = dst[c];
#pragma omp simd
        for (size_t i = 0; i < n_frames; i++)
            a[i] = src[i * nc + c];
    }
}

/* splitmix64's output function (Steele, Lea, Flood 2014). */
static inline uint64_t s_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The seed of one channel's noise stream. */
static inline uint64_t s_channel_seed(uint64_t stem_key, int channel)
{
    return s_mix64(stem_key + SF_CHANNEL_GAMMA * ((uint64_t)(uint32_t)channel + 1u));
}

/* TPDF value from the stream `seed` at counter `frame`: exact in double. */
static inline double s_tpdf(uint64_t seed, uint64_t frame)
{
    uint64_t h = s_mix64(seed + SF_GOLDEN * frame);
    double u1 = (double)(uint32_t)(h >> 32);
    double u2 = (double)(uint32_t)h;
    /* (u1 + 0.5)/2^32 + (u2 + 0.5)/2^32 - 1, every step exact */
    return (u1 + u2 + 1.0) * 0x1p-32 - 1.0;
}

double sf_dsp_tpdf(uint64_t stem_key, int channel, int64_t frame)
{
    return s_tpdf(s_channel_seed(stem_key, channel), (uint64_t)frame);
}

/* Rounds y (in LSB) to the nearest integer, ties to even. */
static inline double s_round(double y)
{
    /* keep the rounding trick in its exact range; +-inf lands here too */
    y = y > 0x1p40 ? 0x1p40 : y;
    y = y < -0x1p40 ? -0x1p40 : y;
    return (y + SF_ROUND_MAGIC) - SF_ROUND_MAGIC;
}

/* 1 when the rounded value r is outside [lo, hi] or NaN. */
static inline size_t s_clips(double r, double lo, double hi)
{
    return (size_t)((r > hi) | (r < lo) | (r != r));
}

/* Clips r to [lo, hi] (NaN becomes 0) and left-justifies it. */
static inline int32_t s_to_int(double r, double lo, double hi, int32_t mul)
{
    double c = r > hi ? hi : r;
    c = c < lo ? lo : c;
    c = c == c ? c : 0.0;
    return (int32_t)c * mul;
}

size_t sf_dsp_quantize(int32_t *restrict dst, const float *const *src, int n_channels,
                       size_t n_frames, int bits, bool dither, uint64_t stem_key,
                       int64_t first_frame)
{
    const double scale = bits == 32 ? 0x1p31 : bits == 24 ? 0x1p23 : 0x1p15;
    const double lo = -scale;
    const double hi = scale - 1.0;
    const int32_t mul = bits == 32 ? 1 : bits == 24 ? 256 : 65536;
    const size_t nc = (size_t)n_channels;
    size_t n_clip_total = 0;

    for (size_t ch = 0; ch < nc; ch++) {
        const float *restrict s = src[ch];
        size_t n_clip = 0;
        if (dither) {
            const uint64_t seed = s_channel_seed(stem_key, (int)ch);
            const uint64_t f0 = (uint64_t)first_frame;
#pragma omp simd reduction(+ : n_clip)
            for (size_t i = 0; i < n_frames; i++) {
                double r = s_round((double)s[i] * scale + s_tpdf(seed, f0 + i));
                n_clip += s_clips(r, lo, hi);
                dst[i * nc + ch] = s_to_int(r, lo, hi, mul);
            }
        } else {
#pragma omp simd reduction(+ : n_clip)
            for (size_t i = 0; i < n_frames; i++) {
                double r = s_round((double)s[i] * scale);
                n_clip += s_clips(r, lo, hi);
                dst[i * nc + ch] = s_to_int(r, lo, hi, mul);
            }
        }
        n_clip_total += n_clip;
    }
    return n_clip_total;
}
