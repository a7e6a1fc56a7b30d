/*
 * test_jwt: JWK Sets and JWTs against keys made by OpenSSL when the suite
 * starts (RSA 2048, EC P-256 and P-384, Ed25519, a random HMAC secret).
 * Key sets are rows of JSON with $NAME for the generated members; tokens
 * are rows naming the key that signs, how it signs, the header and
 * payload JSON and what to do to the result (flip a byte, pad, add a
 * dot...), and the answer jwt_verify must give. The cache is tested for
 * hits, misses, expiry, max age, LRU order and its keys (policy, key set).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "jwks.h"
#include "jwt.h"

void test_register(void);

#define NOW UINT64_C(1700000000)

/* ---- keys and their JWK members ----------------------------------------------------- */

static EVP_PKEY *k_rsa, *k_rsa1024, *k_p256, *k_p384, *k_ed;
static unsigned char hs_secret[32];

/* $NAME -> base64url text, filled when the suite starts. */
static struct {
    const char *name;
    char *val;
} vars[] = {
    {"RSA_N", NULL},  {"RSA_E", NULL},     {"RSA1024_N", NULL}, {"P256_X", NULL},
    {"P256_Y", NULL}, {"P256_YBAD", NULL}, {"P384_X", NULL},    {"P384_Y", NULL},
    {"ED_X", NULL},   {"HS_K", NULL},      {"HS_SHORT", NULL},  {"RSA_N0", NULL},
};

static char *b64url(const unsigned char *p, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(n / 3 * 4 + 5);
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
        out[o++] = a[v & 63];
    }
    if (n - i == 1) {
        out[o++] = a[p[i] >> 2];
        out[o++] = a[(p[i] & 3) << 4];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 8 | p[i + 1];
        out[o++] = a[v >> 10];
        out[o++] = a[(v >> 4) & 63];
        out[o++] = a[(v & 15) << 2];
    }
    out[o] = '\0';
    return out;
}

static void set_var(const char *name, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (strcmp(vars[i].name, name) == 0) {
            free(vars[i].val);
            vars[i].val = b64url(p, n);
            return;
        }
    abort();
}

static void set_bn_var(const char *name, EVP_PKEY *k, const char *param)
{
    BIGNUM *bn = NULL;
    if (EVP_PKEY_get_bn_param(k, param, &bn) != 1)
        abort();
    unsigned char buf[1024];
    int n = BN_bn2bin(bn, buf);
    set_var(name, buf, (size_t)n);
    BN_free(bn);
}

/* The uncompressed point's X and Y of EC key K, CLEN bytes each. */
static void set_ec_vars(const char *xname, const char *yname, EVP_PKEY *k, size_t clen)
{
    unsigned char pt[1 + 2 * 48];
    size_t len = 0;
    if (EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof pt,
                                        &len) != 1 ||
        len != 1 + 2 * clen || pt[0] != 4)
        abort();
    set_var(xname, pt + 1, clen);
    set_var(yname, pt + 1 + clen, clen);
    if (clen == 32) {
        pt[1 + 2 * clen - 1] ^= 1; /* y + or - 1: off the curve */
        set_var("P256_YBAD", pt + 1 + clen, clen);
    }
}

/* The value of $NAME at T (T after the '$'), and the name's length in *N. */
static const char *var_at(const char *t, size_t *n)
{
    *n = strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (strlen(vars[i].name) == *n && memcmp(vars[i].name, t, *n) == 0)
            return vars[i].val;
    abort();
}

/* TEMPLATE with every $NAME replaced; malloc'd. */
static char *expand(const char *t)
{
    size_t cap = 1, n;
    for (const char *p = t; *p; p++)
        if (*p == '$') {
            cap += strlen(var_at(p + 1, &n));
            p += n;
        } else {
            cap++;
        }
    char *out = malloc(cap), *o = out;
    while (*t) {
        if (*t != '$') {
            *o++ = *t++;
            continue;
        }
        const char *v = var_at(t + 1, &n);
        memcpy(o, v, strlen(v));
        o += strlen(v);
        t += 1 + n;
    }
    *o = '\0';
    return out;
}

static struct jwks *parse_template(const char *t, bool allow_hmac, char *err, size_t errlen)
{
    char *json = expand(t);
    struct jwks *ks = jwks_parse(json, strlen(json), allow_hmac, err, errlen);
    free(json);
    return ks;
}

/* clang-format off */
#define RSA_JWK(kid) "{\"kty\":\"RSA\",\"kid\":\"" kid "\",\"n\":\"$RSA_N\",\"e\":\"$RSA_E\"}"
#define P256_JWK(kid) "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"" kid "\",\"x\":\"$P256_X\",\"y\":\"$P256_Y\"}"
#define P384_JWK(kid) "{\"kty\":\"EC\",\"crv\":\"P-384\",\"kid\":\"" kid "\",\"x\":\"$P384_X\",\"y\":\"$P384_Y\"}"
#define ED_JWK(kid) "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"" kid "\",\"x\":\"$ED_X\"}"
#define HS_JWK(kid) "{\"kty\":\"oct\",\"kid\":\"" kid "\",\"k\":\"$HS_K\"}"
/* clang-format on */

/* The key sets tokens are verified with. */
enum { KS_ALL, KS_RSA_ONE, KS_RSA_RS256, KS_NOHMAC, KS_HS_ONE, KS_COUNT };
static const struct {
    const char *json;
    bool allow_hmac;
} ks_src[KS_COUNT] = {
    [KS_ALL] = {"{\"keys\":[" RSA_JWK("rsa") "," P256_JWK("p256") "," P384_JWK("p384") "," ED_JWK(
                    "ed") "," HS_JWK("hs") "]}",
                true},
    [KS_RSA_ONE] = {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"$RSA_N\",\"e\":\"$RSA_E\"}]}", false},
    [KS_RSA_RS256] = {"{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"rsa\",\"alg\":\"RS256\","
                      "\"n\":\"$RSA_N\",\"e\":\"$RSA_E\"}," P256_JWK("p256") "]}",
                      false},
    [KS_NOHMAC] = {"{\"keys\":[" RSA_JWK("rsa") "," P256_JWK("p256") "]}", false},
    [KS_HS_ONE] = {"{\"keys\":[{\"kty\":\"oct\",\"k\":\"$HS_K\"}]}", true},
};
static struct jwks *ks[KS_COUNT];

static int suite_init(void)
{
    k_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    k_rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    k_p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    k_p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    k_ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!k_rsa || !k_rsa1024 || !k_p256 || !k_p384 || !k_ed ||
        RAND_bytes(hs_secret, sizeof hs_secret) != 1)
        return 1;
    set_bn_var("RSA_N", k_rsa, OSSL_PKEY_PARAM_RSA_N);
    set_bn_var("RSA_E", k_rsa, OSSL_PKEY_PARAM_RSA_E);
    set_bn_var("RSA1024_N", k_rsa1024, OSSL_PKEY_PARAM_RSA_N);
    set_ec_vars("P256_X", "P256_Y", k_p256, 32);
    set_ec_vars("P384_X", "P384_Y", k_p384, 48);
    unsigned char ed[32];
    size_t edlen = sizeof ed;
    if (EVP_PKEY_get_raw_public_key(k_ed, ed, &edlen) != 1 || edlen != 32)
        return 1;
    set_var("ED_X", ed, edlen);
    set_var("HS_K", hs_secret, sizeof hs_secret);
    set_var("HS_SHORT", hs_secret, sizeof hs_secret - 1);
    /* the modulus with a leading zero byte */
    BIGNUM *n = NULL;
    unsigned char nbuf[257];
    EVP_PKEY_get_bn_param(k_rsa, OSSL_PKEY_PARAM_RSA_N, &n);
    nbuf[0] = 0;
    BN_bn2bin(n, nbuf + 1);
    BN_free(n);
    set_var("RSA_N0", nbuf, sizeof nbuf);
    for (int i = 0; i < KS_COUNT; i++) {
        char err[256];
        ks[i] = parse_template(ks_src[i].json, ks_src[i].allow_hmac, err, sizeof err);
        if (!ks[i]) {
            fprintf(stderr, "key set %d: %s\n", i, err);
            return 1;
        }
    }
    return 0;
}

static int suite_clean(void)
{
    for (int i = 0; i < KS_COUNT; i++)
        jwks_free(ks[i]);
    EVP_PKEY_free(k_rsa);
    EVP_PKEY_free(k_rsa1024);
    EVP_PKEY_free(k_p256);
    EVP_PKEY_free(k_p384);
    EVP_PKEY_free(k_ed);
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        free(vars[i].val);
    return 0;
}

/* ---- key sets ----------------------------------------------------------------------- */

