/* test_deliver.c -- what a render of a mixing graph delivers, end to end
 * through the stemfarm executable: stems, mixes and multitracks of one
 * length, mixes that are the sums of their stems, multitracks that are the
 * consolidated clips, the null test in the manifest, per-channel files of a
 * 5.1 render with their labels, and bytes that do not depend on nodes or
 * segments. */
#include "testutil.h"

#include <check.h>
#include <sndfile.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RATE   48000
#define FRAMES 48000

static char *s_dir;

static double s_tone(int ch, int64_t i, void *ctx)
{
    double f = (double)(intptr_t)ctx;
    return 0.2 * tu_sine(f + 30.0 * ch, RATE, i);
}

static void setup(void)
{
    s_dir = tu_tmpdir();
    free(tu_write_wav(s_dir, "media/kick.wav", 1, RATE, FRAMES, 24, s_tone, (void *)(intptr_t)60));
    free(tu_write_wav(s_dir, "media/snare.wav", 1, RATE, FRAMES, 24, s_tone, (void *)(intptr_t)200));
    free(tu_write_wav(s_dir, "media/keys.wav", 2, RATE, FRAMES, 24, s_tone, (void *)(intptr_t)330));
    free(tu_write_wav(s_dir, "media/vox.wav", 1, RATE, FRAMES, 24, s_tone, (void *)(intptr_t)440));
}

static void teardown(void)
{
    tu_rm_rf(s_dir);
    free(s_dir);
}

static const char s_graph[] =
    "version: 1\n"
    "session: {name: G, sample_rate: 48000}\n"
    "output: {sample_format: float32, name: \"{stem}\"%s}\n"
    "tracks:\n"
    "  - {name: Kick, source: media/kick.wav, output: Drum Bus, pan: -0.2}\n"
    "  - name: Snare\n"
    "    clips: [{source: media/snare.wav, at: 1000, offset: 17, length: 30000, fade_in: 999,\n"
    "             fade_out: {length: 2001, shape: equal_power}}]\n"
    "    output: Drum Bus\n"
    "    sends: [{to: Verb, level_db: -6}]\n"
    "  - name: Keys Pad\n"
    "    source: media/keys.wav\n"
    "    automation: {gain_db: [[0, -inf], [0.5s, 0]], pan: [[0, -1], [1s, 1]]}\n"
    "  - name: Vox\n"
    "    source: media/vox.wav\n"
    "    sends: [{to: Verb, level_db: -3, pre_fader: true}]\n"
    "    gain_db: -4\n"
    "buses:\n"
    "  - {name: Drum Bus, output: Music, gain_db: -1.5}\n"
    "  - {name: Music}\n"
    "  - {name: Verb, gain_db: -2}\n"
    "stems:\n"
    "  - {name: Drums, tracks: [Kick, Snare]}\n"
    "  - {name: Keys, tracks: [Keys Pad]}\n"
    "  - {name: Vocals, tracks: [%s]}\n"
    "mixes:\n"
    "  - {name: Instrumental, exclude: [Vocals]}\n"
    "  - {name: Vocal Up, gains_db: {Vocals: 1.5}}\n"
    "multitracks: true\n";

/* The graph session with more `output` keys and the Vocals stem holding `vocals`. */
static char *s_graph_session(const char *file, const char *output, const char *vocals)
{
    char yaml[sizeof s_graph + 256];
    snprintf(yaml, sizeof yaml, s_graph, output, vocals);
    return tu_write_text(s_dir, file, yaml);
}

static int s_render(const char *session, const char *out, const char *extra, char **err)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' render '%s' -o '%s/%s' %s", tu_stemfarm_bin(), session, s_dir, out, extra);
    return tu_run(cmd, NULL, err, 240);
}

static double *s_read(const char *out, const char *name, int *channels, int64_t *frames)
{
    char rel[512];
    snprintf(rel, sizeof rel, "%s/%s", out, name);
    char *path = tu_path(s_dir, rel);
    ck_assert_msg(tu_exists(path), "%s was not delivered", path);
    double *v = tu_read_audio(path, channels, frames, NULL);
    free(path);
    return v;
}

