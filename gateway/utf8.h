/*
 * utf8: the one UTF-8 validator every JSON writer uses (envelope bodies,
 * log lines). Strict: overlong forms, surrogates, code points above
 * U+10FFFF and truncated sequences are not UTF-8.
 */
#ifndef ENVELOPD_UTF8_H
#define ENVELOPD_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at S (at most N > 0 bytes), or 0. */
size_t utf8_seq(const unsigned char *s, size_t n);
/* The same, and its code point in *cp. */
size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

#endif
