/*
 * conn: a connection's reads (one recv per readable event), its write-first
 * output flushed at the end of the loop turn with EPOLLOUT armed only on
 * EAGAIN, its connect, and its close, deferred to the end of the turn; the
 * plain transport; and the worker's flush queue. See conn.h for why each
 * is done this way and who owns what.
 */
#include "conn.h"

#include "proxyproto.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads land here, then are added to the input: see conn.h. */
static _Thread_local char chunk[CONN_READ_CHUNK];

/* ---- the plain transport ------------------------------------------------- */

static ssize_t plain_recv(struct conn *c, void *buf, size_t len)
{
    return recv(c->fd, buf, len, 0);
}

static ssize_t plain_writev(struct conn *c, const struct iovec *iov, int n)
{
    /* sendmsg rather than writev: the same one syscall, and MSG_NOSIGNAL
     * makes a peer that is gone an EPIPE here, whatever SIGPIPE's
     * disposition in the process (the unit suites do not ignore it). */
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = (struct iovec *)iov;
    m.msg_iovlen = (size_t)n;
    return sendmsg(c->fd, &m, MSG_NOSIGNAL);
}

static int plain_shutdown(struct conn *c)
{
    return shutdown(c->fd, SHUT_WR);
}

static void plain_close(evutil_socket_t fd, void *ctx, bool reset)
{
    (void)ctx;
    if (reset) {
        /* A zero linger makes close(2) send a reset and drop unsent bytes. */
        struct linger lg = {1, 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    (void)close(fd);
}

const struct conn_transport conn_plain = {
    .name = "plain",
    .recv = plain_recv,
    .writev = plain_writev,
    .shutdown = plain_shutdown,
    .close = plain_close,
};

/* ---- the flush queue ----------------------------------------------------- */

static void flush_one(struct conn *c);

static void close_deferred(struct conn_flushq *q)
{
    /* Closing runs no callback: the list cannot grow under the walk. */
    for (size_t i = 0; i < q->n_closing; i++) {
        struct conn_closing *k = &q->closing[i];
        k->tr->close(k->fd, k->ctx, k->reset);
    }
    q->n_closing = 0;
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn_flushq *q = arg;
    struct conn *c;
    (void)fd;
    (void)what;
    if (q->prelude)
        q->prelude();
    /* One at a time from the head: a write callback may close any conn. */
    while ((c = TAILQ_FIRST(&q->conns)) != NULL) {
        TAILQ_REMOVE(&q->conns, c, qlink);
        c->queued = false;
        flush_one(c);
    }
    if (q->n_closing) {
        /* Lines written by the write callbacks above go out before the
         * FINs and resets of their connections, too. */
        if (q->prelude)
            q->prelude();
        close_deferred(q);
    }
}

int conn_flushq_init(struct conn_flushq *q, struct event_base *base)
{
    memset(q, 0, sizeof *q);
    TAILQ_INIT(&q->conns);
    q->base = base;
    q->ev = event_new(base, -1, 0, flush_cb, q);
    return q->ev ? 0 : -1;
}

void conn_flushq_cleanup(struct conn_flushq *q)
{
    struct conn *c;
    while ((c = TAILQ_FIRST(&q->conns)) != NULL) {
        TAILQ_REMOVE(&q->conns, c, qlink);
        c->queued = false;
    }
    close_deferred(q);
    free(q->closing);
    q->closing = NULL;
    q->cap_closing = 0;
    if (q->ev)
        event_free(q->ev);
    q->ev = NULL;
}

static void queue(struct conn *c)
{
    struct conn_flushq *q = c->q;
    bool was_empty = TAILQ_EMPTY(&q->conns);
    TAILQ_INSERT_TAIL(&q->conns, c, qlink);
    c->queued = true;
    if (was_empty)
        event_active(q->ev, EV_WRITE, 0);
}

/* Hand C's socket to Q for the end of the turn (at once if out of memory). */
static void defer_close(struct conn_flushq *q, const struct conn *c)
{
    if (!q->ev) {
        /* The queue was cleaned up (the worker's loop is over): no turn to wait for. */
        c->tr->close(c->fd, c->tr_ctx, c->reset);
        return;
    }
    if (q->n_closing == q->cap_closing) {
        size_t cap = q->cap_closing ? q->cap_closing * 2 : 16;
        struct conn_closing *k = realloc(q->closing, cap * sizeof *k);
        if (!k) {
            if (q->prelude)
                q->prelude();
            c->tr->close(c->fd, c->tr_ctx, c->reset);
            return;
        }
        q->closing = k;
        q->cap_closing = cap;
    }
    q->closing[q->n_closing++] = (struct conn_closing){c->fd, c->tr, c->tr_ctx, c->reset};
    event_active(q->ev, EV_WRITE, 0);
}

/* ---- events -------------------------------------------------------------- */

static int arm(struct event *ev, bool *armed)
{
    if (*armed)
        return 0;
    if (event_add(ev, NULL) != 0)
        return -1;
    *armed = true;
    return 0;
}

static void disarm(struct event *ev, bool *armed)
{
    if (!*armed)
        return;
    (void)event_del(ev);  /* fails only for an event never assigned */
    *armed = false;
}

/* Tell the owner, keeping errno (the socket's error) for it. Last thing a
 * caller does: the callback may close C. */
static void report(struct conn *c, short what, int err)
{
    conn_event_cb cb = c->eventcb;
    if (cb) {
        errno = err;
        cb(c, what, c->cbarg);
    }
}

/* ---- the handshake ------------------------------------------------------- */

/*
 * One step of the transport's handshake, from whichever event fired. The
 * read event is the handshake's while it runs, whatever the owner asked;
 * once it is done, reading is back to what the owner wants, output queued
 * meanwhile leaves at the end of this turn, and the owner hears CONNECTED.
 */
static void pp_done(struct conn *c)
{
    free(c->pp_buf);
    c->pp_buf = NULL;
    c->pp_len = 0;
}

/*
 * The PROXY header: what is waiting is looked at (MSG_PEEK) together with
 * what was taken before, and then taken off the socket up to the header's
 * end and no further, since bytes after it belong to the transport's
 * handshake or the owner. A header still incomplete is all header (v1 has
 * no CRLF yet, v2 not its declared length), so it is taken whole: left in
 * the socket, it would keep the level-triggered read event firing (a
 * worker spinning on a slow balancer) and hide the peer's close.
 */
static int proxy_header_step(struct conn *c)
{
    size_t room = PP_MAX_HEADER - c->pp_len;
    ssize_t n = recv(c->fd, c->pp_buf + c->pp_len, room, MSG_PEEK);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return CONN_HS_WANT_READ;
        c->tr_error = "connection reset before the PROXY header";
        return CONN_HS_FAILED;
    }
    if (n == 0) {
        c->tr_error = "connection closed before the PROXY header";
        return CONN_HS_FAILED;
    }
    size_t have = c->pp_len + (size_t)n;
    const char *why = NULL;
    enum pp_result r = pp_parse(c->pp_buf, have, c->pp, &why);
    if (r == PP_INVALID) {
        c->tr_error = why ? why : "invalid PROXY header";
        return CONN_HS_FAILED;
    }
    size_t take = r == PP_DONE ? c->pp->header_len - c->pp_len : (size_t)n;
    /* The peek saw these bytes: taking them cannot come up short. */
    if (recv(c->fd, chunk, take, 0) != (ssize_t)take) {
        c->tr_error = "PROXY header could not be read";
        return CONN_HS_FAILED;
    }
    c->pp_len += take;
    if (r == PP_NEED_MORE)
        return CONN_HS_WANT_READ;
    c->pp = NULL;
    pp_done(c);
    return c->tr->handshake ? c->tr->handshake(c) : CONN_HS_DONE;
}

int conn_expect_proxy_header(struct conn *c, struct pp_info *out)
{
    c->pp_buf = malloc(PP_MAX_HEADER);
    if (!c->pp_buf)
        return -1;
    c->pp_len = 0;
    c->pp = out;
    if (c->handshaking)
        return 0;  /* the transport's handshake armed reading already */
    c->handshaking = true;
    return arm(&c->rev, &c->rd_armed);
}

static void handshake_step(struct conn *c)
{
    int r = c->pp ? proxy_header_step(c) : c->tr->handshake(c);
    switch (r) {
    case CONN_HS_WANT_READ:
        disarm(&c->wev, &c->wr_armed);
        if (arm(&c->rev, &c->rd_armed) != 0)
            break;
        return;
    case CONN_HS_WANT_WRITE:
        if (arm(&c->wev, &c->wr_armed) != 0)
            break;
        return;
    case CONN_HS_DONE:
    case CONN_HS_NOT_TLS:
        c->handshaking = false;
        disarm(&c->wev, &c->wr_armed);
        if (!c->reading || c->held)
            disarm(&c->rev, &c->rd_armed);
        else if (arm(&c->rev, &c->rd_armed) != 0)
            break;
        if (c->tr->pending && c->tr->pending(c) && c->rd_armed)
            event_active(&c->rev, EV_READ, 1);
        if (evbuffer_get_length(c->out) > 0 && !c->queued)
            queue(c);
        report(c, r == CONN_HS_DONE ? CONN_EV_CONNECTED : CONN_EV_NOT_TLS, 0);
        return;
    default:
        break;
    }
    /* Failed, or an event could not be armed (out of memory). */
    int err = r == CONN_HS_FAILED ? EPROTO : errno;
    c->handshaking = false;
    c->reading = false;
    disarm(&c->rev, &c->rd_armed);
    disarm(&c->wev, &c->wr_armed);
    report(c, CONN_EV_ERROR, err);
}

int conn_begin_handshake(struct conn *c, const struct conn_transport *tr, void *ctx)
{
    c->tr = tr;
    c->tr_ctx = ctx;
    c->handshaking = true;
    if (c->connecting)
        return 0;  /* connect_done starts it */
    if (arm(&c->rev, &c->rd_armed) != 0)
        return -1;
    /* An accepted client has usually sent its first flight (a ClientHello)
     * by now: try at the end of this turn rather than after the next
     * epoll_wait. Nothing there yet costs one recv that says EAGAIN. */
    event_active(&c->rev, EV_READ, 1);
    return 0;
}

bool conn_handshaking(const struct conn *c)
{
    return c->handshaking;
}

/* ---- reading ------------------------------------------------------------- */

/*
 * Reading (again): the read event armed, and made active at once when the
 * transport holds bytes it took off the socket earlier (a TLS record read
 * only in part, under the input limit): epoll would never signal those.
 */
static int resume_reading(struct conn *c)
{
    if (arm(&c->rev, &c->rd_armed) != 0)
        return -1;
    if (c->tr->pending && c->tr->pending(c))
        event_active(&c->rev, EV_READ, 1);
    return 0;
}

/* The owner drained the input: below the limit again, reading resumes. */
static void input_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct conn *c = arg;
    if (!c->held || info->n_deleted == 0 || evbuffer_get_length(buf) >= c->in_limit)
        return;
    c->held = false;
    evbuffer_cb_clear_flags(buf, c->in_cbe, EVBUFFER_CB_ENABLED);
    if (c->reading)
        (void)resume_reading(c);
}

