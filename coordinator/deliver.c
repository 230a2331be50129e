/* deliver.c -- verification, atomic rename and manifest (see deliver.h). */
#include "deliver.h"

#include "report.h"

#include "sf/clock.h"
#include "sf/alloc.h"
#include "sf/hash.h"
#include "sf/log.h"
#include "sf/media.h"
#include "sf/profile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int s_n_files(const plan_t *plan, uint32_t t)
{
    const plan_target_t *pt = &plan->targets[t];
    if (!pt->deliver)
        return 0;
    return plan->session->output.interleave ? 1 : pt->n_channels;
}

sf_rc deliver_check_targets(const plan_t *plan, const char *out_dir, bool force, sf_err_t *err)
{
    if (force)
        return SF_OK;
    const sf_session_t *s = plan->session;
    char path[PATH_MAX], name[PATH_MAX];
    for (uint32_t t = 0; t <= plan->n_targets; t++) {
        int n_files = t < plan->n_targets ? s_n_files(plan, t) : 3;
        for (int f = 0; f < n_files; f++) {
            if (t < plan->n_targets) {
                sf_rc rc = sf_session_target_filename(s, plan->targets[t].target, s->output.interleave ? -1 : f, name,
                                                      sizeof name, err);
                if (rc)
                    return rc;
            } else {
                snprintf(name, sizeof name, "%s", f == 0 ? "manifest.json" : f == 1 ? DELIVER_SUMS_NAME : REPORT_NAME);
            }
            if (snprintf(path, sizeof path, "%s/%s", out_dir, name) >= (int)sizeof path)
                return SF_ERR(err, SF_E_INPUT, "output path '%s/%s' is too long", out_dir, name);
            if (access(path, F_OK) == 0)
                return SF_ERR(err, SF_E_INPUT, "'%s' exists (pass --force to replace it)", path);
        }
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

static const char *s_role(sf_target_kind_t kind)
{
    return kind == SF_TARGET_MIX ? "mix" : kind == SF_TARGET_MULTITRACK ? "multitrack" : "stem";
}

/* output.headroom_db: no file may peak above it; warn or fail per policy. */
static sf_rc s_headroom(const sf_session_t *s, const char *name, double peak, json_t *checks, sf_err_t *err)
{
    double peak_db = sf_meter_db(peak);
    if (!s->output.headroom_check)
        return SF_OK;
    bool over = peak_db > s->output.headroom_db;
    json_array_append_new(checks, json_pack("{s:s, s:s, s:f, s:f}", "check", "headroom", "result",
                                            !over                     ? "pass"
                                            : s->output.headroom_fail ? "fail"
                                                                      : "warn",
                                            "peak_dbfs", isinf(peak_db) ? -999.0 : peak_db, "limit_dbfs",
                                            s->output.headroom_db));
    if (over && s->output.headroom_fail)
        return SF_ERR(err, SF_E_VERIFY, "'%s': check 'headroom' failed: peak %.2f dBFS is above %.2f dBFS", name,
                      peak_db, s->output.headroom_db);
    return SF_OK;
}

/* A level in dB for JSON: null where it is -inf (silence). */
static json_t *s_db_json(double db) { return isfinite(db) ? json_real(round(db * 100.0) / 100.0) : json_null(); }

/* What reading a delivered file back found. */
typedef struct {
    uint32_t target;
    int file;
    sf_rc rc;
    sf_err_t err;
    uint64_t hash;
    int64_t frames;
    int channels;
    sf_meter_result_t meter;
    uint8_t sha[32]; /* of the file as delivered: after the bext loudness went in */
} s_readback_t;

static size_t s_count_files(const plan_t *plan)
{
    size_t n = 0;
    for (uint32_t t = 0; t < plan->n_targets; t++)
        n += (size_t)s_n_files(plan, t);
    return n;
}

/* Reads every partial back through the meters, files in parallel (each is
 * independent; the results land in their own slots). */
static void s_read_back(const plan_t *plan, stitch_t *st, s_readback_t *rb, size_t n_files)
{
    const sf_session_t *s = plan->session;
    size_t k = 0;
    for (uint32_t t = 0; t < plan->n_targets; t++)
        for (int f = 0; f < s_n_files(plan, t); f++, k++)
            rb[k] = (s_readback_t){.target = t, .file = f};
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < n_files; i++) {
        s_readback_t *r = &rb[i];
        const int n_ch = plan->targets[r->target].n_channels;
        const char *const *labels = sf_layout_labels(n_ch);
        const char *one[1] = {labels ? labels[r->file] : NULL};
        sf_meter_t *meter = NULL;
        r->rc = sf_meter_new(s->output.interleave ? n_ch : 1, s->output.interleave ? labels : one, s->sample_rate,
                             stitch_length(st), &meter, &r->err);
        if (r->rc == SF_OK)
            r->rc = sf_media_hash_pcm(stitch_partial_path(st, r->target, r->file), s->output.sample_format, meter,
                                      &r->hash, &r->frames, &r->channels, &r->err);
        if (r->rc == SF_OK)
            r->rc = sf_meter_result(meter, &r->meter, &r->err);
        sf_meter_destroy(&meter);
    }
}

/* Writes the meters' loudness into each file's bext chunk (the samples are
 * untouched) and then hashes the file as it will be delivered; files in
 * parallel, like the read-back, since hashing is most of a delivery's
 * serial time. The first failure in file order is reported. */
static sf_rc s_seal(const plan_t *plan, stitch_t *st, s_readback_t *rb, size_t n_files, sf_err_t *err)
{
    const bool bwf = plan->session->output.bwf;
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t k = 0; k < n_files; k++) {
        s_readback_t *r = &rb[k];
        const char *path = stitch_partial_path(st, r->target, r->file);
        r->rc = bwf ? sf_media_bwf_set_loudness(path, &r->meter, &r->err) : SF_OK;
        if (r->rc == SF_OK)
            r->rc = sf_hash_sha256_file(path, r->sha, &r->err);
    }
    for (size_t k = 0; k < n_files; k++)
        if (rb[k].rc != SF_OK) {
            if (err)
                *err = rb[k].err;
            return rb[k].rc;
        }
    return SF_OK;
}

