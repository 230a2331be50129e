/* test_session.c -- the session loader (sf/session.h): a good session gives
 * the expected model; every kind of bad session gives exactly the lines a
 * user sees (`session.yaml:LINE:COL: error: ...`); allocation failure at any
 * point is reported cleanly. Audio fixtures are generated in a temp folder. */
/* realpath(3) is XSI. */
#define _XOPEN_SOURCE 700

#include "sf/alloc.h"
#include "sf/media.h"
#include "sf/session.h"
#include "testutil.h"

#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- fixtures ---------------------------------------------------------- */

static char *s_dir;           /* temp folder holding the session and media */
static char s_real[PATH_MAX]; /* its realpath: what base_dir must be */
static char s_old_cwd[PATH_MAX];

static double s_ramp(int ch, int64_t i, void *ctx)
{
    (void)ctx;
    return ((double)(i % 100) / 100.0 - 0.5) * (ch ? -0.5 : 0.5);
}

static void s_write_garbage(const char *dir, const char *name)
{
    char text[1024];
    for (size_t i = 0; i < sizeof text - 1; i++)
        text[i] = (char)('!' + (i * 7919) % 90);
    text[sizeof text - 1] = '\0';
    free(tu_write_text(dir, name, text));
}

/* Media for the good session (under media/) and for the table (next to
 * session.yaml); the test then runs inside the folder, so that messages
 * carry the path as a user types it: "session.yaml". */
static void s_setup(void)
{
    s_dir = tu_tmpdir();
    ck_assert_ptr_nonnull(realpath(s_dir, s_real));
    ck_assert_ptr_nonnull(getcwd(s_old_cwd, sizeof s_old_cwd));
    free(tu_write_wav(s_dir, "media/drums/kick_in.wav", 1, 48000, 48000, 24, s_ramp, NULL));
    free(tu_write_wav(s_dir, "media/drums/snare.wav", 1, 48000, 48000, 16, s_ramp, NULL));
    free(tu_write_wav(s_dir, "media/drums/oh.wav", 2, 48000, 96000, 24, s_ramp, NULL));
    free(tu_write_wav(s_dir, "media/vox/take3.wav", 1, 48000, 144000, 32, s_ramp, NULL));
    free(tu_write_wav(s_dir, "media/irs/plate.wav", 1, 48000, 4800, 24, s_ramp, NULL));
    free(tu_write_wav(s_dir, "media/irs/hall.wav", 2, 48000, 9600, 24, s_ramp, NULL));
    free(tu_write_wav(s_dir, "media/irs/room44.wav", 1, 44100, 4410, 16, s_ramp, NULL));

    free(tu_write_wav(s_dir, "kick.wav", 1, 48000, 48000, 16, s_ramp, NULL));
    free(tu_write_wav(s_dir, "oh.wav", 2, 48000, 48000, 16, s_ramp, NULL));
    free(tu_write_wav(s_dir, "vox44.wav", 1, 44100, 44100, 16, s_ramp, NULL));
    free(tu_write_wav(s_dir, "six.wav", 6, 48000, 4800, 16, s_ramp, NULL));
    free(tu_write_wav(s_dir, "noframes.wav", 1, 48000, 0, 16, s_ramp, NULL));
    free(tu_write_text(s_dir, "empty.wav", ""));
    s_write_garbage(s_dir, "garbage.wav");
    ck_assert_int_eq(chdir(s_dir), 0);
}

static void s_teardown(void)
{
    ck_assert_int_eq(chdir(s_old_cwd), 0);
    tu_rm_rf(s_dir);
    free(s_dir);
    s_dir = NULL;
}

/* Loads `yaml` as session.yaml (written to disk, so sf_session_load reads
 * it) and returns what a user would see: the printed diagnostics. */
static sf_rc s_load(const char *yaml, bool strict, sf_session_t **out, char **printed)
{
    free(tu_write_text(s_dir, "session.yaml", yaml));
    sf_session_load_opts_t opts = sf_session_load_opts_default();
    opts.strict = strict;
    sf_diags_t diags = SF_DIAGS_INIT;
    sf_err_t err = {0};
    sf_rc rc = sf_session_load("session.yaml", &opts, out, &diags, &err);
    size_t n = 0;
    FILE *f = open_memstream(printed, &n);
    ck_assert_ptr_nonnull(f);
    sf_diags_print(&diags, f);
    fclose(f);
    sf_diags_free(&diags);
    return rc;
}

/* ---- the good session --------------------------------------------------- */

static const char s_good[] = "version: 1\n"
                             "\n"
                             "session:\n"
                             "  name: Night Drive\n"
                             "  media_root: media\n"
                             "  start: 0\n"
                             "  end: auto\n"
                             "  tail_threshold_db: -120\n"
                             "  segment: 30s\n"
                             "  sample_rate: 48000   # after the times, on purpose\n"
                             "\n"
                             "output:\n"
                             "  dir: bounces\n"
                             "  format: wav\n"
                             "  sample_format: pcm24\n"
                             "  dither: tpdf\n"
                             "  name: \"{session}_{index}_{stem}\"\n"
                             "  bwf: false\n"
                             "  headroom_db: -8\n"
                             "  headroom_policy: fail\n"
                             "  master: bypass\n"
                             "\n"
                             "master:\n"
                             "  channels: stereo\n"
                             "\n"
                             "tracks:\n"
                             "  - name: Kick In\n"
                             "    source: drums/kick_in.wav\n"
                             "    gain_db: -2.5\n"
                             "    pan: -0.1\n"
                             "    polarity: invert\n"
                             "  - name: Snare Top\n"
                             "    source: ./drums/snare.wav\n"
                             "    mute: true\n"
                             "    output: master\n"
                             "  - name: OH\n"
                             "    source: drums/oh.wav\n"
                             "  - name: Lead Vox\n"
                             "    clips:\n"
                             "      - source: vox/take3.wav\n"
                             "        at: 1:02.250\n"
                             "        offset: 0.5s\n"
                             "        length: 2s\n"
                             "        gain_db: -inf\n"
                             "      - source: vox/take3.wav\n"
                             "        at: 96000\n"
                             "    pan: +0.25\n"
                             "  - name: BV 1\n"
                             "    source: vox/take3.wav\n"
                             "    gain_db: -6\n"
                             "\n"
                             "stems:\n"
                             "  - name: Drums\n"
                             "    tracks: [\"Kick *\", \"Snare *\", \"OH\"]\n"
                             "  - name: Vocals\n"
                             "    tracks: [Lead Vox, \"BV ?\"]\n"
                             "    channels: mono\n"
                             "\n"
                             "multitracks: false\n";

static char *s_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

START_TEST(test_good_session)
{
    sf_session_t *s = NULL;
    char *printed = NULL;
    ck_assert_int_eq(s_load(s_good, true, &s, &printed), SF_OK);
    ck_assert_str_eq(printed, ""); /* not even a warning in strict mode */
    free(printed);

    ck_assert_str_eq(s->path, "session.yaml");
    ck_assert_str_eq(s->base_dir, s_real);
    char *media = s_join(s_real, "media");
    ck_assert_str_eq(s->media_root, media);
    ck_assert_str_eq(s->name, "Night Drive");
    ck_assert_int_eq(s->sample_rate, 48000);
    ck_assert_int_eq(s->start, 0);
    ck_assert(s->end_auto);
    /* the last clip end: Lead Vox clip 1, 1:02.250 + 2 s */
    ck_assert_int_eq(s->end, 2988000 + 96000);
    ck_assert_int_eq(sf_session_n_frames(s), 3084000);
    ck_assert_int_eq(s->segment, 30 * 48000);
    ck_assert_double_eq(s->tail_threshold_db, -120.0);
    ck_assert_int_eq(s->master_channels, 2);

    char *bounces = s_join(s_real, "bounces");
    ck_assert_str_eq(s->output.dir, bounces);
    ck_assert_int_eq(s->output.format, SF_FILE_WAV);
    ck_assert_int_eq(s->output.sample_format, SF_SAMPLE_PCM24);
    ck_assert_int_eq(s->output.dither, SF_DITHER_TPDF);
    ck_assert_str_eq(s->output.name_template, "{session}_{index}_{stem}");
    ck_assert(!s->output.bwf);
    ck_assert(s->output.headroom_check);
    ck_assert_double_eq(s->output.headroom_db, -8.0);
    ck_assert(s->output.headroom_fail);

    ck_assert_int_eq(s->n_tracks, 5);
    const sf_track_t *kick = &s->tracks[0];
    ck_assert_str_eq(kick->name, "Kick In");
    ck_assert_int_eq(kick->mark.line, 27);
    ck_assert_int_eq(kick->mark.col, 5);
    ck_assert_double_eq(kick->gain_db, -2.5);
    ck_assert_double_eq(kick->pan, -0.1);
    ck_assert(kick->invert);
    ck_assert(!kick->mute);
    ck_assert_int_eq(kick->n_channels, 1);
    ck_assert_int_eq(kick->n_clips, 1);
    char *kick_path = s_join(media, "drums/kick_in.wav");
    ck_assert_str_eq(kick->clips[0].path, kick_path);
    ck_assert_int_eq(kick->clips[0].mark.line, 28);
    ck_assert_int_eq(kick->clips[0].mark.col, 13);
    ck_assert_int_eq(kick->clips[0].at, 0);
    ck_assert_int_eq(kick->clips[0].offset, 0);
    ck_assert_int_eq(kick->clips[0].length, 48000);
    ck_assert_int_eq(kick->clips[0].source_frames, 48000);
    ck_assert_int_eq(kick->clips[0].source_channels, 1);
    ck_assert_double_eq(kick->clips[0].gain_db, 0.0);

    const sf_track_t *snare = &s->tracks[1];
    char *snare_path = s_join(media, "drums/snare.wav");
    ck_assert_str_eq(snare->clips[0].path, snare_path);
    ck_assert(snare->mute);
    ck_assert(!snare->invert);
    ck_assert_int_eq(s->tracks[2].n_channels, 2);
    ck_assert_int_eq(s->tracks[2].clips[0].length, 96000);

    const sf_track_t *vox = &s->tracks[3];
    ck_assert_str_eq(vox->name, "Lead Vox");
    ck_assert_double_eq(vox->pan, 0.25);
    ck_assert_int_eq(vox->n_clips, 2);
    ck_assert_int_eq(vox->clips[0].at, 2988000);
    ck_assert_int_eq(vox->clips[0].offset, 24000);
    ck_assert_int_eq(vox->clips[0].length, 96000);
    ck_assert(isinf(vox->clips[0].gain_db) && vox->clips[0].gain_db < 0);
    ck_assert_int_eq(vox->clips[0].mark.line, 40);
    ck_assert_int_eq(vox->clips[0].mark.col, 9);
    ck_assert_int_eq(vox->clips[1].at, 96000);
    ck_assert_int_eq(vox->clips[1].offset, 0);
    ck_assert_int_eq(vox->clips[1].length, 144000); /* default: the whole source */
    ck_assert_double_eq(s->tracks[4].gain_db, -6.0);

    ck_assert_int_eq(s->n_stems, 2);
    ck_assert_str_eq(s->stems[0].name, "Drums");
    ck_assert_int_eq(s->stems[0].n_channels, 2);
    ck_assert_int_eq(s->stems[0].n_tracks, 3);
    ck_assert_int_eq(s->stems[0].tracks[0], 0);
    ck_assert_int_eq(s->stems[0].tracks[1], 1); /* muted tracks still belong */
    ck_assert_int_eq(s->stems[0].tracks[2], 2);
    ck_assert_str_eq(s->stems[1].name, "Vocals");
    ck_assert_int_eq(s->stems[1].n_channels, 1);
    ck_assert_int_eq(s->stems[1].n_tracks, 2);
    ck_assert_int_eq(s->stems[1].tracks[0], 3);
    ck_assert_int_eq(s->stems[1].tracks[1], 4);

    char name[256];
    ck_assert_int_eq(sf_session_stem_filename(s, 0, name, sizeof name, NULL), SF_OK);
    ck_assert_str_eq(name, "Night Drive_01_Drums.wav");
    ck_assert_int_eq(sf_session_stem_filename(s, 1, name, sizeof name, NULL), SF_OK);
    ck_assert_str_eq(name, "Night Drive_02_Vocals.wav");

    free(media);
    free(bounces);
    free(kick_path);
    free(snare_path);
    sf_session_destroy(&s);
    ck_assert_ptr_null(s);
    sf_session_destroy(&s); /* idempotent */
}
END_TEST

/* ---- the mixing graph ----------------------------------------------------- */

/* Buses in a file order that is not topological (Verb Return is fed by FX
 * Bus, which is fed by Drum Bus), every routing feature, a rest stem, mixes,
 * per-channel delivery of a 5.1 master. Must load without a warning. */
static const char s_graph[] =
    "version: 1\n"
    "session:\n"
    "  name: Graph\n"
    "  sample_rate: 48000\n"
    "output:\n"
    "  name: \"{session}_{index}_{stem}\"\n"
    "  interleave: false\n"
    "  master: apply\n"
    "  null_test: false\n"
    "master:\n"
    "  channels: 5.1\n"
    "buses:\n"
    "  - name: Verb Return\n"
    "    channels: stereo\n"
    "    output: Music\n"
    "    gain_db: -3\n"
    "  - name: FX Bus\n"
    "    channels: mono\n"
    "    sends:\n"
    "      - to: Delay\n"
    "        level_db: -6\n"
    "        pre_fader: true\n"
    "    output: Verb Return\n"
    "  - name: Music\n"
    "    channels: 5.1\n"
    "  - name: Delay\n"
    "    output: Music\n"
    "  - name: Drum Bus\n"
    "    output: Music\n"
    "    sends: [{to: FX Bus, level_db: -inf}]\n"
    "  - name: Unused\n"
    "    channels: 7.1\n"
    "tracks:\n"
    "  - name: Kick\n" /* line 34 */
    "    source: kick.wav\n"
    "    output: Drum Bus\n"
    "    sends:\n"
    "      - to: FX Bus\n"
    "        pre_fader: false\n"
    "        automation:\n"
    "          level_db: [[0, -inf], [1s, -14]]\n"
    "    automation:\n"
    "      gain_db: [[0, -inf], [500ms, 0], [0:01.250, -6], [96000, -6], [2.0000001s, +1.5]]\n"
    "      pan: [[0, -0.5], [2s, 0.5], [0:00:03.000, 1]]\n"
    "  - name: Center\n"
    "    source: six.wav\n"
    "    channel: 3\n"
    "    output: Music\n"
    "    route: [C]\n"
    "  - name: LFE\n"
    "    clips:\n"
    "      - source: six.wav\n"
    "        channel: 4\n"
    "        fade_in: 10ms\n"
    "        fade_out: {length: 20ms, shape: equal_power}\n"
    "      - source: six.wav\n"
    "        channel: 4\n"
    "        at: 4800\n"
    "        offset: 100\n"
    "        crossfade: 1ms\n"
    "        fade_in: {length: 5ms}\n"
    "    route: [LFE]\n"
    "    output: Music\n"
    "  - name: Sides\n"
    "    source: kick.wav\n"
    "    route: [Ls, Rs]\n"
    "  - name: OH\n"
    "    source: oh.wav\n"
    "    sends: [{to: Verb Return, level_db: -12.5, pre_fader: true}]\n"
    "stems:\n"
    "  - name: Drums\n"
    "    tracks: [Kick, OH]\n"
    "    channels: stereo\n"
    "  - name: Other\n"
    "    rest: true\n"
    "  - name: Bed\n"
    "    tracks: [Center, LFE]\n"
    "    channels: 5.1\n"
    "mixes:\n"
    "  - name: No Drums\n"
    "    exclude: [Drums]\n"
    "  - name: Bed Up\n"
    "    gains_db: {Bed: 1.5, Other: -inf}\n"
    "    master: apply\n"
    "multitracks: true\n";

