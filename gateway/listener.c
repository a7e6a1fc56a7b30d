/*
 * listener: socket(2)/bind(2)/listen(2) for one address. Records which call
 * failed in the caller's buffer; the caller decides how to log it.
 */
#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

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
        (void)unlink(((const struct sockaddr_un *)&addr->sa)->sun_path);
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
