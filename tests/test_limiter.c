/*
 * test_limiter: the limiter against a real redis-server started on a private
 * loopback port (fork/exec, killed by PID in the cleanup): limits through
 * Redis, sharing between instances, NOSCRIPT reload, on_error modes with
 * Redis killed, recovery after a restart, CLIENT PAUSE vs the timeout, keys
 * free of tokens, cancellation; and, in Redis and in local mode alike, limits
 * that add up (per IP always, per token too), the tightest one's headers,
 * denials that spend nothing, IPv6 networks as one caller. The event loop
 * runs until the callback fires or a bound passes; nothing sleeps and hopes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "limiter.h"
#include "redis.h"
#include "log.h"

void test_register(void);

static pid_t redis_pid = -1;
static int redis_port;
static char redis_dir[] = "/tmp/envelopd-limiter-XXXXXX";
static struct event_base *base;
static struct conf *conf;
static int log_fd = -1;

static const char TOKEN[] = "tok-SuperSecretValue-0123456789";

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- redis-server process ---- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
        port = ntohs(sin.sin_port);
    close(fd);
    return port;
}

static redisContext *admin(void)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    if (c && c->err) {
        redisFree(c);
        return NULL;
    }
    return c;
}

/* Run one admin command; returns its reply (caller frees) or NULL. */
static redisReply *admin_cmd(const char *fmt, ...)
{
    redisContext *c = admin();
    if (!c)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return r;
}

static int redis_start(void)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", redis_port);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, STDOUT_FILENO);
            dup2(devnull, STDERR_FILENO);
        }
        char sock[96];
        snprintf(sock, sizeof(sock), "%s/redis.sock", redis_dir);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
               "--unixsocket", sock, "--unixsocketperm", "700", "--save", "", "--appendonly",
               "no", "--dir", redis_dir, (char *)NULL);
        _exit(127);
    }
    redis_pid = pid;
    /* up when PING answers; bounded */
    for (uint64_t t0 = now_ms(); now_ms() - t0 < 5000;) {
        redisReply *r = admin_cmd("PING");
        if (r) {
            freeReplyObject(r);
            return 0;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            redis_pid = -1;
            return -1;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};  /* polling a child process, not a test */
        nanosleep(&ts, NULL);
    }
    return -1;
}

static void redis_stop(void)
{
    if (redis_pid > 0) {
        kill(redis_pid, SIGKILL);
        waitpid(redis_pid, NULL, 0);
        redis_pid = -1;
    }
}

/* ---- loop helpers ---- */

struct answer {
    bool done;
    int calls;
    enum limiter_verdict v;
    struct rl_result res;
};

static void on_answer(enum limiter_verdict v, const struct rl_result *res, void *arg)
{
    struct answer *a = arg;
    a->done = true;
    a->calls++;
    a->v = v;
    a->res = *res;
}

static void bound_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(bool *)arg = true;
}

/* Run BASE until *done or MS pass. */
static void run_until(struct event_base *b, const bool *done, uint64_t ms)
{
    bool expired = false;
    struct event *ev = evtimer_new(b, bound_cb, &expired);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    CU_ASSERT_FATAL(ev && evtimer_add(ev, &tv) == 0);
    while (!(done && *done) && !expired)
        event_base_loop(b, EVLOOP_ONCE);
    event_free(ev);
}

static void run_for(struct event_base *b, uint64_t ms)
{
    run_until(b, NULL, ms);
}

/* Decide one request, waiting for the answer; *elapsed gets the time taken. */
static enum limiter_verdict check_on(struct limiter *l, struct event_base *b,
                                     const struct conf_route *route, const char *token,
                                     const char *ip, struct rl_result *res, uint64_t *elapsed)
{
    struct limiter_query q = {
        .route = route, .token = token, .token_len = token ? strlen(token) : 0, .client_ip = ip};
    struct answer a = {0};
    struct limiter_pending *p = NULL;
    uint64_t t0 = now_ms();
    int rc = limiter_check(l, &q, &a.v, &a.res, on_answer, &a, &p);
    if (rc == 0) {
        CU_ASSERT_PTR_NOT_NULL(p);
        run_until(b, &a.done, 5000);
        CU_ASSERT_TRUE(a.done);
        CU_ASSERT_EQUAL(a.calls, 1);
    } else {
        CU_ASSERT_EQUAL(rc, 1);
        CU_ASSERT_PTR_NULL(p);
    }
    if (elapsed)
        *elapsed = now_ms() - t0;
    if (res)
        *res = a.res;
    return a.v;
}

static enum limiter_verdict check(struct limiter *l, const char *token, struct rl_result *res)
{
    return check_on(l, base, NULL, token, "192.0.2.1", res, NULL);
}

/* Run until Redis answers for real again (a verdict other than on_error's). */
static bool wait_redis_ready(struct limiter *l, uint64_t ms)
{
    enum conf_on_error saved = conf->redis_on_error;
    conf->redis_on_error = CONF_ON_ERROR_DENY;
    limiter_set_conf(l, conf);
    bool ok = false;
    for (uint64_t t0 = now_ms(); now_ms() - t0 < ms;) {
        enum limiter_verdict v = check(l, "probe-token", NULL);
        if (v != LIMITER_UNAVAILABLE) {
            ok = true;
            break;
        }
        run_for(base, 50);
    }
    conf->redis_on_error = saved;
    limiter_set_conf(l, conf);
    return ok;
}

static size_t log_count(const char *needle)
{
    char buf[65536];
    ssize_t n = pread(log_fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    size_t count = 0;
    for (char *p = buf; (p = strstr(p, needle)); p += strlen(needle))
        count++;
    return count;
}

static void log_reset(void)
{
    CU_ASSERT(ftruncate(log_fd, 0) == 0);
    CU_ASSERT(lseek(log_fd, 0, SEEK_SET) == 0);
}

static void conf_defaults(void)
{
    memset(conf, 0, sizeof(*conf));
    conf->redis_enabled = true;
    struct sockaddr_in *sin = (struct sockaddr_in *)&conf->redis_address.sa;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)redis_port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    conf->redis_address.salen = sizeof(*sin);
    snprintf(conf->redis_address.text, sizeof(conf->redis_address.text), "127.0.0.1:%d",
             redis_port);
    conf->redis_timeout_ms = 50;
    conf->redis_on_error = CONF_ON_ERROR_ALLOW;
    snprintf(conf->redis_key_prefix, sizeof(conf->redis_key_prefix), "envelopd:");
    conf->per_token.count = 5;
    conf->per_token.window_ms = 60000;
    conf->per_ip.count = 1000;  /* the token tests below are about the token */
    conf->per_ip.window_ms = 60000;
    conf->ipv6_prefix = 64;
    snprintf(conf->hash_secret, sizeof(conf->hash_secret), "test-secret");
    conf->hash_secret_set = true;
}

static int suite_init(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (!mkdtemp(redis_dir))
        return -1;
    redis_port = free_port();
    if (redis_port <= 0 || redis_start() != 0) {
        fprintf(stderr, "cannot start redis-server (is it installed?)\n");
        return -1;
    }
    conf = calloc(1, sizeof(*conf));
    base = event_base_new();
    log_fd = memfd_create("limiter-log", 0);
    if (!conf || !base || log_fd < 0)
        return -1;
    log_set_fd(log_fd);
    log_set_level(CONF_LOG_INFO);
    conf_defaults();
    return 0;
}

