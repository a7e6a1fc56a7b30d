/*
 * tls: the OpenSSL contexts a conf generation needs, built once on the main
 * thread when a conf is loaded (at start, on reload, and by -t) and shared
 * read-only by the workers, as OpenSSL contexts may be. For TLS listeners:
 * one context per [tls] certificate/key pair, the first being the default
 * and the one every handshake starts on; the client's SNI name then selects
 * the pair whose certificate names it (exact names first, then a wildcard
 * "*.example.com" for one label), falling back to the default. All of them
 * share the default's session cache and ticket keys, so a client resumes
 * whichever worker it reaches. ALPN selects "http/1.1"; a client offering
 * only protocols envelopd does not serve (h2 alone) is refused with the
 * no_application_protocol alert rather than left to fail on garbage. For
 * each [upstream] with tls = yes: a client context that verifies the
 * server against ca_file or the system store, and sends a client
 * certificate when one is set. A connection holds its own reference to its
 * context, so freeing a set on reload never cuts a connection.
 */
#ifndef ENVELOPD_TLS_H
#define ENVELOPD_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "conf.h"

struct tls_set;

/*
 * Build every context CONF asks for. NULL on failure, with "PATH:LINE:
 * problem" in ERR (a missing or unreadable file, a key that does not match
 * its certificate, an unknown cipher, a CA file that holds no certificate).
 * A conf without TLS gives an empty set.
 */
struct tls_set *tls_set_new(const struct conf *conf, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void tls_set_free(struct tls_set *t);

/* What a TLS listener's handshakes start on; NULL when no certificate is set. */
SSL_CTX *tls_server_ctx(const struct tls_set *t);
/* Upstream I's client context; NULL when it does not use TLS. */
SSL_CTX *tls_upstream_ctx(const struct tls_set *t, size_t i);

/* For tests: the certificate pair (index into conf->certs) NAME selects. */
size_t tls_select(const struct tls_set *t, const char *name);

#endif
