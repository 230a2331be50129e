/* bench/plainmix.c -- stemfarm-plainmix: the mixer a user would write in an
 * afternoon on libsndfile, as the baseline of bench/suite.sh.
 *
 *   stemfarm-plainmix LIST -o DIR [--part I/N] [--hp FREQ:Q] [--peak FREQ:GAIN_DB:Q]
 *                          [--comp THRESHOLD_DB:RATIO:ATTACK_MS:RELEASE_MS]
 *
 * LIST (written by bench/suite.sh from the session) is lines of
 *   stem NAME                        (the rest of the line; writes DIR/NAME.wav)
 *   track SOURCE.wav GAIN_DB PAN     (mono 24-bit; belongs to the stem above;
 *                                     more fields after these are ignored)
 * --part I/N renders stems I, I + N, I + 2N, ... (0-based), so that N
 * processes share the work. Output: stereo 24-bit WAV per stem.
 *
 * It does what stemfarm does to each sample, so that its stems can be
 * compared with stemfarm's: a track's chain (high-pass, peaking EQ, RBJ
 * cookbook biquads, direct form I in double, each stage rounded to float;
 * then the feed-forward compressor of common/src/fx_dynamics.c, per sample
 * with libm), then gain and the constant-power pan law (L = cos(q pi/2),
 * R = sin(q pi/2), q = (pan + 1)/2) as one float gain per channel, summed
 * into double in session order, rounded to float, quantised to 24 bits. The
 * coefficients come from libm where stemfarm has portable polynomials, so
 * the outputs agree to rounding, not to the bit. What it does not do is what
 * makes stemfarm a product: segments, pre-roll, nodes, verification.
 *
 * Flush-to-zero and denormals-are-zero are set: a filter decaying into
 * denormals would otherwise slow the plain loop by orders of magnitude, and
 * the baseline should be what a careful user writes.
 */
#include <errno.h>
#include <math.h>
#include <sndfile.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#define BLOCK     65536 /* frames per read */
#define MAX_LINE  8192
#define PI        3.14159265358979323846
#define EQ_FLUSH  1e-200 /* as stemfarm's eq: no double denormals in the history */
#define CMP_FLUSH 1e-30  /* as stemfarm's compressor smoother */

typedef struct {
    double b0, b1, b2, a1, a2;
    double x1, x2, y1, y2;
} biquad_t;

typedef struct {
    double thr, slope, lo_lin, a_att, a_rel, y;
} comp_t;

typedef struct {
    char *path;
    double gain_db, pan;
    SNDFILE *snd;
    biquad_t hp, peak;
    comp_t comp;
} track_t;

typedef struct {
    char *name; /* writes DIR/name.wav */
    track_t *tracks;
    size_t n_tracks, cap;
} stem_t;

typedef struct {
    bool hp, peak, comp;
    double hp_freq, hp_q, peak_freq, peak_gain, peak_q;
    double c_thr, c_ratio, c_att, c_rel;
} chain_t;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("stemfarm-plainmix: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q)
        die("out of memory");
    return q;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xrealloc(NULL, n), s, n);
}

/* ---- the chain ------------------------------------------------------------ */

/* RBJ cookbook, Q form of alpha, normalised by a0. */
static biquad_t biquad_highpass(double f, double q, double fs)
{
    double w = 2 * PI * f / fs, cs = cos(w), alpha = sin(w) / (2 * q), a0 = 1 + alpha;
    return (biquad_t){(1 + cs) / 2 / a0, -(1 + cs) / a0, (1 + cs) / 2 / a0, -2 * cs / a0, (1 - alpha) / a0, 0, 0, 0, 0};
}

static biquad_t biquad_peak(double f, double gain_db, double q, double fs)
{
    double w = 2 * PI * f / fs, cs = cos(w), alpha = sin(w) / (2 * q), A = pow(10, gain_db / 40);
    double a0 = 1 + alpha / A;
    return (biquad_t){
        (1 + alpha * A) / a0, -2 * cs / a0, (1 - alpha * A) / a0, -2 * cs / a0, (1 - alpha / A) / a0, 0, 0, 0, 0};
}

static float biquad_step(biquad_t *b, float in)
{
    double x = in, y = b->b0 * x + b->b1 * b->x1 + b->b2 * b->x2 - b->a1 * b->y1 - b->a2 * b->y2;
    if (fabs(y) < EQ_FLUSH)
        y = 0;
    b->x2 = b->x1;
    b->x1 = x;
    b->y2 = b->y1;
    b->y1 = y;
    return (float)y;
}

