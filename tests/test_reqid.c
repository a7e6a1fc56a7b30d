/*
 * test_reqid: correlation IDs (README, "Correlation IDs"): an incoming
 * one is kept only if it is 1-128 characters of [A-Za-z0-9._:-]; a new one
 * is a well-formed RFC 4122 version 4 UUID, and they do not repeat.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "reqid.h"

void test_register(void);

static void test_valid(void)
{
    static const char *good[] = {
        "a", "Z", "0", "-", "req_abc123", "550e8400-e29b-41d4-a716-446655440000",
        "01ARZ3NDEKTSV4RRFFQ69G5FAV", "trace:span.1", "a.b_c-d:e",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CU_ASSERT_TRUE(reqid_valid(good[i], strlen(good[i])));
    static const char *bad[] = {
        "", "a b", "a/b", "a\\b", "a\"b", "<script>", "a\tb", "a\r\nX-Injected: 1", "a,b",
        "a;b", "caf\xc3\xa9", "a\x7f", "a=b", "a+b", "a%20b", "{}", "a@b",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CU_ASSERT_FALSE(reqid_valid(bad[i], strlen(bad[i])));
    /* NUL inside: the length counts, not strlen */
    CU_ASSERT_FALSE(reqid_valid("ab\0cd", 5));
    CU_ASSERT_TRUE(reqid_valid("ab\0cd", 2));
    /* every byte value, alone */
    for (unsigned c = 0; c < 256; c++) {
        char s[1] = {(char)c};
        bool want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
        CU_ASSERT_EQUAL(reqid_valid(s, 1), want);
    }
}

static void test_length(void)
{
    char s[REQID_MAX + 2];
    memset(s, 'x', sizeof s);
    CU_ASSERT_TRUE(reqid_valid(s, 1));
    CU_ASSERT_TRUE(reqid_valid(s, REQID_MAX));
    CU_ASSERT_FALSE(reqid_valid(s, REQID_MAX + 1));
    CU_ASSERT_FALSE(reqid_valid(s, 0));
    CU_ASSERT_EQUAL(REQID_MAX, 128);
}

static bool is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void test_uuid_format(void)
{
    for (int n = 0; n < 2000; n++) {
        char id[REQID_UUID_LEN + 1];
        memset(id, '#', sizeof id);
        CU_ASSERT_TRUE_FATAL(reqid_generate(id));
        CU_ASSERT_EQUAL(strlen(id), 36);
        for (int i = 0; i < 36; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23) {
                CU_ASSERT_EQUAL(id[i], '-');
            } else {
                CU_ASSERT_TRUE(is_lower_hex(id[i]));
            }
        }
        CU_ASSERT_EQUAL(id[14], '4');                       /* version 4 */
        CU_ASSERT_PTR_NOT_NULL(strchr("89ab", id[19]));     /* RFC 4122 variant */
        CU_ASSERT_TRUE(reqid_valid(id, strlen(id)));         /* our own IDs pass our rule */
    }
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, REQID_UUID_LEN + 1);
}

static void test_uuid_unique(void)
{
    /* More than one 4 KiB pool refill's worth (16 bytes each). */
    enum { N = 5000 };
    char (*ids)[REQID_UUID_LEN + 1] = calloc(N, sizeof *ids);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ids);
    for (int i = 0; i < N; i++)
        CU_ASSERT_TRUE(reqid_generate(ids[i]));
    qsort(ids, N, sizeof *ids, cmp_id);
    int dup = 0;
    for (int i = 1; i < N; i++)
        if (memcmp(ids[i - 1], ids[i], sizeof *ids) == 0)
            dup++;
    CU_ASSERT_EQUAL(dup, 0);
    /* every random hex position takes more than one value */
    for (int pos = 0; pos < 36; pos++) {
        if (pos == 8 || pos == 13 || pos == 14 || pos == 18 || pos == 23)
            continue;
        bool varied = false;
        for (int i = 1; i < N && !varied; i++)
            varied = ids[i][pos] != ids[0][pos];
        CU_ASSERT_TRUE(varied);
    }
    free(ids);
}

static void test_random(void)
{
    /* Across a pool boundary and larger than the pool. */
    size_t len = 10000;
    unsigned char *a = calloc(1, len), *b = calloc(1, len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_TRUE(reqid_random(a, len));
    CU_ASSERT_TRUE(reqid_random(b, len));
    CU_ASSERT_NOT_EQUAL(memcmp(a, b, len), 0);
    /* not a page of zeros: the pool must not hand out wiped bytes */
    size_t zeros = 0;
    for (size_t i = 0; i < len; i++)
        zeros += a[i] == 0;
    CU_ASSERT_TRUE(zeros < len / 64);                 /* expected ~len/256 */
    /* a zero-length request is fine */
    CU_ASSERT_TRUE(reqid_random(a, 0));
    /* odd sizes that straddle refills */
    for (int i = 0; i < 300; i++)
        CU_ASSERT_TRUE(reqid_random(a, 37));
    free(a);
    free(b);
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("reqid", NULL, NULL);
    if (!s)
        return;
    CU_add_test(s, "valid characters", test_valid);
    CU_add_test(s, "length 1..128", test_length);
    CU_add_test(s, "UUIDv4 format", test_uuid_format);
    CU_add_test(s, "UUIDs unique", test_uuid_unique);
    CU_add_test(s, "random bytes", test_random);
}
