/* cache.c -- the shipped-media cache of a node (see cache.h).
 *
 * Invariants: only files whose name is 64 lowercase hex digits count as
 * cached (sizes for the cap, candidates for eviction); `.part` files belong
 * to the fetch in progress and are never evicted, and at most one exists
 * per hash.
 */
/* realpath(3) and d_type are XSI / BSD: glibc declares them with _XOPEN_SOURCE. */
#define _XOPEN_SOURCE 700

#include "cache.h"

#include "sf/alloc.h"
#include "sf/hash.h"
#include "sf/media.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_READ_BYTES (1u << 20)

struct cache {
    char *dir; /* owned, absolute */
    uint64_t max_bytes;
};

struct cache_part {
    char path[PATH_MAX];       /* DIR/<hex>.part */
    char final[PATH_MAX - 16]; /* DIR/<hex>; room for the suffix in path */
    uint8_t sha256[32];
    uint64_t n_bytes, written;
    int fd;
    sf_sha256_stream_t *stream;
};

static bool s_is_hex_name(const char *name, const char *suffix)
{
    size_t n = strlen(name), n_suffix = strlen(suffix);
    if (n != 64 + n_suffix || strcmp(name + 64, suffix) != 0)
        return false;
    for (size_t i = 0; i < 64; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return false;
    return true;
}

void cache_path(const char *dir, const uint8_t sha256[32], char *buf, size_t n_bytes)
{
    char hex[65];
    sf_hash_hex(sha256, 32, hex);
    snprintf(buf, n_bytes, "%s/%s", dir, hex);
}

sf_rc cache_open(const char *dir, uint64_t max_bytes, cache_t **out, sf_err_t *err)
{
    *out = NULL;
    sf_rc rc = sf_media_mkdirs(dir, err);
    if (rc)
        return rc;
    DIR *dp = opendir(dir);
    if (!dp)
        return SF_ERR(err, SF_E_IO, "cannot open the media cache '%s': %s", dir, strerror(errno));
    /* A .part is only ever the fetch of a running node: any found now was
     * left by one that stopped. */
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (!s_is_hex_name(de->d_name, ".part"))
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(dp);
    cache_t *c = sf_calloc(1, sizeof *c);
    if (!c || !(c->dir = sf_strdup(dir))) {
        sf_free(c);
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    }
    c->max_bytes = max_bytes ? max_bytes : CACHE_DEFAULT_MAX_BYTES;
    *out = c;
    return SF_OK;
}

void cache_destroy(cache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_free((*self_p)->dir);
    sf_free(*self_p);
    *self_p = NULL;
}

const char *cache_dir(const cache_t *c) { return c->dir; }
uint64_t cache_max_bytes(const cache_t *c) { return c->max_bytes; }

sf_rc cache_verify(const char *dir, const uint8_t sha256[32], uint64_t n_bytes, sf_err_t *err)
{
    char path[PATH_MAX];
    cache_path(dir, sha256, path, sizeof path);
    struct stat st;
    if (stat(path, &st) != 0)
        return SF_ERR(err, SF_E_INPUT, "'%s' is not cached", path);
    uint8_t got[32];
    sf_rc rc = SF_OK;
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != n_bytes) {
        rc = SF_ERR(err, SF_E_IO, "cached '%s' has %jd bytes, expected %" PRIu64 ": deleted", path,
                    (intmax_t)st.st_size, n_bytes);
    } else if ((rc = sf_hash_sha256_file(path, got, err))) {
        rc = SF_E_IO;
    } else if (memcmp(got, sha256, 32) != 0) {
        char hex[65];
        sf_hash_hex(got, 32, hex);
        rc = SF_ERR(err, SF_E_IO, "cached '%s' is corrupt (its bytes hash to %s): deleted", path, hex);
    }
    if (rc) {
        unlink(path);
        return rc;
    }
    /* Its time of use, for the eviction order. */
    utimensat(AT_FDCWD, path, NULL, 0);
    return SF_OK;
}

typedef struct {
    char name[65];
    uint64_t n_bytes;
    struct timespec used;
} s_entry_t;

static int s_by_use(const void *a, const void *b)
{
    const s_entry_t *x = a, *y = b;
    if (x->used.tv_sec != y->used.tv_sec)
        return x->used.tv_sec < y->used.tv_sec ? -1 : 1;
    if (x->used.tv_nsec != y->used.tv_nsec)
        return x->used.tv_nsec < y->used.tv_nsec ? -1 : 1;
    return strcmp(x->name, y->name);
}

static bool s_kept(const char *name, const uint8_t (*keep)[32], size_t n_keep)
{
    char hex[65];
    for (size_t i = 0; i < n_keep; i++) {
        sf_hash_hex(keep[i], 32, hex);
        if (!strcmp(hex, name))
            return true;
    }
    return false;
}

