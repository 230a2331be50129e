/* value.c -- the value forms of the session format (see sf/value.h).
 *
 * Times are converted with integer arithmetic only: a decimal such as
 * "1:02.250" is read as an integer count of 10^-d seconds and scaled to
 * frames exactly, rounding half away from zero. Numbers (levels, pan) go
 * through strtod, but only after a strict syntax check, so "nan", "inf",
 * "0x10" and "1e" never reach it.
 *
 * Nothing here allocates.
 */
#include "sf/value.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Fraction digits are kept exactly as an integer below 10^13 (seconds) or
 * 10^10 (milliseconds), so that (fraction * rate) stays below 2^63 for any
 * rate up to 384000 (and the 8-bit headroom of int64 covers the rest). */
#define S_MAX_SCALE_DIGITS 13
#define S_MAX_RATE         384000

static bool s_is_digit(char c) { return c >= '0' && c <= '9'; }

/* Reads a run of digits as an unsigned integer. Returns the number of digits
 * read (0 if none); *overflow is set when the value does not fit. */
static size_t s_read_uint(const char *p, int64_t *out, bool *overflow)
{
    size_t n = 0;
    int64_t v = 0;
    while (s_is_digit(p[n])) {
        int d = p[n] - '0';
        if (v > (INT64_MAX - d) / 10)
            *overflow = true;
        else
            v = v * 10 + d;
        n++;
    }
    *out = v;
    return n;
}

/* A parsed decimal: whole + frac / 10^n_frac_digits (trailing zeros of the
 * fraction dropped). */
typedef struct {
    int64_t whole;
    int64_t frac;
    int n_frac_digits;
    bool too_precise; /* more significant fraction digits than we keep */
} s_decimal_t;

/* Reads "digits[.digits]" at p; returns the characters consumed, 0 if p does
 * not start with a digit. A '.' must have digits on both sides. */
static size_t s_read_decimal(const char *p, s_decimal_t *dec, bool *overflow)
{
    memset(dec, 0, sizeof *dec);
    size_t n = s_read_uint(p, &dec->whole, overflow);
    if (n == 0)
        return 0;
    if (p[n] != '.')
        return n;
    size_t first = n + 1, last = first;
    while (s_is_digit(p[last]))
        last++;
    if (last == first)
        return 0; /* "1." */
    size_t end = last;
    while (last > first && p[last - 1] == '0')
        last--;
    if (last - first > S_MAX_SCALE_DIGITS) {
        dec->too_precise = true;
        return end;
    }
    for (size_t i = first; i < last; i++)
        dec->frac = dec->frac * 10 + (p[i] - '0');
    dec->n_frac_digits = (int)(last - first);
    return end;
}

static int64_t s_pow10(int n)
{
    int64_t v = 1;
    while (n-- > 0)
        v *= 10;
    return v;
}

/* round(num / den) for num >= 0, den > 0, halves away from zero. */
static int64_t s_div_round(int64_t num, int64_t den)
{
    int64_t q = num / den, r = num % den;
    if (r >= den - r)
        q++;
    return q;
}

/* frames = round((whole + frac / 10^d) / unit_div * rate); false on overflow. */
static bool s_decimal_to_frames(const s_decimal_t *dec, int64_t unit_div, int rate, int64_t *out)
{
    /* Split whole = a * unit_div + b so that everything below one second is a
     * fraction (b * 10^d + frac) / (unit_div * 10^d) of one second. */
    int64_t scale = s_pow10(dec->n_frac_digits);
    int64_t den = unit_div * scale;
    int64_t a = dec->whole / unit_div, b = dec->whole % unit_div;
    int64_t part = s_div_round((b * scale + dec->frac) * (int64_t)rate, den);
    int64_t frames;
    if (__builtin_mul_overflow(a, (int64_t)rate, &frames) || __builtin_add_overflow(frames, part, &frames))
        return false;
    *out = frames;
    return true;
}

#define S_TIME_FORMS "expected samples, seconds like 2.5s, milliseconds like 375ms, m:ss.mmm or h:mm:ss.mmm"

