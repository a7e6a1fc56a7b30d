/*
 * test_jsonw: the envelope's JSON writer must write what yajl_gen writes,
 * byte for byte: the same calls go to both and the texts are compared
 * (every byte value in a string, escapes, nesting, separators, integers to
 * the extremes), with one difference by design: invalid UTF-8 becomes
 * U+FFFD instead of passing through. Misuse and limits fail and stay
 * failed: a value where a key belongs, unbalanced closes, nesting past
 * JSONW_MAX_DEPTH, an unfinished text.
 */
#include <limits.h>
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

/* Both texts equal; frees both. */
static void pair_check(struct pair *p)
{
    const unsigned char *yb = NULL;
    size_t yl = 0;
    CU_ASSERT_EQUAL(yajl_gen_get_buf(p->g, &yb, &yl), yajl_gen_status_ok);
    char *b = NULL;
    size_t l = 0;
    CU_ASSERT_EQUAL_FATAL(jsonw_take(&p->w, &b, &l), 0);
    CU_ASSERT_EQUAL(l, yl);
    CU_ASSERT(l == yl && memcmp(b, yb, l) == 0);
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

void test_register(void)
{
    CU_pSuite s = CU_add_suite("jsonw", NULL, NULL);
    if (!s)
        return;
    CU_add_test(s, "every byte as yajl_gen writes it", test_every_byte);
    CU_add_test(s, "structure, separators, integers as yajl_gen", test_structure);
    CU_add_test(s, "invalid UTF-8 repaired, NULL as empty", test_repair);
    CU_add_test(s, "misuse fails and stays failed", test_misuse);
    CU_add_test(s, "nesting bound", test_depth);
    CU_add_test(s, "size bound", test_size_bound);
}
