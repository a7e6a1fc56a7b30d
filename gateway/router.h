/*
 * router: which route serves a request. Longest prefix wins, matched on
 * path-segment boundaries (/api/v1/tasks matches /api/v1/tasks and
 * /api/v1/tasks/7, not /api/v1/tasksX). Also the route's method rules.
 */
#ifndef ENVELOPD_ROUTER_H
#define ENVELOPD_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

const struct conf_route *router_match(const struct conf *conf, const char *path, size_t len);
bool router_method_allowed(const struct conf_route *route, unsigned method);
/* The Allow header value for ROUTE ("GET, HEAD, POST"); returns its length. */
size_t router_allow(const struct conf_route *route, char *buf, size_t cap);
/* The path sent upstream once strip_prefix applied: writes into buf, returns length. */
size_t router_upstream_target(const struct conf_route *route, const char *target, size_t len,
                              char *buf, size_t cap);

#endif
