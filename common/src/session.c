/* session.c -- the session loader: YAML text -> validated, immutable model.
 *
 * Three steps:
 *   1. libyaml's event API builds a small tree of our own (s_node_t), every
 *      node carrying its 1-based line:col, every byte allocated through
 *      sf_alloc so that failure injection reaches it. Aliases are refused:
 *      they would make the tree a graph.
 *   2. One walk over the tree fills sf_session_t, reporting every problem
 *      it meets to the diagnostics list and carrying on, so that a user sees
 *      all problems of a file at once. session.sample_rate is read before
 *      anything else because every time value needs it.
 *      Buses are read before tracks (their outputs and sends name buses),
 *      stems after tracks (their patterns name tracks), mixes after stems.
 *   3. Cross checks that need the whole model: track membership and the
 *      rest stem, `end: auto`, deliverable file names, routing cycles,
 *      bus_order and the buses each stem reaches; last, the effect tails
 *      that `end: auto` adds, once the model has no error.
 *
 * Sources and impulse responses at another rate are resampled
 * (sf_media_resampled) once per distinct file in a load; the model then
 * reads the copy, and every frame count in it is at the session rate.
 * Effect parameters are validated against sf_fx_param_specs.
 *
 * With a path map (opts.pathmap, sf/pathmap.h) the session path and every
 * absolute path the file names are mapped to this machine's view of the
 * shared storage before use; relative paths need no mapping of their own,
 * since they resolve under folders already mapped. With media roots, every
 * source and impulse response is checked (symlinks followed) before it is
 * opened, and then opened by its resolved path.
 *
 * Invariants of a returned model: see sf/session.h. A load that found any
 * error returns SF_E_INPUT and no model; an allocation failure anywhere
 * returns SF_E_NOMEM and frees everything.
 */

/* realpath(3) is XSI: glibc declares it only with _XOPEN_SOURCE. */
#define _XOPEN_SOURCE 700

#include "sf/session.h"

#include "sf/alloc.h"
#include "sf/hash.h"
#include "sf/media.h"
#include "sf/profile.h"
#include "sf/value.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sndfile.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#define S_MIN_RATE      8000
#define S_MAX_RATE      384000
#define S_NAME_MAX      255 /* longest file name most file systems take */
/* Times are only syntax-checked at this rate while the real one is unknown. */
#define S_FALLBACK_RATE 48000
#define S_MAX_DEPTH     64

/* ---- the YAML tree ---------------------------------------------------- */

typedef enum { S_SCALAR, S_LIST, S_MAP } s_kind_t;

typedef struct s_node {
    s_kind_t kind;
    sf_mark_t mark;       /* where the node starts */
    char *text;           /* S_SCALAR: the value (owned) */
    bool is_null;         /* S_SCALAR: plain "", "~" or "null" */
    struct s_node **kids; /* S_LIST: items; S_MAP: key, value, key, value, ... */
    size_t n_kids;
    size_t cap;
} s_node_t;

static void s_node_free(s_node_t *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n_kids; i++)
        s_node_free(n->kids[i]);
    sf_free(n->kids);
    sf_free(n->text);
    sf_free(n);
}

static size_t s_map_size(const s_node_t *map) { return map->n_kids / 2; }
static const s_node_t *s_map_key(const s_node_t *map, size_t i) { return map->kids[2 * i]; }
static const s_node_t *s_map_value(const s_node_t *map, size_t i) { return map->kids[2 * i + 1]; }

static const char *s_kind_name(s_kind_t k) { return k == S_MAP ? "a mapping" : k == S_LIST ? "a list" : "a value"; }

/* ---- loader state and diagnostics -------------------------------------- */

/* A source or impulse response resampled in this load: made once, shared
 * by every clip and convolve that reads it. */
typedef struct {
    char *src;        /* the resolved source path (owned) */
    char *copy;       /* its resampled copy (owned); NULL when that failed (reported) */
    int64_t n_frames; /* frames of the copy */
} s_copy_t;

/* Bus `from` feeds bus `to` (its output or a send). */
typedef struct {
    size_t from;
    size_t to;
    sf_mark_t mark; /* of the `output` or `to` value: where a cycle is reported */
} s_edge_t;

typedef struct {
    const char *file; /* the session path, as given: prefix of every message */
    sf_diags_t *diags;
    bool strict;
    bool check_sources;
    bool resample;            /* make resampled copies (only with check_sources) */
    sf_session_t *s;          /* the model being filled */
    int rate;                 /* session rate, or 0 while unknown or invalid */
    bool names_complete;      /* every track got a name (else pattern misses are not reported) */
    bool bus_names_complete;  /* every bus got a name (else unknown buses are not reported) */
    bool stem_names_complete; /* every stem got a name and tracks (else the same for stems) */
    size_t n_errors_before;   /* diags->n_errors when the load began */
    sf_rc rc;                 /* SF_E_NOMEM once an allocation failed */
    s_edge_t *edges;          /* owned: bus -> bus, for cycles and bus_order */
    size_t n_edges;
    size_t cap_edges;
    s_copy_t *copies; /* owned: resampled sources and impulse responses */
    size_t n_copies;
    size_t cap_copies;
    const struct s_node *profile; /* output.profile's value: where its violations are reported */
    /* this machine's view of shared storage (opts.pathmap), or NULL */
    const sf_pathmap_t *pathmap;
    /* session.media_root could not be mapped (reported): sources under it
     * are not looked for */
    bool media_root_bad;
    /* opts.media_lookup and its context: sources and impulse responses by name */
    sf_rc (*media_lookup)(void *ctx, const char *name, char **path, sf_err_t *err);
    void *media_lookup_ctx;
} s_ctx_t;

static sf_mark_t s_mark_of(yaml_mark_t m)
{
    /* libyaml counts from 0. */
    return (sf_mark_t){.line = (uint32_t)m.line + 1, .col = (uint32_t)m.column + 1};
}

static void s_vdiag(s_ctx_t *c, sf_diag_severity_t sev, sf_mark_t m, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    sf_diags_add(c->diags, sev, c->file, m.line, m.col, "%s", msg);
}

__attribute__((format(printf, 3, 4))) static void s_error(s_ctx_t *c, sf_mark_t m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vdiag(c, SF_DIAG_ERROR, m, fmt, ap);
    va_end(ap);
}

/* A warning, or an error in strict mode. */
__attribute__((format(printf, 3, 4))) static void s_warning(s_ctx_t *c, sf_mark_t m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vdiag(c, c->strict ? SF_DIAG_ERROR : SF_DIAG_WARNING, m, fmt, ap);
    va_end(ap);
}

static char *s_dup(s_ctx_t *c, const char *text)
{
    char *copy = sf_strdup(text);
    if (!copy)
        c->rc = SF_E_NOMEM;
    return copy;
}

/* ---- step 1: YAML events -> tree ------------------------------------- */

/* 1-based line of a byte offset (reader errors carry only the offset). */
static uint32_t s_line_of_offset(const char *yaml, size_t n_bytes, size_t offset)
{
    uint32_t line = 1;
    for (size_t i = 0; i < offset && i < n_bytes; i++)
        line += yaml[i] == '\n';
    return line;
}

static void s_report_parser_error(s_ctx_t *c, const yaml_parser_t *p, const char *yaml, size_t n_bytes)
{
    if (p->error == YAML_MEMORY_ERROR) {
        c->rc = SF_E_NOMEM;
        return;
    }
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_READER_ERROR) {
        sf_mark_t m = {s_line_of_offset(yaml, n_bytes, p->problem_offset), 1};
        s_error(c, m, "invalid YAML: %s", problem);
    } else if (p->context) {
        s_error(c, s_mark_of(p->problem_mark), "invalid YAML: %s (%s at line %u)", problem, p->context,
                (unsigned)p->context_mark.line + 1);
    } else {
        s_error(c, s_mark_of(p->problem_mark), "invalid YAML: %s", problem);
    }
}

static bool s_is_null_text(const char *t)
{
    return !*t || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") || !strcmp(t, "NULL");
}

/* A new node for the event; NULL with c->rc set, or with a diagnostic. */
static s_node_t *s_node_from_event(s_ctx_t *c, const yaml_event_t *ev)
{
    s_node_t *n = sf_calloc(1, sizeof *n);
    if (!n) {
        c->rc = SF_E_NOMEM;
        return NULL;
    }
    n->mark = s_mark_of(ev->start_mark);
    if (ev->type == YAML_SEQUENCE_START_EVENT) {
        n->kind = S_LIST;
    } else if (ev->type == YAML_MAPPING_START_EVENT) {
        n->kind = S_MAP;
    } else {
        const char *v = (const char *)ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        n->kind = S_SCALAR;
        if (memchr(v, '\0', len)) {
            s_error(c, n->mark, "value contains a NUL character");
            sf_free(n);
            return NULL;
        }
        n->text = sf_strndup(v, len);
        if (!n->text) {
            c->rc = SF_E_NOMEM;
            sf_free(n);
            return NULL;
        }
        n->is_null = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && s_is_null_text(n->text);
    }
    return n;
}

static bool s_node_append(s_ctx_t *c, s_node_t *parent, s_node_t *kid)
{
    if (parent->n_kids == parent->cap) {
        size_t cap = parent->cap ? 2 * parent->cap : 8;
        s_node_t **kids = sf_realloc(parent->kids, cap * sizeof *kids);
        if (!kids) {
            c->rc = SF_E_NOMEM;
            return false;
        }
        parent->kids = kids;
        parent->cap = cap;
    }
    parent->kids[parent->n_kids++] = kid;
    return true;
}

typedef struct {
    s_node_t **items; /* open lists and mappings, innermost last */
    size_t n_items;
    size_t cap;
} s_stack_t;

static bool s_stack_push(s_ctx_t *c, s_stack_t *st, s_node_t *n)
{
    if (st->n_items == st->cap) {
        size_t cap = st->cap ? 2 * st->cap : 16;
        s_node_t **items = sf_realloc(st->items, cap * sizeof *items);
        if (!items) {
            c->rc = SF_E_NOMEM;
            return false;
        }
        st->items = items;
        st->cap = cap;
    }
    st->items[st->n_items++] = n;
    return true;
}

/* Handles one event. Returns false to stop: on a problem (reported) or when
 * c->rc is set. *root receives the document's top node. */
static bool s_tree_event(s_ctx_t *c, const yaml_event_t *ev, s_stack_t *st, s_node_t **root, int *n_docs)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++*n_docs > 1) {
            s_error(c, s_mark_of(ev->start_mark), "the session file holds more than one YAML document");
            return false;
        }
        return true;
    case YAML_ALIAS_EVENT:
        s_error(c, s_mark_of(ev->start_mark), "not supported: YAML alias '*%s'", (const char *)ev->data.alias.anchor);
        return false;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: st->n_items--; return true;
    case YAML_SCALAR_EVENT:
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: break;
    default: return true;
    }
    s_node_t *n = s_node_from_event(c, ev);
    if (!n)
        return false;
    if (st->n_items == 0) {
        *root = n;
    } else if (!s_node_append(c, st->items[st->n_items - 1], n)) {
        s_node_free(n);
        return false;
    }
    if (n->kind == S_SCALAR)
        return true;
    /* The format nests a few levels; a limit keeps hostile input from
     * exhausting the stack of s_node_free. */
    if (st->n_items == S_MAX_DEPTH) {
        s_error(c, n->mark, "values nest deeper than %d levels", S_MAX_DEPTH);
        return false;
    }
    return s_stack_push(c, st, n);
}

/* Parses the YAML text into *root (NULL for an empty file). Problems go to
 * the diagnostics; c->rc is set on allocation failure. */
static void s_tree_parse(s_ctx_t *c, const char *yaml, size_t n_bytes, s_node_t **root)
{
    yaml_parser_t parser;
    s_stack_t st = {0};
    int n_docs = 0;
    *root = NULL;
    if (!yaml_parser_initialize(&parser)) {
        c->rc = SF_E_NOMEM;
        return;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, n_bytes);
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            s_report_parser_error(c, &parser, yaml, n_bytes);
            break;
        }
        bool go_on = s_tree_event(c, &ev, &st, root, &n_docs);
        bool end = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
        if (!go_on || end)
            break;
    }
    sf_free(st.items);
    yaml_parser_delete(&parser);
}

/* ---- step 2: tree -> model --------------------------------------------- */

/* Where a key lives, for messages: a section ("session": keys are shown as
 * 'session.end'), an element ("track 'Kick In'": 'gain_db' in track
 * 'Kick In'), or the top level (neither). */
typedef struct {
    const char *section;
    char item[320];
} s_where_t;

static s_where_t s_where_section(const char *section) { return (s_where_t){.section = section}; }

__attribute__((format(printf, 1, 2))) static s_where_t s_where_item(const char *fmt, ...)
{
    s_where_t w = {0};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w.item, sizeof w.item, fmt, ap);
    va_end(ap);
    return w;
}

/* "'session.end'", "'gain_db' in track 'Kick In'" or "'tracks'". */
static const char *s_subject(const s_where_t *w, const char *key, char *buf, size_t n)
{
    if (w->section)
        snprintf(buf, n, "'%s.%s'", w->section, key);
    else if (w->item[0])
        snprintf(buf, n, "'%s' in %s", key, w->item);
    else
        snprintf(buf, n, "'%s'", key);
    return buf;
}

/* " in 'session'", " in track 'Kick In'" or "". */
static const char *s_in(const s_where_t *w, char *buf, size_t n)
{
    if (w->section)
        snprintf(buf, n, " in '%s'", w->section);
    else if (w->item[0])
        snprintf(buf, n, " in %s", w->item);
    else
        buf[0] = '\0';
    return buf;
}

typedef struct {
    const char *key;
    const char *unsupported; /* NULL: supported; else why not, for the message */
} s_key_t;

/* Reports keys that are not names, duplicates, unknown and unsupported keys.
 * keys NULL: any name may be a key (stem names in a mix's gains_db). hint
 * (or NULL) ends the message of an unknown key: " (eq takes ...)". */
static void s_check_keys_hint(s_ctx_t *c, const s_node_t *map, const s_key_t *keys, size_t n_keys, const s_where_t *w,
                              const char *hint)
{
    char in[400];
    s_in(w, in, sizeof in);
    for (size_t i = 0; i < s_map_size(map); i++) {
        const s_node_t *k = s_map_key(map, i);
        if (k->kind != S_SCALAR) {
            s_error(c, k->mark, "keys must be names, not %s", s_kind_name(k->kind));
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++) {
            const s_node_t *prev = s_map_key(map, j);
            if (prev->kind == S_SCALAR && !strcmp(prev->text, k->text)) {
                s_error(c, k->mark, "duplicate key '%s'%s (first at line %u)", k->text, in, (unsigned)prev->mark.line);
                dup = true;
            }
        }
        if (dup || !keys)
            continue;
        size_t n = 0;
        while (n < n_keys && strcmp(keys[n].key, k->text))
            n++;
        if (n == n_keys)
            s_error(c, k->mark, "unknown key '%s'%s%s", k->text, in, hint ? hint : "");
        else if (keys[n].unsupported)
            s_error(c, k->mark, "not supported yet: '%s'%s (%s)", k->text, in, keys[n].unsupported);
    }
}

static void s_check_keys(s_ctx_t *c, const s_node_t *map, const s_key_t *keys, size_t n_keys, const s_where_t *w)
{
    s_check_keys_hint(c, map, keys, n_keys, w, NULL);
}

/* The key node of the first `key` (duplicates are reported by s_check_keys). */
static const s_node_t *s_get_key(const s_node_t *map, const char *key)
{
    for (size_t i = 0; i < s_map_size(map); i++) {
        const s_node_t *k = s_map_key(map, i);
        if (k->kind == S_SCALAR && !strcmp(k->text, key))
            return k;
    }
    return NULL;
}

/* The value of the first `key`. */
static const s_node_t *s_get(const s_node_t *map, const char *key)
{
    for (size_t i = 0; i < s_map_size(map); i++) {
        const s_node_t *k = s_map_key(map, i);
        if (k->kind == S_SCALAR && !strcmp(k->text, key))
            return s_map_value(map, i);
    }
    return NULL;
}

/* Checks that node is of `kind` (reports it if not). */
static bool s_expect(s_ctx_t *c, const s_node_t *node, s_kind_t kind, const char *subject)
{
    if (node->kind == kind)
        return true;
    s_error(c, node->mark, "%s must be %s, not %s", subject, s_kind_name(kind), s_kind_name(node->kind));
    return false;
}

/* The value at `key` if it is a non-null scalar. NULL when absent (reported
 * if `required`), null, or of the wrong kind (both reported). */
static const s_node_t *s_scalar(s_ctx_t *c, const s_node_t *map, const char *key, const s_where_t *w, bool required)
{
    char subject[400];
    const s_node_t *v = s_get(map, key);
    if (!v) {
        if (required) {
            char in[400];
            s_error(c, map->mark, "missing key '%s'%s", key, s_in(w, in, sizeof in));
        }
        return NULL;
    }
    if (!s_expect(c, v, S_SCALAR, s_subject(w, key, subject, sizeof subject)))
        return NULL;
    if (v->is_null) {
        s_error(c, v->mark, "%s has no value", subject);
        return NULL;
    }
    return v;
}

