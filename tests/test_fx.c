/* test_fx.c -- gain, eq, delay and convolve (sf/fx.h) against references
 * computed here, in double, independently of the code under test:
 *
 *   - gain: bit-exact at 0 dB, one rounding of x * 10^(db/20) otherwise;
 *   - eq: the magnitude of the measured impulse response's DFT against the
 *     cookbook's analog prototypes through the bilinear transform
 *     (|H(e^jw)| = |H(j tan(w/2) / tan(w0/2))|), every type; a 20 Hz
 *     high-pass on 10 s of noise against a transposed direct form II in
 *     double with libm's sin/cos, <= -100 dB;
 *   - delay: the exact echo train of an impulse, rounding of the time;
 *   - convolve: direct convolution in double, <= -110 dB, IRs of 1, 17,
 *     1000 and 48000 frames, mono and stereo, with mix;
 *   - every effect: process(a); process(b) == process(a + b) bit for bit
 *     for random cuts (zero-length calls included), lengths 1, 3, 253, 4099,
 *     reset == fresh init;
 *   - eq kernels: bit for bit the per-sample DF-I reference (one channel,
 *     one call at a time) for random parameters of every type, 1..8
 *     channels, bursts decaying into the flush, random cuts and odd lengths;
 *     sf_fx_process_eq_cascade of 1..6 stages == the stages called in turn
 *     (output and state);
 *   - tails: after an impulse the output stays below the threshold from
 *     tail_frames on, and (eq, delay) is not yet below somewhat earlier;
 *   - errors: Nyquist, missing IR, channel mismatch, allocation failures.
 */
#include "sf/alloc.h"
#include "sf/dsp.h"
#include "sf/fx.h"
#include "testutil.h"

#include <check.h>
#include <complex.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define MAX_CH 8

static const size_t k_lengths[] = {1, 3, 253, 4099};
#define N_LENGTHS (sizeof k_lengths / sizeof k_lengths[0])

/* ---- signals ---------------------------------------------------------------- */

/* Noise with silence, full scale, denormals and -0 mixed in (STYLE.md). */
static float s_sample(uint64_t seed, size_t i)
{
    switch ((i * 7 + seed) % 29) {
    case 0: return 0.0f;
    case 1: return 1.0f;
    case 2: return -1.0f;
    case 3: return 1e-40f;
    case 4: return -3e-39f;
    case 5: return -0.0f;
    default: return (float)(0.5 * tu_noise(seed, (int64_t)i));
    }
}

/* Mixed input, with silence over [12000, 18000) (tails ringing out). */
static tu_sig_t s_mixed(int n_ch, size_t n, uint64_t seed)
{
    tu_sig_t s = tu_sig(n_ch, n);
    for (int c = 0; c < n_ch; c++)
        for (size_t i = 0; i < n; i++)
            s.ch[c][i] = (i >= 12000 && i < 18000) ? 0.0f : s_sample(seed + (uint64_t)c * 101, i);
    return s;
}

static tu_sig_t s_noise(int n_ch, size_t n, size_t n_nonzero, uint64_t seed)
{
    tu_sig_t s = tu_sig(n_ch, n);
    for (int c = 0; c < n_ch; c++)
        for (size_t i = 0; i < n_nonzero && i < n; i++)
            s.ch[c][i] = (float)(0.5 * tu_noise(seed + (uint64_t)c * 7919, (int64_t)i));
    return s;
}

static tu_sig_t s_impulse(int n_ch, size_t n)
{
    tu_sig_t s = tu_sig(n_ch, n);
    for (int c = 0; c < n_ch; c++)
        s.ch[c][0] = 1.0f;
    return s;
}

static uint64_t s_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- running effects ------------------------------------------------------- */

static void s_init(sf_fx_t *fx, const sf_fx_params_t *p, int n_ch, int rate)
{
    sf_err_t e = {0};
    sf_rc rc = sf_fx_init(fx, p, n_ch, rate, &e);
    ck_assert_msg(rc == SF_OK, "sf_fx_init: %s", e.msg);
}

/* Processes s in place in one call (split_seed 0) or in random cuts,
 * zero-length calls included. */
static void s_process(sf_fx_t *fx, tu_sig_t *s, uint64_t split_seed)
{
    size_t at = 0;
    uint64_t r = split_seed;
    while (at < s->n) {
        size_t n = s->n - at;
        if (split_seed) {
            uint64_t k = s_rand(&r);
            switch (k % 5) {
            case 0: n = 0; break;
            case 1: n = 1; break;
            case 2: n = 2 + (size_t)(k >> 8) % 17; break;
            default: n = 1 + (size_t)(k >> 8) % 3000; break;
            }
            if (n > s->n - at)
                n = s->n - at;
        }
        float *ch[MAX_CH];
        for (int c = 0; c < s->n_ch; c++)
            ch[c] = s->ch[c] + at;
        sf_fx_process(fx, ch, n);
        at += n;
    }
}

static void s_run(const sf_fx_params_t *p, int rate, tu_sig_t *s, uint64_t split_seed)
{
    sf_fx_t fx;
    s_init(&fx, p, s->n_ch, rate);
    s_process(&fx, s, split_seed);
    sf_fx_free(&fx);
}

static sf_fx_params_t s_gain(double db) { return (sf_fx_params_t){.kind = SF_FX_GAIN, .u.gain = {db}}; }

static sf_fx_params_t s_eq(sf_eq_type_t type, double freq, double gain_db, double q)
{
    return (sf_fx_params_t){.kind = SF_FX_EQ, .u.eq = {type, freq, gain_db, q}};
}

static sf_fx_params_t s_delay(double time_ms, double feedback, double mix)
{
    return (sf_fx_params_t){.kind = SF_FX_DELAY, .u.delay = {time_ms, feedback, mix}};
}

static sf_fx_params_t s_convolve(const char *path, double mix)
{
    return (sf_fx_params_t){.kind = SF_FX_CONVOLVE, .u.convolve = {path, mix}};
}

/* 10 log10(sum e^2 / sum ref^2) and 20 log10(max |e| / max |ref|). */
typedef struct {
    double energy_db, peak_db;
} err_t;

static void s_err_add(const double *ref, const float *got, size_t n, double acc[4])
{
    for (size_t i = 0; i < n; i++) {
        double e = (double)got[i] - ref[i];
        acc[0] += e * e;
        acc[1] += ref[i] * ref[i];
        acc[2] = fmax(acc[2], fabs(e));
        acc[3] = fmax(acc[3], fabs(ref[i]));
    }
}

static err_t s_err(const double acc[4])
{
    return (err_t){10 * log10(acc[0] / acc[1] + 1e-300), 20 * log10(acc[2] / acc[3] + 1e-300)};
}

/* ---- gain ------------------------------------------------------------------ */

