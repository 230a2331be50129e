/* test_report.c -- report.html: the page a delivery folder gets, built from
 * a manifest and the meters of generated signals (the real sf_meter), with
 * names full of markup; the plots' geometry read back from the SVG paths;
 * the size of a 200-file delivery of hour-long files; every error path,
 * allocation failures included; and the page as headless Chromium loads
 * and draws it: no console message, the SVG in the DOM, and the plots'
 * colours on the screenshot (which a page without meters must not have). */
#include "report.h"
#include "testutil.h"

#include "sf/alloc.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <png.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATE    48000
#define SECONDS 14
#define FRAMES  ((int64_t)SECONDS * RATE)
#define N_FILES 4

/* Names are user input: each must come out escaped, never as markup. */
#define SESSION_NAME "Night <Drive> & \"Friends\" 'Live'"
#define SESSION_ESC  "Night &lt;Drive&gt; &amp; &quot;Friends&quot; &#39;Live&#39;"

static const struct {
    const char *file, *escaped, *role, *name;
    int channels;
} s_files[N_FILES] = {
    {"Drums <Kick> & \"Snare\" 'Room'.wav", "Drums &lt;Kick&gt; &amp; &quot;Snare&quot; &#39;Room&#39;.wav", "stem",
     "Drums", 2},
    {"Vox <b>gap</b>.wav", "Vox &lt;b&gt;gap&lt;/b&gt;.wav", "stem", "Vox", 1},
    {"Silence & Nothing.wav", "Silence &amp; Nothing.wav", "stem", "Room <none>", 2},
    {"Mix <script>alert(1)</script>.wav", "Mix &lt;script&gt;alert(1)&lt;/script&gt;.wav", "mix", "Full", 2},
};

/* Waveform and loudness colours of the page's CSS (.wave, .lufs). */
static const int s_wave_rgb[3] = {0x1c, 0x64, 0xd6}, s_lufs_rgb[3] = {0xe8, 0x59, 0x0c};

static double s_drums(int ch, int64_t i, void *ctx)
{
    (void)ctx;
    return 0.6 * exp(-(double)(i % (RATE / 2)) / 2400.0) * tu_noise((uint64_t)ch + 1, i);
}

/* A tone with a fade-in and six seconds of digital silence (4 s to 10 s),
 * long enough for the 3 s short-term loudness to reach -inf. */
static double s_vox(int ch, int64_t i, void *ctx)
{
    (void)ch, (void)ctx;
    const double t = (double)i / RATE;
    if (t >= 4.0 && t < 10.0)
        return 0.0;
    return 0.3 * (t < 1.0 ? t : 1.0) * tu_sine(440.0, RATE, i);
}

static double s_silence(int ch, int64_t i, void *ctx)
{
    (void)ch, (void)i, (void)ctx;
    return 0.0;
}

static double s_mix(int ch, int64_t i, void *ctx)
{
    (void)ctx;
    const double swell = 0.5 + 0.5 * sin(2.0 * M_PI * (double)i / (RATE * 7.0));
    return swell * (0.4 * tu_sine(110.0 + 2.0 * ch, RATE, i) + 0.1 * tu_noise(7, i));
}

static sf_meter_result_t *s_meter(int channels, tu_signal_fn fn)
{
    enum { BLOCK = 4801 }; /* not a multiple of the meter's hop */
    sf_meter_t *m = NULL;
    sf_err_t err = {0};
    ck_assert_int_eq(sf_meter_new(channels, NULL, RATE, FRAMES, &m, &err), SF_OK);
    float *buf = malloc(sizeof(float) * BLOCK * (size_t)channels);
    ck_assert_ptr_nonnull(buf);
    for (int64_t i = 0; i < FRAMES; i += BLOCK) {
        const size_t n = (size_t)(FRAMES - i < BLOCK ? FRAMES - i : BLOCK);
        for (size_t f = 0; f < n; f++)
            for (int c = 0; c < channels; c++)
                buf[f * (size_t)channels + (size_t)c] = (float)fn(c, i + (int64_t)f, NULL);
        ck_assert_int_eq(sf_meter_add_float(m, buf, n, &err), SF_OK);
    }
    sf_meter_result_t *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(sf_meter_result(m, r, &err), SF_OK);
    sf_meter_destroy(&m);
    free(buf);
    return r;
}

static void s_meter_free(sf_meter_result_t *r)
{
    sf_meter_result_free(r);
    free(r);
}

