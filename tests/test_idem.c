/*
 * test_idem: Idempotency-Key values (sf-string and bare, every refusal),
 * fingerprints (what makes two requests the same, checked against
 * OpenSSL's one-shot SHA-256 of the documented layout, and body pieces
 * in any split), the stored-header allowlist, and claims and responses
 * encoded and decoded back (round trips, exact bytes, and every way a
 * stored value can be damaged or foreign).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>
#include <openssl/evp.h>

#include "idem.h"

void test_register(void);

static EVP_MD *sha256;

static int suite_init(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    return sha256 ? 0 : -1;
}

static int suite_clean(void)
{
    EVP_MD_free(sha256);
    return 0;
}

/* ---- keys ---- */

static const struct {
    const char *v;
    const char *key; /* NULL: refused */
} keys[] = {
    {"8e03978e-40d5-43e8-bc93-6894a57f9324", "8e03978e-40d5-43e8-bc93-6894a57f9324"},
    {"\"8e03978e-40d5-43e8-bc93-6894a57f9324\"", "8e03978e-40d5-43e8-bc93-6894a57f9324"},
    {"\"a b\"", "a b"},                 /* blanks only inside quotes */
    {"\"a\\\"b\\\\c\"", "a\"b\\c"},      /* the two escapes */
    {"k_1.2~3+4/5=", "k_1.2~3+4/5="},
    {"\"\"", NULL},                     /* empty */
    {"", NULL},
    {"\"", NULL},
    {"\"abc", NULL},                    /* unterminated */
    {"abc\"", NULL},
    {"\"a\"b\"", NULL},                 /* a bare quote inside */
    {"\"a\\nb\"", NULL},                /* no other escape */
    {"\"a\\\"", NULL},                  /* escape at the end */
    {"a b", NULL},                      /* bare: no blank */
    {"a,b", NULL},                      /* a list */
    {"a;b=1", NULL},                    /* parameters */
    {"a\\b", NULL},
    {"caf\xc3\xa9", NULL},              /* ASCII only */
    {"\"caf\xc3\xa9\"", NULL},
    {"a\tb", NULL},
    {"\"a\tb\"", NULL},
};

static void test_keys(void)
{
    char out[IDEM_KEY_MAX + 1];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        size_t n = idem_key_parse(keys[i].v, strlen(keys[i].v), out, sizeof out);
        if (!keys[i].key) {
            if (n != 0)
                printf("\n  row %zu: %s accepted\n", i, keys[i].v);
            CU_ASSERT_EQUAL(n, 0);
        } else {
            CU_ASSERT_EQUAL(n, strlen(keys[i].key));
            CU_ASSERT_STRING_EQUAL(out, keys[i].key);
        }
    }
    /* lengths: 255 bare or quoted; 256 not */
    char v[IDEM_KEY_MAX + 4];
    memset(v, 'k', sizeof v);
    CU_ASSERT_EQUAL(idem_key_parse(v, IDEM_KEY_MAX, out, sizeof out), IDEM_KEY_MAX);
    CU_ASSERT_EQUAL(idem_key_parse(v, IDEM_KEY_MAX + 1, out, sizeof out), 0);
    v[0] = '"';
    v[IDEM_KEY_MAX + 1] = '"';
    CU_ASSERT_EQUAL(idem_key_parse(v, IDEM_KEY_MAX + 2, out, sizeof out), IDEM_KEY_MAX);
    v[IDEM_KEY_MAX + 2] = '"';
    v[IDEM_KEY_MAX + 1] = 'k';
    CU_ASSERT_EQUAL(idem_key_parse(v, IDEM_KEY_MAX + 3, out, sizeof out), 0);
    /* a buffer that could not hold the longest key is refused outright */
    CU_ASSERT_EQUAL(idem_key_parse("abc", 3, out, IDEM_KEY_MAX), 0);
}

/* ---- fingerprints ---- */

static void fp_of(const char *method, const char *path, const char *query, const char *const *body,
                  unsigned char out[IDEM_FP_LEN])
{
    struct idem_fp fp;
    CU_ASSERT_EQUAL_FATAL(idem_fp_init(&fp), 0);
    CU_ASSERT_EQUAL(idem_fp_begin(&fp, sha256, method, path, strlen(path), query, strlen(query)),
                    0);
    for (size_t i = 0; body && body[i]; i++)
        CU_ASSERT_EQUAL(idem_fp_body(&fp, body[i], strlen(body[i])), 0);
    CU_ASSERT_EQUAL(idem_fp_end(&fp, out), 0);
    idem_fp_free(&fp);
}

