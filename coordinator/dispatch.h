/* dispatch.h -- the coordinator: one ZeroMQ ROUTER, one poll loop.
 *
 * Nodes (DEALER) say hello and ask for jobs with credits; the coordinator
 * never sends a node more jobs than it asked for. Renders are served by
 * priority (higher first), then in the order they came; a node with credit
 * takes from the next render when the first has nothing it may run. Before a node's first job
 * of a session it receives the session itself (YAML bytes, by hash). Results
 * are untrusted: the job must be one this node holds at this attempt, the
 * channel and frame counts must be the planned ones and the xxh3 must match
 * the frames, or the result counts as a failed attempt. Accepted frames go
 * to the stitcher; when a render's last job is in, it is verified and
 * delivered (deliver.h).
 *
 * Leases: a job runs on one node at one attempt (the lease epoch); answers
 * for another attempt, or from a node that lost the job, are dropped. Nodes
 * report each held job's progress in their heartbeats; a job whose progress
 * stands still past stuck_timeout_ms is re-issued elsewhere, and a node
 * silent past node_timeout_ms loses every job it held. A failed job goes to
 * a node it has not failed on; on three different nodes it fails its render
 * with their messages, and when no node it may run on is left, the render
 * fails at once saying why. A node that fails quarantine_after jobs in a row
 * gets no jobs for quarantine_ms (by name, so reconnecting does not clear
 * it). A peer that is not a known node and sends node traffic (after a
 * coordinator restart) is told to say hello again (Reset).
 *
 * Spot checks: a fraction of the jobs (chosen by a hash of render and job,
 * so the same after a restart) is rendered twice, on two nodes, and lands
 * only when the two xxh3 agree. When they differ a third node renders it;
 * the copy it agrees with lands, the other's node is quarantined, and the
 * mismatch is reported (event, log, manifest). Without a second node the
 * check is skipped; with no third to decide, the render fails.
 *
 * Media shipping (ship.h): nodes that say ship_media in their Hello get,
 * with each session, the list of files it reads, and fetch them in chunks;
 * a render's files are hashed only once such a node wants one of its jobs
 * (a slice per loop round), and only files on a running render's list are
 * ever served. Serving a node's fetch counts as progress of its jobs.
 *
 * Renders come from this process (the embedded `stemfarm render`) or from
 * clients (`stemfarm render --farm`), which get progress and a final status.
 * Everything runs in the calling thread; deadlines use CLOCK_MONOTONIC.
 */
#ifndef DISPATCH_H
#define DISPATCH_H

#include "sf/error.h"
#include "sf/secure.h"
#include "sf/session.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dispatch dispatch_t;

typedef struct {
    const char *bind;       /* tcp://127.0.0.1:5555, inproc://name, ... */
    void *zmq_context;      /* NULL: the dispatcher makes its own */
    int heartbeat_ms;       /* 0: 1000 */
    int node_timeout_ms;    /* a node silent this long is lost; 0: 15000 */
    int no_node_timeout_ms; /* a render with no node at all fails (exit 3) after this; 0: 30000 */
    int stuck_timeout_ms;   /* a running job whose progress stands still this long is re-issued; 0: 120000 */
    int quarantine_after;   /* failed jobs in a row that quarantine a node; 0: 3 */
    int quarantine_ms;      /* how long a quarantine lasts; 0: 300000 */
    double spot_check;      /* fraction of jobs rendered twice on two nodes and compared, 0..1 */
    const char *state_dir;  /* journals (journal.h): renders survive a crash; NULL: none */
    const char *http_bind;  /* metrics, status and dashboard (monitor.h), "127.0.0.1:9464"; NULL: none */
    bool http_required;     /* a bind failure fails dispatch_new (else a warning, and no HTTP) */
    int drain_timeout_ms;   /* drain: how long to wait for the jobs out; 0: 60000 */
    bool exit_when_idle;    /* return once every render is finished (embedded) */
    atomic_int *stop;       /* optional: return soon after *stop != 0 */
    atomic_int *drain;      /* optional: *drain != 0 starts a drain (see dispatch_run) */
    /* optional: CURVE and the allowlist (sf/secure.h); its ZAP handler must run on zmq_context */
    sf_secure_server_t *secure;
    /* NULL: paths as submitted. Else this coordinator's view of shared
     * storage (sf/pathmap.h): sessions load with it and a submitted out_dir
     * is mapped. Borrowed: it outlives the dispatcher. */
    const sf_pathmap_t *pathmap;
} dispatch_config_t;

typedef enum {
    DISPATCH_EV_STARTED,  /* a render was planned and queued */
    DISPATCH_EV_PROGRESS, /* a job was accepted */
    DISPATCH_EV_NODE,     /* a node joined or was lost (message says which) */
    DISPATCH_EV_DONE,     /* the render finished: exit_code, message, manifest_path */
} dispatch_event_kind_t;

typedef struct {
    dispatch_event_kind_t kind;
    uint32_t render_id; /* the coordinator's number for it (status, cancel) */
    uint64_t jobs_done;
    uint64_t jobs_total;
    uint32_t nodes;
    int exit_code;             /* DONE: 0 delivered, 1 render/verify failed, 2 bad input, 3 farm */
    const char *message;       /* may be NULL */
    const char *manifest_path; /* DONE with 0 */
} dispatch_event_t;

typedef void (*dispatch_event_fn)(void *ctx, const dispatch_event_t *ev);

/* Binds the ROUTER. With a state folder, first takes the next incarnation
 * and resumes every render journalled there (journal.h): each is planned
 * again, its landed segments go to its stitcher without being rendered, and
 * its client (by routing id) hears from it again. SF_E_INPUT for a bad
 * endpoint, SF_E_IO when the address is in use (with zmq's reason) or the
 * state folder cannot be used. */
sf_rc dispatch_new(const dispatch_config_t *cfg, dispatch_t **out, sf_err_t *err);
void dispatch_destroy(dispatch_t **self_p);

/* Where the metrics, status and dashboard are served ("127.0.0.1:9464"),
 * or NULL when they are not. */
const char *dispatch_http_address(const dispatch_t *d);

/* A render to queue: the session whose file bytes are `yaml` (loaded by the
 * caller from `session_path`), into out_dir (created if missing; NULL or "":
 * the session's output.dir). segment_frames 0: the plan's default. profile
 * (NULL or "": the session's output.profile) names a delivery profile
 * (sf/profile.h) that replaces the session's. priority: -100..100, higher
 * first. */
typedef struct {
    const char *session_path;
    const uint8_t *yaml;
    size_t n_yaml_bytes;
    const char *out_dir;
    int64_t segment_frames;
    bool force;
    const char *profile;
    int32_t priority;
} dispatch_request_t;

/* Queues a render; events go to fn(ctx, ...). Bad input (session, plan,
 * existing outputs without force) is reported through a DONE event with
 * exit code 2 and nothing is written. */
sf_rc dispatch_submit(dispatch_t *d, const dispatch_request_t *req, dispatch_event_fn fn, void *ctx, sf_err_t *err);

/* Runs the loop until *stop, or (exit_when_idle) until every render has
 * finished, and then tells the nodes to shut down; or, after *drain, until
 * the jobs out have come back (or drain_timeout_ms): a drain refuses new
 * submissions and sends no new jobs, keeps the journals of the renders in
 * flight for the next start, tells their clients so, and leaves the nodes
 * running (they join the next coordinator). Returns SF_OK or SF_E_FARM if
 * the socket failed. */
sf_rc dispatch_run(dispatch_t *d, sf_err_t *err);

#endif
