/* pathmap.c -- path-mapping rules, media roots and their config file
 * (see sf/pathmap.h for the rules users rely on).
 *
 * A path is parsed once into its form and its components (s_path_t): the
 * components live NUL-separated in one buffer, `.` and empty ones dropped,
 * `..` kept so that the mapping can refuse one that climbs above a rule's
 * target. For a drive path the first component is the drive ("M:", letter
 * upper-cased); for a UNC path the first two are server and share. Matching
 * and the longest-prefix choice then work on components only, never on
 * bytes, which is what keeps `/Volumes/Media` from matching
 * `/Volumes/MediaOld`.
 *
 * Invariants: every rule's `from` is absolute and free of `..`; every `to`
 * and root is an absolute POSIX path in normal form ("/" or "/a/b", no `.`,
 * `..`, doubled or trailing slash), so joining a remainder gives a normal
 * path too.
 */

/* realpath(3) is XSI: glibc declares it only with _XOPEN_SOURCE. */
#define _XOPEN_SOURCE 700

#include "sf/pathmap.h"

#include "sf/alloc.h"
#include "sf/yamldoc.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

typedef enum { S_RELATIVE, S_POSIX, S_DRIVE, S_UNC } s_form_t;

typedef struct {
    s_form_t form;
    char *buf;    /* owned: the components, NUL-separated */
    char **comps; /* owned: pointers into buf */
    size_t n_comps;
} s_path_t;

typedef struct {
    char *from_text; /* owned: as written, for messages */
    s_path_t from;
    char *to; /* owned: normal absolute POSIX path */
} s_rule_t;

struct sf_pathmap {
    s_rule_t *rules; /* owned, in the order given: the first wins a tie */
    size_t n_rules;
    size_t cap_rules;
    char **roots; /* owned: normal absolute POSIX paths, as given */
    size_t n_roots;
    size_t cap_roots;
    sf_media_mode_t media;    /* `media:`, SF_MEDIA_SHARED by default */
    char *cache_dir;          /* owned: `cache: {dir}` in normal form, or NULL */
    uint64_t cache_max_bytes; /* `cache: {max_size}`, 0 when not given */
};

/* ---- parsing paths ------------------------------------------------------- */

static bool s_is_win_sep(char ch) { return ch == '/' || ch == '\\'; }

static s_form_t s_form_of(const char *p)
{
    /* `//server/share` is UNC; `///x` and `/x` are POSIX (Linux reads a
     * doubled leading slash as one). */
    if (p[0] == '/' && p[1] == '/' && p[2] && p[2] != '/')
        return S_UNC;
    if (p[0] == '\\' && s_is_win_sep(p[1]))
        return S_UNC;
    if (p[0] == '/')
        return S_POSIX;
    if (isalpha((unsigned char)p[0]) && p[1] == ':' && (!p[2] || s_is_win_sep(p[2])))
        return S_DRIVE;
    return S_RELATIVE;
}

static void s_path_free(s_path_t *p)
{
    sf_free(p->buf);
    sf_free(p->comps);
    memset(p, 0, sizeof *p);
}

static void s_path_push(s_path_t *p, char *comp)
{
    if (!comp[0] || !strcmp(comp, "."))
        return;
    p->comps[p->n_comps++] = comp;
}

/* Splits `path` into *p. SF_E_INPUT for a UNC path without server and share
 * (message names the path); SF_E_NOMEM. A relative path gets no components. */
static sf_rc s_path_parse(const char *path, s_path_t *p, sf_err_t *err)
{
    memset(p, 0, sizeof *p);
    p->form = s_form_of(path);
    if (p->form == S_RELATIVE)
        return SF_OK;
    size_t n = strlen(path);
    p->buf = sf_malloc(n + 1);
    p->comps = sf_malloc((n / 2 + 2) * sizeof *p->comps); /* components are at least one byte plus a separator */
    if (!p->buf || !p->comps) {
        s_path_free(p);
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    }
    memcpy(p->buf, path, n + 1);
    size_t start = 0;
    if (p->form == S_DRIVE) {
        p->buf[0] = (char)toupper((unsigned char)p->buf[0]);
        p->buf[2 < n ? 2 : n] = '\0'; /* "M:" */
        p->comps[p->n_comps++] = p->buf;
        start = 3;
    } else {
        start = p->form == S_UNC ? 2 : 1;
    }
    char *comp = p->buf + start;
    for (size_t i = start; i <= n; i++) {
        bool sep = p->form == S_POSIX ? p->buf[i] == '/' : s_is_win_sep(p->buf[i]);
        if (i < n && !sep)
            continue;
        p->buf[i] = '\0';
        s_path_push(p, comp);
        comp = p->buf + i + 1;
    }
    if (p->form == S_UNC && (p->n_comps < 2 || !strcmp(p->comps[0], "..") || !strcmp(p->comps[1], ".."))) {
        s_path_free(p);
        return SF_ERR(err, SF_E_INPUT, "'%s' is not a complete UNC path (expected \\\\server\\share\\...)", path);
    }
    return SF_OK;
}

