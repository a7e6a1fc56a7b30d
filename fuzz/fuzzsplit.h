/*
 * fuzzsplit: how the stream fuzz targets cut one input into the pieces a
 * socket might deliver. The cut points come from a seed taken from the
 * input itself, so a crash reproduces from its file alone.
 */
#ifndef ENVELOPD_FUZZSPLIT_H
#define ENVELOPD_FUZZSPLIT_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t fuzz_rng_next(uint32_t *s)
{
    /* xorshift32: deterministic per input */
    uint32_t x = *s ? *s : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

/* The length of the next piece of at most LEFT bytes: often one byte, else 1-64. */
static inline size_t fuzz_piece(uint32_t *s, size_t left)
{
    if (left == 0)
        return 0;
    uint32_t r = fuzz_rng_next(s);
    size_t n = (r & 3) == 0 ? 1 : (size_t)(r >> 8) % 64 + 1;
    return n < left ? n : left;
}

#endif
