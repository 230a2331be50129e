/* test_dispatch.c -- the coordinator's loop against scripted nodes.
 *
 * The real dispatcher runs in a thread on inproc://; the test plays the
 * nodes (and clients) over real DEALER sockets and misbehaves on purpose:
 * job errors, wrong checksums, wrong shapes, stale leases, silence, jobs
 * that stop moving. What is checked is what a user sees: the exit code, the
 * message naming each node's error, a render that recovers on other nodes,
 * quarantines, priorities, status and cancel, and no file left behind by a
 * failed render. */
#include "dispatch.h"
#include "testutil.h"

#include "sf/alloc.h"
#include "sf/hash.h"
#include "sf/render.h"
#include "sf/session.h"
#include "sf/wire.h"

#include <check.h>
#include <jansson.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define RATE   48000
#define FRAMES 30000

typedef struct {
    int exit_code;
    char message[4096];
    int done;
} outcome_t;

typedef struct {
    void *ctx;
    dispatch_t *d;
    pthread_t thread;
    int exit_code; /* of the first render */
    char message[4096];
    int done;
    outcome_t second;  /* of a second render, when there is one */
    char events[8192]; /* node events, one per line */
    char *dir, *session_path, *out_dir;
    uint8_t *yaml;
    size_t n_yaml;
    sf_session_t *session; /* the test node's copy */
} fixture_t;

static double s_tone(int ch, int64_t i, void *ctx)
{
    (void)ctx;
    return 0.25 * tu_sine(220.0 + 110.0 * ch, RATE, i);
}

static void s_on_event(void *ctx, const dispatch_event_t *ev)
{
    fixture_t *f = ctx;
    if (ev->kind == DISPATCH_EV_NODE && ev->render_id == 1 && ev->message) {
        size_t n = strlen(f->events);
        snprintf(f->events + n, sizeof f->events - n, "%s\n", ev->message);
    }
    if (ev->kind != DISPATCH_EV_DONE)
        return;
    if (ev->render_id == 2) {
        f->second.exit_code = ev->exit_code;
        snprintf(f->second.message, sizeof f->second.message, "%s", ev->message ? ev->message : "");
        f->second.done = 1;
        return;
    }
    f->exit_code = ev->exit_code;
    snprintf(f->message, sizeof f->message, "%s", ev->message ? ev->message : "");
    f->done = 1;
}

static void *s_run(void *arg)
{
    fixture_t *f = arg;
    dispatch_run(f->d, NULL);
    return NULL;
}

/* Starts a dispatcher on `endpoint` with cfg's timeouts (bind, context
 * and heartbeat filled in) and n_renders renders of the same session (the
 * second into out2 at priority2). */
static void s_start_with(fixture_t *f, const char *endpoint, dispatch_config_t cfg, int n_renders, int priority2)
{
    memset(f, 0, sizeof *f);
    f->dir = tu_tmpdir();
    free(tu_write_wav(f->dir, "media/a.wav", 2, RATE, FRAMES, 24, s_tone, NULL));
    free(tu_write_wav(f->dir, "media/b.wav", 1, RATE, FRAMES, 24, s_tone, NULL));
    f->session_path = tu_write_text(f->dir, "session.yaml",
                                    "version: 1\nsession:\n  name: D\n  sample_rate: 48000\n  segment: 10000\n"
                                    "tracks:\n  - {name: A, source: media/a.wav}\n  - {name: B, source: media/b.wav}\n"
                                    "stems:\n  - {name: SA, tracks: [A]}\n  - {name: SB, tracks: [B]}\n");
    f->yaml = (uint8_t *)tu_slurp(f->session_path, &f->n_yaml);
    f->out_dir = tu_path(f->dir, "out");
    sf_session_load_opts_t opts = sf_session_load_opts_default();
    ck_assert_int_eq(sf_session_load(f->session_path, &opts, &f->session, NULL, NULL), SF_OK);
    f->ctx = zmq_ctx_new();
    cfg.bind = endpoint;
    cfg.zmq_context = f->ctx;
    cfg.heartbeat_ms = 100;
    cfg.exit_when_idle = true;
    ck_assert_int_eq(dispatch_new(&cfg, &f->d, NULL), SF_OK);
    dispatch_request_t req = {
        .session_path = f->session_path, .yaml = f->yaml, .n_yaml_bytes = f->n_yaml, .out_dir = f->out_dir};
    ck_assert_int_eq(dispatch_submit(f->d, &req, s_on_event, f, NULL), SF_OK);
    char *out2 = tu_path(f->dir, "out2");
    req.out_dir = out2;
    req.priority = priority2;
    if (n_renders > 1)
        ck_assert_int_eq(dispatch_submit(f->d, &req, s_on_event, f, NULL), SF_OK);
    free(out2);
    pthread_create(&f->thread, NULL, s_run, f);
}

