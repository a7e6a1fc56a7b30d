/*
 * idem: the pure parts of Idempotency-Key support (issue #20): reading
 * the key a client sent, the request's fingerprint (what makes a retry
 * "the same request"), which response headers a stored answer keeps, and
 * the two values a key can hold in the store (a claim while the first
 * request runs, then the stored response), written and read back. No I/O
 * and no clock: the proxy and the store (Redis or the process) decide
 * when; this module decides what. Not wired into requests yet.
 *
 * Decisions:
 * - The key: the IETF httpapi draft makes Idempotency-Key an sf-string
 *   ("..." with \" and \\ the only escapes, printable ASCII inside); most
 *   clients (Stripe's and those modelled on it) send the bare text. Both
 *   are read, to the same key: 1 to IDEM_KEY_MAX bytes once unquoted,
 *   printable ASCII; bare text without blanks, quotes, backslashes,
 *   commas or semicolons (a structured-field list or parameters).
 * - The fingerprint is SHA-256 over the method, the normalized path, the
 *   query and the body, each with its length first (so "a" + "bc" is not
 *   "ab" + "c"), the body fed as it streams: a body larger than any
 *   buffer still gets one.
 * - A stored response keeps its status, the original request's
 *   correlation ID, its body, and only the headers on an allowlist
 *   (representation and caching metadata, Location, Retry-After, Link,
 *   deprecation notices). Never Set-Cookie, Authorization or anything
 *   hop-by-hop: a replay goes to whoever retries, and the list cannot leak
 *   what it does not name.
 * - Stored values are bounded, versioned text: a store shared by gateways
 *   of different versions refuses what it cannot read instead of guessing.
 */
#ifndef ENVELOPD_IDEM_H
#define ENVELOPD_IDEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define IDEM_KEY_MAX 255
#define IDEM_FP_LEN 32          /* SHA-256 */
#define IDEM_ID_MAX 128         /* a correlation ID kept with a claim or a response */
#define IDEM_MAX_HEADERS 32     /* stored response headers */
#define IDEM_HEADER_MAX 4096    /* one stored header's value */

/*
 * The key in Idempotency-Key's value V[0..len) (blanks around it already
 * trimmed), unquoted into OUT (CAP > IDEM_KEY_MAX), NUL-terminated.
 * Returns its length, or 0 when V is not a key.
 */
size_t idem_key_parse(const char *v, size_t len, char *out, size_t cap);

/* ---- the fingerprint ------------------------------------------------------------------ */

struct idem_fp {
    EVP_MD_CTX *ctx;
    bool open;                  /* begun and not yet ended */
};

/* A fingerprint context (one per request, or reused: begin restarts it).
 * 0, or -1 (out of memory). */
int idem_fp_init(struct idem_fp *fp);
void idem_fp_free(struct idem_fp *fp);
/* Start with the request line's parts: METHOD, the normalized PATH and the
 * QUERY (may be empty). MD is SHA-256, fetched once by the owner (a fetch
 * per request is a provider lookup and its allocations). */
int idem_fp_begin(struct idem_fp *fp, const EVP_MD *md, const char *method, const char *path,
                  size_t path_len, const char *query, size_t query_len);
/* The body, in as many pieces as it comes. */
int idem_fp_body(struct idem_fp *fp, const void *data, size_t len);
/* The fingerprint of everything fed since begin, into OUT. 0 or -1. */
int idem_fp_end(struct idem_fp *fp, unsigned char out[IDEM_FP_LEN]);

/* ---- what is stored under a key ------------------------------------------------------- */

/* Is the response header NAME[0..len) kept with a stored response? (case-insensitive) */
bool idem_header_stored(const char *name, size_t len);

struct idem_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* A stored response; decoding points into the decoded buffer. */
struct idem_record {
    int status;                              /* 200-499: 5xx are never stored */
    unsigned char fp[IDEM_FP_LEN];           /* of the request it answered */
    const char *request_id;                  /* that request's correlation ID */
    size_t request_id_len;
    struct idem_header headers[IDEM_MAX_HEADERS];
    size_t n_headers;
    const char *body;
    size_t body_len;
};

/* A claim: the first request with the key is running. */
struct idem_claim {
    unsigned char fp[IDEM_FP_LEN];
    const char *request_id;
    size_t request_id_len;
};

enum idem_kind { IDEM_NONE, IDEM_CLAIM, IDEM_RECORD, IDEM_BAD };

/*
 * What a stored value BUF[0..len) is. BAD: neither a claim nor a record
 * this version can read (another version's, or damaged): callers treat
 * the key as unusable, never as free.
 */
enum idem_kind idem_stored_kind(const char *buf, size_t len);

/* The bytes R takes encoded; 0 when R cannot be stored (a field out of
 * bounds: a status outside 200-499, too many headers, a header with CR,
 * LF or NUL, an ID that is not printable). */
size_t idem_record_size(const struct idem_record *r);
/* Encode R into OUT[0..cap); returns the length, or 0 (does not fit, or idem_record_size is 0). */
size_t idem_record_encode(const struct idem_record *r, char *out, size_t cap);
/* Decode BUF[0..len) into R (pointers into BUF); false when it is not a
 * well-formed record of this version. */
bool idem_record_decode(const char *buf, size_t len, struct idem_record *r);

size_t idem_claim_size(const struct idem_claim *c);
size_t idem_claim_encode(const struct idem_claim *c, char *out, size_t cap);
bool idem_claim_decode(const char *buf, size_t len, struct idem_claim *c);

#endif
