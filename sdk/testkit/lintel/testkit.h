/* lintel plugin test kit — hosts ONE plugin in a unit test, without a gateway and without sockets.
 *
 * The kit implements every function of struct lintel_host_api (plugin.h) against fake requests,
 * with the semantics plugin.h documents, so a handler behaves here as it does in lintel. A test
 * loads a plugin (from its .so, or from its descriptor when the test links the plugin's sources),
 * creates an instance from YAML text, builds a request, runs one phase at a time and checks what
 * the plugin did:
 *
 *     struct lk_plugin *p = lk_plugin_load("build/plugins/x.so", err, sizeof(err));
 *     struct lk_instance *in = lk_instance_new(p, "{ name: X-A, value: b }", err, sizeof(err));
 *     struct lk_req *r = lk_req_new("GET", "/users?id=1");
 *     CU_ASSERT_EQUAL(lk_run(in, r, LINTEL_PHASE_RESPONSE_HEADERS), LINTEL_CONTINUE);
 *     CU_ASSERT_STRING_EQUAL(lk_resp_header(r, "X-A"), "b");
 *     lk_req_free(r);
 *     lk_instance_free(in);
 *     lk_plugin_free(p);
 *
 * Where plugin.h leaves a behaviour open, the kit does what lintel's host does. Misuse of the
 * ABI that lintel cannot report to the plugin (resume() without PAUSE or twice, RESPOND without
 * a response, an unknown result, req_body_buffer's 0 not followed by PAUSE, cfg_error twice,
 * outside create or followed by create returning 0, timer_stop or watch_stop on a handle lintel
 * has already freed) is logged as "error [testkit] ..." and counted by lk_violations(); a test
 * should assert that it is 0.
 *
 * Time is virtual: timers and outbound-call answers come only from lk_advance(). Everything is
 * single-threaded: the test's thread plays lintel's main thread and worker 0 (req_worker is 0).
 * Strings returned by lk_* getters are NUL-terminated and owned by the kit: valid until the
 * request (or instance) is freed or the plugin changes that value, whichever comes first. */
#ifndef LINTEL_TESTKIT_H
#define LINTEL_TESTKIT_H

#include <stddef.h>
#include <stdint.h>

#include <lintel/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

struct lk_plugin;   /* a loaded plugin image (or a linked-in descriptor) */
struct lk_instance; /* one instance of it, created from YAML config */
struct lk_req;      /* one fake request and its response */

/* ---- plugins and instances ---------------------------------------------------------------- */

/* dlopens so_path (RTLD_NOW | RTLD_LOCAL), finds lintel_plugin_v1 and checks it as lintel's
 * loader does: abi_major equal to LINTEL_ABI_MAJOR, abi_minor <= LINTEL_ABI_MINOR, struct_size at
 * least the ABI 1.0 descriptor, name [a-z0-9_-]{1,63}, version MAJOR.MINOR.PATCH[-pre][+build].
 * Returns NULL with err set to "SO_PATH: reason", with the loader's phrases (docs/abi.md: "no
 * symbol lintel_plugin_v1", "wrong ABI major 2 (host 1)", "dlopen: ..."). Free with
 * lk_plugin_free. */
struct lk_plugin *lk_plugin_load(const char *so_path, char *err, size_t errlen);

/* Same checks for a descriptor linked into the test itself (desc must outlive the result).
 * Returns NULL with err set. */
struct lk_plugin *lk_plugin_from_descriptor(const struct lintel_plugin *desc, char *err,
                                            size_t errlen);

/* Unloads the plugin; free its instances first. NULL is ignored. */
void lk_plugin_free(struct lk_plugin *p);

/* Creates an instance named after the plugin, as lintel does for a route's plugin entry: parses
 * yaml_config (the text of the entry's `config:` value; NULL = no config given, create gets a
 * NULL node), calls create (a plugin without create gets an instance with NULL data), then
 * worker_init(instance, 0). Returns NULL with err set to "LINE:COL: key.path: message" for a YAML
 * or config error (lines and columns of yaml_config; the key path is relative to the config node
 * and left out when the error is about the config node itself; 1:1 when there is no config),
 * "create failed" when create fails without cfg_error, or "worker_init failed on worker 0"
 * (destroy has then been called). */
