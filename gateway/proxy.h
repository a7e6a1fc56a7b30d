/*
 * proxy: one request's exchange with an upstream. Decides (route, method,
 * token, rate limit), rewrites the head for the upstream, streams the body,
 * connects through the pool with timeouts and retries, and relays the
 * response: 1xx-3xx streamed as they come, errors captured and normalized
 * into the envelope; a protocol upgrade the upstream accepts (101) becomes
 * a tunnel relaying bytes both ways.
 */
#ifndef ENVELOPD_PROXY_H
#define ENVELOPD_PROXY_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>

#include "httpreq.h"

struct client;
struct proxy;
struct conf_route;

/*
 * Take over the request whose head was just parsed (pointers into the
 * client's buffer are valid during this call only). Either answers at once
 * through client_send_error (returns NULL) or returns the exchange.
 */
/* The route for REQ (host, path, headers) into *ROUTE (NULL: none);
 * answers nothing. False when REQ names a host that is not one (a 400:
 * routing it as "no host" would reach the routes for any host). */
bool proxy_route(struct client *c, const struct httpreq *req, const struct conf_route **route);
/* Answer REQ on ROUTE (NULL: the 404): checks, limit, upstream. */
struct proxy *proxy_start(struct client *c, const struct httpreq *req,
                          const struct conf_route *route);
/* Decoded request body bytes; 0 or -1 (the proxy already answered). */
int proxy_body(struct proxy *px, const char *data, size_t len);
void proxy_body_done(struct proxy *px);
/* The client vanished or timed out: drop the exchange (the client logs). */
void proxy_client_gone(struct proxy *px);
/* Tunnel (after a 101): the client's bytes, moved whole to the upstream;
 * 0, or -1 when out of memory. */
int proxy_tunnel_input(struct proxy *px, struct evbuffer *in);
/* Tunnel: the client closed its sending side. */
void proxy_tunnel_client_eof(struct proxy *px);
/* The client's output drained: upstream reading may resume. */
void proxy_client_drained(struct proxy *px);

#endif
