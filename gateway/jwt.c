/*
 * jwt: compact JWS tokens verified with OpenSSL and their claims read with
 * yajl, and the cache of verified tokens; see jwt.h for the decisions.
 * Header and payload are read by one set of yajl callbacks that look only
 * at the top-level members they know (and the strings of an "aud" or
 * "scp" array), writing bounded copies straight into the answer.
 */
#include "jwt.h"

#include <string.h>

#include "utf8.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <yajl/yajl_parse.h>

/* The most bytes a part can decode to: 3/4 of the whole token. */
#define PART_MAX (JWT_MAX_TOKEN / 4 * 3)
#define NUMERIC_DATE_MAX UINT64_C(9007199254740991) /* 2^53 - 1: what every JSON reader keeps */

static const char *const result_names[] = {
    [JWT_OK] = "ok",
    [JWT_MALFORMED] = "malformed",
    [JWT_BAD_SIGNATURE] = "bad signature",
    [JWT_UNKNOWN_KEY] = "unknown key",
    [JWT_ALG_REFUSED] = "algorithm refused",
    [JWT_EXPIRED] = "expired",
    [JWT_NOT_YET_VALID] = "not yet valid",
    [JWT_BAD_ISSUER] = "wrong issuer",
    [JWT_BAD_AUDIENCE] = "wrong audience",
};

const char *jwt_result_str(enum jwt_result r)
{
    return (unsigned)r < sizeof result_names / sizeof result_names[0] ? result_names[r] : "?";
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static bool bytes_are(const char *s, size_t len, const char *want)
{
    return want && strlen(want) == len && memcmp(s, want, len) == 0;
}

/* ---- header and payload JSON ------------------------------------------------------- */

/* What a top-level member is read as; a name may be several (a claim named by conf). */
enum {
    R_ALG = 1 << 0,
    R_KID = 1 << 1,
    R_CRIT = 1 << 2,
    R_EXP = 1 << 3,
    R_NBF = 1 << 4,
    R_ISS = 1 << 5,
    R_AUD = 1 << 6,
    R_SUB = 1 << 7,
    R_ORG = 1 << 8,
    R_PLAN = 1 << 9,
    R_SCOPE = 1 << 10,
    R_SCP = 1 << 11,
};
#define R_ARRAY_OK (R_AUD | R_SCP)

struct jctx {
    bool payload;
    const struct jwt_policy *pol;
    const char *sub_name, *org_name, *plan_name;
    int depth;
    unsigned roles; /* of the top-level member whose value comes next */
    unsigned arr_roles; /* of the array open at depth 2, 0 when none */
    unsigned seen;
    bool bad;
    /* header */
    char alg[16]; /* a longer one is left empty: no algorithm has such a name */
    size_t alg_len;
    char kid[JWKS_KID_MAX];
    size_t kid_len;
    /* payload */
    uint64_t exp, nbf;
    bool iss_match, aud_match;
    char scp[sizeof((struct jwt_claims *)0)->scopes];
    struct jwt_claims *out;
};

static int bad(struct jctx *c)
{
    c->bad = true;
    return 0;
}

static unsigned roles_of(const struct jctx *c, const char *k, size_t len)
{
    if (!c->payload)
        return (bytes_are(k, len, "alg") ? R_ALG : 0) | (bytes_are(k, len, "kid") ? R_KID : 0) |
               (bytes_are(k, len, "crit") ? R_CRIT : 0);
    return (bytes_are(k, len, "exp") ? R_EXP : 0) | (bytes_are(k, len, "nbf") ? R_NBF : 0) |
           (bytes_are(k, len, "iss") ? R_ISS : 0) | (bytes_are(k, len, "aud") ? R_AUD : 0) |
           (bytes_are(k, len, c->sub_name) ? R_SUB : 0) |
           (bytes_are(k, len, c->org_name) ? R_ORG : 0) |
           (bytes_are(k, len, c->plan_name) ? R_PLAN : 0) |
           (bytes_are(k, len, "scope") ? R_SCOPE : 0) | (bytes_are(k, len, "scp") ? R_SCP : 0);
}

/* A NumericDate: digits and an optional fraction, rounded down or (ROUND_UP) up. */
static bool numeric_date(const char *s, size_t len, bool round_up, uint64_t *out)
{
    size_t i = 0;
    uint64_t v = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (NUMERIC_DATE_MAX - d) / 10)
            return false;
        v = v * 10 + d;
        i++;
    }
    if (i == 0)
        return false;
    bool fraction = false;
    if (i < len && s[i] == '.') {
        size_t start = ++i;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
            fraction = fraction || s[i] != '0';
        if (i == start)
            return false;
    }
    if (i != len)
        return false;
    *out = v + (round_up && fraction);
    return true;
}