/* Giannoulis, Massberg & Reiss: hard knee, the smoother on the gain
 * reduction in dB, makeup 0. */
static comp_t comp_new(const chain_t *c, double fs)
{
    return (comp_t){c->c_thr,
                    1 - 1 / c->c_ratio,
                    pow(10, c->c_thr / 20),
                    exp(-1000.0 / (c->c_att * fs)),
                    exp(-1000.0 / (c->c_rel * fs)),
                    0};
}

static float comp_step(comp_t *c, float in)
{
    double p = fabsf(in), xl = 0;
    if (p > c->lo_lin)
        xl = c->slope * (20 * log10(p) - c->thr);
    double a = xl > c->y ? c->a_att : c->a_rel;
    c->y = a * c->y + (1 - a) * xl;
    if (c->y < CMP_FLUSH)
        c->y = 0;
    if (c->y == 0)
        return in;
    return in * (float)pow(10, -c->y / 20);
}

/* ---- one stem ------------------------------------------------------------- */

static void render_stem(stem_t *s, const char *dir, const chain_t *ch)
{
    size_t n_path = strlen(dir) + strlen(s->name) + 6;
    char *path = xrealloc(NULL, n_path);
    snprintf(path, n_path, "%s/%s.wav", dir, s->name);
    int rate = 0;
    sf_count_t n_frames = 0;
    for (size_t t = 0; t < s->n_tracks; t++) {
        track_t *tr = &s->tracks[t];
        SF_INFO info = {0};
        tr->snd = sf_open(tr->path, SFM_READ, &info);
        if (!tr->snd)
            die("cannot open '%s': %s", tr->path, sf_strerror(NULL));
        if (info.channels != 1)
            die("'%s' has %d channels; this mixer takes mono sources", tr->path, info.channels);
        if (rate && info.samplerate != rate)
            die("'%s' is at %d Hz, the others at %d Hz", tr->path, info.samplerate, rate);
        rate = info.samplerate;
        if (info.frames > n_frames)
            n_frames = info.frames;
        if (ch->hp)
            tr->hp = biquad_highpass(ch->hp_freq, ch->hp_q, rate);
        if (ch->peak)
            tr->peak = biquad_peak(ch->peak_freq, ch->peak_gain, ch->peak_q, rate);
        if (ch->comp)
            tr->comp = comp_new(ch, rate);
    }
    if (!s->n_tracks)
        die("stem '%s' has no tracks", s->name);

    SF_INFO oinfo = {.samplerate = rate, .channels = 2, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_24};
    SNDFILE *out = sf_open(path, SFM_WRITE, &oinfo);
    if (!out)
        die("cannot write '%s': %s", path, sf_strerror(NULL));

    float *x = xrealloc(NULL, sizeof(float) * BLOCK);
    double *acc = xrealloc(NULL, sizeof(double) * 2 * BLOCK);
    int *pcm = xrealloc(NULL, sizeof(int) * 2 * BLOCK);
    for (sf_count_t at = 0; at < n_frames; at += BLOCK) {
        size_t n = (size_t)(n_frames - at < BLOCK ? n_frames - at : BLOCK);
        memset(acc, 0, sizeof(double) * 2 * n);
        for (size_t t = 0; t < s->n_tracks; t++) {
            track_t *tr = &s->tracks[t];
            size_t got = (size_t)sf_readf_float(tr->snd, x, (sf_count_t)n);
            for (size_t i = got; i < n; i++)
                x[i] = 0;
            for (size_t i = 0; i < n; i++) {
                float v = x[i];
                if (ch->hp)
                    v = biquad_step(&tr->hp, v);
                if (ch->peak)
                    v = biquad_step(&tr->peak, v);
                if (ch->comp)
                    v = comp_step(&tr->comp, v);
                x[i] = v;
            }
            double g = pow(10, tr->gain_db / 20), q = (1 + tr->pan) / 2;
            float gl = (float)(g * cos(q * PI / 2)), gr = (float)(g * sin(q * PI / 2));
            for (size_t i = 0; i < n; i++) {
                acc[2 * i] += (double)(x[i] * gl);
                acc[2 * i + 1] += (double)(x[i] * gr);
            }
        }
        for (size_t i = 0; i < 2 * n; i++) {
            double v = nearbyint((double)(float)acc[i] * 8388608.0);
            v = v > 8388607.0 ? 8388607.0 : v < -8388608.0 ? -8388608.0 : v;
            pcm[i] = (int)v * 256; /* libsndfile's int is left-justified */
        }
        if (sf_writef_int(out, pcm, (sf_count_t)n) != (sf_count_t)n)
            die("cannot write '%s': %s", path, sf_strerror(out));
    }
    free(x);
    free(acc);
    free(pcm);
    for (size_t t = 0; t < s->n_tracks; t++)
        sf_close(s->tracks[t].snd);
    if (sf_close(out) != 0)
        die("cannot finish '%s'", path);
    free(path);
}

