/*
 * test_cors: which origins a conf_cors allows, what is a preflight, and the
 * literal CORS lines of preflight answers and actual responses. Each row is
 * a conf (origins joined by '|'), a request and the verdict and bytes it
 * must give: add a case with one line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "cors.h"
#include "httpreq.h"

void test_register(void);

static struct httpreq req;

/* C with the '|'-separated ORIGINS and the rest at conf's defaults. */
static void conf_with(struct conf_cors *c, const char *origins)
{
    memset(c, 0, sizeof *c);
    c->set = true;
    c->max_age_s = 600;
    const char *p = origins;
    while (p && *p && c->n_origins < CONF_MAX_ORIGINS) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        snprintf(c->origins[c->n_origins++], CONF_ORIGIN_MAX, "%.*s", (int)n, p);
        p = bar ? bar + 1 : NULL;
    }
}

static const struct {
    const char *conf;       /* origins, '|' between them */
    const char *origin;     /* the request's Origin */
    bool allowed;
} origins[] = {
    {"https://a.com", "https://a.com", true},
    {"https://a.com|https://b.com", "https://b.com", true},
    {"https://a.com", "https://b.com", false},
    /* letter case of scheme and host does not matter */
    {"https://a.com", "HTTPS://A.COM", true},
    {"https://a.com", "https://A.com", true},
    /* an explicit default port is no port, on either side */
    {"https://a.com", "https://a.com:443", true},
    {"https://a.com:443", "https://a.com", true},
    {"http://a.com", "http://a.com:80", true},
    {"wss://a.com", "wss://a.com:443", true},
    /* other ports must be equal */
    {"https://a.com", "https://a.com:8443", false},
    {"https://a.com", "https://a.com:80", false},
    {"https://a.com:8443", "https://a.com:8443", true},
    {"https://a.com:8443", "https://a.com", false},
    {"https://a.com:8443", "https://a.com:8444", false},
    {"http://localhost:3000", "http://localhost:3000", true},
    /* scheme downgrade and other schemes */
    {"https://a.com", "http://a.com", false},
    {"http://a.com", "https://a.com", false},
    {"https://a.com", "wss://a.com", false},
    {"https://a.com", "javascript://a.com", false},
    {"https://a.com", "shttp://a.com", false},
    {"https://a.com", "httpz://a.com", false},
    {"chrome-extension://abcdefghij", "chrome-extension://abcdefghij", true},
    /* suffix, prefix and look-alike tricks */
    {"https://a.com", "https://a.com.evil.net", false},
    {"https://a.com", "https://evil-a.com", false},
    {"https://a.com", "https://x.a.com", false},
    {"https://a.com", "https://a.co", false},
    {"https://a.com", "https://a.comm", false},
    {"https://a.com", "https://a.com%2eevil.net", false},
    {"https://a.com", "https://a.com\\.evil.net", false},
    /* trailing dot: another origin to the browser */
    {"https://a.com", "https://a.com.", false},
    {"https://a.com", "https://a.com.:443", false},
    /* not an origin: paths, queries, userinfo, spaces, lists, controls */
    {"https://a.com", "https://a.com/", false},
    {"https://a.com", "https://a.com/x", false},
    {"https://a.com", "https://a.com?x=1", false},
    {"https://a.com", "https://a.com#x", false},
    {"https://a.com", "https://user@a.com", false},
    {"https://a.com", "https://a.com@evil.net", false},
    {"https://a.com", "https://user:pw@a.com", false},
    {"https://a.com", " https://a.com", false},
    {"https://a.com", "https://a.com ", false},
    {"https://a.com", "https://a.com https://b.com", false},
    {"https://a.com", "https://a.com,https://b.com", false},
    {"https://a.com", "https://a.com\r\nSet-Cookie: x=1", false},
    {"https://a.com", "https://a.com\t", false},
    {"https://a.com", "https://a .com", false},
    {"https://a.com", "https://a..com", false},
    {"https://a.com", "https://.a.com", false},
    {"https://a.com", "a.com", false},
    {"https://a.com", "//a.com", false},
    {"https://a.com", "https:/a.com", false},
    {"https://a.com", "https://", false},
    {"https://a.com", "://a.com", false},
    {"https://a.com", "1https://a.com", false},
    {"https://a.com", "", false},
    /* bad ports */
    {"https://a.com", "https://a.com:", false},
    {"https://a.com", "https://a.com:0443", false},
    {"https://a.com:8443", "https://a.com:08443", false},
    {"https://a.com", "https://a.com:0", false},
    {"https://a.com", "https://a.com:65536", false},
    {"https://a.com", "https://a.com:99999999443", false},
    {"https://a.com", "https://a.com:443:443", false},
    {"https://a.com", "https://a.com:44a", false},
    {"https://a.com", "https://a.com:-443", false},
    /* "null" only when listed, and only as browsers spell it */
    {"https://a.com", "null", false},
    {"*", "null", false},
    {"null", "null", true},
    {"null", "NULL", false},
    {"null", "null ", false},
    {"null|https://a.com", "https://a.com", true},
    /* "*": any origin, as long as it is one */
    {"*", "https://anything.example.net", true},
    {"*", "http://localhost:8080", true},
    {"*", "http://[::1]:8080", true},
    {"*", "https://a.com/", false},
    {"*", "https://a.com\r\nX: y", false},
    {"*", "*", false},
    /* "*" still judges the text: only an origin is answered */
    {"*", "https://a.com.", false},
    {"*", "https://", false},
    {"*", "https://:443", false},
    {"*", "https://a.com:65536", false},
    {"*", "https://a.com:99999", false},
    {"*", "https://a.com:0443", false},
    {"*", "https://user@a.com", false},
    {"*", "https://a.com%00", false},
    {"*", "https://xn--bcher-kva.example", true},
    {"*", "https:xxa.com", false},
    {"*", "https://*.example.com", false},
    {"*", "http://[]", false},
    {"*", "https://b\303\274cher.example", false},
    {"https://a.com|*", "https://b.com", true},
    /* wildcard: one or more labels before the suffix, same scheme and port */
    {"https://*.example.com", "https://x.example.com", true},
    {"https://*.example.com", "https://x.y.example.com", true},
    {"https://*.example.com", "https://X.Example.COM", true},
    {"https://*.example.com", "https://x.example.com:443", true},
    {"https://*.example.com", "https://example.com", false},
    {"https://*.example.com", "https://.example.com", false},
    {"https://*.example.com", "https://x..example.com", false},
    {"https://*.example.com", "http://x.example.com", false},
    {"https://*.example.com", "https://x.example.com.evil.net", false},
    {"https://*.example.com", "https://evilexample.com", false},
    {"https://*.example.com", "https://x.evilexample.com", false},
    {"https://*.example.com", "https://x.example.co", false},
    {"https://*.example.com", "https://x.example.com.", false},
    {"https://*.example.com", "https://x.example.com:8443", false},
    {"https://*.example.com", "https://*.example.com", false},
    {"https://*.example.com", "https://x.example.com/", false},
    {"https://*.example.com", "https://evil.net/.example.com", false},
    {"https://*.example.com", "https://evil.net?.example.com", false},
    {"https://*.example.com", "https://evil.net#.example.com", false},
    {"https://*.example.com", "https://x@y.example.com", false},
    {"https://*.example.com:8443", "https://x.example.com:8443", true},
    {"https://*.example.com:8443", "https://x.example.com", false},
    {"https://*", "https://a.com", false},      /* not a wildcard conf can write */
    {"https://*.*.com", "https://a.b.com", false},
    /* IDN: browsers send punycode; raw UTF-8 is not an origin */
    {"https://xn--bcher-kva.example", "https://xn--bcher-kva.example", true},
    {"https://xn--bcher-kva.example", "https://b\303\274cher.example", false},
    {"https://*.example.com", "https://xn--80ak6aa92e.example.com", true},
    {"https://*.example.com", "https://b\303\274cher.example.com", false},
    {"https://a.com", "https://\xd0\xb0.com", false},   /* Cyrillic a */
    /* IP literals; a wildcard never matches one */
    {"http://127.0.0.1:8080", "http://127.0.0.1:8080", true},
    {"http://127.0.0.1:8080", "http://127.0.0.2:8080", false},
    {"https://*.0.0.1", "https://127.0.0.1", false},
    {"https://*.0.1", "https://127.0.0.0x1", false},
    {"https://*.1", "https://a.1", false},
    {"https://*.0x1", "https://a.0x1", false},
    {"https://*.0X1", "https://a.0X1", false},
    {"http://[::1]:3000", "http://[::1]:3000", true},
    {"http://[::1]:3000", "http://[::2]:3000", false},
    {"http://[::1]:3000", "http://[::1]", false},
    {"http://[::1]", "http://[::1", false},
    {"http://[::1]", "http://[]", false},
    {"http://[::1]", "http://[::1%25eth0]", false},
};

