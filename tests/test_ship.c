/* test_ship.c -- media shipped to nodes without shared storage, end to end:
 * a real `stemfarm coordinator` and `stemfarm-node --config` (media: ship)
 * processes on tcp 127.0.0.1. The node's media roots leave the session's
 * media folder out, so it can only render from what it fetched.
 *
 *   - the stems are byte-identical to the embedded render's; the cache
 *     holds every file the session reads (a source, one at another rate --
 *     its resampled copy -- and an impulse response) named by its SHA-256;
 *   - a new node process on the same cache fetches nothing;
 *   - a corrupted cache file is found, deleted and fetched again; a stale
 *     file is evicted to stay under the cap; a cap too small for the
 *     session fails the render with the reason;
 *   - a scripted node (a DEALER speaking the protocol) gets a precise
 *     FetchError for every fetch the coordinator does not serve, and the
 *     file's bytes for one it does;
 *   - a scripted coordinator (a ROUTER) ships bytes that do not match their
 *     SHA-256: the node keeps nothing and fails the job saying so;
 *   - bad media/cache config values: file:line:col and exit 2. */
/* realpath(3) is XSI. */
#define _XOPEN_SOURCE 700

#include "testutil.h"

#include "sf/alloc.h"
#include "sf/hash.h"
#include "sf/wire.h"

#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define RATE 48000

static char *s_dir; /* the temp folder (realpath) */

/* Processes a test started and has not reaped: a failing test must not
 * leave a coordinator behind (it would hold its port and state folder). */
static pid_t s_pids[8];
static size_t s_n_pids;

static pid_t s_spawn(char *const argv[], const char *log_path)
{
    ck_assert_uint_lt(s_n_pids, sizeof s_pids / sizeof *s_pids);
    return s_pids[s_n_pids++] = tu_spawn(argv, log_path);
}

/* pid is gone (reaped by tu_stop, tu_wait or tu_kill9) unless status
 * is tu_wait's -2: forget it. Returns status. */
static int s_reaped(pid_t pid, int status)
{
    for (size_t i = 0; i < s_n_pids && status != -2; i++)
        if (s_pids[i] == pid)
            s_pids[i] = s_pids[--s_n_pids];
    return status;
}

static double s_tone(int ch, int64_t i, void *ctx)
{
    double f = *(const double *)ctx;
    return 0.3 * tu_sine(f * (ch + 1), RATE, i) + 0.02 * tu_noise((uint64_t)f, i);
}

static double s_ir(int ch, int64_t i, void *ctx)
{
    (void)ch;
    (void)ctx;
    return i == 0 ? 0.9 : 0.3 * tu_noise(7, i) * (1.0 - (double)i / 2400.0);
}

static void setup(void)
{
    char *tmp = tu_tmpdir();
    char real[PATH_MAX];
    ck_assert_ptr_nonnull(realpath(tmp, real));
    free(tmp);
    s_dir = strdup(real);
    static const double f_kick = 55.0, f_keys = 261.6;
    free(tu_write_wav(s_dir, "A/media/drums/kick.wav", 1, RATE, 30011, 24, s_tone, (void *)&f_kick));
    /* at another rate: the coordinator resamples it and ships the copy */
    free(tu_write_wav(s_dir, "A/media/keys.wav", 2, 44100, 40000, 24, s_tone, (void *)&f_keys));
    free(tu_write_wav(s_dir, "A/media/ir.wav", 1, RATE, 2400, 24, s_ir, NULL));
    free(tu_write_text(s_dir, "other/readme.txt", "the only folder the node may read, besides its cache\n"));
    free(tu_write_text(s_dir, "studio/session.yaml",
                       "version: 1\nsession:\n  name: Shipped Mix\n  sample_rate: 48000\n  media_root: ../A/media\n"
                       "output:\n  format: wav\n  sample_format: pcm24\n"
                       "tracks:\n"
                       "  - name: Kick\n    source: drums/kick.wav\n    gain_db: -3\n    output: Room\n"
                       "  - name: Keys\n    clips:\n      - {source: keys.wav, at: 1000, offset: 77}\n"
                       "      - {source: keys.wav, at: 50000, length: 5000}\n    pan: -0.3\n"
                       "buses:\n  - name: Room\n    fx:\n      - convolve: {ir: ir.wav, mix: 0.5}\n"
                       "stems:\n  - name: Drums\n    tracks: [Kick]\n  - name: Music\n    tracks: [Keys]\n"));
}

