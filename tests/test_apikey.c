/*
 * test_apikey: key syntax, ids (against OpenSSL's HMAC() and a fixed
 * vector the CLI test shares), Redis keys, records from HGETALL fields and
 * hiredis replies, the keys file (good files, every bad line with its
 * number), the record cache (hit, miss, TTL, negative entries, LRU) and
 * scope matching. Most are tables: add a case with one row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "apikey.h"

void test_register(void);

/* The vector docs/apikeys.md and tests/integration/test_apikeys_cli.py use too. */
#define SECRET "0123456789abcdef0123456789abcdef"
#define KEY "pjk_live_4eC39HqLyjWDarjtT1zdp7dc"
#define KEY_ID "ca14c887954425181b09520c3d6eeab59a0a99605bc6f3ea82ed43cdd676ce77"

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ID_C "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ID_D "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define ID_AU "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

/* ---- well-formedness ---- */

static char long_key[APIKEY_MAX + 2];

static const struct {
    const char *key;
    size_t len; /* 0: strlen */
    const char *prefix;
    bool ok;
} forms[] = {
    {KEY, 0, "pjk_live_", true},
    {KEY, 0, "", true},
    {KEY, 0, NULL, true},
    {"x", 0, NULL, true},
    {"pjk_live_x", 0, "pjk_live_", true},
    /* token68: the set, and '=' only at the end */
    {"aZ09-._~+/", 0, NULL, true},
    {"abc=", 0, NULL, true},
    {"abc==", 0, NULL, true},
    {"ab=c", 0, NULL, false},
    {"=", 0, NULL, false},
    {"==", 0, NULL, false},
    {"pjk_live_=", 0, "pjk_live_", true},
    /* the prefix: required, not alone, exact case */
    {"pjk_live_", 0, "pjk_live_", false},
    {"pjk_test_abc", 0, "pjk_live_", false},
    {"PJK_LIVE_abc", 0, "pjk_live_", false},
    {"pjk_live", 0, "pjk_live_", false},
    {"xpjk_live_abc", 0, "pjk_live_", false},
    {"", 0, NULL, false},
    {"", 0, "pjk_live_", false},
    /* bytes outside the set */
    {"pjk_live_ab cd", 0, "pjk_live_", false},
    {" pjk_live_abcd", 0, "pjk_live_", false},
    {"pjk_live_abcd ", 0, "pjk_live_", false},
    {"pjk_live_ab\tcd", 0, "pjk_live_", false},
    {"pjk_live_ab\r\ncd", 0, "pjk_live_", false},
    {"pjk_live_ab\x7f", 0, "pjk_live_", false},
    {"pjk_live_ab\x01", 0, NULL, false},
    {"pjk_live_\xc3\xa9t\xc3\xa9", 0, "pjk_live_", false},
    {"\xef\xbb\xbfpjk_live_abc", 0, NULL, false},
    {"pjk_live_a\0b", 11, "pjk_live_", false},
    {"abc\"", 0, NULL, false},
    {"abc,def", 0, NULL, false},
    {"abc;def", 0, NULL, false},
    {"abc:def", 0, NULL, false},
    {"abc%20", 0, NULL, false},
};

static void test_well_formed(void)
{
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        size_t len = forms[i].len ? forms[i].len : strlen(forms[i].key);
        if (apikey_well_formed(forms[i].key, len, forms[i].prefix) != forms[i].ok) {
            fprintf(stderr, "\nform row %zu: want %s\n", i, forms[i].ok ? "ok" : "refused");
            CU_FAIL("well-formedness");
        }
    }
    /* the length: APIKEY_MAX passes, one more does not, with or without a prefix */
    memcpy(long_key, "pjk_live_", 9);
    memset(long_key + 9, 'k', sizeof long_key - 9);
    CU_ASSERT_TRUE(apikey_well_formed(long_key, APIKEY_MAX, "pjk_live_"));
    CU_ASSERT_FALSE(apikey_well_formed(long_key, APIKEY_MAX + 1, "pjk_live_"));
    CU_ASSERT_TRUE(apikey_well_formed(long_key, APIKEY_MAX, NULL));
    CU_ASSERT_FALSE(apikey_well_formed(long_key, APIKEY_MAX + 1, NULL));
    CU_ASSERT_FALSE(apikey_well_formed(NULL, 0, NULL));
}

/* ---- ids ---- */

