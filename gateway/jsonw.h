/*
 * jsonw: the one JSON writer and string escaper of the gateway. Envelopes
 * (envelope.c), event lines (log.c) and access lines (accesslog.c) are all
 * written with it, so they escape alike: no spaces; in strings '"' and '\\'
 * and the controls \b \f \n \r \t get their short escapes, every other
 * control byte \u00xx with lower-case hex (RFC 8259's minimal set); '/',
 * DEL and valid UTF-8 are copied as they are, and each byte that starts no
 * valid UTF-8 sequence (overlong forms, surrogates, truncated sequences
 * included) becomes U+FFFD, so the text is always valid UTF-8. It replaced
 * yajl_gen, whose string encoder cost about 600 instructions per string (a
 * print callback per run of bytes), and the hand-made escaper of the access
 * line; yajl still parses every JSON body and is the test oracle.
 *
 * Two ways to write. The structured calls (map/array open and close, key,
 * value) add the separators; a sequence yajl would refuse is the caller's
 * bug, not checked here beyond the nesting depth. The jsonw_put_* calls
 * append without separators or checks, for a line whose keys are fixed text
 * (the access line writes ",\"status\":" as one piece). The buffer grows on
 * the heap (jsonw_init), or is the caller's and never grows (jsonw_init_fixed:
 * no allocation at all, for the per-request access line). Any failure
 * (depth, size, memory) sticks: every later call returns -1 and jsonw_take
 * gives nothing.
 */
#ifndef ENVELOPD_JSONW_H
#define ENVELOPD_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define JSONW_MAX_DEPTH 16
#define JSONW_MAX_SIZE (1u << 20)   /* a heap text never comes near this */

struct jsonw {
    char *buf;                      /* NULL until the first byte (heap) */
    size_t len, cap;                /* LEN: bytes written so far */
    bool failed;                    /* sticky; nothing valid to use */
    bool fixed;                     /* BUF is the caller's: never grown or freed */
    unsigned depth;
    uint8_t level[JSONW_MAX_DEPTH + 1];  /* per open map/array: JW_* state */
};

/* A text on the heap, growing to at most JSONW_MAX_SIZE. */
void jsonw_init(struct jsonw *w);
/* A text in BUF (CAP bytes): writing past CAP fails; nothing is allocated. */
void jsonw_init_fixed(struct jsonw *w, char *buf, size_t cap);
/* Frees a heap text; a fixed one is only forgotten. */
void jsonw_free(struct jsonw *w);

int jsonw_map_open(struct jsonw *w);
int jsonw_map_close(struct jsonw *w);
int jsonw_array_open(struct jsonw *w);
int jsonw_array_close(struct jsonw *w);
/* A key of the open map: S as a JSON string (NULL: ""). */
int jsonw_key(struct jsonw *w, const char *s);
/* A string value: S (N bytes) as a JSON string (NULL: ""). */
int jsonw_string(struct jsonw *w, const char *s, size_t n);
int jsonw_integer(struct jsonw *w, long long v);

/* A heap text (caller frees), or -1 if anything failed or it is unfinished. */
int jsonw_take(struct jsonw *w, char **buf, size_t *len);

/* ---- appends without structure ------------------------------------------ */

/* S (N bytes) as a quoted, escaped JSON string. */
void jsonw_put_string(struct jsonw *w, const char *s, size_t n);
void jsonw_put_uint(struct jsonw *w, unsigned long long v);
void jsonw_put_int(struct jsonw *w, long long v);
/* Grows the buffer (or fails) for jsonw_put_raw; not for callers. */
void jsonw_put_raw_slow(struct jsonw *w, const char *s, size_t n);

/* S (N bytes) as it is: JSON text the caller wrote (",\"status\":", "null").
 * Inline: the access line makes about thirty of these per request (N > 0
 * folds away for a literal; it keeps a heap text's NULL buffer from memcpy). */
static inline void jsonw_put_raw(struct jsonw *w, const char *s, size_t n)
{
    if (!w->failed && n > 0 && n <= w->cap - w->len) {
        memcpy(w->buf + w->len, s, n);
        w->len += n;
    } else {
        jsonw_put_raw_slow(w, s, n);
    }
}

#endif
