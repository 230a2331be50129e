/* media.c -- audio file I/O at the libsndfile edge (see sf/media.h).
 *
 * Invariants:
 * - Source reads open the file, seek, read exactly the frames asked for and
 *   close it again within one call: a render holds at most one source open
 *   per thread, whatever the number of tracks.
 * - We open every descriptor ourselves with open(2) and hand it to
 *   sf_open_fd with close_desc = false, so the descriptor's life is ours on
 *   every path (libsndfile never closes it behind our back), open errors come
 *   from errno (thread-safe), and the writer can fsync before closing.
 * - The writer never lets libsndfile change a sample: integer formats take
 *   left-justified int32 (libsndfile only drops the low bits), float32 takes
 *   floats as they are; no normalisation, no clipping, no dither of its own.
 *   Clipping is sf_dsp_quantize's job.
 * - Same samples, same bytes: libsndfile stamps a float file's PEAK chunk
 *   with time(NULL). WAV and AIFF get no PEAK chunk (SFC_SET_ADD_PEAK_CHUNK);
 *   RF64 ignores that command, so its time stamp is zeroed after sf_close.
 */

#include <sndfile.h>

#include "sf/media.h"

#include "sf/alloc.h"
#include "sf/dsp.h"
#include "sf/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SF_MEDIA_CHUNK 8192 /* frames per libsndfile call when (de)interleaving */

struct sf_media_writer {
    char *path;                       /* for messages (owned) */
    int fd;                           /* ours; libsndfile does not close it */
    SNDFILE *snd;
    sf_format_t format;
    sf_sample_format_t sample_format;
    int channels;
    int64_t n_frames;                 /* frames written so far */
    sf_xxh3_stream_t *hash;           /* over exactly the buffers passed to write_* */
};

/* Copies a message into buf without the trailing full stop and blanks that
 * libsndfile's messages carry ("System error : x." -> "System error : x"). */
static const char *s_trim_reason(const char *reason, char *buf, size_t n_bytes)
{
    snprintf(buf, n_bytes, "%s", reason ? reason : "unknown error");
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '.' || buf[n - 1] == ' ' || buf[n - 1] == '\n'))
        buf[--n] = '\0';
    return buf;
}

static const char *s_errno_reason(int errnum, char *buf, size_t n_bytes)
{
    if (strerror_r(errnum, buf, n_bytes) != 0)
        snprintf(buf, n_bytes, "error %d", errnum);
    return buf;
}

/* Opens `path` for reading with libsndfile. On failure returns NULL with
 * SF_E_IO "cannot open 'path': reason" in *err and *fd closed. */
static SNDFILE *s_open_read(const char *path, int *fd, SF_INFO *info, sf_err_t *err)
{
    char reason[256];
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) {
        SF_ERR(err, SF_E_IO, "cannot open '%s': %s", path,
               s_errno_reason(errno, reason, sizeof reason));
        return NULL;
    }
    memset(info, 0, sizeof *info);
    SNDFILE *snd = sf_open_fd(*fd, SFM_READ, info, SF_FALSE);
    if (!snd) {
        /* sf_open_fd reports through libsndfile's global error number */
        SF_ERR(err, SF_E_IO, "cannot open '%s': %s", path,
               s_trim_reason(sf_error_number(sf_error(NULL)), reason, sizeof reason));
        close(*fd);
        *fd = -1;
    }
    return snd;
}

static void s_close_read(SNDFILE *snd, int fd)
{
    sf_close(snd);
    close(fd);
}

sf_rc sf_media_probe(const char *path, sf_media_info_t *info, sf_err_t *err)
{
    SF_INFO si;
    int fd;
    SNDFILE *snd = s_open_read(path, &fd, &si, err);
    if (!snd)
        return SF_E_IO;
    s_close_read(snd, fd);
    if (si.frames <= 0)
        return SF_ERR(err, SF_E_INPUT, "'%s' has no audio frames", path);
    info->channels = si.channels;
    info->sample_rate = si.samplerate;
    info->frames = (int64_t)si.frames;
    return SF_OK;
}

