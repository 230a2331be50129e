/* configs/generate.c -- stemfarm-gen: the example session and bench sessions.
 *
 *   stemfarm-gen example DIR [--media-only]
 *   stemfarm-gen bench DIR --tracks N --seconds S --stems K [--rate R] [--fx]
 *                      [--strip] [--verbs] [--repeat-to T]
 *
 * `example` writes "Night Drive", the session the README renders: a 36 s
 * synthwave groove (100 BPM, A minor) of 30 synthesised tracks through a
 * mixing graph (buses, sends, automation, fades, a crossfade), 24-bit, 48 kHz
 * except one 44.1 kHz source that stemfarm resamples, as DIR/session.yaml and
 * DIR/media/. `bench` writes a large flat session of mono noise-and-tone
 * tracks for throughput measurements (bench/).
 *
 * Invariants:
 * - Same arguments, same bytes. Every random number comes from a splitmix64
 *   or xorshift32 seeded by a constant (never rand() or the clock), sines come
 *   from a polynomial rather than libm, and samples are rounded to 24 bits
 *   here, not by libsndfile. libm is used only for per-note and per-block
 *   coefficients (pow, exp, tan).
 * - The YAML is written from the same tables that drive the synthesis, and
 *   checked against the media before it is written: every clip lies inside
 *   its source (counted at 48 kHz, as after resampling) with its fades,
 *   clips of a track overlap only by exactly their crossfade, channel picks
 *   exist, every bus, stem and automation reference is sound, every track is
 *   in exactly one stem.
 * - An existing DIR/session.yaml with other content is never overwritten
 *   (it is the committed configs/example/session.yaml; edit this file).
 * - Files are written as NAME.partial and renamed when complete.
 *
 * Exit status: 0 done, 1 I/O or internal failure, 2 bad arguments.
 */
#include <sndfile.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PI 3.14159265358979323846

/* ---- failing ------------------------------------------------------------ */

static char s_partial[4096]; /* a file being written; removed if we fail */

static void s_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void s_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("stemfarm-gen: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (s_partial[0])
        remove(s_partial);
    exit(1);
}

static void s_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void s_usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("stemfarm-gen: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see stemfarm-gen --help)\n", stderr);
    exit(2);
}

static void *s_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        s_fail("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

/* ---- small utilities ---------------------------------------------------- */

typedef struct {
    char *s;    /* NUL-terminated text (owned) */
    size_t n;   /* bytes, without the NUL */
    size_t cap; /* bytes allocated */
} sb_t;

static void s_sb_printf(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_sb_printf(sb_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0)
        s_fail("internal error: bad format '%s'", fmt);
    if (b->n + (size_t)need + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->n + (size_t)need + 1 > cap)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s)
            s_fail("out of memory");
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, (size_t)need + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)need;
}

static void s_path(char *buf, size_t n_bytes, const char *dir, const char *name)
{
    int n = snprintf(buf, n_bytes, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= n_bytes)
        s_fail("path too long: '%s/%s'", dir, name);
}

/* mkdir -p for `path` (a folder). */
static void s_mkdirs(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        s_fail("path too long: '%s'", path);
    for (char *p = tmp + 1;; p++) {
        bool end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
                s_fail("cannot create folder '%s': %s", tmp, strerror(errno));
            if (end)
                break;
            *p = '/';
        }
    }
}

/* mkdir -p for the folder that holds the file `path`. */
static void s_mkdirs_for(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        s_fail("path too long: '%s'", path);
    char *slash = strrchr(tmp, '/');
    if (slash && slash != tmp) {
        *slash = '\0';
        s_mkdirs(tmp);
    }
}

static void s_begin_partial(const char *path)
{
    if (snprintf(s_partial, sizeof s_partial, "%s.partial", path) >= (int)sizeof s_partial)
        s_fail("path too long: '%s'", path);
}

static void s_commit_partial(const char *path)
{
    if (rename(s_partial, path) != 0)
        s_fail("cannot rename '%s' to '%s': %s", s_partial, path, strerror(errno));
    s_partial[0] = '\0';
}

static void s_write_text(const char *path, const sb_t *text)
{
    s_begin_partial(path);
    FILE *f = fopen(s_partial, "wb");
    if (!f)
        s_fail("cannot create '%s': %s", s_partial, strerror(errno));
    size_t n = fwrite(text->s, 1, text->n, f);
    if (fclose(f) != 0 || n != text->n)
        s_fail("cannot write '%s': %s", s_partial, strerror(errno));
    s_commit_partial(path);
}

/* Returns the whole file (owned, NUL-terminated) in *out, or false if it does
 * not exist. */
static bool s_read_text(const char *path, sb_t *out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return false;
        s_fail("cannot read '%s': %s", path, strerror(errno));
    }
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        s_sb_printf(out, "%.*s", (int)n, chunk);
    bool bad = ferror(f);
    fclose(f);
    if (bad)
        s_fail("cannot read '%s'", path);
    if (!out->s)
        s_sb_printf(out, "%s", "");
    return true;
}

/* Glob with '*' and '?', as stem patterns match track names. */
static bool s_glob(const char *pat, const char *s)
{
    if (*pat == '\0')
        return *s == '\0';
    if (*pat == '*')
        return s_glob(pat + 1, s) || (*s && s_glob(pat, s + 1));
    if (*s && (*pat == '?' || *pat == *s))
        return s_glob(pat + 1, s + 1);
    return false;
}

/* ---- deterministic numbers ---------------------------------------------- */

typedef struct {
    uint64_t state;
} rng_t;

static rng_t s_rng(uint64_t seed)
{
    rng_t r = {seed * 0x9E3779B97F4A7C15u + 0x2545F4914F6CDD1Du};
    return r;
}