static void s_start(fixture_t *f, const char *endpoint, int node_timeout_ms, int no_node_timeout_ms)
{
    dispatch_config_t cfg = {.node_timeout_ms = node_timeout_ms, .no_node_timeout_ms = no_node_timeout_ms};
    s_start_with(f, endpoint, cfg, 1, 0);
}

static void s_finish(fixture_t *f)
{
    pthread_join(f->thread, NULL);
    dispatch_destroy(&f->d);
    zmq_ctx_term(f->ctx);
    sf_session_destroy(&f->session);
    tu_rm_rf(f->dir);
    free(f->dir);
    free(f->session_path);
    free(f->out_dir);
    free(f->yaml);
}

/* Files in the output folder (0 if it does not exist). */
static int s_count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* ---- the scripted node -------------------------------------------------- */

typedef struct {
    void *sock;
} node_t;

static void s_send(node_t *n, const sf_wire_msg_t *m)
{
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(sf_wire_encode(m, &buf, &len, NULL), SF_OK);
    ck_assert_int_eq(zmq_send(n->sock, buf, len, 0), (int)len);
    sf_free(buf);
}

/* The next message that is not a heartbeat; kind 0 when none came in time.
 * While it waits it heart-beats, as a live node does. */
static sf_wire_kind_t s_recv(node_t *n, sf_wire_msg_t *m, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        if (waited % 100 == 0) {
            sf_wire_msg_t hb = {.kind = SF_WIRE_HEARTBEAT};
            s_send(n, &hb);
        }
        zmq_pollitem_t item = {.socket = n->sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, 50) <= 0)
            continue;
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        ck_assert_int_ge(zmq_msg_recv(&msg, n->sock, 0), 0);
        sf_err_t err = {0};
        ck_assert_msg(sf_wire_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), m, &err) == SF_OK, "%s", err.msg);
        zmq_msg_close(&msg);
        if (m->kind != SF_WIRE_HEARTBEAT)
            return m->kind;
        sf_wire_msg_clear(m);
    }
    return 0;
}

