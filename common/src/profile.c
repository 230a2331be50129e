/* profile.c -- delivery profiles (see sf/profile.h). */
#include "sf/profile.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const s_names[] = {"none", "stem-mastering", "ebu-r128", "atsc-a85", "archive"};

static const sf_profile_spec_t s_specs[] = {
    [SF_PROFILE_NONE] = {0},
    [SF_PROFILE_STEM_MASTERING] = {.stems_peak = true, .peak_max_dbfs = -8.0},
    [SF_PROFILE_EBU_R128] = {.mixes_loudness = true,
                             .target_lufs = -23.0,
                             .tolerance_lu = 0.5,
                             .true_peak_max_dbtp = -1.0},
    [SF_PROFILE_ATSC_A85] = {.mixes_loudness = true,
                             .target_lufs = -24.0,
                             .tolerance_lu = 2.0,
                             .true_peak_max_dbtp = -2.0},
    [SF_PROFILE_ARCHIVE] = {0},
};

const char *sf_profile_name(sf_profile_t p)
{
    return (unsigned)p < sizeof s_names / sizeof *s_names ? s_names[p] : "unknown";
}

bool sf_profile_parse(const char *name, sf_profile_t *out)
{
    for (size_t k = 0; name && k < sizeof s_names / sizeof *s_names; k++)
        if (!strcmp(name, s_names[k])) {
            *out = (sf_profile_t)k;
            return true;
        }
    return false;
}

const char *sf_profile_names(void) { return "stem-mastering, ebu-r128, atsc-a85 or archive"; }

const sf_profile_spec_t *sf_profile_spec(sf_profile_t p)
{
    return (unsigned)p < sizeof s_specs / sizeof *s_specs ? &s_specs[p] : &s_specs[SF_PROFILE_NONE];
}

/* Formats one violation and hands it to fn. */
static void s_line(sf_profile_violation_fn fn, void *ctx, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_line(sf_profile_violation_fn fn, void *ctx, size_t *n, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (fn)
        fn(ctx, line);
    (*n)++;
}

size_t sf_profile_violations(const sf_session_t *s, sf_profile_t p, sf_profile_violation_fn fn, void *ctx)
{
    size_t n = 0;
    const sf_output_t *o = &s->output;
    const char *name = sf_profile_name(p);
    switch (p) {
    case SF_PROFILE_NONE: break;
    case SF_PROFILE_STEM_MASTERING:
        if (o->sample_format != SF_SAMPLE_PCM24)
            s_line(fn, ctx, &n, "profile '%s' needs output.sample_format: pcm24, not %s", name,
                   sf_sample_format_name(o->sample_format));
        if (o->dither == SF_DITHER_TPDF)
            s_line(fn, ctx, &n, "profile '%s' needs no dither (output.dither: none or auto), not tpdf", name);
        if (o->master_apply)
            s_line(fn, ctx, &n, "profile '%s' needs the master bypassed (output.master: bypass)", name);
        break;
    case SF_PROFILE_EBU_R128:
    case SF_PROFILE_ATSC_A85:
        if (s->n_mixes == 0)
            s_line(fn, ctx, &n, "profile '%s' judges the mixes' loudness: the session has no mix", name);
        break;
    case SF_PROFILE_ARCHIVE:
        if (o->format != SF_FILE_WAV && o->format != SF_FILE_RF64)
            s_line(fn, ctx, &n, "profile '%s' needs Broadcast WAV: output.format wav or rf64, not %s", name,
                   sf_format_name(o->format));
        if (!o->bwf)
            s_line(fn, ctx, &n, "profile '%s' needs output.bwf: true", name);
        if (o->sample_format != SF_SAMPLE_PCM24)
            s_line(fn, ctx, &n, "profile '%s' needs output.sample_format: pcm24, not %s", name,
                   sf_sample_format_name(o->sample_format));
        if (!s->multitracks)
            s_line(fn, ctx, &n, "profile '%s' needs multitracks: true (the consolidated tracks)", name);
        break;
    }
    return n;
}
