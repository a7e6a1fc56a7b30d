/*
 * accesslog: the per-request line. The target fd is process-wide and
 * swapped atomically on reopen, so workers never block each other.
 */
#include "accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "logjson.h"

static atomic_int al_fd = STDOUT_FILENO;   /* where lines go now; -1: off */
/*
 * The file target has one descriptor number for the life of the process.
 * Rotation and reload dup2(2) the new file onto it and never close it while
 * workers run: closing would free the number for the next accept(2), and a
 * worker that loaded it a moment earlier would write a log line into a
 * client's connection.
 */
static int al_file_fd = -1;
static char al_path[4096];

static int install_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    if (al_file_fd < 0) {
        al_file_fd = fd;
        return 0;
    }
    int rc = dup3(fd, al_file_fd, O_CLOEXEC);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc < 0 ? -1 : 0;
}

int accesslog_open(const char *target)
{
    if (strcmp(target, "stdout") == 0) {
        al_path[0] = '\0';
        atomic_store(&al_fd, STDOUT_FILENO);
        return 0;
    }
    if (strcmp(target, "off") == 0) {
        al_path[0] = '\0';
        atomic_store(&al_fd, -1);
        return 0;
    }
    if (install_file(target) != 0)
        return -1;
    snprintf(al_path, sizeof al_path, "%s", target);
    atomic_store(&al_fd, al_file_fd);
    return 0;
}

int accesslog_reopen(void)
{
    if (al_path[0] == '\0')
        return 0;
    return install_file(al_path);
}

void accesslog_close(void)
{
    /* Only at exit, once every worker has stopped. */
    atomic_store(&al_fd, -1);
    if (al_file_fd >= 0) {
        close(al_file_fd);
        al_file_fd = -1;
    }
}

/* Milliseconds with microsecond precision, not yajl's %.20g. */
static void put_ms(yajl_gen g, const char *key, double ms)
{
    char num[32];
    int n = snprintf(num, sizeof num, "%.3f", ms < 0 ? 0.0 : ms);
    yajl_gen_string(g, (const unsigned char *)key, strlen(key));
    yajl_gen_number(g, num, n > 0 ? (size_t)n : 0);
}

void accesslog_write(const struct access_entry *e)
{
    int fd = atomic_load_explicit(&al_fd, memory_order_relaxed);
    if (fd < 0)
        return;
    yajl_gen g = logjson_gen();
    if (!g)
        return;
    char ts[40];
    logjson_timestamp(ts, sizeof ts);
    yajl_gen_map_open(g);
    logjson_kv(g, "ts", ts);
    logjson_kv(g, "request_id", e->request_id);
    logjson_kv(g, "client", e->client);
    logjson_kv(g, "method", e->method);
    logjson_kvn(g, "path", e->path, e->path_len > 1024 ? 1024 : e->path_len);
    if (e->route)
        logjson_kv(g, "route", e->route);
    else
        logjson_knull(g, "route");
    logjson_kint(g, "status", e->status);
    if (e->upstream_status)
        logjson_kint(g, "upstream_status", e->upstream_status);
    else
        logjson_knull(g, "upstream_status");
    if (e->upstream)
        logjson_kv(g, "upstream", e->upstream);
    else
        logjson_knull(g, "upstream");
    put_ms(g, "duration_ms", e->duration_ms);
    if (e->upstream_ms >= 0) {
        put_ms(g, "upstream_ms", e->upstream_ms);
    } else {
        logjson_knull(g, "upstream_ms");
    }
    logjson_kint(g, "bytes_in", (long long)e->bytes_in);
    logjson_kint(g, "bytes_out", (long long)e->bytes_out);
    if (e->ratelimit_remaining >= 0)
        logjson_kint(g, "ratelimit_remaining", e->ratelimit_remaining);
    else
        logjson_knull(g, "ratelimit_remaining");
    if (e->error_code)
        logjson_kv(g, "error_code", e->error_code);
    else
        logjson_knull(g, "error_code");
    yajl_gen_map_close(g);
    logjson_flush(g, fd);
}
