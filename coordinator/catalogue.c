/* catalogue.c -- the catalogue of `stemfarm batch` (see catalogue.h). */

/* realpath(3) is XSI: glibc declares it only with _XOPEN_SOURCE. */
#define _XOPEN_SOURCE 700

#include "catalogue.h"

#include "sf/alloc.h"
#include "sf/profile.h"
#include "sf/value.h"
#include "sf/yamldoc.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    sf_yamldoc_t y;
    catalogue_t *cat;
    sf_rc rc; /* SF_E_NOMEM once an allocation failed */
    size_t cap_items;
} s_ctx_t;

static const char *s_keep(s_ctx_t *c, const char *text)
{
    char **grown = sf_realloc(c->cat->strings, (c->cat->n_strings + 1) * sizeof *grown);
    char *copy = sf_strdup(text);
    if (!grown || !copy) {
        if (grown)
            c->cat->strings = grown;
        sf_free(copy);
        c->rc = SF_E_NOMEM;
        return NULL;
    }
    c->cat->strings = grown;
    c->cat->strings[c->cat->n_strings++] = copy;
    return copy;
}

static char *s_join(const char *dir, const char *path)
{
    if (path[0] == '/')
        return sf_strdup(path);
    size_t n = strlen(dir) + strlen(path) + 2;
    char *out = sf_malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", dir, path);
    return out;
}

static bool s_is_glob(const char *p) { return strpbrk(p, "*?[") != NULL; }

static bool s_is_session_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && ((n > 5 && !strcmp(name + n - 5, ".yaml")) || (n > 4 && !strcmp(name + n - 4, ".yml")));
}

static bool s_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int s_by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A session of entry `tmpl` found at path: appended, unless listed before.
 * Listed by name twice is a mistake; matched again by a folder or glob, it
 * keeps its first entry (a glob for "the rest" after a few named ones). */
static void s_add(s_ctx_t *c, const catalogue_item_t *tmpl, const yaml_node_t *at, const char *path, bool matched)
{
    char *real = realpath(path, NULL);
    if (!real) {
        sf_yamldoc_error(&c->y, at, "cannot open session '%s': %s", path, strerror(errno));
        return;
    }
    for (size_t i = 0; i < c->cat->n_items; i++)
        if (!strcmp(c->cat->items[i].session_path, real)) {
            if (!matched)
                sf_yamldoc_error(&c->y, at, "session '%s' is listed twice (first by the entry at line %u)",
                                 sf_yamldoc_text(at), c->cat->items[i].line);
            free(real);
            return;
        }
    if (c->cat->n_items == c->cap_items) {
        size_t cap = c->cap_items ? 2 * c->cap_items : 16;
        catalogue_item_t *grown = sf_realloc(c->cat->items, cap * sizeof *grown);
        if (!grown) {
            free(real);
            c->rc = SF_E_NOMEM;
            return;
        }
        c->cat->items = grown;
        c->cap_items = cap;
    }
    catalogue_item_t *it = &c->cat->items[c->cat->n_items];
    *it = *tmpl;
    it->session_path = sf_strdup(real);
    free(real);
    if (!it->session_path) {
        c->rc = SF_E_NOMEM;
        return;
    }
    c->cat->n_items++;
}

/* Every *.yaml (and *.yml) directly in folder, by name. */
static void s_expand_folder(s_ctx_t *c, const catalogue_item_t *tmpl, const yaml_node_t *at, const char *folder)
{
    DIR *d = opendir(folder);
    if (!d) {
        sf_yamldoc_error(&c->y, at, "cannot open folder '%s': %s", folder, strerror(errno));
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) && !c->rc) {
        if (!s_is_session_name(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = sf_realloc(names, cap * sizeof *grown);
            if (!grown) {
                c->rc = SF_E_NOMEM;
                break;
            }
            names = grown;
        }
        if (!(names[n] = s_join(folder, e->d_name)))
            c->rc = SF_E_NOMEM;
        else
            n++;
    }
    closedir(d);
    if (names)
        qsort(names, n, sizeof *names, s_by_name);
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        if (!c->rc && s_is_file(names[i])) {
            s_add(c, tmpl, at, names[i], true);
            found++;
        }
        sf_free(names[i]);
    }
    sf_free(names);
    if (!found && !c->rc)
        sf_yamldoc_error(&c->y, at, "folder '%s' holds no session (*.yaml)", folder);
}

