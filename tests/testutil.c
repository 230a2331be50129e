/* testutil.c -- see testutil.h. */
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

extern char **environ;

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

int tu_run_suite(Suite *suite)
{
    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

char *tu_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/stemfarm-test-XXXXXX", base && *base ? base : "/tmp");
    char *dir = mkdtemp(tmpl);
    ck_assert_msg(dir != NULL, "mkdtemp: %s", strerror(errno));
    return strdup(dir);
}

void tu_rm_rf(const char *dir)
{
    if (!dir || strlen(dir) < 8 || strstr(dir, "stemfarm-test-") == NULL)
        return; /* never remove anything a test did not make */
    if (getenv("STEMFARM_KEEP_TEST_DIRS")) {
        fprintf(stderr, "kept: %s\n", dir); /* to read the logs of a failure */
        return;
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    int rc = system(cmd);
    (void)rc;
}

char *tu_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void s_mkdirs_for(const char *path)
{
    char *copy = strdup(path);
    for (char *s = copy + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(copy, 0755);
            *s = '/';
        }
    }
    free(copy);
}

char *tu_write_text(const char *dir, const char *name, const char *text)
{
    char *path = tu_path(dir, name);
    s_mkdirs_for(path);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    fwrite(text, 1, strlen(text), f);
    fclose(f);
    return path;
}

double tu_quantized(double x, int bits)
{
    if (bits == 32)
        return (double)(float)x;
    double scale = ldexp(1.0, bits - 1);
    double v = nearbyint(x * scale);
    if (v > scale - 1)
        v = scale - 1;
    if (v < -scale)
        v = -scale;
    return v / scale;
}

char *tu_write_wav(const char *dir, const char *name, int channels, int rate, int64_t frames, int bits, tu_signal_fn fn,
                   void *ctx)
{
    char *path = tu_path(dir, name);
    s_mkdirs_for(path);
    SF_INFO info = {.samplerate = rate, .channels = channels};
    info.format = SF_FORMAT_WAV | (bits == 16 ? SF_FORMAT_PCM_16 : bits == 24 ? SF_FORMAT_PCM_24 : SF_FORMAT_FLOAT);
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    ck_assert_msg(sf != NULL, "sf_open %s: %s", path, sf_strerror(NULL));
    enum { CHUNK = 4096 };
    int32_t *ibuf = malloc(sizeof(int32_t) * CHUNK * (size_t)channels);
    float *fbuf = malloc(sizeof(float) * CHUNK * (size_t)channels);
    for (int64_t at = 0; at < frames; at += CHUNK) {
        int64_t n = frames - at < CHUNK ? frames - at : CHUNK;
        for (int64_t i = 0; i < n; i++)
            for (int c = 0; c < channels; c++) {
                double x = fn(c, at + i, ctx);
                size_t k = (size_t)(i * channels + c);
                if (bits == 32)
                    fbuf[k] = (float)x;
                else
                    ibuf[k] = (int32_t)(tu_quantized(x, bits) * ldexp(1.0, bits - 1)) * (1 << (32 - bits));
            }
        sf_count_t w = bits == 32 ? sf_writef_float(sf, fbuf, n) : sf_writef_int(sf, ibuf, n);
        ck_assert_int_eq(w, n);
    }
    free(ibuf);
    free(fbuf);
    ck_assert_int_eq(sf_close(sf), 0);
    return path;
}

double *tu_read_audio(const char *path, int *channels, int64_t *frames, int *rate)
{
    SF_INFO info = {0};
    SNDFILE *sf = sf_open(path, SFM_READ, &info);
    ck_assert_msg(sf != NULL, "cannot open %s: %s", path, sf_strerror(NULL));
    double *buf = malloc(sizeof(double) * (size_t)(info.frames * info.channels + 1));
    ck_assert_ptr_nonnull(buf);
    sf_count_t got = sf_readf_double(sf, buf, info.frames);
    ck_assert_int_eq(got, info.frames);
    sf_close(sf);
    if (channels)
        *channels = info.channels;
    if (frames)
        *frames = info.frames;
    if (rate)
        *rate = info.samplerate;
    return buf;
}

int32_t *tu_read_pcm_ints(const char *path, int bits, int *channels, int64_t *frames)
{
    SF_INFO info = {0};
    SNDFILE *sf = sf_open(path, SFM_READ, &info);
    ck_assert_msg(sf != NULL, "cannot open %s: %s", path, sf_strerror(NULL));
    int32_t *buf = malloc(sizeof(int32_t) * (size_t)(info.frames * info.channels + 1));
    sf_count_t got = sf_readf_int(sf, buf, info.frames);
    ck_assert_int_eq(got, info.frames);
    sf_close(sf);
    for (int64_t i = 0; i < info.frames * info.channels; i++)
        buf[i] >>= (32 - bits);
    if (channels)
        *channels = info.channels;
    if (frames)
        *frames = info.frames;
    return buf;
}

