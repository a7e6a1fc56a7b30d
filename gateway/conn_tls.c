/*
 * conn_tls: OpenSSL on a conn's socket (see conn_tls.h). Each call clears
 * the thread's OpenSSL error queue first, since SSL_get_error reads it and
 * a stale entry from another connection would turn a "want read" into a
 * failure. Writes gather the output's small chains into one record-sized
 * buffer: a record per evbuffer chain would cost a header, a MAC and a
 * syscall's share each. Partial writes and a moving write buffer are on,
 * so a write the kernel refused is retried with whatever the output then
 * starts with (the same bytes, since nothing is drained until written).
 */
#include "conn_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

/* One TLS record's worth of plaintext. */
#define TLS_RECORD 16384

static _Thread_local unsigned char gather[TLS_RECORD];

static SSL *ssl_of(const struct conn *c)
{
    return c->tr == &conn_tls ? c->tr_ctx : NULL;
}

/* Why OpenSSL failed, as a short static text for logs and metrics. */
static const char *tls_reason(int ssl_err)
{
    unsigned long e = ERR_peek_last_error();
    if (e) {
        const char *r = ERR_reason_error_string(e);
        if (r)
            return r;
    }
    if (ssl_err == SSL_ERROR_SYSCALL)
        return errno ? "connection reset" : "connection closed";
    return "tls error";
}

static ssize_t tls_recv(struct conn *c, void *buf, size_t len)
{
    SSL *ssl = c->tr_ctx;
    size_t n = 0;
    ERR_clear_error();
    errno = 0;
    int r = SSL_read_ex(ssl, buf, len, &n);
    if (r == 1)
        return (ssize_t)n;
    int e = SSL_get_error(ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:  /* a key update's answer waits for the next write (OpenSSL 3) */
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        /* close_notify, or from a client an EOF without one: listeners set
         * IGNORE_UNEXPECTED_EOF, since clients close that way all the time
         * and a request's framing is its own. Upstream contexts do not: an
         * EOF without close_notify may be a cut made on the path, and a
         * body that runs until close must not end there as if whole; it
         * fails below as SSL_ERROR_SSL ("unexpected eof while reading"). */
        return 0;
    case SSL_ERROR_SYSCALL:
        if (errno == 0 && SSL_is_server(ssl))
            return 0;
        c->tr_error = errno ? tls_reason(e) : "EOF without close_notify";
        if (errno == 0)
            errno = ECONNRESET;
        return -1;
    default:
        c->tr_error = tls_reason(e);
        errno = EPROTO;
        return -1;
    }
}

static ssize_t tls_writev(struct conn *c, const struct iovec *iov, int n)
{
    SSL *ssl = c->tr_ctx;
    const void *p;
    size_t len;
    if (n == 1 || iov[0].iov_len >= TLS_RECORD) {
        p = iov[0].iov_base;
        len = iov[0].iov_len;
    } else {
        len = 0;
        for (int i = 0; i < n && len < TLS_RECORD; i++) {
            size_t k = iov[i].iov_len;
            if (k > TLS_RECORD - len)
                k = TLS_RECORD - len;
            memcpy(gather + len, iov[i].iov_base, k);
            len += k;
        }
        p = gather;
    }
    size_t w = 0;
    ERR_clear_error();
    errno = 0;
    int r = SSL_write_ex(ssl, p, len, &w);
    if (r == 1)
        return (ssize_t)w;
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        errno = EAGAIN;
        return -1;
    }
    c->tr_error = tls_reason(e);
    if (e != SSL_ERROR_SYSCALL || errno == 0)
        errno = e == SSL_ERROR_SYSCALL ? EPIPE : EPROTO;
    return -1;
}

static int tls_shutdown(struct conn *c)
{
    SSL *ssl = c->tr_ctx;
    if (SSL_is_init_finished(ssl)) {
        ERR_clear_error();
        (void)SSL_shutdown(ssl);  /* close_notify; the peer's is not waited for */
    }
    return shutdown(c->fd, SHUT_WR);
}

static void tls_close(evutil_socket_t fd, void *ctx, bool reset)
{
    SSL *ssl = ctx;
    if (ssl) {
        if (!reset && SSL_is_init_finished(ssl) && !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN)) {
            ERR_clear_error();
            (void)SSL_shutdown(ssl);
        }
        SSL_free(ssl);
        ERR_clear_error();
    }
    conn_plain.close(fd, NULL, reset);
}

/*
 * A client that speaks plain HTTP to a TLS port: its first byte is a
 * letter, where a TLS client starts with a handshake record (22). It is
 * looked at without taking it, so the owner reads the request as plain.
 */
static int sniff(struct conn *c)
{
    unsigned char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? CONN_HS_WANT_READ : -2;
    if (n == 0)
        return -2;
    if (b == 22)
        return CONN_HS_DONE;
    return CONN_HS_NOT_TLS;
}

