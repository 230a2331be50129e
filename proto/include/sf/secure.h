/* sf/secure.h -- transport security: CURVE key files, the coordinator's
 * allowlist (a ZAP handler, RFC 27) and the client side of the handshake.
 *
 * Key files are text, one `name = "value"` per line, '#' comments, like
 * ZeroMQ's zcert files (whose `metadata` and `curve` section lines are
 * accepted too, so czmq certificates load):
 *
 *   # stemfarm CURVE key pair 'node1' ... (NAME.key, mode 0600)
 *   public-key = "<40 Z85 characters>"
 *   secret-key = "<40 Z85 characters>"
 *
 * NAME.pub holds the public-key line only. A secret key file readable or
 * writable by group or others is refused (like ssh), and so is a secret key
 * where only a public one belongs (--allow, --server-key), so secrets are
 * never handed around by mistake. Every error names the file and, for its
 * contents, the line: "'node1.key': line 3: secret-key is not 40 Z85 characters".
 *
 * The coordinator's ROUTER is a CURVE server whose ZAP handler, a thread
 * with a REP socket on inproc://zeromq.zap.01 in the ROUTER's context,
 * accepts exactly the CURVE clients whose public key is in the allowlist;
 * nodes and `stemfarm render --farm` alike are such clients, through
 * sf_secure_connect. inproc:// needs none of this: nothing leaves the process.
 *
 * Nothing here prints: the coordinator's refusals go to a callback.
 */
#ifndef SF_SECURE_H
#define SF_SECURE_H

#include "sf/error.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define SF_SECURE_KEY_CHARS 40 /* a Z85-encoded 32-byte CURVE key */

typedef struct {
    char public_key[SF_SECURE_KEY_CHARS + 1]; /* Z85, NUL-terminated */
    char secret_key[SF_SECURE_KEY_CHARS + 1];
} sf_secure_keypair_t;

/* The keys a client (node or `render --farm`) connects with. */
typedef struct {
    bool enabled;                             /* false: no CURVE (plain ZMTP) */
    sf_secure_keypair_t own;                  /* this client's key pair */
    char server_key[SF_SECURE_KEY_CHARS + 1]; /* the coordinator's public key */
} sf_secure_client_t;

/* ---- key files ---------------------------------------------------------- */

/* Makes a key pair and writes DIR/NAME.key (mode 0600) and DIR/NAME.pub
 * (mode 0644, less the umask); DIR (NULL: the current folder) is made, mode
 * 0700, if missing. Never overwrites: SF_E_INPUT when either
 * exists (nothing is written), or NAME is not a plain file name of letters,
 * digits, '.', '_' and '-' (not starting with '.'); SF_E_IO when a file
 * cannot be written (then neither is left behind). key_path and pub_path
 * (optional) receive the paths written, sf_free them. */
sf_rc sf_secure_keygen(const char *dir, const char *name, sf_secure_keypair_t *out, char **key_path, char **pub_path,
                       sf_err_t *err);

/* Loads a secret key file (public and secret key, which must match).
 * SF_E_INPUT for a bad file (permissions, format, keys), SF_E_IO when it
 * cannot be opened or read. */
sf_rc sf_secure_load_keypair(const char *path, sf_secure_keypair_t *out, sf_err_t *err);

/* Loads a public key file (a secret key in it is refused). Errors as above. */
sf_rc sf_secure_load_public(const char *path, char out[SF_SECURE_KEY_CHARS + 1], sf_err_t *err);

/* ---- clients: nodes and `render --farm` ---------------------------------- */

/* A client's keys from key_path and server_key_path, each NULL (or "") for
 * $STEMFARM_KEY / $STEMFARM_SERVER_KEY. Neither anywhere: out->enabled is
 * false and SF_OK. One without the other is SF_E_INPUT, like a bad file. */
sf_rc sf_secure_client_load(const char *key_path, const char *server_key_path, sf_secure_client_t *out, sf_err_t *err);

/* Sets CURVE on `sock` (keys enabled), connects it to `endpoint` and, except
 * for inproc://, waits until the ZMTP handshake with the peer succeeded,
 * watching a socket monitor (ZMQ_EVENT_HANDSHAKE_*, stable since libzmq
 * 4.3). `who` ("node", "client") words the messages. SF_OK once the
 * handshake succeeded, or as soon as *stop (optional) is raised -- the
 * caller looks at it. SF_E_INPUT when zmq refuses the endpoint. SF_E_FARM
 * when the coordinator refused the key (ZAP status 400: at once), when it
 * closed the handshake three times running (a client without keys, or with
 * another coordinator's public key), when the mechanisms differ (keys for a
 * coordinator without CURVE), or after timeout_ms without a handshake.
 * The monitor is gone on return: later reconnections are not watched. */
sf_rc sf_secure_connect(void *zmq_context, void *sock, const char *endpoint, const sf_secure_client_t *keys,
                        const char *who, int timeout_ms, atomic_int *stop, sf_err_t *err);

/* ---- the coordinator ------------------------------------------------------ */

/* true when `endpoint` cannot be reached from another host: tcp:// on
 * 127.0.0.0/8, localhost or [::1], ipc:// and inproc://. The wildcards
 * (* and 0.0.0.0), interface names and every other address are not. */
bool sf_secure_endpoint_is_loopback(const char *endpoint);

typedef struct sf_secure_server sf_secure_server_t;

/* One line about a peer: refusals (always a warning) and acceptances. */
typedef void (*sf_secure_log_fn)(void *ctx, bool warning, const char *line);

/* Loads the allowlist -- every .pub file in each folder of allow[], and each
 * file of allow[] -- and starts the ZAP handler on zmq_context, which must
 * be the context of the socket given to sf_secure_server_apply. The handler
 * is bound before this returns, so no connection is ever let in unchecked.
 * SF_E_INPUT for a bad or missing key file or an allowlist without keys;
 * SF_E_INTERNAL when ZAP cannot start (another handler in the context).
 * log_fn(log_ctx, ...) is called from the handler's thread. */
sf_rc sf_secure_server_new(void *zmq_context, const sf_secure_keypair_t *keys, const char *const *allow, size_t n_allow,
                           sf_secure_log_fn log_fn, void *log_ctx, sf_secure_server_t **out, sf_err_t *err);

/* Number of distinct public keys in the allowlist. */
size_t sf_secure_server_n_allowed(const sf_secure_server_t *srv);

/* Makes `sock` (before it binds) a CURVE server under this ZAP handler,
 * with ZAP enforced, and watches its failed handshakes (peers with another
 * coordinator's key, and peers without keys unless they hang up first:
 * logged, at most one line per kind every 10 s). SF_E_INTERNAL if zmq
 * refuses an option. */
sf_rc sf_secure_server_apply(sf_secure_server_t *srv, void *sock, sf_err_t *err);

/* Stops the handler. Call after the socket given to _apply is closed and
 * before the context is terminated. NULL-safe, idempotent. */
void sf_secure_server_destroy(sf_secure_server_t **self_p);

#endif
