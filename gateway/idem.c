/*
 * idem: Idempotency-Key's key, the request fingerprint, and the claim and
 * response a key holds in the store (see idem.h). The stored forms are
 * line-based text with a version line first: readable with redis-cli when
 * an operator has to look, and strict to read back (every line complete,
 * every field bounded, nothing after the body).
 */
#include "idem.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define RECORD_MAGIC "envelopd-idem-response 1\n"
#define CLAIM_MAGIC "envelopd-idem-claim 1\n"

/* ---- the key ---------------------------------------------------------------------------- */

static bool bare_key_char(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\\' && ch != ',' && ch != ';';
}

size_t idem_key_parse(const char *v, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    if (!v || len == 0 || cap <= IDEM_KEY_MAX)
        return 0;
    if (v[0] == '"') {
        /* sf-string (RFC 8941 3.3.3): printable ASCII, \" and \\ escaped */
        if (len < 2 || v[len - 1] != '"')
            return 0;
        for (size_t i = 1; i < len - 1; i++) {
            unsigned char ch = (unsigned char)v[i];
            if (ch == '\\') {
                if (i + 1 >= len - 1 || (v[i + 1] != '"' && v[i + 1] != '\\'))
                    return 0;
                ch = (unsigned char)v[++i];
            } else if (ch == '"' || ch < 0x20 || ch > 0x7e) {
                return 0;
            }
            if (n >= IDEM_KEY_MAX)
                return 0;
            out[n++] = (char)ch;
        }
    } else {
        if (len > IDEM_KEY_MAX)
            return 0;
        for (size_t i = 0; i < len; i++) {
            if (!bare_key_char((unsigned char)v[i]))
                return 0;
            out[n++] = v[i];
        }
    }
    if (n == 0)
        return 0;
    out[n] = '\0';
    return n;
}

/* ---- the fingerprint -------------------------------------------------------------------- */

int idem_fp_init(struct idem_fp *fp)
{
    fp->open = false;
    fp->ctx = EVP_MD_CTX_new();
    return fp->ctx ? 0 : -1;
}

void idem_fp_free(struct idem_fp *fp)
{
    EVP_MD_CTX_free(fp->ctx);
    fp->ctx = NULL;
    fp->open = false;
}

/* LEN as 8 bytes, then the bytes: no two sequences of fields feed the same. */
static bool feed_field(EVP_MD_CTX *ctx, const void *p, size_t len)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)len >> (8 * i));
    return EVP_DigestUpdate(ctx, b, sizeof b) == 1 && (len == 0 || EVP_DigestUpdate(ctx, p, len) == 1);
}

int idem_fp_begin(struct idem_fp *fp, const EVP_MD *md, const char *method, const char *path,
                  size_t path_len, const char *query, size_t query_len)
{
    fp->open = false;
    if (!fp->ctx || !md || !method || (!path && path_len) || (!query && query_len))
        return -1;
    if (EVP_DigestInit_ex2(fp->ctx, md, NULL) != 1 ||
        !feed_field(fp->ctx, method, strlen(method)) || !feed_field(fp->ctx, path, path_len) ||
        !feed_field(fp->ctx, query, query_len))
        return -1;
    fp->open = true;
    return 0;
}

int idem_fp_body(struct idem_fp *fp, const void *data, size_t len)
{
    if (!fp->open)
        return -1;
    if (len && EVP_DigestUpdate(fp->ctx, data, len) != 1) {
        fp->open = false;
        return -1;
    }
    return 0;
}

int idem_fp_end(struct idem_fp *fp, unsigned char out[IDEM_FP_LEN])
{
    unsigned int n = 0;
    if (!fp->open)
        return -1;
    fp->open = false;
    return EVP_DigestFinal_ex(fp->ctx, out, &n) == 1 && n == IDEM_FP_LEN ? 0 : -1;
}

/* ---- stored headers ---------------------------------------------------------------------- */

bool idem_header_stored(const char *name, size_t len)
{
    /* what describes the representation, how it may be cached, where it
     * is, and when to come back: nothing that authenticates or sets state */
    static const char *const kept[] = {
        "Content-Type", "Content-Language", "Content-Encoding", "Content-Location",
        "Content-Disposition", "Location", "ETag", "Last-Modified", "Cache-Control", "Expires",
        "Vary", "Link", "Retry-After", "Deprecation", "Sunset",
    };
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        if (strlen(kept[i]) == len && strncasecmp(kept[i], name, len) == 0)
            return true;
    return false;
}

