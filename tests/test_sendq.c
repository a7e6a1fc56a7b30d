/*
 * test_sendq: sendq exists to save each response two epoll_ctl calls and a
 * loop turn, and it is only worth that if a bufferevent written through it
 * still behaves, to the code above, as libevent's own: so the suite checks
 * both halves. The saving: what a callback adds is on the wire when the
 * same turn ends, not before the callback returns (a handler that adds a
 * head and then a body must not send them apart: several adds go out in one
 * write, one record on a SOCK_SEQPACKET peer), and EV_WRITE stays off when
 * the kernel took everything. The behaviour kept: when the kernel would
 * block, EV_WRITE is on and libevent writes the rest, in order, as the peer
 * drains; the write callback runs once the output is empty, once; the
 * prelude (the access log's batch) runs before the turn's writes. And the
 * lifetimes: a connection detached and freed while queued, by whoever, even
 * by a write callback in the middle of the queue's walk, leaves nothing
 * behind that the walk or sendq_cleanup would touch (the suite runs under
 * ASan and valgrind, which catch a touch after free). Each test drives a
 * real event_base over socketpairs or a loopback TCP pair, one
 * EVLOOP_ONCE | EVLOOP_NONBLOCK turn at a time.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "sendq.h"
#include "testloop.h"

void test_register(void);

/* What a write callback does besides being counted. */
enum act { ACT_NONE, ACT_ADD_ONCE, ACT_FREE_SELF, ACT_FREE_OTHER };

/* One connection under test, in its own allocation so it can free itself. */
struct conn {
    char id;                  /* its letter in the trace */
    struct bufferevent *bev;
    struct sendq_item it;
    int writes;               /* write callback runs */
    size_t out_at_write;      /* output length at the last one */
    enum act act;
    struct conn *other;       /* ACT_FREE_OTHER's victim */
    struct conn **slot;       /* nulled when freed */
};

/* The order of prelude runs ('P') and write callbacks (the conn's id). */
static char trace[64];
static size_t ntrace;

static void trace_reset(void)
{
    memset(trace, 0, sizeof trace);
    ntrace = 0;
}

static void trace_add(char c)
{
    if (ntrace < sizeof trace - 1)
        trace[ntrace++] = c;
}

/* Bytes waiting in FD's receive queue (the next record's, for SEQPACKET). */
static int readable(int fd)
{
    int n = -1;
    CU_ASSERT_EQUAL(ioctl(fd, FIONREAD, &n), 0);
    return n;
}

static void conn_free(struct conn *c)
{
    sendq_detach(&c->it);
    bufferevent_free(c->bev);
    if (c->slot)
        *c->slot = NULL;
    free(c);
}

static void add_str(struct conn *c, const char *s)
{
    CU_ASSERT_EQUAL(evbuffer_add(bufferevent_get_output(c->bev), s, strlen(s)), 0);
}

static size_t out_len(const struct conn *c)
{
    return evbuffer_get_length(bufferevent_get_output(c->bev));
}

