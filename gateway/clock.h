/*
 * clock: the one monotonic clock every module measures durations and
 * deadlines with (timeouts, backoffs, rate-limit arithmetic in local mode,
 * access-line durations). Wall-clock time appears only in log timestamps
 * and the Date header, never in a duration. Not cached per loop turn:
 * libevent 2.1 has no hook before a turn's callbacks to refresh a cache
 * in, and clock_gettime through the vDSO costs tens of nanoseconds.
 */
#ifndef ENVELOPD_CLOCK_H
#define ENVELOPD_CLOCK_H

#include <stdint.h>

/* Microseconds and milliseconds of CLOCK_MONOTONIC. */
uint64_t clock_us(void);
uint64_t clock_ms(void);

#endif
