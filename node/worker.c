/* worker.c -- a render node: one DEALER, a pool of render threads.
 *
 * The thread that calls worker_run owns the socket and everything mutable:
 * the session cache, the counters, the task lists' contents once handed
 * back. It polls the socket and a pipe; render threads take tasks from a
 * mutex-protected FIFO, run them (render a job, or load a session: loading
 * opens every source and may be slow on shared storage, so it must not stall
 * the heartbeat), encode the Result themselves, and hand the task back on a
 * second list, writing one byte to the pipe to wake the poll.
 *
 * Protocol, node side:
 *   -> Hello; <- Welcome; -> Credit(slots)
 *   <- SessionData: cached by hash, the last SF_WIRE_NODE_SESSIONS received
 *   media: ship -- SessionData lists the session's files: the cached ones are
 *     hashed again (a render thread), then each missing file is fetched in
 *     turn, -> Fetch (S_FETCH_WINDOW chunks ahead) <- FetchData | FetchError,
 *     from this loop between other messages, so heartbeats never wait; the
 *     session loads once every file is in the cache (node/cache.h)
 *   <- Job: -> Result or JobError, then Credit(1), for every job received
 *   <-> Heartbeat every welcome.heartbeat_ms; any message counts as life
 *   <- Shutdown: return 0, finish nothing further
 *   *stop: -> Bye, return 0;  coordinator silent past the timeout: return 3.
 *
 * Invariants: a session in the cache is freed only when no task refers to it
 * (entry->refs == 0; a shipped session's held load counts); render threads
 * see only the immutable sf_session_t and, while a verify or load task is
 * out, an entry's media list, which the main thread then leaves alone; at
 * most one file is fetched at a time (w->fetching).
 */
#include "worker.h"

#include "cache.h"

#include "sf/clock.h"
#include "sf/alloc.h"
#include "sf/hash.h"
#include "sf/log.h"
#include "sf/render.h"
#include "sf/secure.h"
#include "sf/session.h"
#include "sf/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_DEFAULT_TIMEOUT_MS 30000
#define S_STOP_POLL_MS       100   /* how often *stop is looked at */
#define S_LINGER_MS          200   /* time to flush a Bye at close */
#define S_SEND_TIMEOUT_MS    10000 /* a send blocked this long is dropped */
#define S_RECV_BATCH         64    /* messages handled per poll round */
#define S_RESULT_OVERHEAD    256   /* envelope bytes around the pcm, generous */
#define S_HELLO_AGAIN_MS     2000  /* Hello again while no Welcome came */
#define S_FETCH_WINDOW       4     /* Fetch chunks asked for ahead of the data written */

/* ---- tasks and the session cache -------------------------------------- */

typedef enum { S_ENTRY_LOADING, S_ENTRY_READY, S_ENTRY_FAILED } s_entry_state_t;

typedef struct s_task s_task_t;

/* A file of a session whose media are shipped (SessionData.media). */
typedef struct {
    char *name; /* owned: as written in the session */
    uint8_t sha256[32];
    uint64_t n_bytes;
    bool cached; /* in the cache, verified or fetched */
} s_media_t;

/* Where a shipped session is before it loads: its cached files are
 * verified (a render thread), then the missing ones fetched (main thread),
 * then it loads like any session. */
typedef enum { S_SHIP_NONE, S_SHIP_VERIFY, S_SHIP_FETCH, S_SHIP_DONE } s_ship_phase_t;

typedef struct {
    uint8_t hash[32];
    s_entry_state_t state;
    sf_session_t *session;          /* READY */
    char *error;                    /* FAILED: the message every job gets */
    int refs;                       /* tasks queued or running that use it */
    uint64_t received;              /* tick of its last SessionData: eviction order */
    s_task_t *parked, *parked_tail; /* jobs waiting for a LOADING session */
    /* media: ship */
    s_media_t *media; /* owned, n_media: what the session reads */
    size_t n_media;
    s_ship_phase_t phase;
    size_t fetch_at; /* S_SHIP_FETCH: media before it are cached */
    s_task_t *load;  /* the load, held (with its ref) until the media are in */
} s_entry_t;

typedef enum { S_TASK_LOAD, S_TASK_JOB, S_TASK_VERIFY } s_task_kind_t;

struct s_task {
    s_task_t *next;
    s_task_kind_t kind;
    s_entry_t *entry; /* main thread only */
    /* job input */
    const sf_session_t *session; /* read-only in the render thread */
    uint64_t job_id;
    uint32_t attempt;
    sf_target_t target;
    int64_t start_frame;
    uint64_t n_frames, preroll_frames;
    uint64_t max_message_bytes;
    uint32_t era;                  /* the worker's era when the job came (see s_worker_t) */
    atomic_int_least64_t progress; /* frames rendered so far, written by the render thread */
    /* load input */
    char *path;
    char *base_dir;              /* the coordinator's, the hash input ("" when not sent) */
    const sf_pathmap_t *pathmap; /* the node's config, shared read-only */
    char *yaml;
    size_t n_yaml_bytes;
    /* load and verify of shipped media: the entry's list (read-only while
     * the task is out) and the cache folder */
    const s_media_t *media;
    size_t n_media;
    const char *cache_dir;
    bool *verified; /* verify output, n_media (owned) */
    size_t n_corrupt;
    /* output */
    sf_rc rc;
    char msg[SF_WIRE_MAX_TEXT + 1]; /* error message when rc != 0 */
    sf_session_t *loaded;           /* load: the session, owned until taken */
    uint8_t *packed;                /* job: the encoded Result, sf_free */
    size_t n_packed;
    uint32_t n_channels;
    uint64_t render_ns;
};

typedef struct {
    s_task_t *head, *tail;
} s_list_t;

static void s_list_push(s_list_t *l, s_task_t *t)
{
    t->next = NULL;
    if (l->tail)
        l->tail->next = t;
    else
        l->head = t;
    l->tail = t;
}

static s_task_t *s_list_pop(s_list_t *l)
{
    s_task_t *t = l->head;
    if (t) {
        l->head = t->next;
        if (!l->head)
            l->tail = NULL;
        t->next = NULL;
    }
    return t;
}

static void s_task_free(s_task_t *t)
{
    if (!t)
        return;
    sf_free(t->path);
    sf_free(t->base_dir);
    sf_free(t->yaml);
    sf_free(t->verified);
    sf_session_destroy(&t->loaded);
    sf_free(t->packed);
    sf_free(t);
}

/* ---- the render pool ---------------------------------------------------- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    s_list_t todo; /* main -> render threads */
    s_list_t done; /* render threads -> main */
    int quit;
    int inited;  /* mutex and condition variable exist */
    int wake[2]; /* pipe: read end polled by main */
    int omp_threads;
    pthread_t *threads;
    int n_threads; /* started */
} s_pool_t;

static void s_task_fail(s_task_t *t, sf_rc rc, const char *msg)
{
    t->rc = rc ? rc : SF_E_INTERNAL;
    snprintf(t->msg, sizeof t->msg, "%s", msg && *msg ? msg : sf_rc_name(t->rc));
}

/* A shipped session's sources: the cached file of the name's hash. */
static sf_rc s_media_lookup(void *ctx, const char *name, char **path, sf_err_t *err)
{
    const s_task_t *t = ctx;
    for (size_t i = 0; i < t->n_media; i++) {
        if (strcmp(t->media[i].name, name) != 0)
            continue;
        char buf[PATH_MAX];
        cache_path(t->cache_dir, t->media[i].sha256, buf, sizeof buf);
        if (!(*path = sf_strdup(buf)))
            return SF_ERR(err, SF_E_NOMEM, "out of memory");
        return SF_OK;
    }
    return SF_ERR(err, SF_E_INPUT, "the coordinator did not ship it (it is not among the session's media)");
}

