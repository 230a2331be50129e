/* sf/wire.h -- the wire protocol as plain C values.
 *
 * The only module that sees protobuf-c: everything else builds an
 * sf_wire_msg_t, encodes it to bytes for one ZeroMQ frame, and decodes
 * received bytes back. Decoding treats the bytes as untrusted: the version is
 * checked first, then every field is range-checked (sizes, counts, lengths,
 * the pcm byte count against channels x frames, the xxh3 of the pcm is NOT
 * checked here -- the coordinator does that, so the error names the node).
 * A message that fails a check is SF_E_PROTO with a message naming the field,
 * e.g. "result: n_channels 9 out of range 1..8".
 */
#ifndef SF_WIRE_H
#define SF_WIRE_H

#include "sf/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SF_WIRE_VERSION            1u
/* Largest message accepted (ZMQ_MAXMSGSIZE on every socket): a 60 s, 8-channel
 * segment at 192 kHz of float32 is 369 MB; segments are planned below this. */
#define SF_WIRE_MAX_MESSAGE_BYTES  (512ull << 20)
#define SF_WIRE_MAX_YAML_BYTES     (16u << 20)
#define SF_WIRE_MAX_TEXT           4096 /* any string field, bytes */
#define SF_WIRE_MAX_CHANNELS       8
#define SF_WIRE_MAX_SLOTS          256
#define SF_WIRE_MAX_FRAMES         (SF_WIRE_MAX_MESSAGE_BYTES / 4)
#define SF_WIRE_MAX_NAME           255                /* hello.node_name and hello.simd, bytes */
#define SF_WIRE_MAX_THREADS        256                /* hello.threads */
#define SF_WIRE_MAX_CORES          65536              /* hello.cores */
#define SF_WIRE_MAX_HEARTBEAT_MS   600000u            /* welcome.heartbeat_ms, from 1 */
#define SF_WIRE_MAX_PREROLL_FRAMES SF_WIRE_MAX_FRAMES /* job.preroll_frames */
#define SF_WIRE_MAX_TIMELINE_FRAME (1ll << 53)        /* |job.start_frame|, so start +- frames never overflows */
/* Sessions a node keeps: at least the last SF_WIRE_NODE_SESSIONS distinct
 * sessions it was sent, in the order their SessionData arrived (a Job does
 * not refresh it). So a coordinator that remembers, per node, the last
 * SF_WIRE_NODE_SESSIONS hashes it sent, and sends SessionData again before a
 * Job for any other, never meets "unknown session". */
#define SF_WIRE_NODE_SESSIONS      8

typedef enum {
    SF_WIRE_HELLO = 1,
    SF_WIRE_WELCOME,
    SF_WIRE_CREDIT,
    SF_WIRE_SESSION,
    SF_WIRE_JOB,
    SF_WIRE_RESULT,
    SF_WIRE_JOB_ERROR,
    SF_WIRE_HEARTBEAT,
    SF_WIRE_BYE,
    SF_WIRE_SUBMIT,
    SF_WIRE_PROGRESS,
    SF_WIRE_DONE,
    SF_WIRE_SHUTDOWN,
    SF_WIRE_CANCEL,
    SF_WIRE_STATUS_REQUEST,
    SF_WIRE_STATUS,
    SF_WIRE_RESET,
    SF_WIRE_FETCH,
    SF_WIRE_FETCH_DATA,
    SF_WIRE_FETCH_ERROR,
} sf_wire_kind_t;

#define SF_WIRE_MAX_PRIORITY    100  /* submit.priority: -100..100 */
#define SF_WIRE_MAX_LIST        4096 /* entries of a status list, media files of a session */
/* The most bytes one Fetch asks for: a node's fetch never holds the
 * coordinator's loop for long, and heartbeats pass between chunks. */
#define SF_WIRE_MAX_FETCH_BYTES (1u << 20)
#define SF_WIRE_MAX_FILE_BYTES  (1ull << 62) /* media file sizes and fetch offsets */

/* A file a session reads, for nodes that ship media (session.media). */
typedef struct {
    const char *name;      /* as written in the session */
    const uint8_t *sha256; /* 32 bytes */
    uint64_t n_bytes;
} sf_wire_media_t;

typedef struct {
    uint64_t job_id;
    uint32_t attempt;
    uint64_t frames_done, frames_total;
} sf_wire_job_progress_t;