/* Stop reading at the limit until the owner drains. -1: out of memory. */
static int hold(struct conn *c)
{
    disarm(&c->rev, &c->rd_armed);
    if (!c->in_cbe) {
        /* Added at the first hold only: most connections never reach it. */
        c->in_cbe = evbuffer_add_cb(c->in, input_cb, c);
        if (!c->in_cbe)
            return -1;
    } else if (evbuffer_cb_set_flags(c->in, c->in_cbe, EVBUFFER_CB_ENABLED) != 0) {
        return -1;
    }
    c->held = true;
    return 0;
}

/* Reading stops, then the owner is told, as a bufferevent does. */
static void read_failed(struct conn *c, short what, int err)
{
    conn_read_disable(c);
    report(c, CONN_EV_READING | what, err);
}

static void read_ev_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    (void)what;
    if (c->handshaking) {
        handshake_step(c);
        return;
    }
    size_t want = CONN_READ_CHUNK;
    if (c->in_limit) {
        size_t have = evbuffer_get_length(c->in);
        if (have >= c->in_limit) {
            if (hold(c) != 0)
                read_failed(c, CONN_EV_ERROR, ENOMEM);
            return;
        }
        if (c->in_limit - have < want)
            want = c->in_limit - have;
    }
    ssize_t n = c->tr->recv(c, chunk, want);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        read_failed(c, CONN_EV_ERROR, errno);
        return;
    }
    if (n == 0) {
        read_failed(c, CONN_EV_EOF, 0);
        return;
    }
    if (evbuffer_add(c->in, chunk, (size_t)n) != 0) {
        read_failed(c, CONN_EV_ERROR, ENOMEM);
        return;
    }
    if (c->in_limit && evbuffer_get_length(c->in) >= c->in_limit && hold(c) != 0) {
        read_failed(c, CONN_EV_ERROR, ENOMEM);
        return;
    }
    /* Decrypted bytes left over are not a readable socket: come back for
     * them in this turn (a close in the callback cancels it). */
    if (c->tr->pending && c->rd_armed && c->tr->pending(c))
        event_active(&c->rev, EV_READ, 1);
    if (c->readcb)
        c->readcb(c, c->cbarg);  /* may close C */
}

