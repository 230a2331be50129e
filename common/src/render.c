/* render.c -- the one renderer (see sf/render.h).
 *
 * The graph, per window of SF_RENDER_WINDOW frames:
 * - tracks: a track's clips (file order: a later clip replaces what is under
 *   it, or crossfades over it for `crossfade` frames; channel pick) go into
 *   its own buffer as raw source samples plus the gain of each (clip gain x
 *   fades) in double. Polarity, fader, pan/route and send levels are gains
 *   too; per destination the product env * amp * pan is rounded to float
 *   once and applied in one float product, so a track sample is one
 *   coefficient rounding and one product rounding from the exact value.
 *   Only a crossfade stores a mixed value (rounded once, gain 1);
 * - destinations ("dests") of a track or bus: its output (post-fader) and
 *   each send (pre- or post-fader tap, level), each a gain matrix [in][out]
 *   into the layout of the bus it feeds (pan law, route, layout conversion);
 * - nodes: node 0 is the master, node 1 + b is bus b. Each node sums its
 *   inputs into a double accumulator: tracks in session order, then buses in
 *   session->bus_order. A bus then rounds its sum to float (its signal: where
 *   its effects will run), applies its fader and feeds its own dests. The
 *   master's float sum is the stem, or one term of a mix (the sum of the
 *   stems' float signals in double, rounded once); a stem of another layout
 *   is converted from the master's double sum.
 *
 * Curves (x in [0, 1), j frames from the start of the curve, L its length):
 * fade-in x = j / L, so its first sample is silent; fade-out x = k / L with
 * k frames to the clip's last sample, so its last sample is silent; linear
 * g = x, equal power g = sin(x pi/2); a crossfade of X frames takes the clip
 * in by sin(j/X pi/2) and what is under it out by sin((X - j)/X pi/2).
 * Automation: sf_render_automation_at, per sample, gains linear in dB.
 *
 * Determinism -- the bytes of every output sample depend only on the session
 * and the sample's timeline position:
 * - windows are a constant size; within a window the active tracks are
 *   rendered in parallel, at most SF_RENDER_GROUP at a time (bounded memory
 *   for 1,000-track sessions), each into its own buffer; then the group is
 *   added into the accumulators in parallel over blocks of SF_RENDER_BLOCK
 *   samples, each block adding the group's tracks in session order. Never an
 *   OpenMP reduction;
 * - every per-sample value (curves, automation, pan law, dB to gain) is a
 *   pure function of the absolute frame, computed the same way in every code
 *   path (sf_dsp_db_to_gain, sf_dsp_sin_half_pi and sf_dsp_sincos_half_pi
 *   are portable polynomials, bit-identical scalar or vectorised). A gain
 *   that is constant over a block takes a shortcut that yields the same bits
 *   as the per-sample path (same operands, same order), so where a block or
 *   window starts never matters;
 * - silence is exact: a track or bus that cannot sound in a window is
 *   skipped, which is the same as adding +-0 to partial sums that start at
 *   +0 (x + 0 == x), so skipping changes no bit.
 *
 * Workers never report: each track's error goes into its own slot, and the
 * one of the lowest index in the group wins.
 */
#include "sf/render.h"

#include "sf/alloc.h"
#include "sf/dsp.h"
#include "sf/media.h"

#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define SF_RENDER_WINDOW   65536    /* frames per window: a constant, never from the thread count */
#define SF_RENDER_GROUP    64       /* tracks rendered at once: bounds the buffer memory */
#define SF_RENDER_BLOCK    4096     /* frames per summing task and per gain array */
#define SF_RENDER_MAX_IN   2        /* channels a track's clips deliver */
#define SF_RENDER_FLOOR_DB (-144.0) /* -inf ramps when the session has no usable threshold */
#define SF_RENDER_N_TMP    7        /* block-sized double arrays per thread */
#define SF_NEG_INF         (-(double)INFINITY)

#ifndef M_SQRT1_2
#define M_SQRT1_2 0.70710678118654752440
#endif
#ifndef M_SQRT2
#define M_SQRT2 1.41421356237309504880
#endif

typedef struct {
    int64_t begin; /* timeline frames [begin, end) */
    int64_t end;
} sf_span_t;

typedef struct {
    int64_t begin; /* timeline frames [begin, end) of one visible piece of a clip */
    int64_t end;
    size_t clip; /* index in the track */
} s_piece_t;

/* One destination of a track or bus: its output or a send. */
typedef struct {
    int node;                                     /* 0: master, 1 + b: bus b */
    int n_out;                                    /* channels of that node */
    bool post;                                    /* tapped after the fader (outputs, post-fader sends) */
    bool audible;                                 /* false when its gain is a constant 0: skipped */
    double level;                                 /* linear send level; 1 for outputs */
    const sf_automation_t *level_auto;            /* NULL: `level` holds */
    bool pan_auto;                                /* the pan entries follow the track's pan automation */
    double mat[SF_MAX_CHANNELS][SF_MAX_CHANNELS]; /* [in][out]: pan, route, layout; no gain */
} s_dest_t;

typedef struct {
    int n_in;                          /* 1 or 2 */
    double sign;                       /* polarity: +1 or -1 */
    double fader;                      /* sign * gain_db as a linear gain */
    const sf_automation_t *fader_auto; /* NULL: `fader` holds */
    const sf_automation_t *pan_auto;   /* NULL: constant pan (or route) */
    s_dest_t *dests;                   /* [0] the output, then the sends in file order */
    size_t n_dests;
    bool audible; /* some dest is */
} s_track_plan_t;

typedef struct {
    int n_ch;
    double fader;    /* gain_db as a linear gain */
    s_dest_t *dests; /* [0] the output, then the sends */
    size_t n_dests;
} s_bus_plan_t;

/* A track's pre-fader signal over a window, kept as raw samples and the
 * gain of each (clip gain x fades) so that the gain folds into the one
 * float coefficient of each destination: a track sample stays a single
 * float rounding (of its coefficient) and one float product away from the
 * exact value. Crossfades store the mixed value with gain 1. */
typedef struct {
    float *raw[SF_RENDER_MAX_IN]; /* stride floats each */
    double *env;                  /* stride: the gain of raw[.][i]; 0 where no clip plays */
    double *blk_env;              /* per SF_RENDER_BLOCK block of the window: env if the
                                     same for every clip sample there, else NaN */
    unsigned char *blk_set;       /* per block: some clip sample is there */
} s_clipbuf_t;

/* Per-thread scratch. */
typedef struct {
    float *src[SF_MAX_CHANNELS]; /* window-sized: one read of a source */
    sf_span_t *covered;          /* capacity max_clips + 1 */
    s_piece_t *pieces;           /* grows */
    size_t cap_pieces;
    double *tmp[SF_RENDER_N_TMP]; /* SF_RENDER_BLOCK each */
    float *g;                     /* SF_RENDER_BLOCK float gains */
} s_scratch_t;

/* A list of tracks that sound together (a stem, or every track). */
typedef struct {
    const size_t *tracks; /* ascending */
    size_t n;
} s_set_t;

typedef struct {
    const sf_session_t *s;
    double floor_db;
    int n_threads;
    int64_t win_max;
    size_t stride; /* floats (doubles) between the channels of a window buffer */
    int n_nodes;   /* 1 + n_buses */
    int *node_ch;
    bool *reach;            /* a node some track of the target can feed */
    bool *live;             /* a node fed in the current window */
    double **acc;           /* per reachable node: node_ch * stride */
    s_track_plan_t *tracks; /* per session track (planned ones only) */
    s_bus_plan_t *buses;    /* per session bus */
    s_dest_t *dest_pool;
    s_set_t *sets;
    size_t n_sets;
    size_t *all_tracks; /* FULL_MIX: 0 .. n_tracks-1 */
    s_clipbuf_t *bufs;  /* n_group slots (at least one) */
    size_t n_group;
    size_t n_blocks;   /* SF_RENDER_BLOCK blocks in a window */
    float *bus_buf;    /* SF_MAX_CHANNELS * stride */
    float *master_buf; /* master_channels * stride */
    double *mix_acc;   /* MIX: master_channels * stride */
    size_t *active;
    sf_rc *rcs;
    sf_err_t *errs;
    s_scratch_t *scratch; /* n_threads */
    size_t max_clips;
    int max_src_ch;
} s_ctx_t;

/* ---- gains and layouts --------------------------------------------------- */

static bool s_layout_ok(int n) { return n == 1 || n == 2 || n == 6 || n == 8; }

void sf_render_layout_gains(int n_in, int n_out, double g[SF_MAX_CHANNELS][SF_MAX_CHANNELS])
{
    memset(g, 0, sizeof(double) * SF_MAX_CHANNELS * SF_MAX_CHANNELS);
    if (!s_layout_ok(n_in) || !s_layout_ok(n_out))
        return;
    if (n_in == n_out) {
        for (int c = 0; c < n_in; c++)
            g[c][c] = 1.0;
    } else if (n_in == 1) { /* centre, constant power */
        g[0][0] = M_SQRT1_2;
        g[0][1] = M_SQRT1_2;
    } else if (n_in == 2 && n_out == 1) {
        g[0][0] = M_SQRT1_2;
        g[1][0] = M_SQRT1_2;
    } else if (n_in == 2) {
        g[0][0] = 1.0;
        g[1][1] = 1.0;
    } else if (n_out <= 2) {
        /* ITU-R BS.775 down-mix: L' = L + C/sqrt2 + surrounds/sqrt2, LFE dropped */
        double st[SF_MAX_CHANNELS][2] = {{0}};
        st[0][0] = 1.0;
        st[1][1] = 1.0;
        st[2][0] = st[2][1] = M_SQRT1_2;
        st[4][0] = M_SQRT1_2; /* Ls, or Lss */
        st[5][1] = M_SQRT1_2;
        if (n_in == 8) {
            st[6][0] = M_SQRT1_2; /* Lsr */
            st[7][1] = M_SQRT1_2;
        }
        for (int c = 0; c < n_in; c++) {
            if (n_out == 2) {
                g[c][0] = st[c][0];
                g[c][1] = st[c][1];
            } else {
                g[c][0] = (st[c][0] + st[c][1]) / M_SQRT2;
            }
        }
    } else if (n_in == 6) { /* 5.1 to 7.1: the surrounds become the side surrounds */
        for (int c = 0; c < 6; c++)
            g[c][c] = 1.0;
    } else { /* 7.1 to 5.1 */
        for (int c = 0; c < 4; c++)
            g[c][c] = 1.0;
        g[4][4] = g[6][4] = M_SQRT1_2;
        g[5][5] = g[7][5] = M_SQRT1_2;
    }
}

