/* wire.c -- the wire protocol: sf_wire_msg_t <-> one protobuf Envelope.
 *
 * The only file that includes the generated stemfarm.pb-c.h. Decoding is the
 * trust boundary of the farm, so it runs in three passes:
 *
 *   1. a raw scan of the envelope's top-level fields (never allocates) that
 *      finds the protocol version -- checked before anything else -- and the
 *      body, which must occur exactly once, and that checks every string
 *      field of the body for its length and for NUL bytes, which protobuf-c
 *      would silently cut a C string at;
 *   2. protobuf-c unpacks, through sf_malloc so failure injection reaches it;
 *   3. the unpacked values are range-checked by s_check, the same function
 *      that sf_wire_encode runs, so a bug never puts a message on the wire
 *      that the other side would refuse.
 *
 * Invariants: a decoded message points only into its owned_ block (the
 * unpacked envelope, plus an aligned copy of the pcm when protobuf-c's copy
 * is not 4-byte aligned); a failed decode leaves nothing to free.
 */
#include "sf/wire.h"

#include "sf/alloc.h"
#include "stemfarm.pb-c.h"

#include <assert.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define S_BIG_ENDIAN 1
#else
#define S_BIG_ENDIAN 0
#endif

/* Top-level field numbers of the Envelope. */
enum { S_FIELD_VERSION = 1, S_FIELD_BODY_FIRST = 10, S_FIELD_BODY_LAST = 29 };

typedef struct {
    Stemfarm__Envelope *env; /* unpacked envelope */
    float *pcm_copy;         /* aligned copy of result.pcm, or NULL */
    void *list;              /* the C view of a repeated field (heartbeat jobs, status renders) */
    void *list2;             /* status nodes */
} s_owned_t;

/* SessionData.media and its fields, for the nested scan. */
enum { S_FIELD_SESSION_MEDIA = 5, S_FIELD_MEDIA_NAME = 1 };

/* ---- names ----------------------------------------------------------- */

const char *sf_wire_kind_name(sf_wire_kind_t kind)
{
    switch (kind) {
    case SF_WIRE_HELLO: return "hello";
    case SF_WIRE_WELCOME: return "welcome";
    case SF_WIRE_CREDIT: return "credit";
    case SF_WIRE_SESSION: return "session";
    case SF_WIRE_JOB: return "job";
    case SF_WIRE_RESULT: return "result";
    case SF_WIRE_JOB_ERROR: return "job_error";
    case SF_WIRE_HEARTBEAT: return "heartbeat";
    case SF_WIRE_BYE: return "bye";
    case SF_WIRE_SUBMIT: return "submit";
    case SF_WIRE_PROGRESS: return "progress";
    case SF_WIRE_DONE: return "done";
    case SF_WIRE_SHUTDOWN: return "shutdown";
    case SF_WIRE_CANCEL: return "cancel";
    case SF_WIRE_STATUS_REQUEST: return "status_request";
    case SF_WIRE_STATUS: return "status";
    case SF_WIRE_RESET: return "reset";
    case SF_WIRE_FETCH: return "fetch";
    case SF_WIRE_FETCH_DATA: return "fetch_data";
    case SF_WIRE_FETCH_ERROR: return "fetch_error";
    }
    return "unknown";
}

/* The kinds are declared in the order of the Envelope's body fields 10..29. */
static sf_wire_kind_t s_kind_of_field(uint32_t field) { return (sf_wire_kind_t)(field - S_FIELD_BODY_FIRST + 1); }

static const ProtobufCMessageDescriptor *s_body_descriptor(sf_wire_kind_t kind)
{
    switch (kind) {
    case SF_WIRE_HELLO: return &stemfarm__hello__descriptor;
    case SF_WIRE_WELCOME: return &stemfarm__welcome__descriptor;
    case SF_WIRE_CREDIT: return &stemfarm__credit__descriptor;
    case SF_WIRE_SESSION: return &stemfarm__session_data__descriptor;
    case SF_WIRE_JOB: return &stemfarm__job__descriptor;
    case SF_WIRE_RESULT: return &stemfarm__result__descriptor;
    case SF_WIRE_JOB_ERROR: return &stemfarm__job_error__descriptor;
    case SF_WIRE_HEARTBEAT: return &stemfarm__heartbeat__descriptor;
    case SF_WIRE_BYE: return &stemfarm__bye__descriptor;
    case SF_WIRE_SUBMIT: return &stemfarm__submit__descriptor;
    case SF_WIRE_PROGRESS: return &stemfarm__progress__descriptor;
    case SF_WIRE_DONE: return &stemfarm__done__descriptor;
    case SF_WIRE_SHUTDOWN: return &stemfarm__shutdown__descriptor;
    case SF_WIRE_CANCEL: return &stemfarm__cancel__descriptor;
    case SF_WIRE_STATUS_REQUEST: return &stemfarm__status_request__descriptor;
    case SF_WIRE_STATUS: return &stemfarm__status__descriptor;
    case SF_WIRE_RESET: return &stemfarm__reset__descriptor;
    case SF_WIRE_FETCH: return &stemfarm__fetch__descriptor;
    case SF_WIRE_FETCH_DATA: return &stemfarm__fetch_data__descriptor;
    case SF_WIRE_FETCH_ERROR: return &stemfarm__fetch_error__descriptor;
    }
    return NULL;
}

const char *sf_wire_simd_level(void)
{
    /* What the build was compiled for AND what this CPU runs: a binary built
     * for SSE2 reports sse2 even on an AVX2 machine. */
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
#if defined(__AVX2__)
    if (__builtin_cpu_supports("avx2"))
        return "avx2";
#endif
#if defined(__SSE2__)
    if (__builtin_cpu_supports("sse2"))
        return "sse2";
#endif
#elif defined(__ARM_NEON)
    return "neon";
#endif
    return "scalar";
}

/* ---- text rules ------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
static size_t s_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

typedef enum {
    S_TEXT_NAME, /* UTF-8, no control characters at all */
    S_TEXT_FREE, /* UTF-8, tab and newline allowed */
    S_TEXT_PATH, /* any bytes but NUL */
} s_text_class_t;

static int s_forbidden_control(unsigned char c, s_text_class_t cls)
{
    if (c == 0x7f)
        return 1;
    if (c >= 0x20)
        return 0;
    return cls == S_TEXT_NAME || (c != '\t' && c != '\n');
}

void sf_wire_text_sanitize(char *s)
{
    if (!s)
        return;
    size_t n = strnlen(s, SF_WIRE_MAX_TEXT);
    s[n] = '\0';
    unsigned char *u = (unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = s_utf8_seq(u + i, n - i);
        if (len == 0) {
            u[i++] = '?';
            continue;
        }
        if (len == 1 && s_forbidden_control(u[i], S_TEXT_FREE))
            u[i] = ' ';
        i += len;
    }
}

/* Checks one string field against its class and length bounds. */
static sf_rc s_check_text(sf_rc code, const char *kind, const char *field, const char *s, size_t min_len,
                          size_t max_len, s_text_class_t cls, sf_err_t *err)
{
    if (!s)
        s = "";
    size_t n = strnlen(s, max_len + 1);
    if (n > max_len)
        return SF_ERR(err, code, "%s: %s is longer than %zu bytes", kind, field, max_len);
    if (n < min_len)
        return SF_ERR(err, code, "%s: %s is empty", kind, field);
    if (cls == S_TEXT_PATH)
        return SF_OK;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = s_utf8_seq(u + i, n - i);
        if (len == 0)
            return SF_ERR(err, code, "%s: %s is not valid UTF-8 (byte %zu)", kind, field, i);
        if (len == 1 && s_forbidden_control(u[i], cls))
            return SF_ERR(err, code, "%s: %s contains control character 0x%02x", kind, field, u[i]);
        i += len;
    }
    return SF_OK;
}

