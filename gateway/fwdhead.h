/*
 * fwdhead: what crosses the gateway in a head, in each direction. The
 * request head the upstream receives (normalized target, strip_prefix, the
 * client's fields less hop-by-hop and those the gateway owns, the
 * correlation ID, X-Forwarded-For / -Proto / -Host and Via with this hop
 * added (a trusted proxy's -Proto and -Host kept, as it saw the client),
 * the body's framing) and the rule for which upstream response fields
 * reach the client. Pure: conf, parsed head and facts in, bytes or
 * verdicts out; proxy.c decides when.
 */
#ifndef ENVELOPD_FWDHEAD_H
#define ENVELOPD_FWDHEAD_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"
#include "headbuf.h"
#include "httpreq.h"

struct fwdhead_req {
    const struct conf *conf;
    const struct conf_route *route;    /* for strip_prefix; may be NULL */
    const struct httpreq *req;
    const char *default_host;          /* Host for an HTTP/1.0 request without one */
    const char *host;                  /* the Host to send instead of the client's; NULL: keep */
    const char *request_id;            /* sent as conf->corr_header */
    const char *peer_ip;               /* this hop's client, appended to X-Forwarded-For */
    bool trusted_peer;                 /* a trusted proxy: its forwarding headers pass */
    bool tls;                          /* the client reached us over TLS */
    bool upgrade;                      /* ask the upstream to switch protocols */
    bool hide_credentials;             /* drop Authorization and [limits] token_header */
    bool open_end;                     /* stop before the blank line: fwdhead_identity ends it */
};

/* The most bytes fwdhead_request can write for IN. */
size_t fwdhead_request_cap(const struct fwdhead_req *in);
/* Write the upstream request head (through the blank line) into H. */
void fwdhead_request(struct headbuf *h, const struct fwdhead_req *in);

struct auth_identity;
/* The most bytes fwdhead_identity can write. */
size_t fwdhead_identity_cap(const struct conf *conf);
/*
 * End a head written with open_end: the verified caller's [auth]
 * subject_header, org_header and scopes_header (those set, for the
 * identity's non-empty values), then the blank line. ID NULL: no caller.
 */
void fwdhead_identity(struct headbuf *h, const struct conf *conf, const struct auth_identity *id);

/* Is the client's request field F dropped (hop-by-hop, the gateway's own,
 * a path rewrite, or an address claim from a peer that is not a trusted
 * proxy)? */
bool fwdhead_skip_request(const struct conf *conf, const struct httphead_field *f,
                          bool trusted_peer);

/*
 * Is the upstream's response field F dropped? STATUS is the response's;
 * ENVELOPED: the body is replaced by an envelope; OWN_LIMIT: the gateway's
 * X-RateLimit-* headers are the ones that hold; EXPOSE_5XX: the route's
 * expose_upstream_5xx; OWN_CORS: the gateway answers CORS for the route,
 * so the upstream's Access-Control-* lines would contradict its own.
 */
bool fwdhead_skip_response(const struct conf *conf, const struct httphead_field *f, int status,
                           bool enveloped, bool own_limit, bool expose_5xx, bool own_cors);

/*
 * May a 101 answering a WebSocket upgrade become a tunnel? Only if it
 * switches to WebSocket, and, when the request carried Sec-WebSocket-Key
 * KEY[0..keylen), with the Sec-WebSocket-Accept RFC 6455 derives from it:
 * a 101 to another protocol (h2c) would carry requests past the route.
 */
bool fwdhead_switch_ok(const char *key, size_t keylen, const struct httphead *resp);

#endif
