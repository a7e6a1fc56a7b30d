/*
 * testloop: what the suites that test modules over real sockets (conn,
 * upstream) share, so each does not carry its own copy: driving a real
 * event_base one turn at a time, a turn that starts with the test's own
 * callback, and connected socket pairs (loopback TCP, unix).
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
/* A connected unix socket pair of TYPE (SOCK_STREAM, SOCK_SEQPACKET): *OURS
 * non-blocking, *PEER blocking. SNDBUF > 0 shrinks our send buffer. */
bool testloop_unix_pair(int *ours, int *peer, int type, int sndbuf);
/* One loop turn that runs FN(ARG) first (an event made active), then what
 * that turn runs after it (the end-of-turn work FN caused); no waiting. */
void testloop_turn(struct event_base *base, void (*fn)(void *), void *arg);

#endif