/* The pan law's two gains for pan p: mono L = cos(q pi/2), R = sin(q pi/2)
 * with q = (p + 1) / 2 (constant power, one sincos); stereo the gain of the
 * left input on L and of the right input on R (balance: the far side
 * sin((1 - |p|) pi/2) = cos(|p| pi/2)). The sin/cos kernels clamp to [0, 1],
 * which also clamps p to [-1, 1]. */
static void s_pan_gains(int n_in, double p, double *a, double *b)
{
    if (n_in == 1) {
        sf_dsp_sincos_half_pi((1.0 + p) * 0.5, b, a);
    } else {
        *a = sf_dsp_sin_half_pi(1.0 - p);
        *b = sf_dsp_sin_half_pi(1.0 + p);
    }
}

/* The same for a block of pan values p[0..n): a[], b[], bit-identical. */
static void s_pan_gains_n(int n_in, const double *restrict p, double *restrict a, double *restrict b, size_t n)
{
    if (n_in == 1) {
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            b[i] = (1.0 + p[i]) * 0.5;
        sf_dsp_sincos_half_pi_n(b, a, b, n);
        return;
    }
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        a[i] = 1.0 - p[i];
        b[i] = 1.0 + p[i];
    }
    sf_dsp_sin_half_pi_n(a, a, n);
    sf_dsp_sin_half_pi_n(b, b, n);
}

/* True for the matrix entries the pan law fills: mono [0][0], [0][1];
 * stereo [0][0], [1][1]. *which: 0 (a) or 1 (b). */
static bool s_pan_entry(int n_in, int in, int out, int *which)
{
    if (n_in == 1 && in == 0 && out < 2) {
        *which = out;
        return true;
    }
    if (n_in == 2 && in == out && out < 2) {
        *which = out;
        return true;
    }
    return false;
}

/* A track's matrix into a bus of n_dest channels, pan p: pan law (L/R of a
 * wider bus), fold-down into mono, or its route (channels of its output bus
 * of n_outbus channels; into another layout through sf_render_layout_gains). */
static void s_track_matrix(const sf_track_t *t, int n_in, double p, int n_outbus, int n_dest,
                           double mat[SF_MAX_CHANNELS][SF_MAX_CHANNELS])
{
    memset(mat, 0, sizeof(double) * SF_MAX_CHANNELS * SF_MAX_CHANNELS);
    if (t->n_route > 0) {
        double r[SF_MAX_CHANNELS] = {0};
        for (int k = 0; k < t->n_route; k++)
            r[t->route[k]] = 1.0;
        if (n_dest == n_outbus) {
            for (int c = 0; c < n_dest; c++)
                mat[0][c] = r[c];
        } else {
            double lg[SF_MAX_CHANNELS][SF_MAX_CHANNELS];
            sf_render_layout_gains(n_outbus, n_dest, lg);
            for (int c = 0; c < n_dest; c++)
                for (int k = 0; k < n_outbus; k++)
                    mat[0][c] += r[k] * lg[k][c];
        }
        return;
    }
    if (n_dest == 1) {
        if (n_in == 1) {
            mat[0][0] = 1.0;
        } else {
            mat[0][0] = M_SQRT1_2;
            mat[1][0] = M_SQRT1_2;
        }
        return;
    }
    double a, b;
    s_pan_gains(n_in, p, &a, &b);
    if (n_in == 1) {
        mat[0][0] = a;
        mat[0][1] = b;
    } else {
        mat[0][0] = a;
        mat[1][1] = b;
    }
}

void sf_render_track_gains(const sf_track_t *track, int n_out_channels, double gains[2][SF_MAX_CHANNELS])
{
    memset(gains, 0, sizeof(double) * 2 * SF_MAX_CHANNELS);
    int n_in = track->n_channels == 2 ? 2 : 1;
    if (n_out_channels < 1 || n_out_channels > SF_MAX_CHANNELS)
        return;
    double g = sf_dsp_db_to_gain(track->gain_db) * (track->invert ? -1.0 : 1.0);
    double mat[SF_MAX_CHANNELS][SF_MAX_CHANNELS];
    s_track_matrix(track, n_in, track->pan, n_out_channels, n_out_channels, mat);
    for (int in = 0; in < n_in; in++)
        for (int c = 0; c < n_out_channels; c++)
            gains[in][c] = g * mat[in][c];
}

/* ---- automation ------------------------------------------------------------ */

/* Number of points at or before `frame`. */
static size_t s_auto_upper(const sf_automation_t *a, int64_t frame)
{
    size_t lo = 0, hi = a->n_points;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->frames[mid] <= frame)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Between points (f0, v0) and (f1, v1), f0 < frame < f1. */
static double s_interp(double v0, double v1, int64_t f0, int64_t f1, int64_t frame, double floor_db)
{
    if (v0 == SF_NEG_INF && v1 == SF_NEG_INF)
        return SF_NEG_INF;
    v0 = v0 == SF_NEG_INF ? floor_db : v0;
    v1 = v1 == SF_NEG_INF ? floor_db : v1;
    /* a reciprocal per segment, not a division per sample: the block form
     * (s_auto_block) computes the same expression */
    const double inv = 1.0 / (double)(f1 - f0);
    return v0 + (v1 - v0) * ((double)(frame - f0) * inv);
}

double sf_render_automation_at(const sf_automation_t *a, int64_t frame, double floor_db)
{
    if (a->n_points == 0)
        return NAN;
    size_t k = s_auto_upper(a, frame);
    if (k == 0)
        return a->values[0];
    k--;
    if (k == a->n_points - 1 || a->frames[k] == frame)
        return a->values[k];
    return s_interp(a->values[k], a->values[k + 1], a->frames[k], a->frames[k + 1], frame, floor_db);
}

/* The values of `a` at frames f0 .. f0 + n - 1 into v[0..n), each exactly
 * sf_render_automation_at's. Returns true instead, with the value in
 * *value and v untouched, when the block lies where the value is constant. */
static bool s_auto_block(const sf_automation_t *a, double floor_db, int64_t f0, size_t n, double *restrict v,
                         double *value)
{
    const int64_t *fr = a->frames;
    const double *val = a->values;
    const size_t np = a->n_points;
    const int64_t last = f0 + (int64_t)n - 1;
    size_t k = s_auto_upper(a, f0);
    if (k == 0 && last < fr[0]) {
        *value = val[0];
        return true;
    }
    if (k == np) {
        *value = val[np - 1];
        return true;
    }
    /* inside one flat segment (equal ends: v0 + 0 * x == v0, -inf to -inf) */
    if (k > 0 && last < fr[k] && val[k - 1] == val[k]) {
        *value = val[k - 1];
        return true;
    }
    size_t i = 0;
    while (i < n) {
        const int64_t f = f0 + (int64_t)i;
        while (k < np && fr[k] <= f)
            k++;
        if (k == 0 || k == np) {
            /* before the first point, or from the last one on */
            size_t m = k == 0 ? (size_t)(fr[0] - f) : n - i;
            m = m < n - i ? m : n - i;
            const double c = val[k == 0 ? 0 : np - 1];
            for (size_t j = 0; j < m; j++)
                v[i + j] = c;
            i += m;
            continue;
        }
        /* fr[k-1] <= f < fr[k] */
        if (f == fr[k - 1]) {
            v[i++] = val[k - 1];
            continue;
        }
        size_t m = (size_t)(fr[k] - f);
        m = m < n - i ? m : n - i;
        double v0 = val[k - 1], v1 = val[k];
        if (v0 == SF_NEG_INF && v1 == SF_NEG_INF) {
            for (size_t j = 0; j < m; j++)
                v[i + j] = SF_NEG_INF;
        } else {
            /* the expression of s_interp, term for term */
            v0 = v0 == SF_NEG_INF ? floor_db : v0;
            v1 = v1 == SF_NEG_INF ? floor_db : v1;
            const double dv = v1 - v0;
            const double inv = 1.0 / (double)(fr[k] - fr[k - 1]);
            const int64_t base = f - fr[k - 1];
            double *restrict out = v + i;
#pragma omp simd
            for (size_t j = 0; j < m; j++)
                out[j] = v0 + dv * ((double)(base + (int64_t)j) * inv);
        }
        i += m;
    }
    return false;
}

/* Linear gains of a dB automation over a block: true and *gain when
 * constant, else the gains in v. */
static bool s_auto_gain_block(const sf_automation_t *a, double floor_db, int64_t f0, size_t n, double *v, double *gain)
{
    double db;
    if (s_auto_block(a, floor_db, f0, n, v, &db)) {
        *gain = sf_dsp_db_to_gain(db);
        return true;
    }
    sf_dsp_db_to_gain_n(v, v, n);
    return false;
}

