/*
 * conf: reads the one conf file into a fresh struct conf and validates it
 * whole before anyone sees it. libinih splits lines into key = value pairs;
 * a reader in front of it counts lines (Debian's inih hands the handler no
 * line number), strips '#' and ';' comments, rejects malformed lines and
 * sees every section header itself, so empty sections, long section names
 * and section lines are known. Every directive is one row of a table
 * (section, name, type, bounds, flags); values go through the exported
 * conf_parse_* functions. Nothing here is global and nothing here logs:
 * a problem comes back as "PATH:LINE: problem" for the caller to print.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <http_parser.h>
#include <ini.h>

#include "conf.h"

/* ---------------------------------------------------------------------------
 * Small ASCII helpers (the C library ones depend on the locale and take int).
 */

static bool c_isdigit(char c) { return c >= '0' && c <= '9'; }
static bool c_isalpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool c_isspace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
                                       c == '\f' || c == '\v'; }
static char c_tolower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }

/* A token character of RFC 9110 section 5.6.2: what a header name is made of. */
static bool c_istchar(char c)
{
    return c_isalpha(c) || c_isdigit(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

/* A section suffix or an upstream reference: [A-Za-z0-9_.-]+. */
static bool conf_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= CONF_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!c_isalpha(s[i]) && !c_isdigit(s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
            return false;
    return true;
}

static bool conf_header_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= CONF_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!c_istchar(s[i]))
            return false;
    return true;
}

/* Copy S into DST of DSTLEN bytes; false (and DST untouched) if it does not fit. */
static bool conf_copy(char *dst, size_t dstlen, const char *s)
{
    size_t n = strlen(s);
    if (n >= dstlen)
        return false;
    memcpy(dst, s, n + 1);
    return true;
}

/* Leading decimal digits of S as a uint64; false on no digit or overflow. */
static bool conf_parse_digits(const char *s, uint64_t *out, const char **end)
{
    uint64_t n = 0;
    const char *p = s;
    if (!c_isdigit(*p))
        return false;
    for (; c_isdigit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (n > (UINT64_MAX - d) / 10)
            return false;
        n = n * 10 + d;
    }
    *out = n;
    *end = p;
    return true;
}

static bool conf_all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!c_isdigit(*s))
            return false;
    return true;
}

/* ---------------------------------------------------------------------------
 * Value parsers. Pure: no I/O except getaddrinfo for host names.
 */

bool conf_parse_size(const char *s, size_t *out)
{
    uint64_t n, mult = 1;
    const char *end;

    if (!s || !out || !conf_parse_digits(s, &n, &end))
        return false;
    if (*end) {
        switch (c_tolower(*end)) {
        case 'k': mult = 1024; break;
        case 'm': mult = 1024 * 1024; break;
        case 'g': mult = 1024 * 1024 * 1024; break;
        default: return false;
        }
        if (end[1] != '\0')
            return false;
    }
    if (n > SIZE_MAX / mult)
        return false;
    *out = (size_t)(n * mult);
    return true;
}

/* The unit of a duration ("ms", "s", "m", "h", any case) in milliseconds; 0 if none. */
static uint64_t conf_duration_unit(const char *u)
{
    if (strcasecmp(u, "ms") == 0)
        return 1;
    if (strcasecmp(u, "s") == 0)
        return 1000;
    if (strcasecmp(u, "m") == 0)
        return 60 * 1000;
    if (strcasecmp(u, "h") == 0)
        return 60 * 60 * 1000;
    return 0;
}

bool conf_parse_duration(const char *s, uint64_t *ms)
{
    uint64_t n, mult;
    const char *end;

    if (!s || !ms || !conf_parse_digits(s, &n, &end))
        return false;
    mult = conf_duration_unit(end);
    if (mult == 0 || n > UINT64_MAX / mult)
        return false;
    *ms = n * mult;
    return true;
}

bool conf_parse_rate(const char *s, struct conf_rate *out)
{
    uint64_t n, window, unit;
    const char *end;

    if (s && out && strcmp(s, "off") == 0) {
        /* No limit: count 0 with a window, so a route's "off" is told from "unset". */
        out->count = 0;
        out->window_ms = 1;
        return true;
    }
    if (!s || !out || !conf_parse_digits(s, &n, &end))
        return false;
    if (*end != '/' || n < 1 || n > UINT32_MAX)
        return false;
    end++;
    /* "100/m" means one minute; "100/15m" fifteen. */
    unit = conf_duration_unit(end);
    if (unit)
        window = unit;
    else if (!conf_parse_duration(end, &window))
        return false;
    if (window == 0)
        return false;
    out->count = (uint32_t)n;
    out->window_ms = window;
    return true;
}

bool conf_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};

    if (!s || !out)
        return false;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/*
 * Parse "host:port", "[v6]:port" or (when ALLOW_UNIX) "unix:/path" into OUT.
 * On failure WHY says what is wrong, for the message.
 */
static bool conf_addr_parse(const char *s, struct conf_addr *out, bool allow_unix,
                            char *why, size_t whylen)
{
    char host[256];
    const char *port, *hs, *he;
    struct addrinfo hints, *res = NULL;
    uint64_t portnum;
    const char *end;
    bool bracket = false;
    int rc;

    size_t len = strlen(s);
    if (len == 0) {
        snprintf(why, whylen, "empty address");
        return false;
    }
    if (len >= sizeof(out->text)) {
        snprintf(why, whylen, "too long");
        return false;
    }
    memset(out, 0, sizeof(*out));
    memcpy(out->text, s, len + 1);

    if (strncmp(s, "unix:", 5) == 0) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&out->sa;
        const char *path = s + 5;
        size_t plen = strlen(path);
        if (!allow_unix) {
            snprintf(why, whylen, "a unix socket is not allowed here; use HOST:PORT");
            return false;
        }
        if (path[0] != '/') {
            snprintf(why, whylen, "the socket path must be absolute (unix:/run/x.sock)");
            return false;
        }
        if (plen >= sizeof(sun->sun_path)) {
            snprintf(why, whylen, "the socket path is longer than %zu bytes",
                     sizeof(sun->sun_path) - 1);
            return false;
        }
        sun->sun_family = AF_UNIX;
        memcpy(sun->sun_path, path, plen + 1);
        out->salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
        return true;
    }

    if (s[0] == '[') {
        hs = s + 1;
        he = strchr(hs, ']');
        if (!he || he[1] != ':') {
            snprintf(why, whylen, "expected [IPV6]:PORT");
            return false;
        }
        port = he + 2;
        bracket = true;
    } else {
        hs = s;
        he = strrchr(s, ':');
        if (!he) {
            snprintf(why, whylen, "missing :PORT");
            return false;
        }
        port = he + 1;
        if (memchr(hs, ':', (size_t)(he - hs))) {
            snprintf(why, whylen, "an IPv6 address needs brackets, e.g. [::1]:8080");
            return false;
        }
    }
    if ((size_t)(he - hs) == 0 || (size_t)(he - hs) >= sizeof(host)) {
        snprintf(why, whylen, he == hs ? "missing host" : "host name too long");
        return false;
    }
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';

    if (!conf_parse_digits(port, &portnum, &end) || *end || portnum < 1 || portnum > 65535) {
        snprintf(why, whylen, "the port must be a number from 1 to 65535");
        return false;
    }

    /* getaddrinfo takes "127.1" and "1.2.3" as IPv4 shorthands; nobody means those. */
    if (!bracket && strspn(host, "0123456789.") == strlen(host)) {
        struct in_addr a4;
        if (inet_pton(AF_INET, host, &a4) != 1) {
            snprintf(why, whylen, "\"%s\" is not an IPv4 address", host);
            return false;
        }
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = bracket ? AF_INET6 : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (bracket ? AI_NUMERICHOST : 0);
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(why, whylen, "cannot resolve \"%s\": %s", host,
                 rc ? gai_strerror(rc) : "no address");
        if (res)
            freeaddrinfo(res);
        return false;
    }
    if (res->ai_addrlen > sizeof(out->sa)) {
        freeaddrinfo(res);
        snprintf(why, whylen, "address too long");
        return false;
    }
    memcpy(&out->sa, res->ai_addr, res->ai_addrlen);
    out->salen = res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

