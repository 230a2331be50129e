/* ship.c -- a render's media list for shipping nodes (see ship.h).
 *
 * Invariants: files[i] and wire[i] describe the same file; a file's name is
 * unique in the list (the loader resolves one name to one file); hashing
 * walks the list in order, one file open at a time, so `next` files are
 * done and file `next` is hashed up to `at` bytes.
 */
#include "ship.h"

#include "sf/alloc.h"
#include "sf/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_READ_BYTES (1u << 20) /* one read while hashing */

typedef struct {
    const char *name; /* borrowed from the session: as written */
    const char *path; /* borrowed from the session: the file read */
    uint8_t sha256[32];
} s_file_t;

struct ship {
    s_file_t *files;
    sf_wire_media_t *wire;
    size_t n_files;
    size_t next;                  /* files before it are hashed */
    int fd;                       /* file `next` while hashing, or -1 */
    uint64_t at;                  /* bytes of it hashed */
    sf_sha256_stream_t *stream;   /* of file `next` */
    uint8_t *buf;                 /* S_READ_BYTES */
    char error[SF_WIRE_MAX_TEXT]; /* set once hashing failed */
};

static sf_rc s_add(ship_t *sh, size_t *cap, const char *name, const char *path, sf_err_t *err)
{
    if (!name || !path)
        return SF_OK;
    for (size_t i = 0; i < sh->n_files; i++)
        if (!strcmp(sh->files[i].name, name))
            return SF_OK;
    if (sh->n_files == SF_WIRE_MAX_LIST)
        return SF_ERR(err, SF_E_INPUT, "the session reads more than %d media files: too many to ship",
                      SF_WIRE_MAX_LIST);
    if (sh->n_files == *cap) {
        size_t n = *cap ? 2 * *cap : 16;
        s_file_t *files = sf_realloc(sh->files, n * sizeof *files);
        if (!files)
            return SF_ERR(err, SF_E_NOMEM, "out of memory");
        sh->files = files;
        *cap = n;
    }
    sh->files[sh->n_files++] = (s_file_t){.name = name, .path = path};
    return SF_OK;
}

static sf_rc s_add_fx(ship_t *sh, size_t *cap, const sf_insert_t *fx, size_t n_fx, sf_err_t *err)
{
    sf_rc rc = SF_OK;
    for (size_t i = 0; i < n_fx && !rc; i++)
        rc = s_add(sh, cap, fx[i].ir_name, fx[i].ir_path, err);
    return rc;
}

sf_rc ship_new(const sf_session_t *s, ship_t **out, sf_err_t *err)
{
    *out = NULL;
    ship_t *sh = sf_calloc(1, sizeof *sh);
    if (!sh)
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    sh->fd = -1;
    size_t cap = 0;
    sf_rc rc = SF_OK;
    for (size_t t = 0; t < s->n_tracks && !rc; t++) {
        const sf_track_t *tr = &s->tracks[t];
        for (size_t k = 0; k < tr->n_clips && !rc; k++)
            rc = s_add(sh, &cap, tr->clips[k].source, tr->clips[k].path, err);
        if (!rc)
            rc = s_add_fx(sh, &cap, tr->fx, tr->n_fx, err);
    }
    for (size_t b = 0; b < s->n_buses && !rc; b++)
        rc = s_add_fx(sh, &cap, s->buses[b].fx, s->buses[b].n_fx, err);
    if (!rc)
        rc = s_add_fx(sh, &cap, s->master_fx, s->n_master_fx, err);
    if (!rc && !(sh->buf = sf_malloc(S_READ_BYTES)))
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
    if (!rc && sh->n_files && !(sh->wire = sf_calloc(sh->n_files, sizeof *sh->wire)))
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
    if (rc) {
        ship_destroy(&sh);
        return rc;
    }
    for (size_t i = 0; i < sh->n_files; i++)
        sh->wire[i] = (sf_wire_media_t){.name = sh->files[i].name, .sha256 = sh->files[i].sha256};
    *out = sh;
    return SF_OK;
}

void ship_destroy(ship_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ship_t *sh = *self_p;
    if (sh->fd >= 0)
        close(sh->fd);
    sf_sha256_stream_destroy(&sh->stream);
    sf_free(sh->files);
    sf_free(sh->wire);
    sf_free(sh->buf);
    sf_free(sh);
    *self_p = NULL;
}

bool ship_ready(const ship_t *sh) { return sh && !sh->error[0] && sh->next == sh->n_files; }