sf_rc sf_media_read(const char *path, int64_t offset, int64_t n_frames, int n_channels,
                    float *const *dst, sf_err_t *err)
{
    if (offset < 0 || n_frames < 0)
        return SF_ERR(err, SF_E_INTERNAL, "reading '%s': bad range [%lld, +%lld)", path,
                      (long long)offset, (long long)n_frames);
    if (n_frames == 0)
        return SF_OK;

    SF_INFO si;
    int fd;
    SNDFILE *snd = s_open_read(path, &fd, &si, err);
    if (!snd)
        return SF_E_IO;

    sf_rc rc = SF_OK;
    float *tmp = NULL;
    char reason[256];
    if (si.channels != n_channels) {
        rc = SF_ERR(err, SF_E_INPUT, "'%s' has %d channels, expected %d", path, si.channels,
                    n_channels);
        goto out_close;
    }
    if (offset > (int64_t)si.frames || n_frames > (int64_t)si.frames - offset) {
        rc = SF_ERR(err, SF_E_IO,
                    "cannot read '%s': short read: frames [%lld, %lld) wanted, the file has %lld",
                    path, (long long)offset, (long long)(offset + n_frames), (long long)si.frames);
        goto out_close;
    }
    if (sf_seek(snd, (sf_count_t)offset, SEEK_SET) != (sf_count_t)offset) {
        rc = SF_ERR(err, SF_E_IO, "cannot seek '%s' to frame %lld: %s", path, (long long)offset,
                    s_trim_reason(sf_strerror(snd), reason, sizeof reason));
        goto out_close;
    }

    /* Mono reads straight into dst; more channels go through one chunk of
     * interleaved floats. */
    if (n_channels > 1) {
        tmp = sf_malloc(sizeof(float) * SF_MEDIA_CHUNK * (size_t)n_channels);
        if (!tmp) {
            rc = SF_ERR(err, SF_E_NOMEM, "out of memory reading '%s'", path);
            goto out_close;
        }
    }
    for (int64_t done = 0; done < n_frames;) {
        int64_t want = n_frames - done;
        if (n_channels > 1 && want > SF_MEDIA_CHUNK)
            want = SF_MEDIA_CHUNK;
        float *buf = n_channels > 1 ? tmp : dst[0] + done;
        sf_count_t got = sf_readf_float(snd, buf, (sf_count_t)want);
        if (got != (sf_count_t)want) {
            rc = SF_ERR(err, SF_E_IO, "cannot read '%s': short read at frame %lld: %s", path,
                        (long long)(offset + done + (got > 0 ? got : 0)),
                        sf_error(snd) ? s_trim_reason(sf_strerror(snd), reason, sizeof reason)
                                      : "unexpected end of file");
            goto out_free;
        }
        if (n_channels > 1) {
            float *planar[SF_MAX_CHANNELS];
            for (int c = 0; c < n_channels && c < SF_MAX_CHANNELS; c++)
                planar[c] = dst[c] + done;
            sf_dsp_deinterleave(planar, tmp, n_channels, (size_t)want);
        }
        done += want;
    }

out_free:
    sf_free(tmp);
out_close:
    s_close_read(snd, fd);
    return rc;
}

/* ---- writing ---------------------------------------------------------- */

static int s_major_format(sf_format_t f)
{
    switch (f) {
    case SF_FILE_WAV: return SF_FORMAT_WAV;
    case SF_FILE_RF64: return SF_FORMAT_RF64;
    case SF_FILE_W64: return SF_FORMAT_W64;
    case SF_FILE_AIFF: return SF_FORMAT_AIFF;
    case SF_FILE_FLAC: return SF_FORMAT_FLAC;
    }
    return 0;
}

