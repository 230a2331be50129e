/* test_pathmap.c -- path mapping, media roots and the node config
 * (sf/pathmap.h), and the session loader with a path map (sf/session.h):
 * component matching, the longest prefix, drive and UNC forms in both
 * slash styles, case rules, `..` refusal, passthrough, the exact messages a
 * user sees, symlinks that leave a media root (real temp files), config
 * errors at file:line:col, and allocation failure at every point. */
/* realpath(3), symlink(2) are XSI / POSIX.1-2008. */
#define _XOPEN_SOURCE 700

#include "sf/alloc.h"
#include "sf/pathmap.h"
#include "sf/session.h"
#include "testutil.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------- */

typedef struct {
    const char *from, *to;
} rule_t;

static sf_pathmap_t *s_map(const rule_t *rules, size_t n)
{
    sf_pathmap_t *m = NULL;
    sf_err_t err = {0};
    ck_assert_int_eq(sf_pathmap_new(&m, &err), SF_OK);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(sf_pathmap_add_rule(m, rules[i].from, rules[i].to, &err) == SF_OK, "rule %s -> %s: %s",
                      rules[i].from, rules[i].to, err.msg);
    return m;
}

/* Maps `path` and checks the result (want NULL: an SF_E_INPUT error). */
static void s_expect_map(const sf_pathmap_t *m, const char *path, const char *want)
{
    char *out = (char *)1;
    sf_err_t err = {0};
    sf_rc rc = sf_pathmap_apply(m, path, &out, &err);
    if (!want) {
        ck_assert_msg(rc == SF_E_INPUT, "'%s' mapped to '%s', expected an error", path, rc ? "" : out);
        ck_assert_ptr_null(out);
        return;
    }
    ck_assert_msg(rc == SF_OK, "'%s': %s", path, err.msg);
    ck_assert_msg(strcmp(out, want) == 0, "'%s' -> '%s', expected '%s'", path, out, want);
    sf_free(out);
}

static void s_expect_error(const sf_pathmap_t *m, const char *path, const char *want_msg)
{
    char *out = NULL;
    sf_err_t err = {0};
    ck_assert_int_eq(sf_pathmap_apply(m, path, &out, &err), SF_E_INPUT);
    ck_assert_ptr_null(out);
    ck_assert_str_eq(err.msg, want_msg);
}

/* ---- matching --------------------------------------------------------------- */

START_TEST(test_components_not_bytes)
{
    static const rule_t rules[] = {{"/Volumes/Media", "/mnt/media"}};
    sf_pathmap_t *m = s_map(rules, 1);
    s_expect_map(m, "/Volumes/Media/x.wav", "/mnt/media/x.wav");
    s_expect_map(m, "/Volumes/Media", "/mnt/media");
    s_expect_map(m, "/Volumes/Media/", "/mnt/media");
    s_expect_map(m, "/Volumes/Media/Projects/Song A/drums/kick.wav", "/mnt/media/Projects/Song A/drums/kick.wav");
    /* a longer name is another folder: passes through untouched */
    s_expect_map(m, "/Volumes/MediaOld/x.wav", "/Volumes/MediaOld/x.wav");
    s_expect_map(m, "/Volumes/Medi/x.wav", "/Volumes/Medi/x.wav");
    /* POSIX rules compare exactly */
    s_expect_map(m, "/volumes/media/x.wav", "/volumes/media/x.wav");
    /* the mapped result is normal: doubled slashes and "." dropped */
    /* exactly two leading slashes make a UNC path (server "Volumes"): no UNC rule, an error */
    s_expect_map(m, "//Volumes/Media/a.wav", NULL);
    s_expect_map(m, "/Volumes//Media/./a//b.wav", "/mnt/media/a/b.wav");
    s_expect_map(m, "///Volumes/Media/a.wav", "/mnt/media/a.wav");
    /* a backslash is an ordinary character in a POSIX path */
    s_expect_map(m, "/Volumes/Media/a\\b.wav", "/mnt/media/a\\b.wav");
    sf_pathmap_destroy(&m);
    ck_assert_ptr_null(m);
    sf_pathmap_destroy(&m); /* idempotent */
}
END_TEST

START_TEST(test_longest_prefix_wins)
{
    static const rule_t a[] = {{"/Volumes/Media", "/mnt/media"},
                               {"/Volumes/Media/Archive/2019", "/mnt/archive19"},
                               {"/Volumes/Media/Archive", "/mnt/archive"}};
    static const rule_t b[] = {{"/Volumes/Media/Archive", "/mnt/archive"},
                               {"/Volumes/Media/Archive/2019", "/mnt/archive19"},
                               {"/Volumes/Media", "/mnt/media"}};
    const rule_t *orders[] = {a, b};
    for (int o = 0; o < 2; o++) {
        sf_pathmap_t *m = s_map(orders[o], 3);
        s_expect_map(m, "/Volumes/Media/Archive/2019/x.wav", "/mnt/archive19/x.wav");
        s_expect_map(m, "/Volumes/Media/Archive/2020/x.wav", "/mnt/archive/2020/x.wav");
        s_expect_map(m, "/Volumes/Media/Archive", "/mnt/archive");
        s_expect_map(m, "/Volumes/Media/ArchiveX/y.wav", "/mnt/media/ArchiveX/y.wav");
        s_expect_map(m, "/Volumes/Media/y.wav", "/mnt/media/y.wav");
        sf_pathmap_destroy(&m);
    }
    /* the same prefix twice (the API allows it; the config file does not): the first wins */
    static const rule_t tie[] = {{"M:\\Projects", "/mnt/first"}, {"m:/projects", "/mnt/second"}};
    sf_pathmap_t *m = s_map(tie, 2);
    s_expect_map(m, "M:\\Projects\\x.wav", "/mnt/first/x.wav");
    sf_pathmap_destroy(&m);
}
END_TEST

