/* verify.c -- a delivery folder checked against its manifest (see verify.h). */
#include "verify.h"

#include "deliver.h"

#include "sf/hash.h"
#include "sf/media.h"
#include "sf/meter.h"
#include "sf/session.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

/* The manifest rounds levels to 0.01 dB: a re-measured value within half
 * of that (and a little for the printout) is the same. */
#define VERIFY_DB_TOLERANCE 0.006

static bool s_sample_format(const char *name, sf_sample_format_t *out)
{
    for (int f = SF_SAMPLE_PCM16; f <= SF_SAMPLE_FLOAT32; f++)
        if (name && !strcmp(name, sf_sample_format_name((sf_sample_format_t)f))) {
            *out = (sf_sample_format_t)f;
            return true;
        }
    return false;
}

/* A level as the manifest holds it: a number, or null for -inf. */
static bool s_level_matches(const json_t *v, double measured)
{
    if (json_is_null(v))
        return isinf(measured) && measured < 0;
    return json_is_number(v) && isfinite(measured) && fabs(json_number_value(v) - measured) <= VERIFY_DB_TOLERANCE;
}

static void s_failed(FILE *out, const char *name, bool *first, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_failed(FILE *out, const char *name, bool *first, const char *fmt, ...)
{
    fprintf(out, "%s %s: ", *first ? "FAILED" : "      ", name);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
    *first = false;
}

/* Checks one manifest entry; true when all is well. */
static bool s_check_file(const char *dir, const json_t *entry, int sample_rate, FILE *out)
{
    const char *name = json_string_value(json_object_get(entry, "file"));
    const char *want_sha = json_string_value(json_object_get(entry, "sha256"));
    bool first = true;
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
        s_failed(out, name, &first, "path too long");
        return false;
    }
    uint8_t sha[32];
    char hex[65];
    sf_err_t err = {0};
    if (sf_hash_sha256_file(path, sha, &err)) {
        s_failed(out, name, &first, "%s", err.msg);
        return false;
    }
    sf_hash_hex(sha, 32, hex);
    if (strcmp(hex, want_sha) != 0)
        s_failed(out, name, &first, "sha256 %s, manifest says %s", hex, want_sha);

    sf_sample_format_t fmt;
    const json_int_t want_frames = json_integer_value(json_object_get(entry, "frames"));
    const int want_channels = (int)json_integer_value(json_object_get(entry, "channels"));
    if (!s_sample_format(json_string_value(json_object_get(entry, "sample_format")), &fmt)) {
        s_failed(out, name, &first, "the manifest names no sample format stemfarm writes");
        return false;
    }
    const char *labels[SF_MAX_CHANNELS];
    const json_t *jl = json_object_get(entry, "channel_labels");
    const int n_labels = (int)json_array_size(jl);
    for (int c = 0; c < n_labels && c < SF_MAX_CHANNELS; c++)
        labels[c] = json_string_value(json_array_get(jl, (size_t)c));
    sf_meter_t *meter = NULL;
    if (n_labels != want_channels ||
        sf_meter_new(want_channels, labels, sample_rate, want_frames, &meter, &err) != SF_OK) {
        s_failed(out, name, &first, "the manifest's channels cannot be metered%s%s", err.msg[0] ? ": " : "", err.msg);
        return false;
    }
    uint64_t xxh3;
    int64_t frames;
    int channels;
    sf_meter_result_t r = {0};
    sf_rc rc = sf_media_hash_pcm(path, fmt, meter, &xxh3, &frames, &channels, &err);
    if (rc == SF_OK)
        rc = sf_meter_result(meter, &r, &err);
    sf_meter_destroy(&meter);
    if (rc != SF_OK) {
        s_failed(out, name, &first, "%s", err.msg);
        return false;
    }
    if (frames != want_frames || channels != want_channels)
        s_failed(out, name, &first, "%lld frames of %d channels, manifest says %lld of %d", (long long)frames, channels,
                 (long long)want_frames, want_channels);
    static const struct {
        const char *key, *unit;
    } levels[] = {
        {"peak_dbfs", "dBFS"}, {"true_peak_dbtp", "dBTP"}, {"integrated_lufs", "LUFS"}, {"loudness_range_lu", "LU"}};
    const double measured[] = {sf_meter_db(r.sample_peak), sf_meter_db(r.true_peak), r.integrated_lufs, r.lra_lu};
    for (size_t k = 0; k < sizeof levels / sizeof *levels; k++) {
        const json_t *v = json_object_get(entry, levels[k].key);
        if (!v)
            continue; /* an older manifest without this meter */
        /* a silent file's sample peak is stored as -999 */
        const bool silent_peak = k == 0 && json_is_number(v) && json_number_value(v) <= -999 && isinf(measured[k]);
        if (!silent_peak && !s_level_matches(v, measured[k]))
            s_failed(out, name, &first, "%s measures %.2f %s, manifest says %s%.2f", levels[k].key, measured[k],
                     levels[k].unit, json_is_null(v) ? "null " : "", json_is_null(v) ? 0.0 : json_number_value(v));
    }
    sf_meter_result_free(&r);
    if (first)
        fprintf(out, "ok %s\n", name);
    return first;
}

sf_rc verify_delivery(const char *target, FILE *out, size_t *n_failed, sf_err_t *err)
{
    *n_failed = 0;
    char manifest_path[PATH_MAX], dir[PATH_MAX];
    struct stat st;
    if (stat(target, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(dir, sizeof dir, "%s", target);
        snprintf(manifest_path, sizeof manifest_path, "%s/manifest.json", target);
    } else {
        snprintf(manifest_path, sizeof manifest_path, "%s", target);
        snprintf(dir, sizeof dir, "%s", target);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(dir, sizeof dir, ".");
    }
    json_error_t jerr;
    json_t *root = json_load_file(manifest_path, 0, &jerr);
    if (!root && jerr.line < 1)
        return SF_ERR(err, SF_E_INPUT, "cannot read '%s': %s", manifest_path, jerr.text);
    if (!root)
        return SF_ERR(err, SF_E_INPUT, "%s:%d:%d: %s", manifest_path, jerr.line, jerr.column, jerr.text);
    json_t *files = json_object_get(root, "files");
    const int rate = (int)json_integer_value(json_object_get(json_object_get(root, "render"), "sample_rate"));
    if (!json_is_array(files) ||
        json_integer_value(json_object_get(root, "manifest_version")) != DELIVER_MANIFEST_VERSION) {
        json_decref(root);
        return SF_ERR(err, SF_E_INPUT, "%s: not a stemfarm manifest (version %d with a 'files' list)", manifest_path,
                      DELIVER_MANIFEST_VERSION);
    }
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        const char *name = json_string_value(json_object_get(f, "file"));
        const char *sha = json_string_value(json_object_get(f, "sha256"));
        if (!name || !sha || strchr(name, '/') || strlen(sha) != 64) {
            json_decref(root);
            return SF_ERR(err, SF_E_INPUT, "%s: entry %zu has no valid 'file' and 'sha256'", manifest_path, i);
        }
    }
    json_array_foreach(files, i, f)
    {
        if (!s_check_file(dir, f, rate, out))
            (*n_failed)++;
    }
    fprintf(out, "%zu files, %zu failed\n", json_array_size(files), *n_failed);
    json_decref(root);
    return SF_OK;
}