static int s_sub_format(sf_sample_format_t f)
{
    switch (f) {
    case SF_SAMPLE_PCM16: return SF_FORMAT_PCM_16;
    case SF_SAMPLE_PCM24: return SF_FORMAT_PCM_24;
    case SF_SAMPLE_PCM32: return SF_FORMAT_PCM_32;
    case SF_SAMPLE_FLOAT32: return SF_FORMAT_FLOAT;
    }
    return 0;
}

static const char *s_sample_name(sf_sample_format_t f)
{
    switch (f) {
    case SF_SAMPLE_PCM16: return "pcm16";
    case SF_SAMPLE_PCM24: return "pcm24";
    case SF_SAMPLE_PCM32: return "pcm32";
    case SF_SAMPLE_FLOAT32: return "float32";
    }
    return "?";
}

static const char *s_format_name(sf_format_t f)
{
    switch (f) {
    case SF_FILE_WAV: return "wav";
    case SF_FILE_RF64: return "rf64";
    case SF_FILE_W64: return "w64";
    case SF_FILE_AIFF: return "aiff";
    case SF_FILE_FLAC: return "flac";
    }
    return "?";
}

/* Turns off everything that would let libsndfile alter or time-stamp what
 * we write. Must run before the first write. */
static void s_writer_settings(SNDFILE *snd)
{
    sf_command(snd, SFC_SET_ADD_PEAK_CHUNK, NULL, SF_FALSE);
    sf_command(snd, SFC_SET_CLIPPING, NULL, SF_FALSE);
    sf_command(snd, SFC_SET_SCALE_INT_FLOAT_WRITE, NULL, SF_FALSE);
    sf_command(snd, SFC_SET_NORM_FLOAT, NULL, SF_TRUE);
}

sf_rc sf_media_writer_open(const char *path, sf_format_t format, sf_sample_format_t sample_format,
                           int sample_rate, int channels, sf_media_writer_t **out, sf_err_t *err)
{
    *out = NULL;
    char reason[256];
    SF_INFO si = {.samplerate = sample_rate, .channels = channels,
                  .format = s_major_format(format) | s_sub_format(sample_format)};
    /* Reject a bad combination before the file is created or truncated. */
    if (channels < 1 || channels > SF_MAX_CHANNELS || sample_rate <= 0 || !sf_format_check(&si))
        return SF_ERR(err, SF_E_INPUT,
                      "cannot write '%s': %s with %s samples, %d channels at %d Hz is not supported",
                      path, s_format_name(format), s_sample_name(sample_format), channels,
                      sample_rate);

    sf_media_writer_t *w = sf_calloc(1, sizeof *w);
    if (!w)
        return SF_ERR(err, SF_E_NOMEM, "out of memory opening '%s'", path);
    w->fd = -1;
    w->format = format;
    w->sample_format = sample_format;
    w->channels = channels;
    w->path = sf_strdup(path);
    w->hash = sf_xxh3_stream_new();
    sf_rc rc;
    if (!w->path || !w->hash) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory opening '%s'", path);
        goto fail_free;
    }
    w->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        rc = SF_ERR(err, SF_E_IO, "cannot create '%s': %s", path,
                    s_errno_reason(errno, reason, sizeof reason));
        goto fail_free;
    }
    w->snd = sf_open_fd(w->fd, SFM_WRITE, &si, SF_FALSE);
    if (!w->snd) {
        rc = SF_ERR(err, SF_E_IO, "cannot write '%s': %s", path,
                    s_trim_reason(sf_error_number(sf_error(NULL)), reason, sizeof reason));
        goto fail_close;
    }
    s_writer_settings(w->snd);
    *out = w;
    return SF_OK;

fail_close:
    close(w->fd);
    unlink(path); /* a half-made file is worth nothing */
fail_free:
    sf_xxh3_stream_destroy(&w->hash);
    sf_free(w->path);
    sf_free(w);
    return rc;
}