START_TEST(test_drive_letters)
{
    static const rule_t rules[] = {{"M:\\", "/mnt/media"}, {"P:/Projects/Current", "/srv/current"}};
    sf_pathmap_t *m = s_map(rules, 2);
    s_expect_map(m, "M:\\Projects\\Song\\kick.wav", "/mnt/media/Projects/Song/kick.wav");
    s_expect_map(m, "M:/Projects/Song/kick.wav", "/mnt/media/Projects/Song/kick.wav");
    s_expect_map(m, "m:\\Projects/Song\\kick.wav", "/mnt/media/Projects/Song/kick.wav");
    s_expect_map(m, "M:", "/mnt/media");
    s_expect_map(m, "M:\\", "/mnt/media");
    s_expect_map(m, "M:\\\\a\\\\b.wav", "/mnt/media/a/b.wav");
    /* components of Windows rules compare case-insensitively; the rest keeps its case */
    s_expect_map(m, "p:\\PROJECTS\\current\\Song\\Kick.WAV", "/srv/current/Song/Kick.WAV");
    s_expect_map(m, "P:\\Projects\\CurrentOld\\x.wav", NULL); /* no rule for P: beyond that prefix */
    /* "M:x" is relative to drive M's current folder on Windows; here it is a relative name */
    s_expect_map(m, "M:x.wav", "M:x.wav");
    ck_assert(sf_pathmap_is_absolute("M:\\"));
    ck_assert(sf_pathmap_is_absolute("z:/a"));
    ck_assert(sf_pathmap_is_absolute("M:"));
    ck_assert(!sf_pathmap_is_absolute("M:x"));
    ck_assert(!sf_pathmap_is_absolute("MM:\\x"));
    ck_assert(!sf_pathmap_is_absolute("1:\\x"));
    sf_pathmap_destroy(&m);
}
END_TEST

START_TEST(test_unc_both_slash_forms)
{
    static const rule_t back[] = {{"\\\\nas01\\media", "/mnt/media"}};
    static const rule_t fwd[] = {{"//NAS01/Media/", "/mnt/media"}};
    const rule_t *forms[] = {back, fwd};
    for (int f = 0; f < 2; f++) {
        sf_pathmap_t *m = s_map(forms[f], 1);
        s_expect_map(m, "\\\\nas01\\media\\Projects\\a.wav", "/mnt/media/Projects/a.wav");
        s_expect_map(m, "//nas01/media/Projects/a.wav", "/mnt/media/Projects/a.wav");
        s_expect_map(m, "\\\\NAS01\\MEDIA\\Projects\\a.wav", "/mnt/media/Projects/a.wav");
        s_expect_map(m, "\\\\nas01/media\\Projects/a.wav", "/mnt/media/Projects/a.wav");
        s_expect_map(m, "//nas01/media", "/mnt/media");
        s_expect_map(m, "\\\\nas01\\mediaold\\a.wav", NULL);
        s_expect_map(m, "\\\\nas02\\media\\a.wav", NULL);
        /* a drive is another form: a UNC rule never matches it */
        s_expect_map(m, "M:\\media\\a.wav", NULL);
        sf_pathmap_destroy(&m);
    }
    ck_assert(sf_pathmap_is_absolute("\\\\nas\\share"));
    ck_assert(sf_pathmap_is_absolute("//nas/share"));
    ck_assert(sf_pathmap_is_absolute("/a"));
    ck_assert(!sf_pathmap_is_absolute("a/b"));
    ck_assert(!sf_pathmap_is_absolute(""));
    s_expect_error(NULL, "\\\\nas01", "'\\\\nas01' is not a complete UNC path (expected \\\\server\\share\\...)");
}
END_TEST

START_TEST(test_dotdot_never_climbs_above_the_target)
{
    static const rule_t rules[] = {
        {"/Volumes/Media", "/mnt/media"}, {"M:\\", "/mnt/m"}, {"\\\\nas01\\media", "/mnt/nas"}, {"/Studio", "/"}};
    sf_pathmap_t *m = s_map(rules, 4);
    s_expect_map(m, "/Volumes/Media/a/../b.wav", "/mnt/media/b.wav");
    s_expect_map(m, "/Volumes/Media/a/b/../../c.wav", "/mnt/media/c.wav");
    s_expect_map(m, "/Volumes/Media/a/..", "/mnt/media");
    s_expect_map(m, "M:\\a\\..\\b.wav", "/mnt/m/b.wav");
    s_expect_map(m, "/Studio/x/y", "/x/y");
    s_expect_error(m, "/Volumes/Media/../../etc/passwd",
                   "'/Volumes/Media/../../etc/passwd' climbs above '/mnt/media' with '..' "
                   "(the path_map rule for '/Volumes/Media' maps no higher)");
    s_expect_map(m, "/Volumes/Media/a/../../secret", NULL);
    s_expect_map(m, "M:\\..\\x", NULL);
    s_expect_map(m, "M:/a/../../x", NULL);
    s_expect_map(m, "\\\\nas01\\media\\..\\other\\x", NULL);
    s_expect_map(m, "//nas01/media/../other/x", NULL);
    s_expect_map(m, "/Studio/../x", NULL);
    sf_pathmap_destroy(&m);
}
END_TEST

START_TEST(test_passthrough)
{
    static const rule_t rules[] = {{"/Volumes/Media", "/mnt/media"}};
    sf_pathmap_t *m = s_map(rules, 1);
    /* unmapped POSIX paths come back byte for byte, `..` and all */
    static const char *const same[] = {"/mnt/media/a.wav", "/srv/x/../y.wav", "/a//b/./c", "/",
                                       "drums/kick.wav",   "../up.wav",       ""};
    for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
        s_expect_map(m, same[i], same[i]);
        s_expect_map(NULL, same[i], same[i]); /* no map at all */
    }
    ck_assert_uint_eq(sf_pathmap_n_rules(m), 1);
    ck_assert_uint_eq(sf_pathmap_n_roots(m), 0);
    ck_assert_uint_eq(sf_pathmap_n_rules(NULL), 0);
    sf_pathmap_destroy(&m);
}
END_TEST