/* A container value at `key`: NULL when absent (reported if required) or of
 * the wrong kind (reported). An empty container is reported unless
 * `may_be_empty` (optional sections that a generator may write empty). */
static const s_node_t *s_container_opt(s_ctx_t *c, const s_node_t *map, const char *key, s_kind_t kind,
                                       const s_where_t *w, bool required, bool may_be_empty)
{
    char subject[400];
    const s_node_t *v = s_get(map, key);
    if (!v) {
        if (required) {
            char in[400];
            s_error(c, map->mark, "missing key '%s'%s", key, s_in(w, in, sizeof in));
        }
        return NULL;
    }
    if (!s_expect(c, v, kind, s_subject(w, key, subject, sizeof subject)))
        return NULL;
    if (v->n_kids == 0 && !may_be_empty) {
        s_error(c, v->mark, "%s must not be empty", subject);
        return NULL;
    }
    return v;
}

static const s_node_t *s_container(s_ctx_t *c, const s_node_t *map, const char *key, s_kind_t kind, const s_where_t *w,
                                   bool required)
{
    return s_container_opt(c, map, key, kind, w, required, false);
}

/* A name: a non-empty string. */
static const s_node_t *s_name(s_ctx_t *c, const s_node_t *map, const s_where_t *w, bool required)
{
    const s_node_t *v = s_scalar(c, map, "name", w, required);
    if (v && !v->text[0]) {
        char subject[400];
        s_error(c, v->mark, "%s must not be empty", s_subject(w, "name", subject, sizeof subject));
        return NULL;
    }
    return v;
}

/* Each value parser below reports a bad value at its node and returns false;
 * *out keeps its default then. */

static bool s_time(s_ctx_t *c, const s_node_t *v, int64_t *out)
{
    sf_err_t e = {0};
    int rate = c->rate ? c->rate : S_FALLBACK_RATE;
    if (sf_value_time(v->text, rate, false, out, &e)) {
        s_error(c, v->mark, "%s", e.msg);
        return false;
    }
    return true;
}

static bool s_level(s_ctx_t *c, const s_node_t *v, double *out)
{
    sf_err_t e = {0};
    if (sf_value_level_db(v->text, out, &e)) {
        s_error(c, v->mark, "%s", e.msg);
        return false;
    }
    return true;
}

static bool s_pan(s_ctx_t *c, const s_node_t *v, double *out)
{
    sf_err_t e = {0};
    if (sf_value_pan(v->text, out, &e)) {
        s_error(c, v->mark, "%s", e.msg);
        return false;
    }
    return true;
}

static bool s_bool(s_ctx_t *c, const s_node_t *v, bool *out)
{
    sf_err_t e = {0};
    if (sf_value_bool(v->text, out, &e)) {
        s_error(c, v->mark, "%s", e.msg);
        return false;
    }
    return true;
}

/* Index of v's text in names[] (NULL-terminated), or -1 (reported with
 * "invalid WHAT 'x' (expected EXPECTED)"). */
static int s_enum(s_ctx_t *c, const s_node_t *v, const char *const *names, const char *what, const char *expected)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(v->text, names[i]))
            return i;
    s_error(c, v->mark, "invalid %s '%s' (expected %s)", what, v->text, expected);
    return -1;
}

/* "mono" 1, "stereo" 2, "5.1" 6, "7.1" 8; 0 if bad (reported). */
static int s_channels(s_ctx_t *c, const s_node_t *v)
{
    for (int n = 1; n <= SF_MAX_CHANNELS; n++)
        if (sf_layout_name(n) && !strcmp(v->text, sf_layout_name(n)))
            return n;
    s_error(c, v->mark, "invalid channels '%s' (expected mono, stereo, 5.1 or 7.1)", v->text);
    return 0;
}

/* `master: bypass | apply` (output.master, a mix's master): true for apply. */
static bool s_master_mode(s_ctx_t *c, const s_node_t *v, const char *subject)
{
    if (!strcmp(v->text, "apply"))
        return true;
    if (strcmp(v->text, "bypass"))
        s_error(c, v->mark, "invalid value '%s' for %s (expected bypass or apply)", v->text, subject);
    return false;
}

/* Grows an array of `size`-byte items to hold n + 1 of them. */
static bool s_grow(s_ctx_t *c, void **items, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t bigger = *cap ? 2 * *cap : 8;
    void *p = sf_realloc(*items, bigger * size);
    if (!p) {
        c->rc = SF_E_NOMEM;
        return false;
    }
    *items = p;
    *cap = bigger;
    return true;
}

/* dir/rel, or rel when it is absolute; "./" prefixes are dropped. */
static char *s_join(s_ctx_t *c, const char *dir, const char *rel)
{
    if (rel[0] == '/')
        return s_dup(c, rel);
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2;
    if (!strcmp(rel, "."))
        rel = "";
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *path = sf_malloc(n);
    if (!path) {
        c->rc = SF_E_NOMEM;
        return NULL;
    }
    if (rel[0])
        snprintf(path, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", rel);
    else
        snprintf(path, n, "%s", dir);
    return path;
}

/* The path that v->text (a `what`: "source", "'session.media_root'")
 * names: mapped when absolute and there is a path map, else joined to dir
 * as s_join does. NULL when it cannot be mapped (reported at v) or out of
 * memory (c->rc). */
static char *s_resolve(s_ctx_t *c, const s_node_t *v, const char *dir, const char *what)
{
    /* With a media lookup this machine reads no path of the session's own:
     * the rest stays as written, for messages only. */
    if (!c->pathmap || c->media_lookup || !sf_pathmap_is_absolute(v->text))
        return s_join(c, dir, v->text);
    char *mapped;
    sf_err_t e = {0};
    sf_rc rc = sf_pathmap_apply(c->pathmap, v->text, &mapped, &e);
    if (rc == SF_E_NOMEM)
        c->rc = rc;
    else if (rc)
        s_error(c, v->mark, "cannot map %s: %s", what, e.msg); /* e.msg names the path */
    return rc ? NULL : mapped;
}

/* The file a `what` named v->text is read from: s_resolve's, or with a
 * media lookup the one it gives. NULL when there is none (reported at v) or
 * out of memory (c->rc). */
static char *s_media_path(s_ctx_t *c, const s_node_t *v, const char *what)
{
    if (!c->media_lookup)
        return s_resolve(c, v, c->s->media_root, what);
    char *path = NULL;
    sf_err_t e = {0};
    sf_rc rc = c->media_lookup(c->media_lookup_ctx, v->text, &path, &e);
    if (rc == SF_E_NOMEM)
        c->rc = rc;
    else if (rc)
        s_error(c, v->mark, "%s '%s' is not available on this machine: %s", what, v->text, e.msg);
    if (rc) {
        sf_free(path);
        return NULL;
    }
    return path;
}

/* "'A', 'B', 'C'" from names(i) for i < n (NULL names skipped), cut short
 * with ", ..." where it would not fit: the choices a message offers. */
static const char *s_name_list(const char *(*name_of)(const sf_session_t *, size_t), const sf_session_t *s, size_t n,
                               char *buf, size_t n_bytes)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *name = name_of(s, i);
        if (!name)
            continue;
        int k = snprintf(buf + len, n_bytes - len, "%s'%s'", len ? ", " : "", name);
        if (k < 0 || (size_t)k >= n_bytes - len - 5) {
            snprintf(buf + len, n_bytes - len, "%s...", len ? ", " : "");
            break;
        }
        len += (size_t)k;
    }
    return buf;
}

static const char *s_bus_name_of(const sf_session_t *s, size_t i) { return s->buses[i].name; }
static const char *s_stem_name_of(const sf_session_t *s, size_t i) { return s->stems[i].name; }

/* "version: 1", the only version there is. */
static void s_version(s_ctx_t *c, const s_node_t *root)
{
    static const s_where_t top = {0};
    const s_node_t *v = s_scalar(c, root, "version", &top, true);
    if (v && strcmp(v->text, "1"))
        s_error(c, v->mark, "unsupported version '%s' (this stemfarm reads version 1)", v->text);
}

/* The file name without folder and extension: the default session name. */
static char *s_default_name(s_ctx_t *c, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    char *name = sf_strndup(base, n);
    if (!name)
        c->rc = SF_E_NOMEM;
    return name;
}

typedef struct {
    const s_node_t *start; /* session.start, session.end as written (NULL: default) */
    const s_node_t *end;
} s_region_t;

static void s_session_section(s_ctx_t *c, const s_node_t *root, s_region_t *region)
{
    static const s_key_t keys[] = {
        {"name", NULL}, {"sample_rate", NULL},       {"media_root", NULL}, {"start", NULL},
        {"end", NULL},  {"tail_threshold_db", NULL}, {"segment", NULL},
    };
    sf_session_t *s = c->s;
    s_where_t w = s_where_section("session");
    const s_node_t *sec = s_get(root, "session");
    s->tail_threshold_db = -144.0;
    s->end_auto = true;
    if (!sec) {
        s_error(c, root->mark, "missing key 'session'");
        return;
    }
    if (!s_expect(c, sec, S_MAP, "'session'"))
        return;
    s_check_keys(c, sec, keys, sizeof keys / sizeof keys[0], &w);

    /* The rate first: every time below needs it. */
    const s_node_t *v = s_scalar(c, sec, "sample_rate", &w, true);
    int64_t rate;
    if (v) {
        sf_err_t e = {0};
        if (sf_value_int(v->text, S_MIN_RATE, S_MAX_RATE, &rate, &e))
            s_error(c, v->mark, "invalid sample rate '%s' (expected a whole number of Hz from %d to %d)", v->text,
                    S_MIN_RATE, S_MAX_RATE);
        else
            c->rate = s->sample_rate = (int)rate;
    }

    if ((v = s_name(c, sec, &w, false)))
        s->name = s_dup(c, v->text);
    if ((v = s_scalar(c, sec, "media_root", &w, false))) {
        if (!v->text[0])
            s_error(c, v->mark, "'session.media_root' must not be empty");
        else if (!(s->media_root = s_resolve(c, v, s->base_dir, "'session.media_root'")))
            c->media_root_bad = true;
    }
    if ((v = s_scalar(c, sec, "start", &w, false)) && s_time(c, v, &s->start))
        region->start = v;
    if ((v = s_scalar(c, sec, "end", &w, false))) {
        if (!strcmp(v->text, "auto")) {
            s->end_auto = true;
        } else if (s_time(c, v, &s->end)) {
            s->end_auto = false;
            region->end = v;
        }
    }
    if ((v = s_scalar(c, sec, "tail_threshold_db", &w, false))) {
        sf_err_t e = {0};
        if (sf_value_number(v->text, -400.0, 0.0, &s->tail_threshold_db, &e))
            s_error(c, v->mark, "%s", e.msg);
    }
    if ((v = s_scalar(c, sec, "segment", &w, false)) && s_time(c, v, &s->segment) && s->segment <= 0)
        s_error(c, v->mark, "'session.segment' must be greater than 0");
}

static void s_master_section(s_ctx_t *c, const s_node_t *root)
{
    static const s_key_t keys[] = {{"channels", NULL}, {"fx", NULL}};
    s_where_t w = s_where_section("master");
    const s_node_t *sec = s_get(root, "master");
    c->s->master_channels = 2;
    if (!sec || !s_expect(c, sec, S_MAP, "'master'"))
        return;
    s_check_keys(c, sec, keys, sizeof keys / sizeof keys[0], &w);
    const s_node_t *v = s_scalar(c, sec, "channels", &w, false);
    int n;
    if (v && (n = s_channels(c, v)))
        c->s->master_channels = n;
}

static const char *const s_format_names[] = {"wav", "rf64", "w64", "aiff", "flac", NULL};
static const char *const s_sample_format_names[] = {"pcm16", "pcm24", "pcm32", "float32", NULL};
static const char *const s_dither_names[] = {"auto", "tpdf", "none", NULL};
static const char *const s_placeholders[] = {"session", "stem", "index", "rate", "bits", NULL};

/* Placeholders of the output name template; true when it names each stem
 * apart ({stem} or {index}). */
static bool s_check_template(s_ctx_t *c, const s_node_t *v)
{
    bool distinct = false;
    for (const char *p = v->text; *p; p++) {
        if (*p != '{')
            continue;
        const char *close = strchr(p, '}');
        if (!close) {
            s_error(c, v->mark, "unclosed '{' in 'output.name'");
            return true;
        }
        size_t len = (size_t)(close - p - 1);
        int i = 0;
        while (s_placeholders[i] && !(strlen(s_placeholders[i]) == len && !strncmp(s_placeholders[i], p + 1, len)))
            i++;
        if (!s_placeholders[i])
            s_error(c, v->mark,
                    "unknown placeholder '%.*s' in 'output.name' "
                    "(expected {session}, {stem}, {index}, {rate} or {bits})",
                    (int)len + 2, p);
        else if (i == 1 || i == 2)
            distinct = true;
        p = close;
    }
    return distinct;
}

static int s_sndfile_format(sf_format_t f, sf_sample_format_t sample)
{
    static const int major[] = {SF_FORMAT_WAV, SF_FORMAT_RF64, SF_FORMAT_W64, SF_FORMAT_AIFF, SF_FORMAT_FLAC};
    static const int minor[] = {SF_FORMAT_PCM_16, SF_FORMAT_PCM_24, SF_FORMAT_PCM_32, SF_FORMAT_FLOAT};
    return major[f] | minor[sample];
}

/* Output section. *name_node receives the template node (for messages) and
 * *distinct whether the template tells stems apart. */
static void s_output_section(s_ctx_t *c, const s_node_t *root, const s_node_t **name_node, bool *distinct)
{
    static const s_key_t keys[] = {
        {"dir", NULL},     {"format", NULL},     {"sample_format", NULL}, {"dither", NULL},
        {"name", NULL},    {"bwf", NULL},        {"headroom_db", NULL},   {"headroom_policy", NULL},
        {"master", NULL},  {"interleave", NULL}, {"null_test", NULL},     {"clipping_policy", NULL},
        {"profile", NULL},
    };
    sf_output_t *o = &c->s->output;
    s_where_t w = s_where_section("output");
    const s_node_t *sec = s_get(root, "output");
    const char *dir = "bounces", *name = "{session}_{stem}";
    const s_node_t *v, *format_node = NULL, *sample_node = NULL, *dir_node = NULL;
    int i;
    o->format = SF_FILE_WAV;
    o->sample_format = SF_SAMPLE_PCM24;
    o->dither = SF_DITHER_AUTO;
    o->interleave = true;
    o->null_test = true;
    o->clipping_fail = true;
    *distinct = true;
    if (sec && s_expect(c, sec, S_MAP, "'output'")) {
        s_check_keys(c, sec, keys, sizeof keys / sizeof keys[0], &w);
        if ((v = s_scalar(c, sec, "dir", &w, false))) {
            if (v->text[0])
                dir = (dir_node = v)->text;
            else
                s_error(c, v->mark, "'output.dir' must not be empty");
        }
        if ((v = s_scalar(c, sec, "format", &w, false)) &&
            (i = s_enum(c, v, s_format_names, "format", "wav, rf64, w64, aiff or flac")) >= 0) {
            o->format = (sf_format_t)i;
            format_node = v;
        }
        if ((v = s_scalar(c, sec, "sample_format", &w, false)) &&
            (i = s_enum(c, v, s_sample_format_names, "sample format", "pcm16, pcm24, pcm32 or float32")) >= 0) {
            o->sample_format = (sf_sample_format_t)i;
            sample_node = v;
        }
        if ((v = s_scalar(c, sec, "dither", &w, false)) &&
            (i = s_enum(c, v, s_dither_names, "dither", "auto, tpdf or none")) >= 0)
            o->dither = (sf_dither_t)i;
        if ((v = s_name(c, sec, &w, false))) {
            name = v->text;
            *name_node = v;
            *distinct = s_check_template(c, v);
        }
        if ((v = s_scalar(c, sec, "bwf", &w, false)) && s_bool(c, v, &o->bwf) && o->bwf && o->format != SF_FILE_WAV &&
            o->format != SF_FILE_RF64)
            s_error(c, v->mark, "'output.bwf' needs format wav or rf64, not %s", sf_format_name(o->format));
        /* headroom_db: null means "no check", so it is read by hand. */
        if ((v = s_get(sec, "headroom_db")) && s_expect(c, v, S_SCALAR, "'output.headroom_db'") && !v->is_null) {
            sf_err_t e = {0};
            if (sf_value_number(v->text, -400.0, 400.0, &o->headroom_db, &e))
                s_error(c, v->mark, "%s", e.msg);
            else
                o->headroom_check = true;
        }
        static const char *const policies[] = {"warn", "fail", NULL};
        if ((v = s_scalar(c, sec, "headroom_policy", &w, false)))
            o->headroom_fail = s_enum(c, v, policies, "headroom policy", "warn or fail") == 1;
        if ((v = s_scalar(c, sec, "clipping_policy", &w, false)))
            o->clipping_fail = s_enum(c, v, policies, "clipping policy", "warn or fail") != 0;
        if ((v = s_scalar(c, sec, "master", &w, false)))
            o->master_apply = s_master_mode(c, v, "'output.master'");
        if ((v = s_scalar(c, sec, "interleave", &w, false)))
            s_bool(c, v, &o->interleave);
        if ((v = s_scalar(c, sec, "null_test", &w, false)))
            s_bool(c, v, &o->null_test);
        if ((v = s_scalar(c, sec, "profile", &w, false))) {
            if (sf_profile_parse(v->text, &o->profile))
                c->profile = v;
            else
                s_error(c, v->mark, "unknown profile '%s' (expected %s)", v->text, sf_profile_names());
        }
    }
    o->dir = dir_node ? s_resolve(c, dir_node, c->s->base_dir, "'output.dir'") : s_join(c, c->s->base_dir, dir);
    o->name_template = s_dup(c, name);

    SF_INFO info = {.samplerate = c->rate ? c->rate : S_FALLBACK_RATE,
                    .channels = c->s->master_channels,
                    .format = s_sndfile_format(o->format, o->sample_format)};
    if (!sf_format_check(&info)) {
        const s_node_t *at = sample_node ? sample_node : format_node;
        s_error(c, at ? at->mark : root->mark, "output format '%s' cannot hold '%s' samples", sf_format_name(o->format),
                sf_sample_format_name(o->sample_format));
    }
}

