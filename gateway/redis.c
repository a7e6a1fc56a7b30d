/*
 * redis: one worker's asynchronous hiredis connection (on the worker's libevent loop),
 * its handshake (AUTH, SELECT, SCRIPT LOAD), reconnection with capped,
 * jittered exponential backoff, and per-call deadlines.
 *
 * Lifetime rules, because hiredis 0.14 has no command timeout and calls every
 * registered reply callback exactly once (a NULL reply when the context is
 * freed):
 *  - the privdata of every EVALSHA is a small struct redis_call, freed only
 *    when both the caller is done with it (answered or cancelled) and hiredis
 *    no longer holds it (in_hiredis == 0). A late reply to a call that timed
 *    out or was cancelled finds it still allocated and marked answered.
 *  - handshake commands carry a static tag; everything else is reached
 *    through ac->data, which is set to NULL the moment a context is
 *    abandoned, so callbacks of an abandoned context touch nothing of ours.
 *  - failures (NULL replies) are answered from the loop via the call's own
 *    timer made active, never from inside a redis_* function.
 *  - redisAsyncFree is never called from onConnect/onDisconnect (hiredis
 *    frees those contexts itself).
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/un.h>
#include <time.h>

#include <hiredis/async.h>
#include <openssl/evp.h>

#include "clock.h"
#include "headbuf.h"
#include "log.h"
#include "redis.h"

#define REDIS_BACKOFF_MIN_MS 100
#define REDIS_BACKOFF_MAX_MS 5000
#define REDIS_STALL_MIN_MS 2000     /* no reply this long with calls waiting: reconnect */
#define REDIS_MAX_INFLIGHT 10000    /* calls held by hiredis, per connection */

enum redis_state {
    REDIS_S_OFF,         /* [redis] disabled */
    REDIS_S_WAIT,        /* no connection; reconnect timer armed */
    REDIS_S_CONNECTING,  /* context exists; handshake not finished */
    REDIS_S_READY,
};

static const char *const state_names[] = {"off", "wait", "connecting", "ready"};

struct redis_call {
    struct redis *r;                  /* NULL once detached by redis_free */
    struct redis_call *prev, *next;   /* r->calls */
    struct event *timer;              /* deadline, and deferred failure answers;
                                         in this allocation, after cmd */
    redis_reply_cb cb;
    void *arg;
    char *cmd;                        /* formatted EVALSHA, kept for the NOSCRIPT retry;
                                         in this allocation */
    int cmdlen;
    int in_hiredis;                   /* reply callbacks hiredis still holds */
    bool answered;                    /* cb ran, or cancelled, or detached */
    bool in_cb;                       /* cb is running: nobody else frees us */
    bool retried;
    bool eval;                        /* EVALSHA of the script: NOSCRIPT is retried */
    bool overdue;                     /* timed out while its reply was still owed */
};

struct redis {
    struct event_base *base;
    redisAsyncContext *ac;            /* current context, or NULL */
    enum redis_state state;
    bool believed_up;                 /* for logging one line per transition */
    bool ever_ready;
    unsigned attempt;                 /* consecutive failed attempts */
    struct event *reconnect_ev;       /* backoff timer */
    struct event *watchdog_ev;        /* handshake must finish in time */
    struct event *flush_ev;           /* activated: write queued commands this loop turn */
    bool flush_queued;
    uint64_t last_progress_ms;        /* last reply on the current context */
    size_t in_hiredis;                /* calls registered in hiredis */
    struct redis_call *calls;         /* every live call object */
    unsigned overdue;                 /* calls past their deadline, reply still owed */
    uint64_t rng;

    bool enabled;
    struct conf_addr addr;
    char password[sizeof(((struct conf *)0)->redis_password)];
    unsigned db;
    uint64_t timeout_ms;
    uint64_t common_ms;               /* the duration common_tv stands for */
    struct timeval common_tv;         /* libevent's queue for timeout_ms deadlines */

    char *script;
    size_t script_len;
    char sha[41];
};

/* Tags for handshake replies (compared by address). */
static int tag_auth, tag_select, tag_load, tag_reload;

static void redis_connect(struct redis *r);

/*
 * The event-loop glue hiredis asks for (redisAsyncContext.ev), as its
 * libevent adapter does but with persistent events: that adapter re-arms a
 * one-shot read event after every reply, one epoll_ctl per request.
 */
