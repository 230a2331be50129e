/* plan.c -- stems x segments (see plan.h). */
#include "plan.h"

#include "sf/alloc.h"
#include "sf/wire.h"

#include <inttypes.h>
#include <jansson.h>

int64_t plan_default_segment(const sf_session_t *s)
{
    int64_t frames = (int64_t)s->sample_rate * 10;
    int max_channels = 1;
    for (size_t i = 0; i < s->n_stems; i++)
        if (s->stems[i].n_channels > max_channels)
            max_channels = s->stems[i].n_channels;
    /* Leave a megabyte for the envelope around the frames. */
    int64_t limit = (int64_t)((SF_WIRE_MAX_MESSAGE_BYTES - (1u << 20)) / (4u * (unsigned)max_channels));
    return frames < limit ? frames : limit;
}

sf_rc plan_make(const sf_session_t *s, int64_t segment_frames, plan_t **out, sf_err_t *err)
{
    *out = NULL;
    if (segment_frames == 0)
        segment_frames = s->segment ? s->segment : plan_default_segment(s);
    if (segment_frames <= 0)
        return SF_ERR(err, SF_E_INPUT, "segment length must be positive, got %" PRId64 " frames",
                      segment_frames);
    int64_t region = sf_session_n_frames(s);
    if (region <= 0)
        return SF_ERR(err, SF_E_INPUT, "the render region is empty");
    if (segment_frames > region)
        segment_frames = region;
    for (size_t i = 0; i < s->n_stems; i++) {
        uint64_t n_bytes = (uint64_t)segment_frames * 4u * (uint64_t)s->stems[i].n_channels;
        if (n_bytes > SF_WIRE_MAX_MESSAGE_BYTES - (1u << 20))
            return SF_ERR(err, SF_E_INPUT,
                          "segment of %" PRId64 " frames is too long for stem '%s' "
                          "(a result would exceed %llu MiB); use a shorter --segment",
                          segment_frames, s->stems[i].name, SF_WIRE_MAX_MESSAGE_BYTES >> 20);
    }
    plan_t *p = sf_calloc(1, sizeof *p);
    if (!p)
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    p->session = s;
    p->segment_frames = segment_frames;
    p->n_segments = (uint32_t)((region + segment_frames - 1) / segment_frames);
    p->n_jobs = s->n_stems * p->n_segments;
    p->jobs = sf_calloc(p->n_jobs ? p->n_jobs : 1, sizeof *p->jobs);
    if (!p->jobs) {
        sf_free(p);
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    }
    for (uint32_t st = 0; st < s->n_stems; st++) {
        for (uint32_t k = 0; k < p->n_segments; k++) {
            plan_job_t *j = &p->jobs[plan_job_index(p, st, k)];
            int64_t offset = (int64_t)k * segment_frames;
            j->stem_index = st;
            j->segment_index = k;
            j->start_frame = s->start + offset;
            j->n_frames = region - offset < segment_frames ? region - offset : segment_frames;
            /* No effect has memory yet: nothing needs warming up. */
            j->preroll_frames = 0;
            p->output_frames += j->n_frames;
            p->rendered_frames += j->n_frames + j->preroll_frames;
        }
    }
    *out = p;
    return SF_OK;
}

void plan_destroy(plan_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_free((*self_p)->jobs);
    sf_free(*self_p);
    *self_p = NULL;
}

size_t plan_job_index(const plan_t *p, uint32_t stem_index, uint32_t segment_index)
{
    return (size_t)stem_index * p->n_segments + segment_index;
}

size_t plan_dispatch_order(const plan_t *p, size_t i)
{
    size_t n_stems = p->session->n_stems;
    return plan_job_index(p, (uint32_t)(i % n_stems), (uint32_t)(i / n_stems));
}

static double s_seconds(const plan_t *p, int64_t frames)
{
    return (double)frames / (double)p->session->sample_rate;
}