bool conf_parse_addr(const char *s, struct conf_addr *out)
{
    char why[128];
    if (!s || !out)
        return false;
    return conf_addr_parse(s, out, true, why, sizeof(why));
}

bool conf_parse_cidr(const char *s, struct conf_cidr *out)
{
    char addr[INET6_ADDRSTRLEN];
    const char *slash;
    size_t alen;
    unsigned maxbits;
    uint64_t prefix;
    struct conf_cidr c;

    if (!s || !out)
        return false;
    memset(&c, 0, sizeof(c));
    slash = strchr(s, '/');
    alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof(addr))
        return false;
    memcpy(addr, s, alen);
    addr[alen] = '\0';

    if (strchr(addr, ':')) {
        c.family = AF_INET6;
        maxbits = 128;
    } else {
        c.family = AF_INET;
        maxbits = 32;
    }
    if (inet_pton(c.family, addr, c.addr) != 1)
        return false;

    prefix = maxbits;
    if (slash) {
        const char *end;
        if (!conf_parse_digits(slash + 1, &prefix, &end) || *end || prefix > maxbits)
            return false;
    }
    c.prefix = (unsigned)prefix;

    /* Keep only the network part, so matching is a plain compare. */
    for (unsigned i = 0; i < maxbits / 8; i++) {
        unsigned bit = i * 8;
        if (bit >= c.prefix)
            c.addr[i] = 0;
        else if (c.prefix - bit < 8)
            c.addr[i] &= (uint8_t)(0xFFu << (8 - (c.prefix - bit)));
    }
    *out = c;
    return true;
}

/* Count of http_parser's methods: bits 0..N-1 of a route's method mask. */
#define XX(num, name, string) +1
enum { CONF_N_METHODS = 0 HTTP_METHOD_MAP(XX) };
#undef XX

bool conf_parse_methods(const char *s, uint64_t *mask)
{
    uint64_t m = 0;
    const char *p = s;

    if (!s || !mask)
        return false;
    for (;;) {
        char name[32];
        size_t n;
        bool found = false;

        while (c_isspace(*p))
            p++;
        n = strcspn(p, ", \t");
        if (n == 0 || n >= sizeof(name))
            return false;
        memcpy(name, p, n);
        name[n] = '\0';
        p += n;
        for (int i = 0; i < CONF_N_METHODS; i++) {
            if (strcasecmp(name, http_method_str((enum http_method)i)) == 0) {
                m |= 1ULL << i;
                found = true;
                break;
            }
        }
        if (!found)
            return false;
        while (c_isspace(*p))
            p++;
        if (*p == '\0')
            break;
        if (*p != ',')
            return false;
        p++;
    }
    *mask = m;
    return true;
}

static bool conf_cidr_match(const struct conf_cidr *c, int family, const uint8_t *addr)
{
    unsigned full = c->prefix / 8, rem = c->prefix % 8;

    if (c->family != family)
        return false;
    if (memcmp(c->addr, addr, full) != 0)
        return false;
    if (rem) {
        uint8_t m = (uint8_t)(0xFFu << (8 - rem));
        return (addr[full] & m) == c->addr[full];
    }
    return true;
}

bool conf_is_trusted_proxy(const struct conf *conf, const struct sockaddr *sa)
{
    uint8_t v4[4], v6[16];
    bool has_v4 = false;

    if (!conf || !sa)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        memcpy(v4, &sin->sin_addr, 4);
        /* The same address as ::ffff:a.b.c.d, for v6 ranges written that way. */
        memset(v6, 0, 10);
        v6[10] = v6[11] = 0xFF;
        memcpy(v6 + 12, v4, 4);
        has_v4 = true;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        memcpy(v6, &sin6->sin6_addr, 16);
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            memcpy(v4, v6 + 12, 4);
            has_v4 = true;
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < conf->n_trusted_proxies; i++) {
        const struct conf_cidr *c = &conf->trusted_proxies[i];
        if (c->family == AF_INET && has_v4 && conf_cidr_match(c, AF_INET, v4))
            return true;
        if (c->family == AF_INET6 && conf_cidr_match(c, AF_INET6, v6))
            return true;
    }
    return false;
}

/* ---------------------------------------------------------------------------
 * The directive table.
 */

enum conf_sect {
    SECT_NONE,
    SECT_SERVER,
    SECT_ENVELOPE,
    SECT_CORRELATION,
    SECT_REDIS,
    SECT_LIMITS,
    SECT_ADMIN,
    SECT_UPSTREAM,
    SECT_ROUTE,
    SECT_COUNT
};

static const char *const conf_sect_names[SECT_COUNT] = {
    [SECT_NONE] = "", [SECT_SERVER] = "server", [SECT_ENVELOPE] = "envelope",
    [SECT_CORRELATION] = "correlation", [SECT_REDIS] = "redis", [SECT_LIMITS] = "limits",
    [SECT_ADMIN] = "admin",
    [SECT_UPSTREAM] = "upstream", [SECT_ROUTE] = "route",
};

enum conf_type {
    T_SIZE,         /* size_t, min..max */
    T_DURATION,     /* uint64_t ms, min..max */
    T_RATE,         /* struct conf_rate */
    T_BOOL,         /* bool */
    T_UINT,         /* unsigned, min..max */
    T_LISTEN,       /* list of struct conf_addr, host:port */
    T_ADDR,         /* one struct conf_addr, host:port or unix:/path */
    T_STRING,       /* printable text, char[size] */
    T_WORD,         /* printable text without blanks, char[size] */
    T_HEADER,       /* a header name, char[size] */
    T_HEADER_LIST,  /* list of header names, char[max][CONF_NAME_MAX] */
    T_CIDR_LIST,    /* list of struct conf_cidr */
    T_LOG_LEVEL,
    T_ACCESS_LOG,
    T_PROFILE,
    T_ON_ERROR,
    T_METHODS,
    T_PREFIX,
    T_NAME,         /* a section name reference, char[size] */
    T_SECRET,
    T_SECRET_FILE,
};

#define D_REPEAT   0x1u  /* may repeat; the first use replaces the default list */
#define D_REQUIRED 0x2u
#define D_EMPTY_OK 0x4u

