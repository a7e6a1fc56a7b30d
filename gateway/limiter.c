/*
 * limiter: the rate-limit policy of one worker. Names the caller (a keyed
 * HMAC-SHA256 of the token, else the client IP), picks the route's or the
 * default rate, and decides with one EVALSHA of the GCRA script in Redis, or
 * with the process-wide local store (no [redis], or on_error = local).
 *
 * Process-wide state (shared by every worker's limiter, under one mutex):
 * the local store, so N workers do not grant N times the limit; the random
 * hash secret used when hash_secret is unset, so every worker names a caller
 * by the same key; and the once-a-second "undecided" warning.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "limiter.h"
#include "headbuf.h"
#include "log.h"
#include "redis.h"

#define LIMITER_LOCAL_KEYS 100000   /* bound of the in-process store */
#define LIMITER_KEY_MAX 320
#define LIMITER_SECRET_LEN 32

/*
 * GCRA in Redis. KEYS[1] = the caller's key; ARGV[1] = count, ARGV[2] =
 * window in ms. The clock is Redis' own (TIME), so gateways on machines with
 * different clocks share one timeline; Redis >= 5 replicates scripts by
 * effects, which makes TIME before a write legal (replicate_commands is
 * called for 3.2-4.x). The arithmetic is rl_gcra's, in microseconds, exact
 * in doubles below 2^53. Returns one integer: d if allowed, -1 - d if not,
 * where d = max(tat, now) - now before this request; the gateway replays
 * rl_gcra from d to fill the headers, so there is one source of truth for
 * Remaining/Reset/Retry-After. One integer rather than a pair: hiredis
 * builds one reply object instead of three, per request.
 */
static const char limiter_lua[] =
    "if redis.replicate_commands then pcall(redis.replicate_commands) end\n"
    "local count = tonumber(ARGV[1])\n"
    "local window = tonumber(ARGV[2])\n"
    "if window > 316224000000 then window = 316224000000 end\n"
    "local t = math.floor(window * 1000 / count)\n"
    "if t < 1 then t = 1 end\n"
    "local tau = (count - 1) * t\n"
    "local clock = redis.call('TIME')\n"
    "local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])\n"
    "local v = redis.call('GET', KEYS[1])\n"
    "local d = 0\n"
    "if v then d = (tonumber(v) or now) - now end\n"
    "if d < 0 then d = 0 end\n"
    "if d > tau + t then d = tau + t end\n"
    "if d > tau then return -1 - d end\n"
    "local nd = d + t\n"
    "redis.call('SET', KEYS[1], string.format('%d', now + nd), 'PX', math.floor(nd / 1000) + 1)\n"
    "return d\n";

struct limiter_pending {
    struct limiter *l;
    struct limiter_pending *prev, *next;
    struct redis_call *call;
    limiter_cb cb;
    void *arg;
    struct conf_rate rate;
    size_t keylen;
    char key[LIMITER_KEY_MAX];
};

/*
 * Token -> keyed hash, per worker, direct-mapped. OpenSSL 3's one-shot HMAC()
 * fetches the digest from the provider on every call (13 mallocs, 16% of a
 * request's instructions); callers repeat their tokens, so a hit is a hash
 * and a memcmp. Tokens longer than the slot are hashed every time. Cleared
 * when the conf (and so maybe the secret) changes; process memory only.
 */
#define TOKEN_CACHE_SLOTS 512
#define TOKEN_CACHE_MAX 96

struct token_slot {
    uint8_t len;                        /* 0: empty */
    char token[TOKEN_CACHE_MAX];
    char hash[33];
};

struct limiter {
    struct event_base *base;
    const struct conf *conf;
    struct redis *redis;                /* created when [redis] is first enabled */
    struct limiter_pending *pendings;
    struct token_slot cache[TOKEN_CACHE_SLOTS];
};

static struct {
    pthread_mutex_t mu;
    unsigned refs;
    struct rl_local *store;
    unsigned char secret[LIMITER_SECRET_LEN];
    bool secret_ready;
    bool memory_logged;
} shared = {.mu = PTHREAD_MUTEX_INITIALIZER};

static _Atomic uint64_t undecided_count;
static _Atomic uint64_t undecided_warned_ms;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool fill_random(unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got == len || RAND_bytes(buf, (int)len) == 1;
}

