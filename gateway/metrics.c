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

static struct metrics_route *route_slot(struct metrics *m, const char *route)
{
    const char *name = route ? route : "";
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
    size_t b = 0;
    while (b < METRICS_BUCKETS && ms > bucket_ms[b])
        b++;
    atomic_fetch_add_explicit(&r->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->sum_us, (unsigned long long)(ms * 1000.0),
                              memory_order_relaxed);
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
            for (int b = 0; b <= METRICS_BUCKETS; b++)
                sums[k].bk[b] += ld(&r->bucket[b]);
            sums[k].sum_us += ld(&r->sum_us);
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
        const char *name = sums[k].name[0] ? sums[k].name : "none";
        unsigned long long cum = 0;
        for (int b = 0; b < METRICS_BUCKETS; b++) {
            cum += sums[k].bk[b];
            evbuffer_add_printf(out,
                                "envelopd_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                                name, bucket_ms[b] / 1000.0, cum);
        }
        cum += sums[k].bk[METRICS_BUCKETS];
        evbuffer_add_printf(out,
                            "envelopd_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                            "envelopd_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                            "envelopd_request_duration_seconds_count{route=\"%s\"} %llu\n",
                            name, cum, name, (double)sums[k].sum_us / 1e6, name, cum);
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