struct conf_directive {
    enum conf_sect sect;
    const char *name;
    enum conf_type type;
    size_t off;       /* the field, in struct conf / conf_upstream / conf_route */
    size_t off_n;     /* lists: the count field */
    size_t size;      /* char buffers: their size; lists: the element size */
    uint64_t min, max;/* numbers, sizes, durations; lists: max entries */
    unsigned flags;
};

#define C_(f) offsetof(struct conf, f)
#define U_(f) offsetof(struct conf_upstream, f)
#define R_(f) offsetof(struct conf_route, f)
#define SZ(type, f) sizeof(((type *)0)->f)
#define MS_S 1000ULL
#define MS_H (3600ULL * 1000)
#define KB 1024ULL
#define MB (1024ULL * 1024)

static const struct conf_directive conf_directives[] = {
    {SECT_SERVER, "listen", T_LISTEN, C_(listen), C_(n_listen), sizeof(struct conf_addr),
     0, CONF_MAX_LISTEN, D_REPEAT},
    {SECT_SERVER, "workers", T_UINT, C_(workers), 0, 0, 0, 1024, 0},
    {SECT_SERVER, "max_connections", T_UINT, C_(max_connections), 0, 0, 0, 10000000, 0},
    {SECT_SERVER, "max_header_size", T_SIZE, C_(max_header_size), 0, 0, 1 * KB, 1 * MB, 0},
    {SECT_SERVER, "max_body_size", T_SIZE, C_(max_body_size), 0, 0, 1, SIZE_MAX, 0},
    {SECT_SERVER, "client_timeout", T_DURATION, C_(client_timeout_ms), 0, 0, 1, 24 * MS_H, 0},
    {SECT_SERVER, "keepalive_timeout", T_DURATION, C_(keepalive_timeout_ms), 0, 0, 1,
     24 * MS_H, 0},
    {SECT_SERVER, "shutdown_timeout", T_DURATION, C_(shutdown_timeout_ms), 0, 0, 0, 24 * MS_H,
     0},
    {SECT_SERVER, "log_level", T_LOG_LEVEL, C_(log_level), 0, 0, 0, 0, 0},
    {SECT_SERVER, "access_log", T_ACCESS_LOG, C_(access_log), 0, SZ(struct conf, access_log),
     0, 0, 0},
    {SECT_SERVER, "merge_slashes", T_BOOL, C_(merge_slashes), 0, 0, 0, 0, 0},
    {SECT_SERVER, "routes_ignore_case", T_BOOL, C_(routes_ignore_case), 0, 0, 0, 0, 0},

    {SECT_ENVELOPE, "profile", T_PROFILE, C_(profile), 0, 0, 0, 0, 0},
    {SECT_ENVELOPE, "expose_upstream_5xx", T_BOOL, C_(expose_upstream_5xx), 0, 0, 0, 0, 0},
    {SECT_ENVELOPE, "max_error_body", T_SIZE, C_(max_error_body), 0, 0, 1, 64 * MB, 0},
    {SECT_ENVELOPE, "hide_headers", T_HEADER_LIST, C_(hide_headers), C_(n_hide_headers),
     CONF_NAME_MAX, 0, CONF_MAX_HIDE, D_REPEAT},

    {SECT_CORRELATION, "header", T_HEADER, C_(corr_header), 0, SZ(struct conf, corr_header),
     0, 0, 0},
    {SECT_CORRELATION, "accept", T_HEADER_LIST, C_(accept), C_(n_accept), CONF_NAME_MAX, 0,
     CONF_MAX_ACCEPT, D_REPEAT},

    {SECT_REDIS, "address", T_ADDR, C_(redis_address), 0, 0, 0, 0, 0},
    {SECT_REDIS, "password", T_STRING, C_(redis_password), 0, SZ(struct conf, redis_password),
     0, 0, D_EMPTY_OK},
    {SECT_REDIS, "db", T_UINT, C_(redis_db), 0, 0, 0, INT_MAX, 0},
    {SECT_REDIS, "key_prefix", T_WORD, C_(redis_key_prefix), 0,
     SZ(struct conf, redis_key_prefix), 0, 0, D_EMPTY_OK},
    {SECT_REDIS, "timeout", T_DURATION, C_(redis_timeout_ms), 0, 0, 1, MS_H, 0},
    {SECT_REDIS, "on_error", T_ON_ERROR, C_(redis_on_error), 0, 0, 0, 0, 0},

    {SECT_LIMITS, "token_header", T_HEADER, C_(token_header), 0, SZ(struct conf, token_header),
     0, 0, 0},
    {SECT_LIMITS, "per_token", T_RATE, C_(per_token), 0, 0, 0, 0, 0},
    {SECT_LIMITS, "per_ip", T_RATE, C_(per_ip), 0, 0, 0, 0, 0},
    {SECT_LIMITS, "trusted_proxies", T_CIDR_LIST, C_(trusted_proxies), C_(n_trusted_proxies),
     sizeof(struct conf_cidr), 0, CONF_MAX_PROXIES, D_REPEAT},
    {SECT_LIMITS, "hash_secret", T_SECRET, C_(hash_secret), 0, SZ(struct conf, hash_secret),
     16, 0, 0},
    {SECT_LIMITS, "hash_secret_file", T_SECRET_FILE, C_(hash_secret), 0,
     SZ(struct conf, hash_secret), 16, 0, 0},
    {SECT_LIMITS, "ipv6_prefix", T_UINT, C_(ipv6_prefix), 0, 0, 1, 128, 0},

    {SECT_ADMIN, "listen", T_LISTEN, C_(admin_listen), C_(n_admin_listen),
     sizeof(struct conf_addr), 0, CONF_MAX_LISTEN, D_REPEAT},

    {SECT_UPSTREAM, "server", T_LISTEN, U_(servers), U_(n_servers), sizeof(struct conf_addr),
     0, CONF_MAX_SERVERS, D_REPEAT | D_REQUIRED},
    {SECT_UPSTREAM, "keepalive", T_UINT, U_(keepalive), 0, 0, 0, 100000, 0},
    {SECT_UPSTREAM, "keepalive_timeout", T_DURATION, U_(keepalive_timeout_ms), 0, 0, 1,
     24 * MS_H, 0},
    {SECT_UPSTREAM, "keepalive_requests", T_UINT, U_(keepalive_requests), 0, 0, 0, 1000000000,
     0},
    {SECT_UPSTREAM, "connect_timeout", T_DURATION, U_(connect_timeout_ms), 0, 0, 1, 24 * MS_H,
     0},
    {SECT_UPSTREAM, "timeout", T_DURATION, U_(timeout_ms), 0, 0, 1, 24 * MS_H, 0},
    {SECT_UPSTREAM, "tunnel_timeout", T_DURATION, U_(tunnel_timeout_ms), 0, 0, 1, 24 * MS_H, 0},
    {SECT_UPSTREAM, "retries", T_UINT, U_(retries), 0, 0, 0, 10, 0},
    {SECT_UPSTREAM, "retry_backoff", T_DURATION, U_(retry_backoff_ms), 0, 0, 0, MS_H, 0},
    {SECT_UPSTREAM, "retry_backoff_max", T_DURATION, U_(retry_backoff_max_ms), 0, 0, 0, MS_H,
     0},
    {SECT_UPSTREAM, "down_backoff", T_DURATION, U_(down_backoff_ms), 0, 0, 1, 24 * MS_H, 0},
    {SECT_UPSTREAM, "down_backoff_max", T_DURATION, U_(down_backoff_max_ms), 0, 0, 1,
     24 * MS_H, 0},

    {SECT_ROUTE, "prefix", T_PREFIX, R_(prefix), 0, SZ(struct conf_route, prefix), 0, 0,
     D_REQUIRED},
    {SECT_ROUTE, "upstream", T_NAME, R_(upstream_name), 0, SZ(struct conf_route, upstream_name),
     0, 0, D_REQUIRED},
    {SECT_ROUTE, "strip_prefix", T_BOOL, R_(strip_prefix), 0, 0, 0, 0, 0},
    {SECT_ROUTE, "methods", T_METHODS, R_(methods), 0, 0, 0, 0, 0},
    {SECT_ROUTE, "require_token", T_BOOL, R_(require_token), 0, 0, 0, 0, 0},
    {SECT_ROUTE, "per_token", T_RATE, R_(per_token), 0, 0, 0, 0, 0},
    {SECT_ROUTE, "per_ip", T_RATE, R_(per_ip), 0, 0, 0, 0, 0},
};

