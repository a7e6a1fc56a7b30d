/*
 * proxy: one request's exchange with its upstream, as a state machine
 * (px_set_state is the only place a state changes). The request is kept
 * whole in px->req while it is small enough to replay (RETRY_MAX), which is
 * what makes retries possible; beyond that it streams and is never replayed
 * once sent. Responses 1xx-3xx stream through; errors are captured up to
 * max_error_body and rewritten by normalize into the envelope. A request
 * asking for a protocol upgrade (WebSocket) that the upstream accepts with
 * 101 becomes a tunnel: from then on bytes are relayed both ways untouched,
 * until either side closes or tunnel_timeout passes with no byte.
 */
#include "proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "auth.h"
#include "caller.h"
#include "client.h"
#include "clock.h"
#include "conn_tls.h"
#include "cors.h"
#include "conf.h"
#include "envelope.h"
#include "fwdhead.h"
#include "headbuf.h"
#include "httpresp.h"
#include "limiter.h"
#include "log.h"
#include "normalize.h"
#include "policy.h"
#include "router.h"
#include "upstream.h"
#include "worker.h"

#define RETRY_MAX (64 * 1024)        /* requests up to this size can be replayed */
#define PENDING_HIGH (256 * 1024)    /* pause the client above this much unsent body */
#define CLIENT_OUT_HIGH (256 * 1024) /* pause the upstream above this much unsent response */

enum px_state {
    PX_AUTH,         /* waiting for an API key's record (auth.c) */
    PX_LIMIT,        /* waiting for the rate limiter */
    PX_RETRY_WAIT,   /* backing off before the next attempt */
    PX_CONNECTING,
    PX_WAITING,      /* request sent (or sending); no response head yet */
    PX_BODY,         /* response body: relayed, or captured for the envelope */
    PX_TUNNEL,       /* after a 101: bytes relayed both ways, no HTTP any more */
};

enum px_fail { FAIL_CONNECT, FAIL_CONNECT_TIMEOUT, FAIL_RESET, FAIL_STATUS };

struct proxy {
    struct client *c;
    struct worker *w;
    const struct conf *conf;
    const struct conf_route *route;
    struct policy pol;             /* the route's overrides over the globals */
    struct up_group *group;
    enum px_state st;
    struct event *timer;

    /* request */
    struct evbuffer *req;       /* unsent bytes, or the whole request in copy mode */
    bool copy_mode;
    bool sent_any;
    bool has_body;
    bool body_chunked;
    bool body_done;
    bool idempotent;
    bool head_method;
    bool expect_continue;
    bool continue_sent;
    bool client_paused;
    bool upgrade;               /* the client asked to switch protocols (Upgrade) */
    uint8_t ws_key_len;         /* its Sec-WebSocket-Key, to check the 101's Accept */
    char ws_key[64];
    bool client_eof;            /* tunnel: the client closed its side */
    bool upstream_shut;         /* tunnel: so the upstream's side was shut too */

    /* upstream */
    struct up_server *srv;
    struct upconn *uc;
    bool connected;
    unsigned attempt;           /* retries done */
    uint64_t tried;
    int last_fail_status;
    const char *last_fail_why;
    uint64_t up_start_us;

    /* response */
    size_t scan_pos;
    unsigned scan_state;
    struct httpbody rbody;
    int status;
    bool resp_keepalive;
    bool resp_until_eof;
    bool chunked_out;
    bool length_out;            /* the client was sent Content-Length */
    bool error_mode;
    struct evbuffer *errbody;
    bool err_truncated;
    struct evbuffer *err_headers;   /* upstream headers kept on the envelope response */
    char ctype[128];
    char cenc[64];
    char retry_after[32];
    bool upstream_paused;

    /* identity: while head_open, the head lacks its identity lines and end,
     * and body bytes wait in early */
    struct auth_pending *ap;
    bool head_open;
    struct evbuffer *early;
    struct auth_identity ident;
    uint64_t auth_asked_us;
    bool auth_charged;          /* a failed authentication charged while the lookup runs */
    char ip[CALLER_IP_MAX];     /* the caller as limits see it */

    /* rate limit */
    struct limiter_pending *rlp;
    uint64_t rl_asked_us;       /* when the verdict was asked of Redis */
    bool rl_applied;
    struct rl_result rl;
};

static void px_connect(struct proxy *px);
static void px_free(struct proxy *px);
static bool px_tunnel_start(struct proxy *px, const struct httpresp *r);
static void px_timer_cb(evutil_socket_t fd, short what, void *arg);
static void up_read_cb(struct conn *cn, void *arg);
static void up_write_cb(struct conn *cn, void *arg);
static void up_event_cb(struct conn *cn, short what, void *arg);

static void arm(struct proxy *px, uint64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    evtimer_add(px->timer, &tv);
}

/*
 * (Re)arm the deadline of the current state: a transition does it, and so
 * does progress within a state (bytes moved restart an idle clock). Kept
 * apart from px_set_state so that a re-arm never reads as a transition.
 */
static void px_arm(struct proxy *px)
{
    const struct conf_upstream *cu = px->group ? px->group->cu : NULL;
    switch (px->st) {
    case PX_AUTH:  /* the Redis call has its own deadline */
    case PX_LIMIT:
        evtimer_del(px->timer);
        break;
    case PX_RETRY_WAIT: {
        uint64_t d = cu->retry_backoff_ms;
        for (unsigned i = 1; i < px->attempt && d < cu->retry_backoff_max_ms; i++)
            d *= 2;
        if (d > cu->retry_backoff_max_ms)
            d = cu->retry_backoff_max_ms;
        arm(px, d);
        break;
    }
    case PX_CONNECTING:
        arm(px, px->pol.connect_timeout_ms);
        break;
    case PX_WAITING:
        /* While the client is still uploading and the upstream has read all it
         * was given, the wait is the client's (its body deadline covers it):
         * no response deadline, and no blame on the upstream. */
        if (!px->body_done && px->uc && evbuffer_get_length(conn_output(&px->uc->conn)) == 0)
            evtimer_del(px->timer);
        else
            arm(px, px->pol.timeout_ms);
        break;
    case PX_BODY:
        arm(px, px->pol.timeout_ms);
        break;
    case PX_TUNNEL:
        arm(px, cu->tunnel_timeout_ms);
        break;
    }
}

static void px_set_state(struct proxy *px, enum px_state st)
{
    px->st = st;
    px_arm(px);
}

static bool is_idempotent(enum http_method m)
{
    return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_PUT || m == HTTP_DELETE ||
           m == HTTP_OPTIONS || m == HTTP_TRACE;
}

/* ---- rate-limit headers ------------------------------------------------ */

/* Room the three rate-limit headers may take. */
#define RL_HEADERS_MAX 128

static void add_rl_headers(const struct proxy *px, struct headbuf *h)
{
    if (!px->rl_applied)
        return;
    HB_LIT(h, "X-RateLimit-Limit: ");
    hb_i64(h, px->rl.limit);
    HB_LIT(h, "\r\nX-RateLimit-Remaining: ");
    hb_i64(h, px->rl.remaining);
    HB_LIT(h, "\r\nX-RateLimit-Reset: ");
    hb_i64(h, px->rl.reset_s);
    HB_LIT(h, "\r\n");
}

