/* yamldoc.c -- small YAML files as libyaml documents (sf/yamldoc.h). */
#include "sf/yamldoc.h"

#include "sf/alloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* "1 MiB", "640 KiB": for messages about a limit. */
static void s_size_text(size_t n, char *buf, size_t cap)
{
    if (n >= (1u << 20) && n % (1u << 20) == 0)
        snprintf(buf, cap, "%zu MiB", n >> 20);
    else
        snprintf(buf, cap, "%zu KiB", n >> 10);
}

sf_rc sf_yamldoc_read_file(const char *path, size_t max_bytes, const char *what, char **text, size_t *n_bytes,
                           sf_err_t *err)
{
    char limit[32];
    s_size_text(max_bytes, limit, sizeof limit);
    *text = NULL;
    *n_bytes = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        char reason[256];
        snprintf(reason, sizeof reason, "%s", strerror(errno));
        reason[0] = (char)tolower((unsigned char)reason[0]);
        return SF_ERR(err, SF_E_IO, "cannot open '%s': %s", path, reason);
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    sf_rc rc = SF_OK;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > max_bytes) {
                rc = SF_ERR(err, SF_E_INPUT, "'%s' is larger than %s: not a %s", path, limit, what);
                goto out;
            }
            cap = cap ? 2 * cap : 4096;
            char *bigger = sf_realloc(buf, cap);
            if (!bigger) {
                rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
                goto out;
            }
            buf = bigger;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        rc = SF_ERR(err, SF_E_IO, "cannot read '%s'", path);
    } else if (n > max_bytes) {
        rc = SF_ERR(err, SF_E_INPUT, "'%s' is larger than %s: not a %s", path, limit, what);
    } else {
        buf[n] = '\0';
        *text = buf;
        *n_bytes = n;
        buf = NULL;
    }
out:
    fclose(f);
    sf_free(buf);
    return rc;
}

void sf_yamldoc_error(sf_yamldoc_t *y, const yaml_node_t *at, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* libyaml counts from 0. */
    uint32_t line = at ? (uint32_t)at->start_mark.line + 1 : 0, col = at ? (uint32_t)at->start_mark.column + 1 : 0;
    sf_diags_add(y->diags, SF_DIAG_ERROR, y->file, line, col, "%s", msg);
}

/* libyaml's complaint at its position (reader errors carry only a byte
 * offset: the line is counted from it). */
static void s_parser_error(sf_yamldoc_t *y, const yaml_parser_t *p, const char *text, size_t n_bytes)
{
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_READER_ERROR) {
        uint32_t line = 1;
        for (size_t i = 0; i < p->problem_offset && i < n_bytes; i++)
            line += text[i] == '\n';
        sf_diags_add(y->diags, SF_DIAG_ERROR, y->file, line, 1, "invalid YAML: %s", problem);
        return;
    }
    uint32_t line = (uint32_t)p->problem_mark.line + 1, col = (uint32_t)p->problem_mark.column + 1;
    if (p->context) /* where it began: an unclosed quote is found only at the end */
        sf_diags_add(y->diags, SF_DIAG_ERROR, y->file, line, col, "invalid YAML: %s (%s at line %u)", problem,
                     p->context, (unsigned)p->context_mark.line + 1);
    else
        sf_diags_add(y->diags, SF_DIAG_ERROR, y->file, line, col, "invalid YAML: %s", problem);
}

sf_rc sf_yamldoc_parse(sf_yamldoc_t *y, const char *file, const char *text, size_t n_bytes, sf_diags_t *diags,
                       const yaml_node_t **root, sf_err_t *err)
{
    memset(y, 0, sizeof *y);
    y->file = file;
    y->diags = diags;
    *root = NULL;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, n_bytes);
    sf_rc rc = SF_OK;
    if (!yaml_parser_load(&parser, &y->doc)) {
        if (parser.error == YAML_MEMORY_ERROR)
            rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
        else
            s_parser_error(y, &parser, text, n_bytes);
    } else {
        y->loaded = true;
        *root = yaml_document_get_root_node(&y->doc);
    }
    yaml_parser_delete(&parser);
    return rc;
}

void sf_yamldoc_free(sf_yamldoc_t *y)
{
    if (y->loaded)
        yaml_document_delete(&y->doc);
    y->loaded = false;
}

const yaml_node_t *sf_yamldoc_node(sf_yamldoc_t *y, int index) { return yaml_document_get_node(&y->doc, index); }

const char *sf_yamldoc_text(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : "";
}

bool sf_yamldoc_is_null(const yaml_node_t *n)
{
    if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *t = sf_yamldoc_text(n);
    return !*t || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") || !strcmp(t, "NULL");
}

const char *sf_yamldoc_kind(const yaml_node_t *n)
{
    if (!n || sf_yamldoc_is_null(n))
        return "empty";
    return n->type == YAML_MAPPING_NODE ? "a mapping" : n->type == YAML_SEQUENCE_NODE ? "a list" : "a value";
}

bool sf_yamldoc_fields(sf_yamldoc_t *y, const yaml_node_t *map, const char *what, const char *const *keys,
                       const yaml_node_t **values)
{
    char expected[512] = "";
    size_t n_keys = 0, used = 0;
    for (; keys[n_keys]; n_keys++) {
        values[n_keys] = NULL;
        int w = snprintf(expected + used, sizeof expected - used, "%s%s", n_keys ? ", " : "", keys[n_keys]);
        used += w > 0 && (size_t)w < sizeof expected - used ? (size_t)w : 0;
    }
    if (!map || map->type != YAML_MAPPING_NODE)
        return false;
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top; pr++) {
        const yaml_node_t *k = sf_yamldoc_node(y, pr->key), *v = sf_yamldoc_node(y, pr->value);
        const char *key = sf_yamldoc_text(k);
        size_t i = 0;
        while (i < n_keys && strcmp(keys[i], key) != 0)
            i++;
        if (i == n_keys)
            sf_yamldoc_error(y, k, "unknown key '%s'%s%s (expected %s)", key, what ? " in " : "", what ? what : "",
                             expected);
        else if (values[i])
            sf_yamldoc_error(y, k, "duplicate key '%s'%s%s", key, what ? " in " : "", what ? what : "");
        else
            values[i] = v;
    }
    return true;
}
