/*
 * test_conn: a connection's I/O over real sockets on a real event_base,
 * one loop turn at a time. Most cases are rows of CASES: a kind of socket
 * (unix pair, loopback TCP pair, small send buffers, a connect that
 * succeeds, connects at once, or is refused) and a script of steps the
 * peer, the owner and the loop take, with what must be seen after each;
 * a new case is one more row. They prove the two reasons conn exists
 * (one recv per readable event, at most CONN_READ_CHUNK; output written
 * at the end of the turn that filled it, EPOLLOUT armed only while the
 * kernel would block) and the signals the gateway relies on: the read
 * limit holds and draining resumes; EOF, a reset and a failed write are
 * reported once, with the socket's errno; either side may half-close; a
 * connect reports CONNECTED or a refusal from the loop, never from the
 * call; the write callback runs after the last byte (or at the low-water
 * mark). The tests after the table cover lifetimes: an owner closing its
 * conn, or another, from any callback; the deferred close (after the
 * prelude, in the same turn); several adds leaving in one write; cleanup
 * with work still queued. The suite also runs under ASan and valgrind,
 * which catch a touch after free.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "clock.h"
#include "conn.h"
#include "testloop.h"

void test_register(void);

/* 0..250 repeating: bytes lost, doubled or out of order show. */
static char pat(size_t i)
{
    return (char)(i % 251);
}

static bool pattern_at(const char *p, size_t n, size_t off)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != pat(off + i))
            return false;
    return true;
}

/* ---- the rig: one conn under test and its peer --------------------------- */

enum kind {
    K_PAIR,          /* unix stream socketpair */
    K_PAIR_SMALL,    /* the same, our send buffer about 4 KiB: writes block */
    K_TCP,           /* loopback TCP pair */
    K_TCP_SMALL,     /* loopback TCP, small buffers both ways: writes block */
    K_CONNECT,       /* conn_connect to a loopback TCP listener (ACCEPT makes the peer) */
    K_CONNECT_UNIX,  /* conn_connect to a unix listener: connected at once */
    K_REFUSED,       /* conn_connect to a bound port nobody listens on */
};

struct rig {
    struct event_base *base;
    struct conn_flushq q;
    struct conn c;
    int peer;                 /* the other end; -1 until ACCEPT for connects */
    int lfd;                  /* the listener (connect kinds) */
    size_t sent;              /* pattern bytes the peer sent */
    size_t taken;             /* of those, taken from the input by DRAIN */
    size_t added;             /* pattern bytes added to the output */
    size_t peer_got;          /* of those, read by the peer */
    int reads, writes, events, events_waited;
    short what;               /* flags of the last event */
    int err;                  /* errno at the last event */
    size_t out_at_write;      /* output length at the last write callback */
    size_t out_at_first;      /* ... and at the first one */
    size_t peer_at_write;     /* bytes the peer had (read or queued) then; unix only */
    int add_readable;         /* during the last ADD's callback: readable at the peer */
    bool add_armed;           /* ... and EPOLLOUT armed */
    long add_len;             /* ADD's length, for its callback */
};

/* Bytes queued at FD for reading (unix: exact; TCP: what arrived). */
static int readable(int fd)
{
    int n = -1;
    if (fd < 0 || ioctl(fd, FIONREAD, &n) != 0)
        return -1;
    return n;
}

static void on_read(struct conn *c, void *arg)
{
    struct rig *r = arg;
    (void)c;
    r->reads++;
}

static void on_write(struct conn *c, void *arg)
{
    struct rig *r = arg;
    r->writes++;
    r->out_at_write = evbuffer_get_length(conn_output(c));
    if (r->writes == 1)
        r->out_at_first = r->out_at_write;
    int q = readable(r->peer);
    r->peer_at_write = r->peer_got + (q > 0 ? (size_t)q : 0);
}

static void on_event(struct conn *c, short what, void *arg)
{
    struct rig *r = arg;
    (void)c;
    r->err = errno;
    r->events++;
    r->what = what;
}

/* A loopback TCP listener; its address in *SIN. */
static int listen_tcp(struct sockaddr_in *sin, bool do_listen)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(fd >= 0);
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof *sin;
    CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)sin, sizeof *sin), 0);
    if (do_listen)
        CU_ASSERT_EQUAL_FATAL(listen(fd, 8), 0);
    CU_ASSERT_EQUAL_FATAL(getsockname(fd, (struct sockaddr *)sin, &len), 0);
    return fd;
}