START_TEST(test_unmapped_windows_path_says_what_to_add)
{
    static const rule_t rules[] = {{"M:\\", "/mnt/media"}};
    sf_pathmap_t *m = s_map(rules, 1);
    s_expect_error(m, "Z:\\Projects\\a.wav",
                   "no path_map rule maps 'Z:\\Projects\\a.wav': a Windows path cannot be opened on this machine; "
                   "add a rule to the config, e.g. {from: 'Z:\\', to: /where/it/is/mounted}");
    s_expect_error(m, "//nas9/Share/Projects/a.wav",
                   "no path_map rule maps '//nas9/Share/Projects/a.wav': a Windows path cannot be opened on this "
                   "machine; add a rule to the config, e.g. {from: '\\\\nas9\\Share', to: /where/it/is/mounted}");
    s_expect_error(NULL, "m:\\a.wav",
                   "no path_map rule maps 'm:\\a.wav': a Windows path cannot be opened on this machine; "
                   "add a rule to the config, e.g. {from: 'M:\\', to: /where/it/is/mounted}");
    sf_pathmap_destroy(&m);
}
END_TEST

START_TEST(test_bad_rules_and_roots)
{
    static const struct {
        const char *from, *to, *msg;
    } cases[] = {
        {"Volumes/Media", "/mnt",
         "'from' path 'Volumes/Media' is not absolute (expected /..., X:\\... or "
         "\\\\server\\share...)"},
        {"/Volumes/../etc", "/mnt", "'from' path '/Volumes/../etc' must not contain '..'"},
        {"M:\\a\\..", "/mnt", "'from' path 'M:\\a\\..' must not contain '..'"},
        {"\\\\nas", "/mnt", "'\\\\nas' is not a complete UNC path (expected \\\\server\\share\\...)"},
        {"/a", "mnt/media", "'to' path 'mnt/media' is not an absolute POSIX path (expected /...)"},
        {"/a", "M:\\media", "'to' path 'M:\\media' is not an absolute POSIX path (expected /...)"},
        {"/a", "//nas/share", "'to' path '//nas/share' is not an absolute POSIX path (expected /...)"},
        {"/a", "/mnt/../etc", "'to' path '/mnt/../etc' must not contain '..'"},
    };
    sf_pathmap_t *m = s_map(NULL, 0);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sf_err_t err = {0};
        ck_assert_int_eq(sf_pathmap_add_rule(m, cases[i].from, cases[i].to, &err), SF_E_INPUT);
        ck_assert_str_eq(err.msg, cases[i].msg);
    }
    sf_err_t err = {0};
    ck_assert_int_eq(sf_pathmap_add_root(m, "media", &err), SF_E_INPUT);
    ck_assert_str_eq(err.msg, "media root 'media' is not an absolute POSIX path (expected /...)");
    ck_assert_int_eq(sf_pathmap_add_root(m, "/mnt/../etc", &err), SF_E_INPUT);
    ck_assert_int_eq(sf_pathmap_n_rules(m), 0);
    ck_assert_int_eq(sf_pathmap_n_roots(m), 0);
    sf_pathmap_destroy(&m);
}
END_TEST

/* ---- media roots (real files) --------------------------------------------- */

static char *s_dir;
static char s_real[PATH_MAX]; /* realpath of s_dir */

static void s_setup(void)
{
    s_dir = tu_tmpdir();
    ck_assert_ptr_nonnull(realpath(s_dir, s_real));
}

static void s_teardown(void)
{
    tu_rm_rf(s_dir);
    free(s_dir);
}

static char *s_in(const char *name) { return tu_path(s_real, name); }

static void s_symlink(const char *target, const char *name)
{
    char *link = s_in(name);
    ck_assert_msg(symlink(target, link) == 0, "symlink %s", link);
    free(link);
}

/* Checks `name` (under the temp folder) against m; want_rc and, when
 * SF_E_INPUT, a fragment of the message. */
static void s_expect_root(const sf_pathmap_t *m, const char *name, sf_rc want_rc, const char *fragment)
{
    char *path = s_in(name);
    char *real = NULL;
    sf_err_t err = {0};
    sf_rc rc = sf_pathmap_check_root(m, path, &real, &err);
    ck_assert_msg(rc == want_rc, "'%s': rc %d (%s), expected %d", name, rc, err.msg, want_rc);
    if (rc == SF_OK) {
        char want[PATH_MAX];
        ck_assert_ptr_nonnull(realpath(path, want));
        ck_assert_str_eq(real, want);
    } else {
        ck_assert_ptr_null(real);
        ck_assert_msg(strstr(err.msg, fragment), "'%s': message '%s' lacks '%s'", name, err.msg, fragment);
    }
    sf_free(real);
    free(path);
}