static void test_origins(void)
{
    struct conf_cors c;
    for (size_t i = 0; i < sizeof origins / sizeof origins[0]; i++) {
        conf_with(&c, origins[i].conf);
        bool got = cors_origin_allowed(&c, origins[i].origin, strlen(origins[i].origin));
        if (got != origins[i].allowed) {
            fprintf(stderr, "\norigin row %zu: %s against %s: %d\n", i, origins[i].origin,
                    origins[i].conf, got);
            CU_FAIL("origin verdict");
        }
    }
    /* CORS not set: nothing is allowed */
    conf_with(&c, "*");
    c.set = false;
    CU_ASSERT_FALSE(cors_origin_allowed(&c, "https://a.com", 13));
    /* NUL inside the given length */
    conf_with(&c, "https://a.com");
    CU_ASSERT_FALSE(cors_origin_allowed(&c, "https://a.com\0x", 15));
    CU_ASSERT_FALSE(cors_origin_allowed(&c, NULL, 0));
}

/* "https://" and a host of labels of at most 63 bytes under example.com, LEN in all. */
static void long_origin(char *out, size_t len, size_t label_max)
{
    static const char tail[] = "example.com";
    size_t o = 0;
    memcpy(out, "https://", 8);
    o = 8;
    size_t body = len - o - (sizeof tail - 1);  /* labels and their dots */
    while (body > 0) {
        size_t l = body - 1 < label_max ? body - 1 : label_max;
        if (body - l - 1 == 1)
            l--;  /* never leave a lone dot */
        memset(out + o, 'a', l);
        o += l;
        out[o++] = '.';
        body -= l + 1;
    }
    memcpy(out + o, tail, sizeof tail);
}

