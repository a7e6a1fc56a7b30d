/*
 * conf: the one conf file, parsed into a fresh, immutable struct conf that
 * is validated whole before anyone sees it. A reload parses a new one and
 * swaps pointers; nothing here is global. One table of directives drives
 * parsing, defaults, the dump (--dump-conf), the directive list the docs are
 * checked against (--list-directives) and the reload diff of restart-only
 * directives. Value parsers (sizes, durations, rates, addresses, CIDRs) are
 * exported for the unit tests.
 */
#ifndef ENVELOPD_CONF_H
#define ENVELOPD_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "envelope.h"

#define CONF_MAX_LISTEN 16
#define CONF_MAX_ACCEPT 8
#define CONF_MAX_SERVERS 32
#define CONF_MAX_UPSTREAMS 64
#define CONF_MAX_ROUTES 4096     /* routes: memory only for those written (conf_load mmaps) */
#define CONF_MAX_PROXIES 32
#define CONF_MAX_HIDE 32         /* [envelope] hide_headers entries */
#define CONF_NAME_MAX 64        /* section suffixes, header names */
#define CONF_PREFIX_MAX 512     /* route prefixes */
#define CONF_PATH_MAX 4096
#define CONF_MAX_CERTS 16        /* [tls] certificate/key pairs */
#define CONF_FILE_MAX 512        /* certificate, key and CA file paths */
#define CONF_CIPHERS_MAX 1024
/*
 * The longest address text: a host name of up to 255 bytes, ':' and a port
 * (the brackets of "[v6]:port" hold a literal far shorter; "unix:" and a
 * 107-byte socket path make 112).
 */
#define CONF_ADDR_MAX (255 + 8)

/* A socket address from "host:port", "[v6]:port" or "unix:/path". */
struct conf_addr {
    char text[CONF_ADDR_MAX + 1];  /* as written, for logs (without flags) */
    struct sockaddr_storage sa;
    socklen_t salen;
    /* Flags written after a [server] listen address ("0.0.0.0:443 tls
     * proxy_protocol"); always false elsewhere. */
    bool tls;                      /* TLS is terminated on this listener */
    bool proxy_protocol;           /* a PROXY v1/v2 header comes first, from a trusted proxy */
};

/* A [tls] certificate and the key that follows it; the first pair is the default. */
struct conf_cert {
    char certificate[CONF_FILE_MAX];
    char key[CONF_FILE_MAX];
    int line;                      /* of the certificate directive, for messages */
    int key_line;
};

/* [tls] protocols: a bit per version, CONF_TLS_V1_2 | CONF_TLS_V1_3 by default. */
#define CONF_TLS_V1_0 0x1u
#define CONF_TLS_V1_1 0x2u
#define CONF_TLS_V1_2 0x4u
#define CONF_TLS_V1_3 0x8u

/*
 * "N/DURATION": N requests per window. count == 0 && window_ms == 0: not set
 * (a route falls back to [limits]); count == 0 && window_ms != 0: "off".
 */
struct conf_rate {
    uint32_t count;
    uint64_t window_ms;
};

struct conf_cidr {
    int family;                    /* AF_INET or AF_INET6 */
    uint8_t addr[16];              /* network byte order, masked */
    unsigned prefix;               /* 0..32 or 0..128 */
};

enum conf_on_error { CONF_ON_ERROR_ALLOW, CONF_ON_ERROR_DENY, CONF_ON_ERROR_LOCAL };

enum conf_log_level { CONF_LOG_DEBUG, CONF_LOG_INFO, CONF_LOG_WARN, CONF_LOG_ERROR };

#define CONF_MAX_ROUTE_HOSTS 16   /* [route] hosts entries */
#define CONF_HOST_MAX 256          /* a host name (253) or "*." and one */
#define CONF_MAX_CODES 16          /* [route] code_map entries */
#define CONF_CODE_MAX 64           /* an envelope code, upper snake case */
#define CONF_MAX_ORIGINS 16        /* cors_origins entries */
#define CONF_ORIGIN_MAX 256        /* scheme://host[:port], "*" for any host label */

/* code_map: the envelope code for a status, instead of the built-in one. */
struct conf_code {
    uint16_t status;
    char code[CONF_CODE_MAX];
};

