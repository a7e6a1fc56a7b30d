/*
 * cors: the CORS answer for a request, from a conf_cors and the client's
 * head (Fetch standard, section 3.2; what Kong's and APISIX's CORS
 * plugins do). Which origins are allowed, whether a request is a
 * preflight, the header lines of a preflight answer and those added to an
 * actual response. Pure: conf and head in, header lines (through headbuf)
 * and a verdict out; proxy.c decides when. Nothing from the request is
 * written unless it parsed: an Origin only as a serialized origin, the
 * requested headers only as tokens.
 *
 * Decisions:
 * - An origin is scheme "://" host [":" port], nothing else: a path, a
 *   query, userinfo, spaces, controls, percent signs, raw non-ASCII
 *   (browsers send IDNs as punycode "xn--" labels), an empty label or a
 *   trailing dot ("https://a.com." is another origin to the browser and
 *   conf cannot name it), a port with a leading zero, 0 or over 65535, and
 *   anything of CONF_ORIGIN_MAX bytes or more are refused. Scheme and host
 *   compare in any letter case; an explicit default port (80 for http and
 *   ws, 443 for https and wss) equals none, in the request and in conf.
 *   Otherwise ports must be equal: an entry without a port allows only the
 *   default one.
 * - A host "*.example.com" (after the scheme) allows one or more labels
 *   before ".example.com", with the same scheme and port; never
 *   example.com itself, nor an IP literal.
 * - "null" (sandboxed frames, file: and data: documents) is allowed only
 *   by a "null" entry; "*" does not cover it.
 * - An origin listed by itself is echoed, with Allow-Credentials when
 *   credentials is on. An origin allowed only by "*" gets "*" and never
 *   Allow-Credentials: conf refuses "*" with credentials, and even without
 *   that check the gateway never reflects any origin with credentials.
 * - Vary: Origin goes on every answer once CORS is set, allowed or not,
 *   so a cache keeps answers to different origins apart. It is a line of
 *   its own; a Vary from the upstream adds to it (list semantics).
 * - A refused preflight (origin, method or requested headers) gets only
 *   the Vary line: the caller still answers 204 and the browser fails it,
 *   as Kong does. The verdict says why, for logs.
 */
#ifndef ENVELOPD_CORS_H
#define ENVELOPD_CORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "headbuf.h"
#include "httphead.h"

/* Access-Control-Allow-Methods when neither conf nor the route names any. */
#define CORS_DEFAULT_METHODS                                                                       \
    ((UINT64_C(1) << HTTP_GET) | (UINT64_C(1) << HTTP_HEAD) | (UINT64_C(1) << HTTP_POST) |         \
     (UINT64_C(1) << HTTP_PUT) | (UINT64_C(1) << HTTP_PATCH) | (UINT64_C(1) << HTTP_DELETE) |      \
     (UINT64_C(1) << HTTP_OPTIONS))

/* The longest Access-Control-Allow-Headers echoed from a request (its
 * tokens joined by ", "); a longer list refuses the preflight. */
#define CORS_ECHO_MAX 1024

enum cors_verdict {
    CORS_ALLOWED,        /* the CORS lines were written */
    CORS_OFF,            /* the conf_cors is not set: nothing written */
    CORS_NO_ORIGIN,      /* no Origin, several, or not an origin: only Vary */
    CORS_ORIGIN_DENIED,  /* an origin conf does not allow: only Vary */
    CORS_METHOD_DENIED,  /* preflight: the requested method is missing, repeated or not allowed */
    CORS_HEADERS_DENIED, /* preflight: the requested headers are not a token list (echo mode) */
};

/* Static text for a verdict ("allowed", "origin denied"...), for logs. */
const char *cors_verdict_str(enum cors_verdict v);

/* Is ORIGIN[0..len), as a request's Origin value, allowed by C? */
bool cors_origin_allowed(const struct conf_cors *c, const char *origin, size_t len);

/* The request's Origin value and its length, or NULL when absent or repeated. */
const char *cors_request_origin(const struct httphead *req, size_t *len);

/* Is a request with METHOD and head REQ a CORS preflight (OPTIONS with
 * Origin and Access-Control-Request-Method)? The gateway answers those. */
bool cors_is_preflight(enum http_method method, const struct httphead *req);

/*
 * The most bytes cors_preflight_headers or cors_response_headers can write for C, the
 * names in EXPOSE[0..n_expose) and any request.
 */
size_t cors_headers_cap(const struct conf_cors *c, const char *const *expose, size_t n_expose);

/*
 * The CORS lines of the answer to the preflight REQ on a route whose
 * methods are ROUTE_METHODS (bit 1 << enum http_method; 0: all), into H:
 * Access-Control-Allow-Origin, Vary, Access-Control-Allow-Methods (conf's,
 * else the route's, else CORS_DEFAULT_METHODS), Access-Control-Allow-
 * Headers (conf's, or the requested ones rewritten as tokens),
 * Access-Control-Max-Age and, when allowed, -Allow-Credentials. Anything
 * but CORS_ALLOWED: only the Vary line.
 */
enum cors_verdict cors_preflight_headers(const struct conf_cors *c, uint64_t route_methods,
                                         const struct httphead *req, struct headbuf *h);

/*
 * The CORS lines of an actual response to a request whose Origin is
 * ORIGIN[0..origin_len) (NULL: none), into H: Vary, and for an allowed
 * origin Access-Control-Allow-Origin, -Allow-Credentials and
 * -Expose-Headers listing EXPOSE[0..n_expose) (names that are not tokens
 * are left out; none left: no line).
 */
enum cors_verdict cors_response_headers(const struct conf_cors *c, const char *origin,
                                        size_t origin_len, const char *const *expose,
                                        size_t n_expose, struct headbuf *h);

#endif