/* ---- routing: bus references, sends, automation ------------------------- */

/* Index of the bus named `name`, or -1. */
static int s_find_bus(const sf_session_t *s, const char *name)
{
    for (size_t i = 0; i < s->n_buses; i++)
        if (s->buses[i].name && !strcmp(s->buses[i].name, name))
            return (int)i;
    return -1;
}

/* The bus that v names, for `owner` ("track 'Kick'"): its index, or
 * SF_MASTER_BUS for "master" when `master_ok`. False when v names no bus
 * (reported, unless some bus has no name and the name may be that one's). */
static bool s_bus_ref(s_ctx_t *c, const s_node_t *v, const char *owner, bool master_ok, int *out)
{
    if (master_ok && !strcmp(v->text, "master")) {
        *out = SF_MASTER_BUS;
        return true;
    }
    int b = s_find_bus(c->s, v->text);
    if (b >= 0) {
        *out = b;
        return true;
    }
    if (!strcmp(v->text, "master")) {
        s_error(c, v->mark,
                "a send cannot go to 'master' in %s (sends feed buses; "
                "the master is fed through 'output')",
                owner);
    } else if (c->bus_names_complete) {
        char list[600];
        if (c->s->n_buses)
            s_error(c, v->mark, "unknown bus '%s' in %s (buses: %s)", v->text, owner,
                    s_name_list(s_bus_name_of, c->s, c->s->n_buses, list, sizeof list));
        else
            s_error(c, v->mark, "unknown bus '%s' in %s (the session has no buses)", v->text, owner);
    }
    return false;
}

/* Records that bus `from` feeds bus `to`, for the cycle check and bus_order. */
static void s_edge(s_ctx_t *c, size_t from, size_t to, sf_mark_t mark)
{
    if (!s_grow(c, (void **)&c->edges, &c->cap_edges, c->n_edges, sizeof *c->edges))
        return;
    c->edges[c->n_edges++] = (s_edge_t){.from = from, .to = to, .mark = mark};
}

/* Breakpoints `key: [[time, value], ...]` from the automation mapping `map`
 * of `owner`: times non-decreasing, values levels (or pans when `pan`). */
static void s_automation(s_ctx_t *c, const s_node_t *map, const char *key, const char *owner, bool pan,
                         sf_automation_t *a)
{
    s_where_t w = s_where_item("automation of %s", owner);
    const s_node_t *list = s_container(c, map, key, S_LIST, &w, false);
    size_t prev = SIZE_MAX; /* the last point read well */
    if (!list)
        return;
    a->mark = list->mark;
    a->frames = sf_calloc(list->n_kids, sizeof *a->frames);
    a->values = sf_calloc(list->n_kids, sizeof *a->values);
    if (!a->frames || !a->values) {
        c->rc = SF_E_NOMEM;
        return;
    }
    a->n_points = list->n_kids;
    for (size_t i = 0; i < list->n_kids; i++) {
        const s_node_t *p = list->kids[i];
        if (p->kind != S_LIST || p->n_kids != 2 || p->kids[0]->kind != S_SCALAR || p->kids[1]->kind != S_SCALAR ||
            p->kids[0]->is_null || p->kids[1]->is_null) {
            s_error(c, p->mark, "automation '%s' of %s: point %zu must be [time, value]", key, owner, i + 1);
            continue;
        }
        bool ok = s_time(c, p->kids[0], &a->frames[i]);
        ok = (pan ? s_pan(c, p->kids[1], &a->values[i]) : s_level(c, p->kids[1], &a->values[i])) && ok;
        if (!ok)
            continue;
        if (prev != SIZE_MAX && a->frames[i] < a->frames[prev])
            s_error(c, p->kids[0]->mark, "automation '%s' of %s: point %zu (%s) is before point %zu (%s)", key, owner,
                    i + 1, p->kids[0]->text, prev + 1, list->kids[prev]->kids[0]->text);
        prev = i;
    }
}

/* A warning where a constant is replaced by its automation everywhere. */
static void s_overridden(s_ctx_t *c, const s_node_t *map, const char *key, const char *owner, const sf_automation_t *a)
{
    const s_node_t *k = s_get_key(map, key);
    if (k && a->n_points)
        s_warning(c, k->mark, "'%s' of %s is overridden by its automation", key, owner);
}

/* `sends:` of a track (self_bus -1) or of bus self_bus. */
static void s_sends(s_ctx_t *c, const s_node_t *map, const s_where_t *w, int self_bus, sf_send_t **sends,
                    size_t *n_sends)
{
    static const s_key_t keys[] = {{"to", NULL}, {"level_db", NULL}, {"pre_fader", NULL}, {"automation", NULL}};
    static const s_key_t auto_keys[] = {{"level_db", NULL}};
    const s_node_t *list = s_container_opt(c, map, "sends", S_LIST, w, false, true);
    if (!list || !list->n_kids)
        return;
    if (!(*sends = sf_calloc(list->n_kids, sizeof **sends))) {
        c->rc = SF_E_NOMEM;
        return;
    }
    *n_sends = list->n_kids;
    for (size_t i = 0; i < list->n_kids && !c->rc; i++) {
        const s_node_t *item = list->kids[i], *v;
        sf_send_t *send = &(*sends)[i];
        s_where_t sw = s_where_item("send %zu of %s", i + 1, w->item);
        send->bus = -1;
        send->mark = item->mark;
        if (!s_expect(c, item, S_MAP, sw.item))
            continue;
        s_check_keys(c, item, keys, sizeof keys / sizeof keys[0], &sw);
        if ((v = s_scalar(c, item, "to", &sw, true)) && s_bus_ref(c, v, w->item, false, &send->bus)) {
            if (send->bus == self_bus)
                s_error(c, v->mark, "%s sends to itself", w->item);
            else if (self_bus >= 0)
                s_edge(c, (size_t)self_bus, (size_t)send->bus, v->mark);
        }
        if ((v = s_scalar(c, item, "level_db", &sw, false)))
            s_level(c, v, &send->level_db);
        if ((v = s_scalar(c, item, "pre_fader", &sw, false)))
            s_bool(c, v, &send->pre_fader);
        const s_node_t *am = s_container_opt(c, item, "automation", S_MAP, &sw, false, true);
        if (am) {
            s_where_t aw = s_where_item("automation of %s", sw.item);
            s_check_keys(c, am, auto_keys, sizeof auto_keys / sizeof auto_keys[0], &aw);
            s_automation(c, am, "level_db", sw.item, false, &send->level_auto);
            s_overridden(c, item, "level_db", sw.item, &send->level_auto);
        }
    }
}

/* ---- media files: sources and impulse responses ------------------------- */

/* The lowercase strerror text (git prints it as is; our messages are lowercase). */
static void s_errno_text(int errnum, char *buf, size_t n)
{
    snprintf(buf, n, "%s", strerror(errnum));
    buf[0] = (char)tolower((unsigned char)buf[0]);
}

/* With media roots, checks that *path (the `what` written v->text) resolves
 * under one and replaces it with the resolved path, so that what is opened
 * is what was checked. A path that does not resolve passes: s_probe then
 * says why it cannot be opened. False when outside (reported at v) or out
 * of memory (c->rc). */
static bool s_check_root(s_ctx_t *c, const s_node_t *v, char **path, const char *what)
{
    if (!sf_pathmap_n_roots(c->pathmap))
        return true;
    char *real;
    sf_err_t e = {0};
    sf_rc rc = sf_pathmap_check_root(c->pathmap, *path, &real, &e);
    if (rc == SF_E_IO)
        return true;
    if (rc == SF_E_NOMEM)
        c->rc = rc;
    else if (rc)
        s_error(c, v->mark, "%s '%s' is not readable on this machine: %s", what, v->text, e.msg);
    if (rc)
        return false;
    sf_free(*path);
    *path = real;
    return true;
}

/* True when a relative `what` (v->text) cannot be looked for because
 * session.media_root could not be mapped (already reported). */
static bool s_under_bad_root(const s_ctx_t *c, const s_node_t *v)
{
    return c->media_root_bad && !sf_pathmap_is_absolute(v->text); /* only a path map makes it bad */
}

/* Opens the media file at `path`, written v->text in the session and used
 * as a `what` ("source", "impulse response"), far enough to read its header
 * into *info. False when it cannot be used (reported at v). */
static bool s_probe(s_ctx_t *c, const s_node_t *v, const char *path, const char *what, sf_media_info_t *info)
{
    struct stat st;
    char reason[256];
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            s_error(c, v->mark, "%s '%s' not found at '%s'", what, v->text, path);
        } else {
            s_errno_text(errno, reason, sizeof reason);
            s_error(c, v->mark, "cannot open %s '%s': %s", what, v->text, reason);
        }
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        s_error(c, v->mark, "%s '%s' is not a file", what, v->text);
        return false;
    }
    if (st.st_size == 0) {
        s_error(c, v->mark, "%s '%s' is empty (0 bytes)", what, v->text);
        return false;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        s_errno_text(errno, reason, sizeof reason);
        s_error(c, v->mark, "cannot open %s '%s': %s", what, v->text, reason);
        return false;
    }
    fclose(f);

    sf_err_t e = {0};
    sf_rc rc = sf_media_probe(path, info, &e);
    if (rc == SF_E_NOMEM) {
        c->rc = rc;
        return false;
    }
    if (rc == SF_E_INPUT) {
        s_error(c, v->mark, "%s '%s' has no audio frames", what, v->text);
        return false;
    }
    if (rc) {
        s_error(c, v->mark, "cannot read %s '%s' (not an audio file libsndfile can read)", what, v->text);
        return false;
    }
    return true;
}

/* The copy of the file at `path` (a `what` at `rate` Hz, written v->text in
 * the session) resampled to the session rate, made once per distinct file
 * in a load: its path (owned by the load) and *n_frames. NULL when it cannot
 * be made: reported at `mark` for the first user of that file only, or out
 * of memory (c->rc). */
static const char *s_copy_of(s_ctx_t *c, const s_node_t *v, const char *path, const char *what, int rate,
                             sf_mark_t mark, int64_t *n_frames)
{
    s_copy_t *copy = NULL;
    for (size_t i = 0; i < c->n_copies && !copy; i++)
        if (!strcmp(c->copies[i].src, path))
            copy = &c->copies[i];
    if (!copy) {
        if (!s_grow(c, (void **)&c->copies, &c->cap_copies, c->n_copies, sizeof *c->copies))
            return NULL;
        copy = &c->copies[c->n_copies];
        *copy = (s_copy_t){.src = s_dup(c, path)};
        if (!copy->src)
            return NULL;
        c->n_copies++;
        char *made = NULL;
        sf_err_t e = {0};
        /* The cache is read like the sources: it must lie under a media
         * root too (checked where it is, or where it will be made). */
        struct stat st;
        const char *cache = stat(c->s->cache_dir, &st) == 0 ? c->s->cache_dir : c->s->base_dir;
        sf_rc rc = sf_pathmap_n_roots(c->pathmap) ? sf_pathmap_check_root(c->pathmap, cache, NULL, &e) : SF_OK;
        if (rc && rc != SF_E_NOMEM) {
            s_error(c, mark, "cannot resample %s '%s' from %d Hz to %d Hz: the cache folder '%s' is not usable: %s",
                    what, v->text, rate, c->rate, c->s->cache_dir, e.msg);
            return NULL;
        }
        if (rc == SF_OK)
            rc = sf_media_resampled(path, c->rate, c->s->cache_dir, &made, &e);
        if (rc == SF_E_NOMEM) {
            c->rc = rc;
            return NULL;
        }
        if (rc) {
            s_error(c, mark, "cannot resample %s '%s' from %d Hz to %d Hz: %s", what, v->text, rate, c->rate, e.msg);
            return NULL;
        }
        sf_media_info_t info;
        rc = sf_media_probe(made, &info, &e);
        if (rc == SF_E_NOMEM) {
            sf_free(made);
            c->rc = rc;
            return NULL;
        }
        if (rc) {
            s_error(c, mark, "cannot read the resampled copy of %s '%s': %s", what, v->text, e.msg);
            sf_free(made);
            return NULL;
        }
        copy->copy = made;
        copy->n_frames = info.frames;
    }
    *n_frames = copy->n_frames;
    return copy->copy;
}

/* ---- insert effects ------------------------------------------------------ */

/* The names, ranges and defaults of every numeric parameter come from
 * sf_fx_param_specs, so the loader, the DSP and the documentation agree.
 * The keys that are not numbers (eq `type`, convolve `ir`) are read here. */

static const char *const s_eq_type_names[] = {"peak",     "lowshelf", "highshelf", "lowpass",
                                              "highpass", "bandpass", "notch",     NULL};

/* The field of p that parameter `key` of p->kind fills; NULL when there is
 * none (the table and this loader disagree). */
static double *s_fx_field(sf_fx_params_t *p, const char *key)
{
    const struct {
        sf_fx_kind_t kind;
        const char *key;
        double *field;
    } fields[] = {
        {SF_FX_GAIN, "db", &p->u.gain.db},
        {SF_FX_EQ, "freq", &p->u.eq.freq},
        {SF_FX_EQ, "gain_db", &p->u.eq.gain_db},
        {SF_FX_EQ, "q", &p->u.eq.q},
        {SF_FX_COMPRESSOR, "threshold_db", &p->u.compressor.threshold_db},
        {SF_FX_COMPRESSOR, "ratio", &p->u.compressor.ratio},
        {SF_FX_COMPRESSOR, "attack_ms", &p->u.compressor.attack_ms},
        {SF_FX_COMPRESSOR, "release_ms", &p->u.compressor.release_ms},
        {SF_FX_COMPRESSOR, "knee_db", &p->u.compressor.knee_db},
        {SF_FX_COMPRESSOR, "makeup_db", &p->u.compressor.makeup_db},
        {SF_FX_LIMITER, "ceiling_db", &p->u.limiter.ceiling_db},
        {SF_FX_LIMITER, "release_ms", &p->u.limiter.release_ms},
        {SF_FX_LIMITER, "lookahead_ms", &p->u.limiter.lookahead_ms},
        {SF_FX_DELAY, "time_ms", &p->u.delay.time_ms},
        {SF_FX_DELAY, "feedback", &p->u.delay.feedback},
        {SF_FX_DELAY, "mix", &p->u.delay.mix},
        {SF_FX_REVERB, "decay_s", &p->u.reverb.decay_s},
        {SF_FX_REVERB, "predelay_ms", &p->u.reverb.predelay_ms},
        {SF_FX_REVERB, "damping", &p->u.reverb.damping},
        {SF_FX_REVERB, "mix", &p->u.reverb.mix},
        {SF_FX_CONVOLVE, "mix", &p->u.convolve.mix},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i].kind == p->kind && !strcmp(fields[i].key, key))
            return fields[i].field;
    return NULL;
}

/* The key an effect takes besides its numbers, or NULL. */
static const char *s_fx_text_key(const char *effect)
{
    if (!strcmp(effect, "eq"))
        return "type";
    if (!strcmp(effect, "convolve"))
        return "ir";
    return NULL;
}

/* The table's first row for `effect`, or NULL for an unknown effect. */
static const sf_fx_param_spec_t *s_fx_spec(const char *effect)
{
    size_t n;
    const sf_fx_param_spec_t *specs = sf_fx_param_specs(&n);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(specs[i].effect, effect))
            return &specs[i];
    return NULL;
}