static bool s_is_minus_inf(double x) { return isinf(x) && x < 0; }

START_TEST(test_graph_session)
{
    sf_session_t *s = NULL;
    char *printed = NULL;
    ck_assert_int_eq(s_load(s_graph, true, &s, &printed), SF_OK);
    ck_assert_str_eq(printed, "");
    free(printed);

    char *cache = s_join(s_real, ".stemfarm-cache");
    ck_assert_str_eq(s->cache_dir, cache);
    ck_assert_int_eq(s->master_channels, 6);
    ck_assert(!s->output.interleave);
    ck_assert(s->output.master_apply);
    ck_assert(!s->output.null_test);
    ck_assert(s->multitracks);

    /* buses, in file order */
    ck_assert_int_eq(s->n_buses, 6);
    static const struct {
        const char *name;
        int n_channels;
        int output_bus;
        double gain_db;
        size_t n_sends;
    } buses[] = {
        {"Verb Return", 2, 2, -3.0, 0}, {"FX Bus", 1, 0, 0.0, 1},   {"Music", 6, SF_MASTER_BUS, 0.0, 0},
        {"Delay", 2, 2, 0.0, 0},        {"Drum Bus", 2, 2, 0.0, 1}, {"Unused", 8, SF_MASTER_BUS, 0.0, 0},
    };
    for (size_t i = 0; i < 6; i++) {
        const sf_bus_t *b = &s->buses[i];
        ck_assert_str_eq(b->name, buses[i].name);
        ck_assert_int_eq(b->n_channels, buses[i].n_channels);
        ck_assert_int_eq(b->output_bus, buses[i].output_bus);
        ck_assert_double_eq(b->gain_db, buses[i].gain_db);
        ck_assert_int_eq(b->n_sends, buses[i].n_sends);
    }
    ck_assert_int_eq(s->buses[0].mark.line, 13);
    ck_assert_int_eq(s->buses[0].mark.col, 5);
    ck_assert_int_eq(s->buses[1].sends[0].bus, 3);
    ck_assert_double_eq(s->buses[1].sends[0].level_db, -6.0);
    ck_assert(s->buses[1].sends[0].pre_fader);
    ck_assert_int_eq(s->buses[1].sends[0].mark.line, 20);
    ck_assert_int_eq(s->buses[4].sends[0].bus, 1);
    ck_assert(s_is_minus_inf(s->buses[4].sends[0].level_db));
    ck_assert(!s->buses[4].sends[0].pre_fader);

    /* Drum Bus and Unused feed nothing-fed; Drum Bus -> FX Bus -> Verb
     * Return and Delay -> Music; ties (Unused) go in file order. */
    static const size_t order[] = {4, 1, 0, 3, 2, 5};
    for (size_t i = 0; i < 6; i++)
        ck_assert_int_eq(s->bus_order[i], order[i]);

    /* tracks */
    ck_assert_int_eq(s->n_tracks, 5);
    const sf_track_t *kick = &s->tracks[0];
    ck_assert_int_eq(kick->output_bus, 4);
    ck_assert_int_eq(kick->n_channels, 1);
    ck_assert_int_eq(kick->n_route, 0);
    ck_assert_int_eq(kick->n_sends, 1);
    ck_assert_int_eq(kick->sends[0].bus, 1);
    ck_assert_double_eq(kick->sends[0].level_db, 0.0); /* default */
    ck_assert(!kick->sends[0].pre_fader);
    ck_assert_int_eq(kick->sends[0].level_auto.n_points, 2);
    ck_assert_int_eq(kick->sends[0].level_auto.frames[1], 48000);
    ck_assert(s_is_minus_inf(kick->sends[0].level_auto.values[0]));
    ck_assert_double_eq(kick->sends[0].level_auto.values[1], -14.0);
    /* every time form converts exactly: 500ms, 0:01.250, samples, and
     * 2.0000001 s = 96000.0048 frames, rounded to the nearest */
    static const int64_t gain_frames[] = {0, 24000, 60000, 96000, 96000};
    static const double gain_values[] = {-(double)INFINITY, 0.0, -6.0, -6.0, 1.5};
    ck_assert_int_eq(kick->gain_auto.n_points, 5);
    ck_assert_int_eq(kick->gain_auto.mark.line, 43);
    ck_assert_int_eq(kick->gain_auto.mark.col, 16);
    for (size_t i = 0; i < 5; i++) {
        ck_assert_int_eq(kick->gain_auto.frames[i], gain_frames[i]);
        if (i == 0)
            ck_assert(s_is_minus_inf(kick->gain_auto.values[i]));
        else
            ck_assert_double_eq(kick->gain_auto.values[i], gain_values[i]);
    }
    ck_assert_int_eq(kick->pan_auto.n_points, 3);
    ck_assert_int_eq(kick->pan_auto.frames[1], 96000);
    ck_assert_int_eq(kick->pan_auto.frames[2], 144000);
    ck_assert_double_eq(kick->pan_auto.values[0], -0.5);
    ck_assert_double_eq(kick->pan_auto.values[2], 1.0);

    const sf_track_t *center = &s->tracks[1];
    ck_assert_int_eq(center->output_bus, 2);
    ck_assert_int_eq(center->n_channels, 1);
    ck_assert_int_eq(center->clips[0].channel, 2);
    ck_assert_int_eq(center->clips[0].source_channels, 6);
    ck_assert_int_eq(center->clips[0].length, 4800);
    ck_assert_int_eq(center->clips[0].source_rate, 48000);
    ck_assert_ptr_null(center->clips[0].original_path);
    ck_assert_int_eq(center->n_route, 1);
    ck_assert_int_eq(center->route[0], 2);
    ck_assert_int_eq(center->n_sends, 0);
    ck_assert_int_eq(center->gain_auto.n_points, 0);

    const sf_track_t *lfe = &s->tracks[2];
    ck_assert_int_eq(lfe->n_channels, 1);
    ck_assert_int_eq(lfe->n_clips, 2);
    ck_assert_int_eq(lfe->clips[0].channel, 3);
    ck_assert_int_eq(lfe->clips[0].fade_in.length, 480);
    ck_assert_int_eq(lfe->clips[0].fade_in.shape, SF_FADE_LINEAR);
    ck_assert_int_eq(lfe->clips[0].fade_out.length, 960);
    ck_assert_int_eq(lfe->clips[0].fade_out.shape, SF_FADE_EQUAL_POWER);
    ck_assert_int_eq(lfe->clips[0].crossfade, 0);
    ck_assert_int_eq(lfe->clips[1].at, 4800);
    ck_assert_int_eq(lfe->clips[1].length, 4700);
    ck_assert_int_eq(lfe->clips[1].crossfade, 48);
    ck_assert_int_eq(lfe->clips[1].fade_in.length, 240);
    ck_assert_int_eq(lfe->clips[1].fade_in.shape, SF_FADE_LINEAR);
    ck_assert_int_eq(lfe->clips[1].fade_out.length, 0);
    ck_assert_int_eq(lfe->n_route, 1);
    ck_assert_int_eq(lfe->route[0], 3);

    const sf_track_t *sides = &s->tracks[3];
    ck_assert_int_eq(sides->output_bus, SF_MASTER_BUS);
    ck_assert_int_eq(sides->clips[0].channel, -1);
    ck_assert_int_eq(sides->n_route, 2);
    ck_assert_int_eq(sides->route[0], 4);
    ck_assert_int_eq(sides->route[1], 5);

    const sf_track_t *oh = &s->tracks[4];
    ck_assert_int_eq(oh->n_channels, 2);
    ck_assert_int_eq(oh->output_bus, SF_MASTER_BUS);
    ck_assert_int_eq(oh->sends[0].bus, 0);
    ck_assert_double_eq(oh->sends[0].level_db, -12.5);
    ck_assert(oh->sends[0].pre_fader);
    ck_assert_int_eq(oh->sends[0].level_auto.n_points, 0);

    /* stems: the rest stem gets what Drums and Bed leave, in session order */
    ck_assert_int_eq(s->n_stems, 3);
    const sf_stem_t *drums = &s->stems[0], *other = &s->stems[1], *bed = &s->stems[2];
    ck_assert(!drums->rest);
    ck_assert_int_eq(drums->n_channels, 2);
    ck_assert_int_eq(drums->n_tracks, 2);
    ck_assert(other->rest);
    ck_assert_int_eq(other->n_channels, 6); /* the master's */
    ck_assert_int_eq(other->n_tracks, 1);
    ck_assert_int_eq(other->tracks[0], 3);
    ck_assert_int_eq(bed->n_tracks, 2);
    ck_assert_int_eq(bed->tracks[0], 1);
    ck_assert_int_eq(bed->tracks[1], 2);
    /* Kick reaches Drum Bus and FX Bus, and through them everything but
     * Unused; OH reaches Verb Return: in bus_order */
    static const size_t drum_buses[] = {4, 1, 0, 3, 2};
    ck_assert_int_eq(drums->n_buses, 5);
    for (size_t i = 0; i < 5; i++)
        ck_assert_int_eq(drums->buses[i], drum_buses[i]);
    ck_assert_int_eq(bed->n_buses, 1);
    ck_assert_int_eq(bed->buses[0], 2);
    ck_assert_int_eq(other->n_buses, 0);

    /* mixes: a gain per stem, in stem order */
    ck_assert_int_eq(s->n_mixes, 2);
    ck_assert_str_eq(s->mixes[0].name, "No Drums");
    ck_assert_int_eq(s->mixes[0].n_channels, 6);
    ck_assert(!s->mixes[0].master_apply);
    ck_assert(s_is_minus_inf(s->mixes[0].stem_gain_db[0]));
    ck_assert_double_eq(s->mixes[0].stem_gain_db[1], 0.0);
    ck_assert_double_eq(s->mixes[0].stem_gain_db[2], 0.0);
    ck_assert(s->mixes[1].master_apply);
    ck_assert_double_eq(s->mixes[1].stem_gain_db[0], 0.0);
    ck_assert(s_is_minus_inf(s->mixes[1].stem_gain_db[1]));
    ck_assert_double_eq(s->mixes[1].stem_gain_db[2], 1.5);

    /* targets */
    static const struct {
        sf_target_t t;
        int n_channels;
        const char *name;
    } targets[] = {
        {{SF_TARGET_STEM, 0}, 2, "Drums"},    {{SF_TARGET_STEM, 1}, 6, "Other"},
        {{SF_TARGET_STEM, 2}, 6, "Bed"},      {{SF_TARGET_MIX, 0}, 6, "No Drums"},
        {{SF_TARGET_MIX, 1}, 6, "Bed Up"},    {{SF_TARGET_MULTITRACK, 0}, 1, "Kick"},
        {{SF_TARGET_MULTITRACK, 4}, 2, "OH"}, {{SF_TARGET_FULL_MIX, 0}, 6, "Full Mix"},
    };
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        ck_assert_int_eq(sf_session_target_channels(s, targets[i].t), targets[i].n_channels);
        ck_assert_str_eq(sf_session_target_name(s, targets[i].t), targets[i].name);
    }
    ck_assert_int_eq(sf_session_target_count(s, SF_TARGET_STEM), 3);
    ck_assert_int_eq(sf_session_target_count(s, SF_TARGET_MIX), 2);
    ck_assert_int_eq(sf_session_target_count(s, SF_TARGET_MULTITRACK), 5);
    ck_assert_int_eq(sf_session_target_count(s, SF_TARGET_FULL_MIX), 1);

    static const struct {
        sf_target_t t;
        int channel;
        const char *want;
    } files[] = {
        {{SF_TARGET_STEM, 0}, -1, "Graph_01_Drums.wav"},       {{SF_TARGET_STEM, 0}, 0, "Graph_01_Drums.L.wav"},
        {{SF_TARGET_STEM, 0}, 1, "Graph_01_Drums.R.wav"},      {{SF_TARGET_STEM, 2}, 0, "Graph_03_Bed.L.wav"},
        {{SF_TARGET_STEM, 2}, 1, "Graph_03_Bed.R.wav"},        {{SF_TARGET_STEM, 2}, 2, "Graph_03_Bed.C.wav"},
        {{SF_TARGET_STEM, 2}, 3, "Graph_03_Bed.LFE.wav"},      {{SF_TARGET_STEM, 2}, 4, "Graph_03_Bed.Ls.wav"},
        {{SF_TARGET_STEM, 2}, 5, "Graph_03_Bed.Rs.wav"},       {{SF_TARGET_MIX, 1}, -1, "Graph_02_Bed Up.wav"},
        {{SF_TARGET_MIX, 1}, 3, "Graph_02_Bed Up.LFE.wav"},    {{SF_TARGET_MULTITRACK, 4}, 1, "Graph_05_OH.R.wav"},
        {{SF_TARGET_MULTITRACK, 0}, 0, "Graph_01_Kick.M.wav"}, {{SF_TARGET_FULL_MIX, 0}, -1, "Graph_01_Full Mix.wav"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char name[256];
        ck_assert_int_eq(sf_session_target_filename(s, files[i].t, files[i].channel, name, sizeof name, NULL), SF_OK);
        ck_assert_str_eq(name, files[i].want);
    }
    /* the stem wrapper is the stem target */
    char name[256];
    ck_assert_int_eq(sf_session_stem_filename(s, 2, name, sizeof name, NULL), SF_OK);
    ck_assert_str_eq(name, "Graph_03_Bed.wav");
    /* misuse: a channel the target does not have, a target that does not exist */
    sf_err_t err = {0};
    ck_assert_int_eq(sf_session_target_filename(s, (sf_target_t){SF_TARGET_STEM, 0}, 2, name, sizeof name, &err),
                     SF_E_INTERNAL);
    ck_assert_int_eq(sf_session_target_filename(s, (sf_target_t){SF_TARGET_MIX, 2}, -1, name, sizeof name, &err),
                     SF_E_INTERNAL);
    ck_assert_int_eq(sf_session_target_channels(s, (sf_target_t){SF_TARGET_STEM, 3}), 0);
    ck_assert_ptr_null(sf_session_target_name(s, (sf_target_t){SF_TARGET_MULTITRACK, 5}));

    free(cache);
    sf_session_destroy(&s);
}
END_TEST

