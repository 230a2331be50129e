/* test_pathmap_farm.c -- path mapping end to end: a real `stemfarm
 * coordinator` and `stemfarm-node` processes on tcp 127.0.0.1, a session
 * that names its media by a studio path this machine does not have
 * (`/Volumes/StemfarmTest-PID/media`, `W:\StemfarmTest-PID\media`), and
 * configs that map it to the temp folder holding the media.
 *
 *   - coordinator and node map the studio path: the stems are the bytes a
 *     session with plain paths gives; the node also sees the session's own
 *     folder elsewhere, so its hash must be the coordinator's;
 *   - a node whose media roots leave the media out, or with no rule for a
 *     Windows path: its jobs fail and the render fails (exit 1) naming the
 *     file and the reason;
 *   - `stemfarm check-path`: its lines and exit codes;
 *   - a bad config: file:line:col and exit 2 from every program. */
/* realpath(3) is XSI. */
#define _XOPEN_SOURCE 700

#include "testutil.h"

#include <check.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define RATE 48000

static char *s_dir;       /* the temp folder (realpath) */
static char s_studio[64]; /* "/Volumes/StemfarmTest-PID": nowhere on this machine */
static char s_drive[64];  /* "W:\StemfarmTest-PID" */

static double s_tone(int ch, int64_t i, void *ctx)
{
    double f = *(const double *)ctx;
    return 0.3 * tu_sine(f * (ch + 1), RATE, i) + 0.02 * tu_noise((uint64_t)f, i);
}

/* A session at dir/name whose media_root is `root` (as written). */
static char *s_write_session(const char *name, const char *root)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "version: 1\nsession:\n  name: Mapped Mix\n  sample_rate: %d\n  media_root: '%s'\n"
             "output:\n  format: wav\n  sample_format: pcm24\n"
             "tracks:\n"
             "  - name: Kick\n    source: drums/kick.wav\n    gain_db: -3\n"
             "  - name: Keys\n    clips:\n      - {source: keys.wav, at: 1000, offset: 77}\n    pan: -0.3\n"
             "stems:\n  - name: Drums\n    tracks: [Kick]\n  - name: Music\n    tracks: [Keys]\n",
             RATE, root);
    return tu_write_text(s_dir, name, yaml);
}

/* dir/name with a config: the studio paths map to A/, media roots as given. */
static char *s_write_config(const char *name, const char *roots, int with_drive, const char *extra_rule)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml, "media_roots: [%s]\npath_map:\n  - from: %s\n    to: %s/A\n%s%s%s%s%s", roots, s_studio,
             s_dir, with_drive ? "  - from: '" : "", with_drive ? s_drive : "", with_drive ? "'\n    to: " : "",
             with_drive ? s_dir : "", with_drive ? "/A\n" : "");
    size_t n = strlen(yaml);
    if (extra_rule)
        snprintf(yaml + n, sizeof yaml - n, "%s", extra_rule);
    return tu_write_text(s_dir, name, yaml);
}

static void setup(void)
{
    char *tmp = tu_tmpdir();
    char real[PATH_MAX];
    ck_assert_ptr_nonnull(realpath(tmp, real));
    free(tmp);
    s_dir = strdup(real);
    snprintf(s_studio, sizeof s_studio, "/Volumes/StemfarmTest-%ld", (long)getpid());
    snprintf(s_drive, sizeof s_drive, "W:\\StemfarmTest-%ld", (long)getpid());
    ck_assert_msg(access(s_studio, F_OK) != 0, "%s exists on this machine", s_studio);
    static const double f_kick = 55.0, f_keys = 261.6;
    free(tu_write_wav(s_dir, "A/media/drums/kick.wav", 1, RATE, 30011, 24, s_tone, (void *)&f_kick));
    free(tu_write_wav(s_dir, "A/media/keys.wav", 2, RATE, 40000, 24, s_tone, (void *)&f_keys));
    free(tu_write_text(s_dir, "other/readme.txt", "not media\n"));
    free(tu_write_text(s_dir, "nodeview/readme.txt", "where the node sees the session folder\n"));
}

static void teardown(void)
{
    tu_rm_rf(s_dir);
    free(s_dir);
}

static int s_stemfarm(const char *args, char **out, char **err)
{
    char cmd[8192 + PATH_MAX];
    snprintf(cmd, sizeof cmd, "'%s' %s", tu_stemfarm_bin(), args);
    return tu_run(cmd, out, err, 240);
}

