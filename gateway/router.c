/*
 * router: route selection by host, path prefix and match_header (the
 * precedence is router.h's), and the per-route method and prefix-stripping
 * rules. Pure: the index is built from a conf and read, never written, by
 * the request path.
 *
 * The index (router_new) is two open-addressing hash tables of at most 50%
 * load: hosts (an exact name, or a wildcard's suffix) -> host group, and
 * (host group, prefix) -> the routes with that key, match_header ones
 * first. A lookup (router_find) hashes the host once from its end, probing
 * the exact name and each suffix after a dot (O(labels) probes); hashes the
 * path once, up to the longest prefix any route has, keeping the hash at
 * each length a prefix could match at (a segment boundary); then, for each
 * group of the host, most specific first, probes those lengths from the
 * longest, skipping lengths no route of the group has (a bitmap per group).
 * So a lookup costs O(|host| + |path| + (labels + 2) x segments) expected
 * time, independent of the number of routes and hosts; the linear
 * router_match is kept for callers without an index.
 */
#include "router.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>

#include <http_parser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "urlpath.h"

/* Prefix lengths are below CONF_PREFIX_MAX: one bit each. */
#define LEN_WORDS ((CONF_PREFIX_MAX + 63) / 64)
/* Host names are shorter than CONF_HOST_MAX: one bit each. */
#define HOST_WORDS ((CONF_HOST_MAX + 63) / 64)
/* A name of CONF_HOST_MAX - 1 bytes has at most this many suffixes after a dot. */
#define MAX_HOST_GROUPS (CONF_HOST_MAX / 2 + 2)

struct rt_group {
    uint64_t lens[LEN_WORDS]; /* bit L: a route of the group has a prefix of L bytes */
};

struct rt_host { /* a slot of the host table */
    uint64_t hash;
    const char *name; /* the exact name, or the wildcard's suffix (after "*.") */
    uint32_t len;
    uint32_t group; /* its group + 1; 0: empty slot */
    bool wildcard;
};

struct rt_key { /* a slot of the (group, prefix) table */
    uint64_t hash;
    const char *prefix;
    uint32_t group; /* + 1; 0: empty slot */
    uint32_t prefix_len;
    uint32_t first; /* its routes: cands[first .. first + n) */
    uint32_t n;
};

struct rt_cand {
    const struct conf_route *route;
    size_t value_len; /* of match_value */
    bool has_header;
};

struct router {
    bool ignore_case;
    struct rt_host *hosts; /* NULL when no route names a host */
    size_t host_mask;
    size_t max_host; /* the longest name in the host table */
    uint64_t exact_lens[HOST_WORDS]; /* bit L: an exact name of L bytes is in the table */
    uint64_t wild_lens[HOST_WORDS]; /* bit L: a wildcard suffix of L bytes is */
    struct rt_key *keys;
    size_t key_mask;
    struct rt_group *groups; /* [0]: the routes without hosts */
    size_t n_groups;
    struct rt_cand *cands;
    uint64_t all_lens[LEN_WORDS]; /* the union of the groups' */
    size_t max_prefix;
    const char **header_names; /* the distinct match_header names (in the conf) */
    size_t n_header_names;
    const struct conf_route *routes; /* the conf's, for route indexes */
    const char **vary;               /* [n_routes]: the header a route's answer varies on */
    size_t n_routes;
};

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static inline unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static inline uint64_t fnv_step(uint64_t h, unsigned char c)
{
    return (h ^ c) * FNV_PRIME;
}

/* Spread an FNV state salted with SALT (group or kind) over the table bits. */
static inline uint64_t mix(uint64_t h, uint64_t salt)
{
    h ^= salt * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb3fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static inline bool bit_set(const uint64_t *bits, size_t i)
{
    return (bits[i / 64] >> (i % 64)) & 1;
}

/* Host names hash from their last byte, so that a lookup gets every suffix
 * of the request's host in one pass. */
static uint64_t host_hash(const char *name, size_t len, bool wildcard)
{
    uint64_t h = FNV_OFFSET;
    for (size_t i = len; i > 0; i--)
        h = fnv_step(h, (unsigned char)name[i - 1]);
    return mix(h, wildcard ? 2 : 1);
}

static uint64_t prefix_hash(const char *prefix, size_t len, bool ignore_case, uint32_t group)
{
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < len; i++)
        h = fnv_step(h, ignore_case ? lower((unsigned char)prefix[i]) : (unsigned char)prefix[i]);
    return mix(h, group + 1);
}

