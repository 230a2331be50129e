/* test_value.c -- the value forms of the session format (sf/value.h):
 * times, levels, pan, numbers, booleans, glob patterns. Table-driven; every
 * rejected value is checked with the exact message a user sees. */
#include "sf/value.h"

#include "testutil.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>

typedef struct {
    const char *text;
    int rate;
    bool allow_negative;
    int64_t frames;
} time_ok_t;

static const time_ok_t time_ok[] = {
    {"0", 48000, false, 0},
    {"48000", 48000, false, 48000},
    {"+12", 48000, false, 12},
    {"2.5s", 48000, false, 120000},
    {"375ms", 48000, false, 18000},
    {"0s", 44100, false, 0},
    {"1:02.250", 48000, false, 2988000},
    {"1:02", 48000, false, 2976000},
    {"0:00.001", 48000, false, 48},
    {"1:00:00.000", 48000, false, 172800000},
    {"10:59:59.5", 8000, false, 316796000},
    {"125:00", 48000, false, 360000000}, /* minutes above 59 in m:ss */
    /* 0.0000104 s * 48000 = 0.4992 frames -> 0; at 96000, 0.9984 -> 1 */
    {"0.0000104s", 48000, false, 0},
    {"0.0000104s", 96000, false, 1},
    /* exact halves round away from zero: 0.0000625 s * 8000 = 0.5 */
    {"0.0000625s", 8000, false, 1},
    {"-0.0000625s", 8000, true, -1},
    {"0.0000624s", 8000, false, 0},
    /* 1/3 ms at 44100 = 14.7 frames: no binary float on the way */
    {"0.1ms", 44100, false, 4},
    {"1.5ms", 44100, false, 66}, /* 66.15 */
    {"22.675737ms", 44100, false, 1000},
    {"0.1s", 44100, false, 4410},
    {"2.50000000000000000000s", 48000, false, 120000}, /* trailing zeros are free */
    {"-1s", 48000, true, -48000},
    {"-0", 48000, false, 0},
    {"-1:00", 48000, true, -2880000},
    {"9223372036854775807", 48000, false, INT64_MAX},
    {"192153584101141s", 48000, false, 9223372036854768000},
};

START_TEST(test_time_ok)
{
    const time_ok_t *t = &time_ok[_i];
    sf_err_t err = {0};
    int64_t frames = -12345;
    sf_rc rc = sf_value_time(t->text, t->rate, t->allow_negative, &frames, &err);
    ck_assert_msg(rc == SF_OK, "'%s': %s", t->text, err.msg);
    ck_assert_msg(frames == t->frames, "'%s' at %d: %lld frames, expected %lld", t->text, t->rate, (long long)frames,
                  (long long)t->frames);
}
END_TEST

typedef struct {
    const char *text;
    bool allow_negative;
    const char *msg;
} time_bad_t;

#define FORMS "expected samples, seconds like 2.5s, milliseconds like 375ms, m:ss.mmm or h:mm:ss.mmm"

static const time_bad_t time_bad[] = {
    {"1:75", false, "invalid time '1:75' (seconds must be below 60)"},
    {"1:60.000", false, "invalid time '1:60.000' (seconds must be below 60)"},
    {"1:60:00", false, "invalid time '1:60:00' (minutes must be below 60)"},
    {"abc", false, "invalid time 'abc' (" FORMS ")"},
    {"", false, "invalid time '' (" FORMS ")"},
    {"-", true, "invalid time '-' (" FORMS ")"},
    {"1.5", false, "invalid time '1.5' (samples must be a whole number; write 1.5s for seconds)"},
    {"-1s", false, "invalid time '-1s' (must not be negative)"},
    {"-48000", false, "invalid time '-48000' (must not be negative)"},
    {"-0:01", false, "invalid time '-0:01' (must not be negative)"},
    {"2.5 s", false, "invalid time '2.5 s' (" FORMS ")"},
    {"2.5sec", false, "invalid time '2.5sec' (" FORMS ")"},
    {"2.s", false, "invalid time '2.s' (" FORMS ")"},
    {".5s", false, "invalid time '.5s' (" FORMS ")"},
    {"1e3", false, "invalid time '1e3' (" FORMS ")"},
    {"0x10", false, "invalid time '0x10' (" FORMS ")"},
    {"1:5", false, "invalid time '1:5' (" FORMS ")"},
    {"1:2:3", false, "invalid time '1:2:3' (" FORMS ")"},
    {"1:00:00:00", false, "invalid time '1:00:00:00' (" FORMS ")"},
    {":30", false, "invalid time ':30' (" FORMS ")"},
    {"1:30s", false, "invalid time '1:30s' (" FORMS ")"},
    {"9223372036854775808", false, "invalid time '9223372036854775808' (too large)"},
    {"192153584101142s", false, "invalid time '192153584101142s' (too large)"},
    {"99999999999999999999s", false, "invalid time '99999999999999999999s' (too large)"},
    {"53375995584:00:00", false, "invalid time '53375995584:00:00' (too large)"},
    {"0.00000000000001s", false, "invalid time '0.00000000000001s' (too many decimal places)"},
    {"0.00000000001ms", false, "invalid time '0.00000000001ms' (too many decimal places)"},
};