static void s_run_load(s_task_t *t)
{
    sf_session_load_opts_t opts = sf_session_load_opts_default();
    opts.check_sources = true;
    /* Where this node mounts the media may differ from the coordinator's
     * view; the session's identity (its hash) stays the coordinator's. */
    opts.pathmap = t->pathmap;
    opts.hash_base_dir = t->base_dir[0] ? t->base_dir : NULL;
    if (t->cache_dir) {
        /* Shipped: every file comes from the cache, which is this node's
         * only media root (t->pathmap); the session's folder exists only
         * on the coordinator. Shipped files are at the session rate. */
        opts.media_lookup = s_media_lookup;
        opts.media_lookup_ctx = t;
        opts.base_dir = t->base_dir[0] ? t->base_dir : "/";
        opts.resample = false;
    }
    sf_diags_t diags = SF_DIAGS_INIT;
    sf_err_t err = {0};
    sf_rc rc = sf_session_load_text(t->path, t->yaml, t->n_yaml_bytes, &opts, &t->loaded, &diags, &err);
    if (rc == SF_OK && t->loaded) {
        t->rc = SF_OK;
    } else {
        /* The first problem as the compiler would print it, and how many more. */
        const sf_diag_t *first = NULL;
        for (size_t i = 0; i < diags.n_items && !first; i++)
            if (diags.items[i].severity == SF_DIAG_ERROR)
                first = &diags.items[i];
        char line[SF_WIRE_MAX_TEXT + 1];
        if (first && first->line)
            snprintf(line, sizeof line, "%s:%u:%u: %s", first->file, first->line, first->col, first->msg);
        else if (first)
            snprintf(line, sizeof line, "%s: %s", first->file, first->msg);
        else
            snprintf(line, sizeof line, "%s", err.msg[0] ? err.msg : sf_rc_name(rc));
        if (first && diags.n_errors > 1) {
            size_t n = strlen(line);
            snprintf(line + n, sizeof line - n, " (and %zu more errors)", diags.n_errors - 1);
        }
        sf_session_destroy(&t->loaded);
        s_task_fail(t, rc ? rc : SF_E_INTERNAL, line);
    }
    sf_diags_free(&diags);
}

static void s_run_job(s_task_t *t)
{
    const sf_session_t *s = t->session;
    size_t n_targets = sf_session_target_count(s, t->target.kind);
    if (t->target.index >= n_targets) {
        char line[256];
        static const char *const kinds[][2] = {
            {"stem", "stems"}, {"mix", "mixes"}, {"track", "tracks"}, {"full mix", "full mixes"}};
        unsigned k = (unsigned)t->target.kind < 4 ? (unsigned)t->target.kind : 0;
        snprintf(line, sizeof line, "%s index %" PRIu32 " out of range: the session has %zu %s", kinds[k][0],
                 t->target.index, n_targets, kinds[k][1]);
        s_task_fail(t, SF_E_INPUT, line);
        return;
    }
    int n_channels = sf_session_target_channels(s, t->target);
    if (n_channels < 1 || n_channels > SF_WIRE_MAX_CHANNELS) {
        s_task_fail(t, SF_E_INTERNAL, "stem has an unsupported channel count");
        return;
    }
    uint64_t n_pcm_bytes = (uint64_t)n_channels * t->n_frames * sizeof(float);
    if (n_pcm_bytes + S_RESULT_OVERHEAD > t->max_message_bytes) {
        char line[256];
        snprintf(line, sizeof line,
                 "result of %" PRIu64 " bytes would exceed the message limit of %" PRIu64
                 " bytes: plan shorter segments",
                 n_pcm_bytes, t->max_message_bytes);
        s_task_fail(t, SF_E_INPUT, line);
        return;
    }
    float *pcm = sf_aligned_alloc((size_t)n_pcm_bytes);
    if (!pcm) {
        s_task_fail(t, SF_E_NOMEM, "out of memory for the rendered frames");
        return;
    }
    float *out[SF_WIRE_MAX_CHANNELS];
    for (int c = 0; c < n_channels; c++)
        out[c] = pcm + (size_t)c * t->n_frames;
    sf_err_t err = {0};
    uint64_t t0 = (uint64_t)sf_clock_ns();
    sf_rc rc = sf_render_progress(s, t->target, t->start_frame, (int64_t)t->n_frames, (int64_t)t->preroll_frames, out,
                                  &t->progress, &err);
    t->render_ns = (uint64_t)sf_clock_ns() - t0;
    t->n_channels = (uint32_t)n_channels;
    if (rc) {
        s_task_fail(t, rc, err.msg);
        goto done;
    }
    sf_wire_msg_t m = {.kind = SF_WIRE_RESULT};
    m.u.result.job_id = t->job_id;
    m.u.result.attempt = t->attempt;
    m.u.result.n_channels = (uint32_t)n_channels;
    m.u.result.n_frames = t->n_frames;
    m.u.result.pcm = pcm;
    m.u.result.n_pcm_bytes = (size_t)n_pcm_bytes;
    m.u.result.xxh3 = sf_hash_xxh3(pcm, (size_t)n_pcm_bytes);
    m.u.result.render_ns = t->render_ns;
    rc = sf_wire_encode(&m, &t->packed, &t->n_packed, &err);
    if (rc)
        s_task_fail(t, rc, err.msg);
    else
        t->rc = SF_OK;
done:
    sf_free(pcm);
}

/* Hashes every cached file of a shipped session again: a file that went
 * bad on disk is deleted here and fetched again, never rendered from. */
static void s_run_verify(s_task_t *t)
{
    t->rc = SF_OK;
    for (size_t i = 0; i < t->n_media; i++) {
        sf_err_t err = {0};
        sf_rc rc = cache_verify(t->cache_dir, t->media[i].sha256, t->media[i].n_bytes, &err);
        t->verified[i] = rc == SF_OK;
        if (rc == SF_E_IO) {
            if (!t->n_corrupt++)
                snprintf(t->msg, sizeof t->msg, "%s", err.msg);
        }
    }
}

static void *s_render_thread(void *arg)
{
    s_pool_t *pool = arg;
    omp_set_num_threads(pool->omp_threads);
    for (;;) {
        pthread_mutex_lock(&pool->mu);
        while (!pool->quit && !pool->todo.head)
            pthread_cond_wait(&pool->cv, &pool->mu);
        s_task_t *t = pool->quit ? NULL : s_list_pop(&pool->todo);
        pthread_mutex_unlock(&pool->mu);
        if (!t)
            break;
        if (t->kind == S_TASK_LOAD)
            s_run_load(t);
        else if (t->kind == S_TASK_VERIFY)
            s_run_verify(t);
        else
            s_run_job(t);
        pthread_mutex_lock(&pool->mu);
        s_list_push(&pool->done, t);
        pthread_mutex_unlock(&pool->mu);
        /* Non-blocking: if the pipe is full, main has wake-ups pending anyway. */
        ssize_t ignored = write(pool->wake[1], "x", 1);
        (void)ignored;
    }
    return NULL;
}