typedef struct {
    uint32_t render_id;
    const char *session_name, *session_path;
    int32_t priority;
    uint64_t jobs_done, jobs_total;
    uint32_t jobs_running;
    uint64_t elapsed_ms;
} sf_wire_render_info_t;

typedef struct {
    const char *name, *state;
    uint32_t slots, jobs_running;
    uint64_t jobs_done;
    uint32_t failures;
    uint64_t last_seen_ms;
} sf_wire_node_info_t;

/* Strings and byte fields point into memory owned by the message after
 * sf_wire_decode (freed by sf_wire_msg_clear), or into the caller's memory
 * when the caller fills a message to encode. Strings are NUL-terminated. */
typedef struct {
    sf_wire_kind_t kind;
    union {
        struct {
            const char *node_name;
            uint32_t cores, threads, slots;
            const char *simd;
            bool ship_media; /* media: ship -- it sends Fetch */
        } hello;
        struct {
            uint32_t node_id, heartbeat_ms;
            uint64_t max_message_bytes;
        } welcome;
        struct {
            uint32_t n_jobs;
        } credit;
        struct {
            const uint8_t *session_hash;
            const char *path;
            const uint8_t *yaml;
            size_t n_yaml_bytes;
            const char *base_dir;         /* the coordinator's (session hash input); "" or NULL: unknown */
            const sf_wire_media_t *media; /* to nodes that ship media; index = position */
            size_t n_media;
        } session;
        struct {
            uint64_t job_id;
            const uint8_t *session_hash;
            uint32_t target_kind, target_index;
            int64_t start_frame;
            uint64_t n_frames, preroll_frames;
            uint32_t attempt;
        } job;
        struct {
            uint64_t job_id;
            uint32_t attempt, n_channels;
            uint64_t n_frames;
            const float *pcm;
            size_t n_pcm_bytes;
            uint64_t xxh3, render_ns;
        } result;
        struct {
            uint64_t job_id;
            uint32_t attempt;
            const char *message;
        } job_error;
        struct {
            uint32_t jobs_running;
            const sf_wire_job_progress_t *jobs; /* n_jobs <= SF_WIRE_MAX_SLOTS */
            size_t n_jobs;
        } heartbeat;
        struct {
            const char *reason;
        } bye;
        struct {
            const char *session_path;
            const uint8_t *yaml;
            size_t n_yaml_bytes;
            const char *out_dir;
            uint64_t segment_frames;
            bool force;
            const char *profile; /* "" or NULL: the session's */
            int32_t priority;
        } submit;
        struct {
            uint64_t jobs_done, jobs_total;
            uint32_t nodes;
            const char *event;
            uint32_t render_id;
        } progress;
        struct {
            uint32_t exit_code;
            const char *message;
            const char *manifest_path;
        } done;
        struct {
            const char *reason;
        } shutdown;
        struct {
            uint32_t render_id;
        } cancel;
        struct {
            const sf_wire_render_info_t *renders;
            size_t n_renders;
            const sf_wire_node_info_t *nodes;
            size_t n_nodes;
            bool draining;
        } status;
        struct {
            const char *reason;
        } reset;
        struct {
            const uint8_t *session_hash;
            uint32_t index; /* into session.media */
            const uint8_t *sha256;
            uint64_t offset;
            uint32_t n_bytes;
        } fetch;
        struct {
            const uint8_t *session_hash;
            uint32_t index;
            uint64_t offset;
            const uint8_t *data;
            size_t n_bytes;
        } fetch_data;
        struct {
            const uint8_t *session_hash;
            uint32_t index;
            uint64_t offset;
            const char *message;
        } fetch_error;
    } u;
    void *owned_; /* decoder state; do not touch */
} sf_wire_msg_t;

/* Encodes `msg` (with SF_WIRE_VERSION) into a new buffer *out of *n_bytes,
 * freed with sf_free. SF_E_INPUT if the message itself violates a limit
 * (so a bug never puts an unreadable message on the wire), SF_E_NOMEM. */
sf_rc sf_wire_encode(const sf_wire_msg_t *msg, uint8_t **out, size_t *n_bytes, sf_err_t *err);

/* Decodes and range-checks `n_bytes` bytes into *msg. On success the caller
 * must call sf_wire_msg_clear. On failure *msg needs no clearing. The pcm of a
 * result is float32 little-endian: on a big-endian host it is an error. */
