/*
 * envelope: the JSON error body a client receives, rendered (with jsonw) in
 * one of the six documented profiles. Pure: takes a filled struct envelope,
 * returns bytes. Also owns the status tables every other module uses: the
 * reason phrase and the default machine code of each status.
 */
#ifndef ENVELOPD_ENVELOPE_H
#define ENVELOPD_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>

enum envelope_profile {
    ENVELOPE_NESTED = 0,  /* seed 004, the default */
    ENVELOPE_FLAT,        /* seed 001 */
    ENVELOPE_SIMPLE,      /* seed 000 */
    ENVELOPE_STATUS,      /* seed 002 */
    ENVELOPE_I18N,        /* seed 003 */
    ENVELOPE_PROBLEM,     /* RFC 9457 */
};

/* One field error of a validation failure. type may be NULL. */
struct envelope_field {
    const char *field;
    const char *message;
    const char *type;
};

/* Rate-limit facts carried by a 429 envelope. */
struct envelope_limit {
    bool set;
    long retry_after_s;
    long limit;
    long window_s;
};

struct envelope {
    int status;
    const char *code;         /* upper snake case; NULL: from the status */
    const char *message;      /* NULL: the status's reason phrase */
    const char *request_id;   /* the correlation ID; never NULL in practice */
    const struct envelope_field *fields;
    size_t n_fields;
    struct envelope_limit limit;
};

/*
 * Render E in PROFILE. On success returns 0 and *body is a malloc'd buffer
 * of *len bytes (not NUL-terminated) the caller frees. Returns -1 on
 * allocation failure.
 */
int envelope_render(const struct envelope *e, enum envelope_profile profile,
                    char **body, size_t *len) __attribute__((warn_unused_result));

/* "application/json; charset=utf-8", or problem+json for the problem profile. */
const char *envelope_content_type(enum envelope_profile profile);

bool envelope_profile_parse(const char *name, enum envelope_profile *out)
    __attribute__((warn_unused_result));
const char *envelope_profile_name(enum envelope_profile profile);

/* The default machine code of a status ("NOT_FOUND"); never NULL. */
const char *envelope_code_for_status(int status);
/* The reason phrase of a status ("Not Found"); never NULL. */
const char *envelope_reason(int status);

#endif
