/*
 * test_auth: the decision for one request's credential, with the pure
 * modules underneath real (jwt.c, jwks.c, apikey.c): the generation's keys
 * (an HS256 secret file, a keys file, a missing or bad file), each
 * outcome and the seed answer it stands for, the order of the checks (a
 * caller who cannot prove who it is never meets the route's rules), the
 * dispatch of jwt_or_api_key, the route's rules (API keys forbidden, the
 * asked-for organization, required scopes), the identity's limit id and
 * plan. Tokens are minted here with HMAC-SHA256 around the real clock, as
 * auth.c reads it; jwt.c's own suite covers every algorithm.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth.h"

void test_register(void);

#define SECRET "0123456789abcdef0123456789abcdef" /* [limits] hash_secret */
#define HS "an-hs256-secret-of-thirty-two-bytes-or-more"
#define KEY_ACTIVE "pjk_live_active1"
#define KEY_REVOKED "pjk_live_revoked1"
#define KEY_EXPIRED "pjk_live_expired1"
#define KEY_OTHER_ORG "pjk_live_globex1"

static char dir[] = "/tmp/test_auth.XXXXXX";
static char hs_path[64], keys_path[64], short_path[64];
static struct conf *conf;
static struct auth_keys *keys;
static struct auth *a;
static struct conf_route route;

/* Used by the suite's setup too: no CUnit assertion here. */
static bool write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

static bool id_of(const char *key, char out[APIKEY_ID_LEN + 1])
{
    return apikey_id((const unsigned char *)SECRET, strlen(SECRET), key, strlen(key), out);
}

static int suite_init(void)
{
    if (!mkdtemp(dir))
        return -1;
    snprintf(hs_path, sizeof hs_path, "%s/hs", dir);
    snprintf(keys_path, sizeof keys_path, "%s/keys", dir);
    snprintf(short_path, sizeof short_path, "%s/short", dir);
    char a1[65], r1[65], e1[65], g1[65], text[1024];
    if (!write_file(hs_path, HS "\r\n") || !write_file(short_path, "too-short\n") ||
        !id_of(KEY_ACTIVE, a1) || !id_of(KEY_REVOKED, r1) || !id_of(KEY_EXPIRED, e1) ||
        !id_of(KEY_OTHER_ORG, g1))
        return -1;
    snprintf(text, sizeof text,
             "%s status=active org=acme scopes=tasks:read,tasks:write plan=pro\n"
             "%s status=revoked org=acme\n"
             "%s status=active org=acme expires_at=1000\n"
             "%s status=active org=globex scopes=tasks:read\n",
             a1, r1, e1, g1);
    if (!write_file(keys_path, text))
        return -1;
    conf = calloc(1, sizeof *conf);
    if (!conf)
        return -1;
    conf->auth_set = true;
    snprintf(conf->hash_secret, sizeof conf->hash_secret, "%s", SECRET);
    conf->hash_secret_set = true;
    snprintf(conf->auth_hs256_secret_file, sizeof conf->auth_hs256_secret_file, "%s", hs_path);
    snprintf(conf->auth_keys_file, sizeof conf->auth_keys_file, "%s", keys_path);
    snprintf(conf->auth_key_prefix_required, sizeof conf->auth_key_prefix_required, "pjk_live_");
    snprintf(conf->auth_issuer, sizeof conf->auth_issuer, "https://issuer.example");
    conf->auth_leeway_ms = 60000;
    conf->auth_key_cache_ttl_ms = 10000;
    snprintf(conf->plans[0].name, sizeof conf->plans[0].name, "pro");
    conf->plans[0].per_token.count = 5;
    conf->plans[0].per_token.window_ms = 60000;
    conf->n_plans = 1;
    char err[512];
    keys = auth_keys_new(conf, err, sizeof err);
    a = auth_new();
    return keys && a ? 0 : -1;
}

static int suite_clean(void)
{
    auth_free(a);
    auth_keys_free(keys);
    free(conf);
    unlink(hs_path);
    unlink(keys_path);
    unlink(short_path);
    rmdir(dir);
    return 0;
}