START_TEST(test_layouts)
{
    static const struct {
        int n;
        const char *name;
        const char *labels;
    } layouts[] = {
        {1, "mono", "M"},
        {2, "stereo", "L R"},
        {6, "5.1", "L R C LFE Ls Rs"},
        {8, "7.1", "L R C LFE Lss Rss Lsr Rsr"},
    };
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        ck_assert_str_eq(sf_layout_name(layouts[i].n), layouts[i].name);
        const char *const *labels = sf_layout_labels(layouts[i].n);
        char joined[64] = "";
        for (int c = 0; c < layouts[i].n; c++)
            snprintf(joined + strlen(joined), sizeof joined - strlen(joined), "%s%s", c ? " " : "", labels[c]);
        ck_assert_str_eq(joined, layouts[i].labels);
    }
    static const int others[] = {0, 3, 4, 5, 7, 9, -1};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        ck_assert_ptr_null(sf_layout_name(others[i]));
        ck_assert_ptr_null(sf_layout_labels(others[i]));
    }
}
END_TEST

/* A 44.1 kHz source in a 48 kHz session: every clip of it reads one copy
 * in the cache, made once; offsets and lengths count at the session rate. */
static const char s_resampled[] = "version: 1\n"
                                  "session: {sample_rate: 48000}\n"
                                  "tracks:\n"
                                  "  - name: Vox\n"
                                  "    clips:\n"
                                  "      - {source: vox44.wav, length: 0.5s}\n"
                                  "      - {source: vox44.wav, at: 1s, offset: 0.5s}\n"
                                  "  - name: Double\n"
                                  "    source: ./vox44.wav\n"
                                  "  - name: Kick\n"
                                  "    source: kick.wav\n"
                                  "stems: [{name: All, tracks: ['*']}]\n";

START_TEST(test_resampled_source)
{
    sf_session_t *s = NULL;
    char *printed = NULL;
    sf_rc rc = s_load(s_resampled, true, &s, &printed);
    ck_assert_msg(rc == SF_OK, "%s", printed);
    ck_assert_str_eq(printed, "");
    free(printed);

    char *cache = s_join(s_real, ".stemfarm-cache");
    char *original = s_join(s_real, "vox44.wav");
    ck_assert_str_eq(s->cache_dir, cache);
    const sf_clip_t *a = &s->tracks[0].clips[0], *b = &s->tracks[0].clips[1];
    const sf_clip_t *d = &s->tracks[1].clips[0], *k = &s->tracks[2].clips[0];
    ck_assert_msg(!strncmp(a->path, cache, strlen(cache)) && a->path[strlen(cache)] == '/', "'%s' is not in the cache",
                  a->path);
    ck_assert(tu_exists(a->path));
    ck_assert_str_eq(a->original_path, original);
    ck_assert_str_eq(b->path, a->path);
    ck_assert_str_eq(d->path, a->path);
    ck_assert_str_eq(d->original_path, original);
    ck_assert_int_eq(a->source_rate, 44100);
    ck_assert_int_eq(a->source_channels, 1);
    /* 1 s of audio at 48 kHz */
    ck_assert_int_eq(a->source_frames, 48000);
    ck_assert_int_eq(a->length, 24000);
    ck_assert_int_eq(b->offset, 24000);
    ck_assert_int_eq(b->length, 24000);
    ck_assert_int_eq(d->length, 48000);
    ck_assert_int_eq(s->end, 48000 + 24000);
    /* a source at the session rate is read as it is */
    ck_assert_ptr_null(k->original_path);
    ck_assert_int_eq(k->source_rate, 48000);
    sf_session_destroy(&s);

    /* Loading again reuses the copy. */
    ck_assert_int_eq(s_load(s_resampled, true, &s, &printed), SF_OK);
    free(printed);
    ck_assert_str_eq(s->tracks[0].clips[0].original_path, original);
    sf_session_destroy(&s);

    /* Without resampling: the rate mismatch is an error, once per clip. */
    sf_session_load_opts_t opts = sf_session_load_opts_default();
    ck_assert(opts.resample);
    opts.resample = false;
    sf_diags_t diags = SF_DIAGS_INIT;
    ck_assert_int_eq(sf_session_load_text("session.yaml", s_resampled, strlen(s_resampled), &opts, &s, &diags, NULL),
                     SF_E_INPUT);
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    sf_diags_print(&diags, f);
    fclose(f);
    ck_assert_str_eq(out, "session.yaml:6:18: error: source 'vox44.wav' is 44100 Hz, the session is "
                          "48000 Hz (and resampling is off)\n"
                          "session.yaml:7:18: error: source 'vox44.wav' is 44100 Hz, the session is "
                          "48000 Hz (and resampling is off)\n"
                          "session.yaml:9:13: error: source './vox44.wav' is 44100 Hz, the session is "
                          "48000 Hz (and resampling is off)\n");
    free(out);
    sf_diags_free(&diags);

    /* Sources not checked: nothing is opened, nothing resampled. */
    opts = sf_session_load_opts_default();
    opts.check_sources = false;
    static const char unchecked[] = "version: 1\n"
                                    "session: {sample_rate: 48000, end: 2s}\n"
                                    "tracks: [{name: Vox, clips: [{source: vox44.wav, length: 1s}]}]\n"
                                    "stems: [{name: All, tracks: ['*']}]\n";
    ck_assert_int_eq(sf_session_load_text("session.yaml", unchecked, strlen(unchecked), &opts, &s, &diags, NULL),
                     SF_OK);
    ck_assert_str_eq(s->tracks[0].clips[0].path, original);
    ck_assert_ptr_null(s->tracks[0].clips[0].original_path);
    sf_session_destroy(&s);
    sf_diags_free(&diags);

    free(cache);
    free(original);
}
END_TEST

/* A failed resample is a problem of the clip, reported once per source. */
START_TEST(test_resample_failure)
{
    /* A file where the cache folder should be: it cannot be created. */
    free(tu_write_text(s_dir, ".stemfarm-cache", "not a folder\n"));
    sf_session_t *s = (sf_session_t *)1;
    char *printed = NULL;
    ck_assert_int_eq(s_load(s_resampled, false, &s, &printed), SF_E_INPUT);
    ck_assert_ptr_null(s);
    /* the reason is sf_media_resampled's */
    static const char want[] = "session.yaml:6:9: error: cannot resample source 'vox44.wav' from "
                               "44100 Hz to 48000 Hz: ";
    ck_assert_msg(!strncmp(printed, want, strlen(want)), "got: %s", printed);
    const char *nl = strchr(printed, '\n');
    ck_assert_msg(nl && nl[1] == '\0', "more than one line: %s", printed);
    free(printed);
}
END_TEST

/* ---- insert effects -------------------------------------------------------- */

/* Every effect, on tracks, buses and the master: parameters as given, the
 * table's defaults where omitted, highpass and lowpass as eq types, the mark
 * of every entry, impulse responses resolved (and resampled) like sources.
 * `end` is given: test_fx_tails covers `end: auto`. */
static const char s_fx[] =
    "version: 1\n"
    "session:\n"
    "  name: Effects\n"
    "  sample_rate: 48000\n"
    "  media_root: media\n"
    "  end: 10s\n"
    "output:\n"
    "  master: apply\n"
    "master:\n"
    "  channels: stereo\n"
    "  fx:\n"
    "    - limiter: {ceiling_db: -1, release_ms: 50}\n"
    "buses:\n"
    "  - name: Drum Bus\n"
    "    fx:\n"
    "      - compressor: {threshold_db: -12, ratio: 2, attack_ms: 30, release_ms: 200}\n"
    "  - name: Vox Verb\n"
    "    fx: [{reverb: {decay_s: 2.4, predelay_ms: 20, damping: 0.25}}]\n"
    "  - name: Echo\n"
    "    channels: mono\n"
    "    fx:\n"
    "      - delay: {time_ms: 100, feedback: 0.5}\n"
    "      - convolve: {ir: irs/plate.wav}\n"
    "  - name: Dry\n"
    "    fx: []\n"
    "tracks:\n"
    "  - name: Kick In\n"
    "    source: drums/kick_in.wav\n"
    "    output: Drum Bus\n"
    "    fx:\n"
    "      - highpass: {freq: 30}\n"
    "      - lowpass: {freq: 12000, q: 0.5}\n"
    "      - gain: {db: +1.5}\n"
    "  - name: Lead Vox\n"
    "    source: vox/take3.wav\n"
    "    sends: [{to: Vox Verb, level_db: -14}, {to: Echo}]\n"
    "    fx:\n"
    "      - highpass: {freq: 80, q: 0.707}\n"
    "      - eq: {type: peak, freq: 3000, gain_db: 2.5, q: 1.0}\n"
    "      - compressor: {threshold_db: -18, ratio: 4, attack_ms: 10, release_ms: 120, knee_db: 6, makeup_db: 3}\n"
    "      - delay: {time_ms: 375, feedback: 0.25, mix: 0.2}\n"
    "      - limiter: {ceiling_db: -0.5, release_ms: 80, lookahead_ms: 2}\n"
    "      - eq:\n"
    "          type: notch\n"
    "          freq: 23999.5\n"
    "          q: 50\n"
    "      - reverb:\n"
    "      - compressor: {}\n"
    "  - name: OH\n"
    "    source: drums/oh.wav\n"
    "    output: Drum Bus\n"
    "    fx:\n"
    "      - convolve: {ir: irs/hall.wav, mix: 0.3}\n"
    "      - eq: {freq: 500, type: lowshelf, gain_db: -48}\n"
    "  - name: Room\n"
    "    source: drums/snare.wav\n"
    "    fx:\n"
    "      - convolve: {ir: irs/room44.wav}\n"
    "stems:\n"
    "  - name: Drums\n"
    "    tracks: [Kick In, OH, Room]\n"
    "  - name: Vocals\n"
    "    tracks: [Lead Vox]\n";

/* The table's default for an effect's key. */
static double s_default(const char *effect, const char *key)
{
    size_t n;
    const sf_fx_param_spec_t *specs = sf_fx_param_specs(&n);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(specs[i].effect, effect) && !strcmp(specs[i].key, key))
            return specs[i].def;
    ck_abort_msg("no parameter '%s' of '%s' in the table", key, effect);
    return 0;
}

static void s_mark_is(const sf_insert_t *ins, uint32_t line, uint32_t col)
{
    ck_assert_int_eq(ins->mark.line, line);
    ck_assert_int_eq(ins->mark.col, col);
}

static void s_eq_is(const sf_insert_t *ins, sf_eq_type_t type, double freq, double gain_db, double q)
{
    ck_assert_int_eq(ins->params.kind, SF_FX_EQ);
    ck_assert_int_eq(ins->params.u.eq.type, type);
    ck_assert_double_eq(ins->params.u.eq.freq, freq);
    ck_assert_double_eq(ins->params.u.eq.gain_db, gain_db);
    ck_assert_double_eq(ins->params.u.eq.q, q);
    ck_assert_ptr_null(ins->ir_path);
}

static void s_compressor_is(const sf_insert_t *ins, double threshold_db, double ratio, double attack_ms,
                            double release_ms, double knee_db, double makeup_db)
{
    ck_assert_int_eq(ins->params.kind, SF_FX_COMPRESSOR);
    ck_assert_double_eq(ins->params.u.compressor.threshold_db, threshold_db);
    ck_assert_double_eq(ins->params.u.compressor.ratio, ratio);
    ck_assert_double_eq(ins->params.u.compressor.attack_ms, attack_ms);
    ck_assert_double_eq(ins->params.u.compressor.release_ms, release_ms);
    ck_assert_double_eq(ins->params.u.compressor.knee_db, knee_db);
    ck_assert_double_eq(ins->params.u.compressor.makeup_db, makeup_db);
}

/* A convolve reading `path`, through ir_path (owned) and the params' pointer. */
static void s_convolve_is(const sf_insert_t *ins, const char *path, double mix)
{
    ck_assert_int_eq(ins->params.kind, SF_FX_CONVOLVE);
    ck_assert_str_eq(ins->ir_path, path);
    ck_assert_ptr_eq(ins->params.u.convolve.ir_path, ins->ir_path);
    ck_assert_double_eq(ins->params.u.convolve.mix, mix);
}

