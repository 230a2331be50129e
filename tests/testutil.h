/* testutil.h -- fixtures shared by the Check suites: temp folders, text and
 * audio files generated in the test, running the real executables.
 * Test audio is generated, never committed. Every helper aborts the test
 * (ck_abort_msg) on failure, so callers need no error paths. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef M_PI /* C11 leaves it out of math.h */
#define M_PI 3.14159265358979323846
#endif

/* A planar float signal a test owns: n frames of n_ch channels (up to
 * TU_MAX_CH), each channel its own zeroed, 64-byte aligned block with one
 * spare frame after the last. */
#define TU_MAX_CH 8
typedef struct {
    int n_ch;
    size_t n;
    float *ch[TU_MAX_CH];
} tu_sig_t;
tu_sig_t tu_sig(int n_ch, size_t n);
tu_sig_t tu_sig_copy(const tu_sig_t *x);
/* Frames [from, from + n) of x as a new signal. */
tu_sig_t tu_sig_slice(const tu_sig_t *x, size_t from, size_t n);
void tu_sig_free(tu_sig_t *s);
/* Every channel's samples are the same bytes. */
int tu_sig_equal(const tu_sig_t *a, const tu_sig_t *b);

/* Runs a suite (Check forks each test unless CK_FORK=no) and returns the
 * process exit status: EXIT_SUCCESS when every test passed. */
typedef struct Suite Suite;
int tu_run_suite(Suite *suite);

/* A fresh folder under $TMPDIR (default /tmp); caller frees the string and
 * may remove the folder with tu_rm_rf (which keeps it, and prints its path,
 * when STEMFARM_KEEP_TEST_DIRS is set). */
char *tu_tmpdir(void);
void tu_rm_rf(const char *dir);

/* dir/name, malloc'd. */
char *tu_path(const char *dir, const char *name);

/* Writes `text` to dir/name, creating folders in name as needed; returns the
 * full path (malloc'd). */
char *tu_write_text(const char *dir, const char *name, const char *text);

/* Sample generator: the value of channel ch at frame i, in [-1, 1). */
typedef double (*tu_signal_fn)(int ch, int64_t i, void *ctx);

/* Writes a WAV at dir/name with `bits` 16 or 24 (integer PCM) or 32 (float).
 * Integer samples are round(x * 2^(bits-1)), clipped, so tu_quantized gives
 * exactly what the file holds. Returns the full path (malloc'd). */
char *tu_write_wav(const char *dir, const char *name, int channels, int rate, int64_t frames, int bits, tu_signal_fn fn,
                   void *ctx);

/* The value a sample x reads back as after tu_write_wav at `bits`. */
double tu_quantized(double x, int bits);

/* Reads a whole audio file as interleaved doubles, normalised as libsndfile
 * does by default: integer samples come back as the integers / 2^(bits-1). */
double *tu_read_audio(const char *path, int *channels, int64_t *frames, int *rate);

/* Raw integers of an integer-PCM file, right-justified (a pcm24 sample as
 * -2^23..2^23-1), interleaved. */
int32_t *tu_read_pcm_ints(const char *path, int bits, int *channels, int64_t *frames);

/* Whole file in memory (NUL-terminated); *n_bytes may be NULL. */
char *tu_slurp(const char *path, size_t *n_bytes);
int tu_files_equal(const char *a, const char *b);
int tu_exists(const char *path);

/* Runs `cmd` with /bin/sh; captures stdout and stderr (malloc'd, may be
 * passed NULL to discard) and returns the exit status (128+sig if killed).
 * The command is killed after timeout_s seconds. */
int tu_run(const char *cmd, char **out, char **err, int timeout_s);

/* Path of the built stemfarm / stemfarm-node (from ctest's environment). */
const char *tu_stemfarm_bin(void);
const char *tu_node_bin(void);
const char *tu_gen_bin(void);

/* A free tcp port on 127.0.0.1. */
int tu_free_port(void);

/* Simple deterministic signals. */
double tu_sine(double freq, double rate, int64_t i);

/* Starts argv[0] with argv; stdout and stderr go to log_path (appended;
 * NULL: inherited). Fails the test if it cannot start. */
pid_t tu_spawn(char *const argv[], const char *log_path);
/* SIGTERM, then waits up to 10 s (then SIGKILL): the exit status, 128 +
 * signal, or -1 when it had to be killed. */
int tu_stop(pid_t pid);
/* SIGKILL and reap. */
void tu_kill9(pid_t pid);
/* Waits up to timeout_ms for pid to exit: its status as tu_stop, or -2 when
 * it is still running. */
int tu_wait(pid_t pid, int timeout_ms);

/* CLOCK_MONOTONIC in milliseconds; a sleep that resumes after signals. */
int64_t tu_now_ms(void);
void tu_sleep_ms(int ms);
/* Uniform in [-1, 1) from (seed, i): counter-based, reproducible. */
double tu_noise(uint64_t seed, int64_t i);

#endif
