/*
 * test_recognize: real-world error bodies (tests/data/recognize/known/NAME.txt,
 * and unseen/NAME.txt written after the recognizer) against the code, message,
 * field errors and retry facts expected of them; code normalization; hostile
 * inputs (deep nesting, huge strings, invalid UTF-8, truncated JSON).
 *
 * Case file format: "key: value" lines, a line "---", then the body bytes.
 *   status: 422                       content-type: application/json
 *   expect-code: VALIDATION_ERROR     expect-message: Validation failed
 *   expect-field: title | Title is required | missing   ("-": no type)
 *   expect-retry-after: 60  expect-limit: 100  expect-window: 60
 *   expect-kind: json|html|text|empty|invalid
 * An expect-code or expect-message line left out means "none expected".
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/CUnit.h>

#include "recognize.h"

void test_register(void);

#define MAX_EXPECT_FIELDS 64

struct rcase {
    char name[256];
    int status;
    char content_type[128];
    bool has_ct;
    char *code, *message, *kind;
    char *fields[MAX_EXPECT_FIELDS][3];
    size_t n_fields;
    long retry, limit, window;
    char *body;
    size_t len;
};

static char *dup_trim(const char *s, size_t n)
{
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static void rcase_free(struct rcase *c)
{
    free(c->code);
    free(c->message);
    free(c->kind);
    for (size_t i = 0; i < c->n_fields; i++)
        for (int k = 0; k < 3; k++)
            free(c->fields[i][k]);
    free(c->body);
}

static bool rcase_load(const char *path, struct rcase *c)
{
    memset(c, 0, sizeof *c);
    c->retry = c->limit = c->window = -1;
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *sep = strstr(buf, "\n---\n");
    if (!sep)
        return false;
    c->len = n - (size_t)(sep + 5 - buf);
    c->body = malloc(c->len + 1);
    if (!c->body)
        return false;
    memcpy(c->body, sep + 5, c->len);
    c->body[c->len] = '\0';
    *sep = '\0';
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *colon = strchr(line, ':');
        if (colon) {
            size_t kl = (size_t)(colon - line);
            char *v = colon + 1;
            if (kl == 6 && !strncmp(line, "status", 6)) {
                c->status = atoi(v);
            } else if (kl == 12 && !strncmp(line, "content-type", 12)) {
                char *t = dup_trim(v, strlen(v));
                if (t) {
                    snprintf(c->content_type, sizeof c->content_type, "%s", t);
                    c->has_ct = true;
                }
                free(t);
            } else if (kl == 11 && !strncmp(line, "expect-code", 11)) {
                c->code = dup_trim(v, strlen(v));
            } else if (kl == 14 && !strncmp(line, "expect-message", 14)) {
                c->message = dup_trim(v, strlen(v));
            } else if (kl == 11 && !strncmp(line, "expect-kind", 11)) {
                c->kind = dup_trim(v, strlen(v));
            } else if (kl == 18 && !strncmp(line, "expect-retry-after", 18)) {
                c->retry = atol(v);
            } else if (kl == 12 && !strncmp(line, "expect-limit", 12)) {
                c->limit = atol(v);
            } else if (kl == 13 && !strncmp(line, "expect-window", 13)) {
                c->window = atol(v);
            } else if (kl == 12 && !strncmp(line, "expect-field", 12) &&
                       c->n_fields < MAX_EXPECT_FIELDS) {
                char *p1 = strstr(v, " | ");
                char *p2 = p1 ? strstr(p1 + 3, " | ") : NULL;
                if (p1 && p2) {
                    c->fields[c->n_fields][0] = dup_trim(v, (size_t)(p1 - v));
                    c->fields[c->n_fields][1] = dup_trim(p1 + 3, (size_t)(p2 - p1 - 3));
                    c->fields[c->n_fields][2] = dup_trim(p2 + 3, strlen(p2 + 3));
                    c->n_fields++;
                }
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return c->status > 0;
}

static const char *kind_name(enum recognize_kind k)
{
    switch (k) {
    case RECOGNIZE_EMPTY: return "empty";
    case RECOGNIZE_JSON: return "json";
    case RECOGNIZE_HTML: return "html";
    case RECOGNIZE_TEXT: return "text";
    case RECOGNIZE_INVALID: return "invalid";
    }
    return "?";
}

static bool str_eq(const char *want, const char *got)
{
    if (!want)
        return got == NULL;
    return got && strcmp(want, got) == 0;
}

/* Run one case; print what differs. Returns true when everything matched. */
static bool rcase_run(const struct rcase *c)
{
    struct recognized r;
    int rc = recognize_error(c->status, c->has_ct ? c->content_type : NULL, c->body, c->len, &r);
    bool ok = rc == 0;
    if (!str_eq(c->code, r.code)) {
        fprintf(stderr, "\n  %s: code %s, want %s", c->name, r.code ? r.code : "(none)",
                c->code ? c->code : "(none)");
        ok = false;
    }
    if (!str_eq(c->message, r.message)) {
        fprintf(stderr, "\n  %s: message \"%s\", want \"%s\"", c->name,
                r.message ? r.message : "(none)", c->message ? c->message : "(none)");
        ok = false;
    }
    if (c->kind && strcmp(c->kind, kind_name(r.kind)) != 0) {
        fprintf(stderr, "\n  %s: kind %s, want %s", c->name, kind_name(r.kind), c->kind);
        ok = false;
    }
    if (r.n_fields != c->n_fields) {
        fprintf(stderr, "\n  %s: %zu field errors, want %zu", c->name, r.n_fields, c->n_fields);
        for (size_t i = 0; i < r.n_fields; i++)
            fprintf(stderr, "\n    got %s | %s | %s", r.fields[i].field, r.fields[i].message,
                    r.fields[i].type ? r.fields[i].type : "-");
        ok = false;
    } else {
        for (size_t i = 0; i < r.n_fields; i++) {
            const char *wt = strcmp(c->fields[i][2], "-") == 0 ? NULL : c->fields[i][2];
            if (!str_eq(c->fields[i][0], r.fields[i].field) ||
                !str_eq(c->fields[i][1], r.fields[i].message) || !str_eq(wt, r.fields[i].type)) {
                fprintf(stderr, "\n  %s: field %zu: %s | %s | %s, want %s | %s | %s", c->name, i,
                        r.fields[i].field, r.fields[i].message,
                        r.fields[i].type ? r.fields[i].type : "-", c->fields[i][0],
                        c->fields[i][1], c->fields[i][2]);
                ok = false;
            }
        }
    }
    if (r.retry_after_s != c->retry || r.limit != c->limit || r.window_s != c->window) {
        fprintf(stderr, "\n  %s: retry/limit/window %ld/%ld/%ld, want %ld/%ld/%ld", c->name,
                r.retry_after_s, r.limit, r.window_s, c->retry, c->limit, c->window);
        ok = false;
    }
    recognized_free(&r);
    return ok;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run every case of DIR; *total and *passed counted. */
static void run_dir(const char *dir, unsigned *total, unsigned *passed)
{
    *total = *passed = 0;
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    char *names[1024];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < 1024) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".txt") == 0)
            names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], name_cmp);
    for (size_t i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct rcase c;
        bool loaded = rcase_load(path, &c);
        CU_ASSERT_TRUE(loaded);
        if (loaded) {
            snprintf(c.name, sizeof c.name, "%s", names[i]);
            (*total)++;
            if (rcase_run(&c))
                (*passed)++;
        }
        rcase_free(&c);
        free(names[i]);
    }
}