static void s_join(node_t *n, fixture_t *f, const char *endpoint, const char *name)
{
    n->sock = zmq_socket(f->ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(n->sock, ZMQ_LINGER, &linger, sizeof linger);
    ck_assert_int_eq(zmq_connect(n->sock, endpoint), 0);
    sf_wire_msg_t m = {.kind = SF_WIRE_HELLO};
    m.u.hello.node_name = name;
    m.u.hello.cores = 1;
    m.u.hello.threads = 1;
    m.u.hello.slots = 1;
    m.u.hello.simd = "scalar";
    s_send(n, &m);
    sf_wire_msg_t w;
    ck_assert_int_eq(s_recv(n, &w, 2000), SF_WIRE_WELCOME);
    sf_wire_msg_clear(&w);
    sf_wire_msg_t c = {.kind = SF_WIRE_CREDIT};
    c.u.credit.n_jobs = 1;
    s_send(n, &c);
}

/* Waits for the next job (skipping the session it is sent first). */
static int s_next_job(node_t *n, sf_wire_msg_t *job)
{
    for (;;) {
        sf_wire_kind_t k = s_recv(n, job, 3000);
        if (k == SF_WIRE_SESSION) {
            sf_wire_msg_clear(job);
            continue;
        }
        if (k == SF_WIRE_JOB)
            return 1;
        if (k)
            sf_wire_msg_clear(job);
        return 0;
    }
}

/* ANSWER_ODD: frames a hair off the right ones with their own (matching)
 * xxh3, as from a node whose build or hardware renders differently. */
typedef enum {
    ANSWER_RIGHT,
    ANSWER_ERROR,
    ANSWER_BAD_XXH3,
    ANSWER_ONE_CHANNEL,
    ANSWER_STALE,
    ANSWER_ODD,
    ANSWER_NONE
} answer_t;

static void s_answer(node_t *n, fixture_t *f, const sf_wire_msg_t *job, answer_t how)
{
    sf_target_t t = {(sf_target_kind_t)job->u.job.target_kind, job->u.job.target_index};
    int channels = sf_session_target_channels(f->session, t);
    size_t frames = (size_t)job->u.job.n_frames;
    float *pcm = sf_aligned_alloc(frames * (size_t)channels * sizeof(float));
    float *out[SF_MAX_CHANNELS];
    for (int c = 0; c < channels; c++)
        out[c] = pcm + (size_t)c * frames;
    ck_assert_int_eq(sf_render(f->session, t, job->u.job.start_frame, (int64_t)frames, 0, out, NULL), SF_OK);
    sf_wire_msg_t m = {.kind = SF_WIRE_RESULT};
    m.u.result.job_id = job->u.job.job_id;
    m.u.result.attempt = job->u.job.attempt;
    m.u.result.n_channels = (uint32_t)channels;
    m.u.result.n_frames = frames;
    m.u.result.pcm = pcm;
    m.u.result.n_pcm_bytes = frames * (size_t)channels * sizeof(float);
    if (how == ANSWER_ODD)
        pcm[frames / 2] += 1.0f / 65536.0f;
    m.u.result.xxh3 = sf_hash_xxh3(pcm, m.u.result.n_pcm_bytes) ^ (how == ANSWER_BAD_XXH3);
    if (how == ANSWER_ONE_CHANNEL && channels > 1) {
        m.u.result.n_channels = 1;
        m.u.result.n_pcm_bytes = frames * sizeof(float);
        m.u.result.xxh3 = sf_hash_xxh3(pcm, m.u.result.n_pcm_bytes);
    }
    if (how == ANSWER_STALE) { /* an answer for a lease that is not the current one, then the right one */
        m.u.result.attempt++;
        s_send(n, &m);
        m.u.result.attempt--;
    }
    if (how == ANSWER_ERROR) {
        m.kind = SF_WIRE_JOB_ERROR;
        m.u.job_error.job_id = job->u.job.job_id;
        m.u.job_error.attempt = job->u.job.attempt;
        m.u.job_error.message = "cannot read '/mnt/media/a.wav': disk on fire";
    }
    s_send(n, &m);
    sf_free(pcm);
    sf_wire_msg_t c = {.kind = SF_WIRE_CREDIT};
    c.u.credit.n_jobs = 1;
    s_send(n, &c);
}

/* Answers jobs with `how` while the predicate says so, then rightly. */
static int s_serve(node_t *n, fixture_t *f, answer_t (*how)(int i, const sf_wire_msg_t *job))
{
    int i = 0;
    sf_wire_msg_t job;
    while (!f->done && s_next_job(n, &job)) {
        s_answer(n, f, &job, how(i++, &job));
        sf_wire_msg_clear(&job);
    }
    return i;
}

/* Several nodes in turn: each job a node gets is answered as
 * how(node, job) says (ANSWER_NONE: held and never answered, the node
 * heart-beating on). Returns when the first render is done. */
static void s_serve_many(node_t *nodes, int n_nodes, fixture_t *f, answer_t (*how)(int node, const sf_wire_msg_t *job),
                         int *answered)
{
    int64_t deadline = tu_now_ms() + 20000;
    while (!f->done && tu_now_ms() < deadline) {
        for (int i = 0; i < n_nodes && !f->done; i++) {
            sf_wire_msg_t m;
            sf_wire_kind_t k = s_recv(&nodes[i], &m, 50);
            if (k == SF_WIRE_JOB) {
                answer_t a = how(i, &m);
                if (a != ANSWER_NONE) {
                    s_answer(&nodes[i], f, &m, a);
                    if (answered)
                        answered[i]++;
                }
            }
            if (k)
                sf_wire_msg_clear(&m);
        }
    }
}

static void s_close(node_t *n) { zmq_close(n->sock); }

/* ---- tests --------------------------------------------------------------- */

static answer_t s_always_error(int node, const sf_wire_msg_t *job)
{
    (void)node;
    (void)job;
    return ANSWER_ERROR;
}

static answer_t s_right(int i, const sf_wire_msg_t *job)
{
    (void)i;
    (void)job;
    return ANSWER_RIGHT;
}

START_TEST(test_a_job_failing_on_three_nodes_fails_the_render_with_their_messages)
{
    fixture_t f;
    dispatch_config_t cfg = {.node_timeout_ms = 5000, .no_node_timeout_ms = 5000, .quarantine_after = 100};
    s_start_with(&f, "inproc://d1", cfg, 1, 0);
    node_t n[3];
    const char *names[3] = {"flaky-a", "flaky-b", "flaky-c"};
    for (int i = 0; i < 3; i++)
        s_join(&n[i], &f, "inproc://d1", names[i]);
    int answered[3] = {0};
    s_serve_many(n, 3, &f, s_always_error, answered);
    for (int i = 0; i < 3; i++)
        s_close(&n[i]);
    s_finish(&f);
    ck_assert_int_eq(f.exit_code, 1);
    /* each job went to a node it had not failed on: every node answered */
    for (int i = 0; i < 3; i++)
        ck_assert_int_ge(answered[i], 1);
    ck_assert_msg(strstr(f.message, "failed on 3 nodes") && strstr(f.message, "'flaky-a': cannot read") &&
                      strstr(f.message, "'flaky-b': cannot read") && strstr(f.message, "'flaky-c': cannot read") &&
                      strstr(f.message, "disk on fire"),
                  "%s", f.message);
}
END_TEST

START_TEST(test_no_eligible_node_left_fails_fast_with_the_reason)
{
    fixture_t f;
    s_start(&f, "inproc://d6", 5000, 5000);
    node_t n;
    s_join(&n, &f, "inproc://d6", "flaky-node");
    int64_t t0 = tu_now_ms();
    int answered = 0;
    s_serve_many(&n, 1, &f, s_always_error, &answered);
    int64_t took = tu_now_ms() - t0;
    s_close(&n);
    s_finish(&f);
    ck_assert_int_eq(f.exit_code, 1);
    ck_assert_int_ge(answered, 1);
    ck_assert_int_le(answered, 3); /* quarantined after three in a row */
    ck_assert_msg(strstr(f.message, "no node left that may render") &&
                      strstr(f.message, "it failed on 'flaky-node': cannot read '/mnt/media/a.wav': disk on fire"),
                  "%s", f.message);
    /* well before the no-node timeout (5 s): three heartbeats of grace */
    ck_assert_int_lt(took, 3000);
}
END_TEST

/* The sloppy node's answers have bad checksums; the good node first sends
 * an answer for a lease that is not the current one (dropped), then the
 * right one. */
static answer_t s_sloppy_and_good(int node, const sf_wire_msg_t *job)
{
    (void)job;
    return node == 1 ? ANSWER_STALE : ANSWER_BAD_XXH3;
}

START_TEST(test_bad_answers_go_to_another_node_and_quarantine_the_sender)
{
    fixture_t f;
    dispatch_config_t cfg = {.node_timeout_ms = 5000, .no_node_timeout_ms = 5000, .quarantine_ms = 60000};
    s_start_with(&f, "inproc://d2", cfg, 1, 0);
    node_t n[2];
    s_join(&n[0], &f, "inproc://d2", "sloppy-node");
    s_join(&n[1], &f, "inproc://d2", "good-node");
    int answered[2] = {0};
    s_serve_many(n, 2, &f, s_sloppy_and_good, answered);
    s_close(&n[0]);
    s_close(&n[1]);
    s_finish(&f);
    ck_assert_msg(f.exit_code == 0, "%s", f.message);
    /* three failures in a row, then no more jobs for it */
    ck_assert_int_eq(answered[0], 3);
    ck_assert_msg(strstr(f.events, "node 'sloppy-node' quarantined for 60 s: 3 failed jobs in a row"), "%s", f.events);
}
END_TEST

/* Node 0 holds its job without a word about progress; node 1 works. */
static answer_t s_stuck_and_good(int node, const sf_wire_msg_t *job)
{
    (void)job;
    return node == 0 ? ANSWER_NONE : ANSWER_RIGHT;
}

START_TEST(test_a_job_without_progress_is_reissued)
{
    fixture_t f;
    dispatch_config_t cfg = {.node_timeout_ms = 5000, .no_node_timeout_ms = 5000, .stuck_timeout_ms = 500};
    s_start_with(&f, "inproc://d7", cfg, 1, 0);
    node_t n[2];
    s_join(&n[0], &f, "inproc://d7", "stuck-node");
    s_join(&n[1], &f, "inproc://d7", "good-node");
    int answered[2] = {0};
    s_serve_many(n, 2, &f, s_stuck_and_good, answered);
    s_close(&n[0]);
    s_close(&n[1]);
    s_finish(&f);
    ck_assert_msg(f.exit_code == 0, "%s", f.message);
    ck_assert_int_eq(answered[0], 0);
}
END_TEST

START_TEST(test_a_slow_job_that_reports_progress_is_not_reissued)
{
    fixture_t f;
    dispatch_config_t cfg = {.node_timeout_ms = 5000, .no_node_timeout_ms = 5000, .stuck_timeout_ms = 300};
    s_start_with(&f, "inproc://d8", cfg, 1, 0);
    node_t n;
    s_join(&n, &f, "inproc://d8", "slow-node");
    sf_wire_msg_t job;
    int jobs = 0;
    while (!f.done && s_next_job(&n, &job)) {
        /* 1.2 s per job, four times the stuck limit, progress every 100 ms */
        for (uint64_t step = 1; step <= 12; step++) {
            sf_wire_job_progress_t p = {job.u.job.job_id, job.u.job.attempt, step * 1000, 12000};
            sf_wire_msg_t hb = {.kind = SF_WIRE_HEARTBEAT};
            hb.u.heartbeat.jobs_running = 1;
            hb.u.heartbeat.jobs = &p;
            hb.u.heartbeat.n_jobs = 1;
            s_send(&n, &hb);
            tu_sleep_ms(100);
        }
        ck_assert_uint_eq(job.u.job.attempt, 0);
        s_answer(&n, &f, &job, ANSWER_RIGHT);
        sf_wire_msg_clear(&job);
        if (++jobs == 2)
            break; /* two are enough to show it; the rest quickly */
    }
    while (!f.done && s_next_job(&n, &job)) {
        ck_assert_uint_eq(job.u.job.attempt, 0);
        s_answer(&n, &f, &job, ANSWER_RIGHT);
        sf_wire_msg_clear(&job);
    }
    s_close(&n);
    s_finish(&f);
    ck_assert_msg(f.exit_code == 0, "%s", f.message);
}
END_TEST

START_TEST(test_higher_priority_renders_go_first)
{
    fixture_t f;
    dispatch_config_t cfg = {.node_timeout_ms = 5000, .no_node_timeout_ms = 5000};
    s_start_with(&f, "inproc://d9", cfg, 2, 50); /* render 1 at 0, render 2 at 50 */
    node_t n;
    s_join(&n, &f, "inproc://d9", "only-node");
    sf_wire_msg_t job;
    char order[64] = "";
    size_t k = 0;
    while (!(f.done && f.second.done) && k + 1 < sizeof order && s_next_job(&n, &job)) {
        order[k++] = (char)('0' + (job.u.job.job_id >> 32));
        s_answer(&n, &f, &job, ANSWER_RIGHT);
        sf_wire_msg_clear(&job);
    }
    s_close(&n);
    s_finish(&f);
    ck_assert_msg(f.exit_code == 0 && f.second.exit_code == 0, "%s / %s", f.message, f.second.message);
    /* 3 segments of 2 stems and the null-test reference: the later, higher render's nine first */
    ck_assert_str_eq(order, "222222222111111111");
}
END_TEST

static void s_client_ask(fixture_t *f, void *client, const sf_wire_msg_t *ask, sf_wire_msg_t *reply)
{
    node_t c = {client};
    s_send(&c, ask);
    zmq_pollitem_t item = {.socket = client, .events = ZMQ_POLLIN};
    ck_assert_int_eq(zmq_poll(&item, 1, 3000), 1);
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    ck_assert_int_ge(zmq_msg_recv(&msg, client, 0), 0);
    ck_assert_int_eq(sf_wire_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), reply, NULL), SF_OK);
    zmq_msg_close(&msg);
    (void)f;
}

