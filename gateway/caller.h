/*
 * caller: who is calling, as the rate limiter and the route policy see it:
 * the bearer token (one, never two), the client address behind trusted
 * proxies (every X-Forwarded-For line, walked from the right), and the rule
 * that a header the gateway decides on cannot be made hop-by-hop (named in
 * Connection) and so vanish before the upstream reads it, nor be spelt
 * with '_' for an upstream that reads "X_Forwarded_For" as
 * "X-Forwarded-For", and that a method override obeys the route's methods. Pure: the
 * request's header table and the conf in, answers out.
 */
#ifndef ENVELOPD_CALLER_H
#define ENVELOPD_CALLER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "conf.h"
#include "httphead.h"

#define CALLER_IP_MAX 64

/*
 * Refuse a head that would make the gateway and the upstream disagree about
 * the caller: Connection naming Host, the framing headers, the token header,
 * a correlation header or a forwarding header; or more than one token
 * header. Returns NULL, or a static reason for a 400.
 */
const char *caller_check_head(const struct conf *conf, const struct httphead *head,
                              const char *const *route_headers, size_t n_route_headers);

/*
 * The method a method-override header (X-HTTP-Method-Override,
 * X-HTTP-Method, X-Method-Override) asks the upstream to use instead of the
 * request's own: an enum http_method, -1 when there is none, -2 when it
 * names no method http_parser knows or two of them disagree. QUERY (NULL:
 * none) is searched for "_method=" too. Express, Rails, Symfony, Laravel
 * and ASP.NET honour these, so a route's methods rule must hold for this
 * method too.
 */
int caller_method_override(const struct httphead *head, const char *query, size_t query_len);

/* Is F a header a client may set to claim an address, host or port for
 * itself (Forwarded, X-Real-IP, X-Forwarded-Host...)? Only a trusted
 * proxy's reach the upstream. */
bool caller_is_forwarding(const struct httphead_field *f);
/* Is F a header that rewrites the path the upstream routes on
 * (X-Original-URL, X-Rewrite-URL)? Never forwarded. */
bool caller_is_rewrite(const struct httphead_field *f);

/* The token in conf->token_header ("Bearer " stripped for Authorization), or NULL. */
const char *caller_token(const struct conf *conf, const struct httphead *head, size_t *len);
/* What a route with auth checks: caller_token, else (token_header naming
 * another header, X-Api-Key) the Bearer token of Authorization, where a
 * JWT comes. NULL: no credential. */
const char *caller_credential(const struct conf *conf, const struct httphead *head, size_t *len);
/* Both token_header (another header than Authorization) and Authorization
 * given: on a route with auth, one would be checked and the other passed
 * on unchecked for the upstream to believe. */
bool caller_two_credentials(const struct conf *conf, const struct httphead *head);

/*
 * The client address into OUT (CALLER_IP_MAX bytes): PEER_IP itself, or,
 * when PEER is a trusted proxy, the rightmost X-Forwarded-For address (all
 * lines, in order) that is not itself a trusted proxy. Junk in the chain
 * stops the walk at the last address believed.
 */
void caller_client_ip(const struct conf *conf, const struct sockaddr *peer, const char *peer_ip,
                      const struct httphead *head, char *out, size_t cap);

#endif
