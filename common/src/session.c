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
 *   3. Cross checks that need the whole model: stem patterns, track
 *      membership, `end: auto`, output file names.
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
#include "sf/value.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <sndfile.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#define S_MIN_RATE 8000
#define S_MAX_RATE 384000
#define S_NAME_MAX 255 /* longest file name most file systems take */
/* Times are only syntax-checked at this rate while the real one is unknown. */
#define S_FALLBACK_RATE 48000
#define S_MAX_DEPTH 64

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

static const char *s_kind_name(s_kind_t k)
{
    return k == S_MAP ? "a mapping" : k == S_LIST ? "a list" : "a value";
}

/* ---- loader state and diagnostics -------------------------------------- */

typedef struct {
    const char *file;     /* the session path, as given: prefix of every message */
    sf_diags_t *diags;
    bool strict;
    bool check_sources;
    sf_session_t *s;      /* the model being filled */
    int rate;             /* session rate, or 0 while unknown or invalid */
    bool names_complete;  /* every track got a name (else pattern misses are not reported) */
    size_t n_errors_before; /* diags->n_errors when the load began */
    sf_rc rc;             /* SF_E_NOMEM once an allocation failed */
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

__attribute__((format(printf, 3, 4))) static void s_error(s_ctx_t *c, sf_mark_t m,
                                                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vdiag(c, SF_DIAG_ERROR, m, fmt, ap);
    va_end(ap);
}

/* A warning, or an error in strict mode. */
__attribute__((format(printf, 3, 4))) static void s_warning(s_ctx_t *c, sf_mark_t m,
                                                            const char *fmt, ...)
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

static void s_report_parser_error(s_ctx_t *c, const yaml_parser_t *p, const char *yaml,
                                  size_t n_bytes)
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
        s_error(c, s_mark_of(p->problem_mark), "invalid YAML: %s (%s at line %u)", problem,
                p->context, (unsigned)p->context_mark.line + 1);
    } else {
        s_error(c, s_mark_of(p->problem_mark), "invalid YAML: %s", problem);
    }
}

static bool s_is_null_text(const char *t)
{
    return !*t || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") ||
           !strcmp(t, "NULL");
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
static bool s_tree_event(s_ctx_t *c, const yaml_event_t *ev, s_stack_t *st, s_node_t **root,
                         int *n_docs)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++*n_docs > 1) {
            s_error(c, s_mark_of(ev->start_mark),
                    "the session file holds more than one YAML document");
            return false;
        }
        return true;
    case YAML_ALIAS_EVENT:
        s_error(c, s_mark_of(ev->start_mark), "not supported: YAML alias '*%s'",
                (const char *)ev->data.alias.anchor);
        return false;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        st->n_items--;
        return true;
    case YAML_SCALAR_EVENT:
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        break;
    default:
        return true;
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

#define S_NO_EFFECTS "this version has no effects"
#define S_NO_BUSES "this version renders tracks straight to the master"

/* Reports keys that are not names, duplicates, unknown and unsupported keys. */
static void s_check_keys(s_ctx_t *c, const s_node_t *map, const s_key_t *keys, size_t n_keys,
                         const s_where_t *w)
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
                s_error(c, k->mark, "duplicate key '%s'%s (first at line %u)", k->text, in,
                        (unsigned)prev->mark.line);
                dup = true;
            }
        }
        if (dup)
            continue;
        size_t n = 0;
        while (n < n_keys && strcmp(keys[n].key, k->text))
            n++;
        if (n == n_keys)
            s_error(c, k->mark, "unknown key '%s'%s", k->text, in);
        else if (keys[n].unsupported)
            s_error(c, k->mark, "not supported yet: '%s'%s (%s)", k->text, in, keys[n].unsupported);
    }
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
    s_error(c, node->mark, "%s must be %s, not %s", subject, s_kind_name(kind),
            s_kind_name(node->kind));
    return false;
}

/* The value at `key` if it is a non-null scalar. NULL when absent (reported
 * if `required`), null, or of the wrong kind (both reported). */
static const s_node_t *s_scalar(s_ctx_t *c, const s_node_t *map, const char *key,
                                const s_where_t *w, bool required)
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
 * the wrong kind (reported). */
