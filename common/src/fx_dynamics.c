/* fx_dynamics.c -- the compressor and the look-ahead limiter (see sf/fx.h).
 *
 * Both are written as a gain computer that reads a detector signal and
 * returns the linear gain for each output frame. process() runs it on the
 * signal itself and multiplies; sf_fx_dynamics_gain() runs the very same
 * code on the full bus and hands the gains out, so a stem's share of a bus
 * gets exactly the gain the mix got (the stems null). The compressor works in
 * blocks of SF_COMP_BLOCK frames (s_comp_block): only its smoother is a
 * recursion, so the per-frame curve and the dB -> gain conversion run as
 * vectorised passes around it, each value computed as the per-frame formulas
 * below compute it. Because every value depends only on the frames up to its
 * own and on the state carried between calls, any cut of the signal into
 * calls (or blocks) gives the same bytes.
 *
 * Compressor (feed-forward, Giannoulis, Massberg & Reiss, "Digital Dynamic
 * Range Compressor Design -- A Tutorial and Analysis", JAES 2012):
 *   detector   p = max_c |x_c|                      (stereo/multichannel link)
 *              x_G = 20 log10 p                     (dB)
 *   gain computer, threshold T, ratio R, knee W (their eq. 4):
 *              y_G = x_G                            2 (x_G - T) < -W
 *              y_G = x_G + (1/R - 1)(x_G - T + W/2)^2 / (2W)   2 |x_G - T| <= W
 *              y_G = T + (x_G - T) / R              2 (x_G - T) > W
 *              x_L = x_G - y_G >= 0                 (wanted gain reduction, dB)
 *   smoothing: the "branching" one-pole smoother of their section 3.1 (eq. 16)
 *              on the gain reduction, in dB, after the gain computer:
 *              y_L[n] = a_A y_L[n-1] + (1 - a_A) x_L[n]   if x_L[n] > y_L[n-1]
 *              y_L[n] = a_R y_L[n-1] + (1 - a_R) x_L[n]   otherwise
 *              a = exp(-1 / (tau fs)), so a step of x_L covers 1 - 1/e of
 *              the way in tau seconds in either direction.
 *   gain       g = 10^((M - y_L) / 20), M the makeup; the same g for every
 *              channel. Latency 0.
 * All of it in double; the dB <-> linear conversions are sf_dsp_db_to_gain
 * and s_ln below, both plain double arithmetic, so the gains are the same
 * bytes on every machine (libm's log/exp choose FMA code at run time).
 *
 * Compressor tail. Two renders that start in different states (the
 * continuous one with reduction y1, the pre-rolled one fresh with y2 = 0) and
 * then see the same input get closer by at least a = max(a_A, a_R) per frame:
 * in the same branch |y1' - y2'| = a |y1 - y2|, and when x_L falls between
 * them (y2 < x_L <= y1) y1' - y2' = a_R (y1 - x_L) + a_A (x_L - y2) <=
 * a (y1 - y2). After n frames |dy| <= a^n D, D the largest reduction the
 * continuous render can hold, and the outputs differ by
 * |y| |10^(dy/20) - 1| ~= |y| (ln 10 / 20) D a^n. So with tau the slower time
 * constant, n = tau fs ln(10^(-thr/20) max(1, (ln 10/20) D)) frames bound the
 * residual by 10^(thr/20) relative to the output sample itself. D is taken
 * as the reduction for a detector at +24 dBFS (more than any bus that is to
 * be delivered below full scale). The plain tau_R fs ln(10^(-thr/20)) is the
 * first term; the second adds a few tau (ln 12 at most) so that a deep
 * reduction still meets the threshold (without it a 26 dB reduction left
 * -110 dB where -120 dB was asked). The slower time constant because the
 * contraction is by the larger pole (attack may be set slower than release).
 * Ratio 1 never reduces: tail 0.
 *
 * Limiter (look-ahead brick wall), L = round(lookahead_ms fs / 1000):
 *   need[j] = min(1, c / p[j])        c the ceiling, p[j] = max_c |x_c[j]|
 *   w[n]    = min(need[n-L .. n])     sliding minimum, a monotonic deque in a
 *                                     ring of L + 1 (O(1) amortised)
 *   a[n]    = mean(w[n-L .. n])       moving average of length L + 1
 *   r[n]    = a[n] if a[n] <= r[n-1], else a[n] + a_R (r[n-1] - a[n])
 *   out[n]  = x[n - L] g[n],  g = r rounded to float
 * Every w[k] averaged into a[n] has need[n - L] in its window, so
 * a[n] <= need[n - L]: the gain is ramped down over the look-ahead and is at
 * the needed value when the peak comes out (attack is instantaneous on the
 * window, release a one-pole upward only, r <= a always). The moving sum is
 * kept in integers (w floored to multiples of 2^-48, so an overload of more
 * than 289 dB gets gain 0 rather than the ceiling), so it is exact: it
 * never drifts, it is exactly 1 when nothing is over (transparent to the bit)
 * and a pre-rolled render has exactly the continuous window state after
 * L + 1 frames. The guarantee is then made exact in float: the gain is
 * stepped down by one float ulp while max_c |x_c[n-L]| * g (the float product
 * that process() computes) exceeds the ceiling, so no output sample ever
 * exceeds it, and the limit is part of the gain curve rather than a clip
 * after it (process(x) stays x * gain exactly; a bus share is never pushed
 * over what the mix got). The ceiling in float is 10^(ceiling_db/20) rounded
 * down. Lookahead 0 is a clipper with release. Non-finite input is not
 * limited (an inf gets gain 0, so comes out NaN).
 *
 * Limiter tail: L frames of delayed input, then the window state is exact
 * after L + 1 frames and the gains of two renders differ by at most 1, which
 * the release contracts by a_R per frame; the outputs differ by |x| |dg|. So
 * n = L + 1 + tau_R fs ln(10^(-thr/20) 10^(24/20)) frames bound the residual
 * by thr dBFS for inputs up to +24 dBFS (for inputs up to 0 dBFS, by thr
 * relative to the input).
 */