static void rig_open(struct rig *r, enum kind k)
{
    memset(r, 0, sizeof *r);
    r->peer = r->lfd = -1;
    r->base = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->base);
    CU_ASSERT_EQUAL_FATAL(conn_flushq_init(&r->q, r->base), 0);
    int fd = -1;
    switch (k) {
    case K_PAIR:
    case K_PAIR_SMALL:
        CU_ASSERT_TRUE_FATAL(
            testloop_unix_pair(&fd, &r->peer, SOCK_STREAM, k == K_PAIR_SMALL ? 4096 : 0));
        break;
    case K_TCP:
    case K_TCP_SMALL:
        CU_ASSERT_TRUE_FATAL(testloop_tcp_pair(&fd, &r->peer, k == K_TCP_SMALL ? 4096 : 0));
        break;
    case K_CONNECT:
    case K_REFUSED: {
        struct sockaddr_in sin;
        r->lfd = listen_tcp(&sin, k == K_CONNECT);
        CU_ASSERT_EQUAL_FATAL(
            conn_connect(&r->c, &r->q, (struct sockaddr *)&sin, sizeof sin, &conn_plain), 0);
        break;
    }
    case K_CONNECT_UNIX: {
        struct sockaddr_un sun;
        memset(&sun, 0, sizeof sun);
        sun.sun_family = AF_UNIX;
        /* Abstract: nothing left in the file system. */
        int n = snprintf(sun.sun_path + 1, sizeof sun.sun_path - 1, "envelopd-test-conn-%d",
                         (int)getpid());
        socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
        r->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CU_ASSERT_FATAL(r->lfd >= 0);
        CU_ASSERT_EQUAL_FATAL(bind(r->lfd, (struct sockaddr *)&sun, len), 0);
        CU_ASSERT_EQUAL_FATAL(listen(r->lfd, 8), 0);
        CU_ASSERT_EQUAL_FATAL(conn_connect(&r->c, &r->q, (struct sockaddr *)&sun, len, &conn_plain),
                              0);
        break;
    }
    }
    if (fd >= 0)
        CU_ASSERT_EQUAL_FATAL(conn_init(&r->c, &r->q, fd, &conn_plain), 0);
    conn_setcb(&r->c, on_read, on_write, on_event, r);
}

static void rig_close(struct rig *r)
{
    conn_close(&r->c);
    conn_flushq_cleanup(&r->q);
    event_base_free(r->base);
    if (r->peer >= 0)
        close(r->peer);
    if (r->lfd >= 0)
        close(r->lfd);
}