static size_t table_size(size_t entries)
{
    size_t n = 2;
    while (n < 2 * entries)
        n *= 2;
    return n;
}

static const struct rt_host *host_find(const struct router *rt, uint64_t hash, const char *name,
                                       size_t len, bool wildcard)
{
    for (size_t i = hash & rt->host_mask;; i = (i + 1) & rt->host_mask) {
        const struct rt_host *s = &rt->hosts[i];
        if (s->group == 0)
            return NULL;
        if (s->hash == hash && s->len == len && s->wildcard == wildcard &&
            memcmp(s->name, name, len) == 0)
            return s;
    }
}

/* The group of host NAME (exact or wildcard suffix), made when new. */
static uint32_t host_group(struct router *rt, const char *name, size_t len, bool wildcard)
{
    uint64_t hash = host_hash(name, len, wildcard);
    const struct rt_host *found = host_find(rt, hash, name, len, wildcard);
    if (found)
        return found->group - 1;
    size_t i = hash & rt->host_mask;
    while (rt->hosts[i].group != 0)
        i = (i + 1) & rt->host_mask;
    uint32_t g = (uint32_t)rt->n_groups++;
    rt->hosts[i] = (struct rt_host){
        .hash = hash, .name = name, .len = (uint32_t)len, .group = g + 1, .wildcard = wildcard};
    if (len > rt->max_host)
        rt->max_host = len;
    uint64_t *lens = wildcard ? rt->wild_lens : rt->exact_lens;
    lens[len / 64] |= 1ULL << (len % 64);
    return g;
}

static bool prefix_eq(const struct router *rt, const char *a, const char *b, size_t len)
{
    return rt->ignore_case ? strncasecmp(a, b, len) == 0 : memcmp(a, b, len) == 0;
}

static const struct rt_key *key_find(const struct router *rt, uint64_t hash, uint32_t group,
                                     const char *prefix, size_t len)
{
    for (size_t i = hash & rt->key_mask;; i = (i + 1) & rt->key_mask) {
        const struct rt_key *s = &rt->keys[i];
        if (s->group == 0)
            return NULL;
        if (s->hash == hash && s->group == group + 1 && s->prefix_len == len &&
            prefix_eq(rt, s->prefix, prefix, len))
            return s;
    }
}

/* The slot of key (GROUP, PREFIX), made when new. */
static size_t key_slot(struct router *rt, uint32_t group, const char *prefix, size_t len)
{
    uint64_t hash = prefix_hash(prefix, len, rt->ignore_case, group);
    const struct rt_key *found = key_find(rt, hash, group, prefix, len);
    if (found)
        return (size_t)(found - rt->keys);
    size_t i = hash & rt->key_mask;
    while (rt->keys[i].group != 0)
        i = (i + 1) & rt->key_mask;
    rt->keys[i] = (struct rt_key){
        .hash = hash, .prefix = prefix, .group = group + 1, .prefix_len = (uint32_t)len};
    return i;
}

/* One route under one key, before they are grouped. */
struct rt_entry {
    size_t slot;
    size_t route;
    bool has_header;
};

/* Key order; within a key, match_header routes first, then the order written. */
static int entry_cmp(const void *a, const void *b)
{
    const struct rt_entry *x = a, *y = b;
    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    if (x->has_header != y->has_header)
        return x->has_header ? -1 : 1;
    return x->route < y->route ? -1 : x->route > y->route;
}

static bool route_indexed(const struct conf_route *r)
{
    return r->prefix_len > 0 && r->prefix_len < CONF_PREFIX_MAX;
}

static size_t route_hosts(const struct conf_route *r)
{
    return r->n_hosts < CONF_MAX_ROUTE_HOSTS ? r->n_hosts : CONF_MAX_ROUTE_HOSTS;
}

