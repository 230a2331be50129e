/* fx_filter.c -- the small linear effects: gain, eq (RBJ biquads), delay.
 *
 * Every effect here is planar float32 in and out, with its arithmetic in
 * double and one rounding to float per output sample. State lives per
 * channel and is advanced one frame at a time in a fixed order, so
 * process(a); process(b) gives exactly the bytes of process(a + b) however
 * the signal is cut. Nothing in a process function allocates, logs, fails or
 * takes a value from libm (fabs, exact, aside).
 *
 * gain   y = (float)(x * g), g = sf_dsp_db_to_gain(db) (exactly 1 at 0 dB, so
 *        0 dB is bit-transparent). No memory: tail 0.
 *
 * eq     One biquad per channel from Robert Bristow-Johnson's Audio EQ
 *        Cookbook, coefficients and state in double, direct form I:
 *          y[n] = b0 x[n] + b1 x[n-1] + b2 x[n-2] - a1 y[n-1] - a2 y[n-2]
 *        (normalised by a0). DF-I keeps the float inputs exactly and its only
 *        recursive state is the double output history, which is what lets a
 *        20 Hz high-pass at 48 kHz track a double reference far below
 *        -100 dB. alpha = sin(w0) / (2 Q) for every type: `q` is the
 *        cookbook's Q, also for the shelves (the cookbook's "Q" form of the
 *        shelf; q = 1/sqrt(2), the default 0.707, is its shelf slope S = 1).
 *        bandpass is the constant 0 dB peak gain variant. gain_db matters for
 *        peak and the shelves only (A = 10^(gain_db / 40)). sin and cos come
 *        from sf_dsp_sincos_half_pi at w0 / 2 (portable polynomials, not
 *        libm), with 1 - cos w0 = 2 sin^2(w0/2) and 1 + cos w0 =
 *        2 cos^2(w0/2), so a low corner keeps full relative precision and
 *        every machine computes the same coefficients. freq must be below
 *        half the sample rate. Output history below 1e-200 is flushed to 0,
 *        so a decaying tail never runs into double denormals (that changes
 *        the output by less than 1e-190).
 *        The channels (and, through sf_fx_process_eq_cascade, several eqs in
 *        series) are run interleaved frame by frame, because one biquad
 *        alone is bound by the latency of its recursion; every stage still
 *        sees the float output of the one before and does the arithmetic
 *        above in the same order, so the bytes are those of one channel and
 *        one call at a time.
 *        Tail: the first frame t from which the impulse response's
 *        remaining magnitude, sum_{k>=t} |h[k]|, is below the threshold --
 *        the most a full-scale input can still put into the output once it
 *        stops (one sample of h is up to 1/(1 - r) short of that for a pole
 *        of radius r near DC). h runs in double exactly as process runs it,
 *        over twice the length where r^n / (1 - r) reaches the threshold;
 *        never shorter than ceil(ln(10^(thr/20)) / ln r) + 2. Not simulated
 *        beyond 5e7 frames.
 *
 * delay  A feedback comb with a mix, D = round(time_ms * rate / 1000)
 *        frames (half away from zero, at least 1: fractional delays are
 *        rounded to whole frames, no interpolation). Per channel a ring of D
 *        floats holds w, the signal that recirculates:
 *          wet[n] = w[n - D]
 *          w[n]   = x[n] + feedback * wet[n]          (stored as float)
 *          y[n]   = (1 - mix) x[n] + mix wet[n]
 *        i.e. wet = delayed(input + feedback * wet): an impulse gives
 *        1 - mix at 0 and mix * feedback^(k-1) at k * D, k >= 1. Values of w
 *        below 1e-30 are stored as 0 (no float denormals in the ring).
 *        Tail: D * (ceil(ln(10^(thr/20)) / ln feedback) + 1) for feedback
 *        > 0, D for feedback 0, INT64_MAX for feedback >= 1.
 */
#include "fx_impl.h"

#include "sf/alloc.h"
#include "sf/dsp.h"

#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define SF_FX_MAX_CHANNELS 8
#define SF_EQ_FLUSH        1e-200 /* |y| below this is stored as 0 (no denormals) */
#define SF_DELAY_FLUSH     1e-30  /* |w| below this is stored as 0 (no float denormals) */
#define SF_EQ_MAX_SIM      5e7    /* eq tails longer than this (frames) are not simulated */
#define SF_LN10            2.302585092994045684017991454684364208
#define SF_EQ_LANES        2 /* channels per eq pass (more gained nothing: spills) */
#define SF_EQ_STAGES       4 /* cascaded eq stages per pass */
#define SF_EQ_BLOCK        4 /* frames per stage in an eq pass */

