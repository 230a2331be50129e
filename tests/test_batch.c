/* test_batch.c -- `stemfarm batch` with real processes and real files.
 *
 * A catalogue of eleven sessions (ten good, one invalid) is bounced,
 * interrupted with SIGINT, resumed (while the media of one session vanishes
 * under it), and run a third time with the media back. What is checked is
 * what an archive operator relies on: exactly the right sessions rendered,
 * skipped, failed and reported invalid in each run; no file that looks
 * finished in a folder whose render was stopped; exit codes; every JSON
 * event valid against docs/batch-events.schema.json; the per-session log;
 * and the progress display under a pseudo-terminal.
 */
#include "testutil.h"

#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_GOOD 10

static char *s_dir;

/* Ten sessions over one bench media folder; the tenth reads its own copy
 * (media-v), which the test takes away. */
static void setup(void)
{
    s_dir = tu_tmpdir();
    char cmd[8192], *err = NULL;
    snprintf(cmd, sizeof cmd,
             "'%s' bench '%s/bench' --tracks 4 --seconds 60 --stems 2 && cp -r '%s/bench/media' '%s/media-v' && "
             "mkdir -p '%s/cat'",
             tu_gen_bin(), s_dir, s_dir, s_dir, s_dir);
    ck_assert_msg(tu_run(cmd, NULL, &err, 120) == 0, "%s", err);
    free(err);
    for (int i = 1; i <= N_GOOD; i++) {
        snprintf(cmd, sizeof cmd,
                 "sed 's/name: Bench 4x60s/name: Song %02d/; s|media_root: media|media_root: ../%s|; "
                 "s/gain_db: -7.0/gain_db: -%d.0/' '%s/bench/session.yaml' > '%s/cat/song%02d.yaml'",
                 i, i == N_GOOD ? "media-v" : "bench/media", i, s_dir, s_dir, i);
        ck_assert_int_eq(tu_run(cmd, NULL, NULL, 30), 0);
    }
    free(tu_write_text(s_dir, "cat/broken.yaml",
                       "version: 1\nsession: {name: Broken, sample_rate: 48000}\n"
                       "tracks:\n  - {name: A, source: a.wav, gian_db: 3}\nstems:\n  - {name: S, tracks: [A]}\n"));
    /* song10 last of all (its own entry, lowest priority); the folder for the rest */
    free(tu_write_text(s_dir, "catalogue.yaml",
                       "version: 1\nsessions:\n"
                       "  - path: cat/song10.yaml\n    output: out/{file}\n    priority: -10\n"
                       "  - path: cat\n    output: out/{file}\n"));
}

static void teardown(void)
{
    tu_rm_rf(s_dir);
    free(s_dir);
}

/* Starts `stemfarm batch` with stdout (the events) and stderr apart. */
static pid_t s_batch(const char *events, const char *extra)
{
    char cmd[8192];
    snprintf(
        cmd, sizeof cmd,
        "cd '%s' && exec '%s' batch catalogue.yaml --json --in-flight 1 --nodes 2 --threads 1 %s > '%s' 2> '%s.err'",
        s_dir, tu_stemfarm_bin(), extra, events, events);
    return tu_spawn((char *const[]){"/bin/sh", "-c", cmd, NULL}, NULL);
}

static int s_count(const char *path, const char *text)
{
    char *all = tu_slurp(path, NULL);
    int n = 0;
    for (const char *p = all; p && (p = strstr(p, text)); p++)
        n++;
    free(all);
    return n;
}

/* Waits until `text` is in the file `count` times (60 s at most). */
static void s_wait_for(const char *path, const char *text, int count, pid_t batch)
{
    for (int i = 0; i < 6000 && s_count(path, text) < count; i++) {
        ck_assert_msg(tu_wait(batch, 0) == -2, "the batch ended before '%s' x%d", text, count);
        tu_sleep_ms(10);
    }
    ck_assert_int_ge(s_count(path, text), count);
}