static void teardown(void)
{
    while (s_n_pids)
        tu_kill9(s_pids[--s_n_pids]);
    tu_rm_rf(s_dir);
    free(s_dir);
}

static int s_stemfarm(const char *args, char **out, char **err)
{
    char cmd[8192 + PATH_MAX];
    snprintf(cmd, sizeof cmd, "'%s' %s", tu_stemfarm_bin(), args);
    return tu_run(cmd, out, err, 240);
}

/* A node config: media ship, roots the `other` folder only, the cache. */
static char *s_node_config(const char *name, const char *max_size)
{
    char yaml[PATH_MAX * 3];
    snprintf(yaml, sizeof yaml, "media_roots: [%s/other]\nmedia: ship\ncache:\n  dir: %s/cache\n  max_size: %s\n",
             s_dir, s_dir, max_size);
    return tu_write_text(s_dir, name, yaml);
}

/* A sanitizer build's children report there, and must not. */
static void s_assert_clean_log(const char *path)
{
    char *log = tu_slurp(path, NULL);
    ck_assert_msg(!strstr(log, "Sanitizer") && !strstr(log, "runtime error:"), "%s:\n%s", path, log);
    free(log);
}

typedef struct {
    int rc;
    char *err;      /* the client's stderr */
    char *node_log; /* the node's whole log */
} run_t;

/* Starts a coordinator and one node with `node_cfg`, submits the session
 * into dir/out_name, stops both. */
static run_t s_farm_render(const char *node_cfg, const char *out_name)
{
    char endpoint[64], args[8192];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", tu_free_port());
    char *coord_log = tu_path(s_dir, "coordinator.log"), *node_log = tu_path(s_dir, "node.log");
    unlink(node_log);
    char *state = tu_path(s_dir, "state"); /* journals of its own: no other coordinator's lock or renders */
    pid_t coord =
        s_spawn((char *const[]){(char *)tu_stemfarm_bin(), "coordinator", "--bind", endpoint, "--state", state, NULL},
                coord_log);
    free(state);
    pid_t node = s_spawn((char *const[]){(char *)tu_node_bin(), "--connect", endpoint, "--threads", "1", "--name",
                                         "ship-node", "--config", (char *)node_cfg, NULL},
                         node_log);
    char *session = tu_path(s_dir, "studio/session.yaml");
    snprintf(args, sizeof args, "render '%s' -o '%s/%s' --farm %s --segment 9000", session, s_dir, out_name, endpoint);
    run_t r = {0};
    r.rc = s_stemfarm(args, NULL, &r.err);
    ck_assert_int_eq(s_reaped(coord, tu_stop(coord)), 0);
    ck_assert_int_eq(s_reaped(node, tu_stop(node)), 0);
    r.node_log = tu_slurp(node_log, NULL);
    s_assert_clean_log(node_log);
    s_assert_clean_log(coord_log);
    free(session);
    free(coord_log);
    free(node_log);
    return r;
}

static void s_run_free(run_t *r)
{
    free(r->err);
    free(r->node_log);
}

static size_t s_count(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void s_assert_same_stems(const char *a, const char *b)
{
    static const char *const stems[] = {"Shipped Mix_Drums.wav", "Shipped Mix_Music.wav"};
    for (int s = 0; s < 2; s++) {
        char pa[PATH_MAX * 2], pb[PATH_MAX * 2];
        snprintf(pa, sizeof pa, "%s/%s/%s", s_dir, a, stems[s]);
        snprintf(pb, sizeof pb, "%s/%s/%s", s_dir, b, stems[s]);
        ck_assert_msg(tu_exists(pa) && tu_exists(pb), "%s or %s missing", pa, pb);
        ck_assert_msg(tu_files_equal(pa, pb), "%s and %s differ", pa, pb);
    }
}

/* The cache's files: each must be named by the SHA-256 of its bytes.
 * Returns how many there are. */
static size_t s_check_cache(void)
{
    char *dir = tu_path(s_dir, "cache");
    DIR *dp = opendir(dir);
    ck_assert_ptr_nonnull(dp);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.')
            continue;
        char path[PATH_MAX * 2], hex[65];
        uint8_t sha[32];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        ck_assert_int_eq(sf_hash_sha256_file(path, sha, NULL), SF_OK);
        sf_hash_hex(sha, 32, hex);
        ck_assert_msg(!strcmp(hex, de->d_name), "cache file %s holds bytes that hash to %s", de->d_name, hex);
        n++;
    }
    closedir(dp);
    free(dir);
    return n;
}