START_TEST(test_gain)
{
    static const double dbs[] = {0, 6, -0.5, -120, 24};
    for (size_t d = 0; d < sizeof dbs / sizeof *dbs; d++) {
        sf_fx_params_t p = s_gain(dbs[d]);
        ck_assert_int_eq(sf_fx_tail_frames(&p, 48000, -144), 0);
        ck_assert_int_eq(sf_fx_latency_frames(&p, 48000), 0);
        const double g = pow(10.0, dbs[d] / 20.0);
        for (size_t l = 0; l < N_LENGTHS; l++) {
            tu_sig_t in = s_mixed(2, k_lengths[l], 3 + l);
            tu_sig_t out = tu_sig_copy(&in);
            s_run(&p, 48000, &out, 0);
            for (int c = 0; c < 2; c++)
                for (size_t i = 0; i < in.n; i++) {
                    if (dbs[d] == 0) {
                        ck_assert_msg(memcmp(&in.ch[c][i], &out.ch[c][i], sizeof(float)) == 0,
                                      "0 dB changed sample %zu", i);
                        continue;
                    }
                    double want = (double)in.ch[c][i] * g;
                    ck_assert_msg(fabs((double)out.ch[c][i] - want) <= fabs(want) * 6.0e-8 + 1e-45,
                                  "%g dB: %.9g, want %.9g", dbs[d], (double)out.ch[c][i], want);
                }
            tu_sig_free(&in);
            tu_sig_free(&out);
        }
    }
}
END_TEST

/* ---- eq: magnitude response against the analog prototypes ------------------ */

/* The cookbook's analog prototype H(s), s normalised to the corner. */
static double complex s_proto(sf_eq_type_t type, double complex s, double gain_db, double q)
{
    const double A = pow(10.0, gain_db / 40.0), sa = sqrt(A) / q;
    const double complex s2 = s * s;
    switch (type) {
    case SF_EQ_LOWPASS: return 1 / (s2 + s / q + 1);
    case SF_EQ_HIGHPASS: return s2 / (s2 + s / q + 1);
    case SF_EQ_BANDPASS: return (s / q) / (s2 + s / q + 1);
    case SF_EQ_NOTCH: return (s2 + 1) / (s2 + s / q + 1);
    case SF_EQ_PEAK: return (s2 + s * (A / q) + 1) / (s2 + s / (A * q) + 1);
    case SF_EQ_LOWSHELF: return A * (s2 + sa * s + A) / (A * s2 + sa * s + 1);
    case SF_EQ_HIGHSHELF: return A * (A * s2 + sa * s + 1) / (s2 + sa * s + A);
    }
    return 0;
}

/* |H(e^jw)| by the bilinear transform with the corner prewarped. */
static double s_expected_mag(const sf_fx_params_t *p, int rate, double f)
{
    const double w = 2 * M_PI * f / rate, w0 = 2 * M_PI * p->u.eq.freq / rate;
    const double omega = tan(w / 2) / tan(w0 / 2);
    return cabs(s_proto(p->u.eq.type, CMPLX(0.0, omega), p->u.eq.gain_db, p->u.eq.q));
}

typedef struct {
    sf_eq_type_t type;
    double freq, gain_db, q;
    int rate;
} eq_case_t;

static const eq_case_t k_eq_cases[] = {
    {SF_EQ_LOWPASS, 1000, 0, 0.707, 48000},     {SF_EQ_LOWPASS, 18000, 0, 3, 44100},
    {SF_EQ_HIGHPASS, 80, 0, 0.707, 48000},      {SF_EQ_HIGHPASS, 500, 0, 5, 96000},
    {SF_EQ_BANDPASS, 2000, 0, 1.5, 48000},      {SF_EQ_BANDPASS, 300, 0, 0.3, 44100},
    {SF_EQ_NOTCH, 3000, 0, 4, 48000},           {SF_EQ_PEAK, 3000, 2.5, 1, 48000},
    {SF_EQ_PEAK, 200, -12, 8, 44100},           {SF_EQ_PEAK, 9000, 18, 0.4, 48000},
    {SF_EQ_LOWSHELF, 150, 6, 0.707, 48000},     {SF_EQ_LOWSHELF, 300, -9, 1.2, 44100},
    {SF_EQ_HIGHSHELF, 6000, 4.5, 0.707, 48000}, {SF_EQ_HIGHSHELF, 10000, -15, 0.5, 96000},
};
#define N_EQ_CASES (sizeof k_eq_cases / sizeof k_eq_cases[0])

START_TEST(test_eq_response)
{
    const eq_case_t *t = &k_eq_cases[_i];
    sf_fx_params_t p = s_eq(t->type, t->freq, t->gain_db, t->q);
    const size_t n = 1 << 17;
    ck_assert_int_lt(sf_fx_tail_frames(&p, t->rate, -150), (int64_t)n);
    tu_sig_t s = s_impulse(1, n);
    s_run(&p, t->rate, &s, 0);
    static const double ratios[] = {0, 0.1, 0.5, 0.9, 1, 1.1, 2, 10};
    double fs[sizeof ratios / sizeof *ratios + 1];
    size_t n_f = 0;
    for (size_t k = 0; k < sizeof ratios / sizeof *ratios; k++)
        if (ratios[k] * t->freq < 0.49 * t->rate)
            fs[n_f++] = ratios[k] * t->freq;
    fs[n_f++] = 0.45 * t->rate;
    for (size_t k = 0; k < n_f; k++) {
        const double w = 2 * M_PI * fs[k] / t->rate;
        double complex h = 0;
        for (size_t i = 0; i < n; i++)
            h += (double)s.ch[0][i] * cexp(CMPLX(0.0, -w * (double)i));
        const double got = cabs(h), want = s_expected_mag(&p, t->rate, fs[k]);
        ck_assert_msg(fabs(got - want) <= 2e-6 * (1 + want), "eq type %d at %g Hz (f0 %g): |H| %.9g, want %.9g",
                      (int)t->type, fs[k], t->freq, got, want);
    }
    tu_sig_free(&s);
}
END_TEST

/* ---- eq: the 20 Hz high-pass against a double-precision reference ----------- */

/* Cookbook high-pass from libm's sin/cos, transposed direct form II. */
static void s_ref_highpass(const float *x, double *y, size_t n, double f0, double q, double rate)
{
    const double w0 = 2 * M_PI * f0 / rate, cs = cos(w0), alpha = sin(w0) / (2 * q), a0 = 1 + alpha;
    const double b0 = (1 + cs) / 2 / a0, b1 = -(1 + cs) / a0, b2 = (1 + cs) / 2 / a0;
    const double a1 = -2 * cs / a0, a2 = (1 - alpha) / a0;
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        const double in = (double)x[i], out = b0 * in + s1;
        s1 = b1 * in - a1 * out + s2;
        s2 = b2 * in - a2 * out;
        y[i] = out;
    }
}

START_TEST(test_eq_highpass_20hz_reference)
{
    const size_t n = 480000; /* 10 s */
    sf_fx_params_t p = s_eq(SF_EQ_HIGHPASS, 20, 0, 0.707);
    tu_sig_t in = s_noise(2, n, n, 42);
    for (int c = 0; c < 2; c++) /* a DC offset and a slow swell: what a high-pass is for */
        for (size_t i = 0; i < n; i++)
            in.ch[c][i] = (float)((double)in.ch[c][i] * 0.5 + 0.25 + 0.2 * sin(2 * M_PI * 3.0 * (double)i / 48000));
    tu_sig_t one = tu_sig_copy(&in), cut = tu_sig_copy(&in);
    s_run(&p, 48000, &one, 0);
    s_run(&p, 48000, &cut, 99);
    ck_assert(tu_sig_equal(&one, &cut));
    double *ref = malloc(n * sizeof(double));
    double acc[4] = {0};
    for (int c = 0; c < 2; c++) {
        s_ref_highpass(in.ch[c], ref, n, 20, 0.707, 48000);
        s_err_add(ref, one.ch[c], n, acc);
        for (size_t l = 0; l < N_LENGTHS; l++) { /* odd lengths: the prefix matches too */
            tu_sig_t pre = tu_sig(1, k_lengths[l]);
            memcpy(pre.ch[0], in.ch[c], pre.n * sizeof(float));
            s_run(&p, 48000, &pre, 0);
            ck_assert(memcmp(pre.ch[0], one.ch[c], pre.n * sizeof(float)) == 0);
            tu_sig_free(&pre);
        }
    }
    err_t e = s_err(acc);
    printf("eq 20 Hz high-pass vs double reference: %.1f dB (energy), %.1f dB (peak)\n", e.energy_db, e.peak_db);
    ck_assert_msg(e.energy_db <= -100 && e.peak_db <= -100, "%.1f dB / %.1f dB", e.energy_db, e.peak_db);
    free(ref);
    tu_sig_free(&in);
    tu_sig_free(&one);
    tu_sig_free(&cut);
}
END_TEST