/* ---- adding into a destination ---------------------------------------------- */

/* acc(d) += sig[in] * amp * mat[in][out] for a block of n frames at window
 * index i0. amp is amp_v[i] or the constant amp_c; the pan entries of a
 * pan-automated dest are pan_v[which][i] or pan_c[which]. Whatever is
 * constant, each gain is (float)(amp * pan-or-matrix) in double, the same
 * bits as the per-sample path would give. */
static void s_dest_add(const s_ctx_t *c, const s_dest_t *d, int n_in, const float *const *sig, size_t i0, size_t n,
                       double amp_c, const double *amp_v, const double pan_c[2], double *const pan_v[2],
                       s_scratch_t *sc)
{
    double *acc = c->acc[d->node];
    for (int in = 0; in < n_in; in++)
        for (int out = 0; out < d->n_out; out++) {
            int which = 0;
            bool panned = d->pan_auto && s_pan_entry(n_in, in, out, &which);
            double p_c = panned ? pan_c[which] : d->mat[in][out];
            const double *p_v = panned ? pan_v[which] : NULL;
            if (!p_v && p_c == 0.0)
                continue; /* adds exact zeros */
            double *dst = acc + (size_t)out * c->stride + i0;
            if (!p_v && !amp_v) {
                float g = (float)(amp_c * p_c);
                if (g != 0.0f)
                    sf_dsp_mix_f64(dst, sig[in], n, g);
                continue;
            }
            float *g = sc->g;
            if (p_v && amp_v)
                sf_dsp_gains2_f32(g, amp_v, p_v, n);
            else if (amp_v)
                sf_dsp_gains_f32(g, amp_v, p_c, n);
            else
                sf_dsp_gains_f32(g, p_v, amp_c, n);
            sf_dsp_mix_f64_gains(dst, sig[in], g, n);
        }
}

/* amp = base * level over a block, either possibly per sample; returns the
 * array (in `into`) or NULL with the constant in *amp_c. */
static const double *s_amp(double base_c, const double *base_v, double lev_c, const double *lev_v, double *into,
                           size_t n, double *amp_c)
{
    *amp_c = base_c * lev_c;
    if (base_v && lev_v) {
        sf_dsp_mul_f64(into, base_v, lev_v, n);
        return into;
    }
    if (base_v) {
        sf_dsp_scale_f64(into, base_v, lev_c, n);
        return into;
    }
    if (lev_v) {
        sf_dsp_scale_f64(into, lev_v, base_c, n);
        return into;
    }
    return NULL;
}

/* Adds block [i0, i0 + n) of a track's pre-fader signal (timeline frame f0)
 * into its dests: raw samples times (env * amp) * pan, the gain rounded once. */
static void s_track_add(const s_ctx_t *c, const s_track_plan_t *tp, const s_clipbuf_t *cb, size_t i0, int64_t f0,
                        size_t n, s_scratch_t *sc)
{
    const size_t blk = i0 / SF_RENDER_BLOCK;
    const double env_c = cb->blk_set[blk] ? cb->blk_env[blk] : 0.0;
    const double *env_v = isnan(env_c) ? cb->env + i0 : NULL;
    if (!env_v && env_c == 0.0)
        return; /* no clip sounds here: it would add exact zeros */
    const float *pre[SF_RENDER_MAX_IN] = {cb->raw[0] + i0, cb->raw[1] + i0};
    double fader_c = tp->fader;
    const double *fader_v = NULL;
    if (tp->fader_auto) {
        double g;
        if (s_auto_gain_block(tp->fader_auto, c->floor_db, f0, n, sc->tmp[0], &g)) {
            fader_c = tp->sign * g;
        } else {
            double *restrict v = sc->tmp[0];
            const double sign = tp->sign;
#pragma omp simd
            for (size_t i = 0; i < n; i++)
                v[i] = sign * v[i];
            fader_v = v;
        }
    }
    double pan_c[2] = {0, 0};
    double *pan_v[2] = {NULL, NULL};
    if (tp->pan_auto) {
        double p;
        if (s_auto_block(tp->pan_auto, c->floor_db, f0, n, sc->tmp[1], &p)) {
            s_pan_gains(tp->n_in, p, &pan_c[0], &pan_c[1]);
        } else {
            s_pan_gains_n(tp->n_in, sc->tmp[1], sc->tmp[2], sc->tmp[3], n);
            pan_v[0] = sc->tmp[2];
            pan_v[1] = sc->tmp[3];
        }
    }
    for (size_t k = 0; k < tp->n_dests; k++) {
        const s_dest_t *d = &tp->dests[k];
        if (!d->audible)
            continue;
        double lev_c = d->level;
        const double *lev_v = NULL;
        if (d->level_auto && !s_auto_gain_block(d->level_auto, c->floor_db, f0, n, sc->tmp[4], &lev_c))
            lev_v = sc->tmp[4];
        double amp_c;
        const double *amp_v =
            s_amp(d->post ? fader_c : tp->sign, d->post ? fader_v : NULL, lev_c, lev_v, sc->tmp[5], n, &amp_c);
        /* env first: env * amp, in every path */
        double g_c;
        const double *g_v = s_amp(env_c, env_v, amp_c, amp_v, sc->tmp[6], n, &g_c);
        s_dest_add(c, d, tp->n_in, pre, i0, n, g_c, g_v, pan_c, pan_v, sc);
    }
}

/* Adds block [i0, i0 + n) of a bus's signal into its dests. */
static void s_bus_add(const s_ctx_t *c, const s_bus_plan_t *bp, const float *const *sig, size_t i0, int64_t f0,
                      size_t n, s_scratch_t *sc)
{
    static const double no_pan[2] = {0, 0};
    double *const no_pan_v[2] = {NULL, NULL};
    for (size_t k = 0; k < bp->n_dests; k++) {
        const s_dest_t *d = &bp->dests[k];
        if (!d->audible)
            continue;
        double lev_c = d->level;
        const double *lev_v = NULL;
        if (d->level_auto && !s_auto_gain_block(d->level_auto, c->floor_db, f0, n, sc->tmp[4], &lev_c))
            lev_v = sc->tmp[4];
        double amp_c;
        const double *amp_v = s_amp(d->post ? bp->fader : 1.0, NULL, lev_c, lev_v, sc->tmp[5], n, &amp_c);
        s_dest_add(c, d, bp->n_ch, sig, i0, n, amp_c, amp_v, no_pan, no_pan_v, sc);
    }
}

/* ---- clips: a track's pre-fader signal ------------------------------------- */

static int64_t s_clamp_len(int64_t len, int64_t max) { return len < 0 ? 0 : len > max ? max : len; }

/* Adds [begin, end) to the sorted disjoint list, merging neighbours. */
static void s_cover(sf_span_t *list, size_t *n, int64_t begin, int64_t end)
{
    size_t i = 0;
    while (i < *n && list[i].end < begin)
        i++;
    size_t j = i;
    while (j < *n && list[j].begin <= end) {
        if (list[j].begin < begin)
            begin = list[j].begin;
        if (list[j].end > end)
            end = list[j].end;
        j++;
    }
    /* list[i..j) merge into one span at i */
    if (j == i) {
        memmove(list + i + 1, list + i, (*n - i) * sizeof *list);
        (*n)++;
    } else if (j > i + 1) {
        memmove(list + i + 1, list + j, (*n - j) * sizeof *list);
        *n -= j - i - 1;
    }
    list[i].begin = begin;
    list[i].end = end;
}

static sf_rc s_add_piece(s_scratch_t *sc, size_t *n, size_t clip, int64_t begin, int64_t end, const sf_track_t *t,
                         sf_err_t *err)
{
    if (*n == sc->cap_pieces) {
        size_t cap = sc->cap_pieces * 2 + 8;
        s_piece_t *p = sf_realloc(sc->pieces, cap * sizeof *p);
        if (!p)
            return SF_ERR(err, SF_E_NOMEM, "out of memory rendering track '%s'", t->name);
        sc->pieces = p;
        sc->cap_pieces = cap;
    }
    sc->pieces[(*n)++] = (s_piece_t){begin, end, clip};
    return SF_OK;
}

/* env[i] *= shape(x) over the frames of [q0, q0 + n) inside the fade that
 * covers [f_begin, f_begin + len); x = (f - f_begin) / len rising, or
 * (f_begin + len - 1 - f) / len falling. */
static void s_fade(double *restrict env, double *restrict x, int64_t q0, size_t n, int64_t f_begin, int64_t len,
                   bool rising, sf_fade_shape_t shape)
{
    if (len <= 0)
        return;
    int64_t a = q0 > f_begin ? q0 : f_begin;
    int64_t b = q0 + (int64_t)n < f_begin + len ? q0 + (int64_t)n : f_begin + len;
    if (a >= b)
        return;
    const size_t m = (size_t)(b - a), at = (size_t)(a - q0);
    const double l = (double)len;
    const int64_t j0 = rising ? a - f_begin : f_begin + len - 1 - a;
    if (rising) {
#pragma omp simd
        for (size_t i = 0; i < m; i++)
            x[i] = (double)(j0 + (int64_t)i) / l;
    } else {
#pragma omp simd
        for (size_t i = 0; i < m; i++)
            x[i] = (double)(j0 - (int64_t)i) / l;
    }
    if (shape == SF_FADE_EQUAL_POWER)
        sf_dsp_sin_half_pi_n(x, x, m);
    double *restrict e = env + at;
#pragma omp simd
    for (size_t i = 0; i < m; i++)
        e[i] = e[i] * x[i];
}

