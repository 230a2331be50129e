/* fx_reverb.c -- the algorithmic reverb: an 8-line feedback delay network.
 *
 *   u[n]      = predelay(mean_c x_c[n])              P = round(predelay_ms fs / 1000)
 *   o_i[n]    = line_i[n - d_i]                      8 delay lines, d_i distinct primes
 *   f_i[n]    = k_i (1 - b_i) o_i[n] + b_i f_i[n-1]  loss + damping (one-pole low-pass)
 *   line_i[n] = (H f[n])_i / sqrt(8) + in_i u[n]     H the 8x8 Hadamard matrix
 *   wet_c[n]  = sum_i out_{c,i} f_i[n]
 *   y_c[n]    = (1 - mix) x_c[n] + mix wet_c[n]
 *
 * Decay. H / sqrt(8) is orthogonal, so the loop without losses keeps energy;
 * a gain of k_i = 10^(-3 d_i / (fs T)) on a line of d_i frames is gamma^d_i
 * with gamma = 10^(-3 / (fs T)) per frame, which puts every pole of the
 * network at radius gamma (Jot's homogeneous decay): every mode falls by
 * 60 dB in T = decay_s, whatever the line lengths. Damping shortens the
 * decay at high frequencies only: each loss filter keeps its DC gain k_i (the
 * loop gain correction, so RT60 holds at low frequencies) and has at Nyquist
 * the gain that gives the decay time T_pi = T (1 - damping / 4) there,
 *   k_i (1 - b_i)/(1 + b_i) = 10^(-3 d_i / (fs T_pi)),
 *   b_i = (1 - r_i)/(1 + r_i),  r_i = 10^(-3 d_i / fs (1/T_pi - 1/T)),
 * exact for any line length (Jot's first-order formula for b_i overshoots 1
 * for long lines and short decays).
 * Why only down to 3/4 at the top: a white impulse response holds half its
 * energy in the top octave, so a broadband RT60 (Schroeder, -5..-35 dB)
 * follows the high-frequency decay closely. With this law it measures
 * decay_s -0.1..+0.7 % at damping 0, -5..-6 % at 0.5 and -9.3..-9.6 % at 1
 * (0.3 to 5 s, 44.1 and 48 kHz), so "RT60 within 10 % of decay_s" holds over
 * the whole damping range while the low frequencies decay in exactly
 * decay_s; a stronger law (T_pi = T / 2 at damping 1) measures -9.5 % already
 * at damping 0.5. The law is in normalised frequency, so at 96 kHz the
 * damping sits an octave higher in Hz.
 *
 * Line lengths: the prime at or above base_i fs / 1000 for base times from
 * 23 ms to 54 ms (the next unused prime, so they stay distinct and mutually
 * prime at any rate), which keeps the modes dense and the echoes from lining up.
 * Input: the channels' mean, into every line with the signs of in_i =
 * +-1/sqrt(8). Output: channel c reads the lines with the signs of Hadamard
 * row (c + 1) mod 8 over sqrt(8): rows are orthogonal, so the channels'
 * reverbs are decorrelated (up to 8 channels, all different).
 *
 * Everything is double and per frame, so any cut into calls gives the same
 * bytes; no random numbers; the coefficients come from sf_dsp_db_to_gain, the
 * same on every machine. Loss-filter states below 1e-30 are set to 0, so a
 * long silence never runs into denormals.
 *
 * Tail. The state that a pre-rolled render lacks (the predelay's contents
 * and the lines') takes P frames to reach the network and then decays as
 * gamma^n: with the lines' frames weighted by their remaining loss the
 * network's energy is non-increasing by exactly that factor, and the weights
 * differ by at most gamma^-d_max. So P + decay_s fs (-thr / 60) + d_max frames
 * take the residual below the threshold, relative to the level the network
 * held: the plain P + decay_s (-thr / 60) plus the longest line, which pays
 * for the weighting (about 11 dB at decay 0.3 s, where the plain formula
 * would sit right at the threshold). Mix 0 is dry: no tail.
 */
#include "fx_impl.h"

#include "sf/alloc.h"
#include "sf/dsp.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define SF_RV_LINES     8
#define SF_RV_NORM      0.35355339059327376220 /* 1 / sqrt(8) */
#define SF_RV_DAMP_K    0.25                   /* T_pi = T (1 - K damping) */
#define SF_RV_FLUSH     1e-30
#define SF_MAX_CHANNELS 8

