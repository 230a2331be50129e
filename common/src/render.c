/* render.c -- the one renderer (see sf/render.h).
 *
 * What a stem sounds like today (tracks straight to master; buses, effects,
 * fades and automation come later):
 * - only the stem's tracks, in session order; muted tracks are silent;
 * - a track's clips in file order, each covering timeline [at, at + length)
 *   from source frame `offset`; where clips overlap the later one wins (it
 *   replaces, it does not add);
 * - per (input channel, output channel) one coefficient, clip gain x track
 *   gain x polarity x pan law, computed in double and applied once in float,
 *   so every track sample is a single float rounding away from the exact
 *   value (two for the stereo fold-down to mono);
 * - the stem is the sum of its tracks, added per sample in session order
 *   into a double accumulator, acc = ((0 + t0) + t1) + ..., and rounded to
 *   float once: a float accumulator drifts past 1 LSB of pcm24 in a 24-track
 *   mix near full scale, the double one stays within half an LSB.
 *
 * How, and why it is deterministic:
 * - the range is processed in windows of SF_RENDER_WINDOW frames (a
 *   constant); within a window the active tracks are rendered in parallel,
 *   at most SF_RENDER_GROUP at a time, each into its own planar buffer
 *   (OpenMP dynamic schedule: which thread renders a track changes nothing);
 * - then the group's buffers are added into the window's accumulator in
 *   session order, parallel over blocks of samples, never with an OpenMP
 *   reduction; after the last group the accumulator is rounded into `out`;
 * - a track sample depends only on its timeline position, and adding a
 *   silent track (+-0) to a partial sum never changes it (partial sums start
 *   at +0 and so are never -0), so skipping tracks that are silent in a
 *   window is exact: the bytes of every output sample are the same whatever
 *   the window or segment cut and the thread count.
 * - Worker threads never report: each track's error goes into its own slot,
 *   and the one of the lowest track index wins.
 */
#include "sf/render.h"

#include "sf/alloc.h"
#include "sf/dsp.h"
#include "sf/media.h"

#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define SF_RENDER_WINDOW 65536 /* frames per window: a constant, never from the thread count */
#define SF_RENDER_GROUP 64     /* tracks rendered at once: bounds the buffer memory */
#define SF_RENDER_SUM_BLOCK 4096 /* frames per summing task */
#define SF_RENDER_MAX_IN 2     /* source channels a track may have */

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif
#ifndef M_SQRT1_2
#define M_SQRT1_2 0.70710678118654752440
#endif

typedef struct {
    int64_t begin; /* timeline frames [begin, end) */
    int64_t end;
} sf_span_t;

/* Per-thread scratch: source frames of one read and the spans of a track
 * already owned by later clips. */
typedef struct {
    float *src[SF_RENDER_MAX_IN]; /* window-sized, aligned */
    sf_span_t *covered;           /* sorted, disjoint; capacity max_clips + 1 */
} sf_scratch_t;

/* Everything the workers share, read-only during a window. */
typedef struct {
    const sf_session_t *s;
    const sf_stem_t *stem;
    int n_out;
    int64_t win_begin;           /* timeline frame of buffer index 0 */
    int64_t win_frames;
    size_t stride;               /* floats between channels of a track buffer */
    double (*gains)[2][SF_MAX_CHANNELS]; /* per stem track */
} sf_window_t;

static double s_db_to_gain(double db)
{
    if (isinf(db) && db < 0)
        return 0.0;
    return pow(10.0, db / 20.0);
}