static json_t *s_db(double linear)
{
    return linear > 0 ? json_real(round(2000.0 * log10(linear)) / 100.0) : json_null();
}

/* A files[] entry as deliver.c writes it, levels from the meter. */
static json_t *s_file_json(size_t k, const sf_meter_result_t *r, json_t *checks)
{
    json_t *labels = s_files[k].channels == 1 ? json_pack("[s]", "M") : json_pack("[s, s]", "L", "R");
    const double peak = r->sample_peak > 0 ? 20.0 * log10(r->sample_peak) : -999.0;
    json_t *lufs = isfinite(r->integrated_lufs) ? json_real(round(r->integrated_lufs * 100.0) / 100.0) : json_null();
    json_t *f = json_pack(
        "{s:s, s:s, s:s, s:I, s:i, s:i, s:s, s:o, s:s, s:s, s:s, s:f, s:o, s:o, s:f,"
        " s:[{s:i, s:I, s:s}], s:o}",
        "file", s_files[k].file, "role", s_files[k].role, "name", s_files[k].name, "frames", (json_int_t)r->n_frames,
        "sample_rate", RATE, "channels", s_files[k].channels, "layout", s_files[k].channels == 1 ? "mono" : "stereo",
        "channel_labels", labels, "format", "wav", "sample_format", "pcm24", "sha256",
        "5bdecbe7b98931243bde189c053deea0fbfe5da32e55b92c909c5d082f2b286b", "peak_dbfs", peak, "true_peak_dbtp",
        s_db(r->true_peak), "integrated_lufs", lufs, "loudness_range_lu", round(r->lra_lu * 100.0) / 100.0, "segments",
        "index", 0, "frames", (json_int_t)r->n_frames, "node", "local-1", "checks", checks);
    ck_assert_ptr_nonnull(f);
    return f;
}

static json_t *s_checks(size_t k)
{
    json_t *c = json_pack("[{s:s, s:s, s:I}, {s:s, s:s}]", "check", "same_length", "result", "pass", "frames",
                          (json_int_t)FRAMES, "check", "read_back", "result", "pass");
    if (k == 0) /* over the headroom, delivered with a warning */
        json_array_append_new(c, json_pack("{s:s, s:s, s:f, s:f}", "check", "headroom", "result", "warn", "peak_dbfs",
                                           -0.5, "limit_dbfs", -1.0));
    json_array_append_new(c, json_pack("{s:s, s:s, s:i, s:i}", "check", "clipping", "result", k == 3 ? "fail" : "pass",
                                       "full_scale_samples", k == 3 ? 12 : 0, "limit_samples", 0));
    return c;
}

/* A manifest with files[k] for every k in `which` (n of them). */
static json_t *s_manifest(sf_meter_result_t *const *meters, const size_t *which, size_t n)
{
    json_t *files = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(files, s_file_json(which[i], meters[which[i]], s_checks(which[i])));
    json_t *m = json_pack(
        "{s:i, s:s, s:s, s:{s:s, s:s, s:s}, s:{s:I, s:I, s:i, s:I, s:i, s:s, s:s, s:s, s:b, s:i, s:f, s:I},"
        " s:{s:s, s:f, s:f, s:f, s:b, s:b}, s:o}",
        "manifest_version", 1, "stemfarm_version", "0.1.0", "created", "2026-11-21T14:34:36Z", "session", "name",
        SESSION_NAME, "path", "configs/<odd>/session.yaml", "hash",
        "67cf1d4ccceb2e5a46cf2b24013c48ebc157f0156ef60b5b9321b9527e3396a2", "render", "start", (json_int_t)0, "frames",
        (json_int_t)FRAMES, "sample_rate", RATE, "segment_frames", (json_int_t)(FRAMES / 2), "segments", 2, "format",
        "wav", "sample_format", "pcm24", "dither", "auto", "master_applied", 0, "nodes", 2, "wall_seconds", 1.5,
        "tail_trimmed_frames", (json_int_t)0, "null_test", "result", "pass", "residual_dbfs", -129.49, "limit_dbfs",
        -90.0, "quantisation_floor_dbfs", -128.93, "at_quantisation_floor", 1, "expected", 1, "files", files);
    ck_assert_ptr_nonnull(m);
    return m;
}

/* ---- fixture: the four files metered once, before Check forks ---------- */

static sf_meter_result_t *s_meters[N_FILES];
static json_t *s_full; /* the manifest of all four */

