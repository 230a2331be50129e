/* test_meter.c -- the meters of delivered files: EBU Tech 3341 reference
 * signals, BS.1770 channel weights, the inter-sample peak, the overviews, and
 * agreement with an independent meter (ffmpeg's ebur128 filter) on files. */
#include "sf/media.h"
#include "sf/meter.h"

#include "testutil.h"

#include <check.h>
#include <ebur128.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATE 48000

typedef struct {
    int n_channels;
    double amp[8]; /* per channel: amplitude of the sine (0: silent) */
    double freq;
    double phase; /* radians */
    int64_t n;    /* frames: 10 ms raised-cosine fades at both ends */
} tone_t;

/* The fades keep the band-limited waveform free of the overshoot an abrupt
 * start or stop would have (several percent of the jump): the peaks measured
 * are the tone's own. */
static double s_tone(int ch, int64_t i, void *ctx)
{
    const tone_t *t = ctx;
    const int64_t fade = RATE / 100, edge = i < t->n - 1 - i ? i : t->n - 1 - i;
    const double g = edge >= fade ? 1.0 : pow(sin(M_PI / 2 * (double)edge / (double)fade), 2);
    return g * t->amp[ch] * sin(2.0 * M_PI * t->freq * (double)i / RATE + t->phase);
}

/* Meters `seconds` of tone through the float path. */
static sf_meter_result_t s_meter_tone(tone_t *t, double seconds, const char *const *labels)
{
    const int64_t n = t->n = (int64_t)(seconds * RATE);
    float *x = malloc(sizeof(float) * (size_t)n * (size_t)t->n_channels);
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < t->n_channels; c++)
            x[i * t->n_channels + c] = (float)s_tone(c, i, (void *)t);
    sf_meter_t *m = NULL;
    sf_err_t err = {0};
    ck_assert_msg(sf_meter_new(t->n_channels, labels, RATE, n, &m, &err) == SF_OK, "%s", err.msg);
    /* in uneven pieces: hops and buckets must not care */
    for (int64_t at = 0, k = 0; at < n; k++) {
        int64_t len = (k % 3 + 1) * 7919;
        len = len < n - at ? len : n - at;
        ck_assert_int_eq(sf_meter_add_float(m, x + at * t->n_channels, (size_t)len, &err), SF_OK);
        at += len;
    }
    sf_meter_result_t r;
    ck_assert_int_eq(sf_meter_result(m, &r, &err), SF_OK);
    sf_meter_destroy(&m);
    ck_assert_ptr_null(m);
    free(x);
    return r;
}

/* EBU Tech 3341 test case 1 and 2: a 1 kHz sine at -23 dBFS (and -33) in
 * both channels of a stereo programme reads -23.0 LUFS (-33.0) +-0.1 LU. */
START_TEST(test_tech3341_reference_tones)
{
    const double levels[] = {-23.0, -33.0};
    for (int k = 0; k < 2; k++) {
        const double a = pow(10.0, levels[k] / 20.0);
        tone_t t = {2, {a, a}, 1000.0, 0.0, 0};
        sf_meter_result_t r = s_meter_tone(&t, 20.0, NULL);
        ck_assert_msg(fabs(r.integrated_lufs - levels[k]) <= 0.1, "%.3f LUFS for %.0f dBFS", r.integrated_lufs,
                      levels[k]);
        ck_assert_msg(r.lra_lu < 0.1, "a steady tone has no loudness range: %.2f LU", r.lra_lu);
        ck_assert_msg(fabs(sf_meter_db(r.sample_peak) - levels[k]) < 0.01, "sample peak %.3f", r.sample_peak);
        ck_assert_int_eq(r.n_frames, 20 * RATE);
        sf_meter_result_free(&r);
    }
}
END_TEST

/* BS.1770 weights by layout: a surround channel counts +1.5 dB (1.41), the
 * LFE not at all, the centre like a front; a mono file is its one channel. */