void sf_render_track_gains(const sf_track_t *track, int n_out_channels,
                           double gains[2][SF_MAX_CHANNELS])
{
    memset(gains, 0, sizeof(double) * 2 * SF_MAX_CHANNELS);
    double g = s_db_to_gain(track->gain_db) * (track->invert ? -1.0 : 1.0);
    double pan = track->pan < -1.0 ? -1.0 : track->pan > 1.0 ? 1.0 : track->pan;

    if (n_out_channels == 1) {
        if (track->n_channels == 1) {
            gains[0][0] = g;
        } else {
            gains[0][0] = g * M_SQRT1_2;
            gains[1][0] = g * M_SQRT1_2;
        }
        return;
    }
    if (n_out_channels < 2)
        return;
    /* Written with sin() of the angle from each extreme rather than cos(), so
     * that the hard-panned side is exactly 0 (cos(pi/2) is 6e-17, not 0) and
     * both sides are the same number at the centre. */
    if (track->n_channels == 1) {
        /* L = cos(t) = sin(pi/2 - t), R = sin(t), t = (pan + 1) * pi / 4 */
        gains[0][0] = g * sin((1.0 - pan) * M_PI / 4.0);
        gains[0][1] = g * sin((1.0 + pan) * M_PI / 4.0);
    } else {
        /* balance: the far side scaled by cos(|pan| * pi / 2) = sin((1 - |pan|) * pi / 2) */
        double far = sin((1.0 - fabs(pan)) * M_PI / 2.0);
        gains[0][0] = g * (pan > 0.0 ? far : 1.0);
        gains[1][1] = g * (pan < 0.0 ? far : 1.0);
    }
}

/* Adds [begin, end) to the sorted disjoint list, merging neighbours. */
static void s_cover(sf_span_t *list, size_t *n, int64_t begin, int64_t end)
{
    size_t i = 0;
    while (i < *n && list[i].end < begin)
        i++;
    size_t j = i;
    while (j < *n && list[j].begin <= end) {
        if (list[j].begin < begin)
            begin = list[j].begin;
        if (list[j].end > end)
            end = list[j].end;
        j++;
    }
    /* list[i..j) merge into one span at i */
    if (j == i) {
        memmove(list + i + 1, list + i, (*n - i) * sizeof *list);
        (*n)++;
    } else if (j > i + 1) {
        memmove(list + i + 1, list + j, (*n - j) * sizeof *list);
        *n -= j - i - 1;
    }
    list[i].begin = begin;
    list[i].end = end;
}

/* Renders the visible piece [begin, end) (timeline) of `clip` into the track
 * buffer: dst[c] = sum over inputs of src[in] * coef[in][c]. */
static sf_rc s_render_piece(const sf_window_t *w, const sf_clip_t *clip,
                            float coef[SF_RENDER_MAX_IN][SF_MAX_CHANNELS], int n_in,
                            int64_t begin, int64_t end, float *track_buf, sf_scratch_t *scratch,
                            sf_err_t *err)
{
    size_t n = (size_t)(end - begin);
    sf_rc rc = sf_media_read(clip->path, clip->offset + (begin - clip->at), (int64_t)n, n_in,
                             scratch->src, err);
    if (rc != SF_OK)
        return rc;
    size_t at = (size_t)(begin - w->win_begin);
    for (int c = 0; c < w->n_out; c++) {
        float *dst = track_buf + (size_t)c * w->stride + at;
        int first = 1;
        for (int in = 0; in < n_in; in++) {
            if (coef[in][c] == 0.0f)
                continue; /* adds exact zeros: skip the work */
            if (first)
                sf_dsp_scale(dst, scratch->src[in], n, coef[in][c]);
            else
                sf_dsp_mix(dst, scratch->src[in], n, coef[in][c]);
            first = 0;
        }
    }
    return SF_OK;
}

/* Renders stem track `k` over the window into track_buf (n_out planar
 * channels, `stride` apart). Silence where no clip plays. */
