/*
 * test_upstream: one worker's pools and server health, over real loopback
 * TCP connections on a real event_base. Round robin skips tried and down
 * servers and tries a server again once its backoff passed; the backoff
 * doubles up to its cap and is logged once per transition; the idle pool is
 * most-recently-used first; keepalive = 0 and unreusable connections are
 * closed; idle connections beyond keepalive are kept, then closed once
 * unused for UPSTREAM_SURPLUS_IDLE_MS, least recently used first, and never
 * below keepalive (even while a later keepalive_timeout is armed); any idle
 * connection unused for keepalive_timeout is closed; a pooled connection the server closes leaves the pool; a
 * failing server's pool is emptied; a response timeout marks a server of
 * a larger group down but never a group's only server (whose pool it
 * leaves alone), while a failed connect still marks that one down; and freeing a set with idle
 * connections and an armed purge timer leaks nothing (ASan, valgrind).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <event2/event.h>

#include "clock.h"
#include "conf.h"
#include "log.h"
#include "testloop.h"
#include "upstream.h"

void test_register(void);

#define N_SERVERS 3
#define N_CONNS 4

/* A listening socket per server; accepted peers kept to watch for closes. */
struct fixture {
    struct event_base *base;
    struct conn_flushq q;
    struct conf *conf;
    struct upstream_set *set;
    int lfd[N_SERVERS];
    int log_fd;
};

static struct fixture fx;

static int listen_loopback(struct conf_addr *a)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
        close(fd);
        return -1;
    }
    memset(a, 0, sizeof *a);
    memcpy(&a->sa, &sin, sizeof sin);
    a->salen = sizeof sin;
    snprintf(a->text, sizeof a->text, "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
    return fd;
}

/* A fresh set over N_SERVERS listening servers with KEEPALIVE. */
static void setup(unsigned keepalive)
{
    memset(&fx, 0, sizeof fx);
    fx.base = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(fx.base);
    CU_ASSERT_EQUAL_FATAL(conn_flushq_init(&fx.q, fx.base), 0);
    fx.conf = calloc(1, sizeof *fx.conf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fx.conf);
    struct conf_upstream *u = &fx.conf->upstreams[0];
    snprintf(u->name, sizeof u->name, "pool");
    u->n_servers = N_SERVERS;
    u->keepalive = keepalive;
    u->keepalive_timeout_ms = 60000;
    u->down_backoff_ms = 100;
    u->down_backoff_max_ms = 350;
    for (int i = 0; i < N_SERVERS; i++) {
        fx.lfd[i] = listen_loopback(&u->servers[i]);
        CU_ASSERT_FATAL(fx.lfd[i] >= 0);
    }
    fx.conf->n_upstreams = 1;
    fx.set = upstream_set_new(fx.base, fx.conf, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fx.set);
    fx.log_fd = memfd_create("upstream-log", 0);
    CU_ASSERT_FATAL(fx.log_fd >= 0);
    log_set_fd(fx.log_fd);
    log_set_level(CONF_LOG_INFO);
}

static void teardown(void)
{
    upstream_set_free(fx.set);
    conn_flushq_cleanup(&fx.q);
    event_base_free(fx.base);
    for (int i = 0; i < N_SERVERS; i++)
        close(fx.lfd[i]);
    log_set_fd(-1);
    close(fx.log_fd);
    free(fx.conf);
}

/* How many log lines carry "event":"EV". */
static int log_count(const char *ev)
{
    char buf[16384];
    ssize_t n = pread(fx.log_fd, buf, sizeof buf - 1, 0);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    char needle[64];
    snprintf(needle, sizeof needle, "\"event\":\"%s\"", ev);
    int count = 0;
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p++)
        count++;
    return count;
}

static void on_conn_event(struct conn *cn, short what, void *arg)
{
    (void)cn;
    *(short *)arg |= what;
}

