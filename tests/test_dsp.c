/* test_dsp.c -- sf/dsp.h kernels against scalar double references.
 *
 * Every kernel runs at odd lengths (1, 3, 253, 4099) and on pointers one float
 * off the 64-byte alignment, on noise mixed with silence, full scale and
 * denormals, and must match the reference bit for bit: the vectorised loops
 * promise exactly the scalar IEEE results. The quantiser is checked against
 * hand-computed integers (ties to even, clipping, left-justification) and its
 * TPDF dither for range, mean, shape, independence and cut invariance. */
#include "sf/alloc.h"
#include "sf/dsp.h"
#include "testutil.h"

#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static const size_t k_lengths[] = {1, 3, 253, 4099};
#define N_LENGTHS  (sizeof k_lengths / sizeof k_lengths[0])
#define N_MISALIGN 2 /* 0 or 1 float off the alignment */

/* Test input: noise with silence, full scale, denormals and -0 mixed in. */
static float s_input(uint64_t seed, size_t i)
{
    switch ((i * 7 + seed) % 23) {
    case 0: return 0.0f;
    case 1: return 1.0f;
    case 2: return -1.0f;
    case 3: return 1e-40f; /* denormal */
    case 4: return -3e-39f;
    case 5: return -0.0f;
    default: return (float)tu_noise(seed, (int64_t)i);
    }
}

#define GUARD 777.0f /* fills the floats around a buffer: kernels must not touch them */

/* A 64-byte aligned block of n + 16 floats and its pointer `off` floats in;
 * everything outside p[0..n) holds GUARD. */
typedef struct {
    float *block;
    float *p;
    size_t n;
} buf_t;

static buf_t s_buf(size_t n, int off, uint64_t seed)
{
    buf_t b;
    b.block = sf_aligned_alloc(sizeof(float) * (n + 16));
    ck_assert_ptr_nonnull(b.block);
    ck_assert_uint_eq((uintptr_t)b.block % 64, 0);
    b.p = b.block + off;
    b.n = n;
    for (size_t i = 0; i < n + 16; i++)
        b.block[i] = GUARD;
    for (size_t i = 0; i < n; i++)
        b.p[i] = s_input(seed, i);
    return b;
}

static void s_check_guards(const buf_t *b)
{
    for (float *q = b->block; q < b->p; q++)
        ck_assert_msg(*q == GUARD, "written before the buffer");
    for (size_t i = b->n; b->p + i < b->block + b->n + 16; i++)
        ck_assert_msg(b->p[i] == GUARD, "written past the end at %zu", i);
}

/* ---- mix / add / scale ------------------------------------------------ */

typedef enum { OP_MIX, OP_ADD, OP_SCALE } op_t;

typedef struct {
    const char *name;
    op_t op;
    float gain;
} kernel_case_t;

static const kernel_case_t k_kernels[] = {
    {"mix 0.5", OP_MIX, 0.5f},     {"mix -0.7071", OP_MIX, -0.70710677f},
    {"mix 1e-3", OP_MIX, 1e-3f},   {"mix 0", OP_MIX, 0.0f},
    {"add", OP_ADD, 1.0f},         {"scale 0.3", OP_SCALE, 0.3f},
    {"scale -1", OP_SCALE, -1.0f}, {"scale 3e-30", OP_SCALE, 3e-30f}, /* products go denormal */
};
#define N_KERNELS (sizeof k_kernels / sizeof k_kernels[0])

/* The scalar reference in double: each float operation done exactly in
 * double and rounded once to float (innocuous double rounding, since
 * 53 >= 2 * 24 + 2), i.e. what IEEE float arithmetic must give. */
static float s_reference(op_t op, float d, float s, float gain)
{
    switch (op) {
    case OP_MIX: return (float)((double)d + (double)(float)((double)s * (double)gain));
    case OP_ADD: return (float)((double)d + (double)s);
    case OP_SCALE: return (float)((double)s * (double)gain);
    }
    return 0.0f;
}

