/*
 * worker: one thread, one event base. Requests from the main thread
 * (new conf, drain, stop) arrive as fixed-size messages on a pipe the
 * worker's loop reads, so the worker's state is only ever touched on its own
 * thread and its base needs no locks (EVENT_BASE_FLAG_NOLOCK: libevent's
 * locking was 48 lock/unlock pairs per proxied request).
 *
 * Accepting is paused (the listeners' events disabled) while the worker
 * holds max_connections clients, and for WORKER_ACCEPT_RETRY_MS after
 * accept(2) fails: a connection accept cannot take stays in the backlog and
 * keeps the listener readable, so retrying at once would spin (out of
 * descriptors, a worker wrote 490k log lines a second). Either pause ends
 * early when one of the worker's connections closes.
 */
#include "clock.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/listener.h>
#include <event2/thread.h>

#include "accesslog.h"
#include "auth.h"
#include "limiter.h"
#include "listener.h"
#include "log.h"
#include "router.h"
#include "tls.h"
#include "upstream.h"

struct confref *confref_new(struct conf *conf, struct tls_set *tls, struct auth_keys *auth)
{
    struct confref *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->router = router_new(conf);
    if (!r->router) {
        free(r);
        return NULL;
    }
    r->conf = conf;
    r->tls = tls;
    r->auth = auth;
    atomic_init(&r->refs, 1);
    return r;
}

void confref_get(struct confref *r)
{
    atomic_fetch_add(&r->refs, 1);
}

void confref_put(struct confref *r)
{
    if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
        router_free(r->router);
        conf_free(r->conf);
        tls_set_free(r->tls);
        auth_keys_free(r->auth);
        free(r);
    }
}

static struct gen *gen_new(struct worker *w, struct confref *cref)
{
    struct gen *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->ups = upstream_set_new(w->base, cref->conf, cref->tls);
    if (!g->ups) {
        free(g);
        return NULL;
    }
    confref_get(cref);
    g->cref = cref;
    g->conf = cref->conf;
    g->refs = 1;
    return g;
}

struct gen *worker_gen_get(struct worker *w)
{
    w->gen->refs++;
    return w->gen;
}

void worker_gen_put(struct gen *g)
{
    if (--g->refs > 0)
        return;
    upstream_set_free(g->ups);
    confref_put(g->cref);
    free(g);
}

enum worker_msg_type { MSG_CONF, MSG_DRAIN, MSG_STOP };

struct worker_msg {
    enum worker_msg_type type;
    struct confref *cref;   /* MSG_CONF: a reference the worker takes over */
};

static void conf_apply(struct worker *w, struct confref *cref);
static void drain_apply(struct worker *w);
static void stop_apply(struct worker *w);

static void msg_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)what;
    struct worker_msg m;
    /* Messages are smaller than PIPE_BUF: each read returns whole ones. */
    for (;;) {
        ssize_t n = read(fd, &m, sizeof m);
        if (n != (ssize_t)sizeof m)
            return;  /* EAGAIN: drained */
        switch (m.type) {
        case MSG_CONF:
            conf_apply(w, m.cref);
            break;
        case MSG_DRAIN:
            drain_apply(w);
            break;
        case MSG_STOP:
            stop_apply(w);
            return;
        }
    }
}

static int post(struct worker *w, enum worker_msg_type type, struct confref *cref)
{
    struct worker_msg m;
    memset(&m, 0, sizeof m);  /* the padding after type goes down the pipe too */
    m.type = type;
    m.cref = cref;
    for (;;) {
        ssize_t n = write(w->msg_fd[1], &m, sizeof m);
        if (n == (ssize_t)sizeof m)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        return -1;
    }
}

/* The default cap: sized from the descriptor limit, which the running
 * process keeps (as it keeps its listeners and workers) until restart. */
static unsigned default_max_conns(const struct conf *conf)
{
    struct rlimit rl;
    uint64_t nofile = UINT64_MAX;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        nofile = (uint64_t)rl.rlim_cur;
    return listener_default_max_connections(nofile, conf->workers, conf->n_listen);
}

static int listeners_switch(struct worker *w, bool on)
{
    int rc = 0;
    for (size_t i = 0; i < w->n_listeners; i++)
        if ((on ? evconnlistener_enable : evconnlistener_disable)(w->listeners[i]) != 0)
            rc = -1;
    return rc;
}

/*
 * Stop accepting. RETRY: accept(2) failed, so try again after
 * WORKER_ACCEPT_RETRY_MS even if no connection of ours closes (descriptors
 * freed by other workers count too). One accept_paused line a second at
 * most; the pauses not logged are counted on the next line.
 */
