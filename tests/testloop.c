/*
 * testloop: bounded loop turns for unit suites; see testloop.h.
 */
#include "clock.h"
#include "testloop.h"

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