struct loop_events {
    redisAsyncContext *ac;
    struct event *rev, *wev;
};

static void loop_read(evutil_socket_t fd, short what, void *arg)
{
    struct loop_events *e = arg;
    (void)fd;
    (void)what;
    redisAsyncHandleRead(e->ac);
}

static void loop_write(evutil_socket_t fd, short what, void *arg)
{
    struct loop_events *e = arg;
    (void)fd;
    (void)what;
    redisAsyncHandleWrite(e->ac);
}

/* hiredis asks again and again: a pending persistent event stays as it is. */
static void add_unless_pending(struct event *ev, short what)
{
    if (!event_pending(ev, what, NULL))
        event_add(ev, NULL);
}

static void loop_add_read(void *p)
{
    add_unless_pending(((struct loop_events *)p)->rev, EV_READ);
}

static void loop_del_read(void *p)
{
    event_del(((struct loop_events *)p)->rev);
}

static void loop_add_write(void *p)
{
    add_unless_pending(((struct loop_events *)p)->wev, EV_WRITE);
}

static void loop_del_write(void *p)
{
    event_del(((struct loop_events *)p)->wev);
}

static void loop_cleanup(void *p)
{
    struct loop_events *e = p;
    if (e->rev)
        event_free(e->rev);
    if (e->wev)
        event_free(e->wev);
    free(e);
}

static int loop_attach(redisAsyncContext *ac, struct event_base *base)
{
    if (ac->ev.data)
        return REDIS_ERR;
    struct loop_events *e = calloc(1, sizeof *e);
    if (!e)
        return REDIS_ERR;
    e->ac = ac;
    e->rev = event_new(base, ac->c.fd, EV_READ | EV_PERSIST, loop_read, e);
    e->wev = event_new(base, ac->c.fd, EV_WRITE | EV_PERSIST, loop_write, e);
    if (!e->rev || !e->wev || event_add(e->rev, NULL) != 0 || event_add(e->wev, NULL) != 0) {
        loop_cleanup(e);
        return REDIS_ERR;
    }
    ac->ev.addRead = loop_add_read;
    ac->ev.delRead = loop_del_read;
    ac->ev.addWrite = loop_add_write;
    ac->ev.delWrite = loop_del_write;
    ac->ev.cleanup = loop_cleanup;
    ac->ev.data = e;
    return REDIS_OK;
}
static void handshake_cb(redisAsyncContext *ac, void *vreply, void *privdata);
static void call_maybe_free(struct redis_call *c);

