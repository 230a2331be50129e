/* meter.c -- loudness, peaks and overviews of a delivered file (see sf/meter.h).
 *
 * libebur128 does the loudness (K-weighting, gating, LRA); this module maps
 * our channel labels to its weights, feeds it in hops so the short-term
 * loudness can be sampled for plots, and keeps the sample peak and the
 * waveform overview itself (both exact, from the samples as the file holds
 * them).
 *
 * True peak: BS.1770-4 oversamples to at least 192 kHz and takes the largest
 * magnitude. libebur128's own interpolator reads full-band material more
 * than a decibel low (white noise: -6.0 dBTP where the band-limited waveform
 * reaches -4.5), the wrong direction for a ceiling check, so the
 * oversampling is libsoxr's high-quality (20-bit) linear-phase resampler
 * (-4.6 dBTP on the same noise; ffmpeg's ebur128 filter reads -5.0; its
 * very-high-quality setting reads the same to 0.01 dB on the bench's stems
 * and costs an eighth more of a delivery's instructions). Four
 * times oversampling can still miss a peak of a tone right at Nyquist by up
 * to 0.7 dB (1 - cos(pi/8)); for programme material the meters agree within
 * 0.2 dB.
 */
#include "sf/meter.h"

#include "sf/alloc.h"
#include "sf/dsp.h"
#include "sf/session.h"

#include <ebur128.h>
#include <math.h>
#include <soxr.h>
#include <string.h>

#define SF_METER_HOP_PER_S 5 /* short-term loudness points per second */
#define SF_METER_HOP_MS    (1000 / SF_METER_HOP_PER_S)
#define SF_METER_MOMENTARY (400 / SF_METER_HOP_MS)  /* hops in BS.1770's momentary window */
#define SF_METER_SHORTTERM (3000 / SF_METER_HOP_MS) /* ... and in its short-term window */
#define SF_METER_TP_RATE   192000                   /* true peak: oversampled to at least this */

struct sf_meter {
    ebur128_state *ebu;
    int n_channels;
    int64_t n_frames;
    int64_t hop_frames;
    int64_t in_hop; /* frames fed since the last short-term point */
    double *shortterm;
    size_t n_shortterm, cap_shortterm;
    int64_t bucket_frames;
    float *wave_min, *wave_max;
    size_t cap_buckets;
    double sample_peak;
    double max_momentary, max_shortterm;
    /* Mean-square energy of the last SF_METER_SHORTTERM hops, newest at
     * hop_at - 1 (ring); zero before the first, as libebur128's own windows
     * start. Used when a hop is a whole number of milliseconds' worth of
     * frames (hop_exact), so that momentary and short-term loudness are means
     * of hop energies: each hop's samples are summed once instead of 17 times
     * (2 for the momentary, 15 for the short-term window). */
    double hop_energy[SF_METER_SHORTTERM];
    size_t hop_at;
    bool hop_exact;
    float *scratch; /* one hop, float, for int32 input */
    soxr_t tp;      /* the oversampler; NULL at 192 kHz and above */
    float *tp_out;  /* tp_cap oversampled frames */
    size_t tp_cap;
    double true_peak;
};

static int s_weight(const char *label)
{
    if (!strcmp(label, "L") || !strcmp(label, "M"))
        return EBUR128_LEFT; /* weight 1, like R and C */
    if (!strcmp(label, "R"))
        return EBUR128_RIGHT;
    if (!strcmp(label, "C"))
        return EBUR128_CENTER;
    if (!strcmp(label, "LFE"))
        return EBUR128_UNUSED; /* BS.1770 leaves the LFE out */
    if (!strcmp(label, "Ls") || !strcmp(label, "Lss") || !strcmp(label, "Lsr"))
        return EBUR128_LEFT_SURROUND; /* 1.41 */
    if (!strcmp(label, "Rs") || !strcmp(label, "Rss") || !strcmp(label, "Rsr"))
        return EBUR128_RIGHT_SURROUND;
    return -1;
}

double sf_meter_db(double linear) { return linear > 0 ? 20.0 * log10(linear) : -(double)INFINITY; }