/* Checks v against the range of (effect, key) in sf_fx_param_specs, the one
 * table the loader validates against too. */
static sf_rc s_check(const char *effect, const char *key, double v, sf_err_t *err)
{
    size_t n;
    const sf_fx_param_spec_t *s = sf_fx_param_specs(&n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s[i].effect, effect) != 0 || strcmp(s[i].key, key) != 0)
            continue;
        bool ok = v >= s[i].lo && (s[i].hi_exclusive ? v < s[i].hi : v <= s[i].hi);
        if (!ok)
            return SF_ERR(err, SF_E_INPUT, "%s %s %g is out of range (%g..%g%s)", effect, key, v, s[i].lo, s[i].hi,
                          s[i].hi_exclusive ? ", exclusive" : "");
        return SF_OK;
    }
    return SF_OK;
}

/* ln(10^(db / 20)) without a pow/log round trip. */
static double s_ln_level(double db) { return db / 20.0 * SF_LN10; }

/* ---- gain ----------------------------------------------------------------- */

typedef struct {
    double gain; /* linear */
} s_gain_t;

static sf_rc s_gain_init(sf_fx_t *fx, sf_err_t *err)
{
    sf_rc rc = s_check("gain", "db", fx->params.u.gain.db, err);
    if (rc)
        return rc;
    s_gain_t *st = sf_calloc(1, sizeof *st);
    if (!st)
        return SF_ERR(err, SF_E_NOMEM, "out of memory for a gain effect");
    st->gain = sf_dsp_db_to_gain(fx->params.u.gain.db);
    fx->state = st;
    return SF_OK;
}

static void s_gain_process(sf_fx_t *fx, float *const *channels, size_t n_frames)
{
    const double g = ((const s_gain_t *)fx->state)->gain;
    for (int c = 0; c < fx->n_channels; c++) {
        float *x = channels[c];
#pragma omp simd
        for (size_t i = 0; i < n_frames; i++)
            x[i] = (float)((double)x[i] * g);
    }
}

static void s_gain_reset(sf_fx_t *fx) { (void)fx; }

static void s_state_free(sf_fx_t *fx) { sf_free(fx->state); }

static int64_t s_gain_tail(const sf_fx_params_t *p, int sample_rate, double threshold_db)
{
    (void)p;
    (void)sample_rate;
    (void)threshold_db;
    return 0;
}

const sf_fx_class_t sf_fx_gain_class = {
    .init = s_gain_init,
    .process = s_gain_process,
    .reset = s_gain_reset,
    .free = s_state_free,
    .tail = s_gain_tail,
};

/* ---- eq ------------------------------------------------------------------- */

typedef struct {
    double b0, b1, b2, a1, a2; /* normalised by a0 */
} s_biquad_t;

typedef struct {
    double x1, x2; /* the last two inputs (floats, exact) */
    double y1, y2; /* the last two outputs, in double */
} s_bq_state_t;

typedef struct {
    s_biquad_t k;
    s_bq_state_t ch[SF_FX_MAX_CHANNELS];
} s_eq_t;

