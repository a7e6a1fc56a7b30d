/*
 * httpreq: one request head, parsed in a single http_parser_execute pass
 * over a contiguous buffer, then judged by the rules the parser leaves to
 * us. Every rejection names a reason for the log and the envelope message.
 */
#include "httpreq.h"
#include "urlpath.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct httpreq *r = p->data;
    if (r->url == NULL) {
        r->url = at;
        r->method = (enum http_method)p->method;  /* known once the URL starts */
    }
    r->url_len += len;
    return 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
    struct httpreq *r = p->data;
    return httphead_on_field(&r->head, at, len);
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    struct httpreq *r = p->data;
    return httphead_on_value(&r->head, at, len);
}

static int on_headers_complete(http_parser *p)
{
    struct httpreq *r = p->data;
    r->major = p->http_major;
    r->minor = p->http_minor;
    r->method = (enum http_method)p->method;
    r->keepalive = http_should_keep_alive(p) != 0;
    r->chunked = (p->flags & F_CHUNKED) != 0;
    r->has_length = (p->flags & F_CONTENTLENGTH) != 0;
    r->content_length = r->has_length ? p->content_length : 0;
    /* Stop here: the transfer coding is judged before the parser does. */
    http_parser_pause(p, 1);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct httpreq *r = p->data;
    r->complete = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings head_settings = {
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

long httpreq_head_end(const char *data, size_t len, size_t max_header, size_t *pos,
                      unsigned *state)
{
    size_t scan_len = len > max_header ? max_header : len;
    size_t end = httphead_scan(data, scan_len, pos, state);
    if (end)
        return (long)end;
    /* Not found within what may be buffered: which limit was hit? */
    size_t limit_line = HTTPREQ_MAX_LINE < max_header ? HTTPREQ_MAX_LINE : max_header;
    if (len >= limit_line && memchr(data, '\n', limit_line) == NULL)
        return -414;
    if (len >= max_header)
        return -431;
    return 0;
}

static int normalize_target(struct httpreq *r, const char **why);

static unsigned default_port(const char *scheme, size_t len)
{
    if (len == 4 && strncasecmp(scheme, "http", 4) == 0)
        return 80;
    if (len == 5 && strncasecmp(scheme, "https", 5) == 0)
        return 443;
    return 0;
}

/*
 * Does Host name the origin of the absolute-form target? RFC 9112 3.2.2 makes
 * the target win; a Host that disagrees is what request routing and cache
 * poisoning tricks rely on, so such a request is refused, as HAProxy does.
 */
static bool host_matches_target(const struct httpreq *r, const char *h, size_t len)
{
    const char *name = h;
    size_t name_len = len;
    const char *port = NULL;
    size_t port_len = 0;
    if (len > 0 && h[0] == '[') {
        const char *close = memchr(h, ']', len);
        if (!close)
            return false;
        name = h + 1;
        name_len = (size_t)(close - h) - 1;
        size_t rest = len - (size_t)(close - h) - 1;
        if (rest > 0) {
            if (close[1] != ':')
                return false;
            port = close + 2;
            port_len = rest - 1;
        }
    } else {
        const char *colon = memchr(h, ':', len);
        if (colon) {
            name_len = (size_t)(colon - h);
            port = colon + 1;
            port_len = len - name_len - 1;
        }
    }
    if (name_len != r->abs_host_len || strncasecmp(name, r->abs_host, name_len) != 0)
        return false;
    unsigned p = r->abs_default_port;
    if (port_len > 0) {  /* "host:" is the default port (RFC 3986 3.2.3) */
        if (port_len > 5)
            return false;
        p = 0;
        for (size_t i = 0; i < port_len; i++) {
            if (port[i] < '0' || port[i] > '9')
                return false;
            p = p * 10 + (unsigned)(port[i] - '0');
        }
    }
    return p == r->abs_port;
}

static int check_target(struct httpreq *r, const char **why)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (r->url_len == 0 || r->url_len > HTTPREQ_MAX_LINE) {
        *why = "invalid request target";
        return r->url_len ? 414 : 400;
    }
    if (r->url[0] == '*') {
        if (r->method != HTTP_OPTIONS || r->url_len != 1) {
            *why = "invalid request target";
            return 400;
        }
        r->path = r->target = r->raw_path = r->route_path = r->url;
        r->path_len = r->target_len = r->raw_path_len = r->route_path_len = 1;
        return 0;
    }
    if (http_parser_parse_url(r->url, r->url_len, 0, &u) != 0) {
        *why = "invalid request target";
        return 400;
    }
    if (r->url[0] == '/') {
        r->target = r->url;
        r->target_len = r->url_len;
    } else {
        /* absolute-form: forward its path and query, as nginx does */
        if (!(u.field_set & (1 << UF_SCHEMA)) || !(u.field_set & (1 << UF_HOST))) {
            *why = "invalid request target";
            return 400;
        }
        r->abs_host = r->url + u.field_data[UF_HOST].off;
        r->abs_host_len = u.field_data[UF_HOST].len;
        r->abs_default_port = default_port(r->url + u.field_data[UF_SCHEMA].off,
                                           u.field_data[UF_SCHEMA].len);
        r->abs_port = r->abs_default_port;
        if (u.field_set & (1 << UF_PORT))
            r->abs_port = u.port;
        if (u.field_set & (1 << UF_PATH)) {
            r->target = r->url + u.field_data[UF_PATH].off;
            r->target_len = r->url_len - u.field_data[UF_PATH].off;
        } else if (u.field_set & (1 << UF_QUERY)) {
            /* "http://host?q=1": the path is "/", the query stays */
            size_t qoff = u.field_data[UF_QUERY].off - 1;  /* include the '?' */
            size_t ql = r->url_len - qoff;
            if (ql + 1 > HTTPREQ_MAX_LINE) {
                *why = "invalid request target";
                return 414;
            }
            r->norm[0] = '/';
            memcpy(r->norm + 1, r->url + qoff, ql);
            r->norm[ql + 1] = '\0';
            r->target = r->norm;
            r->target_len = ql + 1;
        } else {
            r->target = "/";
            r->target_len = 1;
        }
    }
    /* The fragment never goes on the wire; refuse it rather than guess. An
     * empty one ("/a#") sets no UF_FRAGMENT, yet upstreams drop it after
     * routing saw "/a#": any '#' is refused. */
    if ((u.field_set & (1 << UF_FRAGMENT)) || memchr(r->url, '#', r->url_len)) {
        *why = "fragment in request target";
        return 400;
    }
    const struct httphead_field *host = httphead_get(&r->head, "Host", NULL);
    if (r->abs_host && host && !host_matches_target(r, host->value, host->value_len)) {
        *why = "Host does not match the request target";
        return 400;
    }
    r->path = r->target;
    const char *q = memchr(r->target, '?', r->target_len);
    r->path_len = q ? (size_t)(q - r->target) : r->target_len;
    if (r->path_len == 0) {
        r->path = "/";
        r->path_len = 1;
    }
    r->raw_path = r->route_path = r->path;
    r->raw_path_len = r->route_path_len = r->path_len;
    if (r->path[0] == '/')
        return normalize_target(r, why);
    return 0;
}

/*
 * The path routing decides on and the upstream receives (urlpath.h says
 * why each spelling is folded or refused). Most paths need nothing: no copy.
 */
static int normalize_target(struct httpreq *r, const char **why)
{
    if (!urlpath_is_plain(r->path, r->path_len)) {
        size_t o = urlpath_normalize(r->path, r->path_len, r->norm, sizeof r->norm,
                                     URLPATH_MERGE_SLASHES, why);
        if (o == 0)
            return 400;
        size_t qlen = r->target_len - r->path_len;
        if (o + qlen > HTTPREQ_MAX_LINE) {
            *why = "invalid request target";
            return 414;
        }
        memcpy(r->norm + o, r->path + r->path_len, qlen);
        r->norm[o + qlen] = '\0';
        r->target = r->path = r->norm;
        r->path_len = o;
        r->target_len = o + qlen;
    }
    r->route_path = r->path;
    r->route_path_len = r->path_len;
    if (urlpath_route_differs(r->path, r->path_len)) {
        r->route_path = r->route;
        r->route_path_len = urlpath_route_form(r->path, r->path_len, r->route, sizeof r->route);
    }
    return 0;
}

static int judge(struct httpreq *r, const char **why)
{
    if (r->major == 0) {
        *why = "invalid request line";
        return 400;
    }
    if (r->major != 1 || r->minor > 1) {
        *why = "HTTP version not supported";
        return 505;
    }
    if (r->method == HTTP_CONNECT) {
        *why = "CONNECT is not supported";
        return 501;
    }
    size_t hosts = 0;
    const struct httphead_field *host = httphead_get(&r->head, "Host", &hosts);
    if (hosts > 1) {
        *why = "more than one Host header";
        return 400;
    }
    if (r->minor == 1 && hosts == 0) {
        *why = "missing Host header";
        return 400;
    }
    if (host) {
        for (uint32_t i = 0; i < host->value_len; i++) {
            unsigned char c = (unsigned char)host->value[i];
            if (c <= ' ' || c == '/' || c == '\\' || c == '@' || c == '?' || c == '#') {
                *why = "invalid Host header";
                return 400;
            }
        }
    }
    size_t tes = 0;
    const struct httphead_field *te = httphead_get(&r->head, "Transfer-Encoding", &tes);
    if (te) {
        if (r->minor == 0) {
            *why = "Transfer-Encoding in an HTTP/1.0 request";
            return 400;
        }
        if (httphead_get(&r->head, "Content-Length", NULL)) {
            *why = "both Content-Length and Transfer-Encoding";
            return 400;
        }
        /* Only "chunked", alone and once: anything else is a coding we do not implement. */
        if (tes > 1 || te->value_len != 7 || strncasecmp(te->value, "chunked", 7) != 0) {
            *why = "unsupported transfer coding";
            return 501;
        }
    }
    const struct httphead_field *ex = httphead_get(&r->head, "Expect", NULL);
    /* RFC 9110 10.1.1: a 100-continue expectation from HTTP/1.0 is ignored. */
    if (ex && r->minor >= 1) {
        if (ex->value_len == 12 && strncasecmp(ex->value, "100-continue", 12) == 0) {
            r->expect_continue = true;
        } else {
            *why = "unsupported expectation";
            return 417;
        }
    }
    r->has_body = !r->complete && (r->chunked || r->content_length > 0);
    return check_target(r, why);
}

static int parser_status(enum http_errno e, const char **why)
{
    switch (e) {
    case HPE_UNEXPECTED_CONTENT_LENGTH:
        *why = "conflicting Content-Length or Transfer-Encoding headers";
        return 400;
    case HPE_INVALID_CONTENT_LENGTH:
        *why = "invalid Content-Length";
        return 400;
    case HPE_INVALID_TRANSFER_ENCODING:
        *why = "unsupported transfer coding";
        return 501;
    case HPE_HEADER_OVERFLOW:
        *why = "request headers too large";
        return 431;
    case HPE_INVALID_METHOD:
        *why = "invalid method";
        return 400;
    case HPE_INVALID_VERSION:
        *why = "invalid HTTP version";
        return 400;
    default:
        *why = http_errno_description(e);
        return 400;
    }
}

/*
 * Non-strict http_parser reads only the shape of "HTTP/x.y": "HXXP/1.1"
 * passes. The request line must end in exactly " HTTP/" DIGIT "." DIGIT.
 */
static bool request_line_ok(const char *buf, size_t len)
{
    /* RFC 9112 2.2: empty lines before the request line are ignored. */
    while (len > 0 && (*buf == '\r' || *buf == '\n')) {
        buf++;
        len--;
    }
    const char *nl = memchr(buf, '\n', len);
    if (!nl)
        return false;
    size_t n = (size_t)(nl - buf);
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n < 9)
        return false;
    const char *v = buf + n - 9;
    return v[0] == ' ' && memcmp(v + 1, "HTTP/", 5) == 0 && v[6] >= '0' && v[6] <= '9' &&
           v[7] == '.' && v[8] >= '0' && v[8] <= '9';
}