/* "gain, eq, highpass, ..., convolve": every effect name, in table order. */
static const char *s_fx_names(char *buf, size_t n_bytes)
{
    size_t n, len = 0;
    const sf_fx_param_spec_t *specs = sf_fx_param_specs(&n);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++)
        if (s_fx_spec(specs[i].effect) == &specs[i] && len < n_bytes)
            len += (size_t)snprintf(buf + len, n_bytes - len, "%s%s", len ? ", " : "", specs[i].effect);
    return buf;
}

/* A numeric parameter into *out: a number (dB keys also take -inf, which no
 * range admits, so that the message is about the range), inside the range
 * of its row. False when it is not (reported; *out keeps the default). */
static bool s_fx_number(s_ctx_t *c, const s_node_t *v, const sf_fx_param_spec_t *row, const char *owner, double *out)
{
    size_t len = strlen(row->key);
    bool db = len >= 2 && !strcmp(row->key + len - 2, "db");
    double x;
    if (db ? sf_value_level_db(v->text, &x, NULL) : sf_value_number(v->text, -HUGE_VAL, HUGE_VAL, &x, NULL)) {
        s_error(c, v->mark, "invalid number '%s' for %s '%s' in %s", v->text, row->effect, row->key, owner);
        return false;
    }
    if (row->hi_exclusive && x >= row->hi) {
        /* Only a delay's feedback has an open end, and that is why. */
        bool endless = row->kind == SF_FX_DELAY && !strcmp(row->key, "feedback");
        s_error(c, v->mark, "%s '%s' %s is out of range in %s: must be below %g%s", row->effect, row->key, v->text,
                owner, row->hi, endless ? " (the tail would never end)" : "");
        return false;
    }
    if (row->hi_exclusive && x < row->lo) {
        s_error(c, v->mark, "%s '%s' %s is out of range in %s: must be at least %g and below %g", row->effect, row->key,
                v->text, owner, row->lo, row->hi);
        return false;
    }
    if (x < row->lo || x > row->hi) {
        s_error(c, v->mark, "%s '%s' %s is out of range %g..%g in %s", row->effect, row->key, v->text, row->lo, row->hi,
                owner);
        return false;
    }
    *out = x;
    return true;
}

/* convolve's `ir`: resolved like a source. When sources are checked it must
 * be readable, mono or (where the chain runs on two channels) stereo, and
 * it is resampled to the session rate like a source. */
static void s_ir(s_ctx_t *c, const s_node_t *v, const char *owner, int n_channels, sf_insert_t *ins)
{
    if (!v->text[0]) {
        s_error(c, v->mark, "'ir' in convolve of %s must not be empty", owner);
        return;
    }
    if (!(ins->ir_name = s_dup(c, v->text)))
        return;
    if (!(ins->ir_path = s_media_path(c, v, "impulse response")) || !c->check_sources || s_under_bad_root(c, v))
        return;
    sf_media_info_t info;
    if (!s_check_root(c, v, &ins->ir_path, "impulse response") ||
        !s_probe(c, v, ins->ir_path, "impulse response", &info))
        return;
    if (info.channels > 2) {
        s_error(c, v->mark, "impulse response '%s' has %d channels (expected mono or stereo)", v->text, info.channels);
        return;
    }
    if (info.channels == 2 && n_channels && n_channels != 2) {
        s_error(c, v->mark, "impulse response '%s' is stereo and %s is %s (expected a mono impulse response)", v->text,
                owner, sf_layout_name(n_channels));
        return;
    }
    if (!c->rate || info.sample_rate == c->rate)
        return;
    if (!c->resample) {
        s_error(c, v->mark, "impulse response '%s' is %d Hz, the session is %d Hz (and resampling is off)", v->text,
                info.sample_rate, c->rate);
        return;
    }
    int64_t n_frames;
    const char *copy = s_copy_of(c, v, ins->ir_path, "impulse response", info.sample_rate, v->mark, &n_frames);
    char *path = copy ? s_dup(c, copy) : NULL;
    if (!path)
        return;
    sf_free(ins->ir_path);
    ins->ir_path = path;
}

/* The keys `effect` takes into keys[] (at most cap), and the hint that an
 * unknown key's message ends with: " (eq takes type, freq, gain_db, q)". */
static size_t s_fx_keys(const char *effect, s_key_t *keys, size_t cap, char *hint, size_t n_hint)
{
    size_t n_specs, n_keys = 0, len;
    const sf_fx_param_spec_t *specs = sf_fx_param_specs(&n_specs);
    const char *text_key = s_fx_text_key(effect);
    if (text_key)
        keys[n_keys++] = (s_key_t){text_key, NULL};
    for (size_t i = 0; i < n_specs && n_keys < cap; i++)
        if (!strcmp(specs[i].effect, effect))
            keys[n_keys++] = (s_key_t){specs[i].key, NULL};
    len = (size_t)snprintf(hint, n_hint, " (%s takes", effect);
    for (size_t i = 0; i < n_keys && len < n_hint; i++)
        len += (size_t)snprintf(hint + len, n_hint - len, "%s %s", i ? "," : "", keys[i].key);
    if (len < n_hint)
        snprintf(hint + len, n_hint - len, ")");
    return n_keys;
}

/* An eq's `type`, its frequency against the rate (v_freq: the frequency as
 * written, when it was read well) and a gain that its type ignores. */
static void s_eq_checks(s_ctx_t *c, const s_node_t *params, const s_where_t *w, const char *effect, const char *owner,
                        const s_node_t *v_freq, sf_insert_t *ins)
{
    const s_node_t *v;
    int i;
    if (params && (v = s_scalar(c, params, "type", w, false)) &&
        (i = s_enum(c, v, s_eq_type_names, "eq type",
                    "peak, lowshelf, highshelf, lowpass, highpass, bandpass or notch")) >= 0)
        ins->params.u.eq.type = (sf_eq_type_t)i;
    /* The table's range cannot know the rate; at or above Nyquist the
     * cookbook's w0 = 2 pi f / rate wraps past pi. */
    if (c->rate && v_freq && ins->params.u.eq.freq >= c->rate / 2.0)
        s_error(c, v_freq->mark, "%s 'freq' %s in %s must be below half the sample rate (%g Hz)", effect, v_freq->text,
                owner, c->rate / 2.0);
    sf_eq_type_t type = ins->params.u.eq.type;
    const s_node_t *k = params ? s_get_key(params, "gain_db") : NULL;
    if (k && type != SF_EQ_PEAK && type != SF_EQ_LOWSHELF && type != SF_EQ_HIGHSHELF)
        s_warning(c, k->mark, "'gain_db' in %s does nothing for type '%s' (only peak and shelves use it)", w->item,
                  s_eq_type_names[type]);
}

/* The effect's parameters (`params` NULL: none given, all defaults) once
 * ins->params.kind is set; `name` is the effect's name as written. */
static void s_fx_params(s_ctx_t *c, const s_node_t *params, const s_node_t *name, const char *owner, int n_channels,
                        sf_insert_t *ins)
{
    const char *effect = name->text;
    s_where_t w = s_where_item("%s of %.300s", effect, owner);
    s_key_t keys[16];
    char hint[200];
    size_t n_specs, n_keys = s_fx_keys(effect, keys, sizeof keys / sizeof keys[0], hint, sizeof hint);
    const sf_fx_param_spec_t *specs = sf_fx_param_specs(&n_specs);
    if (params)
        s_check_keys_hint(c, params, keys, n_keys, &w, hint);

    const s_node_t *v, *v_freq = NULL;
    for (size_t i = 0; i < n_specs; i++) {
        const sf_fx_param_spec_t *row = &specs[i];
        double *field = strcmp(row->effect, effect) ? NULL : s_fx_field(&ins->params, row->key);
        if (!field)
            continue;
        *field = row->def;
        v = params ? s_scalar(c, params, row->key, &w, row->required) : NULL;
        if (!params && row->required)
            s_error(c, name->mark, "missing key '%s' in %s", row->key, w.item);
        if (v && s_fx_number(c, v, row, owner, field) && !strcmp(row->key, "freq"))
            v_freq = v;
    }
    if (ins->params.kind == SF_FX_EQ)
        s_eq_checks(c, params, &w, effect, owner, v_freq, ins);
    if (ins->params.kind == SF_FX_CONVOLVE) {
        if (!params)
            s_error(c, name->mark, "missing key 'ir' in %s", w.item);
        else if ((v = s_scalar(c, params, "ir", &w, true)))
            s_ir(c, v, owner, n_channels, ins);
        ins->params.u.convolve.ir_path = ins->ir_path;
    }
}

/* One entry of an `fx:` list, `- EFFECT: {KEY: VALUE, ...}`, at `index`.
 * owner names where it is inserted ("track 'Kick'", "the master"),
 * n_channels its channels (0: unknown). */
static void s_insert(s_ctx_t *c, const s_node_t *item, size_t index, const char *owner, int n_channels,
                     sf_insert_t *ins)
{
    ins->mark = item->mark;
    if (item->kind != S_MAP) {
        s_error(c, item->mark, "insert %zu of %s must be a mapping like '- gain: {db: -3}', not %s", index + 1, owner,
                s_kind_name(item->kind));
        return;
    }
    if (s_map_size(item) != 1) {
        /* Mostly parameters indented like the effect's name instead of under it. */
        if (s_map_size(item) == 0)
            s_error(c, item->mark, "insert %zu of %s is empty (expected one effect, like '- gain: {db: -3}')",
                    index + 1, owner);
        else
            s_error(c, item->mark,
                    "insert %zu of %s has %zu keys (expected one, the effect, with its parameters "
                    "under it: '- eq: {freq: 3000}')",
                    index + 1, owner, s_map_size(item));
        return;
    }
    const s_node_t *name = s_map_key(item, 0), *params = s_map_value(item, 0);
    if (name->kind != S_SCALAR) {
        s_error(c, name->mark, "keys must be names, not %s", s_kind_name(name->kind));
        return;
    }
    const sf_fx_param_spec_t *spec = s_fx_spec(name->text);
    if (!spec) {
        char names[256];
        s_error(c, name->mark, "unknown effect '%s' in %s (effects: %s)", name->text, owner,
                s_fx_names(names, sizeof names));
        return;
    }
    ins->params.kind = spec->kind;
    if (!strcmp(name->text, "highpass"))
        ins->params.u.eq.type = SF_EQ_HIGHPASS;
    else if (!strcmp(name->text, "lowpass"))
        ins->params.u.eq.type = SF_EQ_LOWPASS;
    /* `- reverb:` and `- reverb: {}` both mean: every default. */
    if (params->kind == S_SCALAR && params->is_null) {
        params = NULL;
    } else if (params->kind != S_MAP) {
        s_error(c, params->mark, "parameters of %s in %s must be a mapping, not %s", name->text, owner,
                s_kind_name(params->kind));
        return;
    }
    s_fx_params(c, params, name, owner, n_channels, ins);
}

/* `fx:` of a track, a bus or the master (map), the insert chain in order. */
static void s_fx_chain(s_ctx_t *c, const s_node_t *map, const s_where_t *w, const char *owner, int n_channels,
                       sf_insert_t **fx, size_t *n_fx)
{
    const s_node_t *list = s_container_opt(c, map, "fx", S_LIST, w, false, true);
    if (!list || !list->n_kids)
        return;
    if (!(*fx = sf_calloc(list->n_kids, sizeof **fx))) {
        c->rc = SF_E_NOMEM;
        return;
    }
    *n_fx = list->n_kids;
    for (size_t i = 0; i < list->n_kids && !c->rc; i++)
        s_insert(c, list->kids[i], i, owner, n_channels, &(*fx)[i]);
}

/* `master: {fx: [...]}`; s_master_section reported a malformed `master`. */
static void s_master_fx(s_ctx_t *c, const s_node_t *root)
{
    s_where_t w = s_where_section("master");
    const s_node_t *sec = s_get(root, "master");
    if (sec && sec->kind == S_MAP)
        s_fx_chain(c, sec, &w, "the master", c->s->master_channels, &c->s->master_fx, &c->s->n_master_fx);
}

/* ---- buses --------------------------------------------------------------- */

/* First pass: the names, so that outputs and sends can name any bus. */
static void s_bus_name(s_ctx_t *c, const s_node_t *map, size_t index, const s_node_t **name_nodes)
{
    sf_bus_t *bus = &c->s->buses[index];
    s_where_t w = s_where_item("bus %zu", index + 1);
    const s_node_t *v = s_name(c, map, &w, true);
    if (!v) {
        c->bus_names_complete = false;
        return;
    }
    name_nodes[index] = v;
    if (!strcmp(v->text, "master"))
        s_error(c, v->mark, "bus name 'master' is taken (it names the master bus)");
    for (size_t j = 0; j < index; j++)
        if (name_nodes[j] && !strcmp(name_nodes[j]->text, v->text)) {
            s_error(c, v->mark, "duplicate bus name '%s' (first at line %u)", v->text,
                    (unsigned)name_nodes[j]->mark.line);
            break;
        }
    bus->name = s_dup(c, v->text);
}

static void s_bus(s_ctx_t *c, const s_node_t *map, size_t index, const s_node_t *name_node)
{
    static const s_key_t keys[] = {
        {"name", NULL}, {"channels", NULL}, {"output", NULL}, {"gain_db", NULL}, {"sends", NULL}, {"fx", NULL},
    };
    sf_bus_t *bus = &c->s->buses[index];
    s_where_t w = name_node ? s_where_item("bus '%.256s'", name_node->text) : s_where_item("bus %zu", index + 1);
    const s_node_t *v;
    int n;
    s_check_keys(c, map, keys, sizeof keys / sizeof keys[0], &w);
    if ((v = s_scalar(c, map, "channels", &w, false)) && (n = s_channels(c, v)))
        bus->n_channels = n;
    if ((v = s_scalar(c, map, "output", &w, false)) && s_bus_ref(c, v, w.item, true, &bus->output_bus)) {
        if (bus->output_bus == (int)index)
            s_error(c, v->mark, "%s outputs to itself", w.item);
        else if (bus->output_bus >= 0)
            s_edge(c, index, (size_t)bus->output_bus, v->mark);
    }
    if ((v = s_scalar(c, map, "gain_db", &w, false)))
        s_level(c, v, &bus->gain_db);
    s_sends(c, map, &w, (int)index, &bus->sends, &bus->n_sends);
    s_fx_chain(c, map, &w, w.item, bus->n_channels, &bus->fx, &bus->n_fx);
}

static void s_buses(s_ctx_t *c, const s_node_t *root)
{
    static const s_where_t top = {0};
    sf_session_t *s = c->s;
    const s_node_t *list = s_container_opt(c, root, "buses", S_LIST, &top, false, true);
    const s_node_t **name_nodes = NULL;
    if (!list) {
        /* A malformed `buses:` leaves every name unknown. */
        c->bus_names_complete = !s_get(root, "buses");
        return;
    }
    if (!list->n_kids)
        return;
    s->buses = sf_calloc(list->n_kids, sizeof *s->buses);
    name_nodes = sf_calloc(list->n_kids, sizeof *name_nodes);
    if (!s->buses || !name_nodes) {
        c->rc = SF_E_NOMEM;
        goto out_free_names;
    }
    s->n_buses = list->n_kids;
    for (size_t i = 0; i < s->n_buses; i++) {
        s->buses[i].mark = list->kids[i]->mark;
        s->buses[i].n_channels = 2;
        s->buses[i].output_bus = SF_MASTER_BUS;
    }
    for (size_t i = 0; i < s->n_buses && !c->rc; i++) {
        char subject[64];
        snprintf(subject, sizeof subject, "bus %zu", i + 1);
        if (s_expect(c, list->kids[i], S_MAP, subject))
            s_bus_name(c, list->kids[i], i, name_nodes);
        else
            c->bus_names_complete = false;
    }
    for (size_t i = 0; i < s->n_buses && !c->rc; i++)
        if (list->kids[i]->kind == S_MAP)
            s_bus(c, list->kids[i], i, name_nodes[i]);
out_free_names:
    sf_free(name_nodes);
}

/* ---- sources and clips --------------------------------------------------- */

/* Points the clip at the resampled copy of its source. False when that
 * failed (reported at the clip, for the first clip of that source only). */
static bool s_resample(s_ctx_t *c, const s_node_t *v, sf_clip_t *clip)
{
    int64_t n_frames;
    const char *copy = s_copy_of(c, v, clip->path, "source", clip->source_rate, clip->mark, &n_frames);
    if (!copy)
        return false;
    char *path = s_dup(c, copy);
    if (!path)
        return false;
    clip->original_path = clip->path;
    clip->path = path;
    clip->source_frames = n_frames;
    return true;
}

/* Resolves the clip's source and, when sources are checked, opens it;
 * v_channel is the clip's `channel:` (NULL: none). Returns false when the
 * source is unusable (reported at v). */
