/*
 * testloop: what the suites that test modules over real sockets (sockread,
 * sendq, upstream) share, so each does not carry its own copy: driving a
 * real event_base one turn at a time, and a loopback TCP pair.
 */
#ifndef ENVELOPD_TESTLOOP_H
#define ENVELOPD_TESTLOOP_H

#include <stdbool.h>

#include <event2/event.h>

/* One loop turn: runs what is ready, or waits at most MS for something (a
 * one-shot timer keeps a turn with nothing to do from blocking). */
void testloop_pump(struct event_base *base, int ms);
/* Turn the loop for MS milliseconds of wall time. */
void testloop_pump_for(struct event_base *base, int ms);
/* A connected TCP pair on 127.0.0.1: *OURS non-blocking, *PEER blocking.
 * BUF > 0 shrinks our send buffer and the peer's receive buffer to about
 * that many bytes, so that our end would block a few KiB ahead of what the
 * peer has read. */
bool testloop_tcp_pair(int *ours, int *peer, int buf);

#endif
