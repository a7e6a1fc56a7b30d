/*
 * headbuf: an HTTP head built in one bounded, contiguous piece of memory,
 * usually free space reserved at the end of an evbuffer, without printf and
 * committed at once. The heads envelopd writes per request went through
 * evbuffer_add_printf: a quarter of the instructions of a proxied request
 * were vfprintf's, and every small add ran the buffer's callbacks. A head
 * that does not fit the space asked for is not committed at all.
 */
#ifndef ENVELOPD_HEADBUF_H
#define ENVELOPD_HEADBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <event2/buffer.h>

struct headbuf {
    char *p;
    size_t len, cap;
    bool full;                  /* something did not fit: the head is unusable */
    struct evbuffer *buf;       /* where it is committed, or NULL for plain memory */
    struct evbuffer_iovec v;
};

/* Build in MEM[0..CAP). */
void headbuf_mem(struct headbuf *h, char *mem, size_t cap);
/* Build in CAP bytes reserved at the end of BUF: 0, or -1 (out of memory). */
int headbuf_reserve(struct headbuf *h, struct evbuffer *buf, size_t cap)
    __attribute__((warn_unused_result));
/* Commit to the evbuffer what was built: its length, or -1 if it did not fit. */
long headbuf_commit(struct headbuf *h) __attribute__((warn_unused_result));

static inline void hb_add(struct headbuf *h, const void *s, size_t n)
{
    if (n == 0)
        return;  /* S may be NULL then (an absent optional part): memcpy may not see it */
    if (n > h->cap - h->len) {
        h->full = true;
        return;
    }
    memcpy(h->p + h->len, s, n);
    h->len += n;
}

static inline void hb_str(struct headbuf *h, const char *s)
{
    hb_add(h, s, strlen(s));
}

#define HB_LIT(h, lit) hb_add((h), (lit), sizeof(lit) - 1)

/* Decimal digits of V written backwards ending just before END (at most
 * HB_U64_DIGITS of them); returns where they start. */
#define HB_U64_DIGITS 20
char *hb_u64_digits(char *end, uint64_t v);

void hb_u64(struct headbuf *h, uint64_t v);
void hb_i64(struct headbuf *h, int64_t v);
/* "NAME: VALUE\r\n" */
void hb_field(struct headbuf *h, const char *name, size_t name_len, const char *value,
              size_t value_len);

#endif
