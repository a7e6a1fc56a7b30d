/*
 * urlpath: request-path normalization for routing and forwarding. Two
 * passes over bounded buffers: escapes are judged and decoded first (so
 * "%2e%2e" becomes a dot segment the second pass sees), then segments are
 * walked once to merge slashes and resolve dot segments. Everything refused
 * here is something at least one common upstream decodes differently from
 * another: guessing would let a path reach the upstream under a route that
 * never saw it.
 */
#include "urlpath.h"

#include <string.h>

#include "httphead.h"

/* RFC 3986 2.3: decoding these never changes what a URI means. */
static bool unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

static bool control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* Bytes that never occur in UTF-8: C0/C1 begin only overlong encodings
 * ("%c0%af" is an overlong '/' that old decoders turned into one), F5-FF
 * are past U+10FFFF. */
static bool never_utf8(unsigned char c)
{
    return c == 0xc0 || c == 0xc1 || c >= 0xf5;
}

bool urlpath_is_plain(const char *path, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c == '%' || c == '\\' || control(c) || never_utf8(c))
            return false;
        if (c == '/' && i + 1 < len && (path[i + 1] == '/' || path[i + 1] == '.'))
            return false;
    }
    return true;
}

/* Pass 1: judge and decode escapes into OUT. Returns the length, or 0. */
static size_t decode(const char *in, size_t len, char *out, const char **why)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '\\') {
            *why = "backslash in the path";
            return 0;
        }
        if (control(c)) {
            *why = "control character in the path";
            return 0;
        }
        if (never_utf8(c)) {
            *why = "invalid UTF-8 in the path";
            return 0;
        }
        if (c != '%') {
            out[o++] = (char)c;
            continue;
        }
        int hi = i + 2 < len ? httphead_hexval((unsigned char)in[i + 1]) : -1;
        int lo = i + 2 < len ? httphead_hexval((unsigned char)in[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            *why = "invalid percent-encoding in the path";
            return 0;
        }
        unsigned char v = (unsigned char)(hi * 16 + lo);
        i += 2;
        if (v == '/' || v == '\\') {
            *why = "encoded slash in the path";
            return 0;
        }
        if (control(v)) {
            *why = "encoded control character in the path";
            return 0;
        }
        if (never_utf8(v)) {
            *why = "invalid UTF-8 in the path";
            return 0;
        }
        if (unreserved(v)) {
            out[o++] = (char)v;
        } else {
            out[o++] = '%';
            out[o++] = digits[v >> 4];
            out[o++] = digits[v & 15];
        }
    }
    return o;
}

/*
 * 1 or 2 for a "." or ".." segment, 0 otherwise. -1 for ".;x" and "..;x":
 * servlet containers drop the parameter and then resolve the dots, others
 * take the segment literally; no route can be right for both.
 */
static int dot_segment(const char *s, size_t n)
{
    size_t dots = 0;
    while (dots < n && s[dots] == '.')
        dots++;
    if (dots == 0 || dots > 2)
        return 0;
    if (dots == n)
        return (int)dots;
    return s[dots] == ';' ? -1 : 0;
}

/*
 * A segment of dots and spaces only ("..%20", ".%20", "%20.."), other than
 * "." and "..": an upstream that trims a segment's trailing dots and spaces
 * (IIS, Spring's trimTokens) before resolving dot segments reads it as "."
 * or "..", and routing would not. Plain dots ("...") have no space to trim
 * into a dot segment and pass.
 */
static bool spaced_dots(const char *s, size_t n)
{
    bool dot = false, space = false;
    for (size_t i = 0; i < n;) {
        if (s[i] == '.') {
            dot = true;
            i++;
        } else if (n - i >= 3 && memcmp(s + i, "%20", 3) == 0) {
            space = true;
            i += 3;
        } else {
            return false;
        }
    }
    return dot && space;
}