static void test_long(void)
{
    struct conf_cors c;
    char o[1024];
    conf_with(&c, "https://*.example.com|*");
    c.credentials = true;  /* a wildcard entry matches: echo, not "*" */

    long_origin(o, CONF_ORIGIN_MAX - 1, 63);
    CU_ASSERT_EQUAL(strlen(o), CONF_ORIGIN_MAX - 1);
    CU_ASSERT_TRUE(cors_origin_allowed(&c, o, strlen(o)));
    char mem[4096];
    struct headbuf h;
    headbuf_mem(&h, mem, cors_headers_cap(&c, NULL, 0));
    CU_ASSERT_EQUAL(cors_response_headers(&c, o, strlen(o), NULL, 0, &h), CORS_ALLOWED);
    CU_ASSERT_FALSE(h.full);
    CU_ASSERT_PTR_NOT_NULL(memmem(mem, h.len, o, strlen(o)));

    /* CONF_ORIGIN_MAX bytes or more: no conf entry can be that long */
    long_origin(o, CONF_ORIGIN_MAX, 63);
    CU_ASSERT_FALSE(cors_origin_allowed(&c, o, strlen(o)));
    long_origin(o, 1000, 63);
    CU_ASSERT_FALSE(cors_origin_allowed(&c, o, strlen(o)));
    /* a label over 63 bytes */
    long_origin(o, 8 + 64 + 1 + 11, 64);
    CU_ASSERT_FALSE(cors_origin_allowed(&c, o, strlen(o)));
    long_origin(o, 8 + 63 + 1 + 11, 63);
    CU_ASSERT_TRUE(cors_origin_allowed(&c, o, strlen(o)));
}

#define M(x) (UINT64_C(1) << HTTP_##x)
#define PF(lines) "OPTIONS /a HTTP/1.1\r\nHost: h\r\n" lines "\r\n"
#define OA "Origin: https://a.com\r\n"
#define VP "Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers\r\n"
#define ACAO(o) "Access-Control-Allow-Origin: " o "\r\n"
#define ACAC "Access-Control-Allow-Credentials: true\r\n"
#define ACAM(m) "Access-Control-Allow-Methods: " m "\r\n"
#define DEFM ACAM("DELETE, GET, HEAD, POST, PUT, OPTIONS, PATCH")
#define ACAH(h) "Access-Control-Allow-Headers: " h "\r\n"
#define MAXAGE "Access-Control-Max-Age: 600\r\n"
#define OK_A(rest) VP ACAO("https://a.com") rest