/* clang-format off */
static const struct {
    const char *json;   /* $NAME for generated members */
    bool allow_hmac;
    size_t count;       /* usable keys; 0: refused */
    const char *err;    /* in the error when refused */
} sets[] = {
    /* one of each, and all together */
    {"{\"keys\":[" RSA_JWK("a") "]}", false, 1, NULL},
    {"{\"keys\":[" P256_JWK("a") "]}", false, 1, NULL},
    {"{\"keys\":[" P384_JWK("a") "]}", false, 1, NULL},
    {"{\"keys\":[" ED_JWK("a") "]}", false, 1, NULL},
    {"{\"keys\":[" HS_JWK("a") "]}", true, 1, NULL},
    {"{\"keys\":[" RSA_JWK("a") "," P256_JWK("b") "," P384_JWK("c") "," ED_JWK("d") "," HS_JWK("e") "]}", true, 5, NULL},
    /* members envelopd does not read, and other top-level members, are ignored */
    {"{\"other\":{\"keys\":1},\"keys\":[{\"kty\":\"RSA\",\"kid\":\"a\",\"x5c\":[\"MIIB\",[1,{}]],\"x5t\":\"abc\",\"ext\":true,\"n\":\"$RSA_N\",\"e\":\"$RSA_E\"}],\"z\":null}", false, 1, NULL},
    {"{\"keys\":[{\"kty\":\"RSA\",\"use\":\"sig\",\"alg\":\"PS256\",\"key_ops\":[\"verify\",\"sign\"],\"n\":\"$RSA_N\",\"e\":\"$RSA_E\"}]}", false, 1, NULL},
    /* a leading zero byte in n is read as the number it is */
    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"$RSA_N0\",\"e\":\"$RSA_E\"}]}", false, 1, NULL},
    /* keys not for signing, or of types and algorithms not verified: skipped */
    {"{\"keys\":[" RSA_JWK("a") ",{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"x\",\"e\":\"y\"}]}", false, 1, NULL},
    {"{\"keys\":[" RSA_JWK("a") ",{\"kty\":\"RSA\",\"key_ops\":[\"encrypt\"],\"n\":\"x\"}]}", false, 1, NULL},
    {"{\"keys\":[" RSA_JWK("a") ",{\"kty\":\"RSA\",\"alg\":\"RSA-OAEP-256\",\"n\":\"x\"}]}", false, 1, NULL},
    {"{\"keys\":[" RSA_JWK("a") ",{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"x\",\"y\":\"y\"}]}", false, 1, NULL},
    {"{\"keys\":[" RSA_JWK("a") ",{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ES512\",\"x\":\"x\"}]}", false, 1, NULL},
    {"{\"keys\":[" RSA_JWK("a") ",{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"x\"}]}", false, 1, NULL},
    {"{\"keys\":[" RSA_JWK("a") ",{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"x\"}]}", false, 1, NULL},
    {"{\"keys\":[" RSA_JWK("a") ",{\"kty\":\"PQC\",\"x\":\"x\"}]}", false, 1, NULL},
    {"{\"keys\":[" RSA_JWK("a") ",{\"kty\":\"oct\",\"use\":\"enc\",\"k\":\"x\"}]}", false, 1, NULL},
    /* skipped keys may repeat a kid: only usable ones are told apart */
    {"{\"keys\":[" RSA_JWK("a") ",{\"kty\":\"RSA\",\"kid\":\"a\",\"use\":\"enc\"}]}", false, 1, NULL},
    /* not a key set */
    {"", false, 0, "not valid JSON"},
    {"{\"keys\":[" RSA_JWK("a") "]", false, 0, "not valid JSON"},
    {"{\"keys\":[" RSA_JWK("a") "]} x", false, 0, "not valid JSON"},
    {"/* c */{\"keys\":[" RSA_JWK("a") "]}", false, 0, "not valid JSON"},
    {"[" RSA_JWK("a") "]", false, 0, "not a JSON object"},
    {"\"keys\"", false, 0, "not a JSON object"},
    {"{}", false, 0, "no \"keys\""},
    {"{\"keys\":{}}", false, 0, "not an array"},
    {"{\"keys\":\"x\"}", false, 0, "not an array"},
    {"{\"keys\":[],\"keys\":[]}", false, 0, "\"keys\" twice"},
    {"{\"keys\":[]}", false, 0, "no key to verify"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"use\":\"enc\"}]}", false, 0, "no key to verify"},
    {"{\"keys\":[1]}", false, 0, "key 1 is not an object"},
    {"{\"keys\":[" RSA_JWK("a") ",[]]}", false, 0, "key 2 is not an object"},
    {"{\"keys\":[{\"kid\":\"a\",\"n\":\"$RSA_N\",\"e\":\"$RSA_E\"}]}", false, 0, "key 1 (kid \"a\"): no \"kty\""},
    {"{\"keys\":[{\"kty\":\"RSA\",\"kty\":\"EC\"}]}", false, 0, "\"kty\" twice"},
    {"{\"keys\":[{\"kty\":1}]}", false, 0, "\"kty\" is not a string"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"key_ops\":\"verify\"}]}", false, 0, "\"key_ops\" is not an array"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"key_ops\":[1]}]}", false, 0, "non-string"},
    {"{\"keys\":[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]}", false, 0, "not an object"},
    {"{\"x\":[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]],\"keys\":[" RSA_JWK("a") "]}", false, 0, "nested more than 16"},
    {"{\"x\":[[[[[[[[[[[[[[[]]]]]]]]]]]]]]],\"keys\":[" RSA_JWK("a") "]}", false, 1, NULL},
    /* RSA */
    {"{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"a\",\"e\":\"$RSA_E\"}]}", false, 0, "no \"n\""},
    {"{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"$RSA_N\"}]}", false, 0, "no \"e\""},
    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"$RSA1024_N\",\"e\":\"$RSA_E\"}]}", false, 0, "RSA modulus of 1024 bits"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"$RSA_N\",\"e\":\"AQ\"}]}", false, 0, "exponent"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"$RSA_N\",\"e\":\"AA\"}]}", false, 0, "exponent"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"$RSA_N\",\"e\":\"AQAA\"}]}", false, 0, "exponent"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"$RSA_N\",\"e\":\"AQAAAAAAAAAB\"}]}", false, 0, "exponent"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"$RSA_N=\",\"e\":\"$RSA_E\"}]}", false, 0, "\"n\" is not base64url"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"$RSA_N\",\"e\":\"AQAB==\"}]}", false, 0, "\"e\" is not base64url"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"+$RSA_N\",\"e\":\"$RSA_E\"}]}", false, 0, "\"n\" is not base64url"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"\",\"e\":\"$RSA_E\"}]}", false, 0, "\"n\" is not base64url"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"$RSA_N\",\"e\":\"AQAC\"}]}", false, 0, "exponent"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"$RSA_N\",\"e\":\"Aw\"}]}", false, 0, "exponent"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"$RSA_N\",\"e\":\"AP__\"}]}", false, 0, "exponent"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"$RSA_N\",\"e\":\"AQAAAQ\"}]}", false, 1, NULL},
    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"$RSA_N\",\"e\":\"AQAB\",\"d\":\"AQAB\"}]}", false, 0, "private member \"d\""},
    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"$RSA_N\",\"e\":\"AQAB\",\"use\":\"enc\",\"qi\":\"x\"}]}", false, 0, "private member \"qi\""},
    {"{\"keys\":[{\"kty\":\"RSA\",\"alg\":\"ES256\",\"n\":\"$RSA_N\",\"e\":\"$RSA_E\"}]}", false, 0, "\"alg\" ES256 does not fit"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"alg\":\"HS256\",\"n\":\"$RSA_N\",\"e\":\"$RSA_E\"}]}", false, 0, "\"alg\" HS256 does not fit"},
    /* EC */
    {"{\"keys\":[{\"kty\":\"EC\",\"x\":\"$P256_X\",\"y\":\"$P256_Y\"}]}", false, 0, "no \"crv\""},
    {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"$P256_X\",\"y\":\"$P256_YBAD\"}]}", false, 0, "not on the curve"},
    {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"$P384_X\",\"y\":\"$P384_Y\"}]}", false, 0, "32 bytes each"},
    {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"$P256_X\",\"y\":\"$P256_Y\"}]}", false, 0, "48 bytes each"},
    {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"$P256_X\"}]}", false, 0, "no \"y\""},
    {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ES384\",\"x\":\"$P256_X\",\"y\":\"$P256_Y\"}]}", false, 0, "\"alg\" ES384 does not fit"},
    {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"$P256_X\",\"y\":\"$P256_Y\",\"d\":\"x\"}]}", false, 0, "private member \"d\""},
    /* OKP */
    {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"$P384_X\"}]}", false, 0, "32 bytes"},
    {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"alg\":\"ES256\",\"x\":\"$ED_X\"}]}", false, 0, "does not fit"},
    {"{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"alg\":\"EdDSA\",\"x\":\"$ED_X\"}]}", false, 1, NULL},
    /* oct: only when HMAC is allowed, 32 bytes or more */
    {"{\"keys\":[" HS_JWK("a") "]}", false, 0, "HMAC is allowed"},
    {"{\"keys\":[" RSA_JWK("a") "," HS_JWK("b") "]}", false, 0, "key 2 (kid \"b\"): an \"oct\" key"},
    {"{\"keys\":[{\"kty\":\"oct\",\"k\":\"$HS_SHORT\"}]}", true, 0, "32 bytes or more"},
    {"{\"keys\":[{\"kty\":\"oct\"}]}", true, 0, "no \"k\""},
    {"{\"keys\":[{\"kty\":\"oct\",\"alg\":\"RS256\",\"k\":\"$HS_K\"}]}", true, 0, "does not fit"},
    {"{\"keys\":[{\"kty\":\"oct\",\"alg\":\"HS512\",\"k\":\"$HS_K\"}," RSA_JWK("a") "]}", true, 1, NULL},
    /* kids */
    {"{\"keys\":[" RSA_JWK("a") "," P256_JWK("a") "]}", false, 0, "key 2 (kid \"a\"): kid used by another key"},
    {"{\"keys\":[" RSA_JWK("") "]}", false, 0, "kid must be 1 to 127 bytes"},
    {"{\"keys\":[" RSA_JWK("a\\nb") "]}", false, 0, "printable ASCII"},
    {"{\"keys\":[" RSA_JWK("a\\u0000") "]}", false, 0, "printable ASCII"},
    {"{\"keys\":[" RSA_JWK("\\u00e9") "]}", false, 0, "printable ASCII"},
    {"{\"keys\":[" RSA_JWK("0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456") "]}", false, 1, NULL},
    {"{\"keys\":[" RSA_JWK("01234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567") "]}", false, 0, "kid must be 1 to 127"},
    {"{\"keys\":[{\"kty\":\"RSA\",\"kid\":1,\"n\":\"$RSA_N\",\"e\":\"$RSA_E\"}]}", false, 0, "\"kid\" is not a string"},
};
/* clang-format on */

static void test_sets(void)
{
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        char err[256] = "unset";
        struct jwks *k = parse_template(sets[i].json, sets[i].allow_hmac, err, sizeof err);
        bool ok = sets[i].count ? k && jwks_count(k) == sets[i].count && err[0] == '\0'
                                : !k && strstr(err, sets[i].err) != NULL;
        if (!ok)
            fprintf(stderr, "\nset %zu: %s: got %zu keys, err \"%s\"\n", i, sets[i].json,
                    jwks_count(k), err);
        CU_ASSERT(ok);
        jwks_free(k);
    }
}

