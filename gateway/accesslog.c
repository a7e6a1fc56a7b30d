/*
 * accesslog: the per-request line. The target fd is process-wide and
 * swapped atomically on reopen, so workers never block each other.
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

#include "headbuf.h"
#include "logjson.h"
#include "utf8.h"

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
 * The line is built by hand into a per-thread buffer: with yajl and printf
 * it was a fifth of a proxied request's instructions. Every input is
 * bounded (path 1 KiB, strings from the conf 256 bytes), so a line never
 * exceeds the buffer; the guard below is belt and braces.
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

struct line {
    char *p;
    size_t n;
    bool full;
};

static void put(struct line *l, const char *s, size_t n)
{
    if (l->full || l->n + n > LINE_CAP) {
        l->full = true;
        return;
    }
    memcpy(l->p + l->n, s, n);
    l->n += n;
}

#define PUTLIT(l, s) put(l, s, sizeof(s) - 1)

/* A JSON string: quoted, escaped, invalid UTF-8 replaced by U+FFFD. */
static void put_str(struct line *l, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    PUTLIT(l, "\"");
    size_t run = 0;  /* start of the pending run of bytes copied as is */
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        size_t seq = c >= 0x80 ? utf8_seq(u + i, n - i) : 0;
        if (seq) {
            i += seq;
            continue;
        }
        put(l, s + run, i - run);
        if (c == '"') {
            PUTLIT(l, "\\\"");
        } else if (c == '\\') {
            PUTLIT(l, "\\\\");
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(l, esc, sizeof esc);
        } else {
            PUTLIT(l, "\xef\xbf\xbd");
        }
        i++;
        run = i;
    }
    put(l, s + run, n - run);
    PUTLIT(l, "\"");
}

static void put_uint(struct line *l, unsigned long long v)
{
    char b[HB_U64_DIGITS];
    char *s = hb_u64_digits(b + sizeof b, v);
    put(l, s, (size_t)(b + sizeof b - s));
}

static void put_int(struct line *l, long long v)
{
    if (v < 0) {
        PUTLIT(l, "-");
        put_uint(l, (unsigned long long)(-(v + 1)) + 1);
    } else {
        put_uint(l, (unsigned long long)v);
    }
}

/* Milliseconds with microsecond precision ("1.104"), from integer microseconds. */
static void put_ms(struct line *l, double ms)
{
    unsigned long long us = ms > 0 ? (unsigned long long)(ms * 1000.0 + 0.5) : 0;
    put_uint(l, us / 1000);
    char frac[4] = {'.', (char)('0' + us % 1000 / 100), (char)('0' + us % 100 / 10),
                    (char)('0' + us % 10)};
    put(l, frac, sizeof frac);
}

static void put_key(struct line *l, const char *key_with_punct, size_t n)
{
    put(l, key_with_punct, n);
}

#define KEY(l, k) put_key(l, ",\"" k "\":", sizeof(",\"" k "\":") - 1)

static void put_opt_str(struct line *l, const char *s, size_t max)
{
    if (s)
        put_str(l, s, strnlen(s, max));
    else
        PUTLIT(l, "null");
}

void accesslog_write(const struct access_entry *e)
{
    static _Thread_local char buf[LINE_CAP];
    int fd = target_fd(atomic_load_explicit(&al_target, memory_order_relaxed));
    if (fd < 0)
        return;
    struct line l = {buf, 0, false};
    char ts[40];
    logjson_timestamp(ts, sizeof ts);
    PUTLIT(&l, "{\"ts\":");
    put_str(&l, ts, strlen(ts));
    KEY(&l, "request_id");
    put_opt_str(&l, e->request_id, 256);
    KEY(&l, "client");
    put_opt_str(&l, e->client, 256);
    KEY(&l, "method");
    put_opt_str(&l, e->method, 64);
    KEY(&l, "path");
    put_str(&l, e->path, e->path_len > 1024 ? 1024 : e->path_len);
    KEY(&l, "route");
    put_opt_str(&l, e->route, 256);
    KEY(&l, "status");
    put_int(&l, e->status);
    KEY(&l, "upstream_status");
    if (e->upstream_status)
        put_int(&l, e->upstream_status);
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
    put_uint(&l, e->bytes_in);
    KEY(&l, "bytes_out");
    put_uint(&l, e->bytes_out);
    KEY(&l, "ratelimit_remaining");
    if (e->ratelimit_remaining >= 0)
        put_int(&l, e->ratelimit_remaining);
    else
        PUTLIT(&l, "null");
    KEY(&l, "error_code");
    put_opt_str(&l, e->error_code, 256);
    PUTLIT(&l, "}\n");
    if (l.full)
        return;
    if (!batch.buf) {
        logjson_write(fd, buf, l.n);
        return;
    }
    if (batch.n + l.n > BATCH_CAP)
        accesslog_batch_flush();
    bool was_empty = batch.n == 0;
    memcpy(batch.buf + batch.n, buf, l.n);
    batch.n += l.n;
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
        logjson_write(fd, batch.buf, batch.n);
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
            logjson_write(fd, p, n);
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
