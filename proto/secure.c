/* secure.c -- CURVE key files, the ZAP handler, the client handshake (see sf/secure.h).
 *
 * Invariants:
 * - the ZAP REP socket is bound before sf_secure_server_new returns and
 *   closed only after the ROUTER it serves is (sf_secure_server_destroy's
 *   contract), so libzmq never meets a CURVE handshake without a handler;
 *   ZMQ_ZAP_ENFORCE_DOMAIN makes that fail closed as well, where libzmq has it;
 * - after pthread_create the ZAP and monitor sockets belong to the handler
 *   thread only (the creation is the full barrier zmq asks for a move);
 * - a key in memory is always 40 Z85 characters that decode.
 */
#include "sf/secure.h"

#include "sf/alloc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_ZAP_ENDPOINT    "inproc://zeromq.zap.01" /* RFC 27 */
#define S_ZAP_DOMAIN      "stemfarm"
#define S_MAX_FILE_BYTES  65536
#define S_MAX_NAME        100   /* keygen NAME */
#define S_POLL_MS         100   /* how often stop flags are looked at */
#define S_HANDSHAKE_TRIES 3     /* closed handshakes in a row before a client gives up */
#define S_LOG_EVERY_MS    10000 /* one line per kind of failed handshake at most this often */

/* A draft option in libzmq 4.3's header (ZMQ_BUILD_DRAFT_API), present in
 * the library; set by number and allowed to fail, since the handler being
 * bound first already keeps unchecked peers out. */
#ifdef ZMQ_ZAP_ENFORCE_DOMAIN
#define S_ZAP_ENFORCE_DOMAIN ZMQ_ZAP_ENFORCE_DOMAIN
#else
#define S_ZAP_ENFORCE_DOMAIN 93
#endif

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- key files ------------------------------------------------------------ */

static bool s_key_ok(const char *text, size_t n)
{
    if (n != SF_SECURE_KEY_CHARS)
        return false;
    char z85[SF_SECURE_KEY_CHARS + 1];
    memcpy(z85, text, n);
    z85[n] = '\0';
    uint8_t bin[32];
    return zmq_z85_decode(bin, z85) != NULL;
}

typedef struct {
    unsigned mode; /* permission bits of the file */
    bool has_public, has_secret;
    char public_key[SF_SECURE_KEY_CHARS + 1];
    char secret_key[SF_SECURE_KEY_CHARS + 1];
} s_keyfile_t;

static char *s_trim(char *s, char *end)
{
    while (s < end && isspace((unsigned char)*s))
        s++;
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    *end = '\0';
    return s;
}

/* One line, NUL-terminated in place. Blank lines, '#' comments and zcert's
 * section lines pass; `metadata` keys are not ours and are skipped. */
static sf_rc s_parse_line(const char *path, unsigned line_no, char *line, bool *in_metadata, s_keyfile_t *kf,
                          sf_err_t *err)
{
    char *text = s_trim(line, line + strlen(line));
    if (!*text || *text == '#')
        return SF_OK;
    char *eq = strchr(text, '='); /* the first: '=' is a Z85 character */
    if (!eq) {
        if (strcmp(text, "metadata") == 0 || strcmp(text, "curve") == 0) {
            *in_metadata = strcmp(text, "metadata") == 0;
            return SF_OK;
        }
        return SF_ERR(err, SF_E_INPUT, "'%s': line %u: expected 'public-key = \"...\"' or 'secret-key = \"...\"'", path,
                      line_no);
    }
    char *name = s_trim(text, eq);
    char *value = s_trim(eq + 1, eq + 1 + strlen(eq + 1));
    if (*in_metadata)
        return SF_OK;
    size_t n = strlen(value);
    if (n && *value == '"') {
        if (n < 2 || value[n - 1] != '"')
            return SF_ERR(err, SF_E_INPUT, "'%s': line %u: unterminated quote", path, line_no);
        value++;
        n -= 2;
    }
    bool is_public = strcmp(name, "public-key") == 0;
    if (!is_public && strcmp(name, "secret-key") != 0)
        return SF_ERR(err, SF_E_INPUT, "'%s': line %u: unknown key '%.64s' (expected public-key or secret-key)", path,
                      line_no, name);
    bool *has = is_public ? &kf->has_public : &kf->has_secret;
    if (*has)
        return SF_ERR(err, SF_E_INPUT, "'%s': line %u: %s given twice", path, line_no, name);
    if (!s_key_ok(value, n))
        return SF_ERR(err, SF_E_INPUT, "'%s': line %u: %s is not %d Z85 characters", path, line_no, name,
                      SF_SECURE_KEY_CHARS);
    char *dst = is_public ? kf->public_key : kf->secret_key;
    memcpy(dst, value, n);
    dst[n] = '\0';
    *has = true;
    return SF_OK;
}

