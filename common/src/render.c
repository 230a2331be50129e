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
 * Insert chains (sf/fx.h), one sf_fx_t per insert per graph, alive for one
 * sf_render call (state carries across windows):
 * - a track's chain runs on its pre-fader signal, materialised as
 *   (float)(raw * env * polarity), inside the track's own task; the result
 *   then feeds the fader and sends like a clip of gain 1. Tracks without
 *   inserts keep the exact path above, bit for bit;
 * - a bus's chain runs on its float sum, before its fader; the master's on
 *   its float sum for a stem with output.master: apply (never for the full
 *   mix, the null-test reference), or on the mix's sum for a mix with
 *   master: apply;
 * - tails: a track or bus with a chain keeps running after its input stops
 *   for its chain's tails (and latency) -- a track while its clips overlap
 *   [w0 - pad, w1), a node until live_until; past that its chain is reset
 *   (sf_fx_reset), so silence after a tail is exact;
 * - pre-roll: a render with chains starts at start - preroll and drops the
 *   first preroll frames; without any, the pre-roll changes no sample and
 *   is skipped. sf_render_preroll is the longest sum of tails on a path.
 *   Each track's clips sound only from start - its own pre-roll (its chain's
 *   tails plus the longest sum from where it feeds to the output), so a dry
 *   track is not rendered before the segment at all; the nodes downstream
 *   start silent at start - preroll and hear each track as its clips begin;
 * - latency (look-ahead): every input of a node arrives with the latency of
 *   its latest one -- an input with less is delayed by the difference in a
 *   delay group (a double line per node and delay, its leftover carried
 *   from window to window), and the output is read `latency` frames late.
 *   Automation follows the delayed signal: a source lagging by L frames
 *   takes its gains at frame - L;
 * - shared dynamics: a stem's share of a compressor or limiter that tracks
 *   of other stems feed too gets the gain the full mix gets there. The full
 *   graph (the companion) renders first in each window; its shared inserts
 *   compute their gain curves (sf_fx_dynamics_gain) and apply them to
 *   themselves (delayed input x gain, the bytes of process()); the stem's
 *   follow: its share delayed by the latency, times the same curve. Linear
 *   inserts process the share. So the stems sum to the full mix.
 * With chains, bytes may depend on where a render starts, within the
 * session's tail threshold (resets, pre-roll); never on the thread count.
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
#define SF_RENDER_CASCADE  8        /* consecutive EQ inserts run as one cascade */
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
    int64_t delay;                                /* latency compensation: frames this edge is delayed */
    int group;                                    /* the delay group it adds into (c->groups), -1: none */
} s_dest_t;

typedef struct {
    int n_in;                          /* 1 or 2 */
    double sign;                       /* polarity: +1 or -1 */
    double fader;                      /* sign * gain_db as a linear gain */
    const sf_automation_t *fader_auto; /* NULL: `fader` holds */
    const sf_automation_t *pan_auto;   /* NULL: constant pan (or route) */
    s_dest_t *dests;                   /* [0] the output, then the sends in file order */
    size_t n_dests;
    bool audible;    /* some dest is */
    bool fx;         /* an insert chain runs: the signal is materialised with its polarity (pre_sign)
                       and `sign` is +1 */
    double pre_sign; /* fx: the polarity, applied before the chain */
    int64_t lat;     /* fx: frames of latency of the chain (automation follows the delayed signal) */
    int64_t pad;     /* fx: frames it keeps sounding after its clips end (tails + latency) */
    int64_t preroll; /* the longest sum of tails from its input to the target's output, its chain's
                        included: how early its clips must start sounding before a segment */
    int64_t from;    /* this render: its clips sound from this frame on (start - preroll) */
} s_track_plan_t;

typedef struct {
    int n_ch;
    double fader;    /* gain_db as a linear gain */
    s_dest_t *dests; /* [0] the output, then the sends */
    size_t n_dests;
    int64_t lat; /* frames of latency at its output: its inputs' and its chain's */
} s_bus_plan_t;

/* One insert of a chain as this render runs it. */
enum {
    S_INS_PROCESS, /* sf_fx_process */
    S_INS_LEAD,    /* companion graph: the gain curve of a shared dynamics insert, applied to itself */
    S_INS_FOLLOW,  /* a stem's share of a shared dynamics insert: the leader's curve */
};

typedef struct s_ins {
    sf_fx_t fx;               /* PROCESS, LEAD: the running effect */
    bool ready;               /* fx is initialised */
    int mode;                 /* S_INS_* */
    size_t lat;               /* LEAD, FOLLOW: the effect's latency, frames */
    float *hist;              /* LEAD, FOLLOW with lat > 0: per channel 2 * lat floats, the delay
                                 line then scratch */
    float *gain;              /* LEAD: the window's gain curve (stride floats) */
    int64_t gain_w0;          /* LEAD: the window the curve is for */
    const struct s_ins *lead; /* FOLLOW: the companion graph's insert */
} s_ins_t;

/* The insert chain of a track, a bus or the master in one graph. */
typedef struct {
    s_ins_t *ins; /* n of them; NULL: no chain runs */
    size_t n;
    int n_ch;
    bool running; /* processed since the last reset */
} s_chain_t;

/* A node's inputs that arrive `delay` frames late (latency compensation):
 * they add into buf at [delay, delay + wn) of each channel; [0, delay) holds
 * what the previous window left over, and [0, wn) is added into the node. */
typedef struct {
    int node;
    int64_t delay;
    size_t gstride;  /* doubles between channels */
    double *buf;     /* n_ch * gstride, shared by the graphs of a window */
    size_t carry_at; /* where its delay * n_ch carried doubles start in a graph's carry */
} s_group_t;

/* What persists between windows for one graph (a stem, the full mix, the
 * companion), per render. */
