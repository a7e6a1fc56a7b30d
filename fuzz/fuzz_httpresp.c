/*
 * fuzz_httpresp: an upstream byte stream through the response path: the
 * head end found with httphead_scan at random split points (the first input
 * byte seeds them and says whether the request was HEAD), httpresp_parse,
 * then httpbody decoding of the rest in random pieces, ending with EOF. It
 * checks the framing invariants the proxy relies on besides memory safety.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzzsplit.h"
#include "httphead.h"
#include "httpresp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_data(void *arg, const char *at, size_t len)
{
    uint64_t *sum = arg;
    volatile char sink = 0;
    for (size_t i = 0; i < len; i++)
        sink ^= at[i];
    (void)sink;
    *sum += len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t seed = (uint32_t)data[0] * 0x01000193u + 7;
    bool head_request = (data[0] & 1) != 0;
    uint64_t max_body = (data[0] & 2) ? 0 : 512;
    size_t len = size - 1;
    char *buf = malloc(len);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, len);

    size_t limit = len < HTTPRESP_MAX_HEAD ? len : HTTPRESP_MAX_HEAD;
    size_t pos1 = 0;
    unsigned st1 = 0;
    size_t once = httphead_scan(buf, limit, &pos1, &st1);
    size_t pos = 0, avail = 0, end = 0;
    unsigned state = 0;
    while (avail < limit && end == 0) {
        avail += fuzz_piece(&seed, limit - avail);
        end = httphead_scan(buf, avail, &pos, &state);
    }
    if (end != once || end > limit)
        abort();  /* where the head ends cannot depend on how it arrived */
    if (end == 0) {
        free(buf);
        return 0;
    }

    char *head = malloc(end);
    if (!head) {
        free(buf);
        return 0;
    }
    memcpy(head, buf, end);
    struct httpresp r;
    const char *why = NULL;
    if (httpresp_parse(&r, head, end, head_request, &why) != 0) {
        if (!why)
            abort();
        free(head);
        free(buf);
        return 0;
    }
    if (r.status < 100 || r.status > 999 || r.major != 1 || r.head.n > HTTPHEAD_MAX_HEADERS)
        abort();
    if (r.has_length && httphead_get(&r.head, "Transfer-Encoding", NULL))
        abort();  /* conflicting framing must never be relayed */
    if (r.has_body && head_request)
        abort();
    /* 1xx/204/304 never have a body whatever framing they carry (fixed in
     * fef3aad; the regress-* inputs in the corpus found it). */
    if (r.has_body && (r.status == 204 || r.status == 304 || r.status / 100 == 1))
        abort();
    if (r.until_eof && (!r.has_body || r.chunked || r.has_length))
        abort();

    if (r.has_body) {
        uint64_t sum = 0;
        struct httpbody b;
        httpbody_init(&b,
                      r.chunked ? HTTPBODY_CHUNKED : r.until_eof ? HTTPBODY_EOF : HTTPBODY_LENGTH,
                      r.content_length, max_body, on_data, &sum);
        size_t off = end;
        while (!b.done) {
            size_t n = fuzz_piece(&seed, len - off);
            size_t used = httpbody_feed(&b, n ? buf + off : NULL, n);
            if (used == (size_t)-1)
                break;
            if (used > n)
                abort();
            if (n == 0)
                break;
            off += used;
            if (used < n && !b.done)
                abort();
        }
        if ((!b.too_large && sum != b.total) || (max_body && sum > max_body))
            abort();
        if (b.done && r.has_length && !r.chunked && sum != r.content_length)
            abort();
        if (r.until_eof && !b.too_large && b.done && sum != len - end)
            abort();  /* until close: every byte is body */
    }
    free(head);
    free(buf);
    return 0;
}