static bool s_source(s_ctx_t *c, const s_node_t *v, const s_node_t *v_channel, sf_clip_t *clip)
{
    if (!(clip->source = s_dup(c, v->text)))
        return false;
    clip->path = s_media_path(c, v, "source");
    if (!clip->path)
        return false;
    if (!v->text[0]) {
        s_error(c, v->mark, "source must not be empty");
        return false;
    }
    if (!c->check_sources)
        return true;
    if (s_under_bad_root(c, v))
        return false;

    sf_media_info_t info;
    if (!s_check_root(c, v, &clip->path, "source") || !s_probe(c, v, clip->path, "source", &info))
        return false;
    bool ok = true;
    if (info.channels < 1 || info.channels > SF_MAX_CHANNELS) {
        s_error(c, v->mark, "source '%s' has %d channels (at most %d are supported)", v->text, info.channels,
                SF_MAX_CHANNELS);
        ok = false;
    } else if (v_channel && clip->channel >= info.channels) {
        s_error(c, v_channel->mark, "channel %d of source '%s' does not exist (it has %d channel%s)", clip->channel + 1,
                v->text, info.channels, info.channels == 1 ? "" : "s");
        ok = false;
    } else if (!v_channel && info.channels > 2) {
        s_error(c, v->mark,
                "source '%s' has %d channels; pick one with 'channel: N' "
                "(tracks are mono or stereo)",
                v->text, info.channels);
        ok = false;
    }
    if (!ok)
        return false; /* channels stay unknown: no follow-up messages about them */
    clip->source_channels = info.channels;
    clip->source_frames = info.frames;
    clip->source_rate = info.sample_rate;
    if (!c->rate || info.sample_rate == c->rate)
        return true;
    if (!c->resample) {
        s_error(c, v->mark, "source '%s' is %d Hz, the session is %d Hz (and resampling is off)", v->text,
                info.sample_rate, c->rate);
        return false;
    }
    return s_resample(c, v, clip);
}

/* `channel: N` (1-based) into clip->channel (0-based). */
static bool s_channel_pick(s_ctx_t *c, const s_node_t *v, sf_clip_t *clip)
{
    int64_t n;
    if (sf_value_int(v->text, 1, INT_MAX, &n, NULL)) {
        s_error(c, v->mark, "invalid channel '%s' (expected a channel number, counting from 1)", v->text);
        return false;
    }
    clip->channel = (int)n - 1;
    return true;
}

/* A fade: a time, or {length: TIME, shape: linear | equal_power}. Returns
 * its node when it was read well (for messages), else NULL. */
static const s_node_t *s_fade(s_ctx_t *c, const s_node_t *map, const char *key, const s_where_t *w, sf_fade_t *fade)
{
    static const s_key_t keys[] = {{"length", NULL}, {"shape", NULL}};
    static const char *const shapes[] = {"linear", "equal_power", NULL};
    char subject[400];
    const s_node_t *v = s_get(map, key);
    if (!v)
        return NULL;
    if (v->kind == S_LIST) {
        s_error(c, v->mark, "%s must be a time or a mapping, not a list", s_subject(w, key, subject, sizeof subject));
        return NULL;
    }
    if (v->kind == S_SCALAR) {
        v = s_scalar(c, map, key, w, false);
        return v && s_time(c, v, &fade->length) ? v : NULL;
    }
    s_where_t fw = s_where_item("'%s' of %s", key, w->item);
    s_check_keys(c, v, keys, sizeof keys / sizeof keys[0], &fw);
    const s_node_t *len = s_scalar(c, v, "length", &fw, true), *shape;
    int i;
    bool ok = len && s_time(c, len, &fade->length);
    if ((shape = s_scalar(c, v, "shape", &fw, false))) {
        if ((i = s_enum(c, shape, shapes, "fade shape", "linear or equal_power")) >= 0)
            fade->shape = (sf_fade_shape_t)i;
        else
            ok = false;
    }
    return ok ? v : NULL;
}

/* Fades and crossfade inside the clip, once its length is known. */
static void s_clip_fit(s_ctx_t *c, const s_where_t *w, const sf_clip_t *clip, const s_node_t *v_in,
                       const s_node_t *v_out, const s_node_t *v_cross)
{
    int64_t in = v_in ? clip->fade_in.length : 0, out = v_out ? clip->fade_out.length : 0;
    if (in > clip->length - out) {
        if (in && out) {
            const s_node_t *later = v_in->mark.line > v_out->mark.line ||
                                            (v_in->mark.line == v_out->mark.line && v_in->mark.col > v_out->mark.col)
                                        ? v_in
                                        : v_out;
            s_error(c, later->mark,
                    "'fade_in' and 'fade_out' in %s do not fit in the clip "
                    "(%lld + %lld frames, the clip has %lld)",
                    w->item, (long long)in, (long long)out, (long long)clip->length);
        } else {
            s_error(c, (in ? v_in : v_out)->mark, "'%s' in %s is longer than the clip (%lld frames, the clip has %lld)",
                    in ? "fade_in" : "fade_out", w->item, (long long)(in ? in : out), (long long)clip->length);
        }
    }
    if (v_cross && clip->crossfade > clip->length)
        s_error(c, v_cross->mark, "'crossfade' in %s is longer than the clip (%lld frames, the clip has %lld)", w->item,
                (long long)clip->crossfade, (long long)clip->length);
}

/* The clip must end on the timeline: at + length fits in 64 bits. */
static void s_clip_end_fits(s_ctx_t *c, const s_where_t *w, const sf_clip_t *clip, const s_node_t *v_at)
{
    char subject[400];
    if (v_at && clip->at > INT64_MAX - clip->length)
        s_error(c, v_at->mark, "%s (%s) is too large", s_subject(w, "at", subject, sizeof subject), v_at->text);
}

/* Fills a clip from a `clips` entry, or from the `source:` shorthand when
 * map is NULL (v_source is then the shorthand's value and v_channel the
 * track's `channel:`). */
static void s_clip(s_ctx_t *c, const s_node_t *map, const s_node_t *v_source, const s_node_t *v_channel,
                   const s_where_t *w, sf_clip_t *clip)
{
    static const s_key_t keys[] = {
        {"source", NULL},  {"at", NULL},      {"offset", NULL},   {"length", NULL},    {"gain_db", NULL},
        {"channel", NULL}, {"fade_in", NULL}, {"fade_out", NULL}, {"crossfade", NULL},
    };
    const s_node_t *v_at = NULL, *v_offset = NULL, *v_length = NULL, *v;
    const s_node_t *v_in = NULL, *v_out = NULL, *v_cross = NULL;
    char subject[400];
    clip->mark = v_source ? v_source->mark : map->mark;
    clip->channel = -1;
    if (map) {
        s_check_keys(c, map, keys, sizeof keys / sizeof keys[0], w);
        v_source = s_scalar(c, map, "source", w, true);
        v_channel = s_scalar(c, map, "channel", w, false);
        if ((v = s_scalar(c, map, "at", w, false)) && s_time(c, v, &clip->at))
            v_at = v;
        if ((v = s_scalar(c, map, "offset", w, false)) && s_time(c, v, &clip->offset))
            v_offset = v;
        if ((v = s_scalar(c, map, "length", w, false)) && s_time(c, v, &clip->length))
            v_length = v;
        if ((v = s_scalar(c, map, "gain_db", w, false)))
            s_level(c, v, &clip->gain_db);
        v_in = s_fade(c, map, "fade_in", w, &clip->fade_in);
        v_out = s_fade(c, map, "fade_out", w, &clip->fade_out);
        if ((v = s_scalar(c, map, "crossfade", w, false)) && s_time(c, v, &clip->crossfade))
            v_cross = v;
    }
    /* A bad pick is reported; v_channel stays set so that the source is not
     * also reported as needing one. */
    bool channel_bad = v_channel && !s_channel_pick(c, v_channel, clip);
    if (v_length && clip->length == 0)
        s_error(c, v_length->mark, "%s must be greater than 0", s_subject(w, "length", subject, sizeof subject));
    if (!v_source)
        return;
    bool usable = s_source(c, v_source, v_channel, clip);
    if (channel_bad)
        clip->source_channels = 0; /* what it delivers is unknown */
    /* Frame counts mean nothing while the session rate is unknown. */
    if (!c->rate)
        return;
    if (!usable || !c->check_sources) {
        if (v_length && clip->length > 0) {
            s_clip_end_fits(c, w, clip, v_at);
            s_clip_fit(c, w, clip, v_in, v_out, v_cross);
        }
        return;
    }

    int64_t n = clip->source_frames;
    if (clip->offset >= n) {
        s_error(c, v_offset ? v_offset->mark : clip->mark, "offset '%s' is past the end of source '%s' (%lld frames)",
                v_offset ? v_offset->text : "0", v_source->text, (long long)n);
        return;
    }
    if (!v_length)
        clip->length = n - clip->offset;
    else if (clip->length > n - clip->offset)
        s_error(c, v_length->mark,
                "clip runs past the end of source '%s' (offset + length is %lld frames, "
                "the source has %lld)",
                v_source->text, (long long)(clip->offset + clip->length), (long long)n);
    s_clip_end_fits(c, w, clip, v_at);
    if (clip->length > 0)
        s_clip_fit(c, w, clip, v_in, v_out, v_cross);
}

/* Channels a clip delivers: 1 with a channel pick, else the file's (0: unknown). */
static int s_clip_channels(const sf_clip_t *clip) { return clip->channel >= 0 ? 1 : clip->source_channels; }

static void s_track_clips(s_ctx_t *c, const s_node_t *map, const s_where_t *w, sf_track_t *t)
{
    char subject[400];
    const s_node_t *v_source = s_get(map, "source");
    const s_node_t *v_clips = s_get(map, "clips");
    const s_node_t *v_channel = s_get(map, "channel");
    if (v_source && v_clips) {
        s_error(c, s_get_key(map, "clips")->mark, "%s has both 'source' and 'clips' (use one)", w->item);
        return;
    }
    if (!v_source && !v_clips) {
        s_error(c, map->mark, "%s has neither 'source' nor 'clips'", w->item);
        return;
    }
    if (v_source) {
        if (!(v_source = s_scalar(c, map, "source", w, true)))
            return;
        if (v_channel)
            v_channel = s_scalar(c, map, "channel", w, false);
        if (!(t->clips = sf_calloc(1, sizeof *t->clips))) {
            c->rc = SF_E_NOMEM;
            return;
        }
        t->n_clips = 1;
        s_clip(c, NULL, v_source, v_channel, w, &t->clips[0]);
        t->n_channels = s_clip_channels(&t->clips[0]);
        return;
    }
    if (v_channel)
        s_error(c, s_get_key(map, "channel")->mark,
                "'channel' in %s goes with 'source' (with 'clips', give it per clip)", w->item);
    if (!(v_clips = s_container(c, map, "clips", S_LIST, w, true)))
        return;
    if (!(t->clips = sf_calloc(v_clips->n_kids, sizeof *t->clips))) {
        c->rc = SF_E_NOMEM;
        return;
    }
    t->n_clips = v_clips->n_kids;
    for (size_t i = 0; i < t->n_clips; i++)
        t->clips[i].channel = -1;
    size_t first = 0; /* the clip that set t->n_channels */
    for (size_t i = 0; i < t->n_clips && !c->rc; i++) {
        const s_node_t *item = v_clips->kids[i];
        s_where_t cw = s_where_item("clip %zu of %s", i + 1, w->item);
        snprintf(subject, sizeof subject, "clip %zu of %s", i + 1, w->item);
        if (!s_expect(c, item, S_MAP, subject))
            continue;
        sf_clip_t *clip = &t->clips[i];
        s_clip(c, item, NULL, NULL, &cw, clip);
        int n = s_clip_channels(clip);
        if (!n)
            continue;
        if (!t->n_channels) {
            t->n_channels = n;
            first = i;
        } else if (n != t->n_channels) {
            s_error(c, clip->mark,
                    "clip %zu of %s has %d channels, clip %zu has %d "
                    "(all clips of a track need the same channel count)",
                    i + 1, w->item, n, first + 1, t->n_channels);
        }
    }
}

/* `route: [C]`: the channels of the output bus's layout a mono track feeds.
 * output_known: the output bus was resolved. */
static void s_route(s_ctx_t *c, const s_node_t *map, const s_where_t *w, sf_track_t *t, bool output_known)
{
    const s_node_t *list = s_container(c, map, "route", S_LIST, w, false);
    if (!list)
        return;
    if (t->n_channels > 1) {
        s_error(c, list->mark,
                "'route' in %s needs a mono track (its clips deliver %d channels; "
                "pick one with 'channel: N')",
                w->item, t->n_channels);
        return;
    }
    if (!output_known)
        return;
    const sf_session_t *s = c->s;
    int n_out = t->output_bus == SF_MASTER_BUS ? s->master_channels : s->buses[t->output_bus].n_channels;
    const char *const *labels = sf_layout_labels(n_out);
    char layout[400], in_layout[SF_MAX_CHANNELS * 5] = "";
    for (int i = 0; i < n_out; i++)
        snprintf(in_layout + strlen(in_layout), sizeof in_layout - strlen(in_layout), "%s%s", i ? ", " : "", labels[i]);
    if (t->output_bus == SF_MASTER_BUS)
        snprintf(layout, sizeof layout, "the %s master has %s", sf_layout_name(n_out), in_layout);
    else
        snprintf(layout, sizeof layout, "the %s bus '%.256s' has %s", sf_layout_name(n_out),
                 s->buses[t->output_bus].name, in_layout);
    bool ok = true;
    int route[SF_MAX_CHANNELS];
    int n_route = 0;
    for (size_t i = 0; i < list->n_kids; i++) {
        const s_node_t *v = list->kids[i];
        char subject[400];
        snprintf(subject, sizeof subject, "channel %zu of 'route' in %s", i + 1, w->item);
        if (!s_expect(c, v, S_SCALAR, subject)) {
            ok = false;
            continue;
        }
        int ch = 0;
        while (ch < n_out && strcmp(labels[ch], v->text))
            ch++;
        if (ch == n_out) {
            s_error(c, v->mark, "unknown channel '%s' in 'route' of %s (%s)", v->text, w->item, layout);
            ok = false;
            continue;
        }
        bool twice = false;
        for (int j = 0; j < n_route && !twice; j++)
            twice = route[j] == ch;
        if (twice) {
            s_error(c, v->mark, "channel '%s' appears twice in 'route' of %s", v->text, w->item);
            ok = false;
            continue;
        }
        route[n_route++] = ch;
    }
    if (!ok)
        return;
    memcpy(t->route, route, sizeof route);
    t->n_route = n_route;
    const s_node_t *k = s_get_key(map, "pan");
    if (k)
        s_warning(c, k->mark, "'pan' of %s is overridden by its route", w->item);
    if (t->pan_auto.n_points)
        s_warning(c, t->pan_auto.mark, "'pan' automation of %s is overridden by its route", w->item);
}

static void s_track(s_ctx_t *c, const s_node_t *map, size_t index, const s_node_t **name_nodes)
{
    static const s_key_t keys[] = {
        {"name", NULL},  {"source", NULL},     {"clips", NULL}, {"channel", NULL}, {"gain_db", NULL},
        {"pan", NULL},   {"polarity", NULL},   {"mute", NULL},  {"output", NULL},  {"route", NULL},
        {"sends", NULL}, {"automation", NULL}, {"fx", NULL},
    };
    static const s_key_t auto_keys[] = {{"gain_db", NULL}, {"pan", NULL}};
    sf_track_t *t = &c->s->tracks[index];
    s_where_t w = s_where_item("track %zu", index + 1);
    const s_node_t *v;
    t->mark = map->mark;

    if ((v = s_name(c, map, &w, true))) {
        for (size_t j = 0; j < index; j++)
            if (name_nodes[j] && !strcmp(name_nodes[j]->text, v->text)) {
                s_error(c, v->mark, "duplicate track name '%s' (first at line %u)", v->text,
                        (unsigned)name_nodes[j]->mark.line);
                break;
            }
        name_nodes[index] = v;
        if (!(t->name = s_dup(c, v->text)))
            return;
        w = s_where_item("track '%.256s'", v->text);
    } else {
        c->names_complete = false;
    }
    s_check_keys(c, map, keys, sizeof keys / sizeof keys[0], &w);

    if ((v = s_scalar(c, map, "gain_db", &w, false)))
        s_level(c, v, &t->gain_db);
    if ((v = s_scalar(c, map, "pan", &w, false)))
        s_pan(c, v, &t->pan);
    if ((v = s_scalar(c, map, "polarity", &w, false))) {
        static const char *const polarities[] = {"normal", "invert", NULL};
        t->invert = s_enum(c, v, polarities, "polarity", "normal or invert") == 1;
    }
    if ((v = s_scalar(c, map, "mute", &w, false)))
        s_bool(c, v, &t->mute);
    bool output_known = true;
    if ((v = s_scalar(c, map, "output", &w, false)))
        output_known = s_bus_ref(c, v, w.item, true, &t->output_bus);
    else if (s_get(map, "output"))
        output_known = false;
    s_sends(c, map, &w, -1, &t->sends, &t->n_sends);
    const s_node_t *am = s_container_opt(c, map, "automation", S_MAP, &w, false, true);
    if (am && !c->rc) {
        s_where_t aw = s_where_item("automation of %s", w.item);
        s_check_keys(c, am, auto_keys, sizeof auto_keys / sizeof auto_keys[0], &aw);
        s_automation(c, am, "gain_db", w.item, false, &t->gain_auto);
        if (!c->rc)
            s_automation(c, am, "pan", w.item, true, &t->pan_auto);
        s_overridden(c, map, "gain_db", w.item, &t->gain_auto);
        if (!s_get(map, "route"))
            s_overridden(c, map, "pan", w.item, &t->pan_auto);
    }
    if (c->rc)
        return;
    s_track_clips(c, map, &w, t);
    /* After the clips: a convolve needs the track's channel count. */
    if (!c->rc)
        s_fx_chain(c, map, &w, w.item, t->n_channels, &t->fx, &t->n_fx);
    if (!c->rc)
        s_route(c, map, &w, t, output_known);
}

