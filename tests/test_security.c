/* test_security.c -- CURVE, the allowlist and the loopback rule, end to end:
 * the real stemfarm and stemfarm-node on 127.0.0.1 with fresh ports, key
 * files written by `stemfarm keygen`, and the loopback rule as a table.
 *
 * The farm test runs a coordinator with a key and an allowlist, a node whose
 * key is allowed, one whose key is not, one without keys and one that has
 * the wrong coordinator key; the render submitted by an allowed client must
 * succeed on the allowed node alone, every other node must exit 3 at once
 * with its reason, and clients without keys or with a refused key must fail
 * with exit 3 instead of waiting. */
#include "testutil.h"

#include "sf/secure.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define RATE 48000

static char *s_dir;
static pid_t s_children[16]; /* spawned processes, killed at teardown if a test failed on its way */
static size_t s_n_children;

static void setup(void)
{
    s_dir = tu_tmpdir();
    s_n_children = 0;
}

static void teardown(void)
{
    for (size_t i = 0; i < s_n_children; i++)
        if (s_children[i] && kill(s_children[i], SIGKILL) == 0)
            waitpid(s_children[i], NULL, 0);
    tu_rm_rf(s_dir);
    free(s_dir);
}

/* ---- helpers ------------------------------------------------------------- */

static double s_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void s_sleep_ms(long ms)
{
    nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000L}, NULL);
}

/* Runs a shell command line (binaries quoted by the caller); 60 s at most. */
static int s_sh(const char *cmd, char **out, char **err) { return tu_run(cmd, out, err, 60); }

/* Starts argv with stdout and stderr appended to log_path. */
static pid_t s_spawn(char *const argv[], const char *log_path)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    ck_assert_int_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    ck_assert_uint_lt(s_n_children, sizeof s_children / sizeof *s_children);
    s_children[s_n_children++] = pid;
    return pid;
}

/* The exit status of pid within timeout_s (128+sig if killed), or -1 if it
 * is still running then. */
static int s_wait_exit(pid_t pid, double timeout_s)
{
    double end = s_now_s() + timeout_s;
    do {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            for (size_t i = 0; i < s_n_children; i++)
                if (s_children[i] == pid)
                    s_children[i] = 0; /* reaped: its pid may be reused */
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        s_sleep_ms(50);
    } while (s_now_s() < end);
    return -1;
}

/* SIGTERM, then the exit status; SIGKILL (and -1) after 10 s. */
static int s_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    int rc = s_wait_exit(pid, 10.0);
    if (rc < 0) {
        kill(pid, SIGKILL);
        s_wait_exit(pid, 10.0);
    }
    return rc;
}

/* Waits until the file contains `text`; false after timeout_s. */
static int s_wait_for_text(const char *path, const char *text, double timeout_s)
{
    double end = s_now_s() + timeout_s;
    do {
        char *content = tu_slurp(path, NULL);
        int found = content && strstr(content, text);
        free(content);
        if (found)
            return 1;
        s_sleep_ms(50);
    } while (s_now_s() < end);
    return 0;
}

/* Nothing listens on the port, on any address: binding it works. */
static int s_port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    int ok = bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    close(fd);
    return ok;
}

static unsigned s_mode(const char *path)
{
    struct stat st;
    ck_assert_msg(stat(path, &st) == 0, "'%s': %s", path, strerror(errno));
    return (unsigned)(st.st_mode & 07777);
}

/* `stemfarm keygen NAME --dir DIR`, which must succeed. */
static void s_keygen(const char *dir, const char *name)
{
    char cmd[4096], *err = NULL;
    snprintf(cmd, sizeof cmd, "'%s' keygen '%s' --dir '%s'", tu_stemfarm_bin(), name, dir);
    int rc = s_sh(cmd, NULL, &err);
    ck_assert_msg(rc == 0, "keygen %s exited %d: %s", name, rc, err);
    free(err);
}