START_TEST(test_kernels)
{
    const kernel_case_t *kc = &k_kernels[_i / (N_LENGTHS * N_MISALIGN * N_MISALIGN)];
    size_t rest = (size_t)_i % (N_LENGTHS * N_MISALIGN * N_MISALIGN);
    size_t n = k_lengths[rest / (N_MISALIGN * N_MISALIGN)];
    int dst_off = (int)(rest / N_MISALIGN) % N_MISALIGN;
    int src_off = (int)rest % N_MISALIGN;

    buf_t dst = s_buf(n, dst_off, 11), src = s_buf(n, src_off, 12);
    float *expect = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++)
        expect[i] = s_reference(kc->op, dst.p[i], src.p[i], kc->gain);
    switch (kc->op) {
    case OP_MIX: sf_dsp_mix(dst.p, src.p, n, kc->gain); break;
    case OP_ADD: sf_dsp_add(dst.p, src.p, n); break;
    case OP_SCALE: sf_dsp_scale(dst.p, src.p, n, kc->gain); break;
    }
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(memcmp(&dst.p[i], &expect[i], sizeof(float)) == 0,
                      "%s n=%zu offsets %d/%d: [%zu] = %a, expected %a", kc->name, n, dst_off, src_off, i,
                      (double)dst.p[i], (double)expect[i]);
    s_check_guards(&dst);
    s_check_guards(&src);
    free(expect);
    sf_free(dst.block);
    sf_free(src.block);
}
END_TEST

/* The double accumulator and its rounding back to float, against the plain
 * scalar double expressions. */
START_TEST(test_f64_kernels)
{
    size_t n = k_lengths[(size_t)_i / (N_MISALIGN * N_MISALIGN)];
    int dst_off = _i / N_MISALIGN % N_MISALIGN;
    int src_off = _i % N_MISALIGN;
    buf_t src = s_buf(n, src_off, 21);
    double *block = sf_aligned_alloc(sizeof(double) * (n + 8));
    double *acc = block + dst_off, *expect = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++)
        acc[i] = tu_noise(22, (int64_t)i) * 3.0 + 1e-300 * (double)(i % 3);
    for (size_t i = 0; i < n; i++)
        expect[i] = acc[i] + (double)src.p[i];
    sf_dsp_add_f64(acc, src.p, n);
    ck_assert_msg(memcmp(acc, expect, sizeof(double) * n) == 0, "add_f64 n=%zu %d/%d", n, dst_off, src_off);
    /* back to float: round to nearest, as a cast does */
    buf_t out = s_buf(n, src_off, 23);
    sf_dsp_f64_to_f32(out.p, acc, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(memcmp(&out.p[i], &(float){(float)acc[i]}, sizeof(float)) == 0, "f64_to_f32 [%zu]", i);
    s_check_guards(&out);
    s_check_guards(&src);
    free(expect);
    sf_free(block);
    sf_free(src.block);
    sf_free(out.block);
}
END_TEST

/* ---- interleave / deinterleave ------------------------------------------ */

static const int k_channel_counts[] = {1, 2, 3, 8};
#define N_CHANNEL_COUNTS (sizeof k_channel_counts / sizeof k_channel_counts[0])

START_TEST(test_interleave_roundtrip)
{
    int nc = k_channel_counts[_i / (N_LENGTHS * N_MISALIGN)];
    size_t n = k_lengths[(size_t)_i / N_MISALIGN % N_LENGTHS];
    int off = _i % N_MISALIGN;

    buf_t planar[8], back[8];
    const float *src[8];
    float *dst[8];
    for (int c = 0; c < nc; c++) {
        planar[c] = s_buf(n, off, 100 + (uint64_t)c);
        back[c] = s_buf(n, 1 - off, 200);
        src[c] = planar[c].p;
        dst[c] = back[c].p;
    }
    buf_t inter = s_buf(n * (size_t)nc, off, 300);
    sf_dsp_interleave(inter.p, src, nc, n);
    s_check_guards(&inter);
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < nc; c++)
            ck_assert_msg(memcmp(&inter.p[i * (size_t)nc + (size_t)c], &planar[c].p[i], 4) == 0,
                          "interleave %d ch n=%zu: frame %zu ch %d", nc, n, i, c);
    sf_dsp_deinterleave(dst, inter.p, nc, n);
    for (int c = 0; c < nc; c++)
        ck_assert_msg(memcmp(back[c].p, planar[c].p, sizeof(float) * n) == 0, "deinterleave %d ch n=%zu ch %d", nc, n,
                      c);
    for (int c = 0; c < nc; c++) {
        s_check_guards(&back[c]);
        sf_free(planar[c].block);
        sf_free(back[c].block);
    }
    sf_free(inter.block);
}
END_TEST

/* ---- quantize: known values ----------------------------------------------- */

typedef struct {
    double x; /* input (exact in float) */
    int bits;
    int64_t expect; /* right-justified integer */
    int clips;
} quant_case_t;

#define LSB16 (1.0 / 32768.0)
#define LSB24 (1.0 / 8388608.0)
#define LSB32 (1.0 / 2147483648.0)