static int s_pool_start(s_pool_t *pool, int n_threads, int omp_threads)
{
    memset(pool, 0, sizeof *pool);
    pool->wake[0] = pool->wake[1] = -1;
    pool->omp_threads = omp_threads;
    if (pthread_mutex_init(&pool->mu, NULL))
        return -1;
    if (pthread_cond_init(&pool->cv, NULL)) {
        pthread_mutex_destroy(&pool->mu);
        return -1;
    }
    pool->inited = 1;
    if (pipe(pool->wake))
        return -1;
    for (int i = 0; i < 2; i++) {
        int flags = fcntl(pool->wake[i], F_GETFL);
        fcntl(pool->wake[i], F_SETFL, flags | O_NONBLOCK);
        fcntl(pool->wake[i], F_SETFD, FD_CLOEXEC);
    }
    pool->threads = sf_calloc((size_t)n_threads, sizeof *pool->threads);
    if (!pool->threads)
        return -1;
    for (int i = 0; i < n_threads; i++) {
        if (pthread_create(&pool->threads[i], NULL, s_render_thread, pool))
            return -1;
        pool->n_threads++;
    }
    return 0;
}

/* Stops the threads after their current task and frees every task left. */
static void s_pool_stop(s_pool_t *pool)
{
    if (!pool->inited)
        return;
    pthread_mutex_lock(&pool->mu);
    pool->quit = 1;
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 0; i < pool->n_threads; i++)
        pthread_join(pool->threads[i], NULL);
    sf_free(pool->threads);
    s_task_t *t;
    while ((t = s_list_pop(&pool->todo)))
        s_task_free(t);
    while ((t = s_list_pop(&pool->done)))
        s_task_free(t);
    for (int i = 0; i < 2; i++)
        if (pool->wake[i] >= 0)
            close(pool->wake[i]);
    pthread_cond_destroy(&pool->cv);
    pthread_mutex_destroy(&pool->mu);
}

static void s_pool_submit(s_pool_t *pool, s_task_t *t)
{
    pthread_mutex_lock(&pool->mu);
    s_list_push(&pool->todo, t);
    pthread_cond_signal(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
}

/* ---- the worker ---------------------------------------------------------- */

typedef struct {
    const worker_config_t *cfg;
    char name[SF_WIRE_MAX_NAME + 1];
    char component[SF_WIRE_MAX_NAME + 8]; /* "node[NAME]" */
    const char *endpoint;
    void *sock;
    int slots, omp_threads, cores;
    int timeout_ms;
    /* from the Welcome */
    int welcomed;
    uint32_t node_id;
    uint32_t heartbeat_ms;
    uint64_t max_message_bytes;
    /* accounting */
    int jobs_running; /* jobs received and not yet answered (of any era) */
    /* A Reset (the coordinator restarted) starts a new era: jobs of older
     * eras are finished but not answered, since the new coordinator never
     * sent them; their slots come back as credit. */
    uint32_t era;
    s_task_t **held; /* jobs received and not yet answered, for heartbeats */
    size_t n_held, cap_held;
    int64_t hello_ms; /* when the last Hello went out */
    int64_t credit;   /* granted minus jobs received */
    uint64_t jobs_done, jobs_failed;
    /* the session cache */
    s_entry_t **entries;
    size_t n_entries, cap_entries;
    uint64_t tick;
    s_pool_t pool;
    int pool_started;
    /* media: ship */
    cache_t *cache;           /* NULL: media are shared */
    sf_pathmap_t *ship_roots; /* the cache folder as the only media root */
    s_entry_t *fetching;      /* whose file fetching->fetch_at is coming in, or NULL */
    cache_part_t *part;
    uint64_t requested;  /* bytes of it asked for */
    int64_t fetch_rx_ms; /* when its last bytes came */
    uint64_t fetched_files, fetched_bytes, evicted_files;
} s_worker_t;

static void s_zfree(void *data, void *hint)
{
    (void)hint;
    sf_free(data);
}

/* Sends one frame, taking ownership of buf. 0 or -1 (logged). */
static int s_send_packed(s_worker_t *w, uint8_t *buf, size_t n_bytes, sf_wire_kind_t kind)
{
    zmq_msg_t zm;
    if (zmq_msg_init_data(&zm, buf, n_bytes, s_zfree, NULL)) {
        sf_free(buf);
        sf_log(SF_LOG_ERROR, w->component, "cannot send %s: %s", sf_wire_kind_name(kind), zmq_strerror(errno));
        return -1;
    }
    int rc;
    do
        rc = zmq_msg_send(&zm, w->sock, 0);
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        sf_log(SF_LOG_WARN, w->component, "cannot send %s to the coordinator: %s", sf_wire_kind_name(kind),
               errno == EAGAIN ? "timed out" : zmq_strerror(errno));
        zmq_msg_close(&zm);
        return -1;
    }
    return 0;
}

static int s_send(s_worker_t *w, const sf_wire_msg_t *m)
{
    uint8_t *buf;
    size_t n_bytes;
    sf_err_t err = {0};
    if (sf_wire_encode(m, &buf, &n_bytes, &err)) {
        sf_log(SF_LOG_ERROR, w->component, "cannot encode %s: %s", sf_wire_kind_name(m->kind), err.msg);
        return -1;
    }
    return s_send_packed(w, buf, n_bytes, m->kind);
}

static void s_send_credit(s_worker_t *w, uint32_t n_jobs)
{
    sf_wire_msg_t m = {.kind = SF_WIRE_CREDIT};
    m.u.credit.n_jobs = n_jobs;
    if (s_send(w, &m) == 0)
        w->credit += n_jobs;
}

/* Answers a job that will not produce frames, and frees its slot. */
static void s_send_job_error(s_worker_t *w, uint64_t job_id, uint32_t attempt, const char *message)
{
    char text[SF_WIRE_MAX_TEXT + 1];
    snprintf(text, sizeof text, "%s", message && *message ? message : "unknown error");
    sf_wire_text_sanitize(text);
    sf_wire_msg_t m = {.kind = SF_WIRE_JOB_ERROR};
    m.u.job_error.job_id = job_id;
    m.u.job_error.attempt = attempt;
    m.u.job_error.message = text;
    s_send(w, &m);
    w->jobs_failed++;
    w->jobs_running--;
    sf_log(SF_LOG_WARN, w->component, "job %" PRIu64 " (attempt %" PRIu32 ") failed: %s", job_id, attempt, text);
    s_send_credit(w, 1);
}

static void s_hold(s_worker_t *w, s_task_t *t)
{
    if (w->n_held == w->cap_held) {
        size_t cap = w->cap_held ? w->cap_held * 2 : 16;
        s_task_t **held = sf_realloc(w->held, cap * sizeof *held);
        if (!held)
            return; /* it only goes missing from heartbeats */
        w->held = held;
        w->cap_held = cap;
    }
    w->held[w->n_held++] = t;
}

static void s_unhold(s_worker_t *w, const s_task_t *t)
{
    for (size_t i = 0; i < w->n_held; i++)
        if (w->held[i] == t) {
            w->held[i] = w->held[--w->n_held];
            return;
        }
}

/* A job of an older era is done: no answer, its slot back as credit. */
static void s_drop_stale(s_worker_t *w, const s_task_t *t)
{
    w->jobs_running--;
    if (w->cfg->verbose)
        sf_log(SF_LOG_INFO, w->component, "job %" PRIu64 " finished after the coordinator restarted: not sent",
               t->job_id);
    if (w->welcomed)
        s_send_credit(w, 1);
}

