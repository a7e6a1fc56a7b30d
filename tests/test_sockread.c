/*
 * test_sockread: a bufferevent whose socket sockread reads must look, to the
 * code above it, like one libevent reads: bytes land in the input in order
 * and the bufferevent's read callback runs; EOF and a reset peer reach its
 * event callback once, as BEV_EVENT_READING | BEV_EVENT_EOF or
 * BEV_EVENT_ERROR, and stop reading; the bufferevent's own EV_READ stays
 * off; disabled means nothing is read; a limit holds the input at exactly
 * that many bytes until the owner drains below it; one recv takes at most
 * 16 KiB; and an owner may detach and free itself from inside its callbacks
 * (the suite also runs under ASan and valgrind, which catch a touch after).
 * Each test drives a real event_base over a socketpair or a loopback TCP
 * pair.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "sockread.h"
#include "testloop.h"

void test_register(void);

/* What the bufferevent's callbacks saw. */
struct seen {
    int reads;            /* read callback runs */
    size_t last_len;      /* input length at the last one */
    int events;           /* event callback runs */
    short what;           /* flags of the last one */
    int err;              /* the socket error it could read */
};

/* One connection under test: the bufferevent's end, and the peer's. */
struct conn {
    struct event_base *base;
    struct bufferevent *bev;
    struct sockread r;
    int peer;
    struct seen seen;
};

static void on_read(struct bufferevent *bev, void *arg)
{
    struct seen *s = arg;
    s->reads++;
    s->last_len = evbuffer_get_length(bufferevent_get_input(bev));
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct seen *s = arg;
    (void)bev;
    s->events++;
    s->what = what;
    s->err = EVUTIL_SOCKET_ERROR();
}


/* Turn the loop until the input holds WANT bytes or TURNS turns have gone. */
static void pump_until_len(struct conn *c, size_t want, int turns)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    for (int i = 0; i < turns && evbuffer_get_length(in) < want; i++)
        testloop_pump(c->base, 1000);
}

static bool write_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        b += w;
        n -= (size_t)w;
    }
    return true;
}

/* Attach sockread to a bufferevent on FD (ours) and set callbacks. The
 * bufferevent's own EV_READ is switched on first: attaching must turn it off. */
static void conn_start(struct conn *c, int fd, int peer)
{
    c->peer = peer;
    c->base = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->base);
    c->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->bev);
    bufferevent_setcb(c->bev, on_read, NULL, on_event, &c->seen);
    bufferevent_enable(c->bev, EV_READ);
    CU_ASSERT_EQUAL_FATAL(sockread_attach(&c->r, c->base, c->bev), 0);
    CU_ASSERT_EQUAL(bufferevent_get_enabled(c->bev) & EV_READ, 0);
    CU_ASSERT_FALSE(sockread_enabled(&c->r));
}

static void conn_open(struct conn *c)
{
    memset(c, 0, sizeof *c);
    int sv[2];
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    conn_start(c, sv[0], sv[1]);
}

static void conn_close(struct conn *c)
{
    if (c->bev) {
        sockread_detach(&c->r);
        bufferevent_free(c->bev);
    }
    if (c->peer >= 0)
        close(c->peer);
    event_base_free(c->base);
}

/* 0..250 repeating, so bytes out of order or lost show. */
static void pattern(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)(i % 251);
}

static void test_data(void)
{
    struct conn c;
    conn_open(&c);
    CU_ASSERT_EQUAL(sockread_enable(&c.r), 0);
    CU_ASSERT_TRUE(sockread_enabled(&c.r));
    CU_ASSERT_TRUE_FATAL(write_all(c.peer, "hello", 5));
    pump_until_len(&c, 5, 5);
    struct evbuffer *in = bufferevent_get_input(c.bev);
    CU_ASSERT_EQUAL(c.seen.reads, 1);
    CU_ASSERT_EQUAL(c.seen.last_len, 5);
    CU_ASSERT_EQUAL(c.seen.events, 0);
    CU_ASSERT_EQUAL_FATAL(evbuffer_get_length(in), 5);
    CU_ASSERT_EQUAL(memcmp(evbuffer_pullup(in, -1), "hello", 5), 0);
    CU_ASSERT_EQUAL(bufferevent_get_enabled(c.bev) & EV_READ, 0);
    /* a second message is appended after the first, not over it */
    CU_ASSERT_TRUE_FATAL(write_all(c.peer, " world", 6));
    pump_until_len(&c, 11, 5);
    CU_ASSERT_EQUAL(c.seen.reads, 2);
    CU_ASSERT_EQUAL_FATAL(evbuffer_get_length(in), 11);
    CU_ASSERT_EQUAL(memcmp(evbuffer_pullup(in, -1), "hello world", 11), 0);
    CU_ASSERT_EQUAL(bufferevent_get_enabled(c.bev) & EV_READ, 0);
    /* the input's end is frozen again after our add, as a bufferevent keeps
     * it: nobody else may add there */
    CU_ASSERT_EQUAL(evbuffer_add(in, "x", 1), -1);
    CU_ASSERT_EQUAL(evbuffer_get_length(in), 11);
    conn_close(&c);
}