static void setup_meters(void)
{
    static const tu_signal_fn fns[N_FILES] = {s_drums, s_vox, s_silence, s_mix};
    for (size_t k = 0; k < N_FILES; k++)
        s_meters[k] = s_meter(s_files[k].channels, fns[k]);
    const size_t all[N_FILES] = {0, 1, 2, 3};
    s_full = s_manifest(s_meters, all, N_FILES);
}

static void teardown_meters(void)
{
    for (size_t k = 0; k < N_FILES; k++)
        s_meter_free(s_meters[k]);
    json_decref(s_full);
}

static const sf_meter_result_t *const *s_const(sf_meter_result_t *const *m)
{
    return (const sf_meter_result_t *const *)m;
}

static size_t s_count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* ---- SVG paths read back ------------------------------------------------ */

#define MAX_PTS 8192

/* The points of a path as the page writes them (m, h, z and relative
 * pairs), in absolute viewBox units. */
typedef struct {
    long x[MAX_PTS], y[MAX_PTS];
    size_t n_points, n_subpaths;
} s_path_t;

static void s_path_parse(const char *d, s_path_t *p)
{
    memset(p, 0, sizeof *p);
    long cx = 0, cy = 0, sx = 0, sy = 0, nums[2];
    int n_nums = 0;
    char cmd = 0;
    bool first_of_m = false;
    for (const char *s = d; *s && *s != '"';) {
        if (*s == 'm' || *s == 'h' || *s == 'z') {
            cmd = *s++;
            first_of_m = cmd == 'm';
            if (cmd == 'z')
                cx = sx, cy = sy;
            continue;
        }
        if (*s == ' ' || *s == ',') {
            s++;
            continue;
        }
        char *end;
        long v = strtol(s, &end, 10);
        ck_assert_msg(end != s, "unexpected '%c' in path", *s);
        s = end;
        if (cmd == 'h') {
            cx += v;
            continue;
        }
        ck_assert_int_eq(cmd, 'm');
        nums[n_nums++] = v;
        if (n_nums < 2)
            continue;
        n_nums = 0;
        cx += nums[0];
        cy += nums[1];
        if (first_of_m) {
            sx = cx, sy = cy;
            p->n_subpaths++;
            first_of_m = false;
        }
        ck_assert_uint_lt(p->n_points, MAX_PTS);
        p->x[p->n_points] = cx;
        p->y[p->n_points++] = cy;
    }
    ck_assert_int_eq(n_nums, 0);
}

/* The d of the n-th (0-based) path of `cls`; NULL when there is none. */
static const char *s_path_d(const char *html, const char *cls, size_t nth)
{
    char needle[64];
    snprintf(needle, sizeof needle, "<path class=\"%s\" d=\"", cls);
    const char *p = strstr(html, needle);
    for (size_t i = 0; p && i < nth; i++)
        p = strstr(p + 1, needle);
    return p ? p + strlen(needle) : NULL;
}

/* Plot geometry of report.c: data area x 46..1046; waveform y 8..136
 * (centre 72); loudness y 8 (0 LUFS) .. 188 (-60 LUFS). */
#define X0      46
#define X1      1046
#define WAVE_Y0 8
#define WAVE_Y1 136
#define LUFS_Y0 8
#define LUFS_Y1 188

/* ---- the page ----------------------------------------------------------- */