static void s_expand_glob(s_ctx_t *c, const catalogue_item_t *tmpl, const yaml_node_t *at, const char *pattern)
{
    glob_t g;
    int rc = glob(pattern, GLOB_ERR, NULL, &g);
    if (rc == GLOB_NOSPACE) {
        c->rc = SF_E_NOMEM;
        return;
    }
    size_t found = 0;
    for (size_t i = 0; rc == 0 && i < g.gl_pathc && !c->rc; i++)
        if (s_is_file(g.gl_pathv[i])) {
            s_add(c, tmpl, at, g.gl_pathv[i], true);
            found++;
        }
    if (rc == 0 || rc == GLOB_NOMATCH)
        globfree(&g);
    if (!found && !c->rc)
        sf_yamldoc_error(&c->y, at, "'%s' matches no session file", sf_yamldoc_text(at));
}

/* {session} and {file} are the placeholders; anything else in braces is
 * a mistake the user wants to hear about before the night starts. */
static bool s_template_ok(s_ctx_t *c, const yaml_node_t *at, const char *t)
{
    for (const char *p = strchr(t, '{'); p; p = strchr(p + 1, '{')) {
        if (!strncmp(p, "{session}", 9) || !strncmp(p, "{file}", 6))
            continue;
        const char *end = strchr(p, '}');
        int len = end ? (int)(end - p + 1) : (int)strlen(p);
        sf_yamldoc_error(&c->y, at, "unknown placeholder '%.*s' in output '%s' (expected {session}, {file})", len, p,
                         t);
        return false;
    }
    return true;
}

static void s_entry(s_ctx_t *c, const yaml_node_t *entry, size_t index)
{
    static const char *const keys[] = {"path", "output", "profile", "priority", NULL};
    const yaml_node_t *v[4];
    char what[64];
    snprintf(what, sizeof what, "entry %zu of 'sessions'", index + 1);
    if (!sf_yamldoc_fields(&c->y, entry, what, keys, v)) {
        sf_yamldoc_error(&c->y, entry, "%s must be a mapping with path, output, profile, priority, not %s", what,
                         sf_yamldoc_kind(entry));
        return;
    }
    catalogue_item_t tmpl = {.output = "{session}"};
    bool ok = true;
    if (!v[0] || v[0]->type != YAML_SCALAR_NODE || sf_yamldoc_is_null(v[0]) || !*sf_yamldoc_text(v[0])) {
        sf_yamldoc_error(&c->y, v[0] ? v[0] : entry, "%s needs a 'path': a session file, a folder or a glob", what);
        ok = false;
    }
    if (v[1]) {
        const char *t = sf_yamldoc_text(v[1]);
        if (v[1]->type != YAML_SCALAR_NODE || !*t) {
            sf_yamldoc_error(&c->y, v[1], "'output' must be a folder, not %s", sf_yamldoc_kind(v[1]));
            ok = false;
        } else if (!s_template_ok(c, v[1], t)) {
            ok = false;
        } else {
            tmpl.output = s_keep(c, t);
        }
    }
    if (v[2]) {
        sf_profile_t p;
        const char *name = sf_yamldoc_text(v[2]);
        if (v[2]->type != YAML_SCALAR_NODE || !sf_profile_parse(name, &p)) {
            sf_yamldoc_error(&c->y, v[2], "unknown profile '%s' (expected %s)", name, sf_profile_names());
            ok = false;
        } else {
            tmpl.profile = s_keep(c, name);
        }
    }
    if (v[3]) {
        int64_t prio;
        sf_err_t e = {0};
        if (v[3]->type != YAML_SCALAR_NODE || sf_value_int(sf_yamldoc_text(v[3]), -100, 100, &prio, &e)) {
            sf_yamldoc_error(&c->y, v[3], "'priority' must be a whole number from -100 to 100, not '%s'",
                             sf_yamldoc_text(v[3]));
            ok = false;
        } else {
            tmpl.priority = (int)prio;
        }
    }
    if (!ok || c->rc)
        return;
    tmpl.line = (uint32_t)v[0]->start_mark.line + 1;
    tmpl.column = (uint32_t)v[0]->start_mark.column + 1;
    char *path = s_join(c->cat->dir, sf_yamldoc_text(v[0]));
    if (!path) {
        c->rc = SF_E_NOMEM;
        return;
    }
    struct stat st;
    if (s_is_glob(sf_yamldoc_text(v[0])))
        s_expand_glob(c, &tmpl, v[0], path);
    else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        s_expand_folder(c, &tmpl, v[0], path);
    else
        s_add(c, &tmpl, v[0], path, false);
    sf_free(path);
}

