/*
 * limiter: the rate-limit policy of one worker. Holds every request to every
 * limit that applies to it: the caller's address always (IPv6 by its
 * network prefix), and its token too when it sends one (a keyed HMAC-SHA256
 * of the token, never the token). All of them are decided together, with
 * one EVALSHA of the GCRA script over several keys in Redis or under one
 * lock in the process-wide local store (no [redis], or on_error = local):
 * the request passes only if every limit allows, and only then is any
 * budget spent. The tightest limit names the 429 and the headers.
 *
 * Process-wide state (shared by every worker's limiter, under one mutex):
 * the local store, so N workers do not grant N times the limit; the random
 * hash secret used when hash_secret is unset, so every worker names a caller
 * by the same key; and the once-a-second "undecided" warning.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
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
#include "clock.h"
#include "headbuf.h"
#include "log.h"
#include "redis.h"

#define LIMITER_LOCAL_KEYS 100000   /* bound of the in-process store */
#define LIMITER_KEY_MAX 320
#define LIMITER_SECRET_LEN 32

#define LIMITER_MAX_LIMITS 3         /* per IP, per token, per organization */
_Static_assert(LIMITER_MAX_LIMITS <= RL_MAX_LIMITS, "the local store checks them all at once");

/*
 * GCRA in Redis, over every limit of one request. KEYS[i] = the key of limit
 * i; ARGV[2i-1], ARGV[2i] = its count and window in ms. Every key is read
 * first; only when all of them conform is each one's new tat written, so a
 * request one limit refuses spends nothing of another's budget, and two
 * gateways racing for the last slot of either cannot both get it. The clock
 * is Redis' own (TIME), so gateways on machines with different clocks share
 * one timeline; Redis >= 5 replicates scripts by effects, which makes TIME
 * before a write legal (replicate_commands is called for 3.2-4.x). The
 * arithmetic is rl_gcra's, in microseconds, exact in doubles below 2^53.
 * Returns one string of one integer per key, space-separated: d if that
 * limit allows, -1 - d if not, where d = max(tat, now) - now before this
 * request; the gateway replays rl_gcra from each d to fill the headers, so
 * there is one source of truth for Remaining/Reset/Retry-After. One string
 * rather than an array: hiredis builds one reply object per request.
 * All keys must live on one node: with Redis Cluster they will need one hash
 * tag (the client does not follow MOVED yet).
 */
static const char limiter_lua[] =
    "if redis.replicate_commands then pcall(redis.replicate_commands) end\n"
    "local n = #KEYS\n"
    "if n < 1 or #ARGV ~= 2 * n then return redis.error_reply('envelopd: bad arguments') end\n"
    "local clock = redis.call('TIME')\n"
    "local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])\n"
    "local ds, ts, out = {}, {}, {}\n"
    "local pass = true\n"
    "for i = 1, n do\n"
    "  local count = tonumber(ARGV[2 * i - 1])\n"
    "  local window = tonumber(ARGV[2 * i])\n"
    "  if window > 316224000000 then window = 316224000000 end\n"
    "  local t = math.floor(window * 1000 / count)\n"
    "  if t < 1 then t = 1 end\n"
    "  local tau = (count - 1) * t\n"
    "  local v = redis.call('GET', KEYS[i])\n"
    "  local d = 0\n"
    "  if v then d = (tonumber(v) or now) - now end\n"
    "  if d < 0 then d = 0 end\n"
    "  if d > tau + t then d = tau + t end\n"
    "  ds[i] = d\n"
    "  ts[i] = t\n"
    "  if d > tau then\n"
    "    pass = false\n"
    "    out[i] = string.format('%d', -1 - d)\n"
    "  else\n"
    "    out[i] = string.format('%d', d)\n"
    "  end\n"
    "end\n"
    "if pass then\n"
    "  for i = 1, n do\n"
    "    local nd = ds[i] + ts[i]\n"
    "    redis.call('SET', KEYS[i], string.format('%d', now + nd), 'PX', math.floor(nd / 1000) + 1)\n"
    "  end\n"
    "end\n"
    "return table.concat(out, ' ')\n";

