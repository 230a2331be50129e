/* test_cli.c -- stemfarm end to end: the real executables, real ZeroMQ
 * sockets (inproc and tcp 127.0.0.1), real files.
 *
 * One fixture session (mono and stereo tracks, gains, pans, polarity, a mute,
 * clips at odd positions, offsets and lengths, overlapping clips) is described
 * once in C below; the test writes its YAML and media from that description
 * and computes every stem independently in double precision, then checks the
 * delivered files against it, and checks that the bytes never depend on node
 * count, thread count, segment length or embedded vs external nodes. */
#include "testutil.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

extern char **environ;

#define RATE 48000

typedef struct {
    const char *file; /* under media/ */
    int channels;
    int64_t frames;
    double freq;   /* tone of the source */
    uint64_t seed; /* noise of the source */
} source_t;

typedef struct {
    int source; /* index into s_sources */
    int64_t at, offset, length;
    double gain_db;
} clip_t;

typedef struct {
    const char *name;
    const char *yaml; /* the track's keys besides name and clips, as YAML */
    int stem;
    double gain_db, pan;
    int invert, mute;
    clip_t clips[3];
    int n_clips;
} track_t;

static const source_t s_sources[] = {
    {"kick.wav", 1, 60000, 55.0, 1},    {"snare.wav", 1, 50001, 190.0, 2}, {"oh.wav", 2, 70000, 3000.0, 3},
    {"bass.wav", 1, 90011, 41.2, 4},    {"keys.wav", 2, 80000, 261.6, 5},  {"vox.wav", 1, 30000, 440.0, 6},
    {"snare2.wav", 1, 20000, 210.0, 7},
};

/* The last clip ends at 95000: end: auto. */
static const track_t s_tracks[] = {
    {"Kick In", "gain_db: -2.5\n    pan: -0.1\n", 0, -2.5, -0.1, 0, 0, {{0, 0, 0, 60000, 0}}, 1},
    {"Snare Top", "pan: 0.3\n", 0, 0, 0.3, 0, 0, {{1, 12345, 777, 40999, 0}, {6, 30001, 5, 19000, -6}}, 2},
    {"OH Pair", "gain_db: -4\n    pan: 0.4\n", 0, -4, 0.4, 0, 0, {{2, 0, 0, 70000, 0}}, 1},
    {"Bass DI", "polarity: invert\n    gain_db: -1\n", 1, -1, 0, 1, 0, {{3, 1001, 3, 90000, 0}}, 1},
    {"Keys", "gain_db: +1.5\n    pan: -0.7\n", 1, 1.5, -0.7, 0, 0, {{4, 15000, 0, 80000, -3}}, 1},
    {"Scratch", "mute: true\n", 1, 0, 0, 0, 1, {{0, 0, 0, 60000, 0}}, 1},
    {"Lead Vox", "pan: 0.25\n    gain_db: -inf\n", 2, -INFINITY, 0.25, 0, 0, {{5, 0, 0, 30000, 0}}, 1},
    {"BV 1", "pan: -1\n", 2, 0, -1, 0, 0, {{5, 48001, 1234, 4099, 0}, {5, 50000, 0, 100, 2}}, 2},
};
#define N_TRACKS (sizeof s_tracks / sizeof *s_tracks)
static const char *s_stem_names[] = {"Drums", "Music", "Vocals"};
static const char *s_stem_patterns[] = {"[\"Kick *\", \"Snare *\", \"OH *\"]", "[Bass DI, Keys, Scratch]",
                                        "[Lead Vox, \"BV ?\"]"};
#define N_STEMS 3

static double s_source_value(int src, int ch, int64_t i)
{
    const source_t *s = &s_sources[src];
    return 0.35 * sin(2.0 * M_PI * s->freq * (double)i / RATE + ch) + 0.05 * tu_noise(s->seed * 2 + (uint64_t)ch, i);
}

static double s_signal(int ch, int64_t i, void *ctx) { return s_source_value((int)(intptr_t)ctx, ch, i); }

static int64_t s_region_end(void)
{
    int64_t end = 0;
    for (size_t t = 0; t < N_TRACKS; t++)
        for (int c = 0; c < s_tracks[t].n_clips; c++) {
            const clip_t *cl = &s_tracks[t].clips[c];
            if (cl->at + cl->length > end)
                end = cl->at + cl->length;
        }
    return end;
}