/* The documented layout: each field's length as 8 little-endian bytes, then its bytes; the body raw. */
static void reference(const char *method, const char *path, const char *query, const char *body,
                      unsigned char out[IDEM_FP_LEN])
{
    unsigned char buf[1024];
    size_t n = 0;
    const char *f[] = {method, path, query};
    for (int k = 0; k < 3; k++) {
        size_t l = strlen(f[k]);
        for (int i = 0; i < 8; i++)
            buf[n++] = (unsigned char)((uint64_t)l >> (8 * i));
        memcpy(buf + n, f[k], l);
        n += l;
    }
    memcpy(buf + n, body, strlen(body));
    n += strlen(body);
    unsigned int ol = 0;
    CU_ASSERT_EQUAL(EVP_Digest(buf, n, out, &ol, EVP_sha256(), NULL), 1);
}

static void test_fingerprint(void)
{
    unsigned char a[IDEM_FP_LEN], b[IDEM_FP_LEN], ref[IDEM_FP_LEN];
    const char *whole[] = {"{\"amount\":100}", NULL};
    const char *split[] = {"{\"amo", "", "unt\":1", "00}", NULL};
    fp_of("POST", "/v1/charges", "x=1", whole, a);
    fp_of("POST", "/v1/charges", "x=1", split, b);
    reference("POST", "/v1/charges", "x=1", "{\"amount\":100}", ref);
    CU_ASSERT_EQUAL(memcmp(a, b, IDEM_FP_LEN), 0);   /* pieces do not matter */
    CU_ASSERT_EQUAL(memcmp(a, ref, IDEM_FP_LEN), 0); /* the documented layout */
    /* every part matters, and a field's bytes never move into the next */
    static const struct {
        const char *m, *p, *q, *body;
    } other[] = {
        {"PATCH", "/v1/charges", "x=1", "{\"amount\":100}"},
        {"POST", "/v1/charge", "x=1", "{\"amount\":100}"},
        {"POST", "/v1/charges", "x=2", "{\"amount\":100}"},
        {"POST", "/v1/charges", "", "{\"amount\":100}"},
        {"POST", "/v1/charges", "x=1", "{\"amount\":101}"},
        {"POST", "/v1/charges", "x=1", ""},
        {"POST", "/v1/chargesx=1", "", "{\"amount\":100}"},
        {"POST", "/v1/charges", "", "x=1{\"amount\":100}"},
        {"POST/v1/charges", "", "x=1", "{\"amount\":100}"},
    };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        const char *body[] = {other[i].body, NULL};
        fp_of(other[i].m, other[i].p, other[i].q, body, b);
        CU_ASSERT_NOT_EQUAL(memcmp(a, b, IDEM_FP_LEN), 0);
    }
    /* misuse: body or end before begin, begin without a digest */
    struct idem_fp fp;
    CU_ASSERT_EQUAL_FATAL(idem_fp_init(&fp), 0);
    CU_ASSERT_EQUAL(idem_fp_body(&fp, "x", 1), -1);
    CU_ASSERT_EQUAL(idem_fp_end(&fp, a), -1);
    CU_ASSERT_EQUAL(idem_fp_begin(&fp, NULL, "POST", "/", 1, "", 0), -1);
    /* reused: begin restarts */
    CU_ASSERT_EQUAL(idem_fp_begin(&fp, sha256, "GET", "/", 1, "", 0), 0);
    CU_ASSERT_EQUAL(idem_fp_body(&fp, "junk", 4), 0);
    CU_ASSERT_EQUAL(idem_fp_begin(&fp, sha256, "POST", "/v1/charges", 11, "x=1", 3), 0);
    CU_ASSERT_EQUAL(idem_fp_body(&fp, whole[0], strlen(whole[0])), 0);
    CU_ASSERT_EQUAL(idem_fp_end(&fp, b), 0);
    CU_ASSERT_EQUAL(memcmp(a, b, IDEM_FP_LEN), 0);
    CU_ASSERT_EQUAL(idem_fp_end(&fp, b), -1); /* once */
    idem_fp_free(&fp);
}

/* ---- stored headers ---- */

