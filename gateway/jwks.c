/*
 * jwks: a JWK Set read into OpenSSL public keys (and HMAC secrets when
 * allowed); see jwks.h for the decisions. The JSON is read with yajl's
 * callbacks, keeping only the members of each key that envelopd reads
 * (bounded copies) and nothing of the rest, then each key is checked and
 * built with EVP_PKEY_fromdata when its object closes.
 */
#include "jwks.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <yajl/yajl_parse.h>

struct jwks {
    uint64_t serial;
    size_t n;
    struct jwk keys[];
};

/* ---- algorithms -------------------------------------------------------------------- */

static const char *const alg_names[JWT_ALG_COUNT] = {
    [JWT_ALG_RS256] = "RS256", [JWT_ALG_RS384] = "RS384", [JWT_ALG_RS512] = "RS512",
    [JWT_ALG_PS256] = "PS256", [JWT_ALG_ES256] = "ES256", [JWT_ALG_ES384] = "ES384",
    [JWT_ALG_EDDSA] = "EdDSA", [JWT_ALG_HS256] = "HS256",
};

const char *jwt_alg_name(enum jwt_alg a)
{
    return (unsigned)a < JWT_ALG_COUNT ? alg_names[a] : "?";
}

bool jwt_alg_parse(const char *s, size_t len, enum jwt_alg *out)
{
    for (int a = 0; a < JWT_ALG_COUNT; a++) {
        if (strlen(alg_names[a]) == len && memcmp(alg_names[a], s, len) == 0) {
            *out = (enum jwt_alg)a;
            return true;
        }
    }
    return false;
}

/* ---- base64url ---------------------------------------------------------------------- */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

bool jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *outlen)
{
    if (len % 4 == 1 || len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > cap)
        return false;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
        acc &= (1u << bits) - 1;
    }
    /* The bits left over must be zero: one encoding per byte string. */
    if (acc != 0)
        return false;
    *outlen = o;
    return true;
}

/* ---- the parse --------------------------------------------------------------------- */

/* The members of a key that are read, and the private ones that refuse it. */
enum member { M_KTY, M_KID, M_ALG, M_USE, M_CRV, M_N, M_E, M_X, M_Y, M_K, M_STRINGS };
static const char *const member_names[M_STRINGS] = {"kty", "kid", "alg", "use", "crv",
                                                    "n",   "e",   "x",   "y",   "k"};
#define M_KEY_OPS M_STRINGS
#define M_PRIVATE (M_STRINGS + 1)
static const char *const private_names[] = {"d", "p", "q", "dp", "dq", "qi", "oth"};

struct raw_key {
    char val[M_STRINGS][JWKS_MAX_MEMBER];
    size_t len[M_STRINGS];
    bool seen[M_STRINGS + 1]; /* + key_ops */
    bool ops_verify;
    const char *private_member;
};

struct jp {
    bool allow_hmac;
    int depth;
    bool top_is_keys; /* the last member name at depth 1 was "keys" */
    bool keys_seen;
    bool keys_open; /* inside the "keys" array (depth >= 2) */
    bool in_key; /* inside a key object (depth >= 3) */
    bool in_ops; /* inside its key_ops (depth >= 4) */
    int member; /* at depth 3: enum member, M_KEY_OPS, M_PRIVATE, or -1 */
    size_t objects; /* key objects seen */
    struct raw_key rk;
    size_t n;
    struct jwk keys[JWKS_MAX_KEYS];
    bool failed;
    char err[256];
};

static int fail(struct jp *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct jp *p, const char *fmt, ...)
{
    if (!p->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err, sizeof p->err, fmt, ap);
        va_end(ap);
        p->failed = true;
    }
    return 0;
}

static bool str_is(const char *s, size_t len, const char *want)
{
    return strlen(want) == len && memcmp(s, want, len) == 0;
}

static bool member_is(const struct raw_key *rk, int m, const char *want)
{
    return rk->seen[m] && str_is(rk->val[m], rk->len[m], want);
}