void plan_print_text(const plan_t *p, FILE *out)
{
    const sf_session_t *s = p->session;
    fprintf(out, "session '%s': %zu stems x %" PRIu32 " segments = %zu jobs\n", s->name, s->n_stems,
            p->n_segments, p->n_jobs);
    fprintf(out, "region %" PRId64 "..%" PRId64 " (%" PRId64 " frames, %.3f s at %d Hz), segment %" PRId64
                 " frames (%.3f s)\n",
            s->start, s->end, sf_session_n_frames(s), s_seconds(p, sf_session_n_frames(s)),
            s->sample_rate, p->segment_frames, s_seconds(p, p->segment_frames));
    double overhead = p->output_frames
                          ? 100.0 * (double)(p->rendered_frames - p->output_frames) / (double)p->output_frames
                          : 0.0;
    fprintf(out, "work: %.3f audio-seconds out, %.3f rendered (pre-roll overhead %.1f%%)\n",
            s_seconds(p, p->output_frames), s_seconds(p, p->rendered_frames), overhead);
    fprintf(out, "%6s  %-24s %4s %8s %12s %10s %8s\n", "job", "stem", "seg", "tracks", "start", "frames",
            "preroll");
    for (size_t i = 0; i < p->n_jobs; i++) {
        const plan_job_t *j = &p->jobs[i];
        const sf_stem_t *st = &s->stems[j->stem_index];
        fprintf(out, "%6zu  %-24s %4" PRIu32 " %8zu %12" PRId64 " %10" PRId64 " %8" PRId64 "\n", i, st->name,
                j->segment_index, st->n_tracks, j->start_frame, j->n_frames, j->preroll_frames);
    }
}

sf_rc plan_print_json(const plan_t *p, FILE *out, sf_err_t *err)
{
    const sf_session_t *s = p->session;
    char hex[65];
    sf_session_hash_hex(s, hex);
    json_t *root = json_pack("{s:s, s:s, s:i, s:I, s:I, s:I, s:I, s:i, s:I, s:I, s:I}", "session", s->name,
                             "session_hash", hex, "sample_rate", s->sample_rate, "start", (json_int_t)s->start,
                             "end", (json_int_t)s->end, "frames", (json_int_t)sf_session_n_frames(s),
                             "segment_frames", (json_int_t)p->segment_frames, "segments", (int)p->n_segments,
                             "jobs_total", (json_int_t)p->n_jobs, "output_frames", (json_int_t)p->output_frames,
                             "rendered_frames", (json_int_t)p->rendered_frames);
    json_t *stems = json_array();
    json_t *jobs = json_array();
    if (!root || !stems || !jobs)
        goto nomem;
    for (size_t i = 0; i < s->n_stems; i++) {
        const sf_stem_t *st = &s->stems[i];
        json_t *tracks = json_array();
        for (size_t t = 0; tracks && t < st->n_tracks; t++)
            json_array_append_new(tracks, json_string(s->tracks[st->tracks[t]].name));
        json_array_append_new(stems, json_pack("{s:s, s:i, s:o*}", "name", st->name, "channels",
                                               st->n_channels, "tracks", tracks));
    }
    for (size_t i = 0; i < p->n_jobs; i++) {
        const plan_job_t *j = &p->jobs[i];
        json_array_append_new(jobs, json_pack("{s:I, s:s, s:i, s:I, s:I, s:I}", "job", (json_int_t)i, "stem",
                                              s->stems[j->stem_index].name, "segment", (int)j->segment_index,
                                              "start_frame", (json_int_t)j->start_frame, "frames",
                                              (json_int_t)j->n_frames, "preroll_frames",
                                              (json_int_t)j->preroll_frames));
    }
    json_object_set_new(root, "stems", stems);
    json_object_set_new(root, "jobs", jobs);
    int rc = json_dumpf(root, out, JSON_COMPACT);
    fputc('\n', out);
    json_decref(root);
    return rc == 0 ? SF_OK : SF_ERR(err, SF_E_IO, "cannot write the plan");
nomem:
    json_decref(root);
    json_decref(stems);
    json_decref(jobs);
    return SF_ERR(err, SF_E_NOMEM, "out of memory");
}