static sf_rc s_parse(const char *path, char *text, size_t n_bytes, s_keyfile_t *kf, sf_err_t *err)
{
    if (memchr(text, '\0', n_bytes))
        return SF_ERR(err, SF_E_INPUT, "'%s': not a text file", path);
    bool in_metadata = false;
    unsigned line_no = 1;
    for (char *line = text; line && *line; line_no++) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        sf_rc rc = s_parse_line(path, line_no, line, &in_metadata, kf, err);
        if (rc)
            return rc;
        line = nl ? nl + 1 : NULL;
    }
    return SF_OK;
}

/* Reads and parses a key file. */
static sf_rc s_read_keyfile(const char *path, s_keyfile_t *kf, sf_err_t *err)
{
    memset(kf, 0, sizeof *kf);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return SF_ERR(err, SF_E_IO, "'%s': cannot open: %s", path, strerror(errno));
    sf_rc rc = SF_OK;
    char *text = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = SF_ERR(err, SF_E_IO, "'%s': cannot read: %s", path, strerror(errno));
        goto close_fd;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = SF_ERR(err, SF_E_INPUT, "'%s': not a key file (not a regular file)", path);
        goto close_fd;
    }
    kf->mode = (unsigned)(st.st_mode & 07777); /* of the open file, so the file read is the file checked */
    if (st.st_size > S_MAX_FILE_BYTES) {
        rc = SF_ERR(err, SF_E_INPUT, "'%s': not a key file (larger than %d KiB)", path, S_MAX_FILE_BYTES / 1024);
        goto close_fd;
    }
    text = sf_malloc((size_t)st.st_size + 1);
    if (!text) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
        goto close_fd;
    }
    size_t n = 0;
    while (n < (size_t)st.st_size) {
        ssize_t got = read(fd, text + n, (size_t)st.st_size - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = SF_ERR(err, SF_E_IO, "'%s': cannot read: %s", path, strerror(errno));
            goto free_text;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    text[n] = '\0';
    rc = s_parse(path, text, n, kf, err);
free_text:
    sf_free(text);
close_fd:
    close(fd);
    return rc;
}

sf_rc sf_secure_load_keypair(const char *path, sf_secure_keypair_t *out, sf_err_t *err)
{
    memset(out, 0, sizeof *out);
    s_keyfile_t kf;
    sf_rc rc = s_read_keyfile(path, &kf, err);
    if (rc)
        return rc;
    if (!kf.has_secret)
        return SF_ERR(err, SF_E_INPUT, "'%s': no secret-key (a .pub file? give the NAME.key that keygen wrote)", path);
    if (kf.mode & 077)
        return SF_ERR(err, SF_E_INPUT,
                      "'%s': permissions %04o are too open: a secret key must be for its owner only (chmod 600 '%s')",
                      path, kf.mode, path);
    if (!kf.has_public)
        return SF_ERR(err, SF_E_INPUT, "'%s': no public-key", path);
    char derived[SF_SECURE_KEY_CHARS + 1];
    if (zmq_curve_public(derived, kf.secret_key) != 0 || strcmp(derived, kf.public_key) != 0)
        return SF_ERR(err, SF_E_INPUT, "'%s': the public-key is not the one of the secret-key", path);
    memcpy(out->public_key, kf.public_key, sizeof out->public_key);
    memcpy(out->secret_key, kf.secret_key, sizeof out->secret_key);
    return SF_OK;
}

sf_rc sf_secure_load_public(const char *path, char out[SF_SECURE_KEY_CHARS + 1], sf_err_t *err)
{
    out[0] = '\0';
    s_keyfile_t kf;
    sf_rc rc = s_read_keyfile(path, &kf, err);
    if (rc)
        return rc;
    if (kf.has_secret)
        return SF_ERR(err, SF_E_INPUT, "'%s': holds a secret key: give its public half (the .pub file)", path);
    if (!kf.has_public)
        return SF_ERR(err, SF_E_INPUT, "'%s': no public-key", path);
    memcpy(out, kf.public_key, SF_SECURE_KEY_CHARS + 1);
    return SF_OK;
}

static char *s_join(const char *dir, const char *name, const char *ext)
{
    bool has_dir = dir && *dir;
    size_t n_dir = has_dir ? strlen(dir) : 0;
    bool slash = has_dir && dir[n_dir - 1] != '/';
    size_t n = n_dir + 1 + strlen(name) + strlen(ext) + 1;
    char *path = sf_malloc(n);
    if (path)
        snprintf(path, n, "%s%s%s%s", has_dir ? dir : "", slash ? "/" : "", name, ext);
    return path;
}

static int s_write_all(int fd, const char *text)
{
    size_t n = strlen(text), done = 0;
    while (done < n) {
        ssize_t put = write(fd, text + done, n - done);
        if (put < 0 && errno == EINTR)
            continue;
        if (put < 0)
            return -1;
        done += (size_t)put;
    }
    return 0;
}

/* Creates `path` (never replacing anything) with `text`; on failure
 * nothing is left at `path`. */
static sf_rc s_create(const char *path, mode_t mode, const char *text, sf_err_t *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, mode);
    if (fd < 0 && errno == EEXIST)
        return SF_ERR(err, SF_E_INPUT, "'%s' exists: keygen never overwrites a key", path);
    if (fd < 0)
        return SF_ERR(err, SF_E_IO, "cannot create '%s': %s", path, strerror(errno));
    int failed = s_write_all(fd, text) || fsync(fd);
    int e = errno;
    failed |= close(fd) != 0;
    if (failed) {
        unlink(path);
        return SF_ERR(err, SF_E_IO, "cannot write '%s': %s", path, strerror(e ? e : errno));
    }
    return SF_OK;
}