START_TEST(test_status_lists_renders_and_nodes_and_cancel_ends_a_render)
{
    fixture_t f;
    s_start(&f, "inproc://d10", 5000, 5000);
    node_t n;
    s_join(&n, &f, "inproc://d10", "busy-node");
    sf_wire_msg_t job;
    ck_assert(s_next_job(&n, &job)); /* holds one job */
    void *client = zmq_socket(f.ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(client, ZMQ_LINGER, &linger, sizeof linger);
    ck_assert_int_eq(zmq_connect(client, "inproc://d10"), 0);

    sf_wire_msg_t ask = {.kind = SF_WIRE_STATUS_REQUEST}, reply;
    s_client_ask(&f, client, &ask, &reply);
    ck_assert_int_eq(reply.kind, SF_WIRE_STATUS);
    ck_assert_uint_eq(reply.u.status.n_renders, 1);
    ck_assert_uint_eq(reply.u.status.renders[0].render_id, 1);
    ck_assert_str_eq(reply.u.status.renders[0].session_name, "D");
    ck_assert_uint_eq(reply.u.status.renders[0].jobs_total, 9);
    ck_assert_uint_eq(reply.u.status.renders[0].jobs_running, 1);
    ck_assert_uint_eq(reply.u.status.n_nodes, 1);
    ck_assert_str_eq(reply.u.status.nodes[0].name, "busy-node");
    ck_assert_str_eq(reply.u.status.nodes[0].state, "ready");
    ck_assert_uint_eq(reply.u.status.nodes[0].jobs_running, 1);
    sf_wire_msg_clear(&reply);

    sf_wire_msg_t cancel = {.kind = SF_WIRE_CANCEL};
    cancel.u.cancel.render_id = 99;
    s_client_ask(&f, client, &cancel, &reply);
    ck_assert_int_eq(reply.kind, SF_WIRE_DONE);
    ck_assert_uint_eq(reply.u.done.exit_code, 2);
    ck_assert_str_eq(reply.u.done.message, "no render 99 in progress on this coordinator");
    sf_wire_msg_clear(&reply);

    cancel.u.cancel.render_id = 1;
    s_client_ask(&f, client, &cancel, &reply);
    ck_assert_int_eq(reply.kind, SF_WIRE_DONE);
    ck_assert_uint_eq(reply.u.done.exit_code, 0);
    ck_assert_str_eq(reply.u.done.message, "render 1 of 'D' cancelled");
    sf_wire_msg_clear(&reply);
    s_answer(&n, &f, &job, ANSWER_RIGHT); /* too late: dropped */
    sf_wire_msg_clear(&job);
    zmq_close(client);
    s_close(&n);
    int files = s_count_files(f.out_dir);
    s_finish(&f);
    ck_assert_int_eq(f.exit_code, 1);
    ck_assert_str_eq(f.message, "cancelled by a client ('stemfarm cancel')");
    ck_assert_int_eq(files, 0);
}
END_TEST

START_TEST(test_a_node_the_coordinator_does_not_know_is_asked_to_say_hello)
{
    fixture_t f;
    s_start(&f, "inproc://d11", 5000, 5000);
    node_t n;
    n.sock = zmq_socket(f.ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(n.sock, ZMQ_LINGER, &linger, sizeof linger);
    ck_assert_int_eq(zmq_connect(n.sock, "inproc://d11"), 0);
    sf_wire_msg_t credit = {.kind = SF_WIRE_CREDIT};
    credit.u.credit.n_jobs = 1;
    s_send(&n, &credit); /* as a node of the coordinator before a restart would */
    sf_wire_msg_t m;
    ck_assert_int_eq(s_recv(&n, &m, 2000), SF_WIRE_RESET);
    ck_assert_msg(strstr(m.u.reset.reason, "say hello again"), "%s", m.u.reset.reason);
    sf_wire_msg_clear(&m);
    s_close(&n);
    /* then a real node finishes the render */
    node_t good;
    s_join(&good, &f, "inproc://d11", "good-node");
    s_serve(&good, &f, s_right);
    s_close(&good);
    s_finish(&f);
    ck_assert_msg(f.exit_code == 0, "%s", f.message);
}
END_TEST

static answer_t s_always_one_channel(int i, const sf_wire_msg_t *job)
{
    (void)i;
    (void)job;
    return ANSWER_ONE_CHANNEL;
}

START_TEST(test_wrong_shape_fails_and_leaves_no_file)
{
    fixture_t f;
    s_start(&f, "inproc://d3", 5000, 5000);
    node_t n;
    s_join(&n, &f, "inproc://d3", "odd-node");
    s_serve(&n, &f, s_always_one_channel);
    s_close(&n);
    int files = s_count_files(f.out_dir);
    s_finish(&f);
    ck_assert_int_eq(f.exit_code, 1);
    ck_assert_msg(strstr(f.message, "result has 1 channels"), "%s", f.message);
    ck_assert_int_eq(files, 0);
}
END_TEST

START_TEST(test_no_node_is_a_farm_failure)
{
    fixture_t f;
    s_start(&f, "inproc://d4", 5000, 400);
    s_finish(&f);
    ck_assert_int_eq(f.exit_code, 3);
    ck_assert_msg(strstr(f.message, "no render node connected"), "%s", f.message);
}
END_TEST

START_TEST(test_a_silent_node_loses_its_job_to_another)
{
    fixture_t f;
    s_start(&f, "inproc://d5", 400, 5000);
    node_t silent, good;
    s_join(&silent, &f, "inproc://d5", "silent-node");
    sf_wire_msg_t job;
    ck_assert(s_next_job(&silent, &job)); /* takes a job, then says nothing */
    uint64_t taken = job.u.job.job_id;
    sf_wire_msg_clear(&job);
    s_join(&good, &f, "inproc://d5", "good-node");
    while (!f.done && s_next_job(&good, &job)) {
        /* the silent node's job comes back after the timeout, as a new lease */
        if (job.u.job.job_id == taken)
            ck_assert_uint_eq(job.u.job.attempt, 1);
        s_answer(&good, &f, &job, s_right(0, &job));
        sf_wire_msg_clear(&job);
    }
    s_close(&silent);
    s_close(&good);
    s_finish(&f);
    ck_assert_msg(f.exit_code == 0, "%s", f.message);
}
END_TEST

/* Every job is spot-checked; odd-node renders a sample differently. */
static answer_t s_odd_and_right(int node, const sf_wire_msg_t *job)
{
    (void)job;
    return node == 0 ? ANSWER_ODD : ANSWER_RIGHT;
}

/* The manifest of f's render, parsed. */
static json_t *s_manifest(const fixture_t *f)
{
    char *path = tu_path(f->out_dir, "manifest.json");
    json_error_t err;
    json_t *m = json_load_file(path, 0, &err);
    ck_assert_msg(m, "%s: %s", path, err.text);
    free(path);
    return m;
}

START_TEST(test_a_spot_check_mismatch_is_decided_by_a_third_node_and_reported)
{
    fixture_t f;
    dispatch_config_t cfg = {.node_timeout_ms = 5000, .no_node_timeout_ms = 5000, .spot_check = 1.0};
    s_start_with(&f, "inproc://d8", cfg, 1, 0);
    node_t n[3];
    const char *names[3] = {"odd-node", "good-a", "good-b"};
    for (int i = 0; i < 3; i++)
        s_join(&n[i], &f, "inproc://d8", names[i]);
    int answered[3] = {0};
    s_serve_many(n, 3, &f, s_odd_and_right, answered);
    for (int i = 0; i < 3; i++)
        s_close(&n[i]);
    ck_assert_msg(f.exit_code == 0, "%s", f.message);
    ck_assert_msg(strstr(f.events, "spot check: node 'odd-node' rendered stem 'S") &&
                      strstr(f.events, "node 'odd-node' quarantined"),
                  "%s", f.events);
    ck_assert_int_ge(answered[1] + answered[2], 18); /* nine jobs, each twice: all by the good nodes */
    json_t *m = s_manifest(&f);
    json_t *spot = json_object_get(m, "spot_checks");
    ck_assert_int_ge(json_array_size(json_object_get(spot, "mismatches")), 1);
    ck_assert_msg(strstr(json_string_value(json_array_get(json_object_get(spot, "mismatches"), 0)), "'odd-node'"),
                  "no node named in the mismatch");
    /* every segment was rendered twice and agreed, or was decided by a third: none is odd-node's */
    size_t checked = 0, files = json_array_size(json_object_get(m, "files"));
    for (size_t i = 0; i < files; i++) {
        json_t *segs = json_object_get(json_array_get(json_object_get(m, "files"), i), "segments");
        for (size_t k = 0; k < json_array_size(segs); k++) {
            json_t *seg = json_array_get(segs, k);
            const char *node = json_string_value(json_object_get(seg, "node"));
            const char *by = json_string_value(json_object_get(seg, "checked_by"));
            ck_assert_msg(node && strcmp(node, "odd-node") != 0, "a segment of odd-node's landed");
            ck_assert_msg(by && strcmp(by, "odd-node") != 0 && strcmp(by, node) != 0, "segment %zu: checked by %s", k,
                          by ? by : "nobody");
            checked++;
        }
    }
    ck_assert_uint_eq(checked, 6); /* two stems of three segments; the null-test reference is checked too */
    ck_assert_int_eq(json_integer_value(json_object_get(spot, "checked")), 9);
    json_decref(m);
    s_finish(&f);
}
END_TEST

START_TEST(test_a_spot_check_without_a_second_node_is_skipped)
{
    fixture_t f;
    dispatch_config_t cfg = {.node_timeout_ms = 5000, .no_node_timeout_ms = 5000, .spot_check = 1.0};
    s_start_with(&f, "inproc://d9", cfg, 1, 0);
    node_t n;
    s_join(&n, &f, "inproc://d9", "only-node");
    int answered = 0;
    s_serve_many(&n, 1, &f, s_odd_and_right, &answered);
    s_close(&n);
    ck_assert_msg(f.exit_code == 0, "%s", f.message);
    ck_assert_int_eq(answered, 9); /* each job once: no copy for the same node */
    json_t *m = s_manifest(&f);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(m, "spot_checks"), "checked")), 0);
    json_decref(m);
    s_finish(&f);
}
END_TEST