/* splitmix64 */
static uint64_t s_rng_next(rng_t *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double s_rng_unit(rng_t *r) { return (double)(s_rng_next(r) >> 11) * 0x1.0p-53; }

/* Uniform in [-1, 1). */
static double s_noise(rng_t *r) { return 2.0 * s_rng_unit(r) - 1.0; }

/* floor() without a libm call (baseline x86-64 has no rounding instruction);
 * exact for |x| < 2^63. */
static double s_floor(double x)
{
    double t = (double)(int64_t)x;
    return t > x ? t - 1.0 : t;
}

/* sin(2 pi x) for any x, by symmetry and an odd Taylor polynomial to x^13
 * (error < 1e-9): identical on every platform, unlike libm's sin. */
static double s_sin2pi(double x)
{
    x -= s_floor(x);
    if (x > 0.75)
        x -= 1.0;
    else if (x > 0.25)
        x = 0.5 - x;
    double t = x * (2.0 * PI), t2 = t * t;
    return t * (1.0 +
                t2 * (-1.0 / 6 +
                      t2 * (1.0 / 120 + t2 * (-1.0 / 5040 + t2 * (1.0 / 362880 + t2 * (-1.0 / 39916800 +
                                                                                       t2 * (1.0 / 6227020800.0)))))));
}

static double s_cos2pi(double x) { return s_sin2pi(x + 0.25); }

/* ---- synthesis building blocks ------------------------------------------ */

static int s_rate = 48000; /* of the session being written */

static double s_midi_hz(double midi) { return 440.0 * pow(2.0, (midi - 69.0) / 12.0); }

/* Per-sample multiplier of an exponential decay with time constant tau_s. */
static double s_decay(double tau_s) { return exp(-1.0 / (tau_s * s_rate)); }

static int64_t s_frames(double seconds) { return (int64_t)floor(seconds * s_rate + 0.5); }

/* PolyBLEP residual: removes most aliasing from a naive step. */
static double s_blep(double t, double dt)
{
    if (t < dt) {
        t /= dt;
        return t + t - t * t - 1.0;
    }
    if (t > 1.0 - dt) {
        t = (t - 1.0) / dt;
        return t * t + t + t + 1.0;
    }
    return 0.0;
}

static double s_saw(double ph, double dt) { return 2.0 * ph - 1.0 - s_blep(ph, dt); }

/* Band-limited pulse of duty `width`, DC removed. */
static double s_pulse(double ph, double dt, double width)
{
    double ph2 = ph - width;
    if (ph2 < 0.0)
        ph2 += 1.0;
    double v = ph < width ? 1.0 : -1.0;
    return v + s_blep(ph, dt) - s_blep(ph2, dt) - (2.0 * width - 1.0);
}

static double s_advance(double ph, double dt)
{
    ph += dt;
    return ph >= 1.0 ? ph - s_floor(ph) : ph;
}

/* Topology-preserving state-variable filter (Zavalishin). */
typedef struct {
    double a1, a2, a3, k; /* coefficients */
    double ic1, ic2;      /* integrator states */
} svf_t;

typedef struct {
    double lp, bp, hp; /* bp has gain Q at the centre; k * bp is unity */
} svf_out_t;

static void s_svf_set(svf_t *f, double hz, double q)
{
    double top = 0.45 * s_rate;
    hz = hz < 10.0 ? 10.0 : hz > top ? top : hz;
    double g = tan(PI * hz / s_rate);
    f->k = 1.0 / q;
    f->a1 = 1.0 / (1.0 + g * (g + f->k));
    f->a2 = g * f->a1;
    f->a3 = g * f->a2;
}

static svf_out_t s_svf(svf_t *f, double v0)
{
    double v3 = v0 - f->ic2;
    double v1 = f->a1 * f->ic1 + f->a2 * v3;
    double v2 = f->ic2 + f->a2 * f->ic1 + f->a3 * v3;
    f->ic1 = 2.0 * v1 - f->ic1;
    f->ic2 = 2.0 * v2 - f->ic2;
    /* why: states ringing out in silence would reach subnormals, which are
     * slow on x86; nothing at this level is audible in 24 bits */
    if (fabs(f->ic1) < 1e-30)
        f->ic1 = 0.0;
    if (fabs(f->ic2) < 1e-30)
        f->ic2 = 0.0;
    svf_out_t o = {v2, v1, v0 - f->k * v1 - v2};
    return o;
}

/* In-place filter of a whole buffer: 0 lowpass, 1 highpass. */
static void s_filter(double *x, int64_t n, int type, double hz, double q)
{
    svf_t f = {0};
    s_svf_set(&f, hz, q);
    for (int64_t i = 0; i < n; i++) {
        svf_out_t o = s_svf(&f, x[i]);
        x[i] = type == 0 ? o.lp : o.hp;
    }
}

enum { LOWPASS = 0, HIGHPASS = 1 };

/* Schroeder reverb: four damped combs in parallel, two allpasses in series.
 * `spread` detunes the delay lengths so two channels decorrelate. */
static void s_reverb(const double *in, double *out, int64_t n, double rt60_s, double damp, int spread)
{
    static const int comb_len[4] = {1687, 1601, 2053, 1867};
    static const int ap_len[2] = {605, 371};
    double *line[6];
    int len[6], pos[6] = {0};
    double fb[4], store[4] = {0};
    for (int i = 0; i < 6; i++) {
        len[i] = (i < 4 ? comb_len[i] : ap_len[i - 4]) * s_rate / 48000 + spread;
        line[i] = s_calloc((size_t)len[i], sizeof(double));
    }
    for (int i = 0; i < 4; i++)
        fb[i] = pow(10.0, -3.0 * len[i] / (rt60_s * s_rate));
    for (int64_t t = 0; t < n; t++) {
        double acc = 0.0;
        for (int i = 0; i < 4; i++) {
            double y = line[i][pos[i]];
            store[i] = y * (1.0 - damp) + store[i] * damp;
            line[i][pos[i]] = in[t] + store[i] * fb[i];
            pos[i] = pos[i] + 1 == len[i] ? 0 : pos[i] + 1;
            acc += y;
        }
        acc *= 0.25;
        for (int i = 4; i < 6; i++) {
            double b = line[i][pos[i]];
            double v = acc + 0.5 * b;
            line[i][pos[i]] = v;
            pos[i] = pos[i] + 1 == len[i] ? 0 : pos[i] + 1;
            acc = b - 0.5 * v;
        }
        out[t] += acc;
    }
    for (int i = 0; i < 6; i++)
        free(line[i]);
}

/* ---- buffers and writing media ------------------------------------------ */

#define MAX_CH 4 /* the drum machine's multi-out file */

typedef struct {
    int n_channels; /* 1 .. MAX_CH */
    int64_t n_frames;
    double *ch[MAX_CH]; /* planar, owned; NULL past n_channels */
} buf_t;

static void s_buf_init(buf_t *b, int n_channels, int64_t n_frames)
{
    if (n_channels < 1 || n_channels > MAX_CH)
        s_fail("internal error: %d channels", n_channels);
    b->n_channels = n_channels;
    b->n_frames = n_frames;
    for (int c = 0; c < MAX_CH; c++)
        b->ch[c] = c < n_channels ? s_calloc((size_t)n_frames, sizeof(double)) : NULL;
}

static void s_buf_free(buf_t *b)
{
    for (int c = 0; c < MAX_CH; c++) {
        free(b->ch[c]);
        b->ch[c] = NULL;
    }
}

/* A raised-cosine fade to exact silence over the last `n_fade` frames, so a
 * full-length source ends cleanly whatever rings in it. */
static void s_end_fade(buf_t *b, int64_t n_fade)
{
    for (int c = 0; c < b->n_channels; c++)
        for (int64_t i = 0; i < n_fade; i++) {
            int64_t t = b->n_frames - n_fade + i;
            b->ch[c][t] *= 0.5 + 0.5 * s_cos2pi(0.5 * (double)(i + 1) / (double)n_fade);
        }
}

typedef struct {
    SNDFILE *sf;
    char path[4096];
    int n_channels;
    int32_t *chunk; /* interleaved, left-justified 24-bit */
    size_t n_chunk; /* frames the chunk holds */
} wav_t;

static void s_wav_open(wav_t *w, const char *path, int n_channels, size_t n_chunk)
{
    snprintf(w->path, sizeof w->path, "%s", path);
    s_mkdirs_for(path);
    s_begin_partial(path);
    SF_INFO info = {.samplerate = s_rate, .channels = n_channels, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_24};
    w->sf = sf_open(s_partial, SFM_WRITE, &info);
    if (!w->sf)
        s_fail("cannot create '%s': %s", s_partial, sf_strerror(NULL));
    w->n_channels = n_channels;
    w->n_chunk = n_chunk;
    w->chunk = s_calloc(n_chunk * (size_t)n_channels, sizeof(int32_t));
}

static void s_wav_write(wav_t *w, size_t n_frames)
{
    sf_count_t n_items = (sf_count_t)(n_frames * (size_t)w->n_channels);
    if (sf_write_int(w->sf, w->chunk, n_items) != n_items)
        s_fail("cannot write '%s': %s", s_partial, sf_strerror(w->sf));
}

static void s_wav_close(wav_t *w)
{
    if (sf_close(w->sf) != 0)
        s_fail("cannot finish '%s'", s_partial);
    free(w->chunk);
    s_commit_partial(w->path);
}

/* Rounds to 24 bits (full scale 2^23) and left-justifies for sf_write_int. */
static int32_t s_quantize24(double x)
{
    x = x < 1.0 ? x : 1.0; /* also NaN */
    x = x > -1.0 ? x : -1.0;
    double v = s_floor(x * 8388608.0 + 0.5);
    v = v > 8388607.0 ? 8388607.0 : v < -8388608.0 ? -8388608.0 : v;
    return (int32_t)v * 256;
}

#define MAX_MEDIA 64

typedef struct {
    char rel[256]; /* path under media/ */
    int n_channels;
    int rate;         /* of the file */
    int64_t n_frames; /* at the session rate: after resampling, as the loader counts them */
} media_rec_t;

typedef struct {
    const char *dir; /* the session folder */
    media_rec_t media[MAX_MEDIA];
    size_t n_media;
    uint64_t n_bytes; /* of audio written */
} gen_t;

/* Normalises `b` to a peak of `peak_db` dBFS, writes DIR/media/REL at
 * s_rate and records it for validation. */
static void s_media_put(gen_t *g, const char *rel, buf_t *b, double peak_db)
{
    double peak = 0.0;
    for (int c = 0; c < b->n_channels; c++)
        for (int64_t i = 0; i < b->n_frames; i++)
            if (fabs(b->ch[c][i]) > peak)
                peak = fabs(b->ch[c][i]);
    if (peak == 0.0)
        s_fail("internal error: source '%s' is silent", rel);
    double scale = pow(10.0, peak_db / 20.0) / peak;

    char media[4096], path[4096];
    s_path(media, sizeof media, g->dir, "media");
    s_path(path, sizeof path, media, rel);
    wav_t w;
    s_wav_open(&w, path, b->n_channels, 16384);
    for (int64_t at = 0; at < b->n_frames; at += (int64_t)w.n_chunk) {
        int64_t left = b->n_frames - at;
        size_t n = left < (int64_t)w.n_chunk ? (size_t)left : w.n_chunk;
        for (size_t i = 0; i < n; i++)
            for (int c = 0; c < b->n_channels; c++)
                w.chunk[i * (size_t)b->n_channels + (size_t)c] = s_quantize24(b->ch[c][at + (int64_t)i] * scale);
        s_wav_write(&w, n);
    }
    s_wav_close(&w);

    if (g->n_media == MAX_MEDIA)
        s_fail("internal error: more than %d sources", MAX_MEDIA);
    media_rec_t *m = &g->media[g->n_media++];
    snprintf(m->rel, sizeof m->rel, "%s", rel);
    m->n_channels = b->n_channels;
    m->rate = s_rate;
    /* round(frames * 48000 / rate), halves up: the length of stemfarm's resampled copy */
    m->n_frames = (2 * b->n_frames * 48000 + s_rate) / (2 * (int64_t)s_rate);
    g->n_bytes += (uint64_t)b->n_frames * (uint64_t)b->n_channels * 3u;
}

/* =========================================================================
 * Night Drive: the song
 *
 * 100 BPM, 4/4, 16th-note grid. 15 bars:
 *   bars 0-1 intro (pad, arp, lead hook, riser, hats from bar 1)
 *   bars 2-5 verse, bars 6-9 chorus, bars 10-13 verse 2, bar 14 final chord.
 * ========================================================================= */

#define BEAT          28800 /* frames at 48 kHz, 100 BPM */
#define STEP          (BEAT / 4)
#define BAR           (4 * BEAT)
#define N_BARS        15
#define SONG          ((int64_t)N_BARS * BAR)
#define AT(bar, step) ((int64_t)(bar)*BAR + (int64_t)(step)*STEP)
#define MS(ms)        ((int64_t)(ms)*48)
#define END_FADE      MS(250)

enum {
    C4 = 60,
    D4 = 62,
    E4 = 64,
    F4 = 65,
    G4 = 67,
    A4 = 69,
    B4 = 71,
    C5 = 72,
    D5 = 74,
    E5 = 76,
    G5 = 79,
    A5 = 81,
    B5 = 83,
    C6 = 84
};

typedef struct {
    int bass;       /* MIDI root of the bass line */
    int voicing[3]; /* pad, keys, arp */
    int gtr[4];     /* guitar arpeggio */
} chord_t;

enum { CH_AM, CH_F, CH_C, CH_G };

static const chord_t k_chords[4] = {
    [CH_AM] = {45, {57, 60, 64}, {57, 64, 69, 72}},
    [CH_F] = {41, {57, 60, 65}, {53, 60, 65, 69}},
    [CH_C] = {48, {55, 60, 64}, {55, 60, 64, 67}},
    [CH_G] = {43, {55, 59, 62}, {55, 62, 67, 71}},
};

static const int k_chord_of_bar[N_BARS] = {CH_AM, CH_F, CH_AM, CH_F, CH_C, CH_G, CH_AM, CH_F,
                                           CH_C,  CH_G, CH_AM, CH_F, CH_C, CH_G, CH_AM};

static const chord_t *s_chord(int bar) { return &k_chords[k_chord_of_bar[bar]]; }

static bool s_verse(int bar) { return (bar >= 2 && bar <= 5) || (bar >= 10 && bar <= 13); }

static bool s_chorus(int bar) { return bar >= 6 && bar <= 9; }

/* ---- drums -------------------------------------------------------------- */

#define MAX_HITS 512

typedef struct {
    int64_t t[MAX_HITS];  /* frame */
    double vel[MAX_HITS]; /* 0..1 */
    bool open[MAX_HITS];  /* hats: open */
    size_t n;
} hits_t;

static void s_hit(hits_t *h, int64_t t, double vel, bool open)
{
    if (h->n == MAX_HITS)
        s_fail("internal error: too many hits");
    h->t[h->n] = t;
    h->vel[h->n] = vel;
    h->open[h->n] = open;
    h->n++;
}

/* Tom fills: A = the last beat of bar 5, B = the last two beats of bar 13. */
#define FILL_A         AT(5, 12)
#define FILL_B         AT(13, 8)
#define FILL_B_IN_FILE MS(1500)  /* where fill B starts in tom_*.wav */
#define CRASH_CHOKE    MS(35000) /* the drummer grabs the last crash */

static void s_drum_pattern(hits_t *kick, hits_t *snare, hits_t *hats, hits_t *crash)
{
    rng_t r = s_rng(7);
    for (int bar = 0; bar < N_BARS; bar++) {
        if (bar == 1)
            for (int s = 0; s < 16; s += 2)
                s_hit(hats, AT(bar, s), 0.25 + 0.03 * s, false);
        if (bar == 14) {
            s_hit(kick, AT(bar, 0), 1.0, false);
            s_hit(crash, AT(bar, 0), 1.0, false);
        }
        if (!s_verse(bar) && !s_chorus(bar))
            continue;
        int fill_from = bar == 5 ? 12 : bar == 13 ? 8 : 16; /* toms take over */
        if (bar == 2 || bar == 6 || bar == 10)
            s_hit(crash, AT(bar, 0), bar == 6 ? 1.0 : 0.85, false);
        for (int s = 0; s < 16; s++) {
            double hum = 0.92 + 0.08 * s_rng_unit(&r);
            bool kick_on = s_chorus(bar) ? (s % 4 == 0) : (s == 0 || s == 7 || s == 8 || s == 10);
            if (kick_on && s < fill_from)
                s_hit(kick, AT(bar, s), (s == 0 ? 1.0 : 0.9) * hum, false);
            if ((s == 4 || s == 12) && s < fill_from)
                s_hit(snare, AT(bar, s), 0.95 * hum, false);
            if (s_verse(bar) && (s == 7 || s == 15) && s < fill_from)
                s_hit(snare, AT(bar, s), (s == 7 ? 0.22 : 0.16) * hum, false); /* ghosts */
            if (s >= fill_from)
                continue;
            if (s_chorus(bar)) {
                bool open = s % 4 == 2;
                s_hit(hats, AT(bar, s), (open ? 0.7 : s % 4 == 0 ? 0.6 : 0.4) * hum, open);
            } else if (s % 2 == 0) {
                s_hit(hats, AT(bar, s), (s % 4 == 0 ? 0.65 : 0.5) * hum, s == 14);
            }
        }
    }
}

typedef struct {
    double f_start, f_end; /* pitch sweep, Hz */
    double sweep_tau;      /* s */
    double body_tau;       /* s */
    double click;          /* beater click level */
} kick_voice_t;

static const kick_voice_t k_kick_in = {180.0, 50.0, 0.035, 0.20, 0.55};
static const kick_voice_t k_kick_out = {150.0, 48.0, 0.045, 0.26, 0.08};

static void s_kick(double *out, int64_t n_out, int64_t t0, double vel, const kick_voice_t *kv, uint64_t seed)
{
    rng_t r = s_rng(seed);
    int64_t len = s_frames(9.0 * kv->body_tau);
    double cs = s_decay(kv->sweep_tau), cb = s_decay(kv->body_tau);
    double cn = s_decay(0.0015), ct = s_decay(0.004);
    double es = 1.0, eb = 1.0, en = 1.0, et = 1.0, ph = 0.0, ph_t = 0.0;
    int64_t att = MS(1);
    for (int64_t i = 0; i < len && t0 + i < n_out; i++) {
        double f = kv->f_end + (kv->f_start - kv->f_end) * es;
        double a = i < att ? (double)i / (double)att : 1.0;
        double body = s_sin2pi(ph) * eb * a;
        double click = kv->click * (0.5 * s_noise(&r) * en + 0.7 * s_sin2pi(ph_t) * et);
        out[t0 + i] += vel * (body + click);
        ph = s_advance(ph, f / s_rate);
        ph_t = s_advance(ph_t, 1800.0 / s_rate);
        es *= cs;
        eb *= cb;
        en *= cn;
        et *= ct;
    }
}

typedef struct {
    double tone, noise; /* levels */
    double noise_hp;    /* Hz */
    double tone_tau, noise_tau;
} snare_voice_t;

static const snare_voice_t k_snare_top = {0.8, 0.6, 1200.0, 0.07, 0.12};
static const snare_voice_t k_snare_bottom = {0.15, 1.0, 3000.0, 0.05, 0.16};
static const snare_voice_t k_snare_air = {0.7, 0.7, 800.0, 0.07, 0.14}; /* heard by OH, room */

static void s_snare(double *out, int64_t n_out, int64_t t0, double vel, const snare_voice_t *sv, uint64_t seed)
{
    rng_t r = s_rng(seed);
    svf_t hp = {0};
    s_svf_set(&hp, sv->noise_hp, 0.7);
    int64_t len = s_frames(9.0 * fmax(sv->tone_tau, sv->noise_tau));
    double ct = s_decay(sv->tone_tau), cn = s_decay(sv->noise_tau), et = 1.0, en = 1.0;
    double ph1 = 0.0, ph2 = 0.0;
    for (int64_t i = 0; i < len && t0 + i < n_out; i++) {
        double a = i < 24 ? (double)i / 24.0 : 1.0;
        double tone = 0.6 * s_sin2pi(ph1) + 0.4 * s_sin2pi(ph2);
        double noise = s_svf(&hp, s_noise(&r)).hp;
        out[t0 + i] += vel * a * (sv->tone * tone * et + sv->noise * noise * en);
        ph1 = s_advance(ph1, 185.0 / s_rate);
        ph2 = s_advance(ph2, 330.0 / s_rate);
        et *= ct;
        en *= cn;
    }
}

/* `choke`: frames after t0 where the next hat hit closes an open hat. */
static void s_hat(double *out, int64_t n_out, int64_t t0, double vel, bool open, int64_t choke, uint64_t seed)
{
    rng_t r = s_rng(seed);
    svf_t hp = {0}, bp = {0};
    s_svf_set(&hp, 7000.0, 0.7);
    s_svf_set(&bp, 10000.0, 1.2);
    double tau = open ? 0.22 : 0.03;
    int64_t len = s_frames(9.0 * tau);
    double c = s_decay(tau), cc = s_decay(0.006), e = 1.0;
    for (int64_t i = 0; i < len && t0 + i < n_out; i++) {
        double w = s_noise(&r);
        double v = 0.7 * s_svf(&hp, w).hp + 0.5 * bp.k * s_svf(&bp, w).bp;
        out[t0 + i] += vel * e * v;
        e *= i >= choke ? c * cc : c;
    }
}

static void s_tom(double *out, int64_t n_out, int64_t t0, double vel, double f0, uint64_t seed)
{
    rng_t r = s_rng(seed);
    svf_t hp = {0};
    s_svf_set(&hp, 1000.0, 0.7);
    int64_t len = s_frames(9.0 * 0.08);
    double cb = s_decay(0.08), cs = s_decay(0.05), cn = s_decay(0.004);
    double eb = 1.0, es = 1.0, en = 1.0, ph = 0.0;
    for (int64_t i = 0; i < len && t0 + i < n_out; i++) {
        double a = i < 48 ? (double)i / 48.0 : 1.0;
        double v = s_sin2pi(ph) * eb * a + 0.3 * s_svf(&hp, s_noise(&r)).hp * en;
        out[t0 + i] += vel * v;
        ph = s_advance(ph, f0 * (1.0 + 0.25 * es) / s_rate);
        eb *= cb;
        es *= cs;
        en *= cn;
    }
}

/* Both fills of one tom (0 high, 1 low), placed at fill_a and fill_b. */
static void s_toms(double *out, int64_t n_out, int tom, int64_t fill_a, int64_t fill_b)
{
    static const int a_tom[4] = {0, 0, 1, 1};
    static const double a_vel[4] = {0.8, 0.85, 0.9, 1.0};
    static const int b_tom[8] = {0, 0, 0, 0, 1, 1, 1, 1};
    static const double b_vel[8] = {0.7, 0.75, 0.8, 0.85, 0.85, 0.9, 0.95, 1.0};
    double f0 = tom == 0 ? 150.0 : 95.0;
    for (int i = 0; i < 4; i++)
        if (a_tom[i] == tom)
            s_tom(out, n_out, fill_a + i * STEP, a_vel[i], f0, 500u + (unsigned)i);
    for (int i = 0; i < 8; i++)
        if (b_tom[i] == tom)
            s_tom(out, n_out, fill_b + i * STEP, b_vel[i], f0, 600u + (unsigned)i);
}

static void s_crash(double *out, int64_t n_out, int64_t t0, double vel, int64_t choke, uint64_t seed)
{
    static const double metal[6] = {348.0, 517.0, 628.0, 888.0, 918.0, 1360.0};
    rng_t r = s_rng(seed);
    svf_t hp = {0}, bp = {0};
    s_svf_set(&hp, 4000.0, 0.7);
    s_svf_set(&bp, 7500.0, 0.9);
    double ph[6] = {0};
    int64_t len = s_frames(6.0);
    double c = s_decay(1.1), cc = s_decay(0.03), e = 1.0;
    for (int64_t i = 0; i < len && t0 + i < n_out; i++) {
        double sq = 0.0;
        for (int k = 0; k < 6; k++) {
            sq += ph[k] < 0.5 ? 1.0 : -1.0;
            ph[k] = s_advance(ph[k], metal[k] / s_rate);
        }
        double a = i < 24 ? (double)i / 24.0 : 1.0;
        double v = 0.7 * s_svf(&hp, s_noise(&r)).hp + 0.25 * bp.k * s_svf(&bp, sq / 6.0).bp;
        out[t0 + i] += vel * a * e * v;
        e *= i >= choke ? c * cc : c;
    }
}

static void s_clap(double *out, int64_t n_out, int64_t t0, double vel, uint64_t seed)
{
    rng_t r = s_rng(seed);
    svf_t bp = {0};
    s_svf_set(&bp, 1200.0, 1.2);
    int64_t len = s_frames(0.8);
    for (int64_t i = 0; i < len && t0 + i < n_out; i++) {
        double t = (double)i / s_rate, e = 0.0;
        for (int k = 0; k < 3; k++) {
            double dt = t - 0.011 * k;
            if (dt >= 0.0)
                e += exp(-dt / 0.005);
        }
        if (t >= 0.03)
            e += 0.7 * exp(-(t - 0.03) / 0.06);
        out[t0 + i] += vel * e * bp.k * s_svf(&bp, s_noise(&r)).bp;
    }
}

/* Adds mono `src` into stereo `dst` at `pan` (constant power), `delay`
 * frames late, the far side a little later still (about 0.3 ms). */
static void s_place(buf_t *dst, const double *src, int64_t n, double gain, double pan, int64_t delay)
{
    double gl = gain * s_cos2pi((pan + 1.0) / 8.0), gr = gain * s_sin2pi((pan + 1.0) / 8.0);
    int64_t itd = (int64_t)floor(pan * 14.0 + 0.5);
    int64_t dl = delay + (itd > 0 ? itd : 0), dr = delay + (itd < 0 ? -itd : 0);
    for (int64_t i = 0; i < n; i++) {
        if (i + dl < dst->n_frames)
            dst->ch[0][i + dl] += gl * src[i];
        if (i + dr < dst->n_frames)
            dst->ch[1][i + dr] += gr * src[i];
    }
}

static void s_gen_drums(gen_t *g)
{
    static hits_t kick, snare, hats, crash; /* large; static keeps them off the stack */
    memset(&kick, 0, sizeof kick);
    memset(&snare, 0, sizeof snare);
    memset(&hats, 0, sizeof hats);
    memset(&crash, 0, sizeof crash);
    s_drum_pattern(&kick, &snare, &hats, &crash);
    const int64_t n = SONG;

    /* What the room hears of each drum, on the timeline. */
    double *k_air = s_calloc((size_t)n, sizeof(double));
    double *s_air = s_calloc((size_t)n, sizeof(double));
    double *h_air = s_calloc((size_t)n, sizeof(double));
    double *t_hi = s_calloc((size_t)n, sizeof(double));
    double *t_lo = s_calloc((size_t)n, sizeof(double));
    double *c_air = s_calloc((size_t)n, sizeof(double));
    for (size_t i = 0; i < kick.n; i++)
        s_kick(k_air, n, kick.t[i], kick.vel[i], &k_kick_out, 100 + i);
    for (size_t i = 0; i < snare.n; i++)
        s_snare(s_air, n, snare.t[i], snare.vel[i], &k_snare_air, 200 + i);
    for (size_t i = 0; i < hats.n; i++) {
        int64_t choke = i + 1 < hats.n ? hats.t[i + 1] - hats.t[i] : INT64_MAX;
        s_hat(h_air, n, hats.t[i], hats.vel[i], hats.open[i], choke, 300 + i);
    }
    s_toms(t_hi, n, 0, FILL_A, FILL_B);
    s_toms(t_lo, n, 1, FILL_A, FILL_B);
    for (size_t i = 0; i < crash.n; i++) {
        int64_t choke = crash.t[i] >= AT(14, 0) ? CRASH_CHOKE - crash.t[i] : INT64_MAX;
        s_crash(c_air, n, crash.t[i], crash.vel[i], choke, 400 + i);
    }

    buf_t b;
    s_buf_init(&b, 1, n);
    for (size_t i = 0; i < kick.n; i++)
        s_kick(b.ch[0], n, kick.t[i], kick.vel[i], &k_kick_in, 100 + i);
    for (int64_t i = 0; i < n; i++)
        b.ch[0][i] += 0.03 * s_air[i];
    s_end_fade(&b, END_FADE);
    s_media_put(g, "drums/kick_in.wav", &b, -3.0);
    s_buf_free(&b);

    /* Kick Out: the resonant head, half a millisecond later, darker. */
    s_buf_init(&b, 1, n);
    for (int64_t i = 24; i < n; i++)
        b.ch[0][i] = k_air[i - 24] + 0.02 * s_air[i - 24];
    s_filter(b.ch[0], n, LOWPASS, 2500.0, 0.7);
    s_end_fade(&b, END_FADE);
    s_media_put(g, "drums/kick_out.wav", &b, -4.0);
    s_buf_free(&b);

    s_buf_init(&b, 1, n);
    for (size_t i = 0; i < snare.n; i++)
        s_snare(b.ch[0], n, snare.t[i], snare.vel[i], &k_snare_top, 200 + i);
    for (int64_t i = 0; i < n; i++)
        b.ch[0][i] += 0.08 * h_air[i] + 0.04 * k_air[i];
    s_end_fade(&b, END_FADE);
    s_media_put(g, "drums/snare_top.wav", &b, -4.0);
    s_buf_free(&b);

    /* Snare Bottom faces the top mic: recorded upside down, the session
     * flips it back with `polarity: invert`. */
    s_buf_init(&b, 1, n);
    for (size_t i = 0; i < snare.n; i++)
        s_snare(b.ch[0], n, snare.t[i], snare.vel[i], &k_snare_bottom, 200 + i);
    for (int64_t i = 0; i < n; i++)
        b.ch[0][i] = -b.ch[0][i] + 0.04 * k_air[i];
    s_end_fade(&b, END_FADE);
    s_media_put(g, "drums/snare_bottom.wav", &b, -6.0);
    s_buf_free(&b);

    s_buf_init(&b, 1, n);
    for (int64_t i = 0; i < n; i++)
        b.ch[0][i] = h_air[i] + 0.05 * s_air[i];
    s_end_fade(&b, END_FADE);
    s_media_put(g, "drums/hats.wav", &b, -8.0);
    s_buf_free(&b);

    /* Tom close mics hold only the fills: fill A at 0, fill B at 1.5 s; the
     * session places them with clips. */
    int64_t n_tom = MS(3300);
    for (int tom = 0; tom < 2; tom++) {
        s_buf_init(&b, 1, n_tom);
        s_toms(b.ch[0], n_tom, tom, 0, FILL_B_IN_FILE);
        s_media_put(g, tom == 0 ? "drums/tom_hi.wav" : "drums/tom_lo.wav", &b, -4.0);
        s_buf_free(&b);
    }

    /* One bar of claps on 2 and 4, looped by the session with four clips. */
    s_buf_init(&b, 1, BAR);
    s_clap(b.ch[0], BAR, AT(0, 4), 1.0, 700);
    s_clap(b.ch[0], BAR, AT(0, 12), 0.95, 701);
    s_media_put(g, "drums/clap.wav", &b, -6.0);
    s_buf_free(&b);

    /* Overheads: the kit in stereo, 3 ms behind the close mics. */
    s_buf_init(&b, 2, n);
    s_place(&b, k_air, n, 0.30, 0.0, 144);
    s_place(&b, s_air, n, 0.55, -0.15, 144);
    s_place(&b, h_air, n, 0.60, 0.55, 130);
    s_place(&b, t_hi, n, 0.50, -0.25, 144);
    s_place(&b, t_lo, n, 0.50, 0.45, 144);
    s_place(&b, c_air, n, 0.80, -0.45, 140);
    s_filter(b.ch[0], n, HIGHPASS, 150.0, 0.7);
    s_filter(b.ch[1], n, HIGHPASS, 150.0, 0.7);
    s_end_fade(&b, END_FADE);
    s_media_put(g, "drums/overheads.wav", &b, -5.0);
    s_buf_free(&b);

    /* Room: the kit 10 ms away, into a small bright room. */
    double *mono = s_calloc((size_t)n, sizeof(double));
    for (int64_t i = MS(10); i < n; i++) {
        int64_t j = i - MS(10);
        mono[i] = 0.5 * k_air[j] + 0.6 * s_air[j] + 0.5 * (t_hi[j] + t_lo[j]) + 0.15 * h_air[j] + 0.35 * c_air[j];
    }
    s_buf_init(&b, 2, n);
    for (int c = 0; c < 2; c++) {
        s_reverb(mono, b.ch[c], n, 0.9, 0.35, c * 23);
        for (int64_t i = 0; i < n; i++)
            b.ch[c][i] += 0.25 * mono[i];
        s_filter(b.ch[c], n, LOWPASS, 5000.0, 0.7);
    }
    s_end_fade(&b, END_FADE);
    s_media_put(g, "drums/room.wav", &b, -6.0);
    s_buf_free(&b);

    free(mono);
    free(k_air);
    free(s_air);
    free(h_air);
    free(t_hi);
    free(t_lo);
    free(c_air);
}

/* ---- the drum machine: a multi-out file ---------------------------------- */

static void s_rim(double *out, int64_t n_out, int64_t t0, double vel, uint64_t seed)
{
    rng_t r = s_rng(seed);
    svf_t bp = {0};
    s_svf_set(&bp, 2500.0, 3.0);
    int64_t len = s_frames(0.12);
    double c1 = s_decay(0.012), c2 = s_decay(0.02), cn = s_decay(0.002);
    double e1 = 1.0, e2 = 1.0, en = 1.0, p1 = 0.0, p2 = 0.0;
    for (int64_t i = 0; i < len && t0 + i < n_out; i++) {
        double a = i < 12 ? (double)i / 12.0 : 1.0;
        double v = 0.6 * s_sin2pi(p1) * e1 + 0.4 * s_sin2pi(p2) * e2 + 0.5 * bp.k * s_svf(&bp, s_noise(&r)).bp * en;
        out[t0 + i] += vel * a * v;
        p1 = s_advance(p1, 1750.0 / s_rate);
        p2 = s_advance(p2, 480.0 / s_rate);
        e1 *= c1;
        e2 *= c2;
        en *= cn;
    }
}

/* A shaker grain, shorter than a 16th and ramped to exact silence, so the
 * loop's seam is clean. */
static void s_shaker(double *out, int64_t n_out, int64_t t0, double vel, uint64_t seed)
{
    rng_t r = s_rng(seed);
    svf_t hp = {0}, bp = {0};
    s_svf_set(&hp, 5000.0, 0.7);
    s_svf_set(&bp, 8000.0, 1.5);
    int64_t att = s_frames(0.006), len = s_frames(0.14), rel = s_frames(0.03);
    double c = s_decay(0.025), e = 1.0;
    for (int64_t i = 0; i < len && t0 + i < n_out; i++) {
        double a = i < att ? (double)i / (double)att : e;
        if (i >= att)
            e *= c;
        if (i >= len - rel)
            a *= (double)(len - i) / (double)rel;
        double w = s_noise(&r);
        out[t0 + i] += vel * a * (0.6 * s_svf(&hp, w).hp + 0.4 * bp.k * s_svf(&bp, w).bp);
    }
}

/* Two bars from a drum machine's four outputs, recorded as one poly file:
 * 1 kick, 2 snare, 3 rim, 4 shaker. The session uses only the rim and the
 * shaker (the kit plays the rest), each picked with `channel:`. */
static void s_gen_machine(gen_t *g)
{
    static const int rim_steps[2][4] = {{3, 6, 10, 13}, {3, 6, 11, 14}};
    static const double shake_vel[4] = {0.45, 0.7, 0.55, 1.0};
    rng_t r = s_rng(131);
    buf_t b;
    s_buf_init(&b, 4, 2 * BAR);
    for (int bar = 0; bar < 2; bar++) {
        for (int s = 0; s < 16; s += 4)
            s_kick(b.ch[0], b.n_frames, AT(bar, s), s == 0 ? 1.0 : 0.9, &k_kick_in, 140u + (unsigned)(4 * bar + s));
        for (int s = 4; s < 16; s += 8)
            s_snare(b.ch[1], b.n_frames, AT(bar, s), 0.9, &k_snare_top, 150u + (unsigned)(4 * bar + s));
        for (int k = 0; k < 4; k++)
            s_rim(b.ch[2], b.n_frames, AT(bar, rim_steps[bar][k]), k % 2 ? 0.5 : 0.6, 160u + (unsigned)(4 * bar + k));
        for (int s = 0; s < 16; s++)
            s_shaker(b.ch[3], b.n_frames, AT(bar, s), 0.45 * shake_vel[s % 4] * (0.9 + 0.1 * s_rng_unit(&r)),
                     170u + (unsigned)(16 * bar + s));
    }
    /* the machine's kick and snare ring past the loop; cut them cleanly */
    for (int c = 0; c < 2; c++)
        for (int64_t i = 0; i < MS(5); i++)
            b.ch[c][b.n_frames - 1 - i] *= (double)i / (double)MS(5);
    s_media_put(g, "drums/machine.wav", &b, -4.0);
    s_buf_free(&b);
}

/* ---- bass --------------------------------------------------------------- */

static void s_bass_note(double *out, int64_t n_out, int64_t t0, int64_t gate, double hz, double vel)
{
    svf_t lp = {0};
    double dt = hz / s_rate, ph = 0.0, ef = 1.0, cf = s_decay(0.09);
    int64_t rel = MS(15);
    for (int64_t i = 0; i < gate + rel && t0 + i < n_out; i++) {
        if (i % 16 == 0)
            s_svf_set(&lp, 180.0 + 2200.0 * ef, 1.6);
        double a = i < MS(2) ? (double)i / (double)MS(2) : 1.0;
        if (i >= gate)
            a *= 1.0 - (double)(i - gate) / (double)rel;
        out[t0 + i] += vel * a * s_svf(&lp, s_saw(ph, dt)).lp;
        ph = s_advance(ph, dt);
        ef *= cf;
    }
}

static void s_sine_note(double *out, int64_t n_out, int64_t t0, int64_t gate, double hz, double vel, int64_t attack,
                        int64_t release)
{
    double ph = 0.0;
    for (int64_t i = 0; i < gate + release && t0 + i < n_out; i++) {
        double a = i < attack ? (double)i / (double)attack : 1.0;
        if (i >= gate)
            a *= 1.0 - (double)(i - gate) / (double)release;
        out[t0 + i] += vel * a * s_sin2pi(ph);
        ph = s_advance(ph, hz / s_rate);
    }
}

static void s_gen_bass(gen_t *g)
{
    buf_t b;
    s_buf_init(&b, 1, SONG);
    for (int bar = 2; bar < N_BARS; bar++) {
        int root = s_chord(bar)->bass;
        if (bar == 14) {
            s_bass_note(b.ch[0], SONG, AT(bar, 0), MS(1500), s_midi_hz(root), 1.0);
            continue;
        }
        for (int s = 0; s < 16; s += 2) {
            int m = s == 14 ? root + 12 : root;
            s_bass_note(b.ch[0], SONG, AT(bar, s), STEP * 2 * 8 / 10, s_midi_hz(m), s % 4 == 0 ? 1.0 : 0.85);
        }
    }
    s_end_fade(&b, END_FADE);
    s_media_put(g, "bass/bass_di.wav", &b, -4.0);
    s_buf_free(&b);

    /* Sub: a sine an octave under the root, one note per bar. */
    s_buf_init(&b, 1, SONG);
    for (int bar = 2; bar < N_BARS; bar++) {
        int64_t gate = bar == 14 ? MS(1400) : BAR - STEP;
        s_sine_note(b.ch[0], SONG, AT(bar, 0), gate, s_midi_hz(s_chord(bar)->bass - 12), 1.0, MS(10), MS(40));
    }
    s_end_fade(&b, END_FADE);
    s_media_put(g, "bass/bass_sub.wav", &b, -5.0);
    s_buf_free(&b);
}

/* ---- keys --------------------------------------------------------------- */

static void s_gen_pad(gen_t *g)
{
    static const double detune[2][3] = {{-8.0, 0.0, 6.0}, {-5.0, 3.0, 9.0}}; /* cents */
    rng_t r = s_rng(31);
    buf_t b;
    s_buf_init(&b, 2, SONG);
    double ca = s_decay(0.25), cr = s_decay(0.2);
    for (int bar = 0; bar < N_BARS; bar++) {
        const chord_t *ch = s_chord(bar);
        int notes[4] = {ch->bass, ch->voicing[0], ch->voicing[1], ch->voicing[2]};
        int64_t t0 = AT(bar, 0), gate = bar == 14 ? BAR * 35 / 100 : BAR;
        int64_t len = gate + s_frames(1.8);
        for (int k = 0; k < 4; k++)
            for (int c = 0; c < 2; c++)
                for (int v = 0; v < 3; v++) {
                    double hz = s_midi_hz(notes[k] + detune[c][v] / 100.0), dt = hz / s_rate;
                    double ph = s_rng_unit(&r), env = 0.0, att = 1.0;
                    for (int64_t i = 0; i < len && t0 + i < SONG; i++) {
                        if (i < gate) {
                            att *= ca;
                            env = 1.0 - att;
                        } else {
                            env *= cr;
                        }
                        b.ch[c][t0 + i] += (k == 0 ? 0.8 : 1.0) * env * s_saw(ph, dt);
                        ph = s_advance(ph, dt);
                    }
                }
    }
    for (int c = 0; c < 2; c++) {
        svf_t lp = {0};
        for (int64_t i = 0; i < SONG; i++) {
            if (i % 32 == 0)
                s_svf_set(&lp, 1100.0 + 500.0 * s_sin2pi((double)i / s_rate * 0.07 + 0.5 * c), 0.9);
            b.ch[c][i] = s_svf(&lp, b.ch[c][i]).lp;
        }
    }
    s_end_fade(&b, END_FADE);
    s_media_put(g, "keys/pad.wav", &b, -6.0);
    s_buf_free(&b);
}

/* Two-operator FM electric piano with a short high "tine" partial. */
static void s_ep_note(double *out, int64_t n_out, int64_t t0, int64_t gate, double hz, double vel)
{
    int64_t rel = MS(80);
    double pc = 0.0, pm = 0.0, pt = 0.0;
    double ca = s_decay(1.0), ci = s_decay(0.25), ctn = s_decay(0.03);
    double ea = 1.0, ei = 1.0, et = 1.0;
    for (int64_t i = 0; i < gate + rel && t0 + i < n_out; i++) {
        double a = (i < MS(3) ? (double)i / (double)MS(3) : 1.0) * ea;
        if (i >= gate)
            a *= 1.0 - (double)(i - gate) / (double)rel;
        double index = 0.2 + 1.3 * ei;
        double v = s_sin2pi(pc + index / (2.0 * PI) * s_sin2pi(pm)) + 0.15 * et * s_sin2pi(pt);
        out[t0 + i] += vel * a * v;
        pc = s_advance(pc, hz / s_rate);
        pm = s_advance(pm, hz / s_rate);
        pt = s_advance(pt, 14.0 * hz / s_rate);
        ea *= ca;
        ei *= ci;
        et *= ctn;
    }
}

static void s_gen_keys(gen_t *g)
{
    static const int stab_step[3] = {0, 6, 10}, stab_len[3] = {5, 3, 5};
    double *mono = s_calloc((size_t)SONG, sizeof(double));
    for (int bar = 2; bar < N_BARS; bar++) {
        const chord_t *ch = s_chord(bar);
        for (int k = 0; k < 3; k++) {
            double hz = s_midi_hz(ch->voicing[k]);
            if (bar == 14) {
                s_ep_note(mono, SONG, AT(bar, 0) + MS(8) * k, 10 * STEP, hz, 0.9);
                continue;
            }
            for (int st = 0; st < 3; st++)
                s_ep_note(mono, SONG, AT(bar, stab_step[st]) + MS(4) * k, stab_len[st] * STEP, hz, st == 0 ? 0.9 : 0.7);
        }
    }
    /* Auto-pan tremolo. */
    buf_t b;
    s_buf_init(&b, 2, SONG);
    for (int64_t i = 0; i < SONG; i++) {
        double lfo = 0.35 * s_sin2pi(3.2 * (double)i / s_rate);
        b.ch[0][i] = mono[i] * (1.0 + lfo);
        b.ch[1][i] = mono[i] * (1.0 - lfo);
    }
    s_end_fade(&b, END_FADE);
    s_media_put(g, "keys/keys_ep.wav", &b, -6.0);
    s_buf_free(&b);

    /* Organ: an alternative take, kept in the session but muted. */
    static const double draw[4] = {1.0, 0.5, 0.35, 0.2};
    memset(mono, 0, (size_t)SONG * sizeof(double));
    for (int bar = 2; bar < 14; bar++)
        for (int k = 0; k < 3; k++)
            for (int h = 0; h < 4; h++)
                s_sine_note(mono, SONG, AT(bar, 0), BAR - MS(40), (h + 1) * s_midi_hz(s_chord(bar)->voicing[k]),
                            draw[h], MS(8), MS(30));
    s_buf_init(&b, 1, SONG);
    for (int64_t i = 0; i < SONG; i++)
        b.ch[0][i] = mono[i] * (1.0 + 0.25 * s_sin2pi(5.8 * (double)i / s_rate));
    s_end_fade(&b, END_FADE);
    s_media_put(g, "keys/keys_organ.wav", &b, -6.0);
    s_buf_free(&b);
    free(mono);

    /* Arp: 16ths up and down the chord, a filter opening over the intro and a
     * dotted-eighth echo. */
    static const int pattern[16] = {0, 1, 2, 3, 4, 5, 4, 3, 1, 2, 3, 4, 5, 4, 3, 2};
    s_buf_init(&b, 1, SONG);
    for (int bar = 0; bar < 14; bar++) {
        const chord_t *ch = s_chord(bar);
        for (int s = 0; s < 16; s++) {
            int idx = pattern[s], m = ch->voicing[idx % 3] + 12 * (1 + idx / 3);
            double vel = (s % 4 == 0 ? 1.0 : 0.7) * (bar == 0 ? 0.6 : 1.0);
            double hz = s_midi_hz(m), dt = hz / s_rate, ph = 0.0, e = 1.0, c = s_decay(0.11);
            int64_t t0 = AT(bar, s), gate = STEP, rel = MS(30);
            for (int64_t i = 0; i < gate + rel; i++) {
                double a = (i < MS(1) ? (double)i / (double)MS(1) : 1.0) * e;
                if (i >= gate)
                    a *= 1.0 - (double)(i - gate) / (double)rel;
                b.ch[0][t0 + i] += vel * a * s_pulse(ph, dt, 0.3);
                ph = s_advance(ph, dt);
                e *= c;
            }
        }
    }
    svf_t lp = {0};
    for (int64_t i = 0; i < SONG; i++) {
        if (i % 32 == 0)
            s_svf_set(&lp, 1200.0 + 1600.0 * (0.5 + 0.5 * s_sin2pi((double)i / (8.0 * BAR) - 0.25)), 2.0);
        b.ch[0][i] = s_svf(&lp, b.ch[0][i]).lp;
    }
    for (int64_t i = 3 * STEP; i < SONG; i++)
        b.ch[0][i] += 0.3 * b.ch[0][i - 3 * STEP];
    s_end_fade(&b, END_FADE);
    s_media_put(g, "keys/arp.wav", &b, -6.0);
    s_buf_free(&b);
}

/* ---- guitars ------------------------------------------------------------ */

/* Karplus-Strong string with an allpass for exact tuning: rings for `ring`
 * frames, then is damped to silence in `damp` frames. */
static void s_pluck(double *out, int64_t n_out, int64_t t0, double hz, double vel, int64_t ring, int64_t damp,
                    uint64_t seed)
{
    double line[4096];
    double p = s_rate / hz;
    int n = (int)floor(p - 0.6);
    if (n < 2 || n >= 4096)
        s_fail("internal error: pluck at %.1f Hz out of range", hz);
    double d = p - 0.5 - n, c = (1.0 - d) / (1.0 + d);
    rng_t r = s_rng(seed);
    double lp = 0.0;
    for (int i = 0; i < n; i++) {
        lp += 0.5 * (s_noise(&r) - lp);
        line[i] = lp;
    }
    double prev = 0.0, ax = 0.0, ay = 0.0;
    int pos = 0;
    for (int64_t i = 0; i < ring + damp && t0 + i < n_out; i++) {
        double x = line[pos];
        double avg = 0.5 * (x + prev);
        prev = x;
        double y = c * avg + ax - c * ay;
        ax = avg;
        ay = y;
        line[pos] = 0.996 * y;
        pos = pos + 1 == n ? 0 : pos + 1;
        double a = i < ring ? 1.0 : 1.0 - (double)(i - ring) / (double)damp;
        if (t0 + i >= 0)
            out[t0 + i] += vel * a * x;
    }
}

/* One guitar part, dry. */
static void s_guitar_part(double *out, int side)
{
    static const int pat_l[8] = {0, 2, 1, 3, 2, 1, 3, 2};
    static const int pat_r_step[6] = {0, 3, 6, 9, 12, 14}, pat_r[6] = {3, 2, 1, 3, 2, 0};
    rng_t r = s_rng(side == 0 ? 41 : 43);
    int first = side == 0 ? 2 : 6;
    for (int bar = first; bar < 14; bar++) {
        const chord_t *ch = s_chord(bar);
        int n = side == 0 ? 8 : 6;
        for (int k = 0; k < n; k++) {
            int step = side == 0 ? 2 * k : pat_r_step[k];
            int m = ch->gtr[side == 0 ? pat_l[k] : pat_r[k]];
            int64_t t0 = AT(bar, step) + (int64_t)floor(s_noise(&r) * MS(3));
            double vel = 0.75 + 0.25 * s_rng_unit(&r);
            s_pluck(out, SONG, t0, s_midi_hz(m), vel, 3 * STEP, MS(30), s_rng_next(&r));
        }
    }
    /* The last chord, strummed. */
    for (int k = 0; k < 4; k++)
        s_pluck(out, SONG, AT(14, 0) + MS(12) * k + (side ? MS(5) : 0), s_midi_hz(s_chord(14)->gtr[k]), 0.9,
                s_frames(1.6), MS(60), 900u + (unsigned)(4 * side + k));
}

/* A small amp: drive into a soft clipper, a speaker-ish band. */
static void s_amp(double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double v = 2.5 * x[i];
        x[i] = v / (1.0 + fabs(v));
    }
    s_filter(x, n, LOWPASS, 4000.0, 0.7);
    s_filter(x, n, HIGHPASS, 100.0, 0.7);
}

