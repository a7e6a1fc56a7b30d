/*
 * ratelimit: GCRA arithmetic over integer microseconds, and a bounded,
 * thread-safe in-process store of GCRA states (key -> tat) with LRU
 * eviction and lazy expiry, which checks all of a request's limits before
 * advancing any, and picks the limit that speaks for the request. No I/O
 * besides one getrandom() for the hash seed.
 *
 * GCRA for "C per W": emission interval T = floor(W/C) us (at least 1 us),
 * burst tolerance tau = (C - 1) * T. A request at `now` conforms when
 * max(tat, now) - now <= tau; it then moves tat forward by T. A fresh caller
 * therefore gets exactly C requests at once, then one every T. The Redis Lua
 * script in limiter.c runs the very same formulas; keep them in step.
 */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "ratelimit.h"

/* Windows longer than this are clamped (keeps every product below 2^53). */
#define RL_MAX_WINDOW_MS (10ULL * 366 * 24 * 3600 * 1000)
/* now_ms beyond this is clamped, so now_us + tau never overflows. */
#define RL_MAX_NOW_MS (UINT64_MAX / 1000 / 2)
#define US_PER_S 1000000ULL

struct gcra_params {
    uint64_t t_us;     /* emission interval */
    uint64_t tau_us;   /* burst tolerance */
};

static struct gcra_params gcra_params(const struct conf_rate *rate)
{
    uint64_t w_ms = rate->window_ms > RL_MAX_WINDOW_MS ? RL_MAX_WINDOW_MS : rate->window_ms;
    uint64_t w_us = w_ms * 1000;
    uint64_t t = w_us / rate->count;
    if (t == 0)
        t = 1;
    struct gcra_params p = {t, (uint64_t)(rate->count - 1) * t};
    return p;
}

static long ceil_div_s(uint64_t us)
{
    uint64_t s = us / US_PER_S + (us % US_PER_S != 0);
    return s > (uint64_t)LONG_MAX ? LONG_MAX : (long)s;
}

void rl_gcra(const struct conf_rate *rate, uint64_t now_ms, uint64_t *tat,
             struct rl_result *out)
{
    memset(out, 0, sizeof(*out));
    out->allowed = true;
    if (rate->count == 0 || rate->window_ms == 0)
        return;  /* no limit */

    struct gcra_params p = gcra_params(rate);
    uint64_t w_ms = rate->window_ms > RL_MAX_WINDOW_MS ? RL_MAX_WINDOW_MS : rate->window_ms;
    out->limit = (long)rate->count;
    out->window_s = (long)(w_ms / 1000 + (w_ms % 1000 != 0));

    uint64_t now = (now_ms > RL_MAX_NOW_MS ? RL_MAX_NOW_MS : now_ms) * 1000;
    /* d = how far tat is ahead of now; at most tau + T when the state is sane
     * (a corrupted or clock-skewed state is clamped to "just emptied"). */
    uint64_t d = *tat > now ? *tat - now : 0;
    if (d > p.tau_us + p.t_us)
        d = p.tau_us + p.t_us;

    if (d > p.tau_us) {
        out->allowed = false;
        out->remaining = 0;
        out->reset_s = ceil_div_s(d);
        long ra = ceil_div_s(d - p.tau_us);
        out->retry_after_s = ra < 1 ? 1 : ra;
        return;
    }
    d += p.t_us;
    *tat = now + d;
    uint64_t rem = d > p.tau_us ? 0 : (p.tau_us - d) / p.t_us + 1;
    if (rem > rate->count)
        rem = rate->count;
    out->remaining = (long)rem;
    out->reset_s = ceil_div_s(d);
    out->retry_after_s = 0;
}

/* ---- the local store ---------------------------------------------------- */

struct rl_entry {
    struct rl_entry *hnext;            /* bucket chain */
    struct rl_entry *lru_prev, *lru_next;
    uint64_t hash;
    uint64_t tat_us;
    size_t keylen;
    char key[];
};

struct rl_local {
    pthread_mutex_t mu;
    struct rl_entry **buckets;
    size_t nbuckets;                   /* power of two */
    size_t count, max_keys;
    struct rl_entry *lru_head, *lru_tail;  /* head = most recently used */
    uint64_t seed;
};

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t key_hash(uint64_t seed, const char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ULL;
    }
    return mix64(h ^ len);
}