/* ---- minting ---- */

static size_t b64url(const unsigned char *in, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    for (int i = 0; i < len; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    out[len] = '\0';
    return (size_t)len;
}

/* An HS256 JWT of PAYLOAD ("EXP" replaced by now + EXP_DELTA) signed with KEY. */
static char *mint(const char *payload_tmpl, long exp_delta, const char *key)
{
    static char tok[4096];
    char payload[1024];
    const char *at = strstr(payload_tmpl, "EXP");
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    snprintf(payload, sizeof payload, "%.*s%lld%s", (int)(at - payload_tmpl), payload_tmpl,
             (long long)time(NULL) + exp_delta, at + 3);
    const char *header = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    size_t o = b64url((const unsigned char *)header, strlen(header), tok);
    tok[o++] = '.';
    o += b64url((const unsigned char *)payload, strlen(payload), tok + o);
    unsigned char mac[32];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)tok, o, mac, &ml);
    tok[o++] = '.';
    b64url(mac, ml, tok + o);
    return tok;
}

#define ISS "\"iss\":\"https://issuer.example\""
#define GOOD "{" ISS ",\"sub\":\"user-1\",\"org\":\"acme\",\"scope\":\"tasks:read tasks:write\"," \
             "\"plan\":\"pro\",\"exp\":EXP}"
#define NO_ORG "{" ISS ",\"sub\":\"user-2\",\"scope\":\"tasks:read\",\"exp\":EXP}"

/* ---- running a query ---- */

static struct auth_result run(enum conf_auth mode, const char *token, const char *org)
{
    route.auth = mode;
    struct auth_query q = {
        .conf = conf,
        .keys = keys,
        .route = &route,
        .token = token,
        .token_len = token ? strlen(token) : 0,
        .org_asked = org,
        .org_asked_len = org ? strlen(org) : 0,
    };
    struct auth_result r;
    struct auth_pending *p = (struct auth_pending *)&r;
    CU_ASSERT_EQUAL(auth_check(a, NULL, &q, &r, NULL, NULL, &p), 1);
    CU_ASSERT_PTR_NULL(p);
    return r;
}

static void reset_route(void)
{
    memset(&route, 0, sizeof route);
    snprintf(route.name, sizeof route.name, "tasks");
}