static bool send_all(int fd, size_t n, size_t *off)
{
    char buf[4096];
    while (n) {
        size_t k = n < sizeof buf ? n : sizeof buf;
        for (size_t i = 0; i < k; i++)
            buf[i] = pat(*off + i);
        ssize_t w = send(fd, buf, k, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        *off += (size_t)w;
        n -= (size_t)w;
    }
    return true;
}

static void add_cb(void *arg)
{
    struct rig *r = arg;
    char buf[4096];
    for (long left = r->add_len; left > 0;) {
        size_t k = (size_t)left < sizeof buf ? (size_t)left : sizeof buf;
        for (size_t i = 0; i < k; i++)
            buf[i] = pat(r->added + i);
        CU_ASSERT_EQUAL_FATAL(evbuffer_add(conn_output(&r->c), buf, k), 0);
        r->added += k;
        left -= (long)k;
    }
    r->add_readable = readable(r->peer);
    r->add_armed = r->c.wr_armed;
}

/* The peer reads until it has WANT bytes of the output in all, the loop
 * turning meanwhile; each byte checked. */
static void peer_read(struct rig *r, size_t want)
{
    char buf[16384];
    uint64_t deadline = clock_ms() + 10000;
    while (r->peer_got < want && clock_ms() < deadline) {
        size_t room = want - r->peer_got < sizeof buf ? want - r->peer_got : sizeof buf;
        ssize_t n = recv(r->peer, buf, room, MSG_DONTWAIT);
        if (n > 0) {
            CU_ASSERT_TRUE(pattern_at(buf, (size_t)n, r->peer_got));
            r->peer_got += (size_t)n;
            continue;
        }
        CU_ASSERT_FATAL(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
        testloop_pump(r->base, 100);
    }
    CU_ASSERT_EQUAL(r->peer_got, want);
}

/* ---- the script ---------------------------------------------------------- */

enum op {
    END = 0,
    READ_ON,       /* conn_read_enable (must return 0) */
    READ_OFF,
    LIMIT,         /* conn_set_read_limit(ARG) */
    LOW,           /* conn_set_write_low(ARG) */
    SEND,          /* the peer sends ARG pattern bytes */
    SHUT_PEER,     /* the peer shuts its sending side (FIN) */
    CLOSE_PEER,    /* the peer closes */
    RESET_PEER,    /* the peer closes with a reset */
    ACCEPT,        /* the listener's end of a connect becomes the peer */
    ADD,           /* a turn whose first callback adds ARG pattern bytes to the output */
    SHUTDOWN,      /* conn_shutdown (must return 0) */
    TURN,          /* one loop turn, waiting at most 50 ms */
    DRAIN,         /* the owner takes ARG bytes from the input (checked) */
    WAIT_IN,       /* turn the loop until the input holds ARG bytes; then exactly ARG */
    WAIT_EVENT,    /* turn the loop until the next event callback; its flags are ARG */
    PEER_READ,     /* the peer reads (the loop turning) until ARG output bytes came */
    EXPECT_IN,     /* the input holds ARG bytes */
    EXPECT_OUT,    /* the output holds ARG bytes */
    EXPECT_READS,  /* read callbacks so far */
    EXPECT_READS_MIN,
    EXPECT_WRITES, /* write callbacks so far */
    EXPECT_WRITES_MIN,
    EXPECT_EVENTS, /* event callbacks so far */
    EXPECT_ERRNO,  /* errno at the last event */
    EXPECT_READING,    /* conn_reading() */
    EXPECT_RD_ARMED,   /* the read event is on the base */
    EXPECT_WR_ARMED,   /* EPOLLOUT is armed */
    EXPECT_ADD_SENT,   /* bytes readable at the peer during the last ADD's callback */
    EXPECT_ADD_ARMED,  /* EPOLLOUT armed during the last ADD's callback */
    EXPECT_WRITE_AT,   /* the output held ARG bytes at the last write callback */
    EXPECT_WRITE_ALL,  /* at the last write callback the peer had every byte (unix) */
    EXPECT_EARLY_WRITE,  /* the first write callback came with 0 < output <= ARG */
    WAIT_PEER_EOF,     /* the peer reads EOF (within a second) */
};

struct step {
    enum op op;
    long arg;
};

#define MAX_STEPS 24

struct conn_case {
    const char *name;
    enum kind kind;
    struct step steps[MAX_STEPS];
};

static void wait_for(struct rig *r, bool (*done)(const struct rig *, long), long arg)
{
    for (int i = 0; i < 50 && !done(r, arg); i++)
        testloop_pump(r->base, 200);
}

static bool in_has(const struct rig *r, long n)
{
    return evbuffer_get_length(conn_input(&r->c)) >= (size_t)n;
}

static bool event_came(const struct rig *r, long unused)
{
    (void)unused;
    return r->events > r->events_waited;
}

static void run_step(struct rig *r, const struct conn_case *k, int i)
{
    const struct step *s = &k->steps[i];
    size_t in_len = r->c.in ? evbuffer_get_length(conn_input(&r->c)) : 0;
    size_t out_len = r->c.out ? evbuffer_get_length(conn_output(&r->c)) : 0;
    bool ok = true;
    switch (s->op) {
    case END:
        break;
    case READ_ON:
        ok = conn_read_enable(&r->c) == 0;
        break;
    case READ_OFF:
        conn_read_disable(&r->c);
        break;
    case LIMIT:
        conn_set_read_limit(&r->c, (size_t)s->arg);
        break;
    case LOW:
        conn_set_write_low(&r->c, (size_t)s->arg);
        break;
    case SEND:
        ok = send_all(r->peer, (size_t)s->arg, &r->sent);
        break;
    case SHUT_PEER:
        ok = shutdown(r->peer, SHUT_WR) == 0;
        break;
    case CLOSE_PEER:
    case RESET_PEER:
        if (s->op == RESET_PEER) {
            struct linger lg = {1, 0};
            ok = setsockopt(r->peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0;
        }
        ok = close(r->peer) == 0 && ok;
        r->peer = -1;
        break;
    case ACCEPT:
        r->peer = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
        ok = r->peer >= 0;
        break;
    case ADD:
        r->add_len = s->arg;
        testloop_turn(r->base, add_cb, r);
        break;
    case SHUTDOWN:
        ok = conn_shutdown(&r->c) == 0;
        break;
    case TURN:
        testloop_pump(r->base, 50);
        break;
    case DRAIN: {
        char *buf = malloc((size_t)s->arg);
        CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
        ok = evbuffer_remove(conn_input(&r->c), buf, (size_t)s->arg) == (int)s->arg &&
             pattern_at(buf, (size_t)s->arg, r->taken);
        r->taken += (size_t)s->arg;
        free(buf);
        break;
    }
    case WAIT_IN:
        wait_for(r, in_has, s->arg);
        ok = evbuffer_get_length(conn_input(&r->c)) == (size_t)s->arg;
        break;
    case WAIT_EVENT:
        wait_for(r, event_came, 0);
        ok = r->events > r->events_waited && r->what == (short)s->arg;
        r->events_waited = r->events;
        break;
    case PEER_READ:
        peer_read(r, (size_t)s->arg);
        break;
    case EXPECT_IN:
        ok = in_len == (size_t)s->arg;
        break;
    case EXPECT_OUT:
        ok = out_len == (size_t)s->arg;
        break;
    case EXPECT_READS:
        ok = r->reads == s->arg;
        break;
    case EXPECT_READS_MIN:
        ok = r->reads >= s->arg;
        break;
    case EXPECT_WRITES:
        ok = r->writes == s->arg;
        break;
    case EXPECT_WRITES_MIN:
        ok = r->writes >= s->arg;
        break;
    case EXPECT_EVENTS:
        ok = r->events == s->arg;
        break;
    case EXPECT_ERRNO:
        ok = r->err == s->arg;
        break;
    case EXPECT_READING:
        ok = conn_reading(&r->c) == (s->arg != 0);
        break;
    case EXPECT_RD_ARMED:
        ok = r->c.rd_armed == (s->arg != 0);
        break;
    case EXPECT_WR_ARMED:
        ok = r->c.wr_armed == (s->arg != 0);
        break;
    case EXPECT_ADD_SENT:
        ok = r->add_readable == s->arg;
        break;
    case EXPECT_ADD_ARMED:
        ok = r->add_armed == (s->arg != 0);
        break;
    case EXPECT_WRITE_AT:
        ok = r->writes > 0 && r->out_at_write == (size_t)s->arg;
        break;
    case EXPECT_WRITE_ALL:
        ok = r->writes > 0 && r->peer_at_write == r->added;
        break;
    case EXPECT_EARLY_WRITE:
        ok = r->writes > 0 && r->out_at_first > 0 && r->out_at_first <= (size_t)s->arg;
        break;
    case WAIT_PEER_EOF: {
        char b;
        ssize_t n = -1;
        for (int t = 0; t < 20; t++) {
            n = recv(r->peer, &b, 1, MSG_DONTWAIT);
            if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                break;
            testloop_pump(r->base, 50);
        }
        ok = n == 0;
        break;
    }
    }
    if (!ok) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: step %d (op %d, arg %ld) failed", k->name, i + 1, (int)s->op,
                 s->arg);
        CU_FAIL(msg);
        fprintf(stderr,
                "\n    %s (reads %d writes %d events %d what 0x%x errno %d in %zu out %zu)\n", msg,
                r->reads, r->writes, r->events, (unsigned)r->what, r->err, in_len, out_len);
    }
}

#define EV_RD_EOF (CONN_EV_READING | CONN_EV_EOF)
#define EV_RD_ERR (CONN_EV_READING | CONN_EV_ERROR)
#define EV_WR_ERR (CONN_EV_WRITING | CONN_EV_ERROR)
#define BIG (256 * 1024)

/* One row per case; a step without an argument is {OP} (the table is kept
 * as rows, so clang-format leaves it alone). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
/* clang-format off */
static const struct conn_case cases[] = {
    {"bytes reach the input, one read callback each", K_PAIR,
     {{READ_ON}, {SEND, 5}, {WAIT_IN, 5}, {EXPECT_READS, 1}, {SEND, 6}, {WAIT_IN, 11},
      {EXPECT_READS, 2}, {DRAIN, 11}, {EXPECT_EVENTS, 0}}},
    {"reading off reads nothing; on again reads what waited", K_PAIR,
     {{SEND, 3}, {TURN}, {TURN}, {EXPECT_IN, 0}, {EXPECT_READS, 0}, {READ_ON}, {READ_ON},
      {WAIT_IN, 3}, {READ_OFF}, {EXPECT_READING, 0}, {SEND, 3}, {TURN}, {TURN}, {EXPECT_IN, 3},
      {READ_ON}, {WAIT_IN, 6}, {EXPECT_READS, 2}, {DRAIN, 6}}},
    {"one recv takes at most CONN_READ_CHUNK", K_PAIR,
     {{READ_ON}, {SEND, 40000}, {WAIT_IN, 40000}, {EXPECT_READS_MIN, 3}, {DRAIN, 40000}}},
    {"limit holds the input; draining resumes it", K_PAIR,
     {{LIMIT, 100}, {READ_ON}, {SEND, 1000}, {WAIT_IN, 100}, {EXPECT_READS, 1}, {TURN}, {TURN},
      {EXPECT_IN, 100}, {EXPECT_READS, 1}, {EXPECT_READING, 1}, {EXPECT_RD_ARMED, 0}, {DRAIN, 60},
      {WAIT_IN, 100}, {EXPECT_READS, 2}, {DRAIN, 100}, {WAIT_IN, 100}, {EXPECT_READS, 3}}},
    {"held, reading off: a drain does not turn it on", K_PAIR,
     {{LIMIT, 100}, {READ_ON}, {SEND, 300}, {WAIT_IN, 100}, {READ_OFF}, {DRAIN, 100}, {TURN},
      {TURN}, {EXPECT_IN, 0}, {EXPECT_READS, 1}, {READ_ON}, {WAIT_IN, 100}, {EXPECT_READS, 2}}},
    {"limit lifted while held: the rest comes", K_PAIR,
     {{LIMIT, 100}, {READ_ON}, {SEND, 1000}, {WAIT_IN, 100}, {LIMIT, 0}, {WAIT_IN, 1000},
      {DRAIN, 1000}}},
    {"limit lowered below the input: new bytes wait, no EOF taken", K_PAIR,
     {{READ_ON}, {SEND, 900}, {WAIT_IN, 900}, {LIMIT, 100}, {SEND, 3}, {TURN}, {TURN},
      {EXPECT_IN, 900}, {EXPECT_EVENTS, 0}, {DRAIN, 900}, {WAIT_IN, 3}, {EXPECT_EVENTS, 0}}},
    {"EOF after the data, once; reading stops", K_PAIR,
     {{READ_ON}, {SEND, 4}, {CLOSE_PEER}, {WAIT_EVENT, EV_RD_EOF}, {EXPECT_READS, 1},
      {EXPECT_IN, 4}, {EXPECT_READING, 0}, {TURN}, {TURN}, {EXPECT_EVENTS, 1}}},
    {"a reset is an error with ECONNRESET", K_TCP,
     {{READ_ON}, {RESET_PEER}, {WAIT_EVENT, EV_RD_ERR}, {EXPECT_ERRNO, ECONNRESET},
      {EXPECT_READS, 0}, {EXPECT_READING, 0}, {TURN}, {EXPECT_EVENTS, 1}}},
    {"peer half-closes: EOF, and our answer still reaches it", K_TCP,
     {{READ_ON}, {SEND, 10}, {SHUT_PEER}, {WAIT_EVENT, EV_RD_EOF}, {EXPECT_IN, 10}, {ADD, 7},
      {PEER_READ, 7}, {EXPECT_WRITES, 1}, {EXPECT_EVENTS, 1}}},
    {"we half-close: the peer reads EOF after the bytes; we still read", K_TCP,
     {{ADD, 3}, {PEER_READ, 3}, {SHUTDOWN}, {WAIT_PEER_EOF}, {READ_ON}, {SEND, 4}, {WAIT_IN, 4},
      {EXPECT_EVENTS, 0}}},
    {"write-first: sent when the turn ends, EPOLLOUT never armed", K_PAIR,
     {{ADD, 11}, {EXPECT_ADD_SENT, 0}, {EXPECT_ADD_ARMED, 0}, {EXPECT_OUT, 0},
      {EXPECT_WR_ARMED, 0}, {EXPECT_WRITES, 1}, {EXPECT_WRITE_AT, 0}, {EXPECT_WRITE_ALL}, {TURN},
      {EXPECT_WRITES, 1}, {PEER_READ, 11}}},
    {"EAGAIN: EPOLLOUT armed, the rest written as the peer reads", K_PAIR_SMALL,
     {{ADD, BIG}, {EXPECT_WR_ARMED, 1}, {EXPECT_WRITES, 0}, {ADD, 1000}, {EXPECT_WRITES, 0},
      {PEER_READ, BIG + 1000}, {TURN}, {EXPECT_OUT, 0}, {EXPECT_WR_ARMED, 0}, {EXPECT_WRITES, 1},
      {EXPECT_WRITE_AT, 0}, {EXPECT_WRITE_ALL}, {ADD, 100}, {EXPECT_WR_ARMED, 0},
      {EXPECT_WRITES, 2}, {PEER_READ, BIG + 1100}}},
    {"EAGAIN over TCP, then write-first again", K_TCP_SMALL,
     {{ADD, BIG}, {EXPECT_WR_ARMED, 1}, {PEER_READ, BIG}, {TURN}, {EXPECT_WR_ARMED, 0},
      {EXPECT_WRITES, 1}, {EXPECT_WRITE_AT, 0}, {ADD, 100}, {EXPECT_ADD_SENT, 0},
      {EXPECT_WR_ARMED, 0}, {EXPECT_WRITES, 2}, {PEER_READ, BIG + 100}}},
    {"low-water mark: the write callback comes before the last byte", K_PAIR_SMALL,
     {{LOW, BIG / 2}, {ADD, BIG}, {EXPECT_WRITES, 0}, {PEER_READ, BIG / 4}, {TURN},
      {EXPECT_WRITES, 0}, {PEER_READ, BIG / 2 + BIG / 8}, {TURN}, {EXPECT_WRITES_MIN, 1},
      {EXPECT_EARLY_WRITE, BIG / 2}, {PEER_READ, BIG}, {TURN}, {EXPECT_WRITE_AT, 0}}},
    {"a write to a closed peer is an error with EPIPE", K_PAIR,
     {{CLOSE_PEER}, {ADD, 5}, {EXPECT_EVENTS, 1}, {WAIT_EVENT, EV_WR_ERR}, {EXPECT_ERRNO, EPIPE},
      {EXPECT_WRITES, 0}, {EXPECT_WR_ARMED, 0}}},
    {"connect: CONNECTED from the loop; reading starts then", K_CONNECT,
     {{EXPECT_EVENTS, 0}, {READ_ON}, {EXPECT_READING, 1}, {EXPECT_RD_ARMED, 0},
      {WAIT_EVENT, CONN_EV_CONNECTED}, {EXPECT_RD_ARMED, 1}, {ACCEPT}, {SEND, 5}, {WAIT_IN, 5},
      {ADD, 9}, {PEER_READ, 9}, {EXPECT_WRITES, 1}}},
    {"connect: output added while connecting goes out once connected", K_CONNECT,
     {{ADD, 20}, {WAIT_EVENT, CONN_EV_CONNECTED}, {ACCEPT}, {PEER_READ, 20}, {EXPECT_WRITES, 1}}},
    {"connect to a unix socket: done at once, reported from the loop", K_CONNECT_UNIX,
     {{EXPECT_EVENTS, 0}, {READ_ON}, {WAIT_EVENT, CONN_EV_CONNECTED}, {ACCEPT}, {SEND, 5},
      {WAIT_IN, 5}}},
    {"connect refused: one error, from the loop", K_REFUSED,
     {{EXPECT_EVENTS, 0}, {READ_ON}, {WAIT_EVENT, CONN_EV_ERROR}, {EXPECT_ERRNO, ECONNREFUSED},
      {EXPECT_READING, 0}, {TURN}, {TURN}, {EXPECT_EVENTS, 1}}},
};
/* clang-format on */
#pragma GCC diagnostic pop

static void test_cases(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rig r;
        rig_open(&r, cases[i].kind);
        for (int s = 0; s < MAX_STEPS && cases[i].steps[s].op != END; s++)
            run_step(&r, &cases[i], s);
        rig_close(&r);
    }
}