/*
 * CORS: set (a [cors] section, or cors_origins on a route) or not. Origins
 * are a scheme, "://" and a host (and port): app.example.com exactly, or
 * a leading "*." for one or more labels; or "*" alone (any origin: never
 * with credentials, -t refuses it).
 * A route's cors_* directives replace the [cors] ones as a whole.
 */
struct conf_cors {
    bool set;
    bool credentials;
    int line;
    size_t n_origins;
    uint64_t methods;              /* preflight Allow-Methods; 0: the route's methods (all: GET..) */
    uint64_t max_age_s;            /* Access-Control-Max-Age; default 600 */
    char headers[512];             /* Allow-Headers as written; "": echo the request's */
    char origins[CONF_MAX_ORIGINS][CONF_ORIGIN_MAX];
};

/* [route] auth: which credentials a route checks before anything else
 * but CORS preflights (auth.h). NONE: as before identity existed. */
enum conf_auth { CONF_AUTH_NONE, CONF_AUTH_JWT, CONF_AUTH_API_KEY, CONF_AUTH_JWT_OR_API_KEY };

#define CONF_MAX_PLANS 64          /* [plan NAME] sections */
#define CONF_SCOPE_MAX 256         /* [route] require_scope: scope tokens, all required */
#define CONF_CLAIM_MAX 64          /* [auth] *_claim: a JWT claim's name */

/* [plan NAME]: the limits of callers whose key record or token names the plan. */
struct conf_plan {
    char name[CONF_NAME_MAX];
    struct conf_rate per_token;    /* unset: the route's, else [limits] */
    struct conf_rate per_org;      /* unset: [limits] per_org */
    int line;
};

/* What the upstream receives as Host: the client's (keep), the server's
 * address as written (upstream), or a fixed name. */
enum conf_host_mode { CONF_HOST_UNSET, CONF_HOST_KEEP, CONF_HOST_UPSTREAM, CONF_HOST_NAME };

struct conf_upstream {
    char name[CONF_NAME_MAX];      /* from "[upstream NAME]" */
    struct conf_addr servers[CONF_MAX_SERVERS];
    size_t n_servers;
    unsigned keepalive;            /* idle connections kept per server */
    uint64_t keepalive_timeout_ms; /* an idle connection unused this long is closed */
    unsigned keepalive_requests;   /* requests per connection before it is closed; 0: no limit */
    uint64_t connect_timeout_ms;
    uint64_t timeout_ms;           /* response deadline -> 504 */
    uint64_t tunnel_timeout_ms;    /* an upgraded connection idle this long is closed */
    unsigned retries;
    uint64_t retry_backoff_ms;     /* first retry delay, doubled each time */
    uint64_t retry_backoff_max_ms;
    uint64_t down_backoff_ms;      /* a failed server is skipped this long, doubling */
    uint64_t down_backoff_max_ms;
    /* TLS to the servers: verified against ca_file (empty: the system store)
     * unless verify is off; SNI and the checked name are server_name, or
     * each server's host when empty. A client certificate is sent when set. */
    bool tls;
    bool verify;
    char ca_file[CONF_FILE_MAX];
    enum conf_host_mode host_mode; /* [upstream] host = keep | upstream | NAME (default keep) */
    char host_name[CONF_HOST_MAX];
    char server_name[256];
    char client_certificate[CONF_FILE_MAX];
    char client_key[CONF_FILE_MAX];
    int line;                      /* where the section starts, for messages */
};

/*
 * A route. What every request on it reads comes first and the large
 * arrays last, so a request touches a few cache lines of the route, not
 * pages spread over its ~11 KB (scripts/bench --routes-only, 1,000 routes).
 */
struct conf_route {
    char name[CONF_NAME_MAX];      /* from "[route NAME]" */
    size_t prefix_len;
    size_t upstream;               /* index into conf.upstreams */
    bool strip_prefix;
    bool require_token;
    bool forbid_api_keys;          /* 403 for a caller who came with an API key */
    bool hide_credentials;         /* the upstream never sees Authorization / token_header */
    enum conf_auth auth;
    uint64_t methods;              /* bit (1 << enum http_method); 0 = all */
    struct conf_rate per_token;    /* unset: [limits] applies */
    struct conf_rate per_ip;       /* unset: [limits] applies */

