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
#include "sf/fx.h"
#include "sf/pathmap.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SF_MAX_CHANNELS       8
#define SF_SESSION_HASH_BYTES 32

typedef struct {
    uint32_t line; /* 1-based; 0: no position */
    uint32_t col;
} sf_mark_t;

/* Container of a deliverable. SF_FILE_*, not SF_FORMAT_*: libsndfile owns those names. */
typedef enum { SF_FILE_WAV, SF_FILE_RF64, SF_FILE_W64, SF_FILE_AIFF, SF_FILE_FLAC } sf_format_t;
typedef enum { SF_SAMPLE_PCM16, SF_SAMPLE_PCM24, SF_SAMPLE_PCM32, SF_SAMPLE_FLOAT32 } sf_sample_format_t;
typedef enum { SF_DITHER_AUTO, SF_DITHER_TPDF, SF_DITHER_NONE } sf_dither_t;

/* An insert effect of a track, bus or the master, as the file gives it. */
typedef struct {
    sf_fx_params_t params; /* convolve's ir_path points at ir_path below */
    char *ir_path;         /* owned: the impulse response file read at render time (the
                              resampled copy when its rate differs), or NULL */
    char *ir_name;         /* owned: `ir` as written in the session (what shipped media are
                              named by), or NULL */
    sf_mark_t mark;        /* of the effect's entry in `fx:` */
} sf_insert_t;

/* output_bus / send target meaning "the master bus". */
#define SF_MASTER_BUS (-1)

typedef enum { SF_FADE_LINEAR, SF_FADE_EQUAL_POWER } sf_fade_shape_t;

typedef struct {
    int64_t length;        /* frames; 0: no fade */
    sf_fade_shape_t shape; /* linear: g = x; equal_power: g = sin(x * pi / 2), x in [0, 1] */
} sf_fade_t;

/* Breakpoints [time, value], linear between them, evaluated per sample at
 * absolute timeline frames (so a segment cut never changes a value). Before
 * the first point the first value holds, after the last the last value.
 * Gains interpolate in dB; a -inf point interpolates as tail_threshold_db
 * and is exact silence only at the point itself or between two -inf points. */
typedef struct {
    int64_t *frames; /* owned; absolute timeline frames, non-decreasing */
    double *values;  /* owned; dB (may be -INFINITY) or pan -1..+1 */
    size_t n_points; /* 0: not automated */
    sf_mark_t mark;
} sf_automation_t;

typedef struct {
    char *path;            /* the file read at render time (owned): the source, or its
                              resampled copy in the cache when source_rate differs */
    sf_mark_t mark;        /* of the clip (or of the track's `source:` shorthand) */
    int64_t at;            /* timeline frame of the clip's first sample */
    int64_t offset;        /* first source frame used (at the session rate) */
    int64_t length;        /* frames; always > 0 and offset + length <= source frames */
    double gain_db;        /* clip gain; -INFINITY allowed */
    int source_channels;   /* channels of the file (1..8) */
    int64_t source_frames; /* length of the file read (at the session rate) */
    sf_fade_t fade_in;     /* fades lie inside [at, at + length) */
    sf_fade_t fade_out;
    int64_t crossfade;   /* frames: where this clip starts over an earlier clip of the
                              track, the two crossfade (equal power) over this many frames
                              from `at` instead of cutting; 0: the later clip wins outright */
    int channel;         /* -1: every channel of the file; else the 0-based channel used
                              (`channel: N` in YAML is 1-based) and the clip is mono */
    int source_rate;     /* the original file's rate */
    char *original_path; /* the source as named in the session, resolved (owned), when
                              `path` is a resampled copy; NULL otherwise */
    char *source;        /* owned: the source as written in the session (what shipped
                              media are named by) */
} sf_clip_t;

typedef struct {
    int bus;                    /* index into session->buses */
    double level_db;            /* -INFINITY allowed */
    bool pre_fader;             /* tap before the fader (gain, its automation); else after */
    sf_automation_t level_auto; /* replaces level_db where present */
    sf_mark_t mark;
} sf_send_t;

typedef struct {
    char *name; /* owned, unique among tracks */
    sf_mark_t mark;
    sf_clip_t *clips; /* owned, in file order: a later clip wins where clips overlap */
    size_t n_clips;
    int n_channels;   /* channels its clips deliver (all the same): 1 or 2 */
    double gain_db;   /* -INFINITY allowed */
    double pan;       /* -1..+1 */
    bool invert;      /* polarity: invert */
    bool mute;        /* silent everywhere, sends included */
    int output_bus;   /* index into session->buses, or SF_MASTER_BUS */
    sf_send_t *sends; /* owned, in file order */
    size_t n_sends;
    sf_automation_t gain_auto; /* the fader, replacing gain_db, where present */
    sf_automation_t pan_auto;  /* replacing pan where present */
    sf_insert_t *fx;           /* owned: the insert chain, in order, after the clips and polarity,
                              before the fader */
    size_t n_fx;
    int route[SF_MAX_CHANNELS]; /* `route: [C]`: a mono track goes to these channels of
                                   the bus it feeds (0-based in that bus's layout) */
    int n_route;                /* 0: panned (L/R) instead */
} sf_track_t;