START_TEST(test_fx_session)
{
    sf_session_t *s = NULL;
    char *printed = NULL;
    sf_rc rc = s_load(s_fx, true, &s, &printed);
    ck_assert_msg(rc == SF_OK, "%s", printed);
    ck_assert_str_eq(printed, ""); /* no warning in strict mode */
    free(printed);
    char *media = s_join(s_real, "media");
    char *plate = s_join(media, "irs/plate.wav"), *hall = s_join(media, "irs/hall.wav");
    char *cache = s_join(s_real, ".stemfarm-cache");

    /* the master: a limiter, look-ahead by default */
    ck_assert_int_eq(s->n_master_fx, 1);
    const sf_insert_t *ins = &s->master_fx[0];
    ck_assert_int_eq(ins->params.kind, SF_FX_LIMITER);
    ck_assert_double_eq(ins->params.u.limiter.ceiling_db, -1.0);
    ck_assert_double_eq(ins->params.u.limiter.release_ms, 50.0);
    ck_assert_double_eq(ins->params.u.limiter.lookahead_ms, s_default("limiter", "lookahead_ms"));
    s_mark_is(ins, 12, 7);

    /* buses */
    ck_assert_int_eq(s->n_buses, 4);
    const sf_bus_t *drum = &s->buses[0], *verb = &s->buses[1], *echo = &s->buses[2], *dry = &s->buses[3];
    ck_assert_int_eq(drum->n_fx, 1);
    s_compressor_is(&drum->fx[0], -12.0, 2.0, 30.0, 200.0, s_default("compressor", "knee_db"),
                    s_default("compressor", "makeup_db"));
    s_mark_is(&drum->fx[0], 16, 9);
    ck_assert_int_eq(verb->n_fx, 1);
    ins = &verb->fx[0];
    ck_assert_int_eq(ins->params.kind, SF_FX_REVERB);
    ck_assert_double_eq(ins->params.u.reverb.decay_s, 2.4);
    ck_assert_double_eq(ins->params.u.reverb.predelay_ms, 20.0);
    ck_assert_double_eq(ins->params.u.reverb.damping, 0.25);
    ck_assert_double_eq(ins->params.u.reverb.mix, s_default("reverb", "mix"));
    s_mark_is(ins, 18, 10);
    ck_assert_int_eq(echo->n_fx, 2);
    ins = &echo->fx[0];
    ck_assert_int_eq(ins->params.kind, SF_FX_DELAY);
    ck_assert_double_eq(ins->params.u.delay.time_ms, 100.0);
    ck_assert_double_eq(ins->params.u.delay.feedback, 0.5);
    ck_assert_double_eq(ins->params.u.delay.mix, s_default("delay", "mix"));
    ck_assert_ptr_null(ins->ir_path);
    s_mark_is(ins, 22, 9);
    s_convolve_is(&echo->fx[1], plate, s_default("convolve", "mix")); /* mono IR on a mono bus */
    s_mark_is(&echo->fx[1], 23, 9);
    ck_assert_int_eq(dry->n_fx, 0); /* fx: [] */
    ck_assert_ptr_null(dry->fx);

    /* tracks */
    const sf_track_t *kick = &s->tracks[0], *vox = &s->tracks[1], *oh = &s->tracks[2], *room = &s->tracks[3];
    ck_assert_int_eq(kick->n_fx, 3);
    s_eq_is(&kick->fx[0], SF_EQ_HIGHPASS, 30.0, 0.0, s_default("highpass", "q"));
    s_eq_is(&kick->fx[1], SF_EQ_LOWPASS, 12000.0, 0.0, 0.5);
    ck_assert_int_eq(kick->fx[2].params.kind, SF_FX_GAIN);
    ck_assert_double_eq(kick->fx[2].params.u.gain.db, 1.5);
    for (size_t i = 0; i < 3; i++)
        s_mark_is(&kick->fx[i], (uint32_t)(31 + i), 9);

    ck_assert_int_eq(vox->n_fx, 8);
    s_eq_is(&vox->fx[0], SF_EQ_HIGHPASS, 80.0, 0.0, 0.707);
    s_eq_is(&vox->fx[1], SF_EQ_PEAK, 3000.0, 2.5, 1.0);
    s_compressor_is(&vox->fx[2], -18.0, 4.0, 10.0, 120.0, 6.0, 3.0);
    ins = &vox->fx[3];
    ck_assert_int_eq(ins->params.kind, SF_FX_DELAY);
    ck_assert_double_eq(ins->params.u.delay.time_ms, 375.0);
    ck_assert_double_eq(ins->params.u.delay.feedback, 0.25);
    ck_assert_double_eq(ins->params.u.delay.mix, 0.2);
    ins = &vox->fx[4];
    ck_assert_int_eq(ins->params.kind, SF_FX_LIMITER);
    ck_assert_double_eq(ins->params.u.limiter.ceiling_db, -0.5);
    ck_assert_double_eq(ins->params.u.limiter.release_ms, 80.0);
    ck_assert_double_eq(ins->params.u.limiter.lookahead_ms, 2.0);
    /* just below Nyquist, in block style */
    s_eq_is(&vox->fx[5], SF_EQ_NOTCH, 23999.5, s_default("eq", "gain_db"), 50.0);
    s_mark_is(&vox->fx[5], 43, 9);
    /* `- reverb:` and `- compressor: {}`: every default */
    ins = &vox->fx[6];
    ck_assert_int_eq(ins->params.kind, SF_FX_REVERB);
    ck_assert_double_eq(ins->params.u.reverb.decay_s, s_default("reverb", "decay_s"));
    ck_assert_double_eq(ins->params.u.reverb.predelay_ms, s_default("reverb", "predelay_ms"));
    ck_assert_double_eq(ins->params.u.reverb.damping, s_default("reverb", "damping"));
    ck_assert_double_eq(ins->params.u.reverb.mix, s_default("reverb", "mix"));
    s_mark_is(ins, 47, 9);
    static const char *const comp_keys[] = {"threshold_db", "ratio", "attack_ms", "release_ms", "knee_db", "makeup_db"};
    double d[6];
    for (size_t i = 0; i < 6; i++)
        d[i] = s_default("compressor", comp_keys[i]);
    s_compressor_is(&vox->fx[7], d[0], d[1], d[2], d[3], d[4], d[5]);
    s_mark_is(&vox->fx[7], 48, 9);

    /* a stereo IR on a stereo track, an IR at 44.1 kHz read from the cache */
    ck_assert_int_eq(oh->n_fx, 2);
    s_convolve_is(&oh->fx[0], hall, 0.3);
    s_mark_is(&oh->fx[0], 53, 9);
    s_eq_is(&oh->fx[1], SF_EQ_LOWSHELF, 500.0, -48.0, s_default("eq", "q"));
    ck_assert_int_eq(room->n_fx, 1);
    ins = &room->fx[0];
    ck_assert_int_eq(ins->params.kind, SF_FX_CONVOLVE);
    ck_assert_msg(!strncmp(ins->ir_path, cache, strlen(cache)) && ins->ir_path[strlen(cache)] == '/',
                  "'%s' is not in the cache", ins->ir_path);
    ck_assert(tu_exists(ins->ir_path));
    ck_assert_ptr_eq(ins->params.u.convolve.ir_path, ins->ir_path);
    sf_media_info_t info;
    ck_assert_int_eq(sf_media_probe(ins->ir_path, &info, NULL), SF_OK);
    ck_assert_int_eq(info.sample_rate, 48000);
    ck_assert_int_eq(info.frames, 4800); /* 0.1 s */
    sf_session_destroy(&s);

    /* Without resampling: the rate mismatch is an error. */
    sf_session_load_opts_t opts = sf_session_load_opts_default();
    opts.resample = false;
    sf_diags_t diags = SF_DIAGS_INIT;
    ck_assert_int_eq(sf_session_load_text("session.yaml", s_fx, strlen(s_fx), &opts, &s, &diags, NULL), SF_E_INPUT);
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    sf_diags_print(&diags, f);
    fclose(f);
    ck_assert_str_eq(out, "session.yaml:58:24: error: impulse response 'irs/room44.wav' is 44100 Hz, the session "
                          "is 48000 Hz (and resampling is off)\n");
    free(out);
    sf_diags_free(&diags);

    /* Sources not checked: the IR is resolved, not opened. */
    opts = sf_session_load_opts_default();
    opts.check_sources = false;
    ck_assert_int_eq(sf_session_load_text("session.yaml", s_fx, strlen(s_fx), &opts, &s, &diags, NULL), SF_OK);
    char *room44 = s_join(media, "irs/room44.wav");
    s_convolve_is(&s->tracks[3].fx[0], room44, 1.0);
    sf_session_destroy(&s);
    sf_diags_free(&diags);

    free(room44);
    free(media);
    free(plate);
    free(hall);
    free(cache);
}
END_TEST

/* A node whose media are shipped looks every source and impulse response
 * up by its written name; the session's own folders are taken as given. */
static sf_rc s_lookup_shipped(void *ctx, const char *name, char **path, sf_err_t *err)
{
    const char *refused = ctx;
    if (refused && !strcmp(name, refused))
        return SF_ERR(err, SF_E_INPUT, "not in the list");
    char buf[512];
    snprintf(buf, sizeof buf, "/cache/%s", name);
    *path = sf_strdup(buf);
    return *path ? SF_OK : SF_ERR(err, SF_E_NOMEM, "out of memory");
}

START_TEST(test_media_lookup)
{
    sf_session_load_opts_t opts = sf_session_load_opts_default();
    opts.check_sources = false;
    opts.media_lookup = s_lookup_shipped;
    opts.base_dir = "/on/the/coordinator";
    sf_session_t *s = NULL;
    sf_diags_t diags = SF_DIAGS_INIT;
    ck_assert_int_eq(sf_session_load_text("/elsewhere/session.yaml", s_fx, strlen(s_fx), &opts, &s, &diags, NULL),
                     SF_OK);
    ck_assert_str_eq(s->base_dir, "/on/the/coordinator");
    size_t n_clips = 0, n_irs = 0;
    for (size_t t = 0; t < s->n_tracks; t++) {
        for (size_t k = 0; k < s->tracks[t].n_clips; k++, n_clips++) {
            char want[512];
            snprintf(want, sizeof want, "/cache/%s", s->tracks[t].clips[k].source);
            ck_assert_str_eq(s->tracks[t].clips[k].path, want);
        }
        for (size_t i = 0; i < s->tracks[t].n_fx; i++)
            if (s->tracks[t].fx[i].ir_name) {
                char want[512];
                snprintf(want, sizeof want, "/cache/%s", s->tracks[t].fx[i].ir_name);
                ck_assert_str_eq(s->tracks[t].fx[i].ir_path, want);
                n_irs++;
            }
    }
    ck_assert_uint_gt(n_clips, 0);
    ck_assert_uint_gt(n_irs, 0);
    sf_session_destroy(&s);
    sf_diags_free(&diags);

    /* a name the hook does not know: reported where it is written */
    opts.media_lookup_ctx = (void *)"irs/room44.wav";
    ck_assert_int_eq(sf_session_load_text("/elsewhere/session.yaml", s_fx, strlen(s_fx), &opts, &s, &diags, NULL),
                     SF_E_INPUT);
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    sf_diags_print(&diags, f);
    fclose(f);
    ck_assert_str_eq(out, "/elsewhere/session.yaml:58:24: error: impulse response 'irs/room44.wav' is not "
                          "available on this machine: not in the list\n");
    free(out);
    sf_diags_free(&diags);
}
END_TEST

/* ---- end: auto and effect tails ------------------------------------------ */

/* A 1 s track into a bus with a 100 ms delay, feedback 0.5: the render
 * region runs on by the delay's tail. */
static const char s_echo[] = "version: 1\n"
                             "session: {sample_rate: 48000}\n"
                             "buses:\n"
                             "  - name: Echo\n"
                             "    fx: [{delay: {time_ms: 100, feedback: 0.5}}]\n"
                             "tracks:\n"
                             "  - {name: Kick, source: kick.wav, output: Echo}\n"
                             "stems: [{name: All, tracks: ['*']}]\n";

/* Paths of different lengths: Kick's own chain, then Bus A (its output) or
 * Bus B -> Bus C (a send), Bus A also sending to Bus C; Snare straight to
 * the master, whose chain counts only where it runs (MASTER is replaced by
 * bypass or apply). */
static const char s_paths[] = "version: 1\n"
                              "session: {sample_rate: 48000, tail_threshold_db: -120}\n"
                              "output: {master: MASTER}\n"
                              "master:\n"
                              "  fx: [{delay: {time_ms: 300, feedback: 0}}, {gain: {db: -6}}]\n"
                              "buses:\n"
                              "  - name: Bus C\n"
                              "    fx: [{delay: {time_ms: 50, feedback: 0.1}}]\n"
                              "  - name: Bus A\n"
                              "    fx: [{reverb: {decay_s: 0.5}}]\n"
                              "    sends: [{to: Bus C}]\n"
                              "  - name: Bus B\n"
                              "    fx: [{delay: {time_ms: 200, feedback: 0.3}}, {compressor: {release_ms: 300}}]\n"
                              "    output: Bus C\n"
                              "tracks:\n"
                              "  - name: Kick\n"
                              "    source: kick.wav\n"
                              "    output: Bus A\n"
                              "    sends: [{to: Bus B, level_db: -inf}]\n"
                              "    fx: [{delay: {time_ms: 10, feedback: 0}}, {highpass: {freq: 40}}]\n"
                              "  - name: Snare\n"
                              "    clips: [{source: kick.wav, at: 2s}]\n"
                              "stems: [{name: All, tracks: ['*']}]\n";

static int64_t s_tail(const sf_session_t *s, const sf_insert_t *fx, size_t n_fx)
{
    int64_t sum = 0;
    for (size_t i = 0; i < n_fx; i++) {
        int64_t t = sf_fx_tail_frames(&fx[i].params, s->sample_rate, s->tail_threshold_db);
        ck_assert_int_ge(t, 0);
        sum += t;
    }
    return sum;
}

static int64_t s_max64(int64_t a, int64_t b) { return a > b ? a : b; }

static sf_session_t *s_load_ok(const char *yaml)
{
    sf_session_t *s = NULL;
    char *printed = NULL;
    sf_rc rc = s_load(yaml, true, &s, &printed);
    ck_assert_msg(rc == SF_OK, "%s", printed);
    ck_assert_str_eq(printed, "");
    free(printed);
    return s;
}