/* Answer with a gateway-made envelope and end the exchange. */
static void px_fail_answer(struct proxy *px, int status, const char *message)
{
    struct client *c = px->c;
    char extra[RL_HEADERS_MAX + 1];
    struct headbuf h;
    headbuf_mem(&h, extra, RL_HEADERS_MAX);
    add_rl_headers(px, &h);
    extra[h.full ? 0 : h.len] = '\0';
    if (px->uc) {
        upstream_release(px->uc, false);
        px->uc = NULL;
    }
    client_note_upstream(c, 0, px->up_start_us ? (double)(clock_us() - px->up_start_us) / 1000.0
                                               : -1);
    px_free(px);
    client_send_error(c, status, message, extra, NULL, false);
}

/* ---- building the upstream request ------------------------------------- */

/*
 * What the upstream gets as Host (route's host =, else the upstream's):
 * NULL to keep the client's; for "upstream", the name the upstream is known
 * by, as nginx's $proxy_host: its server_name, else its first server as
 * written (retries to other servers of the group send the same).
 */
static const char *upstream_host(const struct conf_route *r, const struct conf_upstream *cu)
{
    enum conf_host_mode m = r->host_mode != CONF_HOST_UNSET ? r->host_mode : cu->host_mode;
    const char *name = r->host_mode != CONF_HOST_UNSET ? r->host_name : cu->host_name;
    switch (m) {
    case CONF_HOST_UPSTREAM:
        return cu->server_name[0] ? cu->server_name : cu->servers[0].text;
    case CONF_HOST_NAME:
        return name;
    default:
        return NULL;
    }
}

static int build_request(struct proxy *px, const struct httpreq *req)
{
    /* With auth the identity is not known yet: the head stays open. */
    bool open = px->route->auth != CONF_AUTH_NONE;
    struct client *c = px->c;
    struct fwdhead_req in = {
        .conf = px->conf,
        .route = px->route,
        .req = req,
        .default_host = px->group->cu->servers[0].text,
        .host = upstream_host(px->route, px->group->cu),
        .request_id = client_id(c),
        .peer_ip = client_ip(c),
        .trusted_peer = conf_is_trusted_proxy(px->conf, client_peer(c)),
        .tls = client_tls(c),
        .upgrade = px->upgrade,
        .hide_credentials = px->route->hide_credentials,
        .open_end = open,
    };
    struct headbuf h;
    if (headbuf_reserve(&h, px->req, fwdhead_request_cap(&in)) != 0)
        return -1;
    fwdhead_request(&h, &in);
    if (headbuf_commit(&h) < 0)
        return -1;
    px->head_open = open;
    return 0;
}

/* The identity's lines and the head's end, then the body that came meanwhile. */
static int close_head(struct proxy *px)
{
    struct headbuf h;
    if (headbuf_reserve(&h, px->req, fwdhead_identity_cap(px->conf)) != 0)
        return -1;
    fwdhead_identity(&h, px->conf, &px->ident);
    if (headbuf_commit(&h) < 0)
        return -1;
    px->head_open = false;
    int rc = px->early ? evbuffer_add_buffer(px->req, px->early) : 0;
    if (px->copy_mode && evbuffer_get_length(px->req) > RETRY_MAX)
        px->copy_mode = false;
    return rc;
}

/*
 * Does REQ ask to switch to WebSocket (RFC 9110 7.8, RFC 6455)? Only
 * HTTP/1.1 can, and only a request without a body is taken up: what
 * follows its head belongs to the new protocol, never to a body. Other
 * protocols (h2c above all) are not tunnelled: the route's policy is
 * checked on the upgrade request only, and an h2c tunnel would carry
 * further requests to the upstream past it. Their Upgrade is dropped as
 * hop-by-hop and the request is served as an ordinary one, as nginx does.
 */
static bool wants_upgrade(const struct httpreq *req)
{
    /* http_parser already saw Upgrade and "upgrade" in Connection (CONNECT,
     * its other case, was refused): other requests pay no header scan. */
    if (!req->parser.upgrade || req->minor != 1 || req->has_body)
        return false;
    size_t n = 0;
    const struct httphead_field *up = httphead_get(&req->head, "Upgrade", &n);
    return up && n == 1 && up->value_len == 9 && strncasecmp(up->value, "websocket", 9) == 0;
}

/* ---- rate-limit decision ------------------------------------------------- */

static void px_limit_decided(struct proxy *px, enum limiter_verdict v, const struct rl_result *r)
{
    struct client *c = px->c;
    static const enum metrics_rl kinds[] = {
        [LIMITER_ALLOW] = METRICS_RL_ALLOW, [LIMITER_LIMITED] = METRICS_RL_LIMITED,
        [LIMITER_UNAVAILABLE] = METRICS_RL_UNAVAILABLE, [LIMITER_NONE] = METRICS_RL_NONE,
    };
    metrics_ratelimit(&px->w->metrics, kinds[v]);
    switch (v) {
    case LIMITER_LIMITED: {
        struct envelope_limit lim = {
            .set = true,
            .retry_after_s = r->retry_after_s,
            .limit = r->limit,
            .window_s = r->window_s,
        };
        char extra[256];
        snprintf(extra, sizeof extra,
                 "Retry-After: %ld\r\nX-RateLimit-Limit: %ld\r\nX-RateLimit-Remaining: 0\r\n"
                 "X-RateLimit-Reset: %ld\r\n",
                 r->retry_after_s, r->limit, r->reset_s);
        client_note_limit(c, 0);
        px_free(px);
        client_send_error(c, 429, "Too many requests. Please try again later.", extra, &lim,
                          false);
        return;
    }
    case LIMITER_UNAVAILABLE:
        px_fail_answer(px, 503, "Rate limiting is unavailable; try again later");
        return;
    case LIMITER_ALLOW:
        px->rl_applied = true;
        px->rl = *r;
        client_note_limit(c, r->remaining);
        break;
    case LIMITER_NONE:
        break;
    }
    px_connect(px);
}

static void px_limit_cb(enum limiter_verdict v, const struct rl_result *r, void *arg)
{
    struct proxy *px = arg;
    px->rlp = NULL;
    metrics_ratelimit_wait(&px->w->metrics, (double)(clock_us() - px->rl_asked_us) / 1000.0);
    px_limit_decided(px, v, r);
}

/* Ask the limiter for the caller TOKEN (the raw token, or a verified
 * identity's id); the exchange goes on from px_limit_decided. */
static void px_limit_start(struct proxy *px, const char *token, size_t token_len)
{
    const struct conf_plan *plan =
        px->ident.kind != AUTH_KIND_NONE ? auth_plan(px->conf, &px->ident) : NULL;
    struct limiter_query q = {
        .route = px->route,
        .token = token,
        .token_len = token_len,
        .client_ip = px->ip,
        .token_rate = plan ? &plan->per_token : NULL,
        .org = px->ident.org[0] ? px->ident.org : NULL,
        .org_rate = plan ? &plan->per_org : NULL,
    };
    enum limiter_verdict v = LIMITER_NONE;
    struct rl_result r;
    memset(&r, 0, sizeof r);
    int done = px->w->limiter ? limiter_check(px->w->limiter, &q, &v, &r, px_limit_cb, px, &px->rlp)
                             : 1;
    /* Only a verdict still to come from Redis is a wait: no clock read for
     * the others. Its command is written at the end of this turn, after this. */
    if (!done)
        px->rl_asked_us = clock_us();
    px_set_state(px, PX_LIMIT);
    if (done) {
        px->rlp = NULL;
        px_limit_decided(px, v, &r);
    }
}

/* ---- identity -------------------------------------------------------------- */

