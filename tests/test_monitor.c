/* test_monitor.c -- the coordinator's metrics, status and dashboard, with
 * real processes on 127.0.0.1: curl of /metrics during a render shows the
 * counters moving, /status.json names the nodes and the session, and the
 * dashboard loads in headless Chromium without a console error, showing
 * the nodes and the session's progress. */
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *s_dir;
static char s_farm[64], s_http[64];
static pid_t s_coord, s_nodes[2], s_render;

static void setup(void)
{
    s_dir = tu_tmpdir();
    char cmd[4096], *err = NULL;
    snprintf(cmd, sizeof cmd, "'%s' bench '%s/bench' --tracks 8 --seconds 60 --stems 4", tu_gen_bin(), s_dir);
    ck_assert_msg(tu_run(cmd, NULL, &err, 120) == 0, "%s", err);
    free(err);
    snprintf(s_farm, sizeof s_farm, "tcp://127.0.0.1:%d", tu_free_port());
    snprintf(s_http, sizeof s_http, "127.0.0.1:%d", tu_free_port());
    char log[4200], state[4200];
    snprintf(log, sizeof log, "%s/farm.log", s_dir);
    snprintf(state, sizeof state, "%s/state", s_dir);
    s_coord = tu_spawn((char *const[]){(char *)tu_stemfarm_bin(), "coordinator", "--bind", s_farm, "--state", state,
                                       "--http", s_http, NULL},
                       log);
    const char *names[2] = {"node-a", "node-b"};
    for (int i = 0; i < 2; i++)
        s_nodes[i] = tu_spawn((char *const[]){(char *)tu_node_bin(), "--connect", s_farm, "--threads", "1", "--name",
                                              (char *)names[i], NULL},
                              log);
    /* quarter-second segments: 1200 jobs, long enough to watch */
    char session[4200], out[4200];
    snprintf(session, sizeof session, "%s/bench/session.yaml", s_dir);
    snprintf(out, sizeof out, "%s/out", s_dir);
    s_render = tu_spawn((char *const[]){(char *)tu_stemfarm_bin(), "render", session, "--farm", s_farm, "-o", out,
                                        "--segment", "0.25s", "--json", NULL},
                        log);
}

static void teardown(void)
{
    if (s_render > 0)
        tu_stop(s_render);
    tu_stop(s_nodes[0]);
    tu_stop(s_nodes[1]);
    tu_stop(s_coord);
    tu_rm_rf(s_dir);
    free(s_dir);
}

/* curl of a path: its body, and the HTTP status in *http_code (0 when
 * nothing answered: the coordinator may still be starting). */
static char *s_get(const char *path, int *http_code)
{
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof cmd, "curl -s -w '\\n%%{http_code}' 'http://%s%s'", s_http, path);
    int rc = tu_run(cmd, &out, NULL, 30);
    char *last = out ? strrchr(out, '\n') : NULL;
    *http_code = rc == 0 && last ? atoi(last + 1) : 0;
    if (last)
        *last = '\0';
    return out ? out : strdup("");
}

/* The value of a metric line "NAME VALUE" (NAME with its labels), or -1. */
static double s_metric(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, name, n) && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

/* Polls /metrics until NAME reaches at least `value` (30 s at most). */
static char *s_metrics_when(const char *name, double value)
{
    for (int i = 0; i < 300; i++) {
        int code = 0;
        char *text = s_get("/metrics", &code);
        if (code == 200 && s_metric(text, name) >= value)
            return text;
        free(text);
        tu_sleep_ms(100);
    }
    ck_abort_msg("%s never reached %g", name, value);
    return NULL;
}