#include "fx_impl.h"

#include "sf/alloc.h"
#include "sf/dsp.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define SF_DB_PER_NEPER 8.6858896380650365530 /* 20 / ln 10: dB = SF_DB_PER_NEPER ln(gain) */
#define SF_LN2_HI       0x1.62e42fefa3800p-1  /* ln 2 in two parts: e SF_LN2_HI is exact */
#define SF_LN2_LO       0x1.ef35793c76730p-45
#define SF_SQRT_HALF    0.70710678118654752440
#define SF_HEADROOM_DB  24.0  /* the loudest detector level the tails are sized for */
#define SF_FLUSH        1e-30 /* smoother states below this are 0 (no denormals) */
#define SF_MAX_CHANNELS 8
#define SF_WQ_ONE       0x1p48 /* the limiter's moving sum counts in units of 2^-48 */
#define SF_WQ_UNIT      0x1p-48
#define SF_COMP_BLOCK   256 /* frames per block pass of the compressor (stack arrays) */
#define SF_COMP_GROUP   8   /* frames through each step of s_comp_xl_n together; divides SF_COMP_BLOCK */
#define SF_LN_SQRT_HALF UINT64_C(0x3fe6a09e667f3bcd) /* the bits of SF_SQRT_HALF */
#define SF_LN_SHIFT     (UINT64_C(0x3ff0000000000000) - SF_LN_SQRT_HALF)
#define SF_LN_MANT      UINT64_C(0x000fffffffffffff)
#define SF_LN_EBIAS     UINT64_C(0x4330000000000000) /* the bits of 2^52 */

/* ---- shared helpers ------------------------------------------------------ */