/* One profile violation: logged, and appended to the message that fails the render. */
static void s_violation(const char *profile, const char *line, char *failed, size_t cap, size_t *n_failed)
{
    snprintf(failed + strlen(failed), cap - strlen(failed), "%s%s", *n_failed ? "; " : "", line);
    sf_log(SF_LOG_ERROR, "coordinator deliver", "profile '%s': %s", profile, line);
    (*n_failed)++;
}

/* The delivery profile's judgement of one file (sf/profile.h): its checks
 * go into `list`; a violation is appended to `failed` (one line each). */
static void s_profile_checks(const plan_t *plan, const s_readback_t *r, const char *name, json_t *list, char *failed,
                             size_t cap, size_t *n_failed)
{
    const sf_profile_t p = plan->session->output.profile;
    const sf_profile_spec_t *spec = sf_profile_spec(p);
    const sf_target_kind_t kind = plan->targets[r->target].target.kind;
    const char *profile = sf_profile_name(p);
    char line[512];
    if (spec->stems_peak && kind == SF_TARGET_STEM) {
        const double peak = sf_meter_db(r->meter.sample_peak);
        const bool ok = peak <= spec->peak_max_dbfs;
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:o, s:f}", "check", "peak", "profile", profile,
                                              "result", ok ? "pass" : "fail", "peak_dbfs", s_db_json(peak),
                                              "limit_dbfs", spec->peak_max_dbfs));
        if (!ok) {
            snprintf(line, sizeof line, "'%s': peak %.2f dBFS is above %.2f dBFS", name, peak, spec->peak_max_dbfs);
            s_violation(profile, line, failed, cap, n_failed);
        }
    }
    if (spec->mixes_loudness && kind == SF_TARGET_MIX) {
        const double lufs = r->meter.integrated_lufs, tp = sf_meter_db(r->meter.true_peak);
        const bool loud_ok = isfinite(lufs) && fabs(lufs - spec->target_lufs) <= spec->tolerance_lu;
        const bool tp_ok = tp <= spec->true_peak_max_dbtp;
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:o, s:f, s:f}", "check", "loudness", "profile", profile,
                                              "result", loud_ok ? "pass" : "fail", "integrated_lufs", s_db_json(lufs),
                                              "target_lufs", spec->target_lufs, "tolerance_lu", spec->tolerance_lu));
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:o, s:f}", "check", "true_peak", "profile", profile,
                                              "result", tp_ok ? "pass" : "fail", "true_peak_dbtp", s_db_json(tp),
                                              "limit_dbtp", spec->true_peak_max_dbtp));
        if (!loud_ok) {
            snprintf(line, sizeof line, "'%s': loudness %.2f LUFS is outside %.1f +-%.1f LUFS", name, lufs,
                     spec->target_lufs, spec->tolerance_lu);
            s_violation(profile, line, failed, cap, n_failed);
        }
        if (!tp_ok) {
            snprintf(line, sizeof line, "'%s': true peak %.2f dBTP is above %.1f dBTP", name, tp,
                     spec->true_peak_max_dbtp);
            s_violation(profile, line, failed, cap, n_failed);
        }
    }
}

