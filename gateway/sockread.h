/*
 * sockread: the input side of a worker's bufferevents, read by the worker
 * itself. A bufferevent reads with evbuffer_read, which asks the kernel how
 * much is waiting (ioctl FIONREAD) before every readv: two of a proxied
 * request's seven syscalls. sockread keeps its own read event on the socket
 * and reads with one recv into the bufferevent's input buffer, then calls
 * the bufferevent's own read and event callbacks as libevent would, so the
 * code above it does not change. nginx reads the same way (one recvfrom).
 *
 * Once attached, the bufferevent's EV_READ is never enabled: reading is
 * switched with sockread_enable/disable. EOF and errors disable reading,
 * then call the event callback with BEV_EVENT_READING | BEV_EVENT_EOF or
 * BEV_EVENT_ERROR, as a bufferevent does.
 *
 * What it does not carry over, because no attached connection uses it:
 * bufferevent read timeouts (owners keep their own timers), a read low
 * watermark, deferred callbacks and locking. The socket is the one the
 * bufferevent has at attach time (upstreams attach after connecting), and
 * it must be a socket (recv).
 *
 * While an upstream connect is in progress, a refused connect wakes both
 * sockread (whose recv takes the socket's error and reports READING |
 * ERROR) and the bufferevent's connect check, in either order. Owners must
 * therefore free the bufferevent on the first event callback during a
 * connect (proxy.c does): a bufferevent kept alive would next report
 * CONNECTED for a socket whose error sockread already consumed.
 */
#ifndef ENVELOPD_SOCKREAD_H
#define ENVELOPD_SOCKREAD_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

struct sockread {
    struct bufferevent *bev;
    struct event *ev;                  /* EV_READ | EV_PERSIST on the socket */
    struct evbuffer_cb_entry *cbe;     /* on the input: resume below the limit */
    size_t limit;                      /* 0: none; else stop reading at this much input */
    bool enabled;                      /* the owner wants input */
    bool held;                         /* enabled, but the input is at its limit */
};

/* Take over reading BEV's socket (its fd must exist). 0, or -1 (out of memory). */
int sockread_attach(struct sockread *r, struct event_base *base, struct bufferevent *bev)
    __attribute__((warn_unused_result));
/* Before bufferevent_free; a no-op for one never attached. */
void sockread_detach(struct sockread *r);

int sockread_enable(struct sockread *r);
void sockread_disable(struct sockread *r);
bool sockread_enabled(const struct sockread *r);
/* Hold reading while the input buffer has LIMIT bytes or more (0: never),
 * as a bufferevent's read high-water mark does. */
void sockread_set_limit(struct sockread *r, size_t limit);

#endif