static const quant_case_t k_quant[] = {
    /* plain values */
    {0.0, 16, 0, 0},
    {0.5, 16, 16384, 0},
    {-0.5, 16, -16384, 0},
    {0.25, 24, 2097152, 0},
    {-0.125, 24, -1048576, 0},
    {0.25, 32, 536870912, 0},
    {100 * LSB16, 16, 100, 0},
    {-12345 * LSB24, 24, -12345, 0},
    /* rounding: nearest, ties to even */
    {0.5 * LSB16, 16, 0, 0},
    {1.5 * LSB16, 16, 2, 0},
    {2.5 * LSB16, 16, 2, 0},
    {-0.5 * LSB16, 16, 0, 0},
    {-1.5 * LSB16, 16, -2, 0},
    {-2.5 * LSB16, 16, -2, 0},
    {0.4999 * LSB16, 16, 0, 0},
    {0.5001 * LSB16, 16, 1, 0},
    {0.5 * LSB24, 24, 0, 0},
    {1.5 * LSB24, 24, 2, 0},
    {3.5 * LSB24, 24, 4, 0},
    {-7.5 * LSB24, 24, -8, 0},
    {1.5 * LSB32, 32, 2, 0},
    {-2.5 * LSB32, 32, -2, 0},
    /* full scale: -1 fits, +1 clips to max */
    {1.0, 16, 32767, 1},
    {-1.0, 16, -32768, 0},
    {1.0, 24, 8388607, 1},
    {-1.0, 24, -8388608, 0},
    {1.0, 32, 2147483647, 1},
    {-1.0, 32, -2147483647 - 1, 0},
    {32767 * LSB16, 16, 32767, 0},
    {32767.49 * LSB16, 16, 32767, 0},
    {32767.5 * LSB16, 16, 32767, 1},   /* rounds to 32768: clips */
    {-32768.5 * LSB16, 16, -32768, 0}, /* tie to even: -32768 */
    {-32768.51 * LSB16, 16, -32768, 1},
    {8388607 * LSB24, 24, 8388607, 0},
    {1.5, 24, 8388607, 1},
    {-3.0, 24, -8388608, 1},
    {1e30, 16, 32767, 1},
    {-1e30, 32, -2147483647 - 1, 1},
    {1e-40, 24, 0, 0}, /* denormal */
    {-0.0, 24, 0, 0},
};
#define N_QUANT (sizeof k_quant / sizeof k_quant[0])

START_TEST(test_quantize_values)
{
    const quant_case_t *q = &k_quant[_i];
    float x = (float)q->x;
    const float *src[1] = {&x};
    int32_t out = 12345;
    size_t clips = sf_dsp_quantize(&out, src, 1, 1, q->bits, false, 0, 0, NULL);
    int64_t expect = q->expect * ((int64_t)1 << (32 - q->bits)); /* left-justified */
    ck_assert_msg(out == expect, "x=%a at %d bits: %d, expected %lld", (double)x, q->bits, out, (long long)expect);
    ck_assert_msg(clips == (size_t)q->clips, "x=%a at %d bits: %zu clips, expected %d", (double)x, q->bits, clips,
                  q->clips);
}
END_TEST

/* Meter peaks: every length around the 4-lane steps, NaN skipped in any lane. */
START_TEST(test_min_max_peak)
{
    float x[41];
    for (size_t n = 0; n <= 41; n++)
        for (int nan_at = -1; nan_at < (int)n; nan_at += 3) {
            for (size_t i = 0; i < n; i++)
                x[i] = (float)tu_noise(9, (int64_t)(i * 7 + n)) * 2.0f;
            if (nan_at >= 0)
                x[nan_at] = NAN;
            float lo = 0.25f, hi = -0.25f, peak = 0.5f;
            float wl = lo, wh = hi, wp = peak;
            for (size_t i = 0; i < n; i++)
                if (!isnan(x[i])) {
                    wl = fminf(wl, x[i]);
                    wh = fmaxf(wh, x[i]);
                    wp = fmaxf(wp, fabsf(x[i]));
                }
            sf_dsp_min_max_peak(x, n, &lo, &hi, &peak);
            ck_assert_msg(lo == wl && hi == wh && peak == wp, "n %zu nan at %d: %g %g %g, want %g %g %g", n, nan_at,
                          (double)lo, (double)hi, (double)peak, (double)wl, (double)wh, (double)wp);
        }
}
END_TEST

