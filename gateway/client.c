/*
 * client: the life of one client connection, from accept to close. State
 * changes go through client_set_state() so every deadline is armed in one
 * place. A connection is freed only outside its own read processing
 * (close_pending), so no callback runs on freed memory.
 */
#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <stdint.h>
#include <sys/queue.h>

#include "accesslog.h"
#include "clock.h"
#include "conn.h"
#include "conn_tls.h"
#include "cors.h"
#include "headbuf.h"
#include "httphead.h"
#include "httpreq.h"
#include "log.h"
#include "policy.h"
#include "proxyproto.h"
#include "proxy.h"
#include "reqid.h"
#include "router.h"
#include "tls.h"
#include "worker.h"

enum client_state {
    CS_IDLE,     /* between requests */
    CS_HEAD,     /* reading a head; the head deadline runs */
    CS_BODY,     /* reading a body; the body deadline runs */
    CS_WAIT,     /* request read; the response is being produced */
    CS_CLOSING,  /* the last answer is flushing (send deadline); then close or linger */
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
    const struct conf_route *route_conf;  /* the route once known (its policy); NULL before */
    uint64_t client_timeout_ms; /* the route's body and send deadline; 0: not routed yet */
    char origin[CONF_ORIGIN_MAX]; /* the request's Origin as sent (cors.c validates it); "" none */
    size_t origin_len;
    bool preflight;             /* answered as a CORS preflight: its lines are its own */
    int status;
    int upstream_status;
    const char *upstream;       /* server address, owned by the conf */
    double upstream_ms;
    uint64_t bytes_in;
    uint64_t bytes_out;
    long rl_remaining;
    char subject[128];          /* the verified caller (auth.c), cut to fit; "" none */
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
    struct conn conn;           /* the socket, its buffers and events; closed in client_teardown */
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
    bool tls;                   /* came in on a TLS listener (and stayed TLS) */
    bool front_tls;             /* a PROXY v2 header says the client used TLS with the proxy */
    bool handshaking;           /* PROXY header and/or TLS handshake, under their deadline */
    struct pp_info *pp;         /* the PROXY header being read; NULL once applied */
    bool closed;                /* closed, or to be once client_process unwinds */
    bool torn_down;             /* on the worker's free list: memory only, until the turn ends */
};

#define LINGER_MS 2000
#define WRITE_LOW_WATER (32 * 1024)
/*
 * Answers queued for a client that does not read them: above this much, the
 * next pipelined request is not read or parsed until the output is back at
 * WRITE_LOW_WATER, and the send deadline (client_timeout) runs meanwhile.
 * Without it every pipelined head made one more queued answer, and a client
 * that sent heads without reading grew the process by about 60 MB a second.
 * The proxy holds a relayed body back on its own (CLIENT_OUT_HIGH in proxy.c);
 * this bounds the rest: gateway-made answers, envelopes, bodiless responses.
 */
#define OUTPUT_HIGH_WATER (64 * 1024)
/* Input held while a request is served: pipelined heads wait here. */
#define READ_HIGH_WATER (64 * 1024)

static void client_process(struct client *c);
static void client_teardown(struct client *c);

/* Ready for the next request: nothing of the last one kept. */
static void reqinfo_reset(struct reqinfo *ri)
{
    free(ri->path_heap);
    memset(ri, 0, sizeof *ri);
    ri->rl_remaining = -1;
    ri->upstream_ms = -1;
}

/* In-flight requests: the worker's own count, mirrored for the admin thread. */
static void inflight_add(struct worker *w, int d)
{
    w->inflight = (unsigned)((int)w->inflight + d);
    atomic_store_explicit(&w->metrics.inflight, w->inflight, memory_order_relaxed);
}

const char *client_http_date(void)
{
    static _Thread_local char buf[40];
    static _Thread_local time_t cached;
    time_t t = time(NULL);
    if (t != cached) {
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached = t;
    }
    return buf;
}

/* The request's deadline for its body and for a client slow to read its
 * answer: the route's client_timeout once routed. */
static uint64_t request_timeout(const struct client *c)
{
    return c->ri.client_timeout_ms ? c->ri.client_timeout_ms : c->w->gen->conf->client_timeout_ms;
}

static void arm_timer(struct client *c, uint64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    evtimer_add(c->timer, &tv);
}

/*
 * (Re)arm the deadline of the current state. A transition does it; so does
 * a held connection whose output drained (back to the keep-alive clock).
 * Kept apart from client_set_state so a re-arm never reads as a transition.
 */
static void client_arm(struct client *c)
{
    const struct conf *conf = c->w->gen->conf;
    switch (c->st) {
    case CS_IDLE:
        arm_timer(c, conf->keepalive_timeout_ms);
        break;
    case CS_HEAD:
    case CS_BODY:
        /* Whole-head and whole-body deadlines: trickling bytes do not extend them. */
        arm_timer(c, c->st == CS_BODY ? request_timeout(c) : conf->client_timeout_ms);
        break;
    case CS_WAIT:
    case CS_TUNNEL:  /* the tunnel's idle deadline is the proxy's */
        evtimer_del(c->timer);
        break;
    case CS_CLOSING:
        /* A stalled client must not keep the connection forever. */
        arm_timer(c, conf->client_timeout_ms);
        break;
    case CS_LINGER:
        arm_timer(c, LINGER_MS);
        break;
    }
}

static void client_set_state(struct client *c, enum client_state st)
{
    c->st = st;
    client_arm(c);
}

/*
 * Close: at once, or when client_process unwinds if it is running (it holds
 * pointers into the input). Either way the struct outlives the call: the
 * teardown puts it on the worker's free list, freed at the end of the loop
 * turn (client_reap), so whoever called into a path that closed C can still
 * read C->closed and stop, and nobody has to finish a close for a callee.
 */
