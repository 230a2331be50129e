/* test_render.c -- the renderer (sf/render.h) and media I/O (sf/media.h).
 *
 * Sessions are built by hand here (sf_session_t filled from small spec
 * tables) so that these tests do not depend on the YAML loader. Sources are
 * generated WAV files (tu_write_wav) whose sample values the test knows
 * exactly (tu_quantized), so every render is checked against a reference mix
 * computed independently, in double precision, from the specs: its own pan
 * law formulas, its own clip placement ("the last clip covering a frame
 * wins"), no file reads. The mixing graph (buses, sends, automation, fades,
 * layouts, targets) has its own per-frame double reference, r_graph, written
 * from render.h's words with libm's pow/sin/cos and sharing no code with
 * render.c. Media: ranged reads, the writer (and its surround channel
 * masks), resampled copies against libsoxr called directly. */
#include "sf/alloc.h"
#include "sf/hash.h"
#include "sf/media.h"
#include "sf/render.h"
#include "sf/session.h"
#include "testutil.h"

#include <check.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif
#ifndef M_SQRT1_2
#define M_SQRT1_2 0.70710678118654752440
#endif

#define RATE  48000
#define LSB24 (1.0 / 8388608.0) /* 2^-23 */

/* ---- fixtures: sources, tracks, stems ------------------------------------ */

typedef enum { SIG_NOISE, SIG_CONST, SIG_CLICK } sig_kind_t; /* SIG_CLICK: amp at frame `seed`, else 0 */

typedef struct {
    int channels;
    int bits; /* 16, 24, or 32 (float) */
    int64_t frames;
    sig_kind_t kind;
    uint64_t seed;
    double amp;
    char *path; /* set by s_write_sources */
} src_spec_t;

typedef struct {
    int src;                    /* index into the source table */
    int64_t at, offset, length; /* length 0: to the end of the source */
    double gain_db;
} clip_spec_t;

typedef struct {
    double gain_db, pan;
    bool invert, mute;
    int n_clips;
    clip_spec_t clips[4];
} track_spec_t;

typedef struct {
    int n_channels;
    size_t n_tracks;      /* 0: every track */
    const size_t *tracks; /* ascending */
} stem_spec_t;

static double s_signal(int ch, int64_t i, void *ctx)
{
    const src_spec_t *src = ctx;
    if (src->kind == SIG_CONST)
        return src->amp * (ch == 0 ? 1.0 : -0.5);
    if (src->kind == SIG_CLICK)
        return i == (int64_t)src->seed ? src->amp : 0.0;
    return src->amp * tu_noise(src->seed * 16 + (uint64_t)ch, i);
}

/* The exact value the file holds at (ch, i). */
static double s_src_value(const src_spec_t *src, int ch, int64_t i)
{
    return tu_quantized(s_signal(ch, i, (void *)src), src->bits);
}

static void s_write_sources(const char *dir, src_spec_t *srcs, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        char name[64];
        snprintf(name, sizeof name, "src/%03zu_%dch_%db.wav", k, srcs[k].channels, srcs[k].bits);
        srcs[k].path =
            tu_write_wav(dir, name, srcs[k].channels, RATE, srcs[k].frames, srcs[k].bits, s_signal, &srcs[k]);
    }
}

static void s_free_sources(src_spec_t *srcs, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        free(srcs[k].path);
        srcs[k].path = NULL;
    }
}

static int64_t s_clip_length(const src_spec_t *srcs, const clip_spec_t *c)
{
    return c->length ? c->length : srcs[c->src].frames - c->offset;
}

/* A session as the loader would leave it, from the specs. */
static sf_session_t *s_build(const src_spec_t *srcs, const track_spec_t *tracks, size_t n_tracks,
                             const stem_spec_t *stems, size_t n_stems)
{
    sf_session_t *s = sf_calloc(1, sizeof *s);
    ck_assert_ptr_nonnull(s);
    s->path = sf_strdup("hand-built.yaml");
    s->name = sf_strdup("hand built");
    s->sample_rate = RATE;
    s->master_channels = 2;
    s->tail_threshold_db = -144;
    s->tracks = sf_calloc(n_tracks, sizeof *s->tracks);
    s->n_tracks = n_tracks;
    for (size_t k = 0; k < n_tracks; k++) {
        const track_spec_t *ts = &tracks[k];
        sf_track_t *t = &s->tracks[k];
        char name[32];
        snprintf(name, sizeof name, "T%zu", k);
        t->name = sf_strdup(name);
        t->gain_db = ts->gain_db;
        t->pan = ts->pan;
        t->invert = ts->invert;
        t->mute = ts->mute;
        t->output_bus = SF_MASTER_BUS;
        t->n_clips = (size_t)ts->n_clips;
        t->clips = sf_calloc(t->n_clips, sizeof *t->clips);
        for (int j = 0; j < ts->n_clips; j++) {
            const clip_spec_t *cs = &ts->clips[j];
            const src_spec_t *src = &srcs[cs->src];
            sf_clip_t *c = &t->clips[j];
            c->path = sf_strdup(src->path);
            c->at = cs->at;
            c->offset = cs->offset;
            c->length = s_clip_length(srcs, cs);
            c->gain_db = cs->gain_db;
            c->source_channels = src->channels;
            c->source_frames = src->frames;
            c->source_rate = RATE;
            c->channel = -1;
            t->n_channels = src->channels;
        }
        if (!t->n_channels)
            t->n_channels = 1;
    }
    s->stems = sf_calloc(n_stems, sizeof *s->stems);
    s->n_stems = n_stems;
    for (size_t k = 0; k < n_stems; k++) {
        sf_stem_t *st = &s->stems[k];
        char name[32];
        snprintf(name, sizeof name, "S%zu", k);
        st->name = sf_strdup(name);
        st->n_channels = stems[k].n_channels;
        st->n_tracks = stems[k].n_tracks ? stems[k].n_tracks : n_tracks;
        st->tracks = sf_calloc(st->n_tracks, sizeof *st->tracks);
        for (size_t i = 0; i < st->n_tracks; i++)
            st->tracks[i] = stems[k].n_tracks ? stems[k].tracks[i] : i;
    }
    return s;
}

/* Frees what s_build made (the loader's sf_session_destroy is not needed). */
static void s_free_session(sf_session_t *s)
{
    for (size_t k = 0; k < s->n_tracks; k++) {
        for (size_t j = 0; j < s->tracks[k].n_clips; j++)
            sf_free(s->tracks[k].clips[j].path);
        sf_free(s->tracks[k].clips);
        sf_free(s->tracks[k].name);
    }
    for (size_t k = 0; k < s->n_stems; k++) {
        sf_free(s->stems[k].tracks);
        sf_free(s->stems[k].name);
    }
    sf_free(s->tracks);
    sf_free(s->stems);
    sf_free(s->path);
    sf_free(s->name);
    sf_free(s);
}

/* ---- the independent reference mix ----------------------------------------- */

/* gains[in][out] straight from the pan law as the user reads it. */
static void s_ref_gains(const track_spec_t *t, int n_in, int n_out, double g[2][2])
{
    double lin = isinf(t->gain_db) ? 0.0 : pow(10.0, t->gain_db / 20.0);
    if (t->invert)
        lin = -lin;
    memset(g, 0, sizeof(double) * 4);
    if (n_out == 1) {
        g[0][0] = lin * (n_in == 1 ? 1.0 : cos(M_PI / 4));
        g[1][0] = n_in == 2 ? lin * cos(M_PI / 4) : 0.0;
    } else if (n_in == 1) {
        double th = (t->pan + 1.0) * M_PI / 4.0;
        g[0][0] = lin * cos(th);
        g[0][1] = lin * sin(th);
    } else {
        g[0][0] = lin * (t->pan > 0 ? cos(t->pan * M_PI / 2) : 1.0);
        g[1][1] = lin * (t->pan < 0 ? cos(-t->pan * M_PI / 2) : 1.0);
    }
}

/* ref[c][0..n) = the stem over timeline [start, start + n), in double:
 * the tracks into a master of n_master channels (1 or 2), then, for a stem
 * of the other width, L and R folded into mono at -3 dB each. */
static void s_reference_master(const src_spec_t *srcs, const track_spec_t *tracks, size_t n_tracks,
                               const stem_spec_t *stem, int n_master, int64_t start, int64_t n, double **ref);

static void s_reference(const src_spec_t *srcs, const track_spec_t *tracks, size_t n_tracks, const stem_spec_t *stem,
                        int64_t start, int64_t n, double **ref)
{
    if (stem->n_channels == 2) {
        s_reference_master(srcs, tracks, n_tracks, stem, 2, start, n, ref);
        return;
    }
    /* a mono stem of the stereo master */
    double *lr[2] = {malloc(sizeof(double) * (size_t)(n + 1)), malloc(sizeof(double) * (size_t)(n + 1))};
    ck_assert(lr[0] && lr[1]);
    s_reference_master(srcs, tracks, n_tracks, stem, 2, start, n, lr);
    for (int64_t i = 0; i < n; i++)
        ref[0][i] = (lr[0][i] + lr[1][i]) * cos(M_PI / 4);
    free(lr[0]);
    free(lr[1]);
}

static void s_reference_master(const src_spec_t *srcs, const track_spec_t *tracks, size_t n_tracks,
                               const stem_spec_t *stem, int n_master, int64_t start, int64_t n, double **ref)
{
    for (int c = 0; c < n_master; c++)
        memset(ref[c], 0, sizeof(double) * (size_t)n);
    size_t n_stem = stem->n_tracks ? stem->n_tracks : n_tracks;
    for (size_t k = 0; k < n_stem; k++) {
        const track_spec_t *t = &tracks[stem->n_tracks ? stem->tracks[k] : k];
        if (t->mute || t->n_clips == 0)
            continue;
        int n_in = srcs[t->clips[0].src].channels;
        double g[2][2];
        s_ref_gains(t, n_in, n_master, g);
        /* only the frames some clip covers */
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        for (int j = 0; j < t->n_clips; j++) {
            int64_t a = t->clips[j].at, b = a + s_clip_length(srcs, &t->clips[j]);
            lo = a < lo ? a : lo;
            hi = b > hi ? b : hi;
        }
        lo = lo < start ? start : lo;
        hi = hi > start + n ? start + n : hi;
        for (int64_t f = lo; f < hi; f++) {
            const clip_spec_t *clip = NULL;
            for (int j = 0; j < t->n_clips; j++) /* the last one covering f wins */
                if (t->clips[j].at <= f && f < t->clips[j].at + s_clip_length(srcs, &t->clips[j]))
                    clip = &t->clips[j];
            if (!clip)
                continue;
            double cg = isinf(clip->gain_db) ? 0.0 : pow(10.0, clip->gain_db / 20.0);
            for (int in = 0; in < n_in; in++) {
                double v = s_src_value(&srcs[clip->src], in, clip->offset + (f - clip->at));
                for (int c = 0; c < n_master; c++)
                    ref[c][f - start] += v * cg * g[in][c];
            }
        }
    }
}

/* Planar float buffers for a render. */
typedef struct {
    int n_channels;
    int64_t n_frames;
    float *ch[2];
    double *ref[2];
} planar_t;

static planar_t s_planar(int n_channels, int64_t n_frames)
{
    planar_t p = {.n_channels = n_channels, .n_frames = n_frames};
    for (int c = 0; c < n_channels; c++) {
        p.ch[c] = malloc(sizeof(float) * (size_t)(n_frames + 1));
        p.ref[c] = malloc(sizeof(double) * (size_t)(n_frames + 1));
        ck_assert(p.ch[c] && p.ref[c]);
        for (int64_t i = 0; i < n_frames; i++)
            p.ch[c][i] = NAN; /* render must write every sample */
    }
    return p;
}

static void s_planar_free(planar_t *p)
{
    for (int c = 0; c < p->n_channels; c++) {
        free(p->ch[c]);
        free(p->ref[c]);
    }
}

/* Renders and returns max |render - reference|; fails on any render error. */
static double s_render_vs_reference(const sf_session_t *s, size_t stem_index, const src_spec_t *srcs,
                                    const track_spec_t *tracks, size_t n_tracks, const stem_spec_t *stem, int64_t start,
                                    int64_t n)
{
    planar_t p = s_planar(stem->n_channels, n);
    sf_err_t err = {0};
    sf_rc rc = sf_render_stem(s, stem_index, start, n, 0, p.ch, &err);
    ck_assert_msg(rc == SF_OK, "render: %s", err.msg);
    s_reference(srcs, tracks, n_tracks, stem, start, n, p.ref);
    double max_err = 0;
    for (int c = 0; c < stem->n_channels; c++)
        for (int64_t i = 0; i < n; i++) {
            double e = fabs((double)p.ch[c][i] - p.ref[c][i]);
            ck_assert_msg(e == e, "ch %d frame %lld not written", c, (long long)(start + i));
            max_err = e > max_err ? e : max_err;
        }
    s_planar_free(&p);
    return max_err;
}

/* ---- pan law: sf_render_track_gains ------------------------------------------- */

typedef struct {
    const char *name;
    int n_in, n_out;
    double pan, gain_db;
    bool invert;
    double g[2][2]; /* expected gains[in][out] */
} gains_case_t;

#define C45 0.70710678118654752 /* cos(pi/4): -3.0103 dB */
#define C67 0.38268343236508977 /* cos(3pi/8) */
#define S67 0.92387953251128674 /* sin(3pi/8) */
#define G6  0.50118723362727224 /* -6 dB */

static const gains_case_t k_gains[] = {
    {"mono centre", 1, 2, 0.0, 0, false, {{C45, C45}}},
    {"mono hard left", 1, 2, -1.0, 0, false, {{1, 0}}},
    {"mono hard right", 1, 2, 1.0, 0, false, {{0, 1}}},
    {"mono pan 0.5", 1, 2, 0.5, 0, false, {{C67, S67}}},
    {"mono pan -0.5", 1, 2, -0.5, 0, false, {{S67, C67}}},
    {"mono -6 dB inverted", 1, 2, 0.0, -6, true, {{-G6 * C45, -G6 *C45}}},
    {"mono -inf", 1, 2, 0.3, -INFINITY, false, {{0, 0}}},
    {"stereo centre", 2, 2, 0.0, 0, false, {{1, 0}, {0, 1}}},
    {"stereo balance 0.5", 2, 2, 0.5, 0, false, {{C45, 0}, {0, 1}}},
    {"stereo balance -0.5", 2, 2, -0.5, 0, false, {{1, 0}, {0, C45}}},
    {"stereo hard right", 2, 2, 1.0, 0, false, {{0, 0}, {0, 1}}},
    {"stereo hard left", 2, 2, -1.0, 0, false, {{1, 0}, {0, 0}}},
    {"stereo -6 dB 0.5", 2, 2, 0.5, -6, false, {{G6 * C45, 0}, {0, G6}}},
    {"mono to mono", 1, 1, -0.7, 0, false, {{1}}},
    {"stereo fold-down", 2, 1, 0.4, 0, false, {{C45}, {C45}}},
    {"stereo fold-down inverted", 2, 1, 0.0, -6, true, {{-G6 * C45}, {-G6 * C45}}},
};
#define N_GAINS (sizeof k_gains / sizeof k_gains[0])

START_TEST(test_track_gains)
{
    const gains_case_t *gc = &k_gains[_i];
    sf_track_t t = {.n_channels = gc->n_in, .gain_db = gc->gain_db, .pan = gc->pan, .invert = gc->invert};
    double g[2][SF_MAX_CHANNELS];
    sf_render_track_gains(&t, gc->n_out, g);
    for (int in = 0; in < gc->n_in; in++)
        for (int out = 0; out < gc->n_out; out++)
            ck_assert_msg(fabs(g[in][out] - gc->g[in][out]) < 1e-15, "%s: gains[%d][%d] = %.17g, expected %.17g",
                          gc->name, in, out, g[in][out], gc->g[in][out]);
    /* the hard-panned side is silent, not -300 dB */
    if (fabs(gc->pan) == 1.0 && gc->n_out == 2)
        for (int in = 0; in < gc->n_in; in++)
            for (int out = 0; out < 2; out++)
                if (gc->g[in][out] == 0.0)
                    ck_assert_msg(g[in][out] == 0.0, "%s: [%d][%d] = %g", gc->name, in, out, g[in][out]);
}
END_TEST

START_TEST(test_centre_is_minus_3db)
{
    sf_track_t t = {.n_channels = 1};
    double g[2][SF_MAX_CHANNELS];
    sf_render_track_gains(&t, 2, g);
    ck_assert_double_eq_tol(20 * log10(g[0][0]), -3.0103, 1e-4);
    ck_assert(g[0][0] == g[0][1]);
    /* constant power across the pan range */
    for (double pan = -1; pan <= 1; pan += 0.125) {
        t.pan = pan;
        sf_render_track_gains(&t, 2, g);
        ck_assert_double_eq_tol(g[0][0] * g[0][0] + g[0][1] * g[0][1], 1.0, 1e-15);
    }
}
END_TEST

/* The pan laws through a real render: one constant source (L = 0.5, R = -0.25,
 * exact in pcm24) on one track, every row of the table above. */
