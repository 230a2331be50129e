/* catalogue.h -- the catalogue of `stemfarm batch`: which sessions to
 * bounce, where each delivery goes, with which profile and priority
 * (docs/CATALOGUE-FORMAT.md).
 *
 *   version: 1
 *   sessions:
 *     - path: catalogue/1987            # a file, a folder (every .yaml in it) or a glob
 *       output: deliveries/{session}    # relative to ROOT (default: the catalogue's folder)
 *       profile: archive
 *       priority: 10
 *
 * Loading expands every entry into session files (relative paths against
 * the catalogue's folder; folders and globs sorted by name) and reports
 * every problem at once as file:line:col: unknown keys, a path that
 * matches nothing, a session listed twice, an unknown profile, a priority
 * out of range, an output template with an unknown {placeholder}.
 */
#ifndef CATALOGUE_H
#define CATALOGUE_H

#include "sf/error.h"

#include <stddef.h>
#include <stdint.h>

#define CATALOGUE_MAX_BYTES (4u << 20) /* a catalogue of thousands of entries fits */

typedef struct {
    char *session_path;    /* the session file, as the catalogue resolves it (owned) */
    const char *output;    /* the entry's output template ("{session}" by default) */
    const char *profile;   /* a profile name, or NULL: the session's own */
    int priority;          /* -100..100 */
    uint32_t line, column; /* of the entry's path, for messages */
} catalogue_item_t;

typedef struct {
    char *path; /* the catalogue file (owned) */
    char *dir;  /* its folder: the default ROOT and the base of relative paths (owned) */
    catalogue_item_t *items;
    size_t n_items;
    char **strings; /* owned copies the items point into */
    size_t n_strings;
} catalogue_t;

/* Loads and expands the catalogue at path. SF_OK and *out; SF_E_INPUT with
 * every problem in diags (*out NULL); SF_E_IO when it cannot be read;
 * SF_E_NOMEM. */
sf_rc catalogue_load(const char *path, catalogue_t **out, sf_diags_t *diags, sf_err_t *err);

void catalogue_destroy(catalogue_t **self_p);

/* The output folder of item for a session named `session_name`: the
 * template with {session} (the session's name) and {file} (the session
 * file's name without .yaml) filled in, under root. Names are used as
 * they are, except '/' which becomes '_' (a name is one folder). New
 * string (sf_free), or NULL when out of memory. */
char *catalogue_output_dir(const catalogue_item_t *item, const char *root, const char *session_name);

#endif
