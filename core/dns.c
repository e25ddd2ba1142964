/* The resolver for host-name targets (see dns.h): one evdns base on the main loop, and per name
 * its timer, the lookup in flight and the last addresses. */
#include "dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "log.h"

struct name {
    struct name *next;
    struct lintel_dns *d;
    char *host;
    uint64_t interval_ms;
    struct event *timer;     /* the next lookup */
    bool in_flight;          /* a lookup is running (its callback has not run) */
    bool dropped;            /* no longer tracked: the lookup's callback frees it */
    bool answered;           /* some lookup has finished */
    bool failing;            /* the last lookup failed */
    char error[96];          /* why the last lookup failed */
    struct sockaddr_storage *addrs; /* the last addresses (port 0), sorted, no duplicates */
    size_t naddrs;
};

struct lintel_dns {
    struct event_base *base;
    struct evdns_base *dns;
    struct name *names;   /* tracked */
    struct name *dropped; /* untracked while their lookup runs */
    struct event *notify; /* runs on_change once per loop iteration */
    void (*on_change)(void *ctx);
    void *ctx;
};

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    struct lintel_dns *d = arg;
    d->on_change(d->ctx);
}

static void changed(struct lintel_dns *d)
{
    event_active(d->notify, EV_TIMEOUT, 0);
}

static void name_free(struct name *n)
{
    if (n->timer)
        event_free(n->timer);
    free(n->addrs);
    free(n->host);
    free(n);
}

static int addr_cmp(const void *pa, const void *pb)
{
    const struct sockaddr_storage *a = pa, *b = pb;
    if (a->ss_family != b->ss_family)
        return a->ss_family < b->ss_family ? -1 : 1;
    if (a->ss_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)b)->sin_addr, sizeof(struct in_addr));
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr));
}

/* "127.0.0.1, 127.0.0.2" (shortened past a few hundred characters). */
static void addrs_text(const struct sockaddr_storage *v, size_t n, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used + INET6_ADDRSTRLEN + 8 < len; i++) {
        char ip[INET6_ADDRSTRLEN];
        const void *a = v[i].ss_family == AF_INET6
                            ? (const void *)&((const struct sockaddr_in6 *)&v[i])->sin6_addr
                            : (const void *)&((const struct sockaddr_in *)&v[i])->sin_addr;
        inet_ntop(v[i].ss_family, a, ip, sizeof(ip));
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", ip);
        if (i + 1 < n && used + INET6_ADDRSTRLEN + 8 >= len)
            snprintf(buf + used, len - used, ", ...");
    }
}

/* The addresses of an answer, normalised (only family and address set) so that sets compare
 * with memcmp; NULL with *n 0 when there are none or memory ran out. */
static struct sockaddr_storage *collect(const struct evutil_addrinfo *res, size_t *n)
{
    size_t cap = 0;
    *n = 0;
    for (const struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next)
        cap++;
    struct sockaddr_storage *v = cap ? calloc(cap, sizeof(*v)) : NULL;
    if (!v)
        return NULL;
    for (const struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next) {
        struct sockaddr_storage *s = &v[*n];
        if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(struct sockaddr_in)) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)s;
            s4->sin_family = AF_INET;
            s4->sin_addr = ((const struct sockaddr_in *)ai->ai_addr)->sin_addr;
        } else if (ai->ai_family == AF_INET6 && ai->ai_addrlen >= sizeof(struct sockaddr_in6)) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)s;
            s6->sin6_family = AF_INET6;
            s6->sin6_addr = ((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
            s6->sin6_scope_id = ((const struct sockaddr_in6 *)ai->ai_addr)->sin6_scope_id;
        } else {
            continue;
        }
        (*n)++;
    }
    qsort(v, *n, sizeof(*v), addr_cmp);
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (k == 0 || addr_cmp(&v[k - 1], &v[i]) != 0)
            v[k++] = v[i];
    *n = k;
    if (k == 0) {
        free(v);
        return NULL;
    }
    return v;
}

static const char *result_text(int result)
{
    switch (result) {
    case 0:
        return "no usable address in the answer";
    case EVUTIL_EAI_NONAME:
        return "no such host";
    case EVUTIL_EAI_FAIL:
    case EVUTIL_EAI_AGAIN:
        return "lookup failed (server failure or no answer)";
    case EVUTIL_EAI_MEMORY:
        return "out of memory";
    default:
        return evutil_gai_strerror(result);
    }
}

