/*
 * auth: who is calling, decided before a request is limited or forwarded
 * (issue #19). For a route with auth = jwt | api_key | jwt_or_api_key it
 * takes the credential the caller sent and answers with a verified
 * identity (subject, organization, scopes, plan) or with the reason it is
 * refused, which the proxy turns into the seeds' 401/403 answers. It owns
 * the glue between the pure modules: jwt.c/jwks.c verify tokens, apikey.c
 * names and parses keys' records; this file picks the credential's kind,
 * looks records up (keys file, per-worker cache, Redis HGETALL), and checks
 * the route's rules (forbid_api_keys, the caller's asked-for organization,
 * require_scope).
 *
 * Two lifetimes:
 * - struct auth_keys belongs to a conf generation: the key set, the HS256
 *   secret and the keys file, loaded once on the main thread (start,
 *   reload, -t, with the file in the message when one is bad) and shared
 *   read-only by every worker.
 * - struct auth belongs to one worker: the verified-token cache, the API
 *   key cache and the HMAC context, and the lookups still waiting for Redis.
 *
 * Nothing here logs a credential or keeps one: a key is known by its id
 * (an HMAC), a token by its subject.
 */
#ifndef ENVELOPD_AUTH_H
#define ENVELOPD_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "apikey.h"
#include "conf.h"
#include "jwt.h"

struct redis;

/* ---- per conf generation ----------------------------------------------------------- */

struct auth_keys;

/* What CONF's [auth] names, loaded; an empty set without [auth]. NULL with
 * "PATH: problem" in ERR when a file is unreadable or invalid. */
struct auth_keys *auth_keys_new(const struct conf *conf, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void auth_keys_free(struct auth_keys *k);

/* ---- per request ------------------------------------------------------------------- */

enum auth_outcome {
    AUTH_PASS,            /* the identity is verified and the route's rules hold */
    AUTH_MISSING,         /* 401 UNAUTHORIZED: no credential */
    AUTH_TOKEN_INVALID,   /* 401 TOKEN_INVALID: malformed, bad signature, wrong issuer... */
    AUTH_TOKEN_EXPIRED,   /* 401 TOKEN_EXPIRED: a token or key past its expiry */
    AUTH_KEY_INVALID,     /* 401 UNAUTHORIZED: unknown, revoked, malformed or bad-record key */
    AUTH_ORG_MISMATCH,    /* 403 FORBIDDEN: the asked-for org is not the caller's */
    AUTH_KEYS_FORBIDDEN,  /* 403 FORBIDDEN: forbid_api_keys and the caller used a key */
    AUTH_SCOPE_MISSING,   /* 403 FORBIDDEN: require_scope not granted */
    AUTH_UNAVAILABLE,     /* 503: the key store could not answer (fail closed) */
};

/* Static text for logs ("pass", "token invalid"...). */
const char *auth_outcome_str(enum auth_outcome o);
/* Did the caller fail to prove who it is (the outcomes per_ip_auth_failures counts)? */
bool auth_outcome_is_failure(enum auth_outcome o);

enum auth_kind { AUTH_KIND_NONE, AUTH_KIND_JWT, AUTH_KIND_API_KEY };

/* clang-format off */
struct auth_identity {
    enum auth_kind kind;
    char subject[256];             /* JWT: the subject claim; key: "key:" and its id */
    char org[APIKEY_ORG_MAX];      /* "" none */
    char scopes[APIKEY_SCOPES_MAX];/* tokens joined by single spaces; "" none */
    char plan[APIKEY_PLAN_MAX];    /* "" none */
};
/* clang-format on */

struct auth_result {
    enum auth_outcome outcome;
    enum auth_kind tried;          /* the kind of credential the caller sent; NONE: none */
    struct auth_identity id;       /* PASS and the 403s: who the caller is */
    const char *reason;            /* static detail for the log line */
    char missing_scope[CONF_SCOPE_MAX]; /* AUTH_SCOPE_MISSING: the first one not granted */
};

struct auth_query {
    const struct conf *conf;
    const struct auth_keys *keys;  /* of the same generation as CONF */
    const struct conf_route *route;
    const char *token;             /* the credential, "Bearer " stripped; NULL none */
    size_t token_len;
    const char *org_asked;         /* [auth] org_request_header's value; NULL none */
    size_t org_asked_len;
};

typedef void (*auth_cb)(const struct auth_result *res, void *arg);

struct auth;
struct auth_pending;

struct auth *auth_new(void) __attribute__((warn_unused_result));
/* Frees pending lookups without calling them back: free it before the
 * Redis connection their calls are on. */
void auth_free(struct auth *a);

/*
 * Decide for Q (a route with auth other than none). Returns 1 when decided
 * at once (*OUT filled, CB never called), 0 when an API key's record is
 * being fetched from REDIS: CB runs exactly once later, from the loop,
 * unless auth_cancel(*PENDING) comes first. REDIS may be NULL (no [redis]).
 */
int auth_check(struct auth *a, struct redis *redis, const struct auth_query *q,
               struct auth_result *out, auth_cb cb, void *arg, struct auth_pending **pending);
void auth_cancel(struct auth_pending *p);

/* The identity's key for the per-token limit ("jwt:" sub or "key:" id), in OUT[0..cap);
 * returns its length (0: none). */
size_t auth_limit_id(const struct auth_identity *id, char *out, size_t cap);

/* The plan IDENTITY names, if CONF has it; NULL otherwise. */
const struct conf_plan *auth_plan(const struct conf *conf, const struct auth_identity *id);

#endif