static void test_disabled(void)
{
    struct conn c;
    conn_open(&c);
    struct evbuffer *in = bufferevent_get_input(c.bev);
    /* never enabled: nothing read */
    CU_ASSERT_TRUE_FATAL(write_all(c.peer, "abc", 3));
    testloop_pump(c.base, 50);
    CU_ASSERT_EQUAL(evbuffer_get_length(in), 0);
    CU_ASSERT_EQUAL(c.seen.reads, 0);
    /* enabled: read */
    CU_ASSERT_EQUAL(sockread_enable(&c.r), 0);
    CU_ASSERT_EQUAL(sockread_enable(&c.r), 0);  /* twice is harmless */
    pump_until_len(&c, 3, 5);
    CU_ASSERT_EQUAL(evbuffer_get_length(in), 3);
    CU_ASSERT_EQUAL(c.seen.reads, 1);
    /* disabled again: new data waits in the socket */
    sockread_disable(&c.r);
    CU_ASSERT_FALSE(sockread_enabled(&c.r));
    CU_ASSERT_TRUE_FATAL(write_all(c.peer, "def", 3));
    testloop_pump(c.base, 50);
    testloop_pump(c.base, 50);
    CU_ASSERT_EQUAL(evbuffer_get_length(in), 3);
    CU_ASSERT_EQUAL(c.seen.reads, 1);
    /* and is read once enabled */
    CU_ASSERT_EQUAL(sockread_enable(&c.r), 0);
    CU_ASSERT_TRUE(sockread_enabled(&c.r));
    pump_until_len(&c, 6, 5);
    CU_ASSERT_EQUAL(c.seen.reads, 2);
    CU_ASSERT_EQUAL_FATAL(evbuffer_get_length(in), 6);
    CU_ASSERT_EQUAL(memcmp(evbuffer_pullup(in, -1), "abcdef", 6), 0);
    CU_ASSERT_EQUAL(bufferevent_get_enabled(c.bev) & EV_READ, 0);
    conn_close(&c);
}

static void test_eof(void)
{
    struct conn c;
    conn_open(&c);
    CU_ASSERT_EQUAL(sockread_enable(&c.r), 0);
    CU_ASSERT_TRUE_FATAL(write_all(c.peer, "last", 4));
    close(c.peer);
    c.peer = -1;
    for (int i = 0; i < 5 && c.seen.events == 0; i++)
        testloop_pump(c.base, 1000);
    /* the data before the EOF was delivered first */
    CU_ASSERT_EQUAL(c.seen.reads, 1);
    CU_ASSERT_EQUAL(evbuffer_get_length(bufferevent_get_input(c.bev)), 4);
    CU_ASSERT_EQUAL(c.seen.events, 1);
    CU_ASSERT_EQUAL(c.seen.what, BEV_EVENT_READING | BEV_EVENT_EOF);
    CU_ASSERT_FALSE(sockread_enabled(&c.r));
    /* reading stopped: the EOF, still there, is not reported again */
    testloop_pump(c.base, 50);
    testloop_pump(c.base, 50);
    CU_ASSERT_EQUAL(c.seen.events, 1);
    CU_ASSERT_EQUAL(c.seen.reads, 1);
    conn_close(&c);
}