/* More keys than allowed, members longer than kept, serials, lookups. */
static void test_set_limits(void)
{
    char err[256];
    size_t cap = 128 * (JWKS_MAX_KEYS + 2);
    char *json = malloc(cap);
    for (int n = JWKS_MAX_KEYS - 1; n <= JWKS_MAX_KEYS; n++) {
        size_t o = (size_t)sprintf(json, "{\"keys\":[");
        for (int i = 0; i < n; i++)
            o += (size_t)sprintf(json + o, "%s{\"kty\":\"RSA\",\"use\":\"enc\"}", i ? "," : "");
        o += (size_t)sprintf(json + o, ",%s]}", ED_JWK("ed"));
        char *t = expand(json);
        struct jwks *k = jwks_parse(t, strlen(t), false, err, sizeof err);
        CU_ASSERT(n + 1 <= JWKS_MAX_KEYS ? k != NULL : !k && strstr(err, "more than 64 keys"));
        jwks_free(k);
        free(t);
    }
    free(json);

    /* a member envelopd keeps, at the length limit */
    json = malloc(JWKS_MAX_MEMBER + 100);
    sprintf(json, "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%0*d\",\"e\":\"AQAB\"}]}", JWKS_MAX_MEMBER,
            0);
    CU_ASSERT(jwks_parse(json, strlen(json), false, err, sizeof err) == NULL);
    CU_ASSERT(strstr(err, "\"n\" is too long") != NULL);
    free(json);

    /* larger than a key set may be */
    json = calloc(1, JWKS_MAX_FILE + 2);
    memset(json, ' ', JWKS_MAX_FILE + 1);
    CU_ASSERT(jwks_parse(json, JWKS_MAX_FILE + 1, false, err, sizeof err) == NULL);
    CU_ASSERT(strstr(err, "larger than") != NULL);
    free(json);

    CU_ASSERT(jwks_serial(ks[KS_ALL]) != jwks_serial(ks[KS_NOHMAC]));
    CU_ASSERT(jwks_find(ks[KS_ALL], "p384", 4) == jwks_key(ks[KS_ALL], 2));
    CU_ASSERT(jwks_find(ks[KS_ALL], "p38", 3) == NULL);
    CU_ASSERT(jwks_find(ks[KS_ALL], "p3845", 5) == NULL);
    CU_ASSERT(jwks_find(ks[KS_RSA_ONE], "", 0) == NULL);
    CU_ASSERT(jwks_key(ks[KS_ALL], 5) == NULL);
    CU_ASSERT(jwks_key(ks[KS_ALL], 4)->kind == JWK_OCT);
    CU_ASSERT(jwks_key(ks[KS_ALL], 0)->sig_len == 256);
    CU_ASSERT(jwks_count(NULL) == 0);
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT(fwrite(text, 1, len, f) == len);
    fclose(f);
}

static void test_load_file(void)
{
    char path[] = "/tmp/test_jwt_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    char err[512];
    char *json = expand("{\"keys\":[" RSA_JWK("a") "," ED_JWK("b") "]}");
    write_file(path, json, strlen(json));
    free(json);
    struct jwks *k = jwks_load_file(path, false, err, sizeof err);
    CU_ASSERT(k && jwks_count(k) == 2);
    jwks_free(k);

    write_file(path, "{\"keys\":[]}", 11);
    CU_ASSERT(jwks_load_file(path, false, err, sizeof err) == NULL);
    char want[512];
    snprintf(want, sizeof want, "%s: no key to verify", path);
    CU_ASSERT(strncmp(err, want, strlen(want)) == 0);

    char *big = malloc(JWKS_MAX_FILE + 1);
    memset(big, ' ', JWKS_MAX_FILE + 1);
    write_file(path, big, JWKS_MAX_FILE + 1);
    free(big);
    CU_ASSERT(jwks_load_file(path, false, err, sizeof err) == NULL);
    CU_ASSERT(strstr(err, "larger than") != NULL);
    unlink(path);

    CU_ASSERT(jwks_load_file(path, false, err, sizeof err) == NULL);
    snprintf(want, sizeof want, "%s: No such file", path);
    CU_ASSERT(strncmp(err, want, strlen(want)) == 0);
    CU_ASSERT(jwks_load_file("/tmp", false, err, sizeof err) == NULL);
    CU_ASSERT(strcmp(err, "/tmp: not a regular file") == 0);
}

/* ---- tokens --------------------------------------------------------------------------- */

enum signer {
    S_RSA,
    S_RSA_PSS_MAXSALT,
    S_P256,
    S_P384,
    S_ED,
    S_HS,
    S_HS_RSA_N,
    S_HS_RSA_PEM,
    S_NONE
};

/* An HMAC-SHA256 key of S_HS_RSA_*: the RSA public key's bytes, as the confusion attack
 * uses them. */
static size_t confusion_secret(enum signer s, unsigned char *buf, size_t cap)
{
    if (s == S_HS_RSA_N) {
        BIGNUM *n = NULL;
        EVP_PKEY_get_bn_param(k_rsa, OSSL_PKEY_PARAM_RSA_N, &n);
        size_t len = (size_t)BN_bn2bin(n, buf);
        BN_free(n);
        return len;
    }
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, k_rsa);
    int len = BIO_read(b, buf, (int)cap);
    BIO_free(b);
    return len > 0 ? (size_t)len : 0;
}

/* The signature of DATA by S with HOW, into SIG; its length. */
static size_t sign(enum signer s, enum jwt_alg how, const char *data, size_t dlen,
                   unsigned char *sig)
{
    if (s == S_NONE)
        return 0;
    if (s == S_HS || s == S_HS_RSA_N || s == S_HS_RSA_PEM) {
        unsigned char keybuf[2048];
        size_t klen = sizeof hs_secret;
        const unsigned char *key = hs_secret;
        if (s != S_HS) {
            klen = confusion_secret(s, keybuf, sizeof keybuf);
            key = keybuf;
        }
        unsigned mdlen = 0;
        HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)data, dlen, sig, &mdlen);
        return mdlen;
    }
    EVP_PKEY *k = s == S_RSA || s == S_RSA_PSS_MAXSALT ? k_rsa
                  : s == S_P256                        ? k_p256
                  : s == S_P384                        ? k_p384
                                                       : k_ed;
    const char *md = how == JWT_ALG_RS384 || how == JWT_ALG_ES384 ? "SHA384"
                     : how == JWT_ALG_RS512                       ? "SHA512"
                     : how == JWT_ALG_EDDSA                       ? NULL
                                                                  : "SHA256";
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char der[1024];
    size_t len = sizeof der;
    CU_ASSERT_FATAL(EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL, k, NULL) == 1);
    if (how == JWT_ALG_PS256) {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, s == S_RSA_PSS_MAXSALT ? RSA_PSS_SALTLEN_MAX
                                                                      : RSA_PSS_SALTLEN_DIGEST);
    }
    CU_ASSERT_FATAL(EVP_DigestSign(ctx, der, &len, (const unsigned char *)data, dlen) == 1);
    EVP_MD_CTX_free(ctx);
    if (s != S_P256 && s != S_P384) {
        memcpy(sig, der, len);
        return len;
    }
    if (how == JWT_ALG_RS256) { /* stands for "keep the DER" in rows */
        memcpy(sig, der, len);
        return len;
    }
    /* DER -> R || S */
    size_t clen = s == S_P256 ? 32 : 48;
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    CU_ASSERT_FATAL(es != NULL);
    BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, (int)clen);
    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + clen, (int)clen);
    ECDSA_SIG_free(es);
    return 2 * clen;
}

/* HEADER.PAYLOAD.SIGNATURE; malloc'd. */
static char *mint(enum signer s, enum jwt_alg how, const char *header, const char *payload)
{
    char *h = b64url((const unsigned char *)header, strlen(header));
    char *p = b64url((const unsigned char *)payload, strlen(payload));
    size_t dlen = strlen(h) + 1 + strlen(p);
    char *tok = malloc(dlen + 2000);
    sprintf(tok, "%s.%s", h, p);
    unsigned char sig[1024];
    size_t slen = sign(s, how, tok, dlen, sig);
    char *sb = b64url(sig, slen);
    sprintf(tok + dlen, ".%s", sb);
    free(h);
    free(p);
    free(sb);
    return tok;
}

/* What is done to a token after signing. */
enum mut {
    M_NONE,
    M_FLIP_SIG, /* one bit of the signature */
    M_FLIP_PAYLOAD, /* one character of the payload part */
    M_SHORT_SIG, /* the signature one byte shorter */
    M_PAD, /* "=" after the signature */
    M_PLUS, /* '+' for the signature's first character */
    M_SLASH, /* '/' likewise */
    M_DOT, /* a fourth part */
    M_TRAIL_BITS, /* the signature's last character with its unused bits set */
    M_SPACE, /* a space at the end */
    M_BEARER, /* "Bearer " in front */
    M_NO_SIG, /* the signature removed, its dot kept */
    M_TWO_PARTS, /* the signature and its dot removed */
};