START_TEST(test_mixes_multitracks_and_null_test)
{
    char *session = s_graph_session("graph.yaml", "", "Vox");
    char *err = NULL;
    ck_assert_msg(s_render(session, "out", "--nodes 2 --segment 7001", &err) == 0, "%s", err);
    free(err);
    int ch[8];
    int64_t n[8];
    double *drums = s_read("out", "Drums.wav", &ch[0], &n[0]);
    double *keys = s_read("out", "Keys.wav", &ch[1], &n[1]);
    double *vocals = s_read("out", "Vocals.wav", &ch[2], &n[2]);
    double *instr = s_read("out", "Instrumental.wav", &ch[3], &n[3]);
    double *vup = s_read("out", "Vocal Up.wav", &ch[4], &n[4]);
    double *snare = s_read("out", "Snare.wav", &ch[5], &n[5]);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(n[i] == FRAMES, "file %d has %lld frames, every deliverable must have %d", i, (long long)n[i],
                      FRAMES);
    ck_assert_int_eq(ch[3], 2);
    ck_assert_int_eq(ch[5], 1); /* a multitrack keeps its source's channels */
    double worst_instr = 0, worst_vup = 0, vocal_energy = 0;
    double up = pow(10.0, 1.5 / 20.0);
    for (int64_t i = 0; i < FRAMES * 2; i++) {
        worst_instr = fmax(worst_instr, fabs(instr[i] - (drums[i] + keys[i])));
        worst_vup = fmax(worst_vup, fabs(vup[i] - (drums[i] + keys[i] + up * vocals[i])));
        vocal_energy += vocals[i] * vocals[i];
    }
    ck_assert_msg(worst_instr < 1e-6, "Instrumental differs from Drums + Keys by %g", worst_instr);
    ck_assert_msg(worst_vup < 1e-6, "Vocal Up differs from the stems with vocals +1.5 dB by %g", worst_vup);
    /* the vocal's pre-fader reverb send lands in the Vocals stem */
    ck_assert(vocal_energy > 1.0);
    /* the snare multitrack is the clip alone: fades, offset, no fader, pan or bus */
    ck_assert_double_eq(snare[0], 0.0);
    ck_assert_double_eq(snare[1000], 0.0); /* the fade-in's first sample is silent */
    double mid = tu_quantized(0.2 * tu_sine(200.0, RATE, 17 + 15000), 24);
    ck_assert_msg(fabs(snare[16000] - mid) < 1e-6, "snare multitrack at 16000: %g, want %g", snare[16000], mid);
    ck_assert_double_eq(snare[31000], 0.0); /* after the clip */

    char *manifest_path = tu_path(s_dir, "out/manifest.json");
    json_error_t jerr;
    json_t *m = json_load_file(manifest_path, 0, &jerr);
    ck_assert_msg(m != NULL, "%s", jerr.text);
    json_t *null_test = json_object_get(m, "null_test");
    ck_assert_str_eq(json_string_value(json_object_get(null_test, "result")), "pass");
    double residual = json_real_value(json_object_get(null_test, "residual_dbfs"));
    ck_assert_msg(residual < -120.0, "float32 stems null at %.1f dBFS, want below -120", residual);
    ck_assert_uint_eq(json_array_size(json_object_get(m, "files")), 3 + 2 + 4);
    json_decref(m);
    free(manifest_path);
    free(drums);
    free(keys);
    free(vocals);
    free(instr);
    free(vup);
    free(snare);

    /* the same bytes from one node and other segments */
    ck_assert_msg(s_render(session, "again", "--nodes 1 --segment 0.33s", &err) == 0, "%s", err);
    free(err);
    static const char *names[] = {"Drums.wav", "Keys.wav",  "Vocals.wav",   "Instrumental.wav", "Vocal Up.wav",
                                  "Kick.wav",  "Snare.wav", "Keys Pad.wav", "Vox.wav"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char a[512], b[512];
        snprintf(a, sizeof a, "%s/out/%s", s_dir, names[i]);
        snprintf(b, sizeof b, "%s/again/%s", s_dir, names[i]);
        ck_assert_msg(tu_files_equal(a, b), "%s differs between renders", names[i]);
    }
    free(session);
}
END_TEST

START_TEST(test_stems_that_cannot_null_fail_unless_declared)
{
    /* Kick in two stems (a warning at validation): the stems hold it twice,
     * the full mix once, so they cannot null and the render must not deliver. */
    char *session = s_graph_session("double.yaml", "", "Vox, Kick");
    char *err = NULL;
    ck_assert_int_eq(s_render(session, "bad", "--nodes 1", &err), 1);
    ck_assert_msg(strstr(err, "check 'null_test' failed"), "%s", err);
    free(err);
    char *bad = tu_path(s_dir, "bad/Drums.wav");
    ck_assert_msg(!tu_exists(bad), "a render that failed its null test delivered files");
    free(bad);
    free(session);
    /* declared: delivered, with the residual reported as a warning */
    session = s_graph_session("declared.yaml", ", null_test: false", "Vox, Kick");
    ck_assert_msg(s_render(session, "declared", "--nodes 1", &err) == 0, "%s", err);
    free(err);
    char *manifest_path = tu_path(s_dir, "declared/manifest.json");
    json_t *m = json_load_file(manifest_path, 0, NULL);
    json_t *null_test = json_object_get(m, "null_test");
    ck_assert_str_eq(json_string_value(json_object_get(null_test, "result")), "warn");
    ck_assert(json_real_value(json_object_get(null_test, "residual_dbfs")) > -90.0);
    json_decref(m);
    free(manifest_path);
    free(session);
}
END_TEST

