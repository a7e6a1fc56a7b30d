/*
 * jwks: the keys that may sign a JWT, read from a JSON Web Key Set
 * (RFC 7517, key types of RFC 7518 and RFC 8037) into OpenSSL keys once,
 * when the conf generation that names the file is loaded (and again on
 * SIGHUP: a new set, never an edit of the old one). A set is immutable
 * once returned: shared read-only by every worker thread, freed by the
 * generation that owns it. Pure: text in, keys out; jwks_load_file is the
 * only I/O, one read of one file.
 *
 * Decisions:
 * - Signing keys only. A key with "use" other than "sig", or "key_ops"
 *   without "verify", is skipped, as is a key of a type or curve envelopd
 *   does not verify (RSA, EC P-256 and P-384, OKP Ed25519, and "oct" only
 *   when the caller allows HMAC) or declaring an "alg" it does not
 *   verify ("RSA-OAEP", "ES512"...): identity providers publish such keys
 *   next to the ones that sign, and one of them must not take the others
 *   down. A set with no usable key is refused.
 * - A key envelopd would use is read strictly, and any fault refuses the
 *   whole set (a half-loaded set fails tokens later, far from the cause):
 *   base64url without padding, EC coordinates and Ed25519 keys of exactly
 *   their size and on the curve (EVP_PKEY_public_check), RSA moduli of
 *   2048 to 8192 bits with an odd exponent from 65537 to 2^64, "oct"
 *   secrets of 32 bytes or more (RFC 7518 3.2), an "alg" that fits the
 *   key's type, a kid of printable ASCII, no kid twice, no private member
 *   ("d", "p"...: the file is a public key set; a private key pasted
 *   into it is refused, not quietly used).
 * - "oct" keys are secrets: they load only with allow_hmac, so HS256
 *   exists only when conf says so, and an RSA or EC key can never be
 *   taken for an HMAC secret (the algorithm-confusion attack).
 * - Bounds: the file at most JWKS_MAX_FILE bytes, JWKS_MAX_KEYS keys,
 *   JSON nesting JWKS_MAX_DEPTH deep, each member envelopd reads at most
 *   JWKS_MAX_MEMBER bytes.
 * - Every set gets a serial unique in the process: a cache of verified
 *   tokens keyed by it (jwt.c) forgets them when the keys change.
 */
#ifndef ENVELOPD_JWKS_H
#define ENVELOPD_JWKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define JWKS_MAX_FILE (256 * 1024)
#define JWKS_MAX_KEYS 64
#define JWKS_MAX_DEPTH 16
#define JWKS_MAX_MEMBER 2048 /* base64url of an 8192-bit modulus is 1366 */
#define JWKS_KID_MAX 128 /* kid bytes + NUL */

/* The signature algorithms envelopd verifies (RFC 7518 3.1, RFC 8037). */
enum jwt_alg {
    JWT_ALG_RS256,
    JWT_ALG_RS384,
    JWT_ALG_RS512,
    JWT_ALG_PS256,
    JWT_ALG_ES256,
    JWT_ALG_ES384,
    JWT_ALG_EDDSA,
    JWT_ALG_HS256,
    JWT_ALG_COUNT
};
#define JWT_ALG_BIT(a) (1u << (a))

/* "RS256"... for logs and conf. */
const char *jwt_alg_name(enum jwt_alg a);
/* The algorithm named exactly S[0..len) (case matters, as in RFC 7518); false if none. */
bool jwt_alg_parse(const char *s, size_t len, enum jwt_alg *out);

enum jwk_kind { JWK_RSA, JWK_EC_P256, JWK_EC_P384, JWK_ED25519, JWK_OCT };

/* One key of a set; read-only. */
struct jwk {
    enum jwk_kind kind;
    char kid[JWKS_KID_MAX]; /* "" when the key has none */
    size_t kid_len;
    bool has_alg; /* the key names its algorithm: only that one is accepted */
    enum jwt_alg alg;
    EVP_PKEY *pkey; /* RSA, EC, Ed25519; NULL for oct */
    unsigned char *secret; /* oct only */
    size_t secret_len;
    size_t sig_len; /* RSA: the modulus' bytes, the length of every signature */
};

/*
 * The set in JSON[0..len), or NULL with a reason in ERR ("key 2 (kid
 * \"abc\"): RSA modulus of 1024 bits, 2048 at least"). ALLOW_HMAC: "oct"
 * keys are loaded (HS256); without it one is an error, not a skipped key,
 * since only someone meaning HMAC puts a secret there.
 */
struct jwks *jwks_parse(const char *json, size_t len, bool allow_hmac, char *err, size_t errlen);

/* jwks_parse on the contents of the file at PATH; ERR reads "PATH: problem". */
struct jwks *jwks_load_file(const char *path, bool allow_hmac, char *err, size_t errlen);

void jwks_free(struct jwks *ks);

/* The usable keys in the set (skipped ones are not counted), 1 or more. */
size_t jwks_count(const struct jwks *ks);

/* Key I, 0 <= I < jwks_count. */
const struct jwk *jwks_key(const struct jwks *ks, size_t i);

/* The key whose kid is exactly KID[0..len), or NULL. */
const struct jwk *jwks_find(const struct jwks *ks, const char *kid, size_t len);

/* This set's serial: never the same for two sets of one process. */
uint64_t jwks_serial(const struct jwks *ks);

/* May K verify a signature made with ALG: the algorithm fits the key's type and curve, and
 * the key's own "alg", when it names one? */
bool jwk_alg_fits(const struct jwk *k, enum jwt_alg alg);

/*
 * Strict base64url (RFC 4648 5, as JOSE uses it): the URL-safe alphabet only, no padding,
 * no whitespace, a length that is not 1 modulo 4 and zero bits after the last byte (one
 * encoding for each byte string). Writes at most CAP bytes to OUT; false when IN is not
 * such an encoding or does not fit.
 */
bool jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *outlen);

#endif
