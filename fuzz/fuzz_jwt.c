/*
 * fuzz_jwt: the JWT and JWK Set readers on arbitrary bytes. The first
 * byte picks what the rest is (modulo 3) and a policy (divided by 3):
 *   0: a token, verified against a fixed key set (RSA, P-256, Ed25519
 *      and an HS256 secret, public halves below);
 *   1: a JWK Set, read with and without HMAC allowed, then used to verify
 *      a few fixed tokens;
 *   2: a header length byte, then header and payload JSON, which the
 *      target signs with the fixed HS256 secret, so that the claims reader
 *      is reached by every input (a fuzzer cannot forge a signature).
 * Besides memory errors it checks what callers rely on: an answer is one
 * of the enum, the same twice, the same through the cache; a refusal
 * leaves the claims zeroed; claims taken are NUL-terminated, printable,
 * scope tokens joined by single spaces, valid at the time given (exp,
 * nbf and leeway); a key set holds 1 to JWKS_MAX_KEYS keys each as
 * jwks.h says, with HMAC keys only when allowed.
 * The seeds in tests/data/fuzz/jwt were made by a throwaway script
 * holding the private halves of these keys; HS256 seeds can be remade
 * from the secret alone (bytes 1 to 32).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/hmac.h>

#include "jwks.h"
#include "jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW UINT64_C(1700000000)

/* clang-format off */
static const char fixed_jwks[] =
    "{\"keys\":["
    "{\"kty\":\"RSA\",\"kid\":\"rsa\",\"n\":\"tFE9eSnE5_X6WwWd8hEE2t8xyPK8vNXNhNotqdalJeqKwXb"
    "sF-jJonQUlrXoRyPe5Gj24w4YEFT775eAywRZhzyhVq7OLEeM2jhDfXLB-oK9fPZx2kSvETvK63jBBpTjzf3tSpm"
    "JrjkoJxQvbvd-g74FyqqKV06qqpDCLPFD6Kv2osn8dLyDxxPA9xvJHIY2UjdJDxnqz3FGGw4Ud10X47syTFJE_1n"
    "obDQKmgNokXhhBs1s6M_ydvwgYYBjWioFOVqmvstxmrD-5d3pdm18uVrzCRZyxc2Ix2tLzLJPmUDtiQHZcK3_j5D"
    "UvZ7fnnKTTC_S6JHESFx5Wv_5eMefBQ\",\"e\":\"AQAB\"}"
    ","
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"p256\",\"x\":\"hKfuQI8PfEYG8ROGSo36aEnaXFoYm"
    "ZF8e1NG98DhnUc\",\"y\":\"PGUgaaHNpsZEGAjVNN4iKu3ngiJkyWsgbEaE_RzcbGc\"}"
    ","
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed\",\"x\":\"ftjkssbuuQ6Czins5_Xr1b35-QOy"
    "p2idlule7UE70jA\"}"
    ","
    "{\"kty\":\"oct\",\"kid\":\"hs\",\"k\":\"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA\"}"
    "]}";
/* clang-format on */

static const unsigned char secret[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                         12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                         23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static const struct jwt_policy pols[4] = {
    {.issuer = "https://issuer.example", .audience = "api", .leeway_s = 30},
    {.leeway_s = 0},
    {.subject_claim = "client_id",
     .org_claim = "tenant",
     .plan_claim = "tier",
     .leeway_s = UINT64_MAX},
    {.algs = JWT_ALG_BIT(JWT_ALG_HS256) | JWT_ALG_BIT(JWT_ALG_ES256), .leeway_s = 5},
};

static struct jwks *keys;
static struct jwt_cache *cache;

static void check_text(const char *s, size_t cap, bool scopes)
{
    const char *end = memchr(s, '\0', cap);
    if (!end)
        abort();
    for (const char *p = s; p < end; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch < 0x20 || ch == 0x7f)
            abort();
        if (scopes && (ch > 0x7e || ch == '"' || ch == '\\'))
            abort();
        if (scopes && ch == ' ' && (p == s || p + 1 == end || p[1] == ' '))
            abort();
    }
}

