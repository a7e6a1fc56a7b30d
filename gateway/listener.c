/*
 * listener: socket(2)/bind(2)/listen(2) for one address. Records which call
 * failed in the caller's buffer; the caller decides how to log it. Also
 * sizes the default per-worker connection cap from the descriptor limit.
 */
#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

unsigned listener_default_max_connections(uint64_t nofile, unsigned workers, size_t n_listen)
{
    if (workers == 0)
        workers = 1;
    /* In 64 bits none of this can overflow: workers and n_listen are small. */
    uint64_t reserve = LISTENER_FD_RESERVE +
                       (uint64_t)workers * (LISTENER_FD_PER_WORKER + (uint64_t)n_listen);
    if (nofile <= reserve)
        return 1;
    uint64_t cap = (nofile - reserve) / (2 * (uint64_t)workers);
    if (cap < 1)
        return 1;
    return cap > LISTENER_MAX_CONNECTIONS ? LISTENER_MAX_CONNECTIONS : (unsigned)cap;
}

/* A socket file left by a process that died would make bind fail: remove it.
 * Never a file that is not a socket, nor one a live process still accepts on
 * (bind then fails with EADDRINUSE and says so). */
static void unlink_stale(const struct conf_addr *addr)
{
    const struct sockaddr_un *sun = (const struct sockaddr_un *)&addr->sa;
    struct stat st;
    if (lstat(sun->sun_path, &st) != 0 || !S_ISSOCK(st.st_mode))
        return;
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return;
    int rc = connect(probe, (const struct sockaddr *)sun, addr->salen);
    int e = errno;
    close(probe);
    if (rc != 0 && e == ECONNREFUSED)
        (void)unlink(sun->sun_path);
}

evutil_socket_t listener_bind(const struct conf_addr *addr, char *err, size_t errlen)
{
    const char *step = "socket";
    int one = 1;
    int fam = addr->sa.ss_family;
    int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    if (fam != AF_UNIX) {
        step = "setsockopt(SO_REUSEADDR)";
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
            goto fail;
        step = "setsockopt(SO_REUSEPORT)";
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
            goto fail;
        if (fam == AF_INET6) {
            /* [::]:port means IPv6 only; list 0.0.0.0:port too for IPv4. */
            step = "setsockopt(IPV6_V6ONLY)";
            if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
                goto fail;
        }
    } else {
        unlink_stale(addr);
    }
    step = "bind";
    if (bind(fd, (const struct sockaddr *)&addr->sa, addr->salen) != 0)
        goto fail;
    step = "listen";
    if (listen(fd, 4096) != 0)
        goto fail;
    return fd;
fail:
    snprintf(err, errlen, "%s: %s: %s", addr->text, step, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}
