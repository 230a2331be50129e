/* dispatch.c -- the coordinator's poll loop (see dispatch.h).
 *
 * Invariants:
 * - a job is QUEUED (in no node's hands), RUNNING on exactly one node at one
 *   attempt, or DONE; only a result for (node, attempt) of a RUNNING job is
 *   accepted, so a result that arrives after its lease moved is dropped;
 * - node->in_flight counts jobs sent to the node and not yet answered (the
 *   node answers every job exactly once, even one it no longer needs), so it
 *   mirrors what the node holds and never exceeds the credits it granted;
 * - every render ends with exactly one DONE event.
 */
#include "dispatch.h"

#include "dashboard.h"
#include "monitor.h"

#include "deliver.h"
#include "journal.h"
#include "plan.h"
#include "ship.h"
#include "stitch.h"

#include "sf/alloc.h"
#include "sf/hash.h"
#include "sf/log.h"
#include "sf/media.h"
#include "sf/profile.h"
#include "sf/wire.h"

#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_NODES_PER_JOB  3                     /* different nodes a job may fail on before it fails its render */
#define MAX_KNOWN_SESSIONS SF_WIRE_NODE_SESSIONS /* what a node keeps */
#define ROUTING_ID_MAX     256
#define NODE_NAME_MAX      64
#define RESET_EVERY_MS     2000       /* Resets to one unknown peer, at most one per this */
#define HASH_STEP_BYTES    (8u << 20) /* media hashed per loop round: messages wait at most this long */
#define TIMERS_EVERY_MS    10         /* the timer checks walk every job: not on every round of a busy loop */

typedef enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE } job_state_t;

typedef struct {
    uint8_t id[ROUTING_ID_MAX];
    size_t n_id;
    char name[NODE_NAME_MAX];
    uint32_t slots;
    uint32_t credits; /* jobs it asked for and has not been sent */
    uint32_t in_flight;
    int64_t last_seen_ms;
    uint8_t known[MAX_KNOWN_SESSIONS][SF_SESSION_HASH_BYTES]; /* sessions it holds, ring */
    size_t n_known;
    bool alive;
    uint32_t fails_in_row; /* failed jobs since its last good one */
    uint32_t failures;     /* failed jobs since it joined */
    uint64_t jobs_done;
    bool ship; /* media: ship -- gets the media list and fetches the files */
    uint32_t cores, threads;
    char simd[16];
    int64_t joined_ms;
    double audio_s; /* of the segments it rendered that landed: its throughput */
} node_t;

/* Quarantines outlive connections: a node that reconnects under the same
 * name is still quarantined. */
typedef struct {
    char name[NODE_NAME_MAX];
    int64_t until_ms;
    char why[512];
} quarantine_t;

/* The nodes a job failed on and what they said, for the final message. */
typedef struct {
    uint32_t n;
    char node[MAX_NODES_PER_JOB][NODE_NAME_MAX];
    char msg[MAX_NODES_PER_JOB][512];
} failure_log_t;

/* A job rendered twice, on two nodes, to compare the hashes (spot check).
 * Its second copy has a slot of its own after the plan's jobs. */
typedef struct {
    size_t job;        /* the plan job checked */
    uint32_t n_copies; /* results held: 0..2 */
    uint64_t xxh3[2];
    char node[2][NODE_NAME_MAX];
    float *pcm[2];  /* held until the copies agree */
    bool queued;    /* its second copy went into the queue */
    bool tie_break; /* the copies disagreed: a third render decides */
    bool skipped;   /* no second node: the first copy lands unchecked */
    bool settled;
} spot_t;

/* The last Reset sent to an unknown peer. */
typedef struct {
    uint8_t id[ROUTING_ID_MAX];
    size_t n_id;
    int64_t at_ms;
} reset_t;

/* What the metrics endpoint reports (monitor.h): counters since start,
 * and per-second buckets of landed audio for the realtime factor. */
#define LATENCY_BUCKETS 15
static const double s_latency_le[LATENCY_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                     2.5,   5,    10,    30,   60,  120,  300};
#define RT_WINDOW_S 30

typedef struct {
    uint64_t results, jobs_failed, retries, quarantines, segments_landed, renders_delivered, renders_failed;
    uint64_t bytes_in, messages_in;
    double audio_s; /* landed segments, all targets */
    uint64_t latency_count[LATENCY_BUCKETS + 1];
    double latency_sum;
    double rt_audio[RT_WINDOW_S + 2];
    int64_t rt_second[RT_WINDOW_S + 2];
    int64_t started_ms;
} stats_t;

/* A render that ended, as the dashboard shows it after it is gone. */
#define FINISHED_KEPT 8
typedef struct {
    uint32_t id;
    char session[128];
    int exit_code;
    char message[512];
    int64_t ended_ms;
} finished_t;

typedef struct render render_t;
struct render {
    uint32_t id;
    sf_session_t *session;
    uint8_t *yaml;
    size_t n_yaml_bytes;
    char *out_dir;
    plan_t *plan;
    stitch_t *stitch;
    int32_t priority;
    size_t n_slots; /* plan jobs, then one per spot check: the arrays below */
    spot_t *spots;
    size_t n_spots;
    size_t *spot_of;  /* per plan job: its spot check, or SIZE_MAX */
    char *mismatches; /* spot checks that disagreed, one line each (owned), or NULL */
    size_t n_checked;
    job_state_t *state;
    uint32_t *attempt;
    failure_log_t **fails; /* per job, NULL until it first fails */
    int *node_of;          /* index into nodes while RUNNING */
    int64_t *moved_ms;     /* RUNNING: when its progress last moved (or it was sent) */
    int64_t *sent_ms;      /* RUNNING: when it was sent (segment latency) */
    stats_t *stats;        /* the dispatcher's, for the retries counted where jobs are re-queued */
    uint64_t *progress;    /* RUNNING: frames done, as the node last said */
    deliver_segment_t *segments;
    size_t *requeued; /* FIFO of job indices to send before the cursor */
    size_t n_requeued;
    size_t cursor; /* next position in dispatch order */
    size_t jobs_done;
    int64_t started_ms;
    int64_t nodeless_since_ms;   /* when it last found no node at all; 0: has nodes */
    int64_t ineligible_since_ms; /* when a queued job last found no node it may run on; 0: none */
    bool finished;
    /* Delivery (read-back, meters, checks, hashes: minutes for hours of
     * stems) runs on a thread of its own so the loop keeps answering nodes
     * and clients; the loop touches nothing of the render until it joins. */
    bool delivering;
    atomic_bool delivered; /* set by the delivery thread as its last act */
    pthread_t deliverer;
    deliver_info_t deliver_info;
    sf_rc deliver_rc;
    sf_err_t deliver_err;
    char *manifest;
    bool commit_due;    /* segments of it landed this round: its journal needs a commit */
    bool progressed;    /* segments of it were counted this round: a progress event is due */
    journal_t *journal; /* with a state folder: where accepted segments land first */
    ship_t *ship;       /* made when a shipping node first wants a job; hashed a slice per round */
    dispatch_event_fn fn;
    void *ctx;
    render_t *next;
};

/* A segment journalled and stitched this round, not yet counted. */
typedef struct {
    render_t *r;
    size_t j; /* plan job */
} landing_t;

typedef struct {
    uint8_t id[ROUTING_ID_MAX];
    size_t n_id;
    dispatch_t *d;
    const char *note; /* a line to tell it once it can be reached (after a restart it reconnects later) */
} client_t;