static void s_tracks(s_ctx_t *c, const s_node_t *root)
{
    static const s_where_t top = {0};
    const s_node_t *list = s_container(c, root, "tracks", S_LIST, &top, true);
    const s_node_t **name_nodes = NULL;
    if (!list) {
        c->names_complete = false;
        return;
    }
    c->s->tracks = sf_calloc(list->n_kids, sizeof *c->s->tracks);
    name_nodes = sf_calloc(list->n_kids, sizeof *name_nodes);
    if (!c->s->tracks || !name_nodes) {
        c->rc = SF_E_NOMEM;
        goto out_free_names;
    }
    c->s->n_tracks = list->n_kids;
    for (size_t i = 0; i < list->n_kids; i++)
        c->s->tracks[i].output_bus = SF_MASTER_BUS;
    for (size_t i = 0; i < list->n_kids && !c->rc; i++) {
        char subject[64];
        snprintf(subject, sizeof subject, "track %zu", i + 1);
        if (s_expect(c, list->kids[i], S_MAP, subject))
            s_track(c, list->kids[i], i, name_nodes);
        else
            c->names_complete = false;
    }
out_free_names:
    sf_free(name_nodes);
}

/* ---- stems ---------------------------------------------------------------- */

static bool s_has_wildcard(const char *pattern) { return strpbrk(pattern, "*?") != NULL; }

/* Resolves one stem's patterns into ascending track indices; counts each
 * track's stems in n_stems_of[]. An exact name that matches nothing is a
 * typo (error); a glob may legitimately match nothing in a session made
 * from a template (warning), and a stem that matches nothing at all is
 * reported once, as a whole. */
static void s_stem_tracks(s_ctx_t *c, const s_node_t *patterns, const s_where_t *w, sf_stem_t *stem, size_t *n_stems_of)
{
    sf_session_t *s = c->s;
    bool *member = sf_calloc(s->n_tracks, sizeof *member);
    bool *missed = sf_calloc(patterns->n_kids, sizeof *missed);
    bool problems = false;
    if (!member || !missed) {
        c->rc = SF_E_NOMEM;
        goto out_free;
    }
    for (size_t i = 0; i < patterns->n_kids; i++) {
        const s_node_t *p = patterns->kids[i];
        char subject[400];
        snprintf(subject, sizeof subject, "pattern %zu in %s", i + 1, w->item);
        if (!s_expect(c, p, S_SCALAR, subject)) {
            problems = true;
            continue;
        }
        bool any = false;
        for (size_t t = 0; t < s->n_tracks; t++)
            if (s->tracks[t].name && sf_value_glob_match(p->text, s->tracks[t].name))
                any = member[t] = true;
        if (any || !c->names_complete)
            continue;
        if (s_has_wildcard(p->text)) {
            missed[i] = true;
        } else {
            s_error(c, p->mark, "unknown track '%s' in %s", p->text, w->item);
            problems = true;
        }
    }
    for (size_t t = 0; t < s->n_tracks; t++)
        stem->n_tracks += member[t];
    if (stem->n_tracks == 0 && !problems && c->names_complete)
        s_warning(c, stem->mark, "%s matches no track", w->item);
    else
        for (size_t i = 0; i < patterns->n_kids; i++)
            if (missed[i])
                s_warning(c, patterns->kids[i]->mark, "pattern '%s' in %s matches no track", patterns->kids[i]->text,
                          w->item);
    stem->tracks = sf_calloc(stem->n_tracks, sizeof *stem->tracks);
    if (!stem->tracks) {
        c->rc = SF_E_NOMEM;
        goto out_free;
    }
    for (size_t t = 0, k = 0; t < s->n_tracks; t++)
        if (member[t]) {
            stem->tracks[k++] = t;
            n_stems_of[t]++;
        }
out_free:
    sf_free(member);
    sf_free(missed);
}

/* One stem. *rest_node receives the node of `rest: true` when it says so. */
static void s_stem(s_ctx_t *c, const s_node_t *map, size_t index, const s_node_t **name_nodes, size_t *n_stems_of,
                   const s_node_t **rest_node)
{
    static const s_key_t keys[] = {{"name", NULL}, {"tracks", NULL}, {"channels", NULL}, {"rest", NULL}};
    sf_stem_t *stem = &c->s->stems[index];
    s_where_t w = s_where_item("stem %zu", index + 1);
    const s_node_t *v;
    stem->mark = map->mark;
    stem->n_channels = c->s->master_channels;

    if ((v = s_name(c, map, &w, true))) {
        for (size_t j = 0; j < index; j++)
            if (name_nodes[j] && !strcmp(name_nodes[j]->text, v->text)) {
                s_error(c, v->mark, "duplicate stem name '%s' (first at line %u)", v->text,
                        (unsigned)name_nodes[j]->mark.line);
                break;
            }
        name_nodes[index] = v;
        if (!(stem->name = s_dup(c, v->text)))
            return;
        w = s_where_item("stem '%.256s'", v->text);
    }
    s_check_keys(c, map, keys, sizeof keys / sizeof keys[0], &w);
    int n;
    if ((v = s_scalar(c, map, "channels", &w, false)) && (n = s_channels(c, v)))
        stem->n_channels = n;
    /* A bad `rest:` leaves open whether `tracks` is missing. */
    bool tracks_required = !s_get(map, "rest");
    if ((v = s_scalar(c, map, "rest", &w, false)) && s_bool(c, v, &stem->rest)) {
        tracks_required = !stem->rest;
        if (stem->rest)
            *rest_node = v;
    }
    if (stem->rest && s_get(map, "tracks")) {
        s_error(c, s_get_key(map, "tracks")->mark,
                "%s has both 'rest: true' and 'tracks' (the rest stem gets every track "
                "no other stem claims)",
                w.item);
        stem->rest = false;
        return;
    }
    if (!stem->rest && (v = s_container(c, map, "tracks", S_LIST, &w, tracks_required)))
        s_stem_tracks(c, v, &w, stem, n_stems_of);
}

/* Every track in exactly one stem, or the stems do not sum to the mix. */
static void s_check_membership(s_ctx_t *c, const size_t *n_stems_of)
{
    sf_session_t *s = c->s;
    for (size_t t = 0; t < s->n_tracks; t++) {
        const sf_track_t *tr = &s->tracks[t];
        if (!tr->name || n_stems_of[t] == 1)
            continue;
        if (n_stems_of[t] == 0) {
            s_warning(c, tr->mark, "track '%s' is in no stem", tr->name);
            continue;
        }
        char list[512] = "";
        size_t len = 0, k = 0;
        for (size_t i = 0; i < s->n_stems; i++) {
            const sf_stem_t *st = &s->stems[i];
            bool in = false;
            for (size_t j = 0; j < st->n_tracks && !in; j++)
                in = st->tracks[j] == t;
            if (!in || len >= sizeof list)
                continue;
            k++;
            const char *sep = k == 1 ? "" : k == n_stems_of[t] ? " and " : ", ";
            len += (size_t)snprintf(list + len, sizeof list - len, "%s'%s'", sep, st->name);
        }
        s_warning(c, tr->mark, "track '%s' is in %zu stems: %s", tr->name, n_stems_of[t], list);
    }
}

/* "stem 'Drums'", or "stem 3" when it has no name. */
static void s_stem_label(const sf_session_t *s, const sf_stem_t *st, char *buf, size_t n)
{
    if (st->name)
        snprintf(buf, n, "stem '%.256s'", st->name);
    else
        snprintf(buf, n, "stem %zu", (size_t)(st - s->stems) + 1);
}

/* The rest stem gets every track that no other stem claims, in session order. */
static void s_fill_rest(s_ctx_t *c, sf_stem_t *rest, size_t *n_stems_of)
{
    sf_session_t *s = c->s;
    size_t n = 0;
    for (size_t t = 0; t < s->n_tracks; t++)
        n += n_stems_of[t] == 0;
    if (!(rest->tracks = sf_calloc(n, sizeof *rest->tracks))) {
        c->rc = SF_E_NOMEM;
        return;
    }
    for (size_t t = 0; t < s->n_tracks; t++)
        if (n_stems_of[t] == 0) {
            rest->tracks[rest->n_tracks++] = t;
            n_stems_of[t] = 1;
        }
    if (!n)
        s_warning(c, rest->mark, "rest stem '%s' gets no track (every track is in another stem)", rest->name);
}

static void s_stems(s_ctx_t *c, const s_node_t *root)
{
    static const s_where_t top = {0};
    sf_session_t *s = c->s;
    const s_node_t *list = s_container(c, root, "stems", S_LIST, &top, true);
    const s_node_t **name_nodes = NULL;
    size_t *n_stems_of = NULL;
    sf_stem_t *rest = NULL;
    if (!list)
        return;
    s->stems = sf_calloc(list->n_kids, sizeof *s->stems);
    name_nodes = sf_calloc(list->n_kids, sizeof *name_nodes);
    n_stems_of = sf_calloc(s->n_tracks, sizeof *n_stems_of);
    if (!s->stems || !name_nodes || !n_stems_of) {
        c->rc = SF_E_NOMEM;
        goto out_free;
    }
    s->n_stems = list->n_kids;
    bool complete = true;
    for (size_t i = 0; i < list->n_kids && !c->rc; i++) {
        char subject[64];
        const s_node_t *rest_node = NULL;
        snprintf(subject, sizeof subject, "stem %zu", i + 1);
        if (s_expect(c, list->kids[i], S_MAP, subject))
            s_stem(c, list->kids[i], i, name_nodes, n_stems_of, &rest_node);
        sf_stem_t *st = &s->stems[i];
        if (st->rest && rest) {
            char first[320], second[320];
            s_stem_label(s, rest, first, sizeof first);
            s_stem_label(s, st, second, sizeof second);
            s_error(c, rest_node->mark, "two rest stems: %s and %s (at most one stem can have 'rest: true')", first,
                    second);
            complete = false;
        } else if (st->rest) {
            rest = st;
        }
        complete = complete && st->name && (st->tracks || st->rest);
    }
    c->stem_names_complete = complete;
    if (!c->rc && complete && c->names_complete) {
        if (rest)
            s_fill_rest(c, rest, n_stems_of);
        if (!c->rc)
            s_check_membership(c, n_stems_of);
    }
out_free:
    sf_free(name_nodes);
    sf_free(n_stems_of);
}

/* ---- mixes ---------------------------------------------------------------- */

/* Index of the stem named v's text, or -1 (reported). */
static int s_stem_ref(s_ctx_t *c, const s_node_t *v, const char *owner)
{
    const sf_session_t *s = c->s;
    for (size_t i = 0; i < s->n_stems; i++)
        if (s->stems[i].name && !strcmp(s->stems[i].name, v->text))
            return (int)i;
    if (c->stem_names_complete) {
        char list[600];
        s_error(c, v->mark, "unknown stem '%s' in %s (stems: %s)", v->text, owner,
                s_name_list(s_stem_name_of, s, s->n_stems, list, sizeof list));
    }
    return -1;
}

static void s_mix(s_ctx_t *c, const s_node_t *map, size_t index, const s_node_t **name_nodes)
{
    static const s_key_t keys[] = {{"name", NULL}, {"exclude", NULL}, {"gains_db", NULL}, {"master", NULL}};
    sf_session_t *s = c->s;
    sf_mix_t *mix = &s->mixes[index];
    s_where_t w = s_where_item("mix %zu", index + 1);
    const s_node_t *v, *list;
    bool *excluded = NULL;
    mix->mark = map->mark;
    mix->n_channels = s->master_channels;
    if ((v = s_name(c, map, &w, true))) {
        bool dup = false;
        for (size_t j = 0; j < s->n_stems && !dup; j++)
            if (s->stems[j].name && !strcmp(s->stems[j].name, v->text)) {
                s_error(c, v->mark, "mix name '%s' is taken by a stem (line %u)", v->text,
                        (unsigned)s->stems[j].mark.line);
                dup = true;
            }
        for (size_t j = 0; j < index && !dup; j++)
            if (name_nodes[j] && !strcmp(name_nodes[j]->text, v->text)) {
                s_error(c, v->mark, "duplicate mix name '%s' (first at line %u)", v->text,
                        (unsigned)name_nodes[j]->mark.line);
                dup = true;
            }
        name_nodes[index] = v;
        if (!(mix->name = s_dup(c, v->text)))
            return;
        w = s_where_item("mix '%.256s'", v->text);
    }
    s_check_keys(c, map, keys, sizeof keys / sizeof keys[0], &w);
    mix->stem_gain_db = sf_calloc(s->n_stems, sizeof *mix->stem_gain_db);
    excluded = sf_calloc(s->n_stems, sizeof *excluded);
    if (!mix->stem_gain_db || !excluded) {
        c->rc = SF_E_NOMEM;
        goto out_free;
    }
    if ((v = s_scalar(c, map, "master", &w, false))) {
        char subject[400];
        mix->master_apply = s_master_mode(c, v, s_subject(&w, "master", subject, sizeof subject));
    }
    if ((list = s_container_opt(c, map, "exclude", S_LIST, &w, false, true))) {
        for (size_t i = 0; i < list->n_kids; i++) {
            char subject[400];
            snprintf(subject, sizeof subject, "stem %zu of 'exclude' in %s", i + 1, w.item);
            int k;
            if (s_expect(c, list->kids[i], S_SCALAR, subject) && (k = s_stem_ref(c, list->kids[i], w.item)) >= 0) {
                excluded[k] = true;
                mix->stem_gain_db[k] = -(double)INFINITY;
            }
        }
    }
    if ((list = s_container_opt(c, map, "gains_db", S_MAP, &w, false, true))) {
        s_where_t gw = s_where_item("'gains_db' of %s", w.item);
        s_check_keys(c, list, NULL, 0, &gw);
        for (size_t i = 0; i < s_map_size(list); i++) {
            const s_node_t *k = s_map_key(list, i);
            char subject[400];
            int st;
            if (k->kind != S_SCALAR || s_get_key(list, k->text) != k || (st = s_stem_ref(c, k, w.item)) < 0)
                continue;
            snprintf(subject, sizeof subject, "'%s' in 'gains_db' of %s", k->text, w.item);
            v = s_map_value(list, i);
            if (!s_expect(c, v, S_SCALAR, subject))
                continue;
            if (excluded[st])
                s_error(c, k->mark, "stem '%s' is both excluded and given a gain in %s", k->text, w.item);
            else
                s_level(c, v, &mix->stem_gain_db[st]);
        }
    }
    bool any = false;
    for (size_t i = 0; i < s->n_stems; i++)
        any = any || !excluded[i];
    if (!any && s->n_stems)
        s_warning(c, mix->mark, "%s excludes every stem (it would be silent)", w.item);
out_free:
    sf_free(excluded);
}

static void s_mixes(s_ctx_t *c, const s_node_t *root)
{
    static const s_where_t top = {0};
    sf_session_t *s = c->s;
    const s_node_t *list = s_container_opt(c, root, "mixes", S_LIST, &top, false, true);
    const s_node_t **name_nodes = NULL;
    if (!list || !list->n_kids)
        return;
    s->mixes = sf_calloc(list->n_kids, sizeof *s->mixes);
    name_nodes = sf_calloc(list->n_kids, sizeof *name_nodes);
    if (!s->mixes || !name_nodes) {
        c->rc = SF_E_NOMEM;
        goto out_free;
    }
    s->n_mixes = list->n_kids;
    for (size_t i = 0; i < list->n_kids && !c->rc; i++) {
        char subject[64];
        snprintf(subject, sizeof subject, "mix %zu", i + 1);
        if (s_expect(c, list->kids[i], S_MAP, subject))
            s_mix(c, list->kids[i], i, name_nodes);
    }
out_free:
    sf_free(name_nodes);
}

static void s_multitracks(s_ctx_t *c, const s_node_t *root)
{
    static const s_where_t top = {0};
    const s_node_t *v = s_scalar(c, root, "multitracks", &top, false);
    if (v)
        s_bool(c, v, &c->s->multitracks);
}