struct lk_instance *lk_instance_new(struct lk_plugin *p, const char *yaml_config, char *err,
                                    size_t errlen);

/* Stops the instance's worker timers and worker calls, calls worker_fini(instance, 0) and
 * destroy, as lintel does when the last configuration using the instance is gone. Free the
 * instance's requests first. Shared counters and cache entries stay (lk_shared_reset). NULL is
 * ignored. */
void lk_instance_free(struct lk_instance *in);

/* Calls the plugin's reopen (as lintel does on SIGUSR1), if it has one. */
void lk_instance_reopen(struct lk_instance *in);

/* The configuration's top-level `consumers:` for instances created from now on (consumer_count,
 * consumer_at): yaml is that list's text, e.g. "[{ name: alice, id: '1', credentials: { keys:
 * [k1] } }]", checked as lintel checks it (maps of name, id, credentials; unique names). NULL:
 * no consumers. Returns 0, or -1 with err set ("LINE:COL: consumers[0].name: must be a string").
 * Global; copied. */
int lk_set_consumers(const char *yaml, char *err, size_t errlen);

/* What the instance's handler has counted with metric_add(name), 0 if never. */
uint64_t lk_metric(const struct lk_instance *in, const char *name);

/* The last value the instance set with metric_set(name), 0 if never. */
int64_t lk_gauge(const struct lk_instance *in, const char *name);

/* Sets the wall clock now_ms reports to unix_ms at the current virtual time; lk_advance moves
 * both. Until called, now_ms starts at 1767225600000 (2026-01-01T00:00:00Z). */
void lk_clock_set_unix(uint64_t unix_ms);

/* ---- fake requests ------------------------------------------------------------------------ */

/* A request as the client sent it: target is "path" or "path?query". Client 127.0.0.1, no route,
 * no upstream, no body, no response. Aborts when out of memory (this is test code). Free with
 * lk_req_free. */
struct lk_req *lk_req_new(const char *method, const char *target);

/* Adds a request header as the client sent it, after the ones added before (give a repeated
 * header twice). An X-Request-Id given here becomes the request id (req_id). Copied. */
void lk_req_set_header(struct lk_req *r, const char *name, const char *value);

/* The client's IP text (req_client_addr), the matched route's name (req_route) and the upstream
 * the route sends to (upstream_name, until a plugin calls set_upstream). Copied. */
void lk_req_set_client(struct lk_req *r, const char *ip);
void lk_req_set_route(struct lk_req *r, const char *name);
void lk_req_set_upstream(struct lk_req *r, const char *name);

/* Declares an upstream of the "current configuration": once one is declared, set_upstream to a
 * name never declared returns -1. Until then every name exists. Global; copied. */
void lk_declare_upstream(const char *name);

/* The request body the client sends (borrowed: body must outlive r). arrived = 1: it is already
 * read when a plugin asks for it (req_body_buffer returns 1 at once); 0: it comes later
 * (req_body_buffer returns 0, the handler returns PAUSE and lk_run calls it again once the body
 * is in, as lintel does). Over the plugin's cap the request ends with 413 and lk_run returns
 * LINTEL_RESPOND. */
void lk_req_set_body(struct lk_req *r, const void *body, size_t len, int arrived);

/* The upstream's response, as RESPONSE_HEADERS and later phases see it: status and body (NUL-
 * terminated text; NULL = empty), then headers added one by one. Replaces any response the
 * request had. Running RESPONSE_HEADERS or later without one behaves as if the upstream answered
 * 200 with no body. */
void lk_req_set_response(struct lk_req *r, int status, const char *body);
void lk_req_set_response_header(struct lk_req *r, const char *name, const char *value);