/* "song03 song07 " : the sessions (by file) that have `event` in the
 * events file, in catalogue-file order. */
static void s_sessions_with(const char *events, const char *event, char *out, size_t n)
{
    out[0] = '\0';
    char *all = tu_slurp(events, NULL);
    ck_assert_ptr_nonnull(all);
    for (int i = 1; i <= N_GOOD + 1; i++) {
        char file[64], name[64];
        if (i <= N_GOOD)
            snprintf(file, sizeof file, "/cat/song%02d.yaml\"", i);
        else
            snprintf(file, sizeof file, "/cat/broken.yaml\"");
        snprintf(name, sizeof name, "%s", i <= N_GOOD ? file + 5 : "broken");
        name[6] = 0;
        for (char *line = all; line && *line;) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            bool hit = strstr(line, event) && strstr(line, file);
            if (nl)
                *nl = '\n';
            if (hit) {
                strncat(out, name, n - strlen(out) - 1);
                strncat(out, " ", n - strlen(out) - 1);
                break;
            }
            line = nl ? nl + 1 : NULL;
        }
    }
    free(all);
}

static void s_assert_schema(const char *events)
{
    char cmd[8192], *out = NULL;
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/validate_events.py' '%s/docs/batch-events.schema.json' '%s'",
             getenv("STEMFARM_SOURCE_DIR"), getenv("STEMFARM_SOURCE_DIR"), events);
    int rc = tu_run(cmd, &out, NULL, 60);
    ck_assert_msg(rc == 0, "events do not match the schema:\n%s", out);
    free(out);
}

/* Nothing that looks delivered in the folder of a render that did not end. */
static void s_assert_nothing_finished(const char *song)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/out/%s", s_dir, song);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        bool finished = (len > 4 && !strcmp(e->d_name + len - 4, ".wav")) || !strcmp(e->d_name, "manifest.json") ||
                        !strcmp(e->d_name, "SHA256SUMS") || strstr(e->d_name, ".partial");
        ck_assert_msg(!finished, "'%s/%s' left behind by a stopped render", path, e->d_name);
    }
    closedir(d);
}