static uint64_t rng_next(struct redis *r)
{
    uint64_t x = r->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t stall_ms(const struct redis *r)
{
    uint64_t s = r->timeout_ms * 10;
    return s < REDIS_STALL_MIN_MS ? REDIS_STALL_MIN_MS : s;
}

static struct timeval ms_tv(uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/*
 * Process-wide view for the log: every worker has its own connection, but
 * "Redis lost" / "Redis back" is one fact. lost is logged when the first
 * connection goes down, back when the last one is up again, "connected" once
 * per address.
 */
static pthread_mutex_t proc_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned proc_down;                  /* connections believed down */
static char proc_connected[sizeof(((struct conf_addr *)0)->text)];

/* Adjust the process count when R's belief changes; returns the new count. */
static unsigned proc_note(struct redis *r, bool up)
{
    unsigned n = 0;
    if (pthread_mutex_lock(&proc_mu) != 0)
        return 1;  /* cannot happen with a default mutex; log nothing */
    if (up && !r->believed_up && proc_down > 0)
        proc_down--;
    else if (!up && r->believed_up)
        proc_down++;
    n = proc_down;
    pthread_mutex_unlock(&proc_mu);
    r->believed_up = up;
    return n;
}

unsigned redis_process_down(void)
{
    unsigned n = 0;
    if (pthread_mutex_lock(&proc_mu) != 0)
        return 1;
    n = proc_down;
    pthread_mutex_unlock(&proc_mu);
    return n;
}

static bool proc_first_connect(const struct redis *r)
{
    bool first = false;
    if (pthread_mutex_lock(&proc_mu) != 0)
        return false;
    if (strcmp(proc_connected, r->addr.text) != 0) {
        snprintf(proc_connected, sizeof(proc_connected), "%s", r->addr.text);
        first = true;
    }
    pthread_mutex_unlock(&proc_mu);
    return first;
}

/* Every state change goes through here, and is logged here. */
static void redis_set_state(struct redis *r, enum redis_state st, const char *why)
{
    enum redis_state old = r->state;
    r->state = st;
    if (old == st)
        return;
    const char *fields[] = {"address", r->addr.text, "state", state_names[st], NULL};
    enum conf_log_level lvl_lost = CONF_LOG_DEBUG, lvl_back = CONF_LOG_DEBUG;
    if (st == REDIS_S_READY) {
        bool was_down = !r->believed_up;
        if (was_down) {
            if (proc_note(r, true) == 0)
                lvl_back = CONF_LOG_INFO;
            LOG_AT(lvl_back, "redis_back", NULL, fields, "Redis is back at %s", r->addr.text);
        } else if (!r->ever_ready) {
            LOG_AT(proc_first_connect(r) ? CONF_LOG_INFO : CONF_LOG_DEBUG, "redis_connected",
                   NULL, fields, "connected to Redis at %s", r->addr.text);
        }
        r->ever_ready = true;
    } else if (st == REDIS_S_WAIT && r->believed_up) {
        if (proc_note(r, false) == 1)
            lvl_lost = CONF_LOG_WARN;
        LOG_AT(lvl_lost, "redis_lost", NULL, fields, "Redis at %s lost: %s", r->addr.text,
               why ? why : "unknown error");
    } else {
        LOG_AT(CONF_LOG_DEBUG, "redis_state", NULL, fields, "Redis %s -> %s (%s)",
               state_names[old], state_names[st], why ? why : "");
    }
}

/* ---- calls ---------------------------------------------------------------- */

static void call_unlink(struct redis_call *c)
{
    struct redis *r = c->r;
    if (!r)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        r->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void call_maybe_free(struct redis_call *c)
{
    if (!c->answered || c->in_hiredis > 0 || c->in_cb)
        return;
    call_unlink(c);
    if (c->timer)
        event_del(c->timer);
    free(c);
}

/* Run the caller's callback once; C may be freed on return. */
static void call_answer(struct redis_call *c, const redisReply *reply)
{
    if (c->answered)
        return;
    c->answered = true;
    if (c->timer)
        evtimer_del(c->timer);
    c->in_cb = true;
    c->cb(reply, c->arg);
    c->in_cb = false;
    call_maybe_free(c);
}

/* Drop the current context: pending calls are answered NULL from the loop. */
static void redis_drop(struct redis *r, const char *why)
{
    if (r->watchdog_ev)
        evtimer_del(r->watchdog_ev);
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    r->overdue = 0;  /* the calls owed on the old connection can no longer run */
    if (ac) {
        ac->data = NULL;
        /* Deferred by hiredis itself when inside one of its reply callbacks. */
        redisAsyncFree(ac);
    }
    if (!r->enabled) {
        redis_set_state(r, REDIS_S_OFF, why);
        return;
    }
    uint64_t base = REDIS_BACKOFF_MIN_MS;
    for (unsigned i = 0; i < r->attempt && base < REDIS_BACKOFF_MAX_MS; i++)
        base *= 2;
    if (base > REDIS_BACKOFF_MAX_MS)
        base = REDIS_BACKOFF_MAX_MS;
    if (r->attempt < 64)
        r->attempt++;
    /* "Equal jitter": half fixed, half random, so workers do not stampede. */
    uint64_t delay = base / 2 + rng_next(r) % (base / 2 + 1);
    struct timeval tv = ms_tv(delay);
    redis_set_state(r, REDIS_S_WAIT, why);
    if (evtimer_add(r->reconnect_ev, &tv) != 0)
        LOG_AT(CONF_LOG_ERROR, "redis_timer", NULL, NULL, "cannot arm the Redis reconnect timer");
}

static void call_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis_call *c = arg;
    struct redis *r = c->r;
    /* A deadline with the connection silent for long: it is dead, not slow. */
    if (r && r->state == REDIS_S_READY && r->in_hiredis > 0 && c->in_hiredis > 0 &&
        clock_ms() - r->last_progress_ms > stall_ms(r)) {
        /* Drop first: the caller's callback may free R. The drop turns C's
         * hiredis slot into a deferred answer that call_answer cancels. */
        redis_drop(r, "no reply from Redis");
    }
    /* Redis still owes this reply and will run the script when it wakes up
     * (CLIENT PAUSE, a slow command): until it answers, send nothing more,
     * or every request refused meanwhile would be charged later. */
    if (c->r && c->in_hiredis > 0 && !c->overdue && c->r->ac) {
        c->overdue = true;
        c->r->overdue++;
    }
    call_answer(c, NULL);
}

static void call_reply_cb(redisAsyncContext *ac, void *vreply, void *privdata);

/*
 * hiredis' libevent adapter arms EPOLLOUT for every command and writes when
 * the loop next wakes up: two epoll_ctl calls and a loop turn per request.
 * Writing the commands queued during this turn from an activated event, once
 * the callbacks that queued them are done, lets the changelist cancel the
 * arming (and still batches every command of the turn into one write).
 */
static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct redis *r = arg;
    (void)fd;
    (void)what;
    r->flush_queued = false;
    if (r->ac && r->state == REDIS_S_READY)
        redisAsyncHandleWrite(r->ac);
}

static int call_submit(struct redis *r, struct redis_call *c)
{
    if (redisAsyncFormattedCommand(r->ac, call_reply_cb, c, c->cmd, (size_t)c->cmdlen) !=
        REDIS_OK)
        return -1;
    c->in_hiredis++;
    r->in_hiredis++;
    if (!r->flush_queued && r->state == REDIS_S_READY) {
        r->flush_queued = true;
        event_active(r->flush_ev, EV_WRITE, 0);
    }
    return 0;
}

static void call_reply_cb(redisAsyncContext *ac, void *vreply, void *privdata)
{
    struct redis_call *c = privdata;
    const redisReply *reply = vreply;
    struct redis *r = c->r;
    c->in_hiredis--;
    if (c->overdue) {
        c->overdue = false;
        if (r && r->overdue > 0)
            r->overdue--;
    }
    if (r) {
        r->in_hiredis--;
        if (reply && ac->data == r)
            r->last_progress_ms = clock_ms();
    }
    if (c->answered || !r) {
        call_maybe_free(c);
        return;
    }
    if (!reply) {
        /* Connection gone: answer from the loop, not from inside hiredis
         * (this may run inside redisAsyncFree called by a redis_* function). */
        event_active(c->timer, EV_TIMEOUT, 1);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR && c->eval && !c->retried && reply->str &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0 && ac->data == r && r->ac == ac) {
        /* Script cache flushed (SCRIPT FLUSH, restart, failover): load it
         * again and retry once, pipelined on the same connection. */
        c->retried = true;
        const char *argv[] = {"SCRIPT", "LOAD", r->script};
        size_t lens[] = {6, 4, r->script_len};
        if (redisAsyncCommandArgv(ac, handshake_cb, &tag_reload, 3, argv, lens) == REDIS_OK &&
            call_submit(r, c) == 0)
            return;
        event_active(c->timer, EV_TIMEOUT, 1);
        return;
    }
    call_answer(c, reply);
}

/* ---- connection ----------------------------------------------------------- */

static void handshake_cb(redisAsyncContext *ac, void *vreply, void *privdata)
{
    struct redis *r = ac->data;
    const redisReply *reply = vreply;
    if (!r || r->ac != ac || !reply)
        return;  /* abandoned context, or the disconnect path handles it */
    r->last_progress_ms = clock_ms();
    char why[160];
    if (reply->type == REDIS_REPLY_ERROR) {
        const char *what = privdata == &tag_auth     ? "AUTH"
                           : privdata == &tag_select ? "SELECT"
                                                     : "SCRIPT LOAD";
        snprintf(why, sizeof(why), "%s failed: %.100s", what, reply->str ? reply->str : "");
        if (privdata == &tag_reload)
            return;  /* the retried EVALSHA will fail and be answered */
        redis_drop(r, why);
        return;
    }
    if (privdata != &tag_load)
        return;
    if (reply->type != REDIS_REPLY_STRING || reply->len != 40 ||
        strncasecmp(reply->str, r->sha, 40) != 0) {
        redis_drop(r, "SCRIPT LOAD returned an unexpected SHA1");
        return;
    }
    if (r->watchdog_ev)
        evtimer_del(r->watchdog_ev);
    r->attempt = 0;
    redis_set_state(r, REDIS_S_READY, NULL);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct redis *r = ac->data;
    if (!r || r->ac != ac)
        return;
    if (status != REDIS_OK) {
        char why[160];
        snprintf(why, sizeof(why), "connect: %.120s", ac->errstr ? ac->errstr : "failed");
        /* hiredis frees this context after we return: just forget it. */
        r->ac = NULL;
        ((redisAsyncContext *)ac)->data = NULL;
        redis_drop(r, why);
        return;
    }
    r->last_progress_ms = clock_ms();
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis *r = ac->data;
    (void)status;
    if (!r || r->ac != ac)
        return;
    char why[160];
    snprintf(why, sizeof(why), "disconnected: %.120s", ac->errstr ? ac->errstr : "closed");
    r->ac = NULL;  /* hiredis is freeing it */
    ((redisAsyncContext *)ac)->data = NULL;
    redis_drop(r, why);
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis *r = arg;
    if (r->state == REDIS_S_CONNECTING)
        redis_drop(r, "connect/handshake timed out");
}

static void reconnect_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    redis_connect(arg);
}