START_TEST(test_fx_tails)
{
    sf_session_t *s = s_load_ok(s_echo);
    ck_assert(s->end_auto);
    int64_t tail = s_tail(s, s->buses[0].fx, 1);
    /* 0.5^n falls below -144 dB after 24 echoes of 4800 frames */
    ck_assert_int_ge(tail, 24 * 4800);
    ck_assert_int_le(tail, 26 * 4800);
    ck_assert_int_eq(s->end, 48000 + tail);
    sf_session_destroy(&s);

    /* The longest path wins; the master's chain counts where it runs. */
    static const struct {
        const char *mode;
        const char *mixes;
    } cases[] = {{"bypass", ""}, {"apply", ""}, {"bypass", "mixes: [{name: Mix, master: apply}]\n"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[2048];
        const char *at = strstr(s_paths, "MASTER");
        snprintf(yaml, sizeof yaml, "%.*s%s%s%s", (int)(at - s_paths), s_paths, cases[i].mode, at + 6, cases[i].mixes);
        s = s_load_ok(yaml);
        const sf_bus_t *c = &s->buses[0], *a = &s->buses[1], *b = &s->buses[2];
        int64_t master = i == 0 ? 0 : s_tail(s, s->master_fx, s->n_master_fx);
        int64_t tc = s_tail(s, c->fx, c->n_fx) + master;
        int64_t ta = s_tail(s, a->fx, a->n_fx) + s_max64(master, tc);
        int64_t tb = s_tail(s, b->fx, b->n_fx) + tc;
        int64_t kick = 48000 + s_tail(s, s->tracks[0].fx, s->tracks[0].n_fx) + s_max64(ta, tb);
        int64_t snare = 3 * 48000 + master;
        ck_assert_int_gt(tb, ta); /* the send path is the longer: the test tells max from first */
        ck_assert_int_gt(s_tail(s, s->tracks[0].fx, s->tracks[0].n_fx), 0);
        if (i > 0)
            ck_assert_int_gt(master, 0);
        ck_assert_int_eq(s->end, s_max64(kick, snare));
        sf_session_destroy(&s);
    }

    /* A convolve's tail is its impulse response's; a session without
     * effects ends where its last clip does. */
    s = s_load_ok("version: 1\nsession: {sample_rate: 48000, media_root: media}\n"
                  "tracks: [{name: OH, source: drums/oh.wav, fx: [{convolve: {ir: irs/hall.wav}}]}]\n"
                  "stems: [{name: All, tracks: ['*']}]\n");
    tail = s_tail(s, s->tracks[0].fx, 1);
    ck_assert_int_gt(tail, 9000);
    ck_assert_int_le(tail, 9600);
    ck_assert_int_eq(s->end, 96000 + tail);
    sf_session_destroy(&s);
    s = s_load_ok("version: 1\nsession: {sample_rate: 48000}\n"
                  "tracks: [{name: Kick, source: kick.wav, fx: []}]\n"
                  "stems: [{name: All, tracks: ['*']}]\n");
    ck_assert_int_eq(s->end, 48000);
    sf_session_destroy(&s);
}
END_TEST

/* Load from memory must give the same model and hash as load from disk. */
START_TEST(test_hash)
{
    sf_session_t *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    char *printed = NULL;
    ck_assert_int_eq(s_load(s_good, false, &a, &printed), SF_OK);
    free(printed);
    sf_diags_t diags = SF_DIAGS_INIT;
    ck_assert_int_eq(sf_session_load_text("session.yaml", s_good, strlen(s_good), NULL, &b, &diags, NULL), SF_OK);
    ck_assert_int_eq(diags.n_items, 0);
    ck_assert_mem_eq(a->hash, b->hash, SF_SESSION_HASH_BYTES);
    ck_assert_str_eq(a->base_dir, b->base_dir);
    ck_assert_str_eq(a->tracks[3].clips[0].path, b->tracks[3].clips[0].path);
    ck_assert_int_eq(a->end, b->end);

    /* The documented formula: SHA-256 of the bytes, a NUL and base_dir. */
    char hex[65], want[65];
    sf_session_hash_hex(a, hex);
    char cmd[PATH_MAX + 128];
    snprintf(cmd, sizeof cmd, "{ cat session.yaml; printf '\\0%%s' '%s'; } | sha256sum | cut -c1-64", s_real);
    char *out = NULL;
    ck_assert_int_eq(tu_run(cmd, &out, NULL, 30), 0);
    snprintf(want, sizeof want, "%s", out);
    free(out);
    ck_assert_str_eq(hex, want);

    /* One byte changed: another hash. */
    char *changed = strdup(s_good);
    char *at = strstr(changed, "gain_db: -2.5");
    at[strlen("gain_db: -2.")] = '4';
    ck_assert_int_eq(sf_session_load_text("session.yaml", changed, strlen(changed), NULL, &c, &diags, NULL), SF_OK);
    ck_assert_double_eq(c->tracks[0].gain_db, -2.4);
    ck_assert(memcmp(a->hash, c->hash, SF_SESSION_HASH_BYTES) != 0);

    /* The same bytes through a symlinked folder: the same base_dir and hash;
     * in another folder: another hash. */
    char *link = s_join(s_real, "link");
    ck_assert_int_eq(symlink(s_real, link), 0);
    ck_assert_int_eq(sf_session_load_text("link/session.yaml", s_good, strlen(s_good), NULL, &d, &diags, NULL), SF_OK);
    ck_assert_str_eq(d->base_dir, s_real);
    ck_assert_mem_eq(a->hash, d->hash, SF_SESSION_HASH_BYTES);
    sf_session_destroy(&d);
    free(tu_write_text(s_dir, "sub/media/drums/.keep", ""));
    ck_assert_int_eq(sf_session_load_text("sub/session.yaml", s_good, strlen(s_good), NULL, &d, &diags, NULL),
                     SF_E_INPUT); /* no media there */
    sf_diags_free(&diags);
    sf_session_load_opts_t opts = sf_session_load_opts_default();
    opts.check_sources = false;
    ck_assert_int_eq(sf_session_load_text("sub/session.yaml", s_good, strlen(s_good), &opts, &d, &diags, NULL), SF_OK);
    ck_assert(memcmp(a->hash, d->hash, SF_SESSION_HASH_BYTES) != 0);

    free(changed);
    free(link);
    sf_diags_free(&diags);
    sf_session_destroy(&a);
    sf_session_destroy(&b);
    sf_session_destroy(&c);
    sf_session_destroy(&d);
}
END_TEST

START_TEST(test_io_errors)
{
    sf_session_t *s = (sf_session_t *)1;
    sf_diags_t diags = SF_DIAGS_INIT;
    sf_err_t err = {0};
    ck_assert_int_eq(sf_session_load("nope.yaml", NULL, &s, &diags, &err), SF_E_IO);
    ck_assert_ptr_null(s);
    ck_assert_str_eq(err.msg, "cannot open 'nope.yaml': no such file or directory");
    ck_assert_int_eq(sf_session_load_text("no/such/dir/s.yaml", "version: 1\n", 11, NULL, &s, &diags, &err), SF_E_IO);
    ck_assert_str_eq(err.msg, "cannot resolve the folder of 'no/such/dir/s.yaml': no such file or directory");
    ck_assert_int_eq(diags.n_items, 0);
}
END_TEST

START_TEST(test_no_source_check)
{
    /* check_sources off: missing media is no error, lengths must be given. */
    static const char yaml[] = "version: 1\n"
                               "session: {sample_rate: 44100, end: 10s}\n"
                               "tracks:\n"
                               "  - name: A\n"
                               "    clips: [{source: /abs/a.wav, at: 1s, length: 2s}]\n"
                               "stems: [{name: All, tracks: ['*']}]\n";
    sf_session_load_opts_t opts = sf_session_load_opts_default();
    opts.check_sources = false;
    sf_session_t *s = NULL;
    sf_diags_t diags = SF_DIAGS_INIT;
    ck_assert_int_eq(sf_session_load_text("x.yaml", yaml, strlen(yaml), &opts, &s, &diags, NULL), SF_OK);
    ck_assert_str_eq(s->tracks[0].clips[0].path, "/abs/a.wav");
    ck_assert_int_eq(s->tracks[0].clips[0].at, 44100);
    ck_assert_int_eq(s->tracks[0].clips[0].length, 88200);
    ck_assert_int_eq(s->end, 441000);
    ck_assert(!s->end_auto);
    ck_assert_str_eq(s->name, "x"); /* default: the file name */
    ck_assert_int_eq(s->output.format, SF_FILE_WAV);
    ck_assert_int_eq(s->output.sample_format, SF_SAMPLE_PCM24);
    ck_assert_str_eq(s->output.name_template, "{session}_{stem}");
    ck_assert(!s->output.headroom_check);
    sf_session_destroy(&s);
    sf_diags_free(&diags);
}
END_TEST

/* ---- inputs found by fuzzing (fuzz/fuzz_session.c) ------------------------ */

/* Each row is an input that once crashed the loader or met undefined
 * behaviour, loaded as the fuzzer loads it (no source checks), with what a
 * user must see instead. */
typedef struct {
    const char *what; /* and the cause */
    const char *yaml;
    sf_rc rc;
    const char *want; /* printed diagnostics */
} fuzzed_t;

static const fuzzed_t fuzzed[] = {
    /* at + length overflowed int64 in `end: auto` (s_auto_end): the check that
     * the clip ends on the timeline ran only when sources were checked. */
    {"clip end past int64",
     "version: 1\n"
     "session: {sample_rate: 48000}\n"
     "tracks:\n"
     "  - name: Kick\n"
     "    clips: [{source: kick.wav, at: 9223372036854775807, length: 9223372036854775807}]\n"
     "stems: [{name: Drums, tracks: [Kick]}]\n",
     SF_E_INPUT, "fuzz.yaml:5:36: error: 'at' in clip 1 of track 'Kick' (9223372036854775807) is too large\n"},
};

START_TEST(test_fuzzed_inputs)
{
    const fuzzed_t *f = &fuzzed[_i];
    sf_session_load_opts_t opts = sf_session_load_opts_default();
    opts.check_sources = false;
    sf_session_t *s = (sf_session_t *)1;
    sf_diags_t diags = SF_DIAGS_INIT;
    sf_rc rc = sf_session_load_text("fuzz.yaml", f->yaml, strlen(f->yaml), &opts, &s, &diags, NULL);
    char *printed = NULL;
    size_t n = 0;
    FILE *out = open_memstream(&printed, &n);
    ck_assert_ptr_nonnull(out);
    sf_diags_print(&diags, out);
    fclose(out);
    ck_assert_msg(rc == f->rc, "%s: rc %d, expected %d", f->what, rc, f->rc);
    ck_assert_msg(!strcmp(printed, f->want), "%s: printed\n%s\nexpected\n%s", f->what, printed, f->want);
    ck_assert(rc == SF_OK ? s != NULL : s == NULL);
    free(printed);
    sf_diags_free(&diags);
    sf_session_destroy(&s);
}
END_TEST

/* ---- file names -------------------------------------------------------- */

START_TEST(test_stem_filename)
{
    static const char yaml[] = "version: 1\n"
                               "session: {name: 'a/b:c', sample_rate: 96000}\n"
                               "output: {name: '{session} {stem} {index} {rate} {bits}',"
                               " format: FORMAT, sample_format: float32}\n"
                               "tracks: [{name: T, source: t.wav}]\n"
                               "stems:\n"
                               "  - {name: \"x*?\\\"<>|\\\\\\t\", tracks: [T]}\n";
    static const struct {
        const char *format;
        const char *want;
    } cases[] = {
        {"wav", "a_b_c x________ 01 96000 32.wav"},
        {"rf64", "a_b_c x________ 01 96000 32.wav"},
        {"w64", "a_b_c x________ 01 96000 32.w64"},
        {"aiff", "a_b_c x________ 01 96000 32.aiff"},
    };
    sf_session_load_opts_t opts = sf_session_load_opts_default();
    opts.check_sources = false;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512];
        const char *at = strstr(yaml, "FORMAT");
        snprintf(text, sizeof text, "%.*s%s%s", (int)(at - yaml), yaml, cases[i].format, at + 6);
        sf_session_t *s = NULL;
        sf_diags_t diags = SF_DIAGS_INIT;
        sf_rc rc = sf_session_load_text("s.yaml", text, strlen(text), &opts, &s, &diags, NULL);
        if (rc)
            sf_diags_print(&diags, stderr);
        ck_assert_int_eq(rc, SF_OK);
        char name[64];
        ck_assert_int_eq(sf_session_stem_filename(s, 0, name, sizeof name, NULL), SF_OK);
        ck_assert_str_eq(name, cases[i].want);
        /* exactly fits, one byte short */
        size_t n = strlen(cases[i].want) + 1;
        ck_assert_int_eq(sf_session_stem_filename(s, 0, name, n, NULL), SF_OK);
        sf_err_t err = {0};
        ck_assert_int_eq(sf_session_stem_filename(s, 0, name, n - 1, &err), SF_E_INPUT);
        ck_assert_str_eq(name, "");
        sf_session_destroy(&s);
        sf_diags_free(&diags);
    }
    ck_assert_str_eq(sf_format_name(SF_FILE_FLAC), "flac");
    ck_assert_str_eq(sf_sample_format_name(SF_SAMPLE_PCM24), "pcm24");
    ck_assert_int_eq(sf_sample_format_bits(SF_SAMPLE_PCM16), 16);
    ck_assert_int_eq(sf_sample_format_bits(SF_SAMPLE_FLOAT32), 32);
}
END_TEST

/* ---- bad sessions: exact messages ------------------------------------- */

#define HEAD  "version: 1\nsession:\n  sample_rate: 48000\n"
/* A session whose line 4 onwards is the tracks list; stem on lines 7..9. */
#define KICK  "tracks:\n  - name: Kick\n    source: kick.wav\n"
#define DRUMS "stems:\n  - name: Drums\n    tracks: [Kick]\n"
/* Three lines of buses, for rows whose tracks route to them. */
#define BUSES "buses:\n  - name: Drum Bus\n  - name: Vox Verb\n"

typedef struct {
    const char *what;
    const char *yaml;
    bool strict;
    sf_rc rc;
    const char *want; /* printed diagnostics; "@DIR@" is the session folder */
} bad_t;

