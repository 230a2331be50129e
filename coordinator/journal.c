/* journal.c -- crash-safe render journals and the incarnation counter (see journal.h).
 *
 * Invariants:
 * - j->n_bytes is the end of the last record that was written whole; an
 *   append that fails cuts the file back there, so what follows the last
 *   good record is only ever the torn tail of a crash;
 * - the records appended since the last commit (j->n_pending of them) are
 *   the only ones not known to be on the disk: one fsync per commit covers
 *   them all, and the commit record written after it tells replay that the
 *   coordinator counted them;
 * - the file is opened O_APPEND, so a write after such a cut lands at the
 *   new end;
 * - j->jobs holds every job index in the file, so no job is journalled twice
 *   (replay refuses such a journal: a segment must never land twice);
 * - replay hands nothing to its callbacks before the whole journal has been
 *   checked, so damage found late never undoes a resumed render.
 *
 * What counts as torn rather than damaged: a kill -9 leaves a prefix of the
 * bytes written, a power cut may leave the unsynced tail -- every record
 * since the last commit -- as zeros or with bad checksums, in any order. So
 * the file is torn from a record on when that record is short, when it is
 * zeros to the end of the file, or when its checksum fails and no intact
 * record follows it (one that does was written after a sync, so the bad one
 * had been synced: damage). A length that disagrees with the record's own
 * fields, or is beyond the limits, is damage wherever it is: taking it for
 * a tear would cut good records off behind it.
 */
#include "journal.h"

#include "sf/alloc.h"
#include "sf/hash.h"
#include "sf/wire.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAGIC            "SFJOURNL"
#define MAGIC_BYTES      8
#define FORMAT_VERSION   2u /* 1: no commit records, every segment was synced and counted on its own */
#define FILE_HEAD_BYTES  (MAGIC_BYTES + 4)
#define REC_HEAD_BYTES   12 /* type u32, n_bytes u64 */
#define REC_SUM_BYTES    8
#define SUBMIT_FIXED     17 /* render_id, priority, segment_frames, force */
#define SUBMIT_N_FIELDS  5
#define SEGMENT_FIXED    32 /* job_index, n_channels, n_frames, xxh3, name length */
#define CHUNK_FLOATS     16384
#define INCARNATION_NAME "incarnation"

enum { REC_SUBMIT = 1, REC_SEGMENT = 2, REC_FINISH = 3, REC_COMMIT = 4 };

/* The variable fields of a submission, in file order, with their limits. */
static const struct {
    const char *name;
    uint32_t min, max;
} s_submit_fields[SUBMIT_N_FIELDS] = {
    {"session path", 1, SF_WIRE_MAX_TEXT},
    {"output folder", 1, SF_WIRE_MAX_TEXT},
    {"profile", 0, SF_WIRE_MAX_TEXT},
    {"client id", 0, JOURNAL_MAX_CLIENT_ID},
    {"session yaml", 1, SF_WIRE_MAX_YAML_BYTES},
};

#define SUBMIT_MAX                                                                                                     \
    ((uint64_t)SUBMIT_FIXED + 4 * SUBMIT_N_FIELDS + 3 * SF_WIRE_MAX_TEXT + JOURNAL_MAX_CLIENT_ID +                     \
     SF_WIRE_MAX_YAML_BYTES)
#define SEGMENT_MAX ((uint64_t)SEGMENT_FIXED + SF_WIRE_MAX_NAME + SF_WIRE_MAX_MESSAGE_BYTES)

struct journal {
    char *path;
    char *dir;
    int fd; /* O_WRONLY | O_APPEND */
    uint32_t render_id;
    uint64_t n_bytes; /* end of the last whole record */
    size_t n_pending; /* segments appended since the last commit: not synced yet */
    bool broken;      /* a sync or a cut-back failed: the file's tail is unknown */
    uint64_t *jobs;   /* job indexes in the file, ascending */
    size_t n_jobs;
    size_t cap_jobs;
    uint8_t *chunk; /* CHUNK_FLOATS * 4: frames as little-endian bytes on their way out */
};

/* ---- little-endian fields --------------------------------------------- */

static void s_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void s_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t s_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t s_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ---- files and folders ------------------------------------------------ */

static char *s_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = sf_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static char *s_journal_path(const char *dir, uint32_t render_id)
{
    char name[32];
    snprintf(name, sizeof name, "render-%" PRIu32 ".journal", render_id);
    return s_join(dir, name);
}

/* Writes every buffer, one after the other: 0 or the errno of the
 * failure; a write that makes no progress is ENOSPC. */
