/*
 * client: one client connection. Reads and judges request heads (answering
 * malformed ones itself), decodes request bodies into the proxy, enforces
 * the whole-head and whole-body deadlines, keeps keep-alive and pipelining
 * in order, writes responses, and writes the access line when each ends.
 * A client that does not read its answers gets no more of them: the next
 * pipelined request waits while the output holds more than
 * OUTPUT_HIGH_WATER (client.c), under the send deadline. After a 101 its
 * input goes to the proxy's tunnel untouched.
 */
#ifndef ENVELOPD_CLIENT_H
#define ENVELOPD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/util.h>

#include "envelope.h"
#include "httphead.h"
#include "reqid.h"
#include "sendq.h"
#include "sockread.h"

struct worker;
struct gen;
struct proxy;

enum client_state {
    CS_IDLE,     /* between requests */
    CS_HEAD,     /* reading a head; the head deadline runs */
    CS_BODY,     /* reading a body; the body deadline runs */
    CS_WAIT,     /* request read; the response is being produced */
    CS_LINGER,   /* answer sent, input discarded until EOF or a short timer */
    CS_TUNNEL,   /* after a 101: input goes to the proxy's tunnel as it comes */
};

/* What the access line and the envelopes need to know about the request. */
/* Most request paths fit inline; a longer one (up to the access line's
 * 1024 bytes) is copied to the heap for that request only, so an idle
 * keep-alive connection does not carry a 1 KiB buffer. */
#define REQINFO_PATH_INLINE 128
#define REQINFO_PATH_MAX 1024

struct reqinfo {
    char id[REQID_MAX + 1];
    char method[24];
    size_t path_len;            /* of the access line's path: path_heap if set, else path_inline */
    char *path_heap;            /* a path too long for path_inline, up to REQINFO_PATH_MAX */
    char path_inline[REQINFO_PATH_INLINE];
    const char *route;          /* name, owned by the request's conf */
    int status;
    int upstream_status;
    const char *upstream;       /* server address, owned by the conf */
    double upstream_ms;
    uint64_t bytes_in;
    uint64_t bytes_out;
    long rl_remaining;
    const char *error_code;
    char error_code_buf[64];    /* an upstream's own code, when error_code points here */
    bool head_method;
    unsigned short minor;       /* HTTP/1.minor of the client */
    uint64_t start_us;
};

struct client {
    LIST_ENTRY(client) link;    /* in the worker's list of connections */
    struct worker *w;
    struct gen *gen;            /* held from head to the end of the response */
    struct bufferevent *bev;
    struct sendq_item sq;       /* its output is written first, EPOLLOUT only on EAGAIN */
    struct sockread sr;         /* its input, one recv per read */
    char ip[64];
    struct sockaddr_storage peer;
    enum client_state st;
    struct event *timer;
    size_t scan_pos;
    unsigned scan_state;
    struct httpbody body;
    bool body_active;
    struct proxy *px;
    struct reqinfo ri;
    bool close_after;           /* Connection: close on the current response */
    bool resp_started;
    bool req_done;              /* the current request was read whole */
    bool discarding;            /* answered early; reading the rest of its body away */
    bool eof;                   /* the client half-closed: serve what it sent, then close */
    bool out_held;              /* its answers wait unread: no next request until they drain */
    bool in_read;               /* re-entrancy guard for client_process */
    bool freed_pending;
};

/* Draining: close the connection if it is between requests. */
void client_drain(struct client *c);

/* Take ownership of an accepted socket. */
void client_accept(struct worker *w, evutil_socket_t fd, const struct sockaddr *sa, int salen);

/*
 * Answer the current request with a gateway-made envelope. EXTRA is NULL or
 * extra header lines ("Allow: GET\r\n"). CLOSE: close the connection after.
 */
void client_send_error(struct client *c, int status, const char *message, const char *extra,
                       const struct envelope_limit *limit, bool close);

/* The proxy's hooks into the connection. */
struct evbuffer *client_output(struct client *c);
void client_count_out(struct client *c, size_t n);
void client_response_done(struct client *c);
void client_abort(struct client *c);             /* tear down mid-response with a reset */
void client_cut(struct client *c);               /* upstream cut a framed body: flush, then FIN */
void client_pause_read(struct client *c);
/* The upstream switched protocols: from now on input is relayed untouched. */
void client_tunnel_start(struct client *c);
/* The tunnel is over: flush, then FIN (or, BROKEN, a reset at once). */
void client_tunnel_end(struct client *c, bool broken);
/* While a response waits on a client that does not read: arm (or drop) its send deadline. */
void client_send_deadline(struct client *c, bool on);
void client_resume_read(struct client *c);
/* The Date header value, cached per second for this thread. */
const char *client_http_date(void);

#endif
