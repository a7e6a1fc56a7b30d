/*
 * test_ratelimit: GCRA exactness (bursts, remaining, reset, retry-after,
 * refill, window edges, huge and absurd values), the local store (expiry,
 * LRU eviction, bounded size, several limits checked before any is spent)
 * and the choice of the limit that speaks, all over a simulated clock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "ratelimit.h"

void test_register(void);

#define T0 1700000000000ULL  /* a realistic epoch in ms */

static struct conf_rate rate(uint32_t count, uint64_t window_ms)
{
    struct conf_rate r = {count, window_ms};
    return r;
}

static const struct {
    uint32_t count;
    uint64_t window_ms;
} table[] = {
    {1, 1000}, {2, 1}, {3, 1000}, {5, 1000}, {7, 1000}, {10, 10000}, {60, 60000},
    {100, 60000}, {500, 900000}, {1000, 3600000}, {5000, 3600000}, {5000, 1000},
    {3, 86400000}, {1, 7 * 86400000ULL},
};

/* With limit L, exactly L of N back-to-back requests pass; remaining counts
 * down by one; reset stays within the window; denials carry retry >= 1. */
static void test_burst_exact(void)
{
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        struct conf_rate r = rate(table[i].count, table[i].window_ms);
        uint64_t tat = 0;
        long window_s = (long)((r.window_ms + 999) / 1000);
        uint32_t passed = 0;
        for (uint32_t n = 0; n < r.count + 5; n++) {
            struct rl_result res;
            rl_gcra(&r, T0, &tat, &res);
            CU_ASSERT_EQUAL(res.limit, (long)r.count);
            CU_ASSERT_EQUAL(res.window_s, window_s);
            CU_ASSERT(res.reset_s >= 0 && res.reset_s <= window_s);
            if (res.allowed) {
                passed++;
                CU_ASSERT_EQUAL(res.remaining, (long)(r.count - passed));
                CU_ASSERT_EQUAL(res.retry_after_s, 0);
                CU_ASSERT(res.reset_s >= 1);
            } else {
                CU_ASSERT_EQUAL(res.remaining, 0);
                CU_ASSERT(res.retry_after_s >= 1);
                CU_ASSERT(res.retry_after_s <= window_s);
            }
        }
        if (passed != r.count)
            printf("\n  %u/%llums: %u passed\n", r.count, (unsigned long long)r.window_ms,
                   passed);
        CU_ASSERT_EQUAL(passed, r.count);
    }
}

/* After the burst, one request every T = W/L: not one ms earlier. */
static void test_refill_rate(void)
{
    struct conf_rate r = rate(100, 60000);  /* T = 600 ms */
    uint64_t tat = 0;
    struct rl_result res;
    for (int i = 0; i < 100; i++)
        rl_gcra(&r, T0, &tat, &res);
    CU_ASSERT_EQUAL(res.remaining, 0);
    CU_ASSERT_EQUAL(res.reset_s, 60);
    rl_gcra(&r, T0 + 599, &tat, &res);
    CU_ASSERT_FALSE(res.allowed);
    CU_ASSERT_EQUAL(res.retry_after_s, 1);
    rl_gcra(&r, T0 + 600, &tat, &res);
    CU_ASSERT_TRUE(res.allowed);
    CU_ASSERT_EQUAL(res.remaining, 0);
    rl_gcra(&r, T0 + 600, &tat, &res);
    CU_ASSERT_FALSE(res.allowed);
    /* 30 s idle refills exactly 50 */
    int passed = 0;
    for (int i = 0; i < 60; i++) {
        rl_gcra(&r, T0 + 600 + 30000, &tat, &res);
        passed += res.allowed;
    }
    CU_ASSERT_EQUAL(passed, 50);
    /* denial's retry-after is the time to the next slot, rounded up */
    rl_gcra(&r, T0 + 600 + 30000, &tat, &res);
    CU_ASSERT_FALSE(res.allowed);
    CU_ASSERT_EQUAL(res.retry_after_s, 1);
    /* a full window idle: full burst again, reset 0 before it */
    passed = 0;
    for (int i = 0; i < 150; i++) {
        rl_gcra(&r, T0 + 200000, &tat, &res);
        passed += res.allowed;
    }
    CU_ASSERT_EQUAL(passed, 100);

    /* retry-after for a slow rate: 1 per hour -> 3600 s */
    struct conf_rate slow = rate(1, 3600000);
    tat = 0;
    rl_gcra(&slow, T0, &tat, &res);
    CU_ASSERT_TRUE(res.allowed);
    CU_ASSERT_EQUAL(res.reset_s, 3600);
    rl_gcra(&slow, T0 + 1000, &tat, &res);
    CU_ASSERT_FALSE(res.allowed);
    CU_ASSERT_EQUAL(res.retry_after_s, 3599);
    CU_ASSERT_EQUAL(res.reset_s, 3599);
}

