/*
 * apikey: key syntax, ids, records from Redis and the keys file, the
 * per-worker record cache and scopes; see apikey.h for the decisions. One
 * field parser serves Redis replies and keys-file lines, so a record means
 * the same wherever it is kept.
 */
#include "apikey.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#define APIKEY_FILE_SIZE_MAX ((size_t)1 << 30)

const char *apikey_status_str(enum apikey_status s)
{
    switch (s) {
    case APIKEY_ACTIVE:
        return "active";
    case APIKEY_REVOKED:
        return "revoked";
    case APIKEY_EXPIRED:
        return "expired";
    case APIKEY_UNKNOWN:
        return "unknown";
    case APIKEY_MALFORMED:
        return "malformed";
    case APIKEY_BAD_RECORD:
        return "bad record";
    case APIKEY_UNDECIDED:
        return "undecided";
    }
    return "?";
}

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_token68(unsigned char c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

static bool is_org_char(unsigned char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == ':' || c == '@' || c == '-';
}

static bool is_plan_char(unsigned char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

static bool is_scope_char(unsigned char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == ':' || c == '/' || c == '-';
}

static bool is_scope_sep(unsigned char c)
{
    return c == ',' || c == ' ';
}

bool apikey_well_formed(const char *key, size_t len, const char *prefix_required)
{
    if (!key || len == 0 || len > APIKEY_MAX)
        return false;
    size_t plen = prefix_required ? strlen(prefix_required) : 0;
    if (plen >= len || memcmp(key, prefix_required ? prefix_required : "", plen) != 0)
        return false;
    size_t i = 0;
    while (i < len && is_token68((unsigned char)key[i]))
        i++;
    if (i == 0)
        return false; /* "=" alone, or "==" */
    while (i < len && key[i] == '=')
        i++;
    return i == len;
}

static void hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

bool apikey_id(const unsigned char *secret, size_t secret_len, const char *key, size_t len,
               char out[APIKEY_ID_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (secret_len > INT32_MAX ||
        !HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)key, len, md, &mdlen) ||
        mdlen != APIKEY_ID_LEN / 2)
        return false;
    hex(md, mdlen, out);
    return true;
}

struct apikey_hasher {
    EVP_MAC *mac;
    EVP_MAC_CTX *ctx;
};

struct apikey_hasher *apikey_hasher_new(const unsigned char *secret, size_t secret_len)
{
    struct apikey_hasher *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    /* A zero-length key is legal HMAC, but OpenSSL wants a non-NULL pointer. */
    static const unsigned char none[1];
    h->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    h->ctx = h->mac ? EVP_MAC_CTX_new(h->mac) : NULL;
    if (!h->ctx || !EVP_MAC_init(h->ctx, secret_len ? secret : none, secret_len, params)) {
        apikey_hasher_free(h);
        return NULL;
    }
    return h;
}

void apikey_hasher_free(struct apikey_hasher *h)
{
    if (!h)
        return;
    EVP_MAC_CTX_free(h->ctx); /* cleanses the key schedule */
    EVP_MAC_free(h->mac);
    free(h);
}

bool apikey_hasher_id(struct apikey_hasher *h, const char *key, size_t len,
                      char out[APIKEY_ID_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t mdlen = 0;
    out[0] = '\0';
    /* A NULL key re-initializes with the key already set (OpenSSL >= 3.0). */
    if (!EVP_MAC_init(h->ctx, NULL, 0, NULL) ||
        !EVP_MAC_update(h->ctx, (const unsigned char *)key, len) ||
        !EVP_MAC_final(h->ctx, md, &mdlen, sizeof md) || mdlen != APIKEY_ID_LEN / 2)
        return false;
    hex(md, mdlen, out);
    return true;
}

size_t apikey_redis_key(const char *prefix, const char *id, char *out, size_t cap)
{
    static const char open[] = "{", close[] = "}:apikey";
    size_t pl = prefix ? strlen(prefix) : 0, il = strlen(id);
    size_t need = pl + il + sizeof open - 1 + sizeof close - 1;
    if (cap > 0)
        out[0] = '\0';
    if (need >= cap)
        return 0;
    memcpy(out, prefix ? prefix : "", pl);
    memcpy(out + pl, open, sizeof open - 1);
    memcpy(out + pl + 1, id, il);
    memcpy(out + pl + 1 + il, close, sizeof close);
    return need;
}

/* ---- records ---- */

enum fld { F_STATUS, F_ORG, F_SCOPES, F_PLAN, F_EXPIRES, F_UNKNOWN };

static enum fld field_of(const char *name, size_t len)
{
    static const struct {
        const char *name;
        size_t len;
    } names[] = {{"status", 6}, {"org", 3}, {"scopes", 6}, {"plan", 4}, {"expires_at", 10}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (len == names[i].len && memcmp(name, names[i].name, len) == 0)
            return (enum fld)i;
    return F_UNKNOWN;
}

/* What a record says before the clock: ACTIVE, REVOKED or (no status) UNKNOWN. */
struct parsed {
    enum apikey_status status;
    bool seen[F_UNKNOWN];
    const char *why; /* the first problem, NULL if none */
};

static void problem(struct parsed *p, const char *why)
{
    if (!p->why)
        p->why = why;
}

static bool copy_name(const char *v, size_t len, size_t min, size_t cap, bool (*ok)(unsigned char),
                      char *dst)
{
    if (len < min || len >= cap)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!ok((unsigned char)v[i]))
            return false;
    memcpy(dst, v, len);
    dst[len] = '\0';
    return true;
}

/* SCOPES normalized into DST ("a,b"); false if a byte is neither a scope byte nor a separator. */
static bool copy_scopes(const char *v, size_t len, char *dst)
{
    size_t o = 0;
    if (len >= APIKEY_SCOPES_MAX)
        return false;
    for (size_t i = 0; i < len;) {
        if (is_scope_sep((unsigned char)v[i])) {
            i++;
            continue;
        }
        if (!is_scope_char((unsigned char)v[i])) {
            dst[0] = '\0';
            return false;
        }
        if (o > 0)
            dst[o++] = ',';
        while (i < len && is_scope_char((unsigned char)v[i]))
            dst[o++] = v[i++];
    }
    dst[o] = '\0';
    return true;
}

static bool parse_u64(const char *v, size_t len, uint64_t *out)
{
    uint64_t n = 0;
    if (len == 0 || len > 20)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        unsigned d = (unsigned)(v[i] - '0');
        if (n > (UINT64_MAX - d) / 10)
            return false;
        n = n * 10 + d;
    }
    *out = n;
    return true;
}

/* One field/value pair into OUT; unknown fields are the caller's business. */
static void parse_field(struct parsed *p, enum fld f, const char *v, size_t len,
                        struct apikey_record *out)
{
    if (p->seen[f]) {
        problem(p, "a field is given twice");
        return;
    }
    p->seen[f] = true;
    switch (f) {
    case F_STATUS:
        if (len == 6 && memcmp(v, "active", 6) == 0)
            p->status = APIKEY_ACTIVE;
        else if (len == 7 && memcmp(v, "revoked", 7) == 0)
            p->status = APIKEY_REVOKED;
        else
            problem(p, "status is neither active nor revoked");
        break;
    case F_ORG:
        if (!copy_name(v, len, 1, APIKEY_ORG_MAX, is_org_char, out->org))
            problem(p, "org is not 1-127 characters of A-Z a-z 0-9 . _ : @ -");
        break;
    case F_SCOPES:
        if (!copy_scopes(v, len, out->scopes))
            problem(p, "scopes are not up to 511 characters of A-Z a-z 0-9 . _ : / - "
                       "separated by commas");
        break;
    case F_PLAN:
        if (!copy_name(v, len, 0, APIKEY_PLAN_MAX, is_plan_char, out->plan))
            problem(p, "plan is not up to 63 characters of A-Z a-z 0-9 . _ -");
        break;
    case F_EXPIRES:
        if (!parse_u64(v, len, &out->expires_at))
            problem(p, "expires_at is not a number of seconds (0: never)");
        break;
    case F_UNKNOWN:
        break;
    }
}

/* Checks that need every field; call once all are parsed. */
static void parse_done(struct parsed *p, const struct apikey_record *out)
{
    if (!p->seen[F_STATUS])
        problem(p, "no status");
    else if (p->status == APIKEY_ACTIVE && !out->org[0])
        problem(p, "an active key needs an org");
}

static void record_init(struct apikey_record *out, const char *id)
{
    memset(out, 0, sizeof *out);
    out->status = APIKEY_UNKNOWN;
    if (id) {
        size_t n = strnlen(id, APIKEY_ID_LEN);
        memcpy(out->id, id, n);
        out->id[n] = '\0';
    }
}

static enum apikey_status with_clock(enum apikey_status s, uint64_t expires_at, uint64_t now_s)
{
    if (s == APIKEY_ACTIVE && expires_at != 0 && now_s >= expires_at)
        return APIKEY_EXPIRED;
    return s;
}

/* Redis' verdict: revoked wins, then a bad record, then the clock. */
static enum apikey_status verdict(const struct parsed *p, const struct apikey_record *out,
                                  uint64_t now_s)
{
    if (p->seen[F_STATUS] && p->status == APIKEY_REVOKED)
        return APIKEY_REVOKED;
    if (p->why)
        return APIKEY_BAD_RECORD;
    return with_clock(p->status, out->expires_at, now_s);
}

enum apikey_status apikey_from_fields(const char *id, const char *const *fields, const size_t *lens,
                                      size_t n, uint64_t now_s, struct apikey_record *out)
{
    record_init(out, id);
    if (n == 0)
        return out->status = APIKEY_UNKNOWN;
    if (n % 2 != 0)
        return out->status = APIKEY_BAD_RECORD;
    struct parsed p = {.status = APIKEY_UNKNOWN};
    for (size_t i = 0; i + 1 < n; i += 2) {
        enum fld f = field_of(fields[i], lens[i]);
        if (f != F_UNKNOWN)
            parse_field(&p, f, fields[i + 1], lens[i + 1], out);
    }
    parse_done(&p, out);
    return out->status = verdict(&p, out, now_s);
}

/* HGETALL never answers more pairs than this for one of our records that
 * is worth reading; a bigger hash is not ours. */
#define APIKEY_REPLY_MAX_ELEMENTS 256

enum apikey_status apikey_from_reply(const char *id, const redisReply *r, uint64_t now_s,
                                     struct apikey_record *out)
{
    record_init(out, id);
    if (!r)
        return out->status = APIKEY_UNDECIDED;
    if (r->type == REDIS_REPLY_NIL)
        return out->status = APIKEY_UNKNOWN;
    if (r->type != REDIS_REPLY_ARRAY)
        return out->status = APIKEY_UNDECIDED;
    if (r->elements > APIKEY_REPLY_MAX_ELEMENTS)
        return out->status = APIKEY_BAD_RECORD;
    const char *f[APIKEY_REPLY_MAX_ELEMENTS];
    size_t l[APIKEY_REPLY_MAX_ELEMENTS];
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (!e || (e->type != REDIS_REPLY_STRING && e->type != REDIS_REPLY_STATUS))
            return out->status = APIKEY_BAD_RECORD;
        f[i] = e->str;
        l[i] = e->len;
    }
    return apikey_from_fields(id, f, l, r->elements, now_s, out);
}