static void accept_pause(struct worker *w, bool retry, enum conf_log_level lvl,
                         const char *reason, const char *detail)
{
    bool pause = true;
    if (retry) {
        struct timeval tv = {WORKER_ACCEPT_RETRY_MS / 1000, (WORKER_ACCEPT_RETRY_MS % 1000) * 1000};
        /* Paused without its timer it might never resume: keep accepting. */
        pause = evtimer_add(w->accept_retry, &tv) == 0;
    }
    if (pause && !w->accept_paused) {
        w->accept_paused = true;
        if (listeners_switch(w, false) != 0)
            log_error("gateway_error", "worker %u: cannot pause accepting", w->id);
    }
    uint64_t now = clock_ms();
    if (w->accept_log_ms && now - w->accept_log_ms < 1000) {
        w->accept_unlogged++;
        return;
    }
    char n[24], more[64] = "";
    snprintf(n, sizeof n, "%lu", w->accept_unlogged);
    if (w->accept_unlogged)
        snprintf(more, sizeof more, " (%lu more pause(s) since the last line)",
                 w->accept_unlogged);
    const char *fields[] = {"reason", reason, "suppressed", n, NULL};
    LOG_AT(lvl, "accept_paused", NULL, fields,
           "worker %u: accepting paused with %u connection(s) open: %s%s", w->id, w->nclients,
           detail, more);
    w->accept_log_ms = now ? now : 1;
    w->accept_unlogged = 0;
}

/* Take connections again, unless still at the cap (or draining). */
static void accept_resume(struct worker *w)
{
    if (!w->accept_paused || w->draining || w->nclients >= w->max_conns)
        return;
    evtimer_del(w->accept_retry);
    w->accept_paused = false;
    if (listeners_switch(w, true) != 0) {
        log_error("gateway_error", "worker %u: cannot resume accepting; retrying", w->id);
        accept_pause(w, true, CONF_LOG_ERROR, "internal", "listener could not be re-armed");
    }
}

static void accept_at_cap(struct worker *w)
{
    char detail[96];
    snprintf(detail, sizeof detail, "max_connections (%u) reached", w->max_conns);
    accept_pause(w, false, CONF_LOG_WARN, "max_connections", detail);
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    accept_resume(arg);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct worker *w = arg;
    size_t i = 0;
    while (i + 1 < w->n_listeners && w->listeners[i] != l)
        i++;
    w->hooks.accept(w, &w->bound[i], fd, sa, salen);
    if (w->nclients >= w->max_conns && !w->accept_paused)
        accept_at_cap(w);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct worker *w = arg;
    (void)l;
    /* libevent retries EINTR, EAGAIN and ECONNABORTED itself; anything else
     * (EMFILE, ENFILE, ENOBUFS, ENOMEM, EPERM...) may leave the connection
     * queued and the listener readable: pause rather than spin. */
    int err = EVUTIL_SOCKET_ERROR();
    char detail[160];
    snprintf(detail, sizeof detail, "accept: %s; retrying in %d ms or when a connection closes",
             evutil_socket_error_to_string(err), WORKER_ACCEPT_RETRY_MS);
    accept_pause(w, true, CONF_LOG_ERROR, "accept_error", detail);
}

/* The end of a turn in which clients closed: their memory goes now. */
static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    w->hooks.reap(w);
}

int worker_init(struct worker *w, unsigned id, const struct worker_hooks *hooks,
                struct confref *cref, char *err, size_t errlen)
{
    const struct conf *conf = cref->conf;
    memset(w, 0, sizeof *w);
    w->id = id;
    w->hooks = *hooks;
    w->msg_fd[0] = w->msg_fd[1] = -1;
    LIST_INIT(&w->clients);
    LIST_INIT(&w->dead);
    struct event_config *cfg = event_config_new();
    if (!cfg)
        goto oom;
    /* Coalesce epoll_ctl calls: a request toggles interest several times.
     * No locks: only this worker's thread ever touches its base. */
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    w->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!w->base || conn_flushq_init(&w->flushq, w->base) != 0)
        goto oom;
    if (pipe2(w->msg_fd, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, errlen, "worker %u: pipe: %s", id, strerror(errno));
        return -1;
    }
    w->msg_ev = event_new(w->base, w->msg_fd[0], EV_READ | EV_PERSIST, msg_cb, w);
    if (!w->msg_ev || event_add(w->msg_ev, NULL) != 0)
        goto oom;
    w->gen = gen_new(w, cref);
    if (!w->gen)
        goto oom;
    w->limiter = limiter_new(w->base, conf);
    if (!w->limiter)
        goto oom;
    w->auth = auth_new();
    if (!w->auth)
        goto oom;
    w->accept_retry = evtimer_new(w->base, accept_retry_cb, w);
    if (!w->accept_retry)
        goto oom;
    w->reap_ev = event_new(w->base, -1, 0, reap_cb, w);
    if (!w->reap_ev)
        goto oom;
    w->max_conns_auto = default_max_conns(conf);
    w->max_conns = conf->max_connections ? conf->max_connections : w->max_conns_auto;
    for (size_t i = 0; i < conf->n_listen; i++) {
        evutil_socket_t fd = listener_bind(&conf->listen[i], err, errlen);
        if (fd < 0)
            return -1;
        struct evconnlistener *l = evconnlistener_new(w->base, accept_cb, w,
                                                      LEV_OPT_CLOSE_ON_FREE, -1, fd);
        if (!l) {
            evutil_closesocket(fd);
            goto oom;
        }
        evconnlistener_set_error_cb(l, accept_error_cb);
        w->bound[w->n_listeners] = conf->listen[i];
        w->listeners[w->n_listeners++] = l;
    }
    return 0;
