/*
 * test_fwdhead: the request head the upstream receives for a client head,
 * and which upstream response fields reach the client. Each row is a
 * literal client head and the literal upstream head it must become, or a
 * field and the verdict on it: add a case with one line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "auth.h"
#include "fwdhead.h"
#include "httpreq.h"


void test_register(void);

static struct conf *conf;
static struct conf_route route;
static struct httpreq req;

static int suite_init(void)
{
    conf = calloc(1, sizeof *conf);
    if (!conf)
        return -1;
    strcpy(conf->corr_header, "X-Correlation-Id");
    conf->merge_slashes = true;
    strcpy(route.prefix, "/api");
    route.prefix_len = 4;
    return 0;
}

static int suite_clean(void)
{
    free(conf);
    return 0;
}

#define TAIL "X-Correlation-Id: id-1\r\nX-Forwarded-For: "
#define HOPH(proto, host) "\r\nX-Forwarded-Proto: " proto "\r\nX-Forwarded-Host: " host "\r\nVia: "
#define HOP HOPH("http", "h")

static const struct {
    const char *client;     /* the client's head */
    bool strip, merge, upgrade;
    const char *upstream;   /* what the upstream receives */
    bool trusted, tls;      /* the peer is a trusted proxy; it came over TLS */
    const char *host;       /* host = upstream | NAME: sent instead of the client's */
} rows[] = {
    {"GET /a HTTP/1.1\r\nHost: h\r\n\r\n", false, true, false,
     "GET /a HTTP/1.1\r\nHost: h\r\n" TAIL "10.0.0.9" HOP "1.1 envelopd\r\n\r\n", false, false, NULL},
    /* HTTP/1.0 without Host: the first server's address */
    {"GET /a HTTP/1.0\r\n\r\n", false, true, false,
     "GET /a HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n" TAIL "10.0.0.9" HOPH("http", "127.0.0.1:9001")
     "1.0 envelopd\r\n\r\n", false, false, NULL},
    /* hop-by-hop, named in Connection, and the gateway's own fields go */
    {"GET /a HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
     "Keep-Alive: 5\r\nTE: trailers\r\nProxy-Authorization: x\r\nX-Correlation-Id: old\r\n"
     "X-Forwarded-Proto: https\r\nExpect: 100-continue\r\nAccept: */*\r\n\r\n", false, true, false,
     "GET /a HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n" TAIL "10.0.0.9" HOP "1.1 envelopd\r\n\r\n", false, false, NULL},
    /* every X-Forwarded-For and Via line, joined in order, then this hop */
    {"GET /a HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nVia: 1.1 a\r\n"
     "X-Forwarded-For: 2.2.2.2, 3.3.3.3\r\nVia: 1.0 b\r\n\r\n", false, true, false,
     "GET /a HTTP/1.1\r\nHost: h\r\n" TAIL "1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.9" HOP
     "1.1 a, 1.0 b, 1.1 envelopd\r\n\r\n", false, false, NULL},
    /* the normalized target; the query untouched */
    {"GET /%61pi//x/./y?q=%2F HTTP/1.1\r\nHost: h\r\n\r\n", false, true, false,
     "GET /api/x/y?q=%2F HTTP/1.1\r\nHost: h\r\n" TAIL "10.0.0.9" HOP "1.1 envelopd\r\n\r\n", false, false, NULL},
    /* merge_slashes = no: the client's slashes, still decoded and resolved */
    {"GET //%61pi//x/../y HTTP/1.1\r\nHost: h\r\n\r\n", false, false, false,
     "GET //api//y HTTP/1.1\r\nHost: h\r\n" TAIL "10.0.0.9" HOP "1.1 envelopd\r\n\r\n", false, false, NULL},
    /* strip_prefix takes the client's spelling of the prefix's segments */
    {"GET /API;v=1/tasks/7?x HTTP/1.1\r\nHost: h\r\n\r\n", true, true, false,
     "GET /tasks/7?x HTTP/1.1\r\nHost: h\r\n" TAIL "10.0.0.9" HOP "1.1 envelopd\r\n\r\n", false, false, NULL},
    /* a body's framing is the gateway's to write */
    {"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n", false, true, false,
     "POST /a HTTP/1.1\r\nHost: h\r\n" TAIL "10.0.0.9" HOP
     "1.1 envelopd\r\nContent-Length: 3\r\n\r\n", false, false, NULL},
    {"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", false, true, false,
     "POST /a HTTP/1.1\r\nHost: h\r\n" TAIL "10.0.0.9" HOP
     "1.1 envelopd\r\nTransfer-Encoding: chunked\r\n\r\n", false, false, NULL},
    /* an upgrade is asked of this hop again */
    {"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false,
     true, true,
     "GET /ws HTTP/1.1\r\nHost: h\r\n" TAIL "10.0.0.9" HOP
     "1.1 envelopd\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", false, false, NULL},
    /* over TLS: https, whatever an untrusted client claims */
    {"GET /a HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: evil\r\n\r\n",
     false, true, false, "GET /a HTTP/1.1\r\nHost: h\r\n" TAIL "10.0.0.9" HOPH("https", "h")
     "1.1 envelopd\r\n\r\n", false, true, NULL},
    /* an untrusted client's https claim is not taken on plain HTTP */
    {"GET /a HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\n\r\n", false, true, false,
     "GET /a HTTP/1.1\r\nHost: h\r\n" TAIL "10.0.0.9" HOP "1.1 envelopd\r\n\r\n", false, false, NULL},
    /* a trusted proxy's scheme and host are kept (its last line) */
    {"GET /a HTTP/1.1\r\nHost: internal\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Proto: HTTPS\r\n"
     "X-Forwarded-Host: api.example.com\r\n\r\n", false, true, false,
     "GET /a HTTP/1.1\r\nHost: internal\r\n" TAIL "10.0.0.9" HOPH("https", "api.example.com")
     "1.1 envelopd\r\n\r\n", true, false, NULL},
    /* ...but only a scheme: anything else is this hop's own */
    {"GET /a HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: javascript\r\n\r\n", false, true, false,
     "GET /a HTTP/1.1\r\nHost: h\r\n" TAIL "10.0.0.9" HOPH("https", "h") "1.1 envelopd\r\n\r\n",
     true, true, NULL},
    /* HTTP/1.0, absolute-form, no Host: the authority it named, not the upstream's */
    {"GET http://api.example.com:8080/a HTTP/1.0\r\n\r\n", false, true, false,
     "GET /a HTTP/1.1\r\nHost: api.example.com:8080\r\n" TAIL "10.0.0.9"
     HOPH("http", "api.example.com:8080") "1.0 envelopd\r\n\r\n", false, false, NULL},
    /* host = NAME: the upstream's own name; X-Forwarded-Host keeps the client's */
    {"GET /a HTTP/1.1\r\nHost: api.example.com\r\n\r\n", false, true, false,
     "GET /a HTTP/1.1\r\nHost: billing.internal:8443\r\n" TAIL "10.0.0.9"
     HOPH("http", "api.example.com") "1.1 envelopd\r\n\r\n", false, false,
     "billing.internal:8443"},
};

