/* batch.c -- `stemfarm batch` (see batch.h). */

/* qsort_r and realpath: GNU and XSI. */
#define _GNU_SOURCE
#include "batch.h"

#include "catalogue.h"
#include "client.h"
#include "estimate.h"
#include "localfarm.h"
#include "plan.h"
#include "verify.h"

#include "sf/clock.h"
#include "sf/alloc.h"
#include "sf/profile.h"
#include "sf/session.h"
#include "sf/wire.h"
#include "sf/yamldoc.h"

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef enum { BS_INVALID, BS_SKIPPED, BS_QUEUED, BS_RUNNING, BS_DELIVERED, BS_FAILED, BS_STOPPED } bs_state_t;

static const char *const s_state_names[] = {"invalid",   "skipped", "queued", "running",
                                            "delivered", "failed",  "stopped"};

typedef struct batch batch_t;

typedef struct {
    batch_t *b;
    const catalogue_item_t *item;
    char name[256];
    char *out_dir;
    uint8_t *yaml;
    size_t n_yaml;
    char hash_hex[65];
    char profile[32];
    int64_t segment_frames;
    uint64_t jobs_total, jobs_done;
    double audio_s;    /* delivered audio, all stems */
    double preroll_s;  /* rendered and dropped: the price of segments */
    double estimate_s; /* --dry-run: rendering it on this machine (estimate.h) */
    bs_state_t state;
    int exit_code;
    char *message; /* why: invalid, skipped, failed (owned) */
    char *manifest;
    double started_s, ended_s;
    FILE *log;
    uint64_t node_seq; /* the last node event this session passed on */
} bsession_t;

struct batch {
    const batch_options_t *o;
    catalogue_t *cat;
    const char *root;
    bsession_t *s;
    size_t n;
    size_t *order; /* sessions to render, by priority, then catalogue order */
    size_t n_order, next;
    size_t window, in_flight;
    dispatch_t *d; /* embedded */
    double t0, last_draw;
    int drawn_lines;
    bool tty;
    uint64_t node_seq;
    unsigned nodes;       /* as the last event counted them */
    pthread_mutex_t lock; /* --farm: one thread per session in flight */
};

static void s_set_message(bsession_t *s, const char *text)
{
    sf_free(s->message);
    s->message = sf_strdup(text ? text : "");
}

/* ---- events --------------------------------------------------------------- */

/* One JSON object per line; every one carries the schema's fields "event"
 * and "elapsed_s" (docs/batch-events.schema.json). */
static void s_emit(batch_t *b, const char *event, json_t *fields)
{
    if (!b->o->json || !fields) {
        json_decref(fields);
        return;
    }
    json_t *obj = json_pack("{s:s, s:f}", "event", event, "elapsed_s", sf_clock_s() - b->t0);
    if (obj) {
        json_object_update(obj, fields);
        json_dumpf(obj, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        fflush(stdout);
    }
    json_decref(obj);
    json_decref(fields);
}

static json_t *s_session_fields(const bsession_t *s)
{
    return json_pack("{s:s, s:s, s:s*}", "session", s->name, "path", s->item->session_path, "output", s->out_dir);
}

/* A line in the session's --log file (opened once its folder exists). */
__attribute__((format(printf, 2, 3))) static void s_log(bsession_t *s, const char *fmt, ...)
{
    const batch_options_t *o = s->b->o;
    if (!o->log_name || !s->out_dir)
        return;
    if (!s->log) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", s->out_dir, o->log_name);
        if (!(s->log = fopen(path, "a")))
            return; /* the folder does not exist yet: the render makes it */
    }
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(s->log, "%s ", when);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(s->log, fmt, ap);
    va_end(ap);
    fputc('\n', s->log);
    fflush(s->log);
}

/* ---- the progress display ------------------------------------------------- */