static int suite_clean(void)
{
    redis_stop();
    char path[64];
    snprintf(path, sizeof(path), "%s/dump.rdb", redis_dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/redis.sock", redis_dir);
    unlink(path);
    rmdir(redis_dir);
    if (base)
        event_base_free(base);
    free(conf);
    if (log_fd >= 0) {
        char buf[65536];
        ssize_t n = pread(log_fd, buf, sizeof(buf), 0);
        if (getenv("TEST_SHOW_LOG") && n > 0)
            fwrite(buf, 1, (size_t)n, stderr);
        close(log_fd);
    }
    return 0;
}

static void flushall(void)
{
    redisReply *r = admin_cmd("FLUSHALL");
    CU_ASSERT_PTR_NOT_NULL(r);
    if (r)
        freeReplyObject(r);
}

/* ---- tests ---- */

static void test_limit_through_redis(void)
{
    conf_defaults();
    flushall();
    struct limiter *l = limiter_new(base, conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    struct rl_result res;
    for (long i = 0; i < 5; i++) {
        uint64_t el = 0;
        enum limiter_verdict v = check_on(l, base, NULL, TOKEN, "192.0.2.1", &res, &el);
        CU_ASSERT_EQUAL(v, LIMITER_ALLOW);
        CU_ASSERT_EQUAL(res.limit, 5);
        CU_ASSERT_EQUAL(res.remaining, 4 - i);
        CU_ASSERT_EQUAL(res.window_s, 60);
        CU_ASSERT(res.reset_s >= 1 && res.reset_s <= 60);
    }
    CU_ASSERT_EQUAL(check(l, TOKEN, &res), LIMITER_LIMITED);
    CU_ASSERT_EQUAL(res.remaining, 0);
    CU_ASSERT(res.retry_after_s >= 1 && res.retry_after_s <= 12);
    CU_ASSERT_EQUAL(res.limit, 5);
    /* another token is another caller */
    CU_ASSERT_EQUAL(check(l, "other-token", &res), LIMITER_ALLOW);
    CU_ASSERT_EQUAL(res.remaining, 4);
    /* anonymous: per_ip, by address */
    conf->per_ip.count = 3;
    limiter_set_conf(l, conf);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(check_on(l, base, NULL, NULL, "198.51.100.7", &res, NULL),
                        LIMITER_ALLOW);
    CU_ASSERT_EQUAL(check_on(l, base, NULL, NULL, "198.51.100.7", &res, NULL), LIMITER_LIMITED);
    CU_ASSERT_EQUAL(res.limit, 3);
    CU_ASSERT_EQUAL(check_on(l, base, NULL, NULL, "2001:db8::1", &res, NULL), LIMITER_ALLOW);
    /* an empty token is no token */
    CU_ASSERT_EQUAL(check_on(l, base, NULL, "", "198.51.100.7", &res, NULL), LIMITER_LIMITED);
    limiter_free(l);
}

static void test_route_override(void)
{
    conf_defaults();
    flushall();
    static struct conf_route tasks, other;
    memset(&tasks, 0, sizeof(tasks));
    memset(&other, 0, sizeof(other));
    snprintf(tasks.name, sizeof(tasks.name), "tasks");
    tasks.per_token.count = 2;
    tasks.per_token.window_ms = 3600000;
    snprintf(other.name, sizeof(other.name), "other");  /* [limits] applies */
    struct limiter *l = limiter_new(base, conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    struct rl_result res;
    CU_ASSERT_EQUAL(check_on(l, base, &tasks, TOKEN, NULL, &res, NULL), LIMITER_ALLOW);
    CU_ASSERT_EQUAL(res.limit, 2);
    CU_ASSERT_EQUAL(res.window_s, 3600);
    CU_ASSERT_EQUAL(check_on(l, base, &tasks, TOKEN, NULL, &res, NULL), LIMITER_ALLOW);
    CU_ASSERT_EQUAL(check_on(l, base, &tasks, TOKEN, NULL, &res, NULL), LIMITER_LIMITED);
    CU_ASSERT(res.retry_after_s > 1700 && res.retry_after_s <= 1800);
    /* per route: the same caller has its own budget elsewhere */
    CU_ASSERT_EQUAL(check_on(l, base, &other, TOKEN, NULL, &res, NULL), LIMITER_ALLOW);
    CU_ASSERT_EQUAL(res.limit, 5);
    CU_ASSERT_EQUAL(res.remaining, 4);
    limiter_free(l);
}

static void test_unset_rate_is_none(void)
{
    conf_defaults();
    conf->per_token.count = 0;
    conf->per_ip.count = 0;
    struct limiter *l = limiter_new(base, conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    struct limiter_query q = {.token = TOKEN, .token_len = strlen(TOKEN), .client_ip = "192.0.2.1"};
    enum limiter_verdict v = LIMITER_ALLOW;
    struct rl_result res;
    struct answer a = {0};
    struct limiter_pending *p = (struct limiter_pending *)&a;
    CU_ASSERT_EQUAL(limiter_check(l, &q, &v, &res, on_answer, &a, &p), 1);
    CU_ASSERT_EQUAL(v, LIMITER_NONE);
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT_FALSE(a.done);
    limiter_free(l);
}

/* Two limiters (two workers or two gateways) share one budget exactly. */
static void test_shared_between_instances(void)
{
    conf_defaults();
    conf->per_token.count = 20;
    flushall();
    struct event_base *base2 = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(base2);
    struct limiter *a = limiter_new(base, conf);
    struct limiter *b = limiter_new(base2, conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    int passed = 0;
    long last_remaining = 20;
    for (int i = 0; i < 40; i++) {
        struct rl_result res;
        bool odd = i % 2;
        enum limiter_verdict v =
            check_on(odd ? b : a, odd ? base2 : base, NULL, TOKEN, NULL, &res, NULL);
        CU_ASSERT(v == LIMITER_ALLOW || v == LIMITER_LIMITED);
        if (v == LIMITER_ALLOW) {
            passed++;
            CU_ASSERT_EQUAL(res.remaining, last_remaining - 1);
            last_remaining = res.remaining;
        }
    }
    CU_ASSERT_EQUAL(passed, 20);
    limiter_free(a);
    limiter_free(b);
    event_base_free(base2);
}

/* SCRIPT FLUSH: the next call meets NOSCRIPT, reloads and still decides. */
static void test_noscript_reload(void)
{
    conf_defaults();
    flushall();
    struct limiter *l = limiter_new(base, conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    struct rl_result res;
    CU_ASSERT_EQUAL(check(l, TOKEN, &res), LIMITER_ALLOW);
    CU_ASSERT_EQUAL(res.remaining, 4);
    redisReply *r = admin_cmd("SCRIPT FLUSH");
    CU_ASSERT_PTR_NOT_NULL(r);
    if (r)
        freeReplyObject(r);
    log_reset();
    CU_ASSERT_EQUAL(check(l, TOKEN, &res), LIMITER_ALLOW);
    CU_ASSERT_EQUAL(res.remaining, 3);  /* decided by Redis, not on_error */
    CU_ASSERT_EQUAL(log_count("ratelimit_undecided"), 0);
    CU_ASSERT_EQUAL(check(l, TOKEN, &res), LIMITER_ALLOW);
    CU_ASSERT_EQUAL(res.remaining, 2);
    limiter_free(l);
}

/* Every key is prefix{32 hex}:route:rate and no part of a token shows. */
static void test_keys_hide_tokens(void)
{
    conf_defaults();
    flushall();
    struct limiter *l = limiter_new(base, conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    const char *tokens[] = {TOKEN, "abc", "Bearer-ish.token/with:colons{}", "0123456789abcdef"};
    for (size_t i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(check(l, tokens[i], NULL), LIMITER_ALLOW);
    CU_ASSERT_EQUAL(check_on(l, base, NULL, NULL, "203.0.113.9", NULL, NULL), LIMITER_ALLOW);
    size_t nkeys = 0;
    char cursor[32] = "0";
    do {
        redisReply *r = admin_cmd("SCAN %s COUNT 1000", cursor);
        CU_ASSERT_FATAL(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *key = r->element[1]->element[i]->str;
            nkeys++;
            if (!key) {
                CU_FAIL("SCAN returned a non-string key");
                continue;
            }
            CU_ASSERT(strncmp(key, "envelopd:{", 10) == 0);
            if (strncmp(key, "envelopd:{ip:", 13) == 0) {
                /* the anonymous caller, and the address the tokens came from */
                CU_ASSERT(strcmp(key, "envelopd:{ip:203.0.113.9}:default:1000/60000") == 0 ||
                          strcmp(key, "envelopd:{ip:192.0.2.1}:default:1000/60000") == 0);
                continue;
            }
            CU_ASSERT(strlen(key) > 43 && key[42] == '}');
            CU_ASSERT_STRING_EQUAL(key + 42, "}:default:5/60000");
            for (size_t t = 0; t < 4; t++) {
                /* no 6-character piece of any token (the short one: whole) */
                size_t tl = strlen(tokens[t]);
                size_t w = tl < 6 ? tl : 6;
                for (size_t off = 0; off + w <= tl; off++) {
                    char piece[8];
                    memcpy(piece, tokens[t] + off, w);
                    piece[w] = '\0';
                    if (t == 3 && strspn(piece, "0123456789abcdef") == w)
                        continue;  /* a hex token's pieces may occur in any hex */
                    if (strstr(key, piece))
                        printf("\n  key %s contains %s\n", key, piece);
                    CU_ASSERT_PTR_NULL(strstr(key, piece));
                }
            }
            /* and its TTL is set */
            redisReply *ttl = admin_cmd("PTTL %s", key);
            CU_ASSERT(ttl && ttl->type == REDIS_REPLY_INTEGER && ttl->integer > 0 &&
                      ttl->integer <= 60001);
            if (ttl)
                freeReplyObject(ttl);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    CU_ASSERT_EQUAL(nkeys, 6);
    limiter_free(l);
}

struct pause_arg {
    pid_t child;
};

/* CLIENT PAUSE 500 with timeout 50 ms: answers come within ~the timeout,
 * by on_error, and Redis decides again once the pause ends. */
static void test_client_pause(void)
{
    conf_defaults();
    flushall();
    struct limiter *l = limiter_new(base, conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_TRUE(wait_redis_ready(l, 3000));
    redisReply *r = admin_cmd("CLIENT PAUSE 500");
    CU_ASSERT(r && r->type == REDIS_REPLY_STATUS);
    if (r)
        freeReplyObject(r);
    uint64_t paused_at = now_ms();
    static const enum conf_on_error modes[] = {CONF_ON_ERROR_ALLOW, CONF_ON_ERROR_DENY,
                                               CONF_ON_ERROR_LOCAL};
    static const enum limiter_verdict expect[] = {LIMITER_NONE, LIMITER_UNAVAILABLE,
                                                  LIMITER_ALLOW};
    for (int m = 0; m < 3; m++) {
        conf->redis_on_error = modes[m];
        limiter_set_conf(l, conf);
        uint64_t el = 0;
        struct rl_result res;
        enum limiter_verdict v = check_on(l, base, NULL, TOKEN, NULL, &res, &el);
        CU_ASSERT_EQUAL(v, expect[m]);
        /* The first call waits out the timeout; after it, with its reply still
         * owed, the connection is overdue and later calls are answered at once. */
        if (m == 0) {
            CU_ASSERT(el >= 40 && el < 150);
        } else {
            CU_ASSERT(el < 20);
        }
        if (el >= 150)
            printf("\n  answered after %llu ms\n", (unsigned long long)el);
    }
    CU_ASSERT(now_ms() - paused_at < 450);  /* all of that happened inside the pause */
    /* the late replies arrive after the pause and touch nothing freed */
    run_for(base, 700);
    conf->redis_on_error = CONF_ON_ERROR_DENY;
    limiter_set_conf(l, conf);
    struct rl_result res;
    enum limiter_verdict v = check(l, TOKEN, &res);
    CU_ASSERT_EQUAL(v, LIMITER_ALLOW);
    /* only the first call reached Redis (the others were never sent): 5 - 1 - 1 */
    CU_ASSERT_EQUAL(res.remaining, 3);
    limiter_free(l);
}

struct free_arg {
    struct limiter *l;
    bool done;
};

static void free_in_cb(enum limiter_verdict v, const struct rl_result *res, void *arg)
{
    struct free_arg *fa = arg;
    (void)v;
    (void)res;
    limiter_free(fa->l);
    fa->l = NULL;
    fa->done = true;
}

/* A pending query cancelled, or left pending when the limiter is freed:
 * its callback never runs, and nothing leaks or is touched after free. */
static void test_cancel_and_free(void)
{
    conf_defaults();
    flushall();
    struct limiter *l = limiter_new(base, conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_TRUE(wait_redis_ready(l, 3000));
    struct limiter_query q = {.token = TOKEN, .token_len = strlen(TOKEN)};
    struct answer a = {0}, b = {0};
    struct limiter_pending *pa = NULL, *pb = NULL;
    enum limiter_verdict v;
    struct rl_result res;
    CU_ASSERT_EQUAL(limiter_check(l, &q, &v, &res, on_answer, &a, &pa), 0);
    CU_ASSERT_EQUAL(limiter_check(l, &q, &v, &res, on_answer, &b, &pb), 0);
    limiter_cancel(pa);
    run_until(base, &b.done, 2000);
    CU_ASSERT_TRUE(b.done);
    run_for(base, 100);
    CU_ASSERT_FALSE(a.done);
    /* cancel during a pause: the timer must not fire into freed memory */
    redisReply *r = admin_cmd("CLIENT PAUSE 300");
    if (r)
        freeReplyObject(r);
    memset(&a, 0, sizeof(a));
    CU_ASSERT_EQUAL(limiter_check(l, &q, &v, &res, on_answer, &a, &pa), 0);
    limiter_cancel(pa);
    memset(&b, 0, sizeof(b));
    CU_ASSERT_EQUAL(limiter_check(l, &q, &v, &res, on_answer, &b, &pb), 0);
    limiter_free(l);  /* b still pending: dropped */
    run_for(base, 500);
    CU_ASSERT_FALSE(a.done);
    CU_ASSERT_FALSE(b.done);

    /* a callback that frees the limiter while another query is in flight
     * (the late replies then meet only detached call objects) */
    struct free_arg fa = {limiter_new(base, conf), false};
    CU_ASSERT_PTR_NOT_NULL_FATAL(fa.l);
    CU_ASSERT_TRUE(wait_redis_ready(fa.l, 3000));
    memset(&b, 0, sizeof(b));
    CU_ASSERT_EQUAL(limiter_check(fa.l, &q, &v, &res, free_in_cb, &fa, &pa), 0);
    CU_ASSERT_EQUAL(limiter_check(fa.l, &q, &v, &res, on_answer, &b, &pb), 0);
    run_until(base, &fa.done, 2000);
    CU_ASSERT_TRUE(fa.done);
    run_for(base, 100);
    CU_ASSERT_FALSE(b.done);
}

/* Redis killed: every on_error mode obeyed within the timeout, one
 * redis_lost line; restarted: limits enforced again by the same limiter. */
static void test_redis_down_and_back(void)
{
    conf_defaults();
    flushall();
    struct limiter *l = limiter_new(base, conf);
    struct limiter *l2 = limiter_new(base, conf);  /* a second worker */
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l2);
    CU_ASSERT_TRUE(wait_redis_ready(l, 3000));
    CU_ASSERT_TRUE(wait_redis_ready(l2, 3000));
    log_reset();
    redis_stop();

    static const enum conf_on_error modes[] = {CONF_ON_ERROR_ALLOW, CONF_ON_ERROR_DENY,
                                               CONF_ON_ERROR_LOCAL};
    uint64_t worst = 0;
    for (int m = 0; m < 3; m++) {
        conf->redis_on_error = modes[m];
        limiter_set_conf(l, conf);
        int allowed = 0, limited = 0;
        for (int i = 0; i < 8; i++) {
            uint64_t el = 0;
            struct rl_result res;
            enum limiter_verdict v = check_on(l, base, NULL, "down-token", NULL, &res, &el);
            if (el > worst)
                worst = el;
            switch (modes[m]) {
            case CONF_ON_ERROR_ALLOW:
                CU_ASSERT_EQUAL(v, LIMITER_NONE);
                break;
            case CONF_ON_ERROR_DENY:
                CU_ASSERT_EQUAL(v, LIMITER_UNAVAILABLE);
                break;
            case CONF_ON_ERROR_LOCAL:
                allowed += v == LIMITER_ALLOW;
                limited += v == LIMITER_LIMITED;
                if (v == LIMITER_LIMITED)
                    CU_ASSERT(res.retry_after_s >= 1);
                break;
            }
            run_for(base, 20);  /* let reconnect attempts happen meanwhile */
        }
        if (modes[m] == CONF_ON_ERROR_LOCAL) {
            CU_ASSERT_EQUAL(allowed, 5);  /* the same limit, from process memory */
            CU_ASSERT_EQUAL(limited, 3);
        }
    }
    CU_ASSERT(worst <= conf->redis_timeout_ms + 30);
    run_for(base, 1000);  /* several reconnect attempts */
    /* a second later the next undecided request reports the tally */
    conf->redis_on_error = CONF_ON_ERROR_ALLOW;
    limiter_set_conf(l, conf);
    CU_ASSERT_EQUAL(check(l, "down-token", NULL), LIMITER_NONE);
    CU_ASSERT_EQUAL(log_count("redis_lost"), 1);
    CU_ASSERT_EQUAL(log_count("redis_back"), 0);
    /* allow mode warns at most once a second however many requests */
    CU_ASSERT(log_count("ratelimit_undecided") >= 1 && log_count("ratelimit_undecided") <= 3);

    CU_ASSERT_EQUAL(check(l2, "down-token", NULL), LIMITER_NONE);  /* l2 noticed too */
    run_for(base, 200);
    CU_ASSERT_EQUAL(log_count("redis_lost"), 1);  /* one line per process, not per worker */

    CU_ASSERT_FATAL(redis_start() == 0);
    CU_ASSERT_TRUE(wait_redis_ready(l, 10000));
    CU_ASSERT_TRUE(wait_redis_ready(l2, 10000));
    CU_ASSERT_EQUAL(log_count("redis_back"), 1);
    CU_ASSERT_EQUAL(log_count("redis_lost"), 1);
    conf->redis_on_error = CONF_ON_ERROR_DENY;
    limiter_set_conf(l, conf);
    struct rl_result res;
    for (long i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(check(l, TOKEN, &res), LIMITER_ALLOW);
        CU_ASSERT_EQUAL(res.remaining, 4 - i);
    }
    CU_ASSERT_EQUAL(check(l, TOKEN, &res), LIMITER_LIMITED);
    CU_ASSERT_EQUAL(check(l2, TOKEN, &res), LIMITER_LIMITED);
    limiter_free(l);
    limiter_free(l2);
}

/* A conf that names a dead address: never blocks, on_error applies at once,
 * and a reload to the right address brings Redis in without a restart. */
static void test_reload_address(void)
{
    conf_defaults();
    flushall();
    struct sockaddr_in *sin = (struct sockaddr_in *)&conf->redis_address.sa;
    sin->sin_port = htons((uint16_t)free_port());
    conf->redis_on_error = CONF_ON_ERROR_DENY;
    struct limiter *l = limiter_new(base, conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    uint64_t el = 0;
    CU_ASSERT_EQUAL(check_on(l, base, NULL, TOKEN, NULL, NULL, &el), LIMITER_UNAVAILABLE);
    CU_ASSERT(el <= 80);
    conf_defaults();
    limiter_set_conf(l, conf);
    CU_ASSERT_TRUE(wait_redis_ready(l, 3000));
    struct rl_result res;
    CU_ASSERT_EQUAL(check(l, TOKEN, &res), LIMITER_ALLOW);
    CU_ASSERT_EQUAL(res.remaining, 4);
    limiter_free(l);
}

/* Without [redis]: synchronous decisions from process memory, said once. */
static void test_memory_mode(void)
{
    conf_defaults();
    conf->redis_enabled = false;
    log_reset();
    struct limiter *a = limiter_new(base, conf);
    struct limiter *b = limiter_new(base, conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(log_count("process memory"), 1);
    struct limiter_query q = {.token = "memory-token", .token_len = 12};
    int passed = 0;
    for (int i = 0; i < 10; i++) {
        enum limiter_verdict v;
        struct rl_result res;
        struct limiter_pending *p = NULL;
        struct answer ans = {0};
        /* alternate workers: they share the process-wide store */
        CU_ASSERT_EQUAL(limiter_check(i % 2 ? b : a, &q, &v, &res, on_answer, &ans, &p), 1);
        passed += v == LIMITER_ALLOW;
        if (v == LIMITER_ALLOW)
            CU_ASSERT_EQUAL(res.remaining, 5 - passed);
    }
    CU_ASSERT_EQUAL(passed, 5);
    limiter_free(a);
    limiter_free(b);
}

/* A Unix socket, SELECT of another db, AUTH right and wrong. */
static void test_unix_auth_select(void)
{
    conf_defaults();
    flushall();
    struct conf_addr *a = &conf->redis_address;
    memset(a, 0, sizeof(*a));
    struct sockaddr_un *un = (struct sockaddr_un *)&a->sa;
    un->sun_family = AF_UNIX;
    snprintf(un->sun_path, sizeof(un->sun_path), "%s/redis.sock", redis_dir);
    a->salen = sizeof(*un);
    snprintf(a->text, sizeof(a->text), "unix:%s", un->sun_path);
    conf->redis_db = 3;
    struct limiter *l = limiter_new(base, conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_TRUE(wait_redis_ready(l, 3000));
    struct rl_result res;
    CU_ASSERT_EQUAL(check(l, TOKEN, &res), LIMITER_ALLOW);
    CU_ASSERT_EQUAL(res.remaining, 4);
    redisReply *r = admin_cmd("DBSIZE");  /* db 0 stays empty: the keys went to db 3 */
    CU_ASSERT(r && r->type == REDIS_REPLY_INTEGER && r->integer == 0);
    if (r)
        freeReplyObject(r);
    limiter_free(l);

    /* AUTH: the right password works, a wrong one falls to on_error */
    r = admin_cmd("CONFIG SET requirepass %s", "s3cret");
    CU_ASSERT(r && r->type == REDIS_REPLY_STATUS);
    if (r)
        freeReplyObject(r);
    conf->redis_db = 0;
    snprintf(conf->redis_password, sizeof(conf->redis_password), "s3cret");
    l = limiter_new(base, conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_TRUE(wait_redis_ready(l, 3000));
    CU_ASSERT_EQUAL(check(l, "auth-token", &res), LIMITER_ALLOW);
    CU_ASSERT_EQUAL(res.remaining, 4);
    limiter_free(l);
    log_reset();
    snprintf(conf->redis_password, sizeof(conf->redis_password), "wrong");
    conf->redis_on_error = CONF_ON_ERROR_DENY;
    l = limiter_new(base, conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    uint64_t el = 0;
    CU_ASSERT_EQUAL(check_on(l, base, NULL, TOKEN, NULL, NULL, &el), LIMITER_UNAVAILABLE);
    CU_ASSERT(el <= 80);
    run_for(base, 300);
    CU_ASSERT_EQUAL(log_count("AUTH failed"), 1);
    limiter_free(l);
    redisContext *c = admin();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    redisReply *r1 = redisCommand(c, "AUTH s3cret");
    redisReply *r2 = redisCommand(c, "CONFIG SET requirepass %s", "");
    CU_ASSERT(r2 && r2->type == REDIS_REPLY_STATUS);
    if (r1)
        freeReplyObject(r1);
    if (r2)
        freeReplyObject(r2);
    redisFree(c);
}

/* ---- limits add up ---- */

#define RATE(c, w) {(c), (w)}
#define OFF {0, 60000}
#define UNSET {0, 0}
#define MIN 60000

struct addup_req {
    const char *token;    /* NULL: anonymous; "*": a fresh random token */
    const char *ip;       /* NULL: 192.0.2.1 */
    char verdict;         /* A allow, L limited, N no limit applies */
    long limit;           /* X-RateLimit-Limit of the verdict */
    long remaining;       /* -1: not checked */
    long window_s;        /* 0: not checked */
};

struct addup_case {
    const char *name;
    struct conf_rate per_ip, per_token;          /* [limits] */
    struct conf_rate route_ip, route_token;      /* the route's own; UNSET: [limits] */
    unsigned ipv6_prefix;                        /* 0: 64 */
    struct addup_req req[12];                    /* up to the first with verdict 0 */
};

static const struct addup_case addup_cases[] = {
    {"ten random tokens cannot escape per_ip 3/1m", RATE(3, MIN), RATE(100, MIN), UNSET, UNSET,
     0, {{"*", NULL, 'A', 3, 2, 60}, {"*", NULL, 'A', 3, 1, 60}, {"*", NULL, 'A', 3, 0, 60},
         {"*", NULL, 'L', 3, 0, 60}, {"*", NULL, 'L', 3, 0, 60}, {"*", NULL, 'L', 3, 0, 60},
         {"*", NULL, 'L', 3, 0, 60}, {"*", NULL, 'L', 3, 0, 60}, {"*", NULL, 'L', 3, 0, 60},
         {"*", NULL, 'L', 3, 0, 60}}},
    {"the token's limit is tighter, then the IP's", RATE(3, MIN), RATE(2, MIN), UNSET, UNSET, 0,
     {{"t", NULL, 'A', 2, 1, 60}, {"t", NULL, 'A', 2, 0, 60}, {"t", NULL, 'L', 2, 0, 60},
      {NULL, NULL, 'A', 3, 0, 60}, {NULL, NULL, 'L', 3, 0, 60}}},
    {"a request the token refuses spends no IP budget", RATE(3, MIN), RATE(1, MIN), UNSET,
     UNSET, 0,
     {{"x", NULL, 'A', 1, 0, 60}, {"x", NULL, 'L', 1, 0, 60}, {"x", NULL, 'L', 1, 0, 60},
      {NULL, NULL, 'A', 3, 1, 60}, {NULL, NULL, 'A', 3, 0, 60}, {NULL, NULL, 'L', 3, 0, 60}}},
    {"a request the IP refuses spends no token budget", RATE(1, MIN), RATE(5, MIN), UNSET,
     UNSET, 0,
     {{"y", "192.0.2.10", 'A', 1, 0, 60}, {"y", "192.0.2.10", 'L', 1, 0, 60},
      {"y", "192.0.2.11", 'A', 1, 0, 60}, {"y", "192.0.2.12", 'A', 1, 0, 60},
      {"y", "192.0.2.13", 'A', 1, 0, 60}, {"y", "192.0.2.14", 'A', 1, 0, 60},
      {"y", "192.0.2.15", 'L', 5, 0, 60}}},
    {"both refuse: the longest Retry-After speaks", RATE(1, MIN), RATE(1, 10000), UNSET, UNSET,
     0, {{"z", NULL, 'A', 1, 0, 60}, {"z", NULL, 'L', 1, 0, 60},
         {"z", "192.0.2.20", 'L', 1, 0, 10}}},
    {"equal remaining: the smaller limit speaks (IP)", RATE(3, MIN), RATE(4, MIN), UNSET,
     UNSET, 0, {{"w", "192.0.2.30", 'A', 3, 2, 60}, {"w", "192.0.2.31", 'A', 3, 2, 60}}},
    {"equal remaining: the smaller limit speaks (token)", RATE(4, MIN), RATE(3, MIN), UNSET,
     UNSET, 0, {{NULL, "192.0.2.40", 'A', 4, 3, 60}, {"v", "192.0.2.40", 'A', 3, 2, 60}}},
    {"per_ip off: the token's limit alone", OFF, RATE(2, MIN), UNSET, UNSET, 0,
     {{"*", NULL, 'A', 2, 1, 60}, {"*", NULL, 'A', 2, 1, 60}, {"*", NULL, 'A', 2, 1, 60},
      {"s", NULL, 'A', 2, 1, 60}, {"s", NULL, 'A', 2, 0, 60}, {"s", NULL, 'L', 2, 0, 60},
      {NULL, NULL, 'N', 0, -1, 0}}},
    {"per_token off: a token is held to the IP's limit", RATE(2, MIN), OFF, UNSET, UNSET, 0,
     {{"a", NULL, 'A', 2, 1, 60}, {"b", NULL, 'A', 2, 0, 60}, {"c", NULL, 'L', 2, 0, 60}}},
    {"both off: no limit", OFF, OFF, UNSET, UNSET, 0,
     {{"a", NULL, 'N', 0, -1, 0}, {NULL, NULL, 'N', 0, -1, 0}}},
    {"the route's own limits add up too", RATE(5, MIN), RATE(5, MIN), RATE(2, MIN),
     RATE(3, MIN), 0,
     {{"r", NULL, 'A', 2, 1, 60}, {"r", NULL, 'A', 2, 0, 60}, {"r", NULL, 'L', 2, 0, 60},
      {"*", NULL, 'L', 2, 0, 60}}},
    {"the route turns per_ip off for itself", RATE(1, MIN), RATE(3, MIN), OFF, UNSET, 0,
     {{"q", NULL, 'A', 3, 2, 60}, {"q", NULL, 'A', 3, 1, 60}, {"q", NULL, 'A', 3, 0, 60},
      {"q", NULL, 'L', 3, 0, 60}, {NULL, NULL, 'N', 0, -1, 0}}},
    {"IPv6: one /64 is one caller", RATE(2, MIN), RATE(100, MIN), UNSET, UNSET, 64,
     {{NULL, "2001:db8:1:2::1", 'A', 2, 1, 60}, {"*", "2001:db8:1:2:ffff:ffff:ffff:ffff", 'A',
      2, 0, 60}, {NULL, "2001:db8:1:2:abcd::9", 'L', 2, 0, 60},
      {NULL, "2001:db8:1:3::1", 'A', 2, 1, 60}, {NULL, "2001:DB8:1:3:0:0:0:2", 'A', 2, 0, 60},
      {"*", "2001:db8:1:3::3", 'L', 2, 0, 60}}},
    {"IPv6: one /48 is one caller", RATE(2, MIN), RATE(100, MIN), UNSET, UNSET, 48,
     {{NULL, "2001:db8:1:2::1", 'A', 2, 1, 60}, {NULL, "2001:db8:1:ffff::1", 'A', 2, 0, 60},
      {NULL, "2001:db8:1:3::1", 'L', 2, 0, 60}, {NULL, "2001:db8:2::1", 'A', 2, 1, 60}}},
    {"IPv6 /128: each address its own caller", RATE(1, MIN), RATE(100, MIN), UNSET, UNSET, 128,
     {{NULL, "2001:db8::1", 'A', 1, 0, 60}, {NULL, "2001:db8::2", 'A', 1, 0, 60},
      {NULL, "2001:db8::1", 'L', 1, 0, 60}}},
    {"an IPv4-mapped address is the IPv4 address", RATE(2, MIN), RATE(100, MIN), UNSET, UNSET,
     64, {{NULL, "192.0.2.50", 'A', 2, 1, 60}, {"*", "::ffff:192.0.2.50", 'A', 2, 0, 60},
          {NULL, "::FFFF:192.0.2.50", 'L', 2, 0, 60}, {NULL, "192.0.2.51", 'A', 2, 1, 60}}},
};

static void random_token(char *out, size_t cap)
{
    unsigned char r[12];
    CU_ASSERT_FATAL(getrandom(r, sizeof r, 0) == (ssize_t)sizeof r);
    size_t n = 0;
    n += (size_t)snprintf(out, cap, "rnd-");
    for (size_t i = 0; i < sizeof r && n + 3 <= cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%02x", r[i]);
}

static void run_addup_cases(bool redis)
{
    for (size_t c = 0; c < sizeof addup_cases / sizeof addup_cases[0]; c++) {
        const struct addup_case *tc = &addup_cases[c];
        conf_defaults();
        conf->redis_enabled = redis;
        conf->redis_on_error = CONF_ON_ERROR_DENY;  /* an undecided request shows as such */
        conf->per_ip = tc->per_ip;
        conf->per_token = tc->per_token;
        if (tc->ipv6_prefix)
            conf->ipv6_prefix = tc->ipv6_prefix;
        static struct conf_route route;
        memset(&route, 0, sizeof route);
        snprintf(route.name, sizeof route.name, "addup");
        route.per_ip = tc->route_ip;
        route.per_token = tc->route_token;
        if (redis)
            flushall();
        /* the only limiter alive: a fresh local store */
        struct limiter *l = limiter_new(base, conf);
        CU_ASSERT_PTR_NOT_NULL_FATAL(l);
        if (redis)
            CU_ASSERT_TRUE(wait_redis_ready(l, 3000));
        if (redis)
            flushall();  /* the readiness probe's keys */
        for (size_t i = 0; i < sizeof tc->req / sizeof tc->req[0] && tc->req[i].verdict; i++) {
            const struct addup_req *rq = &tc->req[i];
            char tok[64];
            const char *token = rq->token;
            if (token && strcmp(token, "*") == 0) {
                random_token(tok, sizeof tok);
                token = tok;
            }
            struct rl_result res;
            enum limiter_verdict v = check_on(l, base, &route, token,
                                              rq->ip ? rq->ip : "192.0.2.1", &res, NULL);
            enum limiter_verdict want = rq->verdict == 'A' ? LIMITER_ALLOW
                                        : rq->verdict == 'L' ? LIMITER_LIMITED : LIMITER_NONE;
            bool ok = v == want && res.limit == rq->limit &&
                      (rq->remaining < 0 || res.remaining == rq->remaining) &&
                      (rq->window_s == 0 || res.window_s == rq->window_s) &&
                      (v != LIMITER_LIMITED || res.retry_after_s >= 1);
            if (!ok)
                printf("\n  %s (%s), request %zu: verdict %d limit %ld remaining %ld window %ld"
                       " retry %ld; want %c limit %ld remaining %ld window %ld\n", tc->name,
                       redis ? "redis" : "local", i + 1, (int)v, res.limit, res.remaining,
                       res.window_s, res.retry_after_s, rq->verdict, rq->limit, rq->remaining,
                       rq->window_s);
            CU_ASSERT_TRUE(ok);
        }
        limiter_free(l);
    }
}

static void test_addup_local(void)
{
    run_addup_cases(false);
}

static void test_addup_redis(void)
{
    run_addup_cases(true);
}

/* In Redis, a denied request writes nothing: neither the key of the limit
 * that refused nor the keys of those that would have allowed. */
static void test_denied_writes_nothing(void)
{
    conf_defaults();
    conf->per_ip.count = 1;
    conf->redis_on_error = CONF_ON_ERROR_DENY;
    struct limiter *l = limiter_new(base, conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_TRUE(wait_redis_ready(l, 3000));
    flushall();
    struct rl_result res;
    CU_ASSERT_EQUAL(check_on(l, base, NULL, NULL, "192.0.2.60", &res, NULL), LIMITER_ALLOW);
    static const char ipkey[] = "envelopd:{ip:192.0.2.60}:default:1/60000";
    redisReply *before = admin_cmd("GET %s", ipkey);
    CU_ASSERT_FATAL(before && before->type == REDIS_REPLY_STRING);
    CU_ASSERT_EQUAL(check_on(l, base, NULL, "never-stored", "192.0.2.60", &res, NULL),
                    LIMITER_LIMITED);
    CU_ASSERT_EQUAL(res.limit, 1);
    redisReply *after = admin_cmd("GET %s", ipkey);
    CU_ASSERT_FATAL(after && after->type == REDIS_REPLY_STRING);
    CU_ASSERT_STRING_EQUAL(after->str, before->str);  /* the refusing key: untouched */
    freeReplyObject(before);
    freeReplyObject(after);
    redisReply *n = admin_cmd("DBSIZE");  /* the token's key was never written */
    CU_ASSERT(n && n->type == REDIS_REPLY_INTEGER && n->integer == 1);
    if (n)
        freeReplyObject(n);
    /* that token from another address: its budget is whole */
    CU_ASSERT_EQUAL(check_on(l, base, NULL, "never-stored", "192.0.2.61", &res, NULL),
                    LIMITER_ALLOW);
    CU_ASSERT_EQUAL(res.limit, 1);  /* the IP (0 left) is tighter than the token (4 left) */
    CU_ASSERT_EQUAL(check_on(l, base, NULL, "never-stored", "192.0.2.62", &res, NULL),
                    LIMITER_ALLOW);
    n = admin_cmd("DBSIZE");
    CU_ASSERT(n && n->type == REDIS_REPLY_INTEGER && n->integer == 4);
    if (n)
        freeReplyObject(n);
    limiter_free(l);
}

/* The key each address is named by in Redis: IPv6 by its network. */
static void test_ip_keys(void)
{
    static const struct {
        unsigned prefix;
        const char *ip;
        const char *id;     /* NULL: a keyed hash ("iph:" and 32 hex digits) */
    } t[] = {
        {64, "2001:db8:1:2:aaaa:bbbb:cccc:dddd", "ip:2001:db8:1:2::/64"},
        {64, "2001:DB8:0:0:1::5", "ip:2001:db8::/64"},
        {64, "::1", "ip:::/64"},
        {48, "2001:db8:1:2::1", "ip:2001:db8:1::/48"},
        {56, "2001:db8:0:1ff::1", "ip:2001:db8:0:100::/56"},
        {127, "2001:db8::3", "ip:2001:db8::2/127"},
        {128, "2001:db8::1", "ip:2001:db8::1/128"},
        {1, "ffff::1", "ip:8000::/1"},
        {64, "::ffff:192.0.2.7", "ip:192.0.2.7"},
        {128, "::ffff:192.0.2.7", "ip:192.0.2.7"},
        {64, "192.0.2.7", "ip:192.0.2.7"},
        {64, "", "ip:-"},
        {64, "fe80::1%eth0", NULL},
        {64, "not an address", NULL},
        {64, "1.2.3.4.5", NULL},
    };
    conf_defaults();
    conf->redis_on_error = CONF_ON_ERROR_DENY;
    struct limiter *l = limiter_new(base, conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_TRUE(wait_redis_ready(l, 3000));
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        conf->ipv6_prefix = t[i].prefix;
        limiter_set_conf(l, conf);
        flushall();
        CU_ASSERT_EQUAL(check_on(l, base, NULL, NULL, t[i].ip, NULL, NULL), LIMITER_ALLOW);
        redisReply *r = admin_cmd("KEYS *");
        CU_ASSERT_FATAL(r && r->type == REDIS_REPLY_ARRAY);
        CU_ASSERT_EQUAL(r->elements, 1);
        if (r->elements == 1) {
            const char *key = r->element[0]->str;
            char want[160];
            if (t[i].id) {
                snprintf(want, sizeof want, "envelopd:{%s}:default:1000/60000", t[i].id);
                if (strcmp(key, want) != 0)
                    printf("\n  %s /%u: key %s, want %s\n", t[i].ip, t[i].prefix, key, want);
                CU_ASSERT_STRING_EQUAL(key, want);
            } else {
                CU_ASSERT(strncmp(key, "envelopd:{iph:", 14) == 0 &&
                          strspn(key + 14, "0123456789abcdef") == 32 &&
                          strcmp(key + 46, "}:default:1000/60000") == 0);
                CU_ASSERT_PTR_NULL(strstr(key, t[i].ip));
            }
        }
        freeReplyObject(r);
    }
    limiter_free(l);
}

/* One synchronous decision in memory mode for Q. */
static enum limiter_verdict decide_mem(struct limiter *l, const struct limiter_query *q,
                                       struct rl_result *res)
{
    enum limiter_verdict v = LIMITER_NONE;
    struct limiter_pending *p = NULL;
    struct answer ans = {0};
    CU_ASSERT_EQUAL(limiter_check(l, q, &v, res, on_answer, &ans, &p), 1);
    return v;
}

/* A verified caller: its plan's per_token instead of the route's, and its
 * organization's per_org shared by every caller of the org. */
static void test_identity_limits(void)
{
    conf_defaults();
    conf->redis_enabled = false;
    conf->per_org.count = 4;
    conf->per_org.window_ms = 60000;
    struct limiter *l = limiter_new(base, conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    struct conf_rate plan = {.count = 7, .window_ms = 60000};
    struct rl_result res;
    /* the plan's 7 instead of [limits]' 5; per_org off for this caller (no org) */
    struct limiter_query q = {.token = "jwt:plan-user", .token_len = 13, .client_ip = "192.0.2.7",
                              .token_rate = &plan};
    for (int i = 0; i < 7; i++)
        CU_ASSERT_EQUAL(decide_mem(l, &q, &res), LIMITER_ALLOW);
    CU_ASSERT_EQUAL(decide_mem(l, &q, &res), LIMITER_LIMITED);
    CU_ASSERT_EQUAL(res.limit, 7);
    /* two callers of one org share its 4; the tightest limit names the headers */
    struct limiter_query a = {.token = "key:a", .token_len = 5, .client_ip = "192.0.2.8",
                              .org = "acme"};
    struct limiter_query b = {.token = "key:b", .token_len = 5, .client_ip = "192.0.2.9",
                              .org = "acme"};
    CU_ASSERT_EQUAL(decide_mem(l, &a, &res), LIMITER_ALLOW);
    CU_ASSERT_EQUAL(res.limit, 4);
    CU_ASSERT_EQUAL(res.remaining, 3);
    CU_ASSERT_EQUAL(decide_mem(l, &b, &res), LIMITER_ALLOW);
    CU_ASSERT_EQUAL(decide_mem(l, &a, &res), LIMITER_ALLOW);
    CU_ASSERT_EQUAL(decide_mem(l, &b, &res), LIMITER_ALLOW);
    CU_ASSERT_EQUAL(res.remaining, 0);
    CU_ASSERT_EQUAL(decide_mem(l, &a, &res), LIMITER_LIMITED);
    CU_ASSERT_EQUAL(res.limit, 4);
    /* another org is untouched; an org named like a token is not that token */
    struct limiter_query c = {.token = "key:c", .token_len = 5, .client_ip = "192.0.2.10",
                              .org = "globex"};
    CU_ASSERT_EQUAL(decide_mem(l, &c, &res), LIMITER_ALLOW);
    struct limiter_query d = {.token = "org:acme", .token_len = 8, .client_ip = "192.0.2.11"};
    CU_ASSERT_EQUAL(decide_mem(l, &d, &res), LIMITER_ALLOW);
    /* a plan's per_org replaces [limits] per_org */
    struct conf_rate big = {.count = 100, .window_ms = 60000};
    a.org_rate = &big;
    CU_ASSERT_EQUAL(decide_mem(l, &a, &res), LIMITER_ALLOW);
    limiter_free(l);
}

/* per_ip_auth_failures: looking does not spend; N failures, then blocked. */
static void test_auth_failures(void)
{
    conf_defaults();
    conf->redis_enabled = false;
    conf->per_ip_auth_failures.count = 3;
    conf->per_ip_auth_failures.window_ms = 60000;
    struct limiter *l = limiter_new(base, conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    struct rl_result res;
    for (int i = 0; i < 5; i++)
        CU_ASSERT_FALSE(limiter_auth_blocked(l, "198.51.100.1", &res));
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_FALSE(limiter_auth_blocked(l, "198.51.100.1", &res));
        limiter_auth_failed(l, "198.51.100.1");
    }
    CU_ASSERT_TRUE(limiter_auth_blocked(l, "198.51.100.1", &res));
    CU_ASSERT_TRUE(res.retry_after_s >= 1 && res.retry_after_s <= 20);
    CU_ASSERT_EQUAL(res.limit, 3);
    /* a charge given back (a pending lookup that passed): one more try, then blocked */
    limiter_auth_refund(l, "198.51.100.1");
    CU_ASSERT_FALSE(limiter_auth_blocked(l, "198.51.100.1", &res));
    limiter_auth_failed(l, "198.51.100.1");
    CU_ASSERT_TRUE(limiter_auth_blocked(l, "198.51.100.1", &res));
    /* refunds never go below empty */
    for (int i = 0; i < 10; i++)
        limiter_auth_refund(l, "198.51.100.3");
    for (int i = 0; i < 3; i++)
        limiter_auth_failed(l, "198.51.100.3");
    CU_ASSERT_TRUE(limiter_auth_blocked(l, "198.51.100.3", &res));
    /* another address, and the same IPv6 /64 */
    CU_ASSERT_FALSE(limiter_auth_blocked(l, "198.51.100.2", &res));
    for (int i = 0; i < 3; i++)
        limiter_auth_failed(l, "2001:db8::1");
    CU_ASSERT_TRUE(limiter_auth_blocked(l, "2001:db8::ffff", &res));
    /* the request limits are another budget */
    struct limiter_query q = {.token = "t", .token_len = 1, .client_ip = "198.51.100.1"};
    CU_ASSERT_EQUAL(decide_mem(l, &q, &res), LIMITER_ALLOW);
    /* off: never blocked */
    conf->per_ip_auth_failures.count = 0;
    CU_ASSERT_FALSE(limiter_auth_blocked(l, "198.51.100.1", &res));
    limiter_free(l);
}

struct cmd_answer {
    bool done;
    int type;
    size_t elements;
    char first[32];
};

static void on_cmd(const redisReply *r, void *arg)
{
    struct cmd_answer *a = arg;
    a->done = true;
    a->type = r ? r->type : -1;
    a->elements = r && r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    if (a->elements && r->element[0]->type == REDIS_REPLY_STRING)
        snprintf(a->first, sizeof a->first, "%s", r->element[0]->str);
}

/* Another command than the script on the limiter's connection (auth's HGETALL). */
static void test_redis_command(void)
{
    conf_defaults();
    flushall();
    redisReply *r = admin_cmd("HSET envelopd:{abc}:apikey status active");
    if (r)
        freeReplyObject(r);
    struct limiter *l = limiter_new(base, conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_TRUE(wait_redis_ready(l, 3000));
    struct redis *rc = limiter_redis(l);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rc);
    const char *argv[] = {"HGETALL", "envelopd:{abc}:apikey"};
    const size_t lens[] = {7, 21};
    struct cmd_answer a = {0}, b = {0};
    CU_ASSERT_PTR_NOT_NULL(redis_command(rc, 2, argv, lens, on_cmd, &a));
    /* the limiter's own calls still work on the same connection, in order */
    struct rl_result res;
    CU_ASSERT_EQUAL(check(l, TOKEN, &res), LIMITER_ALLOW);
    run_until(base, &a.done, 2000);
    CU_ASSERT_TRUE(a.done);
    CU_ASSERT_EQUAL(a.type, REDIS_REPLY_ARRAY);
    CU_ASSERT_EQUAL(a.elements, 2);
    CU_ASSERT_STRING_EQUAL(a.first, "status");
    /* a missing hash: an empty array, not an error */
    const char *argv2[] = {"HGETALL", "envelopd:{none}:apikey"};
    const size_t lens2[] = {7, 22};
    CU_ASSERT_PTR_NOT_NULL(redis_command(rc, 2, argv2, lens2, on_cmd, &b));
    run_until(base, &b.done, 2000);
    CU_ASSERT_EQUAL(b.type, REDIS_REPLY_ARRAY);
    CU_ASSERT_EQUAL(b.elements, 0);
    /* an error reply is passed on as an error, never retried as NOSCRIPT */
    struct cmd_answer e = {0};
    const char *argv3[] = {"NOSUCHCOMMAND"};
    const size_t lens3[] = {13};
    CU_ASSERT_PTR_NOT_NULL(redis_command(rc, 1, argv3, lens3, on_cmd, &e));
    run_until(base, &e.done, 2000);
    CU_ASSERT_EQUAL(e.type, REDIS_REPLY_ERROR);
    CU_ASSERT_PTR_NULL(redis_command(rc, 0, argv3, lens3, on_cmd, &e));
    limiter_free(l);
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("limiter_redis", suite_init, suite_clean);
    CU_add_test(s, "L allowed then limited through Redis", test_limit_through_redis);
    CU_add_test(s, "route limits override [limits], per route", test_route_override);
    CU_add_test(s, "unset rate: no limit, synchronously", test_unset_rate_is_none);
    CU_add_test(s, "two instances share one budget exactly", test_shared_between_instances);
    CU_add_test(s, "NOSCRIPT: script reloaded after SCRIPT FLUSH", test_noscript_reload);
    CU_add_test(s, "keys carry no token", test_keys_hide_tokens);
    CU_add_test(s, "CLIENT PAUSE: answered within the timeout", test_client_pause);
    CU_add_test(s, "cancel and free with queries pending", test_cancel_and_free);
    CU_add_test(s, "reload to a new address", test_reload_address);
    CU_add_test(s, "memory mode", test_memory_mode);
    CU_add_test(s, "verified callers: plan and organization limits", test_identity_limits);
    CU_add_test(s, "failed authentications per IP", test_auth_failures);
    CU_add_test(s, "other commands on the limiter's connection", test_redis_command);
    CU_add_test(s, "unix socket, SELECT, AUTH", test_unix_auth_select);
    CU_add_test(s, "limits add up (local store)", test_addup_local);
    CU_add_test(s, "limits add up (Redis)", test_addup_redis);
    CU_add_test(s, "a denied request writes no key", test_denied_writes_nothing);
    CU_add_test(s, "IPv6 keyed by network, v4-mapped as IPv4", test_ip_keys);
    CU_add_test(s, "Redis killed, on_error, restarted", test_redis_down_and_back);
}