START_TEST(test_media_roots_follow_symlinks)
{
    free(tu_write_text(s_real, "media/a.wav", "a"));
    free(tu_write_text(s_real, "media/sub/b.wav", "b"));
    free(tu_write_text(s_real, "other/secret.wav", "s"));
    free(tu_write_text(s_real, "mediax/c.wav", "c"));
    char *other = s_in("other");
    char *secret = s_in("other/secret.wav");
    s_symlink(secret, "media/link.wav");    /* a file link that leaves the root */
    s_symlink(other, "media/dirlink");      /* a folder link that leaves it */
    s_symlink("sub/b.wav", "media/in.wav"); /* a link that stays inside */
    char *media = s_in("media");
    s_symlink(media, "medialink"); /* a root given as a symlink */

    sf_pathmap_t *m = s_map(NULL, 0);
    sf_err_t err = {0};
    /* no roots: anything that resolves */
    s_expect_root(m, "other/secret.wav", SF_OK, NULL);
    ck_assert_int_eq(sf_pathmap_add_root(m, media, &err), SF_OK);
    ck_assert_int_eq(sf_pathmap_add_root(m, "/nonexistent/stemfarm-root", &err), SF_OK);

    s_expect_root(m, "media/a.wav", SF_OK, NULL);
    s_expect_root(m, "media/sub/b.wav", SF_OK, NULL);
    s_expect_root(m, "media/in.wav", SF_OK, NULL);
    s_expect_root(m, "media", SF_OK, NULL);
    s_expect_root(m, "medialink/a.wav", SF_OK, NULL);
    s_expect_root(m, "media/link.wav", SF_E_INPUT, "resolves to");
    s_expect_root(m, "media/link.wav", SF_E_INPUT, "secret.wav', outside the media roots");
    s_expect_root(m, "media/dirlink/secret.wav", SF_E_INPUT, "outside the media roots");
    s_expect_root(m, "media/../other/secret.wav", SF_E_INPUT, "outside the media roots");
    s_expect_root(m, "other/secret.wav", SF_E_INPUT, "is outside the media roots");
    s_expect_root(m, "mediax/c.wav", SF_E_INPUT, "outside the media roots"); /* a prefix in bytes only */
    s_expect_root(m, "media/missing.wav", SF_E_IO, "no such file or directory");

    /* the message names the path and every root as configured */
    char *path = s_in("other/secret.wav");
    ck_assert_int_eq(sf_pathmap_check_root(m, path, NULL, &err), SF_E_INPUT);
    char want[3 * PATH_MAX];
    snprintf(want, sizeof want, "'%s' is outside the media roots ('%s', '/nonexistent/stemfarm-root')", path, media);
    ck_assert_str_eq(err.msg, want);
    free(path);

    /* the root given through its symlink holds the same files */
    sf_pathmap_t *m2 = s_map(NULL, 0);
    char *medialink = s_in("medialink");
    ck_assert_int_eq(sf_pathmap_add_root(m2, medialink, &err), SF_OK);
    s_expect_root(m2, "media/a.wav", SF_OK, NULL);
    s_expect_root(m2, "media/link.wav", SF_E_INPUT, "outside the media roots");
    sf_pathmap_t *m3 = s_map(NULL, 0);
    ck_assert_int_eq(sf_pathmap_add_root(m3, "/", &err), SF_OK);
    s_expect_root(m3, "other/secret.wav", SF_OK, NULL);

    sf_pathmap_destroy(&m);
    sf_pathmap_destroy(&m2);
    sf_pathmap_destroy(&m3);
    free(medialink);
    free(media);
    free(other);
    free(secret);
}
END_TEST

/* ---- the config file ------------------------------------------------------ */

/* Loads `yaml` as "node.yaml"; returns the diagnostics as printed. */
static char *s_load_cfg(const char *yaml, sf_rc *rc, sf_pathmap_t **out)
{
    sf_diags_t diags = SF_DIAGS_INIT;
    sf_err_t err = {0};
    *rc = sf_pathmap_load_text("node.yaml", yaml, strlen(yaml), out, &diags, &err);
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    sf_diags_print(&diags, f);
    fclose(f);
    if (*rc == SF_E_INPUT)
        ck_assert_msg(diags.n_errors > 0, "SF_E_INPUT without a diagnostic: %s", err.msg);
    sf_diags_free(&diags);
    return text;
}

START_TEST(test_config_good)
{
    const char *yaml = "# a node\n"
                       "media_roots: [/mnt/media, /srv/stems-cache/]\n"
                       "path_map:\n"
                       "  - from: /Volumes/Media\n"
                       "    to: /mnt/media\n"
                       "  - from: 'M:\\'\n"
                       "    to: /mnt/media\n"
                       "  - {from: '\\\\nas01\\media', to: /mnt/media}\n"
                       "  - {from: M:\\Archive, to: /mnt/archive}\n";
    sf_rc rc;
    sf_pathmap_t *m = NULL;
    char *diags = s_load_cfg(yaml, &rc, &m);
    ck_assert_msg(rc == SF_OK, "%s", diags);
    ck_assert_str_eq(diags, "");
    ck_assert_uint_eq(sf_pathmap_n_rules(m), 4);
    ck_assert_uint_eq(sf_pathmap_n_roots(m), 2);
    s_expect_map(m, "/Volumes/Media/P/a.wav", "/mnt/media/P/a.wav");
    s_expect_map(m, "M:\\P\\a.wav", "/mnt/media/P/a.wav");
    s_expect_map(m, "m:/archive/a.wav", "/mnt/archive/a.wav");
    s_expect_map(m, "//NAS01/media/P/a.wav", "/mnt/media/P/a.wav");
    sf_pathmap_destroy(&m);
    free(diags);

    /* a node that ships its media, and its cache */
    diags = s_load_cfg("media: ship\ncache: {dir: /var/cache//stemfarm/, max_size: 20G}\n", &rc, &m);
    ck_assert_msg(rc == SF_OK, "%s", diags);
    ck_assert_int_eq(sf_pathmap_media(m), SF_MEDIA_SHIP);
    ck_assert_str_eq(sf_pathmap_cache_dir(m), "/var/cache/stemfarm");
    ck_assert_uint_eq(sf_pathmap_cache_max_bytes(m), 20ull << 30);
    sf_pathmap_destroy(&m);
    free(diags);
    diags = s_load_cfg("media: shared\n", &rc, &m);
    ck_assert_msg(rc == SF_OK, "%s", diags);
    ck_assert_int_eq(sf_pathmap_media(m), SF_MEDIA_SHARED);
    ck_assert_ptr_null(sf_pathmap_cache_dir(m));
    ck_assert_uint_eq(sf_pathmap_cache_max_bytes(m), 0);
    sf_pathmap_destroy(&m);
    free(diags);
    ck_assert_int_eq(sf_pathmap_media(NULL), SF_MEDIA_SHARED);
    static const struct {
        const char *text;
        uint64_t bytes;
    } sizes[] = {{"1", 1}, {"4096", 4096}, {"3k", 3072}, {"512M", 512u << 20}, {"2T", 2ull << 40}};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        uint64_t v = 0;
        ck_assert_int_eq(sf_pathmap_parse_size(sizes[i].text, &v, NULL), SF_OK);
        ck_assert_uint_eq(v, sizes[i].bytes);
    }
    static const char *const bad_sizes[] = {"", "G", "-1", "1.5G", "20GB", "0", "99999999999999999999", "5000000T"};
    for (size_t i = 0; i < sizeof bad_sizes / sizeof *bad_sizes; i++) {
        uint64_t v = 0;
        ck_assert_msg(sf_pathmap_parse_size(bad_sizes[i], &v, NULL) == SF_E_INPUT, "'%s' accepted", bad_sizes[i]);
    }

    /* only roots, only rules, or empty lists are configs too */
    static const char *const small[] = {"media_roots: [/mnt/media]\n", "path_map: []\n", "media_roots: []\n"};
    for (size_t i = 0; i < sizeof small / sizeof *small; i++) {
        diags = s_load_cfg(small[i], &rc, &m);
        ck_assert_msg(rc == SF_OK, "%s: %s", small[i], diags);
        sf_pathmap_destroy(&m);
        free(diags);
    }
}
END_TEST