/* The 401/403/503 of a refused credential, in the seeds' words (auth.h). */
static void px_auth_refused(struct proxy *px, const struct auth_result *res)
{
    struct client *c = px->c;
    int status = 401;
    const char *code = "UNAUTHORIZED", *msg = "Authentication required";
    const char *extra = "WWW-Authenticate: Bearer\r\n";
    struct envelope_field f = {"scope", NULL, "missing_scope"};
    char fmsg[CONF_SCOPE_MAX + 32];
    size_t nf = 0;
    switch (res->outcome) {
    case AUTH_MISSING:
        break;
    case AUTH_TOKEN_INVALID:
        code = "TOKEN_INVALID";
        msg = "JWT token is malformed or invalid";
        extra = "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n";
        break;
    case AUTH_TOKEN_EXPIRED:
        code = "TOKEN_EXPIRED";
        msg = res->tried == AUTH_KIND_API_KEY ? "API key has expired" : "JWT token has expired";
        extra = "WWW-Authenticate: Bearer error=\"invalid_token\", "
                "error_description=\"expired\"\r\n";
        break;
    case AUTH_KEY_INVALID:
        msg = "API key is missing or invalid";
        extra = "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n";
        break;
    case AUTH_ORG_MISMATCH:
        status = 403;
        code = "FORBIDDEN";
        msg = res->id.kind == AUTH_KIND_API_KEY ? "API key bound to a different organization"
                                                : "Token bound to a different organization";
        extra = NULL;
        break;
    case AUTH_KEYS_FORBIDDEN:
        status = 403;
        code = "FORBIDDEN";
        msg = "Not available for API key auth \xe2\x80\x94 use a user session";
        extra = NULL;
        break;
    case AUTH_SCOPE_MISSING:
        status = 403;
        code = "FORBIDDEN";
        msg = "Key lacks required scopes";
        snprintf(fmsg, sizeof fmsg, "requires %s", res->missing_scope);
        f.message = fmsg;
        nf = 1;
        extra = "WWW-Authenticate: Bearer error=\"insufficient_scope\"\r\n";
        break;
    case AUTH_UNAVAILABLE:
    case AUTH_PASS:
    default:
        status = 503;
        code = NULL;
        msg = "Authentication is unavailable; try again later";
        extra = "Retry-After: 1\r\n";
        break;
    }
    if (auth_outcome_is_failure(res->outcome) && px->w->limiter && !px->auth_charged)
        limiter_auth_failed(px->w->limiter, px->ip);
    else if (!auth_outcome_is_failure(res->outcome) && px->auth_charged && px->w->limiter)
        limiter_auth_refund(px->w->limiter, px->ip);
    if (res->id.kind != AUTH_KIND_NONE)
        client_note_subject(c, res->id.subject);
    const char *fields[] = {"outcome", auth_outcome_str(res->outcome), "reason",
                            res->reason ? res->reason : "", "client", px->ip, NULL};
    LOG_AT(status == 503 ? CONF_LOG_WARN : CONF_LOG_INFO, "auth_refused", client_id(c), fields,
           "%d for %s: %s (%s)", status, px->ip, auth_outcome_str(res->outcome),
           res->reason ? res->reason : "");
    px_free(px);
    client_send_error_coded(c, status, code, msg, extra, nf ? &f : NULL, nf, NULL);
}

_Static_assert(AUTH_UNAVAILABLE + 2 == METRICS_AUTH_KINDS, "metrics count every outcome");

static void px_auth_decided(struct proxy *px, const struct auth_result *res)
{
    metrics_auth(&px->w->metrics, (unsigned)res->outcome);
    if (res->outcome != AUTH_PASS) {
        px_auth_refused(px, res);
        return;
    }
    if (px->auth_charged && px->w->limiter)
        limiter_auth_refund(px->w->limiter, px->ip);
    px->ident = res->id;
    client_note_subject(px->c, px->ident.subject);
    if (close_head(px) != 0) {
        px_fail_answer(px, 503, "The gateway is out of memory");
        return;
    }
    char id[sizeof px->ident.subject + 8];
    size_t n = auth_limit_id(&px->ident, id, sizeof id);
    px_limit_start(px, n ? id : NULL, n);
}

static void px_auth_cb(const struct auth_result *res, void *arg)
{
    struct proxy *px = arg;
    px->ap = NULL;
    px_auth_decided(px, res);
}

/* ---- start ----------------------------------------------------------------- */

/*
 * The host the request is for, router_host's form, into OUT: a trusted
 * proxy's X-Forwarded-Host (the one the upstream will read, fwdhead.c
 * keeps it), else an absolute-form target's authority (it wins over Host,
 * RFC 9112 3.2.2; httpreq checked they agree), else Host. Its length; 0:
 * none given (or empty); -1: one given that is not a host, which must not
 * fall through to the routes for any host.
 */
static long request_host(struct client *c, const struct httpreq *req, char *out, size_t cap)
{
    const struct conf *conf = client_gen(c)->conf;
    const struct httphead_field *h = NULL;
    if (conf_is_trusted_proxy(conf, client_peer(c)))
        for (size_t i = 0; i < req->head.n; i++)
            if (req->head.f[i].value_len && httphead_name_is(&req->head.f[i], "X-Forwarded-Host"))
                h = &req->head.f[i];
    if (!h && req->abs_host && req->abs_host_len) {
        char b[CONF_HOST_MAX + 2];
        bool v6 = memchr(req->abs_host, ':', req->abs_host_len) != NULL;
        if (req->abs_host_len + 2 >= sizeof b)
            return -1;
        int n = snprintf(b, sizeof b, v6 ? "[%.*s]" : "%.*s", (int)req->abs_host_len,
                         req->abs_host);
        size_t len = router_host(b, (size_t)n, out, cap);
        return len ? (long)len : -1;
    }
    if (!h)
        h = httphead_get(&req->head, "Host", NULL);
    if (!h || h->value_len == 0)
        return 0;
    size_t len = router_host(h->value, h->value_len, out, cap);
    return len ? (long)len : -1;
}

bool proxy_route(struct client *c, const struct httpreq *req, const struct conf_route **route)
{
    char host[CONF_HOST_MAX];
    long hl = request_host(c, req, host, sizeof host);
    *route = NULL;
    if (hl < 0)
        return false;
    *route = router_find(client_gen(c)->cref->router, host, (size_t)hl, req->route_path,
                         req->route_path_len, &req->head, NULL);
    return true;
}

/* A CORS preflight, answered by the gateway: 204 with the CORS lines (only
 * Vary for an origin, method or headers not allowed: the browser fails it). */
static void answer_preflight(struct client *c, const struct policy *pol,
                             const struct conf_route *route, const struct httpreq *req)
{
    char buf[CONF_MAX_ORIGINS * CONF_ORIGIN_MAX + 4096];
    struct headbuf h;
    headbuf_mem(&h, buf, sizeof buf);
    enum cors_verdict v = cors_preflight_headers(pol->cors, route->methods, &req->head, &h);
    if (v != CORS_ALLOWED)
        LOG_AT(CONF_LOG_INFO, "cors_refused", client_id(c), NULL, "preflight from %s: %s",
               client_ip(c), cors_verdict_str(v));
    (void)client_answer_closes(c, false, true);
    client_write_preflight(c, h.full ? NULL : buf, h.full ? 0 : h.len);
    client_response_done(c);
}

/*
 * No route for the request. Over TLS, a Host that names another site than
 * the SNI the connection was opened for is a misdirected request (421, RFC
 * 9110 15.5.20): the client may retry on a connection of its own for that
 * host. Otherwise the 404.
 */
