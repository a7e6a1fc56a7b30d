/*
 * listener: listening sockets. Each worker binds its own socket per listen
 * address with SO_REUSEPORT, so the kernel spreads connections across
 * workers and no accept lock is shared.
 */
#ifndef ENVELOPD_LISTENER_H
#define ENVELOPD_LISTENER_H

#include <stddef.h>

#include <event2/util.h>

#include "conf.h"

/* A bound, listening, non-blocking socket, or -1 with the reason in err. */
evutil_socket_t listener_bind(const struct conf_addr *addr, char *err, size_t errlen);

#endif