/* Checks one parameter against the table in fx.c (the one the loader uses). */
static sf_rc s_check(const char *effect, const char *key, double v, sf_err_t *err)
{
    size_t n;
    const sf_fx_param_spec_t *s = sf_fx_param_specs(&n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s[i].effect, effect) != 0 || strcmp(s[i].key, key) != 0)
            continue;
        bool ok = v >= s[i].lo && (s[i].hi_exclusive ? v < s[i].hi : v <= s[i].hi); /* NaN fails */
        if (!ok)
            return SF_ERR(err, SF_E_INPUT, "%s '%s' is %g, out of range [%g, %g%s", effect, key, v, s[i].lo, s[i].hi,
                          s[i].hi_exclusive ? ")" : "]");
        return SF_OK;
    }
    return SF_ERR(err, SF_E_INTERNAL, "no range for %s '%s'", effect, key);
}

/* 1/k for the odd k of the atanh series in s_ln. */
static const double s_inv_odd[] = {1.0,      1.0 / 3,  1.0 / 5,  1.0 / 7,  1.0 / 9,  1.0 / 11,
                                   1.0 / 13, 1.0 / 15, 1.0 / 17, 1.0 / 19, 1.0 / 21, 1.0 / 23};

/* ln x for finite x > 0 in plain double arithmetic (frexp is exact), the same
 * bytes everywhere: x = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m =
 * 2 atanh(s), s = (m - 1)/(m + 1), |s| < 0.172, by its series to s^23 (the
 * next term is below 2^-57 of the sum). Within a few ulp of libm's log. */
static double s_ln(double x)
{
    int e;
    double m = frexp(x, &e);
    if (m < SF_SQRT_HALF) {
        m *= 2;
        e--;
    }
    double s = (m - 1) / (m + 1);
    double s2 = s * s;
    double t = s_inv_odd[11];
    for (int k = 10; k >= 0; k--)
        t = t * s2 + s_inv_odd[k];
    return (double)e * SF_LN2_HI + ((double)e * SF_LN2_LO + 2 * s * t);
}

/* exp(x) for x <= 0 through the portable 10^(db/20). */
static double s_exp(double x) { return sf_dsp_db_to_gain(x * SF_DB_PER_NEPER); }

/* exp(-1 / (tau fs)): the one-pole coefficient of a time constant in ms. */
static double s_pole(double tau_ms, int sample_rate) { return s_exp(-1000.0 / (tau_ms * sample_rate)); }

/* ---- compressor ---------------------------------------------------------- */

typedef struct {
    double thr;    /* T, dB */
    double slope;  /* 1 - 1/R */
    double knee;   /* W, dB */
    double lo_lin; /* 10^((T - W/2)/20): detector levels at or below it are not reduced */
    double makeup; /* M, dB */
    double a_att;  /* attack pole */
    double a_rel;  /* release pole */
    float g0;      /* the gain while y_L is 0: 10^(M/20) rounded to float */
    double y;      /* smoothed gain reduction y_L, dB >= 0 */
} s_comp_t;

/* x_L = x_G - y_G: the static curve's gain reduction (dB, >= 0) at x_G. */
static double s_comp_reduction(double thr, double slope, double knee, double x_db)
{
    double d = x_db - thr;
    if (2 * d <= -knee)
        return 0;
    if (2 * d < knee) { /* inside the knee, so knee > 0 */
        double k = d + knee / 2;
        return slope * k * k / (2 * knee);
    }
    return slope * d;
}

/* x_L for one detector peak p, per frame: the formula s_comp_xl_n matches,
 * and its fallback for a block with an infinite peak (frexp of inf feeds a
 * NaN into the reduction, whose bits the bit moves of s_comp_xl_n would not
 * reproduce). */
static double s_comp_xl(const s_comp_t *s, double p)
{
    if (!(p > s->lo_lin))
        return 0;
    return s_comp_reduction(s->thr, s->slope, s->knee, SF_DB_PER_NEPER * s_ln(p));
}

/* The all-ones mask where a < b, for finite a and b with a not -0: the sign
 * of a - b, which rounding never flips (a - b is 0 only when a == b, and
 * then +0 unless a is -0). */
static inline uint64_t s_less_mask(double a, double b)
{
    double d = a - b;
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return (uint64_t)0 - (u >> 63);
}

