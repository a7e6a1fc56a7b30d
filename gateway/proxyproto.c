/*
 * proxyproto: the PROXY header, v1 and v2, judged from the start of the
 * buffer on every call, so the connection keeps no parser state and the
 * answer cannot depend on how the bytes were cut. A v1 line is judged
 * byte by byte, since only its CRLF says where it ends: a field that can
 * no longer become valid is refused as soon as it is seen, not after 107
 * bytes of waiting. A v2 header declares its length up front, so its
 * fixed part is judged as it arrives and the address block and TLVs once
 * all of them are in. Where the spec leaves the receiver a choice
 * (datagram and AF_UNIX addresses, duplicate TLVs, the CRC32C TLV) the
 * choice is the one that leaves no doubt about who the caller is.
 */
#include "proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "utf8.h"

#define STR_(x) #x
#define STR(x) STR_(x)

static enum pp_result fail(const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return PP_INVALID;
}

/* --- v1: "PROXY TCP4 src dst sport dport\r\n" --- */

/*
 * The bytes of a v1 line seen so far. Running out of them means "read
 * more" below PP_V1_MAX and "too long" at it: a line has ended by then.
 */
struct line {
    const unsigned char *b;
    size_t len; /* available, at most PP_V1_MAX */
    size_t i;
    bool capped; /* len is PP_V1_MAX: no more will be looked at */
};

static enum pp_result ran_out(const struct line *l, const char **why)
{
    return l->capped ? fail(why, "v1 line longer than " STR(PP_V1_MAX) " bytes") : PP_NEED_MORE;
}

/* Match the literal S at l->i. PP_DONE when it is all there. */
static enum pp_result lit(struct line *l, const char *s, const char **why, const char *reason)
{
    for (; *s; s++, l->i++) {
        if (l->i == l->len)
            return ran_out(l, why);
        if (l->b[l->i] != (unsigned char)*s)
            return fail(why, reason);
    }
    return PP_DONE;
}

/*
 * Can S[0..n) still become a dotted quad as inet_pton reads it (decimal
 * octets up to 255, no leading zero, four of them)? Judging the prefix
 * refuses "1.2.3.4.5" or "256" at once instead of at the space.
 */
static bool v4_prefix(const char *s, size_t n)
{
    unsigned dots = 0, digits = 0, octet = 0;
    for (size_t k = 0; k < n; k++) {
        if (s[k] == '.') {
            if (digits == 0 || ++dots > 3)
                return false;
            digits = 0;
            octet = 0;
            continue;
        }
        if (digits == 1 && octet == 0)
            return false; /* "01": inet_pton (glibc, musl) refuses a leading zero */
        octet = octet * 10 + (unsigned)(s[k] - '0');
        if (++digits > 3 || octet > 255)
            return false;
    }
    return true;
}