/* The Z85 text of `key = "..."` in a key file (static buffer). */
static const char *s_key_in(const char *path, const char *key)
{
    static char value[64];
    char *text = tu_slurp(path, NULL);
    ck_assert_ptr_nonnull(text);
    char pattern[32];
    snprintf(pattern, sizeof pattern, "%s = \"", key);
    const char *p = strstr(text, pattern);
    ck_assert_msg(p, "no %s in '%s': %s", key, path, text);
    p += strlen(pattern);
    const char *q = strchr(p, '"');
    ck_assert_ptr_nonnull(q);
    snprintf(value, sizeof value, "%.*s", (int)(q - p), p);
    free(text);
    return value;
}

static char *s_write_mode(const char *dir, const char *name, const char *text, mode_t mode)
{
    char *path = tu_write_text(dir, name, text);
    ck_assert_int_eq(chmod(path, mode), 0);
    return path;
}

/* ---- keygen -------------------------------------------------------------- */

START_TEST(test_keygen_writes_private_key_and_never_overwrites)
{
    char *keys = tu_path(s_dir, "keys"); /* keygen makes it, private */
    s_keygen(keys, "node1");
    ck_assert_msg(s_mode(keys) == 0700, "the key folder has mode %04o", s_mode(keys));
    char *key = tu_path(keys, "node1.key"), *pub = tu_path(keys, "node1.pub");
    ck_assert_msg(s_mode(key) == 0600, "node1.key has mode %04o", s_mode(key));
    ck_assert_msg(s_mode(pub) == 0644, "node1.pub has mode %04o", s_mode(pub)); /* umask 022, set in main */
    char public_key[64];
    snprintf(public_key, sizeof public_key, "%s", s_key_in(key, "public-key"));
    ck_assert_uint_eq(strlen(public_key), 40);
    ck_assert_uint_eq(strlen(s_key_in(key, "secret-key")), 40);
    ck_assert_str_eq(s_key_in(pub, "public-key"), public_key);
    char *pub_text = tu_slurp(pub, NULL);
    ck_assert_msg(!strstr(pub_text, "secret-key"), "the .pub holds the secret: %s", pub_text);
    free(pub_text);
    /* the files load: the secret key file as a key pair, the .pub as a public key */
    sf_secure_keypair_t kp;
    char loaded[SF_SECURE_KEY_CHARS + 1];
    sf_err_t e = {0};
    ck_assert_msg(sf_secure_load_keypair(key, &kp, &e) == SF_OK, "%s", e.msg);
    ck_assert_str_eq(kp.public_key, public_key);
    ck_assert_msg(sf_secure_load_public(pub, loaded, &e) == SF_OK, "%s", e.msg);
    ck_assert_str_eq(loaded, public_key);

    /* again: refused, and both files are as they were */
    char *before = tu_slurp(key, NULL);
    char cmd[4096], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "'%s' keygen node1 --dir '%s'", tu_stemfarm_bin(), keys);
    ck_assert_int_eq(s_sh(cmd, &out, &err), 2);
    ck_assert_msg(strstr(err, "node1.key' exists: keygen never overwrites a key"), "stderr: %s", err);
    char *after = tu_slurp(key, NULL);
    ck_assert_str_eq(before, after);
    ck_assert_str_eq(s_key_in(pub, "public-key"), public_key);
    free(out);
    free(err);
    /* a lone .pub of that name also stops it, and no .key is left behind */
    free(tu_write_text(keys, "node2.pub", "not mine\n"));
    snprintf(cmd, sizeof cmd, "'%s' keygen node2 --dir '%s'", tu_stemfarm_bin(), keys);
    ck_assert_int_eq(s_sh(cmd, NULL, &err), 2);
    ck_assert_msg(strstr(err, "node2.pub' exists"), "stderr: %s", err);
    char *node2_key = tu_path(keys, "node2.key");
    ck_assert_msg(!tu_exists(node2_key), "keygen left node2.key behind");
    free(err);
    /* names are plain file names */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' keygen ../escape", keys, tu_stemfarm_bin());
    ck_assert_int_eq(s_sh(cmd, NULL, &err), 2);
    ck_assert_msg(strstr(err, "bad key name '../escape'"), "stderr: %s", err);
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' keygen", tu_stemfarm_bin());
    ck_assert_int_eq(s_sh(cmd, NULL, &err), 2);
    ck_assert_msg(strstr(err, "'keygen' needs a NAME"), "stderr: %s", err);
    free(err);
    free(before);
    free(after);
    free(node2_key);
    free(key);
    free(pub);
    free(keys);
}
END_TEST

