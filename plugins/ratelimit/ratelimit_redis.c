/* ratelimit, policy redis: limits shared by every gateway that talks to one Redis.
 *
 * Each worker keeps one asynchronous hiredis connection per instance, driven by the worker's own
 * loop through worker_watch (hiredis' event hooks below) and worker_timer; nothing here blocks.
 * A request's check is one EVALSHA of the script below, which decides every limit of the request
 * atomically inside Redis, on Redis' clock, so all gateways agree. The ACCESS handler returns
 * PAUSE and the reply resumes the request.
 *
 * A request and its Redis call are tied loosely, because either may end first:
 *   - struct pending lives in the request's arena; struct rl_call is a slot of the worker's
 *     fixed table (no allocation per request) that hiredis holds as the reply's privdata;
 *   - the reply, the request's timeout timer and the request's end (ctx cleanup) each break the
 *     link first; whoever finds it broken does nothing, so a reply that arrives after the
 *     request ended (or after its timeout) never touches it.
 *
 * Redis unreachable (connect refused or slow, disconnect, error reply) or slow (a call past
 * `timeout`): with fault_tolerant the request is decided by the local store at once, the
 * problem is logged once, and the worker reconnects every second in the background (after a
 * timeout it stops asking Redis for a second). Without fault_tolerant such requests get 503. */
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "ratelimit.h"

#define CALLS 512        /* calls in flight per worker and instance; more: decided locally */
#define RETRY_MS 1000    /* between reconnection attempts */
#define COOLDOWN_MS 1000 /* after a call timed out, Redis is left alone this long */

/* KEYS[i]: one per limit. ARGV[1]: f (fixed_window), s (sliding_window) or t (token_bucket);
 * ARGV[3i-1 .. 3i+1]: limit i's count, period (ms) and burst. Returns { allowed (1/0), then per
 * limit: remaining, reset ms, retry ms (0: this limit lets the request through) }. Windows are
 * counted in KEY:INDEX with the index of the window on Redis' clock (so aligned on the Unix
 * epoch); token_bucket keeps the bucket's "theoretical arrival time" (GCRA) in KEY. Nothing is
 * counted unless every limit lets the request through. */
static const char script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local alg = ARGV[1]\n"
    "local out = {1}\n"
    "local commit = {}\n"
    "for i = 1, #KEYS do\n"
    "  local limit = tonumber(ARGV[3 * i - 1])\n"
    "  local period = tonumber(ARGV[3 * i])\n"
    "  local burst = tonumber(ARGV[3 * i + 1])\n"
    "  local ok, rem, reset, retry = false, 0, 0, 0\n"
    "  if alg == 't' then\n"
    "    local step = period / limit\n"
    "    local cap = burst * step\n"
    "    local tat = tonumber(redis.call('GET', KEYS[i]) or 0)\n"
    "    if tat < now then tat = now end\n"
    "    local ntat = tat + step\n"
    "    ok = ntat - now <= cap + 0.01\n"
    "    if ok then\n"
    "      rem = math.floor((cap + 0.01 - (ntat - now)) / step)\n"
    "      reset = ntat - now\n"
    "      commit[i] = {ntat}\n"
    "    else\n"
    "      reset = tat - now\n"
    "      retry = math.max(1, ntat - cap - now)\n"
    "    end\n"
    "  else\n"
    "    local idx = math.floor(now / period)\n"
    "    local key = KEYS[i] .. ':' .. idx\n"
    "    local cur = tonumber(redis.call('GET', key) or 0)\n"
    "    local elapsed = now - idx * period\n"
    "    local prev, share = 0, 0\n"
    "    reset = period - elapsed\n"
    "    if alg == 's' then\n"
    "      prev = tonumber(redis.call('GET', KEYS[i] .. ':' .. (idx - 1)) or 0)\n"
    "      share = math.floor((prev * (period - elapsed) + period - 1) / period)\n"
    "    end\n"
    "    ok = cur + 1 + share <= limit\n"
    "    if ok then\n"
    "      rem = limit - cur - 1 - share\n"
    "      if alg == 's' then commit[i] = {key, 2 * period} else commit[i] = {key, period} end\n"
    "    elseif alg == 'f' then\n"
    "      retry = reset\n"
    "    elseif cur >= limit then\n"
    "      retry = reset + period - math.floor((limit - 1) * period / cur)\n"
    "    else\n"
    "      retry = math.max(1, period - math.floor((limit - cur - 1) * period / prev) - elapsed)\n"
    "    end\n"
    "  end\n"
    "  if not ok then out[1] = 0 end\n"
    "  out[#out + 1] = rem\n"
    "  out[#out + 1] = math.ceil(reset)\n"
    "  out[#out + 1] = math.ceil(retry)\n"
    "end\n"
    "if out[1] == 1 then\n"
    "  for i = 1, #KEYS do\n"
    "    local c = commit[i]\n"
    "    if alg == 't' then\n"
    "      redis.call('SET', KEYS[i], string.format('%.3f', c[1]), 'PX', math.ceil(c[1] - now) + "
    "1)\n"
    "    elseif redis.call('INCR', c[1]) == 1 then\n"
    "      redis.call('PEXPIRE', c[1], c[2])\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

