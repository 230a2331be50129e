/* monitor.c -- metrics, status and dashboard over HTTP (see monitor.h). */

/* accept4(2) */
#define _GNU_SOURCE
#include "monitor.h"

#include "sf/clock.h"
#include "sf/alloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_REQUEST_MAX  8192
#define S_READ_BUDGET  200 /* ms for a request to arrive whole */
#define S_WRITE_BUDGET 2000

struct monitor {
    int fd;
    char address[96];
};

sf_rc monitor_open(const char *bind_text, monitor_t **out, sf_err_t *err)
{
    *out = NULL;
    char host[64] = "127.0.0.1", port[16];
    const char *colon = strrchr(bind_text, ':');
    if (!colon) {
        snprintf(port, sizeof port, "%s", bind_text);
    } else {
        const char *h = bind_text;
        size_t n = (size_t)(colon - bind_text);
        if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
            h++;
            n -= 2;
        }
        if (n == 0 || n >= sizeof host)
            return SF_ERR(err, SF_E_INPUT, "bad HTTP address '%s' (expected HOST:PORT or PORT)", bind_text);
        memcpy(host, h, n);
        host[n] = '\0';
        snprintf(port, sizeof port, "%s", colon + 1);
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 0 || p > 65535)
        return SF_ERR(err, SF_E_INPUT, "bad HTTP port in '%s' (expected 0..65535)", bind_text);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai)
        return SF_ERR(err, SF_E_INPUT, "bad HTTP address '%s': %s", bind_text, gai_strerror(gai));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 16) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return SF_ERR(err, SF_E_IO, "cannot serve HTTP on '%s': %s", bind_text, strerror(e));
    }
    freeaddrinfo(ai);
    monitor_t *m = sf_calloc(1, sizeof *m);
    if (!m) {
        close(fd);
        return SF_ERR(err, SF_E_NOMEM, "out of memory");
    }
    m->fd = fd;
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    char ip[INET6_ADDRSTRLEN] = "?";
    int bound_port = 0;
    if (getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
        if (sa.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, ip, sizeof ip);
            bound_port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
        } else {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, ip, sizeof ip);
            bound_port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
        }
    }
    snprintf(m->address, sizeof m->address, sa.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, bound_port);
    *out = m;
    return SF_OK;
}

int monitor_fd(const monitor_t *m) { return m->fd; }

const char *monitor_address(const monitor_t *m) { return m->address; }

/* Reads until the end of the headers, the limit or the budget. */
static ssize_t s_read_request(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    int64_t deadline = sf_clock_ms() + S_READ_BUDGET;
    while (n + 1 < cap) {
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
            return (ssize_t)n;
        int64_t left = deadline - sf_clock_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -1;
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got <= 0)
            return got == 0 && n ? (ssize_t)n : -1;
        n += (size_t)got;
    }
    return -1; /* too long: not a request we serve */
}

static void s_write_all(int fd, const char *data, size_t n)
{
    int64_t deadline = sf_clock_ms() + S_WRITE_BUDGET;
    while (n > 0) {
        ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
        if (w > 0) {
            data += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return;
        int64_t left = deadline - sf_clock_ms();
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return;
    }
}

static void s_answer(int fd, int status, const char *type, const char *body, size_t n_body)
{
    const char *reason = status == 200   ? "OK"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                                         : "Bad Request";
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
                     "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
                     status, reason, type, n_body);
    s_write_all(fd, head, (size_t)n);
    s_write_all(fd, body, n_body);
}

static void s_serve_one(int fd, monitor_handler_fn fn, void *ctx)
{
    char req[S_REQUEST_MAX];
    if (s_read_request(fd, req, sizeof req) < 0) {
        static const char msg[] = "bad request\n";
        s_answer(fd, 400, "text/plain; charset=utf-8", msg, sizeof msg - 1);
        return;
    }
    char method[8], target[1024];
    if (sscanf(req, "%7s %1023s", method, target) != 2) {
        static const char msg[] = "bad request\n";
        s_answer(fd, 400, "text/plain; charset=utf-8", msg, sizeof msg - 1);
        return;
    }
    if (strcmp(method, "GET") != 0) {
        static const char msg[] = "only GET\n";
        s_answer(fd, 405, "text/plain; charset=utf-8", msg, sizeof msg - 1);
        return;
    }
    char *q = strchr(target, '?');
    if (q)
        *q = '\0';
    monitor_reply_t reply = {.status = 404, .content_type = "text/plain; charset=utf-8"};
    fn(ctx, target, &reply);
    if (!reply.body) {
        static const char msg[] = "not found\n";
        s_answer(fd, reply.status == 200 ? 500 : reply.status, "text/plain; charset=utf-8", msg, sizeof msg - 1);
        return;
    }
    s_answer(fd, reply.status, reply.content_type, reply.body, reply.n_body);
    sf_free(reply.body);
}

void monitor_serve(monitor_t *m, monitor_handler_fn fn, void *ctx)
{
    for (int budget = 8; budget > 0; budget--) {
        int fd = accept4(m->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        s_serve_one(fd, fn, ctx);
        shutdown(fd, SHUT_WR);
        close(fd);
    }
}

void monitor_close(monitor_t **self_p)
{
    monitor_t *m = *self_p;
    if (!m)
        return;
    close(m->fd);
    sf_free(m);
    *self_p = NULL;
}
