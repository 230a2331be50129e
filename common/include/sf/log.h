/* sf/log.h -- one line per event on stderr, for the executables only.
 *
 *   2026-01-01T12:00:00.123Z WARN node[n3] transport: lost heartbeat
 *
 * Library code in common/ never calls this: it returns errors. The
 * coordinator, the node and the CLI log. Thread-safe (one write per line).
 */
#ifndef SF_LOG_H
#define SF_LOG_H

typedef enum { SF_LOG_DEBUG, SF_LOG_INFO, SF_LOG_WARN, SF_LOG_ERROR } sf_log_level_t;

/* Lines below `level` are dropped. Default SF_LOG_INFO. */
void sf_log_set_level(sf_log_level_t level);

/* component: "node[n3] transport", "coordinator dispatch", ... */
void sf_log(sf_log_level_t level, const char *component, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
