/* fx_convolve.c -- convolution with an impulse response file, zero latency.
 *
 * y = (1 - mix) x + mix (h * x), per channel: a mono IR applies to every
 * channel, an IR with as many channels as the signal applies channel by
 * channel, anything else is refused (SF_E_INPUT). The IR must be at the
 * session rate (the loader resamples it); trailing exact zeros are dropped.
 *
 * Uniformly partitioned convolution with block size B (a power of two chosen
 * from the IR length only, see s_block_size) and a direct-form head:
 *
 *   - taps h[0..B) are convolved directly in the time domain, in double
 *     (products of two floats are exact in double), with eight partial sums
 *     in a fixed order, so every output sample is ready in the call that
 *     brings its input: no latency;
 *   - taps h[B..N) are cut into partitions of B and run as overlap-save
 *     through a frequency-domain delay line: when input block m-1 is
 *     complete, the spectrum of blocks m-2 and m-1 (2B real points, FFTW
 *     r2c) joins the line, and sum_p X[m-p] H[p] (p >= 1, partition spectra
 *     pre-scaled by 1/(2B)) goes back through c2r; its upper half is what
 *     partitions 1.. contribute to block m. That only needs complete input
 *     blocks, so it is ready before block m's first sample.
 *
 * Every output sample is therefore a fixed function of the input: the head
 * sum at that frame plus a block tail that depends on whole blocks only. The
 * block arithmetic runs when the block's last frame arrives, whatever the
 * call boundaries, so process(a); process(b) is bit-identical to
 * process(a + b).
 *
 * FFTW: plans are made in init with FFTW_ESTIMATE | FFTW_NO_SIMD and used
 * through the new-array execute functions. FFTW's planner is not thread-safe,
 * so plan creation and destruction hold s_fftw_lock (any other FFTW user in
 * the process must share it). FFTW_NO_SIMD makes the plan, and so the
 * rounding of every FFT, independent of the CPU's vector extensions: a stem
 * has the same bytes on every node (DESIGN.md, Determinism). FFTW allocates
 * its plans with its own allocator, outside sf_alloc.
 *
 * Tail: the first frame t from which every IR channel's remaining
 * magnitude, sum_{k>=t} |h[k]|, is below the threshold relative to
 * min(peak, 1) -- what a full-scale input can still put into the output
 * once it stops (a quiet smooth tail adds up: one sample at the threshold
 * missed -102 dBFS under a held offset); relative to the peak as asked for,
 * but never looser than the absolute threshold when an IR peaks above full
 * scale. Renders start on a grid of SF_FX_BLOCK_GRID frames (render.c), so
 * the blocks -- and the FFTs' rounding -- fall on the same timeline frames
 * in every segment.
 * Latency 0.
 */
#include "fx_impl.h"

#include "sf/alloc.h"
#include "sf/media.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define SF_FX_MAX_CHANNELS 8
#define SF_CONV_MIN_BLOCK  64
#define SF_CONV_MAX_BLOCK  1024
_Static_assert(SF_FX_BLOCK_GRID % SF_CONV_MAX_BLOCK == 0, "renders must start on the convolver's block grid");
#define SF_CONV_LANES  8                  /* partial sums of the head; the head is padded to a multiple */
#define SF_CONV_MAX_IR ((int64_t)1 << 28) /* frames: 93 minutes at 48 kHz */
#define SF_FFTW_FLAGS  (FFTW_ESTIMATE | FFTW_NO_SIMD)