static const s_node_t *s_container(s_ctx_t *c, const s_node_t *map, const char *key,
                                   s_kind_t kind, const s_where_t *w, bool required)
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
    if (v->n_kids == 0) {
        s_error(c, v->mark, "%s must not be empty", subject);
        return NULL;
    }
    return v;
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
static int s_enum(s_ctx_t *c, const s_node_t *v, const char *const *names, const char *what,
                  const char *expected)
{
    for (int i = 0; names[i]; i++)
        if (!strcmp(v->text, names[i]))
            return i;
    s_error(c, v->mark, "invalid %s '%s' (expected %s)", what, v->text, expected);
    return -1;
}

/* "mono" 1, "stereo" 2; surround layouts are not supported yet; 0 if bad. */
static int s_channels(s_ctx_t *c, const s_node_t *v, const s_where_t *w)
{
    if (!strcmp(v->text, "mono"))
        return 1;
    if (!strcmp(v->text, "stereo"))
        return 2;
    if (!strcmp(v->text, "5.1") || !strcmp(v->text, "7.1")) {
        char in[400];
        s_error(c, v->mark,
                "not supported yet: 'channels: %s'%s (this version renders mono and stereo)",
                v->text, s_in(w, in, sizeof in));
    } else {
        s_error(c, v->mark, "invalid channels '%s' (expected mono or stereo)", v->text);
    }
    return 0;
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
        {"name", NULL},  {"sample_rate", NULL},       {"media_root", NULL}, {"start", NULL},
        {"end", NULL},   {"tail_threshold_db", NULL}, {"segment", NULL},
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
            s_error(c, v->mark,
                    "invalid sample rate '%s' (expected a whole number of Hz from %d to %d)",
                    v->text, S_MIN_RATE, S_MAX_RATE);
        else
            c->rate = s->sample_rate = (int)rate;
    }

    if ((v = s_name(c, sec, &w, false)))
        s->name = s_dup(c, v->text);
    if ((v = s_scalar(c, sec, "media_root", &w, false))) {
        s->media_root = s_join(c, s->base_dir, v->text);
        if (!v->text[0])
            s_error(c, v->mark, "'session.media_root' must not be empty");
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
    if ((v = s_scalar(c, sec, "segment", &w, false)) && s_time(c, v, &s->segment) &&
        s->segment <= 0)
        s_error(c, v->mark, "'session.segment' must be greater than 0");
}

static void s_master_section(s_ctx_t *c, const s_node_t *root)
{
    static const s_key_t keys[] = {{"channels", NULL}, {"fx", S_NO_EFFECTS}};
    s_where_t w = s_where_section("master");
    const s_node_t *sec = s_get(root, "master");
    c->s->master_channels = 2;
    if (!sec || !s_expect(c, sec, S_MAP, "'master'"))
        return;
    s_check_keys(c, sec, keys, sizeof keys / sizeof keys[0], &w);
    const s_node_t *v = s_scalar(c, sec, "channels", &w, false);
    int n;
    if (v && (n = s_channels(c, v, &w)))
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
        while (s_placeholders[i] && !(strlen(s_placeholders[i]) == len &&
                                      !strncmp(s_placeholders[i], p + 1, len)))
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
    static const int major[] = {SF_FORMAT_WAV, SF_FORMAT_RF64, SF_FORMAT_W64, SF_FORMAT_AIFF,
                                SF_FORMAT_FLAC};
    static const int minor[] = {SF_FORMAT_PCM_16, SF_FORMAT_PCM_24, SF_FORMAT_PCM_32,
                                SF_FORMAT_FLOAT};
    return major[f] | minor[sample];
}

/* Output section. *name_node receives the template node (for messages) and
 * *distinct whether the template tells stems apart. */
