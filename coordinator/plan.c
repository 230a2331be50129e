/* plan.c -- targets x segments (see plan.h). */
#include "plan.h"

#include "estimate.h"

#include "sf/alloc.h"
#include "sf/render.h"
#include "sf/wire.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>

int64_t plan_default_segment(const sf_session_t *s, int64_t region, int64_t preroll)
{
    const int64_t second = s->sample_rate;
    int64_t frames = 10 * second;
    /* Every segment renders the pre-roll again, the first too: n segments
     * of a region R add n pre-rolls P, at most a tenth of R when n <= R / 10P.
     * Four pre-rolls a segment (a quarter) cost a reverb-heavy session 24 %
     * more frames rendered than delivered. */
    if (preroll > frames / 10) {
        const int64_t cap = 120 * second;
        const int64_t least = preroll <= cap / 10 ? 10 * preroll : cap;
        const int64_t n = region / least > 1 ? region / least : 1;
        int64_t even = region / n + (region % n ? 1 : 0);
        even = even < least ? least : even;
        frames = (even + second - 1) / second * second;
        frames = frames < cap ? frames : cap;
    }
    int max_channels = SF_MAX_CHANNELS; /* any target may be this wide */
    /* Leave a megabyte for the envelope around the frames. */
    int64_t limit = (int64_t)((SF_WIRE_MAX_MESSAGE_BYTES - (1u << 20)) / (4u * (unsigned)max_channels));
    return frames < limit ? frames : limit;
}

static const sf_target_kind_t s_delivered_kinds[] = {SF_TARGET_STEM, SF_TARGET_MIX, SF_TARGET_MULTITRACK};

static sf_rc s_make_targets(plan_t *p, sf_err_t *err)
{
    const sf_session_t *s = p->session;
    size_t n = s->n_stems + s->n_mixes + (s->multitracks ? s->n_tracks : 0) + (s->n_stems ? 1 : 0);
    p->targets = sf_calloc(n ? n : 1, sizeof *p->targets);
    if (!p->targets)
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    for (size_t k = 0; k < sizeof s_delivered_kinds / sizeof *s_delivered_kinds; k++) {
        sf_target_kind_t kind = s_delivered_kinds[k];
        if (kind == SF_TARGET_MULTITRACK && !s->multitracks)
            continue;
        size_t count = sf_session_target_count(s, kind);
        for (size_t i = 0; i < count; i++)
            p->targets[p->n_targets++] = (plan_target_t){.target = {kind, (uint32_t)i}, .deliver = true};
    }
    if (s->n_stems)
        p->targets[p->n_targets++] = (plan_target_t){.target = {SF_TARGET_FULL_MIX, 0}, .deliver = false};
    for (uint32_t t = 0; t < p->n_targets; t++) {
        plan_target_t *pt = &p->targets[t];
        pt->n_channels = sf_session_target_channels(s, pt->target);
        pt->preroll_frames = sf_render_preroll(s, pt->target);
        if (pt->preroll_frames < 0)
            return SF_ERR(err, SF_E_NOMEM, "out of memory");
        pt->track_prerolls = sf_calloc(s->n_tracks ? s->n_tracks : 1, sizeof *pt->track_prerolls);
        if (!pt->track_prerolls)
            return SF_ERR(err, SF_E_NOMEM, "out of memory");
        sf_rc rc = sf_render_track_prerolls(s, pt->target, pt->track_prerolls, err);
        if (rc != SF_OK)
            return rc;
        size_t n_sounding = 0;
        double sum = 0;
        pt->track_preroll_min = INT64_MAX;
        for (size_t k = 0; k < s->n_tracks; k++) {
            const int64_t v = pt->track_prerolls[k];
            if (v < 0)
                continue;
            n_sounding++;
            sum += (double)v;
            pt->track_preroll_min = v < pt->track_preroll_min ? v : pt->track_preroll_min;
        }
        if (!n_sounding)
            pt->track_preroll_min = 0;
        pt->track_preroll_mean = n_sounding ? sum / (double)n_sounding : 0.0;
    }
    return SF_OK;
}

