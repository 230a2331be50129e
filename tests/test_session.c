/* test_session.c -- the session loader (sf/session.h): a good session gives
 * the expected model; every kind of bad session gives exactly the lines a
 * user sees (`session.yaml:LINE:COL: error: ...`); allocation failure at any
 * point is reported cleanly. Audio fixtures are generated in a temp folder. */
/* realpath(3) is XSI. */
#define _XOPEN_SOURCE 700

#include "sf/alloc.h"
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

static char *s_dir;                /* temp folder holding the session and media */
static char s_real[PATH_MAX];      /* its realpath: what base_dir must be */
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

static const char s_good[] =
    "version: 1\n"
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
    "  bwf: true\n"
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
    ck_assert(s->output.bwf);
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

/* Load from memory must give the same model and hash as load from disk. */
START_TEST(test_hash)
{
    sf_session_t *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    char *printed = NULL;
    ck_assert_int_eq(s_load(s_good, false, &a, &printed), SF_OK);
    free(printed);
    sf_diags_t diags = SF_DIAGS_INIT;
    ck_assert_int_eq(sf_session_load_text("session.yaml", s_good, strlen(s_good), NULL, &b, &diags,
                                          NULL),
                     SF_OK);
    ck_assert_int_eq(diags.n_items, 0);
    ck_assert_mem_eq(a->hash, b->hash, SF_SESSION_HASH_BYTES);
    ck_assert_str_eq(a->base_dir, b->base_dir);
    ck_assert_str_eq(a->tracks[3].clips[0].path, b->tracks[3].clips[0].path);
    ck_assert_int_eq(a->end, b->end);

    /* The documented formula: SHA-256 of the bytes, a NUL and base_dir. */
    char hex[65], want[65];
    sf_session_hash_hex(a, hex);
    char cmd[PATH_MAX + 128];
    snprintf(cmd, sizeof cmd, "{ cat session.yaml; printf '\\0%%s' '%s'; } | sha256sum | cut -c1-64",
             s_real);
    char *out = NULL;
    ck_assert_int_eq(tu_run(cmd, &out, NULL, 30), 0);
    snprintf(want, sizeof want, "%s", out);
    free(out);
    ck_assert_str_eq(hex, want);

    /* One byte changed: another hash. */
    char *changed = strdup(s_good);
    char *at = strstr(changed, "gain_db: -2.5");
    at[strlen("gain_db: -2.")] = '4';
    ck_assert_int_eq(sf_session_load_text("session.yaml", changed, strlen(changed), NULL, &c,
                                          &diags, NULL),
                     SF_OK);
    ck_assert_double_eq(c->tracks[0].gain_db, -2.4);
    ck_assert(memcmp(a->hash, c->hash, SF_SESSION_HASH_BYTES) != 0);

    /* The same bytes through a symlinked folder: the same base_dir and hash;
     * in another folder: another hash. */
    char *link = s_join(s_real, "link");
    ck_assert_int_eq(symlink(s_real, link), 0);
    ck_assert_int_eq(sf_session_load_text("link/session.yaml", s_good, strlen(s_good), NULL, &d,
                                          &diags, NULL),
                     SF_OK);
    ck_assert_str_eq(d->base_dir, s_real);
    ck_assert_mem_eq(a->hash, d->hash, SF_SESSION_HASH_BYTES);
    sf_session_destroy(&d);
    free(tu_write_text(s_dir, "sub/media/drums/.keep", ""));
    ck_assert_int_eq(sf_session_load_text("sub/session.yaml", s_good, strlen(s_good), NULL, &d,
                                          &diags, NULL),
                     SF_E_INPUT); /* no media there */
    sf_diags_free(&diags);
    sf_session_load_opts_t opts = sf_session_load_opts_default();
    opts.check_sources = false;
    ck_assert_int_eq(sf_session_load_text("sub/session.yaml", s_good, strlen(s_good), &opts, &d,
                                          &diags, NULL),
                     SF_OK);
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
    ck_assert_int_eq(sf_session_load_text("no/such/dir/s.yaml", "version: 1\n", 11, NULL, &s,
                                          &diags, &err),
                     SF_E_IO);
    ck_assert_str_eq(err.msg,
                     "cannot resolve the folder of 'no/such/dir/s.yaml': no such file or directory");
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
    ck_assert_int_eq(sf_session_load_text("x.yaml", yaml, strlen(yaml), &opts, &s, &diags, NULL),
                     SF_OK);
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
        {"wav", "a_b_c x________ 01 96000 32.wav"},  {"rf64", "a_b_c x________ 01 96000 32.wav"},
        {"w64", "a_b_c x________ 01 96000 32.w64"},  {"aiff", "a_b_c x________ 01 96000 32.aiff"},
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

#define HEAD "version: 1\nsession:\n  sample_rate: 48000\n"
/* A session whose line 4 onwards is the tracks list; stem on lines 7..9. */
#define KICK "tracks:\n  - name: Kick\n    source: kick.wav\n"
#define DRUMS "stems:\n  - name: Drums\n    tracks: [Kick]\n"

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
    {"unknown key at the top and in a section",
     HEAD "  smaple_rate: 4\n" KICK DRUMS "stem:\n",
     false, SF_E_INPUT,
     "session.yaml:4:3: error: unknown key 'smaple_rate' in 'session'\n"
     "session.yaml:11:1: error: unknown key 'stem'\n"},
    {"wrong type: list for a mapping",
     "version: 1\nsession:\n  - sample_rate: 48000\n" KICK DRUMS,
     false, SF_E_INPUT, "session.yaml:3:3: error: 'session' must be a mapping, not a list\n"},
    {"wrong type: list for a value",
     HEAD KICK "    gain_db: [1, 2]\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:7:14: error: 'gain_db' in track 'Kick' must be a value, not a list\n"},
    {"wrong type: mapping for a list, value for a mapping",
     HEAD "tracks:\n  name: Kick\n" DRUMS "output: wav\n",
     false, SF_E_INPUT,
     "session.yaml:5:3: error: 'tracks' must be a list, not a mapping\n"
     "session.yaml:9:9: error: 'output' must be a mapping, not a value\n"},
    {"no value",
     HEAD "  start:\n" KICK DRUMS,
     false, SF_E_INPUT, "session.yaml:4:9: error: 'session.start' has no value\n"},
    {"duplicate key",
     HEAD KICK "    gain_db: -3\n    gain_db: -4\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:8:5: error: duplicate key 'gain_db' in track 'Kick' (first at line 7)\n"},
    {"duplicate track name",
     HEAD KICK "  - name: Kick\n    source: kick.wav\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:7:11: error: duplicate track name 'Kick' (first at line 5)\n"},
    {"duplicate stem name",
     HEAD KICK "  - name: Snare\n    source: kick.wav\n" DRUMS
          "  - name: Drums\n    tracks: [Snare]\n",
     false, SF_E_INPUT,
     "session.yaml:12:11: error: duplicate stem name 'Drums' (first at line 10)\n"},
    {"exact name matching no track",
     HEAD KICK "stems:\n  - name: Drums\n    tracks: [Kik]\n",
     false, SF_E_INPUT,
     "session.yaml:5:5: warning: track 'Kick' is in no stem\n"
     "session.yaml:9:14: error: unknown track 'Kik' in stem 'Drums'\n"},
    {"glob matching no track",
     HEAD KICK "stems:\n  - name: Drums\n    tracks: [Kick, \"Snare *\"]\n",
     false, SF_OK,
     "session.yaml:9:20: warning: pattern 'Snare *' in stem 'Drums' matches no track\n"},
    {"stem matching no track",
     HEAD KICK DRUMS "  - name: Vocals\n    tracks: [\"Vox*\", \"BV ?\"]\n",
     false, SF_OK, "session.yaml:10:5: warning: stem 'Vocals' matches no track\n"},
    {"stem matching no track, strict",
     HEAD KICK DRUMS "  - name: Vocals\n    tracks: [\"Vox*\"]\n",
     true, SF_E_INPUT, "session.yaml:10:5: error: stem 'Vocals' matches no track\n"},
    {"stem without patterns",
     HEAD KICK DRUMS "  - name: Vocals\n    tracks: []\n",
     false, SF_E_INPUT, "session.yaml:11:13: error: 'tracks' in stem 'Vocals' must not be empty\n"},
    {"track in two stems",
     HEAD KICK DRUMS "  - name: All\n    tracks: ['*']\n",
     false, SF_OK, "session.yaml:5:5: warning: track 'Kick' is in 2 stems: 'Drums' and 'All'\n"},
    {"track in two stems, strict",
     HEAD KICK DRUMS "  - name: All\n    tracks: ['*']\n",
     true, SF_E_INPUT, "session.yaml:5:5: error: track 'Kick' is in 2 stems: 'Drums' and 'All'\n"},
    {"track in no stem",
     HEAD KICK "  - name: Snare\n    source: kick.wav\n" DRUMS,
     false, SF_OK, "session.yaml:7:5: warning: track 'Snare' is in no stem\n"},
    {"missing source",
     HEAD "tracks:\n  - name: Kick\n    source: drums/nope.wav\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:6:13: error: source 'drums/nope.wav' not found at '@DIR@/drums/nope.wav'\n"},
    {"garbage source",
     HEAD "tracks:\n  - name: Kick\n    source: garbage.wav\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:6:13: error: cannot read source 'garbage.wav' "
     "(not an audio file libsndfile can read)\n"},
    {"zero-length source",
     HEAD "tracks:\n  - name: Kick\n    source: empty.wav\n" DRUMS,
     false, SF_E_INPUT, "session.yaml:6:13: error: source 'empty.wav' is empty (0 bytes)\n"},
    {"source without frames",
     HEAD "tracks:\n  - name: Kick\n    source: noframes.wav\n" DRUMS,
     false, SF_E_INPUT, "session.yaml:6:13: error: source 'noframes.wav' has no audio frames\n"},
    {"source is a folder",
     HEAD "tracks:\n  - name: Kick\n    source: media\n" DRUMS,
     false, SF_E_INPUT, "session.yaml:6:13: error: source 'media' is not a file\n"},
    {"wrong sample rate",
     HEAD "tracks:\n  - name: Kick\n    source: vox44.wav\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:6:13: error: source 'vox44.wav' is 44100 Hz, the session is 48000 Hz "
     "(resampling is not supported yet)\n"},
    {"more than two channels",
     HEAD "tracks:\n  - name: Kick\n    source: six.wav\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:6:13: error: source 'six.wav' has 6 channels "
     "(this version reads mono and stereo sources only)\n"},
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
     false, SF_E_INPUT,
     "session.yaml:8:17: error: 'length' in clip 1 of track 'Kick' must be greater than 0\n"},
    {"bad time",
     HEAD "tracks:\n  - name: Kick\n    clips:\n      - source: kick.wav\n"
          "        at: 1:75\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:8:13: error: invalid time '1:75' (seconds must be below 60)\n"},
    {"negative time",
     HEAD "tracks:\n  - name: Kick\n    clips:\n      - source: kick.wav\n"
          "        at: -1s\n" DRUMS,
     false, SF_E_INPUT, "session.yaml:8:13: error: invalid time '-1s' (must not be negative)\n"},
    {"bad level",
     HEAD KICK "    gain_db: loud\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:7:14: error: invalid level 'loud' (expected a number of dB or -inf)\n"},
    {"nan level",
     HEAD KICK "    gain_db: .nan\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:7:14: error: invalid level '.nan' (expected a number of dB or -inf)\n"},
    {"pan out of range",
     HEAD KICK "    pan: 1.5\n" DRUMS,
     false, SF_E_INPUT, "session.yaml:7:10: error: invalid pan '1.5' (must be between -1 and +1)\n"},
    {"bad enumerations and booleans",
     HEAD KICK "    polarity: reverse\n    mute: yes\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:7:15: error: invalid polarity 'reverse' (expected normal or invert)\n"
     "session.yaml:8:11: error: invalid boolean 'yes' (expected true or false)\n"},
    {"version 2",
     "version: 2\nsession:\n  sample_rate: 48000\n" KICK DRUMS,
     false, SF_E_INPUT,
     "session.yaml:1:10: error: unsupported version '2' (this stemfarm reads version 1)\n"},
    {"no version",
     "session:\n  sample_rate: 48000\n" KICK DRUMS,
     false, SF_E_INPUT, "session.yaml:1:1: error: missing key 'version'\n"},
    {"bad sample rate",
     "version: 1\nsession:\n  sample_rate: 1000\n" KICK DRUMS,
     false, SF_E_INPUT,
     "session.yaml:3:16: error: invalid sample rate '1000' "
     "(expected a whole number of Hz from 8000 to 384000)\n"},
    {"no sample rate",
     "version: 1\nsession:\n  name: x\n" KICK DRUMS,
     false, SF_E_INPUT, "session.yaml:3:3: error: missing key 'sample_rate' in 'session'\n"},
    {"unsupported: buses",
     HEAD KICK DRUMS "buses:\n  - name: Drum Bus\n",
     false, SF_E_INPUT,
     "session.yaml:10:1: error: not supported yet: 'buses' "
     "(this version renders tracks straight to the master)\n"},
    {"unsupported: track features",
     HEAD KICK "    output: Drum Bus\n    fx:\n      - gain: {db: 3}\n"
          "    sends: []\n    automation: {}\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:7:13: error: not supported yet: 'output: Drum Bus' in track 'Kick' "
     "(this version renders tracks straight to the master)\n"
     "session.yaml:8:5: error: not supported yet: 'fx' in track 'Kick' (this version has no effects)\n"
     "session.yaml:10:5: error: not supported yet: 'sends' in track 'Kick' (this version has no buses)\n"
     "session.yaml:11:5: error: not supported yet: 'automation' in track 'Kick' "
     "(this version has no automation)\n"},
    {"unsupported: fades, master, mixes, multitracks, surround",
     HEAD "tracks:\n  - name: Kick\n    clips:\n      - {source: kick.wav, fade_in: 10ms}\n"
          "stems:\n  - name: Drums\n    tracks: [Kick]\n    channels: 5.1\n"
          "master:\n  fx: []\n"
          "output:\n  master: apply\n"
          "mixes: []\nmultitracks: true\n",
     false, SF_E_INPUT,
     "session.yaml:7:28: error: not supported yet: 'fade_in' in clip 1 of track 'Kick' "
     "(this version has no fades)\n"
     "session.yaml:11:15: error: not supported yet: 'channels: 5.1' in stem 'Drums' "
     "(this version renders mono and stereo)\n"
     "session.yaml:13:3: error: not supported yet: 'fx' in 'master' (this version has no effects)\n"
     "session.yaml:15:11: error: 'output.master: apply' needs master effects, "
     "which this version does not support\n"
     "session.yaml:16:1: error: not supported yet: 'mixes' (this version renders stems only)\n"
     "session.yaml:17:14: error: not supported yet: 'multitracks: true' "
     "(this version renders stems only)\n"},
    {"neither source nor clips",
     HEAD "tracks:\n  - name: Kick\n    gain_db: 0\n" DRUMS,
     false, SF_E_INPUT, "session.yaml:5:5: error: track 'Kick' has neither 'source' nor 'clips'\n"},
    {"both source and clips",
     HEAD KICK "    clips: [{source: kick.wav}]\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:7:5: error: track 'Kick' has both 'source' and 'clips' (use one)\n"},
    {"start after end",
     "version: 1\nsession:\n  sample_rate: 48000\n  start: 2s\n  end: 1s\n" KICK DRUMS,
     false, SF_E_INPUT,
     "session.yaml:5:8: error: 'session.end' (1s) must be after 'session.start' (2s)\n"},
    {"start after the last clip",
     "version: 1\nsession:\n  sample_rate: 48000\n  start: 1s\n" KICK DRUMS,
     false, SF_E_INPUT,
     "session.yaml:4:10: error: 'session.start' (1s) must be before the end of the last clip "
     "(48000 frames)\n"},
    {"segment zero",
     HEAD "  segment: 0\n" KICK DRUMS,
     false, SF_E_INPUT, "session.yaml:4:12: error: 'session.segment' must be greater than 0\n"},
    {"format that cannot hold the sample format",
     HEAD "output:\n  format: flac\n  sample_format: float32\n" KICK DRUMS,
     false, SF_E_INPUT,
     "session.yaml:6:18: error: output format 'flac' cannot hold 'float32' samples\n"},
    {"bad output values",
     HEAD "output:\n  format: mp3\n  sample_format: pcm8\n  dither: shaped\n"
          "  headroom_db: loud\n  headroom_policy: panic\n  master: maybe\n  name: '{take'\n"
          KICK DRUMS,
     false, SF_E_INPUT,
     "session.yaml:5:11: error: invalid format 'mp3' (expected wav, rf64, w64, aiff or flac)\n"
     "session.yaml:6:18: error: invalid sample format 'pcm8' "
     "(expected pcm16, pcm24, pcm32 or float32)\n"
     "session.yaml:7:11: error: invalid dither 'shaped' (expected auto, tpdf or none)\n"
     "session.yaml:8:16: error: invalid number 'loud'\n"
     "session.yaml:9:20: error: invalid headroom policy 'panic' (expected warn or fail)\n"
     "session.yaml:10:11: error: invalid value 'maybe' for 'output.master' (expected bypass)\n"
     "session.yaml:11:9: error: unclosed '{' in 'output.name'\n"},
    {"name template",
     HEAD "output:\n  name: '{session}-{take}'\n" KICK DRUMS,
     false, SF_E_INPUT,
     "session.yaml:5:9: error: unknown placeholder '{take}' in 'output.name' "
     "(expected {session}, {stem}, {index}, {rate} or {bits})\n"},
    {"name template without the stem",
     HEAD "output:\n  name: '{session}'\n" KICK DRUMS "  - name: Other\n    tracks: [Nope*]\n",
     false, SF_E_INPUT,
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
    {"YAML syntax error",
     HEAD KICK "    gain_db: -3\n   pan: 0\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:8:4: error: invalid YAML: did not find expected '-' indicator "
     "(while parsing a block collection at line 5)\n"},
    {"YAML syntax error: unclosed quote",
     HEAD KICK "    gain_db: \"-3\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:11:1: error: invalid YAML: found unexpected end of stream "
     "(while scanning a quoted scalar at line 7)\n"},
    {"YAML alias",
     HEAD "tracks:\n  - name: &k Kick\n    source: kick.wav\n" "stems:\n  - name: Drums\n"
          "    tracks: [*k]\n",
     false, SF_E_INPUT, "session.yaml:9:14: error: not supported: YAML alias '*k'\n"},
    {"two documents",
     HEAD KICK DRUMS "---\nversion: 1\n",
     false, SF_E_INPUT,
     "session.yaml:10:1: error: the session file holds more than one YAML document\n"},
    {"empty file", "", false, SF_E_INPUT, "session.yaml: error: the session file is empty\n"},
    {"only comments", "# nothing yet\n", false, SF_E_INPUT,
     "session.yaml: error: the session file is empty\n"},
    {"top level is a list", "- version: 1\n", false, SF_E_INPUT,
     "session.yaml:1:1: error: the top level must be a mapping, not a list\n"},
    {"nesting too deep",
     "version: 1\nx: " "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
     false, SF_E_INPUT, "session.yaml:2:67: error: values nest deeper than 64 levels\n"},
    {"keys that are not names",
     HEAD KICK DRUMS "[a]: 1\n",
     false, SF_E_INPUT, "session.yaml:10:1: error: keys must be names, not a list\n"},
    {"empty names",
     HEAD "tracks:\n  - name: ''\n    source: kick.wav\n" DRUMS,
     false, SF_E_INPUT,
     "session.yaml:5:11: error: 'name' in track 1 must not be empty\n"},
    {"missing name",
     HEAD "tracks:\n  - source: kick.wav\n" DRUMS,
     false, SF_E_INPUT, "session.yaml:5:5: error: missing key 'name' in track 1\n"},
    {"a track that is not a mapping",
     HEAD "tracks:\n  - Kick\n" DRUMS,
     false, SF_E_INPUT, "session.yaml:5:5: error: track 1 must be a mapping, not a value\n"},
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
    ck_assert_msg(!strcmp(printed, want), "%s:\n--- got\n%s--- expected\n%s", b->what, printed,
                  want);
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

START_TEST(test_nomem_good)
{
    s_nomem_loop(s_good, SF_OK);
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
    tcase_add_test(tc, test_hash);
    tcase_add_test(tc, test_io_errors);
    tcase_add_test(tc, test_no_source_check);
    tcase_add_test(tc, test_stem_filename);
    tcase_add_loop_test(tc, test_bad_session, 0, sizeof bad / sizeof bad[0]);
    tcase_add_test(tc, test_nomem_good);
    tcase_add_test(tc, test_nomem_bad);
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