static void answer_no_route(struct client *c, const struct httpreq *req)
{
    const char *sni = client_sni(c);
    char host[CONF_HOST_MAX];
    long hl = request_host(c, req, host, sizeof host);
    if (sni && hl > 0 && strcasecmp(sni, host) != 0) {
        client_send_error(c, 421, "This connection is for another host", NULL, NULL, false);
        return;
    }
    client_send_error(c, 404, "No route matches this path", NULL, NULL, false);
}

struct proxy *proxy_start(struct client *c, const struct httpreq *req,
                          const struct conf_route *route)
{
    const struct conf *conf = client_gen(c)->conf;
    const char *const *rh;
    size_t nrh = router_header_names(client_gen(c)->cref->router, &rh);
    const char *bad = caller_check_head(conf, &req->head, rh, nrh);
    if (bad) {
        LOG_AT(CONF_LOG_INFO, "bad_request", client_id(c), NULL, "400 from %s: %s", client_ip(c),
               bad);
        client_send_error(c, 400, bad, NULL, NULL, false);
        return NULL;
    }
    if (!route) {
        answer_no_route(c, req);
        return NULL;
    }
    struct policy pol;
    policy_for(conf, route, &pol);
    if (pol.cors && cors_is_preflight(req->method, &req->head)) {
        /* Before require_token, methods and the limit: a browser's
         * preflight carries no credentials and asks about another method. */
        answer_preflight(c, &pol, route, req);
        return NULL;
    }
    int override = -1;
    if (route->methods) {
        const char *q = memchr(req->target, '?', req->target_len);
        size_t qlen = q ? req->target_len - (size_t)(q - req->target) - 1 : 0;
        override = caller_method_override(&req->head, q ? q + 1 : NULL, qlen);
    }
    if (!router_method_allowed(route, req->method) ||
        (override != -1 && (override < 0 || !router_method_allowed(route, (unsigned)override)))) {
        char allow[256], extra[300];
        router_allow(route, allow, sizeof allow);
        snprintf(extra, sizeof extra, "Allow: %s\r\n", allow);
        client_send_error(c, 405, "Method not allowed for this path", extra, NULL, false);
        return NULL;
    }
    if (route->auth != CONF_AUTH_NONE && caller_two_credentials(conf, &req->head)) {
        LOG_AT(CONF_LOG_INFO, "bad_request", client_id(c), NULL,
               "400 from %s: a credential in both %s and Authorization", client_ip(c),
               conf->token_header);
        client_send_error(c, 400, "Send one credential: Authorization or the token header",
                          NULL, NULL, false);
        return NULL;
    }
    size_t token_len = 0;
    const char *token = route->auth != CONF_AUTH_NONE
                            ? caller_credential(conf, &req->head, &token_len)
                            : caller_token(conf, &req->head, &token_len);
    if (route->auth == CONF_AUTH_NONE && route->require_token && !token) {
        client_send_error(c, 401, "Authentication required", "WWW-Authenticate: Bearer\r\n",
                          NULL, false);
        return NULL;
    }
    struct proxy *px = calloc(1, sizeof *px);
    if (!px)
        goto oom;
    px->c = c;
    px->w = client_worker(c);
    px->conf = conf;
    px->route = route;
    policy_for(conf, route, &px->pol);
    px->group = &client_gen(c)->ups->groups[route->upstream];
    px->req = evbuffer_new();
    px->timer = evtimer_new(px->w->base, px_timer_cb, px);
    if (!px->req || !px->timer)
        goto oom;
    px->copy_mode = true;
    px->has_body = req->has_body;
    px->body_done = !req->has_body;
    px->body_chunked = req->chunked;
    px->idempotent = is_idempotent(req->method);
    px->head_method = req->method == HTTP_HEAD;
    px->expect_continue = req->expect_continue && req->has_body && req->minor == 1;
    px->upgrade = wants_upgrade(req);
    if (px->upgrade) {
        const struct httphead_field *k = httphead_get(&req->head, "Sec-WebSocket-Key", NULL);
        if (k && k->value_len < sizeof px->ws_key) {
            memcpy(px->ws_key, k->value, k->value_len);
            px->ws_key_len = (uint8_t)k->value_len;
        }
    }
    if (build_request(px, req) != 0)
        goto oom;
    caller_client_ip(conf, client_peer(c), client_ip(c), &req->head, px->ip, sizeof px->ip);
    /* Any answer from here on goes through client_response_done, which clears
     * the exchange: so client_exchange tells whether it is still running. */
    client_set_exchange(c, px);
    if (route->auth == CONF_AUTH_NONE) {
        px_limit_start(px, token, token_len);
        return client_exchange(c);
    }
    struct rl_result blocked;
    if (px->w->limiter && limiter_auth_blocked(px->w->limiter, px->ip, &blocked)) {
        /* Past per_ip_auth_failures: no credential is even looked at. */
        metrics_auth(&px->w->metrics, METRICS_AUTH_KINDS - 1);
        LOG_AT(CONF_LOG_INFO, "auth_throttled", client_id(c), NULL,
               "429 for %s: too many failed authentications", px->ip);
        struct envelope_limit lim = {
            .set = true,
            .retry_after_s = blocked.retry_after_s,
            .limit = blocked.limit,
            .window_s = blocked.window_s,
        };
        char extra[64];
        snprintf(extra, sizeof extra, "Retry-After: %ld\r\n", blocked.retry_after_s);
        px_free(px);
        client_send_error_coded(c, 429, NULL, "Too many failed authentication attempts", extra,
                                NULL, 0, &lim);
        return NULL;
    }
    const struct httphead_field *org =
        conf->auth_org_request_header[0]
            ? httphead_get(&req->head, conf->auth_org_request_header, NULL)
            : NULL;
    struct auth_query aq = {
        .conf = conf,
        .keys = client_gen(c)->cref->auth,
        .route = route,
        .token = token,
        .token_len = token_len,
        .org_asked = org ? org->value : NULL,
        .org_asked_len = org ? org->value_len : 0,
    };
    struct auth_result ar;
    px_set_state(px, PX_AUTH);
    int done = auth_check(px->w->auth, px->w->limiter ? limiter_redis(px->w->limiter) : NULL, &aq,
                          &ar, px_auth_cb, px, &px->ap);
    if (done) {
        px_auth_decided(px, &ar);
    } else {
        /* Charged now and given back if it passes: otherwise every lookup
         * in flight at once would be a guess the brake never saw. */
        px->auth_asked_us = clock_us();
        if (px->w->limiter) {
            limiter_auth_failed(px->w->limiter, px->ip);
            px->auth_charged = true;
        }
    }
    return client_exchange(c);
oom:
    if (px)
        px_free(px);
    client_send_error(c, 503, "The gateway is out of memory", NULL, NULL, true);
    return NULL;
}

/* ---- connecting and sending ------------------------------------------------- */

static void maybe_pause_client(struct proxy *px)
{
    size_t pending = px->uc && px->connected ? evbuffer_get_length(conn_output(&px->uc->conn))
                     : px->head_open         ? (px->early ? evbuffer_get_length(px->early) : 0)
                                             : evbuffer_get_length(px->req);
    if (!px->client_paused && pending > PENDING_HIGH) {
        px->client_paused = true;
        client_pause_read(px->c);
    }
}

