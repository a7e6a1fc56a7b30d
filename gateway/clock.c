/*
 * clock: CLOCK_MONOTONIC in the two units the gateway uses, cached per loop
 * turn on threads that asked for it (see clock.h for why and how). It
 * cannot fail for a valid clock id on Linux; should it, 0 is returned,
 * which reads as "long ago" and errs toward expiring a deadline rather
 * than holding one.
 */
#include "clock.h"

#include <stdbool.h>
#include <time.h>

#include <event2/event.h>

static _Thread_local struct event *turn_end;  /* NULL: this thread reads uncached */
static _Thread_local bool cached;
static _Thread_local uint64_t cached_us;

static uint64_t read_us(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void turn_end_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    cached = false;
}

uint64_t clock_us(void)
{
    if (cached)
        return cached_us;
    uint64_t now = read_us();
    if (turn_end) {
        /* The invariant: cached implies turn_end is active. */
        event_active(turn_end, EV_TIMEOUT, 0);
        cached_us = now;
        cached = true;
    }
    return now;
}

uint64_t clock_ms(void)
{
    return clock_us() / 1000u;
}

uint64_t clock_ms_shared(void)
{
    return read_us() / 1000u;
}

int clock_turns_begin(struct event_base *base)
{
    clock_turns_end();
    turn_end = event_new(base, -1, 0, turn_end_cb, NULL);
    return turn_end ? 0 : -1;
}

void clock_turns_end(void)
{
    if (turn_end) {
        event_free(turn_end);
        turn_end = NULL;
    }
    cached = false;
}
