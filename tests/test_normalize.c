/*
 * test_normalize: upstream error responses in, client envelopes out:
 * seed bodies round-trip through their own profile, gzip/deflate decoding,
 * the gzip bomb and size caps, the 5xx policy, 429 retry facts, and bodies
 * that must fall back to the status-derived envelope.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/CUnit.h>
#include <zlib.h>

#include "normalize.h"

void test_register(void);

/* Normalize and return a NUL-terminated copy (caller frees). */
static char *norm(enum envelope_profile p, bool expose, size_t max, const struct normalize_input *in)
{
    struct normalize_opts o = {.profile = p, .expose_upstream_5xx = expose, .max_error_body = max};
    char *body = NULL;
    size_t len = 0;
    if (normalize_error(&o, in, &body, &len) != 0)
        return NULL;
    char *s = malloc(len + 1);
    if (s) {
        memcpy(s, body, len);
        s[len] = '\0';
    }
    free(body);
    return s;
}

static struct normalize_input input(int status, const char *ct, const char *body)
{
    return (struct normalize_input){.status = status, .content_type = ct, .body = body,
                                    .len = body ? strlen(body) : 0, .request_id = "req_1"};
}

static void expect(enum envelope_profile p, const struct normalize_input *in, const char *want)
{
    char *got = norm(p, false, 65536, in);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "\n  got  %s\n  want %s\n", got, want);
    CU_ASSERT_STRING_EQUAL(got, want);
    free(got);
}

/* gzip (WBITS 31), zlib (15) or raw deflate (-15) of S into a malloc'd buffer. */
static unsigned char *zcompress(const void *s, size_t n, int wbits, size_t *outlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 9, Z_DEFLATED, wbits, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&zs, (uLong)n) + 64;
    unsigned char *out = malloc(cap);
    if (!out) {
        deflateEnd(&zs);
        return NULL;
    }
    zs.next_in = (Bytef *)(uintptr_t)s;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    int rc = deflate(&zs, Z_FINISH);
    *outlen = cap - zs.avail_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static const char nested_404_default[] =
    "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"Not Found\",\"details\":"
    "{\"request_id\":\"req_1\"}}}";

/* ---- seeds round-trip through their own profile -------------------------- */

static void test_seed_roundtrip(void)
{
    struct normalize_input in = input(422, "application/json",
        "{\"error\":{\"code\":\"VALIDATION_ERROR\",\"message\":\"Request validation failed\","
        "\"details\":{\"errors\":[{\"field\":\"title\",\"message\":\"Title is required\","
        "\"type\":\"missing\"},{\"field\":\"due_date\",\"message\":\"Due date must be in the "
        "future\",\"type\":\"invalid_value\"}]}}}");
    expect(ENVELOPE_NESTED, &in,
        "{\"error\":{\"code\":\"VALIDATION_ERROR\",\"message\":\"Request validation failed\","
        "\"details\":{\"errors\":[{\"field\":\"title\",\"message\":\"Title is required\","
        "\"type\":\"missing\"},{\"field\":\"due_date\",\"message\":\"Due date must be in the "
        "future\",\"type\":\"invalid_value\"}],\"request_id\":\"req_1\"}}}");

    in = input(422, "application/json",
        "{\"error\":\"Validation failed\",\"code\":\"VALIDATION_ERROR\",\"details\":{\"title\":"
        "\"Required field is missing\",\"status\":\"Must be one of: open, in_progress, "
        "addressed\"}}");
    expect(ENVELOPE_FLAT, &in,
        "{\"error\":\"Validation failed\",\"code\":\"VALIDATION_ERROR\",\"details\":{\"title\":"
        "\"Required field is missing\",\"status\":\"Must be one of: open, in_progress, "
        "addressed\",\"request_id\":\"req_1\"}}");

    in = input(422, "application/json",
        "{\"error\":\"Validation failed\",\"errors\":{\"title\":[\"The title field is required\"],"
        "\"priority\":[\"The priority must be one of: low, medium, high, urgent\"]}}");
    expect(ENVELOPE_SIMPLE, &in,
        "{\"error\":\"Validation failed\",\"errors\":{\"title\":[\"The title field is required\"],"
        "\"priority\":[\"The priority must be one of: low, medium, high, urgent\"]}}");

    in = input(404, "application/json",
        "{\"key\":\"api-errors.ticketNotFound\",\"params\":{\"ticketId\":\"7\"},"
        "\"fallbackMessage\":\"Ticket not found.\"}");
    expect(ENVELOPE_I18N, &in,
        "{\"key\":\"api-errors.ticketNotFound\",\"params\":{\"request_id\":\"req_1\"},"
        "\"fallbackMessage\":\"Ticket not found.\"}");

    in = input(429, "application/json",
        "{\"code\":429,\"message\":\"You have exceeded your number of requests. Please try "
        "again later\"}");
    expect(ENVELOPE_STATUS, &in,
        "{\"code\":429,\"message\":\"You have exceeded your number of requests. Please try "
        "again later\"}");

    /* a different shape into each profile: Laravel 422 -> problem */
    in = input(422, "application/json",
        "{\"message\":\"The title field is required.\",\"errors\":{\"title\":[\"The title field "
        "is required.\"]}}");
    expect(ENVELOPE_PROBLEM, &in,
        "{\"type\":\"about:blank\",\"title\":\"Unprocessable Entity\",\"status\":422,\"detail\":"
        "\"The title field is required.\",\"code\":\"VALIDATION_ERROR\",\"request_id\":\"req_1\","
        "\"errors\":[{\"field\":\"title\",\"message\":\"The title field is required.\"}]}");

    /* field errors but no message: "Validation failed" */
    in = input(422, "application/json", "{\"errors\":{\"title\":[\"can't be blank\"]}}");
    expect(ENVELOPE_SIMPLE, &in,
        "{\"error\":\"Validation failed\",\"errors\":{\"title\":[\"can't be blank\"]}}");
}