static void maybe_resume_client(struct proxy *px)
{
    if (!px->client_paused)
        return;
    size_t pending = px->uc && px->connected ? evbuffer_get_length(conn_output(&px->uc->conn))
                                             : evbuffer_get_length(px->req);
    if (pending <= PENDING_HIGH / 2) {
        px->client_paused = false;
        client_resume_read(px->c);
    }
}

/* Hand the buffered request to the connected upstream. */
static int px_send_pending(struct proxy *px)
{
    struct evbuffer *out = conn_output(&px->uc->conn);
    px->sent_any = true;
    if (!px->copy_mode)
        return evbuffer_add_buffer(out, px->req);
    /* Copy, keeping the original for a possible retry. */
    int n = evbuffer_peek(px->req, -1, NULL, NULL, 0);
    if (n <= 0)
        return 0;
    struct evbuffer_iovec vs[64];
    struct evbuffer_iovec *v = n <= 64 ? vs : calloc((size_t)n, sizeof *v);
    if (!v)
        return -1;
    evbuffer_peek(px->req, -1, NULL, v, n);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = evbuffer_add(out, v[i].iov_base, v[i].iov_len);
    if (v != vs)
        free(v);
    return rc;
}

static int px_up_write(struct proxy *px, const void *data, size_t len)
{
    int rc = 0;
    if (px->uc && px->connected) {
        rc = evbuffer_add(conn_output(&px->uc->conn), data, len);
        if (px->st == PX_WAITING && !evtimer_pending(px->timer, NULL))
            px_arm(px);  /* bytes owed to the upstream: its clock runs */
        if (px->copy_mode) {
            rc |= evbuffer_add(px->req, data, len);
            if (evbuffer_get_length(px->req) > RETRY_MAX) {
                /* Too large to replay: stop keeping a copy. */
                px->copy_mode = false;
                evbuffer_drain(px->req, evbuffer_get_length(px->req));
            }
        }
    } else if (px->head_open) {
        /* after the head, once it is ended; made for the few bodies that come first */
        if (!px->early && !(px->early = evbuffer_new()))
            return -1;
        rc = evbuffer_add(px->early, data, len);
    } else {
        rc = evbuffer_add(px->req, data, len);
        if (px->copy_mode && evbuffer_get_length(px->req) > RETRY_MAX)
            px->copy_mode = false;  /* still all here, but no longer a complete copy later */
    }
    maybe_pause_client(px);
    return rc;
}

/* The upstream connection is the exchange's now. 0, or -1 (its reading
 * could not be switched on: out of memory). */
static int px_attach(struct proxy *px)
{
    struct conn *cn = &px->uc->conn;
    conn_setcb(cn, up_read_cb, up_write_cb, up_event_cb, px);
    /* Upload progress is reported at half the pause mark: the client resumes there. */
    conn_set_write_low(cn, PENDING_HIGH / 2);
    return conn_read_enable(cn);
}

static void px_connected(struct proxy *px)
{
    px->connected = true;
    px->scan_pos = 0;
    px->scan_state = 0;
    if (px_send_pending(px) != 0) {
        px_fail_answer(px, 503, "The gateway is out of memory");
        return;
    }
    px_set_state(px, PX_WAITING);
    maybe_resume_client(px);
}

static void px_connect(struct proxy *px)
{
    struct client *c = px->c;
    uint64_t now = clock_ms();
    struct up_server *s = upstream_pick(px->group, now, px->tried);
    if (!s && px->attempt > 0)
        s = upstream_pick(px->group, now, 0);  /* every server tried: one that is up again */
    if (!s) {
        if (px->last_fail_status)
            px_fail_answer(px, px->last_fail_status, px->last_fail_why);
        else
            px_fail_answer(px, 503, "No healthy upstream server is available");
        return;
    }
    size_t idx = upstream_server_index(s);
    if (idx < 64)
        px->tried |= 1ull << idx;
    px->srv = s;
    client_note_server(c, s->addr->text);
    if (!px->up_start_us)
        px->up_start_us = clock_us();
    if (px->expect_continue && !px->continue_sent) {
        /* Like nginx: the gateway itself invites the body once it will take it. */
        px->continue_sent = true;
        const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
        evbuffer_add(client_output(c), msg, sizeof msg - 1);
        client_count_out(c, sizeof msg - 1);
    }
    px->uc = upstream_take_idle(s);
    if (px->uc) {
        metrics_upstream_conn(&px->w->metrics, METRICS_CONN_REUSED);
        if (px_attach(px) != 0) {
            px_fail_answer(px, 503, "The gateway is out of memory");
            return;
        }
        px_connected(px);
        return;
    }
    px->connected = false;
    px->uc = upstream_connect(s, &px->w->flushq);
    if (!px->uc) {
        upstream_server_failed(s, now, "connect failed");
        px->last_fail_status = 502;
        px->last_fail_why = "The upstream server refused the connection";
        if (px->attempt < px->group->cu->retries) {
            px->attempt++;
            px_set_state(px, PX_RETRY_WAIT);
            return;
        }
        px_fail_answer(px, 502, px->last_fail_why);
        return;
    }
    metrics_upstream_conn(&px->w->metrics, METRICS_CONN_NEW);
    if (px_attach(px) != 0) {
        px_fail_answer(px, 503, "The gateway is out of memory");
        return;
    }
    px_set_state(px, PX_CONNECTING);
}

/* An attempt failed before any response: retry if the rules allow, else answer. */
static void px_attempt_failed(struct proxy *px, enum px_fail kind, int status, const char *why)
{
    bool replayable = px->copy_mode || !px->sent_any;
    bool may = px->attempt < px->group->cu->retries && replayable &&
               (kind == FAIL_CONNECT || kind == FAIL_CONNECT_TIMEOUT || px->idempotent);
    struct upconn *uc = px->uc;
    px->uc = NULL;
    px->connected = false;
    if (uc)
        upstream_release(uc, false);
    px->last_fail_status = status;
    px->last_fail_why = why;
    metrics_upstream_error(&px->w->metrics, kind == FAIL_CONNECT ? METRICS_UP_CONNECT
                                            : kind == FAIL_CONNECT_TIMEOUT ? METRICS_UP_TIMEOUT
                                            : kind == FAIL_RESET ? METRICS_UP_RESET
                                                                 : METRICS_UP_INVALID);
    if (!may) {
        px_fail_answer(px, status, why);
        return;
    }
    px->attempt++;
    LOG_AT(CONF_LOG_INFO, "upstream_retry", client_id(px->c), NULL, "retry %u after: %s",
           px->attempt, why);
    px_set_state(px, PX_RETRY_WAIT);
}

/* ---- response ------------------------------------------------------------------ */

static bool skip_response_header(const struct proxy *px, const struct httphead_field *f,
                                 bool error_mode)
{
    return fwdhead_skip_response(px->conf, f, px->status, error_mode, px->rl_applied,
                                 px->pol.expose_upstream_5xx, px->pol.cors != NULL);
}

static void copy_value(char *dst, size_t cap, const struct httphead_field *f)
{
    size_t n = f->value_len < cap - 1 ? f->value_len : cap - 1;
    memcpy(dst, f->value, n);
    dst[n] = '\0';
}

static void px_finish(struct proxy *px)
{
    struct client *c = px->c;
    if (px->chunked_out) {
        evbuffer_add(client_output(c), "0\r\n\r\n", 5);
        client_count_out(c, 5);
    }
    bool reusable = px->resp_keepalive && !px->resp_until_eof && px->body_done &&
                    evbuffer_get_length(conn_output(&px->uc->conn)) == 0;
    upstream_release(px->uc, reusable);
    px->uc = NULL;
    client_note_upstream(c, -1, (double)(clock_us() - px->up_start_us) / 1000.0);
    px_free(px);
    client_response_done(c);
}