static pthread_mutex_t s_fftw_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
    size_t block;    /* B: frames per block, a power of two */
    size_t n_head;   /* head taps rounded up to SF_CONV_LANES (<= B), zero-padded in front */
    size_t n_parts;  /* partitions run through the FFT: ceil(N / B) - 1 (0 when N <= B) */
    size_t n_bins;   /* B + 1 */
    int n_ir_ch;     /* 1 or the signal's channel count */
    double dry, wet; /* 1 - mix, mix */

    double *head[SF_FX_MAX_CHANNELS]; /* per IR channel: h[0..B) reversed, as double */
    float *spec[SF_FX_MAX_CHANNELS];  /* per IR channel: n_parts spectra of partitions 1.., re then im */

    double *xbuf[SF_FX_MAX_CHANNELS]; /* per channel: previous block, then the block being filled (2B) */
    float *tail[SF_FX_MAX_CHANNELS];  /* per channel: partitions 1.. for the block being filled (B) */
    float *fdl[SF_FX_MAX_CHANNELS];   /* per channel: n_parts input spectra, re then im, a ring */
    size_t pos;                       /* frames of the current block already in, the same for every channel */
    size_t ring;                      /* fdl slot of the newest spectrum */

    float *fft_in;          /* 2B real (scratch) */
    fftwf_complex *fft_out; /* B + 1 (scratch) */
    float *acc;             /* 2 (B + 1): the sum over partitions, re then im (scratch) */
    fftwf_complex *ifft_in; /* B + 1 (scratch; c2r overwrites it) */
    float *ifft_out;        /* 2B (scratch) */
    fftwf_plan fwd, inv;    /* NULL when n_parts == 0 */
} s_conv_t;

static sf_rc s_check_mix(double mix, sf_err_t *err)
{
    size_t n;
    const sf_fx_param_spec_t *s = sf_fx_param_specs(&n);
    for (size_t i = 0; i < n; i++) {
        if (s[i].kind == SF_FX_CONVOLVE && strcmp(s[i].key, "mix") == 0 && !(mix >= s[i].lo && mix <= s[i].hi))
            return SF_ERR(err, SF_E_INPUT, "convolve mix %g is out of range (%g..%g)", mix, s[i].lo, s[i].hi);
    }
    return SF_OK;
}

/* B from the IR length alone: the head costs B multiply-adds a frame, the
 * delay line about N / B complex ones, so B near sqrt(N) (capped). */
static size_t s_block_size(int64_t n_ir)
{
    size_t b = SF_CONV_MIN_BLOCK;
    while (b < SF_CONV_MAX_BLOCK && (double)b * (double)b < (double)n_ir)
        b *= 2;
    return b;
}

static void s_free_channels(float **ir, int n)
{
    for (int c = 0; c < n; c++) {
        sf_free(ir[c]);
        ir[c] = NULL;
    }
}

/* Reads the whole IR at `path` into ir[c] (info->channels buffers of
 * info->frames floats, caller frees with s_free_channels). */
static sf_rc s_ir_read(const char *path, sf_media_info_t *info, float **ir, sf_err_t *err)
{
    if (!path)
        return SF_ERR(err, SF_E_INPUT, "convolve has no impulse response");
    sf_rc rc = sf_media_probe(path, info, err);
    if (rc)
        return rc;
    if (info->channels < 1 || info->channels > SF_FX_MAX_CHANNELS)
        return SF_ERR(err, SF_E_INPUT, "impulse response '%s' has %d channels", path, info->channels);
    if (info->frames > SF_CONV_MAX_IR)
        return SF_ERR(err, SF_E_INPUT, "impulse response '%s' is too long (%lld frames, at most %lld)", path,
                      (long long)info->frames, (long long)SF_CONV_MAX_IR);
    for (int c = 0; c < info->channels; c++) {
        ir[c] = sf_aligned_alloc((size_t)info->frames * sizeof(float));
        if (!ir[c]) {
            s_free_channels(ir, c);
            return SF_ERR(err, SF_E_NOMEM, "out of memory reading impulse response '%s'", path);
        }
    }
    rc = sf_media_read(path, 0, info->frames, info->channels, ir, err);
    if (rc)
        s_free_channels(ir, info->channels);
    return rc;
}

/* Frames up to and including the last non-zero sample of any channel (>= 1). */
static int64_t s_ir_length(float *const *ir, int n_ch, int64_t frames)
{
    int64_t n = 1;
    for (int c = 0; c < n_ch; c++) {
        for (int64_t i = frames - 1; i >= n; i--) {
            if (ir[c][i] != 0.0f) {
                n = i + 1;
                break;
            }
        }
    }
    return n;
}

