/* test_journal.c -- render journals: what was written replays bit for bit,
 * a torn last record (a crash mid-append) is cut off at any byte and the
 * journal goes on, damage elsewhere is reported with the file and offset
 * while other journals still replay, and no length read from a file is
 * trusted. Also the incarnation counter. */
#include "journal.h"

#include "sf/alloc.h"
#include "sf/hash.h"

#include "testutil.h"

#include <check.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *s_dir;

static void s_setup(void) { s_dir = tu_tmpdir(); }

static void s_teardown(void)
{
    tu_rm_rf(s_dir);
    free(s_dir);
    s_dir = NULL;
}

/* ---- fixtures ------------------------------------------------------------ */

static const uint8_t s_yaml[] = "session:\n  name: T\n\0binary\xff tail";
static const uint8_t s_client[] = {0x00, 0x6b, 0x8b, 0x45, 0x67};

static journal_submit_t s_sub(uint32_t render_id)
{
    journal_submit_t sub = {
        .render_id = render_id,
        .priority = -3,
        .session_path = "/studio/song/session.yaml",
        .yaml = s_yaml,
        .n_yaml_bytes = sizeof s_yaml,
        .out_dir = "/studio/song/stems",
        .segment_frames = 48000,
        .force = true,
        .profile = "netflix",
        .client_id = s_client,
        .n_client_id = sizeof s_client,
    };
    return sub;
}

/* Planar frames that include the values a float round trip could change:
 * -0, a denormal, infinity and a NaN with a payload. */
static float *s_frames(uint64_t seed, uint32_t n_channels, uint64_t n_frames)
{
    size_t n = (size_t)(n_channels * n_frames);
    float *f = malloc(n * sizeof *f);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)tu_noise(seed, (int64_t)i);
    static const uint32_t special[] = {0x80000000u, 0x00000001u, 0x7f800000u, 0x7fc12345u};
    for (size_t i = 0; i < 4 && i < n; i++)
        memcpy(&f[i], &special[i], 4);
    return f;
}

static uint64_t s_xxh3(const float *f, uint32_t n_channels, uint64_t n_frames)
{
    return sf_hash_xxh3(f, (size_t)(n_channels * n_frames) * 4); /* the wire's bytes on a little-endian host */
}

static char *s_journal_file(uint32_t render_id)
{
    char name[64];
    snprintf(name, sizeof name, "render-%" PRIu32 ".journal", render_id);
    return tu_path(s_dir, name);
}

static uint64_t s_size(const char *path)
{
    struct stat st;
    ck_assert_msg(stat(path, &st) == 0, "no '%s'", path);
    return (uint64_t)st.st_size;
}

static void s_write_file(const char *path, const void *bytes, size_t n_bytes)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, n_bytes, f), n_bytes);
    fclose(f);
}

static void s_poke(const char *path, uint64_t off, const void *bytes, size_t n_bytes)
{
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, bytes, n_bytes, (off_t)off), (ssize_t)n_bytes);
    close(fd);
}

static void s_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A segment the tests append: job, shape, seed, node. */
typedef struct {
    uint64_t job_index;
    uint32_t n_channels;
    uint64_t n_frames;
    uint64_t seed;
    const char *node_name;
} seg_spec_t;

static void s_append(journal_t *j, const seg_spec_t *sp)
{
    float *f = s_frames(sp->seed, sp->n_channels, sp->n_frames);
    sf_err_t err = {0};
    sf_rc rc = journal_append_segment(j, sp->job_index, sp->n_channels, sp->n_frames, f,
                                      s_xxh3(f, sp->n_channels, sp->n_frames), sp->node_name, &err);
    ck_assert_msg(rc == SF_OK, "append: %s", err.msg);
    free(f);
}

/* Creates render `id` with `n` segments; offsets[k] receives where record k
 * starts (offsets[0]: the submission, offsets[n + 1]: the end). */
static void s_make(uint32_t id, const seg_spec_t *specs, size_t n, uint64_t *offsets)
{
    journal_submit_t sub = s_sub(id);
    journal_t *j = NULL;
    sf_err_t err = {0};
    ck_assert_msg(journal_create(s_dir, &sub, &j, &err) == SF_OK, "create: %s", err.msg);
    char *path = s_journal_file(id);
    ck_assert_str_eq(journal_path(j), path);
    if (offsets)
        offsets[0] = 12;
    for (size_t k = 0; k < n; k++) {
        if (offsets)
            offsets[k + 1] = s_size(path);
        s_append(j, &specs[k]);
    }
    if (offsets)
        offsets[n + 1] = s_size(path);
    journal_close(&j);
    ck_assert_ptr_null(j);
    free(path);
}

/* ---- a recorder of replay callbacks --------------------------------------- */

#define REC_MAX 8
#define SEG_MAX 16

typedef struct {
    uint64_t job_index;
    uint32_t n_channels;
    uint64_t n_frames;
    float *planar;
    uint64_t xxh3;
    char node_name[256];
    bool counted;
} rec_seg_t;