static void add_entry(struct router *rt, struct rt_entry *entries, size_t *n, uint32_t group,
                      const struct conf_route *r, size_t index)
{
    size_t pl = r->prefix_len;
    entries[(*n)++] = (struct rt_entry){.slot = key_slot(rt, group, r->prefix, pl),
                                        .route = index,
                                        .has_header = r->match_header[0] != '\0'};
    rt->groups[group].lens[pl / 64] |= 1ULL << (pl % 64);
    rt->all_lens[pl / 64] |= 1ULL << (pl % 64);
    if (pl > rt->max_prefix)
        rt->max_prefix = pl;
}

/*
 * Routes at one (host group, prefix) told apart by match_header: the same
 * URL answers differently by that header, so each answer says Vary on it
 * (a shared cache would serve one route's answer to the other's clients).
 */
static int collect_vary(struct router *rt, const struct conf *conf)
{
    rt->routes = conf->routes;
    rt->n_routes = conf->n_routes;
    if (!conf->n_routes)
        return 0;
    rt->vary = calloc(conf->n_routes, sizeof *rt->vary);
    if (!rt->vary)
        return -1;
    for (size_t s = 0; rt->keys && s <= rt->key_mask; s++) {
        const struct rt_key *k = &rt->keys[s];
        const char *name = NULL;
        for (uint32_t i = 0; k->group && i < k->n && !name; i++)
            if (rt->cands[k->first + i].has_header)
                name = rt->cands[k->first + i].route->match_header;
        for (uint32_t i = 0; name && i < k->n; i++)
            rt->vary[rt->cands[k->first + i].route - conf->routes] = name;
    }
    return 0;
}

/* The names routes select on, once each: the caller module refuses a head
 * that hides one (Connection, an underscore spelling). O(routes x names). */
static int collect_header_names(struct router *rt, const struct conf *conf)
{
    for (size_t i = 0; i < conf->n_routes; i++) {
        const char *n = conf->routes[i].match_header;
        if (!n[0])
            continue;
        size_t k = 0;
        while (k < rt->n_header_names && strcasecmp(rt->header_names[k], n) != 0)
            k++;
        if (k < rt->n_header_names)
            continue;
        const char **grown = realloc(rt->header_names, (k + 1) * sizeof *grown);
        if (!grown)
            return -1;
        rt->header_names = grown;
        rt->header_names[rt->n_header_names++] = n;
    }
    return 0;
}

struct router *router_new(const struct conf *conf)
{
    struct router *rt = calloc(1, sizeof *rt);
    if (!rt)
        return NULL;
    rt->ignore_case = conf->routes_ignore_case;
    size_t n_names = 0, n_entries = 0;
    for (size_t i = 0; i < conf->n_routes; i++) {
        const struct conf_route *r = &conf->routes[i];
        if (!route_indexed(r))
            continue;
        n_names += route_hosts(r);
        n_entries += route_hosts(r) ? route_hosts(r) : 1;
    }
    struct rt_entry *entries = calloc(n_entries ? n_entries : 1, sizeof *entries);
    rt->groups = calloc(n_names + 1, sizeof *rt->groups);
    rt->cands = calloc(n_entries ? n_entries : 1, sizeof *rt->cands);
    rt->key_mask = table_size(n_entries) - 1;
    rt->keys = calloc(rt->key_mask + 1, sizeof *rt->keys);
    if (n_names) {
        rt->host_mask = table_size(n_names) - 1;
        rt->hosts = calloc(rt->host_mask + 1, sizeof *rt->hosts);
    }
    if (!entries || !rt->groups || !rt->cands || !rt->keys || (n_names && !rt->hosts)) {
        free(entries);
        router_free(rt);
        return NULL;
    }
    rt->n_groups = 1;

    size_t n = 0;
    for (size_t i = 0; i < conf->n_routes; i++) {
        const struct conf_route *r = &conf->routes[i];
        if (!route_indexed(r))
            continue;
        if (route_hosts(r) == 0)
            add_entry(rt, entries, &n, 0, r, i);
        for (size_t h = 0; h < route_hosts(r); h++) {
            const char *name = r->hosts[h];
            size_t len = strnlen(name, CONF_HOST_MAX);
            bool wildcard = len > 2 && name[0] == '*' && name[1] == '.';
            if (wildcard) {
                name += 2;
                len -= 2;
            }
            if (len == 0 || len >= CONF_HOST_MAX)
                continue; /* not a name: conf_load does not let one through */
            add_entry(rt, entries, &n, host_group(rt, name, len, wildcard), r, i);
        }
    }