static bool s_has_dotdot(const s_path_t *p)
{
    for (size_t i = 0; i < p->n_comps; i++)
        if (!strcmp(p->comps[i], ".."))
            return true;
    return false;
}

/* Components compare exactly on POSIX, ASCII case-insensitively on Windows. */
static bool s_comp_eq(s_form_t form, const char *a, const char *b)
{
    return form == S_POSIX ? strcmp(a, b) == 0 : strcasecmp(a, b) == 0;
}

/* True when rule `from` is a leading run of components of `p`. */
static bool s_prefix_of(const s_path_t *from, const s_path_t *p)
{
    if (from->form != p->form || from->n_comps > p->n_comps)
        return false;
    for (size_t i = 0; i < from->n_comps; i++)
        if (!s_comp_eq(from->form, from->comps[i], p->comps[i]))
            return false;
    return true;
}

/* "/" + comps[from..n) joined by "/" onto `base` (a normal POSIX path). */
static char *s_join_comps(const char *base, char *const *comps, size_t n_comps)
{
    size_t n = strlen(base) + 1;
    for (size_t i = 0; i < n_comps; i++)
        n += strlen(comps[i]) + 1;
    char *out = sf_malloc(n);
    if (!out)
        return NULL;
    size_t len = (size_t)snprintf(out, n, "%s", base);
    for (size_t i = 0; i < n_comps; i++)
        len += (size_t)snprintf(out + len, n - len, "%s%s", len && out[len - 1] == '/' ? "" : "/", comps[i]);
    return out;
}

/* The normal form of an absolute POSIX path (`what` names it in messages:
 * "'to'", "media root"). SF_E_INPUT for any other path or one with `..`. */
static sf_rc s_posix_normal(const char *text, const char *what, char **out, sf_err_t *err)
{
    *out = NULL;
    if (s_form_of(text) != S_POSIX)
        return SF_ERR(err, SF_E_INPUT, "%s '%s' is not an absolute POSIX path (expected /...)", what, text);
    s_path_t p;
    sf_rc rc = s_path_parse(text, &p, err);
    if (rc)
        return rc;
    if (s_has_dotdot(&p))
        rc = SF_ERR(err, SF_E_INPUT, "%s '%s' must not contain '..'", what, text);
    else if (!(*out = s_join_comps("/", p.comps, p.n_comps)))
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
    s_path_free(&p);
    return rc;
}

/* A rule's `from`, parsed. SF_E_INPUT when relative or with `..`. */
static sf_rc s_from_parse(const char *text, s_path_t *p, sf_err_t *err)
{
    if (s_form_of(text) == S_RELATIVE) {
        memset(p, 0, sizeof *p);
        return SF_ERR(err, SF_E_INPUT,
                      "'from' path '%s' is not absolute (expected /..., X:\\... or \\\\server\\share...)", text);
    }
    sf_rc rc = s_path_parse(text, p, err);
    if (rc)
        return rc;
    if (s_has_dotdot(p)) {
        s_path_free(p);
        return SF_ERR(err, SF_E_INPUT, "'from' path '%s' must not contain '..'", text);
    }
    return SF_OK;
}

/* ---- the map -------------------------------------------------------------- */

sf_rc sf_pathmap_new(sf_pathmap_t **out, sf_err_t *err)
{
    *out = sf_calloc(1, sizeof **out);
    return *out ? SF_OK : SF_ERR(err, SF_E_NOMEM, "out of memory");
}

void sf_pathmap_destroy(sf_pathmap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_pathmap_t *m = *self_p;
    for (size_t i = 0; i < m->n_rules; i++) {
        sf_free(m->rules[i].from_text);
        s_path_free(&m->rules[i].from);
        sf_free(m->rules[i].to);
    }
    sf_free(m->rules);
    for (size_t i = 0; i < m->n_roots; i++)
        sf_free(m->roots[i]);
    sf_free(m->roots);
    sf_free(m->cache_dir);
    sf_free(m);
    *self_p = NULL;
}

