/* test_farm.c -- the farm with real processes on 127.0.0.1: a long-running
 * `stemfarm coordinator`, `stemfarm-node` processes that come and go, and
 * clients (`render --farm`, `status`, `cancel`). What is checked is what an
 * operator sees: exit codes, the lines printed, stems byte-identical to an
 * embedded render, and nodes that rejoin a restarted coordinator. */
#include "testutil.h"

#include "sf/alloc.h"
#include "sf/hash.h"
#include "sf/wire.h"

#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

static char *s_dir;
static char *s_session; /* a generated bench session */

static void setup(void)
{
    s_dir = tu_tmpdir();
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' bench '%s/bench' --tracks 8 --seconds 60 --stems 4", tu_gen_bin(), s_dir);
    char *err = NULL;
    ck_assert_msg(tu_run(cmd, NULL, &err, 120) == 0, "stemfarm-gen: %s", err);
    free(err);
    s_session = tu_path(s_dir, "bench/session.yaml");
}

static void teardown(void)
{
    tu_rm_rf(s_dir);
    free(s_dir);
    free(s_session);
}

typedef struct {
    char endpoint[64];
    char log[4096];
    pid_t pid;
} coord_t;

static void s_coord_start(coord_t *c, const char *endpoint, char *const extra[])
{
    if (endpoint)
        snprintf(c->endpoint, sizeof c->endpoint, "%s", endpoint);
    else
        snprintf(c->endpoint, sizeof c->endpoint, "tcp://127.0.0.1:%d", tu_free_port());
    snprintf(c->log, sizeof c->log, "%s/coordinator.log", s_dir);
    char state[4096];
    snprintf(state, sizeof state, "%s/state", s_dir);
    char *argv[32] = {(char *)tu_stemfarm_bin(), "coordinator", "--bind", c->endpoint, "--state", state};
    int n = 6;
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    c->pid = tu_spawn(argv, c->log);
}

static pid_t s_node_start(const coord_t *c, const char *name, const char *threads)
{
    char log[4096];
    snprintf(log, sizeof log, "%s/%s.log", s_dir, name);
    return tu_spawn((char *const[]){(char *)tu_node_bin(), "--connect", (char *)c->endpoint, "--threads",
                                    (char *)threads, "--name", (char *)name, NULL},
                    log);
}

static char *s_log_of(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.log", s_dir, name);
    char *text = tu_slurp(path, NULL);
    return text ? text : strdup("");
}

/* Entries in a folder, hidden ones too (0 if it does not exist). */
static int s_count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* `stemfarm ARGS`, its exit status, stdout and stderr. */
static int s_stemfarm(const char *args, char **out, char **err)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s", tu_stemfarm_bin(), args);
    return tu_run(cmd, out, err, 240);
}

/* Polls `status --json` until `want` appears in it (10 s at most). */
static char *s_status_until(const coord_t *c, const char *want)
{
    char args[256];
    snprintf(args, sizeof args, "status --farm %s --json", c->endpoint);
    for (int i = 0; i < 100; i++) {
        char *out = NULL;
        int rc = s_stemfarm(args, &out, NULL);
        if (rc == 0 && strstr(out, want))
            return out;
        free(out);
        tu_sleep_ms(100);
    }
    ck_abort_msg("status never showed '%s'", want);
    return NULL;
}

/* The embedded render of the session with `segment`, the reference every
 * farm render must equal byte for byte. */
static char *s_reference(const char *segment)
{
    char *out_dir = tu_path(s_dir, "reference");
    char args[4096];
    snprintf(args, sizeof args, "render '%s' -o '%s' --nodes 2 --segment %s --force", s_session, out_dir, segment);
    char *err = NULL;
    ck_assert_msg(s_stemfarm(args, NULL, &err) == 0, "%s", err);
    free(err);
    return out_dir;
}

/* Every audio file of `ref` is in `dir` with the same bytes. */
static void s_assert_same_audio(const char *ref, const char *dir)
{
    DIR *d = opendir(ref);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".wav") != 0)
            continue;
        char *a = tu_path(ref, e->d_name), *b = tu_path(dir, e->d_name);
        ck_assert_msg(tu_files_equal(a, b), "'%s' differs from the reference", b);
        free(a);
        free(b);
        n++;
    }
    closedir(d);
    ck_assert_int_ge(n, 4); /* the 4 stems */
}

/* Counts "render R job J landed" lines per job in a coordinator log (all
 * incarnations): fails if a job landed twice; returns how many landed. */