#define CONF_N_DIRECTIVES (sizeof(conf_directives) / sizeof(conf_directives[0]))
_Static_assert(CONF_N_DIRECTIVES <= 64, "the seen masks are 64-bit");

/* ---------------------------------------------------------------------------
 * The parser: state shared by the line reader and the inih handler.
 */

struct conf_parser {
    struct conf *conf;
    FILE *fp;
    char *line;                 /* getline buffer */
    size_t linecap;
    int lineno;                 /* of the line inih is working on */
    bool failed;
    char *err;
    size_t errlen;

    enum conf_sect sect;        /* the current section */
    char sect_label[CONF_NAME_MAX + 16];  /* "[route tasks]", for messages */
    int sect_line;
    uint64_t seen;              /* directives seen in the current section */
    uint64_t seen_all;          /* ... in any section */
    int seen_line[CONF_N_DIRECTIVES];  /* first line of each, in the current section */
    int single_line[SECT_COUNT];        /* where each singleton section started */
    int route_upstream_line[CONF_MAX_ROUTES];
};

static void conf_fail(struct conf_parser *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record the first problem as "PATH:LINE: problem"; later ones are dropped. */
static void conf_fail(struct conf_parser *p, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (p->failed)
        return;
    p->failed = true;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (p->err && p->errlen)
        snprintf(p->err, p->errlen, "%s:%d: %s", p->conf->path, line, msg);
}

/* V bounded and made printable, for messages: the file may hold anything. */
static const char *conf_clean(const char *v, char *buf, size_t buflen)
{
    size_t n = strlen(v), lim, i;

    if (buflen < 8) {
        if (buflen)
            buf[0] = '\0';
        return buf;
    }
    lim = buflen - 4;
    for (i = 0; i < n && i < lim; i++) {
        unsigned char c = (unsigned char)v[i];
        buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (i < n) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

/* V cleaned and in double quotes. */
static const char *conf_quote(const char *v, char *buf, size_t buflen)
{
    if (buflen < 10) {
        if (buflen)
            buf[0] = '\0';
        return buf;
    }
    buf[0] = '"';
    conf_clean(v, buf + 1, buflen - 2);
    size_t n = strlen(buf);
    buf[n] = '"';
    buf[n + 1] = '\0';
    return buf;
}

static void conf_fmt_ms(uint64_t ms, char *buf, size_t len)
{
    if (ms && ms % MS_H == 0)
        snprintf(buf, len, "%lluh", (unsigned long long)(ms / MS_H));
    else if (ms && ms % (60 * MS_S) == 0)
        snprintf(buf, len, "%llum", (unsigned long long)(ms / (60 * MS_S)));
    else if (ms && ms % MS_S == 0)
        snprintf(buf, len, "%llus", (unsigned long long)(ms / MS_S));
    else
        snprintf(buf, len, "%llums", (unsigned long long)ms);
}

static void conf_fmt_size(uint64_t n, char *buf, size_t len)
{
    if (n && n % (1024 * MB) == 0)
        snprintf(buf, len, "%llug", (unsigned long long)(n / (1024 * MB)));
    else if (n && n % MB == 0)
        snprintf(buf, len, "%llum", (unsigned long long)(n / MB));
    else if (n && n % KB == 0)
        snprintf(buf, len, "%lluk", (unsigned long long)(n / KB));
    else
        snprintf(buf, len, "%llu", (unsigned long long)n);
}

/* Where the current section's fields live. */
static char *conf_section_base(struct conf_parser *p)
{
    struct conf *c = p->conf;

    switch (p->sect) {
    case SECT_UPSTREAM:
        return (char *)&c->upstreams[c->n_upstreams - 1];
    case SECT_ROUTE:
        return (char *)&c->routes[c->n_routes - 1];
    default:
        return (char *)c;
    }
}

static void conf_upstream_defaults(struct conf_upstream *u)
{
    u->keepalive = 64;
    u->keepalive_timeout_ms = 60 * MS_S;
    u->connect_timeout_ms = 2 * MS_S;
    u->timeout_ms = 30 * MS_S;
    u->tunnel_timeout_ms = 1 * MS_H;
    u->retries = 2;
    u->retry_backoff_ms = 25;
    u->retry_backoff_max_ms = 1 * MS_S;
    u->down_backoff_ms = 1 * MS_S;
    u->down_backoff_max_ms = 30 * MS_S;
}

static bool conf_defaults(struct conf *c)
{
    char why[128];

    if (!conf_addr_parse("0.0.0.0:8080", &c->listen[0], false, why, sizeof(why)))
        return false;
    c->n_listen = 1;
    c->workers = 0;
    c->max_connections = 0;     /* from RLIMIT_NOFILE, per worker (worker.c) */
    c->max_header_size = 16 * KB;
    c->max_body_size = 10 * MB;
    c->client_timeout_ms = 30 * MS_S;
    c->keepalive_timeout_ms = 0;    /* resolved to client_timeout at the end */
    c->shutdown_timeout_ms = 20 * MS_S;
    c->log_level = CONF_LOG_INFO;
    strcpy(c->access_log, "stdout");
    c->merge_slashes = true;
    c->routes_ignore_case = true;

    c->profile = ENVELOPE_NESTED;
    c->expose_upstream_5xx = false;
    c->max_error_body = 64 * KB;

    strcpy(c->corr_header, "X-Correlation-Id");
    strcpy(c->accept[0], "X-Correlation-Id");
    strcpy(c->accept[1], "X-Request-Id");
    c->n_accept = 2;

    c->redis_enabled = false;
    if (!conf_addr_parse("127.0.0.1:6379", &c->redis_address, true, why, sizeof(why)))
        return false;
    c->redis_db = 0;
    strcpy(c->redis_key_prefix, "envelopd:");
    c->redis_timeout_ms = 50;
    c->redis_on_error = CONF_ON_ERROR_ALLOW;

    strcpy(c->token_header, "Authorization");
    c->per_token = (struct conf_rate){100, 60 * MS_S};
    c->per_ip = (struct conf_rate){500, 15 * 60 * MS_S};
    c->n_trusted_proxies = 0;
    c->hash_secret_set = false;
    c->ipv6_prefix = 64;
    return true;
}

/*
 * The current section is over: check what it requires. Problems are reported
 * on the section's own line.
 */
static void conf_section_end(struct conf_parser *p)
{
    char a[32], b[32];

    if (p->failed || p->sect == SECT_NONE)
        return;
    for (size_t i = 0; i < CONF_N_DIRECTIVES; i++) {
        const struct conf_directive *d = &conf_directives[i];
        if (d->sect == p->sect && (d->flags & D_REQUIRED) && !(p->seen & (1ULL << i))) {
            conf_fail(p, p->sect_line, "%s: missing %s = ...", p->sect_label, d->name);
            return;
        }
    }
    if (p->sect == SECT_UPSTREAM) {
        const struct conf_upstream *u = &p->conf->upstreams[p->conf->n_upstreams - 1];
        if (u->retry_backoff_ms > u->retry_backoff_max_ms) {
            conf_fmt_ms(u->retry_backoff_ms, a, sizeof(a));
            conf_fmt_ms(u->retry_backoff_max_ms, b, sizeof(b));
            conf_fail(p, p->sect_line, "%s: retry_backoff (%s) is larger than "
                      "retry_backoff_max (%s)", p->sect_label, a, b);
        } else if (u->down_backoff_ms > u->down_backoff_max_ms) {
            conf_fmt_ms(u->down_backoff_ms, a, sizeof(a));
            conf_fmt_ms(u->down_backoff_max_ms, b, sizeof(b));
            conf_fail(p, p->sect_line, "%s: down_backoff (%s) is larger than "
                      "down_backoff_max (%s)", p->sect_label, a, b);
        }
    }
}

/* A "[...]" line: INNER is what is between the brackets, trimmed. */
static void conf_section_begin(struct conf_parser *p, char *inner)
{
    struct conf *c = p->conf;
    enum conf_sect s = SECT_NONE;
    char *name;
    char q[96];
    size_t kl;

    conf_section_end(p);
    if (p->failed)
        return;

    kl = strcspn(inner, " \t");
    name = inner + kl;
    while (c_isspace(*name))
        name++;
    inner[kl] = '\0';
    for (int i = SECT_SERVER; i < SECT_COUNT; i++)
        if (strcmp(inner, conf_sect_names[i]) == 0)
            s = (enum conf_sect)i;
    if (s == SECT_NONE) {
        conf_fail(p, p->lineno, "unknown section [%s] (known: server, envelope, correlation, "
                  "redis, limits, upstream NAME, route NAME)", conf_clean(inner, q, sizeof(q)));
        return;
    }

    p->sect = s;
    p->sect_line = p->lineno;
    p->seen = 0;
    memset(p->seen_line, 0, sizeof(p->seen_line));

    if (s != SECT_UPSTREAM && s != SECT_ROUTE) {
        if (*name) {
            conf_fail(p, p->lineno, "section [%s] takes no name (only [upstream NAME] and "
                      "[route NAME] do)", inner);
            return;
        }
        if (p->single_line[s]) {
            conf_fail(p, p->lineno, "section [%s] appears twice (first at line %d)", inner,
                      p->single_line[s]);
            return;
        }
        p->single_line[s] = p->lineno;
        snprintf(p->sect_label, sizeof(p->sect_label), "[%s]", inner);
        if (s == SECT_REDIS)
            c->redis_enabled = true;
        return;
    }

    if (!*name) {
        conf_fail(p, p->lineno, "section [%s] needs a name: [%s NAME]", inner, inner);
        return;
    }
    if (!conf_name_ok(name)) {
        conf_fail(p, p->lineno, "[%s %s]: a name is 1-%d characters of A-Z a-z 0-9 _ . -",
                  inner, conf_quote(name, q, sizeof(q)), CONF_NAME_MAX - 1);
        return;
    }
    snprintf(p->sect_label, sizeof(p->sect_label), "[%s %s]", inner, name);
    if (s == SECT_UPSTREAM) {
        for (size_t i = 0; i < c->n_upstreams; i++) {
            if (strcmp(c->upstreams[i].name, name) == 0) {
                conf_fail(p, p->lineno, "%s appears twice (first at line %d)", p->sect_label,
                          c->upstreams[i].line);
                return;
            }
        }
        if (c->n_upstreams >= CONF_MAX_UPSTREAMS) {
            conf_fail(p, p->lineno, "too many [upstream] sections (at most %d)",
                      CONF_MAX_UPSTREAMS);
            return;
        }
        struct conf_upstream *u = &c->upstreams[c->n_upstreams++];
        conf_upstream_defaults(u);
        strcpy(u->name, name);  /* conf_name_ok bounded it */
        u->line = p->lineno;
    } else {
        for (size_t i = 0; i < c->n_routes; i++) {
            if (strcmp(c->routes[i].name, name) == 0) {
                conf_fail(p, p->lineno, "%s appears twice (first at line %d)", p->sect_label,
                          c->routes[i].line);
                return;
            }
        }
        if (c->n_routes >= CONF_MAX_ROUTES) {
            conf_fail(p, p->lineno, "too many [route] sections (at most %d)", CONF_MAX_ROUTES);
            return;
        }
        struct conf_route *r = &c->routes[c->n_routes++];
        strcpy(r->name, name);
        r->line = p->lineno;
    }
}

/*
 * The next item of a list value ("a, b, c"), trimmed, into ITEM. *CURSOR
 * moves past the comma, or becomes NULL after the last item. An empty item
 * (",," or a trailing comma) is an error.
 */
static bool conf_next_item(const char **cursor, char *item, size_t itemlen, bool *too_long)
{
    const char *s = *cursor, *e;
    size_t n;

    *too_long = false;
    while (c_isspace(*s))
        s++;
    e = strchr(s, ',');
    n = e ? (size_t)(e - s) : strlen(s);
    while (n > 0 && c_isspace(s[n - 1]))
        n--;
    if (n == 0)
        return false;
    if (n >= itemlen) {
        *too_long = true;
        return false;
    }
    memcpy(item, s, n);
    item[n] = '\0';
    *cursor = e ? e + 1 : NULL;
    return true;
}

static bool conf_printable(const char *s, bool allow_blank)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch == 0x7f)
            return false;
        if (!allow_blank && ch == ' ')
            return false;
    }
    return true;
}

