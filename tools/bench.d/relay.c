/*
 * relay: the kernel floor of a proxy on this machine (tools/bench, part "relay").
 *
 * Not an HTTP proxy: each client connection gets its own upstream connection, opened at accept,
 * and bytes are copied both ways as they come, with no parsing, no routing, no timers and no
 * allocation after the connection is set up. One thread, epoll edge-triggered, one recv and one
 * send per burst. Whatever a real proxy does per request comes on top of what this costs, so its
 * CPU per request is the least any proxy can pay here for the four data syscalls, the TCP work
 * they cause (on loopback the sender also pays the peer's receive) and the event loop.
 *
 *   relay LISTEN_PORT UPSTREAM_PORT      (both on 127.0.0.1)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define RELAY_BUF 16384
#define RELAY_EVENTS 256

struct side {
    int fd;
    struct side *peer;
};

static int port_addr(const char *port, struct sockaddr_in *sa)
{
    char *end;
    long p = strtol(port, &end, 10);

    if (*end != '\0' || p <= 0 || p > 65535)
        return -1;
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((unsigned short)p);
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return 0;
}

/* Both sides of a pair live in one allocation; closing either closes both. The memory is freed
 * after the current batch of events, which may still name the other side (its fd is then -1). */
static struct side *closed[RELAY_EVENTS];
static int n_closed;

static void close_pair(struct side *s)
{
    struct side *first = s < s->peer ? s : s->peer;

    close(first[0].fd);
    close(first[1].fd);
    first[0].fd = first[1].fd = -1;
    closed[n_closed++] = first;
}

/* Copy what is readable on s to its peer. A short send drops the pair: the bench's requests and
 * answers are far below a socket buffer, so that does not happen in a measured run. Returns 0
 * when the pair was closed. */
static int pump(struct side *s)
{
    char buf[RELAY_BUF];

    for (;;) {
        ssize_t n = recv(s->fd, buf, sizeof(buf), 0);

        if (n > 0) {
            if (send(s->peer->fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
                break;
            if ((size_t)n < sizeof(buf))
                return 1; /* drained: wait for the next edge */
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return 1;
        break;
    }
    close_pair(s);
    return 0;
}

static int watch(int ep, struct side *s)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET | EPOLLRDHUP, .data.ptr = s};

    return epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
}

/* A new client: connect its upstream (blocking, loopback), then watch both sides. */
static void pair_up(int ep, int c, const struct sockaddr_in *up)
{
    int one = 1, u = socket(AF_INET, SOCK_STREAM, 0);
    struct side *pair = calloc(2, sizeof(*pair));

    if (u < 0 || pair == NULL || connect(u, (const struct sockaddr *)up, sizeof(*up)) != 0 ||
        fcntl(u, F_SETFL, O_NONBLOCK) != 0) {
        perror("relay: upstream");
        close(c);
        if (u >= 0)
            close(u);
        free(pair);
        return;
    }
    (void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void)setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    pair[0] = (struct side){.fd = c, .peer = &pair[1]};
    pair[1] = (struct side){.fd = u, .peer = &pair[0]};
    if (watch(ep, &pair[0]) != 0 || watch(ep, &pair[1]) != 0) {
        perror("relay: epoll_ctl");
        close(c);
        close(u);
        free(pair);
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_in listen_at, up;
    struct epoll_event evs[RELAY_EVENTS], lev = {.events = EPOLLIN};
    int one = 1, lfd, ep;

    if (argc != 3 || port_addr(argv[1], &listen_at) != 0 || port_addr(argv[2], &up) != 0) {
        fprintf(stderr, "usage: relay LISTEN_PORT UPSTREAM_PORT\n");
        return 2;
    }
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ep = epoll_create1(0);
    if (lfd < 0 || ep < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(lfd, (const struct sockaddr *)&listen_at, sizeof(listen_at)) != 0 ||
        listen(lfd, 4096) != 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) != 0) {
        perror("relay: listen");
        return 1;
    }
    for (;;) {
        int n = epoll_wait(ep, evs, RELAY_EVENTS, -1);

        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                int c;

                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0)
                    pair_up(ep, c, &up);
                continue;
            }
            if (((struct side *)evs[i].data.ptr)->fd >= 0)
                (void)pump(evs[i].data.ptr);
        }
        while (n_closed > 0)
            free(closed[--n_closed]);
    }
}