static pid_t s_spawn(char *const argv[])
{
    pid_t pid;
    ck_assert_int_eq(posix_spawn(&pid, argv[0], NULL, NULL, argv, environ), 0);
    return pid;
}

static int s_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        nanosleep(&(struct timespec){.tv_nsec = 100000000}, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

typedef struct {
    int rc;
    char *out, *err;
} run_t;

/* Starts a coordinator (farm_cfg) and one node (node_cfg), submits
 * `session` from a client with farm_cfg into dir/out_name, stops both. */
static run_t s_farm_render(const char *session, const char *farm_cfg, const char *node_cfg, const char *out_name)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", tu_free_port());
    pid_t coord = s_spawn((char *const[]){(char *)tu_stemfarm_bin(), "coordinator", "--bind", endpoint, "--config",
                                          (char *)farm_cfg, NULL});
    pid_t node = s_spawn((char *const[]){(char *)tu_node_bin(), "--connect", endpoint, "--threads", "1", "--name",
                                         "mapped-node", "--config", (char *)node_cfg, NULL});
    nanosleep(&(struct timespec){.tv_nsec = 300000000}, NULL);
    char args[8192];
    char *out_dir = tu_path(s_dir, out_name);
    snprintf(args, sizeof args, "render '%s' -o '%s' --farm %s --segment 9000 --config '%s'", session, out_dir,
             endpoint, farm_cfg);
    run_t r = {0};
    r.rc = s_stemfarm(args, &r.out, &r.err);
    ck_assert_int_eq(s_stop(coord), 0);
    ck_assert_int_eq(s_stop(node), 0);
    free(out_dir);
    return r;
}

static void s_run_free(run_t *r)
{
    free(r->out);
    free(r->err);
}

static void s_assert_same_stems(const char *a, const char *b)
{
    static const char *const stems[] = {"Mapped Mix_Drums.wav", "Mapped Mix_Music.wav"};
    for (int s = 0; s < 2; s++) {
        char pa[PATH_MAX], pb[PATH_MAX];
        snprintf(pa, sizeof pa, "%s/%s/%s", s_dir, a, stems[s]);
        snprintf(pb, sizeof pb, "%s/%s/%s", s_dir, b, stems[s]);
        ck_assert_msg(tu_exists(pa) && tu_exists(pb), "%s or %s missing", pa, pb);
        ck_assert_msg(tu_files_equal(pa, pb), "%s and %s differ", pa, pb);
    }
}

START_TEST(test_mapped_farm_renders_the_plain_bytes)
{
    /* the reference: the same session with plain relative paths */
    char *plain = s_write_session("plain/session.yaml", "../A/media");
    char args[8192];
    snprintf(args, sizeof args, "render '%s' -o '%s/ref' --nodes 1 --segment 9000", plain, s_dir);
    char *err = NULL;
    ck_assert_msg(s_stemfarm(args, NULL, &err) == 0, "%s", err);
    free(err);

    char root[128];
    snprintf(root, sizeof root, "%s/media", s_studio);
    char *session = s_write_session("studio/session.yaml", root);
    char roots[PATH_MAX];
    snprintf(roots, sizeof roots, "%s/A", s_dir);
    char *farm = s_write_config("farm.yaml", roots, 0, NULL);
    /* The node also sees the session's folder elsewhere: its base_dir
     * differs from the coordinator's, the session hash must not. */
    char rule[PATH_MAX * 2 + 64];
    snprintf(rule, sizeof rule, "  - from: %s/studio\n    to: %s/nodeview\n", s_dir, s_dir);
    char *node = s_write_config("node.yaml", roots, 0, rule);

    /* without its config the client cannot see the media: bad input */
    snprintf(args, sizeof args, "validate '%s'", session);
    ck_assert_int_eq(s_stemfarm(args, NULL, &err), 2);
    ck_assert_msg(strstr(err, "source 'drums/kick.wav' not found at '/Volumes/StemfarmTest-"), "%s", err);
    free(err);
    snprintf(args, sizeof args, "validate '%s' --config '%s'", session, farm);
    ck_assert_msg(s_stemfarm(args, NULL, &err) == 0, "%s", err);
    free(err);

    run_t r = s_farm_render(session, farm, node, "farm");
    ck_assert_msg(r.rc == 0, "farm render exited %d: %s", r.rc, r.err);
    s_run_free(&r);
    s_assert_same_stems("ref", "farm");

    /* the embedded render maps with the same config, nodes included */
    snprintf(args, sizeof args, "render '%s' -o '%s/embedded' --nodes 2 --segment 9000 --config '%s'", session, s_dir,
             farm);
    ck_assert_msg(s_stemfarm(args, NULL, &err) == 0, "%s", err);
    free(err);
    s_assert_same_stems("ref", "embedded");

    free(plain);
    free(session);
    free(farm);
    free(node);
}
END_TEST