START_TEST(test_pan_render)
{
    const gains_case_t *gc = &k_gains[_i];
    char *dir = tu_tmpdir();
    src_spec_t src = {gc->n_in, 24, 3000, SIG_CONST, 0, 0.5, NULL};
    s_write_sources(dir, &src, 1);
    track_spec_t tr = {
        .gain_db = gc->gain_db, .pan = gc->pan, .invert = gc->invert, .n_clips = 1, .clips = {{0, 100, 0, 0, 0}}};
    stem_spec_t st = {gc->n_out, 0, NULL};
    sf_session_t *s = s_build(&src, &tr, 1, &st, 1);
    s->master_channels = gc->n_out; /* the track's pan law straight into the master */
    planar_t p = s_planar(gc->n_out, 3200);
    sf_err_t err = {0};
    ck_assert_int_eq(sf_render_stem(s, 0, 0, 3200, 0, p.ch, &err), SF_OK);
    const double in[2] = {0.5, -0.25};
    for (int c = 0; c < gc->n_out; c++) {
        double expect = 0;
        for (int i = 0; i < gc->n_in; i++)
            expect += in[i] * gc->g[i][c];
        for (int64_t f = 0; f < 3200; f++) {
            double want = f >= 100 && f < 3100 ? expect : 0.0;
            ck_assert_msg(fabs((double)p.ch[c][f] - want) <= 2.5e-7 * fabs(want),
                          "%s: out %d frame %lld = %.9g, expected %.9g", gc->name, c, (long long)f, (double)p.ch[c][f],
                          want);
        }
    }
    s_planar_free(&p);
    s_free_session(s);
    s_free_sources(&src, 1);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* Render threads flush denormals to zero (a denormal costs a hundred normal
 * operations): a source of denormal floats renders as exact silence, one
 * just above the denormal range renders as itself at the pan gain, and the
 * calling thread gets its own floating-point state back. */
START_TEST(test_denormals_flush_on_render_threads)
{
    const double amps[2] = {1e-39, 1e-30}; /* below FLT_MIN, and above */
    for (int k = 0; k < 2; k++) {
        char *dir = tu_tmpdir();
        src_spec_t src = {1, 32, 3000, SIG_CONST, 0, amps[k], NULL};
        s_write_sources(dir, &src, 1);
        track_spec_t tr = {.n_clips = 1, .clips = {{0, 0, 0, 0, 0}}};
        stem_spec_t st = {2, 0, NULL};
        sf_session_t *s = s_build(&src, &tr, 1, &st, 1);
        planar_t p = s_planar(2, 3000);
        sf_err_t err = {0};
        const unsigned before = _mm_getcsr();
        ck_assert_int_eq(sf_render_stem(s, 0, 0, 3000, 0, p.ch, &err), SF_OK);
        ck_assert_uint_eq(_mm_getcsr(), before);
        const double want = k == 0 ? 0.0 : (double)(float)(amps[k] * sqrt(0.5));
        for (int c = 0; c < 2; c++)
            for (int64_t f = 0; f < 3000; f++)
                ck_assert_msg(k == 0 ? p.ch[c][f] == 0.0f : fabs((double)p.ch[c][f] - want) <= 1e-6 * want,
                              "source %g: channel %d frame %lld is %g, want %g", amps[k], c, (long long)f,
                              (double)p.ch[c][f], want);
        s_planar_free(&p);
        s_free_session(s);
        s_free_sources(&src, 1);
        tu_rm_rf(dir);
        free(dir);
    }
}
END_TEST

/* ---- clip placement ------------------------------------------------------------ */

START_TEST(test_clip_placement)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[] = {
        {1, 24, 20000, SIG_NOISE, 1, 0.9, NULL},
        {1, 16, 9000, SIG_NOISE, 2, 0.7, NULL},
        {2, 32, 15000, SIG_NOISE, 3, 0.8, NULL},
    };
    s_write_sources(dir, srcs, 3);
    track_spec_t tracks[] = {
        /* the brief's odd clip */
        {0, 0, false, false, 1, {{0, 12345, 777, 4099, 0}}},
        /* overlapping clips, later wins: B inside A, C over A's end, D before all */
        {-1.5,
         0.25,
         false,
         false,
         4,
         {{0, 1000, 0, 10000, 0}, {1, 3001, 17, 999, -3}, {1, 9500, 4000, 2500, 2}, {0, 10, 5, 1200, -6}}},
        /* stereo: a clip fully hidden behind a later one, a -inf clip muting a gap */
        {-3, -0.3, true, false, 3, {{2, 2000, 100, 3000, 0}, {2, 1500, 9000, 4500, -1}, {2, 4000, 0, 500, -INFINITY}}},
    };
    for (size_t k = 0; k < 3; k++) {
        stem_spec_t st = {2, 1, &k};
        sf_session_t *s = s_build(srcs, tracks, 3, &st, 1);
        /* start negative, odd length: frames before 0 are silence */
        double e = s_render_vs_reference(s, 0, srcs, tracks, 3, &st, -37, 17001);
        ck_assert_msg(e <= LSB24, "track %zu: max error %g", k, e);
        /* a piece cut inside the clips */
        e = s_render_vs_reference(s, 0, srcs, tracks, 3, &st, 12346, 4097);
        ck_assert_msg(e <= LSB24, "track %zu: max error %g", k, e);
        s_free_session(s);
    }
    s_free_sources(srcs, 3);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- the 24-track mix ------------------------------------------------------------- */

#define MIX_TRACKS 24
#define MIX_FRAMES 150001 /* crosses two 65536-frame windows */

static src_spec_t g_mix_srcs[MIX_TRACKS];
static track_spec_t g_mix_tracks[MIX_TRACKS];
static const size_t k_subset[] = {2, 5, 11, 12, 23};
static const stem_spec_t k_mix_stems[] = {
    {2, 0, NULL},
    {1, 0, NULL},
    {2, sizeof k_subset / sizeof k_subset[0], k_subset},
};

/* 24 tracks: every third stereo, 16/24/float sources, gains -6..-23 dB,
 * pans over the whole range including the ends, polarity, two muted tracks,
 * one at -inf, 1 to 3 clips at odd places, some overlapping. */
static void s_mix_fixture(const char *dir)
{
    for (int k = 0; k < MIX_TRACKS; k++) {
        src_spec_t *src = &g_mix_srcs[k];
        src->channels = k % 3 == 0 ? 2 : 1;
        src->bits = k % 4 == 3 ? 16 : k % 4 == 2 ? 32 : 24;
        src->frames = 60000 + 7919 * k;
        src->kind = SIG_NOISE;
        src->seed = 1000 + (uint64_t)k;
        src->amp = 0.5;
        track_spec_t *t = &g_mix_tracks[k];
        memset(t, 0, sizeof *t);
        t->gain_db = k == 17 ? -(double)INFINITY : -6.0 - 0.75 * k;
        t->pan = k == 4 ? -1.0 : k == 8 ? 1.0 : k == 9 ? 0.0 : -1.0 + 2.0 * ((k * 7) % 23) / 22.0;
        t->invert = k % 4 == 1;
        t->mute = k == 7 || k == 19;
        int64_t at = 3 + 5003 * k;
        t->clips[0] = (clip_spec_t){k, at, 11 * k, 0, 0};
        t->n_clips = 1;
        if (k % 2 == 0) /* overlaps the first clip's middle */
            t->clips[t->n_clips++] = (clip_spec_t){k, at + 20011, 333, 12345, -4.5};
        if (k % 5 == 0) /* far later, crossing a window edge */
            t->clips[t->n_clips++] = (clip_spec_t){k, 65536 * 2 - 4000 - k, 1, 9001, 1.5};
    }
    s_write_sources(dir, g_mix_srcs, MIX_TRACKS);
}

static sf_session_t *s_mix_session(void)
{
    return s_build(g_mix_srcs, g_mix_tracks, MIX_TRACKS, k_mix_stems, sizeof k_mix_stems / sizeof k_mix_stems[0]);
}

START_TEST(test_mix_vs_reference)
{
    char *dir = tu_tmpdir();
    s_mix_fixture(dir);
    sf_session_t *s = s_mix_session();
    /* Measured max |render - double reference| (gcc 12, x86-64, 150,001 frames):
     *   stereo stem, all 24 tracks (peak 0.90)   6.22e-08 = 0.52 LSB of pcm24
     *   mono stem: the stereo master folded      5.67e-08 = 0.48 LSB
     *     (from the master's double sum; from its float signal: 0.68 LSB)
     *   5-track stereo subset (peak 0.41)        2.87e-08 = 0.24 LSB
     * With a float accumulator instead of the double one the stereo stem
     * measured 1.59e-07 = 1.34 LSB. The bound asserted is 1 LSB of pcm24,
     * 2^-23 = 1.19e-07. */
    for (size_t k = 0; k < sizeof k_mix_stems / sizeof k_mix_stems[0]; k++) {
        double e = s_render_vs_reference(s, k, g_mix_srcs, g_mix_tracks, MIX_TRACKS, &k_mix_stems[k], 0, MIX_FRAMES);
        fprintf(stderr, "test_render: stem %zu (%d ch): max error vs double reference %.3g (%.3f LSB24)\n", k,
                k_mix_stems[k].n_channels, e, e / LSB24);
        ck_assert_msg(e <= LSB24, "stem %zu: max error %g > 2^-23", k, e);
    }
    /* a window not aligned to anything */
    double e = s_render_vs_reference(s, 0, g_mix_srcs, g_mix_tracks, MIX_TRACKS, &k_mix_stems[0], 40001, 70003);
    ck_assert_msg(e <= LSB24, "offset range: max error %g", e);
    s_free_session(s);
    s_free_sources(g_mix_srcs, MIX_TRACKS);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- determinism ------------------------------------------------------------------- */

/* Renders [start, start + n) in pieces of the given lengths (cycled). */
static void s_render_cut(const sf_session_t *s, size_t stem, int64_t start, int64_t n, const int64_t *pieces,
                         size_t n_pieces, int64_t preroll, float **out)
{
    int64_t at = 0;
    for (size_t p = 0; at < n; p++) {
        int64_t len = pieces[p % n_pieces];
        len = len < n - at ? len : n - at;
        float *dst[2] = {out[0] + at, out[1] ? out[1] + at : NULL};
        sf_err_t err = {0};
        ck_assert_msg(sf_render_stem(s, stem, start + at, len, preroll, dst, &err) == SF_OK, "%s", err.msg);
        at += len;
    }
}

START_TEST(test_determinism)
{
    char *dir = tu_tmpdir();
    s_mix_fixture(dir);
    sf_session_t *s = s_mix_session();
    const int64_t start = 7, n = MIX_FRAMES - 7;
    const int64_t whole[] = {n};
    const int64_t cut_a[] = {1, 4099, 65537, 12345, 3};
    const int64_t cut_b[] = {65536, 1};
    const int64_t cut_c[] = {30011};
    const struct {
        const int64_t *pieces;
        size_t n;
        int threads;
        int64_t preroll;
    } runs[] = {
        {whole, 1, 1, 0},     {whole, 1, 2, 0}, {whole, 1, 4, 48000}, {cut_a, 5, 1, 0},
        {cut_a, 5, 2, 12345}, {cut_a, 5, 4, 0}, {cut_b, 2, 4, 0},     {cut_c, 1, 3, 100},
    };
    for (size_t stem = 0; stem < 2; stem++) {
        int nc = k_mix_stems[stem].n_channels;
        float *base[2] = {NULL, NULL}, *out[2] = {NULL, NULL};
        for (int c = 0; c < nc; c++) {
            base[c] = malloc(sizeof(float) * (size_t)n);
            out[c] = malloc(sizeof(float) * (size_t)n);
        }
        omp_set_num_threads(2);
        s_render_cut(s, stem, start, n, whole, 1, 0, base);
        for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
            omp_set_num_threads(runs[r].threads);
            for (int c = 0; c < nc; c++)
                memset(out[c], 0xff, sizeof(float) * (size_t)n);
            s_render_cut(s, stem, start, n, runs[r].pieces, runs[r].n, runs[r].preroll, out);
            for (int c = 0; c < nc; c++)
                ck_assert_msg(memcmp(base[c], out[c], sizeof(float) * (size_t)n) == 0,
                              "stem %zu run %zu (%d threads): channel %d differs", stem, r, runs[r].threads, c);
        }
        for (int c = 0; c < nc; c++) {
            free(base[c]);
            free(out[c]);
        }
    }
    omp_set_num_threads(2);
    s_free_session(s);
    s_free_sources(g_mix_srcs, MIX_TRACKS);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- 1,000 tracks, few file descriptors ---------------------------------------------- */

#define MANY 1000

START_TEST(test_thousand_tracks)
{
    char *dir = tu_tmpdir();
    src_spec_t *srcs = calloc(MANY, sizeof *srcs);
    track_spec_t *tracks = calloc(MANY, sizeof *tracks);
    for (int k = 0; k < MANY; k++) {
        srcs[k] = (src_spec_t){1, 16, 1000, SIG_NOISE, 5000 + (uint64_t)k, 0.5, NULL};
        /* ~27 tracks sound at once, all 1,000 start inside the first window */
        tracks[k] = (track_spec_t){
            -20.0 - (k % 7), -1.0 + (k % 41) / 20.0, k % 3 == 0, k % 97 == 0, 1, {{k, 37 * k + 1, k % 10, 990, 0}}};
    }
    s_write_sources(dir, srcs, MANY);
    stem_spec_t st = {2, 0, NULL};
    sf_session_t *s = s_build(srcs, tracks, MANY, &st, 1);

    /* A render that held every source open would need 1,000 descriptors; 1,024
     * would nearly fit them, so the limit here is far lower. */
    struct rlimit old, low;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 128;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    omp_set_num_threads(4);
    double e = s_render_vs_reference(s, 0, srcs, tracks, MANY, &st, 0, 37 * MANY + 1000);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    omp_set_num_threads(2);
    ck_assert_msg(e <= LSB24, "max error %g", e);

    s_free_session(s);
    s_free_sources(srcs, MANY);
    free(srcs);
    free(tracks);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- errors ------------------------------------------------------------------------- */

START_TEST(test_missing_source)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[5];
    track_spec_t tracks[5];
    for (int k = 0; k < 5; k++) {
        srcs[k] = (src_spec_t){1, 24, 5000, SIG_NOISE, 70 + (uint64_t)k, 0.5, NULL};
        /* track 3 only plays in the second window */
        int64_t at = k == 3 ? 70000 : 100 * k;
        tracks[k] = (track_spec_t){0, 0, false, false, 1, {{k, at, 0, 0, 0}}};
    }
    s_write_sources(dir, srcs, 5);
    stem_spec_t st = {2, 0, NULL};
    sf_session_t *s = s_build(srcs, tracks, 5, &st, 1);
    planar_t p = s_planar(2, 80000);
    sf_err_t err = {0};

    /* missing mid-render: the first window renders, the second fails */
    ck_assert_int_eq(unlink(srcs[3].path), 0);
    sf_rc rc = sf_render_stem(s, 0, 0, 80000, 0, p.ch, &err);
    ck_assert_int_eq(rc, SF_E_IO);
    ck_assert_int_eq(err.code, SF_E_IO);
    ck_assert_msg(strstr(err.msg, srcs[3].path) != NULL, "message names no path: %s", err.msg);
    ck_assert_msg(strstr(err.msg, "No such file") != NULL, "no reason: %s", err.msg);
    /* a range that does not need the file still renders */
    ck_assert_int_eq(sf_render_stem(s, 0, 0, 60000, 0, p.ch, NULL), SF_OK);

    /* two failures in one window: the lower track index is reported, always */
    ck_assert_int_eq(unlink(srcs[1].path), 0);
    ck_assert_int_eq(unlink(srcs[4].path), 0);
    for (int threads = 1; threads <= 4; threads++) {
        omp_set_num_threads(threads);
        for (int rep = 0; rep < 5; rep++) {
            sf_err_clear(&err);
            ck_assert_int_eq(sf_render_stem(s, 0, 0, 80000, 0, p.ch, &err), SF_E_IO);
            ck_assert_msg(strstr(err.msg, srcs[1].path) != NULL, "%d threads: %s", threads, err.msg);
        }
    }
    omp_set_num_threads(2);
    s_planar_free(&p);
    s_free_session(s);
    s_free_sources(srcs, 5);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_source_shorter_than_clip)
{
    /* the loader checks offset + length <= frames, but the file may change under us */
    char *dir = tu_tmpdir();
    src_spec_t src = {2, 24, 5000, SIG_NOISE, 9, 0.5, NULL};
    s_write_sources(dir, &src, 1);
    track_spec_t tr = {0, 0, false, false, 1, {{0, 0, 0, 0, 0}}};
    stem_spec_t st = {2, 0, NULL};
    sf_session_t *s = s_build(&src, &tr, 1, &st, 1);
    s->tracks[0].clips[0].length = 6000;
    planar_t p = s_planar(2, 7000);
    sf_err_t err = {0};
    ck_assert_int_eq(sf_render_stem(s, 0, 0, 7000, 0, p.ch, &err), SF_E_IO);
    ck_assert_msg(strstr(err.msg, "short read") && strstr(err.msg, src.path), "%s", err.msg);
    s_planar_free(&p);
    s_free_session(s);
    s_free_sources(&src, 1);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_render_nomem)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[3] = {{2, 24, 3000, SIG_NOISE, 1, 0.5, NULL},
                          {1, 24, 3000, SIG_NOISE, 2, 0.5, NULL},
                          {2, 16, 3000, SIG_NOISE, 3, 0.5, NULL}};
    s_write_sources(dir, srcs, 3);
    track_spec_t tracks[3] = {{0, 0, false, false, 1, {{0, 0, 0, 0, 0}}},
                              {0, 0, false, false, 1, {{1, 10, 0, 0, 0}}},
                              {0, 0, false, false, 1, {{2, 20, 0, 0, 0}}}};
    stem_spec_t st = {2, 0, NULL};
    sf_session_t *s = s_build(srcs, tracks, 3, &st, 1);
    planar_t p = s_planar(2, 3100);
    int ok = 0;
    for (long n = 1; n < 200 && !ok; n++) {
        sf_err_t err = {0};
        sf_alloc_fail_after(n);
        sf_rc rc = sf_render_stem(s, 0, 0, 3100, 0, p.ch, &err);
        sf_alloc_fail_after(0);
        ok = rc == SF_OK;
        if (!ok) {
            ck_assert_msg(rc == SF_E_NOMEM, "allocation %ld: %s (%d)", n, err.msg, rc);
            ck_assert_msg(strstr(err.msg, "out of memory") != NULL, "%s", err.msg);
        }
    }
    ck_assert_msg(ok, "render never succeeded");
    s_planar_free(&p);
    s_free_session(s);
    s_free_sources(srcs, 3);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- media: probe and ranged reads --------------------------------------------------- */

/* Reads of every PCM format a source may have give exactly libsndfile's
 * floats, whether stemfarm converts the raw bytes itself (little-endian
 * 16/24/32-bit and float) or libsndfile does (AIFF, FLAC): full-scale
 * extremes, every channel count, reads that end anywhere in an AVX2 step. */
START_TEST(test_media_read_matches_libsndfile)
{
    char *dir = tu_tmpdir();
    const struct {
        int format;
        const char *name;
    } formats[] = {
        {SF_FORMAT_WAV | SF_FORMAT_PCM_16, "a.wav"},   {SF_FORMAT_WAV | SF_FORMAT_PCM_24, "b.wav"},
        {SF_FORMAT_WAV | SF_FORMAT_PCM_32, "c.wav"},   {SF_FORMAT_WAV | SF_FORMAT_FLOAT, "d.wav"},
        {SF_FORMAT_WAVEX | SF_FORMAT_PCM_24, "e.wav"}, {SF_FORMAT_RF64 | SF_FORMAT_PCM_24, "f.wav"},
        {SF_FORMAT_W64 | SF_FORMAT_PCM_16, "g.w64"},   {SF_FORMAT_AIFF | SF_FORMAT_PCM_24, "h.aiff"},
        {SF_FORMAT_FLAC | SF_FORMAT_PCM_24, "i.flac"},
    };
    const int channels[] = {1, 2, 3, 6, 8};
    const int64_t frames = 20011; /* more than two of the reader's chunks */
    const int64_t ranges[][2] = {{0, 20011}, {1, 9}, {5, 10}, {8190, 11}, {8191, 8195}, {20000, 11}, {3, 1}, {0, 18}};
    int32_t *ints = malloc(sizeof(int32_t) * (size_t)frames * 8);
    float *flts = malloc(sizeof(float) * (size_t)frames * 8);
    float *want = malloc(sizeof(float) * (size_t)frames * 8);
    float *got[8];
    for (int c = 0; c < 8; c++)
        got[c] = malloc(sizeof(float) * (size_t)frames);
    for (size_t f = 0; f < sizeof formats / sizeof *formats; f++)
        for (size_t k = 0; k < sizeof channels / sizeof *channels; k++) {
            const int nc = channels[k];
            if ((formats[f].format & SF_FORMAT_TYPEMASK) == SF_FORMAT_FLAC && nc > 8)
                continue;
            for (int64_t i = 0; i < frames * nc; i++) {
                const double x = tu_noise(77 + (uint64_t)(f * 10 + k), i);
                ints[i] = i % 97 == 0 ? INT32_MIN : i % 89 == 0 ? INT32_MAX : (int32_t)(x * 2147483647.0);
                flts[i] = i % 83 == 0 ? 1.75f : (float)x;
            }
            char *path = tu_path(dir, formats[f].name);
            SF_INFO info = {.samplerate = RATE, .channels = nc, .format = formats[f].format};
            SNDFILE *w = sf_open(path, SFM_WRITE, &info);
            ck_assert_msg(w != NULL, "%s: %s", formats[f].name, sf_strerror(NULL));
            if ((formats[f].format & SF_FORMAT_SUBMASK) == SF_FORMAT_FLOAT)
                ck_assert_int_eq(sf_writef_float(w, flts, frames), frames);
            else
                ck_assert_int_eq(sf_writef_int(w, ints, frames), frames);
            sf_close(w);
            for (size_t r = 0; r < sizeof ranges / sizeof *ranges; r++) {
                const int64_t off = ranges[r][0], n = ranges[r][1];
                SF_INFO ri = {0};
                SNDFILE *rd = sf_open(path, SFM_READ, &ri);
                ck_assert_int_eq(sf_seek(rd, off, SEEK_SET), off);
                ck_assert_int_eq(sf_readf_float(rd, want, n), n);
                sf_close(rd);
                sf_err_t err = {0};
                ck_assert_int_eq(sf_media_read(path, off, n, nc, got, &err), SF_OK);
                for (int c = 0; c < nc; c++)
                    for (int64_t i = 0; i < n; i++)
                        ck_assert_msg(memcmp(&got[c][i], &want[i * nc + c], sizeof(float)) == 0,
                                      "%s, %d channels, frames [%lld, +%lld): channel %d frame %lld is %.9g, "
                                      "libsndfile reads %.9g",
                                      formats[f].name, nc, (long long)off, (long long)n, c, (long long)(off + i),
                                      (double)got[c][i], (double)want[i * nc + c]);
            }
            free(path);
        }
    for (int c = 0; c < 8; c++)
        free(got[c]);
    free(want);
    free(flts);
    free(ints);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_media_read)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[3] = {{1, 24, 10007, SIG_NOISE, 31, 0.99, NULL},
                          {2, 16, 20011, SIG_NOISE, 32, 0.99, NULL},
                          {2, 32, 9001, SIG_NOISE, 33, 1.5, NULL}}; /* float beyond full scale */
    s_write_sources(dir, srcs, 3);
    const int64_t ranges[][2] = {{0, 1}, {0, 10007 - 1}, {777, 4099}, {10006, 1}, {0, 9001}, {8999, 2}};
    for (int k = 0; k < 3; k++) {
        sf_media_info_t info;
        sf_err_t err = {0};
        ck_assert_int_eq(sf_media_probe(srcs[k].path, &info, &err), SF_OK);
        ck_assert_int_eq(info.channels, srcs[k].channels);
        ck_assert_int_eq(info.sample_rate, RATE);
        ck_assert_int_eq(info.frames, srcs[k].frames);
        for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
            int64_t off = ranges[r][0], n = ranges[r][1];
            if (off + n > srcs[k].frames)
                continue;
            float *dst[2];
            for (int c = 0; c < srcs[k].channels; c++)
                dst[c] = malloc(sizeof(float) * (size_t)n);
            ck_assert_int_eq(sf_media_read(srcs[k].path, off, n, srcs[k].channels, dst, &err), SF_OK);
            for (int c = 0; c < srcs[k].channels; c++) {
                for (int64_t i = 0; i < n; i++)
                    ck_assert_msg((double)dst[c][i] == s_src_value(&srcs[k], c, off + i),
                                  "src %d ch %d frame %lld: %.9g vs %.9g", k, c, (long long)(off + i),
                                  (double)dst[c][i], s_src_value(&srcs[k], c, off + i));
                free(dst[c]);
            }
        }
    }
    /* past the end: an error, never zeros */
    float buf[2][16], *dst[2] = {buf[0], buf[1]};
    sf_err_t err = {0};
    ck_assert_int_eq(sf_media_read(srcs[0].path, 10000, 8, 1, dst, &err), SF_E_IO);
    ck_assert_msg(strstr(err.msg, "short read") && strstr(err.msg, srcs[0].path), "%s", err.msg);
    /* wrong channel count */
    ck_assert_int_eq(sf_media_read(srcs[1].path, 0, 8, 1, dst, &err), SF_E_INPUT);
    ck_assert_msg(strstr(err.msg, srcs[1].path) != NULL, "%s", err.msg);
    /* missing and non-audio files name the path and libsndfile's / the OS's reason */
    char *missing = tu_path(dir, "nope.wav");
    sf_media_info_t info;
    ck_assert_int_eq(sf_media_probe(missing, &info, &err), SF_E_IO);
    ck_assert_msg(strstr(err.msg, "cannot open '") && strstr(err.msg, missing) && strstr(err.msg, "No such file"), "%s",
                  err.msg);
    ck_assert_int_eq(sf_media_read(missing, 0, 8, 1, dst, &err), SF_E_IO);
    char *text = tu_write_text(dir, "notes.wav", "this is not audio\n");
    ck_assert_int_eq(sf_media_probe(text, &info, &err), SF_E_IO);
    ck_assert_msg(strstr(err.msg, text) && strlen(err.msg) > strlen(text) + 20, "%s", err.msg);
    ck_assert_msg(err.msg[strlen(err.msg) - 1] != '.', "trailing full stop: %s", err.msg);
    /* zero frames */
    src_spec_t empty = {1, 24, 0, SIG_NOISE, 1, 0.5, NULL};
    s_write_sources(dir, &empty, 1);
    ck_assert_int_eq(sf_media_probe(empty.path, &info, &err), SF_E_INPUT);
    ck_assert_msg(strstr(err.msg, empty.path) != NULL, "%s", err.msg);
    free(missing);
    free(text);
    s_free_sources(&empty, 1);
    s_free_sources(srcs, 3);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- media: writer and read-back hash --------------------------------------------------- */

typedef struct {
    sf_format_t format;
    sf_sample_format_t sample;
    bool supported;
} fmt_case_t;

static const fmt_case_t k_formats[] = {
    {SF_FILE_WAV, SF_SAMPLE_PCM16, true},   {SF_FILE_WAV, SF_SAMPLE_PCM24, true},
    {SF_FILE_WAV, SF_SAMPLE_PCM32, true},   {SF_FILE_WAV, SF_SAMPLE_FLOAT32, true},
    {SF_FILE_RF64, SF_SAMPLE_PCM16, true},  {SF_FILE_RF64, SF_SAMPLE_PCM24, true},
    {SF_FILE_RF64, SF_SAMPLE_PCM32, true},  {SF_FILE_RF64, SF_SAMPLE_FLOAT32, true},
    {SF_FILE_W64, SF_SAMPLE_PCM16, true},   {SF_FILE_W64, SF_SAMPLE_PCM24, true},
    {SF_FILE_W64, SF_SAMPLE_PCM32, true},   {SF_FILE_W64, SF_SAMPLE_FLOAT32, true},
    {SF_FILE_AIFF, SF_SAMPLE_PCM16, true},  {SF_FILE_AIFF, SF_SAMPLE_PCM24, true},
    {SF_FILE_AIFF, SF_SAMPLE_PCM32, true},  {SF_FILE_AIFF, SF_SAMPLE_FLOAT32, true},
    {SF_FILE_FLAC, SF_SAMPLE_PCM16, true},  {SF_FILE_FLAC, SF_SAMPLE_PCM24, true},
    {SF_FILE_FLAC, SF_SAMPLE_PCM32, false}, {SF_FILE_FLAC, SF_SAMPLE_FLOAT32, false},
};
#define N_FORMATS   (sizeof k_formats / sizeof k_formats[0])
#define WR_CHANNELS 2

static const char *k_ext[] = {"wav", "rf64", "w64", "aiff", "flac"};
static const size_t k_chunks[] = {1, 1000, 4099, 0, 17};
#define WR_FRAMES (1 + 1000 + 4099 + 17)

static int s_bits(sf_sample_format_t f) { return f == SF_SAMPLE_PCM16 ? 16 : f == SF_SAMPLE_PCM24 ? 24 : 32; }

/* Test data: left-justified ints at the format's bits with both rails, or
 * floats beyond full scale, denormals and -0 (the writer must not touch them). */
static void s_writer_data(sf_sample_format_t f, int32_t *ints, float *floats)
{
    int bits = s_bits(f);
    int64_t top = ((int64_t)1 << (bits - 1)) - 1;
    for (int64_t i = 0; i < WR_FRAMES * WR_CHANNELS; i++) {
        int64_t v = (int64_t)llround(tu_noise(77, i) * (double)top);
        if (i % 101 == 0)
            v = top;
        if (i % 103 == 0)
            v = -top - 1;
        ints[i] = (int32_t)(v * ((int64_t)1 << (32 - bits)));
        floats[i] = i % 89 == 0   ? 1.75f
                    : i % 97 == 0 ? -3.5f
                    : i % 83 == 0 ? 1e-42f
                    : i % 79 == 0 ? -0.0f
                                  : (float)tu_noise(78, i);
    }
}

static char *s_write_file(const char *dir, const char *tag, const fmt_case_t *fc, uint64_t *hash)
{
    char name[64];
    snprintf(name, sizeof name, "%s_%d.%s", tag, (int)fc->sample, k_ext[fc->format]);
    char *path = tu_path(dir, name);
    int32_t *ints = malloc(sizeof(int32_t) * WR_FRAMES * WR_CHANNELS);
    float *floats = malloc(sizeof(float) * WR_FRAMES * WR_CHANNELS);
    s_writer_data(fc->sample, ints, floats);
    sf_media_writer_t *w = NULL;
    sf_err_t err = {0};
    ck_assert_msg(sf_media_writer_open(path, fc->format, fc->sample, RATE, WR_CHANNELS, NULL, &w, &err) == SF_OK, "%s",
                  err.msg);
    size_t at = 0;
    for (size_t c = 0; c < sizeof k_chunks / sizeof k_chunks[0]; c++) {
        sf_rc rc = fc->sample == SF_SAMPLE_FLOAT32
                       ? sf_media_writer_write_float(w, floats + at * WR_CHANNELS, k_chunks[c], &err)
                       : sf_media_writer_write_int(w, ints + at * WR_CHANNELS, k_chunks[c], &err);
        ck_assert_msg(rc == SF_OK, "%s", err.msg);
        at += k_chunks[c];
    }
    ck_assert_int_eq(sf_media_writer_frames(w), WR_FRAMES);
    *hash = sf_media_writer_pcm_hash(w);
    /* the writer hashes exactly the buffers passed */
    uint64_t direct = fc->sample == SF_SAMPLE_FLOAT32 ? sf_hash_xxh3(floats, sizeof(float) * WR_FRAMES * WR_CHANNELS)
                                                      : sf_hash_xxh3(ints, sizeof(int32_t) * WR_FRAMES * WR_CHANNELS);
    ck_assert(*hash == direct);
    ck_assert_int_eq(sf_media_writer_close(&w, &err), SF_OK);
    ck_assert_ptr_null(w);
    free(ints);
    free(floats);
    return path;
}

START_TEST(test_writer_roundtrip)
{
    const fmt_case_t *fc = &k_formats[_i];
    char *dir = tu_tmpdir();
    sf_err_t err = {0};
    if (!fc->supported) {
        char *path = tu_path(dir, "bad.flac");
        sf_media_writer_t *w = NULL;
        ck_assert_int_eq(sf_media_writer_open(path, fc->format, fc->sample, RATE, 2, NULL, &w, &err), SF_E_INPUT);
        ck_assert_ptr_null(w);
        ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, "not supported"), "%s", err.msg);
        ck_assert_msg(!tu_exists(path), "a rejected format still created the file");
        free(path);
        tu_rm_rf(dir);
        free(dir);
        return;
    }
    uint64_t hash;
    char *path = s_write_file(dir, "rt", fc, &hash);

    uint64_t back;
    int64_t frames;
    int channels;
    ck_assert_msg(sf_media_hash_pcm(path, fc->sample, NULL, &back, &frames, &channels, &err) == SF_OK, "%s", err.msg);
    ck_assert_int_eq(frames, WR_FRAMES);
    ck_assert_int_eq(channels, WR_CHANNELS);
    ck_assert_msg(back == hash, "%s: read-back hash differs", path);

    /* exact read-back, independently of media.c */
    int32_t *ints = malloc(sizeof(int32_t) * WR_FRAMES * WR_CHANNELS);
    float *floats = malloc(sizeof(float) * WR_FRAMES * WR_CHANNELS);
    s_writer_data(fc->sample, ints, floats);
    if (fc->sample == SF_SAMPLE_FLOAT32) {
        int n_ch;
        int64_t n_fr;
        double *got = tu_read_audio(path, &n_ch, &n_fr, NULL);
        ck_assert_int_eq(n_fr, WR_FRAMES);
        for (int64_t i = 0; i < WR_FRAMES * WR_CHANNELS; i++)
            ck_assert_msg(got[i] == (double)floats[i] && !signbit(got[i]) == !signbit(floats[i]),
                          "sample %lld: %a, wrote %a", (long long)i, got[i], (double)floats[i]);
        free(got);
    } else {
        int bits = s_bits(fc->sample), n_ch;
        int64_t n_fr;
        int32_t *got = tu_read_pcm_ints(path, bits, &n_ch, &n_fr);
        ck_assert_int_eq(n_fr, WR_FRAMES);
        for (int64_t i = 0; i < WR_FRAMES * WR_CHANNELS; i++)
            ck_assert_msg(got[i] == ints[i] >> (32 - bits), "sample %lld: %d, wrote %d", (long long)i, got[i],
                          ints[i] >> (32 - bits));
        free(got);
    }
    /* asking for the wrong sample format is a verification failure */
    sf_sample_format_t other = fc->sample == SF_SAMPLE_PCM16 ? SF_SAMPLE_PCM24 : SF_SAMPLE_PCM16;
    ck_assert_int_eq(sf_media_hash_pcm(path, other, NULL, &back, &frames, &channels, &err), SF_E_VERIFY);
    free(ints);
    free(floats);
    free(path);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* Same samples, same bytes -- also a second later (libsndfile's PEAK chunk
 * would carry the time of writing). */
