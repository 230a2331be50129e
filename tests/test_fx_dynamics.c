/* test_fx_dynamics.c -- compressor, limiter and reverb (sf/fx.h) against
 * references computed here.
 *
 * Compressor: the soft-knee static curve of Giannoulis, Massberg & Reiss
 * (2012) evaluated with libm on settled DC levels across threshold +- knee;
 * attack and release step responses against D (1 - exp(-t / tau)); makeup;
 * stereo link; process(x) == x * gain_curve(x) to the bit; process() and
 * the gain curve bit for bit the per-frame reference step (ln by frexp,
 * sf_dsp_db_to_gain per frame) on noise, bursts, silence, a ramp through the
 * knee, very loud and non-finite input, 1, 2, 6 and 8 channels, odd lengths
 * and random cuts, the two calls interleaved on one effect.
 * Limiter: adversarial signals (full-scale squares, single-sample spikes up
 * to 1e30, noise at +12 dBFS) never exceed the ceiling by one float; a click
 * comes out exactly `latency` frames later; below the ceiling the output is
 * the delayed input to the bit; the release time constant.
 * Reverb: RT60 by Schroeder backward integration (fit -5..-35 dB, extrapolated
 * to -60) within 10 % of decay_s at 44.1 and 48 kHz, damping 0, 0.5 and 1;
 * decorrelated channels; mix 0 is dry.
 * All three: any cut into calls (random splits, odd lengths) gives the same
 * bytes; starting `tail_frames` early reproduces a continuous render within
 * -120 dB of its peak; bad parameters and allocation failures. */
#include "sf/alloc.h"
#include "sf/dsp.h"
#include "sf/fx.h"
#include "testutil.h"

#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define MAX_CH 8

static const size_t k_lengths[] = {1, 3, 253, 4099, 20011};
#define N_LENGTHS (sizeof k_lengths / sizeof k_lengths[0])

/* ---- signals ------------------------------------------------------------- */

static double s_peak(const tu_sig_t *x)
{
    double p = 0;
    for (int c = 0; c < x->n_ch; c++)
        for (size_t i = 0; i < x->n; i++)
            p = fmax(p, fabs((double)x->ch[c][i]));
    return p;
}

static double s_frame_peak(const tu_sig_t *x, size_t i)
{
    double p = 0;
    for (int c = 0; c < x->n_ch; c++)
        p = fmax(p, fabs((double)x->ch[c][i]));
    return p;
}

/* Noise in every channel, scaled. */
static tu_sig_t s_noise(int n_ch, size_t n, uint64_t seed, double scale)
{
    tu_sig_t s = tu_sig(n_ch, n);
    for (int c = 0; c < n_ch; c++)
        for (size_t i = 0; i < n; i++)
            s.ch[c][i] = (float)(scale * tu_noise(seed + (uint64_t)c * 7919, (int64_t)i));
    return s;
}

/* Noise with a slowly moving level from -50 to +6 dBFS, silence patches,
 * full-scale frames and denormals: exercises every branch of the dynamics. */
static tu_sig_t s_busy(int n_ch, size_t n, uint64_t seed)
{
    tu_sig_t s = tu_sig(n_ch, n);
    for (size_t i = 0; i < n; i++) {
        double db = -22 + 28 * sin(2 * M_PI * (double)i / 3001.0) * cos(2 * M_PI * (double)i / 17389.0);
        double g = pow(10, db / 20);
        for (int c = 0; c < n_ch; c++) {
            float v = (float)(g * tu_noise(seed + (uint64_t)c * 31, (int64_t)i));
            switch ((i * 13 + (size_t)c) % 997) {
            case 0: v = 1.0f; break;
            case 1: v = -1.0f; break;
            case 2: v = 1e-40f; break;
            default: break;
            }
            if ((i / 1500) % 7 == 3)
                v = 0;
            s.ch[c][i] = v;
        }
    }
    return s;
}

/* ---- running effects ----------------------------------------------------- */

static void s_init(sf_fx_t *fx, const sf_fx_params_t *p, int n_ch, int fs)
{
    sf_err_t err = {0};
    sf_rc rc = sf_fx_init(fx, p, n_ch, fs, &err);
    ck_assert_msg(rc == SF_OK, "sf_fx_init: %s", err.msg);
}

/* The next chunk length of a random split: 0, 1, or up to `max`. */
static size_t s_chunk(uint64_t seed, int64_t k, size_t max)
{
    double u = (tu_noise(seed, k) + 1) / 2;
    if (u < 0.08)
        return 0;
    if (u < 0.2)
        return 1;
    return (size_t)(u * (double)max);
}

/* Processes x in place in chunks cut at random (seed 0: one call). */
static void s_process(sf_fx_t *fx, tu_sig_t *x, uint64_t seed)
{
    if (!seed) {
        sf_fx_process(fx, x->ch, x->n);
        return;
    }
    size_t at = 0;
    for (int64_t k = 0; at < x->n; k++) {
        size_t n = s_chunk(seed, k, 700);
        if (n > x->n - at)
            n = x->n - at;
        float *p[MAX_CH];
        for (int c = 0; c < x->n_ch; c++)
            p[c] = x->ch[c] + at;
        sf_fx_process(fx, p, n);
        at += n;
    }
}

/* The gain curve of x, in chunks cut at random (seed 0: one call). */
static float *s_gains(sf_fx_t *fx, const tu_sig_t *x, uint64_t seed)
{
    float *g = sf_malloc(sizeof(float) * (x->n ? x->n : 1));
    ck_assert_ptr_nonnull(g);
    size_t at = 0;
    for (int64_t k = 0; at < x->n; k++) {
        size_t n = seed ? s_chunk(seed, k, 500) : x->n;
        if (n > x->n - at)
            n = x->n - at;
        const float *p[MAX_CH];
        for (int c = 0; c < x->n_ch; c++)
            p[c] = x->ch[c] + at;
        sf_fx_dynamics_gain(fx, p, n, g + at);
        at += n;
    }
    return g;
}

/* A fresh effect run over x (copied). */
static tu_sig_t s_render(const sf_fx_params_t *p, const tu_sig_t *x, int fs, uint64_t seed)
{
    sf_fx_t fx;
    s_init(&fx, p, x->n_ch, fs);
    tu_sig_t y = tu_sig_copy(x);
    s_process(&fx, &y, seed);
    sf_fx_free(&fx);
    return y;
}

static void s_assert_same(const tu_sig_t *a, const tu_sig_t *b, const char *what)
{
    ck_assert_int_eq(a->n_ch, b->n_ch);
    ck_assert_uint_eq(a->n, b->n);
    for (int c = 0; c < a->n_ch; c++)
        ck_assert_msg(memcmp(a->ch[c], b->ch[c], sizeof(float) * a->n) == 0, "%s: channel %d differs", what, c);
}

static sf_fx_params_t s_comp(double thr, double ratio, double att, double rel, double knee, double makeup)
{
    sf_fx_params_t p = {.kind = SF_FX_COMPRESSOR};
    p.u.compressor.threshold_db = thr;
    p.u.compressor.ratio = ratio;
    p.u.compressor.attack_ms = att;
    p.u.compressor.release_ms = rel;
    p.u.compressor.knee_db = knee;
    p.u.compressor.makeup_db = makeup;
    return p;
}