/* Base line lengths in ms (rounded up to primes at the render rate). */
static const double s_base_ms[SF_RV_LINES] = {23.3, 27.7, 31.1, 35.9, 39.7, 44.3, 49.1, 53.9};

/* Input signs: none of the Hadamard rows, so no output channel gets a
 * special view of the injection. */
static const double s_in_sign[SF_RV_LINES] = {1, 1, -1, 1, -1, -1, 1, -1};

typedef struct {
    int n_ch;
    double wet, dry; /* mix, 1 - mix */
    size_t pre_len;  /* P */
    double *pre;     /* predelay ring (NULL when P == 0) */
    size_t pre_pos;
    size_t len[SF_RV_LINES];   /* d_i */
    double *line[SF_RV_LINES]; /* rings of d_i frames */
    size_t pos[SF_RV_LINES];
    double k[SF_RV_LINES];                    /* k_i (1 - b_i) */
    double b[SF_RV_LINES];                    /* damping pole */
    double f[SF_RV_LINES];                    /* loss-filter states */
    double out[SF_MAX_CHANNELS][SF_RV_LINES]; /* output taps */
} s_rev_t;

/* Checks one parameter against the table in fx.c (the one the loader uses). */
static sf_rc s_check(const char *key, double v, sf_err_t *err)
{
    size_t n;
    const sf_fx_param_spec_t *s = sf_fx_param_specs(&n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s[i].effect, "reverb") != 0 || strcmp(s[i].key, key) != 0)
            continue;
        bool ok = v >= s[i].lo && (s[i].hi_exclusive ? v < s[i].hi : v <= s[i].hi); /* NaN fails */
        if (!ok)
            return SF_ERR(err, SF_E_INPUT, "reverb '%s' is %g, out of range [%g, %g%s", key, v, s[i].lo, s[i].hi,
                          s[i].hi_exclusive ? ")" : "]");
        return SF_OK;
    }
    return SF_ERR(err, SF_E_INTERNAL, "no range for reverb '%s'", key);
}

static bool s_is_prime(size_t n)
{
    if (n < 2)
        return false;
    for (size_t d = 2; d * d <= n; d++)
        if (n % d == 0)
            return false;
    return true;
}

/* The eight line lengths at sample_rate: distinct primes, increasing. */
static void s_lengths(int sample_rate, size_t len[SF_RV_LINES])
{
    size_t prev = 1;
    for (int i = 0; i < SF_RV_LINES; i++) {
        size_t n = (size_t)ceil(s_base_ms[i] * sample_rate / 1000.0);
        if (n <= prev)
            n = prev + 1;
        while (!s_is_prime(n))
            n++;
        len[i] = prev = n;
    }
}

static size_t s_predelay(const sf_fx_params_t *p, int sample_rate)
{
    return (size_t)llround(p->u.reverb.predelay_ms * sample_rate / 1000.0);
}

/* +-1: entry (r, i) of the 8x8 Sylvester-Hadamard matrix. */
static double s_hadamard(int r, int i)
{
    int bits = r & i, parity = 0;
    for (; bits; bits &= bits - 1)
        parity ^= 1;
    return parity ? -1.0 : 1.0;
}

static void s_rev_reset(sf_fx_t *fx)
{
    s_rev_t *s = fx->state;
    if (s->pre)
        memset(s->pre, 0, sizeof(double) * s->pre_len);
    s->pre_pos = 0;
    for (int i = 0; i < SF_RV_LINES; i++) {
        memset(s->line[i], 0, sizeof(double) * s->len[i]);
        s->pos[i] = 0;
        s->f[i] = 0;
    }
}

static void s_rev_free(sf_fx_t *fx)
{
    s_rev_t *s = fx->state;
    sf_free(s->pre);
    for (int i = 0; i < SF_RV_LINES; i++)
        sf_free(s->line[i]);
    sf_free(s);
}

