/*
 * clock: CLOCK_MONOTONIC in the two units the gateway uses. It cannot fail
 * for a valid clock id on Linux; should it, 0 is returned, which reads as
 * "long ago" and errs toward expiring a deadline rather than holding one.
 */
#include "clock.h"

#include <time.h>

uint64_t clock_us(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t clock_ms(void)
{
    return clock_us() / 1000u;
}