static char *s_cached_path_of(const char *media_file)
{
    char path[PATH_MAX * 2], hex[65];
    uint8_t sha[32];
    snprintf(path, sizeof path, "%s/%s", s_dir, media_file);
    ck_assert_int_eq(sf_hash_sha256_file(path, sha, NULL), SF_OK);
    sf_hash_hex(sha, 32, hex);
    snprintf(path, sizeof path, "%s/cache/%s", s_dir, hex);
    return strdup(path);
}

START_TEST(test_ship_renders_the_embedded_bytes_and_caches)
{
    char args[8192], *err = NULL;
    snprintf(args, sizeof args, "render '%s/studio/session.yaml' -o '%s/ref' --nodes 1 --segment 9000", s_dir, s_dir);
    ck_assert_msg(s_stemfarm(args, NULL, &err) == 0, "%s", err);
    free(err);
    char *cfg = s_node_config("node.yaml", "10M");

    /* first render: everything is fetched, verified, and the stems are the embedded bytes */
    run_t r = s_farm_render(cfg, "farm1");
    ck_assert_msg(r.rc == 0, "farm render exited %d: %s\nnode:\n%s", r.rc, r.err, r.node_log);
    s_assert_same_stems("ref", "farm1");
    ck_assert_msg(strstr(r.node_log, "3 media files, 0 in the cache, 3 to fetch"), "%s", r.node_log);
    ck_assert_uint_eq(s_count(r.node_log, "fetched media '"), 3);
    ck_assert_msg(strstr(r.node_log, "fetched media 'drums/kick.wav' ("), "%s", r.node_log);
    ck_assert_msg(strstr(r.node_log, "media fetched: 3 files"), "%s", r.node_log);
    s_run_free(&r);
    ck_assert_uint_eq(s_check_cache(), 3);
    char *kick = s_cached_path_of("A/media/drums/kick.wav"), *ir = s_cached_path_of("A/media/ir.wav");
    ck_assert_msg(tu_exists(kick) && tu_exists(ir), "%s or %s not cached", kick, ir);
    /* keys.wav is 44.1 kHz: what ships is the coordinator's resampled copy, not the file */
    char *keys = s_cached_path_of("A/media/keys.wav");
    ck_assert_msg(!tu_exists(keys), "the 44.1 kHz original was shipped");

    /* a new node process on the same cache fetches nothing */
    r = s_farm_render(cfg, "farm2");
    ck_assert_msg(r.rc == 0, "farm render exited %d: %s\nnode:\n%s", r.rc, r.err, r.node_log);
    s_assert_same_stems("ref", "farm2");
    ck_assert_msg(strstr(r.node_log, "3 media files, 3 in the cache, 0 to fetch (0 bytes)"), "%s", r.node_log);
    ck_assert_uint_eq(s_count(r.node_log, "fetched media '"), 0);
    ck_assert_msg(strstr(r.node_log, "media fetched: 0 files, 0 bytes"), "%s", r.node_log);
    s_run_free(&r);

    /* a cached file gone bad is deleted and fetched again; a stale file
     * that does not fit under the cap any more is evicted */
    FILE *f = fopen(kick, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, 1000, SEEK_SET);
    fputc(0x5a ^ fgetc(f), f);
    fclose(f);
    char stale[PATH_MAX];
    snprintf(stale, sizeof stale, "%s/cache/%064d", s_dir, 0);
    f = fopen(stale, "wb");
    ck_assert_ptr_nonnull(f);
    static char block[1 << 16];
    for (int i = 0; i < 160; i++) /* 10 MiB: the cap alone */
        fwrite(block, 1, sizeof block, f);
    fclose(f);
    r = s_farm_render(cfg, "farm3");
    ck_assert_msg(r.rc == 0, "farm render exited %d: %s\nnode:\n%s", r.rc, r.err, r.node_log);
    s_assert_same_stems("ref", "farm3");
    ck_assert_msg(strstr(r.node_log, "1 cached media files were bad and are fetched again: cached '"), "%s",
                  r.node_log);
    ck_assert_msg(strstr(r.node_log, "is corrupt (its bytes hash to "), "%s", r.node_log);
    ck_assert_msg(strstr(r.node_log, "3 media files, 2 in the cache, 1 to fetch"), "%s", r.node_log);
    ck_assert_uint_eq(s_count(r.node_log, "fetched media '"), 1);
    ck_assert_msg(strstr(r.node_log, "fetched media 'drums/kick.wav' ("), "%s", r.node_log);
    ck_assert_msg(strstr(r.node_log, "media cache: 1 least recently used files evicted"), "%s", r.node_log);
    s_run_free(&r);
    ck_assert_msg(!tu_exists(stale), "the stale file was not evicted");
    ck_assert_uint_eq(s_check_cache(), 3);

    free(kick);
    free(ir);
    free(keys);
    free(cfg);
}
END_TEST