/* Strict UTF-8 with no control characters: what every output string must be. */
static bool clean_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p < 0x20 || *p == 0x7F)
            return false;
        if (*p < 0x80) {
            p++;
            continue;
        }
        int n = (*p >= 0xF0 && *p <= 0xF4) ? 3 : (*p >= 0xE0) ? 2 : (*p >= 0xC2 && *p < 0xE0) ? 1 : -1;
        if (n < 0 || *p > 0xF4)
            return false;
        for (int i = 1; i <= n; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        p += n + 1;
    }
    return true;
}

static bool result_clean(const struct recognized *r)
{
    if (r->message && (strlen(r->message) > RECOGNIZE_MAX_MESSAGE || !clean_utf8(r->message)))
        return false;
    if (r->code && !clean_utf8(r->code))
        return false;
    if (r->n_fields > RECOGNIZE_MAX_FIELDS)
        return false;
    for (size_t i = 0; i < r->n_fields; i++)
        if (!clean_utf8(r->fields[i].field) || !clean_utf8(r->fields[i].message) ||
            (r->fields[i].type && !clean_utf8(r->fields[i].type)))
            return false;
    return true;
}

/* Every prefix of every known body (truncated JSON, cut HTML): no crash, clean output. */
static void test_truncated_bodies(void)
{
    DIR *d = opendir("data/recognize/known");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    struct dirent *de;
    unsigned runs = 0, bad = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "data/recognize/known/%s", de->d_name);
        struct rcase c;
        if (rcase_load(path, &c)) {
            for (size_t n = 0; n <= c.len && n <= 700; n++) {
                struct recognized r;
                int rc = recognize_error(c.status, c.has_ct ? c.content_type : NULL, c.body, n,
                                         &r);
                if (rc != 0 || !result_clean(&r))
                    bad++;
                recognized_free(&r);
                runs++;
            }
        }
        rcase_free(&c);
    }
    closedir(d);
    CU_ASSERT(runs > 5000);
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_known_shapes(void)
{
    unsigned total, passed;
    run_dir("data/recognize/known", &total, &passed);
    fprintf(stderr, "\n  known shapes: %u/%u ", passed, total);
    CU_ASSERT(total >= 80);
    CU_ASSERT_EQUAL(passed, total);
}

