/*
 * tls: building and choosing OpenSSL contexts (see tls.h). Every setting a
 * listener's handshakes depend on is applied to each certificate's context
 * alike, since SNI moves a handshake from the default context to another
 * one midway. Failures name the conf line that asked for the file.
 */
#include "tls.h"

#include "conn_tls.h"

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#define TLS_MAX_NAMES 64   /* names taken from one certificate for SNI */
#define TLS_NAME_MAX 256

struct tls_cert {
    SSL_CTX *ctx;
    char (*names)[TLS_NAME_MAX];  /* lower case; "*.example.com" for a wildcard */
    size_t n_names;
};

/*
 * What SNI chooses from. It belongs to the default context (ex_data, freed
 * with it), not to the set: a handshake that began before a reload freed
 * the set still holds the default context, and may choose after. It holds
 * a reference to every other context; none to the default (a cycle).
 */
struct sni_table {
    struct tls_cert certs[CONF_MAX_CERTS];
    size_t n_certs;
};

struct tls_set {
    struct sni_table *sni;         /* owned by certs[0]'s context */
    SSL_CTX *ctx[CONF_MAX_CERTS];  /* the set's own references */
    size_t n_certs;
    SSL_CTX *upstream[CONF_MAX_UPSTREAMS];
    size_t n_upstreams;
};

static int sni_index = -1;
static pthread_once_t sni_once = PTHREAD_ONCE_INIT;

static void sni_table_free(struct sni_table *st)
{
    for (size_t i = 0; i < st->n_certs; i++) {
        if (i > 0)
            SSL_CTX_free(st->certs[i].ctx);
        free(st->certs[i].names);
    }
    free(st);
}

static void sni_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                        void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (ptr)
        sni_table_free(ptr);
}

static void sni_index_init(void)
{
    sni_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, sni_ex_free);
}

/* The newest OpenSSL error as text, or FALLBACK. */
static const char *ssl_err(const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : fallback;
}

/* "PATH:LINE: WHAT: WHY"; LINE 0 for a default value. */
static void fail(char *err, size_t errlen, const struct conf *conf, int line, const char *what,
                 const char *why)
{
    snprintf(err, errlen, "%s:%d: %s: %s", conf->path, line, what, why);
    ERR_clear_error();
}

/* ---- listeners ------------------------------------------------------------ */

static int version_of(unsigned bit)
{
    switch (bit) {
    case CONF_TLS_V1_0:
        return TLS1_VERSION;
    case CONF_TLS_V1_1:
        return TLS1_1_VERSION;
    case CONF_TLS_V1_2:
        return TLS1_2_VERSION;
    default:
        return TLS1_3_VERSION;
    }
}

/* The lowest and highest versions asked for; OpenSSL takes a range. */
static void version_range(unsigned bits, int *lo, int *hi)
{
    static const unsigned order[] = {CONF_TLS_V1_0, CONF_TLS_V1_1, CONF_TLS_V1_2, CONF_TLS_V1_3};
    *lo = *hi = 0;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if (bits & order[i]) {
            if (!*lo)
                *lo = version_of(order[i]);
            *hi = version_of(order[i]);
        }
    }
    if (!*lo) {
        *lo = TLS1_2_VERSION;
        *hi = TLS1_3_VERSION;
    }
}

/* ALPN: HTTP/1.1 or nothing. A client that offers no ALPN at all is served. */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char h11[] = "\x08http/1.1";
    unsigned char *sel = NULL;
    unsigned char sel_len = 0;
    if (SSL_select_next_proto(&sel, &sel_len, h11, sizeof h11 - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    *outlen = sel_len;
    return SSL_TLSEXT_ERR_OK;
}

static bool name_matches(const char *pattern, const char *name)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *dot = strchr(name, '.');
        /* One label only, and never the bare domain. */
        return dot && dot != name && strcasecmp(dot, pattern + 1) == 0;
    }
    return strcasecmp(pattern, name) == 0;
}