/* Address claims pass only from a trusted proxy; path rewrites never. */
static const struct {
    const char *name;
    bool trusted;
    bool skipped;
} claims[] = {
    {"X-Real-IP", false, true},
    {"X-Real-IP", true, false},
    {"Forwarded", false, true},
    {"Forwarded", true, false},
    {"True-Client-IP", false, true},
    {"X-Forwarded-Host", false, true},
    {"X-Forwarded-Host", true, true},   /* written by the gateway, a trusted proxy's value kept */
    {"x-forwarded-prefix", false, true},
    /* "this came over HTTPS" in other spellings (Rack, CodeIgniter, IIS ARR) */
    {"X-Forwarded-Ssl", false, true},
    {"Front-End-Https", false, true},
    {"X-Forwarded-Scheme", false, true},
    {"X-ARR-SSL", false, true},
    {"X-Forwarded-Ssl", true, false},
    {"X-Host", false, true},
    {"X-Original-URL", true, true},
    {"X-Rewrite-URL", false, true},
    {"X-Custom", false, false},
};

static void test_claims(void)
{
    for (size_t i = 0; i < sizeof claims / sizeof claims[0]; i++) {
        struct httphead_field f = {
            .name = claims[i].name, .name_len = (uint32_t)strlen(claims[i].name),
            .value = "1.2.3.4", .value_len = 7,
        };
        CU_ASSERT_EQUAL(fwdhead_skip_request(conf, &f, claims[i].trusted), claims[i].skipped);
    }
}