/* Timecode "m:ss[.frac]" or "h:mm:ss[.frac]" at p (after the sign). */
static sf_rc s_timecode(const char *text, const char *p, int rate, int64_t *out, sf_err_t *err)
{
    int64_t parts[3];
    size_t n_parts = 0;
    bool overflow = false;
    s_decimal_t sec;
    for (;;) {
        const char *colon = strchr(p, ':');
        if (!colon)
            break;
        if (n_parts == 2)
            return SF_ERR(err, SF_E_INPUT, "invalid time '%s' (%s)", text, S_TIME_FORMS);
        size_t n = s_read_uint(p, &parts[n_parts], &overflow);
        if (n == 0 || p + n != colon || (n_parts > 0 && n != 2))
            return SF_ERR(err, SF_E_INPUT, "invalid time '%s' (%s)", text, S_TIME_FORMS);
        n_parts++;
        p = colon + 1;
    }
    size_t n = s_read_decimal(p, &sec, &overflow);
    /* Seconds always have two digits before the fraction: "1:05", not "1:5". */
    if (n == 0 || p[n] != '\0' || !(s_is_digit(p[0]) && s_is_digit(p[1]) && !s_is_digit(p[2])))
        return SF_ERR(err, SF_E_INPUT, "invalid time '%s' (%s)", text, S_TIME_FORMS);
    if (sec.too_precise)
        return SF_ERR(err, SF_E_INPUT, "invalid time '%s' (too many decimal places)", text);
    if (sec.whole >= 60)
        return SF_ERR(err, SF_E_INPUT, "invalid time '%s' (seconds must be below 60)", text);
    if (n_parts == 2 && parts[1] >= 60)
        return SF_ERR(err, SF_E_INPUT, "invalid time '%s' (minutes must be below 60)", text);
    int64_t total = 0;
    for (size_t i = 0; i < n_parts; i++)
        if (__builtin_mul_overflow(total, (int64_t)60, &total) || __builtin_add_overflow(total, parts[i], &total))
            overflow = true;
    if (overflow || __builtin_mul_overflow(total, (int64_t)60, &total) ||
        __builtin_add_overflow(total, sec.whole, &sec.whole) || !s_decimal_to_frames(&sec, 1, rate, out))
        return SF_ERR(err, SF_E_INPUT, "invalid time '%s' (too large)", text);
    return SF_OK;
}

sf_rc sf_value_time(const char *text, int sample_rate, bool allow_negative, int64_t *out_frames, sf_err_t *err)
{
    if (sample_rate <= 0 || sample_rate > S_MAX_RATE)
        return SF_ERR(err, SF_E_INTERNAL, "sample rate %d out of range", sample_rate);
    const char *p = text;
    bool negative = false;
    if (*p == '-' || *p == '+') {
        negative = *p == '-';
        p++;
    }
    int64_t frames = 0;
    if (strchr(p, ':')) {
        sf_rc rc = s_timecode(text, p, sample_rate, &frames, err);
        if (rc)
            return rc;
    } else {
        bool overflow = false;
        s_decimal_t dec;
        size_t n = s_read_decimal(p, &dec, &overflow);
        const char *unit = p + n;
        if (n == 0)
            return SF_ERR(err, SF_E_INPUT, "invalid time '%s' (%s)", text, S_TIME_FORMS);
        if (strcmp(unit, "") == 0) {
            if (memchr(p, '.', n))
                return SF_ERR(err, SF_E_INPUT,
                              "invalid time '%s' (samples must be a whole number; "
                              "write %ss for seconds)",
                              text, p);
            if (overflow)
                return SF_ERR(err, SF_E_INPUT, "invalid time '%s' (too large)", text);
            frames = dec.whole;
        } else if (strcmp(unit, "s") == 0 || strcmp(unit, "ms") == 0) {
            int64_t unit_div = unit[0] == 'm' ? 1000 : 1;
            if (dec.too_precise || dec.n_frac_digits > S_MAX_SCALE_DIGITS - (unit_div == 1 ? 0 : 3))
                return SF_ERR(err, SF_E_INPUT, "invalid time '%s' (too many decimal places)", text);
            if (overflow || !s_decimal_to_frames(&dec, unit_div, sample_rate, &frames))
                return SF_ERR(err, SF_E_INPUT, "invalid time '%s' (too large)", text);
        } else {
            return SF_ERR(err, SF_E_INPUT, "invalid time '%s' (%s)", text, S_TIME_FORMS);
        }
    }
    if (negative && frames != 0 && !allow_negative)
        return SF_ERR(err, SF_E_INPUT, "invalid time '%s' (must not be negative)", text);
    *out_frames = negative ? -frames : frames;
    return SF_OK;
}

