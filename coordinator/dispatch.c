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

#include "deliver.h"
#include "plan.h"
#include "stitch.h"

#include "sf/alloc.h"
#include "sf/hash.h"
#include "sf/log.h"
#include "sf/media.h"
#include "sf/profile.h"
#include "sf/wire.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define MAX_ATTEMPTS       3
#define MAX_KNOWN_SESSIONS SF_WIRE_NODE_SESSIONS /* what a node keeps */
#define ROUTING_ID_MAX     256

typedef enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE } job_state_t;

typedef struct {
    uint8_t id[ROUTING_ID_MAX];
    size_t n_id;
    char name[64];
    uint32_t slots;
    uint32_t credits; /* jobs it asked for and has not been sent */
    uint32_t in_flight;
    int64_t last_seen_ms;
    uint8_t known[MAX_KNOWN_SESSIONS][SF_SESSION_HASH_BYTES]; /* sessions it holds, ring */
    size_t n_known;
    bool alive;
} node_t;

typedef struct render render_t;
struct render {
    uint32_t id;
    sf_session_t *session;
    uint8_t *yaml;
    size_t n_yaml_bytes;
    char *out_dir;
    plan_t *plan;
    stitch_t *stitch;
    job_state_t *state;
    uint32_t *attempt;
    uint32_t *failures;
    int *node_of; /* index into nodes while RUNNING */
    deliver_segment_t *segments;
    size_t *requeued; /* FIFO of job indices to send before the cursor */
    size_t n_requeued;
    size_t cursor; /* next position in dispatch order */
    size_t jobs_done;
    int64_t started_ms;
    int64_t nodeless_since_ms; /* when it last found no node at all; 0: has nodes */
    bool finished;
    dispatch_event_fn fn;
    void *ctx;
    render_t *next;
};

typedef struct {
    uint8_t id[ROUTING_ID_MAX];
    size_t n_id;
    dispatch_t *d;
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
    uint32_t next_render_id;
    int64_t next_heartbeat_ms;
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
        sf_log(SF_LOG_WARN, "coordinator dispatch", "cannot send %s: %s", sf_wire_kind_name(msg->kind),
               zmq_strerror(zmq_errno()));
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
    stitch_destroy(&r->stitch, true);
    plan_destroy(&r->plan);
    sf_session_destroy(&r->session);
    sf_free(r->yaml);
    sf_free(r->out_dir);
    sf_free(r->state);
    sf_free(r->attempt);
    sf_free(r->failures);
    sf_free(r->node_of);
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
    if (exit_code == 0)
        sf_log(SF_LOG_INFO, "coordinator dispatch", "render %u of '%s' delivered: %s", r->id,
               r->session ? r->session->name : "?", manifest_path ? manifest_path : "");
    else
        sf_log(SF_LOG_ERROR, "coordinator dispatch", "render %u failed (exit %d): %s", r->id, exit_code,
               message ? message : "");
    s_emit(d, r, DISPATCH_EV_DONE, exit_code, message, manifest_path);
}

static char *s_diags_text(const sf_diags_t *diags)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    if (!f)
        return NULL;
    sf_diags_print(diags, f);
    fclose(f);
    if (n && text[n - 1] == '\n')
        text[n - 1] = '\0';
    return text;
}