static void s_hms(double seconds, char *buf, size_t n)
{
    long t = seconds > 0 ? (long)(seconds + 0.5) : 0;
    snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

/* Overall and per running session: percent, audio-hours, x-realtime,
 * nodes, ETA. Redrawn in place at most 4 times a second; only on a
 * terminal. */
static void s_draw(batch_t *b, unsigned nodes, bool force)
{
    if (!b->tty)
        return;
    double now = sf_clock_s();
    if (!force && now - b->last_draw < 0.25)
        return;
    b->last_draw = now;
    double total = 0, done = 0;
    size_t finished = 0, to_render = 0;
    for (size_t i = 0; i < b->n; i++) {
        const bsession_t *s = &b->s[i];
        if (s->state < BS_QUEUED)
            continue;
        to_render++;
        total += s->audio_s;
        done += s->jobs_total ? s->audio_s * (double)s->jobs_done / (double)s->jobs_total : 0;
        finished += s->state >= BS_DELIVERED;
    }
    double elapsed = now - b->t0, speed = elapsed > 0 ? done / elapsed : 0;
    char eta[32] = "-:--:--";
    if (speed > 0)
        s_hms((total - done) / speed, eta, sizeof eta);
    if (b->drawn_lines)
        fprintf(stderr, "\033[%dA", b->drawn_lines);
    int lines = 0;
    fprintf(stderr, "\033[2Kbatch %3.0f%%  %zu/%zu sessions  %.2f of %.2f audio-h  %.1fx realtime  %u node%s  ETA %s\n",
            total > 0 ? 100.0 * done / total : 100.0, finished, to_render, done / 3600.0, total / 3600.0, speed, nodes,
            nodes == 1 ? "" : "s", eta);
    lines++;
    for (size_t i = 0; i < b->n; i++) {
        const bsession_t *s = &b->s[i];
        if (s->state != BS_RUNNING)
            continue;
        double s_done = s->jobs_total ? s->audio_s * (double)s->jobs_done / (double)s->jobs_total : 0;
        double s_el = now - s->started_s, s_speed = s_el > 0 ? s_done / s_el : 0;
        char s_eta[32] = "-:--:--";
        if (s_speed > 0)
            s_hms((s->audio_s - s_done) / s_speed, s_eta, sizeof s_eta);
        fprintf(stderr, "\033[2K  %-32.32s %3.0f%%  %.2f audio-h  %.1fx realtime  ETA %s\n", s->name,
                s->jobs_total ? 100.0 * (double)s->jobs_done / (double)s->jobs_total : 0.0, s_done / 3600.0, s_speed,
                s_eta);
        lines++;
    }
    for (int i = lines; i < b->drawn_lines; i++) /* sessions that ended: clear their lines */
        fprintf(stderr, "\033[2K\n");
    if (lines < b->drawn_lines)
        fprintf(stderr, "\033[%dA", b->drawn_lines - lines);
    b->drawn_lines = lines;
    fflush(stderr);
}

/* ---- planning ------------------------------------------------------------- */

static void s_profile_line(void *ctx, const char *line)
{
    bsession_t *s = ctx;
    size_t had = s->message ? strlen(s->message) : 0;
    char *grown = sf_realloc(s->message, had + strlen(s->item->session_path) + strlen(line) + 16);
    if (!grown)
        return;
    sprintf(grown + had, "%s%s: error: %s", had ? "\n" : "", s->item->session_path, line);
    s->message = grown;
}

/* Loads, validates and plans one session: its name, folder, work. */
static void s_plan(batch_t *b, bsession_t *s)
{
    const char *path = s->item->session_path;
    sf_err_t err = {0};
    char *text = NULL;
    size_t n = 0;
    if (sf_yamldoc_read_file(path, SF_WIRE_MAX_YAML_BYTES, "session", &text, &n, &err)) {
        s->state = BS_INVALID;
        char line[PATH_MAX + 300];
        snprintf(line, sizeof line, "%s: error: %s", path, err.msg);
        s_set_message(s, line);
        return;
    }
    s->yaml = (uint8_t *)text;
    s->n_yaml = n;
    sf_session_load_opts_t opts = sf_session_load_opts_default();
    opts.pathmap = b->o->pathmap;
    sf_diags_t diags = SF_DIAGS_INIT;
    sf_session_t *session = NULL;
    sf_rc rc = sf_session_load_text(path, text, n, &opts, &session, &diags, &err);
    if (rc) {
        s->state = BS_INVALID;
        char *lines = diags.n_errors ? sf_diags_text(&diags) : NULL;
        if (lines) {
            s_set_message(s, lines);
            free(lines);
        } else {
            char line[PATH_MAX + 300];
            snprintf(line, sizeof line, "%s: error: %s", path, err.msg);
            s_set_message(s, line);
        }
        sf_diags_free(&diags);
        return;
    }
    sf_diags_free(&diags);
    snprintf(s->name, sizeof s->name, "%s", session->name);
    if (s->item->profile) {
        sf_profile_parse(s->item->profile, &session->output.profile); /* the catalogue checked the name */
        if (sf_profile_violations(session, session->output.profile, s_profile_line, s) > 0)
            s->state = BS_INVALID;
    }
    snprintf(s->profile, sizeof s->profile, "%s", sf_profile_name(session->output.profile));
    sf_session_hash_hex(session, s->hash_hex);
    s->out_dir = catalogue_output_dir(s->item, b->root, session->name);
    plan_t *plan = NULL;
    if (s->state != BS_INVALID && plan_make(session, 0, &plan, &err) == SF_OK) {
        s->segment_frames = plan->segment_frames;
        s->jobs_total = plan->n_jobs;
        s->audio_s = (double)plan->output_frames / session->sample_rate;
        int64_t preroll = 0;
        for (size_t j = 0; j < plan->n_jobs; j++)
            preroll += plan->jobs[j].preroll_frames;
        s->preroll_s = (double)preroll / session->sample_rate;
        estimate_t est;
        if (b->o->dry_run && estimate_plan(plan, &est, &err) == SF_OK)
            s->estimate_s = est.machine_s;
        plan_destroy(&plan);
    } else if (s->state != BS_INVALID) {
        s->state = BS_INVALID;
        char line[PATH_MAX + 300];
        snprintf(line, sizeof line, "%s: error: %s", path, err.msg);
        s_set_message(s, line);
    }
    sf_session_destroy(&session);
    if (!s->out_dir && s->state != BS_INVALID) {
        s->state = BS_INVALID;
        s_set_message(s, "out of memory");
    }
}

/* Delivered before with the same session and settings, and still intact? */
static bool s_delivered_before(bsession_t *s, char *why, size_t n_why)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/manifest.json", s->out_dir);
    json_t *m = json_load_file(path, 0, NULL);
    if (!m) {
        snprintf(why, n_why, "not delivered yet");
        return false;
    }
    json_t *render = json_object_get(m, "render");
    const char *hash = json_string_value(json_object_get(json_object_get(m, "session"), "hash"));
    const char *profile = json_string_value(json_object_get(render, "profile"));
    json_int_t segment = json_integer_value(json_object_get(render, "segment_frames"));
    bool same = hash && !strcmp(hash, s->hash_hex) && profile && !strcmp(profile, s->profile) &&
                segment == (json_int_t)s->segment_frames;
    json_decref(m);
    if (!same) {
        snprintf(why, n_why, "changed since its delivery (session, profile or segments): rendered again");
        return false;
    }
    FILE *sink = fopen("/dev/null", "w");
    size_t failed = 0;
    sf_err_t err = {0};
    sf_rc rc = verify_delivery(s->out_dir, sink ? sink : stderr, &failed, &err);
    if (sink)
        fclose(sink);
    if (rc || failed) {
        snprintf(why, n_why, "its delivery does not verify (%s): rendered again",
                 rc ? err.msg : "a file differs from the manifest");
        return false;
    }
    snprintf(why, n_why, "delivered and verified, unchanged");
    return true;
}