/* Compares every file read back with what was written; fills checks[k]
 * with what passed. Profile violations are all gathered before failing. */
static sf_rc s_verify(const plan_t *plan, stitch_t *st, const s_readback_t *rb, size_t n_files, json_t *checks,
                      sf_err_t *err)
{
    const sf_session_t *s = plan->session;
    int64_t expected = stitch_length(st);
    char failed[2048] = "";
    size_t n_failed = 0;
    for (size_t k = 0; k < n_files; k++) {
        const s_readback_t *r = &rb[k];
        const uint32_t t = r->target;
        const int f = r->file;
        const char *name = s_basename(stitch_final_path(st, t, f));
        if (r->rc != SF_OK) {
            if (err)
                *err = r->err;
            return r->rc;
        }
        json_t *list = json_array();
        json_array_append_new(checks, list);
        if (r->frames != expected || stitch_frames_written(st, t) != expected)
            return SF_ERR(err, SF_E_VERIFY,
                          "'%s': check 'same_length' failed: %" PRId64 " frames, every file must have %" PRId64, name,
                          r->frames, expected);
        json_array_append_new(list, json_pack("{s:s, s:s, s:I}", "check", "same_length", "result", "pass", "frames",
                                              (json_int_t)r->frames));
        int want_channels = s->output.interleave ? plan->targets[t].n_channels : 1;
        if (r->channels != want_channels || r->hash != stitch_pcm_hash(st, t, f))
            return SF_ERR(err, SF_E_VERIFY,
                          "'%s': check 'read_back' failed: the file does not read back as the samples written", name);
        json_array_append_new(list, json_pack("{s:s, s:s}", "check", "read_back", "result", "pass"));
        sf_rc rc = s_headroom(s, name, r->meter.sample_peak, list, err);
        if (rc)
            return rc;
        if (s->output.sample_format != SF_SAMPLE_FLOAT32) {
            const uint64_t at_full = stitch_full_scale(st, t, f);
            const bool fail = at_full > 0 && s->output.clipping_fail;
            json_array_append_new(list, json_pack("{s:s, s:s, s:I, s:i}", "check", "clipping", "result",
                                                  !at_full ? "pass"
                                                  : fail   ? "fail"
                                                           : "warn",
                                                  "full_scale_samples", (json_int_t)at_full, "limit_samples", 0));
            if (fail)
                return SF_ERR(err, SF_E_VERIFY,
                              "'%s': check 'clipping' failed: %" PRIu64 " samples at full scale (limit 0); "
                              "set 'output.clipping_policy: warn' to deliver them",
                              name, at_full);
        }
        s_profile_checks(plan, r, name, list, failed, sizeof failed, &n_failed);
    }
    if (n_failed)
        return SF_ERR(err, SF_E_VERIFY, "profile '%s': %zu check%s failed: %s", sf_profile_name(s->output.profile),
                      n_failed, n_failed == 1 ? "" : "s", failed);
    return SF_OK;
}