START_TEST(test_quantize_specials)
{
    /* inf clips to the rails; NaN becomes 0 and counts as a clip */
    float xs[3] = {INFINITY, -INFINITY, NAN};
    const float *src[1] = {xs};
    int32_t out[3];
    ck_assert_uint_eq(sf_dsp_quantize(out, src, 1, 3, 24, false, 0, 0, NULL), 3);
    ck_assert_int_eq(out[0], 8388607 * 256);
    ck_assert_int_eq(out[1], -8388608 * 256);
    ck_assert_int_eq(out[2], 0);
    /* the same in every lane of the vector loop, in stereo */
    float l[7] = {NAN, INFINITY, -INFINITY, 0.5f, NAN, 1.0f, -1.0f}, r[7] = {NAN, NAN, 2.0f, -INFINITY, 0.25f, 0, 0};
    const float *lr[2] = {l, r};
    int32_t out2[14];
    ck_assert_uint_eq(sf_dsp_quantize(out2, lr, 2, 7, 16, false, 0, 0, NULL), 9);
    const int32_t want[14] = {0,           0,           32767 << 16,    0, -32768 * 65536,
                              32767 << 16, 16384 << 16, -32768 * 65536, 0, 8192 << 16,
                              32767 << 16, 0,           -32768 * 65536, 0};
    for (int i = 0; i < 14; i++)
        ck_assert_msg(out2[i] == want[i], "sample %d: %d, want %d", i, out2[i], want[i]);
}
END_TEST

/* round to nearest, ties to even, clipped: the scalar reference */
static int64_t s_ref_quantize(double y, int bits, size_t *clips)
{
    double scale = ldexp(1.0, bits - 1);
    double r = nearbyint(y);
    if (r > scale - 1 || r < -scale)
        (*clips)++;
    if (r > scale - 1)
        r = scale - 1;
    if (r < -scale)
        r = -scale;
    return (int64_t)r * ((int64_t)1 << (32 - bits));
}

static const int k_bits[] = {16, 24, 32};

/* Whole buffers, several channels, odd lengths, misaligned source, with and
 * without dither, against the scalar reference built on sf_dsp_tpdf. */
START_TEST(test_quantize_reference)
{
    int bits = k_bits[_i % 3];
    bool dither = (_i / 3) % 2;
    size_t n = k_lengths[(size_t)_i / 6 % N_LENGTHS];
    for (int nc = 1; nc <= 3; nc++) { /* mono and stereo have paths of their own */
        const uint64_t key = 0xfeedULL + (uint64_t)_i;
        const int64_t first = 1000003;

        buf_t b[3];
        const float *src[3];
        for (int c = 0; c < nc; c++) {
            b[c] = s_buf(n, 1, 40 + (uint64_t)c);
            src[c] = b[c].p;
        }
        int32_t *out = malloc(sizeof(int32_t) * n * (size_t)nc);
        uint64_t full[3] = {0, 0, 0};
        size_t clips = sf_dsp_quantize(out, src, nc, n, bits, dither, key, first, full);
        for (int c = 0; c < nc; c++) {
            const int32_t top = (int32_t)(((1u << (bits - 1)) - 1u) << (32 - bits));
            uint64_t want = 0;
            for (size_t i = 0; i < n; i++)
                want += out[i * (size_t)nc + (size_t)c] == top || out[i * (size_t)nc + (size_t)c] == INT32_MIN;
            ck_assert_msg(full[c] == want, "bits %d dither %d n %zu ch %d: %llu at full scale, want %llu", bits, dither,
                          n, c, (unsigned long long)full[c], (unsigned long long)want);
        }
        size_t ref_clips = 0;
        for (size_t i = 0; i < n; i++)
            for (int c = 0; c < nc; c++) {
                double y = (double)src[c][i] * ldexp(1.0, bits - 1);
                if (dither)
                    y += sf_dsp_tpdf(key, c, first + (int64_t)i);
                int64_t expect = s_ref_quantize(y, bits, &ref_clips);
                ck_assert_msg(out[i * (size_t)nc + (size_t)c] == expect,
                              "bits %d dither %d n %zu: frame %zu ch %d: %d, expected %lld", bits, dither, n, i, c,
                              out[i * (size_t)nc + (size_t)c], (long long)expect);
            }
        ck_assert_uint_eq(clips, ref_clips);
        if (n > 23)
            ck_assert_uint_gt(clips, 0); /* the input holds +1.0 every 23 samples */
        free(out);
        for (int c = 0; c < nc; c++)
            sf_free(b[c].block);
    }
}
END_TEST

/* ---- dither ---------------------------------------------------------------- */