static void s_output_section(s_ctx_t *c, const s_node_t *root, const s_node_t **name_node,
                             bool *distinct)
{
    static const s_key_t keys[] = {
        {"dir", NULL},        {"format", NULL}, {"sample_format", NULL}, {"dither", NULL},
        {"name", NULL},       {"bwf", NULL},    {"headroom_db", NULL},   {"headroom_policy", NULL},
        {"master", NULL},
    };
    sf_output_t *o = &c->s->output;
    s_where_t w = s_where_section("output");
    const s_node_t *sec = s_get(root, "output");
    const char *dir = "bounces", *name = "{session}_{stem}";
    const s_node_t *v, *format_node = NULL, *sample_node = NULL;
    int i;
    o->format = SF_FILE_WAV;
    o->sample_format = SF_SAMPLE_PCM24;
    o->dither = SF_DITHER_AUTO;
    *distinct = true;
    if (sec && s_expect(c, sec, S_MAP, "'output'")) {
        s_check_keys(c, sec, keys, sizeof keys / sizeof keys[0], &w);
        if ((v = s_scalar(c, sec, "dir", &w, false))) {
            if (v->text[0])
                dir = v->text;
            else
                s_error(c, v->mark, "'output.dir' must not be empty");
        }
        if ((v = s_scalar(c, sec, "format", &w, false)) &&
            (i = s_enum(c, v, s_format_names, "format", "wav, rf64, w64, aiff or flac")) >= 0) {
            o->format = (sf_format_t)i;
            format_node = v;
        }
        if ((v = s_scalar(c, sec, "sample_format", &w, false)) &&
            (i = s_enum(c, v, s_sample_format_names, "sample format",
                        "pcm16, pcm24, pcm32 or float32")) >= 0) {
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
        if ((v = s_scalar(c, sec, "bwf", &w, false)))
            s_bool(c, v, &o->bwf);
        /* headroom_db: null means "no check", so it is read by hand. */
        if ((v = s_get(sec, "headroom_db")) && s_expect(c, v, S_SCALAR, "'output.headroom_db'") &&
            !v->is_null) {
            sf_err_t e = {0};
            if (sf_value_number(v->text, -400.0, 400.0, &o->headroom_db, &e))
                s_error(c, v->mark, "%s", e.msg);
            else
                o->headroom_check = true;
        }
        if ((v = s_scalar(c, sec, "headroom_policy", &w, false))) {
            static const char *const policies[] = {"warn", "fail", NULL};
            o->headroom_fail = s_enum(c, v, policies, "headroom policy", "warn or fail") == 1;
        }
        if ((v = s_scalar(c, sec, "master", &w, false))) {
            if (!strcmp(v->text, "apply"))
                s_error(c, v->mark, "'output.master: apply' needs master effects, "
                                    "which this version does not support");
            else if (strcmp(v->text, "bypass"))
                s_error(c, v->mark, "invalid value '%s' for 'output.master' (expected bypass)",
                        v->text);
        }
    }
    o->dir = s_join(c, c->s->base_dir, dir);
    o->name_template = s_dup(c, name);

    SF_INFO info = {.samplerate = c->rate ? c->rate : S_FALLBACK_RATE,
                    .channels = c->s->master_channels,
                    .format = s_sndfile_format(o->format, o->sample_format)};
    if (!sf_format_check(&info)) {
        const s_node_t *at = sample_node ? sample_node : format_node;
        s_error(c, at ? at->mark : root->mark, "output format '%s' cannot hold '%s' samples",
                sf_format_name(o->format), sf_sample_format_name(o->sample_format));
    }
}

/* The lowercase strerror text (git prints it as is; our messages are lowercase). */
static void s_errno_text(int errnum, char *buf, size_t n)
{
    snprintf(buf, n, "%s", strerror(errnum));
    buf[0] = (char)tolower((unsigned char)buf[0]);
}

/* Resolves the clip's source and, when sources are checked, opens it.
 * Returns false when the source is unusable (reported at v). */
static bool s_source(s_ctx_t *c, const s_node_t *v, sf_clip_t *clip)
{
    clip->path = s_join(c, c->s->media_root, v->text);
    if (!clip->path)
        return false;
    if (!v->text[0]) {
        s_error(c, v->mark, "source must not be empty");
        return false;
    }
    if (!c->check_sources)
        return true;

    struct stat st;
    char reason[256];
    if (stat(clip->path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            s_error(c, v->mark, "source '%s' not found at '%s'", v->text, clip->path);
        } else {
            s_errno_text(errno, reason, sizeof reason);
            s_error(c, v->mark, "cannot open source '%s': %s", v->text, reason);
        }
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        s_error(c, v->mark, "source '%s' is not a file", v->text);
        return false;
    }
    if (st.st_size == 0) {
        s_error(c, v->mark, "source '%s' is empty (0 bytes)", v->text);
        return false;
    }
    FILE *f = fopen(clip->path, "rb");
    if (!f) {
        s_errno_text(errno, reason, sizeof reason);
        s_error(c, v->mark, "cannot open source '%s': %s", v->text, reason);
        return false;
    }
    fclose(f);

    sf_media_info_t info;
    sf_err_t e = {0};
    sf_rc rc = sf_media_probe(clip->path, &info, &e);
    if (rc == SF_E_NOMEM) {
        c->rc = rc;
        return false;
    }
    if (rc == SF_E_INPUT) {
        s_error(c, v->mark, "source '%s' has no audio frames", v->text);
        return false;
    }
    if (rc) {
        s_error(c, v->mark, "cannot read source '%s' (not an audio file libsndfile can read)",
                v->text);
        return false;
    }
    bool ok = true;
    if (c->rate && info.sample_rate != c->rate) {
        s_error(c, v->mark,
                "source '%s' is %d Hz, the session is %d Hz (resampling is not supported yet)",
                v->text, info.sample_rate, c->rate);
        ok = false;
    }
    if (info.channels < 1 || info.channels > 2) {
        s_error(c, v->mark,
                "source '%s' has %d channels (this version reads mono and stereo sources only)",
                v->text, info.channels);
        ok = false;
    }
    clip->source_channels = info.channels;
    clip->source_frames = info.frames;
    return ok;
}

/* Fills a clip from a `clips` entry, or from the `source:` shorthand when
 * map is NULL (v_source is then the shorthand's value). */
static void s_clip(s_ctx_t *c, const s_node_t *map, const s_node_t *v_source,
                   const s_where_t *w, sf_clip_t *clip)
{
    static const s_key_t keys[] = {
        {"source", NULL},  {"at", NULL},      {"offset", NULL},
        {"length", NULL},  {"gain_db", NULL}, {"fade_in", "this version has no fades"},
        {"fade_out", "this version has no fades"},
    };
    const s_node_t *v_at = NULL, *v_offset = NULL, *v_length = NULL, *v;
    char subject[400];
    clip->mark = v_source ? v_source->mark : map->mark;
    if (map) {
        s_check_keys(c, map, keys, sizeof keys / sizeof keys[0], w);
        v_source = s_scalar(c, map, "source", w, true);
        if ((v = s_scalar(c, map, "at", w, false)) && s_time(c, v, &clip->at))
            v_at = v;
        if ((v = s_scalar(c, map, "offset", w, false)) && s_time(c, v, &clip->offset))
            v_offset = v;
        if ((v = s_scalar(c, map, "length", w, false)) && s_time(c, v, &clip->length))
            v_length = v;
        if ((v = s_scalar(c, map, "gain_db", w, false)))
            s_level(c, v, &clip->gain_db);
    }
    if (v_length && clip->length == 0)
        s_error(c, v_length->mark, "%s must be greater than 0",
                s_subject(w, "length", subject, sizeof subject));
    /* Frame counts mean nothing while the session rate is unknown. */
    if (!v_source || !s_source(c, v_source, clip) || !c->check_sources || !c->rate)
        return;

    int64_t n = clip->source_frames;
    if (clip->offset >= n) {
        s_error(c, v_offset ? v_offset->mark : clip->mark,
                "offset '%s' is past the end of source '%s' (%lld frames)",
                v_offset ? v_offset->text : "0", v_source->text,
                (long long)n);
        return;
    }
    if (!v_length)
        clip->length = n - clip->offset;
    else if (clip->length > n - clip->offset)
        s_error(c, v_length->mark,
                "clip runs past the end of source '%s' (offset + length is %lld frames, "
                "the source has %lld)",
                v_source->text, (long long)(clip->offset + clip->length), (long long)n);
    if (v_at && clip->at > INT64_MAX - clip->length)
        s_error(c, v_at->mark, "%s (%s) is too large", s_subject(w, "at", subject, sizeof subject),
                v_at->text);
}

static void s_track_clips(s_ctx_t *c, const s_node_t *map, const s_where_t *w, sf_track_t *t)
{
    char subject[400];
    const s_node_t *v_source = s_get(map, "source");
    const s_node_t *v_clips = s_get(map, "clips");
    if (v_source && v_clips) {
        s_error(c, s_get_key(map, "clips")->mark, "%s has both 'source' and 'clips' (use one)",
                w->item);
        return;
    }
    if (!v_source && !v_clips) {
        s_error(c, map->mark, "%s has neither 'source' nor 'clips'", w->item);
        return;
    }
    if (v_source) {
        if (!(v_source = s_scalar(c, map, "source", w, true)))
            return;
        if (!(t->clips = sf_calloc(1, sizeof *t->clips))) {
            c->rc = SF_E_NOMEM;
            return;
        }
        t->n_clips = 1;
        s_clip(c, NULL, v_source, w, &t->clips[0]);
        t->n_channels = t->clips[0].source_channels;
        return;
    }
    if (!(v_clips = s_container(c, map, "clips", S_LIST, w, true)))
        return;
    if (!(t->clips = sf_calloc(v_clips->n_kids, sizeof *t->clips))) {
        c->rc = SF_E_NOMEM;
        return;
    }
    t->n_clips = v_clips->n_kids;
    size_t first = 0; /* the clip that set t->n_channels */
    for (size_t i = 0; i < t->n_clips && !c->rc; i++) {
        const s_node_t *item = v_clips->kids[i];
        s_where_t cw = s_where_item("clip %zu of %s", i + 1, w->item);
        snprintf(subject, sizeof subject, "clip %zu of %s", i + 1, w->item);
        if (!s_expect(c, item, S_MAP, subject))
            continue;
        sf_clip_t *clip = &t->clips[i];
        s_clip(c, item, NULL, &cw, clip);
        if (!clip->source_channels)
            continue;
        if (!t->n_channels) {
            t->n_channels = clip->source_channels;
            first = i;
        } else if (clip->source_channels != t->n_channels) {
            s_error(c, clip->mark,
                    "clip %zu of %s has %d channels, clip %zu has %d "
                    "(all clips of a track need the same channel count)",
                    i + 1, w->item, clip->source_channels, first + 1, t->n_channels);
        }
    }
}

static void s_track(s_ctx_t *c, const s_node_t *map, size_t index, const s_node_t **name_nodes)
{
    static const s_key_t keys[] = {
        {"name", NULL},     {"source", NULL},
        {"clips", NULL},    {"gain_db", NULL},
        {"pan", NULL},      {"polarity", NULL},
        {"mute", NULL},     {"output", NULL},
        {"fx", S_NO_EFFECTS}, {"sends", "this version has no buses"},
        {"automation", "this version has no automation"},
    };
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
    if ((v = s_scalar(c, map, "pan", &w, false))) {
        sf_err_t e = {0};
        if (sf_value_pan(v->text, &t->pan, &e))
            s_error(c, v->mark, "%s", e.msg);
    }
    if ((v = s_scalar(c, map, "polarity", &w, false))) {
        static const char *const polarities[] = {"normal", "invert", NULL};
        t->invert = s_enum(c, v, polarities, "polarity", "normal or invert") == 1;
    }
    if ((v = s_scalar(c, map, "mute", &w, false)))
        s_bool(c, v, &t->mute);
    if ((v = s_scalar(c, map, "output", &w, false)) && strcmp(v->text, "master"))
        s_error(c, v->mark, "not supported yet: 'output: %s' in %s (%s)", v->text, w.item,
                S_NO_BUSES);
    s_track_clips(c, map, &w, t);
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

static bool s_has_wildcard(const char *pattern) { return strpbrk(pattern, "*?") != NULL; }

/* Resolves one stem's patterns into ascending track indices; counts each
 * track's stems in n_stems_of[]. An exact name that matches nothing is a
 * typo (error); a glob may legitimately match nothing in a session made
 * from a template (warning), and a stem that matches nothing at all is
 * reported once, as a whole. */
static void s_stem_tracks(s_ctx_t *c, const s_node_t *patterns, const s_where_t *w,
                          sf_stem_t *stem, size_t *n_stems_of)
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
                s_warning(c, patterns->kids[i]->mark, "pattern '%s' in %s matches no track",
                          patterns->kids[i]->text, w->item);
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

static void s_stem(s_ctx_t *c, const s_node_t *map, size_t index, const s_node_t **name_nodes,
                   size_t *n_stems_of)
{
    static const s_key_t keys[] = {{"name", NULL}, {"tracks", NULL}, {"channels", NULL}};
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
    if ((v = s_scalar(c, map, "channels", &w, false)) && (n = s_channels(c, v, &w)))
        stem->n_channels = n;
    if ((v = s_container(c, map, "tracks", S_LIST, &w, true)))
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

static void s_stems(s_ctx_t *c, const s_node_t *root)
{
    static const s_where_t top = {0};
    sf_session_t *s = c->s;
    const s_node_t *list = s_container(c, root, "stems", S_LIST, &top, true);
    const s_node_t **name_nodes = NULL;
    size_t *n_stems_of = NULL;
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
        snprintf(subject, sizeof subject, "stem %zu", i + 1);
        if (s_expect(c, list->kids[i], S_MAP, subject))
            s_stem(c, list->kids[i], i, name_nodes, n_stems_of);
        complete = complete && s->stems[i].name && s->stems[i].tracks;
    }
    if (!c->rc && complete && c->names_complete)
        s_check_membership(c, n_stems_of);
out_free:
    sf_free(name_nodes);
    sf_free(n_stems_of);
}

/* ---- step 3: whole-model checks -------------------------------------- */

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
        s->end = end;
    }
    if (!c->rate || s->start < s->end)
        return;
    if (!s->end_auto) {
        s_error(c, region->end->mark, "'session.end' (%s) must be after 'session.start' (%s)",
                region->end->text, region->start ? region->start->text : "0");
    } else if (c->check_sources && c->diags->n_errors == c->n_errors_before) {
        /* Otherwise a missing source would also be reported as this. */
        const s_node_t *sec = s_get(root, "session");
        s_error(c, region->start ? region->start->mark : sec->mark,
                "'session.start' (%s) must be before the end of the last clip (%lld frames)",
                region->start ? region->start->text : "0", (long long)s->end);
    }
}