/* ---- ids as bytes (the file table) ---- */

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* ID[0..len) as 32 bytes: exactly 64 hex digits, either case. */
static bool id_bytes(const char *id, size_t len, unsigned char out[APIKEY_ID_LEN / 2])
{
    if (len != APIKEY_ID_LEN)
        return false;
    for (size_t i = 0; i < APIKEY_ID_LEN / 2; i++) {
        int hi = hexval((unsigned char)id[2 * i]), lo = hexval((unsigned char)id[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

/* The id is an HMAC output, uniform and not chosen by callers: its first bytes are the hash. */
static uint32_t id_hash(const unsigned char id[APIKEY_ID_LEN / 2])
{
    return (uint32_t)id[0] | (uint32_t)id[1] << 8 | (uint32_t)id[2] << 16 | (uint32_t)id[3] << 24;
}

/* ---- the keys file ---- */

#define NIL UINT32_MAX

struct fentry {
    unsigned char id[APIKEY_ID_LEN / 2];
    uint64_t expires_at;
    uint32_t strings; /* org, scopes, plan: NUL-terminated in a row in the arena */
    uint32_t line;
    uint32_t next; /* bucket chain */
    uint8_t status;
};

struct apikey_file {
    struct fentry *e;
    size_t n, cap;
    char *arena;
    size_t arena_len, arena_cap;
    uint32_t *bucket;
    uint32_t mask;
};

void apikey_file_free(struct apikey_file *f)
{
    if (!f)
        return;
    free(f->e);
    free(f->arena);
    free(f->bucket);
    free(f);
}

size_t apikey_file_count(const struct apikey_file *f)
{
    return f ? f->n : 0;
}

static bool arena_add(struct apikey_file *f, const char *s)
{
    size_t n = strlen(s) + 1;
    if (f->arena_len + n > f->arena_cap) {
        size_t cap = f->arena_cap ? f->arena_cap * 2 : 4096;
        while (cap < f->arena_len + n)
            cap *= 2;
        if (cap > UINT32_MAX)
            return false;
        char *a = realloc(f->arena, cap);
        if (!a)
            return false;
        f->arena = a;
        f->arena_cap = cap;
    }
    memcpy(f->arena + f->arena_len, s, n);
    f->arena_len += n;
    return true;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Parse line LINE[0..len) (no line ending) into F; the problem into *WHY. */
static bool file_line(struct apikey_file *f, const char *line, size_t len, uint32_t lineno,
                      const char **why)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t') || c >= 0x7f) {
            *why = "a control character or a non-ASCII byte";
            return false;
        }
    }
    size_t i = 0;
    while (i < len && is_blank(line[i]))
        i++;
    if (i == len || line[i] == '#')
        return true;
    size_t id_start = i;
    while (i < len && !is_blank(line[i]))
        i++;
    unsigned char id[APIKEY_ID_LEN / 2];
    if (!id_bytes(line + id_start, i - id_start, id)) {
        *why = "the line does not start with an id (64 hex digits, as printed by "
               "envelopd-keys hash)";
        return false;
    }
    struct apikey_record rec;
    record_init(&rec, NULL);
    struct parsed p = {.status = APIKEY_UNKNOWN};
    for (;;) {
        while (i < len && is_blank(line[i]))
            i++;
        if (i == len || line[i] == '#')
            break;
        size_t t = i;
        while (i < len && !is_blank(line[i]))
            i++;
        const char *eq = memchr(line + t, '=', i - t);
        if (!eq) {
            *why = "expected NAME=VALUE after the id";
            return false;
        }
        enum fld fl = field_of(line + t, (size_t)(eq - (line + t)));
        if (fl == F_UNKNOWN) {
            *why = "unknown field (status, org, scopes, plan, expires_at)";
            return false;
        }
        parse_field(&p, fl, eq + 1, (size_t)(line + i - (eq + 1)), &rec);
        if (p.why) {
            *why = p.why;
            return false;
        }
    }
    parse_done(&p, &rec);
    if (p.why) {
        *why = p.why;
        return false;
    }
    if (f->n >= APIKEY_FILE_MAX_KEYS) {
        *why = "too many keys";
        return false;
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        struct fentry *e = realloc(f->e, cap * sizeof *e);
        if (!e) {
            *why = "out of memory";
            return false;
        }
        f->e = e;
        f->cap = cap;
    }
    struct fentry *e = &f->e[f->n];
    memcpy(e->id, id, sizeof id);
    e->expires_at = rec.expires_at;
    e->status = (uint8_t)p.status;
    e->line = lineno;
    e->next = NIL;
    e->strings = (uint32_t)f->arena_len;
    if (!arena_add(f, rec.org) || !arena_add(f, rec.scopes) || !arena_add(f, rec.plan)) {
        *why = "out of memory";
        return false;
    }
    f->n++;
    return true;
}

/* The bucket table, in file order so a duplicate is reported on its later line. */
static bool file_index(struct apikey_file *f, const char **why, uint32_t *line, uint32_t *first)
{
    size_t nb = 16;
    while (nb < 2 * f->n)
        nb *= 2;
    f->bucket = malloc(nb * sizeof *f->bucket);
    if (!f->bucket) {
        *why = "out of memory";
        return false;
    }
    memset(f->bucket, 0xff, nb * sizeof *f->bucket);
    f->mask = (uint32_t)(nb - 1);
    for (uint32_t k = 0; k < f->n; k++) {
        struct fentry *e = &f->e[k];
        uint32_t *slot = &f->bucket[id_hash(e->id) & f->mask];
        for (uint32_t j = *slot; j != NIL; j = f->e[j].next) {
            if (memcmp(f->e[j].id, e->id, sizeof e->id) == 0) {
                *why = "duplicate id";
                *line = e->line;
                *first = f->e[j].line;
                return false;
            }
        }
        e->next = *slot;
        *slot = k;
    }
    return true;
}

struct apikey_file *apikey_file_load(const char *path, char *err, size_t errlen)
{
    char eb[128];
    if (errlen)
        err[0] = '\0';
    FILE *fp = fopen(path, "re");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror_r(errno, eb, sizeof eb));
        return NULL;
    }
    struct apikey_file *f = calloc(1, sizeof *f);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    bool ok = f != NULL;
    while (ok) {
        if (cap - len < 65536) {
            if (cap >= APIKEY_FILE_SIZE_MAX) {
                snprintf(err, errlen, "%s: larger than %zu bytes", path, APIKEY_FILE_SIZE_MAX);
                ok = false;
                break;
            }
            size_t ncap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                snprintf(err, errlen, "%s: out of memory", path);
                ok = false;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0) {
            if (ferror(fp)) {
                snprintf(err, errlen, "%s: cannot be read", path);
                ok = false;
            }
            break;
        }
    }
    fclose(fp);
    if (!f && errlen)
        snprintf(err, errlen, "%s: out of memory", path);
    const char *why = NULL;
    uint32_t lineno = 0;
    for (size_t at = 0; ok && at < len;) {
        const char *nl = memchr(buf + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - buf) : len;
        size_t l = end - at;
        lineno++;
        if (l > 0 && buf[at + l - 1] == '\r')
            l--;
        if (l > APIKEY_FILE_LINE_MAX) {
            why = "line longer than 2048 characters";
            ok = false;
        } else if (!file_line(f, buf + at, l, lineno, &why)) {
            ok = false;
        }
        at = end + 1;
    }
    if (!ok && why)
        snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
    uint32_t dup = 0, first = 0;
    if (ok && !file_index(f, &why, &dup, &first)) {
        ok = false;
        if (dup)
            snprintf(err, errlen, "%s:%u: %s (first on line %u)", path, dup, why, first);
        else
            snprintf(err, errlen, "%s: %s", path, why);
    }
    free(buf);
    if (!ok) {
        apikey_file_free(f);
        return NULL;
    }
    return f;
}

