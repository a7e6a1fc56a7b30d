/*
 * caller: token, client address and the end-to-end rule for the headers the
 * gateway decides on. Every answer here is a policy input (which limit,
 * whether require_token holds), so every ambiguity is resolved toward the
 * reading the upstream would make, or refused.
 */
#include "caller.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The headers the gateway decides on, besides the token and correlation ones. */
static const char *const decided[] = {
    "Host", "Content-Length", "Transfer-Encoding", "X-Forwarded-For", "X-Forwarded-Proto",
    "Forwarded",
};

/*
 * What an upstream framework reads as the request's method or path or as
 * the client's address, besides the decided headers: their '_' spellings
 * are refused too, and the forwarding ones are dropped unless a trusted
 * proxy sent them (fwdhead.c).
 */
static const char *const overrides[] = {
    "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override",
};
static const char *const rewrites[] = {"X-Original-URL", "X-Rewrite-URL"};
static const char *const forwarding[] = {
    "X-Real-IP", "True-Client-IP", "X-Client-IP", "CF-Connecting-IP", "Fastly-Client-IP",
    "X-Cluster-Client-IP", "X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Prefix",
    "X-Forwarded-Server", "X-Original-Forwarded-For",
    /* "this came over HTTPS" in other spellings: Rack reads X-Forwarded-Ssl
     * before X-Forwarded-Proto, CodeIgniter Front-End-Https, IIS ARR
     * X-ARR-SSL; and the host claims beside X-Forwarded-Host */
    "X-Forwarded-Ssl", "Front-End-Https", "X-Forwarded-Scheme", "X-Url-Scheme",
    "X-Forwarded-Protocol", "X-Scheme", "CloudFront-Forwarded-Proto", "X-ARR-SSL",
    "X-Forwarded", "X-Original-Host", "X-Host",
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static bool in_list(const struct httphead_field *f, const char *const *names, size_t n,
                    bool (*eq)(const struct httphead_field *, const char *))
{
    for (size_t k = 0; k < n; k++)
        if (eq(f, names[k]))
            return true;
    return false;
}

bool caller_is_forwarding(const struct httphead_field *f)
{
    return in_list(f, forwarding, N_OF(forwarding), httphead_name_is) ||
           httphead_name_is(f, "Forwarded");
}

bool caller_is_rewrite(const struct httphead_field *f)
{
    return in_list(f, rewrites, N_OF(rewrites), httphead_name_is);
}

/* Is NAME one of the headers the gateway decides on? EQ compares. */
static bool is_decided(const struct conf *conf, const struct httphead_field *f,
                       bool (*eq)(const struct httphead_field *, const char *))
{
    if (eq(f, conf->token_header) || eq(f, conf->corr_header))
        return true;
    /* auth: the organization a caller asks for, and the identity headers
     * only the gateway writes (X_Auth_Subject would reach a WSGI app as
     * the HTTP_X_AUTH_SUBJECT the gateway strips) */
    const char *auth_names[] = {conf->auth_org_request_header, conf->auth_subject_header,
                                conf->auth_org_header, conf->auth_scopes_header};
    for (size_t k = 0; k < sizeof auth_names / sizeof auth_names[0]; k++)
        if (auth_names[k][0] && eq(f, auth_names[k]))
            return true;
    for (size_t k = 0; k < sizeof decided / sizeof decided[0]; k++)
        if (eq(f, decided[k]))
            return true;
    for (size_t k = 0; k < conf->n_accept; k++)
        if (eq(f, conf->accept[k]))
            return true;
    return false;
}

/* Does Connection field F name NAME? */
static bool conn_names(const struct httphead_field *f, const char *name)
{
    return name[0] && httphead_list_has(f->value, f->value_len, name);
}

/*
 * Is F's name NAME once '_' is read as '-'? CGI, WSGI, Rack and PHP turn
 * both into HTTP_X_FORWARDED_FOR: "X_Forwarded_For" is, to them, the
 * header the gateway did not read.
 */
static bool underscore_alias(const struct httphead_field *f, const char *name)
{
    size_t n = strlen(name);
    if (f->name_len != n || !memchr(f->name, '_', n))
        return false;
    for (size_t i = 0; i < n; i++) {
        char a = f->name[i] == '_' ? '-' : f->name[i];
        char b = name[i];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z')
            b = (char)(b - 'A' + 'a');
        if (a != b)
            return false;
    }
    return true;
}

/* Is F one of the headers routes select on (match_header), by EQ? */
static bool is_route_header(const struct httphead_field *f, const char *const *names, size_t n,
                            bool (*eq)(const struct httphead_field *, const char *))
{
    for (size_t k = 0; k < n; k++)
        if (eq(f, names[k]))
            return true;
    return false;
}

const char *caller_check_head(const struct conf *conf, const struct httphead *head,
                              const char *const *route_headers, size_t n_route_headers)
{
    size_t tokens = 0;
    (void)httphead_get(head, conf->token_header, &tokens);
    if (tokens > 1)
        return "more than one token header";
    /* Where a JWT comes when token_header is another header, and the org a
     * key is checked against: one copy, or the upstream may read another. */
    size_t auths = 0, orgs = 0;
    (void)httphead_get(head, "Authorization", &auths);
    if (auths > 1)
        return "more than one Authorization header";
    if (conf->auth_org_request_header[0])
        (void)httphead_get(head, conf->auth_org_request_header, &orgs);
    if (orgs > 1)
        return "more than one line of the organization header";
    /* Upstreams take the first line, or the last, or join them: a route
     * chosen on one copy would serve the request another copy describes. */
    for (size_t k = 0; k < n_route_headers; k++) {
        size_t lines = 0;
        (void)httphead_get(head, route_headers[k], &lines);
        if (lines > 1)
            return "more than one line of a header routes select on";
    }
    for (size_t i = 0; i < head->n; i++) {
        const struct httphead_field *f = &head->f[i];
        /* A route chosen on a header the upstream then never sees (hop-by-hop
         * by Connection) or reads under another spelling would serve one
         * route's request under another's policy. */
        if (httphead_name_is(f, "Connection") &&
            (is_decided(conf, f, conn_names) ||
             is_route_header(f, route_headers, n_route_headers, conn_names)))
            return "Connection names a header the gateway decides on";
        if (memchr(f->name, '_', f->name_len) &&
            (is_decided(conf, f, underscore_alias) ||
             is_route_header(f, route_headers, n_route_headers, underscore_alias) ||
             in_list(f, overrides, N_OF(overrides), underscore_alias) ||
             in_list(f, rewrites, N_OF(rewrites), underscore_alias) ||
             in_list(f, forwarding, N_OF(forwarding), underscore_alias)))
            return "underscore spelling of a header the gateway decides on";
    }
    return NULL;
}

/* The http_parser method named by TEXT[0..n) (any case), or -2. */
static int method_named(const char *text, size_t n)
{
    for (unsigned k = 0; k < 64; k++) {
        const char *name = http_method_str((enum http_method)k);
        if (strcmp(name, "<unknown>") != 0 && strlen(name) == n &&
            strncasecmp(name, text, n) == 0)
            return (int)k;
    }
    return -2;
}

/* Fold method M into *METHOD: false when two disagree or one is unknown. */
static bool fold(int *method, int m)
{
    if (m < 0 || (*method >= 0 && m != *method))
        return false;
    *method = m;
    return true;
}

/*
 * Decode a form-encoded query part S[0..n) ('+' is a space, %XX a byte)
 * into OUT (CAP bytes). KEY: also as PHP names variables, the spelling
 * Symfony and Laravel read _method in: ' ', '.' and '[' read as '_', a
 * NUL ends the name. (PHP drops leading spaces; counting them as '_' too
 * errs toward checking.) False when it does not fit.
 */
static bool form_decode(const char *s, size_t n, bool key, char *out, size_t cap, size_t *len)
{
    size_t o = 0;
    for (size_t k = 0; k < n; k++) {
        int c = (unsigned char)s[k];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && n - k > 2 && httphead_hexval((unsigned char)s[k + 1]) >= 0 &&
                   httphead_hexval((unsigned char)s[k + 2]) >= 0) {
            c = httphead_hexval((unsigned char)s[k + 1]) * 16 +
                httphead_hexval((unsigned char)s[k + 2]);
            k += 2;
        }
        if (key) {
            if (c == '\0')
                break;
            if (c == ' ' || c == '.' || c == '[')
                c = '_';
        }
        if (o == cap)
            return false;
        out[o++] = (char)c;
    }
    *len = o;
    return true;
}

