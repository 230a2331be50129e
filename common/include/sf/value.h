/* sf/value.h -- the value forms of the session format (SESSION-FORMAT.md).
 *
 * Parsers take the scalar text exactly as written in YAML and return SF_OK or
 * SF_E_INPUT with a message in *err that names what was expected, e.g.
 * "invalid time '1:75' (seconds must be below 60)". They never allocate.
 */
#ifndef SF_VALUE_H
#define SF_VALUE_H

#include "sf/error.h"

#include <stdbool.h>
#include <stdint.h>

/* A time: integer samples ("48000"), seconds ("2.5s"), milliseconds ("375ms"),
 * or timecode "m:ss.mmm" / "h:mm:ss.mmm". Converted to samples at
 * sample_rate, rounding half away from zero; exact for decimal inputs (no
 * binary floating point on the way). Negative times are rejected unless
 * allow_negative. */
sf_rc sf_value_time(const char *text, int sample_rate, bool allow_negative, int64_t *out_frames, sf_err_t *err);

/* A level in dB: a number ("-3", "+1.5", "0") or "-inf" (silence, returned as
 * -INFINITY). NaN, +inf and non-numbers are rejected. */
sf_rc sf_value_level_db(const char *text, double *out_db, sf_err_t *err);

/* dB to linear amplitude; -INFINITY gives exactly 0. */
double sf_value_db_to_gain(double db);

/* A pan position in [-1, +1]. */
sf_rc sf_value_pan(const char *text, double *out_pan, sf_err_t *err);

/* A finite number, optionally restricted to [lo, hi]. */
sf_rc sf_value_number(const char *text, double lo, double hi, double *out, sf_err_t *err);

/* An integer in [lo, hi]. */
sf_rc sf_value_int(const char *text, int64_t lo, int64_t hi, int64_t *out, sf_err_t *err);

/* true / false only (YAML 1.1's yes/no/on/off are rejected as ambiguous). */
sf_rc sf_value_bool(const char *text, bool *out, sf_err_t *err);

/* Glob match with '*' and '?', as used by stem track patterns. */
bool sf_value_glob_match(const char *pattern, const char *name);

#endif
