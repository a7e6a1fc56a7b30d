/*
 * sendq: write-first output for a worker's bufferevents. Bytes added to an
 * attached connection's output are written by the worker in the same
 * event-loop turn, after the callback that produced them returns, and
 * EPOLLOUT is armed (the bufferevent's EV_WRITE enabled) only while the
 * kernel would block. Left to itself a bufferevent arms EPOLLOUT when its
 * output gets data and disarms it after writing: two epoll_ctl calls and one
 * more loop turn per response on every socket. nginx writes first, too.
 */
#ifndef ENVELOPD_SENDQ_H
#define ENVELOPD_SENDQ_H

#include <stdbool.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

struct sendq_item {
    TAILQ_ENTRY(sendq_item) link;
    struct sendq *q;
    struct bufferevent *bev;
    struct evbuffer_cb_entry *cbe;
    bool queued;
};

struct sendq {
    struct event *ev;                    /* activated, never armed on a fd */
    TAILQ_HEAD(, sendq_item) items;      /* outputs waiting for their write */
    void (*prelude)(void);               /* run before the turn's writes; may be NULL */
};

int sendq_init(struct sendq *q, struct event_base *base) __attribute__((warn_unused_result));
void sendq_cleanup(struct sendq *q);

/*
 * From now on Q writes BEV's output; the bufferevent's EV_WRITE is Q's to
 * switch (callers enable EV_READ only). The bufferevent's write callback is
 * still called when its output has been written whole, as libevent would.
 */
int sendq_attach(struct sendq *q, struct sendq_item *it, struct bufferevent *bev)
    __attribute__((warn_unused_result));
/* Before bufferevent_free; a no-op for an item never attached. */
void sendq_detach(struct sendq_item *it);

#endif