START_TEST(test_node_outside_media_roots_fails_the_render)
{
    char root[128];
    snprintf(root, sizeof root, "%s/media", s_studio);
    char *session = s_write_session("studio/session.yaml", root);
    char roots[PATH_MAX];
    snprintf(roots, sizeof roots, "%s/A", s_dir);
    char *farm = s_write_config("farm.yaml", roots, 0, NULL);
    snprintf(roots, sizeof roots, "%s/other", s_dir);
    char *node = s_write_config("node.yaml", roots, 0, NULL);

    run_t r = s_farm_render(session, farm, node, "out");
    ck_assert_msg(r.rc == 1, "exited %d: %s", r.rc, r.err);
    char want[PATH_MAX * 3];
    snprintf(want, sizeof want,
             "source 'drums/kick.wav' is not readable on this machine: '%s/A/media/drums/kick.wav' is outside the "
             "media roots ('%s/other')",
             s_dir, s_dir);
    ck_assert_msg(strstr(r.err, want), "stderr lacks \"%s\":\n%s", want, r.err);
    /* its only node failed it: nowhere left to retry */
    ck_assert_msg(strstr(r.err, "no node left that may render stem 'Drums' segment 0; it failed on 'mapped-node': "),
                  "%s", r.err);
    s_run_free(&r);
    char *out = tu_path(s_dir, "out/Mapped Mix_Drums.wav");
    ck_assert_msg(!tu_exists(out), "a deliverable was written");
    free(out);
    free(session);
    free(farm);
    free(node);
}
END_TEST

START_TEST(test_node_without_a_rule_for_a_windows_path)
{
    char root[128];
    snprintf(root, sizeof root, "%s\\media", s_drive);
    char *session = s_write_session("studio/session.yaml", root);
    char roots[PATH_MAX];
    snprintf(roots, sizeof roots, "%s/A", s_dir);
    char *farm = s_write_config("farm.yaml", roots, 1, NULL);
    char *node = s_write_config("node.yaml", roots, 0, NULL); /* the macOS rule only */

    run_t r = s_farm_render(session, farm, node, "out");
    ck_assert_msg(r.rc == 1, "exited %d: %s", r.rc, r.err);
    char want[512];
    snprintf(want, sizeof want,
             "cannot map 'session.media_root': no path_map rule maps '%s\\media': a Windows path cannot be opened on "
             "this machine; add a rule to the config, e.g. {from: 'W:\\', to: /where/it/is/mounted}",
             s_drive);
    ck_assert_msg(strstr(r.err, want), "stderr lacks \"%s\":\n%s", want, r.err);
    s_run_free(&r);

    /* with the rule on the node too, the same session renders */
    free(node);
    node = s_write_config("node.yaml", roots, 1, NULL);
    r = s_farm_render(session, farm, node, "out");
    ck_assert_msg(r.rc == 0, "exited %d: %s", r.rc, r.err);
    s_run_free(&r);
    free(session);
    free(farm);
    free(node);
}
END_TEST

