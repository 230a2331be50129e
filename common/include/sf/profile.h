/* sf/profile.h -- delivery profiles: named sets of settings a session must
 * have and of measurements its files must meet. Profiles measure and judge;
 * they never change the audio.
 *
 *  stem-mastering  settings: pcm24, no dither, master bypassed;
 *                  every stem's sample peak at or below -8 dBFS.
 *  ebu-r128        every mix at -23 LUFS +-0.5 LU, true peak at or below
 *                  -1 dBTP (EBU R 128); the session needs a mix.
 *  atsc-a85        every mix at -24 LKFS +-2 LU, true peak at or below
 *                  -2 dBTP (ATSC A/85); the session needs a mix.
 *  archive         settings: Broadcast WAV (wav or rf64 with bwf: true),
 *                  pcm24, multitracks: true (the consolidated tracks go in
 *                  too); files at the session rate with SHA256SUMS, which
 *                  every delivery has.
 */
#ifndef SF_PROFILE_H
#define SF_PROFILE_H

#include "sf/session.h"

#include <stdbool.h>
#include <stddef.h>

/* The name of a profile ("ebu-r128"); "none" for SF_PROFILE_NONE. */
const char *sf_profile_name(sf_profile_t p);

/* The profile called `name`; false when there is none ("none" is
 * SF_PROFILE_NONE). */
bool sf_profile_parse(const char *name, sf_profile_t *out);

/* "stem-mastering, ebu-r128, atsc-a85 or archive": for messages. */
const char *sf_profile_names(void);

/* What a profile judges in the delivered files. */
typedef struct {
    bool stems_peak; /* every stem's sample peak <= peak_max_dbfs */
    double peak_max_dbfs;
    bool mixes_loudness; /* every mix: |integrated - target| <= tolerance, true peak <= true_peak_max */
    double target_lufs, tolerance_lu, true_peak_max_dbtp;
} sf_profile_spec_t;

const sf_profile_spec_t *sf_profile_spec(sf_profile_t p);

/* The settings of s that profile p does not accept: fn (NULL: none) gets
 * each as one line ("profile 'archive' needs output.bwf: true"); returns
 * how many. */
typedef void (*sf_profile_violation_fn)(void *ctx, const char *line);
size_t sf_profile_violations(const sf_session_t *s, sf_profile_t p, sf_profile_violation_fn fn, void *ctx);

#endif