static sf_rc s_render_alloc(render_t *r)
{
    size_t n = r->plan->n_jobs ? r->plan->n_jobs : 1;
    r->state = sf_calloc(n, sizeof *r->state);
    r->attempt = sf_calloc(n, sizeof *r->attempt);
    r->failures = sf_calloc(n, sizeof *r->failures);
    r->node_of = sf_calloc(n, sizeof *r->node_of);
    r->segments = sf_calloc(n, sizeof *r->segments);
    r->requeued = sf_calloc(n, sizeof *r->requeued);
    if (!r->state || !r->attempt || !r->failures || !r->node_of || !r->segments || !r->requeued)
        return SF_E_NOMEM;
    for (size_t j = 0; j < n; j++)
        r->node_of[j] = -1;
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

sf_rc dispatch_submit(dispatch_t *d, const char *session_path, const uint8_t *yaml, size_t n_yaml_bytes,
                      const char *out_dir, int64_t segment_frames, bool force, const char *profile,
                      dispatch_event_fn fn, void *ctx, sf_err_t *err)
{
    render_t *r = sf_calloc(1, sizeof *r);
    if (!r)
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    r->id = ++d->next_render_id;
    r->fn = fn;
    r->ctx = ctx;
    r->started_ms = s_now_ms();
    r->yaml = sf_malloc(n_yaml_bytes ? n_yaml_bytes : 1);
    if (!r->yaml) {
        sf_free(r);
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
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
    sf_rc rc = sf_session_load_text(session_path, (const char *)yaml, n_yaml_bytes, &opts, &r->session, &diags, &e);
    if (rc) {
        char *text = diags.n_errors ? s_diags_text(&diags) : NULL;
        s_finish(d, r, rc == SF_E_INPUT ? 2 : 1, text ? text : e.msg, NULL);
        free(text);
        sf_diags_free(&diags);
        return SF_OK;
    }
    sf_diags_free(&diags);
    if (profile && *profile) {
        char lines[S_LINE_BYTES];
        if (!sf_profile_parse(profile, &r->session->output.profile)) {
            snprintf(lines, sizeof lines, "unknown profile '%s' (expected %s)", profile, sf_profile_names());
            s_finish(d, r, 2, lines, NULL);
            return SF_OK;
        }
        lines[0] = '\0';
        if (sf_profile_violations(r->session, r->session->output.profile, s_first_line, lines) > 0) {
            s_finish(d, r, 2, lines, NULL); /* the first; the client checked them all before submitting */
            return SF_OK;
        }
    }
    r->out_dir = sf_strdup(out_dir && *out_dir ? out_dir : r->session->output.dir);
    if (!r->out_dir)
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    rc = plan_make(r->session, segment_frames, &r->plan, &e);
    if (rc == SF_OK)
        rc = deliver_check_targets(r->plan, r->out_dir, force, &e);
    if (rc == SF_OK)
        rc = s_render_alloc(r) ? SF_ERR(&e, SF_E_NOMEM, "out of memory") : SF_OK;
    if (rc == SF_OK)
        rc = sf_media_mkdirs(r->out_dir, &e);
    if (rc == SF_OK)
        rc = stitch_open(r->plan, r->out_dir, &r->stitch, &e);
    if (rc) {
        s_finish(d, r, rc == SF_E_INPUT ? 2 : 1, e.msg, NULL);
        return SF_OK;
    }
    sf_log(SF_LOG_INFO, "coordinator dispatch", "render %u of '%s': %zu jobs (%u targets x %u segments)", r->id,
           r->session->name, r->plan->n_jobs, r->plan->n_targets, r->plan->n_segments);
    s_emit(d, r, DISPATCH_EV_STARTED, 0, NULL, NULL);
    return SF_OK;
}

/* ---- nodes ------------------------------------------------------------ */

static node_t *s_find_node(dispatch_t *d, const uint8_t *id, size_t n_id)
{
    for (size_t i = 0; i < d->n_nodes; i++)
        if (d->nodes[i].alive && d->nodes[i].n_id == n_id && memcmp(d->nodes[i].id, id, n_id) == 0)
            return &d->nodes[i];
    return NULL;
}

static void s_requeue(render_t *r, size_t j)
{
    r->state[j] = JOB_QUEUED;
    r->node_of[j] = -1;
    r->attempt[j]++; /* a late result of the old lease is now stale */
    r->requeued[r->n_requeued++] = j;
}

static void s_lose_node(dispatch_t *d, node_t *n, const char *why)
{
    int idx = (int)(n - d->nodes);
    size_t n_jobs = 0;
    for (render_t *r = d->renders; r; r = r->next) {
        if (r->finished || !r->plan)
            continue;
        for (size_t j = 0; j < r->plan->n_jobs; j++)
            if (r->state[j] == JOB_RUNNING && r->node_of[j] == idx) {
                s_requeue(r, j);
                n_jobs++;
            }
    }
    n->alive = false;
    sf_log(SF_LOG_WARN, "coordinator dispatch", "node '%s' lost (%s); %zu jobs back in the queue", n->name, why,
           n_jobs);
    char line[160];
    snprintf(line, sizeof line, "node '%s' lost: %s", n->name, why);
    for (render_t *r = d->renders; r; r = r->next)
        if (!r->finished)
            s_emit(d, r, DISPATCH_EV_NODE, 0, line, NULL);
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
    n->alive = true;
    n->last_seen_ms = s_now_ms();
    sf_log(SF_LOG_INFO, "coordinator dispatch", "node '%s' joined: %u cores, %u threads, %u slots, %s", n->name,
           m->u.hello.cores, m->u.hello.threads, n->slots, m->u.hello.simd);
    sf_wire_msg_t w = {.kind = SF_WIRE_WELCOME};
    w.u.welcome.node_id = (uint32_t)d->n_nodes;
    w.u.welcome.heartbeat_ms = (uint32_t)d->cfg.heartbeat_ms;
    w.u.welcome.max_message_bytes = SF_WIRE_MAX_MESSAGE_BYTES;
    s_send(d, id, n_id, &w);
    char line[160];
    snprintf(line, sizeof line, "node '%s' joined", n->name);
    for (render_t *r = d->renders; r; r = r->next)
        if (!r->finished)
            s_emit(d, r, DISPATCH_EV_NODE, 0, line, NULL);
}

static bool s_node_knows(const node_t *n, const uint8_t *hash)
{
    size_t count = n->n_known < MAX_KNOWN_SESSIONS ? n->n_known : MAX_KNOWN_SESSIONS;
    for (size_t i = 0; i < count; i++)
        if (memcmp(n->known[i], hash, SF_SESSION_HASH_BYTES) == 0)
            return true;
    return false;
}

/* The next job to hand out, across renders in arrival order. */
static bool s_next_job(dispatch_t *d, render_t **out_r, size_t *out_j)
{
    for (render_t *r = d->renders; r; r = r->next) {
        if (r->finished || !r->plan)
            continue;
        while (r->n_requeued) {
            size_t j = r->requeued[0];
            memmove(r->requeued, r->requeued + 1, --r->n_requeued * sizeof *r->requeued);
            if (r->state[j] == JOB_QUEUED) {
                *out_r = r;
                *out_j = j;
                return true;
            }
        }
        while (r->cursor < r->plan->n_jobs) {
            size_t j = plan_dispatch_order(r->plan, r->cursor++);
            if (r->state[j] == JOB_QUEUED) {
                *out_r = r;
                *out_j = j;
                return true;
            }
        }
    }
    return false;
}

static void s_send_job(dispatch_t *d, node_t *n, render_t *r, size_t j)
{
    if (!s_node_knows(n, r->session->hash)) {
        sf_wire_msg_t m = {.kind = SF_WIRE_SESSION};
        m.u.session.session_hash = r->session->hash;
        m.u.session.path = r->session->path;
        m.u.session.yaml = r->yaml;
        m.u.session.n_yaml_bytes = r->n_yaml_bytes;
        s_send(d, n->id, n->n_id, &m);
        memcpy(n->known[n->n_known++ % MAX_KNOWN_SESSIONS], r->session->hash, SF_SESSION_HASH_BYTES);
    }
    const plan_job_t *pj = &r->plan->jobs[j];
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
    n->credits--;
    n->in_flight++;
    s_send(d, n->id, n->n_id, &m);
}

/* Hands out queued jobs one per node per round, so work spreads evenly. */
static void s_assign(dispatch_t *d)
{
    bool sent = true;
    while (sent) {
        sent = false;
        for (size_t i = 0; i < d->n_nodes; i++) {
            node_t *n = &d->nodes[i];
            render_t *r;
            size_t j;
            if (!n->alive || n->credits == 0 || !s_next_job(d, &r, &j))
                continue;
            s_send_job(d, n, r, j);
            sent = true;
        }
    }
}

/* ---- results ---------------------------------------------------------- */

static render_t *s_find_job(dispatch_t *d, uint64_t job_id, size_t *out_j)
{
    uint32_t id = (uint32_t)(job_id >> 32);
    size_t j = (size_t)(job_id & 0xffffffffu);
    for (render_t *r = d->renders; r; r = r->next)
        if (r->id == id && !r->finished && r->plan && j < r->plan->n_jobs) {
            *out_j = j;
            return r;
        }
    return NULL;
}

static void s_complete(dispatch_t *d, render_t *r)
{
    sf_err_t e = {0};
    sf_rc rc = stitch_close(r->stitch, &e);
    char *manifest = NULL;
    if (rc == SF_OK) {
        deliver_info_t info = {.out_dir = r->out_dir,
                               .n_nodes = (int)s_live_nodes(d),
                               .wall_seconds = (double)(s_now_ms() - r->started_ms) / 1000.0};
        rc = deliver_finish(r->plan, r->stitch, r->segments, &info, &manifest, &e);
    }
    s_finish(d, r, rc == SF_OK ? 0 : 1, rc == SF_OK ? NULL : e.msg, manifest);
    sf_free(manifest);
}

/* A failed attempt: the job goes back to the queue, or fails the render. */
static void s_job_failed(dispatch_t *d, render_t *r, size_t j, node_t *n, const char *why)
{
    const plan_job_t *pj = &r->plan->jobs[j];
    char target[256];
    plan_target_label(r->plan, pj->target_index, target, sizeof target);
    r->failures[j]++;
    sf_log(SF_LOG_WARN, "coordinator dispatch", "job %s segment %u failed on node '%s' (attempt %u): %s", target,
           pj->segment_index, n->name, r->failures[j], why);
    if (r->failures[j] >= MAX_ATTEMPTS) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s segment %u failed %d times; last on node '%s': %s", target, pj->segment_index,
                 MAX_ATTEMPTS, n->name, why);
        r->state[j] = JOB_QUEUED;
        r->node_of[j] = -1;
        s_finish(d, r, 1, msg, NULL);
        return;
    }
    s_requeue(r, j);
}