/* Records that frames [q0, q1) of the window (from w0) now hold clip
 * samples of gain `value` (NaN: varying) in the block summaries. */
static void s_mark(s_clipbuf_t *cb, int64_t w0, int64_t q0, int64_t q1, double value)
{
    for (size_t b = (size_t)(q0 - w0) / SF_RENDER_BLOCK; b <= (size_t)(q1 - 1 - w0) / SF_RENDER_BLOCK; b++) {
        if (!cb->blk_set[b]) {
            cb->blk_set[b] = 1;
            cb->blk_env[b] = value;
        } else if (!(cb->blk_env[b] == value)) {
            cb->blk_env[b] = (double)NAN;
        }
    }
}

/* One part [q0, q1) of a piece of a clip (at most SF_RENDER_BLOCK frames):
 * all of it in the clip's crossfade-in, or none of it. src[] holds the
 * piece's source frames from timeline frame p0, or NULL when they were read
 * straight into raw. */
static void s_piece_part(const sf_clip_t *clip, int n_in, double gain, int64_t q0, int64_t q1, bool xfade, int64_t p0,
                         int64_t w0, float *const *src, s_clipbuf_t *cb, s_scratch_t *sc)
{
    const size_t m = (size_t)(q1 - q0), so = (size_t)(q0 - p0), di = (size_t)(q0 - w0);
    const int64_t end = clip->at + clip->length;
    const int64_t fi = s_clamp_len(clip->fade_in.length, clip->length);
    const int64_t fo = s_clamp_len(clip->fade_out.length, clip->length);
    const bool faded = (fi > 0 && q0 < clip->at + fi) || (fo > 0 && q1 > end - fo);
    double *env = xfade ? sc->tmp[0] : cb->env + di;
    for (size_t i = 0; i < m; i++)
        env[i] = gain;
    s_fade(env, sc->tmp[1], q0, m, clip->at, fi, true, clip->fade_in.shape);
    s_fade(env, sc->tmp[1], q0, m, end - fo, fo, false, clip->fade_out.shape);
    if (!xfade) {
        if (src)
            for (int in = 0; in < n_in; in++)
                memcpy(cb->raw[in] + di, src[clip->channel >= 0 ? clip->channel : in] + so, sizeof(float) * m);
        s_mark(cb, w0, q0, q1, faded ? (double)NAN : gain);
        return;
    }
    /* The later clip comes in as sin, what is under it (raw * env) goes as
     * cos; the mix is stored with gain 1. */
    const int64_t len = s_clamp_len(clip->crossfade, clip->length);
    s_fade(env, sc->tmp[1], q0, m, clip->at, len, true, SF_FADE_EQUAL_POWER);
    double *old = sc->tmp[2];
    const double l = (double)len;
    const int64_t j0 = q0 - clip->at;
#pragma omp simd
    for (size_t i = 0; i < m; i++)
        old[i] = (double)(len - (j0 + (int64_t)i)) / l;
    sf_dsp_sin_half_pi_n(old, old, m);
    double *restrict under_env = cb->env + di;
    for (int in = 0; in < n_in; in++) {
        float *restrict r = cb->raw[in] + di;
        const float *restrict s = src[clip->channel >= 0 ? clip->channel : in] + so;
#pragma omp simd
        for (size_t i = 0; i < m; i++)
            r[i] = (float)((double)r[i] * under_env[i] * old[i] + (double)s[i] * env[i]);
    }
    for (size_t i = 0; i < m; i++)
        under_env[i] = 1.0;
    s_mark(cb, w0, q0, q1, 1.0);
}

/* Renders the visible piece [p0, p1) of `clip` into the clip buffer. */
static sf_rc s_render_piece(const sf_track_t *t, const sf_clip_t *clip, int64_t p0, int64_t p1, int64_t w0,
                            s_clipbuf_t *cb, s_scratch_t *sc, sf_err_t *err)
{
    const int64_t xe = clip->at + s_clamp_len(clip->crossfade, clip->length);
    /* Straight into raw when nothing needs the source apart: every channel
     * used and no crossfade (which mixes it with what raw holds). */
    const bool direct = clip->channel < 0 && p0 >= xe;
    float *into[SF_MAX_CHANNELS];
    for (int ch = 0; ch < clip->source_channels; ch++)
        into[ch] = direct ? cb->raw[ch] + (p0 - w0) : sc->src[ch];
    sf_rc rc = sf_media_read(clip->path, clip->offset + (p0 - clip->at), p1 - p0, clip->source_channels, into, err);
    if (rc != SF_OK)
        return rc;
    const double gain = sf_dsp_db_to_gain(clip->gain_db);
    for (int64_t q = p0; q < p1; q += SF_RENDER_BLOCK) {
        int64_t qe = p1 - q < SF_RENDER_BLOCK ? p1 : q + SF_RENDER_BLOCK;
        int64_t xm = xe < q ? q : xe > qe ? qe : xe; /* [q, xm) crossfades */
        if (q < xm)
            s_piece_part(clip, t->n_channels, gain, q, xm, true, p0, w0, sc->src, cb, sc);
        if (xm < qe)
            s_piece_part(clip, t->n_channels, gain, xm, qe, false, p0, w0, direct ? NULL : sc->src, cb, sc);
    }
    return SF_OK;
}

/* A track's clips over the window [w0, w0 + wn) into cb: raw 0 and gain 0
 * where no clip plays. Later clips win: a backwards walk finds what of each
 * clip no later clip covers outright (a crossfade-in does not cover), then
 * those pieces are rendered forwards, so that a crossfade mixes over what
 * is already there. */
static sf_rc s_render_clips(const sf_track_t *t, int64_t w0, size_t wn, s_clipbuf_t *cb, s_scratch_t *sc, sf_err_t *err)
{
    const int64_t w1 = w0 + (int64_t)wn;
    size_t n_cov = 0, n_pieces = 0;
    for (size_t j = t->n_clips; j-- > 0;) {
        const sf_clip_t *clip = &t->clips[j];
        const int64_t end = clip->at + clip->length;
        const int64_t a = clip->at > w0 ? clip->at : w0;
        const int64_t b = end < w1 ? end : w1;
        if (a >= b)
            continue;
        int64_t pos = a;
        for (size_t i = 0; i < n_cov && pos < b; i++) {
            const sf_span_t *cv = &sc->covered[i];
            if (cv->end <= pos)
                continue;
            if (cv->begin >= b)
                break;
            if (cv->begin > pos) {
                sf_rc rc = s_add_piece(sc, &n_pieces, j, pos, cv->begin, t, err);
                if (rc != SF_OK)
                    return rc;
            }
            pos = cv->end;
        }
        if (pos < b) {
            sf_rc rc = s_add_piece(sc, &n_pieces, j, pos, b, t, err);
            if (rc != SF_OK)
                return rc;
        }
        /* a silent clip (gain -inf) still replaces what is under it */
        const int64_t xe = clip->at + s_clamp_len(clip->crossfade, clip->length);
        const int64_t ca = xe > a ? xe : a;
        if (ca < b)
            s_cover(sc->covered, &n_cov, ca, b);
    }
    /* Silence where no clip overwrites: what the covered list leaves out
     * (gaps, and crossfade-ins, which mix over what is there). */
    memset(cb->blk_set, 0, (wn + SF_RENDER_BLOCK - 1) / SF_RENDER_BLOCK);
    int64_t pos = w0;
    for (size_t i = 0; i <= n_cov; i++) {
        int64_t gap_end = i < n_cov ? sc->covered[i].begin : w1;
        if (gap_end > pos) {
            const size_t at = (size_t)(pos - w0), len = (size_t)(gap_end - pos);
            for (int in = 0; in < t->n_channels; in++)
                memset(cb->raw[in] + at, 0, sizeof(float) * len);
            memset(cb->env + at, 0, sizeof(double) * len); /* all-zero bits: +0.0 */
        }
        if (i < n_cov)
            pos = sc->covered[i].end;
    }
    for (size_t p = n_pieces; p-- > 0;) {
        const s_piece_t *pc = &sc->pieces[p];
        sf_rc rc = s_render_piece(t, &t->clips[pc->clip], pc->begin, pc->end, w0, cb, sc, err);
        if (rc != SF_OK)
            return rc;
    }
    return SF_OK;
}

static bool s_clips_overlap(const sf_track_t *t, int64_t w0, int64_t w1)
{
    for (size_t j = 0; j < t->n_clips; j++)
        if (t->clips[j].at < w1 && t->clips[j].at + t->clips[j].length > w0)
            return true;
    return false;
}

/* ---- checks ---------------------------------------------------------------- */

static sf_rc s_check_auto(const sf_automation_t *a, const char *what, const char *owner, sf_err_t *err)
{
    if (a->n_points == 0)
        return SF_OK;
    if (!a->frames || !a->values)
        return SF_ERR(err, SF_E_INTERNAL, "%s automation of '%s' has no points", what, owner);
    for (size_t k = 1; k < a->n_points; k++)
        if (a->frames[k] < a->frames[k - 1])
            return SF_ERR(err, SF_E_INTERNAL, "%s automation of '%s' is not in time order", what, owner);
    return SF_OK;
}

static int s_node_channels(const sf_session_t *s, int bus)
{
    return bus == SF_MASTER_BUS ? s->master_channels : s->buses[bus].n_channels;
}