typedef struct {
    char *name; /* owned, unique among buses (and not "master") */
    sf_mark_t mark;
    int n_channels;  /* 1, 2, 6 (5.1) or 8 (7.1); default 2 */
    int output_bus;  /* index into session->buses, or SF_MASTER_BUS */
    double gain_db;  /* the bus fader (stemfarm addition, default 0) */
    sf_insert_t *fx; /* owned: the insert chain on the bus's sum, before its fader */
    size_t n_fx;
    sf_send_t *sends; /* owned: buses may feed aux buses too */
    size_t n_sends;
} sf_bus_t;

typedef struct {
    char *name; /* owned, unique among stems */
    sf_mark_t mark;
    size_t *tracks; /* owned: indices into session->tracks, ascending (session order) */
    size_t n_tracks;
    int n_channels; /* output channels of this stem: 1, 2, 6 or 8 */
    bool rest;      /* `rest: true`: gathers every track no other stem claims */
    size_t *buses;  /* owned: every bus its tracks reach, in bus_order */
    size_t n_buses;
} sf_stem_t;

typedef struct {
    char *name; /* owned, unique among stems and mixes */
    sf_mark_t mark;
    double *stem_gain_db; /* owned, n_stems entries: 0 dB, a gains_db entry, or
                              -INFINITY for an excluded stem */
    bool master_apply;    /* `master: apply`: the master bus effects run on the sum */
    int n_channels;       /* the master's */
} sf_mix_t;

/* Delivery profiles (sf/profile.h). */
typedef enum {
    SF_PROFILE_NONE,
    SF_PROFILE_STEM_MASTERING,
    SF_PROFILE_EBU_R128,
    SF_PROFILE_ATSC_A85,
    SF_PROFILE_ARCHIVE,
} sf_profile_t;

typedef struct {
    char *dir; /* resolved output folder (owned) */
    sf_format_t format;
    sf_sample_format_t sample_format;
    sf_dither_t dither;
    char *name_template;  /* e.g. "{session}_{stem}" (owned) */
    bool bwf;             /* WAV: write a bext chunk (default false) */
    bool headroom_check;  /* headroom_db was given (not null) */
    double headroom_db;   /* verification: no stem may peak above this */
    bool headroom_fail;   /* headroom_policy: fail (true) or warn (false) */
    bool clipping_fail;   /* clipping_policy (a stemfarm addition): a sample at full scale in an
                            integer format fails the render (default) or warns */
    bool interleave;      /* false: one mono file per channel, "{name}.L.wav" ... (default true) */
    bool master_apply;    /* output.master: apply (stems get the master effects) */
    bool null_test;       /* output.null_test (default true): stems must null against the mix */
    sf_profile_t profile; /* output.profile (or render --profile): settings required, files judged */
} sf_output_t;

typedef struct sf_session {
    char *path;       /* the session file as given (owned); used in messages */
    char *base_dir;   /* folder that relative paths resolve against (owned): the session
                         file's, mapped (opts.pathmap) and resolved (realpath) */
    char *media_root; /* folder that sources resolve under (owned) */
    char *name;
    int sample_rate; /* 8000..384000 */
    int64_t start;   /* render region [start, end) in timeline frames */
    int64_t end;
    bool end_auto;     /* end was `auto`: the last clip end plus the longest tail */
    int64_t clips_end; /* end_auto: where the last clip ends; the delivered files end between
                          it and `end`, where every one has fallen below tail_threshold_db */
    int64_t segment;   /* frames; 0: the planner chooses */
    double tail_threshold_db;
    int master_channels;    /* 1, 2, 6 or 8 */
    sf_insert_t *master_fx; /* owned: the master's chain (runs for stems only with
                               output.master_apply, for mixes with master: apply) */
    size_t n_master_fx;
    sf_output_t output;
    sf_track_t *tracks; /* owned, in session order */
    size_t n_tracks;
    sf_stem_t *stems; /* owned, in file order */
    size_t n_stems;
    sf_bus_t *buses; /* owned, in file order */
    size_t n_buses;
    size_t *bus_order; /* owned, n_buses: a topological order, every bus after every bus
                              that feeds it (outputs and sends); ties in file order */
    sf_mix_t *mixes;   /* owned, in file order */
    size_t n_mixes;
    bool multitracks;                    /* also deliver every track consolidated, unprocessed */
    char *cache_dir;                     /* where resampled sources live (owned): <base_dir>/.stemfarm-cache */
    uint8_t hash[SF_SESSION_HASH_BYTES]; /* SHA-256 of the YAML bytes and base_dir
                                            (or opts.hash_base_dir) */
} sf_session_t;