int conn_read_enable(struct conn *c)
{
    if (!c->q)
        return -1;
    c->reading = true;
    if (c->held || c->connecting || c->handshaking)
        return 0;  /* resumed by the drain, the connect's or the handshake's completion */
    return resume_reading(c);
}

void conn_read_disable(struct conn *c)
{
    c->reading = false;
    if (!c->handshaking)  /* the handshake reads for itself */
        disarm(&c->rev, &c->rd_armed);
}

bool conn_reading(const struct conn *c)
{
    return c->reading;
}

void conn_set_read_limit(struct conn *c, size_t limit)
{
    c->in_limit = limit;
    if (!c->q || !c->held || (limit != 0 && evbuffer_get_length(c->in) >= limit))
        return;
    c->held = false;
    evbuffer_cb_clear_flags(c->in, c->in_cbe, EVBUFFER_CB_ENABLED);
    if (c->reading && !c->connecting && !c->handshaking)
        (void)resume_reading(c);
}

/* ---- writing ------------------------------------------------------------- */

/* Write what the kernel takes: bytes written (0: would block, or nothing
 * to write), or -1 with errno. */
static ssize_t write_out(struct conn *c)
{
    struct iovec iov[CONN_WRITE_IOV];
    struct evbuffer_iovec *v = (struct evbuffer_iovec *)iov;
    _Static_assert(sizeof(struct evbuffer_iovec) == sizeof(struct iovec),
                   "evbuffer_iovec is struct iovec on POSIX");
    int n = evbuffer_peek(c->out, -1, NULL, v, CONN_WRITE_IOV);
    if (n <= 0)
        return 0;
    if (n > CONN_WRITE_IOV)
        n = CONN_WRITE_IOV;
    ssize_t w = c->tr->writev(c, iov, n);
    if (w < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    if (evbuffer_drain(c->out, (size_t)w) != 0) {
        errno = ENOMEM;
        return -1;
    }
    return w;
}

static void write_failed(struct conn *c, int err)
{
    disarm(&c->wev, &c->wr_armed);
    report(c, CONN_EV_WRITING | CONN_EV_ERROR, err);
}

/* The end-of-turn write: EPOLLOUT only for what the kernel did not take. */
static void flush_one(struct conn *c)
{
    if (evbuffer_get_length(c->out) == 0 || c->handshaking)
        return;  /* handshaking: queued again once it is done */
    if (write_out(c) < 0) {
        write_failed(c, errno);
        return;
    }
    if (evbuffer_get_length(c->out) > 0) {
        if (arm(&c->wev, &c->wr_armed) != 0)
            write_failed(c, errno);
        return;
    }
    if (c->writecb)
        c->writecb(c, c->cbarg);  /* may close C */
}

/* Something was added to the output: queue its write for the end of the turn. */
static void output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct conn *c = arg;
    (void)buf;
    /* Armed (blocked): EPOLLOUT writes it, after what is already waiting;
     * queued, it would cost a write certain to fail. Connecting: queued by
     * the connect's completion. */
    if (info->n_added == 0 || c->queued || c->wr_armed || c->connecting || c->handshaking)
        return;
    queue(c);
}

