/*
 * test_envelope: the six profiles rendered for 404, 422 (field errors), 429
 * and 500, compared byte for byte and, structurally, key for key and type
 * for type with the envelope each seed documents; the status tables.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <yajl/yajl_tree.h>

#include "envelope.h"

void test_register(void);

static const struct envelope_field fields_422[] = {
    {"title", "Title is required", "missing"},
    {"due_date", "Due date must be in the future", "invalid_value"},
};

static struct envelope env_404(void)
{
    return (struct envelope){.status = 404, .message = "Task not found", .request_id = "req_abc123"};
}

static struct envelope env_422(void)
{
    return (struct envelope){.status = 422, .code = "VALIDATION_ERROR",
                             .message = "Request validation failed", .request_id = "req_abc123",
                             .fields = fields_422, .n_fields = 2};
}

static struct envelope env_429(void)
{
    return (struct envelope){.status = 429, .message = "Too many requests. Please try again later.",
                             .request_id = "req_abc123",
                             .limit = {.set = true, .retry_after_s = 60, .limit = 100,
                                       .window_s = 60}};
}

static struct envelope env_500(void)
{
    return (struct envelope){.status = 500, .message = "An unexpected error occurred",
                             .request_id = "req_abc123"};
}

/* Render and return a NUL-terminated copy (the test frees it). */
static char *render(const struct envelope *e, enum envelope_profile p)
{
    char *body = NULL;
    size_t len = 0;
    if (envelope_render(e, p, &body, &len) != 0)
        return NULL;
    char *s = malloc(len + 1);
    if (s) {
        memcpy(s, body, len);
        s[len] = '\0';
    }
    free(body);
    return s;
}

static void check_exact(const struct envelope *e, enum envelope_profile p, const char *want)
{
    char *got = render(e, p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "\n%s: got  %s\n%s: want %s\n", envelope_profile_name(p), got,
                envelope_profile_name(p), want);
    CU_ASSERT_STRING_EQUAL(got, want);
    free(got);
}

/*
 * Structural comparison with a seed: every object has exactly the seed's
 * keys (plus the names in EXTRA, a NULL-terminated list allowed anywhere),
 * values of the same JSON type, arrays compared element-wise against the
 * seed's first element. Returns true when the shapes match.
 */
static bool is_extra(const char *k, const char *const *extra)
{
    for (; extra && *extra; extra++)
        if (strcmp(k, *extra) == 0)
            return true;
    return false;
}

static bool same_shape(yajl_val seed, yajl_val got, const char *const *extra, const char *path)
{
    if (seed->type != got->type) {
        fprintf(stderr, "\n%s: type %d != seed %d\n", path, got->type, seed->type);
        return false;
    }
    if (YAJL_IS_OBJECT(seed)) {
        for (size_t i = 0; i < seed->u.object.len; i++) {
            const char *k = seed->u.object.keys[i];
            yajl_val gv = NULL;
            for (size_t j = 0; j < got->u.object.len; j++)
                if (strcmp(got->u.object.keys[j], k) == 0)
                    gv = got->u.object.values[j];
            if (!gv) {
                fprintf(stderr, "\n%s: missing key %s\n", path, k);
                return false;
            }
            char sub[256];
            snprintf(sub, sizeof sub, "%s.%s", path, k);
            if (!same_shape(seed->u.object.values[i], gv, extra, sub))
                return false;
        }
        for (size_t j = 0; j < got->u.object.len; j++) {
            const char *k = got->u.object.keys[j];
            bool in_seed = false;
            for (size_t i = 0; i < seed->u.object.len; i++)
                if (strcmp(seed->u.object.keys[i], k) == 0)
                    in_seed = true;
            if (!in_seed && !is_extra(k, extra)) {
                fprintf(stderr, "\n%s: unexpected key %s\n", path, k);
                return false;
            }
        }
    } else if (YAJL_IS_ARRAY(seed)) {
        if (seed->u.array.len > 0)
            for (size_t j = 0; j < got->u.array.len; j++)
                if (!same_shape(seed->u.array.values[0], got->u.array.values[j], extra, path))
                    return false;
    }
    return true;
}