static int s_landed_once(const char *log_path, int n_jobs)
{
    char *log = tu_slurp(log_path, NULL);
    ck_assert_ptr_nonnull(log);
    int *seen = calloc((size_t)n_jobs, sizeof *seen), total = 0;
    for (const char *p = log; (p = strstr(p, " job ")); p++) {
        int job;
        char word[16];
        if (sscanf(p, " job %d %15s", &job, word) == 2 && strcmp(word, "landed") == 0) {
            ck_assert_int_lt(job, n_jobs);
            ck_assert_msg(seen[job] == 0, "job %d landed twice", job);
            seen[job] = 1;
            total++;
        }
    }
    free(seen);
    free(log);
    return total;
}

/* The number after `key` in the text, or -1. */
static long s_number_after(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* The last 1500 bytes of a log, for assertion messages (Check's are short). */
static const char *s_tail(const char *log)
{
    size_t n = strlen(log);
    return n > 1500 ? log + n - 1500 : log;
}

/* Polls status until render 1 has at least min_jobs jobs done. */
static void s_wait_jobs_done(const coord_t *c, long min_jobs)
{
    char args[256];
    snprintf(args, sizeof args, "status --farm %s --json", c->endpoint);
    for (int i = 0; i < 300; i++) {
        char *out = NULL;
        if (s_stemfarm(args, &out, NULL) == 0 && s_number_after(out, "\"jobs_done\":") >= min_jobs) {
            free(out);
            return;
        }
        free(out);
        tu_sleep_ms(100);
    }
    ck_abort_msg("render 1 never reached %ld jobs done", min_jobs);
}

START_TEST(test_status_and_cancel_from_the_command_line)
{
    coord_t c;
    s_coord_start(&c, NULL, NULL);
    pid_t node = s_node_start(&c, "only-node", "1");
    char *out_dir = tu_path(s_dir, "cancelled");
    char render_log[4096];
    snprintf(render_log, sizeof render_log, "%s/render.log", s_dir);
    /* 1 s segments, 300 jobs on one thread: running long enough to cancel */
    pid_t render = tu_spawn((char *const[]){(char *)tu_stemfarm_bin(), "render", s_session, "--farm", c.endpoint, "-o",
                                            out_dir, "--segment", "1s", "--priority", "7", "--json", NULL},
                            render_log);
    s_wait_jobs_done(&c, 1);
    char *status = s_status_until(&c, "\"render_id\":1");
    ck_assert_msg(strstr(status, "\"render_id\":1,\"session\":\"Bench 8x60s\"") && strstr(status, "\"priority\":7") &&
                      strstr(status, "\"jobs_total\":300") &&
                      strstr(status, "\"name\":\"only-node\",\"state\":\"ready\""),
                  "%s", status);
    free(status);

    char args[256], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "status --farm %s", c.endpoint);
    ck_assert_int_eq(s_stemfarm(args, &out, NULL), 0);
    ck_assert_msg(strstr(out, "1 render, 1 node") && strstr(out, "Bench 8x60s") && strstr(out, "only-node"), "%s", out);
    free(out);

    snprintf(args, sizeof args, "cancel --farm %s 42", c.endpoint);
    ck_assert_int_eq(s_stemfarm(args, NULL, &err), 2);
    ck_assert_msg(strstr(err, "no render 42 in progress on this coordinator"), "%s", err);
    free(err);
    snprintf(args, sizeof args, "cancel --farm %s 1", c.endpoint);
    ck_assert_int_eq(s_stemfarm(args, NULL, &err), 0);
    ck_assert_msg(strstr(err, "render 1 of 'Bench 8x60s' cancelled"), "%s", err);
    free(err);
    snprintf(args, sizeof args, "cancel --farm %s one", c.endpoint);
    ck_assert_int_eq(s_stemfarm(args, NULL, &err), 2);
    free(err);

    ck_assert_int_eq(tu_wait(render, 10000), 1);
    char *log = tu_slurp(render_log, NULL);
    ck_assert_msg(strstr(log, "cancelled by a client"), "%s", s_tail(log));
    free(log);
    ck_assert_int_eq(s_count_files(out_dir), 0); /* not even a .partial */
    ck_assert_int_eq(tu_stop(c.pid), 0);
    ck_assert_int_eq(tu_stop(node), 0);
    free(out_dir);
}
END_TEST

/* Delivery -- reading every stem back through the meters and hashing it --
 * takes seconds for long stems and runs beside the coordinator's loop: a
 * status request is answered while it runs, and the node, on a 1 s
 * timeout, is not lost for want of an answer. */
START_TEST(test_the_coordinator_answers_while_it_delivers)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' bench '%s/long' --tracks 2 --seconds 900 --stems 2", tu_gen_bin(), s_dir);
    char *err = NULL;
    ck_assert_msg(tu_run(cmd, NULL, &err, 300) == 0, "stemfarm-gen: %s", err);
    free(err);
    char *session = tu_path(s_dir, "long/session.yaml");
    coord_t c;
    s_coord_start(&c, NULL, (char *const[]){"--node-timeout", "1", NULL});
    pid_t node = s_node_start(&c, "steady-node", "2");
    char *out_dir = tu_path(s_dir, "long-out");
    char render_log[4096];
    snprintf(render_log, sizeof render_log, "%s/render-long.log", s_dir);
    pid_t render = tu_spawn((char *const[]){(char *)tu_stemfarm_bin(), "render", session, "--farm", c.endpoint, "-o",
                                            out_dir, "--json", NULL},
                            render_log);
    char *log = NULL;
    for (int i = 0; i < 3000; i++) {
        free(log);
        log = tu_slurp(c.log, NULL);
        if (log && strstr(log, "every segment is in; delivering"))
            break;
        tu_sleep_ms(20);
    }
    ck_assert_msg(log && strstr(log, "every segment is in; delivering"), "never delivering: %s", s_tail(log));
    char args[256], *out = NULL;
    snprintf(args, sizeof args, "status --farm %s", c.endpoint);
    const int64_t asked = tu_now_ms();
    ck_assert_int_eq(s_stemfarm(args, &out, NULL), 0);
    const double took = (double)(tu_now_ms() - asked) / 1000.0;
    free(out);
    free(log);
    log = tu_slurp(c.log, NULL);
    ck_assert_msg(!strstr(log, "delivered:"),
                  "the delivery ended before the status request was answered (%.2f s); "
                  "it is too short to show anything: %s",
                  took, s_tail(log));
    ck_assert_msg(took < 1.0, "status took %.2f s while the coordinator delivered", took);
    /* too late to cancel: the render goes on to its delivery */
    char *cancel_err = NULL;
    snprintf(args, sizeof args, "cancel --farm %s 1", c.endpoint);
    ck_assert_int_eq(s_stemfarm(args, NULL, &cancel_err), 1);
    ck_assert_msg(strstr(cancel_err, "is rendered and being delivered: too late to cancel"), "%s", cancel_err);
    free(cancel_err);
    ck_assert_int_eq(tu_wait(render, 120000), 0);
    free(log);
    log = tu_slurp(c.log, NULL);
    ck_assert_msg(strstr(log, "delivered:") && !strstr(log, "lost"), "%s", s_tail(log));
    free(log);
    ck_assert_int_eq(tu_stop(c.pid), 0);
    ck_assert_int_eq(tu_stop(node), 0);
    free(out_dir);
    free(session);
}
END_TEST