sf_rc sf_wire_decode(const uint8_t *data, size_t n_bytes, sf_wire_msg_t *msg, sf_err_t *err);

void sf_wire_msg_clear(sf_wire_msg_t *msg);

/* Field rules that decode enforces and encode checks (SF_E_INPUT) alike:
 *   names (hello.node_name, hello.simd): 1..SF_WIRE_MAX_NAME bytes of UTF-8,
 *     no control characters;
 *   text (job_error.message 1.., bye/shutdown.reason, progress.event,
 *     done.message): ..SF_WIRE_MAX_TEXT bytes of UTF-8, no control
 *     characters but tab and newline;
 *   paths (session.path 1.., submit.session_path 1.. absolute,
 *     submit.out_dir and session.base_dir empty or absolute, done.manifest_path): ..SF_WIRE_MAX_TEXT
 *     bytes, no NUL (any other bytes: file names need not be UTF-8);
 *   hello: cores 1..SF_WIRE_MAX_CORES, threads 1..SF_WIRE_MAX_THREADS,
 *     slots 1..SF_WIRE_MAX_SLOTS;
 *   welcome: heartbeat_ms 1..SF_WIRE_MAX_HEARTBEAT_MS, max_message_bytes
 *     0 (meaning SF_WIRE_MAX_MESSAGE_BYTES) ..SF_WIRE_MAX_MESSAGE_BYTES;
 *   credit: n_jobs 0..SF_WIRE_MAX_SLOTS; heartbeat: jobs_running 0..SF_WIRE_MAX_SLOTS,
 *     jobs ..SF_WIRE_MAX_SLOTS entries, each frames_done <= frames_total <= 2^62;
 *   session: session_hash 32 bytes, yaml 1..SF_WIRE_MAX_YAML_BYTES;
 *   job: session_hash 32 bytes, n_frames 1..SF_WIRE_MAX_FRAMES,
 *     preroll_frames ..SF_WIRE_MAX_PREROLL_FRAMES,
 *     |start_frame| <= SF_WIRE_MAX_TIMELINE_FRAME;
 *   result: n_channels 1..SF_WIRE_MAX_CHANNELS, n_frames 1..SF_WIRE_MAX_FRAMES,
 *     n_pcm_bytes == n_channels * n_frames * 4 (pcm 4-byte aligned after decode);
 *   submit: yaml 1..SF_WIRE_MAX_YAML_BYTES, segment_frames ..SF_WIRE_MAX_FRAMES,
 *     priority -SF_WIRE_MAX_PRIORITY..SF_WIRE_MAX_PRIORITY;
 *   progress: jobs_done <= jobs_total; done: exit_code 0..255;
 *   status: ..SF_WIRE_MAX_LIST renders and nodes, names as text (node name
 *     1..SF_WIRE_MAX_NAME), session_path a path, jobs_done <= jobs_total;
 *   reset: reason as text;
 *   session.media: ..SF_WIRE_MAX_LIST files, each name a path 1.., sha256 32
 *     bytes, n_bytes 1..SF_WIRE_MAX_FILE_BYTES;
 *   fetch: session_hash and sha256 32 bytes, index ..SF_WIRE_MAX_LIST-1,
 *     offset ..SF_WIRE_MAX_FILE_BYTES, n_bytes 1..SF_WIRE_MAX_FETCH_BYTES;
 *   fetch_data: session_hash 32 bytes, index and offset as fetch, data
 *     1..SF_WIRE_MAX_FETCH_BYTES bytes;
 *   fetch_error: session_hash 32 bytes, index and offset as fetch, message
 *     as text 1...
 * The envelope must carry version SF_WIRE_VERSION and exactly one body. */

/* Makes `s` valid wire text in place: truncates it to SF_WIRE_MAX_TEXT bytes,
 * replaces bytes that are not UTF-8 by '?' and control characters other than
 * tab and newline by ' '. For messages built from arbitrary input (error
 * texts that quote file names) before they are put in a message. */
void sf_wire_text_sanitize(char *s);

/* "hello", "result", ... for logs. */
const char *sf_wire_kind_name(sf_wire_kind_t kind);

/* The best SIMD level the build and CPU support: "avx2", "sse2", "neon", "scalar". */
const char *sf_wire_simd_level(void);

#endif