oom:
    snprintf(err, errlen, "worker %u: out of memory", id);
    return -1;
}

static void log_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    accesslog_batch_flush();
}

/* The first access line of a loop turn: write the turn's lines once its
 * callbacks are done, as the conn flush queue does for connection output. */
static void log_arm(void *arg)
{
    event_active(arg, EV_WRITE, 0);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    /* Lines are batched per thread, so the batch is set up here, on it;
     * without the event (out of memory) each line is written at once. */
    struct event *log_ev = event_new(w->base, -1, 0, log_flush_cb, NULL);
    if (log_ev && accesslog_batch_begin(log_arm, log_ev) != 0) {
        event_free(log_ev);
        log_ev = NULL;
    }
    /* A response's line is in the file before the response is on the wire,
     * as when lines were written one by one: whoever has the answer can
     * find its line. */
    if (log_ev)
        w->flushq.prelude = accesslog_batch_flush;
    /* Out of memory for its event, the clock is read uncached: slower, not wrong. */
    (void)clock_turns_begin(w->base);
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    clock_turns_end();
    if (log_ev) {
        accesslog_batch_end();
        event_free(log_ev);
    }
    w->hooks.on_exit(w->hooks.exit_arg);
    return NULL;
}

int worker_start(struct worker *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

static void conf_apply(struct worker *w, struct confref *cref)
{
    struct gen *g = gen_new(w, cref);
    if (g) {
        struct gen *old = w->gen;
        w->gen = g;
        limiter_set_conf(w->limiter, g->conf);
        worker_gen_put(old);  /* in-flight requests keep the old one alive */
        w->max_conns = g->conf->max_connections ? g->conf->max_connections : w->max_conns_auto;
        if (w->accept_paused)
            accept_resume(w);  /* the cap may have been raised */
        else if (w->nclients >= w->max_conns && w->n_listeners && !w->draining)
            accept_at_cap(w);
    } else {
        log_error("reload_failed", "worker %u: out of memory; keeping the running conf", w->id);
    }
    confref_put(cref);
}

int worker_post_conf(struct worker *w, struct confref *cref)
{
    confref_get(cref);
    if (post(w, MSG_CONF, cref) != 0) {
        confref_put(cref);
        return -1;
    }
    return 0;
}

static void maybe_finished(struct worker *w)
{
    if (w->draining && w->nclients == 0)
        event_base_loopexit(w->base, NULL);
}

void worker_client_closed(struct worker *w)
{
    w->nclients--;
    if (w->accept_paused)
        accept_resume(w);
    maybe_finished(w);
}

static void drain_apply(struct worker *w)
{
    w->draining = true;
    for (size_t i = 0; i < w->n_listeners; i++)
        evconnlistener_free(w->listeners[i]);
    w->n_listeners = 0;
    w->accept_paused = false;
    evtimer_del(w->accept_retry);
    w->hooks.drain(w);
    maybe_finished(w);
}

int worker_post_drain(struct worker *w)
{
    return post(w, MSG_DRAIN, NULL);
}

static void stop_apply(struct worker *w)
{
    if (w->inflight)
        log_warn("stop_cut", "worker %u: shutdown_timeout passed with %u request(s) in flight",
                 w->id, w->inflight);
    event_base_loopbreak(w->base);
}

int worker_post_stop(struct worker *w)
{
    return post(w, MSG_STOP, NULL);
}

void worker_join(struct worker *w)
{
    pthread_join(w->thread, NULL);
}

void worker_cleanup(struct worker *w)
{
    /* Only after the loop stopped: connections cut by a forced stop are freed by exit. */
    for (size_t i = 0; i < w->n_listeners; i++)
        evconnlistener_free(w->listeners[i]);
    w->n_listeners = 0;
    if (w->hooks.reap)
        w->hooks.reap(w);
    if (w->nclients == 0) {
        if (w->reap_ev)
            event_free(w->reap_ev);
        if (w->msg_ev)
            event_free(w->msg_ev);
        if (w->accept_retry)
            event_free(w->accept_retry);
        auth_free(w->auth);  /* before the Redis connection its lookups are on */
        if (w->limiter)
            limiter_free(w->limiter);
        if (w->gen)
            worker_gen_put(w->gen);
        conn_flushq_cleanup(&w->flushq);  /* after the pools: closes their sockets */
        if (w->base)
            event_base_free(w->base);
    }
    /* Unread MSG_CONF references die with the process; the pipe goes now. */
    for (int i = 0; i < 2; i++)
        if (w->msg_fd[i] >= 0)
            close(w->msg_fd[i]);
}