bool apikey_file_find(const struct apikey_file *f, const char *id, uint64_t now_s,
                      struct apikey_record *out)
{
    record_init(out, id);
    unsigned char b[APIKEY_ID_LEN / 2];
    if (!f || !id || !id_bytes(id, strnlen(id, APIKEY_ID_LEN + 1), b))
        return false;
    for (uint32_t j = f->bucket[id_hash(b) & f->mask]; j != NIL; j = f->e[j].next) {
        const struct fentry *e = &f->e[j];
        if (memcmp(e->id, b, sizeof b) != 0)
            continue;
        const char *s = f->arena + e->strings;
        size_t n = strlen(s);
        memcpy(out->org, s, n + 1);
        s += n + 1;
        n = strlen(s);
        memcpy(out->scopes, s, n + 1);
        s += n + 1;
        n = strlen(s);
        memcpy(out->plan, s, n + 1);
        hex(e->id, sizeof e->id, out->id);
        out->expires_at = e->expires_at;
        out->status = with_clock((enum apikey_status)e->status, e->expires_at, now_s);
        return true;
    }
    return false;
}

/* ---- the cache ---- */

struct centry {
    char id[APIKEY_ID_LEN + 1];
    uint64_t until_ms;
    uint32_t prev, next; /* LRU list, most recent first; free list through next */
    uint32_t chain; /* bucket chain */
    struct apikey_record rec;
};

