/* main.c -- the stemfarm command line: parses arguments and wires modules.
 *
 *   stemfarm render SESSION.yaml [-o DIR] [--nodes N] [--threads N] [--segment TIME] [--force] [--json]
 *   stemfarm render SESSION.yaml --farm tcp://HOST:PORT [-o DIR] [--segment TIME] [--force] [--json]
 *                   [--key CLIENT.key --server-key COORDINATOR.pub]
 *   stemfarm plan SESSION.yaml [--segment TIME] [--json]
 *   stemfarm validate SESSION.yaml [--strict]
 *   stemfarm verify DIR|MANIFEST
 *   stemfarm coordinator --bind ENDPOINT [--key COORDINATOR.key --allow DIR|FILE.pub ...] [--insecure]
 *   stemfarm keygen NAME [--dir DIR]
 *   stemfarm check-path --config FILE PATH...
 *
 * render, plan, validate and coordinator take --config FILE: this
 * machine's path_map and media_roots (sf/pathmap.h) for every session they
 * load.
 *
 * Exit codes: 0 done and verified, 1 render or verification failed,
 * 2 bad input or usage, 3 farm failure.
 */
/* realpath is XSI. */
#define _XOPEN_SOURCE 700

#include "client.h"
#include "dispatch.h"
#include "batch.h"
#include "estimate.h"
#include "events.h"
#include "monitor.h"
#include "localfarm.h"
#include "plan.h"
#include "verify.h"
#include "worker.h"

#include "sf/alloc.h"
#include "sf/hash.h"
#include "sf/log.h"
#include "sf/pathmap.h"
#include "sf/profile.h"
#include "sf/secure.h"
#include "sf/session.h"
#include "sf/value.h"
#include "sf/wire.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_FARM = 3 };

static atomic_int g_stop;      /* a first SIGINT/SIGTERM: stop (a coordinator drains) */
static atomic_int g_hard_stop; /* a second one: stop now */

static void s_on_signal(int sig)
{
    (void)sig;
    if (atomic_fetch_add(&g_stop, 1) >= 1)
        atomic_store(&g_hard_stop, 1);
}