/* ---- step 3: whole-model checks -------------------------------------- */

/* A setting output.profile needs, reported at the profile's value. */
static void s_profile_error(void *ctx, const char *line)
{
    s_ctx_t *c = ctx;
    s_error(c, c->profile->mark, "%s", line);
}

static void s_check_region(s_ctx_t *c, const s_node_t *root, const s_region_t *region)
{
    sf_session_t *s = c->s;
    if (s->end_auto) {
        int64_t end = 0;
        for (size_t t = 0; t < s->n_tracks; t++)
            for (size_t k = 0; k < s->tracks[t].n_clips; k++) {
                const sf_clip_t *clip = &s->tracks[t].clips[k];
                if (clip->at <= INT64_MAX - clip->length && clip->at + clip->length > end)
                    end = clip->at + clip->length;
            }
        s->end = s->clips_end = end;
    }
    if (!c->rate || s->start < s->end)
        return;
    if (!s->end_auto) {
        s_error(c, region->end->mark, "'session.end' (%s) must be after 'session.start' (%s)", region->end->text,
                region->start ? region->start->text : "0");
    } else if (c->check_sources && c->diags->n_errors == c->n_errors_before) {
        /* Otherwise a missing source would also be reported as this. */
        const s_node_t *sec = s_get(root, "session");
        s_error(c, region->start ? region->start->mark : sec->mark,
                "'session.start' (%s) must be before the end of the last clip (%lld frames)",
                region->start ? region->start->text : "0", (long long)s->end);
    }
}

static int s_edge_cmp(const void *a, const void *b)
{
    const s_edge_t *x = a, *y = b;
    if (x->from != y->from)
        return x->from < y->from ? -1 : 1;
    if (x->mark.line != y->mark.line)
        return x->mark.line < y->mark.line ? -1 : 1;
    if (x->mark.col != y->mark.col)
        return x->mark.col < y->mark.col ? -1 : 1;
    return 0;
}

/* Reports "routing cycle: 'A' -> 'B' -> 'A'" for the path[k..depth] closed by e. */
static void s_report_cycle(s_ctx_t *c, const size_t *path, size_t k, size_t depth, const s_edge_t *e)
{
    const sf_session_t *s = c->s;
    char text[800];
    size_t len = 0;
    for (size_t i = k; i <= depth + 1 && len < sizeof text; i++) {
        size_t b = i <= depth ? path[i] : e->to;
        len += (size_t)snprintf(text + len, sizeof text - len, "%s'%s'", i > k ? " -> " : "", s->buses[b].name);
    }
    s_error(c, e->mark, "routing cycle: %s", text);
}

/* Buses feed each other through outputs and sends; a cycle among them
 * cannot be rendered. Depth-first from each bus in file order, edges in file
 * order: an edge back to a bus on the current path closes a cycle, reported
 * there, once. first[b]..first[b + 1] are bus b's edges in c->edges.
 * Returns true when there is no cycle. */
static bool s_check_cycles(s_ctx_t *c, const size_t *first)
{
    size_t n = c->s->n_buses;
    uint8_t *state = sf_calloc(n, 1); /* 0 unseen, 1 on the path, 2 done */
    size_t *path = sf_calloc(n, sizeof *path);
    size_t *next = sf_calloc(n, sizeof *next); /* per depth: the next edge to follow */
    bool acyclic = true;
    if (!state || !path || !next) {
        c->rc = SF_E_NOMEM;
        goto out_free;
    }
    for (size_t root = 0; root < n; root++) {
        if (state[root])
            continue;
        size_t depth = 0;
        path[0] = root;
        next[0] = first[root];
        state[root] = 1;
        for (;;) {
            size_t u = path[depth];
            if (next[depth] == first[u + 1]) {
                state[u] = 2;
                if (depth == 0)
                    break;
                depth--;
                continue;
            }
            const s_edge_t *e = &c->edges[next[depth]++];
            if (state[e->to] == 0) {
                path[++depth] = e->to;
                next[depth] = first[e->to];
                state[e->to] = 1;
            } else if (state[e->to] == 1) {
                size_t k = 0;
                while (path[k] != e->to)
                    k++;
                s_report_cycle(c, path, k, depth, e);
                acyclic = false;
            }
        }
    }
out_free:
    sf_free(state);
    sf_free(path);
    sf_free(next);
    return acyclic;
}

/* bus_order: repeatedly the first bus (in file order) whose feeders are all
 * placed. Sessions have tens of buses: the quadratic scan is fine. */
static void s_bus_order(s_ctx_t *c, const size_t *first)
{
    sf_session_t *s = c->s;
    size_t n = s->n_buses;
    size_t *n_feeders = sf_calloc(n, sizeof *n_feeders);
    bool *placed = sf_calloc(n, sizeof *placed);
    s->bus_order = sf_calloc(n, sizeof *s->bus_order);
    if (!n_feeders || !placed || !s->bus_order) {
        c->rc = SF_E_NOMEM;
        goto out_free;
    }
    for (size_t i = 0; i < c->n_edges; i++)
        n_feeders[c->edges[i].to]++;
    for (size_t k = 0; k < n; k++) {
        size_t b = 0;
        while (placed[b] || n_feeders[b])
            b++; /* acyclic: there is always one */
        placed[b] = true;
        s->bus_order[k] = b;
        for (size_t i = first[b]; i < first[b + 1]; i++)
            n_feeders[c->edges[i].to]--;
    }
out_free:
    sf_free(n_feeders);
    sf_free(placed);
}

/* stem->buses: the buses its tracks reach through outputs and sends,
 * transitively. bus_order lists feeders first, so one pass over it carries
 * reachability along every path. */
static void s_stem_buses(s_ctx_t *c)
{
    sf_session_t *s = c->s;
    bool *reach = sf_calloc(s->n_buses, sizeof *reach);
    if (!reach) {
        c->rc = SF_E_NOMEM;
        return;
    }
    for (size_t i = 0; i < s->n_stems && !c->rc; i++) {
        sf_stem_t *st = &s->stems[i];
        memset(reach, 0, s->n_buses * sizeof *reach);
        for (size_t j = 0; j < st->n_tracks; j++) {
            const sf_track_t *t = &s->tracks[st->tracks[j]];
            if (t->output_bus >= 0)
                reach[t->output_bus] = true;
            for (size_t k = 0; k < t->n_sends; k++)
                if (t->sends[k].bus >= 0)
                    reach[t->sends[k].bus] = true;
        }
        for (size_t k = 0; k < s->n_buses; k++) {
            const sf_bus_t *b = &s->buses[s->bus_order[k]];
            if (!reach[s->bus_order[k]])
                continue;
            st->n_buses++;
            if (b->output_bus >= 0)
                reach[b->output_bus] = true;
            for (size_t m = 0; m < b->n_sends; m++)
                reach[b->sends[m].bus] = true;
        }
        if (!(st->buses = sf_calloc(st->n_buses, sizeof *st->buses))) {
            c->rc = SF_E_NOMEM;
            break;
        }
        for (size_t k = 0, m = 0; k < s->n_buses; k++)
            if (reach[s->bus_order[k]])
                st->buses[m++] = s->bus_order[k];
    }
    sf_free(reach);
}

/* Cycles, bus_order and the stems' buses, once every reference resolved. */
static void s_check_routing(s_ctx_t *c)
{
    sf_session_t *s = c->s;
    size_t *first = NULL;
    if (!s->n_buses)
        return;
    if (c->n_edges)
        qsort(c->edges, c->n_edges, sizeof *c->edges, s_edge_cmp);
    if (!(first = sf_calloc(s->n_buses + 1, sizeof *first))) {
        c->rc = SF_E_NOMEM;
        return;
    }
    for (size_t i = 0; i < c->n_edges; i++)
        first[c->edges[i].from + 1]++;
    for (size_t b = 0; b < s->n_buses; b++)
        first[b + 1] += first[b];
    /* Only a model without errors is returned: the rest needs none. */
    if (s_check_cycles(c, first) && !c->rc && c->diags->n_errors == c->n_errors_before) {
        s_bus_order(c, first);
        if (!c->rc && c->stem_names_complete)
            s_stem_buses(c);
    }
    sf_free(first);
}

/* a + b for frame counts >= 0, saturating at INT64_MAX. */
static int64_t s_add_frames(int64_t a, int64_t b) { return b > INT64_MAX - a ? INT64_MAX : a + b; }

/* The tail of a chain: the sum of its inserts' tails. */
static int64_t s_chain_tail(const sf_session_t *s, const sf_insert_t *fx, size_t n_fx)
{
    int64_t sum = 0;
    for (size_t i = 0; i < n_fx; i++) {
        int64_t t = sf_fx_tail_frames(&fx[i].params, s->sample_rate, s->tail_threshold_db);
        sum = s_add_frames(sum, t > 0 ? t : 0);
    }
    return sum;
}

/* The longest tail after the chain of a track or bus: over its output and
 * its sends, what follows each (bus_tail[], or the master's tail). */
static int64_t s_tail_after(const int64_t *bus_tail, int64_t master_tail, int output_bus, const sf_send_t *sends,
                            size_t n_sends)
{
    int64_t after = output_bus >= 0 ? bus_tail[output_bus] : master_tail;
    for (size_t i = 0; i < n_sends; i++)
        if (bus_tail[sends[i].bus] > after)
            after = bus_tail[sends[i].bus];
    return after;
}

/* `end: auto`: over the tracks, the track's last clip end plus the longest
 * sum of chain tails on any path from it to the output (its own chain, the
 * buses it reaches through outputs and sends, the master's chain where it
 * runs). bus_order lists feeders first, so one pass backwards gives every
 * bus the longest tail from it on. Needs a model without errors. Trimming
 * to where every stem has fallen below the threshold happens at delivery. */
static void s_auto_end(s_ctx_t *c)
{
    sf_session_t *s = c->s;
    if (!s->end_auto)
        return;
    /* The master runs for stems with output.master: apply and for mixes
     * with master: apply; every deliverable has the same length. */
    bool master_runs = s->output.master_apply;
    for (size_t i = 0; i < s->n_mixes; i++)
        master_runs = master_runs || s->mixes[i].master_apply;
    int64_t master_tail = master_runs ? s_chain_tail(s, s->master_fx, s->n_master_fx) : 0;
    int64_t *bus_tail = sf_calloc(s->n_buses + 1, sizeof *bus_tail);
    if (!bus_tail) {
        c->rc = SF_E_NOMEM;
        return;
    }
    for (size_t k = s->n_buses; k-- > 0;) {
        size_t b = s->bus_order[k];
        const sf_bus_t *bus = &s->buses[b];
        int64_t after = s_tail_after(bus_tail, master_tail, bus->output_bus, bus->sends, bus->n_sends);
        bus_tail[b] = s_add_frames(s_chain_tail(s, bus->fx, bus->n_fx), after);
    }
    for (size_t t = 0; t < s->n_tracks; t++) {
        const sf_track_t *tr = &s->tracks[t];
        int64_t last = 0;
        for (size_t k = 0; k < tr->n_clips; k++)
            if (tr->clips[k].at + tr->clips[k].length > last)
                last = tr->clips[k].at + tr->clips[k].length;
        int64_t after = s_tail_after(bus_tail, master_tail, tr->output_bus, tr->sends, tr->n_sends);
        int64_t end = s_add_frames(last, s_add_frames(s_chain_tail(s, tr->fx, tr->n_fx), after));
        if (end > s->end)
            s->end = end;
    }
    sf_free(bus_tail);
}

/* Not reported: a bus with dynamics fed by tracks of several stems. The
 * renderer runs shared dynamics (the gain comes from the whole bus signal
 * and applies to each stem's share), so those stems still null. */

/* ---- deliverable file names ----------------------------------------------- */

typedef struct {
    char name[S_NAME_MAX + 1];
    sf_target_t t;
    size_t seq; /* deliverable order: stems, mixes, multitracks */
} s_file_t;