START_TEST(test_channel_weights)
{
    const double a = pow(10.0, -20.0 / 20.0);
    tone_t front = {6, {a, 0, 0, 0, 0, 0}, 1000.0, 0.0, 0};
    tone_t centre = {6, {0, 0, a, 0, 0, 0}, 1000.0, 0.0, 0};
    tone_t surround = {6, {0, 0, 0, 0, a, 0}, 1000.0, 0.0, 0};
    tone_t lfe = {6, {0, 0, 0, a, 0, 0}, 1000.0, 0.0, 0};
    tone_t rear71 = {8, {0, 0, 0, 0, 0, 0, 0, a}, 1000.0, 0.0, 0};
    tone_t mono = {1, {a}, 1000.0, 0.0, 0};
    sf_meter_result_t rf = s_meter_tone(&front, 10.0, NULL), rc = s_meter_tone(&centre, 10.0, NULL);
    sf_meter_result_t rs = s_meter_tone(&surround, 10.0, NULL), rl = s_meter_tone(&lfe, 10.0, NULL);
    sf_meter_result_t r8 = s_meter_tone(&rear71, 10.0, NULL), rm = s_meter_tone(&mono, 10.0, NULL);
    ck_assert_msg(fabs(rc.integrated_lufs - rf.integrated_lufs) < 0.01, "C %.3f vs L %.3f", rc.integrated_lufs,
                  rf.integrated_lufs);
    ck_assert_msg(fabs(rs.integrated_lufs - rf.integrated_lufs - 10 * log10(1.41)) < 0.01, "Ls %.3f vs L %.3f",
                  rs.integrated_lufs, rf.integrated_lufs);
    ck_assert_msg(fabs(r8.integrated_lufs - rs.integrated_lufs) < 0.01, "7.1 Rsr %.3f vs 5.1 Ls %.3f",
                  r8.integrated_lufs, rs.integrated_lufs);
    ck_assert_msg(isinf(rl.integrated_lufs) && rl.integrated_lufs < 0, "LFE alone reads %.3f", rl.integrated_lufs);
    ck_assert_msg(fabs(rm.integrated_lufs - rf.integrated_lufs) < 0.01, "mono %.3f", rm.integrated_lufs);
    /* a per-channel file of the LFE is labelled so, and reads as silence */
    const char *const lfe_label[] = {"LFE"};
    tone_t lfe_file = {1, {a}, 60.0, 0.0, 0};
    sf_meter_result_t rlf = s_meter_tone(&lfe_file, 5.0, lfe_label);
    ck_assert(isinf(rlf.integrated_lufs));
    ck_assert(rlf.sample_peak > 0.09); /* the peaks still count */
    sf_meter_result_t *all[] = {&rf, &rc, &rs, &rl, &r8, &rm, &rlf};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++)
        sf_meter_result_free(all[k]);
    sf_meter_t *m = NULL;
    sf_err_t err = {0};
    const char *const bad[] = {"Q"};
    ck_assert_int_eq(sf_meter_new(1, bad, RATE, 10, &m, &err), SF_E_INPUT);
    ck_assert_str_eq(err.msg, "cannot meter a channel labelled 'Q'");
    ck_assert_int_eq(sf_meter_new(3, NULL, RATE, 10, &m, &err), SF_E_INPUT);
    ck_assert_ptr_null(m);
}
END_TEST

/* A full-scale sine at a quarter of the rate, 45 degrees off the sample
 * grid: every sample is at +-0.707 (-3.01 dBFS) while the waveform between
 * them reaches 1.0 -- the true peak reads 0 dBTP, the sample peak does not.
 * Tones up to 10 kHz at phases off the grid read their amplitude within
 * 0.15 dB (four times oversampling misses at most 1 - cos(pi f / 192 kHz);
 * libebur128's own true peak read white noise 1.5 dB low). */