START_TEST(test_eq_errors)
{
    sf_fx_t fx;
    sf_err_t e = {0};
    sf_fx_params_t p = s_eq(SF_EQ_PEAK, 30000, 3, 1);
    ck_assert_int_eq(sf_fx_init(&fx, &p, 2, 48000, &e), SF_E_INPUT);
    ck_assert_str_eq(e.msg, "eq frequency 30000 Hz is not below half the sample rate (24000 Hz)");
    ck_assert_ptr_null(fx.state);
    p = s_eq(SF_EQ_LOWPASS, 22050, 0, 0.707);
    ck_assert_int_eq(sf_fx_init(&fx, &p, 1, 44100, &e), SF_E_INPUT);
    ck_assert_str_eq(e.msg, "eq frequency 22050 Hz is not below half the sample rate (22050 Hz)");
    p = s_eq(SF_EQ_LOWPASS, 22050, 0, 0.707); /* fine at 48 kHz */
    ck_assert_int_eq(sf_fx_init(&fx, &p, 1, 48000, &e), SF_OK);
    sf_fx_free(&fx);
    p = s_eq(SF_EQ_LOWPASS, 1000, 0, 0);
    ck_assert_int_eq(sf_fx_init(&fx, &p, 1, 48000, &e), SF_E_INPUT);
    ck_assert_str_eq(e.msg, "eq q 0 is out of range (0.05..50)");
}
END_TEST

/* ---- tails ------------------------------------------------------------------ */

/* Impulse through p; checks that nothing from tail_frames on (up to the end
 * of a window as long again) reaches the threshold, and returns the peak
 * of |y| over [from, tail). */
static double s_check_tail(const sf_fx_params_t *p, int rate, double thr_db, size_t from_num, size_t from_den,
                           int64_t *tail_out)
{
    const int64_t tail = sf_fx_tail_frames(p, rate, thr_db);
    ck_assert_int_gt(tail, 0);
    ck_assert_int_lt(tail, 50000000);
    const size_t n = (size_t)tail * 2 + 1000;
    tu_sig_t s = s_impulse(1, n);
    s_run(p, rate, &s, 0);
    const double thr = pow(10.0, thr_db / 20.0);
    for (size_t i = (size_t)tail; i < n; i++)
        ck_assert_msg(fabs((double)s.ch[0][i]) < thr, "kind %d: |y[%zu]| = %g >= %g (tail %lld)", (int)p->kind, i,
                      fabs((double)s.ch[0][i]), thr, (long long)tail);
    double before = 0;
    for (size_t i = (size_t)tail * from_num / from_den; i < (size_t)tail; i++)
        before = fmax(before, fabs((double)s.ch[0][i]));
    tu_sig_free(&s);
    *tail_out = tail;
    return before;
}

START_TEST(test_eq_tail)
{
    static const struct {
        sf_eq_type_t type;
        double freq, gain_db, q, thr_db;
    } cases[] = {
        {SF_EQ_HIGHPASS, 20, 0, 0.707, -144},  {SF_EQ_HIGHPASS, 80, 0, 0.707, -144},
        {SF_EQ_LOWPASS, 8000, 0, 0.707, -144}, {SF_EQ_LOWPASS, 100, 0, 4, -120},
        {SF_EQ_PEAK, 3000, 2.5, 1, -144},      {SF_EQ_PEAK, 100, 12, 10, -144},
        {SF_EQ_LOWSHELF, 150, 6, 0.707, -144}, {SF_EQ_HIGHSHELF, 6000, -6, 0.707, -144},
        {SF_EQ_BANDPASS, 1000, 0, 2, -96},     {SF_EQ_NOTCH, 50, 0, 10, -144},
        {SF_EQ_LOWPASS, 1000, 0, 0.5, -144},   {SF_EQ_HIGHSHELF, 15000, 48, 10, -144},
        {SF_EQ_PEAK, 1000, 48, 0.05, -144},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        sf_fx_params_t p = s_eq(cases[k].type, cases[k].freq, cases[k].gain_db, cases[k].q);
        const double thr = pow(10.0, cases[k].thr_db / 20.0);
        int64_t tail;
        /* below from the tail on, not yet below over its second half */
        double before = s_check_tail(&p, 48000, cases[k].thr_db, 1, 2, &tail);
        ck_assert_msg(before >= thr, "eq case %zu: below the threshold early (%g)", k, before);
        /* never shorter than ceil(ln(thr) / ln(r)) + 2 with r the pole radius
         * (the same sqrt(a2) for these four types); test_eq_tail_is_remaining_sum
         * has what sets it */
        const double w0 = 2 * M_PI * cases[k].freq / 48000, alpha = sin(w0) / (2 * cases[k].q);
        if (cases[k].type == SF_EQ_HIGHPASS || cases[k].type == SF_EQ_LOWPASS || cases[k].type == SF_EQ_BANDPASS ||
            cases[k].type == SF_EQ_NOTCH) {
            const double r = sqrt((1 - alpha) / (1 + alpha));
            const double want = ceil(cases[k].thr_db / 20 * log(10) / log(r)) + 2;
            ck_assert_msg(tail >= (int64_t)want - 1, "eq case %zu: tail %lld, formula %.0f", k, (long long)tail, want);
        }
    }
}
END_TEST

START_TEST(test_delay_tail)
{
    int64_t tail;
    sf_fx_params_t p = s_delay(10, 0.5, 1);
    double before = s_check_tail(&p, 48000, -60, 1, 1, &tail);
    ck_assert_int_eq(tail, 480 * 11); /* 0.5^9 > -60 dB >= 0.5^10 */
    (void)before;
    /* the last echo above the threshold is one delay before the tail */
    sf_fx_params_t q = s_delay(10, 0.5, 1);
    before = s_check_tail(&q, 48000, -60, 9, 11, &tail);
    ck_assert_double_ge(before, 1e-3);
    p = s_delay(10, 0.7, 0.5);
    s_check_tail(&p, 48000, -144, 1, 1, &tail);
    ck_assert_int_eq(tail, 480 * ((int64_t)ceil(-144.0 / 20 * log(10) / log(0.7)) + 1));
    p = s_delay(250, 0, 0.5);
    ck_assert_int_eq(sf_fx_tail_frames(&p, 48000, -144), 12000);
    p = s_delay(250, 1, 0.5);
    ck_assert_int_eq(sf_fx_tail_frames(&p, 48000, -144), INT64_MAX);
    p = s_delay(250, 0.9999, 0.5);
    ck_assert_int_lt(sf_fx_tail_frames(&p, 48000, -144), INT64_MAX);
    ck_assert_int_gt(sf_fx_tail_frames(&p, 48000, -144), 12000 * 100000LL);
}
END_TEST