/* S[0..len) as a C string into DST[CAP]: it must fit and hold no control character. */
static bool copy_text(char *dst, size_t cap, const char *s, size_t len)
{
    if (len >= cap)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return true;
}

/*
 * A claim that becomes an identity (sub, org, plan) into DST[CAP]: what the
 * upstream will read from its header is what the gateway limits and
 * checks. So: not empty, no blank at either end (HTTP strips those: " bob"
 * would be a fresh budget that reads as "bob" upstream), valid UTF-8 (a
 * lone surrogate escape decodes to bytes no header should carry), no
 * control character, C1 included.
 */
static bool copy_claim(char *dst, size_t cap, const char *s, size_t len)
{
    if (len == 0 || len >= cap || s[0] == ' ' || s[0] == '\t' || s[len - 1] == ' ' ||
        s[len - 1] == '\t')
        return false;
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t n = utf8_decode((const unsigned char *)s + i, len - i, &cp);
        if (n == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            return false;
        i += n;
    }
    memcpy(dst, s, len);
    dst[len] = '\0';
    return true;
}

static bool is_scope_char(unsigned char ch)
{
    return ch == 0x21 || (ch >= 0x23 && ch <= 0x5b) || (ch >= 0x5d && ch <= 0x7e);
}

/* The scope tokens of S[0..len) (separated by spaces when SPLIT, else one token)
 * appended to DST[CAP], a space between two. */
static bool add_scopes(char *dst, size_t cap, const char *s, size_t len, bool split)
{
    size_t used = strlen(dst);
    size_t i = 0;
    if (!split && (len == 0 || memchr(s, ' ', len)))
        return false; /* "read write" as one element would be two scopes */
    while (i < len) {
        if (split && s[i] == ' ') {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && s[i] != ' ') {
            if (!is_scope_char((unsigned char)s[i]))
                return false;
            i++;
        }
        size_t n = i - start;
        if (used + (used > 0) + n >= cap)
            return false;
        if (used > 0)
            dst[used++] = ' ';
        memcpy(dst + used, s + start, n);
        used += n;
        dst[used] = '\0';
    }
    return true;
}

/* yajl's number text is not NUL-terminated. */
static bool is_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return len > 0;
}

enum vtype { V_NULL, V_BOOL, V_NUMBER, V_STRING, V_MAP, V_ARRAY };

/* A string or number value for ROLES, a top-level member's (IN_ARRAY: an element of its
 * array). */
