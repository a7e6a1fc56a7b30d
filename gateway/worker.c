/*
 * worker: one thread, one event base. Requests from the main thread
 * (new conf, drain, stop) arrive as event_base_once callbacks, so the
 * worker's state is only ever touched on its own thread.
 */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/listener.h>
#include <event2/thread.h>

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
    LIST_INIT(&w->clients);
    struct event_config *cfg = event_config_new();
    if (!cfg)
        goto oom;
    /* Coalesce epoll_ctl calls: a request toggles interest several times. */
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!w->base)
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

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    server_worker_exited(w->server);
    return NULL;
}

int worker_start(struct worker *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

struct conf_msg {
    struct worker *w;
    struct confref *cref;
};

static void conf_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conf_msg *m = arg;
    struct worker *w = m->w;
    (void)fd;
    (void)what;
    struct gen *g = gen_new(w, m->cref);
    if (g) {
        struct gen *old = w->gen;
        w->gen = g;
        limiter_set_conf(w->limiter, g->conf);
        worker_gen_put(old);  /* in-flight requests keep the old one alive */
    } else {
        log_error("reload_failed", "worker %u: out of memory; keeping the running conf", w->id);
    }
    confref_put(m->cref);
    free(m);
}

int worker_post_conf(struct worker *w, struct confref *cref)
{
    struct conf_msg *m = malloc(sizeof *m);
    if (!m)
        return -1;
    confref_get(cref);
    m->w = w;
    m->cref = cref;
    if (event_base_once(w->base, -1, EV_TIMEOUT, conf_cb, m, NULL) != 0) {
        confref_put(cref);
        free(m);
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

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
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
    return event_base_once(w->base, -1, EV_TIMEOUT, drain_cb, w, NULL);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    if (w->inflight)
        log_warn("stop_cut", "worker %u: shutdown_timeout passed with %u request(s) in flight",
                 w->id, w->inflight);
    event_base_loopbreak(w->base);
}

int worker_post_stop(struct worker *w)
{
    return event_base_once(w->base, -1, EV_TIMEOUT, stop_cb, w, NULL);
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
        if (w->limiter)
            limiter_free(w->limiter);
        if (w->gen)
            worker_gen_put(w->gen);
        if (w->base)
            event_base_free(w->base);
    }
}
