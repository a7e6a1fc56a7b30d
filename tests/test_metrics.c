/*
 * test_metrics: what a Prometheus scraper reads must add up. A request lands
 * in the bucket whose bound it does not exceed (bounds are inclusive, as
 * `le` says), buckets are cumulative, _count equals the +Inf bucket and
 * _sum is in seconds; several workers' counts are summed per route name
 * even when the name sits in different slots; the rate-limit wait histogram
 * has its own sub-millisecond bounds and no labels; a full route table
 * folds new names into the last slot instead of writing past it; odd input
 * (negative durations, status codes outside 1xx-5xx) neither crashes nor
 * corrupts a count; and every line of the exposition is a comment or a
 * sample whose family was announced by HELP and TYPE before it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <event2/buffer.h>

#include "metrics.h"

void test_register(void);

/* The exposition of N workers' metrics, NUL-terminated; the caller frees. */
static char *render(struct metrics *const *ms, size_t n, int redis, bool draining)
{
    struct evbuffer *out = evbuffer_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_EQUAL(metrics_render(ms, n, redis, draining, out), 0);
    size_t len = evbuffer_get_length(out);
    char *s = malloc(len + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(evbuffer_remove(out, s, len), (int)len);
    s[len] = '\0';
    evbuffer_free(out);
    return s;
}

/* The value of the sample whose name and labels are exactly SERIES; NAN if absent. */
static double value(const char *text, const char *series)
{
    size_t sl = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, series, sl) == 0 && p[sl] == ' ')
            return strtod(p + sl + 1, NULL);
    }
    return NAN;
}

