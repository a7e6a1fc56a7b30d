/*
 * recognize: finds code, message, field errors and retry facts in an
 * upstream error body. JSON is read with yajl's streaming parser into a
 * small bounded tree (depth and node caps, strings capped), then searched by
 * structure: preferred key names score higher, deeper values lower, generic
 * texts (the reason phrase) lowest. HTML/XML is scanned for the visible text
 * of <title>, <h1>, <h2>, <p>, <pre> and <message>-like elements. Text is
 * read as its first line. Everything returned is cleaned: valid UTF-8, no
 * control characters, whitespace collapsed, bounded.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yajl/yajl_parse.h>

#include "envelope.h"
#include "headbuf.h"
#include "recognize.h"
#include "utf8.h"

#define MAX_STORED_STRING 4096   /* bytes of a JSON string kept for reading */
#define MAX_STORED_KEY 128
#define SEARCH_DEPTH 8           /* how deep message/code candidates are looked for */

/* ---- arena: every tree byte lives here, freed at once --------------------- */

struct arena_block {
    struct arena_block *next;
    size_t used, size;
    max_align_t data[];
};

struct arena {
    struct arena_block *head;
    size_t next;        /* size of the next block; grows to ARENA_BLOCK_MAX */
    bool failed;
};

/* Blocks start small for a small body (most error bodies are a few hundred
 * bytes: a 16 KiB block per response was malloc's slow path and 16 KiB of
 * cache touched) and double up to this. */
#define ARENA_BLOCK_MAX 16384

static void *arena_alloc(struct arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct arena_block *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t size = a->next < 1024 ? 1024 : a->next;
        if (size < n)
            size = n;
        a->next = size < ARENA_BLOCK_MAX ? size * 2 : ARENA_BLOCK_MAX;
        b = malloc(sizeof *b + size);
        if (!b) {
            a->failed = true;
            return NULL;
        }
        b->size = size;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    return p;
}

static void arena_free(struct arena *a)
{
    struct arena_block *b = a->head;
    while (b) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

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

/*
 * Clean S (LEN bytes) into a malloc'd string of at most MAX bytes: invalid
 * UTF-8 becomes U+FFFD, control and invisible characters are dropped,
 * whitespace runs become one space, ends trimmed; too long: cut on a
 * character boundary and ended with "…". NULL (with *oom false) when
 * nothing is left.
 */
static char *clean_text(const char *s, size_t len, size_t max, bool *oom)
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

static bool ci_eq_n(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    return alen == blen && strncasecmp(a, b, blen) == 0;
}

/* Compare ignoring case, '_', '-' and ' ' (so retry_after == retryAfter). */
/* ASCII case folding without a locale lookup per character (the key
 * comparisons below run for every node against every name they know). */
static inline unsigned char fold(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

static bool key_is(const char *key, const char *want)
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

static bool key_in(const char *key, const char *const *list)
{
    for (; *list; list++)
        if (key_is(key, *list))
            return true;
    return false;
}

/*
 * JSON keys are folded once, when the tree is built, into what key_is
 * compares: ASCII lowercase, without '_', '-' and ' '. The walk then tests
 * each key against dozens of names with strcmp, against names written
 * folded in the source ("retryafter" stands for retry_after, retryAfter,
 * Retry-After...). Folding at every comparison was a sixth of an error
 * response's instructions.
 */
static void fold_key(char *out, const char *key)
{
    for (; *key; key++)
        if (*key != '_' && *key != '-' && *key != ' ')
            *out++ = (char)fold((unsigned char)*key);
    *out = '\0';
}

/* The first byte inline: nearly every test fails there, and a call to
 * strcmp for each of them cost as much as the folding it replaced. */
static inline bool fk_is(const char *fkey, const char *want)
{
    return fkey && fkey[0] == want[0] && strcmp(fkey, want) == 0;
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

static bool looks_leaky(const char *t)
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

static bool looks_code_like(const char *s, size_t len)
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

/* "EMAIL_NOT_FOUND": upper case, digits and at least one '_'. */
static bool is_upper_snake(const char *s, size_t len)
{
    bool sep = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '_')
            sep = true;
        else if (!isupper(ch) && !isdigit(ch))
            return false;
    }
    return sep && len >= 3 && isupper((unsigned char)s[0]);
}

/* "not_found": letters joined by '_', no digits (so not an ID like "req_a1b2"). */
static bool is_word_snake(const char *s, size_t len)
{
    bool sep = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '_')
            sep = true;
        else if (!isalpha(ch))
            return false;
    }
    return sep && len >= 3 && len <= RECOGNIZE_MAX_CODE && s[0] != '_';
}

