/*
 * test_headbuf: heads built without printf must be byte-exact, bounded
 * (nothing past the space asked for, nothing committed when it overflowed)
 * and print every integer the way printf would.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <event2/buffer.h>

#include "headbuf.h"

void test_register(void);

static void test_integers(void)
{
    static const uint64_t u[] = {0, 1, 9, 10, 99, 100, 1234567890, UINT64_MAX};
    static const int64_t s[] = {0, -1, 1, -10, 42, INT64_MAX, INT64_MIN};
    char mem[64], want[64];
    struct headbuf h;
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
        headbuf_mem(&h, mem, sizeof mem);
        hb_u64(&h, u[i]);
        snprintf(want, sizeof want, "%" PRIu64, u[i]);
        CU_ASSERT_EQUAL(h.len, strlen(want));
        CU_ASSERT_EQUAL(memcmp(mem, want, h.len), 0);
    }
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        headbuf_mem(&h, mem, sizeof mem);
        hb_i64(&h, s[i]);
        snprintf(want, sizeof want, "%" PRId64, s[i]);
        CU_ASSERT_EQUAL(h.len, strlen(want));
        CU_ASSERT_EQUAL(memcmp(mem, want, h.len), 0);
    }
}

static void test_fields(void)
{
    char mem[64];
    struct headbuf h;
    headbuf_mem(&h, mem, sizeof mem);
    HB_LIT(&h, "HTTP/1.1 ");
    hb_u64(&h, 404);
    hb_str(&h, " Not Found\r\n");
    hb_field(&h, "X-A", 3, "b c", 3);
    CU_ASSERT_FALSE(h.full);
    CU_ASSERT_EQUAL(headbuf_commit(&h), (long)strlen("HTTP/1.1 404 Not Found\r\nX-A: b c\r\n"));
    CU_ASSERT_EQUAL(memcmp(mem, "HTTP/1.1 404 Not Found\r\nX-A: b c\r\n", h.len), 0);
}

static void test_bounded(void)
{
    char mem[16];
    memset(mem, '#', sizeof mem);
    struct headbuf h;
    headbuf_mem(&h, mem, 8);
    HB_LIT(&h, "12345");
    HB_LIT(&h, "6789");  /* does not fit: nothing of it is written */
    CU_ASSERT_TRUE(h.full);
    CU_ASSERT_EQUAL(h.len, 5);
    CU_ASSERT_EQUAL(mem[5], '#');
    CU_ASSERT_EQUAL(mem[8], '#');
    CU_ASSERT_EQUAL(headbuf_commit(&h), -1);
    headbuf_mem(&h, mem, 8);
    hb_add(&h, NULL, 0);  /* an absent optional part: nothing, and no memcpy(NULL) */
    CU_ASSERT_FALSE(h.full);
    CU_ASSERT_EQUAL(h.len, 0);
    headbuf_mem(&h, mem, 3);
    hb_u64(&h, 1234);
    CU_ASSERT_TRUE(h.full);
    CU_ASSERT_EQUAL(h.len, 0);
}

static void test_evbuffer(void)
{
    struct evbuffer *b = evbuffer_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    evbuffer_add(b, "before|", 7);
    struct headbuf h;
    CU_ASSERT_EQUAL_FATAL(headbuf_reserve(&h, b, 32), 0);
    HB_LIT(&h, "head\r\n\r\n");
    CU_ASSERT_EQUAL(headbuf_commit(&h), 8);
    CU_ASSERT_EQUAL(evbuffer_get_length(b), 15);
    CU_ASSERT_EQUAL(memcmp(evbuffer_pullup(b, -1), "before|head\r\n\r\n", 15), 0);
    /* an overflowing head leaves the buffer as it was */
    CU_ASSERT_EQUAL_FATAL(headbuf_reserve(&h, b, 4), 0);
    HB_LIT(&h, "too long");
    CU_ASSERT_EQUAL(headbuf_commit(&h), -1);
    CU_ASSERT_EQUAL(evbuffer_get_length(b), 15);
    evbuffer_free(b);
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("headbuf", NULL, NULL);
    if (!s)
        return;
    CU_add_test(s, "integers as printf prints them", test_integers);
    CU_add_test(s, "fields", test_fields);
    CU_add_test(s, "bounded", test_bounded);
    CU_add_test(s, "into an evbuffer", test_evbuffer);
}
