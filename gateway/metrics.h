/*
 * metrics: per-worker counters for the Prometheus endpoint. Each worker
 * writes only its own struct with relaxed atomics; the admin thread sums
 * them when scraped, so the request path never takes a lock.
 */
#ifndef ENVELOPD_METRICS_H
#define ENVELOPD_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>

#include "conf.h"

#define METRICS_BUCKETS 12
#define METRICS_ROUTES 1025   /* routes counted by name; the rest (and no route) share the last */

enum metrics_upstream_error {
    METRICS_UP_CONNECT,     /* refused or failed to connect */
    METRICS_UP_TIMEOUT,     /* connect or response timeout */
    METRICS_UP_RESET,       /* closed before or during the response */
    METRICS_UP_INVALID,     /* unparsable response */
    METRICS_UP_KINDS,
};

/* How an upstream attempt got its connection: new/(new+reused) is the churn
 * an operator tunes `keepalive` against. */
enum metrics_up_conn { METRICS_CONN_NEW, METRICS_CONN_REUSED, METRICS_CONN_KINDS };

/* TLS handshakes on the listeners: done (full or resumed, by version) and
 * failed, by a reason an operator can act on. */
enum metrics_tls {
    METRICS_TLS_FULL_12, METRICS_TLS_FULL_13, METRICS_TLS_RESUMED_12, METRICS_TLS_RESUMED_13,
    METRICS_TLS_OTHER,      /* done, with TLS 1.0 or 1.1 (only when configured) */
    METRICS_TLS_KINDS,
};
enum metrics_tls_fail {
    METRICS_TLSF_TIMEOUT,   /* handshake_timeout */
    METRICS_TLSF_PLAIN_HTTP,/* cleartext HTTP sent to the TLS port */
    METRICS_TLSF_VERSION,   /* no protocol version in common */
    METRICS_TLSF_CIPHER,    /* no cipher in common */
    METRICS_TLSF_ALPN,      /* offered only protocols not served (h2) */
    METRICS_TLSF_CLOSED,    /* the peer went away midway */
    METRICS_TLSF_OTHER,     /* garbage, bad records, anything else */
    METRICS_TLSF_KINDS,
};

/* Authentication decisions: auth.h's outcomes in their order, then the 429s of
 * per_ip_auth_failures. */
#define METRICS_AUTH_KINDS 10

enum metrics_rl { METRICS_RL_ALLOW, METRICS_RL_LIMITED, METRICS_RL_UNAVAILABLE, METRICS_RL_NONE,
                  METRICS_RL_KINDS };

/* Counts per bucket of a fixed bound list (the last bucket is +Inf), and the sum. */
struct metrics_hist {
    atomic_ullong bucket[METRICS_BUCKETS + 1];
    atomic_ullong sum_us;
};

struct metrics_route {
    atomic_bool used;
    char name[CONF_NAME_MAX];           /* written once, before used is set */
    atomic_ullong status[6];            /* by status / 100 */
    struct metrics_hist duration;
};

/* The worker's own lookup cache: a route name (its pointer, owned by a conf)
 * to its slot, so counting a request does not scan the slots. */
#define METRICS_SLOT_CACHE 4096   /* a power of two, above CONF_MAX_ROUTES */

struct metrics {
    struct metrics_route routes[METRICS_ROUTES];
    struct {
        const char *name;
        struct metrics_route *slot;
    } slot_cache[METRICS_SLOT_CACHE];
    atomic_ullong upstream_errors[METRICS_UP_KINDS];
    atomic_ullong upstream_conns[METRICS_CONN_KINDS];
    atomic_ullong ratelimit[METRICS_RL_KINDS];
    atomic_ullong auth[METRICS_AUTH_KINDS];
    atomic_ullong tls[METRICS_TLS_KINDS];
    atomic_ullong tls_failures[METRICS_TLSF_KINDS];
    struct metrics_hist ratelimit_wait;   /* waits for a verdict from Redis */
    atomic_ullong requests;
    atomic_uint inflight;
};

void metrics_request(struct metrics *m, const char *route, int status, double ms);
void metrics_upstream_error(struct metrics *m, enum metrics_upstream_error kind);
void metrics_upstream_conn(struct metrics *m, enum metrics_up_conn kind);
void metrics_ratelimit(struct metrics *m, enum metrics_rl kind);
/* KIND: an enum auth_outcome, or METRICS_AUTH_KINDS - 1 for a throttled IP. */
void metrics_auth(struct metrics *m, unsigned kind);
void metrics_tls(struct metrics *m, enum metrics_tls kind);
void metrics_tls_failure(struct metrics *m, enum metrics_tls_fail kind);
/* A request waited MS for its verdict from Redis (its reply or its timeout):
 * the part of the latency the shared limit costs, which operators size
 * Redis and `timeout` by. Verdicts the gateway decides alone are not waits. */
void metrics_ratelimit_wait(struct metrics *m, double ms);

/* Append the exposition text for N workers' metrics to OUT. redis: -1 off, 0 down, 1 up. */
int metrics_render(struct metrics *const *ms, size_t n, int redis, bool draining,
                   struct evbuffer *out);

#endif