static sf_fx_params_t s_lim(double ceiling, double rel, double lookahead)
{
    sf_fx_params_t p = {.kind = SF_FX_LIMITER};
    p.u.limiter.ceiling_db = ceiling;
    p.u.limiter.release_ms = rel;
    p.u.limiter.lookahead_ms = lookahead;
    return p;
}

static sf_fx_params_t s_rev(double decay, double predelay, double damping, double mix)
{
    sf_fx_params_t p = {.kind = SF_FX_REVERB};
    p.u.reverb.decay_s = decay;
    p.u.reverb.predelay_ms = predelay;
    p.u.reverb.damping = damping;
    p.u.reverb.mix = mix;
    return p;
}

/* ---- compressor ---------------------------------------------------------- */

/* Giannoulis et al. eq. 4, written as the output level y_G. */
static double s_ref_static(double x_db, double thr, double ratio, double knee)
{
    if (2 * (x_db - thr) < -knee)
        return x_db;
    if (knee > 0 && 2 * fabs(x_db - thr) <= knee)
        return x_db + (1 / ratio - 1) * pow(x_db - thr + knee / 2, 2) / (2 * knee);
    return thr + (x_db - thr) / ratio;
}

START_TEST(comp_static_curve)
{
    static const struct {
        double thr, ratio, knee, makeup;
    } cases[] = {
        {-20, 4, 0, 0}, {-20, 4, 6, 3}, {-40, 10, 12, 0}, {-10, 2, 48, -6}, {0, 100, 0, 0}, {-80, 1.5, 20, 48},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        double thr = cases[k].thr, knee = cases[k].knee;
        sf_fx_params_t p = s_comp(thr, cases[k].ratio, 0.05, 1, knee, cases[k].makeup);
        for (double lvl = thr - knee / 2 - 6; lvl <= fmin(thr + knee / 2 + 6, 12); lvl += 0.25) {
            /* DC, + in one channel and - at half the level in the other */
            tu_sig_t x = tu_sig(2, 400);
            float v = (float)pow(10, lvl / 20);
            for (size_t i = 0; i < x.n; i++) {
                x.ch[0][i] = v;
                x.ch[1][i] = -v / 2;
            }
            sf_fx_t fx;
            s_init(&fx, &p, 2, 48000);
            float *g = s_gains(&fx, &x, 0);
            double x_db = 20 * log10((double)v);
            double want = pow(10, (cases[k].makeup - (x_db - s_ref_static(x_db, thr, cases[k].ratio, knee))) / 20);
            ck_assert_msg(fabs((double)g[x.n - 1] / want - 1) < 3e-7, "T %g R %g W %g at %g dB: gain %.9g, want %.9g",
                          thr, cases[k].ratio, knee, lvl, (double)g[x.n - 1], want);
            sf_fx_free(&fx);
            sf_free(g);
            tu_sig_free(&x);
        }
    }
}
END_TEST

/* A DC step from silence and back: the gain reduction in dB follows
 * D (1 - a^(k+1)) up and D a^(k+1) down, a = exp(-1 / (tau fs)). */
START_TEST(comp_attack_release)
{
    static const int rates[] = {48000, 44100};
    for (int r = 0; r < 2; r++) {
        int fs = rates[r];
        double att_ms = 10, rel_ms = 100, thr = -30, ratio = 100, lvl = -10;
        sf_fx_params_t p = s_comp(thr, ratio, att_ms, rel_ms, 0, 0);
        size_t pre = 100, on = (size_t)fs, off = (size_t)fs;
        tu_sig_t x = tu_sig(1, pre + on + off);
        float v = (float)pow(10, lvl / 20);
        for (size_t i = pre; i < pre + on; i++)
            x.ch[0][i] = v;
        double d = (1 - 1 / ratio) * (20 * log10((double)v) - thr);
        sf_fx_t fx;
        s_init(&fx, &p, 1, fs);
        float *g = s_gains(&fx, &x, 99);
        for (size_t i = 0; i < pre; i++)
            ck_assert(g[i] == 1.0f);
        double a_att = exp(-1000 / (att_ms * fs)), a_rel = exp(-1000 / (rel_ms * fs));
        for (size_t k = 0; k < on; k++) {
            double want = d * (1 - pow(a_att, (double)(k + 1)));
            double got = -20 * log10((double)g[pre + k]);
            ck_assert_msg(fabs(got - want) < 2e-5, "attack frame %zu: %.9g dB, want %.9g", k, got, want);
        }
        for (size_t k = 0; k < off; k++) {
            double want = d * pow(a_rel, (double)(k + 1));
            double got = -20 * log10((double)g[pre + on + k]);
            ck_assert_msg(fabs(got - want) < 2e-5, "release frame %zu: %.9g dB, want %.9g", k, got, want);
        }
        /* 1 - 1/e of the step at tau */
        size_t ta = (size_t)llround(att_ms * fs / 1000), tr = (size_t)llround(rel_ms * fs / 1000);
        double up = -20 * log10((double)g[pre + ta - 1]) / d, down = -20 * log10((double)g[pre + on + tr - 1]) / d;
        ck_assert_msg(fabs(up - (1 - exp(-1))) < 1e-3, "attack at tau: %.6f of the step", up);
        ck_assert_msg(fabs(down - exp(-1)) < 1e-3, "release at tau: %.6f of the step left", down);
        sf_fx_free(&fx);
        sf_free(g);
        tu_sig_free(&x);
    }
}
END_TEST

START_TEST(comp_makeup)
{
    tu_sig_t x = s_noise(2, 4099, 5, 0.01); /* -40 dBFS, below the threshold */
    /* no makeup: transparent to the bit */
    sf_fx_params_t p = s_comp(-20, 4, 10, 100, 6, 0);
    tu_sig_t y = s_render(&p, &x, 48000, 0);
    s_assert_same(&x, &y, "below threshold, makeup 0");
    tu_sig_free(&y);
    /* makeup only */
    p.u.compressor.makeup_db = 7.5;
    y = s_render(&p, &x, 48000, 0);
    float m = (float)pow(10, 7.5 / 20);
    for (int c = 0; c < 2; c++)
        for (size_t i = 0; i < x.n; i++)
            ck_assert_msg(y.ch[c][i] == x.ch[c][i] * m ||
                              fabsf(y.ch[c][i] - x.ch[c][i] * m) <= fabsf(x.ch[c][i]) * 2e-7f,
                          "makeup at %zu", i);
    tu_sig_free(&y);
    tu_sig_free(&x);
}
END_TEST

