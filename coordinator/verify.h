/* verify.h -- `stemfarm verify DIR|MANIFEST`: a delivery folder checked again
 * against its manifest, long after the render.
 *
 * Per file of the manifest: it exists; its SHA-256 matches; it reads back
 * through libsndfile in the manifest's sample format with the manifest's
 * frames and channels; and its meters, measured again, give the manifest's
 * sample peak, true peak, integrated loudness and loudness range (to the
 * 0.01 the manifest rounds to). Every file is checked, each problem printed
 * as `FAILED NAME: what`, each good file as `ok NAME`.
 */
#ifndef VERIFY_H
#define VERIFY_H

#include "sf/error.h"

#include <stddef.h>
#include <stdio.h>

/* target: a delivery folder (its manifest.json) or a manifest's path.
 * Writes one line per file and a summary ("N files, M failed") to out;
 * *n_failed counts the files that failed. SF_E_INPUT when the manifest
 * cannot be read or is not a stemfarm manifest (nothing was checked). */
sf_rc verify_delivery(const char *target, FILE *out, size_t *n_failed, sf_err_t *err);

#endif