static bool s_grow(void **items, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t bigger = *cap ? 2 * *cap : 4;
    void *p = sf_realloc(*items, bigger * size);
    if (!p)
        return false;
    *items = p;
    *cap = bigger;
    return true;
}

/* Takes ownership of *from (emptied) and *to (NULLed), also on failure. */
static sf_rc s_add_parsed(sf_pathmap_t *m, const char *from_text, s_path_t *from, char **to, sf_err_t *err)
{
    s_rule_t r = {.from = *from, .to = *to, .from_text = sf_strdup(from_text)};
    memset(from, 0, sizeof *from);
    *to = NULL;
    if (!r.from_text || !s_grow((void **)&m->rules, &m->cap_rules, m->n_rules, sizeof *m->rules)) {
        sf_free(r.from_text);
        s_path_free(&r.from);
        sf_free(r.to);
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    }
    m->rules[m->n_rules++] = r;
    return SF_OK;
}

sf_rc sf_pathmap_add_rule(sf_pathmap_t *m, const char *from, const char *to, sf_err_t *err)
{
    s_path_t p;
    char *target;
    sf_rc rc = s_from_parse(from, &p, err);
    if (rc)
        return rc;
    if ((rc = s_posix_normal(to, "'to' path", &target, err))) {
        s_path_free(&p);
        return rc;
    }
    return s_add_parsed(m, from, &p, &target, err);
}

sf_rc sf_pathmap_add_root(sf_pathmap_t *m, const char *root, sf_err_t *err)
{
    char *normal;
    sf_rc rc = s_posix_normal(root, "media root", &normal, err);
    if (rc)
        return rc;
    if (!s_grow((void **)&m->roots, &m->cap_roots, m->n_roots, sizeof *m->roots)) {
        sf_free(normal);
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    }
    m->roots[m->n_roots++] = normal;
    return SF_OK;
}

size_t sf_pathmap_n_rules(const sf_pathmap_t *m) { return m ? m->n_rules : 0; }
size_t sf_pathmap_n_roots(const sf_pathmap_t *m) { return m ? m->n_roots : 0; }

bool sf_pathmap_is_absolute(const char *path) { return s_form_of(path) != S_RELATIVE; }

/* The rule to suggest for an unmatched Windows path: its drive or share. */
static void s_suggest(const s_path_t *p, char *buf, size_t n)
{
    if (p->form == S_DRIVE)
        snprintf(buf, n, "%s\\", p->comps[0]);
    else
        snprintf(buf, n, "\\\\%s\\%s", p->comps[0], p->comps[1]);
}

sf_rc sf_pathmap_apply(const sf_pathmap_t *m, const char *path, char **out, sf_err_t *err)
{
    *out = NULL;
    s_path_t p;
    sf_rc rc = s_path_parse(path, &p, err);
    if (rc)
        return rc;
    const s_rule_t *best = NULL;
    for (size_t i = 0; m && i < m->n_rules; i++) {
        const s_rule_t *r = &m->rules[i];
        if (s_prefix_of(&r->from, &p) && (!best || r->from.n_comps > best->from.n_comps))
            best = r;
    }
    if (!best && (p.form == S_DRIVE || p.form == S_UNC)) {
        char rule[512];
        s_suggest(&p, rule, sizeof rule);
        rc = SF_ERR(err, SF_E_INPUT,
                    "no path_map rule maps '%s': a Windows path cannot be opened on this machine; "
                    "add a rule to the config, e.g. {from: '%s', to: /where/it/is/mounted}",
                    path, rule);
        goto out;
    }
    if (!best) { /* relative, or POSIX that no rule claims: as it is */
        if (!(*out = sf_strdup(path)))
            rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
        goto out;
    }
    /* Resolve `..` in the remainder in place: comps[best->from.n_comps ..
     * top) is the stack; a `..` on an empty stack would leave `to`. */
    size_t base = best->from.n_comps, top = base;
    for (size_t i = base; i < p.n_comps; i++) {
        if (strcmp(p.comps[i], "..") != 0) {
            p.comps[top++] = p.comps[i];
        } else if (top > base) {
            top--;
        } else {
            rc = SF_ERR(err, SF_E_INPUT, "'%s' climbs above '%s' with '..' (the path_map rule for '%s' maps no higher)",
                        path, best->to, best->from_text);
            goto out;
        }
    }
    if (!(*out = s_join_comps(best->to, p.comps + base, top - base)))
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
out:
    s_path_free(&p);
    return rc;
}