START_TEST(test_ship_cache_too_small_fails_the_render)
{
    char *cfg = s_node_config("node.yaml", "4K");
    run_t r = s_farm_render(cfg, "out");
    ck_assert_msg(r.rc == 1, "exited %d: %s", r.rc, r.err);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "cannot fetch media 'drums/kick.wav': the media cache '%s/cache' cannot hold ", s_dir);
    ck_assert_msg(strstr(r.err, want), "stderr lacks \"%s\":\n%s", want, r.err);
    ck_assert_msg(strstr(r.err, "its cap is 4096 bytes"), "%s", r.err);
    s_run_free(&r);
    char *out = tu_path(s_dir, "out/Shipped Mix_Drums.wav");
    ck_assert_msg(!tu_exists(out), "a deliverable was written");
    free(out);
    free(cfg);
}
END_TEST

/* ---- a scripted node ------------------------------------------------------ */

static void s_send(void *sock, const sf_wire_msg_t *m)
{
    uint8_t *buf;
    size_t n;
    sf_err_t err = {0};
    ck_assert_msg(sf_wire_encode(m, &buf, &n, &err) == SF_OK, "%s", err.msg);
    ck_assert_int_eq(zmq_send(sock, buf, n, 0), (int)n);
    sf_free(buf);
}

/* The next message of `kind`, skipping heartbeats and jobs; fails after 20 s. */
static void s_expect(void *sock, sf_wire_kind_t kind, sf_wire_msg_t *m)
{
    int64_t until = tu_now_ms() + 20000;
    for (;;) {
        zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
        long left = (long)(until - tu_now_ms());
        ck_assert_msg(left > 0 && zmq_poll(&item, 1, left) == 1, "no %s within 20 s", sf_wire_kind_name(kind));
        zmq_msg_t zm;
        zmq_msg_init(&zm);
        ck_assert_int_ge(zmq_msg_recv(&zm, sock, 0), 0);
        sf_err_t err = {0};
        ck_assert_msg(sf_wire_decode(zmq_msg_data(&zm), zmq_msg_size(&zm), m, &err) == SF_OK, "%s", err.msg);
        zmq_msg_close(&zm);
        if (m->kind == kind)
            return;
        ck_assert_msg(m->kind == SF_WIRE_HEARTBEAT || m->kind == SF_WIRE_JOB, "got %s while waiting for %s",
                      sf_wire_kind_name(m->kind), sf_wire_kind_name(kind));
        sf_wire_msg_clear(m);
    }
}