/* A loud left channel reduces the right one by the same gain. */
START_TEST(comp_stereo_link)
{
    size_t n = 24000;
    tu_sig_t st = tu_sig(2, n), mono = tu_sig(1, n), swapped = tu_sig(2, n);
    for (size_t i = 0; i < n; i++) {
        float loud = (float)(0.9 * sin(2 * M_PI * 100 * (double)i / 48000));
        float quiet = (float)(0.001 * tu_noise(3, (int64_t)i));
        st.ch[0][i] = loud;
        st.ch[1][i] = quiet;
        mono.ch[0][i] = loud;
        swapped.ch[0][i] = quiet;
        swapped.ch[1][i] = loud;
    }
    sf_fx_params_t p = s_comp(-24, 6, 5, 80, 6, 0);
    sf_fx_t a, b, c;
    s_init(&a, &p, 2, 48000);
    s_init(&b, &p, 1, 48000);
    s_init(&c, &p, 2, 48000);
    float *g2 = s_gains(&a, &st, 0), *g1 = s_gains(&b, &mono, 0), *gs = s_gains(&c, &swapped, 0);
    ck_assert(memcmp(g2, g1, sizeof(float) * n) == 0);
    ck_assert(memcmp(g2, gs, sizeof(float) * n) == 0);
    ck_assert_msg(g2[n - 1] < 0.3f, "the quiet channel is reduced too: gain %g", (double)g2[n - 1]);
    tu_sig_t y = s_render(&p, &st, 48000, 0);
    for (size_t i = 0; i < n; i++)
        ck_assert(y.ch[1][i] == st.ch[1][i] * g2[i] && y.ch[0][i] == st.ch[0][i] * g2[i]);
    sf_fx_free(&a);
    sf_fx_free(&b);
    sf_fx_free(&c);
    sf_free(g1);
    sf_free(g2);
    sf_free(gs);
    tu_sig_free(&y);
    tu_sig_free(&st);
    tu_sig_free(&mono);
    tu_sig_free(&swapped);
}
END_TEST

/* ---- compressor and limiter: process == delayed input * gain_curve ------- */

static const sf_fx_params_t *s_dyn_cases(size_t *n)
{
    static sf_fx_params_t c[6];
    c[0] = s_comp(-20, 4, 10, 100, 6, 3);
    c[1] = s_comp(-40, 100, 0.01, 1, 0, 0);
    c[2] = s_comp(-10, 2, 1000, 10000, 48, -24);
    c[3] = s_lim(-1, 50, 5);
    c[4] = s_lim(0, 1, 0);
    c[5] = s_lim(-6, 200, 0.7);
    *n = 6;
    return c;
}

START_TEST(dyn_gain_curve_is_process)
{
    size_t n_cases;
    const sf_fx_params_t *cases = s_dyn_cases(&n_cases);
    for (size_t k = 0; k < n_cases; k++)
        for (size_t li = 0; li < N_LENGTHS; li++) {
            int n_ch = 1 + (int)((k + li) % 3);
            tu_sig_t x = s_busy(n_ch, k_lengths[li], 11 + k);
            tu_sig_t y = s_render(&cases[k], &x, 48000, 17 + li);
            sf_fx_t fx;
            s_init(&fx, &cases[k], n_ch, 48000);
            float *g = s_gains(&fx, &x, 23 + li);
            size_t lat = (size_t)sf_fx_latency_frames(&cases[k], 48000);
            for (int c = 0; c < n_ch; c++)
                for (size_t i = 0; i < x.n; i++) {
                    float in = i >= lat ? x.ch[c][i - lat] : 0.0f;
                    ck_assert_msg(y.ch[c][i] == in * g[i], "case %zu length %zu ch %d frame %zu: %.9g != %.9g * %.9g",
                                  k, x.n, c, i, (double)y.ch[c][i], (double)in, (double)g[i]);
                }
            sf_fx_free(&fx);
            sf_free(g);
            tu_sig_free(&x);
            tu_sig_free(&y);
        }
}
END_TEST

/* ---- compressor kernels against the reference ----------------------------
 *
 * The reference is the compressor as it ran one frame at a time, term for
 * term: the detector peak, ln by frexp and its atanh series, the static
 * curve, the smoother, 10^((M - y)/20) by sf_dsp_db_to_gain (s_ref_comp_*).
 * The block passes must give the same bytes (memcmp), for process() and for
 * the gain curve, however the signal is cut. */

#define REF_DB_PER_NEPER 8.6858896380650365530
#define REF_LN2_HI       0x1.62e42fefa3800p-1
#define REF_LN2_LO       0x1.ef35793c76730p-45

typedef struct {
    double thr, slope, knee, lo_lin, makeup, a_att, a_rel, y;
} ref_comp_t;

static double s_ref_ln(double x)
{
    static const double inv_odd[] = {1.0,      1.0 / 3,  1.0 / 5,  1.0 / 7,  1.0 / 9,  1.0 / 11,
                                     1.0 / 13, 1.0 / 15, 1.0 / 17, 1.0 / 19, 1.0 / 21, 1.0 / 23};
    int e;
    double m = frexp(x, &e);
    if (m < 0.70710678118654752440) {
        m *= 2;
        e--;
    }
    double s = (m - 1) / (m + 1);
    double s2 = s * s;
    double t = inv_odd[11];
    for (int k = 10; k >= 0; k--)
        t = t * s2 + inv_odd[k];
    return (double)e * REF_LN2_HI + ((double)e * REF_LN2_LO + 2 * s * t);
}

static ref_comp_t s_ref_comp_init(const sf_fx_params_t *p, int fs)
{
    ref_comp_t s = {0};
    s.thr = p->u.compressor.threshold_db;
    s.slope = 1 - 1 / p->u.compressor.ratio;
    s.knee = p->u.compressor.knee_db;
    s.lo_lin = sf_dsp_db_to_gain(s.thr - s.knee / 2);
    s.makeup = p->u.compressor.makeup_db;
    s.a_att = sf_dsp_db_to_gain(-1000.0 / (p->u.compressor.attack_ms * fs) * REF_DB_PER_NEPER);
    s.a_rel = sf_dsp_db_to_gain(-1000.0 / (p->u.compressor.release_ms * fs) * REF_DB_PER_NEPER);
    return s;
}

/* One frame: detector peak -> linear gain. */
static double s_ref_comp_step(ref_comp_t *s, double p)
{
    double xl = 0;
    if (p > s->lo_lin) {
        double d = REF_DB_PER_NEPER * s_ref_ln(p) - s->thr;
        if (2 * d <= -s->knee)
            xl = 0;
        else if (2 * d < s->knee) {
            double k = d + s->knee / 2;
            xl = s->slope * k * k / (2 * s->knee);
        } else
            xl = s->slope * d;
    }
    double a = xl > s->y ? s->a_att : s->a_rel;
    double y = a * s->y + (1 - a) * xl;
    s->y = y < 1e-30 ? 0 : y;
    return sf_dsp_db_to_gain(s->makeup - s->y);
}

static float s_ref_frame_peak(const tu_sig_t *x, size_t i)
{
    float p = 0;
    for (int c = 0; c < x->n_ch; c++) {
        float v = fabsf(x->ch[c][i]);
        if (v > p)
            p = v;
    }
    return p;
}

/* The reference process() (in place) and gain curve. */
static void s_ref_comp_process(const sf_fx_params_t *p, tu_sig_t *x)
{
    ref_comp_t s = s_ref_comp_init(p, 48000);
    for (size_t i = 0; i < x->n; i++) {
        float g = (float)s_ref_comp_step(&s, s_ref_frame_peak(x, i));
        for (int c = 0; c < x->n_ch; c++)
            x->ch[c][i] *= g;
    }
}

