/*
 * cors: origin matching and the CORS header lines; see cors.h for the
 * decisions. Conf entries are parsed with the same parser as request
 * origins (plus the "*." wildcard) at each match: at most CONF_MAX_ORIGINS
 * short strings, and no second normal form to keep in step with conf.c.
 */
#include "cors.h"

#include <string.h>
#include <strings.h>

/* A parsed serialized origin; host and scheme point into the text. */
struct origin {
    const char *scheme, *host;
    size_t scheme_len, host_len;
    unsigned port;              /* 0: the scheme's default */
    bool ip6;                   /* "[...]" */
    bool wild;                  /* a conf entry's "*.": host is what must follow the dot */
};

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_label_char(unsigned char c)
{
    /* LDH, and '_' which the URL standard lets through in special hosts. */
    return is_alpha(c) || is_digit(c) || c == '-' || c == '_';
}

static bool is_ip6_char(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

/* The default port of scheme S[0..n), or 0 for a scheme without one. */
static unsigned default_port(const char *s, size_t n)
{
    if ((n == 4 && strncasecmp(s, "http", 4) == 0) || (n == 2 && strncasecmp(s, "ws", 2) == 0))
        return 80;
    if ((n == 5 && strncasecmp(s, "https", 5) == 0) || (n == 3 && strncasecmp(s, "wss", 3) == 0))
        return 443;
    return 0;
}

/*
 * Parse S[0..len) as scheme "://" host [":" port]. ENTRY: a conf entry,
 * whose host may start with "*.". Everything the grammar does not name is
 * refused, so whatever parses is safe to write back in a header.
 */
static bool parse_origin(const char *s, size_t len, bool entry, struct origin *o)
{
    memset(o, 0, sizeof *o);
    if (len == 0 || len >= CONF_ORIGIN_MAX)
        return false;
    size_t i = 0;
    if (!is_alpha((unsigned char)s[0]))
        return false;
    while (i < len && (is_alpha((unsigned char)s[i]) || is_digit((unsigned char)s[i]) ||
                       s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    o->scheme = s;
    o->scheme_len = i;
    if (len - i < 3 || memcmp(s + i, "://", 3) != 0)
        return false;
    i += 3;
    if (i < len && s[i] == '[') {
        size_t start = ++i;
        while (i < len && is_ip6_char((unsigned char)s[i]))
            i++;
        if (i >= len || s[i] != ']' || i - start < 2)
            return false;
        o->host = s + start;
        o->host_len = i - start;
        o->ip6 = true;
        i++;
    } else {
        if (entry && len - i >= 2 && s[i] == '*' && s[i + 1] == '.') {
            o->wild = true;
            i += 2;
        }
        size_t start = i, label = 0;
        for (; i < len && s[i] != ':'; i++) {
            if (s[i] == '.') {
                if (label == 0)
                    return false;   /* empty label: "..", a leading or trailing dot */
                label = 0;
            } else if (is_label_char((unsigned char)s[i]) && label < 63) {
                label++;
            } else {
                return false;
            }
        }
        if (label == 0 || i - start > 253)
            return false;
        o->host = s + start;
        o->host_len = i - start;
    }
    if (i < len) {
        if (s[i] != ':')
            return false;
        i++;
        size_t digits = len - i;
        if (digits == 0 || digits > 5 || s[i] == '0')
            return false;
        unsigned port = 0;
        for (; i < len; i++) {
            if (!is_digit((unsigned char)s[i]))
                return false;
            port = port * 10 + (unsigned)(s[i] - '0');
        }
        if (port > 65535)
            return false;
        o->port = port == default_port(o->scheme, o->scheme_len) ? 0 : port;
    }
    return true;
}

/* Does the last label of HOST read as a number (the URL standard's IPv4 test)? */
static bool ends_in_number(const char *host, size_t len)
{
    size_t i = len;
    while (i > 0 && host[i - 1] != '.')
        i--;
    const char *l = host + i;
    size_t n = len - i;
    if (n >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X'))
        return true;
    for (size_t k = 0; k < n; k++)
        if (!is_digit((unsigned char)l[k]))
            return false;
    return true;
}

/* Does the conf entry E allow the request origin R? */
static bool entry_allows(const struct origin *e, const struct origin *r)
{
    if (e->scheme_len != r->scheme_len || strncasecmp(e->scheme, r->scheme, r->scheme_len) != 0 ||
        e->port != r->port || e->ip6 != r->ip6)
        return false;
    if (!e->wild)
        return e->host_len == r->host_len && strncasecmp(e->host, r->host, r->host_len) == 0;
    if (r->ip6 || ends_in_number(r->host, r->host_len) || r->host_len < e->host_len + 2)
        return false;
    size_t at = r->host_len - e->host_len;
    return r->host[at - 1] == '.' && strncasecmp(r->host + at, e->host, e->host_len) == 0;
}

enum match { MATCH_NONE, MATCH_ANY, MATCH_LISTED };

/*
 * How C allows ORIGIN[0..len): by an entry naming it (LISTED), only by
 * "*" (ANY), or not; *V gets the verdict.
 */
static enum match origin_match(const struct conf_cors *c, const char *origin, size_t len,
                               enum cors_verdict *v)
{
    struct origin r = {0};
    bool null = origin && len == 4 && memcmp(origin, "null", 4) == 0;
    if (!origin || (!null && !parse_origin(origin, len, false, &r))) {
        *v = CORS_NO_ORIGIN;
        return MATCH_NONE;
    }
    enum match m = MATCH_NONE;
    for (size_t i = 0; i < c->n_origins && i < CONF_MAX_ORIGINS; i++) {
        const char *e = c->origins[i];
        size_t el = strnlen(e, CONF_ORIGIN_MAX);
        struct origin eo;
        if (null) {
            if (el == 4 && memcmp(e, "null", 4) == 0) {
                m = MATCH_LISTED;
                break;
            }
        } else if (el == 1 && e[0] == '*') {
            m = MATCH_ANY;  /* a listed entry further on still wins */
        } else if (parse_origin(e, el, true, &eo) && entry_allows(&eo, &r)) {
            m = MATCH_LISTED;
            break;
        }
    }
    *v = m == MATCH_NONE ? CORS_ORIGIN_DENIED : CORS_ALLOWED;
    return m;
}

bool cors_origin_allowed(const struct conf_cors *c, const char *origin, size_t len)
{
    enum cors_verdict v;
    return c->set && origin_match(c, origin, len, &v) != MATCH_NONE;
}

const char *cors_verdict_str(enum cors_verdict v)
{
    switch (v) {
    case CORS_ALLOWED:
        return "allowed";
    case CORS_OFF:
        return "off";
    case CORS_NO_ORIGIN:
        return "no origin";
    case CORS_ORIGIN_DENIED:
        return "origin denied";
    case CORS_METHOD_DENIED:
        return "method denied";
    case CORS_HEADERS_DENIED:
        return "headers denied";
    }
    return "?";
}

const char *cors_request_origin(const struct httphead *req, size_t *len)
{
    size_t n;
    const struct httphead_field *f = httphead_get(req, "Origin", &n);
    if (!f || n != 1)
        return NULL;
    *len = f->value_len;
    return f->value;
}

bool cors_is_preflight(enum http_method method, const struct httphead *req)
{
    return method == HTTP_OPTIONS && httphead_get(req, "Origin", NULL) &&
           httphead_get(req, "Access-Control-Request-Method", NULL);
}

/* http_parser's name for method bit M, or NULL when it has none. */
static const char *method_name(unsigned m)
{
    const char *name = http_method_str((enum http_method)m);
    for (const char *p = name; *p; p++)
        if (!httphead_is_tchar((unsigned char)*p))
            return NULL;  /* "<unknown>" past the table's end */
    return *name ? name : NULL;
}

/* The method bit of NAME[0..len), matched exactly (Fetch compares bytes), or -1. */
static int method_bit(const char *name, size_t len)
{
    for (unsigned m = 0; m < 64; m++) {
        const char *mn = method_name(m);
        if (mn && strlen(mn) == len && memcmp(mn, name, len) == 0)
            return (int)m;
    }
    return -1;
}

static bool is_token(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!httphead_is_tchar((unsigned char)s[i]))
            return false;
    return true;
}

/* Printable ASCII and SP only: what a conf text may put in a value. */
static bool is_plain_value(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

#define ACAO "Access-Control-Allow-Origin: "
#define ACAC "Access-Control-Allow-Credentials: true\r\n"
#define ACAM "Access-Control-Allow-Methods: "
#define ACAH "Access-Control-Allow-Headers: "
#define ACMA "Access-Control-Max-Age: "
#define ACEH "Access-Control-Expose-Headers: "
#define VARY_PREFLIGHT                                                                             \
    "Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers\r\n"
#define VARY "Vary: Origin\r\n"
#define LIT_LEN(lit) (sizeof(lit) - 1)

size_t cors_headers_cap(const struct conf_cors *c, const char *const *expose, size_t n_expose)
{
    size_t methods = 0;
    for (unsigned m = 0; m < 64; m++) {
        const char *mn = method_name(m);
        if (mn)
            methods += strlen(mn) + 2;
    }
    size_t headers = strnlen(c->headers, sizeof c->headers);
    if (headers < CORS_ECHO_MAX)
        headers = CORS_ECHO_MAX;
    size_t names = 0;
    for (size_t i = 0; i < n_expose; i++)
        names += (expose[i] ? strlen(expose[i]) : 0) + 2;
    return LIT_LEN(VARY_PREFLIGHT) + LIT_LEN(ACAO) + CONF_ORIGIN_MAX + 2 + LIT_LEN(ACAC) +
           LIT_LEN(ACAM) + methods + 2 + LIT_LEN(ACAH) + headers + 2 + LIT_LEN(ACMA) +
           HB_U64_DIGITS + 2 + LIT_LEN(ACEH) + names + 2;
}

/*
 * The request's Access-Control-Request-Headers, every line of it, as its
 * tokens joined by ", " into OUT[0..CORS_ECHO_MAX): false if an element is
 * not a token or the list does not fit. Empty elements are skipped (RFC
 * 9110 5.6.1); no line at all is an empty list.
 */
static bool echo_headers(const struct httphead *req, char *out, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < req->n; i++) {
        const struct httphead_field *f = &req->f[i];
        if (!httphead_name_is(f, "Access-Control-Request-Headers"))
            continue;
        size_t k = 0;
        while (k <= f->value_len) {
            const char *comma = memchr(f->value + k, ',', f->value_len - k);
            size_t end = comma ? (size_t)(comma - f->value) : f->value_len;
            size_t a = k, b = end;
            while (a < b && (f->value[a] == ' ' || f->value[a] == '\t'))
                a++;
            while (b > a && (f->value[b - 1] == ' ' || f->value[b - 1] == '\t'))
                b--;
            if (b > a) {
                if (!is_token(f->value + a, b - a))
                    return false;
                size_t need = (o ? 2 : 0) + (b - a);
                if (need > CORS_ECHO_MAX - o)
                    return false;
                if (o) {
                    out[o++] = ',';
                    out[o++] = ' ';
                }
                memcpy(out + o, f->value + a, b - a);
                o += b - a;
            }
            k = end + 1;
        }
    }
    *out_len = o;
    return true;
}

/* Access-Control-Allow-Origin (and -Credentials) for an allowed ORIGIN. */
static void allow_origin(struct headbuf *h, const struct conf_cors *c, enum match m,
                         const char *origin, size_t len)
{
    HB_LIT(h, ACAO);
    if (m == MATCH_LISTED)
        hb_add(h, origin, len);
    else
        HB_LIT(h, "*");
    HB_LIT(h, "\r\n");
    if (m == MATCH_LISTED && c->credentials)
        HB_LIT(h, ACAC);
}

enum cors_verdict cors_preflight_headers(const struct conf_cors *c, uint64_t route_methods,
                                         const struct httphead *req, struct headbuf *h)
{
    if (!c->set)
        return CORS_OFF;
    HB_LIT(h, VARY_PREFLIGHT);
    size_t olen = 0;
    const char *origin = cors_request_origin(req, &olen);
    enum cors_verdict v;
    enum match m = origin_match(c, origin, olen, &v);
    if (m == MATCH_NONE)
        return v;

    uint64_t allowed = c->methods      ? c->methods
                       : route_methods ? route_methods
                                       : CORS_DEFAULT_METHODS;
    size_t n;
    const struct httphead_field *f = httphead_get(req, "Access-Control-Request-Method", &n);
    if (!f || n != 1)
        return CORS_METHOD_DENIED;
    int bit = method_bit(f->value, f->value_len);
    if (bit < 0 || !((allowed >> bit) & 1))
        return CORS_METHOD_DENIED;

    char echo[CORS_ECHO_MAX];
    size_t echo_len = 0;
    const char *headers = c->headers;
    size_t headers_len = strnlen(c->headers, sizeof c->headers);
    if (headers_len == 0) {
        if (!echo_headers(req, echo, &echo_len))
            return CORS_HEADERS_DENIED;
        headers = echo;
        headers_len = echo_len;
    } else if (!is_plain_value(headers, headers_len)) {
        headers_len = 0;  /* conf checks it; never write a broken line */
    }

    allow_origin(h, c, m, origin, olen);
    HB_LIT(h, ACAM);
    bool first = true;
    for (unsigned k = 0; k < 64; k++) {
        const char *mn = method_name(k);
        if (!((allowed >> k) & 1) || !mn)
            continue;
        if (!first)
            HB_LIT(h, ", ");
        hb_str(h, mn);
        first = false;
    }
    HB_LIT(h, "\r\n");
    if (headers_len)
        hb_field(h, ACAH, LIT_LEN(ACAH) - 2, headers, headers_len);
    HB_LIT(h, ACMA);
    hb_u64(h, c->max_age_s);
    HB_LIT(h, "\r\n");
    return CORS_ALLOWED;
}

enum cors_verdict cors_response_headers(const struct conf_cors *c, const char *origin,
                                        size_t origin_len, const char *const *expose,
                                        size_t n_expose, struct headbuf *h)
{
    if (!c->set)
        return CORS_OFF;
    HB_LIT(h, VARY);
    enum cors_verdict v;
    enum match m = origin_match(c, origin, origin_len, &v);
    if (m == MATCH_NONE)
        return v;
    allow_origin(h, c, m, origin, origin_len);
    bool first = true;
    for (size_t i = 0; i < n_expose; i++) {
        if (!expose[i] || !is_token(expose[i], strlen(expose[i])))
            continue;
        if (first)
            HB_LIT(h, ACEH);
        else
            HB_LIT(h, ", ");
        hb_str(h, expose[i]);
        first = false;
    }
    if (!first)
        HB_LIT(h, "\r\n");
    return CORS_ALLOWED;
}