START_TEST(test_report_page)
{
    char *dir = tu_tmpdir();
    sf_err_t err = {0};
    ck_assert_int_eq(report_write(dir, s_full, s_const(s_meters), N_FILES, &err), SF_OK);
    char *path = tu_path(dir, "report.html"), *partial = tu_path(dir, "report.html.partial");
    ck_assert(tu_exists(path));
    ck_assert(!tu_exists(partial));
    char *html = tu_slurp(path, NULL);
    ck_assert_msg(strncmp(html, "<!DOCTYPE html>\n", 16) == 0, "no doctype");
    ck_assert_ptr_nonnull(strstr(html, "</html>\n"));
    /* two plots per metered file, each an svg of its own */
    ck_assert_uint_eq(s_count(html, "<svg"), 2 * N_FILES);
    ck_assert_uint_eq(s_count(html, "</svg>"), 2 * N_FILES);
    ck_assert_uint_eq(s_count(html, "<path class=\"wave\""), N_FILES);
    ck_assert_uint_eq(s_count(html, "<path class=\"lufs\""), N_FILES - 1); /* silence draws no loudness */
    /* every name escaped, none as markup */
    for (size_t k = 0; k < N_FILES; k++) {
        ck_assert_msg(s_count(html, s_files[k].escaped) >= 2, "'%s' not in the summary and its section",
                      s_files[k].escaped);
        ck_assert_ptr_null(strstr(html, s_files[k].file));
    }
    ck_assert_ptr_nonnull(strstr(html, "<title>" SESSION_ESC));
    ck_assert_ptr_nonnull(strstr(html, "<h1>" SESSION_ESC "</h1>"));
    ck_assert_ptr_nonnull(strstr(html, "Room &lt;none&gt;"));
    ck_assert_ptr_nonnull(strstr(html, "configs/&lt;odd&gt;/session.yaml"));
    ck_assert_ptr_null(strstr(html, "<script"));
    ck_assert_ptr_null(strstr(html, "<b>"));
    /* nothing to load: no URL, no source, no link out of the page */
    ck_assert_ptr_null(strstr(html, "http:"));
    ck_assert_ptr_null(strstr(html, "https:"));
    ck_assert_ptr_null(strstr(html, "src="));
    ck_assert_ptr_null(strstr(html, "url("));
    ck_assert_ptr_null(strstr(html, "@import"));
    ck_assert_ptr_null(strstr(html, "<link"));
    ck_assert_uint_eq(s_count(html, "href="), s_count(html, "href=\"#file-"));
    ck_assert_ptr_nonnull(strstr(html, "default-src 'none'"));
    /* header: hash, render settings, null test */
    ck_assert_ptr_nonnull(strstr(html, "67cf1d4ccceb2e5a46cf2b24013c48ebc157f0156ef60b5b9321b9527e3396a2"));
    ck_assert_ptr_nonnull(strstr(html, "<dt>sample_format</dt><dd>pcm24</dd>"));
    ck_assert_ptr_nonnull(strstr(html, "<dt>duration</dt><dd>0:14.000</dd>"));
    ck_assert_ptr_nonnull(
        strstr(html, "<dt>null test</dt><dd><span class=\"badge pass\">pass</span> residual -129.49"));
    /* results: a failed check fails the page; each check with its values */
    ck_assert_ptr_nonnull(strstr(html, "<p class=\"verdict\"><span class=\"badge fail\">fail</span>"));
    ck_assert_ptr_nonnull(strstr(html, "<td>headroom</td><td><span class=\"badge warn\">warn</span></td>"
                                       "<td>peak_dbfs -0.50; limit_dbfs -1.00</td>"));
    ck_assert_ptr_nonnull(strstr(html, "<span class=\"badge fail\">fail</span></td><td>full_scale_samples 12;"));
    ck_assert_uint_eq(s_count(html, "<td>read_back</td><td><span class=\"badge pass\">pass</span>"), N_FILES);
    ck_assert_ptr_nonnull(
        strstr(html, "<span class=\"badge pass\">3 pass</span> <span class=\"badge warn\">1 warn</span>"));
    /* silence: levels of -inf, in the summary and in its section */
    ck_assert_ptr_nonnull(strstr(html, "<td class=\"n\">-inf</td><td class=\"n\">-inf</td><td class=\"n\">-inf</td>"));
    ck_assert_ptr_nonnull(strstr(html, "-inf LUFS"));
    /* the time axis in m:ss, every 2 s over 14 s */
    ck_assert_ptr_nonnull(strstr(html, ">0:00</text>"));
    ck_assert_ptr_nonnull(strstr(html, ">0:14</text>"));
    ck_assert_ptr_null(strstr(html, ">0:16</text>"));
    free(html);
    free(partial);
    free(path);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* The plots of the tone with a gap, read back point by point. */
START_TEST(test_report_plot_geometry)
{
    const size_t one[1] = {1};
    json_t *m = s_manifest(s_meters, one, 1);
    const sf_meter_result_t *meter[1] = {s_meters[1]};
    char *html = NULL;
    sf_err_t err = {0};
    ck_assert_int_eq(report_html(m, meter, 1, &html, &err), SF_OK);
    static s_path_t p;

    /* waveform: the max edge left to right, then the min edge back */
    const size_t n_x = s_meters[1]->n_buckets < REPORT_MAX_POINTS ? s_meters[1]->n_buckets : REPORT_MAX_POINTS;
    ck_assert_uint_eq(n_x, REPORT_MAX_POINTS); /* 2000 buckets, halved */
    s_path_parse(s_path_d(html, "wave", 0), &p);
    ck_assert_uint_eq(p.n_subpaths, 1);
    ck_assert_uint_eq(p.n_points, 2 * n_x);
    const long centre = (WAVE_Y0 + WAVE_Y1) / 2, swing = lround(0.3 * (WAVE_Y1 - WAVE_Y0) / 2);
    size_t n_silent = 0, n_loud = 0;
    for (size_t i = 0; i < p.n_points; i++) {
        ck_assert_int_ge(p.x[i], X0);
        ck_assert_int_le(p.x[i], X1);
        ck_assert_int_ge(p.y[i], WAVE_Y0);
        ck_assert_int_le(p.y[i], WAVE_Y1);
        if (i > 0 && i < n_x)
            ck_assert_int_ge(p.x[i], p.x[i - 1]);
        if (i >= n_x)
            continue;
        const double t = (double)(p.x[i] - X0) / (X1 - X0) * SECONDS;
        if (t > 4.1 && t < 9.9) { /* the silence: a line at the centre */
            ck_assert_int_eq(p.y[i], centre);
            ck_assert_int_eq(p.y[2 * n_x - 1 - i], centre + 1);
            n_silent++;
        } else if (t > 1.1 && t < 3.9) { /* the tone at 0.3: its max 0.3 up, min 0.3 down */
            ck_assert_int_le(labs(p.y[i] - (centre - swing)), 1);
            ck_assert_int_le(labs(p.y[2 * n_x - 1 - i] - (centre + swing)), 1);
            n_loud++;
        }
    }
    ck_assert_uint_gt(n_silent, 350);
    ck_assert_uint_gt(n_loud, 150);
    ck_assert_int_le(p.x[0], X0 + 1);
    ck_assert_int_ge(p.x[n_x - 1], X1 - 1);

    /* loudness: one line before the gap, one after; every point on the plot */
    s_path_parse(s_path_d(html, "lufs", 0), &p);
    ck_assert_uint_eq(p.n_subpaths, 2);
    size_t n_audible = 0;
    double loudest = -(double)INFINITY;
    for (size_t i = 0; i < s_meters[1]->n_shortterm; i++)
        if (s_meters[1]->shortterm_lufs[i] >= -70.0) { /* the absolute gate: below it a gap */
            n_audible++;
            loudest = s_meters[1]->shortterm_lufs[i] > loudest ? s_meters[1]->shortterm_lufs[i] : loudest;
        }
    ck_assert_uint_eq(s_meters[1]->n_shortterm, SECONDS * 5);
    ck_assert_uint_lt(n_audible, s_meters[1]->n_shortterm - 10);
    ck_assert_uint_eq(p.n_points, n_audible);
    long top = LUFS_Y1;
    for (size_t i = 0; i < p.n_points; i++) {
        ck_assert_int_ge(p.x[i], X0);
        ck_assert_int_le(p.x[i], X1);
        ck_assert_int_ge(p.y[i], LUFS_Y0);
        ck_assert_int_le(p.y[i], LUFS_Y1);
        const double t = (double)(p.x[i] - X0) / (X1 - X0) * SECONDS;
        ck_assert_msg(t < 7.1 || t > 9.9, "a loudness point at %.2f s, in the silence", t);
        top = p.y[i] < top ? p.y[i] : top;
    }
    /* a tone of 0.3 is near -13.5 LUFS: y = 8 + 180 * 13.5 / 60 */
    ck_assert(loudest > -15.0 && loudest < -12.0);
    ck_assert_int_le(labs(top - (LUFS_Y0 + lround((LUFS_Y1 - LUFS_Y0) * -loudest / 60.0))), 1);
    ck_assert_int_eq(p.x[p.n_points - 1], X1); /* the last point ends the file */
    /* the integrated loudness as a labelled dashed line */
    char label[48];
    json_t *f = json_array_get(json_object_get(m, "files"), 0);
    snprintf(label, sizeof label, ">I %.1f LUFS</text>", json_number_value(json_object_get(f, "integrated_lufs")));
    ck_assert_ptr_nonnull(strstr(html, label));
    for (int lu = 0; lu >= -60; lu -= 10) {
        snprintf(label, sizeof label, "text-anchor=\"end\">%d</text>", lu);
        ck_assert_msg(strstr(html, label), "no grid line at %d LUFS", lu);
    }
    sf_free(html);
    json_decref(m);
}
END_TEST

/* No meters: the values and checks without plots. */
START_TEST(test_report_without_meters)
{
    char *html = NULL;
    ck_assert_int_eq(report_html(s_full, NULL, 0, &html, NULL), SF_OK);
    ck_assert_ptr_null(strstr(html, "<svg"));
    ck_assert_uint_eq(s_count(html, "no overview"), N_FILES);
    ck_assert_uint_eq(s_count(html, "<td>clipping</td>"), N_FILES);
    sf_free(html);
    /* a file without its meter among files with theirs */
    const sf_meter_result_t *some[N_FILES] = {s_meters[0], NULL, s_meters[2], s_meters[3]};
    ck_assert_int_eq(report_html(s_full, some, N_FILES, &html, NULL), SF_OK);
    ck_assert_uint_eq(s_count(html, "<svg"), 2 * (N_FILES - 1));
    ck_assert_uint_eq(s_count(html, "no overview"), 1);
    sf_free(html);
}
END_TEST

/* ---- size: 200 files of an hour each ------------------------------------ */

/* An hour's results with a value change at every point and silences
 * scattered through the loudness: the worst case for the page's size, which
 * metering 200 hours of audio would take minutes to reach. */
static void s_hour(sf_meter_result_t *r, float *lo, float *hi, double *st)
{
    *r = (sf_meter_result_t){.n_frames = 3600LL * RATE,
                             .hop_frames = RATE / 5,
                             .n_shortterm = 3600 * 5,
                             .n_buckets = SF_METER_BUCKETS,
                             .bucket_frames = 3600LL * RATE / SF_METER_BUCKETS};
    for (size_t b = 0; b < r->n_buckets; b++) {
        hi[b] = (float)fabs(tu_noise(1, (int64_t)b));
        lo[b] = -(float)fabs(tu_noise(2, (int64_t)b));
    }
    for (size_t i = 0; i < r->n_shortterm; i++)
        st[i] = (i / 90) % 7 == 3 ? -(double)INFINITY : -60.0 * fabs(tu_noise(3, (int64_t)i));
    r->wave_min = lo;
    r->wave_max = hi;
    r->shortterm_lufs = st;
}

START_TEST(test_report_large_delivery)
{
    enum { N = 200 };
    static float lo[SF_METER_BUCKETS], hi[SF_METER_BUCKETS];
    static double st[3600 * 5];
    sf_meter_result_t hour;
    s_hour(&hour, lo, hi, st);
    for (size_t k = 0; k < N_FILES; k++) /* the manifest's levels and names, of any four files */
        ck_assert_ptr_nonnull(s_meters[k]);
    json_t *files = json_array();
    const sf_meter_result_t *meters[N];
    for (size_t k = 0; k < N; k++) {
        json_t *f = json_deep_copy(json_array_get(json_object_get(s_full, "files"), k % N_FILES));
        json_object_set_new(f, "frames", json_integer(hour.n_frames));
        json_array_append_new(files, f);
        meters[k] = &hour;
    }
    json_t *m = json_deep_copy(s_full);
    json_object_set_new(m, "files", files);
    char *html = NULL;
    ck_assert_int_eq(report_html(m, meters, N, &html, NULL), SF_OK);
    const size_t n_bytes = strlen(html);
    printf("test_report: %d files of an hour: %zu bytes (%zu per file)\n", N, n_bytes, n_bytes / N);
    ck_assert_uint_lt(n_bytes, 5u << 20);
    ck_assert_uint_eq(s_count(html, "<svg"), 2 * N);
    static s_path_t p;
    s_path_parse(s_path_d(html, "wave", N - 1), &p);
    ck_assert_uint_eq(p.n_points, 2 * REPORT_MAX_POINTS);
    s_path_parse(s_path_d(html, "lufs", N - 1), &p);
    ck_assert_uint_le(p.n_points, REPORT_MAX_POINTS);
    ck_assert_uint_gt(p.n_points, REPORT_MAX_POINTS / 2);
    ck_assert_uint_gt(p.n_subpaths, 20); /* the silences are gaps */
    ck_assert_ptr_nonnull(strstr(html, ">50:00</text>"));
    ck_assert_ptr_nonnull(strstr(html, ">1:00:00</text>"));
    sf_free(html);
    json_decref(m);
}
END_TEST

/* ---- errors ------------------------------------------------------------- */

START_TEST(test_report_errors)
{
    char *html = (char *)"untouched";
    sf_err_t err = {0};
    json_t *bad = json_pack("{s:s}", "session", "x");
    ck_assert_int_eq(report_html(bad, NULL, 0, &html, &err), SF_E_INPUT);
    ck_assert_ptr_null(html);
    ck_assert_str_eq(err.msg, "not a stemfarm manifest: no 'files' array");
    json_decref(bad);
    bad = json_pack("{s:[{}, i]}", "files", 3);
    ck_assert_int_eq(report_html(bad, NULL, 0, &html, &err), SF_E_INPUT);
    ck_assert_str_eq(err.msg, "not a stemfarm manifest: files[1] is not an object");
    json_decref(bad);
    ck_assert_int_eq(report_html(s_full, s_const(s_meters), N_FILES - 1, &html, &err), SF_E_INPUT);
    ck_assert_str_eq(err.msg, "3 meter results for the 4 files of the manifest");

    /* a folder that is not there: nothing written, nothing left */
    char *dir = tu_tmpdir();
    char *missing = tu_path(dir, "gone");
    ck_assert_int_eq(report_write(missing, s_full, NULL, 0, &err), SF_E_IO);
    ck_assert_msg(strstr(err.msg, "gone/report.html.partial"), "%s", err.msg);

    /* an old page stays whole when the new one fails */
    free(tu_write_text(dir, "report.html", "old"));
    sf_alloc_fail_after(1);
    sf_rc rc = report_write(dir, s_full, s_const(s_meters), N_FILES, &err);
    sf_alloc_fail_after(0);
    ck_assert_int_eq(rc, SF_E_NOMEM);
    char *path = tu_path(dir, "report.html");
    char *text = tu_slurp(path, NULL);
    ck_assert_str_eq(text, "old");
    free(text);

    /* every allocation fails in turn: SF_E_NOMEM and no leak (ASan) */
    long n = 1;
    for (;; n++) {
        ck_assert_int_lt(n, 200);
        html = NULL;
        sf_alloc_fail_after(n);
        rc = report_html(s_full, s_const(s_meters), N_FILES, &html, &err);
        sf_alloc_fail_after(0);
        if (rc == SF_OK)
            break;
        ck_assert_int_eq(rc, SF_E_NOMEM);
        ck_assert_ptr_null(html);
    }
    ck_assert_int_gt(n, 2);
    sf_free(html);
    ck_assert_int_eq(report_write(dir, s_full, s_const(s_meters), N_FILES, &err), SF_OK);
    text = tu_slurp(path, NULL);
    ck_assert_ptr_nonnull(strstr(text, "<!DOCTYPE html>"));
    free(text);
    free(path);
    free(missing);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

/* ---- in a browser ------------------------------------------------------- */

static bool s_have_chromium(void) { return tu_run("command -v chromium", NULL, NULL, 10) == 0; }

/* Runs headless Chromium on dir/page with `what` (--screenshot=... or
 * --dump-dom); returns stdout, *log gets stderr with the console. */
static char *s_chromium(const char *dir, const char *page, const char *what, char **log)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir='%s/profile' "
             "--enable-logging=stderr --v=0 --window-size=1200,2000 %s 'file://%s/%s'",
             dir, what, dir, page);
    char *out = NULL;
    int rc = tu_run(cmd, &out, log, 60);
    ck_assert_msg(rc == 0, "chromium exited %d: %s", rc, *log);
    return out;
}