static float *s_ref_comp_gains(const sf_fx_params_t *p, const tu_sig_t *x)
{
    ref_comp_t s = s_ref_comp_init(p, 48000);
    float *g = sf_malloc(sizeof(float) * (x->n ? x->n : 1));
    ck_assert_ptr_nonnull(g);
    for (size_t i = 0; i < x->n; i++)
        g[i] = (float)s_ref_comp_step(&s, s_ref_frame_peak(x, i));
    return g;
}

typedef enum { CS_NOISE, CS_BURSTS, CS_SILENCE, CS_KNEE_RAMP, CS_LOUD, CS_SPECIALS, CS_BUSY, N_CS } comp_sig_t;
static const char *const k_cs_names[] = {"noise", "bursts", "silence", "knee ramp", "very loud", "inf/nan", "busy"};

/* Test signals for the compressor (seeded, any length). */
static tu_sig_t s_comp_signal(comp_sig_t kind, int n_ch, size_t n, uint64_t seed)
{
    tu_sig_t s = tu_sig(n_ch, n);
    for (size_t i = 0; i < n; i++) {
        for (int c = 0; c < n_ch; c++) {
            double w = tu_noise(seed + (uint64_t)c * 131, (int64_t)i), db = 0;
            switch (kind) {
            case CS_NOISE: db = -30 + 10 * (double)(seed % 5); break; /* -30 .. +10 dBFS */
            case CS_BURSTS: db = (i / 2203) % 2 ? -90 : 6 - 3 * (double)((i / 4406) % 9); break;
            case CS_SILENCE: db = -1000; break;
            case CS_KNEE_RAMP: db = -70 + 80 * (double)i / (double)(n ? n : 1); break; /* -70 .. +10 */
            case CS_LOUD: db = 120 + 600 * (double)((i / 997) % 2); break;             /* 1e6 .. FLT_MAX */
            case CS_SPECIALS: db = -12; break;
            case CS_BUSY: break;
            case N_CS: break;
            }
            float v = (float)(w * pow(10, db / 20));
            if (kind == CS_LOUD && (i + (size_t)c) % 5 == 0)
                v = (i & 1) ? FLT_MAX : -FLT_MAX;
            if (kind == CS_SILENCE && (i * 7 + (size_t)c) % 1009 == 0)
                v = (i & 1) ? 1e-40f : -0.0f;
            if (kind == CS_SPECIALS) {
                /* -0 and denormals throughout, NaN in the first three quarters,
                 * infinities (NaN gains ever after) in the last: a NaN sample
                 * times a NaN gain is either NaN, as the compiler orders the
                 * operands of the product (-O0 and -O2 differ) */
                size_t k = (i * 11 + (size_t)c * 3) % 4001;
                bool late = i > n / 4 * 3;
                v = k == 1 && !late ? NAN : k == 2 ? -0.0f : k == 3 ? 1e-42f : v;
                if (k == 0 && late)
                    v = (i & 1) ? INFINITY : -INFINITY;
            }
            s.ch[c][i] = v;
        }
    }
    if (kind == CS_BUSY) {
        tu_sig_free(&s);
        s = s_busy(n_ch, n, seed);
    }
    return s;
}

static const sf_fx_params_t *s_comp_cases(size_t *n)
{
    static sf_fx_params_t c[8];
    c[0] = s_comp(-24, 3, 10, 120, 0, 0); /* the effects bench */
    c[1] = s_comp(-20, 4, 10, 100, 6, 3);
    c[2] = s_comp(-40, 100, 0.01, 1, 0, 0);
    c[3] = s_comp(-10, 2, 1000, 10000, 48, -24);
    c[4] = s_comp(0, 1, 5, 50, 0, 12); /* ratio 1: never reduces, makeup only */
    c[5] = s_comp(-80, 20, 0.5, 5, 24, 48);
    c[6] = s_comp(-18, 1.5, 3, 300, 0.5, 0);
    c[7] = s_comp(0, 8, 1, 20, 0, 0);
    *n = 8;
    return c;
}

static const int k_comp_channels[] = {1, 2, 6, 8};

START_TEST(comp_matches_reference)
{
    size_t n_cases;
    const sf_fx_params_t *cases = s_comp_cases(&n_cases);
    const int n_ch = k_comp_channels[_i % 4];
    const comp_sig_t kind = (comp_sig_t)(_i / 4);
    for (size_t k = 0; k < n_cases; k++) {
        const size_t n = 20011 + 256 * (size_t)k; /* odd, and not a multiple of the block */
        tu_sig_t x = s_comp_signal(kind, n_ch, n, 3 + k);
        tu_sig_t ref = tu_sig_copy(&x);
        s_ref_comp_process(&cases[k], &ref);
        float *g_ref = s_ref_comp_gains(&cases[k], &x);
        for (uint64_t seed = 0; seed < 3; seed++) { /* one call, then random cuts */
            tu_sig_t y = s_render(&cases[k], &x, 48000, seed ? 1000 * seed + k : 0);
            ck_assert_msg(memcmp(y.ch[0], ref.ch[0], 0) == 0, "unreachable");
            for (int c = 0; c < n_ch; c++)
                ck_assert_msg(memcmp(y.ch[c], ref.ch[c], sizeof(float) * n) == 0,
                              "process, %s, case %zu, %d channels, cut %llu: channel %d differs from the reference",
                              k_cs_names[kind], k, n_ch, (unsigned long long)seed, c);
            sf_fx_t fx;
            s_init(&fx, &cases[k], n_ch, 48000);
            float *g = s_gains(&fx, &x, seed ? 2000 * seed + k : 0);
            ck_assert_msg(memcmp(g, g_ref, sizeof(float) * n) == 0,
                          "gain curve, %s, case %zu, %d channels, cut %llu: differs from the reference",
                          k_cs_names[kind], k, n_ch, (unsigned long long)seed);
            sf_free(g);
            sf_fx_free(&fx);
            tu_sig_free(&y);
        }
        /* odd lengths in one call: a prefix of the reference */
        for (size_t li = 0; li < N_LENGTHS; li++) {
            if (k_lengths[li] > n)
                continue;
            tu_sig_t head = tu_sig_slice(&x, 0, k_lengths[li]);
            tu_sig_t y = s_render(&cases[k], &head, 48000, 0);
            for (int c = 0; c < n_ch; c++)
                ck_assert_msg(memcmp(y.ch[c], ref.ch[c], sizeof(float) * head.n) == 0,
                              "%s, case %zu, %d channels, length %zu", k_cs_names[kind], k, n_ch, head.n);
            tu_sig_free(&y);
            tu_sig_free(&head);
        }
        sf_free(g_ref);
        tu_sig_free(&ref);
        tu_sig_free(&x);
    }
}
END_TEST

/* Mixing process() and the gain curve on one effect keeps one state, as the
 * reference's single step does. */