/*
 * "_method=VALUE" in the query, as frameworks read it (the key and value
 * decoded, ';' a separator as well as '&'): -1 none, -2 refused.
 */
static int query_override(const char *q, size_t n, int method)
{
    size_t i = 0;
    while (i < n) {
        size_t end = i;
        while (end < n && q[end] != '&' && q[end] != ';')
            end++;
        const char *eq = memchr(q + i, '=', end - i);
        char key[16], v[24];
        size_t kl = 0, vl = 0;
        if (eq && form_decode(q + i, (size_t)(eq - q) - i, true, key, sizeof key, &kl) &&
            kl == 7 && memcmp(key, "_method", 7) == 0) {
            if (!form_decode(eq + 1, (size_t)(q + end - eq) - 1, false, v, sizeof v, &vl) ||
                !fold(&method, method_named(v, vl)))
                return -2;
        }
        i = end + 1;
    }
    return method;
}

int caller_method_override(const struct httphead *head, const char *query, size_t query_len)
{
    int method = -1;
    for (size_t i = 0; i < head->n; i++) {
        const struct httphead_field *f = &head->f[i];
        if (in_list(f, overrides, N_OF(overrides), httphead_name_is) &&
            !fold(&method, method_named(f->value, f->value_len)))
            return -2;  /* unknown, or two that disagree */
    }
    return query ? query_override(query, query_len, method) : method;
}