static int take(struct jctx *c, unsigned roles, enum vtype t, const char *s, size_t len,
                bool in_array)
{
    const struct jwt_policy *pol = c->pol;
    bool str = t == V_STRING;
    /* an integer subject or org ("sub": 12345) reads as its digits */
    bool text = str || (t == V_NUMBER && !in_array && is_digits(s, len));
    if (roles & R_ALG) {
        if (!str)
            return bad(c);
        if (len < sizeof c->alg) {
            memcpy(c->alg, s, len);
            c->alg_len = len;
        }
    }
    if ((roles & R_KID) && (!str || len == 0 || !copy_text(c->kid, sizeof c->kid, s, len)))
        return bad(c);
    if (roles & R_KID)
        c->kid_len = len;
    if (roles & R_CRIT)
        return bad(c);
    if ((roles & R_EXP) && (t != V_NUMBER || !numeric_date(s, len, false, &c->exp)))
        return bad(c);
    if ((roles & R_NBF) && (t != V_NUMBER || !numeric_date(s, len, true, &c->nbf)))
        return bad(c);
    if (roles & R_ISS) {
        if (!str)
            return bad(c);
        c->iss_match = bytes_are(s, len, pol->issuer);
    }
    if (roles & R_AUD) {
        if (!str)
            return bad(c);
        c->aud_match = c->aud_match || bytes_are(s, len, pol->audience);
    }
    if ((roles & R_SUB) && (!text || !copy_claim(c->out->sub, sizeof c->out->sub, s, len)))
        return bad(c);
    if ((roles & R_ORG) && (!text || !copy_claim(c->out->org, sizeof c->out->org, s, len)))
        return bad(c);
    if ((roles & R_PLAN) && (!text || !copy_claim(c->out->plan, sizeof c->out->plan, s, len)))
        return bad(c);
    if ((roles & R_SCOPE) &&
        (!str || !add_scopes(c->out->scopes, sizeof c->out->scopes, s, len, true)))
        return bad(c);
    if ((roles & R_SCP) && (!str || !add_scopes(c->scp, sizeof c->scp, s, len, !in_array)))
        return bad(c);
    return 1;
}

/* A value begins at c->depth (a container opens after this). */
static int value(struct jctx *c, enum vtype t, const char *s, size_t len)
{
    if (c->bad)
        return 0;
    if (c->depth == 0)
        return t == V_MAP ? 1 : bad(c);
    if (c->depth == 1 && c->roles) {
        unsigned roles = c->roles;
        c->roles = 0;
        if (t == V_MAP || (t == V_ARRAY && (roles & ~R_ARRAY_OK)))
            return bad(c);
        if (t == V_ARRAY) {
            c->arr_roles = roles;
            return 1;
        }
        return take(c, roles, t, s, len, false);
    }
    if (c->depth == 2 && c->arr_roles)
        return take(c, c->arr_roles, t, s, len, true); /* strings only, as take() says */
    return 1;
}

static int cb_null(void *ctx)
{
    return value(ctx, V_NULL, NULL, 0);
}

static int cb_boolean(void *ctx, int b)
{
    return value(ctx, V_BOOL, NULL, 0);
}

static int cb_number(void *ctx, const char *s, size_t len)
{
    return value(ctx, V_NUMBER, s, len);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    return value(ctx, V_STRING, (const char *)s, len);
}

static int open_container(struct jctx *c, enum vtype t)
{
    if (!value(c, t, NULL, 0))
        return 0;
    if (c->depth >= JWT_MAX_DEPTH)
        return bad(c);
    c->depth++;
    return 1;
}

static int cb_start_map(void *ctx)
{
    return open_container(ctx, V_MAP);
}

static int cb_start_array(void *ctx)
{
    return open_container(ctx, V_ARRAY);
}

static int cb_end(void *ctx)
{
    struct jctx *c = ctx;
    if (c->bad || c->depth <= 0)
        return 0;
    if (--c->depth == 1)
        c->arr_roles = 0;
    return 1;
}

static int cb_map_key(void *ctx, const unsigned char *s, size_t len)
{
    struct jctx *c = ctx;
    if (c->depth != 1)
        return 1;
    c->roles = roles_of(c, (const char *)s, len);
    if (c->roles & c->seen)
        return bad(c); /* a member read twice: which one counts depends on the reader */
    c->seen |= c->roles;
    return 1;
}

