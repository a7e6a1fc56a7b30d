/*
 * conn_tls: the TLS transport of a conn (conn.h), OpenSSL reading and
 * writing on the conn's own socket, so TLS keeps the conn's one-recv reads
 * and end-of-turn writes rather than a bufferevent's. A conn starts plain
 * (conn_init, conn_connect) and is switched to TLS before any byte moves:
 * conn_tls_accept on an accepted socket, conn_tls_connect on a connect in
 * progress. conn.c then runs the handshake from its events and reports
 * CONN_EV_CONNECTED when it is done (on either side), CONN_EV_ERROR when
 * it failed (conn_tls_error says why), and CONN_EV_NOT_TLS when a client's
 * first byte cannot start a TLS handshake (plain HTTP sent to a TLS port):
 * the conn is plain from then on, so the owner can answer in cleartext.
 * Contexts (certificates, versions, verification) are tls.c's; a conn only
 * holds its SSL, which keeps its context alive across a reload.
 */
#ifndef ENVELOPD_CONN_TLS_H
#define ENVELOPD_CONN_TLS_H

#include <stdbool.h>

#include <openssl/ssl.h>

#include "conn.h"

extern const struct conn_transport conn_tls;

/* Serve TLS on C (accepted, nothing read yet) with CTX. 0, or -1 (out of
 * memory; C unchanged, still plain). */
int conn_tls_accept(struct conn *c, SSL_CTX *ctx) __attribute__((warn_unused_result));

/*
 * Speak TLS on C (a connect in progress) with CTX. NAME, when not NULL, is
 * sent as SNI (unless an IP literal) and, when VERIFY, checked against the
 * certificate (a DNS name or an IP literal). SLOT, when not NULL, is where
 * sessions for this server are kept: *SLOT is offered for resumption, and
 * a session the server issues on C replaces it (conn_tls_new_session). The
 * slot must outlive C. 0, or -1.
 */
int conn_tls_connect(struct conn *c, SSL_CTX *ctx, const char *name, bool verify,
                     SSL_SESSION **slot) __attribute__((warn_unused_result));
/* The new-session callback (SSL_CTX_sess_set_new_cb) of client contexts
 * whose connections use a slot. */
int conn_tls_new_session(SSL *ssl, SSL_SESSION *session);

/* On a TLS conn whose handshake is done: its SSL, else NULL. */
SSL *conn_tls_ssl(const struct conn *c);
/* "TLSv1.3", ...; NULL for a plain conn or before the handshake. */
const char *conn_tls_version(const struct conn *c);
bool conn_tls_resumed(const struct conn *c);
/* The SNI name the client sent, or NULL. */
const char *conn_tls_servername(const struct conn *c);
/* Why the last handshake or TLS read/write failed: a short static text
 * ("certificate verify failed", "wrong version number", "timeout"...). */
const char *conn_tls_error(const struct conn *c);

#endif