static void px_finish_error(struct proxy *px)
{
    struct client *c = px->c;
    struct normalize_opts o = {
        .profile = px->pol.profile,
        .expose_upstream_5xx = px->pol.expose_upstream_5xx,
        .max_error_body = px->pol.max_error_body,
        .code = policy_code(&px->pol, px->status),
    };
    size_t blen = evbuffer_get_length(px->errbody);
    const char *bdata = blen ? (const char *)evbuffer_pullup(px->errbody, -1) : NULL;
    struct normalize_input in = {
        .status = px->status,
        .content_type = px->ctype[0] ? px->ctype : NULL,
        .content_encoding = px->cenc[0] ? px->cenc : NULL,
        .retry_after = px->retry_after[0] ? px->retry_after : NULL,
        .body = bdata,
        .len = bdata ? blen : 0,
        .truncated = px->err_truncated,
        .request_id = client_id(c),
        .limit = NULL,
    };
    char *body = NULL;
    size_t len = 0;
    char code[64] = "";
    if (normalize_error_code(&o, &in, &body, &len, code, sizeof code) != 0) {
        body = NULL;
        len = 0;
    }
    /* The upstream's kept headers, then the gateway's limit: one run of lines. */
    char rl[RL_HEADERS_MAX + 1];
    struct headbuf h;
    headbuf_mem(&h, rl, RL_HEADERS_MAX);
    add_rl_headers(px, &h);
    if (!h.full && h.len)
        (void)evbuffer_add(px->err_headers, rl, h.len);
    size_t extra = evbuffer_get_length(px->err_headers);
    const char *lines = extra ? (const char *)evbuffer_pullup(px->err_headers, -1) : NULL;
    (void)client_answer_closes(c, false, false);
    client_write_envelope(c, px->status, code[0] ? code : policy_code(&px->pol, px->status),
                          lines, lines ? extra : 0, body, len);
    free(body);
    px_finish(px);
}

static int relay_body(void *arg, const char *at, size_t len)
{
    struct proxy *px = arg;
    struct client *c = px->c;
    if (px->error_mode) {
        size_t have = evbuffer_get_length(px->errbody);
        if (have >= px->pol.max_error_body) {
            px->err_truncated = true;
            return 0;
        }
        size_t take = len;
        if (have + take > px->pol.max_error_body) {
            take = px->pol.max_error_body - have;
            px->err_truncated = true;
        }
        return evbuffer_add(px->errbody, at, take) == 0 ? 0 : 1;
    }
    struct evbuffer *out = client_output(c);
    if (px->chunked_out) {
        char size[24];
        int n = snprintf(size, sizeof size, "%zx\r\n", len);
        evbuffer_add(out, size, (size_t)n);
        evbuffer_add(out, at, len);
        evbuffer_add(out, "\r\n", 2);
        client_count_out(c, (size_t)n + len + 2);
    } else {
        evbuffer_add(out, at, len);
        client_count_out(c, len);
    }
    return 0;
}

/* The response head to the client; UPGRADE: the 101's Upgrade field, whose
 * head says so instead of framing the body. False only when out of memory,
 * with nothing sent. */
static bool px_relay_head(struct proxy *px, const struct httpresp *r,
                          const struct httphead_field *upgrade)
{
    struct client *c = px->c;
    struct evbuffer *out = client_output(c);
    size_t before = evbuffer_get_length(out);
    const char *id = client_id(c);
    size_t cap = strlen(px->conf->corr_header) + strlen(id) + RL_HEADERS_MAX + 256 +
                 client_head_end_cap(c);
    for (size_t i = 0; i < r->head.n; i++)
        cap += r->head.f[i].name_len + r->head.f[i].value_len + 4;
    struct headbuf h;
    if (headbuf_reserve(&h, out, cap) != 0)
        return false;
    bool length = r->has_length && r->status != 204;  /* RFC 9110 8.6: never on a 204 */
    /* An HTTP/1.0 client reads a body of unknown length until the close. */
    bool until_close = !upgrade && !length && r->has_body && client_minor(c) == 0;
    (void)client_answer_closes(c, until_close, false);
    HB_LIT(&h, "HTTP/1.1 ");
    hb_u64(&h, (uint64_t)r->status);
    HB_LIT(&h, " ");
    hb_str(&h, envelope_reason(r->status));
    HB_LIT(&h, "\r\n");
    for (size_t i = 0; i < r->head.n; i++) {
        const struct httphead_field *f = &r->head.f[i];
        if (skip_response_header(px, f, false))
            continue;
        hb_field(&h, f->name, f->name_len, f->value, f->value_len);
    }
    hb_field(&h, px->conf->corr_header, strlen(px->conf->corr_header), id, strlen(id));
    add_rl_headers(px, &h);
    if (upgrade) {
        HB_LIT(&h, "Connection: upgrade\r\n");
        hb_field(&h, "Upgrade", 7, upgrade->value, upgrade->value_len);
    } else if (length) {
        px->length_out = true;
        HB_LIT(&h, "Content-Length: ");
        hb_u64(&h, r->content_length);
        HB_LIT(&h, "\r\n");
    } else if (r->has_body && !until_close) {
        px->chunked_out = true;
        HB_LIT(&h, "Transfer-Encoding: chunked\r\n");
    }
    client_head_end(c, &h, upgrade != NULL);
    if (headbuf_commit(&h) < 0)
        return false;
    client_count_out(c, evbuffer_get_length(out) - before);
    client_response_started(c, r->status);
    return true;
}

static bool px_tunnel_start(struct proxy *px, const struct httpresp *r)
{
    struct client *c = px->c;
    if (!px_relay_head(px, r, httphead_get(&r->head, "Upgrade", NULL))) {
        px_fail_answer(px, 503, "The gateway is out of memory");
        return false;
    }
    client_note_upstream(c, 101, -1);
    upstream_server_ok(px->srv);
    px->copy_mode = false;
    evbuffer_drain(px->req, evbuffer_get_length(px->req));
    px_set_state(px, PX_TUNNEL);
    /* Bytes the client sent after its request head are the new protocol's. */
    client_tunnel_start(c);
    return true;
}

/* The tunnel is over: the client gets what is still queued for it, then a
 * FIN; or a reset, when the upstream's side BROKE (an error, not a close). */
static void px_tunnel_end(struct proxy *px, bool broken)
{
    struct client *c = px->c;
    client_note_upstream(c, -1, (double)(clock_us() - px->up_start_us) / 1000.0);
    px_free(px);
    client_tunnel_end(c, broken);
}

/* The client closed its side: close the upstream's once it has every byte. */
static void px_tunnel_shut(struct proxy *px)
{
    if (!px->client_eof || px->upstream_shut || !px->uc ||
        evbuffer_get_length(conn_output(&px->uc->conn)) != 0)
        return;
    px->upstream_shut = true;
    /* A socket that cannot be shut is already broken: its read side
     * reports that, and ends the tunnel. */
    (void)conn_shutdown(&px->uc->conn);
}

int proxy_tunnel_input(struct proxy *px, struct evbuffer *in)
{
    if (evbuffer_add_buffer(conn_output(&px->uc->conn), in) != 0)
        return -1;
    px_arm(px);  /* the idle clock restarts with any byte */
    maybe_pause_client(px);
    return 0;
}

