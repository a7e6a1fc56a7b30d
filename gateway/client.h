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
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/util.h>

#include "envelope.h"
#include "headbuf.h"

struct client;
struct worker;
struct gen;
struct proxy;
struct conf_addr;
struct conf_route;

/* Draining: close every connection of W that is between requests (after
 * flushing answers still queued to it). */
void client_drain_all(struct worker *w);
/* Free the clients closed during this loop turn (W's free list): the
 * worker's end-of-turn event calls it, and cleanup after the loop. */
void client_reap(struct worker *w);

/* Take ownership of an accepted socket. */
void client_accept(struct worker *w, const struct conf_addr *listen, evutil_socket_t fd,
                   const struct sockaddr *sa, int salen);

/*
 * Answer the current request with a gateway-made envelope. EXTRA is NULL or
 * extra header lines ("Allow: GET\r\n"). CLOSE: close the connection after.
 */
void client_send_error(struct client *c, int status, const char *message, const char *extra,
                       const struct envelope_limit *limit, bool close);
/*
 * The same with the envelope's CODE (NULL: the route's code_map, else the
 * status's) and field details (N of them; NULL none): the answers of auth.
 */
void client_send_error_coded(struct client *c, int status, const char *code, const char *message,
                             const char *extra, const struct envelope_field *fields, size_t n,
                             const struct envelope_limit *limit);

/* ---- the proxy's view of the connection and its current request ---- */
const char *client_id(const struct client *c);           /* the correlation ID */
const char *client_ip(const struct client *c);           /* the peer, as text */
bool client_tls(const struct client *c);                 /* it reached us over TLS */
const char *client_sni(const struct client *c);          /* its TLS SNI name, or NULL */
const struct sockaddr *client_peer(const struct client *c);
struct worker *client_worker(const struct client *c);
struct gen *client_gen(const struct client *c);          /* the request's conf generation */
unsigned client_minor(const struct client *c);           /* HTTP/1.minor of the request */
/* The exchange serving the current request; NULL once it was answered. */
struct proxy *client_exchange(const struct client *c);
void client_set_exchange(struct client *c, struct proxy *px);

/* ---- what the proxy learns, for the access line ---- */
void client_note_route(struct client *c, const struct conf_route *route); /* owned by the conf */
void client_note_server(struct client *c, const char *addr);    /* owned by the conf */
/* The upstream's status and time so far; a negative value keeps the one noted. */
void client_note_upstream(struct client *c, int status, double ms);
void client_note_limit(struct client *c, long remaining);
/* Who the request was authenticated as (a subject, never a credential), for the access line. */
void client_note_subject(struct client *c, const char *subject);

/* ---- answers: the one place their framing and closing are decided ---- */
/*
 * Will the connection close after the answer starting now? It will when
 * CLOSE, when draining, and when the request was not read whole, unless
 * DISCARD and the rest of its body can be read away (an answer no exchange
 * is still reading the body for).
 */
bool client_answer_closes(struct client *c, bool close, bool discard);
/* End a head: the Connection line this answer needs (none after a 101:
 * UPGRADE) and the blank line. */
void client_head_end(struct client *c, struct headbuf *h, bool upgrade);
/*
 * Write a gateway-made or enveloped answer whole: status line, Date, the
 * profile's Content-Type, Content-Length, correlation ID, EXTRA[0..len)
 * header lines, Connection, and BODY (not for HEAD). Notes STATUS and, when
 * given, the machine CODE for the access line. Call client_answer_closes
 * first.
 */
void client_write_envelope(struct client *c, int status, const char *code, const char *extra,
                           size_t extra_len, const char *body, size_t blen);
/* A relayed response's head is out: STATUS for the access line. */
void client_response_started(struct client *c, int status);

/* ---- the proxy's hooks into the connection ---- */
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
/* The most bytes client_head_end may write for C's current answer. */
size_t client_head_end_cap(struct client *c);
/* A bodiless answer (204): status line, Date, the correlation ID, EXTRA
 * lines, and the head's end; no Content-Length (RFC 9110 8.6). */
void client_write_empty(struct client *c, int status, const char *extra, size_t extra_len);
/* The 204 answering a CORS preflight, with its own CORS LINES (written by
 * cors.c) instead of those client_head_end adds to other answers. */
void client_write_preflight(struct client *c, const char *lines, size_t len);

#endif
