/*
 * test_httphead: the pieces requests and responses share: the head-end scan
 * (whole and byte by byte), the RFC 9110 tchar set, the header table the
 * parser callbacks fill (obs-fold, control characters, OWS, the count
 * limit), comma lists, hop-by-hop marking, and the body decoder: chunked at
 * every split point, extensions, trailers, bad and oversized sizes, limits,
 * Content-Length and EOF-delimited bodies.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "httphead.h"

void test_register(void);

/* ---- head end ------------------------------------------------------------ */

static size_t scan_whole(const char *s, size_t len)
{
    size_t pos = 0;
    unsigned st = 0;
    return httphead_scan(s, len, &pos, &st);
}

static size_t scan_bytewise(const char *s, size_t len)
{
    size_t pos = 0;
    unsigned st = 0;
    for (size_t have = 1; have <= len; have++) {
        size_t end = httphead_scan(s, have, &pos, &st);
        if (end)
            return end;
    }
    return 0;
}

static void test_scan(void)
{
    static const struct {
        const char *s;
        size_t end;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27},
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody", 27},
        {"GET / HTTP/1.1\nHost: a\n\n", 24},
        {"GET / HTTP/1.1\nHost: a\n\r\n", 25},        /* LF CR LF */
        {"GET / HTTP/1.1\r\nHost: a\r\n\n", 26},      /* CRLF LF */
        {"GET / HTTP/1.1\r\nHost: a\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: a\r\n\r", 0},
        {"GET / HTTP/1.1\r\nHost: a\r\r\n", 0},       /* CR CR LF is no blank line */
        {"GET / HTTP/1.1\r\nHost: a\r\n \r\n", 0},    /* a line holding a space */
        {"\r\n\r\n", 4},
        {"\n\n", 2},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i].s);
        CU_ASSERT_EQUAL(scan_whole(cases[i].s, len), cases[i].end);
        CU_ASSERT_EQUAL(scan_bytewise(cases[i].s, len), cases[i].end);
    }
}

static void test_scan_resume(void)
{
    /* Progress carries over: a later call does not rescan, and the state
     * remembers a line end seen in the previous piece. */
    static const char s[] = "HTTP/1.1 200 OK\r\nA: b\r\n\r\n";
    size_t pos = 0;
    unsigned st = 0;
    CU_ASSERT_EQUAL(httphead_scan(s, 23, &pos, &st), 0);  /* up to "b\r\n" */
    CU_ASSERT_EQUAL(pos, 23);
    CU_ASSERT_EQUAL(httphead_scan(s, 24, &pos, &st), 0);  /* \r */
    CU_ASSERT_EQUAL(httphead_scan(s, 25, &pos, &st), 25);
    CU_ASSERT_EQUAL(pos, 25);
    /* NUL bytes are just bytes to the scan */
    static const char nul[] = "A\0B\r\n\r\n";
    CU_ASSERT_EQUAL(scan_whole(nul, sizeof nul - 1), 7);
}

/* ---- tchar ---------------------------------------------------------------- */

static void test_tchar(void)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    for (unsigned c = 0; c < 256; c++) {
        bool want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || (c != 0 && strchr(extra, (int)c) != NULL);
        if (httphead_is_tchar((unsigned char)c) != want)
            fprintf(stderr, "\n  tchar 0x%02x: got %d\n", c, !want);
        CU_ASSERT_EQUAL(httphead_is_tchar((unsigned char)c), want);
    }
    /* the separators RFC 9110 names */
    const char *sep = "\"(),/:;<=>?@[\\]{} \t";
    for (const char *p = sep; *p; p++)
        CU_ASSERT_FALSE(httphead_is_tchar((unsigned char)*p));
}

/* ---- header table ---------------------------------------------------------- */

/* Feed a field as the parser would: name then value, both in one buffer. */
static int add(struct httphead *h, const char *buf, size_t name_len, size_t value_off,
               size_t value_len)
{
    int rc = httphead_on_field(h, buf, name_len);
    if (rc)
        return rc;
    return httphead_on_value(h, buf + value_off, value_len);
}

