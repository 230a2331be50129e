/* dashboard.h -- the farm dashboard page (dashboard.html, compiled in by
 * the build: the coordinator serves it without any file or external asset). */
#ifndef DASHBOARD_H
#define DASHBOARD_H

extern const unsigned char dashboard_html[]; /* NUL-terminated */

#endif