static int s_writev_all(int fd, struct iovec *iov, int n_iov)
{
    for (;;) {
        while (n_iov > 0 && iov->iov_len == 0) /* nothing to write is not a write without progress */
            iov++, n_iov--;
        if (n_iov == 0)
            return 0;
        ssize_t w = writev(fd, iov, n_iov);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno;
        if (w == 0)
            return ENOSPC;
        size_t done = (size_t)w;
        while (n_iov > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            n_iov--;
        }
        if (n_iov > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
}

static int s_write_all(int fd, const void *buf, size_t n_bytes)
{
    struct iovec one = {.iov_base = (void *)buf, .iov_len = n_bytes};
    return s_writev_all(fd, &one, 1);
}

/* Bytes read at `off`: fewer than n_bytes only at the end of the file; -1 with errno. */
static ssize_t s_read_at(int fd, uint64_t off, void *buf, size_t n_bytes)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n_bytes) {
        ssize_t r = pread(fd, p + got, n_bytes - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* fsync of a folder, so that a file created, renamed or removed in it stays so. */
static sf_rc s_sync_dir(const char *dir, sf_err_t *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return SF_ERR(err, SF_E_IO, "cannot open '%s': %s", dir, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    return rc == 0 ? SF_OK : SF_ERR(err, SF_E_IO, "cannot sync '%s': %s", dir, strerror(e));
}

/* mkdir -p with mode 0700; every folder made is synced into its parent. */
static sf_rc s_make_dir(const char *dir, sf_err_t *err)
{
    struct stat st;
    if (!*dir)
        return SF_ERR(err, SF_E_INPUT, "the state folder is an empty path");
    if (stat(dir, &st) == 0)
        return S_ISDIR(st.st_mode) ? SF_OK : SF_ERR(err, SF_E_IO, "'%s' is not a folder", dir);
    char *copy = sf_strdup(dir);
    if (!copy)
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    sf_rc rc = SF_OK;
    for (char *p = copy + 1; rc == SF_OK; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(copy, 0700) == 0) {
            char *slash = strrchr(copy, '/');
            if (slash == copy)
                rc = s_sync_dir("/", err);
            else if (slash) {
                *slash = '\0';
                rc = s_sync_dir(copy, err);
                *slash = '/';
            } else
                rc = s_sync_dir(".", err);
        } else if (errno != EEXIST)
            rc = SF_ERR(err, SF_E_IO, "cannot create folder '%s': %s", copy, strerror(errno));
        *p = c;
        if (c == '\0')
            break;
    }
    sf_free(copy);
    return rc;
}

/* ---- records ----------------------------------------------------------- */

static size_t s_put_field(uint8_t *p, const void *bytes, size_t n_bytes)
{
    s_put_u32(p, (uint32_t)n_bytes);
    if (n_bytes)
        memcpy(p + 4, bytes, n_bytes);
    return 4 + n_bytes;
}

static void s_seal(uint8_t *rec, uint32_t type, uint64_t n_payload)
{
    s_put_u32(rec, type);
    s_put_u64(rec + 4, n_payload);
    s_put_u64(rec + REC_HEAD_BYTES + n_payload, sf_hash_xxh3(rec, REC_HEAD_BYTES + n_payload));
}

static sf_rc s_check_text(const char *what, const char *s, bool absolute, sf_err_t *err)
{
    size_t n = s ? strlen(s) : 0;
    if (absolute && (n == 0 || s[0] != '/'))
        return SF_ERR(err, SF_E_INPUT, "journal: %s '%s' is not absolute", what, s ? s : "");
    if (n > SF_WIRE_MAX_TEXT)
        return SF_ERR(err, SF_E_INPUT, "journal: %s is %zu bytes long (at most %d)", what, n, SF_WIRE_MAX_TEXT);
    return SF_OK;
}

static sf_rc s_check_submit(const journal_submit_t *sub, sf_err_t *err)
{
    sf_rc rc;
    if (sub->render_id == 0)
        return SF_ERR(err, SF_E_INPUT, "journal: render id 0 is reserved");
    if ((rc = s_check_text("session path", sub->session_path, true, err)) ||
        (rc = s_check_text("output folder", sub->out_dir, true, err)) ||
        (rc = s_check_text("profile", sub->profile, false, err)))
        return rc;
    if (sub->n_yaml_bytes < 1 || sub->n_yaml_bytes > SF_WIRE_MAX_YAML_BYTES || !sub->yaml)
        return SF_ERR(err, SF_E_INPUT, "journal: session yaml of %zu bytes (1..%u)", sub->n_yaml_bytes,
                      SF_WIRE_MAX_YAML_BYTES);
    if (sub->n_client_id > JOURNAL_MAX_CLIENT_ID || (sub->n_client_id && !sub->client_id))
        return SF_ERR(err, SF_E_INPUT, "journal: client id of %zu bytes (at most %d)", sub->n_client_id,
                      JOURNAL_MAX_CLIENT_ID);
    if (sub->segment_frames < 0 || sub->segment_frames > (int64_t)SF_WIRE_MAX_FRAMES)
        return SF_ERR(err, SF_E_INPUT, "journal: segment of %" PRId64 " frames (0..%llu)", sub->segment_frames,
                      (unsigned long long)SF_WIRE_MAX_FRAMES);
    return SF_OK;
}

/* File head and submission record, ready to write (sub checked). */
static uint8_t *s_encode_submit(const journal_submit_t *sub, size_t *n_bytes)
{
    const char *profile = sub->profile ? sub->profile : "";
    size_t n_payload = SUBMIT_FIXED + 4 * SUBMIT_N_FIELDS + strlen(sub->session_path) + strlen(sub->out_dir) +
                       strlen(profile) + sub->n_client_id + sub->n_yaml_bytes;
    size_t n = FILE_HEAD_BYTES + REC_HEAD_BYTES + n_payload + REC_SUM_BYTES;
    uint8_t *buf = sf_malloc(n);
    if (!buf)
        return NULL;
    memcpy(buf, MAGIC, MAGIC_BYTES);
    s_put_u32(buf + MAGIC_BYTES, FORMAT_VERSION);
    uint8_t *rec = buf + FILE_HEAD_BYTES;
    uint8_t *p = rec + REC_HEAD_BYTES;
    s_put_u32(p, sub->render_id);
    s_put_u32(p + 4, (uint32_t)sub->priority);
    s_put_u64(p + 8, (uint64_t)sub->segment_frames);
    p[16] = sub->force;
    p += SUBMIT_FIXED;
    p += s_put_field(p, sub->session_path, strlen(sub->session_path));
    p += s_put_field(p, sub->out_dir, strlen(sub->out_dir));
    p += s_put_field(p, profile, strlen(profile));
    p += s_put_field(p, sub->client_id, sub->n_client_id);
    s_put_field(p, sub->yaml, sub->n_yaml_bytes);
    s_seal(rec, REC_SUBMIT, n_payload);
    *n_bytes = n;
    return buf;
}

static journal_t *s_journal_new(const char *state_dir, uint32_t render_id)
{
    journal_t *j = sf_calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->fd = -1;
    j->render_id = render_id;
    j->path = s_journal_path(state_dir, render_id);
    j->dir = sf_strdup(state_dir);
    j->chunk = sf_malloc(CHUNK_FLOATS * 4);
    if (!j->path || !j->dir || !j->chunk)
        journal_close(&j);
    return j;
}

sf_rc journal_create(const char *state_dir, const journal_submit_t *sub, journal_t **out, sf_err_t *err)
{
    assert(state_dir && sub && out);
    *out = NULL;
    sf_rc rc = s_check_submit(sub, err);
    if (rc)
        return rc;
    if ((rc = s_make_dir(state_dir, err)))
        return rc;
    size_t n_bytes;
    uint8_t *buf = s_encode_submit(sub, &n_bytes);
    journal_t *j = s_journal_new(state_dir, sub->render_id);
    if (!buf || !j) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
        goto free_all;
    }
    j->fd = open(j->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (j->fd < 0) {
        rc = errno == EEXIST ? SF_ERR(err, SF_E_IO, "journal '%s' exists: render %" PRIu32 " is journalled already",
                                      j->path, sub->render_id)
                             : SF_ERR(err, SF_E_IO, "cannot create journal '%s': %s", j->path, strerror(errno));
        goto free_all;
    }
    int e = s_write_all(j->fd, buf, n_bytes);
    if (!e && fsync(j->fd) != 0)
        e = errno;
    if (e) {
        rc = SF_ERR(err, SF_E_IO, "cannot write journal '%s': %s", j->path, strerror(e));
        goto remove_file;
    }
    if ((rc = s_sync_dir(state_dir, err)))
        goto remove_file;
    j->n_bytes = n_bytes;
    sf_free(buf);
    *out = j;
    return SF_OK;

remove_file:
    unlink(j->path);
free_all:
    sf_free(buf);
    journal_close(&j);
    return rc;
}

static bool s_find_job(const journal_t *j, uint64_t job_index, size_t *pos)
{
    size_t lo = 0, hi = j->n_jobs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (j->jobs[mid] < job_index)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return lo < j->n_jobs && j->jobs[lo] == job_index;
}

/* Cuts a failed append back to the last good record; returns rc. */
static sf_rc s_cut_back(journal_t *j, sf_rc rc)
{
    if (ftruncate(j->fd, (off_t)j->n_bytes) != 0)
        j->broken = true;
    return rc;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define S_LITTLE_ENDIAN 1
#else
#define S_LITTLE_ENDIAN 0
#endif

#if !S_LITTLE_ENDIAN
/* The segment record after its head: frames as little-endian bytes, hashed
 * on the way (record and frames), then the record's checksum. */
static int s_write_frames(journal_t *j, const float *planar, uint64_t n_samples, sf_xxh3_stream_t *rec,
                          sf_xxh3_stream_t *frames)
{
    for (uint64_t at = 0; at < n_samples;) {
        size_t n = n_samples - at < CHUNK_FLOATS ? (size_t)(n_samples - at) : CHUNK_FLOATS;
        for (size_t i = 0; i < n; i++) {
            uint32_t bits;
            memcpy(&bits, &planar[at + i], 4);
            s_put_u32(j->chunk + 4 * i, bits);
        }
        sf_xxh3_stream_update(rec, j->chunk, 4 * n);
        sf_xxh3_stream_update(frames, j->chunk, 4 * n);
        int e = s_write_all(j->fd, j->chunk, 4 * n);
        if (e)
            return e;
        at += n;
    }
    return 0;
}
#endif

sf_rc journal_append_segment(journal_t *j, uint64_t job_index, uint32_t n_channels, uint64_t n_frames,
                             const float *planar, uint64_t xxh3, const char *node_name, sf_err_t *err)
{
    assert(j && planar);
    if (j->broken)
        return SF_ERR(err, SF_E_IO, "journal '%s': an earlier write failed, nothing more can be appended", j->path);
    if (!node_name)
        node_name = "";
    size_t n_name = strlen(node_name);
    if (n_channels < 1 || n_channels > SF_WIRE_MAX_CHANNELS || n_frames < 1 || n_frames > SF_WIRE_MAX_FRAMES ||
        (uint64_t)n_channels * n_frames * 4 > SF_WIRE_MAX_MESSAGE_BYTES || n_name > SF_WIRE_MAX_NAME)
        return SF_ERR(err, SF_E_INPUT,
                      "journal '%s': job %" PRIu64 ": %" PRIu32 " channels x %" PRIu64
                      " frames (node name of %zu bytes) is out of range",
                      j->path, job_index, n_channels, n_frames, n_name);
    size_t pos;
    if (s_find_job(j, job_index, &pos))
        return SF_ERR(err, SF_E_INTERNAL, "journal '%s': job %" PRIu64 " was journalled before", j->path, job_index);
    if (j->n_jobs == j->cap_jobs) {
        size_t cap = j->cap_jobs ? 2 * j->cap_jobs : 64;
        uint64_t *jobs = sf_realloc(j->jobs, cap * sizeof *jobs);
        if (!jobs)
            return SF_ERR(err, SF_E_NOMEM, "out of memory");
        j->jobs = jobs;
        j->cap_jobs = cap;
    }
    sf_xxh3_stream_t *rec = sf_xxh3_stream_new();
    sf_xxh3_stream_t *frames = sf_xxh3_stream_new();
    sf_rc rc = SF_OK;
    if (!rec || !frames) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
        goto free_streams;
    }
    uint64_t n_samples = (uint64_t)n_channels * n_frames;
    uint64_t n_payload = SEGMENT_FIXED + n_name + 4 * n_samples;
    uint8_t head[REC_HEAD_BYTES + SEGMENT_FIXED + SF_WIRE_MAX_NAME];
    s_put_u32(head, REC_SEGMENT);
    s_put_u64(head + 4, n_payload);
    uint8_t *p = head + REC_HEAD_BYTES;
    s_put_u64(p, job_index);
    s_put_u32(p + 8, n_channels);
    s_put_u64(p + 12, n_frames);
    s_put_u64(p + 20, xxh3);
    s_put_field(p + 28, node_name, n_name);
    size_t n_head = REC_HEAD_BYTES + SEGMENT_FIXED + n_name;
    sf_xxh3_stream_update(rec, head, n_head);

#if S_LITTLE_ENDIAN
    /* The frames are stored as they lie in memory: checked before anything
     * is written, then the whole record in one system call, with no copy. */
    if (sf_hash_xxh3(planar, 4 * n_samples) != xxh3) {
        rc = SF_ERR(err, SF_E_INTERNAL, "journal '%s': job %" PRIu64 ": the frames do not match their xxh3", j->path,
                    job_index);
        goto free_streams;
    }
    sf_xxh3_stream_update(rec, planar, 4 * n_samples);
    uint8_t sum[REC_SUM_BYTES];
    s_put_u64(sum, sf_xxh3_stream_digest(rec));
    struct iovec iov[3] = {{.iov_base = head, .iov_len = n_head},
                           {.iov_base = (void *)planar, .iov_len = 4 * n_samples},
                           {.iov_base = sum, .iov_len = sizeof sum}};
    int e = s_writev_all(j->fd, iov, 3);
    if (e) {
        rc = s_cut_back(j, SF_ERR(err, SF_E_IO, "cannot write journal '%s': %s", j->path, strerror(e)));
        goto free_streams;
    }
#else
    int e = s_write_all(j->fd, head, n_head);
    if (!e)
        e = s_write_frames(j, planar, n_samples, rec, frames);
    if (e) {
        rc = s_cut_back(j, SF_ERR(err, SF_E_IO, "cannot write journal '%s': %s", j->path, strerror(e)));
        goto free_streams;
    }
    if (sf_xxh3_stream_digest(frames) != xxh3) {
        rc = s_cut_back(j,
                        SF_ERR(err, SF_E_INTERNAL, "journal '%s': job %" PRIu64 ": the frames do not match their xxh3",
                               j->path, job_index));
        goto free_streams;
    }
    uint8_t sum[REC_SUM_BYTES];
    s_put_u64(sum, sf_xxh3_stream_digest(rec));
    if ((e = s_write_all(j->fd, sum, sizeof sum))) {
        rc = s_cut_back(j, SF_ERR(err, SF_E_IO, "cannot write journal '%s': %s", j->path, strerror(e)));
        goto free_streams;
    }
#endif
    j->n_bytes += REC_HEAD_BYTES + n_payload + REC_SUM_BYTES;
    j->n_pending++;
    memmove(j->jobs + pos + 1, j->jobs + pos, (j->n_jobs - pos) * sizeof *j->jobs);
    j->jobs[pos] = job_index;
    j->n_jobs++;

free_streams:
    sf_xxh3_stream_destroy(&rec);
    sf_xxh3_stream_destroy(&frames);
    return rc;
}

sf_rc journal_commit(journal_t *j, sf_err_t *err)
{
    assert(j);
    if (j->broken)
        return SF_ERR(err, SF_E_IO, "journal '%s': an earlier write failed, its last segments are not safe", j->path);
    if (j->n_pending == 0)
        return SF_OK;
    if (fsync(j->fd) != 0) {
        /* After a failed fsync the kernel may have dropped the dirty pages
         * and will not report it again: the file can no longer be trusted. */
        j->broken = true;
        return SF_ERR(err, SF_E_IO, "cannot sync journal '%s': %s", j->path, strerror(errno));
    }
    j->n_pending = 0;
    /* Unsynced on purpose: the segments are safe already, and the next
     * commit's fsync takes this record along. Lost, it only makes replay
     * report the segments as landed once more. */
    uint8_t rec[REC_HEAD_BYTES + REC_SUM_BYTES];
    s_seal(rec, REC_COMMIT, 0);
    if (s_write_all(j->fd, rec, sizeof rec) != 0)
        (void)s_cut_back(j, SF_OK);
    else
        j->n_bytes += sizeof rec;
    return SF_OK;
}

sf_rc journal_finish(journal_t **self_p, sf_err_t *err)
{
    if (!self_p || !*self_p)
        return SF_OK;
    journal_t *j = *self_p;
    /* The finish record covers a crash between here and the folder sync:
     * replay then removes the file instead of resuming a finished render. */
    if (!j->broken) {
        uint8_t rec[REC_HEAD_BYTES + REC_SUM_BYTES];
        s_seal(rec, REC_FINISH, 0);
        if (s_write_all(j->fd, rec, sizeof rec) == 0)
            (void)fsync(j->fd);
    }
    sf_rc rc = SF_OK;
    if (unlink(j->path) != 0)
        rc = SF_ERR(err, SF_E_IO, "cannot remove journal '%s': %s", j->path, strerror(errno));
    else
        rc = s_sync_dir(j->dir, err);
    journal_close(self_p);
    return rc;
}

void journal_close(journal_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    journal_t *j = *self_p;
    if (j->fd >= 0)
        close(j->fd);
    sf_free(j->path);
    sf_free(j->dir);
    sf_free(j->jobs);
    sf_free(j->chunk);
    sf_free(j);
    *self_p = NULL;
}

uint32_t journal_render_id(const journal_t *j) { return j->render_id; }

const char *journal_path(const journal_t *j) { return j->path; }

/* ---- replay: checking a journal ---------------------------------------- */

typedef struct {
    uint64_t job_index;
    uint64_t offset;    /* of the record */
    uint64_t n_payload; /* its payload bytes */
} s_seg_ref_t;

typedef enum {
    SCAN_RESUME,      /* intact (after cutting a torn tail off): replay it */
    SCAN_FINISHED,    /* has a finish record */
    SCAN_TORN_SUBMIT, /* the submission itself is incomplete */
    SCAN_DAMAGED,     /* err says where */
} s_scan_state_t;

typedef struct {
    const char *path;
    uint32_t render_id; /* from the file name */
    int fd;             /* O_RDWR: a torn tail is cut off through it */
    uint64_t size;
    uint8_t *buf; /* the record being read: head, payload, checksum */
    size_t cap_buf;
    uint8_t *submit;   /* the submission's payload, owned */
    s_seg_ref_t *segs; /* in file order */
    size_t n_segs;
    size_t cap_segs;
    uint64_t *jobs; /* job indexes, ascending (for the reopened journal) */
    uint64_t good_end;
    uint32_t version;
    size_t n_counted; /* segments (the first ones in segs) before the last commit record */
    bool committed;   /* a commit record was seen */
} s_scan_t;

#define S_DAMAGED(s, err, off, ...) s_damaged((s), (err), __FILE__, __LINE__, (off), __VA_ARGS__)

static sf_rc s_damaged(const s_scan_t *s, sf_err_t *err, const char *file, int line, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static sf_rc s_damaged(const s_scan_t *s, sf_err_t *err, const char *file, int line, uint64_t off, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return sf_err_set(err, SF_E_IO, file, line, "journal '%s': record at byte %" PRIu64 ": %s", s->path, off, what);
}

static const char *s_type_name(uint32_t type)
{
    return type == REC_SUBMIT    ? "submission"
           : type == REC_SEGMENT ? "segment"
           : type == REC_COMMIT  ? "commit"
                                 : "finish";
}

/* True when the file holds only zero bytes from `off` on. */
static bool s_zero_from(const s_scan_t *s, uint64_t off)
{
    uint8_t buf[4096];
    while (off < s->size) {
        ssize_t n = s_read_at(s->fd, off, buf, sizeof buf);
        if (n <= 0)
            return false;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i])
                return false;
        off += (uint64_t)n;
    }
    return true;
}

static sf_rc s_reserve(s_scan_t *s, size_t n_bytes, sf_err_t *err)
{
    if (n_bytes <= s->cap_buf)
        return SF_OK;
    uint8_t *buf = sf_realloc(s->buf, n_bytes);
    if (!buf)
        return SF_ERR(err, SF_E_NOMEM, "journal '%s': out of memory for a record of %zu bytes", s->path, n_bytes);
    s->buf = buf;
    s->cap_buf = n_bytes;
    return SF_OK;
}

/* The payload length that a record's own fields add up to, from the `have`
 * bytes of it that are there: SF_OK with *n_implied = UINT64_MAX when too
 * few are there to tell; SF_E_IO when a field is out of range. */
static sf_rc s_implied_length(const s_scan_t *s, uint64_t off, uint32_t type, const uint8_t *p, uint64_t have,
                              uint64_t *n_implied, sf_err_t *err)
{
    *n_implied = UINT64_MAX;
    if (type == REC_FINISH || type == REC_COMMIT) {
        *n_implied = 0;
        return SF_OK;
    }
    if (type == REC_SUBMIT) {
        uint64_t at = SUBMIT_FIXED;
        for (int f = 0; f < SUBMIT_N_FIELDS; f++) {
            if (at + 4 > have)
                return SF_OK;
            uint32_t n = s_get_u32(p + at);
            if (n < s_submit_fields[f].min || n > s_submit_fields[f].max)
                return S_DAMAGED(s, err, off, "%s of %" PRIu32 " bytes is out of range (%" PRIu32 "..%" PRIu32 ")",
                                 s_submit_fields[f].name, n, s_submit_fields[f].min, s_submit_fields[f].max);
            at += 4 + (uint64_t)n;
        }
        *n_implied = at;
        return SF_OK;
    }
    if (have < SEGMENT_FIXED)
        return SF_OK;
    uint32_t n_channels = s_get_u32(p + 8);
    uint64_t n_frames = s_get_u64(p + 12);
    uint32_t n_name = s_get_u32(p + 28);
    if (n_channels < 1 || n_channels > SF_WIRE_MAX_CHANNELS || n_frames < 1 || n_frames > SF_WIRE_MAX_FRAMES ||
        (uint64_t)n_channels * n_frames * 4 > SF_WIRE_MAX_MESSAGE_BYTES)
        return S_DAMAGED(s, err, off, "segment of %" PRIu32 " channels x %" PRIu64 " frames is out of range",
                         n_channels, n_frames);
    if (n_name > SF_WIRE_MAX_NAME)
        return S_DAMAGED(s, err, off, "node name of %" PRIu32 " bytes is out of range (at most %d)", n_name,
                         SF_WIRE_MAX_NAME);
    *n_implied = SEGMENT_FIXED + (uint64_t)n_name + 4 * (uint64_t)n_channels * n_frames;
    return SF_OK;
}

/* Reads the record at `off` (off < size) into s->buf. *torn: it is the torn
 * last record (nothing else read). *bad: its checksum fails (torn or
 * damaged, as what follows it says); *n_payload is set. SF_E_IO (damage,
 * or reading failed). */
static sf_rc s_read_record(s_scan_t *s, uint64_t off, uint32_t *type, uint64_t *n_payload, bool *torn, bool *bad,
                           sf_err_t *err)
{
    *torn = false;
    *bad = false;
    uint64_t avail = s->size - off;
    sf_rc rc = s_reserve(s, REC_HEAD_BYTES, err);
    if (rc)
        return rc;
    if (avail < REC_HEAD_BYTES) {
        *torn = true;
        return SF_OK;
    }
    if (s_read_at(s->fd, off, s->buf, REC_HEAD_BYTES) != REC_HEAD_BYTES)
        return SF_ERR(err, SF_E_IO, "cannot read journal '%s': %s", s->path, strerror(errno));
    *type = s_get_u32(s->buf);
    uint64_t n = s_get_u64(s->buf + 4);
    if (*type == 0 && n == 0 && s_zero_from(s, off)) {
        *torn = true;
        return SF_OK;
    }
    /* Commit records come in version 1 files too, once a newer build resumed them. */
    if (*type != REC_SUBMIT && *type != REC_SEGMENT && *type != REC_FINISH && *type != REC_COMMIT)
        return S_DAMAGED(s, err, off, "unknown record type %" PRIu32, *type);
    uint64_t min = *type == REC_SUBMIT ? SUBMIT_FIXED + 4 * SUBMIT_N_FIELDS : *type == REC_SEGMENT ? SEGMENT_FIXED : 0;
    uint64_t max = *type == REC_SUBMIT ? SUBMIT_MAX : *type == REC_SEGMENT ? SEGMENT_MAX : 0;
    if (n < min || n > max)
        return S_DAMAGED(s, err, off, "length %" PRIu64 " is out of range for a %s record (%" PRIu64 "..%" PRIu64 ")",
                         n, s_type_name(*type), min, max);
    /* Bounded by the limits above and by the file: what is there of it. */
    uint64_t have = n + REC_SUM_BYTES <= avail - REC_HEAD_BYTES ? n + REC_SUM_BYTES : avail - REC_HEAD_BYTES;
    if ((rc = s_reserve(s, REC_HEAD_BYTES + (size_t)have, err)))
        return rc;
    errno = 0;
    if (s_read_at(s->fd, off + REC_HEAD_BYTES, s->buf + REC_HEAD_BYTES, (size_t)have) != (ssize_t)have)
        return SF_ERR(err, SF_E_IO, "cannot read journal '%s': %s", s->path, errno ? strerror(errno) : "file shrank");
    uint64_t implied;
    if ((rc = s_implied_length(s, off, *type, s->buf + REC_HEAD_BYTES, have, &implied, err)))
        return rc;
    if (implied != UINT64_MAX && implied != n)
        return S_DAMAGED(s, err, off, "length %" PRIu64 " does not match the record's fields (%" PRIu64 ")", n,
                         implied);
    if (have < n + REC_SUM_BYTES) {
        *torn = true;
        return SF_OK;
    }
    uint64_t sum = s_get_u64(s->buf + REC_HEAD_BYTES + n);
    *n_payload = n;
    if (sf_hash_xxh3(s->buf, REC_HEAD_BYTES + (size_t)n) != sum) {
        if (*type == REC_SUBMIT) /* synced before the render was accepted */
            return S_DAMAGED(s, err, off, "checksum mismatch");
        *bad = true;
    }
    return SF_OK;
}

/* A str field of a checked submission: no NUL inside. */
static bool s_text_ok(const uint8_t *p, uint32_t n) { return memchr(p, '\0', n) == NULL; }

static sf_rc s_check_submit_record(s_scan_t *s, uint64_t off, const uint8_t *p, sf_err_t *err)
{
    uint32_t id = s_get_u32(p);
    if (id != s->render_id)
        return S_DAMAGED(s, err, off, "the submission is for render %" PRIu32 ", the file name says %" PRIu32, id,
                         s->render_id);
    int64_t segment_frames = (int64_t)s_get_u64(p + 8);
    if (segment_frames < 0 || segment_frames > (int64_t)SF_WIRE_MAX_FRAMES)
        return S_DAMAGED(s, err, off, "segment of %" PRId64 " frames is out of range", segment_frames);
    if (p[16] > 1)
        return S_DAMAGED(s, err, off, "force is %u, not 0 or 1", p[16]);
    const uint8_t *f = p + SUBMIT_FIXED;
    for (int i = 0; i < 3; i++) { /* the str fields; their lengths were checked */
        uint32_t n = s_get_u32(f);
        if (!s_text_ok(f + 4, n) || (i < 2 && f[4] != '/'))
            return S_DAMAGED(s, err, off, "%s is not %s", s_submit_fields[i].name, i < 2 ? "an absolute path" : "text");
        f += 4 + n;
    }
    return SF_OK;
}

static sf_rc s_check_segment_record(s_scan_t *s, uint64_t off, const uint8_t *p, uint64_t n_payload, sf_err_t *err)
{
    uint64_t job_index = s_get_u64(p);
    uint32_t n_name = s_get_u32(p + 28);
    if (!s_text_ok(p + SEGMENT_FIXED, n_name))
        return S_DAMAGED(s, err, off, "node name of job %" PRIu64 " is not text", job_index);
    const uint8_t *frames = p + SEGMENT_FIXED + n_name;
    if (sf_hash_xxh3(frames, (size_t)(n_payload - SEGMENT_FIXED - n_name)) != s_get_u64(p + 20))
        return S_DAMAGED(s, err, off, "the frames of job %" PRIu64 " do not match their xxh3", job_index);
    if (s->n_segs == s->cap_segs) {
        size_t cap = s->cap_segs ? 2 * s->cap_segs : 64;
        s_seg_ref_t *segs = sf_realloc(s->segs, cap * sizeof *segs);
        if (!segs)
            return SF_ERR(err, SF_E_NOMEM, "out of memory");
        s->segs = segs;
        s->cap_segs = cap;
    }
    s->segs[s->n_segs++] = (s_seg_ref_t){.job_index = job_index, .offset = off, .n_payload = n_payload};
    return SF_OK;
}

static int s_cmp_ref(const void *a, const void *b)
{
    const s_seg_ref_t *x = a, *y = b;
    if (x->job_index != y->job_index)
        return x->job_index < y->job_index ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* No job twice; fills s->jobs, ascending. */
static sf_rc s_check_duplicates(s_scan_t *s, sf_err_t *err)
{
    if (s->n_segs == 0)
        return SF_OK;
    s_seg_ref_t *sorted = sf_malloc(s->n_segs * sizeof *sorted);
    s->jobs = sf_malloc(s->n_segs * sizeof *s->jobs);
    if (!sorted || !s->jobs) {
        sf_free(sorted);
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    }
    memcpy(sorted, s->segs, s->n_segs * sizeof *sorted);
    qsort(sorted, s->n_segs, sizeof *sorted, s_cmp_ref);
    sf_rc rc = SF_OK;
    for (size_t i = 0; i < s->n_segs && rc == SF_OK; i++) {
        if (i > 0 && sorted[i].job_index == sorted[i - 1].job_index)
            rc = S_DAMAGED(s, err, sorted[i].offset,
                           "job %" PRIu64 " is journalled twice (first at byte %" PRIu64
                           "): a segment must not land twice",
                           sorted[i].job_index, sorted[i - 1].offset);
        s->jobs[i] = sorted[i].job_index;
    }
    sf_free(sorted);
    return rc;
}

/* The file head: SF_OK and *torn when the file ends inside it (with the
 * bytes there as they should be, or zeros). */
static sf_rc s_check_head(s_scan_t *s, bool *torn, sf_err_t *err)
{
    uint8_t head[FILE_HEAD_BYTES], want[FILE_HEAD_BYTES];
    memcpy(want, MAGIC, MAGIC_BYTES);
    s_put_u32(want + MAGIC_BYTES, FORMAT_VERSION);
    ssize_t n = s_read_at(s->fd, 0, head, sizeof head);
    if (n < 0)
        return SF_ERR(err, SF_E_IO, "cannot read journal '%s': %s", s->path, strerror(errno));
    *torn = ((size_t)n < sizeof head && memcmp(head, want, (size_t)n) == 0) || s_zero_from(s, 0);
    if (*torn)
        return SF_OK;
    if ((size_t)n < sizeof head || memcmp(head, MAGIC, MAGIC_BYTES) != 0)
        return SF_ERR(err, SF_E_IO, "journal '%s': not a stemfarm journal (no '%s' at byte 0)", s->path, MAGIC);
    s->version = s_get_u32(head + MAGIC_BYTES);
    if (s->version < 1 || s->version > FORMAT_VERSION)
        return SF_ERR(err, SF_E_IO, "journal '%s': format version %" PRIu32 " (this build reads 1..%u)", s->path,
                      s->version, FORMAT_VERSION);
    return SF_OK;
}

/* Cuts a torn last record off and syncs, so appending can go on. */
static sf_rc s_cut_tail(s_scan_t *s, uint64_t off, sf_err_t *err)
{
    if (ftruncate(s->fd, (off_t)off) != 0 || fsync(s->fd) != 0)
        return SF_ERR(err, SF_E_IO, "journal '%s': cannot cut its torn last record at byte %" PRIu64 ": %s", s->path,
                      off, strerror(errno));
    s->size = off;
    return SF_OK;
}

/* Checks the whole journal: every record, every checksum, every segment's
 * frames, no job twice. SF_OK with *state; SF_E_NOMEM. */
static sf_rc s_scan(s_scan_t *s, s_scan_state_t *state, sf_err_t *err)
{
    struct stat st;
    if (fstat(s->fd, &st) != 0) {
        *state = SCAN_DAMAGED;
        SF_ERR(err, SF_E_IO, "cannot read journal '%s': %s", s->path, strerror(errno));
        return SF_OK;
    }
    s->size = (uint64_t)st.st_size;
    bool torn = false;
    sf_rc rc = s_check_head(s, &torn, err);
    uint64_t off = FILE_HEAD_BYTES;
    uint64_t bad_at = UINT64_MAX; /* the first record whose checksum failed */
    while (rc == SF_OK && !torn && off < s->size) {
        uint32_t type = 0;
        uint64_t n = 0;
        bool bad;
        if ((rc = s_read_record(s, off, &type, &n, &torn, &bad, err)) || torn)
            break;
        if (bad) {
            if (bad_at == UINT64_MAX)
                bad_at = off;
            off += REC_HEAD_BYTES + n + REC_SUM_BYTES;
            continue;
        }
        if (bad_at != UINT64_MAX) {
            rc = S_DAMAGED(s, err, bad_at, "checksum mismatch");
            break;
        }
        const uint8_t *p = s->buf + REC_HEAD_BYTES;
        if ((off == FILE_HEAD_BYTES) != (type == REC_SUBMIT)) {
            rc = off == FILE_HEAD_BYTES
                     ? S_DAMAGED(s, err, off, "the first record is a %s record, not the submission", s_type_name(type))
                     : S_DAMAGED(s, err, off, "a second submission record");
            break;
        }
        if (type == REC_FINISH) {
            *state = SCAN_FINISHED;
            return SF_OK;
        }
        if (type == REC_COMMIT) {
            s->n_counted = s->n_segs;
            s->committed = true;
        } else if (type == REC_SEGMENT)
            rc = s_check_segment_record(s, off, p, n, err);
        else if ((rc = s_check_submit_record(s, off, p, err)) == SF_OK) {
            if (!(s->submit = sf_malloc((size_t)n)))
                return SF_ERR(err, SF_E_NOMEM, "out of memory");
            memcpy(s->submit, p, (size_t)n);
        }
        if (rc == SF_OK)
            off += REC_HEAD_BYTES + n + REC_SUM_BYTES;
    }
    if (rc == SF_E_NOMEM)
        return rc;
    if (rc == SF_OK && bad_at != UINT64_MAX) {
        off = bad_at;
        torn = true;
    }
    if (s->version == 1 && !s->committed) /* each segment was synced and counted on its own */
        s->n_counted = s->n_segs;
    if (rc == SF_OK && (torn || off == FILE_HEAD_BYTES) && !s->submit) {
        *state = SCAN_TORN_SUBMIT;
        return SF_OK;
    }
    if (rc == SF_OK && torn)
        rc = s_cut_tail(s, off, err);
    if (rc == SF_OK)
        rc = s_check_duplicates(s, err);
    if (rc == SF_E_NOMEM)
        return rc;
    s->good_end = off;
    *state = rc == SF_OK ? SCAN_RESUME : SCAN_DAMAGED;
    return SF_OK;
}

/* ---- replay: handing a checked journal over ------------------------------ */

static void s_report(const journal_replay_fns_t *fns, void *ctx, uint32_t render_id, const sf_err_t *e)
{
    if (fns->on_error)
        fns->on_error(ctx, render_id, e);
}

/* A callback failed: on_error gets its message, or one naming the journal
 * when it left none. */
static void s_report_callback(const journal_replay_fns_t *fns, void *ctx, const s_scan_t *s, sf_err_t *e)
{
    if (!e->code)
        SF_ERR(e, SF_E_INTERNAL, "journal '%s': replaying it failed", s->path);
    s_report(fns, ctx, s->render_id, e);
}

/* The submission's fields; strings in `strings` (3 of them, caller frees). */
static void s_decode_submit(const s_scan_t *s, journal_submit_t *sub, char *strings[3])
{
    const uint8_t *p = s->submit;
    sub->render_id = s_get_u32(p);
    sub->priority = (int32_t)s_get_u32(p + 4);
    sub->segment_frames = (int64_t)s_get_u64(p + 8);
    sub->force = p[16] != 0;
    const uint8_t *f = p + SUBMIT_FIXED;
    const uint8_t *field[SUBMIT_N_FIELDS];
    uint32_t n[SUBMIT_N_FIELDS];
    for (int i = 0; i < SUBMIT_N_FIELDS; i++) {
        n[i] = s_get_u32(f);
        field[i] = f + 4;
        f += 4 + n[i];
    }
    for (int i = 0; i < 3; i++)
        strings[i] = sf_strndup((const char *)field[i], n[i]);
    sub->session_path = strings[0];
    sub->out_dir = strings[1];
    sub->profile = strings[2];
    sub->client_id = field[3];
    sub->n_client_id = n[3];
    sub->yaml = field[4];
    sub->n_yaml_bytes = n[4];
}

/* Reads a checked segment record again and decodes its frames into *frames
 * (grown as needed). SF_E_IO when it changed since it was checked. */
static sf_rc s_reread_segment(s_scan_t *s, const s_seg_ref_t *ref, journal_segment_t *seg, float **frames,
                              size_t *cap_frames, sf_err_t *err)
{
    size_t n_rec = REC_HEAD_BYTES + (size_t)ref->n_payload + REC_SUM_BYTES;
    sf_rc rc = s_reserve(s, n_rec, err);
    if (rc)
        return rc;
    if (s_read_at(s->fd, ref->offset, s->buf, n_rec) != (ssize_t)n_rec ||
        sf_hash_xxh3(s->buf, n_rec - REC_SUM_BYTES) != s_get_u64(s->buf + n_rec - REC_SUM_BYTES))
        return S_DAMAGED(s, err, ref->offset, "changed while it was replayed");
    const uint8_t *p = s->buf + REC_HEAD_BYTES;
    seg->job_index = s_get_u64(p);
    seg->n_channels = s_get_u32(p + 8);
    seg->n_frames = s_get_u64(p + 12);
    seg->xxh3 = s_get_u64(p + 20);
    uint32_t n_name = s_get_u32(p + 28);
    size_t n_samples = (size_t)(seg->n_channels * seg->n_frames);
    if (n_samples > *cap_frames) {
        sf_free(*frames);
        *cap_frames = 0;
        if (!(*frames = sf_aligned_alloc(n_samples * sizeof **frames)))
            return SF_ERR(err, SF_E_NOMEM, "out of memory");
        *cap_frames = n_samples;
    }
    const uint8_t *src = p + SEGMENT_FIXED + n_name;
    for (size_t i = 0; i < n_samples; i++) {
        uint32_t bits = s_get_u32(src + 4 * i);
        memcpy(&(*frames)[i], &bits, 4);
    }
    seg->planar = *frames;
    /* The name is followed by frames: it moves to the front of the buffer,
     * over the head, where a NUL fits after it. */
    memmove(s->buf, p + SEGMENT_FIXED, n_name);
    s->buf[n_name] = '\0';
    seg->node_name = (const char *)s->buf;
    return SF_OK;
}

/* on_submit, then on_segment for each segment; on_error when they fail. */
static sf_rc s_hand_over(s_scan_t *s, const char *state_dir, const journal_replay_fns_t *fns, void *ctx)
{
    sf_err_t e = {0};
    journal_t *j = s_journal_new(state_dir, s->render_id);
    char *strings[3] = {NULL, NULL, NULL};
    journal_submit_t sub = {0};
    s_decode_submit(s, &sub, strings);
    sf_rc rc = SF_OK;
    if (!j || !strings[0] || !strings[1] || !strings[2]) {
        rc = SF_ERR(&e, SF_E_NOMEM, "out of memory");
        goto free_all;
    }
    j->fd = open(s->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (j->fd < 0) {
        SF_ERR(&e, SF_E_IO, "cannot open journal '%s': %s", s->path, strerror(errno));
        s_report(fns, ctx, s->render_id, &e);
        goto free_all;
    }
    j->n_bytes = s->good_end;
    j->jobs = s->jobs; /* ascending and unique, as the journal keeps them */
    j->n_jobs = j->cap_jobs = s->n_segs;
    j->n_pending = s->n_segs - s->n_counted;
    s->jobs = NULL;

    if (fns->on_submit(ctx, &sub, &j, &e) != SF_OK) {
        s_report_callback(fns, ctx, s, &e);
        goto free_all;
    }
    float *frames = NULL;
    size_t cap_frames = 0;
    for (size_t i = 0; i < s->n_segs; i++) {
        journal_segment_t seg;
        sf_rc r = s_reread_segment(s, &s->segs[i], &seg, &frames, &cap_frames, &e);
        seg.counted = i < s->n_counted;
        if (r) {
            /* The callee holds a render it must now drop; out of memory
             * also ends the whole replay. */
            s_report(fns, ctx, s->render_id, &e);
            rc = r == SF_E_NOMEM ? r : SF_OK;
            break;
        }
        if (fns->on_segment(ctx, s->render_id, &seg, &e) != SF_OK) {
            s_report_callback(fns, ctx, s, &e);
            break;
        }
    }
    sf_free(frames);

free_all:
    for (int i = 0; i < 3; i++)
        sf_free(strings[i]);
    journal_close(&j);
    return rc;
}

/* Render id of a journal's file name ("render-ID.journal", ID 1.. without
 * leading zeros), or 0 for any other name. */
static uint32_t s_name_id(const char *name)
{
    static const char prefix[] = "render-", suffix[] = ".journal";
    if (strncmp(name, prefix, sizeof prefix - 1) != 0)
        return 0;
    const char *d = name + sizeof prefix - 1;
    uint64_t id = 0;
    size_t n = 0;
    while (d[n] >= '0' && d[n] <= '9' && n < 10)
        id = id * 10 + (uint64_t)(d[n++] - '0');
    if (n == 0 || d[0] == '0' || id > UINT32_MAX || strcmp(d + n, suffix) != 0)
        return 0;
    return (uint32_t)id;
}

static int s_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The render ids of the journals in state_dir, ascending (*ids owned). */
static sf_rc s_list(const char *state_dir, uint32_t **ids, size_t *n_ids, sf_err_t *err)
{
    *ids = NULL;
    *n_ids = 0;
    DIR *dir = opendir(state_dir);
    if (!dir)
        return errno == ENOENT ? SF_OK
                               : SF_ERR(err, SF_E_IO, "cannot list state folder '%s': %s", state_dir, strerror(errno));
    size_t cap = 0;
    sf_rc rc = SF_OK;
    struct dirent *de;
    while (rc == SF_OK && (errno = 0, de = readdir(dir)) != NULL) {
        uint32_t id = s_name_id(de->d_name);
        if (!id)
            continue;
        if (*n_ids == cap) {
            cap = cap ? 2 * cap : 16;
            uint32_t *grown = sf_realloc(*ids, cap * sizeof *grown);
            if (!grown) {
                rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
                break;
            }
            *ids = grown;
        }
        (*ids)[(*n_ids)++] = id;
    }
    if (rc == SF_OK && errno != 0)
        rc = SF_ERR(err, SF_E_IO, "cannot list state folder '%s': %s", state_dir, strerror(errno));
    closedir(dir);
    if (rc) {
        sf_free(*ids);
        *ids = NULL;
        *n_ids = 0;
        return rc;
    }
    if (*n_ids)
        qsort(*ids, *n_ids, sizeof **ids, s_cmp_u32);
    return SF_OK;
}

/* Checks and replays one journal. SF_OK unless out of memory. */
static sf_rc s_replay_one(const char *state_dir, uint32_t render_id, const journal_replay_fns_t *fns, void *ctx)
{
    sf_err_t e = {0};
    s_scan_t s = {.render_id = render_id, .fd = -1};
    char *path = s_journal_path(state_dir, render_id);
    if (!path)
        return SF_E_NOMEM;
    s.path = path;
    sf_rc rc = SF_OK;
    s_scan_state_t state = SCAN_DAMAGED;
    s.fd = open(path, O_RDWR | O_CLOEXEC);
    if (s.fd < 0)
        SF_ERR(&e, SF_E_IO, "cannot open journal '%s': %s", path, strerror(errno));
    else
        rc = s_scan(&s, &state, &e);
    if (rc)
        goto free_all;
    switch (state) {
    case SCAN_RESUME: rc = s_hand_over(&s, state_dir, fns, ctx); break;
    case SCAN_DAMAGED: s_report(fns, ctx, render_id, &e); break;
    case SCAN_TORN_SUBMIT:
    case SCAN_FINISHED:
        if (unlink(path) != 0)
            SF_ERR(&e, SF_E_IO, "cannot remove journal '%s': %s", path, strerror(errno));
        else if (s_sync_dir(state_dir, &e) == SF_OK && state == SCAN_TORN_SUBMIT)
            SF_ERR(&e, SF_E_IO,
                   "journal '%s': removed: its submission record is incomplete (the coordinator stopped while "
                   "accepting render %" PRIu32 ")",
                   path, render_id);
        if (e.code)
            s_report(fns, ctx, render_id, &e);
        break;
    }

free_all:
    if (s.fd >= 0)
        close(s.fd);
    sf_free(s.buf);
    sf_free(s.submit);
    sf_free(s.segs);
    sf_free(s.jobs);
    sf_free(path);
    return rc;
}

sf_rc journal_replay(const char *state_dir, const journal_replay_fns_t *fns, void *ctx, uint32_t *max_render_id,
                     sf_err_t *err)
{
    assert(state_dir && fns && fns->on_submit && fns->on_segment);
    if (max_render_id)
        *max_render_id = 0;
    uint32_t *ids;
    size_t n_ids;
    sf_rc rc = s_list(state_dir, &ids, &n_ids, err);
    if (rc)
        return rc;
    if (max_render_id && n_ids)
        *max_render_id = ids[n_ids - 1];
    for (size_t i = 0; i < n_ids && rc == SF_OK; i++)
        if (s_replay_one(state_dir, ids[i], fns, ctx) == SF_E_NOMEM)
            rc = SF_ERR(err, SF_E_NOMEM, "out of memory replaying the journal of render %" PRIu32, ids[i]);
    sf_free(ids);
    return rc;
}

/* ---- incarnation --------------------------------------------------------- */

/* The counter in `path`: SF_OK with 0 when there is no file. */
static sf_rc s_read_incarnation(const char *path, uint32_t *value, sf_err_t *err)
{
    *value = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? SF_OK : SF_ERR(err, SF_E_IO, "cannot open '%s': %s", path, strerror(errno));
    char text[16];
    ssize_t n = s_read_at(fd, 0, text, sizeof text);
    int e = errno;
    close(fd);
    if (n < 0)
        return SF_ERR(err, SF_E_IO, "cannot read '%s': %s", path, strerror(e));
    uint64_t v = 0;
    ssize_t i = 0;
    while (i < n && i < 10 && text[i] >= '0' && text[i] <= '9')
        v = v * 10 + (uint64_t)(text[i++] - '0');
    if (i == 0 || i + 1 != n || text[i] != '\n' || v > UINT32_MAX)
        return SF_ERR(err, SF_E_IO,
                      "incarnation file '%s' is garbled: expected a decimal number up to %" PRIu32
                      " and a newline (remove it to start over at 1)",
                      path, UINT32_MAX);
    *value = (uint32_t)v;
    return SF_OK;
}

sf_rc journal_next_incarnation(const char *state_dir, uint32_t *out, sf_err_t *err)
{
    assert(state_dir && out);
    sf_rc rc = s_make_dir(state_dir, err);
    if (rc)
        return rc;
    char *path = s_join(state_dir, INCARNATION_NAME);
    char *tmp = s_join(state_dir, INCARNATION_NAME ".tmp");
    if (!path || !tmp) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
        goto free_all;
    }
    uint32_t value;
    if ((rc = s_read_incarnation(path, &value, err)))
        goto free_all;
    if (value == UINT32_MAX) {
        rc = SF_ERR(err, SF_E_IO, "incarnation file '%s': the counter is exhausted", path);
        goto free_all;
    }
    value++;
    /* Written aside and renamed over: a crash leaves the old or the new
     * number, never a torn one. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = SF_ERR(err, SF_E_IO, "cannot create '%s': %s", tmp, strerror(errno));
        goto free_all;
    }
    char text[16];
    int n = snprintf(text, sizeof text, "%" PRIu32 "\n", value);
    int e = s_write_all(fd, text, (size_t)n);
    if (!e && fsync(fd) != 0)
        e = errno;
    close(fd);
    if (!e && rename(tmp, path) != 0)
        e = errno;
    if (e) {
        unlink(tmp);
        rc = SF_ERR(err, SF_E_IO, "cannot write '%s': %s", path, strerror(e));
        goto free_all;
    }
    if ((rc = s_sync_dir(state_dir, err)))
        goto free_all;
    *out = value;

free_all:
    sf_free(path);
    sf_free(tmp);
    return rc;
}