/* ---- bad key files and options -------------------------------------------- */

START_TEST(test_bad_key_files_exit_2_with_the_reason)
{
    s_keygen(s_dir, "coord");
    s_keygen(s_dir, "other");
    char *coord_key = tu_path(s_dir, "coord.key"), *coord_pub = tu_path(s_dir, "coord.pub");
    char pub[64], sec[64], other_sec[64];
    snprintf(pub, sizeof pub, "%s", s_key_in(coord_key, "public-key"));
    snprintf(sec, sizeof sec, "%s", s_key_in(coord_key, "secret-key"));
    char *other_key = tu_path(s_dir, "other.key");
    snprintf(other_sec, sizeof other_sec, "%s", s_key_in(other_key, "secret-key"));
    char text[1024];

    snprintf(text, sizeof text, "# short\npublic-key = \"%s\"\nsecret-key = \"%.39s\"\n", pub, sec);
    char *short_key = s_write_mode(s_dir, "short.key", text, 0600);
    snprintf(text, sizeof text, "public-key = \"%s\"\nsecret-key = \"%s\"\n", pub, sec);
    char *open_key = s_write_mode(s_dir, "open.key", text, 0644);
    snprintf(text, sizeof text, "public-key = \"%s\"\nsecret-key = \"%s\"\n", pub, other_sec);
    char *mixed_key = s_write_mode(s_dir, "mixed.key", text, 0600);
    snprintf(text, sizeof text, "public-key = \"%s\"\nsecret_key = \"%s\"\n", pub, sec);
    char *typo_key = s_write_mode(s_dir, "typo.key", text, 0600);
    char *junk_key = s_write_mode(s_dir, "junk.key", "# a comment\nhello\n", 0600);
    char *z85_pub =
        s_write_mode(s_dir, "z85.pub", "# not Z85\npublic-key = \"________________________________________\"\n", 0644);
    char *missing = tu_path(s_dir, "missing.key");
    char *empty_dir = tu_path(s_dir, "empty");
    ck_assert_int_eq(mkdir(empty_dir, 0700), 0);
    char *bad_dir = tu_path(s_dir, "badallow");
    ck_assert_int_eq(mkdir(bad_dir, 0700), 0);
    snprintf(text, sizeof text, "public-key = \"%.30s\"\n", pub);
    char *cut_pub = tu_write_text(bad_dir, "cut.pub", text);
    char *good_allow = tu_path(s_dir, "other.pub");

    int port = tu_free_port();
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    struct {
        const char *prog; /* "stemfarm" or "node" */
        char args[1024];
        char want[512];
    } cases[16];
    size_t n = 0;
#define CASE(p, a, w)                                                                                                  \
    do {                                                                                                               \
        cases[n].prog = p;                                                                                             \
        snprintf(cases[n].args, sizeof cases[n].args, "%s", a);                                                        \
        snprintf(cases[n].want, sizeof cases[n].want, "%s", w);                                                        \
        n++;                                                                                                           \
    } while (0)
    char a[1024], w[512];
    snprintf(a, sizeof a, "coordinator --bind %s --key '%s' --allow '%s'", ep, short_key, good_allow);
    snprintf(w, sizeof w, "'%s': line 3: secret-key is not 40 Z85 characters", short_key);
    CASE("stemfarm", a, w);
    snprintf(a, sizeof a, "coordinator --bind %s --key '%s' --allow '%s'", ep, open_key, good_allow);
    snprintf(w, sizeof w, "'%s': permissions 0644 are too open: a secret key must be for its owner only (chmod 600",
             open_key);
    CASE("stemfarm", a, w);
    snprintf(a, sizeof a, "coordinator --bind %s --key '%s' --allow '%s'", ep, mixed_key, good_allow);
    snprintf(w, sizeof w, "'%s': the public-key is not the one of the secret-key", mixed_key);
    CASE("stemfarm", a, w);
    snprintf(a, sizeof a, "coordinator --bind %s --key '%s' --allow '%s'", ep, typo_key, good_allow);
    snprintf(w, sizeof w, "'%s': line 2: unknown key 'secret_key' (expected public-key or secret-key)", typo_key);
    CASE("stemfarm", a, w);
    snprintf(a, sizeof a, "coordinator --bind %s --key '%s' --allow '%s'", ep, junk_key, good_allow);
    snprintf(w, sizeof w, "'%s': line 2: expected 'public-key = \"...\"'", junk_key);
    CASE("stemfarm", a, w);
    snprintf(a, sizeof a, "coordinator --bind %s --key '%s' --allow '%s'", ep, missing, good_allow);
    snprintf(w, sizeof w, "'%s': cannot open: No such file or directory", missing);
    CASE("stemfarm", a, w);
    snprintf(a, sizeof a, "coordinator --bind %s --key '%s' --allow '%s'", ep, coord_pub, good_allow);
    snprintf(w, sizeof w, "'%s': no secret-key", coord_pub);
    CASE("stemfarm", a, w);
    snprintf(a, sizeof a, "coordinator --bind %s --key '%s' --allow '%s'", ep, coord_key, empty_dir);
    snprintf(w, sizeof w, "'%s': no *.pub files in the folder", empty_dir);
    CASE("stemfarm", a, w);
    snprintf(a, sizeof a, "coordinator --bind %s --key '%s' --allow '%s'", ep, coord_key, bad_dir);
    snprintf(w, sizeof w, "'%s': line 1: public-key is not 40 Z85 characters", cut_pub);
    CASE("stemfarm", a, w);
    snprintf(a, sizeof a, "coordinator --bind %s --key '%s' --allow '%s'", ep, coord_key, z85_pub);
    snprintf(w, sizeof w, "'%s': line 2: public-key is not 40 Z85 characters", z85_pub);
    CASE("stemfarm", a, w);
    snprintf(a, sizeof a, "coordinator --bind %s --key '%s' --allow '%s'", ep, coord_key, other_key);
    snprintf(w, sizeof w, "'%s': holds a secret key: give its public half (the .pub file)", other_key);
    CASE("stemfarm", a, w);
    snprintf(a, sizeof a, "--connect %s --key '%s' --server-key '%s'", ep, open_key, coord_pub);
    snprintf(w, sizeof w, "'%s': permissions 0644 are too open", open_key);
    CASE("node", a, w);
    snprintf(a, sizeof a, "--connect %s --key '%s'", ep, other_key);
    CASE("node", a, "needs the coordinator's public key too (--server-key FILE.pub or STEMFARM_SERVER_KEY)");
    snprintf(a, sizeof a, "render s.yaml --farm %s --key '%s' --server-key '%s'", ep, other_key, coord_key);
    snprintf(w, sizeof w, "'%s': holds a secret key", coord_key);
    CASE("stemfarm", a, w);
#undef CASE
    for (size_t i = 0; i < n; i++) {
        char cmd[4096], *err = NULL;
        snprintf(cmd, sizeof cmd, "'%s' %s", strcmp(cases[i].prog, "node") ? tu_stemfarm_bin() : tu_node_bin(),
                 cases[i].args);
        int rc = s_sh(cmd, NULL, &err);
        ck_assert_msg(rc == 2, "%s: exited %d: %s", cmd, rc, err);
        ck_assert_msg(strstr(err, cases[i].want), "%s:\nwant: %s\nstderr: %s", cmd, cases[i].want, err);
        free(err);
        ck_assert_msg(s_port_free(port), "%s: something listens on %d", cmd, port);
    }
    free(coord_key);
    free(coord_pub);
    free(other_key);
    free(short_key);
    free(open_key);
    free(mixed_key);
    free(typo_key);
    free(junk_key);
    free(z85_pub);
    free(missing);
    free(empty_dir);
    free(bad_dir);
    free(cut_pub);
    free(good_allow);
}
END_TEST