/* The limits one request is held to, in a fixed order: per IP, per token, per org. */
struct limit_set {
    size_t n;
    struct conf_rate rate[LIMITER_MAX_LIMITS];
    size_t keylen[LIMITER_MAX_LIMITS];
    char key[LIMITER_MAX_LIMITS][LIMITER_KEY_MAX];
};

struct limiter_pending {
    struct limiter *l;
    struct limiter_pending *prev, *next;
    struct redis_call *call;
    limiter_cb cb;
    void *arg;
    struct limit_set set;
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
    uint64_t now = clock_ms_shared();
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

/* Every limit of SET from the process-wide store, all or nothing. */
static enum limiter_verdict decide_local(const struct limit_set *set, struct rl_result *res)
{
    struct rl_limit lims[LIMITER_MAX_LIMITS];
    struct rl_result out[LIMITER_MAX_LIMITS];
    for (size_t i = 0; i < set->n; i++) {
        lims[i].key = set->key[i];
        lims[i].keylen = set->keylen[i];
        lims[i].rate = set->rate[i];
    }
    (void)rl_local_check_all(shared.store, lims, set->n, clock_ms_shared(), out);
    *res = out[rl_tightest(out, set->n)];
    return res->allowed ? LIMITER_ALLOW : LIMITER_LIMITED;
}

/* The verdict when Redis cannot answer (or is not configured). */
static enum limiter_verdict decide_fallback(const struct conf *conf, const struct limit_set *set,
                                            struct rl_result *res, const char *why)
{
    memset(res, 0, sizeof(*res));
    if (!conf->redis_enabled)
        return decide_local(set, res);
    note_undecided(conf, why);
    switch (conf->redis_on_error) {
    case CONF_ON_ERROR_DENY: {
        /* A 503 carries no rate headers; these name the smallest limit. */
        const struct conf_rate *rate = &set->rate[0];
        for (size_t i = 1; i < set->n; i++)
            if (set->rate[i].count < rate->count)
                rate = &set->rate[i];
        res->limit = (long)rate->count;
        res->window_s = (long)(rate->window_ms / 1000 + (rate->window_ms % 1000 != 0));
        res->retry_after_s = 1;
        return LIMITER_UNAVAILABLE;
    }
    case CONF_ON_ERROR_LOCAL:
        return decide_local(set, res);
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

/*
 * The id of a caller by address: "ip:" and the canonical text of the
 * address. An IPv6 address is masked to its [limits] ipv6_prefix network and
 * gets "/len", since one subscriber usually holds a whole /64 and could
 * otherwise take a fresh budget from each of its 2^64 addresses; an
 * IPv4-mapped IPv6 address is that IPv4 address. "ip:-" when unknown;
 * "iph:" and a keyed hash for text that is no address (never stored raw).
 */
static bool ip_id(const struct conf *conf, const char *ip, char *out, size_t cap, size_t *len)
{
    struct in_addr a4;
    struct in6_addr a6;
    char text[INET6_ADDRSTRLEN];
    struct headbuf b;
    headbuf_mem(&b, out, cap);
    size_t iplen = ip ? strnlen(ip, 64) : 0;
    if (iplen == 0) {
        HB_LIT(&b, "ip:-");
    } else if (iplen < 64 && inet_pton(AF_INET, ip, &a4) == 1) {
        /* inet_pton takes only the dotted-quad form, leading zeros refused:
         * the text is already canonical (no inet_ntop, a printf, per request) */
        HB_LIT(&b, "ip:");
        hb_add(&b, ip, iplen);
    } else if (iplen < 64 && inet_pton(AF_INET6, ip, &a6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&a6)) {
            memcpy(&a4, &a6.s6_addr[12], sizeof a4);
            if (!inet_ntop(AF_INET, &a4, text, sizeof text))
                return false;
            HB_LIT(&b, "ip:");
            hb_str(&b, text);
        } else {
            /* 0 only in a conf not built by conf_load (tests): the default */
            unsigned bits = conf->ipv6_prefix >= 1 && conf->ipv6_prefix <= 128
                                ? conf->ipv6_prefix : 64;
            for (unsigned i = 0; i < 16; i++) {
                unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * i : 0;
                a6.s6_addr[i] &= (uint8_t)(0xff00u >> keep);
            }
            if (!inet_ntop(AF_INET6, &a6, text, sizeof text))
                return false;
            HB_LIT(&b, "ip:");
            hb_str(&b, text);
            HB_LIT(&b, "/");
            hb_u64(&b, bits);
        }
    } else {
        char h[33];
        if (!keyed_hash(conf, ip, iplen, h))
            return false;
        HB_LIT(&b, "iph:");
        hb_str(&b, h);
    }
    if (b.full)
        return false;
    *len = b.len;
    return true;
}

/*
 * prefix "{" id "}:" route ":" count "/" window_ms, NUL-terminated. The id
 * is the token's keyed hash (never the token), or the caller's address
 * (ip_id). The hash tag keeps the keys of one id on one Redis Cluster slot;
 * one request's IP and token keys differ in it (see limiter_lua).
 */
static bool build_key(const struct conf *conf, const struct conf_route *route_conf,
                      const char *id, size_t idlen, const struct conf_rate *rate, char *out,
                      size_t cap, size_t *len)
{
    const char *prefix = conf->redis_enabled ? conf->redis_key_prefix : "";
    const char *route = route_conf ? route_conf->name : "default";
    struct headbuf b;  /* the key is built as a head would be: bounded, no printf */
    headbuf_mem(&b, out, cap - 1);
    hb_add(&b, prefix, strnlen(prefix, CONF_NAME_MAX));
    HB_LIT(&b, "{");
    hb_add(&b, id, idlen);
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

static bool rate_applies(const struct conf_rate *r)
{
    return r->count > 0 && r->window_ms > 0;  /* not "off", not unset */
}

/* The limits Q is held to, into SET: per IP, then per token if it has one,
 * then per organization if it has a verified one. */
static bool build_set(struct limiter *l, const struct limiter_query *q,
                      const struct conf_rate *ip_rate, const struct conf_rate *tok_rate,
                      const struct conf_rate *org_rate, struct limit_set *set)
{
    const struct conf *conf = l->conf;
    char id[80];
    size_t idlen = 0;
    set->n = 0;
    if (ip_rate) {
        size_t i = set->n++;
        set->rate[i] = *ip_rate;
        if (!ip_id(conf, q->client_ip, id, sizeof id, &idlen) ||
            !build_key(conf, q->route, id, idlen, ip_rate, set->key[i], LIMITER_KEY_MAX,
                       &set->keylen[i]))
            return false;
    }
    if (tok_rate) {
        size_t i = set->n++;
        set->rate[i] = *tok_rate;
        if (!token_hash(l, q->token, q->token_len, id) ||
            !build_key(conf, q->route, id, 32, tok_rate, set->key[i], LIMITER_KEY_MAX,
                       &set->keylen[i]))
            return false;
    }
    if (org_rate) {
        /* "org:" keeps an organization apart from a token of the same text */
        char text[8 + 128];
        size_t n = strnlen(q->org, 128);
        memcpy(text, "org:", 4);
        memcpy(text + 4, q->org, n);
        size_t i = set->n++;
        set->rate[i] = *org_rate;
        if (!keyed_hash(conf, text, 4 + n, id) ||
            !build_key(conf, q->route, id, 32, org_rate, set->key[i], LIMITER_KEY_MAX,
                       &set->keylen[i]))
            return false;
    }
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

/*
 * Is this the script's reply for N limits: N integers, one space apart,
 * each d (that limit allows) or -1 - d (it does not)?
 */
static bool parse_reply(const redisReply *reply, size_t n, bool *allowed, uint64_t *d,
                        const char **why)
{
    if (!reply) {
        *why = "timeout or connection lost";
        return false;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        *why = reply->str ? reply->str : "error reply";  /* never names a key */
        return false;
    }
    *why = "unexpected reply";
    if (reply->type != REDIS_REPLY_STRING || !reply->str)
        return false;
    const char *s = reply->str, *end = reply->str + reply->len;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (s == end || *s++ != ' '))
            return false;
        bool neg = s < end && *s == '-';
        s += neg;
        uint64_t x = 0;
        size_t digits = 0;
        for (; s < end && *s >= '0' && *s <= '9'; s++) {
            if (++digits > 18)  /* d is below 2^53 */
                return false;
            x = x * 10 + (uint64_t)(*s - '0');
        }
        if (digits == 0 || (neg && x == 0))
            return false;
        allowed[i] = !neg;
        d[i] = neg ? x - 1 : x;
    }
    return s == end;
}

/*
 * Replay the script's step for each limit from its d: the same formulas give
 * the same verdicts and fill each limit's headers; the tightest speaks.
 */
static enum limiter_verdict replay(const struct limit_set *set, const bool *allowed,
                                   const uint64_t *d, struct rl_result *res)
{
    struct rl_result out[LIMITER_MAX_LIMITS];
    for (size_t i = 0; i < set->n; i++) {
        uint64_t tat = d[i];
        rl_gcra(&set->rate[i], 0, &tat, &out[i]);
        if (out[i].allowed != allowed[i]) {
            LOG_AT(CONF_LOG_ERROR, "ratelimit_mismatch", NULL, NULL,
                   "Redis script and gateway disagree (d=%llu); following Redis",
                   (unsigned long long)d[i]);
            out[i].allowed = allowed[i];
            if (!allowed[i]) {
                out[i].remaining = 0;
                if (out[i].retry_after_s < 1)
                    out[i].retry_after_s = 1;
            }
        }
    }
    *res = out[rl_tightest(out, set->n)];
    return res->allowed ? LIMITER_ALLOW : LIMITER_LIMITED;
}

static void redis_answer(const redisReply *reply, void *arg)
{
    struct limiter_pending *p = arg;
    struct limiter *l = p->l;
    struct rl_result res;
    enum limiter_verdict v;
    bool allowed[LIMITER_MAX_LIMITS];
    uint64_t d[LIMITER_MAX_LIMITS];
    const char *why = NULL;
    if (parse_reply(reply, p->set.n, allowed, d, &why))
        v = replay(&p->set, allowed, d, &res);
    else
        v = decide_fallback(l->conf, &p->set, &res, why);
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
    const struct conf_rate *ip_rate =
        route && conf_rate_set(&route->per_ip) ? &route->per_ip : &conf->per_ip;
    const struct conf_rate *tok_rate =
        q->token_rate && conf_rate_set(q->token_rate) ? q->token_rate
        : route && conf_rate_set(&route->per_token)   ? &route->per_token
                                                      : &conf->per_token;
    const struct conf_rate *org_rate =
        q->org_rate && conf_rate_set(q->org_rate) ? q->org_rate : &conf->per_org;
    if (!rate_applies(ip_rate))
        ip_rate = NULL;
    if (!q->token || q->token_len == 0 || !rate_applies(tok_rate))
        tok_rate = NULL;
    if (!q->org || !q->org[0] || !rate_applies(org_rate))
        org_rate = NULL;

    if (pending)
        *pending = NULL;
    memset(res, 0, sizeof(*res));
    if (!ip_rate && !tok_rate && !org_rate) {  /* "off" */
        *v = LIMITER_NONE;
        return 1;
    }

    /* Only a question for Redis outlives this call; the others decide from
     * a set on the stack. */
    bool remote = conf->redis_enabled && l->redis && cb;
    struct limiter_pending *p = remote ? malloc(sizeof(*p)) : NULL;
    struct limit_set stack_set;
    struct limit_set *set = p ? &p->set : &stack_set;
    if (!build_set(l, q, ip_rate, tok_rate, org_rate, set)) {
        free(p);
        log_error("ratelimit_key", "cannot derive a rate-limit key; request not limited");
        *v = LIMITER_NONE;
        return 1;
    }

    if (!p) {
        *v = decide_fallback(conf, set, res,
                             !conf->redis_enabled ? NULL : !l->redis ? "Redis not set up"
                             : !cb ? "no callback" : "no memory");
        return 1;
    }

    p->l = l;
    p->cb = cb;
    p->arg = arg;
    /* KEYS[1..n], then count and window of each */
    char nums[2 * LIMITER_MAX_LIMITS][24];
    const char *argv[3 * LIMITER_MAX_LIMITS];
    size_t lens[3 * LIMITER_MAX_LIMITS];
    size_t n = set->n;
    for (size_t i = 0; i < n; i++) {
        argv[i] = set->key[i];
        lens[i] = set->keylen[i];
        struct headbuf b;
        headbuf_mem(&b, nums[2 * i], sizeof nums[2 * i]);
        hb_u64(&b, set->rate[i].count);
        argv[n + 2 * i] = nums[2 * i];
        lens[n + 2 * i] = b.len;
        headbuf_mem(&b, nums[2 * i + 1], sizeof nums[2 * i + 1]);
        hb_u64(&b, set->rate[i].window_ms);
        argv[n + 2 * i + 1] = nums[2 * i + 1];
        lens[n + 2 * i + 1] = b.len;
    }
    p->call = redis_eval(l->redis, (int)n, (int)(3 * n), argv, lens, redis_answer, p);
    if (!p->call) {
        *v = decide_fallback(conf, set, res, "Redis unavailable");
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

/* The local store's key of CLIENT_IP's failed authentications. */
static bool auth_fail_key(const struct conf *conf, const char *ip, char *out, size_t cap,
                          size_t *len)
{
    char id[80];
    size_t idlen = 0;
    if (!ip_id(conf, ip, id, sizeof id, &idlen) || idlen + 10 > cap)
        return false;
    memcpy(out, "authfail:", 9);
    memcpy(out + 9, id, idlen);
    *len = 9 + idlen;
    return true;
}

bool limiter_auth_blocked(struct limiter *l, const char *client_ip, struct rl_result *res)
{
    const struct conf_rate *rate = &l->conf->per_ip_auth_failures;
    char key[96];
    size_t len = 0;
    memset(res, 0, sizeof *res);
    res->allowed = true;
    if (!rate_applies(rate) || !shared.store || !auth_fail_key(l->conf, client_ip, key, sizeof key, &len))
        return false;
    rl_local_peek(shared.store, key, len, rate, clock_ms_shared(), res);
    return !res->allowed;
}

void limiter_auth_failed(struct limiter *l, const char *client_ip)
{
    const struct conf_rate *rate = &l->conf->per_ip_auth_failures;
    char key[96];
    size_t len = 0;
    struct rl_result res;
    if (rate_applies(rate) && shared.store &&
        auth_fail_key(l->conf, client_ip, key, sizeof key, &len))
        rl_local_check(shared.store, key, len, rate, clock_ms_shared(), &res);
}

void limiter_auth_refund(struct limiter *l, const char *client_ip)
{
    const struct conf_rate *rate = &l->conf->per_ip_auth_failures;
    char key[96];
    size_t len = 0;
    if (rate_applies(rate) && shared.store &&
        auth_fail_key(l->conf, client_ip, key, sizeof key, &len))
        rl_local_refund(shared.store, key, len, rate, clock_ms_shared());
}

struct redis *limiter_redis(struct limiter *l)
{
    return l->redis;
}