static void test_fields(void)
{
    struct httphead h;
    memset(&h, 0, sizeof h);
    static const char a[] = "Content-Type: text/plain \t";
    CU_ASSERT_EQUAL(add(&h, a, 12, 14, sizeof a - 1 - 14), 0);
    CU_ASSERT_EQUAL(h.n, 1);
    CU_ASSERT_EQUAL(h.f[0].value_len, 10);            /* trailing OWS dropped */
    CU_ASSERT_NSTRING_EQUAL(h.f[0].value, "text/plain", 10);
    CU_ASSERT_FALSE(h.bad);

    /* a name split across two callbacks (adjacent in memory) is one name */
    static const char split[] = "X-Long-Name: v";
    CU_ASSERT_EQUAL(httphead_on_field(&h, split, 4), 0);
    CU_ASSERT_EQUAL(httphead_on_field(&h, split + 4, 7), 0);
    CU_ASSERT_EQUAL(httphead_on_value(&h, split + 13, 1), 0);
    CU_ASSERT_EQUAL(h.n, 2);
    CU_ASSERT_EQUAL(h.f[1].name_len, 11);
    CU_ASSERT_TRUE(httphead_name_is(&h.f[1], "x-long-name"));

    /* a second value callback in a row is an obs-fold continuation */
    static const char fold[] = "more";
    CU_ASSERT_NOT_EQUAL(httphead_on_value(&h, fold, 4), 0);
    CU_ASSERT_TRUE(h.bad);
    CU_ASSERT_PTR_NOT_NULL(h.why);
}

static void test_field_chars(void)
{
    static const char *bad_values[] = {"a\x01z", "a\x1fz", "a\x7fz", "a\rz", "a\nz"};
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        struct httphead h;
        memset(&h, 0, sizeof h);
        CU_ASSERT_EQUAL(httphead_on_field(&h, "X", 1), 0);
        CU_ASSERT_NOT_EQUAL(httphead_on_value(&h, bad_values[i], 3), 0);
        CU_ASSERT_TRUE(h.bad);
    }
    /* NUL inside the value */
    struct httphead h;
    memset(&h, 0, sizeof h);
    CU_ASSERT_EQUAL(httphead_on_field(&h, "X", 1), 0);
    CU_ASSERT_NOT_EQUAL(httphead_on_value(&h, "a\0z", 3), 0);
    /* tab and obs-text are allowed */
    memset(&h, 0, sizeof h);
    CU_ASSERT_EQUAL(httphead_on_field(&h, "X", 1), 0);
    CU_ASSERT_EQUAL(httphead_on_value(&h, "a\tb\xc3\xa9\xff", 6), 0);
    CU_ASSERT_FALSE(h.bad);
    /* names: only tchar */
    static const char *bad_names[] = {"X(A", "X A", "X:A", "X\"A", ("X\x80" "A"), "X\0A"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        memset(&h, 0, sizeof h);
        CU_ASSERT_NOT_EQUAL(httphead_on_field(&h, bad_names[i], 3), 0);
        CU_ASSERT_TRUE(h.bad);
    }
    /* a value before any name */
    memset(&h, 0, sizeof h);
    CU_ASSERT_NOT_EQUAL(httphead_on_value(&h, "v", 1), 0);
}

static void test_field_limit(void)
{
    struct httphead *h = calloc(1, sizeof *h);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    static const char line[] = "X-A: v";
    for (size_t i = 0; i < HTTPHEAD_MAX_HEADERS; i++)
        CU_ASSERT_EQUAL(add(h, line, 3, 5, 1), 0);
    CU_ASSERT_EQUAL(h->n, HTTPHEAD_MAX_HEADERS);
    CU_ASSERT_FALSE(h->bad);
    CU_ASSERT_NOT_EQUAL(httphead_on_field(h, line, 3), 0);
    CU_ASSERT_TRUE(h->bad);
    CU_ASSERT_EQUAL(h->n, HTTPHEAD_MAX_HEADERS);
    free(h);
}

