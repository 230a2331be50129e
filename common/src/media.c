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
 *
 * Channel masks of surround deliverables (WAVE_FORMAT_EXTENSIBLE):
 * - 5.1 (L R C LFE Ls Rs) is written with mask 0x3F: FL FR FC LFE BL BR,
 *   what most DAWs write for "5.1";
 * - 7.1 (L R C LFE Lss Rss Lsr Rsr) is written with mask 0x63F: FL FR FC LFE
 *   BL BR SL SR. The conflict: WAVEX orders channels by mask bit, so the
 *   back pair (BL BR) always precedes the side pair (SL SR), while our 7.1
 *   order (SMPTE / Pro Tools) puts the side surrounds before the rear ones.
 *   The bytes stay in our order (re-ordering them is not allowed), so a
 *   reader that places channels by the mask puts Lss/Rss at the back and
 *   Lsr/Rsr at the sides. We accept that because it is the only standard
 *   7.1 mask, it keeps channels 5-6 labelled BL BR in both 5.1 and 7.1 (a
 *   5.1 -> 7.1 up-mix moves Ls to Lss: the same bits), and the alternative
 *   -- no mask -- leaves readers to the very same default for 8 channels;
 * - WAV of 6 or 8 channels is written as WAVEX (plain WAVEFORMAT has no
 *   mask); RF64 always is; libsndfile (1.2) writes W64 only with a plain
 *   WAVEFORMAT, so 6- and 8-channel integer W64 files are written here,
 *   header and samples (s_w64_*), in the layout libsndfile reads back. A
 *   float32 W64 keeps libsndfile's plain header and so has no mask:
 *   libsndfile's W64 reader takes any WAVE_FORMAT_EXTENSIBLE for integer
 *   PCM, so our own read-back verification could not read it.
 */

#include <sndfile.h>
#include <soxr.h>

#include "sf/media.h"

#include "sf/alloc.h"
#include "sf/dsp.h"
#include "sf/hash.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SF_MEDIA_CHUNK 8192 /* frames per libsndfile call when (de)interleaving */

#define SF_BEXT_UNKNOWN  0x7FFF     /* a v2 loudness field that holds no value */
#define SF_BEXT_LOUDNESS 412        /* offset of LoudnessValue in the bext chunk's data */
#define SF_RIFF_HEADROOM (1u << 20) /* bytes a WAV's header and metadata may take */

struct sf_media_writer {
    char *path;          /* for messages (owned) */
    int fd;              /* ours; libsndfile does not close it */
    SNDFILE *snd;        /* NULL for a W64 written here (own_w64) */
    bool own_w64;        /* 6/8-channel W64: header and samples written by us */
    int64_t data_bytes;  /* own_w64: sample bytes written */
    unsigned char *pack; /* own_w64: little-endian bytes of one chunk */
    sf_format_t format;
    sf_sample_format_t sample_format;
    int channels;
    int rate;
    int64_t n_frames;       /* frames written so far */
    sf_xxh3_stream_t *hash; /* over exactly the buffers passed to write_* */
    char *ixml;             /* BWF: the iXML chunk, alive until sf_close (libsndfile keeps the pointer) */
};

/* Copies a message into buf without the trailing full stop and blanks that
 * libsndfile's messages carry ("System error : x." -> "System error : x"). */
static const char *s_trim_reason(const char *reason, char *buf, size_t n_bytes)
{
    /* "System error : No space left on device." says no more than errno's text */
    static const char system[] = "System error : ";
    if (reason && !strncmp(reason, system, sizeof system - 1))
        reason += sizeof system - 1;
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
        SF_ERR(err, SF_E_IO, "cannot open '%s': %s", path, s_errno_reason(errno, reason, sizeof reason));
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

/* Whether frames of this format can be read as raw bytes and converted by
 * sf_dsp_pcm_to_float: little-endian containers of 16-, 24- or 32-bit
 * integer or 32-bit float PCM on a little-endian machine. libsndfile's own
 * conversion was most of a render node's time (16 instructions a sample
 * for 24-bit); the values are the same. */
static bool s_raw_pcm(int format, int *bytes, bool *is_float)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const int major = format & SF_FORMAT_TYPEMASK, endian = format & SF_FORMAT_ENDMASK;
    const bool little = endian == SF_ENDIAN_LITTLE ||
                        (endian == SF_ENDIAN_FILE && (major == SF_FORMAT_WAV || major == SF_FORMAT_WAVEX ||
                                                      major == SF_FORMAT_RF64 || major == SF_FORMAT_W64));
    if (!little)
        return false;
    switch (format & SF_FORMAT_SUBMASK) {
    case SF_FORMAT_PCM_16:
        *bytes = 2;
        *is_float = false;
        return true;
    case SF_FORMAT_PCM_24:
        *bytes = 3;
        *is_float = false;
        return true;
    case SF_FORMAT_PCM_32:
        *bytes = 4;
        *is_float = false;
        return true;
    case SF_FORMAT_FLOAT:
        *bytes = 4;
        *is_float = true;
        return true;
    default: return false;
    }
#else
    (void)format, (void)bytes, (void)is_float;
    return false;
#endif
}

