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
#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

/* The rounding trick and the bit-identical promise both need plain double
 * evaluation (no x87 excess precision). */
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "stemfarm DSP needs FLT_EVAL_METHOD == 0 (SSE2 or better, no x87 math)"
#endif

#define SF_GOLDEN        0x9E3779B97F4A7C15ull /* splitmix64 increment */
#define SF_CHANNEL_GAMMA 0xD1B54A32D192ED03ull /* separates the channels' streams */
#define SF_ROUND_MAGIC   0x1.8p52              /* 1.5 * 2^52: adding it rounds to an integer */

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
static inline size_t s_clips(double r, double lo, double hi) { return (size_t)((r > hi) | (r < lo) | (r != r)); }

/* Clips r to [lo, hi] (NaN becomes 0) and left-justifies it: shift is
 * 32 - bits, a constant in each caller, so that the loops vectorise with
 * SSE2's shifts (a multiply by a variable needs SSE4.1's pmulld). */
static inline int32_t s_to_int(double r, double lo, double hi, int shift)
{
    double c = r > hi ? hi : r;
    c = c < lo ? lo : c;
    c = c == c ? c : 0.0;
    return (int32_t)((uint32_t)(int32_t)c << shift);
}

#define SF_QUANT_RUN 1024 /* frames of one channel quantised before they are interleaved */

/* The loop below without dither, two samples per step in SSE2 (GCC turns
 * the scalar loop's NaN-exact comparisons into branches and leaves it
 * scalar: 36 instructions a sample). The same operations in the same order,
 * so the same integers: clamp to +-2^40 (NaN is remembered first), round
 * with the magic number, count what lies outside [lo, hi] or is NaN, clamp,
 * NaN to 0, shift. Returns the samples done; the caller finishes the rest. */
static inline size_t s_quantize_sse2(int32_t *restrict q, const float *restrict s, size_t n, double scale, int shift,
                                     size_t *n_clip, uint64_t *n_full)
{
#if defined(__SSE2__)
    const __m128d vscale = _mm_set1_pd(scale), lo = _mm_set1_pd(-scale), hi = _mm_set1_pd(scale - 1.0);
    const __m128d big = _mm_set1_pd(0x1p40), small = _mm_set1_pd(-0x1p40), magic = _mm_set1_pd(SF_ROUND_MAGIC);
    const __m128i vshift = _mm_cvtsi32_si128(shift);
    __m128i clips = _mm_setzero_si128(); /* per lane: minus the count */
    __m128i fulls = _mm_setzero_si128(); /* the same, 32-bit: a run is at most SF_QUANT_RUN */
    const __m128i top = _mm_set1_epi32((int32_t)((uint32_t)(int32_t)(scale - 1.0) << shift));
    const __m128i bottom = _mm_set1_epi32(INT32_MIN);
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        const __m128d y = _mm_mul_pd(_mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(s + i)))), vscale);
        const __m128d nan = _mm_cmpunord_pd(y, y);
        const __m128d r = _mm_sub_pd(_mm_add_pd(_mm_min_pd(_mm_max_pd(y, small), big), magic), magic);
        const __m128d out = _mm_or_pd(_mm_or_pd(_mm_cmpgt_pd(r, hi), _mm_cmplt_pd(r, lo)), nan);
        clips = _mm_add_epi64(clips, _mm_castpd_si128(out));
        const __m128d c = _mm_andnot_pd(nan, _mm_min_pd(_mm_max_pd(r, lo), hi));
        const __m128i v = _mm_sll_epi32(_mm_cvttpd_epi32(c), vshift); /* lanes 2, 3: 0 */
        fulls = _mm_add_epi32(fulls, _mm_or_si128(_mm_cmpeq_epi32(v, top), _mm_cmpeq_epi32(v, bottom)));
        _mm_storel_epi64((__m128i *)(q + i), v);
    }
    int32_t full_lanes[4];
    _mm_storeu_si128((__m128i *)full_lanes, fulls);
    *n_full += (uint64_t)(-(int64_t)full_lanes[0] - (int64_t)full_lanes[1]);
    int64_t lanes[2];
    _mm_storeu_si128((__m128i *)lanes, clips);
    *n_clip += (size_t)(-(lanes[0] + lanes[1]));
    return i;
