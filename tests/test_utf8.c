/*
 * test_utf8: every JSON writer trusts utf8_seq to say where a valid UTF-8
 * sequence ends, and copies bytes it rejects as escapes instead; so a byte
 * string it accepts that RFC 3629 does not (an overlong form hiding a '/' or
 * a quote, a surrogate, a code point above U+10FFFF) reaches a client or a
 * log as "valid" text, and a valid character it rejects is mangled. The
 * suite checks table 3-7's edges one by one (each boundary, each overlong
 * and surrogate range, each bad continuation position, truncation with the
 * completing byte right after N, which the decoder must not read), then
 * checks every code point's encoding, every overlong encoding, and every
 * one- and two-byte input (and the 3- and 4-byte leads' neighbourhoods)
 * against a reference classifier written here in a different way (decode by
 * bit masks first, judge the value after) so one mistake cannot hide in both.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "utf8.h"

void test_register(void);

struct ucase {
    const char *name;
    unsigned char b[7];
    size_t len;      /* bytes of B that form the case */
    size_t want;     /* expected length, 0 = invalid */
    uint32_t cp;     /* expected code point when valid */
};

static const struct ucase cases[] = {
    /* boundaries of table 3-7, and a few in between */
    {"U+0000", {0x00}, 1, 1, 0x0000},
    {"U+0041", {0x41}, 1, 1, 0x0041},
    {"U+007F", {0x7F}, 1, 1, 0x007F},
    {"U+0080", {0xC2, 0x80}, 2, 2, 0x0080},
    {"U+00E9", {0xC3, 0xA9}, 2, 2, 0x00E9},
    {"U+07FF", {0xDF, 0xBF}, 2, 2, 0x07FF},
    {"U+0800", {0xE0, 0xA0, 0x80}, 3, 3, 0x0800},
    {"U+0FFF", {0xE0, 0xBF, 0xBF}, 3, 3, 0x0FFF},
    {"U+1000", {0xE1, 0x80, 0x80}, 3, 3, 0x1000},
    {"U+20AC", {0xE2, 0x82, 0xAC}, 3, 3, 0x20AC},
    {"U+CFFF", {0xEC, 0xBF, 0xBF}, 3, 3, 0xCFFF},
    {"U+D000", {0xED, 0x80, 0x80}, 3, 3, 0xD000},
    {"U+D7FF", {0xED, 0x9F, 0xBF}, 3, 3, 0xD7FF},
    {"U+E000", {0xEE, 0x80, 0x80}, 3, 3, 0xE000},
    {"U+FFFD", {0xEF, 0xBF, 0xBD}, 3, 3, 0xFFFD},
    {"U+FFFF", {0xEF, 0xBF, 0xBF}, 3, 3, 0xFFFF},
    {"U+10000", {0xF0, 0x90, 0x80, 0x80}, 4, 4, 0x10000},
    {"U+1F600", {0xF0, 0x9F, 0x98, 0x80}, 4, 4, 0x1F600},
    {"U+3FFFF", {0xF0, 0xBF, 0xBF, 0xBF}, 4, 4, 0x3FFFF},
    {"U+40000", {0xF1, 0x80, 0x80, 0x80}, 4, 4, 0x40000},
    {"U+FFFFF", {0xF3, 0xBF, 0xBF, 0xBF}, 4, 4, 0xFFFFF},
    {"U+100000", {0xF4, 0x80, 0x80, 0x80}, 4, 4, 0x100000},
    {"U+10FFFF", {0xF4, 0x8F, 0xBF, 0xBF}, 4, 4, 0x10FFFF},

    /* overlong forms */
    {"overlong C0 80", {0xC0, 0x80}, 2, 0, 0},
    {"overlong C0 AF ('/')", {0xC0, 0xAF}, 2, 0, 0},
    {"overlong C1 BF", {0xC1, 0xBF}, 2, 0, 0},
    {"overlong E0 80 80", {0xE0, 0x80, 0x80}, 3, 0, 0},
    {"overlong E0 80 AF ('/')", {0xE0, 0x80, 0xAF}, 3, 0, 0},
    {"overlong E0 9F BF", {0xE0, 0x9F, 0xBF}, 3, 0, 0},
    {"overlong F0 80 80 80", {0xF0, 0x80, 0x80, 0x80}, 4, 0, 0},
    {"overlong F0 80 80 AF ('/')", {0xF0, 0x80, 0x80, 0xAF}, 4, 0, 0},
    {"overlong F0 8F BF BF", {0xF0, 0x8F, 0xBF, 0xBF}, 4, 0, 0},

    /* UTF-16 surrogates */
    {"surrogate ED A0 80 (U+D800)", {0xED, 0xA0, 0x80}, 3, 0, 0},
    {"surrogate ED AF BF (U+DBFF)", {0xED, 0xAF, 0xBF}, 3, 0, 0},
    {"surrogate ED B0 80 (U+DC00)", {0xED, 0xB0, 0x80}, 3, 0, 0},
    {"surrogate ED BF BF (U+DFFF)", {0xED, 0xBF, 0xBF}, 3, 0, 0},
    {"surrogate pair as CESU-8", {0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80}, 6, 0, 0},

    /* above U+10FFFF */
    {"F4 90 80 80 (U+110000)", {0xF4, 0x90, 0x80, 0x80}, 4, 0, 0},
    {"F4 BF BF BF", {0xF4, 0xBF, 0xBF, 0xBF}, 4, 0, 0},
    {"F5 80 80 80", {0xF5, 0x80, 0x80, 0x80}, 4, 0, 0},
    {"F6 80 80 80", {0xF6, 0x80, 0x80, 0x80}, 4, 0, 0},
    {"F7 BF BF BF", {0xF7, 0xBF, 0xBF, 0xBF}, 4, 0, 0},
    {"F8 88 80 80 80 (5 bytes)", {0xF8, 0x88, 0x80, 0x80, 0x80}, 5, 0, 0},
    {"FB BF BF BF BF", {0xFB, 0xBF, 0xBF, 0xBF, 0xBF}, 5, 0, 0},
    {"FC 84 80 80 80 80 (6 bytes)", {0xFC, 0x84, 0x80, 0x80, 0x80, 0x80}, 6, 0, 0},
    {"FD BF BF BF BF BF", {0xFD, 0xBF, 0xBF, 0xBF, 0xBF, 0xBF}, 6, 0, 0},
    {"FE", {0xFE, 0x80, 0x80, 0x80}, 4, 0, 0},
    {"FF", {0xFF, 0x80, 0x80, 0x80}, 4, 0, 0},

    /* lone continuation bytes */
    {"lone 80", {0x80}, 1, 0, 0},
    {"lone 8F", {0x8F, 0x41}, 2, 0, 0},
    {"lone 9F", {0x9F, 0x80}, 2, 0, 0},
    {"lone A0", {0xA0, 0x80, 0x80}, 3, 0, 0},
    {"lone BF", {0xBF, 0xBF, 0xBF, 0xBF}, 4, 0, 0},

    /* bad continuation in the 2nd byte */
    {"C2 00", {0xC2, 0x00}, 2, 0, 0},
    {"C2 41", {0xC2, 0x41}, 2, 0, 0},
    {"C2 7F", {0xC2, 0x7F}, 2, 0, 0},
    {"C2 C0", {0xC2, 0xC0}, 2, 0, 0},
    {"DF FF", {0xDF, 0xFF}, 2, 0, 0},
    {"E1 7F 80", {0xE1, 0x7F, 0x80}, 3, 0, 0},
    {"E1 C0 80", {0xE1, 0xC0, 0x80}, 3, 0, 0},
    {"E0 C0 80", {0xE0, 0xC0, 0x80}, 3, 0, 0},
    {"ED C0 80", {0xED, 0xC0, 0x80}, 3, 0, 0},
    {"ED 7F 80", {0xED, 0x7F, 0x80}, 3, 0, 0},
    {"F1 7F 80 80", {0xF1, 0x7F, 0x80, 0x80}, 4, 0, 0},
    {"F1 C0 80 80", {0xF1, 0xC0, 0x80, 0x80}, 4, 0, 0},
    {"F0 C0 80 80", {0xF0, 0xC0, 0x80, 0x80}, 4, 0, 0},
    {"F4 7F 80 80", {0xF4, 0x7F, 0x80, 0x80}, 4, 0, 0},
    {"E1 E1 80 80 (a lead after a lead)", {0xE1, 0xE1, 0x80, 0x80}, 4, 0, 0},

    /* bad continuation in the 3rd byte */
    {"E1 80 00", {0xE1, 0x80, 0x00}, 3, 0, 0},
    {"E1 80 7F", {0xE1, 0x80, 0x7F}, 3, 0, 0},
    {"E1 80 C0", {0xE1, 0x80, 0xC0}, 3, 0, 0},
    {"E0 A0 41", {0xE0, 0xA0, 0x41}, 3, 0, 0},
    {"ED 9F C0", {0xED, 0x9F, 0xC0}, 3, 0, 0},
    {"EF BF FF", {0xEF, 0xBF, 0xFF}, 3, 0, 0},
    {"F1 80 7F 80", {0xF1, 0x80, 0x7F, 0x80}, 4, 0, 0},
    {"F1 80 C0 80", {0xF1, 0x80, 0xC0, 0x80}, 4, 0, 0},
    {"F0 90 41 80", {0xF0, 0x90, 0x41, 0x80}, 4, 0, 0},

    /* bad continuation in the 4th byte */
    {"F1 80 80 00", {0xF1, 0x80, 0x80, 0x00}, 4, 0, 0},
    {"F1 80 80 7F", {0xF1, 0x80, 0x80, 0x7F}, 4, 0, 0},
    {"F1 80 80 C0", {0xF1, 0x80, 0x80, 0xC0}, 4, 0, 0},
    {"F0 90 80 FF", {0xF0, 0x90, 0x80, 0xFF}, 4, 0, 0},
    {"F4 8F BF C0", {0xF4, 0x8F, 0xBF, 0xC0}, 4, 0, 0},
    {"F3 BF BF 41", {0xF3, 0xBF, 0xBF, 0x41}, 4, 0, 0},
};