START_TEST(test_surround_per_channel_files)
{
    char *session = tu_write_text(
        s_dir, "surround.yaml",
        "version: 1\nsession: {name: S, sample_rate: 48000}\n"
        "output: {sample_format: pcm24, interleave: false, name: \"{stem}\"}\n"
        "master: {channels: 5.1}\n"
        "buses: [{name: Room, channels: 5.1}]\n"
        "tracks:\n"
        "  - {name: Dialog, source: media/vox.wav, output: Room, route: [C]}\n"
        "  - {name: Boom, source: media/kick.wav, output: Room, route: [LFE]}\n"
        "  - {name: Music, source: media/keys.wav}\n"
        "stems:\n  - {name: Dx, tracks: [Dialog]}\n  - {name: Fx, tracks: [Boom]}\n  - {name: Mx, tracks: [Music]}\n");
    char *err = NULL;
    ck_assert_msg(s_render(session, "sur", "--nodes 2", &err) == 0, "%s", err);
    free(err);
    static const char *labels[] = {"L", "R", "C", "LFE", "Ls", "Rs"};
    for (int c = 0; c < 6; c++) {
        char name[64];
        snprintf(name, sizeof name, "Dx.%s.wav", labels[c]);
        int channels;
        int64_t frames;
        double *v = s_read("sur", name, &channels, &frames);
        ck_assert_int_eq(channels, 1);
        double energy = 0;
        for (int64_t i = 0; i < frames; i++)
            energy += v[i] * v[i];
        /* dialog routed to the centre: only the .C file carries it */
        if (c == 2)
            ck_assert_msg(energy > 1.0, "Dx.C is silent");
        else
            ck_assert_msg(energy == 0.0, "Dx.%s carries dialog", labels[c]);
        free(v);
    }
    free(session);
}
END_TEST

static const char s_fx_session[] =
    "version: 1\n"
    "session: {name: F, sample_rate: 48000}\n"
    "output: {sample_format: float32, name: \"{stem}\", master: apply}\n"
    "master: {fx: [{limiter: {ceiling_db: -3, lookahead_ms: 5, release_ms: 80}}]}\n"
    "tracks:\n"
    "  - name: Kick\n"
    "    clips: [{source: media/long_kick.wav, length: 6s}]\n"
    "    output: Glue\n"
    "    fx: [{highpass: {freq: 40}}, {eq: {type: peak, freq: 100, gain_db: 4, q: 1}}]\n"
    "  - name: Keys\n"
    "    clips: [{source: media/long_keys.wav, length: 6s}]\n"
    "    output: Glue\n"
    "    fx: [{compressor: {threshold_db: -20, ratio: 4, attack_ms: 5, release_ms: 100}}]\n"
    "    sends: [{to: Verb, level_db: -6}]\n"
    "  - name: Vox\n"
    "    clips: [{source: media/long_vox.wav, length: 6s}]\n"
    "    fx: [{delay: {time_ms: 120, feedback: 0.4, mix: 0.3}}]\n"
    "    sends: [{to: Verb, level_db: -3}]\n"
    "buses:\n"
    "  - {name: Glue, fx: [{compressor: {threshold_db: -18, ratio: 3, attack_ms: 10, release_ms: 150}}]}\n"
    "  - {name: Verb, fx: [{reverb: {decay_s: 0.4, mix: 1}}]}\n"
    "stems:\n"
    "  - {name: Drums, tracks: [Kick]}\n"
    "  - {name: Music, tracks: [Keys]}\n"
    "  - {name: Vocals, tracks: [Vox]}\n"
    "mixes:\n"
    "  - {name: Full Mix, master: apply}\n";

static double s_peak_diff(const double *a, const double *b, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(a[i] - b[i]));
    return worst;
}

/* Material whose level moves, so that dynamics work and state matters. */
static double s_pulsing(int ch, int64_t i, void *ctx)
{
    double f = (double)(intptr_t)ctx;
    double env = 0.5 + 0.45 * tu_sine(1.3, RATE, i);
    return env * (0.6 * tu_sine(f + 20.0 * ch, RATE, i) + 0.1 * tu_noise((uint64_t)f, i));
}

