/*
 * recognize: the entry of the upstream-error recognizer and what its JSON
 * and HTML halves share. recognize_error() looks at the Content-Type and
 * the first byte and hands the body to recognize_json.c (JSON of any common
 * shape), recognize_html.c (HTML error pages, XML error documents) or reads
 * it here as text (its first line). This file owns the candidates: every
 * message or code found is offered here, cleaned (valid UTF-8, no control
 * characters, whitespace collapsed, bounded), refused when it is a stack
 * trace, markup, junk or says nothing the status does not, and kept when it
 * scores higher than the one before. It also owns code normalization
 * (recognize_code_normalize) and releasing a result.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "envelope.h"
#include "headbuf.h"
#include "recognize.h"
#include "recognize_int.h"
#include "utf8.h"

/* ---- text hygiene ------------------------------------------------------------ */

static bool cp_is_space(uint32_t cp)
{
    return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\v' || cp == '\f' ||
           cp == 0xA0 || cp == 0x2028 || cp == 0x2029 || cp == 0x3000 ||
           (cp >= 0x2000 && cp <= 0x200A);
}

static bool cp_is_dropped(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) ||
           (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF;
}

/* See recognize_int.h. */
char *rec_clean_text(const char *s, size_t len, size_t max, bool *oom)
{
    if (max < 8)
        max = 8;
    char *out = malloc(max + 1);
    if (!out) {
        *oom = true;
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0;
    size_t last_fit = 0;  /* length of output that leaves room for "…" */
    bool pending_space = false, cut = false;
    while (i < len) {
        uint32_t cp;
        size_t l = utf8_decode(p + i, len - i, &cp);
        const unsigned char *src = p + i;
        static const unsigned char repl[3] = {0xEF, 0xBF, 0xBD};
        if (l == 0) {
            cp = 0xFFFD;
            src = repl;
            i++;
            l = 3;
        } else {
            i += l;
        }
        if (cp_is_space(cp)) {
            pending_space = o > 0;
            continue;
        }
        if (cp_is_dropped(cp))
            continue;
        size_t need = l + (pending_space ? 1 : 0);
        if (o + need > max) {
            cut = true;
            break;
        }
        if (pending_space)
            out[o++] = ' ';
        pending_space = false;
        memcpy(out + o, src, l);
        o += l;
        if (o + 3 <= max)
            last_fit = o;
    }
    if (cut) {
        o = last_fit;
        while (o > 0 && out[o - 1] == ' ')
            o--;
        memcpy(out + o, "\xe2\x80\xa6", 3);
        o += 3;
    }
    out[o] = '\0';
    if (o == 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* ---- machine codes ------------------------------------------------------------- */

bool recognize_code_normalize(const char *in, size_t len, char *out, size_t size)
{
    if (!out || size == 0)
        return false;
    out[0] = '\0';
    if (!in || len == 0 || len > 128)
        return false;
    /* "api-errors.ticketNotFound": the last dotted segment names the error. */
    size_t start = 0;
    for (size_t i = 0; i < len; i++)
        if (in[i] == '.' && i + 1 < len)
            start = i + 1;
    size_t o = 0;
    bool letter = false;
    for (size_t i = start; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        bool sep;
        if (isalnum(c)) {
            sep = false;
        } else if (c == '_' || c == '-' || c == '.' || c == ':' || c == '/') {
            sep = true;
        } else {
            out[0] = '\0';
            return false;   /* spaces, punctuation, non-ASCII: a sentence */
        }
        if (sep) {
            if (o > 0 && out[o - 1] != '_') {
                if (o + 1 >= size)
                    goto toolong;
                out[o++] = '_';
            }
            continue;
        }
        /* camelCase and HTTPError boundaries */
        if (i > start && isupper(c) && o > 0 && out[o - 1] != '_') {
            unsigned char prev = (unsigned char)in[i - 1];
            unsigned char next = i + 1 < len ? (unsigned char)in[i + 1] : 0;
            if (islower(prev) || isdigit(prev) || (isupper(prev) && islower(next))) {
                if (o + 1 >= size)
                    goto toolong;
                out[o++] = '_';
            }
        }
        if (isalpha(c))
            letter = true;
        if (o + 1 >= size)
            goto toolong;
        out[o++] = (char)toupper(c);
    }
    while (o > 0 && out[o - 1] == '_')
        o--;
    out[o] = '\0';
    if (!letter || o == 0 || o > RECOGNIZE_MAX_CODE) {
        out[0] = '\0';
        return false;
    }
    return true;
toolong:
    out[0] = '\0';
    return false;
}

/* ---- results --------------------------------------------------------------------- */

void recognized_free(struct recognized *r)
{
    if (!r)
        return;
    free(r->code);
    free(r->message);
    for (size_t i = 0; i < r->n_fields; i++) {
        free(r->fields[i].field);
        free(r->fields[i].message);
        free(r->fields[i].type);
    }
    free(r->fields);
    r->code = NULL;
    r->message = NULL;
    r->fields = NULL;
    r->n_fields = 0;
}

/* ---- candidates ------------------------------------------------------------------ */

/* Is TEXT a generic phrase that says nothing the status does not? */
static bool is_generic(const struct rctx *c, const char *text)
{
    static const char *const generic[] = {
        "error", "error response", "an error occurred", "unknown error", "error page",
        "something went wrong", "request failed", "failed", "fail", NULL,
    };
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '.' || text[n - 1] == '!'))
        n--;
    if (ci_eq_n(text, n, envelope_reason(c->status)))
        return true;
    for (const char *const *g = generic; *g; g++)
        if (ci_eq_n(text, n, *g))
            return true;
    /* "404 Not Found" (by hand: snprintf was a twentieth of an error's cost) */
    if (c->status < 0)
        return false;
    char d[HB_U64_DIGITS];
    const char *digits = hb_u64_digits(d + sizeof d, (uint64_t)c->status);
    size_t dl = (size_t)(d + sizeof d - digits);
    return n > dl && memcmp(text, digits, dl) == 0 && text[dl] == ' ' &&
           ci_eq_n(text + dl + 1, n - dl - 1, envelope_reason(c->status));
}

/* Stack traces, debug dumps and markup never become messages. */
/* Matched case-insensitively: written in lower case, against the text
 * folded once. */
static const char *const leak_marks[] = {
    "traceback (most recent call last)", "exception in thread", "\tat ", " at java.",
    " at org.", " at com.", ".java:", ".py\", line", "file \"/", "stack trace",
    "stacktrace", "#0 /", ".php:", ".php on line", "<html", "<!doctype", "<body",
    "<script", "node_modules/", "at object.<anonymous>", "goroutine ", "panic:",
};

#define N_LEAK_MARKS (sizeof leak_marks / sizeof leak_marks[0])

/* For each byte, the marks that start with it (bit K: leak_marks[K]). */
static uint32_t leak_first[256];
static size_t leak_len[N_LEAK_MARKS];
static pthread_once_t leak_once = PTHREAD_ONCE_INIT;

static void leak_build(void)
{
    _Static_assert(N_LEAK_MARKS <= 32, "leak_first holds 32 marks");
    for (size_t k = 0; k < N_LEAK_MARKS; k++) {
        leak_first[(unsigned char)leak_marks[k][0]] |= 1u << k;
        leak_len[k] = strlen(leak_marks[k]);
    }
}

bool rec_looks_leaky(const char *t)
{
    /* One pass over the folded text, trying only the marks that start with
     * each byte: 22 strstr calls (their setup, mostly) were a twentieth of
     * an error response's instructions. Long texts are not copied. */
    char low[1024];
    size_t n = strlen(t);
    if (n < sizeof low) {
        pthread_once(&leak_once, leak_build);
        for (size_t i = 0; i < n; i++)
            low[i] = (char)fold((unsigned char)t[i]);
        for (size_t i = 0; i < n; i++) {
            uint32_t cand = leak_first[(unsigned char)low[i]];
            while (cand) {
                unsigned k = (unsigned)__builtin_ctz(cand);
                cand &= cand - 1;
                if (leak_len[k] <= n - i && memcmp(low + i, leak_marks[k], leak_len[k]) == 0)
                    return true;
            }
        }
    } else {
        for (size_t k = 0; k < N_LEAK_MARKS; k++)
            if (strcasestr(t, leak_marks[k]))
                return true;
    }
    /* "java.lang.NullPointerException", "werkzeug.exceptions.NotFound: ..." */
    for (const char *p = t; (p = strstr(p, "Exception")) != NULL; p++) {
        const char *s = p;
        while (s > t && (isalnum((unsigned char)s[-1]) || s[-1] == '.' || s[-1] == '_' ||
                         s[-1] == '$'))
            s--;
        if (memchr(s, '.', (size_t)(p - s)))
            return true;
    }
    return false;
}

bool rec_looks_code_like(const char *s, size_t len)
{
    if (len == 0)
        return false;
    bool sep = false, lower = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '_' || ch == '.')
            sep = true;
        else if (islower(ch))
            lower = true;
        else if (!isupper(ch) && !isdigit(ch) && ch != '-')
            return false;
    }
    /* UPPER_SNAKE, lower_snake, dotted.keys; not a lone word like "Unauthorized" */
    return sep || !lower;
}

