/*
 * upstream: one worker's keep-alive connection pools for one conf
 * generation. Round robin over a group's servers, skipping a server that
 * refused or timed out until its backoff passes (doubling, capped, reset on
 * success; a group's only server is never skipped for a slow answer, see
 * upstream_server_timed_out); idle connections watched so an upstream's close is noticed
 * before the connection is reused. A server keeps `keepalive` idle
 * connections until they have been unused for `keepalive_timeout` (nginx's
 * upstream keepalive_timeout: set below the upstream's own, it closes them
 * before the upstream does, never while a request is on its way); idle
 * connections beyond `keepalive` are kept too, and closed once unused for
 * UPSTREAM_SURPLUS_IDLE_MS, least recently used first (HAProxy's pool-purge
 * idea), so a burst that returns more connections than `keepalive` does not
 * force the next burst to open them again. A connection that has carried
 * `keepalive_requests` requests (when set) is closed instead of pooled.
 */
#ifndef ENVELOPD_UPSTREAM_H
#define ENVELOPD_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "conf.h"
#include "conn.h"

struct up_server;

/* How long an idle connection beyond `keepalive` may stay unused. */
#define UPSTREAM_SURPLUS_IDLE_MS 1000

struct upconn {
    struct conn conn;            /* its socket, buffers and events; closed with it */
    struct up_server *srv;
    TAILQ_ENTRY(upconn) link;    /* in the server's idle list while idle */
    uint64_t idle_since_ms;      /* when it last went idle (monotonic) */
    unsigned uses;               /* requests served; > 0 means reused */
    bool idle;
};

TAILQ_HEAD(upconn_list, upconn);

struct up_server {
    const struct conf_addr *addr;
    char host[256];              /* TLS: the name sent as SNI and verified */
    SSL_SESSION *tls_session;    /* TLS: the newest session, offered by the next connect */
    struct up_group *group;
    struct upconn_list idle;     /* most recently used first */
    unsigned n_idle;
    struct event *purge;         /* closes idle connections that are due */
    uint64_t purge_due_ms;       /* when it fires, while pending */
    bool down;
    uint64_t down_until_ms;
    uint64_t backoff_ms;
};

struct up_group {
    const struct conf_upstream *cu;
    SSL_CTX *tls;                /* NULL: plain */
    struct up_server *servers;
    size_t n;
    size_t rr;
};

struct upstream_set {
    struct event_base *base;
    struct up_group *groups;     /* parallel to conf->upstreams */
    size_t n;
};

struct tls_set;
/* TLS: the conf's contexts (tls.h), for upstreams with tls = yes; may be NULL. */
struct upstream_set *upstream_set_new(struct event_base *base, const struct conf *conf,
                                      const struct tls_set *tls);
/* Closes idle connections; connections in use must have been released first. */
void upstream_set_free(struct upstream_set *set);

/*
 * The next server by round robin that is not down and not in TRIED (bit i =
 * server i). NULL when none is left. A server whose backoff passed is tried
 * again (half-open).
 */
struct up_server *upstream_pick(struct up_group *g, uint64_t now_ms, uint64_t tried);
size_t upstream_server_index(const struct up_server *s);

/* An idle connection to S, or NULL. The caller sets the callbacks (reading
 * is still on: an idle connection watches for its server's close). */
struct upconn *upstream_take_idle(struct up_server *s);
/* Start a non-blocking connect to S, its output written by Q. NULL on
 * immediate failure (errno set); else the conn's event callback gets
 * CONN_EV_CONNECTED or CONN_EV_ERROR from the loop. */
struct upconn *upstream_connect(struct up_server *s, struct conn_flushq *q);
/* Done with C (the caller's pointer is dead after): back to the idle pool
 * if REUSABLE and keepalive > 0, else closed and freed. */
void upstream_release(struct upconn *c, bool reusable);

/* A connect refused, reset or timed out: skip S for a while (logs the transition). */
void upstream_server_failed(struct up_server *s, uint64_t now_ms, const char *why);
/*
 * S accepted the request but did not answer within the timeout. In a group
 * of two or more servers, S is skipped for a while as after a failed
 * connect, so the next requests go to the others. The only server of its
 * group is left up: marking it down would answer every request with 503
 * for the backoff because one endpoint was slow, where each request can
 * still be tried and time out (504) on its own. A refused or timed-out
 * connect still marks it down (upstream_server_failed). True when S was
 * marked down.
 */
bool upstream_server_timed_out(struct up_server *s, uint64_t now_ms);
/* S answered: clear its backoff (logs "upstream_up" if it was down). */
void upstream_server_ok(struct up_server *s);

#endif