static char *mutate(char *tok, enum mut m)
{
    size_t len = strlen(tok);
    char *sig = strrchr(tok, '.') + 1;
    char *out = malloc(len + 16);
    strcpy(out, tok);
    char *osig = out + (sig - tok);
    switch (m) {
    case M_FLIP_SIG: {
        unsigned char raw[1024];
        size_t n;
        CU_ASSERT_FATAL(jwt_b64url_decode(sig, strlen(sig), raw, sizeof raw, &n));
        raw[n / 2] ^= 0x10;
        char *b = b64url(raw, n);
        strcpy(osig, b);
        free(b);
        break;
    }
    case M_SHORT_SIG: {
        unsigned char raw[1024];
        size_t n;
        CU_ASSERT_FATAL(jwt_b64url_decode(sig, strlen(sig), raw, sizeof raw, &n));
        char *b = b64url(raw, n - 1);
        strcpy(osig, b);
        free(b);
        break;
    }
    case M_FLIP_PAYLOAD: {
        char *c = strchr(out, '.') + 2;
        *c = *c == 'A' ? 'B' : 'A';
        break;
    }
    case M_PAD:
        strcat(out, "=");
        break;
    case M_PLUS:
        osig[0] = '+';
        break;
    case M_SLASH:
        osig[0] = '/';
        break;
    case M_DOT:
        strcat(out, ".e30");
        break;
    case M_TRAIL_BITS: {
        /* a signature length not a multiple of 3 leaves unused bits in its last character */
        size_t sl = strlen(osig);
        CU_ASSERT_FATAL(sl % 4 != 0);
        char *last = &osig[sl - 1];
        static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        *last = a[(strchr(a, *last) - a) | 1];
        break;
    }
    case M_SPACE:
        strcat(out, " ");
        break;
    case M_BEARER:
        sprintf(out, "Bearer %s", tok);
        break;
    case M_NO_SIG:
        *osig = '\0';
        break;
    case M_TWO_PARTS:
        osig[-1] = '\0';
        break;
    default:
        break;
    }
    free(tok);
    return out;
}

/* Policies: 0 the usual one, 1 none of the optional checks, 2 RS256 only, 3 a claim
 * named by conf, 4 leeway 0. */
static const struct jwt_policy pols[] = {
    {.issuer = "https://issuer.example", .audience = "api", .leeway_s = 30},
    {.leeway_s = 0},
    {.issuer = "https://issuer.example",
     .audience = "api",
     .leeway_s = 30,
     .algs = JWT_ALG_BIT(JWT_ALG_RS256)},
    {.subject_claim = "client_id", .org_claim = "tenant", .plan_claim = "tier"},
    {.issuer = "https://issuer.example", .audience = "api"},
};

/* clang-format off */
#define H(alg, kid) "{\"alg\":\"" alg "\",\"kid\":\"" kid "\",\"typ\":\"JWT\"}"
#define ISS "\"iss\":\"https://issuer.example\""
#define CL ISS ",\"aud\":\"api\",\"sub\":\"user-1\""
#define P_OK "{" CL ",\"exp\":1700000600}"
#define P(x) "{" CL ",\"exp\":1700000600," x "}"
#define RS JWT_ALG_RS256
#define ES JWT_ALG_ES256
/* clang-format on */

struct tcase {
    const char *name;
    int keyset, pol;
    enum signer signer;
    enum jwt_alg how;
    const char *header, *payload;
    enum mut mut;
    uint64_t now; /* 0: NOW */
    enum jwt_result want;
    const char *sub, *scopes; /* when JWT_OK and not NULL */
};

