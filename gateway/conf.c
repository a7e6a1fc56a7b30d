/*
 * conf: reads the one conf file into a fresh struct conf and validates it
 * whole before anyone sees it. A line reader counts lines, strips '#' and
 * ';' comments, rejects malformed lines and splits "key = value" itself (the
 * syntax is small enough that a library would only split at '='). Every
 * directive is one row of a table: section, name, the function that parses
 * its value, the one that prints it, where it lives, bounds, its default (as
 * text, parsed by the same function, so the table is the one source of
 * defaults) and flags (restart-only, secret, ...). The same rows drive
 * --dump-conf, --list-directives and the reload diff of restart-only
 * directives. Nothing here is global and nothing here logs: a problem comes
 * back as "PATH:LINE: problem" for the caller to print.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <http_parser.h>

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

/*
 * The longest list item (and address) read: items are cut from a value into
 * a buffer this large, and an address longer than this is "too long" before
 * it is parsed. An address that parses is at most CONF_ADDR_MAX.
 */
#define CONF_ITEM_MAX (CONF_PATH_MAX + 8)

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
 * An address that parsed keeps its text for logs. Every valid form fits
 * CONF_ADDR_MAX but for a port written with a run of leading zeros.
 */
static bool conf_addr_text(const char *s, size_t len, struct conf_addr *out, char *why,
                           size_t whylen)
{
    if (len >= sizeof(out->text)) {
        snprintf(why, whylen, "too long");
        return false;
    }
    memcpy(out->text, s, len + 1);
    return true;
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
    /* The bound of the list item buffer: longer input gets this message
     * before any other, as when the text buffer was that large. */
    if (len >= CONF_ITEM_MAX) {
        snprintf(why, whylen, "too long");
        return false;
    }
    memset(out, 0, sizeof(*out));

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
        return conf_addr_text(s, len, out, why, whylen);
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
    return conf_addr_text(s, len, out, why, whylen);
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
 * The directive table: its types.
 */

enum conf_sect {
    SECT_NONE,
    SECT_SERVER,
    SECT_TLS,
    SECT_ENVELOPE,
    SECT_CORRELATION,
    SECT_REDIS,
    SECT_LIMITS,
    SECT_AUTH,
    SECT_CORS,
    SECT_ADMIN,
    SECT_UPSTREAM, /* named sections from here on; singletons before */
    SECT_PLAN,
    SECT_ROUTE,
    SECT_COUNT
};

static const char *const conf_sect_names[SECT_COUNT] = {
    [SECT_NONE] = "", [SECT_SERVER] = "server", [SECT_TLS] = "tls", [SECT_ENVELOPE] = "envelope",
    [SECT_CORRELATION] = "correlation", [SECT_REDIS] = "redis", [SECT_LIMITS] = "limits",
    [SECT_AUTH] = "auth", [SECT_CORS] = "cors", [SECT_ADMIN] = "admin",
    [SECT_UPSTREAM] = "upstream", [SECT_PLAN] = "plan", [SECT_ROUTE] = "route",
};

#define D_REPEAT   0x01u /* may repeat; the first use replaces the default list */
#define D_REQUIRED 0x02u
#define D_EMPTY_OK 0x04u
#define D_RESTART  0x08u /* a reload cannot apply it: kept until restart (singleton sections) */
#define D_SECRET   0x10u /* dumped as <hidden> */
#define D_UNIQUE   0x20u /* an address list whose entries must differ (they are bound) */
/*
 * One of a run of rows filled together, an entry per pair ([tls] certificate,
 * then its key): each may repeat, none resets the list, and the dump writes
 * the pairs as they were read rather than row by row.
 */
#define D_PAIR     0x40u
/*
 * A route's override of a global value: no default; off_n is the offset of
 * its has_* flag, set when the line is read. Unset, the dump writes it as a
 * "# name =" line naming what applies.
 */
#define D_OVERRIDE 0x80u

/*
 * A value as text, for the dump and the reload diff. The longest is a full
 * upstream server list.
 */
#define CONF_TEXT_MAX (CONF_MAX_SERVERS * (CONF_ADDR_MAX + 3) + 64)
_Static_assert(CONF_TEXT_MAX > CONF_PATH_MAX + 64, "a path fits a value text");

struct conf_text {
    size_t len;
    bool cut;       /* did not fit: never expected, refused by the dump */
    char s[CONF_TEXT_MAX];
};

struct conf_parser;
struct conf_directive;

/*
 * Parse value V (Q: V quoted for messages) into the row's field in BASE, the
 * struct of the current section (struct conf, conf_upstream or conf_route).
 * On a problem: conf_fail and false.
 */
typedef bool (*conf_parse_fn)(struct conf_parser *p, const struct conf_directive *d, char *base,
                              const char *v, const char *q);
/*
 * Write the row's value in BASE to T as the file would hold it and return
 * true; or return false when it has none, with a short note ("(none)") in T.
 */
typedef bool (*conf_fmt_fn)(const struct conf_directive *d, const char *base,
                            struct conf_text *t);

struct conf_directive {
    enum conf_sect sect;
    const char *name;
    conf_parse_fn parse;
    conf_fmt_fn fmt;
    size_t off;       /* the field, in struct conf / conf_upstream / conf_route */
    size_t off_n;     /* lists: the count field; D_OVERRIDE: the has_* flag */
    size_t size;      /* char buffers: their size; lists: the element size */
    uint64_t min, max;/* numbers, sizes, durations; lists: max entries; secrets: min length */
    const char *def;  /* the default as written in the file; NULL: none */
    unsigned flags;
};

/* ---------------------------------------------------------------------------
 * The parser state and messages.
 */

/* Where a route's directives were read, for the checks of the whole file. */
struct conf_route_lines {
    int prefix;
    int upstream;
    int match_header;
    int auth;
    int require_scope;
    int forbid_api_keys;
    int hosts[CONF_MAX_ROUTE_HOSTS];    /* of each entry of hosts */
};

/* The most rows the table may have: the size of the parser's seen arrays. */
#define CONF_N_ROWS 128

struct conf_parser {
    struct conf *conf;
    FILE *fp;
    char *line;                 /* getline buffer */
    size_t linecap;
    int lineno;
    bool failed;
    char *err;
    size_t errlen;

    enum conf_sect sect;        /* the current section */
    char sect_label[CONF_NAME_MAX + 16];  /* "[route tasks]", for messages */
    int sect_line;
    bool seen[CONF_N_ROWS];     /* directives seen in the current section, by row */
    bool seen_all[CONF_N_ROWS]; /* ... in any section */
    int seen_line[CONF_N_ROWS]; /* first line of each, in the current section */
    int first_line[CONF_N_ROWS];  /* ... in any section (exact for singleton sections) */
    int listen_line[CONF_MAX_LISTEN];   /* where each [server] listen address was read */
    int single_line[SECT_COUNT];        /* where each singleton section started */
    struct conf_route_lines *rlines;    /* [conf->n_routes], grown with conf->routes */
    size_t routes_cap;                  /* room in conf->routes and rlines */
    const char *secret_by;      /* hash_secret or hash_secret_file, once one is set */
    int secret_line;
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

/* V into the row's char field, or a "longer than" failure. */
static bool copy_field(struct conf_parser *p, const struct conf_directive *d, char *base,
                       const char *v)
{
    if (conf_copy(base + d->off, d->size, v))
        return true;
    conf_fail(p, p->lineno, "%s: longer than %zu characters", d->name, d->size - 1);
    return false;
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

#define MS_S 1000ULL
#define MS_H (3600ULL * 1000)
#define KB 1024ULL
#define MB (1024ULL * 1024)

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

/* ---------------------------------------------------------------------------
 * Parse functions: one per value type, or named for the one directive that
 * has its own syntax. Every message is "KEY: problem".
 */

static bool set_size(struct conf_parser *p, const struct conf_directive *d, char *base,
                     const char *v, const char *q)
{
    char a[32], b[32];
    size_t n;

    if (!conf_parse_size(v, &n)) {
        conf_fail(p, p->lineno, "%s: %s is not a size (use e.g. 16k, 1m)", d->name, q);
        return false;
    }
    if (n < d->min || n > d->max) {
        conf_fmt_size(d->min, a, sizeof(a));
        conf_fmt_size(d->max, b, sizeof(b));
        if (d->max == SIZE_MAX)
            conf_fail(p, p->lineno, "%s: %s must be at least %s", d->name, q, a);
        else
            conf_fail(p, p->lineno, "%s: %s must be from %s to %s", d->name, q, a, b);
        return false;
    }
    memcpy(base + d->off, &n, sizeof(n));
    return true;
}

static bool set_duration(struct conf_parser *p, const struct conf_directive *d, char *base,
                         const char *v, const char *q)
{
    char a[32], b[32];
    uint64_t ms;

    if (!conf_parse_duration(v, &ms)) {
        if (conf_all_digits(v))
            conf_fail(p, p->lineno, "%s: %s needs a unit (e.g. %ss or %sms)", d->name, q, v, v);
        else
            conf_fail(p, p->lineno, "%s: %s is not a duration (use e.g. 500ms, 30s, 5m, 1h)",
                      d->name, q);
        return false;
    }
    if (ms < d->min || ms > d->max) {
        conf_fmt_ms(d->min, a, sizeof(a));
        conf_fmt_ms(d->max, b, sizeof(b));
        conf_fail(p, p->lineno, "%s: %s must be from %s to %s", d->name, q, a, b);
        return false;
    }
    memcpy(base + d->off, &ms, sizeof(ms));
    return true;
}

static bool set_rate(struct conf_parser *p, const struct conf_directive *d, char *base,
                     const char *v, const char *q)
{
    struct conf_rate r;

    if (!conf_parse_rate(v, &r)) {
        conf_fail(p, p->lineno, "%s: %s is not a rate (use N/DURATION with N >= 1, e.g. 100/1m, "
                  "500/15m, 5000/1h)", d->name, q);
        return false;
    }
    memcpy(base + d->off, &r, sizeof(r));
    return true;
}

static bool set_bool(struct conf_parser *p, const struct conf_directive *d, char *base,
                     const char *v, const char *q)
{
    bool bv;

    if (!conf_parse_bool(v, &bv)) {
        conf_fail(p, p->lineno, "%s: %s is not yes or no", d->name, q);
        return false;
    }
    memcpy(base + d->off, &bv, sizeof(bv));
    return true;
}

static bool set_uint(struct conf_parser *p, const struct conf_directive *d, char *base,
                     const char *v, const char *q)
{
    uint64_t n;
    const char *end;
    unsigned u;

    if (!conf_parse_digits(v, &n, &end) || *end) {
        conf_fail(p, p->lineno, "%s: %s is not a whole number", d->name, q);
        return false;
    }
    if (n < d->min || n > d->max) {
        conf_fail(p, p->lineno, "%s: %s must be from %llu to %llu", d->name, q,
                  (unsigned long long)d->min, (unsigned long long)d->max);
        return false;
    }
    u = (unsigned)n;
    memcpy(base + d->off, &u, sizeof(u));
    return true;
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

/* conf_next_item of row D's value Q, or a failure saying what is wrong with it. */
static bool list_item(struct conf_parser *p, const struct conf_directive *d, const char *q,
                      const char **cursor, char *item, size_t itemlen)
{
    bool too_long;
    if (conf_next_item(cursor, item, itemlen, &too_long))
        return true;
    conf_fail(p, p->lineno,
              too_long ? "%s: an item of %s is too long" : "%s: empty item in the list %s",
              d->name, q);
    return false;
}

/* Fill entry COUNT of LIST (entries of d->size bytes) from ITEM (QI: quoted). */
typedef bool (*conf_item_fn)(struct conf_parser *p, const struct conf_directive *d, char *list,
                             size_t count, const char *item, const char *qi);

/* A comma list appended to the row's list, each item through SET_ITEM. */
static bool conf_set_list(struct conf_parser *p, const struct conf_directive *d, char *base,
                          const char *v, const char *q, conf_item_fn set_item)
{
    char item[CONF_ITEM_MAX], qi[96];
    const char *cur = v;
    size_t count;

    memcpy(&count, base + d->off_n, sizeof(count));
    while (cur) {
        if (!list_item(p, d, q, &cur, item, sizeof(item)))
            return false;
        conf_quote(item, qi, sizeof(qi));
        if (count >= d->max) {
            conf_fail(p, p->lineno, "%s: too many (at most %llu)", d->name,
                      (unsigned long long)d->max);
            return false;
        }
        if (!set_item(p, d, base + d->off, count, item, qi))
            return false;
        count++;
        memcpy(base + d->off_n, &count, sizeof(count));
    }
    return true;
}

/* The flags a [server] listen address may carry after it, in the order the dump writes them. */
static const char *const conf_listen_flags = "tls, proxy_protocol";

static bool *conf_listen_flag(struct conf_addr *ad, const char *word)
{
    if (strcmp(word, "tls") == 0)
        return &ad->tls;
    if (strcmp(word, "proxy_protocol") == 0)
        return &ad->proxy_protocol;
    return NULL;
}

/*
 * Entry COUNT of an address list from ITEM: the address, then (on [server]
 * listen only) flags separated by blanks ("0.0.0.0:443 tls proxy_protocol").
 */
static bool set_host_port_item(struct conf_parser *p, const struct conf_directive *d, char *list,
                               size_t count, const char *item, const char *qi)
{
    struct conf_addr *all = (struct conf_addr *)list, *ad = &all[count];
    char addr[CONF_ITEM_MAX], why[160], qa[96], qw[96];
    bool listen = d->sect == SECT_SERVER;  /* [server] listen, the one list there */
    size_t alen = strcspn(item, " \t");
    const char *rest = item + alen;

    (void)qi; /* the address alone is quoted back, without its flags */
    memcpy(addr, item, alen);
    addr[alen] = '\0';
    conf_quote(addr, qa, sizeof(qa));
    if (!conf_addr_parse(addr, ad, false, why, sizeof(why))) {
        conf_fail(p, p->lineno, "%s: %s is not HOST:PORT: %s", d->name, qa, why);
        return false;
    }
    while (*rest) {
        char word[32];
        size_t n;
        bool *flag;

        while (c_isspace(*rest))
            rest++;
        n = strcspn(rest, " \t");
        if (n == 0)
            break;
        if (n < sizeof(word)) {
            memcpy(word, rest, n);
            word[n] = '\0';
        } else {
            word[0] = '\0';
        }
        conf_quote(word[0] ? word : rest, qw, sizeof(qw));
        flag = word[0] ? conf_listen_flag(ad, word) : NULL;
        if (!listen) {
            if (flag)
                conf_fail(p, p->lineno, "%s: flag %s after %s: listen flags are allowed only on "
                          "[server] listen%s", d->name, qw, qa,
                          d->sect == SECT_UPSTREAM && flag == &ad->tls ?
                          " (TLS to the servers of an upstream is its tls = yes)" : "");
            else
                conf_fail(p, p->lineno, "%s: unexpected %s after %s", d->name, qw, qa);
            return false;
        }
        if (!flag) {
            conf_fail(p, p->lineno, "%s: unknown flag %s after %s (known: %s)", d->name, qw, qa,
                      conf_listen_flags);
            return false;
        }
        if (*flag) {
            conf_fail(p, p->lineno, "%s: flag %s is given twice after %s", d->name, word, qa);
            return false;
        }
        *flag = true;
        rest += n;
    }
    /* A listen address twice would fail to bind, whatever its flags; say so here. */
    for (size_t i = 0; (d->flags & D_UNIQUE) && i < count; i++) {
        if (all[i].salen == ad->salen && memcmp(&all[i].sa, &ad->sa, ad->salen) == 0) {
            conf_fail(p, p->lineno, "%s: %s is listed twice", d->name, qa);
            return false;
        }
    }
    if (listen && count < CONF_MAX_LISTEN)
        p->listen_line[count] = p->lineno;
    return true;
}

/*
 * HOST:PORT, [V6]:PORT, as a list: listen addresses and upstream servers;
 * those of [server] listen may carry flags.
 */
static bool set_host_ports(struct conf_parser *p, const struct conf_directive *d, char *base,
                           const char *v, const char *q)
{
    return conf_set_list(p, d, base, v, q, set_host_port_item);
}

static bool set_header_item(struct conf_parser *p, const struct conf_directive *d, char *list,
                            size_t count, const char *item, const char *qi)
{
    if (!conf_header_name_ok(item)) {
        conf_fail(p, p->lineno, "%s: %s is not a header name", d->name, qi);
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        if (strcasecmp(list + i * d->size, item) == 0) {
            conf_fail(p, p->lineno, "%s: %s is listed twice", d->name, qi);
            return false;
        }
    }
    strcpy(list + count * d->size, item);  /* conf_header_name_ok bounded it */
    return true;
}

static bool set_header_list(struct conf_parser *p, const struct conf_directive *d, char *base,
                            const char *v, const char *q)
{
    return conf_set_list(p, d, base, v, q, set_header_item);
}

static bool set_trusted_proxy_item(struct conf_parser *p, const struct conf_directive *d,
                                   char *list, size_t count, const char *item, const char *qi)
{
    struct conf_cidr cidr;

    if (!conf_parse_cidr(item, &cidr)) {
        conf_fail(p, p->lineno, "%s: %s is not an address or CIDR range (e.g. 10.0.0.0/8, ::1)",
                  d->name, qi);
        return false;
    }
    memcpy(list + count * d->size, &cidr, sizeof(cidr));
    return true;
}

static bool set_trusted_proxies(struct conf_parser *p, const struct conf_directive *d,
                                char *base, const char *v, const char *q)
{
    return conf_set_list(p, d, base, v, q, set_trusted_proxy_item);
}

/* [redis] address: the one address that may also be a unix socket. */
static bool set_redis_address(struct conf_parser *p, const struct conf_directive *d, char *base,
                              const char *v, const char *q)
{
    struct conf_addr ad;
    char why[160];

    if (!conf_addr_parse(v, &ad, true, why, sizeof(why))) {
        conf_fail(p, p->lineno, "%s: %s is not HOST:PORT or unix:/PATH: %s", d->name, q, why);
        return false;
    }
    memcpy(base + d->off, &ad, sizeof(ad));
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

/* Printable text, blanks allowed. */
static bool set_password(struct conf_parser *p, const struct conf_directive *d, char *base,
                         const char *v, const char *q)
{
    if (!conf_printable(v, true)) {
        conf_fail(p, p->lineno, "%s: %s may not contain control characters", d->name, q);
        return false;
    }
    return copy_field(p, d, base, v);
}

/* Printable text without blanks. */
static bool set_key_prefix(struct conf_parser *p, const struct conf_directive *d, char *base,
                           const char *v, const char *q)
{
    if (!conf_printable(v, false)) {
        conf_fail(p, p->lineno, "%s: %s may not contain blanks or control characters", d->name,
                  q);
        return false;
    }
    return copy_field(p, d, base, v);
}

static bool set_header(struct conf_parser *p, const struct conf_directive *d, char *base,
                       const char *v, const char *q)
{
    if (!conf_header_name_ok(v)) {
        conf_fail(p, p->lineno, "%s: %s is not a header name (1-%d characters, no blanks)",
                  d->name, q, CONF_NAME_MAX - 1);
        return false;
    }
    strcpy(base + d->off, v);  /* conf_header_name_ok bounded it */
    return true;
}

static const char *const conf_log_level_names[] = {
    [CONF_LOG_DEBUG] = "debug", [CONF_LOG_INFO] = "info", [CONF_LOG_WARN] = "warn",
    [CONF_LOG_ERROR] = "error",
};

static bool set_log_level(struct conf_parser *p, const struct conf_directive *d, char *base,
                          const char *v, const char *q)
{
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
        conf_fail(p, p->lineno, "%s: %s is not one of debug, info, warn, error", d->name, q);
        return false;
    }
    memcpy(base + d->off, &l, sizeof(l));
    return true;
}

static bool set_access_log(struct conf_parser *p, const struct conf_directive *d, char *base,
                           const char *v, const char *q)
{
    if (strcmp(v, "stdout") != 0 && strcmp(v, "off") != 0 && v[0] != '/') {
        conf_fail(p, p->lineno, "%s: %s is not stdout, off or an absolute path", d->name, q);
        return false;
    }
    if (!conf_printable(v, true) || !conf_copy(base + d->off, d->size, v)) {
        conf_fail(p, p->lineno, "%s: %s is not a usable path", d->name, q);
        return false;
    }
    return true;
}

static bool set_profile(struct conf_parser *p, const struct conf_directive *d, char *base,
                        const char *v, const char *q)
{
    enum envelope_profile pr;

    if (!envelope_profile_parse(v, &pr)) {
        conf_fail(p, p->lineno, "%s: %s is not one of nested, flat, simple, status, i18n, "
                  "problem", d->name, q);
        return false;
    }
    memcpy(base + d->off, &pr, sizeof(pr));
    return true;
}

static const char *const conf_on_error_names[] = {
    [CONF_ON_ERROR_ALLOW] = "allow", [CONF_ON_ERROR_DENY] = "deny",
    [CONF_ON_ERROR_LOCAL] = "local",
};

static bool set_on_error(struct conf_parser *p, const struct conf_directive *d, char *base,
                         const char *v, const char *q)
{
    enum conf_on_error oe;

    if (strcasecmp(v, "allow") == 0)
        oe = CONF_ON_ERROR_ALLOW;
    else if (strcasecmp(v, "deny") == 0)
        oe = CONF_ON_ERROR_DENY;
    else if (strcasecmp(v, "local") == 0)
        oe = CONF_ON_ERROR_LOCAL;
    else {
        conf_fail(p, p->lineno, "%s: %s is not one of allow, deny, local", d->name, q);
        return false;
    }
    memcpy(base + d->off, &oe, sizeof(oe));
    return true;
}

static bool set_methods(struct conf_parser *p, const struct conf_directive *d, char *base,
                        const char *v, const char *q)
{
    uint64_t m;

    if (!conf_parse_methods(v, &m)) {
        conf_fail(p, p->lineno, "%s: %s is not a list of HTTP methods (e.g. GET, POST, DELETE)",
                  d->name, q);
        return false;
    }
    /* A resource that answers GET answers HEAD (RFC 9110 9.3.2). */
    if (m & (1ULL << HTTP_GET))
        m |= 1ULL << HTTP_HEAD;
    memcpy(base + d->off, &m, sizeof(m));
    return true;
}

/* The parser's record of the lines of the route being read. */
static struct conf_route_lines *conf_cur_lines(struct conf_parser *p)
{
    return &p->rlines[p->conf->n_routes - 1];
}

/* Two routes with one prefix are told apart by hosts and match_header (conf_validate). */
static bool set_route_prefix(struct conf_parser *p, const struct conf_directive *d, char *base,
                             const char *v, const char *q)
{
    struct conf_route *r = (struct conf_route *)base;

    if (v[0] != '/') {
        conf_fail(p, p->lineno, "%s: %s must start with /", d->name, q);
        return false;
    }
    for (const char *s = v; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= 0x20 || ch == 0x7f || ch == '?' || ch == '#') {
            conf_fail(p, p->lineno, "%s: %s may hold only path characters (no blanks, ? or #)",
                      d->name, q);
            return false;
        }
    }
    if (!conf_copy(base + d->off, d->size, v)) {
        conf_fail(p, p->lineno, "%s: longer than %d characters", d->name, CONF_PREFIX_MAX - 1);
        return false;
    }
    r->prefix_len = strlen(v);
    conf_cur_lines(p)->prefix = p->lineno;
    return true;
}

/* A route's upstream: a section name, resolved once the whole file is read. */
static bool set_route_upstream(struct conf_parser *p, const struct conf_directive *d, char *base,
                               const char *v, const char *q)
{
    if (!conf_name_ok(v)) {
        conf_fail(p, p->lineno, "%s: %s is not a section name (A-Z a-z 0-9 _ . -)", d->name, q);
        return false;
    }
    strcpy(base + d->off, v);
    conf_cur_lines(p)->upstream = p->lineno;
    return true;
}

/* hash_secret and hash_secret_file fill the same secret: one of them only. */
static bool conf_secret_unset(struct conf_parser *p, const struct conf_directive *d)
{
    if (p->secret_by) {
        conf_fail(p, p->lineno, "%s: %s is already set (line %d); use one of them", d->name,
                  p->secret_by, p->secret_line);
        return false;
    }
    p->secret_by = d->name;
    p->secret_line = p->lineno;
    return true;
}

static bool set_hash_secret(struct conf_parser *p, const struct conf_directive *d, char *base,
                            const char *v, const char *q)
{
    size_t n = strlen(v);

    (void)q;  /* a secret is never quoted back */
    if (!conf_secret_unset(p, d))
        return false;
    if (n < d->min || n >= d->size) {
        conf_fail(p, p->lineno, "%s: must be %llu to %zu characters (e.g. the output of "
                  "openssl rand -hex 32)", d->name, (unsigned long long)d->min, d->size - 1);
        return false;
    }
    memcpy(base + d->off, v, n + 1);
    p->conf->hash_secret_set = true;
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

/* The row's field keeps the path (for the dump); the secret goes to hash_secret. */
static bool set_hash_secret_file(struct conf_parser *p, const struct conf_directive *d,
                                 char *base, const char *v, const char *q)
{
    struct conf *c = p->conf;

    if (!conf_secret_unset(p, d))
        return false;
    if (!conf_read_secret_file(p, d->name, v, c->hash_secret, sizeof(c->hash_secret), d->min))
        return false;
    if (!conf_copy(base + d->off, d->size, v)) {
        conf_fail(p, p->lineno, "%s: %s is not a usable path", d->name, q);
        return false;
    }
    c->hash_secret_set = true;
    return true;
}

/*
 * A file (certificate, key, CA bundle): printable text, blanks allowed, kept
 * as written. A relative path is relative to the working directory, as
 * hash_secret_file's is; the TLS module opens it.
 */
static bool conf_set_path(struct conf_parser *p, const struct conf_directive *d, char *dst,
                          size_t dstlen, const char *v, const char *q)
{
    if (!conf_printable(v, true)) {
        conf_fail(p, p->lineno, "%s: %s is not a usable path", d->name, q);
        return false;
    }
    if (!conf_copy(dst, dstlen, v)) {
        conf_fail(p, p->lineno, "%s: longer than %zu characters", d->name, dstlen - 1);
        return false;
    }
    return true;
}

static bool set_file(struct conf_parser *p, const struct conf_directive *d, char *base,
                     const char *v, const char *q)
{
    return conf_set_path(p, d, base + d->off, d->size, v, q);
}

/*
 * A file another module reads later ([auth] jwks_file, keys_file): opened
 * here once, so that a missing or unreadable file is an error on its line
 * at load (and on reload) instead of a failure at the first request. Its
 * contents are the module's to check. O_NONBLOCK: a FIFO does not hang the load.
 */
static bool conf_check_readable(struct conf_parser *p, const struct conf_directive *d,
                                const char *path)
{
    char q[96], eb[128];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    bool dir;

    if (fd < 0) {
        conf_fail(p, p->lineno, "%s: cannot open %s: %s", d->name, conf_quote(path, q, sizeof(q)),
                  strerror_r(errno, eb, sizeof(eb)));
        return false;
    }
    dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    close(fd);
    if (dir) {
        conf_fail(p, p->lineno, "%s: %s is a directory, not a file", d->name,
                  conf_quote(path, q, sizeof(q)));
        return false;
    }
    return true;
}

/* A path (as set_file) to a file that must exist and be readable now. */
static bool set_readable_file(struct conf_parser *p, const struct conf_directive *d, char *base,
                              const char *v, const char *q)
{
    return conf_set_path(p, d, base + d->off, d->size, v, q) && conf_check_readable(p, d, v);
}

/*
 * [auth] hs256_secret_file: the HMAC key of HS256 tokens, the first line of
 * the file (trailing CR/LF removed), at least d->min bytes (RFC 7518 3.2: a
 * key as long as the hash). Read here only to check it; the field keeps the
 * path and the auth module reads the file itself.
 */
static bool set_hs256_secret_file(struct conf_parser *p, const struct conf_directive *d,
                                  char *base, const char *v, const char *q)
{
    char secret[512];
    bool ok;

    if (!conf_set_path(p, d, base + d->off, d->size, v, q))
        return false;
    ok = conf_read_secret_file(p, d->name, v, secret, sizeof(secret), d->min);
    explicit_bzero(secret, sizeof(secret));
    return ok;
}

/* [auth] *_claim: a JWT claim's name, 1-63 printable ASCII, no blank, quote or backslash. */
static bool set_claim(struct conf_parser *p, const struct conf_directive *d, char *base,
                      const char *v, const char *q)
{
    size_t n = strlen(v);

    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
            conf_fail(p, p->lineno, "%s: %s is not a claim name (printable ASCII without blanks, "
                      "quotes or backslashes)", d->name, q);
            return false;
        }
    }
    return copy_field(p, d, base, v);
}

/* A token68 character (RFC 7235) but '=': what an API key is made of. */
static bool c_istoken68(char c)
{
    return c_isalpha(c) || c_isdigit(c) || (c != '\0' && strchr("-._~+/", c));
}

/* [auth] key_prefix_required: the start every API key must have; may be empty. */
static bool set_key_prefix_required(struct conf_parser *p, const struct conf_directive *d,
                                    char *base, const char *v, const char *q)
{
    for (const char *c = v; *c; c++) {
        if (!c_istoken68(*c)) {
            conf_fail(p, p->lineno, "%s: %s may hold only A-Z a-z 0-9 - . _ ~ + / (the "
                      "characters of an API key)", d->name, q);
            return false;
        }
    }
    return copy_field(p, d, base, v);
}

/* A header name, or empty: the header is not sent. */
static bool set_header_or_none(struct conf_parser *p, const struct conf_directive *d, char *base,
                               const char *v, const char *q)
{
    if (!*v) {
        base[d->off] = '\0';
        return true;
    }
    return set_header(p, d, base, v, q);
}

static const char *const conf_auth_names[] = {
    [CONF_AUTH_NONE] = "none", [CONF_AUTH_JWT] = "jwt", [CONF_AUTH_API_KEY] = "api_key",
    [CONF_AUTH_JWT_OR_API_KEY] = "jwt_or_api_key",
};

/* [route] auth = jwt | api_key | jwt_or_api_key | none; its line for conf_validate. */
static bool set_route_auth(struct conf_parser *p, const struct conf_directive *d, char *base,
                           const char *v, const char *q)
{
    for (size_t i = 0; i < sizeof(conf_auth_names) / sizeof(conf_auth_names[0]); i++) {
        if (strcasecmp(v, conf_auth_names[i]) == 0) {
            enum conf_auth a = (enum conf_auth)i;
            memcpy(base + d->off, &a, sizeof(a));
            conf_cur_lines(p)->auth = p->lineno;
            return true;
        }
    }
    conf_fail(p, p->lineno, "%s: %s is not one of jwt, api_key, jwt_or_api_key, none", d->name, q);
    return false;
}

/* A scope token's character: A-Z a-z 0-9 . _ : / - */
static bool c_isscope(char c)
{
    return c_isalpha(c) || c_isdigit(c) || (c != '\0' && strchr("._:/-", c));
}

/*
 * [route] require_scope: scope tokens separated by commas and/or blanks,
 * all required; kept as "a b c" (single blanks), each token once.
 */
static bool set_route_scopes(struct conf_parser *p, const struct conf_directive *d, char *base,
                             const char *v, const char *q)
{
    char out[CONF_SCOPE_MAX], item[CONF_ITEM_MAX], tok[CONF_SCOPE_MAX + 8], qt[96];
    const char *cur = v;
    size_t len = 0, count = 0;

    out[0] = '\0';
    while (cur) {
        if (!list_item(p, d, q, &cur, item, sizeof(item)))
            return false;
        for (const char *s = item;;) {
            size_t n;
            s += strspn(s, " \t");
            if (!*s)
                break;
            n = strcspn(s, " \t");
            snprintf(tok, sizeof(tok), "%.*s", (int)n, s); /* for messages if longer */
            conf_quote(tok, qt, sizeof(qt));
            for (size_t i = 0; i < n; i++) {
                if (!c_isscope(s[i])) {
                    conf_fail(p, p->lineno, "%s: %s is not a scope (A-Z a-z 0-9 . _ : / -; "
                              "scopes are separated by commas or blanks)", d->name, qt);
                    return false;
                }
            }
            if (++count > d->max) {
                conf_fail(p, p->lineno, "%s: too many scopes (at most %llu)", d->name,
                          (unsigned long long)d->max);
                return false;
            }
            if (len + (len ? 1 : 0) + n >= sizeof(out)) {
                conf_fail(p, p->lineno, "%s: longer than %zu characters", d->name, sizeof(out) - 1);
                return false;
            }
            for (const char *at = out; (at = strstr(at, tok)) != NULL; at++) {
                if ((at == out || at[-1] == ' ') && (at[n] == ' ' || at[n] == '\0')) {
                    conf_fail(p, p->lineno, "%s: %s is listed twice", d->name, qt);
                    return false;
                }
            }
            len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", len ? " " : "", tok);
            s += n;
        }
    }
    memcpy(base + d->off, out, len + 1);
    conf_cur_lines(p)->require_scope = p->lineno;
    return true;
}

/* [route] forbid_api_keys: a bool whose line conf_validate may name. */
static bool set_route_forbid_api_keys(struct conf_parser *p, const struct conf_directive *d,
                                      char *base, const char *v, const char *q)
{
    if (!set_bool(p, d, base, v, q))
        return false;
    conf_cur_lines(p)->forbid_api_keys = p->lineno;
    return true;
}

/* The pair whose certificate still waits for its key, or NULL. */
static struct conf_cert *conf_open_cert(struct conf *c)
{
    if (c->n_certs == 0 || c->certs[c->n_certs - 1].key[0])
        return NULL;
    return &c->certs[c->n_certs - 1];
}

/* [tls] certificate: begins a pair, which the next key completes. */
static bool set_tls_certificate(struct conf_parser *p, const struct conf_directive *d, char *base,
                                const char *v, const char *q)
{
    struct conf *c = (struct conf *)base;
    struct conf_cert *open = conf_open_cert(c), *ct;

    if (open) {
        conf_fail(p, p->lineno, "%s: the certificate of line %d has no key yet (each "
                  "certificate = is followed by its key =)", d->name, open->line);
        return false;
    }
    if (c->n_certs >= d->max) {
        conf_fail(p, p->lineno, "%s: too many (at most %llu)", d->name, (unsigned long long)d->max);
        return false;
    }
    ct = &c->certs[c->n_certs];
    memset(ct, 0, sizeof(*ct));
    if (!conf_set_path(p, d, ct->certificate, sizeof(ct->certificate), v, q))
        return false;
    ct->line = p->lineno;
    c->n_certs++;
    return true;
}

/* [tls] key: completes the pair the certificate before it began. */
static bool set_tls_key(struct conf_parser *p, const struct conf_directive *d, char *base,
                        const char *v, const char *q)
{
    struct conf_cert *ct = conf_open_cert((struct conf *)base);

    if (!ct) {
        conf_fail(p, p->lineno, "%s: no certificate before it (each key = follows its "
                  "certificate =)", d->name);
        return false;
    }
    if (!conf_set_path(p, d, ct->key, sizeof(ct->key), v, q))
        return false;
    ct->key_line = p->lineno;
    return true;
}

static const struct {
    const char *name;
    unsigned bit;
} conf_tls_versions[] = {
    {"TLSv1", CONF_TLS_V1_0}, {"TLSv1.1", CONF_TLS_V1_1}, {"TLSv1.2", CONF_TLS_V1_2},
    {"TLSv1.3", CONF_TLS_V1_3},
};
#define CONF_N_TLS_VERSIONS (sizeof(conf_tls_versions) / sizeof(conf_tls_versions[0]))

/*
 * [tls] protocols: versions separated by blanks or commas, any case. They
 * must make a range without a gap: OpenSSL takes a lowest and a highest
 * version, so a gap would enable a version nobody listed.
 */
static bool set_tls_protocols(struct conf_parser *p, const struct conf_directive *d, char *base,
                              const char *v, const char *q)
{
    unsigned bits = 0;
    const char *s = v;
    size_t lo = CONF_N_TLS_VERSIONS, hi = 0;

    for (;;) {
        char word[16], qw[48];
        size_t n, i;

        s += strspn(s, ", \t");
        if (!*s)
            break;
        n = strcspn(s, ", \t");
        snprintf(word, sizeof(word), "%.*s", (int)n, s); /* a longer one matches nothing */
        for (i = 0; i < CONF_N_TLS_VERSIONS; i++)
            if (n < sizeof(word) && strcasecmp(word, conf_tls_versions[i].name) == 0)
                break;
        if (n < sizeof(word) && strcasecmp(word, "TLSv1.0") == 0) /* OpenSSL's TLSv1 */
            i = 0;
        if (i == CONF_N_TLS_VERSIONS) {
            conf_fail(p, p->lineno, "%s: %s is not one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3",
                      d->name, conf_quote(word, qw, sizeof(qw)));
            return false;
        }
        bits |= conf_tls_versions[i].bit;
        if (i < lo)
            lo = i;
        if (i > hi)
            hi = i;
        s += n;
    }
    if (!bits) {
        conf_fail(p, p->lineno, "%s: %s names no version (TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)",
                  d->name, q);
        return false;
    }
    for (size_t i = lo; i <= hi; i++) {
        if (!(bits & conf_tls_versions[i].bit)) {
            conf_fail(p, p->lineno, "%s: %s leaves out %s: list a range of versions without a "
                      "gap", d->name, q, conf_tls_versions[i].name);
            return false;
        }
    }
    memcpy(base + d->off, &bits, sizeof(bits));
    return true;
}

/* [tls] ciphers: kept as written, its line recorded; the TLS module checks the names. */
static bool set_tls_ciphers(struct conf_parser *p, const struct conf_directive *d, char *base,
                            const char *v, const char *q)
{
    if (!set_password(p, d, base, v, q))  /* printable text, blanks allowed */
        return false;
    ((struct conf *)base)->tls_ciphers_line = p->lineno;
    return true;
}

/*
 * [upstream] server_name: a DNS name (labels of A-Z a-z 0-9 - _, 1-63
 * characters each) or an IP address without brackets.
 */
static bool set_server_name(struct conf_parser *p, const struct conf_directive *d, char *base,
                            const char *v, const char *q)
{
    unsigned char ip[16];
    size_t n = strlen(v), label = 0;
    bool ok = true;

    if (n >= d->size) {
        conf_fail(p, p->lineno, "%s: longer than %zu characters", d->name, d->size - 1);
        return false;
    }
    if (inet_pton(AF_INET, v, ip) != 1 && inet_pton(AF_INET6, v, ip) != 1) {
        for (size_t i = 0; i <= n && ok; i++) {
            if (v[i] == '.' || v[i] == '\0') {
                ok = label >= 1 && label <= 63;
                label = 0;
            } else if (c_isalpha(v[i]) || c_isdigit(v[i]) || v[i] == '-' || v[i] == '_') {
                label++;
            } else {
                ok = false;
            }
        }
        /* All digits and dots is an IPv4 address gone wrong ("127.1"), not a name. */
        if (ok && strspn(v, "0123456789.") == n)
            ok = false;
    }
    if (!ok) {
        conf_fail(p, p->lineno, "%s: %s is not a host name or an IP address", d->name, q);
        return false;
    }
    memcpy(base + d->off, v, n + 1);
    return true;
}

/* ---------------------------------------------------------------------------
 * Host routing, overrides, code_map, CORS and the Host sent upstream.
 */

#define HOST_WILD 0x1u /* "*.example.com": a leading wildcard */
#define HOST_PORT 0x2u /* ":PORT" may follow */
#define HOST_STRIP_DOT 0x4u /* one trailing dot is dropped ("example.com." is example.com) */

/* Copy S to OUT, or say it is too long. */
static bool conf_host_copy(char *out, size_t outlen, const char *s, char *why, size_t whylen)
{
    if (conf_copy(out, outlen, s))
        return true;
    snprintf(why, whylen, "longer than %zu characters", outlen - 1);
    return false;
}

/*
 * Check host S and write it normalized to OUT (OUTLEN bytes): lower case, an
 * IPv6 address in brackets as inet_ntop writes it. A name is labels of
 * letters, digits and '-' (not first or last), 1-63 each, 253 in all; an
 * internationalized one in punycode (xn--). An IPv4 address is four numbers.
 * With HOST_PORT, *PORT receives a port written after it (0: none). On a
 * problem: false, and WHY says it.
 */
static bool conf_host_norm(const char *s, unsigned flags, char *out, size_t outlen, unsigned *port,
                           char *why, size_t whylen)
{
    char h[CONF_HOST_MAX + 8];
    const char *colon, *end, *name;
    size_t n;
    uint64_t pn;

    *port = 0;
    for (const char *c = s; *c; c++) {
        unsigned char ch = (unsigned char)*c;
        if (ch >= 0x80) {
            snprintf(why, whylen, "an internationalized name is written in punycode (xn--...)");
            return false;
        }
        if (ch <= 0x20 || ch == 0x7f) {
            snprintf(why, whylen, "a host has no blanks or control characters");
            return false;
        }
    }
    if (s[0] == '[') {
        unsigned char a6[16];
        char v6[INET6_ADDRSTRLEN];
        const char *close = strchr(s, ']');
        if (!close) {
            snprintf(why, whylen, "no ] after the IPv6 address");
            return false;
        }
        n = (size_t)(close - s - 1);
        if (n == 0 || n >= sizeof(h)) {
            snprintf(why, whylen, "not an IPv6 address");
            return false;
        }
        memcpy(h, s + 1, n);
        h[n] = '\0';
        if (inet_pton(AF_INET6, h, a6) != 1 || !inet_ntop(AF_INET6, a6, v6, sizeof(v6))) {
            snprintf(why, whylen, "not an IPv6 address");
            return false;
        }
        colon = close[1] ? close + 1 : NULL;
        if (colon && *colon != ':') {
            snprintf(why, whylen, "unexpected text after ]");
            return false;
        }
        snprintf(h, sizeof(h), "[%s]", v6);
    } else {
        colon = strchr(s, ':');
        if (colon && strchr(colon + 1, ':')) {
            snprintf(why, whylen, "an IPv6 address needs brackets ([::1])");
            return false;
        }
        n = colon ? (size_t)(colon - s) : strlen(s);
        if (n == 0) {
            snprintf(why, whylen, "no host before the port");
            return false;
        }
        if (n >= sizeof(h)) {
            snprintf(why, whylen, "longer than 253 characters");
            return false;
        }
        for (size_t i = 0; i < n; i++)
            h[i] = c_tolower(s[i]);
        h[n] = '\0';
    }
    if (colon) {
        if (!(flags & HOST_PORT)) {
            snprintf(why, whylen, "no port here (a host matches whatever the port)");
            return false;
        }
        if (!conf_parse_digits(colon + 1, &pn, &end) || *end || pn < 1 || pn > 65535) {
            snprintf(why, whylen, "the port must be a number from 1 to 65535");
            return false;
        }
        *port = (unsigned)pn;
    }
    if (h[0] == '[')
        return conf_host_copy(out, outlen, h, why, whylen);

    n = strlen(h);
    if ((flags & HOST_STRIP_DOT) && n > 1 && h[n - 1] == '.')
        h[--n] = '\0';
    name = h;
    if (strchr(h, '*')) {
        if (!(flags & HOST_WILD)) {
            snprintf(why, whylen, "no wildcard here");
            return false;
        }
        /* "a.*.com", "*", "**.x", "*x.com": none would ever match a request */
        if (strncmp(h, "*.", 2) != 0 || strchr(h + 1, '*') || !h[2]) {
            snprintf(why, whylen,
                     "a wildcard is \"*.\" then a name (*.example.com), * "
                     "standing for the first labels");
            return false;
        }
        name = h + 2;
        if (strspn(name, "0123456789.") == strlen(name)) {
            snprintf(why, whylen, "a wildcard over an IP address never matches");
            return false;
        }
    } else if (strspn(h, "0123456789.") == n && strpbrk(h, "0123456789")) {
        struct in_addr a4;
        if (inet_pton(AF_INET, h, &a4) != 1) {
            snprintf(why, whylen, "not an IPv4 address (four numbers of 0-255)");
            return false;
        }
        return conf_host_copy(out, outlen, h, why, whylen);
    }
    if (strlen(name) > 253) {
        snprintf(why, whylen, "longer than 253 characters");
        return false;
    }
    for (const char *l = name;;) {
        size_t ln = strcspn(l, ".");
        if (ln == 0) {
            snprintf(why, whylen, "an empty label (two dots, or a dot first or last)");
            return false;
        }
        if (ln > 63) {
            snprintf(why, whylen, "a label is longer than 63 characters");
            return false;
        }
        for (size_t i = 0; i < ln; i++) {
            if (!c_isalpha(l[i]) && !c_isdigit(l[i]) && l[i] != '-') {
                snprintf(why, whylen, "'%c' is not a letter, digit or -", l[i]);
                return false;
            }
        }
        if (l[0] == '-' || l[ln - 1] == '-') {
            snprintf(why, whylen, "a label starts or ends with -");
            return false;
        }
        if (!l[ln])
            break;
        l += ln + 1;
    }
    return conf_host_copy(out, outlen, h, why, whylen);
}

/* [route] hosts: names (a leading "*." makes a wildcard), IPv4 or [IPv6]; no port. */
static bool set_host_item(struct conf_parser *p, const struct conf_directive *d, char *list,
                          size_t count, const char *item, const char *qi)
{
    char host[CONF_HOST_MAX], why[160];
    unsigned port;

    if (!conf_host_norm(item, HOST_WILD | HOST_STRIP_DOT, host, sizeof(host), &port, why,
                        sizeof(why))) {
        conf_fail(p, p->lineno, "%s: %s: %s", d->name, qi, why);
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        if (strcmp(list + i * d->size, host) == 0) {
            conf_fail(p, p->lineno, "%s: %s is listed twice (first on line %d)", d->name, qi,
                      conf_cur_lines(p)->hosts[i]);
            return false;
        }
    }
    strcpy(list + count * d->size, host); /* conf_host_norm bounded it */
    conf_cur_lines(p)->hosts[count] = p->lineno;
    return true;
}

static bool set_hosts(struct conf_parser *p, const struct conf_directive *d, char *base,
                      const char *v, const char *q)
{
    return conf_set_list(p, d, base, v, q, set_host_item);
}

/* match_header = NAME: VALUE; the value compared exactly, blanks around it dropped. */
static bool set_match_header(struct conf_parser *p, const struct conf_directive *d, char *base,
                             const char *v, const char *q)
{
    struct conf_route *r = (struct conf_route *)base;
    const char *colon = strchr(v, ':'), *val;
    char name[CONF_NAME_MAX + 1], qn[96];
    size_t n;

    if (!colon) {
        conf_fail(p, p->lineno, "%s: %s is not NAME: VALUE (e.g. X-Api-Version: 2)", d->name, q);
        return false;
    }
    n = (size_t)(colon - v);
    while (n > 0 && c_isspace(v[n - 1]))
        n--;
    snprintf(name, sizeof(name), "%.*s", (int)n, v);
    if (n >= sizeof(name) || !conf_header_name_ok(name)) {
        conf_fail(p, p->lineno, "%s: %s is not a header name", d->name,
                  conf_quote(n >= sizeof(name) ? v : name, qn, sizeof(qn)));
        return false;
    }
    val = colon + 1;
    while (c_isspace(*val))
        val++;
    if (!*val) {
        conf_fail(p, p->lineno, "%s: %s has no value (NAME: VALUE)", d->name, q);
        return false;
    }
    if (!conf_printable(val, true)) {
        conf_fail(p, p->lineno, "%s: %s may not contain control characters", d->name, q);
        return false;
    }
    if (!conf_copy(r->match_value, sizeof(r->match_value), val)) {
        conf_fail(p, p->lineno, "%s: the value is longer than %zu characters", d->name,
                  sizeof(r->match_value) - 1);
        return false;
    }
    strcpy(r->match_header, name);
    conf_cur_lines(p)->match_header = p->lineno;
    return true;
}

/* code_map: STATUS:CODE pairs, each status once. */
static bool set_code_item(struct conf_parser *p, const struct conf_directive *d, char *list,
                          size_t count, const char *item, const char *qi)
{
    struct conf_code *all = (struct conf_code *)list, *cc = &all[count];
    const char *s = item, *code;
    uint64_t status;
    size_t n;

    if (!conf_parse_digits(s, &status, &s)) {
        conf_fail(p, p->lineno, "%s: %s is not STATUS:CODE (e.g. 404:TASK_NOT_FOUND)", d->name, qi);
        return false;
    }
    while (c_isspace(*s))
        s++;
    if (*s != ':') {
        conf_fail(p, p->lineno, "%s: %s is not STATUS:CODE (e.g. 404:TASK_NOT_FOUND)", d->name, qi);
        return false;
    }
    code = s + 1;
    while (c_isspace(*code))
        code++;
    if (status < 400 || status > 599) {
        conf_fail(p, p->lineno, "%s: %s: the status must be from 400 to 599", d->name, qi);
        return false;
    }
    n = strlen(code);
    bool ok = n > 0 && n < CONF_CODE_MAX && code[0] >= 'A' && code[0] <= 'Z';
    for (size_t i = 0; ok && i < n; i++)
        ok = (code[i] >= 'A' && code[i] <= 'Z') || c_isdigit(code[i]) || code[i] == '_';
    if (!ok) {
        conf_fail(p, p->lineno,
                  "%s: %s: the code must be upper snake case (A-Z, 0-9 and _, "
                  "a letter first, at most %d characters)",
                  d->name, qi, CONF_CODE_MAX - 1);
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        if (all[i].status == status) {
            conf_fail(p, p->lineno, "%s: status %u is mapped twice", d->name, (unsigned)status);
            return false;
        }
    }
    cc->status = (uint16_t)status;
    memcpy(cc->code, code, n + 1);
    return true;
}

static bool set_code_map(struct conf_parser *p, const struct conf_directive *d, char *base,
                         const char *v, const char *q)
{
    return conf_set_list(p, d, base, v, q, set_code_item);
}

/* The CORS settings a row of [cors] or a route's cors_* fills. */
static struct conf_cors *conf_cors_of(const struct conf_directive *d, char *base)
{
    return d->sect == SECT_ROUTE ? &((struct conf_route *)base)->cors
                                 : &((struct conf *)base)->cors;
}

static const struct conf_cors *conf_cors_of_c(const struct conf_directive *d, const char *base)
{
    return conf_cors_of(d, (char *)base);
}

/* Is "*" (any origin) one of the first COUNT origins of LIST? */
static bool conf_origins_any(const char *list, size_t count, size_t size)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(list + i * size, "*") == 0)
            return true;
    return false;
}

