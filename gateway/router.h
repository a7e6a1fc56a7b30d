/*
 * router: which route serves a request, by host, path and one header, and
 * the route's method and prefix-stripping rules.
 *
 * Precedence (router_find):
 *  1. Host group. The candidates are the routes whose hosts name the
 *     request's host exactly; else those whose wildcard covers it
 *     ("*.example.com" covers a.example.com and a.b.example.com, never
 *     example.com; among wildcards the longest suffix is the most
 *     specific); else the routes without hosts. A group that holds no
 *     route for the path does not answer: the next group does (the exact
 *     host, then each wildcard from the longest, then the host-less
 *     routes). Unlike nginx, which sends such a request to the default
 *     server, a host group that does not cover a path lets the host-less
 *     routes answer it; a host that must not reach them needs its own
 *     "/" route.
 *  2. Prefix. Within that group the longest prefix wins, matched on
 *     path-segment boundaries (/api/v1/tasks matches /api/v1/tasks and
 *     /api/v1/tasks/7, not /api/v1/tasksX; /api/ matches /api/x, not /api),
 *     in any letter case when routes_ignore_case is on.
 *  3. Header. Of the routes with the same group and prefix, one whose
 *     match_header matches wins over one without match_header. A route
 *     whose match_header does not match is skipped as if absent (a shorter
 *     prefix, or the next group, answers). A header sent more than once
 *     never matches: which copy the upstream reads is not ours to guess.
 *  Remaining ties go to the route written first.
 */
#ifndef ENVELOPD_ROUTER_H
#define ENVELOPD_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"
#include "httphead.h"

/*
 * An index over one conf's routes: built once per conf generation, then
 * read-only and shared by every thread. It points into the conf, which must
 * outlive it.
 */
struct router;

/* Build the index of CONF's routes; NULL when out of memory. */
struct router *router_new(const struct conf *conf) __attribute__((warn_unused_result));
void router_free(struct router *rt);
/* The distinct header names routes select on (match_header); *NAMES points
 * into the router, valid while it is. */
size_t router_header_names(const struct router *rt, const char *const **names);
/* The header R's answers vary on (routes at its host and prefix told apart
 * by match_header), or NULL. */
const char *router_vary(const struct router *rt, const struct conf_route *r);

/*
 * The normalized host of a Host header value or an absolute-form authority
 * ("Example.COM.:8443" -> "example.com", "[::1]:80" -> "[::1]"): lower
 * case, port dropped, one trailing dot dropped, an IPv6 literal kept in its
 * brackets. Names are letters, digits, '-', '_' and dots between non-empty
 * labels; IDNs arrive as punycode and pass as they are. Writes the host and
 * a NUL into OUT (CAP bytes; CONF_HOST_MAX holds any host a route can name)
 * and returns its length; 0 when VALUE is empty, invalid or does not fit:
 * then the request has no host.
 */
size_t router_host(const char *value, size_t len, char *out, size_t cap);

/*
 * The route for HOST (router_host's form; HOST_LEN 0: none) and PATH (the
 * routing form, urlpath.h), with HEAD (may be NULL) for match_header; NULL
 * when none. *HOST_KNOWN (when HOST_KNOWN is not NULL) says whether any
 * route names this host, exactly or by a wildcard, whatever the path.
 */
const struct conf_route *router_find(const struct router *rt, const char *host, size_t host_len,
                                     const char *path, size_t len, const struct httphead *head,
                                     bool *host_known);

/*
 * The same choice by a linear scan without an index, for callers without a
 * host and head: only the routes without hosts and without match_header
 * take part (what router_find answers with no host and no head).
 */
const struct conf_route *router_match(const struct conf *conf, const char *path, size_t len);
bool router_method_allowed(const struct conf_route *route, unsigned method);
/* The Allow header value for ROUTE ("GET, HEAD, POST"); returns its length. */
size_t router_allow(const struct conf_route *route, char *buf, size_t cap);
/* The path sent upstream once strip_prefix applied: writes into buf, returns length. */
size_t router_upstream_target(const struct conf_route *route, const char *target, size_t len,
                              char *buf, size_t cap);

#endif