static int tls_handshake(struct conn *c)
{
    SSL *ssl = c->tr_ctx;
    if (SSL_is_server(ssl) && !SSL_in_before(ssl)) {
        /* past the first byte already */
    } else if (SSL_is_server(ssl)) {
        int s = sniff(c);
        if (s == CONN_HS_WANT_READ)
            return s;
        if (s == -2) {
            c->tr_error = "connection closed during handshake";
            return CONN_HS_FAILED;
        }
        if (s == CONN_HS_NOT_TLS) {
            SSL_free(ssl);
            c->tr_ctx = NULL;
            c->tr = &conn_plain;
            return CONN_HS_NOT_TLS;
        }
    }
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(ssl);
    if (r == 1)
        return CONN_HS_DONE;
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return CONN_HS_WANT_READ;
    if (e == SSL_ERROR_WANT_WRITE)
        return CONN_HS_WANT_WRITE;
    if (e == SSL_ERROR_SSL && SSL_get_verify_result(ssl) != X509_V_OK)
        c->tr_error = X509_verify_cert_error_string(SSL_get_verify_result(ssl));
    else if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
        /* EOF midway (IGNORE_UNEXPECTED_EOF makes it a ZERO_RETURN) */
        c->tr_error = "connection closed during handshake";
    else
        c->tr_error = tls_reason(e);
    return CONN_HS_FAILED;
}

/* Decrypted bytes, or (read-ahead) raw ones OpenSSL took off the socket. */
static bool tls_pending(const struct conn *c)
{
    return SSL_has_pending(c->tr_ctx) == 1;
}

const struct conn_transport conn_tls = {
    .name = "tls",
    .recv = tls_recv,
    .writev = tls_writev,
    .shutdown = tls_shutdown,
    .close = tls_close,
    .handshake = tls_handshake,
    .pending = tls_pending,
};

int conn_tls_accept(struct conn *c, SSL_CTX *ctx)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl || SSL_set_fd(ssl, c->fd) != 1) {
        SSL_free(ssl);
        return -1;
    }
    SSL_set_accept_state(ssl);
    if (conn_begin_handshake(c, &conn_tls, ssl) != 0) {
        SSL_free(ssl);
        c->tr = &conn_plain;
        c->tr_ctx = NULL;
        c->handshaking = false;
        return -1;
    }
    return 0;
}

static bool is_ip_literal(const char *name)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

static int slot_index = -1;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;

static void slot_index_init(void)
{
    slot_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

int conn_tls_new_session(SSL *ssl, SSL_SESSION *session)
{
    SSL_SESSION **slot = slot_index >= 0 ? SSL_get_ex_data(ssl, slot_index) : NULL;
    if (!slot)
        return 0;  /* OpenSSL frees it */
    if (*slot)
        SSL_SESSION_free(*slot);
    *slot = session;  /* ours now */
    return 1;
}

int conn_tls_connect(struct conn *c, SSL_CTX *ctx, const char *name, bool verify,
                     SSL_SESSION **slot)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl || SSL_set_fd(ssl, c->fd) != 1)
        goto fail;
    SSL_set_connect_state(ssl);
    if (name && *name) {
        bool ip = is_ip_literal(name);
        if (!ip && SSL_set_tlsext_host_name(ssl, name) != 1)
            goto fail;
        if (verify) {
            if (ip) {
                if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1)
                    goto fail;
            } else if (SSL_set1_host(ssl, name) != 1) {
                goto fail;
            }
        }
    }
    SSL_set_verify(ssl, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (slot) {
        if (pthread_once(&slot_once, slot_index_init) != 0 || slot_index < 0 ||
            SSL_set_ex_data(ssl, slot_index, slot) != 1)
            goto fail;
        if (*slot)
            (void)SSL_set_session(ssl, *slot);  /* an unusable one means a full handshake */
    }
    if (conn_begin_handshake(c, &conn_tls, ssl) != 0)
        goto fail;
    return 0;
fail:
    SSL_free(ssl);
    ERR_clear_error();
    c->tr = &conn_plain;
    c->tr_ctx = NULL;
    c->handshaking = false;
    return -1;
}

SSL *conn_tls_ssl(const struct conn *c)
{
    return c->handshaking ? NULL : ssl_of(c);
}

const char *conn_tls_version(const struct conn *c)
{
    SSL *ssl = conn_tls_ssl(c);
    return ssl ? SSL_get_version(ssl) : NULL;
}

bool conn_tls_resumed(const struct conn *c)
{
    SSL *ssl = conn_tls_ssl(c);
    return ssl && SSL_session_reused(ssl);
}

const char *conn_tls_servername(const struct conn *c)
{
    SSL *ssl = conn_tls_ssl(c);
    return ssl ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

const char *conn_tls_error(const struct conn *c)
{
    return c->tr_error ? c->tr_error : "tls error";
}