static void s_hex12(const uint8_t hash[32], char out[13])
{
    char hex[65];
    sf_hash_hex(hash, 32, hex);
    memcpy(out, hex, 12);
    out[12] = '\0';
}

static s_entry_t *s_entry_find(s_worker_t *w, const uint8_t hash[32])
{
    for (size_t i = 0; i < w->n_entries; i++)
        if (memcmp(w->entries[i]->hash, hash, 32) == 0)
            return w->entries[i];
    return NULL;
}

static void s_entry_free(s_entry_t *e)
{
    if (!e)
        return;
    sf_session_destroy(&e->session);
    sf_free(e->error);
    for (size_t i = 0; i < e->n_media; i++)
        sf_free(e->media[i].name);
    sf_free(e->media);
    s_task_free(e->load);
    s_task_t *t;
    s_list_t parked = {e->parked, e->parked_tail};
    while ((t = s_list_pop(&parked)))
        s_task_free(t);
    sf_free(e);
}

/* Drops the idle sessions received longest ago beyond SF_WIRE_NODE_SESSIONS.
 * Eviction follows the order of SessionData, not of use, because that is
 * what the coordinator can mirror (see sf/wire.h). */
static void s_cache_trim(s_worker_t *w)
{
    while (w->n_entries > SF_WIRE_NODE_SESSIONS) {
        size_t victim = w->n_entries;
        for (size_t i = 0; i < w->n_entries; i++) {
            s_entry_t *e = w->entries[i];
            if (e->refs == 0 && (victim == w->n_entries || e->received < w->entries[victim]->received))
                victim = i;
        }
        if (victim == w->n_entries)
            return; /* every session is in use: keep them all for now */
        char hex[13];
        s_hex12(w->entries[victim]->hash, hex);
        if (w->cfg->verbose)
            sf_log(SF_LOG_INFO, w->component, "session %s dropped from the cache", hex);
        s_entry_free(w->entries[victim]);
        w->entries[victim] = w->entries[--w->n_entries];
    }
}

static s_entry_t *s_entry_add(s_worker_t *w, const uint8_t hash[32])
{
    if (w->n_entries == w->cap_entries) {
        size_t cap = w->cap_entries ? 2 * w->cap_entries : 8;
        s_entry_t **grown = sf_realloc(w->entries, cap * sizeof *grown);
        if (!grown)
            return NULL;
        w->entries = grown;
        w->cap_entries = cap;
    }
    s_entry_t *e = sf_calloc(1, sizeof *e);
    if (!e)
        return NULL;
    memcpy(e->hash, hash, 32);
    w->entries[w->n_entries++] = e;
    return e;
}

static void s_dispatch_job(s_worker_t *w, s_entry_t *e, s_task_t *t)
{
    t->entry = e;
    t->session = e->session;
    e->refs++;
    s_pool_submit(&w->pool, t);
}

/* ---- handling the coordinator's messages ------------------------------- */

static void s_send_hello(s_worker_t *w);

static void s_on_welcome(s_worker_t *w, const sf_wire_msg_t *m)
{
    w->heartbeat_ms = m->u.welcome.heartbeat_ms;
    w->max_message_bytes = m->u.welcome.max_message_bytes ? m->u.welcome.max_message_bytes : SF_WIRE_MAX_MESSAGE_BYTES;
    if (w->welcomed) {
        sf_log(SF_LOG_WARN, w->component, "second welcome from the coordinator (node id %" PRIu32 "), kept going",
               m->u.welcome.node_id);
        return;
    }
    w->welcomed = 1;
    w->node_id = m->u.welcome.node_id;
    sf_log(SF_LOG_INFO, w->component,
           "joined %s as node %" PRIu32 " (%d slots x %d threads, %s, heartbeat %" PRIu32 " ms)", w->endpoint,
           w->node_id, w->slots, w->omp_threads, sf_wire_simd_level(), w->heartbeat_ms);
    /* Jobs of an earlier era still hold their slots until they finish. */
    int free_slots = w->slots - (w->jobs_running > 0 ? w->jobs_running : 0);
    if (free_slots > 0)
        s_send_credit(w, (uint32_t)free_slots);
}

/* ---- shipped media ------------------------------------------------------ */

static void s_send_job_error(s_worker_t *w, uint64_t job_id, uint32_t attempt, const char *message);
static void s_fetch_next(s_worker_t *w);

/* Answers the jobs parked on e, now that it is READY (they go to the
 * pool) or FAILED (each gets e->error). */
static void s_release_parked(s_worker_t *w, s_entry_t *e)
{
    s_list_t parked = {e->parked, e->parked_tail};
    e->parked = e->parked_tail = NULL;
    s_task_t *job;
    while ((job = s_list_pop(&parked))) {
        if (e->state == S_ENTRY_READY) {
            s_dispatch_job(w, e, job);
        } else if (job->era != w->era) {
            s_unhold(w, job);
            s_drop_stale(w, job);
            s_task_free(job);
        } else {
            s_unhold(w, job);
            s_send_job_error(w, job->job_id, job->attempt, e->error ? e->error : "the session failed to load");
            s_task_free(job);
        }
    }
}

/* A shipped session that cannot get its media: it fails like a session
 * that cannot load, and its jobs go back to the coordinator. */
static void s_ship_fail(s_worker_t *w, s_entry_t *e, const char *msg)
{
    char hex[13];
    s_hex12(e->hash, hex);
    sf_log(SF_LOG_ERROR, w->component, "session %s: %s", hex, msg);
    e->state = S_ENTRY_FAILED;
    e->phase = S_SHIP_DONE;
    sf_free(e->error);
    e->error = sf_strdup(msg);
    if (e->load) {
        s_task_free(e->load);
        e->load = NULL;
        e->refs--;
    }
    s_release_parked(w, e);
}

/* Takes the media list of SessionData m for entry e and starts checking
 * what the cache already holds; `load` waits in e until all is there. */
static void s_ship_session(s_worker_t *w, s_entry_t *e, s_task_t *load, const sf_wire_msg_t *m)
{
    load->cache_dir = cache_dir(w->cache);
    load->pathmap = w->ship_roots;
    e->load = load;
    e->phase = S_SHIP_VERIFY;
    for (size_t i = 0; i < e->n_media; i++)
        sf_free(e->media[i].name);
    sf_free(e->media);
    e->n_media = 0;
    e->fetch_at = 0;
    size_t n = m->u.session.n_media;
    e->media = n ? sf_calloc(n, sizeof *e->media) : NULL;
    s_task_t *t = sf_calloc(1, sizeof *t);
    bool ok = t && (!n || e->media) && (t->verified = sf_calloc(n ? n : 1, sizeof *t->verified));
    for (size_t i = 0; ok && i < n; i++) {
        const sf_wire_media_t *f = &m->u.session.media[i];
        ok = (e->media[i].name = sf_strdup(f->name)) != NULL;
        memcpy(e->media[i].sha256, f->sha256, 32);
        e->media[i].n_bytes = f->n_bytes;
        e->n_media = i + 1;
    }
    if (!ok) {
        s_task_free(t);
        s_ship_fail(w, e, "out of memory taking the session's media list");
        return;
    }
    load->media = e->media;
    load->n_media = e->n_media;
    t->kind = S_TASK_VERIFY;
    t->entry = e;
    t->media = e->media;
    t->n_media = e->n_media;
    t->cache_dir = cache_dir(w->cache);
    e->refs++;
    s_pool_submit(&w->pool, t);
}