/* Output file names: short enough, and different for every stem (compared
 * ignoring case: macOS and Windows file systems do). */
static void s_check_filenames(s_ctx_t *c, const s_node_t *name_node, bool distinct)
{
    sf_session_t *s = c->s;
    char (*names)[S_NAME_MAX + 1] = NULL;
    for (size_t i = 0; i < s->n_stems; i++)
        if (!s->stems[i].name)
            return;
    if (!distinct) {
        if (s->n_stems > 1)
            s_error(c, name_node->mark,
                    "'output.name' must contain {stem} or {index} "
                    "(otherwise every stem gets the same file name)");
        return;
    }
    names = sf_calloc(s->n_stems, sizeof *names);
    if (!names) {
        c->rc = SF_E_NOMEM;
        return;
    }
    for (size_t i = 0; i < s->n_stems; i++) {
        const sf_stem_t *st = &s->stems[i];
        char buf[4096];
        if (sf_session_stem_filename(s, i, buf, sizeof buf, NULL) || strlen(buf) > S_NAME_MAX) {
            s_error(c, st->mark, "file name of stem '%s' is longer than %d bytes", st->name,
                    S_NAME_MAX);
            continue;
        }
        memcpy(names[i], buf, strlen(buf) + 1);
        for (size_t j = 0; j < i; j++)
            /* Equal stem names are reported as duplicates already. */
            if (names[j][0] && !strcasecmp(names[j], names[i]) &&
                strcmp(s->stems[j].name, st->name)) {
                s_error(c, st->mark, "stems '%s' and '%s' would both be written to '%s'",
                        s->stems[j].name, st->name, names[i]);
                break;
            }
    }
    sf_free(names);
}