/* ---- rendering -------------------------------------------------------------- */

static void s_submit_next(batch_t *b);

static void s_ended(bsession_t *s, const dispatch_event_t *e)
{
    batch_t *b = s->b;
    s->ended_s = sf_clock_s();
    s->exit_code = e->exit_code;
    if (e->exit_code == 0) {
        s->state = BS_DELIVERED;
        s->manifest = sf_strdup(e->manifest_path ? e->manifest_path : "");
        s_log(s, "delivered: %s", s->manifest ? s->manifest : "");
        json_t *f = s_session_fields(s);
        json_object_set_new(f, "manifest", json_string(s->manifest ? s->manifest : ""));
        json_object_set_new(f, "jobs", json_integer((json_int_t)s->jobs_total));
        json_object_set_new(f, "audio_s", json_real(s->audio_s));
        json_object_set_new(f, "wall_s", json_real(s->ended_s - s->started_s));
        s_emit(b, "session_delivered", f);
    } else {
        s->state = BS_FAILED;
        s_set_message(s, e->message ? e->message : "render failed");
        s_log(s, "failed (exit %d): %s", e->exit_code, s->message ? s->message : "");
        json_t *f = s_session_fields(s);
        json_object_set_new(f, "exit_code", json_integer(e->exit_code));
        json_object_set_new(f, "reason", json_string(s->message ? s->message : ""));
        s_emit(b, "session_failed", f);
    }
    if (s->log) {
        fclose(s->log);
        s->log = NULL;
    }
    b->in_flight--;
}