/* A connect in progress ended: CONN_EV_CONNECTED or CONN_EV_ERROR. */
static void connect_done(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (c->refused)
        err = ECONNREFUSED;
    else if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err == EINPROGRESS || err == EINTR)
        return;  /* not yet: EPOLLOUT again later */
    c->connecting = false;
    c->refused = false;
    disarm(&c->wev, &c->wr_armed);
    if (err) {
        c->handshaking = false;
        conn_read_disable(c);
        report(c, CONN_EV_ERROR, err);
        return;
    }
    if (c->handshaking) {
        handshake_step(c);  /* CONNECTED once it is done */
        return;
    }
    if (c->reading && !c->held && arm(&c->rev, &c->rd_armed) != 0) {
        c->reading = false;
        report(c, CONN_EV_READING | CONN_EV_ERROR, errno);
        return;
    }
    if (evbuffer_get_length(c->out) > 0 && !c->queued)
        queue(c);  /* added while connecting: written at the end of the turn */
    report(c, CONN_EV_CONNECTED, 0);
}

/* EPOLLOUT: the socket took what it could not before (or a connect ended). */
static void write_ev_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    (void)what;
    if (c->connecting) {
        connect_done(c);
        return;
    }
    if (c->handshaking) {
        handshake_step(c);
        return;
    }
    ssize_t w = write_out(c);
    if (w < 0) {
        write_failed(c, errno);
        return;
    }
    size_t left = evbuffer_get_length(c->out);
    if (left == 0)
        disarm(&c->wev, &c->wr_armed);
    /* As a bufferevent: after a write that made progress (not after a
     * spurious wakeup), while at or below the mark. */
    if ((w > 0 || left == 0) && left <= c->low_water && c->writecb)
        c->writecb(c, c->cbarg);  /* may close C */
}