/* Writes media and session.yaml into dir; returns the session path. */
static char *s_write_fixture(const char *dir, const char *output_yaml)
{
    for (size_t i = 0; i < sizeof s_sources / sizeof *s_sources; i++) {
        char name[64];
        snprintf(name, sizeof name, "media/%s", s_sources[i].file);
        free(tu_write_wav(dir, name, s_sources[i].channels, RATE, s_sources[i].frames, 24, s_signal,
                          (void *)(intptr_t)i));
    }
    char yaml[16384];
    size_t n = (size_t)snprintf(yaml, sizeof yaml,
                                "version: 1\nsession:\n  name: Test Mix\n  sample_rate: %d\n  media_root: media\n"
                                "  end: auto\noutput:\n%s\ntracks:\n",
                                RATE, output_yaml);
    for (size_t t = 0; t < N_TRACKS; t++) {
        const track_t *tr = &s_tracks[t];
        n += (size_t)snprintf(yaml + n, sizeof yaml - n, "  - name: %s\n    %s    clips:\n", tr->name, tr->yaml);
        for (int c = 0; c < tr->n_clips; c++) {
            const clip_t *cl = &tr->clips[c];
            n += (size_t)snprintf(yaml + n, sizeof yaml - n,
                                  "      - {source: %s, at: %lld, offset: %lld, length: %lld, gain_db: %g}\n",
                                  s_sources[cl->source].file, (long long)cl->at, (long long)cl->offset,
                                  (long long)cl->length, cl->gain_db);
        }
    }
    n += (size_t)snprintf(yaml + n, sizeof yaml - n, "stems:\n");
    for (int s = 0; s < N_STEMS; s++)
        n += (size_t)snprintf(yaml + n, sizeof yaml - n, "  - name: %s\n    tracks: %s\n", s_stem_names[s],
                              s_stem_patterns[s]);
    return tu_write_text(dir, "session.yaml", yaml);
}

/* Stem `stem` at timeline frame i, channel ch, in double precision, from
 * the description above and the values the 24-bit sources hold. */
static double s_reference(int stem, int ch, int64_t i)
{
    double sum = 0.0;
    for (size_t t = 0; t < N_TRACKS; t++) {
        const track_t *tr = &s_tracks[t];
        if (tr->stem != stem || tr->mute)
            continue;
        const clip_t *cl = NULL;
        for (int c = 0; c < tr->n_clips; c++) /* the later clip wins */
            if (i >= tr->clips[c].at && i < tr->clips[c].at + tr->clips[c].length)
                cl = &tr->clips[c];
        if (!cl)
            continue;
        const source_t *src = &s_sources[cl->source];
        int64_t k = cl->offset + (i - cl->at);
        double gain = pow(10.0, cl->gain_db / 20.0) * (isinf(tr->gain_db) ? 0.0 : pow(10.0, tr->gain_db / 20.0));
        if (tr->invert)
            gain = -gain;
        double x;
        if (src->channels == 1) {
            double theta = (tr->pan + 1.0) * M_PI / 4.0;
            x = tu_quantized(s_source_value(cl->source, 0, k), 24) * (ch == 0 ? cos(theta) : sin(theta));
        } else {
            double side = 1.0;
            if (ch == 0 && tr->pan > 0)
                side = cos(tr->pan * M_PI / 2.0);
            if (ch == 1 && tr->pan < 0)
                side = cos(-tr->pan * M_PI / 2.0);
            x = tu_quantized(s_source_value(cl->source, ch, k), 24) * side;
        }
        sum += x * gain;
    }
    return sum;
}

static char *s_dir;
static char *s_session;

static void setup(void)
{
    s_dir = tu_tmpdir();
    s_session = s_write_fixture(s_dir, "  format: wav\n  sample_format: pcm24\n");
}

static void teardown(void)
{
    tu_rm_rf(s_dir);
    free(s_dir);
    free(s_session);
}

static int s_stemfarm(const char *args, char **out, char **err)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s", tu_stemfarm_bin(), args);
    return tu_run(cmd, out, err, 240);
}

static char *s_stem_path(const char *out_dir, int stem)
{
    char name[256];
    snprintf(name, sizeof name, "Test Mix_%s.wav", s_stem_names[stem]);
    return tu_path(out_dir, name);
}

