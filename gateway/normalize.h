/*
 * normalize: turns one upstream error response (status, a few headers, the
 * body as captured) into the envelope body the client receives. Pure glue:
 * decompresses (gzip/deflate, capped), asks recognize for code, message and
 * field errors, applies the 5xx policy, and renders with envelope.
 */
#ifndef ENVELOPD_NORMALIZE_H
#define ENVELOPD_NORMALIZE_H

#include <stdbool.h>
#include <stddef.h>

#include "envelope.h"

struct normalize_opts {
    enum envelope_profile profile;
    bool expose_upstream_5xx;
    size_t max_error_body;     /* cap on the body, compressed and decoded */
    const char *code;          /* when the upstream names none: the route's (code_map); NULL: the status's */
};

struct normalize_input {
    int status;
    const char *content_type;      /* may be NULL */
    const char *content_encoding;  /* may be NULL */
    const char *retry_after;       /* the upstream's Retry-After, may be NULL */
    const char *body;              /* may be NULL when len == 0 */
    size_t len;
    bool truncated;                /* the body was larger than max_error_body */
    const char *request_id;
    const struct envelope_limit *limit;  /* the gateway's own limit facts, or NULL */
};

/*
 * Render the envelope for IN. On success returns 0 and *body (malloc'd,
 * *len bytes) belongs to the caller. Never fails on bad input: unparsable,
 * oversized or hostile bodies give the status-derived envelope. Returns -1
 * only on allocation failure.
 */
int normalize_error(const struct normalize_opts *opts, const struct normalize_input *in,
                    char **body, size_t *len) __attribute__((warn_unused_result));

/*
 * normalize_error(), and the machine code the envelope carries (upstream's or
 * the status's, "TASK_NOT_FOUND") copied into CODE (CODE_SIZE bytes, always
 * NUL-terminated; may be NULL) for the access log's error_code.
 */
int normalize_error_code(const struct normalize_opts *opts, const struct normalize_input *in,
                         char **body, size_t *len, char *code, size_t code_size)
    __attribute__((warn_unused_result));

#endif
