/*
 * test_caller: the caller's identity from a request head: which heads are
 * refused (Connection naming a header the gateway decides on, two token
 * headers), the token, and the client address behind trusted proxies. Heads
 * are parsed with httpreq from literal text, so each row reads as a request.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "caller.h"
#include "httpreq.h"

void test_register(void);

static struct conf *conf;
static struct httpreq req;

static int suite_init(void)
{
    conf = calloc(1, sizeof *conf);
    if (!conf)
        return -1;
    strcpy(conf->token_header, "Authorization");
    strcpy(conf->corr_header, "X-Correlation-Id");
    strcpy(conf->accept[0], "X-Correlation-Id");
    strcpy(conf->accept[1], "X-Request-Id");
    conf->n_accept = 2;
    strcpy(conf->auth_org_request_header, "X-Org-Id");
    strcpy(conf->auth_subject_header, "X-Auth-Subject");
    strcpy(conf->auth_org_header, "X-Auth-Org");
    strcpy(conf->auth_scopes_header, "");  /* off: not decided on */
    if (!conf_parse_cidr("127.0.0.1/32", &conf->trusted_proxies[0]) ||
        !conf_parse_cidr("10.0.0.0/8", &conf->trusted_proxies[1]))
        return -1;
    conf->n_trusted_proxies = 2;
    return 0;
}

static int suite_clean(void)
{
    free(conf);
    return 0;
}

/* Parse "GET / HTTP/1.1\r\nHost: a\r\n" HEADERS "\r\n". */
static const struct httphead *head_of(const char *headers)
{
    static char buf[2048];
    snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: a\r\n%s\r\n", headers);
    const char *why = NULL;
    int st = httpreq_parse(&req, buf, strlen(buf), &why);
    CU_ASSERT_EQUAL_FATAL(st, 0);
    return &req.head;
}

static const struct {
    const char *token_header;
    const char *headers;
    bool refused;
} checks[] = {
    {"Authorization", "Connection: close\r\n", false},
    {"Authorization", "Connection: keep-alive, TE\r\nTE: trailers\r\n", false},
    {"Authorization", "Connection: Upgrade\r\nUpgrade: websocket\r\n", false},
    {"Authorization", "Connection: Authorization\r\nAuthorization: Bearer x\r\n", true},
    {"Authorization", "Connection: close, authorization\r\n", true},
    {"Authorization", "Connection: close\r\nConnection: AUTHORIZATION\r\n", true},
    {"Authorization", "Connection: Host\r\n", true},
    {"Authorization", "Connection: content-length\r\n", true},
    {"Authorization", "Connection: Transfer-Encoding\r\n", true},
    {"Authorization", "Connection: X-Correlation-Id\r\n", true},
    {"Authorization", "Connection: x-request-id\r\n", true},
    {"Authorization", "Connection: X-Forwarded-For\r\n", true},
    {"Authorization", "Connection: X-Forwarded-Proto\r\n", true},
    {"Authorization", "Connection: Forwarded\r\n", true},
    {"Authorization", "Connection: X-Api-Key\r\n", false},
    {"X-Api-Key", "Connection: x-api-key\r\n", true},
    {"Authorization", "Authorization: Bearer a\r\nAuthorization: Bearer b\r\n", true},
    {"Authorization", "Authorization: Bearer a\r\nauthorization: Basic b\r\n", true},
    {"X-Api-Key", "X-Api-Key: a\r\nX-API-KEY: b\r\n", true},
    {"X-Api-Key", "X-Api-Key: a\r\nAuthorization: Bearer b\r\n", false},
    /* '_' for '-': one header to CGI, WSGI, Rack and PHP */
    {"Authorization", "X_Forwarded_For: 1.2.3.4\r\n", true},
    {"Authorization", "x_correlation_id: abc\r\n", true},
    {"Authorization", "X_Request-Id: abc\r\n", true},
    {"X-Api-Key", "X_API_KEY: abc\r\n", true},
    {"Authorization", "X_Custom_Thing: abc\r\n", false},
    {"Authorization", "X_Forwarded_Forx: abc\r\n", false},
    {"Authorization", "X_HTTP_Method_Override: DELETE\r\n", true},
    {"Authorization", "X-HTTP-Method_Override: DELETE\r\n", true},
    {"Authorization", "X_Original_URL: /admin\r\n", true},
    {"Authorization", "X_Real_IP: 1.2.3.4\r\n", true},
    /* the header a route selects on (match_header = X-Api-Version: 2) */
    {"Authorization", "X-Api-Version: 2\r\nConnection: X-Api-Version\r\n", true},
    {"Authorization", "X_Api_Version: 2\r\n", true},
    {"Authorization", "x_api_version: 2\r\n", true},
    {"Authorization", "X-Api-Version: 2\r\n", false},
    {"Authorization", "X_Api_Versions: 2\r\n", false},
    {"Authorization", "X-Api-Version: 2\r\nX-Api-Version: 2\r\n", true},
    {"Authorization", "X-Api-Version: 2\r\nx-api-version: 1\r\n", true},
    /* auth: one Authorization even when the token header is another (a JWT comes there) */
    {"X-Api-Key", "Authorization: Bearer a\r\nAuthorization: Bearer b\r\n", true},
    /* the organization a key is checked against: one line, no alias, not hop-by-hop */
    {"Authorization", "X-Org-Id: acme\r\n", false},
    {"Authorization", "X-Org-Id: acme\r\nx-org-id: globex\r\n", true},
    {"Authorization", "X_Org_Id: globex\r\n", true},
    {"Authorization", "X-Org-Id: acme\r\nConnection: X-Org-Id\r\n", true},
    /* the identity headers only the gateway writes: no alias slips past the strip */
    {"Authorization", "X_Auth_Subject: admin\r\n", true},
    {"Authorization", "x_auth_org: acme\r\n", true},
    {"Authorization", "Connection: X-Auth-Subject\r\n", true},
    {"Authorization", "X-Auth-Subject: admin\r\n", false},  /* stripped by fwdhead */
    {"Authorization", "X_Auth_Scopes: all\r\n", false},     /* scopes_header off */
};

