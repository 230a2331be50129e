/* fuzz_session.c -- libFuzzer target: sf_session_load_text, the session loader.
 *
 * A session arrives from a user's pipeline or, on a node, over the wire. The
 * loader must never crash, leak, hang or meet undefined behaviour (ASan,
 * UBSan), whatever the bytes: it accepts a session or lists problems. The
 * input is loaded as it is, without source checks or resampling, so no file
 * is opened; the fake path's folder is "/" because the loader resolves it
 * (realpath) to derive base_dir.
 *
 * Beyond memory safety, a load must keep its contract (sf/session.h), and an
 * accepted model must be usable by what consumes it: every index points into
 * its array, bus_order is a permutation, automation is in time order, every
 * target has a name and a file name. A break aborts with a line saying what.
 */
#include "sf/error.h"
#include "sf/session.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PATH "/session.yaml"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n_bytes);

static void s_fail(const char *fmt, const char *what)
{
    fprintf(stderr, "fuzz_session: ");
    fprintf(stderr, fmt, what);
    fputc('\n', stderr);
    abort();
}

static void s_check_bus(const sf_session_t *s, int bus, const char *what)
{
    if (bus != SF_MASTER_BUS && (bus < 0 || (size_t)bus >= s->n_buses))
        s_fail("%s names a bus that does not exist", what);
}

static void s_check_auto(const sf_automation_t *a, const char *what)
{
    if (a->n_points && (!a->frames || !a->values))
        s_fail("%s has points but no arrays", what);
    for (size_t i = 1; i < a->n_points; i++)
        if (a->frames[i] < a->frames[i - 1])
            s_fail("%s is not in time order", what);
}

static void s_check_sends(const sf_session_t *s, const sf_send_t *sends, size_t n_sends)
{
    for (size_t i = 0; i < n_sends; i++) {
        if (sends[i].bus < 0 || (size_t)sends[i].bus >= s->n_buses)
            s_fail("%s names a bus that does not exist", "a send");
        s_check_auto(&sends[i].level_auto, "a send's level automation");
    }
}

/* The invariants that the coordinator and the renderer index by. */
static void s_check_model(const sf_session_t *s)
{
    if (!s->path || !s->base_dir || !s->name || !s->output.name_template)
        s_fail("%s: a required string is NULL", "model");
    if (s->end < s->start && !s->end_auto)
        s_fail("%s: the render region ends before it starts", "model");
    for (size_t t = 0; t < s->n_tracks; t++) {
        const sf_track_t *tr = &s->tracks[t];
        if (!tr->name)
            s_fail("%s has no name", "a track");
        s_check_bus(s, tr->output_bus, "a track's output");
        s_check_sends(s, tr->sends, tr->n_sends);
        s_check_auto(&tr->gain_auto, "a track's gain automation");
        s_check_auto(&tr->pan_auto, "a track's pan automation");
        if (tr->n_route < 0 || tr->n_route > SF_MAX_CHANNELS)
            s_fail("%s has a route of impossible length", "a track");
    }
    bool *seen = calloc(s->n_buses + 1, sizeof *seen);
    if (!seen)
        abort();
    for (size_t b = 0; b < s->n_buses; b++) {
        s_check_bus(s, s->buses[b].output_bus, "a bus's output");
        s_check_sends(s, s->buses[b].sends, s->buses[b].n_sends);
        size_t o = s->bus_order[b];
        if (o >= s->n_buses || seen[o])
            s_fail("%s is not a permutation of the buses", "bus_order");
        seen[o] = true;
    }
    free(seen);
    for (size_t k = 0; k < s->n_stems; k++) {
        const sf_stem_t *st = &s->stems[k];
        for (size_t i = 0; i < st->n_tracks; i++)
            if (st->tracks[i] >= s->n_tracks || (i && st->tracks[i] <= st->tracks[i - 1]))
                s_fail("%s: track indices out of range or not ascending", "a stem");
        for (size_t i = 0; i < st->n_buses; i++)
            if (st->buses[i] >= s->n_buses)
                s_fail("%s: bus index out of range", "a stem");
    }
    for (size_t m = 0; m < s->n_mixes; m++)
        if (s->n_stems && !s->mixes[m].stem_gain_db)
            s_fail("%s has no stem gains", "a mix");

    /* Every deliverable gets a name and a file name (or a clean refusal). */
    static const sf_target_kind_t kinds[] = {SF_TARGET_STEM, SF_TARGET_MIX, SF_TARGET_MULTITRACK, SF_TARGET_FULL_MIX};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        size_t n = sf_session_target_count(s, kinds[k]);
        for (size_t i = 0; i < n; i++) {
            sf_target_t t = {kinds[k], (uint32_t)i};
            if (!sf_session_target_name(s, t))
                s_fail("%s has no name", "a target");
            char name[512];
            sf_err_t err = {0};
            sf_rc rc = sf_session_target_filename(s, t, -1, name, sizeof name, &err);
            if (rc != SF_OK && rc != SF_E_INPUT)
                s_fail("file name of a target: %s", err.msg);
        }
    }
    char hex[65];
    sf_session_hash_hex(s, hex);
    if (strlen(hex) != 64)
        s_fail("%s: the hash is not 64 hex digits", "model");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n_bytes)
{
    sf_session_load_opts_t opts = sf_session_load_opts_default();
    opts.check_sources = false;
    opts.resample = false;
    sf_diags_t diags = SF_DIAGS_INIT;
    sf_err_t err = {0};
    sf_session_t *s = NULL;
    sf_rc rc = sf_session_load_text(S_PATH, (const char *)data, n_bytes, &opts, &s, &diags, &err);

    if (rc == SF_OK) {
        if (!s || diags.n_errors)
            s_fail("%s: SF_OK without a model, or with errors", "load");
        s_check_model(s);
    } else {
        if (s)
            s_fail("%s: a failed load returned a model", "load");
        if (rc == SF_E_INPUT && !diags.n_errors)
            s_fail("%s: SF_E_INPUT without a diagnostic", "load");
        if (rc != SF_E_INPUT && rc != SF_E_NOMEM)
            s_fail("load failed: %s", err.msg);
    }
    for (size_t i = 0; i < diags.n_items; i++)
        if (!diags.items[i].msg || !diags.items[i].msg[0] || strcmp(diags.items[i].file, S_PATH) != 0)
            s_fail("%s: a diagnostic without a message or with the wrong file", "load");

    sf_session_destroy(&s);
    sf_diags_free(&diags);
    return 0;
}