/* ---- lifetimes ----------------------------------------------------------- */

/* An owner in its own allocation that closes and frees itself (or another)
 * from its callbacks, as the gateway's connections do. */
enum act { ACT_NONE, ACT_FREE_SELF, ACT_FREE_OTHER };

struct owner {
    struct conn c;
    char id;
    enum act act;
    struct owner *other;
    struct owner **slot;      /* nulled when freed */
    int peer;
};

static char trace[64];
static size_t ntrace;

static void trace_add(char ch)
{
    if (ntrace < sizeof trace - 1)
        trace[ntrace++] = ch;
    trace[ntrace] = '\0';
}

static void owner_free(struct owner *o)
{
    conn_close(&o->c);
    if (o->slot)
        *o->slot = NULL;
    free(o);
}

static void owner_act(struct owner *o)
{
    trace_add(o->id);
    if (o->act == ACT_FREE_SELF)
        owner_free(o);
    else if (o->act == ACT_FREE_OTHER && o->other)
        owner_free(o->other);
}

static void owner_read(struct conn *c, void *arg)
{
    (void)c;
    owner_act(arg);
}

static void owner_write(struct conn *c, void *arg)
{
    (void)c;
    owner_act(arg);
}

static void owner_event(struct conn *c, short what, void *arg)
{
    (void)c;
    (void)what;
    owner_act(arg);
}