typedef struct {
    journal_submit_t sub; /* pointers into the copies below */
    char *session_path, *out_dir, *profile;
    uint8_t *yaml, *client_id;
    journal_t *j; /* taken in on_submit when rec_t.take */
    rec_seg_t segs[SEG_MAX];
    size_t n_segs;
} rec_render_t;

typedef struct {
    rec_render_t renders[REC_MAX];
    size_t n_renders;
    uint32_t err_ids[REC_MAX];
    sf_err_t errs[REC_MAX];
    size_t n_errors;
    bool take;
    uint32_t fail_segments_of; /* on_segment fails for this render */
    size_t n_calls;
} rec_t;

static uint8_t *s_dup(const void *p, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    if (n)
        memcpy(c, p, n);
    return c;
}

static sf_rc s_on_submit(void *ctx, const journal_submit_t *sub, journal_t **j, sf_err_t *err)
{
    (void)err;
    rec_t *r = ctx;
    r->n_calls++;
    ck_assert_uint_lt(r->n_renders, REC_MAX);
    rec_render_t *x = &r->renders[r->n_renders++];
    ck_assert_ptr_nonnull(*j);
    ck_assert_uint_eq(journal_render_id(*j), sub->render_id);
    x->sub = *sub;
    x->sub.session_path = x->session_path = strdup(sub->session_path);
    x->sub.out_dir = x->out_dir = strdup(sub->out_dir);
    x->sub.profile = x->profile = strdup(sub->profile);
    x->sub.yaml = x->yaml = s_dup(sub->yaml, sub->n_yaml_bytes);
    x->sub.client_id = x->client_id = s_dup(sub->client_id, sub->n_client_id);
    if (r->take) {
        x->j = *j;
        *j = NULL;
    }
    return SF_OK;
}

static sf_rc s_on_segment(void *ctx, uint32_t render_id, const journal_segment_t *seg, sf_err_t *err)
{
    rec_t *r = ctx;
    r->n_calls++;
    ck_assert_uint_gt(r->n_renders, 0);
    rec_render_t *x = &r->renders[r->n_renders - 1];
    ck_assert_uint_eq(x->sub.render_id, render_id);
    ck_assert_msg(((uintptr_t)seg->planar & 63) == 0, "frames not 64-byte aligned");
    if (render_id == r->fail_segments_of)
        return SF_ERR(err, SF_E_RENDER, "job %" PRIu64 " is not in the plan", seg->job_index);
    ck_assert_uint_lt(x->n_segs, SEG_MAX);
    rec_seg_t *s = &x->segs[x->n_segs++];
    s->job_index = seg->job_index;
    s->n_channels = seg->n_channels;
    s->n_frames = seg->n_frames;
    s->planar = (float *)s_dup(seg->planar, (size_t)(seg->n_channels * seg->n_frames) * 4);
    s->xxh3 = seg->xxh3;
    s->counted = seg->counted;
    ck_assert_uint_lt(strlen(seg->node_name), sizeof s->node_name);
    strcpy(s->node_name, seg->node_name);
    return SF_OK;
}

static void s_on_error(void *ctx, uint32_t render_id, const sf_err_t *e)
{
    rec_t *r = ctx;
    r->n_calls++;
    ck_assert_uint_lt(r->n_errors, REC_MAX);
    r->err_ids[r->n_errors] = render_id;
    r->errs[r->n_errors++] = *e;
}

static const journal_replay_fns_t s_fns = {
    .on_submit = s_on_submit, .on_segment = s_on_segment, .on_error = s_on_error};

static void s_rec_free(rec_t *r)
{
    for (size_t i = 0; i < r->n_renders; i++) {
        rec_render_t *x = &r->renders[i];
        free(x->session_path);
        free(x->out_dir);
        free(x->profile);
        free(x->yaml);
        free(x->client_id);
        journal_close(&x->j);
        for (size_t k = 0; k < x->n_segs; k++)
            free(x->segs[k].planar);
    }
    memset(r, 0, sizeof *r);
}

/* Replays s_dir into a fresh *r, expecting SF_OK; returns the max render id. */
static uint32_t s_replay(rec_t *r, bool take)
{
    memset(r, 0, sizeof *r);
    r->take = take;
    uint32_t max_id = 12345;
    sf_err_t err = {0};
    ck_assert_msg(journal_replay(s_dir, &s_fns, r, &max_id, &err) == SF_OK, "replay: %s", err.msg);
    return max_id;
}

static void s_expect_sub(const rec_render_t *x, uint32_t render_id)
{
    journal_submit_t want = s_sub(render_id);
    ck_assert_uint_eq(x->sub.render_id, render_id);
    ck_assert_int_eq(x->sub.priority, want.priority);
    ck_assert_str_eq(x->sub.session_path, want.session_path);
    ck_assert_str_eq(x->sub.out_dir, want.out_dir);
    ck_assert_str_eq(x->sub.profile, want.profile);
    ck_assert_int_eq(x->sub.segment_frames, want.segment_frames);
    ck_assert(x->sub.force == want.force);
    ck_assert_uint_eq(x->sub.n_yaml_bytes, want.n_yaml_bytes);
    ck_assert_mem_eq(x->sub.yaml, want.yaml, want.n_yaml_bytes);
    ck_assert_uint_eq(x->sub.n_client_id, want.n_client_id);
    ck_assert_mem_eq(x->sub.client_id, want.client_id, want.n_client_id);
}