static void check_shape(const struct envelope *e, enum envelope_profile p, const char *seed_json,
                        const char *const *extra)
{
    char err[256];
    char *got = render(e, p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    yajl_val seed = yajl_tree_parse(seed_json, err, sizeof err);
    yajl_val out = yajl_tree_parse(got, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(seed);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    bool ok = same_shape(seed, out, extra, envelope_profile_name(p));
    if (!ok)
        fprintf(stderr, "  output: %s\n", got);
    CU_ASSERT_TRUE(ok);
    yajl_tree_free(seed);
    yajl_tree_free(out);
    free(got);
}

/* ---- exact bodies, every profile ------------------------------------- */

static void test_nested_exact(void)
{
    struct envelope e = env_404();
    check_exact(&e, ENVELOPE_NESTED,
                "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"Task not found\","
                "\"details\":{\"request_id\":\"req_abc123\"}}}");
    e = env_422();
    check_exact(&e, ENVELOPE_NESTED,
                "{\"error\":{\"code\":\"VALIDATION_ERROR\",\"message\":\"Request validation "
                "failed\",\"details\":{\"errors\":[{\"field\":\"title\",\"message\":\"Title is "
                "required\",\"type\":\"missing\"},{\"field\":\"due_date\",\"message\":\"Due date "
                "must be in the future\",\"type\":\"invalid_value\"}],\"request_id\":"
                "\"req_abc123\"}}}");
    e = env_429();
    check_exact(&e, ENVELOPE_NESTED,
                "{\"error\":{\"code\":\"RATE_LIMITED\",\"message\":\"Too many requests. Please "
                "try again later.\",\"details\":{\"retry_after\":60,\"limit\":100,\"window\":"
                "\"minute\",\"request_id\":\"req_abc123\"}}}");
    e = env_500();
    check_exact(&e, ENVELOPE_NESTED,
                "{\"error\":{\"code\":\"INTERNAL_ERROR\",\"message\":\"An unexpected error "
                "occurred\",\"details\":{\"request_id\":\"req_abc123\"}}}");
}

static void test_flat_exact(void)
{
    struct envelope e = env_404();
    check_exact(&e, ENVELOPE_FLAT,
                "{\"error\":\"Task not found\",\"code\":\"NOT_FOUND\",\"details\":"
                "{\"request_id\":\"req_abc123\"}}");
    e = env_422();
    check_exact(&e, ENVELOPE_FLAT,
                "{\"error\":\"Request validation failed\",\"code\":\"VALIDATION_ERROR\","
                "\"details\":{\"title\":\"Title is required\",\"due_date\":\"Due date must be in "
                "the future\",\"request_id\":\"req_abc123\"}}");
    e = env_429();
    check_exact(&e, ENVELOPE_FLAT,
                "{\"error\":\"Too many requests. Please try again later.\",\"code\":"
                "\"RATE_LIMITED\",\"details\":{\"retry_after\":60,\"limit\":100,\"window\":"
                "\"minute\",\"request_id\":\"req_abc123\"}}");
    e = env_500();
    check_exact(&e, ENVELOPE_FLAT,
                "{\"error\":\"An unexpected error occurred\",\"code\":\"INTERNAL_ERROR\","
                "\"details\":{\"request_id\":\"req_abc123\"}}");
}

static void test_simple_exact(void)
{
    struct envelope e = env_404();
    check_exact(&e, ENVELOPE_SIMPLE, "{\"error\":\"Task not found\"}");
    e = env_422();
    check_exact(&e, ENVELOPE_SIMPLE,
                "{\"error\":\"Request validation failed\",\"errors\":{\"title\":[\"Title is "
                "required\"],\"due_date\":[\"Due date must be in the future\"]}}");
    e = env_429();
    check_exact(&e, ENVELOPE_SIMPLE, "{\"error\":\"Too many requests. Please try again later.\"}");
    e = env_500();
    check_exact(&e, ENVELOPE_SIMPLE, "{\"error\":\"An unexpected error occurred\"}");
}

static void test_status_exact(void)
{
    struct envelope e = env_404();
    check_exact(&e, ENVELOPE_STATUS, "{\"code\":404,\"message\":\"Task not found\"}");
    e = env_422();
    check_exact(&e, ENVELOPE_STATUS,
                "{\"code\":422,\"message\":\"Unprocessable Entity\",\"cause\":\"Request "
                "validation failed\",\"errors\":[{\"resource\":\"Request\",\"field\":\"title\","
                "\"code\":\"missing\",\"message\":\"Title is required\"},{\"resource\":"
                "\"Request\",\"field\":\"due_date\",\"code\":\"invalid_value\",\"message\":\"Due "
                "date must be in the future\"}]}");
    e = env_429();
    check_exact(&e, ENVELOPE_STATUS,
                "{\"code\":429,\"message\":\"Too many requests. Please try again later.\"}");
    e = env_500();
    check_exact(&e, ENVELOPE_STATUS, "{\"code\":500,\"message\":\"An unexpected error occurred\"}");
}

static void test_i18n_exact(void)
{
    struct envelope e = env_404();
    check_exact(&e, ENVELOPE_I18N,
                "{\"key\":\"api-errors.notFound\",\"params\":{\"request_id\":\"req_abc123\"},"
                "\"fallbackMessage\":\"Task not found\"}");
    e = env_422();
    check_exact(&e, ENVELOPE_I18N,
                "{\"key\":\"api-errors.validationError\",\"params\":{\"errors\":[{\"field\":"
                "\"title\",\"message\":\"Title is required\",\"type\":\"missing\"},{\"field\":"
                "\"due_date\",\"message\":\"Due date must be in the future\",\"type\":"
                "\"invalid_value\"}],\"request_id\":\"req_abc123\"},\"fallbackMessage\":"
                "\"Request validation failed\"}");
    e = env_429();
    check_exact(&e, ENVELOPE_I18N,
                "{\"key\":\"api-errors.rateLimited\",\"params\":{\"retry_after\":60,\"limit\":100,"
                "\"window\":\"minute\",\"request_id\":\"req_abc123\"},\"fallbackMessage\":\"Too "
                "many requests. Please try again later.\"}");
    e = env_500();
    check_exact(&e, ENVELOPE_I18N,
                "{\"key\":\"api-errors.internalError\",\"params\":{\"request_id\":\"req_abc123\"},"
                "\"fallbackMessage\":\"An unexpected error occurred\"}");
}

static void test_problem_exact(void)
{
    struct envelope e = env_404();
    check_exact(&e, ENVELOPE_PROBLEM,
                "{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404,\"detail\":"
                "\"Task not found\",\"code\":\"NOT_FOUND\",\"request_id\":\"req_abc123\"}");
    e = env_422();
    check_exact(&e, ENVELOPE_PROBLEM,
                "{\"type\":\"about:blank\",\"title\":\"Unprocessable Entity\",\"status\":422,"
                "\"detail\":\"Request validation failed\",\"code\":\"VALIDATION_ERROR\","
                "\"request_id\":\"req_abc123\",\"errors\":[{\"field\":\"title\",\"message\":"
                "\"Title is required\"},{\"field\":\"due_date\",\"message\":\"Due date must be in "
                "the future\"}]}");
    e = env_429();
    check_exact(&e, ENVELOPE_PROBLEM,
                "{\"type\":\"about:blank\",\"title\":\"Too Many Requests\",\"status\":429,"
                "\"detail\":\"Too many requests. Please try again later.\",\"code\":"
                "\"RATE_LIMITED\",\"request_id\":\"req_abc123\",\"retry_after\":60,\"limit\":100,"
                "\"window\":\"minute\"}");
    e = env_500();
    check_exact(&e, ENVELOPE_PROBLEM,
                "{\"type\":\"about:blank\",\"title\":\"Internal Server Error\",\"status\":500,"
                "\"detail\":\"An unexpected error occurred\",\"code\":\"INTERNAL_ERROR\","
                "\"request_id\":\"req_abc123\"}");
}

/* ---- shapes, key for key against the seed documents ---------------------- */

static const char *const rid_only[] = {"request_id", NULL};
static const char *const none[] = {NULL};

static void test_seed_004_nested(void)
{
    struct envelope e = env_404();
    /* docs/envelope.md's 404 example, seed 004's 500 example. */
    check_shape(&e, ENVELOPE_NESTED,
                "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"Task not found\","
                "\"details\":{\"request_id\":\"x\"}}}", none);
    e = env_500();
    check_shape(&e, ENVELOPE_NESTED,
                "{\"error\":{\"code\":\"INTERNAL_ERROR\",\"message\":\"An unexpected error "
                "occurred\",\"details\":{\"request_id\":\"req_abc123\"}}}", none);
    e = env_422();
    check_shape(&e, ENVELOPE_NESTED,
                "{\"error\":{\"code\":\"VALIDATION_ERROR\",\"message\":\"Request validation "
                "failed\",\"details\":{\"errors\":[{\"field\":\"title\",\"message\":\"Title is "
                "required\",\"type\":\"missing\"},{\"field\":\"due_date\",\"message\":\"Due date "
                "must be in the future\",\"type\":\"invalid_value\"}]}}}", rid_only);
    e = env_429();
    check_shape(&e, ENVELOPE_NESTED,
                "{\"error\":{\"code\":\"RATE_LIMITED\",\"message\":\"Too many requests. Please "
                "try again later.\",\"details\":{\"retry_after\":60,\"limit\":100,\"window\":"
                "\"minute\"}}}", rid_only);
}

static void test_seed_001_flat(void)
{
    static const struct envelope_field f[] = {
        {"title", "Required field is missing", NULL},
        {"status", "Must be one of: open, in_progress, addressed", NULL},
    };
    struct envelope e = {.status = 422, .message = "Validation failed", .request_id = "r",
                         .fields = f, .n_fields = 2};
    check_shape(&e, ENVELOPE_FLAT,
                "{\"error\":\"Validation failed\",\"code\":\"VALIDATION_ERROR\",\"details\":{"
                "\"title\":\"Required field is missing\",\"status\":\"Must be one of: open, "
                "in_progress, addressed\"}}", rid_only);
    char *s = render(&e, ENVELOPE_FLAT);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"code\":\"VALIDATION_ERROR\""));
    free(s);
    e = env_404();
    check_shape(&e, ENVELOPE_FLAT,
                "{\"error\":\"Task not found\",\"code\":\"NOT_FOUND\",\"details\":{\"request_id\":"
                "\"x\"}}", none);
}