sf_rc cache_make_room(cache_t *c, uint64_t n_bytes, const uint8_t (*keep)[32], size_t n_keep, size_t *n_evicted,
                      sf_err_t *err)
{
    *n_evicted = 0;
    DIR *dp = opendir(c->dir);
    if (!dp)
        return SF_ERR(err, SF_E_IO, "cannot open the media cache '%s': %s", c->dir, strerror(errno));
    s_entry_t *entries = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0;
    sf_rc rc = SF_OK;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (!s_is_hex_name(de->d_name, ""))
            continue;
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", c->dir, de->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            s_entry_t *grown = sf_realloc(entries, cap * sizeof *grown);
            if (!grown) {
                rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
                goto out;
            }
            entries = grown;
        }
        memcpy(entries[n].name, de->d_name, 64); /* s_is_hex_name: exactly 64 */
        entries[n].name[64] = '\0';
        entries[n].n_bytes = (uint64_t)st.st_size;
        entries[n].used = st.st_mtim;
        total += entries[n].n_bytes;
        n++;
    }
    if (n > 1)
        qsort(entries, n, sizeof *entries, s_by_use);
    for (size_t i = 0; i < n && total + n_bytes > c->max_bytes; i++) {
        if (s_kept(entries[i].name, keep, n_keep))
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", c->dir, entries[i].name);
        if (unlink(path) == 0) {
            total -= entries[i].n_bytes;
            (*n_evicted)++;
        }
    }
    if (total + n_bytes > c->max_bytes)
        rc = SF_ERR(err, SF_E_INPUT,
                    "the media cache '%s' cannot hold %" PRIu64 " more bytes: its cap is %" PRIu64 " bytes and %" PRIu64
                    " are in use by the sessions this node holds (raise cache max_size)",
                    c->dir, n_bytes, c->max_bytes, total);
out:
    closedir(dp);
    sf_free(entries);
    return rc;
}

sf_rc cache_part_open(cache_t *c, const uint8_t sha256[32], uint64_t n_bytes, cache_part_t **out, sf_err_t *err)
{
    *out = NULL;
    cache_part_t *p = sf_calloc(1, sizeof *p);
    if (!p || !(p->stream = sf_sha256_stream_new())) {
        sf_free(p);
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    }
    cache_path(c->dir, sha256, p->final, sizeof p->final);
    snprintf(p->path, sizeof p->path, "%s.part", p->final);
    memcpy(p->sha256, sha256, 32);
    p->n_bytes = n_bytes;
    p->fd = open(p->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (p->fd < 0) {
        sf_rc rc = SF_ERR(err, SF_E_IO, "cannot create '%s': %s", p->path, strerror(errno));
        sf_sha256_stream_destroy(&p->stream);
        sf_free(p);
        return rc;
    }
    *out = p;
    return SF_OK;
}

uint64_t cache_part_written(const cache_part_t *p) { return p->written; }

sf_rc cache_part_write(cache_part_t *p, uint64_t offset, const void *data, size_t n_bytes, sf_err_t *err)
{
    if (offset != p->written || n_bytes > p->n_bytes - p->written)
        return SF_ERR(err, SF_E_INPUT, "bytes %" PRIu64 "..%" PRIu64 " of '%s' do not follow the %" PRIu64 " written",
                      offset, offset + n_bytes, p->path, p->written);
    const uint8_t *b = data;
    size_t done = 0;
    while (done < n_bytes) {
        ssize_t w = pwrite(p->fd, b + done, n_bytes - done, (off_t)(offset + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return SF_ERR(err, SF_E_IO, "cannot write '%s': %s", p->path, w < 0 ? strerror(errno) : "short write");
        done += (size_t)w;
    }
    sf_sha256_stream_update(p->stream, data, n_bytes);
    p->written += n_bytes;
    return SF_OK;
}

static void s_part_free(cache_part_t *p)
{
    if (p->fd >= 0)
        close(p->fd);
    sf_sha256_stream_destroy(&p->stream);
    sf_free(p);
}

sf_rc cache_part_finish(cache_part_t **p_p, sf_err_t *err)
{
    cache_part_t *p = *p_p;
    *p_p = NULL;
    sf_rc rc = SF_OK;
    uint8_t got[32];
    if (p->written != p->n_bytes) {
        rc = SF_ERR(err, SF_E_INPUT, "'%s' has %" PRIu64 " of %" PRIu64 " bytes", p->path, p->written, p->n_bytes);
    } else {
        sf_sha256_stream_final(p->stream, got);
        if (memcmp(got, p->sha256, 32) != 0) {
            char want[65], have[65];
            sf_hash_hex(p->sha256, 32, want);
            sf_hash_hex(got, 32, have);
            rc = SF_ERR(err, SF_E_INPUT, "its bytes hash to %s, not %s: deleted", have, want);
        } else if (fsync(p->fd) != 0 || close(p->fd) != 0) {
            p->fd = -1;
            rc = SF_ERR(err, SF_E_IO, "cannot write '%s': %s", p->path, strerror(errno));
        } else {
            p->fd = -1;
            if (rename(p->path, p->final) != 0)
                rc = SF_ERR(err, SF_E_IO, "cannot rename '%s': %s", p->path, strerror(errno));
        }
    }
    if (rc)
        unlink(p->path);
    s_part_free(p);
    return rc;
}

void cache_part_abort(cache_part_t **p_p)
{
    if (!p_p || !*p_p)
        return;
    unlink((*p_p)->path);
    s_part_free(*p_p);
    *p_p = NULL;
}