START_TEST(test_tpdf_statistics)
{
    enum { N = 1000000, BINS = 20 };
    double sum = 0, sum2 = 0, lag = 0, cross = 0, prev = 0, lo = 1, hi = -1;
    long hist[BINS] = {0};
    for (int64_t i = 0; i < N; i++) {
        double d = sf_dsp_tpdf(42, 0, i);
        double e = sf_dsp_tpdf(42, 1, i);
        ck_assert_msg(d > -1.0 && d < 1.0, "tpdf(%lld) = %.17g outside (-1, 1)", (long long)i, d);
        sum += d;
        sum2 += d * d;
        lag += d * prev;
        cross += d * e;
        prev = d;
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        int bin = (int)((d + 1.0) / 2.0 * BINS);
        hist[bin < BINS ? bin : BINS - 1]++;
    }
    double mean = sum / N, var = sum2 / N - mean * mean;
    ck_assert_msg(fabs(mean) < 0.003, "mean %g", mean);
    ck_assert_msg(fabs(var - 1.0 / 6.0) < 0.003, "variance %g, TPDF has 1/6", var);
    ck_assert_msg(fabs(lag / N) < 0.003, "frame-to-frame correlation %g", lag / N);
    ck_assert_msg(fabs(cross / N) < 0.003, "channel-to-channel correlation %g", cross / N);
    ck_assert_msg(lo < -0.98 && hi > 0.98, "range [%g, %g] does not reach near +-1", lo, hi);
    /* triangular: P(bin) = integral of (1 - |x|) over the bin */
    for (int b = 0; b < BINS; b++) {
        double a = -1.0 + 2.0 * b / BINS, z = a + 2.0 / BINS;
        double cdf_a = a < 0 ? (a + 1) * (a + 1) / 2 : 1 - (1 - a) * (1 - a) / 2;
        double cdf_z = z < 0 ? (z + 1) * (z + 1) / 2 : 1 - (1 - z) * (1 - z) / 2;
        double expect = (cdf_z - cdf_a) * N;
        ck_assert_msg(fabs((double)hist[b] - expect) < 0.06 * expect + 60,
                      "bin %d [%g, %g): %ld, triangular expects %.0f", b, a, z, hist[b], expect);
    }
}
END_TEST

START_TEST(test_tpdf_keys_and_channels)
{
    /* every (key, channel) is its own stream: differ at (almost) every frame */
    enum { N = 10000 };
    long same_key = 0, same_ch = 0;
    for (int64_t i = 0; i < N; i++) {
        double a = sf_dsp_tpdf(1, 0, i);
        same_key += a == sf_dsp_tpdf(2, 0, i);
        same_ch += a == sf_dsp_tpdf(1, 1, i);
        ck_assert(a == sf_dsp_tpdf(1, 0, i)); /* a pure function */
    }
    ck_assert_int_eq(same_key, 0);
    ck_assert_int_eq(same_ch, 0);
    /* and the quantised noise of silence differs between keys */
    float zeros[N] = {0};
    const float *src[1] = {zeros};
    int32_t *qa = malloc(sizeof(int32_t) * N), *qb = malloc(sizeof(int32_t) * N);
    sf_dsp_quantize(qa, src, 1, N, 16, true, 1, 0, NULL);
    sf_dsp_quantize(qb, src, 1, N, 16, true, 2, 0, NULL);
    long differ = 0, nonzero = 0;
    for (int i = 0; i < N; i++) {
        differ += qa[i] != qb[i];
        nonzero += qa[i] != 0;
        ck_assert(qa[i] == 0 || qa[i] == 65536 || qa[i] == -65536);
    }
    /* P(|d| > 0.5) = 1/4: a quarter nonzero; two keys differ ~3/8 of the time */
    ck_assert_msg(nonzero > N / 5 && nonzero < N * 3 / 10, "%ld of %d nonzero", nonzero, N);
    ck_assert_msg(differ > N / 4, "keys 1 and 2 differ at only %ld of %d samples", differ, N);
    free(qa);
    free(qb);
}
END_TEST

/* The noise of a sample depends on its absolute frame only: one call over
 * 1000 frames equals three calls over odd pieces with first_frame offsets. */
START_TEST(test_dither_cut_invariance)
{
    enum { N = 1000, NC = 2 };
    const int64_t first = 48000LL * 3600 * 5 + 17; /* five hours in */
    const int bits = k_bits[_i];
    float l[N], r[N];
    for (int i = 0; i < N; i++) {
        l[i] = (float)(0.3 * tu_noise(5, i));
        r[i] = (float)(1e-5 * tu_noise(6, i)); /* near silence: dither dominates */
    }
    const float *src[NC] = {l, r};
    int32_t whole[N * NC], cut[N * NC];
    sf_dsp_quantize(whole, src, NC, N, bits, true, 0xabcdef, first, NULL);
    const size_t pieces[] = {1, 498, 501};
    size_t at = 0;
    for (size_t p = 0; p < 3; p++) {
        const float *part[NC] = {l + at, r + at};
        sf_dsp_quantize(cut + at * NC, part, NC, pieces[p], bits, true, 0xabcdef, first + (int64_t)at, NULL);
        at += pieces[p];
    }
    ck_assert_uint_eq(at, N);
    ck_assert_msg(memcmp(whole, cut, sizeof whole) == 0, "cut changes the dithered samples");
    /* and dither is really on: some sample differs from the undithered one */
    int32_t plain[N * NC];
    sf_dsp_quantize(plain, src, NC, N, bits, false, 0, 0, NULL);
    ck_assert(memcmp(whole, plain, sizeof whole) != 0);
}
END_TEST