static sf_rc s_check_path(sf_rc code, const char *kind, const char *field, const char *s, int required, int absolute,
                          sf_err_t *err)
{
    sf_rc rc = s_check_text(code, kind, field, s, required ? 1 : 0, SF_WIRE_MAX_TEXT, S_TEXT_PATH, err);
    if (rc)
        return rc;
    if (absolute && s && s[0] && s[0] != '/')
        return SF_ERR(err, code, "%s: %s '%s' is not absolute", kind, field, s);
    return SF_OK;
}

static sf_rc s_check_range(sf_rc code, const char *kind, const char *field, uint64_t v, uint64_t lo, uint64_t hi,
                           sf_err_t *err)
{
    if (v < lo || v > hi)
        return SF_ERR(err, code, "%s: %s %" PRIu64 " out of range %" PRIu64 "..%" PRIu64, kind, field, v, lo, hi);
    return SF_OK;
}

static sf_rc s_check_hash(sf_rc code, const char *kind, const uint8_t *hash, size_t n_bytes, sf_err_t *err)
{
    if (!hash || n_bytes != 32)
        return SF_ERR(err, code, "%s: session_hash has %zu bytes, expected 32", kind, hash ? n_bytes : 0);
    return SF_OK;
}

static sf_rc s_check_yaml(sf_rc code, const char *kind, const uint8_t *yaml, size_t n_bytes, sf_err_t *err)
{
    if (!yaml || n_bytes == 0)
        return SF_ERR(err, code, "%s: yaml is empty", kind);
    if (n_bytes > SF_WIRE_MAX_YAML_BYTES)
        return SF_ERR(err, code, "%s: yaml has %zu bytes, more than %u", kind, n_bytes,
                      (unsigned)SF_WIRE_MAX_YAML_BYTES);
    return SF_OK;
}

/* ---- the range check shared by encode and decode --------------------- */

/* Each kind's rules; `code` is SF_E_INPUT when encoding, SF_E_PROTO when decoding.
 * The macros keep each rule on one line. */
#define S_TRY(expr)                                                                                                    \
    do {                                                                                                               \
        sf_rc rc_ = (expr);                                                                                            \
        if (rc_)                                                                                                       \
            return rc_;                                                                                                \
    } while (0)
#define S_RANGE(field, v, lo, hi)       S_TRY(s_check_range(code, k, field, (uint64_t)(v), lo, hi, err))
#define S_TEXT(field, s, min, max, cls) S_TRY(s_check_text(code, k, field, s, min, max, cls, err))
#define S_MAX_PROGRESS_FRAMES           (1ull << 62)

static sf_rc s_check_job(sf_rc code, const char *k, const sf_wire_msg_t *m, sf_err_t *err)
{
    S_TRY(s_check_hash(code, k, m->u.job.session_hash, 32, err));
    S_RANGE("target_kind", m->u.job.target_kind, 0, 3);
    S_RANGE("n_frames", m->u.job.n_frames, 1, SF_WIRE_MAX_FRAMES);
    S_RANGE("preroll_frames", m->u.job.preroll_frames, 0, SF_WIRE_MAX_PREROLL_FRAMES);
    int64_t start = m->u.job.start_frame;
    if (start < -SF_WIRE_MAX_TIMELINE_FRAME || start > SF_WIRE_MAX_TIMELINE_FRAME)
        return SF_ERR(err, code, "job: start_frame %" PRId64 " out of range -%lld..%lld", start,
                      SF_WIRE_MAX_TIMELINE_FRAME, SF_WIRE_MAX_TIMELINE_FRAME);
    return SF_OK;
}

static sf_rc s_check_result(sf_rc code, const char *k, const sf_wire_msg_t *m, sf_err_t *err)
{
    if (S_BIG_ENDIAN)
        return SF_ERR(err, code, "result: float32 little-endian pcm is not supported on a big-endian host");
    S_RANGE("n_channels", m->u.result.n_channels, 1, SF_WIRE_MAX_CHANNELS);
    S_RANGE("n_frames", m->u.result.n_frames, 1, SF_WIRE_MAX_FRAMES);
    /* No overflow: 8 channels x 2^27 frames x 4 bytes fits in 64 bits. */
    uint64_t expect = (uint64_t)m->u.result.n_channels * m->u.result.n_frames * 4u;
    if (m->u.result.n_pcm_bytes != expect)
        return SF_ERR(err, code,
                      "result: pcm has %zu bytes, expected %" PRIu64 " (%" PRIu32 " channels x %" PRIu64 " frames x 4)",
                      m->u.result.n_pcm_bytes, expect, m->u.result.n_channels, m->u.result.n_frames);
    if (!m->u.result.pcm)
        return SF_ERR(err, code, "result: pcm is missing");
    return SF_OK;
}

static sf_rc s_check_media(sf_rc code, const char *k, const sf_wire_msg_t *m, sf_err_t *err)
{
    S_RANGE("media", m->u.session.n_media, 0, SF_WIRE_MAX_LIST);
    for (size_t i = 0; i < m->u.session.n_media; i++) {
        const sf_wire_media_t *f = &m->u.session.media[i];
        S_TRY(s_check_path(code, k, "media name", f->name, 1, 0, err));
        if (!f->sha256)
            return SF_ERR(err, code, "%s: media %zu has no 32-byte sha256", k, i);
        S_RANGE("media size", f->n_bytes, 1, SF_WIRE_MAX_FILE_BYTES);
    }
    return SF_OK;
}

/* What fetch, fetch_data and fetch_error share: the session, the file, the offset. */
static sf_rc s_check_fetch_place(sf_rc code, const char *k, const uint8_t *session_hash, uint32_t index,
                                 uint64_t offset, sf_err_t *err)
{
    S_TRY(s_check_hash(code, k, session_hash, 32, err));
    S_RANGE("index", index, 0, SF_WIRE_MAX_LIST - 1);
    S_RANGE("offset", offset, 0, SF_WIRE_MAX_FILE_BYTES);
    return SF_OK;
}

static sf_rc s_check_status(sf_rc code, const char *k, const sf_wire_msg_t *m, sf_err_t *err)
{
    S_RANGE("renders", m->u.status.n_renders, 0, SF_WIRE_MAX_LIST);
    S_RANGE("nodes", m->u.status.n_nodes, 0, SF_WIRE_MAX_LIST);
    for (size_t i = 0; i < m->u.status.n_renders; i++) {
        const sf_wire_render_info_t *r = &m->u.status.renders[i];
        S_TEXT("session_name", r->session_name, 0, SF_WIRE_MAX_TEXT, S_TEXT_FREE);
        S_TRY(s_check_path(code, k, "session_path", r->session_path, 0, 0, err));
        S_RANGE("priority", (uint64_t)((int64_t)r->priority + SF_WIRE_MAX_PRIORITY), 0, 2 * SF_WIRE_MAX_PRIORITY);
        S_RANGE("jobs_done", r->jobs_done, 0, r->jobs_total);
    }
    for (size_t i = 0; i < m->u.status.n_nodes; i++) {
        S_TEXT("name", m->u.status.nodes[i].name, 1, SF_WIRE_MAX_NAME, S_TEXT_NAME);
        S_TEXT("state", m->u.status.nodes[i].state, 0, SF_WIRE_MAX_NAME, S_TEXT_NAME);
    }
    return SF_OK;
}