START_TEST(test_effects_stitch_null_and_tails)
{
    /* longer than the pre-roll (about 3 s), so segments start mid-signal */
    free(tu_write_wav(s_dir, "media/long_kick.wav", 1, RATE, 8 * RATE, 24, s_pulsing, (void *)(intptr_t)55));
    free(tu_write_wav(s_dir, "media/long_keys.wav", 2, RATE, 8 * RATE, 24, s_pulsing, (void *)(intptr_t)330));
    free(tu_write_wav(s_dir, "media/long_vox.wav", 1, RATE, 8 * RATE, 24, s_pulsing, (void *)(intptr_t)440));
    char *session = tu_write_text(s_dir, "fx.yaml", s_fx_session);
    char *err = NULL;
    /* one segment: the continuous render */
    ck_assert_msg(s_render(session, "whole", "--nodes 1 --segment 100s", &err) == 0, "%s", err);
    free(err);
    ck_assert_msg(s_render(session, "cut1", "--nodes 2 --segment 0.5s", &err) == 0, "%s", err);
    free(err);
    ck_assert_msg(s_render(session, "cut2", "--nodes 3 --segment 0.5s", &err) == 0, "%s", err);
    free(err);
    ck_assert_msg(s_render(session, "cut3", "--nodes 2 --segment 17011", &err) == 0, "%s", err);
    free(err);
    static const char *files[] = {"Drums.wav", "Music.wav", "Vocals.wav", "Full Mix.wav"};
    int64_t delivered = 0;
    double last_peak = 0; /* the last frame, over every file: at or above the tail threshold */
    for (size_t f = 0; f < 4; f++) {
        int ch;
        int64_t n, n1, n3;
        double *whole = s_read("whole", files[f], &ch, &n);
        delivered = n;
        for (int c = 0; c < ch; c++)
            last_peak = fmax(last_peak, fabs(whole[(n - 1) * ch + c]));
        double *cut1 = s_read("cut1", files[f], &ch, &n1);
        double *cut3 = s_read("cut3", files[f], &ch, &n3);
        /* the reverb and the delay ring past the last clip: end: auto grew */
        ck_assert_msg(n > 6 * RATE + 4800, "%s: %lld frames, the tails are missing", files[f], (long long)n);
        ck_assert_int_eq(n1, n);
        ck_assert_int_eq(n3, n);
        double r1 = s_peak_diff(whole, cut1, (size_t)(n * ch)), r3 = s_peak_diff(whole, cut3, (size_t)(n * ch));
        ck_assert_msg(r1 <= 1e-6 && r3 <= 1e-6, "%s: stitched renders differ from the continuous one by %g / %g",
                      files[f], r1, r3);
        printf("%s: stitch residual %.1f dBFS (0.5 s segments), %.1f dBFS (17011 frames)\n", files[f],
               20 * log10(r1 + 1e-300), 20 * log10(r3 + 1e-300));
        /* the stitch property, -120 dBFS */
        ck_assert_msg(20 * log10(fmax(r1, r3) + 1e-300) <= -120.0, "%s: stitch residual %.1f dBFS", files[f],
                      20 * log10(fmax(r1, r3)));
        if (f == 3) { /* the look-ahead limiter on the master holds its ceiling */
            double peak = 0;
            for (int64_t i = 0; i < n * ch; i++)
                peak = fmax(peak, fabs(whole[i]));
            ck_assert_msg(peak <= pow(10.0, -3.0 / 20.0) + 1e-7, "Full Mix peaks at %g", peak);
            ck_assert_msg(peak > 0.3, "Full Mix is nearly silent: %g", peak);
        }
        free(whole);
        free(cut1);
        free(cut3);
        /* the same segments give the same bytes on any number of nodes */
        char a[512], b[512];
        snprintf(a, sizeof a, "%s/cut1/%s", s_dir, files[f]);
        snprintf(b, sizeof b, "%s/cut2/%s", s_dir, files[f]);
        ck_assert_msg(tu_files_equal(a, b), "%s differs between 2 and 3 nodes", files[f]);
    }
    /* shared dynamics on Glue and the master: the stems still null */
    char *manifest_path = tu_path(s_dir, "cut1/manifest.json");
    json_t *m = json_load_file(manifest_path, 0, NULL);
    json_t *null_test = json_object_get(m, "null_test");
    ck_assert_str_eq(json_string_value(json_object_get(null_test, "result")), "pass");
    double residual = json_real_value(json_object_get(null_test, "residual_dbfs"));
    ck_assert_msg(residual < -120.0, "stems with shared dynamics null at %.1f dBFS", residual);
    printf("null test with shared dynamics: %.1f dBFS\n", residual);
    json_decref(m);
    free(manifest_path);
    /* plan shows the pre-roll the effects need */
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s' plan '%s' --json", tu_stemfarm_bin(), session);
    ck_assert_int_eq(tu_run(cmd, &out, NULL, 60), 0);
    json_t *plan = json_loads(out, 0, NULL);
    /* end: auto planned the last clip plus the longest tail; the files end
     * where the last of them falls below -144 dBFS, well before that */
    const json_int_t planned = json_integer_value(json_object_get(plan, "frames"));
    ck_assert_msg(delivered < planned - RATE / 10, "delivered %lld of %lld planned frames", (long long)delivered,
                  (long long)planned);
    ck_assert_msg(last_peak >= pow(10.0, -144.0 / 20.0), "the last frame is %g", last_peak);
    printf("end: auto: %lld frames planned, %lld delivered (last frame %.1f dBFS)\n", (long long)planned,
           (long long)delivered, 20 * log10(last_peak));
    manifest_path = tu_path(s_dir, "whole/manifest.json");
    m = json_load_file(manifest_path, 0, NULL);
    json_t *render = json_object_get(m, "render");
    ck_assert_int_eq(json_integer_value(json_object_get(render, "frames")), delivered);
    ck_assert_int_eq(json_integer_value(json_object_get(render, "tail_trimmed_frames")), planned - delivered);
    /* the render's time and the delivery's, apart */
    ck_assert(json_is_real(json_object_get(render, "wall_seconds")));
    const double delivery_s = json_real_value(json_object_get(render, "delivery_seconds"));
    ck_assert_msg(json_is_real(json_object_get(render, "delivery_seconds")) && delivery_s > 0 && delivery_s < 60,
                  "delivery_seconds %g", delivery_s);
    /* the meters of every file: a true peak at or above the sample peak, a loudness */
    json_t *mfiles = json_object_get(m, "files");
    ck_assert_uint_eq(json_array_size(mfiles), 4);
    for (size_t i = 0; i < json_array_size(mfiles); i++) {
        json_t *e = json_array_get(mfiles, i);
        const double sample_peak = json_real_value(json_object_get(e, "peak_dbfs"));
        const double true_peak = json_real_value(json_object_get(e, "true_peak_dbtp"));
        const double lufs = json_real_value(json_object_get(e, "integrated_lufs"));
        ck_assert_msg(json_is_real(json_object_get(e, "integrated_lufs")) && lufs > -40 && lufs < 0, "%g LUFS", lufs);
        ck_assert_msg(true_peak >= sample_peak - 0.006 && true_peak < sample_peak + 3, "%g dBTP, %g dBFS", true_peak,
                      sample_peak);
        ck_assert(json_is_real(json_object_get(e, "loudness_range_lu")));
    }
    json_decref(m);
    free(manifest_path);
    /* SHA256SUMS covers every file and the manifest, as sha256sum -c reads it */
    char *sums = NULL;
    snprintf(cmd, sizeof cmd, "cd '%s/whole' && sha256sum -c SHA256SUMS", s_dir);
    ck_assert_int_eq(tu_run(cmd, &sums, NULL, 60), 0);
    ck_assert_msg(strstr(sums, "Drums.wav: OK") && strstr(sums, "manifest.json: OK"), "%s", sums);
    free(sums);
    json_t *targets = json_object_get(plan, "targets");
    json_t *stem0 = json_array_get(targets, 0);
    const json_int_t stem_preroll = json_integer_value(json_object_get(stem0, "preroll_frames"));
    ck_assert_int_gt(stem_preroll, 4800);
    /* per track: none longer than the stem's (which the full mix's tracks
     * feeding its shared compressor can set), each its own */
    json_t *track_prerolls = json_object_get(stem0, "track_preroll_frames");
    ck_assert_uint_eq(json_array_size(track_prerolls), json_array_size(json_object_get(stem0, "tracks")));
    json_int_t longest = 0;
    for (size_t i = 0; i < json_array_size(track_prerolls); i++)
        longest = json_integer_value(json_array_get(track_prerolls, i)) > longest
                      ? json_integer_value(json_array_get(track_prerolls, i))
                      : longest;
    ck_assert_int_gt(longest, 0);
    ck_assert_int_le(longest, stem_preroll);
    json_decref(plan);
    free(out);
    free(session);
}
END_TEST