static void s_render_ok(const char *out_name, const char *extra)
{
    char *out_dir = tu_path(s_dir, out_name);
    char args[4096];
    snprintf(args, sizeof args, "render '%s' -o '%s' %s", s_session, out_dir, extra);
    char *err = NULL;
    int rc = s_stemfarm(args, NULL, &err);
    ck_assert_msg(rc == 0, "stemfarm %s exited %d: %s", args, rc, err);
    free(err);
    free(out_dir);
}

static void s_assert_same_stems(const char *a, const char *b)
{
    char *da = tu_path(s_dir, a), *db = tu_path(s_dir, b);
    for (int s = 0; s < N_STEMS; s++) {
        char *pa = s_stem_path(da, s), *pb = s_stem_path(db, s);
        ck_assert_msg(tu_files_equal(pa, pb), "%s and %s differ", pa, pb);
        free(pa);
        free(pb);
    }
    free(da);
    free(db);
}

START_TEST(test_render_matches_double_reference)
{
    s_render_ok("out", "--nodes 2 --segment 7919");
    char *out_dir = tu_path(s_dir, "out");
    int64_t end = s_region_end();
    double worst = 0.0;
    for (int s = 0; s < N_STEMS; s++) {
        char *path = s_stem_path(out_dir, s);
        int channels;
        int64_t frames;
        int32_t *v = tu_read_pcm_ints(path, 24, &channels, &frames);
        ck_assert_int_eq(channels, 2);
        ck_assert_msg(frames == end, "%s has %lld frames, expected %lld", path, (long long)frames, (long long)end);
        for (int64_t i = 0; i < frames; i++)
            for (int c = 0; c < 2; c++) {
                double want = s_reference(s, c, i) * 8388608.0;
                double diff = fabs((double)v[i * 2 + c] - want);
                if (diff > worst)
                    worst = diff;
                ck_assert_msg(diff <= 1.0, "%s frame %lld ch %d: %d, reference %.3f LSB", path, (long long)i, c,
                              v[i * 2 + c], want);
            }
        free(v);
        char partial[4096];
        snprintf(partial, sizeof partial, "%s.partial", path);
        ck_assert_msg(!tu_exists(partial), "%s left behind", partial);
        free(path);
    }
    /* Measured: the worst difference is about 0.5 LSB (rounding alone). */
    ck_assert_double_le(worst, 1.0);
    char *manifest = tu_path(out_dir, "manifest.json");
    char *text = tu_slurp(manifest, NULL);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "\"sha256\""));
    ck_assert_ptr_nonnull(strstr(text, "Test Mix_Drums.wav"));
    free(text);
    free(manifest);
    free(out_dir);
}
END_TEST

START_TEST(test_float_output_matches_reference)
{
    free(s_session);
    s_session = s_write_fixture(s_dir, "  format: wav\n  sample_format: float32\n");
    s_render_ok("out", "--nodes 1");
    char *out_dir = tu_path(s_dir, "out");
    for (int s = 0; s < N_STEMS; s++) {
        char *path = s_stem_path(out_dir, s);
        int channels;
        int64_t frames;
        double *v = tu_read_audio(path, &channels, &frames, NULL);
        for (int64_t i = 0; i < frames; i++)
            for (int c = 0; c < channels; c++)
                ck_assert_msg(fabs(v[i * 2 + c] - s_reference(s, c, i)) <= ldexp(1.0, -23), "%s frame %lld ch %d", path,
                              (long long)i, c);
        free(v);
        free(path);
    }
    free(out_dir);
}
END_TEST

START_TEST(test_bytes_independent_of_nodes_threads_segments)
{
    s_render_ok("n1", "--nodes 1 --threads 1");
    s_render_ok("n2", "--nodes 2 --segment 0.37s");
    s_render_ok("n4", "--nodes 4 --threads 2 --segment 1000");
    s_render_ok("n3", "--nodes 3 --segment 95000");
    s_assert_same_stems("n1", "n2");
    s_assert_same_stems("n1", "n4");
    s_assert_same_stems("n1", "n3");
}
END_TEST