static void test_error(void)
{
    int fd = -1, peer = -1;
    CU_ASSERT_TRUE_FATAL(testloop_tcp_pair(&fd, &peer, 0));
    struct conn c;
    memset(&c, 0, sizeof c);
    conn_start(&c, fd, peer);
    CU_ASSERT_EQUAL(sockread_enable(&c.r), 0);
    /* closing with a zero linger sends a reset, not a FIN */
    struct linger lg = {1, 0};
    CU_ASSERT_EQUAL_FATAL(setsockopt(c.peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(c.peer);
    c.peer = -1;
    for (int i = 0; i < 5 && c.seen.events == 0; i++)
        testloop_pump(c.base, 1000);
    CU_ASSERT_EQUAL(c.seen.events, 1);
    CU_ASSERT_EQUAL(c.seen.what, BEV_EVENT_READING | BEV_EVENT_ERROR);
    CU_ASSERT_EQUAL(c.seen.err, ECONNRESET);  /* there for the callback, as libevent leaves it */
    CU_ASSERT_EQUAL(c.seen.reads, 0);
    CU_ASSERT_FALSE(sockread_enabled(&c.r));
    testloop_pump(c.base, 50);
    CU_ASSERT_EQUAL(c.seen.events, 1);
    conn_close(&c);
}

static void test_limit(void)
{
    struct conn c;
    conn_open(&c);
    struct evbuffer *in = bufferevent_get_input(c.bev);
    char sent[1000], got[1000];
    pattern(sent, sizeof sent);
    sockread_set_limit(&c.r, 100);
    CU_ASSERT_EQUAL(sockread_enable(&c.r), 0);
    CU_ASSERT_TRUE_FATAL(write_all(c.peer, sent, sizeof sent));
    pump_until_len(&c, 100, 5);
    CU_ASSERT_EQUAL(evbuffer_get_length(in), 100);
    CU_ASSERT_EQUAL(c.seen.reads, 1);
    CU_ASSERT_EQUAL(c.seen.last_len, 100);
    /* held: the owner still wants input, but nothing more is read */
    CU_ASSERT_TRUE(sockread_enabled(&c.r));
    for (int i = 0; i < 3; i++)
        testloop_pump(c.base, 50);
    CU_ASSERT_EQUAL(evbuffer_get_length(in), 100);
    CU_ASSERT_EQUAL(c.seen.reads, 1);
    /* drained below the limit: reading resumes, up to the limit again */
    size_t total = 0;
    CU_ASSERT_EQUAL_FATAL(evbuffer_remove(in, got, 60), 60);
    total = 60;
    pump_until_len(&c, 100, 5);
    CU_ASSERT_EQUAL(evbuffer_get_length(in), 100);
    CU_ASSERT_EQUAL(c.seen.reads, 2);
    testloop_pump(c.base, 50);
    CU_ASSERT_EQUAL(evbuffer_get_length(in), 100);
    CU_ASSERT_EQUAL(c.seen.reads, 2);
    /* drain it all, over and over, until every byte came */
    for (int i = 0; i < 50 && total < sizeof got; i++) {
        size_t have = evbuffer_get_length(in);
        CU_ASSERT(have <= 100);
        if (have > sizeof got - total)
            break;
        CU_ASSERT_EQUAL_FATAL(evbuffer_remove(in, got + total, have), (int)have);
        total += have;
        if (total < sizeof got) {
            pump_until_len(&c, 1, 5);
            if (evbuffer_get_length(in) == 0)
                break;  /* reading did not resume: fails below */
        }
    }
    CU_ASSERT_EQUAL(total, sizeof got);
    CU_ASSERT_EQUAL(memcmp(got, sent, sizeof got), 0);
    CU_ASSERT_EQUAL(evbuffer_get_length(in), 0);
    /* 100, 60 to refill, 8 x 100, and the last 40: one read each */
    CU_ASSERT_EQUAL(c.seen.reads, 11);
    CU_ASSERT_EQUAL(bufferevent_get_enabled(c.bev) & EV_READ, 0);
    conn_close(&c);
}

/* Held at the limit, a disabled reader stays off when the input drains; a
 * lifted limit lets a held reader go on; a lowered one holds it. */
static void test_limit_switches(void)
{
    struct conn c;
    conn_open(&c);
    struct evbuffer *in = bufferevent_get_input(c.bev);
    char sent[1000], got[1000];
    pattern(sent, sizeof sent);
    sockread_set_limit(&c.r, 100);
    CU_ASSERT_EQUAL(sockread_enable(&c.r), 0);
    CU_ASSERT_TRUE_FATAL(write_all(c.peer, sent, sizeof sent));
    pump_until_len(&c, 100, 5);
    CU_ASSERT_EQUAL_FATAL(evbuffer_get_length(in), 100);
    /* disabled while held, then drained: still nothing read */
    sockread_disable(&c.r);
    CU_ASSERT_FALSE(sockread_enabled(&c.r));
    CU_ASSERT_EQUAL_FATAL(evbuffer_remove(in, got, 100), 100);
    testloop_pump(c.base, 50);
    testloop_pump(c.base, 50);
    CU_ASSERT_EQUAL(evbuffer_get_length(in), 0);
    CU_ASSERT_EQUAL(c.seen.reads, 1);
    /* enabled: reads again, up to the limit */
    CU_ASSERT_EQUAL(sockread_enable(&c.r), 0);
    pump_until_len(&c, 100, 5);
    CU_ASSERT_EQUAL(evbuffer_get_length(in), 100);
    CU_ASSERT_EQUAL(c.seen.reads, 2);
    testloop_pump(c.base, 50);
    CU_ASSERT_EQUAL(evbuffer_get_length(in), 100);
    /* the limit lifted while held: the rest comes without any draining */
    sockread_set_limit(&c.r, 0);
    pump_until_len(&c, 900, 10);
    CU_ASSERT_EQUAL_FATAL(evbuffer_get_length(in), 900);
    int reads = c.seen.reads;
    /* a limit lowered below what the input holds: new data waits (no
     * zero-byte read taken for an EOF), until the input drains below it */
    sockread_set_limit(&c.r, 100);
    CU_ASSERT_TRUE_FATAL(write_all(c.peer, "xyz", 3));
    testloop_pump(c.base, 50);
    testloop_pump(c.base, 50);
    CU_ASSERT_EQUAL(evbuffer_get_length(in), 900);
    CU_ASSERT_EQUAL(c.seen.reads, reads);
    CU_ASSERT_EQUAL(c.seen.events, 0);
    CU_ASSERT_TRUE(sockread_enabled(&c.r));
    CU_ASSERT_EQUAL(evbuffer_remove(in, got + 100, 900), 900);
    CU_ASSERT_EQUAL(memcmp(got, sent, sizeof got), 0);
    pump_until_len(&c, 3, 5);
    CU_ASSERT_EQUAL(c.seen.reads, reads + 1);
    CU_ASSERT_EQUAL_FATAL(evbuffer_get_length(in), 3);
    CU_ASSERT_EQUAL(memcmp(evbuffer_pullup(in, -1), "xyz", 3), 0);
    CU_ASSERT_EQUAL(c.seen.events, 0);
    conn_close(&c);
}

static void test_large(void)
{
    struct conn c;
    conn_open(&c);
    struct evbuffer *in = bufferevent_get_input(c.bev);
    enum { N = 40000 };
    char *sent = malloc(N);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sent);
    pattern(sent, N);
    CU_ASSERT_EQUAL(sockread_enable(&c.r), 0);
    CU_ASSERT_TRUE_FATAL(write_all(c.peer, sent, N));
    pump_until_len(&c, N, 20);
    CU_ASSERT_EQUAL(evbuffer_get_length(in), N);
    /* one recv takes at most 16 KiB: at least three for 40,000 bytes */
    CU_ASSERT(c.seen.reads >= 3);
    CU_ASSERT_EQUAL(c.seen.last_len, N);
    if (evbuffer_get_length(in) == N)
        CU_ASSERT_EQUAL(memcmp(evbuffer_pullup(in, -1), sent, N), 0);
    free(sent);
    conn_close(&c);
}

/* An owner in its own allocation, freeing itself from its callbacks as the
 * gateway's connections do. */
struct owner {
    struct bufferevent *bev;
    struct sockread r;
    int *freed;
};

static void owner_free(struct owner *o)
{
    sockread_detach(&o->r);
    bufferevent_free(o->bev);
    (*o->freed)++;
    free(o);
}

static void owner_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    owner_free(arg);
}

