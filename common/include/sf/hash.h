/* sf/hash.h -- content hashes: xxh3 for segment checksums (fast, not
 * cryptographic: it catches corruption, not forgery) and SHA-256 (OpenSSL)
 * for deliverables and session identity. */
#ifndef SF_HASH_H
#define SF_HASH_H

#include "sf/error.h"

#include <stddef.h>
#include <stdint.h>

uint64_t sf_hash_xxh3(const void *data, size_t n_bytes);

/* Streaming xxh3-64: the digest equals sf_hash_xxh3 over the concatenation. */
typedef struct sf_xxh3_stream sf_xxh3_stream_t;
sf_xxh3_stream_t *sf_xxh3_stream_new(void); /* NULL on allocation failure */
void sf_xxh3_stream_update(sf_xxh3_stream_t *st, const void *data, size_t n_bytes);
uint64_t sf_xxh3_stream_digest(const sf_xxh3_stream_t *st);
void sf_xxh3_stream_destroy(sf_xxh3_stream_t **self_p);

void sf_hash_sha256(const void *data, size_t n_bytes, uint8_t out[32]);
/* SHA-256 of a file's bytes. SF_E_IO with the path and errno text on failure. */
sf_rc sf_hash_sha256_file(const char *path, uint8_t out[32], sf_err_t *err);

/* Streaming SHA-256: the digest equals sf_hash_sha256 over the concatenation. */
typedef struct sf_sha256_stream sf_sha256_stream_t;
sf_sha256_stream_t *sf_sha256_stream_new(void); /* NULL on allocation failure */
void sf_sha256_stream_update(sf_sha256_stream_t *st, const void *data, size_t n_bytes);
/* The digest; the stream must not be updated after it. */
void sf_sha256_stream_final(sf_sha256_stream_t *st, uint8_t out[32]);
void sf_sha256_stream_destroy(sf_sha256_stream_t **self_p);

/* Lowercase hex of n_bytes bytes into hex (2 * n_bytes + 1 chars). */
void sf_hash_hex(const uint8_t *bytes, size_t n_bytes, char *hex);

#endif