static struct owner *owner_new(struct conn_flushq *q, char id, struct owner **slot, int type)
{
    struct owner *o = calloc(1, sizeof *o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    int fd;
    CU_ASSERT_TRUE_FATAL(testloop_unix_pair(&fd, &o->peer, type, 0));
    CU_ASSERT_EQUAL_FATAL(conn_init(&o->c, q, fd, &conn_plain), 0);
    conn_setcb(&o->c, owner_read, owner_write, owner_event, o);
    o->id = id;
    o->slot = slot;
    *slot = o;
    return o;
}

/* PEER holds exactly S now, and nothing after it. */
static void expect_peer(int peer, const char *s)
{
    char buf[256];
    ssize_t n = recv(peer, buf, sizeof buf - 1, MSG_DONTWAIT);
    CU_ASSERT_EQUAL(n, (ssize_t)strlen(s));
    if (n >= 0) {
        buf[n] = '\0';
        CU_ASSERT_STRING_EQUAL(buf, s);
    }
}

static void expect_eof(int peer)
{
    char b;
    CU_ASSERT_EQUAL(recv(peer, &b, 1, MSG_DONTWAIT), 0);
}

/* Freed from the read callback (with the limit reached by the same read)
 * and from the event callback (EOF). */
static void test_close_from_callbacks(void)
{
    struct event_base *base = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    struct conn_flushq q;
    CU_ASSERT_EQUAL_FATAL(conn_flushq_init(&q, base), 0);
    struct owner *a, *b;
    owner_new(&q, 'r', &a, SOCK_STREAM);
    owner_new(&q, 'e', &b, SOCK_STREAM);
    int pa = a->peer, pb = b->peer;
    a->act = b->act = ACT_FREE_SELF;
    conn_set_read_limit(&a->c, 4);
    CU_ASSERT_EQUAL(conn_read_enable(&a->c), 0);
    CU_ASSERT_EQUAL(conn_read_enable(&b->c), 0);
    CU_ASSERT_EQUAL(send(pa, "hell", 4, 0), 4);  /* unread bytes would make the close a reset */
    CU_ASSERT_EQUAL(close(pb), 0);
    for (int i = 0; i < 10 && (a || b); i++)
        testloop_pump(base, 200);
    CU_ASSERT_PTR_NULL(a);
    CU_ASSERT_PTR_NULL(b);
    testloop_pump(base, 20);
    expect_eof(pa);
    close(pa);
    conn_flushq_cleanup(&q);
    event_base_free(base);
}

/* Write callbacks closing conns during the queue's walk: A closes itself,
 * B closes C (queued, not yet written), D is written as usual; the
 * survivors go on. Adds to each of them leave in one record each
 * (SEQPACKET), in the order they were first added to. */
struct four {
    struct owner *o[4];
};

static void add_four(void *arg)
{
    struct four *f = arg;
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(f->o[i]);  /* freed during an add: written too early */
        char s[3] = {f->o[i]->id, '-', '\0'};
        CU_ASSERT_EQUAL(evbuffer_add(conn_output(&f->o[i]->c), s, 1), 0);
        CU_ASSERT_EQUAL(evbuffer_add(conn_output(&f->o[i]->c), s + 1, 1), 0);
    }
}

