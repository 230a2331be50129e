/* localfarm.h -- a coordinator and render nodes in this process: the
 * embedded farm of `stemfarm render` and `stemfarm batch` without --farm.
 *
 * The dispatcher binds inproc:// and the nodes are worker threads that
 * talk to it over exactly the protocol a farm uses, so an embedded render
 * is a farm render with the network left out. Submit renders to
 * localfarm_dispatcher() before localfarm_run(); nodes start only then, so
 * that a render refused at submission never starts one.
 */
#ifndef LOCALFARM_H
#define LOCALFARM_H

#include "dispatch.h"

typedef struct localfarm localfarm_t;

/* base: the dispatcher's settings (bind, zmq_context and exit_when_idle
 * are filled in here). n_nodes 0: one per core; threads 0: cores / nodes.
 * SF_E_PROTO when the dispatcher cannot bind, SF_E_NOMEM. */
sf_rc localfarm_new(const dispatch_config_t *base, int n_nodes, int threads, localfarm_t **out, sf_err_t *err);

dispatch_t *localfarm_dispatcher(localfarm_t *lf);

/* Starts the nodes and runs the dispatcher until every render is finished
 * (or base->stop); stops the nodes. dispatch_run's status. */
sf_rc localfarm_run(localfarm_t *lf, sf_err_t *err);

/* The nodes started by localfarm_run (for estimates and progress). */
int localfarm_nodes(const localfarm_t *lf);

void localfarm_destroy(localfarm_t **self_p);

#endif