START_TEST(test_config_errors_at_line_col)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"media_roots: [/mnt/media]\npath_mpa: []\n",
         "node.yaml:2:1: error: unknown key 'path_mpa' (expected media_roots, path_map, media, cache)\n"},
        {"media_roots: /mnt/media\n", "node.yaml:1:14: error: 'media_roots' must be a list of folders, not a value\n"},
        {"media_roots:\n  - /mnt/media\n  - media\n  - [/x]\n",
         "node.yaml:3:5: error: media root 'media' is not an absolute POSIX path (expected /...)\n"
         "node.yaml:4:5: error: a media root must be a path, not a list\n"},
        {"path_map:\n  - from: Volumes/Media\n    to: /mnt/media\n",
         "node.yaml:2:11: error: 'from' path 'Volumes/Media' is not absolute (expected /..., X:\\... or "
         "\\\\server\\share...)\n"},
        {"path_map:\n  - from: /Volumes/Media\n    to: M:\\media\n",
         "node.yaml:3:9: error: 'to' path 'M:\\media' is not an absolute POSIX path (expected /...)\n"},
        {"path_map:\n  - from: /Volumes/Media\n", "node.yaml:2:5: error: path_map entry 1 needs 'to'\n"},
        {"path_map:\n  - {from: /a, to: /b, too: /c}\n",
         "node.yaml:2:24: error: unknown key 'too' in path_map entry 1 (expected from, to)\n"},
        {"path_map:\n  - from: 'M:\\'\n    to: /mnt/a\n  - from: m:/\n    to: /mnt/b\n",
         "node.yaml:4:11: error: a second path_map rule for 'm:/' (the first is at line 2)\n"},
        {"path_map:\n  - from: /Volumes/../etc\n    to: /mnt\n",
         "node.yaml:2:11: error: 'from' path '/Volumes/../etc' must not contain '..'\n"},
        {"path_map:\n  - from:\n    to: /mnt\n", "node.yaml:2:10: error: 'from' must be a path, not empty\n"},
        {"path_map: {from: /a, to: /b}\n",
         "node.yaml:1:11: error: 'path_map' must be a list of {from, to} rules, not a mapping\n"},
        {"path_map:\n  - /a\n",
         "node.yaml:2:5: error: path_map entry 1 must be a mapping with 'from' and 'to', not a value\n"},
        /* a backslash escapes in double quotes: the quote never closes */
        {"path_map:\n  - from: \"M:\\\"\n    to: /mnt\n",
         "node.yaml:4:1: error: invalid YAML: found unexpected end of stream (while scanning a quoted scalar at line "
         "2)\n"},
        {"", "node.yaml: error: the config file is empty (expected media_roots and path_map)\n"},
        {"- /a\n", "node.yaml:1:1: error: the top level must be a mapping with media_roots and path_map, not a list\n"},
        {"media_roots: [/a]\nmedia_roots: [/b]\n", "node.yaml:2:1: error: duplicate key 'media_roots'\n"},
        {"media: shipped\n", "node.yaml:1:8: error: unknown media mode 'shipped' (expected shared or ship)\n"},
        {"media: [ship]\n", "node.yaml:1:8: error: 'media' must be shared or ship, not a list\n"},
        {"cache: /var/cache\n", "node.yaml:1:8: error: 'cache' must be a mapping with dir and max_size, not a value\n"},
        {"cache: {dir: cache, max_size: 20X, size: 1}\n",
         "node.yaml:1:14: error: cache dir 'cache' is not an absolute POSIX path (expected /...)\n"
         "node.yaml:1:31: error: cache max_size: invalid size '20X' (expected a whole number of bytes above 0 with "
         "an optional K, M, G or T suffix, e.g. 20G)\n"
         "node.yaml:1:36: error: unknown key 'size' in cache (expected dir, max_size)\n"},
        {"cache: {max_size: 0}\n",
         "node.yaml:1:19: error: cache max_size: invalid size '0' (expected a whole number of bytes above 0 with an "
         "optional K, M, G or T suffix, e.g. 20G)\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sf_rc rc;
        sf_pathmap_t *m = (sf_pathmap_t *)1;
        char *diags = s_load_cfg(cases[i].yaml, &rc, &m);
        ck_assert_msg(rc == SF_E_INPUT, "case %zu: rc %d", i, rc);
        ck_assert_ptr_null(m);
        ck_assert_msg(strcmp(diags, cases[i].want) == 0, "case %zu:\n%s\nexpected:\n%s", i, diags, cases[i].want);
        free(diags);
    }
}
END_TEST