START_TEST(test_headroom_warns_or_fails)
{
    char *session = s_graph_session("head.yaml", ", headroom_db: -40, headroom_policy: fail", "Vox");
    char *err = NULL;
    ck_assert_int_eq(s_render(session, "hfail", "--nodes 1", &err), 1);
    ck_assert_msg(strstr(err, "check 'headroom' failed: peak") && strstr(err, "is above -40.00 dBFS"), "%s", err);
    free(err);
    char *none = tu_path(s_dir, "hfail/Drums.wav");
    ck_assert_msg(!tu_exists(none), "a render that failed its headroom check delivered files");
    free(none);
    free(session);
    session = s_graph_session("headwarn.yaml", ", headroom_db: -40, headroom_policy: warn", "Vox");
    ck_assert_msg(s_render(session, "hwarn", "--nodes 1", &err) == 0, "%s", err);
    free(err);
    char *manifest_path = tu_path(s_dir, "hwarn/manifest.json");
    char *text = tu_slurp(manifest_path, NULL);
    ck_assert_msg(strstr(text, "\"check\": \"headroom\",\n") || strstr(text, "\"check\": \"headroom\""), "%s", text);
    json_t *m = json_loads(text, 0, NULL);
    json_t *file = json_array_get(json_object_get(m, "files"), 0);
    double peak = json_real_value(json_object_get(file, "peak_dbfs"));
    ck_assert_msg(peak > -40.0 && peak < 0.0, "peak_dbfs %g", peak);
    json_t *checks = json_object_get(file, "checks");
    int warned = 0;
    for (size_t i = 0; i < json_array_size(checks); i++) {
        json_t *c = json_array_get(checks, i);
        if (strcmp(json_string_value(json_object_get(c, "check")), "headroom") == 0)
            warned = strcmp(json_string_value(json_object_get(c, "result")), "warn") == 0;
    }
    ck_assert_msg(warned, "no headroom warning in %s", text);
    json_decref(m);
    free(text);
    free(manifest_path);
    free(session);
}
END_TEST

/* A stem that reaches full scale in an integer format fails the render,
 * naming the file, the check, the count and the limit, and delivers
 * nothing; output.clipping_policy: warn delivers it with a warning. */
START_TEST(test_clipping_fails_or_warns)
{
    static const char yaml[] = "version: 1\n"
                               "session: {name: C, sample_rate: 48000}\n"
                               "output: {sample_format: pcm24, name: \"{stem}\"%s}\n"
                               "tracks:\n"
                               "  - {name: Keys, source: media/keys.wav, gain_db: 18}\n"
                               "stems:\n"
                               "  - {name: Loud, tracks: [Keys]}\n";
    char text[1024];
    snprintf(text, sizeof text, yaml, "");
    char *session = tu_write_text(s_dir, "clip.yaml", text);
    char *err = NULL;
    ck_assert_int_eq(s_render(session, "cfail", "--nodes 1", &err), 1);
    ck_assert_msg(strstr(err, "'Loud.wav': check 'clipping' failed: ") &&
                      strstr(err, "samples at full scale (limit 0)"),
                  "%s", err);
    free(err);
    char *none = tu_path(s_dir, "cfail/Loud.wav");
    ck_assert_msg(!tu_exists(none), "a render that clipped delivered its file");
    free(none);
    free(session);
    /* (the clipped stem cannot null against the unclipped full mix) */
    snprintf(text, sizeof text, yaml, ", clipping_policy: warn, null_test: false");
    session = tu_write_text(s_dir, "clipwarn.yaml", text);
    ck_assert_msg(s_render(session, "cwarn", "--nodes 1", &err) == 0, "%s", err);
    free(err);
    char *manifest_path = tu_path(s_dir, "cwarn/manifest.json");
    json_t *m = json_load_file(manifest_path, 0, NULL);
    json_t *checks = json_object_get(json_array_get(json_object_get(m, "files"), 0), "checks");
    json_int_t at_full = -1;
    for (size_t i = 0; i < json_array_size(checks); i++) {
        json_t *c = json_array_get(checks, i);
        if (!strcmp(json_string_value(json_object_get(c, "check")), "clipping")) {
            ck_assert_str_eq(json_string_value(json_object_get(c, "result")), "warn");
            at_full = json_integer_value(json_object_get(c, "full_scale_samples"));
        }
    }
    ck_assert_msg(at_full > 100, "%lld samples at full scale", (long long)at_full);
    json_decref(m);
    free(manifest_path);
    free(session);
}
END_TEST

