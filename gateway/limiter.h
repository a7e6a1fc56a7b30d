/*
 * limiter: the rate-limit policy of one worker. Holds each request to every
 * limit that applies (per client IP always, IPv6 by network; per token too,
 * hashed with HMAC-SHA256, when one is sent; the route's rates, else the
 * defaults), asks Redis (one EVALSHA for all of them) or the local store,
 * reports the tightest limit, and applies on_error when Redis cannot answer
 * in time. Callbacks never outlive a cancelled query.
 */
#ifndef ENVELOPD_LIMITER_H
#define ENVELOPD_LIMITER_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "conf.h"
#include "ratelimit.h"

enum limiter_verdict {
    LIMITER_ALLOW,        /* serve; result.* (the tightest limit's) fill the headers */
    LIMITER_LIMITED,      /* 429 with result (the refusing limit's) */
    LIMITER_UNAVAILABLE,  /* Redis failed and on_error = deny: 503 */
    LIMITER_NONE,         /* no limit applies (rate unset, or allowed undecided): no headers */
};

struct limiter_query {
    const struct conf_route *route;   /* may be NULL (no route) */
    /* The caller: the Bearer token as sent (Bearer stripped), or on a route
     * with auth its verified identity (auth.h's limit id); NULL: anonymous. */
    const char *token;
    size_t token_len;
    const char *client_ip;            /* X-Forwarded-For already resolved */
    const struct conf_rate *token_rate; /* the caller's plan's per_token; NULL: the route's */
    const char *org;                  /* a verified organization; NULL: none */
    const struct conf_rate *org_rate; /* the plan's per_org; NULL: [limits] per_org */
};

typedef void (*limiter_cb)(enum limiter_verdict v, const struct rl_result *res, void *arg);

struct limiter;
struct limiter_pending;

/* One per worker, on its event base. conf must outlive the limiter or be replaced first. */
struct limiter *limiter_new(struct event_base *base, const struct conf *conf);
void limiter_free(struct limiter *l);
/* Swap in a reloaded conf (Redis reconnects if its address changed). */
void limiter_set_conf(struct limiter *l, const struct conf *conf);

/*
 * Decide for Q. Returns 1 when decided at once (*v and *res filled, cb never
 * called), 0 when pending: cb is called exactly once later unless
 * limiter_cancel(*pending) is called first.
 */
int limiter_check(struct limiter *l, const struct limiter_query *q,
                  enum limiter_verdict *v, struct rl_result *res,
                  limiter_cb cb, void *arg, struct limiter_pending **pending);
void limiter_cancel(struct limiter_pending *p);
/*
 * [limits] per_ip_auth_failures, in the process-wide store (not Redis: a
 * check before every credential must cost no round trip). Blocked: CLIENT_IP
 * has used up its failed authentications; *RES tells the 429 when to come
 * back. limiter_auth_failed spends one.
 */
bool limiter_auth_blocked(struct limiter *l, const char *client_ip, struct rl_result *res);
void limiter_auth_failed(struct limiter *l, const char *client_ip);
/* Undo one limiter_auth_failed: a lookup charged while pending (so that a
 * burst of lookups in flight cannot pass the brake) that did not fail. */
void limiter_auth_refund(struct limiter *l, const char *client_ip);

/* The worker's Redis connection (NULL without [redis]): API key lookups share it. */
struct redis *limiter_redis(struct limiter *l);


#endif