static void test_seed_000_simple(void)
{
    static const struct envelope_field f[] = {
        {"title", "The title field is required", NULL},
        {"priority", "The priority must be one of: low, medium, high, urgent", NULL},
    };
    struct envelope e = {.status = 422, .message = "Validation failed", .request_id = "r",
                         .fields = f, .n_fields = 2};
    check_exact(&e, ENVELOPE_SIMPLE,
                "{\"error\":\"Validation failed\",\"errors\":{\"title\":[\"The title field is "
                "required\"],\"priority\":[\"The priority must be one of: low, medium, high, "
                "urgent\"]}}");
    e = env_429();
    e.message = "Rate limit exceeded. Try again later.";
    check_shape(&e, ENVELOPE_SIMPLE, "{\"error\":\"Rate limit exceeded. Try again later.\"}", none);
}

static void test_seed_002_status(void)
{
    static const struct envelope_field f[] = {{"title", "Title is required", "missing_field"}};
    struct envelope e = {.status = 422, .message = "Validation failed", .request_id = "r",
                         .fields = f, .n_fields = 1};
    static const char *const msg_extra[] = {"message", NULL};
    check_shape(&e, ENVELOPE_STATUS,
                "{\"code\":422,\"message\":\"Unprocessable entity\",\"cause\":\"Validation "
                "failed\",\"errors\":[{\"resource\":\"Issue\",\"field\":\"title\",\"code\":"
                "\"missing_field\"}]}", msg_extra);
    char *s = render(&e, ENVELOPE_STATUS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"code\":\"missing_field\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"cause\":\"Validation failed\""));
    free(s);
    e = env_429();
    e.message = "You have exceeded your number of requests. Please try again later";
    check_shape(&e, ENVELOPE_STATUS,
                "{\"code\":429,\"message\":\"You have exceeded your number of requests. Please "
                "try again later\"}", none);
}