/* RESPONSE_BODY: the upstream body reaches the handler in pieces of n bytes (0, the default: all
 * at once), then once more with an empty chunk and resp_body_last = 1, as lintel relays it. */
void lk_req_set_chunk_size(struct lk_req *r, size_t n);

/* Makes the current response a gateway-made failure (upstream_failure returns failure), as
 * lintel does when the upstream cannot be reached: status and JSON error body as lintel writes
 * them (502 connect/error, 504 timeout, 503 no healthy target). Replaces any response. */
void lk_req_set_upstream_failure(struct lk_req *r, enum lintel_upstream_failure failure);

/* How many times a plugin called resend() on r. After resend the request's response is gone
 * (lk_resp_status 0) and the request as it would go upstream again reads through lk_req_path,
 * lk_upstream, ...; give it the new attempt's response with lk_req_set_response. */
unsigned lk_resent(const struct lk_req *r);

/* Ends the request: cancels its timers and outbound calls, runs every ctx cleanup exactly once
 * (also when paused), frees its memory. NULL is ignored. */
void lk_req_free(struct lk_req *r);

/* Healthy-target count of upstream name, for upstream_healthy (declares the upstream too).
 * Upstreams declared without a count have 1 healthy target. Global. */
void lk_set_upstream_healthy(const char *name, int healthy);

/* ---- running ------------------------------------------------------------------------------ */

/* Runs in's handler for phase on r, as lintel's chain would, and returns the result the request
 * goes on with (LINTEL_CONTINUE when the plugin has no handler for phase):
 *   - REWRITE, ACCESS, BALANCE: LINTEL_PAUSE leaves r paused until the plugin calls resume()
 *     (see lk_resumed); run nothing else on it meanwhile. resume() called before the handler
 *     returned PAUSE counts at once: lk_run returns the resumed result.
 *   - LINTEL_RESPOND needs a response made with respond(); without one it is a violation and
 *     turns into LINTEL_ERROR, as does a result lintel does not know.
 *   - LINTEL_ERROR, before the response head has gone out (up to RESPONSE_HEADERS), replaces
 *     the response with lintel's 500 JSON error ("plugin NAME/INSTANCE failed").
 *   - RESPONSE_BODY: the handler runs once per chunk (lk_req_set_chunk_size), only for an
 *     upstream response (lintel writes a plugin's own response at once); an ERROR or PAUSE there
 *     is logged and ignored by lintel, and returned here as LINTEL_ERROR.
 *   - PAUSE in RESPONSE_HEADERS or RESPONSE_BODY is not supported by lintel: ERROR.
 *   - LOG: the result is returned but changes nothing; PAUSE there is a violation.
 * Headers a plugin set before the response existed are applied when it comes (respond's
 * RESPOND, an error, or the first response phase). */
enum lintel_result lk_run(struct lk_instance *in, struct lk_req *r, enum lintel_phase phase);

/* Moves the virtual clock ms forward and fires every timer and outbound-call answer that is then
 * due, in due order (ones they start fire too if due). Watched fds (worker_watch) that are ready
 * get their callbacks first and after each timer, without waiting. Returns the number of
 * callbacks run. */
unsigned lk_advance(uint64_t ms);

/* Waits up to timeout_ms of real time (-1: no limit) for a watched fd to be ready, then runs
 * the ready watches' callbacks until none is ready. For plugins talking to a real peer over a
 * socket (a Redis server, a socketpair the test answers on). Returns the number run. */
unsigned lk_poll(int timeout_ms);

/* 1 when the plugin called resume() for r's last PAUSE, with the result the request went on
 * with in *out (out may be NULL); 0 otherwise. A resumed ERROR or RESPOND has been applied as
 * lk_run would. */
int lk_resumed(const struct lk_req *r, enum lintel_result *out);

/* ---- what the plugin did ------------------------------------------------------------------ */

/* The request as it would go upstream: method, path (without query), query (without '?', NULL
 * when there is none), first value of a header (case-insensitive; NULL when absent). */
