/*
 * fuzz_httpreq: a client byte stream through the request path the proxy
 * takes: httpreq_head_end fed at random split points (the first input byte
 * seeds them), httpreq_parse of the head it found, then httpbody decoding of
 * whatever follows, again in random pieces, ending with EOF. Besides memory
 * errors it checks the invariants callers rely on: the head end does not
 * depend on how the bytes arrived, every pointer in the result lies inside
 * the buffer, a body never decodes past its limit.
 *
 * It is also a differential oracle on where the head ends. The gateway cuts
 * the head at the blank line its own scanner finds (httpreq_head_end), but
 * http_parser decides where the header section ends for itself; if the two
 * disagree, bytes one side took as headers are a second request or a body to
 * the other (a bare CR, "X: y\n\rZ", ended http_parser's head early). So
 * Debian's http_parser, on its own callbacks, is run over the same stream:
 * whenever httpreq_parse accepts a head, http_parser must have ended the
 * header section exactly at the scanner's length and seen as many header
 * fields as the parsed table holds. Any other head must be refused.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "fuzzsplit.h"
#include "httphead.h"
#include "httpreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const char *base, size_t len, const char *p, size_t n)
{
    /* a pointer into the request must lie within it (static strings aside) */
    if (p >= base && p <= base + len && (size_t)(base + len - p) < n)
        abort();
}

/* The oracle's view of the head: nothing of httpreq or httphead is used. */
struct oracle {
    size_t fields;
    bool in_name;        /* the last callback was a header name */
    bool done;           /* on_headers_complete fired */
};

static int oracle_field(http_parser *p, const char *at, size_t len)
{
    struct oracle *o = p->data;
    /* A name may come in several callbacks; a new one starts after a value. */
    if (!o->in_name)
        o->fields++;
    o->in_name = true;
    return 0;
}

static int oracle_value(http_parser *p, const char *at, size_t len)
{
    struct oracle *o = p->data;
    o->in_name = false;
    return 0;
}

