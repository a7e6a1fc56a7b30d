/*
 * recognize_int: what the three parts of the recognizer share, private to
 * them: the candidate record a body is searched into (struct rctx), the
 * text cleaner every extracted string passes through, the offer functions
 * that keep the best message and code, the ASCII comparisons the key and
 * tag tables are matched with, and the entry of each half (recognize_json.c,
 * recognize_html.c). Nothing outside gateway/recognize*.c includes it.
 */
#ifndef ENVELOPD_RECOGNIZE_INT_H
#define ENVELOPD_RECOGNIZE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "recognize.h"

struct cand {
    int score;
    char *text;   /* cleaned, malloc'd */
};

struct rctx {
    int status;
    struct recognized *out;
    struct cand msg;
    struct cand code;
    bool oom;
    bool json;   /* candidates come from JSON keys */
    size_t fields_cap;
};

/*
 * Clean S (LEN bytes) into a malloc'd string of at most MAX bytes: invalid
 * UTF-8 becomes U+FFFD, control and invisible characters are dropped,
 * whitespace runs become one space, ends trimmed; too long: cut on a
 * character boundary and ended with "…". NULL (with *oom false) when
 * nothing is left.
 */
char *rec_clean_text(const char *s, size_t len, size_t max, bool *oom);

/* Offer a message candidate: S/LEN raw, WEIGHT by key or element, DEPTH. */
void rec_offer_message(struct rctx *c, const char *s, size_t len, int weight, int depth);
/* Offer a machine code candidate; kept normalized when it is code-like. */
void rec_offer_code(struct rctx *c, const char *s, size_t len, int weight, int depth);
/* A stack trace, debug dump or markup: never a message. */
bool rec_looks_leaky(const char *t);
/* UPPER_SNAKE, lower_snake, dotted.keys; not a lone word like "Unauthorized". */
bool rec_looks_code_like(const char *s, size_t len);

/* BODY (LEN bytes, from its first non-blank byte) as JSON: sets c->out->kind
 * to RECOGNIZE_JSON, or RECOGNIZE_INVALID when it does not parse. */
void rec_json(struct rctx *c, const char *body, size_t len);
/* BODY as HTML, or as an XML error document when XML. */
void rec_html(struct rctx *c, const char *body, size_t len, bool xml);

static inline bool ci_eq_n(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    return alen == blen && strncasecmp(a, b, blen) == 0;
}

/* ASCII case folding without a locale lookup per character (the key
 * comparisons run for every node against every name they know). */
static inline unsigned char fold(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Compare ignoring case, '_', '-' and ' ' (so retry_after == retryAfter). */
static inline bool key_is(const char *key, const char *want)
{
    if (!key)
        return false;
    const char *a = key, *b = want;
    for (;;) {
        while (*a == '_' || *a == '-' || *a == ' ')
            a++;
        while (*b == '_' || *b == '-' || *b == ' ')
            b++;
        if (!*a || !*b)
            return !*a && !*b;
        if (fold((unsigned char)*a) != fold((unsigned char)*b))
            return false;
        a++;
        b++;
    }
}

static inline bool key_in(const char *key, const char *const *list)
{
    for (; *list; list++)
        if (key_is(key, *list))
            return true;
    return false;
}

#endif