/* A check's entry in a file's manifest entry. */
static json_t *s_file_check(json_t *file, const char *name)
{
    json_t *checks = json_object_get(file, "checks");
    for (size_t i = 0; i < json_array_size(checks); i++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(checks, i), "check")), name))
            return json_array_get(checks, i);
    return NULL;
}

/* output.bwf: every file carries a bext chunk (description, originator,
 * date, time reference = the render start, coding history, and the v2
 * loudness fields = the manifest's meters) and an iXML chunk naming its
 * channels; read back with libsndfile and with ffprobe. */
START_TEST(test_broadcast_wav)
{
    static const char yaml[] = "version: 1\n"
                               "session: {name: \"B & W\", sample_rate: 48000, start: 0.25s}\n"
                               "output: {bwf: true, name: \"{stem}\"}\n"
                               "tracks:\n"
                               "  - {name: Keys, source: media/keys.wav}\n"
                               "  - {name: Vox, source: media/vox.wav}\n"
                               "stems:\n"
                               "  - {name: <Keys>, tracks: [Keys]}\n"
                               "  - {name: Vox, tracks: [Vox]}\n";
    char *session = tu_write_text(s_dir, "bwf.yaml", yaml);
    char *err = NULL;
    ck_assert_msg(s_render(session, "bwf", "--nodes 1", &err) == 0, "%s", err);
    free(err);
    char *manifest_path = tu_path(s_dir, "bwf/manifest.json");
    json_t *m = json_load_file(manifest_path, 0, NULL);
    json_t *entry = json_array_get(json_object_get(m, "files"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(entry, "file")),
                     "_Keys_.wav"); /* names are made safe for file systems */
    char *path = tu_path(s_dir, "bwf/_Keys_.wav");
    SF_INFO info = {0};
    SNDFILE *snd = sf_open(path, SFM_READ, &info);
    ck_assert_ptr_nonnull(snd);
    SF_BROADCAST_INFO bext;
    memset(&bext, 0, sizeof bext);
    ck_assert(sf_command(snd, SFC_GET_BROADCAST_INFO, &bext, sizeof bext));
    ck_assert_msg(!strncmp(bext.description, "B & W: stem '<Keys>'", sizeof bext.description), "%.256s",
                  bext.description);
    ck_assert(!strncmp(bext.originator, "stemfarm", sizeof bext.originator));
    ck_assert_int_eq(bext.time_reference_low, 12000); /* start: 0.25 s */
    ck_assert_int_eq(bext.time_reference_high, 0);
    ck_assert_int_eq(bext.version, 2);
    ck_assert_msg(strstr(bext.coding_history, "A=PCM,F=48000,W=24,M=stereo,T=stemfarm"), "%s", bext.coding_history);
    ck_assert_int_eq(bext.loudness_value,
                     (int)lround(json_real_value(json_object_get(entry, "integrated_lufs")) * 100));
    ck_assert_int_eq(bext.max_true_peak_level,
                     (int)lround(json_real_value(json_object_get(entry, "true_peak_dbtp")) * 100));
    ck_assert_int_eq(bext.loudness_range,
                     (int)lround(json_real_value(json_object_get(entry, "loudness_range_lu")) * 100));
    ck_assert(bext.max_shortterm_loudness != 0x7FFF && bext.max_momentary_loudness >= bext.max_shortterm_loudness);
    /* iXML: the project and a name per channel, escaped */
    SF_CHUNK_INFO want = {.id = "iXML", .id_size = 4};
    SF_CHUNK_ITERATOR *it = sf_get_chunk_iterator(snd, &want);
    ck_assert_ptr_nonnull(it);
    SF_CHUNK_INFO chunk = {0};
    ck_assert_int_eq(sf_get_chunk_size(it, &chunk), SF_ERR_NO_ERROR);
    char *xml = calloc(1, chunk.datalen + 1);
    chunk.data = xml;
    ck_assert_int_eq(sf_get_chunk_data(it, &chunk), SF_ERR_NO_ERROR);
    ck_assert_msg(strstr(xml, "<PROJECT>B &amp; W</PROJECT>") && strstr(xml, "<NAME>&lt;Keys&gt; L</NAME>") &&
                      strstr(xml, "<NAME>&lt;Keys&gt; R</NAME>") && strstr(xml, "<TRACK_COUNT>2</TRACK_COUNT>"),
                  "%s", xml);
    free(xml);
    sf_close(snd);
    /* an external reader sees the same bext */
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "ffprobe -hide_banner -show_format '%s' 2>&1", path);
    ck_assert_int_eq(tu_run(cmd, &out, NULL, 60), 0);
    ck_assert_msg(strstr(out, "TAG:comment=B & W: stem '<Keys>'") && strstr(out, "TAG:encoded_by=stemfarm") &&
                      strstr(out, "TAG:time_reference=12000"),
                  "%s", out);
    free(out);
    /* the loudness fields went in before the SHA-256: verify agrees */
    snprintf(cmd, sizeof cmd, "'%s' verify '%s/bwf'", tu_stemfarm_bin(), s_dir);
    ck_assert_int_eq(tu_run(cmd, &out, NULL, 60), 0);
    free(out);
    ck_assert_str_eq(json_string_value(json_object_get(s_file_check(entry, "read_back"), "result")), "pass");
    json_decref(m);
    free(path);
    free(manifest_path);
    free(session);
}
END_TEST