START_TEST(test_a_node_rejoins_a_restarted_coordinator)
{
    coord_t c;
    s_coord_start(&c, NULL, NULL);
    pid_t node = s_node_start(&c, "faithful-node", "1");
    free(s_status_until(&c, "faithful-node"));
    tu_kill9(c.pid);
    tu_sleep_ms(300);
    coord_t again;
    s_coord_start(&again, c.endpoint, NULL);
    /* The node was not told anything: its next heartbeat meets a stranger,
     * which asks it to say hello. */
    free(s_status_until(&again, "faithful-node"));
    char *out_dir = tu_path(s_dir, "after-restart");
    char args[4096];
    snprintf(args, sizeof args, "render '%s' --farm %s -o '%s' --json", s_session, again.endpoint, out_dir);
    char *out = NULL, *err = NULL;
    int rc = s_stemfarm(args, &out, &err);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    /* the last word counts the jobs, as an embedded render's does */
    ck_assert_msg(strstr(out, "{\"event\":\"done\",\"jobs_done\":30,\"jobs_total\":30,"), "%s", out);
    free(out);
    free(err);
    ck_assert_int_eq(tu_stop(again.pid), 0);
    ck_assert_int_eq(tu_stop(node), 0);
    char *log = s_log_of("faithful-node");
    ck_assert_msg(strstr(log, "asks this node to join again"), "%s", s_tail(log));
    free(log);
    free(out_dir);
}
END_TEST

/* kill -9 of the coordinator in the middle of a render: the restarted one
 * replays its journal, renders only what had not landed, and the client
 * that submitted sees the render through to the end. */
