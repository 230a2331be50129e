/* deliver.h -- from stitched .partial files to verified deliverables.
 *
 * Nothing is renamed into place before every file has been read back through
 * libsndfile and matched, sample for sample (xxh3), what the stitcher wrote,
 * has been metered, and passed its checks (same length, clipping, headroom,
 * the delivery profile's) and the null test (the sum of the stems as written
 * against the full mix, residual at most DELIVER_NULL_LIMIT_DBFS unless
 * output.null_test is false). Then each file gets its bext loudness (BWF) and
 * its SHA-256; manifest.json, SHA256SUMS (every file and the manifest, as
 * `sha256sum -c` reads it) and report.html are written as .partial files and
 * synced; only then is every file renamed into place, the manifest last. A
 * failure anywhere -- a full disk included -- leaves no finished-looking file.
 * An existing deliverable is only replaced when the caller asked (--force),
 * which deliver_check_targets checks before any rendering starts.
 */
#ifndef DELIVER_H
#define DELIVER_H

#include "plan.h"
#include "stitch.h"

#include <stdbool.h>

#define DELIVER_MANIFEST_VERSION 1
#define DELIVER_NULL_LIMIT_DBFS  (-90.0)
#define DELIVER_SUMS_NAME        "SHA256SUMS" /* `sha256sum -c SHA256SUMS` in the folder checks every file */

typedef struct {
    char node_name[64];  /* the node whose result was accepted */
    char checked_by[64]; /* the node whose copy agreed (spot check), or "" */
    uint64_t xxh3;       /* of the segment's float frames */
} deliver_segment_t;

typedef struct {
    const char *out_dir;
    int n_nodes; /* nodes that took part */
    double wall_seconds;
    double spot_fraction;        /* of the jobs spot-checked (dispatch.h) */
    size_t n_spot_checked;       /* jobs whose two copies agreed */
    const char *spot_mismatches; /* one line per disagreement (a third node decided), or NULL */
} deliver_info_t;

/* SF_E_INPUT "'DIR/NAME' exists (pass --force to replace it)" for the first
 * deliverable (a target's file or manifest.json) already present, unless force. */
sf_rc deliver_check_targets(const plan_t *plan, const char *out_dir, bool force, sf_err_t *err);

/* Verifies, renames and writes the manifest. `segments` has plan->n_jobs
 * entries. On success *manifest_path is the manifest's path (caller frees
 * with sf_free). SF_E_VERIFY names the file and the check that failed; the
 * partial files are then left for the caller to remove. */
sf_rc deliver_finish(const plan_t *plan, stitch_t *st, const deliver_segment_t *segments, const deliver_info_t *info,
                     char **manifest_path, sf_err_t *err);

/* out_dir/name holds `text` (NULL: out of memory, SF_E_NOMEM) or what it
 * held before: written as name.partial, fsynced, renamed (the folder is not
 * synced). *final_path (optional) gets its path (caller frees with sf_free).
 * SF_E_IO naming the partial file; none is left behind. */
sf_rc deliver_write_atomic(const char *out_dir, const char *name, const char *text, char **final_path, sf_err_t *err);

#endif
