/*
 * test_router: route selection (host group, longest prefix on path-segment
 * boundaries, match_header), the normalized host, the index checked against
 * a brute-force reference over a thousand routes, the per-route method rule
 * and its Allow header, and the target sent upstream once strip_prefix
 * applies. The conf is built by hand: no file.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <CUnit/CUnit.h>
#include <http_parser.h>

#include "httphead.h"
#include "router.h"

void test_register(void);

static struct conf *conf;

/* A hand-made conf with room for CAP routes; conf_free is for conf_load's. */
static struct conf *new_conf(size_t cap)
{
    struct conf *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->routes = calloc(cap, sizeof *c->routes);
    if (!c->routes) {
        free(c);
        return NULL;
    }
    return c;
}

static void free_conf(struct conf *c)
{
    if (c)
        free(c->routes);
    free(c);
}

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
    conf = new_conf(8);
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
    free_conf(conf);
    conf = NULL;
    return 0;
}

/* router_match's route for PATH, checked against the index's with no host and no head. */
static const char *match(const struct conf *c, const char *path)
{
    const struct conf_route *r = router_match(c, path, strlen(path));
    struct router *rt = router_new(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rt);
    bool known = true;
    CU_ASSERT_PTR_EQUAL(router_find(rt, "", 0, path, strlen(path), NULL, &known), r);
    CU_ASSERT_FALSE(known);
    router_free(rt);
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
    struct conf *c = new_conf(8);
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
    free_conf(c);
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
    struct conf *c = new_conf(8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    const struct conf_route *all = add_route(c, "all", "/", true, 0);
    upstream(all, "/", "/");
    upstream(all, "/a/b?c", "/a/b?c");
    free_conf(c);
}

/* Routing on the routing form: any case when routes_ignore_case is on;
 * strip_prefix takes the target's own spelling of the prefix's segments. */
static void test_ignore_case_and_params(void)
{
    struct conf *c = new_conf(8);
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
    free_conf(c);
}

/* ---- host routing: the index (router_new, router_find) ---- */

static struct conf_route *add_hosted(struct conf *c, const char *name, const char *prefix,
                                     const char *const *hosts)
{
    struct conf_route *r = add_route(c, name, prefix, false, 0);
    for (size_t i = 0; hosts && hosts[i]; i++)
        snprintf(r->hosts[r->n_hosts++], CONF_HOST_MAX, "%s", hosts[i]);
    return r;
}

#define HOSTS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void set_header(struct conf_route *r, const char *name, const char *value)
{
    snprintf(r->match_header, sizeof r->match_header, "%s", name);
    snprintf(r->match_value, sizeof r->match_value, "%s", value);
}

/* A head from "Name: value" lines (NULL-terminated), pointing into them. */
static void make_head(struct httphead *h, const char *const *lines)
{
    h->n = 0;
    for (size_t i = 0; lines && lines[i]; i++) {
        const char *colon = strchr(lines[i], ':');
        struct httphead_field *f = &h->f[h->n++];
        f->name = lines[i];
        f->name_len = (uint32_t)(colon - lines[i]);
        f->value = colon + 2;
        f->value_len = (uint32_t)strlen(colon + 2);
        f->hop = false;
    }
}

static void test_host_normalize(void)
{
    static const struct {
        const char *value;
        const char *want; /* "": no host (0) */
    } cases[] = {
        {"example.com", "example.com"},
        {"Example.COM", "example.com"},
        {"example.com:8443", "example.com"},
        {"example.com:", "example.com"}, /* empty port: the default (RFC 3986) */
        {"EXAMPLE.com.:80", "example.com"},
        {"example.com.", "example.com"}, /* one trailing dot dropped */
        {"example.com..", ""},
        {".example.com", ""},
        {"a..example.com", ""},
        {".", ""},
        {"", ""},
        {":80", ""},
        {"localhost", "localhost"},
        {"my_host.internal", "my_host.internal"},
        {"10.0.0.1:8080", "10.0.0.1"},
        {"xn--bcher-kva.example", "xn--bcher-kva.example"}, /* IDN: punycode as is */
        {"XN--BCHER-KVA.Example", "xn--bcher-kva.example"},
        {"b\xc3\xbc"
         "cher.example",
         ""}, /* raw UTF-8: not a name */
        {"[::1]", "[::1]"},
        {"[::1]:8443", "[::1]"},
        {"[2001:DB8::A]:80", "[2001:db8::a]"},
        {"[::ffff:10.0.0.1]", "[::ffff:10.0.0.1]"},
        {"[]", ""},
        {"[::1", ""},
        {"[::1]x", ""},
        {"[::1]:x", ""},
        {"[g::1]", ""},
        {"[example.com]", ""}, /* no ':': not an IPv6 literal */
        {"::1", ""},
        {"example.com:80:81", ""},
        {"example.com:8x", ""},
        {"example.com:123456", ""},
        {"example.com:65535", "example.com"},
        {"example.com:65536", ""},              /* not a port */
        {"example.com:99999", ""},
        {"example.com:080", ""},                /* read as 80 by some, 080 by others */
        {"example.com:0", "example.com"},
        {"[0::1]", "[::1]"},                    /* one spelling per address, as conf's */
        {"[0000:0000::0001]:80", "[::1]"},
        {"[::1%25lo]", ""},                     /* zone IDs: not a host a route names */
        {"exa mple.com", ""},
        {"example.com/", ""},
        {"user@example.com", ""},
        {"*.example.com", ""},
        {"exa%41mple.com", ""},
        {"example.com\t", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[CONF_HOST_MAX];
        memset(out, '#', sizeof out);
        size_t n = router_host(cases[i].value, strlen(cases[i].value), out, sizeof out);
        bool ok = n == strlen(cases[i].want) && (n == 0 || strcmp(out, cases[i].want) == 0);
        if (!ok)
            fprintf(stderr, "\n  host \"%s\": \"%.*s\" (%zu), want \"%s\"\n", cases[i].value,
                    (int)n, out, n, cases[i].want);
        CU_ASSERT_TRUE(ok);
    }
    /* bounded by len and cap: NUL written, never past cap */
    char out[16];
    CU_ASSERT_EQUAL(router_host("example.com:80", 7, out, sizeof out), 7);
    CU_ASSERT_STRING_EQUAL(out, "example");
    memset(out, '#', sizeof out);
    CU_ASSERT_EQUAL(router_host("example.com", 11, out, 11), 0); /* no room for the NUL */
    CU_ASSERT_EQUAL(router_host("example.com", 11, out, 12), 11);
    CU_ASSERT_EQUAL(router_host("[::1]", 5, out, 5), 0);
    CU_ASSERT_EQUAL(router_host("[::1]", 5, out, 6), 5);
    CU_ASSERT_EQUAL(router_host("a", 1, out, 0), 0);
    char big[300];
    memset(big, 'a', sizeof big);
    char wide[400];
    CU_ASSERT_EQUAL(router_host(big, sizeof big, wide, CONF_HOST_MAX), 0);
    CU_ASSERT_EQUAL(router_host(big, sizeof big, wide, sizeof wide), sizeof big);
}

struct find_case {
    const char *host; /* normalized */
    const char *path;
    const char *route; /* NULL: none */
    bool known;
};

static void check_find(const struct router *rt, const struct find_case *cases, size_t n,
                       const struct httphead *head)
{
    for (size_t i = 0; i < n; i++) {
        bool known = !cases[i].known;
        const struct conf_route *r = router_find(rt, cases[i].host, strlen(cases[i].host),
                                                 cases[i].path, strlen(cases[i].path), head,
                                                 &known);
        const char *got = r ? r->name : NULL;
        bool ok = ((got == NULL && cases[i].route == NULL) ||
                   (got && cases[i].route && strcmp(got, cases[i].route) == 0)) &&
                  known == cases[i].known;
        if (!ok)
            fprintf(stderr, "\n  %s %s: route %s known %d, want %s known %d\n", cases[i].host,
                    cases[i].path, got ? got : "(none)", known,
                    cases[i].route ? cases[i].route : "(none)", cases[i].known);
        CU_ASSERT_TRUE(ok);
        /* HOST_KNOWN may be NULL */
        CU_ASSERT_PTR_EQUAL(router_find(rt, cases[i].host, strlen(cases[i].host), cases[i].path,
                                        strlen(cases[i].path), head, NULL),
                            r);
    }
}

static void test_host_precedence(void)
{
    struct conf *c = new_conf(16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    add_hosted(c, "any-root", "/", NULL);
    add_hosted(c, "any-docs", "/docs", NULL);
    add_hosted(c, "api", "/v1", HOSTS("api.example.com"));
    add_hosted(c, "api-tasks", "/v1/tasks", HOSTS("api.example.com"));
    add_hosted(c, "wild", "/", HOSTS("*.example.com"));
    add_hosted(c, "wild-eu", "/v1", HOSTS("*.eu.example.com"));
    add_hosted(c, "multi", "/x", HOSTS("a.test", "b.test", "*.c.test"));
    add_hosted(c, "v6", "/", HOSTS("[::1]"));
    add_hosted(c, "shop", "/cart/", HOSTS("shop.example.com"));
    add_hosted(c, "both", "/b", HOSTS("both.test", "*.both.test", "both.test"));
    struct router *rt = router_new(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rt);
    static const struct find_case cases[] = {
        /* exact host, longest prefix within it */
        {"api.example.com", "/v1/tasks/7", "api-tasks", true},
        {"api.example.com", "/v1/tasks", "api-tasks", true},
        {"api.example.com", "/v1/tasksX", "api", true},
        {"api.example.com", "/v1/users", "api", true},
        {"api.example.com", "/v1", "api", true},
        /* the exact group has no such prefix: the wildcard answers, before host-less */
        {"api.example.com", "/v2", "wild", true},
        {"api.example.com", "/docs/x", "wild", true},
        /* a wildcard: one or more labels, never the bare domain */
        {"www.example.com", "/anything", "wild", true},
        {"a.b.example.com", "/", "wild", true},
        {"example.com", "/v1", "any-root", false},
        {"example.com", "/docs", "any-docs", false},
        {"xexample.com", "/", "any-root", false},
        {"example.com.evil.org", "/docs/a", "any-docs", false},
        /* the longest wildcard suffix first, then the shorter */
        {"x.eu.example.com", "/v1/q", "wild-eu", true},
        {"a.x.eu.example.com", "/v1", "wild-eu", true},
        {"x.eu.example.com", "/v2", "wild", true},
        {"eu.example.com", "/v1", "wild", true},
        /* a prefix's own trailing slash is required on any host */
        {"shop.example.com", "/cart/1", "shop", true},
        {"shop.example.com", "/cart", "wild", true},
        /* several hosts on one route */
        {"a.test", "/x", "multi", true},
        {"b.test", "/x/y", "multi", true},
        {"q.c.test", "/x", "multi", true},
        {"c.test", "/x", "any-root", false},
        /* a known host whose routes do not cover the path: host-less routes answer */
        {"a.test", "/y", "any-root", true},
        {"a.test", "/docs/1", "any-docs", true},
        {"both.test", "/b", "both", true},
        {"z.both.test", "/b/c", "both", true},
        {"both.test", "/c", "any-root", true},
        /* not normalized: still no empty label before a wildcard's suffix */
        {".example.com", "/", "any-root", false},
        {"a..example.com", "/", "any-root", false},
        {"[::1]", "/z", "v6", true},
        {"[::2]", "/z", "any-root", false},
        /* no host: host-less routes only */
        {"", "/v1", "any-root", false},
        {"", "/docs/x", "any-docs", false},
        {"other.org", "/docs", "any-docs", false},
        {"other.org", "", NULL, false},
        {"api.example.com", "", NULL, true},
        {"api.example.com", "*", NULL, true},
    };
    check_find(rt, cases, sizeof cases / sizeof cases[0], NULL);
    /* bytes past the lengths are not looked at */
    CU_ASSERT_STRING_EQUAL(
        router_find(rt, "api.example.com.x", 15, "/v1/tasks/7", 3, NULL, NULL)->name, "api");
    CU_ASSERT_STRING_EQUAL(router_find(rt, "a.testing", 6, "/x", 2, NULL, NULL)->name, "multi");
    router_free(rt);

    /* no host-less route: nothing to fall back to */
    struct conf *h = new_conf(4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    add_hosted(h, "api", "/v1", HOSTS("api.example.com"));
    add_hosted(h, "wild", "/w", HOSTS("*.example.com"));
    rt = router_new(h);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rt);
    static const struct find_case only_hosted[] = {
        {"api.example.com", "/v1/x", "api", true},
        {"api.example.com", "/w", "wild", true},
        {"api.example.com", "/v2", NULL, true},
        {"other.org", "/v1", NULL, false},
        {"", "/v1", NULL, false},
    };
    check_find(rt, only_hosted, sizeof only_hosted / sizeof only_hosted[0], NULL);
    CU_ASSERT_PTR_NULL(router_match(h, "/v1", 3)); /* router_match: host-less routes only */
    router_free(rt);
    free_conf(h);

    /* no routes at all */
    struct conf *e = new_conf(1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    rt = router_new(e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rt);
    bool known = true;
    CU_ASSERT_PTR_NULL(router_find(rt, "a.test", 6, "/", 1, NULL, &known));
    CU_ASSERT_FALSE(known);
    router_free(rt);
    router_free(NULL);
    free_conf(e);
    free_conf(c);
}

static void test_match_header(void)
{
    struct conf *c = new_conf(8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    add_hosted(c, "plain", "/api", NULL);
    set_header(add_hosted(c, "beta", "/api", NULL), "X-Beta", "1");
    set_header(add_hosted(c, "canary", "/api", NULL), "x-canary", "yes");
    set_header(add_hosted(c, "beta-v2", "/api/v2", NULL), "X-Beta", "1");
    set_header(add_hosted(c, "hosted", "/", HOSTS("h.test")), "X-Beta", "1");
    set_header(add_hosted(c, "lone", "/lone", NULL), "X-Beta", "1");
    struct router *rt = router_new(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rt);
    const struct {
        const char *const *head; /* NULL: no head at all */
        const char *host, *path, *route;
    } cases[] = {
        {NULL, "", "/api", "plain"},
        {HOSTS("Accept: */*"), "", "/api", "plain"},
        {HOSTS("X-Beta: 1"), "", "/api", "beta"},
        {HOSTS("x-beta: 1"), "", "/api/x", "beta"}, /* names in any case */
        {HOSTS("X-Beta: 2"), "", "/api", "plain"},
        {HOSTS("X-Beta: 11"), "", "/api", "plain"},
        {HOSTS("X-Beta: "), "", "/api", "plain"},
        {HOSTS("X-Canary: yes"), "", "/api", "canary"},
        {HOSTS("X-Canary: YES"), "", "/api", "plain"}, /* values exactly */
        {HOSTS("X-Canary: yes", "X-Beta: 1"), "", "/api", "beta"}, /* the first written */
        {HOSTS("X-Beta: 1", "X-Beta: 1"), "", "/api", "plain"}, /* twice: never */
        {HOSTS("X-Beta: 2", "X-Beta: 1"), "", "/api", "plain"},
        /* a longer prefix whose header does not match is skipped */
        {HOSTS("X-Beta: 1"), "", "/api/v2/x", "beta-v2"},
        {NULL, "", "/api/v2/x", "plain"},
        {HOSTS("X-Canary: yes"), "", "/api/v2", "canary"},
        /* a host group whose only route does not match: host-less routes answer */
        {HOSTS("X-Beta: 1"), "h.test", "/api", "hosted"},
        {HOSTS("X-Beta: 0"), "h.test", "/api", "plain"},
        {NULL, "h.test", "/x", NULL},
        {HOSTS("X-Beta: 1"), "", "/lone", "lone"},
        {NULL, "", "/lone", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct httphead *head = calloc(1, sizeof *head);
        CU_ASSERT_PTR_NOT_NULL_FATAL(head);
        make_head(head, cases[i].head);
        const struct conf_route *r = router_find(rt, cases[i].host, strlen(cases[i].host),
                                                 cases[i].path, strlen(cases[i].path),
                                                 cases[i].head ? head : NULL, NULL);
        const char *got = r ? r->name : NULL;
        bool ok = (got == NULL && cases[i].route == NULL) ||
                  (got && cases[i].route && strcmp(got, cases[i].route) == 0);
        if (!ok)
            fprintf(stderr, "\n  case %zu %s%s: route %s, want %s\n", i, cases[i].host,
                    cases[i].path, got ? got : "(none)",
                    cases[i].route ? cases[i].route : "(none)");
        CU_ASSERT_TRUE(ok);
        free(head);
    }
    /* router_match never picks a match_header route */
    CU_ASSERT_STRING_EQUAL(match(c, "/api/v2"), "plain");
    CU_ASSERT_PTR_NULL(match(c, "/lone"));
    router_free(rt);
    free_conf(c);
}

static void test_find_ignore_case(void)
{
    struct conf *c = new_conf(8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    add_hosted(c, "login", "/Api/Login", HOSTS("app.test"));
    add_hosted(c, "docs", "/docs/", NULL);
    add_hosted(c, "all", "/", NULL);
    add_hosted(c, "LOGIN2", "/API/LOGIN", HOSTS("app.test")); /* the same key in any case */
    static const struct find_case exact[] = {
        {"app.test", "/Api/Login", "login", true},
        {"app.test", "/api/login", "all", true},
        {"app.test", "/API/LOGIN/x", "LOGIN2", true},
        {"app.test", "/DOCS/a", "all", true},
        {"", "/docs/a", "docs", false},
    };
    static const struct find_case any[] = {
        {"app.test", "/Api/Login", "login", true},
        {"app.test", "/api/login", "login", true},
        {"app.test", "/API/LOGIN/x", "login", true}, /* written first */
        {"app.test", "/api/loginx", "all", true},
        {"app.test", "/DOCS/a", "docs", true},
        {"", "/Docs/", "docs", false},
        {"", "/Api/Login", "all", false},
    };
    struct router *rt = router_new(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rt);
    check_find(rt, exact, sizeof exact / sizeof exact[0], NULL);
    router_free(rt);
    c->routes_ignore_case = true;
    rt = router_new(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rt);
    check_find(rt, any, sizeof any / sizeof any[0], NULL);
    router_free(rt);
    free_conf(c);
}

/* ---- a thousand routes over a hundred hosts, against a brute-force reference ---- */

static uint64_t rng_state;

static unsigned rnd(unsigned n)
{
    /* xorshift64*: the same sequence on every run */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (unsigned)((rng_state * 0x2545f4914f6cdd1dULL) >> 33) % n;
}

#define BIG_ROUTES 1000
#define BIG_HOSTS 100 /* 80 exact names, 20 wildcards */

static const char *const big_segments[] = {"api", "v1", "users", "a", "Tasks", "x"};
#define N_SEGMENTS (sizeof big_segments / sizeof big_segments[0])

static void random_path(char *out, size_t cap, unsigned min_depth, unsigned max_depth,
                        bool mixed_case)
{
    size_t o = 0;
    unsigned depth = min_depth + rnd(max_depth - min_depth + 1);
    out[0] = '\0';
    for (unsigned d = 0; d < depth; d++)
        o += (size_t)snprintf(out + o, cap - o, "/%s", big_segments[rnd(N_SEGMENTS)]);
    if (depth == 0 || rnd(4) == 0)
        o += (size_t)snprintf(out + o, cap - o, "/");
    else if (rnd(8) == 0)
        o += (size_t)snprintf(out + o, cap - o, "~"); /* not a segment boundary */
    for (size_t i = 0; mixed_case && i < o; i++) {
        if (rnd(3) == 0 && out[i] >= 'a' && out[i] <= 'z')
            out[i] = (char)(out[i] - 32);
    }
}

/* Host H of the table: exact names, wildcards under example.com, and
 * *.example.com itself above them all. */
static void host_name(char *out, size_t cap, unsigned h)
{
    if (h < 80)
        snprintf(out, cap, "h%u.example.com", h);
    else if (h < BIG_HOSTS - 1)
        snprintf(out, cap, "*.w%u.example.com", h - 80);
    else
        snprintf(out, cap, "*.example.com");
}

/* How specifically ROUTE names HOST: -1 not at all, 0 no hosts (any host),
 * else the longest wildcard suffix + 1, or above any for an exact name. */
static int ref_rank(const struct conf_route *r, const char *host)
{
    if (r->n_hosts == 0)
        return 0;
    int best = -1;
    size_t hl = strlen(host);
    for (size_t i = 0; i < r->n_hosts; i++) {
        const char *n = r->hosts[i];
        if (hl > 0 && strcmp(n, host) == 0)
            return 1000;
        if (n[0] == '*') {
            size_t sl = strlen(n) - 1; /* ".suffix" */
            if (hl > sl && strcmp(host + hl - sl, n + 1) == 0 && (int)sl > best)
                best = (int)sl;
        }
    }
    return best;
}

static bool ref_prefix(const struct conf_route *r, const char *path, bool ignore_case)
{
    size_t pl = r->prefix_len, len = strlen(path);
    if (pl > len)
        return false;
    for (size_t i = 0; i < pl; i++) {
        char a = r->prefix[i], b = path[i];
        if (ignore_case && a >= 'A' && a <= 'Z')
            a = (char)(a + 32);
        if (ignore_case && b >= 'A' && b <= 'Z')
            b = (char)(b + 32);
        if (a != b)
            return false;
    }
    return pl == len || path[pl - 1] == '/' || path[pl] == '/';
}

static bool ref_header(const struct conf_route *r, const struct httphead *head)
{
    if (!head)
        return false;
    size_t found = 0;
    bool same = false;
    for (size_t i = 0; i < head->n; i++) {
        const struct httphead_field *f = &head->f[i];
        if (f->name_len == strlen(r->match_header) &&
            strncasecmp(f->name, r->match_header, f->name_len) == 0) {
            found++;
            same = f->value_len == strlen(r->match_value) &&
                   memcmp(f->value, r->match_value, f->value_len) == 0;
        }
    }
    return found == 1 && same;
}

/* The best route by (host rank, prefix length, has match_header), the first written on ties. */
static const struct conf_route *ref_find(const struct conf *c, const char *host, const char *path,
                                         const struct httphead *head, bool *known)
{
    const struct conf_route *best = NULL;
    int best_rank = -1;
    *known = false;
    for (size_t i = 0; i < c->n_routes; i++) {
        const struct conf_route *r = &c->routes[i];
        int rank = ref_rank(r, host);
        if (rank > 0)
            *known = true;
        if (rank < 0 || !ref_prefix(r, path, c->routes_ignore_case))
            continue;
        bool hdr = r->match_header[0] != '\0';
        if (hdr && !ref_header(r, head))
            continue;
        if (best) {
            bool best_hdr = best->match_header[0] != '\0';
            if (rank != best_rank                   ? rank < best_rank
                : r->prefix_len != best->prefix_len ? r->prefix_len < best->prefix_len
                                                    : !(hdr && !best_hdr))
                continue;
        }
        best = r;
        best_rank = rank;
    }
    return best;
}

static void test_big_table(void)
{
    struct conf *c = new_conf(BIG_ROUTES);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    rng_state = 0x9e3779b97f4a7c15ULL;
    for (unsigned i = 0; i < BIG_ROUTES; i++) {
        char name[32], prefix[128];
        snprintf(name, sizeof name, "r%u", i);
        /* "/" only for two hosts: most lookups could find nothing */
        random_path(prefix, sizeof prefix, i == 0 || i == 50 ? 0 : 1, i == 0 || i == 50 ? 0 : 3,
                    true);
        if (prefix[strlen(prefix) - 1] == '~')
            prefix[strlen(prefix) - 1] = '\0';
        struct conf_route *r = add_route(c, name, prefix, false, 0);
        /* every host gets routes; one in ten routes has none, a few have several */
        unsigned kind = rnd(10);
        unsigned n = kind == 0 ? 0 : kind == 1 ? 2 + rnd(3) : 1;
        if (i < BIG_HOSTS)
            n = n ? n : 1;
        for (unsigned k = 0; k < n; k++)
            host_name(r->hosts[r->n_hosts++], CONF_HOST_MAX,
                      k == 0 && i < BIG_HOSTS ? i : rnd(BIG_HOSTS));
        if (rnd(8) == 0)
            set_header(r, rnd(2) ? "X-T" : "X-U", rnd(2) ? "1" : "2");
    }
    static const char *const head_lines[][3] = {
        {NULL},           {"X-T: 1", NULL},           {"x-t: 2", NULL},
        {"X-U: 1", NULL}, {"X-T: 1", "X-T: 1", NULL}, {"X-T: 1", "X-U: 2", NULL},
        {"X-T: 3", NULL},
    };
    struct httphead *head = calloc(1, sizeof *head);
    CU_ASSERT_PTR_NOT_NULL_FATAL(head);
    size_t checked = 0, found = 0, hosted = 0, by_header = 0, fallback = 0, failures = 0;
    for (int pass = 0; pass < 2; pass++) {
        c->routes_ignore_case = pass == 1;
        struct router *rt = router_new(c);
        CU_ASSERT_PTR_NOT_NULL_FATAL(rt);
        for (unsigned q = 0; q < 4000; q++) {
            char host[128], path[256];
            unsigned kind = rnd(6), h = rnd(BIG_HOSTS);
            if (kind == 0) {
                host[0] = '\0';
            } else if (kind == 1) {
                snprintf(host, sizeof host, "h%u.example.org", rnd(BIG_HOSTS));
            } else if (h < 80) {
                host_name(host, sizeof host, h);
            } else if (kind == 2) {
                snprintf(host, sizeof host, "w%u.example.com", h - 80); /* the bare domain */
            } else {
                snprintf(host, sizeof host, "%s%s.w%u.example.com", rnd(2) ? "a." : "",
                         rnd(2) ? "b" : "c", h - 80);
            }
            random_path(path, sizeof path, 0, 4, pass == 1);
            const char *const *lines = head_lines[rnd(sizeof head_lines / sizeof head_lines[0])];
            make_head(head, lines);
            const struct httphead *hp = rnd(10) == 0 ? NULL : head;
            bool want_known, known;
            const struct conf_route *want = ref_find(c, host, path, hp, &want_known);
            const struct conf_route *got = router_find(rt, host, strlen(host), path, strlen(path),
                                                       hp, &known);
            checked++;
            found += want != NULL;
            hosted += want && want->n_hosts > 0;
            by_header += want && want->match_header[0];
            fallback += want && want_known && want->n_hosts == 0;
            if (got != want || known != want_known) {
                if (failures++ < 10)
                    fprintf(stderr, "\n  %s %s: route %s known %d, want %s known %d\n", host, path,
                            got ? got->name : "(none)", known, want ? want->name : "(none)",
                            want_known);
            }
            if (!host[0] && !hp) /* router_match is the same choice without host and head */
                CU_ASSERT_PTR_EQUAL(router_match(c, path, strlen(path)), want);
        }
        router_free(rt);
    }
    if (getenv("ROUTER_STATS"))
        fprintf(stderr,
                "\n  %zu lookups, %zu routed, %zu to hosted routes, %zu by header, "
                "%zu of a known host to a host-less route\n",
                checked, found, hosted, by_header, fallback);
    CU_ASSERT_EQUAL(failures, 0);
    /* the draw reaches every kind of answer */
    CU_ASSERT_TRUE(found > checked / 2);
    CU_ASSERT_TRUE(checked - found > checked / 20);
    CU_ASSERT_TRUE(hosted > checked / 6);
    CU_ASSERT_TRUE(found - hosted > checked / 10);
    CU_ASSERT_TRUE(by_header > checked / 100);
    CU_ASSERT_TRUE(fallback > checked / 20);
    free(head);
    free_conf(c);
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
    CU_add_test(s, "host normalization", test_host_normalize);
    CU_add_test(s, "host groups: exact, wildcard, none, fallback", test_host_precedence);
    CU_add_test(s, "match_header variants", test_match_header);
    CU_add_test(s, "index in any case", test_find_ignore_case);
    CU_add_test(s, "1,000 routes over 100 hosts against a reference", test_big_table);
}
