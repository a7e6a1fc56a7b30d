/*
 * jwt: a bearer token read and verified as a JWT (RFC 7519) in the JWS
 * compact serialization (RFC 7515), against a key set from jwks.h and a
 * policy (issuer, audience, leeway, accepted algorithms), into the few
 * claims the gateway uses (subject, organization, scopes, plan), and a
 * per-worker cache of verified tokens so that a token seen again costs
 * one SHA-256 and one hash lookup. Pure: token, keys, policy and the time
 * in, a verdict and claims out; conf.c and proxy.c decide where they
 * come from and what the answer is (malformed, bad signature, unknown
 * key, refused algorithm, wrong issuer or audience, not yet valid:
 * TOKEN_INVALID; expired: TOKEN_EXPIRED).
 *
 * Decisions:
 * - The token: three base64url parts (strict alphabet, no padding, one
 *   encoding per byte string: see jwt_b64url_decode), JWT_MAX_TOKEN bytes
 *   at most, no whitespace; the caller strips "Bearer ". Header and
 *   payload are JSON objects read with yajl, nested JWT_MAX_DEPTH deep at
 *   most, a member envelopd reads appearing once (RFC 7515 4: a duplicate
 *   "alg" would be read one way here and another way elsewhere).
 * - The header: "alg" required; "kid" required when the set has more
 *   than one key, and then it must name one exactly (a key is never
 *   guessed by trying them all); "crit" refused (no extension is
 *   understood, RFC 7515 4.1.11); "typ", "jku", "jwk", "x5u", "x5c" ignored: keys
 *   come from the set only. "none", and any algorithm not in the policy,
 *   not fitting the key's type and curve, or not the key's own "alg" when
 *   it names one: JWT_ALG_REFUSED. So an HS256 token can never be checked
 *   with an RSA key's public bytes as its secret (HS256 needs an "oct" key,
 *   which jwks.c loads only when HMAC is allowed).
 * - The signature is checked before the payload is read: a forged token
 *   is JWT_BAD_SIGNATURE whatever its claims say. ES256/ES384 signatures
 *   are R || S of the curve's size (RFC 7518 3.4), turned into DER for
 *   OpenSSL; PS256 uses MGF1-SHA256 and a 32-byte salt (RFC 7518 3.5);
 *   HMACs compare in constant time.
 * - Claims, after the signature: "exp" required; "exp" and "nbf" are
 *   NumericDates (digits, an optional fraction; no sign, no exponent, at
 *   most 2^53 - 1), a fraction rounding toward refusing. Expired when
 *   now >= exp + leeway, not yet valid when now + leeway < nbf. With an
 *   issuer in the policy "iss" must equal it byte for byte; with an
 *   audience "aud" must be it or an array holding it. Issuer and audience
 *   are checked before the time: another party's token is invalid, not
 *   expired (a refresh would not help it).
 * - What is copied out is bounded and printable: the subject claim
 *   (required, a non-empty string or an integer), the org and plan claims
 *   (optional, likewise), "scope" (space-separated) or else "scp" (an array,
 *   or a string) as scope tokens (RFC 6749 3.3: no space, '"' or '\' in a
 *   token) joined by single spaces. A value that does not fit its field, or
 *   holds a control character (it ends up in logs and upstream headers):
 *   JWT_MALFORMED. Nothing of the token itself is ever returned or logged.
 * - The cache keys an entry by SHA-256 of the key set's serial, the policy
 *   and the token, so a reload that changes keys or policy, or a route with
 *   another audience, never sees another's entries. An entry lives while
 *   the token does (exp + leeway, and not before nbf - leeway) and at most
 *   max_age_s; the least recently used goes first when it is full. One per
 *   worker thread: not locked.
 */
#ifndef ENVELOPD_JWT_H
#define ENVELOPD_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jwks.h"

#define JWT_MAX_TOKEN 8192
#define JWT_MAX_DEPTH 16

enum jwt_result {
    JWT_OK,
    JWT_MALFORMED, /* not a compact JWS, bad JSON, a bad or missing claim */
    JWT_BAD_SIGNATURE,
    JWT_UNKNOWN_KEY, /* no key with that kid, or no kid and several keys */
    JWT_ALG_REFUSED, /* "none", not allowed, or not the key's */
    JWT_EXPIRED,
    JWT_NOT_YET_VALID,
    JWT_BAD_ISSUER,
    JWT_BAD_AUDIENCE,
};

/* "ok", "malformed", "bad signature"...: static text for logs. */
const char *jwt_result_str(enum jwt_result r);

struct jwt_policy {
    const char *issuer; /* NULL: "iss" not checked */
    const char *audience; /* NULL: "aud" not checked */
    uint64_t leeway_s; /* clock skew allowed on exp and nbf */
    uint32_t algs; /* JWT_ALG_BIT()s accepted; 0: all (HS256 still needs an oct key) */
    const char *subject_claim; /* NULL: "sub" */
    const char *org_claim; /* NULL: "org" */
    const char *plan_claim; /* NULL: "plan" */
};

/* clang-format off */
struct jwt_claims {
    char sub[256];      /* the subject claim, never empty */
    char org[128];      /* "" when absent */
    char scopes[512];   /* scope tokens joined by single spaces, "" when none */
    char plan[64];      /* "" when absent */
    uint64_t exp;       /* seconds, rounded down */
    uint64_t nbf;       /* seconds, rounded up; 0 when absent */
    char kid[JWKS_KID_MAX]; /* the header's kid, "" when none */
    enum jwt_alg alg;
};
/* clang-format on */

/*
 * Verify TOKEN[0..len) at NOW_S (seconds since the epoch) with KEYS under
 * POL. JWT_OK: *OUT holds the claims. Anything else: *OUT is zeroed.
 */
enum jwt_result jwt_verify(const struct jwks *keys, const struct jwt_policy *pol, const char *token,
                           size_t len, uint64_t now_s, struct jwt_claims *out);

/* ---- the cache of verified tokens -------------------------------------------------- */

struct jwt_cache;

struct jwt_cache_stats {
    uint64_t hits, misses, evictions; /* evictions: live entries pushed out when full */
    size_t entries;
};

/* CAPACITY entries (1 to 1 << 20; about 1.2 KiB each, allocated as used), none kept longer
 * than MAX_AGE_S (0: as long as the token lives). NULL when out of memory or out of range. */
struct jwt_cache *jwt_cache_new(size_t capacity, uint64_t max_age_s);
void jwt_cache_free(struct jwt_cache *c);

/* The claims of TOKEN if it was put with these KEYS and POL and is still valid at NOW_S. */
bool jwt_cache_get(struct jwt_cache *c, const struct jwks *keys, const struct jwt_policy *pol,
                   const char *token, size_t len, uint64_t now_s, struct jwt_claims *out);

/* Remember TOKEN, verified at NOW_S with KEYS and POL into CLAIMS. */
void jwt_cache_put(struct jwt_cache *c, const struct jwks *keys, const struct jwt_policy *pol,
                   const char *token, size_t len, uint64_t now_s, const struct jwt_claims *claims);

/* jwt_cache_get, else jwt_verify and jwt_cache_put when it passes: what a request
 * calls. C may be NULL (no cache). */
enum jwt_result jwt_check(struct jwt_cache *c, const struct jwks *keys,
                          const struct jwt_policy *pol, const char *token, size_t len,
                          uint64_t now_s, struct jwt_claims *out);

struct jwt_cache_stats jwt_cache_stats(const struct jwt_cache *c);

#endif