/* Read the first line of PATH into BUF (the secret), without its newline. */
static bool conf_read_secret_file(struct conf_parser *p, const char *key, const char *path,
                                  char *buf, size_t buflen, size_t minlen)
{
    char line[512], q[96], eb[128];
    FILE *f = fopen(path, "re");
    size_t n;

    if (!f) {
        conf_fail(p, p->lineno, "%s: cannot open %s: %s", key, conf_quote(path, q, sizeof(q)),
                  strerror_r(errno, eb, sizeof(eb)));
        return false;
    }
    if (!fgets(line, sizeof(line), f)) {
        bool err = ferror(f);
        fclose(f);
        conf_fail(p, p->lineno, "%s: %s %s", key, conf_quote(path, q, sizeof(q)),
                  err ? "cannot be read" : "is empty");
        return false;
    }
    fclose(f);
    n = strlen(line);
    if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
        conf_fail(p, p->lineno, "%s: the first line of %s is too long", key,
                  conf_quote(path, q, sizeof(q)));
        return false;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (n < minlen || n >= buflen) {
        conf_fail(p, p->lineno, "%s: the secret in %s must be %zu to %zu characters", key,
                  conf_quote(path, q, sizeof(q)), minlen, buflen - 1);
        explicit_bzero(line, sizeof(line));
        return false;
    }
    memcpy(buf, line, n + 1);
    explicit_bzero(line, sizeof(line));
    return true;
}