/* A dispatch_event_fn: ctx is the session. */
static void s_on_event(void *ctx, const dispatch_event_t *e)
{
    bsession_t *s = ctx;
    batch_t *b = s->b;
    pthread_mutex_lock(&b->lock);
    switch (e->kind) {
    case DISPATCH_EV_STARTED:
        s_log(s, "render %u started: %llu jobs", e->render_id, (unsigned long long)e->jobs_total);
        break;
    case DISPATCH_EV_PROGRESS:
        if (e->jobs_done > s->jobs_done) {
            s->jobs_done = e->jobs_done;
            json_t *f = json_pack("{s:s, s:I, s:I, s:i}", "session", s->name, "jobs_done", (json_int_t)e->jobs_done,
                                  "jobs_total", (json_int_t)e->jobs_total, "nodes", (int)e->nodes);
            s_emit(b, "job_done", f);
            s_log(s, "%llu/%llu jobs", (unsigned long long)e->jobs_done, (unsigned long long)e->jobs_total);
        }
        break;
    case DISPATCH_EV_NODE:
        if (e->message) {
            s_log(s, "%s", e->message);
            /* the dispatcher tells every render: pass each event on once */
            if (s->node_seq == b->node_seq) {
                b->node_seq++;
                s_emit(b, "node", json_pack("{s:s, s:i}", "message", e->message, "nodes", (int)e->nodes));
            }
            s->node_seq = b->node_seq;
        }
        break;
    case DISPATCH_EV_DONE: s_ended(s, e); break;
    }
    b->nodes = e->nodes;
    s_draw(b, e->nodes, e->kind == DISPATCH_EV_DONE);
    pthread_mutex_unlock(&b->lock);
    if (e->kind == DISPATCH_EV_DONE && b->d)
        s_submit_next(b);
}

static dispatch_request_t s_request(const bsession_t *s)
{
    return (dispatch_request_t){.session_path = s->item->session_path,
                                .yaml = s->yaml,
                                .n_yaml_bytes = s->n_yaml,
                                .out_dir = s->out_dir,
                                .force = true, /* a changed session replaces its earlier delivery */
                                .profile = s->item->profile,
                                .priority = s->item->priority};
}

static void s_started(bsession_t *s)
{
    s->state = BS_RUNNING;
    s->started_s = sf_clock_s();
    s->node_seq = s->b->node_seq;
    s->b->in_flight++;
}

/* Embedded: keeps `window` sessions submitted; called again from each
 * session's end, inside the dispatcher's loop. */
static void s_submit_next(batch_t *b)
{
    while (b->in_flight < b->window && b->next < b->n_order && !atomic_load(b->o->stop)) {
        bsession_t *s = &b->s[b->order[b->next++]];
        s_started(s);
        dispatch_request_t req = s_request(s);
        sf_err_t err = {0};
        if (dispatch_submit(b->d, &req, s_on_event, s, &err)) {
            dispatch_event_t e = {.kind = DISPATCH_EV_DONE, .exit_code = 1, .message = err.msg};
            s_ended(s, &e);
        }
    }
}

static int s_run_embedded(batch_t *b)
{
    dispatch_config_t cfg = {.stop = b->o->stop,
                             .pathmap = b->o->pathmap,
                             /* local nodes are this machine: a session's bad media is no reason to
                              * rest them, and resting them would starve the other sessions */
                             .quarantine_after = INT_MAX};
    localfarm_t *lf = NULL;
    sf_err_t err = {0};
    if (localfarm_new(&cfg, b->o->nodes, b->o->threads, &lf, &err)) {
        fprintf(stderr, "stemfarm: error: %s\n", err.msg);
        return 3;
    }
    b->d = localfarm_dispatcher(lf);
    s_submit_next(b);
    sf_rc rc = b->in_flight ? localfarm_run(lf, &err) : SF_OK;
    b->d = NULL;
    localfarm_destroy(&lf);
    if (rc) {
        fprintf(stderr, "stemfarm: error: %s\n", err.msg);
        return 3;
    }
    return 0;
}

