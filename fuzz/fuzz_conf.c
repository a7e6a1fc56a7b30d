/*
 * fuzz_conf: arbitrary bytes as a conf file. The input is written to an
 * in-memory file (memfd) and loaded by its /proc/self/fd path, exactly as
 * conf_load reads a real file; a refused conf must come with a message in
 * "PATH:LINE: problem" form, an accepted one must satisfy what the rest of
 * the gateway assumes of it (routes resolve to upstreams, prefixes fit).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int conf_fd = -1;
static char conf_path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (conf_fd < 0) {
        conf_fd = memfd_create("fuzz_conf", MFD_CLOEXEC);
        if (conf_fd < 0)
            abort();
        snprintf(conf_path, sizeof conf_path, "/proc/self/fd/%d", conf_fd);
    }
    if (ftruncate(conf_fd, 0) != 0)
        abort();
    size_t off = 0;
    while (off < size) {
        ssize_t n = pwrite(conf_fd, data + off, size - off, (off_t)off);
        if (n <= 0)
            abort();
        off += (size_t)n;
    }

    char err[512];
    memset(err, 'x', sizeof err);
    struct conf *c = conf_load(conf_path, err, sizeof err);
    if (!c) {
        /* refused: a NUL-terminated message naming the file */
        if (!memchr(err, '\0', sizeof err) || strncmp(err, conf_path, strlen(conf_path)) != 0)
            abort();
        return 0;
    }
    if (c->n_routes == 0 || c->n_routes > CONF_MAX_ROUTES || c->n_upstreams > CONF_MAX_UPSTREAMS ||
        c->n_listen > CONF_MAX_LISTEN || c->workers == 0)
        abort();
    for (size_t i = 0; i < c->n_routes; i++) {
        const struct conf_route *r = &c->routes[i];
        if (r->upstream >= c->n_upstreams || r->prefix_len == 0 ||
            r->prefix_len >= sizeof r->prefix || strlen(r->prefix) != r->prefix_len)
            abort();
    }
    for (size_t i = 0; i < c->n_upstreams; i++)
        if (c->upstreams[i].n_servers > CONF_MAX_SERVERS)
            abort();
    conf_free(c);
    return 0;
}
