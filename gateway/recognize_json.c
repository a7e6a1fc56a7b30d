/*
 * recognize_json: finds code, message, field errors and retry facts in a
 * JSON error body. The body is read with yajl's streaming parser into a
 * small bounded tree (depth and node caps, strings capped) in an arena freed
 * at once, its keys folded and classified once against the key tables
 * below, then searched by structure: preferred key names score higher,
 * deeper values lower; field errors are read from the shapes the common
 * frameworks use (field maps, error lists, JSON pointers, loc arrays).
 * Candidates go to recognize.c, which cleans and keeps the best.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yajl/yajl_parse.h>

#include "recognize.h"
#include "recognize_int.h"

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

/* ---- keys and values ------------------------------------------------------------ */

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

/* ---- field errors ----------------------------------------------------------------- */

static void add_field(struct rctx *c, const char *field, size_t flen, const char *msg,
                      size_t mlen, const char *type, size_t tlen)
{
    struct recognized *r = c->out;
    if (c->oom || r->n_fields >= RECOGNIZE_MAX_FIELDS)
        return;
    bool oom = false;
    char *f = rec_clean_text(field, flen, RECOGNIZE_MAX_FIELD, &oom);
    char *m = msg ? rec_clean_text(msg, mlen, RECOGNIZE_MAX_MESSAGE, &oom) : NULL;
    char *t = type ? rec_clean_text(type, tlen, RECOGNIZE_MAX_TYPE, &oom) : NULL;
    if (m && rec_looks_leaky(m)) {
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

/* The key tables below hold names folded the way fold_key folds a key
 * ("requestid" matches request_id, requestId, Request-ID), so each name is
 * listed once per table: a second spelling would never match anything more. */

/* Keys whose subtrees never hold the error's message or code. */
static const char *const skip_keys[] = {
    "stack", "stacktrace", "trace", "traces", "exception", "exceptions", "debug", "file",
    "line", "params", "metadata", "meta", "links", "locations", "headers", "request",
    "input", "ctx", "context", "rejectedvalue", "value", "values", "instance", "help",
    "documentationurl", "docurl", "docs", "url", "uri", "href", "timestamp", "time",
    "requestid", "traceid", "correlationid", "data", "args", "arguments", "codes",
    "expected", "received", "schemapath", "innererror", "causetrace", "previous", NULL,
};

/* Keys under which an object maps field -> message(s). */
static const char *const field_map_keys[] = {
    "errors", "fields", "fielderrors", "validation", "validationerrors", "invalidparams",
    "details", "failures", "messages", NULL,
};

/* Keys under which an array lists field errors. */
static const char *const field_list_keys[] = {
    "errors", "invalidparams", "fielderrors", "violations", "fieldviolations",
    "validationerrors", "issues", "details", "detail", "suberrors", "failures", "problems",
    NULL,
};

static const struct { const char *key; int weight; } message_keys[] = {
    {"message", 100}, {"fallbackmessage", 100}, {"detail", 96}, {"errordescription", 95},
    {"errormessage", 95}, {"usermessage", 98}, {"msg", 85},
    {"description", 80}, {"error", 70}, {"cause", 66}, {"reason", 60}, {"title", 55},
    {"statustext", 40}, {"errorsummary", 90}, {"errors", 60},
};

/* Keys of a field map that name no field (the object's own errors). */
static const char *const non_field_keys[] = {
    "nonfielderrors", "all", "base", "schema", "global", NULL,
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
 * of up to 45 names for every node. Built once per process.
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
    "title", "errormessage", NULL,
};

static const char *const field_type_keys[] = {
    "type", "code", "keyword", "rule", "kind", "validation", "validator", "errorcode",
    "issue", NULL,
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
                rec_offer_message(c, n->str, n->len, 90, depth);
            else
                add_field(c, name, nl, n->str, n->len, NULL, 0);
        } else if (n->type == J_ARR) {
            for (const struct jnode *e = n->first; e; e = e->next) {
                if (e->type == J_STR) {
                    if (non_field)
                        rec_offer_message(c, e->str, e->len, 90, depth);
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
                    rec_offer_message(c, e->str, e->len, w - 5, depth);
                else if (list || !keyed || fk_is(keyed->fkey, "messages"))
                    rec_offer_message(c, e->str, e->len, 60, depth);
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
                rec_offer_message(c, n->str, n->len, w, depth);
            if (w > 0 && is_upper_snake(n->str, n->len))
                rec_offer_code(c, n->str, n->len, 70, depth);   /* Firebase "EMAIL_NOT_FOUND" */
            if (fk_is(k, "name") && is_upper_snake(n->str, n->len))
                rec_offer_code(c, n->str, n->len, 85, depth);   /* PayPal "INVALID_REQUEST" */
            if (fk_is(k, "id") && is_word_snake(n->str, n->len))
                rec_offer_code(c, n->str, n->len, 60, depth);   /* Heroku "not_found" */
            if (fk_is(k, "reason") && (is_upper_snake(n->str, n->len) ||
                                        is_pascal_code(n->str, n->len)))
                rec_offer_code(c, n->str, n->len, 75, depth);   /* Kubernetes "NotFound" */
            if (fk_is(k, "code") || fk_is(k, "errorcode"))
                rec_offer_code(c, n->str, n->len, fk_is(k, "code") ? 100 : 95, depth);
            else if (fk_is(k, "status") && rec_looks_code_like(n->str, n->len) &&
                     !memchr(n->str, '.', n->len)) {
                bool upper = true;
                for (size_t i = 0; i < n->len; i++)
                    if (islower((unsigned char)n->str[i]))
                        upper = false;
                if (upper && n->len >= 3)
                    rec_offer_code(c, n->str, n->len, 90, depth);
            } else if (fk_is(k, "key") && (i18n || memchr(n->str, '.', n->len))) {
                rec_offer_code(c, n->str, n->len, 92, depth);
            } else if (fk_is(k, "error") && rec_looks_code_like(n->str, n->len) &&
                       memchr(n->str, '_', n->len)) {
                rec_offer_code(c, n->str, n->len, 80, depth);   /* OAuth 2 "invalid_grant" */
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
                    rec_offer_code(c, n->str + s, e - s, 50, depth);
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
        rec_offer_message(c, root->str, root->len, 50, 0);
        return;
    }
    walk(c, root, 0);
}

void rec_json(struct rctx *c, const char *body, size_t len)
{
    /* about 8 bytes of tree per byte of JSON for small bodies */
    struct arena arena = {.next = len < ARENA_BLOCK_MAX / 8 ? len * 8 : ARENA_BLOCK_MAX};
    struct jnode *root = json_parse(&arena, body, len);
    if (root) {
        c->out->kind = RECOGNIZE_JSON;
        recognize_json(c, root);
    } else {
        c->out->kind = RECOGNIZE_INVALID;
        if (arena.failed)
            c->oom = true;
    }
    arena_free(&arena);
}