static void client_close(struct client *c)
{
    if (c->closed)
        return;
    c->closed = true;
    if (!c->in_read)
        client_teardown(c);
}

static void client_teardown(struct client *c)
{
    struct worker *w = c->w;
    if (c->torn_down)
        return;
    c->closed = true;
    c->torn_down = true;
    if (c->px) {
        struct proxy *px = c->px;
        c->px = NULL;
        proxy_client_gone(px);
        /* A request cut short is still logged, as nginx's 499; a tunnel's
         * end is the client's to choose, and keeps its 101. */
        if (c->st != CS_TUNNEL) {
            c->ri.status = 499;
            c->ri.error_code = "CLIENT_CLOSED";
        }
        client_response_done(c);
    }
    if (c->gen) {
        worker_gen_put(c->gen);
        c->gen = NULL;
        inflight_add(w, -1);
    }
    if (c->timer)
        event_free(c->timer);
    free(c->pp);
    c->pp = NULL;
    conn_close(&c->conn);
    LIST_REMOVE(c, link);
    free(c->ri.path_heap);
    c->ri.path_heap = NULL;
    LIST_INSERT_HEAD(&w->dead, c, link);
    event_active(w->reap_ev, EV_TIMEOUT, 0);
    worker_client_closed(w);
}

void client_reap(struct worker *w)
{
    struct client *c;
    while ((c = LIST_FIRST(&w->dead)) != NULL) {
        LIST_REMOVE(c, link);
        free(c);
    }
}

struct evbuffer *client_output(struct client *c)
{
    return conn_output(&c->conn);
}

/* Reading on. A connection whose read event cannot be armed (out of
 * memory) is closed: false then, and C may be gone. */
static bool read_on(struct client *c)
{
    if (conn_read_enable(&c->conn) == 0)
        return true;
    client_close(c);
    return false;
}

void client_count_out(struct client *c, size_t n)
{
    c->ri.bytes_out += n;
}

void client_send_deadline(struct client *c, bool on)
{
    if (c->st != CS_WAIT)
        return;  /* still reading the request: the body deadline is running */
    if (on)
        arm_timer(c, request_timeout(c));
    else
        evtimer_del(c->timer);
}

void client_pause_read(struct client *c)
{
    conn_read_disable(&c->conn);
}

void client_resume_read(struct client *c)
{
    if ((c->st == CS_BODY || c->st == CS_HEAD || c->st == CS_IDLE || c->st == CS_LINGER ||
         (c->st == CS_TUNNEL && !c->eof)) &&
        !read_on(c))
        return;
    if (c->st == CS_BODY && !c->in_read)
        client_process(c);
}

static void write_access_line(struct client *c)
{
    struct access_entry e = {
        .request_id = c->ri.id,
        .client = c->ip,
        .method = c->ri.method[0] ? c->ri.method : "-",
        .path = !c->ri.path_len ? "-" : c->ri.path_heap ? c->ri.path_heap : c->ri.path_inline,
        .path_len = c->ri.path_len ? c->ri.path_len : 1,
        .route = c->ri.route,
        .status = c->ri.status,
        .upstream_status = c->ri.upstream_status,
        .upstream = c->ri.upstream,
        .duration_ms = (double)(clock_us() - c->ri.start_us) / 1000.0,
        .upstream_ms = c->ri.upstream_ms,
        .bytes_in = c->ri.bytes_in,
        .bytes_out = c->ri.bytes_out,
        .ratelimit_remaining = c->ri.rl_remaining,
        .error_code = c->ri.error_code,
        .subject = c->ri.subject[0] ? c->ri.subject : NULL,
        .tls = c->tls ? conn_tls_version(&c->conn) : NULL,
        .tls_resumed = c->tls && conn_tls_resumed(&c->conn),
    };
    accesslog_write(&e);
    if (c->ri.status != 101)  /* a tunnel was counted when it switched */
        metrics_request(&c->w->metrics, c->ri.route, c->ri.status, e.duration_ms);
}

static void start_linger(struct client *c)
{
    /* Half-close so the client sees our answer, then swallow what it still
     * sends for a moment: closing with unread input would reset the
     * connection and could destroy the answer in flight. */
    if (conn_shutdown(&c->conn) != 0) {
        client_close(c);  /* the peer is gone already: nothing to linger for */
        return;
    }
    client_set_state(c, CS_LINGER);
    if (!read_on(c))
        return;
    struct evbuffer *in = conn_input(&c->conn);
    evbuffer_drain(in, evbuffer_get_length(in));
}

static void closing_write_cb(struct conn *cn, void *arg)
{
    struct client *c = arg;
    if (evbuffer_get_length(conn_output(cn)) != 0)
        return;
    if (c->req_done && evbuffer_get_length(conn_input(cn)) == 0)
        client_close(c);
    else
        start_linger(c);
}

static void client_read_cb(struct conn *cn, void *arg);
static void client_write_cb(struct conn *cn, void *arg);
static void client_event_cb(struct conn *cn, short what, void *arg);

/* Send what is queued, then close (or linger if input is still arriving). */
static void flush_and_close(struct client *c)
{
    client_set_state(c, CS_CLOSING);
    c->out_held = false;
    conn_read_disable(&c->conn);
    conn_set_write_low(&c->conn, 0);
    conn_setcb(&c->conn, client_read_cb, closing_write_cb, client_event_cb, c);
    c->close_after = true;
    if (evbuffer_get_length(client_output(c)) == 0)
        closing_write_cb(&c->conn, c);
}

/* Half-closed and nothing complete left to answer: flush and close. While
 * the output holds the next requests back they are still to be answered. */
static void close_if_eof(struct client *c)
{
    if (c->eof && !c->in_read && !c->out_held && (c->st == CS_IDLE || c->st == CS_HEAD)) {
        struct evbuffer *in = conn_input(&c->conn);
        evbuffer_drain(in, evbuffer_get_length(in));
        c->req_done = true;
        flush_and_close(c);
    }
}