struct apikey_cache {
    struct centry *e;
    size_t cap, n;
    uint32_t *bucket;
    uint32_t mask;
    uint32_t head, tail, free;
};

static uint32_t str_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a: ids are HMAC outputs, tests use anything */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

struct apikey_cache *apikey_cache_new(size_t capacity)
{
    if (capacity > UINT32_MAX / 4)
        return NULL;
    struct apikey_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    size_t nb = 16;
    while (nb < 2 * capacity)
        nb *= 2;
    c->cap = capacity;
    c->e = capacity ? calloc(capacity, sizeof *c->e) : NULL;
    c->bucket = malloc(nb * sizeof *c->bucket);
    if ((capacity && !c->e) || !c->bucket) {
        apikey_cache_free(c);
        return NULL;
    }
    c->mask = (uint32_t)(nb - 1);
    apikey_cache_clear(c);
    return c;
}

void apikey_cache_free(struct apikey_cache *c)
{
    if (!c)
        return;
    free(c->e);
    free(c->bucket);
    free(c);
}

void apikey_cache_clear(struct apikey_cache *c)
{
    memset(c->bucket, 0xff, ((size_t)c->mask + 1) * sizeof *c->bucket);
    c->head = c->tail = NIL;
    c->n = 0;
    c->free = c->cap ? 0 : NIL;
    for (size_t i = 0; i < c->cap; i++)
        c->e[i].next = i + 1 < c->cap ? (uint32_t)(i + 1) : NIL;
}

