/*
 * test_conf: the conf module. Every value parser against tables of good and
 * bad values (overflows included), every directive set and read back, every
 * default, every error message with its line number, and the fixtures under
 * data/conf/: good.conf loads, each bad_*.conf fails with the message its
 * first line ("# expect: LINE: message") announces. The table read back:
 * the dump loads to the same values, secrets hidden; the reload diff names
 * each restart-only directive that changed. Runs with workdir tests/.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <http_parser.h>

#include "conf.h"

void test_register(void);

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define BIT(m) (1ULL << (m))

/* A route and an upstream: what every conf needs to load. */
#define TAIL "[upstream u]\nserver = 127.0.0.1:9001\n[route r]\nprefix = /\nupstream = u\n"
/* A certificate pair: what a TLS listener needs (the files are not opened here). */
#define PAIR "[tls]\ncertificate = /c.pem\nkey = /k.pem\n"
/* proxy_protocol listeners need someone allowed to send the header */
#define TP "[limits]\ntrusted_proxies = 10.0.0.0/8\n"

#define MOZILLA_INTERMEDIATE                                                                   \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"   \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"

/* ---------------------------------------------------------------- helpers */

/* Write TEXT to a fresh temp file; PATH receives its name. */
static void write_temp(const char *text, char *path, size_t pathlen)
{
    snprintf(path, pathlen, "/tmp/envelopd-test-conf-XXXXXX");
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        CU_ASSERT_FATAL(n > 0);
        off += (size_t)n;
    }
    CU_ASSERT_FATAL(close(fd) == 0);
}

/* Load TEXT as a conf; ERR receives the message with the temp path cut off. */
static struct conf *load_text(const char *text, char *err, size_t errlen)
{
    char path[64], raw[2048];
    struct conf *c;

    write_temp(text, path, sizeof(path));
    c = conf_load(path, raw, sizeof(raw));
    unlink(path);
    err[0] = '\0';
    if (!c) {
        size_t pl = strlen(path);
        if (strncmp(raw, path, pl) == 0 && raw[pl] == ':')
            snprintf(err, errlen, "%s", raw + pl + 1);
        else
            snprintf(err, errlen, "(no path prefix) %.1000s", raw);
    }
    return c;
}

static void expect_error(const char *text, const char *want)
{
    char err[2048];
    struct conf *c = load_text(text, err, sizeof(err));
    CU_ASSERT_PTR_NULL(c);
    if (strcmp(err, want) != 0) {
        fprintf(stderr, "\n  conf:\n%s\n  want: %s\n  got:  %s\n", text, want, err);
        CU_FAIL("wrong error message");
    }
    conf_free(c);
}

/* ---------------------------------------------------------------- value parsers */

static void test_parse_size(void)
{
    static const struct { const char *s; bool ok; size_t v; } t[] = {
        {"0", true, 0}, {"1", true, 1}, {"16k", true, 16384}, {"16K", true, 16384},
        {"10m", true, 10485760}, {"10M", true, 10485760}, {"1g", true, 1073741824},
        {"2G", true, 2147483648u}, {"007", true, 7}, {"64k", true, 65536},
        {"18446744073709551615", true, SIZE_MAX},
        {"18446744073709551616", false, 0}, {"17179869184g", false, 0},
        {"18014398509481984k", false, 0}, {"99999999999999999999999", false, 0},
        {"", false, 0}, {"k", false, 0}, {"-1", false, 0}, {"+1", false, 0}, {"16q", false, 0},
        {"16kb", false, 0}, {"16 k", false, 0}, {" 16k", false, 0}, {"16k ", false, 0},
        {"1.5m", false, 0}, {"0x10", false, 0}, {"1t", false, 0},
    };
    for (size_t i = 0; i < N_OF(t); i++) {
        size_t v = 12345;
        bool ok = conf_parse_size(t[i].s, &v);
        if (ok != t[i].ok || (ok && v != t[i].v))
            fprintf(stderr, "\n  size %s: ok=%d v=%zu\n", t[i].s, ok, v);
        CU_ASSERT_EQUAL(ok, t[i].ok);
        if (t[i].ok)
            CU_ASSERT_EQUAL(v, t[i].v);
    }
    size_t v;
    CU_ASSERT_FALSE(conf_parse_size(NULL, &v));
}

static void test_parse_duration(void)
{
    static const struct { const char *s; bool ok; uint64_t v; } t[] = {
        {"0ms", true, 0}, {"50ms", true, 50}, {"50MS", true, 50}, {"1s", true, 1000},
        {"30s", true, 30000}, {"30S", true, 30000}, {"5m", true, 300000}, {"1h", true, 3600000},
        {"0s", true, 0}, {"24h", true, 86400000},
        {"18446744073709551615ms", true, UINT64_MAX},
        {"18446744073709551616ms", false, 0}, {"18446744073709552s", false, 0},
        {"5124095576030432h", false, 0},
        {"30", false, 0}, {"", false, 0}, {"s", false, 0}, {"-1s", false, 0}, {"1.5s", false, 0},
        {"1d", false, 0}, {"1sec", false, 0}, {"1 s", false, 0}, {"1m30s", false, 0},
        {"ms", false, 0}, {"1mss", false, 0}, {"1us", false, 0},
    };
    for (size_t i = 0; i < N_OF(t); i++) {
        uint64_t v = 12345;
        bool ok = conf_parse_duration(t[i].s, &v);
        if (ok != t[i].ok || (ok && v != t[i].v))
            fprintf(stderr, "\n  duration %s: ok=%d v=%llu\n", t[i].s, ok, (unsigned long long)v);
        CU_ASSERT_EQUAL(ok, t[i].ok);
        if (t[i].ok)
            CU_ASSERT_EQUAL(v, t[i].v);
    }
}

static void test_parse_rate(void)
{
    static const struct { const char *s; bool ok; uint32_t n; uint64_t w; } t[] = {
        {"100/1m", true, 100, 60000}, {"500/15m", true, 500, 900000},
        {"5000/1h", true, 5000, 3600000}, {"10/s", true, 10, 1000}, {"10/m", true, 10, 60000},
        {"10/h", true, 10, 3600000}, {"10/1s", true, 10, 1000}, {"1/500ms", true, 1, 500},
        {"3/M", true, 3, 60000}, {"4294967295/1h", true, 4294967295u, 3600000},
        {"4294967296/1h", false, 0, 0}, {"0/1m", false, 0, 0}, {"10/0s", false, 0, 0},
        {"10", false, 0, 0}, {"10/", false, 0, 0}, {"/1m", false, 0, 0}, {"10/1", false, 0, 0},
        {"10/1d", false, 0, 0}, {"-1/1m", false, 0, 0}, {"10 / 1m", false, 0, 0},
        {"10/1m/2", false, 0, 0}, {"", false, 0, 0}, {"a/1m", false, 0, 0},
        {"10/99999999999999999999ms", false, 0, 0},
        /* "off": no limit, told apart from "unset" (0/0) by its window */
        {"off", true, 0, 1}, {"OFF", false, 0, 0}, {"off ", false, 0, 0},
    };
    for (size_t i = 0; i < N_OF(t); i++) {
        struct conf_rate r = {7, 7};
        bool ok = conf_parse_rate(t[i].s, &r);
        if (ok != t[i].ok)
            fprintf(stderr, "\n  rate %s: ok=%d\n", t[i].s, ok);
        CU_ASSERT_EQUAL(ok, t[i].ok);
        if (t[i].ok) {
            CU_ASSERT_EQUAL(r.count, t[i].n);
            CU_ASSERT_EQUAL(r.window_ms, t[i].w);
            CU_ASSERT_TRUE(conf_rate_set(&r));
        }
    }
    struct conf_rate unset = {0, 0};
    CU_ASSERT_FALSE(conf_rate_set(&unset));
}

static void test_parse_bool(void)
{
    static const struct { const char *s; bool ok; bool v; } t[] = {
        {"yes", true, true}, {"YES", true, true}, {"true", true, true}, {"on", true, true},
        {"1", true, true}, {"True", true, true}, {"no", true, false}, {"No", true, false},
        {"false", true, false}, {"off", true, false}, {"0", true, false},
        {"", false, false}, {"y", false, false}, {"2", false, false}, {"yes ", false, false},
        {"enabled", false, false}, {"nope", false, false},
    };
    for (size_t i = 0; i < N_OF(t); i++) {
        bool v = !t[i].v;
        bool ok = conf_parse_bool(t[i].s, &v);
        CU_ASSERT_EQUAL(ok, t[i].ok);
        if (t[i].ok)
            CU_ASSERT_EQUAL(v, t[i].v);
    }
}

static void test_parse_addr(void)
{
    static const struct { const char *s; bool ok; int family; const char *ip; int port; } t[] = {
        {"1.2.3.4:80", true, AF_INET, "1.2.3.4", 80},
        {"0.0.0.0:8080", true, AF_INET, "0.0.0.0", 8080},
        {"127.0.0.1:65535", true, AF_INET, "127.0.0.1", 65535},
        {"[::1]:8080", true, AF_INET6, "::1", 8080},
        {"[::]:8080", true, AF_INET6, "::", 8080},
        {"[2001:db8::7]:1", true, AF_INET6, "2001:db8::7", 1},
        {"unix:/run/redis/redis.sock", true, AF_UNIX, NULL, 0},
        {"1.2.3.4:0", false, 0, NULL, 0}, {"1.2.3.4:65536", false, 0, NULL, 0},
        {"1.2.3.4:99999999999999999999", false, 0, NULL, 0}, {"1.2.3.4:", false, 0, NULL, 0},
        {"1.2.3.4", false, 0, NULL, 0}, {":80", false, 0, NULL, 0}, {"1.2.3.4:8o", false, 0, NULL, 0},
        {"1.2.3.4:-1", false, 0, NULL, 0}, {"::1:8080", false, 0, NULL, 0},
        {"[::1]8080", false, 0, NULL, 0}, {"[::1]", false, 0, NULL, 0},
        {"[1.2.3.4]:80", false, 0, NULL, 0}, {"[zz::1]:80", false, 0, NULL, 0},
        {"1.2.3:80", false, 0, NULL, 0}, {"127.1:80", false, 0, NULL, 0},
        {"256.1.1.1:80", false, 0, NULL, 0}, {"", false, 0, NULL, 0},
        {"unix:", false, 0, NULL, 0}, {"unix:relative.sock", false, 0, NULL, 0},
        {"no-such-host.invalid:80", false, 0, NULL, 0},
    };
    for (size_t i = 0; i < N_OF(t); i++) {
        struct conf_addr a;
        bool ok = conf_parse_addr(t[i].s, &a);
        if (ok != t[i].ok)
            fprintf(stderr, "\n  addr %s: ok=%d\n", t[i].s, ok);
        CU_ASSERT_EQUAL(ok, t[i].ok);
        if (!ok || !t[i].ok)
            continue;
        CU_ASSERT_STRING_EQUAL(a.text, t[i].s);
        CU_ASSERT_EQUAL(a.sa.ss_family, t[i].family);
        if (t[i].family == AF_INET) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.sa;
            char ip[INET_ADDRSTRLEN];
            CU_ASSERT_EQUAL(a.salen, sizeof(*sin));
            CU_ASSERT_PTR_NOT_NULL(inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip)));
            CU_ASSERT_STRING_EQUAL(ip, t[i].ip);
            CU_ASSERT_EQUAL(ntohs(sin->sin_port), t[i].port);
        } else if (t[i].family == AF_INET6) {
            const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a.sa;
            char ip[INET6_ADDRSTRLEN];
            CU_ASSERT_EQUAL(a.salen, sizeof(*sin6));
            CU_ASSERT_PTR_NOT_NULL(inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip)));
            CU_ASSERT_STRING_EQUAL(ip, t[i].ip);
            CU_ASSERT_EQUAL(ntohs(sin6->sin6_port), t[i].port);
        } else {
            const struct sockaddr_un *sun = (const struct sockaddr_un *)&a.sa;
            CU_ASSERT_STRING_EQUAL(sun->sun_path, "/run/redis/redis.sock");
            CU_ASSERT_EQUAL(a.salen, offsetof(struct sockaddr_un, sun_path) +
                            strlen("/run/redis/redis.sock") + 1);
        }
    }

    /* A host name is resolved at load time. */
    struct conf_addr a;
    CU_ASSERT_TRUE(conf_parse_addr("localhost:80", &a));
    CU_ASSERT_TRUE(a.sa.ss_family == AF_INET || a.sa.ss_family == AF_INET6);

    /* A socket path that does not fit sun_path, and text that does not fit conf_addr. */
    char longpath[300], huge[CONF_PATH_MAX + 64];
    snprintf(longpath, sizeof(longpath), "unix:/%0200d", 0);
    CU_ASSERT_FALSE(conf_parse_addr(longpath, &a));
    memset(huge, 'a', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    CU_ASSERT_FALSE(conf_parse_addr(huge, &a));
}

static void test_parse_cidr(void)
{
    static const struct {
        const char *s; bool ok; int family; unsigned prefix; const char *net;
    } t[] = {
        {"10.0.0.0/8", true, AF_INET, 8, "10.0.0.0"},
        {"10.1.2.3/8", true, AF_INET, 8, "10.0.0.0"},       /* host bits are masked */
        {"127.0.0.1", true, AF_INET, 32, "127.0.0.1"},
        {"192.168.1.77/25", true, AF_INET, 25, "192.168.1.0"},
        {"192.168.1.200/25", true, AF_INET, 25, "192.168.1.128"},
        {"0.0.0.0/0", true, AF_INET, 0, "0.0.0.0"},
        {"::1", true, AF_INET6, 128, "::1"},
        {"fe80::1234/10", true, AF_INET6, 10, "fe80::"},
        {"2001:db8::/32", true, AF_INET6, 32, "2001:db8::"},
        {"::/0", true, AF_INET6, 0, "::"},
        {"10.0.0.0/33", false, 0, 0, NULL}, {"::/129", false, 0, 0, NULL},
        {"10.0.0.0/", false, 0, 0, NULL}, {"/8", false, 0, 0, NULL}, {"", false, 0, 0, NULL},
        {"10.0.0/8", false, 0, 0, NULL}, {"10.0.0.0/-1", false, 0, 0, NULL},
        {"10.0.0.0/8x", false, 0, 0, NULL}, {"localhost", false, 0, 0, NULL},
        {"10.0.0.0/99999999999999999999", false, 0, 0, NULL},
        {"1:2:3:4:5:6:7:8:9/64", false, 0, 0, NULL},
    };
    for (size_t i = 0; i < N_OF(t); i++) {
        struct conf_cidr c;
        char ip[INET6_ADDRSTRLEN];
        bool ok = conf_parse_cidr(t[i].s, &c);
        if (ok != t[i].ok)
            fprintf(stderr, "\n  cidr %s: ok=%d\n", t[i].s, ok);
        CU_ASSERT_EQUAL(ok, t[i].ok);
        if (!ok || !t[i].ok)
            continue;
        CU_ASSERT_EQUAL(c.family, t[i].family);
        CU_ASSERT_EQUAL(c.prefix, t[i].prefix);
        CU_ASSERT_PTR_NOT_NULL(inet_ntop(c.family, c.addr, ip, sizeof(ip)));
        CU_ASSERT_STRING_EQUAL(ip, t[i].net);
    }
}

static void test_parse_methods(void)
{
    static const struct { const char *s; bool ok; uint64_t m; } t[] = {
        {"GET", true, BIT(HTTP_GET)},
        {"GET, POST, PATCH, DELETE", true,
         BIT(HTTP_GET) | BIT(HTTP_POST) | BIT(HTTP_PATCH) | BIT(HTTP_DELETE)},
        {"get,post", true, BIT(HTTP_GET) | BIT(HTTP_POST)},
        {"  PUT ,OPTIONS  ", true, BIT(HTTP_PUT) | BIT(HTTP_OPTIONS)},
        {"GET, GET", true, BIT(HTTP_GET)},
        {"M-SEARCH", true, BIT(HTTP_MSEARCH)},
        {"SOURCE", true, BIT(HTTP_SOURCE)},   /* bit 33: the mask is 64-bit */
        {"HEAD", true, BIT(HTTP_HEAD)},
        {"", false, 0}, {",", false, 0}, {"GET,", false, 0}, {",GET", false, 0},
        {"GET,,POST", false, 0}, {"FETCH", false, 0}, {"GET POST", false, 0},
        {"GET;POST", false, 0}, {"<unknown>", false, 0},
        {"AVERYLONGMETHODNAMETHATISNOTREALATALL", false, 0},
    };
    for (size_t i = 0; i < N_OF(t); i++) {
        uint64_t m = 7;
        bool ok = conf_parse_methods(t[i].s, &m);
        if (ok != t[i].ok || (ok && m != t[i].m))
            fprintf(stderr, "\n  methods %s: ok=%d m=%llx\n", t[i].s, ok, (unsigned long long)m);
        CU_ASSERT_EQUAL(ok, t[i].ok);
        if (t[i].ok)
            CU_ASSERT_EQUAL(m, t[i].m);
    }
}

/* ---------------------------------------------------------------- trusted proxies */

static bool trusted4(const struct conf *c, const char *ip)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    CU_ASSERT_FATAL(inet_pton(AF_INET, ip, &sin.sin_addr) == 1);
    return conf_is_trusted_proxy(c, (const struct sockaddr *)&sin);
}

static bool trusted6(const struct conf *c, const char *ip)
{
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    CU_ASSERT_FATAL(inet_pton(AF_INET6, ip, &sin6.sin6_addr) == 1);
    return conf_is_trusted_proxy(c, (const struct sockaddr *)&sin6);
}