/* ---- gains, summing and envelope kernels -------------------------------------- */

typedef enum {
    GK_MIX_F64,
    GK_MIX_F64_GAINS,
    GK_MUL,
    GK_GAINS,
    GK_GAINS2,
    GK_MUL_F64,
    GK_SCALE_F64,
    GK_COUNT
} gain_kernel_t;
static const char *const k_gk_names[GK_COUNT] = {"mix_f64",    "mix_f64_gains", "mul",      "gains_f32",
                                                 "gains2_f32", "mul_f64",       "scale_f64"};

/* Each against its scalar expression written out in double where a float
 * operation is exact in double then rounded once (53 >= 2 * 24 + 2). */
START_TEST(test_gain_kernels)
{
    gain_kernel_t k = (gain_kernel_t)(_i / (N_LENGTHS * N_MISALIGN));
    size_t n = k_lengths[(size_t)_i / N_MISALIGN % N_LENGTHS];
    int off = _i % N_MISALIGN;
    buf_t a = s_buf(n, off, 31), b = s_buf(n, 1 - off, 32), c = s_buf(n, off, 33);
    double *dblock = sf_aligned_alloc(sizeof(double) * (n + 8) * 3);
    double *da = dblock + off, *db = dblock + (n + 8) + (1 - off), *dd = dblock + 2 * (n + 8) + off;
    for (size_t i = 0; i < n; i++) {
        da[i] = tu_noise(34, (int64_t)i) * 2.0;
        db[i] = tu_noise(35, (int64_t)i) + (i % 5 == 0 ? 1e-300 : 0.0);
        dd[i] = tu_noise(36, (int64_t)i) * 4.0;
    }
    const float gain = -0.3377f;
    const double dk = 0.70710678118654757;
    double *expect_d = malloc(sizeof(double) * n);
    float *expect_f = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) {
        float x = a.p[i], g = b.p[i];
        switch (k) {
        case GK_MIX_F64: expect_d[i] = dd[i] + (double)(float)((double)x * (double)gain); break;
        case GK_MIX_F64_GAINS: expect_d[i] = dd[i] + (double)(float)((double)x * (double)g); break;
        case GK_MUL: expect_f[i] = (float)((double)x * (double)g); break;
        case GK_GAINS: expect_f[i] = (float)(da[i] * dk); break;
        case GK_GAINS2: expect_f[i] = (float)(da[i] * db[i]); break;
        case GK_MUL_F64: expect_d[i] = da[i] * db[i]; break;
        case GK_SCALE_F64: expect_d[i] = da[i] * dk; break;
        default: break;
        }
    }
    bool out_f = k == GK_MUL || k == GK_GAINS || k == GK_GAINS2;
    switch (k) {
    case GK_MIX_F64: sf_dsp_mix_f64(dd, a.p, n, gain); break;
    case GK_MIX_F64_GAINS: sf_dsp_mix_f64_gains(dd, a.p, b.p, n); break;
    case GK_MUL: sf_dsp_mul(c.p, a.p, b.p, n); break;
    case GK_GAINS: sf_dsp_gains_f32(c.p, da, dk, n); break;
    case GK_GAINS2: sf_dsp_gains2_f32(c.p, da, db, n); break;
    case GK_MUL_F64: sf_dsp_mul_f64(dd, da, db, n); break;
    case GK_SCALE_F64: sf_dsp_scale_f64(dd, da, dk, n); break;
    default: break;
    }
    for (size_t i = 0; i < n; i++) {
        if (out_f)
            ck_assert_msg(memcmp(&c.p[i], &expect_f[i], sizeof(float)) == 0, "%s n=%zu off %d: [%zu] = %a, expected %a",
                          k_gk_names[k], n, off, i, (double)c.p[i], (double)expect_f[i]);
        else
            ck_assert_msg(memcmp(&dd[i], &expect_d[i], sizeof(double)) == 0, "%s n=%zu off %d: [%zu] = %a, expected %a",
                          k_gk_names[k], n, off, i, dd[i], expect_d[i]);
    }
    s_check_guards(&a);
    s_check_guards(&b);
    s_check_guards(&c);
    free(expect_d);
    free(expect_f);
    sf_free(dblock);
    sf_free(a.block);
    sf_free(b.block);
    sf_free(c.block);
}
END_TEST

/* dB to gain: against pow over the range levels live in, exact at the
 * points that matter, scalar and array bit-identical (in place too). */