static void s_install_signals(void)
{
    struct sigaction sa = {.sa_handler = s_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int s_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int s_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("stemfarm: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see 'stemfarm --help')\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

static const char s_help[] =
    "usage:\n"
    "  stemfarm render SESSION.yaml [-o DIR] [--nodes N] [--threads N] [--segment TIME] [--profile NAME]\n"
    "                  [--force] [--json]\n"
    "  stemfarm render SESSION.yaml --farm tcp://HOST:PORT [-o DIR] [--segment TIME] [--profile NAME]\n"
    "                  [--priority N] [--force] [--json] [--key CLIENT.key --server-key COORDINATOR.pub]\n"
    "  stemfarm batch CATALOGUE.yaml [-o ROOT] [--farm tcp://HOST:PORT] [--nodes N] [--threads N]\n"
    "                  [--in-flight N] [--json] [--dry-run] [--log NAME] [--key ... --server-key ...]\n"
    "  stemfarm plan SESSION.yaml [--segment TIME] [--json]\n"
    "  stemfarm validate SESSION.yaml [--strict] [--profile NAME]\n"
    "  stemfarm verify DIR|MANIFEST\n"
    "  stemfarm coordinator --bind ENDPOINT [--state DIR] [--node-timeout SECONDS] [--stuck-timeout SECONDS]\n"
    "                  [--quarantine-after N] [--quarantine-time SECONDS] [--drain-timeout SECONDS]\n"
    "                  [--spot-check PERCENT] [--http ADDR:PORT|off]\n"
    "                  [--key COORDINATOR.key --allow DIR|FILE.pub ...] [--insecure] [--config FILE]\n"
    "  stemfarm status --farm tcp://HOST:PORT [--json] [--key CLIENT.key --server-key COORDINATOR.pub]\n"
    "  stemfarm cancel --farm tcp://HOST:PORT RENDER [--key CLIENT.key --server-key COORDINATOR.pub]\n"
    "  stemfarm keygen NAME [--dir DIR]\n"
    "  stemfarm check-path --config FILE PATH...\n"
    "\n"
    "render      bounce every stem; without --farm, a coordinator and --nodes local render\n"
    "            nodes run in this process (default: one node per core)\n"
    "batch       bounce every session of a catalogue through one farm; skips what was\n"
    "            delivered and verified; a failing session never stops the others\n"
    "plan        print the jobs (stem x segment) and the work; renders nothing\n"
    "validate    parse and validate the session and open every source\n"
    "verify      re-check delivered files against their manifest.json\n"
    "coordinator run a farm coordinator that stemfarm-node processes join\n"
    "status      the renders (number, priority, progress) and nodes of a running coordinator\n"
    "cancel      stop a render on a running coordinator; its partial files are removed\n"
    "keygen      write a CURVE key pair: NAME.key (secret, mode 0600) and NAME.pub\n"
    "check-path  map each PATH by the config's path_map and say whether this machine\n"
    "            can read it (exists, readable, under a media root); exit 1 if one cannot\n"
    "\n"
    "--config    render, plan, validate, coordinator: a YAML file with path_map rules\n"
    "            (the studio's paths -> this machine's) and media_roots (folders it may read)\n"
    "--profile   stem-mastering, ebu-r128, atsc-a85 or archive: settings the session must\n"
    "            have and measurements the files must meet (replaces output.profile)\n"
    "--key       coordinator: its key pair; CURVE encryption, and only the public keys\n"
    "            given with --allow (folders of *.pub, or files) may connect.\n"
    "            render --farm: this client's key pair, with --server-key the coordinator's\n"
    "            .pub (default $STEMFARM_KEY, $STEMFARM_SERVER_KEY)\n"
    "--insecure  let the coordinator bind a non-loopback address without keys\n"
    "--priority  render --farm: -100..100 (default 0); higher-priority renders take free\n"
    "            nodes first\n"
    "--state     coordinator: the folder of the render journals, resumed at the next start\n"
    "            (default $STEMFARM_STATE_DIR, $XDG_STATE_HOME/stemfarm, ~/.local/state/stemfarm)\n"
    "--http      coordinator: Prometheus /metrics, /status.json and the dashboard (/) over\n"
    "            HTTP (default 127.0.0.1:9464; off: none)\n"
    "--spot-check coordinator: percent of the jobs rendered on two nodes and compared\n"
    "            (default 2; 0 for none)\n"
    "--node-timeout, --stuck-timeout: a node silent (15 s), a job without progress (120 s)\n"
    "            loses its lease; --quarantine-after N failed jobs in a row (3) rest a node\n"
    "            for --quarantine-time (300 s); SIGTERM drains for --drain-timeout (60 s)\n"
    "\n"
    "exit status: 0 done and verified, 1 render or verification failed,\n"
    "             2 bad input or usage, 3 farm failure\n";

/* ---- options -------------------------------------------------------- */

#define MAX_LIST 64

typedef struct {
    const char *items[MAX_LIST];
    size_t n;
} str_list_t;

typedef struct {
    const char *session;
    const char *out_dir;
    const char *segment;
    const char *farm;
    const char *bind;
    const char *profile;
    const char *key;        /* coordinator, render --farm: our key pair */
    const char *server_key; /* render --farm: the coordinator's .pub */
    const char *dir;        /* keygen */
    str_list_t allow;       /* coordinator: folders of .pub files, .pub files */
    const char *config;     /* path_map and media_roots (sf/pathmap.h) */
    int nodes;
    int threads;
    int node_timeout_s;
    int priority;
    int stuck_timeout_s;
    int quarantine_after;
    int quarantine_s;
    int drain_timeout_s;
    const char *state_dir;
    const char *spot_check; /* coordinator: percent of jobs rendered twice */
    const char *http;       /* coordinator: metrics, status and dashboard; "off" */
    const char *log_name;   /* batch: a log per session in its output folder */
    int in_flight;          /* batch: sessions rendering at once */
    bool force, json, strict, resume, insecure, dry_run;
} options_t;

typedef enum { OPT_FLAG, OPT_TEXT, OPT_COUNT, OPT_LIST } opt_kind_t;

typedef struct {
    const char *name;  /* "--nodes" */
    const char *alias; /* "-o" or NULL */
    opt_kind_t kind;
    size_t offset; /* into options_t */
    int lo, hi;    /* OPT_COUNT range */
} opt_spec_t;

#define OPT(n, a, k, f, lo, hi)                                                                                        \
    {                                                                                                                  \
        n, a, k, offsetof(options_t, f), lo, hi                                                                        \
    }

static int s_parse(const char *cmd, int argc, char **argv, const opt_spec_t *specs, size_t n_specs,
                   const char **positional, options_t *o)
{
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0') {
            if (*positional)
                return s_usage_error("'%s' takes one file, got '%s' and '%s'", cmd, *positional, arg);
            *positional = arg;
            continue;
        }
        const opt_spec_t *spec = NULL;
        for (size_t k = 0; k < n_specs; k++)
            if (strcmp(arg, specs[k].name) == 0 || (specs[k].alias && strcmp(arg, specs[k].alias) == 0))
                spec = &specs[k];
        if (!spec)
            return s_usage_error("unknown option '%s' for '%s'", arg, cmd);
        void *field = (char *)o + spec->offset;
        if (spec->kind == OPT_FLAG) {
            *(bool *)field = true;
            continue;
        }
        if (i + 1 >= argc)
            return s_usage_error("%s needs a value", spec->name);
        const char *value = argv[++i];
        if (spec->kind == OPT_TEXT) {
            *(const char **)field = value;
            continue;
        }
        if (spec->kind == OPT_LIST) {
            str_list_t *list = field;
            if (list->n == MAX_LIST)
                return s_usage_error("%s is given more than %d times", spec->name, MAX_LIST);
            list->items[list->n++] = value;
            continue;
        }
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || *end || end == value || v < spec->lo || v > spec->hi)
            return s_usage_error("%s needs a whole number from %d to %d, got '%s'", spec->name, spec->lo, spec->hi,
                                 value);
        *(int *)field = (int)v;
    }
    return EXIT_OK;
}

/* ---- shared steps ---------------------------------------------------- */

/* This process's view of shared storage (--config), for every load. */
static sf_pathmap_t *s_pathmap;

static void s_free_config(void) { sf_pathmap_destroy(&s_pathmap); }

/* Loads --config (NULL: none); prints every problem. EXIT_USAGE when bad. */
static int s_use_config(const char *path)
{
    if (!path)
        return EXIT_OK;
    sf_diags_t diags = SF_DIAGS_INIT;
    sf_err_t err = {0};
    sf_rc rc = sf_pathmap_load(path, &s_pathmap, &diags, &err);
    sf_diags_print(&diags, stderr);
    sf_diags_free(&diags);
    if (rc && rc != SF_E_INPUT)
        fprintf(stderr, "stemfarm: error: %s\n", err.msg);
    if (rc)
        return rc == SF_E_NOMEM ? EXIT_FAILED : EXIT_USAGE;
    atexit(s_free_config);
    return EXIT_OK;
}