/*
 * An origin: http/https "://" a host (exact, or "*." and a name) and an
 * optional port, no path; or "null" (what sandboxed frames and file:
 * documents send); or "*" (any origin but "null": with nothing else but
 * "null"). Lower case; a default port (80 for http, 443 for https) is
 * dropped, as browsers send the origin without it.
 */
static bool set_origin_item(struct conf_parser *p, const struct conf_directive *d, char *list,
                            size_t count, const char *item, const char *qi)
{
    char origin[CONF_HOST_MAX + 16], host[CONF_HOST_MAX], why[160];
    const char *sep = strstr(item, "://"), *rest;
    size_t sl = sep ? (size_t)(sep - item) : 0;
    bool https = sl == 5 && strncasecmp(item, "https", 5) == 0;
    unsigned port;

    bool any = strcmp(item, "*") == 0, null = strcasecmp(item, "null") == 0;
    for (size_t i = 0; i < count; i++) {
        const char *e = list + i * d->size;
        if ((any && strcmp(e, "null") != 0) || (!any && !null && strcmp(e, "*") == 0)) {
            conf_fail(p, p->lineno,
                      "%s: \"*\" (any origin) goes alone, without other origins "
                      "(but null)",
                      d->name);
            return false;
        }
        if ((any || null) && strcmp(e, any ? "*" : "null") == 0) {
            conf_fail(p, p->lineno, "%s: %s is listed twice", d->name, qi);
            return false;
        }
    }
    if (any || null) {
        strcpy(list + count * d->size, any ? "*" : "null");
        return true;
    }
    if (!https && !(sl == 4 && strncasecmp(item, "http", 4) == 0)) {
        conf_fail(p, p->lineno,
                  "%s: %s is not an origin: http:// or https://, then the host "
                  "(https://app.example.com)",
                  d->name, qi);
        return false;
    }
    rest = sep + 3;
    if (rest[strcspn(rest, "/?#")]) {
        conf_fail(p, p->lineno, "%s: %s is not an origin: an origin has no path, not even /",
                  d->name, qi);
        return false;
    }
    if (!*rest ||
        !conf_host_norm(rest, HOST_WILD | HOST_PORT, host, sizeof(host), &port, why, sizeof(why))) {
        conf_fail(p, p->lineno, "%s: %s is not an origin: %s", d->name, qi,
                  *rest ? why : "no host");
        return false;
    }
    if (port == (https ? 443u : 80u))
        port = 0;
    if (port)
        snprintf(origin, sizeof(origin), "%s://%s:%u", https ? "https" : "http", host, port);
    else
        snprintf(origin, sizeof(origin), "%s://%s", https ? "https" : "http", host);
    if (strlen(origin) >= CONF_ORIGIN_MAX) {
        conf_fail(p, p->lineno, "%s: %s is longer than %d characters", d->name, qi,
                  CONF_ORIGIN_MAX - 1);
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        if (strcmp(list + i * d->size, origin) == 0) {
            conf_fail(p, p->lineno, "%s: %s is listed twice", d->name, qi);
            return false;
        }
    }
    strcpy(list + count * d->size, origin);
    return true;
}

