/* hash.c -- xxh3 and SHA-256 wrappers (see sf/hash.h).
 *
 * SHA-256 is OpenSSL's: it uses the CPU's SHA extensions where there are
 * some (1.5 GB/s on the 2-core EPYC of bench/RESULTS.md, against libsodium's
 * portable 0.24 GB/s), and delivery hashes every byte it delivers. The
 * SHA256_* calls keep their state on the stack -- no allocation that could
 * fail -- and are deprecated, not removed, in OpenSSL 3. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "sf/hash.h"

#include "sf/alloc.h"

#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

struct sf_xxh3_stream {
    XXH3_state_t *state;
};

uint64_t sf_hash_xxh3(const void *data, size_t n_bytes) { return XXH3_64bits(data, n_bytes); }

sf_xxh3_stream_t *sf_xxh3_stream_new(void)
{
    sf_xxh3_stream_t *st = sf_calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->state = XXH3_createState();
    if (!st->state) {
        sf_free(st);
        return NULL;
    }
    XXH3_64bits_reset(st->state);
    return st;
}

void sf_xxh3_stream_update(sf_xxh3_stream_t *st, const void *data, size_t n_bytes)
{
    XXH3_64bits_update(st->state, data, n_bytes);
}

uint64_t sf_xxh3_stream_digest(const sf_xxh3_stream_t *st) { return XXH3_64bits_digest(st->state); }

void sf_xxh3_stream_destroy(sf_xxh3_stream_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    XXH3_freeState((*self_p)->state);
    sf_free(*self_p);
    *self_p = NULL;
}

void sf_hash_sha256(const void *data, size_t n_bytes, uint8_t out[32]) { SHA256(data, n_bytes, out); }

sf_rc sf_hash_sha256_file(const char *path, uint8_t out[32], sf_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return SF_ERR(err, SF_E_IO, "cannot open '%s': %s", path, strerror(errno));
    SHA256_CTX st;
    SHA256_Init(&st);
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        SHA256_Update(&st, buf, n);
    int failed = ferror(f);
    fclose(f);
    if (failed)
        return SF_ERR(err, SF_E_IO, "cannot read '%s'", path);
    SHA256_Final(out, &st);
    return SF_OK;
}

struct sf_sha256_stream {
    SHA256_CTX state;
};

sf_sha256_stream_t *sf_sha256_stream_new(void)
{
    sf_sha256_stream_t *st = sf_calloc(1, sizeof *st);
    if (st)
        SHA256_Init(&st->state);
    return st;
}

void sf_sha256_stream_update(sf_sha256_stream_t *st, const void *data, size_t n_bytes)
{
    SHA256_Update(&st->state, data, n_bytes);
}

void sf_sha256_stream_final(sf_sha256_stream_t *st, uint8_t out[32]) { SHA256_Final(out, &st->state); }

void sf_sha256_stream_destroy(sf_sha256_stream_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_free(*self_p);
    *self_p = NULL;
}

void sf_hash_hex(const uint8_t *bytes, size_t n_bytes, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n_bytes; i++) {
        hex[2 * i] = digits[bytes[i] >> 4];
        hex[2 * i + 1] = digits[bytes[i] & 15];
    }
    hex[2 * n_bytes] = '\0';
}