START_TEST(test_a_catalogue_is_bounced_interrupted_resumed_and_nothing_is_done_twice)
{
    char ev1[4096], ev2[4096], ev3[4096];
    snprintf(ev1, sizeof ev1, "%s/run1.jsonl", s_dir);
    snprintf(ev2, sizeof ev2, "%s/run2.jsonl", s_dir);
    snprintf(ev3, sizeof ev3, "%s/run3.jsonl", s_dir);

    /* Run 1: stopped by SIGINT once three sessions are delivered. */
    pid_t b = s_batch(ev1, "");
    s_wait_for(ev1, "\"session_delivered\"", 3, b);
    kill(b, SIGINT);
    int rc = tu_wait(b, 60000);
    char *err = tu_slurp(strcat(strcpy((char[4200]){0}, ev1), ".err"), NULL);
    ck_assert_msg(rc == 1, "run 1 exited %d: %s", rc, err);
    free(err);
    s_assert_schema(ev1);
    char delivered1[512], invalid1[512], stopped_any[512];
    s_sessions_with(ev1, "\"session_delivered\"", delivered1, sizeof delivered1);
    s_sessions_with(ev1, "\"session_invalid\"", invalid1, sizeof invalid1);
    ck_assert_str_eq(invalid1, "broken ");
    ck_assert_msg(s_count(ev1, "\"session_delivered\"") >= 3 && s_count(ev1, "\"session_delivered\"") < N_GOOD,
                  "run 1 delivered: %s", delivered1);
    ck_assert_msg(strstr(delivered1, "song01 song02 song03"), "in catalogue order: %s", delivered1);
    ck_assert_msg(s_count(ev1, "\"state\":\"stopped\"") >= 1, "nothing stopped in run 1");
    s_sessions_with(ev1, "\"state\":\"stopped\"", stopped_any, sizeof stopped_any);
    ck_assert_msg(strstr(stopped_any, "song10"), "song10 (lowest priority) ran before the stop: %s", stopped_any);
    for (int i = 1; i <= N_GOOD; i++) {
        char song[16];
        snprintf(song, sizeof song, "song%02d", i);
        if (!strstr(delivered1, song))
            s_assert_nothing_finished(song);
    }

    /* Run 2: the delivered ones are skipped; song10's media vanishes once
     * the run has planned it; it fails, and only it. */
    b = s_batch(ev2, "--log batch.log");
    s_wait_for(ev2, "\"session_delivered\"", 1, b);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mv '%s/media-v' '%s/media-gone'", s_dir, s_dir);
    ck_assert_int_eq(tu_run(cmd, NULL, NULL, 30), 0);
    rc = tu_wait(b, 120000);
    ck_assert_int_eq(rc, 1);
    s_assert_schema(ev2);
    char skipped2[512], planned2[512], delivered2[512], failed2[512], invalid2[512];
    s_sessions_with(ev2, "\"session_skipped\"", skipped2, sizeof skipped2);
    s_sessions_with(ev2, "\"session_planned\"", planned2, sizeof planned2);
    s_sessions_with(ev2, "\"session_delivered\"", delivered2, sizeof delivered2);
    s_sessions_with(ev2, "\"session_failed\"", failed2, sizeof failed2);
    s_sessions_with(ev2, "\"session_invalid\"", invalid2, sizeof invalid2);
    ck_assert_str_eq(skipped2, delivered1);
    ck_assert_str_eq(failed2, "song10 ");
    ck_assert_str_eq(invalid2, "broken ");
    for (int i = 1; i <= N_GOOD; i++) {
        char song[16];
        snprintf(song, sizeof song, "song%02d ", i);
        bool before = strstr(delivered1, song) != NULL;
        ck_assert_msg(before != (strstr(planned2, song) != NULL), "%s: skipped and planned, or neither", song);
        if (i < N_GOOD)
            ck_assert_msg(before != (strstr(delivered2, song) != NULL), "%s: delivered twice or never", song);
    }
    char *events = tu_slurp(ev2, NULL);
    ck_assert_msg(strstr(events, "media-v/t00") && strstr(events, "\"exit_code\":1"), "song10's failure: %s", events);
    free(events);
    /* the log of a session rendered in this run, beside its deliverables */
    char log_path[4200];
    snprintf(log_path, sizeof log_path, "%s/out/song09/batch.log", s_dir);
    char *log = tu_slurp(log_path, NULL);
    ck_assert_msg(log && strstr(log, "started") && strstr(log, "18/18 jobs") && strstr(log, "delivered: "), "%s",
                  log ? log : "no log");
    free(log);

    /* Run 3, under a pseudo-terminal: the media is back; only song10 is
     * rendered, with the live display; the rest is skipped. */
    snprintf(cmd, sizeof cmd, "mv '%s/media-gone' '%s/media-v'", s_dir, s_dir);
    ck_assert_int_eq(tu_run(cmd, NULL, NULL, 30), 0);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && script -qfec \"'%s' batch catalogue.yaml --nodes 2 --threads 1\" /dev/null > '%s' 2>&1", s_dir,
             tu_stemfarm_bin(), ev3);
    rc = tu_run(cmd, NULL, NULL, 120);
    char *screen = tu_slurp(ev3, NULL);
    ck_assert_msg(rc == 1, "run 3 exited %d: %s", rc, screen);
    ck_assert_msg(strstr(screen, "\033[2Kbatch ") && strstr(screen, "audio-h") && strstr(screen, "x realtime") &&
                      strstr(screen, "ETA ") && strstr(screen, "Song 10"),
                  "no progress display: %s", screen);
    ck_assert_msg(strstr(screen, "11 sessions: 1 delivered, 9 skipped, 0 failed, 1 invalid"), "%s", screen);
    free(screen);
}
END_TEST

