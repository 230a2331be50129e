/* sf/error.h -- errors as values.
 *
 * Every fallible function in common/ returns an sf_rc (0 ok, negative error)
 * and takes an optional trailing `sf_err_t *err` that receives a one-line,
 * human message plus the raise site. Bad input of a session file is not a
 * single error but a list of problems, each at file:line:col: that is
 * sf_diags_t, which loaders fill so that every problem is reported at once.
 *
 * common/ never prints: executables format and print errors and diagnostics.
 */
#ifndef SF_ERROR_H
#define SF_ERROR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef int sf_rc;

enum {
    SF_OK = 0,
    SF_E_NOMEM = -1,    /* an allocation failed */
    SF_E_INPUT = -2,    /* bad input: session, audio file, command line */
    SF_E_IO = -3,       /* a file could not be read or written */
    SF_E_PROTO = -4,    /* a malformed or out-of-range network message */
    SF_E_RENDER = -5,   /* rendering failed */
    SF_E_VERIFY = -6,   /* a delivered file did not verify */
    SF_E_FARM = -7,     /* no nodes, lost coordinator, timeouts */
    SF_E_INTERNAL = -8, /* a bug: an invariant did not hold */
};

typedef struct sf_err {
    sf_rc code;       /* 0 while no error was raised */
    char msg[512];    /* lowercase, no trailing full stop */
    const char *file; /* raise site */
    int line;
} sf_err_t;

/* Records an error in *err (which may be NULL) and returns `code`, so that
 * `return SF_ERR(err, SF_E_IO, "cannot open '%s'", path);` reads naturally. */
#define SF_ERR(err, code, ...) sf_err_set((err), (code), __FILE__, __LINE__, __VA_ARGS__)

sf_rc sf_err_set(sf_err_t *err, sf_rc code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Prefixes an existing message: "reading 'x.wav': " + old message. */
void sf_err_prefix(sf_err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void sf_err_clear(sf_err_t *err);

/* Short name of a code ("bad input", "i/o error", ...). Never NULL. */
const char *sf_rc_name(sf_rc code);

/* ---- diagnostics: a list of problems found in an input file ---------- */

typedef enum { SF_DIAG_ERROR, SF_DIAG_WARNING } sf_diag_severity_t;

typedef struct {
    sf_diag_severity_t severity;
    char *file;    /* as given by the caller (owned) */
    uint32_t line; /* 1-based; 0 when the problem has no position */
    uint32_t col;  /* 1-based */
    char *msg;     /* owned; lowercase, quoted subject, no full stop */
} sf_diag_t;

typedef struct {
    sf_diag_t *items; /* owned, n_items of them */
    size_t n_items;
    size_t cap;
    size_t n_errors;
    size_t n_warnings;
    int nomem; /* set if a diagnostic could not be recorded */
} sf_diags_t;

#define SF_DIAGS_INIT                                                                                                  \
    {                                                                                                                  \
        0                                                                                                              \
    }

/* Appends a diagnostic. Never fails: on allocation failure sets d->nomem. */
void sf_diags_add(sf_diags_t *d, sf_diag_severity_t sev, const char *file, uint32_t line, uint32_t col, const char *fmt,
                  ...) __attribute__((format(printf, 6, 7)));

/* Turns every warning into an error (--strict). */
void sf_diags_promote_warnings(sf_diags_t *d);

/* Sorts by file, line, col (stable), so output reads top to bottom. */
void sf_diags_sort(sf_diags_t *d);

/* Writes "file:line:col: error: msg" (compiler style), one line per item. */
void sf_diags_print(const sf_diags_t *d, FILE *out);

/* The same lines as one string without the last newline (for a message
 * that travels: an event, a Done), or NULL when out of memory; free(3). */
char *sf_diags_text(const sf_diags_t *d);

void sf_diags_free(sf_diags_t *d);

#endif