static void schedule(struct name *n)
{
    struct timeval tv = {(time_t)(n->interval_ms / 1000), (suseconds_t)(n->interval_ms % 1000) * 1000};
    evtimer_add(n->timer, &tv);
}

static void on_answer(int result, struct evutil_addrinfo *res, void *arg)
{
    struct name *n = arg;
    struct lintel_dns *d = n->d;
    size_t count = 0;
    struct sockaddr_storage *v = result == 0 ? collect(res, &count) : NULL;
    if (res)
        evutil_freeaddrinfo(res);
    n->in_flight = false;
    if (n->dropped) {
        for (struct name **pp = &d->dropped; *pp; pp = &(*pp)->next)
            if (*pp == n) {
                *pp = n->next;
                break;
            }
        free(v);
        name_free(n);
        return;
    }
    bool first = !n->answered;
    n->answered = true;
    char now[512], before[512];
    if (count) {
        addrs_text(v, count, now, sizeof(now));
        bool same = count == n->naddrs && memcmp(v, n->addrs, count * sizeof(*v)) == 0;
        if (n->naddrs)
            addrs_text(n->addrs, n->naddrs, before, sizeof(before));
        if (n->failing)
            lintel_info("resolver: %s resolves again to %s%s%s%s", n->host, now,
                        same || !n->naddrs ? "" : " (was ", same || !n->naddrs ? "" : before,
                        same || !n->naddrs ? "" : ")");
        else if (!n->naddrs)
            lintel_info("resolver: %s resolves to %s", n->host, now);
        else if (!same)
            lintel_info("resolver: %s now resolves to %s (was %s)", n->host, now, before);
        n->failing = false;
        n->error[0] = '\0';
        if (!same) {
            free(n->addrs);
            n->addrs = v;
            n->naddrs = count;
            changed(d);
        } else {
            free(v);
        }
    } else {
        const char *why = result_text(result);
        if (!n->failing && n->naddrs) {
            addrs_text(n->addrs, n->naddrs, before, sizeof(before));
            lintel_warn("resolver: cannot resolve %s (%s); its last known address(es) keep "
                        "serving: %s",
                        n->host, why, before);
        } else if (!n->failing) {
            lintel_error("resolver: cannot resolve %s (%s); its targets have no address", n->host,
                         why);
        }
        bool news = first || strcmp(n->error, why) != 0;
        n->failing = true;
        snprintf(n->error, sizeof(n->error), "%s", why);
        if (!n->naddrs && news)
            changed(d); /* the 503's explanation changes */
    }
    schedule(n);
}

static void resolve(struct name *n)
{
    struct evutil_addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
    n->in_flight = true;
    /* A hosts-file entry (or a failure to start) answers before this returns. */
    if (!evdns_getaddrinfo(n->d->dns, n->host, NULL, &hints, on_answer, n) && n->in_flight)
        on_answer(EVUTIL_EAI_FAIL, NULL, n);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct name *n = arg;
    if (!n->in_flight)
        resolve(n);
}

static struct name *find(struct name *list, const char *host)
{
    for (; list; list = list->next)
        if (strcmp(list->host, host) == 0)
            return list;
    return NULL;
}

/* The shortest resolve_interval of cfg's upstreams naming host; 0 when none does. */
static uint64_t interval_in(const struct lintel_config *cfg, const char *host)
{
    uint64_t ms = 0;
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        const struct lintel_upstream_conf *u = &cfg->upstreams[i];
        for (size_t t = 0; t < u->ndecl; t++)
            if (u->decl[t].is_name && strcmp(u->decl[t].host, host) == 0 &&
                (ms == 0 || u->resolve_ms < ms))
                ms = u->resolve_ms;
    }
    return ms;
}

int lintel_dns_track(struct lintel_dns *d, const struct lintel_config *cfg)
{
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        const struct lintel_upstream_conf *u = &cfg->upstreams[i];
        for (size_t t = 0; t < u->ndecl; t++) {
            if (!u->decl[t].is_name || find(d->names, u->decl[t].host))
                continue;
            struct name *n = calloc(1, sizeof(*n));
            if (!n)
                return -1;
            n->d = d;
            n->host = strdup(u->decl[t].host);
            n->timer = evtimer_new(d->base, on_timer, n);
            if (!n->host || !n->timer) {
                name_free(n);
                return -1;
            }
            n->interval_ms = interval_in(cfg, n->host);
            n->next = d->names;
            d->names = n;
            resolve(n);
        }
    }
    return 0;
}