static sf_rc s_check(sf_rc code, const sf_wire_msg_t *m, sf_err_t *err)
{
    const char *k = sf_wire_kind_name(m->kind);
    switch (m->kind) {
    case SF_WIRE_HELLO:
        S_TEXT("node_name", m->u.hello.node_name, 1, SF_WIRE_MAX_NAME, S_TEXT_NAME);
        S_RANGE("cores", m->u.hello.cores, 1, SF_WIRE_MAX_CORES);
        S_RANGE("threads", m->u.hello.threads, 1, SF_WIRE_MAX_THREADS);
        S_RANGE("slots", m->u.hello.slots, 1, SF_WIRE_MAX_SLOTS);
        S_TEXT("simd", m->u.hello.simd, 1, SF_WIRE_MAX_NAME, S_TEXT_NAME);
        return SF_OK;
    case SF_WIRE_WELCOME:
        S_RANGE("heartbeat_ms", m->u.welcome.heartbeat_ms, 1, SF_WIRE_MAX_HEARTBEAT_MS);
        S_RANGE("max_message_bytes", m->u.welcome.max_message_bytes, 0, SF_WIRE_MAX_MESSAGE_BYTES);
        return SF_OK;
    case SF_WIRE_CREDIT: S_RANGE("n_jobs", m->u.credit.n_jobs, 0, SF_WIRE_MAX_SLOTS); return SF_OK;
    case SF_WIRE_SESSION:
        S_TRY(s_check_hash(code, k, m->u.session.session_hash, 32, err));
        S_TRY(s_check_path(code, k, "path", m->u.session.path, 1, 0, err));
        S_TRY(s_check_path(code, k, "base_dir", m->u.session.base_dir, 0, 1, err));
        S_TRY(s_check_media(code, k, m, err));
        return s_check_yaml(code, k, m->u.session.yaml, m->u.session.n_yaml_bytes, err);
    case SF_WIRE_JOB: return s_check_job(code, k, m, err);
    case SF_WIRE_RESULT: return s_check_result(code, k, m, err);
    case SF_WIRE_JOB_ERROR: S_TEXT("message", m->u.job_error.message, 1, SF_WIRE_MAX_TEXT, S_TEXT_FREE); return SF_OK;
    case SF_WIRE_HEARTBEAT:
        S_RANGE("jobs_running", m->u.heartbeat.jobs_running, 0, SF_WIRE_MAX_SLOTS);
        S_RANGE("jobs", m->u.heartbeat.n_jobs, 0, SF_WIRE_MAX_SLOTS);
        for (size_t i = 0; i < m->u.heartbeat.n_jobs; i++) {
            S_RANGE("frames_total", m->u.heartbeat.jobs[i].frames_total, 0, S_MAX_PROGRESS_FRAMES);
            S_RANGE("frames_done", m->u.heartbeat.jobs[i].frames_done, 0, m->u.heartbeat.jobs[i].frames_total);
        }
        return SF_OK;
    case SF_WIRE_BYE: S_TEXT("reason", m->u.bye.reason, 0, SF_WIRE_MAX_TEXT, S_TEXT_FREE); return SF_OK;
    case SF_WIRE_SUBMIT:
        S_TRY(s_check_path(code, k, "session_path", m->u.submit.session_path, 1, 1, err));
        S_TRY(s_check_yaml(code, k, m->u.submit.yaml, m->u.submit.n_yaml_bytes, err));
        S_TRY(s_check_path(code, k, "out_dir", m->u.submit.out_dir, 0, 1, err));
        S_RANGE("segment_frames", m->u.submit.segment_frames, 0, SF_WIRE_MAX_FRAMES);
        S_TEXT("profile", m->u.submit.profile, 0, SF_WIRE_MAX_NAME, S_TEXT_NAME);
        S_RANGE("priority", (uint64_t)((int64_t)m->u.submit.priority + SF_WIRE_MAX_PRIORITY), 0,
                2 * SF_WIRE_MAX_PRIORITY); /* shifted: -100..100 as 0..200 */
        return SF_OK;
    case SF_WIRE_PROGRESS:
        if (m->u.progress.jobs_done > m->u.progress.jobs_total)
            return SF_ERR(err, code, "progress: jobs_done %" PRIu64 " exceeds jobs_total %" PRIu64,
                          m->u.progress.jobs_done, m->u.progress.jobs_total);
        S_TEXT("event", m->u.progress.event, 0, SF_WIRE_MAX_TEXT, S_TEXT_FREE);
        return SF_OK;
    case SF_WIRE_DONE:
        S_RANGE("exit_code", m->u.done.exit_code, 0, 255);
        S_TEXT("message", m->u.done.message, 0, SF_WIRE_MAX_TEXT, S_TEXT_FREE);
        S_TRY(s_check_path(code, k, "manifest_path", m->u.done.manifest_path, 0, 0, err));
        return SF_OK;
    case SF_WIRE_SHUTDOWN: S_TEXT("reason", m->u.shutdown.reason, 0, SF_WIRE_MAX_TEXT, S_TEXT_FREE); return SF_OK;
    case SF_WIRE_CANCEL: S_RANGE("render_id", m->u.cancel.render_id, 1, UINT32_MAX); return SF_OK;
    case SF_WIRE_STATUS_REQUEST: return SF_OK;
    case SF_WIRE_STATUS: return s_check_status(code, k, m, err);
    case SF_WIRE_RESET: S_TEXT("reason", m->u.reset.reason, 0, SF_WIRE_MAX_TEXT, S_TEXT_FREE); return SF_OK;
    case SF_WIRE_FETCH:
        S_TRY(s_check_fetch_place(code, k, m->u.fetch.session_hash, m->u.fetch.index, m->u.fetch.offset, err));
        if (!m->u.fetch.sha256)
            return SF_ERR(err, code, "fetch: sha256 must have 32 bytes");
        S_RANGE("length", m->u.fetch.n_bytes, 1, SF_WIRE_MAX_FETCH_BYTES);
        return SF_OK;
    case SF_WIRE_FETCH_DATA:
        S_TRY(s_check_fetch_place(code, k, m->u.fetch_data.session_hash, m->u.fetch_data.index, m->u.fetch_data.offset,
                                  err));
        if (!m->u.fetch_data.data)
            return SF_ERR(err, code, "fetch_data: data is empty");
        S_RANGE("data bytes", m->u.fetch_data.n_bytes, 1, SF_WIRE_MAX_FETCH_BYTES);
        return SF_OK;
    case SF_WIRE_FETCH_ERROR:
        S_TRY(s_check_fetch_place(code, k, m->u.fetch_error.session_hash, m->u.fetch_error.index,
                                  m->u.fetch_error.offset, err));
        S_TEXT("message", m->u.fetch_error.message, 1, SF_WIRE_MAX_TEXT, S_TEXT_FREE);
        return SF_OK;
    }
    return SF_ERR(err, code, "envelope: unknown message kind %d", (int)m->kind);
}

#undef S_TEXT
#undef S_RANGE

/* ---- protobuf-c through sf_malloc -------------------------------------- */

typedef struct {
    int failed; /* an allocation returned NULL */
} s_pb_state_t;

static void *s_pb_alloc(void *data, size_t n_bytes)
{
    void *p = sf_malloc(n_bytes);
    if (!p && data)
        ((s_pb_state_t *)data)->failed = 1;
    return p;
}

static void s_pb_free(void *data, void *p)
{
    (void)data;
    sf_free(p);
}

static ProtobufCAllocator s_pb_allocator(s_pb_state_t *state)
{
    ProtobufCAllocator a = {.alloc = s_pb_alloc, .free = s_pb_free, .allocator_data = state};
    return a;
}

/* ---- encode ----------------------------------------------------------- */

static char *s_str(const char *s) { return (char *)(s ? s : ""); }

static ProtobufCBinaryData s_bin(const void *data, size_t n_bytes)
{
    ProtobufCBinaryData b = {.len = data ? n_bytes : 0, .data = (uint8_t *)data};
    return b;
}