static void s_conv_free(sf_fx_t *fx)
{
    s_conv_t *st = fx->state;
    pthread_mutex_lock(&s_fftw_lock);
    if (st->fwd)
        fftwf_destroy_plan(st->fwd);
    if (st->inv)
        fftwf_destroy_plan(st->inv);
    pthread_mutex_unlock(&s_fftw_lock);
    for (int c = 0; c < SF_FX_MAX_CHANNELS; c++) {
        sf_free(st->head[c]);
        sf_free(st->spec[c]);
        sf_free(st->xbuf[c]);
        sf_free(st->tail[c]);
        sf_free(st->fdl[c]);
    }
    sf_free(st->fft_in);
    sf_free(st->fft_out);
    sf_free(st->acc);
    sf_free(st->ifft_in);
    sf_free(st->ifft_out);
    sf_free(st);
}

/* A zeroed 64-byte aligned block, NULL on failure. */
static void *s_zalloc(size_t n_bytes)
{
    void *p = sf_aligned_alloc(n_bytes);
    if (p)
        memset(p, 0, n_bytes);
    return p;
}

static bool s_alloc_buffers(s_conv_t *st, int n_channels)
{
    const size_t b = st->block, nb = st->n_bins, spec = st->n_parts * 2 * nb;
    for (int c = 0; c < st->n_ir_ch; c++) {
        if (!(st->head[c] = s_zalloc(st->n_head * sizeof(double))))
            return false;
        if (st->n_parts && !(st->spec[c] = s_zalloc(spec * sizeof(float))))
            return false;
    }
    for (int c = 0; c < n_channels; c++) {
        if (!(st->xbuf[c] = s_zalloc(2 * b * sizeof(double))) || !(st->tail[c] = s_zalloc(b * sizeof(float))))
            return false;
        if (st->n_parts && !(st->fdl[c] = s_zalloc(spec * sizeof(float))))
            return false;
    }
    if (!st->n_parts)
        return true;
    return (st->fft_in = s_zalloc(2 * b * sizeof(float))) && (st->fft_out = s_zalloc(nb * sizeof(fftwf_complex))) &&
           (st->acc = s_zalloc(2 * nb * sizeof(float))) && (st->ifft_in = s_zalloc(nb * sizeof(fftwf_complex))) &&
           (st->ifft_out = s_zalloc(2 * b * sizeof(float)));
}

static bool s_make_plans(s_conv_t *st)
{
    const int n = (int)(2 * st->block);
    pthread_mutex_lock(&s_fftw_lock);
    st->fwd = fftwf_plan_dft_r2c_1d(n, st->fft_in, st->fft_out, SF_FFTW_FLAGS);
    st->inv = fftwf_plan_dft_c2r_1d(n, st->ifft_in, st->ifft_out, SF_FFTW_FLAGS);
    pthread_mutex_unlock(&s_fftw_lock);
    return st->fwd && st->inv;
}

/* Splits FFTW's interleaved spectrum into re[0..nb) and im[0..nb), scaled. */
static void s_split(float *restrict re, float *restrict im, const float *restrict z, size_t nb, float scale)
{
    for (size_t k = 0; k < nb; k++) {
        re[k] = z[2 * k] * scale;
        im[k] = z[2 * k + 1] * scale;
    }
}

/* Fills the head and the partition spectra of one IR channel (n taps). */
static void s_load_ir(s_conv_t *st, int c, const float *h, size_t n)
{
    const size_t b = st->block, nb = st->n_bins;
    const size_t n_direct = n < b ? n : b;
    for (size_t k = 0; k < n_direct; k++)
        st->head[c][st->n_head - 1 - k] = (double)h[k];
    /* 1 / (2B) is a power of two: scaling the spectra is exact. */
    const float scale = 1.0f / (float)(2 * b);
    for (size_t p = 0; p < st->n_parts; p++) {
        const size_t first = (p + 1) * b;
        const size_t len = n - first < b ? n - first : b;
        memset(st->fft_in, 0, 2 * b * sizeof(float));
        memcpy(st->fft_in, h + first, len * sizeof(float));
        fftwf_execute_dft_r2c(st->fwd, st->fft_in, st->fft_out);
        float *re = st->spec[c] + p * 2 * nb;
        s_split(re, re + nb, (const float *)st->fft_out, nb, scale);
    }
}