static sf_rc s_rev_init(sf_fx_t *fx, sf_err_t *err)
{
    double decay = fx->params.u.reverb.decay_s, pre_ms = fx->params.u.reverb.predelay_ms;
    double damping = fx->params.u.reverb.damping, mix = fx->params.u.reverb.mix;
    sf_rc rc;
    if ((rc = s_check("decay_s", decay, err)) || (rc = s_check("predelay_ms", pre_ms, err)) ||
        (rc = s_check("damping", damping, err)) || (rc = s_check("mix", mix, err)))
        return rc;
    s_rev_t *s = sf_calloc(1, sizeof *s);
    if (!s)
        return SF_ERR(err, SF_E_NOMEM, "out of memory for a reverb");
    fx->state = s;
    int fs = fx->sample_rate;
    s->n_ch = fx->n_channels;
    s->wet = mix;
    s->dry = 1 - mix;
    s->pre_len = s_predelay(&fx->params, fs);
    if (s->pre_len && !(s->pre = sf_aligned_alloc(sizeof(double) * s->pre_len)))
        goto nomem;
    s_lengths(fs, s->len);
    double t_pi = decay * (1 - SF_RV_DAMP_K * damping);
    for (int i = 0; i < SF_RV_LINES; i++) {
        if (!(s->line[i] = sf_aligned_alloc(sizeof(double) * s->len[i])))
            goto nomem;
        double d_s = (double)s->len[i] / fs;
        double k = sf_dsp_db_to_gain(-60 * d_s / decay);
        double r = sf_dsp_db_to_gain(-60 * d_s * (1 / t_pi - 1 / decay));
        s->b[i] = (1 - r) / (1 + r);
        s->k[i] = k * (1 - s->b[i]);
    }
    for (int c = 0; c < s->n_ch; c++)
        for (int i = 0; i < SF_RV_LINES; i++)
            s->out[c][i] = s_hadamard((c + 1) % SF_RV_LINES, i) * SF_RV_NORM;
    s_rev_reset(fx);
    return SF_OK;

nomem:
    s_rev_free(fx);
    fx->state = NULL;
    return SF_ERR(err, SF_E_NOMEM, "out of memory for a reverb");
}

/* In-place 8-point Walsh-Hadamard transform (unnormalised). */
static inline void s_fwht8(double v[SF_RV_LINES])
{
    for (int h = 1; h < SF_RV_LINES; h *= 2)
        for (int j = 0; j < SF_RV_LINES; j += 2 * h)
            for (int i = j; i < j + h; i++) {
                double a = v[i], b = v[i + h];
                v[i] = a + b;
                v[i + h] = a - b;
            }
}

static void s_rev_process(sf_fx_t *fx, float *const *ch, size_t n_frames)
{
    s_rev_t *s = fx->state;
    int n_ch = s->n_ch;
    double inv_ch = 1.0 / n_ch;
    for (size_t n = 0; n < n_frames; n++) {
        double u = 0;
        for (int c = 0; c < n_ch; c++)
            u += (double)ch[c][n];
        u *= inv_ch;
        if (s->pre_len) {
            double t = s->pre[s->pre_pos];
            s->pre[s->pre_pos] = u;
            s->pre_pos = s->pre_pos + 1 == s->pre_len ? 0 : s->pre_pos + 1;
            u = t;
        }
        double v[SF_RV_LINES];
        for (int i = 0; i < SF_RV_LINES; i++) {
            double f = s->k[i] * s->line[i][s->pos[i]] + s->b[i] * s->f[i];
            s->f[i] = v[i] = fabs(f) < SF_RV_FLUSH ? 0 : f;
        }
        for (int c = 0; c < n_ch; c++) {
            double wet = 0;
            for (int i = 0; i < SF_RV_LINES; i++)
                wet += s->out[c][i] * v[i];
            ch[c][n] = (float)(s->dry * (double)ch[c][n] + s->wet * wet);
        }
        s_fwht8(v);
        for (int i = 0; i < SF_RV_LINES; i++) {
            s->line[i][s->pos[i]] = v[i] * SF_RV_NORM + s_in_sign[i] * SF_RV_NORM * u;
            s->pos[i] = s->pos[i] + 1 == s->len[i] ? 0 : s->pos[i] + 1;
        }
    }
}

static int64_t s_rev_tail(const sf_fx_params_t *p, int sample_rate, double threshold_db)
{
    if (p->u.reverb.mix <= 0)
        return 0;
    size_t len[SF_RV_LINES];
    s_lengths(sample_rate, len);
    double thr = threshold_db < 0 ? -threshold_db : 0;
    return (int64_t)s_predelay(p, sample_rate) + (int64_t)ceil(p->u.reverb.decay_s * sample_rate * thr / 60) +
           (int64_t)len[SF_RV_LINES - 1];
}

const sf_fx_class_t sf_fx_reverb_class = {
    .init = s_rev_init,
    .process = s_rev_process,
    .reset = s_rev_reset,
    .free = s_rev_free,
    .tail = s_rev_tail,
    .latency = NULL,
    .gain_curve = NULL,
};