static struct metrics *fresh(void)
{
    struct metrics *m = calloc(1, sizeof *m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    return m;
}

static void test_bucket_bounds_inclusive(void)
{
    struct metrics *m = fresh();
    metrics_request(m, "api", 200, 1.0);     /* exactly le=0.001 */
    metrics_request(m, "api", 200, 1.001);   /* just above: le=0.0025 */
    metrics_request(m, "api", 200, 5000.0);  /* the top bound */
    metrics_request(m, "api", 200, 5000.5);  /* only +Inf */
    char *t = render(&m, 1, -1, false);
#define B(le) value(t, "envelopd_request_duration_seconds_bucket{route=\"api\",le=\"" le "\"}")
    CU_ASSERT_EQUAL(B("0.001"), 1);
    CU_ASSERT_EQUAL(B("0.0025"), 2);
    CU_ASSERT_EQUAL(B("2.5"), 2);
    CU_ASSERT_EQUAL(B("5"), 3);
    CU_ASSERT_EQUAL(B("+Inf"), 4);
#undef B
    CU_ASSERT_EQUAL(value(t, "envelopd_request_duration_seconds_count{route=\"api\"}"), 4);
    CU_ASSERT_DOUBLE_EQUAL(value(t, "envelopd_request_duration_seconds_sum{route=\"api\"}"),
                           (1.0 + 1.001 + 5000.0 + 5000.5) / 1000.0, 1e-6);
    free(t);
    free(m);
}

static void test_buckets_cumulative_and_monotonic(void)
{
    struct metrics *m = fresh();
    static const double ms[] = {0.2, 3, 3, 7, 40, 90, 300, 700, 1200, 3000, 4000, 9000};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        metrics_request(m, "r", 200, ms[i]);
    char *t = render(&m, 1, -1, false);
    /* Read the series in order: each bucket at least the one before. */
    double prev = -1;
    int seen = 0;
    const char *key = "envelopd_request_duration_seconds_bucket{route=\"r\",";
    for (const char *p = strstr(t, key); p; p = strstr(p + 1, key)) {
        const char *sp = strchr(p, ' ');
        CU_ASSERT_PTR_NOT_NULL_FATAL(sp);
        double v = strtod(sp + 1, NULL);
        CU_ASSERT(v >= prev);
        prev = v;
        seen++;
    }
    CU_ASSERT_EQUAL(seen, METRICS_BUCKETS + 1);
    CU_ASSERT_EQUAL(prev, 12);
    CU_ASSERT_EQUAL(value(t, "envelopd_request_duration_seconds_bucket{route=\"r\",le=\"0.005\"}"), 3);
    CU_ASSERT_EQUAL(value(t, "envelopd_request_duration_seconds_bucket{route=\"r\",le=\"0.1\"}"), 6);
    free(t);
    free(m);
}

static void test_status_classes(void)
{
    struct metrics *m = fresh();
    metrics_request(m, "a", 200, 1);
    metrics_request(m, "a", 204, 1);
    metrics_request(m, "a", 404, 1);
    metrics_request(m, "a", 503, 1);
    metrics_request(m, "a", 101, 1);
    metrics_request(m, "a", 0, 1);      /* no status: counted as a request only */
    metrics_request(m, "a", 999, 1);
    metrics_request(m, "a", -5, 1);
    char *t = render(&m, 1, -1, false);
    CU_ASSERT_EQUAL(value(t, "envelopd_requests_total{route=\"a\",code=\"1xx\"}"), 1);
    CU_ASSERT_EQUAL(value(t, "envelopd_requests_total{route=\"a\",code=\"2xx\"}"), 2);
    CU_ASSERT_EQUAL(value(t, "envelopd_requests_total{route=\"a\",code=\"3xx\"}"), 0);
    CU_ASSERT_EQUAL(value(t, "envelopd_requests_total{route=\"a\",code=\"4xx\"}"), 1);
    CU_ASSERT_EQUAL(value(t, "envelopd_requests_total{route=\"a\",code=\"5xx\"}"), 1);
    CU_ASSERT(isnan(value(t, "envelopd_requests_total{route=\"a\",code=\"0xx\"}")));
    CU_ASSERT_EQUAL(value(t, "envelopd_request_duration_seconds_count{route=\"a\"}"), 8);
    CU_ASSERT_EQUAL(value(t, "envelopd_worker_requests_total{worker=\"0\"}"), 8);
    free(t);
    free(m);
}

static void test_negative_duration_counts_as_zero(void)
{
    struct metrics *m = fresh();
    metrics_request(m, "a", 200, -3.0);   /* a clock step: never a huge unsigned sum */
    metrics_ratelimit_wait(m, -1.0);
    char *t = render(&m, 1, -1, false);
    CU_ASSERT_EQUAL(value(t, "envelopd_request_duration_seconds_bucket{route=\"a\",le=\"0.001\"}"), 1);
    CU_ASSERT_EQUAL(value(t, "envelopd_request_duration_seconds_sum{route=\"a\"}"), 0);
    CU_ASSERT_EQUAL(value(t, "envelopd_ratelimit_wait_seconds_bucket{le=\"0.0001\"}"), 1);
    CU_ASSERT_EQUAL(value(t, "envelopd_ratelimit_wait_seconds_sum"), 0);
    free(t);
    free(m);
}

static void test_workers_summed_by_route_name(void)
{
    struct metrics *a = fresh(), *b = fresh();
    /* Worker b met the routes in the other order: "x" is in a different slot. */
    metrics_request(a, "x", 200, 2);
    metrics_request(a, "y", 500, 2);
    metrics_request(b, "y", 200, 2);
    metrics_request(b, "x", 200, 30);
    metrics_request(b, NULL, 404, 1);
    struct metrics *ms[2] = {a, b};
    char *t = render(ms, 2, -1, false);
    CU_ASSERT_EQUAL(value(t, "envelopd_requests_total{route=\"x\",code=\"2xx\"}"), 2);
    CU_ASSERT_EQUAL(value(t, "envelopd_requests_total{route=\"y\",code=\"2xx\"}"), 1);
    CU_ASSERT_EQUAL(value(t, "envelopd_requests_total{route=\"y\",code=\"5xx\"}"), 1);
    CU_ASSERT_EQUAL(value(t, "envelopd_requests_total{route=\"none\",code=\"4xx\"}"), 1);
    CU_ASSERT_EQUAL(value(t, "envelopd_request_duration_seconds_bucket{route=\"x\",le=\"0.0025\"}"), 1);
    CU_ASSERT_EQUAL(value(t, "envelopd_request_duration_seconds_count{route=\"x\"}"), 2);
    CU_ASSERT_DOUBLE_EQUAL(value(t, "envelopd_request_duration_seconds_sum{route=\"x\"}"), 0.032,
                           1e-9);
    CU_ASSERT_EQUAL(value(t, "envelopd_worker_requests_total{worker=\"0\"}"), 2);
    CU_ASSERT_EQUAL(value(t, "envelopd_worker_requests_total{worker=\"1\"}"), 3);
    /* One series per route name, not one per worker slot. */
    const char *k = "envelopd_request_duration_seconds_count{route=\"x\"}";
    const char *first = strstr(t, k);
    CU_ASSERT_PTR_NOT_NULL(first);
    CU_ASSERT_PTR_NULL(first ? strstr(first + 1, k) : NULL);
    free(t);
    free(a);
    free(b);
}

static void test_full_route_table_folds(void)
{
    struct metrics *m = fresh();
    char name[32];
    for (int i = 0; i < METRICS_ROUTES + 5; i++) {
        snprintf(name, sizeof name, "r%d", i);
        metrics_request(m, name, 200, 1);
    }
    char *t = render(&m, 1, -1, false);
    /* The last slot holds its own name and every name after it. */
    snprintf(name, sizeof name, "r%d", METRICS_ROUTES - 1);
    char series[96];
    snprintf(series, sizeof series, "envelopd_requests_total{route=\"%s\",code=\"2xx\"}", name);
    CU_ASSERT_EQUAL(value(t, series), 6);
    snprintf(series, sizeof series, "envelopd_requests_total{route=\"r%d\",code=\"2xx\"}",
             METRICS_ROUTES);
    CU_ASSERT(isnan(value(t, series)));
    CU_ASSERT_EQUAL(value(t, "envelopd_requests_total{route=\"r0\",code=\"2xx\"}"), 1);
    CU_ASSERT_EQUAL(value(t, "envelopd_worker_requests_total{worker=\"0\"}"), METRICS_ROUTES + 5);
    free(t);
    free(m);
}

static void test_ratelimit_wait_histogram(void)
{
    struct metrics *a = fresh(), *b = fresh();
    metrics_ratelimit_wait(a, 0.05);    /* le=0.0001 */
    metrics_ratelimit_wait(a, 0.25);    /* exactly le=0.00025 */
    metrics_ratelimit_wait(b, 0.3);     /* le=0.0005 */
    metrics_ratelimit_wait(b, 1000.0);  /* a 1 s timeout: the top bound */
    metrics_ratelimit_wait(b, 1500.0);  /* only +Inf */
    struct metrics *ms[2] = {a, b};
    char *t = render(ms, 2, 1, false);
#define W(le) value(t, "envelopd_ratelimit_wait_seconds_bucket{le=\"" le "\"}")
    CU_ASSERT_EQUAL(W("0.0001"), 1);
    CU_ASSERT_EQUAL(W("0.00025"), 2);
    CU_ASSERT_EQUAL(W("0.0005"), 3);
    CU_ASSERT_EQUAL(W("0.25"), 3);
    CU_ASSERT_EQUAL(W("1"), 4);
    CU_ASSERT_EQUAL(W("+Inf"), 5);
#undef W
    CU_ASSERT_EQUAL(value(t, "envelopd_ratelimit_wait_seconds_count"), 5);
    CU_ASSERT_DOUBLE_EQUAL(value(t, "envelopd_ratelimit_wait_seconds_sum"),
                           (0.05 + 0.25 + 0.3 + 1000 + 1500) / 1000.0, 1e-6);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "# TYPE envelopd_ratelimit_wait_seconds histogram\n"));
    free(t);
    free(a);
    free(b);
}