void client_response_done(struct client *c)
{
    c->px = NULL;
    if (c->ri.status)
        write_access_line(c);
    if (c->gen) {
        worker_gen_put(c->gen);
        c->gen = NULL;
        inflight_add(c->w, -1);
    }
    c->resp_started = false;
    if (c->closed)
        return;
    if (!c->req_done && c->body_active && !c->close_after && !c->w->draining) {
        /* Answered before its body was read (404, 405, 429...): read the body
         * away under the same deadline, like nginx, and keep the connection. */
        c->discarding = true;
        if (c->st != CS_BODY)
            client_set_state(c, CS_BODY);
        if (!read_on(c))
            return;
        if (!c->in_read && evbuffer_get_length(conn_input(&c->conn)) > 0)
            client_process(c);
        return;
    }
    c->body_active = false;
    if (c->close_after || !c->req_done || c->w->draining) {
        flush_and_close(c);
        return;
    }
    reqinfo_reset(&c->ri);
    client_set_state(c, CS_IDLE);
    if (!read_on(c))
        return;
    /* A pipelined request may already be waiting in the input buffer. */
    if (!c->in_read && evbuffer_get_length(conn_input(&c->conn)) > 0) {
        client_process(c);
        if (c->closed)
            return;
    }
    close_if_eof(c);
}

void client_tunnel_start(struct client *c)
{
    client_set_state(c, CS_TUNNEL);
    /* The request's duration in the metrics ends at the switch: a tunnel's
     * hours would otherwise swamp the latency histogram. */
    metrics_request(&c->w->metrics, c->ri.route, 101,
                    (double)(clock_us() - c->ri.start_us) / 1000.0);
    /* Reading on first: moving the input below may pause it again. Closing
     * here would free the exchange under the proxy's feet: a client whose
     * reading cannot be armed (out of memory) is taken as half-closed. */
    if (!c->eof && conn_read_enable(&c->conn) != 0) {
        log_error("gateway_error", "client %s: cannot read from it; tunnel half-closed", c->ip);
        c->eof = true;
    }
    struct evbuffer *in = conn_input(&c->conn);
    size_t n = evbuffer_get_length(in);
    if (n > 0) {
        /* Sent after the request head, before the 101: the new protocol's. */
        c->ri.bytes_in += n;
        (void)proxy_tunnel_input(c->px, in);
    }
    if (c->eof)
        proxy_tunnel_client_eof(c->px);  /* it half-closed while waiting for the 101 */
}

/* A response ended early: the proxy lets go, its access line is written. */
static void end_cut_response(struct client *c)
{
    c->px = NULL;
    if (c->ri.status)
        write_access_line(c);
    c->ri.status = 0;
}

void client_abort(struct client *c)
{
    end_cut_response(c);
    /* A reset, not a clean end: the client must not take a cut body as whole. */
    conn_reset_on_close(&c->conn);
    client_close(c);
}

void client_cut(struct client *c)
{
    end_cut_response(c);
    /* Every relayed byte still goes out (under the send deadline); the
     * framing already sent tells the client the body is short. */
    flush_and_close(c);
}

void client_tunnel_end(struct client *c, bool broken)
{
    if (broken) {
        client_abort(c);
        return;
    }
    /* The client may still be sending (a WebSocket close reply, a ping):
     * closing with its bytes unread would reset the connection and destroy
     * what is still queued for it. So linger after the flush, unless it
     * already sent its FIN. */
    c->req_done = c->eof;
    client_cut(c);
}

/* ---- the proxy's view of the connection -------------------------------- */

const char *client_id(const struct client *c)
{
    return c->ri.id;
}

const char *client_ip(const struct client *c)
{
    return c->ip;
}

bool client_tls(const struct client *c)
{
    return c->tls || c->front_tls;
}

const char *client_sni(const struct client *c)
{
    return c->tls ? conn_tls_servername(&c->conn) : NULL;
}

const struct sockaddr *client_peer(const struct client *c)
{
    return (const struct sockaddr *)&c->peer;
}

struct worker *client_worker(const struct client *c)
{
    return c->w;
}

struct gen *client_gen(const struct client *c)
{
    return c->gen;
}

unsigned client_minor(const struct client *c)
{
    return c->ri.minor;
}

struct proxy *client_exchange(const struct client *c)
{
    return c->px;
}

void client_set_exchange(struct client *c, struct proxy *px)
{
    c->px = px;
}

void client_note_route(struct client *c, const struct conf_route *route)
{
    c->ri.route = route->name;
    c->ri.route_conf = route;
}


void client_note_server(struct client *c, const char *addr)
{
    c->ri.upstream = addr;
}

void client_note_upstream(struct client *c, int status, double ms)
{
    if (status >= 0)
        c->ri.upstream_status = status;
    if (ms >= 0)
        c->ri.upstream_ms = ms;
}

void client_note_limit(struct client *c, long remaining)
{
    c->ri.rl_remaining = remaining;
}

void client_note_subject(struct client *c, const char *subject)
{
    size_t n = strnlen(subject, sizeof c->ri.subject - 1);
    memcpy(c->ri.subject, subject, n);
    c->ri.subject[n] = '\0';
}

/* ---- answers --------------------------------------------------------------- */

bool client_answer_closes(struct client *c, bool close, bool discard)
{
    /* An unread request body can be read away after an early answer (the
     * discarding state) only when no exchange is still taking it. */
    if (close || c->w->draining || (!c->req_done && !(discard && c->body_active)))
        c->close_after = true;
    return c->close_after;
}

/* Headers the browser must be allowed to read on a CORS response: the
 * correlation ID and the rate-limit state (429s included). */
static size_t cors_expose(const struct conf *conf, const char **names)
{
    names[0] = conf->corr_header;
    names[1] = "X-RateLimit-Limit";
    names[2] = "X-RateLimit-Remaining";
    names[3] = "X-RateLimit-Reset";
    names[4] = "Retry-After";
    return 5;
}