static void add_one(void *arg)
{
    struct owner *o = arg;
    CU_ASSERT_EQUAL(evbuffer_add(conn_output(&o->c), "again", 5), 0);
}

static void test_close_during_flush(void)
{
    struct event_base *base = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    struct conn_flushq q;
    CU_ASSERT_EQUAL_FATAL(conn_flushq_init(&q, base), 0);
    struct four f;
    int peer[4];
    for (int i = 0; i < 4; i++) {
        owner_new(&q, (char)('A' + i), &f.o[i], SOCK_SEQPACKET);
        peer[i] = f.o[i]->peer;
    }
    f.o[0]->act = ACT_FREE_SELF;
    f.o[1]->act = ACT_FREE_OTHER;
    f.o[1]->other = f.o[2];
    ntrace = 0;
    testloop_turn(base, add_four, &f);
    CU_ASSERT_STRING_EQUAL(trace, "ABD");
    CU_ASSERT_PTR_NULL(f.o[0]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f.o[1]);
    CU_ASSERT_PTR_NULL(f.o[2]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f.o[3]);
    CU_ASSERT_TRUE(TAILQ_EMPTY(&q.conns));
    CU_ASSERT_EQUAL(q.n_closing, 0);  /* closed at the end of that same turn */
    expect_peer(peer[0], "A-");
    expect_eof(peer[0]);
    expect_peer(peer[1], "B-");
    expect_eof(peer[2]);                /* C's bytes never went */
    expect_peer(peer[3], "D-");
    f.o[1]->act = ACT_NONE;
    testloop_turn(base, add_one, f.o[1]);
    testloop_turn(base, add_one, f.o[3]);
    expect_peer(peer[1], "again");
    expect_peer(peer[3], "again");
    CU_ASSERT_STRING_EQUAL(trace, "ABDBD");
    for (int i = 0; i < 4; i++) {
        if (f.o[i])
            owner_free(f.o[i]);
        close(peer[i]);
    }
    conn_flushq_cleanup(&q);
    event_base_free(base);
}