/* Above 1000/s the interval is sub-millisecond and still exact. */
static void test_fast_rate(void)
{
    struct conf_rate r = rate(5000, 1000);  /* T = 200 us */
    uint64_t tat = 0;
    struct rl_result res;
    int passed = 0;
    for (int i = 0; i < 6000; i++) {
        rl_gcra(&r, T0, &tat, &res);
        passed += res.allowed;
    }
    CU_ASSERT_EQUAL(passed, 5000);
    passed = 0;
    for (int i = 0; i < 100; i++) {
        rl_gcra(&r, T0 + 1, &tat, &res);
        passed += res.allowed;
    }
    CU_ASSERT_EQUAL(passed, 5);
}

/*
 * The fixed-window failure: L at the end of one window and L at the start of
 * the next. GCRA lets through L + (elapsed / T), never 2L. And over a long
 * hammering, in any window-long span at most 2L - 1 pass (a full bucket plus
 * the refill during the span), and at most L + D/T in any span D; the
 * long-run rate is L per W.
 */
static void test_window_edge(void)
{
    static const struct {
        uint32_t count;
        uint64_t window_ms;
    } rates[] = {{10, 1000}, {100, 60000}, {7, 1000}, {3, 10}};
    for (size_t k = 0; k < sizeof(rates) / sizeof(rates[0]); k++) {
        struct conf_rate r = rate(rates[k].count, rates[k].window_ms);
        uint64_t t_us = r.window_ms * 1000 / r.count;
        uint64_t w = r.window_ms;

        /* edge burst: 2L attempts 2 ms apart straddling a window boundary */
        uint64_t tat = 0;
        struct rl_result res;
        uint32_t passed = 0;
        for (uint32_t i = 0; i < r.count; i++) {
            rl_gcra(&r, T0 + w - 1, &tat, &res);
            passed += res.allowed;
        }
        for (uint32_t i = 0; i < r.count; i++) {
            rl_gcra(&r, T0 + w + 1, &tat, &res);
            passed += res.allowed;
        }
        CU_ASSERT(passed <= r.count + 2000 / t_us + 1);
        CU_ASSERT(passed < 2 * r.count);

        /* hammer: one attempt per ms for 5 windows, record the passes */
        static uint64_t at[1 << 16];
        size_t n = 0;
        tat = 0;
        for (uint64_t t = 0; t < 5 * w && n < sizeof(at) / sizeof(at[0]); t++) {
            for (int j = 0; j < 3; j++) {
                rl_gcra(&r, T0 + t, &tat, &res);
                if (res.allowed)
                    at[n++] = t;
            }
        }
        /* any window-long span [at[i], at[i] + w) */
        size_t worst = 0;
        for (size_t i = 0, j = 0; i < n; i++) {
            while (j < n && at[j] < at[i] + w)
                j++;
            if (j - i > worst)
                worst = j - i;
            /* the general bound: at most L + D/T in a span D (closed) */
            size_t m = j;
            while (m < n && at[m] <= at[i] + w)
                m++;
            CU_ASSERT(m - i <= r.count + (w * 1000) / t_us);
        }
        CU_ASSERT(worst <= 2 * (size_t)r.count - 1);
        CU_ASSERT(worst >= r.count);
        /* long run: L + 5L - at most the refill's rounding */
        CU_ASSERT(n <= 6 * (size_t)r.count);
        CU_ASSERT(n >= 6 * (size_t)r.count - 1);
    }
}