START_TEST(comp_process_and_gain_interleaved)
{
    size_t n_cases;
    const sf_fx_params_t *cases = s_comp_cases(&n_cases);
    for (size_t k = 0; k < n_cases; k++) {
        tu_sig_t x = s_comp_signal(CS_BUSY, 2, 30011, 5 + k);
        tu_sig_t ref = tu_sig_copy(&x);
        s_ref_comp_process(&cases[k], &ref);
        float *g_ref = s_ref_comp_gains(&cases[k], &x);
        sf_fx_t fx;
        s_init(&fx, &cases[k], 2, 48000);
        int64_t kk = 0;
        for (size_t at = 0; at < x.n; kk++) {
            size_t n = s_chunk(99 + k, kk, 900);
            if (n > x.n - at)
                n = x.n - at;
            if (kk % 2) {
                float *p[2] = {x.ch[0] + at, x.ch[1] + at};
                sf_fx_process(&fx, p, n);
                for (int c = 0; c < 2; c++)
                    ck_assert_msg(memcmp(p[c], ref.ch[c] + at, sizeof(float) * n) == 0, "case %zu at %zu", k, at);
            } else {
                const float *p[2] = {x.ch[0] + at, x.ch[1] + at};
                float g[900];
                sf_fx_dynamics_gain(&fx, p, n, g);
                ck_assert_msg(memcmp(g, g_ref + at, sizeof(float) * n) == 0, "case %zu gains at %zu", k, at);
            }
            at += n;
        }
        sf_fx_free(&fx);
        sf_free(g_ref);
        tu_sig_free(&ref);
        tu_sig_free(&x);
    }
}
END_TEST

/* ---- limiter ------------------------------------------------------------- */

typedef enum { SQ2, SQ3, SQ100, SQ1001, SQ_LOUD, SPIKES, SPIKE_TRAIN, NOISE, SINE_SPIKES, N_ADV } adv_t;

static tu_sig_t s_adversarial(adv_t kind, size_t n)
{
    tu_sig_t s = tu_sig(2, n);
    for (size_t i = 0; i < n; i++) {
        double v = 0;
        switch (kind) {
        case SQ2: v = i % 2 ? -1 : 1; break;
        case SQ3: v = (i / 3) % 2 ? -1 : 1; break;
        case SQ100: v = (i / 100) % 2 ? -1 : 1; break;
        case SQ1001: v = (i / 1001) % 2 ? -1 : 1; break;
        case SQ_LOUD: v = (i / 37) % 2 ? -10 : 10; break;
        case SPIKES: {
            static const double amp[] = {1, 4, -1000, 1e30, -3, 1.0000001, 0.99};
            v = i % 1237 == 600 ? amp[(i / 1237) % 7] : 0;
            break;
        }
        case SPIKE_TRAIN: /* spikes 1, 2, 3 ... frames apart, growing */
            v = 0;
            for (size_t d = 1, at = 100; at < n; d++, at += d * 30)
                if (i >= at && i < at + 30 && (i - at) % d == 0)
                    v = 1 + (double)(i - at) / 10;
            break;
        case NOISE: v = 4 * tu_noise(77, (int64_t)i); break;
        case SINE_SPIKES: v = 2 * sin(2 * M_PI * 997 * (double)i / 48000) + (i % 501 == 0 ? 5 : 0); break;
        default: break;
        }
        s.ch[0][i] = (float)v;
        s.ch[1][i] = (float)(kind == NOISE ? 4 * tu_noise(78, (int64_t)i) : -v * 0.7);
    }
    return s;
}

START_TEST(lim_never_exceeds)
{
    static const double ceilings[] = {0, -0.1, -1, -6.0206, -20, -60};
    static const double lookaheads[] = {0, 0.02, 1, 5, 50};
    static const double releases[] = {1, 50, 10000};
    size_t n = 9001;
    tu_sig_t x[N_ADV];
    for (int k = 0; k < N_ADV; k++)
        x[k] = s_adversarial((adv_t)k, n);
    for (size_t ci = 0; ci < sizeof ceilings / sizeof *ceilings; ci++)
        for (size_t li = 0; li < sizeof lookaheads / sizeof *lookaheads; li++)
            for (size_t ri = 0; ri < sizeof releases / sizeof *releases; ri++) {
                sf_fx_params_t p = s_lim(ceilings[ci], releases[ri], lookaheads[li]);
                double c = pow(10, ceilings[ci] / 20);
                for (int k = 0; k < N_ADV; k++) {
                    tu_sig_t y = s_render(&p, &x[k], 48000, (uint64_t)k);
                    double peak = s_peak(&y);
                    ck_assert_msg(peak <= c, "ceiling %g dB look-ahead %g ms signal %d: peak %.9g > %.9g", ceilings[ci],
                                  lookaheads[li], k, peak, c);
                    /* and it brings the first overload exactly to the ceiling (when nothing
                     * louder follows within the look-ahead) */
                    size_t lat = (size_t)sf_fx_latency_frames(&p, 48000), j = 0;
                    while (j < n && s_frame_peak(&x[k], j) <= c)
                        j++;
                    bool loudest = j + lat < n;
                    for (size_t i = j + 1; loudest && i <= j + lat; i++)
                        loudest = s_frame_peak(&x[k], i) <= s_frame_peak(&x[k], j);
                    if (loudest)
                        ck_assert_msg(s_frame_peak(&y, j + lat) >= c * 0.99999,
                                      "signal %d: first overload %.9g, not at the ceiling %.9g", k,
                                      s_frame_peak(&y, j + lat), c);
                    tu_sig_free(&y);
                }
            }
    for (int k = 0; k < N_ADV; k++)
        tu_sig_free(&x[k]);
}
END_TEST

/* Random signals at random levels, random ceilings and look-aheads. */
START_TEST(lim_never_exceeds_random)
{
    for (int64_t t = 0; t < 60; t++) {
        double ceiling = -30 * (tu_noise(901, t) + 1) / 2;
        double la = 50 * (tu_noise(902, t) + 1) / 2;
        double rel = 1 + 500 * (tu_noise(903, t) + 1) / 2;
        double lvl = pow(10, 2 * tu_noise(904, t)); /* -40 .. +40 dB */
        int fs = t % 2 ? 44100 : 96000;
        sf_fx_params_t p = s_lim(ceiling, rel, la);
        tu_sig_t x = s_noise(1 + (int)(t % 4), 6007, (uint64_t)(1000 + t), lvl);
        tu_sig_t y = s_render(&p, &x, fs, (uint64_t)(2000 + t));
        ck_assert_msg(s_peak(&y) <= pow(10, ceiling / 20), "trial %lld", (long long)t);
        tu_sig_free(&x);
        tu_sig_free(&y);
    }
}
END_TEST