static const bad_t bad[] = {
    {"unknown key",
     HEAD "tracks:\n  - name: Kick In\n    source: kick.wav\n    gian: -3\n"
          "stems:\n  - name: Drums\n    tracks: [\"Kick *\"]\n",
     false, SF_E_INPUT, "session.yaml:7:5: error: unknown key 'gian' in track 'Kick In'\n"},
    {"unknown key at the top and in a section", HEAD "  smaple_rate: 4\n" KICK DRUMS "stem:\n", false, SF_E_INPUT,
     "session.yaml:4:3: error: unknown key 'smaple_rate' in 'session'\n"
     "session.yaml:11:1: error: unknown key 'stem'\n"},
    {"wrong type: list for a mapping", "version: 1\nsession:\n  - sample_rate: 48000\n" KICK DRUMS, false, SF_E_INPUT,
     "session.yaml:3:3: error: 'session' must be a mapping, not a list\n"},
    {"wrong type: list for a value", HEAD KICK "    gain_db: [1, 2]\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:7:14: error: 'gain_db' in track 'Kick' must be a value, not a list\n"},
    {"wrong type: mapping for a list, value for a mapping", HEAD "tracks:\n  name: Kick\n" DRUMS "output: wav\n", false,
     SF_E_INPUT,
     "session.yaml:5:3: error: 'tracks' must be a list, not a mapping\n"
     "session.yaml:9:9: error: 'output' must be a mapping, not a value\n"},
    {"no value", HEAD "  start:\n" KICK DRUMS, false, SF_E_INPUT,
     "session.yaml:4:9: error: 'session.start' has no value\n"},
    {"duplicate key", HEAD KICK "    gain_db: -3\n    gain_db: -4\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:8:5: error: duplicate key 'gain_db' in track 'Kick' (first at line 7)\n"},
    {"duplicate track name", HEAD KICK "  - name: Kick\n    source: kick.wav\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:7:11: error: duplicate track name 'Kick' (first at line 5)\n"},
    {"duplicate stem name",
     HEAD KICK "  - name: Snare\n    source: kick.wav\n" DRUMS "  - name: Drums\n    tracks: [Snare]\n", false,
     SF_E_INPUT, "session.yaml:12:11: error: duplicate stem name 'Drums' (first at line 10)\n"},
    {"exact name matching no track", HEAD KICK "stems:\n  - name: Drums\n    tracks: [Kik]\n", false, SF_E_INPUT,
     "session.yaml:5:5: warning: track 'Kick' is in no stem\n"
     "session.yaml:9:14: error: unknown track 'Kik' in stem 'Drums'\n"},
    {"glob matching no track", HEAD KICK "stems:\n  - name: Drums\n    tracks: [Kick, \"Snare *\"]\n", false, SF_OK,
     "session.yaml:9:20: warning: pattern 'Snare *' in stem 'Drums' matches no track\n"},
    {"stem matching no track", HEAD KICK DRUMS "  - name: Vocals\n    tracks: [\"Vox*\", \"BV ?\"]\n", false, SF_OK,
     "session.yaml:10:5: warning: stem 'Vocals' matches no track\n"},
    {"stem matching no track, strict", HEAD KICK DRUMS "  - name: Vocals\n    tracks: [\"Vox*\"]\n", true, SF_E_INPUT,
     "session.yaml:10:5: error: stem 'Vocals' matches no track\n"},
    {"stem without patterns", HEAD KICK DRUMS "  - name: Vocals\n    tracks: []\n", false, SF_E_INPUT,
     "session.yaml:11:13: error: 'tracks' in stem 'Vocals' must not be empty\n"},
    {"track in two stems", HEAD KICK DRUMS "  - name: All\n    tracks: ['*']\n", false, SF_OK,
     "session.yaml:5:5: warning: track 'Kick' is in 2 stems: 'Drums' and 'All'\n"},
    {"track in two stems, strict", HEAD KICK DRUMS "  - name: All\n    tracks: ['*']\n", true, SF_E_INPUT,
     "session.yaml:5:5: error: track 'Kick' is in 2 stems: 'Drums' and 'All'\n"},
    {"track in no stem", HEAD KICK "  - name: Snare\n    source: kick.wav\n" DRUMS, false, SF_OK,
     "session.yaml:7:5: warning: track 'Snare' is in no stem\n"},
    {"missing source", HEAD "tracks:\n  - name: Kick\n    source: drums/nope.wav\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:6:13: error: source 'drums/nope.wav' not found at '@DIR@/drums/nope.wav'\n"},
    {"garbage source", HEAD "tracks:\n  - name: Kick\n    source: garbage.wav\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:6:13: error: cannot read source 'garbage.wav' "
     "(not an audio file libsndfile can read)\n"},
    {"zero-length source", HEAD "tracks:\n  - name: Kick\n    source: empty.wav\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:6:13: error: source 'empty.wav' is empty (0 bytes)\n"},
    {"source without frames", HEAD "tracks:\n  - name: Kick\n    source: noframes.wav\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:6:13: error: source 'noframes.wav' has no audio frames\n"},
    {"source is a folder", HEAD "tracks:\n  - name: Kick\n    source: media\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:6:13: error: source 'media' is not a file\n"},
    {"more than two channels without a pick",
     HEAD "tracks:\n  - name: Kick\n    source: six.wav\n    route: [L]\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:6:13: error: source 'six.wav' has 6 channels; pick one with 'channel: N' "
     "(tracks are mono or stereo)\n"},
    {"clips with different channel counts",
     HEAD "tracks:\n  - name: Kick\n    clips:\n      - source: kick.wav\n"
          "      - source: oh.wav\n        at: 2s\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:8:9: error: clip 2 of track 'Kick' has 2 channels, clip 1 has 1 "
     "(all clips of a track need the same channel count)\n"},
    {"clip past the source end",
     HEAD "tracks:\n  - name: Kick\n    clips:\n      - source: kick.wav\n"
          "        offset: 0.5s\n        length: 750ms\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:9:17: error: clip runs past the end of source 'kick.wav' "
     "(offset + length is 60000 frames, the source has 48000)\n"},
    {"offset past the source end",
     HEAD "tracks:\n  - name: Kick\n    clips:\n      - source: kick.wav\n"
          "        offset: 48000\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:8:17: error: offset '48000' is past the end of source 'kick.wav' "
     "(48000 frames)\n"},
    {"zero length",
     HEAD "tracks:\n  - name: Kick\n    clips:\n      - source: kick.wav\n"
          "        length: 0s\n" DRUMS,
     false, SF_E_INPUT, "session.yaml:8:17: error: 'length' in clip 1 of track 'Kick' must be greater than 0\n"},
    {"bad time",
     HEAD "tracks:\n  - name: Kick\n    clips:\n      - source: kick.wav\n"
          "        at: 1:75\n" DRUMS,
     false, SF_E_INPUT, "session.yaml:8:13: error: invalid time '1:75' (seconds must be below 60)\n"},
    {"negative time",
     HEAD "tracks:\n  - name: Kick\n    clips:\n      - source: kick.wav\n"
          "        at: -1s\n" DRUMS,
     false, SF_E_INPUT, "session.yaml:8:13: error: invalid time '-1s' (must not be negative)\n"},
    {"bad level", HEAD KICK "    gain_db: loud\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:7:14: error: invalid level 'loud' (expected a number of dB or -inf)\n"},
    {"nan level", HEAD KICK "    gain_db: .nan\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:7:14: error: invalid level '.nan' (expected a number of dB or -inf)\n"},
    {"pan out of range", HEAD KICK "    pan: 1.5\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:7:10: error: invalid pan '1.5' (must be between -1 and +1)\n"},
    {"bad enumerations and booleans", HEAD KICK "    polarity: reverse\n    mute: yes\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:7:15: error: invalid polarity 'reverse' (expected normal or invert)\n"
     "session.yaml:8:11: error: invalid boolean 'yes' (expected true or false)\n"},
    {"version 2", "version: 2\nsession:\n  sample_rate: 48000\n" KICK DRUMS, false, SF_E_INPUT,
     "session.yaml:1:10: error: unsupported version '2' (this stemfarm reads version 1)\n"},
    {"no version", "session:\n  sample_rate: 48000\n" KICK DRUMS, false, SF_E_INPUT,
     "session.yaml:1:1: error: missing key 'version'\n"},
    {"bad sample rate", "version: 1\nsession:\n  sample_rate: 1000\n" KICK DRUMS, false, SF_E_INPUT,
     "session.yaml:3:16: error: invalid sample rate '1000' "
     "(expected a whole number of Hz from 8000 to 384000)\n"},
    {"no sample rate", "version: 1\nsession:\n  name: x\n" KICK DRUMS, false, SF_E_INPUT,
     "session.yaml:3:3: error: missing key 'sample_rate' in 'session'\n"},
    /* ---- insert effects ---- */
    {"fx: unknown effect, on a bus, a track and the master",
     HEAD "master:\n  fx: [{maximizer: {}}]\nbuses:\n  - name: Verb\n    fx: [{Reverb: {decay_s: 2}}]\n" KICK
          "    fx:\n      - revrb: {decay_s: 2}\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:5:9: error: unknown effect 'maximizer' in the master (effects: gain, eq, highpass, lowpass, "
     "compressor, limiter, delay, reverb, convolve)\n"
     "session.yaml:8:11: error: unknown effect 'Reverb' in bus 'Verb' (effects: gain, eq, highpass, lowpass, "
     "compressor, limiter, delay, reverb, convolve)\n"
     "session.yaml:13:9: error: unknown effect 'revrb' in track 'Kick' (effects: gain, eq, highpass, lowpass, "
     "compressor, limiter, delay, reverb, convolve)\n"},
    {"fx: unknown and duplicate keys in an effect",
     HEAD KICK "    fx:\n      - eq: {frq: 3000, freq: 3000, q: 1, q: 2}\n      - highpass: {freq: 80, type: peak}\n"
               "      - gain: {gain_db: 3, db: 0}\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:8:14: error: unknown key 'frq' in eq of track 'Kick' (eq takes type, freq, gain_db, q)\n"
     "session.yaml:8:43: error: duplicate key 'q' in eq of track 'Kick' (first at line 8)\n"
     "session.yaml:9:30: error: unknown key 'type' in highpass of track 'Kick' (highpass takes freq, q)\n"
     "session.yaml:10:16: error: unknown key 'gain_db' in gain of track 'Kick' (gain takes db)\n"},
    {"fx: out of range, in several effects",
     HEAD "master:\n  fx: [{limiter: {ceiling_db: 3, lookahead_ms: 50}}]\n"
          "buses:\n  - name: Verb\n    fx: [{reverb: {decay_s: 40, mix: 1.5, damping: 0}}]\n" KICK
          "    output: Verb\n    fx:\n      - compressor: {ratio: 0.5, attack_ms: 0, knee_db: 48}\n"
          "      - gain: {db: -inf}\n      - highpass: {freq: 5, q: 50.5}\n      - eq: {freq: 96001, gain_db: -48.5}\n"
          "      - convolve: {ir: kick.wav, mix: -0.1}\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:5:31: error: limiter 'ceiling_db' 3 is out of range -60..0 in the master\n"
     "session.yaml:8:29: error: reverb 'decay_s' 40 is out of range 0.1..30 in bus 'Verb'\n"
     "session.yaml:8:38: error: reverb 'mix' 1.5 is out of range 0..1 in bus 'Verb'\n"
     "session.yaml:14:29: error: compressor 'ratio' 0.5 is out of range 1..100 in track 'Kick'\n"
     "session.yaml:14:45: error: compressor 'attack_ms' 0 is out of range 0.01..1000 in track 'Kick'\n"
     "session.yaml:15:20: error: gain 'db' -inf is out of range -120..24 in track 'Kick'\n"
     "session.yaml:16:26: error: highpass 'freq' 5 is out of range 10..96000 in track 'Kick'\n"
     "session.yaml:16:32: error: highpass 'q' 50.5 is out of range 0.05..50 in track 'Kick'\n"
     "session.yaml:17:20: error: eq 'freq' 96001 is out of range 10..96000 in track 'Kick'\n"
     "session.yaml:17:36: error: eq 'gain_db' -48.5 is out of range -48..48 in track 'Kick'\n"
     "session.yaml:18:39: error: convolve 'mix' -0.1 is out of range 0..1 in track 'Kick'\n"},
    {"fx: delay feedback of 1 and below 0",
     HEAD KICK "    fx:\n      - delay: {time_ms: 100, feedback: 1}\n      - delay: {time_ms: 0.1, feedback: -0.5}\n"
               "      - delay: {time_ms: 0.05, feedback: 0.999}\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:8:41: error: delay 'feedback' 1 is out of range in track 'Kick': must be below 1 "
     "(the tail would never end)\n"
     "session.yaml:9:41: error: delay 'feedback' -0.5 is out of range in track 'Kick': must be at least 0 "
     "and below 1\n"
     "session.yaml:10:26: error: delay 'time_ms' 0.05 is out of range 0.1..10000 in track 'Kick'\n"},
    {"fx: eq frequencies at and above Nyquist",
     "version: 1\nsession:\n  sample_rate: 44100\n" KICK
     "    fx:\n      - eq: {freq: 22050}\n      - lowpass: {freq: 30000}\n      - highpass: {freq: 22049.9}\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:8:20: error: eq 'freq' 22050 in track 'Kick' must be below half the sample rate "
     "(22050 Hz)\n"
     "session.yaml:9:25: error: lowpass 'freq' 30000 in track 'Kick' must be below half the sample rate "
     "(22050 Hz)\n"},
    {"fx: required keys missing",
     HEAD KICK "    fx:\n      - highpass: {q: 1}\n      - delay:\n      - gain: {}\n      - convolve: {mix: 0.5}\n"
               "      - convolve:\n      - lowpass:\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:8:19: error: missing key 'freq' in highpass of track 'Kick'\n"
     "session.yaml:9:9: error: missing key 'time_ms' in delay of track 'Kick'\n"
     "session.yaml:10:15: error: missing key 'db' in gain of track 'Kick'\n"
     "session.yaml:11:19: error: missing key 'ir' in convolve of track 'Kick'\n"
     "session.yaml:12:9: error: missing key 'ir' in convolve of track 'Kick'\n"
     "session.yaml:13:9: error: missing key 'freq' in lowpass of track 'Kick'\n"},
    {"fx: impulse responses missing, empty, unreadable",
     HEAD KICK "    fx:\n      - convolve: {ir: irs/nope.wav}\n      - convolve: {ir: ''}\n"
               "      - convolve: {ir: garbage.wav}\n      - convolve: {ir: empty.wav}\n"
               "      - convolve: {ir: media}\n      - convolve: {ir: noframes.wav}\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:8:24: error: impulse response 'irs/nope.wav' not found at '@DIR@/irs/nope.wav'\n"
     "session.yaml:9:24: error: 'ir' in convolve of track 'Kick' must not be empty\n"
     "session.yaml:10:24: error: cannot read impulse response 'garbage.wav' "
     "(not an audio file libsndfile can read)\n"
     "session.yaml:11:24: error: impulse response 'empty.wav' is empty (0 bytes)\n"
     "session.yaml:12:24: error: impulse response 'media' is not a file\n"
     "session.yaml:13:24: error: impulse response 'noframes.wav' has no audio frames\n"},
    {"fx: impulse responses with the wrong channels",
     HEAD "master:\n  channels: 5.1\n  fx: [{convolve: {ir: oh.wav}}]\n"
          "buses:\n  - name: Mono\n    channels: mono\n    fx: [{convolve: {ir: media/irs/hall.wav}}]\n"
          "  - name: Wide\n    fx: [{convolve: {ir: oh.wav}}, {convolve: {ir: kick.wav}}]\n" KICK
          "    fx:\n      - convolve: {ir: six.wav}\n      - convolve: {ir: oh.wav}\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:6:24: error: impulse response 'oh.wav' is stereo and the master is 5.1 "
     "(expected a mono impulse response)\n"
     "session.yaml:10:26: error: impulse response 'media/irs/hall.wav' is stereo and bus 'Mono' is mono "
     "(expected a mono impulse response)\n"
     "session.yaml:17:24: error: impulse response 'six.wav' has 6 channels (expected mono or stereo)\n"
     "session.yaml:18:24: error: impulse response 'oh.wav' is stereo and track 'Kick' is mono "
     "(expected a mono impulse response)\n"},
    {"fx: not a list",
     HEAD "master:\n  fx: limiter\nbuses:\n  - name: Verb\n    fx: {reverb: {}}\n" KICK "    fx: ~\n" DRUMS, false,
     SF_E_INPUT,
     "session.yaml:5:7: error: 'master.fx' must be a list, not a value\n"
     "session.yaml:8:9: error: 'fx' in bus 'Verb' must be a list, not a mapping\n"
     "session.yaml:12:9: error: 'fx' in track 'Kick' must be a list, not a value\n"},
    {"fx: items that are not one effect",
     HEAD KICK "    fx:\n      - gain\n      - [gain, {db: 3}]\n      - {}\n      - eq:\n        freq: 3000\n"
               "      - [a]: 1\n      - gain: -3\n      - reverb: [2]\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:8:9: error: insert 1 of track 'Kick' must be a mapping like '- gain: {db: -3}', "
     "not a value\n"
     "session.yaml:9:9: error: insert 2 of track 'Kick' must be a mapping like '- gain: {db: -3}', "
     "not a list\n"
     "session.yaml:10:9: error: insert 3 of track 'Kick' is empty (expected one effect, "
     "like '- gain: {db: -3}')\n"
     "session.yaml:11:9: error: insert 4 of track 'Kick' has 2 keys (expected one, the effect, "
     "with its parameters under it: '- eq: {freq: 3000}')\n"
     "session.yaml:13:9: error: keys must be names, not a list\n"
     "session.yaml:14:15: error: parameters of gain in track 'Kick' must be a mapping, not a value\n"
     "session.yaml:15:17: error: parameters of reverb in track 'Kick' must be a mapping, not a list\n"},
    {"fx: values that are not numbers",
     HEAD KICK "    fx:\n      - gain: {db: loud}\n      - eq: {freq: [1], type: shelf, q: .nan}\n"
               "      - reverb: {mix: }\n      - delay: {time_ms: 1s}\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:8:20: error: invalid number 'loud' for gain 'db' in track 'Kick'\n"
     "session.yaml:9:20: error: 'freq' in eq of track 'Kick' must be a value, not a list\n"
     "session.yaml:9:31: error: invalid eq type 'shelf' (expected peak, lowshelf, highshelf, lowpass, "
     "highpass, bandpass or notch)\n"
     "session.yaml:9:41: error: invalid number '.nan' for eq 'q' in track 'Kick'\n"
     "session.yaml:10:23: error: 'mix' in reverb of track 'Kick' has no value\n"
     "session.yaml:11:26: error: invalid number '1s' for delay 'time_ms' in track 'Kick'\n"},
    {"fx: eq gain on a type that ignores it",
     HEAD "  end: 1s\n" KICK "    fx:\n      - eq: {type: highpass, freq: 100, gain_db: 3}\n"
          "      - eq: {type: lowshelf, freq: 100, gain_db: 3}\n" DRUMS,
     false, SF_OK,
     "session.yaml:9:41: warning: 'gain_db' in eq of track 'Kick' does nothing for type 'highpass' "
     "(only peak and shelves use it)\n"},
    {"fx: eq gain on a type that ignores it, strict",
     HEAD "  end: 1s\n" KICK "    fx:\n      - eq: {type: notch, freq: 100, gain_db: 0}\n" DRUMS, true, SF_E_INPUT,
     "session.yaml:9:38: error: 'gain_db' in eq of track 'Kick' does nothing for type 'notch' "
     "(only peak and shelves use it)\n"},
    /* ---- the mixing graph ---- */
    {"unknown bus in an output",
     HEAD BUSES "tracks:\n  - name: Kick In\n    source: kick.wav\n    output: Drum Buss\n"
                "stems:\n  - name: Drums\n    tracks: [Kick In]\n",
     false, SF_E_INPUT,
     "session.yaml:10:13: error: unknown bus 'Drum Buss' in track 'Kick In' "
     "(buses: 'Drum Bus', 'Vox Verb')\n"},
    {"unknown bus in sends, of a bus and of a track",
     HEAD "buses:\n  - name: Drum Bus\n    sends: [{to: Verb}]\n  - name: Vox Verb\n" KICK
          "    sends:\n      - to: Vox Verb\n      - {to: vox verb, level_db: -3}\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:6:18: error: unknown bus 'Verb' in bus 'Drum Bus' "
     "(buses: 'Drum Bus', 'Vox Verb')\n"
     "session.yaml:13:14: error: unknown bus 'vox verb' in track 'Kick' "
     "(buses: 'Drum Bus', 'Vox Verb')\n"},
    {"unknown bus, no buses at all", HEAD KICK "    output: Drum Bus\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:7:13: error: unknown bus 'Drum Bus' in track 'Kick' "
     "(the session has no buses)\n"},
    {"a send to the master", HEAD BUSES KICK "    sends: [{to: master}]\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:10:18: error: a send cannot go to 'master' in track 'Kick' "
     "(sends feed buses; the master is fed through 'output')\n"},
    {"bus names: master, twice, none",
     HEAD "buses:\n  - name: master\n  - name: Verb\n  - name: Verb\n  - channels: mono\n" KICK DRUMS, false,
     SF_E_INPUT,
     "session.yaml:5:11: error: bus name 'master' is taken (it names the master bus)\n"
     "session.yaml:7:11: error: duplicate bus name 'Verb' (first at line 6)\n"
     "session.yaml:8:5: error: missing key 'name' in bus 4\n"},
    {"a bus that sends or outputs to itself",
     HEAD "buses:\n  - name: Vox Verb\n    sends: [{to: Vox Verb}]\n"
          "  - name: Loop\n    output: Loop\n" KICK DRUMS,
     false, SF_E_INPUT,
     "session.yaml:6:18: error: bus 'Vox Verb' sends to itself\n"
     "session.yaml:8:13: error: bus 'Loop' outputs to itself\n"},
    {"routing cycle of two buses",
     HEAD "buses:\n  - name: A\n    output: B\n  - name: B\n    sends: [{to: A, level_db: -6}]\n" KICK
          "    output: A\n" DRUMS,
     false, SF_E_INPUT, "session.yaml:8:18: error: routing cycle: 'A' -> 'B' -> 'A'\n"},
    {"routing cycle of three buses, with a branch",
     HEAD "buses:\n  - name: A\n    output: B\n  - name: B\n    sends: [{to: D}]\n    output: C\n"
          "  - name: C\n    output: A\n  - name: D\n    output: A\n" KICK DRUMS,
     false, SF_E_INPUT,
     "session.yaml:11:13: error: routing cycle: 'A' -> 'B' -> 'C' -> 'A'\n"
     "session.yaml:13:13: error: routing cycle: 'A' -> 'B' -> 'D' -> 'A'\n"},
    {"route: unknown channel of a bus",
     HEAD "buses:\n  - name: Surround\n    channels: 5.1\n" KICK "    output: Surround\n    route: [Cf]\n" DRUMS, false,
     SF_E_INPUT,
     "session.yaml:11:13: error: unknown channel 'Cf' in 'route' of track 'Kick' "
     "(the 5.1 bus 'Surround' has L, R, C, LFE, Ls, Rs)\n"},
    {"route: unknown channel of the master, a channel twice", HEAD KICK "    route: [C, L, L]\n" DRUMS, false,
     SF_E_INPUT,
     "session.yaml:7:13: error: unknown channel 'C' in 'route' of track 'Kick' "
     "(the stereo master has L, R)\n"
     "session.yaml:7:19: error: channel 'L' appears twice in 'route' of track 'Kick'\n"},
    {"route on a stereo track",
     HEAD "tracks:\n  - name: OH\n    source: oh.wav\n    route: [L]\n"
          "stems:\n  - name: Drums\n    tracks: [OH]\n",
     false, SF_E_INPUT,
     "session.yaml:7:12: error: 'route' in track 'OH' needs a mono track "
     "(its clips deliver 2 channels; pick one with 'channel: N')\n"},
    {"route overrides pan", HEAD KICK "    pan: 0.5\n    route: [L]\n    automation: {pan: [[0, 1]]}\n" DRUMS, false,
     SF_OK,
     "session.yaml:7:5: warning: 'pan' of track 'Kick' is overridden by its route\n"
     "session.yaml:9:23: warning: 'pan' automation of track 'Kick' is overridden by its route\n"},
    {"channel 0, past the last channel, not a number",
     HEAD "tracks:\n  - name: Kick\n    source: kick.wav\n    channel: 0\n"
          "  - name: OH\n    clips:\n"
          "      - source: oh.wav\n        channel: 3\n      - {source: oh.wav, channel: two}\n"
          "stems:\n  - name: All\n    tracks: ['*']\n",
     false, SF_E_INPUT,
     "session.yaml:7:14: error: invalid channel '0' (expected a channel number, counting from 1)\n"
     "session.yaml:11:18: error: channel 3 of source 'oh.wav' does not exist (it has 2 channels)\n"
     "session.yaml:12:35: error: invalid channel 'two' "
     "(expected a channel number, counting from 1)\n"},
    {"channel with clips", HEAD "tracks:\n  - name: Kick\n    channel: 1\n    clips: [{source: kick.wav}]\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:6:5: error: 'channel' in track 'Kick' goes with 'source' "
     "(with 'clips', give it per clip)\n"},
    {"clips delivering different channel counts",
     HEAD "tracks:\n  - name: Kick\n    clips:\n      - {source: oh.wav, channel: 2}\n"
          "      - {source: oh.wav, at: 1s}\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:8:9: error: clip 2 of track 'Kick' has 2 channels, clip 1 has 1 "
     "(all clips of a track need the same channel count)\n"},
    {"fades and crossfade longer than the clip",
     HEAD "tracks:\n  - name: Kick\n    clips:\n      - source: kick.wav\n        fade_in: 0.75s\n"
          "        fade_out: {length: 500ms, shape: equal_power}\n      - source: kick.wav\n"
          "        length: 100ms\n        fade_out: 101ms\n        crossfade: 4801\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:9:19: error: 'fade_in' and 'fade_out' in clip 1 of track 'Kick' do not fit "
     "in the clip (36000 + 24000 frames, the clip has 48000)\n"
     "session.yaml:12:19: error: 'fade_out' in clip 2 of track 'Kick' is longer than the clip "
     "(4848 frames, the clip has 4800)\n"
     "session.yaml:13:20: error: 'crossfade' in clip 2 of track 'Kick' is longer than the clip "
     "(4801 frames, the clip has 4800)\n"},
    {"bad fades",
     HEAD "tracks:\n  - name: Kick\n    clips:\n      - source: kick.wav\n"
          "        fade_in: {shape: log}\n        fade_out: [10ms]\n"
          "        crossfade: -1ms\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:8:18: error: missing key 'length' in 'fade_in' of clip 1 of track 'Kick'\n"
     "session.yaml:8:26: error: invalid fade shape 'log' (expected linear or equal_power)\n"
     "session.yaml:9:19: error: 'fade_out' in clip 1 of track 'Kick' must be a time or a mapping, "
     "not a list\n"
     "session.yaml:10:20: error: invalid time '-1ms' (must not be negative)\n"},
    {"automation: times going back, bad points, pan out of range",
     HEAD KICK "    automation:\n      gain_db: [[0, 0], [2s, -3], [1s, -6], [1s]]\n"
               "      pan: [[0, 0], [1s, 1.5]]\n      volume: []\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:8:36: error: automation 'gain_db' of track 'Kick': point 3 (1s) is before "
     "point 2 (2s)\n"
     "session.yaml:8:45: error: automation 'gain_db' of track 'Kick': point 4 must be "
     "[time, value]\n"
     "session.yaml:9:26: error: invalid pan '1.5' (must be between -1 and +1)\n"
     "session.yaml:10:7: error: unknown key 'volume' in automation of track 'Kick'\n"},
    {"automation without points", HEAD BUSES KICK "    sends: [{to: Vox Verb, automation: {level_db: []}}]\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:10:51: error: 'level_db' in automation of send 1 of track 'Kick' "
     "must not be empty\n"},
    {"values overridden by their automation",
     HEAD "buses:\n  - name: Verb\n" KICK "    gain_db: -3\n    pan: 0.5\n    sends:\n"
          "      - to: Verb\n        level_db: -10\n        automation: {level_db: [[0, -20]]}\n"
          "    automation:\n      gain_db: [[0, -6]]\n      pan: [[0, 0]]\n" DRUMS,
     false, SF_OK,
     "session.yaml:9:5: warning: 'gain_db' of track 'Kick' is overridden by its automation\n"
     "session.yaml:10:5: warning: 'pan' of track 'Kick' is overridden by its automation\n"
     "session.yaml:13:9: warning: 'level_db' of send 1 of track 'Kick' is overridden by its "
     "automation\n"},
    {"bad sends", HEAD BUSES KICK "    sends:\n      - Vox Verb\n      - {level_db: -3, pre: true}\n" DRUMS, false,
     SF_E_INPUT,
     "session.yaml:11:9: error: send 1 of track 'Kick' must be a mapping, not a value\n"
     "session.yaml:12:9: error: missing key 'to' in send 2 of track 'Kick'\n"
     "session.yaml:12:24: error: unknown key 'pre' in send 2 of track 'Kick'\n"},
    {"profiles: unknown, and the settings one needs",
     HEAD "output:\n  profile: archive\n  sample_format: pcm16\n" KICK DRUMS, false, SF_E_INPUT,
     "session.yaml:5:12: error: profile 'archive' needs output.bwf: true\n"
     "session.yaml:5:12: error: profile 'archive' needs output.sample_format: pcm24, not pcm16\n"
     "session.yaml:5:12: error: profile 'archive' needs multitracks: true (the consolidated tracks)\n"},
    {"unknown profile", HEAD "output:\n  profile: loud\n" KICK DRUMS, false, SF_E_INPUT,
     "session.yaml:5:12: error: unknown profile 'loud' (expected stem-mastering, ebu-r128, atsc-a85 or archive)\n"},
    {"bwf needs wav or rf64", HEAD "output:\n  format: flac\n  bwf: true\n" KICK DRUMS, false, SF_E_INPUT,
     "session.yaml:6:8: error: 'output.bwf' needs format wav or rf64, not flac\n"},
    {"invalid channels", HEAD "master:\n  channels: quad\n" KICK DRUMS, false, SF_E_INPUT,
     "session.yaml:5:13: error: invalid channels 'quad' (expected mono, stereo, 5.1 or 7.1)\n"},
    {"mixes: unknown stems, excluded and given a gain, names taken",
     HEAD KICK "  - name: Snare\n    source: kick.wav\n"
               "stems:\n  - name: Drums\n    tracks: [Kick]\n  - name: Snares\n    tracks: [Snare]\n"
               "mixes:\n  - name: Drums\n  - name: Alt\n    exclude: [Drum, Snares]\n"
               "    gains_db: {Snares: 1, Drums: -3, Vox: 0}\n  - name: Alt\n    master: maybe\n",
     false, SF_E_INPUT,
     "session.yaml:15:11: error: mix name 'Drums' is taken by a stem (line 10)\n"
     "session.yaml:17:15: error: unknown stem 'Drum' in mix 'Alt' (stems: 'Drums', 'Snares')\n"
     "session.yaml:18:16: error: stem 'Snares' is both excluded and given a gain in mix 'Alt'\n"
     "session.yaml:18:38: error: unknown stem 'Vox' in mix 'Alt' (stems: 'Drums', 'Snares')\n"
     "session.yaml:19:11: error: duplicate mix name 'Alt' (first at line 16)\n"
     "session.yaml:20:13: error: invalid value 'maybe' for 'master' in mix 'Alt' "
     "(expected bypass or apply)\n"},
    {"a mix that excludes every stem", HEAD KICK DRUMS "mixes:\n  - name: Silence\n    exclude: [Drums]\n", false,
     SF_OK, "session.yaml:11:5: warning: mix 'Silence' excludes every stem (it would be silent)\n"},
    {"two rest stems",
     HEAD KICK "  - name: Snare\n    source: kick.wav\n"
               "stems:\n  - name: Drums\n    tracks: [Kick]\n  - name: Other\n    rest: true\n"
               "  - name: Misc\n    rest: true\n",
     false, SF_E_INPUT,
     "session.yaml:15:11: error: two rest stems: stem 'Other' and stem 'Misc' "
     "(at most one stem can have 'rest: true')\n"},
    {"a rest stem with tracks", HEAD KICK "stems:\n  - name: Other\n    rest: true\n    tracks: [Kick]\n", false,
     SF_E_INPUT,
     "session.yaml:10:5: error: stem 'Other' has both 'rest: true' and 'tracks' "
     "(the rest stem gets every track no other stem claims)\n"},
    {"rest: false needs tracks", HEAD KICK "stems:\n  - name: Other\n    rest: false\n", false, SF_E_INPUT,
     "session.yaml:8:5: error: missing key 'tracks' in stem 'Other'\n"},
    {"a rest stem that gets nothing", HEAD KICK DRUMS "  - name: Other\n    rest: true\n", false, SF_OK,
     "session.yaml:10:5: warning: rest stem 'Other' gets no track "
     "(every track is in another stem)\n"},
    {"a rest stem that gets nothing, strict", HEAD KICK DRUMS "  - name: Other\n    rest: true\n", true, SF_E_INPUT,
     "session.yaml:10:5: error: rest stem 'Other' gets no track "
     "(every track is in another stem)\n"},
    {"file names that collide with interleave false",
     HEAD "output:\n  interleave: false\n"
          "tracks:\n  - name: drums\n    source: oh.wav\n  - name: Kick\n    source: kick.wav\n"
          "stems:\n  - name: Drums\n    tracks: [drums]\n  - name: kick\n    tracks: [Kick]\n"
          "    channels: mono\nmultitracks: true\n",
     false, SF_E_INPUT,
     "session.yaml:7:5: error: stem 'Drums' and multitrack 'drums' would both be written to "
     "'session_drums.L.wav'\n"
     "session.yaml:9:5: error: stem 'kick' and multitrack 'Kick' would both be written to "
     "'session_Kick.M.wav'\n"},
    {"no collision with interleave false when the layouts differ",
     HEAD "output:\n  interleave: false\n" KICK "stems:\n  - name: Kick\n    tracks: [Kick]\n"
          "multitracks: true\n",
     false, SF_OK, ""},
    {"a stem and a multitrack of the same name",
     HEAD KICK "stems:\n  - name: Kick\n    tracks: [Kick]\nmultitracks: true\n", false, SF_E_INPUT,
     "session.yaml:5:5: error: stem 'Kick' and multitrack 'Kick' would both be written to "
     "'session_Kick.wav'\n"},
    {"mixes and stems without {stem} or {index}",
     HEAD "output:\n  name: '{session}'\n" KICK DRUMS "mixes: [{name: Mix}]\n", false, SF_E_INPUT,
     "session.yaml:5:9: error: 'output.name' must contain {stem} or {index} "
     "(otherwise every stem gets the same file name)\n"},
    {"bad graph values", HEAD "output:\n  interleave: maybe\n  null_test: 1\n" BUSES KICK DRUMS "multitracks: yes\n",
     false, SF_E_INPUT,
     "session.yaml:5:15: error: invalid boolean 'maybe' (expected true or false)\n"
     "session.yaml:6:14: error: invalid boolean '1' (expected true or false)\n"
     "session.yaml:16:14: error: invalid boolean 'yes' (expected true or false)\n"},
    {"neither source nor clips", HEAD "tracks:\n  - name: Kick\n    gain_db: 0\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:5:5: error: track 'Kick' has neither 'source' nor 'clips'\n"},
    {"both source and clips", HEAD KICK "    clips: [{source: kick.wav}]\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:7:5: error: track 'Kick' has both 'source' and 'clips' (use one)\n"},
    {"start after end", "version: 1\nsession:\n  sample_rate: 48000\n  start: 2s\n  end: 1s\n" KICK DRUMS, false,
     SF_E_INPUT, "session.yaml:5:8: error: 'session.end' (1s) must be after 'session.start' (2s)\n"},
    {"start after the last clip", "version: 1\nsession:\n  sample_rate: 48000\n  start: 1s\n" KICK DRUMS, false,
     SF_E_INPUT,
     "session.yaml:4:10: error: 'session.start' (1s) must be before the end of the last clip "
     "(48000 frames)\n"},
    {"segment zero", HEAD "  segment: 0\n" KICK DRUMS, false, SF_E_INPUT,
     "session.yaml:4:12: error: 'session.segment' must be greater than 0\n"},
    {"format that cannot hold the sample format", HEAD "output:\n  format: flac\n  sample_format: float32\n" KICK DRUMS,
     false, SF_E_INPUT, "session.yaml:6:18: error: output format 'flac' cannot hold 'float32' samples\n"},
    {"bad output values",
     HEAD "output:\n  format: mp3\n  sample_format: pcm8\n  dither: shaped\n"
          "  headroom_db: loud\n  headroom_policy: panic\n  master: maybe\n  name: '{take'\n" KICK DRUMS,
     false, SF_E_INPUT,
     "session.yaml:5:11: error: invalid format 'mp3' (expected wav, rf64, w64, aiff or flac)\n"
     "session.yaml:6:18: error: invalid sample format 'pcm8' "
     "(expected pcm16, pcm24, pcm32 or float32)\n"
     "session.yaml:7:11: error: invalid dither 'shaped' (expected auto, tpdf or none)\n"
     "session.yaml:8:16: error: invalid number 'loud'\n"
     "session.yaml:9:20: error: invalid headroom policy 'panic' (expected warn or fail)\n"
     "session.yaml:10:11: error: invalid value 'maybe' for 'output.master' "
     "(expected bypass or apply)\n"
     "session.yaml:11:9: error: unclosed '{' in 'output.name'\n"},
    {"name template", HEAD "output:\n  name: '{session}-{take}'\n" KICK DRUMS, false, SF_E_INPUT,
     "session.yaml:5:9: error: unknown placeholder '{take}' in 'output.name' "
     "(expected {session}, {stem}, {index}, {rate} or {bits})\n"},
    {"name template without the stem",
     HEAD "output:\n  name: '{session}'\n" KICK DRUMS "  - name: Other\n    tracks: [Nope*]\n", false, SF_E_INPUT,
     "session.yaml:5:9: error: 'output.name' must contain {stem} or {index} "
     "(otherwise every stem gets the same file name)\n"
     "session.yaml:12:5: warning: stem 'Other' matches no track\n"},
    {"file names that collide",
     HEAD KICK "  - name: Snare\n    source: kick.wav\n"
               "stems:\n  - name: A/B\n    tracks: [Kick]\n  - name: a_b\n    tracks: [Snare]\n",
     false, SF_E_INPUT,
     "session.yaml:12:5: error: stems 'A/B' and 'a_b' would both be written to "
     "'session_a_b.wav'\n"},
    {"several problems at once, in file order",
     HEAD "  end: soon\n"
          "output:\n  sample_format: pcm12\n"
          "tracks:\n  - name: Kick\n    source: nope.wav\n    gian: 3\n"
          "  - name: Kick\n    source: kick.wav\n    pan: left\n"
          "stems:\n  - name: Drums\n    tracks: [Kick, Snare]\n",
     false, SF_E_INPUT,
     "session.yaml:4:8: error: invalid time 'soon' (expected samples, seconds like 2.5s, "
     "milliseconds like 375ms, m:ss.mmm or h:mm:ss.mmm)\n"
     "session.yaml:6:18: error: invalid sample format 'pcm12' "
     "(expected pcm16, pcm24, pcm32 or float32)\n"
     "session.yaml:9:13: error: source 'nope.wav' not found at '@DIR@/nope.wav'\n"
     "session.yaml:10:5: error: unknown key 'gian' in track 'Kick'\n"
     "session.yaml:11:11: error: duplicate track name 'Kick' (first at line 8)\n"
     "session.yaml:13:10: error: invalid pan 'left' (expected a number from -1 to +1)\n"
     "session.yaml:16:20: error: unknown track 'Snare' in stem 'Drums'\n"},
    {"YAML syntax error", HEAD KICK "    gain_db: -3\n   pan: 0\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:8:4: error: invalid YAML: did not find expected '-' indicator "
     "(while parsing a block collection at line 5)\n"},
    {"YAML syntax error: unclosed quote", HEAD KICK "    gain_db: \"-3\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:11:1: error: invalid YAML: found unexpected end of stream "
     "(while scanning a quoted scalar at line 7)\n"},
    {"YAML alias",
     HEAD "tracks:\n  - name: &k Kick\n    source: kick.wav\n"
          "stems:\n  - name: Drums\n"
          "    tracks: [*k]\n",
     false, SF_E_INPUT, "session.yaml:9:14: error: not supported: YAML alias '*k'\n"},
    {"two documents", HEAD KICK DRUMS "---\nversion: 1\n", false, SF_E_INPUT,
     "session.yaml:10:1: error: the session file holds more than one YAML document\n"},
    {"empty file", "", false, SF_E_INPUT, "session.yaml: error: the session file is empty\n"},
    {"only comments", "# nothing yet\n", false, SF_E_INPUT, "session.yaml: error: the session file is empty\n"},
    {"top level is a list", "- version: 1\n", false, SF_E_INPUT,
     "session.yaml:1:1: error: the top level must be a mapping, not a list\n"},
    {"nesting too deep",
     "version: 1\nx: "
     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
     false, SF_E_INPUT, "session.yaml:2:67: error: values nest deeper than 64 levels\n"},
    {"keys that are not names", HEAD KICK DRUMS "[a]: 1\n", false, SF_E_INPUT,
     "session.yaml:10:1: error: keys must be names, not a list\n"},
    {"empty names", HEAD "tracks:\n  - name: ''\n    source: kick.wav\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:5:11: error: 'name' in track 1 must not be empty\n"},
    {"missing name", HEAD "tracks:\n  - source: kick.wav\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:5:5: error: missing key 'name' in track 1\n"},
    {"a track that is not a mapping", HEAD "tracks:\n  - Kick\n" DRUMS, false, SF_E_INPUT,
     "session.yaml:5:5: error: track 1 must be a mapping, not a value\n"},
};