static void *s_dealer(void *ctx, const char *endpoint, const char *name, bool ship)
{
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    ck_assert_int_eq(zmq_connect(sock, endpoint), 0);
    sf_wire_msg_t m = {.kind = SF_WIRE_HELLO};
    m.u.hello.node_name = name;
    m.u.hello.cores = m.u.hello.threads = m.u.hello.slots = 1;
    m.u.hello.simd = "scalar";
    m.u.hello.ship_media = ship;
    s_send(sock, &m);
    s_expect(sock, SF_WIRE_WELCOME, &m);
    sf_wire_msg_clear(&m);
    return sock;
}

/* Sends a Fetch and expects a FetchError containing `want`. */
static void s_fetch_refused(void *sock, const uint8_t *hash, uint32_t index, const uint8_t *sha, uint64_t offset,
                            const char *want)
{
    sf_wire_msg_t m = {.kind = SF_WIRE_FETCH};
    m.u.fetch.session_hash = hash;
    m.u.fetch.index = index;
    m.u.fetch.sha256 = sha;
    m.u.fetch.offset = offset;
    m.u.fetch.n_bytes = 1000;
    s_send(sock, &m);
    sf_wire_msg_t a;
    s_expect(sock, SF_WIRE_FETCH_ERROR, &a);
    ck_assert_msg(strstr(a.u.fetch_error.message, want), "got '%s', want '%s'", a.u.fetch_error.message, want);
    ck_assert_uint_eq(a.u.fetch_error.index, index);
    ck_assert_uint_eq(a.u.fetch_error.offset, offset);
    sf_wire_msg_clear(&a);
}