static sf_rc s_check_sends(const sf_session_t *s, const sf_send_t *sends, size_t n, const char *owner, sf_err_t *err)
{
    for (size_t k = 0; k < n; k++) {
        if (sends[k].bus < 0 || (size_t)sends[k].bus >= s->n_buses)
            return SF_ERR(err, SF_E_INTERNAL, "'%s' sends to bus %d of %zu", owner, sends[k].bus, s->n_buses);
        sf_rc rc = s_check_auto(&sends[k].level_auto, "send level", owner, err);
        if (rc != SF_OK)
            return rc;
    }
    return SF_OK;
}

/* The buses, their order and the master: whatever the target. */
static sf_rc s_check_graph(const sf_session_t *s, sf_err_t *err)
{
    if (!s_layout_ok(s->master_channels))
        return SF_ERR(err, SF_E_INPUT, "the master has %d channels: only mono, stereo, 5.1 and 7.1 render",
                      s->master_channels);
    if (s->n_buses > (size_t)INT_MAX / 2)
        return SF_ERR(err, SF_E_INTERNAL, "%zu buses", s->n_buses);
    if (s->n_buses > 0 && !s->bus_order)
        return SF_ERR(err, SF_E_INTERNAL, "the session has buses but no bus order");
    for (size_t b = 0; b < s->n_buses; b++) {
        const sf_bus_t *bus = &s->buses[b];
        if (!s_layout_ok(bus->n_channels))
            return SF_ERR(err, SF_E_INPUT, "bus '%s' has %d channels: only mono, stereo, 5.1 and 7.1 render", bus->name,
                          bus->n_channels);
        if (bus->output_bus != SF_MASTER_BUS && (bus->output_bus < 0 || (size_t)bus->output_bus >= s->n_buses))
            return SF_ERR(err, SF_E_INTERNAL, "bus '%s' outputs to bus %d of %zu", bus->name, bus->output_bus,
                          s->n_buses);
        sf_rc rc = s_check_sends(s, bus->sends, bus->n_sends, bus->name, err);
        if (rc != SF_OK)
            return rc;
    }
    /* bus_order: a permutation in which every bus comes before what it feeds */
    int *pos = sf_calloc(s->n_buses, sizeof *pos);
    if (!pos)
        return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
    sf_rc rc = SF_OK;
    for (size_t b = 0; b < s->n_buses; b++)
        pos[b] = -1;
    for (size_t k = 0; k < s->n_buses && rc == SF_OK; k++) {
        size_t b = s->bus_order[k];
        if (b >= s->n_buses || pos[b] >= 0)
            rc = SF_ERR(err, SF_E_INTERNAL, "bus order is not a permutation of the buses");
        else
            pos[b] = (int)k;
    }
    for (size_t b = 0; b < s->n_buses && rc == SF_OK; b++) {
        const sf_bus_t *bus = &s->buses[b];
        int fed = bus->output_bus != SF_MASTER_BUS && pos[bus->output_bus] < pos[b] ? bus->output_bus : -1;
        for (size_t k = 0; k < bus->n_sends && fed < 0; k++)
            if (pos[bus->sends[k].bus] <= pos[b])
                fed = bus->sends[k].bus;
        if (fed >= 0)
            rc = SF_ERR(err, SF_E_INTERNAL, "bus order puts bus '%s' after bus '%s', which it feeds", bus->name,
                        s->buses[fed].name);
    }
    sf_free(pos);
    return rc;
}

static sf_rc s_check_track(const sf_session_t *s, const sf_track_t *t, sf_err_t *err)
{
    if (t->n_clips > 0 && (t->n_channels < 1 || t->n_channels > SF_RENDER_MAX_IN))
        return SF_ERR(err, SF_E_INPUT, "track '%s' has %d channels: only mono and stereo render", t->name,
                      t->n_channels);
    if (t->output_bus != SF_MASTER_BUS && (t->output_bus < 0 || (size_t)t->output_bus >= s->n_buses))
        return SF_ERR(err, SF_E_INTERNAL, "track '%s' outputs to bus %d of %zu", t->name, t->output_bus, s->n_buses);
    if (t->n_route < 0 || t->n_route > SF_MAX_CHANNELS)
        return SF_ERR(err, SF_E_INTERNAL, "track '%s' has %d routes", t->name, t->n_route);
    if (t->n_route > 0 && t->n_channels == 2)
        return SF_ERR(err, SF_E_INPUT, "track '%s' is stereo: only a mono track can be routed", t->name);
    const int n_outbus = s_node_channels(s, t->output_bus);
    for (int k = 0; k < t->n_route; k++)
        if (t->route[k] < 0 || t->route[k] >= n_outbus)
            return SF_ERR(err, SF_E_INPUT, "track '%s' routes to channel %d of a %d-channel bus", t->name,
                          t->route[k] + 1, n_outbus);
    for (size_t j = 0; j < t->n_clips; j++) {
        const sf_clip_t *clip = &t->clips[j];
        if (clip->source_channels < 1 || clip->source_channels > SF_MAX_CHANNELS)
            return SF_ERR(err, SF_E_INPUT, "'%s' has %d channels: at most %d render", clip->path, clip->source_channels,
                          SF_MAX_CHANNELS);
        if (clip->channel >= clip->source_channels || clip->channel < -1)
            return SF_ERR(err, SF_E_INPUT, "track '%s' uses channel %d of '%s', which has %d", t->name,
                          clip->channel + 1, clip->path, clip->source_channels);
        int delivers = clip->channel >= 0 ? 1 : clip->source_channels;
        if (delivers != t->n_channels)
            return SF_ERR(err, SF_E_INPUT, "'%s' has %d channels, track '%s' has %d", clip->path, delivers, t->name,
                          t->n_channels);
        if (clip->length < 0 || clip->offset < 0)
            return SF_ERR(err, SF_E_INTERNAL, "track '%s': clip %zu has a negative length or offset", t->name, j + 1);
    }
    sf_rc rc = s_check_sends(s, t->sends, t->n_sends, t->name, err);
    if (rc == SF_OK)
        rc = s_check_auto(&t->gain_auto, "gain", t->name, err);
    if (rc == SF_OK)
        rc = s_check_auto(&t->pan_auto, "pan", t->name, err);
    return rc;
}

static sf_rc s_check_set(const sf_session_t *s, const size_t *tracks, size_t n, const char *what, sf_err_t *err)
{
    for (size_t k = 0; k < n; k++) {
        if (tracks[k] >= s->n_tracks || (k > 0 && tracks[k] <= tracks[k - 1]))
            return SF_ERR(err, SF_E_INTERNAL, "%s: bad track list at %zu", what, k);
        sf_rc rc = s_check_track(s, &s->tracks[tracks[k]], err);
        if (rc != SF_OK)
            return rc;
    }
    return SF_OK;
}

/* Channels of target t, or 0 when it does not exist. */
static int s_target_channels(const sf_session_t *s, sf_target_t t)
{
    switch (t.kind) {
    case SF_TARGET_STEM: return t.index < s->n_stems ? s->stems[t.index].n_channels : 0;
    case SF_TARGET_MIX: return t.index < s->n_mixes ? s->master_channels : 0;
    case SF_TARGET_MULTITRACK: return t.index < s->n_tracks ? s->tracks[t.index].n_channels : 0;
    case SF_TARGET_FULL_MIX: return s->master_channels;
    }
    return 0;
}

/* ---- planning ---------------------------------------------------------------- */

static void s_plan_send(const sf_session_t *s, const sf_send_t *send, s_dest_t *d)
{
    d->node = 1 + send->bus;
    d->n_out = s->buses[send->bus].n_channels;
    d->post = !send->pre_fader;
    d->level = sf_dsp_db_to_gain(send->level_db);
    d->level_auto = send->level_auto.n_points > 0 ? &send->level_auto : NULL;
    d->audible = d->level_auto || d->level != 0.0;
}

static void s_plan_track(s_ctx_t *c, size_t k, s_dest_t *dests)
{
    const sf_session_t *s = c->s;
    const sf_track_t *t = &s->tracks[k];
    s_track_plan_t *tp = &c->tracks[k];
    tp->n_in = t->n_channels == 2 ? 2 : 1;
    tp->sign = t->invert ? -1.0 : 1.0;
    tp->fader = tp->sign * sf_dsp_db_to_gain(t->gain_db);
    tp->fader_auto = t->gain_auto.n_points > 0 ? &t->gain_auto : NULL;
    tp->pan_auto = t->pan_auto.n_points > 0 && t->n_route == 0 ? &t->pan_auto : NULL;
    tp->dests = dests;
    tp->n_dests = 1 + t->n_sends;
    const int n_outbus = s_node_channels(s, t->output_bus);
    const bool fader_on = tp->fader_auto || tp->fader != 0.0;
    tp->audible = false;
    for (size_t j = 0; j < tp->n_dests; j++) {
        s_dest_t *d = &dests[j];
        if (j == 0) {
            d->node = 1 + t->output_bus; /* SF_MASTER_BUS is -1: node 0 */
            d->n_out = n_outbus;
            d->post = true;
            d->level = 1.0;
            d->level_auto = NULL;
            d->audible = true;
        } else {
            s_plan_send(s, &t->sends[j - 1], d);
        }
        d->audible = d->audible && (!d->post || fader_on);
        d->pan_auto = tp->pan_auto && d->n_out >= 2;
        s_track_matrix(t, tp->n_in, t->pan, n_outbus, d->n_out, d->mat);
        tp->audible = tp->audible || d->audible;
    }
}

