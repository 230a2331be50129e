/* sf/pathmap.h -- shared media seen under different paths per machine.
 *
 * A studio's sessions name media the way the machine that wrote them sees
 * it: `/Volumes/Media/...` (macOS), `M:\Projects\...` or
 * `\\nas01\media\Projects\...` (Windows). A render node or coordinator maps
 * those paths to where it mounts the same storage, with an ordered list of
 * rules `from -> to`, and reads only under its media roots.
 *
 * Rules:
 *   - `from` is an absolute path in one of three forms: POSIX (`/a/b`), a
 *     drive (`M:\a\b` or `M:/a/b`) or UNC (`\\server\share\a` or
 *     `//server/share/a`). `to` is an absolute POSIX path.
 *   - A rule matches a path of the same form whose leading components equal
 *     the rule's: `/Volumes/Media` matches `/Volumes/Media` and
 *     `/Volumes/Media/x.wav`, never `/Volumes/MediaOld/x.wav`. Components
 *     compare exactly for POSIX rules and ASCII case-insensitively for drive
 *     and UNC rules (Windows paths are case-insensitive; drive letter, server
 *     and share included). Both `\` and `/` separate Windows components.
 *   - The rule with the most components wins; on a tie, the first listed.
 *   - The rest of the path is appended to `to` with `/` separators; `.` and
 *     empty components are dropped and `..` is resolved, but a `..` that
 *     would climb above `to` makes the mapping fail (a session must not
 *     reach outside the folder a rule grants).
 *   - An unmatched absolute POSIX path is returned unchanged; an unmatched
 *     drive or UNC path is an error (a POSIX machine cannot open it).
 *
 * Media roots: folders a machine may read. A path is under a root when its
 * realpath(3) (every symlink followed) equals the root's realpath or lies
 * below it; no roots means no restriction.
 *
 * The config file (YAML; node.yaml, farm.yaml):
 *
 *   media_roots: [/mnt/media, /srv/stems-cache]
 *   path_map:
 *     - {from: /Volumes/Media, to: /mnt/media}
 *     - {from: 'M:\', to: /mnt/media}
 *     - {from: '\\nas01\media', to: /mnt/media}
 *   media: shared          # or ship: a node fetches sources from the coordinator
 *   cache: {dir: /var/cache/stemfarm, max_size: 20G}   # where shipped media are kept
 *
 * `media` and `cache` matter to render nodes only; other programs read the
 * same file and ignore them.
 *
 * A map is immutable once built: threads may share it.
 */
#ifndef SF_PATHMAP_H
#define SF_PATHMAP_H

#include "sf/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sf_pathmap sf_pathmap_t;

/* An empty map: no rules, no roots. SF_E_NOMEM. */
sf_rc sf_pathmap_new(sf_pathmap_t **out, sf_err_t *err);
void sf_pathmap_destroy(sf_pathmap_t **self_p);

/* Appends a rule. SF_E_INPUT when `from` is not an absolute path of one of
 * the three forms or has a `..` component, or `to` is not an absolute POSIX
 * path or has a `..` component; SF_E_NOMEM. */
sf_rc sf_pathmap_add_rule(sf_pathmap_t *m, const char *from, const char *to, sf_err_t *err);

/* Appends a media root. SF_E_INPUT when it is not an absolute POSIX path or
 * has a `..` component; SF_E_NOMEM. The folder need not exist yet (a mount
 * may come later): a root that does not resolve holds nothing. */
sf_rc sf_pathmap_add_root(sf_pathmap_t *m, const char *root, sf_err_t *err);

size_t sf_pathmap_n_rules(const sf_pathmap_t *m); /* 0 for NULL */
size_t sf_pathmap_n_roots(const sf_pathmap_t *m); /* 0 for NULL */

/* True for an absolute path of any of the three forms; false for a relative
 * one (which a caller resolves against a folder it has already mapped). */
bool sf_pathmap_is_absolute(const char *path);

/* Maps `path` by the rules (m may be NULL: no rules) into *out (new, owned
 * by the caller, sf_free). A relative path is returned unchanged.
 * SF_E_INPUT, with a message naming the path, when a `..` climbs above the
 * rule's target, when no rule matches a drive or UNC path (the message
 * suggests a rule), or for an incomplete UNC path; SF_E_NOMEM. */
sf_rc sf_pathmap_apply(const sf_pathmap_t *m, const char *path, char **out, sf_err_t *err);

/* Resolves `path` with realpath(3) and checks that it lies under one of the
 * media roots (m NULL or without roots: anywhere). SF_OK and, when real_out
 * is not NULL, the resolved path in *real_out (owned, sf_free); SF_E_IO when
 * it cannot be resolved (missing, no permission: the system's reason);
 * SF_E_INPUT when it is under no root (the message names the path, what it
 * resolves to and the roots); SF_E_NOMEM. */
sf_rc sf_pathmap_check_root(const sf_pathmap_t *m, const char *path, char **real_out, sf_err_t *err);

/* Loads the config file at `path` (format above). SF_OK and a new map in
 * *out; SF_E_INPUT with every problem in diags as file:line:col (*out NULL);
 * SF_E_IO when the file cannot be read; SF_E_NOMEM. */
sf_rc sf_pathmap_load(const char *path, sf_pathmap_t **out, sf_diags_t *diags, sf_err_t *err);

/* The same from text in memory; `path` names it in messages. */
typedef enum { SF_MEDIA_SHARED, SF_MEDIA_SHIP } sf_media_mode_t;

/* The config's `media` (SF_MEDIA_SHARED for NULL or when not given),
 * `cache: {dir}` (normal absolute POSIX path; NULL when not given) and
 * `cache: {max_size}` in bytes (0 when not given). */
sf_media_mode_t sf_pathmap_media(const sf_pathmap_t *m);
const char *sf_pathmap_cache_dir(const sf_pathmap_t *m);
uint64_t sf_pathmap_cache_max_bytes(const sf_pathmap_t *m);

/* A size: a whole number of bytes (1..2^62) with an optional K, M, G or T
 * suffix (powers of 1024, either case): "20G", "512m", "4096". SF_E_INPUT
 * with a message quoting the text. */
sf_rc sf_pathmap_parse_size(const char *text, uint64_t *out, sf_err_t *err);

sf_rc sf_pathmap_load_text(const char *path, const char *yaml, size_t n_bytes, sf_pathmap_t **out, sf_diags_t *diags,
                           sf_err_t *err);

#endif
