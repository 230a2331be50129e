/* stitch.c -- in-order writing of stem segments (see stitch.h). */
#include "stitch.h"

#include "sf/alloc.h"
#include "sf/dsp.h"
#include "sf/hash.h"
#include "sf/media.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char *partial_path;
    char *final_path;
    sf_media_writer_t *writer;
    uint32_t next_segment;   /* first segment not yet written */
    float **held;            /* n_segments slots: early arrivals, planar copies */
    uint64_t stem_key;       /* dither key */
    uint64_t pcm_hash;
    int64_t frames_written;
    uint64_t clipped;
} stitch_stem_t;

struct stitch {
    const plan_t *plan;
    stitch_stem_t *stems;
    size_t n_stems;
    size_t n_jobs_written;
    int bits;                /* 0 for float32 */
    bool dither;
    void *scratch;           /* interleaved frames of one segment */
};

static int s_bits(sf_sample_format_t f)
{
    return f == SF_SAMPLE_FLOAT32 ? 0 : sf_sample_format_bits(f);
}

static bool s_dither(const sf_output_t *o)
{
    if (o->sample_format == SF_SAMPLE_FLOAT32 || o->dither == SF_DITHER_NONE)
        return false;
    if (o->dither == SF_DITHER_TPDF)
        return true;
    return sf_sample_format_bits(o->sample_format) < 24; /* auto: TPDF below 24 bit */
}

static char *s_join(const char *dir, const char *name, const char *suffix)
{
    size_t n = strlen(dir) + strlen(name) + strlen(suffix) + 2;
    char *p = sf_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s%s", dir, name, suffix);
    return p;
}

sf_rc stitch_open(const plan_t *plan, const char *out_dir, stitch_t **out, sf_err_t *err)
{
    const sf_session_t *s = plan->session;
    *out = NULL;
    stitch_t *st = sf_calloc(1, sizeof *st);
    if (!st)
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    st->plan = plan;
    st->n_stems = s->n_stems;
    st->bits = s_bits(s->output.sample_format);
    st->dither = s_dither(&s->output);
    st->stems = sf_calloc(s->n_stems ? s->n_stems : 1, sizeof *st->stems);
    st->scratch = sf_aligned_alloc((size_t)plan->segment_frames * SF_MAX_CHANNELS * 4);
    if (!st->stems || !st->scratch)
        goto nomem;
    for (uint32_t i = 0; i < s->n_stems; i++) {
        stitch_stem_t *ss = &st->stems[i];
        char name[PATH_MAX];
        sf_rc rc = sf_session_stem_filename(s, i, name, sizeof name, err);
        if (rc) {
            stitch_destroy(&st, true);
            return rc;
        }
        ss->final_path = s_join(out_dir, name, "");
        ss->partial_path = s_join(out_dir, name, ".partial");
        ss->held = sf_calloc(plan->n_segments, sizeof *ss->held);
        if (!ss->final_path || !ss->partial_path || !ss->held)
            goto nomem;
        ss->stem_key = sf_hash_xxh3(s->stems[i].name, strlen(s->stems[i].name));
        rc = sf_media_writer_open(ss->partial_path, s->output.format, s->output.sample_format,
                                  s->sample_rate, s->stems[i].n_channels, &ss->writer, err);
        if (rc) {
            stitch_destroy(&st, true);
            return rc;
        }
    }
    *out = st;
    return SF_OK;
nomem:
    stitch_destroy(&st, true);
    return SF_ERR(err, SF_E_NOMEM, "out of memory");
}

static sf_rc s_write_segment(stitch_t *st, uint32_t stem_index, const plan_job_t *job, const float *planar,
                             sf_err_t *err)
{
    stitch_stem_t *ss = &st->stems[stem_index];
    int n_channels = st->plan->session->stems[stem_index].n_channels;
    size_t n = (size_t)job->n_frames;
    const float *channels[SF_MAX_CHANNELS];
    for (int c = 0; c < n_channels; c++)
        channels[c] = planar + (size_t)c * n;
    sf_rc rc;
    if (st->bits == 0) {
        sf_dsp_interleave(st->scratch, channels, n_channels, n);
        rc = sf_media_writer_write_float(ss->writer, st->scratch, n, err);
    } else {
        ss->clipped += sf_dsp_quantize(st->scratch, channels, n_channels, n, st->bits, st->dither,
                                       ss->stem_key, job->start_frame);
        rc = sf_media_writer_write_int(ss->writer, st->scratch, n, err);
    }
    if (rc == SF_OK) {
        ss->frames_written += job->n_frames;
        ss->next_segment++;
        st->n_jobs_written++;
    }
    return rc;
}