/* Console messages (CONSOLE lines carry the page's URL) and page errors. */
static void s_assert_quiet(const char *log, const char *page)
{
    for (const char *line = log; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        char *l = strndup(line, n);
        ck_assert_msg(!strstr(l, "CONSOLE") && !(strstr(l, page) && strstr(l, "ERROR")), "chromium: %s", l);
        free(l);
        line = end ? end + 1 : NULL;
    }
}

/* Pixels of the screenshot within 40 (summed over R, G, B) of rgb. */
static size_t s_pixels_near(const char *png, const int rgb[3], unsigned *width, unsigned *height)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    ck_assert_msg(png_image_begin_read_from_file(&img, png), "%s: %s", png, img.message);
    img.format = PNG_FORMAT_RGB;
    unsigned char *px = malloc(PNG_IMAGE_SIZE(img));
    ck_assert_ptr_nonnull(px);
    ck_assert_msg(png_image_finish_read(&img, NULL, px, 0, NULL), "%s: %s", png, img.message);
    size_t n = 0;
    for (size_t i = 0; i < (size_t)img.width * img.height; i++)
        n += abs(px[3 * i] - rgb[0]) + abs(px[3 * i + 1] - rgb[1]) + abs(px[3 * i + 2] - rgb[2]) <= 40;
    *width = img.width;
    *height = img.height;
    free(px);
    return n;
}