const char *lk_req_method(const struct lk_req *r);
const char *lk_req_path(const struct lk_req *r);
const char *lk_req_query(const struct lk_req *r);
const char *lk_req_header(const struct lk_req *r, const char *name);

/* The response as the client would get it: status (0 while none exists), first value of a
 * header (NULL when absent; Content-Type includes the type respond gave), body (NUL-terminated;
 * *len, if len is not NULL, gets its length). */
int lk_resp_status(const struct lk_req *r);
const char *lk_resp_header(const struct lk_req *r, const char *name);
const char *lk_resp_body(const struct lk_req *r, size_t *len);

/* The upstream the request goes to (set_upstream, else lk_req_set_upstream; NULL when neither),
 * the authenticated consumer's name (NULL when none), the first access-record field key (NULL
 * when none). */
const char *lk_upstream(const struct lk_req *r);
/* The target address a plugin chose with set_target, or NULL (the kit has no target list, so
 * any address is accepted). */
const char *lk_target(const struct lk_req *r);
const char *lk_consumer_name(const struct lk_req *r);
const char *lk_log_field(const struct lk_req *r, const char *key);

/* ---- outbound HTTP (http_call, worker_http_call) ------------------------------------------ */

/* Calls to upstream://NAME/... are accepted when NAME is a declared upstream with a healthy
 * target (or none is declared), and answered by the URL as the plugin wrote it.
 * The fake answer to calls to url (exact match; NULL: every url without an answer of its own):
 * status (0: the call fails, error "connection refused") and body (NULL = empty), delivered
 * delay_ms of virtual time after the call (lk_advance). A call slower than its timeout_ms fails
 * with error "timeout" when the timeout passes. A call to a url with no answer fails at once
 * (on the next lk_advance) with error "testkit: no answer for URL". Replaces an earlier answer
 * for url and its headers. Copied; global. */
void lk_http_respond(const char *url, int status, const char *body, uint64_t delay_ms);
/* Adds a header to url's answer (lk_http_respond first). Copied. */
void lk_http_respond_header(const char *url, const char *name, const char *value);

/* An outbound call a plugin made; strings NUL-terminated, headers as the plugin gave them
 * ("Name: value", NULL-terminated array, never NULL). */
struct lk_http_call {
    const char *method;
    const char *url;
    const char *const *headers;
    const char *body;
    size_t body_len;
    uint64_t timeout_ms; /* after the 0 = 5000 default */
};

/* Call i (0 = first) since the last lk_http_reset, or NULL past the end. Valid until then. */
const struct lk_http_call *lk_http_call_at(size_t i);

/* Forgets the answers and the recorded calls (calls in flight still get theirs). */
void lk_http_reset(void);

/* ---- shared state (counter_add, cache_set, cache_get) ------------------------------------- */

/* Counters and cache entries are keyed by "plugin/instance" and key and outlive instances (as in
 * lintel, where they survive a version swap); windows and TTLs run on the virtual clock. This
 * forgets them all. */
void lk_shared_reset(void);

/* ---- logs and violations ------------------------------------------------------------------ */

/* Everything logged since the last lk_log_clear, one "LEVEL [plugin/instance] message\n" line per
 * call (LEVEL: debug, info, warn, error). Never NULL. Set LINTEL_TESTKIT_LOG=1 in the environment
 * to copy lines to stderr as well. */
const char *lk_log_lines(void);

/* ABI misuse seen since the last lk_log_clear (each is also an "error [testkit]" log line). */
unsigned lk_violations(void);

/* Forgets the captured lines and the violation count. */
void lk_log_clear(void);

/* Runs the CUnit suites (registering them, after any the test registered itself), verbose, and
 * returns the exit code for main: 0 when every suite set up and every test passed, else 1. */
struct CU_SuiteInfo;
int lk_test_run(struct CU_SuiteInfo *suites);

#ifdef __cplusplus
}
#endif

#endif
