/* sf/media.h -- audio file I/O at the libsndfile edge.
 *
 * Inside stemfarm audio is planar float32; interleaving and sample format
 * conversion happen only here. Source reads open, read and close the file
 * per call, so a render never holds more than one source open per thread
 * (a 1,000-track session stays far inside the default 1,024 open files),
 * and read only the frames asked for, never the whole file.
 */
#ifndef SF_MEDIA_H
#define SF_MEDIA_H

#include "sf/error.h"
#include "sf/meter.h"
#include "sf/session.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int channels;
    int sample_rate;
    int64_t frames;
} sf_media_info_t;

/* Opens `path` just long enough to read its header.
 * SF_E_IO "cannot open 'x.wav': <libsndfile's reason>" when missing or unreadable;
 * SF_E_INPUT when libsndfile reads it but it has no frames. */
sf_rc sf_media_probe(const char *path, sf_media_info_t *info, sf_err_t *err);

/* Reads source frames [offset, offset + n_frames) into dst[c][0..n_frames)
 * for c < n_channels, which must equal the file's channel count.
 * Integer PCM is scaled by libsndfile's normalisation (1/2^(bits-1)), exact in
 * float for up to 24 bits. Frames past the end of the file are an error
 * (SF_E_IO "short read"), never silently zero. */
sf_rc sf_media_read(const char *path, int64_t offset, int64_t n_frames, int n_channels, float *const *dst,
                    sf_err_t *err);

/* A copy of the file at `path` resampled to `rate` by libsoxr (very high
 * quality), as float32 WAV, in cache_dir (created if missing) under a name
 * made of the SHA-256 of the source's bytes and the rate. Made once
 * (written to a temporary name, fsynced, renamed) and reused after: every
 * node and every segment read the same samples. *out_path is the copy's
 * path (caller frees with sf_free). */
sf_rc sf_media_resampled(const char *path, int rate, const char *cache_dir, char **out_path, sf_err_t *err);

/* ---- writing deliverables -------------------------------------------- */

/* Creates a folder and its parents (mkdir -p). SF_E_IO with the folder and
 * the system's reason. */
sf_rc sf_media_mkdirs(const char *dir, sf_err_t *err);

typedef struct sf_media_writer sf_media_writer_t;

/* Broadcast WAV metadata (EBU Tech 3285 v2 bext, and iXML) for a WAV or
 * RF64 deliverable; strings longer than their bext field are cut. */
typedef struct {
    const char *description;          /* up to 256 bytes */
    const char *originator;           /* up to 32 */
    const char *originator_reference; /* up to 32 */
    const char *date;                 /* "yyyy-mm-dd" */
    const char *time;                 /* "hh:mm:ss" */
    uint64_t time_reference;          /* the first sample's position, in samples */
    const char *coding_history;       /* up to 256 bytes, lines ending in CR LF */
    const char *ixml;                 /* an iXML document, or NULL */
} sf_media_bwf_t;

/* The container a file of n_frames should have: RF64 where a WAV's 32-bit
 * sizes could not hold it (over 4 GiB), else `format`. */
sf_format_t sf_media_container(sf_format_t format, int64_t n_frames, int channels, sf_sample_format_t sample_format);

/* Creates (truncates) `path`. WAV, RF64 and integer W64 files of 6 or 8
 * channels carry the WAVE_FORMAT_EXTENSIBLE channel mask of 5.1 (0x3F) or
 * 7.1 (0x63F), bytes in sf_layout_labels order; float32 W64 carries none,
 * With bwf (WAV and RF64 only; SF_E_INPUT otherwise) the file gets a bext
 * chunk and, when given, an iXML chunk ahead of its samples.
 * because libsndfile would read a masked float W64 back as integers. Integer formats take left-justified int32
 * frames (a pcm24 sample v is passed as v << 8, as sf_dsp_quantize makes),
 * float32 takes float frames; libsndfile does no conversion of its own.
 * SF_E_INPUT if libsndfile rejects the format combination. */
sf_rc sf_media_writer_open(const char *path, sf_format_t format, sf_sample_format_t sample_format, int sample_rate,
                           int channels, const sf_media_bwf_t *bwf, sf_media_writer_t **out, sf_err_t *err);

/* Writes the meters into the bext v2 loudness fields of a closed BWF file
 * (integrated loudness, loudness range, max true peak, max momentary and
 * max short-term loudness, in hundredths; 0x7FFF where silent): the samples
 * are untouched. SF_E_VERIFY when the file has no bext chunk, SF_E_IO. */
sf_rc sf_media_bwf_set_loudness(const char *path, const sf_meter_result_t *m, sf_err_t *err);
sf_rc sf_media_writer_write_int(sf_media_writer_t *w, const int32_t *interleaved, size_t n_frames, sf_err_t *err);
sf_rc sf_media_writer_write_float(sf_media_writer_t *w, const float *interleaved, size_t n_frames, sf_err_t *err);
/* xxh3 over the interleaved int32 (or float) frames written so far, in the
 * form passed to write_*: what sf_media_hash_pcm must read back. */
uint64_t sf_media_writer_pcm_hash(const sf_media_writer_t *w);
int64_t sf_media_writer_frames(const sf_media_writer_t *w);
/* Finishes the file (header), fsyncs it and closes it. Always frees *w and
 * sets it to NULL, also on error. */
sf_rc sf_media_writer_close(sf_media_writer_t **w, sf_err_t *err);

/* Reads a written file back through libsndfile (int32 for integer formats,
 * float for float32) and returns the xxh3 of its interleaved frames, its
 * frame count and its channel count: the read-back half of verification.
 * With a meter (made for the file's channels; NULL: none), every frame read
 * also goes through it, so the meters describe the file as it reads back. */
sf_rc sf_media_hash_pcm(const char *path, sf_sample_format_t sample_format, sf_meter_t *meter, uint64_t *xxh3,
                        int64_t *n_frames, int *channels, sf_err_t *err);

#endif