/* Cookbook coefficients; freq must be in (0, sample_rate / 2). */
static s_biquad_t s_eq_coefs(const sf_fx_params_t *p, int sample_rate)
{
    /* w0 = 2 pi f / fs; sincos_half_pi(x) is sin/cos(x pi / 2), so
     * x = 2 f / fs gives w0 / 2, which is in [0, pi/2) below Nyquist. */
    double sh, ch;
    sf_dsp_sincos_half_pi(2.0 * p->u.eq.freq / (double)sample_rate, &sh, &ch);
    const double sn = 2.0 * sh * ch;  /* sin w0 */
    const double omc = 2.0 * sh * sh; /* 1 - cos w0 */
    const double opc = 2.0 * ch * ch; /* 1 + cos w0 */
    const double cs = 1.0 - omc;      /* cos w0 */
    const double alpha = sn / (2.0 * p->u.eq.q);
    const double A = sf_dsp_db_to_gain(p->u.eq.gain_db / 2.0); /* 10^(gain_db / 40) */
    const double sa = 2.0 * sqrt(A) * alpha;
    double b0 = 1, b1 = 0, b2 = 0, a0 = 1, a1 = 0, a2 = 0;
    switch (p->u.eq.type) {
    case SF_EQ_LOWPASS:
        b0 = omc / 2.0, b1 = omc, b2 = omc / 2.0;
        a0 = 1.0 + alpha, a1 = -2.0 * cs, a2 = 1.0 - alpha;
        break;
    case SF_EQ_HIGHPASS:
        b0 = opc / 2.0, b1 = -opc, b2 = opc / 2.0;
        a0 = 1.0 + alpha, a1 = -2.0 * cs, a2 = 1.0 - alpha;
        break;
    case SF_EQ_BANDPASS:
        b0 = alpha, b1 = 0.0, b2 = -alpha;
        a0 = 1.0 + alpha, a1 = -2.0 * cs, a2 = 1.0 - alpha;
        break;
    case SF_EQ_NOTCH:
        b0 = 1.0, b1 = -2.0 * cs, b2 = 1.0;
        a0 = 1.0 + alpha, a1 = -2.0 * cs, a2 = 1.0 - alpha;
        break;
    case SF_EQ_PEAK:
        b0 = 1.0 + alpha * A, b1 = -2.0 * cs, b2 = 1.0 - alpha * A;
        a0 = 1.0 + alpha / A, a1 = -2.0 * cs, a2 = 1.0 - alpha / A;
        break;
    case SF_EQ_LOWSHELF:
        b0 = A * ((A + 1.0) - (A - 1.0) * cs + sa);
        b1 = 2.0 * A * ((A - 1.0) - (A + 1.0) * cs);
        b2 = A * ((A + 1.0) - (A - 1.0) * cs - sa);
        a0 = (A + 1.0) + (A - 1.0) * cs + sa;
        a1 = -2.0 * ((A - 1.0) + (A + 1.0) * cs);
        a2 = (A + 1.0) + (A - 1.0) * cs - sa;
        break;
    case SF_EQ_HIGHSHELF:
        b0 = A * ((A + 1.0) + (A - 1.0) * cs + sa);
        b1 = -2.0 * A * ((A - 1.0) + (A + 1.0) * cs);
        b2 = A * ((A + 1.0) + (A - 1.0) * cs - sa);
        a0 = (A + 1.0) - (A - 1.0) * cs + sa;
        a1 = 2.0 * ((A - 1.0) - (A + 1.0) * cs);
        a2 = (A + 1.0) - (A - 1.0) * cs - sa;
        break;
    }
    return (s_biquad_t){b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0};
}

static sf_rc s_eq_init(sf_fx_t *fx, sf_err_t *err)
{
    const sf_fx_params_t *p = &fx->params;
    if ((unsigned)p->u.eq.type > (unsigned)SF_EQ_NOTCH)
        return SF_ERR(err, SF_E_INPUT, "unknown eq type %d", (int)p->u.eq.type);
    sf_rc rc = s_check("eq", "freq", p->u.eq.freq, err);
    if (!rc)
        rc = s_check("eq", "q", p->u.eq.q, err);
    if (!rc && (p->u.eq.type == SF_EQ_PEAK || p->u.eq.type == SF_EQ_LOWSHELF || p->u.eq.type == SF_EQ_HIGHSHELF))
        rc = s_check("eq", "gain_db", p->u.eq.gain_db, err);
    if (rc)
        return rc;
    const double nyquist = fx->sample_rate / 2.0;
    if (!(p->u.eq.freq < nyquist))
        return SF_ERR(err, SF_E_INPUT, "eq frequency %g Hz is not below half the sample rate (%g Hz)", p->u.eq.freq,
                      nyquist);
    s_eq_t *st = sf_calloc(1, sizeof *st);
    if (!st)
        return SF_ERR(err, SF_E_NOMEM, "out of memory for an eq");
    st->k = s_eq_coefs(p, fx->sample_rate);
    fx->state = st;
    return SF_OK;
}

/* One frame of the direct form I biquad. The flush test is one comparison
 * of |y| (the same set as -SF_EQ_FLUSH < y < SF_EQ_FLUSH, NaN included): as
 * a branch it is almost always not taken, where y > -SF_EQ_FLUSH alone
 * followed the sign of the signal and was mispredicted half the time. */
static inline double s_bq_step(const s_biquad_t *k, s_bq_state_t *s, double in)
{
    double y = k->b0 * in + k->b1 * s->x1 + k->b2 * s->x2 - k->a1 * s->y1 - k->a2 * s->y2;
    if (fabs(y) < SF_EQ_FLUSH)
        y = 0.0;
    s->x2 = s->x1;
    s->x1 = in;
    s->y2 = s->y1;
    s->y1 = y;
    return y;
}