static const struct {
    const char *conf;          /* origins; NULL: CORS not set */
    uint64_t methods;          /* cors_methods */
    const char *headers;       /* cors_headers; "": echo */
    bool credentials;
    uint64_t route_methods;    /* 0: all */
    const char *request;
    enum cors_verdict verdict;
    const char *lines;
} preflights[] = {
    /* the defaults: echo the origin, default methods, no headers asked */
    {"https://a.com", 0, "", false, 0, PF(OA "Access-Control-Request-Method: PUT\r\n"),
     CORS_ALLOWED, OK_A(DEFM MAXAGE)},
    {"https://a.com", 0, "", false, 0, PF(OA "Access-Control-Request-Method: DELETE\r\n"),
     CORS_ALLOWED, OK_A(DEFM MAXAGE)},
    /* requested headers echoed as tokens joined by ", " */
    {"https://a.com", 0, "", false, 0,
     PF(OA "Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: Content-Type, "
           "X-Request-Id\r\n"),
     CORS_ALLOWED, OK_A(DEFM ACAH("Content-Type, X-Request-Id") MAXAGE)},
    {"https://a.com", 0, "", false, 0,
     PF(OA "Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: "
           "content-type,x-foo\r\n"),
     CORS_ALLOWED, OK_A(DEFM ACAH("content-type, x-foo") MAXAGE)},
    {"https://a.com", 0, "", false, 0,
     PF(OA "Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers:  a ,, \tb ,\r\n"),
     CORS_ALLOWED, OK_A(DEFM ACAH("a, b") MAXAGE)},
    {"https://a.com", 0, "", false, 0,
     PF(OA "Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: a\r\n"
           "Access-Control-Request-Headers: b\r\n"),
     CORS_ALLOWED, OK_A(DEFM ACAH("a, b") MAXAGE)},
    {"https://a.com", 0, "", false, 0,
     PF(OA "Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers:\r\n"),
     CORS_ALLOWED, OK_A(DEFM MAXAGE)},
    /* ...and refused when any element is not a token */
    {"https://a.com", 0, "", false, 0,
     PF(OA "Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: x-a, b c\r\n"),
     CORS_HEADERS_DENIED, VP},
    {"https://a.com", 0, "", false, 0,
     PF(OA "Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: x(a)\r\n"),
     CORS_HEADERS_DENIED, VP},
    {"https://a.com", 0, "", false, 0,
     PF(OA "Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: a;b\r\n"),
     CORS_HEADERS_DENIED, VP},
    {"https://a.com", 0, "", false, 0,
     PF(OA "Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: a/b\r\n"),
     CORS_HEADERS_DENIED, VP},
    {"https://a.com", 0, "", false, 0,
     PF(OA "Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: a:b\r\n"),
     CORS_HEADERS_DENIED, VP},
    {"https://a.com", 0, "", false, 0,
     PF(OA "Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: a=b\r\n"),
     CORS_HEADERS_DENIED, VP},
    {"https://a.com", 0, "", false, 0,
     PF(OA "Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: \"x\"\r\n"),
     CORS_HEADERS_DENIED, VP},
    {"https://a.com", 0, "", false, 0,
     PF(OA "Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: x-\xc3\xa9\r\n"),
     CORS_HEADERS_DENIED, VP},
    {"https://a.com", 0, "", false, 0,
     PF(OA "Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: a, <script>\r\n"),
     CORS_HEADERS_DENIED, VP},
    /* configured headers are written as they are; the request's are not read */
    {"https://a.com", 0, "Content-Type, Authorization", false, 0,
     PF(OA "Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: x(bad)\r\n"),
     CORS_ALLOWED, OK_A(DEFM ACAH("Content-Type, Authorization") MAXAGE)},
    {"https://a.com", 0, "*", false, 0, PF(OA "Access-Control-Request-Method: PUT\r\n"),
     CORS_ALLOWED, OK_A(DEFM ACAH("*") MAXAGE)},
    /* configured methods */
    {"https://a.com", M(GET) | M(POST), "", false, 0,
     PF(OA "Access-Control-Request-Method: POST\r\n"), CORS_ALLOWED,
     OK_A(ACAM("GET, POST") MAXAGE)},
    {"https://a.com", M(GET) | M(POST), "", false, 0,
     PF(OA "Access-Control-Request-Method: PUT\r\n"), CORS_METHOD_DENIED, VP},
    {"https://a.com", M(GET) | M(POST), "", false, M(PUT),
     PF(OA "Access-Control-Request-Method: PUT\r\n"), CORS_METHOD_DENIED, VP},
    /* else the route's */
    {"https://a.com", 0, "", false, M(GET) | M(PUT),
     PF(OA "Access-Control-Request-Method: PUT\r\n"), CORS_ALLOWED,
     OK_A(ACAM("GET, PUT") MAXAGE)},
    {"https://a.com", 0, "", false, M(GET) | M(PUT),
     PF(OA "Access-Control-Request-Method: DELETE\r\n"), CORS_METHOD_DENIED, VP},
    {"https://a.com", 0, "", false, M(GET) | M(PUT),
     PF(OA "Access-Control-Request-Method: POST\r\n"), CORS_METHOD_DENIED, VP},
    /* else the default list: what is not in it is refused */
    {"https://a.com", 0, "", false, 0, PF(OA "Access-Control-Request-Method: PROPFIND\r\n"),
     CORS_METHOD_DENIED, VP},
    {"https://a.com", M(PROPFIND), "", false, 0,
     PF(OA "Access-Control-Request-Method: PROPFIND\r\n"), CORS_ALLOWED,
     OK_A(ACAM("PROPFIND") MAXAGE)},
    /* the requested method: exact, one, known */
    {"https://a.com", 0, "", false, 0, PF(OA "Access-Control-Request-Method: put\r\n"),
     CORS_METHOD_DENIED, VP},
    {"https://a.com", 0, "", false, 0, PF(OA "Access-Control-Request-Method:\r\n"),
     CORS_METHOD_DENIED, VP},
    {"https://a.com", 0, "", false, 0, PF(OA "Access-Control-Request-Method: PU T\r\n"),
     CORS_METHOD_DENIED, VP},
    {"https://a.com", 0, "", false, 0, PF(OA "Access-Control-Request-Method: FOO\r\n"),
     CORS_METHOD_DENIED, VP},
    {"https://a.com", 0, "", false, 0,
     PF(OA "Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Method: GET\r\n"),
     CORS_METHOD_DENIED, VP},
    {"https://a.com", 0, "", false, 0, PF(OA), CORS_METHOD_DENIED, VP},
    /* credentials: with an echoed origin only */
    {"https://a.com", 0, "", true, 0, PF(OA "Access-Control-Request-Method: PUT\r\n"),
     CORS_ALLOWED, OK_A(ACAC DEFM MAXAGE)},
    {"*", 0, "", false, 0, PF(OA "Access-Control-Request-Method: PUT\r\n"), CORS_ALLOWED,
     VP ACAO("*") DEFM MAXAGE},
    {"*", 0, "", true, 0, PF(OA "Access-Control-Request-Method: PUT\r\n"), CORS_ALLOWED,
     VP ACAO("*") DEFM MAXAGE},
    {"*|https://a.com", 0, "", true, 0, PF(OA "Access-Control-Request-Method: PUT\r\n"),
     CORS_ALLOWED, OK_A(ACAC DEFM MAXAGE)},
    {"*|https://a.com", 0, "", true, 0,
     PF("Origin: https://b.com\r\nAccess-Control-Request-Method: PUT\r\n"), CORS_ALLOWED,
     VP ACAO("*") DEFM MAXAGE},
    /* a wildcard entry echoes the origin as the browser sent it */
    {"https://*.example.com", 0, "", true, 0,
     PF("Origin: https://App.example.com:443\r\nAccess-Control-Request-Method: GET\r\n"),
     CORS_ALLOWED, VP ACAO("https://App.example.com:443") ACAC DEFM MAXAGE},
    {"null", 0, "", false, 0, PF("Origin: null\r\nAccess-Control-Request-Method: GET\r\n"),
     CORS_ALLOWED, VP ACAO("null") DEFM MAXAGE},
    /* refused origins: only Vary */
    {"https://a.com", 0, "", false, 0,
     PF("Origin: https://b.com\r\nAccess-Control-Request-Method: PUT\r\n"), CORS_ORIGIN_DENIED,
     VP},
    {"*", 0, "", false, 0, PF("Origin: null\r\nAccess-Control-Request-Method: PUT\r\n"),
     CORS_ORIGIN_DENIED, VP},
    {"https://a.com", 0, "", false, 0,
     PF("Origin: https://a.com/\r\nAccess-Control-Request-Method: PUT\r\n"), CORS_NO_ORIGIN, VP},
    {"*", 0, "", false, 0,
     PF("Origin: https://a.com<script>\r\nAccess-Control-Request-Method: PUT\r\n"),
     CORS_NO_ORIGIN, VP},
    {"https://a.com", 0, "", false, 0,
     PF(OA "Origin: https://a.com\r\nAccess-Control-Request-Method: PUT\r\n"), CORS_NO_ORIGIN,
     VP},
    {"https://a.com", 0, "", false, 0, PF("Access-Control-Request-Method: PUT\r\n"),
     CORS_NO_ORIGIN, VP},
    /* CORS not set: nothing */
    {NULL, 0, "", false, 0, PF(OA "Access-Control-Request-Method: PUT\r\n"), CORS_OFF, ""},
};