/* [cors] origins, [route] cors_origins: their presence turns CORS on. */
static bool set_origins(struct conf_parser *p, const struct conf_directive *d, char *base,
                        const char *v, const char *q)
{
    struct conf_cors *cors = conf_cors_of(d, base);

    if (!conf_set_list(p, d, base, v, q, set_origin_item))
        return false;
    if (!cors->set)
        cors->line = p->lineno;
    cors->set = true;
    return true;
}

/* Allow-Headers: header names, stored lower case as one ", "-joined list. */
static bool set_cors_headers(struct conf_parser *p, const struct conf_directive *d, char *base,
                             const char *v, const char *q)
{
    char *out = base + d->off, item[CONF_ITEM_MAX], qi[96], joined[sizeof(item) + 8];
    const char *cur = v;
    size_t len = 0;

    joined[0] = '\0';
    while (cur) {
        if (!list_item(p, d, q, &cur, item, sizeof(item)))
            return false;
        conf_quote(item, qi, sizeof(qi));
        if (!conf_header_name_ok(item)) {
            conf_fail(p, p->lineno, "%s: %s is not a header name", d->name, qi);
            return false;
        }
        for (char *c = item; *c; c++)
            *c = c_tolower(*c);
        /* whole names only: "x-a" is not in "x-ab" */
        for (const char *at = joined; (at = strstr(at, item)) != NULL; at++) {
            size_t il = strlen(item);
            if ((at == joined || at[-1] == ' ') && (at[il] == ',' || at[il] == '\0')) {
                conf_fail(p, p->lineno, "%s: %s is listed twice", d->name, qi);
                return false;
            }
        }
        len += (size_t)snprintf(joined + len, sizeof(joined) - len, "%s%s", len ? ", " : "", item);
        if (len >= d->size) {
            conf_fail(p, p->lineno, "%s: longer than %zu characters", d->name, d->size - 1);
            return false;
        }
    }
    memcpy(out, joined, len + 1);
    return true;
}

