/* stitch.c -- in-order writing of target segments and the null test (see stitch.h). */
#include "stitch.h"

#include "sf/alloc.h"
#include "sf/dsp.h"
#include "sf/hash.h"
#include "sf/media.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char *partial_path;
    char *final_path;
    sf_media_writer_t *writer;
    uint64_t pcm_hash;
} stitch_file_t;

typedef struct {
    stitch_file_t *files; /* n_files */
    int n_files;
    uint32_t next_segment; /* first segment not yet written */
    float **held;          /* n_segments slots: early arrivals, planar copies */
    uint64_t key;          /* dither key */
    int64_t frames_written;
    uint64_t full_scale[SF_MAX_CHANNELS]; /* per channel: samples written at full scale (integer formats) */
    bool is_stem;
    float *tail;        /* planar, tail_frames per channel: what arrived past trim_from; NULL while silent */
    sf_format_t format; /* of its files: the session's, or RF64 for a WAV over 4 GiB */
} stitch_target_t;

/* The null test of one segment: sum of written stems minus the reference. */
typedef struct {
    double *acc;      /* master channels x segment frames, planar */
    uint32_t n_parts; /* stems and reference added so far */
} stitch_null_segment_t;

struct stitch {
    const plan_t *plan;
    stitch_target_t *targets;
    size_t n_jobs_taken;
    int bits; /* 0 for float32 */
    bool dither;
    bool interleave;
    void *scratch;                        /* interleaved frames of one segment */
    float *mono;                          /* one channel of one segment (split files) */
    stitch_null_segment_t *null_segments; /* 2 per segment, when the null test applies: the part
                                             before trim_from, and the part after it */
    uint32_t null_parts;                  /* contributions that complete a segment */
    int master_channels;
    stitch_null_t null;
    int64_t tail_frames; /* region - trim_from: held back until the length is known */
    int64_t length;      /* of every delivered file: known once the tail is written */
    bool tail_done;
    float *silence; /* segment_frames zeros: a silent tail */
    time_t created; /* the render's date and time in every file's bext */
};

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

/* Appends text to an XML document, escaped. */
static void s_xml_text(char *doc, size_t cap, const char *text)
{
    size_t n = strlen(doc);
    for (; *text && n + 8 < cap; text++) {
        const char *esc = *text == '<'    ? "&lt;"
                          : *text == '>'  ? "&gt;"
                          : *text == '&'  ? "&amp;"
                          : *text == '"'  ? "&quot;"
                          : *text == '\'' ? "&apos;"
                                          : NULL;
        if (esc) {
            memcpy(doc + n, esc, strlen(esc));
            n += strlen(esc);
        } else {
            doc[n++] = *text;
        }
    }
    doc[n] = '\0';
}

/* The iXML document of one file: the project, what the file is, and a
 * name per channel ("Drums L"), so a DAW that imports it labels the tracks. */