/* "key 2" or "key 2 (kid "abc")" for messages; the kid only when printable. */
static const char *key_label(const struct jp *p, char *buf, size_t cap)
{
    const struct raw_key *rk = &p->rk;
    bool printable = rk->seen[M_KID] && rk->len[M_KID] > 0 && rk->len[M_KID] < 64;
    for (size_t i = 0; printable && i < rk->len[M_KID]; i++)
        if (rk->val[M_KID][i] < 0x20 || rk->val[M_KID][i] > 0x7e || rk->val[M_KID][i] == '"')
            printable = false;
    if (printable)
        snprintf(buf, cap, "key %zu (kid \"%.*s\")", p->objects, (int)rk->len[M_KID],
                 rk->val[M_KID]);
    else
        snprintf(buf, cap, "key %zu", p->objects);
    return buf;
}

/* Member M decoded from base64url into OUT (CAP bytes); false after fail(). */
static bool member_bytes(struct jp *p, int m, unsigned char *out, size_t cap, size_t *outlen)
{
    char label[96];
    if (!p->rk.seen[m]) {
        fail(p, "%s: no \"%s\"", key_label(p, label, sizeof label), member_names[m]);
        return false;
    }
    if (p->rk.len[m] == 0 || !jwt_b64url_decode(p->rk.val[m], p->rk.len[m], out, cap, outlen)) {
        fail(p, "%s: \"%s\" is not base64url (without padding) of the right size",
             key_label(p, label, sizeof label), member_names[m]);
        return false;
    }
    return true;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM *params)
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    if (!pkey)
        return NULL;
    /* An EC point off the curve is the invalid-curve attack's door. */
    EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    bool ok = check && EVP_PKEY_public_check(check) == 1;
    EVP_PKEY_CTX_free(check);
    if (!ok) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

static bool build_rsa(struct jp *p, struct jwk *k, const char *label)
{
    unsigned char n[JWKS_MAX_MEMBER], e[JWKS_MAX_MEMBER];
    size_t nlen, elen;
    if (!member_bytes(p, M_N, n, sizeof n, &nlen) || !member_bytes(p, M_E, e, sizeof e, &elen))
        return false;
    BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *be = BN_bin2bn(e, (int)elen, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    bool ok = false;
    if (!bn || !be || !bld) {
        fail(p, "%s: out of memory", label);
        goto out;
    }
    int bits = BN_num_bits(bn);
    if (bits < 2048 || bits > 8192) {
        fail(p, "%s: RSA modulus of %d bits, 2048 to 8192 accepted", label, bits);
        goto out;
    }
    /* e = 1 would make every byte string its own signature; OpenSSL's public key check
     * wants 65537 or more (SP 800-56B), and a long one only makes verifying slow. */
    if (!BN_is_odd(be) || BN_num_bits(be) < 17 || BN_num_bits(be) > 64) {
        fail(p, "%s: RSA exponent must be odd, 65537 or more and at most 64 bits", label);
        goto out;
    }
    if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) != 1 ||
        !(params = OSSL_PARAM_BLD_to_param(bld))) {
        fail(p, "%s: out of memory", label);
        goto out;
    }
    k->pkey = pkey_fromdata("RSA", params);
    if (!k->pkey) {
        fail(p, "%s: OpenSSL refuses the RSA key", label);
        goto out;
    }
    k->sig_len = ((size_t)bits + 7) / 8;
    ok = true;
out:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    return ok;
}

static bool build_ec(struct jp *p, struct jwk *k, const char *label)
{
    size_t clen = k->kind == JWK_EC_P256 ? 32 : 48;
    unsigned char x[64], y[64], point[1 + 2 * 48];
    size_t xlen, ylen;
    if (!member_bytes(p, M_X, x, sizeof x, &xlen) || !member_bytes(p, M_Y, y, sizeof y, &ylen))
        return false;
    if (xlen != clen || ylen != clen) {
        fail(p, "%s: EC coordinates must be %zu bytes each", label, clen);
        return false;
    }
    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, x, clen);
    memcpy(point + 1 + clen, y, clen);
    char group[16];
    snprintf(group, sizeof group, "%s", k->kind == JWK_EC_P256 ? "prime256v1" : "secp384r1");
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * clen),
        OSSL_PARAM_construct_end(),
    };
    k->pkey = pkey_fromdata("EC", params);
    if (!k->pkey)
        return fail(p, "%s: the EC point is not on the curve", label);
    k->sig_len = 2 * clen;
    return true;
}

