/* fx_impl.h -- what each effect provides to the dispatcher in fx.c.
 * Private to common/src: one class per effect kind. */
#ifndef SF_FX_IMPL_H
#define SF_FX_IMPL_H

#include "sf/fx.h"

typedef struct {
    sf_rc (*init)(sf_fx_t *fx, sf_err_t *err); /* fx->params, n_channels, sample_rate are set */
    void (*process)(sf_fx_t *fx, float *const *channels, size_t n_frames);
    void (*reset)(sf_fx_t *fx);
    void (*free)(sf_fx_t *fx); /* frees fx->state's insides and fx->state */
    int64_t (*tail)(const sf_fx_params_t *p, int sample_rate, double threshold_db);
    int64_t (*latency)(const sf_fx_params_t *p, int sample_rate);                                /* NULL: 0 */
    void (*gain_curve)(sf_fx_t *fx, const float *const *detector, size_t n_frames, float *gain); /* dynamics */
} sf_fx_class_t;

extern const sf_fx_class_t sf_fx_gain_class;       /* fx_filter.c */
extern const sf_fx_class_t sf_fx_eq_class;         /* fx_filter.c */
extern const sf_fx_class_t sf_fx_delay_class;      /* fx_filter.c */
extern const sf_fx_class_t sf_fx_convolve_class;   /* fx_convolve.c */
extern const sf_fx_class_t sf_fx_compressor_class; /* fx_dynamics.c */
extern const sf_fx_class_t sf_fx_limiter_class;    /* fx_dynamics.c */
extern const sf_fx_class_t sf_fx_reverb_class;     /* fx_reverb.c */

#endif
