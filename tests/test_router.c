/*
 * test_router: route selection (longest prefix, on path-segment boundaries),
 * the per-route method rule and its Allow header, and the target sent
 * upstream once strip_prefix applies. The conf is built by hand: no file.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <http_parser.h>

#include "router.h"

void test_register(void);

static struct conf *conf;

static struct conf_route *add_route(struct conf *c, const char *name, const char *prefix,
                                    bool strip, uint64_t methods)
{
    struct conf_route *r = &c->routes[c->n_routes++];
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->prefix, sizeof r->prefix, "%s", prefix);
    r->prefix_len = strlen(prefix);
    r->strip_prefix = strip;
    r->methods = methods;
    return r;
}

#define M(m) (1ULL << (m))

static int suite_init(void)
{
    conf = calloc(1, sizeof *conf);
    if (!conf)
        return -1;
    /* Deliberately not in length order: the longest must win wherever it is. */
    add_route(conf, "api", "/api", false, 0);
    add_route(conf, "tasks", "/api/v1/tasks", true,
              M(HTTP_GET) | M(HTTP_HEAD) | M(HTTP_POST) | M(HTTP_PATCH) | M(HTTP_DELETE));
    add_route(conf, "users", "/api/v1/users/", true, M(HTTP_GET) | M(HTTP_HEAD));
    add_route(conf, "v1", "/api/v1", false, 0);
    add_route(conf, "static", "/static/", false, M(HTTP_GET));
    return 0;
}

static int suite_clean(void)
{
    free(conf);
    conf = NULL;
    return 0;
}

static const char *match(const struct conf *c, const char *path)
{
    const struct conf_route *r = router_match(c, path, strlen(path));
    return r ? r->name : NULL;
}