static void test_check_head(void)
{
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        strcpy(conf->token_header, checks[i].token_header);
        static const char *const route_headers[] = {"X-Api-Version"};
        const char *why = caller_check_head(conf, head_of(checks[i].headers), route_headers, 1);
        if ((why != NULL) != checks[i].refused) {
            char msg[256];
            snprintf(msg, sizeof msg, "row %zu: %s", i, checks[i].headers);
            CU_FAIL(msg);
        }
    }
    strcpy(conf->token_header, "Authorization");
}

static const struct {
    const char *headers;
    int method;          /* -1: none, -2: refused */
    const char *query;   /* after '?', or NULL */
} overrides[] = {
    {"", -1, NULL},
    {"X-HTTP-Method-Override: DELETE\r\n", HTTP_DELETE, NULL},
    {"x-http-method: put\r\n", HTTP_PUT, NULL},
    {"X-Method-Override: PATCH\r\n", HTTP_PATCH, NULL},
    {"X-HTTP-Method-Override: FROB\r\n", -2, NULL},
    {"X-HTTP-Method-Override: \r\n", -2, NULL},
    {"X-HTTP-Method-Override: GET\r\nX-HTTP-Method: DELETE\r\n", -2, NULL},
    {"X-HTTP-Method-Override: GET\r\nX-HTTP-Method-Override: get\r\n", HTTP_GET, NULL},
    /* _method in the query (Symfony, Laravel, method-override) */
    {"", HTTP_DELETE, "_method=DELETE"},
    {"", HTTP_DELETE, "a=1&_method=d%45lete&b"},
    {"", -1, "x_method=DELETE&method=PUT"},
    {"", -2, "_method=FROB"},
    {"X-HTTP-Method: PUT\r\n", -2, "_method=DELETE"},
    {"X-HTTP-Method: PUT\r\n", HTTP_PUT, "_method=put"},
    /* the key as frameworks decode it: %-escapes, '+', and PHP's name rules */
    {"", HTTP_DELETE, "%5Fmethod=DELETE"},
    {"", HTTP_DELETE, "_me%74hod=DELETE"},
    {"", HTTP_DELETE, ".method=DELETE"},
    {"", HTTP_DELETE, "+method=DELETE"},
    {"", HTTP_DELETE, "%20method=DELETE"},
    {"", HTTP_DELETE, "[method=DELETE"},
    {"", HTTP_DELETE, "_method%00x=DELETE"},
    {"", HTTP_DELETE, "a=1;_method=DELETE"},
    {"", HTTP_DELETE, "_method=%44ELETE"},
    {"", -1, "_methods=DELETE&x_method=PUT&_method"},
};

static void test_method_override(void)
{
    for (size_t i = 0; i < sizeof overrides / sizeof overrides[0]; i++) {
        const char *q = overrides[i].query;
        CU_ASSERT_EQUAL(caller_method_override(head_of(overrides[i].headers), q,
                                               q ? strlen(q) : 0),
                        overrides[i].method);
    }
}

static const struct {
    const char *headers;
    const char *token;   /* NULL: anonymous */
} tokens[] = {
    {"Authorization: Bearer abc\r\n", "abc"},
    {"Authorization: bearer   abc\r\n", "abc"},
    {"Authorization: Basic abc\r\n", NULL},
    {"Authorization: Bearer \r\n", NULL},
    {"Authorization: Bearer\tabc\r\n", "abc"},
    {"Authorization: Bearerabc\r\n", NULL},
    {"X-Other: Bearer abc\r\n", NULL},
};

static void test_token(void)
{
    for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++) {
        size_t n = 0;
        const char *t = caller_token(conf, head_of(tokens[i].headers), &n);
        if (!tokens[i].token) {
            CU_ASSERT_PTR_NULL(t);
        } else {
            CU_ASSERT_PTR_NOT_NULL_FATAL(t);
            CU_ASSERT_EQUAL(n, strlen(tokens[i].token));
            CU_ASSERT_EQUAL(memcmp(t, tokens[i].token, n), 0);
        }
    }
}