static void s_gen_guitars(gen_t *g)
{
    buf_t b;
    for (int side = 0; side < 2; side++) {
        s_buf_init(&b, 1, SONG);
        s_guitar_part(b.ch[0], side);
        if (side == 0) { /* the DI of the left guitar, muted in the session */
            buf_t di;
            s_buf_init(&di, 1, SONG);
            memcpy(di.ch[0], b.ch[0], (size_t)SONG * sizeof(double));
            s_end_fade(&di, END_FADE);
            s_media_put(g, "guitars/gtr_di.wav", &di, -6.0);
            s_buf_free(&di);
        }
        s_amp(b.ch[0], SONG);
        s_end_fade(&b, END_FADE);
        s_media_put(g, side == 0 ? "guitars/gtr_left.wav" : "guitars/gtr_right.wav", &b, -6.0);
        s_buf_free(&b);
    }
}

/* ---- monophonic voices: lead synth and vocals --------------------------- */

typedef struct {
    int step; /* 16th from the start of the part */
    int len;  /* 16ths */
    int midi;
    char vowel; /* a e i o u (vocals) */
} mnote_t;

typedef enum { TIMBRE_VOICE, TIMBRE_LEAD } timbre_t;

typedef struct {
    timbre_t timbre;
    double cents;     /* constant detune */
    double vib_rate;  /* Hz */
    double vib_depth; /* semitones */
    double breath;    /* aspiration noise, 0..1 */
    uint64_t seed;
} mono_cfg_t;