#else
    (void)q, (void)s, (void)n, (void)scale, (void)shift, (void)n_clip, (void)n_full;
    return 0;
#endif
}

/* dst = l0 r0 l1 r1 ... */
static void s_interleave2_i32(int32_t *restrict dst, const int32_t *restrict l, const int32_t *restrict r, size_t n)
{
    size_t i = 0;
#if defined(__SSE2__)
    for (; i + 4 <= n; i += 4) {
        const __m128i a = _mm_loadu_si128((const __m128i *)(l + i)), b = _mm_loadu_si128((const __m128i *)(r + i));
        _mm_storeu_si128((__m128i *)(dst + 2 * i), _mm_unpacklo_epi32(a, b));
        _mm_storeu_si128((__m128i *)(dst + 2 * i + 4), _mm_unpackhi_epi32(a, b));
    }
#endif
    for (; i < n; i++) {
        dst[2 * i] = l[i];
        dst[2 * i + 1] = r[i];
    }
}

/* n samples of one channel into q, contiguous; the number that clipped,
 * and the number at either rail added to *n_full. */
static inline __attribute__((always_inline)) size_t s_quantize_run(int32_t *restrict q, const float *restrict s,
                                                                   size_t n, int bits, bool dither, uint64_t seed,
                                                                   uint64_t f0, uint64_t *n_full)
{
    const double scale = bits == 32 ? 0x1p31 : bits == 24 ? 0x1p23 : 0x1p15;
    const double lo = -scale;
    const double hi = scale - 1.0;
    const int shift = 32 - bits;
    const int32_t top = (int32_t)((uint32_t)(int32_t)hi << shift);
    size_t n_clip = 0;
    uint64_t full = 0;
    size_t i = 0;
    if (dither) {
#pragma omp simd reduction(+ : n_clip, full)
        for (i = 0; i < n; i++) {
            double r = s_round((double)s[i] * scale + s_tpdf(seed, f0 + i));
            n_clip += s_clips(r, lo, hi);
            q[i] = s_to_int(r, lo, hi, shift);
            full += (uint64_t)((q[i] == top) | (q[i] == INT32_MIN));
        }
    } else {
        for (i = s_quantize_sse2(q, s, n, scale, shift, &n_clip, &full); i < n; i++) {
            double r = s_round((double)s[i] * scale);
            n_clip += s_clips(r, lo, hi);
            q[i] = s_to_int(r, lo, hi, shift);
            full += (uint64_t)((q[i] == top) | (q[i] == INT32_MIN));
        }
    }
    *n_full += full;
    return n_clip;
}

size_t sf_dsp_quantize(int32_t *restrict dst, const float *const *src, int n_channels, size_t n_frames, int bits,
                       bool dither, uint64_t stem_key, int64_t first_frame, uint64_t *full_scale)
{
    const size_t nc = (size_t)n_channels;
    size_t n_clip = 0;
    int32_t run[2][SF_QUANT_RUN];
    for (size_t at = 0; at < n_frames; at += SF_QUANT_RUN) {
        const size_t m = n_frames - at < SF_QUANT_RUN ? n_frames - at : SF_QUANT_RUN;
        for (size_t ch = 0; ch < nc; ch++) {
            const uint64_t seed = dither ? s_channel_seed(stem_key, (int)ch) : 0;
            const uint64_t f0 = (uint64_t)first_frame + at;
            int32_t *q = nc == 1 ? dst + at : run[nc == 2 ? ch : 0];
            const float *s = src[ch] + at;
            uint64_t full = 0;
            n_clip += bits == 16   ? s_quantize_run(q, s, m, 16, dither, seed, f0, &full)
                      : bits == 24 ? s_quantize_run(q, s, m, 24, dither, seed, f0, &full)
                                   : s_quantize_run(q, s, m, 32, dither, seed, f0, &full);
            if (full_scale)
                full_scale[ch] += full;
            if (nc > 2)
                for (size_t i = 0; i < m; i++)
                    dst[(at + i) * nc + ch] = run[0][i];
        }
        if (nc == 2)
            s_interleave2_i32(dst + 2 * at, run[0], run[1], m);
    }
    return n_clip;
}

