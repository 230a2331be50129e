/* main.c -- stemfarm-node: parse the command line, run one worker.
 *
 *   stemfarm-node --connect tcp://HOST:PORT [--threads N] [--slots N]
 *                 [--name NAME] [--timeout SECONDS] [--config FILE] [-v]
 *                 [--key NODE.key --server-key COORDINATOR.pub]
 *
 * Exit codes (DESIGN.md): 0 after a shutdown or SIGINT/SIGTERM, 2 bad
 * arguments or key files, 3 the coordinator was unreachable, refused this
 * node's key or went silent.
 */
#include "sf/alloc.h"
#include "worker.h"

#include "sf/secure.h"
#include "sf/log.h"
#include "sf/pathmap.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PROG "stemfarm-node"

static atomic_int s_stop;
static const char *s_config_path; /* --config: the node config (path_map, media_roots) */

static void s_on_signal(int sig)
{
    (void)sig;
    atomic_store(&s_stop, 1);
}

static void s_usage(FILE *out)
{
    fprintf(out, "usage: " S_PROG " --connect tcp://HOST:PORT [options]\n"
                 "\n"
                 "A stemfarm render node: connects to a coordinator, renders the jobs it is\n"
                 "sent and returns the frames, until the coordinator shuts it down.\n"
                 "\n"
                 "  --connect ENDPOINT  the coordinator, tcp://HOST:PORT (or ipc://PATH)\n"
                 "  --threads N         OpenMP threads per job, 1..256 (default: all cores)\n"
                 "  --slots N           jobs rendered at once, 1..256 (default: 1)\n"
                 "  --name NAME         node name in logs (default: host name and pid)\n"
                 "  --timeout SECONDS   give up when the coordinator is silent this long\n"
                 "                      (default: 30)\n"
                 "  --key FILE          this node's key pair (NAME.key from 'stemfarm keygen');\n"
                 "                      default $STEMFARM_KEY\n"
                 "  --server-key FILE   the coordinator's public key (its .pub); default\n"
                 "                      $STEMFARM_SERVER_KEY. With both, the connection is\n"
                 "                      CURVE-encrypted and the coordinator checks the key\n"
                 "  --config FILE       node config (YAML): path_map rules from the studio's\n"
                 "                      paths to this node's mounts, media_roots it may read\n"
                 "                      (test a rule with 'stemfarm check-path'); 'media: ship'\n"
                 "                      fetches sources from the coordinator instead, into\n"
                 "                      'cache: {dir, max_size}' (default\n"
                 "                      $XDG_CACHE_HOME/stemfarm/media or ~/.cache/stemfarm/media, 20G)\n"
                 "  -v, --verbose       log every job\n"
                 "  --help              this text\n"
                 "  --version           the version\n"
                 "\n"
                 "Exit status: 0 shut down by the coordinator or by SIGINT/SIGTERM,\n"
                 "2 bad arguments or key files, 3 coordinator unreachable, silent, or\n"
                 "refusing this node's key.\n");
}

/* One line on stderr, exit status 2. */
static int s_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int s_bad(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, S_PROG ": %s\n", line);
    return 2;
}

/* A whole number lo..hi, nothing else. */
static int s_parse_int(const char *opt, const char *text, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (!isdigit((unsigned char)text[0]) || *end || errno || v < lo || v > hi) {
        return s_bad("%s needs a whole number from %d to %d, got '%s'", opt, lo, hi, text);
    }
    *out = (int)v;
    return 0;
}

static int s_parse_seconds(const char *opt, const char *text, int *ms)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (!(isdigit((unsigned char)text[0]) || text[0] == '.') || *end || errno || !isfinite(v) || v < 0.001 ||
        v > 86400.0) {
        return s_bad("%s needs a number of seconds from 0.001 to 86400, got '%s'", opt, text);
    }
    *ms = (int)lround(v * 1000.0);
    return 0;
}

static int s_check_endpoint(const char *text)
{
    const char *colon = strrchr(text, ':');
    int tcp = strncmp(text, "tcp://", 6) == 0 && text[6] && colon && colon > text + 6 && colon[1];
    int ipc = strncmp(text, "ipc://", 6) == 0 && text[6];
    if (!tcp && !ipc)
        return s_bad("--connect needs tcp://HOST:PORT, got '%s'", text);
    return 0;
}

static int s_check_name(const char *text)
{
    size_t n = strlen(text);
    if (n == 0 || n > 255)
        return s_bad("--name needs 1 to 255 characters, got '%s'", text);
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return s_bad("--name must not contain control characters, got '%s'", text);
    return 0;
}

/* The config's cache folder, else $XDG_CACHE_HOME/stemfarm/media, else
 * ~/.cache/stemfarm/media. -1 to go on, or exit status 2. */