static void test_trusted_proxy(void)
{
    char err[1024];
    struct conf *c = load_text(
        "[limits]\n"
        "trusted_proxies = 10.0.0.0/8, ::1\n"
        "trusted_proxies = 192.168.1.0/24\n"
        "trusted_proxies = fe80::/10, ::ffff:172.16.0.0/108\n" TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->n_trusted_proxies, 5);

    CU_ASSERT_TRUE(trusted4(c, "10.0.0.1"));
    CU_ASSERT_TRUE(trusted4(c, "10.255.255.255"));
    CU_ASSERT_FALSE(trusted4(c, "11.0.0.1"));
    CU_ASSERT_FALSE(trusted4(c, "9.255.255.255"));
    CU_ASSERT_TRUE(trusted4(c, "192.168.1.0"));
    CU_ASSERT_TRUE(trusted4(c, "192.168.1.255"));
    CU_ASSERT_FALSE(trusted4(c, "192.168.2.1"));
    CU_ASSERT_FALSE(trusted4(c, "127.0.0.1"));
    CU_ASSERT_TRUE(trusted4(c, "172.16.3.4"));          /* via the ::ffff: range */
    CU_ASSERT_TRUE(trusted4(c, "172.31.255.255"));   /* /108 = v4 /12 */
    CU_ASSERT_FALSE(trusted4(c, "172.32.0.1"));

    CU_ASSERT_TRUE(trusted6(c, "::1"));
    CU_ASSERT_FALSE(trusted6(c, "::2"));
    CU_ASSERT_TRUE(trusted6(c, "fe80::1"));
    CU_ASSERT_TRUE(trusted6(c, "febf:ffff::1"));
    CU_ASSERT_FALSE(trusted6(c, "fec0::1"));
    CU_ASSERT_TRUE(trusted6(c, "::ffff:10.1.2.3"));     /* v4-mapped against a v4 range */
    CU_ASSERT_FALSE(trusted6(c, "::ffff:11.1.2.3"));
    CU_ASSERT_TRUE(trusted6(c, "::ffff:172.16.0.9"));
    CU_ASSERT_FALSE(trusted6(c, "::a00:1"));            /* v4-compatible is not v4-mapped */

    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    CU_ASSERT_FALSE(conf_is_trusted_proxy(c, (const struct sockaddr *)&sun));
    CU_ASSERT_FALSE(conf_is_trusted_proxy(c, NULL));
    CU_ASSERT_FALSE(conf_is_trusted_proxy(NULL, NULL));
    conf_free(c);

    /* None by default: nobody's X-Forwarded-For is believed. */
    c = load_text(TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_FALSE(trusted4(c, "127.0.0.1"));
    CU_ASSERT_FALSE(trusted6(c, "::1"));
    conf_free(c);

    /* 0.0.0.0/0 and ::/0 trust everyone. */
    c = load_text("[limits]\ntrusted_proxies = 0.0.0.0/0, ::/0\n" TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_TRUE(trusted4(c, "203.0.113.9"));
    CU_ASSERT_TRUE(trusted6(c, "2001:db8::1"));
    conf_free(c);
}

/* ---------------------------------------------------------------- loading */

static void test_defaults(void)
{
    char err[1024];
    struct conf *c = load_text(TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    CU_ASSERT_EQUAL(c->n_listen, 1);
    CU_ASSERT_STRING_EQUAL(c->listen[0].text, "0.0.0.0:8080");
    CU_ASSERT_EQUAL(c->listen[0].sa.ss_family, AF_INET);
    CU_ASSERT_FALSE(c->listen[0].tls);
    CU_ASSERT_FALSE(c->listen[0].proxy_protocol);
    CU_ASSERT_EQUAL(c->workers, (unsigned)(cpus < 1 ? 1 : cpus > 1024 ? 1024 : cpus));
    CU_ASSERT_EQUAL(c->max_connections, 0);
    CU_ASSERT_EQUAL(c->max_header_size, 16 * 1024);
    CU_ASSERT_EQUAL(c->max_body_size, 10 * 1024 * 1024);
    CU_ASSERT_EQUAL(c->client_timeout_ms, 30000);
    CU_ASSERT_EQUAL(c->keepalive_timeout_ms, 30000);
    CU_ASSERT_EQUAL(c->shutdown_timeout_ms, 20000);
    CU_ASSERT_EQUAL(c->log_level, CONF_LOG_INFO);
    CU_ASSERT_STRING_EQUAL(c->access_log, "stdout");

    CU_ASSERT_EQUAL(c->profile, ENVELOPE_NESTED);
    CU_ASSERT_FALSE(c->expose_upstream_5xx);
    CU_ASSERT_EQUAL(c->max_error_body, 64 * 1024);

    CU_ASSERT_STRING_EQUAL(c->corr_header, "X-Correlation-Id");
    CU_ASSERT_EQUAL(c->n_accept, 2);
    CU_ASSERT_STRING_EQUAL(c->accept[0], "X-Correlation-Id");
    CU_ASSERT_STRING_EQUAL(c->accept[1], "X-Request-Id");

    CU_ASSERT_FALSE(c->redis_enabled);
    CU_ASSERT_STRING_EQUAL(c->redis_address.text, "127.0.0.1:6379");
    CU_ASSERT_STRING_EQUAL(c->redis_password, "");
    CU_ASSERT_EQUAL(c->redis_db, 0);
    CU_ASSERT_STRING_EQUAL(c->redis_key_prefix, "envelopd:");
    CU_ASSERT_EQUAL(c->redis_timeout_ms, 50);
    CU_ASSERT_EQUAL(c->redis_on_error, CONF_ON_ERROR_ALLOW);

    CU_ASSERT_STRING_EQUAL(c->token_header, "Authorization");
    CU_ASSERT_EQUAL(c->per_token.count, 100);
    CU_ASSERT_EQUAL(c->per_token.window_ms, 60000);
    CU_ASSERT_EQUAL(c->per_ip.count, 500);
    CU_ASSERT_EQUAL(c->per_ip.window_ms, 900000);
    CU_ASSERT_EQUAL(c->n_trusted_proxies, 0);
    CU_ASSERT_FALSE(c->hash_secret_set);
    CU_ASSERT_EQUAL(c->ipv6_prefix, 64);
    CU_ASSERT_TRUE(c->merge_slashes);
    CU_ASSERT_TRUE(c->routes_ignore_case);
    CU_ASSERT_EQUAL(c->n_hide_headers, 0);

    CU_ASSERT_EQUAL(c->n_certs, 0);
    CU_ASSERT_EQUAL(c->tls_protocols, CONF_TLS_V1_2 | CONF_TLS_V1_3);
    CU_ASSERT_STRING_EQUAL(c->tls_ciphers, MOZILLA_INTERMEDIATE);
    CU_ASSERT_EQUAL(c->tls_ciphers_line, 0);
    CU_ASSERT_EQUAL(c->tls_handshake_timeout_ms, 10000);

    CU_ASSERT_EQUAL_FATAL(c->n_upstreams, 1);
    const struct conf_upstream *u = &c->upstreams[0];
    CU_ASSERT_STRING_EQUAL(u->name, "u");
    CU_ASSERT_EQUAL(u->n_servers, 1);
    CU_ASSERT_STRING_EQUAL(u->servers[0].text, "127.0.0.1:9001");
    CU_ASSERT_EQUAL(u->keepalive, 64);
    CU_ASSERT_EQUAL(u->keepalive_timeout_ms, 60000);
    CU_ASSERT_EQUAL(u->keepalive_requests, 0);
    CU_ASSERT_EQUAL(u->connect_timeout_ms, 2000);
    CU_ASSERT_EQUAL(u->timeout_ms, 30000);
    CU_ASSERT_EQUAL(u->tunnel_timeout_ms, 3600000);
    CU_ASSERT_EQUAL(u->retries, 2);
    CU_ASSERT_EQUAL(u->retry_backoff_ms, 25);
    CU_ASSERT_EQUAL(u->retry_backoff_max_ms, 1000);
    CU_ASSERT_EQUAL(u->down_backoff_ms, 1000);
    CU_ASSERT_EQUAL(u->down_backoff_max_ms, 30000);
    CU_ASSERT_FALSE(u->tls);
    CU_ASSERT_TRUE(u->verify);
    CU_ASSERT_STRING_EQUAL(u->ca_file, "");
    CU_ASSERT_STRING_EQUAL(u->server_name, "");
    CU_ASSERT_STRING_EQUAL(u->client_certificate, "");
    CU_ASSERT_STRING_EQUAL(u->client_key, "");
    CU_ASSERT_FALSE(u->servers[0].tls);
    CU_ASSERT_FALSE(u->servers[0].proxy_protocol);
    CU_ASSERT_EQUAL(u->line, 1);

    CU_ASSERT_EQUAL_FATAL(c->n_routes, 1);
    const struct conf_route *r = &c->routes[0];
    CU_ASSERT_STRING_EQUAL(r->name, "r");
    CU_ASSERT_STRING_EQUAL(r->prefix, "/");
    CU_ASSERT_EQUAL(r->prefix_len, 1);
    CU_ASSERT_EQUAL(r->upstream, 0);
    CU_ASSERT_STRING_EQUAL(r->upstream_name, "u");
    CU_ASSERT_FALSE(r->strip_prefix);
    CU_ASSERT_EQUAL(r->methods, 0);
    CU_ASSERT_FALSE(r->require_token);
    CU_ASSERT_EQUAL(r->per_token.count, 0);
    CU_ASSERT_EQUAL(r->per_ip.count, 0);
    CU_ASSERT_EQUAL(r->line, 3);
    /* host routing, overrides, code_map, CORS, Host: none set */
    CU_ASSERT_EQUAL(r->n_hosts, 0);
    CU_ASSERT_STRING_EQUAL(r->match_header, "");
    CU_ASSERT_STRING_EQUAL(r->match_value, "");
    CU_ASSERT_FALSE(r->has_profile);
    CU_ASSERT_FALSE(r->has_expose_upstream_5xx);
    CU_ASSERT_FALSE(r->has_max_error_body);
    CU_ASSERT_FALSE(r->has_max_body_size);
    CU_ASSERT_FALSE(r->has_client_timeout);
    CU_ASSERT_FALSE(r->has_timeout);
    CU_ASSERT_FALSE(r->has_connect_timeout);
    CU_ASSERT_EQUAL(r->n_code_map, 0);
    CU_ASSERT_FALSE(r->cors.set);
    CU_ASSERT_EQUAL(r->cors.n_origins, 0);
    CU_ASSERT_EQUAL(r->host_mode, CONF_HOST_UNSET);
    CU_ASSERT_STRING_EQUAL(r->host_name, "");
    CU_ASSERT_EQUAL(u->host_mode, CONF_HOST_KEEP);
    CU_ASSERT_STRING_EQUAL(u->host_name, "");
    CU_ASSERT_FALSE(c->cors.set);
    CU_ASSERT_EQUAL(c->cors.n_origins, 0);
    CU_ASSERT_EQUAL(c->cors.methods, 0);
    CU_ASSERT_STRING_EQUAL(c->cors.headers, "");
    CU_ASSERT_EQUAL(c->cors.max_age_s, 600);
    CU_ASSERT_FALSE(c->cors.credentials);

    /* identity: no [auth], no plan, no route checks credentials */
    CU_ASSERT_EQUAL(c->per_org.count, 0);               /* off */
    CU_ASSERT_EQUAL(c->per_org.window_ms, 1);
    CU_ASSERT_EQUAL(c->per_ip_auth_failures.count, 10);
    CU_ASSERT_EQUAL(c->per_ip_auth_failures.window_ms, 60000);
    CU_ASSERT_FALSE(c->auth_set);
    CU_ASSERT_STRING_EQUAL(c->auth_jwks_file, "");
    CU_ASSERT_STRING_EQUAL(c->auth_hs256_secret_file, "");
    CU_ASSERT_STRING_EQUAL(c->auth_issuer, "");
    CU_ASSERT_STRING_EQUAL(c->auth_audience, "");
    CU_ASSERT_EQUAL(c->auth_leeway_ms, 60000);
    CU_ASSERT_STRING_EQUAL(c->auth_subject_claim, "sub");
    CU_ASSERT_STRING_EQUAL(c->auth_org_claim, "org");
    CU_ASSERT_STRING_EQUAL(c->auth_plan_claim, "plan");
    CU_ASSERT_STRING_EQUAL(c->auth_keys_file, "");
    CU_ASSERT_EQUAL(c->auth_key_cache_ttl_ms, 10000);
    CU_ASSERT_STRING_EQUAL(c->auth_key_prefix_required, "");
    CU_ASSERT_STRING_EQUAL(c->auth_subject_header, "X-Auth-Subject");
    CU_ASSERT_STRING_EQUAL(c->auth_org_header, "X-Auth-Org");
    CU_ASSERT_STRING_EQUAL(c->auth_scopes_header, "X-Auth-Scopes");
    CU_ASSERT_STRING_EQUAL(c->auth_org_request_header, "X-Org-Id");
    CU_ASSERT_EQUAL(c->n_plans, 0);
    CU_ASSERT_EQUAL(r->auth, CONF_AUTH_NONE);
    CU_ASSERT_STRING_EQUAL(r->require_scope, "");
    CU_ASSERT_FALSE(r->forbid_api_keys);
    CU_ASSERT_FALSE(r->hide_credentials);
    conf_free(c);

    /* An empty [auth] is present, with the same defaults. */
    c = load_text("[auth]\n" TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_TRUE(c->auth_set);
    CU_ASSERT_EQUAL(c->auth_leeway_ms, 60000);
    CU_ASSERT_STRING_EQUAL(c->auth_subject_header, "X-Auth-Subject");
    CU_ASSERT_EQUAL(c->routes[0].auth, CONF_AUTH_NONE);
    conf_free(c);
}

/* good.conf sets every directive to a value other than its default. */
static void test_every_directive(void)
{
    char err[1024];
    struct conf *c = conf_load("data/conf/good.conf", err, sizeof(err));
    if (!c)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);

    CU_ASSERT_STRING_EQUAL(c->path, "data/conf/good.conf");
    CU_ASSERT_EQUAL_FATAL(c->n_listen, 2);
    CU_ASSERT_STRING_EQUAL(c->listen[0].text, "127.0.0.1:18080");
    CU_ASSERT_STRING_EQUAL(c->listen[1].text, "[::1]:18080");
    CU_ASSERT_EQUAL(c->listen[1].sa.ss_family, AF_INET6);
    CU_ASSERT_EQUAL(c->workers, 3);
    CU_ASSERT_EQUAL(c->max_connections, 500);
    CU_ASSERT_EQUAL(c->max_header_size, 32 * 1024);
    CU_ASSERT_EQUAL(c->max_body_size, 2 * 1024 * 1024);
    CU_ASSERT_EQUAL(c->client_timeout_ms, 15000);
    CU_ASSERT_EQUAL(c->keepalive_timeout_ms, 75000);
    CU_ASSERT_EQUAL(c->shutdown_timeout_ms, 5000);
    CU_ASSERT_EQUAL(c->log_level, CONF_LOG_DEBUG);
    CU_ASSERT_STRING_EQUAL(c->access_log, "/var/log/envelopd/access.log");
    CU_ASSERT_FALSE(c->merge_slashes);
    CU_ASSERT_FALSE(c->routes_ignore_case);

    CU_ASSERT_EQUAL(c->n_certs, 0);   /* -t opens them: test_tls_pairs sets them */
    CU_ASSERT_EQUAL(c->tls_protocols, CONF_TLS_V1_3);
    CU_ASSERT_STRING_EQUAL(c->tls_ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256:"
                           "ECDHE-RSA-AES128-GCM-SHA256");
    CU_ASSERT_EQUAL(c->tls_ciphers_line, 25);
    CU_ASSERT_EQUAL(c->tls_handshake_timeout_ms, 3000);

    CU_ASSERT_EQUAL(c->profile, ENVELOPE_PROBLEM);
    CU_ASSERT_TRUE(c->expose_upstream_5xx);
    CU_ASSERT_EQUAL(c->max_error_body, 128 * 1024);
    CU_ASSERT_EQUAL_FATAL(c->n_hide_headers, 3);
    CU_ASSERT_STRING_EQUAL(c->hide_headers[0], "X-Internal-*");
    CU_ASSERT_STRING_EQUAL(c->hide_headers[2], "X-Trace-Host");

    CU_ASSERT_STRING_EQUAL(c->corr_header, "X-Request-Id");
    CU_ASSERT_EQUAL_FATAL(c->n_accept, 3);
    CU_ASSERT_STRING_EQUAL(c->accept[0], "X-Request-Id");
    CU_ASSERT_STRING_EQUAL(c->accept[1], "X-Amzn-Trace-Id");
    CU_ASSERT_STRING_EQUAL(c->accept[2], "Traceparent");

    CU_ASSERT_TRUE(c->redis_enabled);
    CU_ASSERT_STRING_EQUAL(c->redis_address.text, "unix:/run/redis/redis.sock");
    CU_ASSERT_EQUAL(c->redis_address.sa.ss_family, AF_UNIX);
    CU_ASSERT_STRING_EQUAL(c->redis_password, "s3cret pass");
    CU_ASSERT_EQUAL(c->redis_db, 3);
    CU_ASSERT_STRING_EQUAL(c->redis_key_prefix, "gw1:");
    CU_ASSERT_EQUAL(c->redis_timeout_ms, 100);
    CU_ASSERT_EQUAL(c->redis_on_error, CONF_ON_ERROR_LOCAL);

    CU_ASSERT_STRING_EQUAL(c->token_header, "X-Api-Key");
    CU_ASSERT_EQUAL(c->ipv6_prefix, 48);
    CU_ASSERT_EQUAL(c->per_token.count, 1000);
    CU_ASSERT_EQUAL(c->per_token.window_ms, 3600000);
    CU_ASSERT_EQUAL(c->per_ip.count, 50);
    CU_ASSERT_EQUAL(c->per_ip.window_ms, 1000);
    CU_ASSERT_EQUAL(c->n_trusted_proxies, 3);
    CU_ASSERT_TRUE(c->hash_secret_set);
    CU_ASSERT_STRING_EQUAL(c->hash_secret, "0123456789abcdef0123456789abcdef");
    CU_ASSERT_EQUAL(c->per_org.count, 5000);
    CU_ASSERT_EQUAL(c->per_org.window_ms, 3600000);
    CU_ASSERT_EQUAL(c->per_ip_auth_failures.count, 20);
    CU_ASSERT_EQUAL(c->per_ip_auth_failures.window_ms, 300000);

    /* [auth] but its files (test_auth_files), [plan NAME] */
    CU_ASSERT_TRUE(c->auth_set);
    CU_ASSERT_STRING_EQUAL(c->auth_jwks_file, "");
    CU_ASSERT_STRING_EQUAL(c->auth_hs256_secret_file, "");
    CU_ASSERT_STRING_EQUAL(c->auth_keys_file, "");
    CU_ASSERT_STRING_EQUAL(c->auth_issuer, "https://issuer.example.com/");
    CU_ASSERT_STRING_EQUAL(c->auth_audience, "api.example.com");
    CU_ASSERT_EQUAL(c->auth_leeway_ms, 30000);
    CU_ASSERT_STRING_EQUAL(c->auth_subject_claim, "uid");
    CU_ASSERT_STRING_EQUAL(c->auth_org_claim, "https://example.com/tenant");
    CU_ASSERT_STRING_EQUAL(c->auth_plan_claim, "tier");
    CU_ASSERT_EQUAL(c->auth_key_cache_ttl_ms, 0);
    CU_ASSERT_STRING_EQUAL(c->auth_key_prefix_required, "sk_live_");
    CU_ASSERT_STRING_EQUAL(c->auth_subject_header, "X-User");
    CU_ASSERT_STRING_EQUAL(c->auth_org_header, "");
    CU_ASSERT_STRING_EQUAL(c->auth_scopes_header, "X-Scopes");
    CU_ASSERT_STRING_EQUAL(c->auth_org_request_header, "X-Tenant");
    CU_ASSERT_EQUAL_FATAL(c->n_plans, 2);
    CU_ASSERT_STRING_EQUAL(c->plans[0].name, "gold");
    CU_ASSERT_EQUAL(c->plans[0].per_token.count, 10000);
    CU_ASSERT_EQUAL(c->plans[0].per_token.window_ms, 3600000);
    CU_ASSERT_EQUAL(c->plans[0].per_org.count, 0);     /* off */
    CU_ASSERT_EQUAL(c->plans[0].per_org.window_ms, 1);
    CU_ASSERT_EQUAL(c->plans[0].line, 142);
    CU_ASSERT_STRING_EQUAL(c->plans[1].name, "free.v2");
    CU_ASSERT_EQUAL(c->plans[1].per_token.count, 10);
    CU_ASSERT_EQUAL(c->plans[1].per_token.window_ms, 60000);
    CU_ASSERT_FALSE(conf_rate_set(&c->plans[1].per_org));  /* unset: [limits] per_org */
    CU_ASSERT_EQUAL(c->plans[1].line, 146);

    CU_ASSERT_EQUAL_FATAL(c->n_upstreams, 2);
    const struct conf_upstream *u = &c->upstreams[0];
    CU_ASSERT_STRING_EQUAL(u->name, "tasks");
    CU_ASSERT_EQUAL_FATAL(u->n_servers, 3);
    CU_ASSERT_STRING_EQUAL(u->servers[0].text, "127.0.0.1:9001");
    CU_ASSERT_STRING_EQUAL(u->servers[1].text, "127.0.0.1:9002");
    CU_ASSERT_STRING_EQUAL(u->servers[2].text, "localhost:9003");
    CU_ASSERT_EQUAL(u->keepalive, 8);
    CU_ASSERT_EQUAL(u->keepalive_timeout_ms, 4000);
    CU_ASSERT_EQUAL(u->keepalive_requests, 1000);
    CU_ASSERT_EQUAL(u->connect_timeout_ms, 500);
    CU_ASSERT_EQUAL(u->timeout_ms, 10000);
    CU_ASSERT_EQUAL(u->tunnel_timeout_ms, 900000);
    CU_ASSERT_EQUAL(u->retries, 3);
    CU_ASSERT_EQUAL(u->retry_backoff_ms, 10);
    CU_ASSERT_EQUAL(u->retry_backoff_max_ms, 200);
    CU_ASSERT_EQUAL(u->down_backoff_ms, 2000);
    CU_ASSERT_EQUAL(u->down_backoff_max_ms, 60000);
    CU_ASSERT_TRUE(u->tls);
    CU_ASSERT_FALSE(u->verify);
    CU_ASSERT_STRING_EQUAL(u->server_name, "tasks.internal");
    /* files: test_upstream_tls */
    CU_ASSERT_STRING_EQUAL(u->ca_file, "");
    CU_ASSERT_STRING_EQUAL(u->client_certificate, "");
    CU_ASSERT_FALSE(c->upstreams[1].tls);
    CU_ASSERT_TRUE(c->upstreams[1].verify);

    CU_ASSERT_EQUAL_FATAL(c->n_routes, 2);
    /* [route tasks] names upstream "tasks" defined above it; [route users]
     * names "users", defined after it: order in the file does not matter. */
    const struct conf_route *r = &c->routes[0];
    CU_ASSERT_STRING_EQUAL(r->name, "tasks");
    CU_ASSERT_STRING_EQUAL(r->prefix, "/api/v1/tasks");
    CU_ASSERT_EQUAL(r->prefix_len, strlen("/api/v1/tasks"));
    CU_ASSERT_EQUAL(r->upstream, 0);
    CU_ASSERT_TRUE(r->strip_prefix);
    CU_ASSERT_EQUAL(r->methods, BIT(HTTP_GET) | BIT(HTTP_HEAD) | BIT(HTTP_POST) |
                    BIT(HTTP_PATCH) | BIT(HTTP_DELETE));
    CU_ASSERT_TRUE(r->require_token);
    CU_ASSERT_EQUAL(r->per_token.count, 1000);
    CU_ASSERT_EQUAL(r->per_token.window_ms, 3600000);
    CU_ASSERT_EQUAL(r->per_ip.count, 10);
    CU_ASSERT_EQUAL(r->per_ip.window_ms, 60000);
    /* normalized: lower case, no trailing dot, IPv6 as inet_ntop writes it */
    CU_ASSERT_EQUAL_FATAL(r->n_hosts, 4);
    CU_ASSERT_STRING_EQUAL(r->hosts[0], "api.example.com");
    CU_ASSERT_STRING_EQUAL(r->hosts[1], "*.api.example.org");
    CU_ASSERT_STRING_EQUAL(r->hosts[2], "10.0.0.1");
    CU_ASSERT_STRING_EQUAL(r->hosts[3], "[::1]");
    CU_ASSERT_STRING_EQUAL(r->match_header, "X-Api-Version");
    CU_ASSERT_STRING_EQUAL(r->match_value, "2");
    CU_ASSERT_TRUE(r->has_profile);
    CU_ASSERT_EQUAL(r->profile, ENVELOPE_SIMPLE);
    CU_ASSERT_TRUE(r->has_expose_upstream_5xx);
    CU_ASSERT_FALSE(r->expose_upstream_5xx);
    CU_ASSERT_TRUE(r->has_max_error_body);
    CU_ASSERT_EQUAL(r->max_error_body, 8 * 1024);
    CU_ASSERT_TRUE(r->has_max_body_size);
    CU_ASSERT_EQUAL(r->max_body_size, 1024 * 1024);
    CU_ASSERT_TRUE(r->has_client_timeout);
    CU_ASSERT_EQUAL(r->client_timeout_ms, 5000);
    CU_ASSERT_TRUE(r->has_timeout);
    CU_ASSERT_EQUAL(r->timeout_ms, 3000);
    CU_ASSERT_TRUE(r->has_connect_timeout);
    CU_ASSERT_EQUAL(r->connect_timeout_ms, 250);
    CU_ASSERT_EQUAL_FATAL(r->n_code_map, 3);
    CU_ASSERT_EQUAL(r->code_map[0].status, 404);
    CU_ASSERT_STRING_EQUAL(r->code_map[0].code, "TASK_NOT_FOUND");
    CU_ASSERT_EQUAL(r->code_map[1].status, 409);
    CU_ASSERT_STRING_EQUAL(r->code_map[1].code, "CONFLICT");
    CU_ASSERT_EQUAL(r->code_map[2].status, 422);
    CU_ASSERT_STRING_EQUAL(r->code_map[2].code, "INVALID_TASK");
    CU_ASSERT_TRUE(r->cors.set);
    CU_ASSERT_EQUAL_FATAL(r->cors.n_origins, 2);
    CU_ASSERT_STRING_EQUAL(r->cors.origins[0], "https://app.example.com");
    CU_ASSERT_STRING_EQUAL(r->cors.origins[1], "https://*.example.com:8443");
    CU_ASSERT_EQUAL(r->cors.methods, BIT(HTTP_GET) | BIT(HTTP_HEAD) | BIT(HTTP_POST));
    CU_ASSERT_STRING_EQUAL(r->cors.headers, "authorization, x-api-version");
    CU_ASSERT_EQUAL(r->cors.max_age_s, 3600);
    CU_ASSERT_TRUE(r->cors.credentials);
    CU_ASSERT_EQUAL(r->cors.line, 106);
    CU_ASSERT_EQUAL(r->host_mode, CONF_HOST_UPSTREAM);
    CU_ASSERT_STRING_EQUAL(r->host_name, "");
    CU_ASSERT_TRUE(r->hide_credentials);
    CU_ASSERT_EQUAL(r->auth, CONF_AUTH_NONE);   /* auth: test_route_auth */
    /* the globals the overrides stand in for are untouched */
    CU_ASSERT_EQUAL(c->profile, ENVELOPE_PROBLEM);
    CU_ASSERT_TRUE(c->expose_upstream_5xx);
    CU_ASSERT_EQUAL(c->max_body_size, 2 * 1024 * 1024);
    CU_ASSERT_EQUAL(c->upstreams[0].timeout_ms, 10000);
    CU_ASSERT_EQUAL(c->upstreams[0].host_mode, CONF_HOST_NAME);
    CU_ASSERT_STRING_EQUAL(c->upstreams[0].host_name, "tasks.internal:8443");

    r = &c->routes[1];
    CU_ASSERT_STRING_EQUAL(r->name, "users");
    CU_ASSERT_STRING_EQUAL(r->upstream_name, "users");
    CU_ASSERT_EQUAL(r->upstream, 1);
    CU_ASSERT_STRING_EQUAL(c->upstreams[1].name, "users");
    CU_ASSERT_EQUAL(r->methods, BIT(HTTP_POST));        /* no GET: no implied HEAD */
    /* none of the overrides: what applies is the global value */
    CU_ASSERT_EQUAL(r->n_hosts, 0);
    CU_ASSERT_FALSE(r->has_profile || r->has_expose_upstream_5xx || r->has_max_error_body ||
                    r->has_max_body_size || r->has_client_timeout || r->has_timeout ||
                    r->has_connect_timeout);
    CU_ASSERT_FALSE(r->cors.set);
    CU_ASSERT_EQUAL(r->host_mode, CONF_HOST_UNSET);
    CU_ASSERT_FALSE(r->hide_credentials);
    CU_ASSERT_EQUAL(c->upstreams[1].host_mode, CONF_HOST_UPSTREAM);

    CU_ASSERT_TRUE(c->cors.set);
    CU_ASSERT_EQUAL_FATAL(c->cors.n_origins, 3);
    CU_ASSERT_STRING_EQUAL(c->cors.origins[0], "https://app.example.com");
    CU_ASSERT_STRING_EQUAL(c->cors.origins[1], "http://localhost:3000");
    CU_ASSERT_STRING_EQUAL(c->cors.origins[2], "https://*.example.net:8443");
    CU_ASSERT_EQUAL(c->cors.methods, BIT(HTTP_GET) | BIT(HTTP_HEAD) | BIT(HTTP_POST) |
                    BIT(HTTP_DELETE));
    CU_ASSERT_STRING_EQUAL(c->cors.headers, "content-type, x-api-key");
    CU_ASSERT_EQUAL(c->cors.max_age_s, 300);
    CU_ASSERT_TRUE(c->cors.credentials);
    CU_ASSERT_EQUAL(c->cors.line, 60);
    conf_free(c);
}

static void test_syntax_forms(void)
{
    char err[1024];
    struct conf *c;

    /* Comments (# and ;, whole-line and inline), blanks, CRLF, a BOM, indentation,
     * spaces inside the brackets, tabs. */
    c = load_text("\xEF\xBB\xBF# leading comment\r\n"
                  "; another\r\n"
                  "\r\n"
                  "[ server ]   # comment after a header\r\n"
                  "  workers = 2 ; inline\r\n"
                  "\tlog_level=warn#not a comment: no blank before it? it is part of...\r\n"
                  "[upstream\tu]\n"
                  "server = 127.0.0.1:9001  # the server\n"
                  "[route r]\n"
                  "prefix = /a#b\n"
                  "upstream = u\n", err, sizeof(err));
    /* "warn#not ..." keeps the # (no blank before it), so log_level is wrong. */
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_STRING_EQUAL(err, "6: log_level: \"warn#not a comment: no blank before it? it is "
                           "part of...\" is not one of debug, info, warn, error");
    conf_free(c);

    c = load_text("\xEF\xBB\xBF# leading comment\r\n"
                  "[ server ]   # comment after a header\r\n"
                  "  workers = 2 ; inline\r\n"
                  "\tlog_level=warn\t# tabbed comment\r\n"
                  "[upstream\tu]\n"
                  "server = 127.0.0.1:9001  # the server\n"
                  "[route r]\n"
                  "prefix = /a;b\n"
                  "upstream = u\n", err, sizeof(err));
    if (!c)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->workers, 2);
    CU_ASSERT_EQUAL(c->log_level, CONF_LOG_WARN);
    CU_ASSERT_STRING_EQUAL(c->upstreams[0].servers[0].text, "127.0.0.1:9001");
    CU_ASSERT_STRING_EQUAL(c->routes[0].prefix, "/a;b");
    conf_free(c);

    /* Empty [redis] still turns Redis on; an empty value is fine where allowed. */
    c = load_text("[redis]\n[envelope]\n" TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_TRUE(c->redis_enabled);
    conf_free(c);
    c = load_text("[redis]\npassword =\nkey_prefix =\n" TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(c->redis_password, "");
    CU_ASSERT_STRING_EQUAL(c->redis_key_prefix, "");
    conf_free(c);

    /* Long lines work the same (inih, once used here, had a 200-byte line buffer). */
    char text[2048], prefix[600];
    prefix[0] = '/';
    memset(prefix + 1, 'p', 500);
    prefix[501] = '\0';
    snprintf(text, sizeof(text), "[upstream u]\nserver = 127.0.0.1:9001\n"
             "[route %s]\nprefix = %s   # a long one\nupstream = u\n",
             "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr", prefix);
    c = load_text(text, err, sizeof(err));
    if (!c)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(c->routes[0].prefix, prefix);
    CU_ASSERT_EQUAL(c->routes[0].prefix_len, 501);
    CU_ASSERT_EQUAL(strlen(c->routes[0].name), 63);
    conf_free(c);

    /* A long bad line is reported on its own line number. */
    snprintf(text, sizeof(text), "[server]\n\n# x\nmax_body_size = %0250dq\n" TAIL, 7);
    c = load_text(text, err, sizeof(err));
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_EQUAL(strncmp(err, "4: max_body_size: \"0000", 23), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "...\" is not a size"));
    conf_free(c);

    /* Lists may repeat and use commas; the first use replaces the default. */
    c = load_text("[server]\nlisten = 127.0.0.1:1, 127.0.0.1:2\nlisten = [::1]:3\n"
                  "[correlation]\naccept = A\naccept = B, C\n" TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->n_listen, 3);
    CU_ASSERT_STRING_EQUAL(c->listen[2].text, "[::1]:3");
    CU_ASSERT_EQUAL(c->n_accept, 3);
    CU_ASSERT_STRING_EQUAL(c->accept[0], "A");
    CU_ASSERT_STRING_EQUAL(c->accept[2], "C");
    conf_free(c);

    /* keepalive_timeout follows client_timeout unless set. */
    c = load_text("[server]\nclient_timeout = 7s\n" TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->keepalive_timeout_ms, 7000);
    conf_free(c);

    /* Every alias of every enum. */
    static const struct { const char *v; enum conf_log_level l; } lv[] = {
        {"debug", CONF_LOG_DEBUG}, {"info", CONF_LOG_INFO}, {"warn", CONF_LOG_WARN},
        {"warning", CONF_LOG_WARN}, {"error", CONF_LOG_ERROR}, {"ERROR", CONF_LOG_ERROR},
    };
    for (size_t i = 0; i < N_OF(lv); i++) {
        snprintf(text, sizeof(text), "[server]\nlog_level = %s\n" TAIL, lv[i].v);
        c = load_text(text, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_EQUAL(c->log_level, lv[i].l);
        conf_free(c);
    }
    static const struct { const char *v; enum envelope_profile p; } pr[] = {
        {"nested", ENVELOPE_NESTED}, {"flat", ENVELOPE_FLAT}, {"simple", ENVELOPE_SIMPLE},
        {"status", ENVELOPE_STATUS}, {"i18n", ENVELOPE_I18N}, {"problem", ENVELOPE_PROBLEM},
    };
    for (size_t i = 0; i < N_OF(pr); i++) {
        snprintf(text, sizeof(text), "[envelope]\nprofile = %s\n" TAIL, pr[i].v);
        c = load_text(text, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_EQUAL(c->profile, pr[i].p);
        conf_free(c);
    }
    static const struct { const char *v; enum conf_on_error e; } oe[] = {
        {"allow", CONF_ON_ERROR_ALLOW}, {"deny", CONF_ON_ERROR_DENY},
        {"local", CONF_ON_ERROR_LOCAL},
    };
    for (size_t i = 0; i < N_OF(oe); i++) {
        snprintf(text, sizeof(text), "[redis]\non_error = %s\n" TAIL, oe[i].v);
        c = load_text(text, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_EQUAL(c->redis_on_error, oe[i].e);
        conf_free(c);
    }
    c = load_text("[server]\naccess_log = off\n" TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(c->access_log, "off");
    conf_free(c);
}

/* [limits] ipv6_prefix: any network length from 1 to 128. */
static void test_ipv6_prefix(void)
{
    static const struct { const char *v; unsigned want; } t[] = {
        {"1", 1}, {"48", 48}, {"56", 56}, {"64", 64}, {"127", 127}, {"128", 128}, {"064", 64},
    };
    char text[256], err[1024];
    for (size_t i = 0; i < N_OF(t); i++) {
        snprintf(text, sizeof(text), "[limits]\nipv6_prefix = %s\n" TAIL, t[i].v);
        struct conf *c = load_text(text, err, sizeof(err));
        if (!c)
            fprintf(stderr, "\n  %s: %s\n", t[i].v, err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_EQUAL(c->ipv6_prefix, t[i].want);
        conf_free(c);
    }
}

/* [server] max_connections: unset and 0 leave the cap to the worker (sized
 * from RLIMIT_NOFILE); any other value is the per-worker cap. */
static void test_max_connections(void)
{
    static const struct { const char *line; unsigned want; } t[] = {
        {"", 0}, {"max_connections = 0\n", 0}, {"max_connections = 1\n", 1},
        {"max_connections = 5\n", 5}, {"max_connections = 10000000\n", 10000000},
    };
    char text[256], err[1024];
    for (size_t i = 0; i < N_OF(t); i++) {
        snprintf(text, sizeof(text), "[server]\n%s" TAIL, t[i].line);
        struct conf *c = load_text(text, err, sizeof(err));
        if (!c)
            fprintf(stderr, "\n  %s: %s\n", t[i].line, err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_EQUAL(c->max_connections, t[i].want);
        conf_free(c);
    }
    struct conf *c = load_text("[server]\nmax_connections = 10000001\n" TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_STRING_EQUAL(err, "2: max_connections: \"10000001\" must be from 0 to 10000000");
    c = load_text("[server]\nmax_connections = -5\n" TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_STRING_EQUAL(err, "2: max_connections: \"-5\" is not a whole number");
}

static void test_hash_secret_file(void)
{
    char secret[64], text[512], err[1024];
    struct conf *c;

    write_temp("fedcba9876543210fedcba9876543210\r\nsecond line ignored\n", secret,
               sizeof(secret));
    snprintf(text, sizeof(text), "[limits]\nhash_secret_file = %s\n" TAIL, secret);
    c = load_text(text, err, sizeof(err));
    if (!c)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_TRUE(c->hash_secret_set);
    CU_ASSERT_STRING_EQUAL(c->hash_secret, "fedcba9876543210fedcba9876543210");
    conf_free(c);

    /* Both forms at once is ambiguous. */
    snprintf(text, sizeof(text), "[limits]\nhash_secret = 0123456789abcdef\n"
             "hash_secret_file = %s\n" TAIL, secret);
    c = load_text(text, err, sizeof(err));
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_STRING_EQUAL(err, "3: hash_secret_file: hash_secret is already set (line 2); "
                           "use one of them");
    unlink(secret);

    /* Missing, empty, too short. */
    snprintf(text, sizeof(text), "[limits]\nhash_secret_file = %s\n" TAIL, secret);
    c = load_text(text, err, sizeof(err));
    CU_ASSERT_PTR_NULL(c);
    char want[256];
    snprintf(want, sizeof(want), "2: hash_secret_file: cannot open \"%s\": No such file or "
             "directory", secret);
    CU_ASSERT_STRING_EQUAL(err, want);

    write_temp("", secret, sizeof(secret));
    snprintf(text, sizeof(text), "[limits]\nhash_secret_file = %s\n" TAIL, secret);
    c = load_text(text, err, sizeof(err));
    CU_ASSERT_PTR_NULL(c);
    snprintf(want, sizeof(want), "2: hash_secret_file: \"%s\" is empty", secret);
    CU_ASSERT_STRING_EQUAL(err, want);
    unlink(secret);

    write_temp("short\n", secret, sizeof(secret));
    snprintf(text, sizeof(text), "[limits]\nhash_secret_file = %s\n" TAIL, secret);
    c = load_text(text, err, sizeof(err));
    CU_ASSERT_PTR_NULL(c);
    snprintf(want, sizeof(want), "2: hash_secret_file: the secret in \"%s\" must be 16 to 255 "
             "characters", secret);
    CU_ASSERT_STRING_EQUAL(err, want);
    unlink(secret);
}

/*
 * [server] listen flags after each address, in any order, each at most once;
 * a comma list gives each address its own.
 */
static void test_listen_flags(void)
{
    static const struct {
        const char *lines;                  /* the [server] listen lines */
        size_t n;
        const char *text[3];
        bool tls[3], pp[3];
    } t[] = {
        {"listen = 0.0.0.0:443 tls\n", 1, {"0.0.0.0:443"}, {true}, {false}},
        {"listen = 0.0.0.0:443 proxy_protocol\n", 1, {"0.0.0.0:443"}, {false}, {true}},
        {"listen = 0.0.0.0:443 tls proxy_protocol\n", 1, {"0.0.0.0:443"}, {true}, {true}},
        {"listen = 0.0.0.0:443 proxy_protocol tls\n", 1, {"0.0.0.0:443"}, {true}, {true}},
        {"listen = 0.0.0.0:443\t tls  \tproxy_protocol   # behind the balancer\n", 1,
         {"0.0.0.0:443"}, {true}, {true}},
        {"listen = 0.0.0.0:443 tls, 127.0.0.1:8080\n", 2, {"0.0.0.0:443", "127.0.0.1:8080"},
         {true, false}, {false, false}},
        {"listen = 127.0.0.1:8080,0.0.0.0:443 tls proxy_protocol , [::]:443 tls\n", 3,
         {"127.0.0.1:8080", "0.0.0.0:443", "[::]:443"}, {false, true, true},
         {false, true, false}},
        {"listen = 127.0.0.1:8080\nlisten = [::1]:8443 tls\nlisten = 10.0.0.1:81 proxy_protocol\n",
         3, {"127.0.0.1:8080", "[::1]:8443", "10.0.0.1:81"}, {false, true, false},
         {false, false, true}},
        {"listen = localhost:8443 tls\n", 1, {"localhost:8443"}, {true}, {false}},
    };
    char text[1024], err[1024];

    for (size_t i = 0; i < N_OF(t); i++) {
        snprintf(text, sizeof(text), "[server]\n%s" PAIR TP TAIL, t[i].lines);
        struct conf *c = load_text(text, err, sizeof(err));
        if (!c)
            fprintf(stderr, "\n  case %zu: %s\n", i, err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_EQUAL_FATAL(c->n_listen, t[i].n);
        for (size_t k = 0; k < t[i].n; k++) {
            CU_ASSERT_STRING_EQUAL(c->listen[k].text, t[i].text[k]);
            CU_ASSERT_EQUAL(c->listen[k].tls, t[i].tls[k]);
            CU_ASSERT_EQUAL(c->listen[k].proxy_protocol, t[i].pp[k]);
        }
        conf_free(c);
    }

    /* proxy_protocol alone needs no certificate. */
    struct conf *c = load_text("[server]\nlisten = 127.0.0.1:81 proxy_protocol\n" TP TAIL, err,
                               sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_TRUE(c->listen[0].proxy_protocol);
    CU_ASSERT_EQUAL(c->n_certs, 0);
    conf_free(c);
    /* [tls] before or after [server], the order does not matter. */
    c = load_text(PAIR "[server]\nlisten = 127.0.0.1:443 tls\n" TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_TRUE(c->listen[0].tls);
    conf_free(c);
}

/* [tls] certificate/key pairs: read in order, with their lines; at most CONF_MAX_CERTS. */
static void test_tls_pairs(void)
{
    char err[1024];
    struct conf *c = load_text("[tls]\n"
                               "certificate = /etc/tls/a.pem\n"
                               "key = /etc/tls/a.key\n"
                               "# the second, for www\n"
                               "certificate = relative/b.pem\n"
                               "\n"
                               "key = /etc/tls/with blank.key\n"
                               "ciphers = HIGH:!aNULL\n" TAIL, err, sizeof(err));
    if (!c)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL_FATAL(c->n_certs, 2);
    CU_ASSERT_STRING_EQUAL(c->certs[0].certificate, "/etc/tls/a.pem");
    CU_ASSERT_STRING_EQUAL(c->certs[0].key, "/etc/tls/a.key");
    CU_ASSERT_EQUAL(c->certs[0].line, 2);
    CU_ASSERT_EQUAL(c->certs[0].key_line, 3);
    /* a relative path is kept as written (relative to the working directory) */
    CU_ASSERT_STRING_EQUAL(c->certs[1].certificate, "relative/b.pem");
    CU_ASSERT_STRING_EQUAL(c->certs[1].key, "/etc/tls/with blank.key");
    CU_ASSERT_EQUAL(c->certs[1].line, 5);
    CU_ASSERT_EQUAL(c->certs[1].key_line, 7);
    CU_ASSERT_STRING_EQUAL(c->tls_ciphers, "HIGH:!aNULL");
    CU_ASSERT_EQUAL(c->tls_ciphers_line, 8);
    conf_free(c);

    /* An empty [tls] is fine, and so are certificates without a TLS listener. */
    c = load_text("[tls]\n" TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->n_certs, 0);
    conf_free(c);

    /* CONF_MAX_CERTS pairs load; one more is refused on its line. */
    char text[8192], want[256];
    size_t len = (size_t)snprintf(text, sizeof(text), "[tls]\n");
    for (int i = 0; i < CONF_MAX_CERTS; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len,
                                "certificate = /c%d.pem\nkey = /k%d.pem\n", i, i);
    snprintf(text + len, sizeof(text) - len, "%s", TAIL);
    c = load_text(text, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->n_certs, CONF_MAX_CERTS);
    CU_ASSERT_STRING_EQUAL(c->certs[CONF_MAX_CERTS - 1].key, "/k15.pem");
    CU_ASSERT_EQUAL(c->certs[CONF_MAX_CERTS - 1].key_line, 2 * CONF_MAX_CERTS + 1);
    conf_free(c);
    snprintf(text + len, sizeof(text) - len, "certificate = /c.pem\nkey = /k.pem\n%s", TAIL);
    snprintf(want, sizeof(want), "%d: certificate: too many (at most %d)",
             2 * CONF_MAX_CERTS + 2, CONF_MAX_CERTS);
    expect_error(text, want);

    /* Paths up to CONF_FILE_MAX - 1 bytes; a control character is refused. */
    char path[CONF_FILE_MAX + 1];
    memset(path, 'p', sizeof(path));
    path[0] = '/';
    path[CONF_FILE_MAX - 1] = '\0';
    snprintf(text, sizeof(text), "[tls]\ncertificate = /c.pem\nkey = %s\n" TAIL, path);
    c = load_text(text, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(strlen(c->certs[0].key), CONF_FILE_MAX - 1);
    conf_free(c);
    path[CONF_FILE_MAX - 1] = 'p';
    path[CONF_FILE_MAX] = '\0';
    snprintf(text, sizeof(text), "[tls]\ncertificate = %s\nkey = /k.pem\n" TAIL, path);
    snprintf(want, sizeof(want), "2: certificate: longer than %d characters", CONF_FILE_MAX - 1);
    expect_error(text, want);
    snprintf(text, sizeof(text), TAIL "[upstream v]\nserver = 127.0.0.1:1\nca_file = %s\n",
             path);
    snprintf(want, sizeof(want), "8: ca_file: longer than %d characters", CONF_FILE_MAX - 1);
    expect_error(text, want);
    expect_error("[tls]\ncertificate = /a\x01.pem\nkey = /k.pem\n" TAIL,
                 "2: certificate: \"/a?.pem\" is not a usable path");

    /* ciphers: up to CONF_CIPHERS_MAX - 1 characters, not checked here. */
    char ciphers[CONF_CIPHERS_MAX + 1];
    memset(ciphers, 'A', sizeof(ciphers));
    ciphers[CONF_CIPHERS_MAX - 1] = '\0';
    snprintf(text, sizeof(text), "[tls]\nciphers = %s\n" TAIL, ciphers);
    c = load_text(text, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(strlen(c->tls_ciphers), CONF_CIPHERS_MAX - 1);
    CU_ASSERT_EQUAL(c->tls_ciphers_line, 2);
    conf_free(c);
    ciphers[CONF_CIPHERS_MAX - 1] = 'A';
    ciphers[CONF_CIPHERS_MAX] = '\0';
    snprintf(text, sizeof(text), "[tls]\nciphers = %s\n" TAIL, ciphers);
    snprintf(want, sizeof(want), "2: ciphers: longer than %d characters", CONF_CIPHERS_MAX - 1);
    expect_error(text, want);
}

/* [tls] protocols: blanks or commas between versions, any case, no gap. */
static void test_tls_protocols(void)
{
    static const struct { const char *v; unsigned bits; } t[] = {
        {"TLSv1.2 TLSv1.3", CONF_TLS_V1_2 | CONF_TLS_V1_3},
        {"TLSv1.3", CONF_TLS_V1_3},
        {"tlsv1.3", CONF_TLS_V1_3},
        {"TLSV1.2", CONF_TLS_V1_2},
        {"TLSv1.3 TLSv1.2", CONF_TLS_V1_2 | CONF_TLS_V1_3},
        {"TLSv1.2,TLSv1.3", CONF_TLS_V1_2 | CONF_TLS_V1_3},
        {"TLSv1.2 , TLSv1.3,", CONF_TLS_V1_2 | CONF_TLS_V1_3},
        {"TLSv1.2, TLSv1.2", CONF_TLS_V1_2},
        {"TLSv1", CONF_TLS_V1_0},
        {"TLSv1.0, TLSv1.1", CONF_TLS_V1_0 | CONF_TLS_V1_1},
        {"TLSv1 TLSv1.1 TLSv1.2 TLSv1.3",
         CONF_TLS_V1_0 | CONF_TLS_V1_1 | CONF_TLS_V1_2 | CONF_TLS_V1_3},
        {"TLSv1.1\tTLSv1.2", CONF_TLS_V1_1 | CONF_TLS_V1_2},
    };
    char text[512], err[1024];

    for (size_t i = 0; i < N_OF(t); i++) {
        snprintf(text, sizeof(text), "[tls]\nprotocols = %s\n" TAIL, t[i].v);
        struct conf *c = load_text(text, err, sizeof(err));
        if (!c)
            fprintf(stderr, "\n  protocols %s: %s\n", t[i].v, err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        if (c->tls_protocols != t[i].bits)
            fprintf(stderr, "\n  protocols %s: %#x\n", t[i].v, c->tls_protocols);
        CU_ASSERT_EQUAL(c->tls_protocols, t[i].bits);
        conf_free(c);
    }
}

/* [upstream] server_name: a DNS name or an IP address, at most 255 characters. */
static void test_server_name(void)
{
    static const struct { const char *v; bool ok; } t[] = {
        {"api.internal", true}, {"tasks", true}, {"a-b.c_d.example.com", true},
        {"10.0.0.7", true}, {"::1", true}, {"2001:db8::7", true}, {"xn--bcher-kva.example", true},
        {"API.Example.COM", true}, {"1a.example", true},
        {"api example", false}, {"a..b", false}, {".a", false}, {"a.", false}, {"[::1]", false},
        {"127.1", false}, {"1.2.3.4.5", false}, {"a/b", false}, {"a:443", false},
        {"*.example.com", false}, {"b\xc3\xbc" "cher.example", false},
    };
    char text[1024], err[1024], want[512];

    for (size_t i = 0; i < N_OF(t); i++) {
        snprintf(text, sizeof(text), "[upstream u]\nserver = 127.0.0.1:1\ntls = yes\n"
                 "server_name = %s\n[route r]\nprefix = /\nupstream = u\n", t[i].v);
        struct conf *c = load_text(text, err, sizeof(err));
        if (!c != !t[i].ok)
            fprintf(stderr, "\n  server_name %s: %s\n", t[i].v, c ? "accepted" : err);
        CU_ASSERT_EQUAL(c != NULL, t[i].ok);
        if (c) {
            CU_ASSERT_STRING_EQUAL(c->upstreams[0].server_name, t[i].v);
        } else {
            snprintf(want, sizeof(want), "4: server_name: \"%s\" is not a host name or an IP "
                     "address", t[i].v);
            if (strcmp(err, want) != 0)
                fprintf(stderr, "\n  want: %s\n  got:  %s\n", want, err);
            CU_ASSERT_STRING_EQUAL(err, want);
        }
        conf_free(c);
    }

    /* Labels of 63, names of 255; one more is refused. */
    char name[300], label[70];
    memset(label, 'l', 63);
    label[63] = '\0';
    snprintf(name, sizeof(name), "%s.%s.%s.%.63s", label, label, label, label);
    CU_ASSERT_EQUAL(strlen(name), 255);
    snprintf(text, sizeof(text), TAIL "[upstream v]\nserver = 127.0.0.1:1\nserver_name = %s\n",
             name);
    struct conf *c = load_text(text, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(c->upstreams[1].server_name, name);
    conf_free(c);
    snprintf(text, sizeof(text), TAIL "[upstream v]\nserver = 127.0.0.1:1\nserver_name = %s.x\n",
             name);
    expect_error(text, "8: server_name: longer than 255 characters");
    snprintf(text, sizeof(text), TAIL "[upstream v]\nserver = 127.0.0.1:1\nserver_name = %sl.x\n",
             label);
    c = load_text(text, err, sizeof(err));   /* a label of 64 */
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_EQUAL(strncmp(err, "8: server_name: \"lll", 20), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is not a host name or an IP address"));
    conf_free(c);
}

/* [upstream] TLS: each upstream its own; client certificate and key together. */
static void test_upstream_tls(void)
{
    char err[1024];
    struct conf *c = load_text(
        "[upstream plain]\nserver = 127.0.0.1:9001\n"
        "[upstream secure]\nserver = 10.0.0.7:443, localhost:8443\ntls = yes\n"
        "ca_file = /etc/envelopd/ca.pem\nserver_name = api.internal\n"
        "client_certificate = /etc/envelopd/gw.pem\nclient_key = /etc/envelopd/gw.key\n"
        "[upstream lab]\nserver = 127.0.0.1:9443\ntls = on\nverify = off\n"
        "client_key = k.pem\nclient_certificate = c.pem\n"
        "[route r]\nprefix = /\nupstream = plain\n", err, sizeof(err));
    if (!c)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL_FATAL(c->n_upstreams, 3);
    const struct conf_upstream *u = &c->upstreams[0];
    CU_ASSERT_FALSE(u->tls);
    CU_ASSERT_TRUE(u->verify);
    u = &c->upstreams[1];
    CU_ASSERT_TRUE(u->tls);
    CU_ASSERT_TRUE(u->verify);
    CU_ASSERT_STRING_EQUAL(u->ca_file, "/etc/envelopd/ca.pem");
    CU_ASSERT_STRING_EQUAL(u->server_name, "api.internal");
    CU_ASSERT_STRING_EQUAL(u->client_certificate, "/etc/envelopd/gw.pem");
    CU_ASSERT_STRING_EQUAL(u->client_key, "/etc/envelopd/gw.key");
    CU_ASSERT_FALSE(u->servers[0].tls);
    u = &c->upstreams[2];
    CU_ASSERT_TRUE(u->tls);
    CU_ASSERT_FALSE(u->verify);
    CU_ASSERT_STRING_EQUAL(u->ca_file, "");
    CU_ASSERT_STRING_EQUAL(u->server_name, "");
    CU_ASSERT_STRING_EQUAL(u->client_certificate, "c.pem");
    CU_ASSERT_STRING_EQUAL(u->client_key, "k.pem");
    conf_free(c);
}

/* ---------------------------------------------------------------- routes: hosts, overrides, CORS */

/* An upstream, then a route whose lines 6 on are LINES. */
#define ROUTE_HEAD "[upstream u]\nserver = 127.0.0.1:9001\n[route r]\nprefix = /\nupstream = u\n"

/* Load ROUTE_HEAD + LINES; the route, or NULL with ERR. */
static struct conf *load_route(const char *lines, char *err, size_t errlen)
{
    char text[8192];
    snprintf(text, sizeof(text), "%s%s", ROUTE_HEAD, lines);
    return load_text(text, err, errlen);
}

/* The entries of a route's hosts, joined with ", ". */
static void join_hosts(const struct conf_route *r, char *out, size_t outlen)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->n_hosts; i++)
        n += (size_t)snprintf(out + n, outlen - n, "%s%s", i ? ", " : "", r->hosts[i]);
}

/*
 * [route] hosts: names, "*." wildcards, IPv4, [IPv6]; lower case, one trailing
 * dot dropped; no port, no malformed wildcard, nothing listed twice.
 */
static void test_route_hosts(void)
{
    static const struct { const char *v, *want; } ok[] = {
        {"api.example.com", "api.example.com"},
        {"API.Example.COM.", "api.example.com"},
        {"*.example.com", "*.example.com"},
        {"*.Example.com.", "*.example.com"},
        {"*.com", "*.com"},
        {"xn--bcher-kva.example", "xn--bcher-kva.example"},
        {"a-b.c1, localhost", "a-b.c1, localhost"},
        {"127.0.0.1", "127.0.0.1"},
        {"[::1]", "[::1]"},
        {"[0:0::1]", "[::1]"},
        {"[2001:DB8::7]", "[2001:db8::7]"},
        {"a.example, *.a.example", "a.example, *.a.example"},
        {"1a.example", "1a.example"},
    };
    static const struct { const char *v, *want; } bad[] = {
        {"api.example.com:8080", "6: hosts: \"api.example.com:8080\": no port here (a host "
         "matches whatever the port)"},
        {"[::1]:443", "6: hosts: \"[::1]:443\": no port here (a host matches whatever the port)"},
        {"::1", "6: hosts: \"::1\": an IPv6 address needs brackets ([::1])"},
        {"[::1", "6: hosts: \"[::1\": no ] after the IPv6 address"},
        {"[zz::1]", "6: hosts: \"[zz::1]\": not an IPv6 address"},
        {"[]", "6: hosts: \"[]\": not an IPv6 address"},
        {"[::1]x", "6: hosts: \"[::1]x\": unexpected text after ]"},
        {"a.*.com", "6: hosts: \"a.*.com\": a wildcard is \"*.\" then a name (*.example.com), * "
         "standing for the first labels"},
        {"*", "6: hosts: \"*\": a wildcard is \"*.\" then a name (*.example.com), * standing for "
         "the first labels"},
        {"**.x", "6: hosts: \"**.x\": a wildcard is \"*.\" then a name (*.example.com), * "
         "standing for the first labels"},
        {"*example.com", "6: hosts: \"*example.com\": a wildcard is \"*.\" then a name "
         "(*.example.com), * standing for the first labels"},
        {"*.", "6: hosts: \"*.\": a wildcard is \"*.\" then a name (*.example.com), * standing "
         "for the first labels"},
        {"*.*.example.com", "6: hosts: \"*.*.example.com\": a wildcard is \"*.\" then a name "
         "(*.example.com), * standing for the first labels"},
        {"*.1.2.3", "6: hosts: \"*.1.2.3\": a wildcard over an IP address never matches"},
        {"127.1", "6: hosts: \"127.1\": not an IPv4 address (four numbers of 0-255)"},
        {"1.2.3.4.5", "6: hosts: \"1.2.3.4.5\": not an IPv4 address (four numbers of 0-255)"},
        {"256.1.1.1", "6: hosts: \"256.1.1.1\": not an IPv4 address (four numbers of 0-255)"},
        {"a..b", "6: hosts: \"a..b\": an empty label (two dots, or a dot first or last)"},
        {".a", "6: hosts: \".a\": an empty label (two dots, or a dot first or last)"},
        {"a..", "6: hosts: \"a..\": an empty label (two dots, or a dot first or last)"},
        {".", "6: hosts: \".\": an empty label (two dots, or a dot first or last)"},
        {"a_b.example", "6: hosts: \"a_b.example\": '_' is not a letter, digit or -"},
        {"a/b", "6: hosts: \"a/b\": '/' is not a letter, digit or -"},
        {"-a.example", "6: hosts: \"-a.example\": a label starts or ends with -"},
        {"a-.example", "6: hosts: \"a-.example\": a label starts or ends with -"},
        {"b\xc3\xbc" "cher.example", "6: hosts: \"b\xc3\xbc" "cher.example\": an "
         "internationalized name is written in punycode (xn--...)"},
        {"a b", "6: hosts: \"a b\": a host has no blanks or control characters"},
        {"api.example.com, API.example.com.", "6: hosts: \"API.example.com.\" is listed twice "
         "(first on line 6)"},
        {"*.x.com, *.X.com", "6: hosts: \"*.X.com\" is listed twice (first on line 6)"},
        {"a,,b", "6: hosts: empty item in the list \"a,,b\""},
        {"a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q", "6: hosts: too many (at most 16)"},
    };
    char err[1024], got[2048], line[256];

    for (size_t i = 0; i < N_OF(ok); i++) {
        snprintf(line, sizeof(line), "hosts = %s\n", ok[i].v);
        struct conf *c = load_route(line, err, sizeof(err));
        if (!c)
            fprintf(stderr, "\n  hosts %s: %s\n", ok[i].v, err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        join_hosts(&c->routes[0], got, sizeof(got));
        if (strcmp(got, ok[i].want) != 0)
            fprintf(stderr, "\n  hosts %s: got %s\n", ok[i].v, got);
        CU_ASSERT_STRING_EQUAL(got, ok[i].want);
        conf_free(c);
    }
    for (size_t i = 0; i < N_OF(bad); i++) {
        snprintf(line, sizeof(line), "%shosts = %s\n", ROUTE_HEAD, bad[i].v);
        expect_error(line, bad[i].want);
    }

    /* May repeat: the lines add up; a host of a later line twice names the first. */
    struct conf *c = load_route("hosts = a.example\nhosts = b.example, *.c.example\n", err,
                                sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    join_hosts(&c->routes[0], got, sizeof(got));
    CU_ASSERT_STRING_EQUAL(got, "a.example, b.example, *.c.example");
    conf_free(c);
    expect_error(ROUTE_HEAD "hosts = a.example\n# x\nhosts = b.example, A.example\n",
                 "8: hosts: \"A.example\" is listed twice (first on line 6)");
    expect_error(ROUTE_HEAD "hosts = a, b, c, d, e, f, g, h\nhosts = i, j, k, l, m, n, o, p\n"
                 "hosts = q\n", "8: hosts: too many (at most 16)");

    /* Labels of 63 and names of 253 (with "*." 255); one more is refused. */
    char label[64], name[300], text[1024];
    memset(label, 'l', 63);
    label[63] = '\0';
    snprintf(name, sizeof(name), "%s.%s.%s.%.61s", label, label, label, label);
    CU_ASSERT_EQUAL(strlen(name), 253);
    snprintf(text, sizeof(text), "hosts = %s, *.%s\n", name, name);
    c = load_route(text, err, sizeof(err));
    if (!c)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(strlen(c->routes[0].hosts[1]), 255);
    conf_free(c);
    snprintf(text, sizeof(text), "hosts = %s.%s\n", name, "x");
    c = load_route(text, err, sizeof(err));
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\": longer than 253 characters"));
    snprintf(text, sizeof(text), "hosts = %sl.example\n", label);
    c = load_route(text, err, sizeof(err));
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\": a label is longer than 63 characters"));
}

/* match_header = NAME: VALUE */
static void test_match_header(void)
{
    static const struct { const char *v, *name, *value; } ok[] = {
        {"X-Api-Version: 2", "X-Api-Version", "2"},
        {"X-Api-Version:2", "X-Api-Version", "2"},
        {"X-Tenant :  acme corp", "X-Tenant", "acme corp"},
        {"X-A: v=1:2", "X-A", "v=1:2"},
        {"Accept: application/vnd.api+json; version=2", "Accept",
         "application/vnd.api+json; version=2"},
    };
    static const struct { const char *v, *want; } bad[] = {
        {"X-Api-Version 2", "6: match_header: \"X-Api-Version 2\" is not NAME: VALUE (e.g. "
         "X-Api-Version: 2)"},
        {"X Api: 2", "6: match_header: \"X Api\" is not a header name"},
        {": 2", "6: match_header: \"\" is not a header name"},
        {"X-A:", "6: match_header: \"X-A:\" has no value (NAME: VALUE)"},
        {"X-A:   ", "6: match_header: \"X-A:\" has no value (NAME: VALUE)"},
        {"X-A: a\x01" "b", "6: match_header: \"X-A: a?b\" may not contain control characters"},
    };
    char err[1024], line[512];

    for (size_t i = 0; i < N_OF(ok); i++) {
        snprintf(line, sizeof(line), "match_header = %s\n", ok[i].v);
        struct conf *c = load_route(line, err, sizeof(err));
        if (!c)
            fprintf(stderr, "\n  match_header %s: %s\n", ok[i].v, err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_STRING_EQUAL(c->routes[0].match_header, ok[i].name);
        CU_ASSERT_STRING_EQUAL(c->routes[0].match_value, ok[i].value);
        conf_free(c);
    }
    for (size_t i = 0; i < N_OF(bad); i++) {
        snprintf(line, sizeof(line), "%smatch_header = %s\n", ROUTE_HEAD, bad[i].v);
        expect_error(line, bad[i].want);
    }
    expect_error(ROUTE_HEAD "match_header = A: 1\nmatch_header = B: 2\n",
                 "7: match_header is set twice in [route r] (first at line 6)");

    /* a value of 255 characters; 256 is refused */
    char value[300];
    memset(value, 'v', 255);
    value[255] = '\0';
    snprintf(line, sizeof(line), "match_header = X-A: %s\n", value);
    struct conf *c = load_route(line, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(strlen(c->routes[0].match_value), 255);
    conf_free(c);
    snprintf(line, sizeof(line), "%smatch_header = X-A: %sv\n", ROUTE_HEAD, value);
    expect_error(line, "6: match_header: the value is longer than 255 characters");
}

/* Per-route overrides: each sets its has_* flag alone, with the global bounds. */
static void test_route_overrides(void)
{
    static const struct { const char *line; } one[] = {
        {"profile = flat\n"}, {"expose_upstream_5xx = yes\n"}, {"max_error_body = 1m\n"},
        {"max_body_size = 100m\n"}, {"client_timeout = 2m\n"}, {"timeout = 90s\n"},
        {"connect_timeout = 100ms\n"},
    };
    static const struct { const char *v, *want; } bad[] = {
        {"profile = json", "6: profile: \"json\" is not one of nested, flat, simple, status, "
         "i18n, problem"},
        {"expose_upstream_5xx = maybe", "6: expose_upstream_5xx: \"maybe\" is not yes or no"},
        {"max_error_body = 65m", "6: max_error_body: \"65m\" must be from 1 to 64m"},
        {"max_error_body = 0", "6: max_error_body: \"0\" must be from 1 to 64m"},
        {"max_body_size = 0", "6: max_body_size: \"0\" must be at least 1"},
        {"max_body_size = 1q", "6: max_body_size: \"1q\" is not a size (use e.g. 16k, 1m)"},
        {"client_timeout = 30", "6: client_timeout: \"30\" needs a unit (e.g. 30s or 30ms)"},
        {"client_timeout = 25h", "6: client_timeout: \"25h\" must be from 1ms to 24h"},
        {"timeout = 0s", "6: timeout: \"0s\" must be from 1ms to 24h"},
        {"connect_timeout = 2", "6: connect_timeout: \"2\" needs a unit (e.g. 2s or 2ms)"},
        {"connect_timeout = 1d", "6: connect_timeout: \"1d\" is not a duration (use e.g. 500ms, "
         "30s, 5m, 1h)"},
        {"timeout =", "6: timeout: empty value"},
        {"timeout = 1s\ntimeout = 2s", "7: timeout is set twice in [route r] (first at line 6)"},
    };
    char err[1024], line[256];

    for (size_t i = 0; i < N_OF(one); i++) {
        struct conf *c = load_route(one[i].line, err, sizeof(err));
        if (!c)
            fprintf(stderr, "\n  %s: %s\n", one[i].line, err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        const struct conf_route *r = &c->routes[0];
        bool has[] = {r->has_profile, r->has_expose_upstream_5xx, r->has_max_error_body,
                      r->has_max_body_size, r->has_client_timeout, r->has_timeout,
                      r->has_connect_timeout};
        CU_ASSERT_EQUAL_FATAL(N_OF(has), N_OF(one));
        for (size_t k = 0; k < N_OF(has); k++)
            CU_ASSERT_EQUAL(has[k], k == i);
        switch (i) {
        case 0: CU_ASSERT_EQUAL(r->profile, ENVELOPE_FLAT); break;
        case 1: CU_ASSERT_TRUE(r->expose_upstream_5xx); break;
        case 2: CU_ASSERT_EQUAL(r->max_error_body, 1024 * 1024); break;
        case 3: CU_ASSERT_EQUAL(r->max_body_size, 100 * 1024 * 1024); break;
        case 4: CU_ASSERT_EQUAL(r->client_timeout_ms, 120000); break;
        case 5: CU_ASSERT_EQUAL(r->timeout_ms, 90000); break;
        case 6: CU_ASSERT_EQUAL(r->connect_timeout_ms, 100); break;
        }
        /* the global values stay the defaults */
        CU_ASSERT_EQUAL(c->profile, ENVELOPE_NESTED);
        CU_ASSERT_EQUAL(c->max_body_size, 10 * 1024 * 1024);
        CU_ASSERT_EQUAL(c->upstreams[0].timeout_ms, 30000);
        conf_free(c);
    }
    /* A value equal to the global one is still an override (it stays when [envelope] changes). */
    struct conf *c = load_route("profile = nested\nexpose_upstream_5xx = no\n", err,
                                sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_TRUE(c->routes[0].has_profile);
    CU_ASSERT_EQUAL(c->routes[0].profile, ENVELOPE_NESTED);
    CU_ASSERT_TRUE(c->routes[0].has_expose_upstream_5xx);
    CU_ASSERT_FALSE(c->routes[0].has_max_error_body);
    conf_free(c);
    for (size_t i = 0; i < N_OF(bad); i++) {
        snprintf(line, sizeof(line), "%s%s\n", ROUTE_HEAD, bad[i].v);
        expect_error(line, bad[i].want);
    }
}

/* code_map = STATUS:CODE, ... */
static void test_code_map(void)
{
    static const struct { const char *v, *want; } bad[] = {
        {"404", "6: code_map: \"404\" is not STATUS:CODE (e.g. 404:TASK_NOT_FOUND)"},
        {"TASK:404", "6: code_map: \"TASK:404\" is not STATUS:CODE (e.g. 404:TASK_NOT_FOUND)"},
        {"404-X", "6: code_map: \"404-X\" is not STATUS:CODE (e.g. 404:TASK_NOT_FOUND)"},
        {"99999999999999999999999:X", "6: code_map: \"99999999999999999999999:X\" is not "
         "STATUS:CODE (e.g. 404:TASK_NOT_FOUND)"},
        {"302:FOUND", "6: code_map: \"302:FOUND\": the status must be from 400 to 599"},
        {"600:X", "6: code_map: \"600:X\": the status must be from 400 to 599"},
        {"399:X", "6: code_map: \"399:X\": the status must be from 400 to 599"},
        {"404:task_not_found", "6: code_map: \"404:task_not_found\": the code must be upper "
         "snake case (A-Z, 0-9 and _, a letter first, at most 63 characters)"},
        {"404:1ABC", "6: code_map: \"404:1ABC\": the code must be upper snake case (A-Z, 0-9 "
         "and _, a letter first, at most 63 characters)"},
        {"404:_A", "6: code_map: \"404:_A\": the code must be upper snake case (A-Z, 0-9 and _, "
         "a letter first, at most 63 characters)"},
        {"404:", "6: code_map: \"404:\": the code must be upper snake case (A-Z, 0-9 and _, a "
         "letter first, at most 63 characters)"},
        {"404:A-B", "6: code_map: \"404:A-B\": the code must be upper snake case (A-Z, 0-9 and "
         "_, a letter first, at most 63 characters)"},
        {"404:A B", "6: code_map: \"404:A B\": the code must be upper snake case (A-Z, 0-9 and "
         "_, a letter first, at most 63 characters)"},
        {"404:A, 404:B", "6: code_map: status 404 is mapped twice"},
        {"404:A,,409:B", "6: code_map: empty item in the list \"404:A,,409:B\""},
        {"400:A,401:A,402:A,403:A,404:A,405:A,406:A,407:A,408:A,409:A,410:A,411:A,412:A,413:A,"
         "414:A,415:A,416:A", "6: code_map: too many (at most 16)"},
    };
    char err[1024], line[512];

    struct conf *c = load_route("code_map = 404:TASK_NOT_FOUND, 409 : CONFLICT\n"
                                "code_map = 599:X, 400:BAD_INPUT_2\n", err, sizeof(err));
    if (!c)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    const struct conf_route *r = &c->routes[0];
    CU_ASSERT_EQUAL_FATAL(r->n_code_map, 4);
    CU_ASSERT_EQUAL(r->code_map[0].status, 404);
    CU_ASSERT_STRING_EQUAL(r->code_map[0].code, "TASK_NOT_FOUND");
    CU_ASSERT_EQUAL(r->code_map[1].status, 409);
    CU_ASSERT_STRING_EQUAL(r->code_map[1].code, "CONFLICT");
    CU_ASSERT_EQUAL(r->code_map[2].status, 599);
    CU_ASSERT_STRING_EQUAL(r->code_map[2].code, "X");
    CU_ASSERT_EQUAL(r->code_map[3].status, 400);
    CU_ASSERT_STRING_EQUAL(r->code_map[3].code, "BAD_INPUT_2");
    conf_free(c);

    for (size_t i = 0; i < N_OF(bad); i++) {
        snprintf(line, sizeof(line), "%scode_map = %s\n", ROUTE_HEAD, bad[i].v);
        expect_error(line, bad[i].want);
    }
    expect_error(ROUTE_HEAD "code_map = 404:A\ncode_map = 409:B, 404:C\n",
                 "7: code_map: status 404 is mapped twice");

    /* codes of 63 characters; 64 is refused */
    char code[80];
    memset(code, 'C', 63);
    code[63] = '\0';
    snprintf(line, sizeof(line), "code_map = 418:%s\n", code);
    c = load_route(line, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(c->routes[0].code_map[0].code, code);
    conf_free(c);
    snprintf(line, sizeof(line), "code_map = 418:%sC\n", code);
    c = load_route(line, err, sizeof(err));
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "the code must be upper snake case"));
}

/* CORS origins, as [route] cors_origins (and [cors] origins: the same parser). */
static void test_cors_origins(void)
{
    static const struct { const char *v, *want; } ok[] = {
        {"https://app.example.com", "https://app.example.com"},
        {"HTTPS://App.Example.com", "https://app.example.com"},
        {"https://app.example.com:443", "https://app.example.com"},
        {"http://localhost:80", "http://localhost"},
        {"http://localhost:443", "http://localhost:443"},
        {"https://localhost:80", "https://localhost:80"},
        {"http://localhost:3000", "http://localhost:3000"},
        {"https://*.example.com", "https://*.example.com"},
        {"https://*.Example.com:8443", "https://*.example.com:8443"},
        {"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
        {"http://[::1]:8080", "http://[::1]:8080"},
        {"http://[0::1]", "http://[::1]"},
        {"*", "*"},
        {"https://a.example, http://a.example", "https://a.example, http://a.example"},
        {"null, https://a.example", "null, https://a.example"},
        {"NULL", "null"},
        {"*, null", "*, null"},
        {"null, *", "null, *"},
    };
    static const struct { const char *v, *want; } bad[] = {
        {"app.example.com", "6: cors_origins: \"app.example.com\" is not an origin: http:// or "
         "https://, then the host (https://app.example.com)"},
        {"ftp://x.example", "6: cors_origins: \"ftp://x.example\" is not an origin: http:// or "
         "https://, then the host (https://app.example.com)"},
        {"httpss://x.example", "6: cors_origins: \"httpss://x.example\" is not an origin: "
         "http:// or https://, then the host (https://app.example.com)"},
        {"https://app.example.com/", "6: cors_origins: \"https://app.example.com/\" is not an "
         "origin: an origin has no path, not even /"},
        {"https://app.example.com/api", "6: cors_origins: \"https://app.example.com/api\" is "
         "not an origin: an origin has no path, not even /"},
        {"https://a.example?x", "6: cors_origins: \"https://a.example?x\" is not an origin: an "
         "origin has no path, not even /"},
        {"https://", "6: cors_origins: \"https://\" is not an origin: no host"},
        {"https://a.*.com", "6: cors_origins: \"https://a.*.com\" is not an origin: a wildcard "
         "is \"*.\" then a name (*.example.com), * standing for the first labels"},
        {"https://*", "6: cors_origins: \"https://*\" is not an origin: a wildcard is \"*.\" "
         "then a name (*.example.com), * standing for the first labels"},
        {"https://a.example:0", "6: cors_origins: \"https://a.example:0\" is not an origin: the "
         "port must be a number from 1 to 65535"},
        {"https://a.example.", "6: cors_origins: \"https://a.example.\" is not an origin: an "
         "empty label (two dots, or a dot first or last)"},
        {"https://a_b.example", "6: cors_origins: \"https://a_b.example\" is not an origin: '_' "
         "is not a letter, digit or -"},
        {"*, https://a.example", "6: cors_origins: \"*\" (any origin) goes alone, without other "
         "origins (but null)"},
        {"https://a.example, *", "6: cors_origins: \"*\" (any origin) goes alone, without other "
         "origins (but null)"},
        {"https://a.example, HTTPS://A.example:443", "6: cors_origins: "
         "\"HTTPS://A.example:443\" is listed twice"},
        {"null, Null", "6: cors_origins: \"Null\" is listed twice"},
        {"*, null, *", "6: cors_origins: \"*\" (any origin) goes alone, without other origins "
         "(but null)"},
        {"null, *, https://a.example", "6: cors_origins: \"*\" (any origin) goes alone, without "
         "other origins (but null)"},
        {"nul", "6: cors_origins: \"nul\" is not an origin: http:// or https://, then the host "
         "(https://app.example.com)"},
        {"http://a, http://b, http://c, http://d, http://e, http://f, http://g, http://h, "
         "http://i, http://j, http://k, http://l, http://m, http://n, http://o, http://p, "
         "http://q", "6: cors_origins: too many (at most 16)"},
    };
    char err[1024], line[512], got[2048];

    for (size_t i = 0; i < N_OF(ok); i++) {
        snprintf(line, sizeof(line), "cors_origins = %s\n", ok[i].v);
        struct conf *c = load_route(line, err, sizeof(err));
        if (!c)
            fprintf(stderr, "\n  origins %s: %s\n", ok[i].v, err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        const struct conf_cors *co = &c->routes[0].cors;
        size_t n = 0;
        got[0] = '\0';
        for (size_t k = 0; k < co->n_origins; k++)
            n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%s", k ? ", " : "",
                                  co->origins[k]);
        if (strcmp(got, ok[i].want) != 0)
            fprintf(stderr, "\n  origins %s: got %s\n", ok[i].v, got);
        CU_ASSERT_STRING_EQUAL(got, ok[i].want);
        CU_ASSERT_TRUE(co->set);
        CU_ASSERT_EQUAL(co->line, 6);
        CU_ASSERT_FALSE(c->cors.set);
        conf_free(c);
    }
    for (size_t i = 0; i < N_OF(bad); i++) {
        snprintf(line, sizeof(line), "%scors_origins = %s\n", ROUTE_HEAD, bad[i].v);
        expect_error(line, bad[i].want);
    }
    /* the same in [cors] */
    expect_error("[cors]\norigins = https://a.example/\n" TAIL, "2: origins: "
                 "\"https://a.example/\" is not an origin: an origin has no path, not even /");
    expect_error("[cors]\norigins = *\norigins = https://a.example\n" TAIL, "3: origins: \"*\" "
                 "(any origin) goes alone, without other origins (but null)");
}

/* The other CORS directives, their defaults, and what they need. */
static void test_cors(void)
{
    char err[1024];

    /* cors_origins alone: the defaults; the route's CORS, [cors] untouched */
    struct conf *c = load_route("cors_origins = https://app.example\n", err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    const struct conf_cors *co = &c->routes[0].cors;
    CU_ASSERT_TRUE(co->set);
    CU_ASSERT_EQUAL(co->methods, 0);
    CU_ASSERT_STRING_EQUAL(co->headers, "");
    CU_ASSERT_EQUAL(co->max_age_s, 600);
    CU_ASSERT_FALSE(co->credentials);
    conf_free(c);

    c = load_route("cors_origins = https://app.example\ncors_origins = http://localhost:3000\n"
                   "cors_methods = get, PUT\ncors_headers = Content-Type,X-A , X-AB, Authorization\n"
                   "cors_max_age = 0s\ncors_credentials = on\n", err, sizeof(err));
    if (!c)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    co = &c->routes[0].cors;
    CU_ASSERT_EQUAL(co->n_origins, 2);
    CU_ASSERT_EQUAL(co->line, 6);
    CU_ASSERT_EQUAL(co->methods, BIT(HTTP_GET) | BIT(HTTP_HEAD) | BIT(HTTP_PUT));
    CU_ASSERT_STRING_EQUAL(co->headers, "content-type, x-a, x-ab, authorization");
    CU_ASSERT_EQUAL(co->max_age_s, 0);
    CU_ASSERT_TRUE(co->credentials);
    conf_free(c);

    /* [cors]: the same directives without the prefix */
    c = load_text("[cors]\nmethods = POST\norigins = https://*.example.com\nheaders = X-Api-Key\n"
                  "max_age = 2h\ncredentials = yes\n" TAIL, err, sizeof(err));
    if (!c)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_TRUE(c->cors.set);
    CU_ASSERT_EQUAL(c->cors.line, 3);
    CU_ASSERT_STRING_EQUAL(c->cors.origins[0], "https://*.example.com");
    CU_ASSERT_EQUAL(c->cors.methods, BIT(HTTP_POST));
    CU_ASSERT_STRING_EQUAL(c->cors.headers, "x-api-key");
    CU_ASSERT_EQUAL(c->cors.max_age_s, 7200);
    CU_ASSERT_TRUE(c->cors.credentials);
    CU_ASSERT_FALSE(c->routes[0].cors.set);
    conf_free(c);
    /* an empty [cors] is no CORS; "*" without credentials is fine */
    c = load_text("[cors]\n" TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_FALSE(c->cors.set);
    conf_free(c);
    c = load_text("[cors]\norigins = *\ncredentials = no\n" TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_TRUE(c->cors.set);
    conf_free(c);

    static const struct { const char *text, *want; } bad[] = {
        {ROUTE_HEAD "cors_methods = GET\n", "6: cors_methods needs cors_origins on the same "
         "route"},
        {ROUTE_HEAD "cors_credentials = no\ncors_headers = X-A\n", "6: cors_credentials needs "
         "cors_origins on the same route"},
        {ROUTE_HEAD "cors_headers = X-A\ncors_max_age = 1m\n", "6: cors_headers needs "
         "cors_origins on the same route"},
        {ROUTE_HEAD "strip_prefix = yes\ncors_max_age = 1m\n" "[route s]\nprefix = /s\n"
         "upstream = u\n", "7: cors_max_age needs cors_origins on the same route"},
        {"[cors]\nmax_age = 5m\n" TAIL, "2: max_age needs origins in [cors]"},
        {"[cors]\n\nheaders = X-A\n" TAIL, "3: headers needs origins in [cors]"},
        /* a route's cors_origins does not stand for [cors] origins, nor the other way */
        {"[cors]\norigins = https://a.example\n" ROUTE_HEAD "cors_methods = GET\n",
         "8: cors_methods needs cors_origins on the same route"},
        {ROUTE_HEAD "cors_origins = *\ncors_credentials = yes\n", "7: cors_credentials: yes with "
         "cors_origins = * (line 6): browsers refuse credentials from any origin; list the "
         "origins"},
        {ROUTE_HEAD "cors_credentials = true\n\ncors_origins = *\n", "6: cors_credentials: yes "
         "with cors_origins = * (line 8): browsers refuse credentials from any origin; list the "
         "origins"},
        {"[cors]\ncredentials = yes\norigins = *\n" TAIL, "2: credentials: yes with origins = * "
         "(line 3): browsers refuse credentials from any origin; list the origins"},
        {"[cors]\norigins = null\norigins = *\ncredentials = 1\n" TAIL, "4: credentials: yes "
         "with origins = * (line 2): browsers refuse credentials from any origin; list the "
         "origins"},
        {ROUTE_HEAD "cors_origins = https://a.example\ncors_headers = X-A, x-a\n",
         "7: cors_headers: \"x-a\" is listed twice"},
        {ROUTE_HEAD "cors_origins = https://a.example\ncors_headers = X A\n",
         "7: cors_headers: \"X A\" is not a header name"},
        {ROUTE_HEAD "cors_origins = https://a.example\ncors_headers = X-A,,X-B\n",
         "7: cors_headers: empty item in the list \"X-A,,X-B\""},
        {ROUTE_HEAD "cors_origins = https://a.example\ncors_headers =\n",
         "7: cors_headers: empty value"},
        {ROUTE_HEAD "cors_origins = https://a.example\ncors_methods = GET, FETCH\n",
         "7: cors_methods: \"GET, FETCH\" is not a list of HTTP methods (e.g. GET, POST, DELETE)"},
        {ROUTE_HEAD "cors_origins = https://a.example\ncors_max_age = 1500ms\n",
         "7: cors_max_age: \"1500ms\" is not whole seconds"},
        {ROUTE_HEAD "cors_origins = https://a.example\ncors_max_age = 600\n",
         "7: cors_max_age: \"600\" needs a unit (e.g. 600s or 600ms)"},
        {ROUTE_HEAD "cors_origins = https://a.example\ncors_max_age = 25h\n",
         "7: cors_max_age: \"25h\" must be from 0ms to 24h"},
        {ROUTE_HEAD "cors_origins = https://a.example\ncors_credentials = maybe\n",
         "7: cors_credentials: \"maybe\" is not yes or no"},
        {"[cors]\norigins = https://a.example\n[cors]\n" TAIL, "3: section [cors] appears twice "
         "(first at line 1)"},
        {"[cors main]\n" TAIL, "1: section [cors] takes no name (only [upstream NAME], "
         "[plan NAME] and [route NAME] do)"},
        {"[cors]\nallow_origin = *\n" TAIL, "2: unknown key 'allow_origin' in [cors]"},
        {"[cors]\ncors_origins = *\n" TAIL, "2: unknown key 'cors_origins' in [cors]"},
        {ROUTE_HEAD "origins = *\n", "6: unknown key 'origins' in [route r]"},
    };
    for (size_t i = 0; i < N_OF(bad); i++)
        expect_error(bad[i].text, bad[i].want);

    /* cors_headers: at most 511 characters as stored */
    char line[1024], text[2048];
    size_t n = 0;
    for (int i = 0; n < 600; i++)
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%sX-H%02d", i ? ", " : "", i);
    snprintf(text, sizeof(text), ROUTE_HEAD "cors_origins = https://a.example\ncors_headers = %s\n",
             line);
    expect_error(text, "7: cors_headers: longer than 511 characters");
}

/* host = keep | upstream | NAME[:PORT], on a route and on an upstream. */
static void test_host_mode(void)
{
    static const struct { const char *v; enum conf_host_mode m; const char *name; } ok[] = {
        {"keep", CONF_HOST_KEEP, ""}, {"KEEP", CONF_HOST_KEEP, ""},
        {"upstream", CONF_HOST_UPSTREAM, ""}, {"Upstream", CONF_HOST_UPSTREAM, ""},
        {"Api.Example.com", CONF_HOST_NAME, "api.example.com"},
        {"api.example.com:8443", CONF_HOST_NAME, "api.example.com:8443"},
        {"10.0.0.1:80", CONF_HOST_NAME, "10.0.0.1:80"},
        {"[::1]:8080", CONF_HOST_NAME, "[::1]:8080"},
        {"[2001:DB8::1]", CONF_HOST_NAME, "[2001:db8::1]"},
        {"localhost", CONF_HOST_NAME, "localhost"},
    };
    static const struct { const char *v, *why; } bad[] = {
        {"*.example.com", "no wildcard here"},
        {"a b", "a host has no blanks or control characters"},
        {"api.example.com:0", "the port must be a number from 1 to 65535"},
        {"api.example.com:", "the port must be a number from 1 to 65535"},
        {":80", "no host before the port"},
        {"::1", "an IPv6 address needs brackets ([::1])"},
        {"a..b", "an empty label (two dots, or a dot first or last)"},
        {"example.com.", "an empty label (two dots, or a dot first or last)"},
        {"127.1", "not an IPv4 address (four numbers of 0-255)"},
    };
    char err[1024], text[1024], want[512];

    for (size_t i = 0; i < N_OF(ok); i++) {
        snprintf(text, sizeof(text), "[upstream u]\nserver = 127.0.0.1:9001\nhost = %s\n"
                 "[route r]\nprefix = /\nupstream = u\nhost = %s\n", ok[i].v, ok[i].v);
        struct conf *c = load_text(text, err, sizeof(err));
        if (!c)
            fprintf(stderr, "\n  host %s: %s\n", ok[i].v, err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_EQUAL(c->upstreams[0].host_mode, ok[i].m);
        CU_ASSERT_STRING_EQUAL(c->upstreams[0].host_name, ok[i].name);
        CU_ASSERT_EQUAL(c->routes[0].host_mode, ok[i].m);
        CU_ASSERT_STRING_EQUAL(c->routes[0].host_name, ok[i].name);
        conf_free(c);
    }
    for (size_t i = 0; i < N_OF(bad); i++) {
        snprintf(text, sizeof(text), "%shost = %s\n", ROUTE_HEAD, bad[i].v);
        snprintf(want, sizeof(want), "6: host: \"%s\" is not keep, upstream or a host name: %s",
                 bad[i].v, bad[i].why);
        expect_error(text, want);
        snprintf(text, sizeof(text), "[upstream u]\nserver = 127.0.0.1:9001\nhost = %s\n"
                 "[route r]\nprefix = /\nupstream = u\n", bad[i].v);
        snprintf(want, sizeof(want), "3: host: \"%s\" is not keep, upstream or a host name: %s",
                 bad[i].v, bad[i].why);
        expect_error(text, want);
    }
    expect_error(ROUTE_HEAD "host = keep\nhost = upstream\n", "7: host is set twice in [route r] "
                 "(first at line 6)");
}

/*
 * Two routes may share a prefix only with different hosts or match_header;
 * the later one is reported on its hosts or prefix line, naming the first.
 */
static void test_route_conflicts(void)
{
    static const struct { const char *routes, *want; } t[] = {
        /* fine */
        {"[route a]\nprefix = /api\nupstream = u\n[route b]\nprefix = /api\nupstream = u\n"
         "hosts = api.example.com\n", NULL},
        {"[route a]\nprefix = /api\nupstream = u\nhosts = a.example\n"
         "[route b]\nprefix = /api\nupstream = u\nhosts = b.example, c.example\n", NULL},
        {"[route a]\nprefix = /api\nupstream = u\nmatch_header = X-V: 1\n"
         "[route b]\nprefix = /api\nupstream = u\nmatch_header = X-V: 2\n", NULL},
        {"[route a]\nprefix = /api\nupstream = u\n"
         "[route b]\nprefix = /api\nupstream = u\nmatch_header = X-V: 2\n", NULL},
        {"[route a]\nprefix = /api\nupstream = u\nmatch_header = X-V: 2\n"
         "[route b]\nprefix = /api\nupstream = u\nmatch_header = X-W: 2\n", NULL},
        {"[route a]\nprefix = /api\nupstream = u\nmatch_header = X-V: a\n"
         "[route b]\nprefix = /api\nupstream = u\nmatch_header = X-V: A\n", NULL},
        {"[route a]\nprefix = /api\nupstream = u\nhosts = *.example.com\n"
         "[route b]\nprefix = /api\nupstream = u\nhosts = api.example.com\n", NULL},
        {"[route a]\nprefix = /api\nupstream = u\nhosts = a.example\n"
         "[route b]\nprefix = /api/\nupstream = u\nhosts = a.example\n", NULL},
        /* the case of a prefix matters only with routes_ignore_case = no, wherever it is */
        {"[route a]\nprefix = /api\nupstream = u\n[route b]\nprefix = /API\nupstream = u\n"
         "[server]\nroutes_ignore_case = no\n", NULL},
        /* conflicts */
        {"[route a]\nprefix = /api\nupstream = u\n[route b]\nprefix = /api\nupstream = u\n",
         "7: prefix: \"/api\" is already the prefix of [route a] (line 3)"},
        {"[route a]\nprefix = /api\nupstream = u\n[route b]\nupstream = u\n\nprefix = /API\n",
         "9: prefix: \"/API\" is already the prefix of [route a] (line 3) (in another letter "
         "case: routes_ignore_case = yes)"},
        {"[route a]\nprefix = /api\nupstream = u\nmatch_header = X-V: 2\n"
         "[route b]\nprefix = /api\nupstream = u\nmatch_header = x-v:2\n",
         "8: prefix: \"/api\" is already the prefix of [route a] (line 3), with the same "
         "match_header"},
        {"[route a]\nprefix = /api\nupstream = u\nhosts = x.example, y.example\n"
         "[route b]\nprefix = /api\nupstream = u\nhosts = z.example, Y.example.\n",
         "10: hosts: \"y.example\" with prefix \"/api\" is already routed by [route a] (line 3)"},
        {"[route a]\nprefix = /api\nupstream = u\nhosts = x.example, y.example\n"
         "[route b]\nprefix = /api\nupstream = u\nhosts = z.example\nhosts = x.example\n",
         "11: hosts: \"x.example\" with prefix \"/api\" is already routed by [route a] (line 3)"},
        {"[route a]\nprefix = /api\nupstream = u\nhosts = *.example.com\nmatch_header = A: 1\n"
         "[route b]\nmatch_header = a: 1\nhosts = *.example.com\nprefix = /api\nupstream = u\n",
         "10: hosts: \"*.example.com\" with prefix \"/api\" is already routed by [route a] "
         "(line 3), with the same match_header"},
        /* match_header variants at one place share one preflight: one CORS */
        {"[route a]\nprefix = /api\nupstream = u\ncors_origins = *\n"
         "[route b]\nprefix = /api\nupstream = u\nmatch_header = X-V: 2\n"
         "cors_origins = https://app.example.com\n",
         "7: [route b]: shares its hosts and prefix with [route a] (line 3), told apart by "
         "match_header, but not its CORS settings (a preflight carries no match_header: they must "
         "be the same)"},
        {"[route a]\nprefix = /api\nupstream = u\ncors_origins = *\n"
         "[route b]\nprefix = /api\nupstream = u\nmatch_header = X-V: 2\ncors_origins = *\n",
         NULL},
        {"[cors]\norigins = *\n[route a]\nprefix = /api\nupstream = u\n"
         "[route b]\nprefix = /api\nupstream = u\nmatch_header = X-V: 2\n", NULL},
        /* the first later route of the file is named, against the first it repeats */
        {"[route a]\nprefix = /x\nupstream = u\n[route b]\nprefix = /y\nupstream = u\n"
         "[route c]\nprefix = /y\nupstream = u\n[route d]\nprefix = /x\nupstream = u\n"
         "[route e]\nprefix = /x\nupstream = u\n",
         "10: prefix: \"/y\" is already the prefix of [route b] (line 6)"},
        {"[route a]\nprefix = /x\nupstream = u\nhosts = h.example\n"
         "[route b]\nprefix = /x\nupstream = u\nhosts = g.example, h.example\n"
         "[route c]\nprefix = /x\nupstream = u\nhosts = g.example\n",
         "10: hosts: \"h.example\" with prefix \"/x\" is already routed by [route a] (line 3)"},
    };
    char text[2048];

    for (size_t i = 0; i < N_OF(t); i++) {
        snprintf(text, sizeof(text), "[upstream u]\nserver = 127.0.0.1:9001\n%s", t[i].routes);
        if (t[i].want) {
            expect_error(text, t[i].want);
        } else {
            char err[1024];
            struct conf *c = load_text(text, err, sizeof(err));
            if (!c)
                fprintf(stderr, "\n  case %zu: %s\n", i, err);
            CU_ASSERT_PTR_NOT_NULL(c);
            conf_free(c);
        }
    }
}

/* An upstream and routes r0..rN-1 (route k begins on line 3 + 3k), then TAIL_ROUTE. */
static char *many_routes(int n, const char *tail_route)
{
    size_t cap = 128 + (size_t)(n + 1) * 64, len = 0;
    char *text = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    len += (size_t)snprintf(text + len, cap - len, "[upstream u]\nserver = 127.0.0.1:9001\n");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len, "[route r%d]\nprefix = /r%d\nupstream = u\n",
                                i, i);
    snprintf(text + len, cap - len, "%s", tail_route);
    return text;
}

/* Routes are allocated as they come: CONF_MAX_ROUTES load, one more is refused. */
static void test_many_routes(void)
{
    char err[1024], want[128];
    char *text = many_routes(CONF_MAX_ROUTES, "");
    struct conf *c = load_text(text, err, sizeof(err));
    if (!c)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->n_routes, CONF_MAX_ROUTES);
    CU_ASSERT_STRING_EQUAL(c->routes[0].prefix, "/r0");
    CU_ASSERT_STRING_EQUAL(c->routes[CONF_MAX_ROUTES - 1].name, "r4095");
    CU_ASSERT_STRING_EQUAL(c->routes[CONF_MAX_ROUTES - 1].prefix, "/r4095");
    CU_ASSERT_EQUAL(c->routes[CONF_MAX_ROUTES - 1].line, 3 + 3 * (CONF_MAX_ROUTES - 1));
    CU_ASSERT_EQUAL(c->routes[CONF_MAX_ROUTES - 1].upstream, 0);
    conf_free(c);
    free(text);

    /* a repeated prefix, however far from the first */
    text = many_routes(CONF_MAX_ROUTES - 1, "[route last]\nprefix = /r7\nupstream = u\n");
    snprintf(want, sizeof(want), "%d: prefix: \"/r7\" is already the prefix of [route r7] "
             "(line %d)", 4 + 3 * (CONF_MAX_ROUTES - 1), 3 + 3 * 7);
    expect_error(text, want);
    free(text);

    text = many_routes(CONF_MAX_ROUTES, "[route one_more]\nprefix = /more\nupstream = u\n");
    snprintf(want, sizeof(want), "%d: too many [route] sections (at most %d)",
             3 + 3 * CONF_MAX_ROUTES, CONF_MAX_ROUTES);
    expect_error(text, want);
    free(text);
}

/* Every error message, with its line. TAIL follows the text unless noted. */
static void test_errors(void)
{
    static const struct { const char *text; const char *want; } t[] = {
        /* syntax */
        {"[server\n" TAIL, "1: section header \"[server\" has no closing ]"},
        {"[server] x\n" TAIL, "1: unexpected text after ] in \"[server] x\""},
        {"[server]\nworkers\n" TAIL, "2: expected key = value or [section], got \"workers\""},
        {"[server]\n= 4\n" TAIL, "2: expected key = value or [section], got \"= 4\""},
        {"[server]\nworkers: 4\n" TAIL, "2: expected key = value or [section], got \"workers: 4\""},
        {"workers = 4\n" TAIL, "1: 'workers' is outside any section (add e.g. [server] above it)"},
        /* sections */
        {"[servers]\n" TAIL, "1: unknown section [servers] (known: server, tls, envelope, "
         "correlation, redis, limits, auth, cors, admin, upstream NAME, plan NAME, "
         "route NAME)"},
        {"[]\n" TAIL, "1: unknown section [] (known: server, tls, envelope, correlation, "
         "redis, limits, auth, cors, admin, upstream NAME, plan NAME, route NAME)"},
        {"[Server]\n" TAIL, "1: unknown section [Server] (known: server, tls, envelope, "
         "correlation, redis, limits, auth, cors, admin, upstream NAME, plan NAME, "
         "route NAME)"},
        {"[server main]\n" TAIL, "1: section [server] takes no name (only [upstream NAME], "
         "[plan NAME] and [route NAME] do)"},
        {"[server]\n\n[server]\n" TAIL, "3: section [server] appears twice (first at line 1)"},
        {"[upstream]\n" TAIL, "1: section [upstream] needs a name: [upstream NAME]"},
        {"[route]\n" TAIL, "1: section [route] needs a name: [route NAME]"},
        {"[upstream a/b]\n" TAIL, "1: [upstream \"a/b\"]: a name is 1-63 characters of A-Z a-z "
         "0-9 _ . -"},
        {"[upstream a b]\n" TAIL, "1: [upstream \"a b\"]: a name is 1-63 characters of A-Z a-z "
         "0-9 _ . -"},
        {TAIL "[upstream u]\nserver = 127.0.0.1:1\n", "6: [upstream u] appears twice (first at "
         "line 1)"},
        {TAIL "[route r]\nprefix = /x\nupstream = u\n", "6: [route r] appears twice (first at "
         "line 3)"},
        /* keys */
        {"[server]\nfoo = 1\n" TAIL, "2: unknown key 'foo' in [server]"},
        {"[server]\nWorkers = 1\n" TAIL, "2: unknown key 'Workers' in [server]"},
        {"[envelope]\nprefix = /\n" TAIL, "2: unknown key 'prefix' in [envelope]"},
        {"[upstream u]\nserver = 127.0.0.1:9001\nprefix = /\n[route r]\nprefix = /\n"
         "upstream = u\n", "3: unknown key 'prefix' in [upstream u]"},
        {"[server]\nworkers = 1\n# c\nworkers = 2\n" TAIL, "4: workers is set twice in [server] "
         "(first at line 2)"},
        {TAIL "prefix = /b\n", "6: prefix is set twice in [route r] (first at line 4)"},
        {"[server]\nworkers =\n" TAIL, "2: workers: empty value"},
        {"[server]\nlisten =   \n" TAIL, "2: listen: empty value"},
        /* [server] */
        {"[server]\nlisten = 1.2.3.4:99999\n" TAIL, "2: listen: \"1.2.3.4:99999\" is not "
         "HOST:PORT: the port must be a number from 1 to 65535"},
        {"[server]\nlisten = 8080\n" TAIL, "2: listen: \"8080\" is not HOST:PORT: missing :PORT"},
        {"[server]\nlisten = :8080\n" TAIL, "2: listen: \":8080\" is not HOST:PORT: missing host"},
        {"[server]\nlisten = ::1:8080\n" TAIL, "2: listen: \"::1:8080\" is not HOST:PORT: an IPv6 "
         "address needs brackets, e.g. [::1]:8080"},
        {"[server]\nlisten = 127.1:80\n" TAIL, "2: listen: \"127.1:80\" is not HOST:PORT: "
         "\"127.1\" is not an IPv4 address"},
        {"[server]\nlisten = unix:/run/e.sock\n" TAIL, "2: listen: \"unix:/run/e.sock\" is not "
         "HOST:PORT: a unix socket is not allowed here; use HOST:PORT"},
        {"[server]\nlisten = 127.0.0.1:80, 127.0.0.1:80\n" TAIL, "2: listen: \"127.0.0.1:80\" is "
         "listed twice"},
        {"[server]\nlisten = 127.0.0.1:80,\n" TAIL, "2: listen: empty item in the list "
         "\"127.0.0.1:80,\""},
        {"[server]\nlisten = 127.0.0.1:1,127.0.0.1:2,127.0.0.1:3,127.0.0.1:4,127.0.0.1:5,"
         "127.0.0.1:6,127.0.0.1:7,127.0.0.1:8,127.0.0.1:9,127.0.0.1:10,127.0.0.1:11,127.0.0.1:12,"
         "127.0.0.1:13,127.0.0.1:14,127.0.0.1:15,127.0.0.1:16,127.0.0.1:17\n" TAIL,
         "2: listen: too many (at most 16)"},
        {"[server]\nworkers = -1\n" TAIL, "2: workers: \"-1\" is not a whole number"},
        {"[server]\nworkers = 1025\n" TAIL, "2: workers: \"1025\" must be from 0 to 1024"},
        {"[server]\nworkers = 99999999999999999999999\n" TAIL, "2: workers: "
         "\"99999999999999999999999\" is not a whole number"},
        {"[server]\nmax_header_size = 16q\n" TAIL, "2: max_header_size: \"16q\" is not a size "
         "(use e.g. 16k, 1m)"},
        {"[server]\nmax_header_size = -16k\n" TAIL, "2: max_header_size: \"-16k\" is not a size "
         "(use e.g. 16k, 1m)"},
        {"[server]\nmax_header_size = 512\n" TAIL, "2: max_header_size: \"512\" must be from 1k "
         "to 1m"},
        {"[server]\nmax_header_size = 2m\n" TAIL, "2: max_header_size: \"2m\" must be from 1k "
         "to 1m"},
        {"[server]\nmax_body_size = 0\n" TAIL, "2: max_body_size: \"0\" must be at least 1"},
        {"[server]\nmax_body_size = 99999999999g\n" TAIL, "2: max_body_size: \"99999999999g\" "
         "is not a size (use e.g. 16k, 1m)"},
        {"[server]\nclient_timeout = 30\n" TAIL, "2: client_timeout: \"30\" needs a unit (e.g. "
         "30s or 30ms)"},
        {"[server]\nclient_timeout = 30x\n" TAIL, "2: client_timeout: \"30x\" is not a duration "
         "(use e.g. 500ms, 30s, 5m, 1h)"},
        {"[server]\nclient_timeout = 0s\n" TAIL, "2: client_timeout: \"0s\" must be from 1ms "
         "to 24h"},
        {"[server]\nclient_timeout = 25h\n" TAIL, "2: client_timeout: \"25h\" must be from 1ms "
         "to 24h"},
        {"[server]\nkeepalive_timeout = 1d\n" TAIL, "2: keepalive_timeout: \"1d\" is not a "
         "duration (use e.g. 500ms, 30s, 5m, 1h)"},
        {"[server]\nshutdown_timeout = 20\n" TAIL, "2: shutdown_timeout: \"20\" needs a unit "
         "(e.g. 20s or 20ms)"},
        {"[server]\nlog_level = verbose\n" TAIL, "2: log_level: \"verbose\" is not one of debug, "
         "info, warn, error"},
        {"[server]\naccess_log = access.log\n" TAIL, "2: access_log: \"access.log\" is not "
         "stdout, off or an absolute path"},
        /* [envelope] */
        {"[envelope]\nprofile = json\n" TAIL, "2: profile: \"json\" is not one of nested, flat, "
         "simple, status, i18n, problem"},
        {"[envelope]\nexpose_upstream_5xx = maybe\n" TAIL, "2: expose_upstream_5xx: \"maybe\" "
         "is not yes or no"},
        {"[envelope]\nmax_error_body = 65m\n" TAIL, "2: max_error_body: \"65m\" must be from 1 "
         "to 64m"},
        /* [correlation] */
        {"[correlation]\nheader = X Id\n" TAIL, "2: header: \"X Id\" is not a header name (1-63 "
         "characters, no blanks)"},
        {"[correlation]\nheader = X-Id:\n" TAIL, "2: header: \"X-Id:\" is not a header name "
         "(1-63 characters, no blanks)"},
        {"[correlation]\naccept = X-Id, X(Id)\n" TAIL, "2: accept: \"X(Id)\" is not a header "
         "name"},
        {"[correlation]\naccept = X-Id, x-id\n" TAIL, "2: accept: \"x-id\" is listed twice"},
        {"[correlation]\naccept = A,B,C,D,E\naccept = F,G,H,I\n" TAIL, "3: accept: too many (at "
         "most 8)"},
        {"[correlation]\naccept = A,,B\n" TAIL, "2: accept: empty item in the list \"A,,B\""},
        /* [redis] */
        {"[redis]\naddress = localhost\n" TAIL, "2: address: \"localhost\" is not HOST:PORT or "
         "unix:/PATH: missing :PORT"},
        {"[redis]\naddress = unix:redis.sock\n" TAIL, "2: address: \"unix:redis.sock\" is not "
         "HOST:PORT or unix:/PATH: the socket path must be absolute (unix:/run/x.sock)"},
        {"[redis]\ndb = x\n" TAIL, "2: db: \"x\" is not a whole number"},
        {"[redis]\ndb = 2147483648\n" TAIL, "2: db: \"2147483648\" must be from 0 to 2147483647"},
        {"[redis]\nkey_prefix = a b\n" TAIL, "2: key_prefix: \"a b\" may not contain blanks or "
         "control characters"},
        {"[redis]\nkey_prefix = 0123456789012345678901234567890123456789012345678901234567890123\n"
         TAIL, "2: key_prefix: longer than 63 characters"},
        {"[redis]\ntimeout = 50\n" TAIL, "2: timeout: \"50\" needs a unit (e.g. 50s or 50ms)"},
        {"[redis]\ntimeout = 2h\n" TAIL, "2: timeout: \"2h\" must be from 1ms to 1h"},
        {"[redis]\non_error = retry\n" TAIL, "2: on_error: \"retry\" is not one of allow, deny, "
         "local"},
        /* [limits] */
        {"[limits]\ntoken_header =\n" TAIL, "2: token_header: empty value"},
        {"[limits]\nper_token = 100\n" TAIL, "2: per_token: \"100\" is not a rate (use "
         "N/DURATION with N >= 1, e.g. 100/1m, 500/15m, 5000/1h)"},
        {"[limits]\nper_ip = 0/1m\n" TAIL, "2: per_ip: \"0/1m\" is not a rate (use N/DURATION "
         "with N >= 1, e.g. 100/1m, 500/15m, 5000/1h)"},
        {"[limits]\ntrusted_proxies = 10.0.0.0/33\n" TAIL, "2: trusted_proxies: \"10.0.0.0/33\" "
         "is not an address or CIDR range (e.g. 10.0.0.0/8, ::1)"},
        {"[limits]\nhash_secret = short\n" TAIL, "2: hash_secret: must be 16 to 255 characters "
         "(e.g. the output of openssl rand -hex 32)"},
        {"[limits]\nipv6_prefix = 0\n" TAIL, "2: ipv6_prefix: \"0\" must be from 1 to 128"},
        {"[limits]\nipv6_prefix = 129\n" TAIL, "2: ipv6_prefix: \"129\" must be from 1 to 128"},
        {"[limits]\nipv6_prefix = /64\n" TAIL, "2: ipv6_prefix: \"/64\" is not a whole number"},
        {"[limits]\nipv6_prefix = 64bits\n" TAIL, "2: ipv6_prefix: \"64bits\" is not a whole "
         "number"},
        {"[limits]\nipv6_prefix = -1\n" TAIL, "2: ipv6_prefix: \"-1\" is not a whole number"},
        /* [upstream] */
        {"[upstream u]\nkeepalive = 2\n[route r]\nprefix = /\nupstream = u\n",
         "1: [upstream u]: missing server = ..."},
        {"[upstream u]\n[route r]\nprefix = /\nupstream = u\n",
         "1: [upstream u]: missing server = ..."},
        {"[upstream u]\nserver = unix:/run/app.sock\n[route r]\nprefix = /\nupstream = u\n",
         "2: server: \"unix:/run/app.sock\" is not HOST:PORT: a unix socket is not allowed here; "
         "use HOST:PORT"},
        {"[upstream u]\nserver = 127.0.0.1:0\n", "2: server: \"127.0.0.1:0\" is not HOST:PORT: "
         "the port must be a number from 1 to 65535"},
        {TAIL "[upstream v]\nserver = 127.0.0.1:1\nretries = 11\n", "8: retries: \"11\" must be "
         "from 0 to 10"},
        {TAIL "[upstream v]\nserver = 127.0.0.1:1\nkeepalive = 100001\n", "8: keepalive: "
         "\"100001\" must be from 0 to 100000"},
        {TAIL "[upstream v]\nserver = 127.0.0.1:1\nconnect_timeout = 0ms\n", "8: connect_timeout: "
         "\"0ms\" must be from 1ms to 24h"},
        {TAIL "[upstream v]\nserver = 127.0.0.1:1\nkeepalive_timeout = 0s\n", "8: keepalive_timeout: "
         "\"0s\" must be from 1ms to 24h"},
        {TAIL "[upstream v]\nserver = 127.0.0.1:1\ntunnel_timeout = 25h\n", "8: tunnel_timeout: "
         "\"25h\" must be from 1ms to 24h"},
        {TAIL "[upstream v]\nserver = 127.0.0.1:1\nkeepalive_requests = 1000000001\n",
         "8: keepalive_requests: \"1000000001\" must be from 0 to 1000000000"},
        {TAIL "[upstream v]\nserver = 127.0.0.1:1\ntimeout = 2\n", "8: timeout: \"2\" needs a "
         "unit (e.g. 2s or 2ms)"},
        {TAIL "[upstream v]\nserver = 127.0.0.1:1\nretry_backoff = 2s\n", "6: [upstream v]: "
         "retry_backoff (2s) is larger than retry_backoff_max (1s)"},
        {TAIL "[upstream v]\nserver = 127.0.0.1:1\ndown_backoff_max = 500ms\n", "6: [upstream v]: "
         "down_backoff (1s) is larger than down_backoff_max (500ms)"},
        {TAIL "[upstream v]\nserver = 127.0.0.1:1\nretry_backoff_max = 61m\n", "8: "
         "retry_backoff_max: \"61m\" must be from 0ms to 1h"},
        {TAIL "[upstream v]\nserver = 127.0.0.1:1\ndown_backoff = 0s\n", "8: down_backoff: "
         "\"0s\" must be from 1ms to 24h"},
        /* [route] */
        {"[upstream u]\nserver = 127.0.0.1:9001\n[route r]\nupstream = u\n",
         "3: [route r]: missing prefix = ..."},
        {"[upstream u]\nserver = 127.0.0.1:9001\n[route r]\nprefix = /\n",
         "3: [route r]: missing upstream = ..."},
        {"[upstream u]\nserver = 127.0.0.1:9001\n[route r]\nprefix = api\nupstream = u\n",
         "4: prefix: \"api\" must start with /"},
        {"[upstream u]\nserver = 127.0.0.1:9001\n[route r]\nprefix = /a?b\nupstream = u\n",
         "4: prefix: \"/a?b\" may hold only path characters (no blanks, ? or #)"},
        {"[upstream u]\nserver = 127.0.0.1:9001\n[route r]\nprefix = /a b\nupstream = u\n",
         "4: prefix: \"/a b\" may hold only path characters (no blanks, ? or #)"},
        {TAIL "[route s]\nprefix = /\nupstream = u\n", "7: prefix: \"/\" is already the prefix "
         "of [route r] (line 3)"},
        {"[route r]\nprefix = /\nupstream = nope\n" "[upstream u]\nserver = 127.0.0.1:9001\n",
         "3: [route r]: upstream \"nope\" is not defined (no [upstream nope] section)"},
        {"[upstream u]\nserver = 127.0.0.1:9001\n[route r]\nprefix = /\nupstream = u/v\n",
         "5: upstream: \"u/v\" is not a section name (A-Z a-z 0-9 _ . -)"},
        {TAIL "strip_prefix = sure\n", "6: strip_prefix: \"sure\" is not yes or no"},
        {TAIL "require_token = 2\n", "6: require_token: \"2\" is not yes or no"},
        {TAIL "methods = GET, FETCH\n", "6: methods: \"GET, FETCH\" is not a list of HTTP methods "
         "(e.g. GET, POST, DELETE)"},
        {TAIL "per_token = 1000/1d\n", "6: per_token: \"1000/1d\" is not a rate (use N/DURATION "
         "with N >= 1, e.g. 100/1m, 500/15m, 5000/1h)"},
        {TAIL "per_ip = x\n", "6: per_ip: \"x\" is not a rate (use N/DURATION with N >= 1, e.g. "
         "100/1m, 500/15m, 5000/1h)"},
        /* [server] listen flags */
        {"[server]\nlisten = 0.0.0.0:443 ssl\n" PAIR TAIL, "2: listen: unknown flag \"ssl\" after "
         "\"0.0.0.0:443\" (known: tls, proxy_protocol)"},
        {"[server]\nlisten = 0.0.0.0:443 TLS\n" PAIR TAIL, "2: listen: unknown flag \"TLS\" after "
         "\"0.0.0.0:443\" (known: tls, proxy_protocol)"},
        {"[server]\nlisten = 0.0.0.0:443 tls=yes\n" PAIR TAIL, "2: listen: unknown flag "
         "\"tls=yes\" after \"0.0.0.0:443\" (known: tls, proxy_protocol)"},
        {"[server]\nlisten = 0.0.0.0:443 tls proxy-protocol\n" PAIR TAIL, "2: listen: unknown "
         "flag \"proxy-protocol\" after \"0.0.0.0:443\" (known: tls, proxy_protocol)"},
        {"[server]\nlisten = 0.0.0.0:443 tls tls\n" PAIR TAIL, "2: listen: flag tls is given "
         "twice after \"0.0.0.0:443\""},
        {"[server]\nlisten = 0.0.0.0:443 proxy_protocol tls proxy_protocol\n" PAIR TAIL,
         "2: listen: flag proxy_protocol is given twice after \"0.0.0.0:443\""},
        {"[server]\nlisten = tls 0.0.0.0:443\n" PAIR TAIL, "2: listen: \"tls\" is not HOST:PORT: "
         "missing :PORT"},
        {"[server]\nlisten = 0.0.0.0:443 tls, 0.0.0.0:443\n" PAIR TAIL, "2: listen: "
         "\"0.0.0.0:443\" is listed twice"},
        {"[server]\nlisten = 0.0.0.0:443 tls,, 127.0.0.1:80\n" PAIR TAIL, "2: listen: empty item in "
         "the list \"0.0.0.0:443 tls,, 127.0.0.1:80\""},
        {"[server]\nlisten = unix:/run/e.sock tls\n" PAIR TAIL, "2: listen: \"unix:/run/e.sock\" is "
         "not HOST:PORT: a unix socket is not allowed here; use HOST:PORT"},
        /* ... nowhere else */
        {"[upstream u]\nserver = 127.0.0.1:9001 tls\n[route r]\nprefix = /\nupstream = u\n",
         "2: server: flag \"tls\" after \"127.0.0.1:9001\": listen flags are allowed only on "
         "[server] listen (TLS to the servers of an upstream is its tls = yes)"},
        {"[upstream u]\nserver = 127.0.0.1:9000, 127.0.0.1:9001 proxy_protocol\n[route r]\n"
         "prefix = /\nupstream = u\n", "2: server: flag \"proxy_protocol\" after "
         "\"127.0.0.1:9001\": listen flags are allowed only on [server] listen"},
        {"[upstream u]\nserver = 127.0.0.1:9001 weight=2\n[route r]\nprefix = /\nupstream = u\n",
         "2: server: unexpected \"weight=2\" after \"127.0.0.1:9001\""},
        {"[admin]\nlisten = 127.0.0.1:9900 tls\n" PAIR TAIL, "2: listen: flag \"tls\" after "
         "\"127.0.0.1:9900\": listen flags are allowed only on [server] listen"},
        {"[admin]\nlisten = 127.0.0.1:9900 proxy_protocol\n" TAIL, "2: listen: flag "
         "\"proxy_protocol\" after \"127.0.0.1:9900\": listen flags are allowed only on [server] "
         "listen"},
        {"[redis]\naddress = 127.0.0.1:6379 tls\n" TAIL, "2: address: \"127.0.0.1:6379 tls\" is not "
         "HOST:PORT or unix:/PATH: the port must be a number from 1 to 65535"},
        /* a TLS listener needs a certificate: on the line of its listen */
        {"[server]\nworkers = 1\nlisten = 127.0.0.1:80, 0.0.0.0:443 tls\n" TAIL, "3: [server] "
         "listen 0.0.0.0:443 tls needs a [tls] certificate and key"},
        {"[server]\nlisten = 127.0.0.1:80\n\nlisten = [::]:443 proxy_protocol tls\n[tls]\n"
         "protocols = TLSv1.3\n" TAIL, "4: [server] listen [::]:443 tls needs a [tls] certificate "
         "and key"},
        /* PROXY headers need someone allowed to send them */
        {"[server]\nlisten = 127.0.0.1:80\nlisten = 0.0.0.0:81 proxy_protocol\n" TAIL, "3: [server] "
         "listen 0.0.0.0:81 proxy_protocol needs [limits] trusted_proxies (the balancers allowed to "
         "send PROXY headers)"},
        /* [tls]: certificate, then its key */
        {"[tls]\nkey = /k.pem\n" TAIL, "2: key: no certificate before it (each key = follows its "
         "certificate =)"},
        {"[tls]\ncertificate = /a.pem\ncertificate = /b.pem\nkey = /k.pem\n" TAIL, "3: certificate: "
         "the certificate of line 2 has no key yet (each certificate = is followed by its key =)"},
        {"[tls]\ncertificate = /a.pem\nkey = /a.key\nkey = /b.key\n" TAIL, "4: key: no certificate "
         "before it (each key = follows its certificate =)"},
        {"[tls]\ncertificate = /a.pem\nkey = /a.key\n# b\ncertificate = /b.pem\n\n[envelope]\n"
         TAIL, "5: certificate: \"/b.pem\" has no key (key = PATH follows its certificate)"},
        {TAIL "[tls]\nprotocols = TLSv1.3\ncertificate = /a.pem\n", "8: certificate: \"/a.pem\" "
         "has no key (key = PATH follows its certificate)"},
        {"[tls]\ncertificate =\n" TAIL, "2: certificate: empty value"},
        {"[tls]\ncertificate = /a.pem\nkey =\n" TAIL, "3: key: empty value"},
        {"[tls]\ncertificate = /a.pem\nkey = /a.key\n[tls]\n" TAIL, "4: section [tls] appears "
         "twice (first at line 1)"},
        {"[tls main]\n" TAIL, "1: section [tls] takes no name (only [upstream NAME], "
         "[plan NAME] and [route NAME] do)"},
        {"[tls]\ncert = /a.pem\n" TAIL, "2: unknown key 'cert' in [tls]"},
        {"[server]\ncertificate = /a.pem\n" TAIL, "2: unknown key 'certificate' in [server]"},
        /* [tls] protocols, ciphers, handshake_timeout */
        {"[tls]\nprotocols = SSLv3\n" TAIL, "2: protocols: \"SSLv3\" is not one of TLSv1, TLSv1.1, "
         "TLSv1.2, TLSv1.3"},
        {"[tls]\nprotocols = TLSv1.2 TLSv1.4\n" TAIL, "2: protocols: \"TLSv1.4\" is not one of "
         "TLSv1, TLSv1.1, TLSv1.2, TLSv1.3"},
        {"[tls]\nprotocols = TLSv1.2;TLSv1.3\n" TAIL, "2: protocols: \"TLSv1.2;TLSv1.3\" is not "
         "one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3"},
        {"[tls]\nprotocols = TLSv1.2 TLSv1.3xxxxxxxxxxxxxxxxxxxxxxxx\n" TAIL, "2: protocols: "
         "\"TLSv1.3xxxxxxxx\" is not one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3"},
        {"[tls]\nprotocols = ,\n" TAIL, "2: protocols: \",\" names no version (TLSv1, TLSv1.1, "
         "TLSv1.2, TLSv1.3)"},
        {"[tls]\nprotocols =\n" TAIL, "2: protocols: empty value"},
        {"[tls]\nprotocols = TLSv1.1, TLSv1.3\n" TAIL, "2: protocols: \"TLSv1.1, TLSv1.3\" leaves "
         "out TLSv1.2: list a range of versions without a gap"},
        {"[tls]\nprotocols = TLSv1.3 TLSv1\n" TAIL, "2: protocols: \"TLSv1.3 TLSv1\" leaves out "
         "TLSv1.1: list a range of versions without a gap"},
        {"[tls]\nciphers =\n" TAIL, "2: ciphers: empty value"},
        {"[tls]\nhandshake_timeout = 10\n" TAIL, "2: handshake_timeout: \"10\" needs a unit (e.g. "
         "10s or 10ms)"},
        {"[tls]\nhandshake_timeout = 0s\n" TAIL, "2: handshake_timeout: \"0s\" must be from 1ms "
         "to 1h"},
        {"[tls]\nhandshake_timeout = 61m\n" TAIL, "2: handshake_timeout: \"61m\" must be from "
         "1ms to 1h"},
        /* [upstream] TLS */
        {TAIL "[upstream v]\nserver = 127.0.0.1:1\ntls = maybe\n", "8: tls: \"maybe\" is not yes or "
         "no"},
        {TAIL "[upstream v]\nserver = 127.0.0.1:1\nverify = 2\n", "8: verify: \"2\" is not yes or "
         "no"},
        {TAIL "[upstream v]\nserver = 127.0.0.1:1\nca_file =\n", "8: ca_file: empty value"},
        {TAIL "[upstream v]\nserver = 127.0.0.1:1\ntls = yes\ntls = no\n", "9: tls is set twice in "
         "[upstream v] (first at line 8)"},
        {TAIL "[upstream v]\nserver = 127.0.0.1:1\nclient_certificate = /c.pem\n", "6: [upstream v]: "
         "client_certificate without client_key (give both or neither)"},
        {"[upstream u]\nserver = 127.0.0.1:1\ntls = yes\nclient_key = /k.pem\n[route r]\nprefix = /\n"
         "upstream = u\n", "1: [upstream u]: client_key without client_certificate (give both or "
         "neither)"},
        {TAIL "[upstream v]\nserver = 127.0.0.1:1\nserver_name = api example\n", "8: server_name: "
         "\"api example\" is not a host name or an IP address"},
        /* whole file */
        {"", "0: no [route] section: every request would get 404 (add e.g. [route all] with "
         "prefix = / and upstream = NAME)"},
        {"[server]\nworkers = 1\n[upstream u]\nserver = 127.0.0.1:9001\n", "0: no [route] "
         "section: every request would get 404 (add e.g. [route all] with prefix = / and "
         "upstream = NAME)"},
        /* the first problem wins, even when a later one is also there */
        {"[server]\nfoo = 1\nbar = 2\n", "2: unknown key 'foo' in [server]"},
        /* a NUL byte means this is not a text file (the table's strings stop at it,
         * so this one is below) */
    };
    for (size_t i = 0; i < N_OF(t); i++)
        expect_error(t[i].text, t[i].want);
}

static void test_binary_and_missing(void)
{
    char path[64], err[1024];
    struct conf *c;

    /* A NUL byte in a line. */
    snprintf(path, sizeof(path), "/tmp/envelopd-test-conf-XXXXXX");
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    static const char bin[] = "[server]\nworkers = 1\x00\x01\n";
    CU_ASSERT_FATAL(write(fd, bin, sizeof(bin) - 1) == (ssize_t)(sizeof(bin) - 1));
    close(fd);
    c = conf_load(path, err, sizeof(err));
    CU_ASSERT_PTR_NULL(c);
    char want[256];
    snprintf(want, sizeof(want), "%s:2: the line holds a NUL byte (is this a text file?)", path);
    CU_ASSERT_STRING_EQUAL(err, want);
    unlink(path);

    c = conf_load("data/conf/does-not-exist.conf", err, sizeof(err));
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_STRING_EQUAL(err, "data/conf/does-not-exist.conf:0: cannot open: No such file or "
                           "directory");

    /* A host name that does not resolve (the resolver's wording varies). */
    c = load_text("[upstream u]\nserver = no-such-host.invalid:80\n", err, sizeof(err));
    CU_ASSERT_PTR_NULL(c);
    const char *pre = "2: server: \"no-such-host.invalid:80\" is not HOST:PORT: "
                      "cannot resolve \"no-such-host.invalid\": ";
    CU_ASSERT_EQUAL(strncmp(err, pre, strlen(pre)), 0);

    c = conf_load("data/conf", err, sizeof(err));   /* a directory */
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_EQUAL(strncmp(err, "data/conf:", 10), 0);

    /* A small err buffer is truncated, never overrun; a NULL one is allowed. */
    char small[8];
    memset(small, 'x', sizeof(small));
    c = conf_load("data/conf/does-not-exist.conf", small, sizeof(small));
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_EQUAL(strlen(small), 7);
    c = conf_load("data/conf/does-not-exist.conf", NULL, 0);
    CU_ASSERT_PTR_NULL(c);
    c = conf_load(NULL, err, sizeof(err));
    CU_ASSERT_PTR_NULL(c);
    conf_free(NULL);
}

/* Every bad_*.conf fixture fails with what its first line announces. */
static void test_bad_fixtures(void)
{
    DIR *dir = opendir("data/conf");
    struct dirent *de;
    int n = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    while ((de = readdir(dir)) != NULL) {
        char path[512], first[512], want[1024], err[1024];
        size_t len = strlen(de->d_name);
        if (strncmp(de->d_name, "bad_", 4) != 0 || len < 6 ||
            strcmp(de->d_name + len - 5, ".conf") != 0)
            continue;
        snprintf(path, sizeof(path), "data/conf/%s", de->d_name);
        FILE *f = fopen(path, "r");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        CU_ASSERT_PTR_NOT_NULL(fgets(first, sizeof(first), f));
        fclose(f);
        CU_ASSERT_EQUAL_FATAL(strncmp(first, "# expect: ", 10), 0);
        first[strcspn(first, "\n")] = '\0';
        snprintf(want, sizeof(want), "%s:%s", path, first + 10);

        struct conf *c = conf_load(path, err, sizeof(err));
        CU_ASSERT_PTR_NULL(c);
        if (strcmp(err, want) != 0) {
            fprintf(stderr, "\n  %s\n  want: %s\n  got:  %s\n", path, want, err);
            CU_FAIL("wrong error for a bad fixture");
        }
        conf_free(c);
        n++;
    }
    closedir(dir);
    CU_ASSERT(n >= 5);
}

/* ---------------------------------------------------------------- identity */

/*
 * The files [auth] and [limits] name, made for the identity tests: a JWKS
 * and a keys file (only opened here: their modules read them), HS256
 * secrets of 32 bytes (the least RFC 7518 allows), of 31 and empty. In a
 * test's text and expected message, @JWKS@, @KEYS@, @HS@, @HS31@ and
 * @HS0@ stand for their paths.
 */
static struct {
    char jwks[64], keys[64], hs[64], hs31[64], hs0[64];
} af;

static void auth_files_make(void)
{
    write_temp("{\"keys\": []}\n", af.jwks, sizeof(af.jwks));
    write_temp("# no keys yet\n", af.keys, sizeof(af.keys));
    write_temp("0123456789abcdef0123456789abcdef\r\nsecond line ignored\n", af.hs, sizeof(af.hs));
    write_temp("0123456789abcdef0123456789abcde\n", af.hs31, sizeof(af.hs31));
    write_temp("", af.hs0, sizeof(af.hs0));
}

static void auth_files_remove(void)
{
    unlink(af.jwks);
    unlink(af.keys);
    unlink(af.hs);
    unlink(af.hs31);
    unlink(af.hs0);
}

/* IN with the @...@ names of af replaced by their paths, into OUT. */
static void subst(const char *in, char *out, size_t outlen)
{
    const struct { const char *tag, *path; } tags[] = {
        {"@JWKS@", af.jwks}, {"@KEYS@", af.keys}, {"@HS@", af.hs}, {"@HS31@", af.hs31},
        {"@HS0@", af.hs0},
    };
    size_t o = 0;

    while (*in) {
        const char *add = in;
        size_t n = 1, step = 1;
        for (size_t k = 0; k < N_OF(tags); k++) {
            size_t tl = strlen(tags[k].tag);
            if (strncmp(in, tags[k].tag, tl) == 0) {
                add = tags[k].path;
                n = strlen(add);
                step = tl;
                break;
            }
        }
        CU_ASSERT_FATAL(o + n < outlen);
        memcpy(out + o, add, n);
        o += n;
        in += step;
    }
    out[o] = '\0';
}

static struct conf *load_subst(const char *text, char *err, size_t errlen)
{
    char t[4096];
    subst(text, t, sizeof(t));
    return load_text(t, err, errlen);
}

static void expect_error_subst(const char *text, const char *want)
{
    char t[4096], w[1024];
    subst(text, t, sizeof(t));
    subst(want, w, sizeof(w));
    expect_error(t, w);
}

#define CF(f) offsetof(struct conf, f)
#define X63 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
#define X256 X63 X63 X63 X63 "xxxx"

/* Every [auth] directive and the new [limits] ones, read back. */
static void test_auth_values(void)
{
    static const struct { const char *lines; size_t off; const char *want; } str[] = {
        {"jwks_file = @JWKS@\n", CF(auth_jwks_file), "@JWKS@"},
        {"hs256_secret_file = @HS@\n", CF(auth_hs256_secret_file), "@HS@"},
        {"keys_file = @KEYS@\n", CF(auth_keys_file), "@KEYS@"},
        {"issuer = https://issuer.example.com/\n", CF(auth_issuer), "https://issuer.example.com/"},
        {"issuer = Example Issuer\n", CF(auth_issuer), "Example Issuer"},
        {"issuer =\n", CF(auth_issuer), ""},
        {"issuer = " X63 X63 X63 X63 "xxx\n", CF(auth_issuer), X63 X63 X63 X63 "xxx"},
        {"audience = api://default\n", CF(auth_audience), "api://default"},
        {"audience =\n", CF(auth_audience), ""},
        {"subject_claim = email\n", CF(auth_subject_claim), "email"},
        {"subject_claim = " X63 "\n", CF(auth_subject_claim), X63},
        {"org_claim = https://example.com/claims/org_id\n", CF(auth_org_claim),
         "https://example.com/claims/org_id"},
        {"plan_claim = a!#$%&'()*+,-./:;<=>?@[]^_`{|}~z\n", CF(auth_plan_claim),
         "a!#$%&'()*+,-./:;<=>?@[]^_`{|}~z"},
        {"key_prefix_required = sk_live_\n", CF(auth_key_prefix_required), "sk_live_"},
        {"key_prefix_required = A-z.0_~+/\n", CF(auth_key_prefix_required), "A-z.0_~+/"},
        {"key_prefix_required = " X63 "\n", CF(auth_key_prefix_required), X63},
        {"key_prefix_required =\n", CF(auth_key_prefix_required), ""},
        {"subject_header = X-User\n", CF(auth_subject_header), "X-User"},
        {"subject_header =\n", CF(auth_subject_header), ""},
        {"org_header = X-Tenant\n", CF(auth_org_header), "X-Tenant"},
        {"org_header =\n", CF(auth_org_header), ""},
        {"scopes_header = X-Scopes\n", CF(auth_scopes_header), "X-Scopes"},
        {"scopes_header =\n", CF(auth_scopes_header), ""},
        {"org_request_header = X-Tenant-Id\n", CF(auth_org_request_header), "X-Tenant-Id"},
    };
    static const struct { const char *lines; size_t off; uint64_t want; } dur[] = {
        {"leeway = 0ms\n", CF(auth_leeway_ms), 0},
        {"leeway = 5s\n", CF(auth_leeway_ms), 5000},
        {"leeway = 1h\n", CF(auth_leeway_ms), 3600000},
        {"leeway = 60m\n", CF(auth_leeway_ms), 3600000},
        {"key_cache_ttl = 0s\n", CF(auth_key_cache_ttl_ms), 0},
        {"key_cache_ttl = 250ms\n", CF(auth_key_cache_ttl_ms), 250},
        {"key_cache_ttl = 1h\n", CF(auth_key_cache_ttl_ms), 3600000},
    };
    static const struct { const char *lines; uint32_t org_n; uint64_t org_w;
                          uint32_t fail_n; uint64_t fail_w; } rate[] = {
        {"per_org = 1000/1m\n", 1000, 60000, 10, 60000},
        {"per_org = off\n", 0, 1, 10, 60000},
        {"per_ip_auth_failures = 3/15m\n", 0, 1, 3, 900000},
        {"per_ip_auth_failures = off\nper_org = 1/s\n", 1, 1000, 0, 1},
    };
    char text[4096], want[1024], err[1024];

    auth_files_make();
    for (size_t i = 0; i < N_OF(str); i++) {
        snprintf(text, sizeof(text), "[auth]\n%s" TAIL, str[i].lines);
        struct conf *c = load_subst(text, err, sizeof(err));
        if (!c)
            fprintf(stderr, "\n  %s: %s\n", str[i].lines, err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        subst(str[i].want, want, sizeof(want));
        CU_ASSERT_STRING_EQUAL((const char *)c + str[i].off, want);
        CU_ASSERT_TRUE(c->auth_set);
        conf_free(c);
    }
    for (size_t i = 0; i < N_OF(dur); i++) {
        snprintf(text, sizeof(text), "[auth]\n%s" TAIL, dur[i].lines);
        struct conf *c = load_text(text, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        uint64_t v;
        memcpy(&v, (const char *)c + dur[i].off, sizeof(v));
        CU_ASSERT_EQUAL(v, dur[i].want);
        conf_free(c);
    }
    for (size_t i = 0; i < N_OF(rate); i++) {
        snprintf(text, sizeof(text), "[limits]\n%s" TAIL, rate[i].lines);
        struct conf *c = load_text(text, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_EQUAL(c->per_org.count, rate[i].org_n);
        CU_ASSERT_EQUAL(c->per_org.window_ms, rate[i].org_w);
        CU_ASSERT_EQUAL(c->per_ip_auth_failures.count, rate[i].fail_n);
        CU_ASSERT_EQUAL(c->per_ip_auth_failures.window_ms, rate[i].fail_w);
        CU_ASSERT_FALSE(c->auth_set);  /* [limits] alone is no [auth] */
        conf_free(c);
    }

    /* All at once, in any order; other values keep their defaults. */
    struct conf *c = load_subst("[auth]\nkeys_file = @KEYS@\nhs256_secret_file = @HS@\n"
                                "jwks_file = @JWKS@\naudience = api\n" TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(c->auth_jwks_file, af.jwks);
    CU_ASSERT_STRING_EQUAL(c->auth_hs256_secret_file, af.hs);
    CU_ASSERT_STRING_EQUAL(c->auth_keys_file, af.keys);
    CU_ASSERT_STRING_EQUAL(c->auth_audience, "api");
    CU_ASSERT_STRING_EQUAL(c->auth_issuer, "");
    CU_ASSERT_EQUAL(c->auth_leeway_ms, 60000);
    CU_ASSERT_STRING_EQUAL(c->auth_plan_claim, "plan");
    conf_free(c);
    auth_files_remove();
}

static void test_auth_errors(void)
{
    static const struct { const char *text, *want; } t[] = {
        /* the section */
        {"[auth]\n[auth]\n" TAIL, "2: section [auth] appears twice (first at line 1)"},
        {"[auth main]\n" TAIL, "1: section [auth] takes no name (only [upstream NAME], "
         "[plan NAME] and [route NAME] do)"},
        {"[auth]\njwks = /x\n" TAIL, "2: unknown key 'jwks' in [auth]"},
        {"[auth]\nper_org = 1/1m\n" TAIL, "2: unknown key 'per_org' in [auth]"},
        {"[auth]\nauth = jwt\n" TAIL, "2: unknown key 'auth' in [auth]"},
        {"[limits]\nleeway = 1s\n" TAIL, "2: unknown key 'leeway' in [limits]"},
        {"[auth]\nleeway = 1s\n\nleeway = 2s\n" TAIL, "4: leeway is set twice in [auth] (first at "
         "line 2)"},
        /* files: they must be there, readable, and not directories */
        {"[auth]\njwks_file = /nonexistent/jwks.json\n" TAIL, "2: jwks_file: cannot open "
         "\"/nonexistent/jwks.json\": No such file or directory"},
        {"[auth]\nkeys_file = /nonexistent/keys\n" TAIL, "2: keys_file: cannot open "
         "\"/nonexistent/keys\": No such file or directory"},
        {"[auth]\nhs256_secret_file = /nonexistent/hs\n" TAIL, "2: hs256_secret_file: cannot "
         "open \"/nonexistent/hs\": No such file or directory"},
        {"[auth]\njwks_file = /tmp\n" TAIL, "2: jwks_file: \"/tmp\" is a directory, not a file"},
        {"[auth]\n\nkeys_file = /\n" TAIL, "3: keys_file: \"/\" is a directory, not a file"},
        {"[auth]\njwks_file =\n" TAIL, "2: jwks_file: empty value"},
        {"[auth]\nkeys_file =\n" TAIL, "2: keys_file: empty value"},
        {"[auth]\nhs256_secret_file =\n" TAIL, "2: hs256_secret_file: empty value"},
        {"[auth]\njwks_file = a\tb\n" TAIL, "2: jwks_file: \"a?b\" is not a usable path"},
        /* the HS256 secret: 32 bytes at least (RFC 7518 3.2) */
        {"[auth]\nhs256_secret_file = @HS31@\n" TAIL, "2: hs256_secret_file: the secret in "
         "\"@HS31@\" must be 32 to 511 characters"},
        {"[auth]\nhs256_secret_file = @HS0@\n" TAIL, "2: hs256_secret_file: \"@HS0@\" is empty"},
        /* durations */
        {"[auth]\nleeway = 61m\n" TAIL, "2: leeway: \"61m\" must be from 0ms to 1h"},
        {"[auth]\nleeway = 2h\n" TAIL, "2: leeway: \"2h\" must be from 0ms to 1h"},
        {"[auth]\nleeway = 60\n" TAIL, "2: leeway: \"60\" needs a unit (e.g. 60s or 60ms)"},
        {"[auth]\nleeway = -1s\n" TAIL, "2: leeway: \"-1s\" is not a duration (use e.g. 500ms, "
         "30s, 5m, 1h)"},
        {"[auth]\nleeway =\n" TAIL, "2: leeway: empty value"},
        {"[auth]\nkey_cache_ttl = 3601s\n" TAIL, "2: key_cache_ttl: \"3601s\" must be from 0ms "
         "to 1h"},
        {"[auth]\nkey_cache_ttl = 10\n" TAIL, "2: key_cache_ttl: \"10\" needs a unit (e.g. 10s "
         "or 10ms)"},
        /* issuer, audience: printable, up to 255 */
        {"[auth]\nissuer = a\tb\n" TAIL, "2: issuer: \"a?b\" may not contain control characters"},
        {"[auth]\naudience = " X256 "\n" TAIL, "2: audience: longer than 255 characters"},
        /* claim names */
        {"[auth]\nsubject_claim = user id\n" TAIL, "2: subject_claim: \"user id\" is not a claim "
         "name (printable ASCII without blanks, quotes or backslashes)"},
        {"[auth]\norg_claim = \"org\"\n" TAIL, "2: org_claim: \"\"org\"\" is not a claim name "
         "(printable ASCII without blanks, quotes or backslashes)"},
        {"[auth]\nplan_claim = a\\b\n" TAIL, "2: plan_claim: \"a\\b\" is not a claim name "
         "(printable ASCII without blanks, quotes or backslashes)"},
        {"[auth]\nsubject_claim = s\xc3\xbc" "b\n" TAIL, "2: subject_claim: \"s\xc3\xbc" "b\" is "
         "not a claim name (printable ASCII without blanks, quotes or backslashes)"},
        {"[auth]\nsubject_claim = a\x7f\n" TAIL, "2: subject_claim: \"a?\" is not a claim name "
         "(printable ASCII without blanks, quotes or backslashes)"},
        {"[auth]\nsubject_claim =\n" TAIL, "2: subject_claim: empty value"},
        {"[auth]\nplan_claim = " X63 "x\n" TAIL, "2: plan_claim: longer than 63 characters"},
        /* key_prefix_required: token68 without '=' */
        {"[auth]\nkey_prefix_required = sk live\n" TAIL, "2: key_prefix_required: \"sk live\" may "
         "hold only A-Z a-z 0-9 - . _ ~ + / (the characters of an API key)"},
        {"[auth]\nkey_prefix_required = sk=\n" TAIL, "2: key_prefix_required: \"sk=\" may hold "
         "only A-Z a-z 0-9 - . _ ~ + / (the characters of an API key)"},
        {"[auth]\nkey_prefix_required = sk:\n" TAIL, "2: key_prefix_required: \"sk:\" may hold "
         "only A-Z a-z 0-9 - . _ ~ + / (the characters of an API key)"},
        {"[auth]\nkey_prefix_required = " X63 "x\n" TAIL, "2: key_prefix_required: longer than "
         "63 characters"},
        /* headers */
        {"[auth]\nsubject_header = X Sub\n" TAIL, "2: subject_header: \"X Sub\" is not a header "
         "name (1-63 characters, no blanks)"},
        {"[auth]\norg_header = X-Org:\n" TAIL, "2: org_header: \"X-Org:\" is not a header name "
         "(1-63 characters, no blanks)"},
        {"[auth]\nscopes_header = X(S)\n" TAIL, "2: scopes_header: \"X(S)\" is not a header name "
         "(1-63 characters, no blanks)"},
        {"[auth]\nscopes_header = " X63 "x\n" TAIL, "2: scopes_header: \"" X63 "x\" is not a "
         "header name (1-63 characters, no blanks)"},
        {"[auth]\norg_request_header =\n" TAIL, "2: org_request_header: empty value"},
        {"[auth]\norg_request_header = X Org\n" TAIL, "2: org_request_header: \"X Org\" is not a "
         "header name (1-63 characters, no blanks)"},
        /* [limits] */
        {"[limits]\nper_org = 0/1m\n" TAIL, "2: per_org: \"0/1m\" is not a rate (use N/DURATION "
         "with N >= 1, e.g. 100/1m, 500/15m, 5000/1h)"},
        {"[limits]\nper_org =\n" TAIL, "2: per_org: empty value"},
        {"[limits]\nper_ip_auth_failures = 10\n" TAIL, "2: per_ip_auth_failures: \"10\" is not a "
         "rate (use N/DURATION with N >= 1, e.g. 100/1m, 500/15m, 5000/1h)"},
    };

    auth_files_make();
    for (size_t i = 0; i < N_OF(t); i++)
        expect_error_subst(t[i].text, t[i].want);
    auth_files_remove();
}

/* [plan NAME]: named like upstreams, each once; rates unset inherit. */
static void test_plans(void)
{
    char err[1024];
    struct conf *c = load_text("[plan gold]\nper_token = 1000/1m\nper_org = 50000/1h\n"
                               "[plan free]\n[plan x_1.-]\nper_org = off\n"
                               TAIL "[plan late]\nper_token = off\n"
                               "[plan u]\n", err, sizeof(err));   /* an upstream's name too */
    if (!c)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL_FATAL(c->n_plans, 5);
    const struct conf_plan *pl = c->plans;
    CU_ASSERT_STRING_EQUAL(pl[0].name, "gold");
    CU_ASSERT_EQUAL(pl[0].line, 1);
    CU_ASSERT_EQUAL(pl[0].per_token.count, 1000);
    CU_ASSERT_EQUAL(pl[0].per_token.window_ms, 60000);
    CU_ASSERT_EQUAL(pl[0].per_org.count, 50000);
    CU_ASSERT_EQUAL(pl[0].per_org.window_ms, 3600000);
    CU_ASSERT_STRING_EQUAL(pl[1].name, "free");
    CU_ASSERT_EQUAL(pl[1].line, 4);
    CU_ASSERT_FALSE(conf_rate_set(&pl[1].per_token));
    CU_ASSERT_FALSE(conf_rate_set(&pl[1].per_org));
    CU_ASSERT_STRING_EQUAL(pl[2].name, "x_1.-");
    CU_ASSERT_EQUAL(pl[2].line, 5);
    CU_ASSERT_FALSE(conf_rate_set(&pl[2].per_token));
    CU_ASSERT_EQUAL(pl[2].per_org.count, 0);        /* off */
    CU_ASSERT_EQUAL(pl[2].per_org.window_ms, 1);
    CU_ASSERT_STRING_EQUAL(pl[3].name, "late");
    CU_ASSERT_EQUAL(pl[3].line, 12);
    CU_ASSERT_EQUAL(pl[3].per_token.count, 0);
    CU_ASSERT_EQUAL(pl[3].per_token.window_ms, 1);
    CU_ASSERT_STRING_EQUAL(pl[4].name, "u");
    CU_ASSERT_EQUAL(pl[4].line, 14);
    /* the route after [plan x_1.-] is still read as a route */
    CU_ASSERT_EQUAL(c->n_routes, 1);
    CU_ASSERT_STRING_EQUAL(c->routes[0].prefix, "/");
    CU_ASSERT_FALSE(c->auth_set);
    conf_free(c);

    static const struct { const char *text, *want; } t[] = {
        {"[plan]\n" TAIL, "1: section [plan] needs a name: [plan NAME]"},
        {"[plan a/b]\n" TAIL, "1: [plan \"a/b\"]: a name is 1-63 characters of A-Z a-z 0-9 _ . -"},
        {"[plan a b]\n" TAIL, "1: [plan \"a b\"]: a name is 1-63 characters of A-Z a-z 0-9 _ . -"},
        {"[plan " X63 "x]\n" TAIL, "1: [plan \"" X63 "x\"]: a name is 1-63 characters of A-Z a-z "
         "0-9 _ . -"},
        {"[plan gold]\n[plan silver]\n\n[plan gold]\n" TAIL, "4: [plan gold] appears twice (first "
         "at line 1)"},
        {"[plan Gold]\n[plan gold]\n" TAIL, ""},     /* names are exact: two plans */
        {"[plan gold]\nper_ip = 1/1s\n" TAIL, "2: unknown key 'per_ip' in [plan gold]"},
        {"[plan gold]\nserver = 127.0.0.1:1\n" TAIL, "2: unknown key 'server' in [plan gold]"},
        {"[plan gold]\nper_token = 0/1m\n" TAIL, "2: per_token: \"0/1m\" is not a rate (use "
         "N/DURATION with N >= 1, e.g. 100/1m, 500/15m, 5000/1h)"},
        {"[plan gold]\nper_org = 5\n" TAIL, "2: per_org: \"5\" is not a rate (use N/DURATION with "
         "N >= 1, e.g. 100/1m, 500/15m, 5000/1h)"},
        {"[plan gold]\nper_org = 4294967296/1h\n" TAIL, "2: per_org: \"4294967296/1h\" is not a "
         "rate (use N/DURATION with N >= 1, e.g. 100/1m, 500/15m, 5000/1h)"},
        {"[plan gold]\nper_token =\n" TAIL, "2: per_token: empty value"},
        {"[plan gold]\nper_token = 1/1s\nper_token = 2/1s\n" TAIL, "3: per_token is set twice in "
         "[plan gold] (first at line 2)"},
    };
    for (size_t i = 0; i < N_OF(t); i++) {
        if (!t[i].want[0]) {
            c = load_text(t[i].text, err, sizeof(err));
            CU_ASSERT_PTR_NOT_NULL(c);
            CU_ASSERT(c && c->n_plans == 2);
            conf_free(c);
            continue;
        }
        expect_error(t[i].text, t[i].want);
    }

    /* CONF_MAX_PLANS, then one too many on its header's line. */
    char *text = malloc(64 * (CONF_MAX_PLANS + 1) + sizeof(TAIL));
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    size_t n = 0;
    for (int i = 0; i < CONF_MAX_PLANS; i++)
        n += (size_t)sprintf(text + n, "[plan p%d]\n", i);
    strcpy(text + n, TAIL);
    c = load_text(text, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->n_plans, CONF_MAX_PLANS);
    CU_ASSERT_STRING_EQUAL(c->plans[CONF_MAX_PLANS - 1].name, "p63");
    conf_free(c);
    n += (size_t)sprintf(text + n, "[plan p%d]\n", CONF_MAX_PLANS);
    strcpy(text + n, TAIL);
    expect_error(text, "65: too many [plan] sections (at most 64)");
    free(text);
}

/* A conf where every route's auth has what it needs: [auth] lines 1-3, [limits] 4-5. */
#define AUTHOK "[auth]\njwks_file = @JWKS@\nkeys_file = @KEYS@\n" \
               "[limits]\nhash_secret = 0123456789abcdef\n"

/* [route] auth, require_scope, forbid_api_keys, hide_credentials. */
static void test_route_auth(void)
{
    static const struct { const char *v; enum conf_auth want; } au[] = {
        {"none", CONF_AUTH_NONE}, {"jwt", CONF_AUTH_JWT}, {"api_key", CONF_AUTH_API_KEY},
        {"jwt_or_api_key", CONF_AUTH_JWT_OR_API_KEY}, {"JWT", CONF_AUTH_JWT},
        {"Api_Key", CONF_AUTH_API_KEY},
    };
    static const struct { const char *v, *want; } sc[] = {
        {"tasks:read", "tasks:read"},
        {"tasks:read,tasks:write", "tasks:read tasks:write"},
        {"tasks:read tasks:write", "tasks:read tasks:write"},
        {"a , b  c,d\te", "a b c d e"},
        {"https://api.example.com/x.read_all-1", "https://api.example.com/x.read_all-1"},
        {"A Z a z 0 9 . _ : / -", "A Z a z 0 9 . _ : / -"},
        {"read readwrite", "read readwrite"},          /* a prefix of another is another */
        {"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16"},
        /* 255 characters: tokens of 84, 84 and 85, and two blanks */
        {X63 "xxxxxxxxxxxxxxxxxxxxa," X63 "xxxxxxxxxxxxxxxxxxxxb " X63 "xxxxxxxxxxxxxxxxxxxxxc",
         X63 "xxxxxxxxxxxxxxxxxxxxa " X63 "xxxxxxxxxxxxxxxxxxxxb " X63 "xxxxxxxxxxxxxxxxxxxxxc"},
    };
    char text[4096], err[1024];
    struct conf *c;

    auth_files_make();
    for (size_t i = 0; i < N_OF(au); i++) {
        snprintf(text, sizeof(text), AUTHOK TAIL "auth = %s\n", au[i].v);
        c = load_subst(text, err, sizeof(err));
        if (!c)
            fprintf(stderr, "\n  auth = %s: %s\n", au[i].v, err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_EQUAL(c->routes[0].auth, au[i].want);
        conf_free(c);
    }
    for (size_t i = 0; i < N_OF(sc); i++) {
        snprintf(text, sizeof(text), AUTHOK TAIL "auth = jwt\nrequire_scope = %s\n", sc[i].v);
        c = load_subst(text, err, sizeof(err));
        if (!c)
            fprintf(stderr, "\n  require_scope = %s: %s\n", sc[i].v, err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_STRING_EQUAL(c->routes[0].require_scope, sc[i].want);
        conf_free(c);
    }
    CU_ASSERT_EQUAL(strlen(sc[N_OF(sc) - 1].want), 255);
    c = load_subst(AUTHOK TAIL "auth = jwt_or_api_key\nforbid_api_keys = yes\n"
                   "hide_credentials = yes\n"
                   "[route s]\nprefix = /s\nupstream = u\nhide_credentials = no\n"
                   "forbid_api_keys = no\n", err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_TRUE(c->routes[0].forbid_api_keys);
    CU_ASSERT_TRUE(c->routes[0].hide_credentials);
    CU_ASSERT_FALSE(c->routes[1].forbid_api_keys);
    CU_ASSERT_FALSE(c->routes[1].hide_credentials);
    CU_ASSERT_EQUAL(c->routes[1].auth, CONF_AUTH_NONE);
    CU_ASSERT_STRING_EQUAL(c->routes[1].require_scope, "");
    conf_free(c);

    /* AUTHOK and TAIL are lines 1-10: the route's own lines start at 11. */
    static const struct { const char *text, *want; } t[] = {
        {AUTHOK TAIL "auth = oauth\n", "11: auth: \"oauth\" is not one of jwt, api_key, "
         "jwt_or_api_key, none"},
        {AUTHOK TAIL "auth = jwt,api_key\n", "11: auth: \"jwt,api_key\" is not one of jwt, "
         "api_key, jwt_or_api_key, none"},
        {AUTHOK TAIL "auth =\n", "11: auth: empty value"},
        {AUTHOK TAIL "auth = jwt\nauth = none\n", "12: auth is set twice in [route r] (first at "
         "line 11)"},
        {AUTHOK TAIL "auth = jwt\nforbid_api_keys = maybe\n", "12: forbid_api_keys: \"maybe\" is "
         "not yes or no"},
        {AUTHOK TAIL "hide_credentials = 2\n", "11: hide_credentials: \"2\" is not yes or no"},
        {AUTHOK TAIL "auth = jwt\nrequire_scope =\n", "12: require_scope: empty value"},
        {AUTHOK TAIL "auth = jwt\nrequire_scope = read;write\n", "12: require_scope: "
         "\"read;write\" is not a scope (A-Z a-z 0-9 . _ : / -; scopes are separated by commas or "
         "blanks)"},
        {AUTHOK TAIL "auth = jwt\nrequire_scope = read, t\xc3\xa2sks\n", "12: require_scope: "
         "\"t\xc3\xa2sks\" is not a scope (A-Z a-z 0-9 . _ : / -; scopes are separated by commas "
         "or blanks)"},
        {AUTHOK TAIL "auth = jwt\nrequire_scope = \"read\"\n", "12: require_scope: \"\"read\"\" is "
         "not a scope (A-Z a-z 0-9 . _ : / -; scopes are separated by commas or blanks)"},
        {AUTHOK TAIL "auth = jwt\nrequire_scope = read,\n", "12: require_scope: empty item in the "
         "list \"read,\""},
        {AUTHOK TAIL "auth = jwt\nrequire_scope = a,,b\n", "12: require_scope: empty item in the "
         "list \"a,,b\""},
        {AUTHOK TAIL "auth = jwt\nrequire_scope = a b a\n", "12: require_scope: \"a\" is listed "
         "twice"},
        {AUTHOK TAIL "auth = jwt\nrequire_scope = a:b, a:b\n", "12: require_scope: \"a:b\" is "
         "listed twice"},
        {AUTHOK TAIL "auth = jwt\nrequire_scope = 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17\n",
         "12: require_scope: too many scopes (at most 16)"},
        {AUTHOK TAIL "auth = jwt\nrequire_scope = " X63 X63 "aa " X63 X63 "bb\n",
         "12: require_scope: longer than 255 characters"},
        {AUTHOK TAIL "auth = jwt\nrequire_scope = " X256 "\n", "12: require_scope: longer than "
         "255 characters"},
        {AUTHOK TAIL "auth = jwt\nrequire_scope = a\nrequire_scope = b\n", "13: require_scope is "
         "set twice in [route r] (first at line 12)"},
    };
    for (size_t i = 0; i < N_OF(t); i++)
        expect_error_subst(t[i].text, t[i].want);
    auth_files_remove();
}

/* The checks of the whole file: what a route's auth needs, what it can enforce. */
static void test_auth_checks(void)
{
    /* TAIL is lines 1-5 when first; "" wants the conf to load. */
    static const struct { const char *text, *want; } t[] = {
        /* what loads */
        {"[auth]\njwks_file = @JWKS@\n" TAIL "auth = jwt\n", ""},
        {"[auth]\nhs256_secret_file = @HS@\n" TAIL "auth = jwt\nrequire_scope = a\n"
         "forbid_api_keys = yes\n", ""},
        {"[auth]\nkeys_file = @KEYS@\n[limits]\nhash_secret = 0123456789abcdef\n" TAIL
         "auth = api_key\nrequire_scope = tasks:read\n", ""},
        {"[redis]\n[limits]\nhash_secret_file = @HS@\n" TAIL "auth = api_key\n", ""},
        {"[auth]\njwks_file = @JWKS@\n[redis]\n[limits]\nhash_secret = 0123456789abcdef\n" TAIL
         "auth = jwt_or_api_key\nforbid_api_keys = yes\nhide_credentials = yes\n", ""},
        /* [auth] with no route using it; hide_credentials without auth */
        {"[auth]\nkeys_file = @KEYS@\njwks_file = @JWKS@\n" TAIL, ""},
        {TAIL "hide_credentials = yes\n", ""},
        {TAIL "auth = none\nforbid_api_keys = no\n", ""},
        /* keys for tokens */
        {TAIL "auth = jwt\n", "6: [route r]: auth = jwt needs [auth] jwks_file or "
         "hs256_secret_file (the keys tokens are verified with)"},
        {"[auth]\n" TAIL "\nauth = jwt\n", "8: [route r]: auth = jwt needs [auth] jwks_file or "
         "hs256_secret_file (the keys tokens are verified with)"},
        {"[auth]\nkeys_file = @KEYS@\n[limits]\nhash_secret = 0123456789abcdef\n" TAIL
         "auth = jwt_or_api_key\n", "10: [route r]: auth = jwt_or_api_key needs [auth] jwks_file "
         "or hs256_secret_file (the keys tokens are verified with)"},
        /* where API key records are */
        {"[limits]\nhash_secret = 0123456789abcdef\n" TAIL "\nauth = api_key\n", "9: [route r]: "
         "auth = api_key needs [auth] keys_file or a [redis] section (where the API key records "
         "are)"},
        {"[auth]\njwks_file = @JWKS@\n[limits]\nhash_secret = 0123456789abcdef\n" TAIL
         "auth = jwt_or_api_key\n", "10: [route r]: auth = jwt_or_api_key needs [auth] keys_file "
         "or a [redis] section (where the API key records are)"},
        /* the HMAC key of API key ids */
        {"[redis]\n" TAIL "auth = api_key\n", "7: [route r]: auth = api_key needs [limits] "
         "hash_secret or hash_secret_file: API keys are known by their HMAC under it, and the "
         "random secret of each start would make every key unknown after a restart"},
        {"[auth]\nkeys_file = @KEYS@\njwks_file = @JWKS@\n" TAIL "auth = jwt_or_api_key\n",
         "9: [route r]: auth = jwt_or_api_key needs [limits] hash_secret or hash_secret_file: API "
         "keys are known by their HMAC under it, and the random secret of each start would make "
         "every key unknown after a restart"},
        /* what auth = none could never enforce */
        {TAIL "require_scope = tasks:read\n", "6: [route r]: require_scope needs auth = jwt, "
         "api_key or jwt_or_api_key (with auth = none no credentials are checked: it could never "
         "be enforced)"},
        {TAIL "auth = none\nrequire_scope = a\n", "7: [route r]: require_scope needs auth = jwt, "
         "api_key or jwt_or_api_key (with auth = none no credentials are checked: it could never "
         "be enforced)"},
        {TAIL "forbid_api_keys = yes\n", "6: [route r]: forbid_api_keys = yes needs auth = jwt or "
         "jwt_or_api_key (with auth = none no credentials are checked: it could never be "
         "enforced)"},
        {TAIL "forbid_api_keys = yes\nrequire_scope = a\n", "6: [route r]: forbid_api_keys = yes "
         "needs auth = jwt or jwt_or_api_key (with auth = none no credentials are checked: it "
         "could never be enforced)"},
        {TAIL "require_scope = a\nforbid_api_keys = yes\n", "6: [route r]: require_scope needs "
         "auth = jwt, api_key or jwt_or_api_key (with auth = none no credentials are checked: it "
         "could never be enforced)"},
        /* ... and what auth = api_key refuses whole */
        {"[auth]\nkeys_file = @KEYS@\n[limits]\nhash_secret = 0123456789abcdef\n" TAIL
         "auth = api_key\nforbid_api_keys = yes\n", "11: [route r]: forbid_api_keys = yes with "
         "auth = api_key (line 10) refuses every caller; it needs auth = jwt or jwt_or_api_key"},
        /* keys_file is for the embedded default: not with [redis], before or after it */
        {"[redis]\n[auth]\n\nkeys_file = @KEYS@\n" TAIL, "4: keys_file is for the embedded "
         "default without [redis]; with [redis] the records are in Redis (docs/apikeys.md)"},
        {"[auth]\nkeys_file = @KEYS@\n" TAIL "[redis]\n", "2: keys_file is for the embedded "
         "default without [redis]; with [redis] the records are in Redis (docs/apikeys.md)"},
        /* the first route of the file with a problem */
        {"[auth]\njwks_file = @JWKS@\n" TAIL "auth = jwt\n[route s]\nprefix = /s\nupstream = u\n"
         "auth = api_key\n[route t]\nprefix = /t\nupstream = u\nrequire_scope = x\n",
         "12: [route s]: auth = api_key needs [auth] keys_file or a [redis] section (where the "
         "API key records are)"},
    };
    char err[1024];

    auth_files_make();
    for (size_t i = 0; i < N_OF(t); i++) {
        if (t[i].want[0]) {
            expect_error_subst(t[i].text, t[i].want);
            continue;
        }
        struct conf *c = load_subst(t[i].text, err, sizeof(err));
        if (!c)
            fprintf(stderr, "\n  case %zu: %s\n", i, err);
        CU_ASSERT_PTR_NOT_NULL(c);
        conf_free(c);
    }
    auth_files_remove();
}

/* ---------------------------------------------------------------- the table read back */

/* CONF dumped, as a malloc'd string; the first line (naming the path) cut off. */
static char *dump_text(const struct conf *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(conf_dump(c, f), 0);
    CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
    char *nl = strchr(buf, '\n');
    CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
    memmove(buf, nl + 1, strlen(nl + 1) + 1);
    return buf;
}

/*
 * TEXT loads, and so does its dump, to the same values: the dump dumped
 * again is the same text, and fields a dump could lose compare equal.
 * I names the case in messages.
 */
static void check_round_trip(const char *text, size_t i)
{
    char err[1024];

    struct conf *a = load_text(text, err, sizeof(err));
    if (!a)
        fprintf(stderr, "\n  case %zu: %s\n", i, err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    char *da = dump_text(a);
    struct conf *b = load_text(da, err, sizeof(err));
    if (!b)
        fprintf(stderr, "\n  case %zu: the dump does not load: %s\n%s\n", i, err, da);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    char *db = dump_text(b);
    if (strcmp(da, db) != 0)
        fprintf(stderr, "\n  case %zu: dump 1:\n%s\n  dump 2:\n%s\n", i, da, db);
    CU_ASSERT_STRING_EQUAL(da, db);

    /* Values the dump might have lost, compared field by field. */
    CU_ASSERT_EQUAL(a->redis_enabled, b->redis_enabled);
    CU_ASSERT_EQUAL(a->n_listen, b->n_listen);
    CU_ASSERT_EQUAL(a->n_admin_listen, b->n_admin_listen);
    CU_ASSERT_EQUAL(a->n_trusted_proxies, b->n_trusted_proxies);
    CU_ASSERT_EQUAL(memcmp(a->trusted_proxies, b->trusted_proxies,
                           sizeof(a->trusted_proxies)), 0);
    CU_ASSERT_EQUAL(a->max_body_size, b->max_body_size);
    CU_ASSERT_EQUAL(a->keepalive_timeout_ms, b->keepalive_timeout_ms);
    CU_ASSERT_EQUAL(a->workers, b->workers);
    CU_ASSERT_EQUAL(a->per_ip.count, b->per_ip.count);
    CU_ASSERT_EQUAL(a->per_ip.window_ms, b->per_ip.window_ms);
    for (size_t l = 0; l < a->n_listen; l++) {
        CU_ASSERT_STRING_EQUAL(a->listen[l].text, b->listen[l].text);
        CU_ASSERT_EQUAL(a->listen[l].tls, b->listen[l].tls);
        CU_ASSERT_EQUAL(a->listen[l].proxy_protocol, b->listen[l].proxy_protocol);
    }
    CU_ASSERT_EQUAL_FATAL(a->n_certs, b->n_certs);
    for (size_t k = 0; k < a->n_certs; k++) {
        CU_ASSERT_STRING_EQUAL(a->certs[k].certificate, b->certs[k].certificate);
        CU_ASSERT_STRING_EQUAL(a->certs[k].key, b->certs[k].key);
    }
    CU_ASSERT_EQUAL(a->tls_protocols, b->tls_protocols);
    CU_ASSERT_STRING_EQUAL(a->tls_ciphers, b->tls_ciphers);
    CU_ASSERT_EQUAL(a->tls_handshake_timeout_ms, b->tls_handshake_timeout_ms);
    CU_ASSERT_EQUAL(a->cors.set, b->cors.set);
    CU_ASSERT_EQUAL(a->cors.n_origins, b->cors.n_origins);
    CU_ASSERT_EQUAL(memcmp(a->cors.origins, b->cors.origins, sizeof(a->cors.origins)), 0);
    CU_ASSERT_EQUAL(a->cors.methods, b->cors.methods);
    CU_ASSERT_STRING_EQUAL(a->cors.headers, b->cors.headers);
    CU_ASSERT_EQUAL(a->cors.max_age_s, b->cors.max_age_s);
    CU_ASSERT_EQUAL(a->cors.credentials, b->cors.credentials);
    /* identity */
    CU_ASSERT_EQUAL(a->per_org.count, b->per_org.count);
    CU_ASSERT_EQUAL(a->per_org.window_ms, b->per_org.window_ms);
    CU_ASSERT_EQUAL(a->per_ip_auth_failures.count, b->per_ip_auth_failures.count);
    CU_ASSERT_EQUAL(a->per_ip_auth_failures.window_ms, b->per_ip_auth_failures.window_ms);
    CU_ASSERT_EQUAL(a->auth_set, b->auth_set);
    CU_ASSERT_STRING_EQUAL(a->auth_jwks_file, b->auth_jwks_file);
    CU_ASSERT_STRING_EQUAL(a->auth_hs256_secret_file, b->auth_hs256_secret_file);
    CU_ASSERT_STRING_EQUAL(a->auth_issuer, b->auth_issuer);
    CU_ASSERT_STRING_EQUAL(a->auth_audience, b->auth_audience);
    CU_ASSERT_EQUAL(a->auth_leeway_ms, b->auth_leeway_ms);
    CU_ASSERT_STRING_EQUAL(a->auth_subject_claim, b->auth_subject_claim);
    CU_ASSERT_STRING_EQUAL(a->auth_org_claim, b->auth_org_claim);
    CU_ASSERT_STRING_EQUAL(a->auth_plan_claim, b->auth_plan_claim);
    CU_ASSERT_STRING_EQUAL(a->auth_keys_file, b->auth_keys_file);
    CU_ASSERT_EQUAL(a->auth_key_cache_ttl_ms, b->auth_key_cache_ttl_ms);
    CU_ASSERT_STRING_EQUAL(a->auth_key_prefix_required, b->auth_key_prefix_required);
    CU_ASSERT_STRING_EQUAL(a->auth_subject_header, b->auth_subject_header);
    CU_ASSERT_STRING_EQUAL(a->auth_org_header, b->auth_org_header);
    CU_ASSERT_STRING_EQUAL(a->auth_scopes_header, b->auth_scopes_header);
    CU_ASSERT_STRING_EQUAL(a->auth_org_request_header, b->auth_org_request_header);
    CU_ASSERT_EQUAL_FATAL(a->n_plans, b->n_plans);
    for (size_t k = 0; k < a->n_plans; k++) {
        const struct conf_plan *pa = &a->plans[k], *pb = &b->plans[k];
        CU_ASSERT_STRING_EQUAL(pa->name, pb->name);
        CU_ASSERT_EQUAL(pa->per_token.count, pb->per_token.count);
        CU_ASSERT_EQUAL(pa->per_token.window_ms, pb->per_token.window_ms);
        CU_ASSERT_EQUAL(pa->per_org.count, pb->per_org.count);
        CU_ASSERT_EQUAL(pa->per_org.window_ms, pb->per_org.window_ms);
    }
    CU_ASSERT_EQUAL_FATAL(a->n_routes, b->n_routes);
    for (size_t r = 0; r < a->n_routes; r++) {
        const struct conf_route *ra = &a->routes[r], *rb = &b->routes[r];
        /* the new route fields, whole (routes are zeroed, then filled) */
        CU_ASSERT_EQUAL(ra->n_hosts, rb->n_hosts);
        CU_ASSERT_EQUAL(memcmp(ra->hosts, rb->hosts, sizeof(ra->hosts)), 0);
        CU_ASSERT_STRING_EQUAL(ra->match_header, rb->match_header);
        CU_ASSERT_STRING_EQUAL(ra->match_value, rb->match_value);
        CU_ASSERT_EQUAL(ra->has_profile, rb->has_profile);
        CU_ASSERT_EQUAL(ra->profile, rb->profile);
        CU_ASSERT_EQUAL(ra->has_expose_upstream_5xx, rb->has_expose_upstream_5xx);
        CU_ASSERT_EQUAL(ra->expose_upstream_5xx, rb->expose_upstream_5xx);
        CU_ASSERT_EQUAL(ra->has_max_error_body, rb->has_max_error_body);
        CU_ASSERT_EQUAL(ra->max_error_body, rb->max_error_body);
        CU_ASSERT_EQUAL(ra->has_max_body_size, rb->has_max_body_size);
        CU_ASSERT_EQUAL(ra->max_body_size, rb->max_body_size);
        CU_ASSERT_EQUAL(ra->has_client_timeout, rb->has_client_timeout);
        CU_ASSERT_EQUAL(ra->client_timeout_ms, rb->client_timeout_ms);
        CU_ASSERT_EQUAL(ra->has_timeout, rb->has_timeout);
        CU_ASSERT_EQUAL(ra->timeout_ms, rb->timeout_ms);
        CU_ASSERT_EQUAL(ra->has_connect_timeout, rb->has_connect_timeout);
        CU_ASSERT_EQUAL(ra->connect_timeout_ms, rb->connect_timeout_ms);
        CU_ASSERT_EQUAL(ra->n_code_map, rb->n_code_map);
        CU_ASSERT_EQUAL(memcmp(ra->code_map, rb->code_map, sizeof(ra->code_map)), 0);
        CU_ASSERT_EQUAL(ra->cors.set, rb->cors.set);
        CU_ASSERT_EQUAL(memcmp(ra->cors.origins, rb->cors.origins,
                               sizeof(ra->cors.origins)), 0);
        CU_ASSERT_EQUAL(ra->cors.n_origins, rb->cors.n_origins);
        CU_ASSERT_EQUAL(ra->cors.methods, rb->cors.methods);
        CU_ASSERT_STRING_EQUAL(ra->cors.headers, rb->cors.headers);
        CU_ASSERT_EQUAL(ra->cors.max_age_s, rb->cors.max_age_s);
        CU_ASSERT_EQUAL(ra->cors.credentials, rb->cors.credentials);
        CU_ASSERT_EQUAL(ra->host_mode, rb->host_mode);
        CU_ASSERT_STRING_EQUAL(ra->host_name, rb->host_name);
        CU_ASSERT_EQUAL(ra->auth, rb->auth);
        CU_ASSERT_STRING_EQUAL(ra->require_scope, rb->require_scope);
        CU_ASSERT_EQUAL(ra->forbid_api_keys, rb->forbid_api_keys);
        CU_ASSERT_EQUAL(ra->hide_credentials, rb->hide_credentials);
        CU_ASSERT_EQUAL(a->routes[r].methods, b->routes[r].methods);
        CU_ASSERT_EQUAL(a->routes[r].per_token.count, b->routes[r].per_token.count);
        CU_ASSERT_EQUAL(a->routes[r].per_token.window_ms, b->routes[r].per_token.window_ms);
        CU_ASSERT_EQUAL(a->routes[r].per_ip.window_ms, b->routes[r].per_ip.window_ms);
        CU_ASSERT_STRING_EQUAL(a->routes[r].prefix, b->routes[r].prefix);
    }
    CU_ASSERT_EQUAL_FATAL(a->n_upstreams, b->n_upstreams);
    for (size_t u = 0; u < a->n_upstreams; u++) {
        const struct conf_upstream *ua = &a->upstreams[u], *ub = &b->upstreams[u];
        CU_ASSERT_EQUAL(ua->n_servers, ub->n_servers);
        CU_ASSERT_EQUAL(ua->retry_backoff_ms, ub->retry_backoff_ms);
        CU_ASSERT_EQUAL(ua->tls, ub->tls);
        CU_ASSERT_EQUAL(ua->verify, ub->verify);
        CU_ASSERT_STRING_EQUAL(ua->ca_file, ub->ca_file);
        CU_ASSERT_STRING_EQUAL(ua->server_name, ub->server_name);
        CU_ASSERT_STRING_EQUAL(ua->client_certificate, ub->client_certificate);
        CU_ASSERT_STRING_EQUAL(ua->client_key, ub->client_key);
        CU_ASSERT_EQUAL(ua->host_mode, ub->host_mode);
        CU_ASSERT_STRING_EQUAL(ua->host_name, ub->host_name);
    }
    free(da);
    free(db);
    conf_free(a);
    conf_free(b);
}

/*
 * Each conf (TAIL follows) dumped loads with the same values: its dump
 * dumped again is the same text, and fields a dump could lose compare equal.
 */
static void test_dump_round_trip(void)
{
    static const char *const t[] = {
        "",
        /* good.conf without its secrets, and more */
        "[server]\nlisten = 127.0.0.1:18080\nlisten = [::1]:18080\nworkers = 3\n"
        "max_connections = 500\nmax_header_size = 32k\nmax_body_size = 2m\n"
        "client_timeout = 15s\nkeepalive_timeout = 75s\nshutdown_timeout = 5s\n"
        "log_level = debug\naccess_log = /var/log/envelopd/access.log\nmerge_slashes = no\n"
        "routes_ignore_case = no\n"
        "[envelope]\nprofile = problem\nexpose_upstream_5xx = yes\nmax_error_body = 128k\n"
        "hide_headers = X-Internal-*, X-Backend\nhide_headers = X-Trace-Host\n"
        "[correlation]\nheader = X-Request-Id\naccept = X-Request-Id, X-Amzn-Trace-Id\n"
        "[redis]\naddress = unix:/run/redis/redis.sock\ndb = 3\nkey_prefix = gw1:\n"
        "timeout = 100ms\non_error = local\n"
        "[limits]\nipv6_prefix = 48\ntoken_header = X-Api-Key\nper_token = 1000/1h\n"
        "per_ip = 50/s\ntrusted_proxies = 127.0.0.0/8, ::1, 10.1.2.3/8, ::ffff:172.16.0.0/108\n"
        "[admin]\nlisten = 127.0.0.1:9900, [::1]:9900\n"
        "[upstream v]\nserver = 127.0.0.1:9001, localhost:9003\nkeepalive = 8\n"
        "keepalive_timeout = 4s\nkeepalive_requests = 1000\ntunnel_timeout = 15m\n"
        "connect_timeout = 500ms\ntimeout = 10s\nretries = 3\nretry_backoff = 0ms\n"
        "retry_backoff_max = 200ms\ndown_backoff = 2s\ndown_backoff_max = 1m\n"
        "[route tasks]\nprefix = /api/v1/t;x=1\nupstream = v\nstrip_prefix = yes\n"
        "methods = GET, POST, PATCH, DELETE, M-SEARCH, SOURCE\nrequire_token = yes\n"
        "per_token = off\nper_ip = 10/1500ms\n",
        /* odd but valid values: extremes, empty ones, no IPv4 listener */
        "[server]\nmax_body_size = 18446744073709551615\nshutdown_timeout = 0ms\n"
        "access_log = off\nlisten = [::]:1\n"
        "[redis]\npassword =\nkey_prefix =\n[limits]\nper_ip = off\nper_token = 4294967295/24h\n",
        /* Redis off: its section is shown commented out, so it stays off */
        "[limits]\ntrusted_proxies = 0.0.0.0/0, ::/0\n",
        /* TLS: listen flags, pairs, versions, upstreams over TLS */
        "[server]\nlisten = 127.0.0.1:8080, 0.0.0.0:8443 proxy_protocol tls\n"
        "listen = [::]:8443 tls, 10.0.0.1:81 proxy_protocol\n" TP
        "[tls]\ncertificate = /etc/tls/a.pem\nkey = /etc/tls/a.key\n"
        "certificate = rel/b c.pem\nkey = /etc/tls/b.key\nprotocols = tlsv1.3, TLSv1.2 TLSv1.1\n"
        "ciphers = HIGH:!aNULL:!MD5\nhandshake_timeout = 1500ms\n"
        "[upstream s]\nserver = 127.0.0.1:9443\ntls = yes\nverify = no\nca_file = /ca.pem\n"
        "server_name = 10.0.0.9\nclient_certificate = /c.pem\nclient_key = /k.pem\n",
        /* all four versions; TLS listener on IPv6 only */
        "[server]\nlisten = [::1]:443 tls\n[tls]\ncertificate = /a\nkey = /b\n"
        "protocols = TLSv1.0 TLSv1.1 TLSv1.2 TLSv1.3\n",
        /* hosts, match_header, overrides, code_map, CORS, Host (TAIL's route keeps none) */
        "[cors]\norigins = https://App.example.com:443, http://localhost:3000\n"
        "methods = GET, POST\nheaders = Content-Type, X-Api-Key\nmax_age = 90s\n"
        "credentials = yes\n"
        "[upstream v]\nserver = 127.0.0.1:9002\nhost = Api.Internal:8443\n"
        "[upstream w]\nserver = 127.0.0.1:9003\nhost = upstream\n"
        "[route v1]\nprefix = /v1\nupstream = v\nhosts = API.example.com., *.example.org\n"
        "hosts = 10.0.0.1, [0::1]\nmatch_header = X-Api-Version :  2\nprofile = simple\n"
        "expose_upstream_5xx = no\nmax_error_body = 8k\nmax_body_size = 18446744073709551615\n"
        "client_timeout = 5s\ntimeout = 3s\nconnect_timeout = 250ms\n"
        "code_map = 404:TASK_NOT_FOUND, 409 : CONFLICT\ncode_map = 422:INVALID_TASK\n"
        "cors_origins = https://app.example.com, https://*.example.com:8443\n"
        "cors_methods = GET, POST\ncors_headers = Authorization, X-Api-Version\n"
        "cors_max_age = 0s\ncors_credentials = yes\nhost = keep\n"
        "[route v2]\nprefix = /v2\nupstream = w\nhosts = api.example.com\nprofile = problem\n"
        "cors_origins = *\nhost = v2.example\n"
        "[route v3]\nprefix = /v1\nupstream = w\nmatch_header = X-Api-Version: 3\n"
        "timeout = 1h\nhost = upstream\n",
        /* [cors] set by origins alone; "*" without credentials */
        "[cors]\norigins = *\n",
        /* an empty [auth] stays present */
        "[auth]\n",
        /* identity without files (test_dump_auth has them): odd values, empty headers */
        "[limits]\nper_org = 100/1m\nper_ip_auth_failures = off\n"
        "[auth]\nissuer = Example Issuer\naudience = api://default\nleeway = 0ms\n"
        "subject_claim = a!#$%&'()*+,-./:;<=>?@[]^_`{|}~z\norg_claim = https://x.example/org\n"
        "key_cache_ttl = 1h\nkey_prefix_required = a-Z.0_~+/\nsubject_header =\n"
        "org_header =\nscopes_header =\norg_request_header = X-Tenant\n"
        "[plan gold]\nper_token = off\nper_org = 1/500ms\n[plan free]\n"
        "[plan u]\nper_org = 4294967295/24h\n",
    };
    for (size_t i = 0; i < N_OF(t); i++) {
        char text[4096];
        snprintf(text, sizeof(text), "%s%s", t[i], TAIL);
        check_round_trip(text, i);
    }
}

/*
 * Identity in the dump: [auth] commented out without the section (its
 * presence is auth_set), written with it; every [plan]; the route and
 * [limits] rows. A conf with every new directive loads back the same.
 */
static void test_dump_auth(void)
{
    char err[1024], want[2048];
    struct conf *c = load_text(TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char *d = dump_text(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\n# No [auth] section: no JWT keys, no keys file; these "
                                     "defaults apply:\n# [auth]\n"
                                     "# jwks_file =   (none)\n# hs256_secret_file =   (none)\n"
                                     "# issuer =   (none: not checked)\n"
                                     "# audience =   (none: not checked)\n# leeway = 1m\n"
                                     "# subject_claim = sub\n# org_claim = org\n"
                                     "# plan_claim = plan\n# keys_file =   (none)\n"
                                     "# key_cache_ttl = 10s\n# key_prefix_required =   (none)\n"
                                     "# subject_header = X-Auth-Subject\n"
                                     "# org_header = X-Auth-Org\n"
                                     "# scopes_header = X-Auth-Scopes\n"
                                     "# org_request_header = X-Org-Id\n\n"));
    CU_ASSERT_PTR_NULL(strstr(d, "\n[auth]\n"));
    CU_ASSERT_PTR_NULL(strstr(d, "[plan "));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\nipv6_prefix = 64\nper_org = off\n"
                                     "per_ip_auth_failures = 10/1m\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\nrequire_token = no\nauth = none\n"
                                     "# require_scope =   (none)\nforbid_api_keys = no\n"
                                     "hide_credentials = no\n"
                                     "# per_token =   (unset: that of [limits])\n"));
    free(d);
    conf_free(c);

    /* Every new directive set; the files exist. */
    auth_files_make();
    char text[4096];
    subst("[limits]\nhash_secret_file = @HS@\nper_org = 600/1m\nper_ip_auth_failures = 5/30s\n"
          "[auth]\njwks_file = @JWKS@\nhs256_secret_file = @HS@\nkeys_file = @KEYS@\n"
          "issuer = https://issuer.example.com/\naudience = api.example.com\nleeway = 90s\n"
          "subject_claim = email\norg_claim = https://example.com/org\nplan_claim = tier\n"
          "key_cache_ttl = 0s\nkey_prefix_required = sk_live_\nsubject_header = X-User\n"
          "org_header =\nscopes_header = X-Scopes\norg_request_header = X-Tenant\n"
          "[plan gold]\nper_token = 10000/1h\nper_org = off\n[plan free]\nper_token = 10/m\n"
          TAIL "auth = jwt_or_api_key\nrequire_scope = tasks:read,  tasks:write admin\n"
          "forbid_api_keys = yes\nhide_credentials = yes\n"
          "[route keys]\nprefix = /keys\nupstream = u\nauth = api_key\n"
          "require_scope = keys:read\n"
          "[route jwt]\nprefix = /jwt\nupstream = u\nauth = JWT\nhide_credentials = yes\n",
          text, sizeof(text));
    check_round_trip(text, 100);
    c = load_text(text, err, sizeof(err));
    if (!c)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    d = dump_text(c);
    snprintf(want, sizeof(want),
             "\n[auth]\njwks_file = %s\nhs256_secret_file = %s\n"
             "issuer = https://issuer.example.com/\naudience = api.example.com\nleeway = 90s\n"
             "subject_claim = email\norg_claim = https://example.com/org\nplan_claim = tier\n"
             "keys_file = %s\nkey_cache_ttl = 0ms\nkey_prefix_required = sk_live_\n"
             "subject_header = X-User\norg_header =\nscopes_header = X-Scopes\n"
             "org_request_header = X-Tenant\n\n", af.jwks, af.hs, af.keys);
    CU_ASSERT_PTR_NOT_NULL(strstr(d, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\nper_org = 600/1m\nper_ip_auth_failures = 5/30s\n"));
    /* plans after the upstreams, before the routes, in the file's order */
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\n[plan gold]\nper_token = 10000/1h\nper_org = off\n\n"
                                     "[plan free]\nper_token = 10/1m\n"
                                     "# per_org =   (unset: that of [limits])\n\n[route r]\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\nauth = jwt_or_api_key\n"
                                     "require_scope = tasks:read tasks:write admin\n"
                                     "forbid_api_keys = yes\nhide_credentials = yes\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\n[route keys]\nprefix = /keys\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\nauth = api_key\nrequire_scope = keys:read\n"
                                     "forbid_api_keys = no\nhide_credentials = no\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\nauth = jwt\n# require_scope =   (none)\n"
                                     "forbid_api_keys = no\nhide_credentials = yes\n"));
    CU_ASSERT_PTR_NULL(strstr(d, "0123456789abcdef"));   /* the secret files' contents */
    free(d);

    /* A plan without either rate says what applies. */
    conf_free(c);
    c = load_text("[plan p]\n" TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    d = dump_text(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\n[plan p]\n"
                                     "# per_token =   (unset: the route's, else that of [limits])\n"
                                     "# per_org =   (unset: that of [limits])\n\n"));
    free(d);
    conf_free(c);
    auth_files_remove();
}

/* The dump writes listen flags after their address and [tls] pairs as pairs. */
static void test_dump_tls(void)
{
    char err[1024];
    struct conf *c = load_text(
        "[server]\nlisten = 127.0.0.1:8080, 0.0.0.0:8443 proxy_protocol tls\n" TP
        "[tls]\ncertificate = /a.pem\nkey = /a.key\ncertificate = /b.pem\nkey = /b.key\n"
        "protocols = TLSv1.3 tlsv1.2\n"
        "[upstream u]\nserver = 127.0.0.1:9001\ntls = yes\n[route r]\nprefix = /\nupstream = u\n",
        err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char *d = dump_text(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\n[server]\nlisten = 127.0.0.1:8080, 0.0.0.0:8443 tls "
                                     "proxy_protocol\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\n[tls]\ncertificate = /a.pem\nkey = /a.key\n"
                                     "certificate = /b.pem\nkey = /b.key\n"
                                     "protocols = TLSv1.2 TLSv1.3\nciphers = " MOZILLA_INTERMEDIATE
                                     "\nhandshake_timeout = 10s\n\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\ntls = yes\nverify = yes\n"
                                     "# ca_file =   (none: the system's CA store)\n"
                                     "# server_name =   (none: each server's host as written)\n"
                                     "# client_certificate =   (none)\n# client_key =   (none)\n"));
    free(d);
    conf_free(c);

    /* No [tls] section: shown with its defaults, no pair. */
    c = load_text(TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    d = dump_text(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\n[tls]\n# certificate =   (none)\n# key =   (none)\n"
                                     "protocols = TLSv1.2 TLSv1.3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\n[server]\nlisten = 0.0.0.0:8080\n"));
    free(d);
    conf_free(c);
}

/*
 * Routes in the dump: an override a route does not set is a "# key =" line
 * naming what applies; [cors] without origins is commented out whole.
 */
static void test_dump_routes(void)
{
    char err[1024];
    struct conf *c = load_text(TAIL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char *d = dump_text(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\n# per_ip =   (unset: that of [limits])\n"
                                     "# profile =   (unset: that of [envelope])\n"
                                     "# expose_upstream_5xx =   (unset: that of [envelope])\n"
                                     "# max_error_body =   (unset: that of [envelope])\n"
                                     "# max_body_size =   (unset: that of [server])\n"
                                     "# client_timeout =   (unset: that of [server])\n"
                                     "# timeout =   (unset: that of its [upstream])\n"
                                     "# connect_timeout =   (unset: that of its [upstream])\n"
                                     "# code_map =   (none: the built-in codes)\n"
                                     "# cors_origins =   (unset: [cors] applies)\n"
                                     "# cors_methods =   (unset: [cors] applies)\n"
                                     "# cors_headers =   (unset: [cors] applies)\n"
                                     "# cors_max_age =   (unset: [cors] applies)\n"
                                     "# cors_credentials =   (unset: [cors] applies)\n"
                                     "# host =   (unset: that of the upstream)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\n[route r]\nprefix = /\n# hosts =   (none: any host)\n"
                                     "# match_header =   (none)\nupstream = u\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\n# [cors]\n# origins =   (none: no CORS)\n"
                                     "# methods =   (unset: the route's methods)\n"
                                     "# headers =   (unset: those the request asks for)\n"
                                     "# max_age = 10m\n# credentials = no\n"));
    CU_ASSERT_PTR_NULL(strstr(d, "\n[cors]\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\n# client_key =   (none)\nhost = keep\n"));
    free(d);
    conf_free(c);

    c = conf_load("data/conf/good.conf", err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    d = dump_text(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\n[cors]\norigins = https://app.example.com, "
                                     "http://localhost:3000, https://*.example.net:8443\n"
                                     "methods = DELETE, GET, HEAD, POST\n"
                                     "headers = content-type, x-api-key\nmax_age = 5m\n"
                                     "credentials = yes\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\nhosts = api.example.com, *.api.example.org, 10.0.0.1, "
                                     "[::1]\nmatch_header = X-Api-Version: 2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\nprofile = simple\nexpose_upstream_5xx = no\n"
                                     "max_error_body = 8k\nmax_body_size = 1m\n"
                                     "client_timeout = 5s\ntimeout = 3s\n"
                                     "connect_timeout = 250ms\n"
                                     "code_map = 404:TASK_NOT_FOUND, 409:CONFLICT, "
                                     "422:INVALID_TASK\n"
                                     "cors_origins = https://app.example.com, "
                                     "https://*.example.com:8443\n"
                                     "cors_methods = GET, HEAD, POST\n"
                                     "cors_headers = authorization, x-api-version\n"
                                     "cors_max_age = 1h\ncors_credentials = yes\n"
                                     "host = upstream\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\nhost = tasks.internal:8443\n"));
    free(d);
    conf_free(c);
}

/* Every directive the table lists appears in a dump, in its section. */
static void test_dump_every_directive(void)
{
    char *list = NULL, err[1024];
    size_t len = 0;
    FILE *f = open_memstream(&list, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(conf_list_directives(f), 0);
    CU_ASSERT_EQUAL_FATAL(fclose(f), 0);

    struct conf *c = conf_load("data/conf/good.conf", err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char *dump = dump_text(c);
    int n = 0;
    char *save = NULL;
    for (char *line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char sect[32], name[64], head[48], set[80], unset[80];
        n++;
        CU_ASSERT_EQUAL_FATAL(sscanf(line, "%31s %63s", sect, name), 2);
        bool named = strcmp(sect, "upstream") == 0 || strcmp(sect, "plan") == 0 ||
                     strcmp(sect, "route") == 0;
        snprintf(head, sizeof(head), named ? "\n[%s " : "\n[%s]\n", sect);
        const char *at = strstr(dump, head);
        CU_ASSERT_PTR_NOT_NULL_FATAL(at);
        const char *next = strstr(at + 1, "\n\n");
        char *section = strndup(at, next ? (size_t)(next - at) : strlen(at));
        CU_ASSERT_PTR_NOT_NULL_FATAL(section);
        snprintf(set, sizeof(set), "\n%s =", name);   /* "key =" when set empty */
        snprintf(unset, sizeof(unset), "\n# %s = ", name);
        if (!strstr(section, set) && !strstr(section, unset)) {
            fprintf(stderr, "\n  %s %s is not in the dump\n", sect, name);
            CU_FAIL("a directive is missing from the dump");
        }
        free(section);
    }
    CU_ASSERT(n >= 50);
    free(dump);
    free(list);
    conf_free(c);
}

/* Secrets are never printed; the dump says how it shows them. */
static void test_dump_hides_secrets(void)
{
    char err[1024], secret[64], text[512];
    struct conf *c = conf_load("data/conf/good.conf", err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char *d = dump_text(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\npassword = <hidden>\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\nhash_secret = <hidden>\n"));
    CU_ASSERT_PTR_NULL(strstr(d, "s3cret"));
    CU_ASSERT_PTR_NULL(strstr(d, "0123456789abcdef"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "Secrets (password,\n# hash_secret) are shown as <hidden>"));
    free(d);
    conf_free(c);

    /* hash_secret_file: its path is shown (and re-read when the dump loads), never the secret. */
    write_temp("fedcba9876543210fedcba9876543210\n", secret, sizeof(secret));
    snprintf(text, sizeof(text), "[limits]\nhash_secret_file = %s\n" TAIL, secret);
    c = load_text(text, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    d = dump_text(c);
    snprintf(text, sizeof(text), "\nhash_secret_file = %s\n", secret);
    CU_ASSERT_PTR_NOT_NULL(strstr(d, text));
    CU_ASSERT_PTR_NOT_NULL(strstr(d, "\n# hash_secret =   (read from hash_secret_file)\n"));
    CU_ASSERT_PTR_NULL(strstr(d, "fedcba"));
    struct conf *b = load_text(d, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_STRING_EQUAL(b->hash_secret, "fedcba9876543210fedcba9876543210");
    conf_free(b);
    free(d);
    conf_free(c);
    unlink(secret);
}

static void note_changed(const char *directive, void *arg)
{
    char *out = arg;
    size_t n = strlen(out);
    snprintf(out + n, 512 - n, "%s%s", n ? ", " : "", directive);
}

/* A reload names each restart-only directive that changed (TAIL follows each conf). */
static void test_diff_restart(void)
{
    static const struct { const char *old, *new_conf, *want; } t[] = {
        {"", "", ""},
        {"[server]\nlisten = 127.0.0.1:1\n", "[server]\nlisten = 127.0.0.1:2\n",
         "[server] listen"},
        {"[server]\nlisten = 127.0.0.1:1\n", "[server]\nlisten = 127.0.0.1:1, 127.0.0.1:2\n",
         "[server] listen"},
        {"[server]\nlisten = 127.0.0.1:1, 127.0.0.1:2\n", "[server]\nlisten = 127.0.0.1:1\n"
         "listen = 127.0.0.1:2\n", ""},
        {"", "[server]\nlisten = 0.0.0.0:8080\n", ""},              /* the default written out */
        {"[server]\nworkers = 1\n", "[server]\nworkers = 2\n", "[server] workers"},
        {"[server]\nworkers = 0\n", "", ""},                         /* both: one per core */
        {"", "[admin]\nlisten = 127.0.0.1:9900\n", "[admin] listen"},
        {"[admin]\nlisten = 127.0.0.1:9900\n", "[admin]\n", "[admin] listen"},
        {"[admin]\nlisten = 127.0.0.1:9900\n", "[admin]\nlisten = 127.0.0.1:9901\n",
         "[admin] listen"},
        /* what a reload applies is not named */
        {"[server]\nlog_level = debug\nmax_connections = 5\nshutdown_timeout = 1s\n",
         "[server]\nlog_level = error\naccess_log = off\n[redis]\n[limits]\nper_ip = off\n", ""},
        {"", "[upstream v]\nserver = 127.0.0.1:2\n[route v]\nprefix = /v\nupstream = v\n", ""},
        {"[server]\nworkers = 1\nlisten = 127.0.0.1:1\n[admin]\nlisten = 127.0.0.1:2\n",
         "[server]\nlisten = 127.0.0.1:3\nworkers = 2\n",
         "[server] listen, [server] workers, [admin] listen"},
        /* a listen flag is part of its listen */
        {"[server]\nlisten = 127.0.0.1:1\n" PAIR, "[server]\nlisten = 127.0.0.1:1 tls\n" PAIR,
         "[server] listen"},
        {"[server]\nlisten = 127.0.0.1:1 tls\n" PAIR, "[server]\nlisten = 127.0.0.1:1\n" PAIR,
         "[server] listen"},
        {"[server]\nlisten = 127.0.0.1:1 tls\n" PAIR,
         "[server]\nlisten = 127.0.0.1:1 tls proxy_protocol\n" PAIR, "[server] listen"},
        {"[server]\nlisten = 127.0.0.1:1, 127.0.0.1:2 proxy_protocol\n",
         "[server]\nlisten = 127.0.0.1:1 proxy_protocol, 127.0.0.1:2\n", "[server] listen"},
        {"[server]\nlisten = 127.0.0.1:1 proxy_protocol tls\n" PAIR,
         "[server]\nlisten = 127.0.0.1:1  tls\tproxy_protocol\n" PAIR, ""},
        /* [tls] and upstream TLS are applied by a reload */
        {PAIR, "[tls]\ncertificate = /c2.pem\nkey = /k2.pem\ncertificate = /c3.pem\nkey = /k3\n"
         "protocols = TLSv1.3\nciphers = HIGH\nhandshake_timeout = 1s\n", ""},
        {"[server]\nlisten = 127.0.0.1:1 tls\n" PAIR,
         "[server]\nlisten = 127.0.0.1:1 tls\n[tls]\ncertificate = /new.pem\nkey = /new.key\n", ""},
        {"", "[upstream v]\nserver = 127.0.0.1:2\ntls = yes\nverify = no\nca_file = /ca\n"
         "server_name = v\nclient_certificate = /c\nclient_key = /k\n", ""},
        /* routing by host, the overrides, CORS and Host are applied by a reload */
        {"", "[cors]\norigins = https://a.example\ncredentials = yes\n"
         "[upstream v]\nserver = 127.0.0.1:2\nhost = upstream\n"
         "[route v]\nprefix = /v\nupstream = v\nhosts = a.example\nmatch_header = X-V: 1\n"
         "profile = flat\nexpose_upstream_5xx = yes\nmax_error_body = 1k\n"
         "max_body_size = 1k\nclient_timeout = 1s\ntimeout = 1s\nconnect_timeout = 1s\n"
         "code_map = 404:X\ncors_origins = *\ncors_methods = GET\ncors_headers = X-A\n"
         "cors_max_age = 1s\ncors_credentials = no\nhost = keep\n", ""},
        /* identity: [auth], [plan] and the new [limits] and route directives apply on reload */
        {"", "[auth]\nleeway = 5s\nsubject_claim = uid\nkey_cache_ttl = 0s\n"
         "key_prefix_required = sk_\nsubject_header =\norg_request_header = X-T\n"
         "[limits]\nper_org = 1/1s\nper_ip_auth_failures = off\n"
         "[plan p]\nper_token = 1/1s\nper_org = 2/1s\n", ""},
        {"[plan p]\nper_token = 1/1s\n[auth]\n", "[plan q]\n", ""},
        {"", "[route v]\nprefix = /v\nupstream = u\nhide_credentials = yes\n", ""},
    };
    char err[1024], text[1024];

    for (size_t i = 0; i < N_OF(t); i++) {
        snprintf(text, sizeof(text), "%s%s%s", t[i].old, strstr(t[i].old, "[limits]") ? "" : TP, TAIL);
        struct conf *a = load_text(text, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        snprintf(text, sizeof(text), "%s%s%s", t[i].new_conf, strstr(t[i].new_conf, "[limits]") ? "" : TP, TAIL);
        struct conf *b = load_text(text, err, sizeof(err));
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        char got[512] = "";
        size_t n = conf_diff_restart(a, b, note_changed, got);
        if (strcmp(got, t[i].want) != 0)
            fprintf(stderr, "\n  diff case %zu: want \"%s\", got \"%s\"\n", i, t[i].want, got);
        CU_ASSERT_STRING_EQUAL(got, t[i].want);
        size_t want_n = t[i].want[0] ? 1 : 0;
        for (const char *s = t[i].want; *s; s++)
            want_n += *s == ',';
        CU_ASSERT_EQUAL(n, want_n);
        CU_ASSERT_EQUAL(conf_diff_restart(a, b, NULL, NULL), want_n);
        conf_free(a);
        conf_free(b);
    }
}

/*
 * Address text is sized to what an address needs: a 255-byte host name with
 * a port fits, and so does the longest unix socket path.
 */
static void test_addr_text_size(void)
{
    struct conf_addr a;
    char s[CONF_ADDR_MAX + 16];

    CU_ASSERT(sizeof(a.text) >= 255 + sizeof(":65535"));
    CU_ASSERT(sizeof(a.text) >= strlen("unix:") + sizeof(((struct sockaddr_un *)0)->sun_path));
    /* mmap'd, touched only where set (conf_alloc); a bound, so growth is a decision */
    CU_ASSERT(sizeof(struct conf) < 1200 * 1024);

    /* A 107-byte socket path, the most sun_path holds. */
    snprintf(s, sizeof(s), "unix:/%0106d", 0);
    CU_ASSERT_TRUE(conf_parse_addr(s, &a));
    CU_ASSERT_STRING_EQUAL(a.text, s);
    /* A port padded with zeros to the text's size: the longest text kept. */
    snprintf(s, sizeof(s), "127.0.0.1:%0*d", (int)(CONF_ADDR_MAX - strlen("127.0.0.1:")), 80);
    CU_ASSERT_EQUAL(strlen(s), CONF_ADDR_MAX);
    CU_ASSERT_TRUE(conf_parse_addr(s, &a));
    CU_ASSERT_STRING_EQUAL(a.text, s);
    snprintf(s, sizeof(s), "127.0.0.1:%0*d", (int)(CONF_ADDR_MAX + 1 - strlen("127.0.0.1:")), 80);
    CU_ASSERT_FALSE(conf_parse_addr(s, &a));
    char text[1024];
    snprintf(text, sizeof(text), "[upstream u]\nserver = %s\n[route r]\nprefix = /\nupstream = u\n",
             s);
    char want[256];
    snprintf(want, sizeof(want), "2: server: \"%.90s...\" is not HOST:PORT: too long", s);
    expect_error(text, want);
}

/* The shipped sample conf loads. */
static void test_sample_conf(void)
{
    char err[1024];
    struct conf *c = conf_load("../conf/envelopd.conf", err, sizeof(err));
    if (!c)
        fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(c->listen[0].text, "127.0.0.1:8080");
    /* TLS is shown commented out: the sample runs without certificates */
    CU_ASSERT_EQUAL(c->n_listen, 1);
    CU_ASSERT_FALSE(c->listen[0].tls);
    CU_ASSERT_FALSE(c->listen[0].proxy_protocol);
    CU_ASSERT_EQUAL(c->n_certs, 0);
    CU_ASSERT_FALSE(c->upstreams[0].tls);
    CU_ASSERT_TRUE(c->redis_enabled);
    CU_ASSERT_EQUAL(c->n_routes, 1);
    CU_ASSERT_STRING_EQUAL(c->routes[0].prefix, "/");
    CU_ASSERT_STRING_EQUAL(c->upstreams[c->routes[0].upstream].name, "demo");
    /* identity is shown commented out: the sample checks no credentials */
    CU_ASSERT_FALSE(c->auth_set);
    CU_ASSERT_EQUAL(c->n_plans, 0);
    CU_ASSERT_EQUAL(c->routes[0].auth, CONF_AUTH_NONE);
    CU_ASSERT_EQUAL(c->per_org.window_ms, 1);             /* off */
    conf_free(c);
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("conf_values", NULL, NULL);
    CU_add_test(s, "parse_size", test_parse_size);
    CU_add_test(s, "parse_duration", test_parse_duration);
    CU_add_test(s, "parse_rate", test_parse_rate);
    CU_add_test(s, "parse_bool", test_parse_bool);
    CU_add_test(s, "parse_addr", test_parse_addr);
    CU_add_test(s, "parse_cidr", test_parse_cidr);
    CU_add_test(s, "parse_methods", test_parse_methods);
    CU_add_test(s, "trusted_proxy", test_trusted_proxy);

    s = CU_add_suite("conf_load", NULL, NULL);
    CU_add_test(s, "defaults", test_defaults);
    CU_add_test(s, "every_directive", test_every_directive);
    CU_add_test(s, "syntax_forms", test_syntax_forms);
    CU_add_test(s, "hash_secret_file", test_hash_secret_file);
    CU_add_test(s, "listen_flags", test_listen_flags);
    CU_add_test(s, "tls_pairs", test_tls_pairs);
    CU_add_test(s, "tls_protocols", test_tls_protocols);
    CU_add_test(s, "server_name", test_server_name);
    CU_add_test(s, "upstream_tls", test_upstream_tls);
    CU_add_test(s, "ipv6_prefix", test_ipv6_prefix);
    CU_add_test(s, "max_connections", test_max_connections);
    CU_add_test(s, "route_hosts", test_route_hosts);
    CU_add_test(s, "match_header", test_match_header);
    CU_add_test(s, "route_overrides", test_route_overrides);
    CU_add_test(s, "code_map", test_code_map);
    CU_add_test(s, "cors_origins", test_cors_origins);
    CU_add_test(s, "cors", test_cors);
    CU_add_test(s, "host_mode", test_host_mode);
    CU_add_test(s, "route_conflicts", test_route_conflicts);
    CU_add_test(s, "many_routes", test_many_routes);
    CU_add_test(s, "errors", test_errors);
    CU_add_test(s, "binary_and_missing", test_binary_and_missing);
    CU_add_test(s, "bad_fixtures", test_bad_fixtures);
    CU_add_test(s, "auth_values", test_auth_values);
    CU_add_test(s, "auth_errors", test_auth_errors);
    CU_add_test(s, "plans", test_plans);
    CU_add_test(s, "route_auth", test_route_auth);
    CU_add_test(s, "auth_checks", test_auth_checks);
    CU_add_test(s, "sample_conf", test_sample_conf);

    s = CU_add_suite("conf_table", NULL, NULL);
    CU_add_test(s, "dump_round_trip", test_dump_round_trip);
    CU_add_test(s, "dump_tls", test_dump_tls);
    CU_add_test(s, "dump_routes", test_dump_routes);
    CU_add_test(s, "dump_auth", test_dump_auth);
    CU_add_test(s, "dump_every_directive", test_dump_every_directive);
    CU_add_test(s, "dump_hides_secrets", test_dump_hides_secrets);
    CU_add_test(s, "diff_restart", test_diff_restart);
    CU_add_test(s, "addr_text_size", test_addr_text_size);
}
