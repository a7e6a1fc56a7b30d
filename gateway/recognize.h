/*
 * recognize: reads an upstream error body (JSON of any common shape, HTML
 * error page, XML, plain text) and extracts what the envelope may carry:
 * the machine code, the human message, field errors and retry facts. Pure:
 * no I/O, no globals, bounded in time and memory whatever the input.
 */
#ifndef ENVELOPD_RECOGNIZE_H
#define ENVELOPD_RECOGNIZE_H

#include <stdbool.h>
#include <stddef.h>

#define RECOGNIZE_MAX_MESSAGE 512    /* bytes of a message, "…" included */
#define RECOGNIZE_MAX_FIELD 128      /* bytes of a field name */
#define RECOGNIZE_MAX_TYPE 64        /* bytes of a field error type */
#define RECOGNIZE_MAX_CODE 64        /* bytes of a machine code */
#define RECOGNIZE_MAX_FIELDS 50      /* field errors kept */
#define RECOGNIZE_MAX_DEPTH 32       /* JSON nesting; deeper: not parsed */
#define RECOGNIZE_MAX_NODES 20000    /* JSON values; more: not parsed */

/* What the body turned out to be. */
enum recognize_kind {
    RECOGNIZE_EMPTY = 0,   /* no body, or only whitespace */
    RECOGNIZE_JSON,        /* parsed JSON */
    RECOGNIZE_HTML,        /* HTML or XML markup */
    RECOGNIZE_TEXT,        /* anything else, read as text */
    RECOGNIZE_INVALID,     /* JSON that did not parse or broke a cap */
};

struct recognized_field {
    char *field;     /* "title", "address.city"; never NULL */
    char *message;   /* never NULL */
    char *type;      /* "missing", "invalid_type"...; NULL if none given */
};

/* Every string is malloc'd, valid UTF-8, free of control characters. */
struct recognized {
    enum recognize_kind kind;
    char *code;      /* upper snake case ("TICKET_NOT_FOUND"), NULL if none */
    char *message;   /* the most specific human message, NULL if none */
    struct recognized_field *fields;
    size_t n_fields;
    long retry_after_s;  /* -1: not given */
    long limit;          /* -1: not given */
    long window_s;       /* -1: not given */
};

/*
 * Recognize BODY (LEN bytes, need not be NUL-terminated) of an error
 * response with STATUS and CONTENT_TYPE (may be NULL). Fills *OUT, which
 * the caller releases with recognized_free() whatever the result. Returns
 * 0, or -1 on allocation failure (*OUT then holds what was found so far).
 * Bad input is never an error: it gives an empty result.
 */
int recognize_error(int status, const char *content_type, const char *body, size_t len,
                    struct recognized *out) __attribute__((warn_unused_result));

void recognized_free(struct recognized *r);

/*
 * Normalize an upstream machine code to upper snake case into OUT (SIZE
 * bytes): "api-errors.ticketNotFound" -> "TICKET_NOT_FOUND",
 * "missing_field" -> "MISSING_FIELD", "not-found" -> "NOT_FOUND". Returns
 * false (OUT empty) when IN is not code-like: spaces, no letter, too long.
 */
bool recognize_code_normalize(const char *in, size_t len, char *out, size_t size);

#endif