/* Say "memory mode" once, when it starts (again). Caller holds shared.mu. */
static void note_mode(const struct conf *conf)
{
    if (conf->redis_enabled) {
        shared.memory_logged = false;
    } else if (!shared.memory_logged) {
        shared.memory_logged = true;
        log_info("ratelimit_local", "no [redis] section: rate limits are held in process "
                 "memory and are not shared with other instances");
    }
}

static void note_undecided(const struct conf *conf, const char *why)
{
    static const char *const modes[] = {"allow", "deny", "local"};
    atomic_fetch_add(&undecided_count, 1);
    uint64_t now = mono_ms();
    uint64_t last = atomic_load(&undecided_warned_ms);
    if (now - last < 1000 && last != 0)
        return;
    if (!atomic_compare_exchange_strong(&undecided_warned_ms, &last, now ? now : 1))
        return;
    unsigned long long n = atomic_exchange(&undecided_count, 0);
    unsigned mode = (unsigned)conf->redis_on_error;
    const char *fields[] = {"on_error", mode < 3 ? modes[mode] : "?", NULL};
    LOG_AT(CONF_LOG_WARN, "ratelimit_undecided", NULL, fields,
           "Redis could not decide (%.100s): %llu request(s) since the last report "
           "handled by on_error = %s", why, n, mode < 3 ? modes[mode] : "?");
}

/* The verdict when Redis cannot answer. */
static enum limiter_verdict decide_fallback(const struct conf *conf, const struct conf_rate *rate,
                                            const char *key, size_t keylen,
                                            struct rl_result *res, const char *why)
{
    memset(res, 0, sizeof(*res));
    if (!conf->redis_enabled) {
        rl_local_check(shared.store, key, keylen, rate, mono_ms(), res);
        return res->allowed ? LIMITER_ALLOW : LIMITER_LIMITED;
    }
    note_undecided(conf, why);
    switch (conf->redis_on_error) {
    case CONF_ON_ERROR_DENY:
        res->limit = (long)rate->count;
        res->window_s = (long)(rate->window_ms / 1000 + (rate->window_ms % 1000 != 0));
        res->retry_after_s = 1;
        return LIMITER_UNAVAILABLE;
    case CONF_ON_ERROR_LOCAL:
        rl_local_check(shared.store, key, keylen, rate, mono_ms(), res);
        return res->allowed ? LIMITER_ALLOW : LIMITER_LIMITED;
    case CONF_ON_ERROR_ALLOW:
    default:
        return LIMITER_NONE;
    }
}

static void hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* 32 hex digits of HMAC-SHA256(secret, data). */
static bool keyed_hash(const struct conf *conf, const char *data, size_t len, char out[33])
{
    const void *key = shared.secret;
    int keylen = LIMITER_SECRET_LEN;
    if (conf->hash_secret_set) {
        key = conf->hash_secret;
        keylen = (int)strnlen(conf->hash_secret, sizeof(conf->hash_secret));
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!HMAC(EVP_sha256(), key, keylen, (const unsigned char *)data, len, md, &mdlen) ||
        mdlen < 16)
        return false;
    hex(md, 16, out);
    return true;
}

static bool token_hash(struct limiter *l, const char *tok, size_t len, char out[33])
{
    if (len == 0 || len > TOKEN_CACHE_MAX)
        return keyed_hash(l->conf, tok, len, out);
    uint32_t h = 2166136261u;  /* FNV-1a: only picks the slot */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)tok[i]) * 16777619u;
    struct token_slot *s = &l->cache[h % TOKEN_CACHE_SLOTS];
    if (s->len == len && memcmp(s->token, tok, len) == 0) {
        memcpy(out, s->hash, 33);
        return true;
    }
    if (!keyed_hash(l->conf, tok, len, out))
        return false;
    s->len = (uint8_t)len;
    memcpy(s->token, tok, len);
    memcpy(s->hash, out, 33);
    return true;
}

static bool plain_ip(const char *ip)
{
    size_t n = 0;
    for (; ip[n]; n++) {
        char ch = ip[n];
        bool ok = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                  (ch >= 'A' && ch <= 'F') || ch == '.' || ch == ':';
        if (!ok || n >= 45)
            return false;
    }
    return n > 0;
}