static void owner_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    owner_free(arg);
}

static struct owner *owner_new(struct event_base *base, int fd, int *freed)
{
    struct owner *o = calloc(1, sizeof *o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    o->freed = freed;
    o->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o->bev);
    bufferevent_setcb(o->bev, owner_read, NULL, owner_event, o);
    CU_ASSERT_EQUAL_FATAL(sockread_attach(&o->r, base, o->bev), 0);
    CU_ASSERT_EQUAL(sockread_enable(&o->r), 0);
    return o;
}

static void test_cb_frees(void)
{
    struct event_base *base = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    int freed = 0;
    int sv[2];
    /* from the read callback, with a limit reached in the same read */
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    struct owner *o = owner_new(base, sv[0], &freed);
    sockread_set_limit(&o->r, 4);
    CU_ASSERT_TRUE_FATAL(write_all(sv[1], "hello", 5));
    for (int i = 0; i < 5 && freed == 0; i++)
        testloop_pump(base, 1000);
    CU_ASSERT_EQUAL(freed, 1);
    testloop_pump(base, 50);
    close(sv[1]);
    /* from the event callback, on EOF */
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    owner_new(base, sv[0], &freed);
    close(sv[1]);
    for (int i = 0; i < 5 && freed == 1; i++)
        testloop_pump(base, 1000);
    CU_ASSERT_EQUAL(freed, 2);
    testloop_pump(base, 50);
    event_base_free(base);
}