static void s_plan_bus(s_ctx_t *c, size_t b, s_dest_t *dests)
{
    const sf_session_t *s = c->s;
    const sf_bus_t *bus = &s->buses[b];
    s_bus_plan_t *bp = &c->buses[b];
    bp->n_ch = bus->n_channels;
    bp->fader = sf_dsp_db_to_gain(bus->gain_db);
    bp->dests = dests;
    bp->n_dests = 1 + bus->n_sends;
    for (size_t j = 0; j < bp->n_dests; j++) {
        s_dest_t *d = &dests[j];
        if (j == 0) {
            d->node = 1 + bus->output_bus;
            d->n_out = s_node_channels(s, bus->output_bus);
            d->post = true;
            d->level = 1.0;
            d->level_auto = NULL;
            d->audible = true;
        } else {
            s_plan_send(s, &bus->sends[j - 1], d);
        }
        d->audible = d->audible && (!d->post || bp->fader != 0.0);
        d->pan_auto = false;
        sf_render_layout_gains(bp->n_ch, d->n_out, d->mat);
    }
}

/* ---- context ------------------------------------------------------------------ */

static void s_ctx_free(s_ctx_t *c)
{
    if (c->scratch)
        for (int i = 0; i < c->n_threads; i++) {
            s_scratch_t *sc = &c->scratch[i];
            for (int ch = 0; ch < SF_MAX_CHANNELS; ch++)
                sf_free(sc->src[ch]);
            for (int k = 0; k < SF_RENDER_N_TMP; k++)
                sf_free(sc->tmp[k]);
            sf_free(sc->g);
            sf_free(sc->covered);
            sf_free(sc->pieces);
        }
    if (c->bufs)
        for (size_t g = 0; g < c->n_group; g++) {
            sf_free(c->bufs[g].raw[0]);
            sf_free(c->bufs[g].env);
            sf_free(c->bufs[g].blk_env);
            sf_free(c->bufs[g].blk_set);
        }
    if (c->acc)
        for (int n = 0; n < c->n_nodes; n++)
            sf_free(c->acc[n]);
    sf_free(c->scratch);
    sf_free(c->errs);
    sf_free(c->rcs);
    sf_free(c->active);
    sf_free(c->mix_acc);
    sf_free(c->master_buf);
    sf_free(c->bus_buf);
    sf_free(c->bufs);
    sf_free(c->all_tracks);
    sf_free(c->sets);
    sf_free(c->dest_pool);
    sf_free(c->buses);
    sf_free(c->tracks);
    sf_free(c->acc);
    sf_free(c->live);
    sf_free(c->reach);
    sf_free(c->node_ch);
}

/* The sets of tracks that sound for target t (MULTITRACK: none). */
static sf_rc s_ctx_sets(s_ctx_t *c, sf_target_t t, sf_err_t *err)
{
    const sf_session_t *s = c->s;
    size_t n = t.kind == SF_TARGET_MIX ? s->n_stems : t.kind == SF_TARGET_MULTITRACK ? 0 : 1;
    c->sets = sf_calloc(n, sizeof *c->sets);
    if (!c->sets)
        return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
    c->n_sets = n;
    if (t.kind == SF_TARGET_STEM) {
        c->sets[0] = (s_set_t){s->stems[t.index].tracks, s->stems[t.index].n_tracks};
    } else if (t.kind == SF_TARGET_FULL_MIX) {
        c->all_tracks = sf_calloc(s->n_tracks, sizeof *c->all_tracks);
        if (!c->all_tracks)
            return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
        for (size_t k = 0; k < s->n_tracks; k++)
            c->all_tracks[k] = k;
        c->sets[0] = (s_set_t){c->all_tracks, s->n_tracks};
    } else if (t.kind == SF_TARGET_MIX) {
        if (s->n_stems > 0 && !s->mixes[t.index].stem_gain_db)
            return SF_ERR(err, SF_E_INTERNAL, "mix '%s' has no stem gains", s->mixes[t.index].name);
        for (size_t k = 0; k < s->n_stems; k++)
            c->sets[k] = (s_set_t){s->stems[k].tracks, s->stems[k].n_tracks};
    }
    for (size_t k = 0; k < c->n_sets; k++) {
        const char *what = t.kind == SF_TARGET_FULL_MIX ? "full mix"
                           : t.kind == SF_TARGET_MIX    ? s->stems[k].name
                                                        : s->stems[t.index].name;
        sf_rc rc = s_check_set(s, c->sets[k].tracks, c->sets[k].n, what, err);
        if (rc != SF_OK)
            return rc;
    }
    return SF_OK;
}

/* Plans every track of the sets and every bus, and marks the nodes they reach. */
static sf_rc s_ctx_plan(s_ctx_t *c, sf_err_t *err)
{
    const sf_session_t *s = c->s;
    size_t n_dests = 0;
    for (size_t k = 0; k < s->n_tracks; k++)
        n_dests += 1 + s->tracks[k].n_sends;
    for (size_t b = 0; b < s->n_buses; b++)
        n_dests += 1 + s->buses[b].n_sends;
    c->tracks = sf_calloc(s->n_tracks, sizeof *c->tracks);
    c->buses = sf_calloc(s->n_buses, sizeof *c->buses);
    c->dest_pool = sf_calloc(n_dests, sizeof *c->dest_pool);
    if (!c->tracks || !c->buses || !c->dest_pool)
        return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
    /* only the tracks of the sets get a plan; the others keep n_dests 0 */
    s_dest_t *next = c->dest_pool;
    for (size_t si = 0; si < c->n_sets; si++)
        for (size_t k = 0; k < c->sets[si].n; k++) {
            size_t ti = c->sets[si].tracks[k];
            if (c->tracks[ti].dests)
                continue; /* planned for an earlier set */
            s_plan_track(c, ti, next);
            next += c->tracks[ti].n_dests;
        }
    for (size_t b = 0; b < s->n_buses; b++) {
        s_plan_bus(c, b, next);
        next += c->buses[b].n_dests;
    }
    /* reach: from the tracks that may sound, through the buses in order */
    c->reach[0] = true;
    for (size_t si = 0; si < c->n_sets; si++)
        for (size_t k = 0; k < c->sets[si].n; k++) {
            size_t ti = c->sets[si].tracks[k];
            const s_track_plan_t *tp = &c->tracks[ti];
            if (s->tracks[ti].mute || s->tracks[ti].n_clips == 0)
                continue;
            for (size_t j = 0; j < tp->n_dests; j++)
                if (tp->dests[j].audible)
                    c->reach[tp->dests[j].node] = true;
        }
    for (size_t k = 0; k < s->n_buses; k++) {
        size_t b = s->bus_order[k];
        if (!c->reach[1 + b])
            continue;
        for (size_t j = 0; j < c->buses[b].n_dests; j++)
            if (c->buses[b].dests[j].audible)
                c->reach[c->buses[b].dests[j].node] = true;
    }
    return SF_OK;
}

static sf_rc s_ctx_alloc(s_ctx_t *c, sf_target_t t, sf_err_t *err)
{
    const sf_session_t *s = c->s;
    const size_t stride = c->stride;
    size_t max_set = 0;
    c->max_clips = 0;
    c->max_src_ch = 1;
    for (size_t si = 0; si < c->n_sets; si++) {
        max_set = c->sets[si].n > max_set ? c->sets[si].n : max_set;
        for (size_t k = 0; k < c->sets[si].n; k++) {
            const sf_track_t *tr = &s->tracks[c->sets[si].tracks[k]];
            c->max_clips = tr->n_clips > c->max_clips ? tr->n_clips : c->max_clips;
            for (size_t j = 0; j < tr->n_clips; j++)
                if (tr->clips[j].source_channels > c->max_src_ch)
                    c->max_src_ch = tr->clips[j].source_channels;
        }
    }
    if (t.kind == SF_TARGET_MULTITRACK) {
        const sf_track_t *tr = &s->tracks[t.index];
        c->max_clips = tr->n_clips;
        for (size_t j = 0; j < tr->n_clips; j++)
            if (tr->clips[j].source_channels > c->max_src_ch)
                c->max_src_ch = tr->clips[j].source_channels;
    }
    c->n_group = max_set < SF_RENDER_GROUP ? max_set : SF_RENDER_GROUP;
    c->n_group = c->n_group ? c->n_group : 1; /* a multitrack renders through one slot */
    c->n_blocks = (stride + SF_RENDER_BLOCK - 1) / SF_RENDER_BLOCK;
    c->scratch = sf_calloc((size_t)c->n_threads, sizeof *c->scratch);
    if (!c->scratch)
        goto nomem;
    for (int i = 0; i < c->n_threads; i++) {
        s_scratch_t *sc = &c->scratch[i];
        for (int ch = 0; ch < c->max_src_ch; ch++)
            if (!(sc->src[ch] = sf_aligned_alloc(sizeof(float) * stride)))
                goto nomem;
        for (int k = 0; k < SF_RENDER_N_TMP; k++)
            if (!(sc->tmp[k] = sf_aligned_alloc(sizeof(double) * SF_RENDER_BLOCK)))
                goto nomem;
        if (!(sc->g = sf_aligned_alloc(sizeof(float) * SF_RENDER_BLOCK)))
            goto nomem;
        sc->cap_pieces = 2 * c->max_clips + 2;
        sc->covered = sf_calloc(c->max_clips + 1, sizeof *sc->covered);
        sc->pieces = sf_calloc(sc->cap_pieces, sizeof *sc->pieces);
        if (!sc->covered || !sc->pieces)
            goto nomem;
    }
    c->bufs = sf_calloc(c->n_group, sizeof *c->bufs);
    if (!c->bufs)
        goto nomem;
    for (size_t g = 0; g < c->n_group; g++) {
        s_clipbuf_t *cb = &c->bufs[g];
        if (!(cb->raw[0] = sf_aligned_alloc(sizeof(float) * stride * SF_RENDER_MAX_IN)) ||
            !(cb->env = sf_aligned_alloc(sizeof(double) * stride)) ||
            !(cb->blk_env = sf_calloc(c->n_blocks, sizeof *cb->blk_env)) ||
            !(cb->blk_set = sf_calloc(c->n_blocks, sizeof *cb->blk_set)))
            goto nomem;
        cb->raw[1] = cb->raw[0] + stride;
    }
    if (t.kind == SF_TARGET_MULTITRACK)
        return SF_OK;

    c->acc = sf_calloc((size_t)c->n_nodes, sizeof *c->acc);
    c->bus_buf = sf_aligned_alloc(sizeof(float) * stride * SF_MAX_CHANNELS);
    c->master_buf = sf_aligned_alloc(sizeof(float) * stride * (size_t)s->master_channels);
    c->active = sf_calloc(s->n_tracks, sizeof *c->active);
    c->rcs = sf_calloc(c->n_group, sizeof *c->rcs);
    c->errs = sf_calloc(c->n_group, sizeof *c->errs);
    if (!c->acc || !c->bus_buf || !c->master_buf || !c->active || !c->rcs || !c->errs)
        goto nomem;
    if (t.kind == SF_TARGET_MIX &&
        !(c->mix_acc = sf_aligned_alloc(sizeof(double) * stride * (size_t)s->master_channels)))
        goto nomem;
    for (int n = 0; n < c->n_nodes; n++)
        if (c->reach[n] && !(c->acc[n] = sf_aligned_alloc(sizeof(double) * stride * (size_t)c->node_ch[n])))
            goto nomem;
    return SF_OK;
nomem:
    return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
}