/* Access-Control-Max-Age: a duration of whole seconds, kept in seconds. */
static bool set_cors_max_age(struct conf_parser *p, const struct conf_directive *d, char *base,
                             const char *v, const char *q)
{
    uint64_t ms, s;

    if (!set_duration(p, d, base, v, q)) /* checks, and writes ms: replaced below */
        return false;
    memcpy(&ms, base + d->off, sizeof(ms));
    if (ms % MS_S) {
        conf_fail(p, p->lineno, "%s: %s is not whole seconds", d->name, q);
        return false;
    }
    s = ms / MS_S;
    memcpy(base + d->off, &s, sizeof(s));
    return true;
}

/* host = keep | upstream | NAME[:PORT]: the Host the upstream receives. */
static bool set_host_mode(struct conf_parser *p, const struct conf_directive *d, char *base,
                          const char *v, const char *q)
{
    char *name = base + d->off_n, host[CONF_HOST_MAX], why[160];
    enum conf_host_mode m;
    unsigned port;

    if (strcasecmp(v, "keep") == 0) {
        m = CONF_HOST_KEEP;
        name[0] = '\0';
    } else if (strcasecmp(v, "upstream") == 0) {
        m = CONF_HOST_UPSTREAM;
        name[0] = '\0';
    } else {
        if (!conf_host_norm(v, HOST_PORT, host, sizeof(host), &port, why, sizeof(why))) {
            conf_fail(p, p->lineno, "%s: %s is not keep, upstream or a host name: %s", d->name, q,
                      why);
            return false;
        }
        m = CONF_HOST_NAME;
        if (port) {
            size_t n = strlen(host);
            if ((size_t)snprintf(host + n, sizeof(host) - n, ":%u", port) >= sizeof(host) - n) {
                conf_fail(p, p->lineno, "%s: %s is longer than %d characters", d->name, q,
                          CONF_HOST_MAX - 1);
                return false;
            }
        }
        strcpy(name, host);
    }
    memcpy(base + d->off, &m, sizeof(m));
    return true;
}

/* ---------------------------------------------------------------------------
 * Format functions: a value as the file would hold it, so that it parses
 * back to the same value.
 */

static void ct_add(struct conf_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ct_add(struct conf_text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t->cut)
        return;
    va_start(ap, fmt);
    n = vsnprintf(t->s + t->len, sizeof(t->s) - t->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(t->s) - t->len) {
        t->cut = true;
        t->s[t->len] = '\0';
        return;
    }
    t->len += (size_t)n;
}

static size_t conf_count(const struct conf_directive *d, const char *base)
{
    size_t n;
    memcpy(&n, base + d->off_n, sizeof(n));
    return n;
}

static bool fmt_size(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    size_t n;
    char b[32];
    memcpy(&n, base + d->off, sizeof(n));
    conf_fmt_size(n, b, sizeof(b));
    ct_add(t, "%s", b);
    return true;
}

static bool fmt_duration(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    uint64_t ms;
    char b[32];
    memcpy(&ms, base + d->off, sizeof(ms));
    conf_fmt_ms(ms, b, sizeof(b));
    ct_add(t, "%s", b);
    return true;
}

static bool fmt_rate(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    struct conf_rate r;
    char b[32];
    memcpy(&r, base + d->off, sizeof(r));
    if (!conf_rate_set(&r)) {
        ct_add(t, "(unset: that of [limits])");
        return false;
    }
    if (r.count == 0) {
        ct_add(t, "off");
        return true;
    }
    conf_fmt_ms(r.window_ms, b, sizeof(b));
    ct_add(t, "%lu/%s", (unsigned long)r.count, b);
    return true;
}

static bool fmt_bool(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    bool v;
    memcpy(&v, base + d->off, sizeof(v));
    ct_add(t, "%s", v ? "yes" : "no");
    return true;
}

static bool fmt_uint(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    unsigned v;
    memcpy(&v, base + d->off, sizeof(v));
    ct_add(t, "%u", v);
    return true;
}

/* A char buffer as is. */
static bool fmt_text(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    ct_add(t, "%s", base + d->off);
    return true;
}

static bool fmt_addr(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    ct_add(t, "%s", ((const struct conf_addr *)(base + d->off))->text);
    return true;
}

static bool fmt_host_ports(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    const struct conf_addr *all = (const struct conf_addr *)(base + d->off);
    size_t n = conf_count(d, base);

    if (n == 0) {
        ct_add(t, "(none)");
        return false;
    }
    for (size_t i = 0; i < n; i++)
        ct_add(t, "%s%s%s%s", i ? ", " : "", all[i].text, all[i].tls ? " tls" : "",
               all[i].proxy_protocol ? " proxy_protocol" : "");
    return true;
}