/* ---- meters ------------------------------------------------------------------- */

/* `v < m ? v : m` is MINPS(v, m) and `v > m ? v : m` is MAXPS(v, m), NaN v
 * included (the running value stays): four lanes, then the lanes folded. */
void sf_dsp_min_max_peak(const float *x, size_t n, float *lo, float *hi, float *peak)
{
    float l = *lo, h = *hi, p = *peak;
    size_t i = 0;
#if defined(__SSE2__)
    if (n >= 4) {
        const __m128 sign = _mm_set1_ps(-0.0f);
        __m128 vl = _mm_set1_ps(l), vh = _mm_set1_ps(h), vp = _mm_set1_ps(p);
        for (; i + 4 <= n; i += 4) {
            const __m128 v = _mm_loadu_ps(x + i);
            vl = _mm_min_ps(v, vl);
            vh = _mm_max_ps(v, vh);
            vp = _mm_max_ps(_mm_andnot_ps(sign, v), vp);
        }
        float al[4], ah[4], ap[4];
        _mm_storeu_ps(al, vl);
        _mm_storeu_ps(ah, vh);
        _mm_storeu_ps(ap, vp);
        for (int k = 0; k < 4; k++) {
            l = al[k] < l ? al[k] : l;
            h = ah[k] > h ? ah[k] : h;
            p = ap[k] > p ? ap[k] : p;
        }
    }
#endif
    for (; i < n; i++) {
        l = x[i] < l ? x[i] : l;
        h = x[i] > h ? x[i] : h;
        const float a = fabsf(x[i]);
        p = a > p ? a : p;
    }
    *lo = l;
    *hi = h;
    *peak = p;
}

/* ---- the FPU of a render thread ------------------------------------------ */

unsigned sf_dsp_denormals_off(void)
{
#if defined(__SSE2__)
    const unsigned state = _mm_getcsr();
    _mm_setcsr(state | 0x8040u); /* FTZ (bit 15) and DAZ (bit 6) */
    return state;
#else
    return 0;
#endif
}

void sf_dsp_fp_restore(unsigned state)
{
#if defined(__SSE2__)
    _mm_setcsr(state);
#else
    (void)state;
#endif
}

/* ---- reading PCM ------------------------------------------------------------ */

/* Scalar 24-bit samples: the three bytes left-justified in an int32. */
static void s_pcm24_to_float(float *restrict dst, const unsigned char *restrict raw, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const unsigned char *b = raw + 3 * i;
        const int32_t v = (int32_t)((uint32_t)b[0] << 8 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 24);
        dst[i] = (float)v * 0x1p-31f;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
/* Eight samples per step: each 128-bit lane loads 16 bytes (4 samples and
 * 4 bytes it ignores), pshufb puts every sample's bytes at the top of a
 * 32-bit word, and the word converts to float exactly. Reads stop 4 bytes
 * short of the end, where the scalar loop takes over. */
__attribute__((target("avx2"))) static size_t s_pcm24_to_float_avx2(float *restrict dst,
                                                                    const unsigned char *restrict raw, size_t n)
{
    const __m256i shuffle = _mm256_setr_epi8(-1, 0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1, 0, 1, 2, -1, 3,
                                             4, 5, -1, 6, 7, 8, -1, 9, 10, 11);
    const __m256 scale = _mm256_set1_ps(0x1p-31f);
    size_t i = 0;
    for (; i + 10 <= n; i += 8) {
        const __m128i lo = _mm_loadu_si128((const __m128i *)(const void *)(raw + 3 * i));
        const __m128i hi = _mm_loadu_si128((const __m128i *)(const void *)(raw + 3 * i + 12));
        const __m256i words = _mm256_shuffle_epi8(_mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1), shuffle);
        _mm256_storeu_ps(dst + i, _mm256_mul_ps(_mm256_cvtepi32_ps(words), scale));
    }
    return i;
}

