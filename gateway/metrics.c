/*
 * metrics: counting and the Prometheus text exposition format (version
 * 0.0.4). Route slots are claimed by name on first use, so a reload that
 * adds routes keeps counting and old names keep their totals.
 */
#include "metrics.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double bucket_ms[METRICS_BUCKETS] = {1, 2.5, 5, 10, 25, 50, 100, 250, 500,
                                                  1000, 2500, 5000};
/* A Redis round trip on one host is tens to hundreds of microseconds; the
 * top bounds catch a stalled Redis up to the default 1 s timeout. */
static const double wait_ms[METRICS_BUCKETS] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100,
                                                250, 1000};

static void hist_add(struct metrics_hist *h, const double *bounds, double ms)
{
    /* A clock step can make a duration negative: count it as 0, never
     * convert a negative double to unsigned. */
    if (ms < 0)
        ms = 0;
    size_t b = 0;
    while (b < METRICS_BUCKETS && ms > bounds[b])
        b++;
    atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
    /* Rounded: 1.001 ms is 1000.9999... µs in binary. */
    atomic_fetch_add_explicit(&h->sum_us, (unsigned long long)(ms * 1000.0 + 0.5),
                              memory_order_relaxed);
}

static struct metrics_route *route_slot_scan(struct metrics *m, const char *name);

/* A hit is the right slot: its name (a later conf may reuse the address
 * for another route), or the shared last slot a route beyond the first
 * METRICS_ROUTES - 1 names folds into. */
static bool slot_hit(const struct metrics *m, const struct metrics_route *s, const char *name)
{
    return s && (s == &m->routes[METRICS_ROUTES - 1] || strcmp(s->name, name) == 0);
}

/*
 * A request's slot in O(1): a cache keyed by the name's pointer (a route's
 * name lives in its conf; routes are about 11 KB apart, so the pointer is
 * hashed, not masked), probed over 8 entries. A miss scans the slots once.
 * Measured by scripts/bench --routes-only: with the earlier direct-mapped
 * 512 entries, 1,000 routes hit in turn mostly missed (17,346 instructions
 * a request in metrics, against 100).
 */
static struct metrics_route *route_slot(struct metrics *m, const char *route)
{
    const char *name = route ? route : "";
    size_t k0 = (size_t)(((uint64_t)(uintptr_t)name * 0x9e3779b97f4a7c15ULL) >> 52) &
                (METRICS_SLOT_CACHE - 1);
    size_t k = k0;
    for (size_t d = 0; d < 8; d++) {
        k = (k0 + d) & (METRICS_SLOT_CACHE - 1);
        if (m->slot_cache[k].name == name && slot_hit(m, m->slot_cache[k].slot, name))
            return m->slot_cache[k].slot;
        if (!m->slot_cache[k].name)
            break;  /* free: fill it */
    }
    struct metrics_route *s = route_slot_scan(m, name);
    m->slot_cache[k].name = name;
    m->slot_cache[k].slot = s;
    return s;
}

static struct metrics_route *route_slot_scan(struct metrics *m, const char *name)
{
    /* Only this worker's thread claims slots; readers check used first. */
    for (size_t i = 0; i < METRICS_ROUTES; i++) {
        struct metrics_route *r = &m->routes[i];
        if (!atomic_load_explicit(&r->used, memory_order_acquire)) {
            snprintf(r->name, sizeof r->name, "%s", name);
            atomic_store_explicit(&r->used, true, memory_order_release);
            return r;
        }
        if (strcmp(r->name, name) == 0)
            return r;
    }
    return &m->routes[METRICS_ROUTES - 1];  /* full: fold into the last slot */
}

void metrics_request(struct metrics *m, const char *route, int status, double ms)
{
    struct metrics_route *r = route_slot(m, route);
    int cls = status / 100;
    if (cls < 0 || cls > 5)
        cls = 0;
    atomic_fetch_add_explicit(&r->status[cls], 1, memory_order_relaxed);
    hist_add(&r->duration, bucket_ms, ms);
    atomic_fetch_add_explicit(&m->requests, 1, memory_order_relaxed);
}

void metrics_upstream_error(struct metrics *m, enum metrics_upstream_error kind)
{
    atomic_fetch_add_explicit(&m->upstream_errors[kind], 1, memory_order_relaxed);
}

void metrics_upstream_conn(struct metrics *m, enum metrics_up_conn kind)
{
    atomic_fetch_add_explicit(&m->upstream_conns[kind], 1, memory_order_relaxed);
}

void metrics_ratelimit(struct metrics *m, enum metrics_rl kind)
{
    atomic_fetch_add_explicit(&m->ratelimit[kind], 1, memory_order_relaxed);
}