sf_rc plan_make(const sf_session_t *s, int64_t segment_frames, plan_t **out, sf_err_t *err)
{
    *out = NULL;
    if (segment_frames < 0)
        return SF_ERR(err, SF_E_INPUT, "segment length must be positive, got %" PRId64 " frames", segment_frames);
    int64_t region = sf_session_n_frames(s);
    if (region <= 0)
        return SF_ERR(err, SF_E_INPUT, "the render region is empty");
    plan_t *p = sf_calloc(1, sizeof *p);
    if (!p)
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    p->session = s;
    sf_rc rc = s_make_targets(p, err);
    if (rc) {
        plan_destroy(&p);
        return rc;
    }
    if (segment_frames == 0 && s->segment)
        segment_frames = s->segment;
    if (segment_frames == 0) {
        int64_t longest = 0;
        for (uint32_t t = 0; t < p->n_targets; t++)
            longest = p->targets[t].preroll_frames > longest ? p->targets[t].preroll_frames : longest;
        segment_frames = plan_default_segment(s, region, longest);
    }
    if (segment_frames > region)
        segment_frames = region;
    char label[256];
    for (uint32_t t = 0; t < p->n_targets; t++) {
        uint64_t n_bytes = (uint64_t)segment_frames * 4u * (uint64_t)p->targets[t].n_channels;
        if (n_bytes > SF_WIRE_MAX_MESSAGE_BYTES - (1u << 20)) {
            plan_target_label(p, t, label, sizeof label);
            plan_destroy(&p);
            return SF_ERR(err, SF_E_INPUT,
                          "segment of %" PRId64 " frames is too long for %s "
                          "(a result would exceed %llu MiB); use a shorter --segment",
                          segment_frames, label, SF_WIRE_MAX_MESSAGE_BYTES >> 20);
        }
    }
    p->segment_frames = segment_frames;
    p->trim_from = region;
    if (s->end_auto && s->clips_end < s->end)
        p->trim_from = s->clips_end > s->start ? s->clips_end - s->start : 0;
    p->n_segments = (uint32_t)((region + segment_frames - 1) / segment_frames);
    p->n_jobs = (size_t)p->n_targets * p->n_segments;
    p->jobs = sf_calloc(p->n_jobs ? p->n_jobs : 1, sizeof *p->jobs);
    if (!p->jobs) {
        plan_destroy(&p);
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    }
    for (uint32_t t = 0; t < p->n_targets; t++) {
        for (uint32_t k = 0; k < p->n_segments; k++) {
            plan_job_t *j = &p->jobs[plan_job_index(p, t, k)];
            int64_t offset = (int64_t)k * segment_frames;
            j->target_index = t;
            j->segment_index = k;
            j->start_frame = s->start + offset;
            j->n_frames = region - offset < segment_frames ? region - offset : segment_frames;
            /* Every segment, the first too, starts its inputs this early
             * (DESIGN.md), so effects ring in from before the region. */
            j->preroll_frames = p->targets[t].preroll_frames;
            p->output_frames += p->targets[t].deliver ? j->n_frames : 0;
            const int64_t preroll = (int64_t)llround(p->targets[t].track_preroll_mean);
            p->rendered_frames += j->n_frames + preroll;
            p->preroll_frames += preroll;
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
    for (uint32_t t = 0; (*self_p)->targets && t < (*self_p)->n_targets; t++)
        sf_free((*self_p)->targets[t].track_prerolls);
    sf_free((*self_p)->targets);
    sf_free(*self_p);
    *self_p = NULL;
}

size_t plan_job_index(const plan_t *p, uint32_t target_index, uint32_t segment_index)
{
    return (size_t)target_index * p->n_segments + segment_index;
}

size_t plan_dispatch_order(const plan_t *p, size_t i)
{
    return plan_job_index(p, (uint32_t)(i % p->n_targets), (uint32_t)(i / p->n_targets));
}

int plan_reference_target(const plan_t *p)
{
    for (uint32_t t = 0; t < p->n_targets; t++)
        if (p->targets[t].target.kind == SF_TARGET_FULL_MIX)
            return (int)t;
    return -1;
}

static const char *s_kind_word(sf_target_kind_t kind)
{
    switch (kind) {
    case SF_TARGET_STEM: return "stem";
    case SF_TARGET_MIX: return "mix";
    case SF_TARGET_MULTITRACK: return "multitrack";
    case SF_TARGET_FULL_MIX: return "reference";
    }
    return "target";
}

void plan_target_label(const plan_t *p, uint32_t target_index, char *buf, size_t n_bytes)
{
    sf_target_t t = p->targets[target_index].target;
    snprintf(buf, n_bytes, "%s '%s'", s_kind_word(t.kind), sf_session_target_name(p->session, t));
}

static double s_seconds(const plan_t *p, int64_t frames) { return (double)frames / (double)p->session->sample_rate; }

/* What a stem renders: its tracks and every bus they reach. */
static void s_print_stem_graph(const sf_session_t *s, const sf_stem_t *st, FILE *out)
{
    fprintf(out, "    tracks:");
    for (size_t t = 0; t < st->n_tracks; t++)
        fprintf(out, "%s '%s'%s", t ? "," : "", s->tracks[st->tracks[t]].name,
                s->tracks[st->tracks[t]].mute ? " (muted)" : "");
    fprintf(out, "%s\n    buses:", st->n_tracks ? "" : " none");
    for (size_t b = 0; b < st->n_buses; b++) {
        const sf_bus_t *bus = &s->buses[st->buses[b]];
        const char *to = bus->output_bus == SF_MASTER_BUS ? "master" : s->buses[bus->output_bus].name;
        fprintf(out, "%s '%s' (to '%s')", b ? "," : "", bus->name, to);
    }
    fprintf(out, "%s\n", st->n_buses ? "" : " none (straight to the master)");
}

void plan_print_text(const plan_t *p, const estimate_t *est, FILE *out)
{
    const sf_session_t *s = p->session;
    fprintf(out, "session '%s': %" PRIu32 " targets x %" PRIu32 " segments = %zu jobs\n", s->name, p->n_targets,
            p->n_segments, p->n_jobs);
    fprintf(out,
            "region %" PRId64 "..%" PRId64 " (%" PRId64 " frames, %.3f s at %d Hz), segment %" PRId64
            " frames (%.3f s)\n",
            s->start, s->end, sf_session_n_frames(s), s_seconds(p, sf_session_n_frames(s)), s->sample_rate,
            p->segment_frames, s_seconds(p, p->segment_frames));
    const int64_t reference = p->rendered_frames - p->preroll_frames - p->output_frames;
    const double base = (double)(p->output_frames > 0 ? p->output_frames : 1);
    fprintf(out,
            "work: %.3f audio-seconds delivered, %.3f rendered: +%.1f%% pre-roll (tracks' mean), +%.1f%% null-test "
            "reference\n",
            s_seconds(p, p->output_frames), s_seconds(p, p->rendered_frames),
            100.0 * (double)p->preroll_frames /
                (double)(p->output_frames + reference > 0 ? p->output_frames + reference : 1),
            100.0 * (double)reference / base);
    if (est) {
        char took[32];
        estimate_format(est->machine_s, took, sizeof took);
        fprintf(out,
                "estimate: %s on this machine (a calibration render of %.1f s of every target took %.2f s: "
                "%.1fx real time)\n",
                took, est->slice_s, est->calibration_s, est->frames_per_s / p->session->sample_rate);
    }
    char label[256];
    for (uint32_t t = 0; t < p->n_targets; t++) {
        plan_target_label(p, t, label, sizeof label);
        const plan_target_t *pt = &p->targets[t];
        fprintf(out, "  %s, %s, pre-roll %" PRId64 " frames (%.3f s", label, sf_layout_name(pt->n_channels),
                pt->preroll_frames, s_seconds(p, pt->preroll_frames));
        if (pt->track_preroll_min != pt->preroll_frames)
            fprintf(out, "; per track %.3f to %.3f s, mean %.3f s", s_seconds(p, pt->track_preroll_min),
                    s_seconds(p, pt->preroll_frames), pt->track_preroll_mean / (double)s->sample_rate);
        fprintf(out, ")%s\n", pt->deliver ? "" : ", not delivered (null test)");
        if (p->targets[t].target.kind == SF_TARGET_STEM)
            s_print_stem_graph(s, &s->stems[p->targets[t].target.index], out);
    }
    fprintf(out, "%6s  %-32s %4s %12s %10s %8s\n", "job", "target", "seg", "start", "frames", "preroll");
    for (size_t i = 0; i < p->n_jobs; i++) {
        const plan_job_t *j = &p->jobs[i];
        plan_target_label(p, j->target_index, label, sizeof label);
        fprintf(out, "%6zu  %-32s %4" PRIu32 " %12" PRId64 " %10" PRId64 " %8" PRId64 "\n", i, label, j->segment_index,
                j->start_frame, j->n_frames, j->preroll_frames);
    }
}

static json_t *s_target_json(const plan_t *p, uint32_t t)
{
    const sf_session_t *s = p->session;
    const plan_target_t *pt = &p->targets[t];
    json_t *obj = json_pack("{s:s, s:s, s:i, s:s, s:b, s:I}", "kind", s_kind_word(pt->target.kind), "name",
                            sf_session_target_name(s, pt->target), "channels", pt->n_channels, "layout",
                            sf_layout_name(pt->n_channels), "delivered", pt->deliver, "preroll_frames",
                            (json_int_t)pt->preroll_frames);
    if (obj && pt->target.kind == SF_TARGET_STEM) {
        const sf_stem_t *st = &s->stems[pt->target.index];
        json_t *tracks = json_array(), *buses = json_array();
        json_t *prerolls = json_array();
        for (size_t i = 0; tracks && i < st->n_tracks; i++)
            json_array_append_new(tracks, json_string(s->tracks[st->tracks[i]].name));
        for (size_t i = 0; prerolls && i < st->n_tracks; i++)
            json_array_append_new(prerolls, json_integer((json_int_t)pt->track_prerolls[st->tracks[i]]));
        json_object_set_new(obj, "track_preroll_frames", prerolls);
        for (size_t i = 0; buses && i < st->n_buses; i++)
            json_array_append_new(buses, json_string(s->buses[st->buses[i]].name));
        json_object_set_new(obj, "tracks", tracks);
        json_object_set_new(obj, "buses", buses);
    }
    return obj;
}

sf_rc plan_print_json(const plan_t *p, const estimate_t *est, FILE *out, sf_err_t *err)
{
    const sf_session_t *s = p->session;
    char hex[65];
    sf_session_hash_hex(s, hex);
    json_t *root = json_pack("{s:s, s:s, s:i, s:I, s:I, s:I, s:I, s:i, s:I, s:I, s:I, s:I}", "session", s->name,
                             "session_hash", hex, "sample_rate", s->sample_rate, "start", (json_int_t)s->start, "end",
                             (json_int_t)s->end, "frames", (json_int_t)sf_session_n_frames(s), "segment_frames",
                             (json_int_t)p->segment_frames, "segments", (int)p->n_segments, "jobs_total",
                             (json_int_t)p->n_jobs, "output_frames", (json_int_t)p->output_frames, "rendered_frames",
                             (json_int_t)p->rendered_frames, "preroll_frames", (json_int_t)p->preroll_frames);
    json_t *targets = json_array();
    json_t *jobs = json_array();
    if (!root || !targets || !jobs) {
        json_decref(root);
        json_decref(targets);
        json_decref(jobs);
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    }
    for (uint32_t t = 0; t < p->n_targets; t++)
        json_array_append_new(targets, s_target_json(p, t));
    for (size_t i = 0; i < p->n_jobs; i++) {
        const plan_job_t *j = &p->jobs[i];
        json_array_append_new(
            jobs, json_pack("{s:I, s:i, s:s, s:i, s:I, s:I, s:I}", "job", (json_int_t)i, "target", (int)j->target_index,
                            "name", sf_session_target_name(s, p->targets[j->target_index].target), "segment",
                            (int)j->segment_index, "start_frame", (json_int_t)j->start_frame, "frames",
                            (json_int_t)j->n_frames, "preroll_frames", (json_int_t)j->preroll_frames));
    }
    if (est)
        json_object_set_new(root, "estimate",
                            json_pack("{s:f, s:f, s:f, s:f}", "machine_s", est->machine_s, "calibration_s",
                                      est->calibration_s, "slice_s", est->slice_s, "realtime",
                                      est->frames_per_s / s->sample_rate));
    json_object_set_new(root, "targets", targets);
    json_object_set_new(root, "jobs", jobs);
    int rc = json_dumpf(root, out, JSON_COMPACT);
    fputc('\n', out);
    json_decref(root);
    return rc == 0 ? SF_OK : SF_ERR(err, SF_E_IO, "cannot write the plan");
}
