/* client.c -- see client.h. */
#include "client.h"

#include "sf/alloc.h"
#include "sf/wire.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <string.h>
#include <sys/random.h>
#include <zmq.h>

#define S_DEFAULT_SILENCE_MS 60000
#define S_POLL_MS            200
#define S_NOTE_SILENCE_MS    5000 /* say so once the coordinator is quiet this long */

typedef struct {
    void *ctx;
    void *sock;
} s_conn_t;

static void s_close(s_conn_t *k)
{
    if (k->sock)
        zmq_close(k->sock);
    if (k->ctx)
        zmq_ctx_term(k->ctx);
    k->sock = k->ctx = NULL;
}

static int s_silence_limit(const client_config_t *c)
{
    return c->silence_limit_ms > 0 ? c->silence_limit_ms : S_DEFAULT_SILENCE_MS;
}

/* Connects; waits up to wait_ms for the handshake. */
static int s_open(const client_config_t *c, s_conn_t *k, int wait_ms)
{
    memset(k, 0, sizeof *k);
    k->ctx = zmq_ctx_new();
    k->sock = k->ctx ? zmq_socket(k->ctx, ZMQ_DEALER) : NULL;
    if (!k->sock) {
        fprintf(stderr, "stemfarm: error: cannot create a socket: %s\n", zmq_strerror(zmq_errno()));
        s_close(k);
        return 3;
    }
    int linger = 1000;
    int64_t max_size = 1 << 24; /* progress, status and done: small */
    uint8_t id[16];
    id[0] = 'c'; /* a leading zero byte is reserved by ZeroMQ */
    if (getrandom(id + 1, sizeof id - 1, 0) != (ssize_t)(sizeof id - 1)) {
        fprintf(stderr, "stemfarm: error: no random bytes for a client id: %s\n", strerror(errno));
        s_close(k);
        return 3;
    }
    zmq_setsockopt(k->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(k->sock, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size);
    zmq_setsockopt(k->sock, ZMQ_ROUTING_ID, id, sizeof id);
    /* Waits for the handshake: a refused key is an error now, not silence. */
    sf_secure_client_t plain = {0};
    sf_err_t err = {0};
    sf_rc rc = sf_secure_connect(k->ctx, k->sock, c->endpoint, c->curve ? c->curve : &plain, "client", wait_ms,
                                 c->interrupt, &err);
    if (rc) {
        fprintf(stderr, "stemfarm: error: %s\n", err.msg);
        s_close(k);
        return rc == SF_E_INPUT ? 2 : 3;
    }
    if (c->interrupt && atomic_load(c->interrupt)) {
        fprintf(stderr, "stemfarm: interrupted before the coordinator answered\n");
        s_close(k);
        return 3;
    }
    return 0;
}

static int s_send(s_conn_t *k, const sf_wire_msg_t *m)
{
    uint8_t *buf;
    size_t n;
    sf_err_t err = {0};
    if (sf_wire_encode(m, &buf, &n, &err)) {
        fprintf(stderr, "stemfarm: error: %s\n", err.msg);
        return 2;
    }
    int rc = zmq_send(k->sock, buf, n, 0) == (int)n ? 0 : 3;
    sf_free(buf);
    return rc;
}

/* The next message, decoded: 1, 0 when none came within wait_ms. Bad
 * messages are reported and skipped. */
static int s_recv(s_conn_t *k, sf_wire_msg_t *m, int wait_ms)
{
    zmq_pollitem_t item = {.socket = k->sock, .events = ZMQ_POLLIN};
    if (zmq_poll(&item, 1, wait_ms) <= 0)
        return 0;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, k->sock, 0) < 0) {
        zmq_msg_close(&msg);
        return 0;
    }
    sf_err_t err = {0};
    int got = sf_wire_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), m, &err) == SF_OK;
    if (!got)
        fprintf(stderr, "stemfarm: warning: bad message from the coordinator: %s\n", err.msg);
    zmq_msg_close(&msg);
    return got;
}

