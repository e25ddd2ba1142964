/* The cors plugin in a real browser. A page server in this process (libevent's evhttp, origin A =
 * http://127.0.0.1:A) serves one HTML page whose script calls the gateway (origin B =
 * http://127.0.0.1:B: another port, so another origin) four times:
 *
 *   simple        GET without credentials                           allowed
 *   preflighted   PUT with Content-Type: application/json, X-Trace   allowed after a preflight
 *   credentialed  GET with credentials: 'include' and a cookie      allowed (echo + credentials)
 *   denied        GET to a route whose cors config does not list A  blocked by the browser
 *
 * Headless Chromium loads the page and dumps the DOM once the calls are done; each call wrote
 * "ok:STATUS" or "blocked" into it, and what the upstream saw (method, cookie) next to it. The
 * test reads the dump and checks exactly which calls the browser let the page read, and that the
 * preflight was answered by the gateway (the upstream saw four requests, none of them OPTIONS).
 *
 * Chromium is /usr/bin/chromium, or $LINTEL_CHROMIUM. Without it the test FAILS: .ci/run installs
 * it (tools/deps.sh), so a missing browser is a broken machine, not a reason to skip. */
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>

#include "harness.h"

#define CHROMIUM_DEFAULT "/usr/bin/chromium"
#define CHROMIUM_TIMEOUT_MS 90000

static char plugin_dir[PATH_MAX];

/* ---- the page server (origin A) ----------------------------------------------------------- */

/* %d: the gateway's port. The script writes each outcome into the <li> of its id, and what the
 * upstream saw into the <li> id-seen, then "done" into #state. */
static const char page_fmt[] =
    "<!doctype html>\n"
    "<html><head><meta charset=\"utf-8\"><title>cors browser test</title></head><body>\n"
    "<ul>\n"
    "<li id=\"simple\">pending</li><li id=\"simple-seen\"></li>\n"
    "<li id=\"preflighted\">pending</li><li id=\"preflighted-seen\"></li>\n"
    "<li id=\"credentialed\">pending</li><li id=\"credentialed-seen\"></li>\n"
    "<li id=\"denied\">pending</li><li id=\"denied-seen\"></li>\n"
    "<li id=\"state\">running</li>\n"
    "</ul>\n"
    "<script>\n"
    "const gw = 'http://127.0.0.1:%d';\n"
    "document.cookie = 'sid=s3cret; path=/';\n"
    "function show(id, text) { document.getElementById(id).textContent = text; }\n"
    "async function call(id, path, init) {\n"
    "  try {\n"
    "    const res = await fetch(gw + path, init);\n"
    "    const seen = await res.json();\n"
    "    show(id, 'ok:' + res.status);\n"
    "    show(id + '-seen', seen.method + ' cookie=' + (seen.headers.cookie || 'none') +\n"
    "         ' x-trace=' + (seen.headers['x-trace'] || 'none'));\n"
    "  } catch (e) {\n"
    "    show(id, 'blocked');\n"
    "  }\n"
    "}\n"
    "Promise.all([\n"
    "  call('simple', '/api/simple', {}),\n"
    "  call('preflighted', '/api/items/1', {method: 'PUT', body: '{}',\n"
    "       headers: {'Content-Type': 'application/json', 'X-Trace': 't1'}}),\n"
    "  call('credentialed', '/api/me', {credentials: 'include'}),\n"
    "  call('denied', '/denied/x', {}),\n"
    "]).then(() => show('state', 'done'));\n"
    "</script>\n"
    "</body></html>\n";

struct page_server {
    struct event_base *base;
    struct evhttp *http;
    pthread_t thread;
    int gw_port;
    atomic_int pages; /* times /page was served */
};

static void on_page(struct evhttp_request *req, void *arg)
{
    struct page_server *s = arg;
    struct evbuffer *body = evbuffer_new();
    if (!body) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    if (strcmp(evhttp_request_get_uri(req), "/page") == 0) {
        evbuffer_add_printf(body, page_fmt, s->gw_port);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "text/html; charset=utf-8");
        evhttp_send_reply(req, 200, "OK", body);
        atomic_fetch_add(&s->pages, 1);
    } else {
        evhttp_send_reply(req, 404, "Not Found", body); /* /favicon.ico */
    }
    evbuffer_free(body);
}