START_TEST(test_fetch_serves_only_what_is_being_rendered)
{
    char endpoint[64], args[8192];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", tu_free_port());
    char *coord_log = tu_path(s_dir, "coordinator.log");
    char *state = tu_path(s_dir, "state"); /* journals of its own: no other coordinator's lock or renders */
    pid_t coord =
        s_spawn((char *const[]){(char *)tu_stemfarm_bin(), "coordinator", "--bind", endpoint, "--state", state, NULL},
                coord_log);
    free(state);
    tu_sleep_ms(300);
    void *ctx = zmq_ctx_new();
    void *ship = s_dealer(ctx, endpoint, "scripted-ship", true);
    void *plain = s_dealer(ctx, endpoint, "scripted-plain", false);
    static const uint8_t unknown[32] = {0xde, 0xad};

    /* nothing is being rendered: nothing is served */
    s_fetch_refused(ship, unknown, 0, unknown, 0, "session dead00000000 is not being rendered here");
    s_fetch_refused(plain, unknown, 0, unknown, 0, "this node did not say it ships media (media: ship)");

    /* a render in flight: the ship node gets the session with its media list */
    sf_wire_msg_t m = {.kind = SF_WIRE_CREDIT};
    m.u.credit.n_jobs = 1;
    s_send(ship, &m);
    char *session = tu_path(s_dir, "studio/session.yaml");
    snprintf(args, sizeof args, "%s/out", s_dir);
    char *client_log = tu_path(s_dir, "client.log");
    pid_t client = s_spawn((char *const[]){(char *)tu_stemfarm_bin(), "render", session, "-o", args, "--farm", endpoint,
                                           "--segment", "9000", NULL},
                           client_log);
    sf_wire_msg_t sd;
    s_expect(ship, SF_WIRE_SESSION, &sd);
    ck_assert_uint_eq(sd.u.session.n_media, 3);
    const sf_wire_media_t *kick = NULL;
    for (size_t i = 0; i < sd.u.session.n_media; i++)
        if (!strcmp(sd.u.session.media[i].name, "drums/kick.wav"))
            kick = &sd.u.session.media[i];
    ck_assert_ptr_nonnull(kick);
    uint32_t k = (uint32_t)(kick - sd.u.session.media);
    char kick_path[PATH_MAX * 2];
    snprintf(kick_path, sizeof kick_path, "%s/A/media/drums/kick.wav", s_dir);
    size_t n_file;
    char *file = tu_slurp(kick_path, &n_file);
    uint8_t sha[32];
    sf_hash_sha256(file, n_file, sha);
    ck_assert_mem_eq(kick->sha256, sha, 32);
    ck_assert_uint_eq(kick->n_bytes, n_file);
    char hex[65];
    sf_hash_hex(sd.u.session.session_hash, 32, hex);
    hex[12] = '\0';
    char want[256];

    /* every fetch that names no file of the list is refused, saying why */
    s_fetch_refused(ship, sd.u.session.session_hash, 3, sha, 0,
                    "media index 3 out of range: the session reads 3 files");
    s_fetch_refused(ship, sd.u.session.session_hash, k, unknown, 0,
                    "('drums/kick.wav') has another sha256 than the one asked for");
    snprintf(want, sizeof want, "offset %zu is at or past the end of media %u (%zu bytes)", n_file, k, n_file);
    s_fetch_refused(ship, sd.u.session.session_hash, k, sha, n_file, want);
    snprintf(want, sizeof want, "session %s: media index 4095 out of range", hex);
    s_fetch_refused(ship, sd.u.session.session_hash, 4095, sha, 0, want);
    s_fetch_refused(plain, sd.u.session.session_hash, k, sha, 0, "this node did not say it ships media");

    /* and one that does gets the file's bytes, the tail short */
    m = (sf_wire_msg_t){.kind = SF_WIRE_FETCH};
    m.u.fetch.session_hash = sd.u.session.session_hash;
    m.u.fetch.index = k;
    m.u.fetch.sha256 = sha;
    m.u.fetch.offset = n_file - 100;
    m.u.fetch.n_bytes = 1000;
    s_send(ship, &m);
    sf_wire_msg_t data;
    s_expect(ship, SF_WIRE_FETCH_DATA, &data);
    ck_assert_uint_eq(data.u.fetch_data.offset, n_file - 100);
    ck_assert_uint_eq(data.u.fetch_data.n_bytes, 100);
    ck_assert_mem_eq(data.u.fetch_data.data, file + n_file - 100, 100);
    sf_wire_msg_clear(&data);

    /* a peer that never said hello is told to */
    void *stranger = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(stranger, ZMQ_LINGER, &linger, sizeof linger);
    ck_assert_int_eq(zmq_connect(stranger, endpoint), 0);
    m.u.fetch.offset = 0;
    s_send(stranger, &m);
    s_expect(stranger, SF_WIRE_RESET, &data);
    sf_wire_msg_clear(&data);
    sf_wire_msg_clear(&sd);

    /* hand the job back, so that the coordinator's drain need not wait for it */
    sf_wire_msg_t bye = {.kind = SF_WIRE_BYE};
    bye.u.bye.reason = "test over";
    s_send(ship, &bye);
    s_send(plain, &bye);
    tu_sleep_ms(200);
    tu_kill9(client);
    s_reaped(client, 0);
    zmq_close(stranger);
    zmq_close(ship);
    zmq_close(plain);
    zmq_ctx_term(ctx);
    ck_assert_int_eq(s_reaped(coord, tu_stop(coord)), 0);
    s_assert_clean_log(coord_log);
    char *log = tu_slurp(coord_log, NULL);
    ck_assert_msg(strstr(log, "node 'scripted-ship' joined: 1 cores, 1 threads, 1 slots, scalar, ships media"), "%s",
                  log);
    ck_assert_msg(strstr(log, "media files hashed, ready to ship"), "%s", log);
    free(log);
    free(file);
    free(session);
    free(client_log);
    free(coord_log);
}
END_TEST

/* ---- a scripted coordinator ------------------------------------------------ */

typedef struct {
    void *router;
    uint8_t id[256];
    size_t n_id;
} s_coord_t;