static void test_keys_load(void)
{
    char err[512];
    struct conf *c = calloc(1, sizeof *c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    /* no [auth]: an empty set, not an error */
    struct auth_keys *k = auth_keys_new(c, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(k);
    auth_keys_free(k);
    c->auth_set = true;
    snprintf(c->auth_hs256_secret_file, sizeof c->auth_hs256_secret_file, "%s", short_path);
    err[0] = '\0';
    CU_ASSERT_PTR_NULL(auth_keys_new(c, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, short_path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "32"));
    snprintf(c->auth_hs256_secret_file, sizeof c->auth_hs256_secret_file, "%s/none", dir);
    err[0] = '\0';
    CU_ASSERT_PTR_NULL(auth_keys_new(c, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/none"));
    c->auth_hs256_secret_file[0] = '\0';
    snprintf(c->auth_jwks_file, sizeof c->auth_jwks_file, "%s", keys_path); /* not JSON */
    err[0] = '\0';
    CU_ASSERT_PTR_NULL(auth_keys_new(c, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, keys_path));
    c->auth_jwks_file[0] = '\0';
    snprintf(c->auth_keys_file, sizeof c->auth_keys_file, "%s", hs_path); /* not a keys file */
    err[0] = '\0';
    CU_ASSERT_PTR_NULL(auth_keys_new(c, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, hs_path));
    free(c);
}

static void test_jwt_outcomes(void)
{
    reset_route();
    struct auth_result r = run(CONF_AUTH_JWT, mint(GOOD, 600, HS), NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_PASS);
    CU_ASSERT_EQUAL(r.tried, AUTH_KIND_JWT);
    CU_ASSERT_EQUAL(r.id.kind, AUTH_KIND_JWT);
    CU_ASSERT_STRING_EQUAL(r.id.subject, "user-1");
    CU_ASSERT_STRING_EQUAL(r.id.org, "acme");
    CU_ASSERT_STRING_EQUAL(r.id.scopes, "tasks:read tasks:write");
    CU_ASSERT_STRING_EQUAL(r.id.plan, "pro");
    /* the same token again: from the cache, the same answer */
    r = run(CONF_AUTH_JWT, mint(GOOD, 600, HS), NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_PASS);
    CU_ASSERT_STRING_EQUAL(r.id.subject, "user-1");

    r = run(CONF_AUTH_JWT, mint(GOOD, -3600, HS), NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_TOKEN_EXPIRED);
    CU_ASSERT_EQUAL(r.id.kind, AUTH_KIND_NONE);
    /* within the leeway: still valid */
    r = run(CONF_AUTH_JWT, mint(GOOD, -30, HS), NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_PASS);
    r = run(CONF_AUTH_JWT, mint(GOOD, 600, "another-secret-of-thirty-two-bytes-long"), NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_TOKEN_INVALID);
    CU_ASSERT_PTR_NOT_NULL(r.reason);
    r = run(CONF_AUTH_JWT,
            mint("{\"iss\":\"https://evil.example\",\"sub\":\"x\",\"exp\":EXP}", 600, HS), NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_TOKEN_INVALID);
    /* "key:" is the API keys' namespace upstream and in the limits */
    r = run(CONF_AUTH_JWT, mint("{" ISS ",\"sub\":\"key:abc\",\"exp\":EXP}", 600, HS), NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_TOKEN_INVALID);
    r = run(CONF_AUTH_JWT, mint("{" ISS ",\"sub\":\"keys:abc\",\"exp\":EXP}", 600, HS), NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_PASS);
    r = run(CONF_AUTH_JWT, "not.a.jwt", NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_TOKEN_INVALID);
    r = run(CONF_AUTH_JWT, KEY_ACTIVE, NULL); /* a key where a JWT is required */
    CU_ASSERT_EQUAL(r.outcome, AUTH_TOKEN_INVALID);
    r = run(CONF_AUTH_JWT, NULL, NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_MISSING);
    CU_ASSERT_EQUAL(r.tried, AUTH_KIND_NONE);
}

static void test_key_outcomes(void)
{
    reset_route();
    char id[65], subject[80];
    CU_ASSERT_TRUE_FATAL(id_of(KEY_ACTIVE, id));
    snprintf(subject, sizeof subject, "key:%s", id);
    struct auth_result r = run(CONF_AUTH_API_KEY, KEY_ACTIVE, NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_PASS);
    CU_ASSERT_EQUAL(r.tried, AUTH_KIND_API_KEY);
    CU_ASSERT_EQUAL(r.id.kind, AUTH_KIND_API_KEY);
    CU_ASSERT_STRING_EQUAL(r.id.subject, subject);
    CU_ASSERT_STRING_EQUAL(r.id.org, "acme");
    CU_ASSERT_STRING_EQUAL(r.id.scopes, "tasks:read tasks:write"); /* commas become spaces */
    CU_ASSERT_STRING_EQUAL(r.id.plan, "pro");

    static const struct {
        const char *key;
        enum auth_outcome want;
    } rows[] = {
        {KEY_REVOKED, AUTH_KEY_INVALID},
        {KEY_EXPIRED, AUTH_TOKEN_EXPIRED},
        {"pjk_live_unknown", AUTH_KEY_INVALID},
        {"pjk_test_active1", AUTH_KEY_INVALID}, /* not the required prefix */
        {"pjk_live_", AUTH_KEY_INVALID},
        {"pjk_live_a b", AUTH_KEY_INVALID},     /* not token68 */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        r = run(CONF_AUTH_API_KEY, rows[i].key, NULL);
        CU_ASSERT_EQUAL(r.outcome, rows[i].want);
        CU_ASSERT_EQUAL(r.id.kind, AUTH_KIND_NONE);
        CU_ASSERT_PTR_NOT_NULL(r.reason);
        if (r.outcome != rows[i].want)
            printf("\n  key %s: %s\n", rows[i].key, auth_outcome_str(r.outcome));
    }
    r = run(CONF_AUTH_API_KEY, NULL, NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_MISSING);
}

static void test_dispatch(void)
{
    reset_route();
    /* with the prefix, a key; three dot-separated parts, a JWT; anything else, a key */
    struct auth_result r = run(CONF_AUTH_JWT_OR_API_KEY, KEY_ACTIVE, NULL);
    CU_ASSERT_EQUAL(r.tried, AUTH_KIND_API_KEY);
    CU_ASSERT_EQUAL(r.outcome, AUTH_PASS);
    r = run(CONF_AUTH_JWT_OR_API_KEY, "pjk_live_a.b.c", NULL);
    CU_ASSERT_EQUAL(r.tried, AUTH_KIND_API_KEY);
    CU_ASSERT_EQUAL(r.outcome, AUTH_KEY_INVALID);
    r = run(CONF_AUTH_JWT_OR_API_KEY, mint(GOOD, 600, HS), NULL);
    CU_ASSERT_EQUAL(r.tried, AUTH_KIND_JWT);
    CU_ASSERT_EQUAL(r.outcome, AUTH_PASS);
    r = run(CONF_AUTH_JWT_OR_API_KEY, "x.y.z", NULL);
    CU_ASSERT_EQUAL(r.tried, AUTH_KIND_JWT);
    CU_ASSERT_EQUAL(r.outcome, AUTH_TOKEN_INVALID);
}

static void test_rules(void)
{
    reset_route();
    /* API keys forbidden: a key is refused, a token passes */
    route.forbid_api_keys = true;
    struct auth_result r = run(CONF_AUTH_JWT_OR_API_KEY, KEY_ACTIVE, NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_KEYS_FORBIDDEN);
    CU_ASSERT_EQUAL(r.id.kind, AUTH_KIND_API_KEY); /* who, for the log line */
    r = run(CONF_AUTH_JWT_OR_API_KEY, mint(GOOD, 600, HS), NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_PASS);
    /* ... but a key that cannot prove itself learns nothing of the rule */
    r = run(CONF_AUTH_JWT_OR_API_KEY, KEY_REVOKED, NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_KEY_INVALID);
    reset_route();

    /* the asked-for organization */
    r = run(CONF_AUTH_API_KEY, KEY_ACTIVE, "acme");
    CU_ASSERT_EQUAL(r.outcome, AUTH_PASS);
    r = run(CONF_AUTH_API_KEY, KEY_ACTIVE, "globex");
    CU_ASSERT_EQUAL(r.outcome, AUTH_ORG_MISMATCH);
    r = run(CONF_AUTH_API_KEY, KEY_ACTIVE, "acm");
    CU_ASSERT_EQUAL(r.outcome, AUTH_ORG_MISMATCH);
    r = run(CONF_AUTH_API_KEY, KEY_ACTIVE, "acmee");
    CU_ASSERT_EQUAL(r.outcome, AUTH_ORG_MISMATCH);
    r = run(CONF_AUTH_API_KEY, KEY_ACTIVE, "");
    CU_ASSERT_EQUAL(r.outcome, AUTH_ORG_MISMATCH);
    r = run(CONF_AUTH_API_KEY, KEY_OTHER_ORG, "acme");
    CU_ASSERT_EQUAL(r.outcome, AUTH_ORG_MISMATCH);
    r = run(CONF_AUTH_JWT, mint(GOOD, 600, HS), "globex");
    CU_ASSERT_EQUAL(r.outcome, AUTH_ORG_MISMATCH);
    r = run(CONF_AUTH_JWT, mint(GOOD, 600, HS), "acme");
    CU_ASSERT_EQUAL(r.outcome, AUTH_PASS);
    /* a token without an org claim: the upstream decides */
    r = run(CONF_AUTH_JWT, mint(NO_ORG, 600, HS), "globex");
    CU_ASSERT_EQUAL(r.outcome, AUTH_PASS);

    /* required scopes: every one, exact tokens */
    snprintf(route.require_scope, sizeof route.require_scope, "tasks:read tasks:write");
    r = run(CONF_AUTH_API_KEY, KEY_ACTIVE, NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_PASS);
    r = run(CONF_AUTH_API_KEY, KEY_OTHER_ORG, NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_SCOPE_MISSING);
    CU_ASSERT_STRING_EQUAL(r.missing_scope, "tasks:write");
    r = run(CONF_AUTH_JWT, mint(NO_ORG, 600, HS), NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_SCOPE_MISSING);
    CU_ASSERT_STRING_EQUAL(r.missing_scope, "tasks:write");
    snprintf(route.require_scope, sizeof route.require_scope, "tasks");
    r = run(CONF_AUTH_API_KEY, KEY_ACTIVE, NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_SCOPE_MISSING);
    CU_ASSERT_STRING_EQUAL(r.missing_scope, "tasks");
    /* a token's scope with a comma is one scope, not two */
    snprintf(route.require_scope, sizeof route.require_scope, "tasks:write");
    r = run(CONF_AUTH_JWT,
            mint("{" ISS ",\"sub\":\"u\",\"scope\":\"x,tasks:write\",\"exp\":EXP}", 600, HS),
            NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_SCOPE_MISSING);
    r = run(CONF_AUTH_JWT,
            mint("{" ISS ",\"sub\":\"u\",\"scope\":\"x tasks:write\",\"exp\":EXP}", 600, HS),
            NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_PASS);
    /* the org is checked before the scopes */
    snprintf(route.require_scope, sizeof route.require_scope, "admin");
    r = run(CONF_AUTH_API_KEY, KEY_ACTIVE, "globex");
    CU_ASSERT_EQUAL(r.outcome, AUTH_ORG_MISMATCH);
    reset_route();
}

static void test_no_store(void)
{
    /* api_key with neither keys file nor Redis: no verdict, fail closed */
    char err[256];
    struct conf *c = calloc(1, sizeof *c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    c->auth_set = true;
    snprintf(c->hash_secret, sizeof c->hash_secret, "%s", SECRET);
    struct auth_keys *k = auth_keys_new(c, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    reset_route();
    route.auth = CONF_AUTH_API_KEY;
    struct auth_query q = {.conf = c, .keys = k, .route = &route, .token = "abc", .token_len = 3};
    struct auth_result r;
    CU_ASSERT_EQUAL(auth_check(a, NULL, &q, &r, NULL, NULL, NULL), 1);
    CU_ASSERT_EQUAL(r.outcome, AUTH_UNAVAILABLE);
    CU_ASSERT_FALSE(auth_outcome_is_failure(r.outcome));
    /* and a JWT route without any key: invalid, never a pass */
    route.auth = CONF_AUTH_JWT;
    q.token = mint(GOOD, 600, HS);
    q.token_len = strlen(q.token);
    CU_ASSERT_EQUAL(auth_check(a, NULL, &q, &r, NULL, NULL, NULL), 1);
    CU_ASSERT_EQUAL(r.outcome, AUTH_TOKEN_INVALID);
    auth_keys_free(k);
    free(c);
}

static void test_identity_use(void)
{
    struct auth_identity id;
    memset(&id, 0, sizeof id);
    char buf[300];
    CU_ASSERT_EQUAL(auth_limit_id(&id, buf, sizeof buf), 0);
    id.kind = AUTH_KIND_JWT;
    snprintf(id.subject, sizeof id.subject, "user-1");
    CU_ASSERT_EQUAL(auth_limit_id(&id, buf, sizeof buf), 10);
    CU_ASSERT_STRING_EQUAL(buf, "jwt:user-1");
    CU_ASSERT_EQUAL(auth_limit_id(&id, buf, 5), 0); /* does not fit: none, never cut */
    id.kind = AUTH_KIND_API_KEY;
    snprintf(id.subject, sizeof id.subject, "key:abc");
    CU_ASSERT_EQUAL(auth_limit_id(&id, buf, sizeof buf), 7);
    CU_ASSERT_STRING_EQUAL(buf, "key:abc");
    /* a JWT subject that looks like a key's is still its own caller */
    id.kind = AUTH_KIND_JWT;
    CU_ASSERT_EQUAL(auth_limit_id(&id, buf, sizeof buf), 11);
    CU_ASSERT_STRING_EQUAL(buf, "jwt:key:abc");

    CU_ASSERT_PTR_NULL(auth_plan(conf, &id));
    snprintf(id.plan, sizeof id.plan, "pro");
    CU_ASSERT_PTR_EQUAL(auth_plan(conf, &id), &conf->plans[0]);
    snprintf(id.plan, sizeof id.plan, "Pro");
    CU_ASSERT_PTR_NULL(auth_plan(conf, &id));
}

static void test_outcomes(void)
{
    static const struct {
        enum auth_outcome o;
        bool failure;
    } rows[] = {
        {AUTH_PASS, false},          {AUTH_MISSING, false},         {AUTH_TOKEN_INVALID, true},
        {AUTH_TOKEN_EXPIRED, true},  {AUTH_KEY_INVALID, true},     {AUTH_ORG_MISMATCH, false},
        {AUTH_KEYS_FORBIDDEN, false}, {AUTH_SCOPE_MISSING, false}, {AUTH_UNAVAILABLE, false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CU_ASSERT_EQUAL(auth_outcome_is_failure(rows[i].o), rows[i].failure);
        CU_ASSERT_STRING_NOT_EQUAL(auth_outcome_str(rows[i].o), "?");
    }
}

/* A new generation with another secret: ids are computed anew (no cached
 * id of the old secret finds the old record). */
static void test_new_secret(void)
{
    reset_route();
    struct auth_result r = run(CONF_AUTH_API_KEY, KEY_ACTIVE, NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_PASS);
    char err[256];
    struct conf *c = malloc(sizeof *c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    memcpy(c, conf, sizeof *c);
    snprintf(c->hash_secret, sizeof c->hash_secret, "another-secret-0123456789abcdef");
    struct auth_keys *k = auth_keys_new(c, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    route.auth = CONF_AUTH_API_KEY;
    struct auth_query q = {.conf = c, .keys = k, .route = &route, .token = KEY_ACTIVE,
                           .token_len = strlen(KEY_ACTIVE)};
    CU_ASSERT_EQUAL(auth_check(a, NULL, &q, &r, NULL, NULL, NULL), 1);
    CU_ASSERT_EQUAL(r.outcome, AUTH_KEY_INVALID);
    CU_ASSERT_STRING_EQUAL(r.reason, "unknown");
    auth_keys_free(k);
    free(c);
    /* and back: the first generation's ids again */
    r = run(CONF_AUTH_API_KEY, KEY_ACTIVE, NULL);
    CU_ASSERT_EQUAL(r.outcome, AUTH_PASS);
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("auth", suite_init, suite_clean);
    if (!s)
        return;
    CU_add_test(s, "a generation's keys: files and their errors", test_keys_load);
    CU_add_test(s, "JWT outcomes", test_jwt_outcomes);
    CU_add_test(s, "API key outcomes", test_key_outcomes);
    CU_add_test(s, "jwt_or_api_key: which credential it is", test_dispatch);
    CU_add_test(s, "the route's rules, for proven callers only", test_rules);
    CU_add_test(s, "no key store: fail closed", test_no_store);
    CU_add_test(s, "another secret: ids computed anew", test_new_secret);
    CU_add_test(s, "limit ids and plans", test_identity_use);
    CU_add_test(s, "outcomes: names and failures", test_outcomes);
}
