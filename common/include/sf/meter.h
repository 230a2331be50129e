/* sf/meter.h -- the meters of a delivered file: sample peak, true peak,
 * integrated loudness and loudness range (ITU-R BS.1770-4, EBU R 128 / Tech
 * 3342, computed by libebur128; the true peak oversampled by libsoxr), plus
 * the overviews a report draws (short-term
 * loudness over time, a min/max waveform).
 *
 * Frames go in as the file holds them -- left-justified int32 for the
 * integer formats, float for float32 -- so delivery and `stemfarm verify`
 * meter the same samples and get the same numbers.
 *
 * Channel weighting follows the layout labels (sf_layout_labels): L, R, C
 * and M count 1, LFE not at all, every surround (Ls Rs, Lss Rss Lsr Rsr) 1.41
 * (+1.5 dB), as BS.1770 and ffmpeg's ebur128 filter weight them.
 */
#ifndef SF_METER_H
#define SF_METER_H

#include "sf/error.h"

#include <stddef.h>
#include <stdint.h>

typedef struct sf_meter sf_meter_t;

typedef struct {
    int64_t n_frames;
    double sample_peak;        /* linear: the largest |x| of any channel */
    double true_peak;          /* linear: inter-sample peak, oversampled to at least 192 kHz (libsoxr) */
    double integrated_lufs;    /* gated programme loudness; -INFINITY when all of it is below the gate */
    double lra_lu;             /* loudness range; 0 when there is too little above the gate */
    double max_momentary_lufs; /* the loudest 400 ms, sampled every hop; -INFINITY in silence */
    double max_shortterm_lufs; /* the loudest 3 s, sampled every hop */
    /* short-term (3 s) loudness at the end of every hop_frames frames, LUFS
     * (-INFINITY in silence) */
    double *shortterm_lufs;
    size_t n_shortterm;
    int64_t hop_frames;
    /* over all channels: the smallest and largest sample of every
     * bucket_frames frames */
    float *wave_min, *wave_max;
    size_t n_buckets;
    int64_t bucket_frames;
} sf_meter_result_t;

/* A meter for n_channels (1..8) at sample_rate; labels[c] names channel c
 * (NULL: sf_layout_labels(n_channels)). expected_frames sizes the waveform
 * overview (about SF_METER_BUCKETS buckets; more frames just add buckets).
 * SF_E_INPUT for a channel count or label the meter cannot weight,
 * SF_E_NOMEM. */
#define SF_METER_BUCKETS 2000
sf_rc sf_meter_new(int n_channels, const char *const *labels, int sample_rate, int64_t expected_frames,
                   sf_meter_t **out, sf_err_t *err);

/* Adds interleaved frames. SF_E_NOMEM. */
sf_rc sf_meter_add_float(sf_meter_t *m, const float *interleaved, size_t n_frames, sf_err_t *err);
sf_rc sf_meter_add_int32(sf_meter_t *m, const int32_t *interleaved, size_t n_frames, sf_err_t *err);

/* The results; call once, after the last frames (it drains the true-peak
 * oversampler). *out owns its arrays (sf_meter_result_free). SF_E_NOMEM. */
sf_rc sf_meter_result(sf_meter_t *m, sf_meter_result_t *out, sf_err_t *err);
void sf_meter_result_free(sf_meter_result_t *r);

void sf_meter_destroy(sf_meter_t **self_p);

/* 20 log10(x) for a linear level; -INFINITY for 0. */
double sf_meter_db(double linear);

#endif