static bool s_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > S_MAX_NAME || name[0] == '.')
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
            return false;
    return true;
}

sf_rc sf_secure_keygen(const char *dir, const char *name, sf_secure_keypair_t *out, char **key_path, char **pub_path,
                       sf_err_t *err)
{
    memset(out, 0, sizeof *out);
    if (key_path)
        *key_path = NULL;
    if (pub_path)
        *pub_path = NULL;
    if (!s_name_ok(name))
        return SF_ERR(err, SF_E_INPUT,
                      "bad key name '%s': use letters, digits, '.', '_' and '-' (not first), at most %d characters",
                      name, S_MAX_NAME);
    char *kp = s_join(dir, name, ".key"), *pp = s_join(dir, name, ".pub");
    sf_rc rc = SF_OK;
    if (!kp || !pp) {
        rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
        goto free_paths;
    }
    /* A missing key folder is made private; its parent must exist. */
    struct stat st;
    if (dir && *dir && stat(dir, &st) != 0 && (errno != ENOENT || mkdir(dir, 0700) != 0)) {
        rc = SF_ERR(err, SF_E_IO, "cannot create the folder '%s': %s", dir, strerror(errno));
        goto free_paths;
    }
    /* Both checked first, so an existing .pub leaves no new .key behind. */
    const char *exists = lstat(kp, &st) == 0 ? kp : lstat(pp, &st) == 0 ? pp : NULL;
    if (exists) {
        rc = SF_ERR(err, SF_E_INPUT, "'%s' exists: keygen never overwrites a key", exists);
        goto free_paths;
    }
    if (zmq_curve_keypair(out->public_key, out->secret_key) != 0) {
        rc = SF_ERR(err, SF_E_INTERNAL, "cannot make a CURVE key pair: %s (libzmq without CURVE?)",
                    zmq_strerror(zmq_errno()));
        goto free_paths;
    }
    char text[512];
    snprintf(text, sizeof text,
             "# stemfarm CURVE key pair '%s' (stemfarm keygen). SECRET: keep it mode 0600 on this host only.\n"
             "public-key = \"%s\"\n"
             "secret-key = \"%s\"\n",
             name, out->public_key, out->secret_key);
    rc = s_create(kp, 0600, text, err);
    if (rc)
        goto free_paths;
    snprintf(text, sizeof text,
             "# stemfarm CURVE public key '%s' (stemfarm keygen): for the coordinator's --allow, or --server-key.\n"
             "public-key = \"%s\"\n",
             name, out->public_key);
    rc = s_create(pp, 0644, text, err);
    if (rc) {
        unlink(kp);
        goto free_paths;
    }
    if (key_path) {
        *key_path = kp;
        kp = NULL;
    }
    if (pub_path) {
        *pub_path = pp;
        pp = NULL;
    }
free_paths:
    sf_free(kp);
    sf_free(pp);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

/* ---- clients ---------------------------------------------------------------- */

static const char *s_or_env(const char *given, const char *var)
{
    if (given && *given)
        return given;
    const char *env = getenv(var);
    return env && *env ? env : NULL;
}

sf_rc sf_secure_client_load(const char *key_path, const char *server_key_path, sf_secure_client_t *out, sf_err_t *err)
{
    memset(out, 0, sizeof *out);
    const char *kp = s_or_env(key_path, "STEMFARM_KEY");
    const char *sp = s_or_env(server_key_path, "STEMFARM_SERVER_KEY");
    if (!kp && !sp)
        return SF_OK;
    if (!sp)
        return SF_ERR(err, SF_E_INPUT,
                      "a key (--key or STEMFARM_KEY) needs the coordinator's public key too "
                      "(--server-key FILE.pub or STEMFARM_SERVER_KEY)");
    if (!kp)
        return SF_ERR(err, SF_E_INPUT,
                      "the coordinator's public key (--server-key or STEMFARM_SERVER_KEY) needs this side's own key "
                      "too (--key FILE.key or STEMFARM_KEY)");
    sf_rc rc = sf_secure_load_keypair(kp, &out->own, err);
    if (rc == SF_OK)
        rc = sf_secure_load_public(sp, out->server_key, err);
    if (rc)
        memset(out, 0, sizeof *out);
    else
        out->enabled = true;
    return rc;
}

/* One monitor event: [6 bytes: uint16 event, uint32 value][endpoint]. */
static bool s_read_event(void *monitor, uint16_t *event, uint32_t *value)
{
    zmq_msg_t head;
    zmq_msg_init(&head);
    if (zmq_msg_recv(&head, monitor, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&head);
        return false;
    }
    bool ok = zmq_msg_size(&head) == 6;
    if (ok) {
        memcpy(event, zmq_msg_data(&head), 2);
        memcpy(value, (const uint8_t *)zmq_msg_data(&head) + 2, 4);
    }
    int more = zmq_msg_more(&head);
    zmq_msg_close(&head);
    while (more) { /* the endpoint: not needed */
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, monitor, 0) < 0)
            more = 0;
        else
            more = zmq_msg_more(&part);
        zmq_msg_close(&part);
    }
    return ok;
}