static const yajl_callbacks callbacks = {
    cb_null,      cb_boolean, NULL,   NULL,           cb_number, cb_string,
    cb_start_map, cb_map_key, cb_end, cb_start_array, cb_end,
};

/* JSON[0..len) through the callbacks into C; false when it is not a JSON object or a
 * member is not as it must be. */
static bool parse_json(struct jctx *c, const unsigned char *json, size_t len)
{
    yajl_handle h = yajl_alloc(&callbacks, NULL, c);
    if (!h)
        return false;
    yajl_status st = yajl_parse(h, json, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    yajl_free(h);
    return st == yajl_status_ok && !c->bad && c->depth == 0;
}

/* ---- signatures --------------------------------------------------------------------- */

static const char *digest_of(enum jwt_alg alg)
{
    switch (alg) {
    case JWT_ALG_RS384:
    case JWT_ALG_ES384:
        return "SHA384";
    case JWT_ALG_RS512:
        return "SHA512";
    case JWT_ALG_EDDSA:
        return NULL; /* Ed25519 hashes the message itself */
    default:
        return "SHA256";
    }
}

/* R || S, each N bytes, as the DER ECDSA-Sig-Value OpenSSL verifies; its length, or 0. */
static size_t ecdsa_der(const unsigned char *sig, size_t n, unsigned char *der, size_t cap)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)n, NULL), *s = BN_bin2bn(sig + n, (int)n, NULL);
    size_t len = 0;
    if (es && r && s && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL; /* owned by es */
        int need = i2d_ECDSA_SIG(es, NULL);
        unsigned char *p = der;
        if (need > 0 && (size_t)need <= cap && i2d_ECDSA_SIG(es, &p) == need)
            len = (size_t)need;
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return len;
}