/* Set directive D of the current section from value V. */
static bool conf_apply(struct conf_parser *p, const struct conf_directive *d, const char *v)
{
    struct conf *c = p->conf;
    char *field = conf_section_base(p) + d->off;
    const char *k = d->name;
    int ln = p->lineno;
    char q[96], a[32], b[32], why[160];

    if (!*v && !(d->flags & D_EMPTY_OK)) {
        conf_fail(p, ln, "%s: empty value", k);
        return false;
    }
    conf_quote(v, q, sizeof(q));

    switch (d->type) {
    case T_SIZE: {
        size_t n;
        if (!conf_parse_size(v, &n)) {
            conf_fail(p, ln, "%s: %s is not a size (use e.g. 16k, 1m)", k, q);
            return false;
        }
        if (n < d->min || n > d->max) {
            conf_fmt_size(d->min, a, sizeof(a));
            conf_fmt_size(d->max, b, sizeof(b));
            if (d->max == SIZE_MAX)
                conf_fail(p, ln, "%s: %s must be at least %s", k, q, a);
            else
                conf_fail(p, ln, "%s: %s must be from %s to %s", k, q, a, b);
            return false;
        }
        memcpy(field, &n, sizeof(n));
        return true;
    }
    case T_DURATION: {
        uint64_t ms;
        if (!conf_parse_duration(v, &ms)) {
            if (conf_all_digits(v))
                conf_fail(p, ln, "%s: %s needs a unit (e.g. %ss or %sms)", k, q, v, v);
            else
                conf_fail(p, ln, "%s: %s is not a duration (use e.g. 500ms, 30s, 5m, 1h)", k, q);
            return false;
        }
        if (ms < d->min || ms > d->max) {
            conf_fmt_ms(d->min, a, sizeof(a));
            conf_fmt_ms(d->max, b, sizeof(b));
            conf_fail(p, ln, "%s: %s must be from %s to %s", k, q, a, b);
            return false;
        }
        memcpy(field, &ms, sizeof(ms));
        return true;
    }
    case T_RATE: {
        struct conf_rate r;
        if (!conf_parse_rate(v, &r)) {
            conf_fail(p, ln, "%s: %s is not a rate (use N/DURATION with N >= 1, e.g. 100/1m, "
                      "500/15m, 5000/1h)", k, q);
            return false;
        }
        memcpy(field, &r, sizeof(r));
        return true;
    }
    case T_BOOL: {
        bool bv;
        if (!conf_parse_bool(v, &bv)) {
            conf_fail(p, ln, "%s: %s is not yes or no", k, q);
            return false;
        }
        memcpy(field, &bv, sizeof(bv));
        return true;
    }
    case T_UINT: {
        uint64_t n;
        const char *end;
        unsigned u;
        if (!conf_parse_digits(v, &n, &end) || *end) {
            conf_fail(p, ln, "%s: %s is not a whole number", k, q);
            return false;
        }
        if (n < d->min || n > d->max) {
            conf_fail(p, ln, "%s: %s must be from %llu to %llu", k, q,
                      (unsigned long long)d->min, (unsigned long long)d->max);
            return false;
        }
        u = (unsigned)n;
        memcpy(field, &u, sizeof(u));
        return true;
    }
    case T_LISTEN:
    case T_HEADER_LIST:
    case T_CIDR_LIST: {
        char item[CONF_PATH_MAX + 8], qi[96];
        const char *cur = v;
        size_t count;
        bool too_long;

        memcpy(&count, conf_section_base(p) + d->off_n, sizeof(count));
        while (cur) {
            char *slot;
            if (!conf_next_item(&cur, item, sizeof(item), &too_long)) {
                if (too_long)
                    conf_fail(p, ln, "%s: an item of %s is too long", k, q);
                else
                    conf_fail(p, ln, "%s: empty item in the list %s", k, q);
                return false;
            }
            conf_quote(item, qi, sizeof(qi));
            if (count >= d->max) {
                conf_fail(p, ln, "%s: too many (at most %llu)", k, (unsigned long long)d->max);
                return false;
            }
            slot = field + count * d->size;
            if (d->type == T_LISTEN) {
                struct conf_addr *ad = (struct conf_addr *)slot;
                const struct conf_addr *all = (const struct conf_addr *)field;
                if (!conf_addr_parse(item, ad, false, why, sizeof(why))) {
                    conf_fail(p, ln, "%s: %s is not HOST:PORT: %s", k, qi, why);
                    return false;
                }
                /* A listen address twice would fail to bind; say so here. */
                for (size_t i = 0; d->sect == SECT_SERVER && i < count; i++) {
                    if (all[i].salen == ad->salen && memcmp(&all[i].sa, &ad->sa, ad->salen) == 0) {
                        conf_fail(p, ln, "%s: %s is listed twice", k, qi);
                        return false;
                    }
                }
            } else if (d->type == T_HEADER_LIST) {
                if (!conf_header_name_ok(item)) {
                    conf_fail(p, ln, "%s: %s is not a header name", k, qi);
                    return false;
                }
                for (size_t i = 0; i < count; i++) {
                    if (strcasecmp(field + i * d->size, item) == 0) {
                        conf_fail(p, ln, "%s: %s is listed twice", k, qi);
                        return false;
                    }
                }
                strcpy(slot, item);  /* conf_header_name_ok bounded it */
            } else {
                struct conf_cidr cidr;
                if (!conf_parse_cidr(item, &cidr)) {
                    conf_fail(p, ln, "%s: %s is not an address or CIDR range "
                              "(e.g. 10.0.0.0/8, ::1)", k, qi);
                    return false;
                }
                memcpy(slot, &cidr, sizeof(cidr));
            }
            count++;
            memcpy(conf_section_base(p) + d->off_n, &count, sizeof(count));
        }
        return true;
    }
    case T_ADDR: {
        struct conf_addr ad;
        if (!conf_addr_parse(v, &ad, true, why, sizeof(why))) {
            conf_fail(p, ln, "%s: %s is not HOST:PORT or unix:/PATH: %s", k, q, why);
            return false;
        }
        memcpy(field, &ad, sizeof(ad));
        return true;
    }
    case T_STRING:
    case T_WORD:
        if (!conf_printable(v, d->type == T_STRING)) {
            conf_fail(p, ln, "%s: %s may not contain %s", k, q,
                      d->type == T_STRING ? "control characters" : "blanks or control characters");
            return false;
        }
        if (!conf_copy(field, d->size, v)) {
            conf_fail(p, ln, "%s: longer than %zu characters", k, d->size - 1);
            return false;
        }
        return true;
    case T_HEADER:
        if (!conf_header_name_ok(v)) {
            conf_fail(p, ln, "%s: %s is not a header name (1-%d characters, no blanks)", k, q,
                      CONF_NAME_MAX - 1);
            return false;
        }
        strcpy(field, v);
        return true;
    case T_LOG_LEVEL: {
        enum conf_log_level l;
        if (strcasecmp(v, "debug") == 0)
            l = CONF_LOG_DEBUG;
        else if (strcasecmp(v, "info") == 0)
            l = CONF_LOG_INFO;
        else if (strcasecmp(v, "warn") == 0 || strcasecmp(v, "warning") == 0)
            l = CONF_LOG_WARN;
        else if (strcasecmp(v, "error") == 0)
            l = CONF_LOG_ERROR;
        else {
            conf_fail(p, ln, "%s: %s is not one of debug, info, warn, error", k, q);
            return false;
        }
        memcpy(field, &l, sizeof(l));
        return true;
    }
    case T_ACCESS_LOG:
        if (strcmp(v, "stdout") != 0 && strcmp(v, "off") != 0 && v[0] != '/') {
            conf_fail(p, ln, "%s: %s is not stdout, off or an absolute path", k, q);
            return false;
        }
        if (!conf_printable(v, true) || !conf_copy(field, d->size, v)) {
            conf_fail(p, ln, "%s: %s is not a usable path", k, q);
            return false;
        }
        return true;
    case T_PROFILE: {
        enum envelope_profile pr;
        if (!envelope_profile_parse(v, &pr)) {
            conf_fail(p, ln, "%s: %s is not one of nested, flat, simple, status, i18n, problem",
                      k, q);
            return false;
        }
        memcpy(field, &pr, sizeof(pr));
        return true;
    }
    case T_ON_ERROR: {
        enum conf_on_error oe;
        if (strcasecmp(v, "allow") == 0)
            oe = CONF_ON_ERROR_ALLOW;
        else if (strcasecmp(v, "deny") == 0)
            oe = CONF_ON_ERROR_DENY;
        else if (strcasecmp(v, "local") == 0)
            oe = CONF_ON_ERROR_LOCAL;
        else {
            conf_fail(p, ln, "%s: %s is not one of allow, deny, local", k, q);
            return false;
        }
        memcpy(field, &oe, sizeof(oe));
        return true;
    }
    case T_METHODS: {
        uint64_t m;
        if (!conf_parse_methods(v, &m)) {
            conf_fail(p, ln, "%s: %s is not a list of HTTP methods (e.g. GET, POST, DELETE)",
                      k, q);
            return false;
        }
        /* A resource that answers GET answers HEAD (RFC 9110 9.3.2). */
        if (m & (1ULL << HTTP_GET))
            m |= 1ULL << HTTP_HEAD;
        memcpy(field, &m, sizeof(m));
        return true;
    }
    case T_PREFIX: {
        struct conf_route *r = &c->routes[c->n_routes - 1];
        if (v[0] != '/') {
            conf_fail(p, ln, "%s: %s must start with /", k, q);
            return false;
        }
        for (const char *s = v; *s; s++) {
            unsigned char ch = (unsigned char)*s;
            if (ch <= 0x20 || ch == 0x7f || ch == '?' || ch == '#') {
                conf_fail(p, ln, "%s: %s may hold only path characters (no blanks, ? or #)",
                          k, q);
                return false;
            }
        }
        if (!conf_copy(r->prefix, sizeof(r->prefix), v)) {
            conf_fail(p, ln, "%s: longer than %d characters", k, CONF_PREFIX_MAX - 1);
            return false;
        }
        r->prefix_len = strlen(v);
        for (size_t i = 0; i + 1 < c->n_routes; i++) {
            if (strcmp(c->routes[i].prefix, v) == 0) {
                conf_fail(p, ln, "%s: %s is already the prefix of [route %s] (line %d)", k, q,
                          c->routes[i].name, c->routes[i].line);
                return false;
            }
        }
        return true;
    }
    case T_NAME:
        if (!conf_name_ok(v)) {
            conf_fail(p, ln, "%s: %s is not a section name (A-Z a-z 0-9 _ . -)", k, q);
            return false;
        }
        strcpy(field, v);
        p->route_upstream_line[c->n_routes - 1] = ln;
        return true;
    case T_SECRET:
    case T_SECRET_FILE: {
        /* hash_secret and hash_secret_file fill the same field. */
        for (size_t i = 0; i < CONF_N_DIRECTIVES; i++) {
            const struct conf_directive *o = &conf_directives[i];
            if (o != d && o->sect == SECT_LIMITS &&
                (o->type == T_SECRET || o->type == T_SECRET_FILE) && (p->seen & (1ULL << i))) {
                conf_fail(p, ln, "%s: %s is already set (line %d); use one of them", k,
                          o->name, p->seen_line[i]);
                return false;
            }
        }
        if (d->type == T_SECRET_FILE) {
            if (!conf_read_secret_file(p, k, v, field, d->size, d->min))
                return false;
        } else {
            size_t n = strlen(v);
            if (n < d->min || n >= d->size) {
                conf_fail(p, ln, "%s: must be %llu to %zu characters (e.g. the output of "
                          "openssl rand -hex 32)", k, (unsigned long long)d->min, d->size - 1);
                return false;
            }
            memcpy(field, v, n + 1);
        }
        c->hash_secret_set = true;
        return true;
    }
    }
    conf_fail(p, ln, "%s: internal error: unknown directive type", k);
    return false;
}