    /* Overrides; has_*: given on the route, else the global value applies. */
    bool has_profile;
    bool has_expose_upstream_5xx;
    bool expose_upstream_5xx;
    bool has_max_error_body;
    bool has_max_body_size;
    bool has_client_timeout;
    bool has_timeout;              /* the upstream response deadline */
    bool has_connect_timeout;
    enum envelope_profile profile;
    size_t max_error_body;
    size_t max_body_size;
    uint64_t client_timeout_ms;
    uint64_t timeout_ms;
    uint64_t connect_timeout_ms;
    size_t n_code_map;
    size_t n_hosts;
    enum conf_host_mode host_mode; /* UNSET: the upstream's host = applies */
    int line;

    /* match_header = NAME: VALUE (exact value, name case-insensitive); "" none */
    char match_header[CONF_NAME_MAX];
    char match_value[256];
    char prefix[CONF_PREFIX_MAX];
    /* cors.set is read by every request (policy_for): in the first page */
    struct conf_cors cors;         /* cors.set false: [cors] applies (if set) */
    char upstream_name[CONF_NAME_MAX];
    char host_name[CONF_HOST_MAX];
    char require_scope[CONF_SCOPE_MAX]; /* normalized "a b c"; "" none */
    struct conf_code code_map[CONF_MAX_CODES];
    /* Host routing: lower case, no port, no trailing dot; "*.example.com"
     * is a leading wildcard (one or more labels). None: any host. */
    char hosts[CONF_MAX_ROUTE_HOSTS][CONF_HOST_MAX];
};

struct conf {
    char path[CONF_PATH_MAX];

    /* [server] */
    struct conf_addr listen[CONF_MAX_LISTEN];
    size_t n_listen;
    unsigned workers;              /* resolved: 0 in the file -> CPU count */
    unsigned max_connections;      /* client connections per worker; 0: sized by the worker */
    size_t max_header_size;
    size_t max_body_size;
    uint64_t client_timeout_ms;
    uint64_t keepalive_timeout_ms; /* idle keep-alive connection; default client_timeout */
    uint64_t shutdown_timeout_ms;
    enum conf_log_level log_level;
    char access_log[CONF_PATH_MAX]; /* "stdout", "off" or a path */
    bool merge_slashes;            /* the upstream gets "//" merged (routing always merges) */
    bool routes_ignore_case;       /* route prefixes match in any letter case */

    /* [envelope] */
    enum envelope_profile profile;
    bool expose_upstream_5xx;
    size_t max_error_body;
    /* dropped from enveloped 5xx besides the built-in list; "X-Foo-*" is a prefix */
    char hide_headers[CONF_MAX_HIDE][CONF_NAME_MAX];
    size_t n_hide_headers;

    /* [correlation] */
    char corr_header[CONF_NAME_MAX];
    char accept[CONF_MAX_ACCEPT][CONF_NAME_MAX];
    size_t n_accept;

    /* [redis]; redis_enabled is false when the section is absent */
    bool redis_enabled;
    struct conf_addr redis_address;
    char redis_password[256];
    unsigned redis_db;
    char redis_key_prefix[CONF_NAME_MAX];
    uint64_t redis_timeout_ms;
    enum conf_on_error redis_on_error;

    /* [limits] */
    char token_header[CONF_NAME_MAX];
    struct conf_rate per_token;
    struct conf_rate per_ip;
    struct conf_cidr trusted_proxies[CONF_MAX_PROXIES];
    size_t n_trusted_proxies;
    char hash_secret[256];         /* key for the token HMAC; random if unset */
    bool hash_secret_set;
    char hash_secret_file[CONF_PATH_MAX]; /* where hash_secret was read from; "" inline */
    unsigned ipv6_prefix;          /* an IPv6 client is keyed by its /N network (1..128) */
    struct conf_rate per_org;      /* callers of one organization together; default off */
    struct conf_rate per_ip_auth_failures; /* failed authentications per IP; then 429 */

