/* test_plan.c -- the planner: every target (stems, then the null-test
 * reference) is cut into segments that tile the render region exactly, the
 * dispatch order is segment-major, and impossible segments are refused. */
#include "plan.h"

#include "sf/wire.h"

#include "testutil.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static sf_stem_t s_stems[3] = {
    {.name = "Drums", .n_channels = 2}, {.name = "Bass", .n_channels = 1}, {.name = "Vox", .n_channels = 2}};

static sf_session_t s_session(int64_t start, int64_t end, int64_t segment)
{
    sf_session_t s = {.name = "T",
                      .sample_rate = 48000,
                      .start = start,
                      .end = end,
                      .segment = segment,
                      .stems = s_stems,
                      .n_stems = 3,
                      .master_channels = 2};
    return s;
}

START_TEST(test_segments_tile_the_region)
{
    static const struct {
        int64_t start, end, segment, want_segments, want_last;
    } cases[] = {
        {0, 100, 10, 10, 10},        {0, 101, 10, 11, 1},       {7, 12345, 1000, 13, 338}, {0, 1, 4099, 1, 1},
        {48000, 96001, 48000, 2, 1}, {0, 480000, 0, 1, 480000}, {0, 480001, 0, 2, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        sf_session_t s = s_session(cases[c].start, cases[c].end, cases[c].segment);
        plan_t *p = NULL;
        sf_err_t err = {0};
        ck_assert_int_eq(plan_make(&s, 0, &p, &err), SF_OK);
        ck_assert_int_eq(p->n_segments, cases[c].want_segments);
        ck_assert_uint_eq(p->n_targets, 4);
        ck_assert_uint_eq(p->n_jobs, 4 * (size_t)cases[c].want_segments);
        for (uint32_t st = 0; st < 4; st++) {
            int64_t expect_start = cases[c].start;
            for (uint32_t k = 0; k < p->n_segments; k++) {
                const plan_job_t *j = &p->jobs[plan_job_index(p, st, k)];
                ck_assert_int_eq(j->target_index, st);
                ck_assert_int_eq(j->segment_index, k);
                ck_assert_int_eq(j->start_frame, expect_start);
                ck_assert_int_gt(j->n_frames, 0);
                expect_start += j->n_frames;
            }
            ck_assert_int_eq(expect_start, cases[c].end);
            ck_assert_int_eq(p->jobs[plan_job_index(p, st, p->n_segments - 1)].n_frames, cases[c].want_last);
        }
        /* the reference is rendered, not delivered */
        ck_assert_int_eq(p->output_frames, 3 * (cases[c].end - cases[c].start));
        ck_assert_int_eq(p->rendered_frames, 4 * (cases[c].end - cases[c].start));
        plan_destroy(&p);
        ck_assert_ptr_null(p);
    }
}
END_TEST

START_TEST(test_dispatch_order_is_segment_major_and_complete)
{
    sf_session_t s = s_session(0, 1000, 0);
    plan_t *p = NULL;
    ck_assert_int_eq(plan_make(&s, 300, &p, NULL), SF_OK);
    ck_assert_int_eq(p->segment_frames, 300);
    char seen[16] = {0};
    for (size_t i = 0; i < p->n_jobs; i++) {
        size_t j = plan_dispatch_order(p, i);
        ck_assert_uint_lt(j, p->n_jobs);
        ck_assert_int_eq(seen[j], 0);
        seen[j] = 1;
        ck_assert_int_eq(p->jobs[j].segment_index, i / 4);
        ck_assert_int_eq(p->jobs[j].target_index, i % 4);
    }
    plan_destroy(&p);
}
END_TEST

START_TEST(test_targets_in_order_with_reference_last)
{
    sf_session_t s = s_session(0, 1000, 0);
    plan_t *p = NULL;
    ck_assert_int_eq(plan_make(&s, 0, &p, NULL), SF_OK);
    for (uint32_t t = 0; t < 3; t++) {
        ck_assert_int_eq(p->targets[t].target.kind, SF_TARGET_STEM);
        ck_assert_uint_eq(p->targets[t].target.index, t);
        ck_assert(p->targets[t].deliver);
        ck_assert_int_eq(p->targets[t].n_channels, s_stems[t].n_channels);
    }
    ck_assert_int_eq(p->targets[3].target.kind, SF_TARGET_FULL_MIX);
    ck_assert(!p->targets[3].deliver);
    ck_assert_int_eq(plan_reference_target(p), 3);
    char label[64];
    plan_target_label(p, 1, label, sizeof label);
    ck_assert_str_eq(label, "stem 'Bass'");
    plan_target_label(p, 3, label, sizeof label);
    ck_assert_str_eq(label, "reference 'Full Mix'");
    plan_destroy(&p);
}
END_TEST

START_TEST(test_bad_segments_are_refused)
{
    sf_session_t s = s_session(0, 1000, 0);
    plan_t *p = NULL;
    sf_err_t err = {0};
    ck_assert_int_eq(plan_make(&s, -5, &p, &err), SF_E_INPUT);
    ck_assert_ptr_null(p);
    ck_assert_str_eq(err.msg, "segment length must be positive, got -5 frames");
    sf_session_t big = s_session(0, (int64_t)1 << 30, 0);
    ck_assert_int_eq(plan_make(&big, (int64_t)1 << 28, &p, &err), SF_E_INPUT);
    ck_assert_msg(strstr(err.msg, "too long for stem 'Drums'"), "%s", err.msg);
    /* The default always fits a message. */
    ck_assert_int_eq(plan_make(&big, 0, &p, &err), SF_OK);
    ck_assert_int_le(p->segment_frames * 4 * 2, (int64_t)SF_WIRE_MAX_MESSAGE_BYTES);
    plan_destroy(&p);
    sf_session_t empty = s_session(10, 10, 0);
    ck_assert_int_eq(plan_make(&empty, 0, &p, &err), SF_E_INPUT);
}
END_TEST

/* The default segment: 10 s; with long effect tails, the region cut into
 * as many equal whole-second segments as leave each at least ten pre-rolls
 * (so the pre-roll, rendered again for every segment, costs at most a tenth
 * more work), at most 120 s, and never more than a result message can carry. */
START_TEST(test_default_segment_grows_with_preroll)
{
    sf_session_t s = s_session(0, 1000, 0);
    const int64_t hour = 3600 * 48000;
    static const struct {
        int64_t region, preroll, want;
    } cases[] = {
        {3600 * 48000, 0, 480000},           /* no tails: 10 s */
        {3600 * 48000, 48000, 480000},       /* 1 s: still 10 s, a tenth */
        {3600 * 48000, 48001, 528000},       /* just over: 11 s */
        {9036914, 396914, 4560000},          /* 188.3 s, 8.27 s pre-roll: 2 segments of 95 s, not 3 of 83 */
        {100 * 48000, 397000, 4800000},      /* shorter than ten pre-rolls: one segment */
        {3600 * 48000, 48000 * 12, 5760000}, /* 120 s at most */
        {3600 * 48000, 48000 * 13, 5760000}, {3600 * 48000, INT64_MAX, 5760000},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const int64_t got = plan_default_segment(&s, cases[c].region, cases[c].preroll);
        ck_assert_msg(got == cases[c].want, "region %lld, pre-roll %lld: %lld, want %lld", (long long)cases[c].region,
                      (long long)cases[c].preroll, (long long)got, (long long)cases[c].want);
        const int64_t n = (cases[c].region + got - 1) / got;
        if (cases[c].preroll <= 48000 * 12) /* the promise, where the 120 s cap does not bind */
            ck_assert_int_le(n * cases[c].preroll * 10, cases[c].region);
    }
    s.sample_rate = 384000;
    const int64_t limit = (int64_t)((SF_WIRE_MAX_MESSAGE_BYTES - (1u << 20)) / (4u * SF_MAX_CHANNELS));
    ck_assert_int_eq(plan_default_segment(&s, hour * 8, 0), 3840000);
    ck_assert_int_eq(plan_default_segment(&s, hour * 8, 384000 * 30), limit);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("plan");
    TCase *tc = tcase_create("plan");
    tcase_add_test(tc, test_segments_tile_the_region);
    tcase_add_test(tc, test_dispatch_order_is_segment_major_and_complete);
    tcase_add_test(tc, test_targets_in_order_with_reference_last);
    tcase_add_test(tc, test_bad_segments_are_refused);
    tcase_add_test(tc, test_default_segment_grows_with_preroll);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