/* A connected upstream connection to server S, and the server's end of it. */
static struct upconn *connect_to(struct up_server *s, int *peer)
{
    short what = 0;
    struct upconn *c = upstream_connect(s, &fx.q);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    conn_setcb(&c->conn, NULL, NULL, on_conn_event, &what);
    for (int i = 0; i < 50 && !(what & (CONN_EV_CONNECTED | CONN_EV_ERROR)); i++)
        testloop_pump(fx.base, 100);
    CU_ASSERT_FATAL(what == CONN_EV_CONNECTED);
    conn_setcb(&c->conn, NULL, NULL, NULL, NULL);
    *peer = accept4(fx.lfd[upstream_server_index(s)], NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    CU_ASSERT_FATAL(*peer >= 0);
    return c;
}

/* 1: the gateway closed the connection (EOF on the server's end); 0: open. */
static int peer_closed(int peer)
{
    char b;
    ssize_t n = recv(peer, &b, 1, MSG_DONTWAIT);
    if (n == 0)
        return 1;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    return -1;
}

static struct up_server *server(int i)
{
    return &fx.set->groups[0].servers[i];
}

static void test_round_robin(void)
{
    setup(4);
    struct up_group *g = &fx.set->groups[0];
    uint64_t now = 1000;
    CU_ASSERT_PTR_EQUAL(upstream_pick(g, now, 0), server(0));
    CU_ASSERT_PTR_EQUAL(upstream_pick(g, now, 0), server(1));
    CU_ASSERT_PTR_EQUAL(upstream_pick(g, now, 0), server(2));
    CU_ASSERT_PTR_EQUAL(upstream_pick(g, now, 0), server(0));
    /* Tried servers are skipped; all tried: none. */
    CU_ASSERT_PTR_EQUAL(upstream_pick(g, now, 1u << 1), server(2));
    CU_ASSERT_PTR_NULL(upstream_pick(g, now, 0x7));
    teardown();
}

static void test_down_backoff(void)
{
    setup(4);
    struct up_group *g = &fx.set->groups[0];
    uint64_t now = 1000;
    upstream_server_failed(server(1), now, "refused");
    CU_ASSERT_TRUE(server(1)->down);
    CU_ASSERT_EQUAL(server(1)->down_until_ms, now + 100);
    CU_ASSERT_EQUAL(log_count("upstream_down"), 1);
    for (int i = 0; i < 6; i++)
        CU_ASSERT_PTR_NOT_EQUAL(upstream_pick(g, now + 99, 0), server(1));
    /* Backoff passed: tried again (half-open) in its turn. */
    bool seen = false;
    for (int i = 0; i < 3; i++)
        seen |= upstream_pick(g, now + 100, 0) == server(1);
    CU_ASSERT_TRUE(seen);
    /* Failing again doubles the backoff up to the cap, logged once. */
    upstream_server_failed(server(1), now + 100, "refused");
    CU_ASSERT_EQUAL(server(1)->backoff_ms, 200);
    upstream_server_failed(server(1), now + 300, "refused");
    CU_ASSERT_EQUAL(server(1)->backoff_ms, 350);
    CU_ASSERT_EQUAL(server(1)->down_until_ms, now + 300 + 350);
    CU_ASSERT_EQUAL(log_count("upstream_down"), 1);
    upstream_server_ok(server(1));
    CU_ASSERT_FALSE(server(1)->down);
    CU_ASSERT_EQUAL(server(1)->backoff_ms, 0);
    upstream_server_ok(server(1));
    CU_ASSERT_EQUAL(log_count("upstream_up"), 1);
    /* After recovery the first failure starts from the base backoff again. */
    upstream_server_failed(server(1), now + 1000, "timeout");
    CU_ASSERT_EQUAL(server(1)->backoff_ms, 100);
    CU_ASSERT_EQUAL(log_count("upstream_down"), 2);
    teardown();
}

static void test_timeout_alone_stays_up(void)
{
    setup(4);
    /* A second group, "solo", with the first server as its only one. */
    struct conf_upstream *u = &fx.conf->upstreams[1];
    *u = fx.conf->upstreams[0];
    snprintf(u->name, sizeof u->name, "solo");
    u->n_servers = 1;
    fx.conf->n_upstreams = 2;
    struct upstream_set *set = upstream_set_new(fx.base, fx.conf, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(set);
    struct up_group *solo = &set->groups[1];
    struct up_server *s = &solo->servers[0];
    uint64_t now = 1000;
    int p;
    upstream_release(connect_to(s, &p), true);
    CU_ASSERT_EQUAL_FATAL(s->n_idle, 1);

    /* Slow, but alone: still picked, its pool kept, nothing logged. */
    for (int i = 0; i < 3; i++)
        CU_ASSERT_FALSE(upstream_server_timed_out(s, now + (uint64_t)i));
    CU_ASSERT_FALSE(s->down);
    CU_ASSERT_PTR_EQUAL(upstream_pick(solo, now + 10, 0), s);
    CU_ASSERT_EQUAL(s->n_idle, 1);
    CU_ASSERT_EQUAL(log_count("upstream_down"), 0);

    /* A connect that fails still takes it out for its backoff. */
    upstream_server_failed(s, now, "connection refused");
    CU_ASSERT_TRUE(s->down);
    CU_ASSERT_PTR_NULL(upstream_pick(solo, now + 99, 0));
    CU_ASSERT_EQUAL(log_count("upstream_down"), 1);

    /* In a group of three a timed-out server is skipped for its backoff. */
    struct up_group *g = &fx.set->groups[0];
    CU_ASSERT_TRUE(upstream_server_timed_out(server(2), now));
    CU_ASSERT_TRUE(server(2)->down);
    CU_ASSERT_EQUAL(server(2)->down_until_ms, now + 100);
    for (int i = 0; i < 6; i++)
        CU_ASSERT_PTR_NOT_EQUAL(upstream_pick(g, now + 99, 0), server(2));
    CU_ASSERT_EQUAL(log_count("upstream_down"), 2);

    upstream_set_free(set);
    close(p);
    teardown();
}

static void test_pool_lifo(void)
{
    setup(4);
    int pa, pb;
    struct upconn *a = connect_to(server(0), &pa);
    struct upconn *b = connect_to(server(0), &pb);
    CU_ASSERT_PTR_NULL(upstream_take_idle(server(0)));
    upstream_release(a, true);
    upstream_release(b, true);
    CU_ASSERT_EQUAL(server(0)->n_idle, 2);
    CU_ASSERT_PTR_NULL(upstream_take_idle(server(1)));
    /* Most recently used first: the warm one. */
    struct upconn *t = upstream_take_idle(server(0));
    CU_ASSERT_PTR_EQUAL(t, b);
    CU_ASSERT_EQUAL(t->uses, 1);
    CU_ASSERT_FALSE(t->idle);
    CU_ASSERT_EQUAL(server(0)->n_idle, 1);
    /* Unreusable: closed, not pooled. */
    upstream_release(t, false);
    CU_ASSERT_EQUAL(server(0)->n_idle, 1);
    testloop_pump(fx.base, 50);  /* a closed conn's socket is closed at the end of the turn */
    CU_ASSERT_EQUAL(peer_closed(pb), 1);
    CU_ASSERT_EQUAL(peer_closed(pa), 0);
    close(pa);
    close(pb);
    teardown();
}

static void test_keepalive_zero(void)
{
    setup(0);
    int p;
    struct upconn *c = connect_to(server(0), &p);
    upstream_release(c, true);
    CU_ASSERT_EQUAL(server(0)->n_idle, 0);
    CU_ASSERT_PTR_NULL(upstream_take_idle(server(0)));
    testloop_pump(fx.base, 50);  /* a closed conn's socket is closed at the end of the turn */
    CU_ASSERT_EQUAL(peer_closed(p), 1);
    close(p);
    teardown();
}

/* keepalive_requests = 3: the connection is pooled after its first and
 * second requests and closed after its third, like nginx's upstream
 * keepalive_requests; 0 (the default) never retires one. */
static void test_keepalive_requests(void)
{
    setup(4);
    fx.conf->upstreams[0].keepalive_requests = 3;
    int p;
    struct upconn *c = connect_to(server(0), &p);
    for (int use = 1; use <= 2; use++) {
        upstream_release(c, true);
        CU_ASSERT_EQUAL(server(0)->n_idle, 1);
        struct upconn *t = upstream_take_idle(server(0));
        CU_ASSERT_PTR_EQUAL_FATAL(t, c);
        CU_ASSERT_EQUAL(t->uses, (unsigned)use);
    }
    testloop_pump(fx.base, 20);
    CU_ASSERT_EQUAL(peer_closed(p), 0);
    upstream_release(c, true);
    CU_ASSERT_EQUAL(server(0)->n_idle, 0);
    CU_ASSERT_PTR_NULL(upstream_take_idle(server(0)));
    testloop_pump(fx.base, 50);
    CU_ASSERT_EQUAL(peer_closed(p), 1);
    close(p);

    fx.conf->upstreams[0].keepalive_requests = 0;
    c = connect_to(server(0), &p);
    for (int use = 1; use <= 50; use++) {
        upstream_release(c, true);
        c = upstream_take_idle(server(0));
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    }
    upstream_release(c, true);
    CU_ASSERT_EQUAL(server(0)->n_idle, 1);
    CU_ASSERT_EQUAL(peer_closed(p), 0);
    close(p);
    teardown();
}

static void test_surplus_purged(void)
{
    setup(1);
    int peer[N_CONNS];
    struct upconn *c[N_CONNS];
    for (int i = 0; i < N_CONNS; i++)
        c[i] = connect_to(server(0), &peer[i]);
    /* c[0] and c[1] go idle now, c[2] and c[3] later. */
    upstream_release(c[0], true);
    upstream_release(c[1], true);
    testloop_pump_for(fx.base, UPSTREAM_SURPLUS_IDLE_MS / 2);
    CU_ASSERT_EQUAL(server(0)->n_idle, 2);  /* beyond keepalive, but not unused long enough */
    upstream_release(c[2], true);
    upstream_release(c[3], true);
    CU_ASSERT_EQUAL(server(0)->n_idle, 4);
    /* The first two have been unused for the whole delay: closed, oldest first. */
    testloop_pump_for(fx.base, UPSTREAM_SURPLUS_IDLE_MS / 2 + 150);
    CU_ASSERT_EQUAL(server(0)->n_idle, 2);
    CU_ASSERT_EQUAL(peer_closed(peer[0]), 1);
    CU_ASSERT_EQUAL(peer_closed(peer[1]), 1);
    CU_ASSERT_EQUAL(peer_closed(peer[2]), 0);
    CU_ASSERT_EQUAL(peer_closed(peer[3]), 0);
    /* Then the rest of the surplus; keepalive's one stays for good: the most
     * recently used. */
    testloop_pump_for(fx.base, UPSTREAM_SURPLUS_IDLE_MS / 2 + 150);
    CU_ASSERT_EQUAL(server(0)->n_idle, 1);
    CU_ASSERT_EQUAL(peer_closed(peer[2]), 1);
    CU_ASSERT_EQUAL(peer_closed(peer[3]), 0);
    testloop_pump_for(fx.base, UPSTREAM_SURPLUS_IDLE_MS + 100);
    CU_ASSERT_EQUAL(server(0)->n_idle, 1);
    struct upconn *kept = upstream_take_idle(server(0));
    CU_ASSERT_PTR_EQUAL(kept, c[3]);  /* c[] may be freed: only KEPT is touched */
    if (kept)
        upstream_release(kept, false);
    for (int i = 0; i < N_CONNS; i++)
        close(peer[i]);
    teardown();
}

static void test_keepalive_timeout(void)
{
    setup(4);
    fx.conf->upstreams[0].keepalive_timeout_ms = 400;
    int pa, pb;
    struct upconn *a = connect_to(server(0), &pa);
    struct upconn *b = connect_to(server(0), &pb);
    upstream_release(a, true);
    testloop_pump_for(fx.base, 200);
    upstream_release(b, true);
    /* Within keepalive, yet each is closed once unused for 400 ms. */
    testloop_pump_for(fx.base, 300);
    CU_ASSERT_EQUAL(server(0)->n_idle, 1);
    CU_ASSERT_EQUAL(peer_closed(pa), 1);
    CU_ASSERT_EQUAL(peer_closed(pb), 0);
    /* Reuse restarts the clock. */
    struct upconn *t = upstream_take_idle(server(0));
    CU_ASSERT_PTR_EQUAL_FATAL(t, b);
    upstream_release(t, true);
    testloop_pump_for(fx.base, 300);
    CU_ASSERT_EQUAL(server(0)->n_idle, 1);
    CU_ASSERT_EQUAL(peer_closed(pb), 0);
    testloop_pump_for(fx.base, 250);
    CU_ASSERT_EQUAL(server(0)->n_idle, 0);
    CU_ASSERT_EQUAL(peer_closed(pb), 1);
    close(pa);
    close(pb);
    teardown();
}

static void test_reuse_keeps_surplus(void)
{
    setup(1);
    int peer[2];
    struct upconn *a = connect_to(server(0), &peer[0]);
    struct upconn *b = connect_to(server(0), &peer[1]);
    upstream_release(a, true);
    upstream_release(b, true);
    /* Both in use again and back before the delay: the purge finds none
     * unused long enough, and the two stay. */
    testloop_pump_for(fx.base, UPSTREAM_SURPLUS_IDLE_MS * 3 / 4);
    struct upconn *x = upstream_take_idle(server(0));
    struct upconn *y = upstream_take_idle(server(0));
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    upstream_release(x, true);
    upstream_release(y, true);
    testloop_pump_for(fx.base, UPSTREAM_SURPLUS_IDLE_MS * 3 / 4);
    CU_ASSERT_EQUAL(server(0)->n_idle, 2);
    CU_ASSERT_EQUAL(peer_closed(peer[0]), 0);
    CU_ASSERT_EQUAL(peer_closed(peer[1]), 0);
    close(peer[0]);
    close(peer[1]);
    teardown();
}

static void test_server_closes_idle(void)
{
    setup(4);
    int pa, pb;
    struct upconn *a = connect_to(server(0), &pa);
    struct upconn *b = connect_to(server(0), &pb);
    upstream_release(a, true);
    upstream_release(b, true);
    close(pa);
    for (int i = 0; i < 20 && server(0)->n_idle != 1; i++)
        testloop_pump(fx.base, 100);
    CU_ASSERT_EQUAL_FATAL(server(0)->n_idle, 1);
    b = upstream_take_idle(server(0));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    /* Bytes nobody asked for also end an idle connection. */
    upstream_release(b, true);
    CU_ASSERT_EQUAL(send(pb, "x", 1, 0), 1);
    for (int i = 0; i < 20 && server(0)->n_idle != 0; i++)
        testloop_pump(fx.base, 100);
    CU_ASSERT_EQUAL(server(0)->n_idle, 0);
    close(pb);
    teardown();
}

static void test_failed_server_pool_emptied(void)
{
    setup(1);
    int peer[3];
    struct upconn *c[3];
    for (int i = 0; i < 3; i++)
        c[i] = connect_to(server(2), &peer[i]);
    for (int i = 0; i < 3; i++)
        upstream_release(c[i], true);
    CU_ASSERT_EQUAL(server(2)->n_idle, 3);
    upstream_server_failed(server(2), clock_ms(), "refused");
    CU_ASSERT_EQUAL(server(2)->n_idle, 0);
    testloop_pump(fx.base, 50);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(peer_closed(peer[i]), 1);
        close(peer[i]);
    }
    /* The purge timer still armed for them finds nothing to do. */
    testloop_pump_for(fx.base, UPSTREAM_SURPLUS_IDLE_MS + 100);
    CU_ASSERT_EQUAL(server(2)->n_idle, 0);
    teardown();
}

static void test_free_with_idle_and_timer(void)
{
    setup(1);
    int peer[3];
    for (int i = 0; i < 3; i++)
        upstream_release(connect_to(server(i % 2), &peer[i]), true);
    CU_ASSERT_EQUAL(server(0)->n_idle, 2);
    CU_ASSERT_TRUE(evtimer_pending(server(0)->purge, NULL));
    teardown();  /* closes them and frees the timers: ASan/valgrind see any leak */
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(peer_closed(peer[i]), 1);
        close(peer[i]);
    }
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("upstream", NULL, NULL);
    if (!s)
        return;
    CU_add_test(s, "round robin skips tried servers", test_round_robin);
    CU_add_test(s, "down server: backoff doubles to its cap, logged once", test_down_backoff);
    CU_add_test(s, "response timeout: a group's only server stays up", test_timeout_alone_stays_up);
    CU_add_test(s, "pool is most recently used first", test_pool_lifo);
    CU_add_test(s, "keepalive_requests retires a connection", test_keepalive_requests);
    CU_add_test(s, "keepalive = 0 pools nothing", test_keepalive_zero);
    CU_add_test(s, "surplus closed after the delay, oldest first", test_surplus_purged);
    CU_add_test(s, "surplus reused in time is kept", test_reuse_keeps_surplus);
    CU_add_test(s, "keepalive_timeout closes any idle connection", test_keepalive_timeout);
    CU_add_test(s, "server closing an idle connection", test_server_closes_idle);
    CU_add_test(s, "failed server's pool emptied", test_failed_server_pool_emptied);
    CU_add_test(s, "set freed with idle connections and a timer", test_free_with_idle_and_timer);
}