static bool verify_signature(const struct jwk *k, enum jwt_alg alg, const unsigned char *data,
                             size_t dlen, const unsigned char *sig, size_t slen)
{
    if (slen != k->sig_len)
        return false;
    if (alg == JWT_ALG_HS256) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        bool ok = HMAC(EVP_sha256(), k->secret, (int)k->secret_len, data, dlen, md, &mdlen) &&
                  mdlen == slen && CRYPTO_memcmp(md, sig, slen) == 0;
        OPENSSL_cleanse(md, sizeof md);
        return ok;
    }
    unsigned char der[2 * 48 + 16];
    if (alg == JWT_ALG_ES256 || alg == JWT_ALG_ES384) {
        slen = ecdsa_der(sig, slen / 2, der, sizeof der);
        if (slen == 0)
            return false;
        sig = der;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    bool ok = md &&
              EVP_DigestVerifyInit_ex(md, &pctx, digest_of(alg), NULL, NULL, k->pkey, NULL) == 1;
    if (ok && alg == JWT_ALG_PS256)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", NULL) > 0 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0;
    ok = ok && EVP_DigestVerify(md, sig, slen, data, dlen) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

/* ---- verify ------------------------------------------------------------------------- */

static enum jwt_result verify(const struct jwks *keys, const struct jwt_policy *pol,
                              const char *token, size_t len, uint64_t now_s, struct jwt_claims *out)
{
    if (!keys || !pol || !token || len == 0 || len > JWT_MAX_TOKEN)
        return JWT_MALFORMED;
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2)
        return JWT_MALFORMED;
    const char *sig_b64 = dot2 + 1;
    size_t sig_b64_len = len - (size_t)(sig_b64 - token);
    unsigned char header[PART_MAX], payload[PART_MAX], sig[PART_MAX];
    size_t hlen, plen, slen;
    /* A third dot fails the alphabet of the signature. */
    if (!jwt_b64url_decode(token, (size_t)(dot1 - token), header, sizeof header, &hlen) ||
        !jwt_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload, sizeof payload, &plen) ||
        !jwt_b64url_decode(sig_b64, sig_b64_len, sig, sizeof sig, &slen) || hlen == 0 || plen == 0)
        return JWT_MALFORMED;

    struct jctx c = {.payload = false, .pol = pol, .out = out};
    if (!parse_json(&c, header, hlen) || !(c.seen & R_ALG))
        return JWT_MALFORMED;
    enum jwt_alg alg;
    if (!jwt_alg_parse(c.alg, c.alg_len, &alg))
        return JWT_ALG_REFUSED; /* "none" among them */
    if (pol->algs && !(pol->algs & JWT_ALG_BIT(alg)))
        return JWT_ALG_REFUSED;
    const struct jwk *k;
    if (c.seen & R_KID)
        k = jwks_find(keys, c.kid, c.kid_len);
    else
        k = jwks_count(keys) == 1 ? jwks_key(keys, 0) : NULL;
    if (!k)
        return JWT_UNKNOWN_KEY;
    if (!jwk_alg_fits(k, alg))
        return JWT_ALG_REFUSED;
    if (!verify_signature(k, alg, (const unsigned char *)token, (size_t)(dot2 - token), sig, slen))
        return JWT_BAD_SIGNATURE;
    memcpy(out->kid, c.kid, c.kid_len);
    out->kid[c.kid_len] = '\0';
    out->alg = alg;

    c = (struct jctx){.payload = true, .pol = pol, .out = out};
    c.sub_name = pol->subject_claim ? pol->subject_claim : "sub";
    c.org_name = pol->org_claim ? pol->org_claim : "org";
    c.plan_name = pol->plan_claim ? pol->plan_claim : "plan";
    if (!parse_json(&c, payload, plen) || !(c.seen & R_EXP) || !out->sub[0])
        return JWT_MALFORMED;
    if (pol->issuer && !c.iss_match)
        return JWT_BAD_ISSUER;
    if (pol->audience && !c.aud_match)
        return JWT_BAD_AUDIENCE;
    if (now_s >= sat_add(c.exp, pol->leeway_s))
        return JWT_EXPIRED;
    if (sat_add(now_s, pol->leeway_s) < c.nbf)
        return JWT_NOT_YET_VALID;
    if (!(c.seen & R_SCOPE))
        memcpy(out->scopes, c.scp, sizeof out->scopes);
    out->exp = c.exp;
    out->nbf = c.nbf;
    return JWT_OK;
}

enum jwt_result jwt_verify(const struct jwks *keys, const struct jwt_policy *pol, const char *token,
                           size_t len, uint64_t now_s, struct jwt_claims *out)
{
    memset(out, 0, sizeof *out);
    /* OpenSSL's errors stay here: a TLS connection on this thread reads the queue. */
    ERR_set_mark();
    enum jwt_result r = verify(keys, pol, token, len, now_s, out);
    ERR_pop_to_mark();
    if (r != JWT_OK)
        memset(out, 0, sizeof *out);
    return r;
}

/* ---- cache -------------------------------------------------------------------------- */

#define NONE UINT32_MAX
#define CACHE_MAX_CAPACITY (1u << 20)

struct entry {
    unsigned char key[32];
    uint64_t not_before, expires; /* valid while not_before <= now < expires */
    uint32_t hnext; /* bucket chain, or the free list */
    uint32_t prev, next; /* LRU list: head most recent */
    struct jwt_claims claims;
};

struct jwt_cache {
    size_t capacity, used, live;
    uint64_t max_age_s;
    uint32_t *buckets;
    uint32_t mask;
    struct entry *e;
    uint32_t head, tail, free_list;
    EVP_MD *sha256;
    EVP_MD_CTX *md;
    struct jwt_cache_stats stats;
};