static int oracle_headers_complete(http_parser *p)
{
    struct oracle *o = p->data;
    o->done = true;
    /* Stop on the byte that ended the head, so the return value locates it. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings oracle_settings = {
    .on_header_field = oracle_field,
    .on_header_value = oracle_value,
    .on_headers_complete = oracle_headers_complete,
};

/*
 * Where does http_parser end the head of the first request in BUF[0..LEN)?
 * True with the head's length (the byte that completed it included) and its
 * number of header fields; false when it found no complete head.
 */
static bool oracle_head(const char *buf, size_t len, size_t *end, size_t *fields)
{
    http_parser p;
    struct oracle o = {0};
    http_parser_init(&p, HTTP_REQUEST);
    p.data = &o;
    size_t n = http_parser_execute(&p, &oracle_settings, buf, len);
    if (!o.done || HTTP_PARSER_ERRNO(&p) != HPE_PAUSED || n >= len)
        return false;
    *end = n + 1;
    *fields = o.fields;
    return true;
}

static int on_data(void *arg, const char *at, size_t len)
{
    uint64_t *sum = arg;
    volatile char sink = 0;
    for (size_t i = 0; i < len; i++)
        sink ^= at[i];  /* touch every byte: ASan sees a bad span */
    (void)sink;
    *sum += len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t seed = (uint32_t)data[0] * 0x01000193u + 1;
    size_t max_header = (data[0] & 0x80) ? 16 * 1024 : 1024;
    uint64_t max_body = (data[0] & 0x40) ? 0 : 256;
    /* Copy so that ASan catches any read past the end of the stream. */
    size_t len = size - 1;
    char *buf = malloc(len);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, len);

    /* One shot over everything, then the same bytes arriving in pieces. */
    size_t pos1 = 0;
    unsigned st1 = 0;
    long once = httpreq_head_end(buf, len, max_header, &pos1, &st1);
    size_t pos = 0, avail = 0;
    unsigned state = 0;
    long end = 0;
    while (avail < len) {
        avail += fuzz_piece(&seed, len - avail);
        end = httpreq_head_end(buf, avail, max_header, &pos, &state);
        if (end != 0)
            break;
    }
    if (end > 0 && once > 0 && end != once)
        abort();  /* the first blank line is where it is, however it arrived */
    if (end > 0 && ((size_t)end > len || (size_t)end > max_header))
        abort();
    if (end <= 0) {
        free(buf);
        return 0;
    }

    /* The head alone, in its own allocation, as the connection hands it over. */
    size_t hlen = (size_t)end;
    char *head = malloc(hlen);
    if (!head) {
        free(buf);
        return 0;
    }
    memcpy(head, buf, hlen);
    struct httpreq r;
    const char *why = NULL;
    int status = httpreq_parse(&r, head, hlen, &why);
    size_t hp_end = 0, hp_fields = 0;
    bool hp = oracle_head(buf, len, &hp_end, &hp_fields);
    if (status == 0 && (!hp || hp_end != hlen || hp_fields != r.head.n)) {
        /* Accepted, yet http_parser reads the head another way: smuggling. */
        fprintf(stderr, "head judged apart: scanner %zu bytes, %zu fields; "
                "http_parser %s %zu bytes, %zu fields\n", hlen, r.head.n,
                hp ? "ended at" : "found no end,", hp_end, hp_fields);
        abort();
    }
    if (status != 0) {
        if (!why || (status != 400 && status != 414 && status != 417 && status != 431 &&
                     status != 501 && status != 505))
            abort();
        free(head);
        free(buf);
        return 0;
    }
    if (!r.target || r.target_len == 0 || !r.path || r.path_len == 0 ||
        r.path_len > r.target_len)
        abort();
    inside(head, hlen, r.target, r.target_len);
    inside(head, hlen, r.path, r.path_len);
    if (r.major != 1 || r.minor > 1 || r.head.n > HTTPHEAD_MAX_HEADERS)
        abort();
    /* Routing sees a resolved path: no "." or ".." segment is left in it. */
    if (r.path[0] == '/') {
        for (size_t i = 0; i < r.path_len;) {
            size_t e = i + 1;
            while (e < r.path_len && r.path[e] != '/')
                e++;
            size_t n = e - i - 1;
            const char *seg = r.path + i + 1;
            if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
                abort();
            i = e;
        }
    } else if (r.path_len != 1 || r.path[0] != '*') {
        abort();
    }
    if (r.chunked && r.has_length)
        abort();  /* the smuggling pattern must never pass */
    for (size_t i = 0; i < r.head.n; i++) {
        const struct httphead_field *f = &r.head.f[i];
        inside(head, hlen, f->name, f->name_len);
        inside(head, hlen, f->value, f->value_len);
        if (f->name_len == 0)
            abort();
        for (uint32_t k = 0; k < f->name_len; k++)
            if (!httphead_is_tchar((unsigned char)f->name[k]))
                abort();
    }

    if (r.has_body) {
        uint64_t sum = 0;
        struct httpbody b;
        httpbody_init(&b, r.chunked ? HTTPBODY_CHUNKED : HTTPBODY_LENGTH, r.content_length,
                      max_body, on_data, &sum);
        size_t off = hlen;
        while (!b.done) {
            size_t n = fuzz_piece(&seed, len - off);
            size_t used = httpbody_feed(&b, n ? buf + off : NULL, n);
            if (used == (size_t)-1)
                break;
            if (used > n)
                abort();
            if (n == 0)
                break;  /* EOF: an error or the end, either way done */
            off += used;
            if (used < n && !b.done)
                abort();  /* bytes left over only once the message ended */
        }
        if ((!b.too_large && sum != b.total) || (max_body && sum > max_body))
            abort();
        if (b.done && r.has_length && !r.chunked && sum != r.content_length)
            abort();
    }
    free(head);
    free(buf);
    return 0;
}