int client_render(const client_config_t *c, const dispatch_request_t *req, dispatch_event_fn fn, void *ctx)
{
    s_conn_t k;
    int rc = s_open(c, &k, s_silence_limit(c));
    if (rc)
        return rc;
    sf_wire_msg_t sub = {.kind = SF_WIRE_SUBMIT};
    sub.u.submit.session_path = req->session_path;
    sub.u.submit.yaml = req->yaml;
    sub.u.submit.n_yaml_bytes = req->n_yaml_bytes;
    sub.u.submit.out_dir = req->out_dir ? req->out_dir : "";
    sub.u.submit.segment_frames = (uint64_t)req->segment_frames;
    sub.u.submit.force = req->force;
    sub.u.submit.profile = req->profile ? req->profile : "";
    sub.u.submit.priority = req->priority;
    rc = s_send(&k, &sub);
    if (rc) {
        s_close(&k);
        return rc;
    }
    /* The coordinator reports at least every heartbeat; a restart is a
     * pause, after which the resumed render reports again. */
    const int limit_ms = s_silence_limit(c);
    int silent_ms = 0;
    bool noted = false, done = false;
    int exit_code = 3;
    dispatch_event_t last = {0}; /* Done carries no counts: the last progress has them */
    while (!done && !(c->interrupt && atomic_load(c->interrupt)) && silent_ms < limit_ms) {
        sf_wire_msg_t m;
        if (!s_recv(&k, &m, S_POLL_MS)) {
            silent_ms += S_POLL_MS;
            if (silent_ms >= S_NOTE_SILENCE_MS && !noted && !c->quiet) {
                fprintf(stderr, "stemfarm: the coordinator at '%s' is silent; waiting up to %d s\n", c->endpoint,
                        limit_ms / 1000);
                noted = true;
            }
            continue;
        }
        silent_ms = 0;
        noted = false;
        dispatch_event_t e = {0};
        if (m.kind == SF_WIRE_PROGRESS) {
            e.kind = m.u.progress.jobs_done ? DISPATCH_EV_PROGRESS : DISPATCH_EV_STARTED;
            e.render_id = m.u.progress.render_id;
            e.jobs_done = m.u.progress.jobs_done;
            e.jobs_total = m.u.progress.jobs_total;
            e.nodes = m.u.progress.nodes;
            e.message = *m.u.progress.event ? m.u.progress.event : NULL;
            last = e;
            fn(ctx, &e);
        } else if (m.kind == SF_WIRE_DONE) {
            e = last;
            e.kind = DISPATCH_EV_DONE;
            e.exit_code = (int)m.u.done.exit_code;
            e.message = *m.u.done.message ? m.u.done.message : NULL;
            e.manifest_path = *m.u.done.manifest_path ? m.u.done.manifest_path : NULL;
            done = true;
            exit_code = e.exit_code;
            fn(ctx, &e);
        }
        sf_wire_msg_clear(&m);
    }
    if (done)
        rc = exit_code;
    else if (c->interrupt && atomic_load(c->interrupt)) {
        fprintf(stderr, "stemfarm: interrupted; the render goes on at '%s'\n", c->endpoint);
        rc = 3;
    } else {
        fprintf(stderr, "stemfarm: error: the coordinator at '%s' did not answer for %d s\n", c->endpoint,
                limit_ms / 1000);
        rc = 3;
    }
    s_close(&k);
    return rc;
}

/* A question (status, cancel) is answered at once, or not at all. */
static int s_ask_limit(const client_config_t *c) { return s_silence_limit(c) < 10000 ? s_silence_limit(c) : 10000; }

/* Sends ask and waits for its answer, a Status or a Done (decoded into
 * reply when 0 is returned). */
static int s_ask(const client_config_t *c, s_conn_t *k, const sf_wire_msg_t *ask, sf_wire_msg_t *reply)
{
    int rc = s_send(k, ask);
    if (rc)
        return rc;
    const int limit_ms = s_ask_limit(c);
    for (int waited = 0; waited < limit_ms; waited += S_POLL_MS) {
        if (c->interrupt && atomic_load(c->interrupt))
            return 3;
        if (!s_recv(k, reply, S_POLL_MS))
            continue;
        if (reply->kind == SF_WIRE_STATUS || reply->kind == SF_WIRE_DONE)
            return 0;
        sf_wire_msg_clear(reply);
    }
    fprintf(stderr, "stemfarm: error: the coordinator at '%s' did not answer for %d s\n", c->endpoint, limit_ms / 1000);
    return 3;
}

static void s_duration(char *buf, size_t n, uint64_t ms)
{
    uint64_t s = ms / 1000;
    if (s >= 3600)
        snprintf(buf, n, "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64, s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, n, "%" PRIu64 ":%02" PRIu64, s / 60, s % 60);
}

static void s_status_json(const sf_wire_msg_t *m, FILE *out)
{
    json_t *root = json_object(), *renders = json_array(), *nodes = json_array();
    for (size_t i = 0; i < m->u.status.n_renders; i++) {
        const sf_wire_render_info_t *r = &m->u.status.renders[i];
        json_array_append_new(renders, json_pack("{s:I, s:s, s:s, s:i, s:I, s:I, s:I, s:f}", "render_id",
                                                 (json_int_t)r->render_id, "session", r->session_name, "session_path",
                                                 r->session_path, "priority", (int)r->priority, "jobs_done",
                                                 (json_int_t)r->jobs_done, "jobs_total", (json_int_t)r->jobs_total,
                                                 "jobs_running", (json_int_t)r->jobs_running, "elapsed_s",
                                                 (double)r->elapsed_ms / 1000.0));
    }
    for (size_t i = 0; i < m->u.status.n_nodes; i++) {
        const sf_wire_node_info_t *nd = &m->u.status.nodes[i];
        json_array_append_new(nodes,
                              json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:f}", "name", nd->name, "state", nd->state,
                                        "slots", (json_int_t)nd->slots, "jobs_running", (json_int_t)nd->jobs_running,
                                        "jobs_done", (json_int_t)nd->jobs_done, "failures", (json_int_t)nd->failures,
                                        "last_seen_s", (double)nd->last_seen_ms / 1000.0));
    }
    json_object_set_new(root, "draining", json_boolean(m->u.status.draining));
    json_object_set_new(root, "renders", renders);
    json_object_set_new(root, "nodes", nodes);
    json_dumpf(root, out, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    fputc('\n', out);
    json_decref(root);
}

