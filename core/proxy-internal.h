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
#include "plugin_host.h"
#include "plugin_read.h"

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
    bool tls;             /* accepted on a TLS listener (X-Forwarded-Proto: https) */
    struct lintel_wsnap *handshake_ws; /* held until the TLS handshake is done: SNI reads it */
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
    int forced_target; /* chosen by a plugin (set_target), or -1 */
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

    /* plugins (phases.c, host_api.c) */
    const struct lintel_chain *chain;
    struct lintel_instance **chosen; /* per chain slot: the instance (version) this request uses */
    int phase;                       /* enum lintel_phase being run */
    unsigned slot;                   /* chain position within the phase */
    bool in_handler, paused, resume_pending, rerun, in_resp_phase, resp_phase_done;
    bool path_rewritten; /* a plugin set the path: strip_prefix no longer applies */
    int up_failure;      /* enum lintel_upstream_failure of a gateway-made response */
    bool resending;      /* a RESPONSE_HEADERS handler called resend() */
    unsigned resends;
    int deferred_status; /* a failure raised inside a handler, answered once it returns */
    const char *deferred_error;
    int resume_result;
    const struct lintel_instance *failed; /* the instance whose handler returned ERROR */
    struct lintel_pctx *ctx;              /* per instance index, allocated on first ctx_set */
    const char *consumer_name, *consumer_id;
    struct lintel_headers log_fields; /* name = key */
    struct lintel_headers pending_resp; /* response headers set before a response exists */
    bool own;                           /* the response is made here (respond / error) */
    const char *own_type;
    char *own_body;
    size_t own_body_len;
    struct lintel_str chunk; /* RESPONSE_BODY: the chunk being relayed */
    bool chunk_last;
    /* request body buffering (req_body_buffer) */
    bool buffering, body_buffered;
    uint64_t body_cap;
    struct evbuffer *body_buf;
    /* timing for LOG */
    uint64_t start_unix_us;
    struct timespec up_start, up_sent;
    uint64_t up_connect_us, up_response_us;
};

/* A plugin instance's per-request context. */
struct lintel_pctx {
    void *data;
    void (*cleanup)(void *data);
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
    bool tls;        /* https: bev is an OpenSSL bufferevent */
    uint64_t idle_ms;
};

/* client.c */
void lintel_client_accept(struct lintel_worker *w, size_t listen_index, int fd,
                          const struct sockaddr *sa, int salen);
/* Closes every idle client connection and marks the others to close after their response. */
void lintel_clients_drain(struct lintel_worker *w);
/* Ends requests running on a snapshot retired more than drain_ms before now_ms: 503 when
 * nothing was sent yet, else the connection closes. Counted in metrics. */
void lintel_clients_expire(struct lintel_worker *w, uint64_t now_ms, uint64_t drain_ms);
/* Frees every client connection at once (drain timeout / worker exit). */
void lintel_clients_close_all(struct lintel_worker *w);
/* Writes a gateway-made error response with the JSON body and ends the request. */
void lintel_request_fail(struct lintel_request *req, int status, const char *error);
/* The same for an upstream that failed: plugins read why with upstream_failure. */
void lintel_request_fail_upstream(struct lintel_request *req, int failure, int status,
                                  const char *error);
/* A RESPONSE_HEADERS handler called resend(): forget the response and go upstream again. */
void lintel_request_resend(struct lintel_request *req);
/* The upstream side finished queuing the response to the client. */
void lintel_request_response_done(struct lintel_request *req);
/* The upstream side aborted after the response head was sent: the client connection closes. */
void lintel_request_abort(struct lintel_request *req, const char *why);
/* Moves request body bytes from the client to the upstream, honouring backpressure. */
void lintel_request_pump_body(struct lintel_request *req);

/* Continues a routed request after its request phases: 100-continue, body, upstream. */
void lintel_request_proceed(struct lintel_request *req);
/* Collects the whole request body (at most cap bytes, else 413) for a plugin. Returns 1 when it
 * is complete, 0 when the request must pause until it is, -1 when too late or out of memory. */
int lintel_request_buffer_body(struct lintel_request *req, uint64_t cap);
/* Sends the response made here (req->own: status, pending headers, own_body) after running
 * RESPONSE_HEADERS on it, and ends the request. */
void lintel_request_send_own(struct lintel_request *req);
/* Sets the response made here (copies body). Returns 0 or -1. */
int lintel_request_set_own(struct lintel_request *req, int status, const char *type,
                           const void *body, size_t len);

/* phases.c */
/* Picks the chain and the instance of each slot for a request (route may be NULL). */
int lintel_phases_init(struct lintel_request *req);
/* Runs REWRITE, ACCESS, BALANCE from where the request is; then proceeds, responds, or fails. */
void lintel_phases_run(struct lintel_request *req);
/* Runs RESPONSE_HEADERS on the response in req->resp (proxied or own). Returns 0 to go on,
 * 1 when a plugin set its own response (req->own), -1 when a handler failed (req->failed),
 * 2 when a handler called resend() (the caller goes upstream again: lintel_request_resend). */
int lintel_phases_response_headers(struct lintel_request *req);
/* Runs RESPONSE_BODY handlers on one chunk (last: the body ends). */
void lintel_phases_response_body(struct lintel_request *req, const char *data, size_t len,
                                 bool last);
/* Runs LOG handlers, then every context cleanup (exactly once). */
void lintel_phases_end(struct lintel_request *req);
/* The whole request body has been buffered for a plugin: re-run the handler that asked. */
void lintel_phases_body_buffered(struct lintel_request *req);
/* host API resume(). */
void lintel_phases_resume(struct lintel_request *req, enum lintel_result res);

/* host_api.c: value of cookie name in the request's Cookie headers, or {NULL,0} (query
 * arguments: lintel_query_arg in plugin_read.h). */
struct lintel_str lintel_cookie_get(const struct lintel_headers *hs, const char *name);

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
/* A pooled connection to the target (same address and TLS settings), or NULL. */
struct lintel_upconn *lintel_pool_acquire(struct lintel_worker *w,
                                          const struct lintel_target_conf *t);
/* Gives an idle connection back (closed instead when the pool holds `keep` already). */
void lintel_pool_release(struct lintel_worker *w, const struct lintel_target_conf *t,
                         struct lintel_upconn *c, unsigned keep, uint64_t idle_ms);
/* Closes and frees an upstream connection (idle or not). */
void lintel_upconn_free(struct lintel_upconn *c);
/* Frees every pool and its idle connections. */
void lintel_pools_free(struct lintel_worker *w);

#endif