START_TEST(test_time_bad)
{
    const time_bad_t *t = &time_bad[_i];
    sf_err_t err = {0};
    int64_t frames = 777;
    sf_rc rc = sf_value_time(t->text, 48000, t->allow_negative, &frames, &err);
    ck_assert_msg(rc == SF_E_INPUT, "'%s' was accepted as %lld", t->text, (long long)frames);
    ck_assert_str_eq(err.msg, t->msg);
    ck_assert_int_eq(frames, 777); /* untouched on error */
}
END_TEST

START_TEST(test_time_null_err)
{
    /* err is optional */
    int64_t frames;
    ck_assert_int_eq(sf_value_time("x", 48000, false, &frames, NULL), SF_E_INPUT);
}
END_TEST

START_TEST(test_level)
{
    double db = 0;
    sf_err_t err = {0};
    ck_assert_int_eq(sf_value_level_db("-inf", &db, &err), SF_OK);
    ck_assert(isinf(db) && db < 0);
    ck_assert_int_eq(sf_value_level_db("-.inf", &db, &err), SF_OK);
    ck_assert(isinf(db) && db < 0);
    ck_assert_int_eq(sf_value_level_db("+1.5", &db, &err), SF_OK);
    ck_assert_double_eq(db, 1.5);
    ck_assert_int_eq(sf_value_level_db("-3", &db, &err), SF_OK);
    ck_assert_double_eq(db, -3.0);
    ck_assert_int_eq(sf_value_level_db("0", &db, &err), SF_OK);
    ck_assert_double_eq(db, 0.0);
    ck_assert_int_eq(sf_value_level_db("-2.5e1", &db, &err), SF_OK);
    ck_assert_double_eq(db, -25.0);

    static const char *const bad[] = {"nan", "NaN", "inf",  "+inf",  ".inf", "-infinity", "",
                                      "-",   "3dB", "0x10", "1e999", "- 3",  "1.",        ".5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[128];
        snprintf(want, sizeof want, "invalid level '%s' (expected a number of dB or -inf)", bad[i]);
        db = 42;
        ck_assert_msg(sf_value_level_db(bad[i], &db, &err) == SF_E_INPUT, "'%s' accepted", bad[i]);
        ck_assert_str_eq(err.msg, want);
        ck_assert_double_eq(db, 42);
    }
}
END_TEST

START_TEST(test_db_to_gain)
{
    ck_assert(sf_value_db_to_gain(-(double)INFINITY) == 0.0);
    ck_assert_double_eq(sf_value_db_to_gain(0), 1.0);
    ck_assert_double_eq_tol(sf_value_db_to_gain(-6.0206), 0.5, 1e-5);
    ck_assert_double_eq_tol(sf_value_db_to_gain(20), 10.0, 1e-12);
}
END_TEST

START_TEST(test_pan)
{
    double pan = 0;
    sf_err_t err = {0};
    ck_assert_int_eq(sf_value_pan("-1", &pan, &err), SF_OK);
    ck_assert_double_eq(pan, -1.0);
    ck_assert_int_eq(sf_value_pan("+1", &pan, &err), SF_OK);
    ck_assert_double_eq(pan, 1.0);
    ck_assert_int_eq(sf_value_pan("-0.25", &pan, &err), SF_OK);
    ck_assert_double_eq(pan, -0.25);
    ck_assert_int_eq(sf_value_pan("0", &pan, &err), SF_OK);
    ck_assert_double_eq(pan, 0.0);

    ck_assert_int_eq(sf_value_pan("1.5", &pan, &err), SF_E_INPUT);
    ck_assert_str_eq(err.msg, "invalid pan '1.5' (must be between -1 and +1)");
    ck_assert_int_eq(sf_value_pan("-1.0001", &pan, &err), SF_E_INPUT);
    ck_assert_str_eq(err.msg, "invalid pan '-1.0001' (must be between -1 and +1)");
    ck_assert_int_eq(sf_value_pan("left", &pan, &err), SF_E_INPUT);
    ck_assert_str_eq(err.msg, "invalid pan 'left' (expected a number from -1 to +1)");
    ck_assert_int_eq(sf_value_pan("nan", &pan, &err), SF_E_INPUT);
    ck_assert_str_eq(err.msg, "invalid pan 'nan' (expected a number from -1 to +1)");
    ck_assert_double_eq(pan, 0.0);
}
END_TEST