sf_rc sf_meter_new(int n_channels, const char *const *labels, int sample_rate, int64_t expected_frames,
                   sf_meter_t **out, sf_err_t *err)
{
    *out = NULL;
    if (!labels)
        labels = sf_layout_labels(n_channels);
    if (!labels || n_channels < 1 || n_channels > SF_MAX_CHANNELS || sample_rate < 8000 || sample_rate > 384000)
        return SF_ERR(err, SF_E_INPUT, "cannot meter %d channels at %d Hz", n_channels, sample_rate);
    sf_meter_t *m = sf_calloc(1, sizeof *m);
    if (!m)
        return SF_ERR(err, SF_E_NOMEM, "out of memory for a meter");
    m->n_channels = n_channels;
    m->max_momentary = m->max_shortterm = -(double)INFINITY;
    m->hop_frames = sample_rate / SF_METER_HOP_PER_S;
    m->hop_exact = sample_rate % SF_METER_HOP_PER_S == 0;
    m->bucket_frames =
        expected_frames > SF_METER_BUCKETS ? (expected_frames + SF_METER_BUCKETS - 1) / SF_METER_BUCKETS : 1;
    m->ebu = ebur128_init((unsigned)n_channels, (unsigned long)sample_rate,
                          EBUR128_MODE_I | EBUR128_MODE_LRA | EBUR128_MODE_S);
    m->scratch = sf_malloc(sizeof(float) * (size_t)m->hop_frames * (size_t)n_channels);
    sf_rc rc = SF_OK;
    if (!m->ebu || !m->scratch)
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory for a meter");
    const int factor = (SF_METER_TP_RATE + sample_rate - 1) / sample_rate;
    if (rc == SF_OK && factor > 1) {
        soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
        soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
        soxr_runtime_spec_t rt = soxr_runtime_spec(1);
        soxr_error_t e = NULL;
        m->tp = soxr_create(sample_rate, (double)sample_rate * factor, (unsigned)n_channels, &e, &io, &q, &rt);
        m->tp_cap = (size_t)m->hop_frames * (size_t)factor + 1024;
        m->tp_out = sf_malloc(sizeof(float) * m->tp_cap * (size_t)n_channels);
        if (e || !m->tp || !m->tp_out)
            rc = SF_ERR(err, SF_E_NOMEM, "out of memory for a true-peak meter%s%s", e ? ": " : "", e ? e : "");
    }
    for (int c = 0; rc == SF_OK && c < n_channels; c++) {
        const int w = s_weight(labels[c]);
        if (w < 0)
            rc = SF_ERR(err, SF_E_INPUT, "cannot meter a channel labelled '%s'", labels[c]);
        else if (ebur128_set_channel(m->ebu, (unsigned)c, w) != EBUR128_SUCCESS)
            rc = SF_ERR(err, SF_E_INTERNAL, "libebur128 refused channel %d", c);
    }
    if (rc != SF_OK) {
        sf_meter_destroy(&m);
        return rc;
    }
    *out = m;
    return SF_OK;
}

static sf_rc s_push(double **arr, size_t *n, size_t *cap, double v)
{
    if (*n == *cap) {
        size_t grow = *cap ? 2 * *cap : 256;
        double *p = sf_realloc(*arr, grow * sizeof *p);
        if (!p)
            return SF_E_NOMEM;
        *arr = p;
        *cap = grow;
    }
    (*arr)[(*n)++] = v;
    return SF_OK;
}

/* Peak and overview of n interleaved float frames: a bucket's stretch of
 * frames at a time, so the inner loops are plain min/max reductions. */
static sf_rc s_overview(sf_meter_t *m, const float *x, size_t n)
{
    const size_t nc = (size_t)m->n_channels;
    size_t i = 0;
    while (i < n) {
        const int64_t frame = m->n_frames + (int64_t)i;
        const size_t b = (size_t)(frame / m->bucket_frames);
        const int64_t into = frame % m->bucket_frames;
        if (b >= m->cap_buckets) {
            size_t grow = m->cap_buckets ? 2 * m->cap_buckets : SF_METER_BUCKETS + 1;
            while (grow <= b)
                grow *= 2;
            float *lo = sf_realloc(m->wave_min, grow * sizeof *lo);
            if (lo)
                m->wave_min = lo;
            float *hi = lo ? sf_realloc(m->wave_max, grow * sizeof *hi) : NULL;
            if (!hi)
                return SF_E_NOMEM;
            m->wave_max = hi;
            m->cap_buckets = grow;
        }
        size_t run = (size_t)(m->bucket_frames - into);
        run = run < n - i ? run : n - i;
        const float *v = x + i * nc;
        float lo = into == 0 ? v[0] : m->wave_min[b];
        float hi = into == 0 ? v[0] : m->wave_max[b];
        float peak = (float)m->sample_peak;
        sf_dsp_min_max_peak(v, run * nc, &lo, &hi, &peak);
        m->wave_min[b] = lo;
        m->wave_max[b] = hi;
        m->sample_peak = peak;
        i += run;
    }
    return SF_OK;
}

