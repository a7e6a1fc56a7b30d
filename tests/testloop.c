/*
 * testloop: bounded loop turns for unit suites; see testloop.h.
 */
#include "clock.h"
#include "testloop.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

void testloop_pump(struct event_base *base, int ms)
{
    struct event *guard = evtimer_new(base, on_guard, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(guard);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    CU_ASSERT_EQUAL(evtimer_add(guard, &tv), 0);
    CU_ASSERT_NOT_EQUAL(event_base_loop(base, EVLOOP_ONCE), -1);
    event_free(guard);
}

void testloop_pump_for(struct event_base *base, int ms)
{
    uint64_t end = clock_ms() + (uint64_t)ms;
    for (uint64_t now = clock_ms(); now < end; now = clock_ms())
        testloop_pump(base, (int)(end - now));
}

bool testloop_tcp_pair(int *ours, int *peer, int buf)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0)
        return false;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    int p = -1, o = -1;
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &alen) != 0)
        goto fail;
    p = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    /* The receive buffer is set before connect: the window is agreed then. */
    if (p < 0 || (buf > 0 && setsockopt(p, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf) != 0) ||
        connect(p, (struct sockaddr *)&a, sizeof a) != 0)
        goto fail;
    o = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (o < 0 || (buf > 0 && setsockopt(o, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf) != 0))
        goto fail;
    close(l);
    *ours = o;
    *peer = p;
    return true;
fail:
    if (o >= 0)
        close(o);
    if (p >= 0)
        close(p);
    close(l);
    return false;
}

bool testloop_unix_pair(int *ours, int *peer, int type, int sndbuf)
{
    int sv[2];
    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0)
        return false;
    int fl = fcntl(sv[0], F_GETFL);
    if (fl < 0 || fcntl(sv[0], F_SETFL, fl | O_NONBLOCK) != 0 ||
        (sndbuf > 0 && setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) != 0)) {
        close(sv[0]);
        close(sv[1]);
        return false;
    }
    *ours = sv[0];
    *peer = sv[1];
    return true;
}

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

void testloop_turn(struct event_base *base, void (*fn)(void *), void *arg)
{
    struct turn t = {fn, arg, 0};
    struct event *ev = event_new(base, -1, 0, turn_cb, &t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    event_active(ev, EV_TIMEOUT, 0);
    CU_ASSERT_NOT_EQUAL(event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), -1);
    CU_ASSERT_EQUAL(t.ran, 1);
    event_free(ev);
}