static bool fmt_header_list(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    size_t n = conf_count(d, base);

    if (n == 0) {
        ct_add(t, "(none)");
        return false;
    }
    for (size_t i = 0; i < n; i++)
        ct_add(t, "%s%s", i ? ", " : "", base + d->off + i * d->size);
    return true;
}

static bool fmt_trusted_proxies(const struct conf_directive *d, const char *base,
                                struct conf_text *t)
{
    size_t n = conf_count(d, base);

    if (n == 0) {
        ct_add(t, "(none)");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const struct conf_cidr *c = (const struct conf_cidr *)(base + d->off + i * d->size);
        char a[INET6_ADDRSTRLEN];
        if (!inet_ntop(c->family, c->addr, a, sizeof(a)))
            snprintf(a, sizeof(a), "?");
        ct_add(t, "%s%s/%u", i ? ", " : "", a, c->prefix);
    }
    return true;
}

/* An enum field (all are int-sized) as its name in NAMES[0..n). */
static bool fmt_named(const struct conf_directive *d, const char *base, struct conf_text *t,
                      const char *const *names, unsigned n)
{
    int v;
    memcpy(&v, base + d->off, sizeof v);
    ct_add(t, "%s", v >= 0 && (unsigned)v < n ? names[v] : "?");
    return true;
}

static bool fmt_log_level(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    _Static_assert(sizeof(enum conf_log_level) == sizeof(int), "fmt_named reads an int");
    return fmt_named(d, base, t, conf_log_level_names, CONF_LOG_ERROR + 1);
}

static bool fmt_profile(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    enum envelope_profile pr;
    memcpy(&pr, base + d->off, sizeof(pr));
    ct_add(t, "%s", envelope_profile_name(pr));
    return true;
}

static bool fmt_on_error(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    _Static_assert(sizeof(enum conf_on_error) == sizeof(int), "fmt_named reads an int");
    return fmt_named(d, base, t, conf_on_error_names, CONF_ON_ERROR_LOCAL + 1);
}

static bool fmt_methods(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    uint64_t m;
    bool first = true;

    memcpy(&m, base + d->off, sizeof(m));
    if (m == 0) {
        ct_add(t, "(all)");
        return false;
    }
    for (int i = 0; i < CONF_N_METHODS; i++) {
        if (m & (1ULL << i)) {
            ct_add(t, "%s%s", first ? "" : ", ", http_method_str((enum http_method)i));
            first = false;
        }
    }
    return true;
}

static bool fmt_hash_secret(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    const struct conf *c = (const struct conf *)base;

    if (!c->hash_secret_set) {
        ct_add(t, "(not set: a random key at each start)");
        return false;
    }
    if (c->hash_secret_file[0]) {
        ct_add(t, "(read from hash_secret_file)");
        return false;
    }
    ct_add(t, "%s", base + d->off);
    return true;
}

static bool fmt_hash_secret_file(const struct conf_directive *d, const char *base,
                                 struct conf_text *t)
{
    if (!base[d->off]) {
        ct_add(t, "(none)");
        return false;
    }
    ct_add(t, "%s", base + d->off);
    return true;
}

static bool fmt_tls_protocols(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    unsigned bits;
    bool first = true;

    memcpy(&bits, base + d->off, sizeof(bits));
    for (size_t i = 0; i < CONF_N_TLS_VERSIONS; i++) {
        if (bits & conf_tls_versions[i].bit) {
            ct_add(t, "%s%s", first ? "" : " ", conf_tls_versions[i].name);
            first = false;
        }
    }
    return true;
}

/* A [tls] pair's field of the row: the certificate's path or the key's. */
static const char *conf_cert_field(const struct conf_directive *d, const struct conf_cert *ct)
{
    return d->parse == set_tls_key ? ct->key : ct->certificate;
}

/* The row's field of every pair; the dump writes the pairs instead (conf_dump_pairs). */
static bool fmt_tls_pair(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    const struct conf *c = (const struct conf *)base;

    if (c->n_certs == 0) {
        ct_add(t, "(none)");
        return false;
    }
    for (size_t i = 0; i < c->n_certs; i++)
        ct_add(t, "%s%s", i ? ", " : "", conf_cert_field(d, &c->certs[i]));
    return true;
}

/* Optional text: unset when empty, shown as NONE (what applies then). */
static bool fmt_text_or(const struct conf_directive *d, const char *base, struct conf_text *t,
                        const char *none)
{
    if (!base[d->off]) {
        ct_add(t, "%s", none);
        return false;
    }
    ct_add(t, "%s", base + d->off);
    return true;
}

static bool fmt_ca_file(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    return fmt_text_or(d, base, t, "(none: the system's CA store)");
}

static bool fmt_server_name(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    return fmt_text_or(d, base, t, "(none: each server's host as written)");
}

static bool fmt_optional(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    return fmt_text_or(d, base, t, "(none)");
}

static bool fmt_hosts(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    size_t n = conf_count(d, base);

    if (n == 0) {
        ct_add(t, "(none: any host)");
        return false;
    }
    for (size_t i = 0; i < n; i++)
        ct_add(t, "%s%s", i ? ", " : "", base + d->off + i * d->size);
    return true;
}

static bool fmt_match_header(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    const struct conf_route *r = (const struct conf_route *)base;

    (void)d;
    if (!r->match_header[0]) {
        ct_add(t, "(none)");
        return false;
    }
    ct_add(t, "%s: %s", r->match_header, r->match_value);
    return true;
}

static bool fmt_code_map(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    const struct conf_code *all = (const struct conf_code *)(base + d->off);
    size_t n = conf_count(d, base);

    if (n == 0) {
        ct_add(t, "(none: the built-in codes)");
        return false;
    }
    for (size_t i = 0; i < n; i++)
        ct_add(t, "%s%u:%s", i ? ", " : "", (unsigned)all[i].status, all[i].code);
    return true;
}

/* A route's cors_* row when the route has no cors_origins: [cors] applies. */
static bool fmt_cors_unset(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    if (d->sect != SECT_ROUTE || conf_cors_of_c(d, base)->set)
        return false;
    ct_add(t, "(unset: [cors] applies)");
    return true;
}

static bool fmt_origins(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    if (fmt_cors_unset(d, base, t))
        return false;
    if (conf_count(d, base) == 0) {
        ct_add(t, "(none: no CORS)");
        return false;
    }
    return fmt_header_list(d, base, t);
}

static bool fmt_cors_methods(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    uint64_t m;

    if (fmt_cors_unset(d, base, t))
        return false;
    memcpy(&m, base + d->off, sizeof(m));
    if (m == 0) {
        ct_add(t, "(unset: the route's methods)");
        return false;
    }
    return fmt_methods(d, base, t);
}

static bool fmt_cors_headers(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    if (fmt_cors_unset(d, base, t))
        return false;
    return fmt_text_or(d, base, t, "(unset: those the request asks for)");
}

static bool fmt_cors_max_age(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    uint64_t s;
    char b[32];

    if (fmt_cors_unset(d, base, t))
        return false;
    memcpy(&s, base + d->off, sizeof(s));
    conf_fmt_ms(s * MS_S, b, sizeof(b));
    ct_add(t, "%s", b);
    return true;
}

static bool fmt_cors_bool(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    if (fmt_cors_unset(d, base, t))
        return false;
    return fmt_bool(d, base, t);
}

static bool fmt_host_mode(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    enum conf_host_mode m;

    memcpy(&m, base + d->off, sizeof(m));
    switch (m) {
    case CONF_HOST_KEEP:
        ct_add(t, "keep");
        return true;
    case CONF_HOST_UPSTREAM:
        ct_add(t, "upstream");
        return true;
    case CONF_HOST_NAME:
        ct_add(t, "%s", base + d->off_n);
        return true;
    default:
        break;
    }
    ct_add(t, "(unset: that of the upstream)");
    return false;
}

static bool fmt_auth(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    _Static_assert(sizeof(enum conf_auth) == sizeof(int), "fmt_named reads an int");
    return fmt_named(d, base, t, conf_auth_names, CONF_AUTH_JWT_OR_API_KEY + 1);
}

/* [auth] issuer and audience: empty is not checked. */
static bool fmt_not_checked(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    return fmt_text_or(d, base, t, "(none: not checked)");
}

/* A [plan] rate: unset, the route's or [limits]'s applies. */
static bool fmt_plan_rate(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    struct conf_rate r;

    memcpy(&r, base + d->off, sizeof(r));
    if (!conf_rate_set(&r)) {
        ct_add(t, "%s", d->off == offsetof(struct conf_plan, per_token) ?
                            "(unset: the route's, else that of [limits])" :
                            "(unset: that of [limits])");
        return false;
    }
    return fmt_rate(d, base, t);
}

/* ---------------------------------------------------------------------------
 * The directive table.
 */

#define C_(f) offsetof(struct conf, f)
#define U_(f) offsetof(struct conf_upstream, f)
#define R_(f) offsetof(struct conf_route, f)
#define P_(f) offsetof(struct conf_plan, f)
#define SZ(type, f) sizeof(((type *)0)->f)
#define ADDR sizeof(struct conf_addr)
#define CIDR sizeof(struct conf_cidr)