/* caller_credential and caller_two_credentials, with token_header given per row */
static const struct {
    const char *token_header;
    const char *headers;
    const char *credential; /* NULL: none */
    bool two;
} creds[] = {
    {"Authorization", "Authorization: Bearer jwt\r\n", "jwt", false},
    {"Authorization", "Authorization: Basic x\r\nX-Api-Key: k\r\n", NULL, false},
    {"X-Api-Key", "X-Api-Key: k\r\n", "k", false},
    {"X-Api-Key", "Authorization: Bearer jwt\r\n", "jwt", false},  /* a JWT comes there */
    {"X-Api-Key", "Authorization: Basic x\r\n", NULL, false},
    {"X-Api-Key", "X-Api-Key: k\r\nAuthorization: Bearer jwt\r\n", "k", true},
    {"X-Api-Key", "X-Api-Key: k\r\nAuthorization: Basic x\r\n", "k", true},
    {"X-Api-Key", "X-Api-Key: \r\nAuthorization: Bearer jwt\r\n", "jwt", false},
};

static void test_credential(void)
{
    for (size_t i = 0; i < sizeof creds / sizeof creds[0]; i++) {
        strcpy(conf->token_header, creds[i].token_header);
        size_t n = 0;
        const char *t = caller_credential(conf, head_of(creds[i].headers), &n);
        if (!creds[i].credential) {
            CU_ASSERT_PTR_NULL(t);
        } else {
            CU_ASSERT_PTR_NOT_NULL_FATAL(t);
            CU_ASSERT_EQUAL(n, strlen(creds[i].credential));
            CU_ASSERT_EQUAL(memcmp(t, creds[i].credential, n), 0);
        }
        CU_ASSERT_EQUAL(caller_two_credentials(conf, head_of(creds[i].headers)), creds[i].two);
    }
    strcpy(conf->token_header, "Authorization");
}

static const struct {
    const char *peer;
    const char *headers;
    const char *ip;
} ips[] = {
    /* an untrusted peer's X-Forwarded-For never decides */
    {"192.0.2.1", "X-Forwarded-For: 9.9.9.9\r\n", "192.0.2.1"},
    {"127.0.0.1", "", "127.0.0.1"},
    {"127.0.0.1", "X-Forwarded-For: 1.1.1.1\r\n", "1.1.1.1"},
    /* every line, in order: the last line's last element is the nearest hop */
    {"127.0.0.1", "X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n", "2.2.2.2"},
    {"127.0.0.1", "X-Forwarded-For: 1.1.1.1, 2.2.2.2\r\nX-Forwarded-For: 10.1.1.1\r\n",
     "2.2.2.2"},
    {"127.0.0.1", "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n",
     "6.6.6.6"},
    {"127.0.0.1", "X-Forwarded-For: 1.1.1.1,,  2.2.2.2 \r\n", "2.2.2.2"},
    {"127.0.0.1", "X-Forwarded-For: 2001:db8::1\r\n", "2001:db8::1"},
    /* junk stops the walk at the last address believed */
    {"127.0.0.1", "X-Forwarded-For: 1.1.1.1, junk\r\n", "127.0.0.1"},
    {"127.0.0.1", "X-Forwarded-For: junk, 10.0.0.3\r\n", "10.0.0.3"},
    {"127.0.0.1", "X-Forwarded-For: 10.0.0.1\r\n", "10.0.0.1"},
    /* ip:port, as some load balancers write it */
    {"127.0.0.1", "X-Forwarded-For: 1.1.1.1:5678\r\n", "1.1.1.1"},
    {"127.0.0.1", "X-Forwarded-For: [2001:db8::7]:443\r\n", "2001:db8::7"},
    {"127.0.0.1", "X-Forwarded-For: [2001:db8::7]\r\n", "2001:db8::7"},
    {"127.0.0.1", "X-Forwarded-For: 1.1.1.1:5678:9\r\n", "127.0.0.1"},
};

static void test_client_ip(void)
{
    for (size_t i = 0; i < sizeof ips / sizeof ips[0]; i++) {
        struct sockaddr_in sin;
        memset(&sin, 0, sizeof sin);
        sin.sin_family = AF_INET;
        CU_ASSERT_EQUAL_FATAL(inet_pton(AF_INET, ips[i].peer, &sin.sin_addr), 1);
        char out[CALLER_IP_MAX];
        caller_client_ip(conf, (const struct sockaddr *)&sin, ips[i].peer,
                         head_of(ips[i].headers), out, sizeof out);
        if (strcmp(out, ips[i].ip) != 0) {
            char msg[256];
            snprintf(msg, sizeof msg, "row %zu: got %s, want %s", i, out, ips[i].ip);
            CU_FAIL(msg);
        }
    }
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("caller", suite_init, suite_clean);
    if (!s)
        return;
    CU_add_test(s, "Connection and token-header rules", test_check_head);
    CU_add_test(s, "the credential auth checks, and two of them", test_credential);
    CU_add_test(s, "bearer token", test_token);
    CU_add_test(s, "method override", test_method_override);
    CU_add_test(s, "client address behind trusted proxies", test_client_ip);
}