static void *page_loop(void *arg)
{
    struct page_server *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

/* Starts the page server on a free port in its own thread. Returns the port, or -1. */
static int page_server_start(struct page_server *s, int gw_port)
{
    memset(s, 0, sizeof(*s));
    s->gw_port = gw_port;
    int port = it_free_port();
    if (!(s->base = event_base_new()) || !(s->http = evhttp_new(s->base)))
        return -1;
    evhttp_set_gencb(s->http, on_page, s);
    if (evhttp_bind_socket(s->http, "127.0.0.1", (ev_uint16_t)port) != 0) {
        fprintf(stderr, "page server: cannot listen on 127.0.0.1:%d\n", port);
        return -1;
    }
    if (pthread_create(&s->thread, NULL, page_loop, s) != 0)
        return -1;
    return port;
}

static void page_server_stop(struct page_server *s)
{
    if (s->thread) {
        event_base_loopbreak(s->base); /* thread-safe: evthread_use_pthreads in main */
        pthread_join(s->thread, NULL);
    }
    if (s->http)
        evhttp_free(s->http);
    if (s->base)
        event_base_free(s->base);
}

/* ---- the dumped DOM ----------------------------------------------------------------------- */

/* The text of the element with id="id" in dom (up to its first '<'), or "(missing)". */
static const char *dom_text(const char *dom, const char *id, char *out, size_t outlen)
{
    char needle[64];
    snprintf(needle, sizeof(needle), "id=\"%s\">", id);
    const char *p = dom ? strstr(dom, needle) : NULL;
    if (!p)
        return "(missing)";
    p += strlen(needle);
    size_t n = strcspn(p, "<");
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

static bool dom_is(const char *dom, const char *id, const char *want)
{
    char buf[256];
    const char *got = dom_text(dom, id, buf, sizeof(buf));
    if (strcmp(got, want) == 0)
        return true;
    fprintf(stderr, "#%s: got \"%s\", want \"%s\"\n", id, got, want);
    return false;
}

/* ---- the test ----------------------------------------------------------------------------- */

static long origin_requests(int port)
{
    struct it_http h;
    struct it_response r;
    if (it_http_init(&h) != 0)
        return -1;
    long n = -1;
    if (it_http_get(&h, it_url(port, "/stats"), NULL, &r) == 0) {
        n = (long)it_json_int(r.body.data, "requests");
        it_response_free(&r);
    }
    it_http_free(&h);
    return n;
}

static void test_browser_enforces_gateway_cors(void)
{
    const char *chromium = getenv("LINTEL_CHROMIUM");
    if (!chromium || !*chromium)
        chromium = CHROMIUM_DEFAULT;
    if (access(chromium, X_OK) != 0) {
        fprintf(stderr,
                "\nit_cors_browser: no Chromium at %s: install Debian's chromium package "
                "(tools/deps.sh, run by .ci/run, does) or set LINTEL_CHROMIUM\n",
                chromium);
        CU_FAIL_FATAL("chromium is not installed");
    }

    struct it_proc *origin = it_origin_start("o");
    CU_ASSERT_PTR_NOT_NULL_FATAL(origin);
    int gw_port = it_free_port();
    struct page_server ps;
    int page_port = page_server_start(&ps, gw_port);
    if (page_port < 0)
        page_server_stop(&ps);
    CU_ASSERT_FATAL(page_port > 0);

    const char *conf = it_temp_path("cors-browser.yaml");
    int rc =
        it_write_file(conf,
                      "listen: [ { address: \"127.0.0.1:%d\" } ]\n"
                      "admin: { enabled: false }\n"
                      "workers: 1\n"
                      "plugin_paths: [\"%s\"]\n"
                      "upstreams:\n"
                      "  o: { targets: [ { address: \"127.0.0.1:%d\" } ] }\n"
                      "routes:\n"
                      "  - name: api\n"
                      "    match: { paths: [\"/api\"] }\n"
                      "    upstream: o\n"
                      "    plugins:\n"
                      "      - name: cors\n"
                      "        config:\n"
                      "          origins: [\"http://127.0.0.1:%d\"]\n"
                      "          credentials: true\n"
                      "  - name: denied\n"
                      "    match: { paths: [\"/denied\"] }\n"
                      "    upstream: o\n"
                      "    plugins:\n"
                      "      - { name: cors, config: { origins: [\"https://other.example\"] } }\n",
                      gw_port, plugin_dir, origin->port, page_port);
    if (rc != 0)
        page_server_stop(&ps);
    CU_ASSERT_FATAL(rc == 0);
    struct it_proc *gw = it_lintel_start(conf, gw_port);
    if (!gw)
        page_server_stop(&ps);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gw);
    long before = origin_requests(origin->port);

    /* A fresh profile and HOME, so nothing from an earlier run (cookies, a cached preflight)
     * plays a part; the flags keep Chromium off the network (docs: .library machines/c.md). */
    const char *home = it_temp_path("chromium-home");
    mkdir(home, 0700);
    setenv("HOME", home, 1);
    char profile[PATH_MAX + 32], url[64];
    snprintf(profile, sizeof(profile), "--user-data-dir=%s", it_temp_path("chromium-profile"));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/page", page_port);
    char *argv[] = {(char *)chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    profile,
                    "--virtual-time-budget=5000",
                    "--dump-dom",
                    url,
                    NULL};
    struct it_buf dom = {0}, err = {0};
    int64_t t0 = it_now_ms();
    int exit_code = it_run(argv, CHROMIUM_TIMEOUT_MS, &dom, &err);
    page_server_stop(&ps);
    fprintf(stderr, "chromium: exit %d after %lld ms, page served %d time(s)\n", exit_code,
            (long long)(it_now_ms() - t0), atomic_load(&ps.pages));

    bool ok = exit_code == 0;
    ok &= dom_is(dom.data, "state", "done");
    ok &= dom_is(dom.data, "simple", "ok:200");
    ok &= dom_is(dom.data, "simple-seen", "GET cookie=none x-trace=none");
    ok &= dom_is(dom.data, "preflighted", "ok:200");
    ok &= dom_is(dom.data, "preflighted-seen", "PUT cookie=none x-trace=t1");
    ok &= dom_is(dom.data, "credentialed", "ok:200");
    ok &= dom_is(dom.data, "credentialed-seen", "GET cookie=sid=s3cret x-trace=none");
    ok &= dom_is(dom.data, "denied", "blocked");
    ok &= dom_is(dom.data, "denied-seen", "");
    CU_ASSERT(exit_code == 0);
    CU_ASSERT(ok);
    /* The upstream saw the four calls (the denied GET too: only the browser withholds it) and
     * no OPTIONS: the gateway answered the preflight. +1 for this /stats call. */
    CU_ASSERT_EQUAL(origin_requests(origin->port), before + 5);
    if (!ok)
        fprintf(stderr, "--- dumped DOM ---\n%s\n--- chromium stderr (tail) ---\n%s\n",
                dom.data ? dom.data : "(none)",
                err.data ? err.data + (err.len > 4000 ? err.len - 4000 : 0) : "(none)");
    it_buf_free(&dom);
    it_buf_free(&err);
}

static CU_TestInfo tests[] = {
    {"headless Chromium: 3 calls allowed, the other origin's route blocked",
     test_browser_enforces_gateway_cors},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"cors-browser", NULL, it_suite_cleanup, it_test_setup, it_test_teardown, tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    char bin[PATH_MAX];
    snprintf(bin, sizeof(bin), "%s", LINTEL_BIN);
    snprintf(plugin_dir, sizeof(plugin_dir), "%s/plugins", dirname(bin));
    if (evthread_use_pthreads() != 0) {
        fprintf(stderr, "evthread_use_pthreads failed\n");
        return 1;
    }
    return it_main(suites, 180);
}