static void s_formants(char vowel, double f[3])
{
    static const struct {
        char v;
        double f[3];
    } table[] = {{'a', {730, 1090, 2440}},
                 {'e', {530, 1840, 2480}},
                 {'i', {270, 2290, 3010}},
                 {'o', {570, 840, 2410}},
                 {'u', {300, 870, 2240}}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].v == vowel) {
            memcpy(f, table[i].f, sizeof table[i].f);
            return;
        }
    s_fail("internal error: unknown vowel '%c'", vowel);
}

/* Sings or plays `notes` into out[0..n_out), the part starting at t0.
 * Notes that touch are legato (glide, no new attack); the release is a
 * linear 90 ms ramp to exact silence, so clips can cut in the rests. */
static void s_mono(double *out, int64_t n_out, int64_t t0, const mnote_t *notes, size_t n_notes, const mono_cfg_t *cfg)
{
    rng_t r = s_rng(cfg->seed);
    svf_t form[3] = {{0}}, lp = {0};
    double fcur[3], pitch = notes[0].midi, env = 0.0, fenv = 0.0, ph1 = 0.0, ph2 = 0.0, ph3 = 0.0;
    double vib_ph = 0.0, dt1 = 0.0, dt2 = 0.0, dt3 = 0.0;
    double att = 1.0 - s_decay(cfg->timbre == TIMBRE_VOICE ? 0.02 : 0.004), rel = 1.0 / (double)MS(90);
    double glide = 1.0 - s_decay(0.03), fenv_c = s_decay(0.2);
    double form_glide = 1.0 - pow(s_decay(0.04), 16.0); /* per 16-frame block */
    static const double form_gain[3] = {1.0, 0.5, 0.25}, form_q[3] = {9.0, 12.0, 20.0};
    s_formants(notes[0].vowel ? notes[0].vowel : 'a', fcur);
    size_t next = 0;
    long cur = -1;
    int64_t note_t = 0;
    bool gate = false;
    for (int64_t t = 0; t < n_out; t++) {
        while (next < n_notes && t >= t0 + notes[next].step * STEP) {
            bool legato = gate;
            cur = (long)next++;
            note_t = t;
            if (!legato)
                pitch = notes[cur].midi;
            fenv = 1.0;
        }
        if (cur >= 0) {
            const mnote_t *nt = &notes[cur];
            int64_t end = t0 + (int64_t)(nt->step + nt->len) * STEP;
            bool touches = (size_t)cur + 1 < n_notes && notes[cur + 1].step == nt->step + nt->len;
            gate = t < end - (touches ? 0 : MS(25));
        }
        env = gate ? env + (1.0 - env) * att : fmax(0.0, env - rel);
        if (cur >= 0)
            pitch += (notes[cur].midi - pitch) * glide;

        if (t % 16 == 0) { /* block-rate pitch and filters */
            double age = (double)(t - note_t) / s_rate;
            double depth = cfg->vib_depth * fmin(1.0, fmax(0.0, (age - 0.15) / 0.4));
            double m = pitch + cfg->cents / 100.0 + depth * s_sin2pi(vib_ph);
            double hz = s_midi_hz(m);
            dt1 = hz / s_rate;
            dt2 = dt1 * 1.006;
            dt3 = dt1 * 0.5;
            if (cfg->timbre == TIMBRE_VOICE) {
                double target[3];
                s_formants(cur >= 0 && notes[cur].vowel ? notes[cur].vowel : 'a', target);
                for (int k = 0; k < 3; k++) {
                    fcur[k] += (target[k] - fcur[k]) * form_glide;
                    s_svf_set(&form[k], fcur[k], form_q[k]);
                }
            } else {
                s_svf_set(&lp, 800.0 + 3500.0 * fenv, 1.4);
            }
        }
        vib_ph = s_advance(vib_ph, cfg->vib_rate / s_rate);
        fenv *= fenv_c;

        double v;
        if (cfg->timbre == TIMBRE_VOICE) {
            double src = (1.0 - cfg->breath) * s_saw(ph1, dt1) + cfg->breath * s_noise(&r);
            v = 0.0;
            for (int k = 0; k < 3; k++)
                v += form_gain[k] * form[k].k * s_svf(&form[k], src).bp;
        } else {
            double src = 0.5 * s_saw(ph1, dt1) + 0.5 * s_saw(ph2, dt2) + 0.3 * s_pulse(ph3, dt3, 0.5);
            v = s_svf(&lp, src).lp;
        }
        out[t] += env * v;
        ph1 = s_advance(ph1, dt1);
        ph2 = s_advance(ph2, dt2);
        ph3 = s_advance(ph3, dt3);
    }
}

/* The lead vocal take: verse 1 and chorus (steps 0-127), a bar of rest, verse 2 (144-207). */
static const mnote_t k_vox[] = {
    {2, 2, E4, 'a'},   {4, 2, E4, 'o'},   {6, 2, G4, 'e'},   {8, 4, A4, 'a'},   {12, 2, G4, 'i'},  {14, 2, E4, 'o'},
    {16, 4, F4, 'a'},  {20, 2, E4, 'e'},  {22, 6, C4, 'o'},  {34, 2, E4, 'a'},  {36, 2, E4, 'i'},  {38, 2, G4, 'e'},
    {40, 4, C5, 'a'},  {44, 2, B4, 'o'},  {46, 2, G4, 'u'},  {48, 4, A4, 'a'},  {52, 2, G4, 'e'},  {54, 6, D4, 'o'},
    {64, 2, A4, 'o'},  {66, 2, C5, 'a'},  {68, 6, E5, 'a'},  {74, 2, D5, 'e'},  {76, 4, C5, 'o'},  {80, 2, C5, 'i'},
    {82, 2, A4, 'e'},  {84, 6, C5, 'a'},  {90, 2, A4, 'o'},  {92, 3, G4, 'u'},  {96, 2, G4, 'o'},  {98, 2, C5, 'a'},
    {100, 6, E5, 'a'}, {106, 2, D5, 'e'}, {108, 4, E5, 'i'}, {112, 6, D5, 'a'}, {118, 2, B4, 'o'}, {120, 5, G4, 'u'},
    {146, 2, E4, 'a'}, {148, 2, E4, 'o'}, {150, 2, G4, 'e'}, {152, 4, A4, 'a'}, {156, 2, C5, 'i'}, {158, 2, A4, 'o'},
    {160, 4, A4, 'a'}, {164, 2, G4, 'e'}, {166, 6, F4, 'o'}, {178, 2, E4, 'a'}, {180, 2, G4, 'i'}, {182, 2, C5, 'e'},
    {184, 4, E5, 'a'}, {188, 2, D5, 'o'}, {190, 2, C5, 'u'}, {192, 4, B4, 'a'}, {196, 2, A4, 'e'}, {198, 6, G4, 'o'},
};
#define VOX_CHORUS_FIRST 18 /* index of the chorus's first note in k_vox */
#define VOX_CHORUS_N     18
#define VOX_LEAD_IN      MS(500) /* the take starts with a breath */

static const mnote_t k_lead[] = {
    {0, 4, E5, 0},  {4, 4, A5, 0},  {8, 2, G5, 0},  {10, 2, E5, 0}, {12, 2, D5, 0}, {16, 4, C5, 0},
    {20, 2, D5, 0}, {22, 6, E5, 0}, {32, 4, E5, 0}, {36, 4, G5, 0}, {40, 4, C6, 0}, {44, 2, B5, 0},
    {46, 2, G5, 0}, {48, 6, B5, 0}, {54, 2, A5, 0}, {56, 6, G5, 0},
};