/* --farm: each thread takes the next session and follows its render. */
static void *s_farm_thread(void *arg)
{
    batch_t *b = arg;
    client_config_t c = {.endpoint = b->o->farm, .curve = b->o->curve, .interrupt = b->o->stop, .quiet = true};
    for (;;) {
        pthread_mutex_lock(&b->lock);
        bsession_t *s = b->next < b->n_order && !atomic_load(b->o->stop) ? &b->s[b->order[b->next++]] : NULL;
        if (s)
            s_started(s);
        pthread_mutex_unlock(&b->lock);
        if (!s)
            return NULL;
        char *abs_session = realpath(s->item->session_path, NULL), *abs_out = NULL;
        dispatch_request_t req = s_request(s);
        if (abs_session)
            req.session_path = abs_session;
        if (s->out_dir[0] != '/') {
            char cwd[PATH_MAX];
            if (getcwd(cwd, sizeof cwd) && (abs_out = sf_malloc(strlen(cwd) + strlen(s->out_dir) + 2)))
                sprintf(abs_out, "%s/%s", cwd, s->out_dir);
            req.out_dir = abs_out ? abs_out : s->out_dir;
        }
        int rc = client_render(&c, &req, s_on_event, s);
        free(abs_session);
        sf_free(abs_out);
        pthread_mutex_lock(&b->lock);
        if (s->state == BS_RUNNING) { /* no DONE came: interrupted, or the coordinator is gone */
            s->state = atomic_load(b->o->stop) ? BS_STOPPED : BS_FAILED;
            s->exit_code = rc;
            s_set_message(s, atomic_load(b->o->stop) ? "interrupted: the render goes on at the coordinator"
                                                     : "the coordinator did not answer");
            b->in_flight--;
        }
        pthread_mutex_unlock(&b->lock);
    }
}