static void test_get(void)
{
    struct httphead h;
    memset(&h, 0, sizeof h);
    static const char buf[] = "Host: aSet-Cookie: 1set-cookie: 2X: y";
    CU_ASSERT_EQUAL(add(&h, buf, 4, 6, 1), 0);
    CU_ASSERT_EQUAL(add(&h, buf + 7, 10, 12, 1), 0);
    CU_ASSERT_EQUAL(add(&h, buf + 20, 10, 12, 1), 0);
    CU_ASSERT_EQUAL(add(&h, buf + 33, 1, 3, 1), 0);
    size_t count = 99;
    const struct httphead_field *f = httphead_get(&h, "SET-COOKIE", &count);
    CU_ASSERT_PTR_EQUAL(f, &h.f[1]);
    CU_ASSERT_EQUAL(count, 2);
    f = httphead_get(&h, "host", &count);
    CU_ASSERT_PTR_EQUAL(f, &h.f[0]);
    CU_ASSERT_EQUAL(count, 1);
    CU_ASSERT_PTR_NULL(httphead_get(&h, "Hos", &count));
    CU_ASSERT_EQUAL(count, 0);
    CU_ASSERT_PTR_NULL(httphead_get(&h, "Hostx", NULL));
    CU_ASSERT_PTR_NOT_NULL(httphead_get(&h, "x", NULL));
    CU_ASSERT_TRUE(httphead_name_is(&h.f[0], "HOST"));
    CU_ASSERT_FALSE(httphead_name_is(&h.f[0], "Hos"));
    CU_ASSERT_FALSE(httphead_name_is(&h.f[0], "Hosts"));
}

static void test_list_has(void)
{
#define LH(v, t) httphead_list_has(v, strlen(v), t)
    CU_ASSERT_TRUE(LH("close", "close"));
    CU_ASSERT_TRUE(LH("Close", "close"));
    CU_ASSERT_TRUE(LH("keep-alive, Upgrade", "upgrade"));
    CU_ASSERT_TRUE(LH(" , ,keep-alive ,\tclose\t", "close"));
    CU_ASSERT_TRUE(LH("gzip,chunked", "chunked"));
    CU_ASSERT_FALSE(LH("closed", "close"));
    CU_ASSERT_FALSE(LH("xclose", "close"));
    CU_ASSERT_FALSE(LH("clo se", "close"));
    CU_ASSERT_FALSE(LH("", "close"));
    CU_ASSERT_FALSE(LH(",,,", "close"));
    /* the length bounds the value: a token past it is not seen */
    CU_ASSERT_FALSE(httphead_list_has("a, close", 3, "close"));
#undef LH
}

static void test_mark_hop(void)
{
    struct httphead h;
    memset(&h, 0, sizeof h);
    static const char *lines[][2] = {
        {"Connection", "keep-alive, X-Private , x-other"},
        {"Keep-Alive", "timeout=5"},
        {"TE", "trailers"},
        {"Trailer", "X-T"},
        {"transfer-encoding", "chunked"},
        {"Upgrade", "websocket"},
        {"Proxy-Authorization", "Basic x"},
        {"Proxy-Connection", "keep-alive"},
        {"X-Private", "1"},
        {"X-Other", "2"},
        {"X-Public", "3"},
        {"Keep-Alive-Not", "4"},
        {"Content-Type", "text/plain"},
        {"Proxy", "5"},          /* "Proxy" alone is no Proxy-* header */
    };
    size_t n = sizeof lines / sizeof lines[0];
    char buf[1024];
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(lines[i][0]), vl = strlen(lines[i][1]);
        memcpy(buf + o, lines[i][0], nl);
        memcpy(buf + o + nl, lines[i][1], vl);
        CU_ASSERT_EQUAL(add(&h, buf + o, nl, nl, vl), 0);
        o += nl + vl;
    }
    httphead_mark_hop(&h);
    bool want[] = {true, true, true, true, true, true, true, true,
                   true, true, false, false, false, false};
    for (size_t i = 0; i < n; i++) {
        if (h.f[i].hop != want[i])
            fprintf(stderr, "\n  %s: hop %d\n", lines[i][0], h.f[i].hop);
        CU_ASSERT_EQUAL(h.f[i].hop, want[i]);
    }
}

/* ---- body decoder ------------------------------------------------------- */

struct sink {
    char buf[4096];
    size_t len;
    int calls;
    int fail_after;       /* >0: the Nth call aborts */
};

static int sink_data(void *arg, const char *at, size_t len)
{
    struct sink *s = arg;
    s->calls++;
    if (s->fail_after && s->calls >= s->fail_after)
        return 1;
    if (s->len + len <= sizeof s->buf) {
        memcpy(s->buf + s->len, at, len);
        s->len += len;
    }
    return 0;
}