/* Runs n_st stages (1..SF_EQ_STAGES) over channels c0 .. c0 + n_ln - 1
 * (n_ln 1..SF_EQ_LANES): per frame every stage of every lane, each stage's
 * output rounded to float before the next, exactly as separate calls would
 * compute it. Why: a biquad's recursion waits on its previous output
 * (multiply, subtract, subtract), while different channels and stages are
 * independent within a frame, so interleaving them fills the pipeline. In
 * blocks of SF_EQ_BLOCK frames, stage by stage, so that the instructions
 * come in about the order their inputs become ready. Called with constant
 * n_st and n_ln (s_eq_pass), every loop over them unrolled, so that the
 * state lives in registers (-O2 does not unroll them by itself, and the
 * recursion would then go through memory). */
static inline __attribute__((always_inline)) void s_eq_run(s_eq_t *const *eqs, int n_st, int c0, int n_ln,
                                                           float *const *channels, size_t n_frames)
{
    s_biquad_t k[SF_EQ_STAGES];
    s_bq_state_t q[SF_EQ_STAGES][SF_EQ_LANES];
    float *x[SF_EQ_LANES];
#pragma GCC unroll 16
    for (int c = 0; c < n_ln; c++)
        x[c] = channels[c0 + c];
#pragma GCC unroll 16
    for (int s = 0; s < n_st; s++) {
        k[s] = eqs[s]->k;
#pragma GCC unroll 16
        for (int c = 0; c < n_ln; c++)
            q[s][c] = eqs[s]->ch[c0 + c];
    }
    size_t i = 0;
    for (; i + SF_EQ_BLOCK <= n_frames; i += SF_EQ_BLOCK) {
        float v[SF_EQ_BLOCK][SF_EQ_LANES];
#pragma GCC unroll 16
        for (int j = 0; j < SF_EQ_BLOCK; j++)
#pragma GCC unroll 16
            for (int c = 0; c < n_ln; c++)
                v[j][c] = x[c][i + (size_t)j];
#pragma GCC unroll 16
        for (int s = 0; s < n_st; s++)
#pragma GCC unroll 16
            for (int j = 0; j < SF_EQ_BLOCK; j++)
#pragma GCC unroll 16
                for (int c = 0; c < n_ln; c++)
                    v[j][c] = (float)s_bq_step(&k[s], &q[s][c], (double)v[j][c]);
#pragma GCC unroll 16
        for (int j = 0; j < SF_EQ_BLOCK; j++)
#pragma GCC unroll 16
            for (int c = 0; c < n_ln; c++)
                x[c][i + (size_t)j] = v[j][c];
    }
    for (; i < n_frames; i++) {
#pragma GCC unroll 16
        for (int c = 0; c < n_ln; c++) {
            float v = x[c][i];
#pragma GCC unroll 16
            for (int s = 0; s < n_st; s++)
                v = (float)s_bq_step(&k[s], &q[s][c], (double)v);
            x[c][i] = v;
        }
    }
#pragma GCC unroll 16
    for (int s = 0; s < n_st; s++)
#pragma GCC unroll 16
        for (int c = 0; c < n_ln; c++)
            eqs[s]->ch[c0 + c] = q[s][c];
}

/* s_eq_run with n_st and n_ln as constants. */
static void s_eq_pass(s_eq_t *const *eqs, int n_st, int c0, int n_ln, float *const *channels, size_t n_frames)
{
#define SF_EQ_CASE(S, L)                                                                                               \
    case (S)*16 + (L): s_eq_run(eqs, S, c0, L, channels, n_frames); break
    switch (n_st * 16 + n_ln) {
        SF_EQ_CASE(1, 1);
        SF_EQ_CASE(1, 2);
        SF_EQ_CASE(2, 1);
        SF_EQ_CASE(2, 2);
        SF_EQ_CASE(3, 1);
        SF_EQ_CASE(3, 2);
        SF_EQ_CASE(4, 1);
        SF_EQ_CASE(4, 2);
    default: assert(!"eq pass out of range");
    }
#undef SF_EQ_CASE
}

/* Up to SF_EQ_STAGES stages over all channels, SF_EQ_LANES at a time (the
 * channels never interact). */
