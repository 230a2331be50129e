/* events.c -- progress and results for people and pipelines (see events.h). */
#include "events.h"

#include "sf/clock.h"

#include "report.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void events_init(events_t *ev, bool json)
{
    ev->json = json;
    ev->tty = !json && isatty(STDERR_FILENO);
    ev->started_s = sf_clock_s();
    ev->exit_code = 3;
    ev->done = false;
    ev->last_percent = -1;
}

static void s_json_line(json_t *obj)
{
    if (!obj)
        return;
    json_dumpf(obj, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    fflush(stdout);
    json_decref(obj);
}

static const char *s_kind_name(dispatch_event_kind_t k)
{
    switch (k) {
    case DISPATCH_EV_STARTED: return "started";
    case DISPATCH_EV_PROGRESS: return "progress";
    case DISPATCH_EV_NODE: return "node";
    case DISPATCH_EV_DONE: return "done";
    }
    return "?";
}

static void s_bar(events_t *ev, const dispatch_event_t *e)
{
    int percent = e->jobs_total ? (int)(100 * e->jobs_done / e->jobs_total) : 0;
    if (percent == ev->last_percent && e->kind == DISPATCH_EV_PROGRESS)
        return;
    ev->last_percent = percent;
    char bar[31];
    int filled = percent * 30 / 100;
    for (int i = 0; i < 30; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r%3d%% [%s] %llu/%llu jobs, %u nodes, %.1f s ", percent, bar, (unsigned long long)e->jobs_done,
            (unsigned long long)e->jobs_total, e->nodes, sf_clock_s() - ev->started_s);
    fflush(stderr);
}

/* A level for the table: "-inf" for silence (null in the manifest). */
static void s_level(char *buf, size_t n, const json_t *v)
{
    if (json_is_number(v))
        snprintf(buf, n, "%.2f", json_number_value(v));
    else
        snprintf(buf, n, "-inf");
}

/* The deliverables at a glance, from the manifest just written: what a
 * person checks before sending files on; report.html has the rest. */
static void s_summary(const char *manifest_path)
{
    json_t *m = json_load_file(manifest_path, 0, NULL);
    json_t *files = json_object_get(m, "files");
    if (!json_is_array(files)) {
        json_decref(m);
        return;
    }
    int width = 4;
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        const char *name = json_string_value(json_object_get(f, "file"));
        if (name && (int)strlen(name) > width)
            width = (int)strlen(name);
    }
    printf("%-*s  %-10s %-6s %9s %9s %7s %6s  %s\n", width, "file", "role", "layout", "peak dBFS", "TP dBTP", "LUFS",
           "LRA", "checks");
    json_array_foreach(files, i, f)
    {
        char peak[32], tp[32], lufs[32], lra[32], checks[64];
        s_level(peak, sizeof peak, json_object_get(f, "peak_dbfs"));
        s_level(tp, sizeof tp, json_object_get(f, "true_peak_dbtp"));
        s_level(lufs, sizeof lufs, json_object_get(f, "integrated_lufs"));
        s_level(lra, sizeof lra, json_object_get(f, "loudness_range_lu"));
        int n_pass = 0, n_warn = 0;
        size_t k;
        json_t *c;
        json_array_foreach(json_object_get(f, "checks"), k, c)
        {
            const char *result = json_string_value(json_object_get(c, "result"));
            n_pass += result && !strcmp(result, "pass");
            n_warn += result && !strcmp(result, "warn");
        }
        snprintf(checks, sizeof checks, n_warn ? "%d pass, %d warn" : "%d pass", n_pass, n_warn);
        printf("%-*s  %-10s %-6s %9s %9s %7s %6s  %s\n", width, json_string_value(json_object_get(f, "file")),
               json_string_value(json_object_get(f, "role")), json_string_value(json_object_get(f, "layout")), peak, tp,
               lufs, lra, checks);
    }
    json_decref(m);
    char report[PATH_MAX];
    snprintf(report, sizeof report, "%s", manifest_path);
    char *slash = strrchr(report, '/');
    snprintf(slash ? slash + 1 : report, sizeof report - (size_t)(slash ? slash + 1 - report : 0), "%s", REPORT_NAME);
    printf("report: %s\n", report);
}

void events_on_dispatch(void *ctx, const dispatch_event_t *e)
{
    events_t *ev = ctx;
    double elapsed = sf_clock_s() - ev->started_s;
    if (ev->json) {
        json_t *obj =
            json_pack("{s:s, s:I, s:I, s:i, s:f}", "event", s_kind_name(e->kind), "jobs_done", (json_int_t)e->jobs_done,
                      "jobs_total", (json_int_t)e->jobs_total, "nodes", (int)e->nodes, "elapsed_s", elapsed);
        if (obj && e->message)
            json_object_set_new(obj, "message", json_string(e->message));
        if (obj && e->kind == DISPATCH_EV_DONE) {
            json_object_set_new(obj, "exit_code", json_integer(e->exit_code));
            if (e->manifest_path)
                json_object_set_new(obj, "manifest", json_string(e->manifest_path));
        }
        s_json_line(obj);
    } else if (ev->tty && e->kind != DISPATCH_EV_DONE) {
        s_bar(ev, e);
    }
    if (e->kind != DISPATCH_EV_DONE)
        return;
    ev->done = true;
    ev->exit_code = e->exit_code;
    if (ev->json)
        return;
    if (ev->tty)
        fputc('\n', stderr);
    if (e->exit_code == 0) {
        printf("delivered %llu jobs in %.2f s; manifest: %s\n", (unsigned long long)e->jobs_total, elapsed,
               e->manifest_path ? e->manifest_path : "");
        if (e->manifest_path)
            s_summary(e->manifest_path);
    } else if (e->exit_code == 2 && e->message && strstr(e->message, ": error: "))
        fprintf(stderr, "%s\n", e->message); /* session diagnostics, already one per line */
    else
        fprintf(stderr, "stemfarm: error: %s\n", e->message ? e->message : "render failed");
    fflush(stdout);
}