START_TEST(test_metrics_move_during_a_render)
{
    char *first = s_metrics_when("stemfarm_jobs_done_total", 20);
    double done1 = s_metric(first, "stemfarm_jobs_done_total"),
           audio1 = s_metric(first, "stemfarm_audio_seconds_rendered_total");
    /* both nodes, busy or idle: they may join a moment apart */
    double nodes = 0;
    for (int i = 0; i < 100 && nodes != 2; i++) {
        int code = 0;
        char *text = s_get("/metrics", &code);
        nodes = s_metric(text, "stemfarm_nodes{state=\"busy\"}") + s_metric(text, "stemfarm_nodes{state=\"idle\"}");
        free(text);
        if (nodes != 2)
            tu_sleep_ms(100);
    }
    ck_assert_msg(nodes == 2, "%g nodes in the metrics", nodes);
    ck_assert_msg(s_metric(first, "stemfarm_renders") == 1 && s_metric(first, "stemfarm_jobs{state=\"queued\"}") > 0,
                  "%s", first);
    ck_assert_msg(strstr(first, "# TYPE stemfarm_segment_latency_seconds histogram") &&
                      s_metric(first, "stemfarm_segment_latency_seconds_bucket{le=\"+Inf\"}") >= done1,
                  "%s", first);
    char *second = s_metrics_when("stemfarm_jobs_done_total", done1 + 100);
    ck_assert_msg(s_metric(second, "stemfarm_audio_seconds_rendered_total") > audio1 &&
                      s_metric(second, "stemfarm_bytes_received_total") >
                          s_metric(first, "stemfarm_bytes_received_total"),
                  "%s", second);

    int code = 0;
    char *status = s_get("/status.json", &code);
    ck_assert_int_eq(code, 200);
    ck_assert_msg(strstr(status, "\"name\":\"node-a\"") && strstr(status, "\"name\":\"node-b\"") &&
                      strstr(status, "\"session\":\"Bench 8x60s\"") && strstr(status, "\"jobs_total\":1200"),
                  "%s", status);
    free(status);
    char *missing = s_get("/nope", &code);
    ck_assert_int_eq(code, 404);
    free(missing);

    ck_assert_int_eq(tu_wait(s_render, 120000), 0);
    s_render = -1;
    char *last = s_metrics_when("stemfarm_renders_finished_total{outcome=\"delivered\"}", 1);
    ck_assert_msg(s_metric(last, "stemfarm_segments_landed_total") == 1200 && s_metric(last, "stemfarm_renders") == 0,
                  "%s", last);
    free(first);
    free(second);
    free(last);
}
END_TEST

START_TEST(test_the_dashboard_in_headless_chromium)
{
    free(s_metrics_when("stemfarm_jobs_done_total", 20));
    char cmd[8192], *dom = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd,
             "chromium --headless --no-sandbox --disable-gpu --enable-logging=stderr --v=0 "
             "--virtual-time-budget=3000 --dump-dom 'http://%s/'",
             s_http);
    int rc = tu_run(cmd, &dom, &err, 120);
    ck_assert_msg(rc == 0, "chromium exited %d: %s", rc, err);
    ck_assert_msg(!strstr(err, "CONSOLE") && !strstr(err, "Uncaught"), "console messages: %s", err);
    /* filled from /status.json: both nodes, the session with a progress bar, no error line */
    ck_assert_msg(strstr(dom, "node-a") && strstr(dom, "node-b") && strstr(dom, "Bench 8x60s") &&
                      strstr(dom, "class=\"bar\"><div style=\"width: ") && strstr(dom, "<div id=\"error\"></div>"),
                  "%s", dom);
    free(dom);
    free(err);
    char png[4200];
    snprintf(png, sizeof png, "%s/dashboard.png", s_dir);
    snprintf(cmd, sizeof cmd,
             "chromium --headless --no-sandbox --disable-gpu --virtual-time-budget=2000 --window-size=1280,800 "
             "--screenshot='%s' 'http://%s/'",
             png, s_http);
    ck_assert_int_eq(tu_run(cmd, NULL, NULL, 120), 0);
    size_t n = 0;
    char *bytes = tu_slurp(png, &n);
    ck_assert_msg(bytes && n > 10000 && !memcmp(bytes, "\x89PNG", 4), "no screenshot (%zu bytes)", n);
    free(bytes);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("monitor");
    TCase *tc = tcase_create("http");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_metrics_move_during_a_render);
    tcase_add_test(tc, test_the_dashboard_in_headless_chromium);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