static bool same(const char *what, size_t row, const char *got, size_t len, const char *want)
{
    if (len == strlen(want) && memcmp(got, want, len) == 0)
        return true;
    fprintf(stderr, "\n%s row %zu: got\n%.*s\nwant\n%s\n", what, row, (int)len, got, want);
    return false;
}

static void test_preflight(void)
{
    struct conf_cors c;
    static char mem[8192];
    for (size_t i = 0; i < sizeof preflights / sizeof preflights[0]; i++) {
        const char *why = NULL;
        int st = httpreq_parse(&req, preflights[i].request, strlen(preflights[i].request), &why);
        CU_ASSERT_EQUAL_FATAL(st, 0);
        conf_with(&c, preflights[i].conf);
        c.set = preflights[i].conf != NULL;
        c.methods = preflights[i].methods;
        snprintf(c.headers, sizeof c.headers, "%s", preflights[i].headers);
        c.credentials = preflights[i].credentials;
        struct headbuf h;
        headbuf_mem(&h, mem, cors_headers_cap(&c, NULL, 0));
        enum cors_verdict v =
            cors_preflight_headers(&c, preflights[i].route_methods, &req.head, &h);
        CU_ASSERT_FALSE(h.full);
        if (v != preflights[i].verdict) {
            fprintf(stderr, "\npreflight row %zu: %s, want %s\n", i, cors_verdict_str(v),
                    cors_verdict_str(preflights[i].verdict));
            CU_FAIL("preflight verdict");
        }
        if (!same("preflight", i, mem, h.len, preflights[i].lines))
            CU_FAIL("preflight lines");
    }
}

