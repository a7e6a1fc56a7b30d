/*
 * router: longest-prefix route selection (on the routing form of the
 * normalized path, see urlpath.h; in any letter case unless
 * routes_ignore_case = no) and the per-route method and prefix-stripping
 * rules. Pure; a linear scan is fine for the route counts
 * a conf file holds and keeps the rule obvious.
 */
#include "router.h"

#include <http_parser.h>
#include <string.h>
#include <strings.h>

#include "urlpath.h"

static bool prefix_matches(const struct conf_route *r, const char *path, size_t len,
                           bool ignore_case)
{
    size_t pl = r->prefix_len;
    if (pl > len)
        return false;
    if (ignore_case ? strncasecmp(r->prefix, path, pl) != 0 : memcmp(r->prefix, path, pl) != 0)
        return false;
    if (pl == len || r->prefix[pl - 1] == '/')
        return true;
    return path[pl] == '/';
}

const struct conf_route *router_match(const struct conf *conf, const char *path, size_t len)
{
    const struct conf_route *best = NULL;
    for (size_t i = 0; i < conf->n_routes; i++) {
        const struct conf_route *r = &conf->routes[i];
        if (prefix_matches(r, path, len, conf->routes_ignore_case) && (!best || r->prefix_len > best->prefix_len))
            best = r;
    }
    return best;
}

bool router_method_allowed(const struct conf_route *route, unsigned method)
{
    if (route->methods == 0)
        return true;
    if (method >= 64)
        return false;
    return (route->methods >> method) & 1;
}

size_t router_allow(const struct conf_route *route, char *buf, size_t cap)
{
    size_t o = 0;
    if (cap == 0)
        return 0;
    buf[0] = '\0';
    for (unsigned m = 0; m < 64; m++) {
        if (!((route->methods >> m) & 1))
            continue;
        const char *name = http_method_str((enum http_method)m);
        size_t nl = strlen(name);
        if (o + nl + 3 > cap)
            break;
        if (o) {
            buf[o++] = ',';
            buf[o++] = ' ';
        }
        memcpy(buf + o, name, nl);
        o += nl;
        buf[o] = '\0';
    }
    return o;
}

size_t router_upstream_target(const struct conf_route *route, const char *target, size_t len,
                              char *buf, size_t cap)
{
    const char *t = target;
    size_t tl = len;
    if (route && route->strip_prefix) {
        /* The prefix was matched on the routing form (any case, ";params"
         * dropped, slashes merged): strip as many segments as it has, so the
         * target's own spelling of them goes with it. A prefix ending in '/'
         * keeps that slash for the upstream. */
        const char *q = memchr(target, '?', len);
        size_t path_len = q ? (size_t)(q - target) : len;
        size_t off = urlpath_skip_segments(
            target, path_len, urlpath_count_segments(route->prefix, route->prefix_len));
        t = target + off;
        tl = len - off;
    }
    size_t o = 0;
    if (tl == 0 || t[0] != '/') {
        if (cap < 1)
            return 0;
        buf[o++] = '/';
    }
    if (o + tl > cap)
        tl = cap - o;
    memcpy(buf + o, t, tl);
    return o + tl;
}