void conn_set_write_low(struct conn *c, size_t low)
{
    c->low_water = low;
}

/* ---- life ---------------------------------------------------------------- */

static int conn_open(struct conn *c, struct conn_flushq *q, evutil_socket_t fd,
                     const struct conn_transport *tr)
{
    memset(c, 0, sizeof *c);
    c->fd = fd;
    c->tr = tr;
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    if (!c->in || !c->out || !evbuffer_add_cb(c->out, output_cb, c) ||
        event_assign(&c->rev, q->base, fd, EV_READ | EV_PERSIST, read_ev_cb, c) != 0 ||
        event_assign(&c->wev, q->base, fd, EV_WRITE | EV_PERSIST, write_ev_cb, c) != 0) {
        if (c->in)
            evbuffer_free(c->in);
        if (c->out)
            evbuffer_free(c->out);
        tr->close(fd, NULL, false);
        memset(c, 0, sizeof *c);
        return -1;
    }
    c->q = q;
    return 0;
}

int conn_init(struct conn *c, struct conn_flushq *q, evutil_socket_t fd,
              const struct conn_transport *tr)
{
    return conn_open(c, q, fd, tr);
}

int conn_connect(struct conn *c, struct conn_flushq *q, const struct sockaddr *sa, socklen_t salen,
                 const struct conn_transport *tr)
{
    memset(c, 0, sizeof *c);
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (sa->sa_family != AF_UNIX) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    int rc = connect(fd, sa, salen);
    int err = rc == 0 ? 0 : errno;
    /* Refused at once (a closed port on loopback): reported from the loop
     * like a refusal that takes a round trip, so owners have one path. Any
     * other immediate failure is the caller's at once. */
    if (rc != 0 && err != EINPROGRESS && err != EINTR && err != ECONNREFUSED) {
        (void)close(fd);
        errno = err;
        return -1;
    }
    if (conn_open(c, q, fd, tr) != 0) {
        errno = ENOMEM;
        return -1;
    }
    c->connecting = true;
    c->refused = err == ECONNREFUSED;
    if (err == EINPROGRESS || err == EINTR) {
        if (arm(&c->wev, &c->wr_armed) != 0) {
            err = errno;
            conn_close(c);
            errno = err;
            return -1;
        }
    } else {
        /* Done already (a unix socket connects at once): the outcome goes
         * through the same callback, on this turn's end. */
        event_active(&c->wev, EV_WRITE, 1);
    }
    return 0;
}

void conn_close(struct conn *c)
{
    struct conn_flushq *q = c->q;
    if (!q)
        return;
    /* Not only the armed ones: an event made active in this turn (by epoll,
     * or an immediate connect's outcome) must not run either. */
    (void)event_del(&c->rev);
    (void)event_del(&c->wev);
    c->rd_armed = c->wr_armed = false;
    if (c->queued)
        TAILQ_REMOVE(&q->conns, c, qlink);
    evbuffer_free(c->in);   /* with its callback entries */
    evbuffer_free(c->out);
    pp_done(c);
    c->pp = NULL;
    defer_close(q, c);
    c->q = NULL;
    c->queued = false;
    c->reading = c->held = false;
    c->in = c->out = NULL;
    c->in_cbe = NULL;
    c->fd = -1;
}

void conn_setcb(struct conn *c, conn_data_cb readcb, conn_data_cb writecb, conn_event_cb eventcb,
                void *arg)
{
    c->readcb = readcb;
    c->writecb = writecb;
    c->eventcb = eventcb;
    c->cbarg = arg;
}

int conn_shutdown(struct conn *c)
{
    if (!c->q)
        return -1;
    return c->tr->shutdown(c);
}

void conn_reset_on_close(struct conn *c)
{
    c->reset = true;
}