size_t client_head_end_cap(struct client *c)
{
    const struct conf *conf = c->gen ? c->gen->conf : c->w->gen->conf;
    struct policy pol;
    policy_for(conf, c->ri.route_conf, &pol);
    size_t cap = 64 + CONF_NAME_MAX + 8;  /* Connection, Vary */
    if (pol.cors) {
        const char *names[5];
        cap += cors_headers_cap(pol.cors, names, cors_expose(conf, names));
    }
    return cap;
}

void client_head_end(struct client *c, struct headbuf *h, bool upgrade)
{
    const struct conf *conf = c->gen ? c->gen->conf : c->w->gen->conf;
    struct policy pol;
    policy_for(conf, c->ri.route_conf, &pol);
    if (pol.cors && !c->ri.preflight) {
        /* Every answer to an allowed origin, errors and 429s too, or the
         * browser hides the body and the headers from the page. */
        const char *names[5];
        size_t n = cors_expose(conf, names);
        (void)cors_response_headers(pol.cors, c->ri.origin_len ? c->ri.origin : NULL,
                                    c->ri.origin_len, names, n, h);
    }
    const char *vary = c->ri.route_conf && c->gen ? router_vary(c->gen->cref->router,
                                                                c->ri.route_conf)
                                                  : NULL;
    if (vary) {
        HB_LIT(h, "Vary: ");
        hb_str(h, vary);
        HB_LIT(h, "\r\n");
    }
    if (upgrade)
        ;  /* after a 101 the connection is the tunnel's: no Connection of ours */
    else if (c->close_after)
        HB_LIT(h, "Connection: close\r\n");
    else if (c->ri.minor == 0)
        HB_LIT(h, "Connection: keep-alive\r\n");
    HB_LIT(h, "\r\n");
}

void client_response_started(struct client *c, int status)
{
    c->resp_started = true;
    c->ri.status = status;
}

void client_write_envelope(struct client *c, int status, const char *code, const char *extra,
                           size_t extra_len, const char *body, size_t blen)
{
    const struct conf *conf = c->gen ? c->gen->conf : c->w->gen->conf;
    struct policy pol;
    policy_for(conf, c->ri.route_conf, &pol);
    struct evbuffer *out = client_output(c);
    size_t before = evbuffer_get_length(out);
    struct headbuf h;
    if (headbuf_reserve(&h, out, 512 + extra_len + sizeof c->ri.id + client_head_end_cap(c)) == 0) {
        HB_LIT(&h, "HTTP/1.1 ");
        hb_u64(&h, (uint64_t)status);
        HB_LIT(&h, " ");
        hb_str(&h, envelope_reason(status));
        HB_LIT(&h, "\r\nDate: ");
        hb_str(&h, client_http_date());
        HB_LIT(&h, "\r\nContent-Type: ");
        hb_str(&h, envelope_content_type(pol.profile));
        HB_LIT(&h, "\r\nContent-Length: ");
        hb_u64(&h, blen);
        HB_LIT(&h, "\r\n");
        hb_field(&h, conf->corr_header, strlen(conf->corr_header), c->ri.id, strlen(c->ri.id));
        hb_add(&h, extra, extra_len);
        client_head_end(c, &h, false);
        if (headbuf_commit(&h) >= 0 && body && !c->ri.head_method)
            evbuffer_add(out, body, blen);
    }
    c->ri.bytes_out += evbuffer_get_length(out) - before;
    c->ri.status = status;
    if (code && code[0]) {
        snprintf(c->ri.error_code_buf, sizeof c->ri.error_code_buf, "%s", code);
        c->ri.error_code = c->ri.error_code_buf;
    }
}

void client_write_preflight(struct client *c, const char *lines, size_t len)
{
    c->ri.preflight = true;
    client_write_empty(c, 204, lines, len);
}

void client_write_empty(struct client *c, int status, const char *extra, size_t extra_len)
{
    const struct conf *conf = c->gen ? c->gen->conf : c->w->gen->conf;
    struct evbuffer *out = client_output(c);
    size_t before = evbuffer_get_length(out);
    struct headbuf h;
    if (headbuf_reserve(&h, out, 256 + extra_len + sizeof c->ri.id + client_head_end_cap(c)) == 0) {
        HB_LIT(&h, "HTTP/1.1 ");
        hb_u64(&h, (uint64_t)status);
        HB_LIT(&h, " ");
        hb_str(&h, envelope_reason(status));
        HB_LIT(&h, "\r\nDate: ");
        hb_str(&h, client_http_date());
        HB_LIT(&h, "\r\n");
        hb_field(&h, conf->corr_header, strlen(conf->corr_header), c->ri.id, strlen(c->ri.id));
        hb_add(&h, extra, extra_len);
        client_head_end(c, &h, false);
        if (headbuf_commit(&h) < 0)
            c->close_after = true;  /* nothing went out (out of memory): end here */
    }
    c->ri.bytes_out += evbuffer_get_length(out) - before;
    c->ri.status = status;
}

static void client_send_error_as(struct client *c, int status, const char *code,
                                 const char *message, const char *extra,
                                 const struct envelope_field *fields, size_t n_fields,
                                 const struct envelope_limit *limit, bool close);

void client_send_error(struct client *c, int status, const char *message, const char *extra,
                       const struct envelope_limit *limit, bool close)
{
    client_send_error_as(c, status, NULL, message, extra, NULL, 0, limit, close);
}

void client_send_error_coded(struct client *c, int status, const char *code, const char *message,
                             const char *extra, const struct envelope_field *fields, size_t n,
                             const struct envelope_limit *limit)
{
    client_send_error_as(c, status, code, message, extra, fields, n, limit, false);
}

