/* report.h -- report.html: a delivery folder described for people.
 *
 * One self-contained HTML5 page (inline CSS and SVG, no script, nothing
 * loaded from anywhere: a Content-Security-Policy of default-src 'none'
 * makes the browser refuse it even if something slipped in). The header
 * shows the session, its hash, the render settings and the null test; a
 * table sums up every deliverable; then each deliverable has its waveform
 * overview, its short-term loudness over time (-60..0 LUFS; silence, below
 * BS.1770's absolute gate of -70 LUFS, is a gap), its meter values and
 * every check of the manifest with its result.
 *
 * Everything comes from the manifest as delivery writes it (deliver.h) plus,
 * for the plots, the meter results of the files; every string of the
 * manifest is HTML-escaped (names are user input). Plots have at most
 * REPORT_MAX_POINTS points along time, so a page stays a few MB for hundreds
 * of files of any length.
 */
#ifndef REPORT_H
#define REPORT_H

#include "sf/error.h"
#include "sf/meter.h"

#include <jansson.h>
#include <stddef.h>

#define REPORT_NAME       "report.html"
#define REPORT_MAX_POINTS 1000 /* per plot, along time */

/* The page for `manifest` (a manifest.json as deliver_finish writes it).
 * meters[k] (may be NULL) are the meters of manifest files[k]; a file
 * without one gets no plots. n_meters is 0 (meters may then be NULL) or the
 * number of files. On success *html is the NUL-terminated page (caller frees
 * with sf_free). SF_E_INPUT when manifest is not a stemfarm manifest (no
 * "files" array of objects) or n_meters matches neither; SF_E_NOMEM. The
 * manifest and meters are only read. */
sf_rc report_html(const json_t *manifest, const sf_meter_result_t *const *meters, size_t n_meters, char **html,
                  sf_err_t *err);

/* report_html written to out_dir/REPORT_NAME atomically (REPORT_NAME.partial,
 * fsync, rename, folder fsynced): the folder holds the whole new page or the
 * one it had. Errors as report_html, and SF_E_IO naming the path that could
 * not be written (no partial file is left). */
sf_rc report_write(const char *out_dir, const json_t *manifest, const sf_meter_result_t *const *meters, size_t n_meters,
                   sf_err_t *err);

#endif