/* Max-Age as configured, 0 included. */
static void test_max_age(void)
{
    static const struct {
        uint64_t s;
        const char *line;
    } ages[] = {
        {0, "Access-Control-Max-Age: 0\r\n"},
        {86400, "Access-Control-Max-Age: 86400\r\n"},
        {UINT64_MAX, "Access-Control-Max-Age: 18446744073709551615\r\n"},
    };
    static const char rq[] = PF(OA "Access-Control-Request-Method: GET\r\n");
    const char *why = NULL;
    CU_ASSERT_EQUAL_FATAL(httpreq_parse(&req, rq, strlen(rq), &why), 0);
    for (size_t i = 0; i < sizeof ages / sizeof ages[0]; i++) {
        struct conf_cors c;
        conf_with(&c, "https://a.com");
        c.max_age_s = ages[i].s;
        char mem[1024];
        struct headbuf h;
        headbuf_mem(&h, mem, cors_headers_cap(&c, NULL, 0));
        CU_ASSERT_EQUAL(cors_preflight_headers(&c, 0, &req.head, &h), CORS_ALLOWED);
        CU_ASSERT_FALSE(h.full);
        CU_ASSERT_PTR_NOT_NULL(memmem(mem, h.len, ages[i].line, strlen(ages[i].line)));
    }
}