START_TEST(test_writer_bytes_reproducible)
{
    char *dir = tu_tmpdir();
    char *first[N_FORMATS] = {0};
    uint64_t h;
    for (size_t k = 0; k < N_FORMATS; k++)
        if (k_formats[k].supported)
            first[k] = s_write_file(dir, "a", &k_formats[k], &h);
    nanosleep(&(struct timespec){.tv_sec = 1, .tv_nsec = 100 * 1000 * 1000}, NULL);
    for (size_t k = 0; k < N_FORMATS; k++)
        if (k_formats[k].supported) {
            char *again = s_write_file(dir, "b", &k_formats[k], &h);
            ck_assert_msg(tu_files_equal(first[k], again), "%s and %s differ", first[k], again);
            free(again);
            free(first[k]);
        }
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* A WAV that would pass 4 GiB is written as RF64 (its sizes are 64-bit);
 * an RF64 carries bext and iXML like a WAV, and its loudness fields are
 * written after the samples without touching them. */
START_TEST(test_writer_rf64_and_bwf)
{
    const int64_t limit = (int64_t)((0xFFFFFFFFull - (1u << 20)) / 8); /* stereo pcm32: 8 bytes a frame */
    ck_assert_int_eq(sf_media_container(SF_FILE_WAV, limit, 2, SF_SAMPLE_PCM32), SF_FILE_WAV);
    ck_assert_int_eq(sf_media_container(SF_FILE_WAV, limit + 1, 2, SF_SAMPLE_PCM32), SF_FILE_RF64);
    ck_assert_int_eq(sf_media_container(SF_FILE_WAV, 3LL * 3600 * 48000, 8, SF_SAMPLE_PCM24), SF_FILE_RF64);
    ck_assert_int_eq(sf_media_container(SF_FILE_WAV, 3600LL * 48000, 2, SF_SAMPLE_PCM24), SF_FILE_WAV);
    ck_assert_int_eq(sf_media_container(SF_FILE_FLAC, limit * 4, 2, SF_SAMPLE_PCM24), SF_FILE_FLAC);

    char *dir = tu_tmpdir();
    char *path = tu_path(dir, "b.rf64");
    const sf_media_bwf_t bwf = {.description = "d",
                                .originator = "stemfarm",
                                .time_reference = 5000000000ull,
                                .coding_history = "A=PCM\r\n",
                                .ixml = "<BWFXML/>"};
    sf_media_writer_t *w = NULL;
    sf_err_t err = {0};
    ck_assert_msg(sf_media_writer_open(path, SF_FILE_RF64, SF_SAMPLE_PCM24, RATE, 2, &bwf, &w, &err) == SF_OK, "%s",
                  err.msg);
    int32_t frames[2 * 1000];
    for (int i = 0; i < 2000; i++)
        frames[i] = (i * 7919 % 65536 - 32768) * 256;
    ck_assert_int_eq(sf_media_writer_write_int(w, frames, 1000, &err), SF_OK);
    const uint64_t written = sf_media_writer_pcm_hash(w);
    ck_assert_int_eq(sf_media_writer_close(&w, &err), SF_OK);
    sf_meter_result_t m = {.integrated_lufs = -23.456,
                           .lra_lu = 4.2,
                           .true_peak = 0.5,
                           .max_momentary_lufs = -18,
                           .max_shortterm_lufs = -INFINITY};
    ck_assert_msg(sf_media_bwf_set_loudness(path, &m, &err) == SF_OK, "%s", err.msg);
    uint64_t back;
    int64_t n;
    int ch;
    ck_assert_int_eq(sf_media_hash_pcm(path, SF_SAMPLE_PCM24, NULL, &back, &n, &ch, &err), SF_OK);
    ck_assert(back == written && n == 1000 && ch == 2);
    SF_INFO info = {0};
    SNDFILE *snd = sf_open(path, SFM_READ, &info);
    ck_assert_int_eq(info.format & SF_FORMAT_TYPEMASK, SF_FORMAT_RF64);
    SF_BROADCAST_INFO bext;
    memset(&bext, 0, sizeof bext);
    ck_assert(sf_command(snd, SFC_GET_BROADCAST_INFO, &bext, sizeof bext));
    ck_assert_int_eq(((uint64_t)bext.time_reference_high << 32) | bext.time_reference_low, 5000000000ull);
    ck_assert_int_eq(bext.loudness_value, -2346);
    ck_assert_int_eq(bext.loudness_range, 420);
    ck_assert_int_eq(bext.max_true_peak_level, -602);
    ck_assert_int_eq(bext.max_momentary_loudness, -1800);
    ck_assert_int_eq(bext.max_shortterm_loudness, 0x7FFF); /* silence: no value */
    sf_close(snd);
    /* Broadcast WAV metadata is for WAV and RF64 only; a plain WAV has no bext to fill */
    char *flac = tu_path(dir, "b.flac");
    ck_assert_int_eq(sf_media_writer_open(flac, SF_FILE_FLAC, SF_SAMPLE_PCM24, RATE, 2, &bwf, &w, &err), SF_E_INPUT);
    ck_assert_msg(strstr(err.msg, "Broadcast WAV metadata needs wav or rf64, not flac"), "%s", err.msg);
    char *plain = tu_path(dir, "p.wav");
    ck_assert_int_eq(sf_media_writer_open(plain, SF_FILE_WAV, SF_SAMPLE_PCM24, RATE, 2, NULL, &w, &err), SF_OK);
    ck_assert_int_eq(sf_media_writer_write_int(w, frames, 1000, &err), SF_OK);
    ck_assert_int_eq(sf_media_writer_close(&w, &err), SF_OK);
    ck_assert_int_eq(sf_media_bwf_set_loudness(plain, &m, &err), SF_E_VERIFY);
    free(plain);
    free(flac);
    free(path);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_writer_errors)
{
    char *dir = tu_tmpdir();
    char *path = tu_path(dir, "no/such/folder/x.wav");
    sf_media_writer_t *w = NULL;
    sf_err_t err = {0};
    ck_assert_int_eq(sf_media_writer_open(path, SF_FILE_WAV, SF_SAMPLE_PCM24, RATE, 2, NULL, &w, &err), SF_E_IO);
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, "No such file"), "%s", err.msg);
    ck_assert_ptr_null(w);
    free(path);
    /* writing the wrong kind of sample is refused */
    path = tu_path(dir, "x.wav");
    ck_assert_int_eq(sf_media_writer_open(path, SF_FILE_WAV, SF_SAMPLE_PCM24, RATE, 1, NULL, &w, &err), SF_OK);
    float f = 0.5f;
    ck_assert_int_eq(sf_media_writer_write_float(w, &f, 1, &err), SF_E_INTERNAL);
    ck_assert_int_eq(sf_media_writer_frames(w), 0);
    ck_assert_int_eq(sf_media_writer_close(&w, &err), SF_OK);
    ck_assert_int_eq(sf_media_writer_close(&w, &err), SF_OK); /* NULL-safe */
    /* hash of a missing file */
    uint64_t h;
    int64_t n;
    int c;
    char *missing = tu_path(dir, "gone.wav");
    ck_assert_int_eq(sf_media_hash_pcm(missing, SF_SAMPLE_PCM24, NULL, &h, &n, &c, &err), SF_E_IO);
    ck_assert_msg(strstr(err.msg, missing) != NULL, "%s", err.msg);
    free(missing);
    free(path);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- graph sessions, built by hand ------------------------------------------------------ */

/* An empty session with a master of n channels; tracks, buses, stems and
 * mixes are added by the g_* helpers and freed by g_free. */
static sf_session_t *g_new(int master_channels)
{
    sf_session_t *s = sf_calloc(1, sizeof *s);
    ck_assert_ptr_nonnull(s);
    s->path = sf_strdup("graph.yaml");
    s->name = sf_strdup("graph");
    s->sample_rate = RATE;
    s->master_channels = master_channels;
    s->tail_threshold_db = -144;
    return s;
}

/* Grows an array of n - 1 items to n, the new one zeroed. */
static void *g_grow(void *p, size_t n, size_t size)
{
    void *q = sf_realloc(p, n * size);
    ck_assert_ptr_nonnull(q);
    memset((char *)q + (n - 1) * size, 0, size);
    return q;
}

/* A clip of `src` on track t: at `at`, from source frame `offset`, `length`
 * frames (0: to the end). Returns it (valid until the next g_clip on t). */
static sf_clip_t *g_clip(sf_session_t *s, size_t t, const src_spec_t *src, int64_t at, int64_t offset, int64_t length)
{
    sf_track_t *tr = &s->tracks[t];
    tr->clips = g_grow(tr->clips, ++tr->n_clips, sizeof *tr->clips);
    sf_clip_t *c = &tr->clips[tr->n_clips - 1];
    c->path = sf_strdup(src->path);
    c->at = at;
    c->offset = offset;
    c->length = length ? length : src->frames - offset;
    c->source_channels = src->channels;
    c->source_frames = src->frames;
    c->source_rate = RATE;
    c->channel = -1;
    tr->n_channels = src->channels;
    return c;
}

/* A track feeding `output` (SF_MASTER_BUS or a bus), with one clip of src
 * at `at` covering the source when src is not NULL. */
static size_t g_track(sf_session_t *s, const src_spec_t *src, int64_t at, double gain_db, double pan, int output)
{
    s->tracks = g_grow(s->tracks, ++s->n_tracks, sizeof *s->tracks);
    size_t t = s->n_tracks - 1;
    sf_track_t *tr = &s->tracks[t];
    char name[32];
    snprintf(name, sizeof name, "T%zu", t);
    tr->name = sf_strdup(name);
    tr->gain_db = gain_db;
    tr->pan = pan;
    tr->output_bus = output;
    tr->n_channels = 1;
    if (src)
        g_clip(s, t, src, at, 0, 0);
    return t;
}

/* A bus, appended to bus_order (callers add buses in a feeding order, or
 * set bus_order themselves). */
static int g_bus(sf_session_t *s, int n_channels, int output, double gain_db)
{
    s->buses = g_grow(s->buses, ++s->n_buses, sizeof *s->buses);
    sf_bus_t *b = &s->buses[s->n_buses - 1];
    char name[32];
    snprintf(name, sizeof name, "B%zu", s->n_buses - 1);
    b->name = sf_strdup(name);
    b->n_channels = n_channels;
    b->output_bus = output;
    b->gain_db = gain_db;
    s->bus_order = g_grow(s->bus_order, s->n_buses, sizeof *s->bus_order);
    s->bus_order[s->n_buses - 1] = s->n_buses - 1;
    return (int)s->n_buses - 1;
}

static sf_send_t *g_send(sf_send_t **sends, size_t *n, int bus, double level_db, bool pre)
{
    *sends = g_grow(*sends, ++*n, sizeof **sends);
    sf_send_t *sd = &(*sends)[*n - 1];
    sd->bus = bus;
    sd->level_db = level_db;
    sd->pre_fader = pre;
    return sd;
}

static void g_stem(sf_session_t *s, int n_channels, const size_t *tracks, size_t n)
{
    s->stems = g_grow(s->stems, ++s->n_stems, sizeof *s->stems);
    sf_stem_t *st = &s->stems[s->n_stems - 1];
    char name[32];
    snprintf(name, sizeof name, "S%zu", s->n_stems - 1);
    st->name = sf_strdup(name);
    st->n_channels = n_channels;
    st->n_tracks = n;
    st->tracks = sf_calloc(n ? n : 1, sizeof *st->tracks);
    memcpy(st->tracks, tracks, sizeof *tracks * n);
}

static void g_mix(sf_session_t *s, const double *gains_db)
{
    s->mixes = g_grow(s->mixes, ++s->n_mixes, sizeof *s->mixes);
    sf_mix_t *m = &s->mixes[s->n_mixes - 1];
    m->name = sf_strdup("M");
    m->n_channels = s->master_channels;
    m->stem_gain_db = sf_calloc(s->n_stems, sizeof *m->stem_gain_db);
    memcpy(m->stem_gain_db, gains_db, sizeof *gains_db * s->n_stems);
}

static void g_auto(sf_automation_t *a, const int64_t *frames, const double *values, size_t n)
{
    a->frames = sf_calloc(n, sizeof *a->frames);
    a->values = sf_calloc(n, sizeof *a->values);
    memcpy(a->frames, frames, sizeof *frames * n);
    memcpy(a->values, values, sizeof *values * n);
    a->n_points = n;
}

static void g_auto_free(sf_automation_t *a)
{
    sf_free(a->frames);
    sf_free(a->values);
}

static void g_free(sf_session_t *s)
{
    for (size_t k = 0; k < s->n_tracks; k++) {
        sf_track_t *t = &s->tracks[k];
        for (size_t j = 0; j < t->n_clips; j++)
            sf_free(t->clips[j].path);
        for (size_t j = 0; j < t->n_sends; j++)
            g_auto_free(&t->sends[j].level_auto);
        g_auto_free(&t->gain_auto);
        g_auto_free(&t->pan_auto);
        sf_free(t->fx);
        sf_free(t->sends);
        sf_free(t->clips);
        sf_free(t->name);
    }
    for (size_t b = 0; b < s->n_buses; b++) {
        for (size_t j = 0; j < s->buses[b].n_sends; j++)
            g_auto_free(&s->buses[b].sends[j].level_auto);
        sf_free(s->buses[b].sends);
        sf_free(s->buses[b].fx);
        sf_free(s->buses[b].name);
    }
    sf_free(s->master_fx);
    for (size_t k = 0; k < s->n_stems; k++) {
        sf_free(s->stems[k].tracks);
        sf_free(s->stems[k].name);
    }
    for (size_t k = 0; k < s->n_mixes; k++) {
        sf_free(s->mixes[k].stem_gain_db);
        sf_free(s->mixes[k].name);
    }
    sf_free(s->tracks);
    sf_free(s->buses);
    sf_free(s->bus_order);
    sf_free(s->stems);
    sf_free(s->mixes);
    sf_free(s->path);
    sf_free(s->name);
    sf_free(s);
}

/* ---- the independent reference graph ----------------------------------------------------- */

/* Written from render.h's and SESSION-FORMAT's words, per frame, in double,
 * with libm's pow, sin and cos; it shares no code with render.c. */

static double r_db(double db) { return db == -(double)INFINITY ? 0.0 : pow(10.0, db / 20.0); }

static const src_spec_t *r_src(const src_spec_t *srcs, size_t n, const char *path)
{
    for (size_t k = 0; k < n; k++)
        if (strcmp(srcs[k].path, path) == 0)
            return &srcs[k];
    ck_abort_msg("no source %s", path);
    return NULL;
}

/* Breakpoints, linear between; -inf ends ramp from/to the floor; a -inf
 * point or a stretch between two is -inf. */
