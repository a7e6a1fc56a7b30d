/*
 * listener: listening sockets. Each worker binds its own socket per listen
 * address with SO_REUSEPORT, so the kernel spreads connections across
 * workers and no accept lock is shared.
 */
#ifndef ENVELOPD_LISTENER_H
#define ENVELOPD_LISTENER_H

#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>

#include "conf.h"

/* A bound, listening, non-blocking socket, or -1 with the reason in err. */
evutil_socket_t listener_bind(const struct conf_addr *addr, char *err, size_t errlen);

/*
 * Descriptors kept out of the default connection cap: LISTENER_FD_RESERVE
 * for the process (stdio, log files, the main and admin threads' loops,
 * pipes, listeners and connections), and per worker LISTENER_FD_PER_WORKER
 * plus one per listening socket (its event loop, message and wake-up pipes,
 * Redis connection, a margin).
 */
#define LISTENER_FD_RESERVE 32
#define LISTENER_FD_PER_WORKER 8
#define LISTENER_MAX_CONNECTIONS 10000000u

/*
 * The per-worker cap on client connections when the conf leaves
 * max_connections at 0. Each client can hold two descriptors (its own and
 * one upstream connection), so
 *   (NOFILE - LISTENER_FD_RESERVE - WORKERS * (LISTENER_FD_PER_WORKER + N_LISTEN))
 *     / (2 * WORKERS),
 * at least 1 and at most LISTENER_MAX_CONNECTIONS. NOFILE is the soft
 * RLIMIT_NOFILE (UINT64_MAX for RLIM_INFINITY); WORKERS 0 counts as 1.
 */
unsigned listener_default_max_connections(uint64_t nofile, unsigned workers, size_t n_listen);

#endif