static void test_seed_003_i18n(void)
{
    struct envelope e = {.status = 404, .code = "TICKET_NOT_FOUND", .message = "Ticket not found.",
                         .request_id = "r"};
    check_exact(&e, ENVELOPE_I18N,
                "{\"key\":\"api-errors.ticketNotFound\",\"params\":{\"request_id\":\"r\"},"
                "\"fallbackMessage\":\"Ticket not found.\"}");
    check_shape(&e, ENVELOPE_I18N,
                "{\"key\":\"api-errors.ticketNotFound\",\"params\":{},\"fallbackMessage\":"
                "\"Ticket not found.\"}", rid_only);
}

static void test_problem_rfc9457(void)
{
    struct envelope e = env_404();
    check_shape(&e, ENVELOPE_PROBLEM,
                "{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404,\"detail\":"
                "\"Task not found\",\"code\":\"NOT_FOUND\",\"request_id\":\"x\"}", none);
    CU_ASSERT_STRING_EQUAL(envelope_content_type(ENVELOPE_PROBLEM), "application/problem+json");
}

/* ---- defaults and edges --------------------------------------------------- */

static void test_defaults(void)
{
    struct envelope e = {.status = 403, .request_id = "r"};
    check_exact(&e, ENVELOPE_NESTED,
                "{\"error\":{\"code\":\"FORBIDDEN\",\"message\":\"Forbidden\",\"details\":"
                "{\"request_id\":\"r\"}}}");
    e.status = 418;
    check_exact(&e, ENVELOPE_FLAT,
                "{\"error\":\"I'm a teapot\",\"code\":\"CLIENT_ERROR\",\"details\":"
                "{\"request_id\":\"r\"}}");
    e.status = 599;
    e.message = "";
    check_exact(&e, ENVELOPE_PROBLEM,
                "{\"type\":\"about:blank\",\"title\":\"Server Error\",\"status\":599,\"detail\":"
                "\"Server Error\",\"code\":\"INTERNAL_ERROR\",\"request_id\":\"r\"}");
    /* n_fields without fields: rendered as no field errors */
    struct envelope nf = {.status = 422, .request_id = "r", .n_fields = 3};
    check_exact(&nf, ENVELOPE_SIMPLE, "{\"error\":\"Unprocessable Entity\"}");
    e.request_id = NULL;
    e.status = 404;
    check_exact(&e, ENVELOPE_I18N,
                "{\"key\":\"api-errors.notFound\",\"params\":{},\"fallbackMessage\":\"Not Found\"}");
}