static double r_auto(const sf_automation_t *a, int64_t f, double floor_db)
{
    const double ninf = -(double)INFINITY;
    size_t last = 0;
    bool any = false;
    for (size_t k = 0; k < a->n_points; k++)
        if (a->frames[k] <= f) {
            last = k;
            any = true;
        }
    if (!any)
        return a->values[0];
    if (last == a->n_points - 1 || a->frames[last] == f)
        return a->values[last];
    double v0 = a->values[last], v1 = a->values[last + 1];
    if (v0 == ninf && v1 == ninf)
        return ninf;
    if (v0 == ninf)
        v0 = floor_db;
    if (v1 == ninf)
        v1 = floor_db;
    double x = (double)(f - a->frames[last]) / (double)(a->frames[last + 1] - a->frames[last]);
    return v0 + (v1 - v0) * x;
}

static double r_shape(sf_fade_shape_t sh, double x) { return sh == SF_FADE_LINEAR ? x : sin(x * M_PI / 2); }

/* One clip's value on input channel `in` at frame f (inside the clip). */
static double r_clip(const sf_clip_t *c, const src_spec_t *src, int in, int64_t f)
{
    int ch = c->channel >= 0 ? c->channel : in;
    double v = s_src_value(src, ch, c->offset + (f - c->at)) * r_db(c->gain_db);
    int64_t j = f - c->at;
    if (j < c->fade_in.length)
        v *= r_shape(c->fade_in.shape, (double)j / (double)c->fade_in.length);
    int64_t k = c->at + c->length - 1 - f;
    if (k < c->fade_out.length)
        v *= r_shape(c->fade_out.shape, (double)k / (double)c->fade_out.length);
    return v;
}

/* The track's clips at f: in file order, each replacing what is under it,
 * or over its crossfade length: under * cos + clip * sin. */
static double r_pre(const sf_track_t *t, const src_spec_t *srcs, size_t n_srcs, int in, int64_t f)
{
    double acc = 0.0;
    for (size_t j = 0; j < t->n_clips; j++) {
        const sf_clip_t *c = &t->clips[j];
        if (f < c->at || f >= c->at + c->length)
            continue;
        double v = r_clip(c, r_src(srcs, n_srcs, c->path), in, f);
        int64_t x = f - c->at;
        if (x < c->crossfade) {
            double th = (double)x / (double)c->crossfade * M_PI / 2;
            acc = acc * cos(th) + v * sin(th);
        } else {
            acc = v;
        }
    }
    return acc;
}

/* The layouts table of render.h, entry by entry. */
static void r_layout(int n_in, int n_out, double g[8][8])
{
    const double h = M_SQRT1_2;
    memset(g, 0, sizeof(double) * 64);
    if (n_in == n_out) {
        for (int c = 0; c < n_in; c++)
            g[c][c] = 1;
        return;
    }
    if (n_in == 1) {
        g[0][0] = g[0][1] = h;
        return;
    }
    if (n_in == 2) {
        if (n_out == 1) {
            g[0][0] = g[1][0] = h;
        } else {
            g[0][0] = 1;
            g[1][1] = 1;
        }
        return;
    }
    if (n_out == 2 || n_out == 1) {
        double l[8] = {1, 0, h, 0, h, 0, 0, 0}, r[8] = {0, 1, h, 0, 0, h, 0, 0};
        if (n_in == 8) {
            l[6] = h;
            r[7] = h;
        }
        for (int c = 0; c < n_in; c++) {
            if (n_out == 2) {
                g[c][0] = l[c];
                g[c][1] = r[c];
            } else {
                g[c][0] = (l[c] + r[c]) / sqrt(2.0);
            }
        }
        return;
    }
    if (n_in == 6) { /* 5.1 -> 7.1 */
        for (int c = 0; c < 6; c++)
            g[c][c] = 1;
        return;
    }
    for (int c = 0; c < 4; c++) /* 7.1 -> 5.1 */
        g[c][c] = 1;
    g[4][4] = g[6][4] = h;
    g[5][5] = g[7][5] = h;
}

static int r_node_ch(const sf_session_t *s, int bus)
{
    return bus == SF_MASTER_BUS ? s->master_channels : s->buses[bus].n_channels;
}

/* A panned track's gains into a bus of n_dest channels, no fader: the pan
 * law into L and R, or the fold into mono. */
static void r_track_mat(const sf_track_t *t, double pan, int n_dest, double m[2][8])
{
    memset(m, 0, sizeof(double) * 16);
    const int n_in = t->n_channels;
    if (n_dest == 1) {
        m[0][0] = n_in == 1 ? 1.0 : M_SQRT1_2;
        if (n_in == 2)
            m[1][0] = M_SQRT1_2;
        return;
    }
    pan = pan < -1 ? -1 : pan > 1 ? 1 : pan;
    if (n_in == 1) {
        m[0][0] = cos((pan + 1) * M_PI / 4);
        m[0][1] = sin((pan + 1) * M_PI / 4);
    } else {
        m[0][0] = pan > 0 ? cos(pan * M_PI / 2) : 1.0;
        m[1][1] = pan < 0 ? cos(-pan * M_PI / 2) : 1.0;
    }
}

/* A routed track's gains: unity into its channels of the output bus, through
 * the layouts for a bus of another layout. */
static void r_track_route(const sf_session_t *s, const sf_track_t *t, int n_dest, double m[2][8])
{
    const int n_ob = r_node_ch(s, t->output_bus);
    double r[8] = {0}, lg[8][8];
    for (int k = 0; k < t->n_route; k++)
        r[t->route[k]] = 1.0;
    memset(m, 0, sizeof(double) * 16);
    r_layout(n_ob, n_dest, lg);
    for (int c = 0; c < n_dest; c++)
        for (int k = 0; k < n_ob; k++)
            m[0][c] += r[k] * lg[k][c];
}

/* ref[c][0..n) = what the tracks `set` (session order) give at the master
 * over [start, start + n), in the layout n_out. */
static void r_graph(const sf_session_t *s, const src_spec_t *srcs, size_t n_srcs, const size_t *set, size_t n_set,
                    int n_out, int64_t start, int64_t n, double **ref)
{
    const size_t n_nodes = 1 + s->n_buses;
    double(*node)[8] = malloc(sizeof *node * n_nodes);
    const double floor_db = s->tail_threshold_db;
    for (int64_t i = 0; i < n; i++) {
        const int64_t f = start + i;
        memset(node, 0, sizeof *node * n_nodes);
        for (size_t k = 0; k < n_set; k++) {
            const sf_track_t *t = &s->tracks[set[k]];
            if (t->mute)
                continue;
            double pre[2] = {0, 0};
            for (int in = 0; in < t->n_channels; in++)
                pre[in] = r_pre(t, srcs, n_srcs, in, f);
            const double sign = t->invert ? -1.0 : 1.0;
            const double fader = sign * r_db(t->gain_auto.n_points ? r_auto(&t->gain_auto, f, floor_db) : t->gain_db);
            const double pan = t->pan_auto.n_points ? r_auto(&t->pan_auto, f, 0) : t->pan;
            for (size_t d = 0; d <= t->n_sends; d++) {
                const int bus = d == 0 ? t->output_bus : t->sends[d - 1].bus;
                double amp = fader;
                if (d > 0) {
                    const sf_send_t *sd = &t->sends[d - 1];
                    amp = (sd->pre_fader ? sign : fader) *
                          r_db(sd->level_auto.n_points ? r_auto(&sd->level_auto, f, floor_db) : sd->level_db);
                }
                const int n_dest = r_node_ch(s, bus);
                double m[2][8];
                if (t->n_route > 0)
                    r_track_route(s, t, n_dest, m);
                else
                    r_track_mat(t, pan, n_dest, m);
                for (int in = 0; in < t->n_channels; in++)
                    for (int c = 0; c < n_dest; c++)
                        node[bus + 1][c] += pre[in] * amp * m[in][c];
            }
        }
        for (size_t k = 0; k < s->n_buses; k++) {
            const size_t b = s->bus_order[k];
            const sf_bus_t *bus = &s->buses[b];
            double sig[8];
            memcpy(sig, node[1 + b], sizeof sig);
            const double fader = r_db(bus->gain_db);
            for (size_t d = 0; d <= bus->n_sends; d++) {
                const int to = d == 0 ? bus->output_bus : bus->sends[d - 1].bus;
                double amp = fader;
                if (d > 0) {
                    const sf_send_t *sd = &bus->sends[d - 1];
                    amp = (sd->pre_fader ? 1.0 : fader) *
                          r_db(sd->level_auto.n_points ? r_auto(&sd->level_auto, f, floor_db) : sd->level_db);
                }
                double lg[8][8];
                r_layout(bus->n_channels, r_node_ch(s, to), lg);
                for (int in = 0; in < bus->n_channels; in++)
                    for (int c = 0; c < r_node_ch(s, to); c++)
                        node[to + 1][c] += sig[in] * amp * lg[in][c];
            }
        }
        double lg[8][8];
        r_layout(s->master_channels, n_out, lg);
        for (int c = 0; c < n_out; c++) {
            double v = 0;
            for (int in = 0; in < s->master_channels; in++)
                v += node[0][in] * lg[in][c];
            ref[c][i] = v;
        }
    }
    free(node);
}

/* Planar buffers of any width. */
typedef struct {
    int n_channels;
    int64_t n_frames;
    float *ch[8];
    double *ref[8];
} wide_t;

static wide_t w_new(int n_channels, int64_t n_frames)
{
    wide_t w = {.n_channels = n_channels, .n_frames = n_frames};
    for (int c = 0; c < n_channels; c++) {
        w.ch[c] = malloc(sizeof(float) * (size_t)(n_frames + 1));
        w.ref[c] = calloc((size_t)(n_frames + 1), sizeof(double));
        ck_assert(w.ch[c] && w.ref[c]);
        for (int64_t i = 0; i < n_frames; i++)
            w.ch[c][i] = NAN;
    }
    return w;
}

static void w_free(wide_t *w)
{
    for (int c = 0; c < w->n_channels; c++) {
        free(w->ch[c]);
        free(w->ref[c]);
    }
}

static void w_render(const sf_session_t *s, sf_target_t t, int64_t start, wide_t *w)
{
    sf_err_t err = {0};
    sf_rc rc = sf_render(s, t, start, w->n_frames, 0, w->ch, &err);
    ck_assert_msg(rc == SF_OK, "render %d:%u: %s", (int)t.kind, t.index, err.msg);
}

/* max |render - ref| over every channel; fails on an unwritten sample. */
static double w_max_err(const wide_t *w)
{
    double e = 0;
    for (int c = 0; c < w->n_channels; c++)
        for (int64_t i = 0; i < w->n_frames; i++) {
            double d = fabs((double)w->ch[c][i] - w->ref[c][i]);
            ck_assert_msg(d == d, "ch %d frame %lld: %g vs %g", c, (long long)i, (double)w->ch[c][i], w->ref[c][i]);
            e = d > e ? d : e;
        }
    return e;
}

/* Renders a stem and returns its max error against r_graph. */
static double g_stem_err(const sf_session_t *s, const src_spec_t *srcs, size_t n_srcs, size_t stem, int64_t start,
                         int64_t n)
{
    const sf_stem_t *st = &s->stems[stem];
    wide_t w = w_new(st->n_channels, n);
    w_render(s, (sf_target_t){SF_TARGET_STEM, (uint32_t)stem}, start, &w);
    r_graph(s, srcs, n_srcs, st->tracks, st->n_tracks, st->n_channels, start, n, w.ref);
    double e = w_max_err(&w);
    w_free(&w);
    return e;
}

/* ---- layouts --------------------------------------------------------------------------- */

/* Every pair of layouts against the table written out here, entry by entry. */
START_TEST(test_layout_gains)
{
    static const int k_layouts[] = {1, 2, 6, 8};
    const double h = M_SQRT1_2;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            const int ni = k_layouts[a], no = k_layouts[b];
            double want[8][8] = {{0}};
            if (ni == no) {
                for (int c = 0; c < ni; c++)
                    want[c][c] = 1;
            } else if (ni == 1) {
                want[0][0] = want[0][1] = h; /* M -> L, R at -3 dB */
            } else if (ni == 2 && no == 1) {
                want[0][0] = want[1][0] = h;
            } else if (ni == 2) {
                want[0][0] = want[1][1] = 1;
            } else if (ni == 6 && no == 2) { /* L R C LFE Ls Rs */
                double t[6][2] = {{1, 0}, {0, 1}, {h, h}, {0, 0}, {h, 0}, {0, h}};
                for (int c = 0; c < 6; c++)
                    want[c][0] = t[c][0], want[c][1] = t[c][1];
            } else if (ni == 8 && no == 2) { /* L R C LFE Lss Rss Lsr Rsr */
                double t[8][2] = {{1, 0}, {0, 1}, {h, h}, {0, 0}, {h, 0}, {0, h}, {h, 0}, {0, h}};
                for (int c = 0; c < 8; c++)
                    want[c][0] = t[c][0], want[c][1] = t[c][1];
            } else if (ni == 6 && no == 1) { /* (L' + R') / sqrt2 */
                double t[6] = {h, h, 1, 0, 0.5, 0.5};
                for (int c = 0; c < 6; c++)
                    want[c][0] = t[c];
            } else if (ni == 8 && no == 1) {
                double t[8] = {h, h, 1, 0, 0.5, 0.5, 0.5, 0.5};
                for (int c = 0; c < 8; c++)
                    want[c][0] = t[c];
            } else if (ni == 6 && no == 8) { /* Ls -> Lss, Rs -> Rss */
                for (int c = 0; c < 6; c++)
                    want[c][c] = 1;
            } else { /* 7.1 -> 5.1: Ls = (Lss + Lsr) / sqrt2 */
                for (int c = 0; c < 4; c++)
                    want[c][c] = 1;
                want[4][4] = want[6][4] = h;
                want[5][5] = want[7][5] = h;
            }
            double got[8][8];
            memset(got, 0x7f, sizeof got);
            sf_render_layout_gains(ni, no, got);
            for (int i = 0; i < 8; i++)
                for (int o = 0; o < 8; o++) {
                    double w = i < ni && o < no ? want[i][o] : 0.0;
                    ck_assert_msg(fabs(got[i][o] - w) <= 2.3e-16, "%d -> %d: [%d][%d] = %.17g, want %.17g", ni, no, i,
                                  o, got[i][o], w);
                }
        }
    /* a bad layout gives silence, not garbage */
    double got[8][8];
    sf_render_layout_gains(3, 2, got);
    for (int i = 0; i < 8; i++)
        for (int o = 0; o < 8; o++)
            ck_assert(got[i][o] == 0.0);
}
END_TEST

/* Mono tracks routed to C and to LFE of a 5.1 bus; the 5.1 master as a 5.1
 * stem and folded to stereo; a stereo source on a mono bus (-3 dB fold). */
START_TEST(test_route_and_layouts)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[] = {{1, 24, 4000, SIG_CONST, 0, 0.5, NULL},
                         {1, 24, 4000, SIG_CONST, 0, 0.25, NULL},
                         {2, 24, 4000, SIG_CONST, 0, 0.5, NULL}, /* L 0.5, R -0.25 */
                         {1, 24, 4000, SIG_NOISE, 7, 0.5, NULL}};
    s_write_sources(dir, srcs, 4);
    sf_session_t *s = g_new(6);
    int b51 = g_bus(s, 6, SF_MASTER_BUS, 0);
    int bmono = g_bus(s, 1, SF_MASTER_BUS, -6);
    size_t tc = g_track(s, &srcs[0], 10, 0, 0.7, b51); /* pan is ignored when routed */
    s->tracks[tc].route[0] = 2;                        /* C */
    s->tracks[tc].n_route = 1;
    size_t tl = g_track(s, &srcs[1], 10, -6, 0, b51);
    s->tracks[tl].route[0] = 3; /* LFE */
    s->tracks[tl].n_route = 1;
    size_t ts = g_track(s, &srcs[2], 10, 0, 0.3, bmono);
    size_t tn = g_track(s, &srcs[3], 17, -3, -0.4, b51); /* panned: into L and R of the 5.1 bus */
    size_t all[] = {tc, tl, ts, tn};
    g_stem(s, 6, all, 1);     /* S0: C only, 5.1 */
    g_stem(s, 6, all + 1, 1); /* S1: LFE only */
    g_stem(s, 6, all + 2, 1); /* S2: stereo on the mono bus */
    g_stem(s, 2, all, 4);     /* S3: everything, folded to stereo */
    g_stem(s, 6, all, 4);     /* S4: everything, 5.1 */

    wide_t w = w_new(6, 100);
    w_render(s, (sf_target_t){SF_TARGET_STEM, 0}, 0, &w);
    for (int c = 0; c < 6; c++)
        for (int i = 0; i < 100; i++)
            ck_assert_msg(w.ch[c][i] == (c == 2 && i >= 10 ? 0.5f : 0.0f), "C: ch %d [%d] = %g", c, i,
                          (double)w.ch[c][i]);
    w_render(s, (sf_target_t){SF_TARGET_STEM, 1}, 0, &w);
    const double g6 = pow(10, -6 / 20.0);
    for (int c = 0; c < 6; c++)
        for (int i = 10; i < 100; i++) {
            double want = c == 3 ? 0.25 * g6 : 0.0;
            ck_assert_msg(fabs((double)w.ch[c][i] - want) <= 1.2e-8, "LFE: ch %d = %.9g", c, (double)w.ch[c][i]);
        }
    /* stereo (0.5, -0.25) folded at -3 dB into a -6 dB mono bus, which feeds
     * L and R of the 5.1 master at -3 dB */
    w_render(s, (sf_target_t){SF_TARGET_STEM, 2}, 0, &w);
    double mono = (0.5 * M_SQRT1_2 - 0.25 * M_SQRT1_2) * g6;
    for (int c = 0; c < 6; c++) {
        double want = c < 2 ? mono * M_SQRT1_2 : 0.0;
        ck_assert_msg(fabs((double)w.ch[c][50] - want) <= 1.2e-8, "mono bus: ch %d = %.9g, want %.9g", c,
                      (double)w.ch[c][50], want);
    }
    w_free(&w);
    /* the whole thing against the reference, 5.1 and folded */
    double e3 = g_stem_err(s, srcs, 4, 3, 0, 4100);
    double e4 = g_stem_err(s, srcs, 4, 4, 0, 4100);
    ck_assert_msg(e3 <= 2 * LSB24 && e4 <= 2 * LSB24, "errors %g %g", e3, e4);
    /* C of the routed track lands at -3 dB in L and R of the stereo fold */
    wide_t st = w_new(2, 100);
    w_render(s, (sf_target_t){SF_TARGET_STEM, 3}, 0, &st);
    g_free(s);

    /* a stereo master fed by a 5.1 bus: C to L and R at -3 dB, LFE dropped */
    s = g_new(2);
    b51 = g_bus(s, 6, SF_MASTER_BUS, 0);
    tc = g_track(s, &srcs[0], 0, 0, 0, b51);
    s->tracks[tc].route[0] = 2;
    s->tracks[tc].n_route = 1;
    tl = g_track(s, &srcs[1], 0, 0, 0, b51);
    s->tracks[tl].route[0] = 3;
    s->tracks[tl].n_route = 1;
    size_t both[] = {tc, tl};
    g_stem(s, 2, both, 2);
    w_render(s, (sf_target_t){SF_TARGET_STEM, 0}, 0, &st);
    for (int c = 0; c < 2; c++)
        ck_assert_msg(fabs((double)st.ch[c][50] - 0.5 * M_SQRT1_2) <= 3e-8, "ch %d = %.9g", c, (double)st.ch[c][50]);
    w_free(&st);
    g_free(s);
    s_free_sources(srcs, 4);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- sends and buses ------------------------------------------------------------------- */

/* Track A (stem 0) sends to an aux bus; the aux's output lands in stem 0,
 * not in stem 1 (track B). Pre- and post-fader taps with A's fader at
 * -12 dB, the aux fader at -3 dB, and nested buses bus -> bus -> master
 * with a mono bus in between. Exact values from constant sources, and the
 * reference on noise. */