static const mnote_t k_bv_high[] = {{0, 14, C5, 'u'}, {16, 14, C5, 'u'}, {32, 14, E5, 'u'}, {48, 14, D5, 'u'}};
static const mnote_t k_bv_low[] = {{0, 14, E4, 'a'}, {16, 14, F4, 'a'}, {32, 14, G4, 'a'}, {48, 14, G4, 'a'}};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static void s_gen_lead_and_vocals(gen_t *g)
{
    buf_t b;
    s_buf_init(&b, 1, 4 * BAR);
    mono_cfg_t lead = {TIMBRE_LEAD, 0.0, 5.0, 0.2, 0.0, 51};
    s_mono(b.ch[0], b.n_frames, 0, k_lead, N_OF(k_lead), &lead);
    s_media_put(g, "keys/lead_synth.wav", &b, -6.0);
    s_buf_free(&b);

    /* Lead vocal: a breath, then the take. */
    s_buf_init(&b, 1, VOX_LEAD_IN + AT(13, 0));
    mono_cfg_t vox = {TIMBRE_VOICE, 0.0, 5.6, 0.3, 0.05, 61};
    s_mono(b.ch[0], b.n_frames, VOX_LEAD_IN, k_vox, N_OF(k_vox), &vox);
    {
        rng_t r = s_rng(62);
        svf_t bp = {0};
        s_svf_set(&bp, 1500.0, 0.8);
        int64_t from = MS(250), len = MS(230);
        for (int64_t i = 0; i < len; i++) {
            double e = s_sin2pi(0.5 * (double)i / (double)len);
            b.ch[0][from + i] += 0.12 * e * e * bp.k * s_svf(&bp, s_noise(&r)).bp;
        }
    }
    s_media_put(g, "vocals/vox_lead.wav", &b, -4.0);
    s_buf_free(&b);

    /* Double: the chorus again, slightly sharp and 12 ms late. */
    s_buf_init(&b, 1, 4 * BAR);
    mnote_t chorus[VOX_CHORUS_N];
    for (int i = 0; i < VOX_CHORUS_N; i++) {
        chorus[i] = k_vox[VOX_CHORUS_FIRST + i];
        chorus[i].step -= 64;
    }
    mono_cfg_t dbl = {TIMBRE_VOICE, 9.0, 5.1, 0.25, 0.08, 71};
    s_mono(b.ch[0], b.n_frames, MS(12), chorus, VOX_CHORUS_N, &dbl);
    s_media_put(g, "vocals/vox_double.wav", &b, -6.0);
    s_buf_free(&b);

    mono_cfg_t bvh = {TIMBRE_VOICE, -4.0, 4.8, 0.15, 0.1, 81};
    mono_cfg_t bvl = {TIMBRE_VOICE, 5.0, 5.3, 0.15, 0.1, 82};
    s_buf_init(&b, 1, 4 * BAR);
    s_mono(b.ch[0], b.n_frames, 0, k_bv_high, N_OF(k_bv_high), &bvh);
    s_media_put(g, "vocals/bv_high.wav", &b, -6.0);
    s_buf_free(&b);
    s_buf_init(&b, 1, 4 * BAR);
    s_mono(b.ch[0], b.n_frames, 0, k_bv_low, N_OF(k_bv_low), &bvl);
    s_media_put(g, "vocals/bv_low.wav", &b, -6.0);
    s_buf_free(&b);
}

/* ---- effects ------------------------------------------------------------ */

static void s_gen_fx(gen_t *g)
{
    buf_t b;
    /* Riser: two bars of noise through a band-pass sweeping 200 Hz to 8 kHz. */
    s_buf_init(&b, 2, 2 * BAR);
    for (int c = 0; c < 2; c++) {
        rng_t common = s_rng(90), own = s_rng(91 + (uint64_t)c);
        svf_t bp = {0};
        for (int64_t i = 0; i < b.n_frames; i++) {
            double u = (double)i / (double)b.n_frames;
            if (i % 16 == 0)
                s_svf_set(&bp, 200.0 * pow(40.0, u), 2.5);
            double w = 0.6 * s_noise(&common) + 0.4 * s_noise(&own);
            double tail = i >= b.n_frames - MS(10) ? (double)(b.n_frames - i) / (double)MS(10) : 1.0;
            b.ch[c][i] = u * u * tail * bp.k * s_svf(&bp, w).bp;
        }
    }
    s_media_put(g, "fx/fx_riser.wav", &b, -6.0);
    s_buf_free(&b);

    /* Impact: a falling sine boom and a burst of noise in a short space. */
    int64_t n = MS(2400);
    s_buf_init(&b, 2, n);
    double *dry = s_calloc((size_t)n, sizeof(double));
    {
        rng_t r = s_rng(95);
        svf_t lp = {0};
        s_svf_set(&lp, 2000.0, 0.7);
        double ph = 0.0, es = 1.0, eb = 1.0, en = 1.0;
        double cs = s_decay(0.15), cb = s_decay(0.3), cn = s_decay(0.12);
        for (int64_t i = 0; i < n; i++) {
            double a = i < 48 ? (double)i / 48.0 : 1.0;
            dry[i] = a * (s_sin2pi(ph) * eb + 0.6 * s_svf(&lp, s_noise(&r)).lp * en);
            ph = s_advance(ph, (30.0 + 80.0 * es) / s_rate);
            es *= cs;
            eb *= cb;
            en *= cn;
        }
    }
    for (int c = 0; c < 2; c++) {
        s_reverb(dry, b.ch[c], n, 0.6, 0.4, 17 * c);
        for (int64_t i = 0; i < n; i++)
            b.ch[c][i] = 0.4 * b.ch[c][i] + dry[i];
    }
    free(dry);
    s_end_fade(&b, MS(10));
    s_media_put(g, "fx/fx_impact.wav", &b, -4.0);
    s_buf_free(&b);

    /* Ambience: a night road under the whole song, and a car passing from left
     * to right around 28 s. */
    s_buf_init(&b, 2, SONG);
    {
        rng_t common = s_rng(97), car = s_rng(98);
        rng_t own[2] = {s_rng(99), s_rng(100)};
        double brown[2] = {0.0, 0.0};
        svf_t lp[2] = {{0}}, cbp = {0};
        s_svf_set(&lp[0], 600.0, 0.7);
        s_svf_set(&lp[1], 600.0, 0.7);
        int64_t car_from = MS(24500), car_len = MS(7000);
        for (int64_t i = 0; i < SONG; i++) {
            double t = (double)i / s_rate;
            double w = s_noise(&common);
            double swell = (0.6 + 0.4 * s_sin2pi(0.05 * t)) * fmin(1.0, t / 3.0);
            for (int c = 0; c < 2; c++) {
                brown[c] = 0.997 * brown[c] + 0.03 * (0.6 * w + 0.4 * s_noise(&own[c]));
                b.ch[c][i] = swell * s_svf(&lp[c], brown[c]).lp;
            }
            if (i >= car_from && i < car_from + car_len) {
                double u = (double)(i - car_from) / (double)car_len;
                if ((i - car_from) % 16 == 0)
                    s_svf_set(&cbp, 450.0 * (1.0 + 0.08 * (1.0 - 2.0 * u)), 3.0);
                double bell = s_sin2pi(0.5 * u);
                double v = 0.5 * bell * bell * cbp.k * s_svf(&cbp, s_noise(&car)).bp;
                double pan = -0.9 + 1.8 * u;
                b.ch[0][i] += v * s_cos2pi((pan + 1.0) / 8.0);
                b.ch[1][i] += v * s_sin2pi((pan + 1.0) / 8.0);
            }
        }
    }
    s_end_fade(&b, END_FADE);
    s_media_put(g, "fx/fx_ambience.wav", &b, -8.0);
    s_buf_free(&b);
}

/* Vinyl crackle and hiss, two bars: a loop from a sample pack, delivered at
 * 44.1 kHz (stemfarm resamples it to the session's 48 kHz). The session
 * loops it with a crossfade. */
#define VINYL_RATE 44100
#define VINYL_LEN  AT(2, 0) /* at 48 kHz; 4.8 s, a whole number of frames at 44.1 kHz too */

static void s_gen_vinyl(gen_t *g)
{
    s_rate = VINYL_RATE;
    buf_t b;
    s_buf_init(&b, 2, s_frames(4.8));
    for (int c = 0; c < 2; c++) {
        rng_t common = s_rng(120), own = s_rng(121 + (uint64_t)c), pops = s_rng(123 + (uint64_t)c);
        svf_t hp = {0}, lp = {0}, click = {0};
        s_svf_set(&hp, 3000.0, 0.7);
        s_svf_set(&lp, 120.0, 0.7);
        s_svf_set(&click, 2200.0 + 600.0 * c, 1.2);
        double pop = 0.0, pc = s_decay(0.0004);
        for (int64_t i = 0; i < b.n_frames; i++) {
            double w = 0.5 * s_noise(&common) + 0.5 * s_noise(&own);
            if (s_rng_unit(&pops) < 9.0 / s_rate) { /* about nine crackles a second */
                double size = s_rng_unit(&pops) < 0.15 ? 1.0 : 0.35;
                pop += size * (0.5 + 0.5 * s_rng_unit(&pops)) * (s_rng_unit(&pops) < 0.5 ? -1.0 : 1.0);
            }
            double crack = click.k * s_svf(&click, pop).bp;
            pop *= pc;
            b.ch[c][i] = 0.04 * s_svf(&hp, w).hp + 0.3 * s_svf(&lp, w).lp + crack;
        }
    }
    s_media_put(g, "fx/fx_vinyl.wav", &b, -6.0);
    s_buf_free(&b);
    s_rate = 48000;
}

/* ---- the session: tracks, clips, stems ---------------------------------- */

typedef enum { TF_SECONDS, TF_MILLISECONDS, TF_TIMECODE, TF_SAMPLES } tform_t;

typedef struct {
    int64_t length;   /* frames; 0: no fade */
    bool equal_power; /* written {length: T, shape: equal_power}; else a plain time (linear) */
} fade_spec_t;

typedef struct {
    int64_t at;       /* timeline frame */
    int64_t offset;   /* source frame; 0 omits the key */
    int64_t length;   /* frames; 0 omits the key (to the end of the source) */
    tform_t form;     /* how the YAML spells the times */
    const char *note; /* trailing comment */
    int channel;      /* `channel: N` (1-based) of a multichannel source; 0: every channel */
    fade_spec_t fade_in, fade_out;
    int64_t crossfade; /* frames; the clip starts exactly this far before the previous one ends */
} clip_spec_t;

#define CLIP(at_, offset_, length_, form_, note_)                                                                      \
    {                                                                                                                  \
        .at = (at_), .offset = (offset_), .length = (length_), .form = (form_), .note = (note_)                        \
    }

typedef struct {
    int64_t t;         /* timeline frame */
    const char *value; /* as written: dB, -inf or a pan */
} point_t;

typedef struct {
    int n; /* 0: not automated */
    point_t p[4];
    const char *note; /* trailing comment */
} auto_spec_t;

typedef struct {
    const char *to;       /* a bus */
    const char *level_db; /* as written; NULL when automated */
    bool pre_fader;
    auto_spec_t level; /* send-level automation */
    const char *note;  /* trailing comment */
} send_spec_t;

typedef struct {
    const char *group; /* a heading comment before the track, or NULL */
    const char *name;
    const char *source;  /* under media/ */
    int n_channels;      /* of the track: the source's, or 1 when its clips pick a channel */
    const char *what;    /* trailing comment on the name */
    const char *gain_db; /* as written; NULL when the fader is automated */
    const char *pan;     /* NULL: centre, key omitted */
    bool invert;
    bool mute;
    const char *output; /* a bus; NULL: the master (key omitted) */
    int n_sends;
    send_spec_t sends[2];
    auto_spec_t gain_auto, pan_auto;
    int n_clips; /* 0: the `source:` shorthand */
    clip_spec_t clips[4];
    const char *fx[4]; /* insert chain, in order, each `effect: {params}` as written; NULL-terminated */
} track_spec_t;

#define DRUM_BUS  "Drum Bus"
#define MUSIC_BUS "Music Bus"
#define VERB      "Verb"