START_TEST(test_config_file_and_example)
{
    sf_pathmap_t *m = NULL;
    sf_diags_t diags = SF_DIAGS_INIT;
    sf_err_t err = {0};
    ck_assert_int_eq(sf_pathmap_load("/nonexistent/stemfarm/node.yaml", &m, &diags, &err), SF_E_IO);
    ck_assert_str_eq(err.msg, "cannot open '/nonexistent/stemfarm/node.yaml': no such file or directory");
    ck_assert_ptr_null(m);

    /* anything large is not a config: said once, as a diagnostic */
    char *dir = tu_tmpdir();
    size_t n_big = (1u << 20) + 100;
    char *big = malloc(n_big + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, '#', n_big);
    big[n_big] = '\0';
    char *big_path = tu_write_text(dir, "big.yaml", big);
    ck_assert_int_eq(sf_pathmap_load(big_path, &m, &diags, &err), SF_E_INPUT);
    ck_assert_uint_eq(diags.n_errors, 1);
    ck_assert_str_eq(diags.items[0].msg, "larger than 1 MiB: not a stemfarm config");
    sf_diags_free(&diags);
    tu_rm_rf(dir);
    free(big_path);
    free(big);
    free(dir);

    /* the example the README shows never rots */
    const char *src = getenv("STEMFARM_SOURCE_DIR");
    ck_assert_ptr_nonnull(src);
    char *example = tu_path(src, "configs/node.example.yaml");
    sf_rc rc = sf_pathmap_load(example, &m, &diags, &err);
    ck_assert_msg(rc == SF_OK, "%s: %s", example, diags.n_items ? diags.items[0].msg : err.msg);
    ck_assert_uint_eq(sf_pathmap_n_rules(m), 3);
    ck_assert_uint_eq(sf_pathmap_n_roots(m), 2);
    s_expect_map(m, "M:\\Projects\\Song\\kick.wav", "/mnt/media/Projects/Song/kick.wav");
    s_expect_map(m, "\\\\nas01\\media\\Projects\\Song\\kick.wav", "/mnt/media/Projects/Song/kick.wav");
    s_expect_map(m, "/Volumes/Media/Projects/Song/kick.wav", "/mnt/media/Projects/Song/kick.wav");
    ck_assert_int_eq(sf_pathmap_media(m), SF_MEDIA_SHARED);
    ck_assert_str_eq(sf_pathmap_cache_dir(m), "/var/cache/stemfarm");
    ck_assert_uint_eq(sf_pathmap_cache_max_bytes(m), 20ull << 30);
    sf_pathmap_destroy(&m);
    sf_diags_free(&diags);
    free(example);
}
END_TEST

START_TEST(test_nomem_everywhere)
{
    const char *yaml = "media_roots: [/mnt/media, /srv/cache]\n"
                       "path_map:\n  - {from: /Volumes/Media, to: /mnt/media}\n"
                       "  - {from: 'M:\\', to: /mnt/m}\n  - {from: '\\\\nas\\share', to: /mnt/n}\n"
                       "bogus: 1\n";
    int n_runs = 0;
    for (long n = 1;; n++) {
        sf_pathmap_t *m = (sf_pathmap_t *)1;
        sf_diags_t diags = SF_DIAGS_INIT;
        sf_err_t err = {0};
        sf_alloc_fail_after(n);
        sf_rc rc = sf_pathmap_load_text("node.yaml", yaml, strlen(yaml), &m, &diags, &err);
        sf_alloc_fail_after(0);
        sf_diags_free(&diags);
        n_runs++;
        ck_assert_ptr_null(m);
        if (rc == SF_E_NOMEM) {
            ck_assert_str_eq(err.msg, "out of memory");
            ck_assert_msg(n < 10000, "no end to the allocations");
            continue;
        }
        ck_assert_int_eq(rc, SF_E_INPUT); /* the bogus key */
        break;
    }
    ck_assert_int_gt(n_runs, 5);

    static const rule_t rules[] = {{"/Volumes/Media", "/mnt/media"}};
    sf_pathmap_t *m = s_map(rules, 1);
    for (long n = 1;; n++) {
        char *out = NULL;
        sf_err_t err = {0};
        sf_alloc_fail_after(n);
        sf_rc rc = sf_pathmap_apply(m, "/Volumes/Media/a/../b.wav", &out, &err);
        sf_alloc_fail_after(0);
        if (rc == SF_E_NOMEM) {
            ck_assert_ptr_null(out);
            continue;
        }
        ck_assert_int_eq(rc, SF_OK);
        ck_assert_str_eq(out, "/mnt/media/b.wav");
        sf_free(out);
        break;
    }
    sf_pathmap_destroy(&m);
}
END_TEST

/* ---- the session loader with a path map ------------------------------------ */

static double s_ramp(int ch, int64_t i, void *ctx)
{
    (void)ctx;
    return ((double)(i % 100) / 100.0 - 0.5) * (ch ? -0.5 : 0.5);
}

/* A session (in the temp folder's studio/) whose media_root is `root` as
 * written, with sources kick.wav and sub/snare.wav under it. */
static char *s_session(const char *root)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "version: 1\nsession:\n  name: Mapped\n  sample_rate: 48000\n  media_root: '%s'\n"
             "tracks:\n  - name: Kick\n    source: kick.wav\n  - name: Snare\n    source: sub/snare.wav\n"
             "stems:\n  - name: All\n    tracks: [\"*\"]\n",
             root);
    return tu_write_text(s_real, "studio/session.yaml", yaml);
}