typedef struct {
    const char *endpoint;
    const sf_secure_client_t *keys;
    const char *who;
    int n_closed;   /* handshakes the peer closed, in a row */
    bool connected; /* a TCP/IPC connection was made at least once */
} s_watch_t;

/* SF_OK when the event settles nothing, 1 when the handshake succeeded,
 * SF_E_FARM when it settled a failure. */
static int s_on_client_event(s_watch_t *w, uint16_t event, uint32_t value, sf_err_t *err)
{
    bool keyed = w->keys && w->keys->enabled;
    switch (event) {
    case ZMQ_EVENT_CONNECTED: w->connected = true; return SF_OK;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: return 1;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        if (value == 400)
            return SF_ERR(err, SF_E_FARM,
                          "the coordinator at '%s' refused this %s's key '%s': it is not in the coordinator's "
                          "allowlist (--allow)",
                          w->endpoint, w->who, w->keys->own.public_key);
        return SF_ERR(err, SF_E_FARM, "the coordinator at '%s' could not check this %s's key (ZAP status %u)",
                      w->endpoint, w->who, value);
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        /* Which side notices a mismatch first is a race: the server may
         * close instead (NO_DETAIL below). */
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH && keyed)
            return SF_ERR(err, SF_E_FARM,
                          "the coordinator at '%s' does not use CURVE: give this %s no --key and --server-key "
                          "(nor STEMFARM_KEY, STEMFARM_SERVER_KEY)",
                          w->endpoint, w->who);
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
            return SF_ERR(err, SF_E_FARM,
                          "the coordinator at '%s' requires CURVE keys: give this %s --key and --server-key (see "
                          "'stemfarm keygen')",
                          w->endpoint, w->who);
        return SF_ERR(err, SF_E_FARM, "the handshake with the coordinator at '%s' failed: protocol error 0x%x",
                      w->endpoint, value);
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        /* What a CURVE server does to a client without keys or with another
         * server's public key: it closes the connection, saying nothing. */
        if (++w->n_closed < S_HANDSHAKE_TRIES)
            return SF_OK;
        if (keyed)
            return SF_ERR(err, SF_E_FARM,
                          "the coordinator at '%s' closed the CURVE handshake %d times: is --server-key (or "
                          "STEMFARM_SERVER_KEY) its public key?",
                          w->endpoint, S_HANDSHAKE_TRIES);
        return SF_ERR(err, SF_E_FARM,
                      "the coordinator at '%s' closed the handshake %d times: it probably requires CURVE keys "
                      "(--key and --server-key, see 'stemfarm keygen')",
                      w->endpoint, S_HANDSHAKE_TRIES);
    default: return SF_OK;
    }
}

