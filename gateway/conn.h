/*
 * conn: one connection's I/O, as nginx's ngx_connection_t and HAProxy's
 * connection + transport layers do it. A conn owns the socket, its input
 * and output evbuffers, its read and write events, and a transport (plain
 * TCP / unix socket now; TLS later, inside conn.c only): client.c, proxy.c
 * and upstream.c see buffers, callbacks and a few switches, never the fd.
 * It replaces libevent bufferevents on the worker's connections, which had
 * to be driven from outside for two measured reasons:
 *
 *  - Reads: a bufferevent reads with evbuffer_read, which asks the kernel
 *    how much is waiting (ioctl FIONREAD) before every readv: two of a
 *    proxied request's seven syscalls (ioctl 2.02 per request in strace,
 *    4% of the worker's CPU in perf). A conn reads with one recv of at most
 *    CONN_READ_CHUNK per readable event into a per-thread buffer, then adds
 *    the bytes to the input (a small chain from malloc's fast bins and a
 *    short memcpy, where reserving room first would allocate a chain as
 *    large as the largest read allowed). nginx reads the same way.
 *  - Writes: a bufferevent arms EPOLLOUT when its output gets data, writes
 *    on the next loop turn, then disarms it: two epoll_ctl calls and one
 *    more epoll_wait per response on every socket (epoll_ctl 4.11 -> 2.07
 *    per request, all syscalls 11.3 -> 9.27 when that was removed). A conn
 *    writes first: what a callback adds to the output is written by the
 *    worker's flush queue (struct conn_flushq) once the loop turn's
 *    callbacks return, all of a turn's adds in one write, and EPOLLOUT is
 *    armed only while the kernel would block. nginx writes first, too.
 *
 * Who calls what. The owner (client.c, upstream.c, proxy.c through
 * upstream's struct upconn) embeds a struct conn, starts it with conn_init
 * (an accepted socket) or conn_connect (a connect in progress), sets its
 * callbacks, and ends it with conn_close. conn calls back:
 *  - read:  bytes were added to the input (one recv each time);
 *  - write: the output was written down to the low-water mark (0 unless set;
 *           the end-of-turn flush calls it only once the output is empty, so
 *           "the last byte is out" is one callback);
 *  - event: CONN_EV_CONNECTED once a connect completes; CONN_EV_READING with
 *           CONN_EV_EOF or CONN_EV_ERROR (reading is then off), or
 *           CONN_EV_WRITING | CONN_EV_ERROR when a write failed, or
 *           CONN_EV_ERROR for a failed connect; errno is the socket's error.
 * A callback may close and free its own conn (and its owner): conn touches
 * nothing of it after a callback returns. Reading is the owner's to switch
 * (conn_read_enable/disable, and a limit that holds it while the input is
 * full); writing is conn's alone.
 *
 * Ownership. conn_init and conn_connect own the socket from the call on,
 * failed or not; conn_close frees the buffers and events at once and hands
 * the socket to the flush queue, which closes it through the transport at
 * the end of the loop turn, after the turn's access lines are written (so a
 * response's line is in the file before a FIN or reset ends it, as when
 * libevent closed a freed bufferevent's socket from the loop), and never
 * before the turn's accepts, so libevent's epoll changelist never sees a
 * closed fd's number reused in the turn it was closed. The owner frees the
 * struct conn itself (it is embedded); a zeroed or closed conn may be
 * closed again.
 *
 * TLS. A transport is a table of functions on the socket: recv into a
 * buffer, writev from the output's chains, shutdown (no more writes) and
 * close (optionally with a reset), with per-connection state in tr_ctx. A
 * TLS transport will add its handshake (before CONN_EV_CONNECTED on an
 * upstream, before the first read callback on a client), read-wants-write
 * and write-wants-read states (arming the other event), and bytes the
 * library decrypted but the kernel no longer signals (SSL_pending: the read
 * event is activated again); all of that stays in conn.c and the transport,
 * and client.c and proxy.c do not change.
 *
 * What a bufferevent had that conns do not: timeouts (owners keep their own
 * timers), a read low-water mark, deferred callbacks, rate limits, locks.
 */