static sf_rc s_conv_init(sf_fx_t *fx, sf_err_t *err)
{
    const sf_fx_params_t *p = &fx->params;
    const char *path = p->u.convolve.ir_path;
    sf_rc rc = s_check_mix(p->u.convolve.mix, err);
    if (rc)
        return rc;
    sf_media_info_t info;
    float *ir[SF_FX_MAX_CHANNELS] = {0};
    s_conv_t *st = NULL;
    rc = s_ir_read(path, &info, ir, err);
    if (rc)
        return rc;
    if (info.channels != 1 && info.channels != fx->n_channels) {
        rc = SF_ERR(err, SF_E_INPUT,
                    "impulse response '%s' has %d channels, the signal %d: it must be mono or have as many channels "
                    "as the signal",
                    path, info.channels, fx->n_channels);
        goto free_ir;
    }
    if (info.sample_rate != fx->sample_rate) {
        rc = SF_ERR(err, SF_E_INPUT, "impulse response '%s' is %d Hz, the session %d Hz", path, info.sample_rate,
                    fx->sample_rate);
        goto free_ir;
    }
    st = sf_calloc(1, sizeof *st);
    if (!st) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory for a convolution");
        goto free_ir;
    }
    fx->state = st;
    const int64_t n = s_ir_length(ir, info.channels, info.frames);
    st->block = s_block_size(n);
    st->n_parts = (size_t)((n + (int64_t)st->block - 1) / (int64_t)st->block) - 1;
    st->n_bins = st->block + 1;
    const size_t n_direct = (size_t)n < st->block ? (size_t)n : st->block;
    st->n_head = (n_direct + SF_CONV_LANES - 1) / SF_CONV_LANES * SF_CONV_LANES;
    st->n_ir_ch = info.channels;
    st->dry = 1.0 - p->u.convolve.mix;
    st->wet = p->u.convolve.mix;
    if (!s_alloc_buffers(st, fx->n_channels) || (st->n_parts && !s_make_plans(st))) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory for a convolution with '%s' (%lld frames)", path, (long long)n);
        goto free_state;
    }
    for (int c = 0; c < info.channels; c++)
        s_load_ir(st, c, ir[c], (size_t)n);
    s_free_channels(ir, info.channels);
    return SF_OK;

free_state:
    s_conv_free(fx);
    fx->state = NULL;
free_ir:
    s_free_channels(ir, info.channels);
    return rc;
}