sf_rc sf_media_read(const char *path, int64_t offset, int64_t n_frames, int n_channels, float *const *dst,
                    sf_err_t *err)
{
    if (offset < 0 || n_frames < 0)
        return SF_ERR(err, SF_E_INTERNAL, "reading '%s': bad range [%lld, +%lld)", path, (long long)offset,
                      (long long)n_frames);
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
        rc = SF_ERR(err, SF_E_INPUT, "'%s' has %d channels, expected %d", path, si.channels, n_channels);
        goto out_close;
    }
    if (offset > (int64_t)si.frames || n_frames > (int64_t)si.frames - offset) {
        rc = SF_ERR(err, SF_E_IO, "cannot read '%s': short read: frames [%lld, %lld) wanted, the file has %lld", path,
                    (long long)offset, (long long)(offset + n_frames), (long long)si.frames);
        goto out_close;
    }
    if (sf_seek(snd, (sf_count_t)offset, SEEK_SET) != (sf_count_t)offset) {
        rc = SF_ERR(err, SF_E_IO, "cannot seek '%s' to frame %lld: %s", path, (long long)offset,
                    s_trim_reason(sf_strerror(snd), reason, sizeof reason));
        goto out_close;
    }

    /* Mono reads straight into dst; more channels, and raw PCM, go through
     * one chunk of interleaved floats (and one of raw bytes). */
    int bytes = 0;
    bool is_float = false;
    const bool raw = s_raw_pcm(si.format, &bytes, &is_float);
    if (n_channels > 1 || raw) {
        tmp = sf_malloc(sizeof(float) * SF_MEDIA_CHUNK * (size_t)n_channels * (raw ? 2 : 1));
        if (!tmp) {
            rc = SF_ERR(err, SF_E_NOMEM, "out of memory reading '%s'", path);
            goto out_close;
        }
    }
    for (int64_t done = 0; done < n_frames;) {
        int64_t want = n_frames - done;
        if ((n_channels > 1 || raw) && want > SF_MEDIA_CHUNK)
            want = SF_MEDIA_CHUNK;
        float *buf = n_channels > 1 ? tmp : dst[0] + done;
        sf_count_t got;
        if (raw) {
            const size_t frame_bytes = (size_t)bytes * (size_t)n_channels;
            unsigned char *bytes_in = (unsigned char *)(tmp + SF_MEDIA_CHUNK * (size_t)n_channels);
            const sf_count_t n_bytes = sf_read_raw(snd, bytes_in, (sf_count_t)((size_t)want * frame_bytes));
            got = n_bytes > 0 ? n_bytes / (sf_count_t)frame_bytes : n_bytes;
            if (got > 0)
                sf_dsp_pcm_to_float(buf, bytes_in, bytes, is_float, (size_t)got * (size_t)n_channels);
        } else {
            got = sf_readf_float(snd, buf, (sf_count_t)want);
        }
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

/* Turns off everything that would let libsndfile alter or time-stamp what
 * we write. Must run before the first write. */
static void s_writer_settings(SNDFILE *snd)
{
    sf_command(snd, SFC_SET_ADD_PEAK_CHUNK, NULL, SF_FALSE);
    sf_command(snd, SFC_SET_CLIPPING, NULL, SF_FALSE);
    sf_command(snd, SFC_SET_SCALE_INT_FLOAT_WRITE, NULL, SF_FALSE);
    sf_command(snd, SFC_SET_NORM_FLOAT, NULL, SF_TRUE);
}

/* ---- surround channel masks and the W64 writer -------------------------- */

#define SF_MASK_5_1 0x3Fu  /* FL FR FC LFE BL BR */
#define SF_MASK_7_1 0x63Fu /* FL FR FC LFE BL BR SL SR */

/* libsndfile's labels of our 5.1 / 7.1 channels in file order (see the file
 * top for why Lss/Rss are BL/BR); NULL for other counts. */
static const int *s_channel_map(int channels)
{
    static const int map6[6] = {SF_CHANNEL_MAP_LEFT, SF_CHANNEL_MAP_RIGHT,     SF_CHANNEL_MAP_CENTER,
                                SF_CHANNEL_MAP_LFE,  SF_CHANNEL_MAP_REAR_LEFT, SF_CHANNEL_MAP_REAR_RIGHT};
    static const int map8[8] = {SF_CHANNEL_MAP_LEFT,      SF_CHANNEL_MAP_RIGHT,     SF_CHANNEL_MAP_CENTER,
                                SF_CHANNEL_MAP_LFE,       SF_CHANNEL_MAP_REAR_LEFT, SF_CHANNEL_MAP_REAR_RIGHT,
                                SF_CHANNEL_MAP_SIDE_LEFT, SF_CHANNEL_MAP_SIDE_RIGHT};
    return channels == 6 ? map6 : channels == 8 ? map8 : NULL;
}

static bool s_needs_mask(sf_format_t f, int channels)
{
    return (channels == 6 || channels == 8) && (f == SF_FILE_WAV || f == SF_FILE_RF64 || f == SF_FILE_W64);
}

static int s_bytes_per_sample(sf_sample_format_t f) { return f == SF_SAMPLE_PCM16 ? 2 : f == SF_SAMPLE_PCM24 ? 3 : 4; }

/* Sony Wave64 chunk GUIDs, as libsndfile's w64.c spells them. */
#define SF_W64_TAIL 0xF3, 0xAC, 0xD3, 0x11, 0x8C, 0xD1, 0x00, 0xC0, 0x4F, 0x8E, 0xDB, 0x8A
static const unsigned char k_w64_riff[16] = {'r',  'i',  'f',  'f',  0x2E, 0x91, 0xCF, 0x11,
                                             0xA5, 0xD6, 0x28, 0xDB, 0x04, 0xC1, 0x00, 0x00};
static const unsigned char k_w64_wave[16] = {'w', 'a', 'v', 'e', SF_W64_TAIL};
static const unsigned char k_w64_fmt[16] = {'f', 'm', 't', ' ', SF_W64_TAIL};
static const unsigned char k_w64_data[16] = {'d', 'a', 't', 'a', SF_W64_TAIL};
/* KSDATAFORMAT_SUBTYPE_PCM */
static const unsigned char k_subtype_pcm[16] = {0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
                                                0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
#define SF_W64_HEADER 128 /* bytes before the samples */

static void s_put_le(unsigned char *p, uint64_t v, int n_bytes)
{
    for (int i = 0; i < n_bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* The header of an integer-PCM W64: riff, wave, fmt (WAVE_FORMAT_EXTENSIBLE
 * with our mask), data. 128 bytes, a multiple of 8: the samples start aligned. */
static size_t s_w64_header(unsigned char *h, const sf_media_writer_t *w, int rate)
{
    const uint64_t bps = (uint64_t)s_bytes_per_sample(w->sample_format);
    const uint64_t ch = (uint64_t)w->channels;
    const uint64_t padded = ((uint64_t)w->data_bytes + 7) & ~(uint64_t)7;
    memset(h, 0, SF_W64_HEADER);
    memcpy(h, k_w64_riff, 16);
    s_put_le(h + 16, SF_W64_HEADER + padded, 8);
    memcpy(h + 24, k_w64_wave, 16);
    unsigned char *f = h + 40;
    memcpy(f, k_w64_fmt, 16);
    s_put_le(f + 16, 24 + 40, 8);
    s_put_le(f + 24, 0xFFFE, 2); /* WAVE_FORMAT_EXTENSIBLE */
    s_put_le(f + 26, ch, 2);
    s_put_le(f + 28, (uint64_t)rate, 4);
    s_put_le(f + 32, (uint64_t)rate * bps * ch, 4);
    s_put_le(f + 36, bps * ch, 2);
    s_put_le(f + 38, bps * 8, 2);
    s_put_le(f + 40, 22, 2);      /* cbSize */
    s_put_le(f + 42, bps * 8, 2); /* valid bits */
    s_put_le(f + 44, w->channels == 6 ? SF_MASK_5_1 : SF_MASK_7_1, 4);
    memcpy(f + 48, k_subtype_pcm, 16);
    unsigned char *d = f + 64;
    memcpy(d, k_w64_data, 16);
    s_put_le(d + 16, 24 + (uint64_t)w->data_bytes, 8);
    return SF_W64_HEADER;
}

/* write(2) all of buf at the current offset; 0, or -1 with errno. */
static int s_write_all(int fd, const void *buf, size_t n_bytes)
{
    const unsigned char *p = buf;
    while (n_bytes > 0) {
        ssize_t put = write(fd, p, n_bytes);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            return -1;
        p += put;
        n_bytes -= (size_t)put;
    }
    return 0;
}

/* Appends interleaved left-justified int32 frames to an own W64 in
 * little-endian bytes: exactly the bytes libsndfile would store (pcm16 and
 * pcm24 keep the top 16 / 24 bits, as its int writers do). */
static sf_rc s_w64_write(sf_media_writer_t *w, const void *frames, size_t n_frames, sf_err_t *err)
{
    const size_t bps = (size_t)s_bytes_per_sample(w->sample_format);
    const size_t skip = 4 - bps; /* low bytes dropped from a left-justified int32 */
    const unsigned char *src = frames;
    for (size_t done = 0; done < n_frames;) {
        size_t n = n_frames - done < SF_MEDIA_CHUNK ? n_frames - done : SF_MEDIA_CHUNK;
        size_t n_samples = n * (size_t)w->channels;
        const unsigned char *in = src + done * (size_t)w->channels * 4;
        unsigned char *out = w->pack;
        for (size_t i = 0; i < n_samples; i++) {
            uint32_t word;
            memcpy(&word, in + 4 * i, 4);
            for (size_t b = 0; b < bps; b++)
                *out++ = (unsigned char)(word >> (8 * (b + skip)));
        }
        if (s_write_all(w->fd, w->pack, n_samples * bps) != 0) {
            char reason[256];
            return SF_ERR(err, SF_E_IO, "cannot write '%s': %s", w->path, s_errno_reason(errno, reason, sizeof reason));
        }
        w->data_bytes += (int64_t)(n_samples * bps);
        done += n;
    }
    return SF_OK;
}

/* Pads the data to 8 bytes and writes the final header. 0, or -1 with errno. */
static int s_w64_finish(sf_media_writer_t *w)
{
    static const unsigned char zeros[8] = {0};
    size_t pad = (size_t)((8 - (w->data_bytes & 7)) & 7);
    if (pad > 0 && s_write_all(w->fd, zeros, pad) != 0)
        return -1;
    unsigned char h[SF_W64_HEADER];
    size_t n = s_w64_header(h, w, w->rate);
    return pwrite(w->fd, h, n, 0) == (ssize_t)n ? 0 : -1;
}

/* bext (EBU Tech 3285 v2) and iXML, before any sample is written: libsndfile
 * puts both chunks ahead of the data. The loudness fields say "not known"
 * until sf_media_bwf_set_loudness writes what the meters found. */
static sf_rc s_writer_bwf(sf_media_writer_t *w, const sf_media_bwf_t *bwf, sf_err_t *err)
{
    SF_BROADCAST_INFO bext;
    memset(&bext, 0, sizeof bext);
    /* the text fields are fixed-size and need no terminating zero */
    const char *text[] = {bwf->description, bwf->originator, bwf->originator_reference, bwf->date, bwf->time};
    char *field[] = {bext.description, bext.originator, bext.originator_reference, bext.origination_date,
                     bext.origination_time};
    const size_t size[] = {sizeof bext.description, sizeof bext.originator, sizeof bext.originator_reference,
                           sizeof bext.origination_date, sizeof bext.origination_time};
    for (size_t k = 0; k < sizeof field / sizeof *field; k++)
        if (text[k])
            memcpy(field[k], text[k], strnlen(text[k], size[k]));
    bext.time_reference_low = (uint32_t)(bwf->time_reference & 0xFFFFFFFFu);
    bext.time_reference_high = (uint32_t)(bwf->time_reference >> 32);
    bext.version = 2;
    bext.loudness_value = bext.loudness_range = bext.max_true_peak_level = SF_BEXT_UNKNOWN;
    bext.max_momentary_loudness = bext.max_shortterm_loudness = SF_BEXT_UNKNOWN;
    const char *history = bwf->coding_history ? bwf->coding_history : "";
    bext.coding_history_size = (uint32_t)strnlen(history, sizeof bext.coding_history);
    memcpy(bext.coding_history, history, bext.coding_history_size);
    if (!sf_command(w->snd, SFC_SET_BROADCAST_INFO, &bext, (int)sizeof bext))
        return SF_ERR(err, SF_E_INTERNAL, "cannot write '%s': libsndfile refused the bext chunk", w->path);
    if (!bwf->ixml)
        return SF_OK;
    /* an even length, so the chunk needs no pad byte */
    size_t n = strlen(bwf->ixml);
    w->ixml = sf_malloc(n + 2);
    if (!w->ixml)
        return SF_ERR(err, SF_E_NOMEM, "out of memory writing '%s'", w->path);
    memcpy(w->ixml, bwf->ixml, n);
    if (n % 2)
        w->ixml[n++] = '\n';
    w->ixml[n] = '\0';
    SF_CHUNK_INFO chunk = {.id = "iXML", .id_size = 4, .datalen = (unsigned)n, .data = w->ixml};
    if (sf_set_chunk(w->snd, &chunk) != SF_ERR_NO_ERROR)
        return SF_ERR(err, SF_E_INTERNAL, "cannot write '%s': libsndfile refused the iXML chunk", w->path);
    return SF_OK;
}

sf_format_t sf_media_container(sf_format_t format, int64_t n_frames, int channels, sf_sample_format_t sample_format)
{
    const uint64_t data = (uint64_t)(n_frames > 0 ? n_frames : 0) * (uint64_t)channels *
                          (uint64_t)(sf_sample_format_bits(sample_format) / 8);
    /* RIFF sizes are 32 bits; leave room for the header, bext and iXML */
    return format == SF_FILE_WAV && data > 0xFFFFFFFFull - SF_RIFF_HEADROOM ? SF_FILE_RF64 : format;
}

sf_rc sf_media_writer_open(const char *path, sf_format_t format, sf_sample_format_t sample_format, int sample_rate,
                           int channels, const sf_media_bwf_t *bwf, sf_media_writer_t **out, sf_err_t *err)
{
    *out = NULL;
    char reason[256];
    const bool mask = s_needs_mask(format, channels);
    SF_INFO si = {.samplerate = sample_rate,
                  .channels = channels,
                  .format = s_major_format(format) | s_sub_format(sample_format)};
    /* a WAV carries a channel mask only as WAVE_FORMAT_EXTENSIBLE */
    if (mask && format == SF_FILE_WAV)
        si.format = SF_FORMAT_WAVEX | s_sub_format(sample_format);
    /* Reject a bad combination before the file is created or truncated. */
    if (channels < 1 || channels > SF_MAX_CHANNELS || sample_rate <= 0 || !sf_format_check(&si))
        return SF_ERR(err, SF_E_INPUT, "cannot write '%s': %s with %s samples, %d channels at %d Hz is not supported",
                      path, sf_format_name(format), sf_sample_format_name(sample_format), channels, sample_rate);
    if (bwf && format != SF_FILE_WAV && format != SF_FILE_RF64)
        return SF_ERR(err, SF_E_INPUT, "cannot write '%s': Broadcast WAV metadata needs wav or rf64, not %s", path,
                      sf_format_name(format));

    sf_media_writer_t *w = sf_calloc(1, sizeof *w);
    if (!w)
        return SF_ERR(err, SF_E_NOMEM, "out of memory opening '%s'", path);
    w->fd = -1;
    w->format = format;
    w->sample_format = sample_format;
    w->channels = channels;
    w->rate = sample_rate;
    /* float32 W64 stays plain: libsndfile reads a WAVEX W64 as integer PCM */
    w->own_w64 = mask && format == SF_FILE_W64 && sample_format != SF_SAMPLE_FLOAT32;
    w->path = sf_strdup(path);
    w->hash = sf_xxh3_stream_new();
    if (w->own_w64)
        w->pack = sf_malloc((size_t)SF_MEDIA_CHUNK * (size_t)channels * 4);
    sf_rc rc;
    if (!w->path || !w->hash || (w->own_w64 && !w->pack)) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory opening '%s'", path);
        goto fail_free;
    }
    w->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        rc = SF_ERR(err, SF_E_IO, "cannot create '%s': %s", path, s_errno_reason(errno, reason, sizeof reason));
        goto fail_free;
    }
    if (w->own_w64) {
        unsigned char h[SF_W64_HEADER];
        size_t n = s_w64_header(h, w, sample_rate);
        if (s_write_all(w->fd, h, n) != 0) {
            rc = SF_ERR(err, SF_E_IO, "cannot write '%s': %s", path, s_errno_reason(errno, reason, sizeof reason));
            goto fail_close;
        }
        *out = w;
        return SF_OK;
    }
    w->snd = sf_open_fd(w->fd, SFM_WRITE, &si, SF_FALSE);
    if (!w->snd) {
        rc = SF_ERR(err, SF_E_IO, "cannot write '%s': %s", path,
                    s_trim_reason(sf_error_number(sf_error(NULL)), reason, sizeof reason));
        goto fail_close;
    }
    s_writer_settings(w->snd);
    if (mask && format != SF_FILE_W64 &&
        !sf_command(w->snd, SFC_SET_CHANNEL_MAP_INFO, (void *)s_channel_map(channels), (int)sizeof(int) * channels)) {
        rc = SF_ERR(err, SF_E_INTERNAL, "cannot write '%s': libsndfile refused the %s channel mask", path,
                    channels == 6 ? "5.1" : "7.1");
        sf_close(w->snd);
        goto fail_close;
    }
    if (bwf && (rc = s_writer_bwf(w, bwf, err)) != SF_OK) {
        sf_close(w->snd);
        goto fail_close;
    }
    *out = w;
    return SF_OK;

fail_close:
    close(w->fd);
    unlink(path); /* a half-made file is worth nothing */
fail_free:
    sf_xxh3_stream_destroy(&w->hash);
    sf_free(w->ixml);
    sf_free(w->pack);
    sf_free(w->path);
    sf_free(w);
    return rc;
}

/* One write of int32 or float frames: the caller checked the kind matches. */
static sf_rc s_writer_write(sf_media_writer_t *w, const void *interleaved, bool floats, size_t n_frames, sf_err_t *err)
{
    if (w->own_w64) {
        sf_rc rc = s_w64_write(w, interleaved, n_frames, err);
        if (rc != SF_OK)
            return rc;
    } else if ((floats ? sf_writef_float(w->snd, interleaved, (sf_count_t)n_frames)
                       : sf_writef_int(w->snd, interleaved, (sf_count_t)n_frames)) != (sf_count_t)n_frames) {
        char reason[256];
        return SF_ERR(err, SF_E_IO, "cannot write '%s': %s", w->path,
                      s_trim_reason(sf_strerror(w->snd), reason, sizeof reason));
    }
    /* int32 and float are both 4 bytes: the hash covers exactly what was passed */
    sf_xxh3_stream_update(w->hash, interleaved, n_frames * (size_t)w->channels * 4);
    w->n_frames += (int64_t)n_frames;
    return SF_OK;
}

sf_rc sf_media_writer_write_int(sf_media_writer_t *w, const int32_t *interleaved, size_t n_frames, sf_err_t *err)
{
    if (w->sample_format == SF_SAMPLE_FLOAT32)
        return SF_ERR(err, SF_E_INTERNAL, "'%s' is float32: write floats, not integers", w->path);
    return s_writer_write(w, interleaved, false, n_frames, err);
}

sf_rc sf_media_writer_write_float(sf_media_writer_t *w, const float *interleaved, size_t n_frames, sf_err_t *err)
{
    if (w->sample_format != SF_SAMPLE_FLOAT32)
        return SF_ERR(err, SF_E_INTERNAL, "'%s' is %s: write quantised integers, not floats", w->path,
                      sf_sample_format_name(w->sample_format));
    return s_writer_write(w, interleaved, true, n_frames, err);
}

uint64_t sf_media_writer_pcm_hash(const sf_media_writer_t *w) { return sf_xxh3_stream_digest(w->hash); }

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
        uint32_t size = (uint32_t)hdr[pos + 4] | (uint32_t)hdr[pos + 5] << 8 | (uint32_t)hdr[pos + 6] << 16 |
                        (uint32_t)hdr[pos + 7] << 24;
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
    if (w->own_w64) {
        if (s_w64_finish(w) != 0)
            rc = SF_ERR(err, SF_E_IO, "cannot finish '%s': %s", w->path, s_errno_reason(errno, reason, sizeof reason));
    } else {
        int sf_rc_close = sf_close(w->snd);
        if (sf_rc_close != 0)
            rc = SF_ERR(err, SF_E_IO, "cannot finish '%s': %s", w->path,
                        s_trim_reason(sf_error_number(sf_rc_close), reason, sizeof reason));
    }
    if (rc == SF_OK && w->format == SF_FILE_RF64 && w->sample_format == SF_SAMPLE_FLOAT32 &&
        s_zero_peak_time(w->fd) != 0)
        rc = SF_ERR(err, SF_E_IO, "cannot finish '%s': %s", w->path, s_errno_reason(errno, reason, sizeof reason));
    if (fsync(w->fd) != 0 && rc == SF_OK)
        rc = SF_ERR(err, SF_E_IO, "cannot sync '%s': %s", w->path, s_errno_reason(errno, reason, sizeof reason));
    if (close(w->fd) != 0 && rc == SF_OK)
        rc = SF_ERR(err, SF_E_IO, "cannot close '%s': %s", w->path, s_errno_reason(errno, reason, sizeof reason));
    sf_xxh3_stream_destroy(&w->hash);
    sf_free(w->pack);
    sf_free(w->ixml);
    sf_free(w->path);
    sf_free(w);
    return rc;
}

/* ---- verification ----------------------------------------------------- */

/* A bext v2 loudness field: hundredths, "not known" outside int16. */
static void s_put_centi(unsigned char *at, double v)
{
    const double c = round(v * 100.0);
    const int16_t x = isfinite(c) && c > -32768.0 && c < 32767.0 ? (int16_t)c : (int16_t)SF_BEXT_UNKNOWN;
    at[0] = (unsigned char)((uint16_t)x & 0xFF);
    at[1] = (unsigned char)((uint16_t)x >> 8);
}

sf_rc sf_media_bwf_set_loudness(const char *path, const sf_meter_result_t *m, sf_err_t *err)
{
    char reason[256];
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return SF_ERR(err, SF_E_IO, "cannot open '%s': %s", path, s_errno_reason(errno, reason, sizeof reason));
    unsigned char h[12];
    sf_rc rc = SF_ERR(err, SF_E_VERIFY, "'%s' has no bext chunk to hold its loudness", path);
    if (pread(fd, h, 12, 0) == 12 && (!memcmp(h, "RIFF", 4) || !memcmp(h, "RF64", 4)) && !memcmp(h + 8, "WAVE", 4)) {
        /* the chunks libsndfile writes ahead of the samples; bext is among them */
        for (off_t at = 12;;) {
            unsigned char c[8];
            if (pread(fd, c, 8, at) != 8 || !memcmp(c, "data", 4))
                break;
            const uint32_t size = (uint32_t)c[4] | (uint32_t)c[5] << 8 | (uint32_t)c[6] << 16 | (uint32_t)c[7] << 24;
            if (!memcmp(c, "bext", 4)) {
                if (size < SF_BEXT_LOUDNESS + 10)
                    break;
                unsigned char v[10];
                s_put_centi(v, m->integrated_lufs);
                s_put_centi(v + 2, m->lra_lu);
                s_put_centi(v + 4, sf_meter_db(m->true_peak));
                s_put_centi(v + 6, m->max_momentary_lufs);
                s_put_centi(v + 8, m->max_shortterm_lufs);
                if (pwrite(fd, v, sizeof v, at + 8 + SF_BEXT_LOUDNESS) != (ssize_t)sizeof v || fsync(fd) != 0)
                    rc = SF_ERR(err, SF_E_IO, "cannot write '%s': %s", path,
                                s_errno_reason(errno, reason, sizeof reason));
                else
                    rc = SF_OK;
                break;
            }
            at += 8 + (off_t)size + (off_t)(size & 1);
        }
    }
    close(fd);
    return rc;
}

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

sf_rc sf_media_hash_pcm(const char *path, sf_sample_format_t sample_format, sf_meter_t *meter, uint64_t *xxh3,
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
        rc = SF_ERR(err, SF_E_VERIFY, "'%s' does not hold %s samples", path, sf_sample_format_name(sample_format));
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
        sf_count_t got = sample_format == SF_SAMPLE_FLOAT32 ? sf_readf_float(snd, buf, SF_MEDIA_CHUNK)
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
        if (meter) {
            rc = sample_format == SF_SAMPLE_FLOAT32 ? sf_meter_add_float(meter, buf, (size_t)got, err)
                                                    : sf_meter_add_int32(meter, buf, (size_t)got, err);
            if (rc != SF_OK)
                goto out_free;
        }
    }
    if (total != (int64_t)si.frames) {
        rc = SF_ERR(err, SF_E_VERIFY, "'%s': read %lld frames, the header says %lld", path, (long long)total,
                    (long long)si.frames);
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

/* ---- resampled copies (libsoxr) ------------------------------------------ *
 *
 * cache_dir/<sha256 of the source's bytes>-<rate>.wav: float32, every
 * channel, exactly round(frames * rate / source rate) frames (halves up):
 * soxr is flushed at the end and its output trimmed or padded with silence
 * to that length. SOXR_VHQ, float32 in and out, streamed in SF_MEDIA_CHUNK
 * frames (the output is the same bits as one soxr_oneshot over the whole
 * file: soxr's stages work in blocks of their own, whatever the calls), one
 * soxr thread. At the source's own rate the copy is exact (no filter).
 * A copy is made under a temporary name, fsynced and renamed, and reused
 * when it reads back with the right rate, channels and length.
 * Determinism caveat: libsoxr picks its SIMD engine at run time (AVX or SSE
 * or plain C, and the SOXR_USE_SIMD* environment variables), so copies made
 * on different CPUs may differ in the last bits. Nodes that share the cache
 * folder read the one copy made first; nodes with caches of their own on
 * different CPUs may not render the same bits. */

#define SF_MEDIA_RATE_MIN      8000
#define SF_MEDIA_RATE_MAX      384000
#define SF_MEDIA_WAV_MAX_BYTES 0xFFFF0000u /* beyond this a WAV's 32-bit sizes overflow: RF64 */

/* round(frames * out_rate / in_rate), halves up, in integers; -1 if it overflows. */
static int64_t s_resampled_frames(int64_t frames, int in_rate, int out_rate)
{
    if (frames > (INT64_MAX - in_rate) / (2 * (int64_t)out_rate))
        return -1;
    return (2 * frames * out_rate + in_rate) / (2 * (int64_t)in_rate);
}

sf_rc sf_media_mkdirs(const char *dir, sf_err_t *err)
{
    char *copy = sf_strdup(dir);
    if (!copy)
        return SF_ERR(err, SF_E_NOMEM, "out of memory creating '%s'", dir);
    sf_rc rc = SF_OK;
    for (char *p = copy + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char was = *p;
        *p = '\0';
        if (mkdir(copy, 0755) != 0 && errno != EEXIST) {
            char reason[256];
            rc = SF_ERR(err, SF_E_IO, "cannot create '%s': %s", copy, s_errno_reason(errno, reason, sizeof reason));
            break;
        }
        *p = was;
        if (was == '\0')
            break;
    }
    sf_free(copy);
    return rc;
}

/* A copy made earlier is used when it reads back as what we would make. */
static bool s_cache_usable(const char *path, int rate, int channels, int64_t frames)
{
    sf_media_info_t info;
    if (sf_media_probe(path, &info, NULL) != SF_OK)
        return false;
    return info.sample_rate == rate && info.channels == channels && info.frames == frames;
}

typedef struct {
    SNDFILE *snd;
    const char *path; /* for messages */
    int channels;
    int64_t want; /* frames the copy must have */
    int64_t put;  /* frames written so far */
} s_copy_out_t;

/* Writes up to the frames still wanted of buf (the rest is resampler
 * overhang past the exact length). */
static sf_rc s_copy_put(s_copy_out_t *o, const float *buf, size_t n, sf_err_t *err)
{
    int64_t left = o->want - o->put;
    sf_count_t m = (sf_count_t)((int64_t)n < left ? (int64_t)n : left);
    if (m <= 0)
        return SF_OK;
    if (sf_writef_float(o->snd, buf, m) != m) {
        char reason[256];
        return SF_ERR(err, SF_E_IO, "cannot write '%s': %s", o->path,
                      s_trim_reason(sf_strerror(o->snd), reason, sizeof reason));
    }
    o->put += m;
    return SF_OK;
}

/* Streams the source through soxr (or copies it, at the same rate) into o,
 * then pads with silence to the exact length. */
static sf_rc s_resample_stream(SNDFILE *in, const char *path, int in_rate, int out_rate, s_copy_out_t *o, sf_err_t *err)
{
    const int ch = o->channels;
    const double ratio = (double)out_rate / (double)in_rate;
    const size_t cap = (size_t)((double)SF_MEDIA_CHUNK * ratio) + 1024; /* output frames per call */
    float *ibuf = sf_malloc(sizeof(float) * SF_MEDIA_CHUNK * (size_t)ch);
    float *obuf = sf_malloc(sizeof(float) * cap * (size_t)ch);
    soxr_t sx = NULL;
    sf_rc rc = SF_OK;
    char reason[256];
    if (!ibuf || !obuf) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory resampling '%s'", path);
        goto out;
    }
    if (in_rate != out_rate) {
        /* one thread: soxr's own OpenMP split would not change the samples,
         * but a render node's threads belong to the renderer */
        soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
        soxr_quality_spec_t q = soxr_quality_spec(SOXR_VHQ, 0);
        soxr_runtime_spec_t rt = soxr_runtime_spec(1);
        soxr_error_t e = NULL;
        sx = soxr_create(in_rate, out_rate, (unsigned)ch, &e, &io, &q, &rt);
        if (!sx) {
            rc = SF_ERR(err, SF_E_INTERNAL, "cannot resample '%s': soxr: %s", path, e ? e : "unknown error");
            goto out;
        }
    }
    for (;;) {
        sf_count_t got = sf_readf_float(in, ibuf, SF_MEDIA_CHUNK);
        if (got < 0 || sf_error(in)) {
            rc = SF_ERR(err, SF_E_IO, "cannot read '%s': %s", path,
                        s_trim_reason(sf_strerror(in), reason, sizeof reason));
            goto out;
        }
        if (!sx) {
            if (got == 0)
                break;
            if ((rc = s_copy_put(o, ibuf, (size_t)got, err)) != SF_OK)
                goto out;
            continue;
        }
        /* got == 0: flush (NULL input) until nothing more comes out; else
         * feed the chunk and drain while the output buffer fills up */
        size_t odone = 0;
        const void *feed = got > 0 ? (const void *)ibuf : NULL;
        size_t ilen = (size_t)got;
        do {
            soxr_error_t e = soxr_process(sx, feed, ilen, NULL, obuf, cap, &odone);
            if (e) {
                rc = SF_ERR(err, SF_E_INTERNAL, "cannot resample '%s': soxr: %s", path, e);
                goto out;
            }
            if ((rc = s_copy_put(o, obuf, odone, err)) != SF_OK)
                goto out;
            ilen = 0; /* a non-NULL input of 0 frames drains without flushing */
        } while (got > 0 ? odone == cap : odone > 0);
        if (got == 0)
            break;
    }
    /* exact length: pad what the filter did not produce */
    memset(obuf, 0, sizeof(float) * cap * (size_t)ch);
    while (rc == SF_OK && o->put < o->want)
        rc = s_copy_put(o, obuf, cap, err);
out:
    soxr_delete(sx);
    sf_free(obuf);
    sf_free(ibuf);
    return rc;
}

/* Makes the copy at tmp_path (fd open on it), fsynced. */
static sf_rc s_make_copy(const char *path, int rate, int64_t want, int fd, const char *tmp_path, sf_err_t *err)
{
    SF_INFO si;
    int in_fd;
    SNDFILE *in = s_open_read(path, &in_fd, &si, err);
    if (!in)
        return SF_E_IO;
    sf_rc rc = SF_OK;
    char reason[256];
    const bool big = (uint64_t)want * (uint64_t)si.channels * 4u > SF_MEDIA_WAV_MAX_BYTES;
    SF_INFO wi = {.samplerate = rate,
                  .channels = si.channels,
                  .format = (big ? SF_FORMAT_RF64 : SF_FORMAT_WAV) | SF_FORMAT_FLOAT};
    SNDFILE *out = sf_open_fd(fd, SFM_WRITE, &wi, SF_FALSE);
    if (!out) {
        rc = SF_ERR(err, SF_E_IO, "cannot write '%s': %s", tmp_path,
                    s_trim_reason(sf_error_number(sf_error(NULL)), reason, sizeof reason));
        goto out_in;
    }
    s_writer_settings(out);
    s_copy_out_t o = {out, tmp_path, si.channels, want, 0};
    rc = s_resample_stream(in, path, si.samplerate, rate, &o, err);
    int closed = sf_close(out);
    if (rc == SF_OK && closed != 0)
        rc = SF_ERR(err, SF_E_IO, "cannot finish '%s': %s", tmp_path,
                    s_trim_reason(sf_error_number(closed), reason, sizeof reason));
    if (rc == SF_OK && big && s_zero_peak_time(fd) != 0)
        rc = SF_ERR(err, SF_E_IO, "cannot finish '%s': %s", tmp_path, s_errno_reason(errno, reason, sizeof reason));
    if (rc == SF_OK && fsync(fd) != 0)
        rc = SF_ERR(err, SF_E_IO, "cannot sync '%s': %s", tmp_path, s_errno_reason(errno, reason, sizeof reason));
out_in:
    s_close_read(in, in_fd);
    return rc;
}

/* fsync of a folder, so that a rename in it survives a crash. Best effort. */
static void s_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

sf_rc sf_media_resampled(const char *path, int rate, const char *cache_dir, char **out_path, sf_err_t *err)
{
    *out_path = NULL;
    if (rate < SF_MEDIA_RATE_MIN || rate > SF_MEDIA_RATE_MAX)
        return SF_ERR(err, SF_E_INPUT, "cannot resample '%s' to %d Hz: the rate must be %d..%d Hz", path, rate,
                      SF_MEDIA_RATE_MIN, SF_MEDIA_RATE_MAX);
    sf_media_info_t info = {0};
    sf_rc rc = sf_media_probe(path, &info, err);
    if (rc != SF_OK)
        return rc;
    if (info.channels > SF_MAX_CHANNELS || info.sample_rate <= 0)
        return SF_ERR(err, SF_E_INPUT, "cannot resample '%s': %d channels at %d Hz", path, info.channels,
                      info.sample_rate);
    const int64_t want = s_resampled_frames(info.frames, info.sample_rate, rate);
    if (want <= 0)
        return SF_ERR(err, SF_E_INPUT, "cannot resample '%s' to %d Hz: %lld frames at %d Hz give %s", path, rate,
                      (long long)info.frames, info.sample_rate, want < 0 ? "too many frames" : "no frame");
    uint8_t sha[32];
    if ((rc = sf_hash_sha256_file(path, sha, err)) != SF_OK)
        return rc;
    char hex[65];
    sf_hash_hex(sha, sizeof sha, hex);
    if ((rc = sf_media_mkdirs(cache_dir, err)) != SF_OK)
        return rc;

    size_t n = strlen(cache_dir) + strlen(hex) + 40;
    char *final = sf_malloc(n), *tmp = sf_malloc(n);
    if (!final || !tmp) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory resampling '%s'", path);
        goto out;
    }
    snprintf(final, n, "%s/%s-%d.wav", cache_dir, hex, rate);
    if (s_cache_usable(final, rate, info.channels, want)) {
        *out_path = final;
        final = NULL;
        goto out;
    }
    /* made under a temporary name and renamed: a reader never sees half a
     * copy, and two makers racing each rename a whole one */
    snprintf(tmp, n, "%s/.%s-%d.XXXXXX", cache_dir, hex, rate);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        char reason[256];
        rc = SF_ERR(err, SF_E_IO, "cannot create a file in '%s': %s", cache_dir,
                    s_errno_reason(errno, reason, sizeof reason));
        goto out;
    }
    (void)fchmod(fd, 0644); /* mkstemp makes 0600; the copy is shared */
    rc = s_make_copy(path, rate, want, fd, tmp, err);
    if (close(fd) != 0 && rc == SF_OK) {
        char reason[256];
        rc = SF_ERR(err, SF_E_IO, "cannot close '%s': %s", tmp, s_errno_reason(errno, reason, sizeof reason));
    }
    if (rc == SF_OK && rename(tmp, final) != 0) {
        char reason[256];
        rc = SF_ERR(err, SF_E_IO, "cannot rename '%s' to '%s': %s", tmp, final,
                    s_errno_reason(errno, reason, sizeof reason));
    }
    if (rc != SF_OK) {
        unlink(tmp);
        goto out;
    }
    s_sync_dir(cache_dir);
    *out_path = final;
    final = NULL;
out:
    sf_free(tmp);
    sf_free(final);
    return rc;
}