START_TEST(test_security_options_that_do_not_go_together)
{
    s_keygen(s_dir, "k");
    static const struct {
        const char *args;
        const char *want;
    } cases[] = {
        {"coordinator --bind tcp://127.0.0.1:1 --key KEY", "--key needs --allow DIR|FILE.pub"},
        {"coordinator --bind tcp://127.0.0.1:1 --allow PUB", "--allow needs --key COORDINATOR.key"},
        {"coordinator --bind tcp://127.0.0.1:1 --key KEY --allow PUB --insecure",
         "--insecure and --key exclude each other"},
        {"render s.yaml --key KEY --server-key PUB", "--key and --server-key are for --farm"},
        {"render s.yaml --farm tcp://127.0.0.1:1 --server-key PUB",
         "needs this side's own key too (--key FILE.key or STEMFARM_KEY)"},
    };
    char *key = tu_path(s_dir, "k.key"), *pub = tu_path(s_dir, "k.pub");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        /* KEY and PUB stand for the files */
        char args[2048] = "", *o = args;
        for (const char *p = cases[i].args; *p;) {
            if (strncmp(p, "KEY", 3) == 0 || strncmp(p, "PUB", 3) == 0) {
                o += sprintf(o, "'%s'", p[0] == 'K' ? key : pub);
                p += 3;
            } else {
                *o++ = *p++;
                *o = '\0';
            }
        }
        char cmd[4096], *err = NULL;
        snprintf(cmd, sizeof cmd, "'%s' %s", tu_stemfarm_bin(), args);
        int rc = s_sh(cmd, NULL, &err);
        ck_assert_msg(rc == 2, "%s: exited %d: %s", cmd, rc, err);
        ck_assert_msg(strstr(err, cases[i].want), "%s: stderr %s", cmd, err);
        free(err);
    }
    free(key);
    free(pub);
}
END_TEST

