/*
 * httpresp: parsing one upstream response head (contiguous, like requests)
 * and deciding how its body is framed. A response the gateway cannot trust
 * (garbage status line, conflicting framing, oversized head) is refused so
 * that the proxy answers 502 instead of relaying it.
 */
#ifndef ENVELOPD_HTTPRESP_H
#define ENVELOPD_HTTPRESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#include "httphead.h"

#define HTTPRESP_MAX_HEAD (64 * 1024)

struct httpresp {
    http_parser parser;     /* the head parser; bodies go through httpbody */
    int status;
    unsigned short major, minor;
    bool keepalive;         /* the upstream connection may be reused */
    bool chunked;
    bool has_length;
    uint64_t content_length;
    bool has_body;          /* a body follows the head */
    bool until_eof;         /* the body ends when the upstream closes */
    bool complete;          /* the message ended with the head */
    struct httphead head;   /* last: not cleared per response (see httpresp_parse) */
};

/*
 * Parse the head in BUF[0..LEN). HEAD_REQUEST: the request was HEAD, so no
 * body follows whatever the head says. Returns 0 or -1 with a reason.
 */
int httpresp_parse(struct httpresp *r, const char *buf, size_t len, bool head_request,
                   const char **why) __attribute__((warn_unused_result));

#endif