/* x_L for n finite detector peaks, n a multiple of SF_COMP_GROUP: s_ln and
 * s_comp_reduction without branches, so that the compiler vectorises them.
 * frexp becomes integer moves on the bits: adding 1.0 - sqrt(1/2) (as bit
 * patterns) carries into the exponent exactly when the mantissa is at or
 * above sqrt(1/2), so x = m 2^e with m in [sqrt(1/2), sqrt(2)) comes out
 * directly; that representation is unique, so m and e are those of s_ln,
 * and every double operation after it is s_ln's and s_comp_reduction's in
 * the same order: the same bytes. All three branches of the curve are
 * evaluated (the knee quotient is unused where knee is 0) and chosen by bit
 * masks: GCC (12) under -ftrapping-math will not turn a comparison into a
 * vector select here. "+ 0.0" turns a -0 into +0 for s_less_mask and
 * compares the same. SF_COMP_GROUP frames go through each step together
 * (the loops over j unrolled): the series is one long chain of dependent
 * operations per frame, and a plain loop leaves too few frames in flight to
 * hide its latency. */
static void s_comp_xl_n(const s_comp_t *s, const double *restrict p, double *restrict xl, size_t n)
{
    const double thr = s->thr, slope = s->slope, knee = s->knee, lo = s->lo_lin + 0.0;
    const double half_knee = knee / 2, neg_knee = -knee + 0.0, two_knee = 2 * knee;
    for (size_t i0 = 0; i0 < n; i0 += SF_COMP_GROUP) {
        double e[SF_COMP_GROUP], sv[SF_COMP_GROUP], s2[SF_COMP_GROUP], t[SF_COMP_GROUP];
#pragma GCC unroll 16
        for (int j = 0; j < SF_COMP_GROUP; j++) {
            uint64_t u;
            memcpy(&u, &p[i0 + (size_t)j], sizeof u);
            u += SF_LN_SHIFT;
            uint64_t eb = (u >> 52) | SF_LN_EBIAS; /* 2^52 + biased e, exactly */
            uint64_t mb = (u & SF_LN_MANT) + SF_LN_SQRT_HALF;
            double ed, m;
            memcpy(&ed, &eb, sizeof ed);
            memcpy(&m, &mb, sizeof m);
            e[j] = ed - (0x1p52 + 1023.0);
            sv[j] = (m - 1) / (m + 1);
            s2[j] = sv[j] * sv[j];
            t[j] = s_inv_odd[11];
        }
#pragma GCC unroll 16
        for (int k = 10; k >= 0; k--)
#pragma GCC unroll 16
            for (int j = 0; j < SF_COMP_GROUP; j++)
                t[j] = t[j] * s2[j] + s_inv_odd[k];
#pragma GCC unroll 16
        for (int j = 0; j < SF_COMP_GROUP; j++) {
            double x = p[i0 + (size_t)j];
            double ln = e[j] * SF_LN2_HI + (e[j] * SF_LN2_LO + 2 * sv[j] * t[j]);
            double d = SF_DB_PER_NEPER * ln - thr;
            double kk = d + half_knee;
            double r_knee = slope * kk * kk / two_knee, r_above = slope * d;
            uint64_t bk, ba, br;
            memcpy(&bk, &r_knee, sizeof bk);
            memcpy(&ba, &r_above, sizeof ba);
            double d2 = 2 * d + 0.0;
            uint64_t in_knee = s_less_mask(d2, knee);                       /* 2 d < W */
            uint64_t keep = s_less_mask(neg_knee, d2) & s_less_mask(lo, x); /* not 2 d <= -W, p > lo_lin */
            br = ((bk & in_knee) | (ba & ~in_knee)) & keep;                 /* +0.0 where not kept */
            memcpy(&xl[i0 + (size_t)j], &br, sizeof br);
        }
    }
}