/* ---- encoding --------------------------------------------------------------------------- */

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 256)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i]))
            return false;
    return true;
}

/* A header value or an ID on one line: no CR, LF or NUL (and for IDs, printable). */
static bool text_ok(const char *s, size_t n, size_t max, bool printable)
{
    if (n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n' || c == 0)
            return false;
        if (printable && (c <= 0x20 || c >= 0x7f))
            return false;
    }
    return true;
}

static const char hexdig[] = "0123456789abcdef";

/* Bounded appends: *LEN grows even past CAP, so a short buffer is found out. */
struct out {
    char *p;
    size_t cap, len;
};

static void put(struct out *o, const void *s, size_t n)
{
    if (n && o->p && o->len + n <= o->cap)  /* n == 0: S may be NULL (no body) */
        memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void put_str(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_uint(struct out *o, uint64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    put(o, b, (size_t)n);
}

static void put_fp(struct out *o, const unsigned char fp[IDEM_FP_LEN])
{
    char b[2 * IDEM_FP_LEN];
    for (size_t i = 0; i < IDEM_FP_LEN; i++) {
        b[2 * i] = hexdig[fp[i] >> 4];
        b[2 * i + 1] = hexdig[fp[i] & 15];
    }
    put_str(o, "fp ");
    put(o, b, sizeof b);
    put_str(o, "\n");
}

static bool record_ok(const struct idem_record *r)
{
    if (r->status < 200 || r->status > 499 || r->n_headers > IDEM_MAX_HEADERS ||
        !r->request_id || r->request_id_len == 0 ||
        !text_ok(r->request_id, r->request_id_len, IDEM_ID_MAX, true) ||
        (!r->body && r->body_len))
        return false;
    for (size_t i = 0; i < r->n_headers; i++) {
        const struct idem_header *h = &r->headers[i];
        if (!name_ok(h->name, h->name_len) || !text_ok(h->value, h->value_len, IDEM_HEADER_MAX,
                                                       false))
            return false;
    }
    return true;
}

static void record_write(const struct idem_record *r, struct out *o)
{
    put_str(o, RECORD_MAGIC);
    put_str(o, "status ");
    put_uint(o, (uint64_t)r->status);
    put_str(o, "\n");
    put_fp(o, r->fp);
    put_str(o, "id ");
    put(o, r->request_id, r->request_id_len);
    put_str(o, "\n");
    for (size_t i = 0; i < r->n_headers; i++) {
        put_str(o, "h ");
        put(o, r->headers[i].name, r->headers[i].name_len);
        put_str(o, ": ");
        put(o, r->headers[i].value, r->headers[i].value_len);
        put_str(o, "\n");
    }
    put_str(o, "body ");
    put_uint(o, r->body_len);
    put_str(o, "\n");
    put(o, r->body, r->body_len);
}

size_t idem_record_size(const struct idem_record *r)
{
    if (!record_ok(r))
        return 0;
    struct out o = {NULL, 0, 0};
    record_write(r, &o);
    return o.len;
}

size_t idem_record_encode(const struct idem_record *r, char *out, size_t cap)
{
    if (!record_ok(r) || !out)
        return 0;
    struct out o = {out, cap, 0};
    record_write(r, &o);
    return o.len <= cap ? o.len : 0;
}

static bool claim_ok(const struct idem_claim *c)
{
    return c->request_id && c->request_id_len &&
           text_ok(c->request_id, c->request_id_len, IDEM_ID_MAX, true);
}

static void claim_write(const struct idem_claim *c, struct out *o)
{
    put_str(o, CLAIM_MAGIC);
    put_fp(o, c->fp);
    put_str(o, "id ");
    put(o, c->request_id, c->request_id_len);
    put_str(o, "\n");
}

size_t idem_claim_size(const struct idem_claim *c)
{
    if (!claim_ok(c))
        return 0;
    struct out o = {NULL, 0, 0};
    claim_write(c, &o);
    return o.len;
}

size_t idem_claim_encode(const struct idem_claim *c, char *out, size_t cap)
{
    if (!claim_ok(c) || !out)
        return 0;
    struct out o = {out, cap, 0};
    claim_write(c, &o);
    return o.len <= cap ? o.len : 0;
}

/* ---- decoding --------------------------------------------------------------------------- */

struct in {
    const char *p, *end;
};

/* The next line (without its \n) when it starts with TAG; false otherwise. */
static bool line(struct in *in, const char *tag, const char **val, size_t *vlen)
{
    size_t tl = strlen(tag);
    const char *nl = memchr(in->p, '\n', (size_t)(in->end - in->p));
    if (!nl || (size_t)(nl - in->p) < tl || memcmp(in->p, tag, tl) != 0)
        return false;
    *val = in->p + tl;
    *vlen = (size_t)(nl - *val);
    in->p = nl + 1;
    return true;
}

/* Decimal digits only, no sign, no leading zero (but "0"), at most MAX. */
static bool number(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool fp_line(struct in *in, unsigned char fp[IDEM_FP_LEN])
{
    const char *v;
    size_t n;
    if (!line(in, "fp ", &v, &n) || n != 2 * IDEM_FP_LEN)
        return false;
    for (size_t i = 0; i < IDEM_FP_LEN; i++) {
        int hi = hexval(v[2 * i]), lo = hexval(v[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        fp[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

static bool id_line(struct in *in, const char **id, size_t *len)
{
    return line(in, "id ", id, len) && *len > 0 && text_ok(*id, *len, IDEM_ID_MAX, true);
}

bool idem_record_decode(const char *buf, size_t len, struct idem_record *r)
{
    memset(r, 0, sizeof *r);
    if (!buf || len < sizeof RECORD_MAGIC - 1 ||
        memcmp(buf, RECORD_MAGIC, sizeof RECORD_MAGIC - 1) != 0)
        return false;
    struct in in = {buf + sizeof RECORD_MAGIC - 1, buf + len};
    const char *v;
    size_t n;
    uint64_t num;
    if (!line(&in, "status ", &v, &n) || !number(v, n, 499, &num) || num < 200)
        return false;
    r->status = (int)num;
    if (!fp_line(&in, r->fp) || !id_line(&in, &r->request_id, &r->request_id_len))
        return false;
    while (line(&in, "h ", &v, &n)) {
        const char *colon = memchr(v, ':', n);
        if (!colon || r->n_headers >= IDEM_MAX_HEADERS)
            return false;
        struct idem_header *h = &r->headers[r->n_headers++];
        h->name = v;
        h->name_len = (size_t)(colon - v);
        if ((size_t)(colon - v) + 2 > n || colon[1] != ' ')
            return false;
        h->value = colon + 2;
        h->value_len = n - h->name_len - 2;
        if (!name_ok(h->name, h->name_len) || !text_ok(h->value, h->value_len, IDEM_HEADER_MAX,
                                                       false))
            return false;
    }
    if (!line(&in, "body ", &v, &n) || !number(v, n, UINT32_MAX, &num) ||
        num != (uint64_t)(in.end - in.p))
        return false;  /* the body is the rest, exactly */
    r->body = in.p;
    r->body_len = (size_t)num;
    return true;
}

bool idem_claim_decode(const char *buf, size_t len, struct idem_claim *c)
{
    memset(c, 0, sizeof *c);
    if (!buf || len < sizeof CLAIM_MAGIC - 1 ||
        memcmp(buf, CLAIM_MAGIC, sizeof CLAIM_MAGIC - 1) != 0)
        return false;
    struct in in = {buf + sizeof CLAIM_MAGIC - 1, buf + len};
    return fp_line(&in, c->fp) && id_line(&in, &c->request_id, &c->request_id_len) &&
           in.p == in.end;
}

enum idem_kind idem_stored_kind(const char *buf, size_t len)
{
    if (!buf || len == 0)
        return IDEM_NONE;
    struct idem_record r;
    struct idem_claim c;
    if (idem_claim_decode(buf, len, &c))
        return IDEM_CLAIM;
    if (idem_record_decode(buf, len, &r))
        return IDEM_RECORD;
    return IDEM_BAD;
}