#ifndef ENVELOPD_CONN_H
#define ENVELOPD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>

/* One read takes at most this much (and a TLS record is at most 16 KiB). */
#define CONN_READ_CHUNK 16384
/* Chains handed to one writev; an output holding more is written in turns. */
#define CONN_WRITE_IOV 64

/* What an event callback is told; the same bits as libevent's BEV_EVENT_*. */
#define CONN_EV_READING 0x01
#define CONN_EV_WRITING 0x02
#define CONN_EV_EOF 0x10
#define CONN_EV_ERROR 0x20
#define CONN_EV_CONNECTED 0x80
/* A TLS conn's peer sent what cannot start a handshake: the conn is plain now. */
#define CONN_EV_NOT_TLS 0x100

struct conn;
struct pp_info;
typedef void (*conn_data_cb)(struct conn *c, void *arg);
typedef void (*conn_event_cb)(struct conn *c, short what, void *arg);

/*
 * A transport: how bytes cross the socket. recv and writev return bytes
 * moved, 0 for EOF (recv only), or -1 with errno (EAGAIN: would block).
 * close runs after the conn is gone, from the flush queue, so it gets the
 * socket and state rather than the conn; RESET: end with a reset (RST)
 * instead of an orderly close.
 */
struct conn_transport {
    const char *name;
    ssize_t (*recv)(struct conn *c, void *buf, size_t len);
    ssize_t (*writev)(struct conn *c, const struct iovec *iov, int n);
    int (*shutdown)(struct conn *c);
    void (*close)(evutil_socket_t fd, void *ctx, bool reset);
    /* Optional (NULL for plain). One handshake step: CONN_HS_*. */
    int (*handshake)(struct conn *c);
    /* Optional: bytes already taken off the socket but not yet returned by
     * recv (a decrypted record's rest), which epoll will not signal. */
    bool (*pending)(const struct conn *c);
};

enum {
    CONN_HS_FAILED = -1,      /* why: conn_tls_error */
    CONN_HS_WANT_READ = 0,
    CONN_HS_DONE = 1,
    CONN_HS_WANT_WRITE = 2,
    CONN_HS_NOT_TLS = 3,      /* the transport switched itself to conn_plain */
};

/* TCP or a unix socket, as the kernel gives them. */
extern const struct conn_transport conn_plain;

/* A socket waiting for its close at the end of the turn. */
struct conn_closing {
    evutil_socket_t fd;
    const struct conn_transport *tr;
    void *ctx;
    bool reset;
};

/*
 * A worker's end-of-turn work: the outputs that got data during this turn
 * (written before the loop next waits) and the sockets to close. One per
 * event base; its event is activated, never armed on a fd.
 */
struct conn_flushq {
    struct event_base *base;
    struct event *ev;
    TAILQ_HEAD(, conn) conns;            /* outputs waiting for their write */
    void (*prelude)(void);               /* runs before the turn's writes and closes; may be NULL */
    struct conn_closing *closing;        /* [n_closing], room for cap_closing */
    size_t n_closing, cap_closing;
};

struct conn {
    struct conn_flushq *q;               /* NULL: not open (zeroed, failed or closed) */
    evutil_socket_t fd;
    const struct conn_transport *tr;
    void *tr_ctx;                        /* the transport's per-connection state; plain: NULL */
    struct evbuffer *in, *out;
    struct event rev, wev;               /* EV_READ | EV_PERSIST, EV_WRITE | EV_PERSIST */
    struct evbuffer_cb_entry *in_cbe;    /* resumes a held read; added at the first hold */
    conn_data_cb readcb, writecb;
    conn_event_cb eventcb;
    void *cbarg;
    size_t in_limit;                     /* 0: none; else stop reading at this much input */
    size_t low_water;                    /* the write callback's mark (EPOLLOUT path) */
    TAILQ_ENTRY(conn) qlink;             /* in q->conns while queued */
    bool queued;
    bool reading;                        /* the owner wants input */
    bool held;                           /* reading, but the input is at its limit */
    bool rd_armed, wr_armed;             /* rev / wev added to the base */
    bool connecting;                     /* wev waits for the connect's outcome */
    bool refused;                        /* the connect failed at once: report it from the loop */
    bool reset;                          /* close with a reset */
    bool handshaking;                    /* the transport's handshake is not done: no bytes move */
    struct pp_info *pp;                  /* a PROXY header is expected first, parsed into *pp */
    unsigned char *pp_buf;               /* its bytes so far (PP_MAX_HEADER), taken off the socket */
    size_t pp_len;
    const char *tr_error;                /* static text: why the transport last failed */
};