struct pending;

/* A command in flight. Slots are recycled; hiredis holds one as the reply's privdata. */
struct rl_call {
    struct rl_call *next_free;
    struct pending *p; /* NULL: nobody waits for the reply any more */
};

/* A request waiting for its reply; in the request's arena. */
struct pending {
    struct rl_redis *rr;
    lintel_req *r;
    struct rl_call *call; /* NULL once the reply, the timeout or the request's end came */
    char key[];           /* RL_KEY_PREFIX bytes of room, the key, NUL (for a local decision) */
};

struct rl_redis {
    struct ratelimit *rl;
    redisAsyncContext *ac; /* NULL while disconnected */
    lintel_watch *watch;   /* on ac's fd */
    int events;            /* what watch waits for */
    bool ready;            /* the connection is set up (AUTH, SELECT, SCRIPT LOAD answered) */
    bool degraded;         /* a call timed out: Redis is left alone until cooldown ends */
    bool stopping;         /* worker_fini: schedule nothing */
    bool tasks_stopped;    /* the host has stopped our watch and timers */
    lintel_timer *retry, *connect_deadline, *cooldown;
    char sha[41];
    struct rl_call *free_calls;
    struct rl_call calls[CALLS];
};

static void connect_now(struct rl_redis *rr);

/* ---- hiredis' event hooks on the worker loop ------------------------------------------------- */

static void on_fd(int fd, int events, void *arg)
{
    struct rl_redis *rr = arg;
    redisAsyncContext *ac = rr->ac;
    (void)fd;
    if (!ac)
        return;
    if (events & LINTEL_WATCH_READ)
        redisAsyncHandleRead(ac);
    if ((events & LINTEL_WATCH_WRITE) && rr->ac == ac) /* the read may have closed it */
        redisAsyncHandleWrite(ac);
}

static void watch_events(struct rl_redis *rr, int events)
{
    const struct lintel_host_api *h = rr->rl->host;
    if (rr->tasks_stopped || events == rr->events || !rr->ac)
        return;
    if (!rr->watch) {
        rr->watch = h->worker_watch(rr->rl->self, rr->ac->c.fd, events, on_fd, rr);
        /* No watch: the connection cannot progress and its deadline will drop it. */
        rr->events = rr->watch ? events : 0;
        return;
    }
    if (h->watch_set(rr->watch, events) == 0)
        rr->events = events;
}

static void ev_add_read(void *arg)
{
    struct rl_redis *rr = arg;
    watch_events(rr, rr->events | LINTEL_WATCH_READ);
}

static void ev_del_read(void *arg)
{
    struct rl_redis *rr = arg;
    watch_events(rr, rr->events & ~LINTEL_WATCH_READ);
}

static void ev_add_write(void *arg)
{
    struct rl_redis *rr = arg;
    watch_events(rr, rr->events | LINTEL_WATCH_WRITE);
}

static void ev_del_write(void *arg)
{
    struct rl_redis *rr = arg;
    watch_events(rr, rr->events & ~LINTEL_WATCH_WRITE);
}

static void ev_cleanup(void *arg)
{
    struct rl_redis *rr = arg;
    if (rr->watch && !rr->tasks_stopped)
        rr->rl->host->watch_stop(rr->watch);
    rr->watch = NULL;
    rr->events = 0;
}

/* ---- the connection -------------------------------------------------------------------------- */

static void stop_timer(struct rl_redis *rr, lintel_timer **t)
{
    if (*t && !rr->tasks_stopped)
        rr->rl->host->timer_stop(*t);
    *t = NULL;
}

