/* batch.h -- `stemfarm batch CATALOGUE.yaml`: many sessions through one
 * farm, overnight, with nothing done twice.
 *
 * Every session of the catalogue (catalogue.h) is loaded and planned
 * first; the invalid ones are reported together, up front, and are not
 * rendered. A session whose delivery folder already holds a manifest with
 * the same session hash, segment length and profile, and whose files
 * verify against it (verify.h), is skipped; any other is rendered (a
 * changed one replaces its earlier delivery: the batch owns its folders).
 * The rest go to one farm, the embedded one or a coordinator (--farm), a
 * few at a time in the order of their priority, so that the next session's
 * jobs are queued while the last jobs of one still run and nodes do not
 * wait between sessions. A failing session never stops the others.
 *
 * Interrupted (SIGINT/SIGTERM), the batch stops its renders, which leave no
 * file that looks finished; run again, it skips what was delivered and
 * renders the rest. With --farm, the renders submitted go on at the
 * coordinator; the next run skips those that delivered.
 *
 * Exit status: 0 every session delivered or skipped (verified); 1 a
 * session invalid, failed or stopped; 2 the catalogue itself is wrong;
 * 3 the farm could not be reached (nothing was rendered there).
 */
#ifndef BATCH_H
#define BATCH_H

#include "sf/pathmap.h"
#include "sf/secure.h"

#include <stdatomic.h>
#include <stdbool.h>

#define BATCH_EVENTS_SCHEMA "stemfarm.batch-events/1" /* docs/batch-events.schema.json */

typedef struct {
    const char *catalogue;           /* CATALOGUE.yaml */
    const char *root;                /* -o ROOT; NULL: the catalogue's folder */
    const char *farm;                /* --farm ENDPOINT, or NULL: embedded */
    const sf_secure_client_t *curve; /* with --farm */
    int nodes, threads;              /* embedded; 0: as `render` */
    int window;                      /* sessions in flight at once; 0: 3 */
    bool json;                       /* events on stdout, one JSON object per line */
    bool dry_run;                    /* plan, skip and estimate; render nothing */
    const char *log_name;            /* --log NAME: a log per session in its output folder */
    const sf_pathmap_t *pathmap;     /* --config */
    atomic_int *stop;                /* set by SIGINT/SIGTERM */
} batch_options_t;

/* Runs the batch; returns its exit status (above). */
int batch_run(const batch_options_t *o);

#endif
