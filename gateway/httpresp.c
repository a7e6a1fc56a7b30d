/*
 * httpresp: one upstream response head, parsed in one pass and judged.
 * Framing follows RFC 9112 section 6.3: HEAD, 1xx, 204 and 304 have no body;
 * chunked wins; then Content-Length; else the body runs until close.
 */
#include "httpresp.h"

#include <stddef.h>
#include <string.h>

struct resp_ctx {
    struct httpresp *r;
    bool head_request;
};

static int on_field(http_parser *p, const char *at, size_t len)
{
    struct resp_ctx *c = p->data;
    return httphead_on_field(&c->r->head, at, len);
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    struct resp_ctx *c = p->data;
    return httphead_on_value(&c->r->head, at, len);
}

static int on_headers_complete(http_parser *p)
{
    struct resp_ctx *c = p->data;
    struct httpresp *r = c->r;
    r->status = p->status_code;
    r->major = p->http_major;
    r->minor = p->http_minor;
    r->chunked = (p->flags & F_CHUNKED) != 0;
    r->has_length = (p->flags & F_CONTENTLENGTH) != 0;
    r->content_length = r->has_length ? p->content_length : 0;
    /* 1 = "no body follows": HEAD, 1xx, 204 and 304 never have one (RFC 9112
     * 6.3), whatever framing headers they carry; http_parser only knows that
     * when they carry none. */
    bool no_body = c->head_request || r->status / 100 == 1 || r->status == 204 ||
                   r->status == 304;
    return no_body ? 1 : 0;
}

static int on_message_complete(http_parser *p)
{
    struct resp_ctx *c = p->data;
    c->r->complete = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings resp_settings = {
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

int httpresp_parse(struct httpresp *r, const char *buf, size_t len, bool head_request,
                   const char **why)
{
    memset(r, 0, offsetof(struct httpresp, head));
    httphead_reset(&r->head);
    const char *framing = httphead_framing_error(buf, len);
    if (framing) {
        *why = framing;
        return -1;
    }
    struct resp_ctx ctx = { r, head_request };
    http_parser_init(&r->parser, HTTP_RESPONSE);
    r->parser.data = &ctx;
    size_t n = http_parser_execute(&r->parser, &resp_settings, buf, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
    r->parser.data = NULL;
    /* Only now, with the skip-body decision made, is the keep-alive answer right. */
    r->keepalive = http_should_keep_alive(&r->parser) != 0;
    if (r->head.bad) {
        *why = r->head.why;
        return -1;
    }
    if (e == HPE_PAUSED)
        http_parser_pause(&r->parser, 0);
    else if (e != HPE_OK) {
        *why = http_errno_description(e);
        return -1;
    }
    /* Non-strict http_parser takes "HTPP/1.1" for "HTTP/1.1": check the bytes. */
    if (len < 13 || memcmp(buf, "HTTP/", 5) != 0 || buf[5] < '0' || buf[5] > '9' ||
        buf[6] != '.' || buf[7] < '0' || buf[7] > '9' || buf[8] != ' ') {
        *why = "invalid status line";
        return -1;
    }
    if (n != len && !r->complete) {
        *why = "malformed response head";
        return -1;
    }
    if (r->status < 100 || r->status > 999 || r->major != 1) {
        *why = "invalid status line";
        return -1;
    }
    size_t tes = 0;
    const struct httphead_field *te = httphead_get(&r->head, "Transfer-Encoding", &tes);
    if (te && r->has_length) {
        *why = "both Content-Length and Transfer-Encoding";
        return -1;
    }
    /* Transfer-Encoding is hop-by-hop and dropped: a coding other than one
     * "chunked" would reach the client undecoded and unannounced. */
    if (te && !r->complete &&
        (tes > 1 || te->value_len != 7 || strncasecmp(te->value, "chunked", 7) != 0)) {
        *why = "unsupported transfer coding";
        return -1;
    }
    httphead_mark_hop(&r->head);
    if (r->complete) {
        r->has_body = false;
    } else {
        r->has_body = true;
        r->until_eof = !r->chunked && !r->has_length;
    }
    return 0;
}