/* Replaces "@DIR@" by the session folder. */
static char *s_expand(const char *want)
{
    size_t n = strlen(want) + 8 * strlen(s_real) + 1;
    char *out = malloc(n), *o = out;
    for (const char *p = want; *p;) {
        if (!strncmp(p, "@DIR@", 5)) {
            o += sprintf(o, "%s", s_real);
            p += 5;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

START_TEST(test_bad_session)
{
    const bad_t *b = &bad[_i];
    sf_session_t *s = (sf_session_t *)1;
    char *printed = NULL;
    sf_rc rc = s_load(b->yaml, b->strict, &s, &printed);
    char *want = s_expand(b->want);
    ck_assert_msg(!strcmp(printed, want), "%s:\n--- got\n%s--- expected\n%s", b->what, printed, want);
    ck_assert_msg(rc == b->rc, "%s: rc %d, expected %d", b->what, rc, b->rc);
    if (rc == SF_OK)
        ck_assert_ptr_nonnull(s);
    else
        ck_assert_ptr_null(s);
    sf_session_destroy(&s);
    free(want);
    free(printed);
}
END_TEST

/* ---- allocation failure -------------------------------------------------- */

/* Fails the n-th allocation, for n = 1, 2, ... until the load succeeds (or
 * reports its input errors): every earlier run must say SF_E_NOMEM, leave
 * *out NULL and leak nothing (the sanitizer run checks the leaks). */
static void s_nomem_loop(const char *yaml, sf_rc final_rc)
{
    free(tu_write_text(s_dir, "session.yaml", yaml));
    long n_runs = 0;
    for (long n = 1;; n++) {
        sf_session_t *s = (sf_session_t *)1;
        sf_diags_t diags = SF_DIAGS_INIT;
        sf_err_t err = {0};
        sf_alloc_fail_after(n);
        sf_rc rc = sf_session_load("session.yaml", NULL, &s, &diags, &err);
        long n_allocs = sf_alloc_count();
        sf_alloc_fail_after(0);
        n_runs++;
        if (rc == SF_E_NOMEM) {
            ck_assert_ptr_null(s);
            ck_assert_str_eq(err.msg, "out of memory");
            sf_diags_free(&diags);
            ck_assert_msg(n < 100000, "no end to the allocations");
            continue;
        }
        ck_assert_msg(rc == final_rc, "fail after %ld: rc %d", n, rc);
        ck_assert_msg(n_allocs < n, "fail after %ld: succeeded although allocation %ld failed", n, n);
        sf_session_destroy(&s);
        sf_diags_free(&diags);
        break;
    }
    ck_assert_int_gt(n_runs, 50);
}

START_TEST(test_nomem_good) { s_nomem_loop(s_good, SF_OK); }
END_TEST

START_TEST(test_nomem_graph) { s_nomem_loop(s_graph, SF_OK); }
END_TEST

/* The copy is made on the first run that gets that far and reused after. */
START_TEST(test_nomem_resampled) { s_nomem_loop(s_resampled, SF_OK); }
END_TEST

START_TEST(test_nomem_bad_graph)
{
    size_t i = 0;
    while (strcmp(bad[i].what, "mixes: unknown stems, excluded and given a gain, names taken"))
        i++;
    s_nomem_loop(bad[i].yaml, SF_E_INPUT);
    i = 0;
    while (strcmp(bad[i].what, "routing cycle of three buses, with a branch"))
        i++;
    s_nomem_loop(bad[i].yaml, SF_E_INPUT);
}
END_TEST

/* Effects: every kind with an IR made at the session rate, tails on paths
 * through buses, and bad effects. */
START_TEST(test_nomem_fx)
{
    s_nomem_loop(s_fx, SF_OK);
    s_nomem_loop(s_echo, SF_OK);
    static const char *const rows[] = {
        "fx: out of range, in several effects",
        "fx: impulse responses with the wrong channels",
        "fx: unknown and duplicate keys in an effect",
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        size_t i = 0;
        while (strcmp(bad[i].what, rows[r]))
            i++;
        s_nomem_loop(bad[i].yaml, SF_E_INPUT);
    }
}
END_TEST

START_TEST(test_nomem_bad)
{
    size_t i = 0;
    while (strcmp(bad[i].what, "several problems at once, in file order"))
        i++;
    s_nomem_loop(bad[i].yaml, SF_E_INPUT);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("session");
    TCase *tc = tcase_create("load");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_good_session);
    tcase_add_test(tc, test_graph_session);
    tcase_add_test(tc, test_layouts);
    tcase_add_test(tc, test_resampled_source);
    tcase_add_test(tc, test_resample_failure);
    tcase_add_test(tc, test_fx_session);
    tcase_add_test(tc, test_media_lookup);
    tcase_add_test(tc, test_fx_tails);
    tcase_add_test(tc, test_hash);
    tcase_add_test(tc, test_io_errors);
    tcase_add_test(tc, test_no_source_check);
    tcase_add_loop_test(tc, test_fuzzed_inputs, 0, sizeof fuzzed / sizeof fuzzed[0]);
    tcase_add_test(tc, test_stem_filename);
    tcase_add_loop_test(tc, test_bad_session, 0, sizeof bad / sizeof bad[0]);
    tcase_add_test(tc, test_nomem_good);
    tcase_add_test(tc, test_nomem_bad);
    tcase_add_test(tc, test_nomem_graph);
    tcase_add_test(tc, test_nomem_resampled);
    tcase_add_test(tc, test_nomem_bad_graph);
    tcase_add_test(tc, test_nomem_fx);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(s_suite()); }