static const char s_profile_session[] = "version: 1\n"
                                        "session: {name: P, sample_rate: 48000}\n"
                                        "output: {name: \"{stem}\"%s}\n"
                                        "tracks:\n"
                                        "  - {name: Keys, source: media/keys.wav, gain_db: %.3f}\n"
                                        "  - {name: Vox, source: media/vox.wav, gain_db: %.3f}\n"
                                        "stems:\n"
                                        "  - {name: Music, tracks: [Keys]}\n"
                                        "  - {name: Voice, tracks: [Vox]}\n"
                                        "mixes:\n"
                                        "  - {name: Program}\n"
                                        "%s";

static char *s_profile_yaml(const char *name, const char *output, double gain_db, const char *extra)
{
    char text[2048];
    snprintf(text, sizeof text, s_profile_session, output, gain_db, gain_db, extra);
    return tu_write_text(s_dir, name, text);
}

/* A manifest's file entry by file name. */
static json_t *s_manifest_file(json_t *m, const char *file)
{
    json_t *files = json_object_get(m, "files");
    for (size_t i = 0; i < json_array_size(files); i++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(files, i), "file")), file))
            return json_array_get(files, i);
    return NULL;
}

/* Delivery profiles judge and never change: ebu-r128 fails a mix that is
 * not at -23 LUFS (naming file, value and target) and delivers nothing,
 * passes it once the session's gains put it there; atsc-a85 judges against
 * its own target; stem-mastering fails a stem above -8 dBFS and refuses a
 * pcm16 session before rendering; archive needs Broadcast WAV and the
 * multitracks, and delivers them. */