void proxy_tunnel_client_eof(struct proxy *px)
{
    px->client_eof = true;
    px_tunnel_shut(px);
}

/* A response head arrived (LEN bytes at the front of IN): returns false if px is gone. */
static bool px_on_head(struct proxy *px, struct evbuffer *in, const char *data, size_t len)
{
    struct client *c = px->c;
    struct httpresp r;
    const char *why = NULL;
    if (httpresp_parse(&r, data, len, px->head_method, &why) != 0) {
        LOG_AT(CONF_LOG_WARN, "upstream_invalid", client_id(c), NULL,
               "invalid response from %s: %s", px->srv->addr->text, why);
        metrics_upstream_error(&px->w->metrics, METRICS_UP_INVALID);
        px_fail_answer(px, 502, "The upstream server sent an invalid response");
        return false;
    }
    if (r.status < 200) {
        if (r.status == 101) {
            /* Switching is only for a request that asked, to a protocol named. */
            if (px->upgrade && fwdhead_switch_ok(px->ws_key, px->ws_key_len, &r.head))
                return px_tunnel_start(px, &r);
            LOG_AT(CONF_LOG_WARN, "upstream_invalid", client_id(c), NULL,
                   "101 from %s %s", px->srv->addr->text,
                   px->upgrade ? "not switching to WebSocket with the right Sec-WebSocket-Accept"
                               : "to a request with no upgrade");
            metrics_upstream_error(&px->w->metrics, METRICS_UP_INVALID);
            px_fail_answer(px, 502, "The upstream server sent an invalid response");
            return false;
        }
        return true;  /* interim response: skip it, the final one follows */
    }
    client_note_upstream(c, r.status, -1);
    if ((r.status == 502 || r.status == 503) && px->idempotent &&
        px->attempt < px->group->cu->retries && (px->copy_mode || !px->sent_any)) {
        px_attempt_failed(px, FAIL_STATUS, r.status,
                          r.status == 502 ? "The upstream server failed"
                                          : "The upstream service is unavailable");
        return false;
    }
    upstream_server_ok(px->srv);
    /* The response is under way: nothing will be replayed any more. */
    px->copy_mode = false;
    if (px->connected && px->sent_any)
        evbuffer_drain(px->req, evbuffer_get_length(px->req));
    px->status = r.status;
    px->resp_keepalive = r.keepalive;
    px->resp_until_eof = r.until_eof;
    if (r.status >= 400) {
        px->error_mode = true;
        px->errbody = evbuffer_new();
        px->err_headers = evbuffer_new();
        if (!px->errbody || !px->err_headers) {
            px_fail_answer(px, 503, "The gateway is out of memory");
            return false;
        }
        for (size_t i = 0; i < r.head.n; i++) {
            const struct httphead_field *f = &r.head.f[i];
            if (httphead_name_is(f, "Content-Type"))
                copy_value(px->ctype, sizeof px->ctype, f);
            else if (httphead_name_is(f, "Content-Encoding"))
                copy_value(px->cenc, sizeof px->cenc, f);
            else if (httphead_name_is(f, "Retry-After"))
                copy_value(px->retry_after, sizeof px->retry_after, f);
            if (skip_response_header(px, f, true))
                continue;
            evbuffer_add(px->err_headers, f->name, f->name_len);
            evbuffer_add(px->err_headers, ": ", 2);
            evbuffer_add(px->err_headers, f->value, f->value_len);
            evbuffer_add(px->err_headers, "\r\n", 2);
        }
        if (r.content_length > px->pol.max_error_body)
            px->err_truncated = true;
    } else if (!px_relay_head(px, &r, NULL)) {
        px_fail_answer(px, 503, "The gateway is out of memory");
        return false;
    }
    if (!r.has_body) {
        /* Consume the head first: a pooled connection must come back empty. */
        evbuffer_drain(in, len);
        if (px->error_mode)
            px_finish_error(px);
        else
            px_finish(px);
        return false;
    }
    httpbody_init(&px->rbody,
                  r.chunked ? HTTPBODY_CHUNKED : r.until_eof ? HTTPBODY_EOF : HTTPBODY_LENGTH,
                  r.content_length, 0, relay_body, px);
    px_set_state(px, PX_BODY);
    return true;
}

static void px_body_ended(struct proxy *px)
{
    if (px->error_mode)
        px_finish_error(px);
    else
        px_finish(px);
}

/*
 * The response broke off mid-body (framing error, close, timeout). A
 * captured error body is normalized as far as it got; a relayed one is cut
 * at the client too, with a reset, so it is never taken as complete.
 */
static void px_cut(struct proxy *px)
{
    client_note_upstream(px->c, -1, (double)(clock_us() - px->up_start_us) / 1000.0);
    if (px->error_mode) {
        px->err_truncated = true;
        px->resp_keepalive = false;
        px_finish_error(px);
        return;
    }
    struct client *c = px->c;
    /* A close-delimited body (HTTP/1.0 client, no length) would look whole
     * after a FIN: only a reset says it was cut. */
    bool framed = px->length_out || px->chunked_out;
    px_free(px);
    if (framed)
        client_cut(c);
    else
        client_abort(c);
}

static void up_read_cb(struct conn *cn, void *arg)
{
    struct proxy *px = arg;
    struct evbuffer *in = conn_input(cn);
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            return;
        if (px->st == PX_WAITING) {
            size_t want = avail < HTTPRESP_MAX_HEAD ? avail : HTTPRESP_MAX_HEAD;
            const char *data = (const char *)evbuffer_pullup(in, (ssize_t)want);
            size_t end = httphead_scan(data, want, &px->scan_pos, &px->scan_state);
            if (!end) {
                if (avail >= HTTPRESP_MAX_HEAD) {
                    LOG_AT(CONF_LOG_WARN, "upstream_invalid", client_id(px->c), NULL,
                           "response head from %s over %d bytes", px->srv->addr->text,
                           HTTPRESP_MAX_HEAD);
                    px_fail_answer(px, 502, "The upstream server sent an invalid response");
                }
                return;
            }
            bool alive = px_on_head(px, in, data, end);
            if (!alive)
                return;  /* px is gone, and so may be its conn */
            evbuffer_drain(in, end);
            px->scan_pos = 0;
            px->scan_state = 0;
            continue;
        }
        if (px->st == PX_TUNNEL) {
            struct evbuffer *out = client_output(px->c);
            if (evbuffer_add_buffer(out, in) != 0) {
                px_tunnel_end(px, true);
                return;
            }
            client_count_out(px->c, avail);
            px_arm(px);  /* the idle clock restarts with any byte */
            if (evbuffer_get_length(out) > CLIENT_OUT_HIGH) {
                px->upstream_paused = true;  /* until the client drains it */
                conn_read_disable(&px->uc->conn);
            }
            return;
        }
        if (px->st != PX_BODY)
            return;
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            return;
        size_t n = httpbody_feed(&px->rbody, v.iov_base, v.iov_len);
        if (n == (size_t)-1) {
            LOG_AT(CONF_LOG_WARN, "upstream_invalid", client_id(px->c), NULL,
                   "invalid response body framing from %s", px->srv->addr->text);
            metrics_upstream_error(&px->w->metrics, METRICS_UP_INVALID);
            px_cut(px);
            return;
        }
        evbuffer_drain(in, n);
        if (px->rbody.done) {
            px_body_ended(px);
            return;
        }
        px_arm(px);  /* idle timeout restarts with progress */
        if (!px->error_mode &&
            evbuffer_get_length(client_output(px->c)) > CLIENT_OUT_HIGH) {
            /* The client is the slow one now: stop the upstream's clock and
             * start the client's send deadline instead. */
            px->upstream_paused = true;
            conn_read_disable(&px->uc->conn);
            evtimer_del(px->timer);
            client_send_deadline(px->c, true);
            return;
        }
    }
}

