/*
 * reqid: correlation IDs. Validates an incoming ID (1-128 characters of
 * [A-Za-z0-9._:-]) and makes new UUIDv4s from a per-thread buffer of
 * getrandom(2) bytes, so a request costs no syscall for its ID.
 */
#ifndef ENVELOPD_REQID_H
#define ENVELOPD_REQID_H

#include <stdbool.h>
#include <stddef.h>

#define REQID_MAX 128
#define REQID_UUID_LEN 36

bool reqid_valid(const char *s, size_t len);
/* Write a UUIDv4 (36 chars + NUL) into out[37]. Returns false if no randomness. */
bool reqid_generate(char out[REQID_UUID_LEN + 1]) __attribute__((warn_unused_result));
/* Fill buf with random bytes from the same pool. */
bool reqid_random(void *buf, size_t len) __attribute__((warn_unused_result));

#endif