sf_rc sf_media_writer_write_int(sf_media_writer_t *w, const int32_t *interleaved, size_t n_frames,
                                sf_err_t *err)
{
    if (w->sample_format == SF_SAMPLE_FLOAT32)
        return SF_ERR(err, SF_E_INTERNAL, "'%s' is float32: write floats, not integers", w->path);
    sf_count_t put = sf_writef_int(w->snd, interleaved, (sf_count_t)n_frames);
    if (put != (sf_count_t)n_frames) {
        char reason[256];
        return SF_ERR(err, SF_E_IO, "cannot write '%s': %s", w->path,
                      s_trim_reason(sf_strerror(w->snd), reason, sizeof reason));
    }
    sf_xxh3_stream_update(w->hash, interleaved, n_frames * (size_t)w->channels * sizeof(int32_t));
    w->n_frames += (int64_t)n_frames;
    return SF_OK;
}

sf_rc sf_media_writer_write_float(sf_media_writer_t *w, const float *interleaved, size_t n_frames,
                                  sf_err_t *err)
{
    if (w->sample_format != SF_SAMPLE_FLOAT32)
        return SF_ERR(err, SF_E_INTERNAL, "'%s' is %s: write quantised integers, not floats",
                      w->path, s_sample_name(w->sample_format));
    sf_count_t put = sf_writef_float(w->snd, interleaved, (sf_count_t)n_frames);
    if (put != (sf_count_t)n_frames) {
        char reason[256];
        return SF_ERR(err, SF_E_IO, "cannot write '%s': %s", w->path,
                      s_trim_reason(sf_strerror(w->snd), reason, sizeof reason));
    }
    sf_xxh3_stream_update(w->hash, interleaved, n_frames * (size_t)w->channels * sizeof(float));
    w->n_frames += (int64_t)n_frames;
    return SF_OK;
}

uint64_t sf_media_writer_pcm_hash(const sf_media_writer_t *w)
{
    return sf_xxh3_stream_digest(w->hash);
}

int64_t sf_media_writer_frames(const sf_media_writer_t *w) { return w->n_frames; }

/* Zeroes the time stamp of the PEAK chunk of a RIFF-style file (RF64), if it
 * has one before its data chunk. Returns 0, or -1 with errno set. */
static int s_zero_peak_time(int fd)
{
    unsigned char hdr[4096];
    ssize_t n = pread(fd, hdr, sizeof hdr, 0);
    if (n < 0)
        return -1;
    for (size_t pos = 12; pos + 16 <= (size_t)n;) {
        uint32_t size = (uint32_t)hdr[pos + 4] | (uint32_t)hdr[pos + 5] << 8 |
                        (uint32_t)hdr[pos + 6] << 16 | (uint32_t)hdr[pos + 7] << 24;
        if (memcmp(hdr + pos, "data", 4) == 0)
            return 0;
        if (memcmp(hdr + pos, "PEAK", 4) == 0) {
            /* PEAK: version (4 bytes), time stamp (4 bytes), peaks */
            static const unsigned char zero[4] = {0};
            return pwrite(fd, zero, 4, (off_t)(pos + 12)) == 4 ? 0 : -1;
        }
        pos += 8 + (size_t)size + (size & 1);
    }
    return 0;
}

sf_rc sf_media_writer_close(sf_media_writer_t **self_p, sf_err_t *err)
{
    if (!self_p || !*self_p)
        return SF_OK;
    sf_media_writer_t *w = *self_p;
    *self_p = NULL;
    sf_rc rc = SF_OK;
    char reason[256];

    /* sf_close writes the final header; only then is there something to sync */
    int sf_rc_close = sf_close(w->snd);
    if (sf_rc_close != 0)
        rc = SF_ERR(err, SF_E_IO, "cannot finish '%s': %s", w->path,
                    s_trim_reason(sf_error_number(sf_rc_close), reason, sizeof reason));
    if (rc == SF_OK && w->format == SF_FILE_RF64 && w->sample_format == SF_SAMPLE_FLOAT32 &&
        s_zero_peak_time(w->fd) != 0)
        rc = SF_ERR(err, SF_E_IO, "cannot finish '%s': %s", w->path,
                    s_errno_reason(errno, reason, sizeof reason));
    if (fsync(w->fd) != 0 && rc == SF_OK)
        rc = SF_ERR(err, SF_E_IO, "cannot sync '%s': %s", w->path,
                    s_errno_reason(errno, reason, sizeof reason));
    if (close(w->fd) != 0 && rc == SF_OK)
        rc = SF_ERR(err, SF_E_IO, "cannot close '%s': %s", w->path,
                    s_errno_reason(errno, reason, sizeof reason));
    sf_xxh3_stream_destroy(&w->hash);
    sf_free(w->path);
    sf_free(w);
    return rc;
}

