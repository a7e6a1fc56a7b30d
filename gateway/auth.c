/*
 * auth: the credential of one request turned into a verified identity or
 * a refusal (see auth.h). The order of the checks is the order of the
 * answers a client can learn from: no credential, then the credential
 * itself (malformed, forged, expired, unknown, revoked), and only for a
 * proven caller the route's rules (API keys forbidden, the organization it
 * asks for, the scopes). A caller who cannot prove who it is never learns
 * anything about the route's rules.
 */
#include "auth.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <openssl/evp.h>

#include "redis.h"

#define AUTH_JWT_CACHE 4096    /* verified tokens per worker (~1.2 KiB each, as used) */
#define AUTH_KEY_CACHE 4096    /* key records per worker */
#define AUTH_HS_SECRET_MAX 512 /* bytes of an HS256 secret */
#define AUTH_ID_SLOTS 512      /* key -> id, per worker, direct-mapped */
#define AUTH_ID_KEY_MAX 96     /* longer keys are hashed every time */

/* A key's id, remembered: callers repeat their keys, and an HMAC per
 * request is most of what a key costs once its record is cached. Process
 * memory only, like the limiter's token hashes; cleared with the secret. */
struct id_slot {
    uint8_t len;
    char key[AUTH_ID_KEY_MAX];
    char id[APIKEY_ID_LEN + 1];
};

struct auth_keys {
    uint64_t serial;           /* unique in the process: a worker's caches follow it */
    struct jwks *jwks;         /* jwks_file's keys; NULL none */
    struct jwks *hs;           /* the HS256 secret as a one-key set; NULL none */
    struct apikey_file *file;  /* keys_file; NULL none */
    struct jwt_policy pol;     /* for jwks: every algorithm but HS256 */
    struct jwt_policy hs_pol;  /* for hs: HS256 only */
    const struct conf *conf;
};

struct auth {
    struct jwt_cache *jwt;
    struct apikey_cache *keys;
    struct apikey_hasher *hasher;
    uint64_t keys_serial;      /* the generation the key cache and hasher were made for */
    LIST_HEAD(, auth_pending) pendings; /* calloc'd: empty */
    struct id_slot ids[AUTH_ID_SLOTS];
};

struct auth_pending {
    struct auth *a;
    LIST_ENTRY(auth_pending) link;    /* in a->pendings */
    struct redis_call *call;
    auth_cb cb;
    void *arg;
    struct auth_query q;       /* the generation outlives the request that waits */
    char org_asked[APIKEY_ORG_MAX];
    bool org_asked_set;
    bool org_asked_too_long;
    uint64_t ttl_ms;
    char id[APIKEY_ID_LEN + 1];
};

static atomic_uint_fast64_t keys_serials;

static uint64_t now_ms_wall(void);

const char *auth_outcome_str(enum auth_outcome o)
{
    switch (o) {
    case AUTH_PASS:
        return "pass";
    case AUTH_MISSING:
        return "no credential";
    case AUTH_TOKEN_INVALID:
        return "token invalid";
    case AUTH_TOKEN_EXPIRED:
        return "expired";
    case AUTH_KEY_INVALID:
        return "key invalid";
    case AUTH_ORG_MISMATCH:
        return "organization mismatch";
    case AUTH_KEYS_FORBIDDEN:
        return "API keys forbidden";
    case AUTH_SCOPE_MISSING:
        return "scope missing";
    case AUTH_UNAVAILABLE:
        return "key store unavailable";
    }
    return "?";
}

bool auth_outcome_is_failure(enum auth_outcome o)
{
    /* Not AUTH_MISSING: sending nothing guesses nothing, and a client that
     * tries without a credential first (an RFC 7235 challenge) is no attacker. */
    return o == AUTH_TOKEN_INVALID || o == AUTH_TOKEN_EXPIRED || o == AUTH_KEY_INVALID;
}

/* ---- the generation's keys ---------------------------------------------------------- */