static void s_expect_seg(const rec_seg_t *s, const seg_spec_t *sp)
{
    float *want = s_frames(sp->seed, sp->n_channels, sp->n_frames);
    ck_assert_uint_eq(s->job_index, sp->job_index);
    ck_assert_uint_eq(s->n_channels, sp->n_channels);
    ck_assert_uint_eq(s->n_frames, sp->n_frames);
    ck_assert_mem_eq(s->planar, want, (size_t)(sp->n_channels * sp->n_frames) * 4);
    ck_assert_uint_eq(s->xxh3, s_xxh3(want, sp->n_channels, sp->n_frames));
    ck_assert_str_eq(s->node_name, sp->node_name ? sp->node_name : "");
    free(want);
}

static const seg_spec_t s_specs[] = {
    {5, 2, 1000, 11, "node-a"},
    {0, 1, 1, 12, NULL},
    {11, 8, 257, 13, "render-host-042.studio.example"},
    {6, 2, 16, 14, "n"},
};

/* ---- tests --------------------------------------------------------------- */

START_TEST(test_round_trip)
{
    uint64_t off[6];
    s_make(7, s_specs, 3, off);

    /* The layout the header documents, byte for byte where it is fixed. */
    char *path = s_journal_file(7);
    size_t n_bytes;
    uint8_t *file = (uint8_t *)tu_slurp(path, &n_bytes);
    ck_assert_mem_eq(file, "SFJOURNL\x02\x00\x00\x00", 12);
    ck_assert_mem_eq(file + 12, "\x01\x00\x00\x00", 4); /* submission */
    uint64_t n_submit = 17 + 20 + strlen("/studio/song/session.yaml") + strlen("/studio/song/stems") +
                        strlen("netflix") + sizeof s_client + sizeof s_yaml;
    ck_assert_uint_eq(off[1], 12 + 12 + n_submit + 8);
    ck_assert_mem_eq(file + 24, "\x07\x00\x00\x00\xfd\xff\xff\xff", 8); /* render 7, priority -3 */
    for (size_t k = 0; k < 3; k++) {
        ck_assert_uint_eq(off[k + 2] - off[k + 1], 12 + 32 + strlen(s_specs[k].node_name ? s_specs[k].node_name : "") +
                                                       4 * s_specs[k].n_channels * s_specs[k].n_frames + 8);
        ck_assert_uint_eq(file[off[k + 1]], 2); /* segment */
    }
    ck_assert_uint_eq(n_bytes, off[4]);
    free(file);

    rec_t r;
    ck_assert_uint_eq(s_replay(&r, true), 7);
    ck_assert_uint_eq(r.n_errors, 0);
    ck_assert_uint_eq(r.n_renders, 1);
    s_expect_sub(&r.renders[0], 7);
    ck_assert_uint_eq(r.renders[0].n_segs, 3);
    for (size_t k = 0; k < 3; k++)
        s_expect_seg(&r.renders[0].segs[k], &s_specs[k]);

    /* The reopened journal goes on, and still knows the jobs it holds. */
    journal_t *j = r.renders[0].j;
    ck_assert_ptr_nonnull(j);
    s_append(j, &s_specs[3]);
    float one = 0.5f;
    sf_err_t err = {0};
    ck_assert_int_eq(journal_append_segment(j, 11, 1, 1, &one, sf_hash_xxh3(&one, 4), "x", &err), SF_E_INTERNAL);
    char want[600];
    snprintf(want, sizeof want, "journal '%s': job 11 was journalled before", path);
    ck_assert_str_eq(err.msg, want);
    s_rec_free(&r);

    ck_assert_uint_eq(s_replay(&r, false), 7);
    ck_assert_uint_eq(r.n_renders, 1);
    ck_assert_uint_eq(r.renders[0].n_segs, 4);
    for (size_t k = 0; k < 4; k++)
        s_expect_seg(&r.renders[0].segs[k], &s_specs[k]);
    s_rec_free(&r);
    free(path);
}
END_TEST

/* A crash mid-append leaves any prefix of the last record: it is dropped, the
 * file cut back, and the journal takes the next segment and replays it. */
