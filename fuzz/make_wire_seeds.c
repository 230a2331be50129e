/* make_wire_seeds.c -- writes the seeds of the wire fuzzer's corpus.
 *
 *   make_wire_seeds DIR
 *
 * One file per message, NAME.bin, each a valid envelope from sf_wire_encode:
 * every kind at least once, and the values near the limits that the decoder
 * checks (largest channel count, negative start frames, UTF-8 and tabs in
 * text), so that the fuzzer starts from messages that pass every check and
 * mutates from there. scripts/fuzz runs it on every fuzz run, so the seeds
 * follow the encoder; fuzz/corpus/wire/ keeps a copy. A new message kind
 * wants an entry here.
 */
#include "sf/alloc.h"
#include "sf/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t s_hash[32] = {0x5e, 0xed, 1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,
                                   15,   16,   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30};

static const char s_yaml[] = "version: 1\n"
                             "session: {name: Seed, sample_rate: 48000}\n"
                             "tracks:\n"
                             "  - name: Kick\n"
                             "    source: kick.wav\n"
                             "stems:\n"
                             "  - name: Drums\n"
                             "    tracks: [Kick]\n";

static int s_write(const char *dir, const char *name, const sf_wire_msg_t *m)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    sf_err_t err = {0};
    if (sf_wire_encode(m, &buf, &n, &err) != SF_OK) {
        fprintf(stderr, "make_wire_seeds: %s: %s\n", name, err.msg);
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    FILE *f = fopen(path, "wb");
    int bad = !f || fwrite(buf, 1, n, f) != n;
    if (f && fclose(f) != 0)
        bad = 1;
    if (bad)
        fprintf(stderr, "make_wire_seeds: cannot write '%s'\n", path);
    sf_free(buf);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_wire_seeds DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    int bad = 0;
    sf_wire_msg_t m;

    m = (sf_wire_msg_t){.kind = SF_WIRE_HELLO};
    m.u.hello.node_name = "rack-07 \xc3\xa9";
    m.u.hello.cores = 64;
    m.u.hello.threads = 16;
    m.u.hello.slots = 4;
    m.u.hello.simd = "avx2";
    bad |= s_write(dir, "hello", &m);
    m.u.hello.ship_media = true;
    bad |= s_write(dir, "hello-ship", &m);

    m = (sf_wire_msg_t){.kind = SF_WIRE_WELCOME};
    m.u.welcome.node_id = 7;
    m.u.welcome.heartbeat_ms = 1000;
    m.u.welcome.max_message_bytes = SF_WIRE_MAX_MESSAGE_BYTES;
    bad |= s_write(dir, "welcome", &m);

    m = (sf_wire_msg_t){.kind = SF_WIRE_CREDIT};
    m.u.credit.n_jobs = 4;
    bad |= s_write(dir, "credit", &m);

    m = (sf_wire_msg_t){.kind = SF_WIRE_SESSION};
    m.u.session.session_hash = s_hash;
    m.u.session.path = "/shared/songs/night drive.yaml";
    m.u.session.yaml = (const uint8_t *)s_yaml;
    m.u.session.n_yaml_bytes = sizeof s_yaml - 1;
    bad |= s_write(dir, "session", &m);
    const sf_wire_media_t media[2] = {{.name = "kick.wav", .sha256 = s_hash, .n_bytes = 86400000},
                                      {.name = "IR/hall \xc3\xa9.wav", .sha256 = s_hash, .n_bytes = 1}};
    m.u.session.media = media;
    m.u.session.n_media = 2;
    bad |= s_write(dir, "session-media", &m);

    m = (sf_wire_msg_t){.kind = SF_WIRE_JOB};
    m.u.job.job_id = ((uint64_t)3 << 32) | 17;
    m.u.job.session_hash = s_hash;
    m.u.job.target_kind = 2;
    m.u.job.target_index = 5;
    m.u.job.start_frame = -48000;
    m.u.job.n_frames = 1440000;
    m.u.job.preroll_frames = 96000;
    m.u.job.attempt = 1;
    bad |= s_write(dir, "job", &m);

    /* 8 channels x 16 frames: the most channels, a few KB at most. */
    enum { CH = SF_WIRE_MAX_CHANNELS, FR = 16 };
    static float pcm[CH * FR];
    for (int i = 0; i < CH * FR; i++)
        pcm[i] = (float)((i * 37) % 64 - 32) / 32.0f;
    m = (sf_wire_msg_t){.kind = SF_WIRE_RESULT};
    m.u.result.job_id = 17;
    m.u.result.attempt = 1;
    m.u.result.n_channels = CH;
    m.u.result.n_frames = FR;
    m.u.result.pcm = pcm;
    m.u.result.n_pcm_bytes = sizeof pcm;
    m.u.result.xxh3 = 0x0123456789abcdefull;
    m.u.result.render_ns = 987654321;
    bad |= s_write(dir, "result", &m);
    m.u.result.n_channels = 1;
    m.u.result.n_frames = 3;
    m.u.result.n_pcm_bytes = 3 * sizeof(float);
    bad |= s_write(dir, "result-mono", &m);

    m = (sf_wire_msg_t){.kind = SF_WIRE_JOB_ERROR};
    m.u.job_error.job_id = 17;
    m.u.job_error.attempt = 2;
    m.u.job_error.message = "cannot open '/media/kick.wav': no such file\tor directory\nsecond line";
    bad |= s_write(dir, "job_error", &m);

    m = (sf_wire_msg_t){.kind = SF_WIRE_HEARTBEAT};
    m.u.heartbeat.jobs_running = 3;
    bad |= s_write(dir, "heartbeat", &m);
    const sf_wire_job_progress_t running[2] = {
        {.job_id = 17, .attempt = 1u << 16, .frames_done = 0, .frames_total = 480000},
        {.job_id = 18, .attempt = 3, .frames_done = 1000, .frames_total = 1000}};
    m.u.heartbeat.jobs = running;
    m.u.heartbeat.n_jobs = 2;
    bad |= s_write(dir, "heartbeat-progress", &m);

    m = (sf_wire_msg_t){.kind = SF_WIRE_BYE};
    m.u.bye.reason = "node stopping";
    bad |= s_write(dir, "bye", &m);

    m = (sf_wire_msg_t){.kind = SF_WIRE_SUBMIT};
    m.u.submit.session_path = "/shared/songs/night drive.yaml";
    m.u.submit.yaml = (const uint8_t *)s_yaml;
    m.u.submit.n_yaml_bytes = sizeof s_yaml - 1;
    m.u.submit.out_dir = "/shared/out";
    m.u.submit.segment_frames = 480000;
    m.u.submit.force = true;
    m.u.submit.profile = "ebu-r128";
    m.u.submit.priority = -SF_WIRE_MAX_PRIORITY;
    bad |= s_write(dir, "submit", &m);

    m = (sf_wire_msg_t){.kind = SF_WIRE_PROGRESS};
    m.u.progress.jobs_done = 3;
    m.u.progress.jobs_total = 10;
    m.u.progress.nodes = 2;
    m.u.progress.event = "node 'rack-07' joined";
    m.u.progress.render_id = 12;
    bad |= s_write(dir, "progress", &m);

    m = (sf_wire_msg_t){.kind = SF_WIRE_DONE};
    m.u.done.exit_code = 2;
    m.u.done.message = "a.yaml:3:5: error: unknown key 'gian'";
    m.u.done.manifest_path = "/shared/out/manifest.json";
    bad |= s_write(dir, "done", &m);

    m = (sf_wire_msg_t){.kind = SF_WIRE_SHUTDOWN};
    m.u.shutdown.reason = "coordinator stopping";
    bad |= s_write(dir, "shutdown", &m);

    m = (sf_wire_msg_t){.kind = SF_WIRE_CANCEL};
    m.u.cancel.render_id = 12;
    bad |= s_write(dir, "cancel", &m);

    m = (sf_wire_msg_t){.kind = SF_WIRE_STATUS_REQUEST};
    bad |= s_write(dir, "status_request", &m);

    const sf_wire_render_info_t renders[1] = {{.render_id = 12,
                                               .session_name = "Night Drive",
                                               .session_path = "/shared/songs/night drive.yaml",
                                               .priority = 50,
                                               .jobs_done = 3,
                                               .jobs_total = 10,
                                               .jobs_running = 2,
                                               .elapsed_ms = 81000}};
    const sf_wire_node_info_t nodes[2] = {
        {.name = "rack-07", .state = "busy", .slots = 4, .jobs_running = 2, .jobs_done = 40, .last_seen_ms = 120},
        {.name = "rack-08", .state = "quarantined", .slots = 1, .failures = 3, .last_seen_ms = 900}};
    m = (sf_wire_msg_t){.kind = SF_WIRE_STATUS};
    m.u.status.renders = renders;
    m.u.status.n_renders = 1;
    m.u.status.nodes = nodes;
    m.u.status.n_nodes = 2;
    m.u.status.draining = true;
    bad |= s_write(dir, "status", &m);

    m = (sf_wire_msg_t){.kind = SF_WIRE_RESET};
    m.u.reset.reason = "coordinator restarted: say hello again";
    bad |= s_write(dir, "reset", &m);

    m = (sf_wire_msg_t){.kind = SF_WIRE_FETCH};
    m.u.fetch.session_hash = s_hash;
    m.u.fetch.index = 1;
    m.u.fetch.sha256 = s_hash;
    m.u.fetch.offset = 3u << 20;
    m.u.fetch.n_bytes = SF_WIRE_MAX_FETCH_BYTES;
    bad |= s_write(dir, "fetch", &m);

    static const uint8_t chunk[64] = {'R', 'I', 'F', 'F', 0x24, 0, 0, 0, 'W', 'A', 'V', 'E'};
    m = (sf_wire_msg_t){.kind = SF_WIRE_FETCH_DATA};
    m.u.fetch_data.session_hash = s_hash;
    m.u.fetch_data.index = 0;
    m.u.fetch_data.offset = 0;
    m.u.fetch_data.data = chunk;
    m.u.fetch_data.n_bytes = sizeof chunk;
    bad |= s_write(dir, "fetch_data", &m);

    m = (sf_wire_msg_t){.kind = SF_WIRE_FETCH_ERROR};
    m.u.fetch_error.session_hash = s_hash;
    m.u.fetch_error.index = 4095;
    m.u.fetch_error.offset = 1;
    m.u.fetch_error.message = "no media 4095 in render of this session (it has 2)";
    bad |= s_write(dir, "fetch_error", &m);

    return bad ? 1 : 0;
}