static sf_rc s_wait_handshake(void *monitor, s_watch_t *w, int timeout_ms, atomic_int *stop, sf_err_t *err)
{
    int64_t deadline = s_now_ms() + timeout_ms;
    for (;;) {
        if (stop && atomic_load(stop))
            return SF_OK;
        int64_t left = deadline - s_now_ms();
        if (left <= 0)
            break;
        zmq_pollitem_t item = {.socket = monitor, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, left < S_POLL_MS ? (long)left : S_POLL_MS) < 0 && zmq_errno() != EINTR)
            return SF_ERR(err, SF_E_FARM, "cannot watch the connection to '%s': %s", w->endpoint,
                          zmq_strerror(zmq_errno()));
        uint16_t event;
        uint32_t value;
        while (s_read_event(monitor, &event, &value)) {
            int r = s_on_client_event(w, event, value, err);
            if (r)
                return r > 0 ? SF_OK : r;
        }
    }
    if (w->connected)
        return SF_ERR(err, SF_E_FARM, "no handshake with the coordinator at '%s' within %.1f s", w->endpoint,
                      timeout_ms / 1000.0);
    return SF_ERR(err, SF_E_FARM, "the coordinator at '%s' did not answer within %.1f s (is it running?)", w->endpoint,
                  timeout_ms / 1000.0);
}

sf_rc sf_secure_connect(void *zmq_context, void *sock, const char *endpoint, const sf_secure_client_t *keys,
                        const char *who, int timeout_ms, atomic_int *stop, sf_err_t *err)
{
    if (keys && keys->enabled &&
        (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, keys->server_key, SF_SECURE_KEY_CHARS) ||
         zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, keys->own.public_key, SF_SECURE_KEY_CHARS) ||
         zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, keys->own.secret_key, SF_SECURE_KEY_CHARS)))
        return SF_ERR(err, SF_E_INTERNAL, "cannot set the CURVE keys: %s", zmq_strerror(zmq_errno()));
    /* inproc:// has no handshake, and no events to wait for. */
    bool watch = strncmp(endpoint, "inproc://", 9) != 0;
    void *monitor = NULL;
    char monitor_ep[64];
    snprintf(monitor_ep, sizeof monitor_ep, "inproc://sf-secure-client-%p", sock);
    const int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                       ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    sf_rc rc = SF_OK;
    /* The reader connects before the socket does, so no event is lost. */
    int linger = 0;
    if (watch &&
        (zmq_socket_monitor(sock, monitor_ep, events) != 0 || !(monitor = zmq_socket(zmq_context, ZMQ_PAIR)) ||
         zmq_setsockopt(monitor, ZMQ_LINGER, &linger, sizeof linger) || zmq_connect(monitor, monitor_ep) != 0)) {
        rc = SF_ERR(err, SF_E_INTERNAL, "cannot watch the connection to '%s': %s", endpoint, zmq_strerror(zmq_errno()));
        goto close_monitor;
    }
    if (zmq_connect(sock, endpoint) != 0) {
        rc = SF_ERR(err, SF_E_INPUT, "cannot connect to '%s': %s", endpoint, zmq_strerror(zmq_errno()));
        goto close_monitor;
    }
    if (watch) {
        s_watch_t w = {.endpoint = endpoint, .keys = keys, .who = who};
        rc = s_wait_handshake(monitor, &w, timeout_ms, stop, err);
    }
close_monitor:
    if (watch)
        zmq_socket_monitor(sock, NULL, 0);
    if (monitor)
        zmq_close(monitor);
    return rc;
}

/* ---- the coordinator -------------------------------------------------------- */

bool sf_secure_endpoint_is_loopback(const char *endpoint)
{
    if (strncmp(endpoint, "ipc://", 6) == 0 || strncmp(endpoint, "inproc://", 9) == 0)
        return true;
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return false;
    const char *host = endpoint + 6, *colon = strrchr(host, ':');
    if (!colon || colon == host)
        return false;
    size_t n = (size_t)(colon - host);
    if ((n == 9 && strncmp(host, "localhost", 9) == 0) || (n == 5 && strncmp(host, "[::1]", 5) == 0))
        return true;
    /* 127.0.0.0/8: four dot-separated numbers up to 255, the first 127. */
    unsigned part[4] = {0}, n_parts = 0, n_digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (host[i] == '.' && n_digits && n_parts < 3) {
            n_parts++;
            n_digits = 0;
        } else if (isdigit((unsigned char)host[i]) && n_digits < 3) {
            part[n_parts] = part[n_parts] * 10 + (unsigned)(host[i] - '0');
            n_digits++;
        } else {
            return false;
        }
    }
    if (n_parts != 3 || !n_digits)
        return false;
    for (int i = 0; i < 4; i++)
        if (part[i] > 255)
            return false;
    return part[0] == 127;
}