size_t apikey_cache_count(const struct apikey_cache *c)
{
    return c->n;
}

static void lru_unlink(struct apikey_cache *c, uint32_t k)
{
    struct centry *e = &c->e[k];
    if (e->prev != NIL)
        c->e[e->prev].next = e->next;
    else
        c->head = e->next;
    if (e->next != NIL)
        c->e[e->next].prev = e->prev;
    else
        c->tail = e->prev;
}

static void lru_front(struct apikey_cache *c, uint32_t k)
{
    struct centry *e = &c->e[k];
    e->prev = NIL;
    e->next = c->head;
    if (c->head != NIL)
        c->e[c->head].prev = k;
    c->head = k;
    if (c->tail == NIL)
        c->tail = k;
}

/* The slot holding K's index in its bucket chain, for lookups and removal. */
static uint32_t *chain_slot(struct apikey_cache *c, const char *id, size_t n)
{
    uint32_t *slot = &c->bucket[str_hash(id, n) & c->mask];
    while (*slot != NIL) {
        struct centry *e = &c->e[*slot];
        if (strncmp(e->id, id, n) == 0 && e->id[n] == '\0')
            return slot;
        slot = &e->chain;
    }
    return slot;
}

static void cache_remove(struct apikey_cache *c, uint32_t *slot)
{
    uint32_t k = *slot;
    *slot = c->e[k].chain;
    lru_unlink(c, k);
    c->e[k].next = c->free;
    c->free = k;
    c->n--;
}