/* Binary read as text: a quarter or more of the characters were invalid UTF-8. */
static bool is_mostly_junk(const char *t)
{
    size_t chars = 0, bad = 0;
    for (const unsigned char *p = (const unsigned char *)t; *p; p++) {
        if ((*p & 0xC0) != 0x80)
            chars++;
        if (p[0] == 0xEF && p[1] == 0xBF && p[2] == 0xBD)
            bad++;
    }
    return chars > 0 && bad * 4 >= chars;
}

/* Offer a message candidate: S/LEN raw, WEIGHT by key, DEPTH. */
void rec_offer_message(struct rctx *c, const char *s, size_t len, int weight, int depth)
{
    if (c->oom || len == 0)
        return;
    int score = weight - 6 * depth;
    if (c->msg.text && score <= c->msg.score)
        return;
    bool oom = false;
    char *t = rec_clean_text(s, len, RECOGNIZE_MAX_MESSAGE, &oom);
    if (oom)
        c->oom = true;
    if (!t)
        return;
    size_t tl = strlen(t);
    /* "invalid", "notFound" from reason/error/title: a token, not a message */
    if (c->json && weight < 80 && !strchr(t, ' ')) {
        free(t);
        return;
    }
    if (rec_looks_leaky(t) || is_mostly_junk(t) || (rec_looks_code_like(t, tl) && strchr(t, '_')) ||
        strcasecmp(t, "No message available") == 0 || strcasecmp(t, "null") == 0) {
        free(t);
        return;
    }
    if (is_generic(c, t))
        score -= 60;
    if (c->msg.text && score <= c->msg.score) {
        free(t);
        return;
    }
    free(c->msg.text);
    c->msg.text = t;
    c->msg.score = score;
}