void metrics_auth(struct metrics *m, unsigned kind)
{
    if (kind < METRICS_AUTH_KINDS)
        atomic_fetch_add_explicit(&m->auth[kind], 1, memory_order_relaxed);
}

void metrics_tls(struct metrics *m, enum metrics_tls kind)
{
    atomic_fetch_add_explicit(&m->tls[kind], 1, memory_order_relaxed);
}

void metrics_tls_failure(struct metrics *m, enum metrics_tls_fail kind)
{
    atomic_fetch_add_explicit(&m->tls_failures[kind], 1, memory_order_relaxed);
}

void metrics_ratelimit_wait(struct metrics *m, double ms)
{
    hist_add(&m->ratelimit_wait, wait_ms, ms);
}

/* Route names are [A-Za-z0-9_.-]: nothing to escape in a label value. */
static unsigned long long ld(const atomic_ullong *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

/* One labelled counter family: KINDS[k] summed over workers from the array at FIELD. */
static void counter_family(struct evbuffer *out, struct metrics *const *ms, size_t n,
                           const char *name, const char *help, const char *label,
                           const char *const *kinds, int nkinds, size_t field)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (int k = 0; k < nkinds; k++) {
        unsigned long long v = 0;
        for (size_t w = 0; w < n; w++)
            v += ld((const atomic_ullong *)((const char *)ms[w] + field) + k);
        evbuffer_add_printf(out, "%s{%s=\"%s\"} %llu\n", name, label, kinds[k], v);
    }
}

static void hist_sum(const struct metrics_hist *h, unsigned long long *bk,
                     unsigned long long *sum_us)
{
    for (int b = 0; b <= METRICS_BUCKETS; b++)
        bk[b] += ld(&h->bucket[b]);
    *sum_us += ld(&h->sum_us);
}

/* The _bucket, _sum and _count lines of one histogram series; LABEL is
 * `key="value"` or empty. */
static void hist_lines(struct evbuffer *out, const char *name, const char *label,
                       const double *bounds, const unsigned long long *bk,
                       unsigned long long sum_us)
{
    const char *sep = label[0] ? "," : "";
    unsigned long long cum = 0;
    for (int b = 0; b < METRICS_BUCKETS; b++) {
        cum += bk[b];
        evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, label, sep,
                            bounds[b] / 1000.0, cum);
    }
    cum += bk[METRICS_BUCKETS];
    evbuffer_add_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, label, sep, cum);
    const char *open = label[0] ? "{" : "", *close = label[0] ? "}" : "";
    evbuffer_add_printf(out, "%s_sum%s%s%s %.6f\n%s_count%s%s%s %llu\n", name, open, label, close,
                        (double)sum_us / 1e6, name, open, label, close, cum);
}

struct route_sum {
    const char *name;
    unsigned long long st[6], bk[METRICS_BUCKETS + 1], sum_us;
};