static int s_file_cmp(const void *a, const void *b)
{
    const s_file_t *x = a, *y = b;
    int d = strcasecmp(x->name, y->name);
    if (d)
        return d;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static const char *s_kind_noun(sf_target_kind_t k, bool plural)
{
    static const char *const one[] = {"stem", "mix", "multitrack", "full mix"};
    static const char *const many[] = {"stems", "mixes", "multitracks", "full mixes"};
    return plural ? many[k] : one[k];
}

static sf_mark_t s_target_mark(const sf_session_t *s, sf_target_t t)
{
    switch (t.kind) {
    case SF_TARGET_STEM: return s->stems[t.index].mark;
    case SF_TARGET_MIX: return s->mixes[t.index].mark;
    case SF_TARGET_MULTITRACK: return s->tracks[t.index].mark;
    default: return (sf_mark_t){0};
    }
}

/* Two targets with the same name are reported as duplicate names already. */
static bool s_same_name_reported(const sf_session_t *s, sf_target_t a, sf_target_t b)
{
    bool named_twice = (a.kind == b.kind) || (a.kind == SF_TARGET_STEM && b.kind == SF_TARGET_MIX);
    return named_twice && !strcmp(sf_session_target_name(s, a), sf_session_target_name(s, b));
}

/* The deliverables in order: stems, mixes, multitracks when enabled. */
static size_t s_n_deliverables(const sf_session_t *s)
{
    return s->n_stems + s->n_mixes + (s->multitracks ? s->n_tracks : 0);
}

static sf_target_t s_deliverable(const sf_session_t *s, size_t i)
{
    if (i < s->n_stems)
        return (sf_target_t){SF_TARGET_STEM, (uint32_t)i};
    i -= s->n_stems;
    if (i < s->n_mixes)
        return (sf_target_t){SF_TARGET_MIX, (uint32_t)i};
    return (sf_target_t){SF_TARGET_MULTITRACK, (uint32_t)(i - s->n_mixes)};
}

/* Files of a target: one, or one per channel (a mono target too, ".M")
 * when output.interleave is false; 0 when the channels are not known
 * (sources not checked): then its interleaved name stands for it. */
static int s_n_files(const sf_session_t *s, sf_target_t t)
{
    return s->output.interleave ? 1 : sf_session_target_channels(s, t);
}

/* Output file names: short enough, and different for every deliverable,
 * per-channel files included (compared ignoring case: macOS and Windows
 * file systems do). */
static void s_check_filenames(s_ctx_t *c, const s_node_t *name_node, bool distinct)
{
    sf_session_t *s = c->s;
    size_t n_targets = s_n_deliverables(s), n_files = 0;
    s_file_t *files = NULL;
    bool *reported = NULL;
    for (size_t i = 0; i < n_targets; i++) {
        sf_target_t t = s_deliverable(s, i);
        if (!sf_session_target_name(s, t))
            return;
    }
    if (!distinct) {
        if (n_targets > 1)
            s_error(c, name_node->mark,
                    "'output.name' must contain {stem} or {index} "
                    "(otherwise every stem gets the same file name)");
        return;
    }
    for (size_t i = 0; i < n_targets; i++)
        n_files += (size_t)s_n_files(s, s_deliverable(s, i)) + 1;
    files = sf_calloc(n_files, sizeof *files);
    reported = sf_calloc(n_targets, sizeof *reported);
    if (!files || !reported) {
        c->rc = SF_E_NOMEM;
        goto out_free;
    }
    n_files = 0;
    for (size_t i = 0; i < n_targets; i++) {
        sf_target_t t = s_deliverable(s, i);
        int n_ch = s_n_files(s, t);
        bool split = n_ch > 0 && !s->output.interleave;
        if (n_ch == 0)
            n_ch = 1;
        for (int ch = 0; ch < n_ch; ch++) {
            char buf[4096];
            if (sf_session_target_filename(s, t, split ? ch : -1, buf, sizeof buf, NULL) || strlen(buf) > S_NAME_MAX) {
                s_error(c, s_target_mark(s, t), "file name of %s '%s' is longer than %d bytes",
                        s_kind_noun(t.kind, false), sf_session_target_name(s, t), S_NAME_MAX);
                break;
            }
            s_file_t *f = &files[n_files++];
            memcpy(f->name, buf, strlen(buf) + 1);
            f->t = t;
            f->seq = i;
        }
    }
    qsort(files, n_files, sizeof *files, s_file_cmp);
    for (size_t i = 0, g = 0; i < n_files; i++) {
        if (strcasecmp(files[g].name, files[i].name))
            g = i; /* a new group of equal names; files[g] came first */
        const s_file_t *a = &files[g], *b = &files[i];
        if (i == g || reported[b->seq] || a->seq == b->seq || s_same_name_reported(s, a->t, b->t))
            continue;
        reported[b->seq] = true;
        if (a->t.kind == b->t.kind)
            s_error(c, s_target_mark(s, b->t), "%s '%s' and '%s' would both be written to '%s'",
                    s_kind_noun(a->t.kind, true), sf_session_target_name(s, a->t), sf_session_target_name(s, b->t),
                    b->name);
        else
            s_error(c, s_target_mark(s, b->t), "%s '%s' and %s '%s' would both be written to '%s'",
                    s_kind_noun(a->t.kind, false), sf_session_target_name(s, a->t), s_kind_noun(b->t.kind, false),
                    sf_session_target_name(s, b->t), b->name);
    }
out_free:
    sf_free(files);
    sf_free(reported);
}

static void s_build(s_ctx_t *c, const s_node_t *root)
{
    static const s_key_t keys[] = {
        {"version", NULL}, {"session", NULL}, {"output", NULL}, {"master", NULL},      {"tracks", NULL},
        {"buses", NULL},   {"stems", NULL},   {"mixes", NULL},  {"multitracks", NULL},
    };
    static const s_where_t top = {0};
    s_region_t region = {0};
    const s_node_t *name_node = NULL;
    bool distinct = true;
    if (root->kind == S_SCALAR && root->is_null) {
        s_error(c, root->mark, "the session file is empty");
        return;
    }
    if (root->kind != S_MAP) {
        s_error(c, root->mark, "the top level must be a mapping, not %s", s_kind_name(root->kind));
        return;
    }
    s_check_keys(c, root, keys, sizeof keys / sizeof keys[0], &top);
    s_version(c, root);
    s_session_section(c, root, &region);
    if (!c->s->name)
        c->s->name = s_default_name(c, c->s->path);
    if (!c->s->media_root)
        c->s->media_root = s_dup(c, c->s->base_dir);
    c->s->cache_dir = s_join(c, c->s->base_dir, ".stemfarm-cache");
    s_master_section(c, root);
    s_master_fx(c, root);
    if (c->rc)
        return;
    s_output_section(c, root, &name_node, &distinct);
    if (c->rc)
        return;
    /* Buses before tracks: outputs and sends name them. */
    s_buses(c, root);
    if (c->rc)
        return;
    s_tracks(c, root);
    if (c->rc)
        return;
    s_stems(c, root);
    if (c->rc)
        return;
    s_mixes(c, root);
    s_multitracks(c, root);
    if (c->rc)
        return;
    s_check_region(c, root, &region);
    s_check_filenames(c, name_node, distinct);
    if (c->rc)
        return;
    s_check_routing(c);
    if (c->profile) /* settings the profile needs, known once every section is read */
        sf_profile_violations(c->s, c->s->output.profile, s_profile_error, c);
    if (!c->rc && c->diags->n_errors == c->n_errors_before)
        s_auto_end(c);
}

/* ---- public API ------------------------------------------------------- */

sf_session_load_opts_t sf_session_load_opts_default(void)
{
    return (sf_session_load_opts_t){.strict = false, .check_sources = true, .resample = true};
}

/* The absolute, symlink-free folder of `path`, mapped first by `map`
 * (NULL: none). */
static sf_rc s_base_dir(const char *path, const sf_pathmap_t *map, char **out, sf_err_t *err)
{
    char dir[PATH_MAX], real[PATH_MAX];
    if (map) {
        char *mapped;
        sf_rc rc = sf_pathmap_apply(map, path, &mapped, err);
        if (rc) {
            if (rc != SF_E_NOMEM)
                sf_err_prefix(err, "cannot map the session path: ");
            return rc;
        }
        rc = s_base_dir(mapped, NULL, out, err);
        sf_free(mapped);
        return rc;
    }
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (!realpath(dir, real)) {
        char reason[256];
        s_errno_text(errno, reason, sizeof reason);
        return SF_ERR(err, SF_E_IO, "cannot resolve the folder of '%s': %s", path, reason);
    }
    *out = sf_strdup(real);
    if (!*out)
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    return SF_OK;
}

/* SHA-256 over the YAML bytes, a NUL byte and base_dir (or the folder
 * that stands for it, opts.hash_base_dir). */
static sf_rc s_hash(sf_session_t *s, const char *yaml, size_t n_bytes, const char *base_dir)
{
    size_t n_dir = strlen(base_dir);
    uint8_t *buf = sf_malloc(n_bytes + 1 + n_dir);
    if (!buf)
        return SF_E_NOMEM;
    memcpy(buf, yaml, n_bytes);
    buf[n_bytes] = 0;
    memcpy(buf + n_bytes + 1, base_dir, n_dir);
    sf_hash_sha256(buf, n_bytes + 1 + n_dir, s->hash);
    sf_free(buf);
    return SF_OK;
}

static void s_ctx_free(s_ctx_t *c)
{
    for (size_t i = 0; i < c->n_copies; i++) {
        sf_free(c->copies[i].src);
        sf_free(c->copies[i].copy);
    }
    sf_free(c->copies);
    sf_free(c->edges);
}

sf_rc sf_session_load_text(const char *path, const char *yaml, size_t n_bytes, const sf_session_load_opts_t *opts,
                           sf_session_t **out, sf_diags_t *diags, sf_err_t *err)
{
    sf_session_load_opts_t defaults = sf_session_load_opts_default();
    sf_diags_t local_diags = SF_DIAGS_INIT;
    s_node_t *root = NULL;
    sf_rc rc;
    if (!opts)
        opts = &defaults;
    if (!diags)
        diags = &local_diags;
    *out = NULL;
    size_t n_errors_before = diags->n_errors;
    int nomem_before = diags->nomem;

    s_ctx_t c = {.file = path,
                 .diags = diags,
                 .strict = opts->strict,
                 .check_sources = opts->check_sources,
                 .resample = opts->check_sources && opts->resample,
                 .pathmap = opts->pathmap,
                 .media_lookup = opts->media_lookup,
                 .media_lookup_ctx = opts->media_lookup_ctx,
                 .names_complete = true,
                 .bus_names_complete = true,
                 .n_errors_before = n_errors_before};
    c.s = sf_calloc(1, sizeof *c.s);
    if (!c.s) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
        goto out_free_diags;
    }
    if (!(c.s->path = sf_strdup(path))) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
        goto out_destroy;
    }
    if (opts->base_dir) {
        if (!(c.s->base_dir = sf_strdup(opts->base_dir))) {
            rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
            goto out_destroy;
        }
    } else if ((rc = s_base_dir(path, opts->pathmap, &c.s->base_dir, err))) {
        goto out_destroy;
    }

    s_tree_parse(&c, yaml, n_bytes, &root);
    if (!c.rc && !root && diags->n_errors == n_errors_before)
        s_error(&c, (sf_mark_t){0}, "the session file is empty");
    if (!c.rc && root && diags->n_errors == n_errors_before)
        s_build(&c, root);
    if (c.rc || (diags->nomem && !nomem_before)) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
        goto out_destroy;
    }
    sf_diags_sort(diags);
    if (diags->n_errors > n_errors_before) {
        size_t n = diags->n_errors - n_errors_before;
        rc = SF_ERR(err, SF_E_INPUT, "'%s' has %zu error%s", path, n, n == 1 ? "" : "s");
        goto out_destroy;
    }
    if (s_hash(c.s, yaml, n_bytes, opts->hash_base_dir ? opts->hash_base_dir : c.s->base_dir)) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
        goto out_destroy;
    }
    *out = c.s;
    c.s = NULL;
    rc = SF_OK;
out_destroy:
    sf_session_destroy(&c.s);
    s_node_free(root);
    s_ctx_free(&c);
out_free_diags:
    if (diags == &local_diags)
        sf_diags_free(&local_diags);
    return rc;
}

sf_rc sf_session_load(const char *path, const sf_session_load_opts_t *opts, sf_session_t **out, sf_diags_t *diags,
                      sf_err_t *err)
{
    char *text = NULL;
    size_t n = 0, cap = 0;
    sf_rc rc;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        char reason[256];
        s_errno_text(errno, reason, sizeof reason);
        return SF_ERR(err, SF_E_IO, "cannot open '%s': %s", path, reason);
    }
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 64 * 1024;
            char *bigger = sf_realloc(text, cap);
            if (!bigger) {
                rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
                goto out_close;
            }
            text = bigger;
        }
        size_t got = fread(text + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        rc = SF_ERR(err, SF_E_IO, "cannot read '%s'", path);
        goto out_close;
    }
    rc = sf_session_load_text(path, text, n, opts, out, diags, err);
out_close:
    fclose(f);
    sf_free(text);
    return rc;
}

static void s_automation_free(sf_automation_t *a)
{
    sf_free(a->frames);
    sf_free(a->values);
}

static void s_sends_free(sf_send_t *sends, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s_automation_free(&sends[i].level_auto);
    sf_free(sends);
}

static void s_fx_free(sf_insert_t *fx, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sf_free(fx[i].ir_path);
        sf_free(fx[i].ir_name);
    }
    sf_free(fx);
}

void sf_session_destroy(sf_session_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_session_t *s = *self_p;
    for (size_t t = 0; t < s->n_tracks; t++) {
        sf_track_t *tr = &s->tracks[t];
        for (size_t k = 0; k < tr->n_clips; k++) {
            sf_free(tr->clips[k].path);
            sf_free(tr->clips[k].original_path);
            sf_free(tr->clips[k].source);
        }
        sf_free(tr->clips);
        sf_free(tr->name);
        s_sends_free(tr->sends, tr->n_sends);
        s_automation_free(&tr->gain_auto);
        s_automation_free(&tr->pan_auto);
        s_fx_free(tr->fx, tr->n_fx);
    }
    sf_free(s->tracks);
    for (size_t i = 0; i < s->n_buses; i++) {
        sf_free(s->buses[i].name);
        s_sends_free(s->buses[i].sends, s->buses[i].n_sends);
        s_fx_free(s->buses[i].fx, s->buses[i].n_fx);
    }
    sf_free(s->buses);
    sf_free(s->bus_order);
    for (size_t i = 0; i < s->n_stems; i++) {
        sf_free(s->stems[i].tracks);
        sf_free(s->stems[i].buses);
        sf_free(s->stems[i].name);
    }
    sf_free(s->stems);
    for (size_t i = 0; i < s->n_mixes; i++) {
        sf_free(s->mixes[i].name);
        sf_free(s->mixes[i].stem_gain_db);
    }
    sf_free(s->mixes);
    s_fx_free(s->master_fx, s->n_master_fx);
    sf_free(s->output.dir);
    sf_free(s->output.name_template);
    sf_free(s->path);
    sf_free(s->base_dir);
    sf_free(s->media_root);
    sf_free(s->cache_dir);
    sf_free(s->name);
    sf_free(s);
    *self_p = NULL;
}

int64_t sf_session_n_frames(const sf_session_t *s) { return s->end - s->start; }

/* ---- targets, file names, layouts ------------------------------------------ */

static bool s_target_valid(const sf_session_t *s, sf_target_t t)
{
    switch (t.kind) {
    case SF_TARGET_STEM: return t.index < s->n_stems;
    case SF_TARGET_MIX: return t.index < s->n_mixes;
    case SF_TARGET_MULTITRACK: return t.index < s->n_tracks;
    case SF_TARGET_FULL_MIX: return true;
    }
    return false;
}

size_t sf_session_target_count(const sf_session_t *s, sf_target_kind_t kind)
{
    switch (kind) {
    case SF_TARGET_STEM: return s->n_stems;
    case SF_TARGET_MIX: return s->n_mixes;
    case SF_TARGET_MULTITRACK: return s->n_tracks;
    case SF_TARGET_FULL_MIX: return 1;
    }
    return 0;
}

int sf_session_target_channels(const sf_session_t *s, sf_target_t t)
{
    if (!s_target_valid(s, t))
        return 0;
    switch (t.kind) {
    case SF_TARGET_STEM: return s->stems[t.index].n_channels;
    case SF_TARGET_MIX: return s->mixes[t.index].n_channels;
    case SF_TARGET_MULTITRACK: return s->tracks[t.index].n_channels;
    case SF_TARGET_FULL_MIX: return s->master_channels;
    }
    return 0;
}

const char *sf_session_target_name(const sf_session_t *s, sf_target_t t)
{
    if (!s_target_valid(s, t))
        return NULL;
    switch (t.kind) {
    case SF_TARGET_STEM: return s->stems[t.index].name;
    case SF_TARGET_MIX: return s->mixes[t.index].name;
    case SF_TARGET_MULTITRACK: return s->tracks[t.index].name;
    case SF_TARGET_FULL_MIX: return "Full Mix";
    }
    return NULL;
}

/* Appends to a bounded buffer, replacing characters unsafe in file names. */
typedef struct {
    char *buf;
    size_t cap;
    size_t len;
    bool overflow;
} s_namebuf_t;

static void s_name_append(s_namebuf_t *nb, const char *text, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (nb->len + 1 >= nb->cap) {
            nb->overflow = true;
            return;
        }
        if (ch < 0x20 || ch == 0x7f || strchr("/\\:*?\"<>|", ch))
            ch = '_';
        nb->buf[nb->len++] = (char)ch;
    }
}

sf_rc sf_session_target_filename(const sf_session_t *s, sf_target_t t, int channel, char *buf, size_t n_bytes,
                                 sf_err_t *err)
{
    static const char *const extensions[] = {".wav", ".wav", ".w64", ".aiff", ".flac"};
    const char *name = sf_session_target_name(s, t);
    int n_channels = sf_session_target_channels(s, t);
    if (n_bytes)
        buf[0] = '\0';
    if (!name || channel >= n_channels || (channel >= 0 && !sf_layout_labels(n_channels)))
        return SF_ERR(err, SF_E_INTERNAL, "no file name for target %d/%u channel %d", (int)t.kind, (unsigned)t.index,
                      channel);
    s_namebuf_t nb = {.buf = buf, .cap = n_bytes};
    const char *p = s->output.name_template;
    while (*p) {
        char num[32] = "";
        const char *value = NULL;
        size_t skip = 0;
        if (!strncmp(p, "{session}", 9)) {
            value = s->name;
            skip = 9;
        } else if (!strncmp(p, "{stem}", 6)) {
            value = name;
            skip = 6;
        } else if (!strncmp(p, "{index}", 7)) {
            snprintf(num, sizeof num, "%02u", t.kind == SF_TARGET_FULL_MIX ? 1u : t.index + 1u);
            value = num;
            skip = 7;
        } else if (!strncmp(p, "{rate}", 6)) {
            snprintf(num, sizeof num, "%d", s->sample_rate);
            value = num;
            skip = 6;
        } else if (!strncmp(p, "{bits}", 6)) {
            snprintf(num, sizeof num, "%d", sf_sample_format_bits(s->output.sample_format));
            value = num;
            skip = 6;
        }
        if (value) {
            s_name_append(&nb, value, strlen(value));
            p += skip;
        } else {
            s_name_append(&nb, p, 1);
            p++;
        }
    }
    /* The label and the extension are not sanitised: they are ours. */
    char tail[32];
    snprintf(tail, sizeof tail, "%s%s%s", channel >= 0 ? "." : "",
             channel >= 0 ? sf_layout_labels(n_channels)[channel] : "", extensions[s->output.format]);
    if (nb.len + strlen(tail) + 1 > nb.cap)
        nb.overflow = true;
    if (nb.overflow) {
        if (n_bytes)
            buf[0] = '\0';
        return SF_ERR(err, SF_E_INPUT, "file name of %s '%s' does not fit in %zu bytes", s_kind_noun(t.kind, false),
                      name, n_bytes);
    }
    memcpy(buf + nb.len, tail, strlen(tail) + 1);
    return SF_OK;
}

sf_rc sf_session_stem_filename(const sf_session_t *s, size_t stem_index, char *buf, size_t n_bytes, sf_err_t *err)
{
    sf_target_t t = {SF_TARGET_STEM, (uint32_t)stem_index};
    return sf_session_target_filename(s, t, -1, buf, n_bytes, err);
}

const char *const *sf_layout_labels(int n_channels)
{
    static const char *const mono[] = {"M", NULL};
    static const char *const stereo[] = {"L", "R", NULL};
    static const char *const five_one[] = {"L", "R", "C", "LFE", "Ls", "Rs", NULL};
    static const char *const seven_one[] = {"L", "R", "C", "LFE", "Lss", "Rss", "Lsr", "Rsr", NULL};
    switch (n_channels) {
    case 1: return mono;
    case 2: return stereo;
    case 6: return five_one;
    case 8: return seven_one;
    default: return NULL;
    }
}

const char *sf_layout_name(int n_channels)
{
    switch (n_channels) {
    case 1: return "mono";
    case 2: return "stereo";
    case 6: return "5.1";
    case 8: return "7.1";
    default: return NULL;
    }
}

void sf_session_hash_hex(const sf_session_t *s, char hex[65]) { sf_hash_hex(s->hash, SF_SESSION_HASH_BYTES, hex); }

const char *sf_format_name(sf_format_t f) { return (unsigned)f < 5 ? s_format_names[f] : "unknown"; }

const char *sf_sample_format_name(sf_sample_format_t f)
{
    return (unsigned)f < 4 ? s_sample_format_names[f] : "unknown";
}

int sf_sample_format_bits(sf_sample_format_t f)
{
    static const int bits[] = {16, 24, 32, 32};
    return (unsigned)f < 4 ? bits[f] : 0;
}