/* Two nodes, both odd in their own way, and no third: nobody can tell. */
static answer_t s_right_and_odd(int node, const sf_wire_msg_t *job)
{
    (void)job;
    return node == 1 ? ANSWER_ODD : ANSWER_RIGHT;
}

START_TEST(test_a_spot_check_mismatch_without_a_third_node_fails_the_render)
{
    fixture_t f;
    dispatch_config_t cfg = {.node_timeout_ms = 5000, .no_node_timeout_ms = 5000, .spot_check = 1.0};
    s_start_with(&f, "inproc://d10", cfg, 1, 0);
    node_t n[2];
    s_join(&n[0], &f, "inproc://d10", "node-a");
    s_join(&n[1], &f, "inproc://d10", "node-b");
    s_serve_many(n, 2, &f, s_right_and_odd, NULL);
    s_close(&n[0]);
    s_close(&n[1]);
    int files = s_count_files(f.out_dir);
    s_finish(&f);
    ck_assert_int_eq(f.exit_code, 1);
    ck_assert_msg(strstr(f.message, "'node-a' and 'node-b' rendered") &&
                      strstr(f.message, "differently and no third node can tell which is right"),
                  "%s", f.message);
    ck_assert_int_eq(files, 0);
}
END_TEST

/* flaky-node fails its first three jobs, then renders right; steady-node
 * renders right, a job every 100 ms. */
