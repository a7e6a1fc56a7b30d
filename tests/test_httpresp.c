/*
 * test_httpresp: upstream response heads: which ones are refused (so the
 * proxy answers 502), and for the rest how the body is framed (RFC 9112
 * 6.3: HEAD, 1xx, 204 and 304 carry none; chunked; Content-Length; else
 * until close) and whether the upstream connection may be reused.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "httpresp.h"

void test_register(void);

struct resp_case {
    const char *name;
    const char *head;
    bool head_request;
    int rc;                 /* 0 or -1 */
    int status;
    bool keepalive;
    bool chunked;
    bool has_length;
    unsigned long long content_length;
    bool has_body;
    bool until_eof;
};

#define BAD(n, h) {.name = n, .head = h, .rc = -1}

static const struct resp_case cases[] = {
    {"200 with length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, 0, 200, true, false,
     true, 5, true, false},
    {"200 chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, 0, 200, true,
     true, false, 0, true, false},
    {"200 until close", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", false, 0, 200, false,
     false, false, 0, true, true},
    {"200 length 0", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, 0, 200, true, false,
     true, 0, false, false},
    {"HEAD with length", "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", true, 0, 200, true,
     false, true, 1234, false, false},
    {"HEAD chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, 0, 200, true,
     true, false, 0, false, false},
    /* keep-alive is judged after the HEAD skip-body decision */
    {"HEAD no framing", "HTTP/1.1 404 Not Found\r\n\r\n", true, 0, 404, true, false, false, 0,
     false, false},
    {"204", "HTTP/1.1 204 No Content\r\n\r\n", false, 0, 204, true, false, false, 0, false, false},
    {"304", "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", false, 0, 304, true, false, false,
     0, false, false},
    /* 1xx, 204 and 304 never have a body (RFC 9112 6.3), even with
     * Content-Length (a 304 carries the representation's) or chunked:
     * http_parser alone would read one. */
    {"304 with Content-Length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n", false,
     0, 304, true, false, true, 1234, false, false},
    {"204 with Content-Length", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false, 0,
     204, true, false, true, 5, false, false},
    {"304 chunked", "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false, 0, 304,
     true, true, false, 0, false, false},
    {"1xx chunked", "HTTP/1.1 199 Odd\r\nTransfer-Encoding: chunked\r\n\r\n", false, 0, 199, true,
     true, false, 0, false, false},
    {"100 Continue", "HTTP/1.1 100 Continue\r\n\r\n", false, 0, 100, true, false, false, 0, false,
     false},
    {"404 json", "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n",
     false, 0, 404, true, false, true, 27, true, false},
    {"503 no reason phrase", "HTTP/1.1 503 \r\nContent-Length: 0\r\n\r\n", false, 0, 503, true,
     false, true, 0, false, false},
    {"bare LF", "HTTP/1.1 502 Bad Gateway\nContent-Length: 3\n\n", false, 0, 502, true, false, true,
     3, true, false},

    /* keep-alive rules */
    {"1.1 Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
     false, 0, 200, false, false, true, 0, false, false},
    {"1.0 default close", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, 0, 200, false,
     false, true, 0, false, false},
    {"1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n",
     false, 0, 200, true, false, true, 2, true, false},
    {"1.0 until close", "HTTP/1.0 200 OK\r\n\r\n", false, 0, 200, false, false, false, 0, true,
     true},
    {"1.0 keep-alive but no length", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", false, 0,
     200, false, false, false, 0, true, true},

    /* refused */
    /* Debian's non-strict http_parser checks only the 'H' of "HTTP/" */
    BAD("garbage", "HTPP/1.1 200 OK\r\n\r\n"),
    BAD("garbage protocol", "Hxyz/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    BAD("not H", "XTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    BAD("TLS bytes", "\x16\x03\x01\x00\xa5\x01\x00\x00\r\n\r\n"),
    BAD("no status code", "HTTP/1.1 OK\r\n\r\n"),
    BAD("two-digit status", "HTTP/1.1 99 Odd\r\nContent-Length: 0\r\n\r\n"),
    BAD("HTTP/2.0", "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
    BAD("HTTP/0.9", "HTTP/0.9 200 OK\r\nContent-Length: 0\r\n\r\n"),
    BAD("CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
    BAD("TE and CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
    BAD("CL and TE gzip", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: gzip\r\n\r\n"),
    /* TE is dropped as hop-by-hop: any coding but one "chunked" would reach
     * the client undecoded (RFC 9112 6.3 would read gzip-coded bytes until close) */
    BAD("TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
    BAD("TE chunked, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
    BAD("TE gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
    BAD("TE chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
    BAD("two differing CL", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
    BAD("CL -1", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
    BAD("CL overflow", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"),
    BAD("obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
    BAD("space before colon", "HTTP/1.1 200 OK\r\nX-A : a\r\nContent-Length: 0\r\n\r\n"),
    BAD("control char", "HTTP/1.1 200 OK\r\nX-A: a\x01" "b\r\nContent-Length: 0\r\n\r\n"),
    BAD("truncated head", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"),
};

static void test_table(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct resp_case *c = &cases[i];
        size_t len = strlen(c->head);
        char *buf = malloc(len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
        memcpy(buf, c->head, len);
        struct httpresp r;
        const char *why = NULL;
        int rc = httpresp_parse(&r, buf, len, c->head_request, &why);
        if (rc != c->rc)
            fprintf(stderr, "\n  case \"%s\": rc %d (%s), want %d\n", c->name, rc,
                    why ? why : "-", c->rc);
        CU_ASSERT_EQUAL(rc, c->rc);
        if (rc != 0) {
            CU_ASSERT_PTR_NOT_NULL(why);
        } else if (c->rc == 0) {
            bool ok = r.status == c->status && r.keepalive == c->keepalive &&
                      r.chunked == c->chunked && r.has_length == c->has_length &&
                      r.content_length == c->content_length && r.has_body == c->has_body &&
                      r.until_eof == c->until_eof;
            if (!ok)
                fprintf(stderr,
                        "\n  case \"%s\": status %d keepalive %d chunked %d has_length %d "
                        "content_length %llu has_body %d until_eof %d\n",
                        c->name, r.status, r.keepalive, r.chunked, r.has_length,
                        (unsigned long long)r.content_length, r.has_body, r.until_eof);
            CU_ASSERT_TRUE(ok);
        }
        free(buf);
    }
}

static char *many_headers(size_t n, size_t *len)
{
    size_t cap = 64 + n * 32;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t o = (size_t)snprintf(s, cap, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n");
    for (size_t i = 1; i < n; i++)
        o += (size_t)snprintf(s + o, cap - o, "X-H%zu: v\r\n", i);
    o += (size_t)snprintf(s + o, cap - o, "\r\n");
    *len = o;
    return s;
}

static void test_header_count(void)
{
    size_t len = 0;
    struct httpresp r;
    const char *why = NULL;
    char *s = many_headers(HTTPHEAD_MAX_HEADERS, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(httpresp_parse(&r, s, len, false, &why), 0);
    CU_ASSERT_EQUAL(r.head.n, HTTPHEAD_MAX_HEADERS);
    free(s);
    s = many_headers(HTTPHEAD_MAX_HEADERS + 1, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(httpresp_parse(&r, s, len, false, &why), -1);
    CU_ASSERT_PTR_NOT_NULL(why);
    free(s);
    s = many_headers(5000, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(httpresp_parse(&r, s, len, false, &why), -1);
    free(s);
}

static void test_fields_and_hop(void)
{
    static const char h[] = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\n"
                            "Connection: X-Internal\r\nX-Internal: secret\r\nKeep-Alive: timeout=5\r\n"
                            "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n";
    struct httpresp r;
    const char *why = NULL;
    CU_ASSERT_EQUAL_FATAL(httpresp_parse(&r, h, sizeof h - 1, false, &why), 0);
    CU_ASSERT_EQUAL(r.status, 429);
    CU_ASSERT_EQUAL(r.head.n, 6);
    const struct httphead_field *f = httphead_get(&r.head, "retry-after", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_NSTRING_EQUAL(f->value, "30", 2);
    CU_ASSERT_FALSE(f->hop);
    CU_ASSERT_TRUE(httphead_get(&r.head, "X-Internal", NULL)->hop);
    CU_ASSERT_TRUE(httphead_get(&r.head, "Keep-Alive", NULL)->hop);
    CU_ASSERT_TRUE(httphead_get(&r.head, "Connection", NULL)->hop);
    CU_ASSERT_FALSE(httphead_get(&r.head, "Content-Type", NULL)->hop);
}

/* The framing decided here drives the body decoder the proxy starts. */
static void test_framing_to_body(void)
{
    static const char h[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n";
    size_t pos = 0;
    unsigned st = 0;
    size_t end = httphead_scan(h, sizeof h - 1, &pos, &st);
    CU_ASSERT_EQUAL_FATAL(end, 47);
    struct httpresp r;
    const char *why = NULL;
    CU_ASSERT_EQUAL_FATAL(httpresp_parse(&r, h, end, false, &why), 0);
    CU_ASSERT_TRUE_FATAL(r.chunked && r.has_body);
    struct httpbody b;
    httpbody_init(&b, HTTPBODY_CHUNKED, 0, 0, NULL, NULL);
    size_t used = httpbody_feed(&b, h + end, sizeof h - 1 - end);
    CU_ASSERT_EQUAL(used, 13);
    CU_ASSERT_TRUE(b.done);
    CU_ASSERT_EQUAL(b.total, 3);
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("httpresp", NULL, NULL);
    if (!s)
        return;
    CU_add_test(s, "table of heads", test_table);
    CU_add_test(s, "header count", test_header_count);
    CU_add_test(s, "fields and hop-by-hop", test_fields_and_hop);
    CU_add_test(s, "framing to body", test_framing_to_body);
}