static void s_on_verified(s_worker_t *w, s_task_t *t)
{
    s_entry_t *e = t->entry;
    e->refs--;
    char hex[13];
    s_hex12(e->hash, hex);
    if (t->n_corrupt)
        sf_log(SF_LOG_WARN, w->component, "session %s: %zu cached media files were bad and are fetched again: %s", hex,
               t->n_corrupt, t->msg);
    size_t n_cached = 0;
    uint64_t n_missing_bytes = 0;
    for (size_t i = 0; i < e->n_media; i++) {
        e->media[i].cached = t->verified[i];
        n_cached += t->verified[i];
        n_missing_bytes += t->verified[i] ? 0 : e->media[i].n_bytes;
    }
    sf_log(SF_LOG_INFO, w->component, "session %s: %zu media files, %zu in the cache, %zu to fetch (%" PRIu64 " bytes)",
           hex, e->n_media, n_cached, e->n_media - n_cached, n_missing_bytes);
    s_task_free(t);
    if (e->state != S_ENTRY_LOADING)
        return;
    e->phase = S_SHIP_FETCH;
    s_fetch_next(w);
}

/* Every media hash of the sessions this node holds: never evicted. */
static uint8_t (*s_in_use(const s_worker_t *w, size_t *n_out))[32]
{
    size_t n = 0;
    for (size_t i = 0; i < w->n_entries; i++)
        n += w->entries[i]->n_media;
    uint8_t(*keep)[32] = sf_malloc((n ? n : 1) * sizeof *keep);
    if (!keep)
        return NULL;
    n = 0;
    for (size_t i = 0; i < w->n_entries; i++)
        for (size_t k = 0; k < w->entries[i]->n_media; k++)
            memcpy(keep[n++], w->entries[i]->media[k].sha256, 32);
    *n_out = n;
    return keep;
}

static void s_fetch_request(s_worker_t *w)
{
    s_entry_t *e = w->fetching;
    const s_media_t *f = &e->media[e->fetch_at];
    while (w->requested < f->n_bytes &&
           w->requested - cache_part_written(w->part) < (uint64_t)S_FETCH_WINDOW * SF_WIRE_MAX_FETCH_BYTES) {
        uint64_t left = f->n_bytes - w->requested;
        sf_wire_msg_t m = {.kind = SF_WIRE_FETCH};
        m.u.fetch.session_hash = e->hash;
        m.u.fetch.index = (uint32_t)e->fetch_at;
        m.u.fetch.sha256 = f->sha256;
        m.u.fetch.offset = w->requested;
        m.u.fetch.n_bytes = (uint32_t)(left < SF_WIRE_MAX_FETCH_BYTES ? left : SF_WIRE_MAX_FETCH_BYTES);
        if (s_send(w, &m))
            return; /* the fetch times out and fails the session */
        w->requested += m.u.fetch.n_bytes;
    }
}

/* Starts the next file any shipped session is missing, one at a time;
 * a session with every file in goes on to load. */
static void s_fetch_next(s_worker_t *w)
{
    while (!w->fetching) {
        s_entry_t *e = NULL;
        for (size_t i = 0; i < w->n_entries; i++) {
            s_entry_t *c = w->entries[i];
            if (c->state == S_ENTRY_LOADING && c->phase == S_SHIP_FETCH && (!e || c->received < e->received))
                e = c;
        }
        if (!e)
            return;
        char path[PATH_MAX];
        struct stat st;
        while (e->fetch_at < e->n_media) {
            s_media_t *f = &e->media[e->fetch_at];
            /* Another session may have brought the same bytes in meanwhile. */
            cache_path(cache_dir(w->cache), f->sha256, path, sizeof path);
            if (!f->cached && stat(path, &st) == 0 && (uint64_t)st.st_size == f->n_bytes)
                f->cached = true;
            if (!f->cached)
                break;
            e->fetch_at++;
        }
        if (e->fetch_at == e->n_media) {
            char hex[13];
            s_hex12(e->hash, hex);
            e->phase = S_SHIP_DONE;
            s_task_t *load = e->load;
            e->load = NULL;
            if (w->cfg->verbose)
                sf_log(SF_LOG_INFO, w->component, "loading session %s from the media cache", hex);
            s_pool_submit(&w->pool, load);
            continue;
        }
        s_media_t *f = &e->media[e->fetch_at];
        size_t n_keep = 0, n_evicted = 0;
        uint8_t(*keep)[32] = s_in_use(w, &n_keep);
        sf_err_t err = {0};
        sf_rc rc = keep ? cache_make_room(w->cache, f->n_bytes, (const uint8_t(*)[32])keep, n_keep, &n_evicted, &err)
                        : SF_ERR(&err, SF_E_NOMEM, "out of memory");
        sf_free(keep);
        w->evicted_files += n_evicted;
        if (n_evicted)
            sf_log(SF_LOG_INFO, w->component,
                   "media cache: %zu least recently used files evicted to stay under %" PRIu64 " bytes", n_evicted,
                   cache_max_bytes(w->cache));
        if (!rc)
            rc = cache_part_open(w->cache, f->sha256, f->n_bytes, &w->part, &err);
        if (rc) {
            char msg[SF_WIRE_MAX_TEXT];
            snprintf(msg, sizeof msg, "cannot fetch media '%s': %s", f->name, err.msg);
            s_ship_fail(w, e, msg);
            continue;
        }
        w->fetching = e;
        w->requested = 0;
        w->fetch_rx_ms = sf_clock_ms();
        s_fetch_request(w);
    }
}

/* The fetch in progress ends, well or not; the next one starts. */
static void s_fetch_end(s_worker_t *w, const char *fail_msg)
{
    s_entry_t *e = w->fetching;
    w->fetching = NULL;
    cache_part_abort(&w->part);
    if (fail_msg)
        s_ship_fail(w, e, fail_msg);
    s_fetch_next(w);
}

static bool s_fetch_matches(const s_worker_t *w, const uint8_t *session_hash, uint32_t index)
{
    return w->fetching && !memcmp(w->fetching->hash, session_hash, 32) && index == w->fetching->fetch_at;
}

static void s_on_fetch_data(s_worker_t *w, const sf_wire_msg_t *m)
{
    if (!s_fetch_matches(w, m->u.fetch_data.session_hash, m->u.fetch_data.index) ||
        m->u.fetch_data.offset != cache_part_written(w->part)) {
        sf_log(SF_LOG_DEBUG, w->component, "fetch data for a fetch no longer running, dropped");
        return;
    }
    s_entry_t *e = w->fetching;
    s_media_t *f = &e->media[e->fetch_at];
    char msg[SF_WIRE_MAX_TEXT];
    sf_err_t err = {0};
    w->fetch_rx_ms = sf_clock_ms();
    if (cache_part_write(w->part, m->u.fetch_data.offset, m->u.fetch_data.data, m->u.fetch_data.n_bytes, &err)) {
        snprintf(msg, sizeof msg, "cannot fetch media '%s': %s", f->name, err.msg);
        s_fetch_end(w, msg);
        return;
    }
    if (cache_part_written(w->part) < f->n_bytes) {
        s_fetch_request(w);
        return;
    }
    sf_rc rc = cache_part_finish(&w->part, &err);
    if (rc) {
        snprintf(msg, sizeof msg, "media '%s' %s: %s", f->name, rc == SF_E_INPUT ? "arrived corrupt" : "cannot be kept",
                 err.msg);
        s_fetch_end(w, msg);
        return;
    }
    char hex[65];
    sf_hash_hex(f->sha256, 32, hex);
    sf_log(SF_LOG_INFO, w->component, "fetched media '%s' (%" PRIu64 " bytes, sha256 %.12s), verified", f->name,
           f->n_bytes, hex);
    w->fetched_files++;
    w->fetched_bytes += f->n_bytes;
    f->cached = true;
    e->fetch_at++;
    s_fetch_end(w, NULL);
}

