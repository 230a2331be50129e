/* report.c -- the delivery report page (see report.h).
 *
 * The page grows in one buffer whose first failed allocation turns every
 * later append into a no-op, so the builders have no error paths of their
 * own: report_html checks once, at the end.
 *
 * Plots: the data area of every plot is S_PLOT_W = REPORT_MAX_POINTS viewBox
 * units wide and coordinates are whole units, so a point is never narrower
 * than a unit and the paths can be relative (`m` then coordinate pairs,
 * separators only where a sign does not separate): about 4 bytes a point,
 * a file's two plots at most about 13 KB. Values the manifest marks as -inf with -999 (peaks)
 * or null (loudness of silence) print as -inf.
 */
#include "report.h"

#include "deliver.h"
#include "sf/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define S_PLOT_X0      46 /* left of the data area: room for the level labels */
#define S_PLOT_W       REPORT_MAX_POINTS
#define S_SVG_W        (S_PLOT_X0 + S_PLOT_W + 14)
#define S_LUFS_FLOOR   (-60.0) /* bottom of the loudness plot; quieter points sit on it */
#define S_LUFS_GATE    (-70.0) /* BS.1770's absolute gate: below it is silence, a gap */
#define S_MANIFEST_INF (-999.0)

typedef struct {
    char *p;
    size_t n, cap; /* bytes used (without the NUL) and allocated */
    bool nomem;    /* an allocation failed: p is incomplete */
} s_buf_t;