typedef struct {
    bool strict;        /* warnings are errors */
    bool check_sources; /* open every source (default true via sf_session_load_opts_default) */
    bool resample;      /* make or reuse resampled copies of sources at another rate
                              (sf_media_resampled); default true. Needs check_sources. */
    /* NULL (default): paths are used as written. Else this machine's view
     * of shared storage (sf/pathmap.h): the session path and every absolute
     * path in the file (media_root, sources, impulse responses, output.dir)
     * are mapped before use, relative ones resolve under the mapped folders
     * (the cache too), and with media roots every source and impulse
     * response must resolve under one. */
    const sf_pathmap_t *pathmap;
    /* NULL (default): base_dir. Else the folder named in the hash instead:
     * a node passes the coordinator's base_dir, so that the hash stays the
     * coordinator's wherever this machine mounts the session. */
    const char *hash_base_dir;
    /* NULL (default): sources and impulse responses resolve as above. Else
     * each is looked up by the name written in the session: the hook returns
     * the file to read (*path, sf_malloc'd, taken by the loader), or an error
     * whose message is reported at the name. A node whose media are shipped
     * reads its cache this way. Nothing else is mapped then (the paths the
     * node does not read stay as written), and the result is still held to
     * the media roots of opts.pathmap. */
    sf_rc (*media_lookup)(void *ctx, const char *name, char **path, sf_err_t *err);
    void *media_lookup_ctx;
    /* NULL (default): the session file's folder, mapped and resolved. Else
     * this folder, used as given: a node that has no copy of the session's
     * folder passes the coordinator's. */
    const char *base_dir;
} sf_session_load_opts_t;

sf_session_load_opts_t sf_session_load_opts_default(void);

/* Loads and validates the session file at `path`.
 * Returns SF_OK and a new session in *out when diags holds no error;
 * SF_E_INPUT when any problem was found (every one is in diags, each with
 * file:line:col where it has one; *out is NULL); SF_E_IO if the file cannot be
 * read; SF_E_NOMEM. Warnings may be present on success. The caller owns *out
 * and frees it with sf_session_destroy. */
sf_rc sf_session_load(const char *path, const sf_session_load_opts_t *opts, sf_session_t **out, sf_diags_t *diags,
                      sf_err_t *err);

/* The same from YAML text already in memory (a node receives the session
 * over the wire): `path` is used for messages and to derive the folder that
 * relative paths resolve against, exactly as sf_session_load does, so both
 * give the same model and hash. With opts->pathmap, `path` is mapped first
 * (SF_E_INPUT when it cannot be: a Windows path without a rule). */
sf_rc sf_session_load_text(const char *path, const char *yaml, size_t n_bytes, const sf_session_load_opts_t *opts,
                           sf_session_t **out, sf_diags_t *diags, sf_err_t *err);

void sf_session_destroy(sf_session_t **self_p);

/* Render region length in frames (end - start). */
int64_t sf_session_n_frames(const sf_session_t *s);

/* File name (without folder) of a stem deliverable: the output name template
 * with {session} {stem} {index} {rate} {bits} filled in, characters unsafe in
 * file names replaced by '_', plus the extension of the output format.
 * Returns SF_OK, or SF_E_INPUT if it does not fit in n_bytes. */
sf_rc sf_session_stem_filename(const sf_session_t *s, size_t stem_index, char *buf, size_t n_bytes, sf_err_t *err);

/* What a deliverable holds. */
typedef enum {
    SF_TARGET_STEM,       /* index: stem */
    SF_TARGET_MIX,        /* index: mix */
    SF_TARGET_MULTITRACK, /* index: track, consolidated and unprocessed */
    SF_TARGET_FULL_MIX,   /* every track sounding, the master as the stems have it: the null-test reference */
} sf_target_kind_t;

typedef struct {
    sf_target_kind_t kind;
    uint32_t index;
} sf_target_t;

/* How many targets of a kind the session has (stems, mixes, tracks; 1 full mix). */
size_t sf_session_target_count(const sf_session_t *s, sf_target_kind_t kind);
/* Channels of a target: the stem's, the master's, the track's. */
int sf_session_target_channels(const sf_session_t *s, sf_target_t t);
/* The name placed in {stem}: stem, mix or track name; "Full Mix" for the reference. */
const char *sf_session_target_name(const sf_session_t *s, sf_target_t t);

/* File name of a target's deliverable, as sf_session_stem_filename; with
 * channel >= 0 (output.interleave: false) the channel's label is added
 * before the extension: "Night Drive_Drums.L.wav". */
sf_rc sf_session_target_filename(const sf_session_t *s, sf_target_t t, int channel, char *buf, size_t n_bytes,
                                 sf_err_t *err);

/* Channel labels of a layout of n_channels (1, 2, 6, 8), in file order:
 * M; L R; L R C LFE Ls Rs; L R C LFE Lss Rss Lsr Rsr. NULL for other counts. */
const char *const *sf_layout_labels(int n_channels);
/* "mono", "stereo", "5.1", "7.1"; NULL for other counts. */
const char *sf_layout_name(int n_channels);

/* Lowercase hex of the session hash into hex[65]. */
void sf_session_hash_hex(const sf_session_t *s, char hex[65]);

const char *sf_format_name(sf_format_t f);               /* "wav" ... */
const char *sf_sample_format_name(sf_sample_format_t f); /* "pcm24" ... */
int sf_sample_format_bits(sf_sample_format_t f);         /* 16, 24, 32, 32 */

#endif