char *tu_slurp(const char *path, size_t *n_bytes)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = '\0';
    if (n_bytes)
        *n_bytes = got;
    return buf;
}

int tu_files_equal(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    char *x = tu_slurp(a, &na), *y = tu_slurp(b, &nb);
    int eq = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return eq;
}

int tu_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int tu_run(const char *cmd, char **out, char **err, int timeout_s)
{
    char *dir = tu_tmpdir();
    char *out_path = tu_path(dir, "stdout"), *err_path = tu_path(dir, "stderr");
    /* The command goes into a script so that it may use any quoting. */
    char *script = tu_write_text(dir, "cmd.sh", cmd);
    size_t n = strlen(script) + 2 * strlen(out_path) + 128;
    char *full = malloc(n);
    snprintf(full, n, "timeout -k 5 %d sh '%s' >'%s' 2>'%s' </dev/null", timeout_s, script, out_path, err_path);
    free(script);
    int status = system(full);
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (out)
        *out = tu_slurp(out_path, NULL);
    if (err)
        *err = tu_slurp(err_path, NULL);
    free(full);
    free(out_path);
    free(err_path);
    tu_rm_rf(dir);
    free(dir);
    return rc;
}

const char *tu_gen_bin(void)
{
    const char *p = getenv("STEMFARM_GEN_BIN");
    ck_assert_msg(p != NULL, "STEMFARM_GEN_BIN not set (run through ctest)");
    return p;
}

const char *tu_stemfarm_bin(void)
{
    const char *p = getenv("STEMFARM_BIN");
    ck_assert_msg(p != NULL, "STEMFARM_BIN not set (run through ctest)");
    return p;
}

const char *tu_node_bin(void)
{
    const char *p = getenv("STEMFARM_NODE_BIN");
    ck_assert_msg(p != NULL, "STEMFARM_NODE_BIN not set (run through ctest)");
    return p;
}

int tu_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t len = sizeof addr;
    getsockname(fd, (struct sockaddr *)&addr, &len);
    int port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

double tu_sine(double freq, double rate, int64_t i) { return sin(2.0 * M_PI * freq * (double)i / rate); }

double tu_noise(uint64_t seed, int64_t i)
{
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + (uint64_t)i;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * ldexp(1.0, -52) - 1.0;
}

tu_sig_t tu_sig(int n_ch, size_t n)
{
    ck_assert_int_le(n_ch, TU_MAX_CH);
    tu_sig_t s = {.n_ch = n_ch, .n = n};
    const size_t n_bytes = ((n + 1) * sizeof(float) + 63) / 64 * 64;
    for (int c = 0; c < n_ch; c++) {
        void *p = NULL;
        ck_assert_int_eq(posix_memalign(&p, 64, n_bytes), 0);
        memset(p, 0, n_bytes);
        s.ch[c] = p;
    }
    return s;
}

tu_sig_t tu_sig_copy(const tu_sig_t *x) { return tu_sig_slice(x, 0, x->n); }

tu_sig_t tu_sig_slice(const tu_sig_t *x, size_t from, size_t n)
{
    tu_sig_t s = tu_sig(x->n_ch, n);
    for (int c = 0; c < x->n_ch; c++)
        memcpy(s.ch[c], x->ch[c] + from, n * sizeof(float));
    return s;
}

void tu_sig_free(tu_sig_t *s)
{
    for (int c = 0; c < s->n_ch; c++)
        free(s->ch[c]);
    memset(s, 0, sizeof *s);
}

int tu_sig_equal(const tu_sig_t *a, const tu_sig_t *b)
{
    if (a->n_ch != b->n_ch || a->n != b->n)
        return 0;
    for (int c = 0; c < a->n_ch; c++)
        if (memcmp(a->ch[c], b->ch[c], a->n * sizeof(float)) != 0)
            return 0;
    return 1;
}

int64_t tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tu_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

pid_t tu_spawn(char *const argv[], const char *log_path)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (log_path) {
        posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    ck_assert_msg(rc == 0, "cannot start %s: %s", argv[0], strerror(rc));
    return pid;
}

int tu_wait(pid_t pid, int timeout_ms)
{
    for (int waited = 0;; waited += 20) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (waited >= timeout_ms)
            return -2;
        tu_sleep_ms(20);
    }
}

int tu_stop(pid_t pid)
{
    if (pid <= 0)
        return -1; /* kill(-1) would signal every process */
    kill(pid, SIGTERM);
    int rc = tu_wait(pid, 10000);
    if (rc != -2)
        return rc;
    tu_kill9(pid);
    return -1;
}

void tu_kill9(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}