START_TEST(test_catalogue_errors_are_reported_at_once_with_positions)
{
    free(tu_write_text(s_dir, "bad.yaml",
                       "version: 1\nsessions:\n"
                       "  - path: cat/nothing-*.yaml\n"
                       "  - path: cat/song01.yaml\n    output: out/{name}\n"
                       "  - path: cat/song02.yaml\n    profile: loud\n    priority: 500\n"
                       "  - path: cat/song03.yaml\n    colour: red\n"
                       "  - path: cat/song03.yaml\n"));
    char cmd[8192], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' batch bad.yaml", s_dir, tu_stemfarm_bin());
    ck_assert_int_eq(tu_run(cmd, &out, &err, 60), 2);
    static const char *const want[] = {
        "bad.yaml:3:11: error: 'cat/nothing-*.yaml' matches no session file",
        "bad.yaml:5:13: error: unknown placeholder '{name}' in output 'out/{name}' (expected {session}, {file})",
        "bad.yaml:7:14: error: unknown profile 'loud'",
        "bad.yaml:8:15: error: 'priority' must be a whole number from -100 to 100, not '500'",
        "bad.yaml:10:5: error: unknown key 'colour' in entry 4 of 'sessions'",
        "bad.yaml:11:11: error: session 'cat/song03.yaml' is listed twice (first by the entry at line 9)",
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        ck_assert_msg(strstr(err, want[i]), "missing: %s\nstderr: %s", want[i], err);
    ck_assert_str_eq(out, "");
    ck_assert(!tu_exists(strcat(strcpy((char[4200]){0}, s_dir), "/out")));
    free(out);
    free(err);

    free(tu_write_text(s_dir, "empty.yaml", "# nothing yet\n"));
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' batch missing.yaml; '%s' batch catalogue.yaml --log ../x; '%s' batch empty.yaml", s_dir,
             tu_stemfarm_bin(), tu_stemfarm_bin(), tu_stemfarm_bin());
    ck_assert_int_eq(tu_run(cmd, &out, &err, 60), 2);
    ck_assert_msg(strstr(err, "cannot open 'missing.yaml': no such file or directory") &&
                      strstr(err, "--log takes a file name") &&
                      strstr(err, "empty.yaml: error: the catalogue is empty (expected version: 1 and sessions)"),
                  "%s", err);
    free(out);
    free(err);
}
END_TEST

START_TEST(test_dry_run_plans_and_renders_nothing)
{
    char cmd[8192], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' batch catalogue.yaml --dry-run", s_dir, tu_stemfarm_bin());
    ck_assert_int_eq(tu_run(cmd, &out, &err, 120), 1); /* broken.yaml is invalid */
    ck_assert_msg(strstr(err, "11 sessions: 10 to render (0.33 audio-hours") && strstr(err, "0 skipped, 1 invalid"),
                  "%s", err);
    ck_assert_msg(strstr(err, "broken.yaml:4:") && strstr(err, "gian_db"), "%s", err);
    ck_assert_msg(strstr(err, "estimate: ") && strstr(err, "of rendering on this machine"), "%s", err);
    ck_assert_msg(strstr(out, "batch (dry run): 11 sessions: 10 to render, 0 skipped, 1 invalid"), "%s", out);
    ck_assert(!tu_exists(strcat(strcpy((char[4200]){0}, s_dir), "/out")));
    free(out);
    free(err);

    /* plan: the work and the estimate, for people and for scripts */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' plan cat/song01.yaml && '%s' plan cat/song01.yaml --json", s_dir,
             tu_stemfarm_bin(), tu_stemfarm_bin());
    ck_assert_int_eq(tu_run(cmd, &out, &err, 120), 0);
    ck_assert_msg(strstr(out, "work: 120.000 audio-seconds delivered") && strstr(out, "estimate: ") &&
                      strstr(out, "on this machine (a calibration render of") &&
                      strstr(out, "\"estimate\":{\"machine_s\":"),
                  "%s", out);
    free(out);
    free(err);
}
END_TEST