static sf_rc s_render_track(const sf_window_t *w, size_t k, float *track_buf,
                            sf_scratch_t *scratch, sf_err_t *err)
{
    const sf_track_t *t = &w->s->tracks[w->stem->tracks[k]];
    double(*gains)[SF_MAX_CHANNELS] = w->gains[k];
    const int64_t w0 = w->win_begin, w1 = w->win_begin + w->win_frames;
    memset(track_buf, 0, sizeof(float) * w->stride * (size_t)w->n_out);

    /* Later clips win: walk them backwards, rendering only what no later
     * clip has covered yet. */
    size_t n_covered = 0;
    for (size_t j = t->n_clips; j-- > 0;) {
        const sf_clip_t *clip = &t->clips[j];
        int64_t a = clip->at > w0 ? clip->at : w0;
        int64_t b = clip->at + clip->length < w1 ? clip->at + clip->length : w1;
        if (a >= b)
            continue;
        if (clip->source_channels != t->n_channels)
            return SF_ERR(err, SF_E_INPUT, "'%s' has %d channels, track '%s' has %d", clip->path,
                          clip->source_channels, t->name, t->n_channels);

        float coef[SF_RENDER_MAX_IN][SF_MAX_CHANNELS] = {{0}};
        int audible = 0;
        double clip_gain = s_db_to_gain(clip->gain_db);
        for (int in = 0; in < t->n_channels; in++)
            for (int c = 0; c < w->n_out; c++) {
                coef[in][c] = (float)(clip_gain * gains[in][c]);
                audible |= coef[in][c] != 0.0f;
            }

        if (audible) {
            /* the gaps of [a, b) in the covered list */
            int64_t pos = a;
            for (size_t i = 0; i < n_covered && pos < b; i++) {
                const sf_span_t *cv = &scratch->covered[i];
                if (cv->end <= pos)
                    continue;
                if (cv->begin >= b)
                    break;
                if (cv->begin > pos) {
                    sf_rc rc = s_render_piece(w, clip, coef, t->n_channels, pos, cv->begin,
                                              track_buf, scratch, err);
                    if (rc != SF_OK)
                        return rc;
                }
                pos = cv->end;
            }
            if (pos < b) {
                sf_rc rc = s_render_piece(w, clip, coef, t->n_channels, pos, b, track_buf,
                                          scratch, err);
                if (rc != SF_OK)
                    return rc;
            }
        }
        /* a silent clip (gain -inf) still replaces what is under it */
        s_cover(scratch->covered, &n_covered, a, b);
    }
    return SF_OK;
}

/* True if track k of the stem can sound anywhere in [w0, w1). */
static int s_track_active(const sf_session_t *s, const sf_stem_t *stem, size_t k,
                          double gains[2][SF_MAX_CHANNELS], int n_out, int64_t w0, int64_t w1)
{
    const sf_track_t *t = &s->tracks[stem->tracks[k]];
    if (t->mute)
        return 0;
    int audible = 0;
    for (int in = 0; in < t->n_channels && in < SF_RENDER_MAX_IN; in++)
        for (int c = 0; c < n_out; c++)
            audible |= gains[in][c] != 0.0;
    if (!audible)
        return 0;
    for (size_t j = 0; j < t->n_clips; j++)
        if (t->clips[j].at < w1 && t->clips[j].at + t->clips[j].length > w0)
            return 1;
    return 0;
}

static sf_rc s_check_stem(const sf_session_t *s, const sf_stem_t *stem, size_t *max_clips,
                          sf_err_t *err)
{
    if (stem->n_channels < 1 || stem->n_channels > 2)
        return SF_ERR(err, SF_E_INPUT, "stem '%s' has %d channels: only mono and stereo render",
                      stem->name, stem->n_channels);
    *max_clips = 0;
    for (size_t k = 0; k < stem->n_tracks; k++) {
        if (stem->tracks[k] >= s->n_tracks || (k > 0 && stem->tracks[k] <= stem->tracks[k - 1]))
            return SF_ERR(err, SF_E_INTERNAL, "stem '%s': bad track list at %zu", stem->name, k);
        const sf_track_t *t = &s->tracks[stem->tracks[k]];
        if (t->n_channels < 1 || t->n_channels > SF_RENDER_MAX_IN)
            return SF_ERR(err, SF_E_INPUT, "track '%s' has %d channels: only mono and stereo render",
                          t->name, t->n_channels);
        if (t->n_clips > *max_clips)
            *max_clips = t->n_clips;
    }
    return SF_OK;
}