/* An id the cache takes: 1..64 bytes, NUL terminated. */
static bool cache_id(const char *id, size_t *n)
{
    if (!id)
        return false;
    *n = strnlen(id, APIKEY_ID_LEN + 1);
    return *n > 0 && *n <= APIKEY_ID_LEN;
}

bool apikey_cache_get(struct apikey_cache *c, const char *id, uint64_t now_ms,
                      struct apikey_record *out)
{
    size_t n;
    if (!c->cap || !cache_id(id, &n))
        return false;
    uint32_t *slot = chain_slot(c, id, n);
    if (*slot == NIL)
        return false;
    struct centry *e = &c->e[*slot];
    if (now_ms >= e->until_ms) {
        cache_remove(c, slot);
        return false;
    }
    lru_unlink(c, *slot);
    lru_front(c, *slot);
    *out = e->rec;
    out->status = with_clock(e->rec.status, e->rec.expires_at, now_ms / 1000);
    return true;
}

void apikey_cache_put(struct apikey_cache *c, const char *id, const struct apikey_record *rec,
                      uint64_t now_ms, uint64_t ttl_ms)
{
    size_t n;
    if (!c->cap || !cache_id(id, &n))
        return;
    uint32_t *slot = chain_slot(c, id, n);
    bool storable = ttl_ms > 0 && rec->status != APIKEY_MALFORMED &&
                    rec->status != APIKEY_UNDECIDED;
    if (!storable) {
        if (*slot != NIL)
            cache_remove(c, slot);
        return;
    }
    uint32_t k = *slot;
    if (k == NIL) {
        if (c->free == NIL) {
            /* Full: the least recently used goes. Its removal may move
             * the chain SLOT points into, so look again afterwards. */
            uint32_t old = c->tail;
            struct centry *o = &c->e[old];
            cache_remove(c, chain_slot(c, o->id, strlen(o->id)));
            slot = chain_slot(c, id, n);
        }
        k = c->free;
        c->free = c->e[k].next;
        c->n++;
        memcpy(c->e[k].id, id, n);
        c->e[k].id[n] = '\0';
        c->e[k].chain = *slot;
        *slot = k;
    } else {
        lru_unlink(c, k);
    }
    lru_front(c, k);
    struct centry *e = &c->e[k];
    e->until_ms = now_ms > UINT64_MAX - ttl_ms ? UINT64_MAX : now_ms + ttl_ms;
    e->rec = *rec;
    memcpy(e->rec.id, e->id, n + 1);
}

/* ---- scopes ---- */

bool apikey_scope_granted(const char *scopes, const char *required)
{
    if (!scopes || !required)
        return false;
    size_t rl = strlen(required);
    if (rl == 0)
        return false;
    for (size_t i = 0; i < rl; i++)
        if (is_scope_sep((unsigned char)required[i]) || required[i] == '\t')
            return false;
    const char *s = scopes;
    while (*s) {
        while (*s && (is_scope_sep((unsigned char)*s) || *s == '\t'))
            s++;
        const char *t = s;
        while (*s && !is_scope_sep((unsigned char)*s) && *s != '\t')
            s++;
        if ((size_t)(s - t) == rl && memcmp(t, required, rl) == 0)
            return true;
    }
    return false;
}