/* ---- the loopback rule ------------------------------------------------------ */

START_TEST(test_loopback_endpoints)
{
    static const struct {
        const char *endpoint;
        bool loopback;
    } cases[] = {
        {"tcp://127.0.0.1:5555", true},
        {"tcp://127.3.2.1:5555", true},
        {"tcp://localhost:5555", true},
        {"tcp://[::1]:5555", true},
        {"ipc:///tmp/stemfarm.sock", true},
        {"inproc://stemfarm-1", true},
        {"tcp://*:5555", false},
        {"tcp://0.0.0.0:5555", false},
        {"tcp://[::]:5555", false},
        {"tcp://10.0.0.5:5555", false},
        {"tcp://eth0:5555", false},
        {"tcp://lo:5555", false},
        {"tcp://127.0.0.1.example.com:5555", false},
        {"tcp://localhost.example.com:5555", false},
        {"tcp://127.0.0.256:5555", false},
        {"tcp://127.0.0:5555", false},
        {"tcp://127.0.0.1", false},
        {"tcp://:5555", false},
        {"ws://127.0.0.1:5555", false},
        {"pgm://eth0;239.192.1.1:5555", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        ck_assert_msg(sf_secure_endpoint_is_loopback(cases[i].endpoint) == cases[i].loopback,
                      "'%s' should%s be loopback", cases[i].endpoint, cases[i].loopback ? "" : " not");
}
END_TEST

START_TEST(test_non_loopback_bind_needs_keys_or_insecure)
{
    int port = tu_free_port();
    char ep[64], cmd[4096], *err = NULL;
    snprintf(ep, sizeof ep, "tcp://0.0.0.0:%d", port);
    snprintf(cmd, sizeof cmd, "'%s' coordinator --bind %s", tu_stemfarm_bin(), ep);
    ck_assert_int_eq(s_sh(cmd, NULL, &err), 2);
    char want[256];
    snprintf(want, sizeof want, "refusing to bind '%s' without keys: it is not a loopback address", ep);
    ck_assert_msg(strstr(err, want) && strstr(err, "--insecure"), "stderr: %s", err);
    free(err);
    ck_assert_msg(s_port_free(port), "something listens on %d after the refusal", port);
    snprintf(cmd, sizeof cmd, "'%s' coordinator --bind 'tcp://*:%d'", tu_stemfarm_bin(), port);
    ck_assert_int_eq(s_sh(cmd, NULL, &err), 2);
    ck_assert_msg(strstr(err, "refusing to bind"), "stderr: %s", err);
    free(err);
    ck_assert(s_port_free(port));

    /* --insecure: it starts, says so, and stops on SIGTERM */
    char *log = tu_path(s_dir, "insecure.log");
    pid_t coord =
        s_spawn((char *const[]){(char *)tu_stemfarm_bin(), "coordinator", "--bind", ep, "--insecure", NULL}, log);
    int started = s_wait_for_text(log, "listening on", 20.0);
    int rc = s_stop(coord);
    char *text = tu_slurp(log, NULL);
    ck_assert_msg(started, "no 'listening on' line: %s", text);
    ck_assert_msg(rc == 0, "coordinator exited %d: %s", rc, text);
    ck_assert_msg(strstr(text, "WARN coordinator security: --insecure:") &&
                      strstr(text, "unencrypted and unauthenticated"),
                  "no warning: %s", text);
    free(text);
    free(log);
}
END_TEST

/* ---- the secure farm ----------------------------------------------------------- */

static double s_tone(int ch, int64_t i, void *ctx)
{
    (void)ch;
    return 0.25 * tu_sine((double)(intptr_t)ctx, RATE, i);
}

static char *s_write_session(void)
{
    free(tu_write_wav(s_dir, "media/a.wav", 1, RATE, 60000, 24, s_tone, (void *)(intptr_t)220));
    free(tu_write_wav(s_dir, "media/b.wav", 1, RATE, 50000, 24, s_tone, (void *)(intptr_t)330));
    return tu_write_text(s_dir, "session.yaml",
                         "version: 1\nsession:\n  name: Secure\n  sample_rate: 48000\n  media_root: media\n"
                         "  end: auto\noutput:\n  format: wav\n  sample_format: pcm24\n"
                         "tracks:\n  - name: A\n    source: a.wav\n  - name: B\n    source: b.wav\n    pan: 0.5\n"
                         "stems:\n  - name: One\n    tracks: [A]\n  - name: Two\n    tracks: [B]\n");
}

static void s_copy(const char *from, const char *dir, const char *name)
{
    char *text = tu_slurp(from, NULL);
    ck_assert_ptr_nonnull(text);
    free(tu_write_text(dir, name, text));
    free(text);
}

START_TEST(test_secure_farm_renders_on_allowed_nodes_only)
{
    char *session = s_write_session();
    char *keys = tu_path(s_dir, "keys"), *allow = tu_path(s_dir, "allow");
    ck_assert_int_eq(mkdir(keys, 0700), 0);
    ck_assert_int_eq(mkdir(allow, 0700), 0);
    const char *names[] = {"coordinator", "good", "bad", "client"};
    for (size_t i = 0; i < 4; i++)
        s_keygen(keys, names[i]);
    char *k_coord = tu_path(keys, "coordinator.key"), *p_coord = tu_path(keys, "coordinator.pub");
    char *k_good = tu_path(keys, "good.key"), *p_good = tu_path(keys, "good.pub");
    char *k_bad = tu_path(keys, "bad.key"), *p_bad = tu_path(keys, "bad.pub");
    char *k_client = tu_path(keys, "client.key"), *p_client = tu_path(keys, "client.pub");
    s_copy(p_good, allow, "good.pub");
    s_copy(p_client, allow, "client.pub");
    char bad_public[64];
    snprintf(bad_public, sizeof bad_public, "%s", s_key_in(p_bad, "public-key"));

    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", tu_free_port());
    char *coord_log = tu_path(s_dir, "coordinator.log");
    pid_t coord = s_spawn((char *const[]){(char *)tu_stemfarm_bin(), "coordinator", "--bind", ep, "--key", k_coord,
                                          "--allow", allow, NULL},
                          coord_log);
    ck_assert_msg(s_wait_for_text(coord_log, "listening on", 20.0), "the coordinator did not start");
    char *coord_text = tu_slurp(coord_log, NULL);
    ck_assert_msg(strstr(coord_text, "(CURVE; 2 keys in the allowlist)"), "%s", coord_text);
    free(coord_text);

    struct {
        const char *name, *key, *server_key;
        pid_t pid;
        char *log;
    } nodes[] = {
        {"good-node", k_good, p_coord, 0, NULL},
        {"bad-node", k_bad, p_coord, 0, NULL},          /* a key not in the allowlist */
        {"plain-node", NULL, NULL, 0, NULL},            /* no keys at all */
        {"wrong-server-node", k_good, p_good, 0, NULL}, /* an allowed key, but not the coordinator's public key */
    };
    for (size_t i = 0; i < 4; i++) {
        char logname[64];
        snprintf(logname, sizeof logname, "%s.log", nodes[i].name);
        nodes[i].log = tu_path(s_dir, logname);
        char *argv[] = {(char *)tu_node_bin(),
                        "--connect",
                        ep,
                        "--name",
                        (char *)nodes[i].name,
                        "--threads",
                        "1",
                        "--key",
                        (char *)nodes[i].key,
                        "--server-key",
                        (char *)nodes[i].server_key,
                        NULL};
        if (!nodes[i].key)
            argv[7] = NULL;
        nodes[i].pid = s_spawn(argv, nodes[i].log);
    }
    /* the refused nodes exit 3 at once, each with its reason */
    static const char *const reasons[] = {
        NULL,
        "refused this node's key",
        "requires CURVE keys", /* closed 3 times, or a mechanism mismatch: a race */
        "closed the CURVE handshake 3 times: is --server-key",
    };
    for (size_t i = 1; i < 4; i++) {
        int rc = s_wait_exit(nodes[i].pid, 15.0);
        char *text = tu_slurp(nodes[i].log, NULL);
        ck_assert_msg(rc == 3, "%s exited %d: %s", nodes[i].name, rc, text);
        ck_assert_msg(strstr(text, reasons[i]), "%s: %s", nodes[i].name, text);
        if (i == 1)
            ck_assert_msg(strstr(text, bad_public), "the refused key is not named: %s", text);
        free(text);
    }
    ck_assert_msg(s_wait_for_text(coord_log, "node 'good-node' joined", 20.0), "the good node did not join");

    /* an allowed client renders; only the good node rendered segments */
    char *out_dir = tu_path(s_dir, "out");
    char cmd[8192], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "'%s' render '%s' -o '%s' --farm %s --segment 12000 --json --key '%s' --server-key '%s'",
             tu_stemfarm_bin(), session, out_dir, ep, k_client, p_coord);
    int rc = tu_run(cmd, &out, &err, 120);
    ck_assert_msg(rc == 0, "farm render exited %d: %s", rc, err);
    ck_assert_msg(strstr(out, "\"event\":\"done\""), "%s", out);
    free(out);
    free(err);
    char *manifest_path = tu_path(out_dir, "manifest.json");
    char *manifest = tu_slurp(manifest_path, NULL);
    ck_assert_ptr_nonnull(manifest);
    ck_assert_msg(strstr(manifest, "\"node\": \"good-node\""), "the good node rendered nothing: %s", manifest);
    ck_assert_msg(!strstr(manifest, "bad-node") && !strstr(manifest, "plain-node") &&
                      !strstr(manifest, "wrong-server-node"),
                  "a refused node rendered: %s", manifest);
    free(manifest);
    free(manifest_path);

    /* a client without keys fails at once (exit 3), it does not wait */
    snprintf(cmd, sizeof cmd, "'%s' render '%s' -o '%s/nokeys' --farm %s", tu_stemfarm_bin(), session, s_dir, ep);
    double t0 = s_now_s();
    rc = tu_run(cmd, NULL, &err, 120);
    double took = s_now_s() - t0;
    ck_assert_msg(rc == 3, "a client without keys exited %d: %s", rc, err);
    ck_assert_msg(strstr(err, "requires CURVE keys"), "stderr: %s", err);
    ck_assert_msg(took < 15.0, "a client without keys took %.1f s to give up", took);
    free(err);
    /* a client whose key is not allowed (given through the environment) too */
    snprintf(cmd, sizeof cmd, "STEMFARM_KEY='%s' STEMFARM_SERVER_KEY='%s' '%s' render '%s' -o '%s/refused' --farm %s",
             k_bad, p_coord, tu_stemfarm_bin(), session, s_dir, ep);
    rc = tu_run(cmd, NULL, &err, 120);
    ck_assert_msg(rc == 3, "a refused client exited %d: %s", rc, err);
    ck_assert_msg(strstr(err, "refused this client's key") && strstr(err, bad_public), "stderr: %s", err);
    free(err);

    ck_assert_int_eq(s_stop(nodes[0].pid), 0);
    ck_assert_int_eq(s_stop(coord), 0);
    /* the coordinator logged each refusal with the peer and the key */
    coord_text = tu_slurp(coord_log, NULL);
    char want[256];
    snprintf(want, sizeof want, "WARN coordinator security: refused 127.0.0.1: key '%s' is not in the allowlist",
             bad_public);
    ck_assert_msg(strstr(coord_text, want), "no refusal line: %s", coord_text);
    ck_assert_msg(strstr(coord_text, "accepted 127.0.0.1 as 'good'") &&
                      strstr(coord_text, "accepted 127.0.0.1 as 'client'"),
                  "%s", coord_text);
    /* A peer with another coordinator's key always fails there; a peer
     * without keys may notice the mismatch first and hang up, unlogged. */
    ck_assert_msg(strstr(coord_text, "its --server-key is not this coordinator's public key"), "%s", coord_text);
    free(coord_text);

    for (size_t i = 0; i < 4; i++)
        free(nodes[i].log);
    free(out_dir);
    free(coord_log);
    free(k_coord);
    free(p_coord);
    free(k_good);
    free(p_good);
    free(k_bad);
    free(p_bad);
    free(k_client);
    free(p_client);
    free(keys);
    free(allow);
    free(session);
}
END_TEST

static Suite *s_suite(void)
{
    Suite *s = suite_create("security");
    TCase *tc = tcase_create("security");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_keygen_writes_private_key_and_never_overwrites);
    tcase_add_test(tc, test_bad_key_files_exit_2_with_the_reason);
    tcase_add_test(tc, test_security_options_that_do_not_go_together);
    tcase_add_test(tc, test_loopback_endpoints);
    tcase_add_test(tc, test_non_loopback_bind_needs_keys_or_insecure);
    tcase_add_test(tc, test_secure_farm_renders_on_allowed_nodes_only);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* The keys a test means are on the command line; and modes are exact. */
    unsetenv("STEMFARM_KEY");
    unsetenv("STEMFARM_SERVER_KEY");
    umask(022);
    return tu_run_suite(s_suite());
}