static void s_coord_expect(s_coord_t *c, sf_wire_kind_t kind, sf_wire_msg_t *m)
{
    int64_t until = tu_now_ms() + 20000;
    for (;;) {
        zmq_pollitem_t item = {.socket = c->router, .events = ZMQ_POLLIN};
        long left = (long)(until - tu_now_ms());
        ck_assert_msg(left > 0 && zmq_poll(&item, 1, left) == 1, "no %s within 20 s", sf_wire_kind_name(kind));
        int n = zmq_recv(c->router, c->id, sizeof c->id, 0);
        ck_assert_int_gt(n, 0);
        c->n_id = (size_t)n;
        zmq_msg_t zm;
        zmq_msg_init(&zm);
        ck_assert_int_ge(zmq_msg_recv(&zm, c->router, 0), 0);
        sf_err_t err = {0};
        ck_assert_msg(sf_wire_decode(zmq_msg_data(&zm), zmq_msg_size(&zm), m, &err) == SF_OK, "%s", err.msg);
        zmq_msg_close(&zm);
        if (m->kind == kind)
            return;
        ck_assert_msg(m->kind == SF_WIRE_HEARTBEAT || m->kind == SF_WIRE_CREDIT, "got %s while waiting for %s",
                      sf_wire_kind_name(m->kind), sf_wire_kind_name(kind));
        sf_wire_msg_clear(m);
    }
}

static void s_coord_send(s_coord_t *c, const sf_wire_msg_t *m)
{
    uint8_t *buf;
    size_t n;
    sf_err_t err = {0};
    ck_assert_msg(sf_wire_encode(m, &buf, &n, &err) == SF_OK, "%s", err.msg);
    ck_assert_int_eq(zmq_send(c->router, c->id, c->n_id, ZMQ_SNDMORE), (int)c->n_id);
    ck_assert_int_eq(zmq_send(c->router, buf, n, 0), (int)n);
    sf_free(buf);
}

/* Bytes that do not hash to what the session's list says: the node keeps
 * nothing of them and fails the job, naming the file and both hashes. */
START_TEST(test_node_refuses_media_that_arrive_corrupt)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", tu_free_port());
    void *ctx = zmq_ctx_new();
    s_coord_t c = {.router = zmq_socket(ctx, ZMQ_ROUTER)};
    int linger = 0;
    zmq_setsockopt(c.router, ZMQ_LINGER, &linger, sizeof linger);
    ck_assert_int_eq(zmq_bind(c.router, endpoint), 0);
    char *cfg = s_node_config("node.yaml", "10M");
    char *node_log = tu_path(s_dir, "node.log");
    pid_t node = s_spawn((char *const[]){(char *)tu_node_bin(), "--connect", endpoint, "--threads", "1", "--name",
                                         "ship-node", "--config", cfg, NULL},
                         node_log);
    sf_wire_msg_t m;
    s_coord_expect(&c, SF_WIRE_HELLO, &m);
    ck_assert(m.u.hello.ship_media);
    sf_wire_msg_clear(&m);
    m = (sf_wire_msg_t){.kind = SF_WIRE_WELCOME};
    m.u.welcome.node_id = 1;
    m.u.welcome.heartbeat_ms = 500;
    s_coord_send(&c, &m);

    size_t n_yaml, n_file;
    char *session = tu_path(s_dir, "studio/session.yaml"), *studio = tu_path(s_dir, "studio");
    char *yaml = tu_slurp(session, &n_yaml);
    char kick_path[PATH_MAX * 2];
    snprintf(kick_path, sizeof kick_path, "%s/A/media/drums/kick.wav", s_dir);
    char *file = tu_slurp(kick_path, &n_file);
    uint8_t hash[32], real[32], claimed[32];
    sf_hash_sha256(yaml, n_yaml, hash);
    sf_hash_sha256(file, n_file, real);
    memcpy(claimed, real, 32);
    claimed[31] ^= 1;
    sf_wire_media_t media = {"drums/kick.wav", claimed, n_file};
    m = (sf_wire_msg_t){.kind = SF_WIRE_SESSION};
    m.u.session.session_hash = hash;
    m.u.session.path = session;
    m.u.session.base_dir = studio;
    m.u.session.yaml = (const uint8_t *)yaml;
    m.u.session.n_yaml_bytes = n_yaml;
    m.u.session.media = &media;
    m.u.session.n_media = 1;
    s_coord_send(&c, &m);
    m = (sf_wire_msg_t){.kind = SF_WIRE_JOB};
    m.u.job.job_id = 7;
    m.u.job.session_hash = hash;
    m.u.job.n_frames = 100;
    s_coord_send(&c, &m);

    s_coord_expect(&c, SF_WIRE_FETCH, &m);
    ck_assert_uint_eq(m.u.fetch.index, 0);
    ck_assert_uint_eq(m.u.fetch.offset, 0);
    ck_assert_uint_eq(m.u.fetch.n_bytes, n_file); /* under 1 MiB: one chunk */
    ck_assert_mem_eq(m.u.fetch.sha256, claimed, 32);
    sf_wire_msg_clear(&m);
    m = (sf_wire_msg_t){.kind = SF_WIRE_FETCH_DATA};
    m.u.fetch_data.session_hash = hash;
    m.u.fetch_data.data = (const uint8_t *)file;
    m.u.fetch_data.n_bytes = n_file;
    s_coord_send(&c, &m);

    s_coord_expect(&c, SF_WIRE_JOB_ERROR, &m);
    ck_assert_uint_eq(m.u.job_error.job_id, 7);
    char want[512], real_hex[65], claimed_hex[65];
    sf_hash_hex(real, 32, real_hex);
    sf_hash_hex(claimed, 32, claimed_hex);
    snprintf(want, sizeof want, "media 'drums/kick.wav' arrived corrupt: its bytes hash to %s, not %s: deleted",
             real_hex, claimed_hex);
    ck_assert_msg(strstr(m.u.job_error.message, want), "got '%s', want '%s'", m.u.job_error.message, want);
    sf_wire_msg_clear(&m);
    char cached[PATH_MAX * 2];
    snprintf(cached, sizeof cached, "%s/cache/%s", s_dir, claimed_hex);
    ck_assert_msg(!tu_exists(cached), "corrupt bytes were kept as %s", cached);
    strcat(cached, ".part");
    ck_assert_msg(!tu_exists(cached), "corrupt bytes were kept as %s", cached);
    snprintf(cached, sizeof cached, "%s/cache/%s", s_dir, real_hex);
    ck_assert_msg(!tu_exists(cached), "corrupt bytes were kept as %s", cached);

    m = (sf_wire_msg_t){.kind = SF_WIRE_SHUTDOWN};
    m.u.shutdown.reason = "test over";
    s_coord_send(&c, &m);
    ck_assert_int_eq(s_reaped(node, tu_wait(node, 10000)), 0);
    s_assert_clean_log(node_log);
    zmq_close(c.router);
    zmq_ctx_term(ctx);
    free(yaml);
    free(file);
    free(session);
    free(studio);
    free(node_log);
    free(cfg);
}
END_TEST

