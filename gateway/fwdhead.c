/*
 * fwdhead: the forwarded request head and the response-field filter. The
 * request head is built in one bounded pass (headbuf) from the parsed
 * client head; every list header the gateway extends (X-Forwarded-For,
 * Via) is joined from all of the client's lines in order, since a proxy in
 * front appends its own line after the client's (RFC 9110 5.3).
 */
#include "fwdhead.h"

#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "auth.h"
#include "caller.h"
#include "router.h"
#include "urlpath.h"

bool fwdhead_skip_request(const struct conf *conf, const struct httphead_field *f,
                          bool trusted_peer)
{
    static const char *const own[] = {
        "Host", "Content-Length", "Expect", "X-Forwarded-For", "X-Forwarded-Proto",
        "X-Forwarded-Host", "Via",
    };
    if (f->hop)
        return true;
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (httphead_name_is(f, own[i]))
            return true;
    /* X-Original-URL would route the upstream (Symfony, IIS URL Rewrite)
     * to a path the gateway never routed; X-Real-IP and friends would name
     * a client the gateway never limited. */
    if (caller_is_rewrite(f) || (!trusted_peer && caller_is_forwarding(f)))
        return true;
    /* The gateway's identity headers: only the gateway says who called,
     * on every route, so an upstream can trust them wherever it sees them. */
    if ((conf->auth_subject_header[0] && httphead_name_is(f, conf->auth_subject_header)) ||
        (conf->auth_org_header[0] && httphead_name_is(f, conf->auth_org_header)) ||
        (conf->auth_scopes_header[0] && httphead_name_is(f, conf->auth_scopes_header)))
        return true;
    return httphead_name_is(f, conf->corr_header);
}

/*
 * The target the upstream gets: the normalized one, or with merge_slashes
 * = no the client's slashes kept (routing merged them either way). BUF
 * holds HTTPREQ_MAX_LINE + 1 bytes; returns the length of *TARGET.
 */
static size_t upstream_target(const struct conf *conf, const struct httpreq *req, char *buf,
                              const char **target)
{
    *target = req->target;
    if (conf->merge_slashes || req->raw_path[0] != '/' ||
        !memmem(req->raw_path, req->raw_path_len, "//", 2))
        return req->target_len;
    const char *why;
    size_t n = urlpath_normalize(req->raw_path, req->raw_path_len, buf, HTTPREQ_MAX_LINE + 1,
                                 0, &why);
    size_t qlen = req->target_len - req->path_len;
    if (n == 0 || n + qlen > HTTPREQ_MAX_LINE)
        return req->target_len;  /* cannot happen: the merged form was accepted */
    memcpy(buf + n, req->target + req->path_len, qlen);
    *target = buf;
    return n + qlen;
}

size_t fwdhead_request_cap(const struct fwdhead_req *in)
{
    /* Everything is bounded by what the client sent plus fixed parts. The
     * target sent upstream is never longer than the one received plus two
     * bytes (a "/" before an absolute-form query, a "/" after strip_prefix):
     * normalizing and stripping only shorten it. */
    size_t cap = in->req->url_len + 2 + strlen(in->default_host) + 2 * (CONF_HOST_MAX + 16) +
                 (in->host ? strlen(in->host) : 0) +
                 strlen(in->conf->corr_header) + strlen(in->request_id) +
                 strlen(in->peer_ip) + 256;
    for (size_t i = 0; i < in->req->head.n; i++)
        cap += in->req->head.f[i].name_len + in->req->head.f[i].value_len + 4;
    return cap;
}

/* The last NAME field with a value, or NULL. */
static const struct httphead_field *last_field(const struct httphead *head, const char *name)
{
    const struct httphead_field *last = NULL;
    for (size_t i = 0; i < head->n; i++)
        if (head->f[i].value_len && httphead_name_is(&head->f[i], name))
            last = &head->f[i];
    return last;
}

/*
 * X-Forwarded-Proto: what a trusted proxy says the client used, when it is
 * one of the two schemes; else what the client used with us. An untrusted
 * client's claim is never taken: an application would build https links
 * (or trust a "secure" cookie) on its word.
 */
static void forwarded_proto(struct headbuf *h, const struct fwdhead_req *in)
{
    const struct httphead_field *f =
        in->trusted_peer ? last_field(&in->req->head, "X-Forwarded-Proto") : NULL;
    HB_LIT(h, "X-Forwarded-Proto: ");
    if (f && f->value_len == 5 && strncasecmp(f->value, "https", 5) == 0)
        HB_LIT(h, "https");
    else if (f && f->value_len == 4 && strncasecmp(f->value, "http", 4) == 0)
        HB_LIT(h, "http");
    else if (in->tls)
        HB_LIT(h, "https");
    else
        HB_LIT(h, "http");
    HB_LIT(h, "\r\n");
}

