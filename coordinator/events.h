/* events.h -- what a person or a pipeline sees of a render.
 *
 * --json: one JSON object per line on stdout (started, progress, node,
 * done), flushed per line. Otherwise: a progress bar on stderr when stderr
 * is a terminal (nothing when it is not), and one summary line at the end.
 * Used for embedded renders and for renders submitted to a farm alike.
 */
#ifndef EVENTS_H
#define EVENTS_H

#include "dispatch.h"

#include <stdbool.h>

typedef struct {
    bool json;
    bool tty;
    double started_s; /* monotonic seconds at start */
    int exit_code;    /* of the DONE event; 3 until one arrives */
    bool done;
    int last_percent;
} events_t;

void events_init(events_t *ev, bool json);

/* A dispatch_event_fn: ctx is an events_t. */
void events_on_dispatch(void *ctx, const dispatch_event_t *e);

#endif