static void s_on_fetch_error(s_worker_t *w, const sf_wire_msg_t *m)
{
    if (!s_fetch_matches(w, m->u.fetch_error.session_hash, m->u.fetch_error.index))
        return;
    char msg[SF_WIRE_MAX_TEXT];
    snprintf(msg, sizeof msg, "cannot fetch media '%s': the coordinator says: %s",
             w->fetching->media[w->fetching->fetch_at].name, m->u.fetch_error.message);
    s_fetch_end(w, msg);
}

static void s_on_session(s_worker_t *w, const sf_wire_msg_t *m)
{
    char hex[13];
    s_hex12(m->u.session.session_hash, hex);
    s_entry_t *e = s_entry_find(w, m->u.session.session_hash);
    if (e)
        e->received = ++w->tick;
    if (e && !(e->state == S_ENTRY_FAILED && e->refs == 0))
        return; /* known, or loading: nothing to do */
    if (!e) {
        e = s_entry_add(w, m->u.session.session_hash);
        if (!e) {
            sf_log(SF_LOG_ERROR, w->component, "out of memory caching session %s", hex);
            return;
        }
        e->received = ++w->tick;
    }
    /* A failed session is retried when sent again: its sources may be there now. */
    sf_free(e->error);
    e->error = NULL;
    e->state = S_ENTRY_LOADING;
    s_task_t *t = sf_calloc(1, sizeof *t);
    if (t) {
        t->kind = S_TASK_LOAD;
        t->path = sf_strdup(m->u.session.path);
        t->base_dir = sf_strdup(m->u.session.base_dir ? m->u.session.base_dir : "");
        t->pathmap = w->cfg->pathmap;
        t->yaml = sf_malloc(m->u.session.n_yaml_bytes + 1);
    }
    if (!t || !t->path || !t->base_dir || !t->yaml) {
        s_task_free(t);
        e->state = S_ENTRY_FAILED;
        e->error = sf_strdup("out of memory loading the session on the node");
        sf_log(SF_LOG_ERROR, w->component, "out of memory loading session %s", hex);
        return;
    }
    memcpy(t->yaml, m->u.session.yaml, m->u.session.n_yaml_bytes);
    t->yaml[m->u.session.n_yaml_bytes] = '\0';
    t->n_yaml_bytes = m->u.session.n_yaml_bytes;
    t->entry = e;
    e->refs++;
    if (w->cache) {
        s_ship_session(w, e, t, m);
    } else {
        if (w->cfg->verbose)
            sf_log(SF_LOG_INFO, w->component, "loading session %s from '%s'", hex, t->path);
        s_pool_submit(&w->pool, t);
    }
    s_cache_trim(w);
}

static void s_on_job(s_worker_t *w, const sf_wire_msg_t *m)
{
    w->jobs_running++;
    if (w->credit <= 0)
        sf_log(SF_LOG_WARN, w->component, "coordinator sent job %" PRIu64 " beyond the credit it was given",
               m->u.job.job_id);
    w->credit--;
    s_entry_t *e = s_entry_find(w, m->u.job.session_hash);
    if (!e) {
        char hex[65], msg[128];
        sf_hash_hex(m->u.job.session_hash, 32, hex);
        snprintf(msg, sizeof msg, "unknown session %s", hex);
        s_send_job_error(w, m->u.job.job_id, m->u.job.attempt, msg);
        return;
    }
    if (e->state == S_ENTRY_FAILED) {
        s_send_job_error(w, m->u.job.job_id, m->u.job.attempt, e->error);
        return;
    }
    s_task_t *t = sf_calloc(1, sizeof *t);
    if (!t) {
        s_send_job_error(w, m->u.job.job_id, m->u.job.attempt, "out of memory on the node");
        return;
    }
    t->kind = S_TASK_JOB;
    t->job_id = m->u.job.job_id;
    t->attempt = m->u.job.attempt;
    t->target.kind = (sf_target_kind_t)m->u.job.target_kind;
    t->target.index = m->u.job.target_index;
    t->start_frame = m->u.job.start_frame;
    t->n_frames = m->u.job.n_frames;
    t->preroll_frames = m->u.job.preroll_frames;
    t->max_message_bytes = w->max_message_bytes ? w->max_message_bytes : SF_WIRE_MAX_MESSAGE_BYTES;
    t->era = w->era;
    atomic_init(&t->progress, 0);
    s_hold(w, t);
    if (e->state == S_ENTRY_LOADING) {
        s_list_t parked = {e->parked, e->parked_tail};
        s_list_push(&parked, t);
        e->parked = parked.head;
        e->parked_tail = parked.tail;
        return;
    }
    s_dispatch_job(w, e, t);
}

/* Returns 1 when the worker should stop (shutdown). */
static int s_on_message(s_worker_t *w, const uint8_t *data, size_t n_bytes)
{
    sf_wire_msg_t m;
    sf_err_t err = {0};
    if (sf_wire_decode(data, n_bytes, &m, &err)) {
        sf_log(SF_LOG_WARN, w->component, "dropped a bad message from the coordinator: %s", err.msg);
        return 0;
    }
    int stop = 0;
    switch (m.kind) {
    case SF_WIRE_WELCOME: s_on_welcome(w, &m); break;
    case SF_WIRE_SESSION: s_on_session(w, &m); break;
    case SF_WIRE_JOB: s_on_job(w, &m); break;
    case SF_WIRE_HEARTBEAT: break;
    case SF_WIRE_FETCH_DATA: s_on_fetch_data(w, &m); break;
    case SF_WIRE_FETCH_ERROR: s_on_fetch_error(w, &m); break;
    case SF_WIRE_RESET:
        sf_log(SF_LOG_WARN, w->component, "the coordinator at %s asks this node to join again: %s", w->endpoint,
               m.u.reset.reason);
        w->era++;
        w->welcomed = 0;
        w->credit = 0;
        s_send_hello(w);
        break;
    case SF_WIRE_SHUTDOWN:
        sf_log(SF_LOG_INFO, w->component, "shutdown from the coordinator%s%s", m.u.shutdown.reason[0] ? ": " : "",
               m.u.shutdown.reason);
        stop = 1;
        break;
    default:
        sf_log(SF_LOG_WARN, w->component, "unexpected %s from the coordinator, ignored", sf_wire_kind_name(m.kind));
        break;
    }
    sf_wire_msg_clear(&m);
    return stop;
}

/* ---- handling finished tasks --------------------------------------------- */

