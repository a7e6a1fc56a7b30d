/*
 * normalize: one upstream error response in, the client's envelope body out.
 * Decodes gzip/deflate under a cap (a bomb stops at max_error_body), asks
 * recognize for code, message and field errors, applies the 5xx policy
 * (generic message, no field errors unless expose_upstream_5xx) and the 429
 * retry facts, and renders with envelope. Never fails on bad input.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* strptime, timegm */
#endif
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <zlib.h>

#include "envelope.h"
#include "normalize.h"
#include "recognize.h"

#define DEFAULT_MAX_ERROR_BODY 65536
#define MAX_ERROR_BODY_LIMIT (64u << 20)   /* whatever the conf says */

/* The message a 5xx carries when upstream text must not be shown. */
static const char *generic_5xx_message(int status)
{
    switch (status) {
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "An unexpected error occurred";
    }
}

/*
 * Inflate IN into a malloc'd buffer of at most CAP bytes. RAW: raw deflate,
 * else gzip or zlib by header. Returns 0, or -1 on corrupt data, output
 * over CAP (a bomb) or allocation failure (*oom set).
 */
static int inflate_capped(const unsigned char *in, size_t len, bool raw, size_t cap,
                          unsigned char **out, size_t *outlen, bool *oom)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, raw ? -15 : 15 + 32) != Z_OK) {
        *oom = true;
        return -1;
    }
    size_t size = cap < 16384 ? cap + 1 : 16384;
    unsigned char *buf = malloc(size);
    if (!buf) {
        inflateEnd(&zs);
        *oom = true;
        return -1;
    }
    size_t have = 0;
    const unsigned char *p = in;
    size_t left = len;
    int zr = Z_OK;
    for (;;) {
        if (zs.avail_in == 0 && left > 0) {
            uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
            zs.next_in = (Bytef *)(uintptr_t)p;
            zs.avail_in = chunk;
            p += chunk;
            left -= chunk;
        }
        if (have == size) {
            if (size > cap)
                break;  /* already holds cap + 1 bytes: over the cap */
            size_t nsize = size * 2 > cap + 1 ? cap + 1 : size * 2;
            unsigned char *nb = realloc(buf, nsize);
            if (!nb) {
                *oom = true;
                break;
            }
            buf = nb;
            size = nsize;
        }
        size_t room = size - have;
        zs.next_out = buf + have;
        zs.avail_out = room > (1u << 30) ? (1u << 30) : (uInt)room;
        uInt before = zs.avail_out;
        zr = inflate(&zs, Z_NO_FLUSH);
        have += before - zs.avail_out;
        if (zr == Z_STREAM_END)
            break;
        if (zr != Z_OK && zr != Z_BUF_ERROR)
            break;
        if (zr == Z_BUF_ERROR && zs.avail_in == 0 && left == 0)
            break;  /* truncated stream: no more input */
    }
    inflateEnd(&zs);
    if (*oom || zr != Z_STREAM_END || have > cap) {
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = have;
    return 0;
}

/* Decode per Content-Encoding; *dec NULL means use the body as is. -1: cannot. */
static int decode_body(const struct normalize_input *in, size_t cap, unsigned char **dec,
                       size_t *declen, bool *oom)
{
    *dec = NULL;
    *declen = 0;
    const char *ce = in->content_encoding;
    if (!ce)
        return 0;
    while (*ce == ' ' || *ce == '\t')
        ce++;
    size_t n = strlen(ce);
    while (n > 0 && (ce[n - 1] == ' ' || ce[n - 1] == '\t'))
        n--;
    if (n == 0 || (n == 8 && strncasecmp(ce, "identity", 8) == 0))
        return 0;
    bool gzip = (n == 4 && strncasecmp(ce, "gzip", 4) == 0) ||
                (n == 6 && strncasecmp(ce, "x-gzip", 6) == 0);
    bool deflate = n == 7 && strncasecmp(ce, "deflate", 7) == 0;
    if (!gzip && !deflate)
        return -1;   /* br, zstd, lists of codings: not read */
    const unsigned char *b = (const unsigned char *)in->body;
    if (inflate_capped(b, in->len, false, cap, dec, declen, oom) == 0)
        return 0;
    if (*oom || !deflate)
        return -1;
    /* "deflate" sent as raw deflate, as some servers do */
    return inflate_capped(b, in->len, true, cap, dec, declen, oom);
}