struct dispatch {
    dispatch_config_t cfg;
    void *ctx;
    bool own_ctx;
    void *router;
    node_t *nodes;
    size_t n_nodes;
    size_t cap_nodes;
    render_t *renders;
    render_t **order; /* renders by priority, then age: rebuilt per assignment round */
    size_t cap_order;
    uint32_t next_render_id;
    int64_t next_heartbeat_ms;
    int64_t next_timers_ms;
    quarantine_t *quarantine;
    size_t n_quarantine;
    uint32_t incarnation; /* with a state folder: this start's number, in every lease epoch */
    int state_lock_fd;    /* flock on STATE/lock: one coordinator per state folder; -1: none */
    bool draining;        /* drain asked: no new jobs, waiting for the ones out */
    int64_t drain_until_ms;
    reset_t resets[16]; /* ring */
    size_t n_resets;
    stats_t stats;
    monitor_t *monitor;                 /* metrics, status, dashboard; NULL: off */
    finished_t finished[FINISHED_KEPT]; /* the last renders that ended, for the dashboard */
    size_t n_finished;
    landing_t *landings; /* this round's, in the order they landed */
    size_t n_landings;
    size_t cap_landings;
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- metrics ------------------------------------------------------------ */

static void s_count_latency(stats_t *st, double seconds)
{
    size_t b = 0;
    while (b < LATENCY_BUCKETS && seconds > s_latency_le[b])
        b++;
    st->latency_count[b]++;
    st->latency_sum += seconds;
    st->results++;
}

static void s_count_audio(stats_t *st, double seconds)
{
    int64_t now_s = s_now_ms() / 1000;
    size_t k = (size_t)(now_s % (RT_WINDOW_S + 2));
    if (st->rt_second[k] != now_s) {
        st->rt_second[k] = now_s;
        st->rt_audio[k] = 0;
    }
    st->rt_audio[k] += seconds;
    st->audio_s += seconds;
    st->segments_landed++;
}

/* Audio landed per wall second over the last RT_WINDOW_S whole seconds. */
static double s_realtime(const stats_t *st)
{
    int64_t now_s = s_now_ms() / 1000;
    double audio = 0;
    for (size_t k = 0; k < RT_WINDOW_S + 2; k++)
        if (st->rt_second[k] < now_s && st->rt_second[k] >= now_s - RT_WINDOW_S)
            audio += st->rt_audio[k];
    double window = (double)(now_s - st->started_ms / 1000);
    window = window > RT_WINDOW_S ? RT_WINDOW_S : window < 1 ? 1 : window;
    return audio / window;
}

static uint32_t s_live_nodes(const dispatch_t *d)
{
    uint32_t n = 0;
    for (size_t i = 0; i < d->n_nodes; i++)
        n += d->nodes[i].alive;
    return n;
}

/* ---- sending ---------------------------------------------------------- */

static sf_rc s_send(dispatch_t *d, const uint8_t *id, size_t n_id, const sf_wire_msg_t *msg)
{
    uint8_t *buf;
    size_t n;
    sf_err_t err = {0};
    if (sf_wire_encode(msg, &buf, &n, &err)) {
        sf_log(SF_LOG_ERROR, "coordinator dispatch", "cannot encode %s: %s", sf_wire_kind_name(msg->kind), err.msg);
        return SF_E_INTERNAL;
    }
    sf_rc rc = SF_OK;
    if (zmq_send(d->router, id, n_id, ZMQ_SNDMORE) < 0 || zmq_send(d->router, buf, n, 0) < 0) {
        /* EHOSTUNREACH (ZMQ_ROUTER_MANDATORY): the peer is gone; the
         * liveness timeout reclaims its jobs. */
        int e = zmq_errno();
        sf_log(e == EHOSTUNREACH ? SF_LOG_DEBUG : SF_LOG_WARN, "coordinator dispatch", "cannot send %s: %s",
               sf_wire_kind_name(msg->kind), zmq_strerror(e));
        rc = SF_E_FARM;
    }
    sf_free(buf);
    return rc;
}

/* ---- renders ---------------------------------------------------------- */

static void s_emit(dispatch_t *d, render_t *r, dispatch_event_kind_t kind, int exit_code, const char *message,
                   const char *manifest_path)
{
    dispatch_event_t ev = {
        .kind = kind,
        .render_id = r->id,
        .jobs_done = r->jobs_done,
        .jobs_total = r->plan ? r->plan->n_jobs : 0,
        .nodes = s_live_nodes(d),
        .exit_code = exit_code,
        .message = message,
        .manifest_path = manifest_path,
    };
    if (r->fn)
        r->fn(r->ctx, &ev);
}

static void s_render_free(render_t *r)
{
    sf_free(r->manifest);
    journal_close(&r->journal);
    ship_destroy(&r->ship);
    stitch_destroy(&r->stitch, true);
    plan_destroy(&r->plan);
    sf_session_destroy(&r->session);
    sf_free(r->yaml);
    sf_free(r->out_dir);
    sf_free(r->state);
    sf_free(r->attempt);
    if (r->fails)
        for (size_t j = 0; j < r->n_slots; j++)
            sf_free(r->fails[j]);
    for (size_t k = 0; r->spots && k < r->n_spots; k++) {
        sf_free(r->spots[k].pcm[0]);
        sf_free(r->spots[k].pcm[1]);
    }
    sf_free(r->spots);
    sf_free(r->spot_of);
    sf_free(r->mismatches);
    sf_free(r->fails);
    sf_free(r->node_of);
    sf_free(r->moved_ms);
    sf_free(r->sent_ms);
    sf_free(r->progress);
    sf_free(r->segments);
    sf_free(r->requeued);
    sf_free(r);
}

/* Ends a render with exactly one DONE event; frees its partial files. */
static void s_finish(dispatch_t *d, render_t *r, int exit_code, const char *message, const char *manifest_path)
{
    if (r->finished)
        return;
    r->finished = true;
    stitch_destroy(&r->stitch, true);
    if (r->journal) {
        sf_err_t e = {0};
        if (journal_finish(&r->journal, &e))
            sf_log(SF_LOG_WARN, "coordinator dispatch", "render %u: %s", r->id, e.msg);
    }
    if (exit_code == 0)
        d->stats.renders_delivered++;
    else
        d->stats.renders_failed++;
    finished_t *fin = &d->finished[d->n_finished++ % FINISHED_KEPT];
    fin->id = r->id;
    snprintf(fin->session, sizeof fin->session, "%s", r->session ? r->session->name : "?");
    fin->exit_code = exit_code;
    snprintf(fin->message, sizeof fin->message, "%s",
             exit_code == 0 ? (manifest_path ? manifest_path : "")
             : message      ? message
                            : "");
    fin->ended_ms = s_now_ms();
    if (exit_code == 0)
        sf_log(SF_LOG_INFO, "coordinator dispatch", "render %u of '%s' delivered: %s", r->id,
               r->session ? r->session->name : "?", manifest_path ? manifest_path : "");
    else
        sf_log(SF_LOG_ERROR, "coordinator dispatch", "render %u failed (exit %d): %s", r->id, exit_code,
               message ? message : "");
    s_emit(d, r, DISPATCH_EV_DONE, exit_code, message, manifest_path);
}

/* Is plan job j of render `id` spot-checked at `fraction`? A hash, so the
 * choice is the same after a restart. */
static bool s_spot_chosen(uint32_t id, size_t j, double fraction)
{
    uint64_t z = ((uint64_t)id << 32) + j + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53 < fraction;
}

/* epoch0: the first lease epoch of every job (the incarnation's). */
static sf_rc s_render_alloc(render_t *r, uint32_t epoch0, double spot_fraction)
{
    size_t n_jobs = r->plan->n_jobs;
    r->spot_of = sf_malloc((n_jobs ? n_jobs : 1) * sizeof *r->spot_of);
    if (!r->spot_of)
        return SF_E_NOMEM;
    for (size_t j = 0; j < n_jobs; j++) {
        r->spot_of[j] = SIZE_MAX;
        r->n_spots += s_spot_chosen(r->id, j, spot_fraction);
    }
    r->spots = sf_calloc(r->n_spots ? r->n_spots : 1, sizeof *r->spots);
    if (!r->spots)
        return SF_E_NOMEM;
    for (size_t j = 0, k = 0; j < n_jobs; j++)
        if (s_spot_chosen(r->id, j, spot_fraction)) {
            r->spots[k].job = j;
            r->spot_of[j] = k++;
        }
    r->n_slots = n_jobs + r->n_spots;
    size_t n = r->n_slots ? r->n_slots : 1;
    r->state = sf_calloc(n, sizeof *r->state);
    r->attempt = sf_calloc(n, sizeof *r->attempt);
    r->fails = sf_calloc(n, sizeof *r->fails);
    r->node_of = sf_calloc(n, sizeof *r->node_of);
    r->moved_ms = sf_calloc(n, sizeof *r->moved_ms);
    r->sent_ms = sf_calloc(n, sizeof *r->sent_ms);
    r->progress = sf_calloc(n, sizeof *r->progress);
    r->segments = sf_calloc(n, sizeof *r->segments);
    r->requeued = sf_calloc(n, sizeof *r->requeued);
    if (!r->state || !r->attempt || !r->fails || !r->node_of || !r->moved_ms || !r->sent_ms || !r->progress ||
        !r->segments || !r->requeued)
        return SF_E_NOMEM;
    for (size_t j = 0; j < n; j++) {
        r->node_of[j] = -1;
        r->attempt[j] = epoch0;
    }
    return SF_OK;
}

#define S_LINE_BYTES 2048 /* a profile message */

/* Keeps the first line it is given (ctx: S_LINE_BYTES, empty at first). */
static void s_first_line(void *ctx, const char *line)
{
    char *first = ctx;
    if (!first[0])
        snprintf(first, S_LINE_BYTES, "%s", line);
}

static void s_forward_to_client(void *ctx, const dispatch_event_t *ev);

/* A new render (journal NULL: journalled in the state folder, if any), or
 * one resumed from its journal (taken over; its files are this render's own,
 * so existing ones are replaced). */
static render_t *s_render_new(dispatch_t *d, const dispatch_request_t *req, uint32_t id, journal_t *resumed,
                              dispatch_event_fn fn, void *ctx, sf_err_t *err)
{
    const char *session_path = req->session_path, *profile = req->profile, *out_dir = req->out_dir;
    const uint8_t *yaml = req->yaml;
    const size_t n_yaml_bytes = req->n_yaml_bytes;
    render_t *r = sf_calloc(1, sizeof *r);
    if (!r) {
        journal_close(&resumed);
        SF_ERR(err, SF_E_NOMEM, "out of memory");
        return NULL;
    }
    r->id = id;
    r->stats = &d->stats;
    r->journal = resumed;
    r->fn = fn;
    r->ctx = ctx;
    r->priority = req->priority;
    r->started_ms = s_now_ms();
    r->yaml = sf_malloc(n_yaml_bytes ? n_yaml_bytes : 1);
    if (!r->yaml) {
        journal_close(&r->journal);
        sf_free(r);
        SF_ERR(err, SF_E_NOMEM, "out of memory");
        return NULL;
    }
    memcpy(r->yaml, yaml, n_yaml_bytes);
    r->n_yaml_bytes = n_yaml_bytes;
    /* Append, so renders are served in the order they came. */
    render_t **tail = &d->renders;
    while (*tail)
        tail = &(*tail)->next;
    *tail = r;

    sf_diags_t diags = SF_DIAGS_INIT;
    sf_err_t e = {0};
    sf_session_load_opts_t opts = sf_session_load_opts_default();
    opts.pathmap = d->cfg.pathmap;
    sf_rc rc = sf_session_load_text(session_path, (const char *)yaml, n_yaml_bytes, &opts, &r->session, &diags, &e);
    if (rc) {
        char *text = diags.n_errors ? sf_diags_text(&diags) : NULL;
        s_finish(d, r, rc == SF_E_INPUT ? 2 : 1, text ? text : e.msg, NULL);
        free(text);
        sf_diags_free(&diags);
        return r;
    }
    sf_diags_free(&diags);
    if (profile && *profile) {
        char lines[S_LINE_BYTES];
        if (!sf_profile_parse(profile, &r->session->output.profile)) {
            snprintf(lines, sizeof lines, "unknown profile '%s' (expected %s)", profile, sf_profile_names());
            s_finish(d, r, 2, lines, NULL);
            return r;
        }
        lines[0] = '\0';
        if (sf_profile_violations(r->session, r->session->output.profile, s_first_line, lines) > 0) {
            s_finish(d, r, 2, lines, NULL); /* the first; the client checked them all before submitting */
            return r;
        }
    }
    if (out_dir && *out_dir && d->cfg.pathmap) { /* the client's path: map it as the session's are */
        rc = sf_pathmap_apply(d->cfg.pathmap, out_dir, &r->out_dir, &e);
        if (rc == SF_E_INPUT) {
            sf_err_prefix(&e, "cannot map the output folder: ");
            s_finish(d, r, 2, e.msg, NULL);
            return r;
        }
    } else {
        r->out_dir = sf_strdup(out_dir && *out_dir ? out_dir : r->session->output.dir);
    }
    if (!r->out_dir) {
        s_finish(d, r, 1, "out of memory", NULL);
        return r;
    }
    rc = plan_make(r->session, req->segment_frames, &r->plan, &e);
    if (rc == SF_OK && !resumed)
        rc = deliver_check_targets(r->plan, r->out_dir, req->force, &e);
    if (rc == SF_OK)
        rc = s_render_alloc(r, d->incarnation << 16, d->cfg.spot_check) ? SF_ERR(&e, SF_E_NOMEM, "out of memory")
                                                                        : SF_OK;
    if (rc == SF_OK)
        rc = sf_media_mkdirs(r->out_dir, &e);
    if (rc == SF_OK)
        rc = stitch_open(r->plan, r->out_dir, &r->stitch, &e);
    if (rc == SF_OK && !resumed && d->cfg.state_dir) {
        client_t *c = fn == s_forward_to_client ? ctx : NULL;
        journal_submit_t js = {.render_id = r->id,
                               .priority = r->priority,
                               .session_path = session_path,
                               .yaml = yaml,
                               .n_yaml_bytes = n_yaml_bytes,
                               .out_dir = r->out_dir,
                               .segment_frames = req->segment_frames,
                               .force = req->force,
                               .profile = profile ? profile : "",
                               .client_id = c ? c->id : NULL,
                               .n_client_id = c ? c->n_id : 0};
        rc = journal_create(d->cfg.state_dir, &js, &r->journal, &e);
    }
    if (rc) {
        s_finish(d, r, rc == SF_E_INPUT ? 2 : 1, e.msg, NULL);
        return r;
    }
    sf_log(SF_LOG_INFO, "coordinator dispatch",
           "render %u of '%s': %zu jobs (%u targets x %u segments), priority %d, %zu spot-checked", r->id,
           r->session->name, r->plan->n_jobs, r->plan->n_targets, r->plan->n_segments, (int)r->priority, r->n_spots);
    s_emit(d, r, DISPATCH_EV_STARTED, 0, NULL, NULL);
    return r;
}

sf_rc dispatch_submit(dispatch_t *d, const dispatch_request_t *req, dispatch_event_fn fn, void *ctx, sf_err_t *err)
{
    return s_render_new(d, req, ++d->next_render_id, NULL, fn, ctx, err) ? SF_OK : SF_E_NOMEM;
}

/* ---- nodes ------------------------------------------------------------ */

static node_t *s_find_node(dispatch_t *d, const uint8_t *id, size_t n_id)
{
    for (size_t i = 0; i < d->n_nodes; i++)
        if (d->nodes[i].alive && d->nodes[i].n_id == n_id && memcmp(d->nodes[i].id, id, n_id) == 0)
            return &d->nodes[i];
    return NULL;
}

/* The node's quarantine while it lasts, or NULL. */
static const quarantine_t *s_quarantined(const dispatch_t *d, const char *name, int64_t now)
{
    for (size_t i = 0; i < d->n_quarantine; i++)
        if (d->quarantine[i].until_ms > now && strcmp(d->quarantine[i].name, name) == 0)
            return &d->quarantine[i];
    return NULL;
}

static bool s_failed_on(const render_t *r, size_t j, const char *name)
{
    const failure_log_t *f = r->fails[j];
    for (uint32_t i = 0; f && i < f->n; i++)
        if (strcmp(f->node[i], name) == 0)
            return true;
    return false;
}

/* The plan job a slot renders: itself, or the job a spot check copies. */
static size_t s_plan_job(const render_t *r, size_t slot)
{
    return slot < r->plan->n_jobs ? slot : r->spots[slot - r->plan->n_jobs].job;
}

/* A spot check's copies must come from different nodes: may n not take
 * this slot because it has, or is rendering, another copy of the job? */
static bool s_spot_conflict(const dispatch_t *d, const render_t *r, size_t slot, const node_t *n)
{
    size_t j = s_plan_job(r, slot);
    size_t k = r->spot_of[j];
    if (k == SIZE_MAX || r->spots[k].settled)
        return false;
    const spot_t *sp = &r->spots[k];
    for (uint32_t i = 0; i < sp->n_copies; i++)
        if (strcmp(sp->node[i], n->name) == 0)
            return true;
    size_t other = slot == j ? r->plan->n_jobs + k : j;
    return r->state[other] == JOB_RUNNING && &d->nodes[r->node_of[other]] == n;
}

/* May node n run slot j of r now? */
static bool s_eligible(const dispatch_t *d, const node_t *n, const render_t *r, size_t j, int64_t now)
{
    return n->alive && !s_quarantined(d, n->name, now) && !s_failed_on(r, j, n->name) && !s_spot_conflict(d, r, j, n);
}

static void s_requeue(render_t *r, size_t j)
{
    if (r->state[j] == JOB_RUNNING && r->stats)
        r->stats->retries++;
    r->state[j] = JOB_QUEUED;
    r->node_of[j] = -1;
    r->attempt[j]++; /* a late result of the old lease is now stale */
    r->requeued[r->n_requeued++] = j;
}

static void s_emit_node_event(dispatch_t *d, const char *line)
{
    for (render_t *r = d->renders; r; r = r->next)
        if (!r->finished)
            s_emit(d, r, DISPATCH_EV_NODE, 0, line, NULL);
}

static void s_lose_node(dispatch_t *d, node_t *n, const char *why)
{
    int idx = (int)(n - d->nodes);
    size_t n_jobs = 0;
    for (render_t *r = d->renders; r; r = r->next) {
        if (r->finished || !r->plan)
            continue;
        for (size_t j = 0; j < r->n_slots; j++)
            if (r->state[j] == JOB_RUNNING && r->node_of[j] == idx) {
                s_requeue(r, j);
                n_jobs++;
            }
    }
    n->alive = false;
    sf_log(SF_LOG_WARN, "coordinator dispatch", "node '%s' lost (%s); %zu jobs back in the queue", n->name, why,
           n_jobs);
    char line[256];
    snprintf(line, sizeof line, "node '%s' lost: %s", n->name, why);
    s_emit_node_event(d, line);
}

static void s_on_hello(dispatch_t *d, const uint8_t *id, size_t n_id, const sf_wire_msg_t *m)
{
    node_t *n = s_find_node(d, id, n_id);
    if (n)
        s_lose_node(d, n, "said hello again");
    if (d->n_nodes == d->cap_nodes) {
        size_t cap = d->cap_nodes ? d->cap_nodes * 2 : 8;
        node_t *nodes = sf_realloc(d->nodes, cap * sizeof *nodes);
        if (!nodes)
            return;
        d->nodes = nodes;
        d->cap_nodes = cap;
    }
    n = &d->nodes[d->n_nodes++];
    memset(n, 0, sizeof *n);
    memcpy(n->id, id, n_id);
    n->n_id = n_id;
    snprintf(n->name, sizeof n->name, "%s", m->u.hello.node_name);
    n->slots = m->u.hello.slots;
    n->ship = m->u.hello.ship_media;
    n->cores = m->u.hello.cores;
    n->threads = m->u.hello.threads;
    snprintf(n->simd, sizeof n->simd, "%s", m->u.hello.simd);
    n->alive = true;
    n->last_seen_ms = n->joined_ms = s_now_ms();
    const quarantine_t *q = s_quarantined(d, n->name, n->last_seen_ms);
    sf_log(SF_LOG_INFO, "coordinator dispatch", "node '%s' joined: %u cores, %u threads, %u slots, %s%s%s", n->name,
           m->u.hello.cores, m->u.hello.threads, n->slots, m->u.hello.simd, n->ship ? ", ships media" : "",
           q ? " (still quarantined)" : "");
    sf_wire_msg_t w = {.kind = SF_WIRE_WELCOME};
    w.u.welcome.node_id = (uint32_t)d->n_nodes;
    w.u.welcome.heartbeat_ms = (uint32_t)d->cfg.heartbeat_ms;
    w.u.welcome.max_message_bytes = SF_WIRE_MAX_MESSAGE_BYTES;
    s_send(d, id, n_id, &w);
    char line[160];
    snprintf(line, sizeof line, "node '%s' joined", n->name);
    s_emit_node_event(d, line);
}

static bool s_node_knows(const node_t *n, const uint8_t *hash)
{
    size_t count = n->n_known < MAX_KNOWN_SESSIONS ? n->n_known : MAX_KNOWN_SESSIONS;
    for (size_t i = 0; i < count; i++)
        if (memcmp(n->known[i], hash, SF_SESSION_HASH_BYTES) == 0)
            return true;
    return false;
}

/* A queued job of r that node n may run: re-queued ones first (oldest
 * first), then the next in dispatch order. Takes it off the queue. */
static bool s_take_job(const dispatch_t *d, render_t *r, const node_t *n, int64_t now, size_t *out_j)
{
    for (size_t q = 0; q < r->n_requeued; q++) {
        size_t j = r->requeued[q];
        if (r->state[j] != JOB_QUEUED) { /* taken since: drop the stale entry */
            memmove(r->requeued + q, r->requeued + q + 1, (r->n_requeued - q - 1) * sizeof *r->requeued);
            r->n_requeued--;
            q--;
            continue;
        }
        if (!s_eligible(d, n, r, j, now))
            continue;
        memmove(r->requeued + q, r->requeued + q + 1, (r->n_requeued - q - 1) * sizeof *r->requeued);
        r->n_requeued--;
        *out_j = j;
        return true;
    }
    if (s_quarantined(d, n->name, now))
        return false;
    while (r->cursor < r->plan->n_jobs) {
        size_t j = plan_dispatch_order(r->plan, r->cursor++);
        if (r->state[j] == JOB_QUEUED) {
            *out_j = j;
            return true;
        }
    }
    return false;
}

static int s_by_priority(const void *a, const void *b)
{
    const render_t *ra = *(render_t *const *)a, *rb = *(render_t *const *)b;
    if (ra->priority != rb->priority)
        return ra->priority > rb->priority ? -1 : 1;
    return ra->id < rb->id ? -1 : ra->id > rb->id;
}

/* d->order: the active renders, highest priority first, then oldest. */
static size_t s_order_renders(dispatch_t *d)
{
    size_t n = 0;
    for (render_t *r = d->renders; r; r = r->next)
        n += !r->finished && r->plan;
    if (n > d->cap_order) {
        render_t **order = sf_realloc(d->order, n * sizeof *order);
        if (!order)
            return 0;
        d->order = order;
        d->cap_order = n;
    }
    n = 0;
    for (render_t *r = d->renders; r; r = r->next)
        if (!r->finished && r->plan)
            d->order[n++] = r;
    if (n > 1)
        qsort(d->order, n, sizeof *d->order, s_by_priority);
    return n;
}

static void s_send_job(dispatch_t *d, node_t *n, render_t *r, size_t j)
{
    if (!s_node_knows(n, r->session->hash)) {
        sf_wire_msg_t m = {.kind = SF_WIRE_SESSION};
        m.u.session.session_hash = r->session->hash;
        m.u.session.path = r->session->path;
        m.u.session.base_dir = r->session->base_dir;
        m.u.session.yaml = r->yaml;
        m.u.session.n_yaml_bytes = r->n_yaml_bytes;
        if (n->ship)
            m.u.session.media = ship_media(r->ship, &m.u.session.n_media);
        s_send(d, n->id, n->n_id, &m);
        memcpy(n->known[n->n_known++ % MAX_KNOWN_SESSIONS], r->session->hash, SF_SESSION_HASH_BYTES);
    }
    const plan_job_t *pj = &r->plan->jobs[s_plan_job(r, j)];
    /* A spot-checked job's second copy goes out while the first renders. */
    size_t k = j < r->plan->n_jobs ? r->spot_of[j] : SIZE_MAX;
    if (k != SIZE_MAX && !r->spots[k].queued) {
        r->spots[k].queued = true;
        r->requeued[r->n_requeued++] = r->plan->n_jobs + k;
    }
    sf_wire_msg_t m = {.kind = SF_WIRE_JOB};
    m.u.job.job_id = ((uint64_t)r->id << 32) | j;
    m.u.job.session_hash = r->session->hash;
    m.u.job.target_kind = (uint32_t)r->plan->targets[pj->target_index].target.kind;
    m.u.job.target_index = r->plan->targets[pj->target_index].target.index;
    m.u.job.start_frame = pj->start_frame;
    m.u.job.n_frames = (uint64_t)pj->n_frames;
    m.u.job.preroll_frames = (uint64_t)pj->preroll_frames;
    m.u.job.attempt = r->attempt[j];
    r->state[j] = JOB_RUNNING;
    r->node_of[j] = (int)(n - d->nodes);
    r->moved_ms[j] = r->sent_ms[j] = s_now_ms();
    r->progress[j] = 0;
    n->credits--;
    n->in_flight++;
    s_send(d, n->id, n->n_id, &m);
}

/* Whether r's media can go to shipping nodes; the first ask makes the
 * list, which s_hash_media then hashes a slice per loop round. */
static bool s_ship_ready(dispatch_t *d, render_t *r)
{
    if (r->finished)
        return false;
    if (!r->ship) {
        sf_err_t e = {0};
        sf_rc rc = ship_new(r->session, &r->ship, &e);
        if (rc) {
            char msg[SF_WIRE_MAX_TEXT];
            snprintf(msg, sizeof msg, "cannot ship the session's media: %s", e.msg);
            s_finish(d, r, rc == SF_E_NOMEM ? 1 : 2, msg, NULL);
            return false;
        }
        sf_log(SF_LOG_INFO, "coordinator dispatch", "render %u: hashing its media for nodes that ship them", r->id);
    }
    return ship_ready(r->ship);
}

/* Hashes a slice of every render's media that a shipping node waits for.
 * True when there is more to hash (the loop should not sleep). */
static bool s_hash_media(dispatch_t *d)
{
    bool more = false;
    for (render_t *r = d->renders; r; r = r->next) {
        if (r->finished || !r->ship || ship_ready(r->ship))
            continue;
        sf_err_t e = {0};
        int done = ship_hash_step(r->ship, HASH_STEP_BYTES, &e);
        if (done < 0) {
            char msg[SF_WIRE_MAX_TEXT];
            snprintf(msg, sizeof msg, "cannot ship the session's media: %s", e.msg);
            s_finish(d, r, 1, msg, NULL);
        } else if (done == 0) {
            more = true;
        } else {
            size_t n_files;
            ship_media(r->ship, &n_files);
            sf_log(SF_LOG_INFO, "coordinator dispatch", "render %u: %zu media files hashed, ready to ship", r->id,
                   n_files);
        }
    }
    return more;
}

/* Hands out queued jobs one per node per round, so work spreads evenly;
 * each node takes from the first render in priority order that has a job
 * it may run. */
static void s_assign(dispatch_t *d)
{
    if (d->draining)
        return;
    size_t n_order = s_order_renders(d);
    int64_t now = s_now_ms();
    bool sent = true;
    while (sent) {
        sent = false;
        for (size_t i = 0; i < d->n_nodes; i++) {
            node_t *n = &d->nodes[i];
            if (!n->alive || n->credits == 0)
                continue;
            for (size_t k = 0; k < n_order; k++) {
                size_t j;
                if (n->ship && !s_ship_ready(d, d->order[k]))
                    continue;
                if (!d->order[k]->finished && !d->order[k]->delivering && s_take_job(d, d->order[k], n, now, &j)) {
                    s_send_job(d, n, d->order[k], j);
                    sent = true;
                    break;
                }
            }
        }
    }
}

/* ---- results ---------------------------------------------------------- */

static render_t *s_find_job(dispatch_t *d, uint64_t job_id, size_t *out_j)
{
    uint32_t id = (uint32_t)(job_id >> 32);
    size_t j = (size_t)(job_id & 0xffffffffu);
    for (render_t *r = d->renders; r; r = r->next)
        if (r->id == id && !r->finished && !r->delivering && r->plan && j < r->n_slots) {
            *out_j = j;
            return r;
        }
    return NULL;
}

static void *s_deliver_thread(void *arg)
{
    render_t *r = arg;
    r->deliver_rc = deliver_finish(r->plan, r->stitch, r->segments, &r->deliver_info, &r->manifest, &r->deliver_err);
    atomic_store(&r->delivered, true);
    return NULL;
}

/* The delivery is over (its thread joined, or it ran here): the render ends with its result. */
static void s_delivered(dispatch_t *d, render_t *r)
{
    r->delivering = false;
    s_finish(d, r, r->deliver_rc == SF_OK ? 0 : 1, r->deliver_rc == SF_OK ? NULL : r->deliver_err.msg, r->manifest);
}

/* Every segment is in: close the files and deliver them, on a thread of
 * its own (s_collect_deliveries finishes the render), or here when no
 * thread can be had. */
static void s_complete(dispatch_t *d, render_t *r)
{
    sf_err_t e = {0};
    if (stitch_close(r->stitch, &e) != SF_OK) {
        s_finish(d, r, 1, e.msg, NULL);
        return;
    }
    r->deliver_info = (deliver_info_t){.out_dir = r->out_dir,
                                       .n_nodes = (int)s_live_nodes(d),
                                       .wall_seconds = (double)(s_now_ms() - r->started_ms) / 1000.0,
                                       .spot_fraction = d->cfg.spot_check,
                                       .n_spot_checked = r->n_checked,
                                       .spot_mismatches = r->mismatches};
    atomic_store(&r->delivered, false);
    r->delivering = true;
    sf_log(SF_LOG_INFO, "coordinator dispatch", "render %u of '%s': every segment is in; delivering", r->id,
           r->session ? r->session->name : "?");
    if (pthread_create(&r->deliverer, NULL, s_deliver_thread, r) != 0) {
        s_deliver_thread(r);
        s_delivered(d, r);
    }
}

/* Finishes the renders whose delivery is done; with `wait`, waits for all. */
static void s_collect_deliveries(dispatch_t *d, bool wait)
{
    for (render_t *r = d->renders; r; r = r->next) {
        if (!r->delivering || (!wait && !atomic_load(&r->delivered)))
            continue;
        pthread_join(r->deliverer, NULL);
        s_delivered(d, r);
    }
}

/* "'a': why; 'b': why" of a job's failures. */
static void s_failures_text(const failure_log_t *f, char *buf, size_t n_bytes)
{
    size_t used = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; f && i < f->n && used < n_bytes; i++) {
        int w = snprintf(buf + used, n_bytes - used, "%s'%s': %s", i ? "; " : "", f->node[i], f->msg[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* Counts a failed job against node n; quarantines it after
 * quarantine_after in a row. */
static void s_node_failed(dispatch_t *d, node_t *n, const char *why)
{
    n->failures++;
    if (++n->fails_in_row < (uint32_t)d->cfg.quarantine_after)
        return;
    int64_t now = s_now_ms();
    quarantine_t *q = NULL;
    for (size_t i = 0; i < d->n_quarantine && !q; i++)
        if (strcmp(d->quarantine[i].name, n->name) == 0)
            q = &d->quarantine[i];
    if (!q) {
        quarantine_t *grown = sf_realloc(d->quarantine, (d->n_quarantine + 1) * sizeof *grown);
        if (!grown)
            return;
        d->quarantine = grown;
        q = &d->quarantine[d->n_quarantine++];
        snprintf(q->name, sizeof q->name, "%s", n->name);
    }
    q->until_ms = now + d->cfg.quarantine_ms;
    d->stats.quarantines++;
    snprintf(q->why, sizeof q->why, "%u failed jobs in a row, the last: %s", n->fails_in_row, why);
    n->fails_in_row = 0;
    sf_log(SF_LOG_WARN, "coordinator dispatch", "node '%s' quarantined for %g s: %s", n->name,
           d->cfg.quarantine_ms / 1000.0, q->why);
    char line[768];
    snprintf(line, sizeof line, "node '%s' quarantined for %g s: %s", n->name, d->cfg.quarantine_ms / 1000.0, q->why);
    s_emit_node_event(d, line);
}

/* A failed attempt: the job goes back to the queue for another node, or
 * fails the render once it has failed on MAX_NODES_PER_JOB nodes. */
static void s_job_failed(dispatch_t *d, render_t *r, size_t j, node_t *n, const char *why)
{
    if (r->delivering) /* a spot-check copy still out: its render no longer needs it */
        return;
    d->stats.jobs_failed++;
    const plan_job_t *pj = &r->plan->jobs[s_plan_job(r, j)];
    char target[256];
    plan_target_label(r->plan, pj->target_index, target, sizeof target);
    if (!r->fails[j])
        r->fails[j] = sf_calloc(1, sizeof *r->fails[j]);
    failure_log_t *f = r->fails[j];
    if (f && f->n < MAX_NODES_PER_JOB && !s_failed_on(r, j, n->name)) {
        snprintf(f->node[f->n], sizeof f->node[f->n], "%s", n->name);
        snprintf(f->msg[f->n], sizeof f->msg[f->n], "%s", why);
        f->n++;
    }
    sf_log(SF_LOG_WARN, "coordinator dispatch", "job %s segment %u failed on node '%s' (%u of %d nodes): %s", target,
           pj->segment_index, n->name, f ? f->n : 0, MAX_NODES_PER_JOB, why);
    s_node_failed(d, n, why);
    if (!f || f->n >= MAX_NODES_PER_JOB) {
        char msg[2400], list[1800];
        s_failures_text(f, list, sizeof list);
        snprintf(msg, sizeof msg, "%s segment %u failed on %u nodes: %s", target, pj->segment_index, f ? f->n : 0,
                 f ? list : why);
        r->state[j] = JOB_QUEUED;
        r->node_of[j] = -1;
        s_finish(d, r, 1, msg, NULL);
        return;
    }
    s_requeue(r, j);
}

/* Plan job j of r waits for the round's journal commit to count. */
static bool s_pend(dispatch_t *d, render_t *r, size_t j)
{
    if (d->n_landings == d->cap_landings) {
        size_t cap = d->cap_landings ? 2 * d->cap_landings : 64;
        landing_t *grown = sf_realloc(d->landings, cap * sizeof *grown);
        if (!grown)
            return false;
        d->landings = grown;
        d->cap_landings = cap;
    }
    d->landings[d->n_landings++] = (landing_t){.r = r, .j = j};
    r->commit_due = true;
    return true;
}

/* Plan job j's frames land: journalled (after a crash they are replayed,
 * not rendered) and stitched now, counted when the round's journal commit
 * is done (s_settle). checked_by: the node whose copy agreed, or NULL.
 * False when the render failed here. */
static bool s_land(dispatch_t *d, render_t *r, size_t j, const float *pcm, uint64_t xxh3, const char *node_name,
                   const char *checked_by)
{
    const plan_job_t *pj = &r->plan->jobs[j];
    const int channels = r->plan->targets[pj->target_index].n_channels;
    sf_err_t e = {0};
    if (r->journal &&
        journal_append_segment(r->journal, j, (uint32_t)channels, (uint64_t)pj->n_frames, pcm, xxh3, node_name, &e)) {
        s_finish(d, r, 1, e.msg, NULL);
        return false;
    }
    if (stitch_accept(r->stitch, j, pcm, &e)) {
        s_finish(d, r, 1, e.msg, NULL);
        return false;
    }
    snprintf(r->segments[j].node_name, sizeof r->segments[j].node_name, "%s", node_name);
    snprintf(r->segments[j].checked_by, sizeof r->segments[j].checked_by, "%s", checked_by ? checked_by : "");
    r->segments[j].xxh3 = xxh3;
    if (!s_pend(d, r, j)) {
        s_finish(d, r, 1, "out of memory", NULL);
        return false;
    }
    return true;
}

/* The segments that landed this round count once their journals are
 * committed, one fsync per render rather than per segment: so a crash
 * never loses a segment that was counted. Only then are they logged and
 * reported, and a render that has them all delivered. report: false while
 * resuming (no client to tell yet; dispatch_run delivers what is complete). */
static void s_settle(dispatch_t *d, bool report)
{
    for (size_t i = 0; i < d->n_landings; i++) {
        render_t *r = d->landings[i].r;
        if (!r->commit_due)
            continue;
        r->commit_due = false;
        sf_err_t e = {0};
        if (!r->finished && r->journal && journal_commit(r->journal, &e))
            s_finish(d, r, 1, e.msg, NULL);
    }
    for (size_t i = 0; i < d->n_landings; i++) {
        render_t *r = d->landings[i].r;
        size_t j = d->landings[i].j;
        if (r->finished)
            continue;
        const plan_job_t *pj = &r->plan->jobs[j];
        sf_log(SF_LOG_DEBUG, "coordinator dispatch", "render %u job %zu landed from node '%s'", r->id, j,
               r->segments[j].node_name);
        r->jobs_done++;
        s_count_audio(&d->stats, (double)pj->n_frames / r->session->sample_rate);
        r->progressed = true;
    }
    for (size_t i = 0; i < d->n_landings; i++) {
        render_t *r = d->landings[i].r;
        if (!r->progressed)
            continue;
        r->progressed = false;
        if (r->finished || !report)
            continue;
        s_emit(d, r, DISPATCH_EV_PROGRESS, 0, NULL, NULL);
        if (stitch_complete(r->stitch))
            s_complete(d, r);
    }
    d->n_landings = 0;
}

static void s_spot_settle(dispatch_t *d, render_t *r, spot_t *sp, int copy, const char *checked_by)
{
    sp->settled = true;
    /* a copy still queued is not needed any more; one out is dropped when it comes */
    size_t slots[2] = {sp->job, r->plan->n_jobs + (size_t)(sp - r->spots)};
    for (int i = 0; i < 2; i++)
        if (r->state[slots[i]] == JOB_QUEUED)
            r->state[slots[i]] = JOB_DONE;
    float *pcm = sp->pcm[copy];
    sp->pcm[copy] = NULL;
    sf_free(sp->pcm[1 - copy]);
    sp->pcm[1 - copy] = NULL;
    if (checked_by)
        r->n_checked++;
    s_land(d, r, sp->job, pcm, sp->xxh3[copy], sp->node[copy], checked_by);
    sf_free(pcm);
}

static void s_add_mismatch(render_t *r, const char *line)
{
    size_t had = r->mismatches ? strlen(r->mismatches) : 0;
    char *grown = sf_realloc(r->mismatches, had + strlen(line) + 2);
    if (!grown)
        return;
    snprintf(grown + had, strlen(line) + 2, "%s%s", had ? "\n" : "", line);
    r->mismatches = grown;
}

/* A copy of spot-checked job sp->job from node n. Two agreeing copies land;
 * two that disagree send a third to another node, and the copy it agrees
 * with lands while the other's node is quarantined. */
static void s_spot_result(dispatch_t *d, render_t *r, spot_t *sp, node_t *n, const float *pcm, size_t n_bytes,
                          uint64_t xxh3)
{
    char target[256], line[1024];
    const plan_job_t *pj = &r->plan->jobs[sp->job];
    plan_target_label(r->plan, pj->target_index, target, sizeof target);
    if (sp->tie_break) {
        int agree = xxh3 == sp->xxh3[0] ? 0 : xxh3 == sp->xxh3[1] ? 1 : -1;
        if (agree < 0) {
            snprintf(line, sizeof line,
                     "spot check: %s segment %u rendered three ways: '%s' %016" PRIx64 ", '%s' %016" PRIx64
                     ", '%s' %016" PRIx64 "; the nodes do not render alike",
                     target, pj->segment_index, sp->node[0], sp->xxh3[0], sp->node[1], sp->xxh3[1], n->name, xxh3);
            s_finish(d, r, 1, line, NULL);
            return;
        }
        const char *odd = sp->node[1 - agree];
        snprintf(line, sizeof line,
                 "spot check: node '%s' rendered %s segment %u differently from '%s' and '%s' (xxh3 %016" PRIx64
                 " against %016" PRIx64 ")",
                 odd, target, pj->segment_index, sp->node[agree], n->name, sp->xxh3[1 - agree], xxh3);
        sf_log(SF_LOG_ERROR, "coordinator dispatch", "%s", line);
        s_add_mismatch(r, line);
        s_emit_node_event(d, line);
        for (size_t i = 0; i < d->n_nodes; i++)
            if (d->nodes[i].alive && strcmp(d->nodes[i].name, odd) == 0 && !s_quarantined(d, odd, s_now_ms())) {
                d->nodes[i].fails_in_row = (uint32_t)d->cfg.quarantine_after - 1;
                s_node_failed(d, &d->nodes[i], "a spot check found its frames differ from two other nodes'");
            }
        s_spot_settle(d, r, sp, agree, n->name);
        return;
    }
    uint32_t c = sp->n_copies++;
    sp->xxh3[c] = xxh3;
    snprintf(sp->node[c], sizeof sp->node[c], "%s", n->name);
    sp->pcm[c] = sf_malloc(n_bytes);
    if (!sp->pcm[c]) {
        s_finish(d, r, 1, "out of memory holding a spot-checked segment", NULL);
        return;
    }
    memcpy(sp->pcm[c], pcm, n_bytes);
    if (sp->n_copies == 1 && sp->skipped) {
        s_spot_settle(d, r, sp, 0, NULL);
        return;
    }
    if (sp->n_copies < 2)
        return;
    if (sp->xxh3[0] == sp->xxh3[1]) {
        s_spot_settle(d, r, sp, 0, sp->node[1]);
        return;
    }
    sp->tie_break = true;
    snprintf(line, sizeof line,
             "spot check: '%s' and '%s' rendered %s segment %u differently (xxh3 %016" PRIx64 " and %016" PRIx64
             "); a third node decides",
             sp->node[0], sp->node[1], target, pj->segment_index, sp->xxh3[0], sp->xxh3[1]);
    sf_log(SF_LOG_WARN, "coordinator dispatch", "%s", line);
    s_emit_node_event(d, line);
    s_requeue(r, r->plan->n_jobs + (size_t)(sp - r->spots));
}

static void s_on_result(dispatch_t *d, node_t *n, const sf_wire_msg_t *m)
{
    size_t slot;
    render_t *r = s_find_job(d, m->u.result.job_id, &slot);
    int idx = (int)(n - d->nodes);
    if (!r || r->state[slot] != JOB_RUNNING || r->node_of[slot] != idx || r->attempt[slot] != m->u.result.attempt) {
        sf_log(SF_LOG_DEBUG, "coordinator dispatch", "stale result %" PRIu64 " from node '%s' dropped",
               m->u.result.job_id, n->name);
        return;
    }
    size_t j = s_plan_job(r, slot);
    const plan_job_t *pj = &r->plan->jobs[j];
    char why[256] = "";
    int expect_channels = r->plan->targets[pj->target_index].n_channels;
    if (m->u.result.n_channels != (uint32_t)expect_channels || m->u.result.n_frames != (uint64_t)pj->n_frames)
        snprintf(why, sizeof why, "result has %u channels x %" PRIu64 " frames, the job is %d x %" PRId64,
                 m->u.result.n_channels, m->u.result.n_frames, expect_channels, pj->n_frames);
    else if (sf_hash_xxh3(m->u.result.pcm, m->u.result.n_pcm_bytes) != m->u.result.xxh3)
        snprintf(why, sizeof why, "checksum mismatch: the frames do not match their xxh3");
    if (*why) {
        s_job_failed(d, r, slot, n, why);
        return;
    }
    r->state[slot] = JOB_DONE;
    r->node_of[slot] = -1;
    n->fails_in_row = 0;
    n->jobs_done++;
    n->audio_s += (double)pj->n_frames / r->session->sample_rate;
    s_count_latency(&d->stats, (double)(s_now_ms() - r->sent_ms[slot]) / 1000.0);
    if (r->segments[j].node_name[0])
        return; /* landed already: a spot check settled without this copy */
    size_t k = r->spot_of[j];
    if (k != SIZE_MAX && !r->spots[k].settled)
        s_spot_result(d, r, &r->spots[k], n, m->u.result.pcm, m->u.result.n_pcm_bytes, m->u.result.xxh3);
    else
        s_land(d, r, j, m->u.result.pcm, m->u.result.xxh3, n->name, NULL);
}

static void s_on_job_error(dispatch_t *d, node_t *n, const sf_wire_msg_t *m)
{
    size_t j;
    render_t *r = s_find_job(d, m->u.job_error.job_id, &j);
    if (!r || r->state[j] != JOB_RUNNING || r->node_of[j] != (int)(n - d->nodes) ||
        r->attempt[j] != m->u.job_error.attempt)
        return;
    s_job_failed(d, r, j, n, m->u.job_error.message);
}

/* A node's heartbeat: where each job it holds has got to. */
static void s_on_heartbeat(dispatch_t *d, node_t *n, const sf_wire_msg_t *m)
{
    int64_t now = s_now_ms();
    for (size_t i = 0; i < m->u.heartbeat.n_jobs; i++) {
        const sf_wire_job_progress_t *p = &m->u.heartbeat.jobs[i];
        size_t j;
        render_t *r = s_find_job(d, p->job_id, &j);
        if (!r || r->state[j] != JOB_RUNNING || r->node_of[j] != (int)(n - d->nodes) || r->attempt[j] != p->attempt)
            continue;
        if (p->frames_done != r->progress[j]) {
            r->progress[j] = p->frames_done;
            r->moved_ms[j] = now;
        }
    }
}

/* ---- clients ---------------------------------------------------------- */

static void s_forward_to_client(void *ctx, const dispatch_event_t *ev)
{
    client_t *c = ctx;
    if (c->note && ev->kind != DISPATCH_EV_DONE) {
        sf_wire_msg_t note = {.kind = SF_WIRE_PROGRESS};
        note.u.progress.jobs_done = ev->jobs_done;
        note.u.progress.jobs_total = ev->jobs_total;
        note.u.progress.nodes = ev->nodes;
        note.u.progress.event = c->note;
        note.u.progress.render_id = ev->render_id;
        if (s_send(c->d, c->id, c->n_id, &note) == SF_OK)
            c->note = NULL;
        return;
    }
    sf_wire_msg_t m = {0};
    if (ev->kind == DISPATCH_EV_DONE) {
        m.kind = SF_WIRE_DONE;
        m.u.done.exit_code = (uint32_t)ev->exit_code;
        m.u.done.message = ev->message ? ev->message : "";
        m.u.done.manifest_path = ev->manifest_path ? ev->manifest_path : "";
    } else {
        m.kind = SF_WIRE_PROGRESS;
        m.u.progress.jobs_done = ev->jobs_done;
        m.u.progress.jobs_total = ev->jobs_total;
        m.u.progress.nodes = ev->nodes;
        m.u.progress.event = ev->message ? ev->message : "";
        m.u.progress.render_id = ev->render_id;
    }
    s_send(c->d, c->id, c->n_id, &m);
}

static void s_reply_done(dispatch_t *d, const uint8_t *id, size_t n_id, int exit_code, const char *message)
{
    sf_wire_msg_t done = {.kind = SF_WIRE_DONE};
    done.u.done.exit_code = (uint32_t)exit_code;
    done.u.done.message = message;
    done.u.done.manifest_path = "";
    s_send(d, id, n_id, &done);
}

static void s_on_cancel(dispatch_t *d, const uint8_t *id, size_t n_id, const sf_wire_msg_t *m)
{
    char line[256];
    for (render_t *r = d->renders; r; r = r->next)
        if (r->id == m->u.cancel.render_id && !r->finished) {
            if (r->delivering) {
                snprintf(line, sizeof line, "render %u of '%s' is rendered and being delivered: too late to cancel",
                         r->id, r->session ? r->session->name : "?");
                s_reply_done(d, id, n_id, 1, line);
                return;
            }
            snprintf(line, sizeof line, "render %u of '%s' cancelled", r->id, r->session ? r->session->name : "?");
            sf_log(SF_LOG_INFO, "coordinator dispatch", "%s by a client", line);
            s_finish(d, r, 1, "cancelled by a client ('stemfarm cancel')", NULL);
            s_reply_done(d, id, n_id, 0, line);
            return;
        }
    snprintf(line, sizeof line, "no render %u in progress on this coordinator", m->u.cancel.render_id);
    s_reply_done(d, id, n_id, 2, line);
}

/* Status lists renders in the order they are served (s_by_priority). */
static int s_info_by_priority(const void *a, const void *b)
{
    const sf_wire_render_info_t *ra = a, *rb = b;
    if (ra->priority != rb->priority)
        return ra->priority > rb->priority ? -1 : 1;
    return ra->render_id < rb->render_id ? -1 : ra->render_id > rb->render_id;
}

static void s_on_status(dispatch_t *d, const uint8_t *id, size_t n_id)
{
    size_t n_renders = 0, n_nodes = 0;
    for (render_t *r = d->renders; r; r = r->next)
        n_renders += !r->finished;
    for (size_t i = 0; i < d->n_nodes; i++)
        n_nodes += d->nodes[i].alive;
    n_renders = n_renders < SF_WIRE_MAX_LIST ? n_renders : SF_WIRE_MAX_LIST;
    n_nodes = n_nodes < SF_WIRE_MAX_LIST ? n_nodes : SF_WIRE_MAX_LIST;
    sf_wire_render_info_t *renders = sf_calloc(n_renders ? n_renders : 1, sizeof *renders);
    sf_wire_node_info_t *nodes = sf_calloc(n_nodes ? n_nodes : 1, sizeof *nodes);
    if (!renders || !nodes) {
        sf_free(renders);
        sf_free(nodes);
        s_reply_done(d, id, n_id, 1, "the coordinator is out of memory");
        return;
    }
    int64_t now = s_now_ms();
    size_t k = 0;
    for (render_t *r = d->renders; r && k < n_renders; r = r->next) {
        if (r->finished)
            continue;
        uint32_t running = 0;
        for (size_t j = 0; r->plan && j < r->n_slots; j++)
            running += r->state[j] == JOB_RUNNING;
        renders[k++] = (sf_wire_render_info_t){.render_id = r->id,
                                               .session_name = r->session ? r->session->name : "",
                                               .session_path = r->session ? r->session->path : "",
                                               .priority = r->priority,
                                               .jobs_done = r->jobs_done,
                                               .jobs_total = r->plan ? r->plan->n_jobs : 0,
                                               .jobs_running = running,
                                               .elapsed_ms = (uint64_t)(now - r->started_ms)};
    }
    k = 0;
    for (size_t i = 0; i < d->n_nodes && k < n_nodes; i++) {
        const node_t *n = &d->nodes[i];
        if (!n->alive)
            continue;
        nodes[k++] = (sf_wire_node_info_t){.name = n->name,
                                           .state = s_quarantined(d, n->name, now) ? "quarantined" : "ready",
                                           .slots = n->slots,
                                           .jobs_running = n->in_flight,
                                           .jobs_done = n->jobs_done,
                                           .failures = n->failures,
                                           .last_seen_ms = (uint64_t)(now - n->last_seen_ms)};
    }
    qsort(renders, n_renders, sizeof *renders, s_info_by_priority);
    sf_wire_msg_t m = {.kind = SF_WIRE_STATUS};
    m.u.status.draining = d->draining;
    m.u.status.renders = renders;
    m.u.status.n_renders = n_renders;
    m.u.status.nodes = nodes;
    m.u.status.n_nodes = n_nodes;
    s_send(d, id, n_id, &m);
    sf_free(renders);
    sf_free(nodes);
}

/* Node traffic from a peer we do not know: after a coordinator restart its
 * nodes still talk to the old one. Tell it, once in a while, to say hello. */
static void s_reset_peer(dispatch_t *d, const uint8_t *id, size_t n_id, sf_wire_kind_t kind)
{
    int64_t now = s_now_ms();
    size_t n = d->n_resets < 16 ? d->n_resets : 16;
    for (size_t i = 0; i < n; i++) {
        reset_t *x = &d->resets[i];
        if (x->n_id == n_id && memcmp(x->id, id, n_id) == 0 && now - x->at_ms < RESET_EVERY_MS)
            return;
    }
    reset_t *x = &d->resets[d->n_resets++ % 16];
    memcpy(x->id, id, n_id);
    x->n_id = n_id;
    x->at_ms = now;
    sf_log(SF_LOG_INFO, "coordinator dispatch", "%s from a node that has not said hello: asked it to",
           sf_wire_kind_name(kind));
    sf_wire_msg_t m = {.kind = SF_WIRE_RESET};
    m.u.reset.reason = "this coordinator does not know the node (it restarted): say hello again";
    s_send(d, id, n_id, &m);
}

static void s_on_submit(dispatch_t *d, const uint8_t *id, size_t n_id, const sf_wire_msg_t *m)
{
    if (d->draining) {
        s_reply_done(d, id, n_id, 3, "the coordinator is shutting down: submit again once it has restarted");
        return;
    }
    client_t *c = sf_calloc(1, sizeof *c);
    if (!c)
        return;
    memcpy(c->id, id, n_id);
    c->n_id = n_id;
    c->d = d;
    sf_log(SF_LOG_INFO, "coordinator dispatch", "submission of '%s'", m->u.submit.session_path);
    sf_err_t e = {0};
    dispatch_request_t req = {.session_path = m->u.submit.session_path,
                              .yaml = m->u.submit.yaml,
                              .n_yaml_bytes = m->u.submit.n_yaml_bytes,
                              .out_dir = m->u.submit.out_dir,
                              .segment_frames = (int64_t)m->u.submit.segment_frames,
                              .force = m->u.submit.force,
                              .profile = m->u.submit.profile,
                              .priority = m->u.submit.priority};
    if (dispatch_submit(d, &req, s_forward_to_client, c, &e)) {
        s_reply_done(d, id, n_id, 1, e.msg);
        sf_free(c);
    }
}

/* ---- metrics, status and dashboard (monitor.h) ----------------------------- */

static const char *s_node_state(const dispatch_t *d, const node_t *n, int64_t now)
{
    return s_quarantined(d, n->name, now) ? "quarantined" : n->in_flight ? "busy" : "idle";
}

static char *s_metrics_text(dispatch_t *d, size_t *n_bytes)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, n_bytes);
    if (!f)
        return NULL;
    int64_t now = s_now_ms();
    const stats_t *st = &d->stats;
    size_t busy = 0, idle = 0, quarantined = 0, queued = 0, running = 0, active = 0;
    for (size_t i = 0; i < d->n_nodes; i++) {
        if (!d->nodes[i].alive)
            continue;
        const char *state = s_node_state(d, &d->nodes[i], now);
        busy += state[0] == 'b';
        idle += state[0] == 'i';
        quarantined += state[0] == 'q';
    }
    for (render_t *r = d->renders; r; r = r->next) {
        if (r->finished || !r->plan)
            continue;
        active++;
        for (size_t j = 0; j < r->n_slots; j++) {
            queued += r->state[j] == JOB_QUEUED;
            running += r->state[j] == JOB_RUNNING;
        }
    }
    fprintf(f, "# HELP stemfarm_nodes Render nodes connected, by state.\n# TYPE stemfarm_nodes gauge\n");
    fprintf(f, "stemfarm_nodes{state=\"busy\"} %zu\nstemfarm_nodes{state=\"idle\"} %zu\n", busy, idle);
    fprintf(f, "stemfarm_nodes{state=\"quarantined\"} %zu\n", quarantined);
    fprintf(f, "# HELP stemfarm_jobs Jobs of the renders in progress, by state.\n# TYPE stemfarm_jobs gauge\n");
    fprintf(f, "stemfarm_jobs{state=\"queued\"} %zu\nstemfarm_jobs{state=\"running\"} %zu\n", queued, running);
    fprintf(f,
            "# HELP stemfarm_jobs_done_total Results accepted from nodes.\n# TYPE stemfarm_jobs_done_total counter\n");
    fprintf(f, "stemfarm_jobs_done_total %" PRIu64 "\n", st->results);
    fprintf(f,
            "# HELP stemfarm_jobs_failed_total Jobs that failed on a node (errors, bad results, lost leases).\n"
            "# TYPE stemfarm_jobs_failed_total counter\nstemfarm_jobs_failed_total %" PRIu64 "\n",
            st->jobs_failed);
    fprintf(f,
            "# HELP stemfarm_retries_total Jobs issued again after a failure, a lost node or no progress.\n"
            "# TYPE stemfarm_retries_total counter\nstemfarm_retries_total %" PRIu64 "\n",
            st->retries);
    fprintf(f,
            "# HELP stemfarm_quarantines_total Nodes quarantined.\n# TYPE stemfarm_quarantines_total counter\n"
            "stemfarm_quarantines_total %" PRIu64 "\n",
            st->quarantines);
    fprintf(f,
            "# HELP stemfarm_segments_landed_total Segments journalled and stitched.\n"
            "# TYPE stemfarm_segments_landed_total counter\nstemfarm_segments_landed_total %" PRIu64 "\n",
            st->segments_landed);
    fprintf(f,
            "# HELP stemfarm_audio_seconds_rendered_total Audio of the landed segments, all targets.\n"
            "# TYPE stemfarm_audio_seconds_rendered_total counter\nstemfarm_audio_seconds_rendered_total %.6f\n",
            st->audio_s);
    fprintf(f,
            "# HELP stemfarm_realtime_factor Audio landed per wall second over the last %d s.\n"
            "# TYPE stemfarm_realtime_factor gauge\nstemfarm_realtime_factor %.3f\n",
            RT_WINDOW_S, s_realtime(st));
    fprintf(f,
            "# HELP stemfarm_bytes_received_total Bytes of the messages received.\n"
            "# TYPE stemfarm_bytes_received_total counter\nstemfarm_bytes_received_total %" PRIu64 "\n",
            st->bytes_in);
    fprintf(f,
            "# HELP stemfarm_messages_received_total Messages received.\n"
            "# TYPE stemfarm_messages_received_total counter\nstemfarm_messages_received_total %" PRIu64 "\n",
            st->messages_in);
    fprintf(f, "# HELP stemfarm_segment_latency_seconds From sending a job to accepting its result.\n"
               "# TYPE stemfarm_segment_latency_seconds histogram\n");
    uint64_t cumulative = 0;
    for (size_t b = 0; b < LATENCY_BUCKETS; b++) {
        cumulative += st->latency_count[b];
        fprintf(f, "stemfarm_segment_latency_seconds_bucket{le=\"%g\"} %" PRIu64 "\n", s_latency_le[b], cumulative);
    }
    cumulative += st->latency_count[LATENCY_BUCKETS];
    fprintf(f, "stemfarm_segment_latency_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cumulative);
    fprintf(f, "stemfarm_segment_latency_seconds_sum %.6f\nstemfarm_segment_latency_seconds_count %" PRIu64 "\n",
            st->latency_sum, cumulative);
    fprintf(f, "# HELP stemfarm_renders Renders in progress.\n# TYPE stemfarm_renders gauge\nstemfarm_renders %zu\n",
            active);
    fprintf(f, "# HELP stemfarm_renders_finished_total Renders that ended, by outcome.\n"
               "# TYPE stemfarm_renders_finished_total counter\n");
    fprintf(f, "stemfarm_renders_finished_total{outcome=\"delivered\"} %" PRIu64 "\n", st->renders_delivered);
    fprintf(f, "stemfarm_renders_finished_total{outcome=\"failed\"} %" PRIu64 "\n", st->renders_failed);
    fprintf(f,
            "# HELP stemfarm_draining 1 while the coordinator drains.\n# TYPE stemfarm_draining gauge\n"
            "stemfarm_draining %d\n",
            d->draining ? 1 : 0);
    fprintf(f,
            "# HELP stemfarm_uptime_seconds Since the coordinator started.\n# TYPE stemfarm_uptime_seconds gauge\n"
            "stemfarm_uptime_seconds %.3f\n",
            (double)(now - st->started_ms) / 1000.0);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

static json_t *s_render_json(const dispatch_t *d, const render_t *r, int64_t now)
{
    (void)d;
    size_t running = 0;
    json_t *failures = json_array();
    char target[256], list[1800];
    for (size_t j = 0; j < r->n_slots; j++) {
        running += r->state[j] == JOB_RUNNING;
        if (r->fails[j] && r->fails[j]->n && json_array_size(failures) < 10) {
            const plan_job_t *pj = &r->plan->jobs[s_plan_job(r, j)];
            plan_target_label(r->plan, pj->target_index, target, sizeof target);
            s_failures_text(r->fails[j], list, sizeof list);
            json_array_append_new(failures, json_sprintf("%s segment %u: %s", target, pj->segment_index, list));
        }
    }
    double elapsed = (double)(now - r->started_ms) / 1000.0;
    double total = (double)r->plan->n_jobs, done = (double)r->jobs_done;
    json_t *o = json_pack("{s:I, s:s, s:s, s:i, s:I, s:I, s:I, s:f, s:f, s:o}", "render_id", (json_int_t)r->id,
                          "session", r->session->name, "path", r->session->path, "priority", (int)r->priority,
                          "jobs_done", (json_int_t)r->jobs_done, "jobs_total", (json_int_t)r->plan->n_jobs,
                          "jobs_running", (json_int_t)running, "elapsed_s", elapsed, "audio_s",
                          (double)r->plan->output_frames / r->session->sample_rate, "failures", failures);
    if (o && done > 0)
        json_object_set_new(o, "eta_s", json_real(elapsed * (total - done) / done));
    return o;
}

static char *s_status_text(dispatch_t *d, size_t *n_bytes)
{
    int64_t now = s_now_ms();
    json_t *nodes = json_array(), *renders = json_array(), *finished = json_array();
    for (size_t i = 0; i < d->n_nodes; i++) {
        const node_t *n = &d->nodes[i];
        if (!n->alive)
            continue;
        json_t *jobs = json_array();
        char target[256];
        for (render_t *r = d->renders; r; r = r->next)
            for (size_t j = 0; !r->finished && r->plan && j < r->n_slots; j++)
                if (r->state[j] == JOB_RUNNING && r->node_of[j] == (int)i) {
                    const plan_job_t *pj = &r->plan->jobs[s_plan_job(r, j)];
                    plan_target_label(r->plan, pj->target_index, target, sizeof target);
                    double frames = (double)(pj->n_frames + pj->preroll_frames);
                    json_array_append_new(jobs, json_pack("{s:I, s:s, s:i, s:f}", "render_id", (json_int_t)r->id,
                                                          "target", target, "segment", (int)pj->segment_index,
                                                          "progress", frames > 0 ? r->progress[j] / frames : 0.0));
                }
        double up = (double)(now - n->joined_ms) / 1000.0;
        const quarantine_t *q = s_quarantined(d, n->name, now);
        json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:i, s:s, s:i, s:I, s:i, s:f, s:f, s:f, s:o}", "name", n->name,
                              "state", s_node_state(d, n, now), "cores", (int)n->cores, "threads", (int)n->threads,
                              "slots", (int)n->slots, "simd", n->simd, "jobs_running", (int)n->in_flight, "jobs_done",
                              (json_int_t)n->jobs_done, "failures", (int)n->failures, "audio_s", n->audio_s, "realtime",
                              up > 0 ? n->audio_s / up : 0.0, "last_seen_s", (double)(now - n->last_seen_ms) / 1000.0,
                              "jobs", jobs);
        if (o && q)
            json_object_set_new(o, "quarantine", json_string(q->why));
        json_array_append_new(nodes, o);
    }
    for (render_t *r = d->renders; r; r = r->next)
        if (!r->finished && r->plan)
            json_array_append_new(renders, s_render_json(d, r, now));
    size_t kept = d->n_finished < FINISHED_KEPT ? d->n_finished : FINISHED_KEPT;
    for (size_t k = 0; k < kept; k++) {
        const finished_t *fin = &d->finished[(d->n_finished - 1 - k) % FINISHED_KEPT];
        json_array_append_new(finished, json_pack("{s:I, s:s, s:i, s:s, s:f}", "render_id", (json_int_t)fin->id,
                                                  "session", fin->session, "exit_code", fin->exit_code, "message",
                                                  fin->message, "ago_s", (double)(now - fin->ended_ms) / 1000.0));
    }
    const stats_t *st = &d->stats;
    json_t *root =
        json_pack("{s:f, s:b, s:i, s:f, s:f, s:I, s:I, s:I, s:I, s:o, s:o, s:o}", "uptime_s",
                  (double)(now - st->started_ms) / 1000.0, "draining", d->draining, "incarnation", (int)d->incarnation,
                  "realtime", s_realtime(st), "audio_s", st->audio_s, "jobs_done", (json_int_t)st->results,
                  "jobs_failed", (json_int_t)st->jobs_failed, "retries", (json_int_t)st->retries, "quarantines",
                  (json_int_t)st->quarantines, "nodes", nodes, "renders", renders, "finished", finished);
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!text)
        return NULL;
    *n_bytes = strlen(text);
    char *copy = sf_malloc(*n_bytes + 1);
    if (copy)
        memcpy(copy, text, *n_bytes + 1);
    free(text);
    return copy;
}

static void s_http(void *ctx, const char *path, monitor_reply_t *reply)
{
    dispatch_t *d = ctx;
    if (!strcmp(path, "/metrics")) {
        size_t n = 0;
        char *text = s_metrics_text(d, &n);
        if (text) {
            reply->body = sf_malloc(n ? n : 1);
            if (reply->body)
                memcpy(reply->body, text, n);
            reply->n_body = n;
            free(text);
        }
        reply->status = 200;
        reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (!strcmp(path, "/status.json")) {
        reply->body = s_status_text(d, &reply->n_body);
        reply->status = 200;
        reply->content_type = "application/json";
    } else if (!strcmp(path, "/") || !strcmp(path, "/dashboard")) {
        reply->n_body = strlen((const char *)dashboard_html);
        reply->body = sf_malloc(reply->n_body);
        if (reply->body)
            memcpy(reply->body, dashboard_html, reply->n_body);
        reply->status = 200;
        reply->content_type = "text/html; charset=utf-8";
    }
}

/* ---- the loop --------------------------------------------------------- */

/* Serves a chunk of a media file of a session being rendered, to a node
 * that ships media. Everything else is answered with a FetchError saying
 * why: nothing is read that is not on a render's list. */
static void s_on_fetch(dispatch_t *d, node_t *n, const sf_wire_msg_t *m)
{
    char why[SF_WIRE_MAX_TEXT] = "";
    render_t *found = NULL;
    for (render_t *r = d->renders; r && !found; r = r->next)
        if (!r->finished && r->session && !memcmp(r->session->hash, m->u.fetch.session_hash, SF_SESSION_HASH_BYTES))
            found = r;
    char hex[65];
    sf_hash_hex(m->u.fetch.session_hash, 32, hex);
    hex[12] = '\0';
    uint8_t *buf = NULL;
    size_t n_read = 0;
    if (!n->ship) {
        snprintf(why, sizeof why, "this node did not say it ships media (media: ship)");
    } else if (!found) {
        snprintf(why, sizeof why, "session %s is not being rendered here", hex);
    } else if (!found->ship || !ship_ready(found->ship)) {
        snprintf(why, sizeof why, "the media of session %s are not ready to ship yet", hex);
    } else if (!(buf = sf_malloc(m->u.fetch.n_bytes))) {
        snprintf(why, sizeof why, "out of memory on the coordinator");
    } else {
        sf_err_t e = {0};
        if (ship_read(found->ship, m->u.fetch.index, m->u.fetch.sha256, m->u.fetch.offset, buf, m->u.fetch.n_bytes,
                      &n_read, &e))
            snprintf(why, sizeof why, "session %s: %s", hex, e.msg);
    }
    sf_wire_msg_t a;
    if (why[0]) {
        sf_wire_text_sanitize(why);
        sf_log(SF_LOG_WARN, "coordinator dispatch", "fetch from node '%s' refused: %s", n->name, why);
        a = (sf_wire_msg_t){.kind = SF_WIRE_FETCH_ERROR};
        a.u.fetch_error.session_hash = m->u.fetch.session_hash;
        a.u.fetch_error.index = m->u.fetch.index;
        a.u.fetch_error.offset = m->u.fetch.offset;
        a.u.fetch_error.message = why;
    } else {
        a = (sf_wire_msg_t){.kind = SF_WIRE_FETCH_DATA};
        a.u.fetch_data.session_hash = m->u.fetch.session_hash;
        a.u.fetch_data.index = m->u.fetch.index;
        a.u.fetch_data.offset = m->u.fetch.offset;
        a.u.fetch_data.data = buf;
        a.u.fetch_data.n_bytes = n_read;
    }
    s_send(d, n->id, n->n_id, &a);
    sf_free(buf);
    /* A node fetching media is working for the jobs that wait for them:
     * they count as moving, so the stuck check leaves them be. */
    int64_t now = s_now_ms();
    int idx = (int)(n - d->nodes);
    for (render_t *r = d->renders; r && !why[0]; r = r->next)
        for (size_t j = 0; !r->finished && r->plan && j < r->n_slots; j++)
            if (r->state[j] == JOB_RUNNING && r->node_of[j] == idx)
                r->moved_ms[j] = now;
}

static void s_on_message(dispatch_t *d, const uint8_t *id, size_t n_id, const uint8_t *data, size_t n_bytes)
{
    sf_wire_msg_t m;
    sf_err_t e = {0};
    node_t *n = s_find_node(d, id, n_id);
    d->stats.bytes_in += n_bytes;
    d->stats.messages_in++;
    if (sf_wire_decode(data, n_bytes, &m, &e)) {
        sf_log(SF_LOG_WARN, "coordinator dispatch", "bad message from %s '%s': %s", n ? "node" : "peer",
               n ? n->name : "?", e.msg);
        return;
    }
    if (n)
        n->last_seen_ms = s_now_ms();
    bool node_traffic = m.kind == SF_WIRE_CREDIT || m.kind == SF_WIRE_RESULT || m.kind == SF_WIRE_JOB_ERROR ||
                        m.kind == SF_WIRE_HEARTBEAT || m.kind == SF_WIRE_BYE || m.kind == SF_WIRE_FETCH;
    if (!n && node_traffic && m.kind != SF_WIRE_BYE) {
        s_reset_peer(d, id, n_id, m.kind);
        sf_wire_msg_clear(&m);
        return;
    }
    switch (m.kind) {
    case SF_WIRE_HELLO: s_on_hello(d, id, n_id, &m); break;
    case SF_WIRE_SUBMIT: s_on_submit(d, id, n_id, &m); break;
    case SF_WIRE_CANCEL: s_on_cancel(d, id, n_id, &m); break;
    case SF_WIRE_STATUS_REQUEST: s_on_status(d, id, n_id); break;
    case SF_WIRE_CREDIT:
        if (n) {
            uint32_t room = n->slots > n->in_flight + n->credits ? n->slots - n->in_flight - n->credits : 0;
            n->credits += m.u.credit.n_jobs < room ? m.u.credit.n_jobs : room;
        }
        break;
    case SF_WIRE_RESULT:
        if (n) {
            n->in_flight -= n->in_flight > 0;
            s_on_result(d, n, &m);
        }
        break;
    case SF_WIRE_JOB_ERROR:
        if (n) {
            n->in_flight -= n->in_flight > 0;
            s_on_job_error(d, n, &m);
        }
        break;
    case SF_WIRE_BYE:
        if (n)
            s_lose_node(d, n, m.u.bye.reason[0] ? m.u.bye.reason : "said goodbye");
        break;
    case SF_WIRE_HEARTBEAT:
        if (n)
            s_on_heartbeat(d, n, &m);
        break;
    case SF_WIRE_FETCH:
        if (n)
            s_on_fetch(d, n, &m);
        break;
    default:
        sf_log(SF_LOG_WARN, "coordinator dispatch", "unexpected %s from %s", sf_wire_kind_name(m.kind),
               n ? n->name : "unknown peer");
        break;
    }
    sf_wire_msg_clear(&m);
}

/* Running jobs whose progress stood still past the limit go elsewhere
 * (the node keeps its copy and answers it in time; that answer is stale). */
static void s_check_stuck(dispatch_t *d, int64_t now)
{
    for (render_t *r = d->renders; r; r = r->next) {
        for (size_t j = 0; !r->finished && !r->delivering && r->plan && j < r->n_slots; j++) {
            if (r->state[j] != JOB_RUNNING || now - r->moved_ms[j] <= d->cfg.stuck_timeout_ms)
                continue;
            char why[160];
            snprintf(why, sizeof why, "no progress for %.1f s (stuck at frame %" PRIu64 ")",
                     (double)(now - r->moved_ms[j]) / 1000.0, r->progress[j]);
            s_job_failed(d, r, j, &d->nodes[r->node_of[j]], why);
        }
    }
}

/* A copy of a spot-checked job that no node may render (they all have a
 * copy, failed it or are quarantined). Without a second node the check is
 * skipped: the first copy lands unchecked. Two copies that disagree with no
 * third node to decide fail the render. True when it was dealt with here. */
static bool s_spot_unplaceable(dispatch_t *d, render_t *r, spot_t *sp)
{
    char target[256], line[1024];
    const plan_job_t *pj = &r->plan->jobs[sp->job];
    plan_target_label(r->plan, pj->target_index, target, sizeof target);
    if (sp->tie_break) {
        snprintf(line, sizeof line,
                 "spot check: '%s' and '%s' rendered %s segment %u differently and no third node can tell which is "
                 "right",
                 sp->node[0], sp->node[1], target, pj->segment_index);
        s_finish(d, r, 1, line, NULL);
        return true;
    }
    size_t check = r->plan->n_jobs + (size_t)(sp - r->spots);
    if (sp->n_copies == 0 && r->state[sp->job] == JOB_QUEUED && r->state[check] != JOB_RUNNING)
        return false; /* the job itself has nowhere to go: the caller's message */
    sf_log(SF_LOG_WARN, "coordinator dispatch", "spot check of %s segment %u skipped: no second node to render it",
           target, pj->segment_index);
    sp->skipped = true;
    if (r->state[check] == JOB_QUEUED)
        r->state[check] = JOB_DONE;
    if (sp->n_copies == 1)
        s_spot_settle(d, r, sp, 0, NULL);
    return true;
}

/* A queued job that no connected node may run (each failed it, or is
 * quarantined) fails its render after a short grace for nodes to join. */
static void s_check_eligible(dispatch_t *d, int64_t now)
{
    if (s_live_nodes(d) == 0)
        return; /* no node at all: the no-node timeout speaks */
    for (render_t *r = d->renders; r; r = r->next) {
        if (r->finished || r->delivering || !r->plan)
            continue;
        size_t stuck_job = SIZE_MAX;
        bool any_queued = r->n_requeued > 0 || r->cursor < r->plan->n_jobs;
        for (size_t q = 0; q < r->n_requeued && stuck_job == SIZE_MAX; q++) {
            size_t j = r->requeued[q];
            bool someone = false;
            for (size_t i = 0; i < d->n_nodes && !someone; i++)
                someone = s_eligible(d, &d->nodes[i], r, j, now);
            if (r->state[j] == JOB_QUEUED && !someone)
                stuck_job = j;
        }
        if (stuck_job == SIZE_MAX && any_queued && r->cursor < r->plan->n_jobs) {
            bool someone = false; /* fresh jobs: any node not quarantined */
            for (size_t i = 0; i < d->n_nodes && !someone; i++)
                someone = d->nodes[i].alive && !s_quarantined(d, d->nodes[i].name, now);
            if (!someone)
                stuck_job = plan_dispatch_order(r->plan, r->cursor);
        }
        if (stuck_job == SIZE_MAX) {
            r->ineligible_since_ms = 0;
            continue;
        }
        if (!r->ineligible_since_ms)
            r->ineligible_since_ms = now;
        if (now - r->ineligible_since_ms < 3 * d->cfg.heartbeat_ms)
            continue;
        size_t k = r->spot_of[s_plan_job(r, stuck_job)];
        if (k != SIZE_MAX && !r->spots[k].settled && s_spot_unplaceable(d, r, &r->spots[k]))
            continue;
        char target[256], failed[1800], quarantined[1024] = "", msg[3500];
        const plan_job_t *pj = &r->plan->jobs[s_plan_job(r, stuck_job)];
        plan_target_label(r->plan, pj->target_index, target, sizeof target);
        s_failures_text(r->fails[stuck_job], failed, sizeof failed);
        size_t used = 0;
        for (size_t i = 0; i < d->n_nodes; i++) {
            const quarantine_t *q = d->nodes[i].alive ? s_quarantined(d, d->nodes[i].name, now) : NULL;
            if (q && used < sizeof quarantined) {
                int w = snprintf(quarantined + used, sizeof quarantined - used, "%s'%s' (%s)", used ? "; " : "",
                                 q->name, q->why);
                used += w > 0 ? (size_t)w : 0;
            }
        }
        snprintf(msg, sizeof msg, "no node left that may render %s segment %u%s%s%s%s", target, pj->segment_index,
                 failed[0] ? "; it failed on " : "", failed, quarantined[0] ? "; quarantined: " : "", quarantined);
        s_finish(d, r, 1, msg, NULL);
    }
}

/* Quarantines that are over: said once, so an operator sees the node back. */
static void s_end_quarantines(dispatch_t *d, int64_t now)
{
    for (size_t i = 0; i < d->n_quarantine;) {
        if (d->quarantine[i].until_ms > now) {
            i++;
            continue;
        }
        char line[256];
        snprintf(line, sizeof line, "node '%s' re-admitted: its quarantine of %g s is over", d->quarantine[i].name,
                 d->cfg.quarantine_ms / 1000.0);
        sf_log(SF_LOG_INFO, "coordinator dispatch", "%s", line);
        s_emit_node_event(d, line);
        d->quarantine[i] = d->quarantine[--d->n_quarantine];
    }
}

static void s_timers(dispatch_t *d)
{
    int64_t now = s_now_ms();
    s_end_quarantines(d, now);
    for (size_t i = 0; i < d->n_nodes; i++) {
        node_t *n = &d->nodes[i];
        if (n->alive && now - n->last_seen_ms > d->cfg.node_timeout_ms)
            s_lose_node(d, n, "silent past the timeout");
    }
    s_check_stuck(d, now);
    s_check_eligible(d, now);
    if (now >= d->next_heartbeat_ms) {
        sf_wire_msg_t hb = {.kind = SF_WIRE_HEARTBEAT};
        for (size_t i = 0; i < d->n_nodes; i++)
            if (d->nodes[i].alive) {
                hb.u.heartbeat.jobs_running = d->nodes[i].in_flight;
                s_send(d, d->nodes[i].id, d->nodes[i].n_id, &hb);
            }
        /* Clients hear from us every heartbeat, so silence means trouble. */
        for (render_t *r = d->renders; r; r = r->next)
            if (!r->finished && r->fn == s_forward_to_client)
                s_emit(d, r, DISPATCH_EV_PROGRESS, 0, NULL, NULL);
        d->next_heartbeat_ms = now + d->cfg.heartbeat_ms;
    }
    bool have_nodes = s_live_nodes(d) > 0;
    for (render_t *r = d->renders; r; r = r->next) {
        if (r->finished || r->delivering) /* delivering needs no node */
            continue;
        if (have_nodes) {
            r->nodeless_since_ms = 0;
        } else if (!r->nodeless_since_ms) {
            r->nodeless_since_ms = now;
        } else if (now - r->nodeless_since_ms > d->cfg.no_node_timeout_ms) {
            char msg[128];
            snprintf(msg, sizeof msg, "no render node connected for %.1f s", d->cfg.no_node_timeout_ms / 1000.0);
            s_finish(d, r, 3, msg, NULL);
        }
    }
}

/* Drops finished renders; their clients were told. */
static void s_reap(dispatch_t *d)
{
    render_t **pp = &d->renders;
    while (*pp) {
        render_t *r = *pp;
        if (r->finished) {
            *pp = r->next;
            if (r->fn == s_forward_to_client)
                sf_free(r->ctx);
            s_render_free(r);
        } else {
            pp = &r->next;
        }
    }
}

static bool s_should_stop(dispatch_t *d)
{
    if (d->cfg.stop && atomic_load(d->cfg.stop))
        return true;
    if (d->draining) {
        uint32_t out = 0;
        for (size_t i = 0; i < d->n_nodes; i++)
            out += d->nodes[i].alive ? d->nodes[i].in_flight : 0;
        return out == 0 || s_now_ms() >= d->drain_until_ms;
    }
    if (!d->cfg.exit_when_idle)
        return false;
    for (render_t *r = d->renders; r; r = r->next)
        if (!r->finished)
            return false;
    return true;
}

static void s_start_drain(dispatch_t *d)
{
    d->draining = true;
    d->drain_until_ms = s_now_ms() + d->cfg.drain_timeout_ms;
    uint32_t out = 0;
    for (size_t i = 0; i < d->n_nodes; i++)
        out += d->nodes[i].alive ? d->nodes[i].in_flight : 0;
    sf_log(SF_LOG_INFO, "coordinator dispatch", "draining: no new jobs; waiting up to %.0f s for %u jobs out",
           d->cfg.drain_timeout_ms / 1000.0, out);
    for (render_t *r = d->renders; r; r = r->next)
        if (!r->finished)
            s_emit(d, r, DISPATCH_EV_NODE, 0, "the coordinator is shutting down: jobs out finish, no new ones", NULL);
}

/* The drain is over: the renders in flight stay journalled for the next
 * start; their clients are told, and wait. */
static void s_end_drain(dispatch_t *d)
{
    size_t kept = 0;
    for (render_t *r = d->renders; r; r = r->next) {
        if (r->finished)
            continue;
        if (!r->journal) {
            s_finish(d, r, 3, "the coordinator stopped before the render finished", NULL);
            continue;
        }
        s_emit(d, r, DISPATCH_EV_NODE, 0,
               "the coordinator stopped; the render resumes where it was when it starts again", NULL);
        sf_log(SF_LOG_INFO, "coordinator dispatch", "render %u kept for the next start: %zu of %zu jobs landed", r->id,
               r->jobs_done, r->plan ? r->plan->n_jobs : 0);
        journal_close(&r->journal);
        stitch_destroy(&r->stitch, false);
        r->finished = true; /* without a DONE: it is not over */
        kept++;
    }
    sf_log(SF_LOG_INFO, "coordinator dispatch", "drained: %zu renders kept in '%s'", kept, d->cfg.state_dir);
}

sf_rc dispatch_run(dispatch_t *d, sf_err_t *err)
{
    zmq_msg_t id, body;
    zmq_msg_init(&id);
    zmq_msg_init(&body);
    sf_rc rc = SF_OK;
    d->next_heartbeat_ms = s_now_ms() + d->cfg.heartbeat_ms;
    /* Resumed renders whose every segment had landed: deliver them now. */
    for (render_t *r = d->renders; r; r = r->next)
        if (!r->finished && r->stitch && stitch_complete(r->stitch))
            s_complete(d, r);
    while (!s_should_stop(d)) {
        if (d->cfg.drain && atomic_load(d->cfg.drain) && !d->draining)
            s_start_drain(d);
        zmq_pollitem_t items[2] = {{.socket = d->router, .events = ZMQ_POLLIN},
                                   {.fd = d->monitor ? monitor_fd(d->monitor) : -1, .events = ZMQ_POLLIN}};
        int ready = zmq_poll(items, d->monitor ? 2 : 1, s_hash_media(d) ? 0 : 100);
        if (ready > 0 && d->monitor && (items[1].revents & ZMQ_POLLIN)) {
            monitor_serve(d->monitor, s_http, d);
            ready -= !(items[0].revents & ZMQ_POLLIN);
        }
        if (ready < 0 && zmq_errno() != EINTR) {
            rc = SF_ERR(err, SF_E_FARM, "poll failed: %s", zmq_strerror(zmq_errno()));
            break;
        }
        /* Drain what is waiting, but keep timers running under load. */
        for (int budget = 64; ready > 0 && budget > 0; budget--) {
            if (zmq_msg_recv(&id, d->router, ZMQ_DONTWAIT) < 0)
                break;
            if (!zmq_msg_more(&id)) /* a peer's message is always [id, body] */
                continue;
            if (zmq_msg_recv(&body, d->router, 0) < 0)
                break;
            bool extra = zmq_msg_more(&body);
            if (!extra && zmq_msg_size(&id) <= ROUTING_ID_MAX)
                s_on_message(d, zmq_msg_data(&id), zmq_msg_size(&id), zmq_msg_data(&body), zmq_msg_size(&body));
            while (extra) { /* not our protocol: discard the rest */
                zmq_msg_recv(&body, d->router, 0);
                extra = zmq_msg_more(&body);
            }
        }
        if (s_now_ms() >= d->next_timers_ms) {
            s_timers(d);
            d->next_timers_ms = s_now_ms() + TIMERS_EVERY_MS;
        }
        s_settle(d, true);
        s_collect_deliveries(d, false);
        s_assign(d);
        s_reap(d);
    }
    s_collect_deliveries(d, true); /* a delivery under way ends as it would have */
    if (d->draining && d->cfg.state_dir && !(d->cfg.stop && atomic_load(d->cfg.stop))) {
        s_end_drain(d);
    } else {
        for (render_t *r = d->renders; r; r = r->next)
            s_finish(d, r, 3, "the coordinator stopped before the render finished", NULL);
        sf_wire_msg_t bye = {.kind = SF_WIRE_SHUTDOWN};
        bye.u.shutdown.reason = "coordinator stopping";
        for (size_t i = 0; i < d->n_nodes; i++)
            if (d->nodes[i].alive)
                s_send(d, d->nodes[i].id, d->nodes[i].n_id, &bye);
    }
    zmq_msg_close(&id);
    zmq_msg_close(&body);
    return rc;
}

/* ---- resuming from journals ----------------------------------------- */

static render_t *s_render_by_id(dispatch_t *d, uint32_t id)
{
    for (render_t *r = d->renders; r; r = r->next)
        if (r->id == id && !r->finished)
            return r;
    return NULL;
}

static sf_rc s_replay_submit(void *ctx, const journal_submit_t *sub, journal_t **j, sf_err_t *err)
{
    dispatch_t *d = ctx;
    client_t *c = NULL;
    if (sub->n_client_id) {
        c = sf_calloc(1, sizeof *c);
        if (!c)
            return SF_ERR(err, SF_E_NOMEM, "out of memory");
        memcpy(c->id, sub->client_id, sub->n_client_id);
        c->n_id = sub->n_client_id;
        c->d = d;
        c->note = "the coordinator restarted; the render resumes where it was";
    }
    dispatch_request_t req = {.session_path = sub->session_path,
                              .yaml = sub->yaml,
                              .n_yaml_bytes = sub->n_yaml_bytes,
                              .out_dir = sub->out_dir,
                              .segment_frames = sub->segment_frames,
                              .force = sub->force,
                              .profile = sub->profile,
                              .priority = sub->priority};
    sf_log(SF_LOG_INFO, "coordinator dispatch", "resuming render %u of '%s' from its journal", sub->render_id,
           sub->session_path);
    journal_t *taken = *j;
    *j = NULL;
    render_t *r = s_render_new(d, &req, sub->render_id, taken, c ? s_forward_to_client : NULL, c, err);
    if (!r) {
        sf_free(c);
        return err ? err->code : SF_E_NOMEM;
    }
    return SF_OK;
}

static sf_rc s_replay_segment(void *ctx, uint32_t render_id, const journal_segment_t *seg, sf_err_t *err)
{
    dispatch_t *d = ctx;
    render_t *r = s_render_by_id(d, render_id);
    if (!r)
        return SF_OK; /* it ended when it was planned again (its DONE said why) */
    if (seg->job_index >= r->plan->n_jobs)
        return SF_ERR(err, SF_E_IO, "render %u: journalled job %" PRIu64 " is not in its plan of %zu jobs", render_id,
                      seg->job_index, r->plan->n_jobs);
    size_t j = (size_t)seg->job_index;
    const plan_job_t *pj = &r->plan->jobs[j];
    if (seg->n_channels != (uint32_t)r->plan->targets[pj->target_index].n_channels ||
        seg->n_frames != (uint64_t)pj->n_frames)
        return SF_ERR(
            err, SF_E_IO, "render %u: journalled job %zu has %u channels x %" PRIu64 " frames, the plan %d x %" PRId64,
            render_id, j, seg->n_channels, seg->n_frames, r->plan->targets[pj->target_index].n_channels, pj->n_frames);
    sf_rc rc = stitch_accept(r->stitch, j, seg->planar, err);
    if (rc)
        return rc;
    r->state[j] = JOB_DONE;
    size_t k = r->spot_of[j];
    if (k != SIZE_MAX) { /* landed: checked before, or not at all */
        r->spots[k].settled = r->spots[k].queued = true;
        r->state[r->plan->n_jobs + k] = JOB_DONE;
    }
    snprintf(r->segments[j].node_name, sizeof r->segments[j].node_name, "%s", seg->node_name);
    r->segments[j].xxh3 = seg->xxh3;
    if (seg->counted)
        r->jobs_done++;
    else if (!s_pend(d, r, j)) /* counted (and logged) after its journal's commit, as if it landed now */
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    return SF_OK;
}

static void s_replay_error(void *ctx, uint32_t render_id, const sf_err_t *e)
{
    dispatch_t *d = ctx;
    sf_log(SF_LOG_ERROR, "coordinator dispatch", "render %u cannot be resumed: %s", render_id, e->msg);
    render_t *r = s_render_by_id(d, render_id);
    if (r)
        s_finish(d, r, 1, e->msg, NULL);
}

/* Two coordinators on one state folder would write each other's journals:
 * the second is refused. The kernel drops the lock when its holder dies,
 * however it dies. */
static sf_rc s_lock_state(dispatch_t *d, sf_err_t *err)
{
    sf_rc rc = sf_media_mkdirs(d->cfg.state_dir, err);
    if (rc)
        return rc;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/lock", d->cfg.state_dir) >= (int)sizeof path)
        return SF_ERR(err, SF_E_INPUT, "state folder '%s': path too long", d->cfg.state_dir);
    d->state_lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (d->state_lock_fd < 0)
        return SF_ERR(err, SF_E_IO, "cannot open '%s': %s", path, strerror(errno));
    if (flock(d->state_lock_fd, LOCK_EX | LOCK_NB) != 0)
        return SF_ERR(
            err, SF_E_INPUT,
            "state folder '%s' is in use by another running coordinator: give each coordinator its own --state",
            d->cfg.state_dir);
    return SF_OK;
}

/* The incarnation, then every journalled render back in the queue. */
static sf_rc s_resume(dispatch_t *d, sf_err_t *err)
{
    sf_rc rc = s_lock_state(d, err);
    if (rc)
        return rc;
    rc = journal_next_incarnation(d->cfg.state_dir, &d->incarnation, err);
    if (rc)
        return rc;
    journal_replay_fns_t fns = {
        .on_submit = s_replay_submit, .on_segment = s_replay_segment, .on_error = s_replay_error};
    uint32_t max_id = 0;
    rc = journal_replay(d->cfg.state_dir, &fns, d, &max_id, err);
    if (rc)
        return rc;
    s_settle(d, false);
    d->next_render_id = max_id;
    size_t n = 0;
    for (render_t *r = d->renders; r; r = r->next) {
        if (r->finished)
            continue;
        n++;
        sf_log(SF_LOG_INFO, "coordinator dispatch", "render %u resumed: %zu of %zu jobs had landed", r->id,
               r->jobs_done, r->plan->n_jobs);
    }
    sf_log(SF_LOG_INFO, "coordinator dispatch", "incarnation %u; %zu renders resumed from '%s'", d->incarnation, n,
           d->cfg.state_dir);
    return SF_OK;
}

sf_rc dispatch_new(const dispatch_config_t *cfg, dispatch_t **out, sf_err_t *err)
{
    *out = NULL;
    dispatch_t *d = sf_calloc(1, sizeof *d);
    if (!d)
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    d->cfg = *cfg;
    d->state_lock_fd = -1;
    if (!d->cfg.heartbeat_ms)
        d->cfg.heartbeat_ms = 1000;
    if (!d->cfg.node_timeout_ms)
        d->cfg.node_timeout_ms = 15000;
    if (!d->cfg.no_node_timeout_ms)
        d->cfg.no_node_timeout_ms = 30000;
    if (!d->cfg.stuck_timeout_ms)
        d->cfg.stuck_timeout_ms = 120000;
    if (!d->cfg.quarantine_after)
        d->cfg.quarantine_after = 3;
    if (!d->cfg.quarantine_ms)
        d->cfg.quarantine_ms = 300000;
    if (!d->cfg.drain_timeout_ms)
        d->cfg.drain_timeout_ms = 60000;
    d->ctx = cfg->zmq_context;
    if (!d->ctx) {
        d->ctx = zmq_ctx_new();
        d->own_ctx = true;
    }
    d->router = d->ctx ? zmq_socket(d->ctx, ZMQ_ROUTER) : NULL;
    if (!d->router) {
        dispatch_destroy(&d);
        return SF_ERR(err, SF_E_FARM, "cannot create the coordinator socket: %s", zmq_strerror(zmq_errno()));
    }
    int64_t max_size = (int64_t)SF_WIRE_MAX_MESSAGE_BYTES;
    int one = 1, linger = 2000;
    zmq_setsockopt(d->router, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size);
    zmq_setsockopt(d->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(d->router, ZMQ_LINGER, &linger, sizeof linger);
    sf_rc secure_rc = cfg->secure ? sf_secure_server_apply(cfg->secure, d->router, err) : SF_OK;
    if (secure_rc) { /* before the bind: no peer ever meets a plain socket */
        dispatch_destroy(&d);
        return secure_rc;
    }
    if (zmq_bind(d->router, cfg->bind) != 0) {
        int e = zmq_errno();
        dispatch_destroy(&d);
        return SF_ERR(err, e == EADDRINUSE ? SF_E_IO : SF_E_INPUT, "cannot bind '%s': %s", cfg->bind, zmq_strerror(e));
    }
    if (cfg->http_bind) {
        sf_err_t e = {0};
        sf_rc hrc = monitor_open(cfg->http_bind, &d->monitor, &e);
        if (hrc && cfg->http_required) {
            dispatch_destroy(&d);
            return SF_ERR(err, hrc, "%s", e.msg);
        }
        if (hrc)
            sf_log(SF_LOG_WARN, "coordinator", "metrics and dashboard off: %s (--http ADDR:PORT to move them)", e.msg);
        else
            sf_log(SF_LOG_INFO, "coordinator", "metrics on http://%s/metrics, status on /status.json, dashboard on /",
                   monitor_address(d->monitor));
    }
    d->stats.started_ms = s_now_ms();
    if (cfg->state_dir && s_resume(d, err) != SF_OK) {
        dispatch_destroy(&d);
        return err ? err->code : SF_E_IO;
    }
    *out = d;
    return SF_OK;
}

const char *dispatch_http_address(const dispatch_t *d) { return d->monitor ? monitor_address(d->monitor) : NULL; }

void dispatch_destroy(dispatch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dispatch_t *d = *self_p;
    while (d->renders) {
        render_t *r = d->renders;
        d->renders = r->next;
        if (r->fn == s_forward_to_client)
            sf_free(r->ctx);
        s_render_free(r);
    }
    if (d->router)
        zmq_close(d->router);
    if (d->own_ctx && d->ctx)
        zmq_ctx_term(d->ctx);
    sf_free(d->nodes);
    sf_free(d->order);
    sf_free(d->quarantine);
    sf_free(d->landings);
    monitor_close(&d->monitor);
    if (d->state_lock_fd >= 0)
        close(d->state_lock_fd);
    sf_free(d);
    *self_p = NULL;
}