/* ---- decoding --------------------------------------------------------------- */

static void test_gzip_deflate(void)
{
    static const char json[] = "{\"error\":{\"code\":\"TASK_NOT_FOUND\",\"message\":\"Task 7 not found\"}}";
    static const char want[] = "{\"error\":{\"code\":\"TASK_NOT_FOUND\",\"message\":\"Task 7 not "
                               "found\",\"details\":{\"request_id\":\"req_1\"}}}";
    static const struct { int wbits; const char *ce; } t[] = {
        {31, "gzip"}, {31, "x-gzip"}, {31, " GZIP "}, {15, "deflate"}, {-15, "deflate"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t zl = 0;
        unsigned char *z = zcompress(json, sizeof json - 1, t[i].wbits, &zl);
        CU_ASSERT_PTR_NOT_NULL_FATAL(z);
        struct normalize_input in = input(404, "application/json", NULL);
        in.body = (const char *)z;
        in.len = zl;
        in.content_encoding = t[i].ce;
        expect(ENVELOPE_NESTED, &in, want);
        /* truncated compressed stream: status-derived */
        in.len = zl / 2;
        expect(ENVELOPE_NESTED, &in, nested_404_default);
        free(z);
    }
    struct normalize_input in = input(404, "application/json", json);
    in.content_encoding = "identity";
    expect(ENVELOPE_NESTED, &in, want);
    /* not actually compressed, or a coding we do not read */
    in.content_encoding = "gzip";
    expect(ENVELOPE_NESTED, &in, nested_404_default);
    in.content_encoding = "br";
    expect(ENVELOPE_NESTED, &in, nested_404_default);
    in.content_encoding = "gzip, br";
    expect(ENVELOPE_NESTED, &in, nested_404_default);
}

static void test_gzip_bomb(void)
{
    /* 64 MiB of JSON-ish padding compresses to ~64 KiB; decoding stops at the cap */
    size_t n = 64u << 20;
    char *big = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, ' ', n);
    memcpy(big, "{\"message\":\"boom\"", 17);
    big[n - 1] = '}';
    size_t zl = 0;
    unsigned char *z = zcompress(big, n, 31, &zl);
    free(big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(z);
    CU_ASSERT(zl < 200000);
    struct normalize_input in = input(404, "application/json", NULL);
    in.body = (const char *)z;
    in.len = zl;
    in.content_encoding = "gzip";
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char *got = norm(ENVELOPE_NESTED, false, 1u << 20, &in);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, nested_404_default);
    CU_ASSERT((double)(t1.tv_sec - t0.tv_sec) < 2.0);
    free(got);
    free(z);
}

static void test_caps_and_truncation(void)
{
    static const char json[] = "{\"message\":\"Task 7 not found\"}";
    struct normalize_input in = input(404, "application/json", json);
    in.truncated = true;
    expect(ENVELOPE_NESTED, &in, nested_404_default);
    in.truncated = false;
    char *got = norm(ENVELOPE_NESTED, false, 10, &in);   /* body over max_error_body */
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, nested_404_default);
    free(got);
    /* decoded size over the cap */
    size_t zl = 0;
    unsigned char *z = zcompress(json, sizeof json - 1, 31, &zl);
    CU_ASSERT_PTR_NOT_NULL_FATAL(z);
    in.body = (const char *)z;
    in.len = zl;
    in.content_encoding = "gzip";
    got = norm(ENVELOPE_NESTED, false, sizeof json - 5, &in);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, nested_404_default);
    free(got);
    free(z);
    /* max_error_body 0: the 64 KiB default */
    in = input(404, "application/json", json);
    got = norm(ENVELOPE_SIMPLE, false, 0, &in);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, "{\"error\":\"Task 7 not found\"}");
    free(got);
}