static void s_eq_stages(s_eq_t *const *eqs, int n_st, int n_channels, float *const *channels, size_t n_frames)
{
    for (int c0 = 0; c0 < n_channels; c0 += SF_EQ_LANES) {
        int n_ln = n_channels - c0 < SF_EQ_LANES ? n_channels - c0 : SF_EQ_LANES;
        s_eq_pass(eqs, n_st, c0, n_ln, channels, n_frames);
    }
}

static void s_eq_process(sf_fx_t *fx, float *const *channels, size_t n_frames)
{
    s_eq_t *st = fx->state;
    s_eq_stages(&st, 1, fx->n_channels, channels, n_frames);
}

/* Groups of up to SF_EQ_STAGES stages, each group over the whole signal
 * before the next: it reads the previous group's float output, as a stage
 * reads it from the call before. */
void sf_fx_process_eq_cascade(sf_fx_t *const *eqs, size_t n, float *const *channels, size_t n_frames)
{
    s_eq_t *st[SF_EQ_STAGES];
    for (size_t s0 = 0; s0 < n; s0 += SF_EQ_STAGES) {
        int n_st = n - s0 < SF_EQ_STAGES ? (int)(n - s0) : SF_EQ_STAGES;
        for (int s = 0; s < n_st; s++) {
            const sf_fx_t *fx = eqs[s0 + (size_t)s];
            assert(fx->kind == SF_FX_EQ && fx->n_channels == eqs[0]->n_channels);
            st[s] = fx->state;
            for (int k = 0; k < s; k++)
                assert(st[k] != st[s]); /* one state cannot be two stages of one frame */
        }
        s_eq_stages(st, n_st, eqs[0]->n_channels, channels, n_frames);
    }
}

static void s_eq_reset(sf_fx_t *fx)
{
    s_eq_t *st = fx->state;
    memset(st->ch, 0, sizeof st->ch);
}

static int64_t s_eq_tail(const sf_fx_params_t *p, int sample_rate, double threshold_db)
{
    if (!(p->u.eq.freq > 0 && p->u.eq.freq < sample_rate / 2.0 && p->u.eq.q > 0))
        return 2; /* init refuses these; nothing sensible to measure */
    const s_biquad_t k = s_eq_coefs(p, sample_rate);
    /* Poles: roots of z^2 + a1 z + a2. */
    const double disc = k.a1 * k.a1 - 4.0 * k.a2;
    const double r = disc < 0 ? sqrt(k.a2) : (fabs(k.a1) + sqrt(disc)) / 2.0;
    if (!(r < 1.0))
        return INT64_MAX;
    double n = r > 0.0 ? ceil(s_ln_level(threshold_db) / log(r)) : 0.0;
    if (!(n > 0))
        n = 0;
    /* What a segment can miss is not one sample of the impulse response but
     * everything after it: once the input stops, the output is
     * sum_{k>=t} h[k] x[t-k], up to the sum of |h| from t on for a full-scale
     * input -- 1/(1 - r) times h[t] for a pole near DC (a held offset through
     * a 20 Hz notch missed -114 dBFS where the sample alone said -144). So
     * simulate where r^n / (1 - r) reaches the threshold, twice over. */
    const double n_sum = r > 0.0 ? ceil((s_ln_level(threshold_db) + log(1.0 - r)) / log(r)) : 0.0;
    if (n_sum > SF_EQ_MAX_SIM)
        return n_sum > 9e18 ? INT64_MAX : (int64_t)n_sum + 2;
    const int64_t formula = (int64_t)n + 2;
    const int64_t len = 2 * ((n_sum > n ? (int64_t)n_sum : (int64_t)n) + 2) + 64;
    /* The impulse response in double, exactly as process runs it: its total
     * magnitude, then the first frame from which the rest sums below the
     * threshold. The simulated length holds all but r^len of it. */
    const double level = exp(s_ln_level(threshold_db));
    s_bq_state_t s = {0};
    double total = 0.0;
    for (int64_t i = 0; i < len; i++)
        total += fabs(s_bq_step(&k, &s, i == 0 ? 1.0 : 0.0));
    s = (s_bq_state_t){0};
    double rest = total;
    int64_t last = 0;
    for (int64_t i = 0; i < len && rest >= level; i++) {
        last = i + 1;
        rest -= fabs(s_bq_step(&k, &s, i == 0 ? 1.0 : 0.0));
    }
    return last > formula ? last : formula;
}

const sf_fx_class_t sf_fx_eq_class = {
    .init = s_eq_init,
    .process = s_eq_process,
    .reset = s_eq_reset,
    .free = s_state_free,
    .tail = s_eq_tail,
};