/* clang-format off */
static const struct tcase tcases[] = {
    /* every algorithm */
    {"RS256", KS_ALL, 0, S_RSA, JWT_ALG_RS256, H("RS256", "rsa"), P("\"scope\":\"read write\""), M_NONE, 0, JWT_OK, "user-1", "read write"},
    {"RS384", KS_ALL, 0, S_RSA, JWT_ALG_RS384, H("RS384", "rsa"), P_OK, M_NONE, 0, JWT_OK, "user-1", ""},
    {"RS512", KS_ALL, 0, S_RSA, JWT_ALG_RS512, H("RS512", "rsa"), P_OK, M_NONE, 0, JWT_OK, NULL, NULL},
    {"PS256", KS_ALL, 0, S_RSA, JWT_ALG_PS256, H("PS256", "rsa"), P_OK, M_NONE, 0, JWT_OK, NULL, NULL},
    {"ES256", KS_ALL, 0, S_P256, JWT_ALG_ES256, H("ES256", "p256"), P_OK, M_NONE, 0, JWT_OK, NULL, NULL},
    {"ES384", KS_ALL, 0, S_P384, JWT_ALG_ES384, H("ES384", "p384"), P_OK, M_NONE, 0, JWT_OK, NULL, NULL},
    {"EdDSA", KS_ALL, 0, S_ED, JWT_ALG_EDDSA, H("EdDSA", "ed"), P_OK, M_NONE, 0, JWT_OK, NULL, NULL},
    {"HS256", KS_ALL, 0, S_HS, JWT_ALG_HS256, H("HS256", "hs"), P_OK, M_NONE, 0, JWT_OK, NULL, NULL},
    {"HS256, the only key, no kid", KS_HS_ONE, 0, S_HS, JWT_ALG_HS256, "{\"alg\":\"HS256\"}", P_OK, M_NONE, 0, JWT_OK, NULL, NULL},
    {"one key without kid, no kid", KS_RSA_ONE, 0, S_RSA, RS, "{\"alg\":\"RS256\"}", P_OK, M_NONE, 0, JWT_OK, NULL, NULL},
    {"header members not read are ignored", KS_ALL, 0, S_RSA, RS, "{\"typ\":\"at+jwt\",\"alg\":\"RS256\",\"jku\":\"https://evil/\",\"jwk\":{\"kty\":\"oct\",\"k\":\"AAAA\"},\"x5c\":[\"x\"],\"kid\":\"rsa\"}", P_OK, M_NONE, 0, JWT_OK, NULL, NULL},

    /* the signature */
    {"a bit of the signature", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P_OK, M_FLIP_SIG, 0, JWT_BAD_SIGNATURE, NULL, NULL},
    {"a bit of an ES256 signature", KS_ALL, 0, S_P256, ES, H("ES256", "p256"), P_OK, M_FLIP_SIG, 0, JWT_BAD_SIGNATURE, NULL, NULL},
    {"a bit of an ES384 signature", KS_ALL, 0, S_P384, JWT_ALG_ES384, H("ES384", "p384"), P_OK, M_FLIP_SIG, 0, JWT_BAD_SIGNATURE, NULL, NULL},
    {"a bit of an EdDSA signature", KS_ALL, 0, S_ED, JWT_ALG_EDDSA, H("EdDSA", "ed"), P_OK, M_FLIP_SIG, 0, JWT_BAD_SIGNATURE, NULL, NULL},
    {"a bit of an HMAC", KS_ALL, 0, S_HS, JWT_ALG_HS256, H("HS256", "hs"), P_OK, M_FLIP_SIG, 0, JWT_BAD_SIGNATURE, NULL, NULL},
    {"a character of the payload", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P_OK, M_FLIP_PAYLOAD, 0, JWT_BAD_SIGNATURE, NULL, NULL},
    {"an ES256 signature one byte short", KS_ALL, 0, S_P256, ES, H("ES256", "p256"), P_OK, M_SHORT_SIG, 0, JWT_BAD_SIGNATURE, NULL, NULL},
    {"an HMAC one byte short", KS_ALL, 0, S_HS, JWT_ALG_HS256, H("HS256", "hs"), P_OK, M_SHORT_SIG, 0, JWT_BAD_SIGNATURE, NULL, NULL},
    {"an ES256 signature in DER", KS_ALL, 0, S_P256, RS, H("ES256", "p256"), P_OK, M_NONE, 0, JWT_BAD_SIGNATURE, NULL, NULL},
    {"PS256 with the longest salt, not the digest's size", KS_ALL, 0, S_RSA_PSS_MAXSALT, JWT_ALG_PS256, H("PS256", "rsa"), P_OK, M_NONE, 0, JWT_BAD_SIGNATURE, NULL, NULL},
    {"PS256 in the header, PKCS#1 v1.5 signature", KS_ALL, 0, S_RSA, RS, H("PS256", "rsa"), P_OK, M_NONE, 0, JWT_BAD_SIGNATURE, NULL, NULL},
    {"RS384 in the header, RS256 signature", KS_ALL, 0, S_RSA, RS, H("RS384", "rsa"), P_OK, M_NONE, 0, JWT_BAD_SIGNATURE, NULL, NULL},
    {"no signature", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P_OK, M_NO_SIG, 0, JWT_BAD_SIGNATURE, NULL, NULL},
    {"signed by another key of the set", KS_ALL, 0, S_P384, JWT_ALG_ES384, H("ES256", "p256"), P_OK, M_NONE, 0, JWT_BAD_SIGNATURE, NULL, NULL},
    {"a forged token that has expired", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" CL ",\"exp\":1}", M_FLIP_SIG, 0, JWT_BAD_SIGNATURE, NULL, NULL},
    {"a forged token with a bad payload", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "[]", M_FLIP_SIG, 0, JWT_BAD_SIGNATURE, NULL, NULL},

    /* alg: none and algorithm confusion */
    {"alg none", KS_ALL, 0, S_NONE, RS, H("none", "rsa"), P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"alg none, no kid", KS_RSA_ONE, 0, S_NONE, RS, "{\"alg\":\"none\"}", P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"alg None", KS_ALL, 0, S_NONE, RS, H("None", "rsa"), P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"alg NONE with a signature", KS_ALL, 0, S_RSA, RS, H("NONE", "rsa"), P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"alg rs256", KS_ALL, 0, S_RSA, RS, H("rs256", "rsa"), P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"alg HS512", KS_ALL, 0, S_HS, JWT_ALG_HS256, H("HS512", "hs"), P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"alg with a NUL", KS_ALL, 0, S_RSA, RS, "{\"alg\":\"RS256\\u0000\",\"kid\":\"rsa\"}", P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"alg long", KS_ALL, 0, S_RSA, RS, H("RS256RS256RS256RS256RS256", "rsa"), P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"HS256 with the RSA modulus as secret", KS_ALL, 0, S_HS_RSA_N, JWT_ALG_HS256, H("HS256", "rsa"), P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"HS256 with the RSA PEM as secret", KS_ALL, 0, S_HS_RSA_PEM, JWT_ALG_HS256, H("HS256", "rsa"), P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"HS256 with the RSA PEM, set without HMAC", KS_NOHMAC, 0, S_HS_RSA_PEM, JWT_ALG_HS256, H("HS256", "rsa"), P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"HS256 with the RSA PEM, one key, no kid", KS_RSA_ONE, 0, S_HS_RSA_PEM, JWT_ALG_HS256, "{\"alg\":\"HS256\"}", P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"ES256 with the kid of a P-384 key", KS_ALL, 0, S_P256, ES, H("ES256", "p384"), P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"ES384 with the kid of a P-256 key", KS_ALL, 0, S_P384, JWT_ALG_ES384, H("ES384", "p256"), P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"RS256 with the kid of an EC key", KS_ALL, 0, S_RSA, RS, H("RS256", "p256"), P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"EdDSA with the kid of an RSA key", KS_ALL, 0, S_ED, JWT_ALG_EDDSA, H("EdDSA", "rsa"), P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"RS256 with the kid of the HMAC key", KS_ALL, 0, S_RSA, RS, H("RS256", "hs"), P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"the key says RS256, the token PS256", KS_RSA_RS256, 0, S_RSA, JWT_ALG_PS256, H("PS256", "rsa"), P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"the key says RS256, the token RS512", KS_RSA_RS256, 0, S_RSA, JWT_ALG_RS512, H("RS512", "rsa"), P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"the key says RS256, the token too", KS_RSA_RS256, 0, S_RSA, RS, H("RS256", "rsa"), P_OK, M_NONE, 0, JWT_OK, NULL, NULL},
    {"policy RS256 only: ES256", KS_ALL, 2, S_P256, ES, H("ES256", "p256"), P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"policy RS256 only: HS256", KS_ALL, 2, S_HS, JWT_ALG_HS256, H("HS256", "hs"), P_OK, M_NONE, 0, JWT_ALG_REFUSED, NULL, NULL},
    {"policy RS256 only: RS256", KS_ALL, 2, S_RSA, RS, H("RS256", "rsa"), P_OK, M_NONE, 0, JWT_OK, NULL, NULL},

    /* key selection */
    {"unknown kid", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa2"), P_OK, M_NONE, 0, JWT_UNKNOWN_KEY, NULL, NULL},
    {"kid of another case", KS_ALL, 0, S_RSA, RS, H("RS256", "RSA"), P_OK, M_NONE, 0, JWT_UNKNOWN_KEY, NULL, NULL},
    {"no kid, several keys", KS_ALL, 0, S_RSA, RS, "{\"alg\":\"RS256\"}", P_OK, M_NONE, 0, JWT_UNKNOWN_KEY, NULL, NULL},
    {"a kid, the only key has none", KS_RSA_ONE, 0, S_RSA, RS, H("RS256", "rsa"), P_OK, M_NONE, 0, JWT_UNKNOWN_KEY, NULL, NULL},
    {"HS256 kid, set without HMAC", KS_NOHMAC, 0, S_HS, JWT_ALG_HS256, H("HS256", "hs"), P_OK, M_NONE, 0, JWT_UNKNOWN_KEY, NULL, NULL},
    {"empty kid", KS_ALL, 0, S_RSA, RS, H("RS256", ""), P_OK, M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"kid not a string", KS_ALL, 0, S_RSA, RS, "{\"alg\":\"RS256\",\"kid\":1}", P_OK, M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"kid with a newline", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa\\n"), P_OK, M_NONE, 0, JWT_MALFORMED, NULL, NULL},

    /* the header */
    {"no alg", KS_ALL, 0, S_RSA, RS, "{\"kid\":\"rsa\"}", P_OK, M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"alg not a string", KS_ALL, 0, S_RSA, RS, "{\"alg\":256,\"kid\":\"rsa\"}", P_OK, M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"alg null", KS_ALL, 0, S_RSA, RS, "{\"alg\":null,\"kid\":\"rsa\"}", P_OK, M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"alg twice", KS_ALL, 0, S_RSA, RS, "{\"alg\":\"RS256\",\"kid\":\"rsa\",\"alg\":\"none\"}", P_OK, M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"kid twice", KS_ALL, 0, S_RSA, RS, "{\"alg\":\"RS256\",\"kid\":\"rsa\",\"kid\":\"hs\"}", P_OK, M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"crit a string", KS_ALL, 0, S_RSA, RS, "{\"alg\":\"RS256\",\"kid\":\"rsa\",\"crit\":\"exp\"}", P_OK, M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"crit empty", KS_ALL, 0, S_RSA, RS, "{\"alg\":\"RS256\",\"kid\":\"rsa\",\"crit\":[]}", P_OK, M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"crit", KS_ALL, 0, S_RSA, RS, "{\"alg\":\"RS256\",\"kid\":\"rsa\",\"crit\":[\"exp\"]}", P_OK, M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"header an array", KS_ALL, 0, S_RSA, RS, "[\"RS256\"]", P_OK, M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"header not JSON", KS_ALL, 0, S_RSA, RS, "alg=RS256", P_OK, M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"header with trailing bytes", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa") "x", P_OK, M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"header with a comment", KS_ALL, 0, S_RSA, RS, "{\"alg\":\"RS256\",/**/\"kid\":\"rsa\"}", P_OK, M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"header two objects", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa") H("RS256", "rsa"), P_OK, M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"header with invalid UTF-8", KS_ALL, 0, S_RSA, RS, "{\"alg\":\"RS256\",\"kid\":\"rsa\",\"x\":\"\xff\"}", P_OK, M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"header nested 16 deep", KS_ALL, 0, S_RSA, RS, "{\"alg\":\"RS256\",\"kid\":\"rsa\",\"x\":[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]}", P_OK, M_NONE, 0, JWT_OK, NULL, NULL},
    {"header nested 17 deep", KS_ALL, 0, S_RSA, RS, "{\"alg\":\"RS256\",\"kid\":\"rsa\",\"x\":[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]}", P_OK, M_NONE, 0, JWT_MALFORMED, NULL, NULL},

    /* the compact form */
    {"padding", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P_OK, M_PAD, 0, JWT_MALFORMED, NULL, NULL},
    {"'+' in the signature", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P_OK, M_PLUS, 0, JWT_MALFORMED, NULL, NULL},
    {"'/' in the signature", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P_OK, M_SLASH, 0, JWT_MALFORMED, NULL, NULL},
    {"four parts", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P_OK, M_DOT, 0, JWT_MALFORMED, NULL, NULL},
    {"two parts", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P_OK, M_TWO_PARTS, 0, JWT_MALFORMED, NULL, NULL},
    {"unused bits set", KS_ALL, 0, S_P256, ES, H("ES256", "p256"), P_OK, M_TRAIL_BITS, 0, JWT_MALFORMED, NULL, NULL},
    {"a space after", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P_OK, M_SPACE, 0, JWT_MALFORMED, NULL, NULL},
    {"Bearer in front", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P_OK, M_BEARER, 0, JWT_MALFORMED, NULL, NULL},

    /* time */
    {"exp missing", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" CL "}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"exp a string", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" CL ",\"exp\":\"1700000600\"}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"exp null", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" CL ",\"exp\":null}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"exp negative", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" CL ",\"exp\":-1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"exp with an exponent", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" CL ",\"exp\":1.7000006e9}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"exp 2^53 - 1", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" CL ",\"exp\":9007199254740991}", M_NONE, 0, JWT_OK, NULL, NULL},
    {"exp 2^53", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" CL ",\"exp\":9007199254740992}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"exp 2^64", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" CL ",\"exp\":18446744073709551616}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"exp twice", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" CL ",\"exp\":1,\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"exp 0", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" CL ",\"exp\":0}", M_NONE, 0, JWT_EXPIRED, NULL, NULL},
    {"expired an hour ago", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" CL ",\"exp\":1699996400}", M_NONE, 0, JWT_EXPIRED, NULL, NULL},
    {"exp + leeway = now", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" CL ",\"exp\":1699999970}", M_NONE, 0, JWT_EXPIRED, NULL, NULL},
    {"exp + leeway = now + 1", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" CL ",\"exp\":1699999971}", M_NONE, 0, JWT_OK, NULL, NULL},
    {"exp fraction rounds down", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" CL ",\"exp\":1699999970.9}", M_NONE, 0, JWT_EXPIRED, NULL, NULL},
    {"exp fraction", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" CL ",\"exp\":1699999971.5}", M_NONE, 0, JWT_OK, NULL, NULL},
    {"exp = now, no leeway", KS_ALL, 4, S_RSA, RS, H("RS256", "rsa"), "{" CL ",\"exp\":1700000000}", M_NONE, 0, JWT_EXPIRED, NULL, NULL},
    {"exp = now + 1, no leeway", KS_ALL, 4, S_RSA, RS, H("RS256", "rsa"), "{" CL ",\"exp\":1700000001}", M_NONE, 0, JWT_OK, NULL, NULL},
    {"nbf in the past", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"nbf\":1699990000"), M_NONE, 0, JWT_OK, NULL, NULL},
    {"nbf in an hour", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"nbf\":1700003600"), M_NONE, 0, JWT_NOT_YET_VALID, NULL, NULL},
    {"nbf - leeway = now", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"nbf\":1700000030"), M_NONE, 0, JWT_OK, NULL, NULL},
    {"nbf - leeway = now + 1", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"nbf\":1700000031"), M_NONE, 0, JWT_NOT_YET_VALID, NULL, NULL},
    {"nbf fraction rounds up", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"nbf\":1700000030.01"), M_NONE, 0, JWT_NOT_YET_VALID, NULL, NULL},
    {"nbf .000", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"nbf\":1700000030.000"), M_NONE, 0, JWT_OK, NULL, NULL},
    {"nbf = now, no leeway", KS_ALL, 4, S_RSA, RS, H("RS256", "rsa"), P("\"nbf\":1700000000"), M_NONE, 0, JWT_OK, NULL, NULL},
    {"nbf = now + 1, no leeway", KS_ALL, 4, S_RSA, RS, H("RS256", "rsa"), P("\"nbf\":1700000001"), M_NONE, 0, JWT_NOT_YET_VALID, NULL, NULL},
    {"nbf a string", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"nbf\":\"0\""), M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"the same token later", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P_OK, M_NONE, NOW + 630, JWT_EXPIRED, NULL, NULL},
    {"iat is not read", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"iat\":\"yesterday\""), M_NONE, 0, JWT_OK, NULL, NULL},

    /* issuer and audience */
    {"another issuer", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{\"iss\":\"https://evil.example\",\"aud\":\"api\",\"sub\":\"u\",\"exp\":1700000600}", M_NONE, 0, JWT_BAD_ISSUER, NULL, NULL},
    {"issuer with a slash", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{\"iss\":\"https://issuer.example/\",\"aud\":\"api\",\"sub\":\"u\",\"exp\":1700000600}", M_NONE, 0, JWT_BAD_ISSUER, NULL, NULL},
    {"issuer in capitals", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{\"iss\":\"HTTPS://ISSUER.EXAMPLE\",\"aud\":\"api\",\"sub\":\"u\",\"exp\":1700000600}", M_NONE, 0, JWT_BAD_ISSUER, NULL, NULL},
    {"issuer with a NUL after", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{\"iss\":\"https://issuer.example\\u0000\",\"aud\":\"api\",\"sub\":\"u\",\"exp\":1700000600}", M_NONE, 0, JWT_BAD_ISSUER, NULL, NULL},
    {"no issuer", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{\"aud\":\"api\",\"sub\":\"u\",\"exp\":1700000600}", M_NONE, 0, JWT_BAD_ISSUER, NULL, NULL},
    {"issuer an array", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{\"iss\":[\"https://issuer.example\"],\"aud\":\"api\",\"sub\":\"u\",\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"issuer twice", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" CL "," ISS ",\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"another audience", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"web\",\"sub\":\"u\",\"exp\":1700000600}", M_NONE, 0, JWT_BAD_AUDIENCE, NULL, NULL},
    {"audience in capitals", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"API\",\"sub\":\"u\",\"exp\":1700000600}", M_NONE, 0, JWT_BAD_AUDIENCE, NULL, NULL},
    {"no audience", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"sub\":\"u\",\"exp\":1700000600}", M_NONE, 0, JWT_BAD_AUDIENCE, NULL, NULL},
    {"audience array holding it", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":[\"web\",\"api\"],\"sub\":\"u\",\"exp\":1700000600}", M_NONE, 0, JWT_OK, NULL, NULL},
    {"audience array holding it first", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":[\"api\",\"web\"],\"sub\":\"u\",\"exp\":1700000600}", M_NONE, 0, JWT_OK, NULL, NULL},
    {"audience array without it", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":[\"web\",\"apix\"],\"sub\":\"u\",\"exp\":1700000600}", M_NONE, 0, JWT_BAD_AUDIENCE, NULL, NULL},
    {"audience array empty", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":[],\"sub\":\"u\",\"exp\":1700000600}", M_NONE, 0, JWT_BAD_AUDIENCE, NULL, NULL},
    {"audience array with a number", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":[\"api\",1],\"sub\":\"u\",\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"audience array in an array", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":[[\"api\"]],\"sub\":\"u\",\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"audience an object", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":{\"x\":\"api\"},\"sub\":\"u\",\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"another audience, expired", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"web\",\"sub\":\"u\",\"exp\":1}", M_NONE, 0, JWT_BAD_AUDIENCE, NULL, NULL},
    {"nothing checked: no iss, no aud", KS_ALL, 1, S_RSA, RS, H("RS256", "rsa"), "{\"sub\":\"u\",\"exp\":1700000600}", M_NONE, 0, JWT_OK, "u", ""},
    {"nothing checked: aud still a string or array", KS_ALL, 1, S_RSA, RS, H("RS256", "rsa"), "{\"sub\":\"u\",\"aud\":5,\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},

    /* the payload */
    {"payload an array", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "[" P_OK "]", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"payload not JSON", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "sub=u", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"payload cut short", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" CL ",\"exp\":1700000600", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"payload with trailing bytes", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P_OK " {}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"payload nested 16 deep", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"x\":{\"a\":[[[[[[[[[[[[[{}]]]]]]]]]]]]]}"), M_NONE, 0, JWT_OK, NULL, NULL},
    {"payload nested 17 deep", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"x\":{\"a\":[[[[[[[[[[[[[[{}]]]]]]]]]]]]]]}"), M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"payload nested 84 deep, unclosed", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["), M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"other claims twice are fine", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"x\":1,\"x\":2"), M_NONE, 0, JWT_OK, NULL, NULL},
    {"claims named in nested objects are not read", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"x\":{\"sub\":\"admin\",\"exp\":\"no\",\"scope\":\"admin\"}"), M_NONE, 0, JWT_OK, "user-1", ""},

    /* the claims copied out */
    {"no sub", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"api\",\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"empty sub", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"api\",\"sub\":\"\",\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"sub twice", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"sub\":\"admin\""), M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"sub an integer", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"api\",\"sub\":12345,\"exp\":1700000600}", M_NONE, 0, JWT_OK, "12345", NULL},
    {"sub a negative integer", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"api\",\"sub\":-5,\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"sub a fraction", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"api\",\"sub\":1.5,\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"sub true", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"api\",\"sub\":true,\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"sub an object", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"api\",\"sub\":{},\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"sub with CR LF", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"api\",\"sub\":\"u\\r\\nX-Admin: 1\",\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"sub with a NUL", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"api\",\"sub\":\"admin\\u0000x\",\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"sub with DEL", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"api\",\"sub\":\"a\\u007f\",\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"sub in UTF-8", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"api\",\"sub\":\"J\\u00fcrgen\",\"exp\":1700000600}", M_NONE, 0, JWT_OK, "J\xc3\xbcrgen", NULL},
    /* what the upstream reads from the header must be what was limited and checked */
    {"sub with a leading blank", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"api\",\"sub\":\" carol\",\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"sub with a trailing blank", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"api\",\"sub\":\"carol \",\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"sub with a trailing tab", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"api\",\"sub\":\"carol\\t\",\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"sub with a blank inside", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"api\",\"sub\":\"carol smith\",\"exp\":1700000600}", M_NONE, 0, JWT_OK, "carol smith", NULL},
    {"sub a lone surrogate", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"api\",\"sub\":\"a\\udc00\",\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"sub with a C1 control", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"api\",\"sub\":\"a\\u0085b\",\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"sub empty", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), "{" ISS ",\"aud\":\"api\",\"sub\":\"\",\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"org empty", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"org\":\"\""), M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"org with a leading blank", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"org\":\" acme\""), M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"plan with a trailing blank", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"plan\":\"pro \""), M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"org and plan", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"org\":\"acme\",\"plan\":\"pro\""), M_NONE, 0, JWT_OK, NULL, NULL},
    {"org an integer", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"org\":42"), M_NONE, 0, JWT_OK, NULL, NULL},
    {"org an array", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"org\":[\"a\"]"), M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"plan with a tab", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"plan\":\"a\\tb\""), M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"claims named by conf", KS_ALL, 3, S_RSA, RS, H("RS256", "rsa"), "{\"sub\":\"x\",\"client_id\":\"svc-7\",\"tenant\":\"t1\",\"tier\":\"gold\",\"exp\":1700000600}", M_NONE, 0, JWT_OK, "svc-7", NULL},
    {"claims named by conf: the subject missing", KS_ALL, 3, S_RSA, RS, H("RS256", "rsa"), "{\"sub\":\"x\",\"exp\":1700000600}", M_NONE, 0, JWT_MALFORMED, NULL, NULL},

    /* scopes */
    {"scope spaces folded", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"scope\":\"  read   write \""), M_NONE, 0, JWT_OK, NULL, "read write"},
    {"scope empty", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"scope\":\"\""), M_NONE, 0, JWT_OK, NULL, ""},
    {"scp array", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"scp\":[\"read\",\"write:all\"]"), M_NONE, 0, JWT_OK, NULL, "read write:all"},
    {"scp string", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"scp\":\"read write\""), M_NONE, 0, JWT_OK, NULL, "read write"},
    {"scp empty array", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"scp\":[]"), M_NONE, 0, JWT_OK, NULL, ""},
    {"scope wins over scp", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"scp\":[\"admin\"],\"scope\":\"read\""), M_NONE, 0, JWT_OK, NULL, "read"},
    {"scp element with a space", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"scp\":[\"read admin\"]"), M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"scp element empty", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"scp\":[\"\"]"), M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"scp element a number", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"scp\":[1]"), M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"scope an array", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"scope\":[\"read\"]"), M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"scope with a quote", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"scope\":\"re\\\"ad\""), M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"scope with a backslash", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"scope\":\"re\\\\ad\""), M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"scope with a tab", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"scope\":\"read\\twrite\""), M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"scope not ASCII", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"scope\":\"r\\u00e9ad\""), M_NONE, 0, JWT_MALFORMED, NULL, NULL},
    {"scope twice", KS_ALL, 0, S_RSA, RS, H("RS256", "rsa"), P("\"scope\":\"a\",\"scope\":\"b\""), M_NONE, 0, JWT_MALFORMED, NULL, NULL},
};
/* clang-format on */