static void client_send_error_as(struct client *c, int status, const char *code,
                                 const char *message, const char *extra,
                                 const struct envelope_field *fields, size_t n_fields,
                                 const struct envelope_limit *limit, bool close)
{
    const struct conf *conf = c->gen ? c->gen->conf : c->w->gen->conf;
    if (c->ri.id[0] == '\0' && !reqid_generate(c->ri.id))
        snprintf(c->ri.id, sizeof c->ri.id, "unavailable");
    struct policy pol;
    policy_for(conf, c->ri.route_conf, &pol);
    struct envelope e = {
        .status = status,
        .code = code ? code : policy_code(&pol, status),
        .message = message,
        .request_id = c->ri.id,
        .fields = fields,
        .n_fields = n_fields,
    };
    if (limit)
        e.limit = *limit;
    char *body = NULL;
    size_t blen = 0;
    if (envelope_render(&e, pol.profile, &body, &blen) != 0) {
        body = NULL;
        blen = 0;
    }
    (void)client_answer_closes(c, close, true);
    client_write_envelope(c, status, NULL, extra, extra ? strlen(extra) : 0, body, blen);
    free(body);
    c->ri.error_code = e.code;
    LOG_AT(CONF_LOG_DEBUG, "gateway_error", c->ri.id, NULL, "%d %s", status,
           message ? message : "");
    client_response_done(c);
}

static void copy_reqinfo(struct client *c, const struct httpreq *req, const struct conf *conf)
{
    if (req->url) {
        const char *m = http_method_str(req->method);
        snprintf(c->ri.method, sizeof c->ri.method, "%s", m);
    }
    const char *p = req->path ? req->path : req->url;
    size_t pl = req->path ? req->path_len : req->url_len;
    if (p) {
        if (pl > REQINFO_PATH_MAX)
            pl = REQINFO_PATH_MAX;
        char *dst = c->ri.path_inline;
        free(c->ri.path_heap);
        c->ri.path_heap = NULL;
        if (pl > sizeof c->ri.path_inline) {
            c->ri.path_heap = malloc(pl);
            if (c->ri.path_heap)
                dst = c->ri.path_heap;
            else
                pl = sizeof c->ri.path_inline;  /* out of memory: the line keeps a prefix */
        }
        memcpy(dst, p, pl);
        c->ri.path_len = pl;
    }
    c->ri.head_method = req->method == HTTP_HEAD;
    c->ri.minor = req->minor;
    /* The first acceptable incoming ID wins, in the order the conf lists them. */
    for (size_t i = 0; i < conf->n_accept && c->ri.id[0] == '\0'; i++) {
        size_t n = 0;
        const struct httphead_field *f = httphead_get(&req->head, conf->accept[i], &n);
        if (f && n == 1 && reqid_valid(f->value, f->value_len)) {
            memcpy(c->ri.id, f->value, f->value_len);
            c->ri.id[f->value_len] = '\0';
        }
    }
    if (c->ri.id[0] == '\0' && !reqid_generate(c->ri.id))
        snprintf(c->ri.id, sizeof c->ri.id, "unavailable");
}

static int body_data(void *arg, const char *at, size_t len)
{
    struct client *c = arg;
    if (!c->px)
        return 0;  /* the answer is already out; the rest is discarded */
    return proxy_body(c->px, at, len) == 0 ? 0 : 1;
}

static void handle_head(struct client *c, const char *data, size_t len)
{
    struct worker *w = c->w;
    c->gen = worker_gen_get(w);
    inflight_add(w, 1);
    const struct conf *conf = c->gen->conf;
    struct httpreq req;
    const char *why = NULL;
    int st = httpreq_parse(&req, data, len, &why);
    copy_reqinfo(c, &req, conf);
    c->req_done = st != 0 || !req.has_body;
    if (st) {
        /* After a malformed head the stream cannot be trusted: answer and close. */
        LOG_AT(CONF_LOG_INFO, "bad_request", c->ri.id, NULL, "%d from %s: %s", st, c->ip, why);
        client_send_error(c, st, why, NULL, NULL, true);
        return;
    }
    c->close_after = !req.keepalive || w->draining;
    size_t olen = 0;
    const char *origin = cors_request_origin(&req.head, &olen);
    if (origin && olen < sizeof c->ri.origin) {
        memcpy(c->ri.origin, origin, olen);
        c->ri.origin_len = olen;
    }
    /* Routed before the body: its limit and deadline are the route's. */
    const struct conf_route *route;
    if (!proxy_route(c, &req, &route)) {
        LOG_AT(CONF_LOG_INFO, "bad_request", c->ri.id, NULL, "400 from %s: invalid host", c->ip);
        client_send_error(c, 400, "The Host header is not a valid host", NULL, NULL, true);
        return;
    }
    if (route)
        client_note_route(c, route);
    struct policy pol;
    policy_for(conf, route, &pol);
    c->ri.client_timeout_ms = pol.client_timeout_ms;
    if (req.has_body && req.has_length && req.content_length > pol.max_body_size) {
        client_send_error(c, 413, "Request body is larger than the limit", NULL, NULL, true);
        return;
    }
    c->discarding = false;
    if (req.has_body) {
        /* Set up before proxy_start: an early answer discards the body through it. */
        httpbody_init(&c->body, req.chunked ? HTTPBODY_CHUNKED : HTTPBODY_LENGTH,
                      req.content_length, pol.max_body_size, body_data, c);
        c->body_active = true;
    }
    struct proxy *px = proxy_start(c, &req, route);
    if (!px)
        return;  /* answered already (and maybe discarding the body) */
    c->px = px;
    client_set_state(c, req.has_body ? CS_BODY : CS_WAIT);
}