/* SECRET as the one key of a JWK set, {"keys":[{"kty":"oct","alg":"HS256","k":...}]}. */
static struct jwks *hs_set(const unsigned char *secret, size_t len, const char *path, char *err,
                           size_t errlen)
{
    char b64[(AUTH_HS_SECRET_MAX + 2) / 3 * 4 + 1];
    int n = EVP_EncodeBlock((unsigned char *)b64, secret, (int)len);
    if (n < 0)
        return NULL;
    while (n > 0 && b64[n - 1] == '=')
        n--;
    for (int i = 0; i < n; i++)
        b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    char json[sizeof b64 + 96];
    int jl = snprintf(json, sizeof json, "{\"keys\":[{\"kty\":\"oct\",\"alg\":\"HS256\",\"k\":\"%.*s\"}]}",
                      n, b64);
    char why[256];
    struct jwks *ks = jl > 0 && (size_t)jl < sizeof json
                          ? jwks_parse(json, (size_t)jl, true, why, sizeof why)
                          : NULL;
    explicit_bzero(b64, sizeof b64);
    explicit_bzero(json, sizeof json);
    if (!ks)
        snprintf(err, errlen, "%s: not a usable HS256 secret", path);
    return ks;
}

/* The first line of PATH (CR/LF removed) as the HS256 secret. */
static struct jwks *load_hs(const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "re");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    unsigned char buf[AUTH_HS_SECRET_MAX + 2];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    size_t len = 0;
    while (len < n && buf[len] != '\n')
        len++;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    struct jwks *ks = NULL;
    if (len < 32 || len > AUTH_HS_SECRET_MAX)
        snprintf(err, errlen, "%s: an HS256 secret is 32 to %d bytes on the first line", path,
                 AUTH_HS_SECRET_MAX);
    else
        ks = hs_set(buf, len, path, err, errlen);
    explicit_bzero(buf, sizeof buf);
    return ks;
}

struct auth_keys *auth_keys_new(const struct conf *conf, char *err, size_t errlen)
{
    struct auth_keys *k = calloc(1, sizeof *k);
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    k->serial = atomic_fetch_add(&keys_serials, 1) + 1;
    k->conf = conf;
    if (!conf->auth_set)
        return k;
    if (conf->auth_jwks_file[0] &&
        !(k->jwks = jwks_load_file(conf->auth_jwks_file, false, err, errlen)))
        goto fail;
    if (conf->auth_hs256_secret_file[0] &&
        !(k->hs = load_hs(conf->auth_hs256_secret_file, err, errlen)))
        goto fail;
    if (conf->auth_keys_file[0] && !(k->file = apikey_file_load(conf->auth_keys_file, err, errlen)))
        goto fail;
    struct jwt_policy pol = {
        .issuer = conf->auth_issuer[0] ? conf->auth_issuer : NULL,
        .audience = conf->auth_audience[0] ? conf->auth_audience : NULL,
        .leeway_s = conf->auth_leeway_ms / 1000,
        .subject_claim = conf->auth_subject_claim[0] ? conf->auth_subject_claim : NULL,
        .org_claim = conf->auth_org_claim[0] ? conf->auth_org_claim : NULL,
        .plan_claim = conf->auth_plan_claim[0] ? conf->auth_plan_claim : NULL,
    };
    k->pol = pol;
    k->pol.algs = (JWT_ALG_BIT(JWT_ALG_COUNT) - 1) & ~JWT_ALG_BIT(JWT_ALG_HS256);
    k->hs_pol = pol;
    k->hs_pol.algs = JWT_ALG_BIT(JWT_ALG_HS256);
    return k;
fail:
    auth_keys_free(k);
    return NULL;
}

void auth_keys_free(struct auth_keys *k)
{
    if (!k)
        return;
    jwks_free(k->jwks);
    jwks_free(k->hs);
    apikey_file_free(k->file);
    free(k);
}

/* ---- the worker's state ------------------------------------------------------------- */

struct auth *auth_new(void)
{
    struct auth *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->jwt = jwt_cache_new(AUTH_JWT_CACHE, 0);
    a->keys = apikey_cache_new(AUTH_KEY_CACHE);
    if (!a->jwt || !a->keys) {
        auth_free(a);
        return NULL;
    }
    return a;
}

static void pending_unlink(struct auth_pending *p)
{
    LIST_REMOVE(p, link);
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    explicit_bzero(a->ids, sizeof a->ids);
    while (!LIST_EMPTY(&a->pendings)) {
        struct auth_pending *p = LIST_FIRST(&a->pendings);
        redis_call_cancel(p->call);
        pending_unlink(p);
        free(p);
    }
    jwt_cache_free(a->jwt);
    apikey_cache_free(a->keys);
    apikey_hasher_free(a->hasher);
    free(a);
}

void auth_cancel(struct auth_pending *p)
{
    if (!p)
        return;
    redis_call_cancel(p->call);
    pending_unlink(p);
    free(p);
}