static sf_rc s_ctx_init(s_ctx_t *c, const sf_session_t *s, sf_target_t t, int64_t n_frames, sf_err_t *err)
{
    c->s = s;
    c->floor_db =
        isfinite(s->tail_threshold_db) && s->tail_threshold_db < 0.0 ? s->tail_threshold_db : SF_RENDER_FLOOR_DB;
    c->n_threads = 1;
#ifdef _OPENMP
    c->n_threads = omp_get_max_threads();
#endif
    c->win_max = n_frames < SF_RENDER_WINDOW ? n_frames : SF_RENDER_WINDOW;
    c->stride = ((size_t)c->win_max + 15) & ~(size_t)15; /* keeps channels 64-byte aligned */
    c->n_nodes = 1 + (int)s->n_buses;
    c->node_ch = sf_calloc((size_t)c->n_nodes, sizeof *c->node_ch);
    c->reach = sf_calloc((size_t)c->n_nodes, sizeof *c->reach);
    c->live = sf_calloc((size_t)c->n_nodes, sizeof *c->live);
    if (!c->node_ch || !c->reach || !c->live)
        return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
    c->node_ch[0] = s->master_channels;
    for (size_t b = 0; b < s->n_buses; b++)
        c->node_ch[1 + b] = s->buses[b].n_channels;
    sf_rc rc = s_ctx_sets(c, t, err);
    if (rc == SF_OK && t.kind == SF_TARGET_MULTITRACK)
        rc = s_check_track(s, &s->tracks[t.index], err);
    if (rc == SF_OK && t.kind != SF_TARGET_MULTITRACK)
        rc = s_ctx_plan(c, err);
    if (rc == SF_OK)
        rc = s_ctx_alloc(c, t, err);
    return rc;
}

/* ---- one window of the graph ------------------------------------------------------ */

static int s_thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Renders a group of active tracks over the window and adds them into the
 * accumulators, in session order. */
static sf_rc s_render_group(s_ctx_t *c, const size_t *active, size_t n_active, int64_t w0, size_t wn, sf_err_t *err)
{
    atomic_int first_fail = INT_MAX; /* lowest failed index in the group so far */
    const size_t n_blocks = (wn + SF_RENDER_BLOCK - 1) / SF_RENDER_BLOCK;
    const sf_session_t *s = c->s;

#pragma omp parallel num_threads(c->n_threads)
    {
        s_scratch_t *sc = &c->scratch[s_thread_num()];
#pragma omp for schedule(dynamic, 1)
        for (size_t g = 0; g < n_active; g++) {
            /* Tracks after a failed one are skipped; tracks before it still
             * run, so the reported error is the lowest failing index
             * whatever the timing. */
            if ((int)g > atomic_load(&first_fail)) {
                c->rcs[g] = SF_OK;
                continue;
            }
            sf_err_clear(&c->errs[g]);
            c->rcs[g] = s_render_clips(&s->tracks[active[g]], w0, wn, &c->bufs[g], sc, &c->errs[g]);
            if (c->rcs[g] != SF_OK) {
                int seen = atomic_load(&first_fail);
                while ((int)g < seen && !atomic_compare_exchange_weak(&first_fail, &seen, (int)g))
                    ;
            }
        }
        /* implicit barrier: every buffer is complete (or an error is known) */
        if (atomic_load(&first_fail) == INT_MAX) {
#pragma omp for schedule(static)
            for (size_t blk = 0; blk < n_blocks; blk++) {
                const size_t i0 = blk * SF_RENDER_BLOCK;
                const size_t len = wn - i0 < SF_RENDER_BLOCK ? wn - i0 : SF_RENDER_BLOCK;
                for (size_t g = 0; g < n_active; g++) /* session order */
                    s_track_add(c, &c->tracks[active[g]], &c->bufs[g], i0, w0 + (int64_t)i0, len, sc);
            }
        }
    }

    int failed = atomic_load(&first_fail);
    if (failed != INT_MAX) {
        if (err)
            *err = c->errs[failed];
        return c->rcs[failed];
    }
    return SF_OK;
}

/* Where effects on a bus will run, on its float signal over the window.
 * None exist yet. */
static void s_bus_fx(const s_ctx_t *c, size_t bus, float *const *sig, size_t wn)
{
    (void)c, (void)bus, (void)sig, (void)wn;
}

/* The master's effects (output.master: apply, or a mix's master: apply)
 * on its float signal. Returns whether any ran; none exist yet. */
static bool s_master_fx(const s_ctx_t *c, float *const *sig, size_t wn)
{
    (void)c, (void)sig, (void)wn;
    return false;
}

static void s_round_node(const s_ctx_t *c, int node, float *buf, size_t wn)
{
    const size_t n_blocks = (wn + SF_RENDER_BLOCK - 1) / SF_RENDER_BLOCK;
    const int n_ch = c->node_ch[node];
    const double *acc = c->acc[node];
#pragma omp parallel for schedule(static) num_threads(c->n_threads)
    for (size_t blk = 0; blk < n_blocks; blk++) {
        const size_t i0 = blk * SF_RENDER_BLOCK;
        const size_t len = wn - i0 < SF_RENDER_BLOCK ? wn - i0 : SF_RENDER_BLOCK;
        for (int ch = 0; ch < n_ch; ch++)
            sf_dsp_f64_to_f32(buf + (size_t)ch * c->stride + i0, acc + (size_t)ch * c->stride + i0, len);
    }
}

/* The graph over one window with the tracks of `set` sounding: the master's
 * float signal into c->master_buf. */
static sf_rc s_graph_window(s_ctx_t *c, const s_set_t *set, int64_t w0, size_t wn, sf_err_t *err)
{
    const sf_session_t *s = c->s;
    const int64_t w1 = w0 + (int64_t)wn;
    size_t n_active = 0;
    for (size_t k = 0; k < set->n; k++) {
        size_t ti = set->tracks[k];
        if (!s->tracks[ti].mute && c->tracks[ti].audible && s_clips_overlap(&s->tracks[ti], w0, w1))
            c->active[n_active++] = ti;
    }
    memset(c->live, 0, sizeof(bool) * (size_t)c->n_nodes);
    for (size_t g = 0; g < n_active; g++) {
        const s_track_plan_t *tp = &c->tracks[c->active[g]];
        for (size_t j = 0; j < tp->n_dests; j++)
            if (tp->dests[j].audible)
                c->live[tp->dests[j].node] = true;
    }
    for (size_t k = 0; k < s->n_buses; k++) {
        const s_bus_plan_t *bp = &c->buses[s->bus_order[k]];
        if (c->live[1 + s->bus_order[k]])
            for (size_t j = 0; j < bp->n_dests; j++)
                if (bp->dests[j].audible)
                    c->live[bp->dests[j].node] = true;
    }
    for (int n = 0; n < c->n_nodes; n++)
        if (c->live[n])
            memset(c->acc[n], 0, sizeof(double) * c->stride * (size_t)c->node_ch[n]);

    for (size_t g0 = 0; g0 < n_active; g0 += c->n_group) {
        size_t n = n_active - g0 < c->n_group ? n_active - g0 : c->n_group;
        sf_rc rc = s_render_group(c, c->active + g0, n, w0, wn, err);
        if (rc != SF_OK)
            return rc;
    }

    const size_t n_blocks = (wn + SF_RENDER_BLOCK - 1) / SF_RENDER_BLOCK;
    for (size_t k = 0; k < s->n_buses; k++) {
        const size_t b = s->bus_order[k];
        if (!c->live[1 + b])
            continue;
        const s_bus_plan_t *bp = &c->buses[b];
        s_round_node(c, 1 + (int)b, c->bus_buf, wn);
        float *sig[SF_MAX_CHANNELS];
        for (int ch = 0; ch < bp->n_ch; ch++)
            sig[ch] = c->bus_buf + (size_t)ch * c->stride;
        s_bus_fx(c, b, sig, wn);
#pragma omp parallel for schedule(static) num_threads(c->n_threads)
        for (size_t blk = 0; blk < n_blocks; blk++) {
            const size_t i0 = blk * SF_RENDER_BLOCK;
            const size_t len = wn - i0 < SF_RENDER_BLOCK ? wn - i0 : SF_RENDER_BLOCK;
            const float *at[SF_MAX_CHANNELS];
            for (int ch = 0; ch < bp->n_ch; ch++)
                at[ch] = sig[ch] + i0;
            s_bus_add(c, bp, at, i0, w0 + (int64_t)i0, len, &c->scratch[s_thread_num()]);
        }
    }

    if (c->live[0]) {
        s_round_node(c, 0, c->master_buf, wn);
    } else {
        for (int ch = 0; ch < s->master_channels; ch++)
            memset(c->master_buf + (size_t)ch * c->stride, 0, sizeof(float) * wn);
    }
    return SF_OK;
}