static int s_read_file(const char *path, uint8_t **out, size_t *n_bytes)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: error: cannot open: %s\n", path, strerror(errno));
        return EXIT_USAGE;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = sf_malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap >= SF_WIRE_MAX_YAML_BYTES) {
                fprintf(stderr, "%s: error: larger than %u MiB\n", path, SF_WIRE_MAX_YAML_BYTES >> 20);
                sf_free(buf);
                fclose(f);
                return EXIT_USAGE;
            }
            uint8_t *grown = sf_realloc(buf, cap * 2);
            if (!grown) {
                sf_free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int failed = ferror(f);
    fclose(f);
    if (!buf || failed) {
        fprintf(stderr, "%s: error: cannot read\n", path);
        sf_free(buf);
        return EXIT_USAGE;
    }
    *out = buf;
    *n_bytes = n;
    return EXIT_OK;
}

/* Loads and validates; prints every diagnostic. EXIT_USAGE when invalid. */
static int s_load(const char *path, bool strict, uint8_t **yaml, size_t *n_yaml, sf_session_t **s)
{
    int rc = s_read_file(path, yaml, n_yaml);
    if (rc)
        return rc;
    sf_session_load_opts_t opts = sf_session_load_opts_default();
    opts.strict = strict;
    opts.pathmap = s_pathmap;
    sf_diags_t diags = SF_DIAGS_INIT;
    sf_err_t err = {0};
    sf_rc lrc = sf_session_load_text(path, (const char *)*yaml, *n_yaml, &opts, s, &diags, &err);
    sf_diags_print(&diags, stderr);
    if (lrc && !diags.n_errors)
        fprintf(stderr, "%s: error: %s\n", path, err.msg);
    sf_diags_free(&diags);
    if (lrc) {
        sf_free(*yaml);
        *yaml = NULL;
        return lrc == SF_E_INPUT || lrc == SF_E_IO ? EXIT_USAGE : EXIT_FAILED;
    }
    return EXIT_OK;
}

static void s_profile_error(void *session_path, const char *line)
{
    fprintf(stderr, "%s: error: %s\n", (const char *)session_path, line);
}

/* --profile replaces the session's output.profile; every setting the
 * profile needs and the session lacks is bad input, each on its line. */
static int s_apply_profile(const options_t *o, sf_session_t *s)
{
    if (!o->profile)
        return EXIT_OK;
    if (!sf_profile_parse(o->profile, &s->output.profile))
        return s_usage_error("--profile: unknown profile '%s' (expected %s)", o->profile, sf_profile_names());
    return sf_profile_violations(s, s->output.profile, s_profile_error, s->path) ? EXIT_USAGE : EXIT_OK;
}

static int s_segment_frames(const options_t *o, const sf_session_t *s, int64_t *frames)
{
    *frames = 0;
    if (!o->segment)
        return EXIT_OK;
    sf_err_t err = {0};
    if (sf_value_time(o->segment, s->sample_rate, false, frames, &err) || *frames <= 0)
        return s_usage_error("--segment: %s", err.code ? err.msg : "must be longer than zero");
    return EXIT_OK;
}

static char *s_absolute(const char *path)
{
    if (path[0] == '/')
        return sf_strdup(path);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return NULL;
    size_t n = strlen(cwd) + strlen(path) + 2;
    char *abs = sf_malloc(n);
    if (abs)
        snprintf(abs, n, "%s/%s", cwd, path);
    return abs;
}

/* ---- render ---------------------------------------------------------- */

static int s_render_embedded(const options_t *o, const char *path, const uint8_t *yaml, size_t n_yaml, int64_t segment)
{
    dispatch_config_t cfg = {.stop = &g_stop, .pathmap = s_pathmap};
    localfarm_t *lf = NULL;
    sf_err_t err = {0};
    if (localfarm_new(&cfg, o->nodes, o->threads, &lf, &err)) {
        fprintf(stderr, "stemfarm: error: %s\n", err.msg);
        return EXIT_FARM;
    }
    events_t ev;
    events_init(&ev, o->json);
    dispatch_request_t req = {.session_path = path,
                              .yaml = yaml,
                              .n_yaml_bytes = n_yaml,
                              .out_dir = o->out_dir,
                              .segment_frames = segment,
                              .force = o->force,
                              .profile = o->profile};
    if (dispatch_submit(localfarm_dispatcher(lf), &req, events_on_dispatch, &ev, &err)) {
        fprintf(stderr, "stemfarm: error: %s\n", err.msg);
        localfarm_destroy(&lf);
        return EXIT_FAILED;
    }
    sf_rc rc = ev.done ? SF_OK : localfarm_run(lf, &err);
    localfarm_destroy(&lf);
    if (rc && !ev.done) {
        fprintf(stderr, "stemfarm: error: %s\n", err.msg);
        return EXIT_FARM;
    }
    if (!ev.done) {
        fprintf(stderr, "stemfarm: error: interrupted before the render finished; no deliverable was written\n");
        return EXIT_FAILED;
    }
    return ev.exit_code;
}