    /* [auth]: how credentials are verified (auth.h); auth_set: the section is present */
    bool auth_set;
    char auth_jwks_file[CONF_PATH_MAX];      /* JWT keys; "" none */
    char auth_hs256_secret_file[CONF_PATH_MAX]; /* HS256 only with this; "" none */
    char auth_issuer[256];                   /* "" not checked */
    char auth_audience[256];                 /* "" not checked */
    uint64_t auth_leeway_ms;                 /* clock skew on exp and nbf */
    char auth_subject_claim[CONF_CLAIM_MAX]; /* default "sub" */
    char auth_org_claim[CONF_CLAIM_MAX];     /* default "org" */
    char auth_plan_claim[CONF_CLAIM_MAX];    /* default "plan" */
    char auth_keys_file[CONF_PATH_MAX];      /* API keys without [redis]; "" none */
    uint64_t auth_key_cache_ttl_ms;          /* API key records cached this long; 0: never */
    char auth_key_prefix_required[64];       /* "" none */
    char auth_subject_header[CONF_NAME_MAX]; /* identity sent upstream; "" not sent */
    char auth_org_header[CONF_NAME_MAX];
    char auth_scopes_header[CONF_NAME_MAX];
    char auth_org_request_header[CONF_NAME_MAX]; /* the org a caller asks for (X-Org-Id) */

    struct conf_plan plans[CONF_MAX_PLANS];
    size_t n_plans;

    /* [cors]: the default for routes without cors_* directives */
    struct conf_cors cors;

    /* [tls]: what TLS listeners present; re-read on reload */
    struct conf_cert certs[CONF_MAX_CERTS];
    size_t n_certs;
    unsigned tls_protocols;        /* CONF_TLS_* bits */
    char tls_ciphers[CONF_CIPHERS_MAX]; /* TLS 1.2 and below (OpenSSL list syntax) */
    int tls_ciphers_line;          /* of [tls] ciphers, for the TLS module's messages; 0: default */
    uint64_t tls_handshake_timeout_ms;

    /* [admin]: /healthz and /metrics; n_admin_listen 0 = off */
    struct conf_addr admin_listen[CONF_MAX_LISTEN];
    size_t n_admin_listen;

    struct conf_upstream upstreams[CONF_MAX_UPSTREAMS];
    size_t n_upstreams;
    struct conf_route *routes;     /* [n_routes]: grown as [route] sections come, freed by conf_free */
    size_t n_routes;
};

/*
 * Parse and validate PATH. On success returns a new conf the caller frees
 * with conf_free(). On failure returns NULL and writes "PATH:LINE: problem"
 * (LINE 0 when the problem is not on one line) into err.
 */
struct conf *conf_load(const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void conf_free(struct conf *conf);

/* Value parsers; each returns true and fills *out, or false. */
bool conf_parse_size(const char *s, size_t *out) __attribute__((warn_unused_result));
bool conf_parse_duration(const char *s, uint64_t *ms) __attribute__((warn_unused_result));
bool conf_parse_rate(const char *s, struct conf_rate *out) __attribute__((warn_unused_result));
/* Was RATE given at all ("off" included)? */
static inline bool conf_rate_set(const struct conf_rate *r)
{
    return r->count != 0 || r->window_ms != 0;
}
bool conf_parse_bool(const char *s, bool *out) __attribute__((warn_unused_result));
bool conf_parse_addr(const char *s, struct conf_addr *out) __attribute__((warn_unused_result));
bool conf_parse_cidr(const char *s, struct conf_cidr *out) __attribute__((warn_unused_result));
/* "GET, POST" -> bitmask of (1 << enum http_method). */
bool conf_parse_methods(const char *s, uint64_t *mask) __attribute__((warn_unused_result));

/* Does the address (AF_INET/AF_INET6 sockaddr) fall in a trusted proxy range? */
bool conf_is_trusted_proxy(const struct conf *conf, const struct sockaddr *sa);

/*
 * Write CONF to OUT in the conf file's syntax, section by section, every
 * directive with its value or default, so that the output loads to the same
 * values. Secrets are written as <hidden>. Returns 0, or -1 on a write error.
 */
int conf_dump(const struct conf *conf, FILE *out) __attribute__((warn_unused_result));

/* Write one "SECTION NAME" line per directive ("upstream server"); 0 or -1. */
int conf_list_directives(FILE *out) __attribute__((warn_unused_result));

/*
 * Call CHANGED with the name ("[server] listen") of each restart-only
 * directive whose value differs between OLD and NEW: a reload cannot apply
 * those. Returns how many differ.
 */
typedef void (*conf_changed_fn)(const char *directive, void *arg);
size_t conf_diff_restart(const struct conf *old, const struct conf *new_conf,
                         conf_changed_fn changed, void *arg);

#endif