    qsort(entries, n, sizeof *entries, entry_cmp);
    size_t nc = 0;
    for (size_t e = 0; e < n; e++) {
        /* a route naming one host twice is under its key once */
        if (e > 0 && entries[e].slot == entries[e - 1].slot &&
            entries[e].route == entries[e - 1].route)
            continue;
        struct rt_key *k = &rt->keys[entries[e].slot];
        if (k->n == 0)
            k->first = (uint32_t)nc;
        k->n++;
        const struct conf_route *r = &conf->routes[entries[e].route];
        rt->cands[nc++] = (struct rt_cand){
            .route = r,
            .value_len = strnlen(r->match_value, sizeof r->match_value),
            .has_header = entries[e].has_header};
    }
    free(entries);
    if (collect_vary(rt, conf) != 0 || collect_header_names(rt, conf) != 0) {
        router_free(rt);
        return NULL;
    }
    return rt;
}

void router_free(struct router *rt)
{
    if (!rt)
        return;
    free(rt->hosts);
    free(rt->keys);
    free(rt->groups);
    free(rt->cands);
    free(rt->header_names);
    free(rt->vary);
    free(rt);
}

const char *router_vary(const struct router *rt, const struct conf_route *r)
{
    if (!rt->vary || r < rt->routes || r >= rt->routes + rt->n_routes)
        return NULL;
    return rt->vary[r - rt->routes];
}

size_t router_header_names(const struct router *rt, const char *const **names)
{
    *names = rt->header_names;
    return rt->n_header_names;
}

static bool is_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static bool is_v6_char(unsigned char c)
{
    return (c >= 'a' && c <= 'f') || (c >= '0' && c <= '9') || c == ':' || c == '.';
}

/* Is V[0..LEN) nothing or ":" and at most 5 digits (RFC 3986 allows an empty port)? */
static bool port_ok(const char *v, size_t len)
{
    if (len == 0)
        return true;
    if (v[0] != ':' || len > 6)
        return false;
    unsigned long port = 0;
    for (size_t i = 1; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        port = port * 10 + (unsigned long)(v[i] - '0');
    }
    /* ":" alone is no port; a number must be one an upstream reads alike */
    return len == 1 || (port <= 65535 && !(len > 2 && v[1] == '0'));
}

size_t router_host(const char *value, size_t len, char *out, size_t cap)
{
    if (len == 0 || cap == 0)
        return 0;
    size_t end, o = 0;
    if (value[0] == '[') {
        const char *close = memchr(value, ']', len);
        if (!close || close == value + 1)
            return 0;
        end = (size_t)(close - value) + 1;
        if (end + 1 > cap || !memchr(value, ':', end))
            return 0; /* an IPv6 literal has a ':' */
        for (size_t i = 1; i + 1 < end; i++)
            if (!is_v6_char(lower((unsigned char)value[i])))
                return 0;
        /* One spelling per address, as conf writes it ("[0::1]" is "[::1]"):
         * else a literal spelt otherwise would miss its route. */
        char lit[INET6_ADDRSTRLEN + 1], canon[INET6_ADDRSTRLEN];
        struct in6_addr a6;
        if (end - 2 >= sizeof lit)
            return 0;
        memcpy(lit, value + 1, end - 2);
        lit[end - 2] = '\0';
        if (inet_pton(AF_INET6, lit, &a6) != 1 || !inet_ntop(AF_INET6, &a6, canon, sizeof canon))
            return 0;
        o = (size_t)snprintf(out, cap, "[%s]", canon);
        if (o + 1 > cap)
            return 0;
    } else {
        const char *colon = memchr(value, ':', len);
        end = colon ? (size_t)(colon - value) : len;
        size_t name_len = end;
        if (name_len > 0 && value[name_len - 1] == '.')
            name_len--; /* "example.com." is example.com */
        if (name_len == 0 || name_len + 1 > cap)
            return 0;
        for (size_t i = 0; i < name_len; i++) {
            unsigned char c = lower((unsigned char)value[i]);
            if (c == '.') {
                if (i == 0 || value[i - 1] == '.' || i + 1 == name_len)
                    return 0; /* an empty label */
            } else if (!is_name_char(c)) {
                return 0;
            }
            out[o++] = (char)c;
        }
    }
    if (!port_ok(value + end, len - end))
        return 0;
    out[o] = '\0';
    return o;
}

