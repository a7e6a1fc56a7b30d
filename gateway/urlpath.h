/*
 * urlpath: the one spelling of a request path that routing decides on and
 * the upstream receives. A route is an access-control boundary, so every
 * spelling an upstream framework would read as the same path (percent-
 * encoded letters, doubled slashes, dot segments, ";params", letter case)
 * must reach the same route; what cannot be normalized without guessing
 * how the upstream decodes it (an encoded '/' or '\', NUL and other
 * controls, "..;") is refused. Pure; no I/O, no allocation.
 */
#ifndef ENVELOPD_URLPATH_H
#define ENVELOPD_URLPATH_H

#include <stdbool.h>
#include <stddef.h>

/* What urlpath_normalize does to the path the upstream receives. */
#define URLPATH_MERGE_SLASHES 1u   /* "//" -> "/" (nginx's merge_slashes) */

/*
 * Normalize the origin-form path IN[0..LEN) (starting with '/', no query)
 * into OUT (CAP bytes; LEN bytes always fit, since normalizing never
 * lengthens a path): percent-encoded unreserved characters decoded, other
 * escapes' hex digits upper-cased (RFC 3986 6.2.2), slashes merged when
 * FLAGS says so, dot segments removed (RFC 3986 5.2.4). Returns the new
 * length, or 0 with a static reason in *WHY when the path is refused.
 */
size_t urlpath_normalize(const char *in, size_t len, char *out, size_t cap, unsigned flags,
                         const char **why);

/* Does PATH need urlpath_normalize at all? False for most paths: no copy. */
bool urlpath_is_plain(const char *path, size_t len);

/*
 * The routing form of a normalized PATH into OUT (CAP >= LEN): slashes
 * merged, each segment's ";params" dropped, as Java servlet containers
 * read "/api;x=1/login;jsessionid=2" as "/api/login", and trailing dots
 * and spaces ("%20") of a segment dropped, as IIS and Spring's trimTokens
 * read "/api/login." and "/api/login%20". Returns its length.
 */
size_t urlpath_route_form(const char *path, size_t len, char *out, size_t cap);

/* Does PATH need urlpath_route_form (a ';', "//", a trailing '.' or "%20")? */
bool urlpath_route_differs(const char *path, size_t len);

/*
 * Skip the first SEGMENTS non-empty segments of PATH (with their ";params"),
 * for strip_prefix: the route prefix was matched on the routing form, the
 * upstream gets the same path minus as many segments. Returns the offset of
 * what remains ("" or "/...").
 */
size_t urlpath_skip_segments(const char *path, size_t len, size_t segments);

/* How many non-empty segments PREFIX has ("/api/v1/" -> 2). */
size_t urlpath_count_segments(const char *prefix, size_t len);

#endif