START_TEST(test_db_to_gain)
{
    ck_assert(sf_dsp_db_to_gain(0.0) == 1.0);
    ck_assert(sf_dsp_db_to_gain(-0.0) == 1.0);
    ck_assert(sf_dsp_db_to_gain(-(double)INFINITY) == 0.0);
    ck_assert(!signbit(sf_dsp_db_to_gain(-(double)INFINITY)));
    ck_assert(sf_dsp_db_to_gain(-6200.0) == 0.0);
    ck_assert(sf_dsp_db_to_gain(-1e300) == 0.0);
    ck_assert(sf_dsp_db_to_gain(-6000.0) > 0.0); /* 1e-300: still a normal double */
    double worst = 0.0, worst_db = 0.0;
    enum { N = 200001 };
    double *db = malloc(sizeof(double) * N), *g = malloc(sizeof(double) * N);
    for (int i = 0; i < N; i++) {
        db[i] = -300.0 + 360.0 * i / (N - 1) + tu_noise(41, i) * 1e-3; /* -300 .. +60 dB */
        double want = pow(10.0, db[i] / 20.0);
        double got = sf_dsp_db_to_gain(db[i]);
        double rel = fabs(got - want) / want;
        /* two ulp, plus y's error: the roundings of log2(10)/20 and of db * it,
         * each up to |y| 2^-53, times ln 2: |db| 2.5e-17 */
        ck_assert_msg(rel <= 4.5e-16 + fabs(db[i]) * 2.6e-17, "%.17g dB: %a vs pow %a", db[i], got, want);
        if (rel > worst) {
            worst = rel;
            worst_db = db[i];
        }
    }
    /* Measured (gcc 12, x86-64): 5.9e-15 relative at -293.6 dB (27 ulp): y =
     * db * log2(10)/20 carries the rounding of |y| <= 50 and of the constant,
     * times ln 2. A float gain's own rounding is 6e-8: 1e7 times more. */
    fprintf(stderr, "test_dsp: db_to_gain max relative error vs pow %.3g at %.4g dB\n", worst, worst_db);
    ck_assert_msg(worst < 1e-14, "relative error %g at %g dB", worst, worst_db);
    /* small levels, where most faders sit: within 2 ulp of pow */
    for (double d = -12.0; d <= 12.0; d += 0.25) {
        double want = pow(10.0, d / 20.0);
        ck_assert_msg(fabs(sf_dsp_db_to_gain(d) - want) <= 4.5e-16 * want, "%g dB", d);
    }
    /* the array form: same bits, odd lengths, in place, specials */
    db[0] = -(double)INFINITY;
    db[1] = 0.0;
    db[2] = -7000.0;
    db[3] = 1e9;
    db[4] = -0.0;
    for (size_t li = 0; li < N_LENGTHS; li++) {
        size_t n = k_lengths[li];
        sf_dsp_db_to_gain_n(g, db, n);
        for (size_t i = 0; i < n; i++) {
            double one = sf_dsp_db_to_gain(db[i]);
            ck_assert_msg(memcmp(&g[i], &one, sizeof one) == 0, "n=%zu [%zu]: %a vs %a", n, i, g[i], one);
        }
    }
    memcpy(g, db, sizeof(double) * 4099);
    sf_dsp_db_to_gain_n(g, g, 4099);
    for (size_t i = 0; i < 4099; i++) {
        double one = sf_dsp_db_to_gain(db[i]);
        ck_assert_msg(memcmp(&g[i], &one, sizeof one) == 0, "in place [%zu]", i);
    }
    free(db);
    free(g);
}
END_TEST

/* sin(x pi/2): against libm, exact ends, the two halves agree, array form
 * bit-identical, clamped outside [0, 1]. */