/* The gains (makeup included, rounded to float) of n <= SF_COMP_BLOCK frames
 * of the detector det[c][0..n). Three passes: the static curve per frame
 * (vectorised), the one-pole smoother (the only recursion, serial and
 * cheap), 10^((M - y_L)/20) through sf_dsp_db_to_gain_n (vectorised). Each
 * value is the one the per-frame step of the file-top formulas gives, to the
 * bit: the passes only reorder independent work. */
static void s_comp_block(s_comp_t *s, const float *const *det, int n_ch, size_t n, float *g)
{
    float pk[SF_COMP_BLOCK];
    double p[SF_COMP_BLOCK], v[SF_COMP_BLOCK];

    /* detector: p = max_c |x_c| in float (a NaN never wins) */
    for (size_t i = 0; i < n; i++)
        pk[i] = 0;
    for (int c = 0; c < n_ch; c++) {
        const float *restrict x = det[c];
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float a = fabsf(x[i]);
            pk[i] = a > pk[i] ? a : pk[i];
        }
    }
    int over = 0, inf = 0;
    const double lo = s->lo_lin;
#pragma omp simd reduction(| : over, inf)
    for (size_t i = 0; i < n; i++) {
        p[i] = (double)pk[i];
        over |= p[i] > lo;
        inf |= pk[i] == INFINITY;
    }

    /* x_L into v; with nothing over the curve and no reduction held, y_L
     * stays exactly 0 (a 0 + (1 - a) 0) and so does every gain: g0 */
    if (!over && s->y == 0) {
        for (size_t i = 0; i < n; i++)
            g[i] = s->g0;
        return;
    }
    if (inf) {
        for (size_t i = 0; i < n; i++)
            v[i] = s_comp_xl(s, p[i]);
    } else if (over) {
        size_t n_up = (n + SF_COMP_GROUP - 1) / SF_COMP_GROUP * SF_COMP_GROUP;
        for (size_t i = n; i < n_up; i++)
            p[i] = 0; /* a finite filler, its x_L unused */
        s_comp_xl_n(s, p, v, n_up);
    } else {
        memset(v, 0, sizeof(double) * n);
    }

    /* smoother; v becomes M - y_L */
    const double a_att = s->a_att, a_rel = s->a_rel, b_att = 1 - a_att, b_rel = 1 - a_rel, makeup = s->makeup;
    double y = s->y;
    int reducing = 0;
    for (size_t i = 0; i < n; i++) {
        double xl = v[i];
        bool up = xl > y;
        y = (up ? a_att : a_rel) * y + (up ? b_att : b_rel) * xl;
        y = y < SF_FLUSH ? 0 : y;
        reducing |= y != 0;
        v[i] = makeup - y;
    }
    s->y = y;

    if (!reducing) { /* M - 0 is M: the same gain */
        for (size_t i = 0; i < n; i++)
            g[i] = s->g0;
        return;
    }
    sf_dsp_db_to_gain_n(v, v, n);
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        g[i] = (float)v[i];
}

static sf_rc s_comp_init(sf_fx_t *fx, sf_err_t *err)
{
    const char *e = "compressor";
    double thr = fx->params.u.compressor.threshold_db, ratio = fx->params.u.compressor.ratio;
    double att = fx->params.u.compressor.attack_ms, rel = fx->params.u.compressor.release_ms;
    double knee = fx->params.u.compressor.knee_db, makeup = fx->params.u.compressor.makeup_db;
    sf_rc rc;
    if ((rc = s_check(e, "threshold_db", thr, err)) || (rc = s_check(e, "ratio", ratio, err)) ||
        (rc = s_check(e, "attack_ms", att, err)) || (rc = s_check(e, "release_ms", rel, err)) ||
        (rc = s_check(e, "knee_db", knee, err)) || (rc = s_check(e, "makeup_db", makeup, err)))
        return rc;
    s_comp_t *s = sf_calloc(1, sizeof *s);
    if (!s)
        return SF_ERR(err, SF_E_NOMEM, "out of memory for a compressor");
    s->thr = thr;
    s->slope = 1 - 1 / ratio;
    s->knee = knee;
    s->lo_lin = sf_dsp_db_to_gain(thr - knee / 2);
    s->makeup = makeup;
    s->a_att = s_pole(att, fx->sample_rate);
    s->a_rel = s_pole(rel, fx->sample_rate);
    s->g0 = (float)sf_dsp_db_to_gain(makeup);
    s->y = 0;
    fx->state = s;
    return SF_OK;
}