START_TEST(test_torn_tail_at_every_byte)
{
    static const seg_spec_t specs[] = {{3, 2, 20, 21, "a"}, {4, 1, 7, 22, "bb"}, {9, 2, 16, 23, "node-c"}};
    static const seg_spec_t after = {1, 1, 5, 24, "late"};
    uint64_t off[5];
    s_make(3, specs, 3, off);
    char *path = s_journal_file(3);
    size_t n_bytes;
    char *whole = tu_slurp(path, &n_bytes);
    ck_assert_uint_eq(n_bytes, off[4]);
    size_t n_cuts = 0;
    for (uint64_t cut = off[3]; cut < off[4]; cut++, n_cuts++) {
        s_write_file(path, whole, (size_t)cut);
        rec_t r;
        ck_assert_uint_eq(s_replay(&r, true), 3);
        ck_assert_msg(r.n_errors == 0, "cut at %" PRIu64 ": %s", cut, r.errs[0].msg);
        ck_assert_uint_eq(r.n_renders, 1);
        ck_assert_uint_eq(r.renders[0].n_segs, 2);
        s_expect_seg(&r.renders[0].segs[0], &specs[0]);
        s_expect_seg(&r.renders[0].segs[1], &specs[1]);
        ck_assert_uint_eq(s_size(path), off[3]);
        s_append(r.renders[0].j, &after);
        s_rec_free(&r);

        s_replay(&r, false);
        ck_assert_uint_eq(r.n_errors, 0);
        ck_assert_uint_eq(r.renders[0].n_segs, 3);
        s_expect_seg(&r.renders[0].segs[2], &after);
        s_rec_free(&r);
    }
    ck_assert_uint_eq(n_cuts, 12 + 32 + 6 + 2 * 16 * 4 + 8);

    /* A power cut can leave the grown tail as zeros. */
    char *padded = calloc(1, n_bytes + 100);
    memcpy(padded, whole, n_bytes);
    s_write_file(path, padded, n_bytes + 100);
    rec_t r;
    s_replay(&r, false);
    ck_assert_uint_eq(r.n_errors, 0);
    ck_assert_uint_eq(r.renders[0].n_segs, 3);
    ck_assert_uint_eq(s_size(path), n_bytes);
    s_rec_free(&r);

    /* Whole but with a bad checksum, at the very end: torn too. */
    whole[n_bytes - 1] ^= 0x40;
    s_write_file(path, whole, n_bytes);
    s_replay(&r, false);
    ck_assert_uint_eq(r.n_errors, 0);
    ck_assert_uint_eq(r.renders[0].n_segs, 2);
    ck_assert_uint_eq(s_size(path), off[3]);
    s_rec_free(&r);
    free(padded);
    free(whole);
    free(path);
}
END_TEST

/* Damage before the last record stops that journal (kept as it is), never the others. */
START_TEST(test_damaged_middle_record)
{
    uint64_t off[5], off2[4];
    s_make(1, s_specs, 3, off);
    s_make(2, s_specs, 2, off2);
    char *path = s_journal_file(1);
    uint64_t size = s_size(path);
    char want[700];

    static const struct {
        uint64_t at; /* into record 2 (the second segment) */
        uint8_t xor ;
        const char *what; /* %s: path, %llu: offset */
    } cases[] = {
        {12 + 32 + 3, 0x01, "journal '%s': record at byte %" PRIu64 ": checksum mismatch"},
        {4 + 2, 0x01, "journal '%s': record at byte %" PRIu64 ": length 65572 does not match the record's fields (36)"},
        {0, 0x07, "journal '%s': record at byte %" PRIu64 ": unknown record type 5"},
        {12 + 8, 0x80, "journal '%s': record at byte %" PRIu64 ": segment of 129 channels x 1 frames is out of range"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        uint8_t b;
        int fd = open(path, O_RDWR);
        ck_assert_int_eq(pread(fd, &b, 1, (off_t)(off[2] + cases[c].at)), 1);
        b ^= cases[c].xor ;
        ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)(off[2] + cases[c].at)), 1);
        rec_t r;
        ck_assert_uint_eq(s_replay(&r, false), 2);
        ck_assert_uint_eq(r.n_errors, 1);
        ck_assert_uint_eq(r.err_ids[0], 1);
        ck_assert_int_eq(r.errs[0].code, SF_E_IO);
        snprintf(want, sizeof want, cases[c].what, path, off[2]);
        ck_assert_str_eq(r.errs[0].msg, want);
        ck_assert_uint_eq(r.n_renders, 1); /* only render 2, whole */
        s_expect_sub(&r.renders[0], 2);
        ck_assert_uint_eq(r.renders[0].n_segs, 2);
        s_expect_seg(&r.renders[0].segs[1], &s_specs[1]);
        ck_assert_uint_eq(s_size(path), size); /* nothing cut off */
        s_rec_free(&r);
        b ^= cases[c].xor ;
        ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)(off[2] + cases[c].at)), 1);
        close(fd);
    }
    rec_t r;
    s_replay(&r, false);
    ck_assert_uint_eq(r.n_errors, 0);
    ck_assert_uint_eq(r.n_renders, 2);
    s_rec_free(&r);
    free(path);
}
END_TEST

/* A length read from the file is checked before anything is allocated:
 * the exact message (not "out of memory") proves it, and the sanitizer run
 * would abort on a 2^62-byte request. Last record or not, it is damage. */