/*
 * The host the client named when it sent no Host: an absolute-form target's
 * authority (HTTP/1.0 may do that), as it was written, else DEFAULT_HOST.
 * Into BUF (CONF_HOST_MAX + 8); returns its length.
 */
static size_t named_host(const struct fwdhead_req *in, char *buf, size_t cap)
{
    const struct httpreq *r = in->req;
    int n;
    if (r->abs_host && r->abs_host_len) {
        bool v6 = memchr(r->abs_host, ':', r->abs_host_len) != NULL;
        bool port = r->abs_port && r->abs_port != r->abs_default_port;
        n = snprintf(buf, cap, v6 ? "[%.*s]" : "%.*s", (int)r->abs_host_len, r->abs_host);
        if (n > 0 && (size_t)n < cap && port)
            n += snprintf(buf + n, cap - (size_t)n, ":%u", r->abs_port);
    } else {
        n = snprintf(buf, cap, "%s", in->default_host);
    }
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* X-Forwarded-Host: a trusted proxy's, else the Host the client asked for. */
static void forwarded_host(struct headbuf *h, const struct fwdhead_req *in,
                           const struct httphead_field *host, const char *named, size_t named_len)
{
    const struct httphead_field *f =
        in->trusted_peer ? last_field(&in->req->head, "X-Forwarded-Host") : NULL;
    if (!f)
        f = host;
    if (f)
        hb_field(h, "X-Forwarded-Host", 16, f->value, f->value_len);
    else
        hb_field(h, "X-Forwarded-Host", 16, named, named_len);
}

/* Every value of the list header NAME, each followed by ", ". */
static void join_lines(struct headbuf *h, const struct httphead *head, const char *name)
{
    for (size_t i = 0; i < head->n; i++) {
        const struct httphead_field *f = &head->f[i];
        if (f->value_len && httphead_name_is(f, name)) {
            hb_add(h, f->value, f->value_len);
            HB_LIT(h, ", ");
        }
    }
}

void fwdhead_request(struct headbuf *h, const struct fwdhead_req *in)
{
    const struct conf *conf = in->conf;
    const struct httpreq *req = in->req;
    char target[HTTPREQ_MAX_LINE + 2], unmerged[HTTPREQ_MAX_LINE + 1];
    const char *t;
    size_t tlen = upstream_target(conf, req, unmerged, &t);
    size_t tl = router_upstream_target(in->route, t, tlen, target, sizeof target);
    hb_str(h, http_method_str(req->method));
    HB_LIT(h, " ");
    hb_add(h, target, tl);
    HB_LIT(h, " HTTP/1.1\r\n");
    const struct httphead_field *host = httphead_get(&req->head, "Host", NULL);
    char named[CONF_HOST_MAX + 16];
    size_t named_len = host ? 0 : named_host(in, named, sizeof named);
    if (in->host)  /* host = upstream | NAME: a virtual-hosted upstream's own name */
        hb_field(h, "Host", 4, in->host, strlen(in->host));
    else if (host)
        hb_field(h, "Host", 4, host->value, host->value_len);
    else
        hb_field(h, "Host", 4, named, named_len);
    for (size_t i = 0; i < req->head.n; i++) {
        const struct httphead_field *f = &req->head.f[i];
        if (fwdhead_skip_request(conf, f, in->trusted_peer) ||
            (in->hide_credentials &&
             (httphead_name_is(f, "Authorization") || httphead_name_is(f, conf->token_header))))
            continue;
        hb_field(h, f->name, f->name_len, f->value, f->value_len);
    }
    hb_field(h, conf->corr_header, strlen(conf->corr_header), in->request_id,
             strlen(in->request_id));
    HB_LIT(h, "X-Forwarded-For: ");
    join_lines(h, &req->head, "X-Forwarded-For");
    hb_str(h, in->peer_ip);
    HB_LIT(h, "\r\n");
    forwarded_proto(h, in);
    forwarded_host(h, in, host, named, named_len);
    HB_LIT(h, "Via: ");
    join_lines(h, &req->head, "Via");
    HB_LIT(h, "1.");
    hb_u64(h, req->minor);
    HB_LIT(h, " envelopd\r\n");
    if (in->upgrade) {
        /* Hop-by-hop, so skipped above; an upgrade is asked of this hop again. */
        const struct httphead_field *up = httphead_get(&req->head, "Upgrade", NULL);
        HB_LIT(h, "Connection: upgrade\r\n");
        if (up)
            hb_field(h, "Upgrade", 7, up->value, up->value_len);
    }
    if (req->has_body) {
        if (req->chunked) {
            HB_LIT(h, "Transfer-Encoding: chunked\r\n");
        } else {
            HB_LIT(h, "Content-Length: ");
            hb_u64(h, req->content_length);
            HB_LIT(h, "\r\n");
        }
    }
    if (!in->open_end)
        HB_LIT(h, "\r\n");
}

size_t fwdhead_identity_cap(const struct conf *conf)
{
    (void)conf;
    return 3 * (CONF_NAME_MAX + 4) + sizeof(((struct auth_identity *)0)->subject) +
           APIKEY_ORG_MAX + APIKEY_SCOPES_MAX + 2;
}

void fwdhead_identity(struct headbuf *h, const struct conf *conf, const struct auth_identity *id)
{
    if (id && id->kind != AUTH_KIND_NONE) {
        const char *names[] = {conf->auth_subject_header, conf->auth_org_header,
                               conf->auth_scopes_header};
        const char *values[] = {id->subject, id->org, id->scopes};
        for (size_t i = 0; i < 3; i++)
            if (names[i][0] && values[i][0])
                hb_field(h, names[i], strlen(names[i]), values[i], strlen(values[i]));
    }
    HB_LIT(h, "\r\n");
}

/* NAME, or a prefix when it ends in '*'. */
static bool name_matches(const struct httphead_field *f, const char *name)
{
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '*')
        return f->name_len >= n - 1 && strncasecmp(f->name, name, n - 1) == 0;
    return httphead_name_is(f, name);
}