static void warn_down(struct rl_redis *rr, const char *what)
{
    struct ratelimit *rl = rr->rl;
    if (!atomic_exchange(&rl->warned_redis, true))
        rl->host->log(rl->self, LINTEL_LOG_LEVEL_WARN, "redis %s:%d %s: %s until it answers again",
                      rl->redis.addr, rl->redis.port, what,
                      rl->fault_tolerant ? "limiting requests locally" : "refusing requests (503)");
}

static void on_retry(void *arg)
{
    struct rl_redis *rr = arg;
    rr->retry = NULL; /* a one-shot timer is gone once it fires */
    connect_now(rr);
}

/* The connection is gone (or never came): forget it and try again later. Called before hiredis
 * frees the context, or just before we do. */
static void conn_lost(struct rl_redis *rr, const char *why)
{
    rr->ac = NULL;
    rr->ready = false;
    stop_timer(rr, &rr->connect_deadline);
    if (rr->stopping)
        return;
    warn_down(rr, why);
    if (!rr->retry)
        rr->retry = rr->rl->host->worker_timer(rr->rl->self, RETRY_MS, 0, on_retry, rr);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct rl_redis *rr = ac->data;
    if (status != REDIS_OK && rr->ac == ac)
        conn_lost(rr, "is unreachable"); /* hiredis frees ac after this */
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rl_redis *rr = ac->data;
    (void)status;
    if (rr->ac == ac)
        conn_lost(rr, "closed the connection");
}

/* Setup took too long (a connect that hangs, a Redis that does not answer). */
static void on_connect_deadline(void *arg)
{
    struct rl_redis *rr = arg;
    rr->connect_deadline = NULL;
    redisAsyncContext *ac = rr->ac;
    if (!ac || rr->ready)
        return;
    conn_lost(rr, "does not answer");
    redisAsyncFree(ac); /* not inside a hiredis callback: a timer */
}

/* Redis refused part of the setup (a wrong password, say): every reconnection would be refused
 * the same way, so this is logged once. */
static void setup_refused(struct rl_redis *rr, const redisReply *reply)
{
    struct ratelimit *rl = rr->rl;
    if (!atomic_exchange(&rl->warned_redis_setup, true))
        rl->host->log(rl->self, LINTEL_LOG_LEVEL_ERROR, "redis %s:%d refuses the setup: %.*s",
                      rl->redis.addr, rl->redis.port, (int)reply->len, reply->str);
}

/* A setup reply that must not be an error (AUTH, SELECT). */
static void on_setup(redisAsyncContext *ac, void *reply_, void *arg)
{
    struct rl_redis *rr = arg;
    redisReply *reply = reply_;
    if (rr->ac != ac || !reply || reply->type != REDIS_REPLY_ERROR)
        return;
    setup_refused(rr, reply);
    redisAsyncDisconnect(ac); /* on_disconnect follows */
}

static void on_script(redisAsyncContext *ac, void *reply_, void *arg)
{
    struct rl_redis *rr = arg;
    redisReply *reply = reply_;
    if (rr->ac != ac || !reply)
        return;
    if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
        if (reply->type == REDIS_REPLY_ERROR)
            setup_refused(rr, reply);
        redisAsyncDisconnect(ac);
        return;
    }
    memcpy(rr->sha, reply->str, 40);
    rr->sha[40] = '\0';
    rr->ready = true;
    stop_timer(rr, &rr->connect_deadline);
}

static void connect_now(struct rl_redis *rr)
{
    const struct rl_redis_config *rc = &rr->rl->redis;
    redisAsyncContext *ac = redisAsyncConnect(rc->addr, rc->port);
    if (!ac || ac->err) {
        if (ac)
            redisAsyncFree(ac);
        conn_lost(rr, "is unreachable");
        return;
    }
    ac->data = rr;
    ac->ev.data = rr;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    rr->ac = ac;
    rr->ready = false;
    /* Hooks first: setting the connect callback starts watching for the connect to finish. */
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* Pipelined behind the connect; the first request goes once SCRIPT LOAD has answered. */
    if (rc->password)
        redisAsyncCommand(ac, on_setup, rr, "AUTH %b", rc->password, rc->password_len);
    if (rc->database)
        redisAsyncCommand(ac, on_setup, rr, "SELECT %lld", (long long)rc->database);
    redisAsyncCommand(ac, on_script, rr, "SCRIPT LOAD %s", script);
    rr->connect_deadline = rr->rl->host->worker_timer(
        rr->rl->self, rc->timeout_ms < RETRY_MS ? RETRY_MS : rc->timeout_ms, 0, on_connect_deadline,
        rr);
}