static void test_windows(void)
{
    static const struct { long s; const char *want; } t[] = {
        {1, "second"}, {60, "minute"}, {3600, "hour"}, {86400, "day"},
        {900, "15 minutes"}, {7200, "2 hours"}, {30, "30 seconds"}, {90, "90 seconds"},
        {172800, "2 days"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct envelope e = {.status = 429, .request_id = "r",
                             .limit = {.set = true, .retry_after_s = 5, .limit = 10,
                                       .window_s = t[i].s}};
        char *s = render(&e, ENVELOPE_NESTED);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        char want[64];
        snprintf(want, sizeof want, "\"window\":\"%s\"", t[i].want);
        CU_ASSERT_PTR_NOT_NULL(strstr(s, want));
        free(s);
    }
    /* Only Retry-After known (an upstream 429): no limit, no window. */
    struct envelope e = {.status = 429, .request_id = "r",
                         .limit = {.set = true, .retry_after_s = 17}};
    check_exact(&e, ENVELOPE_NESTED,
                "{\"error\":{\"code\":\"RATE_LIMITED\",\"message\":\"Too Many Requests\","
                "\"details\":{\"retry_after\":17,\"request_id\":\"r\"}}}");
}

static void test_utf8_repair(void)
{
    struct envelope e = {.status = 400, .message = "bad \xff\xfe byte \xc3\xa9 \xed\xa0\x80",
                         .request_id = "r\"\\\n"};
    check_exact(&e, ENVELOPE_SIMPLE,
                "{\"error\":\"bad \xef\xbf\xbd\xef\xbf\xbd byte \xc3\xa9 "
                "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"}");
    check_exact(&e, ENVELOPE_PROBLEM,
                "{\"type\":\"about:blank\",\"title\":\"Bad Request\",\"status\":400,\"detail\":"
                "\"bad \xef\xbf\xbd\xef\xbf\xbd byte \xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\","
                "\"code\":\"BAD_REQUEST\",\"request_id\":\"r\\\"\\\\\\n\"}");
}

static void test_repeated_fields(void)
{
    static const struct envelope_field f[] = {
        {"title", "is required", NULL},
        {"email", "is invalid", NULL},
        {"title", "is too short", NULL},
        {NULL, NULL, NULL},
    };
    struct envelope e = {.status = 422, .message = "Validation failed", .request_id = "r",
                         .fields = f, .n_fields = 4};
    check_exact(&e, ENVELOPE_SIMPLE,
                "{\"error\":\"Validation failed\",\"errors\":{\"title\":[\"is required\",\"is too "
                "short\"],\"email\":[\"is invalid\"],\"\":[\"Invalid value\"]}}");
    check_exact(&e, ENVELOPE_FLAT,
                "{\"error\":\"Validation failed\",\"code\":\"VALIDATION_ERROR\",\"details\":{"
                "\"title\":\"is required; is too short\",\"email\":\"is invalid\",\"\":\"Invalid "
                "value\",\"request_id\":\"r\"}}");
}

static void test_i18n_keys(void)
{
    static const struct { const char *code; const char *key; } t[] = {
        {"NOT_FOUND", "api-errors.notFound"},
        {"HTTP_VERSION_NOT_SUPPORTED", "api-errors.httpVersionNotSupported"},
        {"X", "api-errors.x"},
        {"__", "api-errors.error"},
        {"E2E_FAILED", "api-errors.e2eFailed"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct envelope e = {.status = 400, .code = t[i].code, .request_id = "r"};
        char *s = render(&e, ENVELOPE_I18N);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        char want[128];
        snprintf(want, sizeof want, "{\"key\":\"%s\",", t[i].key);
        CU_ASSERT_EQUAL(strncmp(s, want, strlen(want)), 0);
        free(s);
    }
}

static void test_every_profile_valid_json(void)
{
    char err[128];
    struct envelope es[4] = {env_404(), env_422(), env_429(), env_500()};
    for (int p = ENVELOPE_NESTED; p <= ENVELOPE_PROBLEM; p++) {
        for (size_t i = 0; i < 4; i++) {
            char *s = render(&es[i], (enum envelope_profile)p);
            CU_ASSERT_PTR_NOT_NULL_FATAL(s);
            yajl_val v = yajl_tree_parse(s, err, sizeof err);
            CU_ASSERT_PTR_NOT_NULL(v);
            CU_ASSERT_TRUE(v && YAJL_IS_OBJECT(v));
            yajl_tree_free(v);
            free(s);
        }
    }
}

/* ---- tables --------------------------------------------------------------- */

static void test_code_table(void)
{
    static const struct { int status; const char *code; } t[] = {
        {400, "BAD_REQUEST"}, {401, "UNAUTHORIZED"}, {403, "FORBIDDEN"}, {404, "NOT_FOUND"},
        {405, "METHOD_NOT_ALLOWED"}, {406, "NOT_ACCEPTABLE"}, {408, "REQUEST_TIMEOUT"},
        {409, "CONFLICT"}, {410, "GONE"}, {411, "LENGTH_REQUIRED"}, {413, "PAYLOAD_TOO_LARGE"},
        {414, "URI_TOO_LONG"}, {415, "UNSUPPORTED_MEDIA_TYPE"}, {422, "VALIDATION_ERROR"},
        {429, "RATE_LIMITED"}, {431, "HEADERS_TOO_LARGE"}, {500, "INTERNAL_ERROR"},
        {501, "NOT_IMPLEMENTED"}, {502, "BAD_GATEWAY"}, {503, "SERVICE_UNAVAILABLE"},
        {504, "GATEWAY_TIMEOUT"}, {505, "HTTP_VERSION_NOT_SUPPORTED"},
        {402, "CLIENT_ERROR"}, {418, "CLIENT_ERROR"}, {451, "CLIENT_ERROR"}, {499, "CLIENT_ERROR"},
        {507, "INTERNAL_ERROR"}, {599, "INTERNAL_ERROR"}, {0, "UNKNOWN_ERROR"},
        {200, "UNKNOWN_ERROR"}, {-1, "UNKNOWN_ERROR"}, {1000, "UNKNOWN_ERROR"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        CU_ASSERT_STRING_EQUAL(envelope_code_for_status(t[i].status), t[i].code);
}

static void test_reason_table(void)
{
    CU_ASSERT_STRING_EQUAL(envelope_reason(404), "Not Found");
    CU_ASSERT_STRING_EQUAL(envelope_reason(422), "Unprocessable Entity");
    CU_ASSERT_STRING_EQUAL(envelope_reason(429), "Too Many Requests");
    CU_ASSERT_STRING_EQUAL(envelope_reason(431), "Request Header Fields Too Large");
    CU_ASSERT_STRING_EQUAL(envelope_reason(502), "Bad Gateway");
    CU_ASSERT_STRING_EQUAL(envelope_reason(504), "Gateway Timeout");
    CU_ASSERT_STRING_EQUAL(envelope_reason(460), "Client Error");
    CU_ASSERT_STRING_EQUAL(envelope_reason(560), "Server Error");
    CU_ASSERT_STRING_EQUAL(envelope_reason(0), "Unknown");
    CU_ASSERT_STRING_EQUAL(envelope_reason(-500), "Unknown");
}

static void test_profiles(void)
{
    static const char *const names[] = {"nested", "flat", "simple", "status", "i18n", "problem"};
    for (int i = 0; i < 6; i++) {
        enum envelope_profile p;
        CU_ASSERT_TRUE(envelope_profile_parse(names[i], &p));
        CU_ASSERT_EQUAL(p, (enum envelope_profile)i);
        CU_ASSERT_STRING_EQUAL(envelope_profile_name(p), names[i]);
        CU_ASSERT_STRING_EQUAL(envelope_content_type(p),
                               i == ENVELOPE_PROBLEM ? "application/problem+json"
                                                     : "application/json; charset=utf-8");
    }
    enum envelope_profile p = ENVELOPE_FLAT;
    CU_ASSERT_TRUE(envelope_profile_parse("Nested", &p));
    CU_ASSERT_EQUAL(p, ENVELOPE_NESTED);
    CU_ASSERT_FALSE(envelope_profile_parse("json", &p));
    CU_ASSERT_FALSE(envelope_profile_parse("", &p));
    CU_ASSERT_FALSE(envelope_profile_parse(NULL, &p));
    CU_ASSERT_STRING_EQUAL(envelope_profile_name((enum envelope_profile)42), "unknown");
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("envelope", NULL, NULL);
    if (!s)
        return;
    CU_add_test(s, "nested exact", test_nested_exact);
    CU_add_test(s, "flat exact", test_flat_exact);
    CU_add_test(s, "simple exact", test_simple_exact);
    CU_add_test(s, "status exact", test_status_exact);
    CU_add_test(s, "i18n exact", test_i18n_exact);
    CU_add_test(s, "problem exact", test_problem_exact);
    CU_add_test(s, "seed 004 nested shape", test_seed_004_nested);
    CU_add_test(s, "seed 001 flat shape", test_seed_001_flat);
    CU_add_test(s, "seed 000 simple shape", test_seed_000_simple);
    CU_add_test(s, "seed 002 status shape", test_seed_002_status);
    CU_add_test(s, "seed 003 i18n shape", test_seed_003_i18n);
    CU_add_test(s, "RFC 9457 problem shape", test_problem_rfc9457);
    CU_add_test(s, "defaults", test_defaults);
    CU_add_test(s, "429 windows", test_windows);
    CU_add_test(s, "utf8 repair", test_utf8_repair);
    CU_add_test(s, "repeated fields", test_repeated_fields);
    CU_add_test(s, "i18n keys", test_i18n_keys);
    CU_add_test(s, "valid JSON everywhere", test_every_profile_valid_json);
    CU_add_test(s, "code table", test_code_table);
    CU_add_test(s, "reason table", test_reason_table);
    CU_add_test(s, "profile names", test_profiles);
}