static const struct conf_directive conf_directives[] = {
    /* section, name, parse, fmt, field, count field, size, min, max, default, flags */
    /* "ADDRESS [tls] [proxy_protocol], ..." */
    {SECT_SERVER, "listen", set_host_ports, fmt_host_ports, C_(listen), C_(n_listen), ADDR,
     0, CONF_MAX_LISTEN, "0.0.0.0:8080", D_REPEAT | D_UNIQUE | D_RESTART},
    {SECT_SERVER, "workers", set_uint, fmt_uint, C_(workers), 0, 0, 0, 1024, "0", D_RESTART},
    {SECT_SERVER, "max_connections", set_uint, fmt_uint, C_(max_connections), 0, 0,
     0, 10000000, "0", 0},
    {SECT_SERVER, "max_header_size", set_size, fmt_size, C_(max_header_size), 0, 0,
     1 * KB, 1 * MB, "16k", 0},
    {SECT_SERVER, "max_body_size", set_size, fmt_size, C_(max_body_size), 0, 0,
     1, SIZE_MAX, "10m", 0},
    {SECT_SERVER, "client_timeout", set_duration, fmt_duration, C_(client_timeout_ms), 0, 0,
     1, 24 * MS_H, "30s", 0},
    /* default: client_timeout's value (conf_validate) */
    {SECT_SERVER, "keepalive_timeout", set_duration, fmt_duration, C_(keepalive_timeout_ms), 0,
     0, 1, 24 * MS_H, NULL, 0},
    {SECT_SERVER, "shutdown_timeout", set_duration, fmt_duration, C_(shutdown_timeout_ms), 0, 0,
     0, 24 * MS_H, "20s", 0},
    {SECT_SERVER, "log_level", set_log_level, fmt_log_level, C_(log_level), 0, 0, 0, 0, "info",
     0},
    {SECT_SERVER, "access_log", set_access_log, fmt_text, C_(access_log), 0,
     SZ(struct conf, access_log), 0, 0, "stdout", 0},
    {SECT_SERVER, "merge_slashes", set_bool, fmt_bool, C_(merge_slashes), 0, 0, 0, 0, "yes", 0},
    {SECT_SERVER, "routes_ignore_case", set_bool, fmt_bool, C_(routes_ignore_case), 0, 0, 0, 0,
     "yes", 0},

    /* certificate then key, pair after pair; the first pair is the default one */
    {SECT_TLS, "certificate", set_tls_certificate, fmt_tls_pair, C_(certs), C_(n_certs),
     sizeof(struct conf_cert), 0, CONF_MAX_CERTS, NULL, D_PAIR},
    {SECT_TLS, "key", set_tls_key, fmt_tls_pair, C_(certs), C_(n_certs),
     sizeof(struct conf_cert), 0, CONF_MAX_CERTS, NULL, D_PAIR},
    {SECT_TLS, "protocols", set_tls_protocols, fmt_tls_protocols, C_(tls_protocols), 0, 0, 0,
     0, "TLSv1.2 TLSv1.3", 0},
    /* Mozilla's "intermediate" list; TLS 1.3 suites are OpenSSL's defaults */
    {SECT_TLS, "ciphers", set_tls_ciphers, fmt_text, C_(tls_ciphers), 0,
     SZ(struct conf, tls_ciphers), 0, 0,
     "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
     "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
     "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
     "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305", 0},
    {SECT_TLS, "handshake_timeout", set_duration, fmt_duration, C_(tls_handshake_timeout_ms), 0,
     0, 1, MS_H, "10s", 0},

    {SECT_ENVELOPE, "profile", set_profile, fmt_profile, C_(profile), 0, 0, 0, 0, "nested", 0},
    {SECT_ENVELOPE, "expose_upstream_5xx", set_bool, fmt_bool, C_(expose_upstream_5xx), 0, 0,
     0, 0, "no", 0},
    {SECT_ENVELOPE, "max_error_body", set_size, fmt_size, C_(max_error_body), 0, 0, 1, 64 * MB,
     "64k", 0},
    {SECT_ENVELOPE, "hide_headers", set_header_list, fmt_header_list, C_(hide_headers),
     C_(n_hide_headers), CONF_NAME_MAX, 0, CONF_MAX_HIDE, NULL, D_REPEAT},

    {SECT_CORRELATION, "header", set_header, fmt_text, C_(corr_header), 0,
     SZ(struct conf, corr_header), 0, 0, "X-Correlation-Id", 0},
    {SECT_CORRELATION, "accept", set_header_list, fmt_header_list, C_(accept), C_(n_accept),
     CONF_NAME_MAX, 0, CONF_MAX_ACCEPT, "X-Correlation-Id, X-Request-Id", D_REPEAT},

    {SECT_REDIS, "address", set_redis_address, fmt_addr, C_(redis_address), 0, 0, 0, 0,
     "127.0.0.1:6379", 0},
    {SECT_REDIS, "password", set_password, fmt_text, C_(redis_password), 0,
     SZ(struct conf, redis_password), 0, 0, "", D_EMPTY_OK | D_SECRET},
    {SECT_REDIS, "db", set_uint, fmt_uint, C_(redis_db), 0, 0, 0, INT_MAX, "0", 0},
    {SECT_REDIS, "key_prefix", set_key_prefix, fmt_text, C_(redis_key_prefix), 0,
     SZ(struct conf, redis_key_prefix), 0, 0, "envelopd:", D_EMPTY_OK},
    {SECT_REDIS, "timeout", set_duration, fmt_duration, C_(redis_timeout_ms), 0, 0, 1, MS_H,
     "50ms", 0},
    {SECT_REDIS, "on_error", set_on_error, fmt_on_error, C_(redis_on_error), 0, 0, 0, 0,
     "allow", 0},

    {SECT_LIMITS, "token_header", set_header, fmt_text, C_(token_header), 0,
     SZ(struct conf, token_header), 0, 0, "Authorization", 0},
    {SECT_LIMITS, "per_token", set_rate, fmt_rate, C_(per_token), 0, 0, 0, 0, "100/1m", 0},
    {SECT_LIMITS, "per_ip", set_rate, fmt_rate, C_(per_ip), 0, 0, 0, 0, "500/15m", 0},
    {SECT_LIMITS, "trusted_proxies", set_trusted_proxies, fmt_trusted_proxies,
     C_(trusted_proxies), C_(n_trusted_proxies), CIDR, 0, CONF_MAX_PROXIES, NULL, D_REPEAT},
    {SECT_LIMITS, "hash_secret", set_hash_secret, fmt_hash_secret, C_(hash_secret), 0,
     SZ(struct conf, hash_secret), 16, 0, NULL, D_SECRET},
    {SECT_LIMITS, "hash_secret_file", set_hash_secret_file, fmt_hash_secret_file,
     C_(hash_secret_file), 0, SZ(struct conf, hash_secret_file), 16, 0, NULL, 0},
    {SECT_LIMITS, "ipv6_prefix", set_uint, fmt_uint, C_(ipv6_prefix), 0, 0, 1, 128, "64", 0},
    /* a [plan]'s per_org replaces it for the callers of that plan */
    {SECT_LIMITS, "per_org", set_rate, fmt_rate, C_(per_org), 0, 0, 0, 0, "off", 0},
    {SECT_LIMITS, "per_ip_auth_failures", set_rate, fmt_rate, C_(per_ip_auth_failures), 0, 0, 0,
     0, "10/1m", 0},

    /* identity (docs/auth.md); files are checked here, read by the auth module */
    {SECT_AUTH, "jwks_file", set_readable_file, fmt_optional, C_(auth_jwks_file), 0,
     SZ(struct conf, auth_jwks_file), 0, 0, NULL, 0},
    /* min: the secret's bytes, RFC 7518 3.2 */
    {SECT_AUTH, "hs256_secret_file", set_hs256_secret_file, fmt_optional,
     C_(auth_hs256_secret_file), 0, SZ(struct conf, auth_hs256_secret_file), 32, 0, NULL, 0},
    {SECT_AUTH, "issuer", set_password, fmt_not_checked, C_(auth_issuer), 0,
     SZ(struct conf, auth_issuer), 0, 0, "", D_EMPTY_OK},
    {SECT_AUTH, "audience", set_password, fmt_not_checked, C_(auth_audience), 0,
     SZ(struct conf, auth_audience), 0, 0, "", D_EMPTY_OK},
    {SECT_AUTH, "leeway", set_duration, fmt_duration, C_(auth_leeway_ms), 0, 0, 0, MS_H, "60s",
     0},
    {SECT_AUTH, "subject_claim", set_claim, fmt_text, C_(auth_subject_claim), 0,
     SZ(struct conf, auth_subject_claim), 0, 0, "sub", 0},
    {SECT_AUTH, "org_claim", set_claim, fmt_text, C_(auth_org_claim), 0,
     SZ(struct conf, auth_org_claim), 0, 0, "org", 0},
    {SECT_AUTH, "plan_claim", set_claim, fmt_text, C_(auth_plan_claim), 0,
     SZ(struct conf, auth_plan_claim), 0, 0, "plan", 0},
    /* without [redis] only (conf_validate) */
    {SECT_AUTH, "keys_file", set_readable_file, fmt_optional, C_(auth_keys_file), 0,
     SZ(struct conf, auth_keys_file), 0, 0, NULL, 0},
    {SECT_AUTH, "key_cache_ttl", set_duration, fmt_duration, C_(auth_key_cache_ttl_ms), 0, 0, 0,
     MS_H, "10s", 0},
    {SECT_AUTH, "key_prefix_required", set_key_prefix_required, fmt_optional,
     C_(auth_key_prefix_required), 0, SZ(struct conf, auth_key_prefix_required), 0, 0, "",
     D_EMPTY_OK},
    /* empty: not sent */
    {SECT_AUTH, "subject_header", set_header_or_none, fmt_text, C_(auth_subject_header), 0,
     SZ(struct conf, auth_subject_header), 0, 0, "X-Auth-Subject", D_EMPTY_OK},
    {SECT_AUTH, "org_header", set_header_or_none, fmt_text, C_(auth_org_header), 0,
     SZ(struct conf, auth_org_header), 0, 0, "X-Auth-Org", D_EMPTY_OK},
    {SECT_AUTH, "scopes_header", set_header_or_none, fmt_text, C_(auth_scopes_header), 0,
     SZ(struct conf, auth_scopes_header), 0, 0, "X-Auth-Scopes", D_EMPTY_OK},
    {SECT_AUTH, "org_request_header", set_header, fmt_text, C_(auth_org_request_header), 0,
     SZ(struct conf, auth_org_request_header), 0, 0, "X-Org-Id", 0},

    /* CORS for routes without cors_origins; on once origins is given */
    {SECT_CORS, "origins", set_origins, fmt_origins, C_(cors.origins), C_(cors.n_origins),
     CONF_ORIGIN_MAX, 0, CONF_MAX_ORIGINS, NULL, D_REPEAT},
    {SECT_CORS, "methods", set_methods, fmt_cors_methods, C_(cors.methods), 0, 0, 0, 0, NULL, 0},
    {SECT_CORS, "headers", set_cors_headers, fmt_cors_headers, C_(cors.headers), 0,
     SZ(struct conf, cors.headers), 0, 0, NULL, 0},
    {SECT_CORS, "max_age", set_cors_max_age, fmt_cors_max_age, C_(cors.max_age_s), 0, 0, 0,
     24 * MS_H, "10m", 0},
    {SECT_CORS, "credentials", set_bool, fmt_cors_bool, C_(cors.credentials), 0, 0, 0, 0, "no",
     0},

    /* admin.c binds these once, at start */
    {SECT_ADMIN, "listen", set_host_ports, fmt_host_ports, C_(admin_listen), C_(n_admin_listen),
     ADDR, 0, CONF_MAX_LISTEN, NULL, D_REPEAT | D_RESTART},

    {SECT_UPSTREAM, "server", set_host_ports, fmt_host_ports, U_(servers), U_(n_servers), ADDR,
     0, CONF_MAX_SERVERS, NULL, D_REPEAT | D_REQUIRED},
    {SECT_UPSTREAM, "keepalive", set_uint, fmt_uint, U_(keepalive), 0, 0, 0, 100000, "64", 0},
    {SECT_UPSTREAM, "keepalive_timeout", set_duration, fmt_duration, U_(keepalive_timeout_ms), 0,
     0, 1, 24 * MS_H, "60s", 0},
    {SECT_UPSTREAM, "keepalive_requests", set_uint, fmt_uint, U_(keepalive_requests), 0, 0,
     0, 1000000000, "0", 0},
    {SECT_UPSTREAM, "connect_timeout", set_duration, fmt_duration, U_(connect_timeout_ms), 0, 0,
     1, 24 * MS_H, "2s", 0},
    {SECT_UPSTREAM, "timeout", set_duration, fmt_duration, U_(timeout_ms), 0, 0, 1, 24 * MS_H,
     "30s", 0},
    {SECT_UPSTREAM, "tunnel_timeout", set_duration, fmt_duration, U_(tunnel_timeout_ms), 0, 0,
     1, 24 * MS_H, "1h", 0},
    {SECT_UPSTREAM, "retries", set_uint, fmt_uint, U_(retries), 0, 0, 0, 10, "2", 0},
    {SECT_UPSTREAM, "retry_backoff", set_duration, fmt_duration, U_(retry_backoff_ms), 0, 0,
     0, MS_H, "25ms", 0},
    {SECT_UPSTREAM, "retry_backoff_max", set_duration, fmt_duration, U_(retry_backoff_max_ms),
     0, 0, 0, MS_H, "1s", 0},
    {SECT_UPSTREAM, "down_backoff", set_duration, fmt_duration, U_(down_backoff_ms), 0, 0,
     1, 24 * MS_H, "1s", 0},
    {SECT_UPSTREAM, "down_backoff_max", set_duration, fmt_duration, U_(down_backoff_max_ms), 0,
     0, 1, 24 * MS_H, "30s", 0},
    {SECT_UPSTREAM, "tls", set_bool, fmt_bool, U_(tls), 0, 0, 0, 0, "no", 0},
    {SECT_UPSTREAM, "verify", set_bool, fmt_bool, U_(verify), 0, 0, 0, 0, "yes", 0},
    {SECT_UPSTREAM, "ca_file", set_file, fmt_ca_file, U_(ca_file), 0,
     SZ(struct conf_upstream, ca_file), 0, 0, NULL, 0},
    {SECT_UPSTREAM, "server_name", set_server_name, fmt_server_name, U_(server_name), 0,
     SZ(struct conf_upstream, server_name), 0, 0, NULL, 0},
    /* both or neither (conf_section_end) */
    {SECT_UPSTREAM, "client_certificate", set_file, fmt_optional, U_(client_certificate), 0,
     SZ(struct conf_upstream, client_certificate), 0, 0, NULL, 0},
    {SECT_UPSTREAM, "client_key", set_file, fmt_optional, U_(client_key), 0,
     SZ(struct conf_upstream, client_key), 0, 0, NULL, 0},
    /* the Host the servers receive; off_n: the name */
    {SECT_UPSTREAM, "host", set_host_mode, fmt_host_mode, U_(host_mode), U_(host_name), 0, 0, 0,
     "keep", 0},

    /* unset: the route's (else [limits]) per_token, [limits] per_org */
    {SECT_PLAN, "per_token", set_rate, fmt_plan_rate, P_(per_token), 0, 0, 0, 0, NULL, 0},
    {SECT_PLAN, "per_org", set_rate, fmt_plan_rate, P_(per_org), 0, 0, 0, 0, NULL, 0},

    {SECT_ROUTE, "prefix", set_route_prefix, fmt_text, R_(prefix), 0,
     SZ(struct conf_route, prefix), 0, 0, NULL, D_REQUIRED},
    /* none: any host; two routes differ by prefix, hosts or match_header (conf_validate) */
    {SECT_ROUTE, "hosts", set_hosts, fmt_hosts, R_(hosts), R_(n_hosts), CONF_HOST_MAX, 0,
     CONF_MAX_ROUTE_HOSTS, NULL, D_REPEAT},
    {SECT_ROUTE, "match_header", set_match_header, fmt_match_header, R_(match_header), 0, 0, 0, 0,
     NULL, 0},
    {SECT_ROUTE, "upstream", set_route_upstream, fmt_text, R_(upstream_name), 0,
     SZ(struct conf_route, upstream_name), 0, 0, NULL, D_REQUIRED},
    {SECT_ROUTE, "strip_prefix", set_bool, fmt_bool, R_(strip_prefix), 0, 0, 0, 0, "no", 0},
    /* unset (0): every method */
    {SECT_ROUTE, "methods", set_methods, fmt_methods, R_(methods), 0, 0, 0, 0, NULL, 0},
    {SECT_ROUTE, "require_token", set_bool, fmt_bool, R_(require_token), 0, 0, 0, 0, "no", 0},
    /* what needs what: conf_validate */
    {SECT_ROUTE, "auth", set_route_auth, fmt_auth, R_(auth), 0, 0, 0, 0, "none", 0},
    /* max: tokens */
    {SECT_ROUTE, "require_scope", set_route_scopes, fmt_optional, R_(require_scope), 0,
     SZ(struct conf_route, require_scope), 0, 16, NULL, 0},
    {SECT_ROUTE, "forbid_api_keys", set_route_forbid_api_keys, fmt_bool, R_(forbid_api_keys), 0,
     0, 0, 0, "no", 0},
    {SECT_ROUTE, "hide_credentials", set_bool, fmt_bool, R_(hide_credentials), 0, 0, 0, 0, "no",
     0},
    /* unset: [limits] applies */
    {SECT_ROUTE, "per_token", set_rate, fmt_rate, R_(per_token), 0, 0, 0, 0, NULL, 0},
    {SECT_ROUTE, "per_ip", set_rate, fmt_rate, R_(per_ip), 0, 0, 0, 0, NULL, 0},
    /* overrides: the bounds of the global directive of the same name */
    {SECT_ROUTE, "profile", set_profile, fmt_profile, R_(profile), R_(has_profile), 0, 0, 0, NULL,
     D_OVERRIDE},
    {SECT_ROUTE, "expose_upstream_5xx", set_bool, fmt_bool, R_(expose_upstream_5xx),
     R_(has_expose_upstream_5xx), 0, 0, 0, NULL, D_OVERRIDE},
    {SECT_ROUTE, "max_error_body", set_size, fmt_size, R_(max_error_body), R_(has_max_error_body),
     0, 1, 64 * MB, NULL, D_OVERRIDE},
    {SECT_ROUTE, "max_body_size", set_size, fmt_size, R_(max_body_size), R_(has_max_body_size), 0,
     1, SIZE_MAX, NULL, D_OVERRIDE},
    {SECT_ROUTE, "client_timeout", set_duration, fmt_duration, R_(client_timeout_ms),
     R_(has_client_timeout), 0, 1, 24 * MS_H, NULL, D_OVERRIDE},
    {SECT_ROUTE, "timeout", set_duration, fmt_duration, R_(timeout_ms), R_(has_timeout), 0, 1,
     24 * MS_H, NULL, D_OVERRIDE},
    {SECT_ROUTE, "connect_timeout", set_duration, fmt_duration, R_(connect_timeout_ms),
     R_(has_connect_timeout), 0, 1, 24 * MS_H, NULL, D_OVERRIDE},
    {SECT_ROUTE, "code_map", set_code_map, fmt_code_map, R_(code_map), R_(n_code_map),
     sizeof(struct conf_code), 0, CONF_MAX_CODES, NULL, D_REPEAT},
    /* with cors_origins, the route's CORS replaces [cors] whole */
    {SECT_ROUTE, "cors_origins", set_origins, fmt_origins, R_(cors.origins), R_(cors.n_origins),
     CONF_ORIGIN_MAX, 0, CONF_MAX_ORIGINS, NULL, D_REPEAT},
    {SECT_ROUTE, "cors_methods", set_methods, fmt_cors_methods, R_(cors.methods), 0, 0, 0, 0,
     NULL, 0},
    {SECT_ROUTE, "cors_headers", set_cors_headers, fmt_cors_headers, R_(cors.headers), 0,
     SZ(struct conf_route, cors.headers), 0, 0, NULL, 0},
    {SECT_ROUTE, "cors_max_age", set_cors_max_age, fmt_cors_max_age, R_(cors.max_age_s), 0, 0, 0,
     24 * MS_H, "10m", 0},
    {SECT_ROUTE, "cors_credentials", set_bool, fmt_cors_bool, R_(cors.credentials), 0, 0, 0, 0,
     "no", 0},
    /* unset: the upstream's host applies; off_n: the name */
    {SECT_ROUTE, "host", set_host_mode, fmt_host_mode, R_(host_mode), R_(host_name), 0, 0, 0,
     NULL, 0},
};

#define CONF_N_DIRECTIVES (sizeof(conf_directives) / sizeof(conf_directives[0]))
_Static_assert(CONF_N_DIRECTIVES <= CONF_N_ROWS, "raise CONF_N_ROWS: the seen arrays");

/* ---------------------------------------------------------------------------
 * Sections.
 */

/* Where the current section's fields live. */
static char *conf_section_base(struct conf_parser *p)
{
    struct conf *c = p->conf;

    switch (p->sect) {
    case SECT_UPSTREAM:
        return (char *)&c->upstreams[c->n_upstreams - 1];
    case SECT_PLAN:
        return (char *)&c->plans[c->n_plans - 1];
    case SECT_ROUTE:
        return (char *)&c->routes[c->n_routes - 1];
    default:
        return (char *)c;
    }
}

