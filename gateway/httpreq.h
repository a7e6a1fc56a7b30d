/*
 * httpreq: parsing and judging one HTTP/1.x request head. Wraps
 * libhttp-parser (which already refuses Content-Length with
 * Transfer-Encoding, duplicate Content-Length and signed lengths) and adds
 * the checks it lacks: token names, control characters, obs-fold, Host
 * rules, versions other than 1.0/1.1, transfer codings other than chunked.
 * Pure: the caller hands it a complete, contiguous head.
 */
#ifndef ENVELOPD_HTTPREQ_H
#define ENVELOPD_HTTPREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#include "httphead.h"

#define HTTPREQ_MAX_LINE 8192   /* request line; longer -> 414 */

struct httpreq {
    http_parser parser;     /* the head parser; bodies go through httpbody */
    const char *target;     /* request-target as sent upstream: path[?query] */
    size_t target_len;
    const char *path;       /* the normalized path alone (urlpath.h), for logs */
    size_t path_len;
    const char *route_path; /* its routing form: ";params" dropped; routes match this */
    size_t route_path_len;
    const char *raw_path;   /* the path as the client sent it */
    size_t raw_path_len;
    enum http_method method;
    unsigned short major, minor;
    bool keepalive;
    bool chunked;
    bool has_length;
    uint64_t content_length;
    bool expect_continue;
    bool has_body;          /* a body follows the head */
    bool complete;          /* the message ended with the head */
    /* the URL as the parser reported it */
    const char *url;
    size_t url_len;
    /* absolute-form only: the target's host (no brackets) and its port,
     * explicit or the scheme's default (0 when the scheme has none) */
    const char *abs_host;
    size_t abs_host_len;
    unsigned abs_port;
    unsigned abs_default_port;
    /* From here on nothing is cleared per request (see httpreq_parse). */
    struct httphead head;
    /* the normalized target, when normalizing changed anything */
    char norm[HTTPREQ_MAX_LINE + 1];
    /* the routing form of the path, when it differs from the path */
    char route[HTTPREQ_MAX_LINE + 1];
};

/*
 * Parse the head in BUF[0..LEN) (ending with the blank line). Returns 0,
 * or the HTTP status to answer (400, 414, 431, 501, 505) with a static
 * reason in *why. BUF must outlive every pointer in R.
 */
int httpreq_parse(struct httpreq *r, const char *buf, size_t len, const char **why)
    __attribute__((warn_unused_result));

/*
 * Where does the head end in the buffered bytes? Returns its length, 0 when
 * more bytes are needed, or an HTTP status (414, 431) as a negative number
 * when the head cannot fit the limits.
 */
long httpreq_head_end(const char *data, size_t len, size_t max_header, size_t *pos,
                      unsigned *state);

#endif