/* One "name = value" line of the current section. */
static bool conf_handle(struct conf_parser *p, const char *name, const char *value)
{
    const struct conf_directive *d = NULL;
    size_t idx = 0;
    char q[96];

    if (p->failed)
        return false;
    if (p->sect == SECT_NONE) {
        conf_fail(p, p->lineno, "'%s' is outside any section (add e.g. [server] above it)",
                  conf_clean(name, q, sizeof(q)));
        return false;
    }
    for (size_t i = 0; i < CONF_N_DIRECTIVES; i++) {
        if (conf_directives[i].sect == p->sect && strcmp(conf_directives[i].name, name) == 0) {
            d = &conf_directives[i];
            idx = i;
            break;
        }
    }
    if (!d) {
        conf_fail(p, p->lineno, "unknown key '%s' in %s", conf_clean(name, q, sizeof(q)),
                  p->sect_label);
        return false;
    }
    if (p->seen & (1ULL << idx)) {
        if (!(d->flags & D_REPEAT)) {
            conf_fail(p, p->lineno, "%s is set twice in %s (first at line %d)", name,
                      p->sect_label, p->seen_line[idx]);
            return false;
        }
    } else if (d->flags & D_REPEAT) {
        /* The first use replaces the default list rather than adding to it. */
        size_t zero = 0;
        memcpy(conf_section_base(p) + d->off_n, &zero, sizeof(zero));
    }
    if (!conf_apply(p, d, value))
        return false;
    if (!(p->seen & (1ULL << idx)))
        p->seen_line[idx] = p->lineno;
    p->seen |= 1ULL << idx;
    p->seen_all |= 1ULL << idx;
    return true;
}

static int conf_ini_handler(void *user, const char *section, const char *name,
                            const char *value)
{
    (void)section;  /* ours is tracked by the reader: inih truncates long ones */
    return conf_handle(user, name, value ? value : "") ? 1 : 0;
}

/* Cut a '#' or ';' comment that starts the text or follows a blank. */
static void conf_strip_comment(char *s)
{
    for (char *c = s; *c; c++) {
        if ((*c == '#' || *c == ';') && (c == s || c_isspace(c[-1]))) {
            *c = '\0';
            break;
        }
    }
}