/* The same catalogue through a running coordinator and two node
 * processes: delivered there, skipped on the second run; the dry run
 * counts the farm's nodes. */
START_TEST(test_a_catalogue_through_a_farm)
{
    free(tu_write_text(s_dir, "small.yaml",
                       "version: 1\nsessions:\n  - path: cat/song0[1-3].yaml\n    output: farm/{session}\n"));
    char endpoint[64], log[4200], state[4200];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", tu_free_port());
    snprintf(log, sizeof log, "%s/coordinator.log", s_dir);
    snprintf(state, sizeof state, "%s/state", s_dir);
    pid_t coord = tu_spawn(
        (char *const[]){(char *)tu_stemfarm_bin(), "coordinator", "--bind", endpoint, "--state", state, NULL}, log);
    pid_t nodes[2];
    for (int i = 0; i < 2; i++) {
        char name[16];
        snprintf(name, sizeof name, "farm-node-%d", i + 1);
        nodes[i] = tu_spawn(
            (char *const[]){(char *)tu_node_bin(), "--connect", endpoint, "--threads", "1", "--name", name, NULL}, log);
    }
    char cmd[8192], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' batch small.yaml --farm %s", s_dir, tu_stemfarm_bin(), endpoint);
    int rc = tu_run(cmd, &out, &err, 240);
    ck_assert_msg(rc == 0, "exit %d: %s %s", rc, out, err);
    ck_assert_msg(strstr(out, "3 sessions: 3 delivered, 0 skipped"), "%s", out);
    free(out);
    free(err);
    for (int i = 1; i <= 3; i++) {
        char manifest[4200];
        snprintf(manifest, sizeof manifest, "%s/farm/Song %02d/manifest.json", s_dir, i);
        ck_assert_msg(tu_exists(manifest), "%s", manifest);
    }
    rc = tu_run(cmd, &out, &err, 240);
    ck_assert_msg(rc == 0 && strstr(out, "3 sessions: 0 delivered, 3 skipped"), "exit %d: %s", rc, out);
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && touch cat/song02.yaml && sed -i 's/gain_db: -2.0/gain_db: -2.5/' cat/song02.yaml && '%s' "
             "batch small.yaml --farm %s --dry-run",
             s_dir, tu_stemfarm_bin(), endpoint);
    rc = tu_run(cmd, &out, &err, 240);
    ck_assert_msg(rc == 0 && strstr(out, "1 to render, 2 skipped") && strstr(err, "(2 nodes, taken to be as fast"),
                  "exit %d: %s %s", rc, out, err);
    free(out);
    free(err);
    ck_assert_int_eq(tu_stop(coord), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(tu_stop(nodes[i]), 0);

    /* with the coordinator gone: said at once, exit 3, nothing marked delivered */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' batch small.yaml --farm %s", s_dir, tu_stemfarm_bin(), endpoint);
    int64_t t0 = tu_now_ms();
    rc = tu_run(cmd, &out, &err, 120);
    ck_assert_msg(rc == 3 && strstr(out, "not submitted: the coordinator did not answer") &&
                      strstr(err, "did not answer"),
                  "exit %d: %s %s", rc, out, err);
    ck_assert_int_lt(tu_now_ms() - t0, 30000);
    free(out);
    free(err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("batch");
    TCase *tc = tcase_create("catalogues");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_a_catalogue_is_bounced_interrupted_resumed_and_nothing_is_done_twice);
    tcase_add_test(tc, test_catalogue_errors_are_reported_at_once_with_positions);
    tcase_add_test(tc, test_dry_run_plans_and_renders_nothing);
    tcase_add_test(tc, test_a_catalogue_through_a_farm);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