/* ---- command line --------------------------------------------------------- */

static void parse_numbers(const char *opt, const char *text, double *v, int n)
{
    const char *p = text;
    for (int i = 0; i < n; i++) {
        char *end;
        errno = 0;
        v[i] = strtod(p, &end);
        if (errno || end == p || (i + 1 < n ? *end != ':' : *end != '\0'))
            die("%s needs %d numbers separated by ':', got '%s'", opt, n, text);
        p = end + 1;
    }
}

static stem_t *read_list(const char *path, size_t *n_stems)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot read '%s': %s", path, strerror(errno));
    stem_t *stems = NULL;
    size_t n = 0;
    char line[MAX_LINE];
    for (int no = 1; fgets(line, sizeof line, f); no++) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "stem ", 5) == 0) {
            stems = xrealloc(stems, sizeof *stems * (n + 1));
            stems[n++] = (stem_t){.name = xstrdup(line + 5)};
        } else if (strncmp(line, "track ", 6) == 0 && n) {
            char src[MAX_LINE];
            double gain, pan;
            if (sscanf(line + 6, "%8191s %lf %lf", src, &gain, &pan) != 3)
                die("%s:%d: expected 'track PATH GAIN_DB PAN'", path, no);
            stem_t *s = &stems[n - 1];
            if (s->n_tracks == s->cap) {
                s->cap = s->cap ? 2 * s->cap : 16;
                s->tracks = xrealloc(s->tracks, sizeof *s->tracks * s->cap);
            }
            s->tracks[s->n_tracks++] = (track_t){.path = xstrdup(src), .gain_db = gain, .pan = pan};
        } else if (line[0] && line[0] != '#') {
            die("%s:%d: expected 'stem NAME' or 'track PATH GAIN_DB PAN'", path, no);
        }
    }
    fclose(f);
    *n_stems = n;
    return stems;
}

int main(int argc, char **argv)
{
#if defined(__SSE__)
    _mm_setcsr(_mm_getcsr() | 0x8040); /* FTZ (bit 15) and DAZ (bit 6) */
#endif
    const char *list = NULL, *dir = NULL;
    long part = 0, parts = 1;
    chain_t ch = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        double v[4];
        if (strcmp(a, "-o") == 0 && has_value) {
            dir = argv[++i];
        } else if (strcmp(a, "--part") == 0 && has_value) {
            if (sscanf(argv[++i], "%ld/%ld", &part, &parts) != 2 || parts < 1 || part < 0 || part >= parts)
                die("--part needs I/N with 0 <= I < N, got '%s'", argv[i]);
        } else if (strcmp(a, "--hp") == 0 && has_value) {
            parse_numbers(a, argv[++i], v, 2);
            ch.hp = true;
            ch.hp_freq = v[0], ch.hp_q = v[1];
        } else if (strcmp(a, "--peak") == 0 && has_value) {
            parse_numbers(a, argv[++i], v, 3);
            ch.peak = true;
            ch.peak_freq = v[0], ch.peak_gain = v[1], ch.peak_q = v[2];
        } else if (strcmp(a, "--comp") == 0 && has_value) {
            parse_numbers(a, argv[++i], v, 4);
            ch.comp = true;
            ch.c_thr = v[0], ch.c_ratio = v[1], ch.c_att = v[2], ch.c_rel = v[3];
        } else if (a[0] == '-' || list) {
            die("usage: stemfarm-plainmix LIST -o DIR [--part I/N] [--hp FREQ:Q] [--peak FREQ:GAIN_DB:Q] "
                "[--comp THRESHOLD_DB:RATIO:ATTACK_MS:RELEASE_MS]");
        } else {
            list = a;
        }
    }
    if (!list || !dir)
        die("needs a LIST file and -o DIR");
    size_t n_stems;
    stem_t *stems = read_list(list, &n_stems);
    for (size_t s = (size_t)part; s < n_stems; s += (size_t)parts)
        render_stem(&stems[s], dir, &ch);
    return 0;
}
