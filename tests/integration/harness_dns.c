/* The test DNS server (see harness_dns.h): one UDP socket, polled by one thread; the table and
 * mode are behind a mutex the test thread takes to change them. */
#include "harness_dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_NAMES 16
#define MAX_ADDRS 8

struct entry {
    char name[256];
    struct in_addr addrs[MAX_ADDRS];
    int naddrs;
};

struct it_dns {
    int fd;
    pthread_t thread;
    atomic_bool stop;
    atomic_uint queries;
    pthread_mutex_t lock;
    enum it_dns_mode mode;
    struct entry names[MAX_NAMES];
};

/* The question's name, lowercase and dotted; its end offset in *end. Returns 0 or -1. */
static int read_qname(const unsigned char *m, size_t len, char *out, size_t outlen, size_t *end)
{
    size_t p = 12, o = 0;
    while (p < len && m[p] != 0) {
        size_t l = m[p++];
        if (l > 63 || p + l > len || o + l + 2 > outlen)
            return -1;
        if (o)
            out[o++] = '.';
        for (size_t i = 0; i < l; i++)
            out[o++] = (char)tolower(m[p + i]);
        p += l;
    }
    if (p + 5 > len)
        return -1;
    out[o] = '\0';
    *end = p + 1;
    return 0;
}

static void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void answer(struct it_dns *d, const unsigned char *q, size_t qlen, struct sockaddr *from,
                   socklen_t fromlen)
{
    char name[256];
    size_t qend;
    if (qlen < 12 || read_qname(q, qlen, name, sizeof name, &qend) < 0)
        return;
    unsigned qtype = (unsigned)q[qend] << 8 | q[qend + 1];
    size_t qsize = qend + 4 - 12; /* the question, copied as asked (letter case included) */
    unsigned char r[512];
    if (12 + qsize + MAX_ADDRS * 16 > sizeof r)
        return;
    memcpy(r, q, 2);                            /* id */
    unsigned flags = 0x8080 | (q[2] & 0x01) << 8; /* QR, RD as asked, RA */
    int rcode = 0, n = 0;
    struct in_addr addrs[MAX_ADDRS];
    pthread_mutex_lock(&d->lock);
    enum it_dns_mode mode = d->mode;
    const struct entry *e = NULL;
    for (int i = 0; i < MAX_NAMES && !e; i++)
        if (d->names[i].name[0] && strcmp(d->names[i].name, name) == 0)
            e = &d->names[i];
    if (e) {
        n = e->naddrs;
        memcpy(addrs, e->addrs, sizeof addrs);
    }
    pthread_mutex_unlock(&d->lock);
    if (mode == IT_DNS_SILENT)
        return;
    if (mode == IT_DNS_SERVFAIL)
        rcode = 2, n = 0;
    else if (!e)
        rcode = 3, n = 0;
    else if (qtype != 1)
        n = 0; /* AAAA and the rest: no data */
    put16(r + 2, flags | (unsigned)rcode);
    put16(r + 4, 1);
    put16(r + 6, (unsigned)n);
    put16(r + 8, 0);
    put16(r + 10, 0);
    memcpy(r + 12, q + 12, qsize);
    size_t len = 12 + qsize;
    for (int i = 0; i < n; i++) {
        unsigned char *a = r + len;
        put16(a, 0xc00c); /* the question's name */
        put16(a + 2, 1);  /* A */
        put16(a + 4, 1);  /* IN */
        put16(a + 6, 0);
        put16(a + 8, 1); /* TTL 1 s */
        put16(a + 10, 4);
        memcpy(a + 12, &addrs[i], 4);
        len += 16;
    }
    sendto(d->fd, r, len, 0, from, fromlen);
}

static void *run(void *arg)
{
    struct it_dns *d = arg;
    while (!atomic_load(&d->stop)) {
        struct pollfd pfd = {.fd = d->fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        unsigned char q[512];
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof from;
        ssize_t n = recvfrom(d->fd, q, sizeof q, 0, (struct sockaddr *)&from, &fromlen);
        if (n <= 0)
            continue;
        atomic_fetch_add(&d->queries, 1);
        answer(d, q, (size_t)n, (struct sockaddr *)&from, fromlen);
    }
    return NULL;
}

struct it_dns *it_dns_start(int port)
{
    struct it_dns *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    pthread_mutex_init(&d->lock, NULL);
    d->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (d->fd < 0 || bind(d->fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        pthread_create(&d->thread, NULL, run, d) != 0) {
        perror("harness: dns server");
        if (d->fd >= 0)
            close(d->fd);
        free(d);
        return NULL;
    }
    return d;
}

void it_dns_set(struct it_dns *d, const char *name, const char *ips)
{
    char lower[256];
    size_t i;
    for (i = 0; name[i] && i < sizeof lower - 1; i++)
        lower[i] = (char)tolower((unsigned char)name[i]);
    lower[i] = '\0';
    pthread_mutex_lock(&d->lock);
    struct entry *e = NULL, *free_slot = NULL;
    for (int k = 0; k < MAX_NAMES; k++) {
        if (strcmp(d->names[k].name, lower) == 0)
            e = &d->names[k];
        else if (!d->names[k].name[0] && !free_slot)
            free_slot = &d->names[k];
    }
    if (!ips) {
        if (e)
            memset(e, 0, sizeof *e);
    } else if ((e = e ? e : free_slot) != NULL) {
        memset(e, 0, sizeof *e);
        snprintf(e->name, sizeof e->name, "%s", lower);
        char list[512];
        snprintf(list, sizeof list, "%s", ips);
        char *save = NULL;
        for (char *t = strtok_r(list, ",", &save); t && e->naddrs < MAX_ADDRS;
             t = strtok_r(NULL, ",", &save))
            if (inet_pton(AF_INET, t, &e->addrs[e->naddrs]) == 1)
                e->naddrs++;
    }
    pthread_mutex_unlock(&d->lock);
}

void it_dns_mode(struct it_dns *d, enum it_dns_mode mode)
{
    pthread_mutex_lock(&d->lock);
    d->mode = mode;
    pthread_mutex_unlock(&d->lock);
}

unsigned it_dns_queries(struct it_dns *d)
{
    return atomic_load(&d->queries);
}

void it_dns_stop(struct it_dns *d)
{
    if (!d)
        return;
    atomic_store(&d->stop, true);
    pthread_join(d->thread, NULL);
    close(d->fd);
    pthread_mutex_destroy(&d->lock);
    free(d);
}
