/*
 * test_policy: a route's overrides over the globals, one row per field:
 * unset on the route, the global (or the upstream's) applies; set, the
 * route's, even when it equals the default. Plus code_map and CORS choice.
 */
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "policy.h"

void test_register(void);

static struct conf *conf;
static struct conf_route *route;

static int init(void)
{
    conf = calloc(1, sizeof *conf);
    route = calloc(1, sizeof *route);
    if (!conf || !route)
        return -1;
    conf->profile = ENVELOPE_NESTED;
    conf->expose_upstream_5xx = false;
    conf->max_error_body = 65536;
    conf->max_body_size = 1 << 20;
    conf->client_timeout_ms = 30000;
    conf->n_upstreams = 1;
    conf->upstreams[0].timeout_ms = 30000;
    conf->upstreams[0].connect_timeout_ms = 2000;
    conf->routes = route;
    conf->n_routes = 1;
    return 0;
}

static int clean(void)
{
    free(conf);
    free(route);
    return 0;
}

static void test_inherit(void)
{
    struct policy p;
    memset(route, 0, sizeof *route);
    policy_for(conf, route, &p);
    CU_ASSERT_EQUAL(p.profile, ENVELOPE_NESTED);
    CU_ASSERT_FALSE(p.expose_upstream_5xx);
    CU_ASSERT_EQUAL(p.max_error_body, 65536);
    CU_ASSERT_EQUAL(p.max_body_size, 1u << 20);
    CU_ASSERT_EQUAL(p.client_timeout_ms, 30000);
    CU_ASSERT_EQUAL(p.timeout_ms, 30000);
    CU_ASSERT_EQUAL(p.connect_timeout_ms, 2000);
    CU_ASSERT_PTR_NULL(p.cors);
    CU_ASSERT_STRING_EQUAL(policy_code(&p, 404), envelope_code_for_status(404));
    /* not routed: the globals, no upstream deadline */
    policy_for(conf, NULL, &p);
    CU_ASSERT_EQUAL(p.max_body_size, 1u << 20);
    CU_ASSERT_EQUAL(p.timeout_ms, 0);
    CU_ASSERT_EQUAL(p.n_codes, 0);
}

static void test_override(void)
{
    struct policy p;
    memset(route, 0, sizeof *route);
    route->has_profile = true;
    route->profile = ENVELOPE_PROBLEM;
    route->has_expose_upstream_5xx = true;
    route->expose_upstream_5xx = true;
    route->has_max_error_body = true;
    route->max_error_body = 100;
    route->has_max_body_size = true;
    route->max_body_size = 10;
    route->has_client_timeout = true;
    route->client_timeout_ms = 1000;
    route->has_timeout = true;
    route->timeout_ms = 500;
    route->has_connect_timeout = true;
    route->connect_timeout_ms = 2000;  /* equal to the upstream's: still the route's */
    policy_for(conf, route, &p);
    CU_ASSERT_EQUAL(p.profile, ENVELOPE_PROBLEM);
    CU_ASSERT_TRUE(p.expose_upstream_5xx);
    CU_ASSERT_EQUAL(p.max_error_body, 100);
    CU_ASSERT_EQUAL(p.max_body_size, 10);
    CU_ASSERT_EQUAL(p.client_timeout_ms, 1000);
    CU_ASSERT_EQUAL(p.timeout_ms, 500);
    conf->upstreams[0].connect_timeout_ms = 9000;
    policy_for(conf, route, &p);
    CU_ASSERT_EQUAL(p.connect_timeout_ms, 2000);
    conf->upstreams[0].connect_timeout_ms = 2000;
}

static void test_codes_and_cors(void)
{
    static const struct {
        int status;
        const char *want;   /* NULL: the built-in code */
    } rows[] = {
        {404, "TASK_NOT_FOUND"},
        {409, "CONFLICT_HERE"},
        {400, NULL},
        {500, NULL},
    };
    struct policy p;
    memset(route, 0, sizeof *route);
    route->code_map[0].status = 404;
    strcpy(route->code_map[0].code, "TASK_NOT_FOUND");
    route->code_map[1].status = 409;
    strcpy(route->code_map[1].code, "CONFLICT_HERE");
    route->n_code_map = 2;
    policy_for(conf, route, &p);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        CU_ASSERT_STRING_EQUAL(policy_code(&p, rows[i].status),
                               rows[i].want ? rows[i].want : envelope_code_for_status(rows[i].status));
    /* CORS: the route's replaces [cors]; without either, none */
    conf->cors.set = true;
    policy_for(conf, route, &p);
    CU_ASSERT_PTR_EQUAL(p.cors, &conf->cors);
    route->cors.set = true;
    policy_for(conf, route, &p);
    CU_ASSERT_PTR_EQUAL(p.cors, &route->cors);
    conf->cors.set = false;
    route->cors.set = false;
    policy_for(conf, route, &p);
    CU_ASSERT_PTR_NULL(p.cors);
}

void test_register(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"unset overrides inherit", test_inherit},
        {"set overrides win", test_override},
        {"code_map and CORS", test_codes_and_cors},
    };
    CU_pSuite s = CU_add_suite("policy", init, clean);
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        CU_add_test(s, tests[i].name, tests[i].fn);
}
