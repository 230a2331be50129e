/* monitor.h -- the coordinator's HTTP side: Prometheus metrics, a JSON
 * status and the farm dashboard, for the people who run the farm.
 *
 * A deliberately small HTTP/1.0 server: GET only, one request per
 * connection, the request line and headers within 8 KiB read within 200 ms,
 * the answer written and the connection closed. It runs inside the
 * dispatcher's loop (its socket is polled with the ROUTER), so what it
 * reports is never torn. Bound to loopback by default: what it shows
 * (session names, paths, node names) is the studio's business.
 */
#ifndef MONITOR_H
#define MONITOR_H

#include "sf/error.h"

#include <stddef.h>

#define MONITOR_DEFAULT_BIND "127.0.0.1:9464"

typedef struct monitor monitor_t;

typedef struct {
    int status;               /* 200, 404, ... */
    const char *content_type; /* static */
    char *body;               /* sf_malloc'd, freed by the server */
    size_t n_body;
} monitor_reply_t;

/* Fills reply for a GET of path (without the query). */
typedef void (*monitor_handler_fn)(void *ctx, const char *path, monitor_reply_t *reply);

/* Listens on "HOST:PORT", "PORT" (loopback) or "[V6]:PORT"; port 0 picks
 * one. SF_E_INPUT for a malformed address, SF_E_IO when it cannot bind
 * (the system's reason). */
sf_rc monitor_open(const char *bind, monitor_t **out, sf_err_t *err);

int monitor_fd(const monitor_t *m);

/* "127.0.0.1:9464" as bound (the port chosen, for port 0). */
const char *monitor_address(const monitor_t *m);

/* Accepts and answers every connection waiting; never blocks longer than
 * the read budget per connection. */
void monitor_serve(monitor_t *m, monitor_handler_fn fn, void *ctx);

void monitor_close(monitor_t **self_p);

#endif