static bool addr_char(int family, unsigned char c)
{
    if ((c >= '0' && c <= '9') || c == '.')
        return true;
    return family == AF_INET6 && (c == ':' || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'));
}

/*
 * An address of FAMILY ended by a single space, into ADDR (network
 * order). An IPv6 prefix is judged by its characters and length only;
 * the whole address is judged by inet_pton once its space arrives.
 */
static enum pp_result v1_addr(struct line *l, int family, void *addr, const char **why)
{
    /* 45 characters: "0000:0000:0000:0000:0000:ffff:255.255.255.255", the longest
     * spelling inet_pton reads */
    char text[INET6_ADDRSTRLEN];
    size_t max = family == AF_INET ? 15 : sizeof text - 1;
    size_t n = 0;
    while (l->i < l->len && l->b[l->i] != ' ') {
        unsigned char c = l->b[l->i++];
        if (!addr_char(family, c) || n == max)
            return fail(why, "malformed v1 address");
        text[n++] = (char)c;
    }
    if (family == AF_INET && !v4_prefix(text, n))
        return fail(why, "malformed v1 address");
    if (l->i == l->len)
        return ran_out(l, why);
    l->i++; /* the space */
    text[n] = '\0';
    if (n == 0 || inet_pton(family, text, addr) != 1)
        return fail(why, "malformed v1 address");
    return PP_DONE;
}

/*
 * A port, 0 to 65535 in decimal, ended by TERM. No sign, no leading
 * zero: the spec writes it as a plain decimal number, and a second
 * spelling of the same port is one more thing two readers could differ on.
 */
static enum pp_result v1_port(struct line *l, unsigned char term, uint16_t *port, const char **why)
{
    size_t start = l->i;
    uint32_t v = 0;
    while (l->i < l->len && l->b[l->i] != term) {
        unsigned char c = l->b[l->i++];
        if (c < '0' || c > '9' || (l->i - start > 1 && v == 0))
            return fail(why, "malformed v1 port");
        v = v * 10 + (uint32_t)(c - '0');
        if (v > 65535)
            return fail(why, "malformed v1 port");
    }
    if (l->i == l->len)
        return ran_out(l, why);
    if (l->i == start)
        return fail(why, "malformed v1 port");
    l->i++; /* TERM */
    *port = htons((uint16_t)v);
    return PP_DONE;
}

/*
 * "UNKNOWN", then CRLF or a space and anything up to CRLF: the spec has
 * the receiver ignore what an UNKNOWN line carries. A bare CR or LF is
 * still refused, so the line ends where every reader thinks it does.
 */
static enum pp_result v1_unknown(struct line *l, const char **why)
{
    if (l->i == l->len)
        return ran_out(l, why);
    if (l->b[l->i] == ' ') {
        l->i++;
        while (l->i < l->len && l->b[l->i] != '\r') {
            if (l->b[l->i] == '\n')
                return fail(why, "bare LF in v1 line");
            l->i++;
        }
    }
    return lit(l, "\r\n", why, "malformed v1 UNKNOWN line");
}

#define STEP(e)                                                                                    \
    do {                                                                                           \
        enum pp_result r_ = (e);                                                                   \
        if (r_ != PP_DONE)                                                                         \
            return r_;                                                                             \
    } while (0)

static enum pp_result v1(const unsigned char *b, size_t len, struct pp_info *out, const char **why)
{
    struct line l = {b, len < PP_V1_MAX ? len : PP_V1_MAX, 0, len >= PP_V1_MAX};
    STEP(lit(&l, "PROXY ", why, "not a PROXY header"));
    if (l.i == l.len)
        return ran_out(&l, why);
    if (b[l.i] == 'U') {
        STEP(lit(&l, "UNKNOWN", why, "unknown v1 protocol"));
        STEP(v1_unknown(&l, why));
        out->version = 1;
        out->local = true;
        out->family = AF_UNSPEC;
        out->header_len = l.i;
        return PP_DONE;
    }
    STEP(lit(&l, "TCP", why, "unknown v1 protocol"));
    if (l.i == l.len)
        return ran_out(&l, why);
    int family = b[l.i] == '4' ? AF_INET : b[l.i] == '6' ? AF_INET6 : AF_UNSPEC;
    if (family == AF_UNSPEC)
        return fail(why, "unknown v1 protocol");
    l.i++;
    STEP(lit(&l, " ", why, "unknown v1 protocol"));

    struct sockaddr_storage src, dst;
    memset(&src, 0, sizeof src);
    memset(&dst, 0, sizeof dst);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&src, *d4 = (struct sockaddr_in *)&dst;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&src, *d6 = (struct sockaddr_in6 *)&dst;
    uint16_t sport = 0, dport = 0;
    STEP(v1_addr(&l, family, family == AF_INET ? (void *)&s4->sin_addr : (void *)&s6->sin6_addr,
                 why));
    STEP(v1_addr(&l, family, family == AF_INET ? (void *)&d4->sin_addr : (void *)&d6->sin6_addr,
                 why));
    STEP(v1_port(&l, ' ', &sport, why));
    STEP(v1_port(&l, '\r', &dport, why));
    STEP(lit(&l, "\n", why, "bare CR in v1 line"));
    if (family == AF_INET) {
        s4->sin_family = d4->sin_family = AF_INET;
        s4->sin_port = sport;
        d4->sin_port = dport;
    } else {
        s6->sin6_family = d6->sin6_family = AF_INET6;
        s6->sin6_port = sport;
        d6->sin6_port = dport;
    }
    out->version = 1;
    out->family = family;
    out->src = src;
    out->dst = dst;
    out->header_len = l.i;
    return PP_DONE;
}

/* --- v2: signature, ver_cmd, fam, length, addresses, TLVs --- */

static const unsigned char v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                         0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

#define PP2_CMD_LOCAL 0x0
#define PP2_CMD_PROXY 0x1

#define PP2_TYPE_AUTHORITY 0x02
#define PP2_TYPE_CRC32C 0x03
#define PP2_TYPE_UNIQUE_ID 0x05
#define PP2_TYPE_SSL 0x20
#define PP2_SUBTYPE_SSL_VERSION 0x21
#define PP2_CLIENT_SSL 0x01

static uint32_t crc32c(uint32_t crc, const unsigned char *p, size_t n)
{
    /* bitwise, reflected Castagnoli polynomial: at most PP_MAX_HEADER bytes, once */
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
    }
    return crc;
}