struct rl_local *rl_local_new(size_t max_keys)
{
    if (max_keys == 0 || max_keys > ((size_t)1 << 30))
        return NULL;
    struct rl_local *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    size_t nb = 16;
    while (nb < max_keys)
        nb <<= 1;
    l->buckets = calloc(nb, sizeof(*l->buckets));
    if (!l->buckets) {
        free(l);
        return NULL;
    }
    if (pthread_mutex_init(&l->mu, NULL) != 0) {
        free(l->buckets);
        free(l);
        return NULL;
    }
    l->nbuckets = nb;
    l->max_keys = max_keys;
    if (getrandom(&l->seed, sizeof(l->seed), GRND_NONBLOCK) != (ssize_t)sizeof(l->seed)) {
        /* No entropy yet: a weaker seed only affects chain lengths under attack. */
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        l->seed = mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uintptr_t)l);
    }
    return l;
}

static void lru_unlink(struct rl_local *l, struct rl_entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        l->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        l->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_head(struct rl_local *l, struct rl_entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = l->lru_head;
    if (l->lru_head)
        l->lru_head->lru_prev = e;
    l->lru_head = e;
    if (!l->lru_tail)
        l->lru_tail = e;
}

static void entry_remove(struct rl_local *l, struct rl_entry *e)
{
    struct rl_entry **pp = &l->buckets[e->hash & (l->nbuckets - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    lru_unlink(l, e);
    l->count--;
    free(e);
}

void rl_local_free(struct rl_local *l)
{
    if (!l)
        return;
    struct rl_entry *e = l->lru_head;
    while (e) {
        struct rl_entry *next = e->lru_next;
        free(e);
        e = next;
    }
    free(l->buckets);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static struct rl_entry *entry_find(const struct rl_local *l, uint64_t h, const char *key,
                                   size_t keylen)
{
    struct rl_entry *e = l->buckets[h & (l->nbuckets - 1)];
    while (e && !(e->hash == h && e->keylen == keylen && memcmp(e->key, key, keylen) == 0))
        e = e->hnext;
    return e;
}

/* A new caller's first state. On allocation failure the request passes
 * unrecorded. */
static void entry_insert(struct rl_local *l, uint64_t h, const char *key, size_t keylen,
                         uint64_t tat, uint64_t now_us)
{
    if (l->count >= l->max_keys && l->lru_tail) {
        /* Full: reclaim a drained entry among the coldest few, else
         * evict the least recently used (a live state is lost). */
        struct rl_entry *victim = l->lru_tail;
        struct rl_entry *c = l->lru_tail;
        for (int i = 0; i < 8 && c; i++, c = c->lru_prev) {
            if (c->tat_us <= now_us) {
                victim = c;
                break;
            }
        }
        entry_remove(l, victim);
    }
    struct rl_entry *e = malloc(sizeof(*e) + keylen);
    if (!e)
        return;
    e->hash = h;
    e->tat_us = tat;
    e->keylen = keylen;
    memcpy(e->key, key, keylen);
    size_t b = h & (l->nbuckets - 1);
    e->hnext = l->buckets[b];
    l->buckets[b] = e;
    lru_push_head(l, e);
    l->count++;
}

bool rl_local_check_all(struct rl_local *l, const struct rl_limit *limits, size_t n,
                        uint64_t now_ms, struct rl_result *out)
{
    if (n == 0 || n > RL_MAX_LIMITS) {
        for (size_t i = 0; i < n; i++) {
            memset(&out[i], 0, sizeof(out[i]));
            out[i].retry_after_s = 1;
        }
        return false;
    }
    uint64_t now_us = (now_ms > RL_MAX_NOW_MS ? RL_MAX_NOW_MS : now_ms) * 1000;
    uint64_t h[RL_MAX_LIMITS], tat[RL_MAX_LIMITS];
    struct rl_entry *e[RL_MAX_LIMITS];
    bool all = true;
    for (size_t i = 0; i < n; i++)
        h[i] = key_hash(l->seed, limits[i].key, limits[i].keylen);

    if (pthread_mutex_lock(&l->mu) != 0) {
        /* Cannot happen with a default mutex; decide statelessly rather than crash. */
        for (size_t i = 0; i < n; i++) {
            tat[i] = 0;
            rl_gcra(&limits[i].rate, now_ms, &tat[i], &out[i]);
            all = all && out[i].allowed;
        }
        return all;
    }

    /* Lazy expiry: drop up to two drained entries from the cold end. An
     * entry whose tat <= now is equivalent to no entry at all. */
    for (int i = 0; i < 2 && l->lru_tail && l->lru_tail->tat_us <= now_us; i++)
        entry_remove(l, l->lru_tail);

    /* Check every limit before touching any: a request one limit refuses
     * must not spend another's budget. */
    for (size_t i = 0; i < n; i++) {
        e[i] = entry_find(l, h[i], limits[i].key, limits[i].keylen);
        tat[i] = e[i] ? e[i]->tat_us : 0;
        rl_gcra(&limits[i].rate, now_ms, &tat[i], &out[i]);
        all = all && out[i].allowed;
    }

    /* Existing states first: an insertion below may evict, and no pointer
     * in e[] is used after that. */
    for (size_t i = 0; i < n; i++) {
        if (!e[i])
            continue;
        if (all)
            e[i]->tat_us = tat[i];
        /* Touched on deny too: an active abuser stays hot and is never the
         * one evicted (eviction would hand it a fresh burst). */
        lru_unlink(l, e[i]);
        lru_push_head(l, e[i]);
    }
    for (size_t i = 0; all && i < n; i++) {
        /* A key given twice would otherwise be inserted twice. */
        if (!e[i] && tat[i] > now_us &&
            !entry_find(l, h[i], limits[i].key, limits[i].keylen))
            entry_insert(l, h[i], limits[i].key, limits[i].keylen, tat[i], now_us);
    }
    pthread_mutex_unlock(&l->mu);
    return all;
}

void rl_local_check(struct rl_local *l, const char *key, size_t keylen,
                    const struct conf_rate *rate, uint64_t now_ms, struct rl_result *out)
{
    struct rl_limit one = {key, keylen, *rate};
    (void)rl_local_check_all(l, &one, 1, now_ms, out);
}

void rl_local_refund(struct rl_local *l, const char *key, size_t keylen,
                     const struct conf_rate *rate, uint64_t now_ms)
{
    if (rate->count == 0 || rate->window_ms == 0)
        return;
    struct gcra_params p = gcra_params(rate);
    uint64_t now = (now_ms > RL_MAX_NOW_MS ? RL_MAX_NOW_MS : now_ms) * 1000;
    uint64_t h = key_hash(l->seed, key, keylen);
    if (pthread_mutex_lock(&l->mu) != 0)
        return;
    struct rl_entry *e = entry_find(l, h, key, keylen);
    if (e)
        e->tat_us = e->tat_us > now + p.t_us ? e->tat_us - p.t_us : now;
    pthread_mutex_unlock(&l->mu);
}

void rl_local_peek(struct rl_local *l, const char *key, size_t keylen,
                   const struct conf_rate *rate, uint64_t now_ms, struct rl_result *out)
{
    uint64_t h = key_hash(l->seed, key, keylen);
    uint64_t tat = 0;
    if (pthread_mutex_lock(&l->mu) == 0) {
        const struct rl_entry *e = entry_find(l, h, key, keylen);
        tat = e ? e->tat_us : 0;
        pthread_mutex_unlock(&l->mu);
    }
    rl_gcra(rate, now_ms, &tat, out);  /* on a copy: nothing is spent */
}

size_t rl_tightest(const struct rl_result *res, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++) {
        const struct rl_result *a = &res[i], *b = &res[best];
        bool better;
        if (a->allowed != b->allowed)
            better = !a->allowed;  /* a denial always speaks for the request */
        else if (!a->allowed && a->retry_after_s != b->retry_after_s)
            better = a->retry_after_s > b->retry_after_s;
        else if (a->allowed && a->remaining != b->remaining)
            better = a->remaining < b->remaining;
        else
            better = a->limit < b->limit;
        if (better)
            best = i;
    }
    return best;
}
