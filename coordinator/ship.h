/* ship.h -- a render's media for nodes without shared storage.
 *
 * A node configured with `media: ship` reads no shared folder: it is told,
 * in the SessionData, every file the session reads (each source and impulse
 * response once, by the name written in the session) with its size and
 * SHA-256, and fetches the bytes from the coordinator in chunks (Fetch).
 * The files are the ones the coordinator's own model reads: a source at
 * another rate ships as its resampled copy, so a node never resamples and
 * reads exactly the samples the coordinator would.
 *
 * Hashing is the expensive part and only a shipping node needs it, so a
 * ship_t is made when such a node first wants the render, then hashed a
 * slice at a time from the dispatcher's loop (ship_hash_step), which keeps
 * serving messages in between. A Fetch is served only for a file of this
 * list, by index and hash: never a path that came over the network.
 */
#ifndef SHIP_H
#define SHIP_H

#include "sf/error.h"
#include "sf/session.h"
#include "sf/wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ship ship_t;

/* The files session `s` reads (its model's paths), none hashed yet. The
 * session must outlive the ship_t. SF_E_INPUT when it reads more files than
 * a SessionData can list (SF_WIRE_MAX_LIST); SF_E_NOMEM. */
sf_rc ship_new(const sf_session_t *s, ship_t **out, sf_err_t *err);
void ship_destroy(ship_t **self_p);

/* Hashes about `budget` more bytes. Returns 1 when every file is hashed
 * (then and after: nothing left to do), 0 when there is more, -1 when a file
 * cannot be read or changed size while it was read (err names it; the ship_t
 * stays failed and keeps returning -1 with the same message). */
int ship_hash_step(ship_t *sh, size_t budget, sf_err_t *err);

bool ship_ready(const ship_t *sh);

/* The list for SessionData.media (valid once ship_ready, owned by sh). */
const sf_wire_media_t *ship_media(const ship_t *sh, size_t *n_files);

/* Reads up to n_bytes (<= SF_WIRE_MAX_FETCH_BYTES) of file `index` from
 * `offset` into buf (pread, the file opened for this call only): SF_OK and
 * *n_read > 0. SF_E_INPUT with the reason to send back when the fetch does
 * not name a file of this list (index out of range, sha256 not the file's),
 * the offset is at or past its end, or the list is not hashed yet; SF_E_IO
 * when the file cannot be read or no longer has the size it was hashed at. */
sf_rc ship_read(const ship_t *sh, uint32_t index, const uint8_t sha256[32], uint64_t offset, uint8_t *buf,
                size_t n_bytes, size_t *n_read, sf_err_t *err);

#endif