static const track_spec_t k_tracks[] = {
    {.group = "drums",
     .name = "Kick In",
     .source = "drums/kick_in.wav",
     .n_channels = 1,
     .what = "pitch-swept sine and beater click",
     .gain_db = "-6",
     .output = DRUM_BUS,
     .fx = {"highpass: {freq: 30}", "eq: {type: peak, freq: 3500, gain_db: 2, q: 1.2}"}},
    {.name = "Kick Out",
     .source = "drums/kick_out.wav",
     .n_channels = 1,
     .what = "resonant head: rounder, 0.5 ms later",
     .gain_db = "-10",
     .output = DRUM_BUS,
     .fx = {"highpass: {freq: 30}", "lowpass: {freq: 4000}"}},
    {.name = "Snare Top",
     .source = "drums/snare_top.wav",
     .n_channels = 1,
     .what = "tone and noise burst, ghost notes in the verses",
     .gain_db = "-6",
     .pan = "-0.1",
     .output = DRUM_BUS,
     .fx = {"highpass: {freq: 100}", "eq: {type: peak, freq: 200, gain_db: 2, q: 1.4}"},
     .n_sends = 1,
     .sends = {{.to = VERB, .level_db = "-12", .note = "post-fader: follows the snare's fader"}}},
    {.name = "Snare Bottom",
     .source = "drums/snare_bottom.wav",
     .n_channels = 1,
     .what = "the snares, recorded upside down",
     .gain_db = "-14",
     .pan = "-0.1",
     .invert = true,
     .output = DRUM_BUS,
     .fx = {"highpass: {freq: 150}"}},
    {.name = "Hats",
     .source = "drums/hats.wav",
     .n_channels = 1,
     .what = "high-passed noise, open on the off-beats in the chorus",
     .gain_db = "-14",
     .pan = "0.45",
     .output = DRUM_BUS},
    {.name = "Tom Hi",
     .source = "drums/tom_hi.wav",
     .n_channels = 1,
     .what = "two fills in one file",
     .gain_db = "-9",
     .pan = "-0.25",
     .output = DRUM_BUS,
     .n_clips = 2,
     .clips = {CLIP(FILL_A, 0, MS(1200), TF_SECONDS, "fill A, into the chorus"),
               CLIP(FILL_B, FILL_B_IN_FILE, MS(1800), TF_TIMECODE, "fill B, into the last bar")}},
    {.name = "Tom Lo",
     .source = "drums/tom_lo.wav",
     .n_channels = 1,
     .gain_db = "-8",
     .pan = "0.45",
     .output = DRUM_BUS,
     .n_clips = 2,
     .clips = {CLIP(FILL_A, 0, MS(1200), TF_SECONDS, "fill A"),
               CLIP(FILL_B, FILL_B_IN_FILE, MS(1800), TF_TIMECODE, "fill B")}},
    {.name = "Clap",
     .source = "drums/clap.wav",
     .n_channels = 1,
     .what = "a one-bar loop, placed four times in the chorus",
     .gain_db = "-13",
     .output = DRUM_BUS,
     .n_clips = 4,
     .clips = {CLIP(AT(6, 0), 0, 0, TF_SECONDS, NULL), CLIP(AT(7, 0), 0, 0, TF_SECONDS, NULL),
               CLIP(AT(8, 0), 0, 0, TF_SECONDS, NULL), CLIP(AT(9, 0), 0, 0, TF_SECONDS, NULL)}},
    {.name = "Machine Rim",
     .source = "drums/machine.wav",
     .n_channels = 1,
     .what = "output 3 of a drum machine's 4-channel file",
     .gain_db = "-15",
     .pan = "0.3",
     .output = DRUM_BUS,
     .n_clips = 2,
     .clips = {{.at = AT(10, 0), .form = TF_SECONDS, .channel = 3, .note = "the two-bar loop in verse 2"},
               {.at = AT(12, 0), .form = TF_SAMPLES, .channel = 3}}},
    {.name = "Machine Shaker",
     .source = "drums/machine.wav",
     .n_channels = 1,
     .what = "output 4 of the same file",
     .gain_db = "-17",
     .pan = "-0.35",
     .output = DRUM_BUS,
     .n_clips = 4,
     .clips = {{.at = AT(6, 0), .form = TF_SECONDS, .channel = 4, .note = "chorus and verse 2"},
               {.at = AT(8, 0), .form = TF_SECONDS, .channel = 4},
               {.at = AT(10, 0), .form = TF_SECONDS, .channel = 4},
               {.at = AT(12, 0), .form = TF_SECONDS, .channel = 4}}},
    {.name = "OH",
     .source = "drums/overheads.wav",
     .n_channels = 2,
     .what = "stereo overheads, crash on the left",
     .gain_db = "-11",
     .output = DRUM_BUS},
    {.name = "Room",
     .source = "drums/room.wav",
     .n_channels = 2,
     .what = "stereo room: the kit in a small bright room",
     .gain_db = "-15",
     .output = DRUM_BUS},

    {.group = "bass",
     .name = "Bass DI",
     .source = "bass/bass_di.wav",
     .n_channels = 1,
     .what = "saw through an enveloped low-pass, eighths on the root",
     .gain_db = "-11",
     .output = MUSIC_BUS,
     .fx = {"highpass: {freq: 35}", "eq: {type: peak, freq: 800, gain_db: 2, q: 1}"}},
    {.name = "Bass Sub",
     .source = "bass/bass_sub.wav",
     .n_channels = 1,
     .what = "sine an octave under the root",
     .gain_db = "-16",
     .output = MUSIC_BUS,
     .fx = {"highpass: {freq: 25}", "lowpass: {freq: 200}"}},

    {.group = "keys and synths",
     .name = "Pad",
     .source = "keys/pad.wav",
     .n_channels = 2,
     .what = "detuned saws in stereo, slow attack, drifting filter",
     .output = MUSIC_BUS,
     .gain_auto = {2, {{0, "-32"}, {AT(2, 0), "-14"}}, "fades up over the intro"}},
    {.name = "Keys EP",
     .source = "keys/keys_ep.wav",
     .n_channels = 2,
     .what = "FM electric piano stabs with auto-pan",
     .gain_db = "-11",
     .pan = "-0.2",
     .output = MUSIC_BUS},
    {.name = "Keys Organ",
     .source = "keys/keys_organ.wav",
     .n_channels = 1,
     .what = "an alternative take, muted",
     .gain_db = "-14",
     .pan = "0.2",
     .mute = true,
     .output = MUSIC_BUS},
    {.name = "Arp",
     .source = "keys/arp.wav",
     .n_channels = 1,
     .what = "pulse arpeggio in 16ths with a dotted-eighth echo",
     .gain_db = "-18",
     .output = MUSIC_BUS,
     .pan_auto = {2, {{0, "-0.6"}, {AT(2, 0), "0.35"}}, "drifts to its place during the intro"}},
    {.name = "Lead Synth",
     .source = "keys/lead_synth.wav",
     .n_channels = 1,
     .what = "the hook: intro and chorus",
     .gain_db = "-11",
     .pan = "-0.15",
     .output = MUSIC_BUS,
     .n_clips = 2,
     .clips = {CLIP(0, 0, 2 * BAR, TF_SECONDS, "first two bars as the intro hook"),
               CLIP(AT(6, 0), 0, 0, TF_SAMPLES, "the whole hook in the chorus")}},

    {.group = "guitars",
     .name = "Gtr Left",
     .source = "guitars/gtr_left.wav",
     .n_channels = 1,
     .what = "Karplus-Strong plucks through a small amp",
     .gain_db = "-13",
     .pan = "-0.7",
     .output = MUSIC_BUS},
    {.name = "Gtr Right",
     .source = "guitars/gtr_right.wav",
     .n_channels = 1,
     .what = "a second part, from the chorus on",
     .gain_db = "-13",
     .pan = "0.7",
     .output = MUSIC_BUS},
    {.name = "Gtr DI",
     .source = "guitars/gtr_di.wav",
     .n_channels = 1,
     .what = "the left guitar before the amp, muted",
     .gain_db = "-13",
     .pan = "-0.7",
     .mute = true,
     .output = MUSIC_BUS},

    {.group = "vocals",
     .name = "Vox Lead",
     .source = "vocals/vox_lead.wav",
     .n_channels = 1,
     .what = "formant-filtered saw: verse, chorus, verse",
     .gain_db = "-6",
     .fx = {"highpass: {freq: 100}", "eq: {type: peak, freq: 3000, gain_db: 2, q: 1}",
            "compressor: {threshold_db: -18, ratio: 3, attack_ms: 5, release_ms: 80, knee_db: 6, makeup_db: 2}"},
     .n_sends = 1,
     .sends = {{.to = VERB,
                .pre_fader = true,
                .level = {4,
                          {{AT(6, 0) - BEAT, "-20"}, {AT(6, 0), "-14"}, {AT(10, 0) - BEAT, "-14"}, {AT(10, 0), "-20"}},
                          "wetter in the chorus"},
                .note = "pre-fader: the clip fades still apply"}},
     .n_clips = 2,
     .clips = {{.at = AT(2, 0) - MS(300),
                .offset = MS(200),
                .length = AT(8, 0) + MS(300),
                .form = TF_SECONDS,
                .note = "from the breath through the chorus",
                .fade_in = {MS(40), false}},
               {.at = AT(10, 0),
                .offset = VOX_LEAD_IN + AT(9, 0),
                .length = AT(4, 0),
                .form = TF_TIMECODE,
                .note = "the second verse of the take",
                .fade_out = {MS(1200), true}}}},
    {.name = "Vox Double",
     .source = "vocals/vox_double.wav",
     .n_channels = 1,
     .what = "the chorus again, 9 cents sharp, 12 ms late",
     .gain_db = "-15",
     .pan = "0.15",
     .fx = {"highpass: {freq: 120}"},
     .n_clips = 1,
     .clips = {CLIP(AT(6, 0), 0, 0, TF_SAMPLES, NULL)}},
    {.name = "BV High",
     .source = "vocals/bv_high.wav",
     .n_channels = 1,
     .what = "\"ooh\" above the chorus",
     .gain_db = "-17",
     .pan = "-0.5",
     .fx = {"highpass: {freq: 150}"},
     .n_sends = 1,
     .sends = {{.to = VERB, .level_db = "-20", .pre_fader = true}},
     .n_clips = 2,
     .clips = {CLIP(AT(6, 0), 0, 0, TF_SECONDS, NULL),
               CLIP(AT(12, 0), AT(2, 0), AT(2, 0), TF_SECONDS, "its last two bars again under verse 2")}},
    {.name = "BV Low",
     .source = "vocals/bv_low.wav",
     .n_channels = 1,
     .what = "\"aah\" below it",
     .gain_db = "-17",
     .pan = "0.5",
     .fx = {"highpass: {freq: 150}"},
     .n_sends = 1,
     .sends = {{.to = VERB, .level_db = "-20", .pre_fader = true}},
     .n_clips = 2,
     .clips = {CLIP(AT(6, 0), 0, 0, TF_SECONDS, NULL), CLIP(AT(12, 0), AT(2, 0), AT(2, 0), TF_SECONDS, NULL)}},

    {.group = "effects",
     .name = "FX Riser",
     .source = "fx/fx_riser.wav",
     .n_channels = 2,
     .what = "noise through a rising band-pass",
     .gain_db = "-16",
     .n_clips = 2,
     .clips = {CLIP(0, 0, 0, TF_SECONDS, "into the verse"),
               CLIP(AT(5, 0), AT(1, 0), AT(1, 0), TF_SECONDS, "its second half, into the chorus")}},
    {.name = "FX Impact",
     .source = "fx/fx_impact.wav",
     .n_channels = 2,
     .what = "falling boom on the downbeats",
     .gain_db = "-12",
     .n_clips = 3,
     .clips = {CLIP(AT(2, 0), 0, 0, TF_SECONDS, NULL), CLIP(AT(6, 0), 0, 0, TF_SECONDS, NULL),
               CLIP(AT(14, 0), 0, 0, TF_TIMECODE, NULL)}},
    {.name = "FX Ambience",
     .source = "fx/fx_ambience.wav",
     .n_channels = 2,
     .what = "night road, a car passing left to right at 0:28",
     .gain_auto = {4,
                   {{0, "-60"}, {MS(3000), "-20"}, {AT(14, 0), "-20"}, {SONG, "-inf"}},
                   "fades in, and out to silence over the last chord"}},
    {.name = "FX Vinyl",
     .source = "fx/fx_vinyl.wav",
     .n_channels = 2,
     .what = "crackle: a 44.1 kHz loop, resampled",
     .gain_db = "-18",
     .n_clips = 3,
     .clips = {{.at = 0, .form = TF_SECONDS, .note = "the intro", .fade_in = {MS(1200), true}},
               {.at = VINYL_LEN - MS(500),
                .offset = MS(1200),
                .length = VINYL_LEN - MS(1200),
                .form = TF_MILLISECONDS,
                .note = "looped: crossfades over the first",
                .crossfade = MS(500),
                .fade_out = {MS(2400), false}},
               {.at = AT(14, 0),
                .length = BAR,
                .form = TF_TIMECODE,
                .note = "under the last chord",
                .fade_in = {MS(600), false},
                .fade_out = {MS(1200), true}}}},
};

typedef struct {
    const char *name;
    const char *channels; /* as written */
    const char *output;   /* a bus or master */
    const char *gain_db;  /* NULL: 0 dB, key omitted */
    const char *what;     /* trailing comment */
    const char *fx[2];    /* insert chain as in track_spec_t; NULL-terminated */
} bus_spec_t;

static const bus_spec_t k_buses[] = {
    {DRUM_BUS,
     "stereo",
     MUSIC_BUS,
     "-1",
     "every drum track; nested in the Music Bus",
     {"limiter: {ceiling_db: -6, release_ms: 40, lookahead_ms: 5}"}},
    {MUSIC_BUS,
     "stereo",
     "master",
     NULL,
     "the Drum Bus, bass, keys and guitars: shared dynamics",
     {"compressor: {threshold_db: -12, ratio: 2, attack_ms: 20, release_ms: 150, knee_db: 6}"}},
    {VERB,
     "stereo",
     "master",
     "-6",
     "an aux reverb fed by sends",
     {"reverb: {decay_s: 1.8, predelay_ms: 20, damping: 0.5, mix: 1}"}},
};

/* The master bus chain: applied to mixes with `master: apply` only (stems and
 * the null-test reference bypass it, output.master's default). */
static const char *const k_master_fx[] = {"limiter: {ceiling_db: -1, lookahead_ms: 5, release_ms: 60}", NULL};

typedef struct {
    const char *name;
    const char *tracks[10]; /* patterns, NULL-terminated */
} stem_spec_t;

static const stem_spec_t k_stems[] = {
    {"Drums", {"Kick *", "Snare *", "Hats", "Tom *", "Clap", "Machine *", "OH", "Room", NULL}},
    {"Bass", {"Bass *", NULL}},
    {"Keys", {"Pad", "Keys *", "Arp", "Lead Synth", NULL}},
    {"Guitars", {"Gtr *", NULL}},
    {"Vocals", {"Vox *", "BV *", NULL}},
    {"FX", {"FX *", NULL}},
};

typedef struct {
    const char *name;
    const char *what;      /* trailing comment */
    const char *exclude;   /* a stem left out, or NULL */
    const char *gain_stem; /* a stem with a gains_db entry, or NULL */
    const char *gain_db;   /* its gain, as written */
    bool master_apply;     /* `master: apply`: through the master chain */
} mix_spec_t;

static const mix_spec_t k_mixes[] = {
    {"Instrumental", "everything but the vocals (and their Verb sends)", "Vocals", NULL, NULL, false},
    {"Vocal Up", "the vocals 1.5 dB up", NULL, "Vocals", "1.5", false},
    {"Full Mix", "every stem through the master limiter", NULL, NULL, NULL, true},
};

static void s_format_time(char *buf, size_t n_bytes, int64_t frames, tform_t form)
{
    if (form == TF_SAMPLES || frames == 0) {
        snprintf(buf, n_bytes, "%lld", (long long)frames);
        return;
    }
    if (frames % 48 != 0)
        s_fail("internal error: %lld frames is not a whole millisecond", (long long)frames);
    long long ms = frames / 48;
    if (form == TF_MILLISECONDS) {
        snprintf(buf, n_bytes, "%lldms", ms);
        return;
    }
    if (form == TF_TIMECODE) {
        snprintf(buf, n_bytes, "%lld:%02lld.%03lld", ms / 60000, ms / 1000 % 60, ms % 1000);
        return;
    }
    char frac[8] = "";
    if (ms % 1000) {
        snprintf(frac, sizeof frac, ".%03lld", ms % 1000);
        for (size_t i = strlen(frac); i > 0 && frac[i - 1] == '0'; i--)
            frac[i - 1] = '\0';
    }
    snprintf(buf, n_bytes, "%lld%ss", ms / 1000, frac);
}

/* `key: [[t, v], ...]` at `indent` spaces, times in seconds. */
static void s_yaml_points(sb_t *y, int indent, const char *key, const auto_spec_t *a)
{
    s_sb_printf(y, "%*s%s: [", indent, "", key);
    for (int i = 0; i < a->n; i++) {
        char t[32];
        s_format_time(t, sizeof t, a->p[i].t, TF_SECONDS);
        s_sb_printf(y, "%s[%s, %s]", i ? ", " : "", t, a->p[i].value);
    }
    s_sb_printf(y, "]");
    if (a->note)
        s_sb_printf(y, "  # %s", a->note);
    s_sb_printf(y, "\n");
}

/* `key: T` or `key: {length: T, shape: equal_power}` of a clip. */
static void s_yaml_fade(sb_t *y, const char *key, const fade_spec_t *f, tform_t form)
{
    char len[32];
    if (!f->length)
        return;
    s_format_time(len, sizeof len, f->length, form);
    if (f->equal_power)
        s_sb_printf(y, "        %s: {length: %s, shape: equal_power}\n", key, len);
    else
        s_sb_printf(y, "        %s: %s\n", key, len);
}

/* `fx:` and its list at `indent` spaces; nothing for an empty chain. */
static void s_yaml_fx(sb_t *y, int indent, const char *const *fx, size_t n_max)
{
    if (!fx[0])
        return;
    s_sb_printf(y, "%*sfx:\n", indent, "");
    for (size_t i = 0; i < n_max && fx[i]; i++)
        s_sb_printf(y, "%*s  - %s\n", indent, "", fx[i]);
}

static void s_yaml_track(sb_t *y, const track_spec_t *t)
{
    s_sb_printf(y, "  - name: %s", t->name);
    if (t->what)
        s_sb_printf(y, "%*s# %s", (int)(16 - strlen(t->name)) > 1 ? (int)(16 - strlen(t->name)) : 1, "", t->what);
    s_sb_printf(y, "\n");
    if (t->n_clips == 0) {
        s_sb_printf(y, "    source: %s\n", t->source);
    } else {
        s_sb_printf(y, "    clips:\n");
        for (int c = 0; c < t->n_clips; c++) {
            const clip_spec_t *cl = &t->clips[c];
            char at[32], off[32], len[32], xf[32];
            /* a timecode for the timeline position, milliseconds within the source */
            tform_t inner = cl->form == TF_TIMECODE ? TF_MILLISECONDS : cl->form;
            s_format_time(at, sizeof at, cl->at, cl->form);
            s_format_time(off, sizeof off, cl->offset, inner);
            s_format_time(len, sizeof len, cl->length, inner);
            /* fades and crossfades in milliseconds (or samples) */
            tform_t fades = cl->form == TF_SAMPLES ? TF_SAMPLES : TF_MILLISECONDS;
            s_format_time(xf, sizeof xf, cl->crossfade, fades);
            s_sb_printf(y, "      - source: %s", t->source);
            if (cl->note)
                s_sb_printf(y, "%*s# %s", (int)(26 - strlen(t->source)), "", cl->note);
            s_sb_printf(y, "\n        at: %s\n", at);
            if (cl->offset)
                s_sb_printf(y, "        offset: %s\n", off);
            if (cl->length)
                s_sb_printf(y, "        length: %s\n", len);
            if (cl->channel)
                s_sb_printf(y, "        channel: %d\n", cl->channel);
            if (cl->crossfade)
                s_sb_printf(y, "        crossfade: %s\n", xf);
            s_yaml_fade(y, "fade_in", &cl->fade_in, fades);
            s_yaml_fade(y, "fade_out", &cl->fade_out, fades);
        }
    }
    if (t->gain_db)
        s_sb_printf(y, "    gain_db: %s\n", t->gain_db);
    if (t->pan)
        s_sb_printf(y, "    pan: %s\n", t->pan);
    if (t->invert)
        s_sb_printf(y, "    polarity: invert\n");
    if (t->mute)
        s_sb_printf(y, "    mute: true\n");
    if (t->output)
        s_sb_printf(y, "    output: %s\n", t->output);
    s_yaml_fx(y, 4, t->fx, N_OF(t->fx));
    if (t->n_sends) {
        s_sb_printf(y, "    sends:\n");
        for (int i = 0; i < t->n_sends; i++) {
            const send_spec_t *sd = &t->sends[i];
            s_sb_printf(y, "      - to: %s", sd->to);
            if (sd->note)
                s_sb_printf(y, "%*s# %s", (int)(20 - strlen(sd->to)), "", sd->note);
            s_sb_printf(y, "\n");
            if (sd->level_db)
                s_sb_printf(y, "        level_db: %s\n", sd->level_db);
            if (sd->pre_fader)
                s_sb_printf(y, "        pre_fader: true\n");
            if (sd->level.n) {
                s_sb_printf(y, "        automation:\n");
                s_yaml_points(y, 10, "level_db", &sd->level);
            }
        }
    }
    if (t->gain_auto.n || t->pan_auto.n) {
        s_sb_printf(y, "    automation:\n");
        if (t->gain_auto.n)
            s_yaml_points(y, 6, "gain_db", &t->gain_auto);
        if (t->pan_auto.n)
            s_yaml_points(y, 6, "pan", &t->pan_auto);
    }
}

