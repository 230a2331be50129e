/* simnodes.c -- many render nodes that do not render: what one coordinator
 * sustains on its own (bench/coordinator.sh).
 *
 *   stemfarm-simnodes --connect tcp://127.0.0.1:PORT [--nodes 64]
 *
 * Each simulated node is a DEALER that speaks the real protocol (hello,
 * credit, heartbeats) and answers every job at once with a segment of
 * silence of the right shape and its xxh3, so the coordinator does all of
 * its work (leases, checks, journal, stitching, files) and the nodes none.
 * Runs until the coordinator says Shutdown or SIGINT.
 */
#include "sf/alloc.h"
#include "sf/hash.h"
#include "sf/session.h"
#include "sf/wire.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define MAX_NODES    1024
#define MAX_SESSIONS 16

typedef struct {
    uint8_t hash[32];
    int channels[4][256]; /* per target kind and index, when known */
} s_session_t;

static volatile sig_atomic_t s_stop;
static void s_on_signal(int sig) { (void)sig, s_stop = 1; }

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_send(void *sock, const sf_wire_msg_t *m)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    sf_err_t err = {0};
    if (sf_wire_encode(m, &buf, &n, &err) != SF_OK) {
        fprintf(stderr, "stemfarm-simnodes: %s\n", err.msg);
        exit(1);
    }
    zmq_send(sock, buf, n, 0);
    sf_free(buf);
}