static void check_result(const struct jwks *ks, const struct jwt_policy *pol, const char *tok,
                         size_t len, enum jwt_result r, const struct jwt_claims *c)
{
    static const struct jwt_claims zero;
    if ((unsigned)r > JWT_BAD_AUDIENCE || strcmp(jwt_result_str(r), "?") == 0)
        abort();
    if (r != JWT_OK) {
        if (memcmp(c, &zero, sizeof zero) != 0)
            abort();
        return;
    }
    if (len > JWT_MAX_TOKEN || !c->sub[0])
        abort();
    check_text(c->sub, sizeof c->sub, false);
    check_text(c->org, sizeof c->org, false);
    check_text(c->plan, sizeof c->plan, false);
    check_text(c->scopes, sizeof c->scopes, true);
    check_text(c->kid, sizeof c->kid, false);
    if (c->exp > UINT64_C(9007199254740991) || c->nbf > UINT64_C(9007199254740992))
        abort();
    uint64_t exp_l = c->exp > UINT64_MAX - pol->leeway_s ? UINT64_MAX : c->exp + pol->leeway_s;
    uint64_t now_l = NOW > UINT64_MAX - pol->leeway_s ? UINT64_MAX : NOW + pol->leeway_s;
    if (NOW >= exp_l || now_l < c->nbf)
        abort();
    if (pol->algs && !(pol->algs & JWT_ALG_BIT(c->alg)))
        abort();
    const struct jwk *k = c->kid[0] ? jwks_find(ks, c->kid, strlen(c->kid)) : jwks_key(ks, 0);
    if (!k || !jwk_alg_fits(k, c->alg))
        abort();
    /* the cache gives back what it was given */
    struct jwt_claims again;
    jwt_cache_put(cache, ks, pol, tok, len, NOW, c);
    if (!jwt_cache_get(cache, ks, pol, tok, len, NOW, &again) ||
        memcmp(&again, c, sizeof again) != 0)
        abort();
}

/* Verify TOK twice (directly and through the cache): the same answer. */
static enum jwt_result verify(const struct jwks *ks, const struct jwt_policy *pol, const char *tok,
                              size_t len)
{
    struct jwt_claims c, c2;
    memset(&c, 0xa5, sizeof c);
    enum jwt_result r = jwt_verify(ks, pol, tok, len, NOW, &c);
    check_result(ks, pol, tok, len, r, &c);
    enum jwt_result r2 = jwt_check(cache, ks, pol, tok, len, NOW, &c2);
    if (r2 != r || memcmp(&c, &c2, sizeof c) != 0)
        abort();
    return r;
}

static void check_set(const struct jwks *ks, bool allow_hmac, const char *err)
{
    if (!ks) {
        if (!err[0] || !memchr(err, '\0', 256))
            abort();
        return;
    }
    size_t n = jwks_count(ks);
    if (n < 1 || n > JWKS_MAX_KEYS || err[0])
        abort();
    for (size_t i = 0; i < n; i++) {
        const struct jwk *k = jwks_key(ks, i);
        if (k->kid_len >= JWKS_KID_MAX || strlen(k->kid) != k->kid_len)
            abort();
        if (k->kid_len && jwks_find(ks, k->kid, k->kid_len) != k)
            abort();
        if (k->kind == JWK_OCT ? (!allow_hmac || !k->secret || k->secret_len < 32 || k->pkey)
                               : (!k->pkey || k->secret))
            abort();
        if (k->has_alg && !jwk_alg_fits(k, k->alg))
            abort();
        size_t want = k->kind == JWK_EC_P384 ? 96 : k->kind == JWK_OCT ? 32 : 64;
        if (k->kind == JWK_RSA ? k->sig_len < 256 || k->sig_len > 1024 : k->sig_len != want)
            abort();
    }
}

/* base64url of S[0..n) at OUT; the length written. */
static size_t b64url(const unsigned char *s, size_t n, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, j = 0;
    for (; j + 2 < n; j += 3) {
        uint32_t v = (uint32_t)s[j] << 16 | (uint32_t)s[j + 1] << 8 | s[j + 2];
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = tbl[(v >> 6) & 63];
        out[o++] = tbl[v & 63];
    }
    if (n - j == 1) {
        out[o++] = tbl[s[j] >> 2];
        out[o++] = tbl[(s[j] & 3) << 4];
    } else if (n - j == 2) {
        uint32_t v = (uint32_t)s[j] << 8 | s[j + 1];
        out[o++] = tbl[v >> 10];
        out[o++] = tbl[(v >> 4) & 63];
        out[o++] = tbl[(v & 15) << 2];
    }
    return o;
}