static char *s_ixml(const stitch_t *st, uint32_t t, int file)
{
    const plan_t *p = st->plan;
    const sf_session_t *s = p->session;
    const plan_target_t *pt = &p->targets[t];
    const char *name = sf_session_target_name(s, pt->target);
    const char *const *labels = sf_layout_labels(pt->n_channels);
    const int n_tracks = st->interleave ? pt->n_channels : 1;
    const size_t cap = 4096 + (size_t)n_tracks * 1024;
    char *doc = sf_malloc(cap);
    if (!doc)
        return NULL;
    snprintf(doc, cap,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<BWFXML>\n<IXML_VERSION>2.10</IXML_VERSION>\n<PROJECT>");
    s_xml_text(doc, cap, s->name);
    snprintf(doc + strlen(doc), cap - strlen(doc), "</PROJECT>\n<NOTE>");
    s_xml_text(doc, cap, name);
    snprintf(doc + strlen(doc), cap - strlen(doc), "</NOTE>\n<TRACK_LIST>\n<TRACK_COUNT>%d</TRACK_COUNT>\n", n_tracks);
    for (int k = 0; k < n_tracks; k++) {
        const int c = st->interleave ? k : file;
        snprintf(doc + strlen(doc), cap - strlen(doc),
                 "<TRACK><CHANNEL_INDEX>%d</CHANNEL_INDEX><INTERLEAVE_INDEX>%d</INTERLEAVE_INDEX><NAME>", k + 1, k + 1);
        s_xml_text(doc, cap, name);
        if (pt->n_channels > 1 && labels) {
            s_xml_text(doc, cap, " ");
            s_xml_text(doc, cap, labels[c]);
        }
        snprintf(doc + strlen(doc), cap - strlen(doc), "</NAME><FUNCTION>%s</FUNCTION></TRACK>\n",
                 labels ? labels[c] : "M");
    }
    snprintf(doc + strlen(doc), cap - strlen(doc), "</TRACK_LIST>\n</BWFXML>\n");
    return doc;
}

/* Opens one file of target t, with its Broadcast WAV metadata when the
 * session asks for it; a WAV that would pass 4 GiB becomes RF64. */
static sf_rc s_open_file(stitch_t *st, uint32_t t, int f, sf_err_t *err)
{
    const plan_t *p = st->plan;
    const sf_session_t *s = p->session;
    const plan_target_t *pt = &p->targets[t];
    stitch_file_t *sf = &st->targets[t].files[f];
    const int channels = st->interleave ? pt->n_channels : 1;
    const sf_format_t format =
        sf_media_container(s->output.format, sf_session_n_frames(s), channels, s->output.sample_format);
    st->targets[t].format = format;
    if (!s->output.bwf)
        return sf_media_writer_open(sf->partial_path, format, s->output.sample_format, s->sample_rate, channels, NULL,
                                    &sf->writer, err);
    char description[256], reference[33], history[256], hex[65], date[11], clock[9];
    const char *kind = pt->target.kind == SF_TARGET_MIX          ? "mix"
                       : pt->target.kind == SF_TARGET_MULTITRACK ? "multitrack"
                                                                 : "stem";
    snprintf(description, sizeof description, "%s: %s '%s'", s->name, kind, sf_session_target_name(s, pt->target));
    sf_session_hash_hex(s, hex);
    snprintf(reference, sizeof reference, "stemfarm-%.23s", hex); /* the session it came from */
    snprintf(history, sizeof history, "A=PCM,F=%d,W=%d,%sT=stemfarm %s\r\n", s->sample_rate,
             sf_sample_format_bits(s->output.sample_format),
             channels == 1   ? "M=mono,"
             : channels == 2 ? "M=stereo,"
                             : "",
             STEMFARM_VERSION);
    struct tm tm;
    gmtime_r(&st->created, &tm);
    strftime(date, sizeof date, "%Y-%m-%d", &tm);
    strftime(clock, sizeof clock, "%H:%M:%S", &tm);
    char *ixml = s_ixml(st, t, f);
    if (!ixml)
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    const sf_media_bwf_t bwf = {.description = description,
                                .originator = "stemfarm",
                                .originator_reference = reference,
                                .date = date,
                                .time = clock,
                                .time_reference = s->start > 0 ? (uint64_t)s->start : 0,
                                .coding_history = history,
                                .ixml = ixml};
    sf_rc rc = sf_media_writer_open(sf->partial_path, format, s->output.sample_format, s->sample_rate, channels, &bwf,
                                    &sf->writer, err);
    sf_free(ixml);
    return rc;
}

static sf_rc s_open_target(stitch_t *st, uint32_t t, const char *out_dir, sf_err_t *err)
{
    const plan_t *p = st->plan;
    const sf_session_t *s = p->session;
    const plan_target_t *pt = &p->targets[t];
    stitch_target_t *tt = &st->targets[t];
    const char *name = sf_session_target_name(s, pt->target);
    tt->key = sf_hash_xxh3(name, strlen(name)) ^ ((uint64_t)pt->target.kind << 56);
    tt->is_stem = pt->target.kind == SF_TARGET_STEM;
    tt->held = sf_calloc(p->n_segments, sizeof *tt->held);
    if (!tt->held)
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    if (!pt->deliver)
        return SF_OK;
    tt->n_files = st->interleave ? 1 : pt->n_channels;
    tt->files = sf_calloc((size_t)tt->n_files, sizeof *tt->files);
    if (!tt->files)
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    for (int f = 0; f < tt->n_files; f++) {
        char file_name[PATH_MAX];
        sf_rc rc = sf_session_target_filename(s, pt->target, st->interleave ? -1 : f, file_name, sizeof file_name, err);
        if (rc)
            return rc;
        stitch_file_t *sf = &tt->files[f];
        sf->final_path = s_join(out_dir, file_name, "");
        sf->partial_path = s_join(out_dir, file_name, ".partial");
        if (!sf->final_path || !sf->partial_path)
            return SF_ERR(err, SF_E_NOMEM, "out of memory");
        rc = s_open_file(st, t, f, err);
        if (rc)
            return rc;
    }
    return SF_OK;
}

/* The null test compares stems with the master-layout reference, so every
 * stem must have the master's channels. */
static bool s_null_applicable(const plan_t *p)
{
    const sf_session_t *s = p->session;
    if (plan_reference_target(p) < 0)
        return false;
    for (size_t i = 0; i < s->n_stems; i++)
        if (s->stems[i].n_channels != s->master_channels)
            return false;
    return true;
}

sf_rc stitch_open(const plan_t *plan, const char *out_dir, stitch_t **out, sf_err_t *err)
{
    const sf_session_t *s = plan->session;
    *out = NULL;
    stitch_t *st = sf_calloc(1, sizeof *st);
    if (!st)
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    st->plan = plan;
    st->created = time(NULL);
    st->bits = s->output.sample_format == SF_SAMPLE_FLOAT32 ? 0 : sf_sample_format_bits(s->output.sample_format);
    st->dither = s_dither(&s->output);
    st->interleave = s->output.interleave;
    st->master_channels = s->master_channels;
    st->targets = sf_calloc(plan->n_targets ? plan->n_targets : 1, sizeof *st->targets);
    st->scratch = sf_aligned_alloc((size_t)plan->segment_frames * SF_MAX_CHANNELS * 4);
    st->mono = sf_aligned_alloc((size_t)plan->segment_frames * 4);
    st->tail_frames = sf_session_n_frames(s) - plan->trim_from;
    st->length = sf_session_n_frames(s);
    st->null.applicable = s_null_applicable(plan);
    if (st->null.applicable) {
        st->null_segments = sf_calloc(2 * (size_t)plan->n_segments, sizeof *st->null_segments);
        st->null_parts = (uint32_t)s->n_stems + 1;
        double lsb = st->bits ? ldexp(1.0, 1 - st->bits) : ldexp(1.0, -24);
        st->null.floor_peak = (double)s->n_stems * lsb * (st->dither ? 1.5 : 0.5);
    }
    sf_rc rc = SF_OK;
    if (st->tail_frames > 0)
        st->silence = sf_calloc((size_t)plan->segment_frames, sizeof *st->silence);
    if (!st->targets || !st->scratch || !st->mono || (st->null.applicable && !st->null_segments) ||
        (st->tail_frames > 0 && !st->silence))
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
    for (uint32_t t = 0; rc == SF_OK && t < plan->n_targets; t++)
        rc = s_open_target(st, t, out_dir, err);
    if (rc) {
        stitch_destroy(&st, true);
        return rc;
    }
    *out = st;
    return SF_OK;
}

/* Adds sign * n frames (planar, as delivered) into the null sum of `slot`
 * (a segment's part before or after trim_from); when every stem and the
 * reference are in, keeps the peak and frees it. */
/* The null test's accumulator of one segment slot, allocated at its first part. */
static double *s_null_acc(stitch_t *st, size_t slot, size_t n, sf_err_t *err)
{
    stitch_null_segment_t *ns = &st->null_segments[slot];
    if (!ns->acc && !(ns->acc = sf_calloc(n * (size_t)st->master_channels, sizeof *ns->acc)))
        SF_ERR(err, SF_E_NOMEM, "out of memory for the null test");
    return ns->acc;
}

/* One more part of the slot is in; after the last, its residual peak. */
static void s_null_part_done(stitch_t *st, size_t slot, size_t n)
{
    stitch_null_segment_t *ns = &st->null_segments[slot];
    if (++ns->n_parts < st->null_parts)
        return;
    const double *restrict acc = ns->acc;
    double peak = st->null.residual_peak;
#pragma omp simd reduction(max : peak)
    for (size_t i = 0; i < n * (size_t)st->master_channels; i++) {
        const double a = fabs(acc[i]);
        peak = a > peak ? a : peak;
    }
    st->null.residual_peak = peak;
    sf_free(ns->acc);
    ns->acc = NULL;
}

/* The reference's frames, subtracted (sign -1) or a stem's as floats (+1). */
static sf_rc s_null_add(stitch_t *st, size_t slot, size_t n, const float *const *planar_f, double sign, sf_err_t *err)
{
    double *acc = s_null_acc(st, slot, n, err);
    if (!acc)
        return SF_E_NOMEM;
    for (int c = 0; c < st->master_channels; c++) {
        double *restrict a = acc + (size_t)c * n;
        const float *restrict f = planar_f[c];
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            a[i] += sign * (double)f[i];
    }
    s_null_part_done(st, slot, n);
    return SF_OK;
}

/* A stem's frames as written (the interleaved samples in scratch), added
 * straight from the integers (or floats) into the accumulator. */
static sf_rc s_null_add_written(stitch_t *st, size_t slot, size_t n, int n_channels, sf_err_t *err)
{
    double *acc = s_null_acc(st, slot, n, err);
    if (!acc)
        return SF_E_NOMEM;
    const int32_t *ints = st->scratch;
    const float *floats = st->scratch;
    const double int_scale = 1.0 / 2147483648.0; /* exact: left-justified int32 to [-1, 1) */
    const size_t nc = (size_t)n_channels;
    for (size_t c = 0; c < nc; c++) {
        double *restrict a = acc + c * n;
        if (st->bits)
            for (size_t i = 0; i < n; i++)
                a[i] += (double)ints[i * nc + c] * int_scale;
        else
            for (size_t i = 0; i < n; i++)
                a[i] += (double)floats[i * nc + c];
    }
    s_null_part_done(st, slot, n);
    return SF_OK;
}

/* Writes n frames of target t that start at timeline frame `start` (the
 * null test's `slot`) to its files: quantised, dithered by absolute frame. */
static sf_rc s_write_frames(stitch_t *st, uint32_t t, size_t slot, int64_t start, size_t n,
                            const float *const *channels, sf_err_t *err)
{
    stitch_target_t *tt = &st->targets[t];
    const plan_target_t *pt = &st->plan->targets[t];
    int n_channels = pt->n_channels;
    sf_rc rc = SF_OK;
    if (!pt->deliver) {
        if (st->null.applicable)
            rc = s_null_add(st, slot, n, channels, -1.0, err);
    } else {
        /* Quantise all channels at once: the dither of a sample depends on
         * its channel index in the target, however the files are split. */
        if (st->bits == 0)
            sf_dsp_interleave(st->scratch, channels, n_channels, n);
        else
            sf_dsp_quantize(st->scratch, channels, n_channels, n, st->bits, st->dither, tt->key, start,
                            tt->full_scale); /* peaks are the read-back meters' */
        for (int f = 0; rc == SF_OK && f < tt->n_files; f++) {
            stitch_file_t *sf = &tt->files[f];
            if (st->interleave) {
                rc = st->bits ? sf_media_writer_write_int(sf->writer, st->scratch, n, err)
                              : sf_media_writer_write_float(sf->writer, st->scratch, n, err);
                continue;
            }
            uint32_t *mono = (uint32_t *)st->mono;
            const uint32_t *frames = st->scratch;
            for (size_t i = 0; i < n; i++)
                mono[i] = frames[i * (size_t)n_channels + (size_t)f];
            rc = st->bits ? sf_media_writer_write_int(sf->writer, (const int32_t *)mono, n, err)
                          : sf_media_writer_write_float(sf->writer, (const float *)mono, n, err);
        }
        if (rc == SF_OK && tt->is_stem && st->null.applicable)
            rc = s_null_add_written(st, slot, n, n_channels, err);
    }
    if (rc == SF_OK)
        tt->frames_written += (int64_t)n;
    return rc;
}

/* Keeps frames [at, at + n) of target t's tail (past trim_from). A tail
 * that is all zeros so far takes no memory: multitracks and dry stems end
 * in exact silence. */
static sf_rc s_keep_tail(stitch_t *st, uint32_t t, int64_t at, size_t n, const float *const *channels, sf_err_t *err)
{
    stitch_target_t *tt = &st->targets[t];
    const int n_channels = st->plan->targets[t].n_channels;
    if (!tt->tail) {
        bool silent = true;
        for (int c = 0; c < n_channels && silent; c++)
            for (size_t i = 0; i < n && silent; i++)
                silent = channels[c][i] == 0.0f;
        if (silent)
            return SF_OK;
        tt->tail = sf_calloc((size_t)st->tail_frames * (size_t)n_channels, sizeof *tt->tail);
        if (!tt->tail)
            return SF_ERR(err, SF_E_NOMEM, "out of memory holding the tail of a render");
    }
    for (int c = 0; c < n_channels; c++)
        memcpy(tt->tail + (size_t)c * (size_t)st->tail_frames + (size_t)at, channels[c], n * sizeof(float));
    return SF_OK;
}

/* A segment in order: what lies before trim_from is written now, the rest
 * is kept until every target's tail is in and the length is known. */
static sf_rc s_write_segment(stitch_t *st, uint32_t t, const plan_job_t *job, const float *planar, sf_err_t *err)
{
    const plan_t *p = st->plan;
    const int64_t offset = job->start_frame - p->session->start;
    const size_t n = (size_t)job->n_frames;
    const int64_t head_end = p->trim_from - offset;
    const size_t head = head_end <= 0 ? 0 : head_end >= (int64_t)n ? n : (size_t)head_end;
    const float *channels[SF_MAX_CHANNELS];
    for (int c = 0; c < p->targets[t].n_channels; c++)
        channels[c] = planar + (size_t)c * n;
    sf_rc rc = SF_OK;
    if (head > 0)
        rc = s_write_frames(st, t, 2 * (size_t)job->segment_index, job->start_frame, head, channels, err);
    if (rc == SF_OK && head < n) {
        const float *rest[SF_MAX_CHANNELS];
        for (int c = 0; c < p->targets[t].n_channels; c++)
            rest[c] = channels[c] + head;
        rc = s_keep_tail(st, t, offset + (int64_t)head - p->trim_from, n - head, rest, err);
    }
    if (rc == SF_OK) {
        st->targets[t].next_segment++;
        st->n_jobs_taken++;
    }
    return rc;
}

/* DESIGN.md: the region ends where every delivered file has fallen below
 * the tail threshold. The last kept sample at or above it, over every
 * delivered target and channel, fixes the length; the null-test reference
 * does not count (it is not delivered). */
static int64_t s_tail_length(const stitch_t *st)
{
    const plan_t *p = st->plan;
    const float level = (float)pow(10.0, p->session->tail_threshold_db / 20.0);
    int64_t keep = 0;
    for (uint32_t t = 0; t < p->n_targets; t++) {
        const stitch_target_t *tt = &st->targets[t];
        if (!tt->tail || !p->targets[t].deliver)
            continue;
        for (int c = 0; c < p->targets[t].n_channels; c++) {
            const float *x = tt->tail + (size_t)c * (size_t)st->tail_frames;
            for (int64_t i = st->tail_frames; i-- > keep;)
                if (fabsf(x[i]) >= level) {
                    keep = i + 1;
                    break;
                }
        }
    }
    return keep;
}

/* Writes every target's tail up to the common length, segment by segment
 * (each piece is at most a segment, the size of the scratch buffers). */
static sf_rc s_write_tails(stitch_t *st, sf_err_t *err)
{
    const plan_t *p = st->plan;
    const int64_t keep = s_tail_length(st);
    st->length = p->trim_from + keep;
    for (uint32_t t = 0; t < p->n_targets; t++) {
        stitch_target_t *tt = &st->targets[t];
        for (uint32_t k = 0; k < p->n_segments; k++) {
            const int64_t seg0 = (int64_t)k * p->segment_frames;
            const int64_t a = seg0 > p->trim_from ? seg0 : p->trim_from;
            const int64_t b = seg0 + p->segment_frames < st->length ? seg0 + p->segment_frames : st->length;
            if (a >= b)
                continue;
            const float *channels[SF_MAX_CHANNELS];
            for (int c = 0; c < p->targets[t].n_channels; c++)
                channels[c] = tt->tail ? tt->tail + (size_t)c * (size_t)st->tail_frames + (size_t)(a - p->trim_from)
                                       : st->silence;
            sf_rc rc = s_write_frames(st, t, 2 * (size_t)k + 1, p->session->start + a, (size_t)(b - a), channels, err);
            if (rc != SF_OK)
                return rc;
        }
        sf_free(tt->tail);
        tt->tail = NULL;
    }
    return SF_OK;
}

sf_rc stitch_accept(stitch_t *st, size_t job_index, const float *planar, sf_err_t *err)
{
    const plan_t *p = st->plan;
    const plan_job_t *job = &p->jobs[job_index];
    uint32_t t = job->target_index;
    stitch_target_t *tt = &st->targets[t];
    int n_channels = p->targets[t].n_channels;
    if (job->segment_index < tt->next_segment || tt->held[job->segment_index])
        return SF_ERR(err, SF_E_INTERNAL, "segment %u of target %u accepted twice", job->segment_index, t);
    if (job->segment_index > tt->next_segment) {
        size_t n_bytes = (size_t)job->n_frames * (size_t)n_channels * sizeof(float);
        float *copy = sf_malloc(n_bytes);
        if (!copy)
            return SF_ERR(err, SF_E_NOMEM, "out of memory holding a segment");
        memcpy(copy, planar, n_bytes);
        tt->held[job->segment_index] = copy;
        return SF_OK;
    }
    sf_rc rc = s_write_segment(st, t, job, planar, err);
    /* Drain the segments that were waiting for this one. */
    while (rc == SF_OK && tt->next_segment < p->n_segments && tt->held[tt->next_segment]) {
        uint32_t k = tt->next_segment;
        float *held = tt->held[k];
        tt->held[k] = NULL;
        rc = s_write_segment(st, t, &p->jobs[plan_job_index(p, t, k)], held, err);
        sf_free(held);
    }
    return rc;
}

bool stitch_complete(const stitch_t *st) { return st->n_jobs_taken == st->plan->n_jobs; }

sf_rc stitch_close(stitch_t *st, sf_err_t *err)
{
    sf_rc first = SF_OK;
    if (stitch_complete(st) && !st->tail_done && st->tail_frames > 0) {
        st->tail_done = true;
        first = s_write_tails(st, err);
    }
    for (uint32_t t = 0; t < st->plan->n_targets; t++) {
        stitch_target_t *tt = &st->targets[t];
        for (int f = 0; f < tt->n_files; f++) {
            stitch_file_t *sf = &tt->files[f];
            if (!sf->writer)
                continue;
            sf->pcm_hash = sf_media_writer_pcm_hash(sf->writer);
            sf_err_t e = {0};
            sf_rc rc = sf_media_writer_close(&sf->writer, &e);
            if (first != SF_OK)
                continue;
            if (rc && first == SF_OK) {
                first = rc;
                if (err)
                    *err = e;
            }
        }
    }
    return first;
}

int stitch_n_files(const stitch_t *st, uint32_t t) { return st->targets[t].n_files; }
const char *stitch_partial_path(const stitch_t *st, uint32_t t, int f) { return st->targets[t].files[f].partial_path; }
const char *stitch_final_path(const stitch_t *st, uint32_t t, int f) { return st->targets[t].files[f].final_path; }
uint64_t stitch_pcm_hash(const stitch_t *st, uint32_t t, int f) { return st->targets[t].files[f].pcm_hash; }
int64_t stitch_frames_written(const stitch_t *st, uint32_t t) { return st->targets[t].frames_written; }
int64_t stitch_length(const stitch_t *st) { return st->length; }
sf_format_t stitch_format(const stitch_t *st, uint32_t t) { return st->targets[t].format; }
uint64_t stitch_full_scale(const stitch_t *st, uint32_t t, int file)
{
    uint64_t n = 0;
    for (int c = 0; c < st->plan->targets[t].n_channels; c++)
        if (st->interleave || c == file)
            n += st->targets[t].full_scale[c];
    return n;
}

stitch_null_t stitch_null_result(const stitch_t *st) { return st->null; }

void stitch_destroy(stitch_t **self_p, bool remove_partials)
{
    if (!self_p || !*self_p)
        return;
    stitch_t *st = *self_p;
    for (uint32_t t = 0; st->targets && t < st->plan->n_targets; t++) {
        stitch_target_t *tt = &st->targets[t];
        for (int f = 0; tt->files && f < tt->n_files; f++) {
            stitch_file_t *sf = &tt->files[f];
            if (sf->writer)
                sf_media_writer_close(&sf->writer, NULL);
            if (remove_partials && sf->partial_path)
                unlink(sf->partial_path);
            sf_free(sf->partial_path);
            sf_free(sf->final_path);
        }
        sf_free(tt->files);
        for (uint32_t k = 0; tt->held && k < st->plan->n_segments; k++)
            sf_free(tt->held[k]);
        sf_free(tt->held);
        sf_free(tt->tail);
    }
    sf_free(st->silence);
    for (size_t k = 0; st->null_segments && k < 2 * (size_t)st->plan->n_segments; k++)
        sf_free(st->null_segments[k].acc);
    sf_free(st->null_segments);
    sf_free(st->targets);
    sf_free(st->scratch);
    sf_free(st->mono);
    sf_free(st);
    *self_p = NULL;
}