/*
 * Decode STREAM handing it over in pieces of STEP bytes (0: all at once).
 * Returns the consumed count when the body ended, (size_t)-1 on an error,
 * or (size_t)-2 when the stream ran out first.
 */
static size_t decode(enum httpbody_mode mode, uint64_t length, uint64_t max, const char *stream,
                     size_t len, size_t step, struct sink *s, struct httpbody *b)
{
    memset(s, 0, sizeof *s);
    httpbody_init(b, mode, length, max, sink_data, s);
    size_t off = 0;
    while (!b->done && off < len) {
        size_t n = step ? step : len;
        if (n > len - off)
            n = len - off;
        size_t used = httpbody_feed(b, stream + off, n);
        if (used == (size_t)-1)
            return used;
        if (used > n)
            return (size_t)-3;
        off += used;
        if (used < n && !b->done)
            return (size_t)-4;
    }
    return b->done ? off : (size_t)-2;
}

static void test_chunked_splits(void)
{
    static const char s[] = "5\r\nhello\r\n1;ext=\"a b\"\r\n \r\nA\r\n0123456789\r\n"
                            "0\r\nX-Trailer: t\r\n\r\nNEXT";
    size_t whole = sizeof s - 1 - 4;
    for (size_t step = 0; step <= sizeof s; step++) {
        struct sink k;
        struct httpbody b;
        size_t used = decode(HTTPBODY_CHUNKED, 0, 0, s, sizeof s - 1, step, &k, &b);
        CU_ASSERT_EQUAL(used, whole);
        CU_ASSERT_EQUAL(k.len, 16);
        CU_ASSERT_NSTRING_EQUAL(k.buf, "hello 0123456789", 16);
        CU_ASSERT_EQUAL(b.total, 16);
        CU_ASSERT_TRUE(b.done);
        /* done: more bytes are the next message's, left alone */
        CU_ASSERT_EQUAL(httpbody_feed(&b, "NEXT", 4), 0);
    }
    /* Every split into two pieces. */
    for (size_t cut = 1; cut < whole; cut++) {
        struct sink k;
        struct httpbody b;
        memset(&k, 0, sizeof k);
        httpbody_init(&b, HTTPBODY_CHUNKED, 0, 0, sink_data, &k);
        size_t u1 = httpbody_feed(&b, s, cut);
        CU_ASSERT_EQUAL(u1, cut);
        size_t u2 = httpbody_feed(&b, s + cut, sizeof s - 1 - cut);
        CU_ASSERT_EQUAL(u2, whole - cut);
        CU_ASSERT_TRUE(b.done);
        CU_ASSERT_EQUAL(k.len, 16);
    }
}

static void test_chunked_forms(void)
{
    static const struct {
        const char *s;
        bool ok;
        const char *body;
    } cases[] = {
        {"0\r\n\r\n", true, ""},
        {"00000\r\n\r\n", true, ""},
        {"a\r\n0123456789\r\n0\r\n\r\n", true, "0123456789"},
        {"A;x=1;y\r\n0123456789\r\n0;z\r\n\r\n", true, "0123456789"},
        {"3 \r\nabc\r\n0\r\n\r\n", true, "abc"},            /* BWS before an extension */
        {"3\r\nabc\r\n0\r\nA: 1\r\nB: 2\r\n\r\n", true, "abc"},
        {"zz\r\nabc\r\n0\r\n\r\n", false, NULL},              /* not hex */
        {"\r\nabc\r\n0\r\n\r\n", false, NULL},                /* no digits */
        {"-3\r\nabc\r\n0\r\n\r\n", false, NULL},
        {"0x3\r\nabc\r\n0\r\n\r\n", false, NULL},
        {"3\nabc\r\n0\r\n\r\n", false, NULL},                 /* bare LF after size */
        {"3\r\nabcXX0\r\n\r\n", false, NULL},                 /* no CRLF after data */
        {"3\r\nabc\n0\r\n\r\n", false, NULL},
        {"3\r\nabc\r\n0\r\n\n", false, NULL},
        {"3;a\x01\r\nabc\r\n0\r\n\r\n", false, NULL},         /* control char in ext */
        {"3\r\nabc\r\n0\r\n: no name\r\n\r\n", false, NULL},
        {"ffffffffffffffff\r\n", false, NULL},                /* 16 digits */
        {"fffffffffffffffffffff\r\n", false, NULL},           /* overflow */
        {"0000000000000000003\r\nabc\r\n0\r\n\r\n", false, NULL},  /* > 15 digits */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sink k;
        struct httpbody b;
        size_t len = strlen(cases[i].s);
        size_t used = decode(HTTPBODY_CHUNKED, 0, 0, cases[i].s, len, 0, &k, &b);
        size_t used1 = decode(HTTPBODY_CHUNKED, 0, 0, cases[i].s, len, 1, &k, &b);
        if (cases[i].ok) {
            if (used != len)
                fprintf(stderr, "\n  chunked case %zu: used %zd\n", i, (ssize_t)used);
            CU_ASSERT_EQUAL(used, len);
            CU_ASSERT_EQUAL(used1, len);
            CU_ASSERT_EQUAL(k.len, strlen(cases[i].body));
            CU_ASSERT_NSTRING_EQUAL(k.buf, cases[i].body, k.len);
        } else {
            if (used != (size_t)-1 || used1 != (size_t)-1)
                fprintf(stderr, "\n  chunked case %zu: used %zd / %zd\n", i, (ssize_t)used,
                        (ssize_t)used1);
            CU_ASSERT_EQUAL(used, (size_t)-1);
            CU_ASSERT_EQUAL(used1, (size_t)-1);
            /* once failed, it stays failed */
            CU_ASSERT_EQUAL(httpbody_feed(&b, "0\r\n\r\n", 5), (size_t)-1);
        }
    }
}

