/*
 * test_proxyproto: the PROXY header reader on literal headers, one row
 * each. A header that is taken is also fed cut at every byte (each cut
 * must ask for more, never refuse) and followed by the client's first
 * request (which must not change what was read); a header that is
 * refused says at which byte: the row's prefix one byte shorter still
 * asks for more, so a reader never waits on bytes that cannot be a
 * header, and never refuses one that still could be.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "proxyproto.h"

void test_register(void);

/* A literal with its length, NUL bytes included. */
#define B(s) s, sizeof(s) - 1

/* The rows are kept as rows: clang-format leaves the tables alone. */
/* clang-format off */

/* v2: signature, then ver_cmd, fam, length. */
#define SIG "\r\n\r\n\0\r\nQUIT\n"
/* 192.0.2.1:12345 -> 198.51.100.7:443 */
#define A4 "\xc0\x00\x02\x01\xc6\x33\x64\x07\x30\x39\x01\xbb"
/* [2001:db8::1]:12345 -> [2001:db8::2]:443 */
#define A6                                                                                         \
    "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"                                                   \
    "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02"                                                   \
    "\x30\x39\x01\xbb"
/* AUTHORITY "example.com": 14 bytes */
#define AUTH "\x02\x00\x0b" "example.com"
/* SSL, client bit, verified, version "TLSv1.3": 18 bytes */
#define SSL13 "\x20\x00\x0f\x01\0\0\0\0\x21\x00\x07" "TLSv1.3"

#define S4 "192.0.2.1"
#define D4 "198.51.100.7"
#define S6 "2001:db8::1"
#define D6 "2001:db8::2"

/* v1 "PROXY TCP4 1.2.3.4 5.6.7.8 ": 27 bytes, the ports follow */
#define P4 "PROXY TCP4 1.2.3.4 5.6.7.8 "

/* clang-format on */

struct ok {
    const char *in;
    size_t len;
    size_t hlen; /* 0: all of IN */
    int version;
    int family; /* AF_UNSPEC: local */
    const char *src, *dst;
    unsigned sport, dport;
    bool ssl;
    const char *ssl_version, *authority; /* NULL: "" */
};

/* clang-format off */
#define V1(s, fam, src, dst, sp, dp) {B(s), 0, 1, fam, src, dst, sp, dp, false, NULL, NULL}
#define V1_LOCAL(s) {B(s), 0, 1, AF_UNSPEC, NULL, NULL, 0, 0, false, NULL, NULL}
#define V2_4(s, ssl, ver, auth) {B(s), 0, 2, AF_INET, S4, D4, 12345, 443, ssl, ver, auth}
#define V2_6(s, ssl, ver, auth) {B(s), 0, 2, AF_INET6, S6, D6, 12345, 443, ssl, ver, auth}
#define V2_LOCAL(s) {B(s), 0, 2, AF_UNSPEC, NULL, NULL, 0, 0, false, NULL, NULL}

