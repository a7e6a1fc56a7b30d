/*
 * jsonw: a JSON text writer for the envelopes the gateway renders on every
 * error response. It writes what yajl_gen writes, byte for byte (no spaces;
 * '"', '\\' and control characters escaped the way yajl escapes them, '/'
 * and non-ASCII left as they are), and repairs invalid UTF-8 to U+FFFD as
 * it goes. It exists because yajl_gen's string encoder cost about 600
 * instructions per string (a print callback per run of bytes), a fifth of
 * an error response's rendering; yajl still parses every JSON body.
 *
 * The caller drives the structure (map/array open and close, key, value);
 * a sequence yajl would refuse is the caller's bug, not checked here beyond
 * the nesting depth. Any failure (depth, size, memory) sticks: every later
 * call returns -1 and jsonw_take gives nothing.
 */
#ifndef ENVELOPD_JSONW_H
#define ENVELOPD_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSONW_MAX_DEPTH 16
#define JSONW_MAX_SIZE (1u << 20)   /* an envelope never comes near this */

struct jsonw {
    char *buf;                      /* malloc'd; NULL until the first byte */
    size_t len, cap;
    bool failed;
    unsigned depth;
    uint8_t level[JSONW_MAX_DEPTH + 1];  /* per open map/array: JW_* state */
};

void jsonw_init(struct jsonw *w);
void jsonw_free(struct jsonw *w);

int jsonw_map_open(struct jsonw *w);
int jsonw_map_close(struct jsonw *w);
int jsonw_array_open(struct jsonw *w);
int jsonw_array_close(struct jsonw *w);
/* A key of the open map: S as a JSON string (NULL: ""). */
int jsonw_key(struct jsonw *w, const char *s);
/* A string value: S (N bytes) as a JSON string, invalid UTF-8 -> U+FFFD. */
int jsonw_string(struct jsonw *w, const char *s, size_t n);
int jsonw_integer(struct jsonw *w, long long v);

/* The text written (caller frees), or -1 if anything failed. */
int jsonw_take(struct jsonw *w, char **buf, size_t *len);

#endif