/* HEADER.PAYLOAD signed with the fixed secret into TOK (room for 1 KiB); its length. */
static size_t hs256_token(const char *header, const char *payload, char *tok)
{
    size_t o = b64url((const unsigned char *)header, strlen(header), tok);
    tok[o++] = '.';
    o += b64url((const unsigned char *)payload, strlen(payload), tok + o);
    unsigned char mac[32];
    unsigned maclen = 0;
    HMAC(EVP_sha256(), secret, sizeof secret, (const unsigned char *)tok, o, mac, &maclen);
    tok[o++] = '.';
    return o + b64url(mac, maclen, tok + o);
}

/* HS256 tokens, each naming one kid of the fixed set (and one none), tried on a key set
 * that loaded: only an oct key holding the fixed secret may pass one. */
static void probe(const struct jwks *ks)
{
    static const char *const kids[] = {"rsa", "p256", "ed", "hs", NULL};
    for (size_t i = 0; i < sizeof kids / sizeof kids[0]; i++) {
        char header[64], tok[1024];
        if (kids[i])
            snprintf(header, sizeof header, "{\"alg\":\"HS256\",\"kid\":\"%s\"}", kids[i]);
        else
            snprintf(header, sizeof header, "{\"alg\":\"HS256\"}");
        size_t len = hs256_token(header, "{\"sub\":\"s\",\"exp\":1700000600}", tok);
        enum jwt_result r = verify(ks, &pols[1], tok, len);
        const struct jwk *k = kids[i] ? jwks_find(ks, kids[i], strlen(kids[i])) : jwks_key(ks, 0);
        if (r == JWT_OK && (!k || k->kind != JWK_OCT || k->secret_len != sizeof secret ||
                            memcmp(k->secret, secret, sizeof secret) != 0))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!keys) {
        char err[256];
        keys = jwks_parse(fixed_jwks, sizeof fixed_jwks - 1, true, err, sizeof err);
        cache = jwt_cache_new(8, 0);
        if (!keys || !cache) {
            fprintf(stderr, "fixed key set: %s\n", err);
            abort();
        }
    }
    if (size < 1)
        return 0;
    int mode = data[0] % 3;
    const struct jwt_policy *pol = &pols[(data[0] / 3) % 4];
    const uint8_t *in = data + 1;
    size_t len = size - 1;

    if (mode == 0) {
        /* a copy of its exact size: ASan sees a read past the end */
        char *tok = malloc(len ? len : 1);
        memcpy(tok, in, len);
        verify(keys, pol, tok, len);
        free(tok);
    } else if (mode == 1) {
        char *json = malloc(len ? len : 1);
        memcpy(json, in, len);
        for (int allow = 0; allow <= 1; allow++) {
            char err[256];
            memset(err, 'x', sizeof err);
            struct jwks *ks = jwks_parse(json, len, allow, err, sizeof err);
            check_set(ks, allow, err);
            if (ks)
                probe(ks);
            jwks_free(ks);
        }
        free(json);
    } else if (len >= 1) {
        size_t hlen = in[0] < len - 1 ? in[0] : len - 1;
        const unsigned char *h = in + 1, *p = in + 1 + hlen;
        size_t plen = len - 1 - hlen;
        if (hlen > JWT_MAX_TOKEN || plen > JWT_MAX_TOKEN)
            return 0;
        char *tok = malloc(2 * JWT_MAX_TOKEN);
        size_t o = b64url(h, hlen, tok);
        tok[o++] = '.';
        o += b64url(p, plen, tok + o);
        unsigned char mac[32];
        unsigned maclen = 0;
        HMAC(EVP_sha256(), secret, sizeof secret, (const unsigned char *)tok, o, mac, &maclen);
        tok[o++] = '.';
        o += b64url(mac, maclen, tok + o);
        char *exact = malloc(o);
        memcpy(exact, tok, o);
        free(tok);
        verify(keys, pol, exact, o);
        free(exact);
    }
    return 0;
}