START_TEST(test_true_peak_between_samples)
{
    tone_t t = {.n_channels = 2, .amp = {1.0, 1.0}, .freq = RATE / 4.0, .phase = M_PI / 4.0};
    sf_meter_result_t r = s_meter_tone(&t, 2.0, NULL);
    ck_assert_msg(fabs(sf_meter_db(r.sample_peak) + 3.0103) < 0.001, "sample peak %.4f dBFS",
                  sf_meter_db(r.sample_peak));
    ck_assert_msg(fabs(sf_meter_db(r.true_peak)) < 0.05, "true peak %.3f dBTP", sf_meter_db(r.true_peak));
    sf_meter_result_free(&r);
    const double freqs[] = {997.0, 3011.0, 7919.0, 10007.0};
    for (size_t k = 0; k < sizeof freqs / sizeof *freqs; k++) {
        const double amp = 0.5;
        tone_t u = {.n_channels = 1, .amp = {amp}, .freq = freqs[k], .phase = 0.3 + (double)k};
        r = s_meter_tone(&u, 1.0, NULL);
        ck_assert_msg(fabs(sf_meter_db(r.true_peak) - sf_meter_db(amp)) < 0.15, "%.0f Hz: %.3f dBTP, want %.3f",
                      freqs[k], sf_meter_db(r.true_peak), sf_meter_db(amp));
        ck_assert(r.true_peak <= amp * 1.001); /* and not above the waveform */
        sf_meter_result_free(&r);
    }
}
END_TEST

/* The overviews: short-term loudness every hop (5 per second), a min/max
 * waveform of about SF_METER_BUCKETS buckets that holds every sample. */
START_TEST(test_overviews)
{
    const int64_t n = 7 * RATE + 123;
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(i < 3 * RATE ? 0.0 : 0.5 * sin(2.0 * M_PI * 440.0 * (double)i / RATE));
    x[n - 1] = -0.75f; /* the last sample lands in the last bucket */
    sf_meter_t *m = NULL;
    sf_err_t err = {0};
    ck_assert_int_eq(sf_meter_new(1, NULL, RATE, n, &m, &err), SF_OK);
    ck_assert_int_eq(sf_meter_add_float(m, x, (size_t)n, &err), SF_OK);
    sf_meter_result_t r;
    ck_assert_int_eq(sf_meter_result(m, &r, &err), SF_OK);
    ck_assert_int_eq(r.hop_frames, RATE / 5);
    ck_assert_uint_eq(r.n_shortterm, (size_t)(n / (RATE / 5)));
    ck_assert(isinf(r.shortterm_lufs[10]));    /* 2.2 s: silence so far */
    ck_assert(isfinite(r.shortterm_lufs[30])); /* 6.2 s: the tone */
    ck_assert_uint_le(r.n_buckets, SF_METER_BUCKETS);
    ck_assert_uint_ge(r.n_buckets, SF_METER_BUCKETS * 99 / 100);
    float lo = 1, hi = -1;
    for (size_t b = 0; b < r.n_buckets; b++) {
        lo = r.wave_min[b] < lo ? r.wave_min[b] : lo;
        hi = r.wave_max[b] > hi ? r.wave_max[b] : hi;
        ck_assert(r.wave_min[b] <= r.wave_max[b]);
    }
    ck_assert(lo == -0.75f && hi <= 0.5f && hi > 0.499f);
    ck_assert(r.wave_min[r.n_buckets - 1] == -0.75f);
    ck_assert(r.wave_min[0] == 0.0f && r.wave_max[0] == 0.0f);
    sf_meter_result_free(&r);
    sf_meter_destroy(&m);
    free(x);
}
END_TEST

/* Momentary and short-term loudness, hop by hop, are libebur128's own: the
 * meter derives them from hop energies where a hop is whole milliseconds
 * (48 kHz) and asks the library otherwise (44.101 kHz); both must agree
 * with the library asked directly at every hop. */