START_TEST(test_a_killed_coordinator_resumes_without_rendering_a_landed_segment_again)
{
    char *ref = s_reference("1s");
    setenv("STEMFARM_LOG", "debug", 1);
    coord_t c;
    s_coord_start(&c, NULL, NULL);
    pid_t n1 = s_node_start(&c, "node-1", "1"), n2 = s_node_start(&c, "node-2", "1");
    char *out_dir = tu_path(s_dir, "resumed");
    char render_log[4096];
    snprintf(render_log, sizeof render_log, "%s/render.log", s_dir);
    pid_t render = tu_spawn((char *const[]){(char *)tu_stemfarm_bin(), "render", s_session, "--farm", c.endpoint, "-o",
                                            out_dir, "--segment", "1s", "--json", NULL},
                            render_log);
    s_wait_jobs_done(&c, 4);
    tu_kill9(c.pid);
    coord_t again;
    s_coord_start(&again, c.endpoint, NULL);
    int rc = tu_wait(render, 120000);
    char *log = tu_slurp(render_log, NULL);
    ck_assert_msg(rc == 0, "render exited %d: %s", rc, s_tail(log));
    ck_assert_msg(strstr(log, "the render resumes where it was"), "%s", s_tail(log));
    free(log);
    ck_assert_int_eq(tu_stop(again.pid), 0);
    ck_assert_int_eq(tu_stop(n1), 0);
    ck_assert_int_eq(tu_stop(n2), 0);
    unsetenv("STEMFARM_LOG");
    s_assert_same_audio(ref, out_dir);
    char *clog = tu_slurp(c.log, NULL);
    long resumed = s_number_after(clog, "render 1 resumed: ");
    free(clog);
    ck_assert_msg(resumed >= 4 && resumed < 300, "resumed with %ld jobs landed", resumed);
    /* 300 jobs, each landed once: the journal's before the crash, the rest after */
    ck_assert_int_le(s_landed_once(c.log, 300), 300);
    ck_assert_int_ge(s_landed_once(c.log, 300), 300 - 1); /* one may land in the journal as the kill hits */
    char state_journal[4096];
    snprintf(state_journal, sizeof state_journal, "%s/state/render-1.journal", s_dir);
    ck_assert_msg(!tu_exists(state_journal), "the journal of a delivered render is removed");
    free(out_dir);
    free(ref);
}
END_TEST

/* SIGTERM drains: the jobs out come back and are journalled, the
 * coordinator exits 0, and the next start finishes the render. */
START_TEST(test_sigterm_drains_and_the_next_start_finishes_the_render)
{
    char *ref = s_reference("1s");
    coord_t c;
    s_coord_start(&c, NULL, NULL);
    pid_t n1 = s_node_start(&c, "node-1", "1");
    char *out_dir = tu_path(s_dir, "drained");
    char render_log[4096];
    snprintf(render_log, sizeof render_log, "%s/render.log", s_dir);
    pid_t render = tu_spawn((char *const[]){(char *)tu_stemfarm_bin(), "render", s_session, "--farm", c.endpoint, "-o",
                                            out_dir, "--segment", "1s", "--json", NULL},
                            render_log);
    s_wait_jobs_done(&c, 4);
    kill(c.pid, SIGTERM);
    ck_assert_int_eq(tu_wait(c.pid, 30000), 0);
    char *clog = tu_slurp(c.log, NULL);
    ck_assert_msg(strstr(clog, "draining: no new jobs") && strstr(clog, "render 1 kept for the next start"), "%s",
                  s_tail(clog));
    long kept = s_number_after(clog, "kept for the next start: ");
    free(clog);
    /* a new submission while it is down waits; the old client waits too */
    coord_t again;
    s_coord_start(&again, c.endpoint, NULL);
    int rc = tu_wait(render, 120000);
    char *log = tu_slurp(render_log, NULL);
    ck_assert_msg(rc == 0, "render exited %d: %s", rc, s_tail(log));
    ck_assert_msg(strstr(log, "the coordinator is shutting down") && strstr(log, "resumes"), "%s", s_tail(log));
    free(log);
    ck_assert_int_eq(tu_stop(again.pid), 0);
    ck_assert_int_eq(tu_stop(n1), 0);
    s_assert_same_audio(ref, out_dir);
    clog = tu_slurp(again.log, NULL);
    ck_assert_int_eq(s_number_after(clog, "render 1 resumed: "), kept);
    free(clog);
    free(out_dir);
    free(ref);
}
END_TEST

START_TEST(test_a_second_coordinator_on_the_same_state_folder_is_refused)
{
    coord_t c;
    s_coord_start(&c, NULL, NULL);
    free(s_status_until(&c, "\"renders\":[]"));
    char args[4096], *err = NULL;
    snprintf(args, sizeof args, "coordinator --bind tcp://127.0.0.1:%d --state '%s/state'", tu_free_port(), s_dir);
    ck_assert_int_eq(s_stemfarm(args, NULL, &err), 2);
    ck_assert_msg(strstr(err, "is in use by another running coordinator"), "%s", err);
    free(err);
    ck_assert_int_eq(tu_stop(c.pid), 0);
}
END_TEST

/* Two clients at once on one coordinator: the later, higher-priority
 * render takes the nodes first and is delivered first; both are
 * byte-identical to the embedded render. */