/* Every body message, so one stack frame holds whichever the envelope needs. */
typedef union {
    Stemfarm__Hello hello;
    Stemfarm__Welcome welcome;
    Stemfarm__Credit credit;
    Stemfarm__SessionData session;
    Stemfarm__Job job;
    Stemfarm__Result result;
    Stemfarm__JobError job_error;
    Stemfarm__Heartbeat heartbeat;
    Stemfarm__Bye bye;
    Stemfarm__Submit submit;
    Stemfarm__Progress progress;
    Stemfarm__Done done;
    Stemfarm__Shutdown shutdown;
    Stemfarm__Cancel cancel;
    Stemfarm__StatusRequest status_request;
    Stemfarm__Status status;
    Stemfarm__Reset reset;
    Stemfarm__Fetch fetch;
    Stemfarm__FetchData fetch_data;
    Stemfarm__FetchError fetch_error;
} s_body_t;

/* The repeated parts of a body: arrays of messages and of pointers to them,
 * built for one encode (sf_malloc'd, freed by s_lists_free). */
typedef struct {
    Stemfarm__JobProgress *jobs;
    Stemfarm__JobProgress **job_ptrs;
    Stemfarm__RenderInfo *renders;
    Stemfarm__RenderInfo **render_ptrs;
    Stemfarm__NodeInfo *nodes;
    Stemfarm__NodeInfo **node_ptrs;
    Stemfarm__MediaFile *media;
    Stemfarm__MediaFile **media_ptrs;
} s_lists_t;

static void s_lists_free(s_lists_t *l)
{
    sf_free(l->jobs);
    sf_free(l->job_ptrs);
    sf_free(l->renders);
    sf_free(l->render_ptrs);
    sf_free(l->nodes);
    sf_free(l->node_ptrs);
    sf_free(l->media);
    sf_free(l->media_ptrs);
}

/* Allocates the lists m needs; false when out of memory. */
static bool s_lists_fill(const sf_wire_msg_t *m, s_lists_t *l)
{
    memset(l, 0, sizeof *l);
    if (m->kind == SF_WIRE_HEARTBEAT && m->u.heartbeat.n_jobs) {
        size_t n = m->u.heartbeat.n_jobs;
        l->jobs = sf_calloc(n, sizeof *l->jobs);
        l->job_ptrs = sf_calloc(n, sizeof *l->job_ptrs);
        if (!l->jobs || !l->job_ptrs)
            return false;
        for (size_t i = 0; i < n; i++) {
            const sf_wire_job_progress_t *j = &m->u.heartbeat.jobs[i];
            stemfarm__job_progress__init(&l->jobs[i]);
            l->jobs[i].job_id = j->job_id;
            l->jobs[i].attempt = j->attempt;
            l->jobs[i].frames_done = j->frames_done;
            l->jobs[i].frames_total = j->frames_total;
            l->job_ptrs[i] = &l->jobs[i];
        }
    }
    if (m->kind == SF_WIRE_STATUS && m->u.status.n_renders) {
        size_t n = m->u.status.n_renders;
        l->renders = sf_calloc(n, sizeof *l->renders);
        l->render_ptrs = sf_calloc(n, sizeof *l->render_ptrs);
        if (!l->renders || !l->render_ptrs)
            return false;
        for (size_t i = 0; i < n; i++) {
            const sf_wire_render_info_t *r = &m->u.status.renders[i];
            Stemfarm__RenderInfo *o = &l->renders[i];
            stemfarm__render_info__init(o);
            o->render_id = r->render_id;
            o->session_name = s_str(r->session_name);
            o->session_path = s_str(r->session_path);
            o->priority = r->priority;
            o->jobs_done = r->jobs_done;
            o->jobs_total = r->jobs_total;
            o->jobs_running = r->jobs_running;
            o->elapsed_ms = r->elapsed_ms;
            l->render_ptrs[i] = o;
        }
    }
    if (m->kind == SF_WIRE_SESSION && m->u.session.n_media) {
        size_t n = m->u.session.n_media;
        l->media = sf_calloc(n, sizeof *l->media);
        l->media_ptrs = sf_calloc(n, sizeof *l->media_ptrs);
        if (!l->media || !l->media_ptrs)
            return false;
        for (size_t i = 0; i < n; i++) {
            const sf_wire_media_t *f = &m->u.session.media[i];
            Stemfarm__MediaFile *o = &l->media[i];
            stemfarm__media_file__init(o);
            o->name = s_str(f->name);
            o->sha256 = s_bin(f->sha256, 32);
            o->size = f->n_bytes;
            l->media_ptrs[i] = o;
        }
    }
    if (m->kind == SF_WIRE_STATUS && m->u.status.n_nodes) {
        size_t n = m->u.status.n_nodes;
        l->nodes = sf_calloc(n, sizeof *l->nodes);
        l->node_ptrs = sf_calloc(n, sizeof *l->node_ptrs);
        if (!l->nodes || !l->node_ptrs)
            return false;
        for (size_t i = 0; i < n; i++) {
            const sf_wire_node_info_t *nd = &m->u.status.nodes[i];
            Stemfarm__NodeInfo *o = &l->nodes[i];
            stemfarm__node_info__init(o);
            o->name = s_str(nd->name);
            o->state = s_str(nd->state);
            o->slots = nd->slots;
            o->jobs_running = nd->jobs_running;
            o->jobs_done = nd->jobs_done;
            o->failures = nd->failures;
            o->last_seen_ms = nd->last_seen_ms;
            l->node_ptrs[i] = o;
        }
    }
    return true;
}