static void s_comp_process(sf_fx_t *fx, float *const *ch, size_t n_frames)
{
    s_comp_t *s = fx->state;
    int n_ch = fx->n_channels;
    float g[SF_COMP_BLOCK];
    for (size_t i0 = 0; i0 < n_frames; i0 += SF_COMP_BLOCK) {
        size_t n = n_frames - i0 < SF_COMP_BLOCK ? n_frames - i0 : SF_COMP_BLOCK;
        const float *det[SF_MAX_CHANNELS];
        for (int c = 0; c < n_ch; c++)
            det[c] = ch[c] + i0;
        s_comp_block(s, det, n_ch, n, g);
        for (int c = 0; c < n_ch; c++) {
            float *restrict x = ch[c] + i0;
#pragma omp simd
            for (size_t i = 0; i < n; i++)
                x[i] *= g[i];
        }
    }
}

static void s_comp_gain(sf_fx_t *fx, const float *const *det, size_t n_frames, float *gain)
{
    s_comp_t *s = fx->state;
    int n_ch = fx->n_channels;
    for (size_t i0 = 0; i0 < n_frames; i0 += SF_COMP_BLOCK) {
        size_t n = n_frames - i0 < SF_COMP_BLOCK ? n_frames - i0 : SF_COMP_BLOCK;
        const float *d[SF_MAX_CHANNELS];
        for (int c = 0; c < n_ch; c++)
            d[c] = det[c] + i0;
        s_comp_block(s, d, n_ch, n, gain + i0);
    }
}

static void s_comp_reset(sf_fx_t *fx) { ((s_comp_t *)fx->state)->y = 0; }

static void s_comp_free(sf_fx_t *fx) { sf_free(fx->state); }

static int64_t s_comp_tail(const sf_fx_params_t *p, int sample_rate, double threshold_db)
{
    double thr = p->u.compressor.threshold_db, ratio = p->u.compressor.ratio;
    if (threshold_db >= 0 || ratio <= 1)
        return 0;
    double slope = 1 - 1 / ratio;
    double d = s_comp_reduction(thr, slope, p->u.compressor.knee_db, SF_HEADROOM_DB);
    double k = d / SF_DB_PER_NEPER; /* (ln 10 / 20) D */
    double tau_ms = fmax(p->u.compressor.attack_ms, p->u.compressor.release_ms);
    double nepers = -threshold_db / SF_DB_PER_NEPER + (k > 1 ? s_ln(k) : 0);
    return (int64_t)ceil(tau_ms * sample_rate / 1000.0 * nepers);
}

const sf_fx_class_t sf_fx_compressor_class = {
    .init = s_comp_init,
    .process = s_comp_process,
    .reset = s_comp_reset,
    .free = s_comp_free,
    .tail = s_comp_tail,
    .latency = NULL,
    .gain_curve = s_comp_gain,
};

/* ---- limiter ------------------------------------------------------------- */

typedef struct {
    int n_ch;
    size_t lat;      /* L, frames of look-ahead (and latency) */
    size_t win;      /* L + 1: the window of the minimum and of the average */
    double ceil_d;   /* ceiling, linear */
    float ceil_f;    /* the same rounded down to float: the hard guarantee */
    double a_rel;    /* release pole */
    float *delay;    /* n_ch rings of L frames (NULL when L == 0) */
    size_t d_pos;    /* next slot of the delay rings */
    double *dq_val;  /* sliding-minimum deque: ring of win values ... */
    uint64_t *dq_at; /* ... and the frame each came from */
    size_t dq_head;  /* oldest entry */
    size_t dq_len;   /* entries in use, 1..win after a step */
    uint64_t *avg;   /* the last win window minima, in units of 2^-48 */
    size_t a_pos;    /* next slot of avg */
    uint64_t sum;    /* sum of avg: exact */
    uint64_t n;      /* frames since reset */
    double r;        /* the released gain */
} s_lim_t;