static int s_flaky_jobs;
static answer_t s_flaky_then_right(int node, const sf_wire_msg_t *job)
{
    (void)job;
    if (node == 1) {
        tu_sleep_ms(100);
        return ANSWER_RIGHT;
    }
    return s_flaky_jobs++ < 3 ? ANSWER_ERROR : ANSWER_RIGHT;
}

START_TEST(test_a_quarantined_node_is_re_admitted_after_the_cool_down)
{
    fixture_t f;
    dispatch_config_t cfg = {.node_timeout_ms = 5000, .no_node_timeout_ms = 5000, .quarantine_ms = 300};
    s_start_with(&f, "inproc://d11", cfg, 1, 0);
    node_t n[2];
    s_join(&n[0], &f, "inproc://d11", "flaky-node");
    s_join(&n[1], &f, "inproc://d11", "steady-node");
    s_flaky_jobs = 0;
    int answered[2] = {0};
    s_serve_many(n, 2, &f, s_flaky_then_right, answered);
    s_close(&n[0]);
    s_close(&n[1]);
    s_finish(&f);
    ck_assert_msg(f.exit_code == 0, "%s", f.message);
    ck_assert_msg(strstr(f.events, "node 'flaky-node' quarantined for 0.3 s: 3 failed jobs in a row") &&
                      strstr(f.events, "node 'flaky-node' re-admitted: its quarantine of 0.3 s is over"),
                  "%s", f.events);
    ck_assert_int_gt(answered[0], 3); /* work again after the cool-down */
}
END_TEST