static void test_counter_families_summed(void)
{
    struct metrics *a = fresh(), *b = fresh();
    metrics_upstream_error(a, METRICS_UP_CONNECT);
    metrics_upstream_error(b, METRICS_UP_CONNECT);
    metrics_upstream_error(b, METRICS_UP_INVALID);
    metrics_upstream_conn(a, METRICS_CONN_NEW);
    metrics_upstream_conn(a, METRICS_CONN_REUSED);
    metrics_upstream_conn(b, METRICS_CONN_REUSED);
    metrics_ratelimit(a, METRICS_RL_ALLOW);
    metrics_ratelimit(b, METRICS_RL_LIMITED);
    metrics_ratelimit(b, METRICS_RL_NONE);
    struct metrics *ms[2] = {a, b};
    char *t = render(ms, 2, 0, true);
    CU_ASSERT_EQUAL(value(t, "envelopd_upstream_errors_total{kind=\"connect\"}"), 2);
    CU_ASSERT_EQUAL(value(t, "envelopd_upstream_errors_total{kind=\"timeout\"}"), 0);
    CU_ASSERT_EQUAL(value(t, "envelopd_upstream_errors_total{kind=\"invalid\"}"), 1);
    CU_ASSERT_EQUAL(value(t, "envelopd_upstream_attempts_total{connection=\"new\"}"), 1);
    CU_ASSERT_EQUAL(value(t, "envelopd_upstream_attempts_total{connection=\"reused\"}"), 2);
    CU_ASSERT_EQUAL(value(t, "envelopd_ratelimit_decisions_total{decision=\"allowed\"}"), 1);
    CU_ASSERT_EQUAL(value(t, "envelopd_ratelimit_decisions_total{decision=\"limited\"}"), 1);
    CU_ASSERT_EQUAL(value(t, "envelopd_ratelimit_decisions_total{decision=\"unavailable\"}"), 0);
    CU_ASSERT_EQUAL(value(t, "envelopd_ratelimit_decisions_total{decision=\"unlimited\"}"), 1);
    CU_ASSERT_EQUAL(value(t, "envelopd_redis_connected"), 0);
    CU_ASSERT_EQUAL(value(t, "envelopd_draining"), 1);
    free(t);
    free(a);
    free(b);
}