START_TEST(test_dithered_pcm16_independent_of_segments)
{
    free(s_session);
    s_session = s_write_fixture(s_dir, "  sample_format: pcm16\n  dither: auto\n");
    s_render_ok("a", "--nodes 1");
    s_render_ok("b", "--nodes 2 --segment 333");
    s_assert_same_stems("a", "b");
    /* Dither is really there: the pcm16 stem is not plain rounding. */
    char *dir = tu_path(s_dir, "a");
    char *path = s_stem_path(dir, 0);
    int channels;
    int64_t frames;
    int32_t *v = tu_read_pcm_ints(path, 16, &channels, &frames);
    int64_t differs = 0;
    for (int64_t i = 0; i < frames; i++)
        differs += v[i * 2] != (int32_t)nearbyint(s_reference(0, 0, i) * 32768.0);
    ck_assert_msg(differs > frames / 10, "only %lld of %lld samples differ from undithered rounding",
                  (long long)differs, (long long)frames);
    free(v);
    free(path);
    free(dir);
}
END_TEST

START_TEST(test_farm_over_tcp_matches_embedded)
{
    s_render_ok("embedded", "--nodes 2 --segment 20000");
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", tu_free_port());
    char *state = tu_path(s_dir, "state");
    pid_t coord = tu_spawn(
        (char *const[]){(char *)tu_stemfarm_bin(), "coordinator", "--bind", endpoint, "--state", state, NULL}, NULL);
    free(state);
    pid_t n1 = tu_spawn(
        (char *const[]){(char *)tu_node_bin(), "--connect", endpoint, "--threads", "1", "--name", "tcp-node-1", NULL},
        NULL);
    pid_t n2 = tu_spawn(
        (char *const[]){(char *)tu_node_bin(), "--connect", endpoint, "--threads", "2", "--name", "tcp-node-2", NULL},
        NULL);
    /* Both nodes join before the submission, so both get segments. */
    nanosleep(&(struct timespec){.tv_nsec = 500000000}, NULL);
    char args[4096];
    char *out_dir = tu_path(s_dir, "farm");
    snprintf(args, sizeof args, "render '%s' -o '%s' --farm %s --segment 20000 --json", s_session, out_dir, endpoint);
    char *out = NULL, *err = NULL;
    int rc = s_stemfarm(args, &out, &err);
    ck_assert_msg(rc == 0, "farm render exited %d: %s", rc, err);
    ck_assert_ptr_nonnull(strstr(out, "\"event\":\"done\""));
    ck_assert_int_eq(tu_stop(coord), 0);
    ck_assert_int_eq(tu_stop(n1), 0);
    ck_assert_int_eq(tu_stop(n2), 0);
    s_assert_same_stems("embedded", "farm");
    char *manifest_path = tu_path(out_dir, "manifest.json");
    char *manifest = tu_slurp(manifest_path, NULL);
    ck_assert_msg(strstr(manifest, "\"node\": \"tcp-node-1\"") && strstr(manifest, "\"node\": \"tcp-node-2\""),
                  "both nodes should have rendered segments: %s", manifest);
    free(manifest);
    free(manifest_path);
    free(out);
    free(err);
    free(out_dir);
}
END_TEST

START_TEST(test_bad_session_exit_2_nothing_written)
{
    char *bad = tu_write_text(s_dir, "bad.yaml",
                              "version: 1\nsession:\n  name: Bad\n  sample_rate: 48000\n"
                              "output:\n  dir: never\ntracks:\n  - name: A\n    source: media/kick.wav\n"
                              "    gian_db: 3\n  - name: B\n    source: media/missing.wav\n"
                              "stems:\n  - name: All\n    tracks: [\"*\"]\n");
    char args[4096];
    snprintf(args, sizeof args, "render '%s'", bad);
    char *err = NULL;
    int rc = s_stemfarm(args, NULL, &err);
    ck_assert_int_eq(rc, 2);
    /* every problem, each as file:line:col */
    char want1[4200], want2[4200];
    snprintf(want1, sizeof want1, "%s:10:5: error:", bad);
    snprintf(want2, sizeof want2, "%s:12:13: error:", bad);
    ck_assert_msg(strstr(err, want1) && strstr(err, "gian_db"), "stderr: %s", err);
    ck_assert_msg(strstr(err, want2) && strstr(err, "missing.wav"), "stderr: %s", err);
    char *never = tu_path(s_dir, "never");
    ck_assert_msg(!tu_exists(never), "output folder was created for a bad session");
    free(never);
    free(err);
    free(bad);
}
END_TEST