static void test_unseen_shapes(void)
{
    unsigned total, passed;
    run_dir("data/recognize/unseen", &total, &passed);
    fprintf(stderr, "\n  unseen shapes: %u/%u ", passed, total);
    CU_ASSERT(total >= 20);
    CU_ASSERT_EQUAL(passed, total);
}

/* ---- key spellings --------------------------------------------------------------- */

/*
 * The recognizer's key tables hold each name once, folded (lower case, no
 * '_', '-' or ' '); every spelling of it must still count. One row per
 * spelling: status, JSON body, then the code, message and first field error
 * ("field | message | type", "-" for no type) expected; NULL: none.
 */
static const struct spelling_case {
    int status;
    const char *body, *code, *message, *field;
} spelling_cases[] = {
    /* skipped subtrees: their message is never read */
    {404, "{\"request_id\":{\"message\":\"Hidden text\"}}", NULL, NULL, NULL},
    {404, "{\"requestId\":{\"message\":\"Hidden text\"}}", NULL, NULL, NULL},
    {404, "{\"Request-ID\":{\"message\":\"Hidden text\"}}", NULL, NULL, NULL},
    {404, "{\"trace_id\":{\"message\":\"Hidden text\"}}", NULL, NULL, NULL},
    {404, "{\"traceId\":{\"message\":\"Hidden text\"}}", NULL, NULL, NULL},
    {404, "{\"correlation_id\":{\"message\":\"Hidden text\"}}", NULL, NULL, NULL},
    {404, "{\"correlationId\":{\"message\":\"Hidden text\"}}", NULL, NULL, NULL},
    {404, "{\"inner_error\":{\"message\":\"Hidden text\"}}", NULL, NULL, NULL},
    {404, "{\"innerError\":{\"message\":\"Hidden text\"}}", NULL, NULL, NULL},
    {404, "{\"other\":{\"message\":\"Shown text\"}}", NULL, "Shown text", NULL},  /* control */
    /* field maps */
    {422, "{\"error\":1,\"field_errors\":{\"t\":[\"needed\"]}}", NULL, NULL, "t | needed | -"},
    {422, "{\"error\":1,\"fieldErrors\":{\"t\":[\"needed\"]}}", NULL, NULL, "t | needed | -"},
    {422, "{\"error\":1,\"validation_errors\":{\"t\":[\"needed\"]}}", NULL, NULL, "t | needed | -"},
    {422, "{\"error\":1,\"validationErrors\":{\"t\":[\"needed\"]}}", NULL, NULL, "t | needed | -"},
    {422, "{\"error\":1,\"invalid_params\":{\"t\":[\"needed\"]}}", NULL, NULL, "t | needed | -"},
    {422, "{\"error\":1,\"invalidParams\":{\"t\":[\"needed\"]}}", NULL, NULL, "t | needed | -"},
    {422, "{\"error\":1,\"other\":{\"t\":[\"needed\"]}}", NULL, NULL, NULL},  /* control */
    /* field lists (an item's "name" names its field only in a list) */
    {400, "{\"invalid_params\":[{\"name\":\"a\",\"reason\":\"low\"}]}", NULL, NULL, "a | low | -"},
    {400, "{\"invalidParams\":[{\"name\":\"a\",\"reason\":\"low\"}]}", NULL, NULL, "a | low | -"},
    {400, "{\"invalid-params\":[{\"name\":\"a\",\"reason\":\"low\"}]}", NULL, NULL, "a | low | -"},
    {400, "{\"field_errors\":[{\"name\":\"a\",\"reason\":\"low\"}]}", NULL, NULL, "a | low | -"},
    {400, "{\"fieldErrors\":[{\"name\":\"a\",\"reason\":\"low\"}]}", NULL, NULL, "a | low | -"},
    {400, "{\"validation_errors\":[{\"name\":\"a\",\"reason\":\"low\"}]}", NULL, NULL, "a | low | -"},
    {400, "{\"validationErrors\":[{\"name\":\"a\",\"reason\":\"low\"}]}", NULL, NULL, "a | low | -"},
    {400, "{\"other\":[{\"name\":\"a\",\"reason\":\"low\"}]}", NULL, NULL, NULL},  /* control */
    /* a field map's own errors */
    {400, "{\"non_field_errors\":[\"Passwords differ\"]}", NULL, "Passwords differ", NULL},
    {400, "{\"nonFieldErrors\":[\"Passwords differ\"]}", NULL, "Passwords differ", NULL},
    /* message keys */
    {404, "{\"error_message\":\"Task was not found\"}", NULL, "Task was not found", NULL},
    {404, "{\"errorMessage\":\"Task was not found\"}", NULL, "Task was not found", NULL},
    /* a field error's message and type */
    {422, "{\"errors\":[{\"field\":\"t\",\"error_message\":\"needed\"}]}", NULL, NULL, "t | needed | -"},
    {422, "{\"errors\":[{\"field\":\"t\",\"errorMessage\":\"needed\"}]}", NULL, NULL, "t | needed | -"},
    {422, "{\"errors\":[{\"field\":\"t\",\"error_code\":\"missing\"}]}", NULL, NULL, "t | Missing | missing"},
    {422, "{\"errors\":[{\"field\":\"t\",\"errorCode\":\"missing\"}]}", NULL, NULL, "t | Missing | missing"},
    /* machine codes */
    {404, "{\"error_code\":\"task_not_found\"}", "TASK_NOT_FOUND", NULL, NULL},
    {404, "{\"errorCode\":\"task_not_found\"}", "TASK_NOT_FOUND", NULL, NULL},
    {404, "{\"ErrorCode\":\"TaskNotFound\"}", "TASK_NOT_FOUND", NULL, NULL},
};