typedef struct {
    s_chain_t *tracks;   /* per session track */
    s_chain_t *buses;    /* per bus */
    s_chain_t master;    /* the master's, when it runs inside the graph (STEM, master: apply) */
    bool *reach;         /* per node: a sounding track of this graph feeds it */
    bool *shared;        /* per node: its dynamics follow the companion graph */
    int64_t *live_until; /* per node: it sounds in a window that starts before this frame */
    double *carry;       /* the delay groups' leftovers (c->carry_len doubles) */
} s_gstate_t;

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
    unsigned char *blk_need;      /* per block: env is written there (its value varies, or a
                                     crossfade reads it); elsewhere blk_env is all there is */
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
    bool off; /* MIX: a stem at -inf, never rendered */
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
    s_set_t *sets;        /* the target's, then the companion (when has_comp) */
    size_t n_sets;        /* the target's */
    bool has_comp;        /* sets[n_sets]: the full graph, leading shared dynamics */
    s_gstate_t *gs;       /* per set, companion included */
    bool graph_master_fx; /* the master chain runs inside the graph (STEM, output.master: apply) */
    bool mix_master_fx;   /* the master chain runs on the mix (MIX, master: apply) */
    bool any_fx;          /* some chain runs */
    int64_t *node_pad;    /* per node: frames its chain rings after its input stops */
    int64_t *node_tail;   /* per node: the longest sum of tails to its output (-1: not reached) */
    int64_t *node_lat_in; /* per node: latency of its (compensated) input */
    int64_t latency;      /* of the target's output */
    int64_t preroll_need; /* sf_render_preroll */
    int64_t mix_pad;      /* MIX: frames the master chain rings */
    s_chain_t mix_master; /* MIX: the master chain on the mix */
    int64_t mix_live_until;
    s_group_t *groups;
    size_t n_groups;
    size_t carry_len;   /* doubles of carry per graph */
    float *out_buf;     /* n_out * stride: a window of the target's output */
    size_t *all_tracks; /* 0 .. n_tracks-1: the full mix, the companion */
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
    size_t stride = c->stride;
    if (d->group >= 0) { /* arrives late: into its delay group */
        const s_group_t *gr = &c->groups[d->group];
        acc = gr->buf + gr->delay;
        stride = gr->gstride;
    }
    for (int in = 0; in < n_in; in++)
        for (int out = 0; out < d->n_out; out++) {
            int which = 0;
            bool panned = d->pan_auto && s_pan_entry(n_in, in, out, &which);
            double p_c = panned ? pan_c[which] : d->mat[in][out];
            const double *p_v = panned ? pan_v[which] : NULL;
            if (!p_v && p_c == 0.0)
                continue; /* adds exact zeros */
            double *dst = acc + (size_t)out * stride + i0;
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

/* Whether env must be written anywhere in [q0, q1). */
static bool s_needs_env(const s_clipbuf_t *cb, int64_t w0, int64_t q0, int64_t q1)
{
    for (size_t b = (size_t)(q0 - w0) / SF_RENDER_BLOCK; b <= (size_t)(q1 - 1 - w0) / SF_RENDER_BLOCK; b++)
        if (cb->blk_need[b])
            return true;
    return false;
}

/* The block marks of the piece [p0, p1) of `clip`, part by part as
 * s_render_piece cuts it: a faded part varies (NaN), a plain one is its
 * clip gain, a crossfade stores gain 1 and reads the env under it. Marks
 * come before any sample is rendered, so that env is written only in the
 * blocks where it varies or is read: elsewhere a block's one value is all
 * the summing needs, and writing 8 bytes of env per sample cost as much
 * as reading the source. */
static void s_plan_piece(const sf_clip_t *clip, int64_t p0, int64_t p1, int64_t w0, s_clipbuf_t *cb)
{
    const int64_t xe = clip->at + s_clamp_len(clip->crossfade, clip->length);
    const int64_t end = clip->at + clip->length;
    const int64_t fi = s_clamp_len(clip->fade_in.length, clip->length);
    const int64_t fo = s_clamp_len(clip->fade_out.length, clip->length);
    const double gain = sf_dsp_db_to_gain(clip->gain_db);
    for (int64_t q = p0; q < p1; q += SF_RENDER_BLOCK) {
        const int64_t qe = p1 - q < SF_RENDER_BLOCK ? p1 : q + SF_RENDER_BLOCK;
        const int64_t xm = xe < q ? q : xe > qe ? qe : xe; /* [q, xm) crossfades */
        if (q < xm) {
            s_mark(cb, w0, q, xm, 1.0);
            for (size_t b = (size_t)(q - w0) / SF_RENDER_BLOCK; b <= (size_t)(xm - 1 - w0) / SF_RENDER_BLOCK; b++)
                cb->blk_need[b] = 1;
        }
        if (xm < qe) {
            const bool faded = (fi > 0 && xm < clip->at + fi) || (fo > 0 && qe > end - fo);
            s_mark(cb, w0, xm, qe, faded ? (double)NAN : gain);
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
    double *env = xfade ? sc->tmp[0] : cb->env + di;
    if (xfade || s_needs_env(cb, w0, q0, q1)) {
        for (size_t i = 0; i < m; i++)
            env[i] = gain;
        s_fade(env, sc->tmp[1], q0, m, clip->at, fi, true, clip->fade_in.shape);
        s_fade(env, sc->tmp[1], q0, m, end - fo, fo, false, clip->fade_out.shape);
    }
    if (!xfade) {
        if (src)
            for (int in = 0; in < n_in; in++)
                memcpy(cb->raw[in] + di, src[clip->channel >= 0 ? clip->channel : in] + so, sizeof(float) * m);
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
static sf_rc s_render_clips(const sf_track_t *t, int64_t from, int64_t w0, size_t wn, s_clipbuf_t *cb, s_scratch_t *sc,
                            sf_err_t *err)
{
    const int64_t w1 = w0 + (int64_t)wn;
    const int64_t lo = from > w0 ? from : w0;
    size_t n_cov = 0, n_pieces = 0;
    for (size_t j = t->n_clips; j-- > 0;) {
        const sf_clip_t *clip = &t->clips[j];
        const int64_t end = clip->at + clip->length;
        const int64_t a = clip->at > lo ? clip->at : lo;
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
    const size_t n_blocks = (wn + SF_RENDER_BLOCK - 1) / SF_RENDER_BLOCK;
    memset(cb->blk_set, 0, n_blocks);
    memset(cb->blk_need, 0, n_blocks);
    for (size_t p = n_pieces; p-- > 0;)
        s_plan_piece(&t->clips[sc->pieces[p].clip], sc->pieces[p].begin, sc->pieces[p].end, w0, cb);
    for (size_t b = 0; b < n_blocks; b++)
        cb->blk_need[b] |= cb->blk_set[b] && isnan(cb->blk_env[b]);
    /* Silence where no clip overwrites: what the covered list leaves out
     * (gaps, and crossfade-ins, which mix over what is there). */
    int64_t pos = w0;
    for (size_t i = 0; i <= n_cov; i++) {
        int64_t gap_end = i < n_cov ? sc->covered[i].begin : w1;
        if (gap_end > pos) {
            const size_t at = (size_t)(pos - w0), len = (size_t)(gap_end - pos);
            for (int in = 0; in < t->n_channels; in++)
                memset(cb->raw[in] + at, 0, sizeof(float) * len);
            if (s_needs_env(cb, w0, pos, gap_end))
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

/* An insert chain as the loader leaves it: a list when it has inserts, every kind known. */
static sf_rc s_check_inserts(const sf_insert_t *fx, size_t n, const char *what, const char *owner, sf_err_t *err)
{
    if (n > 0 && !fx)
        return SF_ERR(err, SF_E_INTERNAL, "%s '%s' has %zu inserts but no list", what, owner, n);
    for (size_t k = 0; k < n; k++)
        if ((unsigned)fx[k].params.kind >= SF_FX_N_KINDS)
            return SF_ERR(err, SF_E_INTERNAL, "%s '%s': insert %zu is of unknown kind %d", what, owner, k + 1,
                          (int)fx[k].params.kind);
    return SF_OK;
}

/* The buses, their order and the master: whatever the target. */
static sf_rc s_check_graph(const sf_session_t *s, sf_err_t *err)
{
    if (!s_layout_ok(s->master_channels))
        return SF_ERR(err, SF_E_INPUT, "the master has %d channels: only mono, stereo, 5.1 and 7.1 render",
                      s->master_channels);
    sf_rc rc = s_check_inserts(s->master_fx, s->n_master_fx, "bus", "master", err);
    if (rc != SF_OK)
        return rc;
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
        rc = s_check_sends(s, bus->sends, bus->n_sends, bus->name, err);
        if (rc == SF_OK)
            rc = s_check_inserts(bus->fx, bus->n_fx, "bus", bus->name, err);
        if (rc != SF_OK)
            return rc;
    }
    /* bus_order: a permutation in which every bus comes before what it feeds */
    int *pos = sf_calloc(s->n_buses, sizeof *pos);
    if (!pos)
        return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
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
        rc = s_check_inserts(t->fx, t->n_fx, "track", t->name, err);
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
    /* with inserts the polarity goes in before them: the chain's output
     * then feeds the fader and the sends like a clip of gain 1 */
    tp->fx = t->n_fx > 0;
    tp->pre_sign = tp->sign;
    tp->from = INT64_MIN;
    if (tp->fx)
        tp->sign = 1.0;
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
        d->delay = 0;
        d->group = -1;
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
        d->delay = 0;
        d->group = -1;
        sf_render_layout_gains(bp->n_ch, d->n_out, d->mat);
    }
}

/* ---- insert chains ------------------------------------------------------------ */

static int64_t s_sat_add(int64_t a, int64_t b) /* a, b >= 0 */ { return a > INT64_MAX - b ? INT64_MAX : a + b; }

static int64_t s_sat_sub(int64_t a, int64_t b) /* b >= 0 */ { return a < INT64_MIN + b ? INT64_MIN : a - b; }

static int64_t s_max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Sum of the tails (at the session's threshold) and of the latencies of a chain. */
static void s_chain_metrics(const s_ctx_t *c, const sf_insert_t *fx, size_t n, int64_t *tail, int64_t *lat)
{
    *tail = 0;
    *lat = 0;
    for (size_t k = 0; k < n; k++) {
        const int64_t t = sf_fx_tail_frames(&fx[k].params, c->s->sample_rate, c->floor_db);
        const int64_t l = sf_fx_latency_frames(&fx[k].params, c->s->sample_rate);
        *tail = s_sat_add(*tail, t > 0 ? t : 0);
        *lat = s_sat_add(*lat, l > 0 ? l : 0);
    }
}

static bool s_chain_has_dynamics(const sf_insert_t *fx, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (sf_fx_is_dynamics(fx[k].params.kind))
            return true;
    return false;
}

static void s_chain_free(s_chain_t *ch)
{
    if (!ch->ins)
        return;
    for (size_t k = 0; k < ch->n; k++) {
        if (ch->ins[k].ready)
            sf_fx_free(&ch->ins[k].fx);
        sf_free(ch->ins[k].hist);
        sf_free(ch->ins[k].gain);
    }
    sf_free(ch->ins);
    ch->ins = NULL;
}

/* Back to silence: the state of a fresh chain. */
static void s_chain_reset(s_chain_t *ch)
{
    for (size_t k = 0; k < ch->n; k++) {
        s_ins_t *in = &ch->ins[k];
        if (in->ready)
            sf_fx_reset(&in->fx);
        if (in->hist)
            memset(in->hist, 0, sizeof(float) * 2 * in->lat * (size_t)ch->n_ch);
    }
    ch->running = false;
}

/* Prepares the chain `fx` of `what` 'name' for n_ch channels. Dynamics
 * inserts run as dyn_mode (S_INS_FOLLOW: after the same insert of `lead`,
 * the companion graph's chain of the node); the others are processed. */
static sf_rc s_chain_init(const s_ctx_t *c, s_chain_t *ch, const sf_insert_t *fx, size_t n, int n_ch, int dyn_mode,
                          const s_chain_t *lead, const char *what, const char *name, sf_err_t *err)
{
    const sf_session_t *s = c->s;
    ch->ins = sf_calloc(n, sizeof *ch->ins);
    if (!ch->ins)
        return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
    ch->n = n;
    ch->n_ch = n_ch;
    ch->running = false;
    for (size_t k = 0; k < n; k++) {
        s_ins_t *in = &ch->ins[k];
        const sf_fx_params_t *p = &fx[k].params;
        in->mode = sf_fx_is_dynamics(p->kind) ? dyn_mode : S_INS_PROCESS;
        in->gain_w0 = INT64_MIN;
        if (in->mode == S_INS_FOLLOW) {
            in->lead = &lead->ins[k];
        } else {
            sf_rc rc = sf_fx_init(&in->fx, p, n_ch, s->sample_rate, err);
            if (rc == SF_E_NOMEM)
                return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
            if (rc != SF_OK) {
                sf_err_prefix(err, "%s '%s', insert %zu: ", what, name, k + 1);
                return rc;
            }
            in->ready = true;
        }
        if (in->mode == S_INS_PROCESS)
            continue;
        const int64_t lat = sf_fx_latency_frames(p, s->sample_rate);
        in->lat = lat > 0 ? (size_t)lat : 0;
        if (in->lat > 0 && !(in->hist = sf_calloc(2 * in->lat * (size_t)n_ch, sizeof *in->hist)))
            return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
        if (in->mode == S_INS_LEAD && !(in->gain = sf_aligned_alloc(sizeof(float) * c->stride)))
            return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
    }
    return SF_OK;
}

/* x[0..n) = the line's lat frames, then x; the line keeps the last lat. */
static void s_delay_line(float *x, float *line, float *tmp, size_t lat, size_t n)
{
    if (n >= lat) {
        memcpy(tmp, x + n - lat, sizeof(float) * lat);
        memmove(x + lat, x, sizeof(float) * (n - lat));
        memcpy(x, line, sizeof(float) * lat);
        memcpy(line, tmp, sizeof(float) * lat);
    } else {
        memcpy(tmp, line, sizeof(float) * lat);
        memcpy(line, tmp + n, sizeof(float) * (lat - n));
        memcpy(line + lat - n, x, sizeof(float) * n);
        memcpy(x, tmp, sizeof(float) * n);
    }
}

/* A shared dynamics insert on its signal: delayed by its latency, times the
 * gain curve -- the float product that its process() computes. */
static void s_apply_curve(s_ins_t *in, int n_ch, float *const *sig, const float *gain, size_t wn)
{
    for (int ch = 0; ch < n_ch; ch++) {
        float *restrict x = sig[ch];
        if (in->lat > 0) {
            float *line = in->hist + (size_t)ch * 2 * in->lat;
            s_delay_line(x, line, line + in->lat, in->lat, wn);
        }
#pragma omp simd
        for (size_t i = 0; i < wn; i++)
            x[i] = x[i] * gain[i];
    }
}

/* Runs the chain over the window [w0, w0 + wn) of sig, in place. False when
 * a follower finds no curve of its leader for this window (a bug). */
static bool s_chain_run(s_chain_t *ch, float *const *sig, size_t wn, int64_t w0)
{
    for (size_t k = 0; k < ch->n; k++) {
        s_ins_t *in = &ch->ins[k];
        if (in->mode == S_INS_PROCESS && in->fx.kind == SF_FX_EQ) {
            /* consecutive EQs run as one cascade: the same bytes, their
             * recursions overlapping (sf_fx_process_eq_cascade) */
            sf_fx_t *eqs[SF_RENDER_CASCADE];
            size_t n = 0;
            while (n < SF_RENDER_CASCADE && k + n < ch->n && ch->ins[k + n].mode == S_INS_PROCESS &&
                   ch->ins[k + n].fx.kind == SF_FX_EQ) {
                eqs[n] = &ch->ins[k + n].fx;
                n++;
            }
            sf_fx_process_eq_cascade(eqs, n, sig, wn);
            k += n - 1;
        } else if (in->mode == S_INS_PROCESS) {
            sf_fx_process(&in->fx, sig, wn);
        } else if (in->mode == S_INS_LEAD) {
            const float *det[SF_MAX_CHANNELS];
            for (int c = 0; c < ch->n_ch; c++)
                det[c] = sig[c];
            sf_fx_dynamics_gain(&in->fx, det, wn, in->gain);
            in->gain_w0 = w0;
            s_apply_curve(in, ch->n_ch, sig, in->gain, wn);
        } else {
            if (in->lead->gain_w0 != w0)
                return false;
            s_apply_curve(in, ch->n_ch, sig, in->lead->gain, wn);
        }
    }
    ch->running = true;
    return true;
}

/* ---- context ------------------------------------------------------------------ */

static void s_gstate_free(s_ctx_t *c, s_gstate_t *gs)
{
    const sf_session_t *s = c->s;
    if (gs->tracks)
        for (size_t k = 0; k < s->n_tracks; k++)
            s_chain_free(&gs->tracks[k]);
    if (gs->buses)
        for (size_t b = 0; b < s->n_buses; b++)
            s_chain_free(&gs->buses[b]);
    s_chain_free(&gs->master);
    sf_free(gs->tracks);
    sf_free(gs->buses);
    sf_free(gs->reach);
    sf_free(gs->shared);
    sf_free(gs->live_until);
    sf_free(gs->carry);
}

static void s_ctx_free(s_ctx_t *c)
{
    if (c->gs)
        for (size_t si = 0; si <= c->n_sets; si++)
            s_gstate_free(c, &c->gs[si]);
    s_chain_free(&c->mix_master);
    if (c->groups)
        for (size_t g = 0; g < c->n_groups; g++)
            sf_free(c->groups[g].buf);
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
            sf_free(c->bufs[g].blk_need);
        }
    if (c->acc)
        for (int n = 0; n < c->n_nodes; n++)
            sf_free(c->acc[n]);
    sf_free(c->gs);
    sf_free(c->groups);
    sf_free(c->out_buf);
    sf_free(c->node_pad);
    sf_free(c->node_tail);
    sf_free(c->node_lat_in);
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

/* The sets of tracks that sound for target t (MULTITRACK: none), with room
 * for the companion after them. */
static sf_rc s_ctx_sets(s_ctx_t *c, sf_target_t t, sf_err_t *err)
{
    const sf_session_t *s = c->s;
    size_t n = t.kind == SF_TARGET_MIX ? s->n_stems : t.kind == SF_TARGET_MULTITRACK ? 0 : 1;
    c->sets = sf_calloc(n + 1, sizeof *c->sets);
    if (!c->sets)
        return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
    c->n_sets = n;
    if (t.kind == SF_TARGET_STEM || t.kind == SF_TARGET_MIX || t.kind == SF_TARGET_FULL_MIX) {
        c->all_tracks = sf_calloc(s->n_tracks ? s->n_tracks : 1, sizeof *c->all_tracks);
        if (!c->all_tracks)
            return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
        for (size_t k = 0; k < s->n_tracks; k++)
            c->all_tracks[k] = k;
    }
    if (t.kind == SF_TARGET_STEM) {
        c->sets[0] = (s_set_t){s->stems[t.index].tracks, s->stems[t.index].n_tracks, false};
    } else if (t.kind == SF_TARGET_FULL_MIX) {
        c->sets[0] = (s_set_t){c->all_tracks, s->n_tracks, false};
    } else if (t.kind == SF_TARGET_MIX) {
        if (s->n_stems > 0 && !s->mixes[t.index].stem_gain_db)
            return SF_ERR(err, SF_E_INTERNAL, "mix '%s' has no stem gains", s->mixes[t.index].name);
        for (size_t k = 0; k < s->n_stems; k++)
            c->sets[k] =
                (s_set_t){s->stems[k].tracks, s->stems[k].n_tracks, s->mixes[t.index].stem_gain_db[k] == SF_NEG_INF};
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

/* Sets, companion included. */
static size_t s_n_graphs(const s_ctx_t *c) { return c->n_sets + (c->has_comp ? 1 : 0); }

/* Plans every track of the sets (the companion's too) and every bus. */
static sf_rc s_ctx_plan(s_ctx_t *c, sf_err_t *err)
{
    const sf_session_t *s = c->s;
    size_t n_dests = 0;
    for (size_t k = 0; k < s->n_tracks; k++)
        n_dests += 1 + s->tracks[k].n_sends;
    for (size_t b = 0; b < s->n_buses; b++)
        n_dests += 1 + s->buses[b].n_sends;
    c->tracks = sf_calloc(s->n_tracks ? s->n_tracks : 1, sizeof *c->tracks);
    c->buses = sf_calloc(s->n_buses ? s->n_buses : 1, sizeof *c->buses);
    c->dest_pool = sf_calloc(n_dests, sizeof *c->dest_pool);
    if (!c->tracks || !c->buses || !c->dest_pool)
        return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
    /* only the tracks of the sets get a plan; the others keep n_dests 0 */
    s_dest_t *next = c->dest_pool;
    for (size_t si = 0; si < s_n_graphs(c); si++)
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
    return SF_OK;
}

/* A track that can sound at all: unmuted, with clips, some dest audible. */
static bool s_sounding(const s_ctx_t *c, size_t ti)
{
    const sf_track_t *t = &c->s->tracks[ti];
    return !t->mute && t->n_clips > 0 && c->tracks[ti].audible;
}

/* reach[n]: some sounding track of `tracks` (except those in `skip`) feeds
 * node n, directly or through buses. */
static void s_reach(const s_ctx_t *c, const size_t *tracks, size_t n, const bool *skip, bool *reach)
{
    const sf_session_t *s = c->s;
    memset(reach, 0, sizeof(bool) * (size_t)c->n_nodes);
    for (size_t k = 0; k < n; k++) {
        const size_t ti = tracks[k];
        if ((skip && skip[ti]) || !s_sounding(c, ti))
            continue;
        const s_track_plan_t *tp = &c->tracks[ti];
        for (size_t j = 0; j < tp->n_dests; j++)
            if (tp->dests[j].audible)
                reach[tp->dests[j].node] = true;
    }
    for (size_t k = 0; k < s->n_buses; k++) {
        const size_t b = s->bus_order[k];
        if (!reach[1 + b])
            continue;
        for (size_t j = 0; j < c->buses[b].n_dests; j++)
            if (c->buses[b].dests[j].audible)
                reach[c->buses[b].dests[j].node] = true;
    }
}

/* Node n's chain has a compressor or limiter that runs inside the graph. */
static bool s_node_dynamics(const s_ctx_t *c, int n)
{
    const sf_session_t *s = c->s;
    if (n == 0)
        return c->graph_master_fx && s_chain_has_dynamics(s->master_fx, s->n_master_fx);
    return s_chain_has_dynamics(s->buses[n - 1].fx, s->buses[n - 1].n_fx);
}

/* Per graph: what it reaches; per stem: which of its dynamics are shared
 * (fed by tracks of other stems too), and then whether the companion runs. */
static sf_rc s_ctx_reach(s_ctx_t *c, sf_err_t *err)
{
    const sf_session_t *s = c->s;
    const size_t n_nodes = (size_t)c->n_nodes;
    for (size_t si = 0; si < s_n_graphs(c); si++) {
        s_gstate_t *gs = &c->gs[si];
        gs->reach = sf_calloc(n_nodes, sizeof *gs->reach);
        gs->shared = sf_calloc(n_nodes, sizeof *gs->shared);
        gs->live_until = sf_calloc(n_nodes, sizeof *gs->live_until);
        if (!gs->reach || !gs->shared || !gs->live_until)
            return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
        for (size_t n = 0; n < n_nodes; n++)
            gs->live_until[n] = INT64_MIN;
        if (!c->sets[si].off)
            s_reach(c, c->sets[si].tracks, c->sets[si].n, NULL, gs->reach);
    }
    if (c->has_comp) {
        bool any = false;
        bool *in_set = sf_calloc(s->n_tracks ? s->n_tracks : 1, sizeof *in_set);
        bool *outside = sf_calloc(n_nodes, sizeof *outside);
        if (!in_set || !outside) {
            sf_free(in_set);
            sf_free(outside);
            return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
        }
        for (size_t si = 0; si < c->n_sets; si++) {
            const s_set_t *set = &c->sets[si];
            if (set->off)
                continue;
            memset(in_set, 0, sizeof(bool) * s->n_tracks);
            for (size_t k = 0; k < set->n; k++)
                in_set[set->tracks[k]] = true;
            s_reach(c, c->all_tracks, s->n_tracks, in_set, outside);
            for (size_t n = 0; n < n_nodes; n++) {
                c->gs[si].shared[n] = c->gs[si].reach[n] && outside[n] && s_node_dynamics(c, (int)n);
                any = any || c->gs[si].shared[n];
            }
        }
        sf_free(in_set);
        sf_free(outside);
        if (!any) {
            s_gstate_free(c, &c->gs[c->n_sets]);
            memset(&c->gs[c->n_sets], 0, sizeof c->gs[c->n_sets]);
            c->has_comp = false;
        }
    }
    c->reach[0] = true; /* the master is always there (silent or not) */
    for (size_t si = 0; si < s_n_graphs(c); si++)
        for (size_t n = 0; n < n_nodes; n++)
            c->reach[n] = c->reach[n] || c->gs[si].reach[n];
    return SF_OK;
}

/* The delay group of `node` for `delay` frames, made on first use; -1 when
 * out of memory. */
static int s_group_of(s_ctx_t *c, int node, int64_t delay)
{
    for (size_t g = 0; g < c->n_groups; g++)
        if (c->groups[g].node == node && c->groups[g].delay == delay)
            return (int)g;
    s_group_t *grown = sf_realloc(c->groups, (c->n_groups + 1) * sizeof *c->groups);
    if (!grown)
        return -1;
    c->groups = grown;
    c->groups[c->n_groups] = (s_group_t){node, delay, 0, NULL, c->carry_len};
    c->carry_len += (size_t)delay * (size_t)c->node_ch[node];
    return (int)c->n_groups++;
}

/* Gives dest d of a source whose output has latency lat_src its compensating
 * delay: every input of a node arrives with the latency of its latest one. */
static sf_rc s_dest_delay(s_ctx_t *c, s_dest_t *d, int64_t lat_src, sf_err_t *err)
{
    d->delay = c->node_lat_in[d->node] - lat_src;
    d->group = -1;
    if (d->delay > 0 && (d->group = s_group_of(c, d->node, d->delay)) < 0)
        return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", c->s->name);
    return SF_OK;
}

/* Along every path of the render (the companion's included): latencies
 * (node_lat_in, each bus's output, the target's), the longest sums of tails
 * (node_tail, the pre-roll a segment needs), how long each node rings after
 * its input stops (pads), and the delay groups that align a node's inputs. */
/* Pre-roll per track (DESIGN.md: per graph node): its chain's tails plus
 * the longest sum of tails from where it feeds to the output. Buses are
 * taken in reverse bus_order, so every bus's destinations are known before
 * it. A track that starts this early has warmed up every chain on its
 * paths by the segment's start; starting every track at the target's
 * longest pre-roll would only render more. */
static sf_rc s_ctx_track_prerolls(s_ctx_t *c, int64_t master_tail, sf_err_t *err)
{
    const sf_session_t *s = c->s;
    int64_t *down = sf_calloc((size_t)c->n_nodes, sizeof *down); /* per node: tails from its input on */
    if (!down)
        return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
    down[0] = master_tail;
    for (size_t k = s->n_buses; k-- > 0;) {
        const size_t b = s->bus_order[k];
        const s_bus_plan_t *bp = &c->buses[b];
        if (!c->reach[1 + b])
            continue;
        int64_t after = 0, tail = 0, lat = 0;
        for (size_t j = 0; j < bp->n_dests; j++)
            if (bp->dests[j].audible)
                after = s_max64(after, down[bp->dests[j].node]);
        s_chain_metrics(c, s->buses[b].fx, s->buses[b].n_fx, &tail, &lat);
        down[1 + b] = s_sat_add(tail, after);
    }
    for (size_t si = 0; si < s_n_graphs(c); si++) {
        const s_set_t *set = &c->sets[si];
        for (size_t k = 0; k < set->n && !set->off; k++) {
            const size_t ti = set->tracks[k];
            s_track_plan_t *tp = &c->tracks[ti];
            int64_t after = 0, tail = 0, lat = 0;
            for (size_t j = 0; j < tp->n_dests; j++)
                if (tp->dests[j].audible)
                    after = s_max64(after, down[tp->dests[j].node]);
            if (tp->fx)
                s_chain_metrics(c, s->tracks[ti].fx, s->tracks[ti].n_fx, &tail, &lat);
            tp->preroll = s_sat_add(tail, after);
        }
    }
    sf_free(down);
    return SF_OK;
}

static sf_rc s_ctx_paths(s_ctx_t *c, sf_err_t *err)
{
    const sf_session_t *s = c->s;
    const int n_nodes = c->n_nodes;
    c->node_pad = sf_calloc((size_t)n_nodes, sizeof *c->node_pad);
    c->node_tail = sf_calloc((size_t)n_nodes, sizeof *c->node_tail);
    c->node_lat_in = sf_calloc((size_t)n_nodes, sizeof *c->node_lat_in);
    if (!c->node_pad || !c->node_tail || !c->node_lat_in)
        return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
    for (int n = 0; n < n_nodes; n++)
        c->node_tail[n] = -1;
    for (size_t si = 0; si < s_n_graphs(c); si++) {
        const s_set_t *set = &c->sets[si];
        for (size_t k = 0; k < set->n && !set->off; k++) {
            const size_t ti = set->tracks[k];
            if (!s_sounding(c, ti))
                continue;
            s_track_plan_t *tp = &c->tracks[ti];
            int64_t tail = 0, lat = 0;
            if (tp->fx) {
                s_chain_metrics(c, s->tracks[ti].fx, s->tracks[ti].n_fx, &tail, &lat);
                tp->lat = lat;
                tp->pad = s_sat_add(tail, lat);
                c->any_fx = true;
            }
            for (size_t j = 0; j < tp->n_dests; j++) {
                const int n = tp->dests[j].node;
                if (!tp->dests[j].audible)
                    continue;
                c->node_lat_in[n] = s_max64(c->node_lat_in[n], lat);
                c->node_tail[n] = s_max64(c->node_tail[n], tail);
            }
        }
    }
    for (size_t k = 0; k < s->n_buses; k++) {
        const size_t b = s->bus_order[k];
        const int n = 1 + (int)b;
        s_bus_plan_t *bp = &c->buses[b];
        if (!c->reach[n])
            continue;
        int64_t tail = 0, lat = 0;
        if (s->buses[b].n_fx > 0) {
            s_chain_metrics(c, s->buses[b].fx, s->buses[b].n_fx, &tail, &lat);
            c->node_pad[n] = s_sat_add(tail, lat);
            c->any_fx = true;
        }
        bp->lat = s_sat_add(c->node_lat_in[n], lat);
        const int64_t out_tail = c->node_tail[n] < 0 ? -1 : s_sat_add(c->node_tail[n], tail);
        for (size_t j = 0; j < bp->n_dests; j++) {
            const int to = bp->dests[j].node;
            if (!bp->dests[j].audible)
                continue;
            c->node_lat_in[to] = s_max64(c->node_lat_in[to], bp->lat);
            c->node_tail[to] = s_max64(c->node_tail[to], out_tail);
        }
    }
    int64_t m_tail = 0, m_lat = 0;
    if (c->graph_master_fx || c->mix_master_fx) {
        s_chain_metrics(c, s->master_fx, s->n_master_fx, &m_tail, &m_lat);
        c->any_fx = true;
        if (c->graph_master_fx)
            c->node_pad[0] = s_sat_add(m_tail, m_lat);
        else
            c->mix_pad = s_sat_add(m_tail, m_lat);
    }
    c->latency = s_sat_add(c->node_lat_in[0], m_lat);
    c->preroll_need = c->node_tail[0] < 0 ? 0 : s_sat_add(c->node_tail[0], m_tail);
    sf_rc rc = s_ctx_track_prerolls(c, m_tail, err);
    if (rc != SF_OK || c->latency == 0)
        return rc; /* every delay is 0 */

    for (size_t si = 0; si < s_n_graphs(c); si++) {
        const s_set_t *set = &c->sets[si];
        for (size_t k = 0; k < set->n && !set->off; k++) {
            const size_t ti = set->tracks[k];
            if (!s_sounding(c, ti))
                continue;
            s_track_plan_t *tp = &c->tracks[ti];
            for (size_t j = 0; j < tp->n_dests; j++) {
                rc = tp->dests[j].audible ? s_dest_delay(c, &tp->dests[j], tp->lat, err) : SF_OK;
                if (rc != SF_OK)
                    return rc;
            }
        }
    }
    for (size_t k = 0; k < s->n_buses; k++) {
        const size_t b = s->bus_order[k];
        s_bus_plan_t *bp = &c->buses[b];
        if (!c->reach[1 + b])
            continue;
        for (size_t j = 0; j < bp->n_dests; j++) {
            rc = bp->dests[j].audible ? s_dest_delay(c, &bp->dests[j], bp->lat, err) : SF_OK;
            if (rc != SF_OK)
                return rc;
        }
    }
    return SF_OK;
}

/* Everything about target t that needs no audio buffers: its sets, the
 * plans, what runs where, latencies and tails. */
static sf_rc s_ctx_prepare(s_ctx_t *c, const sf_session_t *s, sf_target_t t, sf_err_t *err)
{
    c->s = s;
    c->floor_db =
        isfinite(s->tail_threshold_db) && s->tail_threshold_db < 0.0 ? s->tail_threshold_db : SF_RENDER_FLOOR_DB;
    c->n_threads = 1;
#ifdef _OPENMP
    c->n_threads = omp_get_max_threads();
#endif
    c->n_nodes = 1 + (int)s->n_buses;
    c->mix_live_until = INT64_MIN;
    c->node_ch = sf_calloc((size_t)c->n_nodes, sizeof *c->node_ch);
    c->reach = sf_calloc((size_t)c->n_nodes, sizeof *c->reach);
    c->live = sf_calloc((size_t)c->n_nodes, sizeof *c->live);
    if (!c->node_ch || !c->reach || !c->live)
        return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
    c->node_ch[0] = s->master_channels;
    for (size_t b = 0; b < s->n_buses; b++)
        c->node_ch[1 + b] = s->buses[b].n_channels;
    sf_rc rc = s_ctx_sets(c, t, err);
    if (rc != SF_OK || t.kind == SF_TARGET_MULTITRACK)
        return rc == SF_OK ? s_check_track(s, &s->tracks[t.index], err) : rc;

    /* The null-test reference has the master the stems have, so they can null. */
    c->graph_master_fx =
        (t.kind == SF_TARGET_STEM || t.kind == SF_TARGET_FULL_MIX) && s->output.master_apply && s->n_master_fx > 0;
    c->mix_master_fx = t.kind == SF_TARGET_MIX && s->mixes[t.index].master_apply && s->n_master_fx > 0;
    /* A stem's share of a compressor that other stems feed too gets the
     * gain the full mix gets there: the full graph, the companion, renders
     * alongside when some dynamics could be shared. */
    if (t.kind != SF_TARGET_FULL_MIX) {
        bool dyn = s_node_dynamics(c, 0);
        for (size_t b = 0; b < s->n_buses && !dyn; b++)
            dyn = s_chain_has_dynamics(s->buses[b].fx, s->buses[b].n_fx);
        if (dyn) {
            rc = s_check_set(s, c->all_tracks, s->n_tracks, "full mix", err);
            if (rc != SF_OK)
                return rc;
            c->sets[c->n_sets] = (s_set_t){c->all_tracks, s->n_tracks, false};
            c->has_comp = true; /* until s_ctx_reach finds nothing shared */
        }
    }
    rc = s_ctx_plan(c, err);
    if (rc != SF_OK)
        return rc;
    c->gs = sf_calloc(c->n_sets + 1, sizeof *c->gs);
    if (!c->gs)
        return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
    rc = s_ctx_reach(c, err);
    if (rc == SF_OK)
        rc = s_ctx_paths(c, err);
    return rc;
}

static sf_rc s_ctx_alloc(s_ctx_t *c, sf_target_t t, int64_t n_frames, sf_err_t *err)
{
    const sf_session_t *s = c->s;
    c->win_max = n_frames < SF_RENDER_WINDOW ? n_frames : SF_RENDER_WINDOW;
    c->stride = ((size_t)c->win_max + 15) & ~(size_t)15; /* keeps channels 64-byte aligned */
    const size_t stride = c->stride;
    size_t max_set = 0;
    c->max_clips = 0;
    c->max_src_ch = 1;
    for (size_t si = 0; si < s_n_graphs(c); si++) {
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
            !(cb->blk_set = sf_calloc(c->n_blocks, sizeof *cb->blk_set)) ||
            !(cb->blk_need = sf_calloc(c->n_blocks, sizeof *cb->blk_need)))
            goto nomem;
        cb->raw[1] = cb->raw[0] + stride;
    }
    if (t.kind == SF_TARGET_MULTITRACK)
        return SF_OK;

    c->acc = sf_calloc((size_t)c->n_nodes, sizeof *c->acc);
    c->bus_buf = sf_aligned_alloc(sizeof(float) * stride * SF_MAX_CHANNELS);
    c->master_buf = sf_aligned_alloc(sizeof(float) * stride * (size_t)s->master_channels);
    c->out_buf = sf_aligned_alloc(sizeof(float) * stride * (size_t)s_target_channels(s, t));
    c->active = sf_calloc(s->n_tracks ? s->n_tracks : 1, sizeof *c->active);
    c->rcs = sf_calloc(c->n_group, sizeof *c->rcs);
    c->errs = sf_calloc(c->n_group, sizeof *c->errs);
    if (!c->acc || !c->bus_buf || !c->master_buf || !c->out_buf || !c->active || !c->rcs || !c->errs)
        goto nomem;
    if (t.kind == SF_TARGET_MIX &&
        !(c->mix_acc = sf_aligned_alloc(sizeof(double) * stride * (size_t)s->master_channels)))
        goto nomem;
    for (int n = 0; n < c->n_nodes; n++)
        if (c->reach[n] && !(c->acc[n] = sf_aligned_alloc(sizeof(double) * stride * (size_t)c->node_ch[n])))
            goto nomem;
    for (size_t g = 0; g < c->n_groups; g++) {
        s_group_t *gr = &c->groups[g];
        gr->gstride = ((size_t)gr->delay + stride + 15) & ~(size_t)15;
        if (!(gr->buf = sf_aligned_alloc(sizeof(double) * gr->gstride * (size_t)c->node_ch[gr->node])))
            goto nomem;
    }
    for (size_t si = 0; si < s_n_graphs(c) && c->carry_len > 0; si++)
        if (!(c->gs[si].carry = sf_calloc(c->carry_len, sizeof(double))))
            goto nomem;
    return SF_OK;
nomem:
    return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
}

/* The chains of every graph: the companion's first (its leaders are what
 * the stems' followers point at). */
static sf_rc s_ctx_chains(s_ctx_t *c, sf_err_t *err)
{
    const sf_session_t *s = c->s;
    if (!c->any_fx)
        return SF_OK;
    const size_t n_graphs = s_n_graphs(c);
    for (size_t i = 0; i < n_graphs; i++) {
        const size_t si = c->has_comp ? (i + c->n_sets) % n_graphs : i; /* the companion first */
        const bool comp = c->has_comp && si == c->n_sets;
        s_gstate_t *gs = &c->gs[si];
        const s_gstate_t *lead = c->has_comp ? &c->gs[c->n_sets] : NULL;
        const s_set_t *set = &c->sets[si];
        if (set->off)
            continue;
        gs->tracks = sf_calloc(s->n_tracks ? s->n_tracks : 1, sizeof *gs->tracks);
        gs->buses = sf_calloc(s->n_buses ? s->n_buses : 1, sizeof *gs->buses);
        if (!gs->tracks || !gs->buses)
            return SF_ERR(err, SF_E_NOMEM, "out of memory rendering '%s'", s->name);
        for (size_t k = 0; k < set->n; k++) {
            const size_t ti = set->tracks[k];
            const sf_track_t *tr = &s->tracks[ti];
            if (!c->tracks[ti].fx || !s_sounding(c, ti) || gs->tracks[ti].ins)
                continue;
            sf_rc rc = s_chain_init(c, &gs->tracks[ti], tr->fx, tr->n_fx, c->tracks[ti].n_in, S_INS_PROCESS, NULL,
                                    "track", tr->name, err);
            if (rc != SF_OK)
                return rc;
        }
        for (int n = 0; n < c->n_nodes; n++) {
            const sf_insert_t *fx = n == 0 ? s->master_fx : s->buses[n - 1].fx;
            const size_t n_fx = n == 0 ? (c->graph_master_fx ? s->n_master_fx : 0) : s->buses[n - 1].n_fx;
            if (n_fx == 0 || !gs->reach[n])
                continue;
            int mode = S_INS_PROCESS;
            if (comp) {
                for (size_t k = 0; k < c->n_sets && mode == S_INS_PROCESS; k++)
                    mode = c->gs[k].shared[n] ? S_INS_LEAD : S_INS_PROCESS;
            } else if (gs->shared[n]) {
                mode = S_INS_FOLLOW;
            }
            s_chain_t *ch = n == 0 ? &gs->master : &gs->buses[n - 1];
            const s_chain_t *lead_ch = !lead ? NULL : n == 0 ? &lead->master : &lead->buses[n - 1];
            sf_rc rc = s_chain_init(c, ch, fx, n_fx, c->node_ch[n], mode, lead_ch, "bus",
                                    n == 0 ? "master" : s->buses[n - 1].name, err);
            if (rc != SF_OK)
                return rc;
        }
    }
    if (c->mix_master_fx)
        return s_chain_init(c, &c->mix_master, s->master_fx, s->n_master_fx, s->master_channels, S_INS_PROCESS, NULL,
                            "bus", "master", err);
    return SF_OK;
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

/* A track with inserts: its pre-fader signal raw * env * polarity
 * materialised in raw (rounded once), then its chain. From here on it is
 * a clip of gain 1 everywhere in the window (its tail rings where no clip
 * plays). */
static void s_track_fx(const s_track_plan_t *tp, s_chain_t *ch, s_clipbuf_t *cb, int64_t w0, size_t wn)
{
    const double sign = tp->pre_sign;
    const size_t n_blocks = (wn + SF_RENDER_BLOCK - 1) / SF_RENDER_BLOCK;
    for (size_t b = 0; b < n_blocks; b++) {
        const size_t i0 = b * SF_RENDER_BLOCK;
        const size_t len = wn - i0 < SF_RENDER_BLOCK ? wn - i0 : SF_RENDER_BLOCK;
        const double env_c = cb->blk_set[b] ? cb->blk_env[b] : 0.0; /* a gap's env is +0.0 */
        const double *restrict env = cb->env + i0;
        for (int in = 0; in < tp->n_in; in++) {
            float *restrict r = cb->raw[in] + i0;
            if (isnan(env_c)) {
#pragma omp simd
                for (size_t i = 0; i < len; i++)
                    r[i] = (float)((double)r[i] * (env[i] * sign));
            } else {
                const double g = env_c * sign;
#pragma omp simd
                for (size_t i = 0; i < len; i++)
                    r[i] = (float)((double)r[i] * g);
            }
        }
    }
    for (size_t b = 0; b < n_blocks; b++) {
        cb->blk_set[b] = 1;
        cb->blk_env[b] = 1.0;
    }
    if (ch && ch->ins)
        s_chain_run(ch, cb->raw, wn, w0); /* a track's inserts never follow: they cannot fail */
}

/* Renders a group of active tracks of graph gs over the window (each
 * track's chain in its own task) and adds them into the accumulators, in
 * session order. */
static sf_rc s_render_group(s_ctx_t *c, s_gstate_t *gs, const size_t *active, size_t n_active, int64_t w0, size_t wn,
                            sf_err_t *err)
{
    atomic_int first_fail = INT_MAX; /* lowest failed index in the group so far */
    const size_t n_blocks = (wn + SF_RENDER_BLOCK - 1) / SF_RENDER_BLOCK;
    const sf_session_t *s = c->s;

#pragma omp parallel num_threads(c->n_threads)
    {
        const unsigned fp = sf_dsp_denormals_off();
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
            c->rcs[g] =
                s_render_clips(&s->tracks[active[g]], c->tracks[active[g]].from, w0, wn, &c->bufs[g], sc, &c->errs[g]);
            if (c->rcs[g] == SF_OK && c->tracks[active[g]].fx)
                s_track_fx(&c->tracks[active[g]], gs->tracks ? &gs->tracks[active[g]] : NULL, &c->bufs[g], w0, wn);
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
                for (size_t g = 0; g < n_active; g++) { /* session order */
                    const s_track_plan_t *tp = &c->tracks[active[g]];
                    /* automation follows the signal: a chain's output lags by its latency */
                    s_track_add(c, tp, &c->bufs[g], i0, w0 + (int64_t)i0 - tp->lat, len, sc);
                }
            }
        }
        sf_dsp_fp_restore(fp);
    }

    int failed = atomic_load(&first_fail);
    if (failed != INT_MAX) {
        if (err)
            *err = c->errs[failed];
        return c->rcs[failed];
    }
    return SF_OK;
}

static void s_round_node(const s_ctx_t *c, int node, float *buf, size_t wn)
{
    const size_t n_blocks = (wn + SF_RENDER_BLOCK - 1) / SF_RENDER_BLOCK;
    const int n_ch = c->node_ch[node];
    const double *acc = c->acc[node];
#pragma omp parallel num_threads(c->n_threads)
    {
        const unsigned fp = sf_dsp_denormals_off();
#pragma omp for schedule(static)
        for (size_t blk = 0; blk < n_blocks; blk++) {
            const size_t i0 = blk * SF_RENDER_BLOCK;
            const size_t len = wn - i0 < SF_RENDER_BLOCK ? wn - i0 : SF_RENDER_BLOCK;
            for (int ch = 0; ch < n_ch; ch++)
                sf_dsp_f64_to_f32(buf + (size_t)ch * c->stride + i0, acc + (size_t)ch * c->stride + i0, len);
        }
        sf_dsp_fp_restore(fp);
    }
}

/* Dest d of a source sounding in [.., w1) feeds its node in this window,
 * which then sounds until its input has arrived (the edge's delay) and its
 * chain has rung out. */
static void s_feed(s_ctx_t *c, s_gstate_t *gs, const s_dest_t *d, int64_t w1)
{
    const int n = d->node;
    c->live[n] = true;
    const int64_t until = s_sat_add(s_sat_add(w1, d->delay), c->node_pad[n]);
    gs->live_until[n] = s_max64(gs->live_until[n], until);
}

/* The delay groups of graph gs at the start of a window: what the last
 * window left for live nodes, room for this one's inputs. */
static void s_groups_open(const s_ctx_t *c, s_gstate_t *gs, size_t wn)
{
    for (size_t g = 0; g < c->n_groups; g++) {
        const s_group_t *gr = &c->groups[g];
        const size_t d = (size_t)gr->delay;
        double *carry = gs->carry + gr->carry_at;
        for (int ch = 0; ch < c->node_ch[gr->node]; ch++) {
            if (!c->live[gr->node]) {
                memset(carry + (size_t)ch * d, 0, sizeof(double) * d); /* silent already: keeps it exact */
                continue;
            }
            double *buf = gr->buf + (size_t)ch * gr->gstride;
            memcpy(buf, carry + (size_t)ch * d, sizeof(double) * d);
            memset(buf + d, 0, sizeof(double) * wn);
        }
    }
}

/* Adds node n's late inputs into its accumulator (groups in a fixed order)
 * and keeps what spills past the window. */
static void s_groups_close(const s_ctx_t *c, s_gstate_t *gs, int node, size_t wn)
{
    for (size_t g = 0; g < c->n_groups; g++) {
        const s_group_t *gr = &c->groups[g];
        if (gr->node != node)
            continue;
        const size_t d = (size_t)gr->delay;
        for (int ch = 0; ch < c->node_ch[node]; ch++) {
            double *restrict acc = c->acc[node] + (size_t)ch * c->stride;
            const double *restrict buf = gr->buf + (size_t)ch * gr->gstride;
#pragma omp simd
            for (size_t i = 0; i < wn; i++)
                acc[i] += buf[i];
            memcpy(gs->carry + gr->carry_at + (size_t)ch * d, buf + wn, sizeof(double) * d);
        }
    }
}

/* The graph gs (set si) over one window: the master's float signal into
 * c->master_buf. */
static sf_rc s_graph_window(s_ctx_t *c, size_t si, int64_t w0, size_t wn, sf_err_t *err)
{
    const sf_session_t *s = c->s;
    const s_set_t *set = &c->sets[si];
    s_gstate_t *gs = &c->gs[si];
    const int64_t w1 = w0 + (int64_t)wn;
    size_t n_active = 0;
    /* a track with inserts keeps running while its tail rings; past it, its
     * chain goes back to silence */
    for (size_t k = 0; k < set->n; k++) {
        const size_t ti = set->tracks[k];
        const s_track_plan_t *tp = &c->tracks[ti];
        int64_t from = tp->fx ? s_sat_sub(w0, tp->pad) : w0;
        from = from > tp->from ? from : tp->from;
        if (!s->tracks[ti].mute && tp->audible && s_clips_overlap(&s->tracks[ti], from, w1))
            c->active[n_active++] = ti;
        else if (gs->tracks && gs->tracks[ti].running)
            s_chain_reset(&gs->tracks[ti]);
    }
    memset(c->live, 0, sizeof(bool) * (size_t)c->n_nodes);
    for (size_t g = 0; g < n_active; g++) {
        const s_track_plan_t *tp = &c->tracks[c->active[g]];
        for (size_t j = 0; j < tp->n_dests; j++)
            if (tp->dests[j].audible)
                s_feed(c, gs, &tp->dests[j], w1);
    }
    for (size_t k = 0; k < s->n_buses; k++) {
        const size_t b = s->bus_order[k];
        const s_bus_plan_t *bp = &c->buses[b];
        c->live[1 + b] = c->live[1 + b] || w0 < gs->live_until[1 + b];
        if (!c->live[1 + b]) {
            if (gs->buses && gs->buses[b].running)
                s_chain_reset(&gs->buses[b]);
            continue;
        }
        for (size_t j = 0; j < bp->n_dests; j++)
            if (bp->dests[j].audible)
                s_feed(c, gs, &bp->dests[j], w1);
    }
    c->live[0] = c->live[0] || w0 < gs->live_until[0];
    for (int n = 0; n < c->n_nodes; n++)
        if (c->live[n])
            memset(c->acc[n], 0, sizeof(double) * c->stride * (size_t)c->node_ch[n]);
    s_groups_open(c, gs, wn);

    for (size_t g0 = 0; g0 < n_active; g0 += c->n_group) {
        size_t n = n_active - g0 < c->n_group ? n_active - g0 : c->n_group;
        sf_rc rc = s_render_group(c, gs, c->active + g0, n, w0, wn, err);
        if (rc != SF_OK)
            return rc;
    }

    const size_t n_blocks = (wn + SF_RENDER_BLOCK - 1) / SF_RENDER_BLOCK;
    for (size_t k = 0; k < s->n_buses; k++) {
        const size_t b = s->bus_order[k];
        if (!c->live[1 + b])
            continue;
        const s_bus_plan_t *bp = &c->buses[b];
        s_groups_close(c, gs, 1 + (int)b, wn);
        s_round_node(c, 1 + (int)b, c->bus_buf, wn);
        float *sig[SF_MAX_CHANNELS];
        for (int ch = 0; ch < bp->n_ch; ch++)
            sig[ch] = c->bus_buf + (size_t)ch * c->stride;
        if (gs->buses && gs->buses[b].ins && !s_chain_run(&gs->buses[b], sig, wn, w0))
            return SF_ERR(err, SF_E_INTERNAL, "the shared dynamics of bus '%s' have no gain curve", s->buses[b].name);
#pragma omp parallel num_threads(c->n_threads)
        {
            const unsigned fp = sf_dsp_denormals_off();
#pragma omp for schedule(static)
            for (size_t blk = 0; blk < n_blocks; blk++) {
                const size_t i0 = blk * SF_RENDER_BLOCK;
                const size_t len = wn - i0 < SF_RENDER_BLOCK ? wn - i0 : SF_RENDER_BLOCK;
                const float *at[SF_MAX_CHANNELS];
                for (int ch = 0; ch < bp->n_ch; ch++)
                    at[ch] = sig[ch] + i0;
                s_bus_add(c, bp, at, i0, w0 + (int64_t)i0 - bp->lat, len, &c->scratch[s_thread_num()]);
            }
            sf_dsp_fp_restore(fp);
        }
    }

    if (c->live[0]) {
        s_groups_close(c, gs, 0, wn);
        s_round_node(c, 0, c->master_buf, wn);
    } else {
        for (int ch = 0; ch < s->master_channels; ch++)
            memset(c->master_buf + (size_t)ch * c->stride, 0, sizeof(float) * wn);
    }
    return SF_OK;
}

/* The master's chain inside graph gs, on c->master_buf, while the master
 * sounds (its tail included). *ran: it did. */
static sf_rc s_master_chain(s_ctx_t *c, s_gstate_t *gs, int64_t w0, size_t wn, bool *ran, sf_err_t *err)
{
    *ran = false;
    if (!gs->master.ins)
        return SF_OK;
    if (!c->live[0]) {
        if (gs->master.running)
            s_chain_reset(&gs->master);
        return SF_OK;
    }
    float *sig[SF_MAX_CHANNELS];
    for (int ch = 0; ch < c->s->master_channels; ch++)
        sig[ch] = c->master_buf + (size_t)ch * c->stride;
    if (!s_chain_run(&gs->master, sig, wn, w0))
        return SF_ERR(err, SF_E_INTERNAL, "the shared dynamics of the master have no gain curve");
    *ran = true;
    return SF_OK;
}

/* One SF_RENDER_BLOCK block of the output: the master's channels mapped to
 * the target's layout. */
static void s_out_block(const s_ctx_t *c, float *const *out, int n_in, int n_out,
                        double lg[SF_MAX_CHANNELS][SF_MAX_CHANNELS], bool from_float, size_t blk, size_t wn)
{
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
        sf_dsp_f64_to_f32(out[ch] + i0, sum, len);
    }
}

/* out[ch][0..wn) = the master signal in n_out channels. The same layout: the
 * float master. Another: sf_render_layout_gains applied in double to the
 * master's double sum and rounded once -- the float master would add two
 * roundings (measured 0.86 LSB24 against 0.6 on a mono fold of a stereo
 * mix). A master whose effects ran converts its float signal instead
 * (from_float). */
static void s_master_to(const s_ctx_t *c, int n_out, float *const *out, size_t wn, bool from_float)
{
    const int n_in = c->s->master_channels;
    if (n_in == n_out) {
        for (int ch = 0; ch < n_out; ch++)
            memcpy(out[ch], c->master_buf + (size_t)ch * c->stride, sizeof(float) * wn);
        return;
    }
    if (!c->live[0] && !from_float) {
        for (int ch = 0; ch < n_out; ch++)
            memset(out[ch], 0, sizeof(float) * wn);
        return;
    }
    double lg[SF_MAX_CHANNELS][SF_MAX_CHANNELS];
    sf_render_layout_gains(n_in, n_out, lg);
    const size_t n_blocks = (wn + SF_RENDER_BLOCK - 1) / SF_RENDER_BLOCK;
#pragma omp parallel num_threads(c->n_threads)
    {
        const unsigned fp = sf_dsp_denormals_off();
#pragma omp for schedule(static)
        for (size_t blk = 0; blk < n_blocks; blk++)
            s_out_block(c, out, n_in, n_out, lg, from_float, blk, wn);
        sf_dsp_fp_restore(fp);
    }
}

/* MIX: the stems in stem order, each at its gain, summed in double; then
 * the master chain on the sum while it sounds. */
static sf_rc s_mix_window(s_ctx_t *c, const sf_mix_t *mix, int64_t w0, size_t wn, sf_err_t *err)
{
    const sf_session_t *s = c->s;
    const int n_master = s->master_channels;
    bool fed = false;
    for (int ch = 0; ch < n_master; ch++)
        memset(c->mix_acc + (size_t)ch * c->stride, 0, sizeof(double) * wn);
    for (size_t k = 0; k < s->n_stems; k++) {
        if (c->sets[k].off)
            continue;
        sf_rc rc = s_graph_window(c, k, w0, wn, err);
        if (rc != SF_OK)
            return rc;
        if (!c->live[0])
            continue;
        fed = true;
        const float g = (float)sf_dsp_db_to_gain(mix->stem_gain_db[k]);
        for (int ch = 0; ch < n_master; ch++)
            sf_dsp_mix_f64(c->mix_acc + (size_t)ch * c->stride, c->master_buf + (size_t)ch * c->stride, wn, g);
    }
    for (int ch = 0; ch < n_master; ch++)
        sf_dsp_f64_to_f32(c->master_buf + (size_t)ch * c->stride, c->mix_acc + (size_t)ch * c->stride, wn);
    if (!c->mix_master.ins)
        return SF_OK;
    if (fed)
        c->mix_live_until = s_max64(c->mix_live_until, s_sat_add(w0 + (int64_t)wn, c->mix_pad));
    if (fed || w0 < c->mix_live_until) {
        float *sig[SF_MAX_CHANNELS];
        for (int ch = 0; ch < n_master; ch++)
            sig[ch] = c->master_buf + (size_t)ch * c->stride;
        s_chain_run(&c->mix_master, sig, wn, w0);
    } else if (c->mix_master.running) {
        s_chain_reset(&c->mix_master);
    }
    return SF_OK;
}

/* Renders frames [r0, r0 + n_total) of the graph and keeps output frames
 * [skip, n_total) in out: the pre-roll and the latency are dropped. */
static sf_rc s_render_graph(s_ctx_t *c, sf_target_t t, int64_t r0, int64_t n_total, int64_t skip, float *const *out,
                            atomic_int_least64_t *progress, sf_err_t *err)
{
    const sf_session_t *s = c->s;
    const int n_out = s_target_channels(s, t);
    float *obuf[SF_MAX_CHANNELS];
    for (int ch = 0; ch < n_out; ch++)
        obuf[ch] = c->out_buf + (size_t)ch * c->stride;
    for (int64_t done = 0; done < n_total; done += c->win_max) {
        const int64_t w0 = r0 + done;
        const size_t wn = (size_t)(n_total - done < c->win_max ? n_total - done : c->win_max);
        sf_rc rc = SF_OK;
        bool fx = false;
        if (c->has_comp) { /* first: the curves that the stems' shared dynamics follow */
            rc = s_graph_window(c, c->n_sets, w0, wn, err);
            if (rc == SF_OK)
                rc = s_master_chain(c, &c->gs[c->n_sets], w0, wn, &fx, err);
        }
        if (rc == SF_OK && t.kind == SF_TARGET_MIX) {
            rc = s_mix_window(c, &s->mixes[t.index], w0, wn, err);
            fx = true; /* the float sum */
        } else if (rc == SF_OK) {
            rc = s_graph_window(c, 0, w0, wn, err);
            if (rc == SF_OK)
                rc = s_master_chain(c, &c->gs[0], w0, wn, &fx, err);
        }
        if (rc != SF_OK)
            return rc;
        if (progress)
            atomic_store_explicit(progress, done + (int64_t)wn, memory_order_relaxed);
        s_master_to(c, n_out, obuf, wn, fx);
        const int64_t from = done < skip ? skip - done : 0;
        if (from >= (int64_t)wn)
            continue;
        for (int ch = 0; ch < n_out; ch++)
            memcpy(out[ch] + (done + from - skip), obuf[ch] + from, sizeof(float) * (wn - (size_t)from));
    }
    return SF_OK;
}

static sf_rc s_render_multitrack(s_ctx_t *c, const sf_track_t *t, int64_t start, int64_t n_frames, float *const *out,
                                 atomic_int_least64_t *progress, sf_err_t *err)
{
    for (int64_t done = 0; done < n_frames; done += c->win_max) {
        const int64_t w0 = start + done;
        const size_t wn = (size_t)(n_frames - done < c->win_max ? n_frames - done : c->win_max);
        if (progress)
            atomic_store_explicit(progress, done, memory_order_relaxed);
        if (!s_clips_overlap(t, w0, w0 + (int64_t)wn))
            continue; /* out is already silent */
        const s_clipbuf_t *cb = &c->bufs[0];
        sf_rc rc = s_render_clips(t, INT64_MIN, w0, wn, &c->bufs[0], &c->scratch[0], err);
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
    return sf_render_progress(s, t, start, n_frames, preroll, out, NULL, err);
}

sf_rc sf_render_progress(const sf_session_t *s, sf_target_t t, int64_t start, int64_t n_frames, int64_t preroll,
                         float *const *out, atomic_int_least64_t *progress, sf_err_t *err)
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
    if (n_frames == 0)
        return SF_OK;

    s_ctx_t c = {0};
    /* the serial parts (bus and master chains) run on this thread */
    const unsigned fp = sf_dsp_denormals_off();
    rc = s_ctx_prepare(&c, s, t, err);
    /* Without an effect that keeps state the pre-roll would be rendered and
     * discarded without changing a sample: it is skipped. With one, the
     * render starts at start - preroll, and runs `latency` frames longer to
     * read the output where the timeline's frames come out. */
    int64_t pre = c.any_fx ? preroll : 0;
    /* ... and starts on the block grid of the effects that work in blocks,
     * so their blocks (and rounding) match between segments */
    if (c.any_fx && start > INT64_MIN / 4 + pre) {
        const int64_t r0 = start - pre;
        const int64_t m = ((r0 % SF_FX_BLOCK_GRID) + SF_FX_BLOCK_GRID) % SF_FX_BLOCK_GRID;
        pre += m;
    }
    const int64_t lat = c.any_fx ? c.latency : 0;
    const int64_t n_total = s_sat_add(s_sat_add(pre, lat), n_frames);
    if (rc == SF_OK)
        rc = s_ctx_alloc(&c, t, n_total, err);
    if (rc == SF_OK)
        rc = s_ctx_chains(&c, err); /* reports effects that cannot run before the range below */
    if (rc == SF_OK && c.any_fx && (n_total > INT64_MAX / 4 || start < INT64_MIN / 4 + pre || start > INT64_MAX / 4))
        rc = SF_ERR(err, SF_E_INTERNAL, "bad render range (%lld frames, %lld pre-roll, %lld latency)",
                    (long long)n_frames, (long long)pre, (long long)lat);
    /* Each track sounds from its own pre-roll on (no earlier than the
     * render's): the tracks of a dry path start at the segment. */
    for (size_t k = 0; rc == SF_OK && c.any_fx && t.kind != SF_TARGET_MULTITRACK && k < s->n_tracks; k++)
        c.tracks[k].from = start - (c.tracks[k].preroll < pre ? c.tracks[k].preroll : pre);
    if (rc == SF_OK)
        rc = t.kind == SF_TARGET_MULTITRACK
                 ? s_render_multitrack(&c, &s->tracks[t.index], start, n_frames, out, progress, err)
                 : s_render_graph(&c, t, start - pre, pre + lat + n_frames, pre + lat, out, progress, err);
    if (rc == SF_OK && progress)
        atomic_store_explicit(progress, t.kind == SF_TARGET_MULTITRACK ? n_frames : n_total, memory_order_relaxed);
    s_ctx_free(&c);
    sf_dsp_fp_restore(fp);
    return rc;
}

/* sf_render_preroll (want_latency false) or sf_render_latency. */
static int64_t s_path_frames(const sf_session_t *s, sf_target_t t, bool want_latency)
{
    if (s_target_channels(s, t) == 0 || t.kind == SF_TARGET_MULTITRACK)
        return 0;
    s_ctx_t c = {0};
    sf_err_t err = {0};
    sf_rc rc = s_check_graph(s, &err);
    if (rc == SF_OK)
        rc = s_ctx_prepare(&c, s, t, &err);
    int64_t v = rc == SF_E_NOMEM ? -1 : rc != SF_OK || !c.any_fx ? 0 : want_latency ? c.latency : c.preroll_need;
    s_ctx_free(&c);
    return v;
}

int64_t sf_render_preroll(const sf_session_t *s, sf_target_t t) { return s_path_frames(s, t, false); }

sf_rc sf_render_track_prerolls(const sf_session_t *s, sf_target_t t, int64_t *prerolls, sf_err_t *err)
{
    for (size_t k = 0; k < s->n_tracks; k++)
        prerolls[k] = -1;
    if (s_target_channels(s, t) == 0)
        return SF_ERR(err, SF_E_INTERNAL, "no render target %d:%u", (int)t.kind, t.index);
    if (t.kind == SF_TARGET_MULTITRACK) {
        prerolls[t.index] = 0;
        return SF_OK;
    }
    s_ctx_t c = {0};
    sf_rc rc = s_check_graph(s, err);
    if (rc == SF_OK)
        rc = s_ctx_prepare(&c, s, t, err);
    for (size_t si = 0; rc == SF_OK && si < s_n_graphs(&c); si++)
        for (size_t k = 0; k < c.sets[si].n && !c.sets[si].off; k++) {
            const size_t ti = c.sets[si].tracks[k];
            if (s_sounding(&c, ti))
                prerolls[ti] = c.any_fx ? c.tracks[ti].preroll : 0;
        }
    s_ctx_free(&c);
    return rc;
}

int64_t sf_render_latency(const sf_session_t *s, sf_target_t t) { return s_path_frames(s, t, true); }

sf_rc sf_render_stem(const sf_session_t *s, size_t stem_index, int64_t start, int64_t n_frames, int64_t preroll,
                     float *const *out, sf_err_t *err)
{
    if (stem_index >= s->n_stems)
        return SF_ERR(err, SF_E_INTERNAL, "stem %zu of %zu", stem_index, s->n_stems);
    return sf_render(s, (sf_target_t){SF_TARGET_STEM, (uint32_t)stem_index}, start, n_frames, preroll, out, err);
}