static void test_longest_prefix(void)
{
    static const struct {
        const char *path;
        const char *route;      /* NULL: no match -> 404 */
    } cases[] = {
        {"/api/v1/tasks", "tasks"},
        {"/api/v1/tasks/", "tasks"},
        {"/api/v1/tasks/7", "tasks"},
        {"/api/v1/tasks/7/comments", "tasks"},
        {"/api/v1/tasksX", "v1"},           /* not a segment boundary */
        {"/api/v1/tasks.json", "v1"},
        {"/api/v1/task", "v1"},
        {"/api/v1", "v1"},
        {"/api/v1/", "v1"},
        {"/api/v10", "api"},
        {"/api", "api"},
        {"/api/", "api"},
        {"/apix", NULL},
        {"/ap", NULL},
        {"/", NULL},
        {"", NULL},
        {"/API/v1/tasks", NULL},            /* case-sensitive, as paths are */
        {"/api/v1/users/", "users"},
        {"/api/v1/users/42", "users"},
        {"/api/v1/users", "v1"},            /* the prefix's own trailing slash is required */
        {"/api/v1/usersX", "v1"},
        {"/static/", "static"},
        {"/static/app.js", "static"},
        {"/static", NULL},
        {"/staticfile", NULL},
        {"//api", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = match(conf, cases[i].path);
        bool ok = (got == NULL && cases[i].route == NULL) ||
                  (got && cases[i].route && strcmp(got, cases[i].route) == 0);
        if (!ok)
            fprintf(stderr, "\n  path \"%s\": route %s, want %s\n", cases[i].path,
                    got ? got : "(none)", cases[i].route ? cases[i].route : "(none)");
        CU_ASSERT_TRUE(ok);
    }
    /* the length bounds the path: bytes past it are not looked at */
    CU_ASSERT_STRING_EQUAL(router_match(conf, "/api/v1/tasks/7", 7)->name, "v1");
    CU_ASSERT_STRING_EQUAL(router_match(conf, "/api/v1/tasksX", 13)->name, "tasks");
}

static void test_root_route(void)
{
    struct conf *c = calloc(1, sizeof *c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_PTR_NULL(router_match(c, "/", 1));           /* no routes at all */
    add_route(c, "all", "/", false, 0);
    add_route(c, "x", "/x", false, 0);
    CU_ASSERT_STRING_EQUAL(match(c, "/"), "all");
    CU_ASSERT_STRING_EQUAL(match(c, "/anything/else"), "all");
    CU_ASSERT_STRING_EQUAL(match(c, "/x"), "x");
    CU_ASSERT_STRING_EQUAL(match(c, "/x/y"), "x");
    CU_ASSERT_STRING_EQUAL(match(c, "/xy"), "all");
    CU_ASSERT_PTR_NULL(match(c, "*"));
    CU_ASSERT_PTR_NULL(match(c, ""));
    free(c);
}

static void test_methods(void)
{
    const struct conf_route *tasks = router_match(conf, "/api/v1/tasks", 13);
    const struct conf_route *api = router_match(conf, "/api", 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tasks);
    CU_ASSERT_PTR_NOT_NULL_FATAL(api);
    CU_ASSERT_TRUE(router_method_allowed(tasks, HTTP_GET));
    CU_ASSERT_TRUE(router_method_allowed(tasks, HTTP_HEAD));
    CU_ASSERT_TRUE(router_method_allowed(tasks, HTTP_POST));
    CU_ASSERT_TRUE(router_method_allowed(tasks, HTTP_PATCH));
    CU_ASSERT_TRUE(router_method_allowed(tasks, HTTP_DELETE));
    CU_ASSERT_FALSE(router_method_allowed(tasks, HTTP_PUT));
    CU_ASSERT_FALSE(router_method_allowed(tasks, HTTP_OPTIONS));
    CU_ASSERT_FALSE(router_method_allowed(tasks, 64));
    CU_ASSERT_FALSE(router_method_allowed(tasks, 1000));
    /* methods = 0: every method */
    for (unsigned m = 0; m < 40; m++)
        CU_ASSERT_TRUE(router_method_allowed(api, m));
}

static void test_allow(void)
{
    char buf[256];
    const struct conf_route *tasks = router_match(conf, "/api/v1/tasks", 13);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tasks);
    size_t n = router_allow(tasks, buf, sizeof buf);
    CU_ASSERT_EQUAL(n, strlen(buf));
    CU_ASSERT_STRING_EQUAL(buf, "DELETE, GET, HEAD, POST, PATCH");
    const struct conf_route *st = router_match(conf, "/static/a", 9);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    n = router_allow(st, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "GET");
    CU_ASSERT_EQUAL(n, 3);
    /* Small buffers: always NUL-terminated, never past cap, whole names only. */
    for (size_t cap = 0; cap < 40; cap++) {
        char small[48];
        memset(small, '#', sizeof small);
        size_t m = router_allow(tasks, small, cap);
        if (cap == 0) {
            CU_ASSERT_EQUAL(m, 0);
            CU_ASSERT_EQUAL(small[0], '#');
            continue;
        }
        CU_ASSERT_TRUE(m < cap);
        CU_ASSERT_EQUAL(small[m], '\0');
        CU_ASSERT_EQUAL(strlen(small), m);
        for (size_t k = cap; k < sizeof small; k++)
            CU_ASSERT_EQUAL(small[k], '#');
        CU_ASSERT_EQUAL(strncmp(small, "DELETE, GET, HEAD, POST, PATCH", m), 0);
        CU_ASSERT_TRUE(m == 0 || small[m - 1] != ' ');
    }
}

static void upstream(const struct conf_route *r, const char *target, const char *want)
{
    char buf[128];
    memset(buf, '#', sizeof buf);
    size_t n = router_upstream_target(r, target, strlen(target), buf, sizeof buf);
    bool ok = n == strlen(want) && memcmp(buf, want, n) == 0;
    if (!ok)
        fprintf(stderr, "\n  target \"%s\": \"%.*s\", want \"%s\"\n", target, (int)n, buf, want);
    CU_ASSERT_TRUE(ok);
}

static void test_upstream_target(void)
{
    const struct conf_route *tasks = router_match(conf, "/api/v1/tasks", 13);
    const struct conf_route *users = router_match(conf, "/api/v1/users/", 14);
    const struct conf_route *v1 = router_match(conf, "/api/v1", 7);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tasks);
    CU_ASSERT_PTR_NOT_NULL_FATAL(users);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v1);
    /* docs/configuration.md: /api/v1/tasks/7 is sent upstream as /7 */
    upstream(tasks, "/api/v1/tasks/7", "/7");
    upstream(tasks, "/api/v1/tasks/7?x=1&y=/z", "/7?x=1&y=/z");
    upstream(tasks, "/api/v1/tasks", "/");
    upstream(tasks, "/api/v1/tasks/", "/");
    upstream(tasks, "/api/v1/tasks?page=2", "/?page=2");
    upstream(tasks, "/api/v1/tasks/a/b/c", "/a/b/c");
    /* a prefix ending in / keeps that slash */
    upstream(users, "/api/v1/users/42", "/42");
    upstream(users, "/api/v1/users/", "/");
    /* strip_prefix = no: as sent */
    upstream(v1, "/api/v1/x?y", "/api/v1/x?y");
    upstream(NULL, "/any/thing", "/any/thing");
    /* bounded by cap */
    char small[4];
    size_t n = router_upstream_target(v1, "/api/v1/x", 9, small, sizeof small);
    CU_ASSERT_TRUE(n <= sizeof small);
    n = router_upstream_target(tasks, "/api/v1/tasks?q", 15, small, 1);
    CU_ASSERT_TRUE(n <= 1);
    n = router_upstream_target(tasks, "/api/v1/tasks", 13, small, 0);
    CU_ASSERT_EQUAL(n, 0);
}