static void reference_id(const char *secret, const char *key, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    CU_ASSERT_PTR_NOT_NULL_FATAL(HMAC(EVP_sha256(), secret, (int)strlen(secret),
                                      (const unsigned char *)key, len, md, &mdlen));
    CU_ASSERT_EQUAL_FATAL(mdlen, 32);
    for (unsigned i = 0; i < mdlen; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

static const struct {
    const char *secret;
    const char *key;
} vectors[] = {
    {SECRET, KEY},
    {SECRET, "x"},
    {"another secret of some length", KEY},
    {"key", "The quick brown fox jumps over the lazy dog"},
    {"", "empty secret"},
    {SECRET, ""},
};

static void test_id(void)
{
    char id[65], ref[65], hid[65];
    /* the fixed vector (python3 hmac, docs/apikeys.md) */
    CU_ASSERT_TRUE(apikey_id((const unsigned char *)SECRET, strlen(SECRET), KEY, strlen(KEY), id));
    CU_ASSERT_STRING_EQUAL(id, KEY_ID);
    CU_ASSERT_TRUE(apikey_id((const unsigned char *)"key", 3,
                             "The quick brown fox jumps over the lazy dog", 43, id));
    CU_ASSERT_STRING_EQUAL(id, "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const char *s = vectors[i].secret, *k = vectors[i].key;
        reference_id(s, k, strlen(k), ref);
        CU_ASSERT_TRUE(apikey_id((const unsigned char *)s, strlen(s), k, strlen(k), id));
        CU_ASSERT_STRING_EQUAL(id, ref);
        struct apikey_hasher *h = apikey_hasher_new((const unsigned char *)s, strlen(s));
        CU_ASSERT_PTR_NOT_NULL_FATAL(h);
        /* the context is re-initialized per key: the same id every time, others between */
        for (int round = 0; round < 3; round++) {
            CU_ASSERT_TRUE(apikey_hasher_id(h, k, strlen(k), hid));
            CU_ASSERT_STRING_EQUAL(hid, ref);
            CU_ASSERT_TRUE(apikey_hasher_id(h, "other", 5, hid));
            CU_ASSERT_STRING_NOT_EQUAL(hid, ref);
        }
        apikey_hasher_free(h);
    }
    /* a different secret, a different id */
    CU_ASSERT_TRUE(apikey_id((const unsigned char *)"0123456789abcdef0123456789abcdeX", 32, KEY,
                             strlen(KEY), id));
    CU_ASSERT_STRING_NOT_EQUAL(id, KEY_ID);
    apikey_hasher_free(NULL);
}

/* ---- Redis keys ---- */

static void test_redis_key(void)
{
    char out[256];
    size_t n = apikey_redis_key("envelopd:", KEY_ID, out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "envelopd:{" KEY_ID "}:apikey");
    CU_ASSERT_EQUAL(n, strlen(out));
    CU_ASSERT_EQUAL(apikey_redis_key("", ID_A, out, sizeof out), 73);
    CU_ASSERT_STRING_EQUAL(out, "{" ID_A "}:apikey");
    CU_ASSERT_EQUAL(apikey_redis_key(NULL, ID_A, out, sizeof out), 73);
    CU_ASSERT_STRING_EQUAL(out, "{" ID_A "}:apikey");
    /* exactly fitting (NUL included), one byte short */
    CU_ASSERT_EQUAL(apikey_redis_key("p:", ID_A, out, 76), 75);
    CU_ASSERT_EQUAL(apikey_redis_key("p:", ID_A, out, 75), 0);
    CU_ASSERT_STRING_EQUAL(out, "");
    CU_ASSERT_EQUAL(apikey_redis_key("p:", ID_A, out, 0), 0);
}

/* ---- records from fields ---- */

/* The rows are kept as rows: clang-format leaves the tables alone. */
/* clang-format off */
#define MAXF 12
#define A "status", "active"
#define ORG "org", "acme"

static char big[APIKEY_SCOPES_MAX + 8];

static const struct {
    const char *f[MAXF];
    size_t n;
    uint64_t now;
    enum apikey_status want;
    const char *org, *scopes, *plan;
    uint64_t expires_at;
} records[] = {
    /* complete, minimal, any order */
    {{A, ORG, "scopes", "tasks:read,tasks:write", "plan", "pro", "expires_at", "1767225600"},
     10, 1700000000, APIKEY_ACTIVE, "acme", "tasks:read,tasks:write", "pro", 1767225600},
    {{A, ORG}, 4, 0, APIKEY_ACTIVE, "acme", "", "", 0},
    {{ORG, "plan", "free", A}, 6, 0, APIKEY_ACTIVE, "acme", "", "free", 0},
    /* no hash: unknown; odd counts: bad */
    {{NULL}, 0, 0, APIKEY_UNKNOWN, "", "", "", 0},
    {{"status"}, 1, 0, APIKEY_BAD_RECORD, "", "", "", 0},
    {{A, "org"}, 3, 0, APIKEY_BAD_RECORD, "", "", "", 0},
    /* status: required, exact */
    {{ORG}, 2, 0, APIKEY_BAD_RECORD, "acme", "", "", 0},
    {{ORG, "plan", "pro"}, 4, 0, APIKEY_BAD_RECORD, "acme", "", "pro", 0},
    {{"status", "Active", ORG}, 4, 0, APIKEY_BAD_RECORD, "acme", "", "", 0},
    {{"status", "suspended", ORG}, 4, 0, APIKEY_BAD_RECORD, "acme", "", "", 0},
    {{"status", "", ORG}, 4, 0, APIKEY_BAD_RECORD, "acme", "", "", 0},
    {{"Status", "active", ORG}, 4, 0, APIKEY_BAD_RECORD, "acme", "", "", 0},
    /* revoked wins over everything else */
    {{"status", "revoked", ORG}, 4, 0, APIKEY_REVOKED, "acme", "", "", 0},
    {{"status", "revoked"}, 2, 0, APIKEY_REVOKED, "", "", "", 0},
    {{"status", "revoked", "org", "a b", "expires_at", "x"}, 6, 0, APIKEY_REVOKED, "", "", "", 0},
    {{"status", "revoked", ORG, "expires_at", "5"}, 6, 10, APIKEY_REVOKED, "acme", "", "", 5},
    /* expiry: from that second on; 0 never */
    {{A, ORG, "expires_at", "1767225600"}, 6, 1767225599, APIKEY_ACTIVE, "acme", "", "",
     1767225600},
    {{A, ORG, "expires_at", "1767225600"}, 6, 1767225600, APIKEY_EXPIRED, "acme", "", "",
     1767225600},
    {{A, ORG, "expires_at", "0"}, 6, UINT64_MAX, APIKEY_ACTIVE, "acme", "", "", 0},
    {{A, ORG, "expires_at", "18446744073709551615"}, 6, 1767225600, APIKEY_ACTIVE, "acme", "",
     "", UINT64_MAX},
    {{A, ORG, "expires_at", "18446744073709551616"}, 6, 0, APIKEY_BAD_RECORD, "acme", "", "", 0},
    {{A, ORG, "expires_at", "-1"}, 6, 0, APIKEY_BAD_RECORD, "acme", "", "", 0},
    {{A, ORG, "expires_at", ""}, 6, 0, APIKEY_BAD_RECORD, "acme", "", "", 0},
    {{A, ORG, "expires_at", "1e9"}, 6, 0, APIKEY_BAD_RECORD, "acme", "", "", 0},
    {{A, ORG, "expires_at", " 5"}, 6, 0, APIKEY_BAD_RECORD, "acme", "", "", 0},
    /* org: required when active, its set and size */
    {{A}, 2, 0, APIKEY_BAD_RECORD, "", "", "", 0},
    {{A, "org", ""}, 4, 0, APIKEY_BAD_RECORD, "", "", "", 0},
    {{A, "org", "Org_1.x:y@z-9"}, 4, 0, APIKEY_ACTIVE, "Org_1.x:y@z-9", "", "", 0},
    {{A, "org", "ac me"}, 4, 0, APIKEY_BAD_RECORD, "", "", "", 0},
    {{A, "org", "acme\r\nX-Evil: 1"}, 4, 0, APIKEY_BAD_RECORD, "", "", "", 0},
    {{A, "org", "acm\xc3\xa9"}, 4, 0, APIKEY_BAD_RECORD, "", "", "", 0},
    {{A, "org", "a,b"}, 4, 0, APIKEY_BAD_RECORD, "", "", "", 0},
    /* plan: may be empty, a conf name */
    {{A, ORG, "plan", ""}, 6, 0, APIKEY_ACTIVE, "acme", "", "", 0},
    {{A, ORG, "plan", "pro:x"}, 6, 0, APIKEY_BAD_RECORD, "acme", "", "", 0},
    {{A, ORG, "plan", "p r o"}, 6, 0, APIKEY_BAD_RECORD, "acme", "", "", 0},
    /* scopes: commas and spaces, normalized */
    {{A, ORG, "scopes", "tasks:read tasks:write"}, 6, 0, APIKEY_ACTIVE, "acme",
     "tasks:read,tasks:write", "", 0},
    {{A, ORG, "scopes", " ,a, ,b ,, c/d.e_f-g ,"}, 6, 0, APIKEY_ACTIVE, "acme", "a,b,c/d.e_f-g",
     "", 0},
    {{A, ORG, "scopes", ""}, 6, 0, APIKEY_ACTIVE, "acme", "", "", 0},
    {{A, ORG, "scopes", " , "}, 6, 0, APIKEY_ACTIVE, "acme", "", "", 0},
    {{A, ORG, "scopes", "tasks:*"}, 6, 0, APIKEY_BAD_RECORD, "acme", "", "", 0},
    {{A, ORG, "scopes", "a\tb"}, 6, 0, APIKEY_BAD_RECORD, "acme", "", "", 0},
    /* unknown fields are ignored, whatever they hold */
    {{A, ORG, "created_at", "1700000000", "note", "a b\r\n\xff", "STATUS", "revoked"}, 10, 0,
     APIKEY_ACTIVE, "acme", "", "", 0},
    /* a known field twice (not from HGETALL, but from a caller's bug) */
    {{A, ORG, "org", "other"}, 6, 0, APIKEY_BAD_RECORD, "acme", "", "", 0},
    {{A, ORG, "status", "revoked"}, 6, 0, APIKEY_BAD_RECORD, "acme", "", "", 0},
};

/* clang-format on */

static void check_record(const char *what, size_t row, const struct apikey_record *r,
                         enum apikey_status want, const char *org, const char *scopes,
                         const char *plan, uint64_t expires_at)
{
    if (r->status != want || strcmp(r->org, org) != 0 || strcmp(r->scopes, scopes) != 0 ||
        strcmp(r->plan, plan) != 0 || r->expires_at != expires_at) {
        fprintf(stderr, "\n%s row %zu: got %s org=%s scopes=%s plan=%s expires_at=%llu, want %s\n",
                what, row, apikey_status_str(r->status), r->org, r->scopes, r->plan,
                (unsigned long long)r->expires_at, apikey_status_str(want));
        CU_FAIL(what);
    }
}

static void test_fields(void)
{
    struct apikey_record r;
    for (size_t i = 0; i < sizeof records / sizeof records[0]; i++) {
        size_t lens[MAXF];
        for (size_t k = 0; k < records[i].n; k++)
            lens[k] = strlen(records[i].f[k]);
        enum apikey_status s = apikey_from_fields(ID_A, records[i].f, lens, records[i].n,
                                                  records[i].now, &r);
        CU_ASSERT_EQUAL(s, r.status);
        CU_ASSERT_STRING_EQUAL(r.id, ID_A);
        check_record("fields", i, &r, records[i].want, records[i].org, records[i].scopes,
                     records[i].plan, records[i].expires_at);
    }
    /* at and over each size limit */
    static const struct {
        const char *name;
        size_t max; /* longest value taken */
        char fill;
    } sizes[] = {{"org", APIKEY_ORG_MAX - 1, 'o'},
                 {"scopes", APIKEY_SCOPES_MAX - 1, 's'},
                 {"plan", APIKEY_PLAN_MAX - 1, 'p'}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (size_t extra = 0; extra < 2; extra++) {
            memset(big, sizes[i].fill, sizeof big);
            const char *f[] = {"status", "active", sizes[i].name, big, "org", "acme"};
            size_t lens[] = {6, 6, strlen(sizes[i].name), sizes[i].max + extra, 3, 4};
            size_t n = strcmp(sizes[i].name, "org") == 0 ? 4 : 6;
            enum apikey_status s = apikey_from_fields(ID_A, f, lens, n, 0, &r);
            if (s != (extra ? APIKEY_BAD_RECORD : APIKEY_ACTIVE)) {
                fprintf(stderr, "\n%s of %zu: %s\n", sizes[i].name, sizes[i].max + extra,
                        apikey_status_str(s));
                CU_FAIL("value size");
            }
        }
    }
    /* values are not NUL terminated: a NUL inside one is a bad byte */
    const char *f[] = {"status", "active", "org", "ac\0me"};
    size_t lens[] = {6, 6, 3, 5};
    CU_ASSERT_EQUAL(apikey_from_fields(ID_A, f, lens, 4, 0, &r), APIKEY_BAD_RECORD);
    /* only LEN bytes are read */
    const char *g[] = {"statusX", "activeX", "orgX", "acmeX"};
    size_t glens[] = {6, 6, 3, 4};
    CU_ASSERT_EQUAL(apikey_from_fields(ID_A, g, glens, 4, 0, &r), APIKEY_ACTIVE);
    CU_ASSERT_STRING_EQUAL(r.org, "acme");
    /* a NULL id leaves the id empty */
    CU_ASSERT_EQUAL(apikey_from_fields(NULL, g, glens, 4, 0, &r), APIKEY_ACTIVE);
    CU_ASSERT_STRING_EQUAL(r.id, "");
}

/* ---- records from hiredis replies ---- */

static redisReply str(const char *s)
{
    redisReply r = {.type = REDIS_REPLY_STRING, .len = strlen(s), .str = (char *)s};
    return r;
}

static void test_reply(void)
{
    struct apikey_record r;
    redisReply e[4] = {str("status"), str("active"), str("org"), str("acme")};
    redisReply *pe[4] = {&e[0], &e[1], &e[2], &e[3]};
    redisReply arr = {.type = REDIS_REPLY_ARRAY, .elements = 4, .element = pe};
    CU_ASSERT_EQUAL(apikey_from_reply(ID_B, &arr, 0, &r), APIKEY_ACTIVE);
    CU_ASSERT_STRING_EQUAL(r.org, "acme");
    CU_ASSERT_STRING_EQUAL(r.id, ID_B);
    arr.elements = 0;
    CU_ASSERT_EQUAL(apikey_from_reply(ID_B, &arr, 0, &r), APIKEY_UNKNOWN);
    arr.elements = 3;
    CU_ASSERT_EQUAL(apikey_from_reply(ID_B, &arr, 0, &r), APIKEY_BAD_RECORD);
    /* an element that is no string */
    arr.elements = 4;
    e[3].type = REDIS_REPLY_NIL;
    CU_ASSERT_EQUAL(apikey_from_reply(ID_B, &arr, 0, &r), APIKEY_BAD_RECORD);
    e[3].type = REDIS_REPLY_INTEGER;
    CU_ASSERT_EQUAL(apikey_from_reply(ID_B, &arr, 0, &r), APIKEY_BAD_RECORD);
    pe[3] = NULL;
    CU_ASSERT_EQUAL(apikey_from_reply(ID_B, &arr, 0, &r), APIKEY_BAD_RECORD);
    /* nil: no record; no reply, an error, another shape: no verdict */
    redisReply nil = {.type = REDIS_REPLY_NIL};
    CU_ASSERT_EQUAL(apikey_from_reply(ID_B, &nil, 0, &r), APIKEY_UNKNOWN);
    CU_ASSERT_EQUAL(apikey_from_reply(ID_B, NULL, 0, &r), APIKEY_UNDECIDED);
    CU_ASSERT_EQUAL(r.status, APIKEY_UNDECIDED);
    redisReply err = {.type = REDIS_REPLY_ERROR, .len = 9, .str = (char *)"WRONGTYPE"};
    CU_ASSERT_EQUAL(apikey_from_reply(ID_B, &err, 0, &r), APIKEY_UNDECIDED);
    redisReply s = str("OK");
    CU_ASSERT_EQUAL(apikey_from_reply(ID_B, &s, 0, &r), APIKEY_UNDECIDED);
    redisReply i = {.type = REDIS_REPLY_INTEGER, .integer = 1};
    CU_ASSERT_EQUAL(apikey_from_reply(ID_B, &i, 0, &r), APIKEY_UNDECIDED);
    /* a hash far bigger than any record */
    arr.elements = 100000;
    CU_ASSERT_EQUAL(apikey_from_reply(ID_B, &arr, 0, &r), APIKEY_BAD_RECORD);
}

/* ---- the keys file ---- */

static char path[64];

static const char *write_file(const char *text, size_t len)
{
    snprintf(path, sizeof path, "/tmp/test_apikey.XXXXXX");
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(write(fd, text, len) == (ssize_t)len);
    close(fd);
    return path;
}

/* clang-format off */
static const char good_file[] =
    "# envelopd keys file\n"
    "\n"
    ID_A " status=active org=acme scopes=tasks:read,tasks:write plan=pro expires_at=1767225600\n"
    "  " ID_B "\tstatus=revoked   # revoked 2025-01-02\n"
    "\t# an indented comment\n"
    "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789ABCDEF plan=free org=beta "
    "status=active\r\n"
    "   \n"
    ID_D " status=active org=old "
    "expires_at=1000"; /* no final newline */
/* clang-format on */

static void test_file_good(void)
{
    char err[256];
    struct apikey_record r;
    struct apikey_file *f = apikey_file_load(write_file(good_file, sizeof good_file - 1), err,
                                             sizeof err);
    unlink(path);
    if (!f)
        fprintf(stderr, "\n%s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(apikey_file_count(f), 4);
    CU_ASSERT_TRUE(apikey_file_find(f, ID_A, 1700000000, &r));
    check_record("file", 0, &r, APIKEY_ACTIVE, "acme", "tasks:read,tasks:write", "pro", 1767225600);
    CU_ASSERT_STRING_EQUAL(r.id, ID_A);
    CU_ASSERT_TRUE(apikey_file_find(f, ID_A, 1767225600, &r));
    CU_ASSERT_EQUAL(r.status, APIKEY_EXPIRED);
    CU_ASSERT_TRUE(apikey_file_find(f, ID_B, 0, &r));
    check_record("file", 1, &r, APIKEY_REVOKED, "", "", "", 0);
    /* uppercase in the file or in the query: the same id, given back in lowercase */
    CU_ASSERT_TRUE(apikey_file_find(f, ID_C, 0, &r));
    check_record("file", 2, &r, APIKEY_ACTIVE, "beta", "", "free", 0);
    CU_ASSERT_STRING_EQUAL(r.id, ID_C);
    CU_ASSERT_TRUE(apikey_file_find(
        f, "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF", 0, &r));
    CU_ASSERT_STRING_EQUAL(r.id, ID_C);
    CU_ASSERT_TRUE(apikey_file_find(f, ID_D, 999, &r));
    CU_ASSERT_EQUAL(r.status, APIKEY_ACTIVE);
    CU_ASSERT_TRUE(apikey_file_find(f, ID_D, 1000, &r));
    CU_ASSERT_EQUAL(r.status, APIKEY_EXPIRED);
    /* absent and not ids */
    CU_ASSERT_FALSE(apikey_file_find(f, KEY_ID, 0, &r));
    CU_ASSERT_EQUAL(r.status, APIKEY_UNKNOWN);
    CU_ASSERT_STRING_EQUAL(r.id, KEY_ID);
    CU_ASSERT_FALSE(apikey_file_find(f, ID_A "a", 0, &r));
    CU_ASSERT_FALSE(apikey_file_find(f, "aaaa", 0, &r));
    CU_ASSERT_FALSE(apikey_file_find(f, "", 0, &r));
    CU_ASSERT_FALSE(apikey_file_find(f, NULL, 0, &r));
    CU_ASSERT_FALSE(apikey_file_find(NULL, ID_A, 0, &r));
    apikey_file_free(f);
    apikey_file_free(NULL);

    /* empty files and files of comments hold no keys, and that is fine */
    f = apikey_file_load(write_file("", 0), err, sizeof err);
    unlink(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(apikey_file_count(f), 0);
    CU_ASSERT_FALSE(apikey_file_find(f, ID_A, 0, &r));
    apikey_file_free(f);
    f = apikey_file_load(write_file("# none\r\n\r\n", 10), err, sizeof err);
    unlink(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(apikey_file_count(f), 0);
    apikey_file_free(f);
}

/* Many keys: every one found, through full buckets. */
static void test_file_many(void)
{
    enum { N = 5000 };
    char *text = malloc((size_t)N * 100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    size_t len = 0;
    for (unsigned i = 0; i < N; i++) {
        char id[65];
        apikey_id((const unsigned char *)SECRET, strlen(SECRET), (const char *)&i, sizeof i, id);
        len += (size_t)sprintf(text + len, "%s status=active org=o%u\n", id, i);
    }
    char err[256];
    struct apikey_file *f = apikey_file_load(write_file(text, len), err, sizeof err);
    unlink(path);
    free(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(apikey_file_count(f), N);
    unsigned found = 0;
    for (unsigned i = 0; i < N; i++) {
        char id[65], org[16];
        struct apikey_record r;
        apikey_id((const unsigned char *)SECRET, strlen(SECRET), (const char *)&i, sizeof i, id);
        snprintf(org, sizeof org, "o%u", i);
        found += apikey_file_find(f, id, 0, &r) && strcmp(r.org, org) == 0;
    }
    CU_ASSERT_EQUAL(found, N);
    apikey_file_free(f);
}

/* clang-format off */
#define GOOD ID_A " status=active org=acme\n"

static const struct {
    const char *text;
    size_t len;             /* 0: strlen */
    const char *err;        /* after "PATH:" */
} bad_files[] = {
    {"nope\n", 0, "1: the line does not start with an id"},
    {GOOD "aaaa status=active org=acme\n", 0, "2: the line does not start with an id"},
    {GOOD ID_A "a status=active org=acme\n", 0, "2: the line does not start with an id"},
    {"\n\n" ID_A "status=active\n", 0, "3: the line does not start with an id"},
    {"gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg status=active org=x\n", 0,
     "1: the line does not start with an id"},
    {GOOD GOOD, 0, "2: duplicate id (first on line 1)"},
    {GOOD "# x\n" ID_B " status=revoked\n"
          ID_AU " status=revoked\n",
     0, "4: duplicate id (first on line 1)"},
    {ID_A "\n", 0, "1: no status"},
    {ID_A " org=acme\n", 0, "1: no status"},
    {ID_A " status=active\n", 0, "1: an active key needs an org"},
    {ID_A " status=active org=\n", 0, "1: org is not"},
    {ID_A " status=enabled org=acme\n", 0, "1: status is neither active nor revoked"},
    {ID_A " status=active org=acme org=beta\n", 0, "1: a field is given twice"},
    {ID_A " status=active org=acme scope=tasks:read\n", 0, "1: unknown field"},
    {ID_A " status=active org=acme created_at=5\n", 0, "1: unknown field"},
    {ID_A " status=active org=acme tasks:read\n", 0, "1: expected NAME=VALUE"},
    {ID_A " status=active org=acme expires_at=soon\n", 0, "1: expires_at is not a number"},
    {ID_A " status=active org=acme plan=a/b\n", 0, "1: plan is not"},
    {ID_A " status=active org=acme scopes=a;b\n", 0, "1: scopes are not"},
    {ID_A " status=active org=ac\x01me\n", 0, "1: a control character or a non-ASCII byte"},
    {ID_A " status=active org=acm\xc3\xa9\n", 0, "1: a control character or a non-ASCII byte"},
    {ID_A " status=active org=a\0cme\n", sizeof(ID_A " status=active org=a\0cme\n") - 1, "1: a control character or a non-ASCII byte"},
    {ID_A " status=active\rorg=acme\n", 0, "1: a control character or a non-ASCII byte"},
    {"\xef\xbb\xbf" GOOD, 0, "1: a control character or a non-ASCII byte"},
    /* a revoked line is checked as strictly as any */
    {ID_A " status=revoked org=a,b\n", 0, "1: org is not"},
};

/* clang-format on */

static void test_file_bad(void)
{
    char err[256], want[300];
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        const char *t = bad_files[i].text;
        size_t len = bad_files[i].len ? bad_files[i].len : strlen(t);
        struct apikey_file *f = apikey_file_load(write_file(t, len), err, sizeof err);
        snprintf(want, sizeof want, "%s:%s", path, bad_files[i].err);
        unlink(path);
        if (f || strncmp(err, want, strlen(want)) != 0) {
            fprintf(stderr, "\nbad file row %zu: got \"%s\", want \"%s...\"\n", i,
                    f ? "(loaded)" : err, want);
            CU_FAIL("bad keys file");
        }
        apikey_file_free(f);
    }
    /* a line at the limit, counted without its CR, and one over it */
    size_t n = APIKEY_FILE_LINE_MAX + 2;
    char *line = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(line);
    memset(line, ' ', n);
    memcpy(line, GOOD, sizeof GOOD - 2);
    line[n - 2] = '\r';
    line[n - 1] = '\n';
    struct apikey_file *f = apikey_file_load(write_file(line, n - 1), err, sizeof err);
    unlink(path);
    CU_ASSERT_PTR_NOT_NULL(f); /* 2048 characters and a CR */
    apikey_file_free(f);
    f = apikey_file_load(write_file(line, n), err, sizeof err);
    unlink(path);
    CU_ASSERT_PTR_NOT_NULL(f);
    apikey_file_free(f);
    line[n - 2] = ' ';
    f = apikey_file_load(write_file(line, n), err, sizeof err);
    snprintf(want, sizeof want, "%s:1: line longer than 2048 characters", path);
    unlink(path);
    CU_ASSERT_PTR_NULL(f);
    CU_ASSERT_STRING_EQUAL(err, want);
    free(line);
    /* a missing file */
    f = apikey_file_load("/nonexistent/keys", err, sizeof err);
    CU_ASSERT_PTR_NULL(f);
    CU_ASSERT_STRING_EQUAL(err, "/nonexistent/keys: cannot open: No such file or directory");
    /* a directory cannot be read */
    f = apikey_file_load("/", err, sizeof err);
    CU_ASSERT_PTR_NULL(f);
    CU_ASSERT_STRING_EQUAL(err, "/: cannot be read");
    /* a short error buffer truncates, never overflows */
    char small[8];
    CU_ASSERT_PTR_NULL(apikey_file_load("/nonexistent/keys", small, sizeof small));
    CU_ASSERT_STRING_EQUAL(small, "/nonexi");
}

/* ---- the cache ---- */

static struct apikey_record rec_of(enum apikey_status s, const char *org, uint64_t expires_at)
{
    struct apikey_record r;
    memset(&r, 0, sizeof r);
    r.status = s;
    snprintf(r.org, sizeof r.org, "%s", org);
    r.expires_at = expires_at;
    return r;
}

static void test_cache_basic(void)
{
    struct apikey_cache *c = apikey_cache_new(4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    struct apikey_record r, a = rec_of(APIKEY_ACTIVE, "acme", 0);
    /* miss, then a hit until the TTL is over */
    CU_ASSERT_FALSE(apikey_cache_get(c, ID_A, 1000, &r));
    apikey_cache_put(c, ID_A, &a, 1000, 500);
    CU_ASSERT_EQUAL(apikey_cache_count(c), 1);
    CU_ASSERT_TRUE(apikey_cache_get(c, ID_A, 1000, &r));
    CU_ASSERT_EQUAL(r.status, APIKEY_ACTIVE);
    CU_ASSERT_STRING_EQUAL(r.org, "acme");
    CU_ASSERT_STRING_EQUAL(r.id, ID_A);
    CU_ASSERT_TRUE(apikey_cache_get(c, ID_A, 1499, &r));
    CU_ASSERT_FALSE(apikey_cache_get(c, ID_A, 1500, &r));
    CU_ASSERT_EQUAL(apikey_cache_count(c), 0);
    CU_ASSERT_FALSE(apikey_cache_get(c, ID_A, 1000, &r)); /* gone, not just hidden */
    /* negative entries */
    struct apikey_record u = rec_of(APIKEY_UNKNOWN, "", 0);
    apikey_cache_put(c, ID_B, &u, 2000, 100);
    CU_ASSERT_TRUE(apikey_cache_get(c, ID_B, 2050, &r));
    CU_ASSERT_EQUAL(r.status, APIKEY_UNKNOWN);
    CU_ASSERT_STRING_EQUAL(r.id, ID_B);
    CU_ASSERT_FALSE(apikey_cache_get(c, ID_B, 2100, &r));
    struct apikey_record v = rec_of(APIKEY_REVOKED, "acme", 0);
    apikey_cache_put(c, ID_B, &v, 2000, 100);
    CU_ASSERT_TRUE(apikey_cache_get(c, ID_B, 2000, &r));
    CU_ASSERT_EQUAL(r.status, APIKEY_REVOKED);
    /* replacing: the new record and the new TTL */
    apikey_cache_put(c, ID_B, &a, 2000, 1000);
    CU_ASSERT_EQUAL(apikey_cache_count(c), 1);
    CU_ASSERT_TRUE(apikey_cache_get(c, ID_B, 2500, &r));
    CU_ASSERT_EQUAL(r.status, APIKEY_ACTIVE);
    /* TTL 0, MALFORMED and UNDECIDED drop the entry and store nothing */
    apikey_cache_put(c, ID_B, &a, 2000, 0);
    CU_ASSERT_FALSE(apikey_cache_get(c, ID_B, 2000, &r));
    struct apikey_record m = rec_of(APIKEY_MALFORMED, "", 0), d = rec_of(APIKEY_UNDECIDED, "", 0);
    apikey_cache_put(c, ID_B, &a, 2000, 100);
    apikey_cache_put(c, ID_B, &d, 2000, 100);
    CU_ASSERT_FALSE(apikey_cache_get(c, ID_B, 2000, &r));
    apikey_cache_put(c, ID_B, &m, 2000, 100);
    CU_ASSERT_FALSE(apikey_cache_get(c, ID_B, 2000, &r));
    CU_ASSERT_EQUAL(apikey_cache_count(c), 0);
    /* a cached active key expires by its own expires_at, before the entry's TTL */
    struct apikey_record e = rec_of(APIKEY_ACTIVE, "acme", 100);
    apikey_cache_put(c, ID_C, &e, 99000, 60000);
    CU_ASSERT_TRUE(apikey_cache_get(c, ID_C, 99999, &r));
    CU_ASSERT_EQUAL(r.status, APIKEY_ACTIVE);
    CU_ASSERT_TRUE(apikey_cache_get(c, ID_C, 100000, &r));
    CU_ASSERT_EQUAL(r.status, APIKEY_EXPIRED);
    /* a TTL that would overflow the clock lasts forever */
    apikey_cache_put(c, ID_A, &a, 5, UINT64_MAX);
    CU_ASSERT_TRUE(apikey_cache_get(c, ID_A, UINT64_MAX - 1, &r));
    /* ids it does not take */
    apikey_cache_put(c, "", &a, 0, 100);
    apikey_cache_put(c, ID_A "x", &a, 0, 100);
    apikey_cache_put(c, NULL, &a, 0, 100);
    CU_ASSERT_FALSE(apikey_cache_get(c, "", 0, &r));
    CU_ASSERT_FALSE(apikey_cache_get(c, NULL, 0, &r));
    CU_ASSERT_EQUAL(apikey_cache_count(c), 2);
    /* prefixes of an id are other ids */
    CU_ASSERT_FALSE(apikey_cache_get(c, "aaaa", 10, &r));
    apikey_cache_clear(c);
    CU_ASSERT_EQUAL(apikey_cache_count(c), 0);
    CU_ASSERT_FALSE(apikey_cache_get(c, ID_A, 10, &r));
    apikey_cache_free(c);
    apikey_cache_free(NULL);

    /* capacity 0: nothing is kept */
    c = apikey_cache_new(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    apikey_cache_put(c, ID_A, &a, 0, 100);
    CU_ASSERT_FALSE(apikey_cache_get(c, ID_A, 0, &r));
    apikey_cache_free(c);
}

static void id_of(unsigned i, char out[65])
{
    snprintf(out, 65, "%064x", i);
}

/* Least recently used goes first; a get counts as a use. */
static void test_cache_lru(void)
{
    enum { CAP = 3 };
    struct apikey_cache *c = apikey_cache_new(CAP);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char id[65];
    struct apikey_record r, a = rec_of(APIKEY_ACTIVE, "acme", 0);
    for (unsigned i = 0; i < CAP; i++) {
        id_of(i, id);
        apikey_cache_put(c, id, &a, 0, 1000);
    }
    id_of(0, id);
    CU_ASSERT_TRUE(apikey_cache_get(c, id, 1, &r)); /* 0 is now the most recent */
    id_of(3, id);
    apikey_cache_put(c, id, &a, 1, 1000); /* evicts 1 */
    CU_ASSERT_EQUAL(apikey_cache_count(c), CAP);
    static const bool present[] = {true, false, true, true};
    for (unsigned i = 0; i < 4; i++) {
        id_of(i, id);
        CU_ASSERT_EQUAL(apikey_cache_get(c, id, 2, &r), present[i]);
    }
    /* a replace counts as a use: after the gets, 0 is the least recent (3, 2, 0) */
    id_of(0, id);
    apikey_cache_put(c, id, &a, 3, 1000); /* 0, 3, 2 */
    id_of(4, id);
    apikey_cache_put(c, id, &a, 3, 1000); /* evicts 2 */
    id_of(2, id);
    CU_ASSERT_FALSE(apikey_cache_get(c, id, 4, &r));
    id_of(0, id);
    CU_ASSERT_TRUE(apikey_cache_get(c, id, 4, &r));
    apikey_cache_free(c);

    /* churn through a bigger cache: the count stays bounded, the newest are all there */
    c = apikey_cache_new(100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    for (unsigned i = 0; i < 10000; i++) {
        id_of(i * 7919u, id);
        struct apikey_record x = rec_of(i % 3 ? APIKEY_ACTIVE : APIKEY_UNKNOWN, "o", 0);
        apikey_cache_put(c, id, &x, i, 1000000);
        if (i % 5 == 0) {
            id_of((i / 2) * 7919u, id);
            (void)apikey_cache_get(c, id, i, &r);
        }
        CU_ASSERT_FATAL(apikey_cache_count(c) <= 100);
    }
    unsigned hits = 0;
    for (unsigned i = 9950; i < 10000; i++) {
        id_of(i * 7919u, id);
        hits += apikey_cache_get(c, id, 10000, &r);
    }
    CU_ASSERT_EQUAL(hits, 50);
    apikey_cache_free(c);
}

/* ---- scopes ---- */

static const struct {
    const char *scopes;
    const char *required;
    bool granted;
} scopes[] = {
    {"tasks:read,tasks:write", "tasks:write", true},
    {"tasks:read,tasks:write", "tasks:read", true},
    {"tasks:read tasks:write", "tasks:write", true},
    {" , tasks:read ,, tasks:write , ", "tasks:write", true},
    {"a\tb", "b", true},
    {"tasks:write", "tasks:write", true},
    /* exact tokens only: no prefix, no suffix, no case folding */
    {"tasks", "tasks:write", false},
    {"tasks:write", "tasks", false},
    {"tasks:writer", "tasks:write", false},
    {"xtasks:write", "tasks:write", false},
    {"tasks:*", "tasks:write", false},
    {"*", "tasks:write", false},
    {"Tasks:Write", "tasks:write", false},
    {"tasks:read,tasks:writ", "tasks:write", false},
    /* nothing granted, nothing asked, or a list asked */
    {"", "tasks:write", false},
    {",,, ", "tasks:write", false},
    {"tasks:read,tasks:write", "", false},
    {"tasks:read,tasks:write", "tasks:read,tasks:write", false},
    {"tasks:read tasks:write", "tasks:read tasks:write", false},
    {"a,,b", ",", false},
    {NULL, "a", false},
    {"a", NULL, false},
};

static void test_scopes(void)
{
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++) {
        if (apikey_scope_granted(scopes[i].scopes, scopes[i].required) != scopes[i].granted) {
            fprintf(stderr, "\nscope row %zu: want %s\n", i,
                    scopes[i].granted ? "granted" : "refused");
            CU_FAIL("scope");
        }
    }
}

static void test_status_str(void)
{
    CU_ASSERT_STRING_EQUAL(apikey_status_str(APIKEY_ACTIVE), "active");
    CU_ASSERT_STRING_EQUAL(apikey_status_str(APIKEY_BAD_RECORD), "bad record");
    CU_ASSERT_STRING_EQUAL(apikey_status_str(APIKEY_UNDECIDED), "undecided");
    CU_ASSERT_STRING_EQUAL(apikey_status_str((enum apikey_status)99), "?");
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("apikey", NULL, NULL);
    if (!s)
        return;
    CU_add_test(s, "well-formed keys, with and without a prefix", test_well_formed);
    CU_add_test(s, "ids are HMAC-SHA256 under the secret", test_id);
    CU_add_test(s, "Redis keys with a hash tag", test_redis_key);
    CU_add_test(s, "records from HGETALL fields", test_fields);
    CU_add_test(s, "records from hiredis replies", test_reply);
    CU_add_test(s, "keys file: good files", test_file_good);
    CU_add_test(s, "keys file: thousands of keys", test_file_many);
    CU_add_test(s, "keys file: bad lines and their numbers", test_file_bad);
    CU_add_test(s, "cache: hits, TTL, negative entries", test_cache_basic);
    CU_add_test(s, "cache: LRU eviction", test_cache_lru);
    CU_add_test(s, "scopes: exact tokens", test_scopes);
    CU_add_test(s, "status names", test_status_str);
}