/* Loads `path` with `map`; returns the first diagnostic line ("" if none). */
static char *s_load_session(const char *path, const sf_pathmap_t *map, const char *hash_base_dir, sf_rc *rc,
                            sf_session_t **out)
{
    sf_session_load_opts_t opts = sf_session_load_opts_default();
    opts.pathmap = map;
    opts.hash_base_dir = hash_base_dir;
    sf_diags_t diags = SF_DIAGS_INIT;
    sf_err_t err = {0};
    *rc = sf_session_load(path, &opts, out, &diags, &err);
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    sf_diags_print(&diags, f);
    if (*rc && !diags.n_errors)
        fprintf(f, "%s\n", err.msg);
    fclose(f);
    sf_diags_free(&diags);
    return text;
}

START_TEST(test_session_sources_mapped)
{
    free(tu_write_wav(s_real, "A/media/kick.wav", 1, 48000, 4800, 24, s_ramp, NULL));
    free(tu_write_wav(s_real, "A/media/sub/snare.wav", 1, 48000, 4800, 24, s_ramp, NULL));
    char *a = s_in("A"), *a_media = s_in("A/media");
    char studio[64];
    snprintf(studio, sizeof studio, "/Volumes/StemfarmUnit-%ld", (long)getpid());
    char posix_root[128];
    snprintf(posix_root, sizeof posix_root, "%s/media", studio);
    const rule_t rules[] = {{studio, a}, {"S:\\", a}};
    sf_pathmap_t *m = s_map(rules, 2);
    sf_err_t err = {0};
    ck_assert_int_eq(sf_pathmap_add_root(m, a, &err), SF_OK);

    static const char *const roots[] = {NULL, "S:\\media", "s:/media/"};
    for (size_t r = 0; r < 3; r++) {
        char *path = s_session(roots[r] ? roots[r] : posix_root);
        sf_rc rc;
        sf_session_t *s = NULL;
        char *diags = s_load_session(path, m, NULL, &rc, &s);
        ck_assert_msg(rc == SF_OK, "%s", diags);
        ck_assert_str_eq(s->media_root, a_media);
        char *kick = s_in("A/media/kick.wav"), *snare = s_in("A/media/sub/snare.wav");
        ck_assert_str_eq(s->tracks[0].clips[0].path, kick);
        ck_assert_str_eq(s->tracks[1].clips[0].path, snare);
        free(kick);
        free(snare);
        /* the hash stays what the folder of the session gives, unless told */
        sf_session_t *s2 = NULL;
        free(s_load_session(path, m, s->base_dir, &rc, &s2));
        ck_assert_int_eq(rc, SF_OK);
        ck_assert_mem_eq(s->hash, s2->hash, SF_SESSION_HASH_BYTES);
        sf_session_destroy(&s2);
        free(s_load_session(path, m, "/coordinator/elsewhere", &rc, &s2));
        ck_assert_int_eq(rc, SF_OK);
        ck_assert_msg(memcmp(s->hash, s2->hash, SF_SESSION_HASH_BYTES) != 0, "hash_base_dir ignored");
        sf_session_destroy(&s2);
        sf_session_destroy(&s);
        free(diags);
        free(path);
    }

    /* without a map the studio path is just a folder that is not there */
    char *path = s_session(posix_root);
    sf_rc rc;
    sf_session_t *s = NULL;
    char *diags = s_load_session(path, NULL, NULL, &rc, &s);
    ck_assert_int_eq(rc, SF_E_INPUT);
    ck_assert_msg(strstr(diags, "source 'kick.wav' not found at '/Volumes/StemfarmUnit-"), "%s", diags);
    free(diags);
    free(path);

    sf_pathmap_destroy(&m);
    free(a);
    free(a_media);
}
END_TEST

START_TEST(test_session_unmappable_and_outside_roots)
{
    free(tu_write_wav(s_real, "A/media/kick.wav", 1, 48000, 4800, 24, s_ramp, NULL));
    free(tu_write_wav(s_real, "A/media/sub/snare.wav", 1, 48000, 4800, 24, s_ramp, NULL));
    free(tu_write_wav(s_real, "B/secret.wav", 1, 48000, 4800, 24, s_ramp, NULL));
    char *a = s_in("A"), *b = s_in("B"), *secret = s_in("B/secret.wav");
    s_symlink(secret, "A/media/link.wav");
    const rule_t rules[] = {{"/Studio", a}};
    sf_pathmap_t *m = s_map(rules, 1);
    sf_err_t err = {0};
    ck_assert_int_eq(sf_pathmap_add_root(m, a, &err), SF_OK);

    /* a Windows media_root without a rule: one error, at the value, and no
     * "not found" for every source under it */
    char *path = s_session("Q:\\Projects\\media");
    sf_rc rc;
    sf_session_t *s = NULL;
    char *diags = s_load_session(path, m, NULL, &rc, &s);
    ck_assert_int_eq(rc, SF_E_INPUT);
    char want[8192];
    snprintf(want, sizeof want,
             "%s:5:15: error: cannot map 'session.media_root': no path_map rule maps 'Q:\\Projects\\media': a "
             "Windows path cannot be opened on this machine; add a rule to the config, e.g. {from: 'Q:\\', to: "
             "/where/it/is/mounted}\n",
             path);
    ck_assert_str_eq(diags, want);
    free(diags);
    free(path);

    /* `..` out of the mapped folder */
    path = s_session("/Studio/../media");
    diags = s_load_session(path, m, NULL, &rc, &s);
    ck_assert_int_eq(rc, SF_E_INPUT);
    ck_assert_msg(strstr(diags, ":5:15: error: cannot map 'session.media_root': '/Studio/../media' climbs above"), "%s",
                  diags);
    free(diags);
    free(path);

    /* a source that is a symlink out of the media roots, and a source
     * outside them outright: each named, at its line */
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "version: 1\nsession:\n  sample_rate: 48000\n  media_root: /Studio/media\n"
             "tracks:\n  - name: Kick\n    source: kick.wav\n  - name: Link\n    source: link.wav\n"
             "  - name: Secret\n    source: %s\n"
             "stems:\n  - name: All\n    tracks: [\"*\"]\n",
             secret);
    path = tu_write_text(s_real, "studio/roots.yaml", yaml);
    diags = s_load_session(path, m, NULL, &rc, &s);
    ck_assert_int_eq(rc, SF_E_INPUT);
    char *link = s_in("A/media/link.wav");
    snprintf(want, sizeof want,
             "%s:9:13: error: source 'link.wav' is not readable on this machine: '%s' resolves to '%s', outside the "
             "media roots ('%s')\n"
             "%s:11:13: error: source '%s' is not readable on this machine: '%s' is outside the media roots ('%s')\n",
             path, link, secret, a, path, secret, secret, a);
    ck_assert_str_eq(diags, want);
    free(diags);
    free(path);
    free(link);

    sf_pathmap_destroy(&m);
    free(a);
    free(b);
    free(secret);
}
END_TEST