/* Retry-After: delta-seconds or an HTTP-date; -1 if neither. */
static long parse_retry_after(const char *v)
{
    if (!v)
        return -1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (isdigit((unsigned char)*v)) {
        char *end;
        unsigned long long n = strtoull(v, &end, 10);
        while (*end == ' ' || *end == '\t')
            end++;
        if (*end)
            return -1;
        return n > 1000000000ULL ? 1000000000L : (long)n;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end)
        return -1;
    time_t when = timegm(&tm);
    time_t now = time(NULL);
    if (when == (time_t)-1 || now == (time_t)-1)
        return -1;
    double d = difftime(when, now);
    if (d <= 0)
        return 0;
    return d > 1e9 ? 1000000000L : (long)d;
}

int normalize_error(const struct normalize_opts *opts, const struct normalize_input *in,
                    char **body, size_t *len)
{
    return normalize_error_code(opts, in, body, len, NULL, 0);
}

int normalize_error_code(const struct normalize_opts *opts, const struct normalize_input *in,
                         char **body, size_t *len, char *code, size_t code_size)
{
    if (code && code_size > 0)
        code[0] = '\0';
    if (!opts || !in || !body || !len)
        return -1;
    size_t cap = opts->max_error_body ? opts->max_error_body : DEFAULT_MAX_ERROR_BODY;
    if (cap > MAX_ERROR_BODY_LIMIT)
        cap = MAX_ERROR_BODY_LIMIT;
    bool is_5xx = in->status >= 500 && in->status <= 599;
    bool show_text = !is_5xx || opts->expose_upstream_5xx;

    struct recognized r;
    memset(&r, 0, sizeof r);
    r.retry_after_s = r.limit = r.window_s = -1;
    bool have_r = false;
    bool oom = false;

    if (!in->truncated && in->body && in->len > 0 && in->len <= cap) {
        unsigned char *dec = NULL;
        size_t declen = 0;
        if (decode_body(in, cap, &dec, &declen, &oom) == 0) {
            const char *b = dec ? (const char *)dec : in->body;
            size_t bl = dec ? declen : in->len;
            if (recognize_error(in->status, in->content_type, b, bl, &r) != 0)
                oom = true;
            have_r = true;
        }
        free(dec);
    }
    if (oom) {
        recognized_free(&r);
        return -1;
    }

    struct envelope e = {
        .status = in->status,
        .code = have_r ? r.code : NULL,
        .request_id = in->request_id,
    };
    struct envelope_field *fields = NULL;
    if (show_text && have_r) {
        e.message = r.message;
        if (r.n_fields > 0) {
            fields = calloc(r.n_fields, sizeof *fields);
            if (!fields) {
                recognized_free(&r);
                return -1;
            }
            for (size_t i = 0; i < r.n_fields; i++)
                fields[i] = (struct envelope_field){r.fields[i].field, r.fields[i].message,
                                                    r.fields[i].type};
            e.fields = fields;
            e.n_fields = r.n_fields;
            if (!e.message)
                e.message = "Validation failed";
        }
    }
    if (is_5xx && !opts->expose_upstream_5xx)
        e.message = generic_5xx_message(in->status);

    if (in->limit && in->limit->set) {
        e.limit = *in->limit;
    } else if (in->status == 429) {
        long ra = parse_retry_after(in->retry_after);
        if (ra < 0 && have_r)
            ra = r.retry_after_s;
        if (ra >= 0) {
            e.limit.set = true;
            e.limit.retry_after_s = ra;
            e.limit.limit = have_r && r.limit > 0 ? r.limit : 0;
            e.limit.window_s = have_r && r.window_s > 0 ? r.window_s : 0;
        }
    }

    if (!(e.code && e.code[0]) && opts->code)
        e.code = opts->code;
    if (code && code_size > 0) {
        const char *c = e.code && e.code[0] ? e.code : envelope_code_for_status(e.status);
        size_t n = strnlen(c, code_size - 1);  /* as snprintf "%s" would cut it */
        memcpy(code, c, n);
        code[n] = '\0';
    }
    int rc = envelope_render(&e, opts->profile, body, len);
    free(fields);
    recognized_free(&r);
    return rc;
}
