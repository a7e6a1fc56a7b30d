/*
 * policy: what applies to one request once its route is known: the route's
 * overrides ([route] profile, expose_upstream_5xx, max_error_body,
 * max_body_size, client_timeout, timeout, connect_timeout, code_map, cors_*)
 * over the globals ([envelope], [server], the route's [upstream], [cors]).
 * Resolved once per request so that every writer of an answer (the proxy,
 * the client's own errors) reads the same values from one place. Pure.
 * Before routing (a malformed head, a head too large) there is no route:
 * the globals apply.
 */
#ifndef ENVELOPD_POLICY_H
#define ENVELOPD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "envelope.h"

struct policy {
    enum envelope_profile profile;
    bool expose_upstream_5xx;
    size_t max_error_body;
    size_t max_body_size;
    uint64_t client_timeout_ms;      /* the body's and the send deadline (the head's is global) */
    uint64_t timeout_ms;             /* the upstream's response deadline; 0 before routing */
    uint64_t connect_timeout_ms;
    const struct conf_code *codes;   /* the route's code_map */
    size_t n_codes;
    const struct conf_cors *cors;    /* NULL: no CORS for this request */
};

/* The policy for ROUTE (NULL: not routed) under CONF. */
void policy_for(const struct conf *conf, const struct conf_route *route, struct policy *out);

/* The envelope code for STATUS: the route's code_map entry, else the built-in one. */
const char *policy_code(const struct policy *p, int status);

#endif