START_TEST(test_existing_deliverable_needs_force)
{
    s_render_ok("out", "--nodes 1");
    char *out_dir = tu_path(s_dir, "out");
    char *stem = s_stem_path(out_dir, 0);
    char *before = tu_slurp(stem, NULL);
    char args[4096];
    snprintf(args, sizeof args, "render '%s' -o '%s' --nodes 1", s_session, out_dir);
    char *err = NULL;
    ck_assert_int_eq(s_stemfarm(args, NULL, &err), 2);
    ck_assert_msg(strstr(err, "exists") && strstr(err, "--force"), "stderr: %s", err);
    free(err);
    snprintf(args, sizeof args, "render '%s' -o '%s' --nodes 1 --force", s_session, out_dir);
    ck_assert_int_eq(s_stemfarm(args, NULL, NULL), 0);
    char *after = tu_slurp(stem, NULL);
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
    free(stem);
    free(out_dir);
}
END_TEST

START_TEST(test_verify_detects_a_changed_byte)
{
    s_render_ok("out", "--nodes 1");
    char *out_dir = tu_path(s_dir, "out");
    char args[4096], *out = NULL;
    snprintf(args, sizeof args, "verify '%s'", out_dir);
    ck_assert_int_eq(s_stemfarm(args, &out, NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "3 files, 0 failed"));
    free(out);
    char *stem = s_stem_path(out_dir, 1);
    FILE *f = fopen(stem, "r+b");
    fseek(f, 5000, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 5000, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
    ck_assert_int_eq(s_stemfarm(args, &out, NULL), 1);
    ck_assert_ptr_nonnull(strstr(out, "FAILED Test Mix_Music.wav"));
    ck_assert_msg(strstr(out, "3 files, 1 failed"), "%s", out);
    free(out);
    free(stem);
    free(out_dir);
}
END_TEST

/* verify re-reads and re-meters every file: a missing file, a manifest
 * whose loudness was edited, and a file of another length are each named;
 * a manifest path works as well as its folder; what is not a manifest is
 * bad input. */
START_TEST(test_verify_rereads_and_remeters)
{
    s_render_ok("out2", "--nodes 1");
    char *out_dir = tu_path(s_dir, "out2");
    char *manifest = tu_path(out_dir, "manifest.json");
    char args[4096], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "verify '%s'", manifest);
    ck_assert_int_eq(s_stemfarm(args, &out, NULL), 0);
    ck_assert_msg(strstr(out, "ok Test Mix_Drums.wav") && strstr(out, "3 files, 0 failed"), "%s", out);
    free(out);
    /* the manifest says Drums is 3 LU louder than it is */
    json_t *m = json_load_file(manifest, 0, NULL);
    json_t *drums = json_array_get(json_object_get(m, "files"), 0);
    const double lufs = json_real_value(json_object_get(drums, "integrated_lufs"));
    json_object_set_new(drums, "integrated_lufs", json_real(lufs + 3.0));
    ck_assert_int_eq(json_dump_file(m, manifest, JSON_INDENT(2)), 0);
    json_decref(m);
    /* Vocals goes missing */
    char *vocals = s_stem_path(out_dir, 2);
    ck_assert_int_eq(unlink(vocals), 0);
    ck_assert_int_eq(s_stemfarm(args, &out, NULL), 1);
    ck_assert_msg(strstr(out, "FAILED Test Mix_Drums.wav: integrated_lufs measures"), "%s", out);
    ck_assert_msg(strstr(out, "FAILED Test Mix_Vocals.wav: ") && strstr(out, "No such file"), "%s", out);
    ck_assert_msg(strstr(out, "ok Test Mix_Music.wav"), "%s", out);
    ck_assert_msg(strstr(out, "3 files, 2 failed"), "%s", out);
    free(out);
    /* not a manifest at all */
    char *text = tu_write_text(out_dir, "not-a-manifest.json", "{\"hello\": 1}\n");
    snprintf(args, sizeof args, "verify '%s'", text);
    ck_assert_int_eq(s_stemfarm(args, &out, &err), 2);
    ck_assert_msg(strstr(err, "not a stemfarm manifest"), "%s", err);
    free(out);
    free(err);
    free(text);
    free(vocals);
    free(manifest);
    free(out_dir);
}
END_TEST