static void s_top(s_ctx_t *c, const yaml_node_t *root)
{
    static const char *const keys[] = {"version", "sessions", NULL};
    const yaml_node_t *v[2];
    if (!sf_yamldoc_fields(&c->y, root, "the catalogue", keys, v)) {
        sf_yamldoc_error(&c->y, root, "a catalogue must be a mapping with version and sessions, not %s",
                         sf_yamldoc_kind(root));
        return;
    }
    if (!v[0])
        sf_yamldoc_error(&c->y, root, "a catalogue needs 'version: 1'");
    else if (strcmp(sf_yamldoc_text(v[0]), "1") != 0)
        sf_yamldoc_error(&c->y, v[0], "unsupported catalogue version '%s' (this stemfarm reads version 1)",
                         sf_yamldoc_text(v[0]));
    if (!v[1] || v[1]->type != YAML_SEQUENCE_NODE || v[1]->data.sequence.items.start == v[1]->data.sequence.items.top) {
        sf_yamldoc_error(&c->y, v[1] ? v[1] : root, "'sessions' must be a list of entries with a 'path', not %s",
                         v[1] ? sf_yamldoc_kind(v[1]) : "missing");
        return;
    }
    size_t index = 0;
    for (yaml_node_item_t *it = v[1]->data.sequence.items.start; it < v[1]->data.sequence.items.top && !c->rc; it++)
        s_entry(c, sf_yamldoc_node(&c->y, *it), index++);
}

void catalogue_destroy(catalogue_t **self_p)
{
    catalogue_t *cat = *self_p;
    if (!cat)
        return;
    for (size_t i = 0; i < cat->n_items; i++)
        sf_free(cat->items[i].session_path);
    sf_free(cat->items);
    for (size_t i = 0; i < cat->n_strings; i++)
        sf_free(cat->strings[i]);
    sf_free(cat->strings);
    sf_free(cat->path);
    sf_free(cat->dir);
    sf_free(cat);
    *self_p = NULL;
}

sf_rc catalogue_load(const char *path, catalogue_t **out, sf_diags_t *diags, sf_err_t *err)
{
    *out = NULL;
    char *text = NULL;
    size_t n = 0;
    sf_rc rc = sf_yamldoc_read_file(path, CATALOGUE_MAX_BYTES, "stemfarm catalogue", &text, &n, err);
    if (rc)
        return rc;
    s_ctx_t c = {0};
    c.cat = sf_calloc(1, sizeof *c.cat);
    char *real = realpath(path, NULL);
    if (c.cat && real) {
        c.cat->path = sf_strdup(real);
        char *slash = strrchr(real, '/');
        c.cat->dir = slash == real ? sf_strdup("/") : sf_strndup(real, (size_t)(slash - real));
    }
    free(real);
    if (!c.cat || !c.cat->path || !c.cat->dir) {
        catalogue_destroy(&c.cat);
        sf_free(text);
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    }
    size_t errors_before = diags->n_errors;
    const yaml_node_t *root;
    rc = sf_yamldoc_parse(&c.y, path, text, n, diags, &root, err);
    if (rc == SF_OK && c.y.loaded && (!root || sf_yamldoc_is_null(root)))
        sf_yamldoc_error(&c.y, root, "the catalogue is empty (expected version: 1 and sessions)");
    else if (rc == SF_OK && root)
        s_top(&c, root);
    sf_yamldoc_free(&c.y);
    sf_free(text);
    sf_diags_sort(diags);
    if (rc == SF_OK && (c.rc || diags->nomem))
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
    if (rc == SF_OK && diags->n_errors > errors_before) {
        size_t k = diags->n_errors - errors_before;
        rc = SF_ERR(err, SF_E_INPUT, "'%s' has %zu error%s", path, k, k == 1 ? "" : "s");
    }
    if (rc)
        catalogue_destroy(&c.cat);
    *out = c.cat;
    return rc;
}

char *catalogue_output_dir(const catalogue_item_t *item, const char *root, const char *session_name)
{
    const char *base = strrchr(item->session_path, '/');
    base = base ? base + 1 : item->session_path;
    size_t base_len = strlen(base);
    if (base_len > 5 && !strcmp(base + base_len - 5, ".yaml"))
        base_len -= 5;
    else if (base_len > 4 && !strcmp(base + base_len - 4, ".yml"))
        base_len -= 4;
    size_t cap = strlen(root) + 2 + strlen(item->output) * (strlen(session_name) + base_len + 1) + 1;
    char *out = sf_malloc(cap);
    if (!out)
        return NULL;
    size_t n = 0;
    if (item->output[0] != '/')
        n = (size_t)snprintf(out, cap, "%s/", root);
    for (const char *p = item->output; *p;) {
        const char *fill = NULL;
        size_t fill_len = 0, skip = 1;
        if (!strncmp(p, "{session}", 9)) {
            fill = session_name;
            fill_len = strlen(session_name);
            skip = 9;
        } else if (!strncmp(p, "{file}", 6)) {
            fill = base;
            fill_len = base_len;
            skip = 6;
        }
        if (!fill) {
            out[n++] = *p;
        } else {
            for (size_t i = 0; i < fill_len; i++)
                out[n++] = fill[i] == '/' ? '_' : fill[i];
        }
        p += skip;
    }
    out[n] = '\0';
    return out;
}