/* ---- media roots ---------------------------------------------------------- */

/* True when `real` is `root` or lies below it (both resolved). */
static bool s_under(const char *real, const char *root)
{
    size_t n = strlen(root);
    if (strncmp(real, root, n) != 0)
        return false;
    return real[n] == '\0' || real[n] == '/' || (n == 1 && root[0] == '/');
}

sf_rc sf_pathmap_check_root(const sf_pathmap_t *m, const char *path, char **real_out, sf_err_t *err)
{
    char real[PATH_MAX], root[PATH_MAX];
    if (real_out)
        *real_out = NULL;
    if (!realpath(path, real)) {
        char reason[256];
        snprintf(reason, sizeof reason, "%s", strerror(errno));
        reason[0] = (char)tolower((unsigned char)reason[0]);
        return SF_ERR(err, SF_E_IO, "cannot resolve '%s': %s", path, reason);
    }
    bool ok = sf_pathmap_n_roots(m) == 0;
    /* Roots resolve at each check: a mount may appear after start-up, and
     * a root that is a symlink compares as its target. */
    for (size_t i = 0; !ok && i < m->n_roots; i++)
        ok = realpath(m->roots[i], root) && s_under(real, root);
    if (!ok) {
        char list[1024];
        size_t len = 0;
        list[0] = '\0';
        for (size_t i = 0; i < m->n_roots && len < sizeof list; i++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s'%s'", i ? ", " : "", m->roots[i]);
        if (strcmp(real, path) != 0)
            return SF_ERR(err, SF_E_INPUT, "'%s' resolves to '%s', outside the media roots (%s)", path, real, list);
        return SF_ERR(err, SF_E_INPUT, "'%s' is outside the media roots (%s)", path, list);
    }
    if (real_out && !(*real_out = sf_strdup(real)))
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    return SF_OK;
}

sf_media_mode_t sf_pathmap_media(const sf_pathmap_t *m) { return m ? m->media : SF_MEDIA_SHARED; }
const char *sf_pathmap_cache_dir(const sf_pathmap_t *m) { return m ? m->cache_dir : NULL; }
uint64_t sf_pathmap_cache_max_bytes(const sf_pathmap_t *m) { return m ? m->cache_max_bytes : 0; }

sf_rc sf_pathmap_parse_size(const char *text, uint64_t *out, sf_err_t *err)
{
    const char *p = text;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*p))
        goto bad;
    for (; isdigit((unsigned char)*p); p++) {
        if (v > (UINT64_MAX - 9) / 10)
            goto bad;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    unsigned shift = 0;
    switch (toupper((unsigned char)*p)) {
    case '\0': break;
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    default: goto bad;
    }
    if (*p && p[1])
        goto bad;
    /* Above 2^62 bytes no disk exists: the bound keeps sums from overflowing. */
    if (v == 0 || v > (UINT64_C(1) << 62) >> shift)
        goto bad;
    *out = v << shift;
    return SF_OK;
bad:
    return SF_ERR(
        err, SF_E_INPUT,
        "invalid size '%s' (expected a whole number of bytes above 0 with an optional K, M, G or T suffix, e.g. 20G)",
        text);
}

/* ---- the config file ------------------------------------------------------ */

typedef struct {
    sf_yamldoc_t y;
    sf_pathmap_t *map;
    sf_rc rc;                      /* SF_E_NOMEM once an allocation failed */
    const yaml_node_t **rule_from; /* owned: the `from` node of every rule added, for duplicates */
} s_cfg_t;

#define s_cfg_error(c, at, ...) sf_yamldoc_error(&(c)->y, at, __VA_ARGS__)

/* A non-empty scalar, or NULL (reported as `what`). */
static const char *s_cfg_string(s_cfg_t *c, const yaml_node_t *n, const char *what)
{
    if (n->type != YAML_SCALAR_NODE || sf_yamldoc_is_null(n)) {
        s_cfg_error(c, n, "%s must be a path, not %s", what, sf_yamldoc_kind(n));
        return NULL;
    }
    if (!*sf_yamldoc_text(n)) {
        s_cfg_error(c, n, "%s must not be empty", what);
        return NULL;
    }
    return sf_yamldoc_text(n);
}