/*
 * Headers that name the upstream's software, version or debug hooks: on an
 * enveloped 5xx they tell an attacker what failed and how, so they go with
 * the upstream's own body. [envelope] hide_headers adds names.
 */
static bool internal_header(const struct conf *conf, const struct httphead_field *f)
{
    static const char *const builtin[] = {
        "Server", "X-Powered-By", "X-AspNet-Version", "X-AspNetMvc-Version", "X-Runtime",
        "X-Debug-*", "X-Backend*", "X-Upstream*", "X-Server*", "X-Host*", "X-Hostname",
        "X-Served-By", "X-Node*", "X-Instance*", "X-Generator", "X-Drupal-*",
        "X-Application-Context", "X-Envoy-*", "Via",
    };
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        if (name_matches(f, builtin[i]))
            return true;
    for (size_t i = 0; i < conf->n_hide_headers; i++)
        if (name_matches(f, conf->hide_headers[i]))
            return true;
    return false;
}

bool fwdhead_skip_response(const struct conf *conf, const struct httphead_field *f, int status,
                           bool enveloped, bool own_limit, bool expose_5xx, bool own_cors)
{
    if (own_cors && f->name_len > 15 && strncasecmp(f->name, "Access-Control-", 15) == 0)
        return true;
    if (f->hop || httphead_name_is(f, "Content-Length") || httphead_name_is(f, conf->corr_header))
        return true;
    /* When the gateway's own limit applied, its headers are the ones that hold. */
    if (own_limit && f->name_len > 12 && strncasecmp(f->name, "X-RateLimit-", 12) == 0)
        return true;
    if (!enveloped)
        return false;
    /* The envelope replaces the body: its representation headers go too. */
    if (f->name_len >= 8 && strncasecmp(f->name, "Content-", 8) == 0)
        return true;
    if (status >= 500 && !expose_5xx && internal_header(conf, f))
        return true;
    return httphead_name_is(f, "ETag") || httphead_name_is(f, "Last-Modified") ||
           httphead_name_is(f, "Accept-Ranges") || httphead_name_is(f, "Date");
}

bool fwdhead_switch_ok(const char *key, size_t keylen, const struct httphead *resp)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    size_t n = 0;
    const struct httphead_field *up = httphead_get(resp, "Upgrade", &n);
    if (!up || n != 1 || up->value_len != 9 || strncasecmp(up->value, "websocket", 9) != 0)
        return false;
    if (keylen == 0)
        return true;  /* nothing to check it against; the client will */
    unsigned char md[SHA_DIGEST_LENGTH];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, key, keylen) == 1 &&
              EVP_DigestUpdate(ctx, guid, sizeof guid - 1) == 1 &&
              EVP_DigestFinal_ex(ctx, md, NULL) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return false;
    char want[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
    int wl = EVP_EncodeBlock((unsigned char *)want, md, SHA_DIGEST_LENGTH);
    const struct httphead_field *acc = httphead_get(resp, "Sec-WebSocket-Accept", &n);
    return acc && n == 1 && wl > 0 && acc->value_len == (uint32_t)wl &&
           memcmp(acc->value, want, (size_t)wl) == 0;
}