/* Every default of section S, from the table, into BASE. */
static bool conf_set_defaults(struct conf_parser *p, enum conf_sect s, char *base)
{
    char q[96];

    for (size_t i = 0; i < CONF_N_DIRECTIVES; i++) {
        const struct conf_directive *d = &conf_directives[i];
        if (d->sect == s && d->def &&
            !d->parse(p, d, base, d->def, conf_quote(d->def, q, sizeof(q))))
            return false;
    }
    return true;
}

/* Is row D one of CORS ([cors], or a route's cors_*)? */
static bool conf_is_cors_row(const struct conf_directive *d)
{
    return d->fmt == fmt_origins || d->fmt == fmt_cors_methods || d->fmt == fmt_cors_headers ||
           d->fmt == fmt_cors_max_age || d->fmt == fmt_cors_bool;
}

/*
 * The end of [cors] or of a route: CORS directives need origins beside
 * them, and browsers refuse credentials with "*" (any origin).
 */
static void conf_cors_end(struct conf_parser *p)
{
    const struct conf_directive *origins = NULL, *cred = NULL, *orphan = NULL;
    size_t oi = 0, ci = 0, xi = 0;
    const struct conf_cors *cors = NULL;

    for (size_t i = 0; i < CONF_N_DIRECTIVES; i++) {
        const struct conf_directive *d = &conf_directives[i];
        if (d->sect != p->sect || !conf_is_cors_row(d))
            continue;
        cors = conf_cors_of(d, conf_section_base(p));
        if (d->parse == set_origins) {
            origins = d;
            oi = i;
            continue;
        }
        if (d->fmt == fmt_cors_bool) {
            cred = d;
            ci = i;
        }
        if (p->seen[i] && (!orphan || p->seen_line[i] < p->seen_line[xi])) {
            orphan = d;
            xi = i;
        }
    }
    if (!origins || !cors)
        return;
    if (orphan && !p->seen[oi]) {
        if (p->sect == SECT_ROUTE)
            conf_fail(p, p->seen_line[xi], "%s needs %s on the same route", orphan->name,
                      origins->name);
        else
            conf_fail(p, p->seen_line[xi], "%s needs %s in %s", orphan->name, origins->name,
                      p->sect_label);
        return;
    }
    if (cred && cors->set && cors->credentials &&
        conf_origins_any(cors->origins[0], cors->n_origins, sizeof(cors->origins[0])))
        conf_fail(p, p->seen_line[ci],
                  "%s: yes with %s = * (line %d): browsers refuse "
                  "credentials from any origin; list the origins",
                  cred->name, origins->name, p->seen_line[oi]);
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
        if (d->sect == p->sect && (d->flags & D_REQUIRED) && !p->seen[i]) {
            conf_fail(p, p->sect_line, "%s: missing %s = ...", p->sect_label, d->name);
            return;
        }
    }
    if (p->sect == SECT_TLS) {
        const struct conf_cert *open = conf_open_cert(p->conf);
        char q[96];
        if (open)
            conf_fail(p, open->line, "certificate: %s has no key (key = PATH follows its "
                      "certificate)", conf_quote(open->certificate, q, sizeof(q)));
    }
    if (p->sect == SECT_UPSTREAM) {
        const struct conf_upstream *u = &p->conf->upstreams[p->conf->n_upstreams - 1];
        if (!u->client_certificate[0] != !u->client_key[0]) {
            conf_fail(p, p->sect_line, "%s: %s without %s (give both or neither)",
                      p->sect_label, u->client_key[0] ? "client_key" : "client_certificate",
                      u->client_key[0] ? "client_certificate" : "client_key");
        } else if (u->retry_backoff_ms > u->retry_backoff_max_ms) {
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
    if (p->sect == SECT_ROUTE || p->sect == SECT_CORS)
        conf_cors_end(p);
}

/*
 * Room for one more route in conf->routes and the parser's lines of each:
 * doubled as sections come, so a conf holds only the routes it has.
 */
static bool conf_grow_routes(struct conf_parser *p)
{
    struct conf *c = p->conf;
    size_t cap = p->routes_cap ? p->routes_cap * 2 : 8;
    struct conf_route *routes;
    struct conf_route_lines *lines;

    if (c->n_routes < p->routes_cap)
        return true;
    if (cap > CONF_MAX_ROUTES)
        cap = CONF_MAX_ROUTES;
    routes = realloc(c->routes, cap * sizeof(*routes));
    if (routes)
        c->routes = routes;
    lines = routes ? realloc(p->rlines, cap * sizeof(*lines)) : NULL;
    if (lines)
        p->rlines = lines;
    if (!routes || !lines) {
        conf_fail(p, p->lineno, "%s: out of memory for %zu routes", p->sect_label, cap);
        return false;
    }
    p->routes_cap = cap;
    return true;
}

/*
 * Room for one more named section of WHAT in ARR (N of them, SIZE bytes
 * each, each starting with its name, its line at LINE_OFF), and NAME not
 * taken; else a failure naming the first one.
 */
_Static_assert(offsetof(struct conf_upstream, name) == 0 && offsetof(struct conf_plan, name) == 0 &&
                   offsetof(struct conf_route, name) == 0,
               "a named section starts with its name");

static bool named_section_free(struct conf_parser *p, const void *arr, size_t n, size_t size,
                               size_t line_off, size_t max, const char *what, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        const char *e = (const char *)arr + i * size;
        if (strcmp(e, name) == 0) {
            int line;
            memcpy(&line, e + line_off, sizeof line);
            conf_fail(p, p->lineno, "%s appears twice (first at line %d)", p->sect_label, line);
            return false;
        }
    }
    if (n >= max) {
        conf_fail(p, p->lineno, "too many [%s] sections (at most %zu)", what, max);
        return false;
    }
    return true;
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
        conf_fail(p, p->lineno, "unknown section [%s] (known: server, tls, envelope, "
                  "correlation, redis, limits, auth, cors, admin, upstream NAME, plan NAME, "
                  "route NAME)",
                  conf_clean(inner, q, sizeof(q)));
        return;
    }

    p->sect = s;
    p->sect_line = p->lineno;
    memset(p->seen, 0, sizeof(p->seen));
    memset(p->seen_line, 0, sizeof(p->seen_line));

    if (s < SECT_UPSTREAM) {
        if (*name) {
            conf_fail(p, p->lineno, "section [%s] takes no name (only [upstream NAME], "
                      "[plan NAME] and [route NAME] do)", inner);
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
        if (s == SECT_AUTH)
            c->auth_set = true;
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
        if (!named_section_free(p, c->upstreams, c->n_upstreams, sizeof c->upstreams[0],
                                offsetof(struct conf_upstream, line), CONF_MAX_UPSTREAMS,
                                "upstream", name))
            return;
        struct conf_upstream *u = &c->upstreams[c->n_upstreams++];
        strcpy(u->name, name);  /* conf_name_ok bounded it */
        u->line = p->lineno;
        conf_set_defaults(p, s, (char *)u);
    } else if (s == SECT_PLAN) {
        if (!named_section_free(p, c->plans, c->n_plans, sizeof c->plans[0],
                                offsetof(struct conf_plan, line), CONF_MAX_PLANS, "plan", name))
            return;
        struct conf_plan *pl = &c->plans[c->n_plans++];
        memset(pl, 0, sizeof(*pl));
        strcpy(pl->name, name);  /* conf_name_ok bounded it */
        pl->line = p->lineno;
        conf_set_defaults(p, s, (char *)pl);
    } else {
        if (!named_section_free(p, c->routes, c->n_routes, sizeof c->routes[0],
                                offsetof(struct conf_route, line), CONF_MAX_ROUTES, "route", name))
            return;
        if (!conf_grow_routes(p))
            return;
        struct conf_route *r = &c->routes[c->n_routes++];
        memset(r, 0, sizeof(*r));
        strcpy(r->name, name);
        r->line = p->lineno;
        conf_set_defaults(p, s, (char *)r);
        /* after the defaults: a line is recorded only for what the file sets */
        memset(conf_cur_lines(p), 0, sizeof(struct conf_route_lines));
    }
}

/* ---------------------------------------------------------------------------
 * Lines.
 */

