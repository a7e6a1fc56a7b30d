/*
 * jsonw: writes JSON text into a growing heap buffer or a fixed caller's
 * buffer, and owns the gateway's one string escaper (put_string); see
 * jsonw.h for the escaping convention and why it exists.
 */
#include "jsonw.h"

#include <stdlib.h>
#include <string.h>

#include "headbuf.h"
#include "utf8.h"

enum {
    JW_TOP,        /* outside any value */
    JW_MAP_FIRST,  /* a map with no member yet: a key comes next */
    JW_MAP_NEXT,   /* a map after a member: ',' then a key */
    JW_MAP_VALUE,  /* a map after a key: its value comes next */
    JW_ARR_FIRST,
    JW_ARR_NEXT,
};

void jsonw_init(struct jsonw *w)
{
    memset(w, 0, sizeof *w);
    w->level[0] = JW_TOP;
}

void jsonw_init_fixed(struct jsonw *w, char *buf, size_t cap)
{
    jsonw_init(w);
    w->buf = buf;
    w->cap = cap;
    w->fixed = true;
}

void jsonw_free(struct jsonw *w)
{
    if (!w->fixed)
        free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

/* Room for N more bytes; false (and failed) past a fixed buffer, past
 * JSONW_MAX_SIZE, or out of memory. */
static bool room(struct jsonw *w, size_t n)
{
    if (w->failed)
        return false;
    if (n <= w->cap - w->len)
        return true;
    if (w->fixed || n > JSONW_MAX_SIZE - w->len) {
        w->failed = true;
        return false;
    }
    size_t cap = w->cap ? w->cap : 256;
    while (cap - w->len < n)
        cap *= 2;
    if (cap > JSONW_MAX_SIZE)
        cap = JSONW_MAX_SIZE;
    char *p = realloc(w->buf, cap);
    if (!p) {
        w->failed = true;
        return false;
    }
    w->buf = p;
    w->cap = cap;
    return true;
}

static void put(struct jsonw *w, const char *s, size_t n)
{
    if (room(w, n)) {
        memcpy(w->buf + w->len, s, n);
        w->len += n;
    }
}

static void put_c(struct jsonw *w, char c)
{
    if (room(w, 1))
        w->buf[w->len++] = c;
}

void jsonw_put_raw_slow(struct jsonw *w, const char *s, size_t n)
{
    if (n > 0)   /* a heap text may have no buffer yet: no memcpy to NULL */
        put(w, s, n);
}

/* Before a value (not a key): the separator its place needs. */
static int before_value(struct jsonw *w)
{
    uint8_t *st = &w->level[w->depth];
    switch (*st) {
    case JW_MAP_VALUE:
        *st = JW_MAP_NEXT;
        break;
    case JW_ARR_FIRST:
        *st = JW_ARR_NEXT;
        break;
    case JW_ARR_NEXT:
        put_c(w, ',');
        break;
    case JW_TOP:
        break;
    default:  /* a value where a key belongs */
        w->failed = true;
    }
    return w->failed ? -1 : 0;
}

/* S as a JSON string: the escapes of jsonw.h, invalid UTF-8 as U+FFFD. */
static void put_string(struct jsonw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* Bytes copied as they are: printable ASCII but the quote and backslash. */
    static const bool plain[256] = {
        [0x20 ... 0x21] = true, [0x23 ... 0x5b] = true, [0x5d ... 0x7f] = true,
    };
    const unsigned char *u = (const unsigned char *)s;
    put_c(w, '"');
    size_t run = 0;  /* start of the bytes not yet copied */
    for (size_t i = 0; i < n;) {
        while (i < n && plain[u[i]])
            i++;
        if (i == n)
            break;
        unsigned char c = u[i];
        size_t seq = c >= 0x80 ? utf8_seq(u + i, n - i) : 0;
        if (seq) {
            i += seq;
            continue;
        }
        put(w, s + run, i - run);
        switch (c) {
        case '"': put(w, "\\\"", 2); break;
        case '\\': put(w, "\\\\", 2); break;
        case '\b': put(w, "\\b", 2); break;
        case '\f': put(w, "\\f", 2); break;
        case '\n': put(w, "\\n", 2); break;
        case '\r': put(w, "\\r", 2); break;
        case '\t': put(w, "\\t", 2); break;
        default:
            if (c < 0x20) {
                char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                put(w, esc, sizeof esc);
            } else {
                put(w, "\xef\xbf\xbd", 3);  /* a byte that starts no valid sequence */
            }
        }
        i++;
        run = i;
    }
    put(w, s + run, n - run);
    put_c(w, '"');
}

void jsonw_put_string(struct jsonw *w, const char *s, size_t n)
{
    put_string(w, s ? s : "", s ? n : 0);
}

void jsonw_put_uint(struct jsonw *w, unsigned long long v)
{
    char d[HB_U64_DIGITS];
    char *e = d + sizeof d;
    char *p = hb_u64_digits(e, v);
    put(w, p, (size_t)(e - p));
}

static void put_int(struct jsonw *w, long long v)
{
    char d[HB_U64_DIGITS + 1];
    char *e = d + sizeof d;
    char *p = hb_u64_digits(e, v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v);
    if (v < 0)
        *--p = '-';
    put(w, p, (size_t)(e - p));
}

void jsonw_put_int(struct jsonw *w, long long v)
{
    put_int(w, v);
}

static int open_level(struct jsonw *w, char c, uint8_t st)
{
    if (before_value(w) < 0)
        return -1;
    if (w->depth >= JSONW_MAX_DEPTH) {
        w->failed = true;
        return -1;
    }
    put_c(w, c);
    w->level[++w->depth] = st;
    return w->failed ? -1 : 0;
}

static int close_level(struct jsonw *w, char c, uint8_t a, uint8_t b)
{
    uint8_t st = w->level[w->depth];
    if (w->failed || w->depth == 0 || (st != a && st != b)) {
        w->failed = true;
        return -1;
    }
    w->depth--;
    put_c(w, c);
    return w->failed ? -1 : 0;
}

int jsonw_map_open(struct jsonw *w)
{
    return open_level(w, '{', JW_MAP_FIRST);
}

int jsonw_map_close(struct jsonw *w)
{
    return close_level(w, '}', JW_MAP_FIRST, JW_MAP_NEXT);
}

int jsonw_array_open(struct jsonw *w)
{
    return open_level(w, '[', JW_ARR_FIRST);
}

int jsonw_array_close(struct jsonw *w)
{
    return close_level(w, ']', JW_ARR_FIRST, JW_ARR_NEXT);
}

int jsonw_key(struct jsonw *w, const char *s)
{
    uint8_t *st = &w->level[w->depth];
    if (w->failed || (*st != JW_MAP_FIRST && *st != JW_MAP_NEXT)) {
        w->failed = true;
        return -1;
    }
    if (*st == JW_MAP_NEXT)
        put_c(w, ',');
    *st = JW_MAP_VALUE;
    if (!s)
        s = "";
    put_string(w, s, strlen(s));
    put_c(w, ':');
    return w->failed ? -1 : 0;
}

int jsonw_string(struct jsonw *w, const char *s, size_t n)
{
    if (before_value(w) < 0)
        return -1;
    put_string(w, s ? s : "", s ? n : 0);
    return w->failed ? -1 : 0;
}

int jsonw_integer(struct jsonw *w, long long v)
{
    if (before_value(w) < 0)
        return -1;
    put_int(w, v);
    return w->failed ? -1 : 0;
}

int jsonw_take(struct jsonw *w, char **buf, size_t *len)
{
    if (w->failed || w->depth != 0 || !w->buf || w->fixed) {
        jsonw_free(w);
        return -1;
    }
    *buf = w->buf;
    *len = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    return 0;
}
