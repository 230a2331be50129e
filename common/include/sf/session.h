/* sf/session.h -- the session model and its YAML loader.
 *
 * A session is loaded once, validated completely, and is immutable after
 * that: the coordinator plans from it, nodes render from it, and the same
 * file loaded anywhere gives the same model and the same content hash.
 *
 * Time inside the model is always in frames at session.sample_rate, on the
 * absolute timeline (frame 0 = timeline zero, not the render start).
 * Every element keeps the position (line, col, 1-based) of its YAML node so
 * that problems found late still point into the file.
 */
#ifndef SF_SESSION_H
#define SF_SESSION_H

#include "sf/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SF_MAX_CHANNELS 8
#define SF_SESSION_HASH_BYTES 32

typedef struct {
    uint32_t line; /* 1-based; 0: no position */
    uint32_t col;
} sf_mark_t;

/* Container of a deliverable. SF_FILE_*, not SF_FORMAT_*: libsndfile owns those names. */
typedef enum { SF_FILE_WAV, SF_FILE_RF64, SF_FILE_W64, SF_FILE_AIFF, SF_FILE_FLAC } sf_format_t;
typedef enum { SF_SAMPLE_PCM16, SF_SAMPLE_PCM24, SF_SAMPLE_PCM32, SF_SAMPLE_FLOAT32 } sf_sample_format_t;
typedef enum { SF_DITHER_AUTO, SF_DITHER_TPDF, SF_DITHER_NONE } sf_dither_t;

typedef struct {
    char *path;            /* resolved path of the source file (owned) */
    sf_mark_t mark;        /* of the clip (or of the track's `source:` shorthand) */
    int64_t at;            /* timeline frame of the clip's first sample */
    int64_t offset;        /* first source frame used */
    int64_t length;        /* frames; always > 0 and offset + length <= source frames */
    double gain_db;        /* clip gain; -INFINITY allowed */
    int source_channels;   /* 1 or 2 */
    int64_t source_frames; /* length of the source file */
} sf_clip_t;

typedef struct {
    char *name;            /* owned, unique among tracks */
    sf_mark_t mark;
    sf_clip_t *clips;      /* owned, in file order: a later clip wins where clips overlap */
    size_t n_clips;
    int n_channels;        /* channels of its clips (all the same): 1 or 2 */
    double gain_db;        /* -INFINITY allowed */
    double pan;            /* -1..+1 */
    bool invert;           /* polarity: invert */
    bool mute;
} sf_track_t;

typedef struct {
    char *name;            /* owned, unique among stems */
    sf_mark_t mark;
    size_t *tracks;        /* owned: indices into session->tracks, ascending (session order) */
    size_t n_tracks;
    int n_channels;        /* output channels of this stem */
} sf_stem_t;

typedef struct {
    char *dir;             /* resolved output folder (owned) */
    sf_format_t format;
    sf_sample_format_t sample_format;
    sf_dither_t dither;
    char *name_template;   /* e.g. "{session}_{stem}" (owned) */
    bool bwf;              /* WAV: write a bext chunk (default false) */
    bool headroom_check;   /* headroom_db was given (not null) */
    double headroom_db;    /* verification: no stem may peak above this */
    bool headroom_fail;    /* headroom_policy: fail (true) or warn (false) */
} sf_output_t;

typedef struct sf_session {
    char *path;            /* the session file as given (owned); used in messages */
    char *base_dir;        /* folder that relative paths resolve against (owned) */
    char *media_root;      /* folder that sources resolve under (owned) */
    char *name;
    int sample_rate;       /* 8000..384000 */
    int64_t start;         /* render region [start, end) in timeline frames */
    int64_t end;
    bool end_auto;         /* end was `auto`: the last clip end */
    int64_t segment;       /* frames; 0: the planner chooses */
    double tail_threshold_db;
    int master_channels;   /* 1 or 2 */
    sf_output_t output;
    sf_track_t *tracks;    /* owned, in session order */
    size_t n_tracks;
    sf_stem_t *stems;      /* owned, in file order */
    size_t n_stems;
    uint8_t hash[SF_SESSION_HASH_BYTES]; /* SHA-256 of the YAML bytes and base_dir */
} sf_session_t;

typedef struct {
    bool strict;           /* warnings are errors */
    bool check_sources;    /* open every source (default true via sf_session_load_opts_default) */
} sf_session_load_opts_t;

sf_session_load_opts_t sf_session_load_opts_default(void);

/* Loads and validates the session file at `path`.
 * Returns SF_OK and a new session in *out when diags holds no error;
 * SF_E_INPUT when any problem was found (every one is in diags, each with
 * file:line:col where it has one; *out is NULL); SF_E_IO if the file cannot be
 * read; SF_E_NOMEM. Warnings may be present on success. The caller owns *out
 * and frees it with sf_session_destroy. */
sf_rc sf_session_load(const char *path, const sf_session_load_opts_t *opts,
                      sf_session_t **out, sf_diags_t *diags, sf_err_t *err);

/* The same from YAML text already in memory (a node receives the session
 * over the wire): `path` is used for messages and to derive the folder that
 * relative paths resolve against, exactly as sf_session_load does, so both
 * give the same model and hash. */
sf_rc sf_session_load_text(const char *path, const char *yaml, size_t n_bytes,
                           const sf_session_load_opts_t *opts, sf_session_t **out,
                           sf_diags_t *diags, sf_err_t *err);

void sf_session_destroy(sf_session_t **self_p);

/* Render region length in frames (end - start). */
int64_t sf_session_n_frames(const sf_session_t *s);

/* File name (without folder) of a stem deliverable: the output name template
 * with {session} {stem} {index} {rate} {bits} filled in, characters unsafe in
 * file names replaced by '_', plus the extension of the output format.
 * Returns SF_OK, or SF_E_INPUT if it does not fit in n_bytes. */
sf_rc sf_session_stem_filename(const sf_session_t *s, size_t stem_index, char *buf,
                               size_t n_bytes, sf_err_t *err);

/* Lowercase hex of the session hash into hex[65]. */
void sf_session_hash_hex(const sf_session_t *s, char hex[65]);

const char *sf_format_name(sf_format_t f);               /* "wav" ... */
const char *sf_sample_format_name(sf_sample_format_t f); /* "pcm24" ... */
int sf_sample_format_bits(sf_sample_format_t f);         /* 16, 24, 32, 32 */

#endif
