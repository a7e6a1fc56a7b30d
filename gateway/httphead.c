/*
 * httphead: head-end search, the header table, token rules and hop-by-hop
 * marking shared by the request and response parsers. The head is always
 * parsed from one contiguous buffer, so every name and value arrives in one
 * callback; a second value callback in a row can only be an obs-fold line,
 * which RFC 9112 lets a server reject and which we do reject.
 */
#include "httphead.h"

#include <string.h>
#include <strings.h>

bool httphead_is_tchar(unsigned char c)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr(extra, c) != NULL;
}

/*
 * States: 0 = inside a line, 1 = just saw LF, 2 = saw LF then CR.
 * A head ends at LF (CR)? LF. A CR elsewhere is left to the parser to judge.
 */
size_t httphead_scan(const char *data, size_t len, size_t *pos, unsigned *state)
{
    size_t i = *pos;
    unsigned st = *state;
    for (; i < len; i++) {
        char c = data[i];
        if (c == '\n') {
            if (st == 1 || st == 2) {
                *pos = i + 1;
                *state = 0;
                return i + 1;
            }
            st = 1;
        } else if (c == '\r') {
            st = (st == 1) ? 2 : 0;
        } else {
            st = 0;
        }
    }
    *pos = i;
    *state = st;
    return 0;
}

const char *httphead_framing_error(const char *buf, size_t len)
{
    /* Empty lines before the start line are allowed (RFC 9112 2.2). */
    size_t i = 0;
    while (i < len && (buf[i] == '\r' || buf[i] == '\n')) {
        if (buf[i] == '\r' && (i + 1 >= len || buf[i + 1] != '\n'))
            return "bare CR in the head";
        i++;
    }
    bool start_line = true;
    for (; i < len; i++) {
        char c = buf[i];
        if (c == '\r') {
            if (i + 1 >= len || buf[i + 1] != '\n')
                return "bare CR in the head";
        } else if (c == '\n') {
            if (i + 1 < len && (buf[i + 1] == ' ' || buf[i + 1] == '\t'))
                return start_line ? "whitespace before the first header line"
                                  : "obsolete line folding in the head";
            start_line = false;
        }
    }
    return NULL;
}

void httphead_reset(struct httphead *h)
{
    h->n = 0;
    h->in_value = false;
    h->bad = false;
    h->why = NULL;
}

int httphead_on_field(struct httphead *h, const char *at, size_t len)
{
    if (h->n > 0 && !h->in_value) {
        /* Contiguous head: a continued name is adjacent in memory. */
        h->f[h->n - 1].name_len += (uint32_t)len;
        goto check;
    }
    if (h->n >= HTTPHEAD_MAX_HEADERS) {
        h->bad = true;
        h->why = "too many header lines";
        return 1;
    }
    h->f[h->n].name = at;
    h->f[h->n].name_len = (uint32_t)len;
    h->f[h->n].value = at + len;
    h->f[h->n].value_len = 0;
    h->f[h->n].hop = false;
    h->n++;
    h->in_value = false;
check:
    for (size_t i = 0; i < len; i++) {
        if (!httphead_is_tchar((unsigned char)at[i])) {
            h->bad = true;
            h->why = "invalid character in a header name";
            return 1;
        }
    }
    return 0;
}

int httphead_on_value(struct httphead *h, const char *at, size_t len)
{
    if (h->n == 0)
        return 1;
    struct httphead_field *f = &h->f[h->n - 1];
    if (h->in_value) {
        h->bad = true;
        h->why = "obsolete line folding in a header value";
        return 1;
    }
    h->in_value = true;
    f->value = at;
    f->value_len = (uint32_t)len;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)at[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            h->bad = true;
            h->why = "control character in a header value";
            return 1;
        }
    }
    /* The parser keeps trailing whitespace (OWS) in the value; drop it. */
    while (f->value_len > 0 &&
           (f->value[f->value_len - 1] == ' ' || f->value[f->value_len - 1] == '\t'))
        f->value_len--;
    return 0;
}

