/* worker.h -- a render node, embeddable.
 *
 * worker_run connects a DEALER to the coordinator, says hello, asks for as
 * many jobs as it has slots, renders each job with sf_render_stem and sends
 * back the frames with their xxh3, until the coordinator says shutdown, the
 * stop flag is raised, or the coordinator is silent past the timeout.
 * `stemfarm-node` runs one in its main thread; `stemfarm render` runs
 * several in threads of its own process over inproc://, sharing the ZeroMQ
 * context -- the same code path as a farm.
 */
#ifndef WORKER_H
#define WORKER_H

#include "sf/error.h"
#include "sf/secure.h"
#include "sf/pathmap.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *endpoint;       /* tcp://HOST:PORT or inproc://NAME */
    void *zmq_context;          /* NULL: the worker makes its own */
    const char *name;           /* node name in logs; NULL: host name + pid */
    int threads;                /* OpenMP threads per job; 0: number of cores */
    int slots;                  /* jobs held at once; 0: 1 */
    int coordinator_timeout_ms; /* silence after which the node gives up; 0: 30000 */
    atomic_int *stop;           /* optional: the worker returns soon after *stop != 0 */
    int verbose;                /* log every job */
    /* optional: CURVE keys for tcp:// and ipc:// (sf/secure.h); NULL or disabled: plain */
    const sf_secure_client_t *curve;
    /* NULL: sessions' paths as written. Else this node's view of shared
     * storage (path_map, media_roots) for every session it loads. Borrowed:
     * it outlives the worker. */
    const sf_pathmap_t *pathmap;
    /* media: ship. The node reads no session folder: it fetches every file
     * a session reads from the coordinator into cache_dir (node/cache.h),
     * verifying each by its SHA-256, and reads only there. */
    bool ship_media;
    const char *cache_dir;    /* absolute; needed with ship_media */
    uint64_t cache_max_bytes; /* the cache's cap; 0: CACHE_DEFAULT_MAX_BYTES (20 GiB) */
} worker_config_t;

/* Returns 0 after a shutdown from the coordinator or a stop request, 3 when
 * the coordinator could not be reached, refused this node's key (or
 * handshake) or went silent (farm failure), 2 for a bad configuration.
 * Logs one line per event to stderr. */
int worker_run(const worker_config_t *cfg);

#endif
