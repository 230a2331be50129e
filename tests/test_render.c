/* test_render.c -- the renderer (sf/render.h) and media I/O (sf/media.h).
 *
 * Sessions are built by hand here (sf_session_t filled from small spec
 * tables) so that these tests do not depend on the YAML loader. Sources are
 * generated WAV files (tu_write_wav) whose sample values the test knows
 * exactly (tu_quantized), so every render is checked against a reference mix
 * computed independently, in double precision, from the specs: its own pan
 * law formulas, its own clip placement ("the last clip covering a frame
 * wins"), no file reads. */
#include "sf/alloc.h"
#include "sf/hash.h"
#include "sf/media.h"
#include "sf/render.h"
#include "sf/session.h"
#include "testutil.h"

#include <check.h>
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define RATE 48000
#define LSB24 (1.0 / 8388608.0) /* 2^-23 */

/* ---- fixtures: sources, tracks, stems ------------------------------------ */

typedef enum { SIG_NOISE, SIG_CONST } sig_kind_t;

typedef struct {
    int channels;
    int bits;       /* 16, 24, or 32 (float) */
    int64_t frames;
    sig_kind_t kind;
    uint64_t seed;
    double amp;
    char *path;     /* set by s_write_sources */
} src_spec_t;

typedef struct {
    int src;        /* index into the source table */
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
    size_t n_tracks;     /* 0: every track */
    const size_t *tracks; /* ascending */
} stem_spec_t;