START_TEST(test_two_renders_at_once_go_by_priority)
{
    char *ref = s_reference("1s");
    coord_t c;
    s_coord_start(&c, NULL, NULL);
    pid_t n1 = s_node_start(&c, "node-1", "1"), n2 = s_node_start(&c, "node-2", "1");
    char *low_dir = tu_path(s_dir, "low"), *high_dir = tu_path(s_dir, "high");
    char low_log[4096], high_log[4096];
    snprintf(low_log, sizeof low_log, "%s/low.log", s_dir);
    snprintf(high_log, sizeof high_log, "%s/high.log", s_dir);
    pid_t low = tu_spawn((char *const[]){(char *)tu_stemfarm_bin(), "render", s_session, "--farm", c.endpoint, "-o",
                                         low_dir, "--segment", "1s", "--json", NULL},
                         low_log);
    s_wait_jobs_done(&c, 10);
    pid_t high = tu_spawn((char *const[]){(char *)tu_stemfarm_bin(), "render", s_session, "--farm", c.endpoint, "-o",
                                          high_dir, "--segment", "1s", "--priority", "50", "--json", NULL},
                          high_log);
    char *status = s_status_until(&c, "\"render_id\":2");
    /* listed by priority: the later render first */
    char *first = strstr(status, "\"render_id\":2"), *second = strstr(status, "\"render_id\":1");
    ck_assert_msg(first && second && first < second, "%s", status);
    free(status);
    ck_assert_int_eq(tu_wait(high, 120000), 0);
    ck_assert_int_eq(tu_wait(low, 120000), 0);
    ck_assert_int_eq(tu_stop(c.pid), 0);
    ck_assert_int_eq(tu_stop(n1), 0);
    ck_assert_int_eq(tu_stop(n2), 0);
    s_assert_same_audio(ref, high_dir);
    s_assert_same_audio(ref, low_dir);
    char *clog = tu_slurp(c.log, NULL);
    char *high_done = strstr(clog, "render 2 of 'Bench 8x60s' delivered"),
         *low_done = strstr(clog, "render 1 of 'Bench 8x60s' delivered");
    ck_assert_msg(high_done && low_done && high_done < low_done, "%s", s_tail(clog));
    free(clog);
    free(low_dir);
    free(high_dir);
    free(ref);
}
END_TEST

/* ---- hostile traffic ------------------------------------------------------ */

static void s_raw_send(void *sock, const void *data, size_t n) { ck_assert_int_ge(zmq_send(sock, data, n, 0), 0); }

static void s_msg_send(void *sock, const sf_wire_msg_t *m)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    sf_err_t err = {0};
    ck_assert_msg(sf_wire_encode(m, &buf, &n, &err) == SF_OK, "%s", err.msg);
    s_raw_send(sock, buf, n);
    sf_free(buf);
}

/* The next message of `kind` within timeout_ms (others are skipped);
 * false when none came. */
static bool s_msg_wait(void *sock, sf_wire_kind_t kind, sf_wire_msg_t *m, int timeout_ms)
{
    int64_t deadline = tu_now_ms() + timeout_ms;
    while (tu_now_ms() < deadline) {
        zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, 100) <= 0)
            continue;
        zmq_msg_t body;
        zmq_msg_init(&body);
        int n = zmq_msg_recv(&body, sock, 0);
        sf_err_t err = {0};
        bool ok = n >= 0 && sf_wire_decode(zmq_msg_data(&body), zmq_msg_size(&body), m, &err) == SF_OK;
        zmq_msg_close(&body);
        if (ok && m->kind == kind)
            return true;
        if (ok)
            sf_wire_msg_clear(m);
    }
    return false;
}

static void *s_dealer(void *ctx, const char *endpoint)
{
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    ck_assert_int_eq(zmq_connect(sock, endpoint), 0);
    return sock;
}

/* While a real node renders a real client's session, a peer throws
 * everything wrong at the coordinator: garbage, a message of several
 * frames, one past the size limit, node traffic without a hello, a bad
 * session, a cancel of nothing; then it joins as a node, takes a job,
 * answers it for the wrong lease and falls silent. The coordinator answers
 * what deserves an answer, drops the rest, hands the silent node's job to
 * the real one, and delivers stems byte-identical to the embedded render. */