int metrics_render(struct metrics *const *ms, size_t n, int redis, bool draining,
                   struct evbuffer *out)
{
    static const char *const up_kind[METRICS_UP_KINDS] = {"connect", "timeout", "reset",
                                                          "invalid"};
    static const char *const conn_kind[METRICS_CONN_KINDS] = {"new", "reused"};
    static const char *const rl_kind[METRICS_RL_KINDS] = {"allowed", "limited", "unavailable",
                                                          "unlimited"};
    /* auth.h's enum auth_outcome, in order, then throttled */
    static const char *const auth_kind[METRICS_AUTH_KINDS] = {
        "pass", "missing", "token_invalid", "token_expired", "key_invalid", "org_mismatch",
        "keys_forbidden", "scope_missing", "unavailable", "throttled"};
    static const char *const tls_kind[METRICS_TLS_KINDS] = {
        "TLSv1.2\",resumed=\"no", "TLSv1.3\",resumed=\"no", "TLSv1.2\",resumed=\"yes",
        "TLSv1.3\",resumed=\"yes", "other\",resumed=\"no"};
    static const char *const tlsf_kind[METRICS_TLSF_KINDS] = {
        "timeout", "plain_http", "protocol_version", "no_shared_cipher", "alpn", "closed", "other"};
    /* One sum per route name across workers (a name may sit in different slots). */
    struct route_sum *sums = calloc(METRICS_ROUTES, sizeof *sums);
    if (!sums)
        return -1;
    size_t ns = 0;
    for (size_t w = 0; w < n; w++) {
        for (size_t i = 0; i < METRICS_ROUTES; i++) {
            const struct metrics_route *r = &ms[w]->routes[i];
            if (!atomic_load_explicit(&r->used, memory_order_acquire))
                break;
            size_t k = 0;
            while (k < ns && strcmp(sums[k].name, r->name) != 0)
                k++;
            if (k == ns) {
                if (ns == METRICS_ROUTES)
                    continue;
                sums[ns++].name = r->name;
            }
            for (int c = 0; c < 6; c++)
                sums[k].st[c] += ld(&r->status[c]);
            hist_sum(&r->duration, sums[k].bk, &sums[k].sum_us);
        }
    }
    evbuffer_add_printf(out, "# HELP envelopd_requests_total Requests answered, by route and "
                             "status class.\n# TYPE envelopd_requests_total counter\n");
    for (size_t k = 0; k < ns; k++)
        for (int c = 1; c < 6; c++)
            evbuffer_add_printf(out, "envelopd_requests_total{route=\"%s\",code=\"%dxx\"} %llu\n",
                                sums[k].name[0] ? sums[k].name : "none", c, sums[k].st[c]);
    evbuffer_add_printf(out, "# HELP envelopd_request_duration_seconds Time from the first "
                             "byte of a request to the end of its answer.\n"
                             "# TYPE envelopd_request_duration_seconds histogram\n");
    for (size_t k = 0; k < ns; k++) {
        char label[CONF_NAME_MAX + 16];
        snprintf(label, sizeof label, "route=\"%s\"", sums[k].name[0] ? sums[k].name : "none");
        hist_lines(out, "envelopd_request_duration_seconds", label, bucket_ms, sums[k].bk,
                   sums[k].sum_us);
    }
    free(sums);
    counter_family(out, ms, n, "envelopd_upstream_errors_total", "Failed upstream attempts, by kind.",
                   "kind", up_kind, METRICS_UP_KINDS, offsetof(struct metrics, upstream_errors));
    counter_family(out, ms, n, "envelopd_upstream_attempts_total",
                   "Upstream attempts, by whether they opened a new connection or reused a "
                   "pooled one.",
                   "connection", conn_kind, METRICS_CONN_KINDS,
                   offsetof(struct metrics, upstream_conns));
    counter_family(out, ms, n, "envelopd_ratelimit_decisions_total", "Rate-limit decisions.",
                   "decision", rl_kind, METRICS_RL_KINDS, offsetof(struct metrics, ratelimit));
    counter_family(out, ms, n, "envelopd_auth_decisions_total",
                   "Credentials checked on routes with auth, by outcome.", "outcome", auth_kind,
                   METRICS_AUTH_KINDS, offsetof(struct metrics, auth));
    counter_family(out, ms, n, "envelopd_tls_handshakes_total",
                   "TLS handshakes completed on the listeners, by version and resumption.",
                   "version", tls_kind, METRICS_TLS_KINDS, offsetof(struct metrics, tls));
    counter_family(out, ms, n, "envelopd_tls_handshake_failures_total",
                   "TLS handshakes on the listeners that failed, by reason.", "reason",
                   tlsf_kind, METRICS_TLSF_KINDS, offsetof(struct metrics, tls_failures));
    unsigned long long wbk[METRICS_BUCKETS + 1] = {0}, wsum = 0;
    for (size_t w = 0; w < n; w++)
        hist_sum(&ms[w]->ratelimit_wait, wbk, &wsum);
    evbuffer_add_printf(out, "# HELP envelopd_ratelimit_wait_seconds Time requests waited for "
                             "their rate-limit verdict from Redis (reply or timeout).\n"
                             "# TYPE envelopd_ratelimit_wait_seconds histogram\n");
    hist_lines(out, "envelopd_ratelimit_wait_seconds", "", wait_ms, wbk, wsum);
    evbuffer_add_printf(out, "# HELP envelopd_worker_requests_total Requests answered by each "
                             "worker.\n# TYPE envelopd_worker_requests_total counter\n");
    unsigned inflight = 0;
    for (size_t w = 0; w < n; w++) {
        evbuffer_add_printf(out, "envelopd_worker_requests_total{worker=\"%zu\"} %llu\n", w,
                            ld(&ms[w]->requests));
        inflight += atomic_load_explicit(&ms[w]->inflight, memory_order_relaxed);
    }
    evbuffer_add_printf(out, "# HELP envelopd_inflight_requests Requests being served.\n"
                             "# TYPE envelopd_inflight_requests gauge\n"
                             "envelopd_inflight_requests %u\n", inflight);
    if (redis >= 0)
        evbuffer_add_printf(out, "# HELP envelopd_redis_connected 1 when every worker's Redis "
                                 "connection is up.\n# TYPE envelopd_redis_connected gauge\n"
                                 "envelopd_redis_connected %d\n", redis);
    return evbuffer_add_printf(out, "# HELP envelopd_draining 1 while stopping.\n"
                                    "# TYPE envelopd_draining gauge\nenvelopd_draining %d\n",
                               draining ? 1 : 0) < 0 ? -1 : 0;
}