START_TEST(test_absurd_length)
{
    uint64_t off[4];
    s_make(4, s_specs, 2, off);
    char *path = s_journal_file(4);
    char want[700];
    uint8_t len[8];
    for (int k = 0; k <= 1; k++) {
        s_put_u64(len, 1ull << 62);
        s_poke(path, off[k + 1] + 4, len, 8);
        rec_t r;
        s_replay(&r, false);
        ck_assert_uint_eq(r.n_renders, 0);
        ck_assert_uint_eq(r.n_errors, 1);
        snprintf(want, sizeof want,
                 "journal '%s': record at byte %" PRIu64
                 ": length 4611686018427387904 is out of range for a segment record (32..536871199)",
                 path, off[k + 1]);
        ck_assert_str_eq(r.errs[0].msg, want);
        s_rec_free(&r);
        s_put_u64(len, off[k + 2] - off[k + 1] - 20);
        s_poke(path, off[k + 1] + 4, len, 8);
    }
    s_put_u64(len, UINT64_MAX);
    s_poke(path, 12 + 4, len, 8);
    rec_t r;
    s_replay(&r, false);
    ck_assert_uint_eq(r.n_renders, 0);
    snprintf(want, sizeof want,
             "journal '%s': record at byte 12: length 18446744073709551615 is out of range for a submission "
             "record (37..16789796)",
             path);
    ck_assert_str_eq(r.errs[0].msg, want);
    s_rec_free(&r);
    free(path);
}
END_TEST

START_TEST(test_duplicate_job)
{
    uint64_t off[4];
    s_make(5, s_specs, 2, off);
    char *path = s_journal_file(5);
    size_t n_bytes;
    char *whole = tu_slurp(path, &n_bytes);

    /* Refused when appending, with nothing written... */
    rec_t r;
    s_replay(&r, true);
    journal_t *j = r.renders[0].j;
    float *f = s_frames(1, 1, 3);
    sf_err_t err = {0};
    ck_assert_int_eq(journal_append_segment(j, 0, 1, 3, f, s_xxh3(f, 1, 3), "n", &err), SF_E_INTERNAL);
    /* ...as are frames that do not match their xxh3 */
    ck_assert_int_eq(journal_append_segment(j, 1, 1, 3, f, s_xxh3(f, 1, 3) ^ 1, "n", &err), SF_E_INTERNAL);
    char want[700];
    snprintf(want, sizeof want, "journal '%s': job 1: the frames do not match their xxh3", path);
    ck_assert_str_eq(err.msg, want);
    ck_assert_uint_eq(s_size(path), n_bytes);
    free(f);
    s_rec_free(&r);

    /* ...and found in a file that has it twice. */
    char *twice = malloc(n_bytes + (off[3] - off[2]));
    memcpy(twice, whole, n_bytes);
    memcpy(twice + n_bytes, whole + off[2], off[3] - off[2]);
    s_write_file(path, twice, n_bytes + (off[3] - off[2]));
    s_replay(&r, false);
    ck_assert_uint_eq(r.n_renders, 0);
    ck_assert_uint_eq(r.n_errors, 1);
    snprintf(want, sizeof want,
             "journal '%s': record at byte %" PRIu64 ": job 0 is journalled twice (first at byte %" PRIu64
             "): a segment must not land twice",
             path, off[3], off[2]);
    ck_assert_str_eq(r.errs[0].msg, want);
    s_rec_free(&r);
    free(twice);
    free(whole);
    free(path);
}
END_TEST

/* One commit syncs every segment appended since the last and marks them
 * counted; those after the last commit replay as not counted, and are
 * counted once the reopened journal commits them. The unsynced tail of a
 * power cut is torn from its first bad record on, unless an intact record
 * follows it. Version 1 files have no commit records: all counted. */