static double s_signal(int ch, int64_t i, void *ctx)
{
    const src_spec_t *src = ctx;
    if (src->kind == SIG_CONST)
        return src->amp * (ch == 0 ? 1.0 : -0.5);
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
        srcs[k].path = tu_write_wav(dir, name, srcs[k].channels, RATE, srcs[k].frames,
                                    srcs[k].bits, s_signal, &srcs[k]);
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

/* ref[c][0..n) = the stem over timeline [start, start + n), in double. */
static void s_reference(const src_spec_t *srcs, const track_spec_t *tracks, size_t n_tracks,
                        const stem_spec_t *stem, int64_t start, int64_t n, double **ref)
{
    for (int c = 0; c < stem->n_channels; c++)
        memset(ref[c], 0, sizeof(double) * (size_t)n);
    size_t n_stem = stem->n_tracks ? stem->n_tracks : n_tracks;
    for (size_t k = 0; k < n_stem; k++) {
        const track_spec_t *t = &tracks[stem->n_tracks ? stem->tracks[k] : k];
        if (t->mute || t->n_clips == 0)
            continue;
        int n_in = srcs[t->clips[0].src].channels;
        double g[2][2];
        s_ref_gains(t, n_in, stem->n_channels, g);
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
                for (int c = 0; c < stem->n_channels; c++)
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
static double s_render_vs_reference(const sf_session_t *s, size_t stem_index,
                                    const src_spec_t *srcs, const track_spec_t *tracks,
                                    size_t n_tracks, const stem_spec_t *stem, int64_t start,
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
#define G6 0.50118723362727224  /* -6 dB */

static const gains_case_t k_gains[] = {
    {"mono centre", 1, 2, 0.0, 0, false, {{C45, C45}}},
    {"mono hard left", 1, 2, -1.0, 0, false, {{1, 0}}},
    {"mono hard right", 1, 2, 1.0, 0, false, {{0, 1}}},
    {"mono pan 0.5", 1, 2, 0.5, 0, false, {{C67, S67}}},
    {"mono pan -0.5", 1, 2, -0.5, 0, false, {{S67, C67}}},
    {"mono -6 dB inverted", 1, 2, 0.0, -6, true, {{-G6 * C45, -G6 * C45}}},
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
    sf_track_t t = {.n_channels = gc->n_in, .gain_db = gc->gain_db, .pan = gc->pan,
                    .invert = gc->invert};
    double g[2][SF_MAX_CHANNELS];
    sf_render_track_gains(&t, gc->n_out, g);
    for (int in = 0; in < gc->n_in; in++)
        for (int out = 0; out < gc->n_out; out++)
            ck_assert_msg(fabs(g[in][out] - gc->g[in][out]) < 1e-15,
                          "%s: gains[%d][%d] = %.17g, expected %.17g", gc->name, in, out,
                          g[in][out], gc->g[in][out]);
    /* the hard-panned side is silent, not -300 dB */
    if (fabs(gc->pan) == 1.0 && gc->n_out == 2)
        for (int in = 0; in < gc->n_in; in++)
            for (int out = 0; out < 2; out++)
                if (gc->g[in][out] == 0.0)
                    ck_assert_msg(g[in][out] == 0.0, "%s: [%d][%d] = %g", gc->name, in, out,
                                  g[in][out]);
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
    track_spec_t tr = {.gain_db = gc->gain_db, .pan = gc->pan, .invert = gc->invert,
                       .n_clips = 1, .clips = {{0, 100, 0, 0, 0}}};
    stem_spec_t st = {gc->n_out, 0, NULL};
    sf_session_t *s = s_build(&src, &tr, 1, &st, 1);
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
                          "%s: out %d frame %lld = %.9g, expected %.9g", gc->name, c,
                          (long long)f, (double)p.ch[c][f], want);
        }
    }
    s_planar_free(&p);
    s_free_session(s);
    s_free_sources(&src, 1);
    tu_rm_rf(dir);
    free(dir);
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
        {-1.5, 0.25, false, false, 4,
         {{0, 1000, 0, 10000, 0}, {1, 3001, 17, 999, -3}, {1, 9500, 4000, 2500, 2}, {0, 10, 5, 1200, -6}}},
        /* stereo: a clip fully hidden behind a later one, a -inf clip muting a gap */
        {-3, -0.3, true, false, 3,
         {{2, 2000, 100, 3000, 0}, {2, 1500, 9000, 4500, -1}, {2, 4000, 0, 500, -INFINITY}}},
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
    return s_build(g_mix_srcs, g_mix_tracks, MIX_TRACKS, k_mix_stems,
                   sizeof k_mix_stems / sizeof k_mix_stems[0]);
}

START_TEST(test_mix_vs_reference)
{
    char *dir = tu_tmpdir();
    s_mix_fixture(dir);
    sf_session_t *s = s_mix_session();
    /* Measured max |render - double reference| (gcc 12, x86-64, 150,001 frames):
     *   stereo stem, all 24 tracks (peak 0.90)   6.22e-08 = 0.52 LSB of pcm24
     *   mono fold-down stem (peak 1.19)          6.79e-08 = 0.57 LSB
     *   5-track stereo subset (peak 0.41)        2.87e-08 = 0.24 LSB
     * With a float accumulator instead of the double one the stereo stem
     * measured 1.59e-07 = 1.34 LSB. The bound asserted is 1 LSB of pcm24,
     * 2^-23 = 1.19e-07. */
    for (size_t k = 0; k < sizeof k_mix_stems / sizeof k_mix_stems[0]; k++) {
        double e = s_render_vs_reference(s, k, g_mix_srcs, g_mix_tracks, MIX_TRACKS,
                                         &k_mix_stems[k], 0, MIX_FRAMES);
        fprintf(stderr, "test_render: stem %zu (%d ch): max error vs double reference %.3g (%.3f LSB24)\n",
                k, k_mix_stems[k].n_channels, e, e / LSB24);
        ck_assert_msg(e <= LSB24, "stem %zu: max error %g > 2^-23", k, e);
    }
    /* a window not aligned to anything */
    double e = s_render_vs_reference(s, 0, g_mix_srcs, g_mix_tracks, MIX_TRACKS, &k_mix_stems[0],
                                     40001, 70003);
    ck_assert_msg(e <= LSB24, "offset range: max error %g", e);
    s_free_session(s);
    s_free_sources(g_mix_srcs, MIX_TRACKS);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- determinism ------------------------------------------------------------------- */

/* Renders [start, start + n) in pieces of the given lengths (cycled). */
static void s_render_cut(const sf_session_t *s, size_t stem, int64_t start, int64_t n,
                         const int64_t *pieces, size_t n_pieces, int64_t preroll, float **out)
{
    int64_t at = 0;
    for (size_t p = 0; at < n; p++) {
        int64_t len = pieces[p % n_pieces];
        len = len < n - at ? len : n - at;
        float *dst[2] = {out[0] + at, out[1] ? out[1] + at : NULL};
        sf_err_t err = {0};
        ck_assert_msg(sf_render_stem(s, stem, start + at, len, preroll, dst, &err) == SF_OK,
                      "%s", err.msg);
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
        {whole, 1, 1, 0},      {whole, 1, 2, 0},      {whole, 1, 4, 48000},
        {cut_a, 5, 1, 0},      {cut_a, 5, 2, 12345},  {cut_a, 5, 4, 0},
        {cut_b, 2, 4, 0},      {cut_c, 1, 3, 100},
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
                              "stem %zu run %zu (%d threads): channel %d differs", stem, r,
                              runs[r].threads, c);
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
        tracks[k] = (track_spec_t){-20.0 - (k % 7), -1.0 + (k % 41) / 20.0, k % 3 == 0, k % 97 == 0,
                                   1, {{k, 37 * k + 1, k % 10, 990, 0}}};
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
            ck_assert_msg(strstr(err.msg, srcs[1].path) != NULL, "%d threads: %s", threads,
                          err.msg);
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
                                  "src %d ch %d frame %lld: %.9g vs %.9g", k, c,
                                  (long long)(off + i), (double)dst[c][i],
                                  s_src_value(&srcs[k], c, off + i));
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
    ck_assert_msg(strstr(err.msg, "cannot open '") && strstr(err.msg, missing) &&
                      strstr(err.msg, "No such file"),
                  "%s", err.msg);
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
    {SF_FILE_WAV, SF_SAMPLE_PCM16, true},  {SF_FILE_WAV, SF_SAMPLE_PCM24, true},
    {SF_FILE_WAV, SF_SAMPLE_PCM32, true},  {SF_FILE_WAV, SF_SAMPLE_FLOAT32, true},
    {SF_FILE_RF64, SF_SAMPLE_PCM16, true}, {SF_FILE_RF64, SF_SAMPLE_PCM24, true},
    {SF_FILE_RF64, SF_SAMPLE_PCM32, true}, {SF_FILE_RF64, SF_SAMPLE_FLOAT32, true},
    {SF_FILE_W64, SF_SAMPLE_PCM16, true},  {SF_FILE_W64, SF_SAMPLE_PCM24, true},
    {SF_FILE_W64, SF_SAMPLE_PCM32, true},  {SF_FILE_W64, SF_SAMPLE_FLOAT32, true},
    {SF_FILE_AIFF, SF_SAMPLE_PCM16, true}, {SF_FILE_AIFF, SF_SAMPLE_PCM24, true},
    {SF_FILE_AIFF, SF_SAMPLE_PCM32, true}, {SF_FILE_AIFF, SF_SAMPLE_FLOAT32, true},
    {SF_FILE_FLAC, SF_SAMPLE_PCM16, true}, {SF_FILE_FLAC, SF_SAMPLE_PCM24, true},
    {SF_FILE_FLAC, SF_SAMPLE_PCM32, false}, {SF_FILE_FLAC, SF_SAMPLE_FLOAT32, false},
};
#define N_FORMATS (sizeof k_formats / sizeof k_formats[0])
#define WR_CHANNELS 2

static const char *k_ext[] = {"wav", "rf64", "w64", "aiff", "flac"};
static const size_t k_chunks[] = {1, 1000, 4099, 0, 17};
#define WR_FRAMES (1 + 1000 + 4099 + 17)

static int s_bits(sf_sample_format_t f)
{
    return f == SF_SAMPLE_PCM16 ? 16 : f == SF_SAMPLE_PCM24 ? 24 : 32;
}

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
        floats[i] = i % 89 == 0 ? 1.75f : i % 97 == 0 ? -3.5f : i % 83 == 0 ? 1e-42f
                    : i % 79 == 0 ? -0.0f : (float)tu_noise(78, i);
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
    ck_assert_msg(sf_media_writer_open(path, fc->format, fc->sample, RATE, WR_CHANNELS, &w, &err) ==
                      SF_OK,
                  "%s", err.msg);
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
    uint64_t direct = fc->sample == SF_SAMPLE_FLOAT32
                          ? sf_hash_xxh3(floats, sizeof(float) * WR_FRAMES * WR_CHANNELS)
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
        ck_assert_int_eq(sf_media_writer_open(path, fc->format, fc->sample, RATE, 2, &w, &err),
                         SF_E_INPUT);
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
    ck_assert_msg(sf_media_hash_pcm(path, fc->sample, &back, &frames, &channels, &err) == SF_OK,
                  "%s", err.msg);
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
            ck_assert_msg(got[i] == ints[i] >> (32 - bits), "sample %lld: %d, wrote %d",
                          (long long)i, got[i], ints[i] >> (32 - bits));
        free(got);
    }
    /* asking for the wrong sample format is a verification failure */
    sf_sample_format_t other = fc->sample == SF_SAMPLE_PCM16 ? SF_SAMPLE_PCM24 : SF_SAMPLE_PCM16;
    ck_assert_int_eq(sf_media_hash_pcm(path, other, &back, &frames, &channels, &err), SF_E_VERIFY);
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