/* The echo limit: CORS_ECHO_MAX bytes pass, one more refuses; the cap holds the worst case. */
static void test_echo_limit(void)
{
    static char val[CORS_ECHO_MAX + 2];
    static char origin[CONF_ORIGIN_MAX];
    long_origin(origin, CONF_ORIGIN_MAX - 1, 63);
    struct conf_cors c;
    conf_with(&c, "https://*.example.com");
    c.credentials = true;
    c.methods = ~UINT64_C(0);
    c.max_age_s = UINT64_MAX;
    for (size_t extra = 0; extra < 2; extra++) {
        memset(val, 'x', sizeof val);
        struct httphead head = {.n = 3};
        head.f[0] = (struct httphead_field){"Origin", origin, 6, (uint32_t)strlen(origin), false};
        head.f[1] = (struct httphead_field){"Access-Control-Request-Method", "GET", 29, 3, false};
        head.f[2] = (struct httphead_field){"Access-Control-Request-Headers", val, 30,
                                            (uint32_t)(CORS_ECHO_MAX + extra), false};
        static char mem[8192];
        struct headbuf h;
        size_t cap = cors_headers_cap(&c, NULL, 0);
        headbuf_mem(&h, mem, cap);
        enum cors_verdict v = cors_preflight_headers(&c, 0, &head, &h);
        CU_ASSERT_EQUAL(v, extra ? CORS_HEADERS_DENIED : CORS_ALLOWED);
        CU_ASSERT_FALSE(h.full);
        CU_ASSERT_TRUE(h.len <= cap);
        /* a buffer one byte short of what was written: the head is unusable */
        size_t len = h.len;
        headbuf_mem(&h, mem, len - 1);
        cors_preflight_headers(&c, 0, &head, &h);
        CU_ASSERT_TRUE(h.full);
    }
    /* a control character inside a configured value is never written */
    strcpy(c.headers, "a\r\nSet-Cookie: x");
    struct httphead head = {.n = 2};
    head.f[0] = (struct httphead_field){"Origin", origin, 6, (uint32_t)strlen(origin), false};
    head.f[1] = (struct httphead_field){"Access-Control-Request-Method", "GET", 29, 3, false};
    char mem[4096];
    struct headbuf h;
    headbuf_mem(&h, mem, cors_headers_cap(&c, NULL, 0));
    CU_ASSERT_EQUAL(cors_preflight_headers(&c, 0, &head, &h), CORS_ALLOWED);
    CU_ASSERT_PTR_NULL(memmem(mem, h.len, "Set-Cookie", 10));
    CU_ASSERT_PTR_NULL(memmem(mem, h.len, "Allow-Headers", 13));
}

static const struct {
    unsigned method;
    const char *request;
    bool preflight;
} kinds[] = {
    {HTTP_OPTIONS, PF(OA "Access-Control-Request-Method: PUT\r\n"), true},
    {HTTP_OPTIONS, PF("origin: x\r\naccess-control-request-method: x\r\n"), true},
    {HTTP_OPTIONS, PF(OA), false},
    {HTTP_OPTIONS, PF("Access-Control-Request-Method: PUT\r\n"), false},
    {HTTP_OPTIONS, PF(OA "Access-Control-Request-Headers: x\r\n"), false},
    {HTTP_GET, PF(OA "Access-Control-Request-Method: PUT\r\n"), false},
    {HTTP_POST, PF(OA "Access-Control-Request-Method: PUT\r\n"), false},
};

static void test_is_preflight(void)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const char *why = NULL;
        CU_ASSERT_EQUAL_FATAL(httpreq_parse(&req, kinds[i].request, strlen(kinds[i].request), &why),
                              0);
        if (cors_is_preflight((enum http_method)kinds[i].method, &req.head) != kinds[i].preflight) {
            fprintf(stderr, "\nkind row %zu\n", i);
            CU_FAIL("preflight or not");
        }
    }
}

/* What the lead passes: the correlation header and the limiter's. */
static const char *const lead[] = {"X-Correlation-Id", "X-RateLimit-Limit",
                                   "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"};
static const char *const junk[] = {"bad name", "", NULL, "X-Ok", "X-Bad\r\nSet-Cookie: x",
                                   "X:Colon", "X-Also-Ok"};
static const char *const none[] = {"bad name", ""};

#define V "Vary: Origin\r\n"
#define LEAD                                                                                       \
    "Access-Control-Expose-Headers: X-Correlation-Id, X-RateLimit-Limit, "                         \
    "X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After\r\n"