/* The null test's manifest entry; SF_E_VERIFY when it fails the render. */
static sf_rc s_null_test(const plan_t *plan, stitch_t *st, json_t **out, sf_err_t *err)
{
    const sf_session_t *s = plan->session;
    stitch_null_t n = stitch_null_result(st);
    if (!n.applicable) {
        *out = json_pack("{s:s, s:s}", "result", "not_applicable", "reason",
                         s->n_stems ? "a stem's channel layout differs from the master's" : "no stems");
        return SF_OK;
    }
    double residual = sf_meter_db(n.residual_peak), floor_db = sf_meter_db(n.floor_peak);
    bool at_floor = n.residual_peak <= n.floor_peak;
    /* A residual no larger than what quantising the stems alone can leave
     * passes: at pcm16 that floor lies above the limit. */
    bool over = residual > DELIVER_NULL_LIMIT_DBFS && !at_floor;
    const char *result = !over ? "pass" : s->output.null_test ? "fail" : "warn";
    *out =
        json_pack("{s:s, s:f, s:f, s:f, s:b, s:b}", "result", result, "residual_dbfs",
                  isinf(residual) ? -999.0 : residual, "limit_dbfs", DELIVER_NULL_LIMIT_DBFS, "quantisation_floor_dbfs",
                  floor_db, "at_quantisation_floor", at_floor, "expected", s->output.null_test);
    if (over && s->output.null_test)
        return SF_ERR(err, SF_E_VERIFY,
                      "check 'null_test' failed: the stems sum to the full mix with a residual of %.1f dBFS "
                      "(limit %.0f dBFS); set 'output.null_test: false' if they are not expected to null",
                      residual, DELIVER_NULL_LIMIT_DBFS);
    return SF_OK;
}

static json_t *s_file_entry(const plan_t *plan, stitch_t *st, const s_readback_t *r, const deliver_segment_t *segments,
                            const uint8_t sha[32], json_t *checks)
{
    const uint32_t t = r->target;
    const int f = r->file;
    const sf_session_t *s = plan->session;
    const plan_target_t *pt = &plan->targets[t];
    char sha_hex[65];
    sf_hash_hex(sha, 32, sha_hex);
    json_t *segs = json_array();
    for (uint32_t k = 0; segs && k < plan->n_segments; k++) {
        size_t j = plan_job_index(plan, t, k);
        char xxh[17];
        snprintf(xxh, sizeof xxh, "%016" PRIx64, segments[j].xxh3);
        /* frames of the segment in the file: a trimmed tail shortens the last ones */
        const int64_t offset = plan->jobs[j].start_frame - s->start;
        int64_t in_file = stitch_length(st) - offset;
        in_file = in_file < 0 ? 0 : in_file > plan->jobs[j].n_frames ? plan->jobs[j].n_frames : in_file;
        json_t *seg =
            json_pack("{s:i, s:I, s:I, s:s, s:s}", "index", (int)k, "frames", (json_int_t)in_file, "rendered_frames",
                      (json_int_t)plan->jobs[j].n_frames, "xxh3", xxh, "node", segments[j].node_name);
        if (seg && segments[j].checked_by[0])
            json_object_set_new(seg, "checked_by", json_string(segments[j].checked_by));
        json_array_append_new(segs, seg);
    }
    int channels = s->output.interleave ? pt->n_channels : 1;
    json_t *labels = json_array();
    const char *const *all = sf_layout_labels(pt->n_channels);
    for (int c = 0; labels && all && c < pt->n_channels; c++)
        if (s->output.interleave || c == f)
            json_array_append_new(labels, json_string(all[c]));
    double peak_db = sf_meter_db(r->meter.sample_peak);
    return json_pack("{s:s, s:s, s:s, s:I, s:i, s:i, s:s, s:o, s:s, s:s, s:s, s:f, s:o, s:o, s:o, s:o, s:O}", "file",
                     s_basename(stitch_final_path(st, t, f)), "role", s_role(pt->target.kind), "name",
                     sf_session_target_name(s, pt->target), "frames", (json_int_t)stitch_frames_written(st, t),
                     "sample_rate", s->sample_rate, "channels", channels, "layout", sf_layout_name(pt->n_channels),
                     "channel_labels", labels, "format", sf_format_name(stitch_format(st, t)), "sample_format",
                     sf_sample_format_name(s->output.sample_format), "sha256", sha_hex, "peak_dbfs",
                     isinf(peak_db) ? -999.0 : peak_db, "true_peak_dbtp", s_db_json(sf_meter_db(r->meter.true_peak)),
                     "integrated_lufs", s_db_json(r->meter.integrated_lufs), "loudness_range_lu",
                     s_db_json(r->meter.lra_lu), "segments", segs, "checks", checks);
}