bool httphead_name_is(const struct httphead_field *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && strncasecmp(f->name, name, n) == 0;
}

const struct httphead_field *httphead_get(const struct httphead *h, const char *name,
                                          size_t *count)
{
    const struct httphead_field *first = NULL;
    size_t c = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (httphead_name_is(&h->f[i], name)) {
            if (!first)
                first = &h->f[i];
            c++;
        }
    }
    if (count)
        *count = c;
    return first;
}

/* Is the comma list VALUE[0..len) holding the element TOK[0..tl), case-insensitive? */
static bool list_has(const char *value, size_t len, const char *tok, size_t tl)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        size_t start = i;
        while (i < len && value[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if (tl > 0 && end - start == tl && strncasecmp(value + start, tok, tl) == 0)
            return true;
    }
    return false;
}

bool httphead_list_has(const char *value, size_t len, const char *token)
{
    return list_has(value, len, token, strlen(token));
}

void httphead_mark_hop(struct httphead *h)
{
    static const char *const hop[] = {
        "Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
    };
    for (size_t i = 0; i < h->n; i++) {
        struct httphead_field *f = &h->f[i];
        if (f->name_len >= 6 && strncasecmp(f->name, "Proxy-", 6) == 0) {
            f->hop = true;
            continue;
        }
        for (size_t k = 0; k < sizeof hop / sizeof hop[0]; k++) {
            if (httphead_name_is(f, hop[k])) {
                f->hop = true;
                break;
            }
        }
    }
    /* Headers a sender named in Connection are hop-by-hop too (RFC 9110 7.6.1). */
    for (size_t i = 0; i < h->n; i++) {
        if (!httphead_name_is(&h->f[i], "Connection"))
            continue;
        for (size_t k = 0; k < h->n; k++) {
            if (!h->f[k].hop && list_has(h->f[i].value, h->f[i].value_len, h->f[k].name,
                                         h->f[k].name_len))
                h->f[k].hop = true;
        }
    }
}

/* Chunked decoder states. */
enum {
    CH_SIZE,        /* hex digits of a chunk size */
    CH_EXT,         /* ";ext" up to CR */
    CH_SIZE_LF,     /* LF after the size line's CR */
    CH_DATA,
    CH_DATA_CR,     /* CR after chunk data */
    CH_DATA_LF,
    CH_TRAILER,     /* start of a trailer line (or the final CRLF) */
    CH_TRAILER_LINE,
    CH_TRAILER_LF,  /* LF ending a trailer line */
    CH_END_LF,      /* LF of the final empty line */
};

#define CHUNK_LINE_MAX 4096
#define TRAILER_MAX 8192

void httpbody_init(struct httpbody *b, enum httpbody_mode mode, uint64_t length, uint64_t max,
                   int (*on_data)(void *, const char *, size_t), void *arg)
{
    memset(b, 0, sizeof *b);
    b->mode = mode;
    b->max = max;
    b->on_data = on_data;
    b->arg = arg;
    b->state = CH_SIZE;
    if (mode == HTTPBODY_LENGTH) {
        b->left = length;
        if (max && length > max)
            b->too_large = true;
        if (length == 0)
            b->done = true;
    }
}

static size_t body_fail(struct httpbody *b)
{
    b->error = true;
    return (size_t)-1;
}

int httphead_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Framing bytes that must be exactly WANT: move to NEXT, or fail. */
static bool expect_byte(struct httpbody *b, unsigned char ch, unsigned char want, unsigned next)
{
    if (ch != want)
        return false;
    b->state = next;
    return true;
}