/* Oversamples n frames (NULL: the resampler's last frames) into the true peak. */
static sf_rc s_true_peak(sf_meter_t *m, const float *x, size_t n, sf_err_t *err)
{
    const size_t n_samples_max = m->tp_cap * (size_t)m->n_channels;
    for (;;) {
        size_t done = 0, odone = 0;
        soxr_error_t e = soxr_process(m->tp, x, n, &done, m->tp_out, m->tp_cap, &odone);
        if (e)
            return SF_ERR(err, SF_E_INTERNAL, "true-peak oversampling failed: %s", e);
        size_t n_samples = odone * (size_t)m->n_channels;
        n_samples = n_samples < n_samples_max ? n_samples : n_samples_max;
        float lo = 0, hi = 0, peak = (float)m->true_peak; /* holds a float's magnitude: exact */
        sf_dsp_min_max_peak(m->tp_out, n_samples, &lo, &hi, &peak);
        m->true_peak = peak;
        if (x) {
            x += done * (size_t)m->n_channels;
            n -= done;
            if (n == 0)
                return SF_OK;
        } else if (odone == 0) {
            return SF_OK;
        }
    }
}

/* BS.1770 loudness of a mean-square energy, and back (libebur128's offset). */
static double s_lufs(double energy) { return energy > 0 ? 10.0 * log10(energy) - 0.691 : -(double)INFINITY; }

/* Momentary and short-term loudness at the end of a hop that just ended. */
static void s_hop_loudness(sf_meter_t *m, double *momentary, double *shortterm)
{
    double lufs;
    double e = 0.0;
    if (ebur128_loudness_window(m->ebu, SF_METER_HOP_MS, &lufs) == EBUR128_SUCCESS && isfinite(lufs))
        e = pow(10.0, (lufs + 0.691) / 10.0);
    m->hop_energy[m->hop_at] = e;
    m->hop_at = (m->hop_at + 1) % SF_METER_SHORTTERM;
    double sum = 0.0;
    for (size_t k = 1; k <= SF_METER_SHORTTERM; k++) {
        sum += m->hop_energy[(m->hop_at + SF_METER_SHORTTERM - k) % SF_METER_SHORTTERM];
        if (k == SF_METER_MOMENTARY)
            *momentary = s_lufs(sum / SF_METER_MOMENTARY);
    }
    *shortterm = s_lufs(sum / SF_METER_SHORTTERM);
}

/* Feeds n float frames that do not cross a hop boundary. */
static sf_rc s_feed(sf_meter_t *m, const float *x, size_t n, sf_err_t *err)
{
    if (s_overview(m, x, n) != SF_OK || ebur128_add_frames_float(m->ebu, x, n) != EBUR128_SUCCESS)
        return SF_ERR(err, SF_E_NOMEM, "out of memory metering");
    if (m->tp) {
        sf_rc rc = s_true_peak(m, x, n, err);
        if (rc != SF_OK)
            return rc;
    }
    m->n_frames += (int64_t)n;
    m->in_hop += (int64_t)n;
    if (m->in_hop == m->hop_frames) {
        m->in_hop = 0;
        double lufs;
        double momentary;
        if (m->hop_exact) {
            s_hop_loudness(m, &momentary, &lufs);
        } else {
            if (ebur128_loudness_momentary(m->ebu, &momentary) != EBUR128_SUCCESS)
                momentary = -(double)INFINITY;
            if (ebur128_loudness_shortterm(m->ebu, &lufs) != EBUR128_SUCCESS)
                lufs = -(double)INFINITY;
        }
        if (momentary > m->max_momentary)
            m->max_momentary = momentary;
        if (lufs > m->max_shortterm)
            m->max_shortterm = lufs;
        if (s_push(&m->shortterm, &m->n_shortterm, &m->cap_shortterm, isfinite(lufs) ? lufs : -(double)INFINITY))
            return SF_ERR(err, SF_E_NOMEM, "out of memory metering");
    }
    return SF_OK;
}