/*
 * inih's line source (fgets-style). Each call hands inih the next line,
 * cleaned: blanks and comments removed, syntax checked, section headers
 * handled here. A key line too long for inih's fixed buffer is handled here
 * with the same split inih does, and inih gets an empty line. Returns NULL
 * at the end of the file or after the first problem, which stops inih.
 */
static char *conf_reader(char *str, int num, void *stream)
{
    struct conf_parser *p = stream;
    ssize_t n;
    char *s, *e, *eq;
    size_t len;
    char q[96];

    if (p->failed)
        return NULL;
    if (num < 4) {
        conf_fail(p, p->lineno, "internal error: inih's line buffer is too small");
        return NULL;
    }
    n = getline(&p->line, &p->linecap, p->fp);
    if (n < 0) {
        if (ferror(p->fp))
            conf_fail(p, p->lineno, "read error: %s", strerror_r(errno, q, sizeof(q)));
        return NULL;
    }
    p->lineno++;
    if (memchr(p->line, '\0', (size_t)n)) {
        conf_fail(p, p->lineno, "the line holds a NUL byte (is this a text file?)");
        return NULL;
    }
    s = p->line;
    if (p->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3;
    while (c_isspace(*s))
        s++;
    conf_strip_comment(s);
    len = strlen(s);
    while (len > 0 && c_isspace(s[len - 1]))
        s[--len] = '\0';

    if (len == 0) {
        str[0] = '\n';
        str[1] = '\0';
        return str;
    }

    if (s[0] == '[') {
        e = strchr(s, ']');
        if (!e) {
            conf_fail(p, p->lineno, "section header %s has no closing ]",
                      conf_quote(s, q, sizeof(q)));
            return NULL;
        }
        if (e[1] != '\0') {
            conf_fail(p, p->lineno, "unexpected text after ] in %s", conf_quote(s, q, sizeof(q)));
            return NULL;
        }
        *e = '\0';
        s++;
        while (c_isspace(*s))
            s++;
        len = strlen(s);
        while (len > 0 && c_isspace(s[len - 1]))
            s[--len] = '\0';
        conf_section_begin(p, s);
        if (p->failed)
            return NULL;
        /* inih only needs to see a section; ours is what the handler uses. */
        snprintf(str, (size_t)num, "[%s]\n", conf_sect_names[p->sect]);
        return str;
    }

    eq = strchr(s, '=');
    if (!eq || eq == s || memchr(s, ':', (size_t)(eq - s))) {
        conf_fail(p, p->lineno, "expected key = value or [section], got %s",
                  conf_quote(s, q, sizeof(q)));
        return NULL;
    }
    if (len + 2 <= (size_t)num) {
        memcpy(str, s, len);
        str[len] = '\n';
        str[len + 1] = '\0';
        return str;
    }

    /* Longer than inih's line buffer: split it the way inih would. */
    e = eq;
    while (e > s && c_isspace(e[-1]))
        e--;
    *e = '\0';
    eq++;
    while (c_isspace(*eq))
        eq++;
    if (!conf_handle(p, s, eq))
        return NULL;
    str[0] = '\n';
    str[1] = '\0';
    return str;
}

/* Checks that need the whole file: routes exist, upstream names resolve. */
static void conf_validate(struct conf_parser *p)
{
    struct conf *c = p->conf;

    if (p->failed)
        return;
    if (c->n_routes == 0) {
        conf_fail(p, 0, "no [route] section: every request would get 404 (add e.g. "
                  "[route all] with prefix = / and upstream = NAME)");
        return;
    }
    for (size_t i = 0; i < c->n_routes; i++) {
        struct conf_route *r = &c->routes[i];
        bool found = false;
        for (size_t j = 0; j < c->n_upstreams; j++) {
            if (strcmp(c->upstreams[j].name, r->upstream_name) == 0) {
                r->upstream = j;
                found = true;
                break;
            }
        }
        if (!found) {
            conf_fail(p, p->route_upstream_line[i] ? p->route_upstream_line[i] : r->line,
                      "[route %s]: upstream \"%s\" is not defined (no [upstream %s] section)",
                      r->name, r->upstream_name, r->upstream_name);
            return;
        }
    }

    /* keepalive_timeout defaults to client_timeout. */
    for (size_t i = 0; i < CONF_N_DIRECTIVES; i++) {
        if (conf_directives[i].off == C_(keepalive_timeout_ms) &&
            conf_directives[i].sect == SECT_SERVER && !(p->seen_all & (1ULL << i)))
            c->keepalive_timeout_ms = c->client_timeout_ms;
    }

    if (c->workers == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        if (cpus < 1)
            cpus = 1;
        if (cpus > 1024)
            cpus = 1024;
        c->workers = (unsigned)cpus;
    }
}

/*
 * struct conf is large (fixed tables, about 9 MB) and mostly zeros. From
 * mmap its pages are zero-filled lazily, count in RSS only once touched, and
 * go back to the kernel at conf_free. From calloc, glibc's sliding mmap
 * threshold serves it from the heap after the first free: calloc then
 * touches all of it and free keeps it, so reloads raised RSS in ~9 MB steps
 * (scripts/soak saw 8 -> 26 MB over ten minutes of reloads).
 */
static struct conf *conf_alloc(void)
{
    void *p = mmap(NULL, sizeof(struct conf), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

struct conf *conf_load(const char *path, char *err, size_t errlen)
{
    struct conf_parser p;
    struct conf *c = NULL;
    const char *stage = NULL;
    int rc;

    memset(&p, 0, sizeof(p));
    p.err = err;
    p.errlen = errlen;
    if (err && errlen)
        err[0] = '\0';

    c = conf_alloc();
    if (!c) {
        stage = "out of memory";
        goto fail;
    }
    p.conf = c;
    if (!path || !conf_copy(c->path, sizeof(c->path), path)) {
        stage = "the path is empty or too long";
        goto fail;
    }
    if (!conf_defaults(c)) {
        stage = "cannot set the defaults";
        goto fail;
    }
    p.fp = fopen(path, "re");
    if (!p.fp) {
        char eb[128];
        conf_fail(&p, 0, "cannot open: %s", strerror_r(errno, eb, sizeof(eb)));
        goto fail;
    }

    rc = ini_parse_stream(conf_reader, &p, conf_ini_handler, &p);
    if (!p.failed && rc == -2)
        conf_fail(&p, p.lineno, "out of memory");
    else if (!p.failed && rc != 0)
        conf_fail(&p, rc > 0 ? rc : p.lineno, "cannot parse this line");
    conf_section_end(&p);
    conf_validate(&p);
    if (p.failed)
        goto fail;

    fclose(p.fp);
    free(p.line);
    return c;

fail:
    if (stage && err && errlen)
        snprintf(err, errlen, "%s:0: %s", path ? path : "(null)", stage);
    if (p.fp)
        fclose(p.fp);
    free(p.line);
    conf_free(c);
    return NULL;
}

void conf_free(struct conf *conf)
{
    if (!conf)
        return;
    explicit_bzero(conf->hash_secret, sizeof(conf->hash_secret));
    explicit_bzero(conf->redis_password, sizeof(conf->redis_password));
    munmap(conf, sizeof(*conf));
}