/*
 * prefix "{" id "}:" route ":" count "/" window_ms. The id is the token's
 * keyed hash (never the token), or "ip:" and the client IP. The hash tag
 * keeps a caller's keys on one Redis Cluster slot.
 */
static bool build_key(struct limiter *l, const struct limiter_query *q, bool has_token,
                      const struct conf_rate *rate, char *out, size_t cap, size_t *len)
{
    const struct conf *conf = l->conf;
    char h[33];
    const char *prefix = conf->redis_enabled ? conf->redis_key_prefix : "";
    const char *route = q->route ? q->route->name : "default";
    struct headbuf b;  /* the key is built as a head would be: bounded, no printf */
    headbuf_mem(&b, out, cap - 1);
    hb_add(&b, prefix, strnlen(prefix, CONF_NAME_MAX));
    HB_LIT(&b, "{");
    if (has_token) {
        if (!token_hash(l, q->token, q->token_len, h))
            return false;
        hb_str(&b, h);
    } else if (!q->client_ip || !q->client_ip[0]) {
        HB_LIT(&b, "ip:-");
    } else if (plain_ip(q->client_ip)) {
        HB_LIT(&b, "ip:");
        hb_add(&b, q->client_ip, strnlen(q->client_ip, 45));
    } else {
        if (!keyed_hash(conf, q->client_ip, strlen(q->client_ip), h))
            return false;
        HB_LIT(&b, "iph:");
        hb_str(&b, h);
    }
    HB_LIT(&b, "}:");
    hb_add(&b, route, strnlen(route, CONF_NAME_MAX));
    HB_LIT(&b, ":");
    hb_u64(&b, rate->count);
    HB_LIT(&b, "/");
    hb_u64(&b, rate->window_ms);
    if (b.full)
        return false;
    out[b.len] = '\0';
    *len = b.len;
    return true;
}

