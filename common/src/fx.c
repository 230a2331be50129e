/* fx.c -- effect dispatch and the parameter table (see sf/fx.h). */
#include "sf/fx.h"

#include "fx_impl.h"

#include <string.h>

static const sf_fx_class_t *s_class(sf_fx_kind_t kind)
{
    switch (kind) {
    case SF_FX_GAIN: return &sf_fx_gain_class;
    case SF_FX_EQ: return &sf_fx_eq_class;
    case SF_FX_COMPRESSOR: return &sf_fx_compressor_class;
    case SF_FX_LIMITER: return &sf_fx_limiter_class;
    case SF_FX_DELAY: return &sf_fx_delay_class;
    case SF_FX_REVERB: return &sf_fx_reverb_class;
    case SF_FX_CONVOLVE: return &sf_fx_convolve_class;
    }
    return NULL;
}

/* clang-format off */
static const sf_fx_param_spec_t s_specs[] = {
    {"gain",       SF_FX_GAIN,       "db",           -120, 24,    false, 0,     true},
    {"eq",         SF_FX_EQ,         "freq",         10,   96000, false, 1000,  true},
    {"eq",         SF_FX_EQ,         "gain_db",      -48,  48,    false, 0,     false},
    {"eq",         SF_FX_EQ,         "q",            0.05, 50,    false, 0.707, false},
    {"highpass",   SF_FX_EQ,         "freq",         10,   96000, false, 80,    true},
    {"highpass",   SF_FX_EQ,         "q",            0.05, 50,    false, 0.707, false},
    {"lowpass",    SF_FX_EQ,         "freq",         10,   96000, false, 8000,  true},
    {"lowpass",    SF_FX_EQ,         "q",            0.05, 50,    false, 0.707, false},
    {"compressor", SF_FX_COMPRESSOR, "threshold_db", -80,  0,     false, -20,   false},
    {"compressor", SF_FX_COMPRESSOR, "ratio",        1,    100,   false, 4,     false},
    {"compressor", SF_FX_COMPRESSOR, "attack_ms",    0.01, 1000,  false, 10,    false},
    {"compressor", SF_FX_COMPRESSOR, "release_ms",   1,    10000, false, 100,   false},
    {"compressor", SF_FX_COMPRESSOR, "knee_db",      0,    48,    false, 0,     false},
    {"compressor", SF_FX_COMPRESSOR, "makeup_db",    -24,  48,    false, 0,     false},
    {"limiter",    SF_FX_LIMITER,    "ceiling_db",   -60,  0,     false, -1,    false},
    {"limiter",    SF_FX_LIMITER,    "release_ms",   1,    10000, false, 50,    false},
    {"limiter",    SF_FX_LIMITER,    "lookahead_ms", 0,    50,    false, 5,     false},
    {"delay",      SF_FX_DELAY,      "time_ms",      0.1,  10000, false, 250,   true},
    {"delay",      SF_FX_DELAY,      "feedback",     0,    1,     true,  0.3,   false},
    {"delay",      SF_FX_DELAY,      "mix",          0,    1,     false, 0.5,   false},
    {"reverb",     SF_FX_REVERB,     "decay_s",      0.1,  30,    false, 2,     false},
    {"reverb",     SF_FX_REVERB,     "predelay_ms",  0,    500,   false, 0,     false},
    {"reverb",     SF_FX_REVERB,     "damping",      0,    1,     false, 0.5,   false},
    {"reverb",     SF_FX_REVERB,     "mix",          0,    1,     false, 1,     false},
    {"convolve",   SF_FX_CONVOLVE,   "mix",          0,    1,     false, 1,     false},
};
/* clang-format on */

const sf_fx_param_spec_t *sf_fx_param_specs(size_t *n)
{
    *n = sizeof s_specs / sizeof *s_specs;
    return s_specs;
}

int64_t sf_fx_tail_frames(const sf_fx_params_t *p, int sample_rate, double threshold_db)
{
    return s_class(p->kind)->tail(p, sample_rate, threshold_db);
}

int64_t sf_fx_latency_frames(const sf_fx_params_t *p, int sample_rate)
{
    const sf_fx_class_t *c = s_class(p->kind);
    return c->latency ? c->latency(p, sample_rate) : 0;
}

bool sf_fx_is_dynamics(sf_fx_kind_t kind) { return kind == SF_FX_COMPRESSOR || kind == SF_FX_LIMITER; }

sf_rc sf_fx_init(sf_fx_t *fx, const sf_fx_params_t *p, int n_channels, int sample_rate, sf_err_t *err)
{
    memset(fx, 0, sizeof *fx);
    const sf_fx_class_t *c = s_class(p->kind);
    if (!c)
        return SF_ERR(err, SF_E_INPUT, "unknown effect kind %d", (int)p->kind);
    if (n_channels < 1 || n_channels > 8 || sample_rate <= 0)
        return SF_ERR(err, SF_E_INPUT, "effect for %d channels at %d Hz", n_channels, sample_rate);
    fx->kind = p->kind;
    fx->n_channels = n_channels;
    fx->sample_rate = sample_rate;
    fx->params = *p;
    sf_rc rc = c->init(fx, err);
    if (rc)
        memset(fx, 0, sizeof *fx);
    return rc;
}

void sf_fx_process(sf_fx_t *fx, float *const *channels, size_t n_frames)
{
    s_class(fx->kind)->process(fx, channels, n_frames);
}

void sf_fx_reset(sf_fx_t *fx) { s_class(fx->kind)->reset(fx); }

void sf_fx_free(sf_fx_t *fx)
{
    if (!fx || !fx->state)
        return;
    s_class(fx->kind)->free(fx);
    fx->state = NULL;
}

void sf_fx_dynamics_gain(sf_fx_t *fx, const float *const *detector, size_t n_frames, float *gain)
{
    s_class(fx->kind)->gain_curve(fx, detector, n_frames, gain);
}