START_TEST(test_check_path)
{
    char roots[PATH_MAX];
    snprintf(roots, sizeof roots, "%s/A", s_dir);
    char *cfg = s_write_config("node.yaml", roots, 1, NULL);
    char args[8192], *out = NULL, *err = NULL;

    snprintf(args, sizeof args, "check-path --config '%s' '%s/media/drums/kick.wav' '%s\\media\\keys.wav' '%s/A'", cfg,
             s_studio, s_drive, s_dir);
    ck_assert_int_eq(s_stemfarm(args, &out, &err), 0);
    char want[PATH_MAX * 4];
    snprintf(want, sizeof want,
             "%s/media/drums/kick.wav -> %s/A/media/drums/kick.wav: ok\n"
             "%s\\media\\keys.wav -> %s/A/media/keys.wav: ok\n"
             "%s/A -> %s/A: ok\n",
             s_studio, s_dir, s_drive, s_dir, s_dir, s_dir);
    ck_assert_str_eq(out, want);
    free(out);
    free(err);

    /* one line per path, whatever each one's fate; exit 1 if any cannot be read */
    snprintf(args, sizeof args,
             "check-path --config '%s' '%s/media/nope.wav' '%s/other/readme.txt' 'Q:\\x.wav' '%s/../etc/passwd' "
             "'%s/media/keys.wav'",
             cfg, s_studio, s_dir, s_studio, s_studio);
    ck_assert_int_eq(s_stemfarm(args, &out, &err), 1);
    snprintf(want, sizeof want,
             "%s/media/nope.wav -> %s/A/media/nope.wav: not found\n"
             "%s/other/readme.txt -> %s/other/readme.txt: '%s/other/readme.txt' is outside the media roots ('%s/A')\n"
             "Q:\\x.wav -> (not mapped): no path_map rule maps 'Q:\\x.wav': a Windows path cannot be opened on this "
             "machine; add a rule to the config, e.g. {from: 'Q:\\', to: /where/it/is/mounted}\n"
             "%s/../etc/passwd -> (not mapped): '%s/../etc/passwd' climbs above '%s/A' with '..' (the path_map rule "
             "for '%s' maps no higher)\n"
             "%s/media/keys.wav -> %s/A/media/keys.wav: ok\n",
             s_studio, s_dir, s_dir, s_dir, s_dir, s_dir, s_studio, s_studio, s_dir, s_studio, s_studio, s_dir);
    ck_assert_str_eq(out, want);
    free(out);
    free(err);

    /* usage and config errors: exit 2 */
    static const char *const usage[] = {"check-path '/x'", "check-path --config", "check-path --bogus x"};
    for (size_t i = 0; i < sizeof usage / sizeof *usage; i++) {
        ck_assert_msg(s_stemfarm(usage[i], NULL, &err) == 2, "%s: %s", usage[i], err);
        free(err);
    }
    snprintf(args, sizeof args, "check-path --config '%s'", cfg);
    ck_assert_int_eq(s_stemfarm(args, NULL, &err), 2);
    ck_assert_msg(strstr(err, "needs at least one path"), "%s", err);
    free(err);
    free(cfg);
}
END_TEST

START_TEST(test_bad_config_exit_2_everywhere)
{
    char *bad = tu_write_text(s_dir, "bad.yaml",
                              "media_roots: [/mnt/media]\npath_map:\n  - from: Volumes/Media\n    to: /mnt/media\n");
    char want[PATH_MAX + 128];
    snprintf(want, sizeof want, "%s:3:11: error: 'from' path 'Volumes/Media' is not absolute", bad);
    char *session = s_write_session("studio/session.yaml", "../A/media");
    char args[8192], *err = NULL;
    const char *const forms[] = {"check-path --config '%s' /x", "validate '%s' --config '%s'",
                                 "render '%s' --config '%s' --nodes 1",
                                 "coordinator --bind tcp://127.0.0.1:1 --config '%s'"};
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        if (i == 0 || i == 3)
            snprintf(args, sizeof args, forms[i], bad);
        else
            snprintf(args, sizeof args, forms[i], session, bad);
        ck_assert_msg(s_stemfarm(args, NULL, &err) == 2, "%s: %s", args, err);
        ck_assert_msg(strstr(err, want), "%s: stderr lacks \"%s\":\n%s", args, want, err);
        free(err);
    }
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' --connect tcp://127.0.0.1:1 --config '%s'", tu_node_bin(), bad);
    ck_assert_int_eq(tu_run(cmd, NULL, &err, 60), 2);
    ck_assert_msg(strstr(err, want), "stderr lacks \"%s\":\n%s", want, err);
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' --connect tcp://127.0.0.1:1 --config '%s/missing.yaml'", tu_node_bin(), s_dir);
    ck_assert_int_eq(tu_run(cmd, NULL, &err, 60), 2);
    ck_assert_msg(strstr(err, "missing.yaml': no such file or directory"), "%s", err);
    free(err);
    free(bad);
    free(session);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("pathmap_farm");
    TCase *tc = tcase_create("end_to_end");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_mapped_farm_renders_the_plain_bytes);
    tcase_add_test(tc, test_node_outside_media_roots_fails_the_render);
    tcase_add_test(tc, test_node_without_a_rule_for_a_windows_path);
    tcase_add_test(tc, test_check_path);
    tcase_add_test(tc, test_bad_config_exit_2_everywhere);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(s_suite()); }