void rec_offer_code(struct rctx *c, const char *s, size_t len, int weight, int depth)
{
    char buf[RECOGNIZE_MAX_CODE + 2];
    if (c->oom)
        return;
    int score = weight - 10 * depth;
    if (c->code.text && score <= c->code.score)
        return;
    if (!recognize_code_normalize(s, len, buf, sizeof buf))
        return;
    char *t = strdup(buf);
    if (!t) {
        c->oom = true;
        return;
    }
    free(c->code.text);
    c->code.text = t;
    c->code.score = score;
}

/* ---- plain text ---------------------------------------------------------------------- */

static void recognize_text(struct rctx *c, const char *body, size_t len)
{
    size_t i = 0;
    /* first non-blank line */
    while (i < len) {
        size_t s = i;
        while (i < len && body[i] != '\n')
            i++;
        size_t e = i;
        if (i < len)
            i++;
        bool blank = true;
        for (size_t k = s; k < e; k++)
            if (!isspace((unsigned char)body[k]))
                blank = false;
        if (blank)
            continue;
        size_t take = e - s > RECOGNIZE_MAX_MESSAGE * 4 ? RECOGNIZE_MAX_MESSAGE * 4 : e - s;
        /* "404 page not found" keeps its words; "404 Not Found" loses the number */
        char num[16];
        int k = snprintf(num, sizeof num, "%d ", c->status);
        const char *p = body + s;
        if (k > 0 && take > (size_t)k && strncmp(p, num, (size_t)k) == 0 &&
            isupper((unsigned char)p[k])) {
            p += k;
            take -= (size_t)k;
        }
        rec_offer_message(c, p, take, 70, 0);
        return;
    }
}

/* ---- entry --------------------------------------------------------------------------- */

/* Does the Content-Type contain WHAT (lower case)? A plain scan: for these
 * short strings strcasestr's setup cost more than the search (372
 * instructions a call, three calls per error body). */
static bool ct_has(const char *ct, const char *what)
{
    if (!ct)
        return false;
    size_t wl = strlen(what);
    for (; *ct; ct++)
        if (fold((unsigned char)*ct) == what[0] && strncasecmp(ct, what, wl) == 0)
            return true;
    return false;
}

int recognize_error(int status, const char *content_type, const char *body, size_t len,
                    struct recognized *out)
{
    if (!out)
        return -1;
    memset(out, 0, sizeof *out);
    out->retry_after_s = -1;
    out->limit = -1;
    out->window_s = -1;
    if (!body)
        len = 0;

    size_t s = 0;
    while (s < len && isspace((unsigned char)body[s]))
        s++;
    /* a UTF-8 BOM */
    if (len - s >= 3 && memcmp(body + s, "\xef\xbb\xbf", 3) == 0)
        s += 3;
    while (s < len && isspace((unsigned char)body[s]))
        s++;
    if (s >= len) {
        out->kind = RECOGNIZE_EMPTY;
        return 0;
    }

    struct rctx c = {.status = status, .out = out};
    const char *b = body + s;
    size_t bl = len - s;
    bool json_ct = ct_has(content_type, "json");
    bool html_ct = ct_has(content_type, "html") || ct_has(content_type, "xml");

    if ((json_ct && b[0] != '<') || b[0] == '{' || b[0] == '[' ||
        (b[0] == '"' && !html_ct && !ct_has(content_type, "text/plain"))) {
        rec_json(&c, b, bl);
    } else if (html_ct || b[0] == '<') {
        out->kind = RECOGNIZE_HTML;
        bool xml = (ct_has(content_type, "xml") && !ct_has(content_type, "html")) ||
                   (!html_ct && bl > 5 && strncmp(b, "<?xml", 5) == 0 &&
                    !memmem(b, bl, "<html", 5));
        rec_html(&c, b, bl, xml);
    } else {
        out->kind = RECOGNIZE_TEXT;
        recognize_text(&c, b, bl);
    }

    out->message = c.msg.text;
    out->code = c.code.text;
    return c.oom ? -1 : 0;
}