int main(int argc, char **argv)
{
    const char *endpoint = NULL;
    int n_nodes = 64;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--connect") && i + 1 < argc)
            endpoint = argv[++i];
        else if (!strcmp(argv[i], "--nodes") && i + 1 < argc)
            n_nodes = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: stemfarm-simnodes --connect ENDPOINT [--nodes N]\n");
            return 2;
        }
    }
    if (!endpoint || n_nodes < 1 || n_nodes > MAX_NODES) {
        fprintf(stderr, "usage: stemfarm-simnodes --connect ENDPOINT [--nodes 1..%d]\n", MAX_NODES);
        return 2;
    }
    signal(SIGINT, s_on_signal);
    signal(SIGTERM, s_on_signal);
    void *ctx = zmq_ctx_new();
    void **socks = calloc((size_t)n_nodes, sizeof *socks);
    zmq_pollitem_t *items = calloc((size_t)n_nodes, sizeof *items);
    static s_session_t sessions[MAX_SESSIONS];
    size_t n_sessions = 0;
    for (int i = 0; i < n_nodes; i++) {
        socks[i] = zmq_socket(ctx, ZMQ_DEALER);
        int64_t max = (int64_t)SF_WIRE_MAX_MESSAGE_BYTES;
        int linger = 0, hwm = 0;
        zmq_setsockopt(socks[i], ZMQ_MAXMSGSIZE, &max, sizeof max);
        zmq_setsockopt(socks[i], ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(socks[i], ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_connect(socks[i], endpoint);
        items[i] = (zmq_pollitem_t){.socket = socks[i], .events = ZMQ_POLLIN};
        char name[32];
        snprintf(name, sizeof name, "sim-%03d", i + 1);
        sf_wire_msg_t m = {.kind = SF_WIRE_HELLO};
        m.u.hello.node_name = name;
        m.u.hello.cores = m.u.hello.threads = m.u.hello.slots = 1;
        m.u.hello.simd = "scalar";
        s_send(socks[i], &m);
    }
    float *silence = NULL;
    size_t silence_floats = 0;
    uint64_t answered = 0;
    int64_t next_beat = s_now_ms() + 500;
    int running = 1;
    while (running && !s_stop) {
        if (zmq_poll(items, n_nodes, 100) < 0)
            break;
        for (int i = 0; i < n_nodes && running; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            for (;;) {
                zmq_msg_t msg;
                zmq_msg_init(&msg);
                if (zmq_msg_recv(&msg, socks[i], ZMQ_DONTWAIT) < 0) {
                    zmq_msg_close(&msg);
                    break;
                }
                sf_wire_msg_t m;
                sf_err_t err = {0};
                sf_rc rc = sf_wire_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &m, &err);
                zmq_msg_close(&msg);
                if (rc)
                    continue;
                sf_wire_msg_t out = {0};
                switch (m.kind) {
                case SF_WIRE_WELCOME:
                case SF_WIRE_RESET:
                    if (m.kind == SF_WIRE_RESET) {
                        out.kind = SF_WIRE_HELLO;
                        char name[32];
                        snprintf(name, sizeof name, "sim-%03d", i + 1);
                        out.u.hello.node_name = name;
                        out.u.hello.cores = out.u.hello.threads = out.u.hello.slots = 1;
                        out.u.hello.simd = "scalar";
                        s_send(socks[i], &out);
                        break;
                    }
                    out.kind = SF_WIRE_CREDIT;
                    out.u.credit.n_jobs = 1;
                    s_send(socks[i], &out);
                    break;
                case SF_WIRE_SESSION: {
                    size_t k = 0;
                    while (k < n_sessions && memcmp(sessions[k].hash, m.u.session.session_hash, 32))
                        k++;
                    if (k == n_sessions && n_sessions < MAX_SESSIONS) {
                        sf_session_load_opts_t opts = sf_session_load_opts_default();
                        opts.check_sources = false;
                        sf_session_t *s = NULL;
                        if (sf_session_load_text(m.u.session.path, (const char *)m.u.session.yaml,
                                                 m.u.session.n_yaml_bytes, &opts, &s, NULL, NULL) == SF_OK) {
                            memcpy(sessions[k].hash, m.u.session.session_hash, 32);
                            for (int kind = 0; kind < 4; kind++)
                                for (size_t t = 0; t < sf_session_target_count(s, (sf_target_kind_t)kind) && t < 256;
                                     t++)
                                    sessions[k].channels[kind][t] = sf_session_target_channels(
                                        s, (sf_target_t){(sf_target_kind_t)kind, (uint32_t)t});
                            n_sessions++;
                        }
                        sf_session_destroy(&s);
                    }
                    break;
                }
                case SF_WIRE_JOB: {
                    size_t k = 0;
                    while (k < n_sessions && memcmp(sessions[k].hash, m.u.job.session_hash, 32))
                        k++;
                    int channels = k < n_sessions && m.u.job.target_kind < 4 && m.u.job.target_index < 256
                                       ? sessions[k].channels[m.u.job.target_kind][m.u.job.target_index]
                                       : 0;
                    if (channels <= 0) {
                        out.kind = SF_WIRE_JOB_ERROR;
                        out.u.job_error.job_id = m.u.job.job_id;
                        out.u.job_error.attempt = m.u.job.attempt;
                        out.u.job_error.message = "simulated node: unknown session or target";
                        s_send(socks[i], &out);
                    } else {
                        size_t floats = (size_t)channels * (size_t)m.u.job.n_frames;
                        if (floats > silence_floats) {
                            sf_free(silence);
                            silence = sf_aligned_alloc(floats * sizeof(float));
                            memset(silence, 0, floats * sizeof(float));
                            silence_floats = floats;
                        }
                        out.kind = SF_WIRE_RESULT;
                        out.u.result.job_id = m.u.job.job_id;
                        out.u.result.attempt = m.u.job.attempt;
                        out.u.result.n_channels = (uint32_t)channels;
                        out.u.result.n_frames = m.u.job.n_frames;
                        out.u.result.pcm = silence;
                        out.u.result.n_pcm_bytes = floats * sizeof(float);
                        out.u.result.xxh3 = sf_hash_xxh3(silence, floats * sizeof(float));
                        out.u.result.render_ns = 1;
                        s_send(socks[i], &out);
                        answered++;
                    }
                    sf_wire_msg_t credit = {.kind = SF_WIRE_CREDIT};
                    credit.u.credit.n_jobs = 1;
                    s_send(socks[i], &credit);
                    break;
                }
                case SF_WIRE_SHUTDOWN: running = 0; break;
                default: break;
                }
                sf_wire_msg_clear(&m);
            }
        }
        if (s_now_ms() >= next_beat) {
            sf_wire_msg_t hb = {.kind = SF_WIRE_HEARTBEAT};
            for (int i = 0; i < n_nodes; i++)
                s_send(socks[i], &hb);
            next_beat = s_now_ms() + 500;
        }
    }
    fprintf(stderr, "stemfarm-simnodes: %d nodes answered %llu jobs\n", n_nodes, (unsigned long long)answered);
    for (int i = 0; i < n_nodes; i++)
        zmq_close(socks[i]);
    zmq_ctx_term(ctx);
    sf_free(silence);
    free(socks);
    free(items);
    return 0;
}
