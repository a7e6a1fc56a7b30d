/*
 * worker: one event loop on one thread, owning its listeners, client
 * connections, upstream pools and rate limiter; nothing on the request path
 * is shared between workers. A conf generation (struct gen) pairs a conf
 * with this worker's pools for it, and lives until its last request ends,
 * so a reload never changes the rules under an in-flight request.
 */
#ifndef ENVELOPD_WORKER_H
#define ENVELOPD_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "conf.h"
#include "conn.h"
#include "metrics.h"

struct tls_set;
struct auth_keys;
struct auth;
struct router;

/* A conf shared by every worker; freed when the last generation lets go. */
struct confref {
    struct conf *conf;
    struct tls_set *tls;      /* the conf's TLS contexts */
    struct auth_keys *auth;   /* the conf's JWT keys and keys file */
    struct router *router;    /* the conf's route index, built with it */
    atomic_uint refs;
};

/* Takes CONF, TLS and AUTH (freed with the last reference) and builds the
 * route index; NULL: out of memory, and the caller still owns all three. */
struct confref *confref_new(struct conf *conf, struct tls_set *tls, struct auth_keys *auth);
void confref_get(struct confref *r);
void confref_put(struct confref *r);

struct gen {
    struct confref *cref;
    const struct conf *conf;
    struct upstream_set *ups;
    unsigned refs;          /* the worker's current pointer + each request */
};

struct client;
struct worker;

/*
 * What the worker's owner plugs in: the connection module (accept and drain
 * its connections) and the end of the loop. The worker calls these; it does
 * not include client.h, so the only include cycle left is client <-> proxy.
 */
struct worker_hooks {
    /* LISTEN: the [server] listen address it came in on (its flags). */
    void (*accept)(struct worker *w, const struct conf_addr *listen, evutil_socket_t fd,
                   const struct sockaddr *sa, int salen);
    void (*drain)(struct worker *w);   /* close the connections between requests */
    void (*reap)(struct worker *w);    /* free the clients closed this turn (W->dead) */
    void (*on_exit)(void *arg);        /* on the worker's thread, when its loop ends */
    void *exit_arg;
};

struct worker {
    unsigned id;
    struct worker_hooks hooks;
    struct event_base *base;
    pthread_t thread;
    struct gen *gen;
    struct limiter *limiter;
    struct auth *auth;           /* credential caches and lookups; uses the limiter's Redis */
    struct evconnlistener *listeners[CONF_MAX_LISTEN];
    /* What each listener was bound as (its flags): listen is restart-only,
     * so a reloaded conf's listen lines say nothing about these sockets. */
    struct conf_addr bound[CONF_MAX_LISTEN];
    size_t n_listeners;
    LIST_HEAD(, client) clients;
    LIST_HEAD(, client) dead;    /* closed this turn; freed when it ends (client_reap) */
    struct event *reap_ev;       /* activated by a close; runs client_reap */
    unsigned nclients;
    unsigned max_conns;      /* accepting pauses at this many clients (max_connections) */
    unsigned max_conns_auto; /* the default, sized from RLIMIT_NOFILE at start */
    bool accept_paused;      /* listeners disabled: at max_conns, or accept(2) failed */
    struct event *accept_retry;  /* after a failed accept: try again a little later */
    uint64_t accept_log_ms;  /* when the last accept_paused line was written */
    unsigned long accept_unlogged;  /* pauses since that line */
    unsigned inflight;       /* requests between head and response end */
    bool draining;
    int msg_fd[2];           /* main thread -> worker: struct worker_msg over a pipe */
    struct event *msg_ev;
    struct conn_flushq flushq;  /* connection writes and closes at the end of each turn */
    struct metrics metrics;  /* written by this worker only; read by the admin listener */
};

/* Take / drop a reference on the worker's current generation. */
struct gen *worker_gen_get(struct worker *w);
void worker_gen_put(struct gen *g);

/* A client connection closed: a draining worker may now be done, and a
 * worker that paused accepting may take connections again. */
void worker_client_closed(struct worker *w);

/* How long accepting stays paused after accept(2) failed (out of descriptors). */
#define WORKER_ACCEPT_RETRY_MS 100

/* Set up a worker on its own event base for CREF (listeners bound), with HOOKS
 * (copied). 0 or -1 + err. */
int worker_init(struct worker *w, unsigned id, const struct worker_hooks *hooks,
                struct confref *cref, char *err, size_t errlen) __attribute__((warn_unused_result));
int worker_start(struct worker *w) __attribute__((warn_unused_result));
/* Cross-thread requests, queued onto the worker's loop. */
int worker_post_conf(struct worker *w, struct confref *cref);
int worker_post_drain(struct worker *w);
int worker_post_stop(struct worker *w);
void worker_join(struct worker *w);
void worker_cleanup(struct worker *w);

#endif
