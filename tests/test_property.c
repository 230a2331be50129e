/* test_property.c -- exact stitching as a property of random sessions.
 *
 * DESIGN.md ("Segments and effect tails"): a target rendered in segments of
 * any length, each pre-rolled by sf_render_preroll, stitches to within
 * -120 dBFS of one continuous render of the same target (float32 output),
 * and to the bit where no insert has memory. test_render checks that on
 * sessions someone wrote by hand; here a seeded generator writes random
 * sessions as YAML -- generated sources (noise, tones, bursts, silences),
 * clips with fades and crossfades, gains, pans, polarity, mutes, automation,
 * 0-3 buses of several layouts with sends, stems (some in another layout),
 * mixes, shared bus dynamics, and insert chains drawn from every effect with
 * every parameter anywhere in sf_fx_param_specs' ranges -- loads them with
 * sf_session_load like a user's file, and checks the property for the stems,
 * the full mix and the mixes with segment lengths from 0.5 s to 60 s.
 *
 * Two tests: every effect variant alone (all chains of a session are that
 * effect), and random chains of 0-4 inserts over random sessions, bounded by
 * an iteration count and a wall-clock budget. Everything derives from one
 * 64-bit seed: the low 32 bits key the generator, the high bits name the
 * effect variant the chains are restricted to (0: random chains), so any
 * failing session is reproduced from the seed printed with it (the session
 * file is printed too).
 *
 * Levels. Tails are sized relative to the level an effect holds, dynamics
 * for inputs up to +24 dBFS (sf/fx.h). So the boosts on a path (gain,
 * eq gain, makeup) add up to at most BOOST_MAX_DB, a probe render of the
 * full mix trims every clip so that it peaks at -1 to -12 dBFS, and a target
 * that still peaks above full scale is held to -120 dB below its peak.
 *
 * Cost. 8 kHz sessions keep 60 s segments cheap; tails are drawn within a
 * per-session budget of 1 to 60 s on any path (time-like parameters shrink
 * until an insert fits). Pre-roll is paid per segment, so each target
 * renders its segments in a random order until its share of a time budget
 * is spent (at least MIN_SEGMENTS; all of them for STEMFARM_PROPERTY_SEED),
 * each compared with its slice of the continuous render.
 *
 * Regressions (test_regression_*): minimal sessions for the stitching
 * failures this generator found -- eq and convolve tails measured by one
 * sample instead of the remaining sum, convolve blocks counted from each
 * render's start -- and its generator keeps making what triggered them
 * (held offsets, sub-bass tones, impulse responses with a smooth tail,
 * segment lengths off the block grid).
 *
 * Environment:
 *   STEMFARM_PROPERTY_SEED=N      run only session N (decimal or 0x hex), every segment
 *   STEMFARM_PROPERTY_SEED0=N     first seed of the run (default 0x5f3759df)
 *   STEMFARM_PROPERTY_ITERS=N     random sessions to try (default 40)
 *   STEMFARM_PROPERTY_BUDGET_S=S  wall-clock budget of the random sessions (default 5)
 *   STEMFARM_PROPERTY_VERBOSE=1   a line per session and per target
 *   STEMFARM_PROPERTY_KEEP=1      keep the generated folders (their path is printed)
 * Under ctest OMP_WAIT_POLICY=passive (tests/CMakeLists.txt).
 */
#include "sf/fx.h"
#include "sf/render.h"
#include "sf/session.h"
#include "testutil.h"

#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define RATE               8000
#define BAR                1e-6 /* -120 dB */
#define INF                ((double)INFINITY)
#define MAX_TRACKS         6
#define MAX_BUSES          3
#define MAX_FX             4
#define MAX_CLIPS          3
#define PATH_TAIL_MIN      ((int64_t)1 * RATE)  /* the longest sum of tails on a path the generator */
#define PATH_TAIL_MAX      ((int64_t)60 * RATE) /* draws lies between these (log-uniform) */
#define MAX_TARGETS        4                    /* per session: a random subset when it has more */
#define MIN_SEGMENTS       4                    /* per target, whatever the time budget */
#define SESSION_SEGMENTS_S 0.4                  /* seconds of segment renders per session, shared by its targets */
#define DEFAULT_ITERS      40
#define DEFAULT_BUDGET_S   5.0
#define SEG_MIN            (RATE / 2)             /* 0.5 s */
#define SEG_MAX            ((int64_t)60 * RATE)   /* 60 s */
#define VARIANT_SHIFT      32                     /* seed bits above this name the effect variant */
#define DEFAULT_SEED0      ((uint64_t)0x5f3759df) /* first seed of the default run */
#define TRIM_MARK          "~"                    /* around a clip gain in the YAML template */
#define TRIM_MAX_DB        24.0                   /* the level trim stays within +-this */
#define BOOST_MAX_DB       24.0                   /* sum of the boosts (gain, eq gain, makeup) on a path */

/* ---- the generator's random numbers: splitmix64 -------------------------- */

typedef struct {
    uint64_t s;
} rng_t;