typedef struct {
    uint8_t key[32];
    char name[64]; /* the file's name without .pub: the ZAP user id */
} s_allowed_t;

enum { S_FAIL_NO_KEYS, S_FAIL_CRYPTO, S_FAIL_OTHER, S_N_FAIL_KINDS };

struct sf_secure_server {
    void *ctx;
    sf_secure_keypair_t keys;
    s_allowed_t *allowed;
    size_t n_allowed, cap_allowed;
    void *zap;     /* REP on S_ZAP_ENDPOINT: the handler thread's */
    void *monitor; /* PAIR reading the ROUTER's monitor: the handler thread's */
    char monitor_ep[64];
    pthread_t thread;
    bool started;
    atomic_int stop;
    sf_secure_log_fn log;
    void *log_ctx;
    struct {
        int64_t last_ms;
        unsigned suppressed;
    } limit[S_N_FAIL_KINDS]; /* handler thread only */
};

static sf_rc s_allow_file(sf_secure_server_t *srv, const char *path, sf_err_t *err)
{
    char z85[SF_SECURE_KEY_CHARS + 1];
    sf_rc rc = sf_secure_load_public(path, z85, err);
    if (rc)
        return rc;
    uint8_t key[32];
    zmq_z85_decode(key, z85);
    for (size_t i = 0; i < srv->n_allowed; i++)
        if (memcmp(srv->allowed[i].key, key, 32) == 0)
            return SF_OK;
    if (srv->n_allowed == srv->cap_allowed) {
        size_t cap = srv->cap_allowed ? srv->cap_allowed * 2 : 16;
        s_allowed_t *grown = sf_realloc(srv->allowed, cap * sizeof *grown);
        if (!grown)
            return SF_ERR(err, SF_E_NOMEM, "out of memory");
        srv->allowed = grown;
        srv->cap_allowed = cap;
    }
    s_allowed_t *a = &srv->allowed[srv->n_allowed++];
    memcpy(a->key, key, 32);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".pub") == 0)
        n -= 4;
    snprintf(a->name, sizeof a->name, "%.*s", (int)(n < sizeof a->name ? n : sizeof a->name - 1), base);
    return SF_OK;
}

static int s_cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every *.pub in the folder, in name order (so errors are reproducible). */
static sf_rc s_allow_dir(sf_secure_server_t *srv, const char *dir, sf_err_t *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return SF_ERR(err, SF_E_IO, "'%s': cannot open: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n_names = 0, cap = 0;
    sf_rc rc = SF_OK;
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || n <= 4 || strcmp(e->d_name + n - 4, ".pub") != 0)
            continue;
        if (n_names == cap) {
            cap = cap ? cap * 2 : 16;
            char **grown = sf_realloc(names, cap * sizeof *grown);
            if (!grown) {
                rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
                goto free_names;
            }
            names = grown;
        }
        char *path = s_join(dir, e->d_name, "");
        if (!path) {
            rc = SF_ERR(err, SF_E_NOMEM, "out of memory");
            goto free_names;
        }
        names[n_names++] = path;
    }
    if (!n_names) {
        rc = SF_ERR(err, SF_E_INPUT, "'%s': no *.pub files in the folder (the allowlist would let nobody in)", dir);
        goto free_names;
    }
    qsort(names, n_names, sizeof *names, s_cmp_names);
    for (size_t i = 0; i < n_names && rc == SF_OK; i++)
        rc = s_allow_file(srv, names[i], err);
free_names:
    for (size_t i = 0; i < n_names; i++)
        sf_free(names[i]);
    sf_free(names);
    closedir(d);
    return rc;
}

/* Printable ASCII only, so a peer cannot forge log lines. */
static void s_printable(char *dst, size_t cap, const void *src, size_t n)
{
    const unsigned char *s = src;
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++)
        dst[k++] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
    dst[k] = '\0';
}

static bool s_frame_is(zmq_msg_t *m, const char *text)
{
    return zmq_msg_size(m) == strlen(text) && memcmp(zmq_msg_data(m), text, strlen(text)) == 0;
}