static void test_key_spellings(void)
{
    for (size_t i = 0; i < sizeof spelling_cases / sizeof spelling_cases[0]; i++) {
        const struct spelling_case *k = &spelling_cases[i];
        struct recognized r;
        CU_ASSERT_EQUAL_FATAL(recognize_error(k->status, "application/json", k->body,
                                              strlen(k->body), &r), 0);
        char got[3 * RECOGNIZE_MAX_MESSAGE];
        got[0] = '\0';
        if (r.n_fields > 0)
            snprintf(got, sizeof got, "%s | %s | %s", r.fields[0].field, r.fields[0].message,
                     r.fields[0].type ? r.fields[0].type : "-");
        bool ok = r.kind == RECOGNIZE_JSON && str_eq(k->code, r.code) &&
                  str_eq(k->message, r.message) &&
                  (k->field ? r.n_fields == 1 && strcmp(k->field, got) == 0 : r.n_fields == 0);
        if (!ok)
            fprintf(stderr, "\n  row %zu %s: code %s, message %s, %zu fields (%s)", i, k->body,
                    r.code ? r.code : "(none)", r.message ? r.message : "(none)", r.n_fields,
                    got);
        CU_ASSERT_TRUE(ok);
        recognized_free(&r);
    }
}

/* ---- code normalization -------------------------------------------------------- */