struct jwt_cache *jwt_cache_new(size_t capacity, uint64_t max_age_s)
{
    if (capacity == 0 || capacity > CACHE_MAX_CAPACITY)
        return NULL;
    struct jwt_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    size_t nb = 1;
    while (nb < capacity * 2)
        nb *= 2;
    c->capacity = capacity;
    c->max_age_s = max_age_s;
    c->mask = (uint32_t)(nb - 1);
    c->buckets = malloc(nb * sizeof *c->buckets);
    c->e = calloc(capacity, sizeof *c->e); /* pages are touched as entries are used */
    c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    c->md = EVP_MD_CTX_new();
    if (!c->buckets || !c->e || !c->sha256 || !c->md) {
        jwt_cache_free(c);
        return NULL;
    }
    memset(c->buckets, 0xff, nb * sizeof *c->buckets);
    c->head = c->tail = c->free_list = NONE;
    return c;
}

void jwt_cache_free(struct jwt_cache *c)
{
    if (!c)
        return;
    if (c->e)
        OPENSSL_cleanse(c->e, c->capacity * sizeof *c->e);
    free(c->e);
    free(c->buckets);
    EVP_MD_free(c->sha256);
    EVP_MD_CTX_free(c->md);
    free(c);
}

static bool feed(EVP_MD_CTX *md, const void *p, size_t n)
{
    return EVP_DigestUpdate(md, p, n) == 1;
}

static bool feed_u64(EVP_MD_CTX *md, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return feed(md, b, sizeof b);
}

/* A string with its length, so no two policies read as one; NULL differs from "". */
static bool feed_str(EVP_MD_CTX *md, const char *s)
{
    if (!s)
        return feed_u64(md, UINT64_MAX);
    size_t n = strlen(s);
    return feed_u64(md, n) && feed(md, s, n);
}

static bool cache_key(struct jwt_cache *c, const struct jwks *keys, const struct jwt_policy *pol,
                      const char *token, size_t len, unsigned char key[32])
{
    if (!keys || !pol || !token || len == 0 || len > JWT_MAX_TOKEN)
        return false;
    unsigned mdlen = 0;
    ERR_set_mark();
    bool ok = EVP_DigestInit_ex2(c->md, c->sha256, NULL) == 1 &&
              feed_u64(c->md, jwks_serial(keys)) && feed_str(c->md, pol->issuer) &&
              feed_str(c->md, pol->audience) && feed_u64(c->md, pol->leeway_s) &&
              feed_u64(c->md, pol->algs) &&
              feed_str(c->md, pol->subject_claim ? pol->subject_claim : "sub") &&
              feed_str(c->md, pol->org_claim ? pol->org_claim : "org") &&
              feed_str(c->md, pol->plan_claim ? pol->plan_claim : "plan") && feed_u64(c->md, len) &&
              feed(c->md, token, len) && EVP_DigestFinal_ex(c->md, key, &mdlen) == 1 && mdlen == 32;
    ERR_pop_to_mark();
    return ok;
}

static uint32_t bucket_of(const struct jwt_cache *c, const unsigned char key[32])
{
    uint32_t h;
    memcpy(&h, key, sizeof h);
    return h & c->mask;
}

static uint32_t find(const struct jwt_cache *c, const unsigned char key[32])
{
    for (uint32_t i = c->buckets[bucket_of(c, key)]; i != NONE; i = c->e[i].hnext)
        if (memcmp(c->e[i].key, key, 32) == 0)
            return i;
    return NONE;
}

static void lru_unlink(struct jwt_cache *c, uint32_t i)
{
    struct entry *e = &c->e[i];
    if (e->prev != NONE)
        c->e[e->prev].next = e->next;
    else
        c->head = e->next;
    if (e->next != NONE)
        c->e[e->next].prev = e->prev;
    else
        c->tail = e->prev;
}

static void lru_push_head(struct jwt_cache *c, uint32_t i)
{
    struct entry *e = &c->e[i];
    e->prev = NONE;
    e->next = c->head;
    if (c->head != NONE)
        c->e[c->head].prev = i;
    c->head = i;
    if (c->tail == NONE)
        c->tail = i;
}