/* out[ch] + at = the master signal in n_out channels. The same layout: the
 * float master. Another: sf_render_layout_gains applied in double to the
 * master's double sum and rounded once -- the float master would add two
 * roundings (measured 0.86 LSB24 against 0.6 on a mono fold of a stereo
 * mix). Once the master has effects, a master that ran them converts its
 * float signal instead (from_float). */
static void s_master_to(const s_ctx_t *c, int n_out, float *const *out, size_t at, size_t wn, bool from_float)
{
    const int n_in = c->s->master_channels;
    if (n_in == n_out) {
        for (int ch = 0; ch < n_out; ch++)
            memcpy(out[ch] + at, c->master_buf + (size_t)ch * c->stride, sizeof(float) * wn);
        return;
    }
    if (!c->live[0])
        return; /* silent: out is zeroed already */
    double lg[SF_MAX_CHANNELS][SF_MAX_CHANNELS];
    sf_render_layout_gains(n_in, n_out, lg);
    const size_t n_blocks = (wn + SF_RENDER_BLOCK - 1) / SF_RENDER_BLOCK;
#pragma omp parallel for schedule(static) num_threads(c->n_threads)
    for (size_t blk = 0; blk < n_blocks; blk++) {
        const size_t i0 = blk * SF_RENDER_BLOCK;
        const size_t len = wn - i0 < SF_RENDER_BLOCK ? wn - i0 : SF_RENDER_BLOCK;
        s_scratch_t *sc = &c->scratch[s_thread_num()];
        double *restrict sum = sc->tmp[0];
        double *restrict in_d = sc->tmp[1];
        for (int ch = 0; ch < n_out; ch++) {
            memset(sum, 0, sizeof(double) * len);
            for (int in = 0; in < n_in; in++) {
                const double g = lg[in][ch];
                if (g == 0.0)
                    continue;
                const double *src = c->acc[0] + (size_t)in * c->stride + i0;
                if (from_float) {
                    const float *f = c->master_buf + (size_t)in * c->stride + i0;
                    for (size_t i = 0; i < len; i++)
                        in_d[i] = (double)f[i];
                    src = in_d;
                }
#pragma omp simd
                for (size_t i = 0; i < len; i++)
                    sum[i] += src[i] * g;
            }
            sf_dsp_f64_to_f32(out[ch] + at + i0, sum, len);
        }
    }
}

static sf_rc s_render_graph(s_ctx_t *c, sf_target_t t, int64_t start, int64_t n_frames, float *const *out,
                            sf_err_t *err)
{
    const sf_session_t *s = c->s;
    const int n_master = s->master_channels;
    float *master[SF_MAX_CHANNELS];
    for (int ch = 0; ch < n_master; ch++)
        master[ch] = c->master_buf + (size_t)ch * c->stride;
    for (int64_t done = 0; done < n_frames; done += c->win_max) {
        const int64_t w0 = start + done;
        const size_t wn = (size_t)(n_frames - done < c->win_max ? n_frames - done : c->win_max);
        if (t.kind != SF_TARGET_MIX) {
            sf_rc rc = s_graph_window(c, &c->sets[0], w0, wn, err);
            if (rc != SF_OK)
                return rc;
            bool fx = t.kind == SF_TARGET_STEM && s->output.master_apply && s_master_fx(c, master, wn);
            s_master_to(c, s_target_channels(s, t), out, (size_t)done, wn, fx);
            continue;
        }
        /* MIX: the stems in stem order, each at its gain, summed in double */
        const sf_mix_t *mix = &s->mixes[t.index];
        for (int ch = 0; ch < n_master; ch++)
            memset(c->mix_acc + (size_t)ch * c->stride, 0, sizeof(double) * wn);
        for (size_t k = 0; k < s->n_stems; k++) {
            if (mix->stem_gain_db[k] == SF_NEG_INF)
                continue;
            sf_rc rc = s_graph_window(c, &c->sets[k], w0, wn, err);
            if (rc != SF_OK)
                return rc;
            if (!c->live[0])
                continue;
            const float g = (float)sf_dsp_db_to_gain(mix->stem_gain_db[k]);
            for (int ch = 0; ch < n_master; ch++)
                sf_dsp_mix_f64(c->mix_acc + (size_t)ch * c->stride, master[ch], wn, g);
        }
        for (int ch = 0; ch < n_master; ch++)
            sf_dsp_f64_to_f32(master[ch], c->mix_acc + (size_t)ch * c->stride, wn);
        if (mix->master_apply)
            s_master_fx(c, master, wn);
        s_master_to(c, n_master, out, (size_t)done, wn, true);
    }
    return SF_OK;
}

static sf_rc s_render_multitrack(s_ctx_t *c, const sf_track_t *t, int64_t start, int64_t n_frames, float *const *out,
                                 sf_err_t *err)
{
    for (int64_t done = 0; done < n_frames; done += c->win_max) {
        const int64_t w0 = start + done;
        const size_t wn = (size_t)(n_frames - done < c->win_max ? n_frames - done : c->win_max);
        if (!s_clips_overlap(t, w0, w0 + (int64_t)wn))
            continue; /* out is already silent */
        const s_clipbuf_t *cb = &c->bufs[0];
        sf_rc rc = s_render_clips(t, w0, wn, &c->bufs[0], &c->scratch[0], err);
        if (rc != SF_OK)
            return rc;
        /* out = raw * (float)env: the clip gain and fades applied once in float */
        float *g = c->scratch[0].g;
        for (size_t i0 = 0; i0 < wn; i0 += SF_RENDER_BLOCK) {
            const size_t len = wn - i0 < SF_RENDER_BLOCK ? wn - i0 : SF_RENDER_BLOCK;
            const size_t blk = i0 / SF_RENDER_BLOCK;
            const double env_c = cb->blk_set[blk] ? cb->blk_env[blk] : 0.0;
            if (!isnan(env_c)) {
                if (env_c != 0.0)
                    for (int in = 0; in < t->n_channels; in++)
                        sf_dsp_scale(out[in] + done + i0, cb->raw[in] + i0, len, (float)env_c);
                continue;
            }
            for (size_t i = 0; i < len; i++)
                g[i] = (float)cb->env[i0 + i];
            for (int in = 0; in < t->n_channels; in++)
                sf_dsp_mul(out[in] + done + i0, cb->raw[in] + i0, g, len);
        }
    }
    return SF_OK;
}

sf_rc sf_render(const sf_session_t *s, sf_target_t t, int64_t start, int64_t n_frames, int64_t preroll,
                float *const *out, sf_err_t *err)
{
    if (n_frames < 0 || preroll < 0)
        return SF_ERR(err, SF_E_INTERNAL, "bad render range (%lld frames, %lld pre-roll)", (long long)n_frames,
                      (long long)preroll);
    const int n_out = s_target_channels(s, t);
    if (n_out == 0)
        return SF_ERR(err, SF_E_INTERNAL, "no render target %d:%u", (int)t.kind, t.index);
    if (!s_layout_ok(n_out) || (t.kind == SF_TARGET_MULTITRACK && n_out > SF_RENDER_MAX_IN))
        return SF_ERR(err, SF_E_INPUT, "'%s' has %d channels: only mono, stereo, 5.1 and 7.1 render",
                      t.kind == SF_TARGET_STEM         ? s->stems[t.index].name
                      : t.kind == SF_TARGET_MULTITRACK ? s->tracks[t.index].name
                                                       : s->name,
                      n_out);
    sf_rc rc = s_check_graph(s, err);
    if (rc != SF_OK)
        return rc;
    for (int ch = 0; ch < n_out; ch++)
        memset(out[ch], 0, sizeof(float) * (size_t)n_frames);
    /* No effect has memory yet, so the pre-roll would be rendered and
     * discarded without changing a sample: it is skipped. Once effects keep
     * state, rendering starts at start - preroll. */
    if (n_frames == 0)
        return SF_OK;

    s_ctx_t c = {0};
    rc = s_ctx_init(&c, s, t, n_frames, err);
    if (rc == SF_OK)
        rc = t.kind == SF_TARGET_MULTITRACK ? s_render_multitrack(&c, &s->tracks[t.index], start, n_frames, out, err)
                                            : s_render_graph(&c, t, start, n_frames, out, err);
    s_ctx_free(&c);
    return rc;
}

sf_rc sf_render_stem(const sf_session_t *s, size_t stem_index, int64_t start, int64_t n_frames, int64_t preroll,
                     float *const *out, sf_err_t *err)
{
    if (stem_index >= s->n_stems)
        return SF_ERR(err, SF_E_INTERNAL, "stem %zu of %zu", stem_index, s->n_stems);
    return sf_render(s, (sf_target_t){SF_TARGET_STEM, (uint32_t)stem_index}, start, n_frames, preroll, out, err);
}