static void test_request(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *why = NULL;
        int st = httpreq_parse(&req, rows[i].client, strlen(rows[i].client), &why);
        CU_ASSERT_EQUAL_FATAL(st, 0);
        httphead_mark_hop(&req.head);
        route.strip_prefix = rows[i].strip;
        conf->merge_slashes = rows[i].merge;
        struct fwdhead_req in = {
            .conf = conf, .route = &route, .req = &req, .default_host = "127.0.0.1:9001",
            .request_id = "id-1", .peer_ip = "10.0.0.9", .upgrade = rows[i].upgrade,
            .trusted_peer = rows[i].trusted, .tls = rows[i].tls, .host = rows[i].host,
        };
        static char mem[65536];
        struct headbuf h;
        headbuf_mem(&h, mem, fwdhead_request_cap(&in));
        fwdhead_request(&h, &in);
        CU_ASSERT_FALSE(h.full);
        if (h.len != strlen(rows[i].upstream) || memcmp(mem, rows[i].upstream, h.len) != 0) {
            fprintf(stderr, "\nrow %zu: got\n%.*s\nwant\n%s\n", i, (int)h.len, mem,
                    rows[i].upstream);
            CU_FAIL("upstream head differs");
        }
    }
    conf->merge_slashes = true;
}

static const struct {
    const char *name;
    int status;
    bool enveloped, own_limit, expose;
    const char *hide;       /* [envelope] hide_headers entry, or NULL */
    bool skipped;
} fields[] = {
    {"Content-Type", 200, false, false, false, NULL, false},
    {"Content-Length", 200, false, false, false, NULL, true},
    {"X-Correlation-Id", 200, false, false, false, NULL, true},
    {"Server", 200, false, false, false, NULL, false},
    {"X-RateLimit-Limit", 200, false, false, false, NULL, false},
    {"X-RateLimit-Limit", 200, false, true, false, NULL, true},
    /* an envelope replaces the body and its representation */
    {"Content-Type", 404, true, false, false, NULL, true},
    {"ETag", 404, true, false, false, NULL, true},
    {"Date", 404, true, false, false, NULL, true},
    {"Server", 404, true, false, false, NULL, false},
    {"Retry-After", 503, true, false, false, NULL, false},
    /* upstream internals never leave on an enveloped 5xx */
    {"Server", 500, true, false, false, NULL, true},
    {"x-powered-by", 502, true, false, false, NULL, true},
    {"X-AspNet-Version", 500, true, false, false, NULL, true},
    {"X-Debug-Token-Link", 500, true, false, false, NULL, true},
    {"X-Drupal-Cache", 500, true, false, false, NULL, true},
    {"Server", 500, true, false, true, NULL, false},
    {"X-Internal-Host", 500, true, false, false, "X-Internal-*", true},
    {"X-Internal-Host", 500, true, false, true, "X-Internal-*", false},
    {"X-Team-Region", 500, true, false, false, "X-Team", false},
    {"X-Team", 500, true, false, false, "X-Team", true},
    {"X-Backend-Region", 500, true, false, false, NULL, true},
    {"x-upstream-addr", 502, true, false, false, NULL, true},
    {"X-Envoy-Upstream-Service-Time", 500, true, false, false, NULL, true},
    {"Via", 500, true, false, false, NULL, true},
    {"Via", 200, false, false, false, NULL, false},
    {"Retry-After", 503, true, false, false, NULL, false},
};

static void test_response(void)
{
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        struct httphead_field f = {
            .name = fields[i].name, .name_len = (uint32_t)strlen(fields[i].name),
            .value = "v", .value_len = 1,
        };
        conf->n_hide_headers = 0;
        if (fields[i].hide) {
            strcpy(conf->hide_headers[0], fields[i].hide);
            conf->n_hide_headers = 1;
        }
        bool got = fwdhead_skip_response(conf, &f, fields[i].status, fields[i].enveloped,
                                         fields[i].own_limit, fields[i].expose, false);
        if (got != fields[i].skipped) {
            fprintf(stderr, "\nfield row %zu (%s %d)\n", i, fields[i].name, fields[i].status);
            CU_FAIL("response field verdict");
        }
    }
}

/* When the gateway answers CORS, the upstream's Access-Control-* go. */
static void test_own_cors(void)
{
    static const struct {
        const char *name;
        bool own, skipped;
    } cors_rows[] = {
        {"Access-Control-Allow-Origin", true, true},
        {"access-control-expose-headers", true, true},
        {"Access-Control-Allow-Origin", false, false},
        {"Vary", true, false},
        {"Access-Control", true, false},
    };
    for (size_t i = 0; i < sizeof cors_rows / sizeof cors_rows[0]; i++) {
        struct httphead_field f = {
            .name = cors_rows[i].name, .name_len = (uint32_t)strlen(cors_rows[i].name),
            .value = "v", .value_len = 1,
        };
        CU_ASSERT_EQUAL(fwdhead_skip_response(conf, &f, 200, false, false, false, cors_rows[i].own),
                        cors_rows[i].skipped);
    }
}