START_TEST(test_writer_errors)
{
    char *dir = tu_tmpdir();
    char *path = tu_path(dir, "no/such/folder/x.wav");
    sf_media_writer_t *w = NULL;
    sf_err_t err = {0};
    ck_assert_int_eq(sf_media_writer_open(path, SF_FILE_WAV, SF_SAMPLE_PCM24, RATE, 2, &w, &err),
                     SF_E_IO);
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, "No such file"), "%s", err.msg);
    ck_assert_ptr_null(w);
    free(path);
    /* writing the wrong kind of sample is refused */
    path = tu_path(dir, "x.wav");
    ck_assert_int_eq(sf_media_writer_open(path, SF_FILE_WAV, SF_SAMPLE_PCM24, RATE, 1, &w, &err),
                     SF_OK);
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
    ck_assert_int_eq(sf_media_hash_pcm(missing, SF_SAMPLE_PCM24, &h, &n, &c, &err), SF_E_IO);
    ck_assert_msg(strstr(err.msg, missing) != NULL, "%s", err.msg);
    free(missing);
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

    tc = tcase_create("errors");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_missing_source);
    tcase_add_test(tc, test_source_shorter_than_clip);
    tcase_add_test(tc, test_render_nomem);
    suite_add_tcase(s, tc);

    tc = tcase_create("media");
    tcase_set_timeout(tc, 280);
    tcase_add_test(tc, test_media_read);
    tcase_add_loop_test(tc, test_writer_roundtrip, 0, (int)N_FORMATS);
    tcase_add_test(tc, test_writer_bytes_reproducible);
    tcase_add_test(tc, test_writer_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(s_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