static void redis_connect(struct redis *r)
{
    if (!r->enabled) {
        redis_set_state(r, REDIS_S_OFF, "disabled");
        return;
    }
    redisAsyncContext *ac = NULL;
    const struct sockaddr *sa = (const struct sockaddr *)&r->addr.sa;
    char host[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
        char path[sizeof(un->sun_path) + 1];
        memcpy(path, un->sun_path, sizeof(un->sun_path));
        path[sizeof(un->sun_path)] = '\0';
        ac = redisAsyncConnectUnix(path);
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        if (inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)))
            ac = redisAsyncConnect(host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)))
            ac = redisAsyncConnect(host, ntohs(in6->sin6_port));
    }
    if (!ac) {
        redis_drop(r, "cannot create a connection (bad address or no memory)");
        return;
    }
    if (ac->err) {
        char why[160];
        snprintf(why, sizeof(why), "connect: %.120s", ac->errstr);
        redisAsyncFree(ac);
        redis_drop(r, why);
        return;
    }
    ac->data = r;
    r->ac = ac;
    /* TCP keepalive finds a peer that vanished without a RST (not fatal if refused). */
    if (sa->sa_family != AF_UNIX && redisEnableKeepAlive(&ac->c) != REDIS_OK)
        LOG_AT(CONF_LOG_DEBUG, "redis_keepalive", NULL, NULL, "cannot enable TCP keepalive");
    if (loop_attach(ac, r->base) != REDIS_OK ||
        redisAsyncSetConnectCallback(ac, on_connect) != REDIS_OK ||
        redisAsyncSetDisconnectCallback(ac, on_disconnect) != REDIS_OK) {
        redis_drop(r, "cannot attach the connection to the event loop");
        return;
    }
    redis_set_state(r, REDIS_S_CONNECTING, NULL);
    r->last_progress_ms = clock_ms();

    /* Queued now, written once connected; calls made meanwhile follow them. */
    char dbtxt[16];
    int dblen = snprintf(dbtxt, sizeof(dbtxt), "%u", r->db);
    const char *auth[] = {"AUTH", r->password};
    size_t auth_len[] = {4, strlen(r->password)};
    const char *sel[] = {"SELECT", dbtxt};
    size_t sel_len[] = {6, (size_t)dblen};
    const char *load[] = {"SCRIPT", "LOAD", r->script};
    size_t load_len[] = {6, 4, r->script_len};
    if ((r->password[0] &&
         redisAsyncCommandArgv(ac, handshake_cb, &tag_auth, 2, auth, auth_len) != REDIS_OK) ||
        (r->db != 0 &&
         redisAsyncCommandArgv(ac, handshake_cb, &tag_select, 2, sel, sel_len) != REDIS_OK) ||
        redisAsyncCommandArgv(ac, handshake_cb, &tag_load, 3, load, load_len) != REDIS_OK) {
        redis_drop(r, "cannot queue the handshake");
        return;
    }
    struct timeval tv = ms_tv(stall_ms(r));
    if (evtimer_add(r->watchdog_ev, &tv) != 0) {
        redis_drop(r, "cannot arm the handshake timer");
        return;
    }
}