static const struct {
    const char *conf;             /* origins; NULL: CORS not set */
    bool credentials;
    const char *origin;           /* NULL: none */
    const char *const *expose;
    size_t n_expose;
    enum cors_verdict verdict;
    const char *lines;
} responses[] = {
    {NULL, false, "https://a.com", lead, 5, CORS_OFF, ""},
    {"https://a.com", false, "https://a.com", NULL, 0, CORS_ALLOWED, V ACAO("https://a.com")},
    {"https://a.com", false, "https://a.com", lead, 5, CORS_ALLOWED,
     V ACAO("https://a.com") LEAD},
    {"https://a.com", true, "https://a.com", lead, 5, CORS_ALLOWED,
     V ACAO("https://a.com") ACAC LEAD},
    {"https://a.com", true, "HTTPS://A.COM:443", lead, 1, CORS_ALLOWED,
     V ACAO("HTTPS://A.COM:443") ACAC "Access-Control-Expose-Headers: X-Correlation-Id\r\n"},
    /* names that are not tokens are left out, and with none left the line */
    {"https://a.com", false, "https://a.com", junk, 7, CORS_ALLOWED,
     V ACAO("https://a.com") "Access-Control-Expose-Headers: X-Ok, X-Also-Ok\r\n"},
    {"https://a.com", false, "https://a.com", none, 2, CORS_ALLOWED, V ACAO("https://a.com")},
    /* "*": the star, never credentials */
    {"*", false, "https://b.com", lead, 5, CORS_ALLOWED, V ACAO("*") LEAD},
    {"*", true, "https://b.com", NULL, 0, CORS_ALLOWED, V ACAO("*")},
    {"*|https://a.com", true, "https://a.com", NULL, 0, CORS_ALLOWED,
     V ACAO("https://a.com") ACAC},
    {"null", true, "null", NULL, 0, CORS_ALLOWED, V ACAO("null") ACAC},
    /* absent, refused or malformed: Vary alone, for caches */
    {"https://a.com", true, NULL, lead, 5, CORS_NO_ORIGIN, V},
    {"https://a.com", true, "https://b.com", lead, 5, CORS_ORIGIN_DENIED, V},
    {"https://a.com", true, "http://a.com", lead, 5, CORS_ORIGIN_DENIED, V},
    {"https://a.com", true, "https://a.com.evil.net", lead, 5, CORS_ORIGIN_DENIED, V},
    {"*", false, "null", lead, 5, CORS_ORIGIN_DENIED, V},
    {"*", false, "https://a.com\r\nSet-Cookie: x=1", lead, 5, CORS_NO_ORIGIN, V},
    {"*", false, "https://a.com/x", lead, 5, CORS_NO_ORIGIN, V},
    {"https://*.example.com", true, "https://x.example.com", NULL, 0, CORS_ALLOWED,
     V ACAO("https://x.example.com") ACAC},
};

static void test_response(void)
{
    struct conf_cors c;
    static char mem[8192];
    for (size_t i = 0; i < sizeof responses / sizeof responses[0]; i++) {
        conf_with(&c, responses[i].conf);
        c.set = responses[i].conf != NULL;
        c.credentials = responses[i].credentials;
        const char *o = responses[i].origin;
        struct headbuf h;
        headbuf_mem(&h, mem, cors_headers_cap(&c, responses[i].expose, responses[i].n_expose));
        enum cors_verdict v = cors_response_headers(&c, o, o ? strlen(o) : 0, responses[i].expose,
                                                    responses[i].n_expose, &h);
        CU_ASSERT_FALSE(h.full);
        if (v != responses[i].verdict) {
            fprintf(stderr, "\nresponse row %zu: %s, want %s\n", i, cors_verdict_str(v),
                    cors_verdict_str(responses[i].verdict));
            CU_FAIL("response verdict");
        }
        if (!same("response", i, mem, h.len, responses[i].lines))
            CU_FAIL("response lines");
    }
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("cors", NULL, NULL);
    if (!s)
        return;
    CU_add_test(s, "origins allowed and refused", test_origins);
    CU_add_test(s, "origins at and over the length limit", test_long);
    CU_add_test(s, "what is a preflight", test_is_preflight);
    CU_add_test(s, "preflight answers", test_preflight);
    CU_add_test(s, "Max-Age values", test_max_age);
    CU_add_test(s, "echoed headers: the limit, the cap, conf values", test_echo_limit);
    CU_add_test(s, "actual responses", test_response);
}