/* ---- delay ------------------------------------------------------------------ */

START_TEST(test_delay_impulse)
{
    static const struct {
        double time_ms, feedback, mix;
        int rate;
        size_t frames; /* the expected whole-frame delay */
    } cases[] = {
        {10, 0.5, 0.5, 48000, 480}, {10, 0, 1, 48000, 480},    {10, 0.6, 0.25, 48000, 480},
        {2.4, 0.5, 1, 1000, 2},     {2.5, 0.5, 1, 1000, 3},    {2.6, 0.5, 1, 1000, 3},
        {0.1, 0.5, 1, 8000, 1},     {0.1, 0.25, 0.5, 1000, 1}, {10.01, 0.5, 0.5, 48000, 480},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        sf_fx_params_t p = s_delay(cases[k].time_ms, cases[k].feedback, cases[k].mix);
        const size_t d = cases[k].frames, n = d * 12 + 5;
        tu_sig_t s = tu_sig(2, n);
        s.ch[0][0] = 1.0f;
        s.ch[1][1] = -0.5f; /* channels are independent */
        s_run(&p, cases[k].rate, &s, k + 1);
        for (int c = 0; c < 2; c++) {
            const double a = c == 0 ? 1.0 : -0.5;
            for (size_t i = 0; i < n; i++) {
                const size_t j = i - (size_t)c; /* frames since the impulse */
                double want = 0;
                if (i >= (size_t)c) {
                    if (j == 0)
                        want = (1 - cases[k].mix) * a;
                    else if (j % d == 0)
                        want = cases[k].mix * a * pow(cases[k].feedback, (double)(j / d - 1));
                }
                ck_assert_msg(fabs((double)s.ch[c][i] - want) <= 1e-6 * fabs(want),
                              "delay case %zu ch %d: y[%zu] = %.9g, want %.9g", k, c, i, (double)s.ch[c][i], want);
            }
        }
        tu_sig_free(&s);
    }
    /* powers of two: exact */
    sf_fx_params_t p = s_delay(10, 0.5, 0.5);
    tu_sig_t s = s_impulse(1, 480 * 5 + 1);
    s_run(&p, 48000, &s, 0);
    ck_assert(s.ch[0][0] == 0.5f && s.ch[0][480] == 0.5f && s.ch[0][960] == 0.25f && s.ch[0][1440] == 0.125f &&
              s.ch[0][2400] == 0.03125f);
    tu_sig_free(&s);
}
END_TEST

/* ---- convolve ---------------------------------------------------------------- */

typedef struct {
    int64_t n;
    uint64_t seed;
} ir_ctx_t;

/* A reverb-like IR: decaying noise, a different one per channel; length 1
 * gives a plain gain. */
static double s_ir_fn(int ch, int64_t i, void *vctx)
{
    const ir_ctx_t *ctx = vctx;
    if (ctx->n == 1)
        return ch == 0 ? 0.75 : -0.5;
    return 0.9 * tu_noise(ctx->seed + (uint64_t)ch * 31, i) * exp(-3.0 * (double)i / (double)ctx->n);
}

static char *s_write_ir(const char *dir, const char *name, int n_ch, int64_t n, uint64_t seed)
{
    ir_ctx_t ctx = {n, seed};
    return tu_write_wav(dir, name, n_ch, 48000, n, 32, s_ir_fn, &ctx);
}

/* Direct convolution in double, plus the dry share: the reference. */
static void s_ref_convolve(const float *x, size_t n, const double *h, int h_stride, int64_t n_h, double mix, double *y)
{
    for (size_t i = 0; i < n; i++) {
        double acc = 0;
        const size_t k_max = (size_t)n_h - 1 < i ? (size_t)n_h - 1 : i;
        for (size_t k = 0; k <= k_max; k++)
            if (x[i - k] != 0.0f)
                acc += h[k * (size_t)h_stride] * (double)x[i - k];
        y[i] = (1 - mix) * (double)x[i] + mix * acc;
    }
}