/* A drain with a job out: status says so, a submission is refused with
 * exit 3, the job's answer still comes in, and then the loop returns; a
 * render without a journal ends with exit 3. */
START_TEST(test_a_drain_shows_in_status_and_refuses_submissions)
{
    fixture_t f;
    atomic_int drain = 0;
    dispatch_config_t cfg = {.node_timeout_ms = 5000, .no_node_timeout_ms = 5000, .drain = &drain};
    s_start_with(&f, "inproc://d12", cfg, 1, 0);
    node_t n;
    s_join(&n, &f, "inproc://d12", "busy-node");
    sf_wire_msg_t job;
    ck_assert(s_next_job(&n, &job));
    atomic_store(&drain, 1);
    void *client = zmq_socket(f.ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(client, ZMQ_LINGER, &linger, sizeof linger);
    ck_assert_int_eq(zmq_connect(client, "inproc://d12"), 0);
    sf_wire_msg_t ask = {.kind = SF_WIRE_STATUS_REQUEST}, reply;
    bool draining = false;
    for (int i = 0; i < 20 && !draining; i++) { /* the loop sees the flag within a poll */
        s_client_ask(&f, client, &ask, &reply);
        ck_assert_int_eq(reply.kind, SF_WIRE_STATUS);
        draining = reply.u.status.draining;
        sf_wire_msg_clear(&reply);
    }
    ck_assert_msg(draining, "status never said draining");
    sf_wire_msg_t submit = {.kind = SF_WIRE_SUBMIT};
    submit.u.submit.session_path = f.session_path;
    submit.u.submit.yaml = f.yaml;
    submit.u.submit.n_yaml_bytes = f.n_yaml;
    submit.u.submit.out_dir = f.out_dir;
    s_client_ask(&f, client, &submit, &reply);
    ck_assert_int_eq(reply.kind, SF_WIRE_DONE);
    ck_assert_uint_eq(reply.u.done.exit_code, 3);
    ck_assert_msg(strstr(reply.u.done.message, "shutting down"), "%s", reply.u.done.message);
    sf_wire_msg_clear(&reply);
    s_answer(&n, &f, &job, ANSWER_RIGHT);
    sf_wire_msg_clear(&job);
    for (int64_t until = tu_now_ms() + 5000; !f.done && tu_now_ms() < until;)
        tu_sleep_ms(10);
    zmq_close(client);
    s_close(&n);
    s_finish(&f);
    ck_assert_int_eq(f.exit_code, 3);
    ck_assert_msg(strstr(f.message, "the coordinator stopped before the render finished"), "%s", f.message);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dispatch");
    TCase *tc = tcase_create("scripted_nodes");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_a_job_failing_on_three_nodes_fails_the_render_with_their_messages);
    tcase_add_test(tc, test_no_eligible_node_left_fails_fast_with_the_reason);
    tcase_add_test(tc, test_bad_answers_go_to_another_node_and_quarantine_the_sender);
    tcase_add_test(tc, test_a_job_without_progress_is_reissued);
    tcase_add_test(tc, test_a_slow_job_that_reports_progress_is_not_reissued);
    tcase_add_test(tc, test_higher_priority_renders_go_first);
    tcase_add_test(tc, test_status_lists_renders_and_nodes_and_cancel_ends_a_render);
    tcase_add_test(tc, test_a_node_the_coordinator_does_not_know_is_asked_to_say_hello);
    tcase_add_test(tc, test_wrong_shape_fails_and_leaves_no_file);
    tcase_add_test(tc, test_no_node_is_a_farm_failure);
    tcase_add_test(tc, test_a_silent_node_loses_its_job_to_another);
    tcase_add_test(tc, test_a_spot_check_mismatch_is_decided_by_a_third_node_and_reported);
    tcase_add_test(tc, test_a_spot_check_without_a_second_node_is_skipped);
    tcase_add_test(tc, test_a_spot_check_mismatch_without_a_third_node_fails_the_render);
    tcase_add_test(tc, test_a_quarantined_node_is_re_admitted_after_the_cool_down);
    tcase_add_test(tc, test_a_drain_shows_in_status_and_refuses_submissions);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
