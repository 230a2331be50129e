/* cache.h -- a node's on-disk cache of shipped media (media: ship).
 *
 * One folder; each file is named by the lowercase hex SHA-256 of its bytes,
 * so a file is the same whatever session or name it came under and is
 * fetched once. A file being fetched is `<sha256>.part`; it is hashed as it
 * is written and renamed to its final name only when all its bytes are in
 * and the hash matches, so a final name always held the right bytes when it
 * was made. A file's modification time is its last use: the size cap evicts
 * the least recently used files first, never one that is in use.
 *
 * The cache_t is the main thread's; cache_verify only reads the folder name
 * and may run in any thread.
 */
#ifndef CACHE_H
#define CACHE_H

#include "sf/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_DEFAULT_MAX_BYTES (20ull << 30)

typedef struct cache cache_t;
typedef struct cache_part cache_part_t;

/* Creates the folder (and its parents) when missing and removes stale
 * `.part` files of an earlier run. max_bytes 0: CACHE_DEFAULT_MAX_BYTES.
 * SF_E_IO naming the folder and the system's reason. */
sf_rc cache_open(const char *dir, uint64_t max_bytes, cache_t **out, sf_err_t *err);
void cache_destroy(cache_t **self_p);

const char *cache_dir(const cache_t *c);
uint64_t cache_max_bytes(const cache_t *c);

/* DIR/<hex of sha256> into buf of n_bytes (PATH_MAX is enough). */
void cache_path(const char *dir, const uint8_t sha256[32], char *buf, size_t n_bytes);

/* Hashes the cached file of `sha256` again. SF_OK when it is there with
 * n_bytes bytes and that hash (its time of use is set to now); SF_E_INPUT
 * when it is missing; SF_E_IO when its size or hash is wrong or it cannot be
 * read -- it is then deleted (err says which and why). */
sf_rc cache_verify(const char *dir, const uint8_t sha256[32], uint64_t n_bytes, sf_err_t *err);

/* Makes room for n_bytes more: deletes the least recently used files whose
 * hash is not among keep[0..n_keep) until the folder's files plus n_bytes
 * fit the cap. SF_E_INPUT (nothing deleted beyond what was needed so far)
 * when even then they do not fit: the message gives the cap and the bytes
 * in use. *n_evicted counts the files deleted. */
sf_rc cache_make_room(cache_t *c, uint64_t n_bytes, const uint8_t (*keep)[32], size_t n_keep, size_t *n_evicted,
                      sf_err_t *err);

/* Starts `<sha256>.part` for a file of n_bytes (any old one is replaced).
 * SF_E_IO with the reason. */
sf_rc cache_part_open(cache_t *c, const uint8_t sha256[32], uint64_t n_bytes, cache_part_t **out, sf_err_t *err);
/* Bytes written so far: where the next bytes go. */
uint64_t cache_part_written(const cache_part_t *p);
/* Appends bytes (they must start at cache_part_written and not pass
 * n_bytes: SF_E_INPUT otherwise). SF_E_IO on a write failure. */
sf_rc cache_part_write(cache_part_t *p, uint64_t offset, const void *data, size_t n_bytes, sf_err_t *err);
/* Once every byte is in: SF_OK and the file is renamed to its final name;
 * SF_E_INPUT when the bytes hash to something else (the part is deleted,
 * err gives both hashes); SF_E_IO. Frees the part either way. */
sf_rc cache_part_finish(cache_part_t **p_p, sf_err_t *err);
/* Deletes the part file and frees it; NULL-safe. */
void cache_part_abort(cache_part_t **p_p);

#endif
