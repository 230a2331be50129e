/* localfarm.c -- the embedded farm (see localfarm.h). */
#include "localfarm.h"

#include "worker.h"

#include "sf/alloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>
#include <zmq.h>

typedef struct {
    worker_config_t cfg;
    char name[32];
    pthread_t thread;
    int rc;
} s_node_t;

struct localfarm {
    void *ctx;
    dispatch_t *d;
    char endpoint[64];
    const sf_pathmap_t *pathmap;
    int n_nodes, threads;
    s_node_t *nodes;
    atomic_int stop_nodes;
};

static void *s_node_main(void *arg)
{
    s_node_t *n = arg;
    n->rc = worker_run(&n->cfg);
    return NULL;
}

sf_rc localfarm_new(const dispatch_config_t *base, int n_nodes, int threads, localfarm_t **out, sf_err_t *err)
{
    *out = NULL;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    localfarm_t *lf = sf_calloc(1, sizeof *lf);
    if (!lf)
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    lf->n_nodes = n_nodes > 0 ? n_nodes : (int)cores;
    lf->threads = threads > 0 ? threads : (int)(cores / lf->n_nodes > 0 ? cores / lf->n_nodes : 1);
    lf->pathmap = base->pathmap;
    lf->nodes = sf_calloc((size_t)lf->n_nodes, sizeof *lf->nodes);
    lf->ctx = zmq_ctx_new();
    if (!lf->nodes || !lf->ctx) {
        localfarm_destroy(&lf);
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    }
    /* One process may hold several (tests do): the address names this one. */
    snprintf(lf->endpoint, sizeof lf->endpoint, "inproc://stemfarm-%ld-%p", (long)getpid(), (void *)lf);
    dispatch_config_t cfg = *base;
    cfg.bind = lf->endpoint;
    cfg.zmq_context = lf->ctx;
    cfg.exit_when_idle = true;
    sf_rc rc = dispatch_new(&cfg, &lf->d, err);
    if (rc) {
        localfarm_destroy(&lf);
        return rc;
    }
    *out = lf;
    return SF_OK;
}

dispatch_t *localfarm_dispatcher(localfarm_t *lf) { return lf->d; }

int localfarm_nodes(const localfarm_t *lf) { return lf->n_nodes; }

sf_rc localfarm_run(localfarm_t *lf, sf_err_t *err)
{
    int started = 0;
    atomic_store(&lf->stop_nodes, 0);
    for (int i = 0; i < lf->n_nodes; i++) {
        s_node_t *n = &lf->nodes[i];
        snprintf(n->name, sizeof n->name, "local-%d", i + 1);
        n->cfg = (worker_config_t){.endpoint = lf->endpoint,
                                   .zmq_context = lf->ctx,
                                   .name = n->name,
                                   .threads = lf->threads,
                                   .slots = 1,
                                   .stop = &lf->stop_nodes,
                                   .pathmap = lf->pathmap};
        if (pthread_create(&n->thread, NULL, s_node_main, n) != 0)
            break;
        started++;
    }
    sf_rc rc = dispatch_run(lf->d, err);
    atomic_store(&lf->stop_nodes, 1);
    for (int i = 0; i < started; i++)
        pthread_join(lf->nodes[i].thread, NULL);
    return rc;
}

void localfarm_destroy(localfarm_t **self_p)
{
    localfarm_t *lf = *self_p;
    if (!lf)
        return;
    dispatch_destroy(&lf->d);
    if (lf->ctx)
        zmq_ctx_term(lf->ctx);
    sf_free(lf->nodes);
    sf_free(lf);
    *self_p = NULL;
}