START_TEST(test_hostile_traffic_does_not_disturb_a_render)
{
    char *ref = s_reference("1s");
    coord_t c;
    s_coord_start(&c, NULL, (char *const[]){"--node-timeout", "2", NULL});
    void *ctx = zmq_ctx_new();
    void *peer = s_dealer(ctx, c.endpoint);
    free(s_status_until(&c, "\"renders\":[]"));

    /* garbage, a multi-frame message, one past the limit */
    uint8_t junk[256];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(sf_hash_xxh3(&i, sizeof i) & 0xff);
    s_raw_send(peer, junk, sizeof junk);
    ck_assert_int_ge(zmq_send(peer, junk, 8, ZMQ_SNDMORE), 0);
    s_raw_send(peer, junk, 8);
    size_t big_n = SF_WIRE_MAX_MESSAGE_BYTES + 1;
    uint8_t *big = calloc(1, big_n);
    s_raw_send(peer, big, big_n);
    free(big);
    zmq_close(peer); /* the coordinator drops a connection past the limit */
    peer = s_dealer(ctx, c.endpoint);

    /* node traffic from a stranger: told to say hello */
    sf_wire_msg_t m = {.kind = SF_WIRE_RESULT}, in;
    float pcm[2] = {0.5f, -0.5f};
    m.u.result.job_id = 12345;
    m.u.result.attempt = 1;
    m.u.result.n_channels = 2;
    m.u.result.n_frames = 1;
    m.u.result.pcm = pcm;
    m.u.result.n_pcm_bytes = sizeof pcm;
    m.u.result.xxh3 = sf_hash_xxh3(pcm, sizeof pcm);
    s_msg_send(peer, &m);
    ck_assert_msg(s_msg_wait(peer, SF_WIRE_RESET, &in, 5000), "no Reset for a stranger's result");
    sf_wire_msg_clear(&in);

    /* a session that does not parse, a cancel of a render that does not exist */
    static const char bad_yaml[] = "version: 1\nsession: {name: X, sample_rate: 48000}\ntracks:\n  - {nmae: A}\n";
    m = (sf_wire_msg_t){.kind = SF_WIRE_SUBMIT};
    char *bad_path = tu_path(s_dir, "bad.yaml"); /* never written: the text travels in the message */
    m.u.submit.session_path = bad_path;
    m.u.submit.yaml = (const uint8_t *)bad_yaml;
    m.u.submit.n_yaml_bytes = sizeof bad_yaml - 1;
    m.u.submit.out_dir = s_dir;
    s_msg_send(peer, &m);
    ck_assert_msg(s_msg_wait(peer, SF_WIRE_DONE, &in, 5000), "no answer to a bad submission");
    ck_assert_msg(in.u.done.exit_code == 2, "exit %u: %s", in.u.done.exit_code, in.u.done.message);
    ck_assert_msg(strstr(in.u.done.message, "bad.yaml:4:") && strstr(in.u.done.message, "nmae"), "%s",
                  in.u.done.message);
    sf_wire_msg_clear(&in);
    free(bad_path);
    m = (sf_wire_msg_t){.kind = SF_WIRE_CANCEL};
    m.u.cancel.render_id = 77;
    s_msg_send(peer, &m);
    ck_assert_msg(s_msg_wait(peer, SF_WIRE_DONE, &in, 5000), "no answer to a cancel of nothing");
    ck_assert_msg(strstr(in.u.done.message, "no render 77 in progress"), "%s", in.u.done.message);
    sf_wire_msg_clear(&in);

    /* the peer joins as a node before the real one, so the first job is its */
    m = (sf_wire_msg_t){.kind = SF_WIRE_HELLO};
    m.u.hello.node_name = "impostor";
    m.u.hello.cores = m.u.hello.threads = m.u.hello.slots = 1;
    m.u.hello.simd = "scalar";
    s_msg_send(peer, &m);
    ck_assert(s_msg_wait(peer, SF_WIRE_WELCOME, &in, 5000));
    sf_wire_msg_clear(&in);
    m = (sf_wire_msg_t){.kind = SF_WIRE_CREDIT};
    m.u.credit.n_jobs = 200; /* more than its one slot: capped */
    s_msg_send(peer, &m);
    char *out_dir = tu_path(s_dir, "hostile");
    char render_log[4096];
    snprintf(render_log, sizeof render_log, "%s/render.log", s_dir);
    pid_t render = tu_spawn((char *const[]){(char *)tu_stemfarm_bin(), "render", s_session, "--farm", c.endpoint, "-o",
                                            out_dir, "--segment", "1s", "--json", NULL},
                            render_log);
    ck_assert_msg(s_msg_wait(peer, SF_WIRE_JOB, &in, 10000), "the impostor got no job");
    ck_assert_msg(!s_msg_wait(peer, SF_WIRE_JOB, &m, 500), "a second job for a node of one slot");
    /* an answer for another lease, silence after */
    uint32_t channels = 2;
    size_t frames = (size_t)in.u.job.n_frames;
    float *wrong = calloc(frames * channels, sizeof *wrong);
    m = (sf_wire_msg_t){.kind = SF_WIRE_RESULT};
    m.u.result.job_id = in.u.job.job_id;
    m.u.result.attempt = in.u.job.attempt + 1;
    m.u.result.n_channels = channels;
    m.u.result.n_frames = frames;
    m.u.result.pcm = wrong;
    m.u.result.n_pcm_bytes = frames * channels * sizeof *wrong;
    m.u.result.xxh3 = sf_hash_xxh3(wrong, m.u.result.n_pcm_bytes);
    s_msg_send(peer, &m);
    free(wrong);
    sf_wire_msg_clear(&in);
    pid_t node = s_node_start(&c, "honest-node", "1");
    int rc = tu_wait(render, 120000);
    char *log = tu_slurp(render_log, NULL);
    ck_assert_msg(rc == 0, "render exited %d: %s", rc, s_tail(log));
    free(log);
    zmq_close(peer);
    zmq_ctx_term(ctx);
    ck_assert_int_eq(tu_stop(c.pid), 0);
    ck_assert_int_eq(tu_stop(node), 0);
    s_assert_same_audio(ref, out_dir);
    char *clog = tu_slurp(c.log, NULL);
    ck_assert_msg(strstr(clog, "bad message from peer") &&
                      strstr(clog, "node 'impostor' lost (silent past the timeout)"),
                  "%s", s_tail(clog));
    free(clog);
    free(out_dir);
    free(ref);
}
END_TEST