/* "NotFound", "AlreadyExists": PascalCase with two capitals or more. */
static bool is_pascal_code(const char *s, size_t len)
{
    if (len < 3 || len > RECOGNIZE_MAX_CODE || !isupper((unsigned char)s[0]))
        return false;
    int caps = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!isalnum(ch))
            return false;
        if (isupper(ch))
            caps++;
    }
    return caps >= 2 && islower((unsigned char)s[1]);
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
static void offer_message(struct rctx *c, const char *s, size_t len, int weight, int depth)
{
    if (c->oom || len == 0)
        return;
    int score = weight - 6 * depth;
    if (c->msg.text && score <= c->msg.score)
        return;
    bool oom = false;
    char *t = clean_text(s, len, RECOGNIZE_MAX_MESSAGE, &oom);
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
    if (looks_leaky(t) || is_mostly_junk(t) || (looks_code_like(t, tl) && strchr(t, '_')) ||
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

static void offer_code(struct rctx *c, const char *s, size_t len, int weight, int depth)
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

static void add_field(struct rctx *c, const char *field, size_t flen, const char *msg,
                      size_t mlen, const char *type, size_t tlen)
{
    struct recognized *r = c->out;
    if (c->oom || r->n_fields >= RECOGNIZE_MAX_FIELDS)
        return;
    bool oom = false;
    char *f = clean_text(field, flen, RECOGNIZE_MAX_FIELD, &oom);
    char *m = msg ? clean_text(msg, mlen, RECOGNIZE_MAX_MESSAGE, &oom) : NULL;
    char *t = type ? clean_text(type, tlen, RECOGNIZE_MAX_TYPE, &oom) : NULL;
    if (m && looks_leaky(m)) {
        free(m);
        m = NULL;
    }
    if (!m && t && !oom) {
        /* "missing_field" -> "Missing field" */
        m = strdup(t);
        if (!m) {
            oom = true;
        } else {
            for (char *p = m; *p; p++)
                if (*p == '_' || *p == '.' || *p == '-')
                    *p = ' ';
            m[0] = (char)toupper((unsigned char)m[0]);
        }
    }
    if (oom || !f || !m) {
        c->oom = c->oom || oom;
        free(f);
        free(m);
        free(t);
        return;
    }
    if (r->n_fields == c->fields_cap) {
        size_t cap = c->fields_cap ? c->fields_cap * 2 : 8;
        struct recognized_field *nf = realloc(r->fields, cap * sizeof *nf);
        if (!nf) {
            c->oom = true;
            free(f);
            free(m);
            free(t);
            return;
        }
        r->fields = nf;
        c->fields_cap = cap;
    }
    r->fields[r->n_fields++] = (struct recognized_field){f, m, t};
}

/* ---- retry facts ---------------------------------------------------------------- */

static long clamp_long(double v)
{
    if (!(v >= 0))
        return 0;
    if (v > 1e9)
        return 1000000000L;
    return (long)(v + 0.5);
}

/* "30", "30s", "1.5s", "2m", "1h", "500ms", "minute", "15 minutes": seconds or -1. */
static long parse_duration(const char *s, size_t len)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *p = buf;
    while (isspace((unsigned char)*p))
        p++;
    double n = 1;
    bool have_n = false;
    if (isdigit((unsigned char)*p) || *p == '.') {
        char *end;
        n = strtod(p, &end);
        if (end == p)
            return -1;
        have_n = true;
        p = end;
    }
    while (isspace((unsigned char)*p))
        p++;
    static const struct { const char *u; double s; } units[] = {
        {"ms", 0.001}, {"millisecond", 0.001}, {"milliseconds", 0.001},
        {"s", 1}, {"sec", 1}, {"secs", 1}, {"second", 1}, {"seconds", 1},
        {"m", 60}, {"min", 60}, {"mins", 60}, {"minute", 60}, {"minutes", 60},
        {"h", 3600}, {"hr", 3600}, {"hour", 3600}, {"hours", 3600},
        {"d", 86400}, {"day", 86400}, {"days", 86400},
    };
    if (!*p)
        return have_n ? clamp_long(n) : -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcasecmp(p, units[i].u) == 0)
            return clamp_long(n * units[i].s);
    return -1;
}

/* ---- the JSON tree ----------------------------------------------------------------- */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_OBJ, J_ARR };

struct jnode {
    enum jtype type;
    const char *key;    /* NUL-terminated, in a parent object */
    const char *fkey;   /* KEY folded (fold_key), compared with fk_is; "" or NULL as KEY */
    uint8_t kbits;      /* KB_* classes of KEY (name_class) */
    uint8_t kweight;    /* KEY's weight as a message key; 0: not one */
    const char *str;    /* string value or number text; NUL-terminated */
    size_t len;
    struct jnode *first, *last, *next;
    size_t n;
};

struct jparse {
    struct arena *arena;
    struct jnode *root;
    struct jnode *stack[RECOGNIZE_MAX_DEPTH + 1];
    int depth;
    size_t nodes;
    char *key;
    char *fkey;
    uint8_t kbits, kweight;
};