START_TEST(test_delivery_profiles)
{
    char *err = NULL;
    char *loud = s_profile_yaml("p1.yaml", "", 0.0, "");
    ck_assert_int_eq(s_render(loud, "ebu-fail", "--nodes 1 --profile ebu-r128", &err), 1);
    ck_assert_msg(strstr(err, "profile 'ebu-r128': 1 check failed: 'Program.wav': loudness ") &&
                      strstr(err, "LUFS is outside -23.0 +-0.5 LUFS"),
                  "%s", err);
    free(err);
    char *none = tu_path(s_dir, "ebu-fail/Program.wav");
    ck_assert(!tu_exists(none));
    free(none);
    /* the mix's loudness without a profile, then the gain that puts it at -23 */
    ck_assert_msg(s_render(loud, "measure", "--nodes 1", &err) == 0, "%s", err);
    free(err);
    char *manifest_path = tu_path(s_dir, "measure/manifest.json");
    json_t *m = json_load_file(manifest_path, 0, NULL);
    const double lufs = json_real_value(json_object_get(s_manifest_file(m, "Program.wav"), "integrated_lufs"));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "render"), "profile")), "none");
    json_decref(m);
    free(manifest_path);
    char *right = s_profile_yaml("p2.yaml", ", profile: ebu-r128", -23.0 - lufs, "");
    ck_assert_msg(s_render(right, "ebu-pass", "--nodes 1", &err) == 0, "%s", err);
    free(err);
    manifest_path = tu_path(s_dir, "ebu-pass/manifest.json");
    m = json_load_file(manifest_path, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "render"), "profile")), "ebu-r128");
    json_t *program = s_manifest_file(m, "Program.wav");
    json_t *loudness = s_file_check(program, "loudness");
    ck_assert_ptr_nonnull(loudness);
    ck_assert_str_eq(json_string_value(json_object_get(loudness, "result")), "pass");
    ck_assert(fabs(json_real_value(json_object_get(loudness, "integrated_lufs")) + 23.0) <= 0.5);
    ck_assert_str_eq(json_string_value(json_object_get(s_file_check(program, "true_peak"), "result")), "pass");
    ck_assert_ptr_null(s_file_check(s_manifest_file(m, "Music.wav"), "loudness")); /* stems are not judged */
    json_decref(m);
    free(manifest_path);
    /* the same files judged against ATSC A/85's -24 +-2 LKFS pass too; a loud mix does not */
    ck_assert_msg(s_render(right, "atsc-pass", "--nodes 1 --profile atsc-a85", &err) == 0, "%s", err);
    free(err);
    char *louder = s_profile_yaml("p3.yaml", "", -23.0 - lufs + 4.0, "");
    ck_assert_int_eq(s_render(louder, "atsc-fail", "--nodes 1 --profile atsc-a85", &err), 1);
    ck_assert_msg(strstr(err, "'Program.wav': loudness ") && strstr(err, "outside -24.0 +-2.0 LUFS"), "%s", err);
    free(err);

    /* stem-mastering: pcm24, stems at or below -8 dBFS (the tones peak at -14) */
    ck_assert_msg(s_render(loud, "sm-pass", "--nodes 1 --profile stem-mastering", &err) == 0, "%s", err);
    free(err);
    char *hot = s_profile_yaml("p4.yaml", ", profile: stem-mastering", 8.0, "");
    ck_assert_int_eq(s_render(hot, "sm-fail", "--nodes 1", &err), 1);
    /* (the mono voice goes to the stereo master at -3 dB: it stays under -8 dBFS) */
    ck_assert_msg(strstr(err, "1 check failed: 'Music.wav': peak -5.98 dBFS is above -8.00 dBFS"), "%s", err);
    free(err);
    char *pcm16 = s_profile_yaml("p5.yaml", ", sample_format: pcm16", 0.0, "");
    ck_assert_int_eq(s_render(pcm16, "sm-bad", "--nodes 1 --profile stem-mastering", &err), 2);
    ck_assert_msg(strstr(err, "error: profile 'stem-mastering' needs output.sample_format: pcm24, not pcm16"), "%s",
                  err);
    free(err);
    char *dir16 = tu_path(s_dir, "sm-bad");
    ck_assert(!tu_exists(dir16));
    free(dir16);

    /* archive: Broadcast WAV with the multitracks */
    ck_assert_int_eq(s_render(loud, "arch-bad", "--nodes 1 --profile archive", &err), 2);
    ck_assert_msg(strstr(err, "needs output.bwf: true") && strstr(err, "needs multitracks: true"), "%s", err);
    free(err);
    char *archive = s_profile_yaml("p6.yaml", ", bwf: true, profile: archive", 0.0, "multitracks: true\n");
    ck_assert_msg(s_render(archive, "arch", "--nodes 1", &err) == 0, "%s", err);
    free(err);
    manifest_path = tu_path(s_dir, "arch/manifest.json");
    m = json_load_file(manifest_path, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "render"), "profile")), "archive");
    int multitracks = 0;
    json_t *files = json_object_get(m, "files");
    for (size_t i = 0; i < json_array_size(files); i++)
        multitracks += !strcmp(json_string_value(json_object_get(json_array_get(files, i), "role")), "multitrack");
    ck_assert_int_eq(multitracks, 2);
    json_decref(m);
    free(manifest_path);
    char *sums = tu_path(s_dir, "arch/SHA256SUMS");
    ck_assert(tu_exists(sums));
    free(sums);
    free(archive);
    free(pcm16);
    free(hot);
    free(louder);
    free(right);
    free(loud);
}
END_TEST

/* A full disk: the render fails with the system's reason and the file it
 * could not write, and leaves nothing in the folder -- no partial, no
 * finished-looking file. Needs a small tmpfs, which only root can mount. */
START_TEST(test_full_disk_leaves_nothing)
{
    char *mnt = tu_path(s_dir, "small");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && mount -t tmpfs -o size=256k tmpfs '%s'", mnt, mnt);
    if (tu_run(cmd, NULL, NULL, 30) != 0) {
        printf("test_full_disk_leaves_nothing: cannot mount a small tmpfs here (not root?): skipped\n");
        free(mnt);
        return;
    }
    char *session = s_graph_session("full.yaml", "", "Vox");
    char *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "'%s' render '%s' -o '%s/out' --nodes 1", tu_stemfarm_bin(), session, mnt);
    const int rc = tu_run(cmd, NULL, &err, 240);
    snprintf(cmd, sizeof cmd, "ls -A '%s/out'", mnt);
    ck_assert_int_eq(tu_run(cmd, &out, NULL, 30), 0);
    snprintf(cmd, sizeof cmd, "umount '%s'", mnt);
    ck_assert_int_eq(tu_run(cmd, NULL, NULL, 30), 0);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "cannot write '") && strstr(err, ".partial': No space left on device"), "%s", err);
    ck_assert_msg(out[0] == '\0', "left behind: %s", out);
    free(out);
    free(err);
    free(session);
    free(mnt);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("deliver");
    TCase *tc = tcase_create("graph");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_mixes_multitracks_and_null_test);
    tcase_add_test(tc, test_stems_that_cannot_null_fail_unless_declared);
    tcase_add_test(tc, test_surround_per_channel_files);
    tcase_add_test(tc, test_headroom_warns_or_fails);
    tcase_add_test(tc, test_clipping_fails_or_warns);
    tcase_add_test(tc, test_broadcast_wav);
    tcase_add_test(tc, test_delivery_profiles);
    tcase_add_test(tc, test_full_disk_leaves_nothing);
    tcase_add_test(tc, test_effects_stitch_null_and_tails);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