/* sum a[k] b[k] over n (a multiple of SF_CONV_LANES) in a fixed order. */
static double s_dot(const double *restrict a, const double *restrict b, size_t n)
{
    double acc[SF_CONV_LANES] = {0};
    for (size_t i = 0; i < n; i += SF_CONV_LANES) {
#pragma omp simd
        for (size_t j = 0; j < SF_CONV_LANES; j++)
            acc[j] += a[i + j] * b[i + j];
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* Input block complete in channel c: push its spectrum into the delay line,
 * compute the next block's tail, slide the input window. */
static void s_block_done(s_conv_t *st, int c, int ic, size_t *ring)
{
    const size_t b = st->block, nb = st->n_bins, n_parts = st->n_parts;
    double *xb = st->xbuf[c];
    if (n_parts) {
        for (size_t i = 0; i < 2 * b; i++)
            st->fft_in[i] = (float)xb[i];
        fftwf_execute_dft_r2c(st->fwd, st->fft_in, st->fft_out);
        const size_t newest = *ring + 1 == n_parts ? 0 : *ring + 1;
        float *slot = st->fdl[c] + newest * 2 * nb;
        s_split(slot, slot + nb, (const float *)st->fft_out, nb, 1.0f);

        float *restrict acc_re = st->acc, *restrict acc_im = st->acc + nb;
        memset(st->acc, 0, 2 * nb * sizeof(float));
        size_t s = newest;
        for (size_t p = 0; p < n_parts; p++) {
            /* partition p + 1 meets the spectrum p blocks older than the newest */
            const float *restrict xr = st->fdl[c] + s * 2 * nb, *restrict xi = xr + nb;
            const float *restrict hr = st->spec[ic] + p * 2 * nb, *restrict hi = hr + nb;
#pragma omp simd
            for (size_t k = 0; k < nb; k++) {
                acc_re[k] += xr[k] * hr[k] - xi[k] * hi[k];
                acc_im[k] += xr[k] * hi[k] + xi[k] * hr[k];
            }
            s = s == 0 ? n_parts - 1 : s - 1;
        }
        for (size_t k = 0; k < nb; k++) {
            st->ifft_in[k][0] = acc_re[k];
            st->ifft_in[k][1] = acc_im[k];
        }
        fftwf_execute_dft_c2r(st->inv, st->ifft_in, st->ifft_out);
        memcpy(st->tail[c], st->ifft_out + b, b * sizeof(float));
        *ring = newest;
    }
    memcpy(xb, xb + b, b * sizeof(double));
}

static void s_conv_process(sf_fx_t *fx, float *const *channels, size_t n_frames)
{
    s_conv_t *st = fx->state;
    const size_t b = st->block, n_head = st->n_head;
    const double dry = st->dry, wet = st->wet;
    size_t pos_end = st->pos, ring_end = st->ring;
    for (int c = 0; c < fx->n_channels; c++) {
        const int ic = st->n_ir_ch == 1 ? 0 : c;
        const double *head = st->head[ic];
        double *xb = st->xbuf[c];
        const float *tail = st->tail[c];
        float *x = channels[c];
        size_t pos = st->pos, ring = st->ring;
        for (size_t i = 0; i < n_frames; i++) {
            const double in = (double)x[i];
            xb[b + pos] = in;
            const double y = s_dot(head, xb + b + pos + 1 - n_head, n_head) + (double)tail[pos];
            x[i] = (float)(dry * in + wet * y);
            if (++pos == b) {
                s_block_done(st, c, ic, &ring);
                pos = 0;
            }
        }
        pos_end = pos;
        ring_end = ring;
    }
    st->pos = pos_end;
    st->ring = ring_end;
}

static void s_conv_reset(sf_fx_t *fx)
{
    s_conv_t *st = fx->state;
    for (int c = 0; c < fx->n_channels; c++) {
        memset(st->xbuf[c], 0, 2 * st->block * sizeof(double));
        memset(st->tail[c], 0, st->block * sizeof(float));
        if (st->n_parts)
            memset(st->fdl[c], 0, st->n_parts * 2 * st->n_bins * sizeof(float));
    }
    st->pos = 0;
    st->ring = 0;
}

/* The IR is read again, in fixed chunks: the tail never allocates, so it
 * depends on the file alone and not on how much memory there is. Two
 * passes: the peak and each channel's total magnitude, then the frames
 * from which some channel's remaining magnitude still reaches the level.
 * An IR that cannot be read gives 0 (init reports why). */
static int64_t s_conv_tail(const sf_fx_params_t *p, int sample_rate, double threshold_db)
{
    (void)sample_rate;
    enum { CHUNK = 1024 };
    sf_media_info_t info = {0};
    if (sf_media_probe(p->u.convolve.ir_path, &info, NULL) || info.channels < 1 || info.channels > SF_FX_MAX_CHANNELS)
        return 0; /* init reports the real error */
    float buf[SF_FX_MAX_CHANNELS][CHUNK];
    float *ch[SF_FX_MAX_CHANNELS];
    for (int c = 0; c < info.channels; c++)
        ch[c] = buf[c];
    double peak = 0, level = 0, rest[SF_FX_MAX_CHANNELS] = {0};
    int64_t last = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t at = 0; at < info.frames; at += CHUNK) {
            int64_t n = info.frames - at < CHUNK ? info.frames - at : CHUNK;
            if (sf_media_read(p->u.convolve.ir_path, at, n, info.channels, ch, NULL))
                return info.frames; /* unreadable now: the whole length is the safe answer */
            for (int c = 0; c < info.channels; c++)
                for (int64_t i = 0; i < n; i++) {
                    double v = fabs((double)buf[c][i]);
                    if (pass == 0) {
                        peak = fmax(peak, v);
                        rest[c] += v;
                    } else {
                        if (rest[c] >= level && v != 0.0 && at + i + 1 > last)
                            last = at + i + 1;
                        rest[c] -= v;
                    }
                }
        }
        level = pow(10.0, threshold_db / 20.0) * fmin(peak, 1.0);
    }
    return last;
}

const sf_fx_class_t sf_fx_convolve_class = {
    .init = s_conv_init,
    .process = s_conv_process,
    .reset = s_conv_reset,
    .free = s_conv_free,
    .tail = s_conv_tail,
};