struct rl_redis *rl_redis_start(struct ratelimit *rl)
{
    struct rl_redis *rr = calloc(1, sizeof(*rr));
    if (!rr)
        return NULL;
    rr->rl = rl;
    for (int i = CALLS - 1; i >= 0; i--) {
        rr->calls[i].next_free = rr->free_calls;
        rr->free_calls = &rr->calls[i];
    }
    connect_now(rr);
    return rr;
}

void rl_redis_stop(struct rl_redis *rr, bool tasks_stopped)
{
    rr->stopping = true;
    rr->tasks_stopped = tasks_stopped;
    stop_timer(rr, &rr->retry);
    stop_timer(rr, &rr->connect_deadline);
    stop_timer(rr, &rr->cooldown);
    redisAsyncContext *ac = rr->ac;
    rr->ac = NULL;
    if (ac)
        redisAsyncFree(ac); /* pending replies get NULL: their requests are gone already */
    free(rr);
}

/* ---- a request's check ----------------------------------------------------------------------- */

static void call_free(struct rl_redis *rr, struct rl_call *call)
{
    call->p = NULL;
    call->next_free = rr->free_calls;
    rr->free_calls = call;
}

static void on_cooldown(void *arg)
{
    struct rl_redis *rr = arg;
    rr->cooldown = NULL;
    rr->degraded = false;
}

/* Decides without Redis: the local store, or 503 when fault_tolerant is off. */
static enum lintel_result fallback(struct pending *p)
{
    struct ratelimit *rl = p->rr->rl;
    if (!rl->fault_tolerant)
        return rl_unavailable(rl, p->r);
    rl_count(rl, RL_M_FALLBACK);
    struct rl_decision d;
    rl_local_decide(rl, p->r, p->key + RL_KEY_PREFIX, &d);
    return rl_apply(rl, p->r, &d, "fallback");
}

/* The script's answer; -1 when it is not one. */
static int decode(const struct ratelimit *rl, const redisReply *reply, struct rl_decision *d)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 1 + 3 * rl->nlimits)
        return -1;
    for (size_t i = 0; i < reply->elements; i++)
        if (reply->element[i]->type != REDIS_REPLY_INTEGER || reply->element[i]->integer < 0)
            return -1;
    d->allowed = reply->element[0]->integer == 1;
    for (unsigned i = 0; i < rl->nlimits; i++) {
        redisReply *const *e = reply->element + 1 + 3 * i;
        d->o[i] = (struct rl_outcome){.remaining = e[0]->integer,
                                      .reset_ms = (uint64_t)e[1]->integer,
                                      .retry_ms = (uint64_t)e[2]->integer,
                                      .allowed = e[2]->integer == 0};
    }
    return 0;
}

static void on_reply(redisAsyncContext *ac, void *reply_, void *arg)
{
    struct rl_call *call = arg;
    struct rl_redis *rr = ac->data;
    struct ratelimit *rl = rr->rl;
    redisReply *reply = reply_;
    struct pending *p = call->p;
    call_free(rr, call);
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0 &&
        rr->ac == ac && rr->ready) {
        /* The script was flushed: load it again; requests meanwhile are decided locally. */
        rr->ready = false;
        redisAsyncCommand(ac, on_script, rr, "SCRIPT LOAD %s", script);
    }
    if (!p)
        return; /* the request ended, or timed out and was decided locally */
    p->call = NULL;

    struct rl_decision d;
    enum lintel_result res;
    if (decode(rl, reply, &d) == 0) {
        if (atomic_load_explicit(&rl->warned_redis, memory_order_relaxed) &&
            atomic_exchange(&rl->warned_redis, false))
            rl->host->log(rl->self, LINTEL_LOG_LEVEL_INFO, "redis %s:%d answers again",
                          rl->redis.addr, rl->redis.port);
        rl_count(rl, RL_M_REDIS);
        res = rl_apply(rl, p->r, &d, "redis");
    } else {
        if (reply && reply->type == REDIS_REPLY_ERROR && !atomic_exchange(&rl->warned_redis, true))
            rl->host->log(rl->self, LINTEL_LOG_LEVEL_WARN, "redis %s:%d: %.*s", rl->redis.addr,
                          rl->redis.port, (int)reply->len, reply->str);
        res = fallback(p);
    }
    rl->host->resume(p->r, res);
}