size_t urlpath_normalize(const char *in, size_t len, char *out, size_t cap, unsigned flags,
                         const char **why)
{
    if (len == 0 || in[0] != '/' || cap < len) {
        *why = "invalid path";
        return 0;
    }
    /* Decode in place in OUT, then walk its segments back into OUT: the
     * write position never passes the read position. */
    size_t n = decode(in, len, out, why);
    if (n == 0)
        return 0;
    bool merge = (flags & URLPATH_MERGE_SLASHES) != 0;
    /* After an empty segment a ".." removes that empty segment for an
     * upstream that keeps "//", and the segment before it for one that
     * merges: "/api//../login" is /api/login to one, /login to the other. */
    bool after_empty = false;
    size_t o = 0, i = 0;
    while (i < n) {
        /* out[i] == '/': one segment follows, up to the next '/' */
        size_t start = i + 1, end = start;
        while (end < n && out[end] != '/')
            end++;
        bool last = end >= n;
        int dots = dot_segment(out + start, end - start);
        if (dots < 0) {
            *why = "dot segment with parameters in the path";
            return 0;
        }
        if (dots == 0 && spaced_dots(out + start, end - start)) {
            *why = "dot segment with spaces in the path";
            return 0;
        }
        if (dots == 2 && after_empty) {
            *why = "dot segment after an empty segment in the path";
            return 0;
        }
        if (end > start && dots != 1)
            after_empty = false;
        else if (end == start && !last)
            after_empty = true;
        if (dots == 1) {
            if (last)
                out[o++] = '/';
        } else if (dots == 2) {
            if (o == 0) {
                *why = "the path climbs above the root";
                return 0;
            }
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--;  /* drop the slash too; it comes back with the next segment */
            if (last)
                out[o++] = '/';
        } else if (end == start && merge && !last) {
            /* an empty segment: "//" */
        } else {
            memmove(out + o, out + i, end - i);
            o += end - i;
        }
        i = end;
    }
    if (o == 0)
        out[o++] = '/';
    return o;
}

/* Does the segment ending at PATH[end] (exclusive) end in '.' or "%20"? */
static bool trailing_trim(const char *path, size_t start, size_t end, size_t *cut)
{
    size_t e = end;
    for (;;) {
        if (e > start && path[e - 1] == '.')
            e--;
        else if (e >= start + 3 && memcmp(path + e - 3, "%20", 3) == 0)
            e -= 3;
        else
            break;
    }
    if (e == end || e == start)
        return false;  /* nothing to trim, or nothing would be left ("...") */
    *cut = end - e;
    return true;
}

bool urlpath_route_differs(const char *path, size_t len)
{
    size_t seg = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? path[i] : '/';
        size_t cut;
        if (c == ';' || (c == '/' && i + 1 < len && path[i + 1] == '/'))
            return true;
        if (c == '/') {
            if (i > seg && trailing_trim(path, seg, i, &cut))
                return true;
            seg = i + 1;
        }
    }
    return false;
}

size_t urlpath_route_form(const char *path, size_t len, char *out, size_t cap)
{
    size_t o = 0, seg = 0;
    bool in_param = false;
    for (size_t i = 0; i <= len && o < cap; i++) {
        char c = i < len ? path[i] : '/';
        if (c == '/' || (c == ';' && !in_param)) {
            /* A segment's name ends: IIS and Spring's trimTokens serve
             * "login." and "login%20" as "login", so route them as that. */
            size_t cut;
            if (!in_param && o > seg && trailing_trim(out, seg, o, &cut))
                o -= cut;
        }
        if (i == len)
            break;
        if (c == '/') {
            in_param = false;
            if (o > 0 && out[o - 1] == '/')
                continue;
            out[o++] = c;
            seg = o;
            continue;
        }
        if (c == ';')
            in_param = true;
        if (!in_param)
            out[o++] = c;
    }
    return o;
}

/* The end of the segment starting after PATH[i] == '/', and whether it has a name. */
static size_t segment_end(const char *path, size_t len, size_t i, bool *named)
{
    size_t e = i + 1;
    while (e < len && path[e] != '/')
        e++;
    *named = e > i + 1 && path[i + 1] != ';';
    return e;
}

size_t urlpath_count_segments(const char *prefix, size_t len)
{
    size_t count = 0;
    for (size_t i = 0; i < len;) {
        if (prefix[i] != '/') {
            i++;
            continue;
        }
        bool named;
        size_t e = segment_end(prefix, len, i, &named);
        count += named;
        i = e;
    }
    return count;
}

size_t urlpath_skip_segments(const char *path, size_t len, size_t segments)
{
    size_t i = 0;
    while (segments > 0 && i < len) {
        if (path[i] != '/') {
            i++;
            continue;
        }
        bool named;
        size_t e = segment_end(path, len, i, &named);
        segments -= named;
        i = e;
    }
    return i;
}