START_TEST(test_report_in_chromium)
{
    if (!s_have_chromium()) {
        printf("test_report: chromium not found: skipping the browser checks (apt-get install chromium)\n");
        return;
    }
    char *dir = tu_tmpdir();
    ck_assert_int_eq(report_write(dir, s_full, s_const(s_meters), N_FILES, NULL), SF_OK);
    char *html = NULL;
    ck_assert_int_eq(report_html(s_full, NULL, 0, &html, NULL), SF_OK);
    free(tu_write_text(dir, "plain.html", html));
    sf_free(html);
    char *log = NULL, *out;

    /* the page draws its plots, in their colours */
    char what[4200];
    snprintf(what, sizeof what, "--screenshot='%s/report.png'", dir);
    free(s_chromium(dir, "report.html", what, &log));
    s_assert_quiet(log, "report.html");
    free(log);
    char *png = tu_path(dir, "report.png");
    size_t n_bytes = 0;
    free(tu_slurp(png, &n_bytes));
    unsigned w, h;
    const size_t wave = s_pixels_near(png, s_wave_rgb, &w, &h), lufs = s_pixels_near(png, s_lufs_rgb, &w, &h);
    printf("test_report: screenshot %ux%u, %zu bytes: %zu waveform and %zu loudness pixels\n", w, h, n_bytes, wave,
           lufs);
    ck_assert_uint_eq(w, 1200);
    ck_assert_uint_eq(h, 2000);
    ck_assert_uint_gt(n_bytes, 20000);
    ck_assert_uint_gt(wave, 20000); /* the waveforms of the first files at least */
    ck_assert_uint_gt(lufs, 1000);

    /* the same page without meters has none of them: the counts are the plots */
    snprintf(what, sizeof what, "--screenshot='%s/plain.png'", dir);
    free(s_chromium(dir, "plain.html", what, &log));
    free(log);
    char *plain_png = tu_path(dir, "plain.png");
    ck_assert_uint_lt(s_pixels_near(plain_png, s_wave_rgb, &w, &h), 50);
    ck_assert_uint_lt(s_pixels_near(plain_png, s_lufs_rgb, &w, &h), 50);

    /* the DOM as parsed holds every plot */
    out = s_chromium(dir, "report.html", "--dump-dom", &log);
    s_assert_quiet(log, "report.html");
    ck_assert_uint_eq(s_count(out, "<svg"), 2 * N_FILES);
    ck_assert_uint_eq(s_count(out, "<path class=\"wave\""), N_FILES);
    ck_assert_uint_eq(s_count(out, "<path class=\"lufs\""), N_FILES - 1);
    ck_assert_ptr_nonnull(strstr(out, "Mix &lt;script&gt;alert(1)&lt;/script&gt;.wav"));
    ck_assert_ptr_null(strstr(out, "<script"));
    free(out);
    free(log);

    /* and the console check sees what it must: a load the page's policy blocks */
    free(tu_write_text(
        dir, "loads.html",
        "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" "
        "content=\"default-src 'none'\"></head><body><img src=\"http://127.0.0.1:9/x.png\"></body></html>"));
    free(s_chromium(dir, "loads.html", "--dump-dom", &log));
    ck_assert_msg(strstr(log, "CONSOLE") && strstr(log, "loads.html"), "no console message seen: %s", log);
    free(log);

    const char *keep = getenv("STEMFARM_KEEP_REPORT"); /* a folder to look at the page and its screenshot in */
    if (keep && *keep) {
        char cmd[8600];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/report.html' '%s' '%s' '%s'", keep, dir, png, plain_png,
                 keep);
        ck_assert_int_eq(tu_run(cmd, NULL, NULL, 10), 0);
    }
    free(plain_png);
    free(png);
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

static Suite *report_suite(void)
{
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("report");
    tcase_add_unchecked_fixture(tc, setup_meters, teardown_meters);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_report_page);
    tcase_add_test(tc, test_report_plot_geometry);
    tcase_add_test(tc, test_report_without_meters);
    tcase_add_test(tc, test_report_large_delivery);
    tcase_add_test(tc, test_report_errors);
    tcase_add_test(tc, test_report_in_chromium);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(report_suite()); }