START_TEST(test_sends_and_buses)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[] = {{1, 24, 5000, SIG_CONST, 0, 0.5, NULL},
                         {1, 24, 5000, SIG_CONST, 0, 0.25, NULL},
                         {1, 24, 9000, SIG_NOISE, 11, 0.6, NULL},
                         {2, 16, 9000, SIG_NOISE, 12, 0.6, NULL},
                         {1, 32, 9000, SIG_NOISE, 13, 0.6, NULL}};
    s_write_sources(dir, srcs, 5);
    const double g12 = pow(10, -12 / 20.0), g3 = pow(10, -3 / 20.0), g6 = pow(10, -6 / 20.0);
    const double c45 = M_SQRT1_2;
    for (int pre = 0; pre < 2; pre++) {
        sf_session_t *s = g_new(2);
        int aux = g_bus(s, 2, SF_MASTER_BUS, -3);
        size_t a = g_track(s, &srcs[0], 0, -12, 0, SF_MASTER_BUS);
        g_send(&s->tracks[a].sends, &s->tracks[a].n_sends, aux, -6, pre);
        size_t b = g_track(s, &srcs[1], 0, 0, 0, SF_MASTER_BUS);
        g_stem(s, 2, &a, 1);
        g_stem(s, 2, &b, 1);
        wide_t w = w_new(2, 64);
        /* stem 0: A direct (0.5 -12 dB, centre) + the aux: (pre: 0.5; post: 0.5 -12 dB) -6 dB send, -3 dB fader */
        w_render(s, (sf_target_t){SF_TARGET_STEM, 0}, 0, &w);
        double send_in = 0.5 * (pre ? 1.0 : g12);
        double want = 0.5 * g12 * c45 + send_in * g6 * c45 * g3;
        for (int c = 0; c < 2; c++)
            ck_assert_msg(fabs((double)w.ch[c][7] - want) <= 1.2e-8, "%s: stem 0 ch %d = %.9g, want %.9g",
                          pre ? "pre" : "post", c, (double)w.ch[c][7], want);
        /* stem 1: B alone; the aux, fed by A only, is silent here */
        w_render(s, (sf_target_t){SF_TARGET_STEM, 1}, 0, &w);
        for (int c = 0; c < 2; c++)
            ck_assert_msg(fabs((double)w.ch[c][7] - 0.25 * c45) <= 1.2e-8, "stem 1 ch %d = %.9g", c,
                          (double)w.ch[c][7]);
        /* a send of -inf, or a muted track, gives nothing (exactly) */
        s->tracks[a].sends[0].level_db = -(double)INFINITY;
        w_render(s, (sf_target_t){SF_TARGET_STEM, 0}, 0, &w);
        ck_assert(w.ch[0][7] == (float)(0.5 * g12 * c45) || fabs((double)w.ch[0][7] - 0.5 * g12 * c45) <= 1.2e-8);
        s->tracks[a].mute = true;
        w_render(s, (sf_target_t){SF_TARGET_STEM, 0}, 0, &w);
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < 64; i++)
                ck_assert(w.ch[c][i] == 0.0f);
        w_free(&w);
        g_free(s);
    }

    /* nested: tracks -> B0 (stereo, -6 dB) -> B1 (mono, +2 dB) -> master;
     * a pre-fader send from B0 to an aux B2 (stereo, sends on to B1 too);
     * bus order given out of file order */
    sf_session_t *s = g_new(2);
    int b1 = g_bus(s, 1, SF_MASTER_BUS, 2);
    int b0 = g_bus(s, 2, b1, -6);
    int b2 = g_bus(s, 2, SF_MASTER_BUS, -1);
    g_send(&s->buses[b0].sends, &s->buses[b0].n_sends, b2, -4, true);
    g_send(&s->buses[b2].sends, &s->buses[b2].n_sends, b1, -10, false);
    s->bus_order[0] = (size_t)b0;
    s->bus_order[1] = (size_t)b2;
    s->bus_order[2] = (size_t)b1;
    size_t t0 = g_track(s, &srcs[2], 5, -2, -0.5, b0);
    size_t t1 = g_track(s, &srcs[3], 333, 0, 0.25, b0);
    size_t t2 = g_track(s, &srcs[4], 1001, -1, 0.9, SF_MASTER_BUS);
    g_send(&s->tracks[t2].sends, &s->tracks[t2].n_sends, b2, -3, false);
    g_send(&s->tracks[t1].sends, &s->tracks[t1].n_sends, b1, -8, true);
    s->tracks[t1].invert = true;
    size_t set01[] = {t0, t1}, set2[] = {t2}, all[] = {t0, t1, t2};
    g_stem(s, 2, set01, 2);
    g_stem(s, 2, set2, 1);
    g_stem(s, 1, all, 3);
    double e[3];
    for (size_t k = 0; k < 3; k++)
        e[k] = g_stem_err(s, srcs, 5, k, 0, 10500);
    fprintf(stderr, "test_render: nested buses vs double reference: %.3g %.3g %.3g (LSB24 %.3f %.3f %.3f)\n", e[0],
            e[1], e[2], e[0] / LSB24, e[1] / LSB24, e[2] / LSB24);
    /* Each bus rounds its sum to float (where its effects will run) and its
     * gains to float: three bus levels here, peaks near 2 (a float ulp of 2
     * is 2 LSB24). Measured 1.29, 0.87, 2.09 LSB24. */
    for (size_t k = 0; k < 3; k++)
        ck_assert_msg(e[k] <= 3 * LSB24, "stem %zu: max error %g", k, e[k]);
    /* the stem of t2 has nothing of B0 (t0, t1 are silent there), yet B2 processes */
    g_free(s);
    s_free_sources(srcs, 5);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- automation ---------------------------------------------------------------------------- */

START_TEST(test_automation_values)
{
    const double ninf = -(double)INFINITY;
    /* -inf ramps, a flat stretch, a step (two points at one frame), -inf to -inf */
    int64_t fr[] = {100, 1100, 2000, 3000, 3000, 4000, 5000, 6000};
    double v[] = {ninf, 0.0, 0.0, -6.0, -20.0, ninf, ninf, 6.0};
    sf_automation_t a = {0};
    g_auto(&a, fr, v, 8);
    const double floor_db = -144;
    /* before the first point: its value; at every point: the point's value
     * (the last of a step) */
    ck_assert(sf_render_automation_at(&a, -5, floor_db) == ninf);
    ck_assert(sf_render_automation_at(&a, 100, floor_db) == ninf);
    ck_assert(sf_render_automation_at(&a, 1100, floor_db) == 0.0);
    ck_assert(sf_render_automation_at(&a, 2000, floor_db) == 0.0);
    ck_assert(sf_render_automation_at(&a, 3000, floor_db) == -20.0);
    ck_assert(sf_render_automation_at(&a, 4000, floor_db) == ninf);
    ck_assert(sf_render_automation_at(&a, 5000, floor_db) == ninf);
    ck_assert(sf_render_automation_at(&a, 6000, floor_db) == 6.0);
    ck_assert(sf_render_automation_at(&a, 1 << 30, floor_db) == 6.0);
    /* a ramp from -inf: linear in dB from the floor; one frame in is not silence */
    ck_assert_double_eq_tol(sf_render_automation_at(&a, 600, floor_db), -72.0, 1e-12);
    ck_assert_double_eq_tol(sf_render_automation_at(&a, 101, floor_db), -144 + 0.144, 1e-12);
    ck_assert(sf_render_automation_at(&a, 1099, floor_db) < 0);
    /* flat, the step's approach, the way down to -inf, between two -infs */
    ck_assert(sf_render_automation_at(&a, 1500, floor_db) == 0.0);
    ck_assert_double_eq_tol(sf_render_automation_at(&a, 2500, floor_db), -3.0, 1e-12);
    ck_assert_double_eq_tol(sf_render_automation_at(&a, 2999, floor_db), -6.0 * 999 / 1000, 1e-12);
    ck_assert_double_eq_tol(sf_render_automation_at(&a, 3500, floor_db), -82.0, 1e-12);
    ck_assert(sf_render_automation_at(&a, 3999, floor_db) > -144.0);
    ck_assert(sf_render_automation_at(&a, 4500, floor_db) == ninf);
    ck_assert(sf_render_automation_at(&a, 4999, floor_db) == ninf);
    ck_assert_double_eq_tol(sf_render_automation_at(&a, 5500, floor_db), -69.0, 1e-12);
    /* the floor is the session's threshold */
    ck_assert_double_eq_tol(sf_render_automation_at(&a, 600, -100), -50.0, 1e-12);
    /* against the test's own reading, frame by frame */
    for (int64_t f = 0; f < 6100; f++) {
        double got = sf_render_automation_at(&a, f, floor_db), want = r_auto(&a, f, floor_db);
        ck_assert_msg(got == want || fabs(got - want) <= 1e-12, "frame %lld: %g vs %g", (long long)f, got, want);
    }
    sf_automation_t none = {0};
    ck_assert(isnan(sf_render_automation_at(&none, 0, floor_db)));
    g_auto_free(&a);
}
END_TEST

/* A track with gain, pan and send-level automation on a graph: rendered
 * whole and cut exactly at every breakpoint and one frame either side,
 * bit-identical; values at breakpoints; exact silence at -inf; the
 * reference. */
START_TEST(test_automation_render)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[] = {{1, 24, 30000, SIG_CONST, 0, 0.5, NULL}, {2, 24, 30000, SIG_NOISE, 21, 0.7, NULL}};
    s_write_sources(dir, srcs, 2);
    const double ninf = -(double)INFINITY;
    sf_session_t *s = g_new(2);
    int aux = g_bus(s, 2, SF_MASTER_BUS, -2);
    size_t t0 = g_track(s, &srcs[0], 0, 0, 0, SF_MASTER_BUS);
    int64_t gf[] = {1000, 5001, 9000, 9000, 13007, 17000, 19000, 23000};
    double gv[] = {ninf, 0.0, -3.0, -9.5, ninf, ninf, -12.0, 4.0};
    g_auto(&s->tracks[t0].gain_auto, gf, gv, 8);
    int64_t pf[] = {2000, 12000, 20000};
    double pv[] = {-1.0, 1.0, 0.0};
    g_auto(&s->tracks[t0].pan_auto, pf, pv, 3);
    size_t t1 = g_track(s, &srcs[1], 50, -4, 0.3, SF_MASTER_BUS);
    sf_send_t *sd = g_send(&s->tracks[t1].sends, &s->tracks[t1].n_sends, aux, 0, false);
    int64_t lf[] = {3000, 15000};
    double lv[] = {-30.0, ninf};
    g_auto(&sd->level_auto, lf, lv, 2);
    size_t both[] = {t0, t1};
    g_stem(s, 2, both, 2);
    g_stem(s, 2, &t0, 1);

    const int64_t n = 26000;
    for (size_t stem = 0; stem < 2; stem++) {
        wide_t whole = w_new(2, n);
        w_render(s, (sf_target_t){SF_TARGET_STEM, (uint32_t)stem}, 0, &whole);
        r_graph(s, srcs, 2, s->stems[stem].tracks, s->stems[stem].n_tracks, 2, 0, n, whole.ref);
        double e = w_max_err(&whole);
        fprintf(stderr, "test_render: automation stem %zu vs double reference: %.3g (%.3f LSB24)\n", stem, e,
                e / LSB24);
        ck_assert_msg(e <= 2 * LSB24, "stem %zu: max error %g", stem, e);
        /* cuts at every breakpoint and one frame either side */
        int64_t cuts[64];
        size_t n_cuts = 0;
        const int64_t *all[] = {gf, pf, lf};
        const size_t lens[] = {8, 3, 2};
        for (int k = 0; k < 3; k++)
            for (size_t j = 0; j < lens[k]; j++)
                for (int64_t d = -1; d <= 1; d++)
                    cuts[n_cuts++] = all[k][j] + d;
        for (int64_t d = -1; d <= 1; d++) { /* and every cut on its own */
            wide_t cut = w_new(2, n);
            int64_t at = 0;
            while (at < n) {
                int64_t next = n;
                for (size_t k = 0; k < n_cuts; k++)
                    if (cuts[k] + d > at && cuts[k] + d < next)
                        next = cuts[k] + d;
                float *dst[2] = {cut.ch[0] + at, cut.ch[1] + at};
                sf_err_t err = {0};
                ck_assert_msg(
                    sf_render(s, (sf_target_t){SF_TARGET_STEM, (uint32_t)stem}, at, next - at, 0, dst, &err) == SF_OK,
                    "%s", err.msg);
                at = next;
            }
            for (int c = 0; c < 2; c++)
                ck_assert_msg(memcmp(cut.ch[c], whole.ch[c], sizeof(float) * (size_t)n) == 0,
                              "stem %zu, cuts shifted %lld: channel %d differs", stem, (long long)d, c);
            w_free(&cut);
        }
        if (stem == 1) {
            /* t0 alone: 0.5 * gain(frame) * pan law; exact silence at and
             * between the -inf points, and before the first point */
            for (int64_t f = 0; f <= 1000; f += 50)
                ck_assert(whole.ch[0][f] == 0.0f && whole.ch[1][f] == 0.0f);
            for (int64_t f = 13007; f <= 17000; f++)
                ck_assert_msg(whole.ch[0][f] == 0.0f && whole.ch[1][f] == 0.0f, "frame %lld", (long long)f);
            ck_assert(whole.ch[0][1001] != 0.0f); /* one frame into the ramp from -inf */
            /* at the breakpoints: the breakpoint's value; the step at 9000 takes -9.5 */
            const int64_t at[] = {5001, 9000, 19000, 23000};
            const double db[] = {0.0, -9.5, -12.0, 4.0};
            for (int k = 0; k < 4; k++) {
                int64_t f = at[k];
                double p = f < 12000 ? -1.0 + 2.0 * (double)(f - 2000) / 10000.0 : 1.0 - (double)(f - 12000) / 8000.0;
                p = f >= 20000 ? 0.0 : p;
                double g = 0.5 * pow(10, db[k] / 20.0);
                double l = g * cos((p + 1) * M_PI / 4), r = g * sin((p + 1) * M_PI / 4);
                ck_assert_msg(fabs((double)whole.ch[0][f] - l) <= 1.2e-7 * fabs(l) + 1e-12 &&
                                  fabs((double)whole.ch[1][f] - r) <= 1.2e-7 * fabs(r) + 1e-12,
                              "frame %lld: %.9g %.9g, want %.9g %.9g", (long long)f, (double)whole.ch[0][f],
                              (double)whole.ch[1][f], l, r);
            }
            /* pan -1 at 2000: hard left, the right exactly 0 */
            ck_assert(whole.ch[1][2000] == 0.0f && whole.ch[0][2000] != 0.0f);
        }
        w_free(&whole);
    }
    g_free(s);
    s_free_sources(srcs, 2);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- fades, crossfades, channel pick -------------------------------------------------------- */

START_TEST(test_fades_and_crossfades)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[] = {{1, 24, 20000, SIG_NOISE, 31, 0.8, NULL},
                         {2, 32, 20000, SIG_NOISE, 32, 0.8, NULL},
                         {6, 24, 12000, SIG_NOISE, 33, 0.8, NULL},
                         {1, 16, 20000, SIG_CONST, 0, 0.5, NULL}};
    s_write_sources(dir, srcs, 4);
    sf_session_t *s = g_new(2);
    /* fades at odd places, both shapes, with clip gain */
    size_t t0 = g_track(s, NULL, 0, -1, -0.2, SF_MASTER_BUS);
    sf_clip_t *c = g_clip(s, t0, &srcs[0], 123, 77, 9001);
    c->gain_db = -2.5;
    c->fade_in = (sf_fade_t){1001, SF_FADE_LINEAR};
    c->fade_out = (sf_fade_t){777, SF_FADE_EQUAL_POWER};
    c = g_clip(s, t0, &srcs[0], 10001, 3, 4099);
    c->fade_in = (sf_fade_t){4099, SF_FADE_EQUAL_POWER}; /* the whole clip, crossing a block */
    /* stereo: a crossfade of two clips, and a third crossfading over a gap's edge */
    size_t t1 = g_track(s, NULL, 0, 0, 0.4, SF_MASTER_BUS);
    g_clip(s, t1, &srcs[1], 500, 0, 9000);
    c = g_clip(s, t1, &srcs[1], 7000, 1000, 8000);
    c->crossfade = 2001; /* over the first clip's last 2000 frames and one of nothing */
    c->fade_out = (sf_fade_t){333, SF_FADE_LINEAR};
    c = g_clip(s, t1, &srcs[1], 14500, 17, 4000);
    c->crossfade = 1500;
    c->gain_db = 3;
    /* channel pick: channel 4 (Ls) of a 6-channel file, a mono clip; then LFE */
    size_t t2 = g_track(s, NULL, 0, -3, 0.6, SF_MASTER_BUS);
    c = g_clip(s, t2, &srcs[2], 4000, 5, 6000);
    c->channel = 4;
    c = g_clip(s, t2, &srcs[2], 9000, 100, 3000);
    c->channel = 3;
    c->crossfade = 999;
    c->fade_in = (sf_fade_t){500, SF_FADE_LINEAR};
    s->tracks[t2].n_channels = 1;
    size_t all[] = {t0, t1, t2};
    for (int k = 0; k < 3; k++)
        g_stem(s, 2, all + k, 1);
    for (size_t k = 0; k < 3; k++) {
        double e = g_stem_err(s, srcs, 4, k, 0, 20000);
        fprintf(stderr, "test_render: fades, track %zu vs double reference: %.3g (%.3f LSB24)\n", k, e, e / LSB24);
        ck_assert_msg(e <= LSB24, "track %zu: max error %g", k, e);
        /* consolidated: the clips alone */
        const sf_track_t *t = &s->tracks[all[k]];
        wide_t w = w_new(t->n_channels, 20000);
        w_render(s, (sf_target_t){SF_TARGET_MULTITRACK, (uint32_t)all[k]}, 0, &w);
        for (int in = 0; in < t->n_channels; in++)
            for (int64_t f = 0; f < 20000; f++)
                w.ref[in][f] = r_pre(t, srcs, 4, in, f);
        /* a crossfade is two float products and their float sum */
        double em = w_max_err(&w);
        ck_assert_msg(em <= LSB24, "multitrack %zu: max error %g", k, em);
        w_free(&w);
    }
    /* exact curve values on a constant source: 0.5 * x and 0.5 * sin(x pi/2) */
    sf_session_t *q = g_new(1);
    size_t tq = g_track(q, NULL, 0, 0, 0, SF_MASTER_BUS);
    c = g_clip(q, tq, &srcs[3], 10, 0, 1000);
    c->fade_in = (sf_fade_t){400, SF_FADE_LINEAR};
    c->fade_out = (sf_fade_t){300, SF_FADE_EQUAL_POWER};
    g_stem(q, 1, &tq, 1);
    wide_t w = w_new(1, 1020);
    w_render(q, (sf_target_t){SF_TARGET_STEM, 0}, 0, &w);
    /* mirror images: a fade-in's first sample and a fade-out's last are silent */
    ck_assert(w.ch[0][10] == 0.0f && w.ch[0][11] > 0.0f);
    ck_assert(w.ch[0][1009] == 0.0f && w.ch[0][1008] > 0.0f);
    ck_assert(w.ch[0][1010] == 0.0f);
    for (int64_t f = 10; f < 1010; f++) {
        double x_in = f - 10 < 400 ? (double)(f - 10) / 400 : 1.0;
        double x_out = 1009 - f < 300 ? sin((double)(1009 - f) / 300 * M_PI / 2) : 1.0;
        double want = 0.5 * x_in * x_out;
        ck_assert_msg(fabs((double)w.ch[0][f] - want) <= 6e-8 * want + 1e-12, "frame %lld: %.9g want %.9g",
                      (long long)f, (double)w.ch[0][f], want);
    }
    w_free(&w);
    g_free(q);
    g_free(s);
    s_free_sources(srcs, 4);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- mixes, the full mix, multitracks ---------------------------------------------------- */

/* A linear graph of three stems: buses shared by stems, sends, automation. */
static sf_session_t *s_mix_graph(const src_spec_t *srcs)
{
    sf_session_t *s = g_new(2);
    int drums = g_bus(s, 2, SF_MASTER_BUS, -1.5);
    int verb = g_bus(s, 2, SF_MASTER_BUS, -4);
    size_t t[6];
    t[0] = g_track(s, &srcs[0], 3, -3, -0.3, drums);
    t[1] = g_track(s, &srcs[1], 1000, -6, 0.2, drums);
    t[2] = g_track(s, &srcs[2], 77, -2, 0, SF_MASTER_BUS);
    t[3] = g_track(s, &srcs[3], 5000, -8, 0.7, SF_MASTER_BUS);
    t[4] = g_track(s, &srcs[4], 0, -5, -0.8, drums);
    t[5] = g_track(s, &srcs[5], 40000, 0, 0.1, verb);
    g_send(&s->tracks[t[0]].sends, &s->tracks[t[0]].n_sends, verb, -10, false);
    g_send(&s->tracks[t[2]].sends, &s->tracks[t[2]].n_sends, verb, -6, true);
    g_send(&s->tracks[t[3]].sends, &s->tracks[t[3]].n_sends, verb, -12, false);
    s->tracks[t[3]].invert = true;
    int64_t af[] = {0, 30000, 60000};
    double av[] = {-(double)INFINITY, 0, -20};
    g_auto(&s->tracks[t[2]].gain_auto, af, av, 3);
    size_t s0[] = {t[0], t[1], t[4]}, s1[] = {t[2], t[3]}, s2[] = {t[5]};
    g_stem(s, 2, s0, 3);
    g_stem(s, 2, s1, 2);
    g_stem(s, 2, s2, 1);
    const double ninf = -(double)INFINITY;
    double m0[] = {0, 0, 0}, m1[] = {0, ninf, 0}, m2[] = {0, 1.5, -3};
    g_mix(s, m0);
    g_mix(s, m1);
    g_mix(s, m2);
    return s;
}

#define MG_SRCS   6
#define MG_FRAMES 100003

static void s_mix_graph_sources(const char *dir, src_spec_t *srcs)
{
    for (int k = 0; k < MG_SRCS; k++)
        srcs[k] = (src_spec_t){k % 2 ? 2 : 1, k % 3 == 2 ? 16 : 24, 70000, SIG_NOISE, (uint64_t)(300 + k), 0.45, NULL};
    s_write_sources(dir, srcs, MG_SRCS);
}

/* MIX = the sum of its stems in stem order at its gains: against the STEM
 * renders summed in double (to the bit for 0 dB stems: the same sums), with
 * an excluded stem and a +1.5 dB one; and against the reference. */
START_TEST(test_mix_is_sum_of_stems)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[MG_SRCS];
    s_mix_graph_sources(dir, srcs);
    sf_session_t *s = s_mix_graph(srcs);
    const int64_t n = MG_FRAMES;
    wide_t stems[3];
    for (int k = 0; k < 3; k++) {
        stems[k] = w_new(2, n);
        w_render(s, (sf_target_t){SF_TARGET_STEM, (uint32_t)k}, 0, &stems[k]);
    }
    for (uint32_t m = 0; m < 3; m++) {
        wide_t mix = w_new(2, n);
        w_render(s, (sf_target_t){SF_TARGET_MIX, m}, 0, &mix);
        double worst = 0, worst_ref = 0;
        for (int c = 0; c < 2; c++)
            for (int64_t i = 0; i < n; i++) {
                double sum = 0, ref = 0;
                for (int k = 0; k < 3; k++) {
                    double gdb = s->mixes[m].stem_gain_db[k];
                    if (gdb == -(double)INFINITY)
                        continue;
                    sum += (double)stems[k].ch[c][i] * pow(10, gdb / 20);
                }
                double e = fabs((double)mix.ch[c][i] - sum);
                worst = e > worst ? e : worst;
                (void)ref;
                if (m < 2) /* 0 dB stems: the same float sum, bit for bit */
                    ck_assert_msg(mix.ch[c][i] == (float)sum, "mix %u ch %d [%lld]: %a vs %a", m, c, (long long)i,
                                  (double)mix.ch[c][i], (double)(float)sum);
            }
        /* against the double reference of the whole graph */
        for (int k = 0; k < 3; k++) {
            double gdb = s->mixes[m].stem_gain_db[k];
            if (gdb == -(double)INFINITY)
                continue;
            double *ref[2] = {malloc(sizeof(double) * (size_t)n), malloc(sizeof(double) * (size_t)n)};
            r_graph(s, srcs, MG_SRCS, s->stems[k].tracks, s->stems[k].n_tracks, 2, 0, n, ref);
            for (int c = 0; c < 2; c++)
                for (int64_t i = 0; i < n; i++)
                    mix.ref[c][i] += ref[c][i] * pow(10, gdb / 20);
            free(ref[0]);
            free(ref[1]);
        }
        worst_ref = w_max_err(&mix);
        fprintf(stderr, "test_render: mix %u vs sum of stems %.3g, vs double reference %.3g (%.3f LSB24)\n", m, worst,
                worst_ref, worst_ref / LSB24);
        /* 0 dB: exact (above); other gains: a float gain and a float product */
        ck_assert_msg(worst <= LSB24, "mix %u: %g from the sum of its stems", m, worst);
        ck_assert_msg(worst_ref <= 2 * LSB24, "mix %u: %g from the reference", m, worst_ref);
        w_free(&mix);
    }
    for (int k = 0; k < 3; k++)
        w_free(&stems[k]);
    g_free(s);
    s_free_sources(srcs, MG_SRCS);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* The null test: FULL_MIX against the sum of every stem, on a linear
 * graph, within float rounding; and it is what MIX 0 (all at 0 dB) gives. */