int conn_flushq_init(struct conn_flushq *q, struct event_base *base)
    __attribute__((warn_unused_result));
/* After every conn of Q is closed: closes the sockets still waiting, frees the event. */
void conn_flushq_cleanup(struct conn_flushq *q);

/* Take over the connected socket FD (its callbacks unset, reading off). 0,
 * or -1 (out of memory; FD closed). */
int conn_init(struct conn *c, struct conn_flushq *q, evutil_socket_t fd,
              const struct conn_transport *tr) __attribute__((warn_unused_result));
/*
 * Start a non-blocking connect to SA. 0: in progress; the event callback
 * gets CONN_EV_CONNECTED or CONN_EV_ERROR from the loop, never from this
 * call (a connect refused at once is reported the same way). -1 with errno:
 * failed at once (no socket, unreachable...), nothing left open.
 */
int conn_connect(struct conn *c, struct conn_flushq *q, const struct sockaddr *sa, socklen_t salen,
                 const struct conn_transport *tr) __attribute__((warn_unused_result));
/*
 * For transports (conn_tls): C speaks TR with per-connection state CTX from
 * now on, after a handshake that conn drives from its events, starting at
 * once on an accepted socket and when the connect completes on a connect.
 * 0, or -1 (the read event could not be armed).
 */
int conn_begin_handshake(struct conn *c, const struct conn_transport *tr, void *ctx)
    __attribute__((warn_unused_result));
bool conn_handshaking(const struct conn *c);

/*
 * Expect a PROXY protocol header (v1 or v2) before anything else on C, an
 * accepted socket: it is read (never past its end, so the stream after it
 * stays in the socket for a TLS handshake) into *OUT,
 * which must outlive the handshake. Then the transport's handshake, if
 * any, runs; CONN_EV_CONNECTED follows both. A malformed header fails the
 * handshake (CONN_EV_ERROR, EPROTO; conn_tls_error says why). Call after
 * conn_tls_accept when both apply. 0, or -1.
 */
int conn_expect_proxy_header(struct conn *c, struct pp_info *out)
    __attribute__((warn_unused_result));
/* Still waiting for (or failed on) the PROXY header. */
static inline bool conn_awaits_proxy_header(const struct conn *c)
{
    return c->pp != NULL;
}

/* Done with C: see Ownership above. A no-op for a conn not open. */
void conn_close(struct conn *c);

void conn_setcb(struct conn *c, conn_data_cb readcb, conn_data_cb writecb, conn_event_cb eventcb,
                void *arg);

static inline struct evbuffer *conn_input(const struct conn *c)
{
    return c->in;
}

/* Add to it freely: it is written at the end of the turn. */
static inline struct evbuffer *conn_output(const struct conn *c)
{
    return c->out;
}

/* 0, or -1 (the conn is not open, or the event could not be added). While
 * a connect is in progress, reading starts once it completes. */
int conn_read_enable(struct conn *c);
void conn_read_disable(struct conn *c);
bool conn_reading(const struct conn *c);
/* Hold reading while the input holds LIMIT bytes or more (0: never), as a
 * bufferevent's read high-water mark does; draining below it resumes. */
void conn_set_read_limit(struct conn *c, size_t limit);
/* When a write made room on a socket that would block, the write callback
 * runs once the output is at or below LOW (0: empty). */
void conn_set_write_low(struct conn *c, size_t low);
/* No more bytes from us (FIN; TLS would send its close_notify first). Only
 * once the output is empty: bytes still queued would be lost. */
int conn_shutdown(struct conn *c);
/* Close with a reset, not a FIN: the peer must not take a cut body as whole. */
void conn_reset_on_close(struct conn *c);

#endif