/* A new generation may bring another secret, keys file or TTL: start over. */
static bool follow_generation(struct auth *a, const struct auth_query *q)
{
    if (a->keys_serial == q->keys->serial && a->hasher)
        return true;
    apikey_cache_clear(a->keys);
    explicit_bzero(a->ids, sizeof a->ids);
    apikey_hasher_free(a->hasher);
    const struct conf *c = q->conf;
    a->hasher = apikey_hasher_new((const unsigned char *)c->hash_secret,
                                  strnlen(c->hash_secret, sizeof c->hash_secret));
    a->keys_serial = q->keys->serial;
    return a->hasher != NULL;
}

/* ---- the route's rules, for a proven caller ------------------------------------------ */

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/*
 * Is NEED[0..n) one of SCOPES' tokens? Spaces separate them, and only
 * spaces: a token's "scope" claim "x,tasks:write" is one scope (RFC 6749
 * allows the comma in one), and a key's record scopes were turned from
 * "a,b" into "a b" (its tokens hold no comma).
 */
static bool has_scope(const char *scopes, const char *need, size_t n)
{
    const char *p = scopes;
    while (*p) {
        size_t k = strcspn(p, " ");
        if (k == n && memcmp(p, need, n) == 0)
            return true;
        p += k;
        while (*p == ' ')
            p++;
    }
    return false;
}

static enum auth_outcome route_rules(const struct auth_query *q, const char *org_asked,
                                     size_t org_asked_len, bool org_asked_set,
                                     struct auth_result *out)
{
    const struct conf_route *r = q->route;
    const struct auth_identity *id = &out->id;
    if (r->forbid_api_keys && id->kind == AUTH_KIND_API_KEY)
        return AUTH_KEYS_FORBIDDEN;
    /* A key is bound to its org; a token only when it carries one (a user
     * session may switch between the orgs it belongs to, upstream decides). */
    if (org_asked_set && (id->kind == AUTH_KIND_API_KEY || id->org[0]) &&
        (strlen(id->org) != org_asked_len || memcmp(id->org, org_asked, org_asked_len) != 0))
        return AUTH_ORG_MISMATCH;
    const char *s = r->require_scope;
    while (*s) {
        while (*s == ' ')
            s++;
        size_t n = strcspn(s, " ");
        if (n == 0)
            break;
        if (!has_scope(id->scopes, s, n)) {
            size_t m = n < sizeof out->missing_scope - 1 ? n : sizeof out->missing_scope - 1;
            memcpy(out->missing_scope, s, m);
            out->missing_scope[m] = '\0';
            return AUTH_SCOPE_MISSING;
        }
        s += n;
    }
    return AUTH_PASS;
}

/* ---- JWT ---------------------------------------------------------------------------- */

static enum auth_outcome check_jwt(struct auth *a, const struct auth_query *q,
                                   struct auth_result *out)
{
    const struct auth_keys *k = q->keys;
    uint64_t now_s = now_ms_wall() / 1000;
    struct jwt_claims cl;
    enum jwt_result r = JWT_UNKNOWN_KEY;
    if (k->jwks)
        r = jwt_check(a->jwt, k->jwks, &k->pol, q->token, q->token_len, now_s, &cl);
    /* An HS256 token is refused by the public keys' policy: then the secret decides. */
    if (k->hs && (!k->jwks || r == JWT_ALG_REFUSED || r == JWT_UNKNOWN_KEY))
        r = jwt_check(a->jwt, k->hs, &k->hs_pol, q->token, q->token_len, now_s, &cl);
    out->reason = jwt_result_str(r);
    if (r == JWT_EXPIRED)
        return AUTH_TOKEN_EXPIRED;
    if (r != JWT_OK)
        return AUTH_TOKEN_INVALID;
    /* "key:" names API keys upstream and in the limits: a token cannot be one */
    if (strncmp(cl.sub, "key:", 4) == 0) {
        out->reason = "subject in the API keys' namespace";
        return AUTH_TOKEN_INVALID;
    }
    struct auth_identity *id = &out->id;
    id->kind = AUTH_KIND_JWT;
    copy_str(id->subject, sizeof id->subject, cl.sub);
    copy_str(id->org, sizeof id->org, cl.org);
    copy_str(id->scopes, sizeof id->scopes, cl.scopes);
    copy_str(id->plan, sizeof id->plan, cl.plan);
    return AUTH_PASS;
}

/* ---- API keys ------------------------------------------------------------------------ */