START_TEST(test_full_mix_nulls)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[MG_SRCS];
    s_mix_graph_sources(dir, srcs);
    sf_session_t *s = s_mix_graph(srcs);
    const int64_t n = MG_FRAMES;
    wide_t full = w_new(2, n), mix = w_new(2, n);
    w_render(s, (sf_target_t){SF_TARGET_FULL_MIX, 0}, 0, &full);
    w_render(s, (sf_target_t){SF_TARGET_MIX, 0}, 0, &mix);
    double worst = 0, peak = 0;
    for (int c = 0; c < 2; c++)
        for (int64_t i = 0; i < n; i++) {
            double e = fabs((double)full.ch[c][i] - (double)mix.ch[c][i]);
            worst = e > worst ? e : worst;
            peak = fabs(full.ch[c][i]) > peak ? fabs(full.ch[c][i]) : peak;
        }
    fprintf(stderr, "test_render: full mix - sum of stems: %.3g (peak %.3f), -%.1f dBFS\n", worst, peak,
            -20 * log10(worst > 0 ? worst : 1e-30));
    ck_assert_msg(worst <= LSB24, "null residual %g", worst);
    ck_assert(peak > 0.1);
    /* and against the reference with every track sounding */
    size_t all[6] = {0, 1, 2, 3, 4, 5};
    r_graph(s, srcs, MG_SRCS, all, 6, 2, 0, n, full.ref);
    double e = w_max_err(&full);
    ck_assert_msg(e <= 2 * LSB24, "full mix vs reference %g", e);
    w_free(&full);
    w_free(&mix);
    g_free(s);
    s_free_sources(srcs, MG_SRCS);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* MULTITRACK: the consolidated clips only -- no polarity, fader, pan,
 * automation or sends. */
START_TEST(test_multitrack)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[MG_SRCS];
    s_mix_graph_sources(dir, srcs);
    sf_session_t *s = s_mix_graph(srcs);
    for (size_t k = 0; k < s->n_tracks; k++) {
        const sf_track_t *t = &s->tracks[k];
        wide_t w = w_new(t->n_channels, 80000);
        w_render(s, (sf_target_t){SF_TARGET_MULTITRACK, (uint32_t)k}, -11, &w);
        for (int in = 0; in < t->n_channels; in++)
            for (int64_t i = 0; i < 80000; i++)
                w.ref[in][i] = r_pre(t, srcs, MG_SRCS, in, i - 11);
        /* clip gain 0 dB and no fades here: the source samples exactly */
        double e = w_max_err(&w);
        ck_assert_msg(e == 0.0, "track %zu: %g", k, e);
        w_free(&w);
    }
    g_free(s);
    s_free_sources(srcs, MG_SRCS);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- determinism of a graph ---------------------------------------------------------------- */

/* 70 tracks (two groups) into buses with sends and automation, fades and
 * crossfades: every cut and thread count gives the same bytes, for stems,
 * a mix and the full mix. */
START_TEST(test_graph_determinism)
{
    char *dir = tu_tmpdir();
    enum { NT = 70, NF = 140001 };
    src_spec_t *srcs = calloc(NT, sizeof *srcs);
    for (int k = 0; k < NT; k++)
        srcs[k] = (src_spec_t){k % 4 == 0 ? 2 : 1, 24, 40000 + 101 * k, SIG_NOISE, (uint64_t)(900 + k), 0.3, NULL};
    s_write_sources(dir, srcs, NT);
    sf_session_t *s = g_new(2);
    int b0 = g_bus(s, 2, SF_MASTER_BUS, -2);
    int b1 = g_bus(s, 1, b0, 1);
    int b2 = g_bus(s, 2, SF_MASTER_BUS, -6);
    size_t idx[NT];
    for (int k = 0; k < NT; k++) {
        int out = k % 5 == 0 ? b1 : k % 3 == 0 ? b0 : SF_MASTER_BUS;
        idx[k] = g_track(s, NULL, 0, -6 - k % 9, -1 + (k % 11) / 5.0, out);
        sf_clip_t *c = g_clip(s, idx[k], &srcs[k], 1000 * k + 7, 0, 30000);
        c->fade_in = (sf_fade_t){(int64_t)(k * 37) % 3000, k % 2 ? SF_FADE_LINEAR : SF_FADE_EQUAL_POWER};
        c = g_clip(s, idx[k], &srcs[k], 1000 * k + 25000, 100, 9000 + k);
        c->crossfade = 4000 + k;
        c->fade_out = (sf_fade_t){1234, SF_FADE_EQUAL_POWER};
        if (k % 4 == 1)
            g_send(&s->tracks[idx[k]].sends, &s->tracks[idx[k]].n_sends, b2, -9, k % 8 == 1);
        if (k % 7 == 2) {
            int64_t f[] = {1000 * k + 5000, 1000 * k + 70000};
            double v[] = {-(double)INFINITY, 0.0};
            g_auto(&s->tracks[idx[k]].gain_auto, f, v, 2);
        }
        if (k % 6 == 3) {
            int64_t f[] = {10000, 65536, 90000};
            double v[] = {-1, 1, -0.25};
            g_auto(&s->tracks[idx[k]].pan_auto, f, v, 3);
        }
    }
    g_send(&s->buses[b0].sends, &s->buses[b0].n_sends, b2, -12, false);
    s->bus_order[0] = (size_t)b1;
    s->bus_order[1] = (size_t)b0;
    s->bus_order[2] = (size_t)b2;
    g_stem(s, 2, idx, 40);
    g_stem(s, 1, idx + 40, 30);
    double mg[] = {0, -2};
    g_mix(s, mg);
    const sf_target_t targets[] = {
        {SF_TARGET_STEM, 0}, {SF_TARGET_STEM, 1}, {SF_TARGET_MIX, 0}, {SF_TARGET_FULL_MIX, 0}};
    const int64_t cut_a[] = {1, 4099, 65537, 12345, 3};
    const int64_t cut_b[] = {65536, 1};
    const int64_t cut_c[] = {30011};
    const struct {
        const int64_t *pieces;
        size_t n;
        int threads;
    } runs[] = {{cut_a, 5, 1}, {cut_a, 5, 4}, {cut_b, 2, 3}, {cut_c, 1, 2}, {NULL, 0, 4}};
    for (size_t ti = 0; ti < sizeof targets / sizeof targets[0]; ti++) {
        const int nc = ti == 1 ? 1 : 2;
        omp_set_num_threads(1);
        wide_t base = w_new(nc, NF);
        w_render(s, targets[ti], 3, &base);
        for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
            omp_set_num_threads(runs[r].threads);
            wide_t out = w_new(nc, NF);
            for (int64_t at = 0, p = 0; at < NF; p++) {
                int64_t len = runs[r].pieces ? runs[r].pieces[p % (int64_t)runs[r].n] : NF;
                len = len < NF - at ? len : NF - at;
                float *dst[2] = {out.ch[0] + at, nc > 1 ? out.ch[1] + at : NULL};
                sf_err_t err = {0};
                ck_assert_msg(sf_render(s, targets[ti], 3 + at, len, 777, dst, &err) == SF_OK, "%s", err.msg);
                at += len;
            }
            for (int c = 0; c < nc; c++)
                ck_assert_msg(memcmp(base.ch[c], out.ch[c], sizeof(float) * NF) == 0,
                              "target %zu run %zu (%d threads): channel %d differs", ti, r, runs[r].threads, c);
            w_free(&out);
        }
        w_free(&base);
    }
    omp_set_num_threads(2);
    /* and the graph is right, not only stable */
    double e = g_stem_err(s, srcs, NT, 0, 60000, 20000);
    ck_assert_msg(e <= 2 * LSB24, "stem 0 vs reference %g", e);
    g_free(s);
    s_free_sources(srcs, NT);
    free(srcs);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- graph errors --------------------------------------------------------------------------- */

START_TEST(test_graph_errors)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[] = {{1, 24, 1000, SIG_NOISE, 1, 0.5, NULL},
                         {2, 24, 1000, SIG_NOISE, 2, 0.5, NULL},
                         {6, 24, 1000, SIG_NOISE, 3, 0.5, NULL}};
    s_write_sources(dir, srcs, 3);
    sf_session_t *s = g_new(2);
    int b0 = g_bus(s, 2, SF_MASTER_BUS, 0);
    int b1 = g_bus(s, 2, b0, 0);
    size_t t0 = g_track(s, &srcs[0], 0, 0, 0, b1);
    size_t t1 = g_track(s, &srcs[1], 0, 0, 0, SF_MASTER_BUS);
    size_t both[] = {t0, t1};
    g_stem(s, 2, both, 2);
    float a[100], b[100], *out[2] = {a, b};
    sf_err_t err = {0};
    /* b1 feeds b0 but comes after it */
    ck_assert_int_eq(sf_render(s, (sf_target_t){SF_TARGET_STEM, 0}, 0, 100, 0, out, &err), SF_E_INTERNAL);
    ck_assert_msg(strstr(err.msg, "bus order puts bus 'B1' after bus 'B0'"), "%s", err.msg);
    s->bus_order[0] = 1;
    s->bus_order[1] = 0;
    ck_assert_int_eq(sf_render(s, (sf_target_t){SF_TARGET_STEM, 0}, 0, 100, 0, out, &err), SF_OK);
    /* a stereo track cannot be routed */
    s->tracks[t1].n_route = 1;
    ck_assert_int_eq(sf_render(s, (sf_target_t){SF_TARGET_STEM, 0}, 0, 100, 0, out, &err), SF_E_INPUT);
    ck_assert_msg(strstr(err.msg, "'T1'") && strstr(err.msg, "routed"), "%s", err.msg);
    s->tracks[t1].n_route = 0;
    /* a route past its bus's channels */
    s->tracks[t0].route[0] = 2;
    s->tracks[t0].n_route = 1;
    ck_assert_int_eq(sf_render(s, (sf_target_t){SF_TARGET_STEM, 0}, 0, 100, 0, out, &err), SF_E_INPUT);
    ck_assert_msg(strstr(err.msg, "'T0'") && strstr(err.msg, "channel 3"), "%s", err.msg);
    s->tracks[t0].n_route = 0;
    /* a channel pick past the file's channels */
    size_t t2 = g_track(s, NULL, 0, 0, 0, SF_MASTER_BUS);
    sf_clip_t *c = g_clip(s, t2, &srcs[2], 0, 0, 0);
    c->channel = 6;
    s->tracks[t2].n_channels = 1;
    g_stem(s, 2, &t2, 1);
    ck_assert_int_eq(sf_render(s, (sf_target_t){SF_TARGET_STEM, 1}, 0, 100, 0, out, &err), SF_E_INPUT);
    ck_assert_msg(strstr(err.msg, "'T2'") && strstr(err.msg, "channel 7") && strstr(err.msg, srcs[2].path), "%s",
                  err.msg);
    c->channel = 5;
    ck_assert_int_eq(sf_render(s, (sf_target_t){SF_TARGET_STEM, 1}, 0, 100, 0, out, &err), SF_OK);
    /* targets that do not exist */
    ck_assert_int_eq(sf_render(s, (sf_target_t){SF_TARGET_STEM, 9}, 0, 100, 0, out, &err), SF_E_INTERNAL);
    ck_assert_int_eq(sf_render(s, (sf_target_t){SF_TARGET_MIX, 0}, 0, 100, 0, out, &err), SF_E_INTERNAL);
    ck_assert_int_eq(sf_render(s, (sf_target_t){SF_TARGET_MULTITRACK, 3}, 0, 100, 0, out, &err), SF_E_INTERNAL);
    ck_assert_int_eq(sf_render(s, (sf_target_t){SF_TARGET_FULL_MIX, 0}, 0, -1, 0, out, &err), SF_E_INTERNAL);
    /* a missing source in the full mix names it */
    unlink(srcs[1].path);
    ck_assert_int_eq(sf_render(s, (sf_target_t){SF_TARGET_FULL_MIX, 0}, 0, 100, 0, out, &err), SF_E_IO);
    ck_assert_msg(strstr(err.msg, srcs[1].path) != NULL, "%s", err.msg);
    g_free(s);
    s_free_sources(srcs, 3);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_graph_nomem)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[MG_SRCS];
    s_mix_graph_sources(dir, srcs);
    sf_session_t *s = s_mix_graph(srcs);
    const sf_target_t targets[] = {
        {SF_TARGET_STEM, 0}, {SF_TARGET_MIX, 2}, {SF_TARGET_FULL_MIX, 0}, {SF_TARGET_MULTITRACK, 1}};
    float a[3000], b[3000], *out[2] = {a, b};
    for (size_t ti = 0; ti < 4; ti++) {
        int ok = 0;
        for (long n = 1; n < 400 && !ok; n++) {
            sf_err_t err = {0};
            sf_alloc_fail_after(n);
            sf_rc rc = sf_render(s, targets[ti], 39000, 3000, 0, out, &err);
            sf_alloc_fail_after(0);
            ok = rc == SF_OK;
            if (!ok) {
                ck_assert_msg(rc == SF_E_NOMEM, "target %zu allocation %ld: %s (%d)", ti, n, err.msg, rc);
                ck_assert_msg(strstr(err.msg, "out of memory") != NULL, "%s", err.msg);
            }
        }
        ck_assert_msg(ok, "target %zu never rendered", ti);
    }
    g_free(s);
    s_free_sources(srcs, MG_SRCS);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- insert chains: tracks, buses, the master; tails, pre-roll, latency, shared dynamics ---- */

#define WINDOW 65536 /* render.c's SF_RENDER_WINDOW: tails are reset at window starts */

static sf_fx_params_t fx_gain(double db) { return (sf_fx_params_t){.kind = SF_FX_GAIN, .u.gain = {db}}; }

static sf_fx_params_t fx_eq(sf_eq_type_t type, double freq, double gain_db, double q)
{
    return (sf_fx_params_t){.kind = SF_FX_EQ, .u.eq = {type, freq, gain_db, q}};
}

static sf_fx_params_t fx_delay(double time_ms, double feedback, double mix)
{
    return (sf_fx_params_t){.kind = SF_FX_DELAY, .u.delay = {time_ms, feedback, mix}};
}

static sf_fx_params_t fx_reverb(double decay_s, double predelay_ms, double damping, double mix)
{
    return (sf_fx_params_t){.kind = SF_FX_REVERB, .u.reverb = {decay_s, predelay_ms, damping, mix}};
}

static sf_fx_params_t fx_comp(double threshold_db, double ratio, double attack_ms, double release_ms)
{
    return (sf_fx_params_t){.kind = SF_FX_COMPRESSOR,
                            .u.compressor = {threshold_db, ratio, attack_ms, release_ms, 6, 2}};
}

static sf_fx_params_t fx_limiter(double ceiling_db, double release_ms, double lookahead_ms)
{
    return (sf_fx_params_t){.kind = SF_FX_LIMITER, .u.limiter = {ceiling_db, release_ms, lookahead_ms}};
}

/* Appends an insert to a chain (a track's, a bus's or the master's). */
static void g_insert(sf_insert_t **fx, size_t *n, sf_fx_params_t p)
{
    *fx = g_grow(*fx, ++*n, sizeof **fx);
    (*fx)[*n - 1].params = p;
}

#define T_FX(s, t) &(s)->tracks[t].fx, &(s)->tracks[t].n_fx
#define B_FX(s, b) &(s)->buses[b].fx, &(s)->buses[b].n_fx

static void w_render_pre(const sf_session_t *s, sf_target_t t, int64_t start, int64_t preroll, wide_t *w)
{
    sf_err_t err = {0};
    sf_rc rc = sf_render(s, t, start, w->n_frames, preroll, w->ch, &err);
    ck_assert_msg(rc == SF_OK, "render %d:%u: %s", (int)t.kind, t.index, err.msg);
}

/* max |a - b| over every channel and frame. */
static double w_diff(const wide_t *a, const wide_t *b)
{
    double e = 0;
    for (int c = 0; c < a->n_channels; c++)
        for (int64_t i = 0; i < a->n_frames; i++) {
            double d = fabs((double)a->ch[c][i] - (double)b->ch[c][i]);
            ck_assert_msg(d == d, "ch %d frame %lld is NaN", c, (long long)i);
            e = d > e ? d : e;
        }
    return e;
}

static double w_peak(const wide_t *w, int64_t *at)
{
    double p = 0;
    for (int c = 0; c < w->n_channels; c++)
        for (int64_t i = 0; i < w->n_frames; i++)
            if (fabs((double)w->ch[c][i]) > p) {
                p = fabs((double)w->ch[c][i]);
                if (at)
                    *at = i;
            }
    return p;
}

static double s_dbfs(double x) { return x > 0 ? 20 * log10(x) : -(double)INFINITY; }

/* A gain insert is the fader moved: the same track with gain_db + db, to a
 * float rounding (the insert rounds the pre-fader signal once more); with
 * and without polarity inversion, mono and stereo. */
START_TEST(test_fx_gain_insert)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[] = {{1, 24, 20000, SIG_NOISE, 51, 0.4, NULL}, {2, 24, 20000, SIG_NOISE, 52, 0.4, NULL}};
    s_write_sources(dir, srcs, 2);
    for (int inv = 0; inv < 2; inv++) {
        sf_session_t *a = g_new(2), *b = g_new(2);
        size_t a0 = g_track(a, &srcs[0], 100, -3, 0.3, SF_MASTER_BUS);
        size_t a1 = g_track(a, &srcs[1], 500, 0, -0.2, SF_MASTER_BUS);
        g_insert(T_FX(a, a0), fx_gain(4.5));
        g_insert(T_FX(a, a1), fx_gain(-3));
        g_insert(T_FX(a, a1), fx_gain(-4));
        a->tracks[a0].invert = inv;
        size_t b0 = g_track(b, &srcs[0], 100, 1.5, 0.3, SF_MASTER_BUS);
        g_track(b, &srcs[1], 500, -7, -0.2, SF_MASTER_BUS);
        b->tracks[b0].invert = inv;
        const sf_target_t full = {SF_TARGET_FULL_MIX, 0};
        ck_assert_int_eq(sf_render_preroll(a, full), 0);
        ck_assert_int_eq(sf_render_latency(a, full), 0);
        wide_t wa = w_new(2, 21000), wb = w_new(2, 21000);
        w_render(a, full, 0, &wa);
        w_render(b, full, 0, &wb);
        double e = w_diff(&wa, &wb);
        ck_assert_msg(e <= 2 * LSB24, "gain insert vs fader: %g (inv %d)", e, inv);
        ck_assert(w_peak(&wa, NULL) > 0.1);
        w_free(&wa);
        w_free(&wb);
        g_free(a);
        g_free(b);
    }
    s_free_sources(srcs, 2);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* An eq chain on a track against sf_fx_process on the track's pre-fader
 * signal computed here (clip gain, fade, polarity) in odd-sized calls,
 * then the fader and the pan law; across two windows. */
START_TEST(test_fx_eq_insert)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[] = {{1, 24, 60000, SIG_NOISE, 61, 0.5, NULL}};
    s_write_sources(dir, srcs, 1);
    sf_session_t *s = g_new(2);
    size_t t = g_track(s, NULL, 0, -2, -0.4, SF_MASTER_BUS);
    sf_clip_t *c = g_clip(s, t, &srcs[0], 1000, 0, 0);
    c->gain_db = -1;
    c->fade_in = (sf_fade_t){3000, SF_FADE_LINEAR};
    s->tracks[t].invert = true;
    const sf_fx_params_t chain[] = {fx_eq(SF_EQ_HIGHPASS, 200, 0, 0.707), fx_eq(SF_EQ_PEAK, 3000, 6, 2)};
    for (int k = 0; k < 2; k++)
        g_insert(T_FX(s, t), chain[k]);
    g_stem(s, 2, &t, 1);
    enum { N = 80000 };
    wide_t w = w_new(2, N);
    w_render(s, (sf_target_t){SF_TARGET_STEM, 0}, 0, &w);

    float *pre = calloc(N, sizeof *pre);
    for (int64_t i = 1000; i < 61000; i++) {
        double x = i - 1000 < 3000 ? (double)(i - 1000) / 3000.0 : 1.0;
        pre[i] = (float)(-s_src_value(&srcs[0], 0, i - 1000) * r_db(-1) * x);
    }
    sf_fx_t fx[2];
    for (int k = 0; k < 2; k++) {
        sf_err_t err = {0};
        ck_assert_int_eq(sf_fx_init(&fx[k], &chain[k], 1, RATE, &err), SF_OK);
    }
    const size_t calls[] = {1, 253, 4099, 65536, 3};
    for (size_t at = 0, j = 0; at < N; j++) {
        size_t n = calls[j % 5] < N - at ? calls[j % 5] : N - at;
        float *p = pre + at;
        sf_fx_process(&fx[0], &p, n);
        sf_fx_process(&fx[1], &p, n);
        at += n;
    }
    const double th = (-0.4 + 1) * M_PI / 4, g = r_db(-2);
    double e = 0;
    for (int64_t i = 0; i < N; i++) {
        e = fmax(e, fabs((double)w.ch[0][i] - (double)pre[i] * g * cos(th)));
        e = fmax(e, fabs((double)w.ch[1][i] - (double)pre[i] * g * sin(th)));
    }
    fprintf(stderr, "test_render: eq chain on a track vs sf_fx_process: %.3g (%.2f LSB24)\n", e, e / LSB24);
    ck_assert_msg(e <= 2 * LSB24, "eq insert: %g", e);
    for (int k = 0; k < 2; k++)
        sf_fx_free(&fx[k]);
    free(pre);
    w_free(&w);
    g_free(s);
    s_free_sources(srcs, 1);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* A bus chain runs on the bus's float sum: the render with the chain is, to
 * the bit, the chain run here on the render without it -- until the bus has
 * rung out, where it falls silent exactly. */