static void on_timeout(void *arg)
{
    struct pending *p = arg;
    if (!p->call)
        return;        /* answered already */
    p->call->p = NULL; /* the late reply only recycles its slot */
    p->call = NULL;
    struct rl_redis *rr = p->rr;
    rr->degraded = true;
    if (!rr->cooldown && !rr->tasks_stopped)
        rr->cooldown = rr->rl->host->worker_timer(rr->rl->self, COOLDOWN_MS, 0, on_cooldown, rr);
    warn_down(rr, "is slow (timeout)");
    rr->rl->host->resume(p->r, fallback(p));
}

/* ctx cleanup: the request is ending; whatever comes from Redis later must not touch it. */
static void on_request_end(void *arg)
{
    struct pending *p = arg;
    if (p->call) {
        p->call->p = NULL;
        p->call = NULL;
    }
}

/* Writes n in decimal into the next of out's buffers and appends it to argv. */
static void arg_number(char (*out)[24], int *nout, const char **argv, size_t *argvlen, int *argc,
                       uint64_t n)
{
    char *s = out[(*nout)++];
    argv[*argc] = s;
    argvlen[(*argc)++] = rl_fmt_u64(s, n);
}

int rl_redis_check(struct rl_redis *rr, lintel_req *r, const char *key, size_t keylen)
{
    struct ratelimit *rl = rr->rl;
    const struct lintel_host_api *h = rl->host;
    if (!rr->ac || !rr->ready || rr->degraded || !rr->free_calls)
        return 0;
    struct pending *p = h->alloc(r, sizeof(*p) + RL_KEY_PREFIX + keylen + 1);
    if (!p)
        return 0;
    p->rr = rr;
    p->r = r;
    p->call = NULL;
    memcpy(p->key + RL_KEY_PREFIX, key, keylen + 1);
    /* Both before sending, so that nothing can fail once the command is out. */
    if (h->ctx_set(r, rl->self, p, on_request_end) != 0 ||
        h->req_timer(r, rl->redis.timeout_ms, on_timeout, p) != 0)
        return 0;

    static const char algs[] = {
        [RL_SLIDING_WINDOW] = 's', [RL_FIXED_WINDOW] = 'f', [RL_TOKEN_BUCKET] = 't'};
    const char *argv[4 + 4 * RL_MAX_LIMITS];
    size_t argvlen[4 + 4 * RL_MAX_LIMITS];
    char keys[RL_MAX_LIMITS][64 + RL_KEY_MAX + 4];
    char nums[1 + 3 * RL_MAX_LIMITS][24];
    int argc = 0, nnums = 0;
    size_t plen = strlen(rl->redis.prefix);
    argv[argc] = "EVALSHA";
    argvlen[argc++] = 7;
    argv[argc] = rr->sha;
    argvlen[argc++] = 40;
    arg_number(nums, &nnums, argv, argvlen, &argc, rl->nlimits);
    for (unsigned i = 0; i < rl->nlimits; i++) {
        char *k = keys[i];
        memcpy(k, rl->redis.prefix, plen);
        memcpy(k + plen, key, keylen);
        k[plen + keylen] = ':';
        k[plen + keylen + 1] = algs[rl->algorithm];
        k[plen + keylen + 2] = rl->limits[i].code;
        argv[argc] = k;
        argvlen[argc++] = plen + keylen + 3;
    }
    argv[argc] = &algs[rl->algorithm];
    argvlen[argc++] = 1;
    for (unsigned i = 0; i < rl->nlimits; i++) {
        const struct rl_limit *l = &rl->limits[i];
        arg_number(nums, &nnums, argv, argvlen, &argc, (uint64_t)l->limit);
        arg_number(nums, &nnums, argv, argvlen, &argc, l->period_ms);
        arg_number(nums, &nnums, argv, argvlen, &argc, (uint64_t)l->burst);
    }

    struct rl_call *call = rr->free_calls;
    rr->free_calls = call->next_free;
    call->p = p;
    if (redisAsyncCommandArgv(rr->ac, on_reply, call, argc, argv, argvlen) != REDIS_OK) {
        call_free(rr, call);
        return 0;
    }
    p->call = call;
    return 1;
}