static void s_example_yaml(sb_t *y)
{
    size_t n_tracks = N_OF(k_tracks), n_mono = 0, n_sources = 0;
    for (size_t i = 0; i < n_tracks; i++) {
        n_mono += k_tracks[i].n_channels == 1;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(k_tracks[k].source, k_tracks[i].source) == 0;
        n_sources += !seen;
    }
    s_sb_printf(y, "%s",
                "# Night Drive: the example session bundled with stemfarm.\n"
                "#\n"
                "# Written by `build/stemfarm-gen example configs/example` (configs/generate.c),\n"
                "# which also synthesises the sources into media/ (git-ignored). The generator\n"
                "# writes exactly this file and refuses to overwrite a different one: change\n"
                "# configs/generate.c, not this file.\n"
                "#\n"
                "# Synthwave in A minor, 100 BPM, 4/4. 15 bars, 36 s:\n"
                "#   0:00 intro (Am F)   0:04.8 verse   0:14.4 chorus   0:24 verse 2   0:33.6 last chord\n"
                "#   verse and chorus: Am F C G, one chord a bar.\n");
    s_sb_printf(y,
                "# %zu tracks (%zu mono, %zu stereo) from %zu sources, 24-bit WAV at 48 kHz except\n"
                "# fx/fx_vinyl.wav, a 44.1 kHz sample (resampled into .stemfarm-cache/ when the\n"
                "# session loads). drums/machine.wav has 4 channels: its tracks pick one each.\n"
                "# Six stems cover every track once. Times are written in every form the\n"
                "# format accepts.\n"
                "#\n"
                "# The mixing graph (a bus sums what feeds it, runs its effects, then its fader):\n"
                "#   drum tracks -> Drum Bus (look-ahead limiter) -> Music Bus -> master\n"
                "#   bass, keys, guitars -> Music Bus (compressor);  vocals, FX -> master\n"
                "#   Verb, an aux with a reverb -> master, fed by sends: the lead and\n"
                "#   backing vocals (pre-fader) and the snare (post-fader)\n"
                "#   kick, snare, bass and vocals have high-pass/EQ inserts, the lead\n"
                "#   vocal a compressor; the master a limiter, for the Full Mix only\n"
                "# A stem is its tracks soloed in place, through every bus they reach. The\n"
                "# Music Bus compressor, fed by four stems, runs as shared dynamics (each\n"
                "# stem's share gets the gain the full mix gets there), so the stems still\n"
                "# sum back to the full mix (output.null_test checks it). Stems bypass the\n"
                "# master chain (the default output.master: bypass).\n"
                "version: 1\n"
                "\n"
                "session:\n"
                "  name: Night Drive\n"
                "  sample_rate: 48000\n"
                "  media_root: media\n"
                "\n"
                "output:\n"
                "  format: wav\n"
                "  sample_format: pcm24\n"
                "  name: \"{session}_{stem}\"\n"
                "  null_test: true\n"
                "\n"
                "master:\n"
                "  channels: stereo\n",
                n_tracks, n_mono, n_tracks - n_mono, n_sources);
    s_yaml_fx(y, 2, k_master_fx, N_OF(k_master_fx));
    s_sb_printf(y, "\nbuses:\n");
    for (size_t i = 0; i < N_OF(k_buses); i++) {
        const bus_spec_t *b = &k_buses[i];
        s_sb_printf(y, "  - name: %s%*s# %s\n    channels: %s\n    output: %s\n", b->name, (int)(16 - strlen(b->name)),
                    "", b->what, b->channels, b->output);
        if (b->gain_db)
            s_sb_printf(y, "    gain_db: %s\n", b->gain_db);
        s_yaml_fx(y, 4, b->fx, N_OF(b->fx));
    }
    s_sb_printf(y, "\ntracks:\n");
    for (size_t i = 0; i < n_tracks; i++) {
        if (k_tracks[i].group)
            s_sb_printf(y, "%s  # ---- %s\n", i ? "\n" : "", k_tracks[i].group);
        s_yaml_track(y, &k_tracks[i]);
    }
    s_sb_printf(y, "\nstems:\n");
    for (size_t i = 0; i < N_OF(k_stems); i++) {
        s_sb_printf(y, "  - name: %s\n    tracks: [", k_stems[i].name);
        for (size_t k = 0; k_stems[i].tracks[k]; k++)
            s_sb_printf(y, "%s\"%s\"", k ? ", " : "", k_stems[i].tracks[k]);
        s_sb_printf(y, "]\n");
    }
    s_sb_printf(y, "\nmixes:                  # alternate mixes built from the stems\n");
    for (size_t i = 0; i < N_OF(k_mixes); i++) {
        const mix_spec_t *m = &k_mixes[i];
        s_sb_printf(y, "  - name: %s%*s# %s\n", m->name, (int)(16 - strlen(m->name)), "", m->what);
        if (m->exclude)
            s_sb_printf(y, "    exclude: [%s]\n", m->exclude);
        if (m->gain_stem)
            s_sb_printf(y, "    gains_db: {%s: %s}\n", m->gain_stem, m->gain_db);
        if (m->master_apply)
            s_sb_printf(y, "    master: apply\n");
    }
    s_sb_printf(y, "\nmultitracks: false      # no consolidated per-track files\n");
}

/* A bus of k_buses, or "master" when master_ok. */
static bool s_bus_known(const char *name, bool master_ok)
{
    if (master_ok && strcmp(name, "master") == 0)
        return true;
    for (size_t i = 0; i < N_OF(k_buses); i++)
        if (strcmp(k_buses[i].name, name) == 0)
            return true;
    return false;
}

static bool s_stem_known(const char *name)
{
    for (size_t i = 0; i < N_OF(k_stems); i++)
        if (strcmp(k_stems[i].name, name) == 0)
            return true;
    return false;
}

static void s_auto_check(const auto_spec_t *a, const char *what, const char *owner)
{
    for (int i = 0; i < a->n; i++)
        if (a->p[i].t < 0 || a->p[i].t > SONG || (i && a->p[i].t < a->p[i - 1].t))
            s_fail("internal error: %s automation of '%s': point %d out of order or outside the song", what, owner,
                   i + 1);
}

/* Every entry of an insert chain is `effect: {...}` of a known effect
 * (stemfarm validates the parameters). */
static void s_fx_check(const char *const *fx, size_t n_max, const char *owner)
{
    static const char *const known[] = {"gain",    "eq",    "highpass", "lowpass", "compressor",
                                        "limiter", "delay", "reverb",   "convolve"};
    for (size_t i = 0; i < n_max && fx[i]; i++) {
        size_t len = strlen(fx[i]);
        const char *colon = strstr(fx[i], ": {");
        bool ok = colon && len > 0 && fx[i][len - 1] == '}';
        bool hit = false;
        for (size_t k = 0; ok && k < N_OF(known); k++)
            hit =
                hit || ((size_t)(colon - fx[i]) == strlen(known[k]) && strncmp(fx[i], known[k], strlen(known[k])) == 0);
        if (!hit)
            s_fail("internal error: effect %zu of '%s' is not `effect: {params}`: '%s'", i + 1, owner, fx[i]);
    }
}

/* The tables against the media actually written. */
static void s_example_check(const gen_t *g)
{
    s_fx_check(k_master_fx, N_OF(k_master_fx), "master");
    for (size_t i = 0; i < N_OF(k_buses); i++)
        if (!s_bus_known(k_buses[i].output, true) || strcmp(k_buses[i].output, k_buses[i].name) == 0)
            s_fail("internal error: bus '%s' outputs to '%s'", k_buses[i].name, k_buses[i].output);
    for (size_t i = 0; i < N_OF(k_buses); i++)
        s_fx_check(k_buses[i].fx, N_OF(k_buses[i].fx), k_buses[i].name);
    for (size_t i = 0; i < N_OF(k_mixes); i++)
        if ((k_mixes[i].exclude && !s_stem_known(k_mixes[i].exclude)) ||
            (k_mixes[i].gain_stem && !s_stem_known(k_mixes[i].gain_stem)))
            s_fail("internal error: mix '%s' names an unknown stem", k_mixes[i].name);
    for (size_t i = 0; i < N_OF(k_tracks); i++) {
        const track_spec_t *t = &k_tracks[i];
        s_fx_check(t->fx, N_OF(t->fx), t->name);
        const media_rec_t *m = NULL;
        for (size_t k = 0; k < g->n_media; k++)
            if (strcmp(g->media[k].rel, t->source) == 0)
                m = &g->media[k];
        if (!m)
            s_fail("internal error: track '%s' uses '%s', which was not written", t->name, t->source);
        if (!t->gain_db == !t->gain_auto.n)
            s_fail("internal error: track '%s' needs a gain or gain automation (not both)", t->name);
        if (t->pan && t->pan_auto.n)
            s_fail("internal error: track '%s' has a pan and pan automation", t->name);
        s_auto_check(&t->gain_auto, "gain", t->name);
        s_auto_check(&t->pan_auto, "pan", t->name);
        if (t->output && !s_bus_known(t->output, true))
            s_fail("internal error: track '%s' outputs to unknown bus '%s'", t->name, t->output);
        for (int k = 0; k < t->n_sends; k++) {
            if (!s_bus_known(t->sends[k].to, false))
                s_fail("internal error: track '%s' sends to unknown bus '%s'", t->name, t->sends[k].to);
            if (!t->sends[k].level_db == !t->sends[k].level.n)
                s_fail("internal error: send %d of '%s' needs a level or automation (not both)", k + 1, t->name);
            s_auto_check(&t->sends[k].level, "send level", t->name);
        }
        if (t->n_clips == 0 && (m->n_frames != SONG || m->n_channels != t->n_channels))
            s_fail("internal error: '%s' is not a song-length source of %d channels", t->source, t->n_channels);
        int64_t prev_end = -1;
        for (int c = 0; c < t->n_clips; c++) {
            const clip_spec_t *cl = &t->clips[c];
            int delivers = cl->channel ? 1 : m->n_channels;
            if (cl->channel < 0 || cl->channel > m->n_channels || delivers != t->n_channels ||
                (!cl->channel && m->n_channels > 2))
                s_fail("internal error: clip %d of '%s': '%s' has %d channels", c + 1, t->name, t->source,
                       m->n_channels);
            int64_t len = cl->length ? cl->length : m->n_frames - cl->offset;
            if (cl->offset < 0 || len <= 0 || cl->offset + len > m->n_frames)
                s_fail("internal error: clip %d of '%s' lies outside '%s'", c + 1, t->name, t->source);
            if (cl->fade_in.length + cl->fade_out.length > len || cl->crossfade > len)
                s_fail("internal error: the fades of clip %d of '%s' do not fit", c + 1, t->name);
            /* clips meet, or overlap by exactly their crossfade */
            if (cl->crossfade ? c == 0 || prev_end - cl->at != cl->crossfade : cl->at < prev_end)
                s_fail("internal error: clips of '%s' overlap other than by a crossfade", t->name);
            if (cl->at + len > SONG)
                s_fail("internal error: clip %d of '%s' ends after the song", c + 1, t->name);
            prev_end = cl->at + len;
        }
        int n_stems = 0;
        for (size_t s = 0; s < N_OF(k_stems); s++) {
            bool hit = false;
            for (size_t k = 0; k_stems[s].tracks[k]; k++)
                hit = hit || s_glob(k_stems[s].tracks[k], t->name);
            n_stems += hit;
        }
        if (n_stems != 1)
            s_fail("internal error: track '%s' is in %d stems", t->name, n_stems);
    }
}

static int s_cmd_example(const char *dir, bool media_only)
{
    s_rate = 48000;
    char yaml_path[4096];
    s_path(yaml_path, sizeof yaml_path, dir, "session.yaml");
    sb_t yaml = {0}, old = {0};
    s_example_yaml(&yaml);
    bool write_yaml = false;
    if (!media_only) {
        if (!s_read_text(yaml_path, &old))
            write_yaml = true;
        else if (old.n != yaml.n || memcmp(old.s, yaml.s, yaml.n) != 0)
            s_fail("'%s' differs from the session this generator writes; not overwriting it "
                   "(remove it to regenerate, or pass --media-only)",
                   yaml_path);
    }

    gen_t *g = s_calloc(1, sizeof *g);
    g->dir = dir;
    s_mkdirs(dir);
    s_gen_drums(g);
    s_gen_machine(g);
    s_gen_bass(g);
    s_gen_pad(g);
    s_gen_keys(g);
    s_gen_guitars(g);
    s_gen_lead_and_vocals(g);
    s_gen_fx(g);
    s_gen_vinyl(g);
    s_example_check(g);
    if (write_yaml)
        s_write_text(yaml_path, &yaml);

    printf("stemfarm-gen: wrote %zu sources (%.1f MB) to %s/media; %s %s\n", g->n_media, (double)g->n_bytes / 1e6, dir,
           yaml_path,
           media_only   ? "not touched"
           : write_yaml ? "written"
                        : "unchanged");
    free(g);
    free(yaml.s);
    free(old.s);
    return 0;
}

/* =========================================================================
 * bench: N mono tracks of band-limited noise and a tone, K stems
 * ========================================================================= */