static bool build_ed25519(struct jp *p, struct jwk *k, const char *label)
{
    unsigned char x[64];
    size_t xlen;
    if (!member_bytes(p, M_X, x, sizeof x, &xlen))
        return false;
    if (xlen != 32)
        return fail(p, "%s: an Ed25519 key is 32 bytes", label);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, x, xlen),
        OSSL_PARAM_construct_end(),
    };
    k->pkey = pkey_fromdata("ED25519", params);
    if (!k->pkey)
        return fail(p, "%s: OpenSSL refuses the Ed25519 key", label);
    k->sig_len = 64;
    return true;
}

static bool build_oct(struct jp *p, struct jwk *k, const char *label)
{
    unsigned char s[JWKS_MAX_MEMBER];
    size_t slen = 0;
    bool ok = member_bytes(p, M_K, s, sizeof s, &slen);
    if (ok && slen < 32)
        ok = fail(p, "%s: an HS256 secret is 32 bytes or more (RFC 7518 3.2)", label);
    if (ok && !(k->secret = malloc(slen)))
        ok = fail(p, "%s: out of memory", label);
    if (ok) {
        memcpy(k->secret, s, slen);
        k->secret_len = slen;
        k->sig_len = 32;
    }
    OPENSSL_cleanse(s, sizeof s);
    return ok;
}

/* Which kind of key the raw key is, or false when it is to be skipped (after fail() on an
 * error). */
static bool key_kind(struct jp *p, enum jwk_kind *kind, const char *label)
{
    const struct raw_key *rk = &p->rk;
    if (!rk->seen[M_KTY])
        return fail(p, "%s: no \"kty\"", label);
    if (member_is(rk, M_KTY, "RSA")) {
        *kind = JWK_RSA;
    } else if (member_is(rk, M_KTY, "EC") || member_is(rk, M_KTY, "OKP")) {
        if (!rk->seen[M_CRV])
            return fail(p, "%s: no \"crv\"", label);
        if (member_is(rk, M_KTY, "EC") && member_is(rk, M_CRV, "P-256"))
            *kind = JWK_EC_P256;
        else if (member_is(rk, M_KTY, "EC") && member_is(rk, M_CRV, "P-384"))
            *kind = JWK_EC_P384;
        else if (member_is(rk, M_KTY, "OKP") && member_is(rk, M_CRV, "Ed25519"))
            *kind = JWK_ED25519;
        else
            return false; /* P-521, secp256k1, X25519, Ed448: not verified here */
    } else if (member_is(rk, M_KTY, "oct")) {
        if (!p->allow_hmac)
            return fail(p,
                        "%s: an \"oct\" key (a shared secret) is refused unless HMAC "
                        "is allowed",
                        label);
        *kind = JWK_OCT;
    } else {
        return false;
    }
    return true;
}

static bool alg_fits(enum jwk_kind kind, enum jwt_alg alg)
{
    switch (alg) {
    case JWT_ALG_RS256:
    case JWT_ALG_RS384:
    case JWT_ALG_RS512:
    case JWT_ALG_PS256:
        return kind == JWK_RSA;
    case JWT_ALG_ES256:
        return kind == JWK_EC_P256;
    case JWT_ALG_ES384:
        return kind == JWK_EC_P384;
    case JWT_ALG_EDDSA:
        return kind == JWK_ED25519;
    case JWT_ALG_HS256:
        return kind == JWK_OCT;
    default:
        return false;
    }
}