/* `stemfarm keygen NAME --dir DIR`, which must succeed. */
static void s_keygen(const char *dir, const char *name)
{
    char args[4096], *err = NULL;
    snprintf(args, sizeof args, "keygen '%s' --dir '%s'", name, dir);
    ck_assert_msg(s_stemfarm(args, NULL, &err) == 0, "keygen %s: %s", name, err);
    free(err);
}

/* jobs_done of render 1 from `status --json`, or -1 when the coordinator
 * does not answer (it may be down on purpose). */
static long s_jobs_done(const coord_t *c)
{
    char args[256], *out = NULL;
    snprintf(args, sizeof args, "status --farm %s --json", c->endpoint);
    long done = s_stemfarm(args, &out, NULL) == 0 ? s_number_after(out, "\"jobs_done\":") : -1;
    free(out);
    return done;
}

static void s_wait_at_least(const coord_t *c, long jobs, pid_t render)
{
    for (int i = 0; i < 1200 && s_jobs_done(c) < jobs; i++) {
        ck_assert_msg(tu_wait(render, 0) == -2, "the render ended before %ld jobs were done", jobs);
        tu_sleep_ms(100);
    }
}

/* The chaos test. Four nodes on a CURVE farm render a session of 1200 jobs (quarter-second segments)
 * with spot checks on; at moments drawn at random two nodes die by kill -9,
 * a fifth joins, the coordinator dies by kill -9 and is restarted, and a
 * node with a key that is not in the allowlist tries to join. The stems
 * must equal a clean render byte for byte and no job may land twice.
 * STEMFARM_CHAOS_SEED replays one draw (the seed is printed). */