static int s_digits(long v)
{
    int d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

/* The per-track insert chain of the effects bench: high-pass, two EQ bands,
 * compressor; every other track also sends to a reverb bus. */
static const char k_bench_fx[] = ", fx: [{highpass: {freq: 80}}, {eq: {type: peak, freq: 2500, gain_db: 2, q: 1}}, "
                                 "{eq: {type: highshelf, freq: 8000, gain_db: -3, q: 0.707}}, "
                                 "{compressor: {threshold_db: -24, ratio: 3, attack_ms: 10, release_ms: 120}}]";

/* The channel strip of bench/suite.sh: high-pass, one peaking EQ, a
 * compressor. k_bench_eq is the same strip without the compressor, which other
 * mixers can reproduce sample for sample (their compressors are other
 * designs), so it is what their outputs are checked against. */
static const char k_bench_eq[] = ", fx: [{highpass: {freq: 80}}, {eq: {type: peak, freq: 2500, gain_db: 2, q: 1}}]";
static const char k_bench_strip[] = ", fx: [{highpass: {freq: 80}}, {eq: {type: peak, freq: 2500, gain_db: 2, q: 1}}, "
                                    "{compressor: {threshold_db: -24, ratio: 3, attack_ms: 10, release_ms: 120}}]";

/* What `bench` writes besides session.yaml; every file has the stems of
 * session.yaml and reads the same media. */
typedef struct {
    bool fx;          /* session-fx.yaml: k_bench_fx, every other track sends to a reverb */
    bool strip;       /* session-strip.yaml (k_bench_strip) and session-eq.yaml (k_bench_eq); no buses */
    bool verbs;       /* session-verbs.yaml: k_bench_strip and sends to two reverb buses */
    double repeat_to; /* > 0: session-long.yaml, each source repeated as clips up to this many seconds */
} bench_opts_t;

/* The header every bench session file shares; `what` is its first comment line. */
static void s_bench_head(sb_t *y, const char *what, const char *name, long n_tracks, double seconds, long rate,
                         const char *buses)
{
    s_sb_printf(y,
                "# %s\n"
                "version: 1\n\nsession:\n  name: %s %ldx%gs\n  sample_rate: %ld\n  media_root: media\n\n"
                "output:\n  format: wav\n  sample_format: pcm24\n  name: \"{session}_{stem}\"\n\n"
                "master:\n  channels: stereo\n\n%stracks:\n",
                what, name, n_tracks, seconds, rate, buses);
}

/* session-long.yaml's track: `clips:` of the whole source back to back from
 * 0 until repeat_to seconds, the last one cut to fit. */
static void s_bench_long_track(sb_t *y, const char *name, const char *rel, double gain, double pan, int64_t n_src,
                               int64_t n_long)
{
    s_sb_printf(y, "  - name: %s\n    gain_db: %.1f\n    pan: %.2f\n    clips:\n", name, gain, pan);
    for (int64_t at = 0; at < n_long; at += n_src) {
        int64_t len = n_long - at < n_src ? n_long - at : n_src;
        s_sb_printf(y, "      - {source: %s, at: %lld, length: %lld}\n", rel, (long long)at, (long long)len);
    }
}

static int s_cmd_bench(const char *dir, long n_tracks, double seconds, long n_stems, long rate, const bench_opts_t *o)
{
    const bool fx = o->fx;
    s_rate = (int)rate;
    int64_t n_frames = (int64_t)floor(seconds * (double)rate + 0.5);
    if (n_frames < 1)
        s_usage_error("--seconds %g is shorter than one frame at %ld Hz", seconds, rate);
    char media[4096], yaml_path[4096];
    s_path(media, sizeof media, dir, "media");
    s_path(yaml_path, sizeof yaml_path, dir, "session.yaml");
    s_mkdirs(media);
    /* an old session.yaml would claim media that are being replaced */
    if (remove(yaml_path) != 0 && errno != ENOENT)
        s_fail("cannot remove '%s': %s", yaml_path, strerror(errno));

    /* A quarter-amplitude sine table for the tones (2^20 = -18 dBFS). */
    enum { TABLE_BITS = 12 };
    static int32_t table[1 << TABLE_BITS];
    for (int i = 0; i < (1 << TABLE_BITS); i++)
        table[i] = (int32_t)floor(1048576.0 * s_sin2pi((double)i / (1 << TABLE_BITS)) + 0.5);

    int wt = s_digits(n_tracks) < 3 ? 3 : s_digits(n_tracks), ws = s_digits(n_stems) < 2 ? 2 : s_digits(n_stems);
    /* y: the session; z (with --fx): the same session with the effects on,
     * session-fx.yaml, over the same media. */
    sb_t y = {0}, z = {0}, strip = {0}, eq = {0}, verbs = {0}, lng = {0};
    if (o->strip) {
        s_bench_head(&strip, "stemfarm bench: session.yaml with high-pass, peaking EQ and compressor on every track",
                     "Bench Strip", n_tracks, seconds, rate, "");
        s_bench_head(&eq, "stemfarm bench: session.yaml with high-pass and peaking EQ on every track", "Bench EQ",
                     n_tracks, seconds, rate, "");
    }
    if (o->verbs)
        s_bench_head(&verbs,
                     "stemfarm bench: high-pass, peaking EQ and compressor on every track, sends to two reverbs",
                     "Bench Verbs", n_tracks, seconds, rate,
                     "buses:\n  - {name: Room, fx: [{reverb: {decay_s: 0.8, predelay_ms: 5, mix: 1}}]}\n"
                     "  - {name: Hall, fx: [{reverb: {decay_s: 2.5, predelay_ms: 20, mix: 1}}]}\n\n");
    int64_t n_long = o->repeat_to > 0 ? (int64_t)floor(o->repeat_to * (double)rate + 0.5) : 0;
    if (n_long > 0)
        s_bench_head(&lng, "stemfarm bench: session.yaml's sources repeated as clips along the whole length",
                     "Bench Long", n_tracks, o->repeat_to, rate, "");
    if (fx)
        s_sb_printf(&z,
                    "# stemfarm effects bench: session.yaml with high-pass, 2 EQ bands and a compressor on every\n"
                    "# track and a reverb on the bus every other track sends to.\n"
                    "version: 1\n\nsession:\n  name: Bench FX %ldx%gs\n  sample_rate: %ld\n  media_root: media\n\n"
                    "output:\n  format: wav\n  sample_format: pcm24\n  name: \"{session}_{stem}\"\n\n"
                    "master:\n  channels: stereo\n\nbuses:\n  - {name: Verb, fx: [{reverb: {decay_s: 2, mix: 1}}]}\n\n"
                    "tracks:\n",
                    n_tracks, seconds, rate);
    s_sb_printf(&y,
                "# stemfarm bench session: %ld mono tracks of %g s, %ld stems, %ld Hz, 24-bit.\n"
                "# Written by `stemfarm-gen bench DIR --tracks %ld --seconds %g --stems %ld --rate %ld`.\n"
                "version: 1\n\n"
                "session:\n  name: Bench %ldx%gs\n  sample_rate: %ld\n  media_root: media\n\n"
                "output:\n  format: wav\n  sample_format: pcm24\n  name: \"{session}_{stem}\"\n\n"
                "master:\n  channels: stereo\n\n%s"
                "tracks:\n",
                n_tracks, seconds, n_stems, rate, n_tracks, seconds, n_stems, rate, n_tracks, seconds, rate,
                fx ? "buses:\n  - {name: Verb}\n\n" : "");

    rng_t r = s_rng(2024);
    for (long i = 0; i < n_tracks; i++) {
        long stem = i * n_stems / n_tracks;
        char rel[64], path[4096];
        if (snprintf(rel, sizeof rel, "t%0*ld.wav", wt, i + 1) >= (int)sizeof rel)
            s_fail("internal error: file name too long");
        s_path(path, sizeof path, media, rel);
        /* 200 tracks at the 96-track levels would clip their stems: the effects bench sits 9 dB lower */
        double gain = (fx ? -12.0 : -3.0) - 0.5 * (double)(s_rng_next(&r) % 19);
        double pan = (double)((long)(s_rng_next(&r) % 37) - 18) / 20.0;
        const char *send = fx && i % 2 ? ", sends: [{to: Verb, level_db: -12}]" : "";
        s_sb_printf(&y, "  - {name: S%0*ld T%0*ld, source: %s, gain_db: %.1f, pan: %.2f%s}\n", ws, stem + 1, wt, i + 1,
                    rel, gain, pan, send);
        if (fx)
            s_sb_printf(&z, "  - {name: S%0*ld T%0*ld, source: %s, gain_db: %.1f, pan: %.2f%s%s}\n", ws, stem + 1, wt,
                        i + 1, rel, gain, pan, k_bench_fx, send);
        if (o->strip) {
            s_sb_printf(&strip, "  - {name: S%0*ld T%0*ld, source: %s, gain_db: %.1f, pan: %.2f%s}\n", ws, stem + 1, wt,
                        i + 1, rel, gain, pan, k_bench_strip);
            s_sb_printf(&eq, "  - {name: S%0*ld T%0*ld, source: %s, gain_db: %.1f, pan: %.2f%s}\n", ws, stem + 1, wt,
                        i + 1, rel, gain, pan, k_bench_eq);
        }
        /* 9 dB lower for the reason of --fx: many tracks per stem, plus two reverb returns */
        if (o->verbs)
            s_sb_printf(&verbs,
                        "  - {name: S%0*ld T%0*ld, source: %s, gain_db: %.1f, pan: %.2f%s, "
                        "sends: [{to: Room, level_db: -14}, {to: Hall, level_db: -18}]}\n",
                        ws, stem + 1, wt, i + 1, rel, gain - 9.0, pan, k_bench_strip);
        if (n_long > 0) {
            char name[64];
            if (snprintf(name, sizeof name, "S%0*ld T%0*ld", ws, stem + 1, wt, i + 1) >= (int)sizeof name)
                s_fail("internal error: track name too long");
            s_bench_long_track(&lng, name, rel, gain, pan, n_frames, n_long);
        }

        /* Integer synthesis: xorshift32 noise through two one-pole
         * low-passes (cut-off varying per track) plus a table sine. */
        uint32_t x = 0x9E3779B9u ^ (uint32_t)(i * 0x85EBCA6Bu);
        if (x == 0)
            x = 1;
        int32_t lp1 = 0, lp2 = 0;
        uint32_t ph = 0, inc = (uint32_t)floor(55.0 * pow(2.0, (double)(i % 36) / 12.0) / (double)rate * 4294967296.0);
        wav_t w;
        s_wav_open(&w, path, 1, 65536);
        for (int64_t at = 0; at < n_frames; at += (int64_t)w.n_chunk) {
            int64_t left = n_frames - at;
            size_t n = left < (int64_t)w.n_chunk ? (size_t)left : w.n_chunk;
            /* why the switch: a constant divisor compiles to shifts, a
             * variable one to a slow idiv per sample */
#define BENCH_LOOP(DIV)                                                                                                \
    for (size_t k = 0; k < n; k++) {                                                                                   \
        x ^= x << 13;                                                                                                  \
        x ^= x >> 17;                                                                                                  \
        x ^= x << 5;                                                                                                   \
        int32_t noise = (int32_t)(x >> 11) - (1 << 20);                                                                \
        lp1 += (noise - lp1) / (DIV);                                                                                  \
        lp2 += (lp1 - lp2) / (DIV);                                                                                    \
        w.chunk[k] = (lp2 + table[ph >> (32 - TABLE_BITS)]) * 256;                                                     \
        ph += inc;                                                                                                     \
    }
            switch (i % 4) {
            case 0: BENCH_LOOP(2) break;
            case 1: BENCH_LOOP(4) break;
            case 2: BENCH_LOOP(8) break;
            default: BENCH_LOOP(16) break;
            }
#undef BENCH_LOOP
            s_wav_write(&w, n);
        }
        s_wav_close(&w);
    }
    s_sb_printf(&y, "\nstems:\n");
    for (long s = 0; s < n_stems; s++)
        s_sb_printf(&y, "  - {name: Stem %0*ld, tracks: [\"S%0*ld *\"]}\n", ws, s + 1, ws, s + 1);
    const char *stems = strstr(y.s, "\nstems:\n");
    struct {
        sb_t *text;
        const char *name;
    } extra[] = {{&z, "session-fx.yaml"},
                 {&strip, "session-strip.yaml"},
                 {&eq, "session-eq.yaml"},
                 {&verbs, "session-verbs.yaml"},
                 {&lng, "session-long.yaml"}};
    for (size_t e = 0; e < N_OF(extra); e++) {
        if (!extra[e].text->s)
            continue;
        char extra_path[4096];
        s_path(extra_path, sizeof extra_path, dir, extra[e].name);
        s_sb_printf(extra[e].text, "%s", stems);
        s_write_text(extra_path, extra[e].text);
        free(extra[e].text->s);
    }

    /* Last, so that a session.yaml means the media are complete. */
    s_write_text(yaml_path, &y);
    free(y.s);
    printf("stemfarm-gen: wrote %ld tracks x %g s (%.1f MB) and %s\n", n_tracks, seconds,
           (double)n_tracks * (double)n_frames * 3.0 / 1e6, yaml_path);
    return 0;
}

/* ---- command line ------------------------------------------------------- */

static const char k_usage[] = "usage:\n"
                              "  stemfarm-gen example DIR [--media-only]\n"
                              "      write the example session \"Night Drive\": DIR/session.yaml and DIR/media/*.wav\n"
                              "      (an existing session.yaml is kept if identical, refused if different;\n"
                              "      --media-only writes the media and leaves session.yaml alone)\n"
                              "  stemfarm-gen bench DIR --tracks N --seconds S --stems K [--rate R] [--fx]\n"
                              "                  [--strip] [--verbs] [--repeat-to T]\n"
                              "      write a bench session: N mono 24-bit tracks of S seconds in K stems;\n"
                              "      --fx: also session-fx.yaml, the same with effects on every track and a\n"
                              "      reverb bus (session.yaml then has the same routing, effects off)\n"
                              "      --strip: also session-strip.yaml (high-pass, peaking EQ, compressor on every\n"
                              "      track; the routing of session.yaml) and session-eq.yaml (the same without\n"
                              "      the compressor)\n"
                              "      --verbs: also session-verbs.yaml, the --strip chain on every track and\n"
                              "      sends to two reverb buses (tracks 9 dB lower)\n"
                              "      --repeat-to T: also session-long.yaml, every source repeated as clips\n"
                              "      until T seconds (a long session over short media)\n"
                              "      (1 <= K <= N <= 10000, 0 < S <= 86400, R from 8000 to 384000, default 48000)\n"
                              "exit status: 0 done, 1 failed, 2 bad arguments\n";

static long s_parse_long(const char *opt, const char *text, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi)
        s_usage_error("%s needs a whole number from %ld to %ld, got '%s'", opt, lo, hi, text);
    return v;
}

/* Matches `--name VALUE` or `--name=VALUE` at argv[*i]; advances *i. */
static const char *s_opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc)
        s_usage_error("%s needs a value", name);
    return argv[++*i];
}

int main(int argc, char **argv)
{
    if (argc < 2)
        s_usage_error("needs a command: example or bench");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(k_usage, stdout);
        return 0;
    }
    bool example = strcmp(cmd, "example") == 0;
    if (!example && strcmp(cmd, "bench") != 0)
        s_usage_error("unknown command '%s' (expected example or bench)", cmd);

    const char *dir = NULL, *v;
    bool media_only = false;
    bench_opts_t bo = {0};
    long n_tracks = -1, n_stems = -1, rate = 48000;
    double seconds = -1.0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(k_usage, stdout);
            return 0;
        }
        if (example && strcmp(a, "--media-only") == 0) {
            media_only = true;
        } else if (!example && strcmp(a, "--fx") == 0) {
            bo.fx = true;
        } else if (!example && strcmp(a, "--strip") == 0) {
            bo.strip = true;
        } else if (!example && strcmp(a, "--verbs") == 0) {
            bo.verbs = true;
        } else if (!example && (v = s_opt_value(argc, argv, &i, "--repeat-to"))) {
            char *end;
            errno = 0;
            bo.repeat_to = strtod(v, &end);
            if (errno || end == v || *end || !(bo.repeat_to > 0.0 && bo.repeat_to <= 86400.0))
                s_usage_error("--repeat-to needs a number of seconds above 0 and at most 86400, got '%s'", v);
        } else if (!example && (v = s_opt_value(argc, argv, &i, "--tracks"))) {
            n_tracks = s_parse_long("--tracks", v, 1, 10000);
        } else if (!example && (v = s_opt_value(argc, argv, &i, "--stems"))) {
            n_stems = s_parse_long("--stems", v, 1, 10000);
        } else if (!example && (v = s_opt_value(argc, argv, &i, "--rate"))) {
            rate = s_parse_long("--rate", v, 8000, 384000);
        } else if (!example && (v = s_opt_value(argc, argv, &i, "--seconds"))) {
            char *end;
            errno = 0;
            seconds = strtod(v, &end);
            if (errno || end == v || *end || !(seconds > 0.0 && seconds <= 86400.0))
                s_usage_error("--seconds needs a number of seconds above 0 and at most 86400, got '%s'", v);
        } else if (a[0] == '-' && a[1] != '\0') {
            s_usage_error("unknown option '%s' for '%s'", a, cmd);
        } else if (dir) {
            s_usage_error("'%s' takes one folder, got '%s' and '%s'", cmd, dir, a);
        } else {
            dir = a;
        }
    }
    if (!dir || !*dir)
        s_usage_error("'%s' needs a folder (DIR)", cmd);
    if (example)
        return s_cmd_example(dir, media_only);
    if (n_tracks < 0)
        s_usage_error("'bench' needs --tracks N");
    if (seconds < 0.0)
        s_usage_error("'bench' needs --seconds S");
    if (n_stems < 0)
        s_usage_error("'bench' needs --stems K");
    if (n_stems > n_tracks)
        s_usage_error("--stems %ld needs at least %ld tracks, got --tracks %ld", n_stems, n_stems, n_tracks);
    if (bo.repeat_to > 0.0 && bo.repeat_to < seconds)
        s_usage_error("--repeat-to %g is shorter than --seconds %g", bo.repeat_to, seconds);
    return s_cmd_bench(dir, n_tracks, seconds, n_stems, rate, &bo);
}
