/*
 * test_jsonw: the gateway's one JSON writer. yajl_gen is the oracle: the
 * same calls go to both and the texts are compared byte for byte (every
 * byte value in a string, escapes, nesting, separators, integers to the
 * extremes), with two differences by design: invalid UTF-8 becomes U+FFFD
 * instead of passing through, and a \u00XX escape has lower-case hex
 * (yajl_gen writes upper case). The escaper's table pins every escape, one
 * row per case. Misuse and limits fail and stay failed: a value where a
 * key belongs, unbalanced closes, nesting past JSONW_MAX_DEPTH, an
 * unfinished text, a fixed buffer too small.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <yajl/yajl_gen.h>

#include "jsonw.h"

void test_register(void);

/* The same document through both writers. */
struct pair {
    struct jsonw w;
    yajl_gen g;
};

static void pair_init(struct pair *p)
{
    jsonw_init(&p->w);
    p->g = yajl_gen_alloc(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->g);
}

static void p_map_open(struct pair *p)
{
    CU_ASSERT_EQUAL(jsonw_map_open(&p->w), 0);
    CU_ASSERT_EQUAL(yajl_gen_map_open(p->g), yajl_gen_status_ok);
}

static void p_map_close(struct pair *p)
{
    CU_ASSERT_EQUAL(jsonw_map_close(&p->w), 0);
    CU_ASSERT_EQUAL(yajl_gen_map_close(p->g), yajl_gen_status_ok);
}

static void p_arr_open(struct pair *p)
{
    CU_ASSERT_EQUAL(jsonw_array_open(&p->w), 0);
    CU_ASSERT_EQUAL(yajl_gen_array_open(p->g), yajl_gen_status_ok);
}

static void p_arr_close(struct pair *p)
{
    CU_ASSERT_EQUAL(jsonw_array_close(&p->w), 0);
    CU_ASSERT_EQUAL(yajl_gen_array_close(p->g), yajl_gen_status_ok);
}

static void p_key(struct pair *p, const char *k)
{
    CU_ASSERT_EQUAL(jsonw_key(&p->w, k), 0);
    CU_ASSERT_EQUAL(yajl_gen_string(p->g, (const unsigned char *)k, strlen(k)), yajl_gen_status_ok);
}

static void p_str(struct pair *p, const char *s, size_t n)
{
    CU_ASSERT_EQUAL(jsonw_string(&p->w, s, n), 0);
    CU_ASSERT_EQUAL(yajl_gen_string(p->g, (const unsigned char *)s, n), yajl_gen_status_ok);
}

static void p_int(struct pair *p, long long v)
{
    CU_ASSERT_EQUAL(jsonw_integer(&p->w, v), 0);
    CU_ASSERT_EQUAL(yajl_gen_integer(p->g, v), yajl_gen_status_ok);
}

/* yajl_gen's text with the hex digits of its \u00XX escapes in lower case:
 * what jsonw writes for the same calls (caller frees). */