static size_t sni_select(const struct sni_table *t, const char *name)
{
    if (!name || !*name)
        return 0;
    /* "api.example.com." is the same name, fully qualified. */
    char buf[TLS_NAME_MAX];
    size_t n = strlen(name);
    if (n > 1 && n < sizeof buf && name[n - 1] == '.') {
        memcpy(buf, name, n - 1);
        buf[n - 1] = '\0';
        name = buf;
    }
    for (int wild = 0; wild < 2; wild++)
        for (size_t i = 0; i < t->n_certs; i++)
            for (size_t k = 0; k < t->certs[i].n_names; k++) {
                const char *p = t->certs[i].names[k];
                if ((p[0] == '*') == (wild == 1) && name_matches(p, name))
                    return i;
            }
    return 0;
}

size_t tls_select(const struct tls_set *t, const char *name)
{
    return t->sni ? sni_select(t->sni, name) : 0;
}

static int sni_cb(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    const struct sni_table *t = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    size_t i = sni_select(t, name);
    if (i != 0 && !SSL_set_SSL_CTX(ssl, t->certs[i].ctx))
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

static void add_name(struct tls_cert *c, const char *s, size_t len)
{
    if (c->n_names >= TLS_MAX_NAMES || len == 0 || len >= TLS_NAME_MAX || memchr(s, 0, len))
        return;
    char *d = c->names[c->n_names++];
    for (size_t i = 0; i < len; i++)
        d[i] = (char)tolower((unsigned char)s[i]);
    d[len] = '\0';
}

/* The DNS names of the certificate: its SANs, or its CN when it has none. */
static void collect_names(struct tls_cert *c, X509 *x)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    if (sans) {
        for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
            if (g->type == GEN_DNS)
                add_name(c, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
                         (size_t)ASN1_STRING_length(g->d.dNSName));
        }
        GENERAL_NAMES_free(sans);
    }
    if (c->n_names == 0) {
        char cn[TLS_NAME_MAX];
        int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
        if (n > 0)
            add_name(c, cn, (size_t)n);
    }
}