static void test_chunked_limits(void)
{
    struct sink k;
    struct httpbody b;
    /* an announced chunk over the limit is refused before its bytes arrive */
    static const char big[] = "400\r\n";
    CU_ASSERT_EQUAL(decode(HTTPBODY_CHUNKED, 0, 100, big, sizeof big - 1, 0, &k, &b), (size_t)-1);
    CU_ASSERT_TRUE(b.too_large);
    CU_ASSERT_EQUAL(k.calls, 0);
    /* the sum of chunks counts, not each chunk */
    static const char two[] = "40\r\n" "0123456789012345678901234567890123456789012345678901234567890123"
                              "\r\n40\r\n";
    CU_ASSERT_EQUAL(decode(HTTPBODY_CHUNKED, 0, 100, two, sizeof two - 1, 0, &k, &b), (size_t)-1);
    CU_ASSERT_TRUE(b.too_large);
    CU_ASSERT_EQUAL(k.len, 64);
    /* exactly the limit is fine */
    static const char exact[] = "a\r\n0123456789\r\n0\r\n\r\n";
    CU_ASSERT_EQUAL(decode(HTTPBODY_CHUNKED, 0, 10, exact, sizeof exact - 1, 1, &k, &b),
                    sizeof exact - 1);
    CU_ASSERT_FALSE(b.too_large);
    /* trailers are bounded */
    size_t tl = 20000;
    char *t = malloc(tl + 32);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    size_t o = (size_t)sprintf(t, "0\r\nX: ");
    memset(t + o, 'v', tl);
    o += tl;
    o += (size_t)sprintf(t + o, "\r\n\r\n");
    CU_ASSERT_EQUAL(decode(HTTPBODY_CHUNKED, 0, 0, t, o, 0, &k, &b), (size_t)-1);
    free(t);
    /* EOF inside a chunked body is an error */
    memset(&k, 0, sizeof k);
    httpbody_init(&b, HTTPBODY_CHUNKED, 0, 0, sink_data, &k);
    CU_ASSERT_EQUAL(httpbody_feed(&b, "5\r\nhel", 6), 6);
    CU_ASSERT_EQUAL(httpbody_feed(&b, NULL, 0), (size_t)-1);
    CU_ASSERT_FALSE(b.done);
    /* the callback can abort */
    memset(&k, 0, sizeof k);
    k.fail_after = 1;
    httpbody_init(&b, HTTPBODY_CHUNKED, 0, 0, sink_data, &k);
    CU_ASSERT_EQUAL(httpbody_feed(&b, "5\r\nhello\r\n0\r\n\r\n", 15), (size_t)-1);
}

