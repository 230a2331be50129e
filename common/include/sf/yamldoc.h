/* sf/yamldoc.h -- small YAML files (configs, catalogues) as libyaml
 * documents, with every problem reported as file:line:col.
 *
 * The session loader has its own tree (it needs marks on every value and
 * profiles of its own); the smaller files users write go through here, so
 * that their errors read alike: "invalid YAML: ..." at libyaml's position,
 * "unknown key 'x' (expected a, b)", "'k' must be a list, not a mapping".
 */
#ifndef SF_YAMLDOC_H
#define SF_YAMLDOC_H

#include "sf/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

typedef struct {
    const char *file; /* names the text in messages (not owned) */
    sf_diags_t *diags;
    yaml_document_t doc;
    bool loaded; /* doc holds a document (sf_yamldoc_free deletes it) */
} sf_yamldoc_t;

/* Reads a whole file of at most max_bytes into *text (NUL-terminated,
 * sf_free). SF_E_IO "cannot open 'PATH': reason"; SF_E_INPUT when it is
 * larger ("'PATH' is larger than 1 MiB: not a WHAT"); SF_E_NOMEM. */
sf_rc sf_yamldoc_read_file(const char *path, size_t max_bytes, const char *what, char **text, size_t *n_bytes,
                           sf_err_t *err);

/* Parses text into y->doc. A syntax error is added to diags at libyaml's
 * position and the root is NULL; an empty document gives the root (a null
 * scalar) so the caller can say what it expected. SF_E_NOMEM only. */
sf_rc sf_yamldoc_parse(sf_yamldoc_t *y, const char *file, const char *text, size_t n_bytes, sf_diags_t *diags,
                       const yaml_node_t **root, sf_err_t *err);

void sf_yamldoc_free(sf_yamldoc_t *y);

/* An error at node `at` (NULL: no position). */
void sf_yamldoc_error(sf_yamldoc_t *y, const yaml_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

const yaml_node_t *sf_yamldoc_node(sf_yamldoc_t *y, int index);
bool sf_yamldoc_is_null(const yaml_node_t *n);
/* "empty", "a mapping", "a list" or "a value", for messages. */
const char *sf_yamldoc_kind(const yaml_node_t *n);
/* A scalar's text; "" for other nodes. */
const char *sf_yamldoc_text(const yaml_node_t *n);

/* Walks a mapping: for each key that is one of `keys` (NULL-terminated),
 * stores its value node in values[i] (NULL when absent); unknown and
 * duplicate keys are errors naming the expected ones, "in WHAT" when what
 * is not NULL ("unknown key 'x' in cache (expected dir, max_size)"). False,
 * and nothing reported, when map is not a mapping: the caller says what it
 * should have been. */
bool sf_yamldoc_fields(sf_yamldoc_t *y, const yaml_node_t *map, const char *what, const char *const *keys,
                       const yaml_node_t **values);

#endif