/* The outcome of a key's record; an active one fills the identity. */
static enum auth_outcome from_record(const struct apikey_record *rec, struct auth_result *out)
{
    out->reason = apikey_status_str(rec->status);
    switch (rec->status) {
    case APIKEY_ACTIVE:
        break;
    case APIKEY_EXPIRED:
        return AUTH_TOKEN_EXPIRED;
    case APIKEY_UNDECIDED:
        return AUTH_UNAVAILABLE;
    case APIKEY_REVOKED:
    case APIKEY_UNKNOWN:
    case APIKEY_MALFORMED:
    case APIKEY_BAD_RECORD:
    default:
        return AUTH_KEY_INVALID;
    }
    struct auth_identity *id = &out->id;
    id->kind = AUTH_KIND_API_KEY;
    _Static_assert(sizeof id->subject >= 4 + sizeof rec->id, "key: and an id fit");
    memcpy(id->subject, "key:", 4);
    memcpy(id->subject + 4, rec->id, sizeof rec->id);  /* NUL-terminated: 64 hex digits */
    copy_str(id->org, sizeof id->org, rec->org);
    copy_str(id->plan, sizeof id->plan, rec->plan);
    copy_str(id->scopes, sizeof id->scopes, rec->scopes);
    for (char *p = id->scopes; *p; p++)
        if (*p == ',')
            *p = ' ';  /* the same form as a token's scopes */
    return AUTH_PASS;
}

/* Wall-clock time for expiry: tokens and records carry calendar times. The
 * coarse clock (a tick behind at most) is a memory read, not an rdtsc. */
static uint64_t now_ms_wall(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) != 0)
        clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void finish(const struct auth_query *q, const char *org_asked, size_t org_asked_len,
                   bool org_asked_set, struct auth_result *out)
{
    if (out->outcome == AUTH_PASS)
        out->outcome = route_rules(q, org_asked, org_asked_len, org_asked_set, out);
}

static void redis_answer(const redisReply *reply, void *arg)
{
    struct auth_pending *p = arg;
    struct auth *a = p->a;
    struct apikey_record rec;
    uint64_t now = now_ms_wall();
    enum apikey_status st = apikey_from_reply(p->id, reply, now / 1000, &rec);
    /* A record that exists is cached even when expired: the expiry is
     * evaluated again at every hit. No answer is never cached. */
    if (st != APIKEY_UNDECIDED && a->keys_serial == p->q.keys->serial)
        apikey_cache_put(a->keys, p->id, &rec, now, p->ttl_ms);
    struct auth_result res;
    memset(&res, 0, sizeof res);
    res.tried = AUTH_KIND_API_KEY;
    res.outcome = from_record(&rec, &res);
    if (p->org_asked_too_long && res.outcome == AUTH_PASS)
        res.outcome = AUTH_ORG_MISMATCH;
    else
        finish(&p->q, p->org_asked, strlen(p->org_asked), p->org_asked_set, &res);
    auth_cb cb = p->cb;
    void *cbarg = p->arg;
    pending_unlink(p);
    free(p);
    cb(&res, cbarg);
}

/* KEY's id, from the slot cache or the HMAC. */
static bool key_id(struct auth *a, const char *key, size_t len, char out[APIKEY_ID_LEN + 1])
{
    if (len > AUTH_ID_KEY_MAX)
        return apikey_hasher_id(a->hasher, key, len, out);
    uint32_t h = 2166136261u;  /* FNV-1a: only picks the slot */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 16777619u;
    struct id_slot *s = &a->ids[h % AUTH_ID_SLOTS];
    if (s->len == len && memcmp(s->key, key, len) == 0) {
        memcpy(out, s->id, sizeof s->id);
        return true;
    }
    if (!apikey_hasher_id(a->hasher, key, len, out))
        return false;
    s->len = (uint8_t)len;
    memcpy(s->key, key, len);
    memcpy(s->id, out, sizeof s->id);
    return true;
}

