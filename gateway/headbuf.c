/*
 * headbuf: bounded head building; see headbuf.h.
 */
#include "headbuf.h"

void headbuf_mem(struct headbuf *h, char *mem, size_t cap)
{
    memset(h, 0, sizeof *h);
    h->p = mem;
    h->cap = cap;
}

int headbuf_reserve(struct headbuf *h, struct evbuffer *buf, size_t cap)
{
    memset(h, 0, sizeof *h);
    if (evbuffer_reserve_space(buf, (ev_ssize_t)cap, &h->v, 1) < 1 || h->v.iov_len < cap)
        return -1;
    h->buf = buf;
    h->p = h->v.iov_base;
    h->cap = cap;
    return 0;
}

long headbuf_commit(struct headbuf *h)
{
    if (!h->buf)
        return h->full ? -1 : (long)h->len;
    h->v.iov_len = h->full ? 0 : h->len;
    if (evbuffer_commit_space(h->buf, &h->v, 1) != 0 || h->full)
        return -1;
    return (long)h->len;
}

char *hb_u64_digits(char *end, uint64_t v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

void hb_u64(struct headbuf *h, uint64_t v)
{
    char tmp[HB_U64_DIGITS];
    char *s = hb_u64_digits(tmp + sizeof tmp, v);
    hb_add(h, s, (size_t)(tmp + sizeof tmp - s));
}

void hb_i64(struct headbuf *h, int64_t v)
{
    if (v < 0) {
        HB_LIT(h, "-");
        hb_u64(h, (uint64_t)0 - (uint64_t)v);
        return;
    }
    hb_u64(h, (uint64_t)v);
}

void hb_field(struct headbuf *h, const char *name, size_t name_len, const char *value,
              size_t value_len)
{
    hb_add(h, name, name_len);
    HB_LIT(h, ": ");
    hb_add(h, value, value_len);
    HB_LIT(h, "\r\n");
}