static uint64_t r_next(rng_t *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double r_unit(rng_t *r) { return (double)(r_next(r) >> 11) * 0x1p-53; }
static double r_range(rng_t *r, double lo, double hi) { return lo + (hi - lo) * r_unit(r); }
static double r_log(rng_t *r, double lo, double hi) { return lo * pow(hi / lo, r_unit(r)); }
static bool r_chance(rng_t *r, double p) { return r_unit(r) < p; }
static int r_int(rng_t *r, int lo, int hi) /* inclusive */ { return lo + (int)(r_next(r) % (uint64_t)(hi - lo + 1)); }
static int64_t r_frames(rng_t *r, int64_t lo, int64_t hi) /* inclusive */
{
    return hi <= lo ? lo : lo + (int64_t)(r_next(r) % (uint64_t)(hi - lo + 1));
}

/* ---- growing text --------------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
} str_t;

__attribute__((format(printf, 2, 3))) static void str_add(str_t *s, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(s->p ? s->p + s->n : NULL, s->p ? s->cap - s->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0)
            ck_abort_msg("vsnprintf failed");
        if (s->p && s->n + (size_t)k < s->cap) {
            s->n += (size_t)k;
            return;
        }
        s->cap = (s->cap + (size_t)k + 1) * 2;
        s->p = realloc(s->p, s->cap);
        if (!s->p)
            ck_abort_msg("out of memory");
        if (s->n == 0)
            s->p[0] = '\0';
    }
}

static void str_free(str_t *s)
{
    free(s->p);
    *s = (str_t){0};
}

/* ---- effect variants ------------------------------------------------------ */

typedef struct {
    const char *name;  /* as the session file names it */
    const char *label; /* in reports */
    sf_fx_kind_t kind;
    int eq_type; /* for `eq`: the type drawn; -1 otherwise */
} variant_t;

static const variant_t s_variants[] = {
    {"gain", "gain", SF_FX_GAIN, -1},
    {"eq", "eq peak", SF_FX_EQ, SF_EQ_PEAK},
    {"eq", "eq lowshelf", SF_FX_EQ, SF_EQ_LOWSHELF},
    {"eq", "eq highshelf", SF_FX_EQ, SF_EQ_HIGHSHELF},
    {"eq", "eq lowpass", SF_FX_EQ, SF_EQ_LOWPASS},
    {"eq", "eq highpass", SF_FX_EQ, SF_EQ_HIGHPASS},
    {"eq", "eq bandpass", SF_FX_EQ, SF_EQ_BANDPASS},
    {"eq", "eq notch", SF_FX_EQ, SF_EQ_NOTCH},
    {"highpass", "highpass", SF_FX_EQ, SF_EQ_HIGHPASS},
    {"lowpass", "lowpass", SF_FX_EQ, SF_EQ_LOWPASS},
    {"compressor", "compressor", SF_FX_COMPRESSOR, -1},
    {"limiter", "limiter", SF_FX_LIMITER, -1},
    {"delay", "delay", SF_FX_DELAY, -1},
    {"reverb", "reverb", SF_FX_REVERB, -1},
    {"convolve", "convolve", SF_FX_CONVOLVE, -1},
};
#define N_VARIANTS   ((int)(sizeof s_variants / sizeof *s_variants))
/* indices into s_variants */
#define V_GAIN       0
#define V_EQ         1
#define V_HIGHPASS   8
#define V_LOWPASS    9
#define V_COMPRESSOR 10
#define V_LIMITER    11
#define V_DELAY      12
#define V_REVERB     13
#define V_CONVOLVE   14

static const char *const s_eq_types[] = {"peak", "lowshelf", "highshelf", "lowpass", "highpass", "bandpass", "notch"};

/* Parameters whose larger values make longer tails: the ones the generator
 * shrinks when an insert does not fit the path's tail budget. */
static bool s_time_like(const char *key)
{
    static const char *const keys[] = {"attack_ms", "release_ms", "lookahead_ms", "time_ms",
                                       "feedback",  "decay_s",    "predelay_ms"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!strcmp(key, keys[i]))
            return true;
    return false;
}

static double *s_param_field(sf_fx_params_t *p, const char *key)
{
    switch (p->kind) {
    case SF_FX_GAIN: return !strcmp(key, "db") ? &p->u.gain.db : NULL;
    case SF_FX_EQ:
        return !strcmp(key, "freq")      ? &p->u.eq.freq
               : !strcmp(key, "gain_db") ? &p->u.eq.gain_db
               : !strcmp(key, "q")       ? &p->u.eq.q
                                         : NULL;
    case SF_FX_COMPRESSOR:
        return !strcmp(key, "threshold_db") ? &p->u.compressor.threshold_db
               : !strcmp(key, "ratio")      ? &p->u.compressor.ratio
               : !strcmp(key, "attack_ms")  ? &p->u.compressor.attack_ms
               : !strcmp(key, "release_ms") ? &p->u.compressor.release_ms
               : !strcmp(key, "knee_db")    ? &p->u.compressor.knee_db
               : !strcmp(key, "makeup_db")  ? &p->u.compressor.makeup_db
                                            : NULL;
    case SF_FX_LIMITER:
        return !strcmp(key, "ceiling_db")     ? &p->u.limiter.ceiling_db
               : !strcmp(key, "release_ms")   ? &p->u.limiter.release_ms
               : !strcmp(key, "lookahead_ms") ? &p->u.limiter.lookahead_ms
                                              : NULL;
    case SF_FX_DELAY:
        return !strcmp(key, "time_ms")    ? &p->u.delay.time_ms
               : !strcmp(key, "feedback") ? &p->u.delay.feedback
               : !strcmp(key, "mix")      ? &p->u.delay.mix
                                          : NULL;
    case SF_FX_REVERB:
        return !strcmp(key, "decay_s")       ? &p->u.reverb.decay_s
               : !strcmp(key, "predelay_ms") ? &p->u.reverb.predelay_ms
               : !strcmp(key, "damping")     ? &p->u.reverb.damping
               : !strcmp(key, "mix")         ? &p->u.reverb.mix
                                             : NULL;
    case SF_FX_CONVOLVE: return !strcmp(key, "mix") ? &p->u.convolve.mix : NULL;
    }
    return NULL;
}

/* One value of a parameter anywhere in its range: the ends themselves now
 * and then (they are where off-by-ones live), otherwise log-uniform over
 * ranges spanning decades and uniform elsewhere. `shrink` in (0, 1] pulls
 * the top of the range down (time-like keys only). Printed with 4
 * significant digits when that stays in range, so the YAML reads well and
 * the loader sees the same double. */
static double s_draw_param(rng_t *r, const sf_fx_param_spec_t *sp, double hi_cap, double shrink)
{
    double lo = sp->lo, hi = fmin(sp->hi, hi_cap);
    bool hi_open = sp->hi_exclusive || hi < sp->hi;
    if (s_time_like(sp->key) && shrink < 1) {
        hi = lo > 0 ? lo * pow(hi / lo, shrink) : lo + (hi - lo) * shrink;
        hi_open = true;
    }
    double v, u = r_unit(r);
    if (!strcmp(sp->key, "q") && u < 0.06)
        v = 0.5; /* the double pole, where eq tails are hardest to size */
    else if (u < 0.08)
        v = lo;
    else if (u < 0.16)
        v = hi_open ? lo + (hi - lo) * 0.999 : hi;
    else if (lo > 0 && hi / lo >= 100)
        v = r_log(r, lo, hi);
    else
        v = r_range(r, lo, hi);
    char text[32];
    snprintf(text, sizeof text, "%.4g", v);
    double rounded = strtod(text, NULL);
    bool ok = rounded >= sp->lo && (sp->hi_exclusive ? rounded < sp->hi : rounded <= sp->hi) && rounded <= hi_cap;
    return ok ? rounded : v;
}

/* The shortest text that reads back as v: the YAML stays readable and the
 * loader gets the very double the generator sized the tails with. */
static const char *s_num(double v, char buf[32])
{
    for (int digits = 4; digits <= 17; digits++) {
        snprintf(buf, 32, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

/* ---- sources and impulse responses ----------------------------------------- */

typedef enum { P_SILENCE, P_NOISE, P_TONE, P_BURSTS, P_DC } piece_kind_t;

typedef struct {
    int64_t end; /* a piece covers [previous end, end) */
    piece_kind_t kind;
    double amp;  /* peak, linear */
    double freq; /* tone: Hz; bursts: the decay of each hit, frames */
    int64_t period, on;
    uint64_t seed;
} piece_t;

typedef struct {
    piece_t p[10];
    int n;
} sig_t;

static double s_sig_value(int ch, int64_t i, void *ctx)
{
    const sig_t *g = ctx;
    int k = 0;
    while (k < g->n - 1 && i >= g->p[k].end)
        k++;
    const piece_t *p = &g->p[k];
    const int64_t j = i - (k ? g->p[k - 1].end : 0);
    const uint64_t seed = p->seed + 7919u * (uint64_t)ch;
    switch (p->kind) {
    case P_SILENCE: return 0;
    case P_NOISE: return p->amp * tu_noise(seed, i);
    case P_TONE: return p->amp * sin(2 * M_PI * p->freq * (double)i / RATE + 0.7 * ch);
    case P_BURSTS: {
        int64_t in = j % p->period;
        return in < p->on ? p->amp * exp(-(double)in / p->freq) * tu_noise(seed, i) : 0;
    }
    case P_DC: return p->amp * (ch ? -0.8 : 1.0) * (0.9 + 0.1 * tu_noise(seed, i));
    }
    return 0;
}

/* A source of `frames` at peak level `level` (linear): pieces of noise,
 * tones, percussive bursts and silences, held offsets and
 * tones down to a few Hz, where filter tails are longest. */
static void s_make_sig(rng_t *r, sig_t *g, int64_t frames, double level)
{
    g->n = r_int(r, 1, 10);
    for (int k = 0; k < g->n; k++) {
        piece_t *p = &g->p[k];
        p->end = k == g->n - 1 ? frames : (int64_t)((double)frames * (k + r_unit(r)) / g->n);
        p->kind = (piece_kind_t)r_int(r, 0, P_DC);
        p->amp = level * r_range(r, 0.25, 1.0);
        p->freq = p->kind == P_TONE ? r_log(r, 3, 3900) : r_log(r, 20, 4000);
        p->period = r_frames(r, RATE / 20, 2 * RATE);
        p->on = r_frames(r, 1, p->period);
        p->seed = r_next(r);
    }
    bool sounds = false;
    for (int k = 0; k < g->n; k++)
        sounds = sounds || g->p[k].kind != P_SILENCE;
    if (!sounds)
        g->p[0].kind = P_NOISE; /* a silent source tests nothing */
}

typedef struct {
    double amp;      /* peak */
    double decay_db; /* level at the last frame, dB below the peak */
    int sparse;      /* 0: decaying noise; else that many discrete echoes */
    double smooth;   /* > 0: a direct spike and a same-sign tail this much below it */
    uint64_t seed;
    int64_t frames;
    double taps[16];
    int64_t at[16];
} ir_t;

static double s_ir_value(int ch, int64_t i, void *ctx)
{
    const ir_t *h = ctx;
    double env = h->amp * pow(10.0, -h->decay_db / 20.0 * (double)i / (double)h->frames);
    if (h->smooth > 0)
        return i == 0 ? h->amp : env * h->smooth;
    if (h->sparse) {
        for (int k = 0; k < h->sparse; k++)
            if (h->at[k] == i)
                return h->taps[k] * (ch ? -1 : 1) * env / h->amp;
        return 0;
    }
    return env * tu_noise(h->seed + (uint64_t)ch, i);
}

/* ---- the generated session ------------------------------------------------- */

typedef struct {
    int variant;
    sf_fx_params_t p;
    char text[200];
} g_fx_t;

typedef struct {
    g_fx_t fx[MAX_FX];
    int n;
    int64_t tail; /* sum of the inserts' tails at -144 dB */
    double boost; /* sum of the positive level parameters, dB */
} g_chain_t;

typedef struct {
    int channels;
    int output; /* bus index, -1: master */
    int n_sends;
    int send_to[2];
    g_chain_t chain;
    int64_t down_tail; /* longest tail from its output on */
    double down_boost; /* largest boost from its output on */
} g_bus_t;

typedef struct {
    int channels;
    int stem;
    int output;
    int n_sends;
    int send_to[2];
    g_chain_t chain;
} g_track_t;

typedef struct {
    rng_t r;
    uint64_t seed;
    int forced; /* -1: random chains; else every insert is this variant */
    char *dir;
    str_t yaml, summary;
    char *ir_path[2]; /* mono and stereo impulse responses */
    bool memoryless;  /* only gain inserts are drawn: the stitch must be bit-identical */
    bool memory;      /* some insert has memory: no bit-identity promised */
    bool shared;      /* a bus with dynamics is fed by tracks of several stems */
    int n_inserts[N_VARIANTS];
    int n_replaced; /* inserts that did not fit the tail budget, drawn as gain */
    int master_channels;
    bool master_apply;
    g_chain_t master;
    int n_buses, n_tracks, n_stems;
    g_bus_t buses[MAX_BUSES];
    g_track_t tracks[MAX_TRACKS];
} gen_t;

/* Keys that set a level: what the boost budget counts. */
static bool s_level_key(const sf_fx_param_spec_t *sp)
{
    return !strcmp(sp->key, "db") || (!strcmp(sp->effect, "eq") && !strcmp(sp->key, "gain_db")) ||
           !strcmp(sp->key, "makeup_db");
}

/* Draws one insert of `variant` for a signal of n_channels whose tail fits
 * in `tail_budget` frames (shrinking the time-like parameters, then giving
 * up for a gain insert) and whose boosts fit in `boost_budget` dB with the
 * chain's (clamping them), appends it to the chain. */
static void s_draw_insert(gen_t *g, g_chain_t *c, int variant, int n_channels, int64_t tail_budget, double boost_budget)
{
    const variant_t *v = &s_variants[variant];
    g_fx_t *f = &c->fx[c->n++];
    size_t n_specs;
    const sf_fx_param_spec_t *specs = sf_fx_param_specs(&n_specs);
    for (int attempt = 0;; attempt++) {
        if (attempt == 12) {
            g->n_replaced++;
            v = &s_variants[V_GAIN];
            variant = V_GAIN;
        }
        const double shrink = attempt < 3 ? 1.0 : pow(0.6, attempt - 2);
        memset(&f->p, 0, sizeof f->p);
        f->p.kind = v->kind;
        int eq_type = v->eq_type;
        if (!strcmp(v->name, "eq") && g->forced < 0) {
            eq_type = r_int(&g->r, 0, 6); /* every type, as users write them */
            variant = 1 + eq_type;        /* s_variants lists the eq types in enum order */
        }
        f->variant = variant;
        double boost = 0;
        if (v->kind == SF_FX_EQ)
            f->p.u.eq.type = (sf_eq_type_t)eq_type;
        str_t t = {0};
        str_add(&t, "%s: {", v->name);
        if (!strcmp(v->name, "eq"))
            str_add(&t, "type: %s", s_eq_types[eq_type]);
        int ir = 0;
        if (v->kind == SF_FX_CONVOLVE) {
            ir = n_channels == 2 && r_chance(&g->r, 0.5) ? 1 : 0;
            f->p.u.convolve.ir_path = g->ir_path[ir];
            str_add(&t, "ir: %s", ir ? "media/ir_stereo.wav" : "media/ir_mono.wav");
        }
        bool first = t.p[t.n - 1] == '{';
        for (size_t i = 0; i < n_specs; i++) {
            const sf_fx_param_spec_t *sp = &specs[i];
            if (strcmp(sp->effect, v->name))
                continue;
            const bool gain_used = eq_type < 0 || eq_type == SF_EQ_PEAK || eq_type == SF_EQ_LOWSHELF ||
                                   eq_type == SF_EQ_HIGHSHELF || strcmp(sp->key, "gain_db");
            if (!gain_used)
                continue; /* the loader warns that it does nothing */
            /* optional keys are sometimes left to their defaults */
            double val = !sp->required && r_chance(&g->r, 0.15)
                             ? sp->def
                             : s_draw_param(&g->r, sp, !strcmp(sp->key, "freq") ? RATE / 2.0 - 1 : INF, shrink);
            if (s_level_key(sp) && val > 0) {
                /* boosts beyond the path's budget would push internal levels
                 * past the +24 dBFS that dynamics tails are sized for */
                val = fmin(val, fmax(0, floor(boost_budget - c->boost)));
                boost += val;
            }
            bool written = val != sp->def || sp->required || r_chance(&g->r, 0.5);
            *s_param_field(&f->p, sp->key) = val;
            if (written) {
                char num[32];
                str_add(&t, "%s%s: %s", first ? "" : ", ", sp->key, s_num(val, num));
                first = false;
            }
        }
        str_add(&t, "}");
        int64_t tail = sf_fx_tail_frames(&f->p, RATE, -144.0);
        bool fits = tail >= 0 && tail <= tail_budget - c->tail;
        if (fits || variant == V_GAIN) {
            ck_assert_msg(t.n < sizeof f->text, "insert text too long: %s", t.p);
            memcpy(f->text, t.p, t.n + 1);
            str_free(&t);
            c->tail += tail;
            c->boost += boost;
            g->n_inserts[variant]++;
            g->memory = g->memory || variant != V_GAIN;
            return;
        }
        str_free(&t);
    }
}

static void s_draw_chain(gen_t *g, g_chain_t *c, int n_max, int n_channels, int64_t tail_budget, double boost_budget)
{
    /* every effect name alike; `eq` then draws its type */
    static const int names[] = {V_GAIN,    V_EQ,    V_HIGHPASS, V_LOWPASS, V_COMPRESSOR,
                                V_LIMITER, V_DELAY, V_REVERB,   V_CONVOLVE};
    memset(c, 0, sizeof *c);
    int n = r_int(&g->r, 0, n_max);
    if (g->forced >= 0 && n == 0)
        n = 1;
    for (int k = 0; k < n; k++) {
        int v = g->forced >= 0 ? g->forced : g->memoryless ? V_GAIN : names[r_int(&g->r, 0, 8)];
        s_draw_insert(g, c, v, n_channels, tail_budget, boost_budget);
    }
}

static void s_emit_chain(str_t *y, const g_chain_t *c, const char *indent)
{
    if (!c->n)
        return;
    str_add(y, "%sfx:\n", indent);
    for (int k = 0; k < c->n; k++)
        str_add(y, "%s  - %s\n", indent, c->fx[k].text);
}

static const char *s_layout(int channels)
{
    return channels == 1 ? "mono" : channels == 2 ? "stereo" : channels == 6 ? "5.1" : "7.1";
}

static void s_write_irs(gen_t *g)
{
    for (int k = 0; k < 2; k++) {
        ir_t h = {.amp = r_range(&g->r, 0.2, 1.0), .seed = r_next(&g->r)};
        h.frames = r_frames(&g->r, 16, 4096); /* longer ones only cost time: the block size grows */
        /* Down to 220 dB below the peak: a float IR keeps samples far below
         * the tail threshold, a 24-bit one rounds them to zero. */
        h.decay_db = r_range(&g->r, 30, 220);
        h.sparse = r_chance(&g->r, 0.25) ? r_int(&g->r, 1, 16) : 0;
        h.smooth = !h.sparse && r_chance(&g->r, 0.3) ? pow(10.0, -r_range(&g->r, 20, 80) / 20) : 0;
        for (int i = 0; i < h.sparse; i++) {
            h.at[i] = r_frames(&g->r, 0, h.frames - 1);
            h.taps[i] = r_range(&g->r, -h.amp, h.amp);
        }
        int bits = r_chance(&g->r, 0.5) ? 32 : 24;
        g->ir_path[k] = tu_write_wav(g->dir, k ? "media/ir_stereo.wav" : "media/ir_mono.wav", k + 1, RATE, h.frames,
                                     bits, s_ir_value, &h);
        str_add(&g->summary, "%sir %s %lld fr %s -%.0f dB%s", k ? ", " : " [", k ? "stereo" : "mono",
                (long long)h.frames, bits == 32 ? "float" : "pcm24", h.decay_db, k ? "]" : "");
        if (h.sparse)
            str_add(&g->summary, "(%d taps)", h.sparse);
        if (h.smooth > 0)
            str_add(&g->summary, "(smooth tail)");
    }
}

/* The summary line's list of inserts. */
static void s_sum_chain(gen_t *g, const char *owner, const g_chain_t *c)
{
    if (!c->n)
        return;
    str_add(&g->summary, " %s[", owner);
    for (int k = 0; k < c->n; k++)
        str_add(&g->summary, "%s%s", k ? " " : "", s_variants[c->fx[k].variant].label);
    str_add(&g->summary, "]");
}

/* The longest tail and the largest boost from an output (bus index or -1,
 * the master) and sends on to the master's output. */
static void s_downstream(const gen_t *g, bool master_runs, int output, const int *send_to, int n_sends, int64_t *tail,
                         double *boost)
{
    *tail = output >= 0 ? g->buses[output].down_tail : master_runs ? g->master.tail : 0;
    *boost = output >= 0 ? g->buses[output].down_boost : master_runs ? g->master.boost : 0;
    for (int k = 0; k < n_sends; k++) {
        *tail = *tail > g->buses[send_to[k]].down_tail ? *tail : g->buses[send_to[k]].down_tail;
        *boost = fmax(*boost, g->buses[send_to[k]].down_boost);
    }
}

/* Writes a random session (YAML and media) for `seed` into g->dir. */
static void s_generate(gen_t *g)
{
    rng_t *r = &g->r;
    const int64_t span = r_frames(r, 30 * RATE, 90 * RATE); /* where clips may lie */
    const int64_t path_max = (int64_t)r_log(r, (double)PATH_TAIL_MIN, (double)PATH_TAIL_MAX);
    g->memoryless = g->forced < 0 && r_chance(r, 0.15);
    g->memory = false;
    s_write_irs(g);

    g->master_channels = r_chance(r, 0.8) ? 2 : r_chance(r, 0.5) ? 1 : 6;
    g->n_buses = r_int(r, 0, MAX_BUSES);
    g->n_tracks = r_int(r, 2, MAX_TRACKS);
    g->n_stems = r_int(r, 1, g->n_tracks < 4 ? g->n_tracks : 4);
    const bool master_fx = r_chance(r, 0.4) || (g->forced >= 0 && r_chance(r, 0.5));
    const bool mix_apply = master_fx && r_chance(r, 0.5);
    g->master_apply = master_fx && r_chance(r, 0.6);

    /* Master chain first, then buses from the last (nearest the master) back:
     * each chain's budget is what its downstream path leaves, so no path
     * sums to more than path_max. */
    memset(&g->master, 0, sizeof g->master);
    if (master_fx)
        s_draw_chain(g, &g->master, 3, g->master_channels, path_max / 4, r_range(r, 0, BOOST_MAX_DB));
    const bool master_runs = g->master_apply || mix_apply;
    for (int b = g->n_buses - 1; b >= 0; b--) {
        g_bus_t *bus = &g->buses[b];
        bus->channels = r_chance(r, 0.7) ? 2 : r_chance(r, 0.6) ? 1 : 6;
        bus->output = b + 1 < g->n_buses && r_chance(r, 0.4) ? r_int(r, b + 1, g->n_buses - 1) : -1;
        bus->n_sends = 0;
        if (b + 1 < g->n_buses && r_chance(r, 0.3)) {
            int to = r_int(r, b + 1, g->n_buses - 1);
            if (to != bus->output)
                bus->send_to[bus->n_sends++] = to;
        }
        int64_t down;
        double down_boost;
        s_downstream(g, master_runs, bus->output, bus->send_to, bus->n_sends, &down, &down_boost);
        s_draw_chain(g, &bus->chain, 3, bus->channels, (int64_t)((double)(path_max - down) * r_range(r, 0.3, 0.7)),
                     (BOOST_MAX_DB - down_boost) * r_range(r, 0.3, 1.0));
        bus->down_tail = down + bus->chain.tail;
        bus->down_boost = down_boost + bus->chain.boost;
    }

    /* Stems: every track in exactly one, none empty. */
    for (int t = 0; t < g->n_tracks; t++) {
        g_track_t *tr = &g->tracks[t];
        tr->channels = r_chance(r, 0.45) ? 2 : 1;
        tr->stem = t < g->n_stems ? t : r_int(r, 0, g->n_stems - 1);
        tr->output = g->n_buses && r_chance(r, 0.6) ? r_int(r, 0, g->n_buses - 1) : -1;
        tr->n_sends = 0;
        for (int k = 0; k < 2 && g->n_buses; k++) {
            int to = r_int(r, 0, g->n_buses - 1);
            if (r_chance(r, 0.3) && to != tr->output && (k == 0 || to != tr->send_to[0]))
                tr->send_to[tr->n_sends++] = to;
        }
    }
    /* Shared dynamics: a bus compressor (or limiter) that tracks of several
     * stems feed, so a stem's share takes the whole bus's gain. */
    g->shared = false;
    const bool want_shared =
        g->n_buses && g->n_stems > 1 && !g->memoryless &&
        (g->forced < 0 ? r_chance(r, 0.35)
                       : s_variants[g->forced].kind == SF_FX_COMPRESSOR || s_variants[g->forced].kind == SF_FX_LIMITER);
    if (want_shared) {
        g_bus_t *bus = &g->buses[0];
        g->tracks[0].output = 0;
        g->tracks[1].output = 0; /* tracks 0 and 1 are in stems 0 and 1 */
        bool dyn = false;
        for (int k = 0; k < bus->chain.n; k++)
            dyn = dyn || sf_fx_is_dynamics(bus->chain.fx[k].p.kind);
        if (!dyn && bus->chain.n < MAX_FX) {
            int v = g->forced >= 0 ? g->forced : r_chance(r, 0.7) ? V_COMPRESSOR : V_LIMITER;
            g_chain_t c = bus->chain;
            s_draw_insert(g, &c, v, bus->channels, path_max - (bus->down_tail - bus->chain.tail),
                          BOOST_MAX_DB - (bus->down_boost - bus->chain.boost));
            /* the dynamics first: the shares are not yet mixed with anything */
            g_fx_t last = c.fx[c.n - 1];
            memmove(&c.fx[1], &c.fx[0], sizeof c.fx[0] * (size_t)(c.n - 1));
            c.fx[0] = last;
            bus->down_tail += c.tail - bus->chain.tail;
            bus->down_boost += c.boost - bus->chain.boost;
            bus->chain = c;
            dyn = sf_fx_is_dynamics(last.p.kind);
        }
        g->shared = dyn;
    }

    str_t *y = &g->yaml;
    const int64_t start = r_chance(r, 0.3) ? r_frames(r, 0, 5 * RATE) : 0;
    str_add(y, "version: 1\n");
    str_add(y, "session: {name: P%llx, sample_rate: %d, start: %lld}\n", (unsigned long long)g->seed, RATE,
            (long long)start);
    str_add(y, "output: {sample_format: float32, master: %s}\n", g->master_apply ? "apply" : "bypass");
    str_add(y, "master:\n  channels: %s\n", s_layout(g->master_channels));
    s_emit_chain(y, &g->master, "  ");

    str_add(y, "tracks:\n");
    for (int t = 0; t < g->n_tracks; t++) {
        g_track_t *tr = &g->tracks[t];
        int64_t down;
        double down_boost;
        s_downstream(g, master_runs, tr->output, tr->send_to, tr->n_sends, &down, &down_boost);
        s_draw_chain(g, &tr->chain, MAX_FX, tr->channels, path_max - down > 0 ? path_max - down : 0,
                     BOOST_MAX_DB - down_boost);

        const double level_db = -r_range(r, 1, 20);
        const bool pick = tr->channels == 1 && r_chance(r, 0.2); /* a channel of a stereo file */
        const int file_ch = pick ? 2 : tr->channels;
        sig_t sig;
        const int64_t src_frames = r_frames(r, RATE / 2, 30 * RATE);
        s_make_sig(r, &sig, src_frames, pow(10.0, level_db / 20));
        char name[64];
        snprintf(name, sizeof name, "media/t%d.wav", t);
        free(tu_write_wav(g->dir, name, file_ch, RATE, src_frames, r_chance(r, 0.5) ? 32 : 24, s_sig_value, &sig));

        str_add(y, "  - name: T%d\n", t);
        str_add(y, "    clips:\n");
        int n_clips = r_int(r, 1, MAX_CLIPS);
        int64_t prev_at = -1, prev_end = -1;
        for (int k = 0; k < n_clips; k++) {
            int64_t offset = r_frames(r, 0, src_frames / 2);
            int64_t length = r_frames(r, 1, src_frames - offset);
            int64_t at = r_frames(r, 0, span > length ? span - length : 0);
            if (prev_at >= 0 && r_chance(r, 0.3))
                at = r_frames(r, prev_at, prev_end); /* overlapping the previous one */
            str_add(y, "      - {source: %s, at: %lld, offset: %lld, length: %lld", name, (long long)at,
                    (long long)offset, (long long)length);
            if (pick)
                str_add(y, ", channel: %d", r_int(r, 1, 2));
            /* the level trim (s_trimmed) goes into every clip's gain */
            str_add(y, ", gain_db: " TRIM_MARK "%.3g" TRIM_MARK, r_chance(r, 0.3) ? r_range(r, -12, 6) : 0.0);
            int64_t fin = r_chance(r, 0.5) ? r_frames(r, 0, length / 3) : 0;
            int64_t fout = r_chance(r, 0.5) ? r_frames(r, 0, length / 3) : 0;
            if (fin)
                str_add(y, ", fade_in: %lld", (long long)fin);
            if (fout)
                str_add(y, ", fade_out: {length: %lld, shape: %s}", (long long)fout,
                        r_chance(r, 0.5) ? "linear" : "equal_power");
            if (k && r_chance(r, 0.3))
                str_add(y, ", crossfade: %lld", (long long)r_frames(r, 0, length < RATE ? length : RATE));
            str_add(y, "}\n");
            prev_at = at;
            prev_end = at + length;
        }
        str_add(y, "    gain_db: %.3g\n    pan: %.3g\n", r_range(r, -12, 3), r_chance(r, 0.3) ? 0 : r_range(r, -1, 1));
        if (r_chance(r, 0.15))
            str_add(y, "    polarity: invert\n");
        if (r_chance(r, 0.05))
            str_add(y, "    mute: true\n");
        if (tr->output >= 0)
            str_add(y, "    output: B%d\n", tr->output);
        if (tr->n_sends) {
            str_add(y, "    sends:\n");
            for (int k = 0; k < tr->n_sends; k++)
                str_add(y, "      - {to: B%d, level_db: %.3g, pre_fader: %s}\n", tr->send_to[k], r_range(r, -20, 0),
                        r_chance(r, 0.5) ? "true" : "false");
        }
        if (r_chance(r, 0.25)) {
            str_add(y, "    automation:\n      gain_db: [");
            int64_t f = r_frames(r, 0, span / 4);
            int n = r_int(r, 2, 5);
            for (int k = 0; k < n; k++, f += r_frames(r, 1, span / 4))
                str_add(y, "%s[%lld, %s]", k ? ", " : "", (long long)f,
                        k == 0 && r_chance(r, 0.3) ? "-inf"
                        : r_chance(r, 0.5)         ? "0"
                                                   : "-9.5");
            str_add(y, "]\n");
            if (r_chance(r, 0.5))
                str_add(y, "      pan: [[%lld, -0.8], [%lld, 0.6]]\n", (long long)r_frames(r, 0, span / 2),
                        (long long)(span / 2 + r_frames(r, 1, span / 2)));
        }
        s_emit_chain(y, &tr->chain, "    ");
    }
    if (g->n_buses) {
        str_add(y, "buses:\n");
        for (int b = 0; b < g->n_buses; b++) {
            const g_bus_t *bus = &g->buses[b];
            str_add(y, "  - name: B%d\n    channels: %s\n    gain_db: %.3g\n", b, s_layout(bus->channels),
                    r_range(r, -6, 3));
            if (bus->output >= 0)
                str_add(y, "    output: B%d\n", bus->output);
            for (int k = 0; k < bus->n_sends; k++)
                str_add(y, "    sends: [{to: B%d, level_db: %.3g}]\n", bus->send_to[k], r_range(r, -12, 0));
            s_emit_chain(y, &bus->chain, "    ");
        }
    }
    str_add(y, "stems:\n");
    for (int st = 0; st < g->n_stems; st++) {
        str_add(y, "  - {name: S%d, tracks: [", st);
        bool first = true;
        for (int t = 0; t < g->n_tracks; t++)
            if (g->tracks[t].stem == st) {
                str_add(y, "%sT%d", first ? "" : ", ", t);
                first = false;
            }
        str_add(y, "]");
        if (r_chance(r, 0.2)) /* converted from the master's layout */
            str_add(y, ", channels: %s", s_layout(r_chance(r, 0.5) ? 1 : 2));
        str_add(y, "}\n");
    }
    if (mix_apply || r_chance(r, 0.3)) {
        str_add(y, "mixes:\n  - {name: M, master: %s, ", mix_apply ? "apply" : "bypass");
        if (g->n_stems > 1 && r_chance(r, 0.4))
            str_add(y, "exclude: [S%d]}\n", r_int(r, 0, g->n_stems - 1));
        else
            str_add(y, "gains_db: {S0: %.3g}}\n", r_range(r, -6, 6));
    }

    str_add(&g->summary, " %d Hz, %d tracks, %d buses, %d stems, master %s%s%s%s", RATE, g->n_tracks, g->n_buses,
            g->n_stems, s_layout(g->master_channels), g->master_apply ? " applied" : "",
            mix_apply ? ", mix applied" : "", g->shared ? ", shared dynamics" : "");
    s_sum_chain(g, "master", &g->master);
    for (int b = 0; b < g->n_buses; b++) {
        char owner[16];
        snprintf(owner, sizeof owner, "B%d", b);
        s_sum_chain(g, owner, &g->buses[b].chain);
    }
    for (int t = 0; t < g->n_tracks; t++) {
        char owner[16];
        snprintf(owner, sizeof owner, "T%d", t);
        s_sum_chain(g, owner, &g->tracks[t].chain);
    }
    if (g->n_replaced)
        str_add(&g->summary, " (%d inserts over the tail budget drawn as gain)", g->n_replaced);
    str_add(&g->summary, "%s", g->memory ? "" : " (no memory: bit-identical)");
}

/* ---- the property ----------------------------------------------------------- */

static bool s_env_flag(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

static uint64_t s_env_u64(const char *name, uint64_t def)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : def;
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double s_db(double x) { return x > 0 ? 20 * log10(x) : -INF; }

/* The YAML with `trim` dB added to every clip gain of the template. */
static char *s_trimmed(const char *tmpl, double trim)
{
    str_t out = {0};
    const char *p = tmpl, *m;
    while ((m = strstr(p, TRIM_MARK))) {
        const char *end = strstr(m + 1, TRIM_MARK);
        ck_assert_ptr_nonnull(end);
        char num[32];
        str_add(&out, "%.*s%s", (int)(m - p), p, s_num(round(100 * (strtod(m + 1, NULL) + trim)) / 100, num));
        p = end + 1;
    }
    str_add(&out, "%s", p);
    return out.p;
}

static sf_session_t *s_load(const char *dir, const char *yaml, const char *summary)
{
    char *path = tu_write_text(dir, "session.yaml", yaml);
    sf_session_t *s = NULL;
    sf_diags_t diags = SF_DIAGS_INIT;
    sf_err_t err = {0};
    sf_session_load_opts_t opts = sf_session_load_opts_default();
    sf_rc rc = sf_session_load(path, &opts, &s, &diags, &err);
    if (rc != SF_OK) {
        fprintf(stderr, "test_property: %s\n%s", summary, yaml);
        sf_diags_print(&diags, stderr);
    }
    sf_diags_free(&diags);
    free(path);
    ck_assert_msg(rc == SF_OK, "the generated session does not load: %s", err.msg);
    return s;
}

typedef struct {
    int n_ch;
    int64_t n_frames;
    float *ch[SF_MAX_CHANNELS];
} buf_t;

static buf_t s_buf(int n_ch, int64_t n_frames)
{
    buf_t b = {n_ch, n_frames, {0}};
    for (int c = 0; c < n_ch; c++) {
        b.ch[c] = calloc((size_t)(n_frames > 0 ? n_frames : 1), sizeof(float));
        ck_assert_ptr_nonnull(b.ch[c]);
    }
    return b;
}

static void s_buf_free(buf_t *b)
{
    for (int c = 0; c < b->n_ch; c++)
        free(b->ch[c]);
    *b = (buf_t){0};
}

/* One continuous render of the region, pre-rolled as the segments are. */
static buf_t s_render_region(const sf_session_t *s, sf_target_t t, int64_t pre)
{
    const int64_t n = sf_session_n_frames(s);
    buf_t b = s_buf(sf_session_target_channels(s, t), n);
    sf_err_t err = {0};
    ck_assert_msg(sf_render(s, t, s->start, n, pre, b.ch, &err) == SF_OK, "continuous render: %s", err.msg);
    return b;
}

/* max |x| over the buffer; -1 when a sample is NaN. No ck_assert inside
 * sample loops: Check logs every assertion's location with a system call. */
static double s_peak(const buf_t *b)
{
    double peak = 0;
    for (int c = 0; c < b->n_ch; c++)
        for (int64_t i = 0; i < b->n_frames; i++) {
            const double a = fabs((double)b->ch[c][i]);
            if (a != a)
                return -1;
            peak = a > peak ? a : peak;
        }
    return peak;
}

/* The timeline frame where the first clip starts. */
static int64_t s_first_clip(const sf_session_t *s)
{
    int64_t first = INT64_MAX;
    for (size_t t = 0; t < s->n_tracks; t++)
        for (size_t k = 0; k < s->tracks[t].n_clips; k++)
            first = s->tracks[t].clips[k].at < first ? s->tracks[t].clips[k].at : first;
    return first;
}

/* What one target did. */
typedef struct {
    double worst, peak; /* max |stitched - continuous|; max |continuous| */
    int worst_ch;
    int64_t worst_at; /* frame in the region */
    float cont_v, seg_v;
    bool identical;
    int64_t n_segs, n_rendered, seg_len, preroll;
    int64_t n_warm; /* rendered segments whose pre-roll starts after the first clip: the state had history */
} result_t;

/* Renders target t over the region continuously and in segments of
 * seg_len frames, each with the target's pre-roll, and compares. Pre-roll
 * is paid per segment, so segments are rendered in a random order, at least
 * MIN_SEGMENTS of them, until `budget_s` seconds have passed: a slower
 * machine checks a prefix of the same list. */
static void s_stitch(const sf_session_t *s, sf_target_t t, int64_t seg_len, double budget_s, rng_t *r, result_t *res)
{
    const int64_t start = s->start, n = sf_session_n_frames(s);
    const int64_t pre = sf_render_preroll(s, t);
    ck_assert_msg(pre >= 0, "sf_render_preroll: %lld", (long long)pre);
    memset(res, 0, sizeof *res);
    res->seg_len = seg_len;
    res->preroll = pre;
    res->n_segs = (n + seg_len - 1) / seg_len;
    buf_t cont = s_render_region(s, t, pre), seg = s_buf(cont.n_ch, n);
    res->peak = s_peak(&cont);
    ck_assert_msg(res->peak >= 0, "the continuous render of '%s' holds NaN", sf_session_target_name(s, t));

    int64_t *order = malloc(sizeof *order * (size_t)res->n_segs);
    ck_assert_ptr_nonnull(order);
    for (int64_t k = 0; k < res->n_segs; k++)
        order[k] = k;
    for (int64_t k = res->n_segs - 1; k > 0; k--) { /* Fisher-Yates */
        int64_t j = r_frames(r, 0, k), tmp = order[k];
        order[k] = order[j];
        order[j] = tmp;
    }
    res->identical = true;
    sf_err_t err = {0};
    const double t0 = s_now();
    for (int64_t o = 0; o < res->n_segs && (o < MIN_SEGMENTS || s_now() - t0 < budget_s); o++) {
        const int64_t at = order[o] * seg_len, len = n - at < seg_len ? n - at : seg_len;
        float *dst[SF_MAX_CHANNELS];
        for (int c = 0; c < cont.n_ch; c++)
            dst[c] = seg.ch[c] + at;
        ck_assert_msg(sf_render(s, t, start + at, len, pre, dst, &err) == SF_OK, "segment %lld: %s",
                      (long long)order[o], err.msg);
        res->n_rendered++;
        res->n_warm += start + at - pre > s_first_clip(s);
        for (int c = 0; c < cont.n_ch; c++) {
            if (memcmp(cont.ch[c] + at, dst[c], sizeof(float) * (size_t)len) != 0)
                res->identical = false;
            for (int64_t i = at; i < at + len; i++) {
                const double d = fabs((double)seg.ch[c][i] - (double)cont.ch[c][i]);
                if (d > res->worst || d != d) {
                    res->worst = d != d ? INF : d;
                    res->worst_ch = c;
                    res->worst_at = i;
                    res->cont_v = cont.ch[c][i];
                    res->seg_v = seg.ch[c][i];
                }
            }
        }
    }
    free(order);
    s_buf_free(&cont);
    s_buf_free(&seg);
}

/* Worst residuals, dB relative to max(full scale, the target's peak), per
 * effect variant present in the session: a variant's own sessions make the
 * attribution exact, random chains blame every variant they hold. */
typedef struct {
    double worst_db[N_VARIANTS];
    int n_targets[N_VARIANTS];
    double none_db; /* sessions without inserts with memory */
    int n_none;
    int n_sessions, n_targets_all, n_hot, n_sampled, n_identical, n_short;
    int64_t n_segments, n_warm;
} stats_t;

static void s_stats_init(stats_t *st)
{
    memset(st, 0, sizeof *st);
    for (int v = 0; v < N_VARIANTS; v++)
        st->worst_db[v] = -INF;
    st->none_db = -INF;
}

/* Generates, loads and checks session `seed` with `budget_s` seconds of
 * segments per target (INF: all of them); false (after printing why, the
 * session and how to reproduce it) when the property does not hold. */
static bool s_run_session(uint64_t seed, double budget_s, stats_t *st)
{
    const bool verbose = s_env_flag("STEMFARM_PROPERTY_VERBOSE");
    const double t_gen = s_now();
    gen_t g = {.seed = seed, .forced = (int)(seed >> VARIANT_SHIFT) - 1};
    ck_assert_msg(g.forced < N_VARIANTS, "seed 0x%llx names no effect variant", (unsigned long long)seed);
    g.r.s = seed;
    g.dir = tu_tmpdir();
    str_add(&g.summary, "seed 0x%llx:", (unsigned long long)seed);
    if (g.forced >= 0)
        str_add(&g.summary, " %s alone,", s_variants[g.forced].label);
    s_generate(&g);

    /* Level: the clips are trimmed so that the full mix peaks at -1 to
     * -12 dBFS, where users deliver and where dynamics engage (the sources'
     * levels and the chains' gains are random, and may leave it anywhere). */
    char *yaml = s_trimmed(g.yaml.p, 0);
    sf_session_t *s = s_load(g.dir, yaml, g.summary.p);
    const sf_target_t full = {SF_TARGET_FULL_MIX, 0};
    buf_t probe = s_render_region(s, full, sf_render_preroll(s, full));
    const double probe_peak = s_peak(&probe);
    s_buf_free(&probe);
    ck_assert_msg(probe_peak >= 0, "seed 0x%llx: the full mix holds NaN", (unsigned long long)seed);
    if (probe_peak > 0) {
        /* within what a user's clip gains do: internal levels far above
         * full scale are outside what the tails are sized for (sf/fx.h) */
        const double trim =
            round(100 * fmin(TRIM_MAX_DB, fmax(-TRIM_MAX_DB, -r_range(&g.r, 1, 12) - s_db(probe_peak)))) / 100;
        str_add(&g.summary, " clips trimmed %+.1f dB", trim);
        free(yaml);
        sf_session_destroy(&s);
        yaml = s_trimmed(g.yaml.p, trim);
        s = s_load(g.dir, yaml, g.summary.p);
    }
    const int64_t n = sf_session_n_frames(s);
    if (verbose)
        fprintf(stderr, "test_property: %s, region %.1f s (generated in %.2f s)\n", g.summary.p, (double)n / RATE,
                s_now() - t_gen);

    /* every stem, the full mix and the mixes; a random few of them when
     * there are more than MAX_TARGETS (each costs a continuous render) */
    sf_target_t targets[8];
    size_t n_targets = 0;
    for (size_t k = 0; k < sf_session_target_count(s, SF_TARGET_STEM); k++)
        targets[n_targets++] = (sf_target_t){SF_TARGET_STEM, (uint32_t)k};
    targets[n_targets++] = full;
    for (size_t k = 0; k < sf_session_target_count(s, SF_TARGET_MIX); k++)
        targets[n_targets++] = (sf_target_t){SF_TARGET_MIX, (uint32_t)k};
    while (n_targets > MAX_TARGETS) {
        size_t drop = (size_t)r_int(&g.r, 0, (int)n_targets - 1);
        memmove(&targets[drop], &targets[drop + 1], sizeof *targets * (n_targets - drop - 1));
        n_targets--;
    }
    bool ok = true;
    for (size_t k = 0; k < n_targets && ok; k++) {
        const sf_target_t t = targets[k];
        /* 0.5 s for the first target (short against most tails) and now and
         * then, else anywhere up to 60 s */
        int64_t seg_len =
            k == 0 || r_chance(&g.r, 0.2) ? SEG_MIN : (int64_t)llround(r_log(&g.r, (double)SEG_MIN, (double)SEG_MAX));
        result_t res;
        const double t0 = s_now();
        s_stitch(s, t, seg_len, budget_s / (double)n_targets, &g.r, &res);
        const double scale = fmax(1.0, res.peak);
        const double rel_db = s_db(res.worst / scale);
        const bool pass = g.memory ? res.worst <= BAR * scale : res.identical;
        st->n_targets_all++;
        st->n_hot += res.peak > 1.0;
        st->n_sampled += res.n_rendered < res.n_segs;
        st->n_identical += res.identical;
        st->n_short += res.n_rendered > 2 && res.preroll > 4 * seg_len;
        st->n_segments += res.n_rendered;
        st->n_warm += res.n_warm;
        if (!g.memory) {
            st->none_db = fmax(st->none_db, rel_db);
            st->n_none++;
        }
        for (int v = 0; v < N_VARIANTS; v++)
            if (g.n_inserts[v] > 0) {
                st->worst_db[v] = fmax(st->worst_db[v], rel_db);
                st->n_targets[v]++;
            }
        if (verbose || !pass)
            fprintf(stderr,
                    "test_property: %s %-8s L %.3f s, pre-roll %.2f s, %lld/%lld segments (%lld warm) in %.2f s: "
                    "peak %.1f dBFS, residual %.1f dB%s%s\n",
                    pass ? "ok  " : "FAIL", sf_session_target_name(s, t), (double)seg_len / RATE,
                    (double)res.preroll / RATE, (long long)res.n_rendered, (long long)res.n_segs, (long long)res.n_warm,
                    s_now() - t0, s_db(res.peak), rel_db, res.peak > 1 ? " (relative to the peak)" : " (dBFS)",
                    res.identical ? ", bit-identical" : "");
        if (!pass) {
            fprintf(stderr,
                    "test_property: worst at channel %d, region frame %lld (segment %lld + %lld): continuous %.9g, "
                    "stitched %.9g\n",
                    res.worst_ch, (long long)res.worst_at, (long long)(res.worst_at / seg_len),
                    (long long)(res.worst_at % seg_len), (double)res.cont_v, (double)res.seg_v);
            fprintf(stderr, "test_property: %s\n--- session.yaml ---\n%s--- reproduce: STEMFARM_PROPERTY_SEED=0x%llx\n",
                    g.summary.p, yaml, (unsigned long long)seed);
            ok = false;
        }
    }
    st->n_sessions++;
    sf_session_destroy(&s);
    if (s_env_flag("STEMFARM_PROPERTY_KEEP"))
        fprintf(stderr, "test_property: kept %s\n", g.dir);
    else
        tu_rm_rf(g.dir);
    free(g.dir);
    free(yaml);
    free(g.ir_path[0]);
    free(g.ir_path[1]);
    str_free(&g.yaml);
    str_free(&g.summary);
    return ok;
}

static void s_print_stats(const char *what, const stats_t *st, double seconds)
{
    fprintf(stderr,
            "test_property: %s: %d sessions, %d targets, %lld segments (%lld warm) in %.1f s: %d targets "
            "bit-identical, %d with segments sampled, %d with pre-roll over 4 segment lengths, %d above full scale\n",
            what, st->n_sessions, st->n_targets_all, (long long)st->n_segments, (long long)st->n_warm, seconds,
            st->n_identical, st->n_sampled, st->n_short, st->n_hot);
    if (st->n_none)
        fprintf(stderr, "test_property:   %-13s worst %7.1f dB over %d targets\n", "(no memory)", st->none_db,
                st->n_none);
    for (int v = 0; v < N_VARIANTS; v++)
        if (st->n_targets[v])
            fprintf(stderr, "test_property:   %-13s worst %7.1f dB over %d targets\n", s_variants[v].label,
                    st->worst_db[v], st->n_targets[v]);
}

/* Seconds of segments per session: all of them when one seed is asked for. */
static double s_segment_budget(void) { return getenv("STEMFARM_PROPERTY_SEED") ? INF : SESSION_SEGMENTS_S; }

/* Every effect variant alone: all chains of a random session are that
 * effect (1-4 of it per chain), so its worst residual is its own. */
START_TEST(test_each_effect_alone)
{
    if (getenv("STEMFARM_PROPERTY_SEED"))
        return; /* one session was asked for: test_random_chains runs it */
    stats_t st;
    s_stats_init(&st);
    const double t0 = s_now();
    const uint64_t seed = ((uint64_t)(_i + 1) << VARIANT_SHIFT) | s_env_u64("STEMFARM_PROPERTY_SEED0", DEFAULT_SEED0);
    bool ok = s_run_session(seed, s_segment_budget(), &st);
    char what[64];
    snprintf(what, sizeof what, "%s alone", s_variants[_i].label);
    s_print_stats(what, &st, s_now() - t0);
    ck_assert_msg(ok, "%s: stitched render differs from the continuous one (seed 0x%llx, see above)",
                  s_variants[_i].label, (unsigned long long)seed);
}
END_TEST

/* Random chains over random sessions, until the iteration count or the
 * wall-clock budget runs out; every failing seed is reported, the test
 * fails if any did. */
START_TEST(test_random_chains)
{
    stats_t st;
    s_stats_init(&st);
    const double t0 = s_now();
    const char *one = getenv("STEMFARM_PROPERTY_SEED");
    const char *budget_s = getenv("STEMFARM_PROPERTY_BUDGET_S");
    const uint64_t iters = one ? 1 : s_env_u64("STEMFARM_PROPERTY_ITERS", DEFAULT_ITERS);
    const double budget = one ? INF : budget_s && *budget_s ? strtod(budget_s, NULL) : DEFAULT_BUDGET_S;
    const uint64_t seed0 = one ? strtoull(one, NULL, 0) : s_env_u64("STEMFARM_PROPERTY_SEED0", DEFAULT_SEED0);
    int n_failed = 0;
    char failed[256] = "";
    for (uint64_t i = 0; i < iters && s_now() - t0 < budget; i++) {
        if (!s_run_session(seed0 + i, s_segment_budget(), &st)) {
            size_t len = strlen(failed);
            snprintf(failed + len, sizeof failed - len, " 0x%llx", (unsigned long long)(seed0 + i));
            n_failed++;
        }
    }
    s_print_stats("random chains", &st, s_now() - t0);
    ck_assert_msg(n_failed == 0, "%d random sessions do not stitch: seeds%s (see above)", n_failed, failed);
}
END_TEST

/* ---- regressions ----------------------------------------------------------------
 *
 * Minimal sessions for the stitching failures this generator found, each
 * asserting the property, not a measured value. */

static double s_offset(int ch, int64_t i, void *ctx)
{
    (void)ch;
    (void)i;
    return *(const double *)ctx;
}

static double s_noise(int ch, int64_t i, void *ctx)
{
    (void)ch;
    return *(const double *)ctx * tu_noise(5, i);
}

/* Decaying noise, 123 dB down at its end. */
static double s_room_ir(int ch, int64_t i, void *ctx)
{
    (void)ch;
    (void)ctx;
    return 0.5 * pow(10.0, -123.0 / 20 * (double)i / 2305) * tu_noise(5, i);
}

/* A direct spike and a same-sign tail 60 dB below it that decays by 220 dB
 * over 4096 frames: a float file keeps the tail far below the threshold. */
static double s_spike_ir(int ch, int64_t i, void *ctx)
{
    (void)ch;
    (void)ctx;
    return i == 0 ? 1.0 : 1e-3 * pow(10.0, -220.0 / 20 * (double)i / 4096);
}

/* Stem 0 of `yaml` (written to dir) stitched from seg_len-frame segments,
 * every one of them, against the continuous render. */
static void s_check_fixed(char *dir, const char *yaml, int64_t seg_len, const char *what)
{
    sf_session_t *s = s_load(dir, yaml, what);
    rng_t r = {1};
    result_t res;
    s_stitch(s, (sf_target_t){SF_TARGET_STEM, 0}, seg_len, INF, &r, &res);
    fprintf(stderr,
            "test_property: %s: L %lld, pre-roll %lld frames, peak %.2f dBFS, residual %.1f dBFS at frame %lld "
            "(continuous %.9g, stitched %.9g)\n",
            what, (long long)seg_len, (long long)res.preroll, s_db(res.peak), s_db(res.worst), (long long)res.worst_at,
            (double)res.cont_v, (double)res.seg_v);
    sf_session_destroy(&s);
    tu_rm_rf(dir);
    free(dir);
    ck_assert_msg(res.worst <= BAR * fmax(1.0, res.peak), "%s: residual %.1f dBFS, peak %.1f dBFS", what,
                  s_db(res.worst), s_db(res.peak));
}

/* A held offset just below full scale through a 20 Hz notch with q 0.5
 * (the fade-in keeps the onset from overshooting). The eq tail used to end
 * where the impulse response falls below the threshold, but what a
 * segment's pre-roll leaves out is the sum of the response beyond it, ~1/(1
 * - r) times larger for a double pole near DC: -114 dBFS. Sub-bass tones did
 * it too. The tail is now that sum (fx_filter.c). */
START_TEST(test_regression_eq_step_tail)
{
    char *dir = tu_tmpdir();
    double level = 0.99;
    free(tu_write_wav(dir, "media/offset.wav", 1, RATE, 20 * RATE, 32, s_offset, &level));
    s_check_fixed(dir,
                  "version: 1\n"
                  "session: {name: repro, sample_rate: 8000}\n"
                  "output: {sample_format: float32}\n"
                  "master: {channels: mono}\n"
                  "tracks:\n"
                  "  - name: Offset\n"
                  "    clips: [{source: media/offset.wav, fade_in: 3s}]\n"
                  "    fx:\n"
                  "      - eq: {type: notch, freq: 20, q: 0.5}\n"
                  "stems:\n"
                  "  - {name: S, tracks: [Offset]}\n",
                  SEG_MIN, "eq notch, held offset");
}
END_TEST

/* The same for convolve: an impulse response with a direct spike and a low
 * same-sign tail. Its tail used to end at its last sample at or above the
 * threshold, but the samples after it, each below, add up on a held offset
 * or a low tone: -102 dBFS. Segments of a multiple of the block grid, so
 * that the grid (below) plays no part. */
START_TEST(test_regression_conv_smooth_tail)
{
    char *dir = tu_tmpdir();
    double level = 0.8;
    free(tu_write_wav(dir, "media/offset.wav", 1, RATE, 20 * RATE, 32, s_offset, &level));
    free(tu_write_wav(dir, "media/ir.wav", 1, RATE, 4096, 32, s_spike_ir, NULL));
    s_check_fixed(dir,
                  "version: 1\n"
                  "session: {name: repro, sample_rate: 8000}\n"
                  "output: {sample_format: float32}\n"
                  "master: {channels: mono}\n"
                  "tracks:\n"
                  "  - name: Offset\n"
                  "    clips: [{source: media/offset.wav, fade_in: 3s}]\n"
                  "    fx:\n"
                  "      - convolve: {ir: media/ir.wav}\n"
                  "stems:\n"
                  "  - {name: S, tracks: [Offset]}\n",
                  4 * SF_FX_BLOCK_GRID, "convolve smooth tail, held offset");
}
END_TEST

/* Low-passed noise through a 2305-tap room-like impulse response, cut every
 * 0.5 s. The partitioned convolution used to run its FFT blocks on a grid
 * from the render's first frame (segment start - pre-roll), so a segment
 * and the continuous render rounded their float FFTs differently: -118 dBFS
 * where the signal sits in a dip of the response, whatever the pre-roll.
 * Renders now start on SF_FX_BLOCK_GRID (render.c). */
START_TEST(test_regression_conv_grid)
{
    char *dir = tu_tmpdir();
    double level = 0.5;
    free(tu_write_wav(dir, "media/noise.wav", 1, RATE, 20 * RATE, 32, s_noise, &level));
    free(tu_write_wav(dir, "media/ir.wav", 1, RATE, 2305, 24, s_room_ir, NULL));
    s_check_fixed(dir,
                  "version: 1\n"
                  "session: {name: repro, sample_rate: 8000}\n"
                  "output: {sample_format: float32}\n"
                  "master: {channels: mono}\n"
                  "tracks:\n"
                  "  - name: Noise\n"
                  "    source: media/noise.wav\n"
                  "    gain_db: 18\n"
                  "    fx:\n"
                  "      - lowpass: {freq: 40, q: 1}\n"
                  "      - convolve: {ir: media/ir.wav}\n"
                  "      - highpass: {freq: 32, q: 0.3}\n"
                  "stems:\n"
                  "  - {name: S, tracks: [Noise]}\n",
                  SEG_MIN, "convolve block grid, noise");
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("property");
    TCase *tc = tcase_create("stitch");
    tcase_set_timeout(tc, 900);
    tcase_add_loop_test(tc, test_each_effect_alone, 0, N_VARIANTS);
    tcase_add_test(tc, test_random_chains);
    tcase_add_test(tc, test_regression_eq_step_tail);
    tcase_add_test(tc, test_regression_conv_smooth_tail);
    tcase_add_test(tc, test_regression_conv_grid);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(s_suite()); }