static char *yajl_lower_hex(const unsigned char *yb, size_t yl)
{
    char *t = malloc(yl + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    memcpy(t, yb, yl);
    t[yl] = '\0';
    for (size_t i = 0; i + 1 < yl; i++) {
        if (t[i] != '\\')
            continue;
        if (t[i + 1] == 'u' && i + 5 < yl)
            for (size_t k = i + 2; k < i + 6; k++)
                t[k] = (char)tolower((unsigned char)t[k]);
        i++;  /* past the escaped character: "\\u" is not an escape */
    }
    return t;
}

/* Both texts equal; frees both. */
static void pair_check(struct pair *p)
{
    const unsigned char *yb = NULL;
    size_t yl = 0;
    CU_ASSERT_EQUAL(yajl_gen_get_buf(p->g, &yb, &yl), yajl_gen_status_ok);
    char *b = NULL;
    size_t l = 0;
    CU_ASSERT_EQUAL_FATAL(jsonw_take(&p->w, &b, &l), 0);
    char *want = yajl_lower_hex(yb, yl);
    CU_ASSERT_EQUAL(l, yl);
    CU_ASSERT(l == yl && memcmp(b, want, l) == 0);
    free(want);
    free(b);
    jsonw_free(&p->w);
    yajl_gen_free(p->g);
}

static void test_every_byte(void)
{
    /* Each byte below 0x80 alone, then all of them in one string. */
    char all[128];
    for (int c = 0; c < 128; c++) {
        struct pair p;
        pair_init(&p);
        char s[3] = {'a', (char)c, 'z'};
        p_str(&p, s, 3);
        pair_check(&p);
        all[c] = (char)c;
    }
    struct pair p;
    pair_init(&p);
    p_str(&p, all, sizeof all);
    pair_check(&p);
    /* valid UTF-8 passes through as it is */
    pair_init(&p);
    const char *u = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 / \"q\" \\";
    p_str(&p, u, strlen(u));
    pair_check(&p);
}

static void test_structure(void)
{
    struct pair p;
    pair_init(&p);
    p_map_open(&p);
    p_key(&p, "error");
    p_map_open(&p);
    p_key(&p, "code");
    p_str(&p, "TASK_NOT_FOUND", 14);
    p_key(&p, "empty_map");
    p_map_open(&p);
    p_map_close(&p);
    p_key(&p, "empty_arr");
    p_arr_open(&p);
    p_arr_close(&p);
    p_key(&p, "list");
    p_arr_open(&p);
    p_int(&p, 1);
    p_str(&p, "two", 3);
    p_map_open(&p);
    p_key(&p, "k\"ey\n");
    p_arr_open(&p);
    p_arr_open(&p);
    p_arr_close(&p);
    p_arr_close(&p);
    p_map_close(&p);
    p_arr_close(&p);
    p_key(&p, "n");
    p_int(&p, 0);
    p_key(&p, "min");
    p_int(&p, LLONG_MIN);
    p_key(&p, "max");
    p_int(&p, LLONG_MAX);
    p_key(&p, "neg");
    p_int(&p, -42);
    p_map_close(&p);
    p_map_close(&p);
    pair_check(&p);
    /* a bare top-level string and a bare integer */
    pair_init(&p);
    p_str(&p, "x", 1);
    pair_check(&p);
    pair_init(&p);
    p_int(&p, -7);
    pair_check(&p);
}

static void test_repair(void)
{
    struct jsonw w;
    jsonw_init(&w);
    /* a lone continuation byte, a truncated sequence, an overlong form, 0xff */
    const char bad[] = "a\x80" "b\xc3" "c\xc0\xaf" "d\xff";
    CU_ASSERT_EQUAL(jsonw_string(&w, bad, sizeof bad - 1), 0);
    char *b = NULL;
    size_t l = 0;
    CU_ASSERT_EQUAL_FATAL(jsonw_take(&w, &b, &l), 0);
    const char want[] = "\"a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd" "d\xef\xbf\xbd\"";
    CU_ASSERT_EQUAL(l, sizeof want - 1);
    CU_ASSERT(l == sizeof want - 1 && memcmp(b, want, l) == 0);
    free(b);
    /* a NULL string is "", a NULL key is "" */
    jsonw_init(&w);
    CU_ASSERT_EQUAL(jsonw_map_open(&w), 0);
    CU_ASSERT_EQUAL(jsonw_key(&w, NULL), 0);
    CU_ASSERT_EQUAL(jsonw_string(&w, NULL, 5), 0);
    CU_ASSERT_EQUAL(jsonw_map_close(&w), 0);
    CU_ASSERT_EQUAL_FATAL(jsonw_take(&w, &b, &l), 0);
    CU_ASSERT(l == 7 && memcmp(b, "{\"\":\"\"}", 7) == 0);
    free(b);
}

static void expect_failed(struct jsonw *w)
{
    char *b = (char *)"untouched";
    size_t l = 99;
    CU_ASSERT_EQUAL(jsonw_take(w, &b, &l), -1);
    CU_ASSERT_STRING_EQUAL(b, "untouched");
    CU_ASSERT_EQUAL(l, 99);
    CU_ASSERT_PTR_NULL(w->buf);  /* take freed it */
}

static void test_misuse(void)
{
    struct jsonw w;
    /* a value where a key belongs, and it stays failed */
    jsonw_init(&w);
    CU_ASSERT_EQUAL(jsonw_map_open(&w), 0);
    CU_ASSERT_EQUAL(jsonw_string(&w, "v", 1), -1);
    CU_ASSERT_EQUAL(jsonw_key(&w, "k"), -1);
    CU_ASSERT_EQUAL(jsonw_map_close(&w), -1);
    expect_failed(&w);
    /* a key outside a map */
    jsonw_init(&w);
    CU_ASSERT_EQUAL(jsonw_array_open(&w), 0);
    CU_ASSERT_EQUAL(jsonw_key(&w, "k"), -1);
    expect_failed(&w);
    /* closing what is not open, or the wrong kind */
    jsonw_init(&w);
    CU_ASSERT_EQUAL(jsonw_map_close(&w), -1);
    expect_failed(&w);
    jsonw_init(&w);
    CU_ASSERT_EQUAL(jsonw_map_open(&w), 0);
    CU_ASSERT_EQUAL(jsonw_array_close(&w), -1);
    expect_failed(&w);
    /* a key with no value before the close */
    jsonw_init(&w);
    CU_ASSERT_EQUAL(jsonw_map_open(&w), 0);
    CU_ASSERT_EQUAL(jsonw_key(&w, "k"), 0);
    CU_ASSERT_EQUAL(jsonw_map_close(&w), -1);
    expect_failed(&w);
    /* unfinished */
    jsonw_init(&w);
    CU_ASSERT_EQUAL(jsonw_array_open(&w), 0);
    expect_failed(&w);
    /* nothing written */
    jsonw_init(&w);
    expect_failed(&w);
}

static void test_depth(void)
{
    struct jsonw w;
    jsonw_init(&w);
    for (int i = 0; i < JSONW_MAX_DEPTH; i++)
        CU_ASSERT_EQUAL(jsonw_array_open(&w), 0);
    CU_ASSERT_EQUAL(jsonw_array_open(&w), -1);
    expect_failed(&w);
    /* exactly the maximum is fine */
    jsonw_init(&w);
    for (int i = 0; i < JSONW_MAX_DEPTH; i++)
        CU_ASSERT_EQUAL(jsonw_array_open(&w), 0);
    for (int i = 0; i < JSONW_MAX_DEPTH; i++)
        CU_ASSERT_EQUAL(jsonw_array_close(&w), 0);
    char *b = NULL;
    size_t l = 0;
    CU_ASSERT_EQUAL_FATAL(jsonw_take(&w, &b, &l), 0);
    CU_ASSERT_EQUAL(l, 2 * JSONW_MAX_DEPTH);
    free(b);
}

static void test_size_bound(void)
{
    /* Strings that would pass JSONW_MAX_SIZE fail instead of growing. */
    size_t n = 300000;
    char *s = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    memset(s, '\n', n);  /* each becomes two bytes */
    struct jsonw w;
    jsonw_init(&w);
    CU_ASSERT_EQUAL(jsonw_array_open(&w), 0);
    int rc = 0;
    for (int i = 0; i < 4 && rc == 0; i++)
        rc = jsonw_string(&w, s, n);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT(w.cap <= JSONW_MAX_SIZE);
    expect_failed(&w);
    free(s);
}

/* ---- the escaper, one row per case --------------------------------------- */

/* IN with its length (NUL bytes count), and the JSON string it becomes. */
#define IN(s) s, sizeof(s) - 1

static const struct escape_case {
    const char *in;
    size_t len;
    const char *want;
} escape_cases[] = {
    {IN(""), "\"\""},
    {IN("plain text"), "\"plain text\""},
    {IN("\""), "\"\\\"\""},                              /* short escapes */
    {IN("\\"), "\"\\\\\""},
    {IN("\b"), "\"\\b\""},
    {IN("\f"), "\"\\f\""},
    {IN("\n"), "\"\\n\""},
    {IN("\r"), "\"\\r\""},
    {IN("\t"), "\"\\t\""},
    {IN("\0"), "\"\\u0000\""},                           /* other controls: lower-case hex */
    {IN("\x01"), "\"\\u0001\""},
    {IN("\x0b"), "\"\\u000b\""},
    {IN("\x0e"), "\"\\u000e\""},
    {IN("\x1b"), "\"\\u001b\""},
    {IN("\x1f"), "\"\\u001f\""},
    {IN(" "), "\" \""},                                  /* as they are */
    {IN("/"), "\"/\""},
    {IN("'<>&"), "\"'<>&\""},
    {IN("\x7f"), "\"\x7f\""},
    {IN("caf\xc3\xa9"), "\"caf\xc3\xa9\""},              /* valid UTF-8 as it is */
    {IN("\xe2\x82\xac"), "\"\xe2\x82\xac\""},
    {IN("\xef\xbf\xbd"), "\"\xef\xbf\xbd\""},
    {IN("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\""},
    {IN("\xf4\x8f\xbf\xbf"), "\"\xf4\x8f\xbf\xbf\""},
    {IN("\x80"), "\"\xef\xbf\xbd\""},                    /* U+FFFD per invalid byte */
    {IN("\xc3"), "\"\xef\xbf\xbd\""},
    {IN("\xc3(x"), "\"\xef\xbf\xbd(x\""},
    {IN("\xc0\xaf"), "\"\xef\xbf\xbd\xef\xbf\xbd\""},
    {IN("\xff\xfe"), "\"\xef\xbf\xbd\xef\xbf\xbd\""},
    {IN("\xed\xa0\x80"), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
    {IN("\xf4\x90\x80\x80"), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
    {IN("\xe2\x82"), "\"\xef\xbf\xbd\xef\xbf\xbd\""},
    {IN("a\"b\\c\nd\x01" "e\xff/f"), "\"a\\\"b\\\\c\\nd\\u0001e\xef\xbf\xbd/f\""},
};

static void test_escape_table(void)
{
    for (size_t i = 0; i < sizeof escape_cases / sizeof escape_cases[0]; i++) {
        const struct escape_case *c = &escape_cases[i];
        char buf[64];
        struct jsonw w;
        jsonw_init_fixed(&w, buf, sizeof buf);
        jsonw_put_string(&w, c->in, c->len);
        bool ok = !w.failed && w.len == strlen(c->want) && memcmp(buf, c->want, w.len) == 0;
        if (!ok)
            fprintf(stderr, "\n  row %zu: got %.*s, want %s", i, (int)w.len, buf, c->want);
        CU_ASSERT_TRUE(ok);
        /* the structured call writes the same bytes, on the heap */
        jsonw_init(&w);
        CU_ASSERT_EQUAL(jsonw_string(&w, c->in, c->len), 0);
        char *b = NULL;
        size_t l = 0;
        CU_ASSERT_EQUAL_FATAL(jsonw_take(&w, &b, &l), 0);
        CU_ASSERT(l == strlen(c->want) && memcmp(b, c->want, l) == 0);
        free(b);
    }
}

/* A fixed buffer: no allocation, exactly full is fine, one byte more fails
 * and stays failed; appends without structure. */
static void test_fixed_and_appends(void)
{
    char buf[16];
    struct jsonw w;
    jsonw_init_fixed(&w, buf, sizeof buf);
    jsonw_put_raw(&w, "{\"n\":", 5);
    jsonw_put_int(&w, -42);
    jsonw_put_raw(&w, ",\"u\":", 5);
    jsonw_put_uint(&w, 7);
    jsonw_put_raw(&w, "}", 1);
    CU_ASSERT_FALSE(w.failed);
    CU_ASSERT_EQUAL(w.len, 15);
    CU_ASSERT(memcmp(buf, "{\"n\":-42,\"u\":7}", 15) == 0);
    jsonw_put_raw(&w, "\n", 1);   /* exactly full */
    CU_ASSERT_FALSE(w.failed);
    CU_ASSERT_EQUAL(w.len, 16);
    jsonw_put_raw(&w, "x", 1);    /* one past */
    CU_ASSERT_TRUE(w.failed);
    jsonw_put_raw(&w, "", 0);
    jsonw_put_string(&w, "s", 1);
    CU_ASSERT_EQUAL(w.len, 16);   /* nothing more once failed */
    CU_ASSERT_EQUAL(jsonw_map_open(&w), -1);
    char *b = NULL;
    size_t l = 0;
    CU_ASSERT_EQUAL(jsonw_take(&w, &b, &l), -1);   /* a fixed text is never handed out */

    /* a string that does not fit fails the whole text */
    jsonw_init_fixed(&w, buf, sizeof buf);
    jsonw_put_string(&w, "\x01\x02\x03", 3);      /* 20 bytes escaped */
    CU_ASSERT_TRUE(w.failed);

    /* integers to the extremes, appended */
    static const struct { long long v; const char *want; } ints[] = {
        {0, "0"}, {-1, "-1"}, {LLONG_MAX, "9223372036854775807"},
        {LLONG_MIN, "-9223372036854775808"},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        char d[32];
        jsonw_init_fixed(&w, d, sizeof d);
        jsonw_put_int(&w, ints[i].v);
        CU_ASSERT(!w.failed && w.len == strlen(ints[i].want) &&
                  memcmp(d, ints[i].want, w.len) == 0);
    }
    char d[32];
    jsonw_init_fixed(&w, d, sizeof d);
    jsonw_put_uint(&w, ULLONG_MAX);
    CU_ASSERT(!w.failed && w.len == 20 && memcmp(d, "18446744073709551615", 20) == 0);
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("jsonw", NULL, NULL);
    if (!s)
        return;
    CU_add_test(s, "every byte as yajl_gen writes it (hex in lower case)", test_every_byte);
    CU_add_test(s, "structure, separators, integers as yajl_gen", test_structure);
    CU_add_test(s, "invalid UTF-8 repaired, NULL as empty", test_repair);
    CU_add_test(s, "misuse fails and stays failed", test_misuse);
    CU_add_test(s, "nesting bound", test_depth);
    CU_add_test(s, "size bound", test_size_bound);
    CU_add_test(s, "escaper table", test_escape_table);
    CU_add_test(s, "fixed buffer and appends", test_fixed_and_appends);
}