static size_t s_lim_frames(const sf_fx_params_t *p, int sample_rate)
{
    return (size_t)llround(p->u.limiter.lookahead_ms * sample_rate / 1000.0);
}

static void s_lim_reset(sf_fx_t *fx)
{
    s_lim_t *s = fx->state;
    if (s->delay)
        memset(s->delay, 0, sizeof(float) * s->lat * (size_t)s->n_ch);
    s->d_pos = 0;
    s->dq_head = 0;
    s->dq_len = 0;
    for (size_t i = 0; i < s->win; i++)
        s->avg[i] = (uint64_t)SF_WQ_ONE; /* silence before: nothing to limit */
    s->a_pos = 0;
    s->sum = (uint64_t)SF_WQ_ONE * s->win;
    s->n = 0;
    s->r = 1;
}

static void s_lim_free(sf_fx_t *fx)
{
    s_lim_t *s = fx->state;
    sf_free(s->delay);
    sf_free(s->dq_val);
    sf_free(s->dq_at);
    sf_free(s->avg);
    sf_free(s);
}

static sf_rc s_lim_init(sf_fx_t *fx, sf_err_t *err)
{
    const char *e = "limiter";
    double ceil_db = fx->params.u.limiter.ceiling_db, rel = fx->params.u.limiter.release_ms;
    double la = fx->params.u.limiter.lookahead_ms;
    sf_rc rc;
    if ((rc = s_check(e, "ceiling_db", ceil_db, err)) || (rc = s_check(e, "release_ms", rel, err)) ||
        (rc = s_check(e, "lookahead_ms", la, err)))
        return rc;
    s_lim_t *s = sf_calloc(1, sizeof *s);
    if (!s)
        return SF_ERR(err, SF_E_NOMEM, "out of memory for a limiter");
    fx->state = s;
    s->n_ch = fx->n_channels;
    s->lat = s_lim_frames(&fx->params, fx->sample_rate);
    s->win = s->lat + 1;
    if (s->lat) {
        s->delay = sf_aligned_alloc(sizeof(float) * s->lat * (size_t)s->n_ch);
        if (!s->delay)
            goto nomem;
    }
    s->dq_val = sf_malloc(sizeof(double) * s->win);
    s->dq_at = sf_malloc(sizeof(uint64_t) * s->win);
    s->avg = sf_malloc(sizeof(uint64_t) * s->win);
    if (!s->dq_val || !s->dq_at || !s->avg)
        goto nomem;
    s->ceil_d = sf_dsp_db_to_gain(ceil_db);
    s->ceil_f = (float)s->ceil_d;
    if ((double)s->ceil_f > s->ceil_d)
        s->ceil_f = nextafterf(s->ceil_f, 0.0f);
    s->a_rel = s_pole(rel, fx->sample_rate);
    s_lim_reset(fx);
    return SF_OK;

nomem:
    s_lim_free(fx);
    fx->state = NULL;
    return SF_ERR(err, SF_E_NOMEM, "out of memory for a limiter of %lld frames look-ahead",
                  (long long)s_lim_frames(&fx->params, fx->sample_rate));
}

/* One frame: takes input frame n (in[c]), returns in del[c] input frame n - L
 * and the gain for it. */