static void test_code_normalize(void)
{
    static const struct { const char *in; const char *out; } t[] = {
        {"TASK_NOT_FOUND", "TASK_NOT_FOUND"},
        {"api-errors.ticketNotFound", "TICKET_NOT_FOUND"},
        {"missing_field", "MISSING_FIELD"},
        {"NOT_FOUND", "NOT_FOUND"},
        {"not-found", "NOT_FOUND"},
        {"ResourceNotFound", "RESOURCE_NOT_FOUND"},
        {"HTTPError", "HTTP_ERROR"},
        {"invalidJSON", "INVALID_JSON"},
        {"E1234", "E1234"},
        {"card_declined", "CARD_DECLINED"},
        {"__weird__", "WEIRD"},
        {"value_error.missing", "MISSING"},
        {"oauth2Error", "OAUTH2_ERROR"},
    };
    char buf[RECOGNIZE_MAX_CODE + 2];
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        bool ok = recognize_code_normalize(t[i].in, strlen(t[i].in), buf, sizeof buf);
        CU_ASSERT_TRUE(ok);
        if (!ok || strcmp(buf, t[i].out) != 0)
            fprintf(stderr, "\n  %s -> %s, want %s", t[i].in, buf, t[i].out);
        CU_ASSERT_STRING_EQUAL(buf, t[i].out);
    }
    static const char *const bad[] = {"404", "", "Task not found", "caf\xc3\xa9", "a b",
                                      "___", "12.34"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_FALSE(recognize_code_normalize(bad[i], strlen(bad[i]), buf, sizeof buf));
        CU_ASSERT_STRING_EQUAL(buf, "");
    }
    char longc[200];
    memset(longc, 'A', sizeof longc - 1);
    longc[sizeof longc - 1] = '\0';
    CU_ASSERT_FALSE(recognize_code_normalize(longc, strlen(longc), buf, sizeof buf));
    char small[4];
    CU_ASSERT_FALSE(recognize_code_normalize("NOT_FOUND", 9, small, sizeof small));
}