static void s_status_table(const client_config_t *c, const sf_wire_msg_t *m, FILE *out)
{
    fprintf(out, "coordinator %s%s: %zu render%s, %zu node%s\n", c->endpoint, m->u.status.draining ? " (draining)" : "",
            m->u.status.n_renders, m->u.status.n_renders == 1 ? "" : "s", m->u.status.n_nodes,
            m->u.status.n_nodes == 1 ? "" : "s");
    if (m->u.status.n_renders)
        fprintf(out, "%7s %5s  %-28s %13s %8s %9s\n", "render", "prio", "session", "jobs done", "running", "elapsed");
    for (size_t i = 0; i < m->u.status.n_renders; i++) {
        const sf_wire_render_info_t *r = &m->u.status.renders[i];
        char done[32], elapsed[32];
        snprintf(done, sizeof done, "%" PRIu64 "/%" PRIu64, r->jobs_done, r->jobs_total);
        s_duration(elapsed, sizeof elapsed, r->elapsed_ms);
        fprintf(out, "%7" PRIu32 " %5d  %-28.28s %13s %8" PRIu32 " %9s\n", r->render_id, (int)r->priority,
                r->session_name, done, r->jobs_running, elapsed);
    }
    if (m->u.status.n_nodes)
        fprintf(out, "%-24s %-12s %5s %8s %9s %8s %9s\n", "node", "state", "slots", "running", "jobs done", "failures",
                "last seen");
    for (size_t i = 0; i < m->u.status.n_nodes; i++) {
        const sf_wire_node_info_t *nd = &m->u.status.nodes[i];
        char seen[32];
        snprintf(seen, sizeof seen, "%.1f s", (double)nd->last_seen_ms / 1000.0);
        fprintf(out, "%-24.24s %-12s %5" PRIu32 " %8" PRIu32 " %9" PRIu64 " %8" PRIu32 " %9s\n", nd->name, nd->state,
                nd->slots, nd->jobs_running, nd->jobs_done, nd->failures, seen);
    }
}

int client_status(const client_config_t *c, bool json, FILE *out)
{
    s_conn_t k;
    int rc = s_open(c, &k, s_ask_limit(c));
    if (rc)
        return rc;
    sf_wire_msg_t ask = {.kind = SF_WIRE_STATUS_REQUEST}, reply;
    rc = s_ask(c, &k, &ask, &reply);
    if (rc == 0) {
        if (reply.kind == SF_WIRE_STATUS && json)
            s_status_json(&reply, out);
        else if (reply.kind == SF_WIRE_STATUS)
            s_status_table(c, &reply, out);
        else {
            fprintf(stderr, "stemfarm: error: %s\n", reply.u.done.message);
            rc = reply.u.done.exit_code ? (int)reply.u.done.exit_code : 1;
        }
        sf_wire_msg_clear(&reply);
    }
    s_close(&k);
    return rc;
}

int client_cancel(const client_config_t *c, uint32_t render_id)
{
    s_conn_t k;
    int rc = s_open(c, &k, s_ask_limit(c));
    if (rc)
        return rc;
    sf_wire_msg_t ask = {.kind = SF_WIRE_CANCEL}, reply;
    ask.u.cancel.render_id = render_id;
    rc = s_ask(c, &k, &ask, &reply);
    if (rc == 0) {
        if (reply.kind == SF_WIRE_DONE) {
            rc = (int)reply.u.done.exit_code;
            fprintf(stderr, "%s%s\n", rc ? "stemfarm: error: " : "stemfarm: ", reply.u.done.message);
        } else {
            rc = 1;
        }
        sf_wire_msg_clear(&reply);
    }
    s_close(&k);
    return rc;
}

int client_farm_size(const client_config_t *c, uint32_t *nodes, uint32_t *slots)
{
    *nodes = *slots = 0;
    s_conn_t k;
    int rc = s_open(c, &k, s_ask_limit(c));
    if (rc)
        return rc;
    sf_wire_msg_t ask = {.kind = SF_WIRE_STATUS_REQUEST}, reply;
    rc = s_ask(c, &k, &ask, &reply);
    if (rc == 0) {
        if (reply.kind == SF_WIRE_STATUS) {
            for (size_t i = 0; i < reply.u.status.n_nodes; i++)
                if (strcmp(reply.u.status.nodes[i].state, "quarantined") != 0) {
                    (*nodes)++;
                    *slots += reply.u.status.nodes[i].slots;
                }
        } else {
            fprintf(stderr, "stemfarm: error: %s\n", reply.u.done.message);
            rc = reply.u.done.exit_code ? (int)reply.u.done.exit_code : 1;
        }
        sf_wire_msg_clear(&reply);
    }
    s_close(&k);
    return rc;
}