START_TEST(test_bad_ship_config_exit_2)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"media: shipped\n", ":1:8: error: unknown media mode 'shipped' (expected shared or ship)"},
        {"media: ship\ncache: {dir: cache}\n",
         ":2:14: error: cache dir 'cache' is not an absolute POSIX path (expected /...)"},
        {"media: ship\ncache: {max_size: 20 GB}\n", ":2:19: error: cache max_size: invalid size '20 GB'"},
        {"media: ship\ncache: {dir: /tmp/x, ttl: 3}\n",
         ":2:22: error: unknown key 'ttl' in cache (expected dir, max_size)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *cfg = tu_write_text(s_dir, "bad.yaml", cases[i].yaml);
        char cmd[PATH_MAX * 2], *err = NULL;
        snprintf(cmd, sizeof cmd, "'%s' --connect tcp://127.0.0.1:1 --config '%s'", tu_node_bin(), cfg);
        ck_assert_int_eq(tu_run(cmd, NULL, &err, 60), 2);
        char want[PATH_MAX + 256];
        snprintf(want, sizeof want, "%s%s", cfg, cases[i].want);
        ck_assert_msg(strstr(err, want), "case %zu: stderr lacks \"%s\":\n%s", i, want, err);
        free(err);
        free(cfg);
    }
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("ship");
    TCase *tc = tcase_create("end_to_end");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_ship_renders_the_embedded_bytes_and_caches);
    tcase_add_test(tc, test_ship_cache_too_small_fails_the_render);
    tcase_add_test(tc, test_fetch_serves_only_what_is_being_rendered);
    tcase_add_test(tc, test_node_refuses_media_that_arrive_corrupt);
    tcase_add_test(tc, test_bad_ship_config_exit_2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(s_suite()); }