START_TEST(test_session_path_and_cache_mapped)
{
    /* The session itself is named by its studio path (as the coordinator
     * sends it): base_dir, the cache and relative sources follow the map. */
    free(tu_write_wav(s_real, "A/proj/media/kick.wav", 1, 44100, 4410, 24, s_ramp, NULL));
    free(tu_write_text(s_real, "A/proj/session.yaml", "unused: the loader gets the text\n"));
    const char *yaml = "version: 1\nsession:\n  sample_rate: 48000\n  media_root: media\n"
                       "tracks:\n  - name: Kick\n    source: kick.wav\n"
                       "stems:\n  - name: All\n    tracks: [\"*\"]\n";
    char *a = s_in("A");
    const rule_t rules[] = {{"P:\\", a}};
    sf_pathmap_t *m = s_map(rules, 1);
    sf_session_load_opts_t opts = sf_session_load_opts_default();
    opts.pathmap = m;
    sf_session_t *s = NULL;
    sf_diags_t diags = SF_DIAGS_INIT;
    sf_err_t err = {0};
    sf_rc rc = sf_session_load_text("P:\\proj\\session.yaml", yaml, strlen(yaml), &opts, &s, &diags, &err);
    ck_assert_msg(rc == SF_OK, "%s", diags.n_items ? diags.items[0].msg : err.msg);
    char *proj = s_in("A/proj"), *cache = s_in("A/proj/.stemfarm-cache");
    ck_assert_str_eq(s->base_dir, proj);
    ck_assert_str_eq(s->cache_dir, cache);
    ck_assert_str_eq(s->path, "P:\\proj\\session.yaml"); /* messages name it as sent */
    /* the 44.1 kHz source was resampled into the mapped cache */
    ck_assert_msg(strncmp(s->tracks[0].clips[0].path, cache, strlen(cache)) == 0, "%s", s->tracks[0].clips[0].path);
    sf_session_destroy(&s);
    sf_diags_free(&diags);

    /* with media roots that leave out the session's folder, the cache is
     * refused (the source itself is allowed) */
    sf_pathmap_t *m2 = s_map(rules, 1);
    char *media = s_in("A/proj/media");
    ck_assert_int_eq(sf_pathmap_add_root(m2, media, &err), SF_OK);
    opts.pathmap = m2;
    rc = sf_session_load_text("P:\\proj\\session.yaml", yaml, strlen(yaml), &opts, &s, &diags, &err);
    ck_assert_int_eq(rc, SF_E_INPUT);
    ck_assert_uint_eq(diags.n_errors, 1);
    ck_assert_msg(strstr(diags.items[0].msg, "cannot resample source 'kick.wav' from 44100 Hz to 48000 Hz: the cache "
                                             "folder") &&
                      strstr(diags.items[0].msg, "outside the media roots"),
                  "%s", diags.items[0].msg);
    sf_diags_free(&diags);

    /* an unmappable session path is an error naming it */
    rc = sf_session_load_text("Q:\\proj\\session.yaml", yaml, strlen(yaml), &opts, &s, &diags, &err);
    ck_assert_int_eq(rc, SF_E_INPUT);
    ck_assert_msg(strstr(err.msg, "cannot map the session path: no path_map rule maps 'Q:\\proj\\session.yaml'"), "%s",
                  err.msg);
    ck_assert_ptr_null(s);
    sf_diags_free(&diags);

    sf_pathmap_destroy(&m);
    sf_pathmap_destroy(&m2);
    free(a);
    free(proj);
    free(cache);
    free(media);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("pathmap");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, test_components_not_bytes);
    tcase_add_test(tc, test_longest_prefix_wins);
    tcase_add_test(tc, test_drive_letters);
    tcase_add_test(tc, test_unc_both_slash_forms);
    tcase_add_test(tc, test_dotdot_never_climbs_above_the_target);
    tcase_add_test(tc, test_passthrough);
    tcase_add_test(tc, test_unmapped_windows_path_says_what_to_add);
    tcase_add_test(tc, test_bad_rules_and_roots);
    suite_add_tcase(s, tc);
    tc = tcase_create("config");
    tcase_add_test(tc, test_config_good);
    tcase_add_test(tc, test_config_errors_at_line_col);
    tcase_add_test(tc, test_config_file_and_example);
    tcase_add_test(tc, test_nomem_everywhere);
    suite_add_tcase(s, tc);
    tc = tcase_create("files");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_media_roots_follow_symlinks);
    tcase_add_test(tc, test_session_sources_mapped);
    tcase_add_test(tc, test_session_unmappable_and_outside_roots);
    tcase_add_test(tc, test_session_path_and_cache_mapped);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run_suite(s_suite()); }