/* A close is deferred to the end of the turn, after the prelude (the
 * access log's batch): the peer sees EOF only once the turn ends, and the
 * prelude ran while the socket was still open. A reset closes with RST. */
static int prelude_peer = -1;
static int prelude_saw;   /* 1: the peer still open when the prelude ran */

static void prelude(void)
{
    char b;
    ssize_t n = recv(prelude_peer, &b, 1, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        prelude_saw = 1;
}

struct closing {
    struct conn *c;
    int peer;
    int eof_during;   /* recv on the peer right after conn_close, in the turn */
    bool reset;
};

static void close_now(void *arg)
{
    struct closing *k = arg;
    if (k->reset)
        conn_reset_on_close(k->c);
    conn_close(k->c);
    conn_close(k->c);  /* twice is harmless */
    char b;
    k->eof_during = (int)recv(k->peer, &b, 1, MSG_DONTWAIT);
}

static void test_deferred_close(void)
{
    for (int reset = 0; reset < 2; reset++) {
        struct event_base *base = event_base_new();
        CU_ASSERT_PTR_NOT_NULL_FATAL(base);
        struct conn_flushq q;
        CU_ASSERT_EQUAL_FATAL(conn_flushq_init(&q, base), 0);
        q.prelude = prelude;
        int fd, peer;
        CU_ASSERT_TRUE_FATAL(testloop_tcp_pair(&fd, &peer, 0));
        struct conn c;
        CU_ASSERT_EQUAL_FATAL(conn_init(&c, &q, fd, &conn_plain), 0);
        prelude_peer = peer;
        prelude_saw = 0;
        struct closing k = {&c, peer, 0, reset != 0};
        testloop_turn(base, close_now, &k);
        CU_ASSERT_EQUAL(k.eof_during, -1);  /* still open during the turn */
        CU_ASSERT_EQUAL(prelude_saw, 1);
        CU_ASSERT_EQUAL(q.n_closing, 0);
        char b;
        ssize_t n = -1;
        for (int i = 0; i < 20; i++) {
            n = recv(peer, &b, 1, MSG_DONTWAIT);
            if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                break;
            testloop_pump(base, 50);
        }
        if (reset) {
            CU_ASSERT_EQUAL(n, -1);
            CU_ASSERT_EQUAL(errno, ECONNRESET);
        } else {
            CU_ASSERT_EQUAL(n, 0);
        }
        close(peer);
        conn_flushq_cleanup(&q);
        event_base_free(base);
    }
}

/* The write callback's own adds (the next pipelined answer) go out in the
 * same turn. */
static void add_then_more(struct conn *c, void *arg)
{
    int *n = arg;
    if ((*n)++ == 0)
        CU_ASSERT_EQUAL(evbuffer_add(conn_output(c), "+more", 5), 0);
}

static void add_first(void *arg)
{
    CU_ASSERT_EQUAL(evbuffer_add(conn_output(arg), "first", 5), 0);
}

static void test_writecb_adds(void)
{
    struct event_base *base = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    struct conn_flushq q;
    CU_ASSERT_EQUAL_FATAL(conn_flushq_init(&q, base), 0);
    int fd, peer, writes = 0;
    CU_ASSERT_TRUE_FATAL(testloop_unix_pair(&fd, &peer, SOCK_STREAM, 0));
    struct conn c;
    CU_ASSERT_EQUAL_FATAL(conn_init(&c, &q, fd, &conn_plain), 0);
    conn_setcb(&c, NULL, add_then_more, NULL, &writes);
    testloop_turn(base, add_first, &c);
    CU_ASSERT_EQUAL(writes, 2);
    CU_ASSERT_FALSE(c.wr_armed);
    expect_peer(peer, "first+more");
    conn_close(&c);
    close(peer);
    conn_flushq_cleanup(&q);
    event_base_free(base);
}

/* The worker stops with writes and closes still queued: cleanup drops the
 * writes, closes the sockets, frees the event; a conn closed after it has
 * its socket closed at once. */
static void test_cleanup_queued(void)
{
    struct event_base *base = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    struct conn_flushq q;
    CU_ASSERT_EQUAL_FATAL(conn_flushq_init(&q, base), 0);
    struct owner *a, *b;
    owner_new(&q, 'a', &a, SOCK_STREAM);
    owner_new(&q, 'b', &b, SOCK_STREAM);
    int pa = a->peer, pb = b->peer;
    CU_ASSERT_EQUAL(evbuffer_add(conn_output(&a->c), "unsent", 6), 0);
    CU_ASSERT_TRUE(a->c.queued);
    owner_free(b);
    CU_ASSERT_EQUAL(q.n_closing, 1);
    conn_flushq_cleanup(&q);
    CU_ASSERT_TRUE(TAILQ_EMPTY(&q.conns));
    CU_ASSERT_PTR_NULL(q.ev);
    CU_ASSERT_FALSE(a->c.queued);
    conn_flushq_cleanup(&q);  /* twice is harmless */
    expect_eof(pb);           /* B's socket closed by the cleanup */
    char buf[8];
    CU_ASSERT_EQUAL(recv(pa, buf, sizeof buf, MSG_DONTWAIT), -1);  /* nothing written */
    owner_free(a);
    CU_ASSERT_EQUAL(q.n_closing, 0);
    expect_eof(pa);
    close(pa);
    close(pb);
    event_base_free(base);
}

/* A zeroed conn (the owner's calloc) and a closed one: closing is a
 * no-op, reading cannot be enabled, the rest does nothing. */
static void test_not_open(void)
{
    struct conn c;
    memset(&c, 0, sizeof c);
    conn_close(&c);
    conn_close(&c);
    CU_ASSERT_EQUAL(conn_read_enable(&c), -1);
    CU_ASSERT_FALSE(conn_reading(&c));
    conn_read_disable(&c);
    conn_set_read_limit(&c, 10);
    CU_ASSERT_EQUAL(conn_shutdown(&c), -1);
    CU_ASSERT_PTR_NULL(c.q);
}

/* A connect that fails at once (no such unix socket) is the caller's at
 * once: -1 with errno, nothing open, nothing reported later. */
static void test_connect_fails_at_once(void)
{
    struct event_base *base = event_base_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    struct conn_flushq q;
    CU_ASSERT_EQUAL_FATAL(conn_flushq_init(&q, base), 0);
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof sun.sun_path, "/nonexistent/envelopd-test-conn");
    struct conn c;
    errno = 0;
    CU_ASSERT_EQUAL(conn_connect(&c, &q, (struct sockaddr *)&sun, sizeof sun, &conn_plain), -1);
    CU_ASSERT_EQUAL(errno, ENOENT);
    CU_ASSERT_PTR_NULL(c.q);
    conn_close(&c);
    CU_ASSERT_EQUAL(q.n_closing, 0);
    conn_flushq_cleanup(&q);
    event_base_free(base);
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("conn", NULL, NULL);
    if (!s)
        return;
    CU_add_test(s, "cases: reads, limits, EOF, reset, half-close, writes, connects", test_cases);
    CU_add_test(s, "owner closes itself from its callbacks", test_close_from_callbacks);
    CU_add_test(s, "write callbacks close conns mid-flush; one record each",
                test_close_during_flush);
    CU_add_test(s, "close deferred to the turn's end, after the prelude; reset",
                test_deferred_close);
    CU_add_test(s, "write callback's own adds go out the same turn", test_writecb_adds);
    CU_add_test(s, "cleanup with writes and closes queued", test_cleanup_queued);
    CU_add_test(s, "zeroed and closed conns", test_not_open);
    CU_add_test(s, "connect failing at once", test_connect_fails_at_once);
}
