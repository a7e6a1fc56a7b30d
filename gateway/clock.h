/*
 * clock: the one monotonic clock every module measures durations and
 * deadlines with (timeouts, backoffs, rate-limit arithmetic in local mode,
 * access-line durations). Wall-clock time appears only in log timestamps
 * and the Date header, never in a duration.
 *
 * On a worker's thread the reading is cached for the loop turn, as
 * HAProxy's now_ms is: every callback of a turn sees the same "now", so the
 * durations and deadlines computed in one turn agree with each other, and a
 * turn reads the clock once however many requests it serves. libevent 2.1
 * has no hook that runs before a turn's callbacks, so the cache is ended at
 * the turn's end instead: the first reading of a turn activates an event
 * whose callback forgets it. An active event always runs before the loop
 * waits again, so a cached value never outlives the turn it was read in;
 * it is at most as old as the turn's callbacks are long. A thread without
 * a loop (the main thread, the admin thread, unit tests) reads the clock
 * every time.
 */
#ifndef ENVELOPD_CLOCK_H
#define ENVELOPD_CLOCK_H

#include <stdint.h>

struct event_base;

/* Microseconds and milliseconds of CLOCK_MONOTONIC; never decreasing on
 * one thread. */
uint64_t clock_us(void);
uint64_t clock_ms(void);
/*
 * A fresh reading, for state several threads update (the local rate-limit
 * store, process-wide report throttles): another worker's cached "now" may
 * be newer than this one's, and shared arithmetic must not see time run
 * backwards between two threads' updates.
 */
uint64_t clock_ms_shared(void);

/* Cache readings per turn of BASE's loop on the calling thread, from the
 * call until clock_turns_end. 0, or -1 when out of memory (then uncached). */
int clock_turns_begin(struct event_base *base);
void clock_turns_end(void);

#endif