/* out_dir/name.partial holds `text`, fsynced; on failure there is none. */
static sf_rc s_write_partial(const char *out_dir, const char *name, const char *text, sf_err_t *err)
{
    if (!text)
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    char partial[PATH_MAX];
    snprintf(partial, sizeof partial, "%s/%s.partial", out_dir, name);
    int fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return SF_ERR(err, SF_E_IO, "cannot create '%s': %s", partial, strerror(errno));
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    if (w != (ssize_t)n || fsync(fd) != 0) {
        int e = w < 0 ? errno : w != (ssize_t)n ? ENOSPC : errno;
        close(fd);
        unlink(partial);
        return SF_ERR(err, SF_E_IO, "cannot write '%s': %s", partial, strerror(e));
    }
    close(fd);
    return SF_OK;
}

/* out_dir/name.partial becomes out_dir/name. */
static sf_rc s_publish(const char *out_dir, const char *name, sf_err_t *err)
{
    char final[PATH_MAX], partial[PATH_MAX];
    snprintf(final, sizeof final, "%s/%s", out_dir, name);
    snprintf(partial, sizeof partial, "%s/%s.partial", out_dir, name);
    if (rename(partial, final) != 0) {
        unlink(partial);
        return SF_ERR(err, SF_E_IO, "cannot rename '%s': %s", partial, strerror(errno));
    }
    return SF_OK;
}

sf_rc deliver_write_atomic(const char *out_dir, const char *name, const char *text, char **final_path, sf_err_t *err)
{
    sf_rc rc = s_write_partial(out_dir, name, text, err);
    if (rc != SF_OK)
        return rc;
    char final[PATH_MAX], partial[PATH_MAX];
    snprintf(final, sizeof final, "%s/%s", out_dir, name);
    snprintf(partial, sizeof partial, "%s/%s.partial", out_dir, name);
    if (rename(partial, final) != 0) {
        unlink(partial);
        return SF_ERR(err, SF_E_IO, "cannot rename '%s': %s", partial, strerror(errno));
    }
    if (final_path && !(*final_path = sf_strdup(final)))
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    return SF_OK;
}