START_TEST(test_fx_bus_insert)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[] = {{1, 24, 30000, SIG_NOISE, 71, 0.4, NULL}, {2, 24, 25000, SIG_NOISE, 72, 0.4, NULL}};
    s_write_sources(dir, srcs, 2);
    sf_session_t *s = g_new(2);
    int bus = g_bus(s, 2, SF_MASTER_BUS, 0);
    size_t t[2];
    t[0] = g_track(s, &srcs[0], 200, -3, 0.5, bus);
    t[1] = g_track(s, &srcs[1], 9000, -1, 0, bus);
    g_stem(s, 2, t, 2);
    enum { N = 34000 + 3 * WINDOW };
    const sf_target_t st = {SF_TARGET_STEM, 0};
    wide_t dry = w_new(2, N), wet = w_new(2, N);
    w_render(s, st, 0, &dry);
    const sf_fx_params_t chain[] = {fx_eq(SF_EQ_LOWSHELF, 150, 4, 0.707), fx_delay(30, 0.4, 0.5)};
    for (int k = 0; k < 2; k++)
        g_insert(B_FX(s, bus), chain[k]);
    w_render(s, st, 0, &wet);
    int64_t pad = 0;
    for (int k = 0; k < 2; k++) {
        sf_fx_t fx;
        sf_err_t err = {0};
        ck_assert_int_eq(sf_fx_init(&fx, &chain[k], 2, RATE, &err), SF_OK);
        sf_fx_process(&fx, dry.ch, N);
        sf_fx_free(&fx);
        pad += sf_fx_tail_frames(&chain[k], RATE, -144);
    }
    ck_assert_int_eq(sf_render_preroll(s, st), pad);
    const int64_t end = 34000 + pad; /* the last clip ends at 34000 */
    ck_assert_msg(end + 2 * WINDOW < N, "pad %lld", (long long)pad);
    for (int c = 0; c < 2; c++) {
        ck_assert_msg(memcmp(dry.ch[c], wet.ch[c], sizeof(float) * (size_t)end) == 0, "channel %d differs", c);
        for (int64_t i = end; i < N; i++)
            ck_assert_msg(fabs((double)dry.ch[c][i]) < 1e-7 && (wet.ch[c][i] == 0.0f || i < end + 2 * WINDOW),
                          "frame %lld: %g %g", (long long)i, (double)dry.ch[c][i], (double)wet.ch[c][i]);
        ck_assert(wet.ch[c][N - 1] == 0.0f);
    }
    w_free(&dry);
    w_free(&wet);
    g_free(s);
    s_free_sources(srcs, 2);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* Tails: a delay keeps ringing after its clip ends, a render that starts
 * after the clip with sf_render_preroll's pre-roll hears the echoes that a
 * continuous render hears, one without pre-roll does not, and past the
 * tail the output is exact silence; a reverb rings on after its clip. */
START_TEST(test_fx_tails)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[] = {{1, 24, 2000, SIG_CLICK, 1000, 0.8, NULL}, {1, 24, 4800, SIG_NOISE, 81, 0.5, NULL}};
    s_write_sources(dir, srcs, 2);
    sf_session_t *s = g_new(2);
    size_t t0 = g_track(s, &srcs[0], 0, 0, 0, SF_MASTER_BUS);
    g_insert(T_FX(s, t0), fx_delay(50, 0.5, 1.0)); /* 2400 frames, no dry */
    int verb = g_bus(s, 2, SF_MASTER_BUS, 0);
    size_t t1 = g_track(s, &srcs[1], 0, 0, 0, verb);
    g_insert(B_FX(s, verb), fx_reverb(0.5, 10, 0.3, 1.0));
    g_stem(s, 2, &t0, 1);
    g_stem(s, 2, &t1, 1);
    const sf_target_t s0 = {SF_TARGET_STEM, 0}, s1 = {SF_TARGET_STEM, 1};
    const int64_t pre = sf_render_preroll(s, s0);
    ck_assert_int_eq(pre, sf_fx_tail_frames(&s->tracks[t0].fx[0].params, RATE, -144));
    const int64_t N = 2000 + pre + 3 * WINDOW;
    wide_t w = w_new(2, N);
    w_render(s, s0, 0, &w);
    const double g = M_SQRT1_2 * 0.8; /* centre pan */
    for (int k = 1; k <= 8; k++) {
        double want = g * pow(0.5, k - 1);
        ck_assert_msg(fabs((double)w.ch[0][1000 + 2400 * k] - want) < 1e-6, "echo %d: %g, want %g", k,
                      (double)w.ch[0][1000 + 2400 * k], want);
        ck_assert(w.ch[0][1000 + 2400 * k - 1] == 0.0f);
    }
    ck_assert(w.ch[0][1000] == 0.0f); /* mix 1: no dry click */
    /* a segment well after the clip, with and without pre-roll */
    wide_t seg = w_new(2, 5000);
    w_render_pre(s, s0, 20000, pre, &seg);
    for (int c = 0; c < 2; c++)
        ck_assert(memcmp(seg.ch[c], w.ch[c] + 20000, sizeof(float) * 5000) == 0);
    ck_assert(w_peak(&seg, NULL) > 1e-4);
    w_render_pre(s, s0, 20000, 0, &seg);
    ck_assert(w_peak(&seg, NULL) == 0.0);
    /* exact silence once the tail is over (the chain was reset) */
    for (int64_t i = 2000 + pre + 2 * WINDOW; i < N; i++)
        ck_assert_msg(w.ch[0][i] == 0.0f && w.ch[1][i] == 0.0f, "frame %lld", (long long)i);
    w_free(&w);

    /* the reverb bus keeps sounding after its 0.1 s clip, then is silent */
    const int64_t pre1 = sf_render_preroll(s, s1);
    ck_assert_int_eq(pre1, sf_fx_tail_frames(&s->buses[verb].fx[0].params, RATE, -144));
    wide_t r = w_new(2, 4800 + pre1 + 3 * WINDOW);
    w_render(s, s1, 0, &r);
    double after = 0;
    for (int64_t i = 4800 + 12000; i < 4800 + 24000; i++)
        after = fmax(after, fabs((double)r.ch[1][i]));
    ck_assert_msg(after > 1e-5, "reverb 0.25..0.5 s after its clip: %g", after);
    for (int64_t i = 4800 + pre1 + 2 * WINDOW; i < r.n_frames; i++)
        ck_assert(r.ch[0][i] == 0.0f && r.ch[1][i] == 0.0f);
    w_free(&r);
    w_free(&seg);
    g_free(s);
    s_free_sources(srcs, 2);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* The session of the stitch tests: tracks with eq, delay and look-ahead
 * (latency on a track), a bus with reverb and a compressor fed by both
 * stems (shared), an aux reverb, a limiter on the master; automation. */
#define FX_SRCS 5
static sf_session_t *s_fx_session(const src_spec_t *srcs)
{
    sf_session_t *s = g_new(2);
    int drums = g_bus(s, 2, SF_MASTER_BUS, -1);
    int aux = g_bus(s, 2, SF_MASTER_BUS, -3);
    size_t t[5];
    t[0] = g_track(s, &srcs[0], 24000, -2, -0.3, drums);
    t[1] = g_track(s, &srcs[1], 100000, -4, 0.2, drums);
    t[2] = g_track(s, &srcs[2], 5000, -3, 0, SF_MASTER_BUS);
    t[3] = g_track(s, &srcs[3], 300000, -6, 0.5, SF_MASTER_BUS);
    t[4] = g_track(s, &srcs[4], 0, -1, -0.6, drums);
    g_insert(T_FX(s, t[0]), fx_eq(SF_EQ_HIGHPASS, 40, 0, 0.707));
    g_insert(T_FX(s, t[0]), fx_delay(180, 0.45, 0.3));
    g_insert(T_FX(s, t[1]), fx_eq(SF_EQ_PEAK, 2500, 5, 1.5));
    g_insert(T_FX(s, t[3]), fx_limiter(-9, 40, 3)); /* latency on a track */
    g_insert(T_FX(s, t[3]), fx_eq(SF_EQ_LOWPASS, 6000, 0, 0.707));
    g_insert(B_FX(s, drums), fx_reverb(1.2, 20, 0.5, 0.25));
    g_insert(B_FX(s, drums), fx_comp(-22, 4, 5, 120));
    g_insert(B_FX(s, aux), fx_reverb(0.8, 0, 0.2, 1.0));
    g_insert(&s->master_fx, &s->n_master_fx, fx_limiter(-3, 60, 5));
    g_send(&s->tracks[t[2]].sends, &s->tracks[t[2]].n_sends, aux, -6, false);
    g_send(&s->tracks[t[1]].sends, &s->tracks[t[1]].n_sends, aux, -10, true);
    int64_t af[] = {0, 200000, 400000};
    double av[] = {-20, 0, -6};
    g_auto(&s->tracks[t[2]].gain_auto, af, av, 3);
    size_t s0[] = {t[0], t[2]}, s1[] = {t[1], t[3], t[4]};
    g_stem(s, 2, s0, 2);
    g_stem(s, 2, s1, 3);
    double m0[] = {0, 0};
    g_mix(s, m0);
    s->mixes[0].master_apply = true;
    return s;
}

static void s_fx_sources(const char *dir, src_spec_t *srcs)
{
    for (int k = 0; k < FX_SRCS; k++)
        srcs[k] = (src_spec_t){k % 2 ? 2 : 1, 24, 60000 + 37000 * k, SIG_NOISE, (uint64_t)(700 + k), 0.5, NULL};
    s_write_sources(dir, srcs, FX_SRCS);
}

/* Segments of `cuts` frames (cycled), each rendered with sf_render_preroll
 * frames of pre-roll, stitched, against one continuous render: the largest
 * difference. */
static double s_stitch(const sf_session_t *s, sf_target_t t, int64_t start, int64_t n, const int64_t *cuts,
                       size_t n_cuts)
{
    const int nc = sf_session_target_channels(s, t);
    const int64_t pre = sf_render_preroll(s, t);
    wide_t cont = w_new(nc, n), seg = w_new(nc, n);
    w_render_pre(s, t, start, pre, &cont);
    for (int64_t at = 0, k = 0; at < n; k++) {
        int64_t len = cuts[k % (int64_t)n_cuts] < n - at ? cuts[k % (int64_t)n_cuts] : n - at;
        float *dst[SF_MAX_CHANNELS];
        for (int c = 0; c < nc; c++)
            dst[c] = seg.ch[c] + at;
        sf_err_t err = {0};
        ck_assert_msg(sf_render(s, t, start + at, len, pre, dst, &err) == SF_OK, "%s", err.msg);
        at += len;
    }
    double e = w_diff(&cont, &seg);
    ck_assert_msg(w_peak(&cont, NULL) > 0.05, "silent render");
    w_free(&cont);
    w_free(&seg);
    return e;
}

/* The stitch property: segments from 0.5 s to 10 s, each pre-rolled by
 * sf_render_preroll, stitch to within -120 dBFS of one continuous render,
 * for stems (master effects off and on), the full mix and a mix with the
 * master applied. */
START_TEST(test_fx_stitch)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[FX_SRCS];
    s_fx_sources(dir, srcs);
    sf_session_t *s = s_fx_session(srcs);
    const int64_t cuts[] = {24000, 62411, 144000, 480000, 33333};
    const sf_target_t targets[] = {
        {SF_TARGET_STEM, 0}, {SF_TARGET_STEM, 1}, {SF_TARGET_FULL_MIX, 0}, {SF_TARGET_MIX, 0}};
    const char *names[] = {"stem 0", "stem 1", "full mix", "mix, master applied"};
    for (int apply = 0; apply < 2; apply++) {
        s->output.master_apply = apply;
        for (size_t k = 0; k < 4; k++) {
            if (apply && k >= 2)
                continue; /* master_apply changes stems only */
            const int64_t pre = sf_render_preroll(s, targets[k]);
            const int64_t lat = sf_render_latency(s, targets[k]);
            double e = s_stitch(s, targets[k], 0, 12 * RATE, cuts, 5);
            fprintf(stderr, "test_render: stitch %s%s: pre-roll %.2f s, latency %lld, residual %.3g (%.1f dBFS)\n",
                    names[k], apply ? " (master applied)" : "", (double)pre / RATE, (long long)lat, e, s_dbfs(e));
            ck_assert_msg(e <= 1e-6, "%s: %g", names[k], e);
            ck_assert(pre > RATE);
            ck_assert(lat > 0);
        }
    }
    g_free(s);
    s_free_sources(srcs, FX_SRCS);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* Sum of the tails of a chain at -144 dB: what each insert reports. */
static int64_t s_chain_tail(const sf_insert_t *fx, size_t n)
{
    int64_t sum = 0;
    for (size_t k = 0; k < n; k++)
        sum += sf_fx_tail_frames(&fx[k].params, RATE, -144);
    return sum;
}

/* Pre-roll per track (DESIGN.md: per graph node): each track of the stitch
 * session starts its own chain's tails plus the longest tail sum from its
 * destinations to the output before a segment -- a dry track straight to
 * the master not at all -- and the target's pre-roll is the largest. */
START_TEST(test_fx_track_prerolls)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[FX_SRCS];
    s_fx_sources(dir, srcs);
    sf_session_t *s = s_fx_session(srcs);
    const int drums = 0, aux = 1;
    const int64_t drums_down = s_chain_tail(s->buses[drums].fx, s->buses[drums].n_fx);
    const int64_t aux_down = s_chain_tail(s->buses[aux].fx, s->buses[aux].n_fx);
    const int64_t master = s_chain_tail(s->master_fx, s->n_master_fx);
    int64_t own[FX_SRCS];
    for (int k = 0; k < FX_SRCS; k++)
        own[k] = s_chain_tail(s->tracks[k].fx, s->tracks[k].n_fx);
    ck_assert(own[2] == 0 && own[4] == 0 && own[0] > 0 && drums_down > aux_down && aux_down > 0);
    for (int apply = 0; apply < 2; apply++) {
        s->output.master_apply = apply;
        const int64_t m = apply ? master : 0;
        /* tracks 0, 1, 4 feed the drums bus; 1 and 2 send to the aux; 3 goes straight to the master */
        const int64_t want[FX_SRCS] = {own[0] + drums_down + m, own[1] + drums_down + m, aux_down + m, own[3] + m,
                                       drums_down + m};
        const sf_target_t full = {SF_TARGET_FULL_MIX, 0};
        int64_t got[FX_SRCS];
        sf_err_t err = {0};
        ck_assert_int_eq(sf_render_track_prerolls(s, full, got, &err), SF_OK);
        int64_t longest = 0;
        for (int k = 0; k < FX_SRCS; k++) {
            ck_assert_msg(got[k] == want[k], "track %d (master %d): %lld, want %lld", k, apply, (long long)got[k],
                          (long long)want[k]);
            longest = got[k] > longest ? got[k] : longest;
        }
        ck_assert_int_eq(sf_render_preroll(s, full), longest);
        /* stem 0 is tracks 0 and 2, but its share of the drums compressor
         * follows the full mix, so every track renders; a muted one does not */
        s->tracks[3].mute = true;
        ck_assert_int_eq(sf_render_track_prerolls(s, (sf_target_t){SF_TARGET_STEM, 0}, got, &err), SF_OK);
        s->tracks[3].mute = false;
        ck_assert(got[0] == want[0] && got[1] == want[1] && got[2] == want[2] && got[3] == -1 && got[4] == want[4]);
    }
    g_free(s);
    s_free_sources(srcs, FX_SRCS);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* Shared dynamics: the bus compressor and the master limiter that both
 * stems feed give each stem the full mix's gain, so the stems sum to the
 * full mix (and the mix with the master applied to the stems with
 * output.master: apply); a stem alone would be compressed otherwise. */
START_TEST(test_fx_shared_dynamics)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[FX_SRCS];
    s_fx_sources(dir, srcs);
    sf_session_t *s = s_fx_session(srcs);
    enum { N = 8 * RATE };
    const sf_target_t s0 = {SF_TARGET_STEM, 0}, s1 = {SF_TARGET_STEM, 1};
    wide_t a = w_new(2, N), b = w_new(2, N), full = w_new(2, N), mix = w_new(2, N);
    for (int apply = 0; apply < 2; apply++) {
        s->output.master_apply = apply;
        w_render(s, s0, 0, &a);
        w_render(s, s1, 0, &b);
        w_render(s, apply ? (sf_target_t){SF_TARGET_MIX, 0} : (sf_target_t){SF_TARGET_FULL_MIX, 0}, 0, &full);
        double e = 0;
        for (int c = 0; c < 2; c++)
            for (int64_t i = 0; i < N; i++)
                e = fmax(e, fabs((double)a.ch[c][i] + (double)b.ch[c][i] - (double)full.ch[c][i]));
        fprintf(stderr, "test_render: shared dynamics%s: stems - %s = %.3g (%.1f dBFS, peak %.3f)\n",
                apply ? " (master applied)" : "", apply ? "mix" : "full mix", e, s_dbfs(e), w_peak(&full, NULL));
        ck_assert_msg(e <= 1e-6, "stems vs full: %g", e);
    }
    /* the MIX (0 dB stems, master bypassed) is the full mix too */
    s->output.master_apply = false;
    s->mixes[0].master_apply = false;
    w_render(s, (sf_target_t){SF_TARGET_MIX, 0}, 0, &mix);
    w_render(s, (sf_target_t){SF_TARGET_FULL_MIX, 0}, 0, &full);
    ck_assert_msg(w_diff(&mix, &full) <= 1e-6, "mix vs full %g", w_diff(&mix, &full));
    /* alone, stem 0's tracks would get another gain */
    w_render(s, s0, 0, &a);
    for (size_t k = 0; k < s->stems[1].n_tracks; k++)
        s->tracks[s->stems[1].tracks[k]].mute = true;
    w_render(s, s0, 0, &b);
    ck_assert_msg(w_diff(&a, &b) > 1e-3, "stem 0 alone vs shared: %g", w_diff(&a, &b));
    w_free(&a);
    w_free(&b);
    w_free(&full);
    w_free(&mix);
    g_free(s);
    s_free_sources(srcs, FX_SRCS);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* Latency compensation: a click through a look-ahead limiter (on a bus, or
 * on the track itself) comes out at the click's frame, lined up to the
 * sample with the same click on a dry bus, in stems and in the full mix;
 * and it is limited. */
START_TEST(test_fx_latency)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[] = {{1, 24, 3000, SIG_CLICK, 1234, 0.9, NULL}};
    s_write_sources(dir, srcs, 1);
    sf_session_t *s = g_new(2);
    int lim = g_bus(s, 2, SF_MASTER_BUS, 0);
    int dry = g_bus(s, 2, SF_MASTER_BUS, 0);
    g_insert(B_FX(s, lim), fx_limiter(-6, 50, 5)); /* 240 frames */
    size_t t[3];
    t[0] = g_track(s, &srcs[0], 10000, 0, 0, lim);
    t[1] = g_track(s, &srcs[0], 10000, 0, 0, dry);
    t[2] = g_track(s, &srcs[0], 10000, 0, 0, SF_MASTER_BUS);
    g_insert(T_FX(s, t[2]), fx_limiter(-12, 50, 2)); /* 96 frames, on the track */
    for (int k = 0; k < 3; k++)
        g_stem(s, 2, &t[k], 1);
    const int64_t click = 10000 + 1234;
    ck_assert_int_eq(sf_render_latency(s, (sf_target_t){SF_TARGET_STEM, 0}), 240);
    ck_assert_int_eq(sf_render_latency(s, (sf_target_t){SF_TARGET_STEM, 1}), 0);
    ck_assert_int_eq(sf_render_latency(s, (sf_target_t){SF_TARGET_STEM, 2}), 96);
    ck_assert_int_eq(sf_render_latency(s, (sf_target_t){SF_TARGET_FULL_MIX, 0}), 240);
    const double ceil[] = {r_db(-6), 0.9 * M_SQRT1_2, r_db(-12) * M_SQRT1_2};
    for (uint32_t k = 0; k < 4; k++) {
        const sf_target_t tg = k < 3 ? (sf_target_t){SF_TARGET_STEM, k} : (sf_target_t){SF_TARGET_FULL_MIX, 0};
        for (int64_t start = 0; start < 12000; start += 11111) { /* long before the click, just before it */
            wide_t w = w_new(2, 20000);
            w_render_pre(s, tg, start, 0, &w);
            int64_t at = -1;
            double p = w_peak(&w, &at);
            ck_assert_msg(at + start == click, "target %u: peak at %lld, click at %lld", k, (long long)(at + start),
                          (long long)click);
            for (int c = 0; c < 2; c++) /* one click, not two: everything lines up */
                for (int64_t i = 0; i < w.n_frames; i++)
                    ck_assert_msg(w.ch[c][i] == 0.0f || i + start == click, "target %u: %g at %lld", k,
                                  (double)w.ch[c][i], (long long)(i + start));
            if (k < 3)
                ck_assert_msg(p <= ceil[k] + 1e-7 && p >= ceil[k] * 0.99, "target %u: peak %g, want %g", k, p, ceil[k]);
            w_free(&w);
        }
    }
    g_free(s);
    s_free_sources(srcs, 1);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* With effects, bytes still never depend on the thread count: stems (their
 * shared dynamics), the mix and the full mix, continuous and cut. */
START_TEST(test_fx_threads)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[FX_SRCS];
    s_fx_sources(dir, srcs);
    sf_session_t *s = s_fx_session(srcs);
    s->output.master_apply = true;
    const sf_target_t targets[] = {{SF_TARGET_STEM, 0}, {SF_TARGET_MIX, 0}, {SF_TARGET_FULL_MIX, 0}};
    enum { N = 200000 };
    for (size_t k = 0; k < 3; k++) {
        wide_t w[2] = {w_new(2, N), w_new(2, N)};
        for (int r = 0; r < 2; r++) {
            omp_set_num_threads(r ? 4 : 1);
            for (int64_t at = 0; at < N; at += 70001) {
                int64_t len = N - at < 70001 ? N - at : 70001;
                float *dst[2] = {w[r].ch[0] + at, w[r].ch[1] + at};
                ck_assert_int_eq(sf_render(s, targets[k], 90000 + at, len, 30000, dst, NULL), SF_OK);
            }
        }
        for (int c = 0; c < 2; c++)
            ck_assert_msg(memcmp(w[0].ch[c], w[1].ch[c], sizeof(float) * N) == 0, "target %zu ch %d", k, c);
        ck_assert(w_peak(&w[0], NULL) > 0.05);
        w_free(&w[0]);
        w_free(&w[1]);
    }
    omp_set_num_threads(2);
    g_free(s);
    s_free_sources(srcs, FX_SRCS);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* A stem whose paths have no insert stays bit-identical however it is cut
 * and pre-rolled, in a session where other stems have effects; a chain
 * that cannot start names its track; out of memory anywhere is reported. */
