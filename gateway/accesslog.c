/*
 * accesslog: the per-request line, its target and its batching. The line is
 * written with jsonw into a per-thread buffer (no allocation per request)
 * and escaped as every JSON line of the gateway is; the timestamp and the
 * write come from log.c. The target fd is process-wide and swapped
 * atomically on reopen, so workers never block each other.
 */
#include "accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jsonw.h"
#include "log.h"

/*
 * Where lines go now, and whether it is a regular file, in one word so a
 * worker never pairs a new descriptor with the old kind: (fd + 1) << 1 |
 * regular; 0 is "off". An O_APPEND write of any size lands whole in a
 * regular file; a pipe, FIFO or socket (stdout under systemd or a container,
 * /dev/stdout, a named pipe) only promises that for PIPE_BUF bytes, so
 * batches to those go out in pieces of whole lines. The kind is read with
 * fstat at every open and reopen, never assumed from the conf.
 */
static atomic_int al_target = (STDOUT_FILENO + 1) << 1;

static void set_target(int fd)
{
    struct stat st;
    bool regular = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    atomic_store(&al_target, fd < 0 ? 0 : ((fd + 1) << 1) | (regular ? 1 : 0));
}

static int target_fd(int t)
{
    return (t >> 1) - 1;
}
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
        set_target(STDOUT_FILENO);
        return 0;
    }
    if (strcmp(target, "off") == 0) {
        al_path[0] = '\0';
        set_target(-1);
        return 0;
    }
    if (install_file(target) != 0)
        return -1;
    snprintf(al_path, sizeof al_path, "%s", target);
    set_target(al_file_fd);
    return 0;
}

int accesslog_reopen(void)
{
    if (al_path[0] == '\0')
        return 0;
    if (install_file(al_path) != 0)
        return -1;
    set_target(al_file_fd);  /* the path may now name a pipe */
    return 0;
}

void accesslog_close(void)
{
    /* Only at exit, once every worker has stopped. */
    set_target(-1);
    if (al_file_fd >= 0) {
        close(al_file_fd);
        al_file_fd = -1;
    }
}

/*
 * The line is built into a per-thread buffer with jsonw's appends, its keys
 * and punctuation as literals: with yajl and printf it was a fifth of a
 * proxied request's instructions. Every input is bounded (path 1 KiB,
 * strings from the conf 256 bytes), so a line never exceeds the buffer; a
 * line that would (jsonw fails on a fixed buffer) is dropped, belt and braces.
 */
#define LINE_CAP 16384

/*
 * A worker's lines of one loop turn, written together: one write(2) per
 * turn instead of one per request (the write was 8% of a proxied request's
 * CPU). Lines wait at most until the loop next sleeps, and a crash loses
 * only the current turn's. O_APPEND makes each batch land whole, so workers
 * never interleave inside a line. Lines are whole by construction (each is
 * at most LINE_CAP), and BATCH_CAP bounds the memory per thread.
 */
#define BATCH_CAP 65536

static _Thread_local struct {
    char *buf;          /* NULL: this thread writes every line at once */
    size_t n;
    void (*arm)(void *);
    void *arm_arg;
} batch;

#define PUTLIT(w, s) jsonw_put_raw(w, s, sizeof(s) - 1)

/* Milliseconds with microsecond precision ("1.104"), from integer microseconds. */
static void put_ms(struct jsonw *w, double ms)
{
    unsigned long long us = ms > 0 ? (unsigned long long)(ms * 1000.0 + 0.5) : 0;
    jsonw_put_uint(w, us / 1000);
    char frac[4] = {'.', (char)('0' + us % 1000 / 100), (char)('0' + us % 100 / 10),
                    (char)('0' + us % 10)};
    jsonw_put_raw(w, frac, sizeof frac);
}

/* A key with its punctuation, one literal: ,"KEY": */
#define KEY(w, k) PUTLIT(w, ",\"" k "\":")

static void put_opt_str(struct jsonw *w, const char *s, size_t max)
{
    if (s)
        jsonw_put_string(w, s, strnlen(s, max));
    else
        PUTLIT(w, "null");
}

