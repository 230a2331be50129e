/* client.h -- talking to a running coordinator: submit and follow a
 * render, ask for the farm's status, cancel a render.
 *
 * One DEALER socket per call, with a random routing id of its own: a
 * coordinator that restarts and resumes a render (journal.h) still knows
 * where to send its progress, and the DEALER reconnects by itself. Every
 * answer is decoded as untrusted input. Return values are exit codes
 * (DESIGN.md): 0, 1 render failed, 2 bad input, 3 coordinator unreachable
 * or silent.
 */
#ifndef CLIENT_H
#define CLIENT_H

#include "dispatch.h"

#include "sf/secure.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    const char *endpoint;            /* tcp://HOST:PORT */
    const sf_secure_client_t *curve; /* keys (sf/secure.h); NULL or not enabled: plain */
    int silence_limit_ms;            /* give up after this long without a word; 0: 60000 */
    atomic_int *interrupt;           /* optional: stop waiting (the render goes on) */
    bool quiet;                      /* no notes on stderr about a silent coordinator (--json) */
} client_config_t;

/* Submits req (absolute paths) and passes its events to fn until DONE
 * (its exit code is returned). Not thread-safe per fn/ctx; one call per
 * thread may run at once, each with its own socket. */
int client_render(const client_config_t *c, const dispatch_request_t *req, dispatch_event_fn fn, void *ctx);

/* Prints the coordinator's renders and nodes: a table, or one JSON object. */
int client_status(const client_config_t *c, bool json, FILE *out);

/* The nodes connected and not quarantined, and their slots. */
int client_farm_size(const client_config_t *c, uint32_t *nodes, uint32_t *slots);

/* Cancels render_id; prints the coordinator's answer on stderr. */
int client_cancel(const client_config_t *c, uint32_t render_id);

#endif