const sf_wire_media_t *ship_media(const ship_t *sh, size_t *n_files)
{
    *n_files = sh->n_files;
    return sh->wire;
}

__attribute__((format(printf, 3, 4))) static int s_fail(ship_t *sh, sf_err_t *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sh->error, sizeof sh->error, fmt, ap);
    va_end(ap);
    if (sh->fd >= 0)
        close(sh->fd);
    sh->fd = -1;
    SF_ERR(err, SF_E_IO, "%s", sh->error);
    return -1;
}

int ship_hash_step(ship_t *sh, size_t budget, sf_err_t *err)
{
    if (sh->error[0]) {
        SF_ERR(err, SF_E_IO, "%s", sh->error);
        return -1;
    }
    size_t done = 0;
    while (sh->next < sh->n_files) {
        s_file_t *f = &sh->files[sh->next];
        sf_wire_media_t *w = &sh->wire[sh->next];
        if (sh->fd < 0) {
            struct stat st;
            sh->fd = open(f->path, O_RDONLY | O_CLOEXEC);
            if (sh->fd < 0)
                return s_fail(sh, err, "cannot open media '%s' to ship it: %s", f->path, strerror(errno));
            if (fstat(sh->fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0)
                return s_fail(sh, err, "media '%s' is not a file with bytes: cannot ship it", f->path);
            w->n_bytes = (uint64_t)st.st_size;
            sh->at = 0;
            if (!sh->stream && !(sh->stream = sf_sha256_stream_new()))
                return s_fail(sh, err, "out of memory hashing '%s'", f->path);
        }
        if (done >= budget)
            return 0;
        ssize_t got = pread(sh->fd, sh->buf, S_READ_BYTES, (off_t)sh->at);
        if (got < 0)
            return s_fail(sh, err, "cannot read media '%s' to ship it: %s", f->path, strerror(errno));
        if (got == 0) {
            if (sh->at != w->n_bytes)
                return s_fail(sh, err,
                              "media '%s' changed size while it was hashed (%" PRIu64 " bytes, now %" PRIu64 ")",
                              f->path, w->n_bytes, sh->at);
            sf_sha256_stream_final(sh->stream, f->sha256);
            sf_sha256_stream_destroy(&sh->stream);
            close(sh->fd);
            sh->fd = -1;
            sh->next++;
            continue;
        }
        sf_sha256_stream_update(sh->stream, sh->buf, (size_t)got);
        sh->at += (uint64_t)got;
        done += (size_t)got;
    }
    return 1;
}

sf_rc ship_read(const ship_t *sh, uint32_t index, const uint8_t sha256[32], uint64_t offset, uint8_t *buf,
                size_t n_bytes, size_t *n_read, sf_err_t *err)
{
    *n_read = 0;
    if (!ship_ready(sh))
        return SF_ERR(err, SF_E_INPUT, "the session's media are not hashed yet");
    if (index >= sh->n_files)
        return SF_ERR(err, SF_E_INPUT, "media index %" PRIu32 " out of range: the session reads %zu files", index,
                      sh->n_files);
    const s_file_t *f = &sh->files[index];
    uint64_t size = sh->wire[index].n_bytes;
    if (memcmp(f->sha256, sha256, 32) != 0)
        return SF_ERR(err, SF_E_INPUT, "media %" PRIu32 " ('%s') has another sha256 than the one asked for", index,
                      f->name);
    if (offset >= size)
        return SF_ERR(err, SF_E_INPUT,
                      "offset %" PRIu64 " is at or past the end of media %" PRIu32 " (%" PRIu64 " bytes)", offset,
                      index, size);
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return SF_ERR(err, SF_E_IO, "cannot open media '%s': %s", f->name, strerror(errno));
    sf_rc rc = SF_OK;
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != size) {
        rc = SF_ERR(err, SF_E_IO, "media '%s' changed on the coordinator since it was hashed", f->name);
        goto out;
    }
    size_t want = n_bytes < size - offset ? n_bytes : (size_t)(size - offset);
    while (*n_read < want) {
        ssize_t got = pread(fd, buf + *n_read, want - *n_read, (off_t)(offset + *n_read));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            rc = SF_ERR(err, SF_E_IO, "cannot read media '%s': %s", f->name, got < 0 ? strerror(errno) : "short file");
            goto out;
        }
        *n_read += (size_t)got;
    }
out:
    close(fd);
    return rc;
}