START_TEST(lim_latency)
{
    static const double lookaheads[] = {0, 0.01, 0.02, 1, 1.5, 5, 50};
    static const int rates[] = {44100, 48000, 96000};
    for (size_t r = 0; r < 3; r++)
        for (size_t li = 0; li < sizeof lookaheads / sizeof *lookaheads; li++) {
            int fs = rates[r];
            sf_fx_params_t p = s_lim(-1, 50, lookaheads[li]);
            int64_t lat = sf_fx_latency_frames(&p, fs);
            ck_assert_int_eq(lat, (int64_t)floor(lookaheads[li] * fs / 1000 + 0.5));
            /* a click under the ceiling comes out lat frames later, unchanged */
            tu_sig_t x = tu_sig(2, 5003);
            x.ch[1][1000] = 0.5f;
            tu_sig_t y = s_render(&p, &x, fs, 5);
            for (size_t i = 0; i < y.n; i++) {
                ck_assert(y.ch[0][i] == 0.0f);
                ck_assert_msg(y.ch[1][i] == (i == 1000 + (size_t)lat ? 0.5f : 0.0f), "frame %zu", i);
            }
            tu_sig_free(&y);
            /* a click over it comes out at the ceiling, at the same place */
            x.ch[1][1000] = -3.0f;
            y = s_render(&p, &x, fs, 6);
            double c = pow(10, -1.0 / 20);
            for (size_t i = 0; i < y.n; i++) {
                if (i == 1000 + (size_t)lat)
                    ck_assert_msg(fabs((double)y.ch[1][i] + c) < 1e-6, "clicked frame %.9g", (double)y.ch[1][i]);
                else
                    ck_assert(y.ch[1][i] == 0.0f);
            }
            tu_sig_free(&y);
            tu_sig_free(&x);
        }
}
END_TEST

/* Under the ceiling the limiter is a delay, to the bit; after an overload it
 * comes back to exactly that once the release has settled. */
START_TEST(lim_transparent)
{
    static const double lookaheads[] = {0, 0.02, 2, 5, 50};
    for (size_t li = 0; li < sizeof lookaheads / sizeof *lookaheads; li++) {
        sf_fx_params_t p = s_lim(-1, 1, lookaheads[li]);
        size_t lat = (size_t)sf_fx_latency_frames(&p, 48000);
        tu_sig_t x = s_noise(2, 20011, 9, 0.89); /* -1.01 dBFS at most */
        /* an overload early on */
        for (size_t i = 1000; i < 1200; i++)
            x.ch[0][i] *= 4;
        tu_sig_t y = s_render(&p, &x, 48000, 13 + li);
        /* settled: the moving window, then 40 release time constants */
        size_t settled = 1200 + 2 * lat + 2 + 40 * 48;
        for (int c = 0; c < 2; c++) {
            for (size_t i = 0; i < lat; i++)
                ck_assert(y.ch[c][i] == 0.0f);
            for (size_t i = lat; i < 1000; i++)
                ck_assert_msg(y.ch[c][i] == x.ch[c][i - lat], "before the overload, frame %zu", i);
            for (size_t i = settled; i < x.n; i++)
                ck_assert_msg(y.ch[c][i] == x.ch[c][i - lat], "after the overload, frame %zu", i);
        }
        tu_sig_free(&x);
        tu_sig_free(&y);
    }
}
END_TEST

/* Without look-ahead a spike sets the gain to ceiling / spike and the gain
 * returns as 1 - (1 - g0) exp(-t / tau). */
START_TEST(lim_release)
{
    double rel_ms = 20, c = pow(10, -6.0 / 20);
    sf_fx_params_t p = s_lim(-6, rel_ms, 0);
    tu_sig_t x = tu_sig(1, 10000);
    x.ch[0][100] = 2;
    sf_fx_t fx;
    s_init(&fx, &p, 1, 48000);
    float *g = s_gains(&fx, &x, 3);
    double g0 = c / 2, a = exp(-1000 / (rel_ms * 48000));
    ck_assert_msg(fabs((double)g[100] / g0 - 1) < 1e-6, "gain at the spike %.9g, want %.9g", (double)g[100], g0);
    for (size_t m = 1; m < 5000; m++) {
        double want = 1 - (1 - g0) * pow(a, (double)m);
        ck_assert_msg(fabs((double)g[100 + m] - want) < 1e-6, "release frame %zu: %.9g, want %.9g", m,
                      (double)g[100 + m], want);
    }
    sf_fx_free(&fx);
    sf_free(g);
    tu_sig_free(&x);
}
END_TEST

/* ---- reverb -------------------------------------------------------------- */

/* RT60 of an impulse response: Schroeder backward integration of the energy
 * (summed over channels), least-squares line through the decay curve from
 * -5 to -35 dB, extrapolated to -60 dB. Seconds. */
static double s_rt60(const tu_sig_t *h, int fs)
{
    double *edc = malloc(sizeof(double) * h->n);
    ck_assert_ptr_nonnull(edc);
    double acc = 0;
    for (size_t i = h->n; i-- > 0;) {
        for (int c = 0; c < h->n_ch; c++)
            acc += (double)h->ch[c][i] * (double)h->ch[c][i];
        edc[i] = acc;
    }
    double total = edc[0];
    double sx = 0, sy = 0, sxx = 0, sxy = 0, cnt = 0;
    bool started = false;
    for (size_t i = 0; i < h->n; i++) {
        double db = 10 * log10(edc[i] / total);
        if (db <= -5)
            started = true;
        if (db < -35)
            break;
        if (!started)
            continue;
        double t = (double)i / fs;
        sx += t;
        sy += db;
        sxx += t * t;
        sxy += t * db;
        cnt++;
    }
    free(edc);
    ck_assert(cnt > 10);
    double slope = (cnt * sxy - sx * sy) / (cnt * sxx - sx * sx);
    return -60 / slope;
}

START_TEST(rev_rt60)
{
    static const double decays[] = {0.3, 1, 2.4, 5};
    static const double dampings[] = {0, 0.5, 1};
    static const int rates[] = {48000, 44100};
    for (size_t r = 0; r < 2; r++)
        for (size_t d = 0; d < 4; d++)
            for (size_t m = 0; m < 3; m++) {
                int fs = rates[r];
                sf_fx_params_t p = s_rev(decays[d], 10, dampings[m], 1);
                tu_sig_t x = tu_sig(2, (size_t)(1.5 * decays[d] * fs) + (size_t)fs / 10);
                x.ch[0][0] = 1;
                tu_sig_t h = s_render(&p, &x, fs, 0);
                double rt = s_rt60(&h, fs);
                printf("reverb rt60: fs %d decay %.1f s damping %.1f: measured %.4f s (%+.2f %%)\n", fs, decays[d],
                       dampings[m], rt, 100 * (rt / decays[d] - 1));
                ck_assert_msg(fabs(rt / decays[d] - 1) <= 0.10, "fs %d decay %g damping %g: rt60 %.4f s", fs, decays[d],
                              dampings[m], rt);
                tu_sig_free(&x);
                tu_sig_free(&h);
            }
}
END_TEST

/* Channels read the network with orthogonal signs: their impulse responses
 * hardly correlate. */
START_TEST(rev_decorrelated)
{
    for (int n_ch = 2; n_ch <= 8; n_ch += 6) {
        sf_fx_params_t p = s_rev(1.5, 0, 0.3, 1);
        tu_sig_t x = tu_sig(n_ch, 72000);
        for (int c = 0; c < n_ch; c++)
            x.ch[c][0] = 1;
        tu_sig_t h = s_render(&p, &x, 48000, 0);
        for (int a = 0; a < n_ch; a++)
            for (int b = a + 1; b < n_ch; b++) {
                double sab = 0, saa = 0, sbb = 0;
                for (size_t i = 0; i < h.n; i++) {
                    sab += (double)h.ch[a][i] * (double)h.ch[b][i];
                    saa += (double)h.ch[a][i] * (double)h.ch[a][i];
                    sbb += (double)h.ch[b][i] * (double)h.ch[b][i];
                }
                double rho = sab / sqrt(saa * sbb);
                ck_assert_msg(fabs(rho) < (n_ch == 2 ? 0.05 : 0.2), "channels %d and %d: correlation %.3f", a, b, rho);
                ck_assert(saa > 0.01);
            }
        tu_sig_free(&x);
        tu_sig_free(&h);
    }
}
END_TEST