static void s_check_hops_against_libebur128(int rate)
{
    const int64_t n = 20 * (int64_t)rate + 777;
    const int64_t hop = rate / 5;
    float *x = malloc(sizeof(float) * 2 * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < 2; c++) {
            const double t = (double)i / rate;
            const double ride = t < 3 ? 0.0 : t < 8 ? 0.05 : 0.4 + 0.3 * sin(t);
            x[2 * i + c] =
                (float)(ride * (sin(2 * M_PI * (300.0 + 200.0 * c) * t) + 0.3 * tu_noise(5 + (uint64_t)c, i)));
        }
    sf_meter_t *m = NULL;
    sf_err_t err = {0};
    ck_assert_int_eq(sf_meter_new(2, NULL, rate, n, &m, &err), SF_OK);
    /* uneven chunks: hops must not depend on how the frames arrive */
    for (int64_t at = 0, step = 1; at < n; at += step, step = step * 7 % 30011 + 1)
        ck_assert_int_eq(sf_meter_add_float(m, x + 2 * at, (size_t)(at + step > n ? n - at : step), &err), SF_OK);
    sf_meter_result_t r;
    ck_assert_int_eq(sf_meter_result(m, &r, &err), SF_OK);
    ck_assert_uint_eq(r.n_shortterm, (size_t)(n / hop));

    ebur128_state *ref = ebur128_init(2, (unsigned long)rate, EBUR128_MODE_S);
    double max_m = -INFINITY;
    for (size_t k = 0; k < r.n_shortterm; k++) {
        ck_assert_int_eq(ebur128_add_frames_float(ref, x + 2 * (size_t)k * (size_t)hop, (size_t)hop), 0);
        double mom, st;
        ck_assert_int_eq(ebur128_loudness_momentary(ref, &mom), 0);
        ck_assert_int_eq(ebur128_loudness_shortterm(ref, &st), 0);
        max_m = mom > max_m ? mom : max_m;
        if (isinf(st))
            ck_assert_msg(isinf(r.shortterm_lufs[k]), "%d Hz hop %zu: %.6f, want silence", rate, k,
                          r.shortterm_lufs[k]);
        else
            ck_assert_msg(fabs(r.shortterm_lufs[k] - st) < 1e-9, "%d Hz hop %zu: short-term %.12f LUFS, want %.12f",
                          rate, k, r.shortterm_lufs[k], st);
    }
    ck_assert_msg(fabs(r.max_momentary_lufs - max_m) < 1e-9, "%d Hz: max momentary %.12f, want %.12f", rate,
                  r.max_momentary_lufs, max_m);
    ebur128_destroy(&ref);
    sf_meter_result_free(&r);
    sf_meter_destroy(&m);
    free(x);
}

START_TEST(test_hop_loudness_is_libebur128s)
{
    s_check_hops_against_libebur128(48000);
    s_check_hops_against_libebur128(44101);
}
END_TEST

/* Programme material: tones with a slow level ride, noise whose spectrum
 * falls towards the top like music's (a 4-sample average), and a quiet
 * passage, so that gating and true peaks matter. */
static double s_programme(int ch, int64_t i, void *ctx)
{
    (void)ctx;
    double t = (double)i / RATE;
    double ride = t < 4 ? 0.3 : t < 7 ? 0.02 : 0.5 + 0.3 * sin(t);
    double noise = 0;
    for (int k = 0; k < 4; k++)
        noise += tu_noise(11 + (uint64_t)ch, i - k) / 4;
    return ride *
           (0.4 * sin(2 * M_PI * (220.0 + 110.0 * ch) * t) + 0.2 * sin(2 * M_PI * 3150.0 * t + ch) + 0.5 * noise);
}

/* Runs ffmpeg's ebur128 filter over a file: the last integrated loudness and
 * the largest true peak (linear) it reports. 0 when ffmpeg is not there. */