/* ---- delay ---------------------------------------------------------------- */

typedef struct {
    size_t n_delay; /* D, frames */
    size_t pos;     /* ring index of the oldest w, the same for every channel */
    double feedback, dry, wet;
    float *ring[SF_FX_MAX_CHANNELS]; /* owned, n_delay floats each */
} s_delay_t;

/* D in frames: time rounded to the nearest frame, at least 1. */
static int64_t s_delay_frames(const sf_fx_params_t *p, int sample_rate)
{
    const double d = round(p->u.delay.time_ms * (double)sample_rate / 1000.0);
    if (!(d >= 1.0))
        return 1;
    if (d > 1e15)
        return (int64_t)1e15;
    return (int64_t)d;
}

static void s_delay_free(sf_fx_t *fx)
{
    s_delay_t *st = fx->state;
    for (int c = 0; c < SF_FX_MAX_CHANNELS; c++)
        sf_free(st->ring[c]);
    sf_free(st);
}

static sf_rc s_delay_init(sf_fx_t *fx, sf_err_t *err)
{
    const sf_fx_params_t *p = &fx->params;
    sf_rc rc = s_check("delay", "time_ms", p->u.delay.time_ms, err);
    if (!rc)
        rc = s_check("delay", "feedback", p->u.delay.feedback, err);
    if (!rc)
        rc = s_check("delay", "mix", p->u.delay.mix, err);
    if (rc)
        return rc;
    s_delay_t *st = sf_calloc(1, sizeof *st);
    if (!st)
        return SF_ERR(err, SF_E_NOMEM, "out of memory for a delay");
    fx->state = st;
    st->n_delay = (size_t)s_delay_frames(p, fx->sample_rate);
    st->feedback = p->u.delay.feedback;
    st->dry = 1.0 - p->u.delay.mix;
    st->wet = p->u.delay.mix;
    for (int c = 0; c < fx->n_channels; c++) {
        st->ring[c] = sf_aligned_alloc(st->n_delay * sizeof(float));
        if (!st->ring[c]) {
            const size_t n_delay = st->n_delay;
            s_delay_free(fx);
            fx->state = NULL;
            return SF_ERR(err, SF_E_NOMEM, "out of memory for a delay of %zu frames", n_delay);
        }
        memset(st->ring[c], 0, st->n_delay * sizeof(float));
    }
    return SF_OK;
}

static void s_delay_process(sf_fx_t *fx, float *const *channels, size_t n_frames)
{
    s_delay_t *st = fx->state;
    const size_t d = st->n_delay;
    const double fb = st->feedback, dry = st->dry, wet = st->wet;
    size_t end = st->pos;
    for (int c = 0; c < fx->n_channels; c++) {
        float *x = channels[c];
        float *ring = st->ring[c];
        size_t pos = st->pos;
        for (size_t i = 0; i < n_frames; i++) {
            const double in = (double)x[i];
            const double w_old = (double)ring[pos];
            double w = in + fb * w_old;
            if (w > -SF_DELAY_FLUSH && w < SF_DELAY_FLUSH)
                w = 0.0;
            ring[pos] = (float)w;
            x[i] = (float)(dry * in + wet * w_old);
            if (++pos == d)
                pos = 0;
        }
        end = pos;
    }
    st->pos = end;
}

static void s_delay_reset(sf_fx_t *fx)
{
    s_delay_t *st = fx->state;
    for (int c = 0; c < fx->n_channels; c++)
        memset(st->ring[c], 0, st->n_delay * sizeof(float));
    st->pos = 0;
}

static int64_t s_delay_tail(const sf_fx_params_t *p, int sample_rate, double threshold_db)
{
    const double fb = p->u.delay.feedback;
    const int64_t d = s_delay_frames(p, sample_rate);
    if (!(fb < 1.0))
        return INT64_MAX;
    if (!(fb > 0.0))
        return d;
    double echoes = ceil(s_ln_level(threshold_db) / log(fb));
    if (!(echoes > 0))
        echoes = 0;
    const double frames = (double)d * (echoes + 1.0);
    if (frames >= 9.2e18)
        return INT64_MAX;
    return (int64_t)frames;
}

const sf_fx_class_t sf_fx_delay_class = {
    .init = s_delay_init,
    .process = s_delay_process,
    .reset = s_delay_reset,
    .free = s_delay_free,
    .tail = s_delay_tail,
};