static char *arena_strndup(struct arena *a, const unsigned char *s, size_t len, size_t cap,
                           size_t *stored)
{
    if (len > cap) {
        len = cap;
        /* do not split a UTF-8 sequence */
        while (len > 0 && (s[len] & 0xC0) == 0x80)
            len--;
    }
    char *p = arena_alloc(a, len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    if (stored)
        *stored = len;
    return p;
}

static struct jnode *jp_add(struct jparse *jp, enum jtype type)
{
    if (++jp->nodes > RECOGNIZE_MAX_NODES)
        return NULL;
    struct jnode *n = arena_alloc(jp->arena, sizeof *n);
    if (!n)
        return NULL;
    memset(n, 0, sizeof *n);
    n->type = type;
    if (jp->depth == 0) {
        if (jp->root)
            return NULL;
        jp->root = n;
        return n;
    }
    struct jnode *parent = jp->stack[jp->depth - 1];
    if (parent->type == J_OBJ) {
        n->key = jp->key ? jp->key : "";
        n->fkey = jp->fkey ? jp->fkey : "";
        n->kbits = jp->kbits;
        n->kweight = jp->kweight;
        jp->key = jp->fkey = NULL;
        jp->kbits = jp->kweight = 0;
    }
    if (parent->last)
        parent->last->next = n;
    else
        parent->first = n;
    parent->last = n;
    parent->n++;
    return n;
}

static int jp_scalar(struct jparse *jp, enum jtype type, const unsigned char *s, size_t len)
{
    struct jnode *n = jp_add(jp, type);
    if (!n)
        return 0;
    if (s) {
        /* the stored length: \u0000 may sit inside, clean_text drops it */
        char *v = arena_strndup(jp->arena, s, len, MAX_STORED_STRING, &n->len);
        if (!v)
            return 0;
        n->str = v;
    }
    return 1;
}

static int cb_null(void *ctx)
{
    return jp_scalar(ctx, J_NULL, NULL, 0);
}

static int cb_boolean(void *ctx, int b)
{
    return jp_scalar(ctx, J_BOOL, (const unsigned char *)(b ? "true" : "false"), b ? 4 : 5);
}

static int cb_number(void *ctx, const char *s, size_t len)
{
    return jp_scalar(ctx, J_NUM, (const unsigned char *)s, len);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    return jp_scalar(ctx, J_STR, s, len);
}

static int jp_open(struct jparse *jp, enum jtype type)
{
    if (jp->depth >= RECOGNIZE_MAX_DEPTH)
        return 0;
    struct jnode *n = jp_add(jp, type);
    if (!n)
        return 0;
    jp->stack[jp->depth++] = n;
    return 1;
}

static int jp_close(struct jparse *jp)
{
    if (jp->depth <= 0)
        return 0;
    jp->depth--;
    return 1;
}

static int cb_start_map(void *ctx)
{
    return jp_open(ctx, J_OBJ);
}

static void name_class(const char *fkey, uint8_t *bits, uint8_t *weight);

static int cb_map_key(void *ctx, const unsigned char *s, size_t len)
{
    struct jparse *jp = ctx;
    jp->key = arena_strndup(jp->arena, s, len, MAX_STORED_KEY, NULL);
    if (!jp->key)
        return 0;
    size_t klen = strlen(jp->key);
    jp->fkey = arena_alloc(jp->arena, klen + 1);
    if (!jp->fkey)
        return 0;
    fold_key(jp->fkey, jp->key);
    name_class(jp->fkey, &jp->kbits, &jp->kweight);
    return 1;
}

static int cb_end(void *ctx)
{
    return jp_close(ctx);
}

static int cb_start_array(void *ctx)
{
    return jp_open(ctx, J_ARR);
}

static const yajl_callbacks json_callbacks = {
    cb_null, cb_boolean, NULL, NULL, cb_number, cb_string,
    cb_start_map, cb_map_key, cb_end, cb_start_array, cb_end,
};

/* Parse into a tree in ARENA; NULL when invalid or over a cap. */
static struct jnode *json_parse(struct arena *arena, const char *body, size_t len)
{
    struct jparse jp = {.arena = arena};
    yajl_handle h = yajl_alloc(&json_callbacks, NULL, &jp);
    if (!h) {
        arena->failed = true;
        return NULL;
    }
    if (!yajl_config(h, yajl_dont_validate_strings, 1) ||
        !yajl_config(h, yajl_allow_comments, 0)) {
        yajl_free(h);
        return NULL;
    }
    yajl_status st = yajl_parse(h, (const unsigned char *)body, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    yajl_free(h);
    if (st != yajl_status_ok || jp.depth != 0)
        return NULL;
    return jp.root;
}

static struct jnode *jget(const struct jnode *obj, const char *key)
{
    if (!obj || obj->type != J_OBJ)
        return NULL;
    for (struct jnode *n = obj->first; n; n = n->next)
        if (fk_is(n->fkey, key))
            return n;
    return NULL;
}

static bool jstr_nonempty(const struct jnode *n)
{
    return n && n->type == J_STR && n->len > 0;
}

/* ---- JSON search ------------------------------------------------------------------ */

/* Keys whose subtrees never hold the error's message or code. */
static const char *const skip_keys[] = {
    "stack", "stacktrace", "trace", "traces", "exception", "exceptions", "debug", "file",
    "line", "params", "metadata", "meta", "links", "locations", "headers", "request",
    "input", "ctx", "context", "rejectedvalue", "value", "values", "instance", "help",
    "documentationurl", "docurl", "docs", "url", "uri", "href", "timestamp", "time",
    "requestid", "requestid", "traceid", "traceid", "correlationid", "correlationid",
    "data", "args", "arguments", "codes", "expected", "received", "schemapath",
    "innererror", "innererror", "causetrace", "previous", NULL,
};

/* Keys under which an object maps field -> message(s). */
static const char *const field_map_keys[] = {
    "errors", "fields", "fielderrors", "fielderrors", "validation", "validationerrors",
    "validationerrors", "invalidparams", "invalidparams", "details", "failures",
    "messages", NULL,
};

/* Keys under which an array lists field errors. */
static const char *const field_list_keys[] = {
    "errors", "invalidparams", "invalidparams", "invalidparams", "fielderrors",
    "fielderrors", "violations", "fieldviolations", "validationerrors", "validationerrors",
    "issues", "details", "detail", "suberrors", "failures", "problems", NULL,
};

static const struct { const char *key; int weight; } message_keys[] = {
    {"message", 100}, {"fallbackmessage", 100}, {"detail", 96}, {"errordescription", 95},
    {"errormessage", 95}, {"errormessage", 95}, {"usermessage", 98}, {"msg", 85},
    {"description", 80}, {"error", 70}, {"cause", 66}, {"reason", 60}, {"title", 55},
    {"statustext", 40}, {"errorsummary", 90}, {"errors", 60},
};

/* Keys of a field map that name no field (the object's own errors). */
static const char *const non_field_keys[] = {
    "nonfielderrors", "nonfielderrors", "all", "base", "schema", "global", NULL,
};

/* Keys naming the field of a field-error item. */
static const char *const name_keys[] = {
    "field", "fieldname", "property", "propertypath", "attribute", "param", "parameter",
    "argument", "keypath", "pointer", "target", NULL,
};

/* Keys that make a root object an error envelope rather than a field map. */
static const char *const envelope_keys[] = {
    "errors", "error", "message", "detail", "statuscode", "fallbackmessage", NULL,
};

/*
 * Which of the lists above a key is in, found once per key when the tree is
 * built (one hash probe), so the walk tests bits instead of scanning lists
 * of up to 55 names for every node. Built once per process.
 */
enum {
    KB_SKIP = 1 << 0,
    KB_FIELD_MAP = 1 << 1,
    KB_FIELD_LIST = 1 << 2,
    KB_NAME = 1 << 3,
    KB_NON_FIELD = 1 << 4,
    KB_ENVELOPE = 1 << 5,
};

#define NAME_SLOTS 512   /* a power of two, well above the ~150 names */

static struct name_slot {
    const char *name;    /* NULL: empty */
    uint8_t bits, weight;
} name_table[NAME_SLOTS];

static pthread_once_t name_table_once = PTHREAD_ONCE_INIT;

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static struct name_slot *name_slot_for(const char *name)
{
    for (uint32_t i = name_hash(name);; i++) {
        struct name_slot *sl = &name_table[i & (NAME_SLOTS - 1)];
        if (!sl->name || strcmp(sl->name, name) == 0)
            return sl;
    }
}

static void name_add(const char *name, uint8_t bits, uint8_t weight)
{
    struct name_slot *sl = name_slot_for(name);
    sl->name = name;
    sl->bits |= bits;
    if (!sl->weight)
        sl->weight = weight;   /* the first listed wins, as the scan did */
}

static void name_table_build(void)
{
    static const struct { const char *const *list; uint8_t bit; } lists[] = {
        {skip_keys, KB_SKIP}, {field_map_keys, KB_FIELD_MAP}, {field_list_keys, KB_FIELD_LIST},
        {name_keys, KB_NAME}, {non_field_keys, KB_NON_FIELD}, {envelope_keys, KB_ENVELOPE},
    };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        for (const char *const *k = lists[i].list; *k; k++)
            name_add(*k, lists[i].bit, 0);
    for (size_t i = 0; i < sizeof message_keys / sizeof message_keys[0]; i++)
        name_add(message_keys[i].key, 0, (uint8_t)message_keys[i].weight);
}

/* FKEY's classes and message weight (0, 0 for a key in no list). */
static void name_class(const char *fkey, uint8_t *bits, uint8_t *weight)
{
    pthread_once(&name_table_once, name_table_build);
    const struct name_slot *sl = name_slot_for(fkey);
    *bits = sl->name ? sl->bits : 0;
    *weight = sl->name ? sl->weight : 0;
}

static const char *const field_msg_keys[] = {
    "message", "msg", "detail", "defaultmessage", "description", "reason", "error",
    "title", "errormessage", "errormessage", NULL,
};

static const char *const field_type_keys[] = {
    "type", "code", "keyword", "rule", "kind", "validation", "validator", "errorcode",
    "errorcode", "issue", NULL,
};

/*
 * Field name into BUF from an RFC 6901 pointer ("/data/attributes/title"
 * -> "title", "/data/attributes/address/city" -> "address.city").
 */
static size_t field_from_pointer(const char *p, size_t len, char *buf, size_t size)
{
    size_t o = 0;
    size_t i = 0;
    bool first_seg = true;
    size_t seg_index = 0;
    bool data_first = false;
    while (i < len) {
        if (p[i] == '/' || p[i] == '#') {
            i++;
            continue;
        }
        size_t s = i;
        while (i < len && p[i] != '/')
            i++;
        size_t sl = i - s;
        /* JSON:API framing segments */
        bool framing = false;
        if (seg_index == 0 && ci_eq_n(p + s, sl, "data"))
            framing = data_first = true;
        else if (seg_index == 1 && data_first &&
                 (ci_eq_n(p + s, sl, "attributes") || ci_eq_n(p + s, sl, "relationships")))
            framing = true;
        seg_index++;
        if (framing)
            continue;
        if (!first_seg && o + 1 < size)
            buf[o++] = '.';
        first_seg = false;
        for (size_t k = s; k < s + sl && o + 1 < size; k++) {
            char ch = p[k];
            if (ch == '~' && k + 1 < s + sl && (p[k + 1] == '0' || p[k + 1] == '1')) {
                ch = p[k + 1] == '0' ? '~' : '/';
                k++;
            }
            buf[o++] = ch;
        }
    }
    buf[o < size ? o : size - 1] = '\0';
    return o < size ? o : size - 1;
}

/* Field name from a loc/path array: ["body","title"] -> "title", ["items",0,"name"] -> "items.0.name". */
static size_t field_from_array(const struct jnode *arr, char *buf, size_t size)
{
    static const char *const framing[] = {"body", "query", "path", "header", "headers",
                                           "cookie", "form", "json", NULL};
    size_t o = 0;
    bool first = true;
    int idx = 0;
    for (const struct jnode *n = arr->first; n; n = n->next, idx++) {
        if (n->type != J_STR && n->type != J_NUM)
            continue;
        if (idx == 0 && arr->n > 1 && n->type == J_STR && key_in(n->str, framing))
            continue;
        if (!first && o + 1 < size)
            buf[o++] = '.';
        first = false;
        for (size_t k = 0; k < n->len && o + 1 < size; k++)
            buf[o++] = n->str[k];
    }
    buf[o] = '\0';
    return o;
}

/* The field an error item names, into BUF; 0 if it names none. */
static size_t item_field(const struct jnode *item, bool in_list, char *buf, size_t size)
{
    buf[0] = '\0';
    for (const struct jnode *n = item->first; n; n = n->next) {
        if ((n->kbits & KB_NAME) && jstr_nonempty(n)) {
            if (n->str[0] == '/' || (n->str[0] == '#' && n->len > 1 && n->str[1] == '/'))
                return field_from_pointer(n->str, n->len, buf, size);
            size_t l = n->len < size - 1 ? n->len : size - 1;
            memcpy(buf, n->str, l);
            buf[l] = '\0';
            return l;
        }
    }
    const struct jnode *loc = jget(item, "loc");
    if (loc && loc->type == J_ARR) {
        size_t l = field_from_array(loc, buf, size);
        if (l)
            return l;
    }
    const struct jnode *src = jget(item, "source");
    if (src && src->type == J_OBJ) {
        const struct jnode *ptr = jget(src, "pointer");
        if (jstr_nonempty(ptr)) {
            size_t l = field_from_pointer(ptr->str, ptr->len, buf, size);
            if (l)
                return l;
        }
        const struct jnode *par = jget(src, "parameter");
        if (jstr_nonempty(par)) {
            size_t l = par->len < size - 1 ? par->len : size - 1;
            memcpy(buf, par->str, l);
            buf[l] = '\0';
            return l;
        }
    }
    const struct jnode *ip = jget(item, "instancepath");
    if (!ip)
        ip = jget(item, "datapath");
    if (ip && ip->type == J_STR) {
        size_t l = field_from_pointer(ip->str, ip->len, buf, size);
        if (l)
            return l;
        const struct jnode *mp = jget(jget(item, "params"), "missingproperty");
        if (jstr_nonempty(mp)) {
            l = mp->len < size - 1 ? mp->len : size - 1;
            memcpy(buf, mp->str, l);
            buf[l] = '\0';
            return l;
        }
    }
    /* "path": express-validator / Joi / zod, but not GraphQL (which has locations) */
    const struct jnode *path = in_list ? jget(item, "path") : NULL;
    if (path && !jget(item, "locations")) {
        if (path->type == J_ARR) {
            size_t l = field_from_array(path, buf, size);
            if (l)
                return l;
        } else if (jstr_nonempty(path) && path->str[0] != '/') {
            /* JSONPath "$.user.email" -> "user.email" */
            const char *ps = path->str;
            size_t pl = path->len;
            if (pl > 2 && ps[0] == '$' && ps[1] == '.') {
                ps += 2;
                pl -= 2;
            }
            size_t l = pl < size - 1 ? pl : size - 1;
            memcpy(buf, ps, l);
            buf[l] = '\0';
            return l;
        }
    }
    if (in_list) {
        const struct jnode *name = jget(item, "name");
        if (jstr_nonempty(name)) {
            size_t l = name->len < size - 1 ? name->len : size - 1;
            memcpy(buf, name->str, l);
            buf[l] = '\0';
            return l;
        }
    }
    return 0;
}

/* Add ITEM as a field error if it is one; returns true if it was. */
static bool try_field_item(struct rctx *c, const struct jnode *item, bool in_list)
{
    if (item->type != J_OBJ)
        return false;
    char fbuf[RECOGNIZE_MAX_FIELD * 2];
    size_t fl = item_field(item, in_list, fbuf, sizeof fbuf);
    if (fl == 0)
        return false;
    const struct jnode *m = NULL, *t = NULL;
    for (const char *const *k = field_msg_keys; *k && !m; k++) {
        const struct jnode *v = jget(item, *k);
        if (jstr_nonempty(v))
            m = v;
        else if (v && v->type == J_ARR && v->first && jstr_nonempty(v->first))
            m = v->first;
    }
    for (const char *const *k = field_type_keys; *k && !t; k++) {
        const struct jnode *v = jget(item, *k);
        if (jstr_nonempty(v) && !ci_eq_n(v->str, v->len, "field"))
            t = v;
    }
    if (!m && !t)
        return false;
    add_field(c, fbuf, fl, m ? m->str : NULL, m ? m->len : 0, t ? t->str : NULL,
              t ? t->len : 0);
    return true;
}

/*
 * Is OBJ a map field -> message(s)? STRINGS_OK: plain string values count
 * (seed 001's details), else only arrays of strings (Laravel, Rails, DRF).
 */
static bool is_field_map(const struct jnode *obj, bool strings_ok, int depth)
{
    if (!obj || obj->type != J_OBJ || obj->n == 0 || depth > 3)
        return false;
    for (const struct jnode *n = obj->first; n; n = n->next) {
        if (n->type == J_ARR) {
            if (!n->first)
                return false;
            for (const struct jnode *e = n->first; e; e = e->next)
                if (e->type != J_STR && !(e->type == J_OBJ && is_field_map(e, true, depth + 1)))
                    return false;
        } else if (n->type == J_STR) {
            if (!strings_ok || (n->kbits & KB_SKIP))
                return false;
            /* a message reads like a sentence, not like an ID or a token */
            if (!memchr(n->str, ' ', n->len))
                return false;
        } else if (n->type == J_OBJ) {
            if (!is_field_map(n, strings_ok, depth + 1))
                return false;
        } else {
            return false;
        }
    }
    return true;
}

static void add_field_map(struct rctx *c, const struct jnode *obj, const char *prefix,
                          size_t plen, int depth)
{
    for (const struct jnode *n = obj->first; n; n = n->next) {
        char name[RECOGNIZE_MAX_FIELD * 2];
        size_t nl;
        if (plen > 0) {
            nl = (size_t)snprintf(name, sizeof name, "%.*s.%s", (int)plen, prefix, n->key);
        } else {
            nl = (size_t)snprintf(name, sizeof name, "%s", n->key);
        }
        if (nl >= sizeof name)
            nl = sizeof name - 1;
        bool non_field = plen == 0 && (n->kbits & KB_NON_FIELD);
        if (n->type == J_STR) {
            if (non_field)
                offer_message(c, n->str, n->len, 90, depth);
            else
                add_field(c, name, nl, n->str, n->len, NULL, 0);
        } else if (n->type == J_ARR) {
            for (const struct jnode *e = n->first; e; e = e->next) {
                if (e->type == J_STR) {
                    if (non_field)
                        offer_message(c, e->str, e->len, 90, depth);
                    else
                        add_field(c, name, nl, e->str, e->len, NULL, 0);
                } else if (e->type == J_OBJ && depth < 6) {
                    add_field_map(c, e, name, nl, depth + 1);
                }
            }
        } else if (n->type == J_OBJ && depth < 6) {
            add_field_map(c, n, name, nl, depth + 1);
        }
    }
}

static void walk(struct rctx *c, const struct jnode *node, int depth);

static bool validation_context(const struct rctx *c)
{
    return c->status == 400 || c->status == 422;
}

/* KEYED: the member whose key names ARR (or an enclosing array); NULL at the root. */
static void walk_array(struct rctx *c, const struct jnode *arr, const struct jnode *keyed,
                       int depth)
{
    bool list = keyed && (keyed->kbits & KB_FIELD_LIST);
    int idx = 0;
    for (const struct jnode *e = arr->first; e; e = e->next, idx++) {
        if (e->type == J_STR) {
            /* Rails full messages, NestJS message arrays: the first is the message */
            int w = keyed ? keyed->kweight : 0;
            if (idx == 0) {
                if (w > 0)
                    offer_message(c, e->str, e->len, w - 5, depth);
                else if (list || !keyed || fk_is(keyed->fkey, "messages"))
                    offer_message(c, e->str, e->len, 60, depth);
            }
            continue;
        }
        if (e->type == J_OBJ) {
            if (try_field_item(c, e, list))
                continue;
            if (idx < 8)
                walk(c, e, depth + 1);
        } else if (e->type == J_ARR && idx < 8 && depth < SEARCH_DEPTH) {
            walk_array(c, e, keyed, depth + 1);
        }
    }
}

static void retry_fact(struct rctx *c, const struct jnode *n)
{
    struct recognized *r = c->out;
    const char *k = n->fkey;
    enum { F_RETRY_S, F_RETRY_MS, F_LIMIT, F_WINDOW } fact;
    /* The key first: reading a number out of every value cost more than the
     * rest of the walk. */
    if (!k || (k[0] != 'r' && k[0] != 'l' && k[0] != 'w' && k[0] != 'p' && k[0] != 'i'))
        return;
    if (fk_is(k, "retryafter") || fk_is(k, "retryafterseconds") || fk_is(k, "retryin") ||
        fk_is(k, "retrydelay") || fk_is(k, "retryafters") || fk_is(k, "retry"))
        fact = F_RETRY_S;
    else if (fk_is(k, "retryafterms"))
        fact = F_RETRY_MS;
    else if (fk_is(k, "limit") || fk_is(k, "ratelimit"))
        fact = F_LIMIT;
    else if (fk_is(k, "window") || fk_is(k, "windows") || fk_is(k, "period") ||
             fk_is(k, "interval") || fk_is(k, "windowseconds"))
        fact = F_WINDOW;
    else
        return;
    long v = -1;
    if (n->type == J_NUM)
        v = clamp_long(strtod(n->str, NULL));
    else if (n->type == J_STR)
        v = parse_duration(n->str, n->len);
    if (v < 0)
        return;
    switch (fact) {
    case F_RETRY_S:
        if (r->retry_after_s < 0)
            r->retry_after_s = v;
        break;
    case F_RETRY_MS:
        if (r->retry_after_s < 0 && n->type == J_NUM)
            r->retry_after_s = (v + 999) / 1000;
        break;
    case F_LIMIT:
        if (r->limit < 0 && n->type == J_NUM)
            r->limit = v;
        break;
    case F_WINDOW:
        if (r->window_s < 0 && v > 0)
            r->window_s = v;
        break;
    }
}

static void walk(struct rctx *c, const struct jnode *node, int depth)
{
    if (!node || depth > SEARCH_DEPTH || c->oom)
        return;
    if (node->type == J_ARR) {
        walk_array(c, node, NULL, depth);
        return;
    }
    if (node->type != J_OBJ)
        return;
    bool i18n = jget(node, "fallbackmessage") || jget(node, "params");

    /* Seed 004's 400: details {field, reason}; Stripe's error {param, message}. */
    if (depth > 0)
        (void)try_field_item(c, node, false);

    for (const struct jnode *n = node->first; n; n = n->next) {
        const char *k = n->fkey;
        if (n->kbits & KB_SKIP)
            continue;
        retry_fact(c, n);
        if (n->type == J_STR) {
            int w = n->kweight;
            if (w > 0)
                offer_message(c, n->str, n->len, w, depth);
            if (w > 0 && is_upper_snake(n->str, n->len))
                offer_code(c, n->str, n->len, 70, depth);   /* Firebase "EMAIL_NOT_FOUND" */
            if (fk_is(k, "name") && is_upper_snake(n->str, n->len))
                offer_code(c, n->str, n->len, 85, depth);   /* PayPal "INVALID_REQUEST" */
            if (fk_is(k, "id") && is_word_snake(n->str, n->len))
                offer_code(c, n->str, n->len, 60, depth);   /* Heroku "not_found" */
            if (fk_is(k, "reason") && (is_upper_snake(n->str, n->len) ||
                                        is_pascal_code(n->str, n->len)))
                offer_code(c, n->str, n->len, 75, depth);   /* Kubernetes "NotFound" */
            if (fk_is(k, "code") || fk_is(k, "errorcode") || fk_is(k, "errorcode"))
                offer_code(c, n->str, n->len, fk_is(k, "code") ? 100 : 95, depth);
            else if (fk_is(k, "status") && looks_code_like(n->str, n->len) &&
                     !memchr(n->str, '.', n->len)) {
                bool upper = true;
                for (size_t i = 0; i < n->len; i++)
                    if (islower((unsigned char)n->str[i]))
                        upper = false;
                if (upper && n->len >= 3)
                    offer_code(c, n->str, n->len, 90, depth);
            } else if (fk_is(k, "key") && (i18n || memchr(n->str, '.', n->len))) {
                offer_code(c, n->str, n->len, 92, depth);
            } else if (fk_is(k, "error") && looks_code_like(n->str, n->len) &&
                       memchr(n->str, '_', n->len)) {
                offer_code(c, n->str, n->len, 80, depth);   /* OAuth 2 "invalid_grant" */
            } else if (fk_is(k, "type") && depth == 0 && n->len > 0 &&
                       strncmp(n->str, "about:", 6) != 0 &&
                       (memchr(n->str, '/', n->len) || memchr(n->str, ':', n->len))) {
                /* problem type URI: its last segment names the problem */
                size_t e = n->len;
                while (e > 0 && (n->str[e - 1] == '/' || n->str[e - 1] == '#'))
                    e--;
                size_t s = e;
                while (s > 0 && n->str[s - 1] != '/' && n->str[s - 1] != '#' &&
                       n->str[s - 1] != ':')
                    s--;
                if (e > s)
                    offer_code(c, n->str + s, e - s, 50, depth);
            }
        } else if (n->type == J_ARR) {
            walk_array(c, n, n, depth + 1);
        } else if (n->type == J_OBJ) {
            bool strings_ok = validation_context(c) ||
                              (c->code.text && strstr(c->code.text, "VALID"));
            if ((n->kbits & KB_FIELD_MAP) && is_field_map(n, strings_ok, 0))
                add_field_map(c, n, "", 0, depth + 1);
            else
                walk(c, n, depth + 1);
        }
    }
}

/* Keys a JSON error body's root may carry; a root of only other keys is DRF's field map. */
static bool root_is_field_map(const struct jnode *root)
{
    for (const struct jnode *n = root->first; n; n = n->next) {
        if (n->kbits & KB_ENVELOPE)
            return false;
        /* "status": ["..."] is a field; "status": 404 is not */
        if ((n->kweight > 0 || fk_is(n->fkey, "code") || fk_is(n->fkey, "status")) &&
            n->type != J_ARR)
            return false;
    }
    return is_field_map(root, false, 0);
}

static void recognize_json(struct rctx *c, const struct jnode *root)
{
    c->json = true;
    if (root->type == J_OBJ && root_is_field_map(root)) {
        add_field_map(c, root, "", 0, 0);
        return;
    }
    if (root->type == J_STR) {
        offer_message(c, root->str, root->len, 50, 0);
        return;
    }
    walk(c, root, 0);
}

/* ---- HTML / XML --------------------------------------------------------------------- */

struct hbuf {
    char *p;
    size_t len, cap;
};

static void hbuf_putc(struct hbuf *b, char ch)
{
    if (b->len + 1 < b->cap)
        b->p[b->len++] = ch;
}

static void hbuf_put_cp(struct hbuf *b, uint32_t cp)
{
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) {
        hbuf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        hbuf_putc(b, (char)(0xC0 | (cp >> 6)));
        hbuf_putc(b, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        hbuf_putc(b, (char)(0xE0 | (cp >> 12)));
        hbuf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        hbuf_putc(b, (char)(0x80 | (cp & 0x3F)));
    } else {
        hbuf_putc(b, (char)(0xF0 | (cp >> 18)));
        hbuf_putc(b, (char)(0x80 | ((cp >> 12) & 0x3F)));
        hbuf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        hbuf_putc(b, (char)(0x80 | (cp & 0x3F)));
    }
}

/* Decode the entity at S (just after '&'); returns bytes consumed, 0 if none. */
static size_t html_entity(const char *s, size_t n, struct hbuf *b)
{
    static const struct { const char *name; uint32_t cp; } ents[] = {
        {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''},
        {"nbsp", ' '}, {"ndash", 0x2013}, {"mdash", 0x2014}, {"hellip", 0x2026},
        {"copy", 0xA9}, {"laquo", 0xAB}, {"raquo", 0xBB}, {"lsquo", 0x2018},
        {"rsquo", 0x2019}, {"ldquo", 0x201C}, {"rdquo", 0x201D}, {"eacute", 0xE9},
    };
    size_t semi = 0;
    for (size_t i = 0; i < n && i < 12; i++) {
        if (s[i] == ';') {
            semi = i;
            break;
        }
    }
    if (semi == 0)
        return 0;
    if (s[0] == '#') {
        uint32_t cp = 0;
        size_t i = 1;
        bool hex = i < semi && (s[i] == 'x' || s[i] == 'X');
        if (hex)
            i++;
        if (i >= semi)
            return 0;
        for (; i < semi; i++) {
            unsigned char ch = (unsigned char)s[i];
            int d;
            if (isdigit(ch))
                d = ch - '0';
            else if (hex && isxdigit(ch))
                d = tolower(ch) - 'a' + 10;
            else
                return 0;
            cp = cp * (hex ? 16 : 10) + (uint32_t)d;
            if (cp > 0x10FFFF)
                cp = 0x110000;
        }
        hbuf_put_cp(b, cp);
        return semi + 1;
    }
    for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++) {
        if (strlen(ents[i].name) == semi && strncmp(s, ents[i].name, semi) == 0) {
            hbuf_put_cp(b, ents[i].cp);
            return semi + 1;
        }
    }
    return 0;
}

enum html_el {
    EL_NONE, EL_TITLE, EL_H1, EL_H2, EL_H3, EL_P, EL_PRE, EL_MESSAGE, EL_CODE,
    EL_LOOSE,   /* text directly in <body> or a <div>, outside the elements above */
};

static enum html_el html_element(const char *name, size_t n, bool xml)
{
    if (ci_eq_n(name, n, "title"))
        return EL_TITLE;
    if (ci_eq_n(name, n, "h1"))
        return EL_H1;
    if (ci_eq_n(name, n, "h2"))
        return EL_H2;
    if (ci_eq_n(name, n, "h3") || ci_eq_n(name, n, "h4"))
        return EL_H3;
    if (ci_eq_n(name, n, "p"))
        return EL_P;
    if (ci_eq_n(name, n, "pre"))
        return EL_PRE;
    /* XML error documents: S3's <Error><Code/><Message/></Error> and the like */
    if (!xml)
        return EL_NONE;
    if (ci_eq_n(name, n, "message") || ci_eq_n(name, n, "errormessage") ||
        ci_eq_n(name, n, "detail"))
        return EL_MESSAGE;
    if (ci_eq_n(name, n, "code") || ci_eq_n(name, n, "errorcode"))
        return EL_CODE;
    return EL_NONE;
}

static bool starts_with_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Score and offer one element's text (raw, entities decoded). */
static void html_offer(struct rctx *c, enum html_el el, char *text, size_t len,
                       const char *label, int p_index)
{
    bool oom = false;
    if (el == EL_PRE) {
        /* the first non-blank line only: the rest of a <pre> is a dump */
        size_t s = 0;
        while (s < len && isspace((unsigned char)text[s]))
            s++;
        size_t e = s;
        while (e < len && text[e] != '\n')
            e++;
        text += s;
        len = e - s;
    }
    char *t = clean_text(text, len, RECOGNIZE_MAX_MESSAGE * 2, &oom);
    if (oom)
        c->oom = true;
    if (!t)
        return;
    char *s = t;
    int w;
    switch (el) {
    case EL_MESSAGE: w = 100; break;
    case EL_PRE: w = 80; break;
    case EL_P: w = 72 - (p_index > 10 ? 10 : p_index); break;
    case EL_H1: w = 62; break;
    case EL_H2: w = 58; break;
    case EL_H3: w = 54; break;
    case EL_LOOSE: w = 58; break;
    case EL_TITLE: w = 50; break;
    case EL_CODE:
        if (!strchr(s, ' '))
            offer_code(c, s, strlen(s), 90, 0);
        free(t);
        return;
    default:
        free(t);
        return;
    }
    /* <p><b>Message</b> text</p> (Tomcat), "Message: text" (Python http.server) */
    static const struct { const char *label; int w; } labels[] = {
        {"Message", 100}, {"Description", 66}, {"Reason", 90}, {"Detail", 90},
        {"Error code explanation", 30}, {"Error code", -1}, {"Type", -1},
        {"Exception", -1}, {"Root Cause", -1}, {"Note", -1}, {"Status", -1},
    };
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
        size_t ll = strlen(labels[i].label);
        bool by_bold = label && strcasecmp(label, labels[i].label) == 0;
        bool by_colon = starts_with_ci(s, labels[i].label) && s[ll] == ':';
        if (by_bold || by_colon) {
            if (labels[i].w < 0) {
                free(t);
                return;
            }
            w = labels[i].w;
            if (by_colon)   /* a bold label is not part of the text */
                s += ll + 1;
            while (*s == ' ' || *s == ':')
                s++;
            break;
        }
    }
    /* "404 Not Found", "404 - File or directory not found." */
    char num[16];
    int k = snprintf(num, sizeof num, "%d", c->status);
    if (k > 0 && strncmp(s, num, (size_t)k) == 0 && (s[k] == ' ' || s[k] == '\0')) {
        s += k;
        while (*s == ' ' || *s == '-' || *s == ':')
            s++;
    }
    size_t sl = strlen(s);
    /* the more words, the more specific: "Not Found" < "The requested URL was not found" */
    int words = 0;
    for (size_t q = 0; q < sl; q++)
        if (s[q] != ' ' && (q == 0 || s[q - 1] == ' '))
            words++;
    if (el == EL_LOOSE && words < 3) {
        free(t);
        return;
    }
    w += words > 10 ? 10 : words;
    /* a labelled HTML line ends with a period the message does not need */
    if (sl > 1 && s[sl - 1] == '.' && s[sl - 2] != '.')
        s[--sl] = '\0';
    if (sl > 0)
        offer_message(c, s, sl, w, 0);
    free(t);
}