/* ---- API ------------------------------------------------------------------ */

static void copy_conf(struct redis *r, const struct conf *conf)
{
    r->enabled = conf->redis_enabled;
    r->addr = conf->redis_address;
    snprintf(r->password, sizeof(r->password), "%s", conf->redis_password);
    r->db = conf->redis_db;
    r->timeout_ms = conf->redis_timeout_ms ? conf->redis_timeout_ms : 50;
}

static bool same_target(const struct redis *r, const struct conf *conf)
{
    return r->enabled == conf->redis_enabled &&
           r->addr.salen == conf->redis_address.salen &&
           memcmp(&r->addr.sa, &conf->redis_address.sa, r->addr.salen) == 0 &&
           strcmp(r->password, conf->redis_password) == 0 && r->db == conf->redis_db;
}

struct redis *redis_new(struct event_base *base, const struct conf *conf, const char *script)
{
    struct redis *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->base = base;
    r->believed_up = true;
    r->state = REDIS_S_OFF;
    r->script_len = strlen(script);
    r->script = strdup(script);
    r->reconnect_ev = evtimer_new(base, reconnect_cb, r);
    r->watchdog_ev = evtimer_new(base, watchdog_cb, r);
    r->flush_ev = event_new(base, -1, 0, flush_cb, r);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!r->script || !r->reconnect_ev || !r->watchdog_ev || !r->flush_ev ||
        EVP_Digest(script, r->script_len, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
        goto failed;
    for (unsigned i = 0; i < 20; i++)
        snprintf(r->sha + 2 * i, 3, "%02x", md[i]);
    if (getrandom(&r->rng, sizeof(r->rng), GRND_NONBLOCK) != (ssize_t)sizeof(r->rng))
        r->rng = clock_ms() ^ (uintptr_t)r;
    r->rng |= 1;
    copy_conf(r, conf);
    if (r->enabled)
        redis_connect(r);
    return r;

failed:
    if (r->reconnect_ev)
        event_free(r->reconnect_ev);
    if (r->watchdog_ev)
        event_free(r->watchdog_ev);
    if (r->flush_ev)
        event_free(r->flush_ev);
    free(r->script);
    free(r);
    return NULL;
}

void redis_free(struct redis *r)
{
    if (!r)
        return;
    /* Detach every call: their callbacks never run; those hiredis still
     * holds are freed by its NULL-reply callbacks, the others here. */
    struct redis_call *c = r->calls;
    while (c) {
        struct redis_call *next = c->next;
        c->answered = true;
        c->r = NULL;
        c->prev = c->next = NULL;
        if (c->timer) {
            event_del(c->timer);  /* before the base goes */
            c->timer = NULL;
        }
        call_maybe_free(c);
        c = next;
    }
    r->calls = NULL;
    r->enabled = false;
    (void)proc_note(r, true);  /* no longer counted as down */
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    event_free(r->reconnect_ev);
    event_free(r->watchdog_ev);
    event_free(r->flush_ev);
    free(r->script);
    free(r);
}

void redis_set_conf(struct redis *r, const struct conf *conf)
{
    bool same = same_target(r, conf);
    copy_conf(r, conf);
    if (same)
        return;
    evtimer_del(r->reconnect_ev);
    r->attempt = 0;
    if (r->ac || r->state != REDIS_S_OFF)
        redis_drop(r, "configuration changed");
    evtimer_del(r->reconnect_ev);
    (void)proc_note(r, true);  /* a new target: report its first failure */
    r->ever_ready = false;
    redis_connect(r);
}

bool redis_ready(const struct redis *r)
{
    return r->state == REDIS_S_READY;
}

const char *redis_script_sha(const struct redis *r)
{
    return r->sha;
}

/* The RESP length of a bulk string of N bytes: "$N\r\n" data "\r\n". */
static size_t bulk_len(size_t n)
{
    size_t digits = 1;
    for (size_t v = n; v >= 10; v /= 10)
        digits++;
    return 1 + digits + 2 + n + 2;
}

static char *put_bulk(char *p, const char *data, size_t n)
{
    char d[HB_U64_DIGITS];
    char *e = d + sizeof d, *q = hb_u64_digits(e, n);
    *p++ = '$';
    memcpy(p, q, (size_t)(e - q));
    p += e - q;
    *p++ = '\r';
    *p++ = '\n';
    memcpy(p, data, n);
    p += n;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/*
 * One allocation per call: the call, its timer, and its EVALSHA already in
 * RESP. hiredis' own formatting (a malloc and a sprintf per argument) and a
 * separate timer were a tenth of the limiter's cost. The deadline uses
 * libevent's common-timeout queue: every call has the same duration, so
 * arming one is a list append, not a heap insert.
 */
/*
 * A call of the NPRE words PRE followed by ARGV[0..ARGC), formatted once
 * (kept for a NOSCRIPT retry), under the connection's deadline.
 */
static struct redis_call *call_start(struct redis *r, const char *const *pre, const size_t *prelen,
                                     int npre, int argc, const char **argv, const size_t *argvlen,
                                     bool eval, redis_reply_cb cb, void *arg)
{
    enum { MAX_ARGS = 16 };
    if (!r->ac || (r->state != REDIS_S_READY && r->state != REDIS_S_CONNECTING) ||
        r->in_hiredis >= REDIS_MAX_INFLIGHT || r->overdue > 0 || argc < 0 || argc > MAX_ARGS)
        return NULL;
    int words = npre + argc;  /* at most 3 + 16: one or two digits */
    size_t cmdlen = 4 + (words >= 10 ? 1 : 0);
    for (int i = 0; i < npre; i++)
        cmdlen += bulk_len(prelen[i]);
    for (int i = 0; i < argc; i++) {
        if (argvlen[i] > (size_t)1 << 20)
            return NULL;
        cmdlen += bulk_len(argvlen[i]);
    }
    size_t head = (sizeof(struct redis_call) + 15) & ~(size_t)15;
    size_t evsize = event_get_struct_event_size();
    /* + 1: a NUL after the command. hiredis looks one byte past a command's
     * first word to see whether more follow (a one-word command ends there). */
    struct redis_call *c = malloc(head + evsize + cmdlen + 1);
    if (!c)
        return NULL;
    memset(c, 0, sizeof *c);
    c->timer = (struct event *)((char *)c + head);
    c->cmd = (char *)c + head + evsize;
    c->eval = eval;
    char *p = c->cmd;
    *p++ = '*';
    if (words >= 10)
        *p++ = (char)('0' + words / 10);
    *p++ = (char)('0' + words % 10);
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < npre; i++)
        p = put_bulk(p, pre[i], prelen[i]);
    for (int i = 0; i < argc; i++)
        p = put_bulk(p, argv[i], argvlen[i]);
    c->cmdlen = (int)(p - c->cmd);
    *p = '\0';
    if (r->common_ms != r->timeout_ms) {
        struct timeval tv = ms_tv(r->timeout_ms);
        const struct timeval *common = event_base_init_common_timeout(r->base, &tv);
        r->common_tv = common ? *common : tv;
        r->common_ms = r->timeout_ms;
    }
    if ((size_t)c->cmdlen != cmdlen || evtimer_assign(c->timer, r->base, call_timer_cb, c) != 0 ||
        evtimer_add(c->timer, &r->common_tv) != 0) {
        free(c);
        return NULL;
    }
    c->r = r;
    c->cb = cb;
    c->arg = arg;
    if (call_submit(r, c) != 0) {
        event_del(c->timer);
        free(c);
        return NULL;
    }
    c->next = r->calls;
    if (r->calls)
        r->calls->prev = c;
    r->calls = c;
    return c;
}

struct redis_call *redis_eval(struct redis *r, int nkeys, int argc, const char **argv,
                              const size_t *argvlen, redis_reply_cb cb, void *arg)
{
    if (nkeys < 0 || nkeys > argc || nkeys > 9)
        return NULL;
    char nk = (char)('0' + nkeys);
    const char *pre[] = {"EVALSHA", r->sha, &nk};
    const size_t prelen[] = {7, 40, 1};
    return call_start(r, pre, prelen, 3, argc, argv, argvlen, true, cb, arg);
}

struct redis_call *redis_command(struct redis *r, int argc, const char **argv,
                                 const size_t *argvlen, redis_reply_cb cb, void *arg)
{
    if (argc < 1)
        return NULL;
    return call_start(r, NULL, NULL, 0, argc, argv, argvlen, false, cb, arg);
}

void redis_call_cancel(struct redis_call *c)
{
    if (!c || c->answered)
        return;
    c->answered = true;
    if (c->timer)
        evtimer_del(c->timer);
    call_maybe_free(c);
}