/* Set directive D of the current section from value V: its row's parse function. */
static bool conf_apply(struct conf_parser *p, const struct conf_directive *d, const char *v)
{
    char q[96];

    if (!*v && !(d->flags & D_EMPTY_OK)) {
        conf_fail(p, p->lineno, "%s: empty value", d->name);
        return false;
    }
    return d->parse(p, d, conf_section_base(p), v, conf_quote(v, q, sizeof(q)));
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
    if (p->seen[idx]) {
        if (!(d->flags & (D_REPEAT | D_PAIR))) {
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
    if (d->flags & D_OVERRIDE) {
        bool has = true;
        memcpy(conf_section_base(p) + d->off_n, &has, sizeof(has));
    }
    if (!p->seen[idx])
        p->seen_line[idx] = p->lineno;
    if (!p->seen_all[idx])
        p->first_line[idx] = p->lineno;
    p->seen[idx] = true;
    p->seen_all[idx] = true;
    return true;
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
 * Read and handle the next line: blanks and comments removed, syntax
 * checked, a section header begun or a "key = value" split at its first '='
 * and applied. False at the end of the file or after the first problem.
 */
static bool conf_read_line(struct conf_parser *p)
{
    ssize_t n;
    char *s, *e, *eq;
    size_t len;
    char q[96];

    if (p->failed)
        return false;
    n = getline(&p->line, &p->linecap, p->fp);
    if (n < 0) {
        if (ferror(p->fp))
            conf_fail(p, p->lineno, "read error: %s", strerror_r(errno, q, sizeof(q)));
        return false;
    }
    p->lineno++;
    if (memchr(p->line, '\0', (size_t)n)) {
        conf_fail(p, p->lineno, "the line holds a NUL byte (is this a text file?)");
        return false;
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

    if (len == 0)
        return true;

    if (s[0] == '[') {
        e = strchr(s, ']');
        if (!e) {
            conf_fail(p, p->lineno, "section header %s has no closing ]",
                      conf_quote(s, q, sizeof(q)));
            return false;
        }
        if (e[1] != '\0') {
            conf_fail(p, p->lineno, "unexpected text after ] in %s", conf_quote(s, q, sizeof(q)));
            return false;
        }
        *e = '\0';
        s++;
        while (c_isspace(*s))
            s++;
        len = strlen(s);
        while (len > 0 && c_isspace(s[len - 1]))
            s[--len] = '\0';
        conf_section_begin(p, s);
        return !p->failed;
    }

    eq = strchr(s, '=');
    if (!eq || eq == s || memchr(s, ':', (size_t)(eq - s))) {
        conf_fail(p, p->lineno, "expected key = value or [section], got %s",
                  conf_quote(s, q, sizeof(q)));
        return false;
    }
    e = eq;
    while (e > s && c_isspace(e[-1]))
        e--;
    *e = '\0';
    eq++;
    while (c_isspace(*eq))
        eq++;
    return conf_handle(p, s, eq);
}

/* One host of a route (or "" for a route without hosts), for conf_check_routes. */
struct conf_route_key {
    const struct conf_route *r;
    size_t route, entry; /* index of the route, of the host in its hosts */
    const char *host;
    bool fold; /* routes_ignore_case: prefixes in any case are one */
};

/* Host and prefix: the place a route answers at. */
static int conf_key_cmp_place(const struct conf_route_key *x, const struct conf_route_key *y)
{
    int c = strcmp(x->host, y->host);
    if (!c)
        c = x->fold ? strcasecmp(x->r->prefix, y->r->prefix) : strcmp(x->r->prefix, y->r->prefix);
    return c;
}

/* Host, prefix and match_header: what a request is routed by. */
static int conf_key_cmp_route(const struct conf_route_key *x, const struct conf_route_key *y)
{
    int c = conf_key_cmp_place(x, y);
    if (!c)
        c = strcasecmp(x->r->match_header, y->r->match_header);
    if (!c)
        c = strcmp(x->r->match_value, y->r->match_value);
    return c;
}

/* ... then the order of the file, so the first of equal keys is the first written. */
static int conf_key_cmp(const void *a, const void *b)
{
    const struct conf_route_key *x = a, *y = b;
    int c = conf_key_cmp_route(x, y);
    if (!c)
        c = (x->route > y->route) - (x->route < y->route);
    if (!c)
        c = (x->entry > y->entry) - (x->entry < y->entry);
    return c;
}

static bool conf_cors_equal(const struct conf_cors *a, const struct conf_cors *b)
{
    if (a->set != b->set)
        return false;
    if (!a->set)
        return true;
    if (a->n_origins != b->n_origins || a->methods != b->methods || a->max_age_s != b->max_age_s ||
        a->credentials != b->credentials || strcmp(a->headers, b->headers) != 0)
        return false;
    for (size_t i = 0; i < a->n_origins; i++)
        if (strcmp(a->origins[i], b->origins[i]) != 0)
            return false;
    return true;
}

/*
 * No two routes may take the same requests: the same host (or both none),
 * the same prefix (in any case with routes_ignore_case) and the same
 * match_header. Reported on the later route's hosts or prefix line, naming
 * the earlier route; the first such line of the file if there are several.
 */
static void conf_check_routes(struct conf_parser *p)
{
    const struct conf *c = p->conf;
    struct conf_route_key *keys, *later = NULL, *earlier = NULL;
    size_t n = 0, group = 0;
    char qh[96], qp[96], same[160];

    for (size_t i = 0; i < c->n_routes; i++)
        n += c->routes[i].n_hosts ? c->routes[i].n_hosts : 1;
    keys = malloc(n * sizeof(*keys));
    if (!keys) {
        conf_fail(p, 0, "out of memory checking %zu routes", c->n_routes);
        return;
    }
    n = 0;
    for (size_t i = 0; i < c->n_routes; i++) {
        const struct conf_route *r = &c->routes[i];
        for (size_t k = 0; k < (r->n_hosts ? r->n_hosts : 1); k++)
            keys[n++] = (struct conf_route_key){r, i, k, r->n_hosts ? r->hosts[k] : "",
                                                c->routes_ignore_case};
    }
    qsort(keys, n, sizeof(*keys), conf_key_cmp);
    for (size_t k = 1; k < n; k++) {
        if (conf_key_cmp_route(&keys[group], &keys[k]) != 0) {
            group = k;
            continue;
        }
        if (k == group + 1 && (!later || keys[k].route < later->route ||
                               (keys[k].route == later->route && keys[k].entry < later->entry))) {
            later = &keys[k];
            earlier = &keys[group];
        }
    }
    /* Routes at one place told apart by match_header answer one preflight:
     * a browser's OPTIONS carries no such header, so it is judged by the
     * route without it while the request it approves may go to another. */
    for (size_t k = 1; k < n && !later; k++) {
        const struct conf_route *a = keys[k - 1].r, *b = keys[k].r;
        if (a->line > b->line) {  /* named on the later one of the file */
            const struct conf_route *t = a;
            a = b;
            b = t;
        }
        if (conf_key_cmp_place(&keys[k - 1], &keys[k]) == 0 && a != b &&
            !conf_cors_equal(a->cors.set ? &a->cors : &c->cors, b->cors.set ? &b->cors : &c->cors)) {
            conf_fail(p, b->line, "[route %s]: shares its hosts and prefix with [route %s] (line %d), "
                      "told apart by match_header, but not its CORS settings (a preflight "
                      "carries no match_header: they must be the same)", b->name, a->name, a->line);
            free(keys);
            return;
        }
    }
    if (later) {
        const struct conf_route *r = later->r, *e = earlier->r;
        const struct conf_route_lines *ln = &p->rlines[later->route];
        snprintf(same, sizeof(same), "%s%s",
                 r->match_header[0] ? ", with the same "
                                      "match_header"
                                    : "",
                 strcmp(r->prefix, e->prefix) ? " (in another letter "
                                                "case: routes_ignore_case = yes)"
                                              : "");
        conf_quote(r->prefix, qp, sizeof(qp));
        if (r->n_hosts)
            conf_fail(p, ln->hosts[later->entry],
                      "hosts: %s with prefix %s is already routed "
                      "by [route %s] (line %d)%s",
                      conf_quote(later->host, qh, sizeof(qh)), qp, e->name, e->line, same);
        else
            conf_fail(p, ln->prefix, "prefix: %s is already the prefix of [route %s] (line %d)%s",
                      qp, e->name, e->line, same);
    }
    free(keys);
}

/* The first line that set directive NAME of section S (a singleton's); 0 if none did. */
static int conf_row_line(const struct conf_parser *p, enum conf_sect s, const char *name)
{
    for (size_t i = 0; i < CONF_N_DIRECTIVES; i++)
        if (conf_directives[i].sect == s && strcmp(conf_directives[i].name, name) == 0)
            return p->first_line[i];
    return 0;
}

/*
 * Identity: what a route's auth needs is there, and what a route asks of
 * its callers can be enforced. Each problem on the line that causes it.
 */
static void conf_check_auth(struct conf_parser *p)
{
    const struct conf *c = p->conf;

    if (c->auth_keys_file[0] && c->redis_enabled) {
        conf_fail(p, conf_row_line(p, SECT_AUTH, "keys_file"),
                  "keys_file is for the embedded default without [redis]; with [redis] the "
                  "records are in Redis (docs/apikeys.md)");
        return;
    }
    for (size_t i = 0; i < c->n_routes; i++) {
        const struct conf_route *r = &c->routes[i];
        const struct conf_route_lines *ln = &p->rlines[i];
        const char *an = conf_auth_names[r->auth];
        bool jwt = r->auth == CONF_AUTH_JWT || r->auth == CONF_AUTH_JWT_OR_API_KEY;
        bool key = r->auth == CONF_AUTH_API_KEY || r->auth == CONF_AUTH_JWT_OR_API_KEY;

        if (r->auth == CONF_AUTH_NONE && (r->require_scope[0] || r->forbid_api_keys)) {
            bool scope = r->require_scope[0] &&
                         (!r->forbid_api_keys || ln->require_scope < ln->forbid_api_keys);
            conf_fail(p, scope ? ln->require_scope : ln->forbid_api_keys,
                      "[route %s]: %s needs auth = %s (with auth = none no credentials are "
                      "checked: it could never be enforced)", r->name,
                      scope ? "require_scope" : "forbid_api_keys = yes",
                      scope ? "jwt, api_key or jwt_or_api_key" : "jwt or jwt_or_api_key");
            return;
        }
        if (r->auth == CONF_AUTH_API_KEY && r->forbid_api_keys) {
            conf_fail(p, ln->forbid_api_keys, "[route %s]: forbid_api_keys = yes with auth = "
                      "api_key (line %d) refuses every caller; it needs auth = jwt or "
                      "jwt_or_api_key", r->name, ln->auth);
            return;
        }
        if (jwt && !c->auth_jwks_file[0] && !c->auth_hs256_secret_file[0]) {
            conf_fail(p, ln->auth, "[route %s]: auth = %s needs [auth] jwks_file or "
                      "hs256_secret_file (the keys tokens are verified with)", r->name, an);
            return;
        }
        if (key && !c->auth_keys_file[0] && !c->redis_enabled) {
            conf_fail(p, ln->auth, "[route %s]: auth = %s needs [auth] keys_file or a [redis] "
                      "section (where the API key records are)", r->name, an);
            return;
        }
        if (key && !c->hash_secret_set) {
            conf_fail(p, ln->auth, "[route %s]: auth = %s needs [limits] hash_secret or "
                      "hash_secret_file: API keys are known by their HMAC under it, and the "
                      "random secret of each start would make every key unknown after a restart",
                      r->name, an);
            return;
        }
    }
}

/* Checks that need the whole file: routes exist and differ, upstream names resolve. */
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
    conf_check_routes(p);
    if (p->failed)
        return;
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
            conf_fail(p, p->rlines[i].upstream ? p->rlines[i].upstream : r->line,
                      "[route %s]: upstream \"%s\" is not defined (no [upstream %s] section)",
                      r->name, r->upstream_name, r->upstream_name);
            return;
        }
    }

    conf_check_auth(p);
    if (p->failed)
        return;

    /* A TLS listener presents the [tls] certificates: it needs one. */
    for (size_t i = 0; i < c->n_listen && c->n_certs == 0; i++) {
        if (c->listen[i].tls) {
            conf_fail(p, p->listen_line[i], "[server] listen %s tls needs a [tls] certificate "
                      "and key", c->listen[i].text);
            return;
        }
    }
    /* Only trusted proxies may send a PROXY header: with none, every
     * connection to the listener would be refused. */
    for (size_t i = 0; i < c->n_listen && c->n_trusted_proxies == 0; i++) {
        if (c->listen[i].proxy_protocol) {
            conf_fail(p, p->listen_line[i], "[server] listen %s proxy_protocol needs [limits] "
                      "trusted_proxies (the balancers allowed to send PROXY headers)",
                      c->listen[i].text);
            return;
        }
    }

    /* keepalive_timeout defaults to client_timeout. */
    for (size_t i = 0; i < CONF_N_DIRECTIVES; i++) {
        if (conf_directives[i].off == C_(keepalive_timeout_ms) &&
            conf_directives[i].sect == SECT_SERVER && !p->seen_all[i])
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
 * struct conf is fixed tables (about 1 MB: 64 upstreams of 32 server
 * addresses are most of it) and mostly zeros. From mmap its pages are
 * zero-filled lazily, count in RSS only once touched, and go back to the
 * kernel at conf_free. From calloc, glibc's sliding mmap threshold serves it
 * from the heap after the first free: calloc then touches all of it and free
 * keeps it, so reloads raised RSS in steps of its size (scripts/soak saw
 * 8 -> 26 MB over ten minutes of reloads when it was 9 MB). Routes live
 * apart (conf->routes, grown as [route] sections come, freed here too): one
 * is about 11 KB with its hosts and CORS origins, so CONF_MAX_ROUTES of them
 * in the struct would make every conf 45 MB of address space.
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
    for (int s = SECT_SERVER; s < SECT_UPSTREAM; s++)
        if (!conf_set_defaults(&p, (enum conf_sect)s, (char *)c))
            goto fail;
    p.fp = fopen(path, "re");
    if (!p.fp) {
        char eb[128];
        conf_fail(&p, 0, "cannot open: %s", strerror_r(errno, eb, sizeof(eb)));
        goto fail;
    }

    while (conf_read_line(&p))
        ;
    conf_section_end(&p);
    conf_validate(&p);
    if (p.failed)
        goto fail;

    fclose(p.fp);
    free(p.line);
    free(p.rlines);
    return c;

fail:
    if (stage && err && errlen)
        snprintf(err, errlen, "%s:0: %s", path ? path : "(null)", stage);
    if (p.fp)
        fclose(p.fp);
    free(p.line);
    free(p.rlines);
    conf_free(c);
    return NULL;
}

void conf_free(struct conf *conf)
{
    if (!conf)
        return;
    explicit_bzero(conf->hash_secret, sizeof(conf->hash_secret));
    explicit_bzero(conf->redis_password, sizeof(conf->redis_password));
    free(conf->routes);
    munmap(conf, sizeof(*conf));
}

/* ---------------------------------------------------------------------------
 * The table read back: the dump, the directive list, the reload diff.
 */

/* Where a route's override comes from when it has none: the global directive's section. */
static const char *conf_inherited_from(const struct conf_directive *d)
{
    for (size_t i = 0; i < CONF_N_DIRECTIVES; i++) {
        const struct conf_directive *g = &conf_directives[i];
        if (strcmp(g->name, d->name) != 0)
            continue;
        if (g->sect == SECT_SERVER || g->sect == SECT_ENVELOPE)
            return g->sect == SECT_SERVER ? "[server]" : "[envelope]";
        if (g->sect == SECT_UPSTREAM)
            return "its [upstream]";
    }
    return "the global directive";
}

/* The row's value in BASE (conf_fmt_fn); an override the route does not set is unset. */
static bool conf_fmt_row(const struct conf_directive *d, const char *base, struct conf_text *t)
{
    bool has;

    if (d->flags & D_OVERRIDE) {
        memcpy(&has, base + d->off_n, sizeof(has));
        if (!has) {
            ct_add(t, "(unset: that of %s)", conf_inherited_from(d));
            return false;
        }
    }
    return d->fmt(d, base, t);
}

/*
 * The D_PAIR rows from row FIRST on, as the pairs were read: a "name =" line
 * of each row for the first pair, then for the next.
 */
static void conf_dump_pairs(FILE *out, size_t first, const char *base, const char *pre)
{
    const struct conf *c = (const struct conf *)base;
    size_t end = first;

    while (end < CONF_N_DIRECTIVES && (conf_directives[end].flags & D_PAIR))
        end++;
    if (c->n_certs == 0) {
        for (size_t i = first; i < end; i++)
            fprintf(out, "# %s =   (none)\n", conf_directives[i].name);
        return;
    }
    for (size_t k = 0; k < c->n_certs; k++)
        for (size_t i = first; i < end; i++)
            fprintf(out, "%s%s = %s\n", pre, conf_directives[i].name,
                    conf_cert_field(&conf_directives[i], &c->certs[k]));
}

/* The rows of section S, each as "name = value", into OUT; PRE before each. */
static int conf_dump_rows(FILE *out, enum conf_sect s, const char *base, const char *pre)
{
    struct conf_text *t = malloc(sizeof(*t));

    if (!t)
        return -1;
    for (size_t i = 0; i < CONF_N_DIRECTIVES; i++) {
        const struct conf_directive *d = &conf_directives[i];
        if (d->sect != s)
            continue;
        if (d->flags & D_PAIR) {
            if (i == 0 || !(conf_directives[i - 1].flags & D_PAIR))
                conf_dump_pairs(out, i, base, pre);
            continue;
        }
        t->len = 0;
        t->cut = false;
        t->s[0] = '\0';
        bool set = conf_fmt_row(d, base, t);
        if (t->cut) {
            free(t);
            return -1;
        }
        if (!set)
            fprintf(out, "# %s =   %s\n", d->name, t->s);
        else if ((d->flags & D_SECRET) && t->s[0])
            fprintf(out, "%s%s = <hidden>\n", pre, d->name);
        else
            fprintf(out, "%s%s =%s%s\n", pre, d->name, t->s[0] ? " " : "", t->s);
    }
    explicit_bzero(t, sizeof(*t));  /* it held secrets */
    free(t);
    return 0;
}

int conf_dump(const struct conf *c, FILE *out)
{
    char path[256];
    int rc = 0;

    fprintf(out,
            "# envelopd --dump-conf: the effective configuration of %s:\n"
            "# every directive with its value or its default (workers and\n"
            "# keepalive_timeout as they were resolved). Secrets (password,\n"
            "# hash_secret) are shown as <hidden>: put them back before loading\n"
            "# this file. A \"# key =\" line is a directive without a value.\n",
            conf_clean(c->path, path, sizeof(path)));
    for (int s = SECT_SERVER; s < SECT_UPSTREAM && rc == 0; s++) {
        const char *pre = "";
        if (s == SECT_REDIS && !c->redis_enabled) {
            /* The section's presence turns Redis on: keep it commented out. */
            fprintf(out, "\n# No [redis] section: the rate limits live in process memory.\n"
                    "# With one, these would apply:\n# [redis]\n");
            pre = "# ";
        } else if (s == SECT_AUTH && !c->auth_set) {
            /* The section's presence is auth_set: keep it commented out. */
            fprintf(out, "\n# No [auth] section: no JWT keys, no keys file; these defaults "
                    "apply:\n# [auth]\n");
            pre = "# ";
        } else if (s == SECT_CORS && !c->cors.set) {
            /* Its directives without origins would be an error: commented out too. */
            fprintf(out, "\n# No [cors] origins: CORS only on routes with cors_origins.\n"
                    "# With origins, these would apply:\n# [cors]\n");
            pre = "# ";
        } else {
            fprintf(out, "\n[%s]\n", conf_sect_names[s]);
        }
        rc = conf_dump_rows(out, (enum conf_sect)s, (const char *)c, pre);
    }
    for (size_t i = 0; i < c->n_upstreams && rc == 0; i++) {
        fprintf(out, "\n[upstream %s]\n", c->upstreams[i].name);
        rc = conf_dump_rows(out, SECT_UPSTREAM, (const char *)&c->upstreams[i], "");
    }
    for (size_t i = 0; i < c->n_plans && rc == 0; i++) {
        fprintf(out, "\n[plan %s]\n", c->plans[i].name);
        rc = conf_dump_rows(out, SECT_PLAN, (const char *)&c->plans[i], "");
    }
    for (size_t i = 0; i < c->n_routes && rc == 0; i++) {
        fprintf(out, "\n[route %s]\n", c->routes[i].name);
        rc = conf_dump_rows(out, SECT_ROUTE, (const char *)&c->routes[i], "");
    }
    if (fflush(out) != 0 || ferror(out))
        rc = -1;
    return rc;
}

int conf_list_directives(FILE *out)
{
    for (size_t i = 0; i < CONF_N_DIRECTIVES; i++)
        fprintf(out, "%s %s\n", conf_sect_names[conf_directives[i].sect],
                conf_directives[i].name);
    return fflush(out) != 0 || ferror(out) ? -1 : 0;
}

size_t conf_diff_restart(const struct conf *old, const struct conf *new_conf,
                         conf_changed_fn changed, void *arg)
{
    struct conf_text *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    size_t n = 0;

    for (size_t i = 0; i < CONF_N_DIRECTIVES; i++) {
        const struct conf_directive *d = &conf_directives[i];
        char label[CONF_NAME_MAX + 32];
        bool same = false;
        if (!(d->flags & D_RESTART) || d->sect >= SECT_UPSTREAM)
            continue;
        if (a && b) {
            a->len = b->len = 0;
            a->cut = b->cut = false;
            a->s[0] = b->s[0] = '\0';
            bool sa = d->fmt(d, (const char *)old, a), sb = d->fmt(d, (const char *)new_conf, b);
            same = sa == sb && !a->cut && !b->cut && strcmp(a->s, b->s) == 0;
        }
        /* Out of memory: named as changed, so a change is never silently dropped. */
        if (same)
            continue;
        snprintf(label, sizeof(label), "[%s] %s", conf_sect_names[d->sect], d->name);
        if (changed)
            changed(label, arg);
        n++;
    }
    free(a);
    free(b);
    return n;
}