static int s_default_cache_dir(const sf_pathmap_t *map, char *buf, size_t n_bytes)
{
    const char *dir = sf_pathmap_cache_dir(map), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (dir)
        n = snprintf(buf, n_bytes, "%s", dir);
    else if (xdg && xdg[0] == '/') /* XDG: a relative value is to be ignored */
        n = snprintf(buf, n_bytes, "%s/stemfarm/media", xdg);
    else if (home && home[0] == '/')
        n = snprintf(buf, n_bytes, "%s/.cache/stemfarm/media", home);
    else
        return s_bad("media: ship needs a cache folder: set cache: {dir: ...} in '%s' (HOME is not set)",
                     s_config_path);
    if (n < 0 || (size_t)n >= n_bytes)
        return s_bad("the media cache folder is too long a path");
    return -1;
}

/* Parses argv into cfg and the key file paths. Returns -1 to go on, or an
 * exit status. */
static int s_parse(int argc, char **argv, worker_config_t *cfg, const char **key, const char **server_key)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            s_usage(stdout);
            return 0;
        }
        if (!strcmp(arg, "--version")) {
            printf(S_PROG " " STEMFARM_VERSION "\n");
            return 0;
        }
        if (!strcmp(arg, "-v") || !strcmp(arg, "--verbose")) {
            cfg->verbose = 1;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0 || !arg[2]) {
            if (arg[0] == '-')
                return s_bad("unknown option '%s' (see --help)", arg);
            return s_bad("unexpected argument '%s' (see --help)", arg);
        }
        /* --opt VALUE or --opt=VALUE */
        char opt[64];
        const char *eq = strchr(arg, '=');
        size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
        if (n >= sizeof opt)
            return s_bad("unknown option '%s' (see --help)", arg);
        memcpy(opt, arg, n);
        opt[n] = '\0';
        int known = !strcmp(opt, "--connect") || !strcmp(opt, "--threads") || !strcmp(opt, "--slots") ||
                    !strcmp(opt, "--name") || !strcmp(opt, "--timeout") || !strcmp(opt, "--key") ||
                    !strcmp(opt, "--server-key") || !strcmp(opt, "--config");
        if (!known)
            return s_bad("unknown option '%s' (see --help)", opt);
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            if (i + 1 >= argc)
                return s_bad("%s needs a value", opt);
            value = argv[++i];
        }
        int rc = 0;
        if (!strcmp(opt, "--connect")) {
            rc = s_check_endpoint(value);
            cfg->endpoint = value;
        } else if (!strcmp(opt, "--threads")) {
            rc = s_parse_int(opt, value, 1, 256, &cfg->threads);
        } else if (!strcmp(opt, "--slots")) {
            rc = s_parse_int(opt, value, 1, 256, &cfg->slots);
        } else if (!strcmp(opt, "--key")) {
            *key = value;
        } else if (!strcmp(opt, "--server-key")) {
            *server_key = value;
        } else if (!strcmp(opt, "--config")) {
            s_config_path = value;
        } else if (!strcmp(opt, "--name")) {
            rc = s_check_name(value);
            cfg->name = value;
        } else {
            rc = s_parse_seconds(opt, value, &cfg->coordinator_timeout_ms);
        }
        if (rc)
            return rc;
    }
    if (!cfg->endpoint)
        return s_bad("--connect tcp://HOST:PORT is required (see --help)");
    return -1;
}

int main(int argc, char **argv)
{
    sf_alloc_keep_freed_memory();
    worker_config_t cfg = {0};
    const char *key = NULL, *server_key = NULL;
    int rc = s_parse(argc, argv, &cfg, &key, &server_key);
    if (rc >= 0)
        return rc;
    sf_secure_client_t curve;
    sf_err_t err = {0};
    if (sf_secure_client_load(key, server_key, &curve, &err))
        return s_bad("%s", err.msg);
    cfg.curve = &curve;
    sf_pathmap_t *map = NULL;
    if (s_config_path) {
        sf_diags_t diags = SF_DIAGS_INIT;
        sf_rc lrc = sf_pathmap_load(s_config_path, &map, &diags, &err);
        sf_diags_print(&diags, stderr);
        sf_diags_free(&diags);
        if (lrc) {
            if (lrc != SF_E_INPUT)
                fprintf(stderr, S_PROG ": %s\n", err.msg);
            return 2;
        }
        sf_log(SF_LOG_INFO, "node", "config '%s': %zu path_map rules, %zu media roots, media %s", s_config_path,
               sf_pathmap_n_rules(map), sf_pathmap_n_roots(map),
               sf_pathmap_media(map) == SF_MEDIA_SHIP ? "ship" : "shared");
        cfg.pathmap = map;
    }
    char cache_dir[PATH_MAX];
    if (sf_pathmap_media(map) == SF_MEDIA_SHIP) {
        if ((rc = s_default_cache_dir(map, cache_dir, sizeof cache_dir)) >= 0) {
            sf_pathmap_destroy(&map);
            return rc;
        }
        cfg.ship_media = true;
        cfg.cache_dir = cache_dir;
        cfg.cache_max_bytes = sf_pathmap_cache_max_bytes(map);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    cfg.stop = &s_stop;
    rc = worker_run(&cfg);
    sf_pathmap_destroy(&map);
    return rc;
}