bool jwk_alg_fits(const struct jwk *k, enum jwt_alg alg)
{
    return alg_fits(k->kind, alg) && (!k->has_alg || k->alg == alg);
}

/* The key object just closed: check it, build it or skip it. */
static int finish_key(struct jp *p)
{
    struct raw_key *rk = &p->rk;
    char label[96];
    key_label(p, label, sizeof label);
    if (rk->private_member)
        return fail(p, "%s: private member \"%s\": a key set holds public keys only", label,
                    rk->private_member);
    if (rk->seen[M_USE] && !member_is(rk, M_USE, "sig"))
        return 1;
    if (rk->seen[M_KEY_OPS] && !rk->ops_verify)
        return 1;
    enum jwk_kind kind = JWK_RSA;
    if (!key_kind(p, &kind, label))
        return !p->failed;
    struct jwk k = {.kind = kind};
    if (rk->seen[M_ALG]) {
        if (!jwt_alg_parse(rk->val[M_ALG], rk->len[M_ALG], &k.alg))
            return 1; /* RSA-OAEP, ES512, HS512...: not a key for what envelopd verifies */
        if (!alg_fits(kind, k.alg))
            return fail(p, "%s: \"alg\" %s does not fit the key's type", label,
                        jwt_alg_name(k.alg));
        k.has_alg = true;
    }
    if (rk->seen[M_KID]) {
        if (rk->len[M_KID] == 0 || rk->len[M_KID] >= JWKS_KID_MAX)
            return fail(p, "%s: kid must be 1 to %d bytes", label, JWKS_KID_MAX - 1);
        for (size_t i = 0; i < rk->len[M_KID]; i++)
            if (rk->val[M_KID][i] < 0x20 || rk->val[M_KID][i] > 0x7e)
                return fail(p, "%s: kid must be printable ASCII", label);
        for (size_t i = 0; i < p->n; i++)
            if (p->keys[i].kid_len == rk->len[M_KID] &&
                memcmp(p->keys[i].kid, rk->val[M_KID], rk->len[M_KID]) == 0)
                return fail(p, "%s: kid used by another key", label);
        memcpy(k.kid, rk->val[M_KID], rk->len[M_KID]);
        k.kid_len = rk->len[M_KID];
    }
    bool ok;
    switch (kind) {
    case JWK_RSA:
        ok = build_rsa(p, &k, label);
        break;
    case JWK_EC_P256:
    case JWK_EC_P384:
        ok = build_ec(p, &k, label);
        break;
    case JWK_ED25519:
        ok = build_ed25519(p, &k, label);
        break;
    default:
        ok = build_oct(p, &k, label);
        break;
    }
    if (!ok)
        return 0;
    p->keys[p->n++] = k;
    return 1;
}

static void key_begin(struct jp *p)
{
    OPENSSL_cleanse(p->rk.val[M_K], sizeof p->rk.val[M_K]);
    memset(&p->rk.len, 0, sizeof p->rk.len);
    memset(&p->rk.seen, 0, sizeof p->rk.seen);
    p->rk.ops_verify = false;
    p->rk.private_member = NULL;
}

enum vtype { V_SCALAR, V_STRING, V_MAP, V_ARRAY };