static bool write_enabled(const struct conn *c)
{
    return (bufferevent_get_enabled(c->bev) & EV_WRITE) != 0;
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    c->writes++;
    c->out_at_write = evbuffer_get_length(bufferevent_get_output(bev));
    trace_add(c->id);
    switch (c->act) {
    case ACT_NONE:
        break;
    case ACT_ADD_ONCE:
        c->act = ACT_NONE;
        add_str(c, "+more");
        break;
    case ACT_FREE_SELF:
        conn_free(c);
        break;
    case ACT_FREE_OTHER:
        if (c->other)
            conn_free(c->other);
        break;
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    (void)arg;
    CU_FAIL("unexpected bufferevent event");
}

/* A bufferevent on FD attached to Q; *SLOT is set to it, and nulled when a
 * callback frees it. */
static struct conn *conn_on(struct event_base *base, struct sendq *q, int fd, char id,
                            struct conn **slot)
{
    struct conn *c = calloc(1, sizeof *c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    c->id = id;
    c->slot = slot;
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->bev);
    bufferevent_setcb(c->bev, NULL, on_write, on_event, c);
    CU_ASSERT_EQUAL_FATAL(sendq_attach(q, &c->it, c->bev), 0);
    *slot = c;
    return c;
}

/* A connection over a socketpair of TYPE; the peer's end in *PEER. */
static struct conn *conn_pair(struct event_base *base, struct sendq *q, int type, char id,
                              struct conn **slot, int *peer)
{
    int sv[2];
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    *peer = sv[1];
    return conn_on(base, q, sv[0], id, slot);
}

/* Everything readable on PEER now, into BUF; its length (-1: an error). */
static ssize_t drain(int peer, char *buf, size_t size)
{
    size_t got = 0;
    while (got < size) {
        ssize_t r = recv(peer, buf + got, size - got, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* PEER holds exactly S, and nothing after it. */
static void expect_peer(int peer, const char *s)
{
    char buf[256];
    ssize_t n = drain(peer, buf, sizeof buf - 1);
    CU_ASSERT_EQUAL(n, (ssize_t)strlen(s));
    if (n >= 0) {
        buf[n] = '\0';
        CU_ASSERT_STRING_EQUAL(buf, s);
    }
}

/* PEER's other end was closed with nothing written to it. */
static void expect_eof(int peer)
{
    char b;
    CU_ASSERT_EQUAL(recv(peer, &b, 1, MSG_DONTWAIT), 0);
}

/* Runs CB(ARG) as the first callback of one loop turn (an event made
 * active), then everything that turn runs; no waiting. */
struct turn {
    void (*fn)(void *);
    void *arg;
    int ran;
};

static void turn_cb(evutil_socket_t fd, short what, void *arg)
{
    struct turn *t = arg;
    (void)fd;
    (void)what;
    t->ran++;
    t->fn(t->arg);
}

static void turn(struct event_base *base, void (*fn)(void *), void *arg)
{
    struct turn t = {fn, arg, 0};
    struct event *ev = event_new(base, -1, 0, turn_cb, &t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    event_active(ev, EV_TIMEOUT, 0);
    CU_ASSERT_EQUAL(event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), 0);
    CU_ASSERT_EQUAL(t.ran, 1);
    event_free(ev);
}


struct fixture {
    struct event_base *base;
    struct sendq q;
};

static void fx_open(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    trace_reset();
    f->base = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->base);
    CU_ASSERT_EQUAL_FATAL(sendq_init(&f->q, f->base), 0);
    CU_ASSERT_PTR_NULL(f->q.prelude);
    CU_ASSERT_TRUE(TAILQ_EMPTY(&f->q.items));
}

static void fx_close(struct fixture *f)
{
    sendq_cleanup(&f->q);
    event_base_free(f->base);
}

/* Attaching takes EV_WRITE from the bufferevent and leaves EV_READ alone. */
static void test_attach(void)
{
    struct fixture f;
    fx_open(&f);
    int sv[2];
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    struct bufferevent *bev = bufferevent_socket_new(f.base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bev);
    CU_ASSERT_EQUAL(bufferevent_enable(bev, EV_READ | EV_WRITE), 0);
    struct sendq_item it;
    CU_ASSERT_EQUAL_FATAL(sendq_attach(&f.q, &it, bev), 0);
    CU_ASSERT_EQUAL(bufferevent_get_enabled(bev), EV_READ);
    CU_ASSERT_FALSE(it.queued);
    sendq_detach(&it);
    bufferevent_free(bev);
    close(sv[1]);
    fx_close(&f);
}

static void nothing(void *arg)
{
    (void)arg;
}

/* What the callback of test_after_callback saw right after adding. */
struct seen_add {
    struct conn *c;
    int peer;
    int readable;
    size_t out;
    bool wr;
    int writes;
};

static void add_hello(void *arg)
{
    struct seen_add *s = arg;
    add_str(s->c, "hello");
    add_str(s->c, " world");
    s->readable = readable(s->peer);
    s->out = out_len(s->c);
    s->wr = write_enabled(s->c);
    s->writes = s->c->writes;
}

static void test_after_callback(void)
{
    struct fixture f;
    fx_open(&f);
    struct conn *c;
    int peer = -1;
    conn_pair(f.base, &f.q, SOCK_STREAM, 'A', &c, &peer);
    struct seen_add s = {c, peer, -1, 0, true, -1};
    turn(f.base, add_hello, &s);
    /* during the callback: nothing sent, nothing armed, no callback yet */
    CU_ASSERT_EQUAL(s.readable, 0);
    CU_ASSERT_EQUAL(s.out, 11);
    CU_ASSERT_FALSE(s.wr);
    CU_ASSERT_EQUAL(s.writes, 0);
    /* when the turn ended: all of it sent, still nothing armed, and the
     * write callback ran once, on an empty output */
    CU_ASSERT_EQUAL(readable(peer), 11);
    CU_ASSERT_EQUAL(out_len(c), 0);
    CU_ASSERT_FALSE(write_enabled(c));
    CU_ASSERT_EQUAL(c->writes, 1);
    CU_ASSERT_EQUAL(c->out_at_write, 0);
    CU_ASSERT_TRUE(TAILQ_EMPTY(&f.q.items));
    CU_ASSERT_FALSE(c->it.queued);
    expect_peer(peer, "hello world");
    /* a turn with nothing added calls nothing */
    turn(f.base, nothing, NULL);
    turn(f.base, nothing, NULL);
    CU_ASSERT_EQUAL(c->writes, 1);
    conn_free(c);
    close(peer);
    fx_close(&f);
}

/* Added outside any callback: written on the next turn, not at once. */
static void test_outside_loop(void)
{
    struct fixture f;
    fx_open(&f);
    struct conn *c;
    int peer = -1;
    conn_pair(f.base, &f.q, SOCK_STREAM, 'A', &c, &peer);
    add_str(c, "early");
    CU_ASSERT_EQUAL(readable(peer), 0);
    CU_ASSERT_TRUE(c->it.queued);
    CU_ASSERT_PTR_EQUAL(TAILQ_FIRST(&f.q.items), &c->it);
    turn(f.base, nothing, NULL);
    CU_ASSERT_EQUAL(c->writes, 1);
    CU_ASSERT_FALSE(write_enabled(c));
    expect_peer(peer, "early");
    conn_free(c);
    close(peer);
    fx_close(&f);
}

/* Several adds to several connections in one turn: each connection's adds
 * leave in one write, one SEQPACKET record. */
struct three_adds {
    struct conn *c[2];
};

static void add_three(void *arg)
{
    struct three_adds *t = arg;
    for (int i = 0; i < 2; i++) {
        add_str(t->c[i], "HTTP/1.1 200 OK\r\n");
        add_str(t->c[i], "Content-Length: 2\r\n\r\n");
        CU_ASSERT_EQUAL(evbuffer_add_printf(bufferevent_get_output(t->c[i]->bev), "%c%c", 'o',
                                            i ? 'k' : 'K'), 2);
    }
}

static void test_one_write(void)
{
    struct fixture f;
    fx_open(&f);
    struct three_adds t;
    int peer[2];
    conn_pair(f.base, &f.q, SOCK_SEQPACKET, 'A', &t.c[0], &peer[0]);
    conn_pair(f.base, &f.q, SOCK_SEQPACKET, 'B', &t.c[1], &peer[1]);
    turn(f.base, add_three, &t);
    static const char *want[] = {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\noK",
                                 "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"};
    for (int i = 0; i < 2; i++) {
        char buf[256];
        ssize_t n = recv(peer[i], buf, sizeof buf - 1, MSG_DONTWAIT);
        CU_ASSERT_EQUAL(n, (ssize_t)strlen(want[i]));
        if (n >= 0) {
            buf[n] = '\0';
            CU_ASSERT_STRING_EQUAL(buf, want[i]);
        }
        /* and no second record */
        ssize_t again = recv(peer[i], buf, sizeof buf, MSG_DONTWAIT);
        int e = errno;
        CU_ASSERT_EQUAL(again, -1);
        CU_ASSERT_EQUAL(e, EAGAIN);
        CU_ASSERT_EQUAL(t.c[i]->writes, 1);
        CU_ASSERT_FALSE(write_enabled(t.c[i]));
    }
    /* written in the order they were first added to */
    CU_ASSERT_STRING_EQUAL(trace, "AB");
    for (int i = 0; i < 2; i++) {
        conn_free(t.c[i]);
        close(peer[i]);
    }
    fx_close(&f);
}

/* The prelude: once a turn with writes, before any of them. */
static int prelude_peer[2];
static int prelude_readable[2];
static size_t prelude_out[2];
static struct conn *prelude_conn[2];
static int prelude_runs;

static void prelude(void)
{
    prelude_runs++;
    trace_add('P');
    for (int i = 0; i < 2; i++) {
        prelude_readable[i] = readable(prelude_peer[i]);
        prelude_out[i] = out_len(prelude_conn[i]);
    }
}

static void add_both(void *arg)
{
    (void)arg;
    add_str(prelude_conn[0], "one");
    add_str(prelude_conn[1], "two");
}

static void add_second(void *arg)
{
    (void)arg;
    add_str(prelude_conn[1], "three");
}

static void test_prelude(void)
{
    struct fixture f;
    fx_open(&f);
    conn_pair(f.base, &f.q, SOCK_STREAM, 'A', &prelude_conn[0], &prelude_peer[0]);
    conn_pair(f.base, &f.q, SOCK_STREAM, 'B', &prelude_conn[1], &prelude_peer[1]);
    prelude_runs = 0;
    f.q.prelude = prelude;
    turn(f.base, add_both, NULL);
    CU_ASSERT_EQUAL(prelude_runs, 1);
    CU_ASSERT_STRING_EQUAL(trace, "PAB");
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(prelude_readable[i], 0);
        CU_ASSERT_EQUAL(prelude_out[i], 3);
    }
    expect_peer(prelude_peer[0], "one");
    expect_peer(prelude_peer[1], "two");
    /* no writes, no prelude */
    turn(f.base, nothing, NULL);
    CU_ASSERT_EQUAL(prelude_runs, 1);
    /* again on the next turn with a write */
    turn(f.base, add_second, NULL);
    CU_ASSERT_EQUAL(prelude_runs, 2);
    CU_ASSERT_STRING_EQUAL(trace, "PABPB");
    CU_ASSERT_EQUAL(prelude_readable[1], 0);
    CU_ASSERT_EQUAL(prelude_out[1], 5);
    expect_peer(prelude_peer[1], "three");
    for (int i = 0; i < 2; i++) {
        conn_free(prelude_conn[i]);
        close(prelude_peer[i]);
    }
    fx_close(&f);
}

/* What the write callback adds goes out in the same turn: a pipelined
 * response queued from "the last one is sent". */
static void add_first(void *arg)
{
    add_str(arg, "first");
}

static void test_writecb_adds(void)
{
    struct fixture f;
    fx_open(&f);
    struct conn *c;
    int peer = -1;
    conn_pair(f.base, &f.q, SOCK_STREAM, 'A', &c, &peer);
    c->act = ACT_ADD_ONCE;
    turn(f.base, add_first, c);
    CU_ASSERT_EQUAL(c->writes, 2);
    CU_ASSERT_EQUAL(c->out_at_write, 0);
    CU_ASSERT_EQUAL(out_len(c), 0);
    CU_ASSERT_FALSE(write_enabled(c));
    expect_peer(peer, "first+more");
    conn_free(c);
    close(peer);
    fx_close(&f);
}

enum { BIG = 256 * 1024, TAIL = 1000 };

struct big {
    struct conn *c;
    const char *data;
    size_t off, len;
    bool queued;  /* the item was in the queue right after the add */
};

static void add_big(void *arg)
{
    struct big *b = arg;
    CU_ASSERT_EQUAL(evbuffer_add(bufferevent_get_output(b->c->bev), b->data + b->off, b->len), 0);
    b->queued = b->c->it.queued && TAILQ_FIRST(&b->c->it.q->items) == &b->c->it;
}

static double now_s(void)
{
    struct timespec ts;
    CU_ASSERT_EQUAL(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* More than the kernel takes: what fits is written in the turn, EV_WRITE
 * is armed for the rest, more added meanwhile queues behind it, and
 * libevent writes it all, in order, as the peer reads; its write callback
 * runs once, at the end. Then the connection is sendq's again. */
static void test_would_block(void)
{
    struct fixture f;
    fx_open(&f);
    int fd = -1, peer = -1;
    CU_ASSERT_TRUE_FATAL(testloop_tcp_pair(&fd, &peer, 4096));
    struct conn *c;
    conn_on(f.base, &f.q, fd, 'A', &c);
    char *data = malloc(BIG + TAIL);
    char *got = malloc(BIG + TAIL + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    for (size_t i = 0; i < BIG + TAIL; i++)
        data[i] = (char)(i % 251);

    struct big b = {c, data, 0, BIG, false};
    turn(f.base, add_big, &b);
    CU_ASSERT_TRUE(b.queued);
    CU_ASSERT(out_len(c) < BIG);    /* written first, as far as it went */
    CU_ASSERT(out_len(c) > 0);      /* the kernel would block */
    CU_ASSERT_TRUE(write_enabled(c));
    CU_ASSERT_EQUAL(c->writes, 0);
    CU_ASSERT_TRUE(TAILQ_EMPTY(&f.q.items));

    /* added while blocked: behind the rest, libevent's to write (queued,
     * it would cost a write(2) certain to fail) */
    struct big t = {c, data, BIG, TAIL, true};
    turn(f.base, add_big, &t);
    CU_ASSERT_FALSE(t.queued);
    CU_ASSERT_TRUE(write_enabled(c));
    CU_ASSERT_EQUAL(c->writes, 0);
    CU_ASSERT_FALSE(c->it.queued);

    /* the peer reads; the loop writes the rest */
    size_t total = 0;
    double deadline = now_s() + 30;
    while (total < BIG + TAIL && now_s() < deadline) {
        ssize_t r = drain(peer, got + total, BIG + TAIL + 1 - total);
        CU_ASSERT_FATAL(r >= 0);
        total += (size_t)r;
        if (r == 0)
            testloop_pump(f.base, 100);
    }
    for (int i = 0; i < 3; i++)
        testloop_pump(f.base, 10);
    CU_ASSERT_EQUAL(drain(peer, got + total, BIG + TAIL + 1 - total), 0);
    CU_ASSERT_EQUAL(total, BIG + TAIL);
    CU_ASSERT_EQUAL(memcmp(got, data, BIG + TAIL), 0);
    CU_ASSERT_EQUAL(out_len(c), 0);
    CU_ASSERT_EQUAL(c->writes, 1);
    CU_ASSERT_EQUAL(c->out_at_write, 0);

    /* the next response is written first again, and disarms EV_WRITE */
    struct big n = {c, data, 0, 100, false};
    turn(f.base, add_big, &n);
    CU_ASSERT_TRUE(n.queued);
    CU_ASSERT_EQUAL(readable(peer), 100);
    CU_ASSERT_EQUAL(out_len(c), 0);
    CU_ASSERT_FALSE(write_enabled(c));
    CU_ASSERT_EQUAL(c->writes, 2);
    conn_free(c);
    close(peer);
    free(data);
    free(got);
    fx_close(&f);
}

/* Three connections queued; the callback then detaches and frees one (the
 * gateway's close path: sendq_detach before bufferevent_free). */
struct det {
    struct conn *c[3];
    int victim;
    bool queue_ok;
};

static void add_then_close(void *arg)
{
    struct det *d = arg;
    for (int i = 0; i < 3; i++)
        add_str(d->c[i], "data");
    struct sendq *q = d->c[0]->it.q;
    conn_free(d->c[d->victim]);
    /* the queue holds the other two, in order, and nothing else */
    struct sendq_item *want[2];
    for (int i = 0, k = 0; i < 3; i++)
        if (i != d->victim)
            want[k++] = &d->c[i]->it;
    struct sendq_item *first = TAILQ_FIRST(&q->items);
    d->queue_ok = first == want[0] && TAILQ_NEXT(first, link) == want[1]
                  && TAILQ_NEXT(want[1], link) == NULL;
}

static void test_detach_queued(void)
{
    for (int victim = 0; victim < 3; victim++) {
        struct fixture f;
        fx_open(&f);
        struct det d = {{NULL, NULL, NULL}, victim, false};
        int peer[3];
        for (int i = 0; i < 3; i++)
            conn_pair(f.base, &f.q, SOCK_STREAM, (char)('A' + i), &d.c[i], &peer[i]);
        turn(f.base, add_then_close, &d);
        CU_ASSERT_TRUE(d.queue_ok);
        CU_ASSERT_PTR_NULL(d.c[victim]);
        for (int i = 0; i < 3; i++) {
            if (i == victim) {
                expect_eof(peer[i]);
            } else {
                expect_peer(peer[i], "data");
                CU_ASSERT_EQUAL(d.c[i]->writes, 1);
            }
        }
        CU_ASSERT_EQUAL(strlen(trace), 2);
        CU_ASSERT_TRUE(TAILQ_EMPTY(&f.q.items));
        for (int i = 0; i < 3; i++) {
            if (d.c[i])
                conn_free(d.c[i]);
            close(peer[i]);
        }
        fx_close(&f);
    }
}

/* Write callbacks that close connections during the queue's walk: A closes
 * itself, B closes C (queued, not yet written), D is written as usual. */
struct four {
    struct conn *c[4];
};

static void add_four(void *arg)
{
    struct four *fr = arg;
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(fr->c[i]);  /* closed during an add: written too early */
        char s[2] = {fr->c[i]->id, '\0'};
        add_str(fr->c[i], s);
    }
}

static void test_writecb_closes(void)
{
    struct fixture f;
    fx_open(&f);
    struct four fr;
    int peer[4];
    for (int i = 0; i < 4; i++)
        conn_pair(f.base, &f.q, SOCK_STREAM, (char)('A' + i), &fr.c[i], &peer[i]);
    fr.c[0]->act = ACT_FREE_SELF;
    fr.c[1]->act = ACT_FREE_OTHER;
    fr.c[1]->other = fr.c[2];
    turn(f.base, add_four, &fr);
    CU_ASSERT_STRING_EQUAL(trace, "ABD");
    CU_ASSERT_PTR_NULL(fr.c[0]);
    CU_ASSERT_PTR_NOT_NULL(fr.c[1]);
    CU_ASSERT_PTR_NULL(fr.c[2]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fr.c[3]);
    expect_peer(peer[0], "A");
    expect_eof(peer[0]);
    expect_peer(peer[1], "B");
    expect_eof(peer[2]);
    expect_peer(peer[3], "D");
    CU_ASSERT_EQUAL(fr.c[3]->writes, 1);
    CU_ASSERT_TRUE(TAILQ_EMPTY(&f.q.items));
    /* the survivors still work on the next turn */
    fr.c[1]->act = ACT_NONE;
    turn(f.base, add_first, fr.c[1]);
    turn(f.base, add_first, fr.c[3]);
    expect_peer(peer[1], "first");
    expect_peer(peer[3], "first");
    CU_ASSERT_STRING_EQUAL(trace, "ABDBD");
    for (int i = 0; i < 4; i++) {
        if (fr.c[i])
            conn_free(fr.c[i]);
        close(peer[i]);
    }
    fx_close(&f);
}

/* The worker stops with output still queued: cleanup empties the queue and
 * frees its event; the connections detach after it, and nothing is written
 * or touched later. */
static void test_cleanup_queued(void)
{
    struct fixture f;
    fx_open(&f);
    struct conn *c[2];
    int peer[2];
    for (int i = 0; i < 2; i++) {
        conn_pair(f.base, &f.q, SOCK_STREAM, (char)('A' + i), &c[i], &peer[i]);
        add_str(c[i], "unsent");
        CU_ASSERT_TRUE(c[i]->it.queued);
    }
    sendq_cleanup(&f.q);
    CU_ASSERT_TRUE(TAILQ_EMPTY(&f.q.items));
    CU_ASSERT_PTR_NULL(f.q.ev);
    for (int i = 0; i < 2; i++)
        CU_ASSERT_FALSE(c[i]->it.queued);
    sendq_cleanup(&f.q);  /* twice is harmless */
    /* the flush event went with the queue: the loop writes nothing */
    CU_ASSERT_EQUAL(event_base_loop(f.base, EVLOOP_ONCE | EVLOOP_NONBLOCK), 1);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(readable(peer[i]), 0);
        CU_ASSERT_EQUAL(c[i]->writes, 0);
        conn_free(c[i]);
    }
    /* bufferevent_free closes the socket from the loop, or at the latest
     * when the base is freed: closed then, with nothing written */
    event_base_free(f.base);
    for (int i = 0; i < 2; i++) {
        expect_eof(peer[i]);
        close(peer[i]);
    }
}

/* Detached, the bufferevent is libevent's again: adds queue nothing, and
 * its own EV_WRITE writes. Detaching twice, or one never attached, is a
 * no-op. */
static void test_detach_hands_back(void)
{
    struct fixture f;
    fx_open(&f);
    struct conn *c;
    int peer = -1;
    conn_pair(f.base, &f.q, SOCK_STREAM, 'A', &c, &peer);
    sendq_detach(&c->it);
    sendq_detach(&c->it);
    CU_ASSERT_PTR_NULL(c->it.q);
    add_str(c, "mine");
    CU_ASSERT_FALSE(c->it.queued);
    CU_ASSERT_TRUE(TAILQ_EMPTY(&f.q.items));
    turn(f.base, nothing, NULL);
    CU_ASSERT_EQUAL(readable(peer), 0);
    CU_ASSERT_EQUAL(c->writes, 0);
    CU_ASSERT_EQUAL(bufferevent_enable(c->bev, EV_WRITE), 0);
    for (int i = 0; i < 5 && c->writes == 0; i++)
        testloop_pump(f.base, 1000);
    CU_ASSERT_EQUAL(c->writes, 1);
    expect_peer(peer, "mine");
    conn_free(c);
    close(peer);

    struct sendq_item never;
    memset(&never, 0, sizeof never);
    sendq_detach(&never);
    CU_ASSERT_PTR_NULL(never.q);
    fx_close(&f);
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("sendq", NULL, NULL);
    if (!s)
        return;
    CU_add_test(s, "attach takes EV_WRITE, leaves EV_READ", test_attach);
    CU_add_test(s, "written when the turn ends, not during the add", test_after_callback);
    CU_add_test(s, "added outside the loop: written next turn", test_outside_loop);
    CU_add_test(s, "several adds go out in one write", test_one_write);
    CU_add_test(s, "prelude runs once, before the writes", test_prelude);
    CU_add_test(s, "write callback's own adds go out the same turn", test_writecb_adds);
    CU_add_test(s, "would block: EV_WRITE armed, rest written as peer drains", test_would_block);
    CU_add_test(s, "detach of a queued item from a callback", test_detach_queued);
    CU_add_test(s, "write callbacks close connections mid-walk", test_writecb_closes);
    CU_add_test(s, "cleanup with items queued", test_cleanup_queued);
    CU_add_test(s, "detach hands the bufferevent back", test_detach_hands_back);
}