START_TEST(test_group_commit)
{
    static const seg_spec_t specs[] = {
        {3, 2, 20, 31, "a"}, {4, 1, 7, 32, "b"}, {9, 2, 16, 33, "c"}, {1, 1, 5, 34, "d"}, {2, 1, 9, 35, "e"}};
    journal_submit_t sub = s_sub(4);
    journal_t *j = NULL;
    sf_err_t err = {0};
    ck_assert_msg(journal_create(s_dir, &sub, &j, &err) == SF_OK, "create: %s", err.msg);
    ck_assert_int_eq(journal_commit(j, &err), SF_OK); /* nothing to commit */
    char *path = s_journal_file(4);
    uint64_t off[7];
    off[0] = s_size(path);
    for (size_t k = 0; k < 2; k++)
        s_append(j, &specs[k]);
    off[1] = s_size(path);
    ck_assert_msg(journal_commit(j, &err) == SF_OK, "commit: %s", err.msg);
    off[2] = s_size(path);
    ck_assert_uint_eq(off[2] - off[1], 12 + 8); /* the commit record */
    for (size_t k = 2; k < 5; k++) {
        off[k + 1] = s_size(path);
        s_append(j, &specs[k]);
    }
    off[6] = s_size(path);
    journal_close(&j);

    size_t n_bytes;
    char *whole = tu_slurp(path, &n_bytes);
    ck_assert_uint_eq(n_bytes, off[6]);
    rec_t r;
    s_replay(&r, true);
    ck_assert_uint_eq(r.n_errors, 0);
    ck_assert_uint_eq(r.renders[0].n_segs, 5);
    for (size_t k = 0; k < 5; k++) {
        s_expect_seg(&r.renders[0].segs[k], &specs[k]);
        ck_assert_msg(r.renders[0].segs[k].counted == (k < 2), "segment %zu", k);
    }
    ck_assert_int_eq(journal_commit(r.renders[0].j, &err), SF_OK);
    ck_assert_uint_eq(s_size(path), n_bytes + 20);
    s_rec_free(&r);
    s_replay(&r, false);
    for (size_t k = 0; k < 5; k++)
        ck_assert(r.renders[0].segs[k].counted);
    s_rec_free(&r);

    /* A power cut: the frames of the last two unsynced records are zeros. */
    char *cut = malloc(n_bytes);
    memcpy(cut, whole, n_bytes);
    memset(cut + off[4] + 12 + 32 + 1, 0, (size_t)(off[6] - off[4] - 12 - 32 - 1));
    s_write_file(path, cut, n_bytes);
    s_replay(&r, false);
    ck_assert_msg(r.n_errors == 0, "%s", r.errs[0].msg);
    ck_assert_uint_eq(r.renders[0].n_segs, 3);
    ck_assert(!r.renders[0].segs[2].counted);
    ck_assert_uint_eq(s_size(path), off[4]);
    s_rec_free(&r);

    /* A bad record with an intact one after it had been synced: damage. */
    memcpy(cut, whole, n_bytes);
    cut[off[4] + 12 + 40] ^= 1;
    s_write_file(path, cut, n_bytes);
    s_replay(&r, false);
    ck_assert_uint_eq(r.n_errors, 1);
    char want[600];
    snprintf(want, sizeof want, "journal '%s': record at byte %" PRIu64 ": checksum mismatch", path, off[4]);
    ck_assert_str_eq(r.errs[0].msg, want);
    ck_assert_uint_eq(s_size(path), n_bytes);
    s_rec_free(&r);

    /* Version 1: no commit records, every segment counted. */
    memcpy(cut, whole, n_bytes);
    cut[8] = 1;
    memmove(cut + off[1], cut + off[2], (size_t)(n_bytes - off[2]));
    s_write_file(path, cut, n_bytes - 20);
    s_replay(&r, false);
    ck_assert_uint_eq(r.n_errors, 0);
    ck_assert_uint_eq(r.renders[0].n_segs, 5);
    for (size_t k = 0; k < 5; k++)
        ck_assert(r.renders[0].segs[k].counted);
    s_rec_free(&r);
    free(cut);
    free(whole);
    free(path);
}
END_TEST

START_TEST(test_finish_removes)
{
    uint64_t off[3];
    s_make(6, s_specs, 1, off);
    char *path = s_journal_file(6);
    size_t n_bytes;
    char *whole = tu_slurp(path, &n_bytes);
    rec_t r;
    s_replay(&r, true);
    sf_err_t err = {0};
    ck_assert_int_eq(journal_finish(&r.renders[0].j, &err), SF_OK);
    ck_assert_ptr_null(r.renders[0].j);
    ck_assert(!tu_exists(path));
    s_rec_free(&r);
    ck_assert_uint_eq(s_replay(&r, false), 0);
    ck_assert_uint_eq(r.n_calls, 0);
    s_rec_free(&r);

    /* A crash after the finish record but before the removal: replay
     * removes it and resumes nothing. */
    char *fin = malloc(n_bytes + 20);
    memcpy(fin, whole, n_bytes);
    memcpy(fin + n_bytes, "\x03\0\0\0\0\0\0\0\0\0\0\0", 12);
    s_put_u64((uint8_t *)fin + n_bytes + 12, sf_hash_xxh3(fin + n_bytes, 12));
    s_write_file(path, fin, n_bytes + 20);
    ck_assert_uint_eq(s_replay(&r, false), 6);
    ck_assert_uint_eq(r.n_calls, 0);
    ck_assert(!tu_exists(path));
    s_rec_free(&r);
    free(fin);
    free(whole);
    free(path);
}
END_TEST