/* ---- hostile inputs -------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void expect_nothing(int status, const char *ct, const char *body, size_t len,
                           enum recognize_kind kind)
{
    struct recognized r;
    double t0 = now_s();
    CU_ASSERT_EQUAL(recognize_error(status, ct, body, len, &r), 0);
    CU_ASSERT(now_s() - t0 < 2.0);
    CU_ASSERT_EQUAL(r.kind, kind);
    CU_ASSERT_PTR_NULL(r.message);
    CU_ASSERT_PTR_NULL(r.code);
    CU_ASSERT_EQUAL(r.n_fields, 0);
    recognized_free(&r);
}

static void test_deep_nesting(void)
{
    size_t n = 1000000;
    char *b = malloc(2 * n + 32);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    memset(b, '[', n);
    expect_nothing(400, "application/json", b, n, RECOGNIZE_INVALID);
    memset(b + n, ']', n);
    expect_nothing(400, "application/json", b, 2 * n, RECOGNIZE_INVALID);
    /* {"a":{"a":...}} a million deep */
    size_t o = 0;
    for (size_t i = 0; i < n / 5; i++) {
        memcpy(b + o, "{\"a\":", 5);
        o += 5;
    }
    expect_nothing(400, NULL, b, o, RECOGNIZE_INVALID);
    /* exactly at the cap still parses */
    o = 0;
    for (int i = 0; i < RECOGNIZE_MAX_DEPTH - 1; i++) {
        memcpy(b + o, "{\"e\":", 5);
        o += 5;
    }
    o += (size_t)sprintf(b + o, "{\"message\":\"deep\"}");
    for (int i = 0; i < RECOGNIZE_MAX_DEPTH - 1; i++)
        b[o++] = '}';
    struct recognized r;
    CU_ASSERT_EQUAL(recognize_error(400, NULL, b, o, &r), 0);
    CU_ASSERT_EQUAL(r.kind, RECOGNIZE_JSON);
    recognized_free(&r);
    free(b);
}