static void pending_unlink(struct limiter_pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        p->l->pendings = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

/* Is this the script's reply: d (allowed) or -1 - d (limited)? */
static bool parse_reply(const redisReply *reply, bool *allowed, uint64_t *d, const char **why)
{
    if (!reply) {
        *why = "timeout or connection lost";
        return false;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        *why = reply->str ? reply->str : "error reply";  /* never names a key */
        return false;
    }
    if (reply->type != REDIS_REPLY_INTEGER) {
        *why = "unexpected reply";
        return false;
    }
    long long v = reply->integer;
    *allowed = v >= 0;
    *d = v >= 0 ? (uint64_t)v : (uint64_t)(-(v + 1));
    return true;
}

static void redis_answer(const redisReply *reply, void *arg)
{
    struct limiter_pending *p = arg;
    struct limiter *l = p->l;
    struct rl_result res;
    enum limiter_verdict v;
    bool allowed = false;
    uint64_t d = 0;
    const char *why = NULL;
    if (parse_reply(reply, &allowed, &d, &why)) {
        /* Replay the script's step from its d: same formulas, same verdict. */
        uint64_t tat = d;
        rl_gcra(&p->rate, 0, &tat, &res);
        if (res.allowed != allowed) {
            LOG_AT(CONF_LOG_ERROR, "ratelimit_mismatch", NULL, NULL,
                   "Redis script and gateway disagree (d=%llu); following Redis",
                   (unsigned long long)d);
            res.allowed = allowed;
            if (!allowed && res.retry_after_s < 1)
                res.retry_after_s = 1;
        }
        v = res.allowed ? LIMITER_ALLOW : LIMITER_LIMITED;
    } else {
        v = decide_fallback(l->conf, &p->rate, p->key, p->keylen, &res, why);
    }
    limiter_cb cb = p->cb;
    void *cb_arg = p->arg;
    pending_unlink(p);
    free(p);
    cb(v, &res, cb_arg);  /* last: the callback may free the request or even L */
}

static void limiter_release_shared(void)
{
    pthread_mutex_lock(&shared.mu);
    if (--shared.refs == 0) {
        rl_local_free(shared.store);
        shared.store = NULL;
    }
    pthread_mutex_unlock(&shared.mu);
}

struct limiter *limiter_new(struct event_base *base, const struct conf *conf)
{
    struct limiter *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->base = base;
    l->conf = conf;

    if (pthread_mutex_lock(&shared.mu) != 0) {
        free(l);
        return NULL;
    }
    if (!shared.secret_ready && fill_random(shared.secret, sizeof(shared.secret)))
        shared.secret_ready = true;
    if (shared.refs == 0)
        shared.store = rl_local_new(LIMITER_LOCAL_KEYS);
    bool ok = shared.secret_ready && shared.store;
    if (ok) {
        shared.refs++;
        note_mode(conf);
    }
    pthread_mutex_unlock(&shared.mu);
    if (!ok) {
        free(l);
        return NULL;
    }

    if (conf->redis_enabled) {
        l->redis = redis_new(base, conf, limiter_lua);
        if (!l->redis) {
            limiter_release_shared();
            free(l);
            return NULL;
        }
    }
    return l;
}

void limiter_free(struct limiter *l)
{
    if (!l)
        return;
    struct limiter_pending *p = l->pendings;
    while (p) {
        struct limiter_pending *next = p->next;
        redis_call_cancel(p->call);
        free(p);
        p = next;
    }
    l->pendings = NULL;
    redis_free(l->redis);
    limiter_release_shared();
    free(l);
}

void limiter_set_conf(struct limiter *l, const struct conf *conf)
{
    l->conf = conf;
    memset(l->cache, 0, sizeof l->cache);  /* the hash secret may have changed */
    if (pthread_mutex_lock(&shared.mu) == 0) {
        note_mode(conf);
        pthread_mutex_unlock(&shared.mu);
    }
    if (l->redis)
        redis_set_conf(l->redis, conf);
    else if (conf->redis_enabled && !(l->redis = redis_new(l->base, conf, limiter_lua)))
        log_error("redis_setup", "cannot set up the Redis connection: no memory");
}

int limiter_check(struct limiter *l, const struct limiter_query *q,
                  enum limiter_verdict *v, struct rl_result *res,
                  limiter_cb cb, void *arg, struct limiter_pending **pending)
{
    const struct conf *conf = l->conf;
    const struct conf_route *route = q->route;
    bool has_token = q->token && q->token_len > 0;
    struct conf_rate rate;
    if (has_token)
        rate = route && conf_rate_set(&route->per_token) ? route->per_token : conf->per_token;
    else
        rate = route && conf_rate_set(&route->per_ip) ? route->per_ip : conf->per_ip;

    if (pending)
        *pending = NULL;
    memset(res, 0, sizeof(*res));
    if (rate.count == 0) {  /* "off" */
        *v = LIMITER_NONE;
        return 1;
    }

    struct limiter_pending *p = malloc(sizeof(*p));
    char stack_key[LIMITER_KEY_MAX];
    char *key = p ? p->key : stack_key;
    size_t keylen = 0;
    if (!build_key(l, q, has_token, &rate, key, LIMITER_KEY_MAX, &keylen)) {
        free(p);
        log_error("ratelimit_key", "cannot derive a rate-limit key; request not limited");
        *v = LIMITER_NONE;
        return 1;
    }

    if (!conf->redis_enabled || !l->redis || !p || !cb) {
        *v = decide_fallback(conf, &rate, key, keylen, res,
                             !p ? "no memory" : !cb ? "no callback" : "Redis not set up");
        free(p);
        return 1;
    }

    p->l = l;
    p->cb = cb;
    p->arg = arg;
    p->rate = rate;
    p->keylen = keylen;
    char count[24], window[24];
    struct headbuf b;
    headbuf_mem(&b, count, sizeof count);
    hb_u64(&b, rate.count);
    int cn = (int)b.len;
    headbuf_mem(&b, window, sizeof window);
    hb_u64(&b, rate.window_ms);
    int wn = (int)b.len;
    const char *argv[] = {p->key, count, window};
    size_t lens[] = {keylen, (size_t)cn, (size_t)wn};
    p->call = redis_eval(l->redis, 1, 3, argv, lens, redis_answer, p);
    if (!p->call) {
        *v = decide_fallback(conf, &rate, p->key, keylen, res, "Redis unavailable");
        free(p);
        return 1;
    }
    p->prev = NULL;
    p->next = l->pendings;
    if (l->pendings)
        l->pendings->prev = p;
    l->pendings = p;
    if (pending)
        *pending = p;
    return 0;
}

void limiter_cancel(struct limiter_pending *p)
{
    if (!p)
        return;
    redis_call_cancel(p->call);
    pending_unlink(p);
    free(p);
}