static void test_length_body(void)
{
    struct sink k;
    struct httpbody b;
    static const char s[] = "hello worldGET / HTTP/1.1\r\n";
    for (size_t step = 0; step < 13; step++) {
        CU_ASSERT_EQUAL(decode(HTTPBODY_LENGTH, 11, 0, s, sizeof s - 1, step, &k, &b), 11);
        CU_ASSERT_EQUAL(k.len, 11);
        CU_ASSERT_NSTRING_EQUAL(k.buf, "hello world", 11);
    }
    /* zero length: done at once */
    httpbody_init(&b, HTTPBODY_LENGTH, 0, 0, sink_data, &k);
    CU_ASSERT_TRUE(b.done);
    CU_ASSERT_EQUAL(httpbody_feed(&b, "x", 1), 0);
    /* over the limit: refused up front */
    memset(&k, 0, sizeof k);
    httpbody_init(&b, HTTPBODY_LENGTH, 101, 100, sink_data, &k);
    CU_ASSERT_TRUE(b.too_large);
    CU_ASSERT_EQUAL(httpbody_feed(&b, "x", 1), (size_t)-1);
    CU_ASSERT_EQUAL(k.calls, 0);
    httpbody_init(&b, HTTPBODY_LENGTH, 100, 100, sink_data, &k);
    CU_ASSERT_FALSE(b.too_large);
    /* EOF before the length: error */
    memset(&k, 0, sizeof k);
    httpbody_init(&b, HTTPBODY_LENGTH, 5, 0, sink_data, &k);
    CU_ASSERT_EQUAL(httpbody_feed(&b, "abc", 3), 3);
    CU_ASSERT_EQUAL(httpbody_feed(&b, NULL, 0), (size_t)-1);
    CU_ASSERT_FALSE(b.done);
}

static void test_eof_body(void)
{
    struct sink k;
    struct httpbody b;
    memset(&k, 0, sizeof k);
    httpbody_init(&b, HTTPBODY_EOF, 0, 0, sink_data, &k);
    CU_ASSERT_EQUAL(httpbody_feed(&b, "until ", 6), 6);
    CU_ASSERT_EQUAL(httpbody_feed(&b, "close\r\n\r\n0\r\n", 12), 12);
    CU_ASSERT_FALSE(b.done);
    CU_ASSERT_EQUAL(httpbody_feed(&b, NULL, 0), 0);   /* EOF ends it */
    CU_ASSERT_TRUE(b.done);
    CU_ASSERT_EQUAL(k.len, 18);
    CU_ASSERT_NSTRING_EQUAL(k.buf, "until close\r\n\r\n0\r\n", 18);
    /* empty body: EOF straight away */
    memset(&k, 0, sizeof k);
    httpbody_init(&b, HTTPBODY_EOF, 0, 0, sink_data, &k);
    CU_ASSERT_EQUAL(httpbody_feed(&b, NULL, 0), 0);
    CU_ASSERT_TRUE(b.done);
    CU_ASSERT_EQUAL(k.calls, 0);
    /* limit */
    memset(&k, 0, sizeof k);
    httpbody_init(&b, HTTPBODY_EOF, 0, 8, sink_data, &k);
    CU_ASSERT_EQUAL(httpbody_feed(&b, "12345", 5), 5);
    CU_ASSERT_EQUAL(httpbody_feed(&b, "6789", 4), (size_t)-1);
    CU_ASSERT_TRUE(b.too_large);
    CU_ASSERT_EQUAL(k.len, 5);
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("httphead", NULL, NULL);
    if (!s)
        return;
    CU_add_test(s, "scan whole and bytewise", test_scan);
    CU_add_test(s, "scan resumes", test_scan_resume);
    CU_add_test(s, "tchar", test_tchar);
    CU_add_test(s, "fields", test_fields);
    CU_add_test(s, "field characters", test_field_chars);
    CU_add_test(s, "field count limit", test_field_limit);
    CU_add_test(s, "get", test_get);
    CU_add_test(s, "list_has", test_list_has);
    CU_add_test(s, "mark_hop", test_mark_hop);
    CU_pSuite b = CU_add_suite("httpbody", NULL, NULL);
    if (!b)
        return;
    CU_add_test(b, "chunked at every split", test_chunked_splits);
    CU_add_test(b, "chunked forms", test_chunked_forms);
    CU_add_test(b, "chunked limits", test_chunked_limits);
    CU_add_test(b, "Content-Length body", test_length_body);
    CU_add_test(b, "EOF-delimited body", test_eof_body);
}