static void up_write_cb(struct conn *cn, void *arg)
{
    struct proxy *px = arg;
    (void)cn;
    /* Upload progress re-arms the response deadline, or drops it when the
     * upstream has taken everything it was given so far. */
    if (px->st == PX_WAITING && !px->body_done)
        px_arm(px);
    if (px->st == PX_TUNNEL)
        px_tunnel_shut(px);
    maybe_resume_client(px);  /* last: resuming may end the exchange and free px */
}

static void up_event_cb(struct conn *cn, short what, void *arg)
{
    struct proxy *px = arg;
    int err = errno;  /* the socket's error, or EPROTO for a failed TLS handshake */
    if (what & CONN_EV_CONNECTED) {
        px_connected(px);
        return;
    }
    if (px->st == PX_CONNECTING && err == EPROTO && px->group->tls) {
        /* Not this server's fault alone (a CA or name mismatch is the
         * conf's): said by name, then treated as a failed connect. */
        const char *why = conn_tls_error(cn);
        const char *fields[] = {"upstream", px->group->cu->name, "server", px->srv->addr->text,
                                "reason", why, NULL};
        LOG_AT(CONF_LOG_WARN, "upstream_tls", client_id(px->c), fields,
               "TLS with upstream server %s failed: %s", px->srv->addr->text, why);
        char detail[160];
        snprintf(detail, sizeof detail, "TLS handshake failed: %s", why);
        upstream_server_failed(px->srv, clock_ms(), detail);
        px_attempt_failed(px, FAIL_CONNECT, 502, "The TLS handshake with the upstream server failed");
        return;
    }
    if (px->st == PX_CONNECTING) {
        upstream_server_failed(px->srv, clock_ms(), "connection refused");
        px_attempt_failed(px, FAIL_CONNECT, 502, "The upstream server refused the connection");
        return;
    }
    if (px->st == PX_WAITING) {
        size_t got = evbuffer_get_length(conn_input(cn));
        if (got == 0) {
            px_attempt_failed(px, FAIL_RESET, 502,
                              "The upstream server closed the connection without answering");
        } else {
            metrics_upstream_error(&px->w->metrics, METRICS_UP_INVALID);
            px_fail_answer(px, 502, "The upstream server sent an invalid response");
        }
        return;
    }
    if (px->st == PX_TUNNEL) {
        /* The upstream closed its side, or broke: so ends the tunnel. */
        px_tunnel_end(px, (what & CONN_EV_ERROR) != 0);
        return;
    }
    if (px->st == PX_BODY) {
        if ((what & CONN_EV_EOF) && px->resp_until_eof) {
            /* Let the parser see EOF: it ends a read-until-close body. */
            httpbody_feed(&px->rbody, NULL, 0);
            px->resp_keepalive = false;
            px_body_ended(px);
            return;
        }
        metrics_upstream_error(&px->w->metrics, METRICS_UP_RESET);
        LOG_AT(CONF_LOG_WARN, "upstream_cut", client_id(px->c), NULL,
               "upstream %s closed the connection mid-body", px->srv->addr->text);
        px_cut(px);
    }
}

static void px_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy *px = arg;
    (void)fd;
    (void)what;
    switch (px->st) {
    case PX_AUTH:
    case PX_LIMIT:
        return;
    case PX_RETRY_WAIT:
        px_connect(px);
        return;
    case PX_CONNECTING:
        upstream_server_failed(px->srv, clock_ms(), "connect timeout");
        px_attempt_failed(px, FAIL_CONNECT_TIMEOUT, 504,
                          "The upstream server did not accept the connection in time");
        return;
    case PX_WAITING:
        (void)upstream_server_timed_out(px->srv, clock_ms());  /* kept up if alone */
        metrics_upstream_error(&px->w->metrics, METRICS_UP_TIMEOUT);
        LOG_AT(CONF_LOG_WARN, "upstream_timeout", client_id(px->c), NULL,
               "no response from %s within %llu ms", px->srv->addr->text,
               (unsigned long long)px->pol.timeout_ms);
        px_fail_answer(px, 504, "The upstream server did not answer in time");
        return;
    case PX_BODY:
        metrics_upstream_error(&px->w->metrics, METRICS_UP_TIMEOUT);
        LOG_AT(CONF_LOG_WARN, "upstream_timeout", client_id(px->c), NULL,
               "response body from %s stalled for %llu ms", px->srv->addr->text,
               (unsigned long long)px->pol.timeout_ms);
        px_cut(px);
        return;
    case PX_TUNNEL:
        LOG_AT(CONF_LOG_INFO, "tunnel_timeout", client_id(px->c), NULL,
               "tunnel to %s idle for %llu ms; closed", px->srv->addr->text,
               (unsigned long long)px->group->cu->tunnel_timeout_ms);
        px_tunnel_end(px, false);
        return;
    }
}

/* ---- the client's side ------------------------------------------------------------ */

int proxy_body(struct proxy *px, const char *data, size_t len)
{
    if (px->body_chunked) {
        char hdr[24];
        int n = snprintf(hdr, sizeof hdr, "%zx\r\n", len);
        if (px_up_write(px, hdr, (size_t)n) || px_up_write(px, data, len) ||
            px_up_write(px, "\r\n", 2))
            return -1;
        return 0;
    }
    return px_up_write(px, data, len) ? -1 : 0;
}

void proxy_body_done(struct proxy *px)
{
    px->body_done = true;
    if (px->body_chunked)
        (void)px_up_write(px, "0\r\n\r\n", 5);
    if (px->st == PX_WAITING)
        px_arm(px);  /* the response deadline starts now */
}

void proxy_client_gone(struct proxy *px)
{
    if (px->up_start_us)
        client_note_upstream(px->c, -1, (double)(clock_us() - px->up_start_us) / 1000.0);
    if (px->uc) {
        upstream_release(px->uc, false);
        px->uc = NULL;
    }
    px_free(px);
}

void proxy_client_drained(struct proxy *px)
{
    if (px->upstream_paused && px->uc) {
        px->upstream_paused = false;
        client_send_deadline(px->c, false);
        if (conn_read_enable(&px->uc->conn) != 0) {
            /* Out of memory: the rest of the response cannot be read. */
            if (px->st == PX_TUNNEL)
                px_tunnel_end(px, true);
            else
                px_cut(px);
            return;
        }
        px_arm(px);  /* its idle clock restarts */
        up_read_cb(&px->uc->conn, px);
    }
}

static void px_free(struct proxy *px)
{
    if (px->ap) {
        auth_cancel(px->ap);
        /* never judged (the client went, or the exchange ended): not a guess */
        if (px->auth_charged && px->w->limiter)
            limiter_auth_refund(px->w->limiter, px->ip);
    }
    if (px->rlp)
        limiter_cancel(px->rlp);
    if (px->early)
        evbuffer_free(px->early);
    if (px->uc)
        upstream_release(px->uc, false);
    if (px->timer)
        event_free(px->timer);
    if (px->req)
        evbuffer_free(px->req);
    if (px->errbody)
        evbuffer_free(px->errbody);
    if (px->err_headers)
        evbuffer_free(px->err_headers);
    free(px);
}