static void s_multitracks(s_ctx_t *c, const s_node_t *root)
{
    static const s_where_t top = {0};
    const s_node_t *v = s_scalar(c, root, "multitracks", &top, false);
    bool on = false;
    if (v && s_bool(c, v, &on) && on)
        s_error(c, v->mark,
                "not supported yet: 'multitracks: true' (this version renders stems only)");
}

static void s_build(s_ctx_t *c, const s_node_t *root)
{
    static const s_key_t keys[] = {
        {"version", NULL}, {"session", NULL},
        {"output", NULL},  {"master", NULL},
        {"tracks", NULL},  {"stems", NULL},
        {"multitracks", NULL},
        {"buses", S_NO_BUSES},
        {"mixes", "this version renders stems only"},
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
    s_master_section(c, root);
    if (c->rc)
        return;
    s_output_section(c, root, &name_node, &distinct);
    if (c->rc)
        return;
    s_tracks(c, root);
    if (c->rc)
        return;
    s_stems(c, root);
    s_multitracks(c, root);
    if (c->rc)
        return;
    s_check_region(c, root, &region);
    s_check_filenames(c, name_node, distinct);
}

/* ---- public API ------------------------------------------------------- */

sf_session_load_opts_t sf_session_load_opts_default(void)
{
    return (sf_session_load_opts_t){.strict = false, .check_sources = true};
}

/* The absolute, symlink-free folder of `path`. */
static sf_rc s_base_dir(const char *path, char **out, sf_err_t *err)
{
    char dir[PATH_MAX], real[PATH_MAX];
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

/* SHA-256 over the YAML bytes, a NUL byte and base_dir. */
static sf_rc s_hash(sf_session_t *s, const char *yaml, size_t n_bytes)
{
    size_t n_dir = strlen(s->base_dir);
    uint8_t *buf = sf_malloc(n_bytes + 1 + n_dir);
    if (!buf)
        return SF_E_NOMEM;
    memcpy(buf, yaml, n_bytes);
    buf[n_bytes] = 0;
    memcpy(buf + n_bytes + 1, s->base_dir, n_dir);
    sf_hash_sha256(buf, n_bytes + 1 + n_dir, s->hash);
    sf_free(buf);
    return SF_OK;
}

sf_rc sf_session_load_text(const char *path, const char *yaml, size_t n_bytes,
                           const sf_session_load_opts_t *opts, sf_session_t **out,
                           sf_diags_t *diags, sf_err_t *err)
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

    s_ctx_t c = {.file = path, .diags = diags, .strict = opts->strict,
                 .check_sources = opts->check_sources, .names_complete = true,
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
    if ((rc = s_base_dir(path, &c.s->base_dir, err)))
        goto out_destroy;

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
    if (s_hash(c.s, yaml, n_bytes)) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
        goto out_destroy;
    }
    *out = c.s;
    c.s = NULL;
    rc = SF_OK;
out_destroy:
    sf_session_destroy(&c.s);
    s_node_free(root);
out_free_diags:
    if (diags == &local_diags)
        sf_diags_free(&local_diags);
    return rc;
}

sf_rc sf_session_load(const char *path, const sf_session_load_opts_t *opts, sf_session_t **out,
                      sf_diags_t *diags, sf_err_t *err)
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

void sf_session_destroy(sf_session_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_session_t *s = *self_p;
    for (size_t t = 0; t < s->n_tracks; t++) {
        for (size_t k = 0; k < s->tracks[t].n_clips; k++)
            sf_free(s->tracks[t].clips[k].path);
        sf_free(s->tracks[t].clips);
        sf_free(s->tracks[t].name);
    }
    sf_free(s->tracks);
    for (size_t i = 0; i < s->n_stems; i++) {
        sf_free(s->stems[i].tracks);
        sf_free(s->stems[i].name);
    }
    sf_free(s->stems);
    sf_free(s->output.dir);
    sf_free(s->output.name_template);
    sf_free(s->path);
    sf_free(s->base_dir);
    sf_free(s->media_root);
    sf_free(s->name);
    sf_free(s);
    *self_p = NULL;
}

int64_t sf_session_n_frames(const sf_session_t *s) { return s->end - s->start; }

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

sf_rc sf_session_stem_filename(const sf_session_t *s, size_t stem_index, char *buf,
                               size_t n_bytes, sf_err_t *err)
{
    static const char *const extensions[] = {".wav", ".wav", ".w64", ".aiff", ".flac"};
    const sf_stem_t *stem = &s->stems[stem_index];
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
            value = stem->name;
            skip = 6;
        } else if (!strncmp(p, "{index}", 7)) {
            snprintf(num, sizeof num, "%02zu", stem_index + 1);
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
    /* The extension is not sanitised: it is ours. */
    const char *ext = extensions[s->output.format];
    if (nb.len + strlen(ext) + 1 > nb.cap)
        nb.overflow = true;
    if (nb.overflow) {
        if (n_bytes)
            buf[0] = '\0';
        return SF_ERR(err, SF_E_INPUT, "file name of stem '%s' does not fit in %zu bytes",
                      stem->name, n_bytes);
    }
    memcpy(buf + nb.len, ext, strlen(ext) + 1);
    return SF_OK;
}

void sf_session_hash_hex(const sf_session_t *s, char hex[65])
{
    sf_hash_hex(s->hash, SF_SESSION_HASH_BYTES, hex);
}

const char *sf_format_name(sf_format_t f)
{
    return (unsigned)f < 5 ? s_format_names[f] : "unknown";
}

const char *sf_sample_format_name(sf_sample_format_t f)
{
    return (unsigned)f < 4 ? s_sample_format_names[f] : "unknown";
}

int sf_sample_format_bits(sf_sample_format_t f)
{
    static const int bits[] = {16, 24, 32, 32};
    return (unsigned)f < 4 ? bits[f] : 0;
}