static void s_on_loaded(s_worker_t *w, s_task_t *t)
{
    s_entry_t *e = t->entry;
    char hex[13];
    s_hex12(e->hash, hex);
    e->refs--;
    if (t->rc == SF_OK && memcmp(t->loaded->hash, e->hash, 32) != 0) {
        char want[65], got[65];
        sf_hash_hex(e->hash, 32, want);
        sf_hash_hex(t->loaded->hash, 32, got);
        snprintf(t->msg, sizeof t->msg, "session hash mismatch: the coordinator sent %s, '%s' loads as %s here", want,
                 t->path, got);
        t->rc = SF_E_INPUT;
    }
    if (t->rc == SF_OK) {
        e->session = t->loaded;
        t->loaded = NULL;
        e->state = S_ENTRY_READY;
        sf_log(SF_LOG_INFO, w->component, "session %s loaded from '%s' (%zu tracks, %zu stems)", hex, t->path,
               e->session->n_tracks, e->session->n_stems);
    } else {
        e->state = S_ENTRY_FAILED;
        e->error = sf_strdup(t->msg);
        sf_log(SF_LOG_ERROR, w->component, "session %s from '%s' failed to load: %s", hex, t->path, t->msg);
    }
    s_release_parked(w, e);
    s_task_free(t);
    s_cache_trim(w);
}

static void s_on_rendered(s_worker_t *w, s_task_t *t)
{
    t->entry->refs--;
    s_unhold(w, t);
    if (t->era != w->era) {
        s_drop_stale(w, t);
    } else if (t->rc) {
        s_send_job_error(w, t->job_id, t->attempt, t->msg);
    } else {
        uint8_t *packed = t->packed;
        t->packed = NULL;
        s_send_packed(w, packed, t->n_packed, SF_WIRE_RESULT);
        w->jobs_done++;
        w->jobs_running--;
        if (w->cfg->verbose) {
            double seconds = (double)t->render_ns / 1e9;
            double audio = (double)t->n_frames / (double)t->session->sample_rate;
            sf_log(SF_LOG_INFO, w->component,
                   "job %" PRIu64 " done: '%s', frames %" PRId64 "+%" PRIu64 ", %u ch, %.3f s, %.1fx realtime",
                   t->job_id, sf_session_target_name(t->session, t->target), t->start_frame, t->n_frames,
                   (unsigned)t->n_channels, seconds, seconds > 0 ? audio / seconds : 0.0);
        }
        s_send_credit(w, 1);
    }
    s_task_free(t);
    s_cache_trim(w);
}

static void s_drain_done(s_worker_t *w)
{
    char buf[256];
    while (read(w->pool.wake[0], buf, sizeof buf) > 0) {
    }
    pthread_mutex_lock(&w->pool.mu);
    s_list_t done = w->pool.done;
    w->pool.done.head = w->pool.done.tail = NULL;
    pthread_mutex_unlock(&w->pool.mu);
    s_task_t *t;
    while ((t = s_list_pop(&done))) {
        if (t->kind == S_TASK_LOAD)
            s_on_loaded(w, t);
        else if (t->kind == S_TASK_VERIFY)
            s_on_verified(w, t);
        else
            s_on_rendered(w, t);
    }
}

/* ---- set-up and the loop --------------------------------------------------- */

static int s_configure(s_worker_t *w, const worker_config_t *cfg)
{
    memset(w, 0, sizeof *w);
    w->cfg = cfg;
    w->endpoint = cfg->endpoint;
    w->cores = omp_get_num_procs();
    if (w->cores < 1)
        w->cores = 1;
    if (w->cores > SF_WIRE_MAX_CORES)
        w->cores = SF_WIRE_MAX_CORES;
    w->omp_threads = cfg->threads ? cfg->threads : w->cores;
    if (w->omp_threads > SF_WIRE_MAX_THREADS)
        w->omp_threads = SF_WIRE_MAX_THREADS;
    w->slots = cfg->slots ? cfg->slots : 1;
    w->timeout_ms = cfg->coordinator_timeout_ms ? cfg->coordinator_timeout_ms : S_DEFAULT_TIMEOUT_MS;
    if (cfg->name && *cfg->name) {
        snprintf(w->name, sizeof w->name, "%s", cfg->name);
    } else {
        char host[256] = "node";
        if (gethostname(host, sizeof host) != 0 || !host[0])
            snprintf(host, sizeof host, "node");
        host[sizeof host - 1] = '\0';
        snprintf(w->name, sizeof w->name, "%.200s-%ld", host, (long)getpid());
    }
    /* Names go into logs and Hello: keep them printable UTF-8. */
    sf_wire_text_sanitize(w->name);
    for (char *p = w->name; *p; p++)
        if (*p == '\t' || *p == '\n')
            *p = ' ';
    snprintf(w->component, sizeof w->component, "node[%s]", w->name);

    const char *why = NULL;
    if (!cfg->endpoint || !*cfg->endpoint)
        why = "no coordinator endpoint";
    else if (cfg->threads < 0 || cfg->threads > SF_WIRE_MAX_THREADS)
        why = "threads out of range 0..256";
    else if (cfg->slots < 0 || cfg->slots > SF_WIRE_MAX_SLOTS)
        why = "slots out of range 0..256";
    else if (cfg->coordinator_timeout_ms < 0)
        why = "negative coordinator timeout";
    if (why) {
        sf_log(SF_LOG_ERROR, w->component, "bad configuration: %s", why);
        return -1;
    }
    return 0;
}