/* ---- verification ----------------------------------------------------- */

static int s_file_sample_format(int format, sf_sample_format_t *out)
{
    switch (format & SF_FORMAT_SUBMASK) {
    case SF_FORMAT_PCM_16: *out = SF_SAMPLE_PCM16; return 1;
    case SF_FORMAT_PCM_24: *out = SF_SAMPLE_PCM24; return 1;
    case SF_FORMAT_PCM_32: *out = SF_SAMPLE_PCM32; return 1;
    case SF_FORMAT_FLOAT: *out = SF_SAMPLE_FLOAT32; return 1;
    default: return 0;
    }
}

sf_rc sf_media_hash_pcm(const char *path, sf_sample_format_t sample_format, uint64_t *xxh3,
                        int64_t *n_frames, int *channels, sf_err_t *err)
{
    SF_INFO si;
    int fd;
    SNDFILE *snd = s_open_read(path, &fd, &si, err);
    if (!snd)
        return SF_E_IO;

    sf_rc rc = SF_OK;
    void *buf = NULL;
    sf_xxh3_stream_t *st = NULL;
    char reason[256];
    sf_sample_format_t found;
    if (!s_file_sample_format(si.format, &found) || found != sample_format) {
        rc = SF_ERR(err, SF_E_VERIFY, "'%s' does not hold %s samples", path,
                    s_sample_name(sample_format));
        goto out_close;
    }
    /* 4 bytes per sample either way: int32 or float */
    buf = sf_malloc(sizeof(int32_t) * SF_MEDIA_CHUNK * (size_t)si.channels);
    st = sf_xxh3_stream_new();
    if (!buf || !st) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory reading '%s'", path);
        goto out_free;
    }
    /* Integer reads must not be scaled from float data; irrelevant for
     * matching formats, but leave nothing to defaults. */
    sf_command(snd, SFC_SET_SCALE_FLOAT_INT_READ, NULL, SF_FALSE);
    int64_t total = 0;
    for (;;) {
        sf_count_t got = sample_format == SF_SAMPLE_FLOAT32
                             ? sf_readf_float(snd, buf, SF_MEDIA_CHUNK)
                             : sf_readf_int(snd, buf, SF_MEDIA_CHUNK);
        if (got < 0 || sf_error(snd)) {
            rc = SF_ERR(err, SF_E_IO, "cannot read '%s': %s", path,
                        s_trim_reason(sf_strerror(snd), reason, sizeof reason));
            goto out_free;
        }
        if (got == 0)
            break;
        sf_xxh3_stream_update(st, buf, (size_t)got * (size_t)si.channels * sizeof(int32_t));
        total += (int64_t)got;
    }
    if (total != (int64_t)si.frames) {
        rc = SF_ERR(err, SF_E_VERIFY, "'%s': read %lld frames, the header says %lld", path,
                    (long long)total, (long long)si.frames);
        goto out_free;
    }
    *xxh3 = sf_xxh3_stream_digest(st);
    *n_frames = total;
    *channels = si.channels;

out_free:
    sf_xxh3_stream_destroy(&st);
    sf_free(buf);
out_close:
    s_close_read(snd, fd);
    return rc;
}
