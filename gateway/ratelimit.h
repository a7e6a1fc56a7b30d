/*
 * ratelimit: the arithmetic of a limit, with no I/O. GCRA over a cached
 * "now" (HAProxy's freq_ctr spirit): a limit of N per W lets N requests
 * through as a burst and then one every W/N, never 2N across a window edge.
 * Also an in-process store of GCRA states for the local mode and for
 * on_error = local, which holds a request to several limits at once. The
 * same arithmetic runs inside Redis as a Lua script.
 */
#ifndef ENVELOPD_RATELIMIT_H
#define ENVELOPD_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

/* What a limit decided, as the headers and the 429 envelope report it. */
struct rl_result {
    bool allowed;
    long limit;           /* X-RateLimit-Limit */
    long remaining;       /* X-RateLimit-Remaining */
    long reset_s;         /* X-RateLimit-Reset: seconds until fully refilled */
    long retry_after_s;   /* Retry-After when !allowed, >= 1 */
    long window_s;        /* the rate's window, for the envelope */
};

/*
 * One GCRA step. *tat is the stored theoretical arrival time in microseconds
 * (sub-ms precision for rates above 1000/s; 0 for a new caller); it is
 * updated only when the request is allowed.
 */
void rl_gcra(const struct conf_rate *rate, uint64_t now_ms, uint64_t *tat,
             struct rl_result *out);

/* The in-memory store: a bounded hash of key -> tat, expired lazily. */
struct rl_local;
struct rl_local *rl_local_new(size_t max_keys);
void rl_local_free(struct rl_local *l);
void rl_local_check(struct rl_local *l, const char *key, size_t keylen,
                    const struct conf_rate *rate, uint64_t now_ms, struct rl_result *out);

/* What rl_local_check would decide for KEY now, without spending anything:
 * OUT->allowed is false when the limit is used up. */
void rl_local_peek(struct rl_local *l, const char *key, size_t keylen,
                   const struct conf_rate *rate, uint64_t now_ms, struct rl_result *out);
/* Give back one request spent on KEY (never below an empty state): a
 * charge made before the outcome was known, which turned out not to count. */
void rl_local_refund(struct rl_local *l, const char *key, size_t keylen,
                     const struct conf_rate *rate, uint64_t now_ms);
/* One of the limits a request is held to. */
struct rl_limit {
    const char *key;
    size_t keylen;
    struct conf_rate rate;
};

#define RL_MAX_LIMITS 4

/*
 * Hold one request to N limits (1..RL_MAX_LIMITS, distinct keys) at once,
 * under the store's lock: every limit is checked first, and only when all of
 * them allow are their states advanced, so a denied request consumes nothing
 * from any of them. OUT[i] is limit i's own view (when it allows, as if the
 * request passed). Returns true when every limit allows. With N out of range
 * nothing is decided: false, every OUT[i] denied.
 */
bool rl_local_check_all(struct rl_local *l, const struct rl_limit *limits, size_t n,
                        uint64_t now_ms, struct rl_result *out);

/*
 * Which of N results (N >= 1) speaks for the request in its headers: when
 * any denies, the denying one with the longest Retry-After; when all allow,
 * the one with the fewest remaining. Ties go to the smaller limit, then to
 * the lower index.
 */
size_t rl_tightest(const struct rl_result *res, size_t n);

#endif