/* The manifest as written: indented JSON and a newline (sf_malloc'd). */
static char *s_manifest_text(const json_t *manifest)
{
    char *json = json_dumps(manifest, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    char *text = json ? sf_malloc(strlen(json) + 2) : NULL;
    if (text)
        snprintf(text, strlen(json) + 2, "%s\n", json);
    free(json);
    return text;
}

/* SHA256SUMS: one `sha256sum -c` line per delivered file, then the manifest's. */
static char *s_sums_text(const char *sums, const char *manifest_text)
{
    uint8_t sha[32];
    char hex[65];
    sf_hash_sha256(manifest_text, strlen(manifest_text), sha);
    sf_hash_hex(sha, 32, hex);
    size_t n = strlen(sums) + sizeof hex + sizeof "  manifest.json\n";
    char *text = sf_malloc(n);
    if (text)
        snprintf(text, n, "%s%s  manifest.json\n", sums, hex);
    return text;
}

/* The folder's own files, written before anything is renamed into place
 * and published in this order, the manifest last: its presence says the
 * delivery is complete. */
static const char *const s_meta_names[] = {REPORT_NAME, DELIVER_SUMS_NAME, "manifest.json"};
#define S_N_META (sizeof s_meta_names / sizeof *s_meta_names)

static json_t *s_manifest(const plan_t *plan, const stitch_t *st, const deliver_info_t *info, json_t *files,
                          json_t *null_test)
{
    const sf_session_t *s = plan->session;
    char hex[65];
    sf_session_hash_hex(s, hex);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *mismatches = json_array();
    for (const char *p = info->spot_mismatches; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        json_array_append_new(mismatches, json_stringn(p, len));
        p += len + (nl != NULL);
    }
    json_t *spot = json_pack("{s:f, s:I, s:o}", "fraction", info->spot_fraction, "checked",
                             (json_int_t)info->n_spot_checked, "mismatches", mismatches);
    return json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:s}, s:{s:I, s:I, s:i, s:I, s:i, s:s, s:s, s:s, s:b, s:i, s:f},"
                     " s:O, s:o, s:O}",
                     "manifest_version", DELIVER_MANIFEST_VERSION, "stemfarm_version", STEMFARM_VERSION, "created",
                     when, "session", "name", s->name, "path", s->path, "hash", hex, "render", "start",
                     (json_int_t)s->start, "frames", (json_int_t)stitch_length(st), "sample_rate", s->sample_rate,
                     "segment_frames", (json_int_t)plan->segment_frames, "segments", (int)plan->n_segments, "format",
                     sf_format_name(s->output.format), "sample_format", sf_sample_format_name(s->output.sample_format),
                     "dither",
                     s->output.dither == SF_DITHER_NONE   ? "none"
                     : s->output.dither == SF_DITHER_TPDF ? "tpdf"
                                                          : "auto",
                     "master_applied", s->output.master_apply, "nodes", info->n_nodes, "wall_seconds",
                     info->wall_seconds, "null_test", null_test, "spot_checks", spot, "files", files);
}