static void check_zero(const struct jwt_claims *c)
{
    static const struct jwt_claims zero;
    CU_ASSERT(memcmp(c, &zero, sizeof zero) == 0);
}

static void test_tokens(void)
{
    for (size_t i = 0; i < sizeof tcases / sizeof tcases[0]; i++) {
        const struct tcase *t = &tcases[i];
        char *tok = mutate(mint(t->signer, t->how, t->header, t->payload), t->mut);
        struct jwt_claims c;
        memset(&c, 0x55, sizeof c);
        enum jwt_result r = jwt_verify(ks[t->keyset], &pols[t->pol], tok, strlen(tok),
                                       t->now ? t->now : NOW, &c);
        bool ok = r == t->want;
        if (ok && r == JWT_OK) {
            ok = (!t->sub || strcmp(c.sub, t->sub) == 0) &&
                 (!t->scopes || strcmp(c.scopes, t->scopes) == 0);
        }
        if (!ok)
            fprintf(stderr,
                    "\ntoken %zu \"%s\": got %s (sub \"%.20s\" scopes \"%.40s\"), want %s\n", i,
                    t->name, jwt_result_str(r), r == JWT_OK ? c.sub : "",
                    r == JWT_OK ? c.scopes : "", jwt_result_str(t->want));
        CU_ASSERT(ok);
        if (r != JWT_OK)
            check_zero(&c);
        free(tok);
    }
}