START_TEST(test_chaos_nodes_and_the_coordinator_die_and_the_stems_are_still_right)
{
    char *ref = s_reference("0.25s");
    const char *seed_text = getenv("STEMFARM_CHAOS_SEED");
    unsigned seed = seed_text ? (unsigned)strtoul(seed_text, NULL, 10) : (unsigned)(tu_now_ms() ^ getpid());
    fprintf(stderr, "chaos: STEMFARM_CHAOS_SEED=%u\n", seed);
    srand(seed);
    /* four moments, in jobs done: node dies, node dies, coordinator dies, intruder knocks */
    long at[4];
    for (int i = 0; i < 4; i++)
        at[i] = 20 + rand() % 900;
    for (int i = 0; i < 3; i++) /* the kills in order; the intruder any time */
        for (int k = i + 1; k < 3; k++)
            if (at[k] < at[i]) {
                long t = at[i];
                at[i] = at[k];
                at[k] = t;
            }
    fprintf(stderr, "chaos: node dies at %ld, node dies at %ld, coordinator dies at %ld, intruder at %ld jobs\n", at[0],
            at[1], at[2], at[3]);

    char *keys = tu_path(s_dir, "keys");
    s_keygen(keys, "coordinator");
    s_keygen(keys, "farm");
    s_keygen(keys, "intruder");
    char *coord_key = tu_path(keys, "coordinator.key"), *coord_pub = tu_path(keys, "coordinator.pub");
    char *farm_key = tu_path(keys, "farm.key"), *farm_pub = tu_path(keys, "farm.pub");
    char *intruder_key = tu_path(keys, "intruder.key");
    setenv("STEMFARM_KEY", farm_key, 1); /* every node and client below, but the intruder */
    setenv("STEMFARM_SERVER_KEY", coord_pub, 1);
    setenv("STEMFARM_LOG", "debug", 1);
    char *const secure[] = {"--key", coord_key, "--allow", farm_pub, "--node-timeout", "2", "--spot-check", "10", NULL};
    coord_t c;
    s_coord_start(&c, NULL, secure);
    pid_t nodes[5];
    const char *names[5] = {"node-1", "node-2", "node-3", "node-4", "node-5"};
    for (int i = 0; i < 4; i++)
        nodes[i] = s_node_start(&c, names[i], "1");
    char *out_dir = tu_path(s_dir, "chaos");
    char render_log[4096];
    snprintf(render_log, sizeof render_log, "%s/render.log", s_dir);
    pid_t render = tu_spawn((char *const[]){(char *)tu_stemfarm_bin(), "render", s_session, "--farm", c.endpoint, "-o",
                                            out_dir, "--segment", "0.25s", "--json", NULL},
                            render_log);
    bool intruder_tried = false;
    pid_t intruder = -1;
    char intruder_log[4096];
    snprintf(intruder_log, sizeof intruder_log, "%s/intruder.log", s_dir);
    for (int step = 0; step < 3; step++) {
        if (!intruder_tried && at[3] <= at[step]) {
            s_wait_at_least(&c, at[3], render);
            intruder = tu_spawn((char *const[]){(char *)tu_node_bin(), "--connect", c.endpoint, "--threads", "1",
                                                "--name", "intruder", "--key", intruder_key, NULL},
                                intruder_log);
            intruder_tried = true;
        }
        s_wait_at_least(&c, at[step], render);
        if (step == 0) {
            tu_kill9(nodes[0]);
            nodes[4] = s_node_start(&c, names[4], "1");
        } else if (step == 1) {
            tu_kill9(nodes[1]);
        } else {
            tu_kill9(c.pid);
            tu_sleep_ms(rand() % 1000);
            coord_t again;
            s_coord_start(&again, c.endpoint, secure);
            c = again;
        }
    }
    if (!intruder_tried)
        intruder = tu_spawn((char *const[]){(char *)tu_node_bin(), "--connect", c.endpoint, "--threads", "1", "--name",
                                            "intruder", "--key", intruder_key, NULL},
                            intruder_log);
    int rc = tu_wait(render, 240000);
    char *log = tu_slurp(render_log, NULL);
    ck_assert_msg(rc == 0, "render exited %d (seed %u): %s", rc, seed, s_tail(log));
    free(log);
    int intruder_rc = tu_wait(intruder, 30000);
    char *ilog = tu_slurp(intruder_log, NULL);
    ck_assert_msg(intruder_rc == 3 && strstr(ilog, "refused this node's key"), "intruder exited %d: %s", intruder_rc,
                  ilog ? ilog : "");
    free(ilog);
    ck_assert_int_eq(tu_stop(c.pid), 0);
    for (int i = 2; i < 5; i++)
        ck_assert_int_eq(tu_stop(nodes[i]), 0);
    unsetenv("STEMFARM_LOG");
    unsetenv("STEMFARM_KEY");
    unsetenv("STEMFARM_SERVER_KEY");
    s_assert_same_audio(ref, out_dir);
    ck_assert_int_ge(s_landed_once(c.log, 1200), 1199); /* one may land in the journal as the kill hits */
    char *manifest_path = tu_path(out_dir, "manifest.json");
    char *manifest = tu_slurp(manifest_path, NULL);
    ck_assert_msg(manifest && strstr(manifest, "\"checked_by\""), "no spot check landed: %s",
                  manifest ? manifest : "no manifest");
    char *clog = tu_slurp(c.log, NULL);
    ck_assert_msg(!strstr(clog, "rendered differently"), "nodes of one build disagreed (seed %u)", seed);
    free(clog);
    free(manifest);
    free(manifest_path);
    free(out_dir);
    free(keys);
    free(coord_key);
    free(coord_pub);
    free(farm_key);
    free(farm_pub);
    free(intruder_key);
    free(ref);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("farm");
    TCase *tc = tcase_create("processes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_status_and_cancel_from_the_command_line);
    tcase_add_test(tc, test_the_coordinator_answers_while_it_delivers);
    tcase_add_test(tc, test_a_node_rejoins_a_restarted_coordinator);
    tcase_add_test(tc, test_a_killed_coordinator_resumes_without_rendering_a_landed_segment_again);
    tcase_add_test(tc, test_sigterm_drains_and_the_next_start_finishes_the_render);
    tcase_add_test(tc, test_a_second_coordinator_on_the_same_state_folder_is_refused);
    tcase_add_test(tc, test_two_renders_at_once_go_by_priority);
    tcase_add_test(tc, test_hostile_traffic_does_not_disturb_a_render);
    suite_add_tcase(s, tc);
    /* alone, 20 times: for i in $(seq 20); do CK_RUN_CASE=chaos ./test_farm || break; done */
    TCase *chaos = tcase_create("chaos");
    tcase_add_checked_fixture(chaos, setup, teardown);
    tcase_set_timeout(chaos, 400);
    tcase_add_test(chaos, test_chaos_nodes_and_the_coordinator_die_and_the_stems_are_still_right);
    suite_add_tcase(s, chaos);
    return tu_run_suite(s);
}