static bool s_have_avx2(void)
{
    static int have = -1; /* a race only stores the same answer twice */
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    return have == 1;
}
#endif

void sf_dsp_pcm_to_float(float *restrict dst, const unsigned char *restrict raw, int bytes, bool is_float,
                         size_t n_samples)
{
    if (is_float) {
        memcpy(dst, raw, n_samples * sizeof(float)); /* little-endian host: the bits as stored */
        return;
    }
    switch (bytes) {
    case 2:
#pragma omp simd
        for (size_t i = 0; i < n_samples; i++) {
            const int16_t v = (int16_t)((uint16_t)raw[2 * i] | (uint16_t)raw[2 * i + 1] << 8);
            dst[i] = (float)v * 0x1p-15f;
        }
        return;
    case 3: {
        size_t done = 0;
#if defined(__x86_64__) && defined(__GNUC__)
        if (s_have_avx2())
            done = s_pcm24_to_float_avx2(dst, raw, n_samples);
#endif
        s_pcm24_to_float(dst + done, raw + 3 * done, n_samples - done);
        return;
    }
    default:
#pragma omp simd
        for (size_t i = 0; i < n_samples; i++) {
            const int32_t v = (int32_t)((uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 |
                                        (uint32_t)raw[4 * i + 2] << 16 | (uint32_t)raw[4 * i + 3] << 24);
            dst[i] = (float)v * 0x1p-31f;
        }
        return;
    }
}

/* ---- gains, summing and envelopes ---------------------------------------- */

void sf_dsp_mix_f64(double *restrict dst, const float *restrict src, size_t n_frames, float gain)
{
#pragma omp simd
    for (size_t i = 0; i < n_frames; i++)
        dst[i] += (double)(src[i] * gain);
}

void sf_dsp_mix_f64_gains(double *restrict dst, const float *restrict src, const float *restrict gain, size_t n_frames)
{
#pragma omp simd
    for (size_t i = 0; i < n_frames; i++)
        dst[i] += (double)(src[i] * gain[i]);
}

void sf_dsp_mul(float *restrict dst, const float *restrict src, const float *restrict gain, size_t n_frames)
{
#pragma omp simd
    for (size_t i = 0; i < n_frames; i++)
        dst[i] = src[i] * gain[i];
}

void sf_dsp_gains_f32(float *restrict dst, const double *restrict a, double b, size_t n_frames)
{
#pragma omp simd
    for (size_t i = 0; i < n_frames; i++)
        dst[i] = (float)(a[i] * b);
}

void sf_dsp_gains2_f32(float *restrict dst, const double *restrict a, const double *restrict b, size_t n_frames)
{
#pragma omp simd
    for (size_t i = 0; i < n_frames; i++)
        dst[i] = (float)(a[i] * b[i]);
}

void sf_dsp_mul_f64(double *restrict dst, const double *restrict a, const double *restrict b, size_t n_frames)
{
#pragma omp simd
    for (size_t i = 0; i < n_frames; i++)
        dst[i] = a[i] * b[i];
}

void sf_dsp_scale_f64(double *restrict dst, const double *restrict a, double b, size_t n_frames)
{
#pragma omp simd
    for (size_t i = 0; i < n_frames; i++)
        dst[i] = a[i] * b;
}

/* 10^(db/20) = 2^y with y = db * log2(10) / 20, split as y = n + f, n the
 * nearest integer (the rounding trick of s_round), f in [-0.5, 0.5] exactly;
 * 2^f = e^(f ln 2) by its Taylor series to degree 13 (truncation < 5e-18 on
 * |f ln 2| <= 0.35), 2^n built in the exponent bits. Plain +, * and bit
 * moves: the same bits on every ISA, scalar or vectorised. */
#define SF_DB_TO_LOG2 0.16609640474436811739 /* log2(10) / 20 */
#define SF_LN2        0.69314718055994530942
#define SF_DB_MIN     (-6160.0) /* 2^-1023.2: the gain rounds to the +0 of s_pow2i(-1023) */
#define SF_DB_MAX     6000.0

/* Why the clamps run as a separate loop: GCC (12) vectorises a floating
 * comparison-and-select under -ftrapping-math only in the form
 * "load, select, store"; inside the polynomial loop it gives up. The scalar
 * forms do the same two steps, so both give the same bits. */
static inline double s_clamp(double x, double lo, double hi)
{
    x = x < lo ? lo : x;
    x = x > hi ? hi : x;
    return x;
}

static inline double s_pow2i(double n)
{
    /* n + 2^52 + 1023 holds n + 1023 in its low mantissa bits; shifted up by
     * 52 they become the exponent field of 2^n (n in [-1023, 1023]; -1023
     * gives +0). */
    double t = n + (0x1p52 + 1023.0);
    uint64_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits <<= 52;
    double r;
    memcpy(&r, &bits, sizeof r);
    return r;
}

/* 10^(db/20) for db in [SF_DB_MIN, SF_DB_MAX]: 2^y, y = db log2(10)/20 in
 * [-1023.2, 997], split as y = n + f with n the nearest integer (the
 * rounding trick of s_round) and f in [-0.5, 0.5] exactly; 2^f = e^(f ln 2)
 * by its Taylor series to degree 13 (truncation < 5e-18 on |f ln 2| <= 0.35);
 * 2^n built in the exponent bits, +0 for n = -1023. */
static inline double s_db_poly(double db)
{
    double y = db * SF_DB_TO_LOG2;
    double n = (y + SF_ROUND_MAGIC) - SF_ROUND_MAGIC;
    double t = (y - n) * SF_LN2;
    double p = 1.0 / 6227020800.0; /* 1/13! */
    p = p * t + 1.0 / 479001600.0;
    p = p * t + 1.0 / 39916800.0;
    p = p * t + 1.0 / 3628800.0;
    p = p * t + 1.0 / 362880.0;
    p = p * t + 1.0 / 40320.0;
    p = p * t + 1.0 / 5040.0;
    p = p * t + 1.0 / 720.0;
    p = p * t + 1.0 / 120.0;
    p = p * t + 1.0 / 24.0;
    p = p * t + 1.0 / 6.0;
    p = p * t + 0.5;
    p = p * t + 1.0;
    p = p * t + 1.0;
    return p * s_pow2i(n);
}

double sf_dsp_db_to_gain(double db) { return s_db_poly(s_clamp(db, SF_DB_MIN, SF_DB_MAX)); }

void sf_dsp_db_to_gain_n(double *dst, const double *db, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        double x = db[i];
        x = x < SF_DB_MIN ? SF_DB_MIN : x;
        x = x > SF_DB_MAX ? SF_DB_MAX : x;
        dst[i] = x;
    }
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        dst[i] = s_db_poly(dst[i]);
}