static void test_hostile_bodies(void)
{
    size_t n = 1000000;
    char *deep = malloc(n + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(deep);
    memset(deep, '[', n);
    deep[n] = '\0';
    struct normalize_input in = input(404, "application/json", deep);
    char *got = norm(ENVELOPE_NESTED, false, 2u << 20, &in);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, nested_404_default);
    free(got);
    free(deep);

    in = input(404, "application/json", "{\"message\":\"Task");
    expect(ENVELOPE_NESTED, &in, nested_404_default);
    in = input(404, "application/json", "{\"message\":\"caf\xc3\xa9 \xff bad\"}");
    expect(ENVELOPE_SIMPLE, &in, "{\"error\":\"caf\xc3\xa9 \xef\xbf\xbd bad\"}");
    in = input(404, NULL, NULL);
    expect(ENVELOPE_NESTED, &in, nested_404_default);
    in = input(400, "text/plain",
               "Traceback (most recent call last):\n  File \"/srv/app.py\", line 3\n");
    expect(ENVELOPE_SIMPLE, &in, "{\"error\":\"Bad Request\"}");
    in = input(404, "text/html",
               "<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1>"
               "<p>The requested URL was not found on this server.</p><hr><address>Apache/2.4.41 "
               "(Ubuntu) Server at db1.internal Port 80</address></body></html>");
    expect(ENVELOPE_SIMPLE, &in,
           "{\"error\":\"The requested URL was not found on this server\"}");
}

/* ---- 5xx policy ---------------------------------------------------------------------- */

static void test_5xx_policy(void)
{
    static const char debug[] =
        "{\"code\":\"DB_DOWN\",\"message\":\"connect to db1.internal:5432 failed\","
        "\"errors\":{\"x\":[\"leak\"]},\"trace\":\"at Foo.bar(Foo.java:1)\"}";
    struct normalize_input in = input(500, "application/json", debug);
    expect(ENVELOPE_NESTED, &in,
           "{\"error\":{\"code\":\"DB_DOWN\",\"message\":\"An unexpected error occurred\","
           "\"details\":{\"request_id\":\"req_1\"}}}");
    in.status = 502;
    expect(ENVELOPE_SIMPLE, &in, "{\"error\":\"Bad Gateway\"}");
    in.status = 503;
    expect(ENVELOPE_STATUS, &in, "{\"code\":503,\"message\":\"Service Unavailable\"}");
    in.status = 504;
    expect(ENVELOPE_FLAT, &in,
           "{\"error\":\"Gateway Timeout\",\"code\":\"DB_DOWN\",\"details\":{\"request_id\":"
           "\"req_1\"}}");
    in = input(500, "text/html",
               "<html><title>NameError at /x</title><body><pre>Traceback (most recent call last)"
               "</pre></body></html>");
    expect(ENVELOPE_PROBLEM, &in,
           "{\"type\":\"about:blank\",\"title\":\"Internal Server Error\",\"status\":500,"
           "\"detail\":\"An unexpected error occurred\",\"code\":\"INTERNAL_ERROR\","
           "\"request_id\":\"req_1\"}");

    /* expose_upstream_5xx = yes: the upstream's text, still cleaned */
    in = input(500, "application/json", debug);
    char *got = norm(ENVELOPE_SIMPLE, true, 65536, &in);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, "{\"error\":\"connect to db1.internal:5432 failed\","
                                "\"errors\":{\"x\":[\"leak\"]}}");
    free(got);
}

/* ---- 429 ----------------------------------------------------------------------------------- */