static void test_gauges(void)
{
    struct metrics *m = fresh();
    atomic_store(&m->inflight, 3);
    char *t = render(&m, 1, -1, false);
    CU_ASSERT_EQUAL(value(t, "envelopd_inflight_requests"), 3);
    CU_ASSERT_EQUAL(value(t, "envelopd_draining"), 0);
    /* No [redis]: no Redis gauge at all rather than a misleading 0. */
    CU_ASSERT_PTR_NULL(strstr(t, "envelopd_redis_connected"));
    free(t);
    t = render(&m, 1, 1, false);
    CU_ASSERT_EQUAL(value(t, "envelopd_redis_connected"), 1);
    free(t);
    free(m);
}

/* Was NAME (LEN bytes) announced by a TYPE line, or, for a histogram's
 * _bucket/_sum/_count sample, its family? */
static bool announced(char (*names)[128], const bool *hist, size_t n, const char *name,
                      size_t len)
{
    static const char *const suffix[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; i < n; i++) {
        size_t fl = strlen(names[i]);
        if (fl == len && memcmp(names[i], name, len) == 0)
            return true;
        for (size_t k = 0; hist[i] && k < 3; k++)
            if (fl + strlen(suffix[k]) == len && memcmp(names[i], name, fl) == 0 &&
                strncmp(name + fl, suffix[k], len - fl) == 0)
                return true;
    }
    return false;
}

static void test_exposition_well_formed(void)
{
    struct metrics *a = fresh(), *b = fresh();
    metrics_request(a, "api", 200, 3);
    metrics_request(b, NULL, 404, 1);
    metrics_ratelimit_wait(a, 0.4);
    struct metrics *ms[2] = {a, b};
    char *t = render(ms, 2, 1, true);
    CU_ASSERT(strlen(t) > 0 && t[strlen(t) - 1] == '\n');
    char names[64][128];
    bool hist[64];
    size_t na = 0;
    int samples = 0;
    char *save = NULL;
    for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# HELP ", 7) == 0)
            continue;
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[128], type[32];
            CU_ASSERT_EQUAL_FATAL(sscanf(line + 7, "%127s %31s", name, type), 2);
            CU_ASSERT(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                      strcmp(type, "histogram") == 0);
            CU_ASSERT_FATAL(na < 64);
            hist[na] = strcmp(type, "histogram") == 0;
            snprintf(names[na++], sizeof names[0], "%s", name);
            continue;
        }
        CU_ASSERT(line[0] != '#');
        /* name[{labels}] value: one space, a finite number after it. */
        const char *sp = strrchr(line, ' ');
        CU_ASSERT_PTR_NOT_NULL_FATAL(sp);
        char *end = NULL;
        double v = strtod(sp + 1, &end);
        CU_ASSERT(end && *end == '\0' && isfinite(v) && v >= 0);
        const char *brace = strchr(line, '{');
        if (brace) {
            CU_ASSERT(brace < sp && sp[-1] == '}');
            CU_ASSERT(strchr(brace + 1, '{') == NULL);
        } else {
            CU_ASSERT(strchr(line, ' ') == sp);
        }
        if (!announced(names, hist, na, line, strcspn(line, "{ ")))
            CU_FAIL("a sample before its family's TYPE line");
        samples++;
    }
    CU_ASSERT(samples > 40);
    free(t);
    free(a);
    free(b);
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("metrics", NULL, NULL);
    CU_add_test(s, "bucket bounds are inclusive (le)", test_bucket_bounds_inclusive);
    CU_add_test(s, "buckets are cumulative", test_buckets_cumulative_and_monotonic);
    CU_add_test(s, "status classes", test_status_classes);
    CU_add_test(s, "negative duration counts as zero", test_negative_duration_counts_as_zero);
    CU_add_test(s, "workers summed by route name", test_workers_summed_by_route_name);
    CU_add_test(s, "full route table folds into the last slot", test_full_route_table_folds);
    CU_add_test(s, "rate-limit wait histogram", test_ratelimit_wait_histogram);
    CU_add_test(s, "counter families summed over workers", test_counter_families_summed);
    CU_add_test(s, "gauges", test_gauges);
    CU_add_test(s, "exposition is well formed", test_exposition_well_formed);
}