/* What jwt_verify fills in. */
static void test_claims_out(void)
{
    char *tok = mint(S_P256, ES, H("ES256", "p256"),
                     P("\"nbf\":1699999000.5,\"org\":\"acme\",\"plan\":\"pro\","
                       "\"scp\":[\"a\",\"b\"]"));
    struct jwt_claims c;
    CU_ASSERT(jwt_verify(ks[KS_ALL], &pols[0], tok, strlen(tok), NOW, &c) == JWT_OK);
    CU_ASSERT_STRING_EQUAL(c.sub, "user-1");
    CU_ASSERT_STRING_EQUAL(c.org, "acme");
    CU_ASSERT_STRING_EQUAL(c.plan, "pro");
    CU_ASSERT_STRING_EQUAL(c.scopes, "a b");
    CU_ASSERT_STRING_EQUAL(c.kid, "p256");
    CU_ASSERT(c.exp == 1700000600);
    CU_ASSERT(c.nbf == 1699999001);
    CU_ASSERT(c.alg == JWT_ALG_ES256);
    free(tok);

    tok = mint(S_HS, JWT_ALG_HS256, "{\"alg\":\"HS256\"}",
               "{\"client_id\":\"c\",\"tenant\":7,"
               "\"tier\":\"free\",\"exp\":1700000600}");
    CU_ASSERT(jwt_verify(ks[KS_HS_ONE], &pols[3], tok, strlen(tok), NOW, &c) == JWT_OK);
    CU_ASSERT_STRING_EQUAL(c.sub, "c");
    CU_ASSERT_STRING_EQUAL(c.org, "7");
    CU_ASSERT_STRING_EQUAL(c.plan, "free");
    CU_ASSERT_STRING_EQUAL(c.kid, "");
    CU_ASSERT(c.nbf == 0);
    free(tok);

    CU_ASSERT_STRING_EQUAL(jwt_result_str(JWT_EXPIRED), "expired");
    CU_ASSERT_STRING_EQUAL(jwt_result_str(JWT_BAD_AUDIENCE), "wrong audience");
    CU_ASSERT_STRING_EQUAL(jwt_result_str((enum jwt_result)99), "?");
    CU_ASSERT(jwt_verify(ks[KS_ALL], NULL, "a.b.c", 5, NOW, &c) == JWT_MALFORMED);
    CU_ASSERT(jwt_verify(NULL, &pols[0], "a.b.c", 5, NOW, &c) == JWT_MALFORMED);
}

/* Tokens that are not three base64url parts. */
static void test_compact(void)
{
    static const char *const bad[] = {
        "",
        ".",
        "..",
        "...",
        "a",
        "a.b",
        "a.b.c.d",
        "e30.e30.",
        "e30..AAAA",
        ".e30.AAAA",
        "e30.e30.AAAA.",
        " e30.e30.AAAA",
        "e30 .e30.AAAA",
        "e30.e3 0.AAAA",
        "e30.e30.AA\nAA",
        "e30=.e30.AAAA",
        "e30.e30=.AAAA",
        "e30.e30.AAA=",
        "e3.e30.AAAA",
        "e30.e30.A",
        "e30.e30.AAAAA",
        "e30%.e30.AAAA",
        "e31.e30.AAAA",
    };
    struct jwt_claims c;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len = strlen(bad[i]);
        enum jwt_result r = jwt_verify(ks[KS_ALL], &pols[0], bad[i], len, NOW, &c);
        if (r != JWT_MALFORMED)
            fprintf(stderr, "\ncompact \"%s\": %s\n", bad[i], jwt_result_str(r));
        CU_ASSERT(r == JWT_MALFORMED);
    }
    /* a NUL inside the signature part */
    CU_ASSERT(jwt_verify(ks[KS_ALL], &pols[0], "e30.e30.AA\0A", 12, NOW, &c) == JWT_MALFORMED);
}

/* A payload whose token is exactly LEN bytes long (padding claim and header adjusted);
 * malloc'd token. */
static char *token_of_length(size_t want)
{
    for (size_t hpad = 0; hpad < 3; hpad++) {
        char header[128];
        snprintf(header, sizeof header, "{\"alg\":\"ES256\",\"kid\":\"p256\",\"x\":\"%.*s\"}",
                 (int)hpad, "xxx");
        for (size_t n = want * 3 / 4 - 400; n < want; n++) {
            char *payload = malloc(n + 200);
            sprintf(payload, "{" CL ",\"exp\":1700000600,\"pad\":\"%0*d\"}", (int)n, 0);
            char *tok = mint(S_P256, ES, header, payload);
            free(payload);
            size_t len = strlen(tok);
            if (len == want)
                return tok;
            free(tok);
            if (len > want)
                break;
        }
    }
    return NULL;
}

static void test_sizes(void)
{
    struct jwt_claims c;
    char *tok = token_of_length(JWT_MAX_TOKEN);
    CU_ASSERT_FATAL(tok != NULL);
    CU_ASSERT(jwt_verify(ks[KS_ALL], &pols[0], tok, strlen(tok), NOW, &c) == JWT_OK);
    free(tok);
    tok = token_of_length(JWT_MAX_TOKEN + 1);
    CU_ASSERT_FATAL(tok != NULL);
    CU_ASSERT(jwt_verify(ks[KS_ALL], &pols[0], tok, strlen(tok), NOW, &c) == JWT_MALFORMED);
    free(tok);

    /* each copied claim at its limit and one byte over */
    static const struct {
        const char *claim;
        size_t max;
    } lim[] = {{"sub", 255}, {"org", 127}, {"plan", 63}, {"scope", 511}};
    for (size_t i = 0; i < sizeof lim / sizeof lim[0]; i++) {
        for (size_t n = lim[i].max; n <= lim[i].max + 1; n++) {
            char payload[1200];
            snprintf(payload, sizeof payload,
                     "{" ISS ",\"aud\":\"api\",%s\"%s\":\"%0*d\",\"exp\":1700000600}",
                     strcmp(lim[i].claim, "sub") ? "\"sub\":\"u\"," : "", lim[i].claim, (int)n, 0);
            tok = mint(S_ED, JWT_ALG_EDDSA, H("EdDSA", "ed"), payload);
            enum jwt_result r = jwt_verify(ks[KS_ALL], &pols[0], tok, strlen(tok), NOW, &c);
            CU_ASSERT(r == (n <= lim[i].max ? JWT_OK : JWT_MALFORMED));
            free(tok);
        }
    }
    /* scp tokens joined: 511 bytes fit, 512 do not */
    for (size_t n = 511; n <= 512; n++) {
        char payload[1500];
        size_t o = (size_t)sprintf(payload, "{\"sub\":\"u\",\"exp\":1700000600,\"scp\":[");
        size_t total = 0;
        for (int k = 0; total < n; k++) {
            size_t w = n - total >= 10 ? 9 : n - total - (total ? 1 : 0);
            o += (size_t)sprintf(payload + o, "%s\"%0*d\"", k ? "," : "", (int)w, 0);
            total += w + (total ? 1 : 0);
        }
        sprintf(payload + o, "]}");
        tok = mint(S_ED, JWT_ALG_EDDSA, H("EdDSA", "ed"), payload);
        enum jwt_result r = jwt_verify(ks[KS_ALL], &pols[1], tok, strlen(tok), NOW, &c);
        CU_ASSERT(r == (n <= 511 ? JWT_OK : JWT_MALFORMED));
        if (r == JWT_OK)
            CU_ASSERT(strlen(c.scopes) == 511);
        free(tok);
    }
    /* a kid of 127 bytes is read (and unknown), 128 is malformed */
    char header[300];
    snprintf(header, sizeof header, "{\"alg\":\"EdDSA\",\"kid\":\"%0127d\"}", 0);
    tok = mint(S_ED, JWT_ALG_EDDSA, header, P_OK);
    CU_ASSERT(jwt_verify(ks[KS_ALL], &pols[0], tok, strlen(tok), NOW, &c) == JWT_UNKNOWN_KEY);
    free(tok);
    snprintf(header, sizeof header, "{\"alg\":\"EdDSA\",\"kid\":\"%0128d\"}", 0);
    tok = mint(S_ED, JWT_ALG_EDDSA, header, P_OK);
    CU_ASSERT(jwt_verify(ks[KS_ALL], &pols[0], tok, strlen(tok), NOW, &c) == JWT_MALFORMED);
    free(tok);
}

/* Strict base64url, one encoding per byte string. */
static void test_b64url(void)
{
    unsigned char out[16];
    size_t n = 99;
    CU_ASSERT(jwt_b64url_decode("", 0, out, sizeof out, &n) && n == 0);
    CU_ASSERT(jwt_b64url_decode("AQ", 2, out, sizeof out, &n) && n == 1 && out[0] == 1);
    CU_ASSERT(!jwt_b64url_decode("AR", 2, out, sizeof out, &n));
    CU_ASSERT(jwt_b64url_decode("AQI", 3, out, sizeof out, &n) && n == 2 && out[1] == 2);
    CU_ASSERT(!jwt_b64url_decode("AQJ", 3, out, sizeof out, &n));
    CU_ASSERT(jwt_b64url_decode("-_-_", 4, out, sizeof out, &n) && n == 3 && out[0] == 0xfb &&
              out[1] == 0xff && out[2] == 0xbf);
    CU_ASSERT(!jwt_b64url_decode("+/+/", 4, out, sizeof out, &n));
    CU_ASSERT(!jwt_b64url_decode("AQ==", 4, out, sizeof out, &n));
    CU_ASSERT(!jwt_b64url_decode("A", 1, out, sizeof out, &n));
    CU_ASSERT(!jwt_b64url_decode("AAAAA", 5, out, sizeof out, &n));
    CU_ASSERT(jwt_b64url_decode("AAAA", 4, out, 3, &n) && n == 3);
    CU_ASSERT(!jwt_b64url_decode("AAAAAA", 6, out, 3, &n));
    CU_ASSERT(jwt_b64url_decode("AAAAAA", 6, out, 4, &n) && n == 4);
}