static void test_large_and_overflow(void)
{
    struct rl_result res;
    /* a 10-year window */
    struct conf_rate decade = rate(2, 10ULL * 365 * 86400000);
    uint64_t tat = 0;
    rl_gcra(&decade, T0, &tat, &res);
    rl_gcra(&decade, T0, &tat, &res);
    CU_ASSERT_TRUE(res.allowed);
    rl_gcra(&decade, T0, &tat, &res);
    CU_ASSERT_FALSE(res.allowed);
    CU_ASSERT(res.retry_after_s > 86400L * 365 * 4);

    /* absurd window: clamped, no overflow, sane results */
    struct conf_rate huge = rate(UINT32_MAX, UINT64_MAX);
    tat = 0;
    rl_gcra(&huge, T0, &tat, &res);
    CU_ASSERT_TRUE(res.allowed);
    CU_ASSERT_EQUAL(res.remaining, (long)UINT32_MAX - 1);
    CU_ASSERT(res.window_s > 0);

    /* more requests than microseconds in the window: T floors at 1 us */
    struct conf_rate dense = rate(UINT32_MAX, 1);
    tat = 0;
    rl_gcra(&dense, T0, &tat, &res);
    CU_ASSERT_TRUE(res.allowed);

    /* the clock at its maximum */
    struct conf_rate r = rate(3, 1000);
    tat = 0;
    int passed = 0;
    for (int i = 0; i < 5; i++) {
        rl_gcra(&r, UINT64_MAX, &tat, &res);
        passed += res.allowed;
    }
    CU_ASSERT_EQUAL(passed, 3);
    CU_ASSERT(res.retry_after_s >= 1 && res.retry_after_s <= 1);

    /* a corrupted state far in the future is clamped to "just emptied" */
    tat = UINT64_MAX;
    rl_gcra(&r, T0, &tat, &res);
    CU_ASSERT_FALSE(res.allowed);
    CU_ASSERT_EQUAL(res.retry_after_s, 1);
    CU_ASSERT_EQUAL(res.reset_s, 1);
    CU_ASSERT_EQUAL(tat, UINT64_MAX);  /* untouched when denied */

    /* time going backwards: never more than the burst */
    tat = 0;
    passed = 0;
    for (int i = 0; i < 10; i++) {
        rl_gcra(&r, T0 - (uint64_t)i * 10, &tat, &res);
        passed += res.allowed;
    }
    CU_ASSERT(passed >= 1 && passed <= 3);

    /* now = 0 (a fresh monotonic clock) */
    tat = 0;
    rl_gcra(&r, 0, &tat, &res);
    CU_ASSERT_TRUE(res.allowed);
    CU_ASSERT_EQUAL(res.remaining, 2);
}

static void test_unset(void)
{
    struct conf_rate r = rate(0, 60000);
    uint64_t tat = 0;
    struct rl_result res;
    for (int i = 0; i < 1000; i++) {
        rl_gcra(&r, T0, &tat, &res);
        CU_ASSERT_TRUE(res.allowed);
    }
    CU_ASSERT_EQUAL(tat, 0);
    CU_ASSERT_EQUAL(res.limit, 0);
    struct conf_rate z = rate(5, 0);
    rl_gcra(&z, T0, &tat, &res);
    CU_ASSERT_TRUE(res.allowed);
}

/* ---- local store ---- */

static int local_pass(struct rl_local *l, const char *key, const struct conf_rate *r,
                      uint64_t now, int tries)
{
    int passed = 0;
    for (int i = 0; i < tries; i++) {
        struct rl_result res;
        rl_local_check(l, key, strlen(key), r, now, &res);
        passed += res.allowed;
    }
    return passed;
}