static void test_detach_unattached(void)
{
    struct sockread r;
    memset(&r, 0, sizeof r);
    sockread_detach(&r);
    sockread_detach(&r);
    CU_ASSERT_PTR_NULL(r.ev);
    CU_ASSERT_PTR_NULL(r.bev);
    CU_ASSERT_FALSE(sockread_enabled(&r));
    /* nothing to read from: enabling fails, the rest are no-ops */
    CU_ASSERT_EQUAL(sockread_enable(&r), -1);
    sockread_disable(&r);
    sockread_set_limit(&r, 10);
    CU_ASSERT_FALSE(sockread_enabled(&r));
}

/* Detached, the bufferevent is libevent's again: sockread's read event and
 * its callback on the input are gone (the struct may be freed at once, even
 * while held), and the bufferevent's own EV_READ reads what is left. */
static void test_detach_hands_back(void)
{
    struct conn c;
    conn_open(&c);
    struct evbuffer *in = bufferevent_get_input(c.bev);
    struct sockread *r = malloc(sizeof *r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    sockread_detach(&c.r);  /* conn_open's: this test reads with R */
    CU_ASSERT_EQUAL_FATAL(sockread_attach(r, c.base, c.bev), 0);
    sockread_set_limit(r, 3);
    CU_ASSERT_EQUAL(sockread_enable(r), 0);
    CU_ASSERT_TRUE_FATAL(write_all(c.peer, "abcdef", 6));
    pump_until_len(&c, 3, 5);
    CU_ASSERT_EQUAL_FATAL(evbuffer_get_length(in), 3);  /* held */
    sockread_detach(r);
    CU_ASSERT_PTR_NULL(r->ev);
    CU_ASSERT_FALSE(sockread_enabled(r));
    free(r);
    /* draining would run a callback left behind on freed memory */
    evbuffer_drain(in, 3);
    testloop_pump(c.base, 50);
    CU_ASSERT_EQUAL(evbuffer_get_length(in), 0);
    CU_ASSERT_EQUAL(c.seen.reads, 1);
    bufferevent_enable(c.bev, EV_READ);
    pump_until_len(&c, 3, 5);
    CU_ASSERT_EQUAL(c.seen.reads, 2);
    CU_ASSERT_EQUAL_FATAL(evbuffer_get_length(in), 3);
    CU_ASSERT_EQUAL(memcmp(evbuffer_pullup(in, -1), "def", 3), 0);
    conn_close(&c);  /* detaches c.r again: a no-op */
}

/* A bufferevent without a socket yet has nothing to read. */
static void test_attach_nofd(void)
{
    struct event_base *base = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bev);
    struct sockread r;
    CU_ASSERT_EQUAL(sockread_attach(&r, base, bev), -1);
    CU_ASSERT_PTR_NULL(r.ev);
    sockread_detach(&r);  /* a failed attach needs no detach, but may have one */
    bufferevent_free(bev);
    event_base_free(base);
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("sockread", NULL, NULL);
    if (!s)
        return;
    CU_add_test(s, "data reaches the input and the read callback", test_data);
    CU_add_test(s, "disabled reads nothing", test_disabled);
    CU_add_test(s, "EOF once, then reading stops", test_eof);
    CU_add_test(s, "reset peer is an error", test_error);
    CU_add_test(s, "limit holds the input, draining resumes", test_limit);
    CU_add_test(s, "limit with disable and lift", test_limit_switches);
    CU_add_test(s, "large input, 16 KiB a read", test_large);
    CU_add_test(s, "owner frees itself from its callbacks", test_cb_frees);
    CU_add_test(s, "detach of one never attached", test_detach_unattached);
    CU_add_test(s, "detach hands the bufferevent back", test_detach_hands_back);
    CU_add_test(s, "attach without a socket", test_attach_nofd);
}