static int s_open_socket(s_worker_t *w, void *ctx)
{
    w->sock = zmq_socket(ctx, ZMQ_DEALER);
    if (!w->sock) {
        sf_log(SF_LOG_ERROR, w->component, "cannot create a socket: %s", zmq_strerror(errno));
        return 3;
    }
    int64_t max_bytes = (int64_t)SF_WIRE_MAX_MESSAGE_BYTES;
    int linger = S_LINGER_MS, sndtimeo = S_SEND_TIMEOUT_MS;
    zmq_setsockopt(w->sock, ZMQ_MAXMSGSIZE, &max_bytes, sizeof max_bytes);
    zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(w->sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
    /* Waits for the handshake, so a refused key ends the node at once (a
     * refused peer hears nothing over ZMQ); a *stop lets s_loop say bye. */
    sf_err_t err = {0};
    sf_rc rc = sf_secure_connect(ctx, w->sock, w->endpoint, w->cfg->curve, "node", w->timeout_ms, w->cfg->stop, &err);
    if (rc) {
        sf_log(SF_LOG_ERROR, w->component, "%s", err.msg);
        return rc == SF_E_INPUT ? 2 : 3;
    }
    return 0;
}

static void s_send_hello(s_worker_t *w)
{
    w->hello_ms = sf_clock_ms();
    sf_wire_msg_t m = {.kind = SF_WIRE_HELLO};
    m.u.hello.node_name = w->name;
    m.u.hello.cores = (uint32_t)w->cores;
    m.u.hello.threads = (uint32_t)w->omp_threads;
    m.u.hello.slots = (uint32_t)w->slots;
    m.u.hello.simd = sf_wire_simd_level();
    m.u.hello.ship_media = w->cache != NULL;
    s_send(w, &m);
}

static void s_send_heartbeat(s_worker_t *w)
{
    sf_wire_msg_t m = {.kind = SF_WIRE_HEARTBEAT};
    int running = w->jobs_running < 0 ? 0 : w->jobs_running;
    m.u.heartbeat.jobs_running = (uint32_t)(running > SF_WIRE_MAX_SLOTS ? SF_WIRE_MAX_SLOTS : running);
    sf_wire_job_progress_t jobs[SF_WIRE_MAX_SLOTS];
    size_t n = 0;
    for (size_t i = 0; i < w->n_held && n < SF_WIRE_MAX_SLOTS; i++) {
        const s_task_t *t = w->held[i];
        if (t->era != w->era)
            continue;
        uint64_t done = (uint64_t)atomic_load_explicit(&w->held[i]->progress, memory_order_relaxed);
        /* The render adds block-grid and latency frames the node cannot
         * know in advance: the total is an estimate, never below done. */
        uint64_t total = t->preroll_frames + t->n_frames;
        jobs[n++] = (sf_wire_job_progress_t){t->job_id, t->attempt, done, done > total ? done : total};
    }
    m.u.heartbeat.jobs = jobs;
    m.u.heartbeat.n_jobs = n;
    s_send(w, &m);
}

/* Receives up to S_RECV_BATCH messages. Returns 1 on shutdown. */
static int s_receive(s_worker_t *w, int64_t *last_rx_ms)
{
    for (int i = 0; i < S_RECV_BATCH; i++) {
        zmq_msg_t zm;
        zmq_msg_init(&zm);
        if (zmq_msg_recv(&zm, w->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&zm);
            return 0; /* EAGAIN or EINTR: the loop comes back */
        }
        *last_rx_ms = sf_clock_ms();
        int more = zmq_msg_more(&zm);
        int stop = 0;
        if (more) {
            sf_log(SF_LOG_WARN, w->component, "dropped a message of several frames from the coordinator");
            zmq_msg_close(&zm);
            /* Swallow the remaining frames of the same message. */
            while (more) {
                zmq_msg_init(&zm);
                if (zmq_msg_recv(&zm, w->sock, ZMQ_DONTWAIT) < 0) {
                    zmq_msg_close(&zm);
                    break;
                }
                more = zmq_msg_more(&zm);
                zmq_msg_close(&zm);
            }
            continue;
        }
        stop = s_on_message(w, zmq_msg_data(&zm), zmq_msg_size(&zm));
        zmq_msg_close(&zm);
        if (stop)
            return 1;
    }
    return 0;
}

static int64_t s_min64(int64_t a, int64_t b) { return a < b ? a : b; }

static int s_loop(s_worker_t *w)
{
    int64_t started = sf_clock_ms(), last_rx = started, next_hb = started;
    s_send_hello(w);
    for (;;) {
        int64_t now = sf_clock_ms();
        if (w->cfg->stop && atomic_load(w->cfg->stop)) {
            sf_log(SF_LOG_INFO, w->component, "stopping: %d jobs running are handed back", w->jobs_running);
            sf_wire_msg_t bye = {.kind = SF_WIRE_BYE};
            bye.u.bye.reason = "node stopped";
            s_send(w, &bye);
            return 0;
        }
        if (now - last_rx >= w->timeout_ms) {
            if (w->welcomed)
                sf_log(SF_LOG_ERROR, w->component, "coordinator at %s silent for %.1f s, giving up", w->endpoint,
                       (double)(now - last_rx) / 1000.0);
            else
                sf_log(SF_LOG_ERROR, w->component, "no welcome from the coordinator at %s after %.1f s", w->endpoint,
                       (double)(now - started) / 1000.0);
            return 3;
        }
        if (w->fetching && now - w->fetch_rx_ms >= w->timeout_ms) {
            char msg[SF_WIRE_MAX_TEXT];
            snprintf(msg, sizeof msg, "cannot fetch media '%s': no data from the coordinator for %.1f s",
                     w->fetching->media[w->fetching->fetch_at].name, (double)(now - w->fetch_rx_ms) / 1000.0);
            s_fetch_end(w, msg);
        }
        if (w->welcomed && now >= next_hb) {
            s_send_heartbeat(w);
            next_hb = now + w->heartbeat_ms;
        }
        /* A Hello can be lost to a coordinator that is restarting. */
        if (!w->welcomed && now - w->hello_ms >= S_HELLO_AGAIN_MS)
            s_send_hello(w);
        int64_t wait = s_min64(S_STOP_POLL_MS, last_rx + w->timeout_ms - now);
        if (w->welcomed)
            wait = s_min64(wait, next_hb - now);
        if (wait < 0)
            wait = 0;
        zmq_pollitem_t items[2] = {
            {.socket = w->sock, .events = ZMQ_POLLIN},
            {.socket = NULL, .fd = w->pool.wake[0], .events = ZMQ_POLLIN},
        };
        int n = zmq_poll(items, 2, (long)wait);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            sf_log(SF_LOG_ERROR, w->component, "poll failed: %s", zmq_strerror(errno));
            return 3;
        }
        if (items[1].revents & ZMQ_POLLIN)
            s_drain_done(w);
        if ((items[0].revents & ZMQ_POLLIN) && s_receive(w, &last_rx))
            return 0;
    }
}

int worker_run(const worker_config_t *cfg)
{
    s_worker_t w;
    if (!cfg || s_configure(&w, cfg))
        return 2;
    void *ctx = cfg->zmq_context;
    int own_ctx = ctx == NULL;
    if (own_ctx && !(ctx = zmq_ctx_new())) {
        sf_log(SF_LOG_ERROR, w.component, "cannot create a ZeroMQ context: %s", zmq_strerror(errno));
        return 3;
    }
    int rc = 0;
    if (cfg->ship_media) {
        sf_err_t err = {0};
        if (!cfg->cache_dir || cfg->cache_dir[0] != '/') {
            sf_log(SF_LOG_ERROR, w.component, "bad configuration: media: ship needs an absolute cache folder");
            rc = 2;
        } else if (cache_open(cfg->cache_dir, cfg->cache_max_bytes, &w.cache, &err) ||
                   sf_pathmap_new(&w.ship_roots, &err) || sf_pathmap_add_root(w.ship_roots, cfg->cache_dir, &err)) {
            sf_log(SF_LOG_ERROR, w.component, "%s", err.msg);
            rc = 2;
        } else {
            sf_log(SF_LOG_INFO, w.component, "media: ship, cached in '%s' (at most %" PRIu64 " bytes)",
                   cache_dir(w.cache), cache_max_bytes(w.cache));
        }
        if (rc)
            goto close_socket;
    }
    rc = s_open_socket(&w, ctx);
    if (rc)
        goto close_socket;
    if (s_pool_start(&w.pool, w.slots, w.omp_threads)) {
        sf_log(SF_LOG_ERROR, w.component, "cannot start %d render threads", w.slots);
        w.pool_started = 1;
        rc = 3;
        goto stop_pool;
    }
    w.pool_started = 1;
    rc = s_loop(&w);
    if (w.cache)
        sf_log(SF_LOG_INFO, w.component,
               "left: %" PRIu64 " jobs done, %" PRIu64 " failed; media fetched: %" PRIu64 " files, %" PRIu64
               " bytes; %" PRIu64 " evicted",
               w.jobs_done, w.jobs_failed, w.fetched_files, w.fetched_bytes, w.evicted_files);
    else if (w.jobs_done || w.jobs_failed || cfg->verbose)
        sf_log(SF_LOG_INFO, w.component, "left: %" PRIu64 " jobs done, %" PRIu64 " failed", w.jobs_done, w.jobs_failed);
stop_pool:
    if (w.pool_started)
        s_pool_stop(&w.pool);
    for (size_t i = 0; i < w.n_entries; i++)
        s_entry_free(w.entries[i]);
    sf_free(w.entries);
    sf_free(w.held);
close_socket:
    cache_part_abort(&w.part);
    cache_destroy(&w.cache);
    sf_pathmap_destroy(&w.ship_roots);
    if (w.sock)
        zmq_close(w.sock);
    if (own_ctx)
        zmq_ctx_term(ctx);
    return rc;
}