struct tlv {
    unsigned type;
    size_t off; /* of the value, in B */
    size_t len;
};

/* The TLV at *OFF of B[..END): 1 and T filled, 0 at END, -1 when it does not fit. */
static int next_tlv(const unsigned char *b, size_t *off, size_t end, struct tlv *t,
                    const char **why)
{
    if (*off == end)
        return 0;
    if (end - *off < 3) {
        fail(why, "truncated v2 TLV");
        return -1;
    }
    t->type = b[*off];
    t->len = (size_t)b[*off + 1] << 8 | b[*off + 2];
    t->off = *off + 3;
    if (t->len > end - t->off) {
        fail(why, "v2 TLV longer than what encloses it");
        return -1;
    }
    *off = t->off + t->len;
    return 1;
}

/*
 * Copy the text TLV T into DST (CAP bytes with its NUL). Refused when it
 * does not fit or is not printable UTF-8 (ASCII only for ASCII_ONLY): a
 * NUL would cut the C string short of what the sender meant, and a
 * control character has no business in a host name or a TLS version.
 */
static bool tlv_text(const unsigned char *b, const struct tlv *t, bool ascii_only, char *dst,
                     size_t cap)
{
    if (t->len >= cap)
        return false;
    const unsigned char *s = b + t->off;
    for (size_t k = 0; k < t->len;) {
        uint32_t cp = s[k];
        size_t n = ascii_only ? cp < 0x80 : utf8_decode(s + k, t->len - k, &cp);
        if (n == 0 || cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
            return false;
        k += n;
    }
    memcpy(dst, s, t->len);
    dst[t->len] = '\0';
    return true;
}

/* The sub-TLVs of a PP2_TYPE_SSL TLV T, after its client byte and verify word. */
static enum pp_result ssl_tlv(const unsigned char *b, const struct tlv *t, struct pp_info *out,
                              const char **why)
{
    if (t->len < 5)
        return fail(why, "v2 SSL TLV shorter than 5 bytes");
    out->ssl = (b[t->off] & PP2_CLIENT_SSL) != 0;
    size_t off = t->off + 5, end = t->off + t->len;
    bool version = false;
    struct tlv s;
    int r;
    while ((r = next_tlv(b, &off, end, &s, why)) > 0) {
        if (s.type != PP2_SUBTYPE_SSL_VERSION)
            continue; /* CN, cipher, algorithms: nothing here reads them */
        if (version)
            return fail(why, "v2 SSL version TLV twice");
        version = true;
        if (!tlv_text(b, &s, true, out->ssl_version, sizeof out->ssl_version))
            return fail(why, "malformed v2 SSL version TLV");
    }
    return r < 0 ? PP_INVALID : PP_DONE;
}

/*
 * The TLVs of B[OFF..END), END being the whole header. Unknown types,
 * NOOP, ALPN and NETNS are skipped; a TLV read here twice is refused,
 * since which one counts would be a guess.
 */
static enum pp_result tlvs(const unsigned char *b, size_t off, size_t end, struct pp_info *out,
                           const char **why)
{
    bool authority = false, ssl = false, crc = false;
    size_t crc_off = 0;
    struct tlv t;
    int r;
    while ((r = next_tlv(b, &off, end, &t, why)) > 0) {
        switch (t.type) {
        case PP2_TYPE_AUTHORITY:
            if (authority)
                return fail(why, "v2 AUTHORITY TLV twice");
            authority = true;
            if (!tlv_text(b, &t, false, out->authority, sizeof out->authority))
                return fail(why, "malformed v2 AUTHORITY TLV");
            break;
        case PP2_TYPE_CRC32C:
            if (crc)
                return fail(why, "v2 CRC32C TLV twice");
            if (t.len != 4)
                return fail(why, "v2 CRC32C TLV not 4 bytes");
            crc = true;
            crc_off = t.off;
            break;
        case PP2_TYPE_UNIQUE_ID:
            if (t.len > 128)
                return fail(why, "v2 UNIQUE_ID TLV longer than 128 bytes");
            break;
        case PP2_TYPE_SSL:
            if (ssl)
                return fail(why, "v2 SSL TLV twice");
            ssl = true;
            if (ssl_tlv(b, &t, out, why) != PP_DONE)
                return PP_INVALID;
            break;
        default:
            break;
        }
    }
    if (r < 0)
        return PP_INVALID;
    if (crc) {
        /* Optional in the spec, checked as HAProxy does: the sum covers the
         * whole header with its own field read as zeros. */
        static const unsigned char zero[4];
        uint32_t c = crc32c(0xffffffffu, b, crc_off);
        c = crc32c(c, zero, sizeof zero);
        c = ~crc32c(c, b + crc_off + 4, end - crc_off - 4);
        uint32_t want = (uint32_t)b[crc_off] << 24 | (uint32_t)b[crc_off + 1] << 16 |
                        (uint32_t)b[crc_off + 2] << 8 | b[crc_off + 3];
        if (c != want)
            return fail(why, "v2 CRC32C mismatch");
    }
    return PP_DONE;
}

static enum pp_result v2(const unsigned char *b, size_t len, struct pp_info *out, const char **why)
{
    for (size_t k = 0; k < sizeof v2_sig; k++) {
        if (k == len)
            return PP_NEED_MORE;
        if (b[k] != v2_sig[k])
            return fail(why, "not a PROXY header");
    }
    if (len < 13)
        return PP_NEED_MORE;
    if (b[12] >> 4 != 2)
        return fail(why, "v2 header of another version");
    unsigned cmd = b[12] & 0x0f;
    if (cmd != PP2_CMD_LOCAL && cmd != PP2_CMD_PROXY)
        return fail(why, "unknown v2 command");
    if (len < 14)
        return PP_NEED_MORE;
    /*
     * The spec's seven family/protocol bytes; any other must be refused,
     * even under LOCAL. PROXY is taken only for TCP over IPv4 or IPv6:
     * the caller is an IP address here. UNSPEC, AF_UNIX and datagrams
     * are refused rather than read as LOCAL, since a sender that claims
     * to relay a client and names none is misconfigured, and keying
     * every client on the balancer's address would hide it.
     */
    size_t alen = 0;
    const char *refused = NULL;
    switch (b[13]) {
    case 0x11: /* TCP over IPv4 */
        alen = 12;
        break;
    case 0x21: /* TCP over IPv6 */
        alen = 36;
        break;
    case 0x00:
        refused = "v2 PROXY command with no address family";
        break;
    case 0x12:
    case 0x22:
    case 0x32:
        refused = "v2 datagram addresses not supported";
        break;
    case 0x31:
        refused = "v2 AF_UNIX addresses not supported";
        break;
    default:
        return fail(why, "undefined v2 address family or protocol");
    }
    if (cmd == PP2_CMD_PROXY && refused)
        return fail(why, refused);
    if (len < 16)
        return PP_NEED_MORE;
    size_t blen = (size_t)b[14] << 8 | b[15];
    if (blen > PP_MAX_HEADER - 16)
        return fail(why, "v2 header longer than " STR(PP_MAX_HEADER) " bytes");
    if (cmd == PP2_CMD_PROXY && blen < alen)
        return fail(why, "v2 address block shorter than its family's");
    if (len < 16 + blen)
        return PP_NEED_MORE;

    out->version = 2;
    out->header_len = 16 + blen;
    if (cmd == PP2_CMD_LOCAL) {
        /* The spec has the receiver discard the block: health checks,
         * the balancer's own connections. */
        out->local = true;
        out->family = AF_UNSPEC;
        return PP_DONE;
    }
    if (alen == 12) {
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
        struct sockaddr_in *d = (struct sockaddr_in *)&out->dst;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, b + 16, 4);
        memcpy(&d->sin_addr, b + 20, 4);
        memcpy(&s->sin_port, b + 24, 2);
        memcpy(&d->sin_port, b + 26, 2);
        out->family = AF_INET;
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&out->dst;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, b + 16, 16);
        memcpy(&d->sin6_addr, b + 32, 16);
        memcpy(&s->sin6_port, b + 48, 2);
        memcpy(&d->sin6_port, b + 50, 2);
        out->family = AF_INET6;
    }
    return tlvs(b, 16 + alen, 16 + blen, out, why);
}

enum pp_result pp_parse(const unsigned char *buf, size_t len, struct pp_info *out, const char **why)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return PP_NEED_MORE;
    enum pp_result r;
    if (buf[0] == 'P')
        r = v1(buf, len, out, why);
    else if (buf[0] == v2_sig[0])
        r = v2(buf, len, out, why);
    else
        r = fail(why, "not a PROXY header");
    if (r != PP_DONE)
        memset(out, 0, sizeof *out); /* a refused TLV may have filled part of it */
    return r;
}