static const struct ok oks[] = {
    V1("PROXY TCP4 192.0.2.1 198.51.100.7 12345 443\r\n", AF_INET, S4, D4, 12345, 443),
    V1("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", AF_INET, "0.0.0.0", "255.255.255.255",
       0, 65535),
    V1("PROXY TCP4 10.0.0.1 10.0.0.2 65535 0\r\n", AF_INET, "10.0.0.1", "10.0.0.2", 65535, 0),
    V1("PROXY TCP6 2001:db8::1 2001:db8::2 12345 443\r\n", AF_INET6, S6, D6, 12345, 443),
    V1("PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::2 1 2\r\n", AF_INET6, S6, "::2", 1, 2),
    V1("PROXY TCP6 ::ffff:192.0.2.1 :: 80 8080\r\n", AF_INET6, "::ffff:192.0.2.1", "::", 80,
       8080),
    /* the spec's longest TCP6 line: 104 bytes */
    V1("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
       "65535 65535\r\n",
       AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, 65535),
    V1_LOCAL("PROXY UNKNOWN\r\n"),
    V1_LOCAL("PROXY UNKNOWN \r\n"),
    V1_LOCAL("PROXY UNKNOWN 1.2.3.4 5.6.7.8 80 443\r\n"),
    V1_LOCAL("PROXY UNKNOWN anything\x01\xff at all\r\n"),
    /* the spec's worst case: 107 bytes */
    V1_LOCAL("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
             "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
    /* the request after the header is not the header's */
    {B("PROXY TCP4 192.0.2.1 198.51.100.7 12345 443\r\nGET / HTTP/1.1\r\n\r\n"), 45, 1, AF_INET,
     S4, D4, 12345, 443, false, NULL, NULL},
    {B("PROXY UNKNOWN\r\nPROXY TCP4 192.0.2.1 198.51.100.7 12345 443\r\n"), 15, 1, AF_UNSPEC,
     NULL, NULL, 0, 0, false, NULL, NULL},

    V2_4(SIG "\x21\x11\x00\x0c" A4, false, NULL, NULL),
    V2_6(SIG "\x21\x21\x00\x24" A6, false, NULL, NULL),
    /* LOCAL: the block is discarded, whatever the family says */
    V2_LOCAL(SIG "\x20\x00\x00\x00"),
    V2_LOCAL(SIG "\x20\x11\x00\x0c" A4),
    V2_LOCAL(SIG "\x20\x31\x00\x00"),
    V2_LOCAL(SIG "\x20\x12\x00\x03\xff\xff\xff"),
    /* TLVs */
    V2_4(SIG "\x21\x11\x00\x1a" A4 AUTH, false, NULL, "example.com"),
    V2_4(SIG "\x21\x11\x00\x1e" A4 SSL13, true, "TLSv1.3", NULL),
    V2_6(SIG "\x21\x21\x00\x44" A6 AUTH SSL13, true, "TLSv1.3", "example.com"),
    V2_6(SIG "\x21\x21\x00\x44" A6 SSL13 AUTH, true, "TLSv1.3", "example.com"),
    /* SSL without PP2_CLIENT_SSL: the version is still what it says */
    V2_4(SIG "\x21\x11\x00\x1e" A4 "\x20\x00\x0f\x00\0\0\0\0\x21\x00\x07" "TLSv1.2", false,
         "TLSv1.2", NULL),
    V2_4(SIG "\x21\x11\x00\x14" A4 "\x20\x00\x05\x07\0\0\0\0", true, NULL, NULL),
    /* CN and cipher sub-TLVs skipped */
    V2_4(SIG "\x21\x11\x00\x3e" A4 "\x20\x00\x2f\x07\0\0\0\0"
         "\x22\x00\x04" "host"
         "\x23\x00\x16" "TLS_AES_128_GCM_SHA256"
         "\x21\x00\x07" "TLSv1.3",
         true, "TLSv1.3", NULL),
    /* NOOP, AWS's 0xEA, ALPN, NETNS, UNIQUE_ID skipped */
    V2_4(SIG "\x21\x11\x00\x27" A4 "\x04\x00\x00"
         "\xea\x00\x04\x01" "vpc"
         "\x01\x00\x02" "h2"
         "\x30\x00\x03" "foo"
         "\x05\x00\x03" "abc",
         false, NULL, NULL),
    /* an SSL_VERSION outside SSL is no TLS version */
    V2_4(SIG "\x21\x11\x00\x16" A4 "\x21\x00\x07" "TLSv1.3", false, NULL, NULL),
    V2_4(SIG "\x21\x11\x00\x0f" A4 "\x02\x00\x00", false, NULL, NULL),
    V2_4(SIG "\x21\x11\x00\x1e" A4 "\x02\x00\x0f" "b\xc3\xbc" "cher.example", false, NULL,
         "b\xc3\xbc" "cher.example"),
    /* CRC32C, checked */
    V2_4(SIG "\x21\x11\x00\x13" A4 "\x03\x00\x04\x3c\x7a\x50\x47", false, NULL, NULL),
    V2_4(SIG "\x21\x11\x00\x18" A4 "\x04\x00\x02" "ab" "\x03\x00\x04\x18\x46\xdf\x09", false,
         NULL, NULL),
    {B(SIG "\x21\x11\x00\x0c" A4 "GET / HTTP/1.1\r\n\r\n"), 28, 2, AF_INET, S4, D4, 12345, 443,
     false, NULL, NULL},
};

struct bad {
    const char *in;
    size_t len;
    size_t at;        /* the shortest prefix refused */
    const char *why;  /* in the reason */
};

#define BAD(s, at, why) {B(s), at, why}

static const struct bad bads[] = {
    /* not a header at all: refused at the first byte that differs */
    BAD("GET / HTTP/1.1\r\n", 1, "not a PROXY"),
    BAD("\x16\x03\x01\x02\x00\x01", 1, "not a PROXY"),
    BAD("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 1, "not a PROXY"),
    BAD("PROXX TCP4", 5, "not a PROXY"),
    BAD("PROXY\r\n", 6, "not a PROXY"),
    BAD("\r\nGET / HTTP/1.1\r\n", 3, "not a PROXY"),
    BAD("\r\n\r\nGET", 5, "not a PROXY"),
    BAD("\r\n\r\n\0\n", 6, "not a PROXY"),
    BAD("\r\n\r\n\0\r\nQUIT\r", 12, "not a PROXY"),

    /* v1: protocol */
    BAD("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 7, "protocol"),
    BAD("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", 10, "protocol"),
    BAD("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", 7, "protocol"),
    BAD("PROXY TCP4\r\n", 11, "protocol"),
    BAD("PROXY TCP44 1.2.3.4 5.6.7.8 1 2\r\n", 11, "protocol"),
    BAD("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", 8, "protocol"),
    BAD("PROXY UNKNOWn\r\n", 13, "protocol"),
    /* v1: addresses */
    BAD("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", 12, "address"),
    BAD("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", 19, "address"),
    BAD("PROXY TCP4 256.1.1.1 5.6.7.8 1 2\r\n", 14, "address"),
    BAD("PROXY TCP4 1234.1.1.1 5.6.7.8 1 2\r\n", 15, "address"),
    BAD("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", 13, "address"),
    BAD("PROXY TCP4 1..2.3.4 5.6.7.8 1 2\r\n", 14, "address"),
    BAD("PROXY TCP4 .1.2.3.4 5.6.7.8 1 2\r\n", 12, "address"),
    BAD("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", 17, "address"),
    BAD("PROXY TCP4 1.2.3.4 ::1 1 2\r\n", 20, "address"),
    BAD("PROXY TCP4 1.2.3.4\r\n", 19, "address"),
    BAD("PROXY TCP4 1.2.3.4 5.6.7.8\r\n", 27, "address"),
    BAD("PROXY TCP4 0x1.2.3.4 5.6.7.8 1 2\r\n", 13, "address"),
    BAD("PROXY TCP6 1.2.3.4 ::1 1 2\r\n", 19, "address"),
    BAD("PROXY TCP6 2001:db8::g ::1 1 2\r\n", 22, "address"),
    BAD("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", 29, "address"),
    BAD("PROXY TCP6 [::1] ::1 1 2\r\n", 12, "address"),
    BAD("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", 19, "address"),
    BAD("PROXY TCP6 0000:0000:0000:0000:0000:ffff:255.255.255.2550 ::1 1 2\r\n", 57, "address"),
    /* v1: ports */
    BAD(P4 "+80 443\r\n", 28, "port"),
    BAD(P4 "-1 443\r\n", 28, "port"),
    BAD(P4 "080 443\r\n", 29, "port"),
    BAD(P4 "00 443\r\n", 29, "port"),
    BAD(P4 "65536 443\r\n", 32, "port"),
    BAD(P4 "123456 443\r\n", 33, "port"),
    BAD(P4 " 443\r\n", 28, "port"),
    BAD(P4 "8a 443\r\n", 29, "port"),
    BAD(P4 "80\t443\r\n", 30, "port"),
    BAD(P4 "80\r\n", 30, "port"),
    BAD(P4 "80 0443\r\n", 32, "port"),
    BAD(P4 "80 65536\r\n", 35, "port"),
    BAD(P4 "80 4 43\r\n", 32, "port"),
    BAD(P4 "80 443 x\r\n", 34, "port"),
    BAD(P4 "80 443 \r\n", 34, "port"),
    /* v1: the end of the line */
    BAD(P4 "80 443\n", 34, "port"),
    BAD(P4 "80 443\r\r\n", 35, "bare CR"),
    BAD(P4 "80 443\rX", 35, "bare CR"),
    BAD("PROXY UNKNOWN\n", 14, "UNKNOWN"),
    BAD("PROXY UNKNOWNX\r\n", 14, "UNKNOWN"),
    BAD("PROXY UNKNOWN\r\r\n", 15, "UNKNOWN"),
    BAD("PROXY UNKNOWN foo\nbar\r\n", 18, "bare LF"),
    BAD("PROXY UNKNOWN foo\rbar\r\n", 19, "UNKNOWN"),
    /* 108 bytes: the long spelling of mapped addresses does not fit */
    BAD("PROXY TCP6 0000:0000:0000:0000:0000:ffff:255.255.255.255 "
        "0000:0000:0000:0000:0000:ffff:255.255.255.255 65535 65535\r\n",
        107, "longer than 107"),

    /* v2: version, command, family */
    BAD(SIG "\x11\x11\x00\x0c" A4, 13, "version"),
    BAD(SIG "\x31\x11\x00\x0c" A4, 13, "version"),
    BAD(SIG "\x01\x11\x00\x0c" A4, 13, "version"),
    BAD(SIG "\x22\x11\x00\x0c" A4, 13, "command"),
    BAD(SIG "\x2f\x11\x00\x0c" A4, 13, "command"),
    BAD(SIG "\x21\x13\x00\x0c" A4, 14, "undefined"),
    BAD(SIG "\x21\x41\x00\x0c" A4, 14, "undefined"),
    BAD(SIG "\x21\x01\x00\x0c" A4, 14, "undefined"),
    BAD(SIG "\x21\x10\x00\x0c" A4, 14, "undefined"),
    BAD(SIG "\x20\x41\x00\x00", 14, "undefined"),
    BAD(SIG "\x20\xff\x00\x00", 14, "undefined"),
    BAD(SIG "\x21\x12\x00\x0c" A4, 14, "datagram"),
    BAD(SIG "\x21\x22\x00\x24" A6, 14, "datagram"),
    BAD(SIG "\x21\x32\x00\x00", 14, "datagram"),
    BAD(SIG "\x21\x31\x00\x00", 14, "AF_UNIX"),
    BAD(SIG "\x21\x00\x00\x00", 14, "no address family"),
    /* v2: lengths */
    BAD(SIG "\x21\x11\xff\xff" A4, 16, "longer than 4096"),
    BAD(SIG "\x21\x11\x0f\xf1" A4, 16, "longer than 4096"),
    BAD(SIG "\x20\x00\x0f\xf1", 16, "longer than 4096"),
    BAD(SIG "\x21\x11\x00\x0b" A4, 16, "shorter"),
    BAD(SIG "\x21\x11\x00\x00", 16, "shorter"),
    BAD(SIG "\x21\x21\x00\x23" A6, 16, "shorter"),
    BAD(SIG "\x21\x21\x00\x0c" A4, 16, "shorter"),
    /* v2: TLVs that do not fit what encloses them */
    BAD(SIG "\x21\x11\x00\x0d" A4 "\x04", 29, "truncated"),
    BAD(SIG "\x21\x11\x00\x0e" A4 "\x04\x00", 30, "truncated"),
    BAD(SIG "\x21\x11\x00\x1a" A4 "\x02\x00\x0c" "example.com", 42, "longer than what"),
    BAD(SIG "\x21\x11\x00\x0f" A4 "\x04\xff\xff", 31, "longer than what"),
    BAD(SIG "\x21\x11\x00\x13" A4 "\x20\x00\x04\x01\0\0\0", 35, "shorter than 5"),
    BAD(SIG "\x21\x11\x00\x1e" A4 "\x20\x00\x0f\x01\0\0\0\0\x21\x00\x08" "TLSv1.3", 46,
        "longer than what"),
    BAD(SIG "\x21\x11\x00\x16" A4 "\x20\x00\x07\x01\0\0\0\0\x21\x00", 38, "truncated"),
    /* v2: TLVs read twice, or not text */
    BAD(SIG "\x21\x11\x00\x28" A4 AUTH AUTH, 56, "AUTHORITY TLV twice"),
    BAD(SIG "\x21\x11\x00\x1c" A4 "\x20\x00\x05\x01\0\0\0\0\x20\x00\x05\x01\0\0\0\0", 44,
        "SSL TLV twice"),
    BAD(SIG "\x21\x11\x00\x28" A4 "\x20\x00\x19\x01\0\0\0\0\x21\x00\x07" "TLSv1.3"
        "\x21\x00\x07" "TLSv1.2",
        56, "version TLV twice"),
    BAD(SIG "\x21\x11\x00\x37" A4 "\x20\x00\x28\x01\0\0\0\0\x21\x00\x20"
        "TLSv1.3-and-then-some-more-bytes",
        71, "SSL version"),
    BAD(SIG "\x21\x11\x00\x1e" A4 "\x20\x00\x0f\x01\0\0\0\0\x21\x00\x07" "TLSv1\x01" "3", 46,
        "SSL version"),
    BAD(SIG "\x21\x11\x00\x1e" A4 "\x20\x00\x0f\x01\0\0\0\0\x21\x00\x07" "TLSv1\xc3\xa9", 46,
        "SSL version"),
    BAD(SIG "\x21\x11\x00\x1a" A4 "\x02\x00\x0b" "example\0com", 42, "AUTHORITY"),
    BAD(SIG "\x21\x11\x00\x12" A4 "\x02\x00\x03" "ab\xff", 34, "AUTHORITY"),
    BAD(SIG "\x21\x11\x00\x12" A4 "\x02\x00\x03" "a\xc0\xae", 34, "AUTHORITY"),
    BAD(SIG "\x21\x11\x00\x13" A4 "\x02\x00\x04" "a\xc2\x85" "b", 35, "AUTHORITY"),
    BAD(SIG "\x21\x11\x00\x12" A4 "\x02\x00\x03" "a\x7f" "b", 34, "AUTHORITY"),
    BAD(SIG "\x21\x11\x00\x13" A4 "\x02\x00\x04" "a\r\nb", 35, "AUTHORITY"),
    /* the AUTHORITY was fine, the SSL after it is not: nothing of it is kept */
    BAD(SIG "\x21\x11\x00\x1e" A4 AUTH "\x20\x00\x01\x01", 46, "shorter than 5"),
    /* v2: CRC32C */
    BAD(SIG "\x21\x11\x00\x13" A4 "\x03\x00\x04\x3c\x7a\x50\x48", 35, "CRC32C mismatch"),
    BAD(SIG "\x21\x11\x00\x13"
            "\xc0\x00\x02\x02\xc6\x33\x64\x07\x30\x39\x01\xbb"
            "\x03\x00\x04\x3c\x7a\x50\x47",
        35, "CRC32C mismatch"),
    BAD(SIG "\x21\x11\x00\x12" A4 "\x03\x00\x03\0\0\0", 34, "not 4 bytes"),
    BAD(SIG "\x21\x11\x00\x1a" A4 "\x03\x00\x04\x3c\x7a\x50\x47\x03\x00\x04\x3c\x7a\x50\x47", 42,
        "CRC32C TLV twice"),
};

/* clang-format on */

static int cases_failed;

__attribute__((format(printf, 3, 4))) static void report(const char *kind, size_t row,
                                                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "\n  %s row %zu: ", kind, row);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    cases_failed++;
}

static void addr_text(const struct sockaddr_storage *ss, char *ip, size_t cap, unsigned *port)
{
    ip[0] = '\0';
    *port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s->sin_addr, ip, (socklen_t)cap);
        *port = ntohs(s->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, (socklen_t)cap);
        *port = ntohs(s->sin6_port);
    }
}