START_TEST(rev_dry_and_predelay)
{
    tu_sig_t x = s_busy(2, 4099, 8);
    sf_fx_params_t p = s_rev(2, 30, 0.5, 0);
    tu_sig_t y = s_render(&p, &x, 48000, 4);
    s_assert_same(&x, &y, "mix 0");
    ck_assert_int_eq(sf_fx_tail_frames(&p, 48000, -144), 0);
    tu_sig_free(&y);
    tu_sig_free(&x);
    /* wet only: nothing comes out before the predelay plus the shortest line */
    p = s_rev(2, 30, 0.5, 1);
    x = tu_sig(1, 9000);
    x.ch[0][0] = 1;
    y = s_render(&p, &x, 48000, 0);
    size_t first = 0;
    while (first < y.n && y.ch[0][first] == 0.0f)
        first++;
    ck_assert_uint_ge(first, 1440 + 1000);
    ck_assert_uint_lt(first, 1440 + 1200);
    tu_sig_free(&y);
    tu_sig_free(&x);
}
END_TEST

/* ---- every effect: cuts, reset, tails ------------------------------------ */

static const sf_fx_params_t *s_all_cases(size_t *n)
{
    static sf_fx_params_t c[10];
    size_t k;
    const sf_fx_params_t *d = s_dyn_cases(&k);
    memcpy(c, d, sizeof(sf_fx_params_t) * k);
    c[k++] = s_rev(2.4, 20, 0.5, 0.3);
    c[k++] = s_rev(0.3, 0, 0, 1);
    c[k++] = s_rev(5, 500, 1, 1);
    *n = k;
    return c;
}

START_TEST(all_split_invariant)
{
    size_t n_cases;
    const sf_fx_params_t *cases = s_all_cases(&n_cases);
    for (size_t k = 0; k < n_cases; k++)
        for (size_t li = 0; li < N_LENGTHS; li++) {
            int n_ch = 1 + (int)((k * 3 + li) % 8);
            tu_sig_t x = s_busy(n_ch, k_lengths[li], 40 + k);
            tu_sig_t whole = s_render(&cases[k], &x, 44100, 0);
            for (uint64_t seed = 1; seed <= 3; seed++) {
                tu_sig_t cut = s_render(&cases[k], &x, 44100, seed * 101 + li);
                s_assert_same(&whole, &cut, "random split");
                tu_sig_free(&cut);
            }
            /* reset gives the fresh state back */
            sf_fx_t fx;
            s_init(&fx, &cases[k], n_ch, 44100);
            tu_sig_t y = tu_sig_copy(&x);
            s_process(&fx, &y, 7);
            sf_fx_reset(&fx);
            tu_sig_free(&y);
            y = tu_sig_copy(&x);
            s_process(&fx, &y, 9);
            s_assert_same(&whole, &y, "after reset");
            sf_fx_free(&fx);
            tu_sig_free(&y);
            tu_sig_free(&whole);
            tu_sig_free(&x);
        }
}
END_TEST

/* Renders x continuously and again from t0 - tail (fresh state), and checks
 * frames [t0, t0 + n_cmp) agree within 10^(thr/20) of the continuous peak. */
static void s_check_tail(const sf_fx_params_t *p, const tu_sig_t *x, int fs, size_t t0, size_t n_cmp, const char *what)
{
    double thr = -120;
    int64_t tail = sf_fx_tail_frames(p, fs, thr);
    ck_assert_int_gt(tail, 0);
    ck_assert_msg((size_t)tail <= t0, "%s: tail %lld longer than the lead-in", what, (long long)tail);
    tu_sig_t full = s_render(p, x, fs, 0);
    size_t from = t0 - (size_t)tail;
    tu_sig_t part = tu_sig_slice(x, from, t0 + n_cmp - from);
    tu_sig_t y = s_render(p, &part, fs, 0);
    double peak = s_peak(&full), worst = 0;
    for (int c = 0; c < x->n_ch; c++)
        for (size_t i = 0; i < n_cmp; i++)
            worst = fmax(worst, fabs((double)full.ch[c][t0 + i] - (double)y.ch[c][t0 - from + i]));
    printf("tail %s: %lld frames, residual %.1f dB re peak\n", what, (long long)tail,
           worst > 0 ? 20 * log10(worst / peak) : -HUGE_VAL);
    ck_assert_msg(worst <= peak * pow(10, thr / 20), "%s: residual %g, peak %g", what, worst, peak);
    tu_sig_free(&y);
    tu_sig_free(&part);
    tu_sig_free(&full);
}

/* Loud, then quiet (under the threshold) for exactly the tail, then loud:
 * the continuous render enters the quiet part deep in reduction, the
 * pre-rolled one fresh, and both release for the whole tail. */
static tu_sig_t s_loud_quiet_loud(int n_ch, size_t n, size_t quiet_from, size_t quiet_to, double loud, double quiet)
{
    tu_sig_t x = tu_sig(n_ch, n);
    for (int c = 0; c < n_ch; c++)
        for (size_t i = 0; i < n; i++) {
            double g = i >= quiet_from && i < quiet_to ? quiet : loud;
            x.ch[c][i] = (float)(g * tu_noise(500 + (uint64_t)c, (int64_t)i));
        }
    return x;
}

START_TEST(all_tails)
{
    int fs = 48000;
    /* compressor: busy signal, and the adversarial loud-quiet-loud */
    sf_fx_params_t cp[] = {s_comp(-30, 8, 5, 100, 0, 6), s_comp(-20, 4, 30, 20, 6, 0),
                           s_comp(-60, 100, 0.1, 50, 0, 30)};
    for (size_t k = 0; k < sizeof cp / sizeof *cp; k++) {
        size_t tail = (size_t)sf_fx_tail_frames(&cp[k], fs, -120);
        tu_sig_t x = s_busy(2, tail + 30000, 60 + k);
        s_check_tail(&cp[k], &x, fs, tail + 10000, 20000, "compressor busy");
        tu_sig_free(&x);
        x = s_loud_quiet_loud(2, tail + 30000, 10000, tail + 10000, 1.0, 1e-4);
        s_check_tail(&cp[k], &x, fs, tail + 10000, 20000, "compressor loud-quiet-loud");
        tu_sig_free(&x);
    }
    /* limiter */
    sf_fx_params_t lp[] = {s_lim(-1, 50, 5), s_lim(-12, 300, 0), s_lim(0, 5, 50)};
    for (size_t k = 0; k < sizeof lp / sizeof *lp; k++) {
        size_t tail = (size_t)sf_fx_tail_frames(&lp[k], fs, -120);
        tu_sig_t x = s_busy(2, tail + 30000, 70 + k);
        s_check_tail(&lp[k], &x, fs, tail + 10000, 20000, "limiter busy");
        tu_sig_free(&x);
        x = s_loud_quiet_loud(2, tail + 30000, 10000, tail + 10000, 1.0, 0.01);
        s_check_tail(&lp[k], &x, fs, tail + 10000, 20000, "limiter loud-quiet-loud");
        tu_sig_free(&x);
    }
    /* reverb: noise throughout, and noise that stops in the middle of the tail */
    sf_fx_params_t rp[] = {s_rev(0.3, 0, 0, 1), s_rev(1, 20, 0.5, 0.5), s_rev(2.4, 5, 1, 1)};
    for (size_t k = 0; k < sizeof rp / sizeof *rp; k++) {
        size_t tail = (size_t)sf_fx_tail_frames(&rp[k], fs, -120);
        tu_sig_t x = s_noise(2, tail + 20000, 80 + k, 1.0);
        s_check_tail(&rp[k], &x, fs, tail + 5000, 15000, "reverb noise");
        tu_sig_free(&x);
        x = s_loud_quiet_loud(2, tail + 20000, 5000 + tail / 2, tail + 20000, 1.0, 0);
        s_check_tail(&rp[k], &x, fs, tail + 5000, 15000, "reverb decaying");
        tu_sig_free(&x);
    }
}
END_TEST

