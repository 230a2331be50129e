/* deliver.c -- verification, atomic rename and manifest (see deliver.h). */
#include "deliver.h"

#include "sf/alloc.h"
#include "sf/hash.h"
#include "sf/media.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

sf_rc deliver_check_targets(const sf_session_t *s, const char *out_dir, bool force, sf_err_t *err)
{
    if (force)
        return SF_OK;
    char path[PATH_MAX], name[PATH_MAX];
    for (size_t i = 0; i <= s->n_stems; i++) {
        if (i < s->n_stems) {
            sf_rc rc = sf_session_stem_filename(s, i, name, sizeof name, err);
            if (rc)
                return rc;
        } else {
            snprintf(name, sizeof name, "manifest.json");
        }
        if (snprintf(path, sizeof path, "%s/%s", out_dir, name) >= (int)sizeof path)
            return SF_ERR(err, SF_E_INPUT, "output path '%s/%s' is too long", out_dir, name);
        if (access(path, F_OK) == 0)
            return SF_ERR(err, SF_E_INPUT, "'%s' exists (pass --force to replace it)", path);
    }
    return SF_OK;
}

static sf_rc s_fsync_dir(const char *dir, sf_err_t *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return SF_ERR(err, SF_E_IO, "cannot open '%s': %s", dir, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? SF_OK : SF_ERR(err, SF_E_IO, "cannot sync '%s': %s", dir, strerror(errno));
}

static const char *s_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Reads every partial back and compares it with what was written. */
static sf_rc s_verify(const plan_t *plan, stitch_t *st, json_t *checks_per_stem, sf_err_t *err)
{
    const sf_session_t *s = plan->session;
    int64_t expected = sf_session_n_frames(s);
    for (uint32_t i = 0; i < s->n_stems; i++) {
        const char *partial = stitch_partial_path(st, i);
        uint64_t hash;
        int64_t frames;
        int channels;
        sf_rc rc = sf_media_hash_pcm(partial, s->output.sample_format, &hash, &frames, &channels, err);
        if (rc)
            return rc;
        json_t *checks = json_array_get(checks_per_stem, i);
        if (frames != expected || stitch_frames_written(st, i) != expected)
            return SF_ERR(err, SF_E_VERIFY,
                          "'%s': check 'same_length' failed: %" PRId64 " frames, every stem must have %" PRId64,
                          s_basename(stitch_final_path(st, i)), frames, expected);
        json_array_append_new(checks, json_pack("{s:s, s:s, s:I}", "check", "same_length", "result", "pass",
                                                "frames", (json_int_t)frames));
        if (channels != s->stems[i].n_channels || hash != stitch_pcm_hash(st, i))
            return SF_ERR(err, SF_E_VERIFY,
                          "'%s': check 'read_back' failed: the file does not read back as the samples written",
                          s_basename(stitch_final_path(st, i)));
        json_array_append_new(checks, json_pack("{s:s, s:s}", "check", "read_back", "result", "pass"));
        if (s->output.sample_format != SF_SAMPLE_FLOAT32) {
            uint64_t clipped = stitch_clipped(st, i);
            json_array_append_new(checks, json_pack("{s:s, s:s, s:I}", "check", "clipping", "result",
                                                    clipped ? "warn" : "pass", "clipped_samples",
                                                    (json_int_t)clipped));
        }
    }
    return SF_OK;
}

static json_t *s_file_entry(const plan_t *plan, stitch_t *st, uint32_t i, const deliver_segment_t *segments,
                            const uint8_t sha[32], json_t *checks)
{
    const sf_session_t *s = plan->session;
    char sha_hex[65];
    sf_hash_hex(sha, 32, sha_hex);
    json_t *segs = json_array();
    for (uint32_t k = 0; segs && k < plan->n_segments; k++) {
        const deliver_segment_t *seg = &segments[plan_job_index(plan, i, k)];
        char xxh[17];
        snprintf(xxh, sizeof xxh, "%016" PRIx64, seg->xxh3);
        json_array_append_new(segs, json_pack("{s:i, s:I, s:s, s:s}", "index", (int)k, "frames",
                                              (json_int_t)plan->jobs[plan_job_index(plan, i, k)].n_frames,
                                              "xxh3", xxh, "node", seg->node_name));
    }
    return json_pack("{s:s, s:s, s:s, s:I, s:i, s:i, s:s, s:s, s:s, s:o, s:O}", "file",
                     s_basename(stitch_final_path(st, i)), "role", "stem", "stem", s->stems[i].name, "frames",
                     (json_int_t)stitch_frames_written(st, i), "sample_rate", s->sample_rate, "channels",
                     s->stems[i].n_channels, "format", sf_format_name(s->output.format), "sample_format",
                     sf_sample_format_name(s->output.sample_format), "sha256", sha_hex, "segments", segs,
                     "checks", checks);
}

static sf_rc s_write_manifest(json_t *manifest, const char *out_dir, char **manifest_path, sf_err_t *err)
{
    char final[PATH_MAX], partial[PATH_MAX];
    snprintf(final, sizeof final, "%s/manifest.json", out_dir);
    snprintf(partial, sizeof partial, "%s/manifest.json.partial", out_dir);
    int fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return SF_ERR(err, SF_E_IO, "cannot create '%s': %s", partial, strerror(errno));
    char *text = json_dumps(manifest, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    size_t n = text ? strlen(text) : 0;
    ssize_t w = text ? write(fd, text, n) : -1;
    ssize_t nl = write(fd, "\n", 1);
    free(text);
    if (w != (ssize_t)n || nl != 1 || fsync(fd) != 0) {
        close(fd);
        unlink(partial);
        return SF_ERR(err, SF_E_IO, "cannot write '%s'", partial);
    }
    close(fd);
    if (rename(partial, final) != 0) {
        unlink(partial);
        return SF_ERR(err, SF_E_IO, "cannot rename '%s': %s", partial, strerror(errno));
    }
    *manifest_path = sf_strdup(final);
    return *manifest_path ? SF_OK : SF_ERR(err, SF_E_NOMEM, "out of memory");
}

sf_rc deliver_finish(const plan_t *plan, stitch_t *st, const deliver_segment_t *segments,
                     const deliver_info_t *info, char **manifest_path, sf_err_t *err)
{
    const sf_session_t *s = plan->session;
    *manifest_path = NULL;
    sf_rc rc = SF_OK;
    json_t *checks_per_stem = json_array();
    json_t *files = json_array();
    json_t *manifest = NULL;
    if (!checks_per_stem || !files) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < s->n_stems; i++)
        json_array_append_new(checks_per_stem, json_array());
    rc = s_verify(plan, st, checks_per_stem, err);
    if (rc)
        goto done;
    for (uint32_t i = 0; i < s->n_stems; i++) {
        uint8_t sha[32];
        rc = sf_hash_sha256_file(stitch_partial_path(st, i), sha, err);
        if (rc)
            goto done;
        json_array_append_new(files, s_file_entry(plan, st, i, segments, sha, json_array_get(checks_per_stem, i)));
    }
    for (uint32_t i = 0; i < s->n_stems; i++) {
        if (rename(stitch_partial_path(st, i), stitch_final_path(st, i)) != 0) {
            rc = SF_ERR(err, SF_E_IO, "cannot rename '%s': %s", stitch_partial_path(st, i), strerror(errno));
            goto done;
        }
    }
    rc = s_fsync_dir(info->out_dir, err);
    if (rc)
        goto done;
    char hex[65];
    sf_session_hash_hex(s, hex);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    manifest = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:s}, s:{s:I, s:I, s:i, s:I, s:i, s:s, s:s, s:s, s:i, s:f}, s:O}",
                         "manifest_version", DELIVER_MANIFEST_VERSION, "stemfarm_version", STEMFARM_VERSION,
                         "created", when, "session", "name", s->name, "path", s->path, "hash", hex, "render",
                         "start", (json_int_t)s->start, "frames", (json_int_t)sf_session_n_frames(s),
                         "sample_rate", s->sample_rate, "segment_frames", (json_int_t)plan->segment_frames,
                         "segments", (int)plan->n_segments, "format", sf_format_name(s->output.format),
                         "sample_format", sf_sample_format_name(s->output.sample_format), "dither",
                         s->output.dither == SF_DITHER_NONE ? "none"
                         : s->output.dither == SF_DITHER_TPDF ? "tpdf" : "auto",
                         "nodes", info->n_nodes, "wall_seconds", info->wall_seconds, "files", files);
    if (!manifest) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
        goto done;
    }
    rc = s_write_manifest(manifest, info->out_dir, manifest_path, err);
    if (rc == SF_OK)
        rc = s_fsync_dir(info->out_dir, err);
done:
    json_decref(manifest);
    json_decref(files);
    json_decref(checks_per_stem);
    return rc;
}