/* sin(x pi/2) for x in [0, 1]: for x <= 1/2 the sine series of t = x pi/2
 * (to t^17), above it the cosine series of t = (1 - x) pi/2 (to t^18); t <=
 * pi/4 either way, where the first omitted terms are below 1e-19. 1 - x is
 * exact above 1/2 (Sterbenz), so sin_half_pi(x) and sin_half_pi(1 - x)
 * evaluate the same t. No branch: w = round(x) is 0 up to 1/2 (a tie rounds
 * to even) and 1 above, and the blends with it are exact. */
#define SF_HALF_PI 1.57079632679489661923

/* The sine and cosine series of t in [0, pi/4]. */
static inline void s_sincos_series(double t, double *sin_t, double *cos_t)
{
    double t2 = t * t;
    double s = -1.0 / 355687428096000.0; /* -1/17! */
    s = s * t2 + 1.0 / 1307674368000.0;
    s = s * t2 - 1.0 / 6227020800.0;
    s = s * t2 + 1.0 / 39916800.0;
    s = s * t2 - 1.0 / 362880.0;
    s = s * t2 + 1.0 / 5040.0;
    s = s * t2 - 1.0 / 120.0;
    s = s * t2 + 1.0 / 6.0;
    s = t - t * t2 * s;                  /* t - t^3/3! + ... + t^17/17! */
    double c = 1.0 / 6402373705728000.0; /* 1/18! */
    c = c * t2 - 1.0 / 20922789888000.0;
    c = c * t2 + 1.0 / 87178291200.0;
    c = c * t2 - 1.0 / 479001600.0;
    c = c * t2 + 1.0 / 3628800.0;
    c = c * t2 - 1.0 / 40320.0;
    c = c * t2 + 1.0 / 720.0;
    c = c * t2 - 1.0 / 24.0;
    c = c * t2 + 0.5;
    c = 1.0 - t2 * c;
    *sin_t = s;
    *cos_t = c;
}