static void body_failed(struct client *c)
{
    bool too_large = c->body.too_large;
    c->body_active = false;
    if (c->discarding) {
        /* Its answer is queued but maybe not yet written: send it, then close. */
        flush_and_close(c);
        return;
    }
    if (c->px) {
        struct proxy *px = c->px;
        c->px = NULL;
        proxy_client_gone(px);
    }
    if (c->resp_started) {
        client_abort(c);
        return;
    }
    if (too_large)
        client_send_error(c, 413, "Request body is larger than the limit", NULL, NULL, true);
    else
        client_send_error(c, 400, "Malformed request body", NULL, NULL, true);
}

/*
 * The client is not reading its answers: read and parse nothing more until
 * the output drains (client_write_cb), and give it client_timeout to make
 * room. Reading stops too, so a FIN it sent after its requests is seen only
 * once they are answered.
 */
static void hold_output(struct client *c)
{
    c->out_held = true;
    conn_read_disable(&c->conn);
    arm_timer(c, c->w->gen->conf->client_timeout_ms);
}

/* Called at WRITE_LOW_WATER: the held requests go on. */
static void release_output(struct client *c)
{
    if (evbuffer_get_length(client_output(c)) > WRITE_LOW_WATER)
        return;
    c->out_held = false;
    client_arm(c);  /* still CS_IDLE: back to the keep-alive deadline */
    if (!read_on(c))
        return;
    client_process(c);
    if (c->closed)
        return;
    close_if_eof(c);
}

static void client_process(struct client *c)
{
    if (c->closed)
        return;
    c->in_read = true;
    struct evbuffer *in = conn_input(&c->conn);
    while (!c->closed) {
        size_t avail = evbuffer_get_length(in);
        if (c->st == CS_LINGER) {
            evbuffer_drain(in, avail);
            break;
        }
        if (c->st == CS_TUNNEL) {
            if (c->px && avail) {
                c->ri.bytes_in += avail;
                if (proxy_tunnel_input(c->px, in) != 0)
                    client_close(c);  /* out of memory: the tunnel cannot go on */
            }
            break;
        }
        if (c->st == CS_WAIT || c->st == CS_CLOSING || avail == 0)
            break;
        if (c->st == CS_IDLE) {
            if (evbuffer_get_length(client_output(c)) > OUTPUT_HIGH_WATER) {
                hold_output(c);
                break;
            }
            reqinfo_reset(&c->ri);
            c->ri.start_us = clock_us();
            c->scan_pos = 0;
            c->scan_state = 0;
            client_set_state(c, CS_HEAD);
        }
        if (c->st == CS_HEAD) {
            const struct conf *conf = c->w->gen->conf;
            size_t want = avail < conf->max_header_size ? avail : conf->max_header_size;
            const char *data = (const char *)evbuffer_pullup(in, (ssize_t)want);
            if (!data)
                break;
            long end = httpreq_head_end(data, want, conf->max_header_size, &c->scan_pos,
                                        &c->scan_state);
            if (end == 0)
                break;
            if (end < 0) {
                c->gen = worker_gen_get(c->w);
                inflight_add(c->w, 1);
                c->req_done = true;
                if (!reqid_generate(c->ri.id))
                    snprintf(c->ri.id, sizeof c->ri.id, "unavailable");
                client_send_error(c, (int)-end,
                                  end == -414 ? "Request line is too long"
                                              : "Request headers are too large",
                                  NULL, NULL, true);
                break;
            }
            c->ri.bytes_in += (uint64_t)end;
            handle_head(c, data, (size_t)end);
            evbuffer_drain(in, (size_t)end);
            continue;
        }
        if (c->st == CS_BODY) {
            if (!conn_reading(&c->conn))
                break;  /* paused: the upstream is not taking more yet */
            struct evbuffer_iovec v;
            if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
                break;
            size_t n = httpbody_feed(&c->body, v.iov_base, v.iov_len);
            if (c->st != CS_BODY) {
                /* The answer went out while the body was arriving. */
                continue;
            }
            if (n == (size_t)-1) {
                body_failed(c);
                break;
            }
            evbuffer_drain(in, n);
            c->ri.bytes_in += n;
            if (c->body.done) {
                c->body_active = false;
                c->req_done = true;
                if (c->discarding) {
                    c->discarding = false;
                    if (c->w->draining) {
                        client_close(c);  /* drain began while the body was read away */
                        break;
                    }
                    client_set_state(c, CS_IDLE);  /* on to the next request */
                } else {
                    client_set_state(c, CS_WAIT);
                    if (c->px)
                        proxy_body_done(c->px);
                }
            }
        }
    }
    c->in_read = false;
    if (c->closed)
        client_teardown(c);  /* a close asked for while the input was in use */
}

static void client_read_cb(struct conn *cn, void *arg)
{
    struct client *c = arg;
    (void)cn;
    client_process(c);
}

static void client_write_cb(struct conn *cn, void *arg)
{
    struct client *c = arg;
    (void)cn;
    /* Never both: the output holds requests back only between responses. */
    if (c->px)
        proxy_client_drained(c->px);  /* may end the response, and free C */
    else if (c->out_held)
        release_output(c);
}

/* What a failed handshake's reason (OpenSSL's text) counts as. */
static enum metrics_tls_fail tls_failure_kind(const char *why)
{
    if (strstr(why, "application protocol"))
        return METRICS_TLSF_ALPN;
    if (strstr(why, "unsupported protocol") || strstr(why, "version too low") ||
        strstr(why, "version too high"))
        return METRICS_TLSF_VERSION;  /* not "wrong version number": that is garbage */
    if (strstr(why, "cipher"))
        return METRICS_TLSF_CIPHER;
    if (strstr(why, "closed") || strstr(why, "reset"))
        return METRICS_TLSF_CLOSED;
    return METRICS_TLSF_OTHER;
}

/*
 * The PROXY header was read: the client it names is the caller from now on
 * (per-IP limit, X-Forwarded-For, logs). LOCAL (a health check from the
 * proxy itself) and UNKNOWN keep the real peer.
 */