static int s_run_farm(batch_t *b)
{
    /* Ask first: a coordinator that does not answer is said once, in
     * seconds, not once per session after each one's silence limit. */
    client_config_t c = {.endpoint = b->o->farm, .curve = b->o->curve, .interrupt = b->o->stop, .quiet = true};
    uint32_t nodes, slots;
    int rc = client_farm_size(&c, &nodes, &slots);
    if (rc) {
        for (size_t i = 0; i < b->n_order; i++) {
            bsession_t *s = &b->s[b->order[i]];
            s->state = BS_FAILED;
            s->exit_code = rc;
            s_set_message(s, "not submitted: the coordinator did not answer");
        }
        return rc;
    }
    pthread_t threads[16];
    size_t n = b->window < 16 ? b->window : 16, started = 0;
    for (size_t i = 0; i < n; i++)
        started += pthread_create(&threads[started], NULL, s_farm_thread, b) == 0;
    for (size_t i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    return started ? 0 : 3;
}

/* The farm at hand: this machine, or the coordinator's nodes taken to be
 * as fast as this machine (their speed is not known here). */
static void s_print_estimate(batch_t *b, double machine_s)
{
    char took[32];
    uint32_t nodes = 1, slots = 0;
    if (b->o->farm) {
        client_config_t c = {.endpoint = b->o->farm, .curve = b->o->curve, .interrupt = b->o->stop, .quiet = true};
        if (client_farm_size(&c, &nodes, &slots) || nodes == 0) {
            if (!b->o->json)
                fprintf(stderr,
                        "estimate: %s of rendering on this machine; the farm at '%s' has no node to ask about\n",
                        (estimate_format(machine_s, took, sizeof took), took), b->o->farm);
            s_emit(b, "estimate", json_pack("{s:f, s:f, s:i}", "machine_s", machine_s, "farm_s", 0.0, "nodes", 0));
            return;
        }
    }
    estimate_format(machine_s / nodes, took, sizeof took);
    if (!b->o->json) {
        if (b->o->farm)
            fprintf(stderr,
                    "estimate: %s of rendering on the farm at '%s' (%u nodes, taken to be as fast as this one)\n", took,
                    b->o->farm, nodes);
        else
            fprintf(stderr, "estimate: %s of rendering on this machine (from a calibration render of each session)\n",
                    took);
    }
    s_emit(b, "estimate",
           json_pack("{s:f, s:f, s:i}", "machine_s", machine_s, "farm_s", machine_s / nodes, "nodes", (int)nodes));
}

/* ---- the whole batch ------------------------------------------------------- */

static int s_by_priority(const void *x, const void *y, void *ctx)
{
    const batch_t *b = ctx;
    size_t i = *(const size_t *)x, k = *(const size_t *)y;
    int pi = b->s[i].item->priority, pk = b->s[k].item->priority;
    if (pi != pk)
        return pi > pk ? -1 : 1;
    return i < k ? -1 : i > k;
}

/* Two sessions must not deliver into one folder. */
static void s_check_folders(batch_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        for (size_t k = 0; k < i; k++) {
            bsession_t *a = &b->s[k], *s = &b->s[i];
            if (s->state == BS_INVALID || a->state == BS_INVALID || strcmp(a->out_dir, s->out_dir) != 0)
                continue;
            char line[2 * PATH_MAX + 200];
            snprintf(line, sizeof line, "%s:%u:%u: error: session '%s' delivers into '%s', as '%s' does", b->cat->path,
                     s->item->line, s->item->column, s->item->session_path, s->out_dir, a->item->session_path);
            s->state = BS_INVALID;
            s_set_message(s, line);
        }
}

static void s_summary(batch_t *b, int exit_code)
{
    size_t count[BS_STOPPED + 1] = {0};
    for (size_t i = 0; i < b->n; i++)
        count[b->s[i].state]++;
    double wall = sf_clock_s() - b->t0;
    if (b->o->json) {
        json_t *sessions = json_array();
        for (size_t i = 0; i < b->n; i++) {
            const bsession_t *s = &b->s[i];
            json_t *f = json_pack("{s:s, s:s, s:s, s:s*, s:s*}", "path", s->item->session_path, "state",
                                  s_state_names[s->state], "session", s->name, "output", s->out_dir, "reason",
                                  s->state == BS_DELIVERED ? NULL : s->message);
            json_array_append_new(sessions, f);
        }
        s_emit(b, "batch_done",
               json_pack("{s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:o}", "exit_code", exit_code, "delivered",
                         (json_int_t)count[BS_DELIVERED], "skipped", (json_int_t)count[BS_SKIPPED], "failed",
                         (json_int_t)count[BS_FAILED], "invalid", (json_int_t)count[BS_INVALID], "stopped",
                         (json_int_t)count[BS_STOPPED], "sessions", (json_int_t)b->n, "wall_s", wall, "by_session",
                         sessions));
        return;
    }
    printf("%-9s  %-28s  %s\n", "state", "session", "output or reason");
    for (size_t i = 0; i < b->n; i++) {
        const bsession_t *s = &b->s[i];
        const char *what = s->state == BS_DELIVERED ? s->out_dir : s->message ? s->message : "";
        const char *nl = strchr(what, '\n');
        printf("%-9s  %-28.28s  %.*s%s\n", s_state_names[s->state], s->name[0] ? s->name : s->item->session_path,
               nl ? (int)(nl - what) : (int)strlen(what), what, nl ? " (...)" : "");
    }
    if (b->o->dry_run)
        printf("batch (dry run): %zu sessions: %zu to render, %zu skipped, %zu invalid\n", b->n, count[BS_QUEUED],
               count[BS_SKIPPED], count[BS_INVALID]);
    else
        printf("batch: %zu sessions: %zu delivered, %zu skipped, %zu failed, %zu invalid, %zu stopped in %.1f s\n",
               b->n, count[BS_DELIVERED], count[BS_SKIPPED], count[BS_FAILED], count[BS_INVALID], count[BS_STOPPED],
               wall);
    fflush(stdout);
}

int batch_run(const batch_options_t *o)
{
    batch_t b = {.o = o, .t0 = sf_clock_s(), .window = o->window > 0 ? (size_t)o->window : 3};
    b.tty = !o->json && !o->dry_run && isatty(STDERR_FILENO);
    pthread_mutex_init(&b.lock, NULL);
    sf_diags_t diags = SF_DIAGS_INIT;
    sf_err_t err = {0};
    sf_rc rc = catalogue_load(o->catalogue, &b.cat, &diags, &err);
    sf_diags_print(&diags, stderr);
    sf_diags_free(&diags);
    if (rc) {
        if (rc != SF_E_INPUT)
            fprintf(stderr, "stemfarm: error: %s\n", err.msg);
        pthread_mutex_destroy(&b.lock);
        return rc == SF_E_NOMEM ? 1 : 2;
    }
    b.root = o->root ? o->root : b.cat->dir;
    b.n = b.cat->n_items;
    b.s = sf_calloc(b.n, sizeof *b.s);
    b.order = sf_calloc(b.n, sizeof *b.order);
    if (!b.s || !b.order) {
        fprintf(stderr, "stemfarm: error: out of memory\n");
        catalogue_destroy(&b.cat);
        return 1;
    }
    s_emit(&b, "batch_started",
           json_pack("{s:s, s:s, s:I, s:s}", "schema", BATCH_EVENTS_SCHEMA, "catalogue", b.cat->path, "sessions",
                     (json_int_t)b.n, "farm", o->farm ? o->farm : "embedded"));
    /* Plan everything first: every invalid session is reported before a
     * single job runs, so a night is not lost to a typo in session 40. */
    for (size_t i = 0; i < b.n; i++) {
        bsession_t *s = &b.s[i];
        s->b = &b;
        s->item = &b.cat->items[i];
        s->state = BS_QUEUED;
        s_plan(&b, s);
    }
    s_check_folders(&b);
    double audio_s = 0, preroll_s = 0, estimate_s = 0;
    size_t n_skipped = 0, n_invalid = 0;
    for (size_t i = 0; i < b.n; i++) {
        bsession_t *s = &b.s[i];
        if (s->state == BS_INVALID) {
            n_invalid++;
            if (!o->json)
                fprintf(stderr, "%s\n", s->message ? s->message : "");
            json_t *f = json_pack("{s:s, s:s}", "path", s->item->session_path, "reason", s->message ? s->message : "");
            s_emit(&b, "session_invalid", f);
            continue;
        }
        char why[PATH_MAX + 200];
        if (s_delivered_before(s, why, sizeof why)) {
            s->state = BS_SKIPPED;
            n_skipped++;
            s_set_message(s, why);
            json_t *f = s_session_fields(s);
            json_object_set_new(f, "reason", json_string(why));
            s_emit(&b, "session_skipped", f);
            continue;
        }
        b.order[b.n_order++] = i;
        audio_s += s->audio_s;
        preroll_s += s->preroll_s;
        json_t *f = s_session_fields(s);
        json_object_set_new(f, "jobs", json_integer((json_int_t)s->jobs_total));
        json_object_set_new(f, "audio_s", json_real(s->audio_s));
        json_object_set_new(f, "preroll_s", json_real(s->preroll_s));
        json_object_set_new(f, "priority", json_integer(s->item->priority));
        json_object_set_new(f, "note", json_string(why));
        if (o->dry_run)
            json_object_set_new(f, "estimate_s", json_real(s->estimate_s));
        estimate_s += s->estimate_s;
        s_emit(&b, "session_planned", f);
    }
    qsort_r(b.order, b.n_order, sizeof *b.order, s_by_priority, &b);
    if (!o->json)
        fprintf(
            stderr,
            "batch: %zu sessions: %zu to render (%.2f audio-hours, pre-roll %.1f %% more), %zu skipped, %zu invalid\n",
            b.n, b.n_order, audio_s / 3600.0, audio_s > 0 ? 100.0 * preroll_s / audio_s : 0.0, n_skipped, n_invalid);
    if (o->dry_run)
        s_print_estimate(&b, estimate_s);
    int farm_rc = 0;
    if (!o->dry_run && b.n_order)
        farm_rc = o->farm ? s_run_farm(&b) : s_run_embedded(&b);
    s_draw(&b, b.nodes, true);
    int exit_code = 0;
    for (size_t i = 0; i < b.n; i++) {
        bsession_t *s = &b.s[i];
        if (s->state == BS_QUEUED && !o->dry_run) {
            s->state = BS_STOPPED;
            s_set_message(s, "not started: the batch was stopped");
        }
        if (s->state == BS_RUNNING) {
            s->state = BS_STOPPED;
            s_set_message(s, "interrupted: rendered again on the next run");
        }
        if (s->state == BS_FAILED && s->exit_code == 3 && exit_code == 0)
            exit_code = 3;
        if (s->state == BS_INVALID || s->state == BS_FAILED || s->state == BS_STOPPED)
            exit_code = exit_code == 3 ? 3 : 1;
    }
    if (farm_rc && !exit_code)
        exit_code = farm_rc;
    s_summary(&b, exit_code);
    for (size_t i = 0; i < b.n; i++) {
        bsession_t *s = &b.s[i];
        if (s->log)
            fclose(s->log);
        sf_free(s->out_dir);
        sf_free(s->yaml);
        sf_free(s->message);
        sf_free(s->manifest);
    }
    sf_free(b.s);
    sf_free(b.order);
    catalogue_destroy(&b.cat);
    pthread_mutex_destroy(&b.lock);
    return exit_code;
}