START_TEST(test_plan_json_lists_every_job)
{
    char args[4096], *out = NULL;
    snprintf(args, sizeof args, "plan '%s' --segment 0.5s --json", s_session);
    ck_assert_int_eq(s_stemfarm(args, &out, NULL), 0);
    /* 95000 frames in 24000-frame segments: 4 per target, 3 stems and the null-test reference */
    ck_assert_msg(strstr(out, "\"jobs_total\":16") && strstr(out, "\"segment_frames\":24000"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "plan '%s'", s_session);
    ck_assert_int_eq(s_stemfarm(args, &out, NULL), 0);
    ck_assert_msg(strstr(out, "4 targets x 1 segments = 4 jobs"), "%s", out);
    /* per stem, the tracks it renders */
    ck_assert_msg(strstr(out, "tracks: 'Bass DI', 'Keys', 'Scratch' (muted)"), "%s", out);
    free(out);
}
END_TEST

START_TEST(test_usage_errors_exit_2)
{
    static const struct {
        const char *args;
        const char *want;
    } cases[] = {
        {"", "needs a command"},
        {"rendr x.yaml", "unknown command 'rendr'"},
        {"render", "'render' needs a session file"},
        {"render s.yaml --nodes 0", "--nodes needs a whole number from 1 to 256, got '0'"},
        {"render s.yaml --nodes", "--nodes needs a value"},
        {"render s.yaml --bogus", "unknown option '--bogus' for 'render'"},
        {"coordinator", "needs --bind"},
        {"verify", "needs a delivery folder"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *err = NULL;
        int rc = s_stemfarm(cases[i].args, NULL, &err);
        ck_assert_msg(rc == 2, "'%s' exited %d", cases[i].args, rc);
        ck_assert_msg(strstr(err, cases[i].want), "'%s': stderr %s", cases[i].args, err);
        free(err);
    }
    char args[4096], *err = NULL;
    snprintf(args, sizeof args, "render '%s' --segment 1:99 -o '%s/x'", s_session, s_dir);
    ck_assert_int_eq(s_stemfarm(args, NULL, &err), 2);
    ck_assert_msg(strstr(err, "--segment"), "stderr: %s", err);
    free(err);
}
END_TEST

static double s_short(int ch, int64_t i, void *ctx)
{
    (void)ch;
    return 0.0002 * (double)((intptr_t)ctx % 7) * tu_sine(100.0, RATE, i); /* 1,000 in phase stay below full scale */
}

START_TEST(test_thousand_tracks_within_1024_open_files)
{
    size_t cap = 1 << 20, n = 0;
    char *yaml = malloc(cap);
    n += (size_t)snprintf(yaml + n, cap - n, "version: 1\nsession:\n  name: Big\n  sample_rate: %d\ntracks:\n", RATE);
    for (int t = 0; t < 1000; t++) {
        char name[64];
        snprintf(name, sizeof name, "big/t%04d.wav", t);
        free(tu_write_wav(s_dir, name, 1, RATE, 480, 24, s_short, (void *)(intptr_t)t));
        n += (size_t)snprintf(yaml + n, cap - n, "  - {name: T%04d, source: %s, pan: %.3f}\n", t, name,
                              (t % 21 - 10) / 10.0);
    }
    snprintf(yaml + n, cap - n,
             "stems:\n  - {name: Low, tracks: [\"T00*\", \"T01*\", \"T02*\", \"T03*\", \"T04*\"]}\n"
             "  - {name: High, tracks: [\"T05*\", \"T06*\", \"T07*\", \"T08*\", \"T09*\"]}\n");
    char *big = tu_write_text(s_dir, "big.yaml", yaml);
    free(yaml);
    char cmd[8192], *err = NULL;
    snprintf(cmd, sizeof cmd, "ulimit -n 1024 && '%s' render '%s' -o '%s/bigout' --nodes 2", tu_stemfarm_bin(), big,
             s_dir);
    int rc = tu_run(cmd, NULL, &err, 240);
    ck_assert_msg(rc == 0, "1000-track render exited %d: %s", rc, err);
    free(err);
    free(big);
}
END_TEST

/* The bundled example never rots: the generator still writes exactly the
 * committed session.yaml, it validates strictly, renders, and verifies. */
START_TEST(test_example_session_renders)
{
    const char *src = getenv("STEMFARM_SOURCE_DIR");
    const char *gen = getenv("STEMFARM_GEN_BIN");
    ck_assert_msg(src && gen, "run through ctest");
    char cmd[8192], *err = NULL, *out = NULL;
    snprintf(cmd, sizeof cmd, "cp '%s/configs/example/session.yaml' '%s/session.yaml' && '%s' example '%s'", src, s_dir,
             gen, s_dir);
    ck_assert_msg(tu_run(cmd, NULL, &err, 120) == 0, "the generator no longer writes the committed session: %s", err);
    free(err);
    char *session = tu_path(s_dir, "session.yaml");
    snprintf(cmd, sizeof cmd, "'%s' validate --strict '%s'", tu_stemfarm_bin(), session);
    ck_assert_msg(tu_run(cmd, NULL, &err, 60) == 0, "example does not validate: %s", err);
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' render '%s' -o '%s/out' --nodes 2 && '%s' verify '%s/out'", tu_stemfarm_bin(),
             session, s_dir, tu_stemfarm_bin(), s_dir);
    ck_assert_msg(tu_run(cmd, &out, &err, 300) == 0, "example render: %s", err);
    /* 6 stems and the 3 mixes (Instrumental, Vocal Up, Full Mix); multitracks are off */
    ck_assert_msg(strstr(out, "9 files, 0 failed"), "%s", out);
    /* the render ends with the deliverables at a glance and where the report is */
    ck_assert_msg(strstr(out, "peak dBFS   TP dBTP    LUFS    LRA  checks") &&
                      strstr(out, "Night Drive_Full Mix.wav      mix") && strstr(out, "/out/report.html\n"),
                  "%s", out);
    free(out);
    free(err);
    /* the stems null against the full mix at the pcm24 floor despite the
     * Music Bus compressor that four stems share, nothing clips, and every
     * file (the limited Full Mix too) keeps 1 dB of headroom */
    char *manifest_path = tu_path(s_dir, "out/manifest.json");
    char *manifest = tu_slurp(manifest_path, NULL);
    ck_assert_msg(strstr(manifest, "\"at_quantisation_floor\": true"), "null test: %s", manifest);
    ck_assert_msg(!strstr(manifest, "\"warn\""), "a check warned: %s", manifest);
    static const char *const files[] = {"Drums", "Bass",         "Keys",     "Guitars", "Vocals",
                                        "FX",    "Instrumental", "Vocal Up", "Full Mix"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char name[128];
        snprintf(name, sizeof name, "out/Night Drive_%s.wav", files[f]);
        char *path = tu_path(s_dir, name);
        int channels, rate;
        int64_t frames;
        double *x = tu_read_audio(path, &channels, &frames, &rate);
        double peak = 0.0;
        for (int64_t i = 0; i < frames * channels; i++)
            peak = fabs(x[i]) > peak ? fabs(x[i]) : peak;
        ck_assert_msg(peak < pow(10.0, -1.0 / 20.0), "'%s' peaks at %.2f dBFS", name, 20.0 * log10(peak));
        free(x);
        free(path);
    }
    free(manifest);
    free(manifest_path);
    free(session);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("end_to_end");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_render_matches_double_reference);
    tcase_add_test(tc, test_float_output_matches_reference);
    tcase_add_test(tc, test_bytes_independent_of_nodes_threads_segments);
    tcase_add_test(tc, test_dithered_pcm16_independent_of_segments);
    tcase_add_test(tc, test_farm_over_tcp_matches_embedded);
    tcase_add_test(tc, test_bad_session_exit_2_nothing_written);
    tcase_add_test(tc, test_existing_deliverable_needs_force);
    tcase_add_test(tc, test_verify_detects_a_changed_byte);
    tcase_add_test(tc, test_verify_rereads_and_remeters);
    tcase_add_test(tc, test_plan_json_lists_every_job);
    tcase_add_test(tc, test_usage_errors_exit_2);
    tcase_add_test(tc, test_thousand_tracks_within_1024_open_files);
    tcase_add_test(tc, test_example_session_renders);
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
