/*
 * log: JSON event lines on stdout. Each thread reuses one yajl generator;
 * a line is produced whole and written with a single write(2), so lines
 * from several workers never interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <yajl/yajl_gen.h>

#include "logjson.h"

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

void log_write_line(const char *line, size_t len)
{
    logjson_write(atomic_load_explicit(&log_fd, memory_order_relaxed), line, len);
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

    yajl_gen g = logjson_gen();
    if (!g)
        return;
    char ts[40];
    logjson_timestamp(ts, sizeof ts);
    yajl_gen_map_open(g);
    logjson_kv(g, "ts", ts);
    logjson_kv(g, "level", level_name(level));
    logjson_kv(g, "event", event);
    if (request_id)
        logjson_kv(g, "request_id", request_id);
    logjson_kv(g, "message", msg);
    for (size_t i = 0; fields && fields[i] && fields[i + 1]; i += 2)
        logjson_kv(g, fields[i], fields[i + 1]);
    yajl_gen_map_close(g);
    logjson_flush(g, -1);
}