/* A value begins at p->depth (a container opens after this). */
static int value(struct jp *p, enum vtype t, const unsigned char *s, size_t len)
{
    char label[96];
    if (p->failed)
        return 0;
    if (p->depth == 0)
        return t == V_MAP ? 1 : fail(p, "not a JSON object");
    if (p->depth == 1 && p->top_is_keys) {
        if (t != V_ARRAY)
            return fail(p, "\"keys\" is not an array");
        p->keys_open = true;
        return 1;
    }
    if (p->depth == 2 && p->keys_open) {
        if (++p->objects > JWKS_MAX_KEYS)
            return fail(p, "more than %d keys", JWKS_MAX_KEYS);
        if (t != V_MAP)
            return fail(p, "key %zu is not an object", p->objects);
        p->in_key = true;
        key_begin(p);
        return 1;
    }
    if (p->depth == 3 && p->in_key && p->member >= 0) {
        struct raw_key *rk = &p->rk;
        if (p->member == M_PRIVATE)
            return 1;
        if (p->member == M_KEY_OPS) {
            if (t != V_ARRAY)
                return fail(p, "%s: \"key_ops\" is not an array",
                            key_label(p, label, sizeof label));
            p->in_ops = true;
            return 1;
        }
        if (t != V_STRING)
            return fail(p, "%s: \"%s\" is not a string", key_label(p, label, sizeof label),
                        member_names[p->member]);
        if (len >= JWKS_MAX_MEMBER)
            return fail(p, "%s: \"%s\" is too long", key_label(p, label, sizeof label),
                        member_names[p->member]);
        memcpy(rk->val[p->member], s, len);
        rk->len[p->member] = len;
        return 1;
    }
    if (p->depth == 4 && p->in_ops) {
        if (t != V_STRING)
            return fail(p, "%s: \"key_ops\" holds a non-string", key_label(p, label, sizeof label));
        if (str_is((const char *)s, len, "verify"))
            p->rk.ops_verify = true;
    }
    return 1;
}

static int open_container(struct jp *p, enum vtype t)
{
    if (!value(p, t, NULL, 0))
        return 0;
    if (p->depth >= JWKS_MAX_DEPTH)
        return fail(p, "JSON nested more than %d deep", JWKS_MAX_DEPTH);
    p->depth++;
    p->member = -1;
    return 1;
}

static int close_container(struct jp *p)
{
    if (p->failed || p->depth <= 0)
        return 0;
    p->depth--;
    p->member = -1;
    if (p->depth == 3 && p->in_ops) {
        p->in_ops = false;
    } else if (p->depth == 2 && p->in_key) {
        p->in_key = false;
        return finish_key(p);
    } else if (p->depth == 1 && p->keys_open) {
        p->keys_open = false;
        p->top_is_keys = false;
    }
    return 1;
}

static int cb_null(void *ctx)
{
    return value(ctx, V_SCALAR, NULL, 0);
}

static int cb_boolean(void *ctx, int b)
{
    return value(ctx, V_SCALAR, NULL, 0);
}

static int cb_number(void *ctx, const char *s, size_t len)
{
    return value(ctx, V_SCALAR, NULL, 0);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    return value(ctx, V_STRING, s, len);
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
    return close_container(ctx);
}

static int cb_map_key(void *ctx, const unsigned char *s, size_t len)
{
    struct jp *p = ctx;
    const char *k = (const char *)s;
    if (p->depth == 1) {
        p->top_is_keys = str_is(k, len, "keys");
        if (p->top_is_keys && p->keys_seen)
            return fail(p, "\"keys\" twice");
        p->keys_seen = p->keys_seen || p->top_is_keys;
    } else if (p->depth == 3 && p->in_key) {
        char label[96];
        p->member = -1;
        for (int m = 0; m < M_STRINGS; m++)
            if (str_is(k, len, member_names[m]))
                p->member = m;
        if (str_is(k, len, "key_ops"))
            p->member = M_KEY_OPS;
        for (size_t i = 0; i < sizeof private_names / sizeof private_names[0]; i++) {
            if (str_is(k, len, private_names[i])) {
                p->member = M_PRIVATE;
                if (!p->rk.private_member)
                    p->rk.private_member = private_names[i];
            }
        }
        if (p->member >= 0 && p->member <= M_KEY_OPS) {
            if (p->rk.seen[p->member])
                return fail(p, "%s: \"%.*s\" twice", key_label(p, label, sizeof label), (int)len,
                            k);
            p->rk.seen[p->member] = true;
        }
    }
    return 1;
}

static const yajl_callbacks callbacks = {
    cb_null,      cb_boolean, NULL,   NULL,           cb_number, cb_string,
    cb_start_map, cb_map_key, cb_end, cb_start_array, cb_end,
};