static size_t feed_chunked(struct httpbody *b, const char *data, size_t len)
{
    size_t i = 0;
    while (i < len && !b->done) {
        unsigned char ch = (unsigned char)data[i];
        switch (b->state) {
        case CH_SIZE: {
            int v = httphead_hexval(ch);
            if (v >= 0) {
                /* 15 hex digits keep the size far below 2^64 and any limit. */
                if (++b->digits > 15)
                    return body_fail(b);
                b->left = (b->left << 4) | (uint64_t)v;
                i++;
                break;
            }
            if (b->digits == 0)
                return body_fail(b);
            if (b->max && b->total + b->left > b->max) {
                b->too_large = true;
                return body_fail(b);
            }
            if (ch == ';' || ch == ' ' || ch == '\t') {
                b->state = CH_EXT;
                b->line = 0;
            } else if (ch == '\r') {
                b->state = CH_SIZE_LF;
            } else {
                return body_fail(b);
            }
            i++;
            break;
        }
        case CH_EXT:
            if (ch == '\r')
                b->state = CH_SIZE_LF;
            else if (ch == '\n' || (ch < 0x20 && ch != '\t') || ch == 0x7f ||
                     ++b->line > CHUNK_LINE_MAX)
                return body_fail(b);
            i++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                return body_fail(b);
            i++;
            b->digits = 0;
            b->state = b->left ? CH_DATA : CH_TRAILER;
            break;
        case CH_DATA: {
            size_t n = len - i;
            if (n > b->left)
                n = (size_t)b->left;
            b->left -= n;
            b->total += n;
            if (b->on_data && b->on_data(b->arg, data + i, n) != 0)
                return body_fail(b);
            i += n;
            if (b->left == 0)
                b->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (!expect_byte(b, ch, '\r', CH_DATA_LF))
                return body_fail(b);
            i++;
            break;
        case CH_DATA_LF:
            if (!expect_byte(b, ch, '\n', CH_SIZE))
                return body_fail(b);
            i++;
            break;
        case CH_TRAILER:
            if (ch == '\r') {
                b->state = CH_END_LF;
            } else if (httphead_is_tchar(ch)) {
                b->state = CH_TRAILER_LINE;
            } else {
                return body_fail(b);
            }
            if (++b->trailer > TRAILER_MAX)
                return body_fail(b);
            i++;
            break;
        case CH_TRAILER_LINE:
            /* Trailers are read and dropped: nothing downstream asked for them. */
            if (ch == '\r')
                b->state = CH_TRAILER_LF;
            else if (ch == '\n' || (ch < 0x20 && ch != '\t') || ch == 0x7f)
                return body_fail(b);
            if (++b->trailer > TRAILER_MAX)
                return body_fail(b);
            i++;
            break;
        case CH_TRAILER_LF:
            if (!expect_byte(b, ch, '\n', CH_TRAILER))
                return body_fail(b);
            i++;
            break;
        case CH_END_LF:
            if (ch != '\n')
                return body_fail(b);
            b->done = true;
            i++;
            break;
        }
    }
    return i;
}

size_t httpbody_feed(struct httpbody *b, const char *data, size_t len)
{
    if (b->error || b->too_large)
        return (size_t)-1;
    if (b->done)
        return 0;
    if (len == 0) {
        if (b->mode == HTTPBODY_EOF) {
            b->done = true;
            return 0;
        }
        return body_fail(b);
    }
    switch (b->mode) {
    case HTTPBODY_LENGTH: {
        size_t n = len < b->left ? len : (size_t)b->left;
        b->left -= n;
        b->total += n;
        if (b->on_data && b->on_data(b->arg, data, n) != 0)
            return body_fail(b);
        if (b->left == 0)
            b->done = true;
        return n;
    }
    case HTTPBODY_EOF:
        b->total += len;
        if (b->max && b->total > b->max) {
            b->too_large = true;
            return (size_t)-1;
        }
        if (b->on_data && b->on_data(b->arg, data, len) != 0)
            return body_fail(b);
        return len;
    case HTTPBODY_CHUNKED:
        return feed_chunked(b, data, len);
    }
    return body_fail(b);
}