/*
 * Identity (auth): the gateway's identity headers are stripped from what the
 * client sent on every request; hide_credentials drops Authorization and
 * token_header; an open head is ended by fwdhead_identity with the verified
 * caller's lines.
 */
static void test_identity(void)
{
    strcpy(conf->token_header, "X-Api-Key");
    strcpy(conf->auth_subject_header, "X-Auth-Subject");
    strcpy(conf->auth_org_header, "X-Auth-Org");
    strcpy(conf->auth_scopes_header, "");  /* not sent, and so not stripped */
    const char *client = "POST /a HTTP/1.1\r\nHost: h\r\nx-auth-subject: admin\r\n"
                         "X-Auth-Org: acme\r\nX-Auth-Scopes: all\r\nAuthorization: Bearer t\r\n"
                         "X-Api-Key: k\r\nContent-Length: 2\r\n\r\n";
    const char *want_hidden = "POST /a HTTP/1.1\r\nHost: h\r\nX-Auth-Scopes: all\r\n" TAIL
                              "10.0.0.9" HOP "1.1 envelopd\r\nContent-Length: 2\r\n";
    const char *want_kept = "POST /a HTTP/1.1\r\nHost: h\r\nX-Auth-Scopes: all\r\n"
                            "Authorization: Bearer t\r\nX-Api-Key: k\r\n" TAIL "10.0.0.9" HOP
                            "1.1 envelopd\r\nContent-Length: 2\r\n\r\n";
    const char *why = NULL;
    CU_ASSERT_EQUAL_FATAL(httpreq_parse(&req, client, strlen(client), &why), 0);
    httphead_mark_hop(&req.head);
    route.strip_prefix = false;
    static char mem[65536];
    struct headbuf h;
    /* credentials kept, head closed: the client's identity claims still go */
    struct fwdhead_req in = {
        .conf = conf, .route = &route, .req = &req, .default_host = "127.0.0.1:9001",
        .request_id = "id-1", .peer_ip = "10.0.0.9",
    };
    headbuf_mem(&h, mem, fwdhead_request_cap(&in));
    fwdhead_request(&h, &in);
    CU_ASSERT_FALSE(h.full);
    CU_ASSERT_EQUAL(h.len, strlen(want_kept));
    CU_ASSERT_NSTRING_EQUAL(mem, want_kept, strlen(want_kept));
    /* hidden credentials, head left open, then ended with the identity */
    in.hide_credentials = true;
    in.open_end = true;
    headbuf_mem(&h, mem, fwdhead_request_cap(&in) + fwdhead_identity_cap(conf));
    fwdhead_request(&h, &in);
    CU_ASSERT_EQUAL(h.len, strlen(want_hidden));
    CU_ASSERT_NSTRING_EQUAL(mem, want_hidden, strlen(want_hidden));
    struct auth_identity id;
    memset(&id, 0, sizeof id);
    id.kind = AUTH_KIND_JWT;
    strcpy(id.subject, "user-1");
    strcpy(id.scopes, "tasks:read");  /* its header is off */
    size_t before = h.len;
    fwdhead_identity(&h, conf, &id);
    const char *tail = "X-Auth-Subject: user-1\r\n\r\n";  /* no org: no line */
    CU_ASSERT_EQUAL(h.len - before, strlen(tail));
    CU_ASSERT_NSTRING_EQUAL(mem + before, tail, strlen(tail));
    /* no identity: only the end */
    before = h.len;
    fwdhead_identity(&h, conf, NULL);
    CU_ASSERT_EQUAL(h.len - before, 2);
    strcpy(conf->token_header, "");
    conf->auth_subject_header[0] = conf->auth_org_header[0] = '\0';
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("fwdhead", suite_init, suite_clean);
    if (!s)
        return;
    CU_add_test(s, "the upstream request head", test_request);
    CU_add_test(s, "identity headers and hidden credentials", test_identity);
    CU_add_test(s, "address claims and path rewrites", test_claims);
    CU_add_test(s, "response fields the client gets", test_response);
    CU_add_test(s, "the gateway's CORS replaces the upstream's", test_own_cors);
}