static bool header_matches(const struct rt_cand *c, const struct httphead *head)
{
    if (!head)
        return false;
    size_t count = 0;
    const struct httphead_field *f = httphead_get(head, c->route->match_header, &count);
    return f && count == 1 && f->value_len == c->value_len &&
           memcmp(f->value, c->route->match_value, c->value_len) == 0;
}

/*
 * The groups of HOST into GROUPS, most specific first: its exact name,
 * then each wildcard suffix from the longest. Returns how many.
 */
static size_t host_groups(const struct router *rt, const char *host, size_t len, uint32_t *groups)
{
    uint32_t wild[MAX_HOST_GROUPS];
    size_t nw = 0;
    uint64_t h = FNV_OFFSET;
    for (size_t i = len; i > 0; i--) {
        size_t at = i - 1;
        /* h is the hash of host[i..len): a wildcard's suffix when host[at] is
         * the dot after a non-empty label */
        if (host[at] == '.' && at > 0 && i < len && host[at - 1] != '.' &&
            bit_set(rt->wild_lens, len - i)) {
            const struct rt_host *s = host_find(rt, mix(h, 2), host + i, len - i, true);
            if (s && nw < MAX_HOST_GROUPS)
                wild[nw++] = s->group - 1;
        }
        if (len - at > rt->max_host)
            break; /* no name in the table is this long */
        h = fnv_step(h, (unsigned char)host[at]);
    }
    size_t n = 0;
    if (len <= rt->max_host && bit_set(rt->exact_lens, len)) {
        const struct rt_host *s = host_find(rt, mix(h, 1), host, len, false);
        if (s)
            groups[n++] = s->group - 1;
    }
    while (nw > 0)
        groups[n++] = wild[--nw];
    return n;
}

const struct conf_route *router_find(const struct router *rt, const char *host, size_t host_len,
                                     const char *path, size_t len, const struct httphead *head,
                                     bool *host_known)
{
    uint32_t groups[MAX_HOST_GROUPS + 2];
    size_t ng = 0;
    if (host_len > 0 && rt->hosts)
        ng = host_groups(rt, host, host_len, groups);
    if (host_known)
        *host_known = ng > 0;
    groups[ng++] = 0;

    /* The lengths at which some route's prefix could match PATH, with the
     * path's hash at each: the whole path, or a prefix ending at a '/' or
     * just before one. Bytes past the longest prefix are never read. */
    uint16_t lens[CONF_PREFIX_MAX];
    uint64_t hashes[CONF_PREFIX_MAX];
    size_t nl = 0;
    size_t lim = len < rt->max_prefix ? len : rt->max_prefix;
    uint64_t h = FNV_OFFSET;
    for (size_t i = 1; i <= lim; i++) {
        unsigned char c = (unsigned char)path[i - 1];
        h = fnv_step(h, rt->ignore_case ? lower(c) : c);
        if (bit_set(rt->all_lens, i) && (i == len || c == '/' || path[i] == '/')) {
            lens[nl] = (uint16_t)i;
            hashes[nl++] = h;
        }
    }

    for (size_t g = 0; g < ng; g++) {
        const struct rt_group *grp = &rt->groups[groups[g]];
        for (size_t k = nl; k > 0; k--) {
            if (!bit_set(grp->lens, lens[k - 1]))
                continue;
            const struct rt_key *key = key_find(rt, mix(hashes[k - 1], groups[g] + 1), groups[g],
                                                path, lens[k - 1]);
            if (!key)
                continue;
            for (uint32_t j = 0; j < key->n; j++) {
                const struct rt_cand *c = &rt->cands[key->first + j];
                if (!c->has_header || header_matches(c, head))
                    return c->route;
            }
        }
    }
    return NULL;
}

static bool prefix_matches(const struct conf_route *r, const char *path, size_t len,
                           bool ignore_case)
{
    size_t pl = r->prefix_len;
    if (pl == 0 || pl > len)
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
        if (r->n_hosts > 0 || r->match_header[0] != '\0')
            continue;
        if (prefix_matches(r, path, len, conf->routes_ignore_case) &&
            (!best || r->prefix_len > best->prefix_len))
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
