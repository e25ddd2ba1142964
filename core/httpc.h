/* Asynchronous outbound HTTP for plugins: one client per worker, driven by libcurl's multi
 * interface on the worker's event_base (curl_multi_socket_action; nothing blocks, nothing polls).
 *
 * A client and its calls belong to one worker thread: every function here, and every callback,
 * runs on that thread, so no lock is taken. Connections are kept alive and reused across calls
 * through the client's multi handle.
 *
 * What a call does with struct lintel_http_request (sdk/include/lintel/plugin.h):
 *   - only http:// and https:// URLs; redirects are not followed;
 *   - method NULL means GET; HEAD asks for no body; a body is sent as is (curl adds
 *     "Content-Type: application/x-www-form-urlencoded" unless the caller gives a Content-Type);
 *     "Expect: 100-continue" is never sent unless the caller adds it;
 *   - timeout_ms 0 means LINTEL_HTTPC_TIMEOUT_MS; it bounds the whole call (connect included);
 *   - the response body is capped at LINTEL_HTTPC_BODY_MAX and the response head at
 *     LINTEL_HTTPC_HEAD_MAX: beyond, the call fails (status 0, "response too large").
 * A failed call reports status 0 and a short error text (curl's). A response with any status
 * (404, 500, ...) is a success as far as the client is concerned. */
#ifndef LINTEL_HTTPC_H
#define LINTEL_HTTPC_H

#include <lintel/plugin.h>

#define LINTEL_HTTPC_TIMEOUT_MS 5000
#define LINTEL_HTTPC_BODY_MAX (1024 * 1024)
#define LINTEL_HTTPC_HEAD_MAX (64 * 1024)

struct event_base;
struct lintel_httpc;
struct lintel_httpc_call;

/* Initialises libcurl for the process. Call once from the main thread before any worker starts
 * (curl_global_init is not thread-safe); later calls do nothing and return the first result.
 * Returns 0, or -1 when libcurl cannot be initialised. */
int lintel_httpc_global_init(void);

/* Creates a client whose I/O and timers are events on base (borrowed: it must outlive the
 * client). Returns NULL when out of memory or when libcurl refuses. Thread: base's worker. */
struct lintel_httpc *lintel_httpc_new(struct event_base *base);

/* Cancels every call still in flight (their callbacks are NOT called), closes the kept-alive
 * connections and frees the client. NULL is ignored. Must not be called from inside a call's
 * callback. Thread: the client's worker. */
void lintel_httpc_free(struct lintel_httpc *c);

/* Starts req (everything in it is copied, so it may be freed when this returns; fields are read
 * only up to req->struct_size). cb(arg, resp) is called exactly once, later (never from inside
 * this function), on the client's worker, unless the call is cancelled first; resp is borrowed
 * for the duration of cb. The returned handle is owned by the client and stays valid until cb
 * has returned or the call is cancelled.
 * Returns NULL when the call cannot be started: req too short to hold a url, a URL that is not
 * http(s), a method that is not a token, a header holding CR or LF, or out of memory; cb is then
 * never called. Thread: the client's worker. */
struct lintel_httpc_call *lintel_httpc_start(struct lintel_httpc *c,
                                             const struct lintel_http_request *req,
                                             lintel_http_fn cb, void *arg);

/* Cancels a call in flight: its callback will never be called and its handle is freed. Safe
 * from inside another call's callback; from inside the call's own callback it does nothing (the
 * call is over). NULL is ignored. Thread: the client's worker. */
void lintel_httpc_cancel(struct lintel_httpc_call *call);

#endif