static SSL_CTX *server_ctx(const struct conf *conf, const struct conf_cert *cc, char *err,
                           size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        fail(err, errlen, conf, cc->line, cc->certificate, ssl_err("out of memory"));
        return NULL;
    }
    int lo, hi;
    version_range(conf->tls_protocols, &lo, &hi);
    if (lo < TLS1_2_VERSION)
        SSL_CTX_set_security_level(ctx, 0);  /* asked for: TLS 1.0/1.1 need SHA-1 */
    SSL_CTX_set_min_proto_version(ctx, lo);
    SSL_CTX_set_max_proto_version(ctx, hi);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Idle connections give their buffers back (about 34 KiB each). */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_dh_auto(ctx, 1);
    /* One read per record rather than header then body (as nginx): half the
     * reads per request; what it takes beyond a record, conn_tls reports
     * as pending. */
    SSL_CTX_set_read_ahead(ctx, 1);
    if (SSL_CTX_set_cipher_list(ctx, conf->tls_ciphers) != 1) {
        fail(err, errlen, conf, conf->tls_ciphers_line, "ciphers",
             "no cipher in the list is known to OpenSSL");
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cc->certificate) != 1) {
        fail(err, errlen, conf, cc->line, cc->certificate, ssl_err("cannot be read"));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cc->key, SSL_FILETYPE_PEM) != 1) {
        fail(err, errlen, conf, cc->key_line, cc->key, ssl_err("cannot be read"));
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        fail(err, errlen, conf, cc->key_line, cc->key, "does not match the certificate before it");
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
    static const unsigned char sid[] = "envelopd";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* ---- upstreams ------------------------------------------------------------ */

static SSL_CTX *upstream_ctx(const struct conf *conf, const struct conf_upstream *u, char *err,
                             size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        fail(err, errlen, conf, u->line, u->name, "out of memory");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Not IGNORE_UNEXPECTED_EOF: from an upstream, an EOF without
     * close_notify may be a cut body (conn_tls.c tls_recv). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);
    /* Sessions are kept by the pools (the newest per server, conn_tls_new_session),
     * so a new pooled connection resumes rather than doing a full handshake. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, conn_tls_new_session);
    if (u->ca_file[0]) {
        if (SSL_CTX_load_verify_locations(ctx, u->ca_file, NULL) != 1) {
            fail(err, errlen, conf, u->line, u->ca_file, ssl_err("holds no certificate"));
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        fail(err, errlen, conf, u->line, u->name, "cannot load the system CA store");
        goto fail;
    }
    if (u->client_certificate[0]) {
        if (SSL_CTX_use_certificate_chain_file(ctx, u->client_certificate) != 1) {
            fail(err, errlen, conf, u->line, u->client_certificate, ssl_err("cannot be read"));
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, u->client_key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            fail(err, errlen, conf, u->line, u->client_key, ssl_err("does not match client_certificate"));
            goto fail;
        }
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* ---- the set -------------------------------------------------------------- */

/* Build the SNI table and hand it to the default context. 0 or -1. */
static int attach_sni(struct tls_set *t)
{
    if (pthread_once(&sni_once, sni_index_init) != 0 || sni_index < 0)
        return -1;
    struct sni_table *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
    for (size_t i = 0; i < t->n_certs; i++) {
        struct tls_cert *c = &st->certs[i];
        c->names = calloc(TLS_MAX_NAMES, sizeof *c->names);
        if (!c->names || (i > 0 && SSL_CTX_up_ref(t->ctx[i]) != 1)) {
            free(c->names);
            sni_table_free(st);
            return -1;
        }
        c->ctx = t->ctx[i];
        st->n_certs++;
        collect_names(c, SSL_CTX_get0_certificate(c->ctx));
    }
    if (SSL_CTX_set_ex_data(t->ctx[0], sni_index, st) != 1) {
        sni_table_free(st);
        return -1;
    }
    t->sni = st;
    /* Handshakes start on the default; SNI may move them (sni_cb). */
    SSL_CTX_set_tlsext_servername_callback(t->ctx[0], sni_cb);
    SSL_CTX_set_tlsext_servername_arg(t->ctx[0], st);
    return 0;
}

struct tls_set *tls_set_new(const struct conf *conf, char *err, size_t errlen)
{
    struct tls_set *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "%s:0: out of memory", conf->path);
        return NULL;
    }
    for (size_t i = 0; i < conf->n_certs; i++) {
        t->ctx[i] = server_ctx(conf, &conf->certs[i], err, errlen);
        if (!t->ctx[i])
            goto fail;
        t->n_certs++;
    }
    if (t->n_certs && attach_sni(t) != 0) {
        snprintf(err, errlen, "%s:0: out of memory", conf->path);
        goto fail;
    }
    for (size_t i = 0; i < conf->n_upstreams; i++) {
        if (!conf->upstreams[i].tls)
            continue;
        t->upstream[i] = upstream_ctx(conf, &conf->upstreams[i], err, errlen);
        if (!t->upstream[i])
            goto fail;
    }
    t->n_upstreams = conf->n_upstreams;
    return t;
fail:
    t->n_upstreams = conf->n_upstreams;
    tls_set_free(t);
    return NULL;
}

void tls_set_free(struct tls_set *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_certs; i++)
        SSL_CTX_free(t->ctx[i]);
    for (size_t i = 0; i < t->n_upstreams; i++)
        SSL_CTX_free(t->upstream[i]);
    free(t);
}

SSL_CTX *tls_server_ctx(const struct tls_set *t)
{
    return t && t->n_certs ? t->ctx[0] : NULL;
}

SSL_CTX *tls_upstream_ctx(const struct tls_set *t, size_t i)
{
    return t && i < t->n_upstreams ? t->upstream[i] : NULL;
}