static void test_429(void)
{
    struct normalize_input in = input(429, "application/json", "{\"message\":\"Slow down\"}");
    in.retry_after = "42";
    expect(ENVELOPE_NESTED, &in,
           "{\"error\":{\"code\":\"RATE_LIMITED\",\"message\":\"Slow down\",\"details\":"
           "{\"retry_after\":42,\"request_id\":\"req_1\"}}}");
    /* the gateway's own facts win */
    struct envelope_limit gw = {.set = true, .retry_after_s = 7, .limit = 100, .window_s = 3600};
    in.limit = &gw;
    expect(ENVELOPE_NESTED, &in,
           "{\"error\":{\"code\":\"RATE_LIMITED\",\"message\":\"Slow down\",\"details\":"
           "{\"retry_after\":7,\"limit\":100,\"window\":\"hour\",\"request_id\":\"req_1\"}}}");
    /* body facts (seed 004) when no header */
    in = input(429, "application/json",
               "{\"error\":{\"code\":\"RATE_LIMITED\",\"message\":\"Too many requests.\","
               "\"details\":{\"retry_after\":60,\"limit\":100,\"window\":\"minute\"}}}");
    expect(ENVELOPE_PROBLEM, &in,
           "{\"type\":\"about:blank\",\"title\":\"Too Many Requests\",\"status\":429,\"detail\":"
           "\"Too many requests.\",\"code\":\"RATE_LIMITED\",\"request_id\":\"req_1\","
           "\"retry_after\":60,\"limit\":100,\"window\":\"minute\"}");
    /* an HTTP-date, in the future */
    char date[64];
    time_t when = time(NULL) + 120;
    struct tm tm;
    CU_ASSERT_PTR_NOT_NULL_FATAL(gmtime_r(&when, &tm));
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    in = input(429, NULL, NULL);
    in.retry_after = date;
    char *got = norm(ENVELOPE_I18N, false, 65536, &in);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    long ra = -1;
    const char *p = strstr(got, "\"retry_after\":");
    if (p)
        ra = strtol(p + 14, NULL, 10);
    CU_ASSERT(ra >= 115 && ra <= 120);
    free(got);
    /* junk Retry-After: no facts */
    in.retry_after = "soon";
    expect(ENVELOPE_NESTED, &in,
           "{\"error\":{\"code\":\"RATE_LIMITED\",\"message\":\"Too Many Requests\",\"details\":"
           "{\"request_id\":\"req_1\"}}}");
    /* Retry-After on a 404 is not a limit fact */
    in = input(404, NULL, NULL);
    in.retry_after = "5";
    expect(ENVELOPE_NESTED, &in, nested_404_default);
}

static void test_code_out(void)
{
    struct normalize_opts o = {.profile = ENVELOPE_SIMPLE, .max_error_body = 65536};
    struct normalize_input in = input(404, "application/json",
                                      "{\"code\":\"task-not-found\",\"message\":\"x y\"}");
    char *b = NULL;
    size_t l = 0;
    char code[64];
    CU_ASSERT_EQUAL_FATAL(normalize_error_code(&o, &in, &b, &l, code, sizeof code), 0);
    CU_ASSERT_STRING_EQUAL(code, "TASK_NOT_FOUND");
    free(b);
    in = input(429, NULL, NULL);
    CU_ASSERT_EQUAL_FATAL(normalize_error_code(&o, &in, &b, &l, code, sizeof code), 0);
    CU_ASSERT_STRING_EQUAL(code, "RATE_LIMITED");
    free(b);
    char tiny[4];
    CU_ASSERT_EQUAL_FATAL(normalize_error_code(&o, &in, &b, &l, tiny, sizeof tiny), 0);
    CU_ASSERT_STRING_EQUAL(tiny, "RAT");
    free(b);
    CU_ASSERT_EQUAL_FATAL(normalize_error_code(&o, &in, &b, &l, NULL, 0), 0);
    free(b);
}

static void test_bad_args(void)
{
    struct normalize_opts o = {.profile = ENVELOPE_NESTED};
    struct normalize_input in = input(404, NULL, NULL);
    char *b = NULL;
    size_t l = 0;
    CU_ASSERT_EQUAL(normalize_error(NULL, &in, &b, &l), -1);
    CU_ASSERT_EQUAL(normalize_error(&o, NULL, &b, &l), -1);
    CU_ASSERT_EQUAL(normalize_error(&o, &in, NULL, &l), -1);
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("normalize", NULL, NULL);
    if (!s)
        return;
    CU_add_test(s, "seeds round-trip", test_seed_roundtrip);
    CU_add_test(s, "gzip and deflate", test_gzip_deflate);
    CU_add_test(s, "gzip bomb", test_gzip_bomb);
    CU_add_test(s, "caps and truncation", test_caps_and_truncation);
    CU_add_test(s, "hostile bodies", test_hostile_bodies);
    CU_add_test(s, "5xx policy", test_5xx_policy);
    CU_add_test(s, "429 facts", test_429);
    CU_add_test(s, "code out", test_code_out);
    CU_add_test(s, "bad arguments", test_bad_args);
}