START_TEST(test_convolve_direct)
{
    static const int64_t lengths[] = {1, 17, 1000, 48000};
    char *dir = tu_tmpdir();
    for (size_t l = 0; l < sizeof lengths / sizeof *lengths; l++) {
        for (int ir_ch = 1; ir_ch <= 2; ir_ch++) {
            char name[64];
            snprintf(name, sizeof name, "ir_%lld_%d.wav", (long long)lengths[l], ir_ch);
            char *path = s_write_ir(dir, name, ir_ch, lengths[l], 7 + l);
            int got_ch;
            int64_t got_n;
            double *h = tu_read_audio(path, &got_ch, &got_n, NULL);
            ck_assert_int_eq(got_n, lengths[l]);
            const double mix = ir_ch == 1 && lengths[l] == 1000 ? 0.3 : 1.0;
            sf_fx_params_t p = s_convolve(path, mix);
            ck_assert_int_eq(sf_fx_latency_frames(&p, 48000), 0);
            /* noise, then silence until the IR has rung out */
            const size_t n_in = lengths[l] > 10000 ? 6001 : 20011;
            const size_t n = n_in + (size_t)lengths[l] + 77;
            tu_sig_t s = s_noise(2, n, n_in, 100 + l);
            tu_sig_t in = tu_sig_copy(&s);
            s_run(&p, 48000, &s, 5 + l);
            double *ref = malloc(n * sizeof(double));
            double acc[4] = {0};
            for (int c = 0; c < 2; c++) {
                s_ref_convolve(in.ch[c], n, h + (ir_ch == 1 ? 0 : c), ir_ch, lengths[l], mix, ref);
                s_err_add(ref, s.ch[c], n, acc);
            }
            err_t e = s_err(acc);
            printf("convolve IR %lld frames, %d ch, mix %g: %.1f dB (energy), %.1f dB (peak)\n", (long long)lengths[l],
                   ir_ch, mix, e.energy_db, e.peak_db);
            ck_assert_msg(e.energy_db <= -110 && e.peak_db <= -110, "IR %lld: %.1f dB / %.1f dB", (long long)lengths[l],
                          e.energy_db, e.peak_db);
            /* mono signal with the (first channel of the) IR */
            if (ir_ch == 1) {
                tu_sig_t m = tu_sig(1, n);
                memcpy(m.ch[0], in.ch[0], n * sizeof(float));
                s_run(&p, 48000, &m, 0);
                double acc1[4] = {0};
                s_ref_convolve(in.ch[0], n, h, 1, lengths[l], mix, ref);
                s_err_add(ref, m.ch[0], n, acc1);
                ck_assert_double_le(s_err(acc1).energy_db, -110);
                tu_sig_free(&m);
            }
            free(ref);
            free(h);
            free(path);
            tu_sig_free(&s);
            tu_sig_free(&in);
        }
    }
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_convolve_tail)
{
    char *dir = tu_tmpdir();
    char *path = s_write_ir(dir, "ir.wav", 2, 20000, 3);
    int n_ch;
    int64_t n;
    double *h = tu_read_audio(path, &n_ch, &n, NULL);
    double peak = 0;
    for (int64_t i = 0; i < n * n_ch; i++)
        peak = fmax(peak, fabs(h[i]));
    static const double thrs[] = {-20, -60, -144};
    for (size_t t = 0; t < sizeof thrs / sizeof *thrs; t++) {
        /* the first frame from which every channel's remaining magnitude is below it */
        const double level = fmin(peak, 1.0) * pow(10, thrs[t] / 20);
        int64_t want = 0;
        for (int c = 0; c < n_ch; c++) {
            double rest = 0;
            for (int64_t i = n; i-- > 0;) {
                rest += fabs(h[i * n_ch + c]);
                if (rest >= level && h[i * n_ch + c] != 0) {
                    want = i + 1 > want ? i + 1 : want;
                    break;
                }
            }
        }
        sf_fx_params_t p = s_convolve(path, 1);
        const int64_t tail = sf_fx_tail_frames(&p, 48000, thrs[t]);
        ck_assert_int_eq(tail, want);
        /* after an impulse the output stays below threshold * peak from there */
        tu_sig_t s = s_impulse(2, (size_t)n + 100);
        s_run(&p, 48000, &s, 0);
        for (int c = 0; c < 2; c++)
            for (size_t i = (size_t)tail; i < s.n; i++)
                ck_assert_double_lt(fabs((double)s.ch[c][i]), peak * pow(10, thrs[t] / 20));
        tu_sig_free(&s);
    }
    free(h);
    free(path);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

static double s_short_then_silence(int ch, int64_t i, void *ctx)
{
    (void)ch;
    (void)ctx;
    return i < 300 ? 0.5 * tu_noise(9, i) : 0.0;
}

START_TEST(test_convolve_trailing_silence)
{
    char *dir = tu_tmpdir();
    char *path = tu_write_wav(dir, "ir.wav", 1, 48000, 5000, 32, s_short_then_silence, NULL);
    sf_fx_params_t p = s_convolve(path, 1);
    ck_assert_int_le(sf_fx_tail_frames(&p, 48000, -144), 300);
    free(path);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_convolve_errors)
{
    char *dir = tu_tmpdir();
    sf_fx_t fx;
    sf_err_t e = {0};
    char *missing = tu_path(dir, "no such ir.wav");
    sf_fx_params_t p = s_convolve(missing, 1);
    ck_assert_int_eq(sf_fx_init(&fx, &p, 2, 48000, &e), SF_E_IO);
    ck_assert_msg(strstr(e.msg, missing) != NULL, "message does not name the path: %s", e.msg);
    ck_assert_ptr_null(fx.state);
    ck_assert_int_eq(sf_fx_tail_frames(&p, 48000, -144), 0);

    char *three = s_write_ir(dir, "three.wav", 3, 100, 1);
    p = s_convolve(three, 1);
    ck_assert_int_eq(sf_fx_init(&fx, &p, 2, 48000, &e), SF_E_INPUT);
    ck_assert_msg(strstr(e.msg, "has 3 channels, the signal 2") != NULL, "%s", e.msg);
    ck_assert_int_eq(sf_fx_init(&fx, &p, 3, 48000, &e), SF_OK); /* matches a 3-channel signal */
    sf_fx_free(&fx);

    ir_ctx_t ctx = {100, 1};
    char *rate = tu_write_wav(dir, "rate.wav", 1, 44100, 100, 32, s_ir_fn, &ctx);
    p = s_convolve(rate, 1);
    ck_assert_int_eq(sf_fx_init(&fx, &p, 2, 48000, &e), SF_E_INPUT);
    ck_assert_msg(strstr(e.msg, "is 44100 Hz, the session 48000 Hz") != NULL, "%s", e.msg);

    p = s_convolve(three, 1.5);
    ck_assert_int_eq(sf_fx_init(&fx, &p, 3, 48000, &e), SF_E_INPUT);
    ck_assert_str_eq(e.msg, "convolve mix 1.5 is out of range (0..1)");
    free(missing);
    free(three);
    free(rate);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* FFTW's planner is not thread-safe: convolvers made and freed on several
 * threads at once must still work and agree with one made alone. */
typedef struct {
    const char *path;
    const tu_sig_t *want;
    int ok;
} thread_ctx_t;

static void *s_convolve_thread(void *vctx)
{
    thread_ctx_t *ctx = vctx;
    sf_fx_params_t p = s_convolve(ctx->path, 1);
    ctx->ok = 1;
    for (int k = 0; k < 20; k++) {
        sf_fx_t fx;
        if (sf_fx_init(&fx, &p, 2, 48000, NULL) != SF_OK) {
            ctx->ok = 0;
            break;
        }
        tu_sig_t s = s_noise(2, 3001, 3001, 5);
        s_process(&fx, &s, (uint64_t)k + 1);
        sf_fx_free(&fx);
        if (!tu_sig_equal(&s, ctx->want))
            ctx->ok = 0;
        tu_sig_free(&s);
    }
    return NULL;
}

START_TEST(test_convolve_threads)
{
    char *dir = tu_tmpdir();
    char *path = s_write_ir(dir, "ir.wav", 2, 2500, 4);
    tu_sig_t want = s_noise(2, 3001, 3001, 5);
    sf_fx_params_t p = s_convolve(path, 1);
    s_run(&p, 48000, &want, 0);
    enum { N_THREADS = 4 };
    pthread_t th[N_THREADS];
    thread_ctx_t ctx[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        ctx[t] = (thread_ctx_t){path, &want, 0};
        ck_assert_int_eq(pthread_create(&th[t], NULL, s_convolve_thread, &ctx[t]), 0);
    }
    for (int t = 0; t < N_THREADS; t++) {
        pthread_join(th[t], NULL);
        ck_assert_msg(ctx[t].ok, "thread %d", t);
    }
    tu_sig_free(&want);
    free(path);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- every effect: cuts, odd lengths, reset, allocation failures ----------- */

typedef struct {
    const char *name;
    sf_fx_params_t p;
    const char *ir; /* file name in the test's folder for convolve */
    int64_t ir_frames;
    int ir_ch;
} fx_case_t;

static const fx_case_t k_fx_cases[] = {
    {"gain", {.kind = SF_FX_GAIN, .u.gain = {-3.5}}, NULL, 0, 0},
    {"lowpass", {.kind = SF_FX_EQ, .u.eq = {SF_EQ_LOWPASS, 5000, 0, 0.707}}, NULL, 0, 0},
    {"highpass", {.kind = SF_FX_EQ, .u.eq = {SF_EQ_HIGHPASS, 20, 0, 0.707}}, NULL, 0, 0},
    {"bandpass", {.kind = SF_FX_EQ, .u.eq = {SF_EQ_BANDPASS, 700, 0, 3}}, NULL, 0, 0},
    {"notch", {.kind = SF_FX_EQ, .u.eq = {SF_EQ_NOTCH, 60, 0, 10}}, NULL, 0, 0},
    {"peak", {.kind = SF_FX_EQ, .u.eq = {SF_EQ_PEAK, 3000, 2.5, 1}}, NULL, 0, 0},
    {"lowshelf", {.kind = SF_FX_EQ, .u.eq = {SF_EQ_LOWSHELF, 120, -6, 0.707}}, NULL, 0, 0},
    {"highshelf", {.kind = SF_FX_EQ, .u.eq = {SF_EQ_HIGHSHELF, 8000, 3, 0.707}}, NULL, 0, 0},
    {"delay 5 frames", {.kind = SF_FX_DELAY, .u.delay = {0.1, 0.9, 0.5}}, NULL, 0, 0},
    {"delay", {.kind = SF_FX_DELAY, .u.delay = {37.3, 0.7, 0.3}}, NULL, 0, 0},
    {"convolve 17 mono", {.kind = SF_FX_CONVOLVE, .u.convolve = {NULL, 1}}, "a.wav", 17, 1},
    {"convolve 1000 stereo", {.kind = SF_FX_CONVOLVE, .u.convolve = {NULL, 0.6}}, "b.wav", 1000, 2},
    {"convolve 9000 mono", {.kind = SF_FX_CONVOLVE, .u.convolve = {NULL, 1}}, "c.wav", 9000, 1},
};
#define N_FX_CASES (sizeof k_fx_cases / sizeof k_fx_cases[0])

/* The case's parameters; writes its IR into dir (path freed by caller). */
static sf_fx_params_t s_case_params(const fx_case_t *t, const char *dir, char **path)
{
    sf_fx_params_t p = t->p;
    *path = NULL;
    if (t->ir) {
        *path = s_write_ir(dir, t->ir, t->ir_ch, t->ir_frames, 11);
        p.u.convolve.ir_path = *path;
    }
    return p;
}

START_TEST(test_split_invariance)
{
    const fx_case_t *t = &k_fx_cases[_i];
    char *dir = tu_tmpdir(), *path;
    sf_fx_params_t p = s_case_params(t, dir, &path);
    const size_t n = 30011;
    tu_sig_t ref = s_mixed(2, n, 17);
    s_run(&p, 48000, &ref, 0);
    for (uint64_t seed = 1; seed <= 6; seed++) {
        tu_sig_t s = s_mixed(2, n, 17);
        s_run(&p, 48000, &s, seed * 1000 + (uint64_t)_i);
        ck_assert_msg(tu_sig_equal(&s, &ref), "%s: cut %llu differs from one call", t->name, (unsigned long long)seed);
        tu_sig_free(&s);
    }
    /* odd lengths: a prefix processed alone is the prefix of the whole */
    for (size_t l = 0; l < N_LENGTHS; l++) {
        tu_sig_t s = s_mixed(2, k_lengths[l], 17);
        s_run(&p, 48000, &s, 0);
        for (int c = 0; c < 2; c++)
            ck_assert_msg(memcmp(s.ch[c], ref.ch[c], s.n * sizeof(float)) == 0, "%s: length %zu", t->name, s.n);
        tu_sig_free(&s);
    }
    /* reset gives a fresh effect */
    sf_fx_t fx;
    s_init(&fx, &p, 2, 48000);
    tu_sig_t s = s_mixed(2, n, 17);
    s_process(&fx, &s, 3);
    sf_fx_reset(&fx);
    tu_sig_free(&s);
    s = s_mixed(2, n, 17);
    s_process(&fx, &s, 4);
    ck_assert_msg(tu_sig_equal(&s, &ref), "%s: reset", t->name);
    sf_fx_free(&fx);
    ck_assert_ptr_null(fx.state);
    sf_fx_free(&fx); /* idempotent */
    tu_sig_free(&s);
    tu_sig_free(&ref);
    free(path);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- eq kernels against the reference ---------------------------------------
 *
 * The reference is the DF-I biquad as it ran one channel and one call at a
 * time, term for term (s_ref_bq), with the cookbook coefficients computed
 * exactly as fx_filter.c does (s_ref_coefs, a copy). Every comparison is
 * memcmp: the frame-major kernels and the cascade must not change a byte. */

typedef struct {
    double b0, b1, b2, a1, a2;
} ref_bq_t;

typedef struct {
    double x1, x2, y1, y2;
} ref_bq_state_t;

static ref_bq_t s_ref_coefs(const sf_fx_params_t *p, int rate)
{
    double sh, ch;
    sf_dsp_sincos_half_pi(2.0 * p->u.eq.freq / (double)rate, &sh, &ch);
    const double sn = 2.0 * sh * ch, omc = 2.0 * sh * sh, opc = 2.0 * ch * ch, cs = 1.0 - omc;
    const double alpha = sn / (2.0 * p->u.eq.q);
    const double A = sf_dsp_db_to_gain(p->u.eq.gain_db / 2.0);
    const double sa = 2.0 * sqrt(A) * alpha;
    double b0 = 1, b1 = 0, b2 = 0, a0 = 1, a1 = 0, a2 = 0;
    switch (p->u.eq.type) {
    case SF_EQ_LOWPASS:
        b0 = omc / 2.0, b1 = omc, b2 = omc / 2.0, a0 = 1.0 + alpha, a1 = -2.0 * cs, a2 = 1.0 - alpha;
        break;
    case SF_EQ_HIGHPASS:
        b0 = opc / 2.0, b1 = -opc, b2 = opc / 2.0, a0 = 1.0 + alpha, a1 = -2.0 * cs, a2 = 1.0 - alpha;
        break;
    case SF_EQ_BANDPASS: b0 = alpha, b1 = 0.0, b2 = -alpha, a0 = 1.0 + alpha, a1 = -2.0 * cs, a2 = 1.0 - alpha; break;
    case SF_EQ_NOTCH: b0 = 1.0, b1 = -2.0 * cs, b2 = 1.0, a0 = 1.0 + alpha, a1 = -2.0 * cs, a2 = 1.0 - alpha; break;
    case SF_EQ_PEAK:
        b0 = 1.0 + alpha * A, b1 = -2.0 * cs, b2 = 1.0 - alpha * A;
        a0 = 1.0 + alpha / A, a1 = -2.0 * cs, a2 = 1.0 - alpha / A;
        break;
    case SF_EQ_LOWSHELF:
        b0 = A * ((A + 1.0) - (A - 1.0) * cs + sa), b1 = 2.0 * A * ((A - 1.0) - (A + 1.0) * cs);
        b2 = A * ((A + 1.0) - (A - 1.0) * cs - sa), a0 = (A + 1.0) + (A - 1.0) * cs + sa;
        a1 = -2.0 * ((A - 1.0) + (A + 1.0) * cs), a2 = (A + 1.0) + (A - 1.0) * cs - sa;
        break;
    case SF_EQ_HIGHSHELF:
        b0 = A * ((A + 1.0) + (A - 1.0) * cs + sa), b1 = -2.0 * A * ((A - 1.0) + (A + 1.0) * cs);
        b2 = A * ((A + 1.0) + (A - 1.0) * cs - sa), a0 = (A + 1.0) - (A - 1.0) * cs + sa;
        a1 = 2.0 * ((A - 1.0) - (A + 1.0) * cs), a2 = (A + 1.0) - (A - 1.0) * cs - sa;
        break;
    }
    return (ref_bq_t){b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0};
}

static size_t s_ref_flushes; /* nonzero outputs the reference flushed to 0 (coverage) */

/* The reference biquad over one channel, in place. */
static void s_ref_bq(const ref_bq_t *k, ref_bq_state_t *s, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double in = (double)x[i];
        double y = k->b0 * in + k->b1 * s->x1 + k->b2 * s->x2 - k->a1 * s->y1 - k->a2 * s->y2;
        if (y > -1e-200 && y < 1e-200) {
            s_ref_flushes += y != 0;
            y = 0.0;
        }
        s->x2 = s->x1;
        s->x1 = in;
        s->y2 = s->y1;
        s->y1 = y;
        x[i] = (float)y;
    }
}

/* Random eq parameters below Nyquist at 48 kHz, every type. */
static sf_fx_params_t s_rand_eq(uint64_t *r)
{
    sf_eq_type_t type = (sf_eq_type_t)(s_rand(r) % 7);
    double u1 = (double)(s_rand(r) >> 11) * 0x1p-53, u2 = (double)(s_rand(r) >> 11) * 0x1p-53;
    double u3 = (double)(s_rand(r) >> 11) * 0x1p-53;
    double freq = 10.0 * pow(23990.0 / 10.0, u1); /* 10 Hz .. 23.99 kHz, log-uniform */
    double q = 0.05 * pow(50.0 / 0.05, u2);       /* 0.05 .. 50 */
    return s_eq(type, freq, -48.0 + 96.0 * u3, q);
}

/* Noise bursts of random level (full scale, denormals, -0 mixed in) with long
 * silences, so that tails decay into the flush; odd lengths. */
static tu_sig_t s_bursts(int n_ch, size_t n, uint64_t seed)
{
    tu_sig_t s = tu_sig(n_ch, n);
    for (int c = 0; c < n_ch; c++)
        for (size_t i = 0; i < n; i++) {
            size_t seg = i / 7919;
            double level = seg % 3 == 2 ? 0.0 : pow(10.0, -(double)((seg * 7 + seed) % 9));
            float v = (float)(level * tu_noise(seed + (uint64_t)c * 31, (int64_t)i));
            if (seg % 3 != 2 && (i % 97) < 3)
                v = s_sample(seed + (uint64_t)c, i);
            s.ch[c][i] = v;
        }
    return s;
}

/* The reference chain over a signal: every stage over every channel. */
static void s_ref_chain(const sf_fx_params_t *p, int n_st, tu_sig_t *s, size_t from, size_t n,
                        ref_bq_state_t st[][MAX_CH])
{
    for (int k = 0; k < n_st; k++) {
        ref_bq_t q = s_ref_coefs(&p[k], 48000);
        for (int c = 0; c < s->n_ch; c++)
            s_ref_bq(&q, &st[k][c], s->ch[c] + from, n);
    }
}

static const int k_eq_channels[] = {1, 2, 3, 5, 6, 7, 8};
#define N_EQ_CHANNELS (sizeof k_eq_channels / sizeof k_eq_channels[0])

/* An eq's tail is where what a full-scale input can still put into the
 * output once it stops -- the impulse response's remaining magnitude,
 * sum_{k>=t} |h[k]| -- falls below the threshold: computed here from the
 * reference coefficients over a response long enough to hold all of it.
 * Poles near DC make that sum much larger than one sample of h. */
START_TEST(test_eq_tail_is_remaining_sum)
{
    static const struct {
        sf_eq_type_t type;
        double freq, gain_db, q, thr_db;
    } cases[] = {
        {SF_EQ_NOTCH, 20, 0, 0.5, -144},     {SF_EQ_HIGHPASS, 20, 0, 0.707, -144},  {SF_EQ_LOWPASS, 10, 0, 0.5, -144},
        {SF_EQ_PEAK, 10, -12, 1, -144},      {SF_EQ_LOWSHELF, 150, 6, 0.707, -120}, {SF_EQ_PEAK, 3000, 2.5, 1, -144},
        {SF_EQ_HIGHPASS, 80, 0, 0.707, -96}, {SF_EQ_BANDPASS, 1000, 0, 2, -144},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const sf_fx_params_t p = s_eq(cases[k].type, cases[k].freq, cases[k].gain_db, cases[k].q);
        const ref_bq_t c = s_ref_coefs(&p, 48000);
        const size_t len = 2000000;
        double *h = malloc(sizeof(double) * len);
        double x1 = 0, x2 = 0, y1 = 0, y2 = 0;
        for (size_t i = 0; i < len; i++) {
            const double in = i == 0 ? 1.0 : 0.0;
            double y = c.b0 * in + c.b1 * x1 + c.b2 * x2 - c.a1 * y1 - c.a2 * y2;
            y = fabs(y) < 1e-200 ? 0.0 : y;
            x2 = x1, x1 = in, y2 = y1, y1 = y;
            h[i] = fabs(y);
        }
        const double level = pow(10.0, cases[k].thr_db / 20.0);
        double rest = 0;
        size_t want = len;
        for (size_t i = len; i-- > 0;) {
            rest += h[i];
            if (rest >= level) {
                want = i + 1;
                break;
            }
        }
        free(h);
        /* ... and never shorter than the pole radius's r^n formula */
        const double disc = c.a1 * c.a1 - 4.0 * c.a2;
        const double r = disc < 0 ? sqrt(c.a2) : (fabs(c.a1) + sqrt(disc)) / 2.0;
        const int64_t formula = (int64_t)ceil(cases[k].thr_db / 20 * log(10) / log(r)) + 2;
        const int64_t expect = (int64_t)want > formula ? (int64_t)want : formula;
        const int64_t tail = sf_fx_tail_frames(&p, 48000, cases[k].thr_db);
        ck_assert_msg(llabs(tail - expect) <= 1, "eq case %zu: tail %lld, remaining sum says %zu, formula %lld", k,
                      (long long)tail, want, (long long)formula);
        printf("eq case %zu: tail %lld: remaining sum %zu, r^n formula %lld\n", k, (long long)tail, want,
               (long long)formula);
    }
}
END_TEST

START_TEST(test_eq_matches_reference)
{
    const int n_ch = k_eq_channels[_i];
    uint64_t r = 1000 + (uint64_t)_i;
    size_t flushes_before = s_ref_flushes;
    for (int trial = 0; trial < 12; trial++) {
        sf_fx_params_t p = s_rand_eq(&r);
        size_t n = 40000 + (size_t)(s_rand(&r) % 3000);
        tu_sig_t ref = s_bursts(n_ch, n, (uint64_t)trial);
        tu_sig_t got = tu_sig_copy(&ref);
        ref_bq_state_t st[1][MAX_CH] = {{{0}}};
        s_ref_chain(&p, 1, &ref, 0, n, st);
        s_run(&p, 48000, &got, trial ? s_rand(&r) | 1 : 0);
        ck_assert_msg(tu_sig_equal(&got, &ref), "eq type %d %g Hz %g dB q %g, %d channels: differs from the reference",
                      (int)p.u.eq.type, p.u.eq.freq, p.u.eq.gain_db, p.u.eq.q, n_ch);
        tu_sig_free(&ref);
        tu_sig_free(&got);
    }
    /* odd lengths, one call each: the kernels' block remainders */
    for (size_t l = 0; l < N_LENGTHS; l++) {
        sf_fx_params_t p = s_rand_eq(&r);
        tu_sig_t ref = s_mixed(n_ch, k_lengths[l], 5);
        tu_sig_t got = tu_sig_copy(&ref);
        ref_bq_state_t st[1][MAX_CH] = {{{0}}};
        s_ref_chain(&p, 1, &ref, 0, ref.n, st);
        s_run(&p, 48000, &got, 0);
        ck_assert_msg(tu_sig_equal(&got, &ref), "length %zu, %d channels", ref.n, n_ch);
        tu_sig_free(&ref);
        tu_sig_free(&got);
    }
    ck_assert_msg(s_ref_flushes > flushes_before, "no tail reached the flush: the test does not cover it");
}
END_TEST

/* n_st eqs as sf_fx_t, initialised for n_ch channels. */
static void s_init_chain(sf_fx_t *fx, const sf_fx_params_t *p, int n_st, int n_ch)
{
    for (int k = 0; k < n_st; k++)
        s_init(&fx[k], &p[k], n_ch, 48000);
}

/* Cuts [0, n) at random (zero-length pieces included) and calls the cascade
 * on each piece. */
static void s_cascade_cuts(sf_fx_t *const *fx, int n_st, tu_sig_t *s, uint64_t seed)
{
    size_t at = 0;
    uint64_t r = seed;
    while (at < s->n) {
        uint64_t k = s_rand(&r);
        size_t n = k % 4 == 0 ? 0 : k % 4 == 1 ? 1 + (size_t)(k >> 8) % 5 : 1 + (size_t)(k >> 8) % 2500;
        if (n > s->n - at)
            n = s->n - at;
        float *ch[MAX_CH];
        for (int c = 0; c < s->n_ch; c++)
            ch[c] = s->ch[c] + at;
        sf_fx_process_eq_cascade(fx, (size_t)n_st, ch, n);
        at += n;
    }
}

START_TEST(test_eq_cascade_is_sequential)
{
    const int n_st = 1 + _i % 6, n_ch = k_eq_channels[_i / 6];
    uint64_t r = 77 + (uint64_t)_i;
    for (int trial = 0; trial < 4; trial++) {
        sf_fx_params_t p[6];
        for (int k = 0; k < n_st; k++)
            p[k] = s_rand_eq(&r);
        const size_t n = 30011 + (size_t)trial * 17;
        tu_sig_t seq = s_bursts(n_ch, n, 9 + (uint64_t)trial), cas = tu_sig_copy(&seq), ref = tu_sig_copy(&seq);
        sf_fx_t fs[6], fc[6], *pc[6];
        s_init_chain(fs, p, n_st, n_ch);
        s_init_chain(fc, p, n_st, n_ch);
        for (int k = 0; k < n_st; k++)
            pc[k] = &fc[k];
        /* sequential: each stage over the whole signal in one call */
        for (int k = 0; k < n_st; k++)
            sf_fx_process(&fs[k], seq.ch, n);
        /* cascade: random cuts, so every stage's state crosses calls */
        s_cascade_cuts(pc, n_st, &cas, s_rand(&r));
        ref_bq_state_t st[6][MAX_CH];
        memset(st, 0, sizeof st);
        s_ref_chain(p, n_st, &ref, 0, n, st);
        ck_assert_msg(tu_sig_equal(&cas, &seq), "%d stages, %d channels, trial %d: cascade differs from sequential",
                      n_st, n_ch, trial);
        ck_assert_msg(tu_sig_equal(&cas, &ref), "%d stages, %d channels, trial %d: cascade differs from the reference",
                      n_st, n_ch, trial);
        /* the states match too: more signal through each, the other way round */
        tu_sig_t more_s = s_bursts(n_ch, 5003, 99), more_c = tu_sig_copy(&more_s);
        sf_fx_process_eq_cascade(pc, (size_t)n_st, more_s.ch, more_s.n);
        for (int k = 0; k < n_st; k++)
            s_process(&fs[k], &more_c, 0);
        ck_assert_msg(tu_sig_equal(&more_s, &more_c), "%d stages, %d channels: state after the cascade", n_st, n_ch);
        for (int k = 0; k < n_st; k++) {
            sf_fx_free(&fs[k]);
            sf_fx_free(&fc[k]);
        }
        tu_sig_free(&seq);
        tu_sig_free(&cas);
        tu_sig_free(&ref);
        tu_sig_free(&more_s);
        tu_sig_free(&more_c);
    }
}
END_TEST

START_TEST(test_eq_cascade_edges)
{
    /* n == 0 and n_frames == 0 touch nothing */
    tu_sig_t s = s_mixed(2, 100, 3), t = tu_sig_copy(&s);
    sf_fx_process_eq_cascade(NULL, 0, s.ch, s.n);
    ck_assert(tu_sig_equal(&s, &t));
    sf_fx_params_t p = s_eq(SF_EQ_PEAK, 1000, 6, 1);
    sf_fx_t fx, *pfx = &fx;
    s_init(&fx, &p, 2, 48000);
    sf_fx_process_eq_cascade(&pfx, 1, s.ch, 0);
    ck_assert(tu_sig_equal(&s, &t));
    /* one stage is sf_fx_process */
    sf_fx_t one;
    s_init(&one, &p, 2, 48000);
    sf_fx_process_eq_cascade(&pfx, 1, s.ch, s.n);
    sf_fx_process(&one, t.ch, t.n);
    ck_assert(tu_sig_equal(&s, &t));
    sf_fx_free(&one);
    sf_fx_free(&fx);
    tu_sig_free(&s);
    tu_sig_free(&t);
}
END_TEST

START_TEST(test_alloc_failures)
{
    const fx_case_t *t = &k_fx_cases[_i];
    char *dir = tu_tmpdir(), *path;
    sf_fx_params_t p = s_case_params(t, dir, &path);
    for (long k = 1;; k++) {
        sf_fx_t fx;
        sf_err_t e = {0};
        sf_alloc_fail_after(k);
        sf_rc rc = sf_fx_init(&fx, &p, 2, 48000, &e);
        sf_alloc_fail_after(0);
        if (rc == SF_OK) {
            tu_sig_t s = s_mixed(2, 1000, 1);
            s_process(&fx, &s, 0);
            tu_sig_free(&s);
            sf_fx_free(&fx);
            break;
        }
        ck_assert_msg(rc == SF_E_NOMEM || rc == SF_E_IO, "%s: allocation %ld: %s", t->name, k, e.msg);
        ck_assert_ptr_null(fx.state);
        ck_assert_int_lt(k, 100);
    }
    free(path);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("test_fx");
    TCase *tc = tcase_create("fx");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_gain);
    tcase_add_loop_test(tc, test_eq_response, 0, (int)N_EQ_CASES);
    tcase_add_test(tc, test_eq_highpass_20hz_reference);
    tcase_add_test(tc, test_eq_errors);
    tcase_add_test(tc, test_eq_tail);
    tcase_add_test(tc, test_eq_tail_is_remaining_sum);
    tcase_add_test(tc, test_delay_impulse);
    tcase_add_test(tc, test_delay_tail);
    tcase_add_test(tc, test_convolve_direct);
    tcase_add_test(tc, test_convolve_tail);
    tcase_add_test(tc, test_convolve_trailing_silence);
    tcase_add_test(tc, test_convolve_errors);
    tcase_add_test(tc, test_convolve_threads);
    tcase_add_loop_test(tc, test_split_invariance, 0, (int)N_FX_CASES);
    tcase_add_loop_test(tc, test_alloc_failures, 0, (int)N_FX_CASES);
    tcase_add_loop_test(tc, test_eq_matches_reference, 0, (int)N_EQ_CHANNELS);
    tcase_add_loop_test(tc, test_eq_cascade_is_sequential, 0, 6 * (int)N_EQ_CHANNELS);
    tcase_add_test(tc, test_eq_cascade_edges);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