static void drop(struct jwt_cache *c, uint32_t i)
{
    uint32_t *pp = &c->buckets[bucket_of(c, c->e[i].key)];
    while (*pp != i)
        pp = &c->e[*pp].hnext;
    *pp = c->e[i].hnext;
    lru_unlink(c, i);
    OPENSSL_cleanse(&c->e[i].claims, sizeof c->e[i].claims);
    c->e[i].hnext = c->free_list;
    c->free_list = i;
    c->live--;
}

static bool lookup(struct jwt_cache *c, const unsigned char key[32], uint64_t now_s,
                   struct jwt_claims *out)
{
    uint32_t i = find(c, key);
    if (i != NONE && (now_s < c->e[i].not_before || now_s >= c->e[i].expires)) {
        drop(c, i);
        i = NONE;
    }
    if (i == NONE) {
        c->stats.misses++;
        return false;
    }
    lru_unlink(c, i);
    lru_push_head(c, i);
    *out = c->e[i].claims;
    c->stats.hits++;
    return true;
}

static void insert(struct jwt_cache *c, const unsigned char key[32], const struct jwt_policy *pol,
                   uint64_t now_s, const struct jwt_claims *cl)
{
    uint64_t expires = sat_add(cl->exp, pol->leeway_s);
    if (c->max_age_s && expires > sat_add(now_s, c->max_age_s))
        expires = sat_add(now_s, c->max_age_s);
    if (expires <= now_s)
        return;
    uint32_t i = find(c, key);
    if (i == NONE) {
        if (c->free_list != NONE) {
            i = c->free_list;
            c->free_list = c->e[i].hnext;
        } else if (c->used < c->capacity) {
            i = (uint32_t)c->used++;
        } else {
            i = c->tail;
            c->stats.evictions++;
            drop(c, i);
            c->free_list = c->e[i].hnext;
        }
        memcpy(c->e[i].key, key, 32);
        uint32_t b = bucket_of(c, key);
        c->e[i].hnext = c->buckets[b];
        c->buckets[b] = i;
        c->live++;
    } else {
        lru_unlink(c, i);
    }
    lru_push_head(c, i);
    c->e[i].claims = *cl;
    c->e[i].not_before = cl->nbf > pol->leeway_s ? cl->nbf - pol->leeway_s : 0;
    c->e[i].expires = expires;
}

bool jwt_cache_get(struct jwt_cache *c, const struct jwks *keys, const struct jwt_policy *pol,
                   const char *token, size_t len, uint64_t now_s, struct jwt_claims *out)
{
    unsigned char key[32];
    if (!c || !cache_key(c, keys, pol, token, len, key)) {
        if (c)
            c->stats.misses++;
        return false;
    }
    return lookup(c, key, now_s, out);
}

void jwt_cache_put(struct jwt_cache *c, const struct jwks *keys, const struct jwt_policy *pol,
                   const char *token, size_t len, uint64_t now_s, const struct jwt_claims *claims)
{
    unsigned char key[32];
    if (c && cache_key(c, keys, pol, token, len, key))
        insert(c, key, pol, now_s, claims);
}

enum jwt_result jwt_check(struct jwt_cache *c, const struct jwks *keys,
                          const struct jwt_policy *pol, const char *token, size_t len,
                          uint64_t now_s, struct jwt_claims *out)
{
    unsigned char key[32];
    bool keyed = c && cache_key(c, keys, pol, token, len, key);
    if (keyed && lookup(c, key, now_s, out))
        return JWT_OK;
    if (c && !keyed)
        c->stats.misses++;
    enum jwt_result r = jwt_verify(keys, pol, token, len, now_s, out);
    if (r == JWT_OK && keyed)
        insert(c, key, pol, now_s, out);
    return r;
}

struct jwt_cache_stats jwt_cache_stats(const struct jwt_cache *c)
{
    struct jwt_cache_stats s = {0};
    if (c) {
        s = c->stats;
        s.entries = c->live;
    }
    return s;
}