static void apply_proxy_header(struct client *c)
{
    const struct pp_info *pp = c->pp;
    if (pp->ssl)
        c->front_tls = true;
    if (pp->local || (pp->family != AF_INET && pp->family != AF_INET6)) {
        /* The balancer's address stays the caller's, but not its trust:
         * headers relayed with UNKNOWN (or sent on a LOCAL connection) are
         * not the balancer's own, so their X-Forwarded-* are not taken. */
        c->peer.ss_family = AF_UNSPEC;
        return;
    }
    memcpy(&c->peer, &pp->src, sizeof c->peer);
    if (pp->family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&pp->src)->sin_addr, c->ip, sizeof c->ip);
    else
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&pp->src)->sin6_addr, c->ip,
                  sizeof c->ip);
}

/* The PROXY header, the TLS handshake or both are over, one way or
 * another (WHAT: CONN_EV_*). */
static void handshake_ended(struct client *c, short what)
{
    struct worker *w = c->w;
    c->handshaking = false;
    if (c->pp) {
        bool header_failed = conn_awaits_proxy_header(&c->conn);
        if (!header_failed && (what & (CONN_EV_CONNECTED | CONN_EV_NOT_TLS)))
            apply_proxy_header(c);
        free(c->pp);
        c->pp = NULL;
        if (header_failed) {
            const char *why = conn_tls_error(&c->conn);
            const char *fields[] = {"reason", why, NULL};
            LOG_AT(CONF_LOG_INFO, "proxy_protocol_invalid", NULL, fields,
                   "client %s: bad PROXY header: %s; closed", c->ip, why);
            client_close(c);
            return;
        }
        if (!c->tls)  /* a plain listener: the head deadline, from accept, runs on */
            return;
    }
    if (what & CONN_EV_CONNECTED) {
        const char *v = conn_tls_version(&c->conn);
        bool resumed = conn_tls_resumed(&c->conn);
        bool v13 = v && strcmp(v, "TLSv1.3") == 0, v12 = v && strcmp(v, "TLSv1.2") == 0;
        metrics_tls(&w->metrics, v13 ? (resumed ? METRICS_TLS_RESUMED_13 : METRICS_TLS_FULL_13)
                                 : v12 ? (resumed ? METRICS_TLS_RESUMED_12 : METRICS_TLS_FULL_12)
                                       : METRICS_TLS_OTHER);
        if (c->st == CS_IDLE && !c->out_held)
            arm_timer(c, w->gen->conf->client_timeout_ms);  /* now the head deadline */
        return;
    }
    if (what & CONN_EV_NOT_TLS) {
        /* As nginx's 497: say so in cleartext, which is all this client reads. */
        c->tls = false;
        metrics_tls_failure(&w->metrics, METRICS_TLSF_PLAIN_HTTP);
        c->gen = worker_gen_get(w);
        inflight_add(w, 1);
        c->req_done = true;
        c->ri.start_us = clock_us();
        if (!reqid_generate(c->ri.id))
            snprintf(c->ri.id, sizeof c->ri.id, "unavailable");
        LOG_AT(CONF_LOG_INFO, "tls_handshake_failed", c->ri.id, NULL,
               "client %s sent plain HTTP to a TLS listener; answered 400", c->ip);
        client_send_error(c, 400, "The plain HTTP request was sent to an HTTPS port", NULL,
                          NULL, true);
        return;
    }
    const char *why = conn_tls_error(&c->conn);
    metrics_tls_failure(&w->metrics, tls_failure_kind(why));
    const char *fields[] = {"reason", why, NULL};
    LOG_AT(CONF_LOG_INFO, "tls_handshake_failed", NULL, fields,
           "client %s: TLS handshake failed: %s", c->ip, why);
    client_close(c);
}

static void client_event_cb(struct conn *cn, short what, void *arg)
{
    struct client *c = arg;
    (void)cn;
    if (c->handshaking) {
        handshake_ended(c, what);
        return;
    }
    if ((what & CONN_EV_EOF) && !(what & CONN_EV_ERROR) && c->st == CS_TUNNEL && c->px) {
        /* Half-closed: the upstream's side is shut in turn, and the tunnel
         * ends when the upstream closes (or goes idle). */
        c->eof = true;
        proxy_tunnel_client_eof(c->px);
        return;
    }
    if ((what & CONN_EV_EOF) && c->st == CS_WAIT && c->px) {
        /* A half-closed client still waits for its answers: this one and any
         * complete request it pipelined before closing; then close. */
        c->eof = true;
        return;
    }
    if ((what & CONN_EV_EOF) && !(what & CONN_EV_ERROR) && (c->st == CS_IDLE || c->st == CS_HEAD) &&
        evbuffer_get_length(client_output(c)) > 0) {
        /* Answers to its earlier requests are still queued: they go first. */
        c->eof = true;
        close_if_eof(c);
        return;
    }
    client_close(c);
}