static void s_on_result(dispatch_t *d, node_t *n, const sf_wire_msg_t *m)
{
    size_t j;
    render_t *r = s_find_job(d, m->u.result.job_id, &j);
    int idx = (int)(n - d->nodes);
    if (!r || r->state[j] != JOB_RUNNING || r->node_of[j] != idx || r->attempt[j] != m->u.result.attempt) {
        sf_log(SF_LOG_DEBUG, "coordinator dispatch", "stale result %" PRIu64 " from node '%s' dropped",
               m->u.result.job_id, n->name);
        return;
    }
    const plan_job_t *pj = &r->plan->jobs[j];
    char why[256] = "";
    int expect_channels = r->plan->targets[pj->target_index].n_channels;
    if (m->u.result.n_channels != (uint32_t)expect_channels || m->u.result.n_frames != (uint64_t)pj->n_frames)
        snprintf(why, sizeof why, "result has %u channels x %" PRIu64 " frames, the job is %d x %" PRId64,
                 m->u.result.n_channels, m->u.result.n_frames, expect_channels, pj->n_frames);
    else if (sf_hash_xxh3(m->u.result.pcm, m->u.result.n_pcm_bytes) != m->u.result.xxh3)
        snprintf(why, sizeof why, "checksum mismatch: the frames do not match their xxh3");
    if (*why) {
        s_job_failed(d, r, j, n, why);
        return;
    }
    sf_err_t e = {0};
    if (stitch_accept(r->stitch, j, m->u.result.pcm, &e)) {
        r->state[j] = JOB_DONE;
        r->node_of[j] = -1;
        s_finish(d, r, 1, e.msg, NULL);
        return;
    }
    r->state[j] = JOB_DONE;
    r->node_of[j] = -1;
    snprintf(r->segments[j].node_name, sizeof r->segments[j].node_name, "%s", n->name);
    r->segments[j].xxh3 = m->u.result.xxh3;
    r->jobs_done++;
    s_emit(d, r, DISPATCH_EV_PROGRESS, 0, NULL, NULL);
    if (stitch_complete(r->stitch))
        s_complete(d, r);
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

/* ---- clients ---------------------------------------------------------- */

static void s_forward_to_client(void *ctx, const dispatch_event_t *ev)
{
    client_t *c = ctx;
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
    }
    s_send(c->d, c->id, c->n_id, &m);
}

