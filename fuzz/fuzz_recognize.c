/*
 * fuzz_recognize: libFuzzer target for the upstream-error path. The first
 * two bytes pick a status, a Content-Type and a Content-Encoding; the rest is
 * the body, fed to recognize_error() and to normalize_error() in every
 * profile. Any crash, leak, sanitizer report or invalid output JSON aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "envelope.h"
#include "normalize.h"
#include "recognize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int statuses[] = {400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 418, 599};
static const char *const ctypes[] = {
    NULL, "application/json", "application/problem+json", "text/html; charset=utf-8",
    "text/plain", "application/xml", "application/vnd.api+json", "application/octet-stream",
};
static const char *const encodings[] = {NULL, "gzip", "deflate", "identity"};

/* The envelope must always be one valid JSON object. */
static void check_json(const char *body, size_t len)
{
    yajl_handle h = yajl_alloc(NULL, NULL, NULL);
    if (!h)
        return;
    yajl_status st = yajl_parse(h, (const unsigned char *)body, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    yajl_free(h);
    if (st != yajl_status_ok || len == 0 || body[0] != '{') {
        fprintf(stderr, "invalid envelope: %.*s\n", (int)(len > 400 ? 400 : len), body);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int status = statuses[data[0] % (sizeof statuses / sizeof statuses[0])];
    const char *ct = ctypes[data[1] & 7];
    const char *ce = encodings[(data[1] >> 3) & 3];
    bool truncated = (data[1] >> 5) == 7;
    const char *body = (const char *)data + 2;
    size_t len = size - 2;

    struct recognized r;
    if (recognize_error(status, ct, body, len, &r) == 0) {
        if (r.message && strlen(r.message) > RECOGNIZE_MAX_MESSAGE)
            abort();
        if (r.n_fields > RECOGNIZE_MAX_FIELDS)
            abort();
    }
    recognized_free(&r);

    for (int p = ENVELOPE_NESTED; p <= ENVELOPE_PROBLEM; p++) {
        struct normalize_opts opts = {
            .profile = (enum envelope_profile)p,
            .expose_upstream_5xx = (data[0] & 0x80) != 0,
            .max_error_body = 65536,
        };
        struct envelope_limit gw = {.set = true, .retry_after_s = 30, .limit = 100,
                                    .window_s = 60};
        struct normalize_input in = {
            .status = status, .content_type = ct, .content_encoding = ce,
            .retry_after = (data[0] & 0x40) ? "120" : NULL,
            .body = body, .len = len, .truncated = truncated, .request_id = "fuzz-1",
            .limit = (data[0] & 0x20) ? &gw : NULL,
        };
        char *out = NULL;
        size_t outlen = 0;
        if (normalize_error(&opts, &in, &out, &outlen) == 0) {
            check_json(out, outlen);
            free(out);
        }
    }
    return 0;
}