/* Points env at a body filled from m (no copies: m's memory is borrowed). */
static void s_fill_envelope(const sf_wire_msg_t *m, Stemfarm__Envelope *env, s_body_t *b, const s_lists_t *l)
{
    stemfarm__envelope__init(env);
    env->version = SF_WIRE_VERSION;
    switch (m->kind) {
    case SF_WIRE_HELLO:
        stemfarm__hello__init(&b->hello);
        b->hello.node_name = s_str(m->u.hello.node_name);
        b->hello.cores = m->u.hello.cores;
        b->hello.threads = m->u.hello.threads;
        b->hello.slots = m->u.hello.slots;
        b->hello.simd = s_str(m->u.hello.simd);
        b->hello.ship_media = m->u.hello.ship_media;
        env->body_case = STEMFARM__ENVELOPE__BODY_HELLO;
        env->hello = &b->hello;
        break;
    case SF_WIRE_WELCOME:
        stemfarm__welcome__init(&b->welcome);
        b->welcome.node_id = m->u.welcome.node_id;
        b->welcome.heartbeat_ms = m->u.welcome.heartbeat_ms;
        b->welcome.max_message_bytes = m->u.welcome.max_message_bytes;
        env->body_case = STEMFARM__ENVELOPE__BODY_WELCOME;
        env->welcome = &b->welcome;
        break;
    case SF_WIRE_CREDIT:
        stemfarm__credit__init(&b->credit);
        b->credit.n_jobs = m->u.credit.n_jobs;
        env->body_case = STEMFARM__ENVELOPE__BODY_CREDIT;
        env->credit = &b->credit;
        break;
    case SF_WIRE_SESSION:
        stemfarm__session_data__init(&b->session);
        b->session.session_hash = s_bin(m->u.session.session_hash, 32);
        b->session.path = s_str(m->u.session.path);
        b->session.base_dir = s_str(m->u.session.base_dir);
        b->session.yaml = s_bin(m->u.session.yaml, m->u.session.n_yaml_bytes);
        b->session.n_media = m->u.session.n_media;
        b->session.media = l->media_ptrs;
        env->body_case = STEMFARM__ENVELOPE__BODY_SESSION;
        env->session = &b->session;
        break;
    case SF_WIRE_JOB:
        stemfarm__job__init(&b->job);
        b->job.job_id = m->u.job.job_id;
        b->job.session_hash = s_bin(m->u.job.session_hash, 32);
        b->job.target_kind = m->u.job.target_kind;
        b->job.target_index = m->u.job.target_index;
        b->job.start_frame = m->u.job.start_frame;
        b->job.n_frames = m->u.job.n_frames;
        b->job.preroll_frames = m->u.job.preroll_frames;
        b->job.attempt = m->u.job.attempt;
        env->body_case = STEMFARM__ENVELOPE__BODY_JOB;
        env->job = &b->job;
        break;
    case SF_WIRE_RESULT:
        stemfarm__result__init(&b->result);
        b->result.job_id = m->u.result.job_id;
        b->result.attempt = m->u.result.attempt;
        b->result.n_channels = m->u.result.n_channels;
        b->result.n_frames = m->u.result.n_frames;
        b->result.pcm = s_bin(m->u.result.pcm, m->u.result.n_pcm_bytes);
        b->result.xxh3 = m->u.result.xxh3;
        b->result.render_ns = m->u.result.render_ns;
        env->body_case = STEMFARM__ENVELOPE__BODY_RESULT;
        env->result = &b->result;
        break;
    case SF_WIRE_JOB_ERROR:
        stemfarm__job_error__init(&b->job_error);
        b->job_error.job_id = m->u.job_error.job_id;
        b->job_error.attempt = m->u.job_error.attempt;
        b->job_error.message = s_str(m->u.job_error.message);
        env->body_case = STEMFARM__ENVELOPE__BODY_JOB_ERROR;
        env->job_error = &b->job_error;
        break;
    case SF_WIRE_HEARTBEAT:
        stemfarm__heartbeat__init(&b->heartbeat);
        b->heartbeat.jobs_running = m->u.heartbeat.jobs_running;
        b->heartbeat.n_jobs = m->u.heartbeat.n_jobs;
        b->heartbeat.jobs = l->job_ptrs;
        env->body_case = STEMFARM__ENVELOPE__BODY_HEARTBEAT;
        env->heartbeat = &b->heartbeat;
        break;
    case SF_WIRE_BYE:
        stemfarm__bye__init(&b->bye);
        b->bye.reason = s_str(m->u.bye.reason);
        env->body_case = STEMFARM__ENVELOPE__BODY_BYE;
        env->bye = &b->bye;
        break;
    case SF_WIRE_SUBMIT:
        stemfarm__submit__init(&b->submit);
        b->submit.session_path = s_str(m->u.submit.session_path);
        b->submit.yaml = s_bin(m->u.submit.yaml, m->u.submit.n_yaml_bytes);
        b->submit.out_dir = s_str(m->u.submit.out_dir);
        b->submit.segment_frames = m->u.submit.segment_frames;
        b->submit.force = m->u.submit.force;
        b->submit.profile = s_str(m->u.submit.profile);
        b->submit.priority = m->u.submit.priority;
        env->body_case = STEMFARM__ENVELOPE__BODY_SUBMIT;
        env->submit = &b->submit;
        break;
    case SF_WIRE_PROGRESS:
        stemfarm__progress__init(&b->progress);
        b->progress.jobs_done = m->u.progress.jobs_done;
        b->progress.jobs_total = m->u.progress.jobs_total;
        b->progress.nodes = m->u.progress.nodes;
        b->progress.event = s_str(m->u.progress.event);
        env->body_case = STEMFARM__ENVELOPE__BODY_PROGRESS;
        env->progress = &b->progress;
        break;
    case SF_WIRE_DONE:
        stemfarm__done__init(&b->done);
        b->done.exit_code = m->u.done.exit_code;
        b->done.message = s_str(m->u.done.message);
        b->done.manifest_path = s_str(m->u.done.manifest_path);
        env->body_case = STEMFARM__ENVELOPE__BODY_DONE;
        env->done = &b->done;
        break;
    case SF_WIRE_SHUTDOWN:
        stemfarm__shutdown__init(&b->shutdown);
        b->shutdown.reason = s_str(m->u.shutdown.reason);
        env->body_case = STEMFARM__ENVELOPE__BODY_SHUTDOWN;
        env->shutdown = &b->shutdown;
        break;
    case SF_WIRE_CANCEL:
        stemfarm__cancel__init(&b->cancel);
        b->cancel.render_id = m->u.cancel.render_id;
        env->body_case = STEMFARM__ENVELOPE__BODY_CANCEL;
        env->cancel = &b->cancel;
        break;
    case SF_WIRE_STATUS_REQUEST:
        stemfarm__status_request__init(&b->status_request);
        env->body_case = STEMFARM__ENVELOPE__BODY_STATUS_REQUEST;
        env->status_request = &b->status_request;
        break;
    case SF_WIRE_STATUS:
        stemfarm__status__init(&b->status);
        b->status.n_renders = m->u.status.n_renders;
        b->status.renders = l->render_ptrs;
        b->status.n_nodes = m->u.status.n_nodes;
        b->status.nodes = l->node_ptrs;
        b->status.draining = m->u.status.draining;
        env->body_case = STEMFARM__ENVELOPE__BODY_STATUS;
        env->status = &b->status;
        break;
    case SF_WIRE_RESET:
        stemfarm__reset__init(&b->reset);
        b->reset.reason = s_str(m->u.reset.reason);
        env->body_case = STEMFARM__ENVELOPE__BODY_RESET;
        env->reset = &b->reset;
        break;
    case SF_WIRE_FETCH:
        stemfarm__fetch__init(&b->fetch);
        b->fetch.session_hash = s_bin(m->u.fetch.session_hash, 32);
        b->fetch.index = m->u.fetch.index;
        b->fetch.sha256 = s_bin(m->u.fetch.sha256, 32);
        b->fetch.offset = m->u.fetch.offset;
        b->fetch.length = m->u.fetch.n_bytes;
        env->body_case = STEMFARM__ENVELOPE__BODY_FETCH;
        env->fetch = &b->fetch;
        break;
    case SF_WIRE_FETCH_DATA:
        stemfarm__fetch_data__init(&b->fetch_data);
        b->fetch_data.session_hash = s_bin(m->u.fetch_data.session_hash, 32);
        b->fetch_data.index = m->u.fetch_data.index;
        b->fetch_data.offset = m->u.fetch_data.offset;
        b->fetch_data.data = s_bin(m->u.fetch_data.data, m->u.fetch_data.n_bytes);
        env->body_case = STEMFARM__ENVELOPE__BODY_FETCH_DATA;
        env->fetch_data = &b->fetch_data;
        break;
    case SF_WIRE_FETCH_ERROR:
        stemfarm__fetch_error__init(&b->fetch_error);
        b->fetch_error.session_hash = s_bin(m->u.fetch_error.session_hash, 32);
        b->fetch_error.index = m->u.fetch_error.index;
        b->fetch_error.offset = m->u.fetch_error.offset;
        b->fetch_error.message = s_str(m->u.fetch_error.message);
        env->body_case = STEMFARM__ENVELOPE__BODY_FETCH_ERROR;
        env->fetch_error = &b->fetch_error;
        break;
    }
}