START_TEST(test_number_int_bool)
{
    double d;
    int64_t i;
    bool b;
    sf_err_t err = {0};
    ck_assert_int_eq(sf_value_number("-144", -400, 0, &d, &err), SF_OK);
    ck_assert_double_eq(d, -144.0);
    ck_assert_int_eq(sf_value_number("1", -400, 0, &d, &err), SF_E_INPUT);
    ck_assert_str_eq(err.msg, "invalid number '1' (must be between -400 and 0)");
    ck_assert_int_eq(sf_value_number("inf", -(double)INFINITY, (double)INFINITY, &d, &err), SF_E_INPUT);
    ck_assert_str_eq(err.msg, "invalid number 'inf'");

    ck_assert_int_eq(sf_value_int("48000", 8000, 384000, &i, &err), SF_OK);
    ck_assert_int_eq(i, 48000);
    ck_assert_int_eq(sf_value_int("-5", -10, 10, &i, &err), SF_OK);
    ck_assert_int_eq(i, -5);
    ck_assert_int_eq(sf_value_int("1000", 8000, 384000, &i, &err), SF_E_INPUT);
    ck_assert_str_eq(err.msg, "invalid integer '1000' (must be between 8000 and 384000)");
    ck_assert_int_eq(sf_value_int("48000.0", 8000, 384000, &i, &err), SF_E_INPUT);
    ck_assert_str_eq(err.msg, "invalid integer '48000.0'");
    ck_assert_int_eq(sf_value_int("99999999999999999999", 0, INT64_MAX, &i, &err), SF_E_INPUT);
    ck_assert_str_eq(err.msg, "invalid integer '99999999999999999999' (must be between 0 and 9223372036854775807)");

    ck_assert_int_eq(sf_value_bool("true", &b, &err), SF_OK);
    ck_assert(b);
    ck_assert_int_eq(sf_value_bool("false", &b, &err), SF_OK);
    ck_assert(!b);
    ck_assert_int_eq(sf_value_bool("yes", &b, &err), SF_E_INPUT);
    ck_assert_str_eq(err.msg, "invalid boolean 'yes' (expected true or false)");
    ck_assert_int_eq(sf_value_bool("True", &b, &err), SF_E_INPUT);
}
END_TEST

typedef struct {
    const char *pattern;
    const char *name;
    bool match;
} glob_t_;

static const glob_t_ globs[] = {
    {"OH *", "OH L", true},
    {"OH *", "OH ", true},
    {"OH *", "OH", false},
    {"OH *", "Room OH L", false},
    {"Kick ?", "Kick 1", true},
    {"Kick ?", "Kick 12", false},
    {"Kick ?", "Kick ", false},
    {"?", "é", true}, /* one character, two bytes */
    {"Gr??e", "Größe", true},
    {"*", "", true},
    {"*", "anything at all", true},
    {"", "", true},
    {"", "x", false},
    {"Lead Vox", "Lead Vox", true},
    {"Lead Vox", "lead vox", false}, /* case matters */
    {"*Vox", "Lead Vox", true},
    {"*Vox", "Lead Vox 2", false},
    {"B*V*", "BV 1", true},
    {"a*b*c", "aXbYbZc", true},
    {"a*b*c", "aXbYbZ", false},
    {"***x", "x", true},
    {"*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false}, /* no blow-up */
};

START_TEST(test_glob)
{
    const glob_t_ *g = &globs[_i];
    ck_assert_msg(sf_value_glob_match(g->pattern, g->name) == g->match, "'%s' vs '%s': expected %s", g->pattern,
                  g->name, g->match ? "match" : "no match");
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("value");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_time_ok, 0, sizeof time_ok / sizeof time_ok[0]);
    tcase_add_loop_test(tc, test_time_bad, 0, sizeof time_bad / sizeof time_bad[0]);
    tcase_add_test(tc, test_time_null_err);
    tcase_add_test(tc, test_level);
    tcase_add_test(tc, test_db_to_gain);
    tcase_add_test(tc, test_pan);
    tcase_add_test(tc, test_number_int_bool);
    tcase_add_loop_test(tc, test_glob, 0, sizeof globs / sizeof globs[0]);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(s_suite()); }