static void test_node_cap(void)
{
    /* 200k tiny values: over the node cap, so not parsed, quickly */
    size_t n = 200000;
    char *b = malloc(n * 2 + 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    size_t o = 0;
    b[o++] = '[';
    for (size_t i = 0; i < n; i++) {
        b[o++] = '1';
        b[o++] = ',';
    }
    b[o - 1] = ']';
    expect_nothing(400, NULL, b, o, RECOGNIZE_INVALID);
    free(b);
}

static void test_huge_strings(void)
{
    size_t n = 4 * 1024 * 1024;
    char *b = malloc(n + 64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    size_t o = (size_t)sprintf(b, "{\"message\":\"");
    for (size_t i = 0; i < n; i++)
        b[o++] = (char)('a' + (i % 7 == 0 ? 0 : 1));
    o += (size_t)sprintf(b + o, "\"}");
    struct recognized r;
    double t0 = now_s();
    CU_ASSERT_EQUAL(recognize_error(400, NULL, b, o, &r), 0);
    CU_ASSERT(now_s() - t0 < 2.0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.message);
    CU_ASSERT(strlen(r.message) <= RECOGNIZE_MAX_MESSAGE);
    CU_ASSERT(strlen(r.message) > RECOGNIZE_MAX_MESSAGE - 8);
    /* ends with an ellipsis */
    CU_ASSERT_STRING_EQUAL(r.message + strlen(r.message) - 3, "\xe2\x80\xa6");
    recognized_free(&r);

    /* multi-byte characters are never split by the cut */
    o = (size_t)sprintf(b, "{\"message\":\"");
    for (size_t i = 0; i < 1000; i++)
        o += (size_t)sprintf(b + o, "\xc3\xa9");
    o += (size_t)sprintf(b + o, "\"}");
    CU_ASSERT_EQUAL(recognize_error(400, NULL, b, o, &r), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.message);
    size_t ml = strlen(r.message);
    CU_ASSERT(ml <= RECOGNIZE_MAX_MESSAGE);
    CU_ASSERT_STRING_EQUAL(r.message + ml - 3, "\xe2\x80\xa6");
    CU_ASSERT((ml - 3) % 2 == 0);
    recognized_free(&r);

    /* a huge plain-text line */
    memset(b, 'x', n);
    CU_ASSERT_EQUAL(recognize_error(400, "text/plain", b, n, &r), 0);
    CU_ASSERT_PTR_NOT_NULL(r.message);
    CU_ASSERT(r.message && strlen(r.message) <= RECOGNIZE_MAX_MESSAGE);
    recognized_free(&r);

    /* a huge HTML element */
    o = (size_t)sprintf(b, "<p>");
    memset(b + o, 'y', n - 16);
    o += n - 16;
    CU_ASSERT_EQUAL(recognize_error(400, "text/html", b, o, &r), 0);
    CU_ASSERT(r.message && strlen(r.message) <= RECOGNIZE_MAX_MESSAGE);
    recognized_free(&r);
    free(b);
}

static void test_many_fields(void)
{
    char *b = malloc(1 << 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    size_t o = (size_t)sprintf(b, "{\"errors\":{");
    for (int i = 0; i < 1000; i++)
        o += (size_t)sprintf(b + o, "%s\"f%d\":[\"bad value\"]", i ? "," : "", i);
    o += (size_t)sprintf(b + o, "}}");
    struct recognized r;
    CU_ASSERT_EQUAL(recognize_error(422, NULL, b, o, &r), 0);
    CU_ASSERT_EQUAL(r.n_fields, RECOGNIZE_MAX_FIELDS);
    CU_ASSERT_STRING_EQUAL(r.fields[0].field, "f0");
    recognized_free(&r);
    free(b);
}

static void test_invalid_inputs(void)
{
    static const char *const bad_json[] = {
        "{\"message\": \"unterminated", "{\"message\":}", "[1,2", "{\"a\":1}}", "{'a':1}",
        "{\"message\":\"x\"} trailing", "{\"a\":tru}", "\"unterminated",
    };
    for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++)
        expect_nothing(400, "application/json", bad_json[i], strlen(bad_json[i]),
                       RECOGNIZE_INVALID);
    expect_nothing(400, NULL, NULL, 0, RECOGNIZE_EMPTY);
    expect_nothing(400, NULL, "x", 0, RECOGNIZE_EMPTY);
    /* binary junk as text: cleaned, never invalid UTF-8 */
    unsigned char junk[256];
    for (int i = 0; i < 256; i++)
        junk[i] = (unsigned char)(255 - i);
    struct recognized r;
    CU_ASSERT_EQUAL(recognize_error(400, "application/octet-stream", (const char *)junk,
                                    sizeof junk, &r), 0);
    CU_ASSERT_PTR_NULL(r.message);   /* mostly invalid UTF-8: not a message */
    recognized_free(&r);
    static const char mixed[] = "Bad \xff request";
    CU_ASSERT_EQUAL(recognize_error(400, "text/plain", mixed, sizeof mixed - 1, &r), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.message);
    CU_ASSERT_STRING_EQUAL(r.message, "Bad \xef\xbf\xbd request");
    recognized_free(&r);
    /* NUL bytes inside the body */
    static const char withnul[] = "{\"message\":\"a\\u0000b\"}";
    CU_ASSERT_EQUAL(recognize_error(400, NULL, withnul, sizeof withnul - 1, &r), 0);
    CU_ASSERT_PTR_NOT_NULL(r.message);
    recognized_free(&r);
    /* recognized_free tolerates NULL and double calls */
    recognized_free(NULL);
    recognized_free(&r);
}

/* One row per test: its suite (0: recognize, 1: recognize unseen shapes). */
static const struct {
    int suite;
    const char *name;
    CU_TestFunc fn;
} recognize_tests[] = {
    {0, "known shapes", test_known_shapes},
    {0, "key spellings", test_key_spellings},
    {0, "code normalize", test_code_normalize},
    {0, "truncated bodies", test_truncated_bodies},
    {0, "deep nesting", test_deep_nesting},
    {0, "node cap", test_node_cap},
    {0, "huge strings", test_huge_strings},
    {0, "many fields", test_many_fields},
    {0, "invalid inputs", test_invalid_inputs},
    {1, "unseen shapes", test_unseen_shapes},
};

void test_register(void)
{
    CU_pSuite suites[2] = {
        CU_add_suite("recognize", NULL, NULL),
        CU_add_suite("recognize unseen shapes", NULL, NULL),
    };
    for (size_t i = 0; i < sizeof recognize_tests / sizeof recognize_tests[0]; i++)
        if (suites[recognize_tests[i].suite])
            CU_add_test(suites[recognize_tests[i].suite], recognize_tests[i].name,
                        recognize_tests[i].fn);
}