static void s_cfg_roots(s_cfg_t *c, const yaml_node_t *list)
{
    if (list->type != YAML_SEQUENCE_NODE) {
        s_cfg_error(c, list, "'media_roots' must be a list of folders, not %s", sf_yamldoc_kind(list));
        return;
    }
    for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top; it++) {
        const yaml_node_t *n = sf_yamldoc_node(&c->y, *it);
        const char *text = s_cfg_string(c, n, "a media root");
        sf_err_t e = {0};
        sf_rc rc = text ? sf_pathmap_add_root(c->map, text, &e) : SF_OK;
        if (rc == SF_E_NOMEM)
            c->rc = rc;
        else if (rc)
            s_cfg_error(c, n, "%s", e.msg);
    }
}

/* The `from` node of the rule already added whose prefix equals p's. */
static const yaml_node_t *s_cfg_duplicate(const s_cfg_t *c, const s_path_t *p)
{
    for (size_t i = 0; i < c->map->n_rules; i++) {
        const s_path_t *q = &c->map->rules[i].from;
        if (q->n_comps == p->n_comps && s_prefix_of(q, p))
            return c->rule_from[i];
    }
    return NULL;
}

static void s_cfg_rule(s_cfg_t *c, const yaml_node_t *item, size_t index)
{
    if (item->type != YAML_MAPPING_NODE) {
        s_cfg_error(c, item, "path_map entry %zu must be a mapping with 'from' and 'to', not %s", index + 1,
                    sf_yamldoc_kind(item));
        return;
    }
    static const char *const keys[] = {"from", "to", NULL};
    const yaml_node_t *v[2];
    char what[64];
    snprintf(what, sizeof what, "path_map entry %zu", index + 1);
    sf_yamldoc_fields(&c->y, item, what, keys, v);
    const yaml_node_t *from = v[0], *to = v[1];
    if (!from || !to) {
        s_cfg_error(c, item, "path_map entry %zu needs '%s'", index + 1, !from ? "from" : "to");
        return;
    }
    const char *from_text = s_cfg_string(c, from, "'from'");
    const char *to_text = s_cfg_string(c, to, "'to'");
    if (!from_text || !to_text)
        return;
    s_path_t p;
    char *target = NULL;
    sf_err_t e = {0};
    sf_rc rc = s_from_parse(from_text, &p, &e);
    if (rc) {
        if (rc == SF_E_NOMEM)
            c->rc = rc;
        else
            s_cfg_error(c, from, "%s", e.msg);
        return;
    }
    const yaml_node_t *first = s_cfg_duplicate(c, &p);
    if (first) {
        s_cfg_error(c, from, "a second path_map rule for '%s' (the first is at line %u)", from_text,
                    (unsigned)first->start_mark.line + 1);
        s_path_free(&p);
        return;
    }
    if ((rc = s_posix_normal(to_text, "'to' path", &target, &e))) {
        if (rc == SF_E_NOMEM)
            c->rc = rc;
        else
            s_cfg_error(c, to, "%s", e.msg);
        s_path_free(&p);
        return;
    }
    const yaml_node_t **grown = sf_realloc(c->rule_from, (c->map->n_rules + 1) * sizeof *grown);
    if (!grown) {
        c->rc = SF_E_NOMEM;
        s_path_free(&p);
        sf_free(target);
        return;
    }
    c->rule_from = grown;
    c->rule_from[c->map->n_rules] = from;
    if (s_add_parsed(c->map, from_text, &p, &target, NULL))
        c->rc = SF_E_NOMEM;
}

static void s_cfg_rules(s_cfg_t *c, const yaml_node_t *list)
{
    if (list->type != YAML_SEQUENCE_NODE) {
        s_cfg_error(c, list, "'path_map' must be a list of {from, to} rules, not %s", sf_yamldoc_kind(list));
        return;
    }
    size_t index = 0;
    for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top && !c->rc; it++)
        s_cfg_rule(c, sf_yamldoc_node(&c->y, *it), index++);
}

static void s_cfg_media(s_cfg_t *c, const yaml_node_t *v)
{
    const char *text = v->type == YAML_SCALAR_NODE ? sf_yamldoc_text(v) : "";
    if (!strcmp(text, "shared"))
        c->map->media = SF_MEDIA_SHARED;
    else if (!strcmp(text, "ship"))
        c->map->media = SF_MEDIA_SHIP;
    else if (v->type != YAML_SCALAR_NODE)
        s_cfg_error(c, v, "'media' must be shared or ship, not %s", sf_yamldoc_kind(v));
    else
        s_cfg_error(c, v, "unknown media mode '%s' (expected shared or ship)", text);
}