int httpreq_parse(struct httpreq *r, const char *buf, size_t len, const char **why)
{
    /* Clear the scalars only: the header table and norm (12 KiB) are always
     * written before they are read. */
    memset(r, 0, offsetof(struct httpreq, head));
    httphead_reset(&r->head);
    const char *framing = httphead_framing_error(buf, len);
    if (framing) {
        *why = framing;
        return 400;
    }
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
    size_t n = http_parser_execute(&r->parser, &head_settings, buf, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
    if (r->head.bad) {
        *why = r->head.why;
        return r->head.n >= HTTPHEAD_MAX_HEADERS ? 431 : 400;
    }
    if (e != HPE_PAUSED)
        return parser_status(e == HPE_OK ? HPE_UNKNOWN : e, why);
    if (!request_line_ok(buf, len)) {
        *why = "invalid request line";
        return 400;
    }
    int st = judge(r, why);
    if (st)
        return st;
    httphead_mark_hop(&r->head);
    /* Resume: a head without body completes the message right here. */
    http_parser_pause(&r->parser, 0);
    size_t rest = len - n;
    if (rest) {
        size_t m = http_parser_execute(&r->parser, &head_settings, buf + n, rest);
        e = HTTP_PARSER_ERRNO(&r->parser);
        if (e != HPE_OK && e != HPE_PAUSED)
            return parser_status(e, why);
        if (e == HPE_PAUSED)
            http_parser_pause(&r->parser, 0);
        if (m != rest && !r->complete) {
            *why = "malformed request head";
            return 400;
        }
    }
    if (r->complete)
        r->has_body = false;
    return 0;
}
