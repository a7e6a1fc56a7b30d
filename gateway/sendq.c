/*
 * sendq: the worker's queue of connection outputs to write before the loop
 * next waits. See sendq.h for why it exists.
 */
#include "sendq.h"

#include <errno.h>

static void flush_one(struct sendq_item *it)
{
    struct bufferevent *bev = it->bev;
    struct evbuffer *out = bufferevent_get_output(bev);
    if (evbuffer_get_length(out) == 0)
        return;
    /* Cancels an EPOLLOUT arming still in libevent's changelist: no syscall. */
    bufferevent_disable(bev, EV_WRITE);
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd >= 0) {
        /* A bufferevent keeps its output's front frozen against draining by
         * others, and thaws it only around its own writes: so do we. */
        evbuffer_unfreeze(out, 1);
        (void)evbuffer_write(out, fd);
        evbuffer_freeze(out, 1);
    }
    if (evbuffer_get_length(out) > 0) {
        /* Would block, still connecting, or failed: the bufferevent writes
         * the rest when the socket is writable and reports any error itself. */
        bufferevent_enable(bev, EV_WRITE);
        return;
    }
    bufferevent_data_cb writecb = NULL;
    void *arg = NULL;
    bufferevent_getcb(bev, NULL, &writecb, NULL, &arg);
    if (writecb)
        writecb(bev, arg);  /* may free the connection: IT is not used after */
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sendq *q = arg;
    struct sendq_item *it;
    (void)fd;
    (void)what;
    if (q->prelude)
        q->prelude();
    /* One at a time from the head: a write callback may detach any item. */
    while ((it = TAILQ_FIRST(&q->items)) != NULL) {
        TAILQ_REMOVE(&q->items, it, link);
        it->queued = false;
        flush_one(it);
    }
}

static void output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct sendq_item *it = arg;
    (void)buf;
    if (info->n_added == 0 || it->queued)
        return;
    if (bufferevent_get_enabled(it->bev) & EV_WRITE) {
        if (info->orig_size > 0)
            return;  /* a blocked write in progress: libevent finishes it */
        /* Runs before the bufferevent's own output callback (ours was added
         * later, and libevent calls the newest first): it then arms nothing. */
        bufferevent_disable(it->bev, EV_WRITE);
    }
    bool was_empty = TAILQ_EMPTY(&it->q->items);
    TAILQ_INSERT_TAIL(&it->q->items, it, link);
    it->queued = true;
    if (was_empty)
        event_active(it->q->ev, EV_WRITE, 0);
}

int sendq_init(struct sendq *q, struct event_base *base)
{
    TAILQ_INIT(&q->items);
    q->prelude = NULL;
    q->ev = event_new(base, -1, 0, flush_cb, q);
    return q->ev ? 0 : -1;
}

void sendq_cleanup(struct sendq *q)
{
    struct sendq_item *it;
    while ((it = TAILQ_FIRST(&q->items)) != NULL) {
        TAILQ_REMOVE(&q->items, it, link);
        it->queued = false;
    }
    if (q->ev)
        event_free(q->ev);
    q->ev = NULL;
}

int sendq_attach(struct sendq *q, struct sendq_item *it, struct bufferevent *bev)
{
    it->q = q;
    it->bev = bev;
    it->queued = false;
    it->cbe = evbuffer_add_cb(bufferevent_get_output(bev), output_cb, it);
    if (!it->cbe)
        return -1;
    bufferevent_disable(bev, EV_WRITE);
    return 0;
}

void sendq_detach(struct sendq_item *it)
{
    if (!it->q)
        return;
    if (it->queued)
        TAILQ_REMOVE(&it->q->items, it, link);
    it->queued = false;
    if (it->cbe)
        evbuffer_remove_cb_entry(bufferevent_get_output(it->bev), it->cbe);
    it->cbe = NULL;
    it->q = NULL;
}