static void s_zap_reply(void *zap, zmq_msg_t *request_id, const char *status, const char *text, const char *user)
{
    zmq_send(zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(zap, request_id ? zmq_msg_data(request_id) : "", request_id ? zmq_msg_size(request_id) : 0, ZMQ_SNDMORE);
    zmq_send(zap, status, strlen(status), ZMQ_SNDMORE);
    zmq_send(zap, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(zap, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(zap, "", 0, 0);
}

/* One request (RFC 27): version, request id, domain, address, identity,
 * mechanism, then for CURVE the client's 32-byte public key. */
static void s_zap_answer(sf_secure_server_t *srv)
{
    enum { N_FRAMES = 8 };
    zmq_msg_t f[N_FRAMES];
    int n = 0, more = 1;
    zmq_msg_t extra;
    while (more) {
        zmq_msg_t *m = n < N_FRAMES ? &f[n] : &extra; /* frames past N_FRAMES are read and dropped */
        zmq_msg_init(m);
        if (zmq_msg_recv(m, srv->zap, 0) < 0) {
            zmq_msg_close(m);
            break;
        }
        more = zmq_msg_more(m);
        if (m == &extra)
            zmq_msg_close(m);
        else
            n++;
    }
    char address[64] = "?", line[256];
    if (n >= 4)
        s_printable(address, sizeof address, zmq_msg_data(&f[3]), zmq_msg_size(&f[3]));
    if (n < 6 || !s_frame_is(&f[0], "1.0")) {
        s_zap_reply(srv->zap, n >= 2 ? &f[1] : NULL, "500", "malformed ZAP request", "");
    } else if (!s_frame_is(&f[2], S_ZAP_DOMAIN) || !s_frame_is(&f[5], "CURVE") || n != 7 || zmq_msg_size(&f[6]) != 32) {
        s_zap_reply(srv->zap, &f[1], "400", "CURVE in domain " S_ZAP_DOMAIN " only", "");
        snprintf(line, sizeof line, "refused %s: not a CURVE client", address);
        srv->log(srv->log_ctx, true, line);
    } else {
        const s_allowed_t *a = NULL;
        for (size_t i = 0; i < srv->n_allowed && !a; i++)
            if (memcmp(srv->allowed[i].key, zmq_msg_data(&f[6]), 32) == 0)
                a = &srv->allowed[i];
        char z85[SF_SECURE_KEY_CHARS + 1];
        zmq_z85_encode(z85, zmq_msg_data(&f[6]), 32);
        if (a) {
            s_zap_reply(srv->zap, &f[1], "200", "OK", a->name);
            snprintf(line, sizeof line, "accepted %s as '%s'", address, a->name);
            srv->log(srv->log_ctx, false, line);
        } else {
            s_zap_reply(srv->zap, &f[1], "400", "key not in the allowlist", "");
            snprintf(line, sizeof line, "refused %s: key '%s' is not in the allowlist", address, z85);
            srv->log(srv->log_ctx, true, line);
        }
    }
    for (int i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
}

/* A failed handshake on the ROUTER: the peer's address is not in the event,
 * so these lines say what kind of peer it was, at most one a kind per 10 s. */
static void s_on_server_event(sf_secure_server_t *srv)
{
    uint16_t event;
    uint32_t value;
    while (s_read_event(srv->monitor, &event, &value)) {
        if (event != ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
            continue;
        int kind = value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH ? S_FAIL_NO_KEYS
                   : value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC    ? S_FAIL_CRYPTO
                                                                       : S_FAIL_OTHER;
        int64_t now = s_now_ms();
        if (srv->limit[kind].last_ms && now - srv->limit[kind].last_ms < S_LOG_EVERY_MS) {
            srv->limit[kind].suppressed++;
            continue;
        }
        static const char *const what[] = {
            "a peer without CURVE keys was refused: mechanism mismatch",
            "a peer failed the CURVE handshake: its --server-key is not this coordinator's public key",
            "a handshake failed",
        };
        char line[256];
        int k = snprintf(line, sizeof line, "%s (protocol error 0x%x)", what[kind], value);
        if (srv->limit[kind].suppressed && k > 0 && (size_t)k < sizeof line)
            snprintf(line + k, sizeof line - (size_t)k, "; %u more like it in the last %d s",
                     srv->limit[kind].suppressed, S_LOG_EVERY_MS / 1000);
        srv->limit[kind].last_ms = now;
        srv->limit[kind].suppressed = 0;
        srv->log(srv->log_ctx, true, line);
    }
}

static void *s_handler_main(void *arg)
{
    sf_secure_server_t *srv = arg;
    while (!atomic_load(&srv->stop)) {
        zmq_pollitem_t items[2] = {
            {.socket = srv->zap, .events = ZMQ_POLLIN},
            {.socket = srv->monitor, .events = ZMQ_POLLIN},
        };
        if (zmq_poll(items, 2, S_POLL_MS) < 0) {
            if (zmq_errno() == ETERM)
                break;
            continue;
        }
        if (items[0].revents & ZMQ_POLLIN)
            s_zap_answer(srv);
        if (items[1].revents & ZMQ_POLLIN)
            s_on_server_event(srv);
    }
    zmq_close(srv->zap);
    zmq_close(srv->monitor);
    srv->zap = srv->monitor = NULL;
    return NULL;
}

static void s_log_nothing(void *ctx, bool warning, const char *line)
{
    (void)ctx;
    (void)warning;
    (void)line;
}

sf_rc sf_secure_server_new(void *zmq_context, const sf_secure_keypair_t *keys, const char *const *allow, size_t n_allow,
                           sf_secure_log_fn log_fn, void *log_ctx, sf_secure_server_t **out, sf_err_t *err)
{
    *out = NULL;
    sf_secure_server_t *srv = sf_calloc(1, sizeof *srv);
    if (!srv)
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    srv->ctx = zmq_context;
    srv->keys = *keys;
    srv->log = log_fn ? log_fn : s_log_nothing;
    srv->log_ctx = log_ctx;
    sf_rc rc = SF_OK;
    for (size_t i = 0; i < n_allow && rc == SF_OK; i++) {
        struct stat st;
        if (stat(allow[i], &st) != 0)
            rc = SF_ERR(err, SF_E_INPUT, "'%s': cannot open: %s", allow[i], strerror(errno));
        else
            rc = S_ISDIR(st.st_mode) ? s_allow_dir(srv, allow[i], err) : s_allow_file(srv, allow[i], err);
    }
    if (rc == SF_OK && !srv->n_allowed)
        rc = SF_ERR(err, SF_E_INPUT, "the allowlist is empty: give --allow a folder of *.pub files or a .pub file");
    if (rc)
        goto fail;
    int linger = 0;
    snprintf(srv->monitor_ep, sizeof srv->monitor_ep, "inproc://sf-secure-server-%p", (void *)srv);
    srv->zap = zmq_socket(zmq_context, ZMQ_REP);
    srv->monitor = zmq_socket(zmq_context, ZMQ_PAIR);
    if (!srv->zap || !srv->monitor || zmq_setsockopt(srv->zap, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(srv->monitor, ZMQ_LINGER, &linger, sizeof linger) || zmq_bind(srv->zap, S_ZAP_ENDPOINT) ||
        zmq_connect(srv->monitor, srv->monitor_ep)) {
        rc = SF_ERR(err, SF_E_INTERNAL, "cannot start the ZAP handler on " S_ZAP_ENDPOINT ": %s",
                    zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (pthread_create(&srv->thread, NULL, s_handler_main, srv) != 0) {
        rc = SF_ERR(err, SF_E_INTERNAL, "cannot start the ZAP handler thread");
        goto fail;
    }
    srv->started = true;
    *out = srv;
    return SF_OK;
fail:
    sf_secure_server_destroy(&srv);
    return rc;
}

size_t sf_secure_server_n_allowed(const sf_secure_server_t *srv) { return srv->n_allowed; }

sf_rc sf_secure_server_apply(sf_secure_server_t *srv, void *sock, sf_err_t *err)
{
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, srv->keys.secret_key, SF_SECURE_KEY_CHARS) ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, S_ZAP_DOMAIN, strlen(S_ZAP_DOMAIN)))
        return SF_ERR(err, SF_E_INTERNAL, "cannot make the socket a CURVE server: %s", zmq_strerror(zmq_errno()));
    (void)zmq_setsockopt(sock, S_ZAP_ENFORCE_DOMAIN, &one, sizeof one);
    if (zmq_socket_monitor(sock, srv->monitor_ep, ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) != 0)
        return SF_ERR(err, SF_E_INTERNAL, "cannot watch the socket's handshakes: %s", zmq_strerror(zmq_errno()));
    return SF_OK;
}

void sf_secure_server_destroy(sf_secure_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_secure_server_t *srv = *self_p;
    if (srv->started) {
        atomic_store(&srv->stop, 1);
        pthread_join(srv->thread, NULL);
    } else {
        if (srv->zap)
            zmq_close(srv->zap);
        if (srv->monitor)
            zmq_close(srv->monitor);
    }
    sf_free(srv->allowed);
    sf_free(srv);
    *self_p = NULL;
}