sf_rc stitch_accept(stitch_t *st, size_t job_index, const float *planar, sf_err_t *err)
{
    const plan_t *p = st->plan;
    const plan_job_t *job = &p->jobs[job_index];
    stitch_stem_t *ss = &st->stems[job->stem_index];
    int n_channels = p->session->stems[job->stem_index].n_channels;
    if (job->segment_index < ss->next_segment || ss->held[job->segment_index])
        return SF_ERR(err, SF_E_INTERNAL, "segment %u of stem %u accepted twice", job->segment_index,
                      job->stem_index);
    if (job->segment_index > ss->next_segment) {
        size_t n_bytes = (size_t)job->n_frames * (size_t)n_channels * sizeof(float);
        float *copy = sf_malloc(n_bytes);
        if (!copy)
            return SF_ERR(err, SF_E_NOMEM, "out of memory holding a segment");
        memcpy(copy, planar, n_bytes);
        ss->held[job->segment_index] = copy;
        return SF_OK;
    }
    sf_rc rc = s_write_segment(st, job->stem_index, job, planar, err);
    /* Drain the segments that were waiting for this one. */
    while (rc == SF_OK && ss->next_segment < p->n_segments && ss->held[ss->next_segment]) {
        uint32_t k = ss->next_segment;
        float *held = ss->held[k];
        ss->held[k] = NULL;
        rc = s_write_segment(st, job->stem_index, &p->jobs[plan_job_index(p, job->stem_index, k)], held, err);
        sf_free(held);
    }
    return rc;
}

bool stitch_complete(const stitch_t *st) { return st->n_jobs_written == st->plan->n_jobs; }

sf_rc stitch_close(stitch_t *st, sf_err_t *err)
{
    sf_rc first = SF_OK;
    for (size_t i = 0; i < st->n_stems; i++) {
        stitch_stem_t *ss = &st->stems[i];
        if (!ss->writer)
            continue;
        ss->pcm_hash = sf_media_writer_pcm_hash(ss->writer);
        sf_err_t e = {0};
        sf_rc rc = sf_media_writer_close(&ss->writer, &e);
        if (rc && first == SF_OK) {
            first = rc;
            if (err)
                *err = e;
        }
    }
    return first;
}

const char *stitch_partial_path(const stitch_t *st, uint32_t i) { return st->stems[i].partial_path; }
const char *stitch_final_path(const stitch_t *st, uint32_t i) { return st->stems[i].final_path; }
uint64_t stitch_pcm_hash(const stitch_t *st, uint32_t i) { return st->stems[i].pcm_hash; }
int64_t stitch_frames_written(const stitch_t *st, uint32_t i) { return st->stems[i].frames_written; }
uint64_t stitch_clipped(const stitch_t *st, uint32_t i) { return st->stems[i].clipped; }

void stitch_destroy(stitch_t **self_p, bool remove_partials)
{
    if (!self_p || !*self_p)
        return;
    stitch_t *st = *self_p;
    for (size_t i = 0; st->stems && i < st->n_stems; i++) {
        stitch_stem_t *ss = &st->stems[i];
        if (ss->writer)
            sf_media_writer_close(&ss->writer, NULL);
        if (remove_partials && ss->partial_path)
            unlink(ss->partial_path);
        for (uint32_t k = 0; ss->held && k < st->plan->n_segments; k++)
            sf_free(ss->held[k]);
        sf_free(ss->held);
        sf_free(ss->partial_path);
        sf_free(ss->final_path);
    }
    sf_free(st->stems);
    sf_free(st->scratch);
    sf_free(st);
    *self_p = NULL;
}