static void s_cfg_cache(s_cfg_t *c, const yaml_node_t *map)
{
    if (map->type != YAML_MAPPING_NODE) {
        s_cfg_error(c, map, "'cache' must be a mapping with dir and max_size, not %s", sf_yamldoc_kind(map));
        return;
    }
    static const char *const keys[] = {"dir", "max_size", NULL};
    const yaml_node_t *v[2];
    sf_yamldoc_fields(&c->y, map, "cache", keys, v);
    const yaml_node_t *dir = v[0], *max = v[1];
    sf_err_t e = {0};
    const char *text;
    if (dir && (text = s_cfg_string(c, dir, "cache dir"))) {
        sf_rc rc = s_posix_normal(text, "cache dir", &c->map->cache_dir, &e);
        if (rc == SF_E_NOMEM)
            c->rc = rc;
        else if (rc)
            s_cfg_error(c, dir, "%s", e.msg);
    }
    if (max) {
        if (max->type != YAML_SCALAR_NODE || sf_yamldoc_is_null(max))
            s_cfg_error(c, max, "cache max_size must be a size such as 20G, not %s", sf_yamldoc_kind(max));
        else if (sf_pathmap_parse_size(sf_yamldoc_text(max), &c->map->cache_max_bytes, &e))
            s_cfg_error(c, max, "cache max_size: %s", e.msg);
    }
}

static void s_cfg_top(s_cfg_t *c, const yaml_node_t *root)
{
    if (root->type != YAML_MAPPING_NODE) {
        s_cfg_error(c, root, "the top level must be a mapping with media_roots and path_map, not %s",
                    sf_yamldoc_kind(root));
        return;
    }
    static const char *const keys[] = {"media_roots", "path_map", "media", "cache", NULL};
    const yaml_node_t *v[4];
    sf_yamldoc_fields(&c->y, root, NULL, keys, v);
    const yaml_node_t *roots = v[0], *rules = v[1], *media = v[2], *cache = v[3];
    if (roots)
        s_cfg_roots(c, roots);
    if (rules && !c->rc)
        s_cfg_rules(c, rules);
    if (media)
        s_cfg_media(c, media);
    if (cache && !c->rc)
        s_cfg_cache(c, cache);
}

sf_rc sf_pathmap_load_text(const char *path, const char *yaml, size_t n_bytes, sf_pathmap_t **out, sf_diags_t *diags,
                           sf_err_t *err)
{
    sf_diags_t local = SF_DIAGS_INIT;
    if (!diags)
        diags = &local;
    *out = NULL;
    size_t n_errors_before = diags->n_errors;
    int nomem_before = diags->nomem;
    s_cfg_t c = {0};
    sf_rc rc = sf_pathmap_new(&c.map, err);
    const yaml_node_t *root = NULL;
    if (rc == SF_OK)
        rc = sf_yamldoc_parse(&c.y, path, yaml, n_bytes, diags, &root, err);
    if (rc == SF_OK && c.y.loaded) {
        if (!root || sf_yamldoc_is_null(root))
            s_cfg_error(&c, root, "the config file is empty (expected media_roots and path_map)");
        else
            s_cfg_top(&c, root);
    }
    sf_diags_sort(diags);
    if (rc == SF_OK && (c.rc || (diags->nomem && !nomem_before))) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
    } else if (rc == SF_OK && diags->n_errors > n_errors_before) {
        size_t n = diags->n_errors - n_errors_before;
        rc = SF_ERR(err, SF_E_INPUT, "'%s' has %zu error%s", path, n, n == 1 ? "" : "s");
    } else if (rc == SF_OK) {
        *out = c.map;
        c.map = NULL;
    }
    sf_yamldoc_free(&c.y);
    sf_pathmap_destroy(&c.map);
    sf_free(c.rule_from);
    if (diags == &local)
        sf_diags_free(&local);
    return rc;
}

sf_rc sf_pathmap_load(const char *path, sf_pathmap_t **out, sf_diags_t *diags, sf_err_t *err)
{
    *out = NULL;
    char *text = NULL;
    size_t n = 0;
    /* A config is a few lines: anything this large is not one. */
    sf_rc rc = sf_yamldoc_read_file(path, 1u << 20, "stemfarm config", &text, &n, err);
    if (rc == SF_E_INPUT && diags)
        sf_diags_add(diags, SF_DIAG_ERROR, path, 0, 0, "larger than 1 MiB: not a stemfarm config");
    if (rc == SF_OK)
        rc = sf_pathmap_load_text(path, text, n, out, diags, err);
    sf_free(text);
    return rc;
}
