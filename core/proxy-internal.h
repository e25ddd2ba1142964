/* Shared between the client side (client.c), the upstream side (upstream.c) and the keepalive
 * pools (pool.c) of one worker. Everything here runs on the owning worker's thread only. */
#ifndef LINTEL_PROXY_INTERNAL_H
#define LINTEL_PROXY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "arena.h"
#include "config.h"
#include "http1.h"
#include "router.h"
#include "worker.h"

struct bufferevent;
struct evbuffer;
struct event;
struct lintel_request;

/* Backpressure: stop moving body bytes into a peer's output once it holds this much; resume when
 * the peer has drained it below the low mark. */
#define LINTEL_OUT_HIGH (256 * 1024)
#define LINTEL_OUT_LOW (64 * 1024)
/* Body bytes read ahead from a peer before reading pauses (on top of the head limit). */
#define LINTEL_READ_AHEAD (64 * 1024)

enum lintel_client_state {
    CLIENT_IDLE,    /* waiting for (the rest of) the next request head */
    CLIENT_REQUEST, /* a request is in progress */
    CLIENT_CLOSING, /* flushing the last bytes, then close */
};

struct lintel_client {
    struct lintel_worker *worker;
    struct lintel_client *prev, *next; /* worker->clients */
    struct bufferevent *bev;
    struct event *timer; /* header / keepalive timeout */
    enum lintel_client_state state;
    bool timer_is_header; /* timer counts client_header (a head has begun), else keepalive */
    char ip[64];          /* peer address text, for X-Forwarded-For */
    struct lintel_request *req;
    unsigned requests; /* served on this connection */
    bool parsing;      /* inside parse_heads: frees and re-entry are deferred */
    bool dead;         /* freed while parsing: parse_heads frees it on the way out */
};

enum lintel_resp_state {
    RESP_WAIT_HEAD, /* nothing from the upstream yet */
    RESP_BODY,      /* head sent to the client, body flowing */
    RESP_DONE,      /* whole response queued to the client */
};

/* Framing of the response towards the client. */
enum lintel_client_framing { OUT_NONE, OUT_LENGTH, OUT_CHUNKED, OUT_CLOSE };

struct lintel_upconn;

struct lintel_request {
    struct lintel_arena *arena;
    struct lintel_client *client;
    struct lintel_wsnap *ws; /* the snapshot this request runs on */
    struct lintel_head head;
    char id[33];
    const char *id_value; /* X-Request-Id sent both ways (client's own, or id) */
    struct timespec start;

    const struct lintel_route_conf *route;
    size_t prefix_len;
    const struct lintel_upstream_conf *upstream;
    struct lintel_balancer *balancer;
    int target; /* picked target, or -1 */
    unsigned char *tried; /* per target: already tried */
    unsigned attempts;

    /* request body, client → upstream */
    uint64_t body_left;       /* LENGTH: bytes still to read */
    uint64_t body_read;       /* bytes of body data read so far */
    struct lintel_chunked req_chunked;
    bool body_done;           /* the whole body has been read from the client */
    bool body_started;        /* body bytes have left for the upstream (no replay possible) */
    char *up_head;            /* serialised upstream head (replayed on a stale keepalive conn) */
    size_t up_head_len;

    struct lintel_upconn *up;

    /* response, upstream → client */
    enum lintel_resp_state resp_state;
    struct lintel_head resp;
    enum lintel_body_kind resp_body;
    uint64_t resp_left;
    struct lintel_chunked resp_chunked;
    enum lintel_client_framing out;
    bool close_after; /* the client connection closes once this response is flushed */
    int status;       /* status sent to the client */
    uint64_t bytes_out;
};

/* An upstream connection, pooled per worker and per target when idle. */
struct lintel_upconn {
    struct lintel_worker *worker;
    struct lintel_pool *pool;
    struct lintel_upconn *prev, *next; /* pool idle list */
    struct bufferevent *bev;
    struct lintel_request *req; /* NULL while idle */
    bool connected;
    bool reused;     /* served an earlier request */
    bool got_bytes;  /* response bytes arrived for the current request */
    bool req_sent;   /* the whole request went into the output buffer */
    bool eof;        /* the upstream closed its side; input may still hold bytes to relay */
    uint64_t idle_ms;
};

/* client.c */
void lintel_client_accept(struct lintel_worker *w, int fd, const struct sockaddr *sa, int salen);
/* Closes every idle client connection and marks the others to close after their response. */
void lintel_clients_drain(struct lintel_worker *w);
/* Frees every client connection at once (drain timeout / worker exit). */
void lintel_clients_close_all(struct lintel_worker *w);
/* Writes a gateway-made error response with the JSON body and ends the request. */
void lintel_request_fail(struct lintel_request *req, int status, const char *error);
/* The upstream side finished queuing the response to the client. */
void lintel_request_response_done(struct lintel_request *req);
/* The upstream side aborted after the response head was sent: the client connection closes. */
void lintel_request_abort(struct lintel_request *req, const char *why);
/* Moves request body bytes from the client to the upstream, honouring backpressure. */
void lintel_request_pump_body(struct lintel_request *req);

/* upstream.c */
/* Connects (or reuses a pooled connection) and sends the request head. */
void lintel_upstream_start(struct lintel_request *req);
/* Moves response bytes from the upstream to the client, honouring backpressure. */
void lintel_upstream_pump_response(struct lintel_request *req);
/* The request ends early (client gone, error): drop the upstream connection. */
void lintel_upstream_detach(struct lintel_request *req);
/* The whole request body is queued to the upstream. */
void lintel_upstream_request_sent(struct lintel_request *req);

/* pool.c */
/* A pooled connection to the target, or NULL. */
struct lintel_upconn *lintel_pool_acquire(struct lintel_worker *w, const struct lintel_sockaddr *a);
/* Gives an idle connection back (closed instead when the pool holds `keep` already). */
void lintel_pool_release(struct lintel_worker *w, const struct lintel_sockaddr *a,
                         struct lintel_upconn *c, unsigned keep, uint64_t idle_ms);
/* Closes and frees an upstream connection (idle or not). */
void lintel_upconn_free(struct lintel_upconn *c);
/* Frees every pool and its idle connections. */
void lintel_pools_free(struct lintel_worker *w);

#endif