void lintel_dns_retain(struct lintel_dns *d, const struct lintel_config *cfg)
{
    struct name **pp = &d->names;
    while (*pp) {
        struct name *n = *pp;
        uint64_t ms = interval_in(cfg, n->host);
        if (ms) {
            if (ms != n->interval_ms && !n->in_flight) {
                n->interval_ms = ms;
                evtimer_del(n->timer);
                schedule(n);
            }
            n->interval_ms = ms;
            pp = &n->next;
            continue;
        }
        *pp = n->next;
        if (n->in_flight) {
            n->dropped = true;
            n->next = d->dropped;
            d->dropped = n;
        } else {
            name_free(n);
        }
    }
}

bool lintel_dns_pending(const struct lintel_dns *d)
{
    for (const struct name *n = d->names; n; n = n->next)
        if (!n->answered)
            return true;
    return false;
}

bool lintel_dns_lookup(void *ctx, const char *host, struct lintel_name_addrs *out)
{
    const struct name *n = find(((struct lintel_dns *)ctx)->names, host);
    if (!n || !n->answered)
        return false;
    out->addrs = n->addrs;
    out->naddrs = n->naddrs;
    out->error = n->failing ? n->error : NULL;
    if (!n->naddrs && !out->error)
        out->error = "no address";
    return true;
}

bool lintel_dns_settings_differ(const struct lintel_resolver_conf *a,
                                const struct lintel_resolver_conf *b)
{
    if (a->nnameservers != b->nnameservers || strcmp(a->hosts, b->hosts) != 0 ||
        a->timeout_ms != b->timeout_ms || a->attempts != b->attempts)
        return true;
    for (size_t i = 0; i < a->nnameservers; i++)
        if (strcmp(a->nameservers[i], b->nameservers[i]) != 0)
            return true;
    return false;
}

struct lintel_dns *lintel_dns_new(struct event_base *base, const struct lintel_config *cfg,
                                  void (*on_change)(void *ctx), void *ctx, char *err,
                                  size_t errlen)
{
    const struct lintel_resolver_conf *r = &cfg->resolver;
    struct lintel_dns *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->base = base;
    d->on_change = on_change;
    d->ctx = ctx;
    d->notify = event_new(base, -1, 0, on_notify, d);
    d->dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!d->notify || !d->dns) {
        snprintf(err, errlen, "out of memory setting up the resolver");
        goto fail;
    }
    if (r->nnameservers == 0) {
        int rc = evdns_base_resolv_conf_parse(
            d->dns, DNS_OPTION_SEARCH | DNS_OPTION_NAMESERVERS | DNS_OPTION_MISC,
            "/etc/resolv.conf");
        if (rc == 4) {
            snprintf(err, errlen, "out of memory reading /etc/resolv.conf");
            goto fail;
        }
        if (rc != 0)
            lintel_warn("resolver: /etc/resolv.conf is unusable (evdns error %d): asking "
                        "127.0.0.1",
                        rc);
    }
    for (size_t i = 0; i < r->nnameservers; i++)
        if (evdns_base_nameserver_ip_add(d->dns, r->nameservers[i]) != 0) {
            snprintf(err, errlen, "%s: resolver.nameservers[%zu]: cannot use %s", cfg->path, i,
                     r->nameservers[i]);
            goto fail;
        }
    if (evdns_base_load_hosts(d->dns, r->hosts) != 0) {
        if (strcmp(r->hosts, "/etc/hosts") != 0) {
            snprintf(err, errlen, "%s: resolver.hosts: cannot read %s", cfg->path, r->hosts);
            goto fail;
        }
    }
    char v[32];
    snprintf(v, sizeof(v), "%.3f", (double)r->timeout_ms / 1000.0);
    evdns_base_set_option(d->dns, "timeout:", v);
    snprintf(v, sizeof(v), "%u", r->attempts);
    evdns_base_set_option(d->dns, "attempts:", v);
    return d;
fail:
    lintel_dns_free(d);
    return NULL;
}

void lintel_dns_free(struct lintel_dns *d)
{
    if (!d)
        return;
    /* Without failing them: no callback runs into the names freed below. */
    if (d->dns)
        evdns_base_free(d->dns, 0);
    while (d->names) {
        struct name *n = d->names;
        d->names = n->next;
        name_free(n);
    }
    while (d->dropped) {
        struct name *n = d->dropped;
        d->dropped = n->next;
        name_free(n);
    }
    if (d->notify)
        event_free(d->notify);
    free(d);
}
