/*
 * fuzz_proxyproto: arbitrary bytes as the start of a client stream on a
 * listener that expects a PROXY header. Besides memory errors it checks
 * what the connection relies on when it parses again after every read:
 * the answer is decided at one length and never changes after it (every
 * prefix of a header taken asks for more, none is refused; a refusal
 * stays a refusal; more bytes never change what was read), a header
 * taken fits in what was read and in PP_MAX_HEADER, and more is never
 * asked for at PP_MAX_HEADER. What is taken must also be what a sender
 * would have written: a TCP4 line is the one spelling of its addresses
 * and ports, a TCP6 line reads the same once its addresses are written
 * as inet_ntop writes them, and the TLV strings are printable C strings.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct pp_info zero;

/* A TLV string: NUL-terminated inside its array, no control byte. */
static void check_text(const char *s, size_t cap)
{
    const char *end = memchr(s, '\0', cap);
    if (!end)
        abort();
    for (const char *p = s; p < end; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            abort();
}

static void check_addr(const struct sockaddr_storage *ss, int family)
{
    if (ss->ss_family != family)
        abort();
}

static unsigned port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static const void *addr_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return &((const struct sockaddr_in *)ss)->sin_addr;
    return &((const struct sockaddr_in6 *)ss)->sin6_addr;
}

/* A v1 line written back from PI, as a sender would write it. */
static size_t v1_line(const struct pp_info *pi, char *out, size_t cap)
{
    char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
    if (!inet_ntop(pi->family, addr_of(&pi->src), src, sizeof src) ||
        !inet_ntop(pi->family, addr_of(&pi->dst), dst, sizeof dst))
        abort();
    int n = snprintf(out, cap, "PROXY %s %s %s %u %u\r\n", pi->family == AF_INET ? "TCP4" : "TCP6",
                     src, dst, port_of(&pi->src), port_of(&pi->dst));
    if (n < 0 || (size_t)n >= cap)
        abort();
    return (size_t)n;
}

static void check_done(const unsigned char *buf, size_t size, const struct pp_info *pi)
{
    if (pi->header_len == 0 || pi->header_len > size || pi->header_len > PP_MAX_HEADER)
        abort();
    if (pi->version != 1 && pi->version != 2)
        abort();
    if (pi->local != (pi->family == AF_UNSPEC))
        abort();
    if (pi->family != AF_UNSPEC && pi->family != AF_INET && pi->family != AF_INET6)
        abort();
    check_addr(&pi->src, pi->family);
    check_addr(&pi->dst, pi->family);
    check_text(pi->ssl_version, sizeof pi->ssl_version);
    check_text(pi->authority, sizeof pi->authority);
    if (pi->version == 2)
        return;
    if (pi->header_len > PP_V1_MAX || buf[pi->header_len - 2] != '\r' ||
        buf[pi->header_len - 1] != '\n' || memchr(buf, '\n', pi->header_len - 1))
        abort();
    if (pi->ssl || pi->ssl_version[0] || pi->authority[0])
        abort();
    if (pi->local)
        return;
    char line[256];
    size_t n = v1_line(pi, line, sizeof line);
    if (pi->family == AF_INET) {
        /* one spelling only: the line is exactly what inet_ntop and %u write */
        if (n != pi->header_len || memcmp(line, buf, n) != 0)
            abort();
        return;
    }
    /* IPv6 has several spellings; inet_ntop's must read the same */
    struct pp_info again;
    if (pp_parse((const unsigned char *)line, n, &again, NULL) != PP_DONE ||
        again.header_len != n || again.family != AF_INET6 ||
        memcmp(&again.src, &pi->src, sizeof again.src) != 0 ||
        memcmp(&again.dst, &pi->dst, sizeof again.dst) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Copy so that ASan catches any read past the end of what was read. */
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);

    struct pp_info full;
    const char *why = NULL;
    enum pp_result r = pp_parse(buf, size, &full, &why);
    if (r == PP_DONE)
        check_done(buf, size, &full);
    else if (r == PP_INVALID && (!why || !why[0]))
        abort();
    else if (r != PP_INVALID && r != PP_NEED_MORE)
        abort();
    if (r != PP_DONE && memcmp(&full, &zero, sizeof full) != 0)
        abort();
    if (r == PP_NEED_MORE && size >= PP_MAX_HEADER)
        abort(); /* the connection's buffer would never be enough */

    /*
     * The same bytes arriving one at a time: each prefix asks for more until
     * one is decided, and that one decides as the whole input did (a header
     * taken ends exactly there and reads the same).
     */
    for (size_t k = 0; k <= size; k++) {
        struct pp_info pi;
        const char *why_k = NULL;
        enum pp_result rk = pp_parse(buf, k, &pi, &why_k);
        if (rk == PP_NEED_MORE) {
            if (memcmp(&pi, &zero, sizeof pi) != 0)
                abort();
            continue;
        }
        if (rk != r)
            abort();
        if (rk == PP_DONE && (pi.header_len != k || memcmp(&pi, &full, sizeof pi) != 0))
            abort();
        if (rk == PP_INVALID && (!why_k || strcmp(why_k, why) != 0))
            abort(); /* refused at byte K: for the same reason with more behind it */
        break;
    }
    free(buf);
    return 0;
}