static void test_local_basic(void)
{
    struct rl_local *l = rl_local_new(1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    struct conf_rate r = rate(5, 1000);
    CU_ASSERT_EQUAL(local_pass(l, "a", &r, 1000, 10), 5);
    CU_ASSERT_EQUAL(local_pass(l, "b", &r, 1000, 10), 5);  /* keys are independent */
    CU_ASSERT_EQUAL(local_pass(l, "a", &r, 1100, 10), 0);
    CU_ASSERT_EQUAL(local_pass(l, "a", &r, 1200, 10), 1);
    /* a key that is a prefix of another is another key */
    struct rl_result res;
    rl_local_check(l, "ab", 1, &r, 1200, &res);  /* "a" by length */
    CU_ASSERT_FALSE(res.allowed);
    rl_local_check(l, "ab", 2, &r, 1200, &res);
    CU_ASSERT_TRUE(res.allowed);
    CU_ASSERT_EQUAL(res.remaining, 4);
    /* expiry: after the window everything is fresh again */
    CU_ASSERT_EQUAL(local_pass(l, "a", &r, 5000, 10), 5);
    CU_ASSERT_EQUAL(local_pass(l, "b", &r, 5000, 10), 5);
    rl_local_free(l);
    rl_local_free(NULL);
    CU_ASSERT_PTR_NULL(rl_local_new(0));
}

static void test_local_eviction(void)
{
    struct rl_local *l = rl_local_new(4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    struct conf_rate r = rate(1, 60000);
    const char *keys[] = {"k1", "k2", "k3", "k4"};
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(local_pass(l, keys[i], &r, 1000, 3), 1);
    /* k1 is touched (denied) and so becomes the most recent */
    CU_ASSERT_EQUAL(local_pass(l, "k1", &r, 1001, 1), 0);
    /* a fifth key evicts the least recently used: k2 */
    CU_ASSERT_EQUAL(local_pass(l, "k5", &r, 1002, 3), 1);
    CU_ASSERT_EQUAL(local_pass(l, "k1", &r, 1003, 1), 0);
    CU_ASSERT_EQUAL(local_pass(l, "k3", &r, 1003, 1), 0);
    CU_ASSERT_EQUAL(local_pass(l, "k2", &r, 1004, 1), 1);  /* forgotten: fresh */
    rl_local_free(l);

    /* a flood of distinct keys stays bounded and the newest survive */
    l = rl_local_new(64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    char key[32];
    for (int i = 0; i < 200000; i++) {
        snprintf(key, sizeof(key), "flood-%d", i);
        (void)local_pass(l, key, &r, 2000 + (uint64_t)i / 1000, 1);
    }
    int limited = 0;
    for (int i = 200000 - 64; i < 200000; i++) {
        snprintf(key, sizeof(key), "flood-%d", i);
        limited += local_pass(l, key, &r, 2300, 1) == 0;
    }
    CU_ASSERT_EQUAL(limited, 64);
    rl_local_free(l);
}

/* Drained entries are reclaimed lazily: after they expire, new keys do not
 * evict live ones. */
static void test_local_expiry_reclaims(void)
{
    struct rl_local *l = rl_local_new(4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    struct conf_rate shortr = rate(1, 10);
    struct conf_rate longr = rate(1, 60000);
    CU_ASSERT_EQUAL(local_pass(l, "live", &longr, 1000, 2), 1);
    for (int i = 0; i < 3; i++) {
        char key[32];
        snprintf(key, sizeof(key), "short%d", i);
        CU_ASSERT_EQUAL(local_pass(l, key, &shortr, 1000, 1), 1);
    }
    /* "live" is the LRU tail but the short ones expire at 1010 */
    CU_ASSERT_EQUAL(local_pass(l, "live", &longr, 1001, 1), 0);
    for (int i = 0; i < 6; i++) {
        char key[32];
        snprintf(key, sizeof(key), "new%d", i);
        CU_ASSERT_EQUAL(local_pass(l, key, &shortr, 2000 + (uint64_t)i * 100, 1), 1);
    }
    CU_ASSERT_EQUAL(local_pass(l, "live", &longr, 2600, 1), 0);
    rl_local_free(l);
}

/* ---- several limits at once ---- */

/* "name:count/window_ms,..." into LIMITS (keys point into BUF). */
static size_t parse_limits(const char *spec, char *buf, size_t cap, struct rl_limit *limits,
                           size_t max)
{
    snprintf(buf, cap, "%s", spec);
    size_t n = 0;
    for (char *save = NULL, *item = strtok_r(buf, ",", &save); item && n < max;
         item = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(item, ':');
        CU_ASSERT_PTR_NOT_NULL_FATAL(colon);
        *colon = '\0';
        limits[n].key = item;
        limits[n].keylen = strlen(item);
        unsigned long long c = 0, w = 0;
        CU_ASSERT_FATAL(sscanf(colon + 1, "%llu/%llu", &c, &w) == 2);
        limits[n].rate = rate((uint32_t)c, w);
        n++;
    }
    return n;
}

/* One store, a sequence of requests each held to several limits: the
 * request passes only when all allow, and a refused one spends nothing. */
static void test_local_all_or_nothing(void)
{
    static const struct {
        const char *limits;
        uint64_t now;
        bool all;
        const char *each;        /* A: that limit allows, D: it refuses */
        long remaining[RL_MAX_LIMITS];
    } steps[] = {
        {"ip:3/1000,tok:1/1000", 1000, true, "AA", {2, 0}},
        /* the token refuses: the IP's 2 left stay 2 (it reports 1 as if spent) */
        {"ip:3/1000,tok:1/1000", 1000, false, "AD", {1, 0}},
        {"ip:3/1000", 1000, true, "A", {1}},
        {"ip:3/1000", 1000, true, "A", {0}},
        /* the IP refuses: a new key is not even stored */
        {"ip:3/1000,new:5/1000", 1000, false, "DA", {0, 4}},
        {"new:5/1000", 1000, true, "A", {4}},
        /* one IP slot back at 1334 ms; the token's interval is 1000 ms */
        {"ip:3/1000,tok:1/1000", 1334, false, "AD", {0, 0}},
        {"tok:1/1000", 2000, true, "A", {0}},
        {"ip:3/1000,tok:1/1000", 2000, false, "AD", {2, 0}},
        {"ip:3/1000", 2000, true, "A", {2}},
        /* four at once, the most allowed */
        {"a:1/1000,b:2/1000,c:3/1000,d:4/1000", 5000, true, "AAAA", {0, 1, 2, 3}},
        {"a:1/1000,b:2/1000,c:3/1000,d:4/1000", 5000, false, "DAAA", {0, 0, 1, 2}},
        {"b:2/1000,c:3/1000,d:4/1000", 5000, true, "AAA", {0, 1, 2}},
        /* the same key twice is checked once against the state before */
        {"dup:2/1000,dup:2/1000", 9000, true, "AA", {1, 1}},
        {"dup:2/1000", 9000, true, "A", {0}},
        {"dup:2/1000", 9000, false, "D", {0}},
    };
    struct rl_local *l = rl_local_new(100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        char buf[256];
        struct rl_limit lims[RL_MAX_LIMITS];
        struct rl_result out[RL_MAX_LIMITS];
        size_t n = parse_limits(steps[i].limits, buf, sizeof(buf), lims, RL_MAX_LIMITS);
        CU_ASSERT_EQUAL_FATAL(n, strlen(steps[i].each));
        bool all = rl_local_check_all(l, lims, n, steps[i].now, out);
        bool ok = all == steps[i].all;
        for (size_t k = 0; k < n; k++) {
            ok = ok && out[k].allowed == (steps[i].each[k] == 'A');
            ok = ok && out[k].remaining == steps[i].remaining[k];
            ok = ok && (out[k].allowed || out[k].retry_after_s >= 1);
        }
        if (!ok) {
            printf("\n  step %zu (%s @%llu): all=%d", i + 1, steps[i].limits,
                   (unsigned long long)steps[i].now, all);
            for (size_t k = 0; k < n; k++)
                printf(" [%c rem %ld]", out[k].allowed ? 'A' : 'D', out[k].remaining);
            printf("\n");
        }
        CU_ASSERT_TRUE(ok);
    }
    rl_local_free(l);
}

/* Out-of-range counts decide nothing; commits into a full store evict
 * without touching freed entries (run under valgrind/ASan). */
static void test_local_all_edges(void)
{
    struct rl_local *l = rl_local_new(2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    struct rl_limit lims[RL_MAX_LIMITS + 1];
    struct rl_result out[RL_MAX_LIMITS + 1];
    char keys[RL_MAX_LIMITS + 1][8];
    for (size_t i = 0; i < RL_MAX_LIMITS + 1; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%zu", i);
        lims[i].key = keys[i];
        lims[i].keylen = strlen(keys[i]);
        lims[i].rate = rate(1, 60000);
    }
    CU_ASSERT_FALSE(rl_local_check_all(l, lims, 0, 1000, out));
    CU_ASSERT_FALSE(rl_local_check_all(l, lims, RL_MAX_LIMITS + 1, 1000, out));
    for (size_t i = 0; i < RL_MAX_LIMITS + 1; i++) {
        CU_ASSERT_FALSE(out[i].allowed);
        CU_ASSERT(out[i].retry_after_s >= 1);
    }
    CU_ASSERT_EQUAL(local_pass(l, "k0", &lims[0].rate, 1000, 2), 1);  /* nothing was stored */

    /* store of 2 holding k0; a request on k1..k3 inserts three: the
     * later ones evict the earlier ones, and all of it stays consistent */
    CU_ASSERT_TRUE(rl_local_check_all(l, &lims[1], 3, 1001, out));
    CU_ASSERT_EQUAL(local_pass(l, "k3", &lims[3].rate, 1002, 1), 0);  /* newest kept */
    CU_ASSERT_EQUAL(local_pass(l, "k0", &lims[0].rate, 1002, 1), 1);  /* evicted: fresh */
    rl_local_free(l);

    /* a store of one: two new keys, the second evicts the first */
    l = rl_local_new(1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_TRUE(rl_local_check_all(l, lims, 2, 1000, out));
    CU_ASSERT_FALSE(rl_local_check_all(l, lims, 2, 1000, out));  /* k1 kept: refused */
    CU_ASSERT_TRUE(out[0].allowed);
    CU_ASSERT_FALSE(out[1].allowed);
    rl_local_free(l);
}

static struct rl_result res_of(char verdict, long limit, long remaining, long retry)
{
    struct rl_result r = {verdict == 'A', limit, remaining, 0, retry, 60};
    return r;
}

/* Which limit names the 429 and the headers. */
static void test_tightest(void)
{
    static const struct {
        const char *why;
        size_t n;
        struct {
            char v;
            long limit, remaining, retry;
        } r[4];
        size_t want;
    } t[] = {
        {"one", 1, {{'A', 5, 4, 0}}, 0},
        {"fewest remaining", 3, {{'A', 100, 5, 0}, {'A', 500, 2, 0}, {'A', 10, 9, 0}}, 1},
        {"equal remaining: smaller limit", 2, {{'A', 10, 2, 0}, {'A', 3, 2, 0}}, 1},
        {"equal remaining: smaller limit, first", 2, {{'A', 3, 2, 0}, {'A', 10, 2, 0}}, 0},
        {"equal in all: the first", 2, {{'A', 3, 1, 0}, {'A', 3, 1, 0}}, 0},
        {"a denial beats remaining 0", 2, {{'A', 1, 0, 0}, {'D', 100, 0, 1}}, 1},
        {"a denial beats remaining 0, first", 2, {{'D', 100, 0, 1}, {'A', 1, 0, 0}}, 0},
        {"longest Retry-After", 3, {{'D', 3, 0, 5}, {'D', 100, 0, 30}, {'A', 1, 0, 0}}, 1},
        {"longest Retry-After, last", 3, {{'D', 3, 0, 5}, {'A', 1, 0, 0}, {'D', 9, 0, 600}}, 2},
        {"equal Retry-After: smaller limit", 2, {{'D', 100, 0, 30}, {'D', 10, 0, 30}}, 1},
        {"four", 4, {{'A', 9, 8, 0}, {'A', 9, 7, 0}, {'A', 8, 7, 0}, {'A', 9, 7, 0}}, 2},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct rl_result rs[4];
        for (size_t k = 0; k < t[i].n; k++)
            rs[k] = res_of(t[i].r[k].v, t[i].r[k].limit, t[i].r[k].remaining, t[i].r[k].retry);
        size_t got = rl_tightest(rs, t[i].n);
        if (got != t[i].want)
            printf("\n  %s: got %zu, want %zu\n", t[i].why, got, t[i].want);
        CU_ASSERT_EQUAL(got, t[i].want);
    }
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("ratelimit_gcra", NULL, NULL);
    CU_add_test(s, "burst of exactly L, remaining, reset, retry", test_burst_exact);
    CU_add_test(s, "refill one per T", test_refill_rate);
    CU_add_test(s, "sub-millisecond intervals", test_fast_rate);
    CU_add_test(s, "window edge and span bounds", test_window_edge);
    CU_add_test(s, "large windows and overflow guards", test_large_and_overflow);
    CU_add_test(s, "unset rate", test_unset);
    CU_pSuite t = CU_add_suite("ratelimit_local", NULL, NULL);
    CU_add_test(t, "keys, refill, expiry", test_local_basic);
    CU_add_test(t, "LRU eviction when full", test_local_eviction);
    CU_add_test(t, "expired entries reclaimed before live ones", test_local_expiry_reclaims);
    CU_add_test(t, "several limits: all or nothing", test_local_all_or_nothing);
    CU_add_test(t, "several limits: bounds and eviction", test_local_all_edges);
    CU_add_test(t, "the tightest limit speaks", test_tightest);
}