/* The tails and latencies, from their definitions. */
START_TEST(all_tail_values)
{
    int fs = 48000;
    double thr = -144;
    /* compressor: tau_slow fs ln(10^(-thr/20) max(1, ln10/20 D(+24 dBFS))) */
    sf_fx_params_t c = s_comp(-20, 4, 10, 100, 6, 0);
    double d = (1 - 1.0 / 4) * (24 - -20);
    double want = 0.1 * fs * (-thr / 20 * log(10) + log(log(10) / 20 * d));
    ck_assert_int_eq(sf_fx_tail_frames(&c, fs, thr), (int64_t)ceil(want));
    c.u.compressor.ratio = 1;
    ck_assert_int_eq(sf_fx_tail_frames(&c, fs, thr), 0);
    ck_assert_int_eq(sf_fx_latency_frames(&c, fs), 0);
    /* limiter: L + 1 + tau_R fs ln(10^((24 - thr)/20)) */
    sf_fx_params_t l = s_lim(-1, 50, 5);
    ck_assert_int_eq(sf_fx_latency_frames(&l, fs), 240);
    int64_t lt = sf_fx_tail_frames(&l, fs, thr);
    ck_assert_int_eq(lt, 241 + (int64_t)ceil(0.05 * fs * (24 - thr) / 20 * log(10)));
    /* reverb: predelay + decay (-thr/60) + the longest line (under 60 ms) */
    sf_fx_params_t r = s_rev(2, 20, 0.5, 1);
    int64_t rt = sf_fx_tail_frames(&r, fs, thr);
    int64_t base = 960 + (int64_t)ceil(2.0 * fs * 144 / 60);
    ck_assert_int_gt(rt, base);
    ck_assert_int_lt(rt, base + fs * 60 / 1000);
    ck_assert_int_eq(sf_fx_latency_frames(&r, fs), 0);
}
END_TEST

START_TEST(all_bad_params)
{
    static const struct {
        sf_fx_params_t p;
        const char *key;
    } cases[] = {
        {.p = {.kind = SF_FX_COMPRESSOR, .u.compressor = {-20, 0.5, 10, 100, 0, 0}}, "ratio"},
        {.p = {.kind = SF_FX_COMPRESSOR, .u.compressor = {-20, 4, 0, 100, 0, 0}}, "attack_ms"},
        {.p = {.kind = SF_FX_COMPRESSOR, .u.compressor = {-20, 4, 10, 100, 49, 0}}, "knee_db"},
        {.p = {.kind = SF_FX_COMPRESSOR, .u.compressor = {NAN, 4, 10, 100, 0, 0}}, "threshold_db"},
        {.p = {.kind = SF_FX_LIMITER, .u.limiter = {0.5, 50, 5}}, "ceiling_db"},
        {.p = {.kind = SF_FX_LIMITER, .u.limiter = {-1, 50, 51}}, "lookahead_ms"},
        {.p = {.kind = SF_FX_REVERB, .u.reverb = {0.05, 0, 0.5, 1}}, "decay_s"},
        {.p = {.kind = SF_FX_REVERB, .u.reverb = {2, 0, 1.5, 1}}, "damping"},
        {.p = {.kind = SF_FX_REVERB, .u.reverb = {2, 0, 0.5, -0.1}}, "mix"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        sf_fx_t fx;
        sf_err_t err = {0};
        ck_assert_int_eq(sf_fx_init(&fx, &cases[k].p, 2, 48000, &err), SF_E_INPUT);
        ck_assert_msg(strstr(err.msg, cases[k].key) != NULL, "message '%s' names '%s'", err.msg, cases[k].key);
        ck_assert_ptr_null(fx.state);
        sf_fx_free(&fx);
    }
}
END_TEST

START_TEST(all_alloc_failures)
{
    size_t n_cases;
    const sf_fx_params_t *cases = s_all_cases(&n_cases);
    for (size_t k = 0; k < n_cases; k++) {
        bool ok = false;
        for (long n = 1; n < 30 && !ok; n++) {
            sf_fx_t fx;
            sf_err_t err = {0};
            sf_alloc_fail_after(n);
            sf_rc rc = sf_fx_init(&fx, &cases[k], 3, 48000, &err);
            sf_alloc_fail_after(0);
            if (rc == SF_OK) {
                ok = true;
                tu_sig_t x = s_busy(3, 253, 1);
                s_process(&fx, &x, 0);
                tu_sig_free(&x);
                sf_fx_free(&fx);
            } else {
                ck_assert_int_eq(rc, SF_E_NOMEM);
                ck_assert_ptr_null(fx.state);
            }
        }
        ck_assert(ok);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("test_fx_dynamics");
    TCase *tc = tcase_create("compressor");
    tcase_add_test(tc, comp_static_curve);
    tcase_add_test(tc, comp_attack_release);
    tcase_add_test(tc, comp_makeup);
    tcase_add_test(tc, comp_stereo_link);
    tcase_add_test(tc, dyn_gain_curve_is_process);
    tcase_add_loop_test(tc, comp_matches_reference, 0, 4 * (int)N_CS);
    tcase_add_test(tc, comp_process_and_gain_interleaved);
    suite_add_tcase(s, tc);
    tc = tcase_create("limiter");
    tcase_add_test(tc, lim_never_exceeds);
    tcase_add_test(tc, lim_never_exceeds_random);
    tcase_add_test(tc, lim_latency);
    tcase_add_test(tc, lim_transparent);
    tcase_add_test(tc, lim_release);
    suite_add_tcase(s, tc);
    tc = tcase_create("reverb");
    tcase_add_test(tc, rev_rt60);
    tcase_add_test(tc, rev_decorrelated);
    tcase_add_test(tc, rev_dry_and_predelay);
    suite_add_tcase(s, tc);
    tc = tcase_create("all");
    tcase_add_test(tc, all_split_invariant);
    tcase_add_test(tc, all_tails);
    tcase_add_test(tc, all_tail_values);
    tcase_add_test(tc, all_bad_params);
    tcase_add_test(tc, all_alloc_failures);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