/* ---- cache -------------------------------------------------------------------------- */

static char *good_token(const char *sub, uint64_t exp, uint64_t nbf)
{
    char payload[256];
    snprintf(payload, sizeof payload,
             "{" ISS ",\"aud\":\"api\",\"sub\":\"%s\",\"exp\":%llu%s%.0llu}", sub,
             (unsigned long long)exp, nbf ? ",\"nbf\":" : "", (unsigned long long)nbf);
    return mint(S_ED, JWT_ALG_EDDSA, H("EdDSA", "ed"), payload);
}

static void test_cache(void)
{
    const struct jwt_policy *pol = &pols[0];
    struct jwks *keys = ks[KS_ALL];
    struct jwt_claims c, got;
    CU_ASSERT(jwt_cache_new(0, 60) == NULL);
    CU_ASSERT(jwt_cache_new((1u << 20) + 1, 60) == NULL);
    struct jwt_cache *cache = jwt_cache_new(2, 3600);
    CU_ASSERT_FATAL(cache != NULL);

    char *a = good_token("a", NOW + 600, 0), *b = good_token("b", NOW + 600, 0);
    char *d = good_token("d", NOW + 600, 0);
    CU_ASSERT(!jwt_cache_get(cache, keys, pol, a, strlen(a), NOW, &got));
    CU_ASSERT(jwt_verify(keys, pol, a, strlen(a), NOW, &c) == JWT_OK);
    jwt_cache_put(cache, keys, pol, a, strlen(a), NOW, &c);
    memset(&got, 0, sizeof got);
    CU_ASSERT(jwt_cache_get(cache, keys, pol, a, strlen(a), NOW + 1, &got));
    CU_ASSERT(memcmp(&got, &c, sizeof c) == 0);
    /* another policy, another key set, another token: not the same entry */
    struct jwt_policy other = *pol;
    other.audience = "web";
    CU_ASSERT(!jwt_cache_get(cache, keys, &other, a, strlen(a), NOW, &got));
    other = *pol;
    other.leeway_s = 31;
    CU_ASSERT(!jwt_cache_get(cache, keys, &other, a, strlen(a), NOW, &got));
    other = *pol;
    other.subject_claim = "client_id";
    CU_ASSERT(!jwt_cache_get(cache, keys, &other, a, strlen(a), NOW, &got));
    CU_ASSERT(!jwt_cache_get(cache, ks[KS_NOHMAC], pol, a, strlen(a), NOW, &got));
    CU_ASSERT(!jwt_cache_get(cache, keys, pol, a, strlen(a) - 1, NOW, &got));
    CU_ASSERT(!jwt_cache_get(cache, keys, pol, b, strlen(b), NOW, &got));

    /* LRU: a, b in; a used; d pushes out b */
    CU_ASSERT(jwt_check(cache, keys, pol, b, strlen(b), NOW, &c) == JWT_OK);
    CU_ASSERT(jwt_cache_get(cache, keys, pol, a, strlen(a), NOW, &got));
    CU_ASSERT(jwt_check(cache, keys, pol, d, strlen(d), NOW, &c) == JWT_OK);
    struct jwt_cache_stats st = jwt_cache_stats(cache);
    CU_ASSERT(st.entries == 2 && st.evictions == 1);
    CU_ASSERT(jwt_cache_get(cache, keys, pol, a, strlen(a), NOW, &got));
    CU_ASSERT_STRING_EQUAL(got.sub, "a");
    CU_ASSERT(jwt_cache_get(cache, keys, pol, d, strlen(d), NOW, &got));
    CU_ASSERT_STRING_EQUAL(got.sub, "d");
    CU_ASSERT(!jwt_cache_get(cache, keys, pol, b, strlen(b), NOW, &got));

    /* expiry: exp + leeway */
    CU_ASSERT(jwt_cache_get(cache, keys, pol, a, strlen(a), NOW + 629, &got));
    CU_ASSERT(!jwt_cache_get(cache, keys, pol, a, strlen(a), NOW + 630, &got));
    CU_ASSERT(jwt_cache_stats(cache).entries == 1); /* dropped when found expired */
    CU_ASSERT(jwt_check(cache, keys, pol, a, strlen(a), NOW + 630, &got) == JWT_EXPIRED);
    CU_ASSERT(jwt_cache_stats(cache).entries == 1);
    jwt_cache_free(cache);
    free(a);
    free(b);
    free(d);

    /* max age, nbf, and a token that is never stored */
    cache = jwt_cache_new(4, 60);
    a = good_token("a", NOW + 600, NOW - 10);
    CU_ASSERT(jwt_check(cache, keys, pol, a, strlen(a), NOW, &c) == JWT_OK);
    CU_ASSERT(jwt_cache_get(cache, keys, pol, a, strlen(a), NOW + 59, &got));
    CU_ASSERT(!jwt_cache_get(cache, keys, pol, a, strlen(a), NOW + 60, &got));
    CU_ASSERT(jwt_check(cache, keys, pol, a, strlen(a), NOW + 60, &c) == JWT_OK);
    /* the clock goes back before nbf - leeway: not valid */
    CU_ASSERT(jwt_cache_get(cache, keys, pol, a, strlen(a), NOW - 40, &got));
    CU_ASSERT(!jwt_cache_get(cache, keys, pol, a, strlen(a), NOW - 41, &got));
    free(a);
    b = good_token("b", NOW + 600, 0);
    char *bad = mutate(strdup(b), M_FLIP_SIG);
    CU_ASSERT(jwt_check(cache, keys, pol, bad, strlen(bad), NOW, &c) == JWT_BAD_SIGNATURE);
    CU_ASSERT(!jwt_cache_get(cache, keys, pol, bad, strlen(bad), NOW, &got));
    CU_ASSERT(jwt_check(NULL, keys, pol, b, strlen(b), NOW, &c) == JWT_OK);
    CU_ASSERT(!jwt_cache_get(cache, keys, pol, b, strlen(b), NOW, &got));
    st = jwt_cache_stats(cache);
    CU_ASSERT(st.hits == 2);
    free(bad);
    free(b);

    /* exp + leeway already past at put: not stored */
    c.exp = NOW - 30;
    jwt_cache_put(cache, keys, pol, "x.y.z", 5, NOW, &c);
    CU_ASSERT(!jwt_cache_get(cache, keys, pol, "x.y.z", 5, NOW, &got));
    jwt_cache_free(cache);
    jwt_cache_free(NULL);

    /* many tokens through a small cache: entries never exceed capacity, all found */
    cache = jwt_cache_new(8, 0);
    memset(&c, 0, sizeof c);
    c.exp = NOW + 100;
    for (int i = 0; i < 100; i++) {
        char t[32];
        int n = snprintf(t, sizeof t, "tok%d", i);
        snprintf(c.sub, sizeof c.sub, "s%d", i);
        jwt_cache_put(cache, keys, pol, t, (size_t)n, NOW, &c);
        CU_ASSERT(jwt_cache_stats(cache).entries == (i < 8 ? (size_t)i + 1 : 8));
        for (int j = i > 7 ? i - 7 : 0; j <= i; j++) {
            n = snprintf(t, sizeof t, "tok%d", j);
            CU_ASSERT(jwt_cache_get(cache, keys, pol, t, (size_t)n, NOW, &got));
            char want[16];
            snprintf(want, sizeof want, "s%d", j);
            CU_ASSERT_STRING_EQUAL(got.sub, want);
        }
        if (i >= 8) {
            n = snprintf(t, sizeof t, "tok%d", i - 8);
            CU_ASSERT(!jwt_cache_get(cache, keys, pol, t, (size_t)n, NOW, &got));
        }
    }
    CU_ASSERT(jwt_cache_stats(cache).evictions == 92);
    jwt_cache_free(cache);
}

/* OpenSSL errors from a failed verification stay out of the thread's queue (TLS reads it). */
static void test_error_queue(void)
{
    ERR_clear_error();
    char *tok = mutate(mint(S_P256, ES, H("ES256", "p256"), P_OK), M_FLIP_SIG);
    struct jwt_claims c;
    CU_ASSERT(jwt_verify(ks[KS_ALL], &pols[0], tok, strlen(tok), NOW, &c) == JWT_BAD_SIGNATURE);
    free(tok);
    tok = mutate(mint(S_RSA, JWT_ALG_PS256, H("PS256", "rsa"), P_OK), M_FLIP_SIG);
    CU_ASSERT(jwt_verify(ks[KS_ALL], &pols[0], tok, strlen(tok), NOW, &c) == JWT_BAD_SIGNATURE);
    free(tok);
    char err[256];
    CU_ASSERT(parse_template("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"$P256_X\","
                             "\"y\":\"$P256_YBAD\"}]}",
                             false, err, sizeof err) == NULL);
    CU_ASSERT(ERR_peek_error() == 0);
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("jwt", suite_init, suite_clean);
    if (!s)
        return;
    CU_add_test(s, "key sets read and refused", test_sets);
    CU_add_test(s, "key set limits and lookups", test_set_limits);
    CU_add_test(s, "key set files", test_load_file);
    CU_add_test(s, "base64url", test_b64url);
    CU_add_test(s, "tokens", test_tokens);
    CU_add_test(s, "claims copied out", test_claims_out);
    CU_add_test(s, "not the compact form", test_compact);
    CU_add_test(s, "sizes at and over the limits", test_sizes);
    CU_add_test(s, "cache", test_cache);
    CU_add_test(s, "OpenSSL error queue", test_error_queue);
}