sf_rc sf_wire_encode(const sf_wire_msg_t *msg, uint8_t **out, size_t *n_bytes, sf_err_t *err)
{
    assert(msg && out && n_bytes);
    *out = NULL;
    *n_bytes = 0;
    sf_rc rc = s_check(SF_E_INPUT, msg, err);
    if (rc)
        return rc;
    Stemfarm__Envelope env;
    s_body_t body;
    s_lists_t lists;
    if (!s_lists_fill(msg, &lists)) {
        s_lists_free(&lists);
        return SF_ERR(err, SF_E_NOMEM, "%s: out of memory encoding", sf_wire_kind_name(msg->kind));
    }
    s_fill_envelope(msg, &env, &body, &lists);
    size_t size = stemfarm__envelope__get_packed_size(&env);
    if (size > SF_WIRE_MAX_MESSAGE_BYTES) {
        s_lists_free(&lists);
        return SF_ERR(err, SF_E_INPUT, "%s: message of %zu bytes exceeds the limit of %llu bytes",
                      sf_wire_kind_name(msg->kind), size, SF_WIRE_MAX_MESSAGE_BYTES);
    }
    uint8_t *buf = sf_malloc(size);
    if (!buf) {
        s_lists_free(&lists);
        return SF_ERR(err, SF_E_NOMEM, "%s: cannot allocate %zu bytes to encode", sf_wire_kind_name(msg->kind), size);
    }
    size_t packed = stemfarm__envelope__pack(&env, buf);
    s_lists_free(&lists);
    assert(packed == size);
    *out = buf;
    *n_bytes = packed;
    return SF_OK;
}

/* ---- decode, pass 1: the raw scan --------------------------------------- */

typedef struct {
    const uint8_t *p, *end;
} s_reader_t;

/* Reads a varint; 0 on truncation or a varint longer than 64 bits. */
static int s_varint(s_reader_t *r, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return 0;
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1)
            return 0;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

typedef struct {
    uint32_t number;
    unsigned wire_type;
    uint64_t value;      /* wire type 0 */
    const uint8_t *data; /* wire type 2 */
    size_t n_bytes;      /* wire type 2 */
} s_field_t;

/* Reads one field's key and payload; 0 if malformed. */
static int s_next_field(s_reader_t *r, s_field_t *f)
{
    uint64_t key;
    if (!s_varint(r, &key))
        return 0;
    uint64_t number = key >> 3;
    if (number == 0 || number > 0x1fffffff)
        return 0;
    f->number = (uint32_t)number;
    f->wire_type = (unsigned)(key & 7);
    f->data = NULL;
    f->n_bytes = 0;
    size_t left = (size_t)(r->end - r->p);
    switch (f->wire_type) {
    case 0: return s_varint(r, &f->value);
    case 1:
        if (left < 8)
            return 0;
        r->p += 8;
        return 1;
    case 5:
        if (left < 4)
            return 0;
        r->p += 4;
        return 1;
    case 2: {
        uint64_t len;
        if (!s_varint(r, &len))
            return 0;
        left = (size_t)(r->end - r->p);
        if (len > left)
            return 0;
        f->data = r->p;
        f->n_bytes = (size_t)len;
        r->p += len;
        return 1;
    }
    default: /* groups (3, 4) do not exist in proto3; 6, 7 are invalid */ return 0;
    }
}

typedef struct {
    int version_seen;
    uint64_t version;
    int n_bodies;
    uint32_t body_field; /* of the first body */
    uint32_t other_body_field;
    const uint8_t *body;
    size_t n_body_bytes;
    int malformed;
    size_t malformed_at; /* byte offset */
} s_scan_t;

static void s_scan_envelope(const uint8_t *data, size_t n_bytes, s_scan_t *sc)
{
    memset(sc, 0, sizeof *sc);
    s_reader_t r = {data, data + n_bytes};
    while (r.p < r.end) {
        const uint8_t *at = r.p;
        s_field_t f;
        if (!s_next_field(&r, &f)) {
            sc->malformed = 1;
            sc->malformed_at = (size_t)(at - data);
            return;
        }
        if (f.number == S_FIELD_VERSION && f.wire_type == 0) {
            sc->version_seen = 1;
            sc->version = f.value;
        } else if (f.number >= S_FIELD_BODY_FIRST && f.number <= S_FIELD_BODY_LAST) {
            if (sc->n_bodies++ == 0) {
                sc->body_field = f.number;
                sc->body = f.data;
                sc->n_body_bytes = f.n_bytes;
            } else if (!sc->other_body_field) {
                sc->other_body_field = f.number;
            }
        }
    }
}

/* A MediaFile's name, which protobuf-c would cut at a NUL like a body's strings. */
static sf_rc s_scan_media(const uint8_t *data, size_t n_bytes, sf_err_t *err)
{
    s_reader_t r = {data, data + n_bytes};
    while (r.p < r.end) {
        s_field_t f;
        if (!s_next_field(&r, &f))
            return SF_ERR(err, SF_E_PROTO, "session: truncated or corrupt media entry");
        if (f.number != S_FIELD_MEDIA_NAME || f.wire_type != 2)
            continue;
        if (f.n_bytes > SF_WIRE_MAX_TEXT)
            return SF_ERR(err, SF_E_PROTO, "session: media name is longer than %d bytes", SF_WIRE_MAX_TEXT);
        if (f.n_bytes && memchr(f.data, 0, f.n_bytes))
            return SF_ERR(err, SF_E_PROTO, "session: media name contains a NUL byte");
    }
    return SF_OK;
}

/* Checks the string fields of a body for length and NUL bytes. */
static sf_rc s_scan_body(sf_wire_kind_t kind, const uint8_t *data, size_t n_bytes, sf_err_t *err)
{
    const char *k = sf_wire_kind_name(kind);
    const ProtobufCMessageDescriptor *desc = s_body_descriptor(kind);
    s_reader_t r = {data, data + n_bytes};
    size_t n_list_entries = 0;
    while (r.p < r.end) {
        s_field_t f;
        if (!s_next_field(&r, &f))
            return SF_ERR(err, SF_E_PROTO, "%s: truncated or corrupt protobuf", k);
        const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(desc, f.number);
        /* A list's entries are unpacked into memory before any check: cap
         * their number here, where nothing has been allocated yet. */
        if (fd && fd->label == PROTOBUF_C_LABEL_REPEATED && ++n_list_entries > SF_WIRE_MAX_LIST)
            return SF_ERR(err, SF_E_PROTO, "%s: %s has more than %d entries", k, fd->name, SF_WIRE_MAX_LIST);
        if (kind == SF_WIRE_SESSION && f.number == S_FIELD_SESSION_MEDIA && f.wire_type == 2) {
            sf_rc rc = s_scan_media(f.data, f.n_bytes, err);
            if (rc)
                return rc;
            continue;
        }
        if (!fd || fd->type != PROTOBUF_C_TYPE_STRING || f.wire_type != 2)
            continue;
        if (f.n_bytes > SF_WIRE_MAX_TEXT)
            return SF_ERR(err, SF_E_PROTO, "%s: %s is longer than %d bytes", k, fd->name, SF_WIRE_MAX_TEXT);
        if (f.n_bytes && memchr(f.data, 0, f.n_bytes))
            return SF_ERR(err, SF_E_PROTO, "%s: %s contains a NUL byte", k, fd->name);
    }
    return SF_OK;
}

static sf_rc s_scan_check(const uint8_t *data, size_t n_bytes, sf_wire_kind_t *kind, sf_err_t *err)
{
    s_scan_t sc;
    s_scan_envelope(data, n_bytes, &sc);
    /* The version first: a peer of another version is told so, however the
     * rest of its message looks to us. */
    if (sc.version_seen && sc.version != SF_WIRE_VERSION)
        return SF_ERR(err, SF_E_PROTO, "protocol version %" PRIu64 " is not supported (this build speaks %u)",
                      sc.version, SF_WIRE_VERSION);
    if (sc.malformed)
        return SF_ERR(err, SF_E_PROTO, "envelope: truncated or corrupt protobuf at byte %zu of %zu", sc.malformed_at,
                      n_bytes);
    if (!sc.version_seen)
        return SF_ERR(err, SF_E_PROTO, "envelope: no protocol version (not a stemfarm message?)");
    if (sc.n_bodies == 0)
        return SF_ERR(err, SF_E_PROTO, "envelope: no body");
    if (sc.n_bodies > 1) {
        if (sc.other_body_field == sc.body_field)
            return SF_ERR(err, SF_E_PROTO, "envelope: more than one body (%s twice)",
                          sf_wire_kind_name(s_kind_of_field(sc.body_field)));
        return SF_ERR(err, SF_E_PROTO, "envelope: more than one body (%s and %s)",
                      sf_wire_kind_name(s_kind_of_field(sc.body_field)),
                      sf_wire_kind_name(s_kind_of_field(sc.other_body_field)));
    }
    *kind = s_kind_of_field(sc.body_field);
    if (!sc.body)
        return SF_ERR(err, SF_E_PROTO, "envelope: %s body is not a message", sf_wire_kind_name(*kind));
    return s_scan_body(*kind, sc.body, sc.n_body_bytes, err);
}