/* Renders one window's worth of a group of active tracks and adds them into
 * the accumulator acc (n_out channels, `stride` apart), in session order. */
static sf_rc s_render_group(const sf_window_t *w, const size_t *active, size_t n_active,
                            float **bufs, sf_scratch_t *scratch, int n_threads, sf_rc *rcs,
                            sf_err_t *errs, double *acc, sf_err_t *err)
{
    atomic_int first_fail = INT_MAX; /* lowest failed index in the group so far */
    const size_t n_blocks = ((size_t)w->win_frames + SF_RENDER_SUM_BLOCK - 1) / SF_RENDER_SUM_BLOCK;
    (void)n_threads;

#pragma omp parallel num_threads(n_threads)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
#pragma omp for schedule(dynamic, 1)
        for (size_t g = 0; g < n_active; g++) {
            /* Tracks after a failed one are skipped; tracks before it still
             * run, so the reported error is the lowest failing index
             * whatever the timing. */
            if ((int)g > atomic_load(&first_fail)) {
                rcs[g] = SF_OK;
                continue;
            }
            sf_err_clear(&errs[g]);
            rcs[g] = s_render_track(w, active[g], bufs[g], &scratch[tid], &errs[g]);
            if (rcs[g] != SF_OK) {
                int seen = atomic_load(&first_fail);
                while ((int)g < seen && !atomic_compare_exchange_weak(&first_fail, &seen, (int)g))
                    ;
            }
        }
        /* implicit barrier: every buffer is complete (or an error is known) */
        if (atomic_load(&first_fail) == INT_MAX) {
#pragma omp for schedule(static)
            for (size_t blk = 0; blk < n_blocks; blk++) {
                size_t i0 = blk * SF_RENDER_SUM_BLOCK;
                size_t len = (size_t)w->win_frames - i0;
                if (len > SF_RENDER_SUM_BLOCK)
                    len = SF_RENDER_SUM_BLOCK;
                for (int c = 0; c < w->n_out; c++)
                    for (size_t g = 0; g < n_active; g++) /* session order */
                        sf_dsp_add_f64(acc + (size_t)c * w->stride + i0,
                                       bufs[g] + (size_t)c * w->stride + i0, len);
            }
        }
    }

    int failed = atomic_load(&first_fail);
    if (failed != INT_MAX) {
        if (err)
            *err = errs[failed];
        return rcs[failed];
    }
    return SF_OK;
}