static int s_ffmpeg_meter(const char *path, double *lufs, double *true_peak)
{
    char *out = NULL;
    if (tu_run("command -v ffmpeg", &out, NULL, 10) != 0) {
        free(out);
        return 0;
    }
    free(out);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "ffmpeg -nostdin -hide_banner -loglevel error -i '%s' "
             "-af ebur128=peak=true:metadata=1,ametadata=mode=print:file=- -f null -",
             path);
    ck_assert_int_eq(tu_run(cmd, &out, NULL, 120), 0);
    *lufs = NAN;
    *true_peak = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        double v;
        if (sscanf(line, "lavfi.r128.I=%lf", &v) == 1)
            *lufs = v;
        else if (sscanf(line, "lavfi.r128.true_peak=%lf", &v) == 1 && v > *true_peak)
            *true_peak = v;
    }
    free(out);
    return 1;
}

/* Files read back through sf_media_hash_pcm with a meter agree with ffmpeg:
 * integrated loudness within 0.1 LU, true peak within 0.2 dB; pcm24 read as
 * int32 meters like its float copy. */
START_TEST(test_files_agree_with_ffmpeg)
{
    char *dir = tu_tmpdir();
    static const struct {
        int channels, bits;
    } cases[] = {{2, 24}, {2, 32}, {1, 16}, {6, 24}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char name[64];
        snprintf(name, sizeof name, "prog%zu.wav", k);
        char *path = tu_write_wav(dir, name, cases[k].channels, RATE, 12 * RATE, cases[k].bits, s_programme, NULL);
        const sf_sample_format_t fmt = cases[k].bits == 16   ? SF_SAMPLE_PCM16
                                       : cases[k].bits == 24 ? SF_SAMPLE_PCM24
                                                             : SF_SAMPLE_FLOAT32;
        sf_meter_t *m = NULL;
        sf_err_t err = {0};
        ck_assert_int_eq(sf_meter_new(cases[k].channels, NULL, RATE, 12 * RATE, &m, &err), SF_OK);
        uint64_t hash;
        int64_t frames;
        int channels;
        ck_assert_msg(sf_media_hash_pcm(path, fmt, m, &hash, &frames, &channels, &err) == SF_OK, "%s", err.msg);
        sf_meter_result_t r;
        ck_assert_int_eq(sf_meter_result(m, &r, &err), SF_OK);
        sf_meter_destroy(&m);
        ck_assert_int_eq(r.n_frames, 12 * RATE);
        double lufs, tp;
        if (!s_ffmpeg_meter(path, &lufs, &tp)) {
            fprintf(stderr, "test_meter: ffmpeg is not installed (scripts/setup installs it): not compared\n");
        } else {
            printf("%s: %d ch: stemfarm %.3f LUFS %.3f dBTP, ffmpeg %.3f LUFS %.3f dBTP\n", name, channels,
                   r.integrated_lufs, sf_meter_db(r.true_peak), lufs, sf_meter_db(tp));
            ck_assert_msg(fabs(r.integrated_lufs - lufs) <= 0.1, "%s: %.3f LUFS, ffmpeg %.3f", name, r.integrated_lufs,
                          lufs);
            ck_assert_msg(fabs(sf_meter_db(r.true_peak) - sf_meter_db(tp)) <= 0.2, "%s: %.3f dBTP, ffmpeg %.3f", name,
                          sf_meter_db(r.true_peak), sf_meter_db(tp));
        }
        sf_meter_result_free(&r);
        free(path);
    }
    tu_rm_rf(dir);
    free(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("meter");
    TCase *tc = tcase_create("meter");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_tech3341_reference_tones);
    tcase_add_test(tc, test_channel_weights);
    tcase_add_test(tc, test_true_peak_between_samples);
    tcase_add_test(tc, test_overviews);
    tcase_add_test(tc, test_hop_loudness_is_libebur128s);
    tcase_add_test(tc, test_files_agree_with_ffmpeg);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