/* ---- decode, passes 2 and 3 ------------------------------------------- */

static const char *s_cstr(const char *s) { return s ? s : ""; }

/* A hash field: its bytes when it has 32 (else NULL, and s_raw_hash_len says how many it had). */
static const uint8_t *s_hash32(ProtobufCBinaryData b) { return b.len == 32 ? b.data : NULL; }

/* Copies the unpacked body into m (pointers into env). */
static void s_from_envelope(const Stemfarm__Envelope *env, sf_wire_kind_t kind, sf_wire_msg_t *m)
{
    m->kind = kind;
    switch (kind) {
    case SF_WIRE_HELLO: {
        const Stemfarm__Hello *b = env->hello;
        m->u.hello.node_name = s_cstr(b->node_name);
        m->u.hello.cores = b->cores;
        m->u.hello.threads = b->threads;
        m->u.hello.slots = b->slots;
        m->u.hello.simd = s_cstr(b->simd);
        m->u.hello.ship_media = b->ship_media != 0;
        break;
    }
    case SF_WIRE_WELCOME:
        m->u.welcome.node_id = env->welcome->node_id;
        m->u.welcome.heartbeat_ms = env->welcome->heartbeat_ms;
        m->u.welcome.max_message_bytes = env->welcome->max_message_bytes;
        break;
    case SF_WIRE_CREDIT: m->u.credit.n_jobs = env->credit->n_jobs; break;
    case SF_WIRE_SESSION: {
        const Stemfarm__SessionData *b = env->session;
        /* A hash of the wrong length is caught by s_check: pass its length. */
        m->u.session.session_hash = b->session_hash.len == 32 ? b->session_hash.data : NULL;
        m->u.session.path = s_cstr(b->path);
        m->u.session.base_dir = s_cstr(b->base_dir);
        m->u.session.yaml = b->yaml.data;
        m->u.session.n_yaml_bytes = b->yaml.data ? b->yaml.len : 0;
        break;
    }
    case SF_WIRE_JOB: {
        const Stemfarm__Job *b = env->job;
        m->u.job.job_id = b->job_id;
        m->u.job.session_hash = b->session_hash.len == 32 ? b->session_hash.data : NULL;
        m->u.job.target_kind = b->target_kind;
        m->u.job.target_index = b->target_index;
        m->u.job.start_frame = b->start_frame;
        m->u.job.n_frames = b->n_frames;
        m->u.job.preroll_frames = b->preroll_frames;
        m->u.job.attempt = b->attempt;
        break;
    }
    case SF_WIRE_RESULT: {
        const Stemfarm__Result *b = env->result;
        m->u.result.job_id = b->job_id;
        m->u.result.attempt = b->attempt;
        m->u.result.n_channels = b->n_channels;
        m->u.result.n_frames = b->n_frames;
        m->u.result.pcm = (const float *)(const void *)b->pcm.data;
        m->u.result.n_pcm_bytes = b->pcm.data ? b->pcm.len : 0;
        m->u.result.xxh3 = b->xxh3;
        m->u.result.render_ns = b->render_ns;
        break;
    }
    case SF_WIRE_JOB_ERROR:
        m->u.job_error.job_id = env->job_error->job_id;
        m->u.job_error.attempt = env->job_error->attempt;
        m->u.job_error.message = s_cstr(env->job_error->message);
        break;
    case SF_WIRE_HEARTBEAT: m->u.heartbeat.jobs_running = env->heartbeat->jobs_running; break;
    case SF_WIRE_BYE: m->u.bye.reason = s_cstr(env->bye->reason); break;
    case SF_WIRE_SUBMIT: {
        const Stemfarm__Submit *b = env->submit;
        m->u.submit.session_path = s_cstr(b->session_path);
        m->u.submit.yaml = b->yaml.data;
        m->u.submit.n_yaml_bytes = b->yaml.data ? b->yaml.len : 0;
        m->u.submit.out_dir = s_cstr(b->out_dir);
        m->u.submit.segment_frames = b->segment_frames;
        m->u.submit.force = b->force != 0;
        m->u.submit.profile = s_cstr(b->profile);
        m->u.submit.priority = b->priority;
        break;
    }
    case SF_WIRE_PROGRESS:
        m->u.progress.jobs_done = env->progress->jobs_done;
        m->u.progress.jobs_total = env->progress->jobs_total;
        m->u.progress.nodes = env->progress->nodes;
        m->u.progress.event = s_cstr(env->progress->event);
        m->u.progress.render_id = env->progress->render_id;
        break;
    case SF_WIRE_DONE:
        m->u.done.exit_code = env->done->exit_code;
        m->u.done.message = s_cstr(env->done->message);
        m->u.done.manifest_path = s_cstr(env->done->manifest_path);
        break;
    case SF_WIRE_SHUTDOWN: m->u.shutdown.reason = s_cstr(env->shutdown->reason); break;
    case SF_WIRE_CANCEL: m->u.cancel.render_id = env->cancel->render_id; break;
    case SF_WIRE_STATUS_REQUEST: break;
    case SF_WIRE_STATUS: m->u.status.draining = env->status->draining != 0; break;
    case SF_WIRE_RESET: m->u.reset.reason = s_cstr(env->reset->reason); break;
    case SF_WIRE_FETCH: {
        const Stemfarm__Fetch *b = env->fetch;
        m->u.fetch.session_hash = s_hash32(b->session_hash);
        m->u.fetch.index = b->index;
        m->u.fetch.sha256 = s_hash32(b->sha256);
        m->u.fetch.offset = b->offset;
        m->u.fetch.n_bytes = b->length;
        break;
    }
    case SF_WIRE_FETCH_DATA: {
        const Stemfarm__FetchData *b = env->fetch_data;
        m->u.fetch_data.session_hash = s_hash32(b->session_hash);
        m->u.fetch_data.index = b->index;
        m->u.fetch_data.offset = b->offset;
        m->u.fetch_data.data = b->data.len ? b->data.data : NULL;
        m->u.fetch_data.n_bytes = b->data.data ? b->data.len : 0;
        break;
    }
    case SF_WIRE_FETCH_ERROR: {
        const Stemfarm__FetchError *b = env->fetch_error;
        m->u.fetch_error.session_hash = s_hash32(b->session_hash);
        m->u.fetch_error.index = b->index;
        m->u.fetch_error.offset = b->offset;
        m->u.fetch_error.message = s_cstr(b->message);
        break;
    }
    }
}

/* The C views of repeated fields (s_from_envelope fills the scalars). The
 * scan capped their counts, so the arrays are small. */