/* Highest id among journal files, whatever their state; other names are not journals. */
START_TEST(test_max_render_id_and_odd_files)
{
    s_make(3, s_specs, 1, NULL);
    s_make(12, s_specs, 1, NULL);
    char *torn = tu_write_text(s_dir, "render-40.journal", "SFJOUR");
    char *alien = tu_write_text(s_dir, "render-9.journal", "hello, not a journal at all");
    free(tu_write_text(s_dir, "render-050.journal", "x"));
    free(tu_write_text(s_dir, "render-60.journal.tmp", "x"));
    free(tu_write_text(s_dir, "render-4294967296.journal", "x"));
    free(tu_write_text(s_dir, "notes.txt", "x"));
    rec_t r;
    ck_assert_uint_eq(s_replay(&r, false), 40);
    ck_assert_uint_eq(r.n_renders, 2);
    ck_assert_uint_eq(r.renders[0].sub.render_id, 3);
    ck_assert_uint_eq(r.renders[1].sub.render_id, 12);
    ck_assert_uint_eq(r.n_errors, 2);
    char want[700];
    ck_assert_uint_eq(r.err_ids[0], 9);
    snprintf(want, sizeof want, "journal '%s': not a stemfarm journal (no 'SFJOURNL' at byte 0)", alien);
    ck_assert_str_eq(r.errs[0].msg, want);
    ck_assert_uint_eq(r.err_ids[1], 40);
    snprintf(want, sizeof want,
             "journal '%s': removed: its submission record is incomplete (the coordinator stopped while accepting "
             "render 40)",
             torn);
    ck_assert_str_eq(r.errs[1].msg, want);
    ck_assert(!tu_exists(torn));
    ck_assert(tu_exists(alien));
    s_rec_free(&r);

    /* No state folder yet: nothing to resume. */
    uint32_t max_id = 99;
    char *none = tu_path(s_dir, "missing");
    ck_assert_int_eq(journal_replay(none, &s_fns, &r, &max_id, NULL), SF_OK);
    ck_assert_uint_eq(max_id, 0);
    free(none);
    free(torn);
    free(alien);
}
END_TEST

/* A crash inside journal_create (which never returned, so no client was
 * told) leaves a prefix of the head and submission: the file is removed. */
START_TEST(test_torn_submission)
{
    uint64_t off[2];
    s_make(8, s_specs, 0, off);
    char *path = s_journal_file(8);
    size_t n_bytes;
    char *whole = tu_slurp(path, &n_bytes);
    ck_assert_uint_eq(n_bytes, off[1]);
    char want[700];
    snprintf(want, sizeof want,
             "journal '%s': removed: its submission record is incomplete (the coordinator stopped while accepting "
             "render 8)",
             path);
    for (size_t cut = 0; cut < n_bytes; cut++) {
        s_write_file(path, whole, cut);
        rec_t r;
        ck_assert_uint_eq(s_replay(&r, false), 8);
        ck_assert_uint_eq(r.n_renders, 0);
        ck_assert_uint_eq(r.n_errors, 1);
        ck_assert_msg(strcmp(r.errs[0].msg, want) == 0, "cut at %zu: %s", cut, r.errs[0].msg);
        ck_assert(!tu_exists(path));
        s_rec_free(&r);
    }
    free(whole);
    free(path);
}
END_TEST

/* A callback's failure stops that journal only, and reaches on_error. */
START_TEST(test_callback_failure)
{
    s_make(1, s_specs, 2, NULL);
    s_make(2, s_specs, 2, NULL);
    rec_t r = {.fail_segments_of = 1};
    sf_err_t err = {0};
    ck_assert_int_eq(journal_replay(s_dir, &s_fns, &r, NULL, &err), SF_OK);
    ck_assert_uint_eq(r.n_renders, 2);
    ck_assert_uint_eq(r.renders[0].n_segs, 0);
    ck_assert_uint_eq(r.renders[1].n_segs, 2);
    ck_assert_uint_eq(r.n_errors, 1);
    ck_assert_uint_eq(r.err_ids[0], 1);
    ck_assert_int_eq(r.errs[0].code, SF_E_RENDER);
    ck_assert_str_eq(r.errs[0].msg, "job 5 is not in the plan");
    s_rec_free(&r);
}
END_TEST

START_TEST(test_create_refuses)
{
    s_make(7, s_specs, 0, NULL);
    journal_submit_t sub = s_sub(7);
    journal_t *j = (journal_t *)1;
    sf_err_t err = {0};
    char *path = s_journal_file(7);
    uint64_t size = s_size(path);
    ck_assert_int_eq(journal_create(s_dir, &sub, &j, &err), SF_E_IO);
    ck_assert_ptr_null(j);
    char want[700];
    snprintf(want, sizeof want, "journal '%s' exists: render 7 is journalled already", path);
    ck_assert_str_eq(err.msg, want);
    ck_assert_uint_eq(s_size(path), size);

    sub = s_sub(8);
    sub.out_dir = "stems";
    ck_assert_int_eq(journal_create(s_dir, &sub, &j, &err), SF_E_INPUT);
    ck_assert_str_eq(err.msg, "journal: output folder 'stems' is not absolute");
    sub = s_sub(8);
    sub.n_yaml_bytes = 0;
    ck_assert_int_eq(journal_create(s_dir, &sub, &j, &err), SF_E_INPUT);
    char *path8 = s_journal_file(8);
    ck_assert(!tu_exists(path8));

    /* Missing folders are made. */
    char *deep = tu_path(s_dir, "var/lib/stemfarm");
    sub = s_sub(8);
    sub.profile = NULL;
    sub.n_client_id = 0;
    ck_assert_int_eq(journal_create(deep, &sub, &j, &err), SF_OK);
    journal_close(&j);
    free(path8);
    path8 = tu_path(deep, "render-8.journal");
    ck_assert(tu_exists(path8));
    free(path8);
    free(deep);
    free(path);
}
END_TEST