sf_rc sf_render_stem(const sf_session_t *s, size_t stem_index, int64_t start, int64_t n_frames,
                     int64_t preroll, float *const *out, sf_err_t *err)
{
    if (stem_index >= s->n_stems)
        return SF_ERR(err, SF_E_INTERNAL, "stem %zu of %zu", stem_index, s->n_stems);
    if (n_frames < 0 || preroll < 0)
        return SF_ERR(err, SF_E_INTERNAL, "bad render range (%lld frames, %lld pre-roll)",
                      (long long)n_frames, (long long)preroll);
    const sf_stem_t *stem = &s->stems[stem_index];
    size_t max_clips = 0;
    sf_rc rc = s_check_stem(s, stem, &max_clips, err);
    if (rc != SF_OK)
        return rc;
    const int n_out = stem->n_channels;
    for (int c = 0; c < n_out; c++)
        memset(out[c], 0, sizeof(float) * (size_t)n_frames);
    /* No effect has memory yet, so the pre-roll would be rendered and
     * discarded without changing a sample: it is skipped. Once effects keep
     * state, rendering starts at start - preroll. */
    if (n_frames == 0 || stem->n_tracks == 0)
        return SF_OK;

    int n_threads = 1;
#ifdef _OPENMP
    n_threads = omp_get_max_threads();
#endif
    const int64_t win_max = n_frames < SF_RENDER_WINDOW ? n_frames : SF_RENDER_WINDOW;
    const size_t stride = ((size_t)win_max + 15) & ~(size_t)15; /* keeps channels 64-byte aligned */
    const size_t n_group = stem->n_tracks < SF_RENDER_GROUP ? stem->n_tracks : SF_RENDER_GROUP;

    double(*gains)[2][SF_MAX_CHANNELS] = sf_calloc(stem->n_tracks, sizeof *gains);
    size_t *active = sf_calloc(stem->n_tracks, sizeof *active);
    float **bufs = sf_calloc(n_group, sizeof *bufs);
    double *acc = sf_aligned_alloc(sizeof(double) * stride * (size_t)n_out);
    sf_rc *rcs = sf_calloc(n_group, sizeof *rcs);
    sf_err_t *errs = sf_calloc(n_group, sizeof *errs);
    sf_scratch_t *scratch = sf_calloc((size_t)n_threads, sizeof *scratch);
    if (!gains || !active || !bufs || !acc || !rcs || !errs || !scratch) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory rendering stem '%s'", stem->name);
        goto out_free;
    }
    for (size_t g = 0; g < n_group; g++)
        if (!(bufs[g] = sf_aligned_alloc(sizeof(float) * stride * (size_t)n_out))) {
            rc = SF_ERR(err, SF_E_NOMEM, "out of memory rendering stem '%s'", stem->name);
            goto out_free;
        }
    for (int i = 0; i < n_threads; i++) {
        for (int in = 0; in < SF_RENDER_MAX_IN; in++)
            if (!(scratch[i].src[in] = sf_aligned_alloc(sizeof(float) * stride))) {
                rc = SF_ERR(err, SF_E_NOMEM, "out of memory rendering stem '%s'", stem->name);
                goto out_free;
            }
        if (!(scratch[i].covered = sf_calloc(max_clips + 1, sizeof(sf_span_t)))) {
            rc = SF_ERR(err, SF_E_NOMEM, "out of memory rendering stem '%s'", stem->name);
            goto out_free;
        }
    }
    for (size_t k = 0; k < stem->n_tracks; k++)
        sf_render_track_gains(&s->tracks[stem->tracks[k]], n_out, gains[k]);

    sf_window_t w = {.s = s, .stem = stem, .n_out = n_out, .stride = stride, .gains = gains};
    for (int64_t done = 0; done < n_frames && rc == SF_OK; done += win_max) {
        w.win_begin = start + done;
        w.win_frames = n_frames - done < win_max ? n_frames - done : win_max;
        size_t n_active = 0;
        for (size_t k = 0; k < stem->n_tracks; k++)
            if (s_track_active(s, stem, k, gains[k], n_out, w.win_begin,
                               w.win_begin + w.win_frames))
                active[n_active++] = k;
        if (n_active == 0)
            continue; /* out is already silent */
        memset(acc, 0, sizeof(double) * stride * (size_t)n_out);
        for (size_t g0 = 0; g0 < n_active && rc == SF_OK; g0 += n_group) {
            size_t n = n_active - g0 < n_group ? n_active - g0 : n_group;
            rc = s_render_group(&w, active + g0, n, bufs, scratch, n_threads, rcs, errs, acc, err);
        }
        for (int c = 0; c < n_out && rc == SF_OK; c++)
            sf_dsp_f64_to_f32(out[c] + done, acc + (size_t)c * stride, (size_t)w.win_frames);
    }

out_free:
    if (scratch)
        for (int i = 0; i < n_threads; i++) {
            for (int in = 0; in < SF_RENDER_MAX_IN; in++)
                sf_free(scratch[i].src[in]);
            sf_free(scratch[i].covered);
        }
    if (bufs)
        for (size_t g = 0; g < n_group; g++)
            sf_free(bufs[g]);
    sf_free(scratch);
    sf_free(errs);
    sf_free(rcs);
    sf_free(bufs);
    sf_free(acc);
    sf_free(active);
    sf_free(gains);
    return rc;
}