static void free_keys(struct jwk *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        EVP_PKEY_free(keys[i].pkey);
        if (keys[i].secret)
            OPENSSL_cleanse(keys[i].secret, keys[i].secret_len);
        free(keys[i].secret);
    }
}

static _Atomic uint64_t next_serial = 1;

struct jwks *jwks_parse(const char *json, size_t len, bool allow_hmac, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (len > JWKS_MAX_FILE) {
        snprintf(err, errlen, "larger than %d bytes", JWKS_MAX_FILE);
        return NULL;
    }
    struct jp *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->allow_hmac = allow_hmac;
    p->member = -1;
    ERR_set_mark();
    yajl_handle h = yajl_alloc(&callbacks, NULL, p);
    yajl_status st = yajl_status_error;
    if (h) {
        st = yajl_parse(h, (const unsigned char *)json, len);
        if (st == yajl_status_ok)
            st = yajl_complete_parse(h);
    }
    if (!h)
        fail(p, "out of memory");
    else if (st != yajl_status_ok && !p->failed)
        fail(p, "not valid JSON");
    else if (!p->failed && !p->keys_seen)
        fail(p, "no \"keys\" array");
    else if (!p->failed && p->n == 0)
        fail(p,
             "no key to verify signatures with (%zu skipped: not for signing, or a type "
             "or algorithm envelopd does not verify)",
             p->objects);
    if (h)
        yajl_free(h);
    ERR_pop_to_mark();
    struct jwks *ks = NULL;
    if (!p->failed) {
        ks = malloc(sizeof *ks + p->n * sizeof ks->keys[0]);
        if (!ks) {
            fail(p, "out of memory");
        } else {
            ks->serial = atomic_fetch_add(&next_serial, 1);
            ks->n = p->n;
            memcpy(ks->keys, p->keys, p->n * sizeof ks->keys[0]);
        }
    }
    if (!ks) {
        free_keys(p->keys, p->n);
        snprintf(err, errlen, "%s", p->err);
    }
    OPENSSL_cleanse(p->rk.val[M_K], sizeof p->rk.val[M_K]);
    free(p);
    return ks;
}

struct jwks *jwks_load_file(const char *path, bool allow_hmac, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    const char *bad = NULL;
    if (fstat(fd, &st) != 0)
        bad = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        bad = "not a regular file";
    else if (st.st_size > JWKS_MAX_FILE)
        bad = "larger than 256 KiB";
    if (bad) {
        snprintf(err, errlen, "%s: %s", path, bad);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    char *buf = malloc(size ? size : 1);
    size_t got = 0;
    while (buf && got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    int read_errno = errno;
    close(fd);
    if (!buf || got != size) {
        snprintf(err, errlen, "%s: %s", path, buf ? strerror(read_errno) : "out of memory");
        free(buf);
        return NULL;
    }
    char why[256];
    struct jwks *ks = jwks_parse(buf, size, allow_hmac, why, sizeof why);
    OPENSSL_cleanse(buf, size); /* it may hold HMAC secrets */
    free(buf);
    if (!ks)
        snprintf(err, errlen, "%s: %s", path, why);
    return ks;
}

void jwks_free(struct jwks *ks)
{
    if (!ks)
        return;
    free_keys(ks->keys, ks->n);
    free(ks);
}

size_t jwks_count(const struct jwks *ks)
{
    return ks ? ks->n : 0;
}

const struct jwk *jwks_key(const struct jwks *ks, size_t i)
{
    return ks && i < ks->n ? &ks->keys[i] : NULL;
}

const struct jwk *jwks_find(const struct jwks *ks, const char *kid, size_t len)
{
    if (!ks || len == 0)
        return NULL;
    for (size_t i = 0; i < ks->n; i++)
        if (ks->keys[i].kid_len == len && memcmp(ks->keys[i].kid, kid, len) == 0)
            return &ks->keys[i];
    return NULL;
}

uint64_t jwks_serial(const struct jwks *ks)
{
    return ks ? ks->serial : 0;
}