/* --key/--server-key (or STEMFARM_KEY/STEMFARM_SERVER_KEY) of a farm client. */
static int s_client_keys(const options_t *o, sf_secure_client_t *curve)
{
    sf_err_t err = {0};
    memset(curve, 0, sizeof *curve);
    if (sf_secure_client_load(o->key, o->server_key, curve, &err)) {
        fprintf(stderr, "stemfarm: error: %s\n", err.msg);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int s_render_farm(const options_t *o, const sf_secure_client_t *curve, const char *path, const uint8_t *yaml,
                         size_t n_yaml, int64_t segment)
{
    char *abs_session = realpath(path, NULL);
    if (!abs_session) {
        fprintf(stderr, "stemfarm: error: '%s': %s\n", path, strerror(errno));
        return EXIT_USAGE;
    }
    char *abs_out = o->out_dir ? s_absolute(o->out_dir) : NULL;
    dispatch_request_t req = {.session_path = abs_session,
                              .yaml = yaml,
                              .n_yaml_bytes = n_yaml,
                              .out_dir = abs_out,
                              .segment_frames = segment,
                              .force = o->force,
                              .profile = o->profile,
                              .priority = o->priority};
    client_config_t c = {.endpoint = o->farm, .curve = curve, .interrupt = &g_stop, .quiet = o->json};
    events_t ev;
    events_init(&ev, o->json);
    int rc = client_render(&c, &req, events_on_dispatch, &ev);
    free(abs_session);
    sf_free(abs_out);
    return rc;
}

static int s_cmd_render(int argc, char **argv)
{
    static const opt_spec_t specs[] = {
        OPT("--output", "-o", OPT_TEXT, out_dir, 0, 0),
        OPT("--nodes", NULL, OPT_COUNT, nodes, 1, 256),
        OPT("--threads", NULL, OPT_COUNT, threads, 1, 256),
        OPT("--segment", NULL, OPT_TEXT, segment, 0, 0),
        OPT("--farm", NULL, OPT_TEXT, farm, 0, 0),
        OPT("--force", NULL, OPT_FLAG, force, 0, 0),
        OPT("--json", NULL, OPT_FLAG, json, 0, 0),
        OPT("--resume", NULL, OPT_FLAG, resume, 0, 0),
        OPT("--profile", NULL, OPT_TEXT, profile, 0, 0),
        OPT("--priority", NULL, OPT_COUNT, priority, -SF_WIRE_MAX_PRIORITY, SF_WIRE_MAX_PRIORITY),
        OPT("--key", NULL, OPT_TEXT, key, 0, 0),
        OPT("--server-key", NULL, OPT_TEXT, server_key, 0, 0),
        OPT("--config", NULL, OPT_TEXT, config, 0, 0),
    };
    options_t o = {0};
    int rc = s_parse("render", argc, argv, specs, sizeof specs / sizeof *specs, &o.session, &o);
    if (rc || (rc = s_use_config(o.config)))
        return rc;
    if (!o.session)
        return s_usage_error("'render' needs a session file");
    if (o.resume)
        return s_usage_error("--resume is not supported by this version (a render always starts afresh)");
    if (o.farm && (o.nodes || o.threads))
        return s_usage_error("--nodes and --threads are for embedded renders, not with --farm");
    if (!o.farm && o.priority)
        return s_usage_error("--priority orders renders on a farm: it needs --farm");
    if (!o.farm && (o.key || o.server_key))
        return s_usage_error("--key and --server-key are for --farm (an embedded render never leaves this process)");
    sf_secure_client_t curve = {0};
    if (o.farm && (rc = s_client_keys(&o, &curve)))
        return rc;
    uint8_t *yaml;
    size_t n_yaml;
    sf_session_t *s;
    rc = s_load(o.session, false, &yaml, &n_yaml, &s);
    if (rc)
        return rc;
    int64_t segment;
    rc = s_segment_frames(&o, s, &segment);
    if (rc == EXIT_OK)
        rc = s_apply_profile(&o, s);
    sf_session_destroy(&s);
    if (rc == EXIT_OK)
        rc = o.farm ? s_render_farm(&o, &curve, o.session, yaml, n_yaml, segment)
                    : s_render_embedded(&o, o.session, yaml, n_yaml, segment);
    sf_free(yaml);
    return rc;
}

/* ---- batch ------------------------------------------------------------ */

static int s_cmd_batch(int argc, char **argv)
{
    static const opt_spec_t specs[] = {
        OPT("--output", "-o", OPT_TEXT, out_dir, 0, 0),
        OPT("--nodes", NULL, OPT_COUNT, nodes, 1, 256),
        OPT("--threads", NULL, OPT_COUNT, threads, 1, 256),
        OPT("--farm", NULL, OPT_TEXT, farm, 0, 0),
        OPT("--in-flight", NULL, OPT_COUNT, in_flight, 1, 16),
        OPT("--json", NULL, OPT_FLAG, json, 0, 0),
        OPT("--dry-run", NULL, OPT_FLAG, dry_run, 0, 0),
        OPT("--log", NULL, OPT_TEXT, log_name, 0, 0),
        OPT("--key", NULL, OPT_TEXT, key, 0, 0),
        OPT("--server-key", NULL, OPT_TEXT, server_key, 0, 0),
        OPT("--config", NULL, OPT_TEXT, config, 0, 0),
    };
    options_t o = {0};
    int rc = s_parse("batch", argc, argv, specs, sizeof specs / sizeof *specs, &o.session, &o);
    if (rc || (rc = s_use_config(o.config)))
        return rc;
    if (!o.session)
        return s_usage_error("'batch' needs a catalogue file");
    if (o.farm && (o.nodes || o.threads))
        return s_usage_error("--nodes and --threads are for the embedded farm, not with --farm");
    if (!o.farm && (o.key || o.server_key))
        return s_usage_error("--key and --server-key are for --farm");
    if (o.log_name &&
        (!*o.log_name || strchr(o.log_name, '/') || !strcmp(o.log_name, ".") || !strcmp(o.log_name, "..")))
        return s_usage_error("--log takes a file name (written in each session's output folder), got '%s'", o.log_name);
    sf_secure_client_t curve = {0};
    if (o.farm && (rc = s_client_keys(&o, &curve)))
        return rc;
    batch_options_t b = {.catalogue = o.session,
                         .root = o.out_dir,
                         .farm = o.farm,
                         .curve = &curve,
                         .nodes = o.nodes,
                         .threads = o.threads,
                         .window = o.in_flight,
                         .json = o.json,
                         .dry_run = o.dry_run,
                         .log_name = o.log_name,
                         .pathmap = s_pathmap,
                         .stop = &g_stop};
    return batch_run(&b);
}

/* ---- plan, validate ---------------------------------------------------- */

static int s_cmd_plan(int argc, char **argv)
{
    static const opt_spec_t specs[] = {
        OPT("--segment", NULL, OPT_TEXT, segment, 0, 0),
        OPT("--json", NULL, OPT_FLAG, json, 0, 0),
        OPT("--config", NULL, OPT_TEXT, config, 0, 0),
    };
    options_t o = {0};
    int rc = s_parse("plan", argc, argv, specs, sizeof specs / sizeof *specs, &o.session, &o);
    if (rc || (rc = s_use_config(o.config)))
        return rc;
    if (!o.session)
        return s_usage_error("'plan' needs a session file");
    uint8_t *yaml;
    size_t n_yaml;
    sf_session_t *s;
    rc = s_load(o.session, false, &yaml, &n_yaml, &s);
    if (rc)
        return rc;
    sf_free(yaml);
    int64_t segment;
    plan_t *p = NULL;
    sf_err_t err = {0};
    rc = s_segment_frames(&o, s, &segment);
    if (rc == EXIT_OK && plan_make(s, segment, &p, &err)) {
        fprintf(stderr, "%s: error: %s\n", o.session, err.msg);
        rc = EXIT_USAGE;
    }
    estimate_t est = {0};
    if (rc == EXIT_OK && estimate_plan(p, &est, &err)) {
        fprintf(stderr, "%s: error: calibration render: %s\n", o.session, err.msg);
        rc = EXIT_FAILED;
    }
    if (rc == EXIT_OK) {
        if (o.json)
            rc = plan_print_json(p, &est, stdout, &err) ? EXIT_FAILED : EXIT_OK;
        else
            plan_print_text(p, &est, stdout);
    }
    plan_destroy(&p);
    sf_session_destroy(&s);
    return rc;
}

static int s_cmd_validate(int argc, char **argv)
{
    static const opt_spec_t specs[] = {OPT("--strict", NULL, OPT_FLAG, strict, 0, 0),
                                       OPT("--profile", NULL, OPT_TEXT, profile, 0, 0),
                                       OPT("--config", NULL, OPT_TEXT, config, 0, 0)};
    options_t o = {0};
    int rc = s_parse("validate", argc, argv, specs, sizeof specs / sizeof *specs, &o.session, &o);
    if (rc || (rc = s_use_config(o.config)))
        return rc;
    if (!o.session)
        return s_usage_error("'validate' needs a session file");
    uint8_t *yaml;
    size_t n_yaml;
    sf_session_t *s;
    rc = s_load(o.session, o.strict, &yaml, &n_yaml, &s);
    if (rc)
        return rc;
    rc = s_apply_profile(&o, s);
    if (rc == EXIT_OK)
        printf("%s: ok: %zu tracks, %zu stems, %lld frames at %d Hz%s%s\n", o.session, s->n_tracks, s->n_stems,
               (long long)sf_session_n_frames(s), s->sample_rate, s->output.profile ? ", profile " : "",
               s->output.profile ? sf_profile_name(s->output.profile) : "");
    sf_free(yaml);
    sf_session_destroy(&s);
    return rc;
}

/* ---- verify ------------------------------------------------------------ */

static int s_cmd_verify(int argc, char **argv)
{
    options_t o = {0};
    const char *target = NULL;
    int rc = s_parse("verify", argc, argv, NULL, 0, &target, &o);
    if (rc)
        return rc;
    if (!target)
        return s_usage_error("'verify' needs a delivery folder or a manifest.json");
    size_t n_failed = 0;
    sf_err_t err = {0};
    if (verify_delivery(target, stdout, &n_failed, &err) != SF_OK) {
        fprintf(stderr, "error: %s\n", err.msg);
        return EXIT_USAGE;
    }
    return n_failed ? EXIT_FAILED : EXIT_OK;
}

/* ---- coordinator ------------------------------------------------------- */

/* stemfarm status --farm ENDPOINT [--json] */
static int s_cmd_status(int argc, char **argv)
{
    static const opt_spec_t specs[] = {
        OPT("--farm", NULL, OPT_TEXT, farm, 0, 0),
        OPT("--json", NULL, OPT_FLAG, json, 0, 0),
        OPT("--key", NULL, OPT_TEXT, key, 0, 0),
        OPT("--server-key", NULL, OPT_TEXT, server_key, 0, 0),
    };
    options_t o = {0};
    const char *positional = NULL;
    int rc = s_parse("status", argc, argv, specs, sizeof specs / sizeof *specs, &positional, &o);
    if (rc)
        return rc;
    if (positional)
        return s_usage_error("'status' takes no argument, got '%s'", positional);
    if (!o.farm)
        return s_usage_error("'status' needs --farm ENDPOINT (e.g. tcp://127.0.0.1:5555)");
    sf_secure_client_t curve;
    if ((rc = s_client_keys(&o, &curve)))
        return rc;
    client_config_t c = {.endpoint = o.farm, .curve = &curve, .interrupt = &g_stop};
    return client_status(&c, o.json, stdout);
}

/* stemfarm cancel --farm ENDPOINT RENDER_ID */
static int s_cmd_cancel(int argc, char **argv)
{
    static const opt_spec_t specs[] = {
        OPT("--farm", NULL, OPT_TEXT, farm, 0, 0),
        OPT("--key", NULL, OPT_TEXT, key, 0, 0),
        OPT("--server-key", NULL, OPT_TEXT, server_key, 0, 0),
    };
    options_t o = {0};
    const char *positional = NULL;
    int rc = s_parse("cancel", argc, argv, specs, sizeof specs / sizeof *specs, &positional, &o);
    if (rc)
        return rc;
    if (!o.farm)
        return s_usage_error("'cancel' needs --farm ENDPOINT (e.g. tcp://127.0.0.1:5555)");
    char *end = NULL;
    errno = 0;
    unsigned long id = positional ? strtoul(positional, &end, 10) : 0;
    if (!positional || errno || *end || id < 1 || id > UINT32_MAX || positional[0] == '-')
        return s_usage_error("'cancel' needs the render's number (as 'stemfarm status' shows it), got '%s'",
                             positional ? positional : "");
    sf_secure_client_t curve;
    if ((rc = s_client_keys(&o, &curve)))
        return rc;
    client_config_t c = {.endpoint = o.farm, .curve = &curve, .interrupt = &g_stop};
    return client_cancel(&c, (uint32_t)id);
}

static void s_log_security(void *ctx, bool warning, const char *line)
{
    (void)ctx;
    sf_log(warning ? SF_LOG_WARN : SF_LOG_INFO, "coordinator security", "%s", line);
}

/* Without keys anyone who reaches the port may join as a node or submit a
 * render, which reads and writes files here: so loopback only, unless asked. */
static int s_check_plain_bind(const options_t *o)
{
    if (sf_secure_endpoint_is_loopback(o->bind))
        return EXIT_OK;
    if (!o->insecure) {
        fprintf(stderr,
                "stemfarm: error: refusing to bind '%s' without keys: it is not a loopback address, so any host "
                "that reaches it could join the farm and submit renders; give --key COORDINATOR.key and --allow "
                "DIR (see 'stemfarm keygen'), or --insecure\n",
                o->bind);
        return EXIT_USAGE;
    }
    sf_log(SF_LOG_WARN, "coordinator security",
           "--insecure: '%s' is open to any host that reaches it, unencrypted and unauthenticated", o->bind);
    return EXIT_OK;
}

/* Parses and checks the coordinator's options; security first, so that a
 * refused bind or a bad key file leaves nothing listening. */
static int s_coordinator_options(int argc, char **argv, options_t *o)
{
    static const opt_spec_t specs[] = {
        OPT("--bind", NULL, OPT_TEXT, bind, 0, 0),
        OPT("--node-timeout", NULL, OPT_COUNT, node_timeout_s, 1, 3600),
        OPT("--stuck-timeout", NULL, OPT_COUNT, stuck_timeout_s, 1, 86400),
        OPT("--quarantine-after", NULL, OPT_COUNT, quarantine_after, 1, 1000),
        OPT("--quarantine-time", NULL, OPT_COUNT, quarantine_s, 1, 86400),
        OPT("--state", NULL, OPT_TEXT, state_dir, 0, 0),
        OPT("--drain-timeout", NULL, OPT_COUNT, drain_timeout_s, 1, 86400),
        OPT("--spot-check", NULL, OPT_TEXT, spot_check, 0, 0),
        OPT("--http", NULL, OPT_TEXT, http, 0, 0),
        OPT("--key", NULL, OPT_TEXT, key, 0, 0),
        OPT("--allow", NULL, OPT_LIST, allow, 0, 0),
        OPT("--insecure", NULL, OPT_FLAG, insecure, 0, 0),
        OPT("--config", NULL, OPT_TEXT, config, 0, 0),
    };
    const char *positional = NULL;
    int rc = s_parse("coordinator", argc, argv, specs, sizeof specs / sizeof *specs, &positional, o);
    if (rc)
        return rc;
    if (positional)
        return s_usage_error("'coordinator' takes no file, got '%s'", positional);
    if (!o->bind)
        return s_usage_error("'coordinator' needs --bind ENDPOINT (e.g. tcp://127.0.0.1:5555)");
    if (o->key && o->insecure)
        return s_usage_error("--insecure and --key exclude each other");
    if (o->key && !o->allow.n)
        return s_usage_error("--key needs --allow DIR|FILE.pub: the public keys of the nodes and clients that may "
                             "connect");
    if (!o->key && o->allow.n)
        return s_usage_error("--allow needs --key COORDINATOR.key: the allowlist is checked over CURVE");
    return o->key ? EXIT_OK : s_check_plain_bind(o);
}

/* The state folder: --state, $STEMFARM_STATE_DIR, $XDG_STATE_HOME/stemfarm or
 * ~/.local/state/stemfarm. Journals are on by default: a coordinator that
 * crashes loses nothing. NULL (after a usage message) without any. */
static char *s_state_dir(const options_t *o)
{
    char fallback[PATH_MAX];
    const char *dir = o->state_dir;
    if (!dir && getenv("STEMFARM_STATE_DIR") && *getenv("STEMFARM_STATE_DIR"))
        dir = getenv("STEMFARM_STATE_DIR");
    if (!dir && getenv("XDG_STATE_HOME") && *getenv("XDG_STATE_HOME")) {
        snprintf(fallback, sizeof fallback, "%s/stemfarm", getenv("XDG_STATE_HOME"));
        dir = fallback;
    }
    if (!dir && getenv("HOME") && *getenv("HOME")) {
        snprintf(fallback, sizeof fallback, "%s/.local/state/stemfarm", getenv("HOME"));
        dir = fallback;
    }
    if (!dir) {
        s_usage_error("'coordinator' needs --state DIR (no HOME to keep its journals under)");
        return NULL;
    }
    char *abs = s_absolute(dir);
    if (!abs)
        s_usage_error("bad --state '%s'", dir);
    return abs;
}

/* --spot-check PERCENT (0..100, "2", "0.5", "5%"); default 2 %. */
static int s_spot_fraction(const options_t *o, double *fraction)
{
    *fraction = 0.02;
    if (!o->spot_check)
        return EXIT_OK;
    char *end;
    errno = 0;
    double v = strtod(o->spot_check, &end);
    if (*end == '%')
        end++;
    if (errno || end == o->spot_check || *end || !(v >= 0.0 && v <= 100.0))
        return s_usage_error("--spot-check needs a percentage from 0 to 100, got '%s'", o->spot_check);
    *fraction = v / 100.0;
    return EXIT_OK;
}

static int s_cmd_coordinator(int argc, char **argv)
{
    options_t o = {0};
    int rc = s_coordinator_options(argc, argv, &o);
    if (rc)
        return rc;
    double spot_fraction;
    if ((rc = s_spot_fraction(&o, &spot_fraction)))
        return rc;
    if ((rc = s_use_config(o.config)))
        return rc;
    char *state_dir = s_state_dir(&o);
    if (!state_dir)
        return EXIT_USAGE;
    sf_err_t err = {0};
    void *ctx = NULL;
    sf_secure_server_t *srv = NULL;
    if (o.key) {
        /* The ZAP handler must live in the ROUTER's context: ours, shared. */
        sf_secure_keypair_t keys;
        rc = sf_secure_load_keypair(o.key, &keys, &err) ? EXIT_USAGE : EXIT_OK;
        if (rc == EXIT_OK && !(ctx = zmq_ctx_new())) {
            snprintf(err.msg, sizeof err.msg, "cannot create a ZeroMQ context: %s", zmq_strerror(zmq_errno()));
            rc = EXIT_FARM;
        }
        if (rc == EXIT_OK &&
            sf_secure_server_new(ctx, &keys, o.allow.items, o.allow.n, s_log_security, NULL, &srv, &err))
            rc = err.code == SF_E_INPUT || err.code == SF_E_IO ? EXIT_USAGE : EXIT_FARM;
        memset(&keys, 0, sizeof keys);
        if (rc) {
            fprintf(stderr, "stemfarm: error: %s\n", err.msg);
            goto term_ctx;
        }
    }
    dispatch_config_t cfg = {.bind = o.bind,
                             .zmq_context = ctx,
                             .secure = srv,
                             .pathmap = s_pathmap,
                             .node_timeout_ms = o.node_timeout_s * 1000,
                             .stuck_timeout_ms = o.stuck_timeout_s * 1000,
                             .quarantine_after = o.quarantine_after,
                             .quarantine_ms = o.quarantine_s * 1000,
                             .spot_check = spot_fraction,
                             .http_bind = o.http && !strcmp(o.http, "off") ? NULL
                                          : o.http                         ? o.http
                                                                           : MONITOR_DEFAULT_BIND,
                             .http_required = o.http != NULL,
                             .state_dir = state_dir,
                             .drain_timeout_ms = o.drain_timeout_s * 1000,
                             .drain = &g_stop,
                             .stop = &g_hard_stop};
    dispatch_t *d = NULL;
    if (dispatch_new(&cfg, &d, &err)) {
        fprintf(stderr, "stemfarm: error: %s\n", err.msg);
        rc = err.code == SF_E_INPUT ? EXIT_USAGE : EXIT_FARM;
        goto destroy_server;
    }
    if (srv)
        sf_log(SF_LOG_INFO, "coordinator", "listening on %s (CURVE; %zu key%s in the allowlist); journals in '%s'",
               o.bind, sf_secure_server_n_allowed(srv), sf_secure_server_n_allowed(srv) == 1 ? "" : "s", state_dir);
    else
        sf_log(SF_LOG_INFO, "coordinator", "listening on %s (without CURVE); journals in '%s'", o.bind, state_dir);
    sf_rc r = dispatch_run(d, &err);
    dispatch_destroy(&d);
    if (r) {
        fprintf(stderr, "stemfarm: error: %s\n", err.msg);
        rc = EXIT_FARM;
    } else {
        sf_log(SF_LOG_INFO, "coordinator", "stopped");
    }
destroy_server:
    sf_secure_server_destroy(&srv); /* after the ROUTER is closed, before the context ends */
term_ctx:
    if (ctx)
        zmq_ctx_term(ctx);
    sf_free(state_dir);
    return rc;
}

/* ---- keygen ------------------------------------------------------------ */

static int s_cmd_keygen(int argc, char **argv)
{
    static const opt_spec_t specs[] = {OPT("--dir", NULL, OPT_TEXT, dir, 0, 0)};
    options_t o = {0};
    const char *name = NULL;
    int rc = s_parse("keygen", argc, argv, specs, sizeof specs / sizeof *specs, &name, &o);
    if (rc)
        return rc;
    if (!name)
        return s_usage_error("'keygen' needs a NAME (e.g. 'stemfarm keygen node1' writes node1.key and node1.pub)");
    sf_secure_keypair_t keys;
    char *key_path = NULL, *pub_path = NULL;
    sf_err_t err = {0};
    if (sf_secure_keygen(o.dir, name, &keys, &key_path, &pub_path, &err)) {
        fprintf(stderr, "stemfarm: error: %s\n", err.msg);
        return err.code == SF_E_INPUT || err.code == SF_E_IO ? EXIT_USAGE : EXIT_FAILED;
    }
    printf("%s: key pair (secret, mode 0600): keep it on this host\n"
           "%s: public key: for the coordinator's --allow, or --server-key if this is the coordinator\n"
           "public key: %s\n",
           key_path, pub_path, keys.public_key);
    memset(&keys, 0, sizeof keys);
    sf_free(key_path);
    sf_free(pub_path);
    return EXIT_OK;
}

/* ---- check-path -------------------------------------------------------- */

/* Prints "PATH -> MAPPED: ok", or the reason this machine cannot read it.
 * Returns 1 when it cannot. */
static int s_check_path(const char *path)
{
    char *mapped = NULL, *real = NULL;
    sf_err_t err = {0};
    int bad = 1;
    struct stat st;
    char reason[256];
    if (sf_pathmap_apply(s_pathmap, path, &mapped, &err)) {
        printf("%s -> (not mapped): %s\n", path, err.msg);
    } else if (stat(mapped, &st) != 0) {
        snprintf(reason, sizeof reason, "%s", errno == ENOENT || errno == ENOTDIR ? "not found" : strerror(errno));
        reason[0] = (char)tolower((unsigned char)reason[0]);
        printf("%s -> %s: %s\n", path, mapped, reason);
    } else if (sf_pathmap_check_root(s_pathmap, mapped, &real, &err)) {
        printf("%s -> %s: %s\n", path, mapped, err.msg);
    } else if (access(real, R_OK) != 0) {
        snprintf(reason, sizeof reason, "%s", strerror(errno));
        reason[0] = (char)tolower((unsigned char)reason[0]);
        printf("%s -> %s: not readable: %s\n", path, mapped, reason);
    } else {
        printf("%s -> %s: ok\n", path, mapped);
        bad = 0;
    }
    sf_free(mapped);
    sf_free(real);
    return bad;
}

static int s_cmd_check_path(int argc, char **argv)
{
    const char *config = NULL;
    int n_paths = 0, dashdash = 0;
    for (int i = 0; i < argc; i++) {
        if (!dashdash && !strcmp(argv[i], "--config")) {
            if (++i >= argc)
                return s_usage_error("--config needs a value");
            config = argv[i];
        } else if (!dashdash && !strcmp(argv[i], "--")) {
            dashdash = 1;
        } else if (!dashdash && argv[i][0] == '-' && argv[i][1]) {
            return s_usage_error("unknown option '%s' for 'check-path'", argv[i]);
        } else {
            n_paths++;
        }
    }
    if (!config)
        return s_usage_error("'check-path' needs --config FILE");
    if (!n_paths)
        return s_usage_error("'check-path' needs at least one path");
    int rc = s_use_config(config);
    if (rc)
        return rc;
    int n_bad = 0;
    dashdash = 0;
    for (int i = 0; i < argc; i++) {
        if (!dashdash && !strcmp(argv[i], "--config"))
            i++;
        else if (!dashdash && !strcmp(argv[i], "--"))
            dashdash = 1;
        else
            n_bad += s_check_path(argv[i]);
    }
    return n_bad ? EXIT_FAILED : EXIT_OK;
}

int main(int argc, char **argv)
{
    sf_alloc_keep_freed_memory();
    s_install_signals();
    if (argc < 2)
        return s_usage_error("needs a command");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(s_help, stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("stemfarm %s\n", STEMFARM_VERSION);
        return EXIT_OK;
    }
    if (getenv("STEMFARM_LOG") && strcmp(getenv("STEMFARM_LOG"), "debug") == 0)
        sf_log_set_level(SF_LOG_DEBUG);
    else if (strcmp(cmd, "coordinator") != 0)
        sf_log_set_level(SF_LOG_WARN); /* a render speaks through its progress and summary */
    if (strcmp(cmd, "render") == 0)
        return s_cmd_render(argc - 2, argv + 2);
    if (strcmp(cmd, "plan") == 0)
        return s_cmd_plan(argc - 2, argv + 2);
    if (strcmp(cmd, "batch") == 0)
        return s_cmd_batch(argc - 2, argv + 2);
    if (strcmp(cmd, "validate") == 0)
        return s_cmd_validate(argc - 2, argv + 2);
    if (strcmp(cmd, "verify") == 0)
        return s_cmd_verify(argc - 2, argv + 2);
    if (strcmp(cmd, "coordinator") == 0)
        return s_cmd_coordinator(argc - 2, argv + 2);
    if (strcmp(cmd, "status") == 0)
        return s_cmd_status(argc - 2, argv + 2);
    if (strcmp(cmd, "cancel") == 0)
        return s_cmd_cancel(argc - 2, argv + 2);
    if (strcmp(cmd, "keygen") == 0)
        return s_cmd_keygen(argc - 2, argv + 2);
    if (strcmp(cmd, "check-path") == 0)
        return s_cmd_check_path(argc - 2, argv + 2);
    return s_usage_error("unknown command '%s'", cmd);
}