static bool s_lists_from_envelope(const Stemfarm__Envelope *env, sf_wire_kind_t kind, sf_wire_msg_t *m,
                                  s_owned_t *owned)
{
    if (kind == SF_WIRE_HEARTBEAT && env->heartbeat->n_jobs) {
        size_t n = env->heartbeat->n_jobs;
        sf_wire_job_progress_t *jobs = sf_calloc(n, sizeof *jobs);
        if (!jobs)
            return false;
        for (size_t i = 0; i < n; i++) {
            const Stemfarm__JobProgress *j = env->heartbeat->jobs[i];
            jobs[i] = (sf_wire_job_progress_t){j->job_id, j->attempt, j->frames_done, j->frames_total};
        }
        owned->list = jobs;
        m->u.heartbeat.jobs = jobs;
        m->u.heartbeat.n_jobs = n;
    }
    if (kind == SF_WIRE_STATUS && env->status->n_renders) {
        size_t n = env->status->n_renders;
        sf_wire_render_info_t *rs = sf_calloc(n, sizeof *rs);
        if (!rs)
            return false;
        for (size_t i = 0; i < n; i++) {
            const Stemfarm__RenderInfo *r = env->status->renders[i];
            rs[i] = (sf_wire_render_info_t){.render_id = r->render_id,
                                            .session_name = s_cstr(r->session_name),
                                            .session_path = s_cstr(r->session_path),
                                            .priority = r->priority,
                                            .jobs_done = r->jobs_done,
                                            .jobs_total = r->jobs_total,
                                            .jobs_running = r->jobs_running,
                                            .elapsed_ms = r->elapsed_ms};
        }
        owned->list = rs;
        m->u.status.renders = rs;
        m->u.status.n_renders = n;
    }
    if (kind == SF_WIRE_STATUS && env->status->n_nodes) {
        size_t n = env->status->n_nodes;
        sf_wire_node_info_t *ns = sf_calloc(n, sizeof *ns);
        if (!ns)
            return false;
        for (size_t i = 0; i < n; i++) {
            const Stemfarm__NodeInfo *nd = env->status->nodes[i];
            ns[i] = (sf_wire_node_info_t){.name = s_cstr(nd->name),
                                          .state = s_cstr(nd->state),
                                          .slots = nd->slots,
                                          .jobs_running = nd->jobs_running,
                                          .jobs_done = nd->jobs_done,
                                          .failures = nd->failures,
                                          .last_seen_ms = nd->last_seen_ms};
        }
        owned->list2 = ns;
        m->u.status.nodes = ns;
        m->u.status.n_nodes = n;
    }
    if (kind == SF_WIRE_SESSION && env->session->n_media) {
        size_t n = env->session->n_media;
        sf_wire_media_t *fs = sf_calloc(n, sizeof *fs);
        if (!fs)
            return false;
        for (size_t i = 0; i < n; i++) {
            const Stemfarm__MediaFile *f = env->session->media[i];
            fs[i] = (sf_wire_media_t){.name = s_cstr(f->name), .sha256 = s_hash32(f->sha256), .n_bytes = f->size};
        }
        owned->list = fs;
        m->u.session.media = fs;
        m->u.session.n_media = n;
    }
    return true;
}

/* The hash fields of the wrong length, which s_from_envelope leaves NULL. */
static size_t s_raw_hash_len(const Stemfarm__Envelope *env, sf_wire_kind_t kind)
{
    if (kind == SF_WIRE_SESSION)
        return env->session->session_hash.len;
    if (kind == SF_WIRE_JOB)
        return env->job->session_hash.len;
    if (kind == SF_WIRE_FETCH)
        return env->fetch->session_hash.len;
    if (kind == SF_WIRE_FETCH_DATA)
        return env->fetch_data->session_hash.len;
    if (kind == SF_WIRE_FETCH_ERROR)
        return env->fetch_error->session_hash.len;
    return 32;
}

sf_rc sf_wire_decode(const uint8_t *data, size_t n_bytes, sf_wire_msg_t *msg, sf_err_t *err)
{
    assert(msg && (data || n_bytes == 0));
    memset(msg, 0, sizeof *msg);
    if (n_bytes == 0)
        return SF_ERR(err, SF_E_PROTO, "envelope: empty message");
    if (n_bytes > SF_WIRE_MAX_MESSAGE_BYTES)
        return SF_ERR(err, SF_E_PROTO, "envelope: %zu bytes exceeds the limit of %llu bytes", n_bytes,
                      SF_WIRE_MAX_MESSAGE_BYTES);
    sf_wire_kind_t kind = SF_WIRE_HELLO;
    sf_rc rc = s_scan_check(data, n_bytes, &kind, err);
    if (rc)
        return rc;

    s_pb_state_t state = {0};
    ProtobufCAllocator alloc = s_pb_allocator(&state);
    s_owned_t *owned = sf_calloc(1, sizeof *owned);
    if (!owned)
        return SF_ERR(err, SF_E_NOMEM, "%s: out of memory decoding", sf_wire_kind_name(kind));
    owned->env = stemfarm__envelope__unpack(&alloc, n_bytes, data);
    if (!owned->env) {
        rc = state.failed ? SF_ERR(err, SF_E_NOMEM, "%s: out of memory decoding", sf_wire_kind_name(kind))
                          : SF_ERR(err, SF_E_PROTO, "%s: malformed protobuf", sf_wire_kind_name(kind));
        goto fail_owned;
    }
    /* The scan and protobuf-c must agree; if not, refuse rather than guess. */
    if (owned->env->version != SF_WIRE_VERSION ||
        (uint32_t)owned->env->body_case != (uint32_t)kind + S_FIELD_BODY_FIRST - 1) {
        rc = SF_ERR(err, SF_E_PROTO, "envelope: malformed protobuf");
        goto fail_env;
    }
    msg->owned_ = owned;
    s_from_envelope(owned->env, kind, msg);
    if (!s_lists_from_envelope(owned->env, kind, msg, owned)) {
        rc = SF_ERR(err, SF_E_NOMEM, "%s: out of memory decoding", sf_wire_kind_name(kind));
        goto fail_env;
    }
    size_t hash_len = s_raw_hash_len(owned->env, kind);
    if (hash_len != 32) {
        rc = SF_ERR(err, SF_E_PROTO, "%s: session_hash has %zu bytes, expected 32", sf_wire_kind_name(kind), hash_len);
        goto fail_env;
    }
    rc = s_check(SF_E_PROTO, msg, err);
    if (rc)
        goto fail_env;
    /* protobuf-c's copy of the bytes is malloc'd and so aligned in practice;
     * the float view must not depend on that. */
    if (kind == SF_WIRE_RESULT && ((uintptr_t)msg->u.result.pcm & 3u)) {
        owned->pcm_copy = sf_aligned_alloc(msg->u.result.n_pcm_bytes);
        if (!owned->pcm_copy) {
            rc = SF_ERR(err, SF_E_NOMEM, "result: out of memory copying %zu bytes of pcm", msg->u.result.n_pcm_bytes);
            goto fail_env;
        }
        memcpy(owned->pcm_copy, msg->u.result.pcm, msg->u.result.n_pcm_bytes);
        msg->u.result.pcm = owned->pcm_copy;
    }
    return SF_OK;

fail_env:
    stemfarm__envelope__free_unpacked(owned->env, &alloc);
    sf_free(owned->list);
    sf_free(owned->list2);
fail_owned:
    sf_free(owned);
    memset(msg, 0, sizeof *msg);
    return rc;
}

void sf_wire_msg_clear(sf_wire_msg_t *msg)
{
    if (!msg)
        return;
    s_owned_t *owned = msg->owned_;
    if (owned) {
        ProtobufCAllocator alloc = s_pb_allocator(NULL);
        if (owned->env)
            stemfarm__envelope__free_unpacked(owned->env, &alloc);
        sf_free(owned->pcm_copy);
        sf_free(owned->list);
        sf_free(owned->list2);
        sf_free(owned);
    }
    memset(msg, 0, sizeof *msg);
}