static void test_root_strip(void)
{
    struct conf *c = calloc(1, sizeof *c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    const struct conf_route *all = add_route(c, "all", "/", true, 0);
    upstream(all, "/", "/");
    upstream(all, "/a/b?c", "/a/b?c");
    free(c);
}

/* Routing on the routing form: any case when routes_ignore_case is on;
 * strip_prefix takes the target's own spelling of the prefix's segments. */
static void test_ignore_case_and_params(void)
{
    struct conf *c = calloc(1, sizeof *c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    const struct conf_route *login = add_route(c, "login", "/api/login", true, 0);
    add_route(c, "all", "/", false, 0);
    static const char *const cased[] = {"/API/login", "/Api/Login", "/api/LOGIN/x"};
    for (size_t i = 0; i < sizeof cased / sizeof cased[0]; i++)
        CU_ASSERT_STRING_EQUAL(match(c, cased[i]), "all");
    c->routes_ignore_case = true;
    for (size_t i = 0; i < sizeof cased / sizeof cased[0]; i++)
        CU_ASSERT_STRING_EQUAL(match(c, cased[i]), "login");
    CU_ASSERT_STRING_EQUAL(match(c, "/API/loginx"), "all");
    static const struct {
        const char *target, *want;
    } strip[] = {
        {"/api/login", "/"},
        {"/API/Login/x?q=/a/b", "/x?q=/a/b"},
        {"/api;v=1/login;jsessionid=2/x", "/x"},
        {"/api//login/x", "/x"},
        {"/api/;p/login/x", "/x"},
        {"/api/login?x", "/?x"},
    };
    for (size_t i = 0; i < sizeof strip / sizeof strip[0]; i++)
        upstream(login, strip[i].target, strip[i].want);
    free(c);
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("router", suite_init, suite_clean);
    if (!s)
        return;
    CU_add_test(s, "longest prefix on segment boundaries", test_longest_prefix);
    CU_add_test(s, "root route", test_root_route);
    CU_add_test(s, "methods", test_methods);
    CU_add_test(s, "Allow", test_allow);
    CU_add_test(s, "upstream target (strip_prefix)", test_upstream_target);
    CU_add_test(s, "strip of the root prefix", test_root_strip);
    CU_add_test(s, "any case, ;params and strip_prefix", test_ignore_case_and_params);
}