static void test_headers(void)
{
    static const struct {
        const char *name;
        bool kept;
    } rows[] = {
        {"Content-Type", true},   {"content-type", true},  {"Location", true},
        {"ETag", true},           {"Retry-After", true},   {"Cache-Control", true},
        {"Set-Cookie", false},    {"Set-Cookie2", false},  {"Authorization", false},
        {"WWW-Authenticate", false}, {"Connection", false}, {"Transfer-Encoding", false},
        {"Content-Length", false}, {"X-Correlation-Id", false}, {"X-RateLimit-Remaining", false},
        {"Content-Typ", false},   {"Content-Type-X", false}, {"", false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        CU_ASSERT_EQUAL(idem_header_stored(rows[i].name, strlen(rows[i].name)), rows[i].kept);
}

/* ---- stored values ---- */

static struct idem_record sample(void)
{
    struct idem_record r;
    memset(&r, 0, sizeof r);
    r.status = 201;
    for (size_t i = 0; i < IDEM_FP_LEN; i++)
        r.fp[i] = (unsigned char)(i * 7);
    r.request_id = "req-1";
    r.request_id_len = 5;
    r.headers[0] = (struct idem_header){"Content-Type", 12, "application/json", 16};
    r.headers[1] = (struct idem_header){"Location", 8, "/v1/charges/ch_1", 16};
    r.n_headers = 2;
    r.body = "{\"id\":\"ch_1\"}\n\nbody: 3\n";  /* lines in the body look like fields */
    r.body_len = strlen(r.body);
    return r;
}

static void test_record(void)
{
    struct idem_record r = sample(), d;
    char buf[1024];
    size_t n = idem_record_size(&r);
    CU_ASSERT(n > 0);
    CU_ASSERT_EQUAL(idem_record_encode(&r, buf, sizeof buf), n);
    CU_ASSERT_EQUAL(idem_record_encode(&r, buf, n - 1), 0); /* does not fit */
    CU_ASSERT_EQUAL(idem_record_encode(&r, buf, n), n);
    const char *head = "envelopd-idem-response 1\nstatus 201\nfp 00070e151c232a31383f464d545b"
                       "626970777e858c939aa1a8afb6bdc4cbd2d9\nid req-1\n"
                       "h Content-Type: application/json\nh Location: /v1/charges/ch_1\nbody 23\n";
    CU_ASSERT_EQUAL(memcmp(buf, head, strlen(head)), 0);
    CU_ASSERT_EQUAL(idem_stored_kind(buf, n), IDEM_RECORD);
    CU_ASSERT_TRUE_FATAL(idem_record_decode(buf, n, &d));
    CU_ASSERT_EQUAL(d.status, 201);
    CU_ASSERT_EQUAL(memcmp(d.fp, r.fp, IDEM_FP_LEN), 0);
    CU_ASSERT_EQUAL(d.request_id_len, 5);
    CU_ASSERT_EQUAL(memcmp(d.request_id, "req-1", 5), 0);
    CU_ASSERT_EQUAL_FATAL(d.n_headers, 2);
    CU_ASSERT_EQUAL(d.headers[1].name_len, 8);
    CU_ASSERT_EQUAL(memcmp(d.headers[1].value, "/v1/charges/ch_1", 16), 0);
    CU_ASSERT_EQUAL(d.body_len, r.body_len);
    CU_ASSERT_EQUAL(memcmp(d.body, r.body, r.body_len), 0);
    /* an empty body, no headers, an empty header value */
    r.body = NULL;
    r.body_len = 0;
    r.n_headers = 1;
    r.headers[0] = (struct idem_header){"Vary", 4, "", 0};
    n = idem_record_encode(&r, buf, sizeof buf);
    CU_ASSERT_TRUE_FATAL(n > 0 && idem_record_decode(buf, n, &d));
    CU_ASSERT_EQUAL(d.body_len, 0);
    CU_ASSERT_EQUAL(d.headers[0].value_len, 0);

    /* what cannot be stored */
    static const int statuses[] = {100, 199, 500, 503, 600, -1};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        r = sample();
        r.status = statuses[i];
        CU_ASSERT_EQUAL(idem_record_size(&r), 0);
    }
    r = sample();
    r.headers[0].value = "a\r\nSet-Cookie: x";
    r.headers[0].value_len = 16;
    CU_ASSERT_EQUAL(idem_record_size(&r), 0);
    r = sample();
    r.headers[0].name = "Bad Name";
    r.headers[0].name_len = 8;
    CU_ASSERT_EQUAL(idem_record_size(&r), 0);
    r = sample();
    r.request_id = "a b";
    r.request_id_len = 3;
    CU_ASSERT_EQUAL(idem_record_size(&r), 0);
    r = sample();
    r.n_headers = IDEM_MAX_HEADERS + 1;
    CU_ASSERT_EQUAL(idem_record_size(&r), 0);
}

static void test_damaged(void)
{
    struct idem_record r = sample(), d;
    char buf[1024], bad[1100];
    size_t n = idem_record_encode(&r, buf, sizeof buf);
    CU_ASSERT_FATAL(n > 0);
    /* every strict prefix, and one byte more, is refused */
    for (size_t k = 0; k < n; k++)
        CU_ASSERT_FALSE(idem_record_decode(buf, k, &d));
    memcpy(bad, buf, n);
    bad[n] = 'x';
    CU_ASSERT_FALSE(idem_record_decode(bad, n + 1, &d));
    CU_ASSERT_EQUAL(idem_stored_kind(bad, n + 1), IDEM_BAD);
    /* edits of one field */
    static const struct {
        const char *from, *to;
    } edits[] = {
        {"envelopd-idem-response 1", "envelopd-idem-response 2"},
        {"status 201", "status 500"},
        {"status 201", "status 0201"},
        {"status 201", "status +201"},
        {"status 201", "status 20x"},
        {"fp 00", "fp 0G"},
        {"fp 00", "fp 0A"},
        {"id req-1", "id     "},
        {"h Content-Type: application/json", "h Content-Type:application/json"},
        {"h Content-Type: application/json", "h Content Type: application/json"},
        {"h Content-Type: application/json", "h : application/json"},
        {"body 23", "body 22"},
        {"body 23", "body 24"},
        {"body 23", "body -23"},
        {"body 23", "bodies 23"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        const char *at = strstr(buf, edits[i].from);
        CU_ASSERT_PTR_NOT_NULL_FATAL(at);
        size_t off = (size_t)(at - buf), fl = strlen(edits[i].from), tl = strlen(edits[i].to);
        memcpy(bad, buf, off);
        memcpy(bad + off, edits[i].to, tl);
        memcpy(bad + off + tl, buf + off + fl, n - off - fl);
        size_t bn = n - fl + tl;
        if (idem_record_decode(bad, bn, &d))
            printf("\n  edit %zu (%s) accepted\n", i, edits[i].to);
        CU_ASSERT_FALSE(idem_record_decode(bad, bn, &d));
    }
    CU_ASSERT_EQUAL(idem_stored_kind(NULL, 0), IDEM_NONE);
    CU_ASSERT_EQUAL(idem_stored_kind("", 0), IDEM_NONE);
    CU_ASSERT_EQUAL(idem_stored_kind("1", 1), IDEM_BAD);  /* someone else's value */
}

static void test_claim(void)
{
    struct idem_claim c, d;
    memset(&c, 0, sizeof c);
    memset(c.fp, 0xab, sizeof c.fp);
    c.request_id = "req-9";
    c.request_id_len = 5;
    char buf[256];
    size_t n = idem_claim_encode(&c, buf, sizeof buf);
    CU_ASSERT_EQUAL(n, idem_claim_size(&c));
    CU_ASSERT_EQUAL(n, strlen("envelopd-idem-claim 1\nfp \nid req-9\n") + 64);
    CU_ASSERT_EQUAL(idem_stored_kind(buf, n), IDEM_CLAIM);
    CU_ASSERT_TRUE_FATAL(idem_claim_decode(buf, n, &d));
    CU_ASSERT_EQUAL(memcmp(d.fp, c.fp, IDEM_FP_LEN), 0);
    CU_ASSERT_EQUAL(d.request_id_len, 5);
    CU_ASSERT_FALSE(idem_claim_decode(buf, n - 1, &d));
    buf[n] = '\n';
    CU_ASSERT_FALSE(idem_claim_decode(buf, n + 1, &d));
    CU_ASSERT_EQUAL(idem_claim_encode(&c, buf, n - 1), 0);
    /* a record is not a claim, nor the reverse */
    struct idem_record r = sample();
    char rb[1024];
    size_t rn = idem_record_encode(&r, rb, sizeof rb);
    CU_ASSERT_FALSE(idem_claim_decode(rb, rn, &d));
    n = idem_claim_encode(&c, buf, sizeof buf);
    struct idem_record dr;
    CU_ASSERT_FALSE(idem_record_decode(buf, n, &dr));
    c.request_id_len = 0;
    CU_ASSERT_EQUAL(idem_claim_size(&c), 0);
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("idem", suite_init, suite_clean);
    if (!s)
        return;
    CU_add_test(s, "Idempotency-Key values", test_keys);
    CU_add_test(s, "fingerprints", test_fingerprint);
    CU_add_test(s, "headers a stored response keeps", test_headers);
    CU_add_test(s, "stored responses: round trip and refusals", test_record);
    CU_add_test(s, "stored responses: damaged or foreign", test_damaged);
    CU_add_test(s, "claims", test_claim);
}