sf_rc deliver_finish(const plan_t *plan, stitch_t *st, const deliver_segment_t *segments, const deliver_info_t *info,
                     char **manifest_path, sf_err_t *err)
{
    *manifest_path = NULL;
    const double started_s = sf_clock_s();
    sf_rc rc = SF_OK;
    json_t *checks = json_array(), *files = json_array(), *null_test = NULL, *manifest = NULL;
    s_readback_t *rb = NULL;
    size_t n_files = 0;
    char *sums = NULL; /* SHA256SUMS lines */
    char *manifest_text = NULL, *sums_text = NULL, *report_text = NULL;
    if (!checks || !files) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
        goto done;
    }
    n_files = s_count_files(plan);
    rb = sf_calloc(n_files ? n_files : 1, sizeof *rb);
    if (!rb) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
        goto done;
    }
    s_read_back(plan, st, rb, n_files);
    rc = s_verify(plan, st, rb, n_files, checks, err);
    if (rc == SF_OK)
        rc = s_null_test(plan, st, &null_test, err);
    sums = sf_calloc(n_files ? n_files : 1, 64 + 2 + PATH_MAX + 1);
    if (rc == SF_OK && !sums)
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
    if (rc == SF_OK)
        rc = s_seal(plan, st, rb, n_files, err);
    for (size_t k = 0; rc == SF_OK && k < n_files; k++) {
        char hex[65];
        const uint8_t *sha = rb[k].sha;
        json_array_append_new(files, s_file_entry(plan, st, &rb[k], segments, sha, json_array_get(checks, k)));
        sf_hash_hex(sha, 32, hex);
        const char *base = s_basename(stitch_final_path(st, rb[k].target, rb[k].file));
        if (strchr(base, '\n') || strchr(base, '\\'))
            rc = SF_ERR(err, SF_E_INPUT, "'%s': a file name with a newline or backslash cannot go into %s", base,
                        DELIVER_SUMS_NAME);
        else
            snprintf(sums + strlen(sums), 64 + 2 + PATH_MAX + 1, "%s  %s\n", hex, base);
    }
    if (rc == SF_OK) {
        manifest = s_manifest(plan, st, info, files, null_test);
        /* end: auto -- how much of the planned tail was below the threshold everywhere */
        json_t *render = manifest ? json_object_get(manifest, "render") : NULL;
        if (render)
            json_object_set_new(render, "profile", json_string(sf_profile_name(plan->session->output.profile)));
        /* wall_seconds ends where delivery starts: this is the rest (read
         * back, meters, checks, hashes), up to the manifest */
        if (render)
            json_object_set_new(render, "delivery_seconds", json_real(round((sf_clock_s() - started_s) * 1e3) / 1e3));
        if (render)
            json_object_set_new(render, "tail_trimmed_frames",
                                json_integer((json_int_t)(sf_session_n_frames(plan->session) - stitch_length(st))));
        /* the page for people: not a deliverable, so not in SHA256SUMS */
        const sf_meter_result_t **meters = sf_calloc(n_files ? n_files : 1, sizeof *meters);
        for (size_t k = 0; meters && k < n_files; k++)
            meters[k] = &rb[k].meter;
        manifest_text = manifest ? s_manifest_text(manifest) : NULL;
        sums_text = manifest_text ? s_sums_text(sums, manifest_text) : NULL;
        rc = !meters || !manifest ? SF_ERR(err, SF_E_NOMEM, "out of memory")
                                  : report_html(manifest, meters, n_files, &report_text, err);
        sf_free(meters);
    }
    /* Every file of the folder is written and synced before any is renamed
     * into place: a full disk or a failed write leaves no finished-looking
     * file (the audio partials are removed by the caller). */
    const char *meta_text[S_N_META] = {report_text, sums_text, manifest_text};
    size_t n_meta = 0;
    for (; rc == SF_OK && n_meta < S_N_META; n_meta++)
        rc = s_write_partial(info->out_dir, s_meta_names[n_meta], meta_text[n_meta], err);
    if (rc != SF_OK) {
        for (size_t k = 0; k + 1 < n_meta; k++) {
            char partial[PATH_MAX];
            snprintf(partial, sizeof partial, "%s/%s.partial", info->out_dir, s_meta_names[k]);
            unlink(partial);
        }
    }
    for (uint32_t t = 0; rc == SF_OK && t < plan->n_targets; t++)
        for (int f = 0; rc == SF_OK && f < s_n_files(plan, t); f++)
            if (rename(stitch_partial_path(st, t, f), stitch_final_path(st, t, f)) != 0)
                rc = SF_ERR(err, SF_E_IO, "cannot rename '%s': %s", stitch_partial_path(st, t, f), strerror(errno));
    for (size_t k = 0; rc == SF_OK && k < S_N_META; k++)
        rc = s_publish(info->out_dir, s_meta_names[k], err);
    if (rc == SF_OK)
        rc = s_fsync_dir(info->out_dir, err);
    if (rc == SF_OK) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/manifest.json", info->out_dir);
        if (!(*manifest_path = sf_strdup(path)))
            rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
    }
done:
    sf_free(manifest_text);
    sf_free(sums_text);
    sf_free(report_text);
    for (size_t k = 0; rb && k < n_files; k++)
        sf_meter_result_free(&rb[k].meter);
    sf_free(rb);
    sf_free(sums);
    json_decref(manifest);
    json_decref(null_test);
    json_decref(files);
    json_decref(checks);
    return rc;
}
