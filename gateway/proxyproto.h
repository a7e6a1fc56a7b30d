/*
 * proxyproto: the PROXY protocol header (HAProxy's proxy-protocol.txt,
 * v1 text and v2 binary) a load balancer puts before the first byte of
 * the client's stream, read into the client and server addresses it
 * claims and the TLS facts (SNI, TLS version) it passes along. The
 * addresses become the caller the rate limiter and the logs see, so the
 * reading is as strict as HAProxy's own: one spelling of each field,
 * every length checked against the one that encloses it, anything else
 * refused. Pure: bytes in, an answer out; the connection decides when to
 * read more and what to do with the rest of the stream.
 */
#ifndef ENVELOPD_PROXYPROTO_H
#define ENVELOPD_PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* The spec's worst case for a v1 line, CRLF included. */
#define PP_V1_MAX 107
/*
 * The most a header may take, v1 or v2. v2 can declare 16 + 65535 bytes,
 * but what senders put in it (addresses, SNI, TLS version and cipher,
 * AWS/Azure/GCP endpoint ids) is a few hundred; a 64 KiB buffer held per
 * connection before the first request byte only helps a client that
 * reserves memory it will never fill.
 */
#define PP_MAX_HEADER 4096

enum pp_result { PP_NEED_MORE = 0, PP_DONE = 1, PP_INVALID = -1 };

/* clang-format off */
struct pp_info {
    int version;                      /* 1 or 2 */
    bool local;                       /* v2 LOCAL command, or v1 "UNKNOWN": keep the real peer */
    int family;                       /* AF_INET, AF_INET6, or AF_UNSPEC (local) */
    struct sockaddr_storage src, dst; /* ports set, in network order as sockaddr wants */
    bool ssl;                         /* v2 PP2_TYPE_SSL present with PP2_CLIENT_SSL bit */
    char ssl_version[32];             /* PP2_SUBTYPE_SSL_VERSION, "" if absent */
    char authority[256];              /* PP2_TYPE_AUTHORITY (SNI), "" if absent */
    size_t header_len;                /* bytes consumed on PP_DONE */
};
/* clang-format on */

/*
 * Parse a PROXY header at the start of BUF (LEN bytes available so far).
 * PP_DONE: *OUT holds the header, the first OUT->header_len bytes of BUF;
 * what follows is the client's own stream. PP_NEED_MORE: the bytes so far
 * may still begin a header, read more (never more than PP_MAX_HEADER in
 * all: at that length the answer is never PP_NEED_MORE). PP_INVALID: not
 * a PROXY header or a malformed one; *WHY (when WHY is not NULL) gets a
 * static short reason for the log. *OUT is zeroed on every call and filled
 * only on PP_DONE. The answer depends on the bytes alone, not on how they
 * arrived: a caller may parse again from the start after every read.
 */
enum pp_result pp_parse(const unsigned char *buf, size_t len, struct pp_info *out,
                        const char **why);

#endif