static bool same_text(const char *want, const char *got)
{
    return strcmp(want ? want : "", got) == 0;
}

/* Does PI hold what row O says? */
static bool holds(const struct ok *o, const struct pp_info *pi, size_t hlen)
{
    char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
    unsigned sport, dport;
    addr_text(&pi->src, src, sizeof src, &sport);
    addr_text(&pi->dst, dst, sizeof dst, &dport);
    return pi->header_len == hlen && pi->version == o->version && pi->family == o->family &&
           pi->local == (o->family == AF_UNSPEC) && pi->src.ss_family == o->family &&
           pi->dst.ss_family == o->family && same_text(o->src, src) && same_text(o->dst, dst) &&
           sport == o->sport && dport == o->dport && pi->ssl == o->ssl &&
           same_text(o->ssl_version, pi->ssl_version) && same_text(o->authority, pi->authority);
}

static void test_valid(void)
{
    static const char tail[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    static unsigned char buf[PP_MAX_HEADER + sizeof tail];
    cases_failed = 0;
    for (size_t i = 0; i < sizeof oks / sizeof oks[0]; i++) {
        const struct ok *o = &oks[i];
        const unsigned char *in = (const unsigned char *)o->in;
        size_t hlen = o->hlen ? o->hlen : o->len;
        struct pp_info pi;
        const char *why = NULL;
        enum pp_result r = pp_parse(in, o->len, &pi, &why);
        if (r != PP_DONE) {
            report("ok", i, "result %d (%s), want PP_DONE", (int)r, why ? why : "");
            continue;
        }
        if (!holds(o, &pi, hlen))
            report("ok", i, "read otherwise (header_len %zu, want %zu)", pi.header_len, hlen);
        /* every cut asks for more */
        for (size_t k = 0; k < hlen; k++)
            if (pp_parse(in, k, &pi, &why) != PP_NEED_MORE)
                report("ok", i, "cut at %zu of %zu not NEED_MORE", k, hlen);
        /* what follows is the client's */
        memcpy(buf, in, hlen);
        memcpy(buf + hlen, tail, sizeof tail - 1);
        if (pp_parse(buf, hlen + sizeof tail - 1, &pi, NULL) != PP_DONE || !holds(o, &pi, hlen))
            report("ok", i, "not the same with a request after it");
    }
    CU_ASSERT_EQUAL(cases_failed, 0);
}

static void test_invalid(void)
{
    static const struct pp_info zero;
    cases_failed = 0;
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        const struct bad *b = &bads[i];
        const unsigned char *in = (const unsigned char *)b->in;
        for (size_t k = 0; k <= b->len; k++) {
            struct pp_info pi;
            const char *why = NULL;
            enum pp_result r = pp_parse(in, k, &pi, &why);
            enum pp_result want = k < b->at ? PP_NEED_MORE : PP_INVALID;
            if (r != want) {
                report("bad", i, "prefix %zu: result %d, want %d", k, (int)r, (int)want);
                break;
            }
            if (r == PP_INVALID && (!why || !strstr(why, b->why))) {
                report("bad", i, "prefix %zu: reason \"%s\", want \"%s\"", k, why ? why : "(none)",
                       b->why);
                break;
            }
            if (memcmp(&pi, &zero, sizeof pi) != 0) {
                report("bad", i, "prefix %zu: info left filled", k);
                break;
            }
        }
    }
    CU_ASSERT_EQUAL(cases_failed, 0);
}