static inline double s_sin_poly(double x)
{
    double w = (x + SF_ROUND_MAGIC) - SF_ROUND_MAGIC;
    double t = ((1.0 - w) * x + w * (1.0 - x)) * SF_HALF_PI;
    double s, c;
    s_sincos_series(t, &s, &c);
    return (1.0 - w) * s + w * c; /* exactly s or exactly c */
}

/* Both at once: the same t; the roles of the two series swap above 1/2.
 * At x = 1/2 exactly (z = 1) the cosine takes the sine's value: the two
 * series differ by an ulp at pi/4. z = round(1 / (1 + |x - 1/2| 2^60)) is 1
 * there and 0 elsewhere (the nearest other x is 2^-54 away: 1/65 rounds
 * to 0). */
static inline void s_sincos_poly(double x, double *sin_x, double *cos_x)
{
    double w = (x + SF_ROUND_MAGIC) - SF_ROUND_MAGIC;
    double t = ((1.0 - w) * x + w * (1.0 - x)) * SF_HALF_PI;
    double s, c;
    s_sincos_series(t, &s, &c);
    double z = (1.0 / (1.0 + fabs(x - 0.5) * 0x1p60) + SF_ROUND_MAGIC) - SF_ROUND_MAGIC;
    c = (1.0 - z) * c + z * s;
    *sin_x = (1.0 - w) * s + w * c;
    *cos_x = (1.0 - w) * c + w * s;
}

double sf_dsp_sin_half_pi(double x) { return s_sin_poly(s_clamp(x, 0.0, 1.0)); }

void sf_dsp_sin_half_pi_n(double *dst, const double *x, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        v = v < 0.0 ? 0.0 : v;
        v = v > 1.0 ? 1.0 : v;
        dst[i] = v;
    }
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        dst[i] = s_sin_poly(dst[i]);
}

void sf_dsp_sincos_half_pi(double x, double *s, double *c) { s_sincos_poly(s_clamp(x, 0.0, 1.0), s, c); }

void sf_dsp_sincos_half_pi_n(double *s, double *restrict c, const double *x, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        v = v < 0.0 ? 0.0 : v;
        v = v > 1.0 ? 1.0 : v;
        s[i] = v;
    }
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        double si, co;
        s_sincos_poly(s[i], &si, &co);
        s[i] = si;
        c[i] = co;
    }
}