static int check_key(struct auth *a, struct redis *redis, const struct auth_query *q,
                     struct auth_result *out, auth_cb cb, void *arg,
                     struct auth_pending **pending)
{
    const struct conf *c = q->conf;
    if (!apikey_well_formed(q->token, q->token_len, c->auth_key_prefix_required)) {
        out->reason = "malformed";
        out->outcome = AUTH_KEY_INVALID;
        return 1;
    }
    char id[APIKEY_ID_LEN + 1];
    if (!follow_generation(a, q) || !key_id(a, q->token, q->token_len, id)) {
        out->reason = "cannot hash the key";
        out->outcome = AUTH_UNAVAILABLE;
        return 1;
    }
    uint64_t now = now_ms_wall();
    struct apikey_record rec;
    if (q->keys->file) {  /* an O(1) table in memory: nothing to cache */
        (void)apikey_file_find(q->keys->file, id, now / 1000, &rec);
        out->outcome = from_record(&rec, out);
        return 1;
    }
    if (apikey_cache_get(a->keys, id, now, &rec)) {
        out->outcome = from_record(&rec, out);
        return 1;
    }
    out->outcome = AUTH_UNAVAILABLE;
    out->reason = "no key store";
    if (!redis || !cb)
        return 1;
    struct auth_pending *p = calloc(1, sizeof *p);
    if (!p) {
        out->reason = "out of memory";
        return 1;
    }
    char rkey[CONF_NAME_MAX + APIKEY_ID_LEN + 16];
    size_t rlen = apikey_redis_key(c->redis_key_prefix, id, rkey, sizeof rkey);
    const char *argv[] = {"HGETALL", rkey};
    const size_t lens[] = {7, rlen};
    p->call = rlen ? redis_command(redis, 2, argv, lens, redis_answer, p) : NULL;
    if (!p->call) {
        free(p);
        out->reason = "Redis unavailable";
        return 1;
    }
    p->a = a;
    p->cb = cb;
    p->arg = arg;
    p->q = *q;
    p->q.token = NULL;  /* never kept */
    p->q.token_len = 0;
    p->ttl_ms = c->auth_key_cache_ttl_ms;
    memcpy(p->id, id, sizeof id);
    if (q->org_asked) {
        p->org_asked_set = true;
        if (q->org_asked_len < sizeof p->org_asked)
            memcpy(p->org_asked, q->org_asked, q->org_asked_len);
        else
            p->org_asked_too_long = true;  /* no org is that long: a mismatch */
    }
    LIST_INSERT_HEAD(&a->pendings, p, link);
    if (pending)
        *pending = p;
    return 0;
}

/* ---- the decision -------------------------------------------------------------------- */

/* JWT or API key, for a route that takes both: a key carrying the required
 * prefix is a key; otherwise the three dot-separated parts of a JWS. */
static bool looks_like_jwt(const struct conf *c, const char *t, size_t n)
{
    size_t pl = strlen(c->auth_key_prefix_required);
    if (pl && n > pl && memcmp(t, c->auth_key_prefix_required, pl) == 0)
        return false;
    size_t dots = 0;
    for (size_t i = 0; i < n; i++)
        dots += t[i] == '.';
    return dots == 2;
}

int auth_check(struct auth *a, struct redis *redis, const struct auth_query *q,
               struct auth_result *out, auth_cb cb, void *arg, struct auth_pending **pending)
{
    memset(out, 0, sizeof *out);
    if (pending)
        *pending = NULL;
    if (!q->token || q->token_len == 0) {
        out->outcome = AUTH_MISSING;
        out->reason = "no credential";
        return 1;
    }
    enum conf_auth mode = q->route->auth;
    bool jwt = mode == CONF_AUTH_JWT ||
               (mode == CONF_AUTH_JWT_OR_API_KEY && looks_like_jwt(q->conf, q->token, q->token_len));
    out->tried = jwt ? AUTH_KIND_JWT : AUTH_KIND_API_KEY;
    if (jwt) {
        out->outcome = check_jwt(a, q, out);
    } else {
        int done = check_key(a, redis, q, out, cb, arg, pending);
        if (!done)
            return 0;
    }
    finish(q, q->org_asked, q->org_asked_len, q->org_asked != NULL, out);
    return 1;
}

size_t auth_limit_id(const struct auth_identity *id, char *out, size_t cap)
{
    if (id->kind == AUTH_KIND_NONE)
        return 0;
    size_t pre = id->kind == AUTH_KIND_JWT ? 4 : 0;  /* a key's subject has its "key:" */
    size_t n = strnlen(id->subject, sizeof id->subject);
    if (pre + n >= cap)
        return 0;
    memcpy(out, "jwt:", pre);
    memcpy(out + pre, id->subject, n);
    out[pre + n] = '\0';
    return pre + n;
}

const struct conf_plan *auth_plan(const struct conf *conf, const struct auth_identity *id)
{
    if (!id->plan[0])
        return NULL;
    for (size_t i = 0; i < conf->n_plans; i++)
        if (strcmp(conf->plans[i].name, id->plan) == 0)
            return &conf->plans[i];
    return NULL;
}