/* Put the v2 header for BLEN bytes of block at BUF. */
static size_t v2_head(unsigned char *buf, unsigned ver_cmd, unsigned fam, size_t blen)
{
    memcpy(buf, SIG, 12);
    buf[12] = (unsigned char)ver_cmd;
    buf[13] = (unsigned char)fam;
    buf[14] = (unsigned char)(blen >> 8);
    buf[15] = (unsigned char)blen;
    return 16;
}

/* TYPE and N bytes of FILL as a TLV at BUF. */
static size_t tlv(unsigned char *buf, unsigned type, size_t n, int fill)
{
    buf[0] = (unsigned char)type;
    buf[1] = (unsigned char)(n >> 8);
    buf[2] = (unsigned char)n;
    memset(buf + 3, fill, n);
    return 3 + n;
}

static enum pp_result parse(const unsigned char *buf, size_t len, struct pp_info *pi)
{
    return pp_parse(buf, len, pi, NULL);
}

/* Every length the spec or PP_MAX_HEADER bounds, on both sides of the bound. */
static void test_limits(void)
{
    static unsigned char buf[PP_MAX_HEADER + 64];
    struct pp_info pi;

    /* v1: 107 bytes with the CRLF, not one more */
    memcpy(buf, "PROXY UNKNOWN ", 14);
    memset(buf + 14, 'x', PP_V1_MAX - 16);
    memcpy(buf + PP_V1_MAX - 2, "\r\n", 2);
    CU_ASSERT_EQUAL(parse(buf, PP_V1_MAX, &pi), PP_DONE);
    CU_ASSERT_EQUAL(pi.header_len, PP_V1_MAX);
    memset(buf + 14, 'x', PP_V1_MAX - 15);
    memcpy(buf + PP_V1_MAX - 1, "\r\n", 2);
    CU_ASSERT_EQUAL(parse(buf, PP_V1_MAX - 1, &pi), PP_NEED_MORE);
    CU_ASSERT_EQUAL(parse(buf, PP_V1_MAX, &pi), PP_INVALID);
    CU_ASSERT_EQUAL(parse(buf, PP_V1_MAX + 1, &pi), PP_INVALID);
    /* no CRLF at all: refused at 107, not waited on */
    memset(buf + 14, 'x', sizeof buf - 14);
    CU_ASSERT_EQUAL(parse(buf, PP_V1_MAX - 1, &pi), PP_NEED_MORE);
    CU_ASSERT_EQUAL(parse(buf, PP_V1_MAX, &pi), PP_INVALID);
    CU_ASSERT_EQUAL(parse(buf, sizeof buf, &pi), PP_INVALID);

    /* v2: 4096 bytes in all, LOCAL or PROXY, then no more */
    size_t blen = PP_MAX_HEADER - 16;
    size_t n = v2_head(buf, 0x20, 0x00, blen);
    memset(buf + n, 0xee, blen);
    CU_ASSERT_EQUAL(parse(buf, PP_MAX_HEADER - 1, &pi), PP_NEED_MORE);
    CU_ASSERT_EQUAL(parse(buf, PP_MAX_HEADER, &pi), PP_DONE);
    CU_ASSERT_EQUAL(pi.header_len, PP_MAX_HEADER);
    CU_ASSERT(pi.local);
    n = v2_head(buf, 0x21, 0x11, blen);
    memcpy(buf + n, A4, 12);
    n += 12;
    n += tlv(buf + n, 0x04, PP_MAX_HEADER - n - 3, 0);
    CU_ASSERT_EQUAL(n, PP_MAX_HEADER);
    CU_ASSERT_EQUAL(parse(buf, PP_MAX_HEADER - 1, &pi), PP_NEED_MORE);
    CU_ASSERT_EQUAL(parse(buf, PP_MAX_HEADER, &pi), PP_DONE);
    CU_ASSERT_EQUAL(pi.family, AF_INET);
    v2_head(buf, 0x21, 0x11, blen + 1);
    CU_ASSERT_EQUAL(parse(buf, 15, &pi), PP_NEED_MORE);
    CU_ASSERT_EQUAL(parse(buf, 16, &pi), PP_INVALID);

    /* AUTHORITY: up to 255 bytes (a host name's most) */
    for (size_t len = 254; len <= 257; len++) {
        n = v2_head(buf, 0x21, 0x11, 12 + 3 + len);
        memcpy(buf + n, A4, 12);
        n += 12;
        n += tlv(buf + n, 0x02, len, 'a');
        CU_ASSERT_EQUAL(parse(buf, n, &pi), len <= 255 ? PP_DONE : PP_INVALID);
        CU_ASSERT_EQUAL(strlen(pi.authority), len <= 255 ? len : 0);
    }
    /* SSL version: up to 31 bytes */
    for (size_t len = 30; len <= 33; len++) {
        n = v2_head(buf, 0x21, 0x11, 12 + 3 + 5 + 3 + len);
        memcpy(buf + n, A4, 12);
        n += 12;
        n += tlv(buf + n, 0x20, 5 + 3 + len, 0);
        buf[n - 8 - len] = 0x01;
        tlv(buf + n - 3 - len, 0x21, len, 'v');
        CU_ASSERT_EQUAL(parse(buf, n, &pi), len <= 31 ? PP_DONE : PP_INVALID);
        CU_ASSERT_EQUAL(strlen(pi.ssl_version), len <= 31 ? len : 0);
        CU_ASSERT_EQUAL(pi.ssl, len <= 31);
    }
    /* UNIQUE_ID: up to 128 bytes, as the spec says */
    for (size_t len = 127; len <= 130; len++) {
        n = v2_head(buf, 0x21, 0x11, 12 + 3 + len);
        memcpy(buf + n, A4, 12);
        n += 12;
        n += tlv(buf + n, 0x05, len, 0x55);
        CU_ASSERT_EQUAL(parse(buf, n, &pi), len <= 128 ? PP_DONE : PP_INVALID);
    }
}

/* The refusal's reason is optional; the answer is the same without it. */
static void test_why_optional(void)
{
    struct pp_info pi;
    CU_ASSERT_EQUAL(pp_parse((const unsigned char *)"GET ", 4, &pi, NULL), PP_INVALID);
    CU_ASSERT_EQUAL(
        pp_parse((const unsigned char *)"PROXY TCP4 1.2.3.4 5.6.7.8 08 1\r\n", 33, &pi, NULL),
        PP_INVALID);
    CU_ASSERT_EQUAL(pp_parse((const unsigned char *)"", 0, &pi, NULL), PP_NEED_MORE);
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("proxyproto", NULL, NULL);
    if (!s)
        return;
    CU_add_test(s, "headers taken, cut anywhere, with a request after", test_valid);
    CU_add_test(s, "headers refused, at the first byte that cannot fit", test_invalid);
    CU_add_test(s, "lengths at and past every bound", test_limits);
    CU_add_test(s, "reason pointer optional", test_why_optional);
}