#define N_CASES (sizeof cases / sizeof cases[0])

/* Decode S[0..N) with both entry points; they must agree on the length. */
static size_t decode2(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len = utf8_decode(s, n, cp);
    CU_ASSERT_EQUAL(utf8_seq(s, n), len);
    return len;
}

static void report(const struct ucase *c, const char *what, size_t n, size_t got)
{
    fprintf(stderr, "\n    %s (n=%zu, %s): got length %zu, want %zu", c->name, n, what, got, c->want);
}

static void test_table(void)
{
    for (size_t i = 0; i < N_CASES; i++) {
        const struct ucase *c = &cases[i];
        uint32_t cp = 0xFFFFFFFF;
        size_t got = decode2(c->b, c->len, &cp);
        CU_ASSERT_EQUAL(got, c->want);
        if (got != c->want)
            report(c, "exact", c->len, got);
        if (c->want && got == c->want) {
            CU_ASSERT_EQUAL(cp, c->cp);
            if (cp != c->cp)
                fprintf(stderr, "\n    %s: got U+%04X", c->name, (unsigned)cp);
        }
    }
}

/* What follows a sequence does not change the verdict on it: an extra
 * continuation byte, ASCII, or a lead byte. */
static void test_table_followed(void)
{
    static const unsigned char next[] = {0x80, 0xBF, 0x41, 0xC2, 0xF0, 0x00};
    for (size_t i = 0; i < N_CASES; i++) {
        const struct ucase *c = &cases[i];
        for (size_t k = 0; k < sizeof next; k++) {
            unsigned char buf[8];
            memcpy(buf, c->b, c->len);
            buf[c->len] = next[k];
            uint32_t cp = 0xFFFFFFFF;
            size_t got = decode2(buf, c->len + 1, &cp);
            CU_ASSERT_EQUAL(got, c->want);
            if (got != c->want)
                report(c, "followed", c->len + 1, got);
            if (c->want && got == c->want)
                CU_ASSERT_EQUAL(cp, c->cp);
        }
    }
}