/* Strict decimal syntax: [+-]digits[.digits][(e|E)[+-]digits]. */
static bool s_is_number(const char *p)
{
    if (*p == '+' || *p == '-')
        p++;
    if (!s_is_digit(*p))
        return false;
    while (s_is_digit(*p))
        p++;
    if (*p == '.') {
        p++;
        if (!s_is_digit(*p))
            return false;
        while (s_is_digit(*p))
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!s_is_digit(*p))
            return false;
        while (s_is_digit(*p))
            p++;
    }
    return *p == '\0';
}

/* Parses a finite number; false if the text is not one (or overflows). */
static bool s_parse_number(const char *text, double *out)
{
    if (!s_is_number(text))
        return false;
    char *end;
    double v = strtod(text, &end);
    if (*end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

sf_rc sf_value_level_db(const char *text, double *out_db, sf_err_t *err)
{
    /* "-.inf" is how YAML itself spells minus infinity. */
    if (strcmp(text, "-inf") == 0 || strcmp(text, "-.inf") == 0 || strcmp(text, "-.Inf") == 0 ||
        strcmp(text, "-.INF") == 0) {
        *out_db = -(double)INFINITY;
        return SF_OK;
    }
    double v;
    if (!s_parse_number(text, &v))
        return SF_ERR(err, SF_E_INPUT, "invalid level '%s' (expected a number of dB or -inf)", text);
    *out_db = v;
    return SF_OK;
}

double sf_value_db_to_gain(double db)
{
    if (isinf(db) && db < 0)
        return 0.0;
    return pow(10.0, db / 20.0);
}

sf_rc sf_value_pan(const char *text, double *out_pan, sf_err_t *err)
{
    double v;
    if (!s_parse_number(text, &v))
        return SF_ERR(err, SF_E_INPUT, "invalid pan '%s' (expected a number from -1 to +1)", text);
    if (v < -1.0 || v > 1.0)
        return SF_ERR(err, SF_E_INPUT, "invalid pan '%s' (must be between -1 and +1)", text);
    *out_pan = v;
    return SF_OK;
}

sf_rc sf_value_number(const char *text, double lo, double hi, double *out, sf_err_t *err)
{
    double v;
    if (!s_parse_number(text, &v))
        return SF_ERR(err, SF_E_INPUT, "invalid number '%s'", text);
    if (v < lo || v > hi)
        return SF_ERR(err, SF_E_INPUT, "invalid number '%s' (must be between %g and %g)", text, lo, hi);
    *out = v;
    return SF_OK;
}

sf_rc sf_value_int(const char *text, int64_t lo, int64_t hi, int64_t *out, sf_err_t *err)
{
    const char *p = text;
    bool negative = false, overflow = false;
    if (*p == '-' || *p == '+') {
        negative = *p == '-';
        p++;
    }
    int64_t v;
    size_t n = s_read_uint(p, &v, &overflow);
    if (n == 0 || p[n] != '\0')
        return SF_ERR(err, SF_E_INPUT, "invalid integer '%s'", text);
    if (negative)
        v = -v;
    if (overflow || v < lo || v > hi)
        return SF_ERR(err, SF_E_INPUT, "invalid integer '%s' (must be between %lld and %lld)", text, (long long)lo,
                      (long long)hi);
    *out = v;
    return SF_OK;
}

sf_rc sf_value_bool(const char *text, bool *out, sf_err_t *err)
{
    if (strcmp(text, "true") == 0)
        *out = true;
    else if (strcmp(text, "false") == 0)
        *out = false;
    else
        return SF_ERR(err, SF_E_INPUT, "invalid boolean '%s' (expected true or false)", text);
    return SF_OK;
}

/* Steps over one UTF-8 character, so that '?' matches "é" as one. */
static const char *s_next_char(const char *s)
{
    s++;
    while ((*s & 0xC0) == 0x80)
        s++;
    return s;
}

bool sf_value_glob_match(const char *pattern, const char *name)
{
    /* Iterative with one backtrack point, the last '*' seen: never
     * exponential, whatever the pattern. */
    const char *p = pattern, *n = name;
    const char *star = NULL, *star_n = NULL;
    while (*n) {
        if (*p == '*') {
            star = p++;
            star_n = n;
        } else if (*p == '?') {
            p++;
            n = s_next_char(n);
        } else if (*p == *n) {
            p++;
            n++;
        } else if (star) {
            p = star + 1;
            n = star_n = s_next_char(star_n);
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}