static void s_on_submit(dispatch_t *d, const uint8_t *id, size_t n_id, const sf_wire_msg_t *m)
{
    client_t *c = sf_calloc(1, sizeof *c);
    if (!c)
        return;
    memcpy(c->id, id, n_id);
    c->n_id = n_id;
    c->d = d;
    sf_log(SF_LOG_INFO, "coordinator dispatch", "submission of '%s'", m->u.submit.session_path);
    sf_err_t e = {0};
    if (dispatch_submit(d, m->u.submit.session_path, m->u.submit.yaml, m->u.submit.n_yaml_bytes, m->u.submit.out_dir,
                        (int64_t)m->u.submit.segment_frames, m->u.submit.force, m->u.submit.profile,
                        s_forward_to_client, c, &e)) {
        sf_wire_msg_t done = {.kind = SF_WIRE_DONE};
        done.u.done.exit_code = 1;
        done.u.done.message = e.msg;
        done.u.done.manifest_path = "";
        s_send(d, id, n_id, &done);
        sf_free(c);
    }
}

/* ---- the loop --------------------------------------------------------- */

static void s_on_message(dispatch_t *d, const uint8_t *id, size_t n_id, const uint8_t *data, size_t n_bytes)
{
    sf_wire_msg_t m;
    sf_err_t e = {0};
    node_t *n = s_find_node(d, id, n_id);
    if (sf_wire_decode(data, n_bytes, &m, &e)) {
        sf_log(SF_LOG_WARN, "coordinator dispatch", "bad message from %s '%s': %s", n ? "node" : "peer",
               n ? n->name : "?", e.msg);
        return;
    }
    if (n)
        n->last_seen_ms = s_now_ms();
    switch (m.kind) {
    case SF_WIRE_HELLO: s_on_hello(d, id, n_id, &m); break;
    case SF_WIRE_SUBMIT: s_on_submit(d, id, n_id, &m); break;
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
    case SF_WIRE_HEARTBEAT: break;
    default:
        sf_log(SF_LOG_WARN, "coordinator dispatch", "unexpected %s from %s", sf_wire_kind_name(m.kind),
               n ? n->name : "unknown peer");
        break;
    }
    sf_wire_msg_clear(&m);
}