START_TEST(test_fx_errors_and_nomem)
{
    char *dir = tu_tmpdir();
    src_spec_t srcs[FX_SRCS];
    s_fx_sources(dir, srcs);
    sf_session_t *s = s_fx_session(srcs);
    /* a third stem: a plain track straight to the master */
    size_t plain = g_track(s, &srcs[2], 777, -1, 0.1, SF_MASTER_BUS);
    g_stem(s, 2, &plain, 1);
    s->mixes[0].stem_gain_db = g_grow(s->mixes[0].stem_gain_db, 3, sizeof(double)); /* 0 dB */
    const sf_target_t s2 = {SF_TARGET_STEM, 2};
    ck_assert_int_eq(sf_render_preroll(s, s2), 0);
    ck_assert_int_eq(sf_render_latency(s, s2), 0);
    wide_t a = w_new(2, 100000), b = w_new(2, 100000);
    w_render_pre(s, s2, 0, 0, &a);
    for (int64_t at = 0; at < 100000; at += 33000) {
        int64_t len = 100000 - at < 33000 ? 100000 - at : 33000;
        float *dst[2] = {b.ch[0] + at, b.ch[1] + at};
        ck_assert_int_eq(sf_render(s, s2, at, len, 48000, dst, NULL), SF_OK);
    }
    ck_assert(memcmp(a.ch[0], b.ch[0], sizeof(float) * 100000) == 0);
    ck_assert(memcmp(a.ch[1], b.ch[1], sizeof(float) * 100000) == 0);
    w_free(&a);
    w_free(&b);

    /* an eq above Nyquist cannot start */
    float x[2][100], *out[2] = {x[0], x[1]};
    sf_err_t err = {0};
    s->tracks[1].fx[0].params.u.eq.freq = 30000;
    ck_assert_int_eq(sf_render(s, (sf_target_t){SF_TARGET_STEM, 1}, 0, 100, 0, out, &err), SF_E_INPUT);
    ck_assert_msg(strstr(err.msg, "track 'T1', insert 1: ") == err.msg, "%s", err.msg);
    s->tracks[1].fx[0].params.u.eq.freq = 2500;
    s->buses[0].fx[1].params.kind = (sf_fx_kind_t)99;
    ck_assert_int_eq(sf_render(s, (sf_target_t){SF_TARGET_STEM, 1}, 0, 100, 0, out, &err), SF_E_INTERNAL);
    ck_assert_msg(strstr(err.msg, "bus 'B0': insert 2 is of unknown kind 99"), "%s", err.msg);
    s->buses[0].fx[1].params.kind = SF_FX_COMPRESSOR;

    /* allocation failures: every one reported, none leaked (ASan) */
    s->output.master_apply = true;
    const sf_target_t targets[] = {{SF_TARGET_STEM, 0}, {SF_TARGET_MIX, 0}, {SF_TARGET_FULL_MIX, 0}};
    float big[2][3000], *bo[2] = {big[0], big[1]};
    for (size_t ti = 0; ti < 3; ti++) {
        int ok = 0;
        for (long n = 1; n < 1000 && !ok; n++) {
            sf_err_t e2 = {0};
            sf_alloc_fail_after(n);
            sf_rc rc = sf_render(s, targets[ti], 299000, 3000, 1000, bo, &e2);
            sf_alloc_fail_after(0);
            ok = rc == SF_OK;
            if (!ok) {
                ck_assert_msg(rc == SF_E_NOMEM, "target %zu allocation %ld: %s (%d)", ti, n, e2.msg, rc);
                ck_assert_msg(strstr(e2.msg, "out of memory") != NULL, "%s", e2.msg);
            }
        }
        ck_assert_msg(ok, "target %zu never rendered", ti);
    }
    g_free(s);
    s_free_sources(srcs, FX_SRCS);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- media: resampled copies ------------------------------------------------------------------ */

static double s_sine_sig(int ch, int64_t i, void *ctx)
{
    const double rate = *(const double *)ctx;
    return 0.5 * sin(2 * M_PI * (997.0 + 310.0 * ch) * (double)i / rate) + (ch == 1 ? 0.1 * tu_noise(55, i) : 0.0);
}

/* The copy against libsoxr called directly (one shot, same quality and
 * specs): the same samples, bit for bit; its length round(n * 48000 / 44100). */
START_TEST(test_resample_matches_soxr)
{
    char *dir = tu_tmpdir();
    const int channels = _i == 0 ? 1 : 2;
    const int bits = _i == 0 ? 24 : 32;
    const int64_t frames = 100003;
    double rate_in = 44100;
    char *src = tu_write_wav(dir, "sine.wav", channels, 44100, frames, bits, s_sine_sig, &rate_in);
    char *cache = tu_path(dir, "cache/deeper");
    char *copy = NULL;
    sf_err_t err = {0};
    ck_assert_msg(sf_media_resampled(src, 48000, cache, &copy, &err) == SF_OK, "%s", err.msg);
    ck_assert(strncmp(copy, cache, strlen(cache)) == 0);
    uint8_t sha[32];
    char hex[65], name[128];
    ck_assert_int_eq(sf_hash_sha256_file(src, sha, NULL), SF_OK);
    sf_hash_hex(sha, 32, hex);
    snprintf(name, sizeof name, "/%s-48000.wav", hex);
    ck_assert_msg(strstr(copy, name) != NULL, "%s", copy);

    int n_ch, rate;
    int64_t n_fr;
    double *got = tu_read_audio(copy, &n_ch, &n_fr, &rate);
    const int64_t want = (frames * 48000 * 2 + 44100) / (2 * 44100);
    ck_assert_int_eq(n_ch, channels);
    ck_assert_int_eq(rate, 48000);
    ck_assert_int_eq(n_fr, want);
    /* libsoxr directly, on the samples as libsndfile reads them */
    double *in_d = tu_read_audio(src, NULL, NULL, NULL);
    float *in = malloc(sizeof(float) * (size_t)(frames * channels));
    float *ref = calloc((size_t)(want * channels), sizeof(float));
    for (int64_t i = 0; i < frames * channels; i++)
        in[i] = (float)in_d[i];
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_VHQ, 0);
    soxr_runtime_spec_t rt = soxr_runtime_spec(1);
    size_t odone = 0;
    soxr_error_t e = soxr_oneshot(44100, 48000, (unsigned)channels, in, (size_t)frames, NULL, ref, (size_t)want, &odone,
                                  &io, &q, &rt);
    ck_assert_msg(e == NULL, "soxr: %s", e);
    ck_assert_int_eq((int64_t)odone, want);
    int64_t diff = 0;
    for (int64_t i = 0; i < want * channels; i++)
        diff += got[i] != (double)ref[i];
    ck_assert_msg(diff == 0, "%lld samples differ from soxr_oneshot", (long long)diff);
    /* and it is a 997 Hz sine at 48 kHz (the resampler did resample) */
    double max_err = 0;
    for (int64_t i = 2000; i < want - 2000; i++) {
        double x = 0.5 * sin(2 * M_PI * 997.0 * (double)i / 48000.0);
        double d = fabs(got[i * channels] - x);
        max_err = d > max_err ? d : max_err;
    }
    ck_assert_msg(max_err < 1e-4, "not the sine: %g", max_err);
    free(in_d);
    free(in);
    free(ref);
    free(got);
    sf_free(copy);
    free(cache);
    free(src);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* Made once, reused after: the second call neither rewrites nor replaces
 * the file (same inode, same mtime), leaves no temporary behind; a copy that
 * does not read back right is made again; the same rate gives an exact copy. */
START_TEST(test_resample_cache)
{
    char *dir = tu_tmpdir();
    double rate_in = 44100;
    char *src = tu_write_wav(dir, "a.wav", 2, 44100, 30011, 16, s_sine_sig, &rate_in);
    char *cache = tu_path(dir, "cache");
    char *first = NULL, *again = NULL;
    sf_err_t err = {0};
    ck_assert_msg(sf_media_resampled(src, 48000, cache, &first, &err) == SF_OK, "%s", err.msg);
    struct stat st1, st2;
    ck_assert_int_eq(stat(first, &st1), 0);
    nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000}, NULL);
    ck_assert_msg(sf_media_resampled(src, 48000, cache, &again, &err) == SF_OK, "%s", err.msg);
    ck_assert_str_eq(first, again);
    ck_assert_int_eq(stat(again, &st2), 0);
    ck_assert(st1.st_ino == st2.st_ino);
    ck_assert(st1.st_mtim.tv_sec == st2.st_mtim.tv_sec && st1.st_mtim.tv_nsec == st2.st_mtim.tv_nsec);
    sf_free(again);
    /* one file in the cache: no temporary left */
    char *out = NULL;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", cache);
    ck_assert_int_eq(tu_run(cmd, &out, NULL, 10), 0);
    ck_assert_int_eq(atoi(out), 1);
    free(out);
    /* another rate: another file, from the same hash */
    ck_assert_int_eq(sf_media_resampled(src, 96000, cache, &again, &err), SF_OK);
    ck_assert(strstr(again, "-96000.wav") != NULL);
    sf_free(again);
    /* a truncated copy is made again (a new file, renamed in) */
    ck_assert_int_eq(truncate(first, 100), 0);
    ck_assert_int_eq(sf_media_resampled(src, 48000, cache, &again, &err), SF_OK);
    ck_assert_int_eq(stat(again, &st2), 0);
    ck_assert(st2.st_size > 100000);
    sf_media_info_t info;
    ck_assert_int_eq(sf_media_probe(again, &info, &err), SF_OK);
    ck_assert_int_eq(info.frames, (30011LL * 48000 * 2 + 44100) / (2 * 44100));
    sf_free(again);
    /* the same rate: an exact float copy */
    ck_assert_int_eq(sf_media_resampled(src, 44100, cache, &again, &err), SF_OK);
    int64_t na, nb;
    int ca, cb;
    double *a = tu_read_audio(src, &ca, &na, NULL), *b = tu_read_audio(again, &cb, &nb, NULL);
    ck_assert(ca == cb && na == nb);
    ck_assert(memcmp(a, b, sizeof(double) * (size_t)(na * ca)) == 0);
    free(a);
    free(b);
    sf_free(again);
    sf_free(first);
    free(cache);
    free(src);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_resample_errors)
{
    char *dir = tu_tmpdir();
    double rate_in = 44100;
    char *src = tu_write_wav(dir, "a.wav", 1, 44100, 1000, 24, s_sine_sig, &rate_in);
    char *cache = tu_path(dir, "cache");
    char *out = (char *)1;
    sf_err_t err = {0};
    /* bad rates: nothing made */
    const int bad[] = {0, -48000, 7999, 384001};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ck_assert_int_eq(sf_media_resampled(src, bad[k], cache, &out, &err), SF_E_INPUT);
        ck_assert_ptr_null(out);
        ck_assert_msg(strstr(err.msg, src) && strstr(err.msg, "Hz"), "%s", err.msg);
    }
    ck_assert(!tu_exists(cache));
    /* a missing source, and one that is not audio */
    char *missing = tu_path(dir, "gone.wav");
    ck_assert_int_eq(sf_media_resampled(missing, 48000, cache, &out, &err), SF_E_IO);
    ck_assert_msg(strstr(err.msg, missing) && strstr(err.msg, "No such file"), "%s", err.msg);
    char *text = tu_write_text(dir, "notes.wav", "not audio\n");
    ck_assert_int_eq(sf_media_resampled(text, 48000, cache, &out, &err), SF_E_IO);
    ck_assert_msg(strstr(err.msg, text) != NULL, "%s", err.msg);
    /* an unreadable source (when not root, who reads anything) */
    if (geteuid() != 0) {
        ck_assert_int_eq(chmod(src, 0), 0);
        ck_assert_int_eq(sf_media_resampled(src, 48000, cache, &out, &err), SF_E_IO);
        ck_assert_msg(strstr(err.msg, src) && strstr(err.msg, "denied"), "%s", err.msg);
        chmod(src, 0644);
    }
    /* a cache folder that cannot be made */
    char *blocker = tu_write_text(dir, "file", "x");
    char *under = tu_path(blocker, "cache");
    ck_assert_int_eq(sf_media_resampled(src, 48000, under, &out, &err), SF_E_IO);
    ck_assert_msg(strstr(err.msg, blocker) != NULL, "%s", err.msg);
    ck_assert_ptr_null(out);
    free(under);
    free(blocker);
    free(text);
    free(missing);
    free(cache);
    free(src);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- media: surround channel masks ------------------------------------------------------------ */

/* 5.1 and 7.1 files carry their masks, read back by libsndfile
 * (SFC_GET_CHANNEL_MAP_INFO) and as the raw dwChannelMask; the samples
 * round-trip and verify. A float32 W64 stays without a mask (see media.c). */
START_TEST(test_channel_masks)
{
    static const sf_format_t k_fmts[] = {SF_FILE_WAV, SF_FILE_RF64, SF_FILE_W64};
    static const sf_sample_format_t k_samples[] = {SF_SAMPLE_PCM16, SF_SAMPLE_PCM24, SF_SAMPLE_FLOAT32};
    const sf_format_t fmt = k_fmts[_i / 6];
    const sf_sample_format_t sample = k_samples[_i / 2 % 3];
    const int channels = _i % 2 ? 8 : 6;
    static const int map6[] = {SF_CHANNEL_MAP_LEFT, SF_CHANNEL_MAP_RIGHT,     SF_CHANNEL_MAP_CENTER,
                               SF_CHANNEL_MAP_LFE,  SF_CHANNEL_MAP_REAR_LEFT, SF_CHANNEL_MAP_REAR_RIGHT};
    static const int map8[] = {SF_CHANNEL_MAP_LEFT,      SF_CHANNEL_MAP_RIGHT,     SF_CHANNEL_MAP_CENTER,
                               SF_CHANNEL_MAP_LFE,       SF_CHANNEL_MAP_REAR_LEFT, SF_CHANNEL_MAP_REAR_RIGHT,
                               SF_CHANNEL_MAP_SIDE_LEFT, SF_CHANNEL_MAP_SIDE_RIGHT};
    char *dir = tu_tmpdir();
    char *path = tu_path(dir, "surround.wav");
    enum { N = 10007 };
    int32_t *ints = malloc(sizeof(int32_t) * N * 8);
    float *floats = malloc(sizeof(float) * N * 8);
    const int bits = sample == SF_SAMPLE_PCM16 ? 16 : 24;
    for (int i = 0; i < N * channels; i++) {
        int64_t v = llround(tu_noise(88, i) * ((1 << (bits - 1)) - 1));
        ints[i] = (int32_t)(v * (1LL << (32 - bits)));
        floats[i] = (float)tu_noise(89, i) * 1.5f;
    }
    sf_media_writer_t *w = NULL;
    sf_err_t err = {0};
    ck_assert_msg(sf_media_writer_open(path, fmt, sample, RATE, channels, NULL, &w, &err) == SF_OK, "%s", err.msg);
    for (int at = 0; at < N; at += 4000) {
        size_t n = N - at < 4000 ? (size_t)(N - at) : 4000;
        sf_rc rc = sample == SF_SAMPLE_FLOAT32 ? sf_media_writer_write_float(w, floats + at * channels, n, &err)
                                               : sf_media_writer_write_int(w, ints + at * channels, n, &err);
        ck_assert_msg(rc == SF_OK, "%s", err.msg);
    }
    uint64_t hash = sf_media_writer_pcm_hash(w);
    ck_assert_int_eq(sf_media_writer_close(&w, &err), SF_OK);
    uint64_t back;
    int64_t frames;
    int n_ch;
    ck_assert_msg(sf_media_hash_pcm(path, sample, NULL, &back, &frames, &n_ch, &err) == SF_OK, "%s", err.msg);
    ck_assert(back == hash && frames == N && n_ch == channels);

    /* the map as libsndfile reads it back */
    SF_INFO si = {0};
    SNDFILE *snd = sf_open(path, SFM_READ, &si);
    ck_assert_ptr_nonnull(snd);
    int map[8] = {0};
    int has = sf_command(snd, SFC_GET_CHANNEL_MAP_INFO, map, (int)sizeof(int) * channels);
    sf_close(snd);
    const bool expect_mask = !(fmt == SF_FILE_W64 && sample == SF_SAMPLE_FLOAT32);
    if (expect_mask) {
        ck_assert_msg(has, "no channel map read back");
        ck_assert(memcmp(map, channels == 6 ? map6 : map8, sizeof(int) * (size_t)channels) == 0);
    } else {
        ck_assert(!has);
    }
    /* the raw mask: WAVE_FORMAT_EXTENSIBLE's dwChannelMask in the fmt chunk */
    size_t n_bytes;
    unsigned char *raw = (unsigned char *)tu_slurp(path, &n_bytes);
    const unsigned char *fmt_at = NULL;
    for (size_t p = 0; p + 28 < n_bytes && p < 512; p++)
        if (memcmp(raw + p, "fmt ", 4) == 0) {
            fmt_at = raw + p + (fmt == SF_FILE_W64 ? 24 : 8);
            break;
        }
    ck_assert_ptr_nonnull(fmt_at);
    unsigned tag = fmt_at[0] | fmt_at[1] << 8;
    if (expect_mask) {
        ck_assert_uint_eq(tag, 0xFFFE);
        unsigned long mask = (unsigned long)fmt_at[20] | (unsigned long)fmt_at[21] << 8 |
                             (unsigned long)fmt_at[22] << 16 | (unsigned long)fmt_at[23] << 24;
        ck_assert_uint_eq(mask, channels == 6 ? 0x3F : 0x63F);
    } else {
        ck_assert_uint_eq(tag, 3); /* WAVE_FORMAT_IEEE_FLOAT */
    }
    free(raw);
    /* the same samples write the same bytes */
    char *path2 = tu_path(dir, "again.wav");
    ck_assert_int_eq(sf_media_writer_open(path2, fmt, sample, RATE, channels, NULL, &w, &err), SF_OK);
    ck_assert_int_eq(sample == SF_SAMPLE_FLOAT32 ? sf_media_writer_write_float(w, floats, N, &err)
                                                 : sf_media_writer_write_int(w, ints, N, &err),
                     SF_OK);
    ck_assert_int_eq(sf_media_writer_close(&w, &err), SF_OK);
    ck_assert(tu_files_equal(path, path2));
    /* and the integers are exactly what was written */
    if (sample != SF_SAMPLE_FLOAT32) {
        int nc;
        int64_t nf;
        int32_t *got = tu_read_pcm_ints(path, bits, &nc, &nf);
        for (int i = 0; i < N * channels; i++)
            ck_assert_msg(got[i] == ints[i] >> (32 - bits), "sample %d", i);
        free(got);
    }
    free(path2);
    free(ints);
    free(floats);
    free(path);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("render");
    TCase *tc = tcase_create("pan");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_track_gains, 0, (int)N_GAINS);
    tcase_add_test(tc, test_centre_is_minus_3db);
    tcase_add_loop_test(tc, test_pan_render, 0, (int)N_GAINS);
    suite_add_tcase(s, tc);

    tc = tcase_create("mix");
    tcase_set_timeout(tc, 280);
    tcase_add_test(tc, test_clip_placement);
    tcase_add_test(tc, test_mix_vs_reference);
    tcase_add_test(tc, test_determinism);
    tcase_add_test(tc, test_thousand_tracks);
    suite_add_tcase(s, tc);

    tc = tcase_create("graph");
    tcase_set_timeout(tc, 280);
    tcase_add_test(tc, test_layout_gains);
    tcase_add_test(tc, test_route_and_layouts);
    tcase_add_test(tc, test_sends_and_buses);
    tcase_add_test(tc, test_automation_values);
    tcase_add_test(tc, test_automation_render);
    tcase_add_test(tc, test_fades_and_crossfades);
    tcase_add_test(tc, test_mix_is_sum_of_stems);
    tcase_add_test(tc, test_full_mix_nulls);
    tcase_add_test(tc, test_multitrack);
    tcase_add_test(tc, test_graph_determinism);
    tcase_add_test(tc, test_graph_errors);
    tcase_add_test(tc, test_graph_nomem);
    suite_add_tcase(s, tc);

    tc = tcase_create("fx");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_fx_gain_insert);
    tcase_add_test(tc, test_fx_eq_insert);
    tcase_add_test(tc, test_fx_bus_insert);
    tcase_add_test(tc, test_fx_tails);
    tcase_add_test(tc, test_fx_latency);
    tcase_add_test(tc, test_fx_shared_dynamics);
    tcase_add_test(tc, test_fx_stitch);
    tcase_add_test(tc, test_fx_track_prerolls);
    tcase_add_test(tc, test_fx_threads);
    tcase_add_test(tc, test_fx_errors_and_nomem);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_missing_source);
    tcase_add_test(tc, test_source_shorter_than_clip);
    tcase_add_test(tc, test_render_nomem);
    suite_add_tcase(s, tc);

    tc = tcase_create("media");
    tcase_set_timeout(tc, 280);
    tcase_add_test(tc, test_media_read);
    tcase_add_test(tc, test_denormals_flush_on_render_threads);
    tcase_add_test(tc, test_media_read_matches_libsndfile);
    tcase_add_loop_test(tc, test_writer_roundtrip, 0, (int)N_FORMATS);
    tcase_add_test(tc, test_writer_bytes_reproducible);
    tcase_add_test(tc, test_writer_errors);
    tcase_add_test(tc, test_writer_rf64_and_bwf);
    tcase_add_loop_test(tc, test_channel_masks, 0, 18);
    tcase_add_loop_test(tc, test_resample_matches_soxr, 0, 2);
    tcase_add_test(tc, test_resample_cache);
    tcase_add_test(tc, test_resample_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(s_suite()); }
