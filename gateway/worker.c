/*
 * worker: one thread, one event base. Requests from the main thread
 * (new conf, drain, stop) arrive as fixed-size messages on a pipe the
 * worker's loop reads, so the worker's state is only ever touched on its own
 * thread and its base needs no locks (EVENT_BASE_FLAG_NOLOCK: libevent's
 * locking was 48 lock/unlock pairs per proxied request).
 */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/listener.h>
#include <event2/thread.h>

#include "accesslog.h"
#include "client.h"
#include "limiter.h"
#include "listener.h"
#include "log.h"
#include "server.h"
#include "upstream.h"

struct confref *confref_new(struct conf *conf)
{
    struct confref *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->conf = conf;
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
        conf_free(r->conf);
        free(r);
    }
}

static struct gen *gen_new(struct worker *w, struct confref *cref)
{
    struct gen *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->ups = upstream_set_new(w->base, cref->conf);
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

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)l;
    client_accept(arg, fd, sa, salen);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct worker *w = arg;
    (void)l;
    log_error("accept_failed", "worker %u: accept: %s", w->id,
              evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

int worker_init(struct worker *w, unsigned id, struct server *s, struct confref *cref,
                char *err, size_t errlen)
{
    const struct conf *conf = cref->conf;
    memset(w, 0, sizeof *w);
    w->id = id;
    w->server = s;
    w->msg_fd[0] = w->msg_fd[1] = -1;
    LIST_INIT(&w->clients);
    struct event_config *cfg = event_config_new();
    if (!cfg)
        goto oom;
    /* Coalesce epoll_ctl calls: a request toggles interest several times.
     * No locks: only this worker's thread ever touches its base. */
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    w->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!w->base || sendq_init(&w->sendq, w->base) != 0)
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
 * callbacks are done, as sendq does for connection output. */
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
        w->sendq.prelude = accesslog_batch_flush;
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    if (log_ev) {
        accesslog_batch_end();
        event_free(log_ev);
    }
    server_worker_exited(w->server);
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
    maybe_finished(w);
}

static void drain_apply(struct worker *w)
{
    w->draining = true;
    for (size_t i = 0; i < w->n_listeners; i++)
        evconnlistener_free(w->listeners[i]);
    w->n_listeners = 0;
    struct client *c = LIST_FIRST(&w->clients), *next;
    for (; c; c = next) {
        next = LIST_NEXT(c, link);
        client_drain(c);
    }
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
    if (w->nclients == 0) {
        if (w->msg_ev)
            event_free(w->msg_ev);
        if (w->limiter)
            limiter_free(w->limiter);
        if (w->gen)
            worker_gen_put(w->gen);
        sendq_cleanup(&w->sendq);  /* after the pools, whose connections detach */
        if (w->base)
            event_base_free(w->base);
    }
    /* Unread MSG_CONF references die with the process; the pipe goes now. */
    for (int i = 0; i < 2; i++)
        if (w->msg_fd[i] >= 0)
            close(w->msg_fd[i]);
}