static inline float s_lim_step(s_lim_t *s, const float *in, float *del)
{
    float p = 0;
    for (int c = 0; c < s->n_ch; c++) {
        float v = fabsf(in[c]);
        if (v > p)
            p = v;
    }
    double need = (double)p > s->ceil_d ? s->ceil_d / (double)p : 1.0;

    /* sliding minimum of need over frames n - L .. n: the frame n - L - 1
     * leaves (at most one entry does), smaller-or-equal values behind the
     * new one can never be the minimum again, the new one joins */
    size_t w = s->win;
    if (s->dq_len && s->dq_at[s->dq_head] + w <= s->n) {
        s->dq_head = s->dq_head + 1 == w ? 0 : s->dq_head + 1;
        s->dq_len--;
    }
    while (s->dq_len) {
        size_t back = s->dq_head + s->dq_len - 1;
        back -= back >= w ? w : 0;
        if (s->dq_val[back] < need)
            break;
        s->dq_len--;
    }
    size_t slot = s->dq_head + s->dq_len;
    slot -= slot >= w ? w : 0;
    s->dq_val[slot] = need;
    s->dq_at[slot] = s->n;
    s->dq_len++;
    double wmin = s->dq_val[s->dq_head];

    /* moving average of the minima, exact in integers */
    uint64_t q = (uint64_t)(wmin * SF_WQ_ONE); /* floor: never above the minimum */
    s->sum = s->sum - s->avg[s->a_pos] + q;
    s->avg[s->a_pos] = q;
    s->a_pos = s->a_pos + 1 == w ? 0 : s->a_pos + 1;
    double a = (double)s->sum / (double)w * SF_WQ_UNIT;

    s->r = a <= s->r ? a : a + s->a_rel * (s->r - a);
    s->n++;

    /* the frame that comes out now */
    float pd = 0;
    if (s->lat) {
        for (int c = 0; c < s->n_ch; c++) {
            float *ring = s->delay + (size_t)c * s->lat;
            del[c] = ring[s->d_pos];
            ring[s->d_pos] = in[c];
        }
        s->d_pos = s->d_pos + 1 == s->lat ? 0 : s->d_pos + 1;
    } else {
        for (int c = 0; c < s->n_ch; c++)
            del[c] = in[c];
    }
    for (int c = 0; c < s->n_ch; c++) {
        float v = fabsf(del[c]);
        if (v > pd)
            pd = v;
    }
    float g = (float)s->r;
    while (pd * g > s->ceil_f) /* rounding only: one or two ulps */
        g = nextafterf(g, 0.0f);
    return g;
}

static void s_lim_process(sf_fx_t *fx, float *const *ch, size_t n_frames)
{
    s_lim_t *s = fx->state;
    float in[SF_MAX_CHANNELS] = {0}, del[SF_MAX_CHANNELS] = {0};
    for (size_t i = 0; i < n_frames; i++) {
        for (int c = 0; c < s->n_ch; c++)
            in[c] = ch[c][i];
        float g = s_lim_step(s, in, del);
        for (int c = 0; c < s->n_ch; c++)
            ch[c][i] = del[c] * g;
    }
}

/* The delay rings advance too (with the detector), so that mixing calls of
 * process and gain_curve keeps one consistent state. */
static void s_lim_gain(sf_fx_t *fx, const float *const *det, size_t n_frames, float *gain)
{
    s_lim_t *s = fx->state;
    float in[SF_MAX_CHANNELS] = {0}, del[SF_MAX_CHANNELS] = {0};
    for (size_t i = 0; i < n_frames; i++) {
        for (int c = 0; c < s->n_ch; c++)
            in[c] = det[c][i];
        gain[i] = s_lim_step(s, in, del);
    }
}

static int64_t s_lim_latency(const sf_fx_params_t *p, int sample_rate) { return (int64_t)s_lim_frames(p, sample_rate); }

static int64_t s_lim_tail(const sf_fx_params_t *p, int sample_rate, double threshold_db)
{
    int64_t lat = s_lim_latency(p, sample_rate);
    if (threshold_db >= 0)
        return lat;
    double nepers = (SF_HEADROOM_DB - threshold_db) / SF_DB_PER_NEPER;
    return lat + 1 + (int64_t)ceil(p->u.limiter.release_ms * sample_rate / 1000.0 * nepers);
}

const sf_fx_class_t sf_fx_limiter_class = {
    .init = s_lim_init,
    .process = s_lim_process,
    .reset = s_lim_reset,
    .free = s_lim_free,
    .tail = s_lim_tail,
    .latency = s_lim_latency,
    .gain_curve = s_lim_gain,
};