START_TEST(test_incarnation)
{
    char *state = tu_path(s_dir, "state");
    char *file = tu_path(state, "incarnation");
    sf_err_t err = {0};
    uint32_t inc = 0;
    for (uint32_t want = 1; want <= 3; want++) {
        ck_assert_int_eq(journal_next_incarnation(state, &inc, &err), SF_OK);
        ck_assert_uint_eq(inc, want);
    }
    char *text = tu_slurp(file, NULL);
    ck_assert_str_eq(text, "3\n");
    free(text);

    /* Missing again: starts over. */
    unlink(file);
    ck_assert_int_eq(journal_next_incarnation(state, &inc, &err), SF_OK);
    ck_assert_uint_eq(inc, 1);

    static const char *const garbled[] = {"", "abc\n", "12", "12\n\n", "-1\n", "4294967296\n", "7\0\n"};
    char want[700];
    snprintf(want, sizeof want,
             "incarnation file '%s' is garbled: expected a decimal number up to 4294967295 and a newline (remove it "
             "to start over at 1)",
             file);
    for (size_t i = 0; i < sizeof garbled / sizeof *garbled; i++) {
        s_write_file(file, garbled[i], i == 6 ? 3 : strlen(garbled[i]));
        inc = 77;
        ck_assert_int_eq(journal_next_incarnation(state, &inc, &err), SF_E_IO);
        ck_assert_str_eq(err.msg, want);
        ck_assert_uint_eq(inc, 77);
        ck_assert_uint_eq(s_size(file), i == 6 ? 3 : strlen(garbled[i])); /* left for an operator */
    }
    s_write_file(file, "4294967294\n", 11);
    ck_assert_int_eq(journal_next_incarnation(state, &inc, &err), SF_OK);
    ck_assert_uint_eq(inc, 4294967295u);
    ck_assert_int_eq(journal_next_incarnation(state, &inc, &err), SF_E_IO);
    snprintf(want, sizeof want, "incarnation file '%s': the counter is exhausted", file);
    ck_assert_str_eq(err.msg, want);
    free(file);
    free(state);
}
END_TEST

/* Every allocation of create, append and replay may fail: SF_E_NOMEM, no
 * leak (the sanitizer run checks), and the journal replays afterwards. */
START_TEST(test_nomem)
{
    long n;
    for (n = 1;; n++) {
        journal_submit_t sub = s_sub(2);
        journal_t *j = NULL;
        sf_alloc_fail_after(n);
        sf_rc rc = journal_create(s_dir, &sub, &j, NULL);
        if (rc == SF_OK) {
            float *f = s_frames(1, 2, 8);
            rc = journal_append_segment(j, 4, 2, 8, f, s_xxh3(f, 2, 8), "n", NULL);
            free(f);
        }
        sf_alloc_fail_after(0);
        journal_close(&j);
        if (rc == SF_OK)
            break;
        ck_assert_int_eq(rc, SF_E_NOMEM);
        char *path = s_journal_file(2);
        unlink(path); /* a create that failed leaves none; an append that failed leaves a journal */
        free(path);
        ck_assert_int_lt(n, 1000);
    }
    ck_assert_int_gt(n, 3);
    s_make(3, s_specs, 2, NULL);
    for (n = 1;; n++) {
        rec_t r = {.take = true};
        sf_alloc_fail_after(n);
        sf_rc rc = journal_replay(s_dir, &s_fns, &r, NULL, NULL);
        sf_alloc_fail_after(0);
        s_rec_free(&r);
        if (rc == SF_OK)
            break;
        ck_assert_int_eq(rc, SF_E_NOMEM);
        ck_assert_int_lt(n, 1000);
    }
    ck_assert_int_gt(n, 5);
    rec_t r;
    s_replay(&r, false);
    ck_assert_uint_eq(r.n_errors, 0);
    ck_assert_uint_eq(r.n_renders, 2);
    ck_assert_uint_eq(r.renders[0].n_segs, 1);
    ck_assert_uint_eq(r.renders[1].n_segs, 2);
    s_rec_free(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("journal");
    TCase *tc = tcase_create("journal");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_torn_tail_at_every_byte);
    tcase_add_test(tc, test_damaged_middle_record);
    tcase_add_test(tc, test_absurd_length);
    tcase_add_test(tc, test_duplicate_job);
    tcase_add_test(tc, test_group_commit);
    tcase_add_test(tc, test_finish_removes);
    tcase_add_test(tc, test_max_render_id_and_odd_files);
    tcase_add_test(tc, test_torn_submission);
    tcase_add_test(tc, test_callback_failure);
    tcase_add_test(tc, test_create_refuses);
    tcase_add_test(tc, test_incarnation);
    tcase_add_test(tc, test_nomem);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
