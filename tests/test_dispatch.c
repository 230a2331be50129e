/* test_dispatch.c -- the coordinator's loop against scripted nodes.
 *
 * The real dispatcher runs in a thread on inproc://; the test plays the
 * node over a real DEALER socket and misbehaves on purpose: job errors,
 * wrong checksums, wrong shapes, stale leases, silence. What is checked is
 * what a user sees: the exit code, the message naming the node's error, a
 * render that recovers, and no file left behind by a failed render. */
#include "dispatch.h"
#include "testutil.h"

#include "sf/alloc.h"
#include "sf/hash.h"
#include "sf/render.h"
#include "sf/session.h"
#include "sf/wire.h"

#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define RATE   48000
#define FRAMES 30000

typedef struct {
    void *ctx;
    dispatch_t *d;
    pthread_t thread;
    int exit_code;
    char message[2048];
    int done;
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
    if (ev->kind != DISPATCH_EV_DONE)
        return;
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

static void s_start(fixture_t *f, const char *endpoint, int node_timeout_ms, int no_node_timeout_ms)
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
    dispatch_config_t cfg = {.bind = endpoint,
                             .zmq_context = f->ctx,
                             .heartbeat_ms = 100,
                             .node_timeout_ms = node_timeout_ms,
                             .no_node_timeout_ms = no_node_timeout_ms,
                             .exit_when_idle = true};
    ck_assert_int_eq(dispatch_new(&cfg, &f->d, NULL), SF_OK);
    ck_assert_int_eq(
        dispatch_submit(f->d, f->session_path, f->yaml, f->n_yaml, f->out_dir, 0, false, NULL, s_on_event, f, NULL),
        SF_OK);
    pthread_create(&f->thread, NULL, s_run, f);
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

typedef enum { ANSWER_RIGHT, ANSWER_ERROR, ANSWER_BAD_XXH3, ANSWER_ONE_CHANNEL, ANSWER_STALE } answer_t;

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

static void s_close(node_t *n) { zmq_close(n->sock); }

/* ---- tests --------------------------------------------------------------- */

static answer_t s_always_error(int i, const sf_wire_msg_t *job)
{
    (void)i;
    (void)job;
    return ANSWER_ERROR;
}

START_TEST(test_repeated_job_errors_fail_the_render_with_the_node_message)
{
    fixture_t f;
    s_start(&f, "inproc://d1", 5000, 5000);
    node_t n;
    s_join(&n, &f, "inproc://d1", "flaky-node");
    int answered = s_serve(&n, &f, s_always_error);
    s_close(&n);
    s_finish(&f);
    ck_assert_int_eq(f.exit_code, 1);
    ck_assert_int_eq(answered, 3);
    ck_assert_msg(strstr(f.message, "failed 3 times") && strstr(f.message, "flaky-node") &&
                      strstr(f.message, "disk on fire"),
                  "%s", f.message);
}
END_TEST

/* The first answer of every job is wrong in some way; the second is right. */
static answer_t s_bad_xxh3_first(int i, const sf_wire_msg_t *job)
{
    return job->u.job.attempt == 0 ? (i % 2 ? ANSWER_BAD_XXH3 : ANSWER_STALE) : ANSWER_RIGHT;
}

START_TEST(test_bad_checksums_and_stale_leases_are_retried)
{
    fixture_t f;
    s_start(&f, "inproc://d2", 5000, 5000);
    node_t n;
    s_join(&n, &f, "inproc://d2", "sloppy-node");
    s_serve(&n, &f, s_bad_xxh3_first);
    s_close(&n);
    char *out_dir = strdup(f.out_dir);
    s_finish(&f);
    ck_assert_msg(f.exit_code == 0, "%s", f.message);
    free(out_dir);
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

static answer_t s_right(int i, const sf_wire_msg_t *job)
{
    (void)i;
    (void)job;
    return ANSWER_RIGHT;
}

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

int main(void)
{
    Suite *s = suite_create("dispatch");
    TCase *tc = tcase_create("scripted_nodes");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_repeated_job_errors_fail_the_render_with_the_node_message);
    tcase_add_test(tc, test_bad_checksums_and_stale_leases_are_retried);
    tcase_add_test(tc, test_wrong_shape_fails_and_leaves_no_file);
    tcase_add_test(tc, test_no_node_is_a_farm_failure);
    tcase_add_test(tc, test_a_silent_node_loses_its_job_to_another);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