sf_rc sf_meter_add_float(sf_meter_t *m, const float *interleaved, size_t n_frames, sf_err_t *err)
{
    while (n_frames > 0) {
        size_t n = (size_t)(m->hop_frames - m->in_hop);
        n = n < n_frames ? n : n_frames;
        sf_rc rc = s_feed(m, interleaved, n, err);
        if (rc != SF_OK)
            return rc;
        interleaved += n * (size_t)m->n_channels;
        n_frames -= n;
    }
    return SF_OK;
}

sf_rc sf_meter_add_int32(sf_meter_t *m, const int32_t *interleaved, size_t n_frames, sf_err_t *err)
{
    /* exact: a left-justified int32 of 24 bits or fewer is a float after scaling by 2^-31 */
    const float scale = 1.0f / 2147483648.0f;
    while (n_frames > 0) {
        size_t n = (size_t)(m->hop_frames - m->in_hop);
        n = n < n_frames ? n : n_frames;
        const size_t n_samples = n * (size_t)m->n_channels;
        for (size_t i = 0; i < n_samples; i++)
            m->scratch[i] = (float)interleaved[i] * scale;
        sf_rc rc = s_feed(m, m->scratch, n, err);
        if (rc != SF_OK)
            return rc;
        interleaved += n_samples;
        n_frames -= n;
    }
    return SF_OK;
}

sf_rc sf_meter_result(sf_meter_t *m, sf_meter_result_t *out, sf_err_t *err)
{
    memset(out, 0, sizeof *out);
    out->n_frames = m->n_frames;
    out->sample_peak = m->sample_peak;
    out->hop_frames = m->hop_frames;
    out->bucket_frames = m->bucket_frames;
    if (m->tp) { /* the resampler's delay line holds the last frames' peaks */
        sf_rc rc = s_true_peak(m, NULL, 0, err);
        soxr_delete(m->tp);
        m->tp = NULL;
        if (rc != SF_OK)
            return rc;
    }
    /* the oversampled peak never reads below the samples themselves */
    out->true_peak = m->true_peak > m->sample_peak ? m->true_peak : m->sample_peak;
    double v;
    out->integrated_lufs =
        ebur128_loudness_global(m->ebu, &v) == EBUR128_SUCCESS && isfinite(v) ? v : -(double)INFINITY;
    out->lra_lu = ebur128_loudness_range(m->ebu, &v) == EBUR128_SUCCESS && isfinite(v) ? v : 0.0;
    out->max_momentary_lufs = isfinite(m->max_momentary) ? m->max_momentary : -(double)INFINITY;
    out->max_shortterm_lufs = isfinite(m->max_shortterm) ? m->max_shortterm : -(double)INFINITY;
    out->n_shortterm = m->n_shortterm;
    out->n_buckets = m->n_frames > 0 ? (size_t)((m->n_frames + m->bucket_frames - 1) / m->bucket_frames) : 0;
    out->shortterm_lufs = sf_malloc((out->n_shortterm ? out->n_shortterm : 1) * sizeof *out->shortterm_lufs);
    out->wave_min = sf_malloc((out->n_buckets ? out->n_buckets : 1) * sizeof *out->wave_min);
    out->wave_max = sf_malloc((out->n_buckets ? out->n_buckets : 1) * sizeof *out->wave_max);
    if (!out->shortterm_lufs || !out->wave_min || !out->wave_max) {
        sf_meter_result_free(out);
        return SF_ERR(err, SF_E_NOMEM, "out of memory metering");
    }
    if (out->n_shortterm)
        memcpy(out->shortterm_lufs, m->shortterm, out->n_shortterm * sizeof *m->shortterm);
    if (out->n_buckets) {
        memcpy(out->wave_min, m->wave_min, out->n_buckets * sizeof *m->wave_min);
        memcpy(out->wave_max, m->wave_max, out->n_buckets * sizeof *m->wave_max);
    }
    return SF_OK;
}

void sf_meter_result_free(sf_meter_result_t *r)
{
    if (!r)
        return;
    sf_free(r->shortterm_lufs);
    sf_free(r->wave_min);
    sf_free(r->wave_max);
    r->shortterm_lufs = NULL;
    r->wave_min = r->wave_max = NULL;
    r->n_shortterm = r->n_buckets = 0;
}

void sf_meter_destroy(sf_meter_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_meter_t *m = *self_p;
    if (m->ebu)
        ebur128_destroy(&m->ebu);
    sf_free(m->shortterm);
    sf_free(m->wave_min);
    sf_free(m->wave_max);
    sf_free(m->scratch);
    if (m->tp)
        soxr_delete(m->tp);
    sf_free(m->tp_out);
    sf_free(m);
    *self_p = NULL;
}