static void s_put(s_buf_t *b, const char *s, size_t n)
{
    if (b->nomem)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = sf_realloc(b->p, cap);
        if (!p) {
            b->nomem = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void s_puts(s_buf_t *b, const char *s) { s_put(b, s, strlen(s)); }

/* For short pieces only: text of any length goes through s_puts or s_esc. */
static void s_printf(s_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_printf(s_buf_t *b, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n >= 0)
        s_put(b, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

/* Text as HTML, safe in element content and in quoted attributes. */
static void s_esc(s_buf_t *b, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *ent = *s == '&'    ? "&amp;"
                          : *s == '<'  ? "&lt;"
                          : *s == '>'  ? "&gt;"
                          : *s == '"'  ? "&quot;"
                          : *s == '\'' ? "&#39;"
                                       : NULL;
        if (!ent)
            continue;
        s_put(b, run, (size_t)(s - run));
        s_puts(b, ent);
        run = s + 1;
    }
    s_put(b, run, (size_t)(s - run));
}

/* ---- manifest values ------------------------------------------------- */

static const char *s_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

static bool s_num(const json_t *obj, const char *key, double *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return true;
}

/* A manifest value as text: numbers to two decimals, -999 as -inf, null as
 * a dash, nested values as compact JSON. */
static void s_value(s_buf_t *b, const json_t *v)
{
    if (json_is_string(v)) {
        s_esc(b, json_string_value(v));
    } else if (json_is_integer(v)) {
        s_printf(b, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d <= S_MANIFEST_INF)
            s_puts(b, "-inf");
        else
            s_printf(b, "%.2f", d);
    } else if (json_is_boolean(v)) {
        s_puts(b, json_is_true(v) ? "yes" : "no");
    } else if (json_is_null(v) || !v) {
        s_puts(b, "&mdash;");
    } else {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text)
            b->nomem = true;
        else
            s_esc(b, text);
        free(text);
    }
}

/* A level: null (silence) reads -inf; a missing key a dash. */
static void s_level(s_buf_t *b, const json_t *file, const char *key)
{
    const json_t *v = json_object_get(file, key);
    if (json_is_null(v))
        s_puts(b, "-inf");
    else
        s_value(b, v);
}

/* Only these become class names: a result is user-visible text, never markup. */
static const char *s_result_class(const char *result)
{
    return !strcmp(result, "pass")   ? "pass"
           : !strcmp(result, "warn") ? "warn"
           : !strcmp(result, "fail") ? "fail"
                                     : "other";
}

static void s_badge(s_buf_t *b, const char *result)
{
    s_printf(b, "<span class=\"badge %s\">", s_result_class(result));
    s_esc(b, *result ? result : "unknown");
    s_puts(b, "</span>");
}

typedef struct {
    size_t pass, warn, fail, other;
} s_tally_t;

static void s_tally_add(s_tally_t *t, const char *result)
{
    const char *c = s_result_class(result);
    size_t *slot = !strcmp(c, "pass")   ? &t->pass
                   : !strcmp(c, "warn") ? &t->warn
                   : !strcmp(c, "fail") ? &t->fail
                                        : &t->other;
    (*slot)++;
}

static s_tally_t s_file_tally(const json_t *file)
{
    s_tally_t t = {0};
    const json_t *checks = json_object_get(file, "checks");
    for (size_t i = 0; i < json_array_size(checks); i++)
        s_tally_add(&t, s_str(json_array_get(checks, i), "result"));
    return t;
}

static void s_tally_badges(s_buf_t *b, s_tally_t t)
{
    const struct {
        size_t n;
        const char *result;
    } parts[] = {{t.pass, "pass"}, {t.warn, "warn"}, {t.fail, "fail"}, {t.other, "other"}};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        if (parts[i].n)
            s_printf(b, "<span class=\"badge %s\">%zu %s</span> ", parts[i].result, parts[i].n, parts[i].result);
}

/* seconds as h:mm:ss or m:ss, with `decimals` (0 or 3) of the second. */
static void s_fmt_time(char *out, size_t n, double seconds, int decimals)
{
    if (!(seconds >= 0.0))
        seconds = 0.0;
    const double scale = decimals ? 1000.0 : 1.0;
    const long long units = (long long)llround(seconds * scale);
    const long long whole = (long long)(units / (long long)scale), frac = units % (long long)scale;
    const long long h = whole / 3600, m = whole / 60 % 60, s = whole % 60;
    int len = h ? snprintf(out, n, "%lld:%02lld:%02lld", h, m, s) : snprintf(out, n, "%lld:%02lld", whole / 60, s);
    if (decimals && len > 0 && (size_t)len < n)
        snprintf(out + len, n - (size_t)len, ".%03lld", frac);
}

static double s_file_rate(const json_t *file, const json_t *manifest)
{
    double rate = 0;
    if (!s_num(file, "sample_rate", &rate) || rate <= 0)
        if (!s_num(json_object_get(manifest, "render"), "sample_rate", &rate))
            rate = 0;
    return rate > 0 ? rate : 0;
}

/* ---- plots ----------------------------------------------------------- */

/* Relative path coordinates: a separator only where the sign of the next
 * number does not already separate it. */
typedef struct {
    s_buf_t *b;
    long x, y;       /* the pen */
    bool after_cmd;  /* no separator needed before the next pair */
    size_t n_in_sub; /* points of the open subpath */
} s_pen_t;

static void s_pen_pair(s_pen_t *p, long dx, long dy)
{
    char text[48];
    snprintf(text, sizeof text, "%s%ld%s%ld", p->after_cmd || dx < 0 ? "" : " ", dx, dy < 0 ? "" : " ", dy);
    s_puts(p->b, text);
    p->after_cmd = false;
}

static void s_pen_move(s_pen_t *p, long x, long y)
{
    if (p->n_in_sub == 1)
        s_puts(p->b, "h0"); /* a lone point still shows (round caps) */
    s_puts(p->b, "m");
    p->after_cmd = true;
    s_pen_pair(p, x - p->x, y - p->y);
    p->x = x;
    p->y = y;
    p->n_in_sub = 1;
}

static void s_pen_line(s_pen_t *p, long x, long y)
{
    s_pen_pair(p, x - p->x, y - p->y);
    p->x = x;
    p->y = y;
    p->n_in_sub++;
}

static long s_x_at(int64_t frame, int64_t n_frames)
{
    if (n_frames <= 0)
        return S_PLOT_X0;
    if (frame > n_frames)
        frame = n_frames;
    return S_PLOT_X0 + lround((double)S_PLOT_W * (double)frame / (double)n_frames);
}

/* Vertical grid lines at round times, labelled m:ss under the plot. */
static void s_time_axis(s_buf_t *b, double seconds, int y_top, int y_bottom)
{
    static const int steps[] = {1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800};
    int step = steps[sizeof steps / sizeof *steps - 1];
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++)
        if (seconds / steps[i] <= 10.0) {
            step = steps[i];
            break;
        }
    for (long t = 0; seconds > 0 && (double)t <= seconds; t += step) {
        long x = S_PLOT_X0 + lround((double)S_PLOT_W * (double)t / seconds);
        char label[32];
        s_fmt_time(label, sizeof label, (double)t, 0);
        s_printf(b, "<line class=\"grid\" x1=\"%ld\" y1=\"%d\" x2=\"%ld\" y2=\"%d\"/>", x, y_top, x, y_bottom);
        /* labels at the ends stay inside the plot: the svg clips */
        const char *anchor = t == 0 ? "start" : x > S_PLOT_X0 + S_PLOT_W - 24 ? "end" : "middle";
        s_printf(b, "<text x=\"%ld\" y=\"%d\" text-anchor=\"%s\">%s</text>", x, y_bottom + 14, anchor, label);
    }
}

static void s_level_line(s_buf_t *b, int y, const char *label)
{
    s_printf(b, "<line class=\"grid\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>", S_PLOT_X0, y, S_PLOT_X0 + S_PLOT_W,
             y);
    s_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>", S_PLOT_X0 - 5, y + 4, label);
}

static long s_wave_y(float v, int y0, int h)
{
    double d = v > 1.0f ? 1.0 : v < -1.0f ? -1.0 : (double)v;
    return y0 + lround((double)h * (1.0 - d) / 2.0);
}

/* The min/max over buckets [g n / n_x, (g + 1) n / n_x) and the frame at
 * their middle. */
static void s_wave_group(const sf_meter_result_t *r, size_t g, size_t n_x, float *lo, float *hi, int64_t *frame)
{
    const size_t b0 = g * r->n_buckets / n_x, b1 = (g + 1) * r->n_buckets / n_x;
    *lo = r->wave_min[b0];
    *hi = r->wave_max[b0];
    for (size_t i = b0 + 1; i < b1; i++) {
        *lo = r->wave_min[i] < *lo ? r->wave_min[i] : *lo;
        *hi = r->wave_max[i] > *hi ? r->wave_max[i] : *hi;
    }
    *frame = (int64_t)(b0 + b1) * r->bucket_frames / 2;
}

/* The waveform: the max edge left to right, the min edge back, one polygon. */
static void s_wave_svg(s_buf_t *b, const sf_meter_result_t *r, double seconds)
{
    enum { Y0 = 8, H = 128 };
    s_printf(b, "<svg class=\"plot\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"waveform overview\">", S_SVG_W,
             Y0 + H + 20);
    s_level_line(b, Y0, "0 dB");
    s_level_line(b, Y0 + H / 4, "-6");
    s_level_line(b, Y0 + H / 2, "");
    s_level_line(b, Y0 + 3 * H / 4, "-6");
    s_level_line(b, Y0 + H, "0 dB");
    s_time_axis(b, seconds, Y0, Y0 + H);
    const size_t n_x = r->n_buckets < S_PLOT_W ? r->n_buckets : S_PLOT_W;
    if (n_x && r->n_frames > 0 && r->wave_min && r->wave_max) {
        s_pen_t pen = {.b = b};
        s_puts(b, "<path class=\"wave\" d=\"");
        for (size_t g = 0; g < n_x; g++) {
            float lo, hi;
            int64_t frame;
            s_wave_group(r, g, n_x, &lo, &hi, &frame);
            long x = s_x_at(frame, r->n_frames), y = s_wave_y(hi, Y0, H);
            if (g == 0)
                s_pen_move(&pen, x, y);
            else
                s_pen_line(&pen, x, y);
        }
        for (size_t g = n_x; g-- > 0;) {
            float lo, hi;
            int64_t frame;
            s_wave_group(r, g, n_x, &lo, &hi, &frame);
            /* at least a unit thick, so that silence still draws its line */
            long y_hi = s_wave_y(hi, Y0, H), y_lo = s_wave_y(lo, Y0, H);
            s_pen_line(&pen, s_x_at(frame, r->n_frames), y_lo > y_hi ? y_lo : y_hi + 1);
        }
        s_puts(b, "z\"/>");
    }
    s_puts(b, "</svg>");
}

static long s_lufs_y(double lufs, int y0, int h)
{
    double d = lufs > 0.0 ? 0.0 : lufs < S_LUFS_FLOOR ? S_LUFS_FLOOR : lufs;
    return y0 + lround((double)h * d / S_LUFS_FLOOR);
}

/* Short-term loudness: the loudest point of each group (a plot of the
 * ceiling a listener hears), pen up where a whole group is silent. Silence
 * is what BS.1770 gates out, not only -inf: after a sound stops, the
 * K-weighting filters ring down through thousands of finite LUFS before
 * the window reads -inf. */
static void s_lufs_svg(s_buf_t *b, const sf_meter_result_t *r, double seconds, const json_t *integrated)
{
    enum { Y0 = 8, H = 180 };
    s_printf(b, "<svg class=\"plot\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"short-term loudness\">", S_SVG_W,
             Y0 + H + 20);
    for (int lu = 0; lu >= (int)S_LUFS_FLOOR; lu -= 10) {
        char label[16];
        snprintf(label, sizeof label, "%d", lu);
        s_level_line(b, (int)s_lufs_y(lu, Y0, H), label);
    }
    s_time_axis(b, seconds, Y0, Y0 + H);
    const double i_lufs = json_number_value(integrated);
    if (json_is_number(integrated) && i_lufs < 0.0 && i_lufs > S_LUFS_FLOOR) {
        long y = s_lufs_y(i_lufs, Y0, H);
        s_printf(b, "<line class=\"il\" x1=\"%d\" y1=\"%ld\" x2=\"%d\" y2=\"%ld\"/>", S_PLOT_X0, y,
                 S_PLOT_X0 + S_PLOT_W, y);
        s_printf(b, "<text class=\"il\" x=\"%d\" y=\"%ld\" text-anchor=\"end\">I %.1f LUFS</text>",
                 S_PLOT_X0 + S_PLOT_W - 4, y - 4, i_lufs);
    }
    const size_t n = r->n_shortterm, n_x = n < S_PLOT_W ? n : S_PLOT_W;
    if (n_x && r->n_frames > 0 && r->shortterm_lufs) {
        s_pen_t pen = {.b = b};
        bool pen_down = false, opened = false;
        for (size_t g = 0; g < n_x; g++) {
            const size_t i0 = g * n / n_x, i1 = (g + 1) * n / n_x;
            double v = -(double)INFINITY;
            for (size_t i = i0; i < i1; i++)
                v = r->shortterm_lufs[i] > v ? r->shortterm_lufs[i] : v;
            if (!(v >= S_LUFS_GATE)) {
                pen_down = false;
                continue;
            }
            /* a point is the loudness at the end of its hop */
            long x = s_x_at((int64_t)i1 * r->hop_frames, r->n_frames), y = s_lufs_y(v, Y0, H);
            if (!opened)
                s_puts(b, "<path class=\"lufs\" d=\"");
            opened = true;
            if (pen_down)
                s_pen_line(&pen, x, y);
            else
                s_pen_move(&pen, x, y);
            pen_down = true;
        }
        if (pen.n_in_sub == 1)
            s_puts(b, "h0");
        if (opened) /* all silent: no line at all */
            s_puts(b, "\"/>");
    }
    s_puts(b, "</svg>");
}

/* ---- page ------------------------------------------------------------ */

static const char s_css[] =
    "body{font:14px/1.45 system-ui,sans-serif;color:#1d1d1f;background:#fff;max-width:1120px;margin:0 auto;"
    "padding:12px 24px}"
    "h1{font-size:22px;margin:4px 0}h2{font-size:17px;margin:0 0 4px;overflow-wrap:anywhere}"
    "table{border-collapse:collapse;margin:6px 0 10px}"
    "th,td{padding:3px 9px;border-bottom:1px solid #e4e4e4;text-align:left;vertical-align:top}"
    "th{font-weight:600;background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "td.f{overflow-wrap:anywhere}dl{display:grid;grid-template-columns:max-content auto;gap:1px 14px;margin:6px 0}"
    "dl.render{grid-template-columns:repeat(3,max-content auto)}"
    "dt{color:#555}dd{margin:0;overflow-wrap:anywhere}code{font-size:12px}"
    ".badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;font-weight:600;color:#fff}"
    ".pass{background:#2b8a3e}.warn{background:#e8a200}.fail{background:#c92a2a}.other{background:#868e96}"
    ".verdict{font-size:16px;margin:8px 0}.meta{color:#555;margin:0 0 6px}"
    "section.file{border-top:2px solid #ccc;margin-top:20px;padding-top:8px;break-inside:avoid}"
    "figure{margin:6px 0 10px}figcaption{font-size:12px;color:#555}"
    "svg.plot{display:block;width:100%;height:auto;background:#fafafa}"
    "svg text{font-size:11px;fill:#555}.grid{stroke:#dadada;stroke-width:1}"
    ".wave{fill:#1c64d6}.lufs{fill:none;stroke:#e8590c;stroke-width:1.6;stroke-linejoin:round;stroke-linecap:round}"
    "line.il{stroke:#7048e8;stroke-dasharray:6 4}text.il{fill:#7048e8}";

static void s_head(s_buf_t *b, const json_t *manifest)
{
    const json_t *session = json_object_get(manifest, "session");
    s_puts(b,
           "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           /* nothing may load: the page must read the same offline and years later */
           "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
    s_esc(b, s_str(session, "name"));
    s_puts(b, " &mdash; delivery report</title>\n<style>");
    s_puts(b, s_css);
    s_puts(b, "</style>\n</head>\n<body>\n");
}

static void s_dl_row(s_buf_t *b, const char *term, const json_t *v)
{
    s_puts(b, "<dt>");
    s_esc(b, term);
    s_puts(b, "</dt><dd>");
    s_value(b, v);
    s_puts(b, "</dd>");
}

static void s_header(s_buf_t *b, const json_t *manifest, s_tally_t all)
{
    const json_t *session = json_object_get(manifest, "session"), *render = json_object_get(manifest, "render");
    const json_t *null_test = json_object_get(manifest, "null_test");
    s_puts(b, "<header>\n<h1>");
    s_esc(b, s_str(session, "name"));
    s_puts(b, "</h1>\n<p class=\"verdict\">");
    s_badge(b, all.fail ? "fail" : all.warn ? "warn" : "pass");
    s_printf(b, " %zu files; checks: ", json_array_size(json_object_get(manifest, "files")));
    s_tally_badges(b, all);
    s_puts(b, "</p>\n<dl>");
    s_dl_row(b, "session", json_object_get(session, "path"));
    s_puts(b, "<dt>hash</dt><dd><code>");
    s_esc(b, s_str(session, "hash"));
    s_puts(b, "</code></dd>");
    s_dl_row(b, "created", json_object_get(manifest, "created"));
    s_dl_row(b, "stemfarm", json_object_get(manifest, "stemfarm_version"));
    double frames, rate;
    if (s_num(render, "frames", &frames) && s_num(render, "sample_rate", &rate) && rate > 0) {
        char when[48];
        s_fmt_time(when, sizeof when, frames / rate, 3);
        s_printf(b, "<dt>duration</dt><dd>%s</dd>", when);
    }
    s_puts(b, "<dt>null test</dt><dd>");
    s_badge(b, s_str(null_test, "result"));
    double residual, limit;
    if (s_num(null_test, "residual_dbfs", &residual) && s_num(null_test, "limit_dbfs", &limit)) {
        s_puts(b, " residual ");
        s_value(b, json_object_get(null_test, "residual_dbfs"));
        s_printf(b, " dBFS (limit %.1f dBFS", limit);
        if (json_is_true(json_object_get(null_test, "at_quantisation_floor")))
            s_puts(b, ", at the quantisation floor");
        s_puts(b, ")");
    } else if (*s_str(null_test, "reason")) {
        s_puts(b, " ");
        s_esc(b, s_str(null_test, "reason"));
    }
    s_puts(b, "</dd></dl>\n<h2>Render</h2>\n<dl class=\"render\">");
    const char *key;
    const json_t *v;
    /* json_object_foreach only reads, though its iterator wants a mutable object */
    json_object_foreach((json_t *)render, key, v) s_dl_row(b, key, v);
    s_puts(b, "</dl>\n</header>\n");
}

static void s_summary(s_buf_t *b, const json_t *files)
{
    s_puts(b, "<h2>Deliverables</h2>\n<table class=\"summary\">\n<tr><th>file</th><th>role</th><th>name</th>"
              "<th>layout</th><th>peak dBFS</th><th>true peak dBTP</th><th>LUFS</th><th>LRA LU</th>"
              "<th>checks</th></tr>\n");
    for (size_t k = 0; k < json_array_size(files); k++) {
        const json_t *f = json_array_get(files, k);
        s_printf(b, "<tr><td class=\"f\"><a href=\"#file-%zu\">", k);
        s_esc(b, s_str(f, "file"));
        s_puts(b, "</a></td><td>");
        s_esc(b, s_str(f, "role"));
        s_puts(b, "</td><td>");
        s_esc(b, s_str(f, "name"));
        s_puts(b, "</td><td>");
        s_esc(b, s_str(f, "layout"));
        static const char *const levels[] = {"peak_dbfs", "true_peak_dbtp", "integrated_lufs"};
        for (size_t i = 0; i < sizeof levels / sizeof *levels; i++) {
            s_puts(b, "</td><td class=\"n\">");
            s_level(b, f, levels[i]);
        }
        s_puts(b, "</td><td class=\"n\">");
        s_value(b, json_object_get(f, "loudness_range_lu"));
        s_puts(b, "</td><td>");
        s_tally_badges(b, s_file_tally(f));
        s_puts(b, "</td></tr>\n");
    }
    s_puts(b, "</table>\n");
}

static void s_checks(s_buf_t *b, const json_t *checks)
{
    s_puts(b, "<table class=\"checks\">\n<tr><th>check</th><th>result</th><th>values</th></tr>\n");
    for (size_t i = 0; i < json_array_size(checks); i++) {
        const json_t *c = json_array_get(checks, i);
        s_puts(b, "<tr><td>");
        s_esc(b, s_str(c, "check"));
        s_puts(b, "</td><td>");
        s_badge(b, s_str(c, "result"));
        s_puts(b, "</td><td>");
        const char *key;
        const json_t *v;
        bool first = true;
        json_object_foreach((json_t *)c, key, v)
        {
            if (!strcmp(key, "check") || !strcmp(key, "result"))
                continue;
            s_puts(b, first ? "" : "; ");
            s_esc(b, key);
            s_puts(b, " ");
            s_value(b, v);
            first = false;
        }
        s_puts(b, "</td></tr>\n");
    }
    s_puts(b, "</table>\n");
}

static void s_file_section(s_buf_t *b, const json_t *manifest, const json_t *f, size_t k,
                           const sf_meter_result_t *meter)
{
    s_printf(b, "<section class=\"file\" id=\"file-%zu\">\n<h2>", k);
    s_esc(b, s_str(f, "file"));
    s_puts(b, "</h2>\n<p class=\"meta\">");
    s_esc(b, s_str(f, "role"));
    s_puts(b, " &ldquo;");
    s_esc(b, s_str(f, "name"));
    s_puts(b, "&rdquo; &middot; ");
    s_esc(b, s_str(f, "layout"));
    const json_t *labels = json_object_get(f, "channel_labels");
    for (size_t c = 0; c < json_array_size(labels); c++) {
        s_puts(b, c ? " " : " (");
        s_esc(b, json_string_value(json_array_get(labels, c)) ? json_string_value(json_array_get(labels, c)) : "?");
        s_puts(b, c + 1 == json_array_size(labels) ? ")" : "");
    }
    s_puts(b, " &middot; ");
    s_esc(b, s_str(f, "format"));
    s_puts(b, " ");
    s_esc(b, s_str(f, "sample_format"));
    const double rate = s_file_rate(f, manifest);
    double frames = 0;
    if (s_num(f, "frames", &frames) && rate > 0) {
        char when[48];
        s_fmt_time(when, sizeof when, frames / rate, 3);
        s_printf(b, " &middot; %.0f Hz &middot; %s (%.0f frames)", rate, when, frames);
    }
    s_puts(b, "<br>SHA-256 <code>");
    s_esc(b, s_str(f, "sha256"));
    s_puts(b, "</code></p>\n");
    if (meter) {
        const double seconds = rate > 0 ? (double)meter->n_frames / rate : 0.0;
        s_puts(b, "<figure><figcaption>waveform: min and max over all channels</figcaption>");
        s_wave_svg(b, meter, seconds);
        s_puts(b, "</figure>\n<figure><figcaption>short-term loudness (3 s window), LUFS</figcaption>");
        s_lufs_svg(b, meter, seconds, json_object_get(f, "integrated_lufs"));
        s_puts(b, "</figure>\n");
    } else {
        s_puts(b, "<p class=\"meta\">no overview: the file was not metered for this report</p>\n");
    }
    s_puts(b, "<table class=\"meters\">\n<tr><th>sample peak</th><th>true peak</th><th>integrated</th>"
              "<th>loudness range</th></tr>\n<tr><td class=\"n\">");
    s_level(b, f, "peak_dbfs");
    s_puts(b, " dBFS</td><td class=\"n\">");
    s_level(b, f, "true_peak_dbtp");
    s_puts(b, " dBTP</td><td class=\"n\">");
    s_level(b, f, "integrated_lufs");
    s_puts(b, " LUFS</td><td class=\"n\">");
    s_value(b, json_object_get(f, "loudness_range_lu"));
    s_puts(b, " LU</td></tr>\n</table>\n");
    s_checks(b, json_object_get(f, "checks"));
    s_puts(b, "</section>\n");
}

sf_rc report_html(const json_t *manifest, const sf_meter_result_t *const *meters, size_t n_meters, char **html,
                  sf_err_t *err)
{
    *html = NULL;
    const json_t *files = json_object_get(manifest, "files");
    if (!json_is_array(files))
        return SF_ERR(err, SF_E_INPUT, "not a stemfarm manifest: no 'files' array");
    const size_t n_files = json_array_size(files);
    for (size_t k = 0; k < n_files; k++)
        if (!json_is_object(json_array_get(files, k)))
            return SF_ERR(err, SF_E_INPUT, "not a stemfarm manifest: files[%zu] is not an object", k);
    if (n_meters != 0 && n_meters != n_files)
        return SF_ERR(err, SF_E_INPUT, "%zu meter results for the %zu files of the manifest", n_meters, n_files);
    s_tally_t all = {0};
    for (size_t k = 0; k < n_files; k++) {
        s_tally_t t = s_file_tally(json_array_get(files, k));
        all.pass += t.pass;
        all.warn += t.warn;
        all.fail += t.fail;
        all.other += t.other;
    }
    const char *null_result = s_str(json_object_get(manifest, "null_test"), "result");
    if (strcmp(s_result_class(null_result), "other")) /* not_applicable is no check */
        s_tally_add(&all, null_result);
    s_buf_t b = {0};
    s_head(&b, manifest);
    s_header(&b, manifest, all);
    s_summary(&b, files);
    for (size_t k = 0; k < n_files; k++)
        s_file_section(&b, manifest, json_array_get(files, k), k, n_meters && meters ? meters[k] : NULL);
    s_puts(&b, "</body>\n</html>\n");
    if (b.nomem) {
        sf_free(b.p);
        return SF_ERR(err, SF_E_NOMEM, "out of memory for the report");
    }
    *html = b.p;
    return SF_OK;
}

/* The rename is durable only once the folder's entry is on disk. */
static sf_rc s_fsync_dir(const char *dir, sf_err_t *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return SF_ERR(err, SF_E_IO, "cannot open '%s': %s", dir, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? SF_OK : SF_ERR(err, SF_E_IO, "cannot sync '%s': %s", dir, strerror(errno));
}

sf_rc report_write(const char *out_dir, const json_t *manifest, const sf_meter_result_t *const *meters, size_t n_meters,
                   sf_err_t *err)
{
    char *html = NULL;
    sf_rc rc = report_html(manifest, meters, n_meters, &html, err);
    if (rc == SF_OK)
        rc = deliver_write_atomic(out_dir, REPORT_NAME, html, NULL, err);
    if (rc == SF_OK)
        rc = s_fsync_dir(out_dir, err);
    sf_free(html);
    return rc;
}