static void client_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)fd;
    (void)what;
    if (c->handshaking) {
        const struct conf *conf = c->w->gen->conf;
        unsigned long long ms = c->tls ? conf->tls_handshake_timeout_ms : conf->client_timeout_ms;
        if (conn_awaits_proxy_header(&c->conn)) {
            LOG_AT(CONF_LOG_INFO, "proxy_protocol_invalid", NULL, NULL,
                   "client %s: no PROXY header within %llu ms; closed", c->ip, ms);
        } else {
            metrics_tls_failure(&c->w->metrics, METRICS_TLSF_TIMEOUT);
            LOG_AT(CONF_LOG_INFO, "tls_handshake_failed", NULL, NULL,
                   "client %s: TLS handshake not done within %llu ms; closed", c->ip, ms);
        }
        client_close(c);
        return;
    }
    if (c->out_held) {
        LOG_AT(CONF_LOG_INFO, "client_timeout", NULL, NULL,
               "client %s left %zu bytes of answers unread for %llu ms; closed", c->ip,
               evbuffer_get_length(client_output(c)),
               (unsigned long long)c->w->gen->conf->client_timeout_ms);
        client_close(c);
        return;
    }
    switch (c->st) {
    case CS_IDLE:
    case CS_LINGER:
        client_close(c);
        return;
    case CS_HEAD:
        c->gen = worker_gen_get(c->w);
        inflight_add(c->w, 1);
        c->req_done = true;
        if (c->ri.id[0] == '\0' && !reqid_generate(c->ri.id))
            snprintf(c->ri.id, sizeof c->ri.id, "unavailable");
        LOG_AT(CONF_LOG_INFO, "client_timeout", c->ri.id, NULL,
               "request head not received within %llu ms from %s",
               (unsigned long long)c->w->gen->conf->client_timeout_ms, c->ip);
        client_send_error(c, 408, "The request was not received in time", NULL, NULL, true);
        return;
    case CS_BODY:
        if (c->discarding) {
            flush_and_close(c);  /* an answer still queued to a slow reader goes first */
            return;
        }
        if (c->px) {
            struct proxy *px = c->px;
            c->px = NULL;
            proxy_client_gone(px);
        }
        c->body_active = false;
        if (c->resp_started) {
            client_abort(c);
            return;
        }
        LOG_AT(CONF_LOG_INFO, "client_timeout", c->ri.id, NULL,
               "request body not received within %llu ms from %s",
               (unsigned long long)c->w->gen->conf->client_timeout_ms, c->ip);
        client_send_error(c, 408, "The request body was not received in time", NULL, NULL,
                          true);
        return;
    case CS_CLOSING:
        client_close(c);  /* its last answer was not read in time */
        return;
    case CS_WAIT:
        /* Armed while a client that stopped reading holds up a response
         * (send deadline). */
        if (c->px) {
            struct proxy *px = c->px;
            c->px = NULL;
            proxy_client_gone(px);
            LOG_AT(CONF_LOG_INFO, "client_timeout", c->ri.id, NULL,
                   "client %s read nothing for %llu ms; response cut", c->ip,
                   (unsigned long long)c->w->gen->conf->client_timeout_ms);
            client_abort(c);
            return;
        }
        client_close(c);
        return;
    case CS_TUNNEL:
        client_close(c);  /* never armed: the proxy's timer bounds a tunnel */
        return;
    }
}

static void client_drain(struct client *c)
{
    if (c->st != CS_IDLE || c->in_read)
        return;
    if (evbuffer_get_length(client_output(c)) == 0) {
        client_close(c);
        return;
    }
    /* Answers still queued go out first; requests held behind them do not. */
    struct evbuffer *in = conn_input(&c->conn);
    evbuffer_drain(in, evbuffer_get_length(in));
    c->req_done = true;
    flush_and_close(c);
}

void client_drain_all(struct worker *w)
{
    struct client *c = LIST_FIRST(&w->clients), *next;
    for (; c; c = next) {
        next = LIST_NEXT(c, link);
        client_drain(c);
    }
}

void client_accept(struct worker *w, const struct conf_addr *listen, evutil_socket_t fd,
                   const struct sockaddr *sa, int salen)
{
    struct client *c = calloc(1, sizeof *c);
    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    c->w = w;
    if (salen > 0 && (size_t)salen <= sizeof c->peer)
        memcpy(&c->peer, sa, (size_t)salen);
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->ip, sizeof c->ip);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, c->ip, sizeof c->ip);
    else
        snprintf(c->ip, sizeof c->ip, "unix");
    if (sa->sa_family != AF_UNIX) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    /* From here the conn owns FD, closing it itself if it cannot start. */
    if (conn_init(&c->conn, &w->flushq, fd, &conn_plain) != 0) {
        free(c);
        return;
    }
    if (listen->proxy_protocol && sa->sa_family != AF_UNIX &&
        !conf_is_trusted_proxy(w->gen->conf, sa)) {
        /* Only a trusted proxy may say who the client is. */
        LOG_AT(CONF_LOG_WARN, "proxy_protocol_refused", NULL, NULL,
               "connection from %s to a proxy_protocol listener refused: not in "
               "[limits] trusted_proxies", c->ip);
        conn_reset_on_close(&c->conn);
        conn_close(&c->conn);
        free(c);
        return;
    }
    c->timer = evtimer_new(w->base, client_timer_cb, c);
    SSL_CTX *tls = listen->tls ? tls_server_ctx(w->gen->cref->tls) : NULL;
    if (listen->proxy_protocol)
        c->pp = calloc(1, sizeof *c->pp);
    if (!c->timer || (listen->tls && (!tls || conn_tls_accept(&c->conn, tls) != 0)) ||
        (listen->proxy_protocol && (!c->pp || conn_expect_proxy_header(&c->conn, c->pp) != 0))) {
        if (c->timer)
            event_free(c->timer);
        free(c->pp);
        conn_close(&c->conn);
        free(c);
        return;
    }
    c->tls = listen->tls;
    c->handshaking = listen->tls || listen->proxy_protocol;
    w->nclients++;
    LIST_INSERT_HEAD(&w->clients, c, link);
    reqinfo_reset(&c->ri);
    conn_setcb(&c->conn, client_read_cb, client_write_cb, client_event_cb, c);
    size_t high = w->gen->conf->max_header_size + 4096;
    conn_set_read_limit(&c->conn, high > READ_HIGH_WATER ? high : READ_HIGH_WATER);
    conn_set_write_low(&c->conn, WRITE_LOW_WATER);
    client_set_state(c, CS_IDLE);
    /* The first request's head deadline starts at accept (or once the TLS
     * handshake is done), not at its first byte. */
    arm_timer(c, c->tls ? w->gen->conf->tls_handshake_timeout_ms
                        : w->gen->conf->client_timeout_ms);
    (void)read_on(c);  /* closed if it fails: nothing else to do here */
}
