/* sf/fx.h -- the insert effects: parameters, tails, latency, processors.
 *
 * An effect is described by sf_fx_params_t (what the session file says, in
 * its units) and run by an sf_fx_t that the caller owns: sf_fx_init allocates
 * everything that sf_fx_process needs; sf_fx_process never allocates, logs or
 * fails (STYLE.md). Processing is planar float32, in place, and invariant
 * under how a signal is cut into calls: process(a); process(b) gives exactly
 * the bytes of process(a + b). Internal state is kept in double where
 * precision needs it (a 20 Hz high-pass at 48 kHz matches a double-precision
 * reference within -100 dB).
 *
 * Tails and latency drive segmentation (DESIGN.md): a render that starts
 * tail_frames before a segment reproduces the continuous render within the
 * threshold; latency_frames is how far an effect delays its input (look-ahead),
 * which the graph compensates on every other path.
 *
 * Parameter ranges live in one table (sf_fx_param_specs), which the loader
 * validates against, so the documentation, the loader and the DSP agree.
 */
#ifndef SF_FX_H
#define SF_FX_H

#include "sf/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Effects that work in blocks (convolve) count their blocks from where a
 * render starts; every block size divides this, and sf_render starts a
 * render with effects on a multiple of it, so blocks fall on the same
 * timeline frames whatever the segment. */
#define SF_FX_BLOCK_GRID 1024

typedef enum {
    SF_FX_GAIN,
    SF_FX_EQ, /* also the highpass / lowpass shorthands */
    SF_FX_COMPRESSOR,
    SF_FX_LIMITER,
    SF_FX_DELAY,
    SF_FX_REVERB,
    SF_FX_CONVOLVE,
} sf_fx_kind_t;
#define SF_FX_N_KINDS 7

typedef enum {
    SF_EQ_PEAK,
    SF_EQ_LOWSHELF,
    SF_EQ_HIGHSHELF,
    SF_EQ_LOWPASS,
    SF_EQ_HIGHPASS,
    SF_EQ_BANDPASS,
    SF_EQ_NOTCH,
} sf_eq_type_t;

typedef struct {
    sf_fx_kind_t kind;
    union {
        struct {
            double db;
        } gain;
        /* RBJ Audio EQ Cookbook biquads; gain_db only for peak and shelves */
        struct {
            sf_eq_type_t type;
            double freq, gain_db, q;
        } eq;
        /* feed-forward, soft knee, stereo-linked (max over channels) detection */
        struct {
            double threshold_db, ratio, attack_ms, release_ms, knee_db, makeup_db;
        } compressor;
        /* look-ahead brick wall: no output sample ever exceeds the ceiling */
        struct {
            double ceiling_db, release_ms, lookahead_ms;
        } limiter;
        struct {
            double time_ms, feedback, mix;
        } delay;
        /* algorithmic; measured RT60 within 10 % of decay_s */
        struct {
            double decay_s, predelay_ms, damping, mix;
        } reverb;
        /* ir_path: the impulse response at the session rate (the loader
         * resamples it); not owned by the params */
        struct {
            const char *ir_path;
            double mix;
        } convolve;
    } u;
} sf_fx_params_t;

/* One parameter of one effect as the session file names it. */
typedef struct {
    const char *effect; /* "compressor", "eq", "highpass" ... */
    sf_fx_kind_t kind;
    const char *key;   /* "threshold_db" ... */
    double lo, hi;     /* inclusive range */
    bool hi_exclusive; /* e.g. delay feedback < 1 */
    double def;        /* default when omitted */
    bool required;
} sf_fx_param_spec_t;

/* Every numeric parameter of every effect name ("eq", "highpass", "lowpass"
 * and the rest); *n receives the count. Non-numeric keys (eq `type`,
 * convolve `ir`) are not in the table. */
const sf_fx_param_spec_t *sf_fx_param_specs(size_t *n);

/* Tail in frames at sample_rate: how long after its input stops the effect's
 * output (or, for dynamics, its gain state) takes to fall below
 * threshold_db. INT64_MAX when unbounded (delay feedback >= 1). */
int64_t sf_fx_tail_frames(const sf_fx_params_t *p, int sample_rate, double threshold_db);

/* Frames by which the effect delays its input (limiter look-ahead); 0 for most. */
int64_t sf_fx_latency_frames(const sf_fx_params_t *p, int sample_rate);

/* Compressor and limiter: non-linear, their gain depends on the signal. */
bool sf_fx_is_dynamics(sf_fx_kind_t kind);

/* A running effect. Caller-owned storage; init fills it. */
typedef struct sf_fx {
    sf_fx_kind_t kind;
    int n_channels; /* 1..8 */
    int sample_rate;
    sf_fx_params_t params;
    void *state; /* owned: allocated by sf_fx_init, freed by sf_fx_free */
} sf_fx_t;

/* Prepares fx for n_channels at sample_rate; SF_E_INPUT for parameters out of
 * range, SF_E_IO when an impulse response cannot be read, SF_E_NOMEM. On
 * error nothing needs freeing. */
sf_rc sf_fx_init(sf_fx_t *fx, const sf_fx_params_t *p, int n_channels, int sample_rate, sf_err_t *err);

/* Processes n_frames of every channel in place. */
void sf_fx_process(sf_fx_t *fx, float *const *channels, size_t n_frames);

/* Runs n EQ effects in series on the signal, in place: exactly the bytes
 * (output and every stage's state) of sf_fx_process(eqs[0]), then eqs[1] ...
 * eqs[n - 1], each stage's output rounded to float before the next as it is
 * between calls. Why it exists: a biquad's recursion waits on its own
 * previous output, so a chain run stage by stage spends most of its time in
 * multiply-add latency; computing every stage per frame lets the independent
 * recursions overlap. eqs[i] are distinct, all SF_FX_EQ with the same
 * n_channels (asserts); n 0 does nothing. Like sf_fx_process, it never
 * allocates, logs or fails, and any cut of the signal into calls gives the
 * same bytes. */
void sf_fx_process_eq_cascade(sf_fx_t *const *eqs, size_t n, float *const *channels, size_t n_frames);

/* Back to the state of a fresh init (silence before). */
void sf_fx_reset(sf_fx_t *fx);

void sf_fx_free(sf_fx_t *fx);

/* Shared dynamics (compressor, limiter only): the gain curve the effect would
 * apply, computed from `detector` (the full bus signal, planar), advancing
 * the state exactly as sf_fx_process would. gain[i] is the linear gain for
 * output frame i, which (with latency L) is input frame i - L: apply it to a
 * share of the bus delayed by L frames. Makeup gain is included. */
void sf_fx_dynamics_gain(sf_fx_t *fx, const float *const *detector, size_t n_frames, float *gain);

#endif