/* A valid sequence cut to N bytes is invalid, even though the byte at S[N]
 * in the caller's buffer would complete it; and nothing at or past S[N] is
 * read (the second call's buffer ends at N: ASan or valgrind flag a read
 * past it). */
static void test_truncated(void)
{
    for (size_t i = 0; i < N_CASES; i++) {
        const struct ucase *c = &cases[i];
        if (c->want < 2)
            continue;
        for (size_t n = 1; n < c->want; n++) {
            uint32_t cp;
            size_t got = decode2(c->b, n, &cp);
            CU_ASSERT_EQUAL(got, 0);
            if (got != 0)
                report(c, "truncated", n, got);
            unsigned char *exact = malloc(n);
            CU_ASSERT_PTR_NOT_NULL_FATAL(exact);
            memcpy(exact, c->b, n);
            CU_ASSERT_EQUAL(decode2(exact, n, &cp), 0);
            free(exact);
        }
    }
}

/* Standard encoding of CP (< 0x110000) into B; its length. */
static size_t encode(uint32_t cp, unsigned char *b)
{
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (unsigned char)(0xF0 | (cp >> 18));
    b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* CP in exactly LEN (2..4) bytes, whether or not that is the shortest
 * form; CP must fit: < 2^11, 2^16, 2^21. */
static void encode_as(uint32_t cp, size_t len, unsigned char *b)
{
    static const unsigned char lead[] = {0, 0, 0xC0, 0xE0, 0xF0};
    for (size_t i = len - 1; i > 0; i--) {
        b[i] = (unsigned char)(0x80 | (cp & 0x3F));
        cp >>= 6;
    }
    b[0] = (unsigned char)(lead[len] | cp);
}

/* Every scalar value: decoded whole, at its own length, with its value,
 * whatever follows; cut short, rejected. */
static void test_every_code_point(void)
{
    unsigned long bad = 0, bad_cut = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        unsigned char b[8];
        size_t len = encode(cp, b);
        b[len] = 0x80;  /* a continuation byte after it must not be taken */
        uint32_t got = 0xFFFFFFFF;
        size_t l1 = utf8_decode(b, len, &got);
        uint32_t got2 = 0xFFFFFFFF;
        size_t l2 = utf8_decode(b, len + 1, &got2);
        size_t l3 = utf8_seq(b, len);
        if (l1 != len || got != cp || l2 != len || got2 != cp || l3 != len) {
            if (bad++ < 5)
                fprintf(stderr, "\n    U+%04X: length %zu/%zu/%zu, value U+%04X", (unsigned)cp, l1, l2,
                        l3, (unsigned)got);
        }
        for (size_t n = 1; n < len; n++) {
            if (utf8_seq(b, n) != 0 && bad_cut++ < 5)
                fprintf(stderr, "\n    U+%04X cut to %zu bytes accepted", (unsigned)cp, n);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(bad_cut, 0);
}

/* Every surrogate's 3-byte form, every overlong form of every value (the
 * shortest form one, two or three bytes shorter), every 4-byte form above
 * U+10FFFF: all rejected. */
static void test_every_invalid_form(void)
{
    unsigned long bad = 0, checked = 0;
    unsigned char b[8];
    for (uint32_t cp = 0xD800; cp <= 0xDFFF; cp++) {
        encode_as(cp, 3, b);
        checked++;
        if (utf8_seq(b, 3) != 0 && bad++ < 5)
            fprintf(stderr, "\n    surrogate U+%04X accepted", (unsigned)cp);
    }
    for (uint32_t cp = 0; cp < 0x10000; cp++) {
        size_t shortest = cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
        for (size_t len = shortest + 1; len <= 4; len++) {
            if (len == 2 && cp >= 0x800)
                continue;
            encode_as(cp, len, b);
            checked++;
            if (utf8_seq(b, len) != 0 && bad++ < 5)
                fprintf(stderr, "\n    U+%04X overlong in %zu bytes accepted", (unsigned)cp, len);
        }
    }
    for (uint32_t cp = 0x110000; cp < 0x200000; cp++) {
        encode_as(cp, 4, b);
        checked++;
        if (utf8_seq(b, 4) != 0 && bad++ < 5)
            fprintf(stderr, "\n    %06X above U+10FFFF accepted", (unsigned)cp);
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(checked > 0x100000);
}

/*
 * The reference: take the length from the lead's high bits, require
 * 10xxxxxx after it, assemble the value, and only then judge it (shortest
 * form, not a surrogate, at most U+10FFFF). The module instead narrows the
 * second byte's range per lead; they must agree everywhere.
 */
static size_t ref_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t v, min;
    if ((s[0] & 0x80) == 0x00) {
        len = 1, v = s[0], min = 0;
    } else if ((s[0] & 0xE0) == 0xC0) {
        len = 2, v = s[0] & 0x1Fu, min = 0x80;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3, v = s[0] & 0x0Fu, min = 0x800;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4, v = s[0] & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* Module and reference on S[0..N); counts a disagreement in *BAD. */
static void agree(const unsigned char *s, size_t n, unsigned long *bad)
{
    uint32_t cp = 0xFFFFFFFF, rcp = 0xFFFFFFFE;
    size_t got = utf8_decode(s, n, &cp);
    size_t want = ref_decode(s, n, &rcp);
    if (got != want || (want && cp != rcp) || utf8_seq(s, n) != want) {
        if ((*bad)++ < 5) {
            fprintf(stderr, "\n    n=%zu:", n);
            for (size_t i = 0; i < n; i++)
                fprintf(stderr, " %02X", s[i]);
            fprintf(stderr, ": got %zu (U+%04X), reference %zu (U+%04X)", got, (unsigned)cp, want,
                    (unsigned)rcp);
        }
    }
}

/* The reference itself, on a few known answers: a wrong reference would
 * make the cross-checks below prove nothing. */
static void test_reference(void)
{
    uint32_t cp = 0;
    for (size_t i = 0; i < N_CASES; i++) {
        const struct ucase *c = &cases[i];
        CU_ASSERT_EQUAL(ref_decode(c->b, c->len, &cp), c->want);
        if (c->want)
            CU_ASSERT_EQUAL(cp, c->cp);
    }
}

static void test_every_one_and_two_bytes(void)
{
    unsigned long bad = 0;
    unsigned char b[2];
    for (unsigned x = 0; x < 256; x++) {
        b[0] = (unsigned char)x;
        agree(b, 1, &bad);
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (unsigned char)y;
            agree(b, 2, &bad);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* Every three-byte input; 4-byte leads and F5..FF with every second byte,
 * and third and fourth bytes from each side of each range's edges. */
static void test_three_and_four_bytes(void)
{
    static const unsigned char edge[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
    unsigned long bad = 0;
    unsigned char b[4];
    for (unsigned x = 0; x < 256; x++) {
        b[0] = (unsigned char)x;
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (unsigned char)y;
            for (unsigned z = 0; z < 256; z++) {
                b[2] = (unsigned char)z;
                agree(b, 3, &bad);
            }
        }
    }
    for (unsigned x = 0xF0; x < 256; x++) {
        b[0] = (unsigned char)x;
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (unsigned char)y;
            for (size_t k = 0; k < sizeof edge; k++) {
                b[2] = edge[k];
                for (size_t m = 0; m < sizeof edge; m++) {
                    b[3] = edge[m];
                    agree(b, 4, &bad);
                }
            }
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("utf8", NULL, NULL);
    if (!s)
        return;
    CU_add_test(s, "table 3-7 edges, one by one", test_table);
    CU_add_test(s, "the byte after a sequence does not change it", test_table_followed);
    CU_add_test(s, "truncated: rejected, nothing read past n", test_truncated);
    CU_add_test(s, "every code point decodes to itself", test_every_code_point);
    CU_add_test(s, "every surrogate, overlong and too-large form rejected", test_every_invalid_form);
    CU_add_test(s, "the reference classifier agrees with the table", test_reference);
    CU_add_test(s, "every 1- and 2-byte input matches the reference", test_every_one_and_two_bytes);
    CU_add_test(s, "3- and 4-byte inputs match the reference", test_three_and_four_bytes);
}
