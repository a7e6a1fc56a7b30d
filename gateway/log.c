/*
 * log: JSON event lines on stdout, written with jsonw (the gateway's one
 * JSON writer, so an event line escapes exactly as an envelope or an access
 * line does). A line is built whole in a buffer on the stack and written
 * with a single write(2), so lines from several workers never interleave;
 * only a line longer than that buffer (never one of our own) is built on
 * the heap. Also owns the timestamp (formatted once per second per thread)
 * and the whole-buffer write that accesslog.c uses for its lines too.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jsonw.h"

static atomic_int log_level = CONF_LOG_INFO;
static atomic_int log_fd = STDOUT_FILENO;

void log_set_level(enum conf_log_level level)
{
    atomic_store(&log_level, (int)level);
}

bool log_enabled(enum conf_log_level level)
{
    return (int)level >= atomic_load_explicit(&log_level, memory_order_relaxed);
}

void log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

void log_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;  /* nowhere left to report a logging failure */
        }
        buf += n;
        len -= (size_t)n;
    }
}

void log_write_line(const char *line, size_t len)
{
    log_write_all(atomic_load_explicit(&log_fd, memory_order_relaxed), line, len);
}

void log_timestamp(char *buf, size_t cap)
{
    /* The date and time change once a second: format them once per second. */
    static _Thread_local time_t cached_sec = (time_t)-1;
    static _Thread_local char prefix[64];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(prefix, sizeof prefix, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_sec = ts.tv_sec;
    }
    long ms = ts.tv_nsec / 1000000;
    size_t n = strlen(prefix);
    if (n + 5 > cap) {
        if (cap)
            buf[0] = '\0';
        return;
    }
    memcpy(buf, prefix, n);
    buf[n] = (char)('0' + ms / 100);
    buf[n + 1] = (char)('0' + ms / 10 % 10);
    buf[n + 2] = (char)('0' + ms % 10);
    buf[n + 3] = 'Z';
    buf[n + 4] = '\0';
}

static const char *level_name(enum conf_log_level l)
{
    switch (l) {
    case CONF_LOG_DEBUG: return "debug";
    case CONF_LOG_INFO: return "info";
    case CONF_LOG_WARN: return "warn";
    default: return "error";
    }
}

/* One member "KEY":"VALUE" of the open map. */
static void kv(struct jsonw *w, const char *key, const char *value)
{
    if (jsonw_key(w, key) == 0)
        (void)jsonw_string(w, value, strlen(value));
}

struct event {
    const char *ts, *level, *event, *request_id, *message;
    const char *const *fields;
};

/* The line with its newline; 0, or -1 when it did not fit W. */
static int event_line(struct jsonw *w, const struct event *e)
{
    (void)jsonw_map_open(w);
    kv(w, "ts", e->ts);
    kv(w, "level", e->level);
    kv(w, "event", e->event);
    if (e->request_id)
        kv(w, "request_id", e->request_id);
    kv(w, "message", e->message);
    for (size_t i = 0; e->fields && e->fields[i] && e->fields[i + 1]; i += 2)
        kv(w, e->fields[i], e->fields[i + 1]);
    (void)jsonw_map_close(w);
    jsonw_put_raw(w, "\n", 1);
    return w->failed ? -1 : 0;
}

void log_emit(enum conf_log_level level, const char *event, const char *request_id,
              const char *const *fields, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';

    char ts[40];
    log_timestamp(ts, sizeof ts);
    struct event e = {ts, level_name(level), event ? event : "", request_id, msg, fields};
    char line[8192];
    struct jsonw w;
    jsonw_init_fixed(&w, line, sizeof line);
    if (event_line(&w, &e) == 0) {
        log_write_line(line, w.len);
        return;
    }
    jsonw_init(&w);
    char *heap;
    size_t len;
    if (event_line(&w, &e) == 0 && jsonw_take(&w, &heap, &len) == 0) {
        log_write_line(heap, len);
        free(heap);
    }
    jsonw_free(&w);
}
