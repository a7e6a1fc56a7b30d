/*
 * test_urlpath: one table of request paths and what routing and the
 * upstream get from each: the normalized path, its routing form, or a 400.
 * A row per spelling an attacker might try; add one line per new case.
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "urlpath.h"

void test_register(void);

#define REFUSED NULL

static const struct {
    const char *in;
    unsigned flags;
    const char *norm;    /* REFUSED: a 400 */
    const char *route;   /* the routing form of norm */
} rows[] = {
    {"/", URLPATH_MERGE_SLASHES, "/", "/"},
    {"/api/login", URLPATH_MERGE_SLASHES, "/api/login", "/api/login"},
    /* percent-encoded unreserved characters are the characters */
    {"/api/%6cogin", URLPATH_MERGE_SLASHES, "/api/login", "/api/login"},
    {"/api/%6Cogin", URLPATH_MERGE_SLASHES, "/api/login", "/api/login"},
    {"/%41PI/x", URLPATH_MERGE_SLASHES, "/API/x", "/API/x"},
    {"/a%2db%5fc%2Ed%7e", URLPATH_MERGE_SLASHES, "/a-b_c.d~", "/a-b_c.d~"},
    {"/%31%32", URLPATH_MERGE_SLASHES, "/12", "/12"},
    /* other escapes stay, upper-cased */
    {"/a%20b%c3%a9", URLPATH_MERGE_SLASHES, "/a%20b%C3%A9", "/a%20b%C3%A9"},
    {"/a%25%2f", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/a%3b/b", URLPATH_MERGE_SLASHES, "/a%3B/b", "/a%3B/b"},
    /* slashes */
    {"//api/login", URLPATH_MERGE_SLASHES, "/api/login", "/api/login"},
    {"/api//login//", URLPATH_MERGE_SLASHES, "/api/login/", "/api/login/"},
    {"//api//login", 0, "//api//login", "/api/login"},
    /* dot segments, plain and encoded */
    {"/./api/login", URLPATH_MERGE_SLASHES, "/api/login", "/api/login"},
    {"/x/../api/login", URLPATH_MERGE_SLASHES, "/api/login", "/api/login"},
    {"/api/x/%2e%2e/login", URLPATH_MERGE_SLASHES, "/api/login", "/api/login"},
    {"/api/x/.%2E/login", URLPATH_MERGE_SLASHES, "/api/login", "/api/login"},
    {"/api/login/.", URLPATH_MERGE_SLASHES, "/api/login/", "/api/login/"},
    {"/api/login/..", URLPATH_MERGE_SLASHES, "/api/", "/api/"},
    {"/a/b/../../c", URLPATH_MERGE_SLASHES, "/c", "/c"},
    {"/...", URLPATH_MERGE_SLASHES, "/...", "/..."},
    {"/..", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/a/../..", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/%2e%2e/x", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    /* ;params: kept for the upstream, dropped for routing */
    {"/api;x=1/login", URLPATH_MERGE_SLASHES, "/api;x=1/login", "/api/login"},
    {"/api/login;jsessionid=1", URLPATH_MERGE_SLASHES, "/api/login;jsessionid=1", "/api/login"},
    {"/api/;x/login", URLPATH_MERGE_SLASHES, "/api/;x/login", "/api/login"},
    {"/x/..;/api/login", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/api/.;/login", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/api/%2e;x/login", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    /* trailing dots and spaces: routed as IIS and Spring read them */
    {"/api/login.", URLPATH_MERGE_SLASHES, "/api/login.", "/api/login"},
    {"/api/login%20", URLPATH_MERGE_SLASHES, "/api/login%20", "/api/login"},
    {"/api/login.%20./x", URLPATH_MERGE_SLASHES, "/api/login.%20./x", "/api/login/x"},
    {"/api./login;a", URLPATH_MERGE_SLASHES, "/api./login;a", "/api/login"},
    {"/api/.../x", URLPATH_MERGE_SLASHES, "/api/.../x", "/api/.../x"},
    {"/a.b/c", URLPATH_MERGE_SLASHES, "/a.b/c", "/a.b/c"},
    /* dots and spaces only: ".." or "." to an upstream that trims first */
    {"/x/..%20/admin", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/x/..%20%20/admin", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/x/.%2e%20/admin", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/.%20/admin", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/x/%20../admin", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/x/..../admin", URLPATH_MERGE_SLASHES, "/x/..../admin", "/x/..../admin"},
    {"/x/%20/admin", URLPATH_MERGE_SLASHES, "/x/%20/admin", "/x/%20/admin"},
    /* ".." after "//": one reading for upstreams that merge, another for the rest */
    {"/api//../login", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/api//../login", 0, REFUSED, NULL},
    {"/api//%2e%2e/login", 0, REFUSED, NULL},
    {"/api//./../login", 0, REFUSED, NULL},
    {"/api//x/../login", 0, "/api//login", "/api/login"},
    {"/a//./b", 0, "/a//b", "/a/b"},
    /* what no route can be right about */
    {"/api%2flogin", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/api%2Flogin", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/api%5clogin", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/api\\login", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/api/login%00", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/api/login%0a", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/api/login%7F", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/api/login\x01", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/api/%zz", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/api/%4", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/api/%", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"api", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    /* bytes no UTF-8 has: overlong '/' and '.', and past U+10FFFF */
    {"/api%c0%aflogin", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/%C1%9C", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/a/\xc0\xae\xc0\xae/x", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/%f8%80", URLPATH_MERGE_SLASHES, REFUSED, NULL},
    {"/caf\xc3\xa9", URLPATH_MERGE_SLASHES, "/caf\xc3\xa9", "/caf\xc3\xa9"},
};

static void test_table(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char out[256], route[256], msg[512];
        const char *why = NULL;
        size_t n = urlpath_normalize(rows[i].in, strlen(rows[i].in), out, sizeof out,
                                     rows[i].flags, &why);
        if (!rows[i].norm) {
            snprintf(msg, sizeof msg, "row %zu (%s): refused", i, rows[i].in);
            if (n != 0 || why == NULL)
                CU_FAIL(msg);
            continue;
        }
        snprintf(msg, sizeof msg, "row %zu (%s) -> %.*s", i, rows[i].in, (int)n, out);
        CU_ASSERT_EQUAL(n, strlen(rows[i].norm));
        if (n != strlen(rows[i].norm) || memcmp(out, rows[i].norm, n) != 0) {
            fprintf(stderr, "%s\n", msg);
            CU_FAIL(msg);
            continue;
        }
        /* A path that needs no work is left alone: the fast path is exact. */
        if (urlpath_is_plain(rows[i].in, strlen(rows[i].in)))
            CU_ASSERT_STRING_EQUAL(rows[i].in, rows[i].norm);
        size_t rn = urlpath_route_differs(out, n) ? urlpath_route_form(out, n, route, sizeof route)
                                                  : (memcpy(route, out, n), n);
        if (rn != strlen(rows[i].route) || memcmp(route, rows[i].route, rn) != 0) {
            fprintf(stderr, "%s: routing form %.*s\n", msg, (int)rn, route);
            CU_FAIL(msg);
        }
    }
}

static void test_segments(void)
{
    CU_ASSERT_EQUAL(urlpath_count_segments("/", 1), 0);
    CU_ASSERT_EQUAL(urlpath_count_segments("/api", 4), 1);
    CU_ASSERT_EQUAL(urlpath_count_segments("/api/v1/", 8), 2);
    const char *p = "/api;x//v1/rest";
    CU_ASSERT_EQUAL(urlpath_skip_segments(p, strlen(p), 2), 10);
    CU_ASSERT_EQUAL(urlpath_skip_segments(p, strlen(p), 0), 0);
    CU_ASSERT_EQUAL(urlpath_skip_segments(p, strlen(p), 9), strlen(p));
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("urlpath", NULL, NULL);
    if (!s)
        return;
    CU_add_test(s, "normalized and routing forms", test_table);
    CU_add_test(s, "segments for strip_prefix", test_segments);
}