static void recognize_html(struct rctx *c, const char *body, size_t len, bool xml)
{
    char textbuf[4096];
    struct hbuf tb = {textbuf, 0, sizeof textbuf};
    char label[64];
    size_t label_len = 0;
    bool in_label = false, label_done = false;
    enum html_el cur = EL_NONE;
    int p_index = 0;
    /* loose text: what sits in <body> outside the elements we read */
    char loosebuf[2048];
    struct hbuf lt = {loosebuf, 0, sizeof loosebuf};
    bool in_head = false;
    int skip = 0;   /* inside <address>, <footer>, <nav>...: server banners, menus */
    static const char *const inline_tags[] = {"a", "span", "b", "i", "em", "strong", "code",
                                              "small", "abbr", "font", "u", "tt", NULL};
    static const char *const skip_tags[] = {"address", "footer", "nav", "button", "select",
                                            "noscript", "label", "option", "header", NULL};
    size_t i = 0;
    while (i < len && !c->oom) {
        char ch = body[i];
        if (ch == '<') {
            /* comments, doctype, CDATA */
            if (i + 3 < len && memcmp(body + i, "<!--", 4) == 0) {
                const char *e = memmem(body + i + 4, len - i - 4, "-->", 3);
                i = e ? (size_t)(e - body) + 3 : len;
                continue;
            }
            size_t j = i + 1;
            bool closing = j < len && body[j] == '/';
            if (closing)
                j++;
            size_t ns = j;
            while (j < len && (isalnum((unsigned char)body[j]) || body[j] == ':' ||
                               body[j] == '-' || body[j] == '_'))
                j++;
            size_t nl = j - ns;
            const char *gt = memchr(body + j, '>', len - j);
            size_t end = gt ? (size_t)(gt - body) + 1 : len;
            if (nl == 0) {
                /* "<!doctype", "<?xml", or a stray '<' in text */
                if (j < len && (body[j] == '!' || body[j] == '?')) {
                    i = end;
                    continue;
                }
                if (cur != EL_NONE)
                    hbuf_putc(&tb, '<');
                i++;
                continue;
            }
            const char *name = body + ns;
            char tag[16];
            size_t tl = nl < sizeof tag - 1 ? nl : sizeof tag - 1;
            memcpy(tag, name, tl);
            tag[tl] = '\0';
            if (!key_in(tag, inline_tags) && lt.len > 0) {
                if (cur == EL_NONE && !xml)
                    html_offer(c, EL_LOOSE, lt.p, lt.len, NULL, 0);
                lt.len = 0;
            }
            if (ci_eq_n(name, nl, "head"))
                in_head = !closing;
            else if (ci_eq_n(name, nl, "body"))
                in_head = false;
            else if (key_in(tag, skip_tags))
                skip = closing ? (skip > 0 ? skip - 1 : 0) : (skip < 64 ? skip + 1 : skip);
            if (!closing && (ci_eq_n(name, nl, "script") || ci_eq_n(name, nl, "style"))) {
                /* skip to the matching close tag */
                const char *close = ci_eq_n(name, nl, "script") ? "</script" : "</style";
                size_t cl = strlen(close);
                size_t k = end;
                while (k + cl <= len && strncasecmp(body + k, close, cl) != 0)
                    k++;
                const char *g2 = k < len ? memchr(body + k, '>', len - k) : NULL;
                i = g2 ? (size_t)(g2 - body) + 1 : len;
                continue;
            }
            enum html_el el = html_element(name, nl, xml);
            if (el != EL_NONE) {
                if (cur != EL_NONE && tb.len > 0)
                    html_offer(c, cur, tb.p, tb.len, label_done ? label : NULL, p_index);
                if (cur == EL_P)
                    p_index++;
                tb.len = 0;
                label_len = 0;
                label[0] = '\0';
                in_label = label_done = false;
                cur = closing ? EL_NONE : el;
            } else if (cur != EL_NONE) {
                bool bold = ci_eq_n(name, nl, "b") || ci_eq_n(name, nl, "strong");
                if (bold && !closing && tb.len == 0 && !label_done) {
                    in_label = true;
                } else if (bold && closing && in_label) {
                    in_label = false;
                    label_done = true;
                    label[label_len] = '\0';
                } else if (ci_eq_n(name, nl, "br") || ci_eq_n(name, nl, "div") ||
                           ci_eq_n(name, nl, "li")) {
                    hbuf_putc(&tb, cur == EL_PRE ? '\n' : ' ');
                }
            }
            i = end;
            continue;
        }
        if (cur == EL_NONE && (xml || in_head || skip > 0)) {
            i++;
            continue;
        }
        struct hbuf *dst = cur == EL_NONE ? &lt : &tb;
        char lbuf_tmp[16];
        struct hbuf lb = {lbuf_tmp, 0, sizeof lbuf_tmp};
        if (in_label)
            dst = &lb;
        if (ch == '&') {
            size_t used = html_entity(body + i + 1, len - i - 1, dst);
            if (used) {
                i += used + 1;
            } else {
                hbuf_putc(dst, '&');
                i++;
            }
        } else {
            hbuf_putc(dst, ch);
            i++;
        }
        if (in_label) {
            for (size_t q = 0; q < lb.len && label_len + 1 < sizeof label; q++)
                label[label_len++] = lb.p[q];
            label[label_len] = '\0';
        }
    }
    if (cur != EL_NONE && tb.len > 0 && !c->oom)
        html_offer(c, cur, tb.p, tb.len, label_done ? label : NULL, p_index);
    if (lt.len > 0 && !xml && !c->oom)
        html_offer(c, EL_LOOSE, lt.p, lt.len, NULL, 0);
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
        offer_message(c, p, take, 70, 0);
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
        /* about 8 bytes of tree per byte of JSON for small bodies */
        struct arena arena = {.next = bl < ARENA_BLOCK_MAX / 8 ? bl * 8 : ARENA_BLOCK_MAX};
        struct jnode *root = json_parse(&arena, b, bl);
        if (root) {
            out->kind = RECOGNIZE_JSON;
            recognize_json(&c, root);
        } else {
            out->kind = RECOGNIZE_INVALID;
            if (arena.failed)
                c.oom = true;
        }
        arena_free(&arena);
    } else if (html_ct || b[0] == '<') {
        out->kind = RECOGNIZE_HTML;
        bool xml = (ct_has(content_type, "xml") && !ct_has(content_type, "html")) ||
                   (!html_ct && bl > 5 && strncmp(b, "<?xml", 5) == 0 &&
                    !memmem(b, bl, "<html", 5));
        recognize_html(&c, b, bl, xml);
    } else {
        out->kind = RECOGNIZE_TEXT;
        recognize_text(&c, b, bl);
    }

    out->message = c.msg.text;
    out->code = c.code.text;
    return c.oom ? -1 : 0;
}