static void s_timers(dispatch_t *d)
{
    int64_t now = s_now_ms();
    for (size_t i = 0; i < d->n_nodes; i++) {
        node_t *n = &d->nodes[i];
        if (n->alive && now - n->last_seen_ms > d->cfg.node_timeout_ms)
            s_lose_node(d, n, "silent past the timeout");
    }
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
        if (r->finished)
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

static bool s_should_stop(const dispatch_t *d)
{
    if (d->cfg.stop && atomic_load(d->cfg.stop))
        return true;
    if (!d->cfg.exit_when_idle)
        return false;
    for (render_t *r = d->renders; r; r = r->next)
        if (!r->finished)
            return false;
    return true;
}

sf_rc dispatch_run(dispatch_t *d, sf_err_t *err)
{
    zmq_msg_t id, body;
    zmq_msg_init(&id);
    zmq_msg_init(&body);
    sf_rc rc = SF_OK;
    d->next_heartbeat_ms = s_now_ms() + d->cfg.heartbeat_ms;
    while (!s_should_stop(d)) {
        zmq_pollitem_t item = {.socket = d->router, .events = ZMQ_POLLIN};
        int ready = zmq_poll(&item, 1, 100);
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
        s_timers(d);
        s_assign(d);
        s_reap(d);
    }
    for (render_t *r = d->renders; r; r = r->next)
        s_finish(d, r, 3, "the coordinator stopped before the render finished", NULL);
    sf_wire_msg_t bye = {.kind = SF_WIRE_SHUTDOWN};
    bye.u.shutdown.reason = "coordinator stopping";
    for (size_t i = 0; i < d->n_nodes; i++)
        if (d->nodes[i].alive)
            s_send(d, d->nodes[i].id, d->nodes[i].n_id, &bye);
    zmq_msg_close(&id);
    zmq_msg_close(&body);
    return rc;
}

sf_rc dispatch_new(const dispatch_config_t *cfg, dispatch_t **out, sf_err_t *err)
{
    *out = NULL;
    dispatch_t *d = sf_calloc(1, sizeof *d);
    if (!d)
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    d->cfg = *cfg;
    if (!d->cfg.heartbeat_ms)
        d->cfg.heartbeat_ms = 1000;
    if (!d->cfg.node_timeout_ms)
        d->cfg.node_timeout_ms = 15000;
    if (!d->cfg.no_node_timeout_ms)
        d->cfg.no_node_timeout_ms = 30000;
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
    if (zmq_bind(d->router, cfg->bind) != 0) {
        int e = zmq_errno();
        dispatch_destroy(&d);
        return SF_ERR(err, e == EADDRINUSE ? SF_E_IO : SF_E_INPUT, "cannot bind '%s': %s", cfg->bind, zmq_strerror(e));
    }
    *out = d;
    return SF_OK;
}

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
    sf_free(d);
    *self_p = NULL;
}
