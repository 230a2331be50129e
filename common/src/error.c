/* error.c -- error values and diagnostic lists (see sf/error.h). */
#include "sf/error.h"

#include "sf/alloc.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

sf_rc sf_err_set(sf_err_t *err, sf_rc code, const char *file, int line, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    err->file = file;
    err->line = line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void sf_err_prefix(sf_err_t *err, const char *fmt, ...)
{
    if (!err)
        return;
    char prefix[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char joined[sizeof err->msg + 128];
    snprintf(joined, sizeof joined, "%s%s", prefix, err->msg);
    snprintf(err->msg, sizeof err->msg, "%.*s", (int)sizeof err->msg - 1, joined);
}

void sf_err_clear(sf_err_t *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

const char *sf_rc_name(sf_rc code)
{
    switch (code) {
    case SF_OK: return "ok";
    case SF_E_NOMEM: return "out of memory";
    case SF_E_INPUT: return "bad input";
    case SF_E_IO: return "i/o error";
    case SF_E_PROTO: return "protocol error";
    case SF_E_RENDER: return "render failed";
    case SF_E_VERIFY: return "verification failed";
    case SF_E_FARM: return "farm failure";
    case SF_E_INTERNAL: return "internal error";
    default: return "unknown error";
    }
}

void sf_diags_add(sf_diags_t *d, sf_diag_severity_t sev, const char *file, uint32_t line, uint32_t col, const char *fmt,
                  ...)
{
    if (d->n_items == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        sf_diag_t *items = sf_realloc(d->items, cap * sizeof *items);
        if (!items) {
            d->nomem = 1;
            return;
        }
        d->items = items;
        d->cap = cap;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sf_diag_t item = {.severity = sev, .line = line, .col = col};
    item.file = sf_strdup(file ? file : "");
    item.msg = sf_strdup(msg);
    if (!item.file || !item.msg) {
        sf_free(item.file);
        sf_free(item.msg);
        d->nomem = 1;
        return;
    }
    d->items[d->n_items++] = item;
    if (sev == SF_DIAG_ERROR)
        d->n_errors++;
    else
        d->n_warnings++;
}

void sf_diags_promote_warnings(sf_diags_t *d)
{
    for (size_t i = 0; i < d->n_items; i++)
        d->items[i].severity = SF_DIAG_ERROR;
    d->n_errors += d->n_warnings;
    d->n_warnings = 0;
}

static int s_diag_cmp(const void *a, const void *b)
{
    const sf_diag_t *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    if (c)
        return c;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return 0;
}

void sf_diags_sort(sf_diags_t *d)
{
    /* Insertion sort: stable, and the lists are short. */
    for (size_t i = 1; i < d->n_items; i++) {
        sf_diag_t item = d->items[i];
        size_t j = i;
        while (j > 0 && s_diag_cmp(&d->items[j - 1], &item) > 0) {
            d->items[j] = d->items[j - 1];
            j--;
        }
        d->items[j] = item;
    }
}

void sf_diags_print(const sf_diags_t *d, FILE *out)
{
    for (size_t i = 0; i < d->n_items; i++) {
        const sf_diag_t *it = &d->items[i];
        const char *sev = it->severity == SF_DIAG_ERROR ? "error" : "warning";
        if (it->line)
            fprintf(out, "%s:%u:%u: %s: %s\n", it->file, it->line, it->col, sev, it->msg);
        else
            fprintf(out, "%s: %s: %s\n", it->file, sev, it->msg);
    }
    if (d->nomem)
        fprintf(out, "error: out of memory while recording diagnostics\n");
}

char *sf_diags_text(const sf_diags_t *d)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    if (!f)
        return NULL;
    sf_diags_print(d, f);
    fclose(f);
    if (n && text[n - 1] == '\n')
        text[n - 1] = '\0';
    return text;
}

void sf_diags_free(sf_diags_t *d)
{
    for (size_t i = 0; i < d->n_items; i++) {
        sf_free(d->items[i].file);
        sf_free(d->items[i].msg);
    }
    sf_free(d->items);
    memset(d, 0, sizeof *d);
}