void accesslog_write(const struct access_entry *e)
{
    static _Thread_local char buf[LINE_CAP];
    int fd = target_fd(atomic_load_explicit(&al_target, memory_order_relaxed));
    if (fd < 0)
        return;
    struct jsonw l;
    jsonw_init_fixed(&l, buf, sizeof buf);
    char ts[40];
    log_timestamp(ts, sizeof ts);
    PUTLIT(&l, "{\"ts\":");
    jsonw_put_string(&l, ts, strlen(ts));
    KEY(&l, "request_id");
    put_opt_str(&l, e->request_id, 256);
    KEY(&l, "client");
    put_opt_str(&l, e->client, 256);
    KEY(&l, "method");
    put_opt_str(&l, e->method, 64);
    KEY(&l, "path");
    jsonw_put_string(&l, e->path, e->path_len > 1024 ? 1024 : e->path_len);
    KEY(&l, "route");
    put_opt_str(&l, e->route, 256);
    KEY(&l, "status");
    jsonw_put_int(&l, e->status);
    KEY(&l, "upstream_status");
    if (e->upstream_status)
        jsonw_put_int(&l, e->upstream_status);
    else
        PUTLIT(&l, "null");
    KEY(&l, "upstream");
    put_opt_str(&l, e->upstream, 256);
    KEY(&l, "duration_ms");
    put_ms(&l, e->duration_ms);
    KEY(&l, "upstream_ms");
    if (e->upstream_ms >= 0)
        put_ms(&l, e->upstream_ms);
    else
        PUTLIT(&l, "null");
    KEY(&l, "bytes_in");
    jsonw_put_uint(&l, e->bytes_in);
    KEY(&l, "bytes_out");
    jsonw_put_uint(&l, e->bytes_out);
    KEY(&l, "ratelimit_remaining");
    if (e->ratelimit_remaining >= 0)
        jsonw_put_int(&l, e->ratelimit_remaining);
    else
        PUTLIT(&l, "null");
    KEY(&l, "error_code");
    put_opt_str(&l, e->error_code, 256);
    if (e->subject) {
        KEY(&l, "subject");
        put_opt_str(&l, e->subject, 128);
    }
    if (e->tls) {
        KEY(&l, "tls");
        put_opt_str(&l, e->tls, 32);
        if (e->tls_resumed)
            PUTLIT(&l, ",\"tls_resumed\":true");
        else
            PUTLIT(&l, ",\"tls_resumed\":false");
    }
    PUTLIT(&l, "}\n");
    if (l.failed)
        return;
    if (!batch.buf) {
        log_write_all(fd, buf, l.len);
        return;
    }
    if (batch.n + l.len > BATCH_CAP)
        accesslog_batch_flush();
    bool was_empty = batch.n == 0;
    memcpy(batch.buf + batch.n, buf, l.len);
    batch.n += l.len;
    if (was_empty)
        batch.arm(batch.arm_arg);
}

int accesslog_batch_begin(void (*arm)(void *arg), void *arg)
{
    if (batch.buf)
        return 0;
    batch.buf = malloc(BATCH_CAP);
    if (!batch.buf)
        return -1;
    batch.n = 0;
    batch.arm = arm;
    batch.arm_arg = arg;
    return 0;
}

void accesslog_batch_flush(void)
{
    if (!batch.buf || batch.n == 0)
        return;
    /* The target now, not when the lines were made: a reload to "off"
     * drops them, a rotation puts them in the new file. */
    int t = atomic_load_explicit(&al_target, memory_order_relaxed);
    int fd = target_fd(t);
    if (fd >= 0 && (t & 1)) {
        log_write_all(fd, batch.buf, batch.n);
    } else if (fd >= 0) {
        /* Pieces of at most PIPE_BUF bytes, cut after a newline, so no
         * other writer's line lands inside one of ours. */
        const char *p = batch.buf, *end = batch.buf + batch.n;
        while (p < end) {
            size_t n = (size_t)(end - p);
            if (n > PIPE_BUF) {
                /* a line longer than PIPE_BUF goes alone, as it always did */
                const char *cut = memrchr(p, '\n', PIPE_BUF);
                if (!cut)
                    cut = memchr(p, '\n', n);
                if (cut)
                    n = (size_t)(cut - p) + 1;
            }
            log_write_all(fd, p, n);
            p += n;
        }
    }
    batch.n = 0;
}

void accesslog_batch_end(void)
{
    accesslog_batch_flush();
    free(batch.buf);
    batch.buf = NULL;
}