/* F's value, or with BEARER the token after "Bearer " (Basic and friends
 * are not bearer tokens); NULL when there is none. */
static const char *token_of(const struct httphead_field *f, bool bearer, size_t *len)
{
    if (!f || f->value_len == 0)
        return NULL;
    const char *v = f->value;
    size_t n = f->value_len;
    if (bearer) {
        if (n > 7 && strncasecmp(v, "Bearer", 6) == 0 && (v[6] == ' ' || v[6] == '\t')) {
            v += 7;
            n -= 7;
            while (n && (*v == ' ' || *v == '\t')) {
                v++;
                n--;
            }
        } else {
            return NULL;
        }
    }
    if (n == 0)
        return NULL;
    *len = n;
    return v;
}

const char *caller_token(const struct conf *conf, const struct httphead *head, size_t *len)
{
    return token_of(httphead_get(head, conf->token_header, NULL),
                    strcasecmp(conf->token_header, "Authorization") == 0, len);
}

bool caller_two_credentials(const struct conf *conf, const struct httphead *head)
{
    if (strcasecmp(conf->token_header, "Authorization") == 0)
        return false;
    const struct httphead_field *a = httphead_get(head, "Authorization", NULL);
    const struct httphead_field *t = httphead_get(head, conf->token_header, NULL);
    return a && a->value_len && t && t->value_len;
}

const char *caller_credential(const struct conf *conf, const struct httphead *head, size_t *len)
{
    const char *t = caller_token(conf, head, len);
    if (!t && strcasecmp(conf->token_header, "Authorization") != 0)
        t = token_of(httphead_get(head, "Authorization", NULL), true, len);
    return t;
}

/* Is TEXT[0..n) an IPv4 or IPv6 address? Fills SS when it is. */
static bool parse_ip(const char *text, size_t n, struct sockaddr_storage *ss, char *ip,
                     size_t cap)
{
    if (n == 0 || n >= cap)
        return false;
    memcpy(ip, text, n);
    ip[n] = '\0';
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        return true;
    }
    /* "1.2.3.4:5678" and "[2001:db8::1]:5678", as some load balancers write
     * them (RFC 7239 node syntax): the address without its port. */
    char *close = ip[0] == '[' ? strchr(ip, ']') : NULL;
    char *colon = strchr(ip, ':');
    if (close && (close[1] == '\0' || close[1] == ':')) {
        *close = '\0';
        memmove(ip, ip + 1, (size_t)(close - ip));
        if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
            return true;
        }
    } else if (colon && !strchr(colon + 1, ':')) {
        *colon = '\0';
        if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
            return true;
        }
    }
    return false;
}

void caller_client_ip(const struct conf *conf, const struct sockaddr *peer, const char *peer_ip,
                      const struct httphead *head, char *out, size_t cap)
{
    snprintf(out, cap, "%s", peer_ip);
    if (conf->n_trusted_proxies == 0 || !conf_is_trusted_proxy(conf, peer))
        return;
    /* RFC 9110 5.3: the lines of a list header are one list, in order; each
     * proxy appends, so the last element is the nearest hop. */
    for (size_t i = head->n; i-- > 0;) {
        const struct httphead_field *f = &head->f[i];
        if (!httphead_name_is(f, "X-Forwarded-For"))
            continue;
        const char *v = f->value;
        size_t end = f->value_len;
        while (end > 0) {
            size_t start = end;
            while (start > 0 && v[start - 1] != ',')
                start--;
            size_t a = start, z = end;
            while (a < z && (v[a] == ' ' || v[a] == '\t'))
                a++;
            while (z > a && (v[z - 1] == ' ' || v[z - 1] == '\t'))
                z--;
            end = start ? start - 1 : 0;
            if (z == a)
                continue;  /* an empty element ("a,,b") says nothing */
            struct sockaddr_storage ss;
            char ip[CALLER_IP_MAX];
            if (!parse_ip(v + a, z - a, &ss, ip, sizeof ip))
                return;  /* junk in the chain: stop at the last address we believed */
            snprintf(out, cap, "%s", ip);
            if (!conf_is_trusted_proxy(conf, (const struct sockaddr *)&ss))
                return;
        }
    }
}
