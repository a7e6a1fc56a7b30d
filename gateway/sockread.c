/*
 * sockread: a connection's reads, one recv each, into its bufferevent's
 * input; see sockread.h for why it exists.
 */
#include "sockread.h"

#include <errno.h>
#include <sys/socket.h>

/*
 * One read takes at most this much. Bytes land in a per-thread buffer and
 * are then added to the input: a small request costs a small chain (from
 * malloc's fast bins) and a short memcpy, where reserving room in the input
 * first would allocate a chain as large as the largest read allowed.
 */
#define SOCKREAD_CHUNK 16384

static _Thread_local char chunk[SOCKREAD_CHUNK];

static void hold(struct sockread *r)
{
    r->held = true;
    event_del(r->ev);
    evbuffer_cb_set_flags(bufferevent_get_input(r->bev), r->cbe, EVBUFFER_CB_ENABLED);
}

/* The owner drained the input: below the limit again, reading resumes. */
static void input_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct sockread *r = arg;
    if (!r->held || info->n_deleted == 0 || evbuffer_get_length(buf) >= r->limit)
        return;
    r->held = false;
    evbuffer_cb_clear_flags(buf, r->cbe, EVBUFFER_CB_ENABLED);
    if (r->enabled)
        event_add(r->ev, NULL);
}

/* Disable, then tell the owner, as bufferevent_readcb does. */
static void fail(struct sockread *r, short what)
{
    struct bufferevent *bev = r->bev;
    bufferevent_event_cb eventcb = NULL;
    void *arg = NULL;
    sockread_disable(r);
    bufferevent_getcb(bev, NULL, NULL, &eventcb, &arg);
    if (eventcb)
        eventcb(bev, BEV_EVENT_READING | what, arg);  /* may free R */
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sockread *r = arg;
    struct bufferevent *bev = r->bev;
    struct evbuffer *in = bufferevent_get_input(bev);
    (void)what;
    size_t want = SOCKREAD_CHUNK;
    if (r->limit) {
        size_t have = evbuffer_get_length(in);
        if (have >= r->limit) {
            hold(r);
            return;
        }
        if (r->limit - have < want)
            want = r->limit - have;
    }
    ssize_t n = recv(fd, chunk, want, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        fail(r, BEV_EVENT_ERROR);
        return;
    }
    if (n == 0) {
        fail(r, BEV_EVENT_EOF);
        return;
    }
    /* A bufferevent keeps its input's end frozen against adding by others,
     * and thaws it only around its own reads: so do we. */
    evbuffer_unfreeze(in, 0);
    int rc = evbuffer_add(in, chunk, (size_t)n);
    evbuffer_freeze(in, 0);
    if (rc != 0) {
        fail(r, BEV_EVENT_ERROR);
        return;
    }
    if (r->limit && evbuffer_get_length(in) >= r->limit)
        hold(r);
    bufferevent_data_cb readcb = NULL;
    void *cbarg = NULL;
    bufferevent_getcb(bev, &readcb, NULL, NULL, &cbarg);
    if (readcb)
        readcb(bev, cbarg);  /* may free R */
}

int sockread_attach(struct sockread *r, struct event_base *base, struct bufferevent *bev)
{
    r->bev = bev;
    r->limit = 0;
    r->enabled = r->held = false;
    r->cbe = NULL;
    evutil_socket_t fd = bufferevent_getfd(bev);
    r->ev = fd >= 0 ? event_new(base, fd, EV_READ | EV_PERSIST, read_cb, r) : NULL;
    if (!r->ev)
        return -1;
    r->cbe = evbuffer_add_cb(bufferevent_get_input(bev), input_cb, r);
    if (!r->cbe) {
        event_free(r->ev);
        r->ev = NULL;
        return -1;
    }
    evbuffer_cb_clear_flags(bufferevent_get_input(bev), r->cbe, EVBUFFER_CB_ENABLED);
    bufferevent_disable(bev, EV_READ);
    return 0;
}

void sockread_detach(struct sockread *r)
{
    if (!r->ev)
        return;
    evbuffer_remove_cb_entry(bufferevent_get_input(r->bev), r->cbe);
    event_free(r->ev);
    r->ev = NULL;
    r->cbe = NULL;
    r->enabled = r->held = false;
}

int sockread_enable(struct sockread *r)
{
    if (!r->ev)
        return -1;
    r->enabled = true;
    if (r->held || event_pending(r->ev, EV_READ, NULL))
        return 0;
    return event_add(r->ev, NULL);
}

void sockread_disable(struct sockread *r)
{
    r->enabled = false;
    if (r->ev && !r->held)
        event_del(r->ev);
}

bool sockread_enabled(const struct sockread *r)
{
    return r->enabled;
}

void sockread_set_limit(struct sockread *r, size_t limit)
{
    r->limit = limit;
    if (!r->ev)
        return;
    struct evbuffer *in = bufferevent_get_input(r->bev);
    if (r->held && (limit == 0 || evbuffer_get_length(in) < limit)) {
        r->held = false;
        evbuffer_cb_clear_flags(in, r->cbe, EVBUFFER_CB_ENABLED);
        if (r->enabled)
            event_add(r->ev, NULL);
    }
}