START_TEST(test_sin_half_pi)
{
    ck_assert(sf_dsp_sin_half_pi(0.0) == 0.0);
    ck_assert(sf_dsp_sin_half_pi(1.0) == 1.0);
    ck_assert(sf_dsp_sin_half_pi(-0.5) == 0.0);
    ck_assert(sf_dsp_sin_half_pi(7.0) == 1.0);
    enum { N = 100001 };
    double *x = malloc(sizeof(double) * N), *y = malloc(sizeof(double) * N);
    double worst = 0.0, worst_pow = 0.0;
    for (int i = 0; i < N; i++) {
        x[i] = (double)i / (N - 1);
        if (i % 7 == 3)
            x[i] = fabs(tu_noise(42, i));
        double got = sf_dsp_sin_half_pi(x[i]);
        double e = fabs(got - sin(x[i] * M_PI / 2));
        worst = e > worst ? e : worst;
        /* constant power: a pan law built from it keeps L^2 + R^2 = 1 */
        double other = sf_dsp_sin_half_pi(1.0 - x[i]);
        double p = fabs(got * got + other * other - 1.0);
        worst_pow = p > worst_pow ? p : worst_pow;
    }
    fprintf(stderr, "test_dsp: sin_half_pi max error vs libm %.3g, |s^2 + c^2 - 1| %.3g\n", worst, worst_pow);
    ck_assert_msg(worst <= 2.3e-16, "max error %g", worst);
    ck_assert_msg(worst_pow <= 4.5e-16, "power error %g", worst_pow);
    /* the centre: both sides the same number */
    ck_assert(sf_dsp_sin_half_pi(0.5) == sf_dsp_sin_half_pi(1.0 - 0.5));
    x[0] = -1e-300;
    x[1] = 1.0 + 1e-15;
    x[2] = -0.0;
    x[3] = 0.5;
    x[4] = 0.5 + 0x1p-53;
    for (size_t li = 0; li < N_LENGTHS; li++) {
        size_t n = k_lengths[li];
        sf_dsp_sin_half_pi_n(y, x, n);
        for (size_t i = 0; i < n; i++) {
            double one = sf_dsp_sin_half_pi(x[i]);
            ck_assert_msg(memcmp(&y[i], &one, sizeof one) == 0, "n=%zu [%zu]: %a vs %a", n, i, y[i], one);
        }
    }
    /* sincos: its sine is sin_half_pi to the bit, its cosine within 1 ulp of
     * libm, the centre equal on both sides, the ends exact, arrays identical */
    double *c = malloc(sizeof(double) * N);
    double worst_c = 0.0;
    for (int i = 0; i < N; i++) {
        double si, co;
        sf_dsp_sincos_half_pi(x[i], &si, &co);
        double one = sf_dsp_sin_half_pi(x[i]);
        ck_assert_msg(memcmp(&si, &one, sizeof si) == 0, "sincos sin at %a", x[i]);
        double v = x[i] < 0 ? 0 : x[i] > 1 ? 1 : x[i];
        double e = fabs(co - cos(v * M_PI / 2));
        worst_c = e > worst_c ? e : worst_c;
    }
    ck_assert_msg(worst_c <= 2.3e-16, "cos error %g", worst_c);
    double si, co;
    sf_dsp_sincos_half_pi(0.5, &si, &co);
    ck_assert(si == co);
    sf_dsp_sincos_half_pi(0.0, &si, &co);
    ck_assert(si == 0.0 && co == 1.0);
    sf_dsp_sincos_half_pi(1.0, &si, &co);
    ck_assert(si == 1.0 && co == 0.0);
    for (size_t li = 0; li < N_LENGTHS; li++) {
        size_t n = k_lengths[li];
        memcpy(y, x, sizeof(double) * n);
        sf_dsp_sincos_half_pi_n(y, c, y, n); /* in place */
        for (size_t i = 0; i < n; i++) {
            sf_dsp_sincos_half_pi(x[i], &si, &co);
            ck_assert_msg(memcmp(&y[i], &si, sizeof si) == 0 && memcmp(&c[i], &co, sizeof co) == 0, "n=%zu [%zu]", n,
                          i);
        }
    }
    free(c);
    free(x);
    free(y);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("dsp");
    TCase *tc = tcase_create("kernels");
    tcase_add_loop_test(tc, test_kernels, 0, (int)(N_KERNELS * N_LENGTHS * N_MISALIGN * N_MISALIGN));
    tcase_add_loop_test(tc, test_f64_kernels, 0, (int)(N_LENGTHS * N_MISALIGN * N_MISALIGN));
    tcase_add_loop_test(tc, test_interleave_roundtrip, 0, (int)(N_CHANNEL_COUNTS * N_LENGTHS * N_MISALIGN));
    tcase_add_loop_test(tc, test_gain_kernels, 0, (int)(GK_COUNT * N_LENGTHS * N_MISALIGN));
    tcase_add_test(tc, test_db_to_gain);
    tcase_add_test(tc, test_sin_half_pi);
    suite_add_tcase(s, tc);
    tc = tcase_create("quantize");
    tcase_add_loop_test(tc, test_quantize_values, 0, (int)N_QUANT);
    tcase_add_test(tc, test_quantize_specials);
    tcase_add_test(tc, test_min_max_peak);
    tcase_add_loop_test(tc, test_quantize_reference, 0, (int)(6 * N_LENGTHS));
    suite_add_tcase(s, tc);
    tc = tcase_create("dither");
    tcase_add_test(tc, test_tpdf_statistics);
    tcase_add_test(tc, test_tpdf_keys_and_channels);
    tcase_add_loop_test(tc, test_dither_cut_invariance, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(s_suite()); }
